#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# D-Bus activation of virtcocod (docs/dbus.rst, "Activation"): a private
# dbus-daemon with --systemd-activation reads the installed
# data/org.libvirtcoco.Agent1.service unchanged; a call to the agent's
# name makes it ask "systemd" (cocofakesystemd, which owns
# org.freedesktop.systemd1) for the unit of SystemdService=, the fake
# starts the built agent for that unit, and the call is answered.
# Usage: cocodbusactivationtest.py VIRTCOCOD FAKESYSTEMD SERVICEFILE
# (TAP on stdout)

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile

from cocodbusbus import Tap, cleanup

VIRTCOCOD, FAKE, SERVICE = sys.argv[1:4]
NAME = "org.libvirtcoco.Agent1"
UNIT = "dbus-org.libvirtcoco.Agent1.service"

_tap = Tap()
ok = _tap.ok
skip = _tap.skip


def readline(proc, timeout=30):
    """The next line of @proc's stdout, or '' after @timeout seconds."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else ""


def main():
    if not shutil.which("dbus-daemon") or not shutil.which("gdbus"):
        print("1..0 # SKIP dbus-daemon or gdbus not installed")
        return 0
    tmp = tempfile.mkdtemp(prefix="cocodbusactivation-")
    daemon = fake = None
    try:
        services = os.path.join(tmp, "services")
        os.mkdir(services)
        shutil.copy(SERVICE, services)
        conf = os.path.join(tmp, "bus.conf")
        with open(conf, "w") as f:
            f.write("""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=%s</listen>
  <auth>EXTERNAL</auth>
  <servicedir>%s</servicedir>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
""" % (tmp, services))
        daemon = subprocess.Popen(
            ["dbus-daemon", "--config-file=" + conf, "--nofork",
             "--systemd-activation", "--print-address=1"],
            stdout=subprocess.PIPE, text=True)
        address = daemon.stdout.readline().strip()
        if not address:
            print("1..0 # SKIP dbus-daemon did not start")
            return 0
        env = dict(os.environ)
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        gdbus_env = dict(env)
        gdbus_env.pop("G_DEBUG", None)  # gdbus itself, not the code under test

        # The bus knows the name before anything runs it.
        r = subprocess.run(
            ["gdbus", "call", "--session", "--dest", "org.freedesktop.DBus",
             "--object-path", "/org/freedesktop/DBus", "--method",
             "org.freedesktop.DBus.ListActivatableNames"],
            env=gdbus_env, capture_output=True, text=True, timeout=60)
        ok(r.returncode == 0 and "'%s'" % NAME in r.stdout,
           "the bus reads the activation file: %s is activatable" % NAME,
           r.stdout + r.stderr)

        agent_conf = os.path.join(tmp, "virtcocod.conf")
        with open(agent_conf, "w") as f:
            f.write("[virtcocod]\ndbus = session\n")
        fake = subprocess.Popen(
            [FAKE, UNIT, VIRTCOCOD, "-f", "--config", agent_conf,
             "--socket", os.path.join(tmp, "agent.sock"), "--port", "0",
             "--platform", os.path.join(tmp, "platform"),
             "--state-dir", os.path.join(tmp, "state")],
            env=env, stdout=subprocess.PIPE, text=True)
        line = readline(fake)
        ok(line == "ready", "the fake systemd owns org.freedesktop.systemd1",
           line)

        # The call activates: the bus asks for the unit, the agent starts
        # and answers.
        r = subprocess.run(
            ["gdbus", "call", "--session", "--timeout", "20", "--dest", NAME,
             "--object-path",
             "/org/libvirtcoco/Agent1", "--method",
             "org.freedesktop.DBus.Properties.Get", NAME, "Version"],
            env=gdbus_env, capture_output=True, text=True, timeout=60)
        line = readline(fake)
        ok(line == "activate " + UNIT,
           "the bus asks systemd for %s (the enable-gated alias)" % UNIT, line)
        ok(r.returncode == 0 and r.stdout.startswith("(<'"),
           "the activated agent answers the call: %s" % r.stdout.strip(),
           r.stdout + r.stderr)

        fake.send_signal(signal.SIGTERM)
        line = readline(fake)
        ok(line == "exited 0", "the agent ends cleanly on SIGTERM", line)
        fake.wait(timeout=60)
        fake = None
    finally:
        cleanup(tmp, fake, daemon)
    return _tap.done()


if __name__ == "__main__":
    sys.exit(main())
