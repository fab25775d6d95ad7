#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench-concurrent.sh [BUILDDIR]: concurrent confidential migrations
# (docs/performance.rst, "Concurrent migrations"; issue 11). Four
# confidential guests (COCO_BENCH_MIB, default 192 MiB, 1 vCPU, TCG, the
# benchmark guest's tick and checksum workload) on the two hosts; each
# repetition migrates them
#   single    one at a time (the reference: each guest's own figures)
#   same-2    two at once, both the same way (A->B, or B->A)
#   cross-2   two at once, one A->B and one B->A
#   same-4    four at once, all the same way
#   cross-4   four at once, two A->B and two B->A
# with "virsh migrate --live" started for all of them at the same instant;
# only the guests that move run, the others are paused meanwhile (so N
# guests and their N migrations share the cores). Per migration: libvirt's
# completed-job statistics on the destination (time elapsed, downtime), the
# guest's pause across the switch (its last tick on the source to its
# first on the destination) and its longest pause (tickgap.py), the source agent's
# record (its switchover step: from QEMU's pre-switchover to
# migrate-continue released, and when it began). Per event: the two agents'
# CPU time (utime + stime from /proc), the machine's busy CPU (/proc/stat)
# and the load average. benchconc.py prints medians and ranges per case and
# the verdict: each guest's median downtime (and pause) at most 1.2 x its
# own single-migration median divided by its CPU share (N migrations on C
# cores: each gets min(1, C/N) of the machine). The same events with four
# plain guests (p1..p4: anonymous RAM, /usr/bin/qemu-system-x86_64, no
# relay or agent) in the same run measure what concurrency costs QEMU and
# libvirt themselves, the reference for the confidential ratios.
#
# Environment (besides the lab's, docs/lab.rst):
#   COCO_BENCH_REPS   repetitions (default 3; each is, per kind, 4 single
#                     and 16 concurrent migrations in 10 events)
#   COCO_BENCH_MIB    each guest's memory in MiB (default 192)
#   COCO_BENCH_TICK   the guests' tick period in seconds (0.02)
#   COCO_BENCH_PLAIN  0: no plain reference guests (default 1)
#   COCO_BENCH_OUT    the per-migration rows (default
#                     COCO_LAB_CACHE/bench-concurrent.txt; kept, and the
#                     agents' logs and records in OUT.agents/)
# Exit 0 when every migration passed (whatever the verdict), 1 when one
# failed, 77 when the machine cannot host the lab.
set -u
if [ $# -ge 1 ]; then
    BUILD=$(cd "$1" && pwd) || exit 1
    QEMU_COCO=${QEMU_COCO:-$BUILD/tools/qemu-coco}
    VIRTCOCOD=${VIRTCOCOD:-$BUILD/tools/virtcocod}
    COCO_LAB_CACHE=${COCO_LAB_CACHE:-$BUILD/e2e-cache}
    export COCO_LAB_CACHE
fi
. "$(dirname "$0")/lab-env.sh"
. "$E2E_DIR/lab-lib.sh"

REPS=${COCO_BENCH_REPS:-3}
MIB=${COCO_BENCH_MIB:-192}
TICK=${COCO_BENCH_TICK:-0.02}
OUT=${COCO_BENCH_OUT:-$CACHE/bench-concurrent.txt}
BOOT_TIMEOUT=${COCO_LAB_BOOT_TIMEOUT:-240}
CONF_GUESTS="c1 c2 c3 c4"
PLAIN_GUESTS=""
[ "${COCO_BENCH_PLAIN:-1}" = 0 ] || PLAIN_GUESTS="p1 p2 p3 p4"
GUESTS="$CONF_GUESTS${PLAIN_GUESTS:+ $PLAIN_GUESTS}"
PLAIN_QEMU=/usr/bin/qemu-system-x86_64
CORES=$(nproc)

T_START=$(now)
# Every guest's RAM file on both hosts while they all move.
COCO_LAB_RAM_SIZE=${COCO_LAB_RAM_SIZE:-$((8 * MIB + 512))m}
export COCO_LAB_RAM_SIZE
lab_start
WATCHERS=""
lab_on_exit 'for w in $WATCHERS; do kill "$w" 2>/dev/null; done'
# The agents' logs and records outlive the lab: the timelines of every
# migration, for a closer look at a slow one.
lab_on_exit 'rm -rf "$OUT.agents"; for H in $HOSTS; do mkdir -p "$OUT.agents/$H" && cp -a "$(host_dir "$H")/virtcocod.log" "$(host_dir "$H")/migrations" "$OUT.agents/$H/" 2>/dev/null; done'

dom_console() { echo "$(host_dir "$1")/log/qemu/$2-console.log"; }
dom_size() { stat -c %s "$(dom_console "$1" "$2")" 2>/dev/null || echo 0; }
dom_since() { # host domain offset
    tail -c +"$(($3 + 1))" "$(dom_console "$1" "$2")" 2>/dev/null | tr -d '\r' |
        grep -a -E '^(HB |CK |GUEST|T )' || true
}
dom_wait() { # host domain offset prefix count timeout
    dw_i=0
    while [ "$(dom_since "$1" "$2" "$3" | grep -c "^$4")" -lt "$5" ]; do
        dw_i=$((dw_i + 1))
        [ $dw_i -le $(($6 * 10)) ] || fail "host $1: $2 printed fewer than $5 '$4' lines in $6 s" || return 1
        sleep 0.1
    done
}
# A guest's kind: the plain reference guests are p1..p4.
kind_of() { case "$1" in p*) echo plain ;; *) echo confidential ;; esac; }
# Where each guest runs: LOC_<guest>.
loc() { eval "echo \$LOC_$1"; }
# Per-guest variables of the current event: $1 variable, $2 guest.
gv() { eval "echo \${$1_$2}"; }

# The agents' CPU time in clock ticks (utime + stime, all threads), and the
# machine's busy and total ticks: "agents busy total".
cpu_snap() {
    cs_a=0
    for H in $HOSTS; do
        cs_v=$(awk '{print $14 + $15}' "/proc/$(cat "$(host_dir "$H")/virtcocod.pid")/stat" 2>/dev/null)
        is_count "${cs_v:-x}" || fail "host $H: cannot read the agent's CPU time" || return 1
        cs_a=$((cs_a + cs_v))
    done
    echo "$cs_a $(awk '/^cpu /{t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit}' /proc/stat)"
}

: > "$OUT.tmp"
EV=0
# One event of case $1: the guests $2... migrate at once, each from where it
# runs to the other host.
bench_event() {
    case=$1
    shift
    kind=$(kind_of "$1")
    EV=$((EV + 1))
    n=$#
    # Only the guests that move run (each with its migration gets its share
    # of the cores): the others are paused meanwhile.
    for g in $GUESTS; do
        case " $* " in
        *" $g "*) virsh_h "$(loc "$g")" resume "$g" >/dev/null 2>&1 ;;
        *) virsh_h "$(loc "$g")" suspend "$g" >/dev/null 2>&1 ;;
        esac
    done
    load=$(cut -d' ' -f1 /proc/loadavg)
    WATCHERS=""
    for g in "$@"; do
        s=$(loc "$g")
        d=$(other_host "$s")
        eval "SRC_$g=$s DST_$g=$d SOFF_$g=$(dom_size "$s" "$g") DOFF_$g=$(dom_size "$d" "$g")"
        python3 "$E2E_DIR/tickgap.py" watch "$LAB/ticks.$g" "$(dom_console "$s" "$g")" \
            "$(dom_console "$d" "$g")" &
        eval "WATCH_$g=$!"
        WATCHERS="$WATCHERS $!"
    done
    # Every stopwatch runs once it has its console open.
    for w in $WATCHERS; do
        i=0
        while ! ls -l "/proc/$w/fd" 2>/dev/null | grep -q -- "-console.log"; do
            i=$((i + 1)); [ $i -lt 300 ] || fail "a tick watcher did not start" || return 1
            sleep 0.1
        done
    done
    for g in "$@"; do
        dom_wait "$(gv SRC "$g")" "$g" "$(gv SOFF "$g")" T 25 20 || return 1
    done
    c0=$(cpu_snap) || return 1
    t0=$(now)
    pids=""
    for g in "$@"; do
        (
            m0=$(now)
            out=$(virsh_h "$(gv SRC "$g")" migrate --live "$g" "$(host_uri "$(gv DST "$g")")" 2>&1)
            rc=$?
            echo "$m0 $(now) $rc" > "$LAB/mig.$g"
            [ $rc = 0 ] || echo "$out" > "$LAB/mig.$g.err"
        ) &
        pids="$pids $!"
    done
    for p in $pids; do wait "$p"; done
    t1=$(now)
    c1=$(cpu_snap) || return 1
    mfail=""
    for g in "$@"; do
        read -r m0 m1 rc < "$LAB/mig.$g"
        eval "M0_$g=$m0 M1_$g=$m1"
        if [ "$rc" = 0 ]; then
            eval "LOC_$g=$(gv DST "$g")"
        else
            mfail="$mfail $g: $(cat "$LAB/mig.$g.err")"
        fi
    done
    [ -z "$mfail" ] || { fail "$case: migration failed:$mfail"; return 1; }
    # The guests may run on their destinations well before the commands
    # returned: ticks after they returned.
    for g in "$@"; do
        d=$(gv DST "$g")
        dom_wait "$d" "$g" "$(dom_size "$d" "$g")" T 10 30 || return 1
    done
    for g in "$@"; do
        w=$(gv WATCH "$g")
        kill "$w"
        wait "$w"
    done
    WATCHERS=""
    for g in "$@"; do
        s=$(gv SRC "$g") d=$(gv DST "$g") m0=$(gv M0 "$g") m1=$(gv M1 "$g")
        virsh_h "$d" domjobinfo --completed --rawstats "$g" > "$LAB/jobinfo" 2>&1 || : > "$LAB/jobinfo"
        job=$(awk -F': *' '$1=="time_elapsed"{print $2; f=1} END{if(!f) print -1}' "$LAB/jobinfo")
        down=$(awk -F': *' '$1=="downtime"{print $2; f=1} END{if(!f) print -1}' "$LAB/jobinfo")
        i=0
        rec="-1 -1 -1 -1" # a plain migration has no agent record
        [ "$(kind_of "$g")" = plain ] ||
            until rec=$(python3 "$E2E_DIR/benchconc.py" record "$(host_dir "$s")/migrations" "$g" "$m0"); do
                i=$((i + 1)); [ $i -lt 100 ] || fail "$case: $g's source record did not finish" || return 1
                sleep 0.1
            done
        # rec: "switchover_ms final_ms transfer_ms switchover_at"
        # shellcheck disable=SC2046
        set -- $(python3 "$E2E_DIR/tickgap.py" gap "$LAB/ticks.$g" "$m0" "$m1")
        gap=$1 base=$5 lost=$6
        [ "$gap" != -1 ] || { cp "$LAB/ticks.$g" "$OUT.ticks"; fail "$case $g $s->$d: no tick before or after ($OUT.ticks)"; } || return 1
        # The guest's pause across the switch: its last tick on the source
        # to its first on the destination.
        swgap=$(python3 "$E2E_DIR/benchconc.py" switch "$LAB/ticks.$g")
        [ "$swgap" != -1 ] || { cp "$LAB/ticks.$g" "$OUT.ticks"; fail "$case $g $s->$d: no tick on the source or the destination ($OUT.ticks)"; } || return 1
        [ "$lost" -le 1 ] || fail "$case $g $s->$d: $lost guest ticks lost" || return 1
        dom_wait "$d" "$g" "$(gv DOFF "$g")" CK 1 30 || return 1
        bad=$(dom_since "$d" "$g" "$(gv DOFF "$g")" | grep -c '^CK .*BAD' || true)
        [ "$bad" = 0 ] || fail "$case $g $s->$d: checksum BAD on $d" || return 1
        wall=$(awk "BEGIN{printf \"%.0f\", ($m1 - $m0) * 1000}")
        echo "mig $(kind_of "$g") $case $n $EV $g $s$d $wall $job $down $gap $base $swgap $rec $load" >> "$OUT.tmp"
        printf '  %-8s %s %s->%s  wall %5s ms  job %5s ms  downtime %4s ms  pause across the switch %6s ms (longest %6s, idle %5s)  agent switchover/last/transfer %s\n' \
            "$case" "$g" "$s" "$d" "$wall" "$job" "$down" "$swgap" "$gap" "$base" "${rec% *}"
    done
    read -r a0 b0 z0 <<EOF
$c0
EOF
    read -r a1 b1 z1 <<EOF
$c1
EOF
    ms=$(awk "BEGIN{printf \"%.0f\", ($t1 - $t0) * 1000}")
    # Clock ticks to ms (USER_HZ), and the machine's busy share of all cores.
    hz=$(getconf CLK_TCK)
    echo "cpu $kind $case $n $EV $ms $(((a1 - a0) * 1000 / hz)) $(((b1 - b0) * 1000 / (z1 - z0 > 0 ? z1 - z0 : 1))) $load" >> "$OUT.tmp"
    lab_log "bench: $kind $case: $n migration(s) in $ms ms, agents' CPU $(((a1 - a0) * 1000 / hz)) ms, machine busy $(((b1 - b0) * 100 / (z1 - z0 > 0 ? z1 - z0 : 1))) %, load $load"
}

# Each guest on A, booted, ticking.
bench_boot() {
    if [ -n "$PLAIN_GUESTS" ]; then
        # The plain guests' QEMU: probe its capabilities once and give them to B.
        virsh_h A domcapabilities --emulatorbin "$PLAIN_QEMU" --virttype qemu --arch x86_64 >/dev/null ||
            { fail "host A cannot probe $PLAIN_QEMU"; return 1; }
        cp -f "$(host_dir A)"/cache/qemu/capabilities/*.xml "$(host_dir B)/cache/qemu/capabilities/"
    fi
    for g in $GUESTS; do
        if [ "$(kind_of "$g")" = plain ]; then
            guest_xml "$g" "$MIB" "$PLAIN_QEMU" plain "cocotick=$TICK"
        else
            guest_xml "$g" "$MIB" "$QEMU_COCO" confidential "cocotick=$TICK"
        fi > "$LAB/$g.xml"
        eval "BOFF_$g=$(dom_size A "$g")"
        virsh_h A create "$LAB/$g.xml" >/dev/null || { fail "cannot create $g"; return 1; }
        eval "LOC_$g=A"
    done
    for g in $GUESTS; do
        dom_wait A "$g" "$(gv BOFF "$g")" GUEST-BOOTED 1 "$BOOT_TIMEOUT" &&
            dom_wait A "$g" "$(gv BOFF "$g")" CK 1 "$BOOT_TIMEOUT" &&
            dom_wait A "$g" "$(gv BOFF "$g")" T 10 30 || { fail "$g did not boot"; return 1; }
    done
}

# One repetition of one kind's four guests $1..$4: they start on one host
# and end on the other; the single migrations also put them where the
# crossing cases need them.
bench_rep_kind() {
    bench_event same-4 "$1" "$2" "$3" "$4" && # all on Y
        bench_event single "$1" && bench_event single "$3" && # 1 3 on X
        bench_event cross-4 "$1" "$2" "$3" "$4" && # 2 4 on X
        bench_event cross-2 "$1" "$2" && bench_event cross-2 "$3" "$4" && # 1 3 on X
        bench_event single "$2" && bench_event single "$4" && # all on X
        bench_event same-2 "$1" "$2" && bench_event same-2 "$3" "$4" # all on Y
}
# The plain reference is QEMU's own migration: a plain guest that fails
# (QEMU 7.2's TCG migration has crashed one on its destination: a kernel
# oops in the timer interrupt after the switch) ends the reference, says
# how, and the confidential repetitions go on.
PLAIN_FAILED=""
plain_failed() {
    for w in $WATCHERS; do kill "$w" 2>/dev/null; done
    WATCHERS=""
    why=""
    for g in $PLAIN_GUESTS; do
        for H in $HOSTS; do
            c=$(dom_console "$H" "$g")
            [ -f "$c" ] || continue
            p=$(tr -d '\r' < "$c" | grep -a -m1 -E 'Kernel panic|BUG: |Oops' || true)
            [ -z "$p" ] || why="$why $g on $H: $p;"
        done
        for H in $HOSTS; do virsh_h "$H" destroy "$g" >/dev/null 2>&1; done
    done
    PLAIN_FAILED="repetition $r, event $EV:${why:- no kernel message}"
    lab_log "bench: the plain reference ends: a plain migration failed ($PLAIN_FAILED)"
    GUESTS=$CONF_GUESTS
    PLAIN_GUESTS=""
}
# shellcheck disable=SC2086
bench_rep() {
    bench_rep_kind $CONF_GUESTS || return 1
    [ -z "$PLAIN_GUESTS" ] || bench_rep_kind $PLAIN_GUESTS || plain_failed
}
failed=0
t0=$(now)
if bench_boot; then
    lab_log "bench: $GUESTS booted in $(since "$t0") s (${MIB} MiB each, tick $TICK s, $CORES cores)"
    r=0
    while [ $r -lt "$REPS" ]; do
        r=$((r + 1))
        lab_log "bench: repetition $r of $REPS"
        bench_rep || { failed=1; break; }
    done
else
    failed=1
fi
for g in $GUESTS; do
    for H in $HOSTS; do virsh_h "$H" destroy "$g" >/dev/null 2>&1; done
done
mv "$OUT.tmp" "$OUT"

python3 "$E2E_DIR/benchconc.py" summary "$OUT" "$CORES"
[ -z "$PLAIN_FAILED" ] || echo "The plain reference ended early: a plain migration failed in $PLAIN_FAILED"
lab_log "bench: rows in $OUT; total $(since "$T_START") s"
[ $failed = 0 ]
