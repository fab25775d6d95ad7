# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A private session-type dbus-daemon for the D-Bus tests
# (tests/cocodbusdata/session.conf.in, shared with the lab).

import os
import shutil
import subprocess

SRCDIR = os.environ.get("abs_srcdir", os.path.dirname(os.path.abspath(__file__)))


def start_bus(tmp):
    """Start a bus listening in @tmp: (process, address); address is ""
    when the daemon did not start."""
    with open(os.path.join(SRCDIR, "cocodbusdata", "session.conf.in")) as f:
        text = f.read().replace("@LISTEN@", "unix:dir=" + tmp)
    conf = os.path.join(tmp, "session.conf")
    with open(conf, "w") as f:
        f.write(text)
    daemon = subprocess.Popen(
        ["dbus-daemon", "--config-file=" + conf, "--nofork",
         "--print-address=1"], stdout=subprocess.PIPE, text=True)
    return daemon, daemon.stdout.readline().strip()


def agent_tls(tmp, identity="local"):
    """The virtcocod.conf lines of a throw-away PKI (tests/cocotlsgen.sh,
    certtool) made in @tmp: the agent's TLS files, presenting @identity."""
    pki = os.path.join(tmp, "pki")
    subprocess.run(["sh", os.path.join(SRCDIR, "cocotlsgen.sh"), pki],
                   check=True)
    d = os.path.join(pki, identity)
    return ("tls_ca_cert = %s/cacert.pem\n"
            "tls_server_cert = %s/servercert.pem\n"
            "tls_server_key = %s/private/serverkey.pem\n"
            "tls_client_cert = %s/clientcert.pem\n"
            "tls_client_key = %s/private/clientkey.pem\n" % ((d,) * 5))


class Tap:
    """TAP output of a test script: ok()/skip() per check, done() at the
    end (prints the plan, returns the exit status)."""

    def __init__(self):
        self.results = []

    def ok(self, cond, what, detail=""):
        self.results.append(bool(cond))
        print("%s %d - %s" % ("ok" if cond else "not ok", len(self.results),
                              what))
        if not cond and detail:
            for line in str(detail).splitlines():
                print("# " + line)

    def skip(self, what, reason):
        self.results.append(True)
        print("ok %d - %s # SKIP %s" % (len(self.results), what, reason))

    def done(self):
        print("1..%d" % len(self.results))
        return 0 if all(self.results) else 1


def cleanup(tmp, *procs):
    """Kill the processes still running in @procs (None allowed) and remove
    the scratch directory @tmp."""
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
