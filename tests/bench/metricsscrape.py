#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The CPU one scrape of virtcocod's metrics endpoint costs the agent (not
# a unit test): the built agent serves metrics on a free loopback port;
# N scrapes over HTTP (a connection each, as the endpoint closes it), then
# N "probe" requests on its relay socket (the reference of the same run:
# a small JSON answer on the same main loop). The agent's CPU time
# (utime + stime of /proc/PID/stat) per request of each kind, and their
# ratio.
# Usage: metricsscrape.py VIRTCOCOD [N]
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    virtcocod = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    tmp = tempfile.mkdtemp(prefix="metricsscrape-")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    sock = os.path.join(tmp, "agent.sock")
    conf = os.path.join(tmp, "virtcocod.conf")
    with open(conf, "w") as f:
        f.write("[virtcocod]\nsocket=%s\nlisten=127.0.0.1\nport=0\n"
                "platform=%s/platform.conf\nstate_dir=%s/state\n"
                "metrics_listen=127.0.0.1:%d\n" % (sock, tmp, tmp, port))
        for key in ("tls_ca_cert", "tls_server_cert", "tls_server_key",
                    "tls_client_cert", "tls_client_key"):
            f.write("%s=%s/none.pem\n" % (key, tmp))
    agent = subprocess.Popen([virtcocod, "-f", "-c", conf],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        url = "http://127.0.0.1:%d/metrics" % port
        for _ in range(200):
            try:
                urllib.request.urlopen(url, timeout=5).read()
                break
            except OSError:
                time.sleep(0.05)
        c0 = cpu(agent.pid)
        t0 = time.monotonic()
        size = 0
        for _ in range(n):
            size = len(urllib.request.urlopen(url, timeout=5).read())
        scrape = (cpu(agent.pid) - c0) / n
        wall = (time.monotonic() - t0) / n
        c0 = cpu(agent.pid)
        for _ in range(n):
            u = socket.socket(socket.AF_UNIX)
            u.connect(sock)
            u.sendall(b'{"type":"probe"}\n')
            buf = b""
            while not buf.endswith(b"\n"):
                d = u.recv(65536)
                if not d:
                    break
                buf += d
            u.close()
        probe = (cpu(agent.pid) - c0) / n
        print("scrape: %.1f us agent CPU (%d bytes, %.2f ms wall); "
              "probe: %.1f us agent CPU; scrape/probe %.2f"
              % (scrape * 1e6, size, wall * 1e3, probe * 1e6,
                 scrape / probe if probe else float("inf")))
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
