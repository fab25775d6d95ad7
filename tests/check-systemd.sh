#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The systemd and D-Bus activation files of virtcocod (data/,
# docs/packaging.rst): systemd's own parsers accept them, the unit runs the
# options the built agent has, its hardening does not regress, the
# sysusers.d entry creates the group 'virtcoco' and the bus-activation file
# names the unit's bus name and the unit (or its alias).
# Usage: check-systemd.sh UNIT VIRTCOCOD SYSUSERS-CONF [BUS-SERVICE|none]
# (TAP; 77 without systemd-analyze)
set -u
unit=${1:?usage: check-systemd.sh UNIT VIRTCOCOD SYSUSERS-CONF [BUS-SERVICE]}
virtcocod=${2:?}
sysusers=$(realpath "${3:?}")
busservice=${4:-none}
# The exposure 'systemd-analyze security' gives the unit (0..100, shown
# divided by ten); more means a hardening setting was lost.
max_exposure=53

if ! command -v systemd-analyze >/dev/null; then
    echo "1..0 # SKIP systemd-analyze not installed (Debian: systemd)"
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/coco-systemd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); echo "not ok $n - $*"; fails=$((fails + 1)); }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
# The value of KEY in FILE ('KEY=VALUE' lines), the last one wins.
key() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

# 1. systemd-analyze verify, with the built agent in ExecStart's place (it
#    checks that the command exists): no error and no warning.
name=$(basename "$unit")
sed -E "s|^ExecStart=[^ ]*/virtcocod |ExecStart=$virtcocod |" "$unit" \
    >"$tmp/$name"
if out=$(cd "$tmp" && systemd-analyze verify --man=no "$tmp/$name" 2>&1) &&
    [ -z "$out" ]; then
    ok "systemd-analyze verify $name"
else
    notok "systemd-analyze verify $name"
    echo "$out" | sed 's/^/# /'
fi

# 2. the options of ExecStart are the agent's
exec=$(key "$unit" ExecStart)
help=$("$virtcocod" --help 2>&1)
bad=
for opt in ${exec#* }; do
    case $opt in
    --*) echo "$help" | grep -q -- "^ *\(-., \)\?$opt\b" || bad="$bad $opt" ;;
    esac
done
if [ -z "$bad" ] && echo "$exec" | grep -q -- '--foreground'; then
    ok "ExecStart runs the agent in the foreground with its options: ${exec#* }"
else
    notok "ExecStart '$exec': options virtcocod --help does not list:${bad:- (no --foreground)}"
fi

# 3. the hardening: systemd's exposure score at most $max_exposure
if out=$(systemd-analyze security --offline=yes --threshold=$max_exposure \
    "$tmp/$name" 2>&1); then
    ok "systemd-analyze security: $(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: //p')"
else
    notok "systemd-analyze security: exposure above $max_exposure/100"
    echo "$out" | grep -E '✗|Overall' | sed 's/^/# /'
fi

# 4. the directories of RuntimeDirectory= and StateDirectory= are the
#    agent's defaults (socket and state_dir of docs/virtcocod.rst)
if [ "$(key "$unit" RuntimeDirectory)" = libvirt-coco ] &&
    [ "$(key "$unit" StateDirectory)" = libvirt-coco ] &&
    grep -a -q -F /run/libvirt-coco/agent.sock "$virtcocod" &&
    grep -a -q -F /var/lib/libvirt-coco/migrations "$virtcocod"; then
    ok "RuntimeDirectory and StateDirectory hold the agent's default socket and records"
else
    notok "RuntimeDirectory/StateDirectory do not match the agent's defaults"
fi

# 5. reload: ExecReload's signal makes an idle agent exit with a status
#    that the unit counts as clean and restarts (RestartForceExitStatus=),
#    not as a failure
reload=$(key "$unit" ExecReload)
sig=$(echo "$reload" | sed -n 's|^/bin/kill -\([A-Z0-9]*\) \$MAINPID$|\1|p')
force=$(key "$unit" RestartForceExitStatus)
success=$(key "$unit" SuccessExitStatus)
if [ -z "$sig" ] || [ -z "$force" ] || [ "$force" != "$success" ]; then
    notok "reload: ExecReload='$reload' RestartForceExitStatus='$force' SuccessExitStatus='$success'"
else
    mkdir -p "$tmp/agent"
    printf '[virtcocod]\nsocket=%s\nlisten=127.0.0.1\nport=0\nplatform=%s\nstate_dir=%s\n' \
        "$tmp/agent/agent.sock" "$tmp/agent/platform.conf" "$tmp/agent/migrations" \
        >"$tmp/agent/virtcocod.conf"
    "$virtcocod" -f -c "$tmp/agent/virtcocod.conf" >"$tmp/agent/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        [ -S "$tmp/agent/agent.sock" ] && break
        sleep 0.05
    done
    kill -s "$sig" "$pid"
    status=
    for _ in $(seq 100); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            status=$?
            break
        fi
        sleep 0.05
    done
    if [ "$status" = "$force" ]; then
        ok "reload: SIG$sig makes an idle agent exit with $status, which the unit restarts"
    else
        [ -n "$status" ] || kill "$pid" 2>/dev/null
        notok "reload: SIG$sig: agent exit status '${status:-still running after 5 s}', the unit restarts on $force"
        sed 's/^/# /' "$tmp/agent/log"
    fi
fi

# 6. sysusers.d: the group 'virtcoco', a system group
if ! command -v systemd-sysusers >/dev/null; then
    skip "systemd-sysusers not installed"
elif [ "$(id -u)" != 0 ]; then
    # --root needs to write and lock the files as root
    if out=$(systemd-sysusers --dry-run --root="$tmp/root" "$sysusers" 2>&1) &&
        echo "$out" | grep -q "Creating group 'virtcoco'"; then
        ok "systemd-sysusers --dry-run: $(echo "$out" | head -n 1)"
    else
        notok "systemd-sysusers --dry-run: $out"
    fi
else
    mkdir -p "$tmp/root/etc"
    if out=$(systemd-sysusers --root="$tmp/root" "$sysusers" 2>&1) &&
        systemd-sysusers --root="$tmp/root" "$sysusers" >/dev/null 2>&1 &&
        line=$(grep '^virtcoco:' "$tmp/root/etc/group") &&
        [ "$(grep -c '^virtcoco:' "$tmp/root/etc/group")" = 1 ]; then
        gid=$(echo "$line" | cut -d: -f3)
        max=$(pkg-config --variable=system_gid_max systemd 2>/dev/null || echo 999)
        if [ "$gid" -le "${max:-999}" ]; then
            ok "systemd-sysusers creates the system group: $line (again: unchanged)"
        else
            notok "systemd-sysusers: gid $gid is not a system gid (max $max)"
        fi
    else
        notok "systemd-sysusers did not create the group virtcoco: $out"
    fi
fi

# 7. D-Bus activation: the bus name is the unit's, the unit is the unit or
#    one of its aliases, and the system bus policy lets root own it
type=$(key "$unit" Type)
if [ "$busservice" = none ]; then
    if [ "$type" != dbus ] && [ -z "$(key "$unit" BusName)" ]; then
        ok "no D-Bus API in this build: Type=$type, no BusName"
    else
        notok "no D-Bus API in this build, but the unit has Type=$type"
    fi
else
    busname=$(key "$unit" BusName)
    sname=$(key "$busservice" Name)
    sunit=$(key "$busservice" SystemdService)
    aliases=$(key "$unit" Alias)
    policy=$(dirname "$busservice")/org.libvirtcoco.Agent1.conf
    if [ "$type" = dbus ] && [ -n "$busname" ] && [ "$sname" = "$busname" ] &&
        [ "$(key "$busservice" User)" = root ] &&
        grep -q "<allow own=\"$busname\"/>" "$policy"; then
        ok "Type=dbus, BusName=$busname = Name of $(basename "$busservice"), owned by root"
    else
        notok "bus names: unit Type=$type BusName='$busname', activation Name='$sname'"
    fi
    found=
    for u in "$name" $aliases; do
        [ "$u" = "$sunit" ] && found=$u
    done
    if [ -n "$found" ] && grep -q '^\[D-BUS Service\]$' "$busservice"; then
        ok "SystemdService=$sunit is the unit ($name, aliases: ${aliases:-none})"
    else
        notok "SystemdService='$sunit' is neither $name nor an alias (${aliases:-none})"
    fi
fi

echo "1..$n"
[ "$fails" = 0 ]
