/*
 * cocoagentincoming.c: the peer agents' connections (the destination
 * side), accepted on the agent's main thread without ever blocking it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every accepted connection is unauthenticated until it proved otherwise;
 * while it is, it counts against max_unauthenticated (all addresses) and
 * max_unauthenticated_per_address, and one deadline (handshake_timeout)
 * bounds its TLS handshake and hello together, however the peer paces
 * its bytes.
 *
 * The first bytes tell the two kinds apart: a TLS ClientHello (the control
 * connection, a probe or a status request) or "CAG2" (a data stream, whose
 * hello carries a token of its session's TLS control connection). An
 * incoming migration is assembled from one authenticated control
 * connection and its N streams, matched to the domain whose relay announced
 * migrate-incoming by the domain's UUID, never by its name.
 */

#include "internal.h"
#include "agent/cocoagentincoming.h"
#include "agent/cocoagentmetrics.h"
#include "agent/cocoagentmigration.h"
#include "agent/cocoagentpeer.h"
#include "agent/cocoagentpriv.h"
#include "agent/cocoagenttls.h"
#include "proto/cocoprotopeer.h"
#include "util/cocoerror.h"
#include "util/cocohex.h"
#include "util/cocosource.h"

#include <errno.h>
#include <glib-unix.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

/* At most this many incoming migrations wait for their streams or their
 * domain at once, and for this many seconds (peer_timeout). */
#define COCO_INCOMING_MAX_PENDING 32
/* Sessions remembered after their end for a source that reconnects. */
#define COCO_INCOMING_MAX_TOMBSTONES 256
/* A limit refusal is logged at most once per this many seconds. */
#define COCO_INCOMING_LOG_EVERY_S 10

typedef struct _CocoAgentIncomingConn CocoAgentIncomingConn;

/* The one asynchronous operation a connection has in flight: its callback
 * may run after the connection was refused and freed (its deadline), so
 * it finds the connection through this, cleared at the free. */
typedef struct {
    CocoAgentIncomingConn *c;
} CocoAgentIncomingOp;

struct _CocoAgentIncomingConn {
    CocoAgentIncoming *inc;
    CocoAgentIncomingOp *op;
    int fd; /* until it is wrapped */
    char *address;
    char *host;
    GSource *watch;
    GSource *deadline;
    GCancellable *cancel;
    GIOStream *base;
    GIOStream *tls;
    char *identity;
    uint8_t head[COCO_PEER_HEADER];
    gsize got;
    char *body;
    uint32_t len;
    bool counted;
    bool plain; /* "CAG2" seen: a data stream's plain hello */
};

typedef struct {
    CocoAgentIncoming *inc;
    CocoPeerHello *hello;
    CocoAgentPeerConn *ctl;
    char *host;
    GIOStream **streams;
    guint got;
    GSource *timeout;
    GSource *streams_timeout; /* until every stream arrived */
    GSource *heartbeat; /* the source's liveness check waits meanwhile */
} CocoAgentPending;

typedef struct {
    guint64 session;
    gint64 index;
    char *host;
    char *token;
    GIOStream *stream;
    gint64 expires;
} CocoAgentOrphan;

typedef struct {
    char *identity;
    CocoPhaseEvent answer;
    GBytes *payload;
    uint32_t arg; /* the answer's argument (an abort token's length) */
    gint64 expires;
} CocoAgentTombstone;

struct _CocoAgentIncoming {
    CocoAgent *agent;
    int fd;
    GSource *src;
    unsigned int port;
    GList *conns; /* CocoAgentIncomingConn, unauthenticated */
    guint nconns;
    GHashTable *per_host; /* host -> count */
    GHashTable *pending; /* &session -> CocoAgentPending */
    GList *orphans; /* CocoAgentOrphan */
    GHashTable *tombstones; /* &session -> CocoAgentTombstone */
    gint64 last_limit_log;
    guint limit_refusals;
};

static void cocoAgentIncomingConnFree(CocoAgentIncomingConn *c);
static void cocoAgentIncomingTry(CocoAgentIncoming *inc, CocoAgentPending *pd);

/* ---- bookkeeping -------------------------------------------------------- */

static void
cocoAgentIncomingLimitLog(CocoAgentIncoming *inc, const char *host,
                          const char *why)
{
    gint64 now = g_get_monotonic_time();

    inc->limit_refusals++;
    cocoAgentMetricsPeerError(cocoAgentMetricsOf(inc->agent),
                              COCO_AGENT_METRICS_PEER_INCOMING, "limit");
    if (now - inc->last_limit_log <
        (gint64)COCO_INCOMING_LOG_EVERY_S * G_USEC_PER_SEC)
        return;
    inc->last_limit_log = now;
    cocoAgentLog(inc->agent, NULL, G_LOG_LEVEL_WARNING,
                 "peer connection from '%s' refused: %s (%u refused so far)",
                 host, why, inc->limit_refusals);
}

static void
cocoAgentIncomingUncount(CocoAgentIncomingConn *c)
{
    CocoAgentIncoming *inc = c->inc;
    guint n;

    if (!c->counted)
        return;
    c->counted = false;
    inc->nconns--;
    n = GPOINTER_TO_UINT(g_hash_table_lookup(inc->per_host, c->host));
    if (n <= 1)
        g_hash_table_remove(inc->per_host, c->host);
    else
        g_hash_table_insert(inc->per_host, g_strdup(c->host),
                            GUINT_TO_POINTER(n - 1));
}

static void
cocoAgentIncomingConnFree(CocoAgentIncomingConn *c)
{
    CocoAgentIncoming *inc = c->inc;

    cocoAgentIncomingUncount(c);
    inc->conns = g_list_remove(inc->conns, c);
    if (c->op)
        c->op->c = NULL; /* its callback frees it */
    cocoSourceClear(&c->watch);
    cocoSourceClear(&c->deadline);
    if (c->cancel) {
        g_cancellable_cancel(c->cancel);
        g_object_unref(c->cancel);
    }
    if (c->fd >= 0)
        close(c->fd);
    if (c->tls) {
        g_io_stream_close(c->tls, NULL, NULL);
        g_object_unref(c->tls);
    }
    if (c->base) {
        g_io_stream_close(c->base, NULL, NULL);
        g_object_unref(c->base);
    }
    g_free(c->address);
    g_free(c->host);
    g_free(c->identity);
    g_free(c->body);
    g_free(c);
}

static void
cocoAgentIncomingRefuse(CocoAgentIncomingConn *c, const GError *err)
{
    cocoAgentMetricsPeerError(cocoAgentMetricsOf(c->inc->agent),
                              COCO_AGENT_METRICS_PEER_INCOMING,
                              cocoAgentMetricsCause(err));
    cocoAgentLog(c->inc->agent, NULL, G_LOG_LEVEL_MESSAGE,
                 "peer connection from '%s' refused: %s", c->address,
                 err->message);
    cocoAgentIncomingConnFree(c);
}

/* A timer of @pd on the agent's main context, every @seconds. */
static GSource *
cocoAgentPendingTimer(CocoAgentPending *pd, guint seconds, GSourceFunc func)
{
    GSource *src = g_timeout_source_new_seconds(seconds);

    g_source_set_callback(src, func, pd, NULL);
    g_source_attach(src, cocoAgentContext(pd->inc->agent));
    return src;
}

static void
cocoAgentPendingFree(gpointer p)
{
    CocoAgentPending *pd = p;
    gint64 i;

    cocoSourceClear(&pd->timeout);
    cocoSourceClear(&pd->streams_timeout);
    cocoSourceClear(&pd->heartbeat);
    cocoAgentPeerConnFree(pd->ctl);
    for (i = 0; pd->streams && i < pd->hello->streams; i++) {
        if (pd->streams[i]) {
            g_io_stream_close(pd->streams[i], NULL, NULL);
            g_object_unref(pd->streams[i]);
        }
    }
    g_free(pd->streams);
    cocoPeerHelloFree(pd->hello);
    g_free(pd->host);
    g_free(pd);
}

static void
cocoAgentOrphanFree(gpointer p)
{
    CocoAgentOrphan *o = p;

    if (o->stream) {
        g_io_stream_close(o->stream, NULL, NULL);
        g_object_unref(o->stream);
    }
    g_free(o->host);
    g_free(o->token);
    g_free(o);
}

static void
cocoAgentTombstoneFree(gpointer p)
{
    CocoAgentTombstone *t = p;

    g_free(t->identity);
    if (t->payload)
        g_bytes_unref(t->payload);
    g_free(t);
}

/* ---- answers to probes and status requests ------------------------------ */

typedef struct {
    GIOStream *stream;
    GBytes *bytes;
} CocoAgentIncomingAnswer;

static void
cocoAgentIncomingAnswerDone(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    CocoAgentIncomingAnswer *a = opaque;

    g_output_stream_write_all_finish(G_OUTPUT_STREAM(obj), res, NULL, NULL);
    g_io_stream_close(a->stream, NULL, NULL);
    g_object_unref(a->stream);
    g_bytes_unref(a->bytes);
    g_free(a);
}

/* Write @bytes (taken) on @stream (taken) without blocking, then close. */
static void
cocoAgentIncomingAnswer(GIOStream *stream, GBytes *bytes)
{
    CocoAgentIncomingAnswer *a = g_new0(CocoAgentIncomingAnswer, 1);
    gsize len;
    const void *data = g_bytes_get_data(bytes, &len);

    a->stream = stream;
    a->bytes = bytes;
    g_output_stream_write_all_async(g_io_stream_get_output_stream(stream), data,
                                    len, G_PRIORITY_DEFAULT, NULL,
                                    cocoAgentIncomingAnswerDone, a);
}

static void
cocoAgentIncomingProbe(CocoAgentIncoming *inc, GIOStream *tls)
{
    g_autoptr(JsonObject) probe = cocoAgentProbeObject(inc->agent);

    cocoAgentIncomingAnswer(tls, cocoPeerFrameEncode(probe));
}

static void
cocoAgentIncomingStatus(CocoAgentIncoming *inc, GIOStream *tls,
                        const CocoPeerHello *hello)
{
    CocoAgentRecords *records = cocoAgentRecords(inc->agent);
    g_autoptr(JsonObject) rec = NULL;
    g_autoptr(JsonObject) answer = json_object_new();

    if (hello->id)
        rec = cocoAgentRecordsGet(records, hello->id);
    if (!rec && hello->has_session)
        rec = cocoAgentRecordsFindSession(records, hello->session, NULL);
    json_object_set_string_member(answer, "type", "status");
    if (rec)
        json_object_set_object_member(answer, "record", g_steal_pointer(&rec));
    cocoAgentIncomingAnswer(tls, cocoPeerFrameEncode(answer));
}

/* ---- reconnecting sources ------------------------------------------------ */

void
cocoAgentIncomingRemember(CocoAgentIncoming *inc, guint64 session,
                          const char *peer_identity, CocoPhaseEvent answer,
                          GBytes *payload, uint32_t arg)
{
    CocoAgentTombstone *t = g_new0(CocoAgentTombstone, 1);
    guint64 *key = g_new(guint64, 1);
    const CocoAgentConfig *cfg = cocoAgentConfig(inc->agent);

    t->identity = g_strdup(peer_identity);
    t->answer = answer;
    t->payload = payload ? g_bytes_ref(payload) : NULL;
    t->arg = arg;
    t->expires =
        g_get_monotonic_time() + (gint64)cfg->reconnect_window * G_USEC_PER_SEC;
    *key = session;
    /* Bounded: forget the ones that expired, then refuse to grow. */
    if (g_hash_table_size(inc->tombstones) >= COCO_INCOMING_MAX_TOMBSTONES) {
        GHashTableIter it;
        gpointer v;
        gint64 now = g_get_monotonic_time();

        g_hash_table_iter_init(&it, inc->tombstones);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            if (((CocoAgentTombstone *)v)->expires < now)
                g_hash_table_iter_remove(&it);
        }
    }
    if (g_hash_table_size(inc->tombstones) >= COCO_INCOMING_MAX_TOMBSTONES) {
        cocoAgentTombstoneFree(t);
        g_free(key);
        return;
    }
    g_hash_table_replace(inc->tombstones, key, t);
}

/* A source reconnects to ask what became of its session. */
static void
cocoAgentIncomingResume(CocoAgentIncoming *inc, CocoAgentIncomingConn *c,
                        const CocoPeerHello *hello)
{
    CocoAgentMigration *m = cocoAgentFindMigrationBySession(
        inc->agent, hello->session, COCO_FIRMWARE_ROLE_DESTINATION);
    CocoAgentTombstone *t;
    g_autoptr(GError) err = NULL;
    GByteArray *binding = NULL;
    CocoPhaseMessage msg = {0};
    g_autoptr(GBytes) frame = NULL;
    g_autofree char *reason = NULL;

    if (m &&
        !STREQ_NULLABLE(cocoAgentMigrationGetPeerIdentity(m), c->identity)) {
        cocoErrorSet(
            &err, COCO_ERROR_PEER_AUTH,
            _("a reconnection to session '%1$016llx' comes from '%2$s', not from its source '%3$s'"),
            (unsigned long long)hello->session, NULLSTR(c->identity),
            NULLSTR(cocoAgentMigrationGetPeerIdentity(m)));
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    if (m) {
        CocoAgentPeerConn *ctl;

        if (cocoAgentTlsChannelBinding(c->tls, &binding, &err) < 0) {
            cocoAgentIncomingRefuse(c, err);
            return;
        }
        ctl = cocoAgentPeerConnNew(g_steal_pointer(&c->tls), c->address,
                                   c->identity, binding);
        cocoAgentLog(inc->agent, m, G_LOG_LEVEL_MESSAGE,
                     "the source '%s' reconnected to the session", c->address);
        cocoAgentMigrationPostControl(m, ctl);
        cocoAgentIncomingConnFree(c);
        return;
    }
    t = g_hash_table_lookup(inc->tombstones, &hello->session);
    if (t && t->expires > g_get_monotonic_time() &&
        STREQ_NULLABLE(t->identity, c->identity)) {
        msg.type = t->answer;
        msg.arg = t->arg;
        if (t->payload)
            msg.data = g_bytes_get_data(t->payload, &msg.len);
    } else {
        reason = g_strdup_printf(
            _("the destination host knows no migration session '%1$016llx' any more"),
            (unsigned long long)hello->session);
        msg.type = COCO_PHASE_EVENT_PEER_ABORTED;
        msg.data = reason;
        msg.len = strlen(reason);
    }
    if (!(frame = cocoPhaseMessageEncode(&msg, &err))) {
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    cocoAgentLog(inc->agent, NULL, G_LOG_LEVEL_MESSAGE,
                 "session %016" G_GINT64_MODIFIER
                 "x: the source '%s' reconnected; answered '%s'",
                 hello->session, c->address,
                 cocoPhaseEventTypeToString(msg.type));
    cocoAgentIncomingAnswer(g_steal_pointer(&c->tls), g_steal_pointer(&frame));
    cocoAgentIncomingConnFree(c);
}

/* ---- assembling an incoming migration ------------------------------------ */

/* A pending session answers for itself: the source hears from it while
 * it waits for its streams or its domain, and so learns the cause from
 * this host's deadlines below, not from its own liveness check. */
static gboolean
cocoAgentPendingOnHeartbeat(gpointer opaque)
{
    CocoAgentPending *pd = opaque;

    cocoAgentPeerConnHeartbeat(pd->ctl);
    return G_SOURCE_CONTINUE;
}

/* Refuse the pending session @pd and tell its source why at once (not at
 * its peer deadline); @pd is freed. */
static void
cocoAgentPendingAbort(CocoAgentIncoming *inc, CocoAgentPending *pd,
                      const char *reason)
{
    g_autoptr(GError) err = NULL;
    CocoPhaseMessage msg = {0};
    guint64 session = pd->hello->session;

    cocoAgentLog(inc->agent, NULL, G_LOG_LEVEL_WARNING,
                 "incoming session %016" G_GINT64_MODIFIER
                 "x for domain '%s' (%s) from '%s' refused: %s",
                 session, pd->hello->name, pd->hello->uuid, pd->host, reason);
    msg.type = COCO_PHASE_EVENT_PEER_ABORTED;
    msg.data = reason;
    msg.len = strlen(reason);
    if (cocoAgentPeerConnSendMessage(pd->ctl, &msg, &err) < 0)
        cocoAgentLog(inc->agent, NULL, G_LOG_LEVEL_MESSAGE,
                     "cannot tell the source '%s': %s", pd->host, err->message);
    g_hash_table_remove(inc->pending, &session);
}

/* A deadline of the pending session @pd ran out: its streams (the source
 * sends them right after its control connection, so one missing after
 * handshake_timeout was refused on the way by a limit of this host, or
 * lost) or its domain's QEMU (peer_timeout). The message says which of
 * the two it still waits for, whichever deadline fired. */
static void
cocoAgentPendingExpire(CocoAgentPending *pd)
{
    CocoAgentIncoming *inc = pd->inc;
    const CocoAgentConfig *cfg = cocoAgentConfig(inc->agent);
    g_autofree char *reason = NULL;

    if (pd->got < pd->hello->streams)
        reason = g_strdup_printf(
            _("only '%1$u' of the '%2$lld' data streams of the migration of domain '%3$s' reached the destination host within '%4$u' seconds: the others were refused by its limits on unauthenticated connections (max_unauthenticated, max_unauthenticated_per_address) or lost on the way"),
            pd->got, (long long)pd->hello->streams, pd->hello->name,
            cfg->tls.handshake_timeout);
    else
        reason = g_strdup_printf(
            _("no QEMU of domain '%1$s' (%2$s) announced an incoming migration on the destination host within '%3$u' seconds"),
            pd->hello->name, pd->hello->uuid, cfg->peer_timeout);
    cocoAgentPendingAbort(inc, pd, reason);
}

static gboolean
cocoAgentPendingOnStreamsTimeout(gpointer opaque)
{
    CocoAgentPending *pd = opaque;

    g_clear_pointer(&pd->streams_timeout, g_source_unref);
    cocoAgentPendingExpire(pd);
    return G_SOURCE_REMOVE;
}

static gboolean
cocoAgentPendingOnTimeout(gpointer opaque)
{
    CocoAgentPending *pd = opaque;

    g_clear_pointer(&pd->timeout, g_source_unref);
    cocoAgentPendingExpire(pd);
    return G_SOURCE_REMOVE;
}

/* Attach a stream (taken) to @pd when its token and origin check. */
static bool
cocoAgentPendingAddStream(CocoAgentPending *pd, GIOStream *stream,
                          const char *host, gint64 index, const char *token,
                          const char *address)
{
    g_autoptr(GError) err = NULL;
    guint8 raw[COCO_AGENT_TLS_TOKEN_SIZE];

    if (!STREQ(host, pd->host)) {
        cocoErrorSet(
            &err, COCO_ERROR_PEER_AUTH,
            _("a data stream of session '%1$016llx' comes from '%2$s', not from the host of its control connection '%3$s'"),
            (unsigned long long)pd->hello->session, address, pd->host);
    } else if (index >= pd->hello->streams || pd->streams[index]) {
        cocoErrorSet(
            &err, COCO_ERROR_AGENT_PROTOCOL,
            _("data stream '%1$lld' of session '%2$016llx' from '%3$s' is not expected (replayed or out of range)"),
            (long long)index, (unsigned long long)pd->hello->session, address);
    } else if (cocoHexDecode(token, sizeof(raw), raw) < 0 ||
               cocoAgentTlsStreamTokenCheck(
                   cocoAgentPeerConnGetBinding(pd->ctl), pd->hello->session,
                   (guint)index, raw, address, &err) < 0) {
        if (!err)
            cocoErrorSet(
                &err, COCO_ERROR_PEER_AUTH,
                _("the data stream from '%1$s' carries no valid token"),
                address);
    }
    if (err) {
        cocoAgentMetricsPeerError(cocoAgentMetricsOf(pd->inc->agent),
                                  COCO_AGENT_METRICS_PEER_INCOMING,
                                  cocoAgentMetricsCause(err));
        cocoAgentLog(pd->inc->agent, NULL, G_LOG_LEVEL_WARNING,
                     "data stream refused: %s", err->message);
        g_io_stream_close(stream, NULL, NULL);
        g_object_unref(stream);
        return false;
    }
    pd->streams[index] = stream;
    pd->got++;
    return true;
}

/* The streams that arrived before their control connection. */
static void
cocoAgentPendingAdopt(CocoAgentIncoming *inc, CocoAgentPending *pd)
{
    GList *l = inc->orphans;

    while (l) {
        GList *next = l->next;
        CocoAgentOrphan *o = l->data;

        if (o->session == pd->hello->session) {
            inc->orphans = g_list_delete_link(inc->orphans, l);
            cocoAgentPendingAddStream(pd, g_steal_pointer(&o->stream), o->host,
                                      o->index, o->token, o->host);
            cocoAgentOrphanFree(o);
        }
        l = next;
    }
}

static void
cocoAgentIncomingTry(CocoAgentIncoming *inc, CocoAgentPending *pd)
{
    CocoAgentDomainInfo info = {0};
    g_autoptr(GError) err = NULL;
    guint64 relay = 0;
    guint64 session = pd->hello->session;
    CocoAgentMigration *m;

    if (pd->got < pd->hello->streams)
        return;
    cocoSourceClear(&pd->streams_timeout);
    if (!cocoAgentRelayServerTakeIncoming(cocoAgentRelayServerOf(inc->agent),
                                          pd->hello->uuid, &info, &relay))
        return; /* wait for the relay's migrate-incoming */
    {
        gpointer key = NULL;

        /* The pending entry is taken: its key is freed here, the entry
         * below. */
        if (g_hash_table_steal_extended(inc->pending, &session, &key, NULL))
            g_free(key);
    }
    cocoSourceClear(&pd->timeout);
    m = cocoAgentMigrationNewDestination(
        inc->agent, &info, relay, g_steal_pointer(&pd->hello),
        g_steal_pointer(&pd->ctl), g_steal_pointer(&pd->streams), &err);
    if (m) {
        cocoAgentRelayServerAttach(cocoAgentRelayServerOf(inc->agent), info.pid,
                                   m);
        cocoAgentMigrationUnref(m);
    } else
        cocoAgentLog(inc->agent, NULL, G_LOG_LEVEL_WARNING,
                     "incoming session %016" G_GINT64_MODIFIER "x refused: %s",
                     session, err->message);
    cocoAgentDomainInfoClear(&info);
    cocoAgentPendingFree(pd);
}

void
cocoAgentIncomingDomainGone(CocoAgentIncoming *inc, const char *uuid)
{
    g_autoptr(GList) pds = g_hash_table_get_values(inc->pending);
    const char *reason =
        _("QEMU on the destination ended before the migration started");
    GList *l;

    for (l = pds; l; l = l->next) {
        CocoAgentPending *pd = l->data;

        if (STREQ(pd->hello->uuid, uuid))
            cocoAgentPendingAbort(inc, pd, reason);
    }
}

void
cocoAgentIncomingAnnounced(CocoAgentIncoming *inc, const char *uuid)
{
    g_autoptr(GList) pds = g_hash_table_get_values(inc->pending);
    GList *l;

    for (l = pds; l; l = l->next) {
        CocoAgentPending *pd = l->data;

        if (STREQ(pd->hello->uuid, uuid)) {
            cocoAgentIncomingTry(inc, pd);
            return;
        }
    }
}

static void
cocoAgentIncomingControl(CocoAgentIncoming *inc, CocoAgentIncomingConn *c,
                         CocoPeerHello *hello)
{
    const CocoAgentConfig *cfg = cocoAgentConfig(inc->agent);
    g_autoptr(CocoPeerHello) owned = hello;
    g_autoptr(GError) err = NULL;
    GByteArray *binding = NULL;
    CocoAgentPending *pd;
    guint64 *key;

    if (hello->resume) {
        cocoAgentIncomingResume(inc, c, hello);
        return;
    }
    if (g_hash_table_contains(inc->pending, &hello->session) ||
        cocoAgentFindMigrationBySession(inc->agent, hello->session,
                                        COCO_FIRMWARE_ROLE_DESTINATION)) {
        cocoErrorSet(&err, COCO_ERROR_AGENT_PROTOCOL,
                     _("session '%1$016llx' from '%2$s' exists already"),
                     (unsigned long long)hello->session, c->address);
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    if (g_hash_table_size(inc->pending) >= COCO_INCOMING_MAX_PENDING) {
        cocoErrorSet(
            &err, COCO_ERROR_AGENT_LIMIT,
            _("'%1$u' incoming migrations wait already; session from '%2$s' refused"),
            COCO_INCOMING_MAX_PENDING, c->address);
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    if (cocoAgentTlsChannelBinding(c->tls, &binding, &err) < 0) {
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    pd = g_new0(CocoAgentPending, 1);
    pd->inc = inc;
    pd->hello = g_steal_pointer(&owned);
    pd->host = g_strdup(c->host);
    pd->ctl = cocoAgentPeerConnNew(g_steal_pointer(&c->tls), c->address,
                                   c->identity, binding);
    pd->streams = g_new0(GIOStream *, pd->hello->streams);
    pd->timeout =
        cocoAgentPendingTimer(pd, cfg->peer_timeout, cocoAgentPendingOnTimeout);
    pd->streams_timeout = cocoAgentPendingTimer(
        pd, cfg->tls.handshake_timeout, cocoAgentPendingOnStreamsTimeout);
    if (cfg->heartbeat_interval > 0)
        pd->heartbeat = cocoAgentPendingTimer(pd, cfg->heartbeat_interval,
                                              cocoAgentPendingOnHeartbeat);
    key = g_new(guint64, 1);
    *key = pd->hello->session;
    g_hash_table_insert(inc->pending, key, pd);
    cocoAgentLog(inc->agent, NULL, G_LOG_LEVEL_MESSAGE,
                 "incoming session %016" G_GINT64_MODIFIER
                 "x for domain '%s' (%s) from '%s' (%s), %lld streams",
                 pd->hello->session, pd->hello->name, pd->hello->uuid,
                 c->address, NULLSTR(c->identity),
                 (long long)pd->hello->streams);
    cocoAgentIncomingConnFree(c);
    cocoAgentPendingAdopt(inc, pd);
    cocoAgentIncomingTry(inc, pd);
}

static void
cocoAgentIncomingStream(CocoAgentIncoming *inc, CocoAgentIncomingConn *c,
                        CocoPeerHello *hello)
{
    const CocoAgentConfig *cfg = cocoAgentConfig(inc->agent);
    g_autoptr(CocoPeerHello) owned G_GNUC_UNUSED = hello;
    g_autoptr(GError) err = NULL;
    CocoAgentPending *pd = g_hash_table_lookup(inc->pending, &hello->session);
    GIOStream *stream;
    int fd = c->fd;

    c->fd = -1;
    cocoAgentPeerSocketOptions(fd, cfg->peer_deadline);
    {
        g_autoptr(GSocket) sock = g_socket_new_from_fd(fd, &err);

        if (!sock) {
            close(fd);
            cocoAgentIncomingRefuse(c, err);
            return;
        }
        /* The transfer engine reads it blocking, on its threads. */
        g_socket_set_blocking(sock, TRUE);
        stream =
            G_IO_STREAM(g_socket_connection_factory_create_connection(sock));
    }
    if (pd) {
        if (cocoAgentPendingAddStream(pd, stream, c->host, hello->index,
                                      hello->token, c->address))
            cocoAgentIncomingTry(inc, pd);
    } else {
        CocoAgentOrphan *o = g_new0(CocoAgentOrphan, 1);

        /* Its control connection is still in its handshake: the stream
         * waits, within the same deadline, and counts as unauthenticated
         * meanwhile (it holds the connection's slot: freed below). */
        o->session = hello->session;
        o->index = hello->index;
        o->host = g_strdup(c->host);
        o->token = g_strdup(hello->token);
        o->stream = stream;
        o->expires = g_get_monotonic_time() +
                     (gint64)cfg->tls.handshake_timeout * G_USEC_PER_SEC;
        inc->orphans = g_list_append(inc->orphans, o);
    }
    cocoAgentIncomingConnFree(c);
}

static void
cocoAgentIncomingDispatch(CocoAgentIncomingConn *c, CocoPeerHello *hello)
{
    CocoAgentIncoming *inc = c->inc;

    cocoSourceClear(&c->deadline);
    switch ((CocoPeerKind)hello->kind) {
    case COCO_PEER_KIND_PROBE:
        cocoPeerHelloFree(hello);
        cocoAgentIncomingProbe(inc, g_steal_pointer(&c->tls));
        cocoAgentIncomingConnFree(c);
        return;
    case COCO_PEER_KIND_STATUS:
        cocoAgentIncomingStatus(inc, g_steal_pointer(&c->tls), hello);
        cocoPeerHelloFree(hello);
        cocoAgentIncomingConnFree(c);
        return;
    case COCO_PEER_KIND_CONTROL:
        cocoAgentIncomingControl(inc, c, hello);
        return;
    case COCO_PEER_KIND_STREAM:
        cocoAgentIncomingStream(inc, c, hello);
        return;
    case COCO_PEER_KIND_LAST:
    default:
        break;
    }
    cocoPeerHelloFree(hello);
    cocoAgentIncomingConnFree(c);
}

/* ---- the handshake of one connection ------------------------------------- */

static gboolean
cocoAgentIncomingOnDeadline(gpointer opaque)
{
    CocoAgentIncomingConn *c = opaque;
    const CocoAgentConfig *cfg = cocoAgentConfig(c->inc->agent);
    g_autoptr(GError) err = NULL;

    g_clear_pointer(&c->deadline, g_source_unref);
    cocoErrorSet(
        &err, COCO_ERROR_PEER_TIMEOUT,
        _("the peer '%1$s' did not complete its handshake and hello within '%2$u' seconds"),
        c->address, cfg->tls.handshake_timeout);
    cocoAgentIncomingRefuse(c, err);
    return G_SOURCE_REMOVE;
}

static CocoAgentIncomingOp *
cocoAgentIncomingOpNew(CocoAgentIncomingConn *c)
{
    CocoAgentIncomingOp *op = g_new0(CocoAgentIncomingOp, 1);

    op->c = c;
    c->op = op;
    return op;
}

/* The connection of a finished operation, or NULL when it was freed. */
static CocoAgentIncomingConn *
cocoAgentIncomingOpDone(gpointer opaque)
{
    CocoAgentIncomingOp *op = opaque;
    CocoAgentIncomingConn *c = op->c;

    if (c)
        c->op = NULL;
    g_free(op);
    return c;
}

static CocoPeerHello *
cocoAgentIncomingParse(CocoAgentIncomingConn *c, GError **error)
{
    return cocoPeerHelloParse(c->body, c->len, error);
}

static void
cocoAgentIncomingOnTlsBody(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    CocoAgentIncomingConn *c = cocoAgentIncomingOpDone(opaque);
    g_autoptr(GError) err = NULL;
    CocoPeerHello *hello;
    gsize got = 0;
    bool ok =
        g_input_stream_read_all_finish(G_INPUT_STREAM(obj), res, &got, &err);

    if (!c)
        return; /* refused meanwhile */
    if (!ok || got != c->len) {
        if (!err)
            cocoErrorSet(&err, COCO_ERROR_AGENT_PROTOCOL,
                         _("the peer '%1$s' closed before its hello"),
                         c->address);
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    if (!(hello = cocoAgentIncomingParse(c, &err))) {
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    if (hello->kind == COCO_PEER_KIND_STREAM) {
        cocoPeerHelloFree(hello);
        cocoErrorSet(&err, COCO_ERROR_AGENT_PROTOCOL,
                     _("the peer '%1$s' sent a data stream's hello inside TLS"),
                     c->address);
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    cocoAgentIncomingDispatch(c, hello);
}

static void
cocoAgentIncomingOnTlsHead(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    CocoAgentIncomingConn *c = cocoAgentIncomingOpDone(opaque);
    g_autoptr(GError) err = NULL;
    gsize got = 0;
    bool ok =
        g_input_stream_read_all_finish(G_INPUT_STREAM(obj), res, &got, &err);

    if (!c)
        return; /* refused meanwhile */
    if (!ok || got != sizeof(c->head) ||
        cocoPeerFrameHeader(c->head, COCO_PEER_HELLO_MAX, &c->len, &err) < 0) {
        if (!err)
            cocoErrorSet(&err, COCO_ERROR_AGENT_PROTOCOL,
                         _("the peer '%1$s' closed before its hello"),
                         c->address);
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    c->body = g_malloc0(c->len + 1);
    g_input_stream_read_all_async(g_io_stream_get_input_stream(c->tls), c->body,
                                  c->len, G_PRIORITY_DEFAULT, c->cancel,
                                  cocoAgentIncomingOnTlsBody,
                                  cocoAgentIncomingOpNew(c));
}

static void
cocoAgentIncomingOnHandshake(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    CocoAgentIncomingConn *c = cocoAgentIncomingOpDone(opaque);
    g_autoptr(GError) err = NULL;
    g_autofree char *identity = NULL;
    GIOStream *tls = cocoAgentTlsHandshakeFinish(res, &identity, &err);

    if (!c) {
        /* Refused meanwhile (its deadline): drop what the handshake made. */
        if (tls) {
            g_io_stream_close(tls, NULL, NULL);
            g_object_unref(tls);
        }
        return;
    }
    c->tls = tls;
    c->identity = g_steal_pointer(&identity);
    if (!c->tls) {
        g_clear_object(&c->base);
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    g_clear_object(&c->base);
    /* The client's certificate must name the host it connects from. */
    if (cocoAgentTlsPeerCheck(c->tls, c->host, &err) < 0) {
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    g_input_stream_read_all_async(g_io_stream_get_input_stream(c->tls), c->head,
                                  sizeof(c->head), G_PRIORITY_DEFAULT,
                                  c->cancel, cocoAgentIncomingOnTlsHead,
                                  cocoAgentIncomingOpNew(c));
}

static void
cocoAgentIncomingStartTls(CocoAgentIncomingConn *c)
{
    CocoAgentIncoming *inc = c->inc;
    g_autoptr(GError) err = NULL;
    g_autoptr(GSocket) sock = NULL;
    gint64 left;

    if (!cocoAgentTls(inc->agent)) {
        cocoErrorSet(
            &err, COCO_ERROR_PEER_AUTH,
            _("the peer '%1$s' wants a migration, but this host has no TLS credentials for its agent (see the tls_* keys of virtcocod.conf)"),
            c->address);
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    if (!(sock = g_socket_new_from_fd(c->fd, &err))) {
        cocoAgentIncomingRefuse(c, err);
        return;
    }
    c->fd = -1;
    c->base = G_IO_STREAM(g_socket_connection_factory_create_connection(sock));
    left = g_source_get_ready_time(c->deadline) - g_get_monotonic_time();
    g_main_context_push_thread_default(cocoAgentContext(inc->agent));
    cocoAgentTlsHandshakeAsync(
        cocoAgentTls(inc->agent), c->base, COCO_AGENT_TLS_SERVER, NULL,
        (guint)MAX(left / 1000, 1), c->cancel, cocoAgentIncomingOnHandshake,
        cocoAgentIncomingOpNew(c));
    g_main_context_pop_thread_default(cocoAgentContext(inc->agent));
}

/* Read the plain hello of a data stream, exactly: what follows belongs to
 * the transfer engine. */
static gboolean
cocoAgentIncomingOnReadable(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoAgentIncomingConn *c = opaque;
    g_autoptr(GError) err = NULL;
    CocoPeerHello *hello;
    ssize_t n;

    if (!c->plain) {
        uint8_t peek[4];

        n = recv(fd, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return G_SOURCE_CONTINUE;
        if (n <= 0) {
            cocoErrorSet(&err, COCO_ERROR_AGENT_PROTOCOL,
                         _("the peer '%1$s' closed before its hello"),
                         c->address);
            g_clear_pointer(&c->watch, g_source_unref);
            cocoAgentIncomingRefuse(c, err);
            return G_SOURCE_REMOVE;
        }
        if (n < 4 && memcmp(peek, COCO_PEER_MAGIC, (size_t)n) == 0)
            return G_SOURCE_CONTINUE;
        if (n < 4 || (memcmp(peek, COCO_PEER_MAGIC, 4) != 0 &&
                      memcmp(peek, COCO_PEER_MAGIC_OLD, 4) != 0)) {
            /* Not a plain hello: a TLS client. */
            g_clear_pointer(&c->watch, g_source_unref);
            cocoAgentIncomingStartTls(c);
            return G_SOURCE_REMOVE;
        }
        c->plain = true;
    }
    if (c->got < sizeof(c->head)) {
        n = recv(fd, c->head + c->got, sizeof(c->head) - c->got, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return G_SOURCE_CONTINUE;
        if (n <= 0)
            goto closed;
        c->got += (gsize)n;
        if (c->got < sizeof(c->head))
            return G_SOURCE_CONTINUE;
        if (cocoPeerFrameHeader(c->head, COCO_PEER_HELLO_MAX, &c->len, &err) <
            0)
            goto refuse;
        c->body = g_malloc0(c->len + 1);
        return G_SOURCE_CONTINUE;
    }
    n = recv(fd, c->body + (c->got - sizeof(c->head)),
             c->len - (c->got - sizeof(c->head)), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return G_SOURCE_CONTINUE;
    if (n <= 0)
        goto closed;
    c->got += (gsize)n;
    if (c->got < sizeof(c->head) + c->len)
        return G_SOURCE_CONTINUE;
    g_clear_pointer(&c->watch, g_source_unref);
    if (!(hello = cocoAgentIncomingParse(c, &err))) {
        cocoAgentIncomingRefuse(c, err);
        return G_SOURCE_REMOVE;
    }
    if (hello->kind != COCO_PEER_KIND_STREAM) {
        cocoErrorSet(
            &err, COCO_ERROR_PEER_AUTH,
            _("the peer '%1$s' sent a '%2$s' hello without TLS: only data streams may"),
            c->address, cocoPeerKindTypeToString(hello->kind));
        cocoPeerHelloFree(hello);
        cocoAgentIncomingRefuse(c, err);
        return G_SOURCE_REMOVE;
    }
    cocoAgentIncomingDispatch(c, hello);
    return G_SOURCE_REMOVE;

closed:
    cocoErrorSet(&err, COCO_ERROR_AGENT_PROTOCOL,
                 _("the peer '%1$s' closed before its hello"), c->address);
refuse:
    g_clear_pointer(&c->watch, g_source_unref);
    cocoAgentIncomingRefuse(c, err);
    return G_SOURCE_REMOVE;
}

/* Forget orphan streams whose control connection never came. */
static void
cocoAgentIncomingExpireOrphans(CocoAgentIncoming *inc)
{
    gint64 now = g_get_monotonic_time();
    GList *l = inc->orphans;

    while (l) {
        GList *next = l->next;
        CocoAgentOrphan *o = l->data;

        if (o->expires < now) {
            cocoAgentLog(inc->agent, NULL, G_LOG_LEVEL_WARNING,
                         "data stream from '%s' refused: no control connection "
                         "of session %016" G_GINT64_MODIFIER "x arrived",
                         o->host, o->session);
            inc->orphans = g_list_delete_link(inc->orphans, l);
            cocoAgentOrphanFree(o);
        }
        l = next;
    }
}

static gboolean
cocoAgentIncomingOnAccept(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoAgentIncoming *inc = opaque;
    const CocoAgentConfig *cfg = cocoAgentConfig(inc->agent);

    cocoAgentIncomingExpireOrphans(inc);
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        char host[NI_MAXHOST] = "?";
        char serv[NI_MAXSERV] = "?";
        CocoAgentIncomingConn *c;
        guint perhost;
        guint orphans = g_list_length(inc->orphans);
        int cfd = accept4(fd, (struct sockaddr *)&ss, &sslen,
                          SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (cfd < 0)
            break;
        getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), serv,
                    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
        perhost = GPOINTER_TO_UINT(g_hash_table_lookup(inc->per_host, host));
        if (inc->nconns + orphans >= cfg->max_unauthenticated) {
            close(cfd);
            cocoAgentIncomingLimitLog(inc, host,
                                      "too many unauthenticated connections");
            continue;
        }
        if (perhost >= cfg->max_unauthenticated_per_address) {
            close(cfd);
            cocoAgentIncomingLimitLog(
                inc, host, "too many unauthenticated connections from it");
            continue;
        }
        c = g_new0(CocoAgentIncomingConn, 1);
        c->inc = inc;
        c->fd = cfd;
        c->host = g_strdup(host);
        c->address = strchr(host, ':') ? g_strdup_printf("[%s]:%s", host, serv)
                                       : g_strdup_printf("%s:%s", host, serv);
        c->cancel = g_cancellable_new();
        c->counted = true;
        inc->nconns++;
        g_hash_table_insert(inc->per_host, g_strdup(host),
                            GUINT_TO_POINTER(perhost + 1));
        inc->conns = g_list_prepend(inc->conns, c);
        c->deadline = g_timeout_source_new_seconds(cfg->tls.handshake_timeout);
        g_source_set_callback(c->deadline, cocoAgentIncomingOnDeadline, c,
                              NULL);
        g_source_attach(c->deadline, cocoAgentContext(inc->agent));
        c->watch = g_unix_fd_source_new(cfd, G_IO_IN | G_IO_HUP | G_IO_ERR);
        g_source_set_callback(
            c->watch, (GSourceFunc)(void (*)(void))cocoAgentIncomingOnReadable,
            c, NULL);
        g_source_attach(c->watch, cocoAgentContext(inc->agent));
    }
    return G_SOURCE_CONTINUE;
}

/* ---- the listener -------------------------------------------------------- */

CocoAgentIncoming *
cocoAgentIncomingNew(CocoAgent *agent, GError **error)
{
    const CocoAgentConfig *cfg = cocoAgentConfig(agent);
    g_autoptr(CocoAgentIncoming) inc = g_new0(CocoAgentIncoming, 1);

    inc->agent = agent;
    inc->fd = -1;
    inc->per_host =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    inc->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                         cocoAgentPendingFree);
    inc->tombstones = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                            cocoAgentTombstoneFree);
    if ((inc->fd = cocoAgentPeerListen(cfg->listen_address, cfg->port,
                                       &inc->port, error)) < 0)
        return NULL;
    inc->src = g_unix_fd_source_new(inc->fd, G_IO_IN);
    g_source_set_callback(
        inc->src, (GSourceFunc)(void (*)(void))cocoAgentIncomingOnAccept, inc,
        NULL);
    g_source_attach(inc->src, cocoAgentContext(agent));
    return g_steal_pointer(&inc);
}

void
cocoAgentIncomingFree(CocoAgentIncoming *inc)
{
    if (!inc)
        return;
    cocoSourceClear(&inc->src);
    if (inc->fd >= 0)
        close(inc->fd);
    while (inc->conns)
        cocoAgentIncomingConnFree(inc->conns->data);
    g_list_free_full(g_steal_pointer(&inc->orphans), cocoAgentOrphanFree);
    if (inc->pending)
        g_hash_table_unref(inc->pending);
    if (inc->tombstones)
        g_hash_table_unref(inc->tombstones);
    if (inc->per_host)
        g_hash_table_unref(inc->per_host);
    g_free(inc);
}

unsigned int
cocoAgentIncomingGetPort(CocoAgentIncoming *inc)
{
    return inc->port;
}

guint
cocoAgentIncomingUnauthenticated(CocoAgentIncoming *inc)
{
    return inc->nconns + g_list_length(inc->orphans);
}
