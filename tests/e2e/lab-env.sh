# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the lab scripts: names and paths shared by all of them.
#   COCO_LAB        scratch directory of one lab run (removed by hosts-down.sh)
#   COCO_LAB_CACHE  kept between runs: the guest kernel/initrd, QEMU caps cache
#   QEMU_COCO       the built qemu-coco (the domains' <emulator>)
#   COCO_HOOK       the built libvirt-coco-hook (default: next to VIRTCOCOD)
LAB=${COCO_LAB:-/tmp/coco-lab}
CACHE=${COCO_LAB_CACHE:-/var/tmp/coco-lab-cache}
E2E_DIR=$(cd "$(dirname "$0")" && pwd)
HOSTS="A B"
NETNS_PREFIX=${COCO_LAB_NETNS:-cocolab}
SUBNET=10.97.0

host_ip() { [ "$1" = A ] && echo "$SUBNET.1" || echo "$SUBNET.2"; }
host_dir() { echo "$LAB/hosts/$1"; }
host_uri() { echo "qemu+unix:///system?socket=$LAB/hosts/$1/run/libvirt-sock"; }
other_host() { [ "$1" = A ] && echo B || echo A; }

lab_log() { printf '%s [lab] %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*" >&2; }
lab_skip() { echo "SKIP: $*" >&2; exit 77; }
lab_die() { echo "FAIL: $*" >&2; exit 1; }
