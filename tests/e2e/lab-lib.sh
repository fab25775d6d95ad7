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
    # The installed layout is built and staged before the lock: the
    # compiler does not hold the lab up for another run.
    if [ "$LAB_LAYOUT" = installed ]; then
        "$E2E_DIR/stage-install.sh" || lab_die "cannot stage the installed layout"
    fi
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

# LAB_MEMCHECK=1 (run.sh, demo.sh): the guests guest_xml writes run the
# whole-memory check (cocomem=1: MEM lines, build-guest.sh), and
# assert_continues and assert_a_runs require its rounds and no BAD among
# them. Off by default (the benchmark's guests do not run it).
LAB_MEMCHECK=${LAB_MEMCHECK:-0}

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
    gx_args=${5:-}
    [ "$LAB_MEMCHECK" != 1 ] || gx_args="${gx_args:+$gx_args }cocomem=1"
    sed -e "s|@GUEST@|$CACHE/guest|" -e "s|@EMULATOR@|$3|" -e "s|@NAME@|$1|g" \
        -e "s|@UUID@|$uuid|" -e "s|@MEMORY@|$2|" -e "s|@CMDLINE@|${gx_args:+ $gx_args}|" \
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
# The guest's lines on host $1's console after byte offset $2.
console_since() { tail -c +"$(($2 + 1))" "$(console "$1")" 2>/dev/null | sed -n -E 's/\r//g; /^(HB|CK|MEM|PAGEBAD|GUEST)/p'; }
count_since() { console_since "$1" "$2" | grep -c "^$3" || true; }
# Lines that report damaged memory (checksum or whole-memory rounds).
bad_since() { console_since "$1" "$2" | grep -c -E '^(CK .*BAD|MEM .*BAD|PAGEBAD)' || true; }

# Every assertion helper below prints "assertion failed: WHY" on stderr
# and returns non-zero when its condition is false (tests/e2e/
# lab-lib-selftest.sh feeds each one a false condition); callers chain
# them with "|| return 1".
fail() { echo "  assertion failed: $*" >&2; return 1; }
# is_count VALUE: VALUE is a non-negative decimal number.
is_count() { case "$1" in '' | *[!0-9]*) return 1 ;; esac; }
# polls SECONDS: how many times a wait loop polls (every 0.1 s) in SECONDS.
polls() { echo $(($1 * 10)); }

# What host $1's libvirtd sees of its log and state directories.
host_diag() {
    pid=$(cat "$(host_dir "$1")/libvirtd.pid")
    echo "  host $1 ($pid): $(ls -la "$(host_dir "$1")/log" "$(host_dir "$1")/log/qemu" 2>&1 | tr '\n' ' ')" >&2
    nsenter -t "$pid" -m -- sh -c 'findmnt -o TARGET,SOURCE /var/log/libvirt; ls -la /var/log/libvirt /var/log/libvirt/qemu' 2>&1 | sed 's/^/  in ns: /' >&2
}

# wait_lines HOST OFFSET PREFIX COUNT TIMEOUT: at least COUNT lines
# starting with PREFIX (a basic regular expression) on HOST's console after
# OFFSET, within TIMEOUT seconds.
wait_lines() {
    wl_i=0
    while :; do
        wl_n=$(count_since "$1" "$2" "$3")
        is_count "$wl_n" || fail "host $1: cannot count the '$3' lines: '$wl_n'" || return 1
        [ "$wl_n" -lt "$4" ] || return 0
        wl_i=$((wl_i + 1))
        if [ $wl_i -gt "$(polls "$5")" ]; then
            echo "  host $1's console since $2: $(console_since "$1" "$2" | tail -n 6 | tr '\n' '|')" >&2
            fail "host $1: $wl_n '$3' lines after $5 s, expected at least $4"
            return 1
        fi
        sleep 0.1
    done
}

assert_state() { # host "state (reason)"
    as_s=$(virsh_h "$1" domstate --reason guest 2>&1)
    [ "$as_s" = "$2" ] || fail "host $1: domain state '$as_s', expected '$2'"
}

assert_no_domain() {
    if virsh_h "$1" domstate guest >/dev/null 2>&1; then
        fail "host $1 still has the domain ($(virsh_h "$1" domstate --reason guest))"
    fi
}

relay_state() { virsh_h "$1" qemu-monitor-command guest '{"execute":"x-coco-query-relay"}'; }

# assert_relay HOST KEY VALUE: x-coco-query-relay on HOST answers KEY with
# exactly VALUE (JSON as the relay writes it, compact: 1, true, null,
# '"none"'; "sessions":1 is not "sessions":10).
assert_relay() {
    rl_st=$(relay_state "$1") || fail "host $1: x-coco-query-relay failed: $rl_st" || return 1
    case "$rl_st" in
    *"\"$2\":$3,"* | *"\"$2\":$3}"*) ;;
    *) fail "host $1: relay state lacks \"$2\":$3: $rl_st" ;;
    esac
}

# console_stats HOST OFFSET: the guest's rounds after OFFSET, one line
# "hb_first hb_last ck_first ck_last mem_first mem_last bad" (round
# numbers of the first and last HB, CK and MEM lines, "-" for none; bad:
# the lines that report damaged memory).
console_stats() {
    console_since "$1" "$2" | awk '
        $1 ~ /^(HB|CK|MEM)$/ && $2 ~ /^[0-9]+$/ { if (!($1 in f)) f[$1] = $2; l[$1] = $2 }
        /^(CK .*BAD|MEM .*BAD|PAGEBAD)/ { bad++ }
        function v(a, k) { return (k in a) ? a[k] : "-" }
        END { print v(f, "HB"), v(l, "HB"), v(f, "CK"), v(l, "CK"), v(f, "MEM"), v(l, "MEM"), bad + 0 }'
}

# The guest continues where it was after it moved from $1 (console offset
# $2 before) to $3 (console offset $4 before): the destination's first
# heartbeat follows the source's last one, the checksum rounds (and the
# whole-memory rounds, LAB_MEMCHECK=1) go on from the source's last one,
# and no round on either host reported damage since the offsets.
assert_continues() {
    ac_src=$1 ac_soff=$2 ac_dst=$3 ac_doff=$4
    wait_lines "$ac_dst" "$ac_doff" "HB" 2 30 || return 1
    wait_lines "$ac_dst" "$ac_doff" "CK" 2 40 || return 1
    # A whole-memory round is longer than a checksum round.
    [ "$LAB_MEMCHECK" != 1 ] || wait_lines "$ac_dst" "$ac_doff" "MEM" 2 60 || return 1
    # The source's log only grows: its last lines are the guest's last ones
    # there (it may have printed nothing since $ac_soff).
    read -r ac_x ac_hb ac_x ac_ck ac_x ac_mem ac_x <<EOF
$(console_stats "$ac_src" 0)
EOF
    read -r ac_x ac_x ac_x ac_x ac_x ac_x ac_sbad <<EOF
$(console_stats "$ac_src" "$ac_soff")
EOF
    read -r ac_dhb ac_x ac_dck ac_x ac_dmem ac_x ac_dbad <<EOF
$(console_stats "$ac_dst" "$ac_doff")
EOF
    is_count "$ac_hb" && is_count "$ac_dhb" ||
        fail "no heartbeat to compare (last '$ac_hb' on host $ac_src, first '$ac_dhb' on host $ac_dst)" || return 1
    echo "  heartbeat: HB $ac_hb on host $ac_src -> HB $ac_dhb on host $ac_dst"
    if [ $((ac_dhb - ac_hb)) -lt 1 ] || [ $((ac_dhb - ac_hb)) -gt 2 ]; then
        echo "  host $ac_src since $ac_soff: $(console_since "$ac_src" "$ac_soff" | tr '\n' ' ')" >&2
        echo "  host $ac_dst since $ac_doff: $(console_since "$ac_dst" "$ac_doff" | tr '\n' ' ')" >&2
        fail "heartbeat jumped from $ac_hb to $ac_dhb" || return 1
    fi
    is_count "$ac_ck" && is_count "$ac_dck" && [ "$ac_dck" -gt "$ac_ck" ] ||
        fail "checksum rounds went from '$ac_ck' on host $ac_src to '$ac_dck' on host $ac_dst" || return 1
    ac_rounds="CK $ac_ck -> $ac_dck"
    if [ "$LAB_MEMCHECK" = 1 ]; then
        is_count "$ac_mem" && is_count "$ac_dmem" && [ "$ac_dmem" -gt "$ac_mem" ] ||
            fail "whole-memory rounds went from '$ac_mem' on host $ac_src to '$ac_dmem' on host $ac_dst" || return 1
        ac_rounds="$ac_rounds, MEM $ac_mem -> $ac_dmem"
    fi
    [ "$ac_sbad" = 0 ] ||
        fail "host $ac_src: the guest reports damaged memory: $(console_since "$ac_src" "$ac_soff" | grep 'BAD' | head -n 3 | tr '\n' '|')" || return 1
    [ "$ac_dbad" = 0 ] ||
        fail "host $ac_dst: the guest reports damaged memory: $(console_since "$ac_dst" "$ac_doff" | grep 'BAD' | head -n 3 | tr '\n' '|')" || return 1
    echo "  rounds: $ac_rounds; 0 BAD on host $ac_src since $ac_soff and on host $ac_dst since $ac_doff"
}

# The completed job's statistics on the destination (read once: libvirt
# drops them after the first read).
job_stats() {
    virsh_h "$1" domjobinfo --completed guest > "$LAB/jobinfo" 2>&1 &&
        grep -q '^Memory processed:' "$LAB/jobinfo" ||
        fail "host $1: no completed job statistics: $(cat "$LAB/jobinfo")"
}
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
        # The agents' last words, for a failure seen only in CI's output.
        for sc_h in $HOSTS; do
            echo "  --- host $sc_h: the last lines of its agent's log" >&2
            tail -n 25 "$(host_dir "$sc_h")/virtcocod.log" 2>/dev/null | cut -c1-400 >&2
            # libvirt's domain jobs: which API waited for which, and when.
            echo "  --- host $sc_h: libvirt's last domain jobs" >&2
            grep -a -E 'virDomainObjBeginJobInternal|virDomainObjEndJob|Waiting for job|Cannot start job' \
                "$(host_dir "$sc_h")/log/libvirtd.log" 2>/dev/null | tail -n 12 | cut -c1-300 >&2
            # The calls libvirtd took from its clients (proc: the remote
            # protocol's procedure number), to tell a call that waited
            # for a job from one that never reached the driver.
            echo "  --- host $sc_h: libvirt's last dispatched calls" >&2
            grep -a 'virNetServerProgramDispatch' "$(host_dir "$sc_h")/log/libvirtd.log" 2>/dev/null |
                tail -n 12 | cut -c1-200 >&2
        done
        return 1
    fi
}

s_boot() {
    virsh_h A create "$LAB/guest.xml" >/dev/null || fail "virsh create failed" || return 1
    wait_lines A 0 "GUEST-BOOTED" 1 "$BOOT_TIMEOUT" || return 1
    wait_lines A 0 "CK" 1 "$BOOT_TIMEOUT" || return 1
    echo "  booted in $(since "$t0") s"
    if [ "$LAB_MEMCHECK" = 1 ]; then
        wait_lines A 0 "MEM" 1 "$BOOT_TIMEOUT" || return 1
        assert_memcheck_covers A || return 1
    fi
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
# The whole-memory check on host $1's guest covers at least half of the
# memory the guest's kernel manages (MemTotal; it takes what the guest can
# allocate: the kernel, the shell loops and the checksum files keep the
# rest). Its line: "GUEST-MEM pages P MiB M of MemTotal T MiB, ...".
assert_memcheck_covers() {
    mc_line=$(console_since "$1" 0 | grep '^GUEST-MEM pages ' | tail -n 1)
    mc_mib=$(echo "$mc_line" | cut -d' ' -f5)
    mc_total=$(echo "$mc_line" | cut -d' ' -f8)
    is_count "$mc_mib" && is_count "$mc_total" ||
        fail "host $1: no whole-memory check size: '$mc_line'" || return 1
    echo "  whole-memory check: $mc_line"
    [ $((mc_mib * 2)) -ge "$mc_total" ] ||
        fail "host $1: the whole-memory check covers only $mc_mib MiB of the guest's $mc_total MiB"
}

records() { ls "$(host_dir "$1")/migrations" 2>/dev/null | wc -l; }
# Established agent-to-agent connections in host $1's namespace ("?" when
# they cannot be listed: never taken for none).
agent_conns() {
    ac_out=$(ip netns exec "$NETNS_PREFIX$1" ss -Htn state established '( sport = :49300 or dport = :49300 )') ||
        { echo "?"; return 1; }
    [ -z "$ac_out" ] && echo 0 || echo "$ac_out" | wc -l
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
# leave no connection open. MIGRATE_STATE: the destination's domain state
# once the command returned (default "running (migrated)").
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
    # The blocks of the source's RAM file (only the files': du would add
    # the directories' own): the pages the guest has used, all of which
    # must cross sealed.
    ramkib=$(find "$LAB/ram/$src" -type f -printf '%b\n' | awk '{s += $1} END {print int(s / 2)}')
    m0=$(now)
    out=$("$cmd" "$src" "$dst" "$@" 2>&1) ||
        fail "$cmd failed: $out" || return 1
    wall=$(since "$m0")
    [ -z "$out" ] || echo "$out"
    echo "  $cmd $* took $wall s"
    assert_no_domain "$src" || return 1
    assert_state "$dst" "${MIGRATE_STATE:-running (migrated)}" || return 1
    job_stats "$dst" || return 1
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
        [ $i -lt "$(polls 10)" ] || fail "agent sessions not over: source '$srec', destination '$drec'" || return 1
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
    # the source's RAM file held before the migration (pages the guest
    # never touched stay holes on both hosts, docs/firmware-emulated.rst;
    # the destination's file is no measure: the guest, running on there,
    # may touch new pages before it is read, and the destination's QEMU
    # writes a few pages of its own while it starts), and at least the
    # checksum workload's 16 MiB.
    [ "$pages" -ge 4096 ] && [ "$pages" -ge $((ramkib / 4)) ] && [ "$bytes" -ge $((pages * 4096)) ] ||
        fail "the agents moved only $pages pages ($bytes bytes), the source held $ramkib KiB before" || return 1
    [ "$streams" = 4 ] || fail "the agents used $streams streams, not 4" || return 1
    [ "$(grep -c "gate=migrate verdict=release" "$(host_dir "$src")/virtcocod.log")" -gt "$held" ] ||
        fail "the relay did not hold 'migrate' for the agent's precopy" || return 1
    i=0
    while [ "$(agent_conns "$src")" != 0 ] || [ "$(agent_conns "$dst")" != 0 ]; do
        i=$((i + 1))
        [ $i -lt "$(polls 5)" ] || fail "agent connections still open after the migration: A $(agent_conns "$src"), B $(agent_conns "$dst")" || return 1
        sleep 0.1
    done
    assert_continues "$src" "$soff" "$dst" "$doff" || return 1
    assert_relay "$dst" x-ignore-shared true || return 1
    MEASURE="$MEASURE
confidential $src->$dst ${MIGRATE_CMD:+$MIGRATE_CMD }$opts: wall ${wall} s, job elapsed $elapsed ms, downtime $downtime ms, QEMU stream $qkib KiB (job $kib KiB), agents $bytes B / $pages pages / $streams streams in $xfer ms, agent downtime $adown ms"
}

# The guest runs on at host A after a refused or aborted migration, $1
# the console offset before the event: the domain is running; after this
# call (after the event) at least $2 heartbeats (default 2), two checksum
# rounds and, with LAB_MEMCHECK=1, two whole-memory rounds (the second of
# each ran entirely after the event); and no round reported damage since
# $1. Extra arguments are ignored.
assert_a_runs() {
    ar_off=$1 ar_hb=${2:-2}
    is_count "$ar_off" || fail "assert_a_runs: '$ar_off' is not a console offset" || return 1
    [ "$ar_hb" -ge 1 ] 2>/dev/null || ar_hb=2
    ar_s=$(virsh_h A domstate --reason guest 2>&1)
    echo "  host A: $ar_s"
    case "$ar_s" in
    "running"*) ;;
    *) fail "host A: the source is '$ar_s', not running" || return 1 ;;
    esac
    ar_now=$(console_size A)
    wait_lines A "$ar_now" "HB" "$ar_hb" 20 || return 1
    wait_lines A "$ar_now" "CK" 2 30 || return 1
    [ "$LAB_MEMCHECK" != 1 ] || wait_lines A "$ar_now" "MEM" 2 60 || return 1
    echo "  host A: heartbeat on to '$(console_since A 0 | grep '^HB' | tail -1)', since the event: $(console_since A "$ar_now" | grep -E '^(CK|MEM) ' | tr '\n' ' ')"
    ar_bad=$(bad_since A "$ar_off")
    [ "$ar_bad" = 0 ] ||
        fail "host A: the guest reports damaged memory: $(console_since A "$ar_off" | grep 'BAD' | head -n 3 | tr '\n' '|')"
}

# The guest's RAM file on host $1 (the one file under its
# memory_backing_dir, hosts-up.sh).
ram_file() {
    rf_f=$(find "$LAB/ram/$1" -type f 2>/dev/null)
    [ -n "$rf_f" ] && [ "$(echo "$rf_f" | wc -l)" = 1 ] ||
        fail "host $1: not one guest RAM file under $LAB/ram/$1: '$rf_f'" || return 1
    echo "$rf_f"
}

# ram_digest FILE OUT: one BLAKE2b-128 digest per 4 KiB page of FILE, to
# OUT (for ram_compare; the file may be gone by then).
ram_digest() {
    python3 - "$1" "$2" <<'PY' || fail "cannot read the RAM file '$1'"
import hashlib, sys
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "wb") as out:
    while True:
        page = f.read(4096)
        if not page:
            break
        out.write(hashlib.blake2b(page, digest_size=16).digest())
PY
}

# ram_compare DIGEST FILE: FILE's pages have the digests of DIGEST
# (ram_digest), one for one: the same size, no page differs.
ram_compare() {
    rc_out=$(python3 - "$1" "$2" <<'PY'
import hashlib, sys
want = open(sys.argv[1], "rb").read()
n = len(want) // 16
diff = []
pages = 0
with open(sys.argv[2], "rb") as f:
    while True:
        page = f.read(4096)
        if not page:
            break
        if pages >= n or hashlib.blake2b(page, digest_size=16).digest() != want[pages * 16:pages * 16 + 16]:
            diff.append(pages)
        pages += 1
print("%d pages of %d differ%s" % (len(diff) + max(0, n - pages), n,
      (": first " + " ".join(str(p) for p in diff[:8])) if diff else ""))
sys.exit(0 if not diff and pages == n and n > 0 else 1)
PY
)
    rc_rc=$?
    echo "  RAM: $rc_out"
    [ $rc_rc = 0 ] || fail "the guest's RAM differs: $rc_out"
}

# MIGRATE_CMD for migrate_and_check (with MIGRATE_STATE="running
# (unpaused)"): the whole memory, byte for byte. The guest is paused on
# $1; its RAM file then holds what must arrive (a paused guest does not
# write to its memory, and the source's file is gone after Confirm), so
# its pages' digests are taken before the migration; the migration $1->$2
# (virsh migrate --live $3...) leaves the guest paused on $2 (libvirt
# keeps the reason: "paused (user)"), whose RAM file must have the same
# pages before the guest runs again there; then the guest is resumed on
# $2.
migrate_paused() {
    mp_src=$1 mp_dst=$2
    shift 2
    virsh_h "$mp_src" suspend guest >/dev/null || fail "virsh suspend on $mp_src failed" || return 1
    assert_state "$mp_src" "paused (user)" || return 1
    mp_ram=$(ram_file "$mp_src") || return 1
    mp_t=$(now)
    ram_digest "$mp_ram" "$LAB/ram-$mp_src.digest" || return 1
    echo "  RAM of the paused guest on $mp_src: $(stat -c %s "$mp_ram") bytes, digests in $(since "$mp_t") s"
    mp_off=$(console_size "$mp_dst")
    mp_out=$(virsh_h "$mp_src" migrate --live "$@" guest "$(host_uri "$mp_dst")" 2>&1) ||
        fail "virsh migrate --live $* of the paused guest failed: $mp_out" || return 1
    assert_state "$mp_dst" "paused (user)" || return 1
    ram_compare "$LAB/ram-$mp_src.digest" "$(ram_file "$mp_dst")" || return 1
    [ "$(count_since "$mp_dst" "$mp_off" HB)" = 0 ] ||
        fail "the guest ran on $mp_dst before it was resumed" || return 1
    virsh_h "$mp_dst" resume guest >/dev/null || fail "virsh resume on $mp_dst failed" || return 1
    rm -f "$LAB/ram-$mp_src.digest"
}

# Start host $1's agent as hosts-up.sh does, extra options $2...
agent_start() {
    as_h=$1
    shift
    as_r=$(host_dir "$as_h")
    # A killed agent leaves its socket behind; the new one replaces it.
    rm -f "$(agent_sock "$as_h")"
    if [ "$LAB_LAYOUT" = installed ]; then
        agent_spawn_installed "$as_h" "$@"
        agent_wait_sock "$as_h"
        return
    fi
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
    agent_wait_sock "$as_h"
}
# Wait until host $1's agent serves its socket.
agent_wait_sock() {
    aw_i=0
    until [ -S "$(agent_sock "$1")" ]; do
        aw_i=$((aw_i + 1))
        [ $aw_i -lt 100 ] || fail "virtcocod on $1 did not come back: $(tail -n 3 "$(host_dir "$1")/virtcocod.log")" || return 1
        sleep 0.1
    done
}

# Stop host $1's agent (SIGTERM; it ends its sessions and removes its
# socket) and wait until it is gone.
agent_stop() {
    ao_p=$(cat "$(host_dir "$1")/virtcocod.pid" 2>/dev/null)
    is_count "$ao_p" && [ "$ao_p" -gt 1 ] || fail "host $1: no virtcocod pid ('$ao_p')" || return 1
    kill -TERM "$ao_p" 2>/dev/null
    ao_i=0
    while kill -0 "$ao_p" 2>/dev/null; do
        ao_i=$((ao_i + 1)); [ $ao_i -lt 50 ] || fail "virtcocod on $1 did not stop" || return 1; sleep 0.1
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
    grep -q "^precopy_rounds = $2\$" "$(host_dir "$1")/virtcocod.conf" ||
        fail "host $1: cannot set precopy_rounds = $2 in virtcocod.conf" || return 1
    agent_restart "$1"
}
