# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by run.sh after scenarios-faults.sh (it uses its proxy helpers):
# deadlines and liveness (issue 11, parts 3 and 4). The agents run with
# short deadlines for these scenarios (LV_CONF: heartbeats every second, a
# peer silent for 5 s is lost, the switchover deadline 8 s) and A's agent
# talks to B's through wire.py for the whole block, so nothing is
# restarted between a fault and the next migration. Each scenario injects
# one fault into a migration A->B: a real network cut (A's veth down, then
# up again) at the switchover longer and shorter than the deadlines, B's
# agent stopped (SIGSTOP) during the precopy and during the switchover,
# either agent killed (SIGKILL) during the precopy and at the switchover.
# Then it asserts: the guest runs on exactly one host, its heartbeat goes
# on, no checksum or whole-memory round reports damage, both agents'
# records are final and tell the same story (the same session; aborted on
# both, or finished and committed; a killed agent's record "interrupted"
# with the state it was in), and the next migration A->B and back B->A
# succeeds without restarting anything.

# Deadlines of the agents for this block (docs/virtcocod.rst).
LV_HB=1
LV_PEER=5
LV_SWITCH=8
LV_HOLD=5
LV_WINDOW=60

# Set the liveness keys in host $1's virtcocod.conf (replacing them).
lv_conf() {
    lc_f="$(host_dir "$1")/virtcocod.conf"
    [ -f "$lc_f.lv-orig" ] || cp "$lc_f" "$lc_f.lv-orig"
    sed -i -e '/^heartbeat_interval = /d' -e '/^peer_deadline = /d' \
        -e '/^switchover_timeout = /d' -e '/^hold_timeout = /d' \
        -e '/^reconnect_window = /d' "$lc_f"
    printf 'heartbeat_interval = %s\npeer_deadline = %s\nswitchover_timeout = %s\nhold_timeout = %s\nreconnect_window = %s\n' \
        "$LV_HB" "$LV_PEER" "$LV_SWITCH" "$LV_HOLD" "$LV_WINDOW" >> "$lc_f"
}

s_lv_setup() {
    lv_conf A && lv_conf B || fail "cannot write the agents' liveness keys" || return 1
    wire_cert || return 1
    agent_restart B || return 1
    agent_restart A --peer-port "$WIRE_PORT" || return 1
    grep -q "^peer_deadline = $LV_PEER\$" "$(host_dir A)/virtcocod.conf" ||
        fail "A's configuration lacks peer_deadline = $LV_PEER" || return 1
}

s_lv_teardown() {
    wire_stop
    lv_link_up
    for H in $HOSTS; do
        f="$(host_dir "$H")/virtcocod.conf"
        [ -f "$f.lv-orig" ] && mv "$f.lv-orig" "$f"
    done
    agent_restart B || return 1
    agent_restart A
}

LV_DEV=${NETNS_PREFIX}A0
# A command (for wire.py's --exec) that cuts host A's link at once and
# restores it $1 seconds later, in the background; the times go to
# $LAB/cut.log.
lv_cut_cmd() {
    echo "ip -n ${NETNS_PREFIX}A link set $LV_DEV down && echo down \$(date +%s.%N) >> $LAB/cut.log; (sleep $1; ip -n ${NETNS_PREFIX}A link set $LV_DEV up; echo up \$(date +%s.%N) >> $LAB/cut.log) > /dev/null 2>&1 &"
}
lv_link_up() { ip -n "${NETNS_PREFIX}A" link set "$LV_DEV" up 2>/dev/null; }
# Wait until the cut is over (A's link up again, the address reachable).
lv_wait_link() {
    i=0
    until grep -q '^up ' "$LAB/cut.log" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt "$(polls 40)" ] || { lv_link_up; fail "the cut did not end"; return 1; }; sleep 0.1
    done
    # B's agent port answers from A again (no ping in the lab's packages).
    i=0
    until ip netns exec "${NETNS_PREFIX}A" python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], 49300), 1).close()' \
        "$(host_ip B)" >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 20 ] || fail "host B unreachable after the cut" || return 1; sleep 0.2
    done
    set -- $(sed -n 's/^down //p' "$LAB/cut.log") $(sed -n 's/^up //p' "$LAB/cut.log")
    echo "  link cut for $(awk "BEGIN{printf \"%.1f\", $2 - $1}") s"
}

# A command that stops (SIGSTOP) host $1's agent and continues it $2
# seconds later, in the background.
lv_stop_cmd() {
    echo "p=\$(cat $(host_dir "$1")/virtcocod.pid); kill -STOP \$p; echo stop \$(date +%s.%N) >> $LAB/cut.log; (sleep $2; kill -CONT \$p; echo cont \$(date +%s.%N) >> $LAB/cut.log) > /dev/null 2>&1 &"
}
lv_wait_cont() {
    i=0
    until grep -q '^cont ' "$LAB/cut.log" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt "$(polls 40)" ] || fail "the stopped agent was not continued" || return 1; sleep 0.1
    done
}

# The fault's migration A->B: sets OUT, RC and WALL (virsh's error, exit
# and seconds).
lv_migrate() {
    : > "$LAB/cut.log"
    m0=$(now)
    OUT=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1)
    RC=$?
    WALL=$(since "$m0")
    echo "  virsh migrate: exit $RC after $WALL s: $OUT"
    wire_actions
}

# Newest record of host $1 with role $2: "session state".
lv_rec() { record_field "$1" "$2" '"%s %s" % (r.get("session"), r.get("state"))'; }

# Both agents' records of the fault's migration are final (or, for a
# source, "frozen": none here) and agree: the same session, aborted on
# both or finished/committed, a killed agent's "interrupted". Waits 20 s
# at most for them to settle. $1: the expected pair as an extended regular
# expression over "SOURCE-STATE/DESTINATION-STATE".
lv_records_agree() {
    i=0
    while :; do
        sr=$(lv_rec A source 2>/dev/null) dr=$(lv_rec B destination 2>/dev/null)
        set -- "$1" $sr $dr
        pair="$3/$5"
        echo "$pair" | grep -Eq "^($1)\$" && [ "$2" = "$4" ] && break
        i=$((i + 1))
        [ $i -lt "$(polls 20)" ] ||
            fail "records do not agree: source '$sr', destination '$dr' (expected sessions equal and '$1')" || return 1
        sleep 0.1
    done
    echo "  records: session $2, source $3, destination $5"
    echo "  A's failure: $(record_field A source 'r.get("failure")')"
    echo "  B's failure: $(record_field B destination 'r.get("failure")')"
    tl=$(record_field A source '" ".join(e["event"] + ":" + e["from"] + "->" + e["to"] for e in r.get("timeline", []))')
    echo "  A's timeline: $tl"
}

# The guest runs on A alone: B holds nothing of it, A runs on with its
# heartbeat, checksum and whole-memory rounds, 0 BAD since offset $1.
lv_a_alone() {
    assert_b_clean || return 1
    assert_a_runs "$1"
}

# The next migration, without restarting anything: A->B (through the
# proxy, which injects nothing more) and back B->A, both checked fully.
lv_next() {
    migrate_and_check A B || return 1
    migrate_and_check B A
}

# Host $1's agent log since byte $2 names $3 (a basic regular expression).
lv_log_since() { tail -c +"$(($2 + 1))" "$(host_dir "$1")/virtcocod.log"; }
agent_log_size() { stat -c %s "$(host_dir "$1")/virtcocod.log"; }

# 1. A real network cut at the switchover, after B imported the start
# token (B's "switchover done", the first phase message back on the TLS
# control connection after the start token passed: the cut starts when it
# reaches the proxy, before it is forwarded), longer than peer_deadline and
# the switchover deadline. A loses B after peer_deadline and, not knowing
# whether B imported the start token, keeps the guest paused
# (await-token) and refuses migrate-continue; libvirt cancels, B's QEMU is
# destroyed, B aborts and keeps its abort token; when the link is back A
# reconnects, gets the abort token and the guest runs on A again.
s_lv_cut_long() {
    soff=$(console_size A)
    alog=$(agent_log_size A)
    wire_start --exec-before tls:back@cctr:start-token "$(lv_cut_cmd 12)" || return 1
    lv_migrate
    [ "$RC" != 0 ] || { lv_link_up; fail "the migration succeeded although the link was cut for 12 s"; return 1; }
    grep -q "ACTION exec-before: tls:back #[0-9]* (D->S len 33) " "$LAB/wire.log" || { lv_link_up; fail "the proxy did not cut the link at B's switchover acknowledgement"; return 1; }
    # While the link is down: A keeps the guest paused, B holds nothing.
    s=$(virsh_h A domstate --reason guest 2>&1)
    echo "  host A during the cut: $s, agent: $(lv_rec A source)"
    case "$s" in
    paused*) ;;
    *) grep -q '^up ' "$LAB/cut.log" || { lv_link_up; fail "host A runs the guest while its fate is unknown: '$s'"; return 1; } ;;
    esac
    lv_wait_link || return 1
    lv_records_agree "aborted/aborted" || return 1
    lv_log_since A "$alog" | grep -Eq "the peer host '$(host_ip B)' (was lost in state '(switchover|handover)'|did not confirm the switchover)" ||
        fail "A's agent does not name the lost peer host and the state" || return 1
    lv_log_since A "$alog" | grep -q "reconnected to the peer host '$(host_ip B)'" ||
        fail "A's agent did not reconnect to learn the start token's fate" || return 1
    echo "$tl" | grep -Eq "(peer-lost|deadline):(switchover|handover)->await-token" ||
        fail "A did not wait for the start token's fate" || return 1
    echo "$tl" | grep -q "peer-abort-token:await-token->aborted" ||
        fail "A did not resume with B's abort token" || return 1
    [ "$(record_field A source 'r.get("may_run")')" = True ] || fail "A's record says the source may not run" || return 1
    lv_a_alone "$soff" || return 1
    wire_stop
    wire_start || return 1
    lv_next
}

# 2. The same cut, 1 s: shorter than peer_deadline. TCP delivers B's
# "switchover done" when the link is back; the migration completes (or,
# should a deadline still fire, aborts cleanly).
s_lv_cut_short() {
    soff=$(console_size A)
    doff=$(console_size B)
    wire_start --exec-before tls:back@cctr:start-token "$(lv_cut_cmd 1)" || return 1
    lv_migrate
    grep -q "ACTION exec-before: tls:back #[0-9]* (D->S len 33) " "$LAB/wire.log" || { lv_link_up; fail "the proxy did not cut the link at B's switchover acknowledgement"; return 1; }
    lv_wait_link || return 1
    if [ "$RC" = 0 ]; then
        assert_no_domain A || return 1
        assert_state B "running (migrated)" || return 1
        lv_records_agree "finished/(committed|finished)" || return 1
        assert_continues A "$soff" B "$doff" || return 1
        # The next migration: back to A.
        migrate_and_check B A || return 1
    else
        lv_records_agree "aborted/aborted" || return 1
        lv_a_alone "$soff" || return 1
        lv_next || return 1
    fi
}

# 3. and 4. B's agent hangs (SIGSTOP), continued after 8 s (> peer_deadline):
# A's migration ends within peer_deadline plus a few seconds, naming the
# peer host and the cause; the guest runs on A alone.
lv_hang() { # trigger-option trigger timeline-regex
    soff=$(console_size A)
    alog=$(agent_log_size A)
    wire_start "$1" "$2" "$(lv_stop_cmd B 8)" || return 1
    lv_migrate
    lv_wait_cont || return 1
    [ "$RC" != 0 ] || fail "the migration succeeded although B's agent hung" || return 1
    grep -q "ACTION ${1#--}: ${2%:[0-9]*}" "$LAB/wire.log" || fail "the proxy did not stop B's agent" || return 1
    # The agent's words, naming the peer host and the cause: its
    # heartbeats stopped (or a write to it did not complete in time).
    why="the peer host '$(host_ip B)' (stopped answering: nothing received for '$LV_PEER' seconds|stopped reading)"
    lv_log_since A "$alog" | grep -Eq "$why" ||
        fail "A's agent does not say \"$why\"" || return 1
    # A decided at peer_deadline; virsh returns after libvirt's cancel
    # (and, after the start token, after the held resume's hold_timeout).
    lim=$((LV_PEER + LV_HOLD + 6))
    awk "BEGIN{exit !($WALL < $lim)}" || fail "virsh migrate ended after $WALL s, not within $lim s" || return 1
    lv_records_agree "aborted/aborted" || return 1
    echo "$tl" | grep -Eq "$3" || fail "A's timeline does not show '$3'" || return 1
    record_field A source 'r.get("failure")' | grep -q "'$(host_ip B)'" ||
        fail "A's record does not name the peer host" || return 1
    lv_a_alone "$soff" || return 1
    wire_stop
    wire_start || return 1
    lv_next
}
s_lv_hang_precopy() { lv_hang --exec cctr:memory:50 "(peer-lost|local-failure):precopy->aborted"; }
# Stopped before the start token reaches it: A cannot know whether it was
# imported, keeps the guest paused, and resumes with B's abort token once
# B is back.
s_lv_hang_switchover() {
    lv_hang --exec-before cctr:start-token "(peer-lost|deadline):switchover->await-token.*peer-abort-token:await-token->aborted"
}

# 5.-8. An agent killed (SIGKILL) mid-migration, restarted as hosts-up.sh
# does (A's with the proxy's port again): the restarted agent lists the
# old record as "interrupted", with the state it was in and why.
# $1 host, $2 role.
lv_assert_interrupted() {
    st=$(record_field "$1" "$2" '"%s %s %s %s" % (r.get("state"), r.get("interrupted_in"), r.get("final"), r.get("may_run"))')
    echo "  host $1's restarted agent: $2 record: $st: $(record_field "$1" "$2" 'r.get("failure")')"
    set -- "$1" "$2" $st
    [ "$3" = interrupted ] && [ "$5" = True ] && [ "$6" = False ] ||
        fail "host $1's $2 record is not final and 'interrupted'" || return 1
    case "$4" in None | "" | interrupted) fail "the record does not say which state was interrupted" ;; esac
}
lv_restart_killed() { # host [options]
    h=$1
    shift
    ! kill -0 "$(cat "$(host_dir "$h")/virtcocod.pid")" 2>/dev/null || fail "host $h's agent was not killed" || return 1
    n=$(grep -c "migrations were interrupted by the agent's stop" "$(host_dir "$h")/virtcocod.log")
    agent_start "$h" "$@" || return 1
    i=0
    while [ "$(grep -c "migrations were interrupted by the agent's stop" "$(host_dir "$h")/virtcocod.log")" = "$n" ]; do
        i=$((i + 1)); [ $i -lt 50 ] || fail "host $h's restarted agent did not report the interrupted migration" || return 1; sleep 0.1
    done
}

s_lv_kill_src_precopy() {
    soff=$(console_size A)
    wire_start --exec cctr:memory:50 "$(kill_cmd "$(host_dir A)/virtcocod.pid")" || return 1
    lv_migrate
    [ "$RC" != 0 ] || fail "the migration succeeded although A's agent was killed" || return 1
    echo "$OUT" | grep -q "qemu-coco: .*host agent" || fail "virsh's error does not name the host agent" || return 1
    lv_restart_killed A --peer-port "$WIRE_PORT" || return 1
    lv_assert_interrupted A source || return 1
    lv_records_agree "interrupted/aborted" || return 1
    lv_a_alone "$soff" || return 1
    wire_stop
    wire_start || return 1
    lv_next
}

s_lv_kill_dst_precopy() {
    soff=$(console_size A)
    wire_start --exec cctr:memory:50 "$(kill_cmd "$(host_dir B)/virtcocod.pid")" || return 1
    lv_migrate
    [ "$RC" != 0 ] || fail "the migration succeeded although B's agent was killed" || return 1
    lv_restart_killed B || return 1
    lv_assert_interrupted B destination || return 1
    lv_records_agree "aborted/interrupted" || return 1
    lv_a_alone "$soff" || return 1
    wire_stop
    wire_start || return 1
    lv_next
}

# B's agent killed when it has imported the start token (its "switchover
# done" reaches the proxy): B's firmware session dies with it, so B can
# never give the abort token back. A loses B and keeps the guest paused;
# B's restarted agent knows no such session: A's record becomes "frozen"
# (docs/virtcocod.rst: the source cannot resume without the abort token),
# A refuses to resume, and the operator's way out is the documented one
# (destroy the source, restore the guest: it was saved first, as in the
# fault scenario "B lost after the start token").
s_lv_kill_dst_switchover() {
    out=$(virsh_h A save guest "$LAB/lv.save" 2>&1) || fail "virsh save failed: $out" || return 1
    out=$(virsh_h A restore "$LAB/lv.save" 2>&1) || fail "virsh restore failed: $out" || return 1
    soff=$(console_size A)
    wait_lines A "$soff" "HB" 2 20 || return 1
    wire_start --exec cctr:start-token "$(kill_cmd "$(host_dir B)/virtcocod.pid")" || return 1
    lv_migrate
    [ "$RC" != 0 ] || fail "the migration succeeded although B's agent was killed" || return 1
    lv_restart_killed B || return 1
    lv_assert_interrupted B destination || return 1
    lv_recover_a
    s=$(virsh_h A domstate --reason guest 2>&1)
    case "$s" in
    running*)
        lv_records_agree "aborted/interrupted" || return 1
        ;;
    *)
        lv_records_agree "frozen/interrupted" || return 1
        [ "$(record_field A source 'r.get("may_run")')" = False ] || fail "A's frozen record says the source may run" || return 1
        if res=$(virsh_h A resume guest 2>&1); then
            fail "the frozen source resumed"
            return 1
        fi
        echo "  virsh resume: $res"
        echo "$res" | grep -q "recover" || fail "virsh resume does not say what the operator can do" || return 1
        virsh_h A destroy guest >/dev/null || fail "destroy on A failed" || return 1
        wait_record A source finished || return 1
        assert_b_clean || return 1
        out=$(virsh_h A restore "$LAB/lv.save" 2>&1) || fail "virsh restore failed: $out" || return 1
        soff=$(console_size A)
        ;;
    esac
    rm -f "$LAB/lv.save"
    lv_a_alone "$soff" || return 1
    wire_stop
    wire_start || return 1
    lv_next
}

# A's agent killed when B has imported the start token: A's relay
# refuses migrate-continue (no agent: fail closed), libvirt cancels, B's
# QEMU is destroyed and B aborts; the relay keeps the guest paused (the
# agent told it so at the switchover).
s_lv_kill_src_switchover() {
    soff=$(console_size A)
    wire_start --exec-before cctr:start-token "$(kill_cmd "$(host_dir A)/virtcocod.pid")" || return 1
    lv_migrate
    [ "$RC" != 0 ] || fail "the migration succeeded although A's agent was killed" || return 1
    s=$(virsh_h A domstate --reason guest 2>&1)
    echo "  host A before the agent's restart: $s"
    lv_restart_killed A --peer-port "$WIRE_PORT" || return 1
    lv_assert_interrupted A source || return 1
    lv_recover_a || return 1
    lv_records_agree "(interrupted|aborted)/aborted" || return 1
    lv_a_alone "$soff" || return 1
    wire_stop
    wire_start || return 1
    lv_next
}

# Send host $1's agent one request (a JSON line) on its relay socket, as
# root; print the answer line.
agent_request() {
    python3 - "$(host_dir "$1")/run/coco-agent.sock" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    d = s.recv(65536)
    if not d:
        break
    buf += d
print(buf.decode().strip())
PY
}

# The documented recovery of a source whose migration's outcome A's agent
# could not learn by itself: when the guest is paused on A, 'recover ID'
# on A's relay socket (what 'virt-coco recover ID' sends).
lv_recover_a() {
    i=0
    while :; do
        s=$(virsh_h A domstate --reason guest 2>&1)
        case "$s" in running*) echo "  host A: $s (no recovery needed)"; return 0 ;; esac
        case "$(record_field A source 'r.get("state")')" in frozen | interrupted) break ;; esac
        i=$((i + 1))
        [ $i -lt "$(polls 20)" ] || break
        sleep 0.1
    done
    id=$(record_field A source 'r.get("id")')
    echo "  host A: $s; recover $id"
    # The relay may not have found the restarted agent yet (it retries
    # every second): until then there is no running QEMU to recover.
    i=0
    while :; do
        ans=$(agent_request A "{\"type\": \"recover\", \"id\": \"$id\"}")
        case "$ans" in *'"type":"recover"'* | *'"type": "recover"'*) break ;; esac
        i=$((i + 1))
        [ $i -lt 10 ] || break
        sleep 1
    done
    echo "  recover: $ans"
    i=0
    while :; do
        s=$(virsh_h A domstate --reason guest 2>&1)
        case "$s" in running*) echo "  host A: $s"; return 0 ;; esac
        i=$((i + 1))
        [ $i -lt "$(polls 15)" ] || fail "host A: the guest is '$s' after recover: $ans" || return 1
        sleep 0.1
    done
}
