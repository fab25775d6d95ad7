/*
 * cococlientpreflight.c: the checks made before a confidential migration
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "client/cococlientpreflight.h"
#include "client/cococlientjson.h"
#include "conf/cocomigrationdef.h"
#include "firmware/cocoemu.h"
#include "util/cocoerror.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

static int
cocoClientPreflightHexId(const char *hex, uint8_t *id)
{
    size_t i;

    if (!hex || strlen(hex) != COCO_PLATFORM_ID_LEN * 2)
        return -1;
    for (i = 0; i < COCO_PLATFORM_ID_LEN; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]);
        int lo = g_ascii_xdigit_value(hex[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* A usable firmware backend: the agents serve only the emulated one. */
int
cocoClientPreflightCheckFirmware(JsonObject *probe, bool source, GError **error)
{
    const char *fw = cocoJsonString(probe, "firmware");

    if (STREQ_NULLABLE(fw, "emulated"))
        return 0;
    /* One whole message per role: translations inflect the role. */
    if (source)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("the source host's agent reports firmware backend '%1$s', which cannot migrate a confidential guest"),
            NULLSTR(fw));
    return cocoErrorSet(
        error, COCO_ERROR_NOT_SUPPORTED,
        _("the destination host's agent reports firmware backend '%1$s', which cannot migrate a confidential guest"),
        NULLSTR(fw));
}

/* The destination's platform against the domain's destination rules, with
 * the emulated firmware's own check. */
int
cocoClientPreflightCheckPolicy(const CocoMigrationDef *def, JsonObject *probe,
                               const char *host, GError **error)
{
    JsonObject *pf = cocoJsonObject(probe, "platform");
    JsonObject *tcb = cocoJsonObject(pf, "tcb");
    uint8_t id[COCO_PLATFORM_ID_LEN];
    unsigned int svn[COCO_TCB_COMPONENT_LAST] = {0};
    g_autofree uint8_t(*allowed)[COCO_PLATFORM_ID_LEN] = NULL;
    size_t i;

    if (!pf || !tcb ||
        cocoClientPreflightHexId(cocoJsonString(pf, "id"), id) < 0)
        return cocoErrorSet(
            error, COCO_ERROR_QMP_AGENT,
            _("the destination agent on '%1$s' did not name its platform and TCB"),
            host);
    for (i = 0; i < COCO_TCB_COMPONENT_LAST; i++) {
        const char *name = cocoTcbComponentTypeToString(i);
        gint64 v = -1;

        if (!cocoJsonInt(tcb, name, &v) || v < 0 || v > 65535)
            return cocoErrorSet(
                error, COCO_ERROR_QMP_AGENT,
                _("the destination agent on '%1$s' reports no valid SVN for TCB component '%2$s'"),
                host, name);
        svn[i] = (unsigned int)v;
    }
    if (!def->has_destinations)
        return 0;
    allowed = g_malloc0_n(def->nplatforms + 1, COCO_PLATFORM_ID_LEN);
    for (i = 0; i < def->nplatforms; i++)
        memcpy(allowed[i], def->platforms[i].id, COCO_PLATFORM_ID_LEN);
    if (cocoEmuCheckDestination((const uint8_t(*)[COCO_PLATFORM_ID_LEN])allowed,
                                def->nplatforms, def->min_tcbs, def->nmin_tcbs,
                                id, svn, error) < 0) {
        cocoErrorPrefix(
            error, _("the domain's policy refuses the destination '%1$s': "),
            host);
        return -1;
    }
    return 0;
}

/* The domain's <emulator> is qemu-coco. */
int
cocoClientPreflightCheckEmulator(const char *xml, const char *domname,
                                 GError **error)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR |
                                      XML_PARSE_NOWARNING);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNodePtr n;
    xmlNodePtr m;
    g_autofree char *emulator = NULL;

    for (n = root ? root->children : NULL; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE ||
            !xmlStrEqual(n->name, BAD_CAST "devices"))
            continue;
        for (m = n->children; m; m = m->next) {
            if (m->type == XML_ELEMENT_NODE &&
                xmlStrEqual(m->name, BAD_CAST "emulator")) {
                xmlChar *text = xmlNodeGetContent(m);

                g_free(emulator);
                emulator = g_strstrip(g_strdup((const char *)text));
                xmlFree(text);
            }
        }
    }
    xmlFreeDoc(doc);
    if (!emulator)
        return cocoErrorSet(
            error, COCO_ERROR_CONFIG_CONFLICT,
            _("domain '%1$s' names no <emulator>: only qemu-coco can migrate it confidentially"),
            domname);
    if (!g_str_has_suffix(emulator, "/qemu-coco"))
        return cocoErrorSet(
            error, COCO_ERROR_CONFIG_CONFLICT,
            _("the emulator of domain '%1$s' is '%2$s', not qemu-coco: its memory would cross hosts in QEMU's clear stream"),
            domname, emulator);
    return 0;
}

int
cocoClientPreflightCheckStreams(int parallel, const char *what,
                                const CocoMigrationDef *def, GError **error)
{
    if (parallel == 0)
        return 0;
    if (parallel < 1 || parallel > 512)
        return cocoErrorSet(error, COCO_ERROR_USAGE,
                            _("'%1$s' needs 1..512 streams, not '%2$d'"), what,
                            parallel);
    if (!def->has_streams || !def->forward_streams)
        return cocoErrorSet(
            error, COCO_ERROR_CONFIG_CONFLICT,
            _("'%1$s %2$d' cannot apply: the domain's <coco:migration> sets no <streams>, so the agents use their configured count"),
            what, parallel);
    if ((unsigned int)parallel != def->forward_streams)
        return cocoErrorSet(
            error, COCO_ERROR_CONFIG_CONFLICT,
            _("'%1$s %2$d' disagrees with the domain's <coco:streams forward='%3$u'>, which the agents use"),
            what, parallel, def->forward_streams);
    return 0;
}

int
cocoClientPreflightCheckRelay(CocoClientAgent *agent, const char *uuid,
                              const char *domname, GError **error)
{
    gint64 deadline = g_get_monotonic_time() +
                      COCO_CLIENT_PREFLIGHT_RELAY_WAIT * G_USEC_PER_SEC;

    /* A relay whose agent just restarted is back within a second. */
    for (;;) {
        CocoClientDomainInfo info = {0};
        bool relay;

        if (cocoClientAgentDomain(agent, uuid, &info, error) < 0)
            return -1;
        relay = info.relay;
        cocoClientDomainInfoClear(&info);
        if (relay)
            return 0;
        if (g_get_monotonic_time() >= deadline)
            break;
        g_usleep(200 * G_TIME_SPAN_MILLISECOND);
    }
    return cocoErrorSet(
        error, COCO_ERROR_QMP_AGENT,
        _("the relay of domain '%1$s' ('%2$s') is not connected to this host's agent at '%3$s' (waited '%4$u' seconds): QEMU would move the guest's memory in its own clear stream (is the domain's emulator qemu-coco, with the agent's socket in qemu-coco.conf?)"),
        domname, uuid, cocoClientAgentGetPath(agent),
        (unsigned int)COCO_CLIENT_PREFLIGHT_RELAY_WAIT);
}

int
cocoClientPreflightHosts(CocoClientAgent *agent, JsonObject *src,
                         const char *host, const CocoMigrationDef *def,
                         GError **error)
{
    g_autoptr(JsonObject) dst = NULL;
    g_autofree char *reason = NULL;

    /* The agents authenticate each other (mutual TLS) or do not migrate. */
    if (!cocoJsonBoolDefault(src, "tls", false))
        return cocoErrorSet(
            error, COCO_ERROR_PEER_AUTH,
            _("the source host's agent cannot authenticate its peers: %1$s"),
            cocoJsonStringDefault(src, "tls_error",
                                  _("it has no TLS credentials")));
    if (cocoClientPreflightCheckFirmware(src, true, error) < 0)
        return -1;
    if (!(dst = cocoClientAgentPeerProbe(agent, host, &reason, error))) {
        if (!reason)
            return -1;
        return cocoErrorSet(
            error, COCO_ERROR_QMP_AGENT,
            _("the destination host's agent on '%1$s' is not reachable: %2$s"),
            host, reason);
    }
    if (cocoClientPreflightCheckFirmware(dst, false, error) < 0 ||
        cocoClientPreflightCheckPolicy(def, dst, host, error) < 0)
        return -1;
    return 0;
}

int
cocoClientSplitHostPort(const char *addr, char **host, GError **error)
{
    const char *colon;

    *host = NULL;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');

        if (!end || end == addr + 1 || (end[1] != '\0' && end[1] != ':'))
            return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                                _("malformed host address '%1$s'"), addr);
        *host = g_strndup(addr + 1, end - addr - 1);
        return 0;
    }
    colon = strchr(addr, ':');
    if (colon && strchr(colon + 1, ':')) {
        /* more than one colon: a bare IPv6 address */
        *host = g_strdup(addr);
        return 0;
    }
    if (colon == addr || !*addr)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("malformed host address '%1$s'"), addr);
    *host = colon ? g_strndup(addr, colon - addr) : g_strdup(addr);
    return 0;
}

int
cocoClientPreflightUriHost(const char *uri, char **host, GError **error)
{
    g_autofree char *scheme = NULL;
    g_autofree char *h = NULL;
    const char *colon = strchr(uri, ':');

    *host = NULL;
    /* "tcp:host[:port]", as libvirt accepts it. */
    if (colon && !g_str_has_prefix(colon, "://") && colon[1] != '\0' &&
        colon[1] != '/')
        return cocoClientSplitHostPort(colon + 1, host, error);
    if (!g_uri_split(uri, G_URI_FLAGS_NON_DNS | G_URI_FLAGS_ENCODED, &scheme,
                     NULL, &h, NULL, NULL, NULL, NULL, NULL))
        return cocoErrorSet(error, COCO_ERROR_USAGE,
                            _("cannot parse the URI '%1$s'"), uri);
    if (h && *h)
        *host = g_steal_pointer(&h);
    return 0;
}
