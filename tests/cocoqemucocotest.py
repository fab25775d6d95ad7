#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# cocoqemucocotest.py QEMU_COCO: tests of the qemu-coco wrapper itself,
# with a fake QEMU (this file, run with --fake) instead of the real one and
# the test in libvirt's place. Prints TAP.
#   - capability probing: the fake QEMU runs with the very same arguments
#   - a guest: QEMU runs in the wrapper's PID (exec in place) with the
#     monitor rewritten to the relay's socket; QMP flows through the relay;
#     a second libvirt connection gets a fresh QEMU session; the relay exits
#     with QEMU and removes its socket directory
#   - the VFIO interposer (docs/vfio.rst): preloaded into QEMU, gone from
#     the environment QEMU's children would inherit, its leak reports reach
#     the relay (x-coco-query-relay counts them, malformed ones are
#     dropped); vfio_interposer = no turns it off
#   - with an agent (this test plays it): the relay connects and says hello
#     once QEMU runs (libvirt's first monitor connection), and again after
#     the agent closed the connection or went away and came back
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TIMEOUT = 20


def interposer_state():
    """Whether the interposer is mapped, what the environment still says,
    and the datagram socket qemu-coco passed (the report channel)."""
    maps = open("/proc/self/maps").read()
    # before the socket probe below, which leaves duplicates behind
    uffd = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink("/proc/self/fd/" + name) == "anon_inode:[userfaultfd]":
                uffd.append(name)
        except OSError:
            pass  # the directory listing's own descriptor
    dgram = None
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        if s.type == socket.SOCK_DGRAM:
            dgram = fd
        s.close()
    return {"mapped": "vfio-interposer.so" in maps,
            "write-log": len(uffd),
            "env-preload": os.environ.get("LD_PRELOAD", ""),
            "env-fd": os.environ.get("LIBVIRT_COCO_VFIO_REPORT_FD"),
            "report-fd": dgram}


def fake_qemu():
    """The fake QEMU: report, then serve QMP sessions on the monitor fd."""
    report = {"pid": os.getpid(), "argv": sys.argv[2:],
              "interposer": interposer_state()}
    rfd = report["interposer"]["report-fd"]
    if rfd is not None:
        # what the interposer sends after a leak, and a malformed datagram
        leak = {"event": "vfio-leak", "space": 1, "backend": "type1v2",
                "fix": "absent", "when": "release", "count": 1,
                "bytes": "0x1000", "ranges": [
                    {"first": "0xfffffffffffff000",
                     "last": "0xffffffffffffffff"}]}
        os.write(rfd, json.dumps(leak).encode())
        os.write(rfd, b'{"event": "vfio-leak", "count": "many"}')
    chardev = [a for a in sys.argv if "id=charmonitor" in a]
    fd = None
    if chardev:
        fd = int(re.search(r"fd=(\d+)", chardev[0]).group(1))
        report["fd-is-listening-socket"] = (
            socket.socket(fileno=os.dup(fd)).getsockopt(
                socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1)
    with open(os.environ["FAKE_REPORT"], "w") as f:
        json.dump(report, f)
    if fd is None:
        return
    srv = socket.socket(fileno=fd)
    for session in (1, 2):
        conn, _ = srv.accept()
        f = conn.makefile("rwb", buffering=0)
        f.write(b'{"QMP": {"version": {}, "capabilities": []}, "session": %d}\r\n' % session)
        for line in f:
            msg = json.loads(line)
            if msg.get("execute") == "quit":
                return
            f.write((json.dumps({"return": {"session": session},
                                 "id": msg.get("id")}) + "\r\n").encode())
        conn.close()


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name), flush=True)


def readline(sock):
    buf = b""
    sock.settimeout(TIMEOUT)
    while not buf.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            return None
        buf += c
    return json.loads(buf)


def start_guest(qemu_coco, env, tmp):
    """Start a guest as libvirt does; returns (process, monitor socket)."""
    lpath = os.path.join(tmp, "monitor.sock")
    if os.path.exists(lpath):
        os.unlink(lpath)
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(lpath)
    lsock.listen(1)
    mfd = lsock.fileno()
    args = ["-name", "guest=t1,debug-threads=on", "-uuid",
            "00000000-0000-4000-8000-000000000001",
            "-chardev", "socket,id=charmonitor,fd=%d,server=on,wait=off" % mfd,
            "-mon", "chardev=charmonitor,id=monitor,mode=control"]
    # Connect before the start, into the listening socket's backlog: a
    # start that fails at once (a missing preload) closes the socket
    # before a later connect could reach it.  QEMU accepts a connection
    # that is already pending as it would a later one.
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(lpath)
    proc = subprocess.Popen([qemu_coco] + args, env=env, pass_fds=[mfd],
                            stderr=subprocess.PIPE, text=True)
    lsock.close()
    return proc, conn, args, mfd


def main():
    qemu_coco = sys.argv[1]
    interposer = sys.argv[2]
    write_log = sys.argv[3]
    tap = Tap()
    tmp = tempfile.mkdtemp(prefix="cocoqemucocotest-")
    fake = os.path.join(tmp, "fake-qemu")
    with open(fake, "w") as f:
        # Python itself is what qemu-coco execs (no shell in between that
        # would drop the interposer from the environment, as it should).
        f.write("#!%s\nimport runpy, sys\nsys.argv[1:1] = ['--fake']\n"
                "runpy.run_path(%r, run_name='__main__')\n"
                % (sys.executable, os.path.abspath(__file__)))
    os.chmod(fake, 0o755)
    conf = os.path.join(tmp, "qemu-coco.conf")
    with open(conf, "w") as f:
        # An agent socket nobody serves: the relay must say it has none.
        f.write("[qemu-coco]\nqemu = %s\nagent_socket = %s\n"
                "vfio_interposer_path = %s\nwrite_log_path = %s\n" %
                (fake, os.path.join(tmp, "no-agent.sock"), interposer,
                 write_log))
    report = os.path.join(tmp, "report.json")
    env = dict(os.environ, QEMU_COCO_CONFIG=conf, FAKE_REPORT=report,
               TMPDIR=tmp)

    # Capability probing: QEMU itself with libvirt's arguments.
    probe = ["-S", "-no-user-config", "-nodefaults", "-machine",
             "none,accel=kvm:tcg", "-qmp", "unix:/nonexistent,server=on,wait=off"]
    p = subprocess.run([qemu_coco] + probe, env=env, timeout=TIMEOUT)
    rep = json.load(open(report))
    tap.ok(p.returncode == 0 and rep["argv"] == probe,
           "probe: the real QEMU runs with the same arguments")

    # A guest.
    lpath = os.path.join(tmp, "monitor.sock")
    os.unlink(report)
    proc, conn, args, mfd = start_guest(qemu_coco, env, tmp)
    greeting = readline(conn)
    tap.ok(greeting is not None and "QMP" in greeting and greeting.get("session") == 1,
           "guest: QEMU's greeting reaches libvirt through the relay")
    rep = json.load(open(report))
    tap.ok(rep["pid"] == proc.pid, "guest: QEMU runs in the wrapper's PID (exec in place)")
    tap.ok(rep.get("fd-is-listening-socket") is True and
           "fd=%d," % mfd not in " ".join(rep["argv"]),
           "guest: QEMU's monitor is the relay's listening socket, not libvirt's")
    conn.sendall(b'{"execute":"qmp_capabilities","id":"libvirt-1"}\r\n')
    r = readline(conn)
    tap.ok(r == {"return": {"session": 1}, "id": "libvirt-1"}, "guest: commands and replies pass")
    conn.sendall(b'{"execute":"x-coco-query-relay","id":"libvirt-2"}\r\n')
    r = readline(conn)
    tap.ok(r and r["return"]["relay"] == "qemu-coco" and
           r["return"]["agent"] is True and r["return"]["agent-ready"] is False and
           "no-agent.sock" in r["return"].get("agent-error", ""),
           "guest: the relay answers x-coco-query-relay, its agent not reachable")
    ip = rep["interposer"]
    tap.ok(ip["mapped"], "interposer: preloaded into QEMU")
    tap.ok(ip["env-preload"] == "" and ip["env-fd"] is None,
           "interposer: gone from the environment QEMU's children inherit")
    tap.ok(ip["report-fd"] is not None, "interposer: QEMU holds the report socket")
    tap.ok(ip["write-log"] == 1,
           "write log: QEMU holds one userfaultfd for the agent to take")
    tap.ok(r and r["return"].get("vfio-leaks") == 1,
           "interposer: the relay counts the leak report, drops the malformed one")
    # Fail closed: a migration without an agent that accepted the relay is
    # refused, naming the missing agent.
    conn.sendall(b'{"execute":"migrate","arguments":{"uri":"tcp:10.0.0.2:49152"},'
                 b'"id":"libvirt-3"}\r\n')
    r = readline(conn)
    tap.ok(r and "error" in r and "confidential migration refused" in
           r["error"]["desc"] and "no-agent.sock" in r["error"]["desc"],
           "guest: a migration without an agent is refused with the reason")
    conn.close()

    # libvirtd "restarts": the next connection is a fresh QEMU session.
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(lpath)
    greeting = readline(conn)
    tap.ok(greeting is not None and greeting.get("session") == 2,
           "reconnect: a fresh QEMU session greets the new connection")
    conn.sendall(b'{"execute":"quit","id":"libvirt-3"}\r\n')
    proc.wait(timeout=TIMEOUT)
    conn.close()

    # The relay leaves with QEMU and cleans up.
    m = None
    deadline = time.monotonic() + TIMEOUT
    err = proc.stderr.readline()
    m = re.search(r"relay (\d+) for QEMU (\d+)", err)
    tap.ok(m is not None and int(m.group(2)) == proc.pid, "the relay names QEMU's PID")
    gone = False
    while m and time.monotonic() < deadline:
        if not os.path.exists("/proc/%s" % m.group(1)):
            gone = True
            break
        time.sleep(0.05)
    tap.ok(gone, "the relay exits when QEMU exits")
    left = [d for d in os.listdir(tmp) if d.startswith("qemu-coco-")]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [d for d in os.listdir(tmp) if d.startswith("qemu-coco-")]
    tap.ok(not left, "the relay removes its socket directory")

    # vfio_interposer = no: QEMU runs without it.
    with open(conf, "w") as f:
        f.write("[qemu-coco]\nqemu = %s\nvfio_interposer = no\n"
                "write_log = no\n" % fake)
    os.unlink(report)
    proc, conn, _, _ = start_guest(qemu_coco, env, tmp)
    readline(conn)
    rep = json.load(open(report))
    conn.sendall(b'{"execute":"quit","id":"libvirt-4"}\r\n')
    proc.wait(timeout=TIMEOUT)
    conn.close()
    err = proc.stderr.read()
    tap.ok(not rep["interposer"]["mapped"] and rep["interposer"]["report-fd"] is None
           and "VFIO interposer off" in err,
           "vfio_interposer = no: QEMU runs without the interposer")
    tap.ok(rep["interposer"]["write-log"] == 0 and
           rep["interposer"]["env-preload"] == "",
           "write_log = no: QEMU runs without the write-log preload")

    # A preload on (the default) but missing: the start fails, saying how
    # to turn it off; a switch that is not yes or no is refused.
    def missing_fails(keys, remedy, what):
        with open(conf, "w") as f:
            f.write("[qemu-coco]\nqemu = %s\n%s" % (fake, keys))
        proc, conn, _, _ = start_guest(qemu_coco, env, tmp)
        proc.wait(timeout=TIMEOUT)
        conn.close()
        err = proc.stderr.read()
        tap.ok(proc.returncode != 0 and remedy in err,
               "a missing %s fails the start with the remedy" % what)

    missing_fails("vfio_interposer_path = %s\n" % os.path.join(tmp, "missing.so"),
                  "vfio_interposer = no", "interposer")
    missing_fails("vfio_interposer = no\nwrite_log_path = %s\n"
                  % os.path.join(tmp, "none.so"), "write_log = no",
                  "write-log preload")
    with open(conf, "w") as f:
        f.write("[qemu-coco]\nqemu = %s\nvfio_interposer = maybe\n" % fake)
    p = subprocess.run([qemu_coco] + probe, env=env, timeout=TIMEOUT,
                       capture_output=True, text=True)
    tap.ok(p.returncode != 0 and "'yes' or 'no'" in p.stderr,
           "vfio_interposer must be yes or no")
    # With an agent: the relay stays connected to it.
    agent_path = os.path.join(tmp, "agent.sock")
    with open(conf, "w") as f:
        f.write("[qemu-coco]\nqemu = %s\nagent_socket = %s\n"
                "vfio_interposer_path = %s\nwrite_log_path = %s\n"
                % (fake, agent_path, interposer, write_log))
    asock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    asock.bind(agent_path)
    asock.listen(4)
    asock.settimeout(TIMEOUT)
    lpath2 = os.path.join(tmp, "monitor2.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(lpath2)
    lsock.listen(1)
    mfd = lsock.fileno()
    args2 = ["-name", "guest=t2,debug-threads=on", "-uuid",
             "00000000-0000-4000-8000-000000000002",
             "-chardev", "socket,id=charmonitor,fd=%d,server=on,wait=off" % mfd,
             "-mon", "chardev=charmonitor,id=monitor,mode=control"]
    proc = subprocess.Popen([qemu_coco] + args2, env=env, pass_fds=[mfd],
                            stderr=subprocess.DEVNULL)
    lsock.close()

    def hello():
        try:
            a, _ = asock.accept()
        except OSError:
            return None, None
        return a, readline(a)

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(lpath2)
    readline(conn)
    a, h = hello()
    tap.ok(h and h.get("type") == "hello" and h.get("name") == "t2" and
           h.get("pid") == proc.pid,
           "agent: the relay says hello once QEMU runs, before any migration")
    t0 = time.monotonic()
    a.close()
    a, h = hello()
    tap.ok(h and h.get("type") == "hello" and time.monotonic() - t0 < 5,
           "agent: after the agent closed the connection, hello again at once")
    a.close()
    asock.close()
    os.unlink(agent_path)
    time.sleep(2.5)
    asock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    asock.bind(agent_path)
    asock.listen(4)
    asock.settimeout(TIMEOUT)
    t0 = time.monotonic()
    a, h = hello()
    tap.ok(h and h.get("type") == "hello" and time.monotonic() - t0 < 3,
           "agent: an agent that was away is greeted within seconds of its return")
    if a:
        a.close()
    asock.close()
    conn.sendall(b'{"execute":"quit","id":"libvirt-4"}\r\n')
    proc.wait(timeout=TIMEOUT)
    conn.close()

    # A configuration error stops the start, with the reason.
    with open(conf, "w") as f:
        f.write("[qemu-coco]\nqemu = relative/qemu\n")
    p = subprocess.run([qemu_coco] + probe, env=env, timeout=TIMEOUT,
                       capture_output=True, text=True)
    tap.ok(p.returncode != 0 and "absolute path" in p.stderr,
           "a bad configuration fails with the reason")

    shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % tap.n)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--fake":
        fake_qemu()
        sys.exit(0)
    sys.exit(main())
