# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by run.sh: fault injection (issue #5). For the block A's agent
# talks to B's through wire.py, a man-in-the-middle proxy between the two
# agents (in B's network namespace, port 49301 -> 49300; s_fault_setup
# restarts A's agent with --peer-port 49301, s_fault_teardown puts it
# back). Each scenario starts the proxy with one fault and migrates the
# guest A->B through it: the proxy tampers with, replays or drops a
# memory bundle, resets connections, or kills B's QEMU or agent when a
# given record passes. Every scenario then asserts on both hosts: domain
# state and reason, heartbeat, checksum and whole-memory rounds, the
# agents' records (both final, the same story), no agent connection left,
# nothing left on B, virsh's error naming the reason; and that the next
# migration A->B (through an idle proxy) and back B->A passes in full,
# without restarting anything. Never both running, never neither.

WIRE_PORT=49301

# A command that SIGKILLs the process of pid file $1 and waits until it is
# gone (or a zombie).
kill_cmd() {
    echo "p=\$(cat $1); kill -KILL \$p; i=0; while [ \$i -lt 200 ] && kill -0 \$p 2>/dev/null && ! grep -q '^State:.*Z' /proc/\$p/status 2>/dev/null; do i=\$((i+1)); sleep 0.01; done"
}

# The same for B's QEMU, and wait (2 s at most) until B's agent handled
# its end: the next message then finds B's session aborted, not racing
# with the agent's main loop.
kill_qemu_b_cmd() {
    echo "$(kill_cmd "$(host_dir B)/run/qemu/guest.pid"); i=0; while [ \$i -lt 200 ] && ! grep -q \"pid=\$p: QEMU ended\" $(host_dir B)/virtcocod.log; do i=\$((i+1)); sleep 0.01; done"
}


# wire.py reaches B's agent from B's own address, and B checks that a
# source's client certificate names the address it connects from
# (docs/virtcocod.rst, "Trust between agents"). While the proxy sits
# between them, A therefore presents a certificate of the lab's CA that
# names host A and the proxy's address (what a source behind a NAT would
# need); wire_cert_off puts A's own back.
wire_cert() {
    wc_d=$LAB/pki/hostA-wire
    wc_conf=$(host_dir A)/virtcocod.conf
    if [ ! -f "$wc_d/clientcert.pem" ]; then
        mkdir -p "$wc_d/private"
        certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text \
            --outfile "$wc_d/private/clientkey.pem" 2>/dev/null &&
            printf 'organization = libvirt-coco lab\ncn = hostA\ndns_name = hostA\nip_address = %s\nip_address = %s\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 2\n' \
                "$(host_ip A)" "$(host_ip B)" > "$wc_d/client.info" &&
            certtool --generate-certificate --no-text --load-privkey "$wc_d/private/clientkey.pem" \
                --load-ca-certificate "$LAB/pki/ca/cacert.pem" --load-ca-privkey "$LAB/pki/ca/cakey.pem" \
                --template "$wc_d/client.info" --outfile "$wc_d/clientcert.pem" 2>/dev/null ||
            fail "cannot make host A's certificate for the proxy" || return 1
        chmod 600 "$wc_d/private/clientkey.pem"
    fi
    sed -i -e "s|^tls_client_cert = .*|tls_client_cert = $wc_d/clientcert.pem|" \
        -e "s|^tls_client_key = .*|tls_client_key = $wc_d/private/clientkey.pem|" "$wc_conf"
    grep -q "^tls_client_cert = $wc_d/clientcert.pem\$" "$wc_conf" ||
        fail "cannot give host A's agent the proxy's certificate" || return 1
}
wire_cert_off() {
    sed -i -e "s|^tls_client_cert = .*|tls_client_cert = $LAB/pki/hostA/clientcert.pem|" \
        -e "s|^tls_client_key = .*|tls_client_key = $LAB/pki/hostA/private/clientkey.pem|" \
        "$(host_dir A)/virtcocod.conf"
}

# The block's setup: A's agent talks to the proxy's port, with the
# certificate the proxy's address needs.
s_fault_setup() {
    : > "$LAB/wire.log"
    wire_cert || return 1
    agent_restart A --peer-port "$WIRE_PORT"
}
s_fault_teardown() {
    wire_stop
    wire_cert_off
    agent_restart A
}

# Start the proxy with fault options $@ (A's agent already talks to its
# port), in place of the one running.
wire_start() {
    wire_stop
    : > "$LAB/wire.log"
    ip netns exec "${NETNS_PREFIX}B" python3 "$E2E_DIR/wire.py" \
        --listen "$(host_ip B):$WIRE_PORT" --to "$(host_ip B):49300" --log "$LAB/wire.log" "$@" \
        > "$LAB/wire.out" 2>&1 < /dev/null &
    echo $! > "$LAB/wire.pid"
    i=0
    until grep -qs ready "$LAB/wire.out"; do
        i=$((i + 1)); [ $i -lt 50 ] || fail "wire.py did not start: $(cat "$LAB/wire.out")" || return 1; sleep 0.1
    done
}

# Stop the proxy (it logs a summary).
wire_stop() {
    [ -f "$LAB/wire.pid" ] || return 0
    p=$(cat "$LAB/wire.pid")
    kill -TERM "$p" 2>/dev/null
    i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 30 ]; do i=$((i + 1)); sleep 0.1; done
    rm -f "$LAB/wire.pid"
    cat "$LAB/wire.log" >> "$LAB/wire-all.log"
}

# The next migration after a fault, without restarting anything: A->B
# through the proxy (which injects nothing) and back B->A, both checked
# in full.
wire_next() {
    wire_start || return 1
    migrate_and_check A B
    wn_rc=$?
    wire_stop
    [ $wn_rc = 0 ] || return 1
    migrate_and_check B A
}

# A fault scenario's migration: the proxy started with fault options $@,
# A->B through it (it must fail), the proxy stopped and its actions shown.
wire_fault() {
    wire_start "$@" || return 1
    wire_migrate
    wf_rc=$?
    wire_stop || return 1
    wire_actions
    return $wf_rc
}

# What the proxy did: its ACTION lines.
wire_actions() { grep ' ACTION ' "$LAB/wire.log" | sed 's/^/  wire: /'; }

# Field $3 (python expression over the record r) of host $1's newest
# record with role $2.
record_field() {
    python3 - "$(host_dir "$1")/migrations" "$2" "$3" <<'PY'
import glob, json, os, sys
recs = []
for f in glob.glob(os.path.join(sys.argv[1], "*.json")):
    try:
        recs.append((os.path.getmtime(f), json.load(open(f))))
    except (OSError, ValueError):
        pass
recs = [x for x in recs if x[1].get("role") == sys.argv[2]]
if not recs:
    sys.exit(1)
r = max(recs, key=lambda x: x[0])[1]
print(eval(sys.argv[3]))
PY
}

# Established connections on the agents' and the proxy's ports, host $1
# ("?" when they cannot be listed: never taken for none).
wire_conns() {
    wc_out=$(ip netns exec "$NETNS_PREFIX$1" ss -Htn state established \
        "( sport = :49300 or dport = :49300 or sport = :$WIRE_PORT or dport = :$WIRE_PORT )") ||
        { echo "?"; return 1; }
    [ -z "$wc_out" ] && echo 0 || echo "$wc_out" | wc -l
}

# Wait until host $1's newest $2 record is in state $3 (10 s).
wait_record() {
    i=0
    while :; do
        st=$(record_field "$1" "$2" 'r.get("state")' 2>/dev/null)
        [ "$st" = "$3" ] && return 0
        i=$((i + 1))
        [ $i -lt "$(polls 10)" ] || fail "host $1: the $2's record is '$st', expected '$3'" || return 1
        sleep 0.1
    done
}

# pids of QEMUs with guest RAM on host B.
b_qemus() { grep -l -s "$LAB/ram/[B]/" /proc/[0-9]*/cmdline | cut -d/ -f3 | tr '\n' ' '; }

# Host B holds nothing of the guest: no domain, no QEMU, no pid file, no
# RAM file; no agent connection on either host.
assert_b_clean() {
    i=0
    while virsh_h B domstate guest >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt "$(polls 10)" ] || { assert_no_domain B; return 1; }; sleep 0.1
    done
    R=$(host_dir B)
    i=0
    while [ -e "$R/run/qemu/guest.pid" ] || [ -n "$(find "$LAB/ram/B" -type f 2>/dev/null)" ] ||
        [ -n "$(b_qemus)" ]; do
        i=$((i + 1))
        [ $i -lt "$(polls 10)" ] || fail "host B left behind: $(ls "$R/run/qemu/guest.pid" 2>/dev/null) $(find "$LAB/ram/B" -type f) qemu $(b_qemus)" || return 1
        sleep 0.1
    done
    i=0
    while [ "$(wire_conns A)" != 0 ] || [ "$(wire_conns B)" != 0 ]; do
        i=$((i + 1))
        [ $i -lt "$(polls 5)" ] || fail "agent connections left: A $(wire_conns A), B $(wire_conns B)" || return 1
        sleep 0.1
    done
}

# A failed migration A->B through the proxy; sets OUT (virsh's error) and
# WALL. $1: console offset variable name is left to the caller.
wire_migrate() {
    m0=$(now)
    OUT=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1)
    rc=$?
    WALL=$(since "$m0")
    echo "  virsh migrate: exit $rc after $WALL s: $OUT"
    [ $rc != 0 ] || fail "the migration succeeded despite the fault" || return 1
}

# Both sessions aborted; virsh's error and the records name the reason.
# $1: regex virsh's error must match; $2: regex of B's record failure.
assert_both_aborted() {
    wait_record A source aborted || return 1
    wait_record B destination aborted || return 1
    sf=$(record_field A source 'r.get("failure")')
    df=$(record_field B destination 'r.get("failure")')
    echo "  agent A (source): aborted: $sf"
    echo "  agent B (destination): aborted: $df"
    ss=$(record_field A source 'r.get("session")')
    ds=$(record_field B destination 'r.get("session")')
    [ -n "$ss" ] && [ "$ss" = "$ds" ] ||
        fail "the records are of different sessions: A '$ss', B '$ds'" || return 1
    echo "$OUT" | grep -Eq "$1" || fail "virsh's error does not match '$1'" || return 1
    echo "$df" | grep -Eq "$2" || fail "B's record does not name the reason '$2'" || return 1
    [ "$(record_field A source 'r.get("may_run")')" = True ] || fail "A's record says the source may not run"
}

# 1. Kill B's QEMU when A opens its first data stream (the proxy holds
# that stream's hello until B's agent logged QEMU's end): after libvirt's
# Prepare and the agents' control connection, before B's session starts
# and before any record. B's agent refuses the incoming migration that
# waited for its streams and tells the source why (peer-aborted); A
# aborts without a token and runs on. B never started a migration: no
# new record there.
s_fault_kill_dest_qemu() {
    soff=$(console_size A)
    nb=$(records B)
    blog=$(agent_log_size B)
    wire_fault --exec-before hello:stream "$(kill_qemu_b_cmd)" || return 1
    grep -q "ACTION exec-before: hello:stream #1" "$LAB/wire.log" || fail "the proxy did not kill B's QEMU" || return 1
    grep -q "summary: .* 0 memory bundles" "$LAB/wire.log" || fail "memory moved although B's QEMU was dead" || return 1
    wait_record A source aborted || return 1
    sf=$(record_field A source 'r.get("failure")')
    echo "  agent A (source): aborted: $sf"
    why="QEMU on the destination ended before the migration started"
    echo "$sf" | grep -q "the peer host aborted the migration: $why" ||
        fail "A's record does not give B's reason" || return 1
    [ "$(record_field A source 'r.get("may_run")')" = True ] || fail "A's record says the source may not run" || return 1
    # libvirt reports whichever it saw first: B's QEMU gone, or A's relay
    # refusing 'migrate' with the agents' verdict.
    echo "$OUT" | grep -Eq "qemu unexpectedly closed the monitor|refused to start the migration: confidential migration aborted: .*$why" ||
        fail "virsh's error names neither B's QEMU nor the agents' verdict" || return 1
    # A learnt it from B at once, not at its peer deadline (15 s).
    awk "BEGIN{exit !($WALL < 10)}" || fail "virsh migrate ended after $WALL s" || return 1
    [ "$(records B)" = "$nb" ] || fail "B's agent recorded a migration it never started" || return 1
    lv_log_since B "$blog" | grep -q "incoming session .* refused: $why" ||
        fail "B's agent log does not name the refusal" || return 1
    assert_b_clean || return 1
    assert_a_runs "$soff" || return 1
    wire_next
}

# 2. After SOURCE_BLACKOUT, before the start token: once the destination
# acknowledged the last precopy round (the lab's agents run two: the
# first record back on the TLS control connection after the second epoch
# token passed on stream 0 is B's "round done"), the proxy resets the
# source's side of every stream (the destination's side stays open and
# silent). The streams are idle then: nothing fails until the source
# writes the final epoch after SOURCE_BLACKOUT; it aborts without a token,
# libvirt cancels and the source resumes.
# B learns of the failure twice and records whichever comes first: A's
# abort message (through the proxy) or its own QEMU failing once A's
# libvirt cancelled the device-state stream. Both are the true cause
# seen from B; which wins is a race between two processes.
s_fault_blackout() {
    soff=$(console_size A)
    wire_fault --reset-streams tls:back@cctr:epoch-token:2 || return 1
    grep -q "ACTION reset-streams: tls:back #[0-9]* (D->S len 33) " "$LAB/wire.log" ||
        fail "the proxy did not reset the streams after B's last round acknowledgement" || return 1
    tl=$(record_field A source '" ".join(e["event"] + ":" + e["from"] + "->" + e["to"] for e in r["timeline"])')
    echo "  A's timeline: $tl"
    # SOURCE_BLACKOUT ran (precopy->blackout), the final step failed
    # before the start token and the source aborted without a token.
    echo "$tl" | grep -q "pre-switchover:precopy->blackout local-failure:blackout->aborted" ||
        fail "the source did not abort between SOURCE_BLACKOUT and the start token" || return 1
    [ "$(record_field A source 'r["counters"]["blackout_us"] > 0')" = True ] ||
        fail "the source never reached SOURCE_BLACKOUT" || return 1
    assert_both_aborted "refused the switchover: confidential migration aborted: cannot write to stream .*; the source keeps running" \
        "the peer host aborted|QEMU on the destination reported that the migration failed" || return 1
    assert_b_clean || return 1
    assert_a_runs "$soff" || return 1
    wire_next
}

# 3. A network partition during precopy: the proxy resets every
# connection (control and streams, both sides) once the 50th memory
# bundle passed. Both agents lose their peer: both abort, the source runs.
s_fault_cut() {
    soff=$(console_size A)
    wire_fault --cut cctr:memory:50 || return 1
    grep -q "ACTION cut: cctr:memory #50" "$LAB/wire.log" || fail "the proxy did not cut the connections" || return 1
    assert_both_aborted "refused to start the migration: confidential migration aborted: .*; the source keeps running" \
        "the peer host '[0-9.]*' was lost in state 'precopy'|peer host aborted|cannot read from stream .*Connection reset by peer" || return 1
    assert_b_clean || return 1
    assert_a_runs "$soff" || return 1
    wire_next
}

# 4. After the start token, the destination alive: B's QEMU is killed once
# the start token passed; B's agent runs ABORT(D), its abort token travels
# back, the source runs ABORT(S) with it and resumes.
s_fault_abort_token() {
    soff=$(console_size A)
    qb="$(host_dir B)/run/qemu/guest.pid"
    wire_fault --exec cctr:start-token "$(kill_cmd "$qb")" || return 1
    grep -q "ACTION exec: cctr:start-token" "$LAB/wire.log" || fail "the proxy did not kill B's QEMU" || return 1
    tl=$(record_field A source '" ".join(e["event"] + ":" + e["from"] + "->" + e["to"] for e in r["timeline"])')
    echo "  A's timeline: $tl"
    echo "$tl" | grep -q "peer-abort-token:[a-z-]*->aborted" ||
        fail "the source did not abort with the destination's token" || return 1
    # B records whichever it learns first: its QEMU's end, or A's request
    # for the abort token (A's QEMU saw the device-state stream break).
    # virsh reports whichever failure libvirt saw first: the source's
    # device-state stream dying with B's QEMU ("unexpectedly failed"), B's
    # QEMU gone in Finish ("qemu unexpectedly closed the monitor", or the
    # domain already gone on B: "Domain not found"), or the relay refusing
    # migrate-continue with the agents' verdict.
    assert_both_aborted "job 'migration out' unexpectedly failed|qemu unexpectedly closed the monitor|Domain not found: no domain with matching uuid|refused the switchover: confidential migration aborted: .*; the source keeps running" \
        "QEMU on the destination ended|the peer host aborted the migration" || return 1
    assert_b_clean || return 1
    assert_a_runs "$soff" || return 1
    wire_next
}

# 5. The destination host lost after the start token: B's agent and QEMU
# are killed (SIGKILL) once the start token passed (a host crash). The
# source cannot know whether B imported the token: it stays paused and
# waits for the token's fate (await-token), refuses to resume with the
# reason, and tries to reconnect (B's address answers through the proxy,
# B's agent does not). When B's agent is back it knows the session only
# as interrupted and has no abort token to give: A's record becomes
# frozen. The documented recovery then: the guest was saved before, the
# source is destroyed and the guest restored on A.
s_fault_frozen() {
    out=$(virsh_h A save guest "$LAB/frozen.save" 2>&1) || fail "virsh save failed: $out" || return 1
    out=$(virsh_h A restore "$LAB/frozen.save" 2>&1) || fail "virsh restore failed: $out" || return 1
    soff=$(console_size A)
    wait_lines A "$soff" "HB" 2 20 || return 1
    R=$(host_dir B)
    wire_start --exec cctr:start-token \
        "$(kill_cmd "$R/virtcocod.pid"); $(kill_cmd "$R/run/qemu/guest.pid")" || return 1
    wire_migrate
    rc=$?
    [ $rc = 0 ] || { wire_stop; return 1; }
    wire_actions
    grep -q "ACTION exec: cctr:start-token" "$LAB/wire.log" || fail "the proxy did not kill B" || return 1
    ! kill -0 "$(cat "$R/virtcocod.pid")" 2>/dev/null || fail "B's agent was not killed" || return 1
    wait_record A source await-token || return 1
    echo "  agent A (source): await-token: $(record_field A source 'r.get("failure")')"
    frozen_paused "the source stays paused until the destination's abort token is back" || return 1
    # B's host back: its agent lists the session interrupted; A reconnects
    # and learns that no abort token will come.
    agent_start B || return 1
    wait_record A source frozen || return 1
    echo "  agent A (source): frozen: $(record_field A source 'r.get("failure")')"
    echo "  agent B (destination): $(record_field B destination '"%s: %s" % (r.get("state"), r.get("failure"))')"
    [ "$(record_field A source 'r.get("session")')" = "$(record_field B destination 'r.get("session")')" ] ||
        fail "B's newest record is not of the frozen session" || return 1
    [ "$(record_field B destination 'r.get("state")')" = interrupted ] ||
        fail "B's restarted agent does not list the session as interrupted" || return 1
    frozen_paused "destroy it or recover the destination" || return 1
    # Recovery: destroy the source, restore the guest on A.
    virsh_h A destroy guest >/dev/null || fail "destroy on A failed" || return 1
    wait_record A source finished || return 1
    wire_stop
    assert_b_clean || return 1
    out=$(virsh_h A restore "$LAB/frozen.save" 2>&1) || fail "virsh restore after the freeze failed: $out" || return 1
    rm -f "$LAB/frozen.save"
    soff=$(console_size A)
    assert_a_runs "$soff" || return 1
    wire_next
}

# The source is paused and stays so: 'virsh resume' is refused with a
# message containing $1, no heartbeat for 2 s, the record says it may not
# run, the relay holds it paused.
frozen_paused() {
    s=$(virsh_h A domstate --reason guest 2>&1)
    echo "  host A: $s"
    case "$s" in
    "paused"*) ;;
    *) fail "host A: the source is '$s', not paused" || return 1 ;;
    esac
    hoff=$(console_size A)
    res=$(virsh_h A resume guest 2>&1)
    rrc=$?
    echo "  virsh resume: exit $rrc: $res"
    [ $rrc != 0 ] || fail "the paused source resumed" || return 1
    echo "$res" | grep -q "$1" || fail "virsh resume does not say '$1'" || return 1
    sleep 2
    [ "$(count_since A "$hoff" HB)" = 0 ] || fail "the paused source printed heartbeats" || return 1
    [ "$(virsh_h A domstate guest)" = paused ] || fail "the source left paused" || return 1
    [ "$(record_field A source 'r.get("may_run")')" = False ] || fail "A's record says the source may run" || return 1
    # QEMU resumed the source by itself when its migration failed; the
    # relay stopped it again on the agent's word and holds it.
    st=$(relay_state A)
    echo "  relay A: $(echo "$st" | grep -o '"stops":[0-9]*'), $(echo "$st" | grep -o '"hold-paused":[a-z]*')"
    assert_relay A hold-paused true
}

# 6.-8. A tampered, a replayed and a dropped memory bundle: B's import fails,
# B's agent aborts at once and names the cause, the source aborts and runs
# on. The tampered one is late in epoch 0 (the guest uses about 30,000 of
# its 49,152 pages: about 470 bundles of 64; only those are sent): the
# source has sent most of the epoch, so B's abort tells it rather than a
# closed stream.
fault_bundle() { # option bundle expected-B-failure-regex
    soff=$(console_size A)
    wire_fault "$1" "$2" || return 1
    grep -q "ACTION ${1#--}: memory bundle $2 " "$LAB/wire.log" || fail "the proxy did not ${1#--} bundle $2" || return 1
    assert_both_aborted "confidential migration aborted: .*; the source keeps running" "$3" || return 1
    grep -Eq "import failed: .*$3" "$(host_dir B)/virtcocod.log" || fail "B's agent log does not name the import failure" || return 1
    assert_b_clean || return 1
    assert_a_runs "$soff" || return 1
    wire_next
}
s_fault_tamper() { fault_bundle --tamper 400 "does not verify \(tampered\)"; }
s_fault_replay() { fault_bundle --replay 100 "already received \(replay\)"; }
s_fault_drop() { fault_bundle --drop 100 "is missing \(dropped or reordered\)"; }
