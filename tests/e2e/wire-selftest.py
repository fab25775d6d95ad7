#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# wire-selftest.py: the lab's fault-injecting proxy (wire.py) against the
# wire formats of this tree, without a lab: a data stream (the peer hello's
# magic read from src/proto/cocoprotopeer.h, transfer records laid out as
# src/transfer/cocotransferframe.h says) and a TLS 1.3 connection (Python's
# ssl, certificates from certtool) carrying a heartbeat-sized and a
# payload-less phase message (sizes from src/migration/cocophasemessage.h).
# It fails when wire.py no longer recognises a stream or the TLS records,
# when a trigger does not fire or fires on a heartbeat, or when a bundle
# it should drop arrives. Usage: wire-selftest.py SRCDIR
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

SRC = sys.argv[1]
WIRE = os.path.join(SRC, "tests", "e2e", "wire.py")
FAILS = []


def define(header, name):
    text = open(os.path.join(SRC, header)).read()
    m = re.search(r"#define %s\s+(\S+)" % name, text)
    if not m:
        sys.exit("%s: no #define %s" % (header, name))
    v = m.group(1)
    if v.startswith('"'):
        return v.strip('"').encode()
    return int(v.rstrip("U"), 0)


PEER_MAGIC = define("src/proto/cocoprotopeer.h", "COCO_PEER_MAGIC")
CCTR = struct.pack("<I", define("src/transfer/cocotransferframe.h", "COCO_TRANSFER_MAGIC"))
CCTR_VERSION = define("src/transfer/cocotransferframe.h", "COCO_TRANSFER_VERSION")
CCTR_HEADER = define("src/transfer/cocotransferframe.h", "COCO_TRANSFER_HEADER_SIZE")
MSG_HEADER = define("src/migration/cocophasemessage.h", "COCO_PHASE_MESSAGE_HEADER")
HB_LEN = define("src/migration/cocophasemessage.h", "COCO_PHASE_MESSAGE_HEARTBEAT_LEN")
MEMORY, START_TOKEN = 2, 6  # CocoTransferRecordType


def check(cond, what):
    print("%s - %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        FAILS.append(what)


def record(typ, arg0, payload):
    hdr = CCTR + bytes([CCTR_VERSION, typ, 0, 0]) + struct.pack("<IIII", len(payload), arg0, 0, 0)
    assert len(hdr) == CCTR_HEADER
    return hdr + payload


def main():
    tmp = tempfile.mkdtemp(prefix="wire-selftest-")
    key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    with open(os.path.join(tmp, "t.info"), "w") as f:
        f.write("cn = localhost\nca\ntls_www_server\nexpiration_days = 1\n")
    subprocess.check_call(["certtool", "--generate-privkey", "--key-type=ecdsa", "--no-text",
                           "--outfile", key], stderr=subprocess.DEVNULL)
    subprocess.check_call(["certtool", "--generate-self-signed", "--no-text", "--load-privkey", key,
                           "--template", os.path.join(tmp, "t.info"), "--outfile", cert],
                          stderr=subprocess.DEVNULL)

    # The destination agent's stand-in: records what reaches it.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    got = {"stream": b"", "tls": []}
    done = threading.Event()
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.minimum_version = ssl.TLSVersion.TLSv1_3
    sctx.load_cert_chain(cert, key)
    sctx.num_tickets = 0  # no session tickets after the handshake

    def one(c):
        if c.recv(4, socket.MSG_PEEK) == PEER_MAGIC:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                got["stream"] += d
            return
        s = sctx.wrap_socket(c, server_side=True)
        got["tls"].append(s.recv(100))
        s.sendall(b"h" * (MSG_HEADER + HB_LEN))  # a heartbeat
        s.sendall(b"s" * MSG_HEADER)  # "switchover done"
        done.wait(10)
        s.close()

    def accept():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=one, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    lsock.close()
    log = os.path.join(tmp, "wire.log")
    marker = os.path.join(tmp, "held")
    wire = subprocess.Popen(
        [sys.executable, WIRE, "--listen", "127.0.0.1:%d" % port,
         "--to", "127.0.0.1:%d" % srv.getsockname()[1], "--log", log, "--drop", "2",
         "--exec-before", "tls:back@cctr:start-token", "sleep 0.3; touch %s" % marker],
        stdout=subprocess.PIPE)
    try:
        check(wire.stdout.readline().strip() == b"ready", "wire.py starts")
        # The control connection, then a data stream: hello, three
        # memory bundles, the start token.
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE
        t = cctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
        t.settimeout(10)
        c = socket.create_connection(("127.0.0.1", port))
        hello = json.dumps({"kind": "stream", "index": 0, "session": 1}).encode()
        c.sendall(PEER_MAGIC + struct.pack("<I", len(hello)) + hello)
        for i in range(3):
            c.sendall(record(MEMORY, 0, bytes([0x40 + i]) * 200))
        c.sendall(record(START_TOKEN, 0, b"T" * 48))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "armed" not in open(log).read():
            time.sleep(0.02)
        # Only now does the destination answer: a heartbeat, then a
        # message without payload.
        t.sendall(b"hello")
        hb = t.recv(100)
        t0 = time.monotonic()
        msg = t.recv(100)
        held = time.monotonic() - t0
        check(len(hb) == MSG_HEADER + HB_LEN and len(msg) == MSG_HEADER, "both messages arrive through the proxy")
        check(os.path.exists(marker) and held >= 0.25,
              "the payload-less message back after the start token is held while the command runs (%.2f s)" % held)
        done.set()
        c.close()
        t.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not got["stream"].endswith(b"T" * 48):
            time.sleep(0.02)
    finally:
        wire.terminate()
        wire.wait()
    text = open(log).read()
    shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.write("".join("# " + line + "\n" for line in text.splitlines()))
    s = got["stream"]
    check(s.startswith(PEER_MAGIC), "the stream's hello is forwarded")
    check(b"\x40" * 200 in s and b"\x41" * 200 not in s and b"\x42" * 200 in s,
          "memory bundle 2 is dropped, 1 and 3 forwarded")
    check(s.endswith(b"T" * 48), "the start token is forwarded")
    check(got["tls"] == [b"hello"], "the TLS session works through the proxy")
    check("stream 0: hello" in text, "wire.py recognises the data stream's hello")
    check("ACTION drop: memory bundle 2 " in text, "wire.py logs the drop")
    check(re.search(r"ACTION exec-before: tls:back #\d+ \(D->S len %d\) " % (MSG_HEADER + 17), text) is not None,
          "the trigger fires on the %d-byte record, not on the heartbeat" % (MSG_HEADER + 17))
    check(re.search(r"tls:hb-back=1\b", text) is not None, "the heartbeat is counted as one")
    if FAILS:
        print("%d of the checks failed" % len(FAILS))
        sys.exit(1)


if __name__ == "__main__":
    main()
