#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The lab benchmark's summary (tests/e2e/bench.sh).

  benchsummary.py ROWS MIBS ROUNDS PRECOPY COMMAND

ROWS has one line per migration (bench.sh writes them): kind, direction,
then the columns below. For each guest size and dirtying workload it prints
the median and range of each figure per kind, the ratios of each
confidential kind to plain and the verdict against the goals of issue 13:
job time at most 1.2 x plain, downtime at most plain + 20 ms (libvirt's
figures and the guest's own pause), host memory after the migration at
most plain's + 64 MiB, each agent's anonymous memory at most 64 MiB
(medians; the agents' memory: the largest seen). Then one table over all
sizes, the one docs/performance.rst quotes.
"""
import statistics
import sys

COLS = ["wall", "job", "downtime", "qemu_bytes", "agent_bytes", "gap", "idle_gap",
        "gap_guest", "agent_xfer", "agent_down", "precopy", "switchover", "rounds",
        "scan", "gap_at", "sw_gap", "load", "mib", "dirty", "mem", "anon"]
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
          ("mem", "memory after (MiB)", 1024),
          ("anon", "agents' anon max (MiB)", 1024),
          ("load", "load average (1 min)", 1)]
AGENT_ONLY = ("agent_bytes", "agent_xfer", "precopy", "switchover", "scan",
              "agent_down", "sw_gap", "anon")


def med(data, k, c):
    v = [x for x in data.get(k, {}).get(c, []) if x >= 0]
    return statistics.median(v) if v else None


def rng(data, k, c, scale):
    v = [x / scale for x in data[k][c] if x >= 0]
    if not v:
        return "n/a"
    f = "%.1f" if scale > 1 or c == "load" else "%.0f"
    return (f + " (" + f + "-" + f + ")") % (statistics.median(v), min(v), max(v))


def verdicts(data, k):
    """(label, ratio text, ok) per goal, or None when not measured."""
    out = []
    p, q = med(data, "plain", "job"), med(data, k, "job")
    out.append(("job elapsed", p, q, "x", None if p is None or q is None else q <= 1.2 * p,
                "<= 1.2 x plain"))
    for c, label in (("downtime", "job downtime"), ("gap", "guest pause")):
        p, q = med(data, "plain", c), med(data, k, c)
        out.append((label, p, q, "+", None if p is None or q is None else q <= p + 20,
                    "<= plain + 20 ms"))
    p, q = med(data, "plain", "mem"), med(data, k, "mem")
    out.append(("memory after", p, q, "+", None if p is None or q is None else q <= p + 65536,
                "<= plain + 64 MiB"))
    a = max(data[k]["anon"]) if data[k]["anon"] else None
    out.append(("agents' anon", None, a, "", None if a is None else a <= 65536,
                "<= 64 MiB"))
    return out


def main():
    rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
    groups = {}
    for r in rows:
        vals = dict(zip(COLS, [float(v) for v in r[2:]]))
        key = (int(vals.get("mib", 0)), int(vals.get("dirty", 0)))
        data = groups.setdefault(key, {})
        data.setdefault(r[0], {c: [] for c in COLS})
        for c in COLS:
            if c in vals:
                data[r[0]][c].append(vals[c])
    print("lab benchmark: sizes %s MiB, 1 vCPU, TCG, %s rounds, precopy_rounds %s; "
          "confidential command: %s" % (sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]))
    ok_all = True
    table = []
    for key in sorted(groups):
        data = groups[key]
        kinds = sorted(data, key=lambda k: (k != "plain", k))
        n = len(data[kinds[0]]["wall"])
        print("\n== %d MiB guest, dirtying %d %% of its memory (%d migrations per kind)" %
              (key[0], key[1], n))
        if "plain" not in data or len(kinds) < 2:
            print("incomplete: no plain or no confidential migration")
            ok_all = False
            if "plain" in data:
                continue
        w = 22
        print("%-24s" % "median (min-max)" + "".join("  %-*s" % (w, k) for k in kinds))
        for c, label, scale in LABELS:
            cells = ["--" if k == "plain" and c in AGENT_ONLY else rng(data, k, c, scale)
                     for k in kinds]
            print("%-24s" % label + "".join("  %-*s" % (w, x) for x in cells))
        for k in (kinds[1:] if "plain" in data else kinds):
            table.append((key, k, data))
            if "plain" not in data:
                continue
            print("%s against plain (medians):" % k)
            for label, p, q, how, ok, goal in verdicts(data, k):
                if ok is None:
                    print("  %-14s not measured" % label)
                    continue
                ok_all &= ok
                if how == "x":
                    txt = "%.2f x (%.0f / %.0f ms)" % (q / p if p else float("inf"), q, p)
                elif how == "+" and label == "memory after":
                    txt = "%+.0f MiB (%.0f / %.0f MiB)" % ((q - p) / 1024, q / 1024, p / 1024)
                elif how == "+":
                    txt = "%+.0f ms (%.0f / %.0f ms)" % (q - p, q, p)
                else:
                    txt = "%.1f MiB" % (q / 1024)
                print("  %-14s %s; goal %s: %s" % (label, txt, goal, "met" if ok else "MISSED"))
    if table:
        print("\n%-6s %-6s %-13s %-17s %-15s %-15s %-15s %-13s %-9s %-6s" %
              ("MiB", "dirty", "kind", "job conf/plain", "downtime c/p", "pause c/p",
               "memory after c/p", "sealed/QEMU", "anon max", "load"))
        for key, k, data in table:
            def m(kind, c, scale=1):
                v = med(data, kind, c)
                return "n/a" if v is None else "%.0f" % (v / scale)
            print("%-6d %-6d %-13s %-17s %-15s %-15s %-15s %-13s %-9s %-6s" %
                  (key[0], key[1], k,
                   "%s/%s" % (m(k, "job"), m("plain", "job")),
                   "%s/%s" % (m(k, "downtime"), m("plain", "downtime")),
                   "%s/%s" % (m(k, "gap"), m("plain", "gap")),
                   "%s/%s" % (m(k, "mem", 1024), m("plain", "mem", 1024)),
                   "%s/%s" % (m(k, "agent_bytes", 1048576), m("plain", "qemu_bytes", 1048576)),
                   "%.0f" % (max(data[k]["anon"]) / 1024) if data[k]["anon"] else "n/a",
                   "%.1f" % statistics.median(data[k]["load"] + data.get("plain", {}).get("load", []))))
    print("verdict: %s" % ("all goals met" if ok_all else "a goal is missed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
