#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# hosts-up.sh: two libvirt "hosts" on this machine (research/lab.md).
# Each host: its own network namespace (joined to the other by a veth pair,
# nothing else reachable), its own mount and UTS namespaces with private
# /run, /etc/libvirt, /var/{lib,log,cache}/libvirt, /etc/hosts and an empty
# resolv.conf, its own libvirtd pinned to CPU 0 (stable caps cache), and
# the qemu-coco configuration naming the host's agent. Guest RAM lives in a
# tmpfs mounted before the namespaces split, at the same path for both
# hosts and their agents: one virtcocod per host, in the host's network
# namespace, serving the host's agent socket.
# COCO_LAB_LAYOUT=installed: the hosts run what the RPM installs instead
# (stage-install.sh's staged tree over /usr and /etc in each host's mount
# namespace, the shipped configuration, the certificates at libvirt's
# x509 locations, the agent in all of the host's namespaces; docs/lab.rst
# "The installed layout").
# Exit 77 when the machine cannot host the lab.
set -eu
. "$(dirname "$0")/lab-env.sh"

[ "$(id -u)" = 0 ] || lab_skip "the lab needs root (namespaces, mounts, libvirtd)"
command -v unshare >/dev/null && command -v nsenter >/dev/null ||
    lab_skip "unshare/nsenter (util-linux) missing"
command -v libvirtd >/dev/null || [ -x /usr/sbin/libvirtd ] ||
    lab_skip "libvirtd missing: run tests/e2e/deps.sh"
command -v virsh >/dev/null || lab_skip "virsh missing: run tests/e2e/deps.sh"
[ -x /usr/bin/qemu-system-x86_64 ] || lab_skip "qemu-system-x86 missing: run tests/e2e/deps.sh"
getent passwd libvirt-qemu >/dev/null || lab_skip "user libvirt-qemu missing: run tests/e2e/deps.sh"
command -v python3 >/dev/null || lab_skip "python3 missing (the lab reads the agents' JSON records)"
[ -n "${QEMU_COCO:-}" ] && [ -x "$QEMU_COCO" ] || lab_die "set QEMU_COCO to the built qemu-coco"
[ -n "${VIRTCOCOD:-}" ] && [ -x "$VIRTCOCOD" ] || lab_die "set VIRTCOCOD to the built virtcocod"
# The qemu.d hook (docs/hook.rst), built next to virtcocod unless named.
COCO_HOOK=${COCO_HOOK:-$(dirname "$VIRTCOCOD")/libvirt-coco-hook}
[ -x "$COCO_HOOK" ] || lab_die "set COCO_HOOK to the built libvirt-coco-hook"
# The VFIO interposer qemu-coco preloads into QEMU (docs/vfio.rst): the
# build's own, next to qemu-coco's build directory unless named.
COCO_VFIO_INTERPOSER=${COCO_VFIO_INTERPOSER:-$(dirname "$QEMU_COCO")/../src/preload/vfio-interposer.so}
[ -r "$COCO_VFIO_INTERPOSER" ] || lab_die "set COCO_VFIO_INTERPOSER to the built vfio-interposer.so"
COCO_VFIO_INTERPOSER=$(readlink -f "$COCO_VFIO_INTERPOSER")
# The write-log preload (src/preload/cocowritelogpreload.c), beside it.
COCO_WRITE_LOG=${COCO_WRITE_LOG:-$(dirname "$COCO_VFIO_INTERPOSER")/write-log.so}
[ -r "$COCO_WRITE_LOG" ] || lab_die "set COCO_WRITE_LOG to the built write-log.so"
COCO_WRITE_LOG=$(readlink -f "$COCO_WRITE_LOG")
# Where qemu-coco reads its configuration; each host binds its own copy.
# The installed layout (COCO_LAB_LAYOUT=installed, staged by
# stage-install.sh) has the shipped one at /etc/libvirt-coco instead.
EMULATOR=$QEMU_COCO
if [ "$LAB_LAYOUT" = installed ]; then
    EMULATOR=$INST_EMULATOR
    [ -x "$INST_STAGE$INST_EMULATOR" ] || lab_die "no installed layout in $INST_STAGE: run stage-install.sh"
    grep -qw overlay /proc/filesystems || lab_skip "the installed layout needs overlayfs"
else
    CONF=$("$QEMU_COCO" --coco-config-path)
    CONFDIR=$(dirname "$CONF")
    SYSCONF=$(dirname "$CONFDIR")
    if [ -d "$CONFDIR" ]; then
        BIND_SRC=sysconf/$(basename "$CONFDIR") BIND_DST=$CONFDIR
    elif [ -d "$SYSCONF" ] && [ "$SYSCONF" != /etc ]; then
        BIND_SRC=sysconf BIND_DST=$SYSCONF
    else
        lab_skip "cannot give each host its own '$CONF' (no '$CONFDIR')"
    fi
fi

unshare --mount --uts --propagation private true 2>/dev/null ||
    lab_skip "unshare of mount/UTS namespaces is not permitted here"
RUN_NETNS_EXISTED=no
[ -d /run/netns ] && RUN_NETNS_EXISTED=yes
ip netns add "${NETNS_PREFIX}probe" 2>/dev/null ||
    lab_skip "network namespaces are not available (ip netns add failed)"
ip netns del "${NETNS_PREFIX}probe"

if [ -e "$LAB" ]; then
    lab_log "a previous lab is still up at $LAB: taking it down"
    "$E2E_DIR/hosts-down.sh"
fi
mkdir -p "$LAB" "$CACHE/caps"
: > "$LAB/created"

# Global mount points the per-host binds need; removed by hosts-down.sh.
for d in /var/lib/libvirt /var/log/libvirt /var/cache/libvirt /etc/libvirt; do
    if [ ! -d "$d" ]; then
        mkdir -p "$d"
        echo "$d" >> "$LAB/created"
    fi
done
[ $RUN_NETNS_EXISTED = yes ] || echo "/run/netns" >> "$LAB/created"

# Shared guest RAM: one tmpfs, visible at the same path everywhere
# (COCO_LAB_RAM_SIZE: its size, default 1g; the benchmark sets it for its
# largest guest).
mkdir -p "$LAB/ram"
mount -t tmpfs -o "size=${COCO_LAB_RAM_SIZE:-1g},mode=0755" coco-lab-ram "$LAB/ram"

ip link del "${NETNS_PREFIX}A0" 2>/dev/null || true
for H in $HOSTS; do
    ip netns add "$NETNS_PREFIX$H"
    ip -n "$NETNS_PREFIX$H" link set lo up
done
ip link add "${NETNS_PREFIX}A0" type veth peer name "${NETNS_PREFIX}B0"
for H in $HOSTS; do
    ip link set "$NETNS_PREFIX${H}0" netns "$NETNS_PREFIX$H"
    ip -n "$NETNS_PREFIX$H" addr add "$(host_ip "$H")/24" dev "$NETNS_PREFIX${H}0"
    ip -n "$NETNS_PREFIX$H" link set "$NETNS_PREFIX${H}0" up
done

for H in $HOSTS; do
    R=$(host_dir "$H")
    mkdir -p "$R/run" "$R/etc" "$R/lib/qemu" "$R/log/qemu" "$R/cache/qemu" \
             "$R/sysconf/libvirt-coco" "$LAB/ram/$H"
    U=$(echo "$H" | tr AB ab)
    # libvirtd finds hooks when it starts: install before it does.
    # Installed: what the install put into /etc/libvirt (the hook's
    # symlink to /usr/libexec/libvirt-coco-hook) goes into the host's.
    mkdir -p "$R/etc/hooks/qemu.d"
    if [ "$LAB_LAYOUT" = installed ]; then
        cp -a "$INST_STAGE/etc/libvirt/." "$R/etc/"
    else
        install -m 0755 "$COCO_HOOK" "$R/etc/hooks/qemu.d/50-libvirt-coco"
    fi
    cat > "$R/etc/libvirtd.conf" <<CONF
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = "${U}${U}${U}${U}${U}${U}${U}${U}-0000-4000-8000-00000000000${U}"
log_filters = "1:qemu.qemu_migration 1:conf.virdomainjob 1:rpc.netserverprogram 3:qemu 3:util 3:rpc 3:conf 3:remote"
log_outputs = "1:file:/var/log/libvirt/libvirtd.log"
CONF
    cat > "$R/etc/qemu.conf" <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
memory_backing_dir = "$LAB/ram/$H"
CONF
    [ "$LAB_LAYOUT" = installed ] || cat > "$R/sysconf/libvirt-coco/qemu-coco.conf" <<CONF
[qemu-coco]
qemu = /usr/bin/qemu-system-x86_64
agent_socket = /run/libvirt/coco-agent.sock
qmp_log_dir = /var/log/libvirt/qemu
gate_timeout = 60
vfio_interposer_path = $COCO_VFIO_INTERPOSER
write_log_path = $COCO_WRITE_LOG
CONF
    printf '127.0.0.1 localhost\n%s hostA\n%s hostB\n' \
        "$(host_ip A)" "$(host_ip B)" > "$R/hosts"
    : > "$R/resolv.conf"
    # Reuse the QEMU capabilities cache (lab.md pitfall 11).
    if [ -d "$CACHE/caps" ]; then
        mkdir -p "$R/cache/qemu/capabilities"
        cp -a "$CACHE/caps/." "$R/cache/qemu/capabilities/" 2>/dev/null || true
    fi
    if [ "$LAB_LAYOUT" = installed ]; then
        # The host's view of the machine: the staged /usr and /etc on top
        # of the machine's (read-only), the host's own files (its x509
        # certificates) on top of those, a private writable /var/lib
        # (the agent's state directory /var/lib/libvirt-coco is
        # $R/varlib/libvirt-coco), and the agent's runtime directory
        # /run/libvirt-coco (the unit's RuntimeDirectory=) at
        # $R/coco-run.
        mkdir -p "$R/etc-host" "$R/varlib" "$R/varlib-work" "$R/coco-run"
        ln -s varlib/libvirt-coco/migrations "$R/migrations"
        LAYOUT_MOUNTS="mkdir -p /run/libvirt-coco
mount --bind $R/coco-run /run/libvirt-coco
mount -t overlay coco-lab-usr -o ro,lowerdir=$INST_STAGE/usr:/usr /usr
mount -t overlay coco-lab-etc -o ro,lowerdir=$R/etc-host:$INST_STAGE/etc:/etc /etc
mount -t overlay coco-lab-varlib -o lowerdir=/var/lib,upperdir=$R/varlib,workdir=$R/varlib-work /var/lib"
        CONF_MOUNT=""
    else
        LAYOUT_MOUNTS=""
        CONF_MOUNT="mount --bind $R/$BIND_SRC $BIND_DST"
    fi
    cat > "$R/hostns.sh" <<NS
#!/bin/sh
set -e
hostname host$H
mount -t tmpfs tmpfs /run
mkdir -p /run/libvirt
$LAYOUT_MOUNTS
mount --bind $R/run /run/libvirt
mount --bind $R/etc /etc/libvirt
for d in lib log cache; do mount --bind $R/\$d /var/\$d/libvirt; done
mount --bind $R/hosts /etc/hosts
mount --bind $R/resolv.conf /etc/resolv.conf
$CONF_MOUNT
exec /usr/sbin/libvirtd -f /etc/libvirt/libvirtd.conf -p /run/libvirt/libvirtd.pid
NS
    chmod +x "$R/hostns.sh"
done

# virtcocod on each host: in the host's network namespace (peers reach
# each other over the veth), sockets, records and platform identity in the
# host's directories; it reads libvirt's pid and status files of the host.
# The agents authenticate each other with the lab's own CA: certtool-made
# certificates naming hostA/10.97.0.1 and hostB/10.97.0.2, as libvirt's TLS
# setup would (tests/cocotlsgen.sh; docs/virtcocod.rst "Trust between
# agents").
sh "$E2E_DIR/../cocotlsgen.sh" "$LAB/pki" >&2 || lab_die "cannot make the lab's PKI (certtool)"
for H in $HOSTS; do
    R=$(host_dir "$H")
    P=$LAB/pki/host$H
    if [ "$LAB_LAYOUT" = installed ]; then
        # Where libvirt's TLS setup keeps them and the shipped
        # virtcocod.conf reads them, as an operator deploys them: the only
        # host-specific files of the installed layout. The agent starts
        # once the host's namespaces exist (below).
        X=$R/etc-host/pki
        install -d -m 0755 "$X/CA" "$X/libvirt"
        install -d -m 0750 "$X/libvirt/private"
        install -m 0644 "$P/cacert.pem" "$P/cacrl.pem" "$X/CA/"
        install -m 0644 "$P/servercert.pem" "$P/clientcert.pem" "$X/libvirt/"
        install -m 0600 "$P/private/serverkey.pem" "$P/private/clientkey.pem" "$X/libvirt/private/"
        continue
    fi
    cat > "$R/virtcocod.conf" <<CONF
[virtcocod]
socket = $R/run/coco-agent.sock
listen = $(host_ip "$H")
port = 49300
platform = $R/platform.conf
state_dir = $R/migrations
pid_dir = $R/run/qemu
streams = 4
precopy_rounds = 2
# below qemu-coco's gate_timeout (60 s in the lab)
switchover_timeout = 20
tls_ca_cert = $P/cacert.pem
tls_server_cert = $P/servercert.pem
tls_server_key = $P/private/serverkey.pem
tls_client_cert = $P/clientcert.pem
tls_client_key = $P/private/clientkey.pem
# the OpenMetrics endpoint, on the host's own loopback (scenario metrics)
metrics_listen = 127.0.0.1:9464
CONF
    setsid nsenter --net="/run/netns/$NETNS_PREFIX$H" "$VIRTCOCOD" -f -c "$R/virtcocod.conf" \
        > "$R/virtcocod.log" 2>&1 < /dev/null &
    echo $! > "$R/virtcocod.pid"
done

for H in $HOSTS; do
    R=$(host_dir "$H")
    setsid taskset -c 0 nsenter --net="/run/netns/$NETNS_PREFIX$H" \
        unshare --mount --uts --propagation private -- "$R/hostns.sh" \
        > "$R/libvirtd.out" 2>&1 < /dev/null &
    echo $! > "$R/libvirtd.pid"
done

T0=$(date +%s.%N)
for H in $HOSTS; do
    R=$(host_dir "$H")
    pid=$(cat "$R/libvirtd.pid")
    i=0
    until virsh -q -c "$(host_uri "$H")" version >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { cat "$R/libvirtd.out" >&2; lab_die "libvirtd on host $H died"; }
        i=$((i + 1))
        [ $i -lt 600 ] || lab_die "libvirtd on host $H not ready after 60 s"
        sleep 0.1
    done
done
if [ "$LAB_LAYOUT" = installed ]; then
    for H in $HOSTS; do
        agent_spawn_installed "$H"
    done
fi
for H in $HOSTS; do
    i=0
    until [ -S "$(agent_sock "$H")" ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || { cat "$(host_dir "$H")/virtcocod.log" >&2; lab_die "virtcocod on host $H did not start"; }
        sleep 0.1
    done
done
# Probe qemu-coco's capabilities once (about 4 s, cached across runs) and
# hand host A's cache to host B, which loads it on first use.
virsh -q -c "$(host_uri A)" domcapabilities --emulatorbin "$EMULATOR" \
    --virttype qemu --arch x86_64 >/dev/null || lab_die "host A cannot probe $EMULATOR"
cp -f "$(host_dir A)"/cache/qemu/capabilities/*.xml "$(host_dir B)/cache/qemu/capabilities/"
lab_log "hosts up: daemons ready after $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $T0}") s"
