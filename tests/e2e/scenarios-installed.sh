# SPDX-License-Identifier: LGPL-2.1-or-later
#
# scenarios-installed.sh: the lab on what the RPM installs
# (COCO_LAB_LAYOUT=installed, docs/lab.rst "The installed layout"). Both
# hosts see the staged 'meson install' (stage-install.sh) at /usr and /etc
# in their mount namespaces, with the shipped configuration as installed;
# their only own files are the x509 certificates at libvirt's locations.
# The agent runs from /usr/sbin/virtcocod in all of the host's namespaces,
# with no option but --foreground.

# The source tree: the shipped configuration files as committed.
INST_SRC=$(cd "$E2E_DIR/../.." && pwd)

# in_host HOST COMMAND...: COMMAND in host HOST's mount namespace (its
# libvirtd's: the one its agent, QEMUs and hooks run in).
in_host() {
    ih_h=$1
    shift
    nsenter -t "$(cat "$(host_dir "$ih_h")/libvirtd.pid")" -m -- "$@"
}

# What each host runs is what the install put there, unmodified: the
# configuration files byte for byte as data/ ships them (kvm.conf and
# qemu-coco.conf as the install's build generated them), the hook's symlink in qemu.d pointing to
# the installed binary, the agent /usr/sbin/virtcocod without a
# configuration option, in the host's mount namespace, serving
# /run/libvirt-coco/agent.sock, its platform identity created in
# /var/lib/libvirt-coco; and the machine itself has none of it.
s_inst_layout() {
    for H in $HOSTS; do
        in_host "$H" cmp /etc/libvirt-coco/virtcocod.conf "$INST_SRC/data/virtcocod.conf" ||
            fail "host $H: /etc/libvirt-coco/virtcocod.conf is not the shipped data/virtcocod.conf" || return 1
        # qemu-coco.conf and kvm.conf name this build's paths: as the
        # install's build generated them.
        for f in qemu-coco.conf kvm.conf; do
            in_host "$H" cmp "/etc/libvirt-coco/$f" "$INST_BUILD/data/$f" ||
                fail "host $H: /etc/libvirt-coco/$f is not the one the build generated" || return 1
        done
        il_link=$(in_host "$H" readlink /etc/libvirt/hooks/qemu.d/50-libvirt-coco)
        [ "$il_link" = ../../../../usr/libexec/libvirt-coco-hook ] ||
            fail "host $H: the hook's symlink points to '$il_link'" || return 1
        in_host "$H" test -x /etc/libvirt/hooks/qemu.d/50-libvirt-coco ||
            fail "host $H: the hook does not resolve to an executable" || return 1
        il_pid=$(cat "$(host_dir "$H")/virtcocod.pid")
        il_exe=$(readlink "/proc/$il_pid/exe")
        [ "$il_exe" = "$INST_AGENT" ] || fail "host $H: the agent runs '$il_exe'" || return 1
        il_args=$(tr '\0' ' ' < "/proc/$il_pid/cmdline")
        [ "$il_args" = "$INST_AGENT --foreground " ] || fail "host $H: the agent runs as '$il_args'" || return 1
        [ "$(readlink "/proc/$il_pid/ns/mnt")" = "$(readlink "/proc/$(cat "$(host_dir "$H")/libvirtd.pid")/ns/mnt")" ] ||
            fail "host $H: the agent is not in the host's mount namespace" || return 1
        in_host "$H" test -S /run/libvirt-coco/agent.sock ||
            fail "host $H: no agent socket at /run/libvirt-coco/agent.sock" || return 1
        in_host "$H" test -s /var/lib/libvirt-coco/platform.conf ||
            fail "host $H: no platform identity in /var/lib/libvirt-coco" || return 1
        echo "  host $H: $il_args($(in_host "$H" stat -c '%N' /etc/libvirt/hooks/qemu.d/50-libvirt-coco))"
    done
    ! cmp -s "$(host_dir A)/varlib/libvirt-coco/platform.conf" "$(host_dir B)/varlib/libvirt-coco/platform.conf" ||
        fail "hosts A and B have the same platform identity" || return 1
    for f in /etc/libvirt-coco /usr/sbin/virtcocod /usr/libexec/qemu-coco /var/lib/libvirt-coco; do
        [ ! -e "$f" ] || echo "  note: this machine has its own $f (hidden from the hosts' view)"
    done
}

s_inst_migrate_back() { migrate_and_check B A; }

# A's agent is stopped (SIGTERM): the relay of A's guest cannot reach it
# and refuses libvirt's 'migrate' (QEMU's stream would carry the guest's
# memory in the clear); the guest runs on at A, B keeps no domain; A's
# agent is then started again as the host starts it.
s_inst_source_agent_down() {
    agent_stop A || return 1
    [ ! -e "$(agent_sock A)" ] || fail "the agent on A left its socket behind" || return 1
    soff=$(console_size A)
    m0=$(now)
    out=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1)
    rc=$?
    echo "  virsh migrate failed after $(since "$m0") s: $out"
    agent_start A || return 1
    [ $rc != 0 ] || fail "the guest migrated while its host's agent was stopped" || return 1
    echo "$out" | grep -q "qemu-coco: confidential migration refused: " ||
        fail "the error is not the relay's refusal" || return 1
    echo "$out" | grep -q "the guest's memory would leave this host unsealed" ||
        fail "the error does not give the reason" || return 1
    assert_no_domain B || return 1
    assert_a_runs "$soff"
}

# B's agent is stopped: B's installed hook refuses the incoming domain
# during Prepare, naming the installed socket; the guest runs on at A.
s_inst_dest_agent_down() {
    agent_stop B || return 1
    soff=$(console_size A)
    nsrc=$(records A)
    qlog=$(hook_qemu_log_size)
    m0=$(now)
    out=$(virsh_h A migrate --live guest "$(host_uri B)" 2>&1)
    rc=$?
    echo "  virsh migrate failed after $(since "$m0") s: $out"
    agent_start B || return 1
    [ $rc != 0 ] || fail "the guest migrated to a host whose agent was stopped" || return 1
    hook_assert_refused "$out" "this host's agent is not reachable at '/run/libvirt-coco/agent.sock'" \
        "$nsrc" "$qlog" "$soff"
}
