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
# COCO_LAB_LAYOUT=installed (meson's e2e-installed): the hosts run what the
# RPM installs, with the shipped configuration, and the scenarios of
# scenarios-installed.sh (docs/lab.rst "The installed layout").
# COCO_LAB_PART=liveness (meson's e2e-liveness): boot, the deadlines and
# liveness block (scenarios-liveness.sh), destroy.
set -u
. "$(dirname "$0")/lab-env.sh"

BOOT_TIMEOUT=${COCO_LAB_BOOT_TIMEOUT:-120}
PASSED=0
FAILED=0
RESULTS=""
MEASURE=""
COCO_NS=https://libvirt-coco.org/xmlns/migration/1.0
T_START=$(date +%s.%N)
# The guest runs the whole-memory check (MEM lines, build-guest.sh).
LAB_MEMCHECK=1
. "$E2E_DIR/lab-lib.sh"

lab_start
T_UP=$(since "$T_START")

if [ "$LAB_LAYOUT" = installed ]; then
    guest_xml guest 192 "$INST_EMULATOR" confidential > "$LAB/guest.xml"
else
    guest_xml guest 192 "$QEMU_COCO" confidential > "$LAB/guest.xml"
fi
for f in "$E2E_DIR"/scenarios-*.sh; do
    [ -e "$f" ] && . "$f"
done

# A live migration A->B, checked on both hosts; the source logged QEMU's
# writes (the write-log preload, docs/firmware-emulated.rst, "The VMM's
# write log") instead of hashing.
s_migrate() {
    local log n0 h0
    log="$(host_dir A)/virtcocod.log"
    n0=$(grep -c "dirty tracking: QEMU pid=[0-9]*'s writes are logged" "$log" || true)
    h0=$(grep -c "dirty tracking: hashing\|the write log was dropped" "$log" || true)
    migrate_and_check A B || return 1
    [ "$(grep -c "dirty tracking: QEMU pid=[0-9]*'s writes are logged" "$log")" -eq $((n0 + 1)) ] ||
        fail "A's agent did not log QEMU's writes: $(grep "dirty tracking" "$log" | tail -n 1)" || return 1
    [ "$(grep -c "dirty tracking: hashing\|the write log was dropped" "$log")" -eq "$h0" ] ||
        fail "A's agent hashed: $(grep "dirty tracking" "$log" | tail -n 1)" || return 1
    echo "  A's agent logged QEMU's writes"
}
s_migrate_p2p() { migrate_and_check B A --p2p; }
# The whole memory, byte for byte: the guest paused, migrated, compared
# with the source's RAM before it runs on (migrate_paused); there and back.
s_migrate_paused() {
    MIGRATE_CMD=migrate_paused MIGRATE_STATE="running (unpaused)" migrate_and_check A B || return 1
    MIGRATE_CMD=migrate_paused MIGRATE_STATE="running (unpaused)" migrate_and_check B A --p2p
}

# The agents' metrics endpoints (docs/virtcocod.rst, "Metrics"): A's is
# scraped every 0.1 s during a migration A->B and every scrape is read by
# python3-prometheus-client's parser; afterwards both count the migration
# (committed, no failure), its downtime, phases and sealed bytes. Back to A.
metric() { grep -F "$1 " "$2" | awk '{print $NF}'; }
metrics_get() { # host file
    nsenter --net="/run/netns/$NETNS_PREFIX$1" /usr/bin/python3 "$E2E_DIR/metrics.py" \
        get http://127.0.0.1:9464/metrics > "$2" ||
        fail "host $1: cannot scrape its metrics endpoint" || return 1
}
# A source's successful migrations: its outcome is the first final state it
# reached, committed (the destination's word came first) or finished (its
# QEMU ended first, after libvirt's Confirm).
source_done() {
    c=$(metric "virtcocod_migrations_total{cause=\"none\",outcome=\"committed\",role=\"source\"}" "$1")
    f=$(metric "virtcocod_migrations_total{cause=\"none\",outcome=\"finished\",role=\"source\"}" "$1")
    echo $((${c:-0} + ${f:-0}))
}
s_metrics() {
    md=$LAB/metrics
    rm -rf "$md" && mkdir -p "$md/during" || return 1
    metrics_get A "$md/a0" && metrics_get B "$md/b0" || return 1
    ok='{cause="none",outcome="committed",role='
    a0=$(source_done "$md/a0")
    b0=$(metric "virtcocod_migrations_total${ok}\"destination\"}" "$md/b0")
    nsenter --net="/run/netns/${NETNS_PREFIX}A" /usr/bin/python3 "$E2E_DIR/metrics.py" \
        scrape http://127.0.0.1:9464/metrics "$md/during" 2> "$md/scrape.err" &
    spid=$!
    migrate_and_check A B
    rc=$?
    touch "$md/during/stop"
    wait "$spid"
    [ $rc -eq 0 ] || return 1
    during=$(/usr/bin/python3 "$E2E_DIR/metrics.py" during "$md/during" 2>&1) ||
        fail "a scrape during the migration does not parse: $during $(cat "$md/scrape.err")" || return 1
    set -- $during
    echo "  $1 scrapes of A during the migration, $2 with a source migration in flight"
    [ "$1" -ge 5 ] && [ "$2" -ge 1 ] ||
        fail "A's endpoint was not scraped while the migration ran ($1 scrapes, $2 in flight)" || return 1
    metrics_get A "$md/a1" && metrics_get B "$md/b1" || return 1
    [ "$(source_done "$md/a1")" = $((a0 + 1)) ] ||
        fail "A's metrics do not count the committed migration: $(grep migrations_total "$md/a1")" || return 1
    [ "$(metric "virtcocod_migrations_total${ok}\"destination\"}" "$md/b1")" = $((${b0:-0} + 1)) ] ||
        fail "B's metrics do not count the committed migration: $(grep migrations_total "$md/b1")" || return 1
    for f in 'virtcocod_migrations_in_flight{role="source"}' \
        'virtcocod_migrations_in_flight{role="destination"}'; do
        [ "$(metric "$f" "$md/a1")" = 0 ] || fail "A: $f is not 0 after the migration" || return 1
    done
    dt=$(metric "virtcocod_migration_downtime_seconds_count{}" "$md/a1")
    dt0=$(metric "virtcocod_migration_downtime_seconds_count{}" "$md/a0")
    [ "$dt" -gt "$dt0" ] || fail "A's downtime histogram did not count the migration" || return 1
    sb0=$(metric 'virtcocod_sealed_bytes_total{role="source"}' "$md/a0")
    sb1=$(metric 'virtcocod_sealed_bytes_total{role="source"}' "$md/a1")
    db1=$(metric 'virtcocod_sealed_bytes_total{role="destination"}' "$md/b1")
    [ "$sb1" -gt "$sb0" ] && [ "$db1" -gt 0 ] ||
        fail "sealed bytes not counted: A source $sb0 -> $sb1, B destination $db1" || return 1
    grep -q 'virtcocod_phase_duration_seconds_count{phase="precopy",role="source"}' "$md/a1" ||
        fail "A has no precopy phase duration" || return 1
    echo "  A: $(grep -E 'downtime_seconds_(sum|count)|sealed_bytes_total\{role="source"' "$md/a1" | tr '\n' ' ')"
    migrate_and_check B A --p2p
}

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
# migration and the source runs on. B's hook is off for this (it would
# refuse first: scenarios-hook.sh), so that the agents' own refusal is
# still shown.
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
    hook_off B || return 1
    set_policy A '<platform id="abababababababababababababababababababababababababababababababab" name="elsewhere"/>' ||
        fail "cannot set the domain's policy" || return 1
    out=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1)
    rc=$?
    hook_on B
    set_policy A '<minTcb component="module" svn="0"/>' || fail "cannot restore the policy" || return 1
    [ $rc != 0 ] || fail "migration succeeded although the policy forbids host B" || return 1
    echo "  virsh: $out"
    echo "$out" | grep -q "qemu-coco: the host agent refused" ||
        fail "the error does not name the agent's refusal" || return 1
    echo "$out" | grep -q "is not in the VM's list of allowed destinations" ||
        fail "the error does not give the policy as the reason" || return 1
    rec=$(agent_record A source)
    echo "  agent A (source): $rec"
    [ "$(echo "$rec" | cut -d' ' -f2)" = aborted ] || fail "the source's session is not aborted" || return 1
    assert_no_domain B || return 1
    assert_a_runs "$soff"
}

# Host B's agent is down: B's relay has no agent, so it refuses libvirt's
# migrate-incoming (fail closed: the guest's memory would arrive in QEMU's
# stream) with the reason, before A's agent is asked anything; the source
# runs on, B keeps no domain, A's agent started no migration. B's agent is
# then started again as hosts-up.sh does. B's hook is off (it would refuse
# first: scenarios-hook.sh).
s_peer_down() {
    R=$(host_dir B)
    hook_off B || return 1
    agent_stop B || return 1
    [ ! -e "$R/run/coco-agent.sock" ] || fail "virtcocod on B left its socket behind" || return 1
    soff=$(console_size A)
    na=$(records A)
    m0=$(now)
    out=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1)
    rc=$?
    hook_on B
    echo "  virsh migrate failed after $(since "$m0") s: $out"
    agent_start B || return 1
    [ $rc != 0 ] || fail "migration succeeded without the destination's agent" || return 1
    echo "$out" | grep -q "'migrate-incoming': qemu-coco: confidential migration refused: no host agent has accepted this relay" ||
        fail "the error does not name B's relay refusing the incoming migration" || return 1
    echo "$out" | grep -q "cannot reach the host agent at '/run/libvirt/coco-agent.sock'" ||
        fail "the error does not name B's missing agent" || return 1
    [ "$(records A)" = "$na" ] || fail "A's agent started a migration B could never receive" || return 1
    assert_no_domain B || return 1
    assert_a_runs "$soff"
}

# No agent where qemu-coco's configuration points: a confidential domain
# fails closed. The relay refuses libvirt's migrate with the reason (its
# memory would leave the host unsealed in QEMU's stream), the source keeps
# running; save and restore, whose image holds the RAM, still work in
# qemu-coco (the hooks are off here: with them, the restore and the
# incoming migration are refused first, since the hook also finds no
# agent: scenarios-hook.sh).
s_no_agent() {
    for H in $HOSTS; do hook_off "$H"; done
    s_no_agent_hooks_off
    na_rc=$?
    for H in $HOSTS; do hook_on "$H"; done
    return $na_rc
}

s_no_agent_hooks_off() {
    for H in $HOSTS; do
        sed -i 's|^agent_socket = .*|agent_socket = /run/libvirt/no-agent.sock|' \
            "$(host_dir "$H")/sysconf/libvirt-coco/qemu-coco.conf"
    done
    out=$(virsh_h A save guest "$LAB/guest.save" 2>&1) || fail "virsh save failed: $out" || return 1
    out=$(virsh_h A restore "$LAB/guest.save" 2>&1) || fail "virsh restore failed: $out" || return 1
    rm -f "$LAB/guest.save"
    assert_relay A agent true || return 1
    assert_relay A agent-ready false || return 1
    soff=$(console_size A)
    rc=0
    out=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1) || rc=$?
    [ $rc != 0 ] || fail "the guest migrated without an agent" || return 1
    echo "  virsh: $(echo "$out" | tail -1)"
    echo "$out" | grep -q "confidential migration refused" ||
        fail "virsh's error does not say the migration was refused: $out" || return 1
    echo "$out" | grep -q "no-agent.sock" ||
        fail "virsh's error does not name the missing agent: $out" || return 1
    assert_no_domain B || return 1
    assert_a_runs "$soff" 3 0 || return 1
}

# The relay's socket directories (qemu-coco-XXXXXX: QEMU's monitor
# socket) in host $1's network namespace: the paths of its bound Unix
# sockets. Only the lab's processes live there (other programs' relays on
# this machine do not count).
relay_dirs() {
    ip netns exec "$NETNS_PREFIX$1" cat /proc/net/unix |
        awk '{ print $NF }' | grep '/qemu-coco-[^/]*/' | sed 's|/[^/]*$||' | sort -u
}

s_destroy() {
    # The host the guest runs on now (B after the proxy's scenarios, A
    # without them).
    dh=B
    virsh_h B domstate guest >/dev/null 2>&1 || dh=A
    qpid=$(cat "$(host_dir "$dh")/run/qemu/guest.pid")
    dirs=$(relay_dirs "$dh")
    [ -n "$dirs" ] || fail "no relay socket directory in host $dh's namespace" || return 1
    echo "  relay socket directory on $dh: $dirs"
    virsh_h "$dh" destroy guest >/dev/null || fail "destroy failed" || return 1
    i=0
    while pgrep -f "^$QEMU_COCO" >/dev/null; do
        i=$((i + 1)); [ $i -lt 50 ] || fail "a qemu-coco relay outlived its QEMU ($qpid)" || return 1; sleep 0.1
    done
    for d in $dirs; do
        [ ! -e "$d" ] || fail "the relay left its socket directory $d: $(ls -la "$d")" || return 1
    done
}

if [ "$LAB_LAYOUT" = installed ]; then
    # What the RPM installs, nothing lab-written (scenarios-installed.sh).
    scenario "installed layout: shipped configuration unmodified, hook and agent at their installed places" s_inst_layout &&
    scenario "installed layout: boot on A through /usr/libexec/qemu-coco" s_boot &&
    scenario "installed layout: virsh migrate --live A->B, sealed" s_migrate &&
    scenario "installed layout: virsh migrate --live B->A, sealed" s_inst_migrate_back &&
    scenario "installed layout: A's agent stopped: the relay refuses, source keeps running" s_inst_source_agent_down &&
    scenario "installed layout: B's agent stopped: B's hook refuses, source keeps running" s_inst_dest_agent_down
elif [ "${COCO_LAB_PART:-}" = liveness ]; then
# meson's e2e-liveness: deadlines and liveness (scenarios-liveness.sh).
scenario "boot on A through qemu-coco" s_boot &&
scenario "liveness: the agents with heartbeats every ${LV_HB} s, peer_deadline ${LV_PEER} s, switchover_timeout ${LV_SWITCH} s" s_lv_setup &&
scenario "liveness: network cut 12 s at the switchover (B imported the start token): A paused, reconciles, runs" s_lv_cut_long &&
scenario "liveness: network cut 1 s at the switchover: the migration completes" s_lv_cut_short &&
scenario "liveness: B's agent hung (SIGSTOP) in precopy: A aborts after peer_deadline, runs" s_lv_hang_precopy &&
scenario "liveness: B's agent hung (SIGSTOP) at the switchover: A paused, B's abort token resumes it" s_lv_hang_switchover &&
scenario "liveness: A's agent killed (SIGKILL) in precopy: interrupted record, source runs" s_lv_kill_src_precopy &&
scenario "liveness: B's agent killed (SIGKILL) in precopy: interrupted record, source runs" s_lv_kill_dst_precopy &&
scenario "liveness: A's agent killed (SIGKILL) at the switchover: interrupted record, recover, source runs" s_lv_kill_src_switchover &&
scenario "liveness: B's agent killed (SIGKILL) at the switchover: source frozen, documented recovery" s_lv_kill_dst_switchover &&
scenario "liveness: the agents' default deadlines again" s_lv_teardown &&
scenario "destroy: relay exits with QEMU" s_destroy
else
scenario "boot on A through qemu-coco" s_boot &&
scenario "virsh migrate --live A->B, QEMU's writes logged" s_migrate &&
scenario "virsh migrate --live --p2p B->A" s_migrate_p2p &&
scenario "paused guest: virsh migrate A->B, --p2p B->A; RAM identical before resume" s_migrate_paused &&
scenario "metrics: A's endpoint scraped during migrate A->B, both count it; back --p2p" s_metrics &&
scenario "virsh save on A, restore on B" s_save_restore &&
scenario "libvirtd restart on B, then migrate B->A" s_libvirtd_restart &&
scenario "policy forbids host B (B's hook off): the agent refuses, source keeps running" s_refuse &&
scenario "agent on B down (B's hook off): B's relay refuses the incoming migration, source keeps running" s_peer_down &&
scenario "hook: agent on B down, B's hook refuses before QEMU starts, source keeps running" s_hook_agent_down &&
scenario "hook: policy forbids host B, B's hook refuses, source keeps running" s_hook_policy &&
scenario "virt-coco migrate --confidential --live --verbose --timeline A->B" s_cli_migrate &&
scenario "virt-coco migrate --confidential --p2p --json B->A" s_cli_migrate_p2p_json &&
scenario "virt-coco migrate: B's agent down, preflight refuses, source keeps running" s_cli_preflight_refused &&
scenario "virt-coco migrate: policy forbids host B, preflight refuses" s_cli_policy_refused &&
scenario "virt-coco migrate: SIGINT during precopy aborts the job, source keeps running" s_cli_abort &&
scenario "relay: domjobabort during the agents' precopy, source keeps running" s_relay_abort &&
scenario "relay: domjobinfo counts private memory during the precopy, then back" s_relay_jobinfo &&
scenario "D-Bus: the Python example migrates A->B through Migrate(), watching the job" s_dbus_migrate &&
scenario "D-Bus: the client dies after Migrate(): the agent keeps the job, B->A completes" s_dbus_vanish &&
scenario "D-Bus: Abort() during the precopy: job cancelled, source keeps running" s_dbus_abort &&
scenario "D-Bus on a system bus with the real polkitd: 'sys' refused, 'nobody' (a rule) migrates A->B" s_dbus_polkit &&
scenario "fault: A's agent talks to B's through wire.py" s_fault_setup &&
scenario "fault: kill B's QEMU after Prepare: both abort, source runs" s_fault_kill_dest_qemu &&
scenario "fault: streams reset, fails after SOURCE_BLACKOUT: both abort, source resumes" s_fault_blackout &&
scenario "fault: connections cut during precopy: both abort, source runs" s_fault_cut &&
scenario "fault: kill B's QEMU after the start token: abort token, source resumes" s_fault_abort_token &&
scenario "fault: B lost after the start token: source paused, frozen once B is back, refuses resume" s_fault_frozen &&
scenario "fault: tampered bundle: import fails, both abort, source runs" s_fault_tamper &&
scenario "fault: replayed bundle: import fails, both abort, source runs" s_fault_replay &&
scenario "fault: dropped bundle: import fails, both abort, source runs" s_fault_drop &&
scenario "relay: domjobabort in the switchover window: one host runs the guest, records agree" s_relay_abort_switchover &&
scenario "fault: A's agent back on B's own port" s_fault_teardown &&
scenario "mgmt: a guest that dirties memory (10 %, 16 MiB/s) boots on A" s_mg_setup &&
scenario "mgmt: Nova's defaults A->B: sealed, its downtime step is the agent's target, persistent on B" s_mg_nova &&
scenario "mgmt: Nova permit_post_copy B->A: runs as pre-copy, its switch to post-copy refused with the reason" s_mg_nova_postcopy &&
scenario "mgmt: Nova live_migration_bandwidth 32 MiB/s A->B: the sealed rate within 10 %" s_mg_nova_bandwidth &&
scenario "mgmt: Nova force-complete B->A (suspend) on a migration that cannot converge: switches over at once" s_mg_nova_force &&
scenario "mgmt: Nova live_migration_tunnelled A->B: refused at the start naming the mode, source runs" s_mg_tunnelled &&
scenario "mgmt: VDSM parallel connections A->B: refused at the start naming the mode, source runs" s_mg_parallel &&
scenario "mgmt: <coco:precopy onNonConvergence=abort> A->B does not converge: aborted naming limit and rates, source runs" s_mg_abort &&
scenario "mgmt: <coco:precopy onNonConvergence=pause> A->B does not converge: the guest pauses for the rest, completes" s_mg_pause &&
scenario "mgmt: <coco:precopy maxBlackout=2000> B->A converges: switchover on the prediction" s_mg_converge &&
scenario "mgmt: VDSM 'Minimal downtime' A->B: completes, schedule and job stats sane, 52 MiB/s cap" s_mg_vdsm_minimal &&
scenario "mgmt: VDSM 'Suspend workload if needed' B->A: completes, schedule and job stats sane" s_mg_vdsm_suspend &&
scenario "mgmt: VDSM 'Post-copy migration' A->B: completes as pre-copy, then B->A" s_mg_vdsm_postcopy &&
scenario "no agent: qemu-coco refuses the migration with the reason, save/restore still work" s_no_agent &&
scenario "destroy: relay exits with QEMU" s_destroy
fi

T_SCEN=$(since "$T_START")
trap - EXIT
created=$(cat "$LAB/created" 2>/dev/null)
# The installed agents run from /usr/sbin/virtcocod in the hosts'
# namespaces: their pids, to check they are gone.
agents=""
[ "$LAB_LAYOUT" != installed ] ||
    agents=$(cat "$(host_dir A)/virtcocod.pid" "$(host_dir B)/virtcocod.pid" 2>/dev/null)
"$E2E_DIR/hosts-down.sh"
# Nothing may be left: namespaces, veth, mounts, directories, processes.
leftover=""
ip netns list 2>/dev/null | grep -q "^$NETNS_PREFIX" && leftover="$leftover netns"
ip link show "${NETNS_PREFIX}A0" >/dev/null 2>&1 && leftover="$leftover veth"
[ -e "$LAB" ] && leftover="$leftover $LAB"
mount | grep -q -e "$LAB/" -e "$LAB " && leftover="$leftover mounts"
for d in $created; do
    [ -e "$d" ] && leftover="$leftover $d"
done
# A process of the lab is an agent or names a file in the lab ("$LAB/":
# not the lab lock /tmp/coco-lab.lock of a flock around the lab).
for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = $$ ] && continue
    # A process may end between the glob and the read: no message then.
    if [ "$(readlink "$p/exe" 2>/dev/null)" = "$VIRTCOCOD" ] ||
        { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -q -e "$LAB/"; then
        leftover="$leftover pid:${p#/proc/}"
    fi
done
for p in $agents; do
    [ ! -d "/proc/$p" ] || leftover="$leftover agent:$p"
done
echo "$RESULTS"
echo "measurements (same run):$MEASURE"
echo "lab: $PASSED passed, $FAILED failed; hosts up after $T_UP s, scenarios done at $T_SCEN s, total $(since "$T_START") s"
[ -z "$leftover" ] || { echo "FAIL: left behind:$leftover"; exit 1; }
[ $FAILED = 0 ] && [ $PASSED -gt 0 ]
