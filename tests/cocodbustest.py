#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# virtcocod's D-Bus API (docs/dbus.rst) on a private dbus-daemon: the
# agent serves --dbus session on it and "gdbus call" talks to it.
# Usage: cocodbustest.py VIRTCOCOD   (TAP on stdout)

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

from cocodbusbus import Tap, cleanup, start_bus

VIRTCOCOD = sys.argv[1]
SRCDIR = os.environ.get("abs_srcdir", os.path.dirname(os.path.abspath(__file__)))
TOP_SRCDIR = os.environ.get("abs_top_srcdir", os.path.dirname(SRCDIR))
NAME = "org.libvirtcoco.Agent1"
PATH = "/org/libvirtcoco/Agent1"
IFACE = "org.libvirtcoco.Agent1"

_tap = Tap()
ok = _tap.ok
skip = _tap.skip


def gdbus(env, *args, user=None):
    cmd = ["gdbus"] + list(args)
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
               "--clear-groups", "--"] + cmd
    return subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=60)


def call(env, method, *args, user=None):
    return gdbus(env, "call", "--session", "--dest", NAME,
                 "--object-path", PATH, "--method", IFACE + "." + method,
                 *args, user=user)


def main():
    if not shutil.which("dbus-daemon") or not shutil.which("gdbus"):
        print("1..0 # SKIP dbus-daemon or gdbus not installed")
        return 0
    tmp = tempfile.mkdtemp(prefix="cocodbustest-")
    os.chmod(tmp, 0o755)  # the unprivileged caller reaches the bus socket
    daemon = agent = None
    try:
        daemon, address = start_bus(tmp)
        if not address:
            print("1..0 # SKIP dbus-daemon did not start")
            return 0
        env = dict(os.environ)
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        env.pop("G_DEBUG", None)  # gdbus itself, not the code under test
        open(os.path.join(tmp, "empty.conf"), "w").close()

        # A bad bus name is refused before anything starts.
        r = subprocess.run([VIRTCOCOD, "-f", "--dbus", "bogus"], env=env,
                           capture_output=True, text=True, timeout=60)
        ok(r.returncode == 1 and "unknown D-Bus bus 'bogus'" in r.stderr,
           "--dbus bogus is refused with the reason", r.stderr)

        # No system bus (the lab's hosts): --dbus system stops the start
        # with the reason.
        nobus = dict(os.environ)
        nobus["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + os.path.join(
            tmp, "no-such-socket")
        r = subprocess.run(
            [VIRTCOCOD, "-f", "--dbus", "system", "--config",
             os.path.join(tmp, "empty.conf"),
             "--socket", os.path.join(tmp, "nobus.sock"), "--port", "0",
             "--platform", os.path.join(tmp, "platform"),
             "--state-dir", os.path.join(tmp, "state")],
            env=nobus, capture_output=True, text=True, timeout=60)
        ok(r.returncode == 1 and
           "cannot connect to the D-Bus 'system' bus" in r.stderr,
           "--dbus system without a system bus fails with the reason",
           r.stderr)

        agent_conf = os.path.join(tmp, "virtcocod.conf")
        with open(agent_conf, "w") as f:
            f.write("[virtcocod]\ndbus = session\n")
        agent_env = dict(os.environ)
        agent_env["DBUS_SESSION_BUS_ADDRESS"] = address
        agent = subprocess.Popen(
            [VIRTCOCOD, "-f", "--config", agent_conf,
             "--socket", os.path.join(tmp, "agent.sock"), "--port", "0",
             "--platform", os.path.join(tmp, "platform"),
             "--state-dir", os.path.join(tmp, "state")],
            env=agent_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        # Wait (bounded) until the agent owns its name.
        owned = False
        for _ in range(300):
            r = gdbus(env, "call", "--session", "--dest",
                      "org.freedesktop.DBus", "--object-path",
                      "/org/freedesktop/DBus", "--method",
                      "org.freedesktop.DBus.NameHasOwner", NAME)
            if "true" in r.stdout:
                owned = True
                break
            if agent.poll() is not None:
                break
            time.sleep(0.1)
        ok(owned, "the agent owns %s (dbus = session from the config)" % NAME,
           agent.stderr.read() if agent.poll() is not None else "")
        if not owned:
            return 1

        r = gdbus(env, "introspect", "--session", "--dest", NAME,
                  "--object-path", PATH)
        ok(r.returncode == 0 and all(m in r.stdout for m in
           ("Validate(", "Capabilities(", "GetMigrations(", "Migrate(",
            "GetJobs(", "VfioCheck(", "Version")),
           "introspection lists Validate, Capabilities, GetMigrations, "
           "Migrate, GetJobs, VfioCheck, Version",
           r.stdout + r.stderr)

        r = gdbus(env, "call", "--session", "--dest", NAME, "--object-path",
                  PATH, "--method", "org.freedesktop.DBus.Properties.Get",
                  IFACE, "Version")
        version = subprocess.run([VIRTCOCOD, "--version"], capture_output=True,
                                 text=True).stdout.split()[-1]
        ok(r.returncode == 0 and "'%s'" % version in r.stdout,
           "Version is the agent's version %s" % version, r.stdout + r.stderr)

        r = call(env, "Capabilities")
        ok(r.returncode == 0 and "'firmware': <'emulated'>" in r.stdout and
           "'platform': <{" in r.stdout and "'tcb': <{" in r.stdout,
           "Capabilities gives the backend, platform identity and TCB",
           r.stdout + r.stderr)

        with open(os.path.join(SRCDIR, "virtcocodata", "element.xml")) as f:
            good = f.read()
        r = call(env, "Validate", good)
        ok(r.returncode == 0 and "'valid': <true>" in r.stdout and
           "'technology': <'tdx'>" in r.stdout,
           "Validate accepts a valid element (tdx)", r.stdout + r.stderr)

        with open(os.path.join(SRCDIR, "virtcocodata",
                               "element-badstreams.xml")) as f:
            bad = f.read()
        r = call(env, "Validate", bad)
        ok(r.returncode != 0 and "org.libvirtcoco.Error." in r.stderr and
           "513" in r.stderr,
           "Validate refuses 513 forward streams with a coco error naming it",
           r.stdout + r.stderr)

        r = call(env, "Validate", "<domain>")
        ok(r.returncode != 0 and
           "org.libvirtcoco.Error.XmlMalformed" in r.stderr,
           "Validate of malformed XML gives org.libvirtcoco.Error.XmlMalformed",
           r.stdout + r.stderr)

        r = call(env, "Validate", "")
        ok(r.returncode != 0 and "org.libvirtcoco.Error.InvalidArg" in r.stderr,
           "Validate of an empty string gives org.libvirtcoco.Error.InvalidArg",
           r.stdout + r.stderr)

        # VfioCheck: the report "virt-coco vfio check --json" prints.
        r = call(env, "VfioCheck")
        ok(r.returncode == 0 and
           "'release': <'%s'>" % os.uname().release in r.stdout and
           "'risk': <'" in r.stdout and "'verdict': <'" in r.stdout and
           "'vfio_present': <" in r.stdout,
           "VfioCheck gives the kernel, VFIO presence, risk and verdict",
           r.stdout + r.stderr)

        r = call(env, "GetMigrations")
        ok(r.returncode == 0 and r.stdout.strip() == "('[]',)",
           "GetMigrations of a fresh agent is an empty JSON array",
           r.stdout + r.stderr)

        # Another user on the agent's session bus is refused.
        if os.getuid() == 0 and shutil.which("setpriv"):
            nobody = pwd.getpwnam("nobody").pw_uid
            r = call(env, "Capabilities", user=nobody)
            ok(r.returncode != 0 and
               "org.libvirtcoco.Error.AccessDenied" in r.stderr,
               "another user gets org.libvirtcoco.Error.AccessDenied",
               r.stdout + r.stderr)
        else:
            skip("another user gets org.libvirtcoco.Error.AccessDenied",
                 "needs root and setpriv to call as another user")

        agent.terminate()
        rc = agent.wait(timeout=60)
        ok(rc == 0, "the agent stops cleanly on SIGTERM", agent.stderr.read())
        agent = None
    finally:
        cleanup(tmp, agent, daemon)
    return _tap.done()


if __name__ == "__main__":
    sys.exit(main())
