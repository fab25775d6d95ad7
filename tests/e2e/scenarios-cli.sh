# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by run.sh: "virt-coco migrate --confidential" in the lab.
#
# The CLI runs in the source host's network namespace (it must reach the
# destination's agent over the veth), with that host's libvirt URI and
# agent socket. libvirt's host names (hostA, hostB) resolve only inside the
# hosts' mount namespaces, so the migration URI names the address.

VIRT_COCO=${VIRT_COCO:-$(dirname "$QEMU_COCO")/virt-coco}

cli_h() { # host args...
    ch=$1
    shift
    ip netns exec "$NETNS_PREFIX$ch" \
        env VIRT_COCO_AGENT_SOCKET="$(host_dir "$ch")/run/coco-agent.sock" \
        "$VIRT_COCO" -c "$(host_uri "$ch")" "$@"
}

# MIGRATE_CMD for migrate_and_check: stdout to $LAB/cli.out, stderr to
# $LAB/cli.err (and echoed, so that a failure shows them).
migrate_cli() {
    msrc=$1 mdst=$2
    shift 2
    cli_h "$msrc" migrate --confidential "$@" guest "$(host_uri "$mdst")" \
        > "$LAB/cli.out" 2> "$LAB/cli.err"
    mrc=$?
    [ $mrc = 0 ] || { tr '\r' '\n' < "$LAB/cli.err"; cat "$LAB/cli.out"; }
    return $mrc
}

s_cli_migrate() {
    [ -x "$VIRT_COCO" ] || fail "no virt-coco at '$VIRT_COCO'" || return 1
    MIGRATE_CMD=migrate_cli migrate_and_check A B --live --verbose --timeline \
        --migrateuri "tcp:$(host_ip B)" || return 1
    # virsh's progress: "\rMigration: [ xx %]", ending in 100 % and a newline.
    n=$(tr '\r' '\n' < "$LAB/cli.err" | grep -c '^Migration: \[')
    tail -c 20 "$LAB/cli.err" | grep -q "Migration: \[100 %\]$" ||
        fail "no final progress line: $(tr '\r' '\n' < "$LAB/cli.err" | tail -n 3)" || return 1
    echo "  $n progress lines on stderr"
    ! grep -q "^error" "$LAB/cli.err" || fail "an error on stderr: $(cat "$LAB/cli.err")" || return 1
    # --timeline: the source agent's record, phases with their steps.
    sed 's/^/  | /' "$LAB/cli.out"
    grep -q "^Migration .*state finished" "$LAB/cli.out" ||
        fail "the timeline does not show a finished source record" || return 1
    grep -q "source-blackout" "$LAB/cli.out" || fail "the timeline lacks the blackout step" || return 1
    grep -q "^Transfer: [0-9]* bytes" "$LAB/cli.out" || fail "the timeline lacks the transfer" || return 1
    grep -q "^Downtime: libvirt [0-9]* ms" "$LAB/cli.out" || fail "the timeline lacks libvirt's downtime" || return 1
}

s_cli_migrate_p2p_json() {
    MIGRATE_CMD=migrate_cli migrate_and_check B A --p2p --live --json \
        --migrateuri "tcp://$(host_ip A)" || return 1
    python3 - "$LAB/cli.out" <<'PY' || fail "the JSON stream is not as documented" || return 1
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
kinds = [e["event"] for e in events]
phases = [e for e in events if e["event"] == "phase"]
assert kinds[-1] == "result" and kinds.count("result") == 1, kinds
res = events[-1]
assert res["ok"] is True and res["error"] is None, res
assert res["bytes"] >= 16 * 1024 * 1024, res  # the pages the guest uses
assert res["total_ms"] > 0 and res["downtime_ms"] is not None, res
assert phases, "no phase events"
for p in phases:
    for k in ("migration", "phase", "from", "to", "steps", "duration_ms", "at_ms"):
        assert k in p, (k, p)
    assert isinstance(p["steps"], list)
assert len({p["migration"] for p in phases}) == 1
assert len(phases) >= 3, phases
steps = [s for p in phases for s in p["steps"]]
assert "source-blackout" in steps, steps
ats = [p["at_ms"] for p in phases]
assert ats == sorted(ats), ats
for e in events:
    if e["event"] == "progress":
        assert 0 <= e["percent"] <= 100 and e["data_total"] >= e["data_remaining"], e
print("  %d events: %d phase, %d progress; downtime %s ms, %d bytes, %s ms" % (
    len(events), len(phases), kinds.count("progress"), res["downtime_ms"],
    res["bytes"], res["total_ms"]))
PY
    [ ! -s "$LAB/cli.err" ] || fail "stderr not empty: $(cat "$LAB/cli.err")" || return 1
}

# B's agent is stopped: the preflight refuses before libvirt is called.
# The guest runs on, A's agent has no new record, B has no domain.
s_cli_preflight_refused() {
    R=$(host_dir B)
    agent_stop B || return 1
    soff=$(console_size A)
    nsrc=$(records A)
    m0=$(now)
    cli_h A --json migrate --confidential --live guest "$(host_uri B)" "tcp:$(host_ip B)" \
        > "$LAB/cli.out" 2> "$LAB/cli.err"
    rc=$?
    took=$(since "$m0")
    agent_start B || return 1
    echo "  refused after $took s (exit $rc): $(cat "$LAB/cli.err")"
    [ $rc = 1 ] || fail "exit $rc, not 1" || return 1
    [ "$(wc -l < "$LAB/cli.err")" = 1 ] || fail "the error is not one line" || return 1
    grep -q "^error: the destination host's agent on '$(host_ip B)' is not reachable: cannot connect to the peer agent at '$(host_ip B)' port '49300'" "$LAB/cli.err" ||
        fail "the error does not name B's agent" || return 1
    python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["event"] == "result" and r["ok"] is False and r["error"]["nick"] == "qmp-agent", r
' "$LAB/cli.out" || fail "no JSON error result: $(cat "$LAB/cli.out")" || return 1
    [ "$(records A)" = "$nsrc" ] || fail "A's agent has a new migration record" || return 1
    assert_no_domain B || return 1
    assert_a_runs "$soff" || return 1
    i=0
    until [ -S "$R/run/coco-agent.sock" ]; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "virtcocod on B did not come back" || return 1; sleep 0.1
    done
}

# The domain's policy allows only another platform: refused by the
# preflight with the firmware's own reason, before libvirt is called; the
# guest runs on at A.
s_cli_policy_refused() {
    soff=$(console_size A)
    nsrc=$(records A)
    set_policy A '<platform id="abababababababababababababababababababababababababababababababab" name="elsewhere"/>' ||
        fail "cannot set the domain's policy" || return 1
    cli_h A migrate --confidential --live guest "$(host_uri B)" "tcp:$(host_ip B)" \
        > "$LAB/cli.out" 2> "$LAB/cli.err"
    rc=$?
    set_policy A '<minTcb component="module" svn="0"/>' || fail "cannot restore the policy" || return 1
    echo "  exit $rc: $(cat "$LAB/cli.err")"
    [ $rc = 1 ] || fail "exit $rc, not 1" || return 1
    grep -q "policy refuses the destination.*not in the VM's list of allowed destinations" "$LAB/cli.err" ||
        fail "the error does not give the policy" || return 1
    [ "$(records A)" = "$nsrc" ] || fail "A's agent has a new migration record" || return 1
    assert_no_domain B || return 1
    assert_a_runs "$soff"
}

# Ctrl-C while the agents move the guest: virDomainAbortJob() once, the
# command waits for the migration call, prints libvirt's error and exits 1;
# the guest runs on at A, B keeps no domain.
s_cli_abort() {
    # Many precopy rounds: the signal lands while the agents precopy (the
    # source relay owns the migration then; libvirt's monitor is free).
    agent_rounds A 1000 || return 1
    soff=$(console_size A)
    nsrc=$(records A)
    # Not through cli_h: $! must be the command itself (ip and env exec it).
    ip netns exec "${NETNS_PREFIX}A" \
        env VIRT_COCO_AGENT_SOCKET="$(host_dir A)/run/coco-agent.sock" \
        "$VIRT_COCO" -c "$(host_uri A)" migrate --confidential --live --verbose \
        guest "$(host_uri B)" "tcp:$(host_ip B)" > "$LAB/cli.out" 2> "$LAB/cli.err" &
    cpid=$!
    i=0
    until [ "$(records A)" -gt "$nsrc" ] &&
        [ "$(agent_record A source | cut -d' ' -f2)" = precopy ]; do
        i=$((i + 1))
        [ $i -lt 200 ] || { kill -INT "$cpid"; wait "$cpid"; agent_rounds A 2; fail "A's agent never reached precopy"; return 1; }
        sleep 0.05
    done
    echo "  SIGINT during precopy: $(agent_record A source)"
    kill -INT "$cpid"
    # virsh would wait for ever too; the lab must not.
    i=0
    while kill -0 "$cpid" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -ge 600 ]; then
            echo "  libvirt's job on A after 60 s: $(virsh_h A domjobinfo guest | tr -s ' \n' ' ')"
            kill -KILL "$cpid"
            wait "$cpid"
            agent_rounds A 2
            fail "virt-coco still waits for the migration call 60 s after SIGINT"
            return 1
        fi
        sleep 0.1
    done
    wait "$cpid"
    rc=$?
    agent_rounds A 2 || return 1
    err=$(tr '\r' '\n' < "$LAB/cli.err" | grep -v '^Migration: \[' | grep -v '^$')
    echo "  exit $rc: $err"
    [ $rc = 1 ] || fail "exit $rc after SIGINT, not 1" || return 1
    echo "$err" | grep -q "^error: .*cancel" || fail "the error does not say the job was cancelled" || return 1
    assert_no_domain B || return 1
    rec=$(agent_record A source)
    echo "  agent A (source): $rec"
    [ "$(echo "$rec" | cut -d' ' -f2)" = aborted ] || fail "A's session is not 'aborted'" || return 1
    assert_a_runs "$soff"
}
