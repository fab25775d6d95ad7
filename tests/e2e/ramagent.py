#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# ramagent.py: the LAB's stand-in for the host agent (virtcocod). It is a
# test tool, NOT the product's data path: it copies guest RAM in the clear
# from the source's RAM file to the destination's, which the real agent
# replaces with the encrypted firmware pipeline.
#
# It serves the agent socket of every lab host (the relay's protocol, see
# docs/qemu-coco.rst) and:
#   - on 'pre-switchover' from a source, makes each of the destination
#     guest's memory-backend-file files equal to the source guest's (the
#     source's data extents are copied, the rest reads zero; matched by
#     the guest's UUID and the backend's id, among the relays that sent
#     'migrate-incoming' for a migration), then releases the gate;
#   - on 'cont', releases (there is nothing to commit or abort yet);
#   - refuses a gate when the file named by
#     --refuse-file exists and names it (fault injection for the lab).
# Usage: ramagent.py --log FILE --host NAME=SOCKET [--host NAME=SOCKET ...]
import argparse
import asyncio
import json
import os
import sys
import time


class Relay:
    def __init__(self, host, writer):
        self.host = host
        self.writer = writer
        self.hello = {}
        self.incoming = False  # sent migrate-incoming for a migration


class Agent:
    def __init__(self, logpath, refuse_file):
        self.relays = []
        self.logf = open(logpath, "a", buffering=1)
        self.refuse_file = refuse_file
        self.copies = 0

    def log(self, fmt, *args):
        self.logf.write("%.6f %s\n" % (time.time(), fmt % args))

    def find_destination(self, src):
        uuid = src.hello.get("uuid")
        cands = [r for r in self.relays
                 if r is not src and r.incoming and r.hello.get("uuid") == uuid]
        return cands[-1] if cands else None

    @staticmethod
    def extents(fd, size):
        """The data extents of a sparse file (tmpfs: the pages in use)."""
        out, off = [], 0
        while off < size:
            try:
                start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after off
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, end))
            off = end
        return out

    def copy_ram(self, src, dst):
        """Make each destination RAM file equal to the source's: copy the
        source's data extents, zero what only the destination has."""
        total = 0
        dst_ram = {r["id"]: r for r in dst.hello.get("ram", [])}
        for r in src.hello.get("ram", []):
            d = dst_ram.get(r["id"])
            if d is None:
                raise RuntimeError("destination has no backend '%s'" % r["id"])
            with open(r["path"], "rb") as fi, open(d["path"], "r+b") as fo:
                size = os.fstat(fi.fileno()).st_size
                if os.fstat(fo.fileno()).st_size != size:
                    raise RuntimeError("backend '%s': sizes differ" % r["id"])
                src_ext = self.extents(fi.fileno(), size)
                for start, end in src_ext:
                    off = start
                    while off < end:
                        n = os.copy_file_range(fi.fileno(), fo.fileno(),
                                               end - off, off, off)
                        if n <= 0:
                            raise RuntimeError("short copy at %d" % off)
                        off += n
                    total += end - start
                # Destination pages the source does not have must read 0.
                for start, end in self.extents(fo.fileno(), size):
                    pos = start
                    for s0, s1 in src_ext:
                        if s1 <= pos or s0 >= end:
                            continue
                        if s0 > pos:
                            self.zero(fo.fileno(), pos, s0)
                        pos = max(pos, s1)
                    if pos < end:
                        self.zero(fo.fileno(), pos, end)
        return total

    @staticmethod
    def zero(fd, start, end):
        chunk = bytes(1 << 20)
        while start < end:
            n = os.pwrite(fd, chunk[:min(len(chunk), end - start)], start)
            start += n

    def refused(self, gate):
        if self.refuse_file and os.path.exists(self.refuse_file):
            with open(self.refuse_file) as f:
                return gate in f.read().split()
        return False

    def verdict(self, relay, msg):
        gate, role = msg.get("gate"), msg.get("role")
        if self.refused(gate):
            return False, "lab fault injection refuses '%s'" % gate
        if gate == "pre-switchover":
            dst = self.find_destination(relay)
            if dst is None:
                return False, "no destination relay for guest %s" % relay.hello.get("uuid")
            t0 = time.monotonic()
            try:
                n = self.copy_ram(relay, dst)
            except (OSError, RuntimeError) as e:
                return False, "RAM copy failed: %s" % e
            ms = (time.monotonic() - t0) * 1000
            self.copies += 1
            self.log("copy host%s -> host%s guest=%s bytes=%d ms=%.1f",
                     relay.host, dst.host, relay.hello.get("name"), n, ms)
            dst.incoming = False
            return True, None
        return True, None

    async def serve(self, host, reader, writer):
        relay = Relay(host, writer)
        self.relays.append(relay)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.log("host%s: bad line %r", host, line)
                    continue
                t = msg.get("type")
                if t == "hello":
                    relay.hello = msg
                    self.log("host%s hello pid=%s name=%s ram=%s", host,
                             msg.get("pid"), msg.get("name"),
                             [r.get("path") for r in msg.get("ram", [])])
                elif t == "event":
                    data = msg.get("data", {})
                    self.log("host%s event %s %s", host, msg.get("event"),
                             json.dumps(data, sort_keys=True))
                    if (msg.get("event") == "migrate-incoming" and
                            data.get("job") == "migration"):
                        relay.incoming = True
                elif t == "gate":
                    self.log("host%s gate %s role=%s", host, msg.get("gate"),
                             msg.get("role"))
                    ok, reason = await asyncio.get_running_loop().run_in_executor(
                        None, self.verdict, relay, msg)
                    reply = {"type": "verdict", "id": msg.get("id"),
                             "release": ok}
                    if reason:
                        reply["reason"] = reason
                    self.log("host%s verdict %s", host, json.dumps(reply))
                    writer.write((json.dumps(reply) + "\n").encode())
                    await writer.drain()
        finally:
            self.relays.remove(relay)
            writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--host", action="append", required=True)
    ap.add_argument("--refuse-file")
    args = ap.parse_args()
    agent = Agent(args.log, args.refuse_file)
    servers = []
    for spec in args.host:
        name, path = spec.split("=", 1)
        if os.path.exists(path):
            os.unlink(path)
        servers.append(await asyncio.start_unix_server(
            lambda r, w, n=name: agent.serve(n, r, w), path=path))
        agent.log("listening for host%s on %s", name, path)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
