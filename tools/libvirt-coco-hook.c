/*
 * libvirt-coco-hook.c: the fail-closed libvirt qemu.d hook
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Installed as $sysconfdir/libvirt/hooks/qemu.d/50-libvirt-coco; libvirt
 * runs it as "50-libvirt-coco DOMAIN OPERATION SUBOP EXTRA" with the domain
 * XML on stdin (docs/hook.rst). It never calls libvirt (that deadlocks).
 *
 * "migrate begin" (on the destination) and "restore begin" let a domain
 * carrying <coco:migration> through only when this host can receive it
 * confidentially: its emulator is qemu-coco, this host's agent answers its
 * probe, the agent's firmware backend is usable and the element's policy
 * accepts this host's platform. "prepare begin" applies the VFIO policy.
 * A refusal is one line on stderr and exit status 1; libvirt then cancels
 * the operation and shows the line. Nothing is ever printed on stdout:
 * for the two filter operations empty output means "XML unchanged".
 */

#include "internal.h"
#include "client/cococlientjson.h"
#include "client/cococlientpreflight.h"
#include "agent/cocoagentconfig.h"
#include "conf/cocomigrationdef.h"
#include "migration/cocohostdevpolicy.h"
#include "util/cocoerror.h"
#include "util/cocokeyfile.h"
#include "vfio/cocovfiocheck.h"
#include "vfio/cocovfiopolicy.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#define COCO_HOOK_EXIT_OK 0
#define COCO_HOOK_EXIT_REFUSED 1
#define COCO_HOOK_EXIT_USAGE 2

#define COCO_HOOK_SOCKET_ENV "LIBVIRT_COCO_HOOK_AGENT_SOCKET"
#define COCO_HOOK_QEMU_COCO_CONFIG_ENV "QEMU_COCO_CONFIG"
#define COCO_HOOK_VIRTCOCOD_CONFIG_ENV "LIBVIRT_COCO_HOOK_VIRTCOCOD_CONFIG"
#define COCO_HOOK_DEVROOT_ENV "LIBVIRT_COCO_HOOK_DEVROOT"
#define COCO_HOOK_QEMU_COCO_CONFIG                                             \
 COCO_SYSCONFDIR "/libvirt-coco/qemu-coco.conf"

/* Read all of stdin: libvirt writes the whole document and must not block
 * on a pipe nobody reads. */
static char *
cocoHookReadStdin(GError **error)
{
    g_autoptr(GString) buf = g_string_new(NULL);

    for (;;) {
        char chunk[65536];
        ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cocoErrorSetSystem(error, errno, "%s",
                               _("cannot read the domain XML on stdin"));
            return NULL;
        }
        if (n == 0)
            break;
        g_string_append_len(buf, chunk, n);
    }
    return g_string_free(g_steal_pointer(&buf), FALSE);
}

/* The agent's socket: the environment (tests), then qemu-coco.conf's
 * agent_socket (where the relay of the incoming domain will connect), then
 * virtcocod.conf's socket, then the default. */
static char *
cocoHookSocketPath(void)
{
    const char *env = g_getenv(COCO_HOOK_SOCKET_ENV);
    const char *qcfg = g_getenv(COCO_HOOK_QEMU_COCO_CONFIG_ENV);
    const char *acfg = g_getenv(COCO_HOOK_VIRTCOCOD_CONFIG_ENV);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    char *path = NULL;

    if (env && *env)
        return g_strdup(env);
    if (!qcfg)
        qcfg = COCO_HOOK_QEMU_COCO_CONFIG;
    if (cocoKeyFileLoad(kf, qcfg, NULL) &&
        (path = g_key_file_get_string(kf, "qemu-coco", "agent_socket", NULL))) {
        g_strstrip(path);
        if (*path)
            return path;
        g_free(path);
    }
    if (!acfg)
        acfg = COCO_AGENT_DEFAULT_CONFIG;
    if (cocoKeyFileLoad(kf, acfg, NULL) &&
        (path = g_key_file_get_string(kf, "virtcocod", "socket", NULL))) {
        g_strstrip(path);
        if (*path)
            return path;
        g_free(path);
    }
    return g_strdup(COCO_AGENT_DEFAULT_SOCKET);
}

/* This host's agent's answer to "probe". */
static JsonObject *
cocoHookProbe(GError **error)
{
    g_autofree char *path = cocoHookSocketPath();
    g_autoptr(CocoClientAgent) agent = NULL;
    g_autoptr(GError) err = NULL;
    JsonObject *probe;
    int errnum = 0;

    if (!(agent = cocoClientAgentConnect(path, &errnum))) {
        cocoErrorSetSystem(
            error, errnum,
            _("this host's agent is not reachable at '%1$s' (is virtcocod running?)"),
            path);
        return NULL;
    }
    if (!(probe = cocoClientAgentProbe(agent, &err))) {
        cocoErrorSet(
            error, COCO_ERROR_QMP_AGENT,
            _("this host's agent at '%1$s' did not answer the probe: %2$s"),
            path, err->message);
        return NULL;
    }
    return probe;
}

/* The name of this host for messages: the agent's platform name. */
static char *
cocoHookHostName(JsonObject *probe)
{
    const char *name =
        cocoJsonString(cocoJsonObject(probe, "platform"), "name");

    return g_strdup(name && *name ? name : g_get_host_name());
}

/* An incoming domain (migrate begin, restore begin). */
static int
cocoHookCheckIncoming(const char *xml, const CocoMigrationDef *def,
                      const char *domname, GError **error)
{
    g_autoptr(JsonObject) probe = NULL;
    g_autofree char *host = NULL;

    if (cocoClientPreflightCheckEmulator(xml, domname, error) < 0 ||
        !(probe = cocoHookProbe(error)))
        return -1;
    host = cocoHookHostName(probe);
    if (cocoClientPreflightCheckFirmware(probe, false, error) < 0 ||
        cocoClientPreflightCheckPolicy(def, probe, host, error) < 0)
        return -1;
    return 0;
}

/* A domain about to start (prepare begin): VFIO host devices behind a
 * 64-bit vIOMMU need a host kernel with the unmap fix or the element's
 * override. The host is probed only for a domain with host devices. */
static int
cocoHookCheckVfio(const char *xml, const CocoMigrationDef *def, GError **error)
{
    const char *devroot = g_getenv(COCO_HOOK_DEVROOT_ENV);
    g_autoptr(CocoVfioHostReport) report = NULL;
    g_autoptr(GError) err = NULL;
    CocoVfioPolicyResult res = {0};
    CocoVfioFixStatus fix = COCO_VFIO_FIX_UNKNOWN;
    const char *detail = NULL;
    bool wide;
    int ret;

    if (cocoVfioPolicyCheckDomain(xml, def, COCO_VFIO_FIX_NOT_NEEDED, NULL,
                                  &res, error) < 0)
        return -1;
    wide = res.nhostdevs > 0 && res.wide_iova;
    cocoVfioPolicyResultClear(&res);
    if (!wide)
        return 0; /* safe on any kernel: no probe */
    /* Every free group is tried; the report says why when none could. */
    if ((report = cocoVfioCheckHost(devroot && *devroot ? devroot : "/dev", -1,
                                    NULL, &err))) {
        fix = report->fix;
        detail = report->probe_error;
        if (!report->vfio_present)
            detail = _("this host has no VFIO (/dev/vfio/vfio is missing)");
    } else {
        detail = err->message;
    }
    ret = cocoVfioPolicyCheckDomain(xml, def, fix, detail, &res, error);
    cocoVfioPolicyResultClear(&res);
    return ret;
}

/* The domain's <name>, for messages. */
static char *
cocoHookDomainName(const char *xml, const char *fallback)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR |
                                      XML_PARSE_NOWARNING);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNodePtr n;
    char *name = NULL;

    for (n = root ? root->children : NULL; n && !name; n = n->next) {
        if (n->type == XML_ELEMENT_NODE &&
            xmlStrEqual(n->name, BAD_CAST "name")) {
            xmlChar *text = xmlNodeGetContent(n);

            name = g_strstrip(g_strdup((const char *)text));
            xmlFree(text);
        }
    }
    xmlFreeDoc(doc);
    return name ? name : g_strdup(fallback);
}

/* A refusal: one line on stderr (libvirt puts it in the operation's
 * error); @err's message is made one line first. */
static int cocoHookRefuse(GError *err, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static int
cocoHookRefuse(GError *err, const char *fmt, ...)
{
    va_list ap;

    g_strdelimit(err->message, "\r\n", ' ');
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    return COCO_HOOK_EXIT_REFUSED;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoMigrationDef) def = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *domname = NULL;
    bool incoming;
    bool prepare;

    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, COCO_LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    if (argc != 5) {
        fprintf(
            stderr, "%s\n",
            _("usage: 50-libvirt-coco DOMAIN OPERATION SUBOP EXTRA (run by libvirtd, domain XML on stdin)"));
        return COCO_HOOK_EXIT_USAGE;
    }
    /* Always read stdin to its end, also when nothing is checked. */
    if (!(xml = cocoHookReadStdin(&err))) {
        fprintf(stderr, "libvirt-coco: %s\n", err->message);
        return COCO_HOOK_EXIT_REFUSED;
    }
    incoming = STREQ(argv[3], "begin") &&
               (STREQ(argv[2], "migrate") || STREQ(argv[2], "restore"));
    prepare = STREQ(argv[2], "prepare") && STREQ(argv[3], "begin");
    if (!incoming && !prepare)
        return COCO_HOOK_EXIT_OK;

    domname = cocoHookDomainName(xml, argv[1]);
    def = cocoMigrationDefParseDomain(xml, 0, &err);
    if (!def && g_error_matches(err, COCO_ERROR, COCO_ERROR_NOT_CONFIGURED))
        return COCO_HOOK_EXIT_OK; /* not a confidential domain */
    if (!def || cocoMigrationDefValidate(def, &err) < 0)
        return cocoHookRefuse(
            err,
            _("libvirt-coco: refusing domain '%1$s': its <coco:migration> element is invalid: %2$s\n"),
            domname, err->message);
    /* Host devices cannot follow (<coco:hostdev action>): refused before
     * anything moves. */
    if (incoming && STREQ(argv[2], "migrate") &&
        cocoHostdevMigrationCheck(xml, def, domname, &err) < 0)
        return cocoHookRefuse(
            err,
            _("libvirt-coco: this host cannot receive the confidential domain '%1$s': %2$s\n"),
            domname, err->message);
    if (incoming && cocoHookCheckIncoming(xml, def, domname, &err) < 0)
        return cocoHookRefuse(
            err,
            _("libvirt-coco: this host cannot receive the confidential domain '%1$s': %2$s\n"),
            domname, err->message);
    if (prepare && cocoHookCheckVfio(xml, def, &err) < 0)
        return cocoHookRefuse(
            err,
            _("libvirt-coco: refusing to start the confidential domain '%1$s': %2$s\n"),
            domname, err->message);
    return COCO_HOOK_EXIT_OK;
}
