/*
 * cococlientagent.c: a client of this host's agent, on its local socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "client/cococlientagent.h"
#include "client/cococlientjson.h"
#include "client/cococlientpreflight.h"
#include "proto/cocoproto.h"
#include "proto/cocoprotorelay.h"
#include "util/cocoerror.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The agents' default socket (docs/virtcocod.rst); the same as
 * COCO_AGENT_DEFAULT_SOCKET, which the client layer does not include. */
#define COCO_CLIENT_AGENT_DEFAULT_SOCKET "/run/libvirt-coco/agent.sock"

struct _CocoClientAgent {
    char *path;
    int fd;
    GString *in; /* bytes read beyond the last answer */
};

void
cocoClientDomainInfoClear(CocoClientDomainInfo *info)
{
    g_clear_pointer(&info->name, g_free);
    g_clear_pointer(&info->vfio_devices, g_strfreev);
    g_clear_pointer(&info->vfio_leak, g_free);
    info->relay = false;
    info->qemu_pid = 0;
    info->has_vfio = false;
    info->vfio_open = info->vfio_mappings = info->vfio_mapped_bytes = 0;
}

void
cocoClientRecoverInfoClear(CocoClientRecoverInfo *info)
{
    g_clear_pointer(&info->id, g_free);
    g_clear_pointer(&info->state, g_free);
    g_clear_pointer(&info->message, g_free);
}

char *
cocoClientAgentSocketPath(const char *option)
{
    const char *env = g_getenv(COCO_CLIENT_AGENT_SOCKET_ENV);

    if (option && *option)
        return g_strdup(option);
    if (env && *env)
        return g_strdup(env);
    return g_strdup(COCO_CLIENT_AGENT_DEFAULT_SOCKET);
}

CocoClientAgent *
cocoClientAgentConnect(const char *path, int *errnum)
{
    struct sockaddr_un addr = {0};
    CocoClientAgent *agent;
    int fd;

    *errnum = 0;
    if (strlen(path) >= sizeof(addr.sun_path)) {
        *errnum = ENAMETOOLONG;
        return NULL;
    }
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        *errnum = errno;
        return NULL;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        *errnum = errno;
        close(fd);
        return NULL;
    }
    agent = g_new0(CocoClientAgent, 1);
    agent->path = g_strdup(path);
    agent->fd = fd;
    agent->in = g_string_new(NULL);
    return agent;
}

void
cocoClientAgentFree(CocoClientAgent *agent)
{
    if (!agent)
        return;
    if (agent->fd >= 0)
        close(agent->fd);
    g_string_free(agent->in, TRUE);
    g_free(agent->path);
    g_free(agent);
}

const char *
cocoClientAgentGetPath(CocoClientAgent *agent)
{
    return agent->path;
}

/* Wait for @events on the socket until @deadline (monotonic µs): 1 ready,
 * 0 timed out, -1 with errno. */
static int
cocoClientAgentWait(CocoClientAgent *agent, short events, gint64 deadline)
{
    for (;;) {
        struct pollfd pfd = {.fd = agent->fd, .events = events};
        gint64 left = deadline - g_get_monotonic_time();
        int rc;

        if (left <= 0)
            return 0;
        rc = poll(&pfd, 1, (int)((left + 999) / 1000));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        if (rc > 0)
            return 1;
    }
}

static int
cocoClientAgentSend(CocoClientAgent *agent, const char *type, const char *line,
                    gint64 deadline, GError **error)
{
    size_t len = strlen(line);
    size_t done = 0;

    while (done < len) {
        ssize_t n = send(agent->fd, line + done, len - done, MSG_NOSIGNAL);
        int rc;

        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return cocoErrorSetSystem(
                error, errno, _("cannot send '%1$s' to the agent at '%2$s'"),
                type, agent->path);
        if ((rc = cocoClientAgentWait(agent, POLLOUT, deadline)) <= 0)
            return cocoErrorSetSystem(
                error, rc == 0 ? ETIMEDOUT : errno,
                _("cannot send '%1$s' to the agent at '%2$s'"), type,
                agent->path);
    }
    return 0;
}

/* The next whole line (without its newline), or NULL with @error. */
static char *
cocoClientAgentReadLine(CocoClientAgent *agent, const char *type,
                        unsigned int timeout, gint64 deadline, GError **error)
{
    for (;;) {
        char *nl = memchr(agent->in->str, '\n', agent->in->len);
        char buf[65536];
        ssize_t n;
        int rc;

        if (nl) {
            char *line = g_strndup(agent->in->str, nl - agent->in->str);

            g_string_erase(agent->in, 0, nl - agent->in->str + 1);
            return line;
        }
        if (agent->in->len > COCO_CLIENT_AGENT_LINE_MAX) {
            cocoErrorSet(
                error, COCO_ERROR_QMP_PROTOCOL,
                _("the agent at '%1$s' sent a line longer than '%2$u' bytes"),
                agent->path, (unsigned int)COCO_CLIENT_AGENT_LINE_MAX);
            return NULL;
        }
        n = recv(agent->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            g_string_append_len(agent->in, buf, n);
            continue;
        }
        if (n == 0) {
            cocoErrorSet(
                error, COCO_ERROR_QMP_AGENT,
                _("the agent at '%1$s' closed the connection instead of answering '%2$s'"),
                agent->path, type);
            return NULL;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN ||
            (rc = cocoClientAgentWait(agent, POLLIN, deadline)) < 0) {
            cocoErrorSetSystem(
                error, errno,
                _("cannot read the answer of the agent at '%1$s'"),
                agent->path);
            return NULL;
        }
        if (rc == 0) {
            cocoErrorSet(
                error, COCO_ERROR_QMP_AGENT,
                _("the agent at '%1$s' did not answer '%2$s' within %3$u seconds"),
                agent->path, type, timeout);
            return NULL;
        }
    }
}

/* cocoClientAgentRequest(); with @reason, an "error" answer is no error:
 * NULL is returned with *@reason set to the agent's reason. Every answer
 * line is first parsed as one message of the agent's protocol
 * (cocoRelayReplySchema: each member type- and range-checked), then read
 * member by member with the safe getters. */
static JsonObject *
cocoClientAgentRequestFull(CocoClientAgent *agent, JsonObject *request,
                           unsigned int timeout, char **reason, GError **error)
{
    const char *type = cocoJsonString(request, "type");
    int want = type ? cocoRelayReplyTypeFromString(type) : -1;
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout * G_USEC_PER_SEC;
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
    g_autofree char *text = NULL;
    g_autofree char *line = NULL;

    g_return_val_if_fail(want >= 0, NULL);
    json_node_set_object(node, request);
    text = json_to_string(node, FALSE);
    line = g_strconcat(text, "\n", NULL);
    if (cocoClientAgentSend(agent, type, line, deadline, error) < 0)
        return NULL;
    for (;;) {
        g_autofree char *answer = NULL;
        g_autoptr(GError) perr = NULL;
        g_autofree char *why = NULL;
        void *msg = NULL;
        int id = -1;

        if (!(answer = cocoClientAgentReadLine(agent, type, timeout, deadline,
                                               error)))
            return NULL;
        if (cocoProtoParseMessage(&cocoRelayReplySchema, answer, strlen(answer),
                                  &id, &msg, &perr) < 0) {
            cocoErrorSet(
                error, COCO_ERROR_QMP_PROTOCOL,
                _("the agent at '%1$s' answered '%2$s' with a malformed message: %3$s"),
                agent->path, type, perr->message);
            return NULL;
        }
        if (id == COCO_RELAY_REPLY_REFUSED || id == COCO_RELAY_REPLY_ERROR)
            why = g_strdup(((CocoRelayReason *)msg)->reason);
        cocoProtoMessageFree(&cocoRelayReplySchema, id, msg);
        if (id == want)
            return cocoProtoParseJson(answer, strlen(answer),
                                      COCO_RELAY_REPLY_MAX,
                                      _("host agent's answer"), error);
        if (id == COCO_RELAY_REPLY_REFUSED) {
            cocoErrorSet(error, COCO_ERROR_ACCESS_DENIED,
                         _("the agent at '%1$s' refused '%2$s': %3$s"),
                         agent->path, type, why);
            return NULL;
        }
        if (id == COCO_RELAY_REPLY_ERROR && reason) {
            *reason = g_steal_pointer(&why);
            return NULL;
        }
        if (id == COCO_RELAY_REPLY_ERROR) {
            cocoErrorSet(error, COCO_ERROR_QMP_AGENT,
                         _("the agent at '%1$s' cannot answer '%2$s': %3$s"),
                         agent->path, type, why);
            return NULL;
        }
        /* Anything else (a line meant for a relay) is not our answer. */
    }
}

JsonObject *
cocoClientAgentRequest(CocoClientAgent *agent, JsonObject *request,
                       unsigned int timeout, GError **error)
{
    return cocoClientAgentRequestFull(agent, request, timeout, NULL, error);
}

/* A request {"type": @type} with the string members of @...
 * (name, value pairs; a NULL value is left out), NULL-terminated. */
static JsonObject *
cocoClientAgentNewRequest(const char *type, ...)
{
    JsonObject *obj = json_object_new();
    const char *name;
    va_list ap;

    json_object_set_string_member(obj, "type", type);
    va_start(ap, type);
    while ((name = va_arg(ap, const char *))) {
        const char *value = va_arg(ap, const char *);

        if (value)
            json_object_set_string_member(obj, name, value);
    }
    va_end(ap);
    return obj;
}

JsonObject *
cocoClientAgentProbe(CocoClientAgent *agent, GError **error)
{
    g_autoptr(JsonObject) req = cocoClientAgentNewRequest("probe", NULL);

    return cocoClientAgentRequest(agent, req, COCO_CLIENT_AGENT_TIMEOUT, error);
}

JsonArray *
cocoClientAgentStatus(CocoClientAgent *agent, GError **error)
{
    g_autoptr(JsonObject) req = cocoClientAgentNewRequest("status", NULL);
    g_autoptr(JsonObject) ans = NULL;
    JsonArray *arr;

    if (!(ans = cocoClientAgentRequest(agent, req, COCO_CLIENT_AGENT_TIMEOUT,
                                       error)))
        return NULL;
    if (!(arr = cocoJsonArray(ans, "migrations"))) {
        cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL,
            _("the agent at '%1$s' answered 'status' without a list of migrations"),
            agent->path);
        return NULL;
    }
    return json_array_ref(arr);
}

int
cocoClientAgentDomain(CocoClientAgent *agent, const char *uuid,
                      CocoClientDomainInfo *info, GError **error)
{
    g_autoptr(JsonObject) req =
        cocoClientAgentNewRequest("domain", "uuid", uuid, NULL);
    g_autoptr(JsonObject) ans = NULL;
    const char *auuid;
    const char *name;
    JsonObject *vfio;
    bool relay = false;
    gint64 pid = 0;

    cocoClientDomainInfoClear(info);
    if (!(ans = cocoClientAgentRequest(agent, req, COCO_CLIENT_AGENT_TIMEOUT,
                                       error)))
        return -1;
    /* The types were checked (cocoRelayDomainReplyDef); "qemu_pid" is
     * absent for a domain the agent does not know. */
    auuid = cocoJsonString(ans, "uuid");
    if (!cocoJsonInt(ans, "qemu_pid", &pid))
        pid = 0;
    if (!auuid || g_ascii_strcasecmp(auuid, uuid) != 0 ||
        !cocoClientJsonBool(ans, "relay", &relay) || pid < 0 ||
        pid > G_MAXINT || (relay && pid <= 1))
        return cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL,
            _("the agent at '%1$s' answered 'domain' for '%2$s' with malformed members"),
            agent->path, uuid);
    if ((name = cocoJsonString(ans, "name")))
        info->name = g_strdup(name);
    info->relay = relay;
    info->qemu_pid = pid;
    if ((name = cocoJsonString(ans, "vfio-leak")))
        info->vfio_leak = g_strdup(name);
    /* "vfio" was checked against cocoRelayVfioStateDef: every member is
     * there with its type and bounds. */
    if ((vfio = cocoJsonObject(ans, "vfio"))) {
        JsonArray *devices = cocoJsonArray(vfio, "devices");
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        guint i;

        for (i = 0; devices && i < json_array_get_length(devices); i++) {
            const char *dev =
                cocoJsonString(cocoJsonArrayObject(devices, i), "name");

            if (dev)
                g_strv_builder_add(b, dev);
        }
        info->vfio_devices = g_strv_builder_end(b);
        info->vfio_open = cocoJsonIntDefault(vfio, "open", 0);
        info->vfio_mappings = cocoJsonIntDefault(vfio, "mappings", 0);
        info->vfio_mapped_bytes = cocoJsonIntDefault(vfio, "mapped-bytes", 0);
        info->has_vfio = true;
    }
    return 0;
}

JsonObject *
cocoClientAgentPeerProbe(CocoClientAgent *agent, const char *host,
                         char **peer_error, GError **error)
{
    g_autoptr(JsonObject) req =
        cocoClientAgentNewRequest("peer-probe", "host", host, NULL);
    g_autoptr(JsonObject) ans = NULL;
    JsonObject *probe;

    *peer_error = NULL;
    if (!(ans = cocoClientAgentRequestFull(
              agent, req, COCO_CLIENT_AGENT_PEER_TIMEOUT, peer_error, error)))
        return NULL;
    if (!(probe = cocoJsonObject(ans, "probe")) ||
        !STREQ_NULLABLE(cocoJsonString(probe, "type"), "probe")) {
        cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL,
            _("the agent at '%1$s' answered 'peer-probe' for '%2$s' without the peer's probe"),
            agent->path, host);
        return NULL;
    }
    return json_object_ref(probe);
}

int
cocoClientAgentPeerStatus(CocoClientAgent *agent, const char *host,
                          const char *id, const char *session,
                          JsonObject **record, char **peer_error,
                          GError **error)
{
    g_autoptr(JsonObject) req = cocoClientAgentNewRequest(
        "peer-status", "host", host, "id", session ? NULL : id, "session",
        session, NULL);
    g_autoptr(JsonObject) ans = NULL;
    JsonObject *rec;

    *record = NULL;
    *peer_error = NULL;
    if (!(ans = cocoClientAgentRequestFull(
              agent, req, COCO_CLIENT_AGENT_PEER_TIMEOUT, peer_error, error)))
        return *peer_error ? 0 : -1;
    /* No "record" (or null): the peer has none of that session. */
    if ((rec = cocoJsonObject(ans, "record")))
        *record = json_object_ref(rec);
    return 0;
}

int
cocoClientAgentPeerRecord(CocoClientAgent *agent, const CocoClientRecord *rec,
                          CocoClientRecord **peer, char **reason,
                          GError **error)
{
    g_autofree char *host = cocoClientRecordPeerHost(rec);
    g_autoptr(JsonObject) obj = NULL;
    g_autoptr(GError) err = NULL;

    *peer = NULL;
    *reason = NULL;
    if (!host) {
        *reason =
            g_strdup_printf(_("the record '%1$s' names no peer"), rec->id);
        return 0;
    }
    if (!rec->session) {
        *reason =
            g_strdup_printf(_("the record '%1$s' names no session"), rec->id);
        return 0;
    }
    if (cocoClientAgentPeerStatus(agent, host, NULL, rec->session, &obj, reason,
                                  error) < 0)
        return -1;
    if (*reason)
        return 0;
    if (!obj) {
        *reason = g_strdup_printf(
            _("the agent on '%1$s' has no record of session '%2$s'"), host,
            rec->session);
        return 0;
    }
    if (!(*peer = cocoClientRecordParse(obj, host, &err))) {
        *reason = g_strdup(err->message);
        return 0;
    }
    /* A host that answers with this record is this host (a wrong peer
     * port): not a peer's view. */
    if (STREQ((*peer)->id, rec->id) && STREQ((*peer)->role, rec->role)) {
        g_clear_pointer(peer, cocoClientRecordFree);
        *reason = g_strdup_printf(
            _("the agent on '%1$s' answered with this host's own record '%2$s'"),
            host, rec->id);
    }
    return 0;
}

int
cocoClientAgentRecover(CocoClientAgent *agent, const char *id,
                       CocoClientRecoverInfo *info, GError **error)
{
    g_autoptr(JsonObject) req =
        cocoClientAgentNewRequest("recover", "id", id, NULL);
    g_autoptr(JsonObject) ans = NULL;
    const char *aid;

    cocoClientRecoverInfoClear(info);
    if (!(ans = cocoClientAgentRequest(
              agent, req, COCO_CLIENT_AGENT_RECOVER_TIMEOUT, error)))
        return -1;
    /* The types were checked (cocoRelayRecoverReplyDef). */
    aid = cocoJsonString(ans, "id");
    if (!aid || STRNEQ(aid, id))
        return cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL,
            _("the agent at '%1$s' answered 'recover' of '%2$s' for another migration"),
            agent->path, id);
    info->id = g_strdup(aid);
    info->state = g_strdup(cocoJsonString(ans, "state"));
    info->message = g_strdup(cocoJsonStringDefault(ans, "message", ""));
    return 0;
}
