/*
 * cocoagentpreflight.c: the checks a host makes before a confidential
 * migration, shared by "virt-coco migrate" and the libvirt hook
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentpreflight.h"
#include "conf/cocomigrationdef.h"
#include "firmware/cocoemu.h"
#include "util/cocoerror.h"
#include "util/cocofd.h"
#include "proto/cocoproto.h"
#include "proto/cocoprotopeer.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int
cocoPreflightAgentConnect(const char *path)
{
    struct sockaddr_un addr = {0};
    struct timeval tv = {.tv_sec = COCO_PREFLIGHT_AGENT_TIMEOUT};
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path))
        return -ENAMETOOLONG;
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int err = errno;

        close(fd);
        return -err;
    }
    return fd;
}

int
cocoPreflightAgentSend(int fd, const char *type, GError **error)
{
    g_autofree char *line = g_strdup_printf("{\"type\":\"%s\"}\n", type);
    int rc = cocoFdSendAll(fd, line, strlen(line));

    if (rc < 0)
        return cocoErrorSetSystem(error, -rc, "%s",
                                  _("cannot write to the agent"));
    return 0;
}

/* Parse one line of the agent; NULL if it is not a JSON object. */
static JsonObject *
cocoPreflightParseLine(const char *line, gssize len)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonNode *root;

    if (!json_parser_load_from_data(parser, line, len, NULL) ||
        !(root = json_parser_get_root(parser)) || !JSON_NODE_HOLDS_OBJECT(root))
        return NULL;
    return json_object_ref(json_node_get_object(root));
}

/* Take the next whole line out of @in, or NULL. */
JsonObject *
cocoPreflightTakeLine(GString *in, bool *got)
{
    char *nl = memchr(in->str, '\n', in->len);
    JsonObject *obj;

    *got = false;
    if (!nl)
        return NULL;
    *got = true;
    obj = cocoPreflightParseLine(in->str, nl - in->str);
    g_string_erase(in, 0, nl - in->str + 1);
    return obj;
}

/* Send {"type": @type} and wait (blocking, with the socket's timeout) for
 * the answer of that type or "refused". */
JsonObject *
cocoPreflightAgentRequest(int fd, GString *in, const char *type, GError **error)
{
    if (cocoPreflightAgentSend(fd, type, error) < 0)
        return NULL;
    for (;;) {
        char buf[65536];
        bool got;
        JsonObject *obj;
        ssize_t n;

        while ((obj = cocoPreflightTakeLine(in, &got)) || got) {
            const char *t;

            if (!obj)
                continue;
            t = cocoJsonStringDefault(obj, "type", "");
            if (STREQ(t, type) || STREQ(t, "refused"))
                return obj;
            json_object_unref(obj);
        }
        n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cocoErrorSetSystem(error, errno,
                               _("the agent did not answer '%1$s'"), type);
            return NULL;
        }
        if (n == 0) {
            cocoErrorSet(
                error, COCO_ERROR_QMP_AGENT,
                _("the agent closed the connection instead of answering '%1$s'"),
                type);
            return NULL;
        }
        g_string_append_len(in, buf, n);
    }
}

static int
cocoPreflightHexId(const char *hex, uint8_t *id)
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

/* (c) a usable firmware backend: the agents serve only the emulated one. */
int
cocoPreflightCheckFirmware(JsonObject *probe, bool source, GError **error)
{
    const char *fw = cocoJsonStringDefault(probe, "firmware", "");

    if (STREQ(fw, "emulated"))
        return 0;
    /* One whole message per role: translations inflect the role. */
    if (source)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("the source host's agent reports firmware backend '%1$s', which cannot migrate a confidential guest"),
            fw);
    return cocoErrorSet(
        error, COCO_ERROR_NOT_SUPPORTED,
        _("the destination host's agent reports firmware backend '%1$s', which cannot migrate a confidential guest"),
        fw);
}

/* (d) the destination's platform against the domain's destination rules,
 * with the emulated firmware's own check. */
int
cocoPreflightCheckPolicy(const CocoMigrationDef *def, JsonObject *probe,
                         const char *host, GError **error)
{
    JsonObject *pf = cocoJsonObject(probe, "platform");
    JsonObject *tcb = cocoJsonObject(pf, "tcb");
    uint8_t id[COCO_PLATFORM_ID_LEN];
    unsigned int svn[COCO_TCB_COMPONENT_LAST] = {0};
    g_autofree uint8_t(*allowed)[COCO_PLATFORM_ID_LEN] = NULL;
    size_t i;

    if (!pf || !tcb || cocoPreflightHexId(cocoJsonString(pf, "id"), id) < 0)
        return cocoErrorSet(
            error, COCO_ERROR_QMP_AGENT,
            _("the destination agent on '%1$s' did not name its platform and TCB"),
            host);
    for (i = 0; i < COCO_TCB_COMPONENT_LAST; i++) {
        const char *name = cocoTcbComponentTypeToString(i);
        gint64 v = cocoJsonIntDefault(tcb, name, -1);

        if (v < 0 || v > 65535)
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

/* (e) the domain's <emulator> is qemu-coco. */
int
cocoPreflightCheckEmulator(const char *xml, const char *domname, GError **error)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR |
                                      XML_PARSE_NOWARNING);
    xmlNodePtr n;
    xmlNodePtr m;
    g_autofree char *emulator = NULL;

    for (n = doc ? xmlDocGetRootElement(doc)->children : NULL; n; n = n->next) {
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
cocoPreflightUriHost(const char *uri, char **host, GError **error)
{
    g_autofree char *scheme = NULL;
    g_autofree char *h = NULL;
    const char *colon = strchr(uri, ':');

    *host = NULL;
    /* "tcp:host[:port]", as libvirt accepts it. */
    if (colon && !g_str_has_prefix(colon, "://") && colon[1] != '\0' &&
        colon[1] != '/')
        return cocoPeerParseHost(colon + 1, host, error);
    if (!g_uri_split(uri, G_URI_FLAGS_NON_DNS | G_URI_FLAGS_ENCODED, &scheme,
                     NULL, &h, NULL, NULL, NULL, NULL, NULL))
        return cocoErrorSet(error, COCO_ERROR_USAGE,
                            _("cannot parse the URI '%1$s'"), uri);
    if (h && *h)
        *host = g_steal_pointer(&h);
    return 0;
}

int
cocoPreflightCheckStreams(int parallel, const char *what,
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

/* The local agent probes the peer's agent (mutual TLS) for us. */
static JsonObject *
cocoPreflightPeerProbe(const char *agent_socket, const char *host,
                       GError **error)
{
    g_autoptr(GString) in = g_string_new(NULL);
    g_autoptr(JsonObject) req = json_object_new();
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
    g_autofree char *json = NULL;
    g_autofree char *line = NULL;
    struct timeval tv = {COCO_PREFLIGHT_PEER_TIMEOUT, 0};
    int fd = cocoPreflightAgentConnect(agent_socket);
    int rc;

    if (fd < 0)
        return cocoErrorSetSystem(error, -fd,
                                  _("cannot reach the host agent at '%1$s'"),
                                  agent_socket),
               NULL;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    json_object_set_string_member(req, "type", "peer-probe");
    json_object_set_string_member(req, "host", host);
    json_node_set_object(node, req);
    json = json_to_string(node, FALSE);
    line = g_strconcat(json, "\n", NULL);
    if ((rc = cocoFdSendAll(fd, line, strlen(line))) < 0) {
        close(fd);
        return cocoErrorSetSystem(error, -rc,
                                  _("cannot reach the host agent at '%1$s'"),
                                  agent_socket),
               NULL;
    }
    for (;;) {
        char buf[65536];
        bool got;
        JsonObject *obj;
        ssize_t n;

        while ((obj = cocoPreflightTakeLine(in, &got)) || got) {
            const char *t = obj ? cocoJsonStringDefault(obj, "type", "") : "";
            JsonObject *probe = cocoJsonObject(obj, "probe");

            if (STREQ(t, "peer-probe") && probe) {
                json_object_ref(probe);
                json_object_unref(obj);
                close(fd);
                return probe;
            }
            if (STREQ(t, "error") || STREQ(t, "refused")) {
                cocoErrorSet(error, COCO_ERROR_QMP_AGENT, "%s",
                             cocoJsonStringDefault(obj, "reason", ""));
                json_object_unref(obj);
                close(fd);
                return NULL;
            }
            if (obj)
                json_object_unref(obj);
        }
        n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return cocoErrorSet(
                       error, COCO_ERROR_QMP_AGENT,
                       _("the host agent did not answer the probe of '%1$s'"),
                       host),
                   NULL;
        }
        if (in->len + (gsize)n > COCO_PREFLIGHT_ANSWER_MAX) {
            close(fd);
            return cocoErrorSet(error, COCO_ERROR_QMP_AGENT, "%s",
                                _("the host agent's answer is too long")),
                   NULL;
        }
        g_string_append_len(in, buf, n);
    }
}

int
cocoPreflightHosts(const char *agent_socket, JsonObject *src, const char *host,
                   const CocoMigrationDef *def, const char *xml,
                   const char *domname, GError **error)
{
    g_autoptr(JsonObject) dst = NULL;
    g_autoptr(GError) err = NULL;

    if (!cocoJsonBoolDefault(src, "tls", false))
        return cocoErrorSet(
            error, COCO_ERROR_PEER_AUTH,
            _("the source host's agent cannot authenticate its peers: %1$s"),
            cocoJsonStringDefault(src, "tls_error",
                                  _("it has no TLS credentials")));
    if (!(dst = cocoPreflightPeerProbe(agent_socket, host, &err)))
        return cocoErrorSet(
            error, COCO_ERROR_QMP_AGENT,
            _("the destination host's agent on '%1$s' is not reachable: %2$s"),
            host, err->message);
    if (cocoPreflightCheckFirmware(src, true, error) < 0 ||
        cocoPreflightCheckFirmware(dst, false, error) < 0 ||
        cocoPreflightCheckPolicy(def, dst, host, error) < 0 ||
        cocoPreflightCheckEmulator(xml, domname, error) < 0)
        return -1;
    return 0;
}
