# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by run.sh: the source relay plays the migrating QEMU while the
# agents precopy the private memory (docs/qemu-coco.rst, "The gates"):
# libvirt's job statistics count that memory, and virDomainAbortJob
# (virsh domjobabort, what virsh migrate's Ctrl-C calls) reaches it.
# Both scenarios start and end with the guest on host A.

# One line of host $1's active job: "processed_bytes total_bytes remaining_bytes".
jobinfo_line() {
    virsh_h "$1" domjobinfo guest 2>/dev/null | awk -F': *' '
        function b(s,  a) { split(s, a, " "); v = a[1];
            if (a[2] == "KiB") v *= 1024; else if (a[2] == "MiB") v *= 1048576;
            else if (a[2] == "GiB") v *= 1073741824; return int(v) }
        $1 == "Memory processed" { p = b($2) } $1 == "Memory total" { t = b($2) }
        $1 == "Memory remaining" { r = b($2) }
        END { if (t != "") printf "%d %d %d\n", p, t, r }'
}

# virsh migrate --live --verbose A->B; meanwhile virsh domjobinfo on A
# shows the private memory: total >= the guest's RAM, processed growing.
s_relay_jobinfo() {
    ram=$((192 * 1024 * 1024))
    agent_rounds A 12 || return 1
    soff=$(console_size A)
    doff=$(console_size B)
    virsh_h A migrate --live --verbose guest "$(host_uri B)" > "$LAB/migrate.out" 2>&1 &
    mpid=$!
    samples=""
    n=0
    max=0
    while kill -0 $mpid 2>/dev/null; do
        l=$(jobinfo_line A)
        if [ -n "$l" ]; then
            set -- $l
            samples="$samples $(($1 / 1048576))/$(($2 / 1048576))MiB"
            if [ "$2" -ge "$ram" ]; then
                n=$((n + 1))
                [ "$1" -gt "$max" ] && max=$1
            fi
        fi
        sleep 0.05
    done
    wait $mpid
    rc=$?
    agent_rounds A 2 || return 1
    echo "  domjobinfo on A (processed/total):$samples"
    [ $rc = 0 ] || fail "virsh migrate failed: $(cat "$LAB/migrate.out")" || return 1
    grep -q "Migration: \[" "$LAB/migrate.out" || fail "virsh --verbose showed no progress: $(cat "$LAB/migrate.out")" || return 1
    echo "  virsh --verbose: $(tr '\r' '\n' < "$LAB/migrate.out" | grep -o 'Migration: \[[ 0-9]*%\]' | sort -u | tr '\n' ' ')"
    [ $n -ge 2 ] || fail "fewer than 2 job samples counted the private memory (total >= $ram)" || return 1
    # The pages the guest uses, at least its checksum workload's 16 MiB
    # (pages it never touched are not sent: total counts them, processed
    # does not).
    [ "$max" -ge $((16 * 1024 * 1024)) ] || fail "job stats processed only $max bytes of private memory" || return 1
    MEASURE="$MEASURE
relay precopy A->B: $n domjobinfo samples with private memory, processed up to $((max / 1048576)) MiB:$samples"
    assert_state B "running (migrated)" || return 1
    assert_continues A "$soff" B "$doff" || return 1
    # The completed job counts the private memory too (QEMU's reply plus
    # the agent's numbers).
    job_stats B || return 1
    kib=$(memory_kib)
    echo "  completed job on B: ${kib} KiB processed"
    is_count "$kib" && [ "$kib" -ge $((16 * 1024)) ] ||
        fail "the completed job counts ${kib} KiB, less than the guest's checksum workload" || return 1
    migrate_and_check B A
}

# virsh domjobabort on A while the agents precopy: virsh migrate fails
# with "canceled by client", the guest runs on on A, both agents' records
# are 'aborted', B has no domain.
s_relay_abort() {
    agent_rounds A 1000 || return 1
    soff=$(console_size A)
    virsh_h A migrate --live guest "$(host_uri B)" > "$LAB/migrate.out" 2>&1 &
    mpid=$!
    i=0
    until [ -n "$(jobinfo_line A)" ]; do
        i=$((i + 1))
        [ $i -lt 200 ] || { kill $mpid; fail "no migration job on A"; return 1; }
        sleep 0.05
    done
    sleep 1
    before=$(jobinfo_line A)
    a0=$(now)
    out=$(virsh_h A domjobabort guest 2>&1)
    arc=$?
    abort_s=$(since "$a0")
    wait $mpid
    rc=$?
    done_s=$(since "$a0")
    agent_rounds A 2 || return 1
    echo "  job before the abort (processed total remaining): $before"
    echo "  domjobabort returned after $abort_s s (rc $arc: $out), virsh migrate ended after $done_s s"
    echo "  virsh migrate: $(cat "$LAB/migrate.out")"
    [ $arc = 0 ] || fail "virsh domjobabort failed: $out" || return 1
    [ $rc != 0 ] || fail "the migration succeeded although it was aborted" || return 1
    grep -q "canceled by client" "$LAB/migrate.out" || fail "virsh migrate does not say 'canceled by client'" || return 1
    MEASURE="$MEASURE
relay domjobabort during precopy: domjobabort ${abort_s} s, virsh migrate failed ${done_s} s after it"
    i=0
    while :; do
        srec=$(agent_record A source) || srec=""
        drec=$(agent_record B destination) || drec=""
        case "$(echo "$srec" | cut -d' ' -f2)/$(echo "$drec" | cut -d' ' -f2)" in aborted/aborted) break ;; esac
        i=$((i + 1))
        [ $i -lt 100 ] || fail "agent records not aborted: A '$srec', B '$drec'" || return 1
        sleep 0.1
    done
    echo "  agent A (source): $srec"
    echo "  agent B (destination): $drec"
    assert_no_domain B || return 1
    assert_a_runs "$soff" || return 1
    assert_relay A role '"none"'
}

# domjobabort in the switchover window: the source agent ran
# SOURCE_BLACKOUT and the final step, the relay holds libvirt's
# migrate-continue until the destination acknowledges. The proxy holds
# that acknowledgement for 1 s while virsh domjobabort runs on A: on the
# TLS control connection it is the first record back from B after the
# start token passed on stream 0 (tls:back@cctr:start-token; heartbeats
# are told apart by their size), a phase message without payload (33
# bytes sealed: B's "switchover done"). libvirt sends migrate_cancel only after
# migrate-continue's answer, so the abort waits for the agents' verdict.
# Whichever way it ends, exactly one host runs the guest, its memory
# intact, and both records agree.
s_relay_abort_switchover() {
    soff=$(console_size A)
    doff=$(console_size B)
    ab="$LAB/window-abort.out"
    rm -f "$ab"
    cmd="(t0=\$(date +%s%N); virsh -q -c '$(host_uri A)' domjobabort guest > $ab.msg 2>&1; rc=\$?; \
echo \"rc=\$rc ms=\$(( (\$(date +%s%N) - t0) / 1000000 ))\" > $ab) & sleep 1"
    wire_start --exec-before tls:back@cctr:start-token "$cmd" || return 1
    m0=$(now)
    OUT=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1)
    rc=$?
    wall=$(since "$m0")
    i=0
    until [ -s "$ab" ]; do
        i=$((i + 1)); [ $i -lt 300 ] || { wire_stop; fail "domjobabort never returned"; return 1; }; sleep 0.1
    done
    wire_stop || return 1
    wire_actions
    grep -q "ACTION exec-before: tls:back #[0-9]* (D->S len 33) " "$LAB/wire.log" ||
        fail "the proxy did not hold the switchover acknowledgement" || return 1
    echo "  virsh migrate: exit $rc after $wall s: $OUT"
    echo "  domjobabort: $(cat "$ab"): $(cat "$ab.msg")"
    if [ $rc = 0 ]; then
        echo "  the abort came too late: the migration completed"
        assert_no_domain A || return 1
        assert_state B "running (migrated)" || return 1
        wait_record A source finished || return 1
        st=$(record_field B destination 'r.get("state")')
        case "$st" in committed | finished) ;; *) fail "B's record is '$st'" || return 1 ;; esac
        assert_continues A "$soff" B "$doff" || return 1
        # Back to A for the scenarios that follow.
        migrate_and_check B A
    else
        echo "  the abort won: the migration was cancelled"
        wait_record A source aborted || return 1
        wait_record B destination aborted || return 1
        tl=$(record_field A source '" ".join(e["event"] + ":" + e["from"] + "->" + e["to"] for e in r["timeline"])')
        echo "  A's timeline: $tl"
        # After the start token: failure path (3), the abort token
        # travels back and the source resumes with it. B may send it
        # before A's relay reports the cancel (libvirt's cancel ends B's
        # QEMU too): the token then comes first, both are true causes.
        # libvirt's 'cont' (its Confirm, resuming the source) may reach
        # the agent before the token: it is held in await-token and the
        # token releases it (docs/qemu-coco.rst).
        echo "$tl" | grep -Eq "cancel:(switchover|handover)->await-token( cont:await-token->await-token)? peer-abort-token:await-token->aborted|peer-abort-token:(switchover|handover)->aborted cancel:aborted->aborted" ||
            fail "the source did not take the abort-token path" || return 1
        assert_b_clean || return 1
        assert_a_runs "$soff"
    fi
}
