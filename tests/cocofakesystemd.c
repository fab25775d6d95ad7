/*
 * cocofakesystemd.c: the part of systemd that D-Bus activation talks to
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A dbus-daemon started with --systemd-activation does not run a service
 * file's Exec= for a name whose file has SystemdService=: it sends the
 * signal org.freedesktop.systemd1.Activator.ActivationRequest(unit) to
 * org.freedesktop.systemd1 and waits for the name to appear. This program
 * owns that name on the session bus of DBUS_SESSION_BUS_ADDRESS, prints
 * "ready" and then, for every request, "activate UNIT"; when UNIT is the
 * first argument it runs the rest of the command line (the agent), as
 * systemd would start the unit. It ends on SIGTERM or when the command
 * ends.
 *
 * Usage: cocofakesystemd UNIT COMMAND [ARG...]
 */

#include "internal.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <stdio.h>

typedef struct {
    GMainLoop *loop;
    const char *unit;
    char **argv;
    GPid child;
} Fake;

static void
fakeOnChildExit(GPid pid, gint status, gpointer opaque)
{
    Fake *fake = opaque;

    printf("exited %d\n", status);
    fflush(stdout);
    g_spawn_close_pid(pid);
    fake->child = 0;
    g_main_loop_quit(fake->loop);
}

static void
fakeOnRequest(GDBusConnection *conn, const char *sender, const char *path,
              const char *iface, const char *signal, GVariant *params,
              gpointer opaque)
{
    Fake *fake = opaque;
    g_autoptr(GError) err = NULL;
    const char *unit = NULL;

    g_variant_get(params, "(&s)", &unit);
    printf("activate %s\n", unit);
    fflush(stdout);
    if (STRNEQ(unit, fake->unit) || fake->child)
        return;
    if (!g_spawn_async(NULL, fake->argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                       NULL, &fake->child, &err)) {
        printf("spawn failed: %s\n", err->message);
        fflush(stdout);
        g_main_loop_quit(fake->loop);
        return;
    }
    g_child_watch_add(fake->child, fakeOnChildExit, fake);
}

static gboolean
fakeOnSignal(gpointer opaque)
{
    Fake *fake = opaque;

    if (fake->child)
        kill(fake->child, SIGTERM);
    else
        g_main_loop_quit(fake->loop);
    return G_SOURCE_CONTINUE;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GDBusConnection) conn = NULL;
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GMainLoop) loop = NULL;
    Fake fake = {0};
    guint32 code = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: cocofakesystemd UNIT COMMAND [ARG...]\n");
        return 2;
    }
    loop = g_main_loop_new(NULL, FALSE);
    fake.loop = loop;
    fake.unit = argv[1];
    fake.argv = argv + 2;
    if (!(conn = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &err))) {
        fprintf(stderr, "cocofakesystemd: %s\n", err->message);
        return 1;
    }
    g_dbus_connection_signal_subscribe(
        conn, NULL, "org.freedesktop.systemd1.Activator", "ActivationRequest",
        NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE, fakeOnRequest, &fake, NULL);
    reply = g_dbus_connection_call_sync(
        conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
        "org.freedesktop.DBus", "RequestName",
        g_variant_new("(su)", "org.freedesktop.systemd1", 0),
        G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &err);
    if (!reply) {
        fprintf(stderr, "cocofakesystemd: %s\n", err->message);
        return 1;
    }
    g_variant_get(reply, "(u)", &code);
    if (code != 1) {
        fprintf(stderr, "cocofakesystemd: cannot own the name (%u)\n", code);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    g_unix_signal_add(SIGTERM, fakeOnSignal, &fake);
    g_main_loop_run(loop);
    return 0;
}
