#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build the RPMs from the 'meson dist' tarball with rpmbuild (a private
# %_topdir, --nodeps: on Debian the BuildRequires are Debian packages) and
# check that each binary package holds exactly the expected files, that
# the daemon package carries the QEMU trigger and the systemd and group
# scriptlets, and that %check ran.
# Usage: check-rpm.sh BUILDDIR   (TAP; 77 without rpmbuild)
# meson: meson test -C build --setup rpm --suite rpm --print-errorlogs
set -u
builddir=$(cd "${1:?usage: check-rpm.sh BUILDDIR}" && pwd)

for p in rpm rpmbuild meson; do
    if ! command -v $p >/dev/null; then
        echo "1..0 # SKIP $p not installed"
        exit 77
    fi
done

top=$(mktemp -d "${TMPDIR:-/tmp}/coco-rpm.XXXXXX")
trap 'rm -rf "$top"' EXIT

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); echo "not ok $n - $*"; fails=$((fails + 1)); }

# 1. the tarball: the committed tree (uncommitted changes are not in it)
if ! meson dist -C "$builddir" --no-tests --formats xztar --allow-dirty \
    >"$top/dist.log" 2>&1; then
    sed 's/^/# /' "$top/dist.log"
    echo "Bail out! meson dist failed"
    exit 1
fi
tarball=$(ls "$builddir"/meson-dist/libvirt-coco-*.tar.xz | tail -n 1)
version=$(basename "$tarball" .tar.xz)
version=${version#libvirt-coco-}
ok "meson dist: $(basename "$tarball")"

# 2. rpmbuild -ta (the spec is at the top of the tarball)
start=$(date +%s)
if ! rpmbuild -ta --nodeps --define "_topdir $top" "$tarball" \
    >"$top/rpmbuild.log" 2>&1; then
    tail -n 60 "$top/rpmbuild.log" | sed 's/^/# /'
    echo "Bail out! rpmbuild failed (unpackaged or missing files are listed above)"
    exit 1
fi
ok "rpmbuild -ta in $(($(date +%s) - start)) s"

if grep -q '^Ok: *[1-9]' "$top/rpmbuild.log" &&
    grep -q '^Fail: *0' "$top/rpmbuild.log"; then
    ok "%check ran the unit suite: $(grep '^Ok:' "$top/rpmbuild.log" | tr -s ' ')"
else
    notok "%check did not run the unit suite"
fi

# 3. the files of each package
ev() { rpm --eval "$1"; }
bindir=$(ev '%{_bindir}')
sbindir=$(ev '%{_sbindir}')
libdir=$(ev '%{_libdir}')
libexecdir=$(ev '%{_libexecdir}')
includedir=$(ev '%{_includedir}')
datadir=$(ev '%{_datadir}')
mandir=$(ev '%{_mandir}')
sysconfdir=$(ev '%{_sysconfdir}')
licensedir=$(ev '%{_defaultlicensedir}')
docdir=$(ev '%{_defaultdocdir}')
localedir=$datadir/locale
# the spec's own defaults where rpm has no systemd macros (Debian)
unitdir=$(ev '%{?_unitdir}%{!?_unitdir:%{_prefix}/lib/systemd/system}')
sysusersdir=$(ev '%{?_sysusersdir}%{!?_sysusersdir:%{_prefix}/lib/sysusers.d}')
langs=$(sed 's/#.*//' "$(dirname "$0")/../po/LINGUAS" 2>/dev/null)

# docdir/licensedir names follow %_docdir_fmt (Fedora: NAME; rpm's
# default when it is unset, as on Debian: NAME-VERSION).
expected() {
    local pkg=$1 rpmfile=$2 fmt d l
    fmt=$(rpm --eval '%{?_docdir_fmt}')
    [ -n "$fmt" ] || fmt='%{NAME}-%{VERSION}'
    d=$docdir/$(rpm -qp --qf "$fmt" "$rpmfile")
    l=$licensedir/$(rpm -qp --qf "$fmt" "$rpmfile")
    case $pkg in
    libvirt-coco)
        printf '%s\n' "$d" "$d/README.rst" "$l" "$l/COPYING" ;;
    libvirt-coco-libs)
        printf '%s\n' "$libdir/libvirt-coco.so.0" \
            "$libdir/libvirt-coco.so.0.1.0" \
            "$datadir/libvirt-coco" "$datadir/libvirt-coco/schemas" \
            "$datadir/libvirt-coco/schemas/coco-migration.rng" \
            "$l" "$l/COPYING"
        for lang in $langs; do
            echo "$localedir/$lang/LC_MESSAGES/libvirt-coco.mo"
        done ;;
    libvirt-coco-devel)
        printf '%s\n' "$includedir/libvirt-coco"
        for h in coco-error.h coco-kvm.h coco-kvm-uapi.h coco-migration-def.h \
            coco-version.h coco-vfio.h libvirt-coco.h; do
            echo "$includedir/libvirt-coco/$h"
        done
        printf '%s\n' "$libdir/libvirt-coco.so" \
            "$libdir/pkgconfig/libvirt-coco.pc" ;;
    libvirt-coco-daemon)
        printf '%s\n' "$sbindir/virtcocod" "$libexecdir/qemu-coco" \
            "$libdir/libvirt-coco" "$libdir/libvirt-coco/vfio-interposer.so" \
            "$mandir/man8/virtcocod.8" "$mandir/man8/qemu-coco.8" \
            "$d" "$d/virtcocod.rst" "$d/qemu-coco.rst" "$d/dbus.rst" \
            "$datadir/dbus-1/interfaces/org.libvirtcoco.Agent1.xml" \
            "$datadir/dbus-1/system.d/org.libvirtcoco.Agent1.conf" \
            "$datadir/polkit-1/actions/org.libvirtcoco.agent.policy" \
            "$datadir/libvirt-coco/examples" \
            "$datadir/libvirt-coco/examples/50-libvirt-coco.rules" \
            "$datadir/libvirt-coco/examples/coco-dbus-migrate.py" \
            "$unitdir/virtcocod.service" \
            "$datadir/dbus-1/system-services/org.libvirtcoco.Agent1.service" \
            "$sysusersdir/libvirt-coco.conf" \
            "$l" "$l/COPYING" ;;
    libvirt-coco-tools)
        printf '%s\n' "$bindir/virt-coco" "$mandir/man1/virt-coco.1" \
            "$(ev '%{?bash_completions_dir}%{!?bash_completions_dir:%{_datadir}/bash-completion/completions}')/virt-coco" \
            "$d" "$d/virt-coco.rst" "$d/formatcoco.rst" "$l" "$l/COPYING" \
            "$sysconfdir/libvirt/hooks" "$sysconfdir/libvirt/hooks/qemu.d" \
            "$sysconfdir/libvirt/hooks/qemu.d/50-libvirt-coco" ;;
    esac
}

packages="libvirt-coco libvirt-coco-libs libvirt-coco-devel libvirt-coco-daemon libvirt-coco-tools"
built=$(cd "$top/RPMS" && ls */*.rpm | sed 's|.*/||' | sort | tr '\n' ' ')
names=$(for f in $built; do rpm -qp --qf '%{NAME}\n' "$top/RPMS"/*/"$f"; done | sort | tr '\n' ' ')
if [ "$names" = "$(printf '%s\n' $packages | sort | tr '\n' ' ')" ]; then
    ok "binary packages: $names"
else
    notok "binary packages: want '$packages', got '$names'"
fi

for pkg in $packages; do
    f=$(ls "$top"/RPMS/*/"$pkg-$version-"*.rpm 2>/dev/null | head -n 1)
    if [ -z "$f" ]; then
        notok "$pkg: no package"
        continue
    fi
    # rpm's own .build-id links are left out; man pages may be compressed
    rpm -qlp "$f" | grep -v '^/usr/lib/\.build-id' |
        sed -E 's/\.(gz|bz2|xz|zst)$//' | sort >"$top/got"
    expected "$pkg" "$f" | sort >"$top/want"
    if cmp -s "$top/got" "$top/want"; then
        ok "$pkg: $(wc -l <"$top/want") files as expected"
    else
        notok "$pkg: files differ (- expected, + packaged)"
        diff -u "$top/want" "$top/got" | tail -n +3 | sed 's/^/# /'
    fi
done

# 4. the trigger: a new QEMU touches qemu-coco (libvirt's capability cache)
daemon=$(ls "$top"/RPMS/*/libvirt-coco-daemon-"$version"-*.rpm | head -n 1)
triggers=$(rpm -qp --triggers "$daemon")
if echo "$triggers" | grep -q '^triggerin.*qemu-kvm.*qemu-system-x86' &&
    echo "$triggers" | grep -q -x "touch -c $libexecdir/qemu-coco || :"; then
    ok "daemon: triggerin on qemu-kvm/qemu-system-x86 touches qemu-coco"
else
    notok "daemon: trigger missing: $triggers"
fi

# 5. the scriptlets: the group before the files, the unit's systemd
#    scriptlets (Fedora's macros or the spec's own forms)
scripts=$(rpm -qp --scripts "$daemon")
section() { echo "$scripts" | sed -n "/^$1 scriptlet/,/^[a-z]* scriptlet/p"; }
if section preinstall | grep -q 'groupadd -r virtcoco'; then
    ok "daemon: %pre creates the group virtcoco"
else
    notok "daemon: %pre does not create the group virtcoco: $(section preinstall)"
fi
for s in postinstall preuninstall postuninstall; do
    if section $s | grep -q 'virtcocod\.service'; then
        ok "daemon: $s scriptlet handles virtcocod.service"
    else
        notok "daemon: no $s scriptlet for virtcocod.service"
        echo "$scripts" | sed 's/^/# /'
    fi
done
if section postuninstall | grep -q 'try-restart\|systemd-update-helper'; then
    ok "daemon: an upgrade restarts a running virtcocod"
else
    notok "daemon: %postun does not restart virtcocod on upgrade"
fi

echo "1..$n"
[ "$fails" = 0 ]
