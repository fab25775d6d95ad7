#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# virtcocod's D-Bus Migrate() and job objects (docs/dbus.rst) on a private
# dbus-daemon, with libvirt's test driver as the agent's local libvirt
# (tests/cocodbusdata/testnode.xml) and the agent playing both hosts:
# every refusal before libvirt is called, then a job that passes the
# preflight and fails in libvirt (the test driver cannot migrate), watched
# by the Python example docs/examples/coco-dbus-migrate.py as Nova or VDSM
# would. The domain's relay is played by tests/cocodbusrelay.py: a stand-in
# QEMU process whose command line names the domain, and a hello on the
# agent's socket (the agent authenticates it as it does qemu-coco's relay);
# without it the job is refused before libvirt is called. The lab (tests/e2e) runs
# the same example for a real migration.
# Usage: cocodbusjobtest.py VIRTCOCOD   (TAP; needs python3-gi)

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from cocodbusbus import agent_tls, Tap, cleanup, start_bus
from cocodbusrelay import UUID, start_relay, stop_relay

try:
    import gi
    gi.require_version("Gio", "2.0")
    from gi.repository import Gio, GLib
except (ImportError, ValueError) as e:
    print("1..0 # SKIP python3-gi is not installed (%s)" % e)
    sys.exit(77)

VIRTCOCOD = sys.argv[1]
SRCDIR = os.environ.get("abs_srcdir", os.path.dirname(os.path.abspath(__file__)))
TOP_SRCDIR = os.environ.get("abs_top_srcdir", os.path.dirname(SRCDIR))
EXAMPLE = os.path.join(TOP_SRCDIR, "docs", "examples", "coco-dbus-migrate.py")
NODE = os.path.join(SRCDIR, "cocodbusdata", "testnode.xml")
NAME = "org.libvirtcoco.Agent1"
PATH = "/org/libvirtcoco/Agent1"
JOB = "org.libvirtcoco.Job1"
LIVE, P2P, TUNNELLED = 1, 2, 4

_tap = Tap()
ok = _tap.ok
skip = _tap.skip


def migrate(bus, domain, dest, params, flags):
    """Migrate(); returns (job path, None) or (None, (error name, message))."""
    try:
        r = bus.call_sync(NAME, PATH, NAME, "Migrate",
                          GLib.Variant("(ssa{sv}u)", (domain, dest, params,
                                                      flags)),
                          GLib.VariantType("(o)"), Gio.DBusCallFlags.NONE,
                          60000, None)
        return r.unpack()[0], None
    except GLib.Error as e:
        name = Gio.DBusError.get_remote_error(e)
        return None, (name, e.message)


def refused(bus, what, domain, params, flags, name, text):
    path, err = migrate(bus, domain, "test:///default", params, flags)
    ok(path is None and err and err[0] == "org.libvirtcoco.Error." + name and
       text in err[1], "Migrate %s: org.libvirtcoco.Error.%s" % (what, name),
       "job %s, error %s" % (path, err))


def main():
    if not shutil.which("dbus-daemon"):
        print("1..0 # SKIP dbus-daemon is not installed")
        return 77
    tmp = tempfile.mkdtemp(prefix="cocodbusjobtest-")
    daemon = agent = qemu = relay = None
    try:
        daemon, address = start_bus(tmp)
        env = dict(os.environ)
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        agent_conf = os.path.join(tmp, "virtcocod.conf")
        os.mkdir(os.path.join(tmp, "pids"))
        with open(agent_conf, "w") as f:
            f.write("[virtcocod]\ndbus = session\nlisten = 127.0.0.1\n"
                    "libvirt_uri = test://%s\nqemu_binaries = /bin/sh;\n"
                    "pid_dir = %s\n" % (NODE, os.path.join(tmp, "pids"))
                    + agent_tls(tmp))
        log = open(os.path.join(tmp, "agent.log"), "w")
        agent = subprocess.Popen(
            [VIRTCOCOD, "-f", "--config", agent_conf,
             "--socket", os.path.join(tmp, "agent.sock"), "--port", "0",
             "--platform", os.path.join(tmp, "platform"),
             "--state-dir", os.path.join(tmp, "state")],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        bus = Gio.DBusConnection.new_for_address_sync(
            address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        for _ in range(300):
            r = bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                              "org.freedesktop.DBus", "NameHasOwner",
                              GLib.Variant("(s)", (NAME,)), None,
                              Gio.DBusCallFlags.NONE, -1, None)
            if r.unpack()[0] or agent.poll() is not None:
                break
            time.sleep(0.1)
        owned = agent.poll() is None
        ok(owned, "the agent serves %s with libvirt_uri = test://..." % NAME)
        if not owned:
            return 1

        # Refusals before a job exists: arguments, then the preflight.
        refused(bus, "with VIR_MIGRATE_TUNNELLED", "coco", {}, P2P | TUNNELLED,
                "NotSupported", "VIR_MIGRATE_TUNNELLED")
        refused(bus, "with an unknown flag", "coco", {}, P2P | (1 << 30),
                "NotSupported", "'0x40000000'")
        refused(bus, "with an unknown parameter", "coco",
                {"bogus": GLib.Variant("s", "x")}, P2P, "InvalidArg",
                "unknown migration parameter 'bogus'")
        refused(bus, "with bandwidth as 'i'", "coco",
                {"bandwidth": GLib.Variant("i", 5)}, P2P, "InvalidArg",
                "has D-Bus type 'i', expected 't'")
        refused(bus, "of an empty domain name", "", {}, P2P, "InvalidArg",
                "'domain' argument")
        refused(bus, "of an unknown domain", "nosuch", {}, P2P, "Libvirt",
                "nosuch")
        refused(bus, "of a domain without the element", "plain", {}, P2P,
                "NotConfigured", "plain libvirt calls")
        refused(bus, "with 2 parallel connections (element: 4)", "coco",
                {"parallel.connections": GLib.Variant("i", 2),
                 "migrate_uri": GLib.Variant("s", "tcp:127.0.0.1")}, P2P,
                "ConfigConflict", "forward='4'")
        # Fail closed: no relay of "coco" is connected to this agent.
        refused(bus, "of a domain whose relay is not connected", "coco",
                {"migrate_uri": GLib.Variant("s", "tcp:127.0.0.1")}, P2P,
                "QmpAgent", "relay of domain 'coco' (%s) is not connected"
                % repr(UUID))
        qemu, relay, welcome = start_relay(os.path.join(tmp, "pids"),
                                           os.path.join(tmp, "agent.sock"))
        ok('"welcome"' in welcome,
           "the agent authenticates the stand-in relay of 'coco'", welcome)
        refused(bus, "to a host without an agent", "coco",
                {"migrate_uri": GLib.Variant("s", "tcp:[::1]")}, P2P,
                "QmpAgent", "destination host's agent on '::1' is not reachable")

        # The example starts a job that passes every check; the test driver
        # then cannot migrate: the job fails in libvirt, with signals.
        r = subprocess.run(
            [sys.executable, EXAMPLE, "--session", "--live", "--json",
             "--migrate-uri", "tcp:127.0.0.1", "--parallel-connections", "4",
             "coco", "test:///default"],
            env=env, capture_output=True, text=True, timeout=120)
        try:
            events = [json.loads(line) for line in r.stdout.splitlines()]
        except ValueError:
            events = []
        kinds = [e["event"] for e in events]
        ok(r.returncode == 1 and kinds[:1] == ["job"] and
           kinds[-1:] == ["result"],
           "the example starts a job and prints its result",
           r.stdout + r.stderr)
        path = events[0].get("path", "") if events else ""
        res = events[-1] if events else {}
        err = res.get("error") or {}
        ok(path.startswith(PATH + "/Job/") and res.get("state") == "failed" and
           err.get("name") == "org.libvirtcoco.Error.Libvirt" and
           "not supported" in err.get("message", ""),
           "the job fails in libvirt: Completed(failed, "
           "org.libvirtcoco.Error.Libvirt)", r.stdout)

        # The job object stays, with its end state.
        jobs = bus.call_sync(NAME, PATH, NAME, "GetJobs", None,
                             GLib.VariantType("(ao)"), Gio.DBusCallFlags.NONE,
                             -1, None).unpack()[0]
        ok(path in jobs, "GetJobs lists the ended job", jobs)
        props = {}
        if path in jobs:
            props = bus.call_sync(
                NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
                GLib.Variant("(s)", (JOB,)), GLib.VariantType("(a{sv})"),
                Gio.DBusCallFlags.NONE, -1, None).unpack()[0]
        ok(props.get("State") == "failed" and props.get("Domain") == "coco" and
           props.get("DestinationUri") == "test:///default" and
           props.get("LastError", ("", ""))[0] ==
           "org.libvirtcoco.Error.Libvirt",
           "the job's properties: State failed, Domain, DestinationUri, "
           "LastError", props)
        try:
            bus.call_sync(NAME, path or PATH + "/Job/0", JOB, "Abort", None,
                          None, Gio.DBusCallFlags.NONE, -1, None)
            ok(False, "Abort of an ended job is refused")
        except GLib.Error as e:
            ok("MigrationPhase" in e.message and "only a running one" in
               e.message, "Abort of an ended job: "
               "org.libvirtcoco.Error.MigrationPhase", e.message)
        rec = bus.call_sync(NAME, path or PATH + "/Job/0", JOB, "GetRecord",
                            None, GLib.VariantType("(s)"),
                            Gio.DBusCallFlags.NONE, -1, None).unpack()[0]
        ok(rec == "null", "GetRecord: no agent record (QEMU never started)",
           rec)

        agent.terminate()
        rc = agent.wait(timeout=60)
        agent = None
        log.close()
        with open(os.path.join(tmp, "agent.log")) as f:
            text = f.read()
        ok(rc == 0, "the agent stops cleanly",
           "exit status %s, log:\n%s" % (rc, text[-4000:]))
        ok("job '%s': migrating 'coco'" % path in text and
           "job '%s': failed" % path in text,
           "the agent logs the job's start and end", text)
    finally:
        stop_relay(qemu, relay)
        cleanup(tmp, agent, daemon)
    return _tap.done()


if __name__ == "__main__":
    sys.exit(main())
