#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The guest's longest pause, seen from the host (tests/e2e/bench.sh).

The benchmark guest prints "T n uptime" every few milliseconds on its
serial console (build-guest.sh, cocotick=). QEMU writes each byte of the
console to the host's log file as the guest emits it, so the host's arrival
time of the tick lines is the guest's progress in real time. The guest's own
clock is no help: QEMU stops it with the vCPUs, so guest time shows no gap.

  tickgap.py watch OUT FILE...   append "host_time file n uptime" to OUT for
                                 every tick line that reaches one of FILE
                                 after the start (polls every 2 ms) until
                                 SIGTERM; FILE may not exist yet
  tickgap.py gap OUT T0 T1 [TS]  the largest interval between consecutive
                                 ticks (whatever file they reached) from the
                                 last tick before T0 to the first after T1
                                 (host times, seconds since the epoch), and
                                 the largest one in the second before T0:
                                 "gap_ms n_before n_after guest_ms
                                 baseline_ms lost start_ms ts_ms", where
                                 guest_ms is the guest's uptime difference
                                 across the gap, lost the ticks missing in
                                 the window, start_ms when the gap began
                                 (after T0), ts_ms the interval that holds
                                 the instant TS (0 without TS)
"""
import os
import signal
import sys
import time


def watch(out, files):
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    state = {}
    for f in files:
        try:
            state[f] = [None, os.stat(f).st_size, b""]
        except OSError:
            state[f] = [None, 0, b""]
    rows = []
    while not stop:
        for i, f in enumerate(files):
            st = state[f]
            if st[0] is None:
                try:
                    st[0] = open(f, "rb")
                    st[0].seek(st[1])
                except OSError:
                    continue
            data = st[0].read()
            if not data:
                continue
            t = time.time()
            buf = st[2] + data
            lines = buf.split(b"\n")
            st[2] = lines.pop()
            for line in lines:
                w = line.strip(b"\r").split()
                if len(w) == 3 and w[0] == b"T":
                    rows.append("%.6f %d %s %s" % (t, i, w[1].decode(), w[2].decode()))
        time.sleep(0.002)
    with open(out, "w") as o:
        o.write("\n".join(rows) + ("\n" if rows else ""))


def gap(out, t0, t1, ts=None):
    ticks = []
    with open(out) as f:
        for line in f:
            w = line.split()
            try:
                ticks.append((float(w[0]), int(w[2]), float(w[3])))
            except (IndexError, ValueError):
                continue
    ticks.sort(key=lambda x: (x[0], x[1]))
    before = [k for k, x in enumerate(ticks) if x[0] < t0]
    after = [k for k, x in enumerate(ticks) if x[0] > t1]
    if not before or not after:
        print("-1 0 0 0 0 0 0 0")
        return
    lo, hi = before[-1], after[0]
    best = (0.0, lo, lo + 1)
    for k in range(lo, hi):
        d = ticks[k + 1][0] - ticks[k][0]
        if d > best[0]:
            best = (d, k, k + 1)
    base = 0.0
    for k in range(0, lo):
        if ticks[k][0] >= t0 - 1.0:
            base = max(base, ticks[k + 1][0] - ticks[k][0])
    lost = sum(max(0, ticks[k + 1][1] - ticks[k][1] - 1) for k in range(lo, hi))
    a, b = ticks[best[1]], ticks[best[2]]
    around = 0.0
    if ts is not None:
        for k in range(lo, hi):
            if ticks[k][0] <= ts < ticks[k + 1][0]:
                around = ticks[k + 1][0] - ticks[k][0]
    print("%.1f %d %d %.0f %.1f %d %.0f %.1f" % (best[0] * 1000, a[1], b[1],
                                                 (b[2] - a[2]) * 1000, base * 1000, lost,
                                                 (a[0] - t0) * 1000, around * 1000))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "watch":
        watch(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) in (5, 6) and sys.argv[1] == "gap":
        gap(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]),
            float(sys.argv[5]) if len(sys.argv) == 6 else None)
    else:
        sys.exit(__doc__)
