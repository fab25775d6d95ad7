# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by run.sh: virtcocod's D-Bus API in the lab (docs/dbus.rst).
#
# Each host gets a private dbus-daemon (a session-type bus on a socket in
# its directory; the agent runs as root and so does the client, which the
# session bus allows). The agent's libvirt_uri is the host's libvirt, and
# the client is the Python (Gio) example docs/examples/coco-dbus-migrate.py,
# the way Nova or VDSM would start and watch a confidential migration.

PYTHON_GI=${PYTHON_GI:-/usr/bin/python3}
DBUS_EXAMPLE=${DBUS_EXAMPLE:-$E2E_DIR/../../docs/examples/coco-dbus-migrate.py}

# bus_start TYPE DIR NAME: a private dbus-daemon of TYPE (session,
# system; tests/cocodbusdata/TYPE.conf.in) on DIR/NAME.sock; its address
# in DIR/NAME.address, its pid in DIR/NAME.pid.
bus_start() {
    sed "s|@LISTEN@|unix:path=$2/$3.sock|" "$E2E_DIR/../cocodbusdata/$1.conf.in" > "$2/$3.conf"
    dbus-daemon --config-file="$2/$3.conf" --nofork --print-address=1 \
        > "$2/$3.address.tmp" 2> "$2/$3.log" &
    echo $! > "$2/$3.pid"
    i=0
    until [ -s "$2/$3.address.tmp" ]; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "the $1 bus in $2 did not start: $(cat "$2/$3.log")" || return 1; sleep 0.1
    done
    echo "unix:path=$2/$3.sock" > "$2/$3.address"
}

# Give host $1's agent its own bus and the host's libvirt.
dbus_up() {
    du_r=$(host_dir "$1")
    if [ ! -f "$du_r/dbus.pid" ]; then
        bus_start session "$du_r" dbus || return 1
    fi
    grep -q "^dbus = session" "$du_r/virtcocod.conf" ||
        printf 'dbus = session\nlibvirt_uri = %s\n' "$(host_uri "$1")" >> "$du_r/virtcocod.conf"
    agent_restart "$1" || return 1
    i=0
    until dbus_h "$1" call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
        --method org.freedesktop.DBus.NameHasOwner org.libvirtcoco.Agent1 2>/dev/null | grep -q true; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "host $1: the agent does not serve D-Bus" || return 1; sleep 0.1
    done
}

# Back to an agent without D-Bus, and no bus.
dbus_down() {
    dd_r=$(host_dir "$1")
    sed -i '/^dbus = session$/d; /^libvirt_uri = /d' "$dd_r/virtcocod.conf"
    rm -f "$dd_r/dbus.address" "$dd_r/dbus.address.tmp"
    agent_restart "$1" || return 1
    if [ -f "$dd_r/dbus.pid" ]; then
        kill -TERM "$(cat "$dd_r/dbus.pid")" 2>/dev/null
        rm -f "$dd_r/dbus.pid"
    fi
}

# A command on host $1's bus: dbus_h H gdbus-arguments...
dbus_h() {
    dh_h=$1
    shift
    DBUS_SESSION_BUS_ADDRESS=$(cat "$(host_dir "$dh_h")/dbus.address") gdbus "$@"
}

# The example on host $1's bus: example_h H args... (stdout: JSON events)
example_h() {
    eh_h=$1
    shift
    DBUS_SESSION_BUS_ADDRESS=$(cat "$(host_dir "$eh_h")/dbus.address") \
        "$PYTHON_GI" "$DBUS_EXAMPLE" --session --json "$@"
}

# A job property: job_prop H PATH NAME
job_prop() {
    dbus_h "$1" call --session --dest org.libvirtcoco.Agent1 --object-path "$2" \
        --method org.freedesktop.DBus.Properties.Get org.libvirtcoco.Job1 "$3"
}

# MIGRATE_CMD for migrate_and_check: the example, JSON events to
# $LAB/dbus.out.
migrate_dbus() {
    md_src=$1 md_dst=$2
    shift 2
    example_h "$md_src" "$@" guest "$(host_uri "$md_dst")" > "$LAB/dbus.out" 2> "$LAB/dbus.err"
    md_rc=$?
    [ $md_rc = 0 ] || cat "$LAB/dbus.out" "$LAB/dbus.err"
    return $md_rc
}

s_dbus_migrate() {
    "$PYTHON_GI" -c 'import gi' 2>/dev/null || fail "no python3-gi for '$PYTHON_GI'" || return 1
    dbus_up A || return 1
    dbus_up B || return 1
    MIGRATE_CMD=migrate_dbus migrate_and_check A B --live --migrate-uri "tcp:$(host_ip B)" || return 1
    python3 - "$LAB/dbus.out" <<'PY' || fail "the example's events are not as documented" || return 1
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
kinds = [e["event"] for e in events]
phases = [e["phase"] for e in events if e["event"] == "phase"]
progress = [e["progress"] for e in events if e["event"] == "progress"]
res = events[-1]
print("  events: %s" % " ".join(kinds))
print("  phases: %s; progress: %s" % (" ".join(phases), progress))
print("  result: %s" % res)
assert kinds[0] == "job" and kinds[-1] == "result", kinds
assert res["state"] == "completed" and res["error"] is None, res
# every phase of the source agent's timeline, in order (the record starts
# in 'idle' before the agents met)
if phases and phases[0] == "idle":
    phases = phases[1:]
assert phases[:3] == ["preparing", "setup", "precopy"], phases
assert "switchover" in phases and phases[-1] == "finished", phases
assert progress and max(progress) >= 90, progress
# the pages the guest uses (never-touched pages are not sent): at least
# the checksum workload's 16 MiB
assert res["data_processed"] >= 16 << 20 and res["downtime_ms"] > 0, res
assert res["migration_id"], res
PY
    grep -q "job '/org/libvirtcoco/Agent1/Job/1': completed" "$(host_dir A)/virtcocod.log" ||
        fail "A's agent did not log the job's end" || return 1
}

# The client that started the job dies right after Migrate() answered:
# the agent keeps the job, the migration completes, Owner becomes "".
s_dbus_vanish() {
    soff=$(console_size B)
    doff=$(console_size A)
    # A file of its own: the last scenario's output must not count.
    out=$LAB/dbus-vanish.out
    rm -f "$out"
    # Not through example_h: $! must be the client itself.
    DBUS_SESSION_BUS_ADDRESS=$(cat "$(host_dir B)/dbus.address") \
        "$PYTHON_GI" "$DBUS_EXAMPLE" --session --json --live --migrate-uri "tcp:$(host_ip A)" \
        guest "$(host_uri A)" > "$out" 2>&1 &
    epid=$!
    i=0
    until grep -qs '"event": "job"' "$out"; do
        i=$((i + 1))
        [ $i -lt 200 ] || { kill "$epid"; fail "the example got no job: $(cat "$out")"; return 1; }
        sleep 0.05
    done
    kill -KILL "$epid"
    wait "$epid" 2>/dev/null
    path=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["path"])' "$out")
    echo "  killed the client after Migrate() gave $path"
    i=0
    while :; do
        st=$(job_prop B "$path" State)
        case "$st" in *completed*|*failed*|*cancelled*) break ;; esac
        i=$((i + 1)); [ $i -lt 300 ] || fail "job $path still '$st' after 30 s" || return 1; sleep 0.1
    done
    owner=$(job_prop B "$path" Owner)
    echo "  job $path: State $st, Owner $owner"
    case "$st" in *completed*) ;; *) fail "the job ended '$st': $(job_prop B "$path" LastError)" || return 1 ;; esac
    [ "$owner" = "(<''>,)" ] || fail "the job's Owner is $owner, not ''" || return 1
    grep -q "the client '.*' that started job '$path' went away; the agent keeps the job" \
        "$(host_dir B)/virtcocod.log" || fail "B's agent did not log the client's going away" || return 1
    assert_no_domain B || return 1
    assert_state A "running (migrated)" || return 1
    assert_continues B "$soff" A "$doff"
}

# Nova's abort: Abort() on the job while the agents precopy; the job ends
# 'cancelled', the source runs on.
s_dbus_abort() {
    agent_rounds A 1000 || return 1
    soff=$(console_size A)
    example_h A --live --migrate-uri "tcp:$(host_ip B)" --abort-at-phase precopy \
        guest "$(host_uri B)" > "$LAB/dbus.out" 2> "$LAB/dbus.err"
    rc=$?
    agent_rounds A 2 || return 1
    sed 's/^/  | /' "$LAB/dbus.out"
    [ $rc = 1 ] || fail "the example exited $rc, not 1" || return 1
    python3 - "$LAB/dbus.out" <<'PY' || fail "the job did not end 'cancelled'" || return 1
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
res = events[-1]
assert any(e["event"] == "abort" for e in events), events
assert res["event"] == "result" and res["state"] == "cancelled", res
assert "aborted on request" in res["error"]["message"], res
PY
    assert_no_domain B || return 1
    [ "$(agent_record A source | cut -d' ' -f2)" = aborted ] || fail "A's session is not 'aborted'" || return 1
    assert_a_runs "$soff" || return 1
    dbus_down A || return 1
    dbus_down B
}

# Host A's agent on a private system bus with the real polkitd (in its own
# mount namespace, our .policy and a test rule bound over polkit's
# directories): 'nobody', allowed by the rule, migrates A to B with the
# example; 'sys' is refused before anything starts.
POLKITD=${POLKITD:-/usr/lib/polkit-1/polkitd}

sysbus_up() {
    su_r=$(host_dir A)
    mkdir -p "$su_r/polkit/actions" "$su_r/polkit/rules" "$su_r/polkit/etcrules"
    cp "$E2E_DIR/../../data/org.libvirtcoco.agent.policy" "$su_r/polkit/actions/"
    cat > "$su_r/polkit/rules/60-lab.rules" <<'RULES'
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.libvirtcoco.agent.") == 0) {
        return subject.user == "nobody" ? polkit.Result.YES : polkit.Result.NO;
    }
});
RULES
    chmod -R a+rX "$su_r/polkit"
    bus_start system "$su_r" sysbus || return 1
    DBUS_SYSTEM_BUS_ADDRESS="unix:path=$su_r/sysbus.sock" unshare -m --propagation private sh -c "
        mount --bind '$su_r/polkit/actions' /usr/share/polkit-1/actions &&
        mount --bind '$su_r/polkit/rules' /usr/share/polkit-1/rules.d &&
        mount --bind '$su_r/polkit/etcrules' /etc/polkit-1/rules.d &&
        exec '$POLKITD' --no-debug" > "$su_r/polkitd.log" 2>&1 &
    echo $! > "$su_r/polkitd.pid"
    i=0
    until sysbus_call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner \
        org.freedesktop.PolicyKit1 2>/dev/null | grep -q true; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "polkitd did not start: $(cat "$su_r/polkitd.log")" || return 1; sleep 0.1
    done
    printf 'dbus = system\nlibvirt_uri = %s\n' "$(host_uri A)" >> "$su_r/virtcocod.conf"
    agent_restart A || return 1
    i=0
    until sysbus_call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner \
        org.libvirtcoco.Agent1 2>/dev/null | grep -q true; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "the agent does not serve the system bus" || return 1; sleep 0.1
    done
}

sysbus_down() {
    sd_r=$(host_dir A)
    sed -i '/^dbus = system$/d; /^libvirt_uri = /d' "$sd_r/virtcocod.conf"
    rm -f "$sd_r/sysbus.address" "$sd_r/sysbus.address.tmp"
    agent_restart A || return 1
    for f in polkitd.pid sysbus.pid; do
        [ -f "$sd_r/$f" ] && kill -TERM "$(cat "$sd_r/$f")" 2>/dev/null
        rm -f "$sd_r/$f"
    done
    return 0
}

# sysbus_call DEST PATH IFACE.METHOD ARGS...
sysbus_call() {
    sc_d=$1 sc_p=$2 sc_m=$3
    shift 3
    DBUS_SYSTEM_BUS_ADDRESS="unix:path=$(host_dir A)/sysbus.sock" \
        gdbus call --system --dest "$sc_d" --object-path "$sc_p" --method "$sc_m" "$@"
}

# The example on A's system bus as user $1 (a copy nobody can read).
example_as() {
    ea_u=$1
    shift
    cp "$DBUS_EXAMPLE" "$LAB/coco-dbus-migrate.py"
    chmod 0755 "$LAB/coco-dbus-migrate.py"
    setpriv --reuid="$ea_u" --regid="$(id -g "$ea_u")" --clear-groups -- \
        env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$(host_dir A)/sysbus.sock" \
        "$PYTHON_GI" "$LAB/coco-dbus-migrate.py" --json "$@"
}

migrate_polkit() {
    mp_src=$1 mp_dst=$2
    shift 2
    example_as nobody "$@" guest "$(host_uri "$mp_dst")" > "$LAB/dbus.out" 2> "$LAB/dbus.err"
    mp_rc=$?
    [ $mp_rc = 0 ] || cat "$LAB/dbus.out" "$LAB/dbus.err"
    return $mp_rc
}

s_dbus_polkit() {
    [ -x "$POLKITD" ] || fail "no polkitd at '$POLKITD'" || return 1
    sysbus_up || { sysbus_down; return 1; }
    # Refused first: the guest stays on A and runs on.
    soff=$(console_size A)
    nsrc=$(records A)
    example_as sys --live --migrate-uri "tcp:$(host_ip B)" guest "$(host_uri B)" > "$LAB/dbus.out" 2>&1
    rc=$?
    echo "  as 'sys': exit $rc: $(cat "$LAB/dbus.out")"
    if [ $rc != 1 ] || ! grep -q '"name": "org.libvirtcoco.Error.AccessDenied"' "$LAB/dbus.out" ||
        ! grep -q "polkit denies action 'org.libvirtcoco.agent.migrate'" "$LAB/dbus.out"; then
        sysbus_down
        fail "'sys' was not refused by polkit"
        return 1
    fi
    [ "$(records A)" = "$nsrc" ] || { sysbus_down; fail "A's agent has a new migration record after the refusal"; return 1; }
    assert_no_domain B || { sysbus_down; return 1; }
    assert_a_runs "$soff" || { sysbus_down; return 1; }
    MIGRATE_CMD=migrate_polkit migrate_and_check A B --live --migrate-uri "tcp:$(host_ip B)"
    rc=$?
    grep '"event": "result"' "$LAB/dbus.out" | sed 's/^/  as nobody: /'
    grep -q "job '/org/libvirtcoco/Agent1/Job/1': migrating 'guest' to '.*' for ':" "$(host_dir A)/virtcocod.log" ||
        { [ $rc != 0 ] || fail "A's agent did not log nobody's job"; rc=1; }
    sysbus_down || return 1
    [ $rc = 0 ] || return 1
    # Back to A for the scenarios that follow.
    migrate_and_check B A
}
