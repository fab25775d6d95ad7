/*
 * virtcocod.c: the libvirt-coco host agent daemon
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagent.h"
#include "agent/cocoagentdbus.h"
#include "agent/cocoagenttls.h"
#include "util/cocoerror.h"

#include <glib-unix.h>
#include <locale.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#ifdef __GLIBC__
# include <malloc.h>
#endif

/* The exit status that asks systemd for a restart (virtcocod.service:
 * RestartForceExitStatus= and SuccessExitStatus=): SIGHUP, once no
 * migration is in flight. */
#define COCO_DAEMON_EXIT_RESTART 75
/* How often a pending restart looks for the last migration's end. */
#define COCO_DAEMON_IDLE_POLL_MS 250

typedef struct {
    GMainLoop *loop;
    CocoAgent *agent;
    guint idle_src; /* a restart waits for the migrations in flight */
    int status;
} CocoDaemon;

static gboolean
cocoDaemonOnSignal(gpointer opaque)
{
    CocoDaemon *d = opaque;

    g_main_loop_quit(d->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean
cocoDaemonRestartWhenIdle(gpointer opaque)
{
    CocoDaemon *d = opaque;

    if (cocoAgentCountActive(d->agent) > 0)
        return G_SOURCE_CONTINUE;
    g_message(
        "virtcocod: no migration in flight: exiting with status %d to be restarted",
        COCO_DAEMON_EXIT_RESTART);
    d->status = COCO_DAEMON_EXIT_RESTART;
    d->idle_src = 0;
    g_main_loop_quit(d->loop);
    return G_SOURCE_REMOVE;
}

/* SIGHUP ('systemctl reload virtcocod', the packages' upgrade): restart
 * with the installed binary and configuration, but never while a
 * migration is in flight. New migrations may still start meanwhile. */
static gboolean
cocoDaemonOnHangup(gpointer opaque)
{
    CocoDaemon *d = opaque;
    guint n = cocoAgentCountActive(d->agent);

    if (d->idle_src)
        return G_SOURCE_CONTINUE;
    if (n > 0)
        g_message(
            "virtcocod: restart requested: waiting for %u migration(s) in flight",
            n);
    if (cocoDaemonRestartWhenIdle(d) == G_SOURCE_CONTINUE)
        d->idle_src = g_timeout_add(COCO_DAEMON_IDLE_POLL_MS,
                                    cocoDaemonRestartWhenIdle, d);
    return G_SOURCE_CONTINUE;
}

int
main(int argc, char **argv)
{
    g_autofree char *config = NULL;
    g_autofree char *socket_path = NULL;
    g_autofree char *platform = NULL;
    g_autofree char *state_dir = NULL;
    g_autofree char *dbus_bus = NULL;
    gint port = -1;
    gint peer_port = -1;
    gboolean foreground = FALSE;
    gboolean verbose = FALSE;
    gboolean version = FALSE;
    gboolean check_config = FALSE;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
         NULL /* set below: it names the default path */, "FILE"},
        {"socket", 's', 0, G_OPTION_ARG_FILENAME, &socket_path,
         N_("unix socket for the QMP relays"), "PATH"},
        {"port", 'p', 0, G_OPTION_ARG_INT, &port,
         N_("TCP port for the peer agents"), "PORT"},
        {"peer-port", 0, 0, G_OPTION_ARG_INT, &peer_port,
         N_("TCP port of the peer agents (default: --port)"), "PORT"},
        {"platform", 0, 0, G_OPTION_ARG_FILENAME, &platform,
         N_("platform identity file (created when missing)"), "FILE"},
        {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
         N_("directory of the per-migration records"), "DIR"},
        {"dbus", 0, 0, G_OPTION_ARG_STRING, &dbus_bus,
         N_("serve the D-Bus API on 'system', 'session' or 'none' (default: the configuration's 'dbus', else 'none')"),
         "BUS"},
        {"foreground", 'f', 0, G_OPTION_ARG_NONE, &foreground,
         N_("stay in the foreground"), NULL},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
         N_("log debug messages too"), NULL},
        {"version", 'V', 0, G_OPTION_ARG_NONE, &version,
         N_("print the version and exit"), NULL},
        {"check-config", 0, 0, G_OPTION_ARG_NONE, &check_config,
         N_("load and validate the configuration (with the options given) and exit"),
         NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) octx = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoAgent) agent = NULL;
    g_autoptr(CocoAgentDBus) dbus = NULL;
    g_autoptr(GMainLoop) loop = NULL;
    CocoAgentConfig cfg;
    CocoDaemon d = {0};
    guint sigterm;
    guint sigint;
    guint sighup;
    g_autofree char *config_help = NULL;

#ifdef __GLIBC__
    /* A migration's bookkeeping grows with its guest (about 14 bytes per
     * page: 28 MiB at 8 GiB): such blocks get their own mapping, returned
     * to the host when freed. A fixed threshold also stops glibc raising
     * it after the first large free, which kept later ones in the heap. */
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
#endif
    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, COCO_LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);
    /* Before any thread: GIO's TLS backend, TLS 1.3 only. */
    if (cocoAgentTlsInit(&err) < 0) {
        g_printerr("virtcocod: %s\n", err->message);
        return 1;
    }

    config_help = g_strdup_printf(_("configuration file (default: %1$s)"),
                                  COCO_AGENT_DEFAULT_CONFIG);
    entries[0].description = config_help;
    octx = g_option_context_new(NULL);
    g_option_context_set_translation_domain(octx, GETTEXT_PACKAGE);
    g_option_context_set_summary(
        octx,
        _("The libvirt-coco host agent: confidential migration of the domains whose emulator is qemu-coco."));
    g_option_context_add_main_entries(octx, entries, GETTEXT_PACKAGE);
    if (!g_option_context_parse(octx, &argc, &argv, &err)) {
        g_printerr("virtcocod: %s\n", err->message);
        return 2;
    }
    if (version) {
        printf("virtcocod %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (verbose)
        g_setenv("G_MESSAGES_DEBUG", "all", TRUE);

    cocoAgentConfigInit(&cfg);
    if (cocoAgentConfigLoad(&cfg, config ? config : COCO_AGENT_DEFAULT_CONFIG,
                            config != NULL, &err) < 0)
        goto error;
    if (socket_path) {
        g_free(cfg.socket_path);
        cfg.socket_path = g_strdup(socket_path);
    }
    if (platform) {
        g_free(cfg.platform_file);
        cfg.platform_file = g_strdup(platform);
    }
    if (state_dir) {
        g_free(cfg.state_dir);
        cfg.state_dir = g_strdup(state_dir);
    }
    if (port >= 0) {
        if (port > 65535) {
            cocoErrorSet(&err, COCO_ERROR_USAGE,
                         _("port '%1$d' is out of range"), port);
            goto error;
        }
        cfg.port = (unsigned int)port;
    }
    if (peer_port >= 0) {
        if (peer_port > 65535) {
            cocoErrorSet(&err, COCO_ERROR_USAGE,
                         _("port '%1$d' is out of range"), peer_port);
            goto error;
        }
        cfg.peer_port = (unsigned int)peer_port;
    }
    if (dbus_bus) {
        g_free(cfg.dbus);
        cfg.dbus = g_strdup(dbus_bus);
    }
    if (cocoAgentDBusCheckBus(cfg.dbus, &err) < 0)
        goto error;
    cfg.verbose = verbose;
    if (check_config) {
        if (cocoAgentConfigValidate(&cfg, &err) < 0)
            goto error;
        printf(_("virtcocod: the configuration '%1$s' is valid\n"),
               config ? config : COCO_AGENT_DEFAULT_CONFIG);
        cocoAgentConfigClear(&cfg);
        return 0;
    }

    if (!foreground && daemon(0, 0) < 0) {
        cocoErrorSetSystem(&err, errno, "%s",
                           _("cannot detach from the terminal"));
        goto error;
    }
    /* The handlers first: a reload (SIGHUP) while the agent opens its
     * sockets must not kill it with the signal's default action; they run
     * once the loop does. */
    loop = g_main_loop_new(NULL, FALSE);
    d.loop = loop;
    sigterm = g_unix_signal_add(SIGTERM, cocoDaemonOnSignal, &d);
    sigint = g_unix_signal_add(SIGINT, cocoDaemonOnSignal, &d);
    sighup = g_unix_signal_add(SIGHUP, cocoDaemonOnHangup, &d);
    if (!(agent = cocoAgentNew(&cfg, NULL, &err)))
        goto error;
    if (STRNEQ(cfg.dbus, "none") &&
        !(dbus = cocoAgentDBusNew(agent, cfg.dbus, &err)))
        goto error;
    cocoAgentConfigClear(&cfg);

    d.agent = agent;
    g_main_loop_run(loop);
    g_source_remove(sigterm);
    g_source_remove(sigint);
    g_source_remove(sighup);
    if (d.idle_src)
        g_source_remove(d.idle_src);
    g_message("virtcocod: shutting down");
    return d.status;

error:
    cocoAgentConfigClear(&cfg);
    g_printerr("virtcocod: %s\n", err->message);
    return 1;
}
