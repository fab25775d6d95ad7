# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the lab scripts: names and paths shared by all of them.
#   COCO_LAB        scratch directory of one lab run (removed by hosts-down.sh)
#   COCO_LAB_CACHE  kept between runs: the guest kernel/initrd, QEMU caps cache
#   QEMU_COCO       the built qemu-coco (the domains' <emulator>)
#   COCO_HOOK       the built libvirt-coco-hook (default: next to VIRTCOCOD)
#   COCO_LAB_LAYOUT build (default: the built binaries, lab-written
#                   configuration) or installed (what the RPM installs,
#                   staged by stage-install.sh, in each host's namespaces)
#   COCO_LAB_INSTALL_BUILD  the installed layout's build directory
LAB=${COCO_LAB:-/tmp/coco-lab}
CACHE=${COCO_LAB_CACHE:-/var/tmp/coco-lab-cache}
E2E_DIR=$(cd "$(dirname "$0")" && pwd)
HOSTS="A B"
NETNS_PREFIX=${COCO_LAB_NETNS:-cocolab}
SUBNET=10.97.0
LAB_LAYOUT=${COCO_LAB_LAYOUT:-build}
case "$LAB_LAYOUT" in build | installed) ;; *) echo "FAIL: COCO_LAB_LAYOUT must be build or installed" >&2; exit 1 ;; esac
INST_BUILD=${COCO_LAB_INSTALL_BUILD:-$CACHE/install-build}
INST_STAGE=$INST_BUILD/destdir
# The installed paths, as the host sees them (its namespaces).
INST_AGENT=/usr/sbin/virtcocod
INST_EMULATOR=/usr/libexec/qemu-coco

host_ip() { [ "$1" = A ] && echo "$SUBNET.1" || echo "$SUBNET.2"; }
host_dir() { echo "$LAB/hosts/$1"; }
host_uri() { echo "qemu+unix:///system?socket=$LAB/hosts/$1/run/libvirt-sock"; }
other_host() { [ "$1" = A ] && echo B || echo A; }

# Host $1's agent socket as seen from outside the host: the lab-written
# virtcocod.conf names $R/run/coco-agent.sock; the installed default
# /run/libvirt-coco/agent.sock is $R/coco-run/agent.sock (hosts-up.sh).
agent_sock() {
    if [ "$LAB_LAYOUT" = installed ]; then
        echo "$LAB/hosts/$1/coco-run/agent.sock"
    else
        echo "$LAB/hosts/$1/run/coco-agent.sock"
    fi
}
# Start host $1's installed agent in the background, extra options
# $2..., its output appended to the host's virtcocod.log, its pid in
# virtcocod.pid: /usr/sbin/virtcocod as the unit starts it, with the
# installed /etc/libvirt-coco/virtcocod.conf, in all of the host's
# namespaces (those of its libvirtd: its /etc, /run, /var/lib, /usr and
# network). The unit's --dbus system is left out: the lab's hosts have no
# system bus.
agent_spawn_installed() {
    sp_h=$1
    shift
    sp_r="$LAB/hosts/$sp_h"
    setsid nsenter -t "$(cat "$sp_r/libvirtd.pid")" -m -u -n -- \
        "$INST_AGENT" --foreground "$@" >> "$sp_r/virtcocod.log" 2>&1 < /dev/null &
    echo $! > "$sp_r/virtcocod.pid"
}

lab_log() { printf '%s [lab] %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*" >&2; }
lab_skip() { echo "SKIP: $*" >&2; exit 77; }
lab_die() { echo "FAIL: $*" >&2; exit 1; }
