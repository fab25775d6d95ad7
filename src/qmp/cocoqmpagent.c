/*
 * cocoqmpagent.c: the relay's hook into the host agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "qmp/cocoqmpagent.h"
#include "qmp/cocoqmpchannel.h"
#include "qmp/cocoqmpmessage.h"
#include "util/cocoerror.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

COCO_ENUM_IMPL(cocoQmpGate, COCO_QMP_GATE_LAST, "pre-switchover", "cont",
               "migrate", "hostdev");
COCO_ENUM_IMPL(cocoQmpRole, COCO_QMP_ROLE_LAST, "none", "source",
               "destination");

struct _CocoQmpAgent {
    const CocoQmpAgentOps *ops;
    gpointer data;
    CocoQmpAgentCancelFunc cancelCb;
    gpointer cancelOpaque;
    CocoQmpAgentProgressFunc progressCb;
    gpointer progressOpaque;
    CocoQmpAgentPauseFunc pauseCb;
    gpointer pauseOpaque;
};

CocoQmpAgent *
cocoQmpAgentNew(const CocoQmpAgentOps *ops, gpointer data)
{
    CocoQmpAgent *agent = g_new0(CocoQmpAgent, 1);

    agent->ops = ops;
    agent->data = data;
    return agent;
}

gpointer
cocoQmpAgentGetData(CocoQmpAgent *agent)
{
    return agent->data;
}

void
cocoQmpAgentFree(CocoQmpAgent *agent)
{
    if (!agent)
        return;
    if (agent->ops->dispose)
        agent->ops->dispose(agent);
    g_free(agent);
}

void
cocoQmpAgentNotify(CocoQmpAgent *agent, const char *event, JsonObject *data)
{
    if (agent->ops->notify)
        agent->ops->notify(agent, event, data);
}

void
cocoQmpAgentGate(CocoQmpAgent *agent, CocoQmpGate gate, CocoQmpRole role,
                 CocoQmpAgentVerdictFunc cb, gpointer opaque)
{
    agent->ops->gate(agent, gate, role, cb, opaque);
}

void
cocoQmpAgentSetCancelFunc(CocoQmpAgent *agent, CocoQmpAgentCancelFunc cb,
                          gpointer opaque)
{
    agent->cancelCb = cb;
    agent->cancelOpaque = opaque;
}

void
cocoQmpAgentEmitCancel(CocoQmpAgent *agent, const char *reason)
{
    if (!agent->cancelCb)
        return;
    agent->cancelCb(reason ? reason : _("the host agent gave no reason"),
                    agent->cancelOpaque);
}

void
cocoQmpAgentSetProgressFunc(CocoQmpAgent *agent, CocoQmpAgentProgressFunc cb,
                            gpointer opaque)
{
    agent->progressCb = cb;
    agent->progressOpaque = opaque;
}

void
cocoQmpAgentEmitProgress(CocoQmpAgent *agent, JsonObject *msg)
{
    if (agent->progressCb)
        agent->progressCb(msg, agent->progressOpaque);
}

void
cocoQmpAgentSetPauseFunc(CocoQmpAgent *agent, CocoQmpAgentPauseFunc cb,
                         gpointer opaque)
{
    agent->pauseCb = cb;
    agent->pauseOpaque = opaque;
}

void
cocoQmpAgentEmitPause(CocoQmpAgent *agent, const char *reason)
{
    if (!agent->pauseCb)
        return;
    agent->pauseCb(reason ? reason : _("the host agent gave no reason"),
                   agent->pauseOpaque);
}

/* The socket agent. */

typedef struct {
    guint64 id;
    CocoQmpAgentVerdictFunc cb;
    gpointer opaque;
    GSource *timeout;
    char *failure; /* set when the request failed before it was sent */
    struct _CocoQmpSocketAgent *owner;
} CocoQmpAgentRequest;

typedef struct _CocoQmpSocketAgent {
    CocoQmpAgent *agent; /* the public handle, for 'cancel' */
    char *path;
    GMainContext *ctx;
    JsonObject *hello;
    guint timeoutSec;
    CocoQmpChannel *ch;
    guint64 nextId;
    guint64 migrateId; /* the last 'migrate' gate: its progress counts */
    GHashTable *pending; /* id -> CocoQmpAgentRequest */
} CocoQmpSocketAgent;

static void
cocoQmpAgentRequestFree(CocoQmpAgentRequest *req)
{
    if (req->timeout) {
        g_source_destroy(req->timeout);
        g_source_unref(req->timeout);
    }
    g_free(req->failure);
    g_free(req);
}

/* Remove the request and deliver its verdict. */
static void
cocoQmpAgentFinish(CocoQmpSocketAgent *sa, guint64 id, gboolean release,
                   const char *reason)
{
    CocoQmpAgentRequest *req;
    CocoQmpAgentVerdictFunc cb;
    gpointer opaque;

    req = g_hash_table_lookup(sa->pending, &id);
    if (!req)
        return;
    cb = req->cb;
    opaque = req->opaque;
    g_hash_table_remove(sa->pending, &id);
    cb(release, reason, opaque);
}

static void
cocoQmpAgentFailAll(CocoQmpSocketAgent *sa, const char *reason)
{
    g_autoptr(GList) ids = g_hash_table_get_keys(sa->pending);
    GList *l;

    for (l = ids; l; l = l->next) {
        guint64 id = *(guint64 *)l->data;

        cocoQmpAgentFinish(sa, id, FALSE, reason);
    }
}

static void
cocoQmpAgentOnLine(CocoQmpChannel *ch, CocoQmpLine *line, gpointer opaque)
{
    CocoQmpSocketAgent *sa = opaque;
    g_autoptr(CocoQmpLine) l = line;
    g_autoptr(CocoQmpMessage) msg = NULL;
    const char *type;
    JsonNode *n;
    gint64 id;
    gboolean release;
    const char *reason = NULL;

    msg = cocoQmpMessageParse(l->data, l->len, NULL);
    if (!msg)
        return;
    type = json_object_get_string_member_with_default(msg->obj, "type", "");
    if (STREQ(type, "cancel")) {
        cocoQmpAgentEmitCancel(sa->agent,
                               json_object_get_string_member_with_default(
                                   msg->obj, "reason", NULL));
        return;
    }
    id = json_object_get_int_member_with_default(msg->obj, "id", -1);
    if (STREQ(type, "progress")) {
        /* Only the progress of the migration the relay asked about. */
        if (id > 0 && (guint64)id == sa->migrateId)
            cocoQmpAgentEmitProgress(sa->agent, msg->obj);
        return;
    }
    if (STREQ(type, "pause")) {
        cocoQmpAgentEmitPause(sa->agent,
                              json_object_get_string_member_with_default(
                                  msg->obj, "reason", NULL));
        return;
    }
    if (STRNEQ(type, "verdict"))
        return;
    n = json_object_get_member(msg->obj, "release");
    release = n && JSON_NODE_HOLDS_VALUE(n) &&
              json_node_get_value_type(n) == G_TYPE_BOOLEAN &&
              json_node_get_boolean(n);
    reason =
        json_object_get_string_member_with_default(msg->obj, "reason", NULL);
    if (id < 0)
        return;
    if (!release && !reason)
        reason = _("the host agent refused without a reason");
    cocoQmpAgentFinish(sa, (guint64)id, release, reason);
}

static void
cocoQmpAgentOnClosed(CocoQmpChannel *ch, const GError *error, gpointer opaque)
{
    CocoQmpSocketAgent *sa = opaque;
    g_autofree char *reason = NULL;

    if (error)
        reason = g_strdup_printf(
            _("the connection to the host agent at '%1$s' failed: %2$s"),
            sa->path, error->message);
    else
        reason = g_strdup_printf(
            _("the host agent at '%1$s' closed the connection"), sa->path);
    g_printerr("qemu-coco: %s\n", reason);
    g_clear_pointer(&sa->ch, cocoQmpChannelUnref);
    cocoQmpAgentFailAll(sa, reason);
}

static int
cocoQmpAgentConnect(CocoQmpSocketAgent *sa, GError **error)
{
    struct sockaddr_un addr = {0};
    g_autofree char *hello = NULL;
    int fd;

    if (sa->ch)
        return 0;
    if (strlen(sa->path) >= sizeof(addr.sun_path))
        return cocoErrorSet(error, COCO_ERROR_QMP_AGENT,
                            _("agent socket path '%1$s' is too long"),
                            sa->path);
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, sa->path, sizeof(addr.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cocoErrorSetSystem(
            error, errno,
            _("cannot create a socket for the host agent at '%1$s'"), sa->path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int err = errno;

        close(fd);
        return cocoErrorSetSystem(
            error, err, _("cannot reach the host agent at '%1$s'"), sa->path);
    }
    sa->ch = cocoQmpChannelNew(fd, sa->ctx, sa->path, cocoQmpAgentOnLine,
                               cocoQmpAgentOnClosed, sa);
    hello = cocoQmpBuildObjectLine(json_object_ref(sa->hello));
    cocoQmpChannelSend(sa->ch, hello, strlen(hello), NULL, 0);
    if (!sa->ch || cocoQmpChannelIsClosed(sa->ch))
        return cocoErrorSet(error, COCO_ERROR_QMP_AGENT,
                            _("the host agent at '%1$s' closed the connection"),
                            sa->path);
    return 0;
}

static void
cocoQmpAgentSocketNotify(CocoQmpAgent *agent, const char *event,
                         JsonObject *data)
{
    CocoQmpSocketAgent *sa = agent->data;
    g_autoptr(GError) err = NULL;
    g_autofree char *line = NULL;
    JsonObject *obj;

    if (cocoQmpAgentConnect(sa, &err) < 0) {
        g_printerr("qemu-coco: event '%s' not delivered: %s\n", event,
                   err->message);
        return;
    }
    obj = json_object_new();
    json_object_set_string_member(obj, "type", "event");
    json_object_set_string_member(obj, "event", event);
    if (data)
        json_object_set_object_member(obj, "data", json_object_ref(data));
    line = cocoQmpBuildObjectLine(obj);
    cocoQmpChannelSend(sa->ch, line, strlen(line), NULL, 0);
}

static gboolean
cocoQmpAgentOnTimeout(gpointer opaque)
{
    CocoQmpAgentRequest *req = opaque;
    CocoQmpSocketAgent *sa = req->owner;
    g_autofree char *reason = NULL;
    guint64 id = req->id;

    reason = g_strdup_printf(
        _("the host agent at '%1$s' gave no verdict within '%2$u' seconds"),
        sa->path, sa->timeoutSec);
    g_source_unref(req->timeout);
    req->timeout = NULL;
    cocoQmpAgentFinish(sa, id, FALSE, reason);
    return G_SOURCE_REMOVE;
}

static gboolean
cocoQmpAgentOnEarlyFailure(gpointer opaque)
{
    CocoQmpAgentRequest *req = opaque;
    CocoQmpSocketAgent *sa = req->owner;
    g_autofree char *reason = g_steal_pointer(&req->failure);

    g_source_unref(req->timeout);
    req->timeout = NULL;
    cocoQmpAgentFinish(sa, req->id, FALSE, reason);
    return G_SOURCE_REMOVE;
}

static void
cocoQmpAgentSocketGate(CocoQmpAgent *agent, CocoQmpGate gate, CocoQmpRole role,
                       CocoQmpAgentVerdictFunc cb, gpointer opaque)
{
    CocoQmpSocketAgent *sa = agent->data;
    CocoQmpAgentRequest *req = g_new0(CocoQmpAgentRequest, 1);
    g_autoptr(GError) err = NULL;
    g_autofree char *line = NULL;
    guint64 *key;
    JsonObject *obj;

    req->id = ++sa->nextId;
    if (gate == COCO_QMP_GATE_MIGRATE)
        sa->migrateId = req->id;
    req->cb = cb;
    req->opaque = opaque;
    req->owner = sa;
    key = g_new(guint64, 1);
    *key = req->id;
    g_hash_table_insert(sa->pending, key, req);

    if (cocoQmpAgentConnect(sa, &err) < 0) {
        /* Refuse from the main loop: never call back from inside. */
        req->failure = g_strdup(err->message);
        req->timeout = g_idle_source_new();
        g_source_set_callback(req->timeout, cocoQmpAgentOnEarlyFailure, req,
                              NULL);
        g_source_attach(req->timeout, sa->ctx);
        return;
    }
    if (sa->timeoutSec > 0) {
        req->timeout = g_timeout_source_new_seconds(sa->timeoutSec);
        g_source_set_callback(req->timeout, cocoQmpAgentOnTimeout, req, NULL);
        g_source_attach(req->timeout, sa->ctx);
    }
    obj = json_object_new();
    json_object_set_string_member(obj, "type", "gate");
    json_object_set_int_member(obj, "id", (gint64)req->id);
    json_object_set_string_member(obj, "gate", cocoQmpGateTypeToString(gate));
    json_object_set_string_member(obj, "role", cocoQmpRoleTypeToString(role));
    line = cocoQmpBuildObjectLine(obj);
    cocoQmpChannelSend(sa->ch, line, strlen(line), NULL, 0);
}

static void
cocoQmpAgentSocketDispose(CocoQmpAgent *agent)
{
    CocoQmpSocketAgent *sa = agent->data;

    g_clear_pointer(&sa->ch, cocoQmpChannelUnref);
    cocoQmpAgentFailAll(sa, _("the relay is shutting down"));
    g_hash_table_unref(sa->pending);
    json_object_unref(sa->hello);
    g_main_context_unref(sa->ctx);
    g_free(sa->path);
    g_free(sa);
}

static const CocoQmpAgentOps cocoQmpAgentSocketOps = {
    .notify = cocoQmpAgentSocketNotify,
    .gate = cocoQmpAgentSocketGate,
    .dispose = cocoQmpAgentSocketDispose,
};

CocoQmpAgent *
cocoQmpAgentNewSocket(const char *path, GMainContext *ctx, JsonObject *hello,
                      guint timeoutSec)
{
    CocoQmpSocketAgent *sa = g_new0(CocoQmpSocketAgent, 1);

    sa->path = g_strdup(path);
    sa->ctx =
        ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    sa->hello = hello ? hello : json_object_new();
    if (!json_object_has_member(sa->hello, "type"))
        json_object_set_string_member(sa->hello, "type", "hello");
    sa->timeoutSec = timeoutSec;
    sa->pending =
        g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                              (GDestroyNotify)cocoQmpAgentRequestFree);
    sa->agent = cocoQmpAgentNew(&cocoQmpAgentSocketOps, sa);
    return sa->agent;
}
