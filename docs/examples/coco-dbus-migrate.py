#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Start and watch a confidential migration through virtcocod's D-Bus API
# (docs/dbus.rst), the way OpenStack Nova or oVirt VDSM would: one
# Migrate() call with libvirt's migration parameters and flags, then the
# job object's signals until it completes. Only Gio (python3-gi) is needed.
#
#   coco-dbus-migrate.py [--session] [--live] [--migrate-uri URI]
#                        [--json] [--abort-at-phase PHASE] DOMAIN DEST_URI
#
# Exit status: 0 the guest runs on the destination, 1 the migration was
# refused, failed or cancelled, 2 usage. Ctrl-C aborts the migration.

import argparse
import json
import signal
import sys

import gi

gi.require_version("Gio", "2.0")
gi.require_version("GLib", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

NAME = "org.libvirtcoco.Agent1"
PATH = "/org/libvirtcoco/Agent1"
JOB = "org.libvirtcoco.Job1"
PROPS = "org.freedesktop.DBus.Properties"

# libvirt's virDomainMigrateFlags (libvirt-domain.h)
VIR_MIGRATE_LIVE = 1 << 0
VIR_MIGRATE_PEER2PEER = 1 << 1
VIR_MIGRATE_PERSIST_DEST = 1 << 3
VIR_MIGRATE_UNDEFINE_SOURCE = 1 << 4


class Watcher:
    def __init__(self, args, bus):
        self.args = args
        self.bus = bus
        self.loop = GLib.MainLoop()
        self.path = None
        self.early = []  # signals that came before Migrate() answered
        self.props = {}
        self.aborted = False
        self.result = 1
        self.last_progress = None

    # ---- output ----------------------------------------------------------
    def emit(self, event, text, **fields):
        if self.args.json:
            fields["event"] = event
            print(json.dumps(fields, sort_keys=True), flush=True)
        else:
            print(text, flush=True)

    # ---- the job's signals -------------------------------------------------
    def on_signal(self, conn, sender, path, iface, member, params):
        if self.path is None:
            self.early.append((path, iface, member, params))
            return
        self.handle(path, iface, member, params)

    def handle(self, path, iface, member, params):
        if path != self.path:
            return
        if iface == PROPS and member == "PropertiesChanged":
            _, changed, _ = params.unpack()
            self.props.update(changed)
            self.progress()
        elif iface == JOB and member == "PhaseChanged":
            (phase,) = params.unpack()
            self.props["Phase"] = phase
            self.emit("phase", "phase: %s" % phase, phase=phase)
            if phase == self.args.abort_at_phase:
                self.abort("--abort-at-phase %s" % phase)
        elif iface == JOB and member == "Completed":
            state, name, message = params.unpack()
            self.finish(state, name, message)

    def progress(self):
        p = self.props
        key = (p.get("Progress"), p.get("Epoch"))
        if key == self.last_progress or p.get("Progress") is None:
            return
        self.last_progress = key
        self.emit("progress",
                  "progress: %d %% (epoch %d, %d of %d MiB sent)" % (
                      p.get("Progress", 0), p.get("Epoch", 0),
                      p.get("DataProcessed", 0) >> 20,
                      p.get("DataTotal", 0) >> 20),
                  progress=p.get("Progress", 0), epoch=p.get("Epoch", 0),
                  data_processed=p.get("DataProcessed", 0),
                  data_total=p.get("DataTotal", 0))

    def finish(self, state, name, message):
        # The final numbers: one GetAll on the job.
        try:
            reply = self.bus.call_sync(NAME, self.path, PROPS, "GetAll",
                                       GLib.Variant("(s)", (JOB,)),
                                       GLib.VariantType("(a{sv})"),
                                       Gio.DBusCallFlags.NONE, 10000, None)
            self.props.update(reply.unpack()[0])
        except GLib.Error:
            pass
        p = self.props
        fields = dict(state=state, migration_id=p.get("MigrationId", ""),
                      downtime_ms=p.get("Downtime", 0),
                      data_processed=p.get("DataProcessed", 0),
                      epoch=p.get("Epoch", 0),
                      error={"name": name, "message": message} if name else None)
        if state == "completed":
            text = ("completed: migration %s, %d MiB sent sealed, %d epochs, "
                    "agents' downtime %d ms" % (
                        fields["migration_id"], fields["data_processed"] >> 20,
                        fields["epoch"] + 1, fields["downtime_ms"]))
            self.result = 0
        else:
            text = "%s: %s: %s" % (state, name, message)
        self.emit("result", text, **fields)
        self.loop.quit()

    # ---- calls ---------------------------------------------------------------
    def abort(self, why):
        if self.aborted or self.path is None:
            return
        self.aborted = True
        self.emit("abort", "aborting (%s)" % why, reason=why)
        self.bus.call(NAME, self.path, JOB, "Abort", None, None,
                      Gio.DBusCallFlags.NONE, 60000, None, self.on_abort)

    def on_abort(self, bus, res):
        try:
            bus.call_finish(res)
        except GLib.Error as e:
            self.emit("abort-refused", "abort refused: %s" % e.message,
                      message=e.message)

    def on_migrate(self, bus, res):
        try:
            (self.path,) = bus.call_finish(res).unpack()
        except GLib.Error as e:
            name = Gio.DBusError.get_remote_error(e) or ""
            message = e.message
            if message.startswith("GDBus.Error:%s: " % name):
                message = message[len("GDBus.Error:%s: " % name):]
            self.emit("result", "refused: %s: %s" % (name, message),
                      state="refused", error={"name": name,
                                              "message": message})
            self.loop.quit()
            return
        self.emit("job", "job %s: migrating %s to %s" % (
            self.path, self.args.domain, self.args.dest_uri),
                  path=self.path, domain=self.args.domain,
                  dest_uri=self.args.dest_uri)
        early, self.early = self.early, []
        for s in early:
            self.handle(*s)

    def on_sigint(self):
        self.abort("interrupted")
        return GLib.SOURCE_CONTINUE

    def run(self):
        a = self.args
        params = {}
        if a.migrate_uri:
            params["migrate_uri"] = GLib.Variant("s", a.migrate_uri)
        if a.bandwidth:
            params["bandwidth"] = GLib.Variant("t", a.bandwidth)
        if a.parallel_connections:
            params["parallel.connections"] = GLib.Variant(
                "i", a.parallel_connections)
        flags = VIR_MIGRATE_PEER2PEER
        if a.live:
            flags |= VIR_MIGRATE_LIVE
        if a.persistent:
            flags |= VIR_MIGRATE_PERSIST_DEST
        if a.undefine_source:
            flags |= VIR_MIGRATE_UNDEFINE_SOURCE
        # Subscribe before the call, so that no signal of the job is lost.
        sub = self.bus.signal_subscribe(NAME, None, None, None, None,
                                        Gio.DBusSignalFlags.NONE,
                                        self.on_signal)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT,
                             self.on_sigint)
        self.bus.call(NAME, PATH, NAME, "Migrate",
                      GLib.Variant("(ssa{sv}u)", (a.domain, a.dest_uri,
                                                  params, flags)),
                      GLib.VariantType("(o)"), Gio.DBusCallFlags.NONE,
                      120000, None, self.on_migrate)
        self.loop.run()
        self.bus.signal_unsubscribe(sub)
        return self.result


def main():
    p = argparse.ArgumentParser(
        description="Migrate a confidential domain through virtcocod's "
                    "D-Bus API and watch the job.")
    p.add_argument("domain", help="domain name or UUID on this host")
    p.add_argument("dest_uri", help="destination libvirt URI (peer-to-peer)")
    p.add_argument("--session", action="store_true",
                   help="the agent serves the session bus (tests)")
    p.add_argument("--live", action="store_true", help="VIR_MIGRATE_LIVE")
    p.add_argument("--persistent", action="store_true",
                   help="VIR_MIGRATE_PERSIST_DEST")
    p.add_argument("--undefine-source", action="store_true",
                   help="VIR_MIGRATE_UNDEFINE_SOURCE")
    p.add_argument("--migrate-uri", help="libvirt's migrate_uri parameter")
    p.add_argument("--bandwidth", type=int, help="MiB/s (libvirt's stream)")
    p.add_argument("--parallel-connections", type=int,
                   help="must equal the domain's <coco:streams forward>")
    p.add_argument("--abort-at-phase", metavar="PHASE",
                   help="call Abort() when the job reaches PHASE")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per event on stdout")
    args = p.parse_args()
    try:
        bus = Gio.bus_get_sync(Gio.BusType.SESSION if args.session
                               else Gio.BusType.SYSTEM, None)
    except GLib.Error as e:
        print("error: cannot connect to the bus: %s" % e.message,
              file=sys.stderr)
        return 1
    return Watcher(args, bus).run()


if __name__ == "__main__":
    sys.exit(main())
