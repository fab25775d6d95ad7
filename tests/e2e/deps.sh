#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Install what the two-host lab (tests/e2e) needs on Debian 12, as root.
# No libvirt-daemon-system: no systemd units, no default network; the lab
# starts its own daemons. Also creates the 'libvirt-qemu' system user that
# libvirtd resolves before it reads qemu.conf (research/lab.md pitfall 4).
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: must run as root" >&2
    exit 1
fi

# gcc and libc6-dev (libc.a): the guest's static whole-memory check
# (guest-memcheck.c, build-guest.sh). python3-libvirt: the management
# clients (nova-client.py, vdsm-client.py, scenarios-mgmt.sh).
PKGS="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
qemu-system-x86 busybox-static cpio iproute2 util-linux gzip
libjson-glib-dev gcc libc6-dev python3-libvirt"

export DEBIAN_FRONTEND=noninteractive
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get install -y --no-install-recommends $missing ||
        { apt-get update && apt-get install -y --no-install-recommends $missing; }
fi

if ! getent passwd libvirt-qemu >/dev/null; then
    useradd --system --user-group --no-create-home \
        --home-dir /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu
fi
echo "deps.sh: lab dependencies present"
