#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Opt-in integration test: the VFIO module against a real Debian kernel in a
# QEMU TCG guest (docs/vfio.rst, research vfio.md §6). The guest has QEMU's
# amd-iommu (IOVAs up to 2^64-1) and the "edu" PCI device bound to vfio-pci
# and runs tests/cocovfioguest.c (the module's own container), then
# tests/cocovfiounplugguest.c twice: the real QEMU, started through
# qemu-coco, maps the top of the IOVA space for a guest behind its
# virtio-iommu and hot-unplugs the device (device_del), once without and
# once with the VFIO interposer; QEMU's pinned memory must return to its
# baseline with it, and stays 4 kB above without it; with it, the relay's
# copy of the interposer's VFIO state names the device while it is mapped
# and holds nothing of it after DEVICE_DELETED (what a detach confirms).
#
# Runs only with COCO_VFIO_INTEGRATION=1 (meson test -C build --setup vfio);
# skipped (exit 77) otherwise or when qemu-system-x86_64, a static busybox,
# apt-get or dpkg-deb are missing. The kernel package (Debian 12's
# linux-image-amd64 dependency, about 70 MB) is downloaded once into
# $COCO_VFIO_CACHE (default: ./cocovfio-cache).
#
# Usage: cocovfiointegration.sh GUEST UNPLUG-GUEST QEMU-COCO INTERPOSER
set -eu

GUEST=${1:?usage: $0 GUEST UNPLUG-GUEST QEMU-COCO INTERPOSER}
UNPLUG=${2:?usage: $0 GUEST UNPLUG-GUEST QEMU-COCO INTERPOSER}
QEMU_COCO=${3:?usage: $0 GUEST UNPLUG-GUEST QEMU-COCO INTERPOSER}
INTERPOSER=${4:?usage: $0 GUEST UNPLUG-GUEST QEMU-COCO INTERPOSER}
QEMU=/usr/bin/qemu-system-x86_64
BIOS=/usr/share/seabios/bios-256k.bin
# Debian builds TCG as a module of QEMU's
TCG_MODULE=$(ls /usr/lib/*/qemu/accel-tcg-x86_64.so 2>/dev/null | head -n 1)
skip() { echo "SKIP: $*"; exit 77; }

[ "${COCO_VFIO_INTEGRATION:-0}" = 1 ] || skip "set COCO_VFIO_INTEGRATION=1 to run"
for tool in qemu-system-x86_64 apt-get apt-cache dpkg-deb cpio gzip ldd; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
[ -x "$QEMU" ] || skip "$QEMU is not installed"
[ -r "$BIOS" ] || skip "$BIOS (seabios) is not installed"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || skip "busybox (busybox-static) is not installed"
ldd "$BUSYBOX" >/dev/null 2>&1 && skip "$BUSYBOX is not static (install busybox-static)"

CACHE=${COCO_VFIO_CACHE:-$PWD/cocovfio-cache}
mkdir -p "$CACHE"
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
[ -n "$KPKG" ] || skip "cannot resolve the kernel package of linux-image-amd64"
if [ ! -d "$CACHE/$KPKG" ]; then
    (cd "$CACHE" && apt-get download "$KPKG" >/dev/null 2>&1) ||
        skip "cannot download $KPKG"
    dpkg-deb -x "$CACHE/${KPKG}"_*.deb "$CACHE/$KPKG.tmp"
    mv "$CACHE/$KPKG.tmp" "$CACHE/$KPKG"
fi
KDIR=$CACHE/$KPKG
VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-* | head -n 1)
KVER=${VMLINUZ##*/vmlinuz-}
MODDIR=$KDIR/lib/modules/$KVER/kernel

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
mkdir -p "$ROOT/bin" "$ROOT/mod" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
for m in virt/lib/irqbypass drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 \
         drivers/vfio/vfio_virqfd drivers/vfio/pci/vfio-pci-core \
         drivers/vfio/pci/vfio-pci; do
    f=$(ls "$MODDIR/$m".ko* 2>/dev/null | head -n 1)
    [ -n "$f" ] || continue
    case "$f" in
    *.xz) xz -dc "$f" > "$ROOT/mod/${m##*/}.ko" ;;
    *.zst) zstd -qdc "$f" > "$ROOT/mod/${m##*/}.ko" ;;
    *) cp "$f" "$ROOT/mod/${m##*/}.ko" ;;
    esac
done
# The guest programs, qemu-coco, the interposer, the real QEMU and their
# shared libraries (QEMU's at the host's paths: one Debian release).
cp "$GUEST" "$ROOT/bin/cocovfioguest"
cp "$UNPLUG" "$ROOT/bin/cocovfiounplugguest"
cp "$QEMU_COCO" "$ROOT/bin/qemu-coco"
mkdir -p "$ROOT/lib/libvirt-coco" "$ROOT$(dirname "$QEMU")" "$ROOT$(dirname "$BIOS")"
cp "$INTERPOSER" "$ROOT/lib/libvirt-coco/vfio-interposer.so"
cp -L "$QEMU" "$ROOT$QEMU"
cp -L "$BIOS" "$ROOT$BIOS"
if [ -r /usr/share/qemu/kvmvapic.bin ]; then
    mkdir -p "$ROOT/usr/share/qemu"
    cp -L /usr/share/qemu/kvmvapic.bin "$ROOT/usr/share/qemu/"
fi
if [ -n "$TCG_MODULE" ]; then
    mkdir -p "$ROOT$(dirname "$TCG_MODULE")"
    cp -L "$TCG_MODULE" "$ROOT$TCG_MODULE"
fi
for bin in "$GUEST" "$UNPLUG" "$QEMU_COCO" "$INTERPOSER" "$QEMU"; do
    for lib in $(ldd "$bin" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}'); do
        [ -e "$ROOT$lib" ] && continue
        mkdir -p "$ROOT$(dirname "$lib")"
        cp -L "$lib" "$ROOT$lib"
    done
done
cat > "$ROOT/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci; do
    [ -f /mod/$m.ko ] || continue
    if [ $m = vfio_iommu_type1 ]; then
        insmod /mod/$m.ko allow_unsafe_interrupts=1
    else
        insmod /mod/$m.ko
    fi
done
BDF=
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ]; then
        BDF=${d##*/}
    fi
done
echo "kernel $(uname -r) edu $BDF"
if [ -n "$BDF" ]; then
    echo vfio-pci > /sys/bus/pci/devices/$BDF/driver_override
    [ -e /sys/bus/pci/devices/$BDF/driver ] &&
        echo $BDF > /sys/bus/pci/devices/$BDF/driver/unbind
    echo $BDF > /sys/bus/pci/drivers_probe
    ulimit -l unlimited
    /bin/cocovfioguest $BDF
    mkdir -p /dev/shm /tmp
    mount -t tmpfs shm /dev/shm
    for use in no yes; do
        echo "unplug $use"
        /bin/cocovfiounplugguest /bin/qemu-coco /usr/bin/qemu-system-x86_64 \
            /lib/libvirt-coco/vfio-interposer.so $BDF $use 2>&1 || echo "cocovfiounplugguest exited with $?"
    done
else
    echo "RESULT FAIL: no edu device"
fi
echo "GUEST-DONE"
poweroff -f
INIT
chmod +x "$ROOT/init"
(cd "$ROOT" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$WORK/initrd.gz"

LOG=$WORK/console.log
timeout 600 qemu-system-x86_64 -accel tcg -cpu max -M q35 -m 1G -smp 1 \
    -nographic -no-reboot -serial "file:$LOG" -monitor none \
    -device amd-iommu,intremap=off \
    -device edu,dma_mask=0xffffffffffffffff \
    -kernel "$VMLINUZ" -initrd "$WORK/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" >/dev/null 2>&1 || true
sed -n '/^kernel /,/GUEST-DONE/p' "$LOG"
grep -q '^RESULT PASS' "$LOG"

# QEMU's own teardown: the leak without the interposer, none with it.
result() { sed -n "s/^RESULT interposer=$1 .*$2=\([0-9]*\).*/\1/p" "$LOG"; }
for use in no yes; do
    [ -n "$(result $use baseline)" ] || { echo "FAIL: no result with vfio_interposer = $use"; exit 1; }
done
leak_no=$(( $(result no pinned-after-unplug) - $(result no baseline) ))
leak_yes=$(( $(result yes pinned-after-unplug) - $(result yes baseline) ))
echo "QEMU's pinned memory after device_del, above its baseline: without the interposer ${leak_no} kB, with it ${leak_yes} kB"
[ "$leak_no" -eq 4 ] || { echo "FAIL: without the interposer the top page's 4 kB should stay pinned"; exit 1; }
[ "$leak_yes" -eq 0 ] || { echo "FAIL: with the interposer QEMU's pinned memory must return to its baseline"; exit 1; }
# The detach's confirmation (docs/formatcoco.rst, <coco:hostdev
# action='detach'>): the relay's copy of the interposer's state named the
# device while it was mapped and holds nothing of it after DEVICE_DELETED.
state() { sed -n "s/^RESULT interposer=$1 .* $2=\(-\?[0-9]*\).*/\1/p" "$LOG"; }
echo "relay's VFIO state with the interposer: named before $(state yes named-before) ($(state yes mappings-before) mappings), after DEVICE_DELETED named $(state yes named-after), $(state yes open-after) open, $(state yes mappings-after) mappings; without it: $(state no named-before)"
[ "$(state yes named-before)" = 1 ] && [ "$(state yes mappings-before)" -gt 0 ] ||
    { echo "FAIL: the relay's VFIO state did not name the mapped device"; exit 1; }
[ "$(state yes named-after)" = 0 ] && [ "$(state yes open-after)" = 0 ] && [ "$(state yes mappings-after)" = 0 ] ||
    { echo "FAIL: after DEVICE_DELETED the relay's VFIO state still holds something of the device"; exit 1; }
[ "$(state no named-before)" = -1 ] ||
    { echo "FAIL: without the interposer the relay should have no VFIO state"; exit 1; }
grep -q 'libvirt-coco-vfio: .*refusing to map \[0xfffffffffffff000, 0xffffffffffffffff\]' "$LOG" ||
    { echo "FAIL: the interposer did not refuse the top page"; exit 1; }
grep -q 'libvirt-coco-vfio: .*released: .* of which [1-9][0-9]* ended at 2^64 and were split for this kernel, 1 map(s) refused, 0 mapping(s) left' "$LOG" ||
    { echo "FAIL: the interposer did not split QEMU's unmap ending at 2^64 and leave nothing mapped"; exit 1; }
echo "RESULT PASS: QEMU's own unplug"
