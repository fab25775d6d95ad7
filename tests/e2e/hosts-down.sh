#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# hosts-down.sh: take the lab down and leave nothing behind: domains,
# QEMUs and their relays, daemons, the agents, network namespaces,
# mounts and directories. The guest and the QEMU capabilities cache stay in
# COCO_LAB_CACHE for the next run.
set -u
. "$(dirname "$0")/lab-env.sh"

[ "$(id -u)" = 0 ] || lab_skip "the lab needs root"
[ -d "$LAB" ] || exit 0

# pids of processes whose mount namespace is one of the hosts'.
host_pids() {
    ns=$(readlink "/proc/$1/ns/mnt" 2>/dev/null) || return 0
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
    done
}

# A fault scenario's proxy (wire.py) still running.
if [ -f "$LAB/wire.pid" ]; then
    kill -TERM "$(cat "$LAB/wire.pid")" 2>/dev/null || true
    sleep 0.2
fi

# The hosts' private D-Bus daemons (scenarios-dbus.sh).
for H in $HOSTS; do
    for f in dbus.pid sysbus.pid polkitd.pid; do
        f="$(host_dir "$H")/$f"
        [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
    done
done

# Keep the caps cache of host A for the next run.
if [ -d "$(host_dir A)/cache/qemu/capabilities" ]; then
    mkdir -p "$CACHE/caps"
    cp -a "$(host_dir A)/cache/qemu/capabilities/." "$CACHE/caps/" 2>/dev/null || true
fi

for H in $HOSTS; do
    R=$(host_dir "$H")
    [ -f "$R/libvirtd.pid" ] || continue
    pid=$(cat "$R/libvirtd.pid")
    kill -0 "$pid" 2>/dev/null || continue
    for dom in $(virsh -q -c "$(host_uri "$H")" list --name 2>/dev/null); do
        virsh -q -c "$(host_uri "$H")" destroy "$dom" >/dev/null 2>&1 || true
    done
    pids=$(host_pids "$pid")
    kill -TERM $pids 2>/dev/null || true
    i=0
    while [ $i -lt 50 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    # QEMUs, relays and anything else still in the host's namespace.
    pids=$(host_pids "$pid")
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    kill -KILL "$pid" 2>/dev/null || true
done
# Stragglers (a relay whose libvirtd is gone) hold the namespaces' mounts.
for p in /proc/[0-9]*; do
    case "$(readlink "$p/exe" 2>/dev/null)" in
    "${QEMU_COCO:-/nonexistent}"|/usr/bin/qemu-system-x86_64)
        grep -qs "$LAB" "$p/cmdline" "$p/environ" 2>/dev/null &&
            kill -KILL "${p#/proc/}" 2>/dev/null ;;
    esac
done

# Keep the logs of this run for inspection (replaced by the next run of
# the same part: logs/, logs-liveness/, logs-installed/).
LOGS_PART=${COCO_LAB_PART:-}
[ "$LAB_LAYOUT" != installed ] || LOGS_PART=installed
LOGS=${COCO_LAB_LOGS:-$CACHE/logs${LOGS_PART:+-$LOGS_PART}}
rm -rf "$LOGS"
mkdir -p "$LOGS"
for H in $HOSTS; do
    cp -r "$(host_dir "$H")/log" "$LOGS/host$H" 2>/dev/null
done

for H in $HOSTS; do
    R=$(host_dir "$H")
    cp "$R/virtcocod.log" "$LOGS/virtcocod-$H.log" 2>/dev/null
    cp -rL "$R/migrations" "$LOGS/migrations-$H" 2>/dev/null
    cp "$LAB/wire-all.log" "$LOGS/wire.log" 2>/dev/null
    if [ -f "$R/virtcocod.pid" ]; then
        p=$(cat "$R/virtcocod.pid")
        [ "$p" -gt 1 ] && kill -TERM "$p" 2>/dev/null || true
        i=0
        while [ "$p" -gt 1 ] && kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
            i=$((i + 1)); sleep 0.1
        done
    fi
done

for H in $HOSTS; do
    ip netns del "$NETNS_PREFIX$H" 2>/dev/null || true
done
ip link del "${NETNS_PREFIX}A0" 2>/dev/null || true

i=0
while mountpoint -q "$LAB/ram" && ! umount "$LAB/ram" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 50 ] || { echo "hosts-down: $LAB/ram is still busy" >&2; break; }
    sleep 0.1
done

if [ -f "$LAB/created" ]; then
    while read -r d; do
        case "$d" in
        /run/netns)
            if [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
                umount /run/netns 2>/dev/null; rmdir /run/netns 2>/dev/null
            fi ;;
        *) rmdir "$d" 2>/dev/null || echo "hosts-down: $d is not empty, left in place" >&2 ;;
        esac
    done < "$LAB/created"
fi
mountpoint -q "$LAB/ram" || rm -rf "$LAB"
exit 0
