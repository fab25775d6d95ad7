#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Opt-in integration test: the VFIO module against a real Debian kernel in a
# QEMU TCG guest (docs/vfio.rst, research vfio.md §6). The guest has QEMU's
# amd-iommu (IOVAs up to 2^64-1) and the "edu" PCI device bound to vfio-pci
# and runs tests/cocovfioguest.c.
#
# Runs only with COCO_VFIO_INTEGRATION=1; skipped (exit 77) otherwise or
# when qemu-system-x86_64, a static busybox, apt-get or dpkg-deb are missing.
# The kernel package (Debian 12's linux-image-amd64 dependency, about 70 MB)
# is downloaded once into $COCO_VFIO_CACHE (default: ./cocovfio-cache).
#
# Usage: cocovfiointegration.sh GUEST-BINARY
set -eu

GUEST=${1:?usage: $0 GUEST-BINARY}
skip() { echo "SKIP: $*"; exit 77; }

[ "${COCO_VFIO_INTEGRATION:-0}" = 1 ] || skip "set COCO_VFIO_INTEGRATION=1 to run"
for tool in qemu-system-x86_64 apt-get apt-cache dpkg-deb cpio gzip ldd; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
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
# The guest program and its shared libraries.
cp "$GUEST" "$ROOT/bin/cocovfioguest"
for lib in $(ldd "$GUEST" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}'); do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
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
else
    echo "RESULT FAIL: no edu device"
fi
echo "GUEST-DONE"
poweroff -f
INIT
chmod +x "$ROOT/init"
(cd "$ROOT" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$WORK/initrd.gz"

LOG=$WORK/console.log
timeout 600 qemu-system-x86_64 -accel tcg -cpu max -M q35 -m 512M -smp 1 \
    -nographic -no-reboot -serial "file:$LOG" -monitor none \
    -device amd-iommu,intremap=off \
    -device edu,dma_mask=0xffffffffffffffff \
    -kernel "$VMLINUZ" -initrd "$WORK/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" >/dev/null 2>&1 || true
sed -n '/^kernel /,/GUEST-DONE/p' "$LOG"
grep -q '^RESULT PASS' "$LOG"
