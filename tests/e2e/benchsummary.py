#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The lab benchmark's summary (tests/e2e/bench.sh).

  benchsummary.py ROWS MIB ROUNDS PRECOPY COMMAND

ROWS has one line per migration (bench.sh writes them): kind, direction,
then the columns below. Prints the median and range of each figure per kind,
the ratios of each confidential kind to plain and the verdict against the
goals of a confidential migration: downtime at most 1.5 x plain + 50 ms,
total time at most 2 x plain (medians, both libvirt's figures and the
guest's own pause / the command's wall time).
"""
import statistics
import sys

COLS = ["wall", "job", "downtime", "qemu_bytes", "agent_bytes", "gap", "idle_gap",
        "gap_guest", "agent_xfer", "agent_down", "precopy", "switchover", "rounds",
        "scan", "gap_at", "sw_gap", "load"]
LABELS = [("wall", "command wall (ms)", 1), ("job", "job elapsed (ms)", 1),
          ("downtime", "job downtime (ms)", 1), ("gap", "guest pause (ms)", 1),
          ("gap_at", " its start (ms in)", 1), ("idle_gap", "idle tick gap (ms)", 1),
          ("qemu_bytes", "QEMU stream (MiB)", 1048576),
          ("agent_bytes", "agents sealed (MiB)", 1048576),
          ("agent_xfer", "agents' transfer (ms)", 1),
          ("precopy", " copy + rounds (ms)", 1),
          ("switchover", " guest stopped (ms)", 1),
          ("scan", "  scan + fw check (ms)", 1),
          ("agent_down", "  last pages (ms)", 1),
          ("sw_gap", "pause at switchover", 1),
          ("load", "load average (1 min)", 1)]


def main():
    rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
    data = {}
    order = []
    for r in rows:
        if r[0] not in data:
            order.append(r[0])
            data[r[0]] = {c: [] for c in COLS}
        for c, v in zip(COLS, r[2:]):
            data[r[0]][c].append(float(v))
    kinds = sorted(order, key=lambda k: (k != "plain", k))
    n = len(data[kinds[0]]["wall"]) if kinds else 0
    print("lab benchmark: %s MiB guest, 1 vCPU, TCG, %s rounds (%d migrations per kind), "
          "precopy_rounds %s; confidential command: %s" %
          (sys.argv[2], sys.argv[3], n, sys.argv[4], sys.argv[5]))
    if "plain" not in data or len(kinds) < 2:
        print("incomplete: no plain or no confidential migration")
        return 1

    # -1: libvirt gave no such figure for that migration.
    def med(k, c):
        v = [x for x in data[k][c] if x >= 0]
        return statistics.median(v) if v else None

    def rng(k, c, scale):
        v = [x / scale for x in data[k][c] if x >= 0]
        if not v:
            return "n/a"
        f = "%.1f" if scale > 1 or c == "load" else "%.0f"
        return (f + " (" + f + "-" + f + ")") % (statistics.median(v), min(v), max(v))

    w = 22
    print("%-22s" % "median (min-max)" + "".join("  %-*s" % (w, k) for k in kinds))
    for c, label, scale in LABELS:
        cells = []
        for k in kinds:
            if k == "plain" and c in ("agent_bytes", "agent_xfer", "precopy", "switchover",
                                      "scan", "agent_down", "sw_gap"):
                cells.append("--")
            else:
                cells.append(rng(k, c, scale))
        print("%-22s" % label + "".join("  %-*s" % (w, x) for x in cells))
    ok_all = True
    unmeasured = False
    for k in kinds[1:]:
        print("%s against plain (medians):" % k)
        for c, label in (("downtime", "job downtime"), ("gap", "guest pause")):
            p, q = med("plain", c), med(k, c)
            if p is None or q is None:
                print("  %-13s not measured (no statistics from libvirt)" % label)
                unmeasured = True
                continue
            lim = 1.5 * p + 50
            ok = q <= lim
            ok_all &= ok
            print("  %-13s %.2f x (%.0f / %.0f ms); goal <= 1.5 x plain + 50 ms = %.0f ms: %s" %
                  (label, q / p if p else float("inf"), q, p, lim,
                   "met" if ok else "MISSED by %.0f ms" % (q - lim)))
        for c, label in (("job", "job elapsed"), ("wall", "command wall")):
            p, q = med("plain", c), med(k, c)
            if p is None or q is None:
                print("  %-13s not measured (no statistics from libvirt)" % label)
                unmeasured = True
                continue
            ok = q <= 2 * p
            ok_all &= ok
            print("  %-13s %.2f x (%.0f / %.0f ms); goal <= 2 x plain = %.0f ms: %s" %
                  (label, q / p if p else float("inf"), q, p, 2 * p,
                   "met" if ok else "MISSED by %.0f ms" % (q - 2 * p)))
    print("verdict: %s%s" % ("all goals met" if ok_all else "a goal is missed",
                             " (of those measured)" if unmeasured else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
