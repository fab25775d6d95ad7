#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run.sh: the two-host lab end to end. Builds the guest, brings hosts A and
# B up, runs the scenarios with assertions on both hosts, takes the lab
# down. Exit 0 (all passed), 1 (a scenario failed), 77 (lab impossible
# here). Needs QEMU_COCO (the built qemu-coco); see docs/lab.rst.
#
# Every migration goes through qemu-coco (the domain's <emulator>) and one
# virtcocod per host, which move guest RAM through the emulated firmware's
# sealed pipeline (precopy while the relay holds 'migrate', the rest at the
# switchover gate), so x-ignore-shared is on for migrations and off for
# save/restore. The guest has a <coco:migration> element (tdx) and no
# <launchSecurity> (TCG).
set -u
. "$(dirname "$0")/lab-env.sh"

[ "$(id -u)" = 0 ] || lab_skip "the lab needs root (namespaces, mounts, libvirtd)"
[ -n "${QEMU_COCO:-}" ] && [ -x "$QEMU_COCO" ] || lab_die "set QEMU_COCO to the built qemu-coco"
[ -n "${VIRTCOCOD:-}" ] && [ -x "$VIRTCOCOD" ] || lab_die "set VIRTCOCOD to the built virtcocod"
QEMU_COCO=$(readlink -f "$QEMU_COCO")
VIRTCOCOD=$(readlink -f "$VIRTCOCOD")
export QEMU_COCO VIRTCOCOD

BOOT_TIMEOUT=${COCO_LAB_BOOT_TIMEOUT:-120}
PASSED=0
FAILED=0
RESULTS=""
MEASURE=""
COCO_NS=https://libvirt-coco.org/xmlns/migration/1.0
T_START=$(date +%s.%N)

now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.1f\", $(now) - $1}"; }

"$E2E_DIR/build-guest.sh" "$CACHE/guest" >&2 || lab_die "cannot build the guest"
"$E2E_DIR/hosts-up.sh"
rc=$?
[ $rc = 77 ] && exit 77
[ $rc = 0 ] || { "$E2E_DIR/hosts-down.sh"; lab_die "hosts-up.sh failed"; }
trap '"$E2E_DIR/hosts-down.sh"' EXIT
T_UP=$(since "$T_START")

sed -e "s|@GUEST@|$CACHE/guest|" -e "s|@EMULATOR@|$QEMU_COCO|" \
    "$E2E_DIR/guest.xml.in" > "$LAB/guest.xml"

virsh_h() { h=$1; shift; virsh -q -c "$(host_uri "$h")" "$@"; }
console() { echo "$(host_dir "$1")/log/qemu/guest-console.log"; }
console_size() { stat -c %s "$(console "$1")" 2>/dev/null || echo 0; }
# Complete lines of host $1's console after byte offset $2.
console_since() { tail -c +"$(($2 + 1))" "$(console "$1")" 2>/dev/null | tr -d '\r' | grep -a -E '^(HB|CK|GUEST)' || true; }
count_since() { console_since "$1" "$2" | grep -c "^$3" || true; }

fail() { echo "  assertion failed: $*" >&2; return 1; }

# What host $1's libvirtd sees of its log and state directories.
host_diag() {
    pid=$(cat "$(host_dir "$1")/libvirtd.pid")
    echo "  host $1 ($pid): $(ls -la "$(host_dir "$1")/log" "$(host_dir "$1")/log/qemu" 2>&1 | tr '\n' ' ')" >&2
    nsenter -t "$pid" -m -- sh -c 'findmnt -o TARGET,SOURCE /var/log/libvirt; ls -la /var/log/libvirt /var/log/libvirt/qemu' 2>&1 | sed 's/^/  in ns: /' >&2
}

wait_lines() { # host offset prefix count timeout
    i=0
    while [ "$(count_since "$1" "$2" "$3")" -lt "$4" ]; do
        i=$((i + 1))
        [ $i -le $(($5 * 10)) ] || fail "host $1: fewer than $4 '$3' lines after $5 s" || return 1
        sleep 0.1
    done
}

assert_state() { # host "state (reason)"
    s=$(virsh_h "$1" domstate --reason guest 2>&1)
    [ "$s" = "$2" ] || fail "host $1: domain state '$s', expected '$2'"
}

assert_no_domain() {
    if virsh_h "$1" domstate guest >/dev/null 2>&1; then
        fail "host $1 still has the domain ($(virsh_h "$1" domstate --reason guest))"
    fi
}

relay_state() { virsh_h "$1" qemu-monitor-command guest '{"execute":"x-coco-query-relay"}'; }

assert_relay() { # host key value
    st=$(relay_state "$1") || fail "host $1: x-coco-query-relay failed: $st" || return 1
    echo "$st" | grep -q "\"$2\":$3" || fail "host $1: relay state lacks \"$2\":$3: $st"
}

# Heartbeat and checksum after the guest moved from $1 (console offset $2
# before) to $3 (console offset $4 before): the destination's first
# heartbeat follows the source's last one, the workload keeps verifying.
assert_continues() {
    src=$1 soff=$2 dst=$3 doff=$4
    wait_lines "$dst" "$doff" "HB" 2 30 || return 1
    wait_lines "$dst" "$doff" "CK" 2 40 || return 1
    # The source's log only grows; its last heartbeat is the guest's last
    # one there (it may have printed nothing since $soff).
    last=$(console_since "$src" 0 | grep '^HB' | tail -1 | cut -d' ' -f2)
    first=$(console_since "$dst" "$doff" | grep '^HB' | head -1 | cut -d' ' -f2)
    [ -n "$last" ] && [ -n "$first" ] || fail "no heartbeat to compare (last='$last' first='$first')" || return 1
    gap=$((first - last))
    echo "  heartbeat: HB $last on host $src -> HB $first on host $dst"
    if [ $gap -lt 1 ] || [ $gap -gt 2 ]; then
        echo "  host $src since $soff: $(console_since "$src" "$soff" | tr '\n' ' ')" >&2
        echo "  host $dst since $doff: $(console_since "$dst" "$doff" | tr '\n' ' ')" >&2
        fail "heartbeat jumped from $last to $first" || return 1
    fi
    lastck=$(console_since "$src" 0 | grep '^CK' | tail -1 | cut -d' ' -f2)
    firstck=$(console_since "$dst" "$doff" | grep '^CK' | head -1 | cut -d' ' -f2)
    [ "${firstck:-0}" -gt "${lastck:-0}" ] ||
        fail "checksum rounds went back from $lastck to $firstck" || return 1
    bad=$(console_since "$dst" "$doff" | grep -c '^CK .* BAD' || true)
    [ "$bad" = 0 ] || fail "checksum workload reports BAD on host $dst" || return 1
    echo "  checksum: $(console_since "$dst" "$doff" | grep '^CK' | tail -1) on host $dst, 0 BAD"
}

# The completed job's statistics on the destination (read once: libvirt
# drops them after the first read).
job_stats() { virsh_h "$1" domjobinfo --completed guest > "$LAB/jobinfo"; }
# Memory the QEMU stream carried, in KiB.
memory_kib() {
    awk '/^Memory processed:/{
        v=$3; u=$4; if (u=="B") v/=1024; else if (u=="MiB") v*=1024; else if (u=="GiB") v*=1048576;
        printf "%d", v }' "$LAB/jobinfo"
}
job_field() { awk -F': *' -v k="$1" '$1==k{split($2, a, " "); print a[1]}' "$LAB/jobinfo"; }

scenario() { # name function
    name=$1
    shift
    lab_log "scenario: $name"
    t0=$(now)
    if "$@"; then
        PASSED=$((PASSED + 1))
        RESULTS="$RESULTS
PASS $(since "$t0") s  $name"
    else
        FAILED=$((FAILED + 1))
        RESULTS="$RESULTS
FAIL $(since "$t0") s  $name"
        return 1
    fi
}

s_boot() {
    virsh_h A create "$LAB/guest.xml" >/dev/null || fail "virsh create failed" || return 1
    wait_lines A 0 "GUEST-BOOTED" 1 "$BOOT_TIMEOUT" || return 1
    wait_lines A 0 "CK" 1 "$BOOT_TIMEOUT" || return 1
    echo "  booted in $(since "$t0") s"
    assert_state A "running (booted)" || return 1
    assert_relay A relay '"qemu-coco"' || return 1
    assert_relay A agent true
}

# The newest record of host $1's agent with role $2, as one line:
# "id state bytes pages bundles streams xfer_ms downtime_ms blackout_ms".
agent_record() {
    python3 - "$(host_dir "$1")/migrations" "$2" <<'PY'
import glob, json, os, sys
recs = []
for f in glob.glob(os.path.join(sys.argv[1], "*.json")):
    try:
        r = json.load(open(f))
    except (OSError, ValueError):
        continue
    if r.get("role") == sys.argv[2]:
        recs.append((os.path.getmtime(f), r))
if not recs:
    sys.exit(1)
r = max(recs, key=lambda x: x[0])[1]
t = r.get("transfer", {})
c = r.get("counters", {})
print(r.get("id"), r.get("state"), t.get("bytes", 0), t.get("pages", 0),
      t.get("bundles", 0), r.get("streams", 0), t.get("elapsed_ms", 0),
      c.get("downtime_us", 0) // 1000, c.get("blackout_us", 0) // 1000)
PY
}
records() { ls "$(host_dir "$1")/migrations" 2>/dev/null | wc -l; }
# Established agent-to-agent connections in host $1's namespace.
agent_conns() {
    ip netns exec "$NETNS_PREFIX$1" ss -Htn state established '( sport = :49300 or dport = :49300 )' | wc -l
}

# $1 src, $2 dst, $3... extra virsh migrate options. Guest RAM must move
# only through the agents: their records show the bytes, QEMU's stream
# stays small, both sessions end and leave no connection open.
migrate_and_check() {
    src=$1 dst=$2
    shift 2
    opts="$*"
    soff=$(console_size "$src")
    doff=$(console_size "$dst")
    held=$(grep -c "gate=migrate verdict=release" "$(host_dir "$src")/virtcocod.log")
    nsrc=$(records "$src")
    ndst=$(records "$dst")
    m0=$(now)
    out=$(virsh_h "$src" migrate --live "$@" guest "$(host_uri "$dst")" 2>&1) ||
        fail "virsh migrate failed: $out" || return 1
    wall=$(since "$m0")
    echo "  virsh migrate $* took $wall s"
    assert_no_domain "$src" || return 1
    assert_state "$dst" "running (migrated)" || return 1
    job_stats "$dst"
    kib=$(memory_kib)
    elapsed=$(job_field "Time elapsed")
    downtime=$(job_field "Total downtime")
    echo "  QEMU stream: ${kib} KiB of memory, elapsed $elapsed ms, downtime $downtime ms"
    [ "$kib" -lt 8192 ] || fail "QEMU moved ${kib} KiB of memory: x-ignore-shared was off" || return 1
    [ "$(records "$src")" -gt "$nsrc" ] && [ "$(records "$dst")" -gt "$ndst" ] ||
        fail "no new agent record on host $src or $dst" || return 1
    # The source's session ends when its QEMU is gone (Confirm).
    i=0
    while :; do
        srec=$(agent_record "$src" source) || srec=""
        drec=$(agent_record "$dst" destination) || drec=""
        sst=$(echo "$srec" | cut -d' ' -f2)
        dst_st=$(echo "$drec" | cut -d' ' -f2)
        case "$sst/$dst_st" in finished/committed | finished/finished) break ;; esac
        i=$((i + 1))
        [ $i -lt 100 ] || fail "agent sessions not over: source '$srec', destination '$drec'" || return 1
        sleep 0.1
    done
    echo "  agent $src (source): $srec"
    echo "  agent $dst (destination): $drec"
    set -- $srec
    bytes=$3 pages=$4 streams=$6 xfer=$7 adown=$8
    # All 192 MiB of guest RAM (49152 pages) crossed sealed, on 4 streams.
    [ "$pages" -ge 49152 ] && [ "$bytes" -ge $((192 * 1024 * 1024)) ] ||
        fail "the agents moved only $pages pages ($bytes bytes)" || return 1
    [ "$streams" = 4 ] || fail "the agents used $streams streams, not 4" || return 1
    [ "$(grep -c "gate=migrate verdict=release" "$(host_dir "$src")/virtcocod.log")" -gt "$held" ] ||
        fail "the relay did not hold 'migrate' for the agent's precopy" || return 1
    i=0
    while [ "$(agent_conns "$src")" != 0 ] || [ "$(agent_conns "$dst")" != 0 ]; do
        i=$((i + 1))
        [ $i -lt 50 ] || fail "agent connections still open after the migration" || return 1
        sleep 0.1
    done
    assert_continues "$src" "$soff" "$dst" "$doff" || return 1
    assert_relay "$dst" x-ignore-shared true || return 1
    MEASURE="$MEASURE
confidential $src->$dst $opts: wall ${wall} s, job elapsed $elapsed ms, downtime $downtime ms, QEMU stream $kib KiB, agents $bytes B / $pages pages / $streams streams in $xfer ms, agent downtime $adown ms"
}

s_migrate() { migrate_and_check A B; }
s_migrate_p2p() { migrate_and_check B A --p2p; }

s_save_restore() {
    soff=$(console_size A)
    doff=$(console_size B)
    out=$(virsh_h A save guest "$LAB/guest.save" 2>&1) || fail "virsh save failed: $out" || return 1
    assert_no_domain A || return 1
    size=$(stat -c %s "$LAB/guest.save")
    echo "  save image: $size bytes"
    # The image must hold the guest's RAM: x-ignore-shared was off.
    [ "$size" -gt $((64 * 1024 * 1024)) ] || fail "save image of $size bytes holds no RAM" || return 1
    out=$(virsh_h B restore "$LAB/guest.save" 2>&1) ||
        { host_diag B; fail "virsh restore on B failed: $out"; } || return 1
    assert_state B "running (restored)" || return 1
    assert_continues A "$soff" B "$doff" || return 1
    assert_relay B x-ignore-shared false || return 1
    rm -f "$LAB/guest.save"
}

s_libvirtd_restart() {
    R=$(host_dir B)
    old=$(cat "$R/libvirtd.pid")
    qpid=$(cat "$R/run/qemu/guest.pid")
    kill -TERM "$old"
    i=0
    while kill -0 "$old" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "libvirtd on B did not stop" || return 1; sleep 0.1
    done
    # The new daemon joins the namespaces the guest's QEMU lives in.
    setsid taskset -c 0 nsenter -t "$qpid" -m -u -n -- \
        /usr/sbin/libvirtd -f /etc/libvirt/libvirtd.conf -p /run/libvirt/libvirtd.pid \
        > "$R/libvirtd.out" 2>&1 < /dev/null &
    echo $! > "$R/libvirtd.pid"
    i=0
    until virsh_h B version >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 300 ] || fail "restarted libvirtd on B not ready" || return 1; sleep 0.1
    done
    assert_state B "running (restored)" || return 1
    # The relay served the new connection with a fresh QEMU session.
    assert_relay B sessions 1 || return 1
    migrate_and_check B A
}

# The domain's policy (libvirt's live metadata, read by the agent from the
# status file) allows only another platform: the source's firmware refuses
# host B at PREPARE, the agent refuses 'migrate', QEMU never starts the
# migration and the source runs on.
# libvirt puts the root element into --uri with the prefix --key (and fails
# when the element already declares that prefix); the children keep the
# namespace they are written in: the default namespace, the same URI.
POLICY_AGENT='<agent hash="000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"/>'
set_policy() { # host destinations-children
    virsh_h "$1" metadata guest --uri "$COCO_NS" --key coco --live --set \
        "<migration xmlns=\"$COCO_NS\" technology=\"tdx\">$POLICY_AGENT<destinations>$2</destinations><streams forward=\"4\" pagesPerBundle=\"64\"/></migration>"
}
s_refuse() {
    soff=$(console_size A)
    set_policy A '<platform id="abababababababababababababababababababababababababababababababab" name="elsewhere"/>' ||
        fail "cannot set the domain's policy" || return 1
    out=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1)
    rc=$?
    set_policy A '<minTcb component="module" svn="0"/>' || fail "cannot restore the policy" || return 1
    [ $rc != 0 ] || fail "migration succeeded although the policy forbids host B" || return 1
    echo "  virsh: $out"
    echo "$out" | grep -q "qemu-coco: the host agent refused" ||
        fail "the error does not name the agent's refusal" || return 1
    echo "$out" | grep -q "allowed" || fail "the error does not give the policy as the reason" || return 1
    rec=$(agent_record A source)
    echo "  agent A (source): $rec"
    [ "$(echo "$rec" | cut -d' ' -f2)" = aborted ] || fail "the source's session is not aborted" || return 1
    assert_no_domain B || return 1
    s=$(virsh_h A domstate --reason guest)
    case "$s" in
    "running"*) ;;
    *) fail "host A: source is '$s' after the refusal" || return 1 ;;
    esac
    echo "  source: $s"
    wait_lines A "$soff" "HB" 3 20 || return 1
    wait_lines A "$soff" "CK" 2 30 || return 1
    [ "$(console_since A "$soff" | grep -c 'BAD')" = 0 ] || fail "checksum BAD on A"
}

# Host B's agent is down: A's agent cannot reach its peer, refuses
# 'migrate' with the reason, the source runs on, B keeps no domain. B's
# agent is then started again as hosts-up.sh does.
s_peer_down() {
    R=$(host_dir B)
    p=$(cat "$R/virtcocod.pid")
    kill -TERM "$p"
    i=0
    while kill -0 "$p" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 50 ] || fail "virtcocod on B did not stop" || return 1; sleep 0.1
    done
    [ ! -e "$R/run/coco-agent.sock" ] || fail "virtcocod on B left its socket behind" || return 1
    soff=$(console_size A)
    m0=$(now)
    out=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1)
    rc=$?
    echo "  virsh migrate failed after $(since "$m0") s: $out"
    setsid nsenter --net="/run/netns/${NETNS_PREFIX}B" "$VIRTCOCOD" -f -c "$R/virtcocod.conf" \
        >> "$R/virtcocod.log" 2>&1 < /dev/null &
    echo $! > "$R/virtcocod.pid"
    [ $rc != 0 ] || fail "migration succeeded without the destination's agent" || return 1
    echo "$out" | grep -q "qemu-coco: the host agent refused to start the migration" ||
        fail "the error does not name the agent's refusal" || return 1
    rec=$(agent_record A source)
    echo "  agent A (source): $rec"
    [ "$(echo "$rec" | cut -d' ' -f2)" = failed ] || fail "the source's record is not 'failed'" || return 1
    assert_no_domain B || return 1
    s=$(virsh_h A domstate --reason guest)
    case "$s" in
    "running"*) ;;
    *) fail "host A: source is '$s' without a peer agent" || return 1 ;;
    esac
    wait_lines A "$soff" "HB" 3 20 || return 1
    [ "$(console_since A "$soff" | grep -c 'BAD')" = 0 ] || fail "checksum BAD on A" || return 1
    i=0
    until [ -S "$R/run/coco-agent.sock" ]; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "virtcocod on B did not come back" || return 1; sleep 0.1
    done
}

# Both hosts without agent_socket: qemu-coco must then be a pure relay.
# The guest moves into a no-agent QEMU by save/restore (no second boot).
s_no_agent() {
    for H in $HOSTS; do
        sed -i '/^agent_socket/d' "$(host_dir "$H")/sysconf/libvirt-coco/qemu-coco.conf"
    done
    soff=$(console_size A)
    out=$(virsh_h A save guest "$LAB/guest.save" 2>&1) || fail "virsh save failed: $out" || return 1
    out=$(virsh_h A restore "$LAB/guest.save" 2>&1) || fail "virsh restore failed: $out" || return 1
    rm -f "$LAB/guest.save"
    assert_relay A agent false || return 1
    soff=$(console_size A)
    doff=$(console_size B)
    m0=$(now)
    out=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1) ||
        fail "virsh migrate failed: $out" || return 1
    wall=$(since "$m0")
    assert_no_domain A || return 1
    assert_state B "running (migrated)" || return 1
    job_stats B
    kib=$(memory_kib)
    echo "  QEMU stream: ${kib} KiB of memory, elapsed $(job_field "Time elapsed") ms, downtime $(job_field "Total downtime") ms"
    MEASURE="$MEASURE
plain A->B (no agent): wall ${wall} s, job elapsed $(job_field "Time elapsed") ms, downtime $(job_field "Total downtime") ms, QEMU stream $kib KiB"
    # QEMU carried the RAM itself: the relay left x-ignore-shared alone.
    [ "$kib" -gt 65536 ] || fail "QEMU moved only ${kib} KiB without an agent" || return 1
    assert_continues A "$soff" B "$doff" || return 1
    assert_relay B x-ignore-shared null
}

s_destroy() {
    qpid=$(cat "$(host_dir B)/run/qemu/guest.pid")
    virsh_h B destroy guest >/dev/null || fail "destroy failed" || return 1
    i=0
    while pgrep -f "^$QEMU_COCO" >/dev/null; do
        i=$((i + 1)); [ $i -lt 50 ] || fail "a qemu-coco relay outlived its QEMU ($qpid)" || return 1; sleep 0.1
    done
    ls -d /tmp/qemu-coco-* >/dev/null 2>&1 && fail "relay socket directories left in /tmp: $(ls -d /tmp/qemu-coco-*)"
    return 0
}

scenario "boot on A through qemu-coco" s_boot &&
scenario "virsh migrate --live A->B" s_migrate &&
scenario "virsh migrate --live --p2p B->A" s_migrate_p2p &&
scenario "virsh save on A, restore on B" s_save_restore &&
scenario "libvirtd restart on B, then migrate B->A" s_libvirtd_restart &&
scenario "policy forbids host B: the agent refuses, source keeps running" s_refuse &&
scenario "agent on B down: A's agent refuses, source keeps running" s_peer_down &&
scenario "no agent configured: qemu-coco is a pure relay, A->B" s_no_agent &&
scenario "destroy: relay exits with QEMU" s_destroy

T_SCEN=$(since "$T_START")
trap - EXIT
created=$(cat "$LAB/created" 2>/dev/null)
"$E2E_DIR/hosts-down.sh"
# Nothing may be left: namespaces, veth, mounts, directories, processes.
leftover=""
ip netns list 2>/dev/null | grep -q "^$NETNS_PREFIX" && leftover="$leftover netns"
ip link show "${NETNS_PREFIX}A0" >/dev/null 2>&1 && leftover="$leftover veth"
[ -e "$LAB" ] && leftover="$leftover $LAB"
mount | grep -q "$LAB" && leftover="$leftover mounts"
for d in $created; do
    [ -e "$d" ] && leftover="$leftover $d"
done
for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = $$ ] && continue
    if tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q -e "$LAB" -e "$VIRTCOCOD"; then
        leftover="$leftover pid:${p#/proc/}"
    fi
done
echo "$RESULTS"
echo "measurements (same run):$MEASURE"
echo "lab: $PASSED passed, $FAILED failed; hosts up after $T_UP s, scenarios done at $T_SCEN s, total $(since "$T_START") s"
[ -z "$leftover" ] || { echo "FAIL: left behind:$leftover"; exit 1; }
[ $FAILED = 0 ] && [ $PASSED -gt 0 ]
