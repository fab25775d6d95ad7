#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""nova-client.py: a live migration the way OpenStack Nova's libvirt driver
does it (tests/e2e/scenarios-mgmt.sh, docs/lab.rst).

Written for libvirt-coco from Nova's documented behaviour (nova.conf's
[libvirt] live_migration_* options, Nova 26 as Debian 12 ships it); no
Nova code. What it reproduces:

- the flags: VIR_MIGRATE_LIVE | PEER2PEER | UNDEFINE_SOURCE | PERSIST_DEST,
  plus POSTCOPY with live_migration_permit_post_copy, AUTO_CONVERGE with
  live_migration_permit_auto_converge (not with post-copy), TUNNELLED with
  live_migration_tunnelled;
- one call, virDomainMigrateToURI3(dest, params, flags), on a thread, with
  params bandwidth (live_migration_bandwidth, MiB/s, 0: the hypervisor's
  default), destination_xml and persistent_xml (the domain's migratable
  XML);
- the monitor loop, every 0.5 s while the call runs: virDomainGetJobStats;
  the downtime steps (live_migration_downtime / _steps / _delay, the delay
  scaled by the data size in GiB, at least 2): step i at delay*i s sets
  virDomainMigrateSetMaxDowntime(base + offset*i) with base =
  downtime/steps, offset = (downtime - base)/steps; the completion timeout
  (live_migration_completion_timeout * data GiB) with
  live_migration_timeout_action abort (virDomainAbortJob) or
  force_complete; the operator's force-complete (--force-complete-after):
  virDomainMigrateStartPostCopy when post-copy is permitted, otherwise
  virDomainSuspend (and a resume on the source if the migration fails);
  the operator's abort (--abort-after): virDomainAbortJob.

It prints one JSON object on stdout: the flags and params, "ok" and
"error" (the migration call's libvirt error), "actions" (each control
applied, when, and libvirt's answer), "samples" (the job statistics the
monitor read), "wall_s", and where the domain is afterwards.
"""

import argparse
import json
import sys
import threading
import time

import libvirt

GIB = 1024 * 1024 * 1024


def quiet_errors(_ctx, _err):
    pass


class Migration:
    def __init__(self, args):
        self.args = args
        self.src = libvirt.open(args.src)
        self.dom = self.src.lookupByName(args.domain)
        self.actions = []
        self.samples = []
        self.error = None
        self.done = threading.Event()
        self.t0 = None
        self.paused_by_us = False
        # Read before the migration: the source's domain is gone after it.
        self.mem_gib = self.dom.maxMemory() * 1024 / GIB
        self.steps = self.downtime_steps()

    def flags(self):
        a = self.args
        f = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER |
             libvirt.VIR_MIGRATE_UNDEFINE_SOURCE | libvirt.VIR_MIGRATE_PERSIST_DEST)
        if a.tunnelled:
            f |= libvirt.VIR_MIGRATE_TUNNELLED
        if a.permit_post_copy:
            f |= libvirt.VIR_MIGRATE_POSTCOPY
        elif a.permit_auto_converge:
            f |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
        if a.parallel:
            # Not a Nova option: for the lab's refusal check only.
            f |= libvirt.VIR_MIGRATE_PARALLEL
        return f

    def params(self):
        xml = self.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
        return {
            libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: self.args.bandwidth,
            libvirt.VIR_MIGRATE_PARAM_DEST_XML: xml,
            libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: xml,
        }

    def data_gb(self):
        # Nova counts the flavor's RAM in GiB, at least 2 (and no disks
        # here: no block migration).
        return max(2, self.mem_gib)

    def downtime_steps(self):
        a = self.args
        delay = int(a.downtime_delay * self.data_gb())
        base = a.downtime / a.downtime_steps
        offset = (a.downtime - base) / a.downtime_steps
        return [(int(delay * i), int(base + offset * i)) for i in range(a.downtime_steps + 1)]

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

    def run_migration(self):
        try:
            self.dom.migrateToURI3(self.args.dst, self.params(), self.flags())
        except libvirt.libvirtError as ex:
            self.error = ex.get_error_message()
        finally:
            self.done.set()

    def force_complete(self):
        if self.args.permit_post_copy:
            # Nova: switch to post-copy; a refusal is logged, the
            # migration goes on.
            self.act("force-complete: migrate-start-postcopy", self.dom.migrateStartPostCopy, 0)
        elif self.act("force-complete: suspend", self.dom.suspend):
            self.paused_by_us = True

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
        steps = self.steps
        completion = int(a.completion_timeout * self.data_gb())
        cur = None
        forced = aborted = False
        timed_out = False
        while not self.done.wait(a.interval):
            s = self.sample()
            if s is None or s.get("type") != libvirt.VIR_DOMAIN_JOB_UNBOUNDED:
                continue
            elapsed = time.monotonic() - self.t0
            if a.force_complete_after is not None and not forced and elapsed >= a.force_complete_after:
                forced = True
                self.force_complete()
            if a.abort_after is not None and not aborted and elapsed >= a.abort_after:
                aborted = True
                self.act("abort: abortJob", self.dom.abortJob)
            if completion and not timed_out and elapsed > completion:
                timed_out = True
                if a.timeout_action == "force_complete":
                    forced = True
                    self.force_complete()
                else:
                    self.act("completion timeout: abortJob", self.dom.abortJob)
            this = None
            for st in steps:
                if elapsed > st[0]:
                    this = st
            if this is not None and this[1] != cur:
                cur = this[1]
                self.act("downtime step: migrateSetMaxDowntime %d" % cur,
                         self.dom.migrateSetMaxDowntime, cur, 0)

    def where(self):
        try:
            state, reason = self.dom.state()
            return {"source_state": state, "source_reason": reason}
        except libvirt.libvirtError:
            return {"source_state": None}

    def go(self):
        self.t0 = time.monotonic()
        th = threading.Thread(target=self.run_migration, daemon=True)
        th.start()
        self.monitor()
        th.join()
        wall = round(time.monotonic() - self.t0, 3)
        res = {
            "client": "nova",
            "flags": self.flags(),
            "bandwidth": self.args.bandwidth,
            "downtime_steps": self.steps,
            "ok": self.error is None,
            "error": self.error,
            "wall_s": wall,
            "actions": self.actions,
            "samples": self.samples,
        }
        res.update(self.where())
        if self.error is not None and self.paused_by_us:
            # Nova's recovery task after a failed migration it paused.
            self.act("recover: resume", self.dom.resume)
        return res


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", required=True, help="source libvirt URI")
    p.add_argument("--dst", required=True, help="destination libvirt URI (peer-to-peer)")
    p.add_argument("--domain", default="guest")
    p.add_argument("--bandwidth", type=int, default=0, help="live_migration_bandwidth, MiB/s")
    p.add_argument("--downtime", type=int, default=500, help="live_migration_downtime, ms")
    p.add_argument("--downtime-steps", type=int, default=10)
    p.add_argument("--downtime-delay", type=int, default=75, help="s per GiB")
    p.add_argument("--completion-timeout", type=int, default=800, help="s per GiB, 0: none")
    p.add_argument("--timeout-action", choices=("abort", "force_complete"), default="abort")
    p.add_argument("--permit-post-copy", action="store_true")
    p.add_argument("--permit-auto-converge", action="store_true")
    p.add_argument("--tunnelled", action="store_true")
    p.add_argument("--parallel", action="store_true")
    p.add_argument("--force-complete-after", type=float, help="s: the operator's force-complete")
    p.add_argument("--abort-after", type=float, help="s: the operator's abort")
    p.add_argument("--interval", type=float, default=0.5, help="monitor period, s")
    args = p.parse_args()
    if args.downtime < 100 or args.downtime_steps < 3 or args.downtime_delay < 3:
        p.error("Nova's minimums: downtime 100, steps 3, delay 3")
    libvirt.registerErrorHandler(quiet_errors, None)
    res = Migration(args).go()
    json.dump(res, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
