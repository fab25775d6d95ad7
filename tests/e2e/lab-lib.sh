# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by run.sh and the scenario files (tests/e2e/scenarios-*.sh):
# helpers that look at both hosts (consoles, libvirt, agents, relays) and
# the scenario runner. Needs lab-env.sh sourced first.

now() { date +%s.%N; }

# The prologue of every lab driver (run.sh, bench.sh, demo.sh): root and
# the built binaries, the lab lock (the lab directory, namespaces and
# addresses are fixed: one lab at a time on a machine, a second one waits
# for the first), the guest, both hosts up, and a trap that takes them
# down however the driver ends. Exits 77 when the machine cannot host the
# lab (LAB_SKIP_RC instead, when set). The caller may add to the EXIT trap
# with lab_on_exit.
lab_start() {
    [ "$(id -u)" = 0 ] || lab_skip "the lab needs root (namespaces, mounts, libvirtd)"
    [ -n "${QEMU_COCO:-}" ] && [ -x "$QEMU_COCO" ] || lab_die "set QEMU_COCO to the built qemu-coco"
    [ -n "${VIRTCOCOD:-}" ] && [ -x "$VIRTCOCOD" ] || lab_die "set VIRTCOCOD to the built virtcocod"
    QEMU_COCO=$(readlink -f "$QEMU_COCO")
    VIRTCOCOD=$(readlink -f "$VIRTCOCOD")
    export QEMU_COCO VIRTCOCOD
    exec 9> /run/coco-lab.lock
    if ! flock -n 9; then
        lab_log "another lab holds /run/coco-lab.lock: waiting for it"
        flock 9
    fi
    # From here on the lab is ours: take it down however this ends (a
    # signal too: without a trap for it, dash skips the EXIT trap). Not
    # before the lock: the lab up meanwhile is another run's.
    LAB_EXIT_HOOK=${LAB_EXIT_HOOK:-:}
    trap 'eval "$LAB_EXIT_HOOK"; "$E2E_DIR/hosts-down.sh"' EXIT
    trap 'exit 130' INT TERM HUP
    "$E2E_DIR/build-guest.sh" "$CACHE/guest" >&2 || lab_die "cannot build the guest"
    "$E2E_DIR/hosts-up.sh"
    rc=$?
    [ $rc = 77 ] && exit "${LAB_SKIP_RC:-77}"
    [ $rc = 0 ] || lab_die "hosts-up.sh failed"
}
# Commands to run before the lab goes down at exit.
lab_on_exit() { LAB_EXIT_HOOK="${LAB_EXIT_HOOK:-:}; $*"; }

# guest_xml NAME MIB EMULATOR KIND [KERNEL-ARGS]: the lab guest's domain
# XML (tests/e2e/guest.xml.in) on stdout. KIND "confidential": the
# <coco:migration> element and shared file-backed RAM; "plain": neither
# (anonymous RAM, a domain any QEMU migrates by itself). The console goes to
# /var/log/libvirt/qemu/NAME-console.log on the host that runs it.
guest_xml() {
    case "$1" in
    guest) uuid=c0c0c0c0-1111-4222-8333-444455556666 ;;
    *) uuid=c0c0c0c0-1111-4222-8333-$(printf '%s' "$1" | md5sum | cut -c1-12) ;;
    esac
    sed -e "s|@GUEST@|$CACHE/guest|" -e "s|@EMULATOR@|$3|" -e "s|@NAME@|$1|g" \
        -e "s|@UUID@|$uuid|" -e "s|@MEMORY@|$2|" -e "s|@CMDLINE@|${5:+ $5}|" \
        "$E2E_DIR/guest.xml.in" |
        if [ "$4" = plain ]; then
            sed -e '/<metadata>/,/<\/metadata>/d' -e '/<memoryBacking>/,/<\/memoryBacking>/d'
        else
            cat
        fi
}
since() { awk "BEGIN{printf \"%.1f\", $(now) - $1}"; }

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
job_total_kib() {
    awk '/^Memory total:/{
        v=$3; u=$4; if (u=="B") v/=1024; else if (u=="MiB") v*=1024; else if (u=="GiB") v*=1048576;
        printf "%d", v }' "$LAB/jobinfo"
}
job_field() { awk -F': *' -v k="$1" '$1==k{split($2, a, " "); print a[1]}' "$LAB/jobinfo"; }

# COCO_LAB_ONLY: an extended regular expression; scenarios whose name does
# not match it are skipped (for working on a few scenarios; a skipped one
# may leave the guest elsewhere than the next one expects).
scenario() { # name function
    name=$1
    shift
    if [ -n "${COCO_LAB_ONLY:-}" ] && ! echo "$name" | grep -Eq "$COCO_LAB_ONLY"; then
        RESULTS="$RESULTS
SKIP        $name"
        return 0
    fi
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

# The default migration command of migrate_and_check: $1 src, $2 dst,
# $3... extra virsh migrate options.
migrate_virsh() {
    msrc=$1 mdst=$2
    shift 2
    virsh_h "$msrc" migrate --live "$@" guest "$(host_uri "$mdst")"
}

# $1 src, $2 dst, $3... extra options of the migration command:
# MIGRATE_CMD (a function called with the same arguments; default
# migrate_virsh). Guest RAM must move only through the agents: their
# records show the bytes, QEMU's stream stays small, both sessions end and
# leave no connection open.
migrate_and_check() {
    src=$1 dst=$2
    shift 2
    opts="$*"
    cmd=${MIGRATE_CMD:-migrate_virsh}
    soff=$(console_size "$src")
    doff=$(console_size "$dst")
    held=$(grep -c "gate=migrate verdict=release" "$(host_dir "$src")/virtcocod.log")
    nsrc=$(records "$src")
    ndst=$(records "$dst")
    m0=$(now)
    out=$("$cmd" "$src" "$dst" "$@" 2>&1) ||
        fail "$cmd failed: $out" || return 1
    wall=$(since "$m0")
    echo "  $cmd $* took $wall s"
    assert_no_domain "$src" || return 1
    assert_state "$dst" "running (migrated)" || return 1
    job_stats "$dst"
    kib=$(memory_kib)
    elapsed=$(job_field "Time elapsed")
    downtime=$(job_field "Total downtime")
    total_kib=$(job_total_kib)
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
    # libvirt's job statistics count the agents' private memory too (the
    # relay adds the agent's numbers to QEMU's query-migrate): QEMU's own
    # stream is the rest.
    qkib=$((kib - bytes / 1024))
    [ "$qkib" -ge 0 ] || qkib=$kib
    echo "  job: ${kib} KiB processed of ${total_kib} KiB, QEMU stream ${qkib} KiB, elapsed $elapsed ms, downtime $downtime ms"
    [ "$qkib" -lt 8192 ] || fail "QEMU moved ${qkib} KiB of memory: x-ignore-shared was off" || return 1
    [ "$total_kib" -ge $((192 * 1024)) ] ||
        fail "libvirt's job total (${total_kib} KiB) does not count the private memory" || return 1
    # The pages the guest uses crossed sealed, on 4 streams: at least what
    # the destination's RAM file holds now (pages the guest never touched
    # stay holes on both hosts, docs/firmware-emulated.rst), and at least
    # the checksum workload's 16 MiB.
    ramkib=$(du -sk "$LAB/ram/$dst" | cut -f1)
    [ "$pages" -ge 4096 ] && [ "$pages" -ge $((ramkib / 4)) ] && [ "$bytes" -ge $((pages * 4096)) ] ||
        fail "the agents moved only $pages pages ($bytes bytes), the destination holds $ramkib KiB" || return 1
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
confidential $src->$dst ${MIGRATE_CMD:+$MIGRATE_CMD }$opts: wall ${wall} s, job elapsed $elapsed ms, downtime $downtime ms, QEMU stream $qkib KiB (job $kib KiB), agents $bytes B / $pages pages / $streams streams in $xfer ms, agent downtime $adown ms"
}

# The guest runs on at host A (after a refused or aborted migration): its
# state is running, at least $2 heartbeats (default 3) and $3 checksum
# rounds (default 1; 0: none waited for) on its console since offset $1,
# and no checksum round failed.
assert_a_runs() {
    ar_off=$1 ar_hb=${2:-3} ar_ck=${3:-1}
    ar_s=$(virsh_h A domstate --reason guest 2>&1)
    echo "  host A: $ar_s"
    case "$ar_s" in
    "running"*) ;;
    *) fail "host A: the source is '$ar_s', not running" || return 1 ;;
    esac
    wait_lines A "$ar_off" "HB" "$ar_hb" 20 || return 1
    [ "$ar_ck" = 0 ] || wait_lines A "$ar_off" "CK" "$ar_ck" 30 || return 1
    echo "  host A: heartbeat on to '$(console_since A 0 | grep '^HB' | tail -1)', $(console_since A "$ar_off" | grep -c '^CK') checksum rounds since"
    [ "$(console_since A "$ar_off" | grep -c 'BAD')" = 0 ] || fail "checksum BAD on A"
}

# Start host $1's agent as hosts-up.sh does, extra options $2...
agent_start() {
    as_h=$1
    shift
    as_r=$(host_dir "$as_h")
    # A killed agent leaves its socket behind; the new one replaces it.
    rm -f "$as_r/run/coco-agent.sock"
    # The host's private D-Bus (scenarios-dbus.sh), when it has one.
    as_bus=""
    as_sys=""
    [ -f "$as_r/dbus.address" ] && as_bus=$(cat "$as_r/dbus.address")
    [ -f "$as_r/sysbus.address" ] && as_sys=$(cat "$as_r/sysbus.address")
    setsid env ${as_bus:+DBUS_SESSION_BUS_ADDRESS="$as_bus"} \
        ${as_sys:+DBUS_SYSTEM_BUS_ADDRESS="$as_sys"} \
        nsenter --net="/run/netns/$NETNS_PREFIX$as_h" "$VIRTCOCOD" -f -c "$as_r/virtcocod.conf" "$@" \
        >> "$as_r/virtcocod.log" 2>&1 < /dev/null &
    echo $! > "$as_r/virtcocod.pid"
    i=0
    until [ -S "$as_r/run/coco-agent.sock" ]; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "virtcocod on $as_h did not come back" || return 1; sleep 0.1
    done
}

# Stop host $1's agent (SIGTERM; it ends its sessions and removes its
# socket) and wait until it is gone.
agent_stop() {
    ao_p=$(cat "$(host_dir "$1")/virtcocod.pid")
    kill -TERM "$ao_p" 2>/dev/null
    i=0
    while kill -0 "$ao_p" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 50 ] || fail "virtcocod on $1 did not stop" || return 1; sleep 0.1
    done
}

# Restart host $1's agent, extra options $2...
agent_restart() {
    ar_h=$1
    shift
    agent_stop "$ar_h" || return 1
    agent_start "$ar_h" "$@"
}

# Restart host $1's agent with precopy_rounds = $2 in its configuration
# (the relay reconnects on its own when it next needs the agent).
agent_rounds() {
    sed -i "s/^precopy_rounds = .*/precopy_rounds = $2/" "$(host_dir "$1")/virtcocod.conf"
    agent_restart "$1"
}
