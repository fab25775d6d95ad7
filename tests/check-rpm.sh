#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build the RPMs from the 'meson dist' tarball with rpmbuild (a private
# %_topdir, --nodeps: on Debian the BuildRequires are Debian packages) and
# check that the tarball carries the spec with meson's version, that the
# compiler got the distribution's optimisation, -g and FORTIFY flags, that
# each binary package holds exactly the expected files, that the
# configuration files are %config(noreplace), that -daemon carries the
# hook where libvirt runs it, its requirements, the QEMU trigger and
# scriptlets that never restart the agent in the middle of a migration,
# that %check ran, and that rpmlint (with libvirt-coco.rpmlintrc) finds
# nothing in the spec, the source and the binary packages.
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
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }

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
spec_version=$(tar xJOf "$tarball" "libvirt-coco-$version/libvirt-coco.spec" 2>/dev/null |
    sed -n 's/^Version: *//p')
if [ "$spec_version" = "$version" ]; then
    ok "the tarball's libvirt-coco.spec has meson's version $version"
else
    notok "the tarball's libvirt-coco.spec: Version '$spec_version', meson's '$version'"
fi

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

# The compiler's flags: the distribution's optimisation and debug flags
# and _FORTIFY_SOURCE (the spec's fallback when rpm has no %meson macro).
cc_line=$(grep -E '(cc|gcc|clang) .* -c [^ ]*virtcocod\.c' "$top/rpmbuild.log" | head -n 1)
missing=
for flag in -O2 -g _FORTIFY_SOURCE; do
    echo "$cc_line" | grep -q -- "$flag" || missing="$missing $flag"
done
if [ -n "$cc_line" ] && [ -z "$missing" ]; then
    ok "the compiler gets -O2, -g and _FORTIFY_SOURCE"
else
    notok "compiler flags missing:${missing:- (no compile line of virtcocod.c)}"
    echo "# $cc_line"
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

# licensedir names follow %_docdir_fmt (Fedora: NAME; rpm's default when
# it is unset, as on Debian: NAME-VERSION); the documentation is in
# %{_docdir}/libvirt-coco, where meson installs it (-Ddocdir).
expected() {
    local pkg=$1 rpmfile=$2 fmt d l
    fmt=$(rpm --eval '%{?_docdir_fmt}')
    [ -n "$fmt" ] || fmt='%{NAME}-%{VERSION}'
    d=$docdir/libvirt-coco
    l=$licensedir/$(rpm -qp --qf "$fmt" "$rpmfile")
    case $pkg in
    libvirt-coco-libs)
        printf '%s\n' "$libdir/libvirt-coco.so.0" \
            "$libdir/libvirt-coco.so.0.1.0" \
            "$datadir/libvirt-coco" "$datadir/libvirt-coco/schemas" \
            "$datadir/libvirt-coco/schemas/coco-migration.rng" \
            "$sysconfdir/libvirt-coco" "$sysconfdir/libvirt-coco/kvm.conf" \
            "$d" "$d/README.rst" "$d/kvm-abi.rst" \
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
            "$libdir/libvirt-coco/write-log.so" \
            "$mandir/man8/virtcocod.8" "$mandir/man8/qemu-coco.8" \
            "$sysconfdir/libvirt-coco/virtcocod.conf" \
            "$sysconfdir/libvirt-coco/qemu-coco.conf" \
            "$d" "$d/virtcocod.rst" "$d/qemu-coco.rst" "$d/dbus.rst" \
            "$d/phases.rst" "$d/hook.rst" "$d/packaging.rst" \
            "$libexecdir/libvirt-coco-hook" \
            "$sysconfdir/libvirt/hooks" "$sysconfdir/libvirt/hooks/qemu.d" \
            "$sysconfdir/libvirt/hooks/qemu.d/50-libvirt-coco" \
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
            "$datadir/libvirt-coco/schemas/virt-coco-json.schema.json" ;;
    esac
}

packages="libvirt-coco-libs libvirt-coco-devel libvirt-coco-daemon libvirt-coco-tools"
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
commands=$(echo "$scripts" | grep -v '^ *#')
if echo "$commands" | grep -q 'try-restart\|restart virtcocod\|mark-restart'; then
    notok "daemon: a scriptlet restarts virtcocod (and cuts a migration short)"
    echo "$commands" | grep -n 'restart' | sed 's/^/# /'
elif section postuninstall | grep -q 'systemctl reload virtcocod\.service'; then
    ok "daemon: an upgrade asks virtcocod to restart when idle (reload), never try-restart"
else
    notok "daemon: %postun does not reload virtcocod on upgrade"
fi

# 6. the configuration files: %config(noreplace), in the package that
#    reads them (rpm's FILEFLAGS: c for config, n for noreplace)
for pkg_conf in libvirt-coco-daemon:virtcocod.conf libvirt-coco-daemon:qemu-coco.conf \
    libvirt-coco-libs:kvm.conf; do
    pkg=${pkg_conf%%:*}
    conf=$sysconfdir/libvirt-coco/${pkg_conf#*:}
    f=$(ls "$top"/RPMS/*/"$pkg-$version-"*.rpm | head -n 1)
    flags=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$f" |
        sed -n "s|^$conf ||p")
    case $flags in
    *c*n*) ok "$pkg: $conf is %config(noreplace) ($flags)" ;;
    *) notok "$pkg: $conf is not %config(noreplace): flags '$flags'" ;;
    esac
done

# 7. the hook: -daemon has it where libvirt runs it, a link to a binary
#    outside /etc; -tools has none
link=$(rpm -qp --qf '[%{FILENAMES} %{FILELINKTOS}\n]' "$daemon" |
    sed -n "s|^$sysconfdir/libvirt/hooks/qemu.d/50-libvirt-coco ||p")
target=$(realpath -m "$sysconfdir/libvirt/hooks/qemu.d/$link")
if [ "$target" = "$libexecdir/libvirt-coco-hook" ] && [ "${link#/}" = "$link" ]; then
    ok "daemon: qemu.d/50-libvirt-coco -> $link ($target)"
else
    notok "daemon: qemu.d/50-libvirt-coco links to '$link' ($target), not $libexecdir/libvirt-coco-hook"
fi
tools=$(ls "$top"/RPMS/*/libvirt-coco-tools-"$version"-*.rpm | head -n 1)
if rpm -qlp "$tools" | grep -q hooks; then
    notok "tools: still carries a hook"
else
    ok "tools: no hook (it is -daemon's)"
fi

# 8. the requirements: polkit, GIO's TLS backend, libvirt's qemu driver
#    with qemu.d hooks (6.5.0), and no python3 (the example is not
#    executable)
reqs=$(rpm -qp --requires "$daemon")
if echo "$reqs" | grep -q -x 'polkit' &&
    echo "$reqs" | grep -q -x 'glib-networking' &&
    echo "$reqs" | grep -q -x 'libvirt-daemon-driver-qemu >= 6.5.0'; then
    ok "daemon: requires polkit, glib-networking and libvirt-daemon-driver-qemu >= 6.5.0"
else
    notok "daemon: requirements: $(echo $reqs)"
fi
py=
for f in "$top"/RPMS/*/*.rpm; do
    rpm -qp --requires "$f" | grep -q python && py="$py $(basename "$f")"
done
if [ -z "$py" ]; then
    ok "no package requires python"
else
    notok "packages requiring python:$py"
fi

# 9. rpmlint on the spec, the source package and the binary packages,
#    with the project's filters (each with its reason); a filter that
#    matches nothing is reported too (unused-rpmlintrc-filter)
if command -v rpmlint >/dev/null; then
    srcdir=$(cd "$(dirname "$0")/.." && pwd)
    tar xJf "$tarball" -C "$top" "libvirt-coco-$version/libvirt-coco.spec"
    if out=$(rpmlint -r "$srcdir/libvirt-coco.rpmlintrc" \
        "$top/libvirt-coco-$version/libvirt-coco.spec" \
        "$top"/SRPMS/*.src.rpm "$top"/RPMS/*/*.rpm 2>&1) &&
        echo "$out" | grep -q ' 0 errors, 0 warnings'; then
        ok "rpmlint: $(echo "$out" | grep -o '[0-9]* packages and [0-9]* specfiles checked; 0 errors, 0 warnings')"
    else
        notok "rpmlint"
        echo "$out" | grep -E ': [EW]: |errors' | sed 's/^/# /'
    fi
else
    skip "rpmlint not installed (Debian: rpmlint)"
fi

echo "1..$n"
[ "$fails" = 0 ]
