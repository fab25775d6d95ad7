# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by run.sh: the management stacks' migration controls (issue 12,
# docs/lab.rst "Management clients"). nova-client.py and vdsm-client.py
# drive libvirt with exactly the flags and calls of OpenStack Nova's and
# oVirt VDSM's libvirt code (written from their documented behaviour);
# every control must have its documented effect on the confidential
# migration (docs/formatcoco.rst, "Migration controls"). The block runs
# on a guest that dirties memory at a known rate (coco.dirty_pct /
# coco.dirty_mbps, build-guest.sh), booted on A by its first scenario; it
# ends with that guest on A. Every scenario asserts the guest runs on
# exactly one host with no damaged memory (migrate_and_check,
# assert_a_runs) and the next scenario migrates it again.

# 10 % of the guest's memory (12 MiB of its 141 MiB) rewritten at 16
# MiB/s: a full pass over it about every 0.75 s.
MG_DIRTY="coco.dirty_pct=10 coco.dirty_mbps=16"
MG_RESULT="$LAB/mgmt.json"

mg_check() { /usr/bin/python3 "$E2E_DIR/mgmtcheck.py" "$@"; }
mg_get() { mg_check get "$MG_RESULT" "$1"; }
# Lines of host $1's agent log (an offset for mg_log_since).
mg_log_off() { wc -l < "$(host_dir "$1")/virtcocod.log"; }
mg_log_since() { tail -n +"$(($2 + 1))" "$(host_dir "$1")/virtcocod.log"; }

# mg_client SCRIPT SRC DST OPTIONS...: run a management client, its JSON
# in $MG_RESULT; non-zero when the migration call failed (its error on
# stdout).
mg_client() {
    mc_script=$1 mc_src=$2 mc_dst=$3
    shift 3
    /usr/bin/python3 "$E2E_DIR/$mc_script" --src "$(host_uri "$mc_src")" \
        --dst "$(host_uri "$mc_dst")" "$@" > "$MG_RESULT" 2> "$LAB/mgmt.err" ||
        { echo "$mc_script failed: $(cat "$LAB/mgmt.err")"; return 1; }
    [ "$(mg_get 'r["ok"]')" = True ] || { echo "$mc_script: $(mg_get 'r["error"]')"; return 1; }
}
# MIGRATE_CMD for migrate_and_check: Nova's migration, MG_OPTS its options.
mg_nova() { mg_client nova-client.py "$1" "$2" ${MG_OPTS:-}; }
mg_vdsm() { mg_client vdsm-client.py "$1" "$2" ${MG_OPTS:-}; }

# The domain's <coco:migration> on host $1 with the lab's elements and
# <coco:precopy $2> (none when $2 is empty), libvirt's live metadata.
mg_policy() {
    mp_pre=""
    [ -z "$2" ] || mp_pre="<precopy $2/>"
    virsh_h "$1" metadata guest --uri "$COCO_NS" --key coco --live --set \
        "<migration xmlns=\"$COCO_NS\" technology=\"tdx\">$POLICY_AGENT<destinations><minTcb component=\"module\" svn=\"0\"/></destinations><streams forward=\"4\" pagesPerBundle=\"64\"/>$mp_pre</migration>" >/dev/null ||
        fail "host $1: cannot set <coco:precopy $2>"
}

# Nova's PERSIST_DEST left a persistent domain on $1: check, then make it
# transient again like the rest of the lab's (virsh undefine of a running
# domain).
mg_persistent() {
    virsh_h "$1" dominfo guest | grep -Eq '^Persistent: +yes' ||
        fail "host $1: Nova's VIR_MIGRATE_PERSIST_DEST left no persistent domain" || return 1
    virsh_h "$1" undefine guest >/dev/null || fail "host $1: cannot undefine the domain" || return 1
}

# The job statistics the client read are possible (mgmtcheck.py stats).
mg_stats() {
    ms_out=$(mg_check stats "$MG_RESULT")
    ms_rc=$?
    echo "  job stats: $ms_out"
    [ $ms_rc = 0 ] || fail "impossible job statistics: $ms_out"
}

# The sealed rate of host $1's newest source record over its first epoch
# (the whole memory, capped) is within 10 % of $2 MiB/s; $3 names the
# control in the measurements.
mg_rate() {
    mr_out=$(mg_check rate "$(host_dir "$1")/migrations" "$2")
    mr_rc=$?
    echo "  sealed rate of the first epoch (MiB/s, measured/limit, over s): $mr_out"
    MEASURE="$MEASURE
$3 $2 MiB/s: measured $mr_out (MiB/s, measured/limit, seconds)"
    [ $mr_rc = 0 ] || fail "the sealed rate is not within 10 % of $2 MiB/s: $mr_out"
}

# The source agent's precopy decisions since log line $2 of host $1: its
# "precopy epochs=..." lines, shortened.
mg_decisions() {
    mg_log_since "$1" "$2" | grep -o 'precopy epochs=.*' | sed 's/ elapsed_ms=[0-9]*//; s/seal_rate=[0-9]*/&B\/s/'
}

# The guest that dirties memory, on A: whatever host runs the lab guest,
# it is destroyed and the dirtying one boots on A.
s_mg_setup() {
    for H in A B; do
        virsh_h "$H" domstate guest >/dev/null 2>&1 || continue
        virsh_h "$H" destroy guest >/dev/null || fail "cannot destroy the guest on $H" || return 1
    done
    guest_xml guest 192 "$QEMU_COCO" confidential "$MG_DIRTY" > "$LAB/guest-dirty.xml" || return 1
    off=$(console_size A)
    virsh_h A create "$LAB/guest-dirty.xml" >/dev/null || fail "virsh create failed" || return 1
    wait_lines A "$off" "GUEST-BOOTED" 1 "$BOOT_TIMEOUT" || return 1
    wait_lines A "$off" "CK" 1 "$BOOT_TIMEOUT" || return 1
    [ "$LAB_MEMCHECK" != 1 ] || wait_lines A "$off" "MEM" 1 "$BOOT_TIMEOUT" || return 1
    # The workload's line (console_since keeps only the checks' lines).
    ready=$(tail -c +"$((off + 1))" "$(console A)" | tr -d '\r' | grep -m 1 '^DIRTY-READY [0-9]')
    [ -n "$ready" ] || fail "host A: the guest's dirtying workload did not start" || return 1
    echo "  $ready MiB rewritten at 16 MiB/s; booted in $(since "$t0") s"
    assert_state A "running (booted)"
}

# Nova's defaults: LIVE|PEER2PEER|UNDEFINE_SOURCE|PERSIST_DEST, its
# monitor's first downtime step (500 ms / 10 steps: 50 ms) reaches the
# source agent's policy as the downtime target.
s_mg_nova() {
    la=$(mg_log_off A)
    MIGRATE_CMD=mg_nova MG_OPTS="" migrate_and_check A B || return 1
    echo "  Nova's actions: $(mg_get '[a["action"] + (" ok" if a["ok"] else ": " + a.get("error", "")) for a in r["actions"]]')"
    echo "  A's decisions: $(mg_decisions A "$la" | tr '\n' '|')"
    [ "$(mg_get 'r["flags"]')" = $((1 | 2 | 8 | 16)) ] || fail "not Nova's flags: $(mg_get 'r["flags"]')" || return 1
    [ "$(mg_get '[a["action"] for a in r["actions"] if a["ok"]][:1]')" = "['downtime step: migrateSetMaxDowntime 50']" ] ||
        fail "Nova's first downtime step was not applied" || return 1
    mg_log_since A "$la" | grep -q 'precopy epochs=.* target_ms=50 ' ||
        fail "A's agent did not take Nova's 50 ms as its downtime target" || return 1
    mg_stats || return 1
    mg_persistent B
}

# live_migration_permit_post_copy = True (VIR_MIGRATE_POSTCOPY): libvirt
# turns postcopy-ram on, the relays keep it from QEMU, the migration runs
# as pre-copy; Nova's force-complete then switches to post-copy
# (virDomainMigrateStartPostCopy), which is refused with the reason; the
# migration completes. The bandwidth cap (32 MiB/s: about 6 s of precopy)
# keeps the job running long after the force-complete comes (1.5 s): a
# switch libvirt processes only after the job ended (its job lock busy)
# fails "Domain not found" on the undefined source instead (seen once in
# CI at 2.5 s of 3.8 s).
s_mg_nova_postcopy() {
    MIGRATE_CMD=mg_nova MG_OPTS="--permit-post-copy --bandwidth 32 --force-complete-after 1.5" \
        migrate_and_check B A || return 1
    act=$(mg_get '[a for a in r["actions"] if a["action"].startswith("force-complete")]')
    echo "  force-complete: $act"
    [ "$(mg_get 'r["flags"] & 32768')" = 32768 ] || fail "VIR_MIGRATE_POSTCOPY was not set" || return 1
    echo "$act" | grep -q "migrate-start-postcopy.*'ok': False.*post-copy is not supported for confidential migration" ||
        fail "the switch to post-copy was not refused with the reason" || return 1
    mg_stats || return 1
    mg_persistent A
}

# live_migration_bandwidth = 32 (MiB/s): the agents' sealed pipeline runs
# at that rate (the source's record: its first epoch, the whole memory).
s_mg_nova_bandwidth() {
    MIGRATE_CMD=mg_nova MG_OPTS="--bandwidth 32" migrate_and_check A B || return 1
    mg_rate A 32 "Nova live_migration_bandwidth" || return 1
    mg_persistent B
}

# Nova's force-complete (the guest suspended during pre-copy): on a
# migration that cannot converge by itself (<coco:precopy maxEpochs="100000" maxBlackout="1"
# maxTime="60" onNonConvergence="abort">, the rounds capped at 8 MiB/s
# while the guest dirties 16 MiB/s), the suspend at 4 s, in the first
# round (the guest's used memory at the cap: 15 s or more), switches over
# at once: the rest of the round moves uncapped, as QEMU's downtime phase
# does (at the cap it would take 10 s more); libvirt runs the guest on
# the destination (it was running when the migration started), as Nova
# expects.
s_mg_nova_force() {
    mg_policy B 'maxEpochs="100000" maxTime="60" maxBlackout="1" onNonConvergence="abort"' || return 1
    lb=$(mg_log_off B)
    MIGRATE_CMD=mg_nova MG_OPTS="--bandwidth 8 --force-complete-after 4" migrate_and_check B A
    rc=$?
    mg_policy A "" || return 1
    [ $rc = 0 ] || return 1
    at=$(mg_get '[a["at_s"] for a in r["actions"] if a["action"] == "force-complete: suspend" and a["ok"]][0]')
    wall=$(mg_get 'r["wall_s"]')
    echo "  suspended at $at s, migration done at $wall s; B's last decisions: $(mg_decisions B "$lb" | tail -n 3 | tr '\n' '|')"
    MEASURE="$MEASURE
Nova force-complete: suspended at $at s, migration completed at $wall s"
    mg_log_since B "$lb" | grep -q 'precopy epochs=.* paused=1 action=force' ||
        fail "B's agent did not switch over for the paused guest" || return 1
    ! mg_log_since B "$lb" | grep -q 'action=abort' || fail "B's agent aborted" || return 1
    mg_log_since B "$lb" | grep -q 'guest paused: the rest of the round moves uncapped' ||
        fail "B's agent did not lift the bandwidth cap for the paused guest" || return 1
    awk -v a="$at" -v w="$wall" 'BEGIN { exit !(w - a < 8) }' ||
        fail "the migration took $at -> $wall s after the suspend" || return 1
    mg_persistent A
}

# mg_refused WHAT OPTION CLIENT OPTIONS...: the migration A->B is refused
# at the start naming WHAT and the alternative ("migrate without
# --OPTION"); the guest runs on on A, B has no domain.
mg_refused() {
    mr_what=$1 mr_opt=$2 mr_client=$3
    shift 3
    soff=$(console_size A)
    out=$(mg_client "$mr_client" A B "$@")
    rc=$?
    [ $rc != 0 ] || fail "the $mr_what migration succeeded" || return 1
    echo "  $mr_client: $out (after $(mg_get 'r["wall_s"]') s)"
    echo "$out" | grep -q "qemu-coco: $mr_what .* not supported for confidential migration" ||
        fail "the error does not name $mr_what" || return 1
    echo "$out" | grep -q "migrate without --$mr_opt" || fail "the error does not give the alternative" || return 1
    assert_no_domain B || return 1
    assert_a_runs "$soff"
}
s_mg_tunnelled() { mg_refused "tunnelled migration" tunnelled nova-client.py --tunnelled; }
s_mg_parallel() { mg_refused "parallel migration connections" parallel vdsm-client.py --parallel 4 --interval 1; }

# <coco:precopy maxEpochs="2" maxBlackout="1" onNonConvergence=...>, virsh
# migrate --live --bandwidth 64 A->B: after the second round the
# predicted blackout (16 MiB/s dirtied, sealed at 64 MiB/s) exceeds 1 ms.
s_mg_abort() {
    mg_policy A 'maxEpochs="2" maxBlackout="1" onNonConvergence="abort"' || return 1
    soff=$(console_size A)
    out=$(virsh_h A migrate --live --bandwidth 64 guest "$(host_uri B)" 2>&1)
    rc=$?
    mg_policy A "" || return 1
    [ $rc != 0 ] || fail "the migration completed although it cannot converge" || return 1
    echo "  virsh: $out"
    for w in "pre-copy did not converge: 'maxEpochs' reached after '2' epochs" \
        "exceeds the downtime target '1' ms" "at a dirty rate of '[1-9][0-9]*' KiB/s" \
        "seal rate of '[1-9][0-9]*' KiB/s" "onNonConvergence='abort'"; do
        echo "$out" | grep -q "$w" || fail "the error does not say \"$w\"" || return 1
    done
    assert_no_domain B || return 1
    assert_a_runs "$soff"
}
s_mg_pause() {
    mg_policy A 'maxEpochs="2" maxBlackout="1" onNonConvergence="pause"' || return 1
    la=$(mg_log_off A)
    migrate_and_check A B --bandwidth 64
    rc=$?
    mg_policy B "" || return 1
    [ $rc = 0 ] || return 1
    echo "  A's decisions: $(mg_decisions A "$la" | tr '\n' '|')"
    mg_log_since A "$la" | grep -q 'precopy did not converge (maxEpochs reached): the guest pauses for the rest (onNonConvergence=pause)' ||
        fail "A's agent did not pause the guest for the rest" || return 1
}
s_mg_converge() {
    mg_policy B 'maxEpochs="30" maxBlackout="2000" onNonConvergence="abort"' || return 1
    lb=$(mg_log_off B)
    migrate_and_check B A
    rc=$?
    mg_policy A "" || return 1
    [ $rc = 0 ] || return 1
    echo "  B's decisions: $(mg_decisions B "$lb" | tr '\n' '|')"
    echo "  libvirt's parameters as B's agent got them: $(mg_log_since B "$lb" | grep -o "libvirt's downtime_limit_ms=.*" | sort -u | tr '\n' '|')"
    # The target is the smaller of maxBlackout and libvirt's downtime
    # limit; the relay reports 300 ms (QEMU's default) from libvirt
    # although no limit was set (docs/lab.rst, "Management clients", 9).
    mg_log_since B "$lb" | grep -Eq 'precopy epochs=.* target_ms=(2000|300) paused=0 action=switchover' ||
        fail "B's agent did not switch over on its prediction" || return 1
    ! mg_log_since B "$lb" | grep -q 'action=\(abort\|pause\)' || fail "B's agent did not converge" || return 1
}

# VDSM's policies, its monitor every second: each migration completes (no
# abort from its schedule: iterations are the agents' epochs, a few), its
# initial setDowntime 100 ms reaches the agent, the job statistics are
# possible, and the engine's 52 MiB/s cap holds within 10 %. A switch to
# post-copy, if the schedule gets there, is refused with the reason.
mg_vdsm_check() { # src policy
    echo "  VDSM's actions: $(mg_get '[a["action"] + (" ok" if a["ok"] else ": " + a.get("error", "")) for a in r["actions"]]')"
    [ "$(mg_get '[a["action"] for a in r["actions"]][:1]')" = "['setDowntime 100']" ] ||
        fail "VDSM's initial setDowntime 100 was not its first action" || return 1
    [ "$(mg_get 'len([a for a in r["actions"] if "abort" in a["action"]])')" = 0 ] ||
        fail "VDSM's schedule aborted a migration that converges" || return 1
    [ "$(mg_get 'len([a for a in r["actions"] if a["action"].startswith("postcopy") and (a["ok"] or "post-copy is not supported" not in a["error"])])')" = 0 ] ||
        fail "a switch to post-copy was not refused with the reason" || return 1
    mg_log_since "$1" "$2" | grep -q 'precopy epochs=.* target_ms=100 ' ||
        fail "host $1's agent did not take VDSM's 100 ms as its downtime target" || return 1
    mg_stats || return 1
    mg_rate "$1" 52 "VDSM $3 (the engine's bandwidth)"
}
s_mg_vdsm_minimal() {
    la=$(mg_log_off A)
    MIGRATE_CMD=mg_vdsm MG_OPTS="--policy minimal --interval 1" migrate_and_check A B || return 1
    mg_vdsm_check A "$la" minimal
}
s_mg_vdsm_suspend() {
    lb=$(mg_log_off B)
    MIGRATE_CMD=mg_vdsm MG_OPTS="--policy suspend --interval 1" migrate_and_check B A || return 1
    mg_vdsm_check B "$lb" suspend
}
s_mg_vdsm_postcopy() {
    la=$(mg_log_off A)
    MIGRATE_CMD=mg_vdsm MG_OPTS="--policy postcopy --interval 1" migrate_and_check A B || return 1
    [ "$(mg_get 'r["flags"] & 32768')" = 32768 ] || fail "VIR_MIGRATE_POSTCOPY was not set" || return 1
    mg_vdsm_check A "$la" postcopy || return 1
    # Back to A for the scenarios that follow.
    migrate_and_check B A
}
