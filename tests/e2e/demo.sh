#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# demo.sh BUILDDIR: a narrated confidential live migration for a newcomer
# (docs/lab.rst, "The demo"). As root, after tests/e2e/deps.sh (or
# .ci/deps) and a build:
#
#   meson setup build && meson compile -C build && sudo tests/e2e/demo.sh build
#
# Brings up the two-host lab (tests/e2e/hosts-up.sh), boots the lab guest
# on host A through qemu-coco, migrates it live and confidentially to host B
# with virt-coco, shows that it runs on from where it was on B with its
# memory intact (heartbeat, checksum rounds, no BAD), and takes the lab
# down whatever happens. Exit 0 when all of that held, 1 otherwise.
#
# COCO_DEMO_MIGRATE replaces the migration command; it runs as
# "$1 -c SRCURI $2... DOMAIN DESTURI" (default "virt-coco migrate
# --confidential --live --verbose --timeline", virt-coco from BUILDDIR);
# e.g. COCO_DEMO_MIGRATE='virsh migrate --live' (the agents still move the
# RAM: the relay drives them whoever asks libvirt to migrate).
set -u
[ $# -eq 1 ] && [ -d "$1" ] || { echo "usage: $0 BUILDDIR (a built meson build directory)" >&2; exit 1; }
BUILD=$(cd "$1" && pwd)
QEMU_COCO=${QEMU_COCO:-$BUILD/tools/qemu-coco}
VIRTCOCOD=${VIRTCOCOD:-$BUILD/tools/virtcocod}
VIRT_COCO=${VIRT_COCO:-$BUILD/tools/virt-coco}
COCO_LAB_CACHE=${COCO_LAB_CACHE:-$BUILD/e2e-cache}
export QEMU_COCO VIRTCOCOD VIRT_COCO COCO_LAB_CACHE
. "$(dirname "$0")/lab-env.sh"
# The guest runs the whole-memory check too (MEM lines).
LAB_MEMCHECK=1
. "$E2E_DIR/lab-lib.sh"

MIGRATE=${COCO_DEMO_MIGRATE:-virt-coco migrate --confidential --live --verbose --timeline}
case "$MIGRATE" in
virt-coco\ *) MIGRATE="$VIRT_COCO ${MIGRATE#virt-coco }" ;;
esac
BOOT_TIMEOUT=${COCO_LAB_BOOT_TIMEOUT:-180}

say() { printf '\n== %s\n' "$*"; }
tell() { printf '   %s\n' "$*"; }
quote() { sed 's/^/   | /'; }
bye() { printf '\nDEMO FAILED: %s\n' "$*"; exit 1; }

# "Cannot run here" (77 for the test suites) is a failure of the demo.
LAB_SKIP_RC=1
[ "$(id -u)" = 0 ] || bye "run it as root (it creates network namespaces and runs libvirtd)"
for b in "$QEMU_COCO" "$VIRTCOCOD"; do
    [ -x "$b" ] || bye "'$b' is not built: meson compile -C $BUILD"
done
[ -x /usr/sbin/libvirtd ] && command -v virsh >/dev/null && [ -x /usr/bin/qemu-system-x86_64 ] ||
    bye "libvirt and QEMU are missing: run tests/e2e/deps.sh (or .ci/deps) first"
prog=${MIGRATE%% *}
command -v "$prog" >/dev/null || bye "the migration command '$prog' is missing (COCO_DEMO_MIGRATE?)"

say "1. Two libvirt hosts on this machine"
tell "Host A and host B are network namespaces joined by a veth (10.97.0.1, .2),"
tell "each with its own libvirtd, /etc/libvirt and /run, and its own virtcocod:"
tell "the host agent that moves guest memory to the other host's agent, sealed"
tell "by the (emulated) confidential-computing firmware. Guest RAM files live in"
tell "a tmpfs under $LAB/ram."
lab_start
tell "up: libvirtd A at $(host_uri A)"
tell "    libvirtd B at $(host_uri B)"
tell "    virtcocod A at 10.97.0.1:49300, virtcocod B at 10.97.0.2:49300"

say "2. Boot the guest on host A"
guest_xml guest 192 "$QEMU_COCO" confidential > "$LAB/guest.xml"
tell "Domain 'guest': 192 MiB, 1 vCPU (TCG), RAM in a shared file, a"
tell "<coco:migration technology='tdx'> policy element, and <emulator> qemu-coco:"
tell "a relay between libvirt and QEMU that hands migrations to the host agent."
tell "Its init prints a heartbeat (HB n) each second and a checksum round"
tell "(CK n ok): it rewrites 4 MiB of its RAM and verifies all 16 MiB; and a"
tell "whole-memory round (MEM n ok) over all the memory it could allocate."
t0=$(now)
virsh_h A create "$LAB/guest.xml" >/dev/null || bye "virsh create failed on host A"
wait_lines A 0 GUEST-BOOTED 1 "$BOOT_TIMEOUT" && wait_lines A 0 CK 2 "$BOOT_TIMEOUT" &&
    wait_lines A 0 MEM 1 "$BOOT_TIMEOUT" || bye "the guest did not boot on host A"
tell "$(console_since A 0 | grep '^GUEST-MEM ' | tail -n 1)"
tell "booted in $(since "$t0") s; host A's console:"
console_since A 0 | tail -4 | quote
tell "virsh on A: $(virsh_h A domstate --reason guest); on B: $(virsh_h B list --name | grep -c . || true) domains"
tell "the relay in A's QEMU monitor path: $(relay_state A | python3 -c '
import json, sys
r = json.load(sys.stdin)["return"]
print("%s %s, host agent connected: %s" % (r.get("relay"), r.get("version"), "yes" if r.get("agent") else "no"))')"

say "3. Migrate it live, confidentially, from A to B"
prog=${MIGRATE%% *}
args=${MIGRATE#"$prog"}
tell "$ $(basename "$prog") -c <host A> $(echo "$args" | sed 's/^ *//') guest <host B>"
tell "virt-coco checks both hosts' agents and the domain's policy first; then"
tell "libvirt on A and B run their usual live migration. The relay answers"
tell "libvirt's 'migrate' itself while the agents copy the RAM sealed (precopy,"
tell "counted in libvirt's progress), then QEMU stops the guest, the agents send"
tell "what changed, and QEMU's own stream carries device state only."
# virt-coco runs where an operator would: on host A (its network namespace,
# its agent's socket); the migration URI names B's address (hostB resolves
# only inside the hosts' mount namespaces).
extra=""
case "$prog" in
*virt-coco) extra="--migrateuri tcp:$(host_ip B)" ;;
esac
soff=$(console_size A)
doff=$(console_size B)
t0=$(now)
# shellcheck disable=SC2086
out=$(ip netns exec "${NETNS_PREFIX}A" \
    env VIRT_COCO_AGENT_SOCKET="$(host_dir A)/run/coco-agent.sock" \
    "$prog" -c "$(host_uri A)" $args $extra guest "$(host_uri B)" 2>&1)
rc=$?
# --verbose rewrites one progress line with \r: show its last state.
[ -z "$out" ] || echo "$out" | tr '\r' '\n' | grep -v '^$' |
    awk '/^Migration: \[/ { p = $0; next } p { print p; p = "" } { print } END { if (p) print p }' | quote
[ $rc = 0 ] || bye "the migration command failed (exit $rc)"
tell "done in $(since "$t0") s"

say "4. The guest runs on host B with its memory intact"
assert_no_domain A || bye "host A still has the guest"
tell "virsh on A: no domain; on B: $(virsh_h B domstate --reason guest)"
assert_continues A "$soff" B "$doff" > "$LAB/continues" 2>&1
rc=$?
sed 's/^ *//' "$LAB/continues" | quote
[ $rc = 0 ] || bye "the guest did not continue on host B"
wait_lines B "$doff" CK 3 60 || bye "fewer than 3 checksum rounds on host B"
tell "host B's console since the migration:"
console_since B "$doff" | tail -5 | quote
bad=$(console_since B "$doff" | grep -c 'BAD' || true)
[ "$bad" = 0 ] || bye "checksum rounds report BAD on host B"
job_stats B 2>/dev/null &&
    tell "libvirt's completed job on B: $(memory_kib) KiB of memory processed (the agents' sealed copy, which the relay reports to libvirt, plus QEMU's device state), downtime $(job_field "Total downtime") ms"
set -- $(agent_record A source)
[ $# -ge 9 ] && tell "host A's agent record: $2, $3 bytes sealed ($4 pages) on $6 streams in $7 ms"
tell "0 BAD: every checksum and whole-memory round on B verified memory written on A."

say "5. Tear down"
tell "destroying the guest, stopping both libvirtd and agents, removing the namespaces"
# The EXIT trap of lab_start takes the lab down.
trap '"$E2E_DIR/hosts-down.sh"; printf "\nDEMO PASSED\n"' EXIT
exit 0
