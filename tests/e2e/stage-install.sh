#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# stage-install.sh: what the RPM installs on a host, staged for the lab's
# installed layout (COCO_LAB_LAYOUT=installed, docs/lab.rst). A build of
# this source tree with the spec's directories (%meson: prefix /usr,
# libexecdir /usr/libexec, sysconfdir /etc, localstatedir /var) in
# COCO_LAB_INSTALL_BUILD, then 'meson install --destdir' into its
# destdir/ (lab-env.sh: INST_BUILD, INST_STAGE). The build is kept between
# runs and only recompiled where the source changed; unchanged files keep
# their time stamps in destdir/ (--only-changed), so libvirt's QEMU
# capabilities cache of the installed qemu-coco stays valid.
# The library goes to Debian's multiarch libdir, where this machine's
# dynamic loader finds it (the spec's %{_libdir} is Fedora's /usr/lib64).
# No tests, no man pages: neither is part of what a host runs.
set -eu
. "$(dirname "$0")/lab-env.sh"

SRC=$(cd "$E2E_DIR/../.." && pwd)
# A build directory of another source tree (a copied cache) is not ours.
if [ -f "$INST_BUILD/meson-info/meson-info.json" ]; then
    have=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["directories"]["source"])' \
        "$INST_BUILD/meson-info/meson-info.json" 2>/dev/null || echo none)
    [ "$have" = "$SRC" ] || rm -rf "$INST_BUILD"
fi
if [ ! -f "$INST_BUILD/build.ninja" ]; then
    rm -rf "$INST_BUILD"
    meson setup "$INST_BUILD" "$SRC" --prefix=/usr --libexecdir=/usr/libexec \
        --sysconfdir=/etc --localstatedir=/var -Dtests=false -Ddocs=disabled \
        -Dgit_werror=disabled > "$INST_BUILD.setup.log" 2>&1 ||
        { cat "$INST_BUILD.setup.log" >&2; lab_die "meson setup of the installed layout failed"; }
    rm -f "$INST_BUILD.setup.log"
fi
t0=$(date +%s)
meson compile -C "$INST_BUILD" -j 2 > "$INST_BUILD/lab-compile.log" 2>&1 ||
    { tail -n 30 "$INST_BUILD/lab-compile.log" >&2; lab_die "the build of the installed layout failed"; }
DESTDIR=$INST_STAGE meson install -C "$INST_BUILD" --no-rebuild --only-changed \
    > "$INST_BUILD/lab-install.log" 2>&1 ||
    { tail -n 30 "$INST_BUILD/lab-install.log" >&2; lab_die "meson install --destdir failed"; }
for f in "$INST_AGENT" "$INST_EMULATOR" /usr/libexec/libvirt-coco-hook \
    /etc/libvirt-coco/virtcocod.conf /etc/libvirt-coco/qemu-coco.conf \
    /etc/libvirt-coco/kvm.conf /etc/libvirt/hooks/qemu.d/50-libvirt-coco; do
    [ -e "$INST_STAGE$f" ] || lab_die "meson install put no '$f' into $INST_STAGE"
done
lab_log "installed layout staged in $INST_STAGE ($(($(date +%s) - t0)) s)"
