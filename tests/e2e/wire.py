#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# wire.py: a man-in-the-middle TCP proxy between two hosts' virtcocod
# agents, for the lab's fault-injection scenarios (docs/lab.rst,
# tests/e2e/scenarios-faults.sh). Standard library only.
#
# It listens on --listen and forwards every connection to --to. It parses
# what it forwards (docs/virtcocod.rst, docs/transfer.rst):
#   - the "CAG1" hello of every connection (u32 LE length, JSON): "control"
#     or "stream" (with its index);
#   - on a control connection, both ways: "CPM1" phase messages (16-byte
#     header: magic, u16 type, u16 0, u32 arg, u32 length), named by the
#     phase engine's event names (cpm:peer-round-done, ...);
#   - on a stream connection, both ways: transfer records ("CCTR", 24-byte
#     header; type at offset 5, length at 8, arg0 at 12), named
#     cctr:memory, cctr:start-token, ...
# and can, once:
#   --tamper N          flip one byte in the payload of the Nth memory bundle
#                       (source to destination, all streams, 1-based, in the
#                       order they reach the proxy)
#   --replay N          forward the Nth memory bundle twice
#   --drop N            do not forward the Nth memory bundle
#   --cut MSG[:K]       after the Kth MSG passed, reset every connection on
#                       both sides
#   --reset-streams MSG[:K]
#                       after the Kth MSG passed, reset the source's side of
#                       every stream connection and stop forwarding them (the
#                       destination's side stays open and silent)
#   --exec MSG[:K] CMD  after the Kth MSG passed, run CMD (sh -c) before
#                       forwarding anything more in that direction
#   --exec-before MSG[:K] CMD
#                       run CMD when the Kth MSG arrived, then forward it
# MSG is a message name as above, e.g. cctr:start-token, cpm:peer-agent,
# hello:control. Every action and a summary are logged to --log; "ACTION"
# lines name what was done.
import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

PHASE_EVENTS = [
    "incoming", "migrate", "precopy-round", "query", "pre-switchover",
    "cont", "qemu-gone", "cancel", "migration-failed", "peer-lost",
    "local-failure", "deadline", "peer-reconnected", "give-up",
    "hold-expired", "peer-agent", "peer-prepared", "peer-setup",
    "peer-memory", "peer-token", "peer-vcpu", "peer-start-token",
    "peer-setup-done", "peer-round-done", "peer-switchover-done",
    "peer-committed", "peer-abort-request", "peer-abort-token",
    "peer-aborted", "data-setup", "data-round", "data-start",
]
RECORDS = [
    "hello", "immutable", "memory", "epoch-end", "epoch-token", "vcpu",
    "start-token", "abort-token", "end", "page-map",
]
CTL_MAGIC = b"CAG1"
CPM_MAGIC = b"CPM1"
CCTR_MAGIC = b"CCTR"

lock = threading.Lock()
conns = []  # every Conn
counts = {}  # message name -> times seen
bundles = 0  # memory bundles seen, source to destination
logf = None
opts = None
fired = set()  # actions already done


def log(msg):
    with lock:
        logf.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
        logf.flush()


def spec(s):
    name, _, k = s.partition(":")
    if name in ("cpm", "cctr", "hello"):
        # "cctr:memory" or "cctr:memory:3"
        rest = k
        sub, _, k = rest.partition(":")
        name = name + ":" + sub
    return name, int(k) if k else 1


class Closed(Exception):
    pass


class Conn:
    def __init__(self, num, client):
        self.num = num
        self.client = client
        self.server = None
        self.kind = None  # "control" / "stream"
        self.index = None
        self.known = threading.Event()
        self.dead = False

    def label(self):
        if self.kind == "stream":
            return "conn %d stream %d" % (self.num, self.index)
        return "conn %d %s" % (self.num, self.kind or "?")

    def reset(self, sock):
        """Reset the TCP connection (RST) now. A thread blocked in recv()
        on the socket keeps it open past close(): shut the receive side
        first (it wakes the reader, sends nothing); with a zero linger the
        last close then sends the RST."""
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass


def readn(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        r = sock.recv_into(view[got:], n - got)
        if r == 0:
            raise Closed()
        got += r
    return buf


def sendall(sock, data):
    sock.sendall(data)


def count(name):
    with lock:
        counts[name] = counts.get(name, 0) + 1
        return counts[name]


def run_exec(conn, name, n, entries, when):
    for trig, cmd in entries or []:
        if spec(trig) == (name, n) and (when, trig) not in fired:
            fired.add((when, trig))
            t0 = time.monotonic()
            rc = subprocess.call(["sh", "-c", cmd])
            log("ACTION %s: %s #%d on %s; ran '%s': exit %d in %.0f ms"
                % (when, name, n, conn.label(), cmd, rc, (time.monotonic() - t0) * 1000))


def act_before(conn, name, n):
    """Actions keyed on the Kth message @name, before it is forwarded."""
    run_exec(conn, name, n, opts.exec_before, "exec-before")


def act_after(conn, name, n):
    """Actions keyed on the Kth message @name that just passed."""
    for act, arg in (("cut", opts.cut), ("reset-streams", opts.reset_streams)):
        if arg and arg == (name, n) and act not in fired:
            fired.add(act)
            if act == "cut":
                log("ACTION cut: %s #%d passed on %s; resetting all %d connections"
                    % (name, n, conn.label(), len(conns)))
                for c in list(conns):
                    c.dead = True
                    c.reset(c.client)
                    if c.server:
                        c.reset(c.server)
            else:
                streams = [c for c in conns if c.kind == "stream"]
                log("ACTION reset-streams: %s #%d passed on %s; resetting the source side of %d stream connections"
                    % (name, n, conn.label(), len(streams)))
                for c in streams:
                    c.dead = True
                    c.reset(c.client)
    run_exec(conn, name, n, opts.exec, "exec")


def pump(conn, src, dst, forward):
    """Copy src to dst message by message; forward is True for the
    direction source agent -> destination agent."""
    global bundles
    way = "S->D" if forward else "D->S"
    if forward:
        head = readn(src, 8)
        if bytes(head[:4]) != CTL_MAGIC:
            log("%s: no CAG1 hello (%r); passing bytes through" % (conn.label(), bytes(head)))
            conn.kind = "raw"
            conn.known.set()
            sendall(dst, head)
        else:
            (ln,) = struct.unpack("<I", head[4:8])
            body = readn(src, ln)
            try:
                hello = json.loads(bytes(body))
            except ValueError:
                hello = {}
            conn.kind = hello.get("kind", "raw")
            conn.index = hello.get("index")
            conn.known.set()
            n = count("hello:" + conn.kind)
            log("%s: hello %s" % (conn.label(), bytes(body).decode(errors="replace")))
            act_before(conn, "hello:" + conn.kind, n)
            sendall(dst, head + body)
            act_after(conn, "hello:" + conn.kind, n)
    else:
        conn.known.wait()
    while True:
        if conn.kind == "control":
            hdr = readn(src, 16)
            if bytes(hdr[:4]) != CPM_MAGIC:
                log("%s %s: bad CPM1 header %r" % (conn.label(), way, bytes(hdr)))
                raise Closed()
            typ, _, arg, ln = struct.unpack("<HHII", hdr[4:16])
            payload = readn(src, ln)
            name = "cpm:" + (PHASE_EVENTS[typ] if typ < len(PHASE_EVENTS) else str(typ))
            n = count(name)
            log("%s %s: %s arg %d len %d (#%d)" % (conn.label(), way, name, arg, ln, n))
            act_before(conn, name, n)
            sendall(dst, hdr + payload)
            act_after(conn, name, n)
        elif conn.kind == "stream":
            hdr = readn(src, 24)
            if bytes(hdr[:4]) != CCTR_MAGIC:
                log("%s %s: bad CCTR header %r" % (conn.label(), way, bytes(hdr)))
                raise Closed()
            typ = hdr[5]
            ln, arg0, arg1 = struct.unpack("<III", hdr[8:20])
            payload = readn(src, ln)
            name = "cctr:" + (RECORDS[typ] if typ < len(RECORDS) else str(typ))
            n = count(name)
            out = [hdr + payload]
            if forward and name == "cctr:memory":
                with lock:
                    bundles += 1
                    b = bundles
                if b == opts.tamper:
                    off = ln - 100
                    payload[off] ^= 0x01
                    out = [hdr + payload]
                    log("ACTION tamper: memory bundle %d (epoch %d, %s, %d bytes): flipped bit 0 of payload byte %d"
                        % (b, arg0, conn.label(), ln, off))
                elif b == opts.replay:
                    out = [hdr + payload, hdr + payload]
                    log("ACTION replay: memory bundle %d (epoch %d, %s, %d bytes) forwarded twice"
                        % (b, arg0, conn.label(), ln))
                elif b == opts.drop:
                    out = []
                    log("ACTION drop: memory bundle %d (epoch %d, %s, %d bytes) not forwarded"
                        % (b, arg0, conn.label(), ln))
            elif name != "cctr:memory":
                log("%s %s: %s arg0 %d arg1 %d len %d (#%d)"
                    % (conn.label(), way, name, arg0, arg1, ln, n))
            act_before(conn, name, n)
            for o in out:
                sendall(dst, o)
            act_after(conn, name, n)
        else:
            data = src.recv(65536)
            if not data:
                raise Closed()
            sendall(dst, data)


def direction(conn, src, dst, forward):
    try:
        pump(conn, src, dst, forward)
    except (Closed, OSError) as e:
        if not conn.dead:
            log("%s %s: closed (%s)" % (conn.label(), "S->D" if forward else "D->S",
                                        type(e).__name__))
    finally:
        # Half-close the other way: the peer sees the end as it would
        # (not after a reset: the destination's side then stays silent).
        if not conn.dead:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if not forward:
            conn.known.set()


def serve(conn):
    try:
        conn.server = socket.create_connection(opts.to_addr)
        conn.server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as e:
        log("conn %d: cannot connect to %s:%d: %s" % (conn.num, opts.to_addr[0], opts.to_addr[1], e))
        conn.reset(conn.client)
        return
    t = threading.Thread(target=direction, args=(conn, conn.server, conn.client, False), daemon=True)
    t.start()
    direction(conn, conn.client, conn.server, True)
    t.join()
    for s in (conn.client, conn.server):
        try:
            s.close()
        except OSError:
            pass


def summary(*_):
    with lock:
        logf.write("%s summary: %d connections, %d memory bundles, %s\n"
                   % (time.strftime("%H:%M:%S"), len(conns), bundles,
                      ", ".join("%s=%d" % kv for kv in sorted(counts.items()))))
        logf.flush()
    os._exit(0)


def main():
    global opts, logf
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--listen", required=True, help="ADDR:PORT")
    p.add_argument("--to", required=True, help="ADDR:PORT")
    p.add_argument("--log", required=True)
    p.add_argument("--tamper", type=int, default=0)
    p.add_argument("--replay", type=int, default=0)
    p.add_argument("--drop", type=int, default=0)
    p.add_argument("--cut", type=spec)
    p.add_argument("--reset-streams", type=spec)
    p.add_argument("--exec", nargs=2, action="append", metavar=("MSG", "CMD"))
    p.add_argument("--exec-before", nargs=2, action="append", metavar=("MSG", "CMD"))
    opts = p.parse_args()
    host, _, port = opts.to.rpartition(":")
    opts.to_addr = (host, int(port))
    host, _, port = opts.listen.rpartition(":")
    logf = open(opts.log, "a")
    signal.signal(signal.SIGTERM, summary)
    signal.signal(signal.SIGINT, summary)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(64)
    log("listening on %s, forwarding to %s" % (opts.listen, opts.to))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    num = 0
    while True:
        c, _ = ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        num += 1
        conn = Conn(num, c)
        with lock:
            conns.append(conn)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
