#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A migration that runs until it is aborted, for tests on libvirt's test
# driver (which cannot migrate): a unix socket in front of a real libvirtd
# that passes every message of libvirt's RPC protocol both ways, except
# one. virDomainMigrateToURI3() with VIR_MIGRATE_PEER2PEER first asks the
# driver whether it supports peer-to-peer migration
# (REMOTE_PROC_CONNECT_SUPPORTS_FEATURE, VIR_DRV_FEATURE_MIGRATION_P2P):
# that call is held, so the caller's migration runs. virDomainAbortJob()
# (REMOTE_PROC_DOMAIN_ABORT_JOB) answers as a driver whose migration job
# was cancelled (success) and lets the held call through: the test driver
# then answers "no", and the migration fails after its abort, as libvirt's
# QEMU driver makes an aborted one fail.
#
# Usage: cocolibvirtstall.py LISTEN UPSTREAM
#   LISTEN    the unix socket to serve (libvirt URI: ...?socket=LISTEN)
#   UPSTREAM  libvirtd's socket
# It prints "ready" once it listens, and one line per held or answered
# call; it runs until killed.

import os
import selectors
import socket
import struct
import sys

REMOTE_PROGRAM = 0x20008086
PROC_SUPPORTS_FEATURE = 60
PROC_DOMAIN_ABORT_JOB = 164
FEATURE_MIGRATION_P2P = 4
CALL, REPLY = 0, 1
MAX_MESSAGE = 32 * 1024 * 1024 + 4  # libvirt's VIR_NET_MESSAGE_MAX


def say(line):
    print(line, flush=True)


# The held calls of every connection: (connection, message).
HELD = []


class Conn:
    """One client connection and its own connection to libvirtd."""

    def __init__(self, client, upstream):
        self.client = client
        self.upstream = upstream
        self.inbuf = b""

    def messages(self, data):
        """Complete messages from the client (length-prefixed)."""
        self.inbuf += data
        out = []
        while len(self.inbuf) >= 4:
            (length,) = struct.unpack(">I", self.inbuf[:4])
            if length < 28 or length > MAX_MESSAGE:
                raise ValueError("bad message length %d" % length)
            if len(self.inbuf) < length:
                break
            out.append(self.inbuf[:length])
            self.inbuf = self.inbuf[length:]
        return out

    def from_client(self, msg):
        prog, _vers, proc, mtype, serial, _status = struct.unpack(
            ">IIIiII", msg[4:28])
        if prog == REMOTE_PROGRAM and mtype == CALL:
            if proc == PROC_SUPPORTS_FEATURE and len(msg) >= 32 and \
                    struct.unpack(">i", msg[28:32])[0] == FEATURE_MIGRATION_P2P:
                say("held: supports-feature migration-p2p (serial %d)"
                    % serial)
                HELD.append((self, msg))
                return
            if proc == PROC_DOMAIN_ABORT_JOB:
                say("answered: domain-abort-job (serial %d); released %d"
                    % (serial, len(HELD)))
                reply = struct.pack(">IIIiII", REMOTE_PROGRAM, 1, proc, REPLY,
                                    serial, 0)
                self.client.sendall(struct.pack(">I", len(reply) + 4) + reply)
                for conn, held in HELD:
                    conn.upstream.sendall(held)
                HELD.clear()
                return
        self.upstream.sendall(msg)


def main():
    listen, upstream_path = sys.argv[1], sys.argv[2]
    if os.path.exists(listen):
        os.unlink(listen)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listen)
    server.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(server, selectors.EVENT_READ, None)
    say("ready")
    while True:
        for key, _ in sel.select():
            if key.data is None:
                client, _ = server.accept()
                up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                up.connect(upstream_path)
                conn = Conn(client, up)
                sel.register(client, selectors.EVENT_READ, (conn, True))
                sel.register(up, selectors.EVENT_READ, (conn, False))
                continue
            conn, is_client = key.data
            try:
                data = key.fileobj.recv(65536)
                if data and is_client:
                    for msg in conn.messages(data):
                        conn.from_client(msg)
                elif data:
                    conn.client.sendall(data)
            except (OSError, ValueError):
                data = b""
            if not data:
                HELD[:] = [h for h in HELD if h[0] is not conn]
                for s in (conn.client, conn.upstream):
                    try:
                        sel.unregister(s)
                    except (KeyError, ValueError):
                        pass
                    s.close()


if __name__ == "__main__":
    main()
