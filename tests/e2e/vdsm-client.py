#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""vdsm-client.py: a live migration the way oVirt's VDSM drives it with the
engine's migration policies (tests/e2e/scenarios-mgmt.sh, docs/lab.rst).

Written for libvirt-coco from oVirt's documented behaviour (the engine's
migration policies and VDSM's migration monitor); no VDSM code. What it
reproduces:

- the flags: VIR_MIGRATE_LIVE | PEER2PEER | ABORT_ON_ERROR, plus
  AUTO_CONVERGE (all three policies ask for it), COMPRESSED ("Suspend
  workload if needed" asks for it), POSTCOPY with the "Post-copy
  migration" policy, PARALLEL with parallel migration connections
  (--parallel N);
- virDomainMigrateToURI3(dest, params, flags) on a thread, params:
  bandwidth (MiB/s), destination_xml, and parallel.connections with
  --parallel;
- the convergence schedule of the policy, run by a monitor that reads
  virDomainGetJobStats every --interval s (VDSM's
  migration_monitor_interval; 10 s by default, 1 s in the lab):
  the initial items when the migration starts (setDowntime 100 ms:
  virDomainMigrateSetMaxDowntime); then, each time the memory iteration
  count grows, the stalling count is the number of iterations since the
  first one seen, and the schedule's next item runs (one per new
  iteration) when its stalling limit is below that count: setDowntime 150,
  200, 300, 400, 500 ms at limits 1, 2, 3, 4, 6 (the post-copy policy:
  150, 200 at 1, 2); then the policy's last items, one per further
  iteration: "Minimal downtime" abort (virDomainAbortJob); "Suspend
  workload if needed" setDowntime 5000 ms (a longer pause of the guest at
  the switchover: the "suspend" of its name), then abort; "Post-copy
  migration" the switch to post-copy (virDomainMigrateStartPostCopy), then
  abort;
- VDSM's limits: no progress (remaining memory not below its low mark) for
  --progress-timeout s aborts; more than --max-time-per-gib s per GiB of
  RAM aborts;
- cancel (--cancel-after): virDomainAbortJob.

It prints one JSON object on stdout as nova-client.py does ("ok",
"error", "actions", "samples", "wall_s").
"""

import argparse
import json
import sys
import threading
import time

import libvirt

GIB = 1024 * 1024 * 1024

# The engine's shipped policies: initial items, stalling items (limit,
# downtime ms) and the last items.
POLICIES = {
    "minimal": {
        "name": "Minimal downtime",
        "postcopy": False,
        "compressed": False,
        "init": [("setDowntime", 100)],
        "stalling": [(1, 150), (2, 200), (3, 300), (4, 400), (6, 500)],
        "last": [("abort", None)],
    },
    "suspend": {
        "name": "Suspend workload if needed",
        "postcopy": False,
        "compressed": True,
        "init": [("setDowntime", 100)],
        "stalling": [(1, 150), (2, 200), (3, 300), (4, 400), (6, 500)],
        "last": [("setDowntime", 5000), ("abort", None)],
    },
    "postcopy": {
        "name": "Post-copy migration",
        "postcopy": True,
        "compressed": False,
        "init": [("setDowntime", 100)],
        "stalling": [(1, 150), (2, 200)],
        "last": [("postcopy", None), ("abort", None)],
    },
}


def quiet_errors(_ctx, _err):
    pass


class Migration:
    def __init__(self, args):
        self.args = args
        self.policy = POLICIES[args.policy]
        self.src = libvirt.open(args.src)
        self.dom = self.src.lookupByName(args.domain)
        self.actions = []
        self.samples = []
        self.error = None
        self.done = threading.Event()
        self.t0 = None
        # Read before the migration: the source's domain is gone after it.
        self.mem_gib = self.dom.maxMemory() * 1024 / GIB

    def flags(self):
        f = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER |
             libvirt.VIR_MIGRATE_ABORT_ON_ERROR | libvirt.VIR_MIGRATE_AUTO_CONVERGE)
        if self.policy["postcopy"]:
            f |= libvirt.VIR_MIGRATE_POSTCOPY
        if self.policy["compressed"]:
            f |= libvirt.VIR_MIGRATE_COMPRESSED
        if self.args.parallel:
            f |= libvirt.VIR_MIGRATE_PARALLEL
        return f

    def params(self):
        p = {
            libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: self.args.bandwidth,
            libvirt.VIR_MIGRATE_PARAM_DEST_XML: self.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE),
        }
        if self.args.parallel:
            p[libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS] = self.args.parallel
        return p

    def act(self, what, fn, *fargs):
        e = {"at_s": round(time.monotonic() - self.t0, 3), "action": what}
        try:
            fn(*fargs)
            e["ok"] = True
        except libvirt.libvirtError as ex:
            e["ok"] = False
            e["error"] = ex.get_error_message()
        self.actions.append(e)
        return e["ok"]

    def item(self, action, param):
        if action == "setDowntime":
            self.act("setDowntime %d" % param, self.dom.migrateSetMaxDowntime, param, 0)
        elif action == "postcopy":
            self.act("postcopy: migrateStartPostCopy", self.dom.migrateStartPostCopy, 0)
        elif action == "abort":
            self.act("abort: abortJob", self.dom.abortJob)

    def run_migration(self):
        try:
            self.dom.migrateToURI3(self.args.dst, self.params(), self.flags())
        except libvirt.libvirtError as ex:
            self.error = ex.get_error_message()
        finally:
            self.done.set()

    def sample(self):
        try:
            st = self.dom.jobStats()
        except libvirt.libvirtError:
            return None
        keep = ("type", "time_elapsed", "memory_total", "memory_processed", "memory_remaining",
                "memory_iteration", "downtime", "memory_bps", "memory_dirty_rate")
        s = {k: st[k] for k in keep if k in st}
        s["at_s"] = round(time.monotonic() - self.t0, 3)
        self.samples.append(s)
        return s

    def monitor(self):
        a = self.args
        # The last items follow the stalling ones with limit -1: each runs
        # at the next new iteration.
        schedule = [(lim, ("setDowntime", ms)) for lim, ms in self.policy["stalling"]]
        schedule += [(-1, item) for item in self.policy["last"]]
        first_iter = last_iter = None
        lowmark = None
        lowmark_at = time.monotonic()
        max_time = a.max_time_per_gib * max(1.0, self.mem_gib)
        started = cancelled = ended = False
        while not self.done.wait(a.interval):
            s = self.sample()
            if s is None or s.get("type") != libvirt.VIR_DOMAIN_JOB_UNBOUNDED:
                continue
            now = time.monotonic()
            if not started:
                started = True
                for action, param in self.policy["init"]:
                    self.item(action, param)
            if a.cancel_after is not None and not cancelled and now - self.t0 >= a.cancel_after:
                cancelled = True
                self.act("cancel: abortJob", self.dom.abortJob)
            rem = s.get("memory_remaining")
            if rem is not None and (lowmark is None or rem < lowmark):
                lowmark, lowmark_at = rem, now
            if not ended and (now - lowmark_at > a.progress_timeout or now - self.t0 > max_time):
                ended = True
                self.act("limit: abortJob", self.dom.abortJob)
            it = s.get("memory_iteration")
            if it is None:
                continue
            if first_iter is None:
                first_iter = last_iter = it
                continue
            if it <= last_iter:
                continue
            last_iter = it
            count = it - first_iter
            if schedule and schedule[0][0] < count:
                action, param = schedule.pop(0)[1]
                self.item(action, param)

    def go(self):
        self.t0 = time.monotonic()
        th = threading.Thread(target=self.run_migration, daemon=True)
        th.start()
        self.monitor()
        th.join()
        res = {
            "client": "vdsm",
            "policy": self.policy["name"],
            "flags": self.flags(),
            "bandwidth": self.args.bandwidth,
            "ok": self.error is None,
            "error": self.error,
            "wall_s": round(time.monotonic() - self.t0, 3),
            "actions": self.actions,
            "samples": self.samples,
        }
        try:
            state, reason = self.dom.state()
            res.update({"source_state": state, "source_reason": reason})
        except libvirt.libvirtError:
            res["source_state"] = None
        return res


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", required=True, help="source libvirt URI")
    p.add_argument("--dst", required=True, help="destination libvirt URI (peer-to-peer)")
    p.add_argument("--domain", default="guest")
    p.add_argument("--policy", choices=sorted(POLICIES), default="minimal")
    p.add_argument("--bandwidth", type=int, default=52, help="MiB/s (the engine's default 52)")
    p.add_argument("--parallel", type=int, default=0, help="parallel migration connections")
    p.add_argument("--interval", type=float, default=10.0, help="migration_monitor_interval, s")
    p.add_argument("--progress-timeout", type=float, default=240.0, help="migration_progress_timeout, s")
    p.add_argument("--max-time-per-gib", type=float, default=64.0, help="migration_max_time_per_gib_mem, s")
    p.add_argument("--cancel-after", type=float, help="s: the operator's cancel")
    args = p.parse_args()
    libvirt.registerErrorHandler(quiet_errors, None)
    res = Migration(args).go()
    json.dump(res, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
