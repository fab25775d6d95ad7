# SPDX-License-Identifier: LGPL-2.1-or-later
#
# scenarios-hook.sh: the fail-closed qemu.d hook (docs/hook.rst) on the
# destination. hosts-up.sh installs the built 50-libvirt-coco into each
# host's /etc/libvirt/hooks/qemu.d/ before its libvirtd starts. A plain
# "virsh migrate --live" A->B that B cannot receive confidentially is
# refused by B's hook during Prepare: before QEMU starts on B, before A's
# agent hears of a migration; the guest runs on on A.

# The checks after a refusal by B's hook: $1 virsh's output, $2 what the
# reason must contain, $3 A's record count before, $4 B's QEMU log size
# before, $5 A's console offset.
hook_assert_refused() {
    echo "$1" | grep -q "libvirt-coco: this host cannot receive the confidential domain 'guest'" ||
        fail "the error is not B's hook refusal" || return 1
    echo "$1" | grep -q -- "$2" || fail "the error does not name the reason '$2'" || return 1
    # libvirt writes a "starting up" line to the domain's log when it runs QEMU.
    [ "$(stat -c %s "$(host_dir B)/log/qemu/guest.log" 2>/dev/null || echo 0)" = "$4" ] ||
        fail "QEMU was started on B: $(tail -n 3 "$(host_dir B)/log/qemu/guest.log")" || return 1
    [ "$(records A)" = "$3" ] || fail "A's agent has a new migration record" || return 1
    assert_no_domain B || return 1
    assert_a_runs "$5"
}

hook_qemu_log_size() { stat -c %s "$(host_dir B)/log/qemu/guest.log" 2>/dev/null || echo 0; }

# Host B's agent is down: B's hook refuses, naming the agent. B's agent is
# then started again as hosts-up.sh does.
s_hook_agent_down() {
    R=$(host_dir B)
    agent_stop B || return 1
    [ ! -e "$R/run/coco-agent.sock" ] || fail "virtcocod on B left its socket behind" || return 1
    soff=$(console_size A)
    nsrc=$(records A)
    qlog=$(hook_qemu_log_size)
    m0=$(now)
    out=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1)
    rc=$?
    echo "  virsh migrate failed after $(since "$m0") s: $out"
    agent_start B || return 1
    [ $rc != 0 ] || fail "migration succeeded without the destination's agent" || return 1
    hook_assert_refused "$out" "this host's agent is not reachable at '/run/libvirt/coco-agent.sock'" \
        "$nsrc" "$qlog" "$soff"
}

# The domain's policy (set live on A) allows only another platform: B's
# hook refuses, naming the policy.
s_hook_policy() {
    soff=$(console_size A)
    nsrc=$(records A)
    qlog=$(hook_qemu_log_size)
    set_policy A '<platform id="abababababababababababababababababababababababababababababababab" name="elsewhere"/>' ||
        fail "cannot set the domain's policy" || return 1
    out=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1)
    rc=$?
    set_policy A '<minTcb component="module" svn="0"/>' || fail "cannot restore the policy" || return 1
    echo "  virsh: $out"
    [ $rc != 0 ] || fail "migration succeeded although the policy forbids host B" || return 1
    hook_assert_refused "$out" "policy refuses the destination" "$nsrc" "$qlog" "$soff"
}

# Host $1's hook off and on again. libvirtd lists hooks/qemu.d at every
# call and skips files that are not executable (it needs the directory to
# hold an executable when it starts: hosts-up.sh installs it before).
hook_off() { chmod a-x "$(host_dir "$1")/etc/hooks/qemu.d/50-libvirt-coco"; }
hook_on() { chmod 0755 "$(host_dir "$1")/etc/hooks/qemu.d/50-libvirt-coco"; }
