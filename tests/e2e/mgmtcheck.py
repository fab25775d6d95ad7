#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""mgmtcheck.py: checks of scenarios-mgmt.sh on the management clients'
results (nova-client.py, vdsm-client.py) and the agents' records.

  get RESULT EXPR          print EXPR (Python, r: the result) of RESULT
  stats RESULT             the job statistics the client read while the job
                           had memory statistics are possible: iterations and processed never fall, remaining
                           within total and never 0 while a later sample
                           shows data remaining, total at least 192 MiB,
                           expected downtime within 0..60000 ms; prints a
                           summary; exit 1 with the reason otherwise
  rate RECORDS LIMIT_MIB   the newest source record in the directory
                           RECORDS: the sealed rate over its first epoch
                           (the whole memory, capped) from its samples;
                           prints "MEASURED_MIBS RATIO SPAN_S"; exit 1
                           outside LIMIT +-10 % or with less than 1 s of
                           samples
"""

import glob
import json
import os
import sys

MIB = 1024 * 1024
ACTIVE = 2  # VIR_DOMAIN_JOB_UNBOUNDED


def load(path):
    with open(path) as f:
        return json.load(f)


def cmd_get(path, expr):
    r = load(path)
    print(eval(expr, {"r": r}))  # noqa: S307 (the lab's own expressions)
    return 0


def cmd_stats(path):
    r = load(path)
    # libvirt's job has no memory statistics before QEMU's (or the relay's)
    # first answer to query-migrate: those samples say nothing.
    s = [x for x in r.get("samples", []) if x.get("type") == ACTIVE and x.get("memory_total", 0) > 0]
    if not s:
        print("no active job sample with memory statistics")
        return 1
    prob = []
    for a, b in zip(s, s[1:]):
        if b.get("memory_iteration", 0) < a.get("memory_iteration", 0):
            prob.append("iterations fell from %d to %d at %.1f s" %
                        (a["memory_iteration"], b["memory_iteration"], b["at_s"]))
        if b.get("memory_processed", 0) < a.get("memory_processed", 0):
            prob.append("processed fell from %d to %d at %.1f s" %
                        (a["memory_processed"], b["memory_processed"], b["at_s"]))
    for i, x in enumerate(s):
        tot, rem = x.get("memory_total", 0), x.get("memory_remaining", 0)
        if tot < 192 * MIB:
            prob.append("total %d below the guest's 192 MiB at %.1f s" % (tot, x["at_s"]))
        if rem > tot:
            prob.append("remaining %d above total %d at %.1f s" % (rem, tot, x["at_s"]))
        if rem == 0 and any(y.get("memory_remaining", 0) > 0 for y in s[i + 1:]):
            prob.append("remaining 0 at %.1f s although data remained later" % x["at_s"])
        dt = x.get("downtime")
        if dt is not None and not 0 <= dt <= 60000:
            prob.append("expected downtime %d ms at %.1f s" % (dt, x["at_s"]))
    its = [x.get("memory_iteration", 0) for x in s]
    dts = [x.get("downtime") for x in s if x.get("downtime") is not None]
    line = "%d samples, iterations %d..%d, remaining %d..%d MiB, expected downtime %s ms" % (
        len(s), min(its), max(its),
        min(x.get("memory_remaining", 0) for x in s) // MIB,
        max(x.get("memory_remaining", 0) for x in s) // MIB,
        "%d..%d" % (min(dts), max(dts)) if dts else "-")
    if prob:
        print("; ".join(prob[:5]) + " (" + line + ")")
        return 1
    print(line)
    return 0


def cmd_rate(records, limit):
    recs = []
    for f in glob.glob(os.path.join(records, "*.json")):
        try:
            r = load(f)
        except (OSError, ValueError):
            continue
        if r.get("role") == "source":
            recs.append((os.path.getmtime(f), r))
    if not recs:
        print("no source record")
        return 1
    r = max(recs, key=lambda x: x[0])[1]
    smp = r.get("samples", [])
    if not smp:
        print("the record has no samples")
        return 1
    first = min(x[3] for x in smp)
    ep = [x for x in smp if x[3] == first]
    span = (ep[-1][0] - ep[0][0]) / 1000.0
    if span < 1.0:
        print("first epoch sampled over %.2f s only" % span)
        return 1
    rate = (ep[-1][1] - ep[0][1]) / span / MIB
    ratio = rate / limit
    print("%.1f %.3f %.1f" % (rate, ratio, span))
    return 0 if 0.9 <= ratio <= 1.1 else 1


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "get":
        return cmd_get(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 3 and sys.argv[1] == "stats":
        return cmd_stats(sys.argv[2])
    if len(sys.argv) == 4 and sys.argv[1] == "rate":
        return cmd_rate(sys.argv[2], float(sys.argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
