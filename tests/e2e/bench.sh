#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench.sh [BUILDDIR]: the lab benchmark (docs/performance.rst, "Lab
# benchmark"). In one lab run, the same guest kernel and workload
# (COCO_BENCH_MIB, default 256 MiB, 1 vCPU, TCG) as two domains on host A:
#   plain         anonymous RAM, <emulator> /usr/bin/qemu-system-x86_64, no
#                 <memoryBacking>, no <coco:migration>: QEMU's stream
#                 carries the RAM
#   confidential  the lab's guest: qemu-coco, shared file RAM, the
#                 <coco:migration> element; the RAM moves only through the
#                 two virtcocod's sealed pipeline
# Each round migrates each domain A->B->A live (the order of the two
# alternates between rounds; the other domain is suspended meanwhile so
# that it does not compete for the 2 cores). Per migration: the command's
# wall time, libvirt's completed-job statistics on the destination (time
# elapsed, downtime, bytes), the guest's longest pause seen from the host
# (tickgap.py: a tick line every COCO_BENCH_TICK seconds on the console),
# and for confidential ones the agents' records (sealed bytes, transfer
# time, the switchover's share), the host memory the domain holds after
# the migration (its QEMU's anonymous memory and, confidential, the RAM
# tmpfs in use) and the agents' largest anonymous memory during it. Prints
# medians and ranges per guest size and workload, the ratios
# confidential/plain and the verdict against the goals (issue 13): job time
# <= 1.2 x plain, downtime <= plain + 20 ms, host memory <= plain + 64 MiB,
# each agent's anonymous memory <= 64 MiB.
#
# Environment (besides the lab's, docs/lab.rst):
#   COCO_BENCH_ROUNDS        rounds (default 5; each is 4 migrations)
#   COCO_BENCH_MIB           guest memory in MiB (default 256); several
#                            ("192 1024 2048") are measured one after the
#                            other in the same lab run
#   COCO_BENCH_DIRTY         the guests' dirtying workload: percentages of
#                            their memory rewritten (coco.dirty_pct, at
#                            coco.dirty_mbps = COCO_BENCH_DIRTY_MBPS, default
#                            32), 0 = none (default "0"; e.g. "0 25")
#   COCO_BENCH_TICK          the guest's tick period in seconds (0.02)
#   COCO_BENCH_CONFIDENTIAL  the confidential migration command, run as
#                            "$1 -c SRCURI $2... DOMAIN DESTURI" (default
#                            "virt-coco migrate --confidential --live", run
#                            on the source host: its network namespace and
#                            agent socket, --migrateuri tcp:DESTADDR; or
#                            e.g. "virsh migrate --live")
#   COCO_BENCH_PRECOPY       the agents' precopy_rounds (default: the lab's);
#                            several ("1 2 3") measure each as its own kind
#                            (confidential-pN), the agents restarted between
#   COCO_BENCH_OUT           where the per-migration rows go (default
#                            COCO_LAB_CACHE/bench.txt; kept after the run)
# Exit 0 when every migration passed (whatever the verdict), 1 when one
# failed, 77 when the machine cannot host the lab.
set -u
if [ $# -ge 1 ]; then
    BUILD=$(cd "$1" && pwd) || exit 1
    QEMU_COCO=${QEMU_COCO:-$BUILD/tools/qemu-coco}
    VIRTCOCOD=${VIRTCOCOD:-$BUILD/tools/virtcocod}
    VIRT_COCO=${VIRT_COCO:-$BUILD/tools/virt-coco}
    COCO_LAB_CACHE=${COCO_LAB_CACHE:-$BUILD/e2e-cache}
    export COCO_LAB_CACHE VIRT_COCO
fi
. "$(dirname "$0")/lab-env.sh"
. "$E2E_DIR/lab-lib.sh"

ROUNDS=${COCO_BENCH_ROUNDS:-5}
MIBS=${COCO_BENCH_MIB:-256}
DIRTIES=${COCO_BENCH_DIRTY:-0}
DIRTY_MBPS=${COCO_BENCH_DIRTY_MBPS:-32}
TICK=${COCO_BENCH_TICK:-0.02}
CONF_CMD=${COCO_BENCH_CONFIDENTIAL:-virt-coco migrate --confidential --live}
PLAIN_CMD="virsh migrate --live"
BOOT_TIMEOUT=${COCO_LAB_BOOT_TIMEOUT:-180}
OUT=${COCO_BENCH_OUT:-$CACHE/bench.txt}
PLAIN_QEMU=/usr/bin/qemu-system-x86_64
case "$CONF_CMD" in
virt-coco\ *) [ -n "${VIRT_COCO:-}" ] && CONF_CMD="$VIRT_COCO ${CONF_CMD#virt-coco }" ;;
esac

T_START=$(now)
# The shared RAM tmpfs holds both hosts' copies of the largest guest.
max=0
for m in $MIBS; do [ "$m" -le "$max" ] || max=$m; done
COCO_LAB_RAM_SIZE=${COCO_LAB_RAM_SIZE:-$((2 * max + 1024))m}
export COCO_LAB_RAM_SIZE
lab_start
WATCH=""
lab_on_exit '[ -z "$WATCH" ] || kill "$WATCH" 2>/dev/null'

# The agents' precopy_rounds: restart both agents with $1 (the relays
# reconnect to the socket at the next event).
CUR_PRECOPY=$(awk -F' *= *' '$1=="precopy_rounds"{print $2}' "$(host_dir A)/virtcocod.conf")
set_precopy() {
    [ "$1" = "$CUR_PRECOPY" ] && return 0
    for H in $HOSTS; do
        agent_rounds "$H" "$1" || return 1
    done
    CUR_PRECOPY=$1
}
PRECOPY=${COCO_BENCH_PRECOPY:-$CUR_PRECOPY}
KINDS=plain
for p in $PRECOPY; do
    case "$p" in *[!0-9]* | "") lab_die "COCO_BENCH_PRECOPY: '$p' is not a number of rounds" ;; esac
    if [ "$PRECOPY" = "$p" ]; then KINDS="$KINDS confidential"; else KINDS="$KINDS confidential-p$p"; fi
done

# The plain domain's QEMU: probe its capabilities once and give them to B.
virsh_h A domcapabilities --emulatorbin "$PLAIN_QEMU" --virttype qemu --arch x86_64 >/dev/null ||
    lab_die "host A cannot probe $PLAIN_QEMU"
cp -f "$(host_dir A)"/cache/qemu/capabilities/*.xml "$(host_dir B)/cache/qemu/capabilities/"

dom_console() { echo "$(host_dir "$1")/log/qemu/$2-console.log"; }
dom_size() { stat -c %s "$(dom_console "$1" "$2")" 2>/dev/null || echo 0; }
dom_since() { # host domain offset
    tail -c +"$(($3 + 1))" "$(dom_console "$1" "$2")" 2>/dev/null | tr -d '\r' |
        grep -a -E '^(HB |CK |GUEST|T |DIRTY-READY)' || true
}
DOM_SILENT="" # the last guest dom_wait gave up on: "host domain"
dom_wait() { # host domain offset prefix count timeout
    i=0
    while [ "$(dom_since "$1" "$2" "$3" | grep -c "^$4")" -lt "$5" ]; do
        i=$((i + 1))
        [ $i -le $(($6 * 10)) ] || {
            DOM_SILENT="$1 $2"
            fail "host $1: $2 printed fewer than $5 '$4' lines in $6 s"
            return 1
        }
        sleep 0.1
    done
}
# "name value" pairs of the completed job on host $1 (raw: ms and bytes);
# -1 for a figure libvirt did not give (libvirt hands a completed job's
# statistics out once: a migration command that reads them itself leaves
# none; the summary then says "n/a").
dom_job() { virsh_h "$1" domjobinfo --completed --rawstats "$2" > "$LAB/jobinfo" 2>&1 || : > "$LAB/jobinfo"; }
raw() { awk -F': *' -v k="$1" '$1==k{print $2; f=1} END{if(!f) print -1}' "$LAB/jobinfo"; }

booted() { # domain console-offset (the console files are appended to)
    dom_wait A "$1" "$2" "GUEST-BOOTED" 1 "$BOOT_TIMEOUT" && dom_wait A "$1" "$2" "CK" 1 "$BOOT_TIMEOUT" &&
        dom_wait A "$1" "$2" "T" 10 30 &&
        { [ "$DIRTY" = 0 ] || dom_wait A "$1" "$2" "DIRTY-READY" 1 "$BOOT_TIMEOUT"; }
}

# Host memory the domain $2 holds on host $1 after a migration, KiB: its
# QEMU's anonymous memory, and for a confidential guest the RAM tmpfs in
# use (both hosts' guest RAM files, and any a process still maps).
dom_mem() {
    q=$(awk '/^RssAnon/{print $2}' "/proc/$(cat "$(host_dir "$1")/run/qemu/$2.pid")/status" 2>/dev/null || echo 0)
    f=0
    [ "$3" = plain ] || f=$(df -k --output=used "$LAB/ram" | tail -1)
    echo $((${q:-0} + f))
}
# Sample the agents' anonymous memory (KiB) every 50 ms into $1 (the
# largest value seen) until killed.
anon_watch() {
    m=0
    while :; do
        for H in $HOSTS; do
            v=$(awk '/^RssAnon/{print $2}' "/proc/$(cat "$(host_dir "$H")/virtcocod.pid")/status" 2>/dev/null)
            [ "${v:-0}" -le "$m" ] || m=$v
        done
        echo "$m" > "$1"
        sleep 0.05
    done
}
ANONW=""
lab_on_exit '[ -z "$ANONW" ] || kill "$ANONW" 2>/dev/null'
lab_log "bench: confidential command: $CONF_CMD"

: > "$OUT.tmp"
# One measured migration of domain $2 (kind $1) from $3 to $4.
bench_migrate() {
    kind=$1 dom=$2 src=$3 dst=$4
    case $kind in
    plain) cmd=$PLAIN_CMD ;;
    *) cmd=$CONF_CMD ;;
    esac
    load=$(cut -d' ' -f1 /proc/loadavg)
    soff=$(dom_size "$src" "$dom")
    doff=$(dom_size "$dst" "$dom")
    nsrc=$(records "$src")
    python3 "$E2E_DIR/tickgap.py" watch "$LAB/ticks" "$(dom_console "$src" "$dom")" \
        "$(dom_console "$dst" "$dom")" &
    WATCH=$!
    # The stopwatch runs once it has the console open (python starts
    # slowly on a busy machine).
    i=0
    while ! ls -l "/proc/$WATCH/fd" 2>/dev/null | grep -q -- "-console.log"; do
        i=$((i + 1)); [ $i -lt 300 ] || { kill "$WATCH"; WATCH=""; fail "the tick watcher did not start"; return 1; }
        sleep 0.1
    done
    dom_wait "$src" "$dom" "$soff" T 50 20 || return 1 # the baseline second
    prog=${cmd%% *}
    args=${cmd#"$prog"}
    echo 0 > "$LAB/anon"
    anon_watch "$LAB/anon" &
    ANONW=$!
    m0=$(now)
    # virt-coco runs on the source host (its namespace, its agent's
    # socket); the migration URI names the destination's address.
    wrap="" extra=""
    case "$prog" in
    *virt-coco)
        wrap="ip netns exec $NETNS_PREFIX$src env VIRT_COCO_AGENT_SOCKET=$(host_dir "$src")/run/coco-agent.sock"
        extra="--migrateuri tcp:$(host_ip "$dst")"
        ;;
    esac
    # shellcheck disable=SC2086
    out=$($wrap "$prog" -c "$(host_uri "$src")" $args $extra "$dom" "$(host_uri "$dst")" 2>&1) ||
        { kill "$WATCH" "$ANONW"; WATCH="" ANONW=""; fail "$kind $src->$dst: migration failed: $out"; return 1; }
    m1=$(now)
    # The guest may run on the destination well before the command returns:
    # wait for ticks after it returned.
    d1=$(dom_size "$dst" "$dom")
    dom_wait "$dst" "$dom" "$d1" T 10 30 || { kill "$WATCH" "$ANONW"; WATCH="" ANONW=""; return 1; }
    kill "$WATCH"
    wait "$WATCH"
    WATCH=""
    kill "$ANONW"
    wait "$ANONW" 2>/dev/null
    ANONW=""
    anon=$(cat "$LAB/anon")
    mem=$(dom_mem "$dst" "$dom" "$kind")
    wall=$(awk "BEGIN{printf \"%.0f\", ($m1 - $m0) * 1000}")
    dom_job "$dst" "$dom"
    elapsed=$(raw time_elapsed) down=$(raw downtime) data=$(raw data_processed)
    abytes=0 axfer=0 adown=0 aprecopy=0 aswitch=0 arounds=0 ascan=0 ats=""
    if [ "$kind" != plain ]; then
        i=0
        while [ "$(records "$src")" -le "$nsrc" ] ||
            ! agent_record "$src" source | grep -q " finished "; do
            i=$((i + 1)); [ $i -lt 100 ] || fail "the source's agent session did not finish" || return 1
            sleep 0.1
        done
        set -- $(bench_record "$src")
        abytes=$1 axfer=$2 adown=$3 aprecopy=$4 aswitch=$5 arounds=$6 ascan=$7 ats=$8
        # libvirt's job counts the agents' sealed copy (the relay reports
        # it); QEMU's own stream is the rest: device state only.
        data=$((data > abytes ? data - abytes : 0))
        [ "$data" -lt $((8 * 1024 * 1024)) ] ||
            fail "confidential: QEMU's stream carried $data bytes (x-ignore-shared off?)" || return 1
    fi
    # shellcheck disable=SC2086
    set -- $(python3 "$E2E_DIR/tickgap.py" gap "$LAB/ticks" "$m0" "$m1" $ats)
    gap=$1 gguest=$4 base=$5 lost=$6 gapat=$7 swgap=$8
    [ "$gap" != -1 ] || { cp "$LAB/ticks" "$OUT.ticks"; fail "$kind $src->$dst: no tick before $m0 or after $m1 ($OUT.ticks)"; } || return 1
    # One tick line may go missing at the switch (seen once in about 100
    # migrations, under load: the counter jumped by two, no fragment of the
    # line in either console; run.sh allows one heartbeat line lost too);
    # the pause then counts one tick too many (about 20 ms).
    [ "$lost" -le 1 ] || fail "$kind $src->$dst: $lost guest ticks lost" || return 1
    # The guest goes on with its memory intact.
    dom_wait "$dst" "$dom" "$doff" CK 1 30 || return 1
    bad=$(dom_since "$dst" "$dom" "$doff" | grep -c '^CK .*BAD' || true)
    [ "$bad" = 0 ] || fail "$kind $src->$dst: checksum BAD on $dst" || return 1
    row="$kind $src$dst $wall $elapsed $down $data $abytes $gap $base $gguest $axfer $adown $aprecopy $aswitch $arounds $ascan $gapat $swgap $load $MIB $DIRTY $mem $anon"
    echo "$row" >> "$OUT.tmp"
    printf '  %-12s %s->%s  wall %5s ms  job %5s ms  downtime %4s ms  pause %6s ms at +%5s ms (idle %5s; at the switchover %6s)  QEMU %9s B  agents %9s B  memory after %7s KiB  agents anon %6s KiB\n' \
        "$kind" "$src" "$dst" "$wall" "$elapsed" "$down" "$gap" "$gapat" "$base" "$swgap" "$data" "$abytes" "$mem" "$anon"
}

# The newest source record of host $1: "bytes transfer_ms final_ms
# precopy_ms switchover_ms rounds scan_ms switchover_at": final = the agent's downtime
# counter (SOURCE_BLACKOUT to migrate-continue released: the last pages,
# the vCPU state, the start token), precopy = the first copy and the
# rounds while 'migrate' is held, switchover = from QEMU's pre-switchover
# (guest stopped) to migrate-continue released, scan = its part before
# SOURCE_BLACKOUT, switchover_at its start (seconds since the epoch).
bench_record() {
    python3 - "$(host_dir "$1")/migrations" <<'PY'
import datetime, glob, json, os, sys
recs = []
for f in glob.glob(os.path.join(sys.argv[1], "*.json")):
    try:
        r = json.load(open(f))
    except (OSError, ValueError):
        continue
    if r.get("role") == "source":
        recs.append((os.path.getmtime(f), r))
r = max(recs, key=lambda x: x[0])[1]
t, c, tl = r.get("transfer", {}), r.get("counters", {}), r.get("timeline", [])
pre = [e for e in tl if e["event"] in ("peer-setup-done", "peer-round-done")]
sw = [e for e in tl if e["event"] == "pre-switchover"]
precopy = sum(e["duration_ms"] for e in pre)
# From QEMU's pre-switchover (vCPUs stopped) to SOURCE_BLACKOUT done: the
# last dirty scan and the firmware's check of every exported page.
scan = c.get("blackout_us", 0) / 1000 - sw[0]["at_ms"] if sw and c.get("blackout_us") else 0
t0 = datetime.datetime.fromisoformat(r["started"].replace("Z", "+00:00")).timestamp()
at = "%.6f" % (t0 + sw[0]["at_ms"] / 1000) if sw else ""
print(t.get("bytes", 0), t.get("elapsed_ms", 0), round(c.get("downtime_us", 0) / 1000),
      round(precopy), round(sw[0]["duration_ms"]) if sw else 0, c.get("rounds", 0), round(scan), at)
PY
}

# The plain reference is QEMU's own migration. QEMU 7.2's TCG migration
# has crashed a plain guest on its destination (a kernel oops in the timer
# interrupt right after the switch, or a guest that hangs there without a
# kernel message; twice in about 40 plain migrations on
# a quiet machine, never a confidential one): such a guest is recreated
# and its pair of migrations run again, once per size, and the crash is
# reported with the table. Any other failure ends the benchmark.
PLAIN_CRASHES=""
PLAIN_DROPPED=""
# The first kernel oops or panic on host $1's console of domain $2 after
# byte offset $3, or nothing. A guest that fell silent on that host
# (dom_wait gave up on it) without one hung: that too.
console_oops() {
    co_m=$(tail -c +"$(($3 + 1))" "$(dom_console "$1" "$2")" 2>/dev/null | tr -d '\r' |
        grep -a -m1 -E 'Kernel panic|BUG: |Oops' || true)
    [ -n "$co_m" ] || [ "$DOM_SILENT" != "$1 $2" ] ||
        co_m="it stopped printing on host $1 after the switch (no kernel message)"
    echo "$co_m"
}
bench_pair() { # kind domain
    DOM_SILENT=""
    bp_a=$(dom_size A "$2") bp_b=$(dom_size B "$2")
    bench_migrate "$1" "$2" A B && bench_migrate "$1" "$2" B A && return 0
    [ "$1" = plain ] || return 1
    bp_why=$(console_oops A "$2" "$bp_a")
    [ -n "$bp_why" ] || bp_why=$(console_oops B "$2" "$bp_b")
    [ -n "$bp_why" ] || return 1
    case "$PLAIN_CRASHES" in *"${MIB} MiB/${DIRTY} %"*) return 1 ;; esac
    PLAIN_CRASHES="$PLAIN_CRASHES ${MIB} MiB/${DIRTY} %: $bp_why;"
    lab_log "bench: the plain guest crashed after QEMU's migration ($bp_why): recreated, its pair runs again"
    [ -z "$WATCH" ] || kill "$WATCH" 2>/dev/null
    [ -z "$ANONW" ] || kill "$ANONW" 2>/dev/null
    WATCH="" ANONW=""
    for H in $HOSTS; do virsh_h "$H" destroy "$2" >/dev/null 2>&1; done
    bp_off=$(dom_size A "$2")
    virsh_h A create "$LAB/plain.xml" >/dev/null && booted "$2" "$bp_off" ||
        { fail "the plain guest did not come back"; return 1; }
    bp_a=$(dom_size A "$2") bp_b=$(dom_size B "$2")
    DOM_SILENT=""
    bench_migrate "$1" "$2" A B && bench_migrate "$1" "$2" B A && return 0
    bp_why=$(console_oops A "$2" "$bp_a")
    [ -n "$bp_why" ] || bp_why=$(console_oops B "$2" "$bp_b")
    [ -n "$bp_why" ] || return 1
    # Crashed again: this size goes on without its plain reference.
    PLAIN_CRASHES="$PLAIN_CRASHES again ($bp_why): no plain reference at this size;"
    lab_log "bench: the plain guest crashed again ($bp_why): this size has no plain reference"
    [ -z "$WATCH" ] || kill "$WATCH" 2>/dev/null
    [ -z "$ANONW" ] || kill "$ANONW" 2>/dev/null
    WATCH="" ANONW=""
    sed -i "/^plain .* $MIB $DIRTY [0-9]* [0-9]*\$/d" "$OUT.tmp"
    PLAIN_DROPPED="$MIB/$DIRTY"
    for H in $HOSTS; do virsh_h "$H" destroy "$2" >/dev/null 2>&1; done
    return 0
}

# One size and workload: create both domains on A, the rounds, destroy.
bench_size() {
    MIB=$1 DIRTY=$2
    args="cocotick=$TICK"
    [ "$DIRTY" = 0 ] || args="$args coco.dirty_pct=$DIRTY coco.dirty_mbps=$DIRTY_MBPS"
    guest_xml guest "$MIB" "$QEMU_COCO" confidential "$args" > "$LAB/confidential.xml"
    guest_xml plain "$MIB" "$PLAIN_QEMU" plain "$args" > "$LAB/plain.xml"
    lab_log "bench: $ROUNDS rounds of $KINDS; ${MIB} MiB guests, dirtying ${DIRTY} %, tick $TICK s, precopy_rounds $PRECOPY"
    t0=$(now)
    goff=$(dom_size A guest) poff=$(dom_size A plain)
    virsh_h A create "$LAB/confidential.xml" >/dev/null || { fail "cannot create the confidential guest"; return 1; }
    virsh_h A create "$LAB/plain.xml" >/dev/null || { fail "cannot create the plain guest"; return 1; }
    booted guest "$goff" || { fail "the confidential guest did not boot"; return 1; }
    booted plain "$poff" || { fail "the plain guest did not boot"; return 1; }
    lab_log "bench: both guests booted in $(since "$t0") s"
    # The plain domain runs only while it is measured, and so does the other.
    virsh_h A suspend plain >/dev/null
    r=0
    nk=$(echo $KINDS | wc -w)
    while [ $r -lt "$ROUNDS" ]; do
        r=$((r + 1))
        # Rotate the order from round to round: a drift in the machine's load
        # falls on every kind alike.
        set -- $KINDS
        k=1
        while [ $k -lt $(((r - 1) % nk + 1)) ]; do
            first=$1; shift; set -- "$@" "$first"; k=$((k + 1))
        done
        order="$*"
        lab_log "bench: round $r of $ROUNDS ($order)"
        for kind in $order; do
            [ "$kind" != plain ] || [ "$PLAIN_DROPPED" != "$MIB/$DIRTY" ] || continue
            case $kind in
            plain) dom=plain other=guest ;;
            confidential) dom=guest other=plain; set_precopy "$PRECOPY" || return 1 ;;
            *) dom=guest other=plain; set_precopy "${kind#confidential-p}" || return 1 ;;
            esac
            virsh_h A suspend "$other" >/dev/null 2>&1
            virsh_h A resume "$dom" >/dev/null 2>&1
            bench_pair "$kind" "$dom" || return 1
        done
    done
    for d in guest plain; do
        for H in $HOSTS; do virsh_h "$H" destroy "$d" >/dev/null 2>&1; done
    done
    return 0
}

failed=0
for MIB in $MIBS; do
    for DIRTY in $DIRTIES; do
        bench_size "$MIB" "$DIRTY" || { failed=1; break 2; }
    done
done
mv "$OUT.tmp" "$OUT"

# Medians, ranges, ratios and the verdict.
python3 "$E2E_DIR/benchsummary.py" "$OUT" "$MIBS" "$ROUNDS" "$PRECOPY" "$CONF_CMD"
[ -z "$PLAIN_CRASHES" ] || echo "Plain guests that crashed after QEMU's own migration (recreated, the pair run again):$PLAIN_CRASHES"
lab_log "bench: rows in $OUT; total $(since "$T_START") s"
[ $failed = 0 ]
