#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# wire.py: a man-in-the-middle TCP proxy between two hosts' virtcocod
# agents, for the lab's fault-injection scenarios (docs/lab.rst,
# tests/e2e/scenarios-faults.sh, scenarios-liveness.sh). Standard library
# only.
#
# It listens on --listen and forwards every connection to --to. It parses
# what it forwards (docs/virtcocod.rst, docs/transfer.rst):
#   - a data stream starts with its plain hello ("CAG2", or "CAG1" of
#     protocol 1; u32 LE length, JSON): "hello:stream" (with its index);
#     then, both ways, transfer records ("CCTR", 24-byte header; type at
#     offset 5, length at 8, arg0 at 12, arg1 at 16), named cctr:memory,
#     cctr:start-token, ...;
#   - every other agent connection (the control connection of a
#     migration, a probe, a status request or a reconnect) is mutual TLS
#     1.3: its content is sealed, only its records are seen (5-byte
#     header: type, version, u16 BE length). Application-data records are
#     named by direction: "tls:fwd" (source to destination) and
#     "tls:back"; a record of a heartbeat's size (a 24-byte frame sealed:
#     41 bytes) is "tls:hb-fwd" / "tls:hb-back" instead, so that a trigger
#     on tls:back is a phase message, not the periodic heartbeat.
#     Handshake records are "tls:handshake". The first "tls:back" after
#     the start token passed is the destination's "switchover done" (a
#     message without payload: 33 bytes sealed). The server's encrypted
#     records before the client's first one are its handshake; those
#     after it (a session ticket, the server's confirmation) count as
#     tls:back: a trigger armed while a connection is being opened can
#     fire on them.
# and can, once each:
#   --tamper N          flip one byte in the payload of the Nth memory bundle
#                       (source to destination, all streams, 1-based, in the
#                       order they reach the proxy)
#   --replay N          forward the Nth memory bundle twice
#   --drop N            do not forward the Nth memory bundle
#   --cut TRIG          once TRIG passed, reset every connection on both
#                       sides
#   --reset-streams TRIG
#                       once TRIG passed, reset the source's side of every
#                       stream connection and stop forwarding them (the
#                       destination's side stays open and silent)
#   --exec TRIG CMD     once TRIG passed, run CMD (sh -c) before forwarding
#                       anything more in that direction
#   --exec-before TRIG CMD
#                       run CMD when TRIG arrived, then forward it (the
#                       direction stalls while CMD runs)
# TRIG is MSG[:K][@ARM[:J]]: the Kth message MSG (1 if not given), counted
# from the start, or with @ARM from the moment the Jth message ARM passed;
# MSG and ARM are names as above, e.g. cctr:start-token, hello:stream:2,
# tls:back@cctr:start-token. Every message is logged to --log (a memory
# bundle only when it is acted on) with the time in milliseconds; "ACTION"
# lines name what was done, and SIGTERM writes a summary of the counts.
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

RECORDS = [
    "hello", "immutable", "memory", "epoch-end", "epoch-token", "vcpu",
    "start-token", "abort-token", "end", "page-map",
]
HELLO_MAGICS = (b"CAG2", b"CAG1")
CCTR_MAGIC = b"CCTR"
# TLS record types (RFC 8446 5.1).
TLS_CCS, TLS_ALERT, TLS_HANDSHAKE, TLS_APPDATA = 20, 21, 22, 23
TLS_RECORD_MAX = (1 << 14) + 256
# A heartbeat (cocophasemessage.h: a 16-byte header and an 8-byte
# sequence number) sealed in one TLS 1.3 record: the content type byte and
# a 16-byte AEAD tag added, no padding.
TLS_HEARTBEAT = 16 + 8 + 1 + 16

lock = threading.Lock()
conns = []  # every Conn
counts = {}  # message name -> times seen
bundles = 0  # memory bundles seen, source to destination
logf = None
opts = None
triggers = []  # every Trigger


def stamp():
    t = time.time()
    return "%s.%03d" % (time.strftime("%H:%M:%S", time.localtime(t)), int(t * 1000) % 1000)


def log(msg):
    with lock:
        logf.write("%s %s\n" % (stamp(), msg))
        logf.flush()


def msgspec(s):
    """'cctr:memory:3' -> ('cctr:memory', 3); 'hello:stream' -> (.., 1)."""
    kind, _, rest = s.partition(":")
    sub, _, k = rest.partition(":")
    if kind not in ("cctr", "hello", "tls") or not sub:
        raise argparse.ArgumentTypeError("'%s' is not a message name" % s)
    try:
        n = int(k) if k else 1
    except ValueError:
        raise argparse.ArgumentTypeError("'%s': '%s' is not a count" % (s, k))
    if n < 1:
        raise argparse.ArgumentTypeError("'%s': counts start at 1" % s)
    return kind + ":" + sub, n


class Trigger:
    """MSG[:K][@ARM[:J]]: the Kth MSG, counted from the start or from the
    moment the Jth ARM passed."""

    def __init__(self, text):
        self.text = text
        msg, _, arm = text.partition("@")
        self.name, self.k = msgspec(msg)
        self.arm = msgspec(arm) if arm else None
        # Count of name when the trigger was armed (None: not yet).
        self.base = None if self.arm else 0
        self.done = set()  # actions of this trigger already done
        with lock:
            triggers.append(self)

    def matches(self, name, n):
        return self.base is not None and name == self.name and n - self.base == self.k

    def __str__(self):
        return self.text


def trigger(text):
    return Trigger(text)


class Closed(Exception):
    pass


class Conn:
    def __init__(self, num, client):
        self.num = num
        self.client = client
        self.server = None
        self.kind = None  # "stream" / "tls" / "raw"
        self.index = None
        self.known = threading.Event()
        self.dead = False
        # TLS: the client sent its first encrypted record (its Finished):
        # the server's encrypted records before it are its handshake.
        self.client_done = False

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


def count(name):
    """Count one more @name; arm the triggers waiting for it. Returns the
    count."""
    with lock:
        counts[name] = counts.get(name, 0) + 1
        return counts[name]


def arm(name, n):
    """@name's nth passed: arm the triggers waiting for it."""
    with lock:
        for t in triggers:
            if t.base is None and t.arm == (name, n):
                t.base = counts.get(t.name, 0)
                logf.write("%s armed %s (%s #%d passed; %d seen before)\n"
                           % (stamp(), t, name, n, t.base))
                logf.flush()


def due(trig, act, name, n):
    """Whether @act of @trig is due for the nth @name (at most once)."""
    if trig is None:
        return False
    with lock:
        if act in trig.done or not trig.matches(name, n):
            return False
        trig.done.add(act)
        return True


def run_exec(conn, name, n, what, entries, when):
    for trig, cmd in entries or []:
        if due(trig, when, name, n):
            t0 = time.monotonic()
            rc = subprocess.call(["sh", "-c", cmd])
            log("ACTION %s: %s #%d (%s) on %s (%s); ran '%s': exit %d in %.0f ms"
                % (when, name, n, what, conn.label(), trig, cmd, rc,
                   (time.monotonic() - t0) * 1000))


def act_before(conn, name, n, what):
    """Actions keyed on the Kth message @name (@what: its direction and
    length), before it is forwarded."""
    run_exec(conn, name, n, what, opts.exec_before, "exec-before")


def act_after(conn, name, n, what):
    """Actions keyed on the Kth message @name that just passed."""
    if due(opts.cut, "cut", name, n):
        log("ACTION cut: %s #%d (%s) passed on %s (%s); resetting all %d connections"
            % (name, n, what, conn.label(), opts.cut, len(conns)))
        for c in list(conns):
            c.dead = True
            c.reset(c.client)
            if c.server:
                c.reset(c.server)
    if due(opts.reset_streams, "reset-streams", name, n):
        streams = [c for c in conns if c.kind == "stream"]
        log("ACTION reset-streams: %s #%d (%s) passed on %s (%s); resetting the source side of %d stream connections"
            % (name, n, what, conn.label(), opts.reset_streams, len(streams)))
        for c in streams:
            c.dead = True
            c.reset(c.client)
    run_exec(conn, name, n, what, opts.exec, "exec")
    arm(name, n)


def forward_msg(conn, dst, name, out, what, quiet=False):
    """Count message @name, log it (@what: direction, arguments, length;
    not when @quiet), act on it and forward the byte strings of @out."""
    n = count(name)
    if not quiet:
        log("%s: %s %s (#%d)" % (conn.label(), name, what, n))
    act_before(conn, name, n, what)
    for o in out:
        dst.sendall(o)
    act_after(conn, name, n, what)


def start(conn, src, dst):
    """The first bytes of a connection (source side): a stream's plain
    hello, or a TLS record header."""
    head = readn(src, 4)
    if bytes(head) in HELLO_MAGICS:
        head += readn(src, 4)
        (ln,) = struct.unpack("<I", head[4:8])
        if ln > 4096:
            log("%s: hello of %d bytes; passing bytes through" % (conn.label(), ln))
            conn.kind = "raw"
            conn.known.set()
            return head
        body = readn(src, ln)
        try:
            hello = json.loads(bytes(body))
        except ValueError:
            hello = {}
        conn.kind = hello.get("kind", "raw") if isinstance(hello, dict) else "raw"
        conn.index = hello.get("index") if isinstance(hello, dict) else None
        conn.known.set()
        name = "hello:" + str(conn.kind)
        n = count(name)
        log("%s: hello %s (#%d)" % (conn.label(), bytes(body).decode(errors="replace"), n))
        act_before(conn, name, n, "S->D")
        dst.sendall(head + body)
        act_after(conn, name, n, "S->D")
        return b""
    if head[0] == TLS_HANDSHAKE and head[1] == 3:
        conn.kind = "tls"
        log("%s: TLS" % conn.label())
    else:
        log("%s: neither a hello nor TLS (%r); passing bytes through" % (conn.label(), bytes(head)))
        conn.kind = "raw"
    conn.known.set()
    return head


def pump(conn, src, dst, forward):
    """Copy src to dst message by message; forward is True for the
    direction source agent -> destination agent."""
    global bundles
    way = "S->D" if forward else "D->S"
    pending = b""
    if forward:
        pending = start(conn, src, dst)
    else:
        conn.known.wait()
    while True:
        if conn.kind == "tls":
            hdr = pending + readn(src, 5 - len(pending))
            pending = b""
            typ, ver, ln = struct.unpack(">BHH", hdr[:5])
            if typ not in (TLS_CCS, TLS_ALERT, TLS_HANDSHAKE, TLS_APPDATA) or \
                    ver >> 8 != 3 or ln > TLS_RECORD_MAX:
                log("%s %s: bad TLS record header %r" % (conn.label(), way, bytes(hdr)))
                raise Closed()
            payload = readn(src, ln)
            if typ == TLS_APPDATA and forward:
                conn.client_done = True
            if typ == TLS_APPDATA and (forward or conn.client_done):
                name = "tls:" + ("hb-" if ln == TLS_HEARTBEAT else "") + ("fwd" if forward else "back")
            elif typ == TLS_ALERT:
                name = "tls:alert"
            else:
                name = "tls:handshake"
            forward_msg(conn, dst, name, [hdr + payload], "%s len %d" % (way, ln),
                        quiet=name.startswith("tls:hb-"))
        elif conn.kind == "stream":
            hdr = readn(src, 24)
            if bytes(hdr[:4]) != CCTR_MAGIC:
                log("%s %s: bad CCTR header %r" % (conn.label(), way, bytes(hdr)))
                raise Closed()
            typ = hdr[5]
            ln, arg0, arg1 = struct.unpack("<III", hdr[8:20])
            payload = readn(src, ln)
            name = "cctr:" + (RECORDS[typ] if typ < len(RECORDS) else str(typ))
            out = [hdr + payload]
            what = "%s arg0 %d arg1 %d len %d" % (way, arg0, arg1, ln)
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
            forward_msg(conn, dst, name, out, what, quiet=name == "cctr:memory")
        else:
            data = pending or src.recv(65536)
            pending = b""
            if not data:
                raise Closed()
            dst.sendall(data)


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
        if forward:
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
                   % (stamp(), len(conns), bundles,
                      ", ".join("%s=%d" % kv for kv in sorted(counts.items()))))
        logf.flush()
    os._exit(0)


def main():
    global opts, logf
    p = argparse.ArgumentParser(description="a fault-injecting proxy between two virtcocod agents")
    p.add_argument("--listen", required=True, help="ADDR:PORT")
    p.add_argument("--to", required=True, help="ADDR:PORT")
    p.add_argument("--log", required=True)
    p.add_argument("--tamper", type=int, default=0)
    p.add_argument("--replay", type=int, default=0)
    p.add_argument("--drop", type=int, default=0)
    p.add_argument("--cut", type=trigger)
    p.add_argument("--reset-streams", type=trigger)
    p.add_argument("--exec", nargs=2, action="append", metavar=("TRIG", "CMD"))
    p.add_argument("--exec-before", nargs=2, action="append", metavar=("TRIG", "CMD"))
    opts = p.parse_args()
    try:
        opts.exec = [(Trigger(t), c) for t, c in opts.exec or []]
        opts.exec_before = [(Trigger(t), c) for t, c in opts.exec_before or []]
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
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
    log("listening on %s, forwarding to %s; triggers: %s"
        % (opts.listen, opts.to, ", ".join(str(t) for t in triggers) or "none"))
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
