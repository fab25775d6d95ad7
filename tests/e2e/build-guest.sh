#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# build-guest.sh OUTDIR: the lab guest. Debian's kernel (extracted from the
# linux-image .deb that linux-image-amd64 depends on, not installed) and a
# busybox initramfs whose init prints, on ttyS0:
#   GUEST-BOOTED             once
#   HB n                     a heartbeat, once a second
#   CK n ok | CK n BAD k     a checksum workload: each round rewrites one of
#                            four 4 MiB files in the guest's tmpfs (guest RAM)
#                            with fresh random data, then md5-verifies all four
#   GUEST-MEM pages P MiB M  only with cocomem=1 on the kernel command line
#   MEM n ok | MEM n BAD k   (the lab's guest): the whole-memory check
#                            (guest-memcheck.c) fills all the memory it can
#                            allocate with a pattern of each page's index
#                            and generation, verifies it round after round
#                            and rewrites a window of pages per round;
#                            PAGEBAD lines name the first bad pages
#   T n uptime               only with cocotick=SECONDS on the kernel command
#                            line (the benchmark's guest): a tick every
#                            SECONDS (e.g. 0.02) with a counter and the
#                            guest's /proc/uptime; the host timestamps the
#                            lines as they arrive to measure the guest's
#                            longest pause (the guest's own clock stops
#                            while QEMU has it stopped, so guest time alone
#                            cannot show a downtime)
#   DIRTY-READY mib          only with coco.dirty_pct=PCT (the benchmark's
#                            busy guest): PCT % of its memory is filled with
#                            incompressible data (a tmpfs file) and then
#                            rewritten without end, each page getting new
#                            content, coco.dirty_mbps MiB per second (default
#                            32; 4 MiB every 1/8 s), so the amount dirtied
#                            per second does not depend on the guest's size
# Reuses OUTDIR/vmlinuz and OUTDIR/initrd.gz when they are newer than this
# script and guest-memcheck.c.
set -eu

OUT=${1:?usage: build-guest.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SELF=$(readlink -f "$0")
MEMCHECK_C=$(dirname "$SELF")/guest-memcheck.c

if [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.gz" ] &&
   [ "$OUT/initrd.gz" -nt "$SELF" ] && [ "$OUT/initrd.gz" -nt "$MEMCHECK_C" ]; then
    echo "build-guest: reusing $OUT/vmlinuz and $OUT/initrd.gz"
    exit 0
fi

WORK=$(mktemp -d "$OUT/work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if [ ! -s "$OUT/vmlinuz" ]; then
    # The exact package name: a glob would match every flavour (lab.md, 1).
    KPKG=$(apt-cache depends linux-image-amd64 |
           awk '/Depends: linux-image-/{print $2; exit}')
    [ -n "$KPKG" ] || { echo "build-guest: cannot resolve the kernel package" >&2; exit 1; }
    (cd "$WORK" && apt-get download "$KPKG")
    dpkg-deb -x "$WORK"/"$KPKG"_*.deb "$WORK/kpkg"
    cp "$WORK"/kpkg/boot/vmlinuz-* "$OUT/vmlinuz.tmp"
    mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
fi

BB=$(command -v busybox || true)
[ -n "$BB" ] || BB=/bin/busybox
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }
file_is_static "$BB" || { echo "build-guest: $BB is not static (install busybox-static)" >&2; exit 1; }

R="$WORK/initrd"
mkdir -p "$R/bin" "$R/dev" "$R/proc" "$R/sys" "$R/tmp"
cp "$BB" "$R/bin/busybox"
# The whole-memory check: static, the initramfs has no libc.
${CC:-cc} -static -O2 -o "$R/bin/memcheck" "$MEMCHECK_C" ||
    { echo "build-guest: cannot build guest-memcheck.c statically (gcc, libc6-dev: run deps.sh)" >&2; exit 1; }
cat > "$R/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /tmp/ck
mount -t tmpfs -o size=24m tmpfs /tmp/ck
echo "GUEST-BOOTED"
# Fine-grained tick (benchmark guest only): builtins only, no fork per
# tick; 'read -t' on a FIFO nobody writes is the sleep.
tick=""
mem=""
for a in $(cat /proc/cmdline); do
    case "$a" in
    cocotick=*) tick=${a#cocotick=} ;;
    cocomem=1) mem=1 ;;
    esac
done
if [ -n "$tick" ]; then
    (
        mkfifo /tmp/tick.fifo
        exec 3<>/tmp/tick.fifo
        t=0
        while :; do
            t=$((t + 1))
            read up idle < /proc/uptime
            echo "T $t $up"
            read -t "$tick" x <&3
        done
    ) &
fi
# Dirtying workload (benchmark guest only): fill PCT % of RAM, then shift
# the file by one page, 4 MiB at a time: with a 1 MiB pattern of distinct
# pages every page changes at every pass.
pct="" mbps=32
for a in $(cat /proc/cmdline); do
    case "$a" in
    coco.dirty_pct=*) pct=${a#coco.dirty_pct=} ;;
    coco.dirty_mbps=*) mbps=${a#coco.dirty_mbps=} ;;
    esac
done
if [ -n "$pct" ]; then
    (
        kb=$(awk '/^MemTotal/{print $2}' /proc/meminfo)
        mb=$((kb * pct / 100 / 1024 / 4 * 4))
        mkdir -p /tmp/dirty
        mount -t tmpfs -o size=$((mb + 8))m tmpfs /tmp/dirty
        dd if=/dev/urandom of=/tmp/dirty/f bs=1M count=1 2>/dev/null
        s=1
        while [ $s -lt $mb ]; do
            c=$s
            [ $((s + c)) -le $mb ] || c=$((mb - s))
            dd if=/tmp/dirty/f of=/tmp/dirty/f bs=1M count=$c seek=$s conv=notrunc 2>/dev/null
            s=$((s + c))
        done
        echo "DIRTY-READY $mb"
        mkfifo /tmp/dirty.fifo
        exec 3<>/tmp/dirty.fifo
        per=$((4 * 1000 / mbps))
        off=0
        while :; do
            [ $((off + 1024)) -lt $((mb * 256)) ] || off=0
            dd if=/tmp/dirty/f of=/tmp/dirty/f bs=4096 skip=$((off + 1)) seek=$off count=1024 conv=notrunc 2>/dev/null
            off=$((off + 1024))
            read -t "0.$(printf '%03d' $per)" x <&3
        done
    ) &
fi
# Checksum workload: the files live in the guest's RAM (tmpfs).
(
    for i in 0 1 2 3; do
        dd if=/dev/urandom of=/tmp/ck/f$i bs=64k count=64 2>/dev/null
        md5sum /tmp/ck/f$i > /tmp/ck/f$i.md5
    done
    # The whole-memory check takes what is left once the files exist.
    [ -z "$mem" ] || /bin/memcheck &
    n=0
    while :; do
        n=$((n + 1))
        i=$((n % 4))
        dd if=/dev/urandom of=/tmp/ck/f$i bs=64k count=64 2>/dev/null
        md5sum /tmp/ck/f$i > /tmp/ck/f$i.md5
        bad=0
        for j in 0 1 2 3; do
            md5sum -c -s /tmp/ck/f$j.md5 || bad=$((bad + 1))
        done
        if [ $bad = 0 ]; then echo "CK $n ok"; else echo "CK $n BAD $bad"; fi
        sleep 1
    done
) &
n=0
while :; do
    n=$((n + 1))
    echo "HB $n"
    sleep 1
done
INIT
chmod +x "$R/init"
command -v cpio >/dev/null || { echo "build-guest: cpio is missing (run deps.sh)" >&2; exit 1; }
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1 > "$OUT/initrd.gz.tmp")
[ "$(stat -c %s "$OUT/initrd.gz.tmp")" -gt 100000 ] ||
    { echo "build-guest: initrd came out too small" >&2; exit 1; }
mv "$OUT/initrd.gz.tmp" "$OUT/initrd.gz"
echo "build-guest: $OUT/vmlinuz $OUT/initrd.gz"
