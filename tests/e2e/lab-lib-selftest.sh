#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# lab-lib-selftest.sh: the lab's assertion helpers can fail. Run by the
# default test suite (no root, no libvirt, no QEMU): it sources
# lab-lib.sh and the scenario files, replaces what reaches the hosts
# (virsh_h, ip, sleep) with stubs over a fake lab directory (consoles,
# records, agent logs, RAM files), and feeds each helper a false condition
# (it must return non-zero and print "assertion failed") and a true one
# (it must pass). A helper whose check stops biting fails here, not
# silently in the lab. TAP on stdout.
set -u
SELFTEST_TMP=$(mktemp -d)
trap 'rm -rf "$SELFTEST_TMP"' EXIT
COCO_LAB=$SELFTEST_TMP/lab
COCO_LAB_CACHE=$SELFTEST_TMP/cache
QEMU_COCO=/nonexistent/qemu-coco
VIRTCOCOD=/nonexistent/virtcocod
. "$(dirname "$0")/lab-env.sh"
LAB_MEMCHECK=1
. "$E2E_DIR/lab-lib.sh"
for f in "$E2E_DIR"/scenarios-*.sh; do
    . "$f"
done
# python3 resolved once (a version manager's shim first on PATH costs a
# few processes per call).
SELFTEST_PY=$(python3 -c 'import sys; print(sys.executable)')
python3() { "$SELFTEST_PY" "$@"; }
# Every wait polls twice whatever its timeout: sleep returns at once and
# the guest prints everything it has to print at the first one.
polls() { echo 2; }

N=0
NFAIL=0
ok() { N=$((N + 1)); echo "ok $N - $*"; }
not_ok() { N=$((N + 1)); NFAIL=$((NFAIL + 1)); echo "not ok $N - $*"; }

# expect_fail NAME CMD...: CMD (in a subshell, in a fresh world) returns
# non-zero and says "assertion failed" on stderr.
expect_fail() {
    ef_name=$1
    shift
    world
    ("$@") > "$SELFTEST_TMP/out" 2> "$SELFTEST_TMP/err"
    ef_rc=$?
    ef_why=""
    while IFS= read -r ef_l; do
        case "$ef_l" in *"assertion failed: "*) ef_why=${ef_l#*assertion failed: }; break ;; esac
    done < "$SELFTEST_TMP/err"
    if [ $ef_rc != 0 ] && [ -n "$ef_why" ]; then
        ok "$ef_name: fails ($ef_why)"
    else
        not_ok "$ef_name: exit $ef_rc, expected a failure with a message"
        sed 's/^/# /' "$SELFTEST_TMP/out" "$SELFTEST_TMP/err"
    fi
}

# expect_pass NAME CMD...: CMD (in a subshell, in a fresh world) returns 0.
expect_pass() {
    ep_name=$1
    shift
    world
    ("$@") > "$SELFTEST_TMP/out" 2> "$SELFTEST_TMP/err"
    ep_rc=$?
    if [ $ep_rc = 0 ]; then
        ok "$ep_name: passes"
    else
        not_ok "$ep_name: exit $ep_rc, expected success"
        sed 's/^/# /' "$SELFTEST_TMP/out" "$SELFTEST_TMP/err"
    fi
}

# --- The stubbed hosts -------------------------------------------------

# The hosts' state lives in files (the helpers run commands in subshells,
# as the lab's state lives in libvirt): stub KEY VALUE sets, stubbed KEY
# reads ("" when unset).
stub() { printf '%s\n' "$2" > "$LAB/.stub/$1"; }
stubbed() {
    [ -f "$LAB/.stub/$1" ] || return 0
    while IFS= read -r sd_l; do printf '%s\n' "$sd_l"; done < "$LAB/.stub/$1"
}

# What virsh says on host H: STATE_H is the domain's "state (reason)"
# ("" = no domain); RELAY_H x-coco-query-relay's answer; JOBINFO_H the
# completed job; MIGRATE_RC virsh migrate's exit status.
virsh_h() {
    vh_h=$1
    shift
    vh_state=$(stubbed "STATE_$vh_h")
    case "$1" in
    domstate)
        [ -n "$vh_state" ] || { echo "error: failed to get domain 'guest'" >&2; return 1; }
        if [ "${2:-}" = --reason ]; then echo "$vh_state"; else echo "${vh_state%% *}"; fi ;;
    qemu-monitor-command)
        vh_relay=$(stubbed "RELAY_$vh_h")
        [ -n "$vh_relay" ] || { echo "error: Requested operation is not valid" >&2; return 1; }
        echo "$vh_relay" ;;
    domjobinfo)
        vh_job=$(stubbed "JOBINFO_$vh_h")
        [ -n "$vh_job" ] || { echo "error: no job" >&2; return 1; }
        echo "$vh_job" ;;
    migrate) return "$(stubbed MIGRATE_RC)" ;;
    *) return 0 ;;
    esac
}

# ss in a host's namespace: CONNS established connections, IP_RC its exit.
ip() {
    ip_rc=$(stubbed IP_RC)
    [ "$ip_rc" = 0 ] || return "$ip_rc"
    c=0
    while [ $c -lt "$(stubbed CONNS)" ]; do
        echo "ESTAB 0 0 10.97.0.1:4930$c 10.97.0.2:49300"
        c=$((c + 1))
    done
}

# The guest runs: a sleep appends $LAB/.feed.H, what the guest prints
# from now on, to host H's console.
sleep() {
    for sl_h in A B; do
        sl_f=$LAB/.feed.$sl_h
        [ -f "$sl_f" ] || continue
        cat "$sl_f" >> "$LAB/hosts/$sl_h/log/qemu/guest-console.log"
        rm -f "$sl_f"
    done
}
feed() { # host lines... (an argument may hold several lines)
    fd_h=$1
    shift
    printf '%s\n' "$@" >> "$LAB/.feed.$fd_h"
}
unfeed() { rm -f "$LAB"/.feed.*; }

# record HOST ROLE STATE [PAGES [STREAMS [MAY_RUN [FAILURE [BYTES]]]]]: a
# new agent record on HOST, newer than the ones before (BYTES: PAGES pages'
# worth by default).
REC_SEQ=0
record() {
    REC_SEQ=$((REC_SEQ + 1))
    rd_f="$(host_dir "$1")/migrations/m$REC_SEQ.json"
    cat > "$rd_f" <<JSON
{"id": "m$REC_SEQ", "role": "$2", "state": "$3", "may_run": ${6:-true}, "session": ${9:-7},
 "failure": "${7:-}", "streams": ${5:-4},
 "transfer": {"bytes": ${8:-$((${4:-49152} * 4096))}, "pages": ${4:-49152}, "bundles": 768, "elapsed_ms": 400},
 "counters": {"downtime_us": 50000, "blackout_us": 25000}}
JSON
    touch -d "@$((1700000000 + REC_SEQ))" "$rd_f"
}

GOOD_RELAY='{"return":{"relay":"qemu-coco","agent":true,"sessions":1,"x-ignore-shared":true,"role":"none","hold-paused":false},"id":"libvirt-1"}'
GOOD_JOB='Job type:         Completed
Time elapsed:     900 ms
Memory processed: 197000 KiB
Memory total:     200000 KiB
Total downtime:   60 ms'

# A fresh lab (a copy of the one built once below): the guest ran on A
# (HB 1-10, CK 1-5, MEM 1-3), is still there, both agents idle.
world() {
    rm -rf "$LAB"
    cp -a "$SELFTEST_TMP/world" "$LAB"
}
make_world() {
    mw_lab=$LAB
    LAB=$SELFTEST_TMP/world
    mkdir -p "$LAB/.stub" "$LAB/hosts/A/log/qemu" "$LAB/hosts/A/migrations" \
        "$LAB/hosts/A/run/qemu" "$LAB/hosts/B/log/qemu" "$LAB/hosts/B/migrations" \
        "$LAB/hosts/B/run/qemu" "$LAB/ram/A" "$LAB/ram/B"
    for mw_h in A B; do
        : > "$LAB/hosts/$mw_h/log/qemu/guest-console.log"
        : > "$LAB/hosts/$mw_h/virtcocod.log"
    done
    mw_n=1
    while [ $mw_n -le 10 ]; do
        echo "HB $mw_n"
        [ $((mw_n % 2)) = 1 ] || printf 'CK %d ok\r\n' $((mw_n / 2))
        [ $((mw_n % 3)) != 0 ] || echo "MEM $((mw_n / 3)) ok"
        mw_n=$((mw_n + 1))
    done > "$LAB/hosts/A/log/qemu/guest-console.log"
    echo "GUEST-MEM pages 22992 MiB 89 of MemTotal 141 MiB, MemAvailable 105 MiB" >> "$LAB/hosts/A/log/qemu/guest-console.log"
    stub STATE_A "running (booted)"
    stub RELAY_A "$GOOD_RELAY"
    stub RELAY_B "$GOOD_RELAY"
    stub MIGRATE_RC 0
    stub CONNS 0
    stub IP_RC 0
    LAB=$mw_lab
}
make_world

# The guest goes on at B after a migration from A: HB 11.., CK 6.., MEM 4..
B_GOES_ON='HB 11
CK 6 ok
HB 12
MEM 4 ok
CK 7 ok
MEM 5 ok'

# --- The helpers -------------------------------------------------------

MEASURE=""
expect_fail "fail" fail "a reason"
t_count() { is_count "$1" || fail "'$1' is not a count"; }
expect_pass "is_count 12" t_count 12
expect_fail "is_count 1x" t_count 1x
expect_fail "is_count ''" t_count ""
expect_pass "wait_lines: 3 HB there" wait_lines A 0 HB 3 2
expect_fail "wait_lines: 20 HB not there" wait_lines A 0 HB 20 2
expect_fail "wait_lines: an empty console" wait_lines B 0 HB 1 2
t_noconsole() { rm "$(console B)"; wait_lines B 0 HB 1 2; }
expect_fail "wait_lines: no console" t_noconsole
t_wait_fed() { feed A "HB 11" "HB 12"; wait_lines A "$(console_size A)" HB 2 5; }
expect_pass "wait_lines: lines that come while it waits" t_wait_fed

expect_pass "assert_state: the same" assert_state A "running (booted)"
expect_fail "assert_state: another reason" assert_state A "running (migrated)"
expect_fail "assert_state: no domain" assert_state B "running (migrated)"
expect_pass "assert_no_domain: none" assert_no_domain B
expect_fail "assert_no_domain: there" assert_no_domain A

expect_pass "assert_relay: sessions 1" assert_relay A sessions 1
t_relay() { stub RELAY_A "$1"; shift; assert_relay A "$@"; }
expect_fail "assert_relay: sessions 10 is not 1" t_relay "$(echo "$GOOD_RELAY" | sed 's/"sessions":1/"sessions":10/')" sessions 1
expect_fail "assert_relay: true is not 1" t_relay "$(echo "$GOOD_RELAY" | sed 's/"sessions":1/"sessions":true/')" sessions 1
expect_fail "assert_relay: no such key" assert_relay A no-such-key null
expect_pass "assert_relay: a string" assert_relay A role '"none"'
expect_fail "assert_relay: another string" assert_relay A role '"source"'
expect_fail "assert_relay: the query fails" t_relay "" agent true
expect_fail "assert_relay: not JSON" t_relay "error: garbage" agent true

t_job() { stub JOBINFO_B "$1"; job_stats B; }
expect_pass "job_stats: a completed job" t_job "$GOOD_JOB"
expect_fail "job_stats: none" t_job ""
expect_fail "job_stats: no memory figures" t_job "Job type: Completed"

expect_pass "assert_memcheck_covers: 89 of 141 MiB" assert_memcheck_covers A
t_cover() { echo "GUEST-MEM pages 9000 MiB 35 of MemTotal 141 MiB, MemAvailable 105 MiB" >> "$(console A)"; assert_memcheck_covers A; }
expect_fail "assert_memcheck_covers: 35 of 141 MiB" t_cover
t_nocover() { sed -i '/GUEST-MEM/d' "$(console A)"; assert_memcheck_covers A; }
expect_fail "assert_memcheck_covers: no size line" t_nocover

# assert_continues: A (offset 0) -> B (offset 0), with B's console $1.
t_cont() {
    printf '%s\n' "$@" > "$(console B)"
    assert_continues A 0 B 0
}
expect_pass "assert_continues: on from HB 10, CK 5, MEM 3" t_cont "$B_GOES_ON"
expect_fail "assert_continues: heartbeat jumps" t_cont "HB 15" "CK 6 ok" "HB 16" "MEM 4 ok" "CK 7 ok" "MEM 5 ok"
expect_fail "assert_continues: heartbeat goes back" t_cont "HB 2" "CK 6 ok" "HB 3" "MEM 4 ok" "CK 7 ok" "MEM 5 ok"
expect_fail "assert_continues: checksum rounds go back" t_cont "HB 11" "CK 1 ok" "HB 12" "MEM 4 ok" "CK 2 ok" "MEM 5 ok"
expect_fail "assert_continues: checksum BAD" t_cont "HB 11" "CK 6 BAD 1" "HB 12" "MEM 4 ok" "CK 7 ok" "MEM 5 ok"
expect_fail "assert_continues: memory rounds go back" t_cont "HB 11" "CK 6 ok" "HB 12" "MEM 1 ok" "CK 7 ok" "MEM 2 ok"
expect_fail "assert_continues: memory BAD" t_cont "HB 11" "CK 6 ok" "HB 12" "MEM 4 BAD 3" "CK 7 ok" "MEM 5 ok"
expect_fail "assert_continues: a bad page" t_cont "HB 11" "CK 6 ok" "PAGEBAD 4 page 7 word 0" "HB 12" "MEM 4 ok" "CK 7 ok" "MEM 5 ok"
expect_fail "assert_continues: no memory rounds" t_cont "HB 11" "CK 6 ok" "HB 12" "CK 7 ok"
expect_fail "assert_continues: no heartbeat" t_cont "CK 6 ok" "MEM 4 ok" "CK 7 ok" "MEM 5 ok"
t_cont_srcbad() { echo "CK 6 BAD 2" >> "$(console A)"; t_cont "HB 11" "CK 7 ok" "HB 12" "MEM 4 ok" "CK 8 ok" "MEM 5 ok"; }
expect_fail "assert_continues: BAD on the source" t_cont_srcbad
t_cont_nomem() { LAB_MEMCHECK=0; t_cont "HB 11" "CK 6 ok" "HB 12" "CK 7 ok"; }
expect_pass "assert_continues: no memory rounds without LAB_MEMCHECK" t_cont_nomem

# assert_a_runs OFFSET: the lines the guest prints after the call.
t_runs() { unfeed; ta_off=$1; shift; feed A "$@"; assert_a_runs "$ta_off"; }
expect_pass "assert_a_runs: HB, CK and MEM after the event" t_runs 0 "$B_GOES_ON"
expect_fail "assert_a_runs: no heartbeat after the event" t_runs 0 "CK 6 ok" "MEM 4 ok" "CK 7 ok" "MEM 5 ok"
expect_fail "assert_a_runs: one checksum round after the event" t_runs 0 "HB 11" "CK 6 ok" "HB 12" "MEM 4 ok" "MEM 5 ok"
expect_fail "assert_a_runs: one memory round after the event" t_runs 0 "HB 11" "CK 6 ok" "HB 12" "MEM 4 ok" "CK 7 ok"
expect_fail "assert_a_runs: checksum BAD after the event" t_runs 0 "HB 11" "CK 6 BAD 1" "HB 12" "MEM 4 ok" "CK 7 ok" "MEM 5 ok"
expect_fail "assert_a_runs: memory BAD after the event" t_runs 0 "HB 11" "CK 6 ok" "HB 12" "MEM 4 BAD 9" "CK 7 ok" "MEM 5 ok"
t_runs_before() { echo "MEM 3 BAD 1" >> "$(console A)"; t_runs 0 "$B_GOES_ON"; }
expect_fail "assert_a_runs: BAD between the offset and the call" t_runs_before
t_runs_paused() { stub STATE_A "paused (migration)"; t_runs 0 "$B_GOES_ON"; }
expect_fail "assert_a_runs: the source is paused" t_runs_paused
t_runs_gone() { stub STATE_A ""; t_runs 0 "$B_GOES_ON"; }
expect_fail "assert_a_runs: the source is gone" t_runs_gone
expect_fail "assert_a_runs: no offset" assert_a_runs ""

# RAM files: the guest's memory page by page.
t_ram() { # source-bytes destination-bytes
    head -c "$1" /dev/urandom > "$LAB/ram/A/pc.ram"
    ram_digest "$(ram_file A)" "$SELFTEST_TMP/digest" || return 1
    case "$2" in
    same) cp "$LAB/ram/A/pc.ram" "$LAB/ram/B/pc.ram" ;;
    flip) cp "$LAB/ram/A/pc.ram" "$LAB/ram/B/pc.ram"
          printf 'x' | dd of="$LAB/ram/B/pc.ram" bs=1 seek=$((4096 * 5 + 17)) conv=notrunc 2>/dev/null ;;
    short) head -c $(($1 - 4096)) "$LAB/ram/A/pc.ram" > "$LAB/ram/B/pc.ram" ;;
    long) cp "$LAB/ram/A/pc.ram" "$LAB/ram/B/pc.ram"; head -c 4096 /dev/zero >> "$LAB/ram/B/pc.ram" ;;
    esac
    ram_compare "$SELFTEST_TMP/digest" "$(ram_file B)"
}
expect_pass "ram_compare: the same pages" t_ram 65536 same
expect_fail "ram_compare: one byte differs" t_ram 65536 flip
expect_fail "ram_compare: a page missing" t_ram 65536 short
expect_fail "ram_compare: a page more" t_ram 65536 long
expect_fail "ram_compare: empty" t_ram 0 same
expect_fail "ram_file: none" ram_file B
t_two_files() { : > "$LAB/ram/B/a"; : > "$LAB/ram/B/b"; ram_file B; }
expect_fail "ram_file: two" t_two_files
expect_fail "ram_digest: no file" ram_digest "$LAB/ram/none" "$SELFTEST_TMP/digest"

expect_fail "agent_stop: no pid file" agent_stop A
t_rounds() { echo "streams = 4" > "$(host_dir A)/virtcocod.conf"; agent_rounds A 12; }
expect_fail "agent_rounds: no precopy_rounds line" t_rounds
t_conns() { stub IP_RC 1; [ "$(agent_conns A)" != 0 ] || fail "taken for none"; }
expect_pass "agent_conns: cannot list, not 0" t_conns

# migrate_and_check A->B: MIGRATE_CMD=t_mig plays a migration; each
# BREAK makes one thing go wrong.
BREAK=""
t_mig() {
    [ "$BREAK" != fails ] || return 1
    [ "$BREAK" = stays ] || stub STATE_A ""
    stub STATE_B "running (migrated)"
    [ "$BREAK" != paused ] || stub STATE_B "paused (migrated)"
    pages=49152 streams=4 sstate=finished
    [ "$BREAK" != pages ] || pages=1000
    [ "$BREAK" != streams ] || streams=2
    [ "$BREAK" != aborted ] || sstate=aborted
    if [ "$BREAK" != norecord ]; then
        # The sealed bytes stay 192 MiB: only the page count is wrong.
        record A source "$sstate" "$pages" "$streams" true "" 201326592
        record B destination committed
    fi
    stub JOBINFO_B "$GOOD_JOB"
    [ "$BREAK" != nojob ] || stub JOBINFO_B ""
    [ "$BREAK" != qemu ] || stub JOBINFO_B "$(echo "$GOOD_JOB" | sed 's/197000 KiB/297000 KiB/')"
    [ "$BREAK" != total ] || stub JOBINFO_B "$(echo "$GOOD_JOB" | sed 's/200000 KiB/100000 KiB/')"
    [ "$BREAK" = nogate ] || echo "gate=migrate verdict=release" >> "$(host_dir A)/virtcocod.log"
    [ "$BREAK" != conns ] || stub CONNS 1
    [ "$BREAK" != ignore ] || stub RELAY_B "$(echo "$GOOD_RELAY" | sed 's/"x-ignore-shared":true/"x-ignore-shared":false/')"
    if [ "$BREAK" = bad ]; then
        printf '%s\n' "HB 11" "CK 6 ok" "HB 12" "MEM 4 BAD 1" "CK 7 ok" "MEM 5 ok" >> "$(console B)"
    else
        printf '%s\n' "$B_GOES_ON" >> "$(console B)"
    fi
}
t_migrate() { BREAK=$1; MIGRATE_CMD=t_mig migrate_and_check A B; }
expect_pass "migrate_and_check: all well" t_migrate ""
for b in fails stays paused pages streams aborted norecord nojob qemu total nogate conns ignore bad; do
    world
    expect_fail "migrate_and_check: $b" t_migrate "$b"
done
t_migrate_paused_state() { MIGRATE_STATE="running (unpaused)" t_migrate ""; }
expect_fail "migrate_and_check: MIGRATE_STATE not reached" t_migrate_paused_state

# scenarios-faults.sh
aborted_records() {
    record A source aborted 100 4 "${1:-true}" "the peer host aborted the migration"
    record B destination aborted 100 4 true "QEMU on the destination ended"
}
t_record() { aborted_records; wait_record "$@"; }
expect_pass "wait_record: aborted" t_record A source aborted
expect_fail "wait_record: not frozen" t_record A source frozen
expect_fail "wait_record: no record" t_record B source aborted
t_aborted() { aborted_records "${4:-true}"; OUT=$1; assert_both_aborted "$2" "$3"; }
expect_pass "assert_both_aborted: as expected" t_aborted "error: confidential migration aborted" "migration aborted" "QEMU on the destination"
expect_fail "assert_both_aborted: virsh says something else" t_aborted "error: operation failed" "migration aborted" "QEMU on the destination"
expect_fail "assert_both_aborted: B's record names another cause" t_aborted "error: confidential migration aborted" "migration aborted" "tampered"
expect_fail "assert_both_aborted: the source may not run" t_aborted "error: confidential migration aborted" "aborted" "QEMU" false
t_aborted_other() { aborted_records; record B destination aborted 100 4 true "QEMU on the destination ended" "" 8; OUT=$1; assert_both_aborted "$2" "$3"; }
expect_fail "assert_both_aborted: records of different sessions" t_aborted_other "error: confidential migration aborted" "migration aborted" "QEMU on the destination"
t_b_clean() { eval "$1"; assert_b_clean; }
expect_pass "assert_b_clean: nothing on B" t_b_clean ":"
expect_fail "assert_b_clean: a domain on B" t_b_clean 'stub STATE_B "paused (migrated)"'
expect_fail "assert_b_clean: a pid file on B" t_b_clean ': > "$(host_dir B)/run/qemu/guest.pid"'
expect_fail "assert_b_clean: a RAM file on B" t_b_clean ': > "$LAB/ram/B/pc.ram"'
expect_fail "assert_b_clean: a connection left" t_b_clean 'stub CONNS 1'
expect_fail "assert_b_clean: connections not listed" t_b_clean 'stub IP_RC 1'
t_wire_migrate() { stub MIGRATE_RC "$1"; wire_migrate; }
expect_fail "wire_migrate: the migration succeeded" t_wire_migrate 0
expect_pass "wire_migrate: the migration failed" t_wire_migrate 1

# scenarios-hook.sh: B's hook refused ($1 virsh's output).
HOOK_OUT="error: Hook script execution failed: libvirt-coco: this host cannot receive the confidential domain 'guest': the domain's policy refuses the destination"
t_hook() { # output reason [a QEMU log line on B]
    unfeed
    feed A "$B_GOES_ON"
    th_log=$(hook_qemu_log_size)
    [ -z "${3:-}" ] || echo "$3" >> "$(host_dir B)/log/qemu/guest.log"
    hook_assert_refused "$1" "$2" "$(records A)" "$th_log" 0
}
expect_pass "hook_assert_refused: refused by B's hook" t_hook "$HOOK_OUT" "policy refuses"
expect_fail "hook_assert_refused: another error" t_hook "error: operation failed" "policy refuses"
expect_fail "hook_assert_refused: another reason" t_hook "$HOOK_OUT" "not reachable"
expect_fail "hook_assert_refused: QEMU started on B" t_hook "$HOOK_OUT" "policy refuses" "starting up"
t_hook_rec() {
    unfeed
    feed A "$B_GOES_ON"
    th_n=$(records A)
    record A source aborted
    hook_assert_refused "$HOOK_OUT" "policy" "$th_n" "$(hook_qemu_log_size)" 0
}
expect_fail "hook_assert_refused: a new record on A" t_hook_rec

# scenarios-mgmt.sh: the management clients' job statistics and the
# sealed rate of a capped migration.
MG_S1='{"type": 2, "at_s": 0.5, "memory_total": 201326592, "memory_processed": 1048576, "memory_remaining": 104857600, "memory_iteration": 1, "downtime": 300}'
MG_S2='{"type": 2, "at_s": 1.0, "memory_total": 201326592, "memory_processed": 2097152, "memory_remaining": 1048576, "memory_iteration": 3, "downtime": 20}'
t_mg_stats() {
    echo "{\"samples\": [$1]}" > "$MG_RESULT"
    mg_stats
}
expect_pass "mg_stats: possible numbers" t_mg_stats "$MG_S1, $MG_S2"
expect_fail "mg_stats: iterations fall" t_mg_stats "$MG_S2, $(echo "$MG_S1" | sed 's/"at_s": 0.5/"at_s": 1.5/; s/"memory_processed": 1048576/"memory_processed": 3145728/')"
expect_fail "mg_stats: 0 remaining while data remains" t_mg_stats "$(echo "$MG_S1" | sed 's/"memory_remaining": 104857600/"memory_remaining": 0/'), $MG_S2"
expect_fail "mg_stats: an expected downtime of 2097610 ms" t_mg_stats "$MG_S1, $(echo "$MG_S2" | sed 's/"downtime": 20/"downtime": 2097610/')"
expect_fail "mg_stats: remaining above total" t_mg_stats "$(echo "$MG_S1" | sed 's/"memory_remaining": 104857600/"memory_remaining": 301326592/'), $MG_S2"
expect_fail "mg_stats: no active sample" t_mg_stats ""
t_mg_rate() { # limit, then samples [at_ms, bytes, pages, epoch]
    echo "{\"role\": \"source\", \"samples\": $2}" > "$(host_dir A)/migrations/mg.json"
    mg_rate A "$1" "selftest"
}
MG_32='[[100, 0, 0, 1], [1100, 33554432, 8192, 1], [2100, 67108864, 16384, 1], [2200, 167108864, 40000, 2]]'
expect_pass "mg_rate: 32 MiB/s at a 32 MiB/s cap" t_mg_rate 32 "$MG_32"
expect_pass "mg_rate: 32 MiB/s at a 35 MiB/s cap" t_mg_rate 35 "$MG_32"
expect_fail "mg_rate: 32 MiB/s at a 20 MiB/s cap" t_mg_rate 20 "$MG_32"
expect_fail "mg_rate: 32 MiB/s at a 40 MiB/s cap" t_mg_rate 40 "$MG_32"
expect_fail "mg_rate: a first epoch shorter than 1 s" t_mg_rate 32 '[[100, 0, 0, 1], [600, 16777216, 4096, 1]]'

# scenario: a failing scenario is counted and returns non-zero.
PASSED=0 FAILED=0 RESULTS=""
t_scenario() { ! scenario "one that fails" false && [ "$FAILED" = 1 ] && scenario "one that passes" true && [ "$PASSED" = 1 ]; }
expect_pass "scenario: counts a failure and a pass" t_scenario

# Every lab script parses, and none has the shape of a check that cannot
# fail: "cond && fail ... && return 1" (fail returns 1: the return never
# runs, the scenario goes on) or a pattern that matches anything.
for f in "$E2E_DIR"/*.sh; do
    if sh -n "$f" 2> "$SELFTEST_TMP/err"; then
        ok "sh -n $(basename "$f")"
    else
        not_ok "sh -n $(basename "$f"): $(cat "$SELFTEST_TMP/err")"
    fi
    [ "$(basename "$f")" != lab-lib-selftest.sh ] || continue
    if grep -n -E '&& *fail |(grep|assert_both_aborted) [^|]*"\.\*?"' "$f" > "$SELFTEST_TMP/err"; then
        not_ok "$(basename "$f"): a check that cannot fail: $(head -n 1 "$SELFTEST_TMP/err")"
    else
        ok "$(basename "$f"): no '&& fail', no match-anything pattern"
    fi
done

echo "1..$N"
[ $NFAIL = 0 ]
