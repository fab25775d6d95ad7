#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# virtcocod's D-Bus API on the system bus with a real polkitd (docs/dbus.rst):
# in a private mount namespace, a temporary directory is bound over polkit's
# actions and rules directories (our .policy, the shipped example rule, and
# a test rule allowing 'nobody' to read and migrate, 'bin' to read only, and
# denying every other user; polkitd itself always allows root), a private
# dbus-daemon with a system-style configuration stands in for the system
# bus (DBUS_SYSTEM_BUS_ADDRESS), and polkitd and virtcocod --dbus system run
# on it. The agent has what a host gives it: TLS files (tests/cocotlsgen.sh,
# certtool), the relay of domain 'coco' (tests/cocodbusrelay.py) and a
# local libvirt: a real libvirtd (session mode, as 'nobody', libvirt's test
# driver only) behind tests/cocolibvirtstall.py, which holds a migration
# until virDomainAbortJob(). So an authorised Migrate() starts a job that
# runs, and an authorised Abort() cancels it. Every method of docs/dbus.rst
# is called by an authorised and by a refused caller.
# Needs root (unshare -m, setpriv).
# Usage: cocodbuspolkittest.sh VIRTCOCOD   (TAP; 77 when it cannot run)

set -u
virtcocod=$1
srcroot=${abs_top_srcdir:-$(dirname "$0")/..}
polkitd=/usr/lib/polkit-1/polkitd
libvirtd=/usr/sbin/libvirtd

if [ -z "${COCO_IN_NS:-}" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "1..0 # SKIP needs root (a mount namespace and another uid)"
        exit 77
    fi
    for p in unshare setpriv dbus-daemon gdbus certtool python3 "$polkitd" \
        "$libvirtd"; do
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

mkdir "$tmp/actions" "$tmp/rules" "$tmp/etcrules" "$tmp/state" "$tmp/pids"
# Started first, as they take a while: the agent's TLS files (certtool),
# and its local libvirt: libvirtd with only the test driver (no driver
# modules), as 'nobody' in a session of its own, behind the stall.
sh "$srcroot/tests/cocotlsgen.sh" "$tmp/pki" >"$tmp/pki.log" 2>&1 &
pkipid=$!
lv=$tmp/libvirt
mkdir -p "$lv/run" "$lv/config" "$lv/cache" "$lv/no-modules"
chown -R nobody "$lv"
setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$lv" \
    XDG_RUNTIME_DIR="$lv/run" XDG_CONFIG_HOME="$lv/config" \
    XDG_CACHE_HOME="$lv/cache" LIBVIRT_DRIVER_DIR="$lv/no-modules" \
    "$libvirtd" >"$tmp/libvirtd.log" 2>&1 &
pids="$pids $!"
python3 "$srcroot/tests/cocolibvirtstall.py" "$tmp/libvirt.sock" \
    "$lv/run/libvirt/libvirt-sock" >"$tmp/stall.log" 2>&1 &
pids="$pids $!"
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

i=0
while { [ ! -S "$lv/run/libvirt/libvirt-sock" ] || ! grep -q ready "$tmp/stall.log"; } &&
    [ $i -lt 300 ]; do
    i=$((i + 1))
    sleep 0.1
done
if [ -S "$lv/run/libvirt/libvirt-sock" ] && grep -q ready "$tmp/stall.log"; then
    ok "libvirtd (test driver) serves the agent's libvirt, behind the stall"
else
    notok "libvirtd (test driver) serves the agent's libvirt" "$tmp/libvirtd.log" "$tmp/stall.log"
fi

if wait "$pkipid"; then
    ok "tests/cocotlsgen.sh makes the agent's TLS files (certtool)"
else
    notok "tests/cocotlsgen.sh makes the agent's TLS files" "$tmp/pki.log"
fi
pki=$tmp/pki/local
{
    echo "[virtcocod]"
    echo "listen = 127.0.0.1"
    echo "libvirt_uri = test+unix://$(cd "$srcroot" && pwd)/tests/cocodbusdata/testnode.xml?socket=$tmp/libvirt.sock"
    echo "qemu_binaries = /bin/sh;"
    echo "pid_dir = $tmp/pids"
    echo "tls_ca_cert = $pki/cacert.pem"
    echo "tls_server_cert = $pki/servercert.pem"
    echo "tls_server_key = $pki/private/serverkey.pem"
    echo "tls_client_cert = $pki/clientcert.pem"
    echo "tls_client_key = $pki/private/clientkey.pem"
} >"$tmp/virtcocod.conf"
"$virtcocod" -f --dbus system --config "$tmp/virtcocod.conf" \
    --socket "$tmp/agent.sock" --port 0 --platform "$tmp/platform" \
    --state-dir "$tmp/state" >"$tmp/agent.log" 2>&1 &
pids="$pids $!"
# The relay of 'coco' (it waits for the agent's socket): a stand-in QEMU
# and its hello, connected until the end.
python3 "$srcroot/tests/cocodbusrelay.py" "$tmp/agent.sock" "$tmp/pids" \
    >"$tmp/relay.log" 2>&1 &
pids="$pids $!"
if waitname org.libvirtcoco.Agent1; then
    ok "virtcocod --dbus system owns org.libvirtcoco.Agent1"
else
    notok "virtcocod --dbus system owns org.libvirtcoco.Agent1" "$tmp/agent.log"
fi

i=0
while ! grep -q . "$tmp/relay.log" && [ $i -lt 300 ]; do
    i=$((i + 1))
    sleep 0.1
done
if grep -q '"welcome"' "$tmp/relay.log"; then
    ok "the agent authenticates the stand-in relay of 'coco'"
else
    notok "the agent authenticates the stand-in relay of 'coco'" "$tmp/relay.log" "$tmp/agent.log"
fi

as() {
    u=$(id -u "$1")
    shift
    setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"
}
# dcall USER OBJECT METHOD ARGS...: gdbus call as USER (-: root); the
# answer or the error goes to $tmp/out.
dcall() {
    who=$1 obj=$2 method=$3
    shift 3
    if [ "$who" = - ]; then
        gdbus call --system --dest org.libvirtcoco.Agent1 \
            --object-path "$obj" --method "$method" "$@" >"$tmp/out" 2>&1
    else
        as "$who" gdbus call --system --dest org.libvirtcoco.Agent1 \
            --object-path "$obj" --method "$method" "$@" >"$tmp/out" 2>&1
    fi
}
# denied WHAT ACTION USER OBJECT METHOD ARGS...: polkit refuses the call:
# AccessDenied naming the action, never the method's own answer.
denied() {
    what=$1 action=$2
    shift 2
    if ! dcall "$@" &&
        grep -q "org.libvirtcoco.Error.AccessDenied: polkit denies action 'org.libvirtcoco.agent.$action'" "$tmp/out"; then
        ok "$what"
    else
        notok "$what" "$tmp/out" "$tmp/agent.log"
    fi
}
# allowed WHAT PATTERN USER OBJECT METHOD ARGS...: an authorised call
# answers, matching PATTERN.
allowed() {
    what=$1 pattern=$2
    shift 2
    if dcall "$@" && grep -q "$pattern" "$tmp/out"; then
        ok "$what"
    else
        notok "$what" "$tmp/out" "$tmp/agent.log" "$tmp/polkitd.log"
    fi
}
# prop JOB NAME: a job's property (no polkit check, as libvirt-dbus's).
prop() {
    gdbus call --system --dest org.libvirtcoco.Agent1 --object-path "$1" \
        --method org.freedesktop.DBus.Properties.Get \
        org.libvirtcoco.Job1 "$2" 2>&1
}
# waitstate JOB STATE: wait (bounded) until the job's State is STATE.
waitstate() {
    i=0
    while [ $i -lt 300 ] && ! prop "$1" State | grep -q "'$2'"; do
        i=$((i + 1))
        sleep 0.1
    done
    prop "$1" State | grep -q "'$2'"
}
agent=/org/libvirtcoco/Agent1
A=org.libvirtcoco.Agent1
J=org.libvirtcoco.Job1
element=$(cat "$srcroot/tests/virtcocodata/element.xml")

# org.libvirtcoco.agent.read: root (polkitd), 'nobody' and 'bin' (the test
# rule) and 'daemon' (the example rule: group virtcoco) read; 'sys' not.
allowed "polkit allows root: Capabilities answers" "'firmware': <'emulated'>" \
    - $agent $A.Capabilities
allowed "polkit allows 'nobody' (the test rule): Capabilities answers" \
    "'firmware': <'emulated'>" nobody $agent $A.Capabilities
allowed "the example rule lets 'daemon' (group virtcoco) read: Capabilities answers" \
    "'firmware': <'emulated'>" daemon $agent $A.Capabilities
denied "polkit denies Capabilities to 'sys': AccessDenied" read \
    sys $agent $A.Capabilities
allowed "polkit allows 'nobody' Validate: the element is valid" \
    "'valid': <true>" nobody $agent $A.Validate "$element"
denied "polkit denies Validate to 'sys': AccessDenied" read \
    sys $agent $A.Validate "$element"
allowed "polkit allows 'bin' GetMigrations: the records" "^('\[" \
    bin $agent $A.GetMigrations
denied "polkit denies GetMigrations to 'sys': AccessDenied" read \
    sys $agent $A.GetMigrations
allowed "polkit allows 'bin' VfioCheck: the verdict" "'verdict': <" \
    bin $agent $A.VfioCheck
denied "polkit denies VfioCheck to 'sys': AccessDenied" read \
    sys $agent $A.VfioCheck
allowed "polkit allows 'bin' GetJobs: no job yet" "^(@ao \[\],)" \
    bin $agent $A.GetJobs
denied "polkit denies GetJobs to 'sys': AccessDenied" read \
    sys $agent $A.GetJobs

# org.libvirtcoco.agent.migrate: 'nobody' (the test rule) and 'games' (the
# example rule: group libvirt) migrate and abort; 'bin' and 'daemon' (read
# only) and 'sys' not. A refused Migrate() makes no job, a refused Abort()
# leaves the job running.
params="{'migrate_uri': <'tcp:127.0.0.1'>, 'parallel.connections': <4>}"
denied "polkit denies Migrate to 'bin' (read only): AccessDenied" migrate \
    bin $agent $A.Migrate coco test:///default "$params" 3
denied "the example rule does not let 'daemon' (group virtcoco) migrate" \
    migrate daemon $agent $A.Migrate coco test:///default "$params" 3
denied "polkit denies Migrate to 'sys': AccessDenied" migrate \
    sys $agent $A.Migrate coco test:///default "$params" 3
allowed "polkit allows 'nobody' to migrate: Migrate starts job 1" \
    "objectpath '$agent/Job/1'" \
    nobody $agent $A.Migrate coco test:///default "$params" 3
job=$agent/Job/1
if waitstate $job running &&
    grep -q "held: supports-feature migration-p2p" "$tmp/stall.log"; then
    ok "job 1 runs: libvirt's migration call is under way"
else
    notok "job 1 runs: libvirt's migration call is under way" \
        "$tmp/stall.log" "$tmp/agent.log"
fi
allowed "polkit allows 'bin' GetJobs: job 1 only" \
    "^(\[objectpath '$job'\],)" bin $agent $A.GetJobs
allowed "polkit allows 'bin' GetRecord of job 1" "^('" bin $job $J.GetRecord
denied "polkit denies GetRecord to 'sys': AccessDenied" read \
    sys $job $J.GetRecord
denied "polkit denies Abort to 'bin' (read only): AccessDenied" migrate \
    bin $job $J.Abort
denied "the example rule does not let 'daemon' (group virtcoco) abort" \
    migrate daemon $job $J.Abort
denied "polkit denies Abort to 'sys': AccessDenied" migrate sys $job $J.Abort
if prop $job State | grep -q "'running'" &&
    ! grep -q "answered: domain-abort-job" "$tmp/stall.log"; then
    ok "the refused callers changed nothing: job 1 still runs"
else
    notok "the refused callers changed nothing: job 1 still runs" \
        "$tmp/stall.log" "$tmp/agent.log"
fi
allowed "polkit allows 'nobody' to abort: Abort answers" "^()$" \
    nobody $job $J.Abort
if waitstate $job cancelled &&
    grep -q "answered: domain-abort-job" "$tmp/stall.log" &&
    prop $job LastError | grep -q "aborted on request"; then
    ok "the authorised Abort() cancels job 1 (virDomainAbortJob)"
else
    notok "the authorised Abort() cancels job 1 (virDomainAbortJob)" \
        "$tmp/stall.log" "$tmp/agent.log"
fi

# The example rule's migrator: a second job of the domain, and its abort.
allowed "the example rule lets 'games' (group libvirt) migrate: job 2" \
    "objectpath '$agent/Job/2'" \
    games $agent $A.Migrate coco test:///default "$params" 3
job=$agent/Job/2
if waitstate $job running; then
    ok "job 2 runs"
else
    notok "job 2 runs" "$tmp/stall.log" "$tmp/agent.log"
fi
allowed "the example rule lets 'games' (group libvirt) abort job 2" "^()$" \
    games $job $J.Abort
if waitstate $job cancelled; then
    ok "job 2 is cancelled"
else
    notok "job 2 is cancelled" "$tmp/stall.log" "$tmp/agent.log"
fi
allowed "GetJobs lists the jobs of the authorised callers only" \
    "^(\[objectpath '$agent/Job/1', '$agent/Job/2'\],)" \
    - $agent $A.GetJobs
echo "1..$n"
exit $fail
