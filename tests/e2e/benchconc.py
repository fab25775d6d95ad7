#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The concurrent-migrations benchmark's helpers (tests/e2e/bench-concurrent.sh).

  benchconc.py record DIR DOMAIN T0   the source record of DOMAIN in DIR
                                      (an agent's state directory) started
                                      after T0 (seconds since the epoch) and
                                      finished: "switchover_ms final_ms
                                      transfer_ms switchover_at"; exit 1
                                      while there is none
  benchconc.py switch TICKS           the guest's pause across the switch:
                                      from its last tick on the source to
                                      its first on the destination (ms;
                                      TICKS as tickgap.py watch writes it,
                                      the source's console first); -1 when
                                      either is missing
  benchconc.py summary ROWS CORES     medians, ranges and the verdict
  benchconc.py split LOGS ROWS        where the switchovers' time went, per
                                      case: LOGS is the lab's kept logs
                                      (COCO_LAB_CACHE/logs: the agents'
                                      logs, the relays' QMP logs)

"downtime - switchover" is the part of libvirt's downtime outside the
source agent's switchover step (QEMU, libvirt, the relay and the agents'
main threads): what grows there when migrations wait for each other.

ROWS (bench-concurrent.sh writes them), one line per migration:
  mig KIND CASE N EVENT GUEST DIR wall job downtime pause idle_pause
      switch_pause switchover_ms final_ms transfer_ms switchover_at load
(KIND: confidential, or plain for the reference guests, whose agent
figures are -1)
("pause" is the longest interval between two ticks during the migration,
wherever it fell: on a loaded machine the precopy's CPU work starves the
guest's vCPU too; "switch_pause" is the one across the switch, the
guest-side downtime.)
and one per event:
  cpu KIND CASE N EVENT wall_ms agents_cpu_ms machine_busy_permille load

The goal (issue 11): each guest's downtime in a case of N concurrent
migrations at most 1.2 x its own single-migration downtime (median of its
"single" migrations in the same run) divided by its CPU share, where N
migrations on CORES cores each get min(1, CORES / N) of the machine; checked
on medians, for libvirt's downtime and for the guest's pause across the
switch. The plain guests' ratios, from the same events in the same run,
are what concurrency costs QEMU and libvirt without the agents; the last
lines set each case's confidential ratio against plain's.
"""
import datetime
import glob
import json
import os
import re
import statistics
import sys

MIG = ["line", "kind", "case", "n", "event", "guest", "dir", "wall", "job", "downtime",
       "pause", "idle", "switch", "switchover", "final", "transfer", "sw_at",
       "load"]
CPU = ["line", "kind", "case", "n", "event", "wall", "agents", "busy", "load"]
CASES = ["single", "same-2", "cross-2", "same-4", "cross-4"]


def record(d, domain, t0):
    best = None
    for f in glob.glob(os.path.join(d, "*.json")):
        try:
            r = json.load(open(f))
        except (OSError, ValueError):
            continue
        if r.get("role") != "source" or r.get("domain") != domain:
            continue
        try:
            st = datetime.datetime.fromisoformat(r["started"].replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError):
            continue
        if st < t0 - 2.0:
            continue
        if best is None or st > best[0]:
            best = (st, r)
    if best is None or best[1].get("state") != "finished":
        return 1
    st, r = best
    c, tl = r.get("counters", {}), r.get("timeline", [])
    sw = [e for e in tl if e["event"] == "pre-switchover"]
    print(round(sw[0]["duration_ms"]) if sw else 0, round(c.get("downtime_us", 0) / 1000),
          r.get("transfer", {}).get("elapsed_ms", 0),
          "%.6f" % (st + sw[0]["at_ms"] / 1000) if sw else 0)
    return 0


def switch(path):
    last_src, first_dst = None, None
    for line in open(path):
        w = line.split()
        try:
            t, f = float(w[0]), int(w[1])
        except (IndexError, ValueError):
            continue
        if f == 0 and (last_src is None or t > last_src):
            last_src = t
        if f == 1 and (first_dst is None or t < first_dst):
            first_dst = t
    if last_src is None or first_dst is None or first_dst < last_src:
        print(-1)
    else:
        print("%.1f" % ((first_dst - last_src) * 1000))
    return 0


def logtime(day, hms):
    h, m, x = hms.split(":")
    return day + int(h) * 3600 + int(m) * 60 + float(x)


def split(logs, rows):
    """For every source migration: the relay's QMP log (libvirt's
    migrate-continue reaching the relay, the relay forwarding it to QEMU,
    QEMU's pre-switchover event) against the agent's log (its worker
    starting and ending the pre-switchover step, releasing the gate).
    The agents' log lines carry the time of day: the day is the rows'."""
    cases = []
    for line in open(rows):
        w = line.split()
        if w and w[0] == "mig":
            if w[1] == "confidential":
                cases.append((w[5], float(w[16]), w[2], float(w[9])))
    if not cases:
        return 1
    t0 = max(c[1] for c in cases)
    day = datetime.datetime.fromtimestamp(t0, datetime.timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0).timestamp()
    mig = {}
    for f in glob.glob(os.path.join(logs, "virtcocod-*.log")):
        host = os.path.basename(f)[len("virtcocod-"):-len(".log")]
        for line in open(f, errors="replace"):
            m = re.match(r"\S+: (\d+:\d+:[0-9.]+): migration=(\S+) .*role=source (.*)", line)
            if not m:
                continue
            t, mid, rest = logtime(day, m.group(1)), m.group(2), m.group(3)
            d = mig.setdefault(mid, {"host": host, "dom": mid.split("-source-")[0]})
            if "event=pre-switchover" in rest:
                dur = float(re.search(r"duration_ms=([0-9.]+)", rest).group(1)) / 1000
                d["start"], d["end"] = t - dur, t
            elif "gate=migrate-continue verdict=release" in rest:
                d["release"] = t
    qmp = {}
    for f in glob.glob(os.path.join(logs, "host*", "qemu", "*-qmp.log")):
        host = f.split(os.sep)[-3][len("host"):]
        q = qmp.setdefault((host, os.path.basename(f)[:-len("-qmp.log")]),
                           {"ask": [], "fwd": [], "stop": []})
        for line in open(f, errors="replace"):
            w = line.split(" ", 3)
            if len(w) < 4:
                continue
            if '"migrate-continue"' in w[3] and w[2] in ("L>R", "L>Q"):
                q["ask" if w[2] == "L>R" else "fwd"].append(float(w[0]))
            elif w[2] == "Q>L" and '"MIGRATION"' in w[3] and '"pre-switchover"' in w[3]:
                q["stop"].append(float(w[0]))
    out = {}
    for mid, d in mig.items():
        q = qmp.get((d["host"], d["dom"]))
        if not q or "start" not in d or "release" not in d:
            continue
        ask = max([t for t in q["ask"] if t <= d["start"] + 0.001], default=None)
        fwd = min([t for t in q["fwd"] if t >= d["release"] - 0.001], default=None)
        stop = max([t for t in q["stop"] if t <= d["start"] + 0.001], default=None)
        if ask is None or fwd is None or stop is None:
            continue
        c = min((x for x in cases if x[0] == d["dom"]), key=lambda x: abs(x[1] - d["start"]),
                default=None)
        if c is None or abs(c[1] - d["start"]) > 10:
            continue
        out.setdefault(c[2], []).append(
            [(ask - stop) * 1000, (d["start"] - ask) * 1000, (d["end"] - d["start"]) * 1000,
             (d["release"] - d["end"]) * 1000, (fwd - d["release"]) * 1000,
             (fwd - stop) * 1000, c[3]])
    print("Where the switchover's time went, ms, median (max): QEMU stopped -> libvirt's "
          "migrate-continue at the relay | -> the agent's worker starts (the main thread "
          "dispatching) | the worker's pre-switchover step | -> the destination confirms | "
          "release -> the relay forwards (the main thread) | QEMU stopped -> forwarded ; "
          "libvirt's downtime")
    for case in CASES:
        v = out.get(case)
        if not v:
            continue
        print("%-8s %3d  %s" % (case, len(v), " | ".join(
            "%4.0f (%4.0f)" % (statistics.median(x[i] for x in v), max(x[i] for x in v))
            for i in range(7))))
    return 0


def med(v):
    return statistics.median(v) if v else None


def rng(v, f="%.0f"):
    v = [x for x in v if x >= 0]
    if not v:
        return "n/a"
    return (f + " (" + f + "-" + f + ")") % (statistics.median(v), min(v), max(v))


def summary(path, cores):
    mig, cpu = [], []
    for line in open(path):
        w = line.split()
        if not w:
            continue
        if w[0] == "mig":
            r = dict(zip(MIG, w))
            for k in MIG[7:]:
                r[k] = float(r[k])
            r["n"] = int(r["n"])
            mig.append(r)
        elif w[0] == "cpu":
            r = dict(zip(CPU, w))
            for k in CPU[5:]:
                r[k] = float(r[k])
            r["n"] = int(r["n"])
            cpu.append(r)
    worst = {}
    for kind in ("confidential", "plain"):
        km = [r for r in mig if r["kind"] == kind]
        if km:
            worst[kind] = kind_table(kind, km, [c for c in cpu if c["kind"] == kind], cores)
            print()
    if len(worst) == 2:
        print("Confidential against plain, the same events in the same run: median downtime and "
              "switch pause (ms), and the worst guest's ratio to its own single migrations:")
        for case in CASES:
            c, p = worst["confidential"].get(case), worst["plain"].get(case)
            if not c or not p:
                continue
            print("  %-8s downtime %4.0f / %4.0f (ratio %s / %s); switch pause %4.0f / %4.0f (ratio %s / %s)" % (
                case, c["downtime_med"], p["downtime_med"], fmt_ratio(c["downtime"]),
                fmt_ratio(p["downtime"]), c["switch_med"], p["switch_med"],
                fmt_ratio(c["switch"]), fmt_ratio(p["switch"])))
    return 0


def fmt_ratio(w):
    return "%.2f" % w[0] if w else "n/a"


def kind_table(kind, mig, cpu, cores):
    """Print one kind's table; return per case its medians and worst ratios."""
    guests = sorted({r["guest"] for r in mig})
    ref = {}
    for g in guests:
        s = [r for r in mig if r["case"] == "single" and r["guest"] == g]
        ref[g] = {c: med([r[c] for r in s if r[c] >= 0]) for c in ("downtime", "switch", "switchover")}
    agents = kind == "confidential"

    if agents:
        print("Concurrent confidential migrations: %d cores; a migration's CPU share with N at once is "
              "min(1, %d/N); goal: each guest's median <= 1.2 x its single median / share" % (cores, cores))
    else:
        print("Concurrent plain migrations (the reference: QEMU and libvirt without the agents), "
              "the same events and bound")
    print()
    hdr = ("case", "N", "migr.", "downtime ms", "switch pause ms", "longest pause ms", "job ms",
           "agent switchover ms",
           "downtime - switchover",
           "agents CPU ms/migr.", "agents cores", "machine busy %", "load",
           "worst downtime ratio", "worst switch pause ratio", "bound", "verdict")
    table = []
    out = {}
    for case in CASES:
        rows = [r for r in mig if r["case"] == case]
        if not rows:
            continue
        n = rows[0]["n"]
        share = min(1.0, cores / n)
        bound = 1.2 / share
        ev = [c for c in cpu if c["case"] == case]
        cpu_per = [c["agents"] / c["n"] for c in ev]
        cores_used = [c["agents"] / c["wall"] for c in ev if c["wall"] > 0]
        busy = [c["busy"] / 10 for c in ev]
        load = [c["load"] for c in ev]
        worst = {}
        ok = True
        for c in ("downtime", "switch"):
            ratios = []
            for g in guests:
                v = [r[c] for r in rows if r["guest"] == g and r[c] >= 0]
                if not v or not ref[g][c]:
                    continue
                ratios.append((med(v) / ref[g][c], g))
            worst[c] = max(ratios) if ratios else None
            if case != "single" and (worst[c] is None or worst[c][0] > bound):
                ok = False
        out[case] = {"downtime": worst["downtime"], "switch": worst["switch"],
                     "downtime_med": med([r["downtime"] for r in rows if r["downtime"] >= 0]) or 0,
                     "switch_med": med([r["switch"] for r in rows if r["switch"] >= 0]) or 0}
        na = "-"
        table.append((
            case, str(n), str(len(rows)), rng([r["downtime"] for r in rows]),
            rng([r["switch"] for r in rows]), rng([r["pause"] for r in rows]),
            rng([r["job"] for r in rows]),
            rng([r["switchover"] for r in rows]) if agents else na,
            rng([r["downtime"] - r["switchover"] for r in rows if r["downtime"] >= 0]) if agents else na,
            rng(cpu_per) if agents else na, rng(cores_used, "%.2f") if agents else na,
            rng(busy), rng(load, "%.1f"),
            "%.2f (%s)" % worst["downtime"] if worst["downtime"] else "n/a",
            "%.2f (%s)" % worst["switch"] if worst["switch"] else "n/a",
            "-" if case == "single" else "%.1f x" % bound,
            "reference" if case == "single" else ("met" if ok else "missed")))
    for i, h in enumerate(hdr):
        print("%-24s %s" % (h, "  ".join("%-26s" % t[i] for t in table)))
    print()
    print("Per guest, median downtime / switch pause (ms) and the ratio to its own single migrations:")
    for g in guests:
        cells = []
        for case in CASES:
            rows = [r for r in mig if r["case"] == case and r["guest"] == g]
            if not rows:
                continue
            d = med([r["downtime"] for r in rows if r["downtime"] >= 0])
            p = med([r["switch"] for r in rows if r["switch"] >= 0])
            if case == "single":
                cells.append("single %.0f / %.0f" % (d, p))
            else:
                cells.append("%s %.0f / %.0f (%.2f / %.2f)" % (
                    case, d, p, d / ref[g]["downtime"] if d and ref[g]["downtime"] else 0,
                    p / ref[g]["switch"] if p and ref[g]["switch"] else 0))
        print("  %s: %s" % (g, "; ".join(cells)))
    return out


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "record":
        sys.exit(record(sys.argv[2], sys.argv[3], float(sys.argv[4])))
    elif len(sys.argv) == 3 and sys.argv[1] == "switch":
        sys.exit(switch(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "summary":
        sys.exit(summary(sys.argv[2], int(sys.argv[3])))
    elif len(sys.argv) == 4 and sys.argv[1] == "split":
        sys.exit(split(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
