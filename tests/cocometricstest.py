#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# virtcocod's metrics endpoint (docs/virtcocod.rst, "Metrics"): the built
# agent serves it on a free loopback port; a scrape over HTTP is read by
# python3-prometheus-client's OpenMetrics parser; every other method or
# path, a request body, too many connections and oversized headers are
# refused while the agent keeps serving; a non-loopback address is refused
# (fail closed, one line) unless metrics_allow_remote; it is off by
# default.
# Usage: cocometricstest.py VIRTCOCOD   (TAP on stdout)

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

VIRTCOCOD = sys.argv[1]
CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
MAX_CONNECTIONS = 8  # COCO_AGENT_METRICS_MAX_CONNECTIONS

_n = 0
_failed = 0


def ok(cond, what, detail=""):
    global _n, _failed
    _n += 1
    if cond:
        print("ok %d - %s" % (_n, what))
    else:
        _failed += 1
        print("not ok %d - %s" % (_n, what))
        for line in str(detail).splitlines()[-20:]:
            print("# " + line)
    sys.stdout.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_conf(tmp, name, extra):
    path = os.path.join(tmp, name + ".conf")
    missing = os.path.join(tmp, "no-pki.pem")  # TLS missing: still serves
    with open(path, "w") as f:
        f.write("[virtcocod]\n")
        f.write("socket=%s\n" % os.path.join(tmp, name + ".sock"))
        f.write("listen=127.0.0.1\nport=0\n")
        f.write("platform=%s\n" % os.path.join(tmp, "platform.conf"))
        f.write("state_dir=%s\n" % os.path.join(tmp, name + "-state"))
        for key in ("tls_ca_cert", "tls_server_cert", "tls_server_key",
                    "tls_client_cert", "tls_client_key"):
            f.write("%s=%s\n" % (key, missing))
        f.write(extra)
    return path


def run(args):
    return subprocess.run([VIRTCOCOD] + args, capture_output=True,
                          text=True, timeout=60)


def wait_listen(port, proc):
    end = time.monotonic() + 20
    while time.monotonic() < end and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def scrape(port):
    r, data = request(port, "GET", "/metrics")
    return r.status, r.getheader("Content-Type"), data.decode()


def closed_soon(sock, seconds):
    """True when the peer closes @sock within @seconds (EOF or reset)."""
    sock.settimeout(seconds)
    try:
        return sock.recv(16) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def main():
    try:
        from prometheus_client.openmetrics.parser import \
            text_string_to_metric_families
    except ImportError:
        print("1..0 # SKIP no prometheus_client (python3-prometheus-client)")
        return 0
    tmp = tempfile.mkdtemp(prefix="cocometricstest-")
    agent = None
    try:
        port = free_port()

        # Not a loopback address: refused with one line, by the check and
        # by the start (nothing listens).
        for addr in ("0.0.0.0", "[::]", "192.0.2.1"):
            conf = write_conf(tmp, "remote",
                              "metrics_listen=%s:%d\n" % (addr, port))
            r = run(["--check-config", "-c", conf])
            ok(r.returncode == 1 and "is not a loopback address" in r.stderr
               and len(r.stderr.strip().splitlines()) == 1,
               "--check-config refuses metrics_listen %s" % addr, r.stderr)
        r = run(["-f", "-c", conf])
        ok(r.returncode == 1 and "is not a loopback address" in r.stderr,
           "virtcocod does not start with a non-loopback metrics_listen",
           r.stderr)
        conf = write_conf(tmp, "remote",
                          "metrics_listen=0.0.0.0:%d\n"
                          "metrics_allow_remote=true\n" % port)
        r = run(["--check-config", "-c", conf])
        ok(r.returncode == 0, "metrics_allow_remote = true allows it",
           r.stderr)
        conf = write_conf(tmp, "bad", "metrics_listen=localhost:%d\n" % port)
        r = run(["--check-config", "-c", conf])
        ok(r.returncode == 1 and "must be ADDRESS:PORT" in r.stderr,
           "a host name is refused (nothing is resolved)", r.stderr)

        # Off by default.
        conf = write_conf(tmp, "off", "")
        offlog = os.path.join(tmp, "off.log")
        with open(offlog, "w") as f:
            off = subprocess.Popen([VIRTCOCOD, "-f", "-c", conf], stdout=f,
                                   stderr=subprocess.STDOUT)
        end = time.monotonic() + 30
        while (time.monotonic() < end and off.poll() is None and
               "relays on" not in open(offlog).read()):
            time.sleep(0.05)
        off.terminate()
        off.wait(timeout=30)
        out = open(offlog).read()
        ok("relays on" in out and "metrics on" not in out,
           "no metrics endpoint without metrics_listen", out)

        # Served on loopback.
        conf = write_conf(tmp, "on", "metrics_listen=127.0.0.1:%d\n" % port)
        log = open(os.path.join(tmp, "agent.log"), "w")
        agent = subprocess.Popen([VIRTCOCOD, "-f", "-c", conf], stdout=log,
                                 stderr=subprocess.STDOUT)
        ok(wait_listen(port, agent), "the endpoint listens on 127.0.0.1:%d"
           % port)
        status, ctype, text = scrape(port)
        r, _ = request(port, "GET", "/metrics")
        ok(r.getheader("Connection") == "close",
           "one request per connection: Connection: close",
           r.getheader("Connection"))
        ok(status == 200 and ctype == CONTENT_TYPE,
           "GET /metrics: 200, %s" % CONTENT_TYPE, "%s %s" % (status, ctype))
        ok(text.endswith("# EOF\n"), "the text ends with # EOF", text[-200:])
        try:
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            parsed = True
        except ValueError as e:
            fams, parsed = {}, False
            text += "\n" + str(e)
        ok(parsed, "the OpenMetrics parser reads it", text)
        want = {
            "virtcocod_build": "info",
            "virtcocod_migrations": "counter",
            "virtcocod_migrations_in_flight": "gauge",
            "virtcocod_sealed_bytes": "counter",
            "virtcocod_sealed_pages": "counter",
            "virtcocod_migration_downtime_seconds": "histogram",
            "virtcocod_phase_duration_seconds": "histogram",
            "virtcocod_peer_connection_errors": "counter",
            "virtcocod_relay_connections": "gauge",
            "virtcocod_peer_connections_unauthenticated": "gauge",
            "virtcocod_records": "gauge",
        }
        got = {n: f.type for n, f in fams.items()}
        ok(got == want, "every metric family, with its type", got)
        inflight = [s for s in fams["virtcocod_migrations_in_flight"].samples
                    ] if parsed else []
        ok(sorted((s.labels["role"], s.value) for s in inflight) ==
           [("destination", 0), ("source", 0)],
           "no migration in flight", inflight)

        # Everything else is refused, and the agent goes on serving.
        for method in ("POST", "PUT", "DELETE", "HEAD", "OPTIONS"):
            r, _ = request(port, method, "/metrics")
            allow = r.getheader("Allow")
            ok(r.status == 405 and allow == "GET",
               "%s /metrics: 405, Allow: GET" % method, (r.status, allow))
        for path in ("/", "/metrics/", "/metricsx", "/metrics/x"):
            r, _ = request(port, "GET", path)
            ok(r.status in (400, 404), "GET %s: not found" % path, r.status)
        r, _ = request(port, "GET", "/metrics", body=b"x" * 100000)
        ok(r.status == 413, "a GET with a body: 413 (not read)", r.status)

        # Headers beyond libsoup's limit: the connection is dropped.
        s = socket.create_connection(("127.0.0.1", port))
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                      b"a" * (128 * 1024) + b"\r\n\r\n")
        except OSError:
            pass
        try:
            reply = s.recv(64)
        except OSError:
            reply = b""
        s.close()
        ok(not reply.startswith(b"HTTP/1.1 200"),
           "128 KiB of headers are not served", reply)

        # At most MAX_CONNECTIONS at once: one more is closed at once.
        idle = [socket.create_connection(("127.0.0.1", port))
                for _ in range(MAX_CONNECTIONS)]
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", port))
        ok(closed_soon(extra, 5), "connection %d is closed at once"
           % (MAX_CONNECTIONS + 1))
        extra.close()
        ok(not any(closed_soon(s, 0.05) for s in idle),
           "the %d first stay open" % MAX_CONNECTIONS)
        for s in idle:
            s.close()
        status = None
        end = time.monotonic() + 10
        while time.monotonic() < end and status != 200:
            try:
                status = scrape(port)[0]
            except OSError:
                time.sleep(0.1)
        ok(status == 200, "served again once they are closed", status)
        ok(agent.poll() is None, "the agent still runs")
    finally:
        if agent:
            agent.terminate()
            try:
                agent.wait(timeout=30)
            except subprocess.TimeoutExpired:
                agent.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % _n)
    return 1 if _failed else 0


if __name__ == "__main__":
    sys.exit(main())
