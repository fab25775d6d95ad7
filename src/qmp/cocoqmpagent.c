/*
 * cocoqmpagent.c: the relay's hook into the host agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "qmp/cocoqmpagent.h"
#include "proto/cocoproto.h"
#include "qmp/cocoqmpchannel.h"
#include "qmp/cocoqmpmessage.h"
#include "util/cocoerror.h"
#include "util/cocosource.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define COCO_QMP_AGENT_RECONNECT_MS 1000
/* After a refused hello the delay doubles up to this. */
#define COCO_QMP_AGENT_RECONNECT_MAX_MS 30000

struct _CocoQmpAgent {
    const CocoQmpAgentOps *ops;
    gpointer data;
    CocoQmpAgentCancelFunc cancelCb;
    gpointer cancelOpaque;
    CocoQmpAgentProgressFunc progressCb;
    gpointer progressOpaque;
    CocoQmpAgentPauseFunc pauseCb;
    gpointer pauseOpaque;
    CocoQmpAgentResumeFunc resumeCb;
    gpointer resumeOpaque;
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

gboolean
cocoQmpAgentIsReady(CocoQmpAgent *agent, char **reason)
{
    if (!agent->ops->ready)
        return TRUE;
    return agent->ops->ready(agent, reason);
}

typedef struct {
    CocoQmpAgentVerdictFunc cb;
    gpointer opaque;
    gboolean ready;
    char *reason;
} CocoQmpAgentReadyAnswer;

static gboolean
cocoQmpAgentOnReadyAnswer(gpointer opaque)
{
    CocoQmpAgentReadyAnswer *a = opaque;

    a->cb(a->ready, a->reason, a->opaque);
    g_free(a->reason);
    g_free(a);
    return G_SOURCE_REMOVE;
}

void
cocoQmpAgentWaitReady(CocoQmpAgent *agent, guint timeoutMs,
                      CocoQmpAgentVerdictFunc cb, gpointer opaque)
{
    CocoQmpAgentReadyAnswer *a;
    g_autoptr(GSource) idle = NULL;

    if (agent->ops->waitReady) {
        agent->ops->waitReady(agent, timeoutMs, cb, opaque);
        return;
    }
    a = g_new0(CocoQmpAgentReadyAnswer, 1);
    a->cb = cb;
    a->opaque = opaque;
    a->ready = cocoQmpAgentIsReady(agent, &a->reason);
    /* Answered from the caller's main context (the relay's), not from
     * GLib's global one, which a relay on a context of its own never
     * iterates. */
    idle = g_idle_source_new();
    g_source_set_callback(idle, cocoQmpAgentOnReadyAnswer, a, NULL);
    g_source_attach(idle, g_main_context_get_thread_default());
}

void
cocoQmpAgentStart(CocoQmpAgent *agent)
{
    if (agent->ops->start)
        agent->ops->start(agent);
}

void
cocoQmpAgentSetResumeFunc(CocoQmpAgent *agent, CocoQmpAgentResumeFunc cb,
                          gpointer opaque)
{
    agent->resumeCb = cb;
    agent->resumeOpaque = opaque;
}

void
cocoQmpAgentEmitResume(CocoQmpAgent *agent, const char *reason)
{
    if (agent->resumeCb)
        agent->resumeCb(reason ? reason : _("the host agent gave no reason"),
                        agent->resumeOpaque);
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
    gboolean welcomed; /* the agent accepted our hello */
    gboolean refused; /* it refused the last one: notReady says why */
    gboolean started; /* stay connected */
    char *notReady; /* why not, for libvirt */
    GSource *reconnect;
    guint reconnectMs;
    GList *waiters; /* CocoQmpAgentWaiter: who waits for the answer */
} CocoQmpSocketAgent;

typedef struct {
    CocoQmpSocketAgent *sa;
    CocoQmpAgentVerdictFunc cb;
    gpointer opaque;
    GSource *timeout;
} CocoQmpAgentWaiter;

static gboolean cocoQmpAgentSocketReady(CocoQmpAgent *agent, char **reason);

static int cocoQmpAgentConnect(CocoQmpSocketAgent *sa, GError **error);

static void
cocoQmpAgentRequestFree(CocoQmpAgentRequest *req)
{
    cocoSourceClear(&req->timeout);
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

/* Refresh a request's deadline (the agent reports progress on it). */
static void
cocoQmpAgentRefresh(CocoQmpSocketAgent *sa, guint64 id)
{
    CocoQmpAgentRequest *req = g_hash_table_lookup(sa->pending, &id);

    if (!req || !req->timeout || sa->timeoutSec == 0)
        return;
    g_source_set_ready_time(req->timeout,
                            g_get_monotonic_time() +
                                (gint64)sa->timeoutSec * G_USEC_PER_SEC);
}

static void
cocoQmpAgentWaiterFree(CocoQmpAgentWaiter *w)
{
    cocoSourceClear(&w->timeout);
    g_free(w);
}

/* Remove @w and give it the current answer. */
static void
cocoQmpAgentWaiterAnswer(CocoQmpAgentWaiter *w)
{
    CocoQmpSocketAgent *sa = w->sa;
    g_autofree char *reason = NULL;
    gboolean ready = cocoQmpAgentSocketReady(sa->agent, &reason);
    CocoQmpAgentVerdictFunc cb = w->cb;
    gpointer opaque = w->opaque;

    sa->waiters = g_list_remove(sa->waiters, w);
    cocoQmpAgentWaiterFree(w);
    cb(ready, reason, opaque);
}

/* The agent answered the hello: everyone waiting hears it. */
static void
cocoQmpAgentAnswerWaiters(CocoQmpSocketAgent *sa)
{
    while (sa->waiters)
        cocoQmpAgentWaiterAnswer(sa->waiters->data);
}

static gboolean
cocoQmpAgentOnWaiterTimeout(gpointer opaque)
{
    CocoQmpAgentWaiter *w = opaque;

    g_clear_pointer(&w->timeout, g_source_unref);
    cocoQmpAgentWaiterAnswer(w);
    return G_SOURCE_REMOVE;
}

static void
cocoQmpAgentOnLine(CocoQmpChannel *ch, CocoQmpLine *line, gpointer opaque)
{
    CocoQmpSocketAgent *sa = opaque;
    g_autoptr(CocoQmpLine) l = line;
    g_autoptr(GError) err = NULL;
    void *data = NULL;
    int type = 0;

    /* Every line through the protocol's one definition: a member of the
     * wrong type or size is refused here, never trusted. */
    if (cocoProtoParseMessage(&cocoRelayReplySchema, l->data, l->len, &type,
                              &data, &err) < 0) {
        g_printerr("qemu-coco: ignored a line of the host agent: %s\n",
                   err->message);
        return;
    }
    switch ((CocoRelayReplyType)type) {
    case COCO_RELAY_REPLY_WELCOME:
        sa->welcomed = TRUE;
        sa->refused = FALSE;
        sa->reconnectMs = COCO_QMP_AGENT_RECONNECT_MS;
        g_clear_pointer(&sa->notReady, g_free);
        cocoQmpAgentAnswerWaiters(sa);
        break;
    case COCO_RELAY_REPLY_REFUSED: {
        CocoRelayReason *r = data;

        sa->welcomed = FALSE;
        sa->refused = TRUE;
        g_free(sa->notReady);
        sa->notReady = g_strdup_printf(
            _("the host agent at '%1$s' refused this relay: %2$s"), sa->path,
            r->reason);
        g_printerr("qemu-coco: %s\n", sa->notReady);
        cocoQmpAgentAnswerWaiters(sa);
        break;
    }
    case COCO_RELAY_REPLY_CANCEL:
        cocoQmpAgentEmitCancel(sa->agent, ((CocoRelayReason *)data)->reason);
        break;
    case COCO_RELAY_REPLY_PAUSE:
        cocoQmpAgentEmitPause(sa->agent, ((CocoRelayReason *)data)->reason);
        break;
    case COCO_RELAY_REPLY_RESUME:
        cocoQmpAgentEmitResume(sa->agent, ((CocoRelayReason *)data)->reason);
        break;
    case COCO_RELAY_REPLY_PROGRESS: {
        CocoRelayProgress *p = data;
        g_autoptr(JsonObject) obj = NULL;

        /* Only the progress of the migration the relay asked about. */
        if (p->id > 0 && (guint64)p->id == sa->migrateId) {
            cocoQmpAgentRefresh(sa, sa->migrateId);
            obj = cocoProtoBuildStruct(
                cocoProtoSchemaLookup(&cocoRelayReplySchema, type), p);
            cocoQmpAgentEmitProgress(sa->agent, obj);
        }
        break;
    }
    case COCO_RELAY_REPLY_VERDICT: {
        CocoRelayVerdict *v = data;

        if (v->id >= 0)
            cocoQmpAgentFinish(
                sa, (guint64)v->id, v->release,
                v->release  ? NULL
                : v->reason ? v->reason
                            : _("the host agent refused without a reason"));
        break;
    }
    case COCO_RELAY_REPLY_ERROR:
        g_printerr("qemu-coco: the host agent at '%s': %s\n", sa->path,
                   ((CocoRelayReason *)data)->reason);
        break;
    case COCO_RELAY_REPLY_STATUS:
    case COCO_RELAY_REPLY_PROBE:
    case COCO_RELAY_REPLY_DOMAIN:
    case COCO_RELAY_REPLY_PEER_PROBE:
    case COCO_RELAY_REPLY_PEER_STATUS:
    case COCO_RELAY_REPLY_RECOVER:
    case COCO_RELAY_REPLY_LAST:
    default:
        break;
    }
    cocoProtoMessageFree(&cocoRelayReplySchema, type, data);
}

static gboolean
cocoQmpAgentOnReconnect(gpointer opaque)
{
    CocoQmpSocketAgent *sa = opaque;
    g_autoptr(GError) err = NULL;

    g_clear_pointer(&sa->reconnect, g_source_unref);
    if (cocoQmpAgentConnect(sa, &err) < 0) {
        g_free(sa->notReady);
        sa->notReady = g_strdup(err->message);
    }
    return G_SOURCE_REMOVE;
}

static void
cocoQmpAgentScheduleReconnect(CocoQmpSocketAgent *sa)
{
    if (sa->reconnect || sa->ch)
        return;
    sa->reconnect = g_timeout_source_new(sa->reconnectMs);
    g_source_set_callback(sa->reconnect, cocoQmpAgentOnReconnect, sa, NULL);
    g_source_attach(sa->reconnect, sa->ctx);
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
    sa->welcomed = FALSE;
    if (sa->refused) {
        /* Keep the refusal's reason; ask again later and less often. */
        sa->reconnectMs =
            MIN(sa->reconnectMs * 2, (guint)COCO_QMP_AGENT_RECONNECT_MAX_MS);
    } else {
        g_free(sa->notReady);
        sa->notReady = g_strdup(reason);
        sa->reconnectMs = COCO_QMP_AGENT_RECONNECT_MS;
    }
    cocoQmpAgentFailAll(sa, reason);
    cocoQmpAgentScheduleReconnect(sa);
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
        cocoQmpAgentScheduleReconnect(sa);
        return cocoErrorSetSystem(
            error, err, _("cannot reach the host agent at '%1$s'"), sa->path);
    }
    cocoSourceClear(&sa->reconnect);
    sa->ch = cocoQmpChannelNew(fd, sa->ctx, sa->path, cocoQmpAgentOnLine,
                               cocoQmpAgentOnClosed, sa);
    if (!json_object_has_member(sa->hello, "version"))
        json_object_set_int_member(sa->hello, "version",
                                   COCO_RELAY_PROTOCOL_VERSION);
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

    if (cocoQmpAgentConnect(sa, &err) < 0) {
        g_printerr("qemu-coco: event '%s' not delivered: %s\n", event,
                   err->message);
        return;
    }
    if (!(line = cocoRelayBuildEvent(event, data, &err))) {
        g_printerr("qemu-coco: event '%s' not delivered: %s\n", event,
                   err->message);
        return;
    }
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
    {
        CocoRelayGateReq g = {(gint64)req->id, gate, role, TRUE};

        line = cocoProtoBuildMessage(&cocoRelayRequestSchema,
                                     COCO_RELAY_MSG_GATE, &g);
    }
    cocoQmpChannelSend(sa->ch, line, strlen(line), NULL, 0);
}

static gboolean
cocoQmpAgentSocketReady(CocoQmpAgent *agent, char **reason)
{
    CocoQmpSocketAgent *sa = agent->data;

    if (sa->welcomed && sa->ch)
        return TRUE;
    *reason = g_strdup_printf(
        _("no host agent has accepted this relay (virtcocod at '%1$s'): %2$s"),
        sa->path,
        sa->notReady ? sa->notReady : _("no answer to its hello yet"));
    return FALSE;
}

static void
cocoQmpAgentSocketStart(CocoQmpAgent *agent)
{
    CocoQmpSocketAgent *sa = agent->data;

    if (sa->started)
        return;
    sa->started = TRUE;
    cocoQmpAgentConnect(sa, NULL);
}

static void
cocoQmpAgentSocketWaitReady(CocoQmpAgent *agent, guint timeoutMs,
                            CocoQmpAgentVerdictFunc cb, gpointer opaque)
{
    CocoQmpSocketAgent *sa = agent->data;
    CocoQmpAgentWaiter *w = g_new0(CocoQmpAgentWaiter, 1);

    w->sa = sa;
    w->cb = cb;
    w->opaque = opaque;
    sa->waiters = g_list_append(sa->waiters, w);
    if ((sa->welcomed || sa->refused) && sa->ch) {
        /* Answered already: from the main loop, never from inside. */
        w->timeout = g_idle_source_new();
    } else {
        /* Ask now rather than at the next scheduled attempt. */
        if (!sa->ch) {
            sa->refused = FALSE;
            cocoQmpAgentConnect(sa, NULL);
        }
        w->timeout = g_timeout_source_new(timeoutMs);
    }
    g_source_set_callback(w->timeout, cocoQmpAgentOnWaiterTimeout, w, NULL);
    g_source_attach(w->timeout, sa->ctx);
}

static void
cocoQmpAgentSocketDispose(CocoQmpAgent *agent)
{
    CocoQmpSocketAgent *sa = agent->data;
    g_autofree char *reason = g_strdup(_("the relay is shutting down"));

    while (sa->waiters) {
        CocoQmpAgentWaiter *w = sa->waiters->data;
        CocoQmpAgentVerdictFunc cb = w->cb;
        gpointer wo = w->opaque;

        sa->waiters = g_list_delete_link(sa->waiters, sa->waiters);
        cocoQmpAgentWaiterFree(w);
        cb(FALSE, reason, wo);
    }

    cocoSourceClear(&sa->reconnect);
    g_free(sa->notReady);
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
    .ready = cocoQmpAgentSocketReady,
    .start = cocoQmpAgentSocketStart,
    .waitReady = cocoQmpAgentSocketWaitReady,
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
    sa->reconnectMs = COCO_QMP_AGENT_RECONNECT_MS;
    sa->agent = cocoQmpAgentNew(&cocoQmpAgentSocketOps, sa);
    /* Not yet: before QEMU runs (qemu-coco has not exec'd it) the agent
     * cannot tell this process from any other and refuses it. */
    return sa->agent;
}
