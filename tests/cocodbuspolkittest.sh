#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# virtcocod's D-Bus API on the system bus with a real polkitd (docs/dbus.rst):
# in a private mount namespace, a temporary directory is bound over polkit's
# actions and rules directories (our .policy, a test rule allowing 'nobody'
# to read and migrate, 'bin' to read only, and denying every other user;
# polkitd itself always allows root), a private dbus-daemon with a
# system-style configuration
# stands in for the system bus (DBUS_SYSTEM_BUS_ADDRESS), and polkitd and
# virtcocod --dbus system run on it. Needs root (unshare -m, setpriv).
# Usage: cocodbuspolkittest.sh VIRTCOCOD   (TAP; 77 when it cannot run)

set -u
virtcocod=$1
srcroot=${abs_top_srcdir:-$(dirname "$0")/..}
polkitd=/usr/lib/polkit-1/polkitd

if [ -z "${COCO_IN_NS:-}" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "1..0 # SKIP needs root (a mount namespace and another uid)"
        exit 77
    fi
    for p in unshare setpriv dbus-daemon gdbus "$polkitd"; do
        if ! command -v "$p" >/dev/null 2>&1; then
            echo "1..0 # SKIP $p is not installed"
            exit 77
        fi
    done
    COCO_IN_NS=1 exec unshare -m --propagation private sh "$0" "$@"
fi

tmp=$(mktemp -d /tmp/cocodbuspolkit-XXXXXX)
chmod 755 "$tmp"
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
    n=$((n + 1)); fail=1; echo "not ok $n - $1"
    shift
    for f in "$@"; do sed 's/^/# /' "$f"; done
}

mkdir "$tmp/actions" "$tmp/rules" "$tmp/etcrules" "$tmp/state"
cp "$srcroot/data/org.libvirtcoco.agent.policy" "$tmp/actions/"
# The shipped example rule (data/50-libvirt-coco.rules) runs first; the
# test rule after it decides for everyone else.
cp "$srcroot/data/50-libvirt-coco.rules" "$tmp/rules/"
cat >"$tmp/rules/60-coco-test.rules" <<'RULES'
polkit.addRule(function(action, subject) {
    if (action.id == "org.libvirtcoco.agent.read") {
        return subject.user == "nobody" || subject.user == "bin" ?
            polkit.Result.YES : polkit.Result.NO;
    }
    if (action.id == "org.libvirtcoco.agent.migrate") {
        return subject.user == "nobody" ? polkit.Result.YES : polkit.Result.NO;
    }
});
RULES
chmod -R a+rX "$tmp"
mount --bind "$tmp/actions" /usr/share/polkit-1/actions
mount --bind "$tmp/rules" /usr/share/polkit-1/rules.d
mount --bind "$tmp/etcrules" /etc/polkit-1/rules.d
# Groups for the example rule: 'games' in 'libvirt', 'daemon' in 'virtcoco'
# (polkitd asks the user database, in this mount namespace).
grep -v -e '^libvirt:' -e '^virtcoco:' /etc/group >"$tmp/group"
echo "libvirt:x:64998:games" >>"$tmp/group"
echo "virtcoco:x:64999:daemon" >>"$tmp/group"
chmod 644 "$tmp/group"
mount --bind "$tmp/group" /etc/group

sed "s|@LISTEN@|unix:path=$tmp/system_bus_socket|" \
    "$srcroot/tests/cocodbusdata/system.conf.in" >"$tmp/system.conf"
dbus-daemon --config-file="$tmp/system.conf" --nofork --print-address=1 \
    >"$tmp/address" 2>"$tmp/dbus.log" &
pids="$pids $!"
# The daemon prints its address once it listens: wait (bounded) for it, or
# polkitd may try to connect before and exit.
i=0
while [ ! -s "$tmp/address" ] && [ $i -lt 300 ]; do
    i=$((i + 1))
    sleep 0.1
done
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/system_bus_socket
export DBUS_SYSTEM_BUS_ADDRESS
unset G_DEBUG # gdbus and polkitd are not the code under test

# Wait (bounded) for a name on the private system bus.
waitname() {
    i=0
    while [ $i -lt 300 ]; do
        if gdbus call --system --dest org.freedesktop.DBus \
            --object-path /org/freedesktop/DBus \
            --method org.freedesktop.DBus.NameHasOwner "$1" 2>/dev/null |
            grep -q true; then
            return 0
        fi
        i=$((i + 1))
        sleep 0.1
    done
    return 1
}

"$polkitd" --no-debug >"$tmp/polkitd.log" 2>&1 &
pids="$pids $!"
if waitname org.freedesktop.PolicyKit1; then
    ok "polkitd serves org.freedesktop.PolicyKit1 on the private system bus"
else
    notok "polkitd serves org.freedesktop.PolicyKit1" "$tmp/polkitd.log" "$tmp/dbus.log"
    echo "1..$n"
    exit 1
fi

# The agent's local libvirt is libvirt's test driver: an authorised
# Migrate() passes every check and gets a job, which then fails in libvirt.
printf '[virtcocod]\nlibvirt_uri = test://%s\n' \
    "$(cd "$srcroot" && pwd)/tests/cocodbusdata/testnode.xml" >"$tmp/virtcocod.conf"
"$virtcocod" -f --dbus system --config "$tmp/virtcocod.conf" \
    --socket "$tmp/agent.sock" --port 0 --platform "$tmp/platform" \
    --state-dir "$tmp/state" >"$tmp/agent.log" 2>&1 &
pids="$pids $!"
if waitname org.libvirtcoco.Agent1; then
    ok "virtcocod --dbus system owns org.libvirtcoco.Agent1"
else
    notok "virtcocod --dbus system owns org.libvirtcoco.Agent1" "$tmp/agent.log"
fi

call() {
    "$@" gdbus call --system --dest org.libvirtcoco.Agent1 \
        --object-path /org/libvirtcoco/Agent1 \
        --method org.libvirtcoco.Agent1.Capabilities
}
as() {
    u=$(id -u "$1")
    shift
    setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"
}
if call env >"$tmp/out" 2>&1 && grep -q "'firmware': <'emulated'>" "$tmp/out"; then
    ok "polkit allows root: Capabilities answers"
else
    notok "polkit allows root: Capabilities answers" "$tmp/out" "$tmp/agent.log"
fi
if call as nobody >"$tmp/out" 2>&1 && grep -q "'firmware': <'emulated'>" "$tmp/out"; then
    ok "polkit allows 'nobody' (the test rule): Capabilities answers"
else
    notok "polkit allows 'nobody' (the test rule): Capabilities answers" "$tmp/out" "$tmp/agent.log"
fi

if ! call as sys >"$tmp/out" 2>&1 &&
    grep -q "org.libvirtcoco.Error.AccessDenied: polkit denies action 'org.libvirtcoco.agent.read'" "$tmp/out"; then
    ok "polkit denies 'sys' (the test rule): org.libvirtcoco.Error.AccessDenied"
else
    notok "polkit denies 'sys' (the test rule): org.libvirtcoco.Error.AccessDenied" "$tmp/out" "$tmp/agent.log"
fi
if call as daemon >"$tmp/out" 2>&1 && grep -q "'firmware': <'emulated'>" "$tmp/out"; then
    ok "the example rule lets 'daemon' (group virtcoco) read: Capabilities answers"
else
    notok "the example rule lets 'daemon' (group virtcoco) read" "$tmp/out" "$tmp/agent.log" "$tmp/polkitd.log"
fi
# Migrate() needs org.libvirtcoco.agent.migrate.
migrate() {
    "$@" gdbus call --system --dest org.libvirtcoco.Agent1 \
        --object-path /org/libvirtcoco/Agent1 \
        --method org.libvirtcoco.Agent1.Migrate coco test:///default \
        "{'migrate_uri': <'tcp:127.0.0.1'>}" 3
}
# Past polkit, the agent's own fail-closed checks answer: this agent has
# no relay for 'coco' (no QEMU runs it here) and no TLS, so an authorised
# Migrate() is refused by those (QmpAgent), never by polkit; the job's own
# life is tested by cocodbusjobtest.py with a stand-in relay.
authorised() {
    grep -q "objectpath '/org/libvirtcoco/Agent1/Job/" "$tmp/out" ||
        { grep -q "org.libvirtcoco.Error.QmpAgent" "$tmp/out" &&
            ! grep -q "polkit denies" "$tmp/out"; }
}
migrate as nobody >"$tmp/out" 2>&1
if authorised; then
    ok "polkit allows 'nobody' to migrate: the agent's own checks answer"
else
    notok "polkit allows 'nobody' to migrate: the agent's own checks answer" "$tmp/out" "$tmp/agent.log"
fi
if ! migrate as bin >"$tmp/out" 2>&1 &&
    grep -q "org.libvirtcoco.Error.AccessDenied: polkit denies action 'org.libvirtcoco.agent.migrate'" "$tmp/out"; then
    ok "polkit denies Migrate to 'bin' (read only): org.libvirtcoco.Error.AccessDenied"
else
    notok "polkit denies Migrate to 'bin' (read only)" "$tmp/out" "$tmp/agent.log"
fi
if ! migrate as daemon >"$tmp/out" 2>&1 &&
    grep -q "org.libvirtcoco.Error.AccessDenied: polkit denies action 'org.libvirtcoco.agent.migrate'" "$tmp/out"; then
    ok "the example rule does not let 'daemon' (group virtcoco) migrate"
else
    notok "the example rule does not let 'daemon' (group virtcoco) migrate" "$tmp/out" "$tmp/agent.log"
fi
# A second authorised Migrate of the same domain, once the first job ended.
i=0
while [ $i -lt 50 ] && ! as bin gdbus call --system --dest org.libvirtcoco.Agent1 \
    --object-path /org/libvirtcoco/Agent1/Job/1 \
    --method org.freedesktop.DBus.Properties.Get org.libvirtcoco.Job1 State 2>/dev/null |
    grep -q failed; do
    i=$((i + 1))
    sleep 0.1
done
migrate as games >"$tmp/out" 2>&1
if authorised; then
    ok "the example rule lets 'games' (group libvirt) migrate: the agent's own checks answer"
else
    notok "the example rule lets 'games' (group libvirt) migrate" "$tmp/out" "$tmp/agent.log" "$tmp/polkitd.log"
fi
jobs() {
    as bin gdbus call --system --dest org.libvirtcoco.Agent1 \
        --object-path /org/libvirtcoco/Agent1 \
        --method org.libvirtcoco.Agent1.GetJobs
}
# The refused callers got no job: GetJobs (a read) lists none of theirs.
if jobs >"$tmp/out" 2>&1 && ! grep -q "Job/3" "$tmp/out"; then
    ok "'bin' may read: GetJobs lists no job of a refused caller"
else
    notok "'bin' may read: GetJobs lists no job of a refused caller" "$tmp/out" "$tmp/agent.log"
fi
abort() {
    "$@" gdbus call --system --dest org.libvirtcoco.Agent1 \
        --object-path /org/libvirtcoco/Agent1/Job/1 \
        --method org.libvirtcoco.Job1.Abort
}
if ! jobs 2>/dev/null | grep -q "Job/1"; then
    # The authorised Migrate() calls were refused after polkit (above):
    # there is no job to abort here; cocodbusjobtest.py aborts one.
    n=$((n + 1))
    echo "ok $n - polkit denies Abort to 'bin' # SKIP no job on this agent (no relay, no TLS)"
elif ! abort as bin >"$tmp/out" 2>&1 &&
    grep -q "org.libvirtcoco.Error.AccessDenied: polkit denies action 'org.libvirtcoco.agent.migrate'" "$tmp/out"; then
    ok "polkit denies Abort to 'bin': org.libvirtcoco.Error.AccessDenied"
else
    notok "polkit denies Abort to 'bin'" "$tmp/out" "$tmp/agent.log"
fi
echo "1..$n"
exit $fail
