#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The relay of domain "coco" (tests/cocodbusdata/testnode.xml) for the
# D-Bus tests, which run the agent on libvirt's test driver: a stand-in
# QEMU process whose command line names the domain (the shell, an accepted
# qemu_binaries entry), its PID file where the agent reads libvirt's, and
# a hello on the agent's socket (the agent authenticates it as it does
# qemu-coco's relay). Without a connected relay, Migrate() is refused
# before libvirt is called.
#
# As a program (tests/cocodbuspolkittest.sh):
#   cocodbusrelay.py AGENT_SOCKET PID_DIR
# waits (30 s at most) until the agent accepts on AGENT_SOCKET, prints its
# answer to the hello, stays connected until SIGTERM, then kills its
# stand-in QEMU.

import json
import os
import signal
import socket
import subprocess
import sys
import time

UUID = "5f2e3d4c-5b6a-4789-8a9b-0c1d2e3f4a5b"  # "coco" in testnode.xml


def start_relay(piddir, sock_path):
    """A stand-in QEMU for "coco" and its relay's hello; returns the QEMU
    process, the relay's connection and the agent's answer."""
    qemu = subprocess.Popen(["/bin/sh", "-c", "sleep 600", "sh", "-name",
                             "guest=coco", "-uuid", UUID],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    # The agent reads its command line: wait for the exec.
    for _ in range(500):
        try:
            with open("/proc/%d/cmdline" % qemu.pid, "rb") as f:
                if b"guest=coco" in f.read():
                    break
        except OSError:
            pass
        time.sleep(0.01)
    with open(os.path.join(piddir, "coco.pid"), "w") as f:
        f.write("%d\n" % qemu.pid)
    relay = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    relay.settimeout(10)
    relay.connect(sock_path)
    hello = {"type": "hello", "version": 1, "pid": qemu.pid, "name": "coco",
             "uuid": UUID, "vcpus": 1}
    relay.sendall((json.dumps(hello) + "\n").encode())
    answer = b""
    while b"\n" not in answer:
        chunk = relay.recv(4096)
        if not chunk:
            break
        answer += chunk
    return qemu, relay, answer.decode(errors="replace")


def stop_relay(qemu, relay):
    """Close the relay's connection, kill its stand-in QEMU."""
    if relay:
        relay.close()
    if qemu:
        os.killpg(qemu.pid, signal.SIGKILL)
        qemu.wait()


def wait_socket(path, seconds):
    """Wait until the unix socket @path accepts a connection."""
    for _ in range(seconds * 20):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            return True
        except OSError:
            time.sleep(0.05)
        finally:
            probe.close()
    return False


def main():
    if not wait_socket(sys.argv[1], 30):
        print("the agent does not accept on %s" % sys.argv[1], flush=True)
        return 1
    qemu, relay, answer = start_relay(sys.argv[2], sys.argv[1])
    print(answer.strip(), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    finally:
        stop_relay(qemu, relay)


if __name__ == "__main__":
    sys.exit(main())
