/*
 * cocoagentmigration.c: one confidential migration on one host, on a
 * worker thread of its own
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentdomain.h"
#include "agent/cocoagentincoming.h"
#include "agent/cocoagentmetrics.h"
#include "agent/cocoagentmigration.h"
#include "agent/cocoagentpeerslots.h"
#include "agent/cocoagenttls.h"
#include "conf/cocomigrationdef.h"
#include "firmware/cocoemu.h"
#include "firmware/cocoemuplatform.h"
#include "migration/cocomigrationsession.h"
#include "migration/cocophasetransfer.h"
#include "migration/cocoprecopypolicy.h"
#include "transfer/cocodirtyfirmware.h"
#include "util/cocoerror.h"
#include "util/cocosource.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#ifdef __GLIBC__
# include <malloc.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#define COCO_MIGRATION_POLL_MS 2
#define COCO_MIGRATION_PROGRESS_MS 200
/* A source that lost its peer after the start token tries it again this
 * often, within reconnect_window. */
#define COCO_MIGRATION_RECONNECT_S 2
/* How long a recover request waits for the outcome before it answers. */
#define COCO_MIGRATION_RECOVER_WAIT_S 10

typedef struct {
    guint64 relay; /* 0: not held */
    gint64 id;
} CocoAgentHeld;

struct _CocoAgentMigration {
    gint refs;
    CocoAgent *agent;

    /* Immutable after creation. */
    char *id;
    CocoFirmwareRole role;
    guint64 session_id;
    CocoAgentDomainInfo dom;
    char *peer_identity; /* destination: the source's certificate names */
    char *started;

    /* The worker. */
    GThread *thread;
    GMainContext *ctx;
    GMainLoop *loop;

    /* Published for the main thread. */
    gint state; /* CocoPhaseState */
    gint final; /* bool */
    gint done_posted;
    gint retiring; /* bool: the main thread joins the worker once it ended */

    /* Owned by the worker. */
    guint64 relay;
    char *peer; /* "host:port" of the peer agent */
    char *peer_host;
    unsigned int peer_port;
    unsigned int streams;
    unsigned int pages_per_bundle;
    unsigned int nvcpus;
    uint64_t npages;
    CocoMigrationDef *def;
    int ram_fd;
    size_t size;
    CocoFirmware *fw;
    CocoDirtySource *dirty;
    CocoTransferSource *xsrc; /* borrowed from the session's data path */
    CocoTransferDest *xdst;
    CocoPhaseTransferTracker tracker;
    CocoTransferStats xstats;
    CocoMigrationSession *session;
    CocoAgentPeerConn *ctl;
    GSource *poll_src;
    GSource *progress_src;
    GSource *switchover_src;
    GSource *hold_src;
    GSource *reconnect_src;
    GSource *giveup_src;
    GSource *recover_src;
    CocoAgentHeld held[COCO_PHASE_GATE_LAST];
    CocoAgentHeld progress;
    uint32_t progress_epoch;
    int progress_phase;
    int64_t epoch_us;
    uint64_t dirty_rate;
    /* The precopy policy (cocoprecopypolicy.h) and libvirt's controls. */
    CocoPrecopyPolicy policy;
    int64_t precopy_us; /* monotonic time the first round started */
    uint64_t expected_downtime; /* ms, the last prediction; 0: none */
    bool predicted;
    gint64 downtime_limit; /* ms from libvirt, -1: not set */
    gint64 max_bandwidth; /* bytes/s from libvirt, 0: unlimited */
    bool guest_paused; /* STOP seen during precopy: switch over now */
    bool pending_switchover;
    bool data_failed;
    bool domain_gone;
    bool connecting; /* a reconnection attempt runs */
    size_t logged;
    int64_t phase_since_us; /* when the session entered its state */
    uint64_t metered_bytes; /* the transfer's counters the metrics have */
    uint64_t metered_pages;
    guint64 switching; /* the session is in its switchover's downtime: its
                          id in the host's transfer priority; 0 if not */
    guint64 peer_switching; /* destination: the source said its guest is in
                               its downtime (a switching notice): the id of
                               this host's hold; 0 if not */
    bool peer_switched; /* destination: that notice came (once a session:
                           a source has one downtime) */
    char *setup_slot; /* source: the peer host whose set-up slot it holds
                         (cocoagentpeerslots.h), until PREPARED */
    char *start_error;
    const char *start_cause; /* cocoAgentMetricsCause() of start_error */
    GBytes *abort_token; /* destination: the last abort token it sent */
    uint32_t abort_token_arg; /* its message's argument: the token's length
                                 when a reason follows it */
    GArray *recover_clients; /* guint64 */
    gint64 session_t0; /* monotonic µs when the session was created */
    gint64 session_wall_us; /* the same moment, µs since the epoch */
    GArray *samples; /* CocoAgentSample: the transfer's progress */

    /* A destination's incoming session, until the worker starts it. */
    CocoPeerHello *hello;
    GIOStream **in_streams;
};

/* One sample of a migration's transfer, for its record ("samples"). */
typedef struct {
    gint64 at_us; /* since the session was created */
    guint64 bytes;
    guint64 pages;
    guint32 epoch;
} CocoAgentSample;

/* A record holds at most this many samples (about 40 bytes of JSON each),
 * one per COCO_AGENT_SAMPLE_US at most, except at a new epoch. */
#define COCO_AGENT_MAX_SAMPLES 2048
#define COCO_AGENT_SAMPLE_US (20 * G_TIME_SPAN_MILLISECOND)

static void cocoAgentMigrationAfter(CocoAgentMigration *m);

/* ---- identity and publication -------------------------------------------- */

CocoAgentMigration *
cocoAgentMigrationRef(CocoAgentMigration *m)
{
    g_atomic_int_inc(&m->refs);
    return m;
}

static void
cocoAgentMigrationFree(CocoAgentMigration *m)
{
    guint i;

    g_free(m->id);
    g_free(m->peer_identity);
    g_free(m->started);
    cocoAgentDomainInfoClear(&m->dom);
    g_free(m->peer);
    g_free(m->peer_host);
    g_free(m->start_error);
    g_free(m->setup_slot);
    if (m->samples)
        g_array_unref(m->samples);
    if (m->abort_token)
        g_bytes_unref(m->abort_token);
    if (m->recover_clients)
        g_array_unref(m->recover_clients);
    cocoPeerHelloFree(m->hello);
    for (i = 0; m->in_streams && m->in_streams[i]; i++)
        g_object_unref(m->in_streams[i]);
    g_free(m->in_streams);
    if (m->loop)
        g_main_loop_unref(m->loop);
    if (m->ctx)
        g_main_context_unref(m->ctx);
    g_free(m);
}

void
cocoAgentMigrationUnref(CocoAgentMigration *m)
{
    if (m && g_atomic_int_dec_and_test(&m->refs))
        cocoAgentMigrationFree(m);
}

const char *
cocoAgentMigrationGetId(CocoAgentMigration *m)
{
    return m->id;
}

CocoFirmwareRole
cocoAgentMigrationGetRole(CocoAgentMigration *m)
{
    return m->role;
}

guint64
cocoAgentMigrationGetSession(CocoAgentMigration *m)
{
    return m->session_id;
}

const char *
cocoAgentMigrationGetUuid(CocoAgentMigration *m)
{
    return m->dom.uuid;
}

const char *
cocoAgentMigrationGetName(CocoAgentMigration *m)
{
    return m->dom.name;
}

pid_t
cocoAgentMigrationGetPid(CocoAgentMigration *m)
{
    return m->dom.pid;
}

const char *
cocoAgentMigrationGetPeerIdentity(CocoAgentMigration *m)
{
    return m->peer_identity;
}

CocoPhaseState
cocoAgentMigrationGetState(CocoAgentMigration *m)
{
    return (CocoPhaseState)g_atomic_int_get(&m->state);
}

bool
cocoAgentMigrationIsFinal(CocoAgentMigration *m)
{
    return g_atomic_int_get(&m->final) != 0;
}

/* The session's state, or FAILED when it could not even start. */
static CocoPhaseState
cocoAgentMigrationState(CocoAgentMigration *m)
{
    if (!m->session)
        return m->start_error ? COCO_PHASE_STATE_FAILED : COCO_PHASE_STATE_IDLE;
    return cocoMigrationSessionGetState(m->session);
}

static bool
cocoAgentMigrationOver(CocoAgentMigration *m)
{
    return cocoPhaseStateIsFinal(m->role, cocoAgentMigrationState(m));
}

/* ---- talking to the relay (through the main thread) ---------------------- */

static void
cocoAgentMigrationVerdict(CocoAgentMigration *m, CocoAgentHeld *h, bool release,
                          const char *reason)
{
    CocoRelayVerdict v = {0};

    if (!h->relay)
        return;
    v.id = h->id;
    v.release = release;
    v.reason = release ? NULL : (char *)(reason ? reason : _("refused"));
    cocoAgentRelayPost(m->agent, h->relay, COCO_RELAY_REPLY_VERDICT, &v);
    h->relay = 0;
}

static void
cocoAgentMigrationRelayRequest(CocoAgentMigration *m, int type,
                               const char *reason)
{
    CocoRelayReason r = {(char *)NULLSTR(reason)};

    if (m->relay)
        cocoAgentRelayPost(m->agent, m->relay, type, &r);
}

/* ---- records and logs ---------------------------------------------------- */

/* Keep a sample of the transfer when it moved on (at most one per
 * COCO_AGENT_SAMPLE_US, except at a new epoch); a full list keeps every
 * other sample. */
static void
cocoAgentMigrationSample(CocoAgentMigration *m, const CocoTransferStats *ts)
{
    CocoAgentSample s = {.at_us = g_get_monotonic_time() - m->session_t0,
                         .bytes = ts->bytes,
                         .pages = ts->pages,
                         .epoch = ts->epoch};
    const CocoAgentSample *last;

    if (!m->session || !m->samples)
        return;
    last = m->samples->len ? &g_array_index(m->samples, CocoAgentSample,
                                            m->samples->len - 1)
                           : NULL;
    if (last && last->bytes == s.bytes && last->epoch == s.epoch)
        return;
    if (last && last->epoch == s.epoch &&
        s.at_us - last->at_us < COCO_AGENT_SAMPLE_US)
        return;
    if (m->samples->len >= COCO_AGENT_MAX_SAMPLES) {
        guint i;

        for (i = 1; i < m->samples->len; i++)
            g_array_remove_index(m->samples, i);
    }
    g_array_append_val(m->samples, s);
}

/* The transfer's progress. Ending a session stops its transfer engine,
 * which then reports "failed": keep what it said before that. */
static void
cocoAgentMigrationStats(CocoAgentMigration *m, CocoTransferStats *ts)
{
    CocoTransferStats now = {0};

    if (m->xsrc)
        cocoTransferSourceGetStats(m->xsrc, &now);
    else if (m->xdst)
        cocoTransferDestGetStats(m->xdst, &now);
    else {
        *ts = m->xstats;
        return;
    }
    if (now.phase != COCO_TRANSFER_PHASE_FAILED || !m->session ||
        cocoMigrationSessionGetFailure(m->session))
        m->xstats = now;
    *ts = m->xstats;
    cocoAgentMigrationSample(m, ts);
}

static JsonObject *
cocoAgentMigrationRecord(CocoAgentMigration *m)
{
    JsonObject *rec = json_object_new();
    JsonObject *cnt = json_object_new();
    JsonArray *tl = json_array_new();
    g_autofree char *sid =
        g_strdup_printf("%016" G_GINT64_MODIFIER "x", m->session_id);
    CocoPhaseState st = cocoAgentMigrationState(m);
    const CocoPhaseTimelineEntry *e = NULL;
    const GError *failure = NULL;
    size_t n = 0;
    size_t i;

    json_object_set_string_member(rec, "id", m->id);
    json_object_set_string_member(rec, "domain", m->dom.name);
    json_object_set_string_member(rec, "uuid", NULLSTR(m->dom.uuid));
    json_object_set_string_member(rec, "role",
                                  cocoFirmwareRoleTypeToString(m->role));
    json_object_set_string_member(rec, "peer", NULLSTR(m->peer));
    if (m->peer_identity)
        json_object_set_string_member(rec, "peer_identity", m->peer_identity);
    json_object_set_string_member(rec, "session", sid);
    json_object_set_string_member(rec, "started", m->started);
    json_object_set_int_member(rec, "streams", m->streams);
    json_object_set_int_member(rec, "vcpus", m->nvcpus);
    json_object_set_int_member(rec, "pages", (gint64)m->npages);
    json_object_set_string_member(rec, "state", cocoPhaseStateTypeToString(st));
    json_object_set_boolean_member(rec, "final",
                                   cocoPhaseStateIsFinal(m->role, st));
    json_object_set_boolean_member(rec, "may_run",
                                   cocoPhaseStateMayRun(m->role, st));
    if (!m->session) {
        json_object_set_string_member(rec, "failure", NULLSTR(m->start_error));
        json_object_set_object_member(rec, "counters", cnt);
        json_object_set_array_member(rec, "timeline", tl);
        return rec;
    }
    if ((failure = cocoMigrationSessionGetFailure(m->session))) {
        json_object_set_string_member(rec, "failure", failure->message);
        json_object_set_string_member(
            rec, "failure_code",
            NULLSTR(cocoErrorCodeToString((CocoErrorCode)failure->code)));
    } else {
        json_object_set_null_member(rec, "failure");
    }
    {
        const CocoPhaseCounters *c =
            cocoMigrationSessionGetCounters(m->session);

        json_object_set_int_member(cnt, "events", (gint64)c->events);
        json_object_set_int_member(cnt, "messages_sent",
                                   (gint64)c->messages_sent);
        json_object_set_int_member(cnt, "messages_received",
                                   (gint64)c->messages_received);
        json_object_set_int_member(cnt, "message_bytes_sent",
                                   (gint64)c->bytes_sent);
        json_object_set_int_member(cnt, "message_bytes_received",
                                   (gint64)c->bytes_received);
        json_object_set_int_member(cnt, "rounds", (gint64)c->rounds);
        json_object_set_int_member(cnt, "fw_calls", (gint64)c->fw_calls);
        json_object_set_int_member(cnt, "blackout_us", c->blackout_us);
        json_object_set_int_member(cnt, "downtime_us", c->downtime_us);
    }
    {
        CocoTransferStats ts = {0};
        JsonObject *xo = json_object_new();

        cocoAgentMigrationStats(m, &ts);
        json_object_set_string_member(
            xo, "phase", NULLSTR(cocoTransferPhaseTypeToString(ts.phase)));
        json_object_set_int_member(xo, "epoch", ts.epoch);
        json_object_set_int_member(xo, "bytes", (gint64)ts.bytes);
        json_object_set_int_member(xo, "pages", (gint64)ts.pages);
        json_object_set_int_member(xo, "bundles", (gint64)ts.bundles);
        json_object_set_int_member(xo, "retried", (gint64)ts.retried);
        json_object_set_int_member(xo, "elapsed_ms", (gint64)ts.elapsed_ms);
        json_object_set_int_member(xo, "rate", (gint64)ts.rate);
        json_object_set_object_member(rec, "transfer", xo);
    }
    json_object_set_object_member(rec, "counters", cnt);
    e = cocoMigrationSessionGetTimeline(m->session, &n);
    for (i = 0; i < n; i++) {
        JsonObject *o = json_object_new();

        json_object_set_double_member(o, "at_ms", (double)e[i].at_us / 1000.0);
        json_object_set_double_member(o, "duration_ms",
                                      (double)e[i].duration_us / 1000.0);
        json_object_set_string_member(o, "event",
                                      cocoPhaseEventTypeToString(e[i].event));
        json_object_set_string_member(o, "phase", e[i].phase);
        json_object_set_string_member(o, "from",
                                      cocoPhaseStateTypeToString(e[i].from));
        json_object_set_string_member(o, "to",
                                      cocoPhaseStateTypeToString(e[i].to));
        json_object_set_string_member(o, "steps", e[i].steps);
        if (e[i].code)
            json_object_set_string_member(
                o, "error",
                NULLSTR(cocoErrorCodeToString((CocoErrorCode)e[i].code)));
        json_array_add_object_element(tl, o);
    }
    json_object_set_array_member(rec, "timeline", tl);
    if (m->samples) {
        JsonArray *sa = json_array_new();

        /* [at_ms, bytes, pages, epoch], at_ms since the session's start
         * (the timeline's origin), which "session_start_us" dates. */
        for (i = 0; i < m->samples->len; i++) {
            const CocoAgentSample *x =
                &g_array_index(m->samples, CocoAgentSample, i);
            JsonArray *one = json_array_new();

            json_array_add_double_element(one, (double)x->at_us / 1000.0);
            json_array_add_int_element(one, (gint64)x->bytes);
            json_array_add_int_element(one, (gint64)x->pages);
            json_array_add_int_element(one, x->epoch);
            json_array_add_array_element(sa, one);
        }
        json_object_set_array_member(rec, "samples", sa);
        json_object_set_int_member(rec, "session_start_us", m->session_wall_us);
    }
    return rec;
}

/* The metrics: the sealed data moved since the last call and, once, the
 * migration's end (@was_final: it had ended before). */
static void
cocoAgentMigrationMeter(CocoAgentMigration *m, CocoPhaseState st,
                        bool was_final)
{
    CocoAgentMetrics *mx = cocoAgentMetricsOf(m->agent);
    CocoTransferStats ts = {0};

    cocoAgentMigrationStats(m, &ts);
    if (ts.bytes > m->metered_bytes || ts.pages > m->metered_pages) {
        cocoAgentMetricsSealed(
            mx, m->role,
            ts.bytes > m->metered_bytes ? ts.bytes - m->metered_bytes : 0,
            ts.pages > m->metered_pages ? ts.pages - m->metered_pages : 0);
        m->metered_bytes = MAX(m->metered_bytes, ts.bytes);
        m->metered_pages = MAX(m->metered_pages, ts.pages);
    }
    if (was_final || !cocoPhaseStateIsFinal(m->role, st))
        return;
    if (!m->session) {
        cocoAgentMetricsMigrationEnded(mx, m->role, st, m->start_cause, 0);
        return;
    }
    cocoAgentMetricsMigrationEnded(
        mx, m->role, st,
        cocoAgentMetricsCause(cocoMigrationSessionGetFailure(m->session)),
        cocoMigrationSessionGetCounters(m->session)->downtime_us);
}

/* Keep the record in memory and in the state directory, and publish the
 * state; a record that cannot be written is logged loudly. */
static void
cocoAgentMigrationSave(CocoAgentMigration *m)
{
    g_autoptr(GError) err = NULL;
    CocoPhaseState st = cocoAgentMigrationState(m);

    cocoAgentMigrationMeter(m, st, g_atomic_int_get(&m->final) != 0);
    g_atomic_int_set(&m->state, (gint)st);
    g_atomic_int_set(&m->final, cocoPhaseStateIsFinal(m->role, st));
    if (cocoAgentRecordsPut(cocoAgentRecords(m->agent), m->id,
                            cocoAgentMigrationRecord(m), &err) < 0)
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_CRITICAL, "%s", err->message);
}

/* One log line per phase event the session handled since the last call. */
static void
cocoAgentMigrationLogTimeline(CocoAgentMigration *m)
{
    const CocoPhaseTimelineEntry *e;
    const CocoPhaseCounters *c;
    CocoTransferStats ts = {0};
    size_t n = 0;

    if (!m->session)
        return;
    e = cocoMigrationSessionGetTimeline(m->session, &n);
    c = cocoMigrationSessionGetCounters(m->session);
    cocoAgentMigrationStats(m, &ts);
    for (; m->logged < n; m->logged++) {
        const CocoPhaseTimelineEntry *x = &e[m->logged];

        /* A phase ends when its state does, once the event's steps ran. */
        if (x->from != x->to) {
            int64_t end = x->at_us + x->duration_us;

            cocoAgentMetricsPhaseEnded(cocoAgentMetricsOf(m->agent), m->role,
                                       x->from, end - m->phase_since_us);
            m->phase_since_us = end;
        }

        cocoAgentLog(
            m->agent, m, x->code ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_MESSAGE,
            "phase='%s' event=%s state=%s->%s steps=[%s] duration_ms=%.3f "
            "bytes=%" PRIu64 " pages=%" PRIu64 " epoch=%u fw_calls=%" PRIu64
            "%s%s",
            x->phase, cocoPhaseEventTypeToString(x->event),
            cocoPhaseStateTypeToString(x->from),
            cocoPhaseStateTypeToString(x->to), x->steps,
            (double)x->duration_us / 1000.0, ts.bytes, ts.pages, ts.epoch,
            c->fw_calls, x->code ? " error=" : "",
            x->code ? NULLSTR(cocoErrorCodeToString((CocoErrorCode)x->code))
                    : "");
    }
}

/* ---- progress for libvirt (through the relay) ----------------------------- */

static void
cocoAgentMigrationProgress(CocoAgentMigration *m)
{
    CocoTransferStats ts = {0};
    CocoRelayProgress p = {0};
    int64_t now = g_get_monotonic_time();

    if (!m->progress.relay || !m->xsrc)
        return;
    cocoAgentMigrationStats(m, &ts);
    if (ts.epoch > m->progress_epoch) {
        if (m->epoch_us && ts.epoch >= 2 && now > m->epoch_us)
            m->dirty_rate = (uint64_t)((double)ts.dirty_pages * 1e6 /
                                       (double)(now - m->epoch_us));
        m->epoch_us = now;
    }
    m->progress_epoch = ts.epoch;
    m->progress_phase = (int)ts.phase;
    p.id = m->progress.id;
    p.phase = (char *)NULLSTR(cocoTransferPhaseTypeToString(ts.phase));
    p.total = (gint64)(m->npages * COCO_EMU_PAGE_SIZE);
    p.transferred = (gint64)ts.bytes;
    /* What is left: the pages of the epoch being sent that are not sent
     * yet; between epochs (and before the first) the estimate of what
     * the guest dirtied since the last scan. Never 0 before the end. */
    if (ts.phase == COCO_TRANSFER_PHASE_DONE) {
        p.remaining = 0;
    } else if (ts.remaining > 0) {
        p.remaining = (gint64)(ts.remaining * COCO_EMU_PAGE_SIZE);
    } else if (ts.epoch == 0) {
        p.remaining =
            (gint64)((ts.pages < m->npages ? m->npages - ts.pages : 1) *
                     COCO_EMU_PAGE_SIZE);
    } else {
        double est = (double)ts.dirty_rate * (double)ts.since_scan_ms / 1000.0;

        p.remaining =
            (gint64)(CLAMP(est, 1.0, (double)m->npages) * COCO_EMU_PAGE_SIZE);
    }
    p.pages = (gint64)ts.pages;
    p.epoch = ts.epoch;
    p.rate = (gint64)ts.rate;
    p.dirty_rate = (gint64)(ts.dirty_measured ? ts.dirty_rate : m->dirty_rate);
    p.elapsed_ms = (gint64)ts.elapsed_ms;
    if (m->predicted) {
        p.expected_downtime = (gint64)MIN(m->expected_downtime, G_MAXINT32);
        p.has_expected_downtime = true;
    }
    cocoAgentRelayPost(m->agent, m->progress.relay, COCO_RELAY_REPLY_PROGRESS,
                       &p);
}

static void
cocoAgentMigrationReportEpoch(CocoAgentMigration *m)
{
    CocoTransferStats ts = {0};

    if (!m->progress.relay || !m->xsrc)
        return;
    cocoAgentMigrationStats(m, &ts);
    if (ts.epoch != m->progress_epoch || (int)ts.phase != m->progress_phase)
        cocoAgentMigrationProgress(m);
}

static GSource *
cocoAgentMigrationTimer(CocoAgentMigration *m, guint ms, GSourceFunc func)
{
    GSource *src = g_timeout_source_new(ms);

    g_source_set_callback(src, func, m, NULL);
    g_source_attach(src, m->ctx);
    return src;
}

static gboolean
cocoAgentMigrationOnProgressTimer(gpointer opaque)
{
    CocoAgentMigration *m = opaque;

    if (!m->progress.relay || cocoAgentMigrationOver(m)) {
        g_clear_pointer(&m->progress_src, g_source_unref);
        return G_SOURCE_REMOVE;
    }
    cocoAgentMigrationProgress(m);
    return G_SOURCE_CONTINUE;
}

static void
cocoAgentMigrationStartProgress(CocoAgentMigration *m, guint64 relay, gint64 id)
{
    m->progress.relay = relay;
    m->progress.id = id;
    cocoAgentMigrationProgress(m);
    if (!m->progress_src)
        m->progress_src = cocoAgentMigrationTimer(
            m, COCO_MIGRATION_PROGRESS_MS, cocoAgentMigrationOnProgressTimer);
}

/* ---- the session's callbacks --------------------------------------------- */

static int
cocoAgentMigrationSend(void *opaque, const CocoPhaseMessage *msg,
                       GError **error)
{
    CocoAgentMigration *m = opaque;

    /* A destination keeps its abort token: a source that reconnects
     * after a cut asks for it (cocoAgentIncomingRemember()). */
    if (m->role == COCO_FIRMWARE_ROLE_DESTINATION &&
        msg->type == COCO_PHASE_EVENT_PEER_ABORT_TOKEN) {
        if (m->abort_token)
            g_bytes_unref(m->abort_token);
        m->abort_token = g_bytes_new(msg->data, msg->len);
        m->abort_token_arg = msg->arg;
    }
    if (!m->ctl)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_IO,
            _("the connection to the peer host '%1$s' is closed"),
            NULLSTR(m->peer));
    return cocoAgentPeerConnSendMessage(m->ctl, msg, error);
}

static void
cocoAgentMigrationDecide(void *opaque, const CocoPhaseDecision *d)
{
    CocoAgentMigration *m = opaque;
    CocoAgentHeld *h = &m->held[d->gate];

    cocoAgentLog(m->agent, m, G_LOG_LEVEL_MESSAGE, "gate=%s verdict=%s%s%s",
                 cocoPhaseGateTypeToString(d->gate),
                 cocoPhaseVerdictTypeToString(d->verdict),
                 d->message ? " reason=" : "", d->message ? d->message : "");
    switch (d->verdict) {
    case COCO_PHASE_VERDICT_CANCEL:
        /* `migrate` already reached QEMU: the relay cancels it. */
        cocoAgentMigrationRelayRequest(m, COCO_RELAY_REPLY_CANCEL, d->message);
        return;
    case COCO_PHASE_VERDICT_PAUSE:
        cocoAgentMigrationRelayRequest(
            m, COCO_RELAY_REPLY_PAUSE,
            _("the source's start token is on its way: the guest stays paused until the migration's outcome is known"));
        return;
    case COCO_PHASE_VERDICT_RESUME:
        cocoAgentMigrationRelayRequest(
            m, COCO_RELAY_REPLY_RESUME,
            _("the destination gave back its abort token: the source runs again"));
        return;
    case COCO_PHASE_VERDICT_RELEASE:
    case COCO_PHASE_VERDICT_REFUSE:
        break;
    case COCO_PHASE_VERDICT_LAST:
    default:
        return;
    }
    if (!h->relay)
        return; /* the relay does not hold this command */
    if (d->gate == COCO_PHASE_GATE_MIGRATE &&
        d->verdict == COCO_PHASE_VERDICT_RELEASE)
        cocoAgentMigrationReportEpoch(m);
    cocoAgentMigrationVerdict(m, h, d->verdict == COCO_PHASE_VERDICT_RELEASE,
                              d->message);
}

/* Feed an event (with the agent's reason); the verdict of a gate the
 * session cannot place is a refusal. */
static void
cocoAgentMigrationEventWhy(CocoAgentMigration *m, CocoPhaseEvent ev,
                           const GError *why)
{
    g_autoptr(GError) err = NULL;
    CocoPhaseGate gate = cocoPhaseEventGate(ev);

    if (!m->session)
        return;
    if (cocoMigrationSessionHandleEventWhy(m->session, ev, why, &err) < 0) {
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_MESSAGE, "event=%s failed: %s",
                     cocoPhaseEventTypeToString(ev), err->message);
        if (gate != COCO_PHASE_GATE_LAST && m->held[gate].relay &&
            !cocoMigrationSessionGateHeld(m->session, gate) &&
            err->code == COCO_ERROR_MIGRATION_PHASE)
            cocoAgentMigrationVerdict(m, &m->held[gate], false, err->message);
    }
    cocoAgentMigrationAfter(m);
}

static void
cocoAgentMigrationEvent(CocoAgentMigration *m, CocoPhaseEvent ev)
{
    cocoAgentMigrationEventWhy(m, ev, NULL);
}

/* ---- deadlines ----------------------------------------------------------- */

static gboolean
cocoAgentMigrationOnSwitchoverDeadline(gpointer opaque)
{
    CocoAgentMigration *m = opaque;
    const CocoAgentConfig *cfg = cocoAgentConfig(m->agent);
    g_autoptr(GError) why = NULL;

    g_clear_pointer(&m->switchover_src, g_source_unref);
    cocoErrorSet(
        &why, COCO_ERROR_PEER_TIMEOUT,
        _("the peer host '%1$s' did not confirm the switchover within '%2$u' seconds"),
        NULLSTR(m->peer_host), cfg->switchover_timeout);
    /* Its answer, late, must not count any more. */
    if (m->ctl) {
        cocoAgentPeerConnFree(m->ctl);
        m->ctl = NULL;
    }
    cocoAgentMigrationEventWhy(m, COCO_PHASE_EVENT_DEADLINE, why);
    return G_SOURCE_REMOVE;
}

static gboolean
cocoAgentMigrationOnHoldExpired(gpointer opaque)
{
    CocoAgentMigration *m = opaque;

    g_clear_pointer(&m->hold_src, g_source_unref);
    cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_HOLD_EXPIRED);
    return G_SOURCE_REMOVE;
}

static gboolean
cocoAgentMigrationOnGiveUp(gpointer opaque)
{
    CocoAgentMigration *m = opaque;
    const CocoAgentConfig *cfg = cocoAgentConfig(m->agent);
    g_autoptr(GError) why = NULL;

    g_clear_pointer(&m->giveup_src, g_source_unref);
    cocoErrorSet(
        &why, COCO_ERROR_MIGRATION_SOURCE_FROZEN,
        _("the peer host '%1$s' did not come back within '%2$u' seconds to say whether it imported the start token; the source stays paused: once the peer host is reachable run 'virt-coco recover %3$s'; if the guest runs there, destroy the source"),
        NULLSTR(m->peer_host), cfg->reconnect_window, m->id);
    cocoAgentMigrationEventWhy(m, COCO_PHASE_EVENT_GIVE_UP, why);
    return G_SOURCE_REMOVE;
}

static void cocoAgentMigrationReconnect(CocoAgentMigration *m);

static gboolean
cocoAgentMigrationOnReconnectTimer(gpointer opaque)
{
    CocoAgentMigration *m = opaque;

    g_clear_pointer(&m->reconnect_src, g_source_unref);
    cocoAgentMigrationReconnect(m);
    return G_SOURCE_REMOVE;
}

/* Arm or disarm the timers the session's state calls for. */
static void
cocoAgentMigrationDeadlines(CocoAgentMigration *m)
{
    const CocoAgentConfig *cfg = cocoAgentConfig(m->agent);
    CocoPhaseState st = cocoAgentMigrationState(m);
    bool cont_held = m->session && cocoMigrationSessionGateHeld(
                                       m->session, COCO_PHASE_GATE_CONT);

    if (m->role != COCO_FIRMWARE_ROLE_SOURCE)
        return;
    if (st == COCO_PHASE_STATE_SWITCHOVER) {
        if (!m->switchover_src)
            m->switchover_src =
                cocoAgentMigrationTimer(m, cfg->switchover_timeout * 1000U,
                                        cocoAgentMigrationOnSwitchoverDeadline);
    } else {
        cocoSourceClear(&m->switchover_src);
    }
    /* A cont held while the token's fate is unknown: libvirt's monitor
     * must not wait for minutes; the source resumes by itself later. */
    if (cont_held &&
        (st == COCO_PHASE_STATE_AWAIT_TOKEN || st == COCO_PHASE_STATE_FROZEN)) {
        if (!m->hold_src)
            m->hold_src = cocoAgentMigrationTimer(
                m, cfg->hold_timeout * 1000U, cocoAgentMigrationOnHoldExpired);
    } else {
        cocoSourceClear(&m->hold_src);
    }
    if (st == COCO_PHASE_STATE_AWAIT_TOKEN) {
        if (!m->giveup_src)
            m->giveup_src = cocoAgentMigrationTimer(
                m, cfg->reconnect_window * 1000U, cocoAgentMigrationOnGiveUp);
        if (!m->ctl && !m->connecting && !m->reconnect_src)
            m->reconnect_src =
                cocoAgentMigrationTimer(m, COCO_MIGRATION_RECONNECT_S * 1000U,
                                        cocoAgentMigrationOnReconnectTimer);
    } else {
        cocoSourceClear(&m->giveup_src);
        if (st != COCO_PHASE_STATE_FROZEN)
            cocoSourceClear(&m->reconnect_src);
    }
}

/* ---- after every event --------------------------------------------------- */

/* The source's set-up slot goes back once the peer said its session is
 * complete (the session left PREPARING) or the migration ended. */
static void
cocoAgentMigrationReleaseSlot(CocoAgentMigration *m)
{
    if (!m->setup_slot)
        return;
    cocoAgentPeerSlotsRelease(cocoAgentPeerSlotsOf(m->agent), m->setup_slot);
    g_clear_pointer(&m->setup_slot, g_free);
}

static void cocoAgentMigrationAnswerRecover(CocoAgentMigration *m,
                                            bool timeout);
static void cocoAgentMigrationFinish(CocoAgentMigration *m);

static void
cocoAgentMigrationAfter(CocoAgentMigration *m)
{
    cocoAgentMigrationLogTimeline(m);
    if (m->setup_slot) {
        CocoPhaseState st = cocoAgentMigrationState(m);

        if (st != COCO_PHASE_STATE_IDLE && st != COCO_PHASE_STATE_PREPARING)
            cocoAgentMigrationReleaseSlot(m);
    }
    if (m->pending_switchover && m->session) {
        CocoPhaseState st = cocoMigrationSessionGetState(m->session);

        if (st != COCO_PHASE_STATE_IDLE && st != COCO_PHASE_STATE_PREPARING &&
            st != COCO_PHASE_STATE_SETUP) {
            m->pending_switchover = false;
            cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_PRE_SWITCHOVER);
            return;
        }
    }
    cocoAgentMigrationReportEpoch(m);
    if (cocoAgentMigrationOver(m)) {
        cocoSourceClear(&m->progress_src);
        cocoSourceClear(&m->poll_src);
    }
    cocoAgentMigrationDeadlines(m);
    cocoAgentMigrationSave(m);
    if (m->recover_clients && m->recover_clients->len &&
        cocoPhaseStateIsFinal(m->role, cocoAgentMigrationState(m)))
        cocoAgentMigrationAnswerRecover(m, false);
    cocoAgentMigrationFinish(m);
}

/* ---- the peer ------------------------------------------------------------ */

/* Enter (@on) or leave a downtime in the host's transfer priority under
 * the id in *@id (0: none); whether anything changed. */
static bool
cocoAgentMigrationHold(CocoAgentMigration *m, guint64 *id, bool on)
{
    CocoTransferPriority *p = cocoAgentPriorityOf(m->agent);

    if (on == (*id != 0))
        return false;
    if (on) {
        *id = cocoTransferPriorityEnter(p);
    } else {
        cocoTransferPriorityLeave(p, *id);
        *id = 0;
    }
    return true;
}

/* Destination (worker): the source's guest entered (left) its switchover's
 * downtime. This host's own migrations hold their bulk pre-copy work
 * meanwhile, as they do for this host's own switchovers: with migrations
 * crossing, the source's final transfer and this host's import and QEMU
 * get the cores. The hold ends with the notice, the connection, the
 * session, or the priority's own age bound. */
static void
cocoAgentMigrationPeerSwitching(CocoAgentMigration *m, bool on)
{
    /* A source has one downtime a session: a peer that says so again
     * could hold this host's other migrations back for ever. */
    if (on && !m->peer_switching && m->peer_switched) {
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_WARNING,
                     "peer switching=on again: ignored");
        return;
    }
    if (!cocoAgentMigrationHold(m, &m->peer_switching, on))
        return;
    if (on)
        m->peer_switched = true;
    cocoAgentLog(m->agent, m, G_LOG_LEVEL_INFO, "peer switching=%s",
                 on ? "on" : "off");
}

static void
cocoAgentMigrationOnMessage(CocoAgentPeerConn *conn,
                            const CocoPhaseMessage *msg, const GError *error,
                            gpointer opaque)
{
    CocoAgentMigration *m = opaque;
    g_autoptr(GError) err = NULL;

    if (conn != m->ctl)
        return;
    if (!msg) {
        g_autoptr(GError) why = NULL;
        CocoPhaseState st = cocoAgentMigrationState(m);

        cocoErrorSet(&why, error ? error->code : (int)COCO_ERROR_TRANSFER_IO,
                     _("the peer host '%1$s' was lost in state '%2$s': %3$s"),
                     NULLSTR(m->peer_host), cocoPhaseStateTypeToString(st),
                     error ? error->message : _("the connection closed"));
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_WARNING, "%s", why->message);
        /* The session may still send (best effort) while it handles the
         * loss: the connection object stays, closed. */
        cocoAgentPeerConnClose(conn);
        cocoAgentPeerConnFree(g_steal_pointer(&m->ctl));
        cocoAgentMigrationPeerSwitching(m, false);
        cocoAgentMigrationEventWhy(m, COCO_PHASE_EVENT_PEER_LOST, why);
        return;
    }
    if (!m->session)
        return;
    if ((unsigned int)msg->type == COCO_PHASE_MESSAGE_SWITCHING &&
        m->role == COCO_FIRMWARE_ROLE_DESTINATION) {
        cocoAgentMigrationPeerSwitching(m, msg->arg != 0);
        return;
    }
    if (!cocoPhaseMessageAllowed((unsigned int)msg->type, m->role)) {
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_WARNING,
                     "message '%s' may not reach a %s: ignored",
                     cocoPhaseMessageTypeName((unsigned int)msg->type),
                     cocoFirmwareRoleTypeToString(m->role));
        return;
    }
    if (cocoMigrationSessionReceive(m->session, msg, &err) < 0)
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_MESSAGE, "message=%s failed: %s",
                     cocoPhaseEventTypeToString(msg->type), err->message);
    cocoAgentMigrationAfter(m);
}

static void
cocoAgentMigrationSetControl(CocoAgentMigration *m, CocoAgentPeerConn *ctl)
{
    const CocoAgentConfig *cfg = cocoAgentConfig(m->agent);

    if (m->ctl)
        cocoAgentPeerConnFree(m->ctl);
    m->ctl = ctl;
    cocoAgentPeerConnStart(ctl, m->ctx, cfg->heartbeat_interval,
                           cfg->peer_deadline, cocoAgentMigrationOnMessage, m);
}

/* ---- reconnecting (a source whose peer was lost after the start token) --- */

typedef struct {
    CocoAgentMigration *m;
    char *host;
    unsigned int port;
    CocoPeerHello hello;
} CocoAgentReconnect;

static void
cocoAgentReconnectFree(gpointer p)
{
    CocoAgentReconnect *r = p;

    cocoAgentMigrationUnref(r->m);
    g_free(r->host);
    g_free(r->hello.name);
    g_free(r->hello.uuid);
    g_free(r);
}

static void
cocoAgentReconnectThread(GTask *task, gpointer source, gpointer data,
                         GCancellable *cancel)
{
    CocoAgentReconnect *r = data;
    GError *err = NULL;
    CocoAgentPeerConn *ctl =
        cocoAgentPeerConnect(r->m->agent, r->host, r->port, &r->hello, &err);

    if (ctl)
        g_task_return_pointer(task, ctl, (GDestroyNotify)cocoAgentPeerConnFree);
    else
        g_task_return_error(task, err);
}

static void
cocoAgentReconnectDone(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    CocoAgentMigration *m = opaque;
    g_autoptr(GError) err = NULL;
    CocoAgentPeerConn *ctl = g_task_propagate_pointer(G_TASK(res), &err);

    m->connecting = false;
    if (!ctl) {
        cocoAgentMetricsPeerError(cocoAgentMetricsOf(m->agent),
                                  COCO_AGENT_METRICS_PEER_OUTGOING,
                                  cocoAgentMetricsCause(err));
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_MESSAGE,
                     "the peer host '%s' is still out of reach: %s",
                     NULLSTR(m->peer_host), err->message);
        if (m->recover_clients && m->recover_clients->len)
            cocoAgentMigrationAnswerRecover(m, true);
        cocoAgentMigrationDeadlines(m);
        return;
    }
    cocoAgentLog(m->agent, m, G_LOG_LEVEL_MESSAGE,
                 "reconnected to the peer host '%s': asking for the start "
                 "token's fate",
                 NULLSTR(m->peer_host));
    cocoAgentMigrationSetControl(m, ctl);
    cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_PEER_RECONNECTED);
}

static void
cocoAgentMigrationReconnect(CocoAgentMigration *m)
{
    g_autoptr(GTask) task = NULL;
    CocoAgentReconnect *r;

    if (m->connecting || m->ctl || !m->peer_host)
        return;
    r = g_new0(CocoAgentReconnect, 1);
    r->m = cocoAgentMigrationRef(m);
    r->host = g_strdup(m->peer_host);
    r->port = m->peer_port;
    r->hello.kind = COCO_PEER_KIND_CONTROL;
    r->hello.protocol = COCO_PEER_PROTOCOL_VERSION;
    r->hello.session = m->session_id;
    r->hello.has_session = true;
    r->hello.streams = m->streams;
    r->hello.has_streams = true;
    r->hello.name = g_strdup(m->dom.name);
    r->hello.uuid = g_strdup(m->dom.uuid);
    r->hello.vcpus = m->nvcpus;
    r->hello.has_vcpus = true;
    r->hello.pages = (gint64)m->npages;
    r->hello.has_pages = true;
    r->hello.bundle = m->pages_per_bundle;
    r->hello.has_bundle = true;
    r->hello.resume = true;
    m->connecting = true;
    /* The task's callback runs on this worker (its thread-default). */
    task = g_task_new(NULL, NULL, cocoAgentReconnectDone, m);
    g_task_set_task_data(task, r, cocoAgentReconnectFree);
    g_task_run_in_thread(task, cocoAgentReconnectThread);
}

static void
cocoAgentMigrationAnswerRecover(CocoAgentMigration *m, bool timeout)
{
    CocoPhaseState st = cocoAgentMigrationState(m);
    const GError *failure =
        m->session ? cocoMigrationSessionGetFailure(m->session) : NULL;
    CocoRelayRecoverReply r = {0};
    g_autofree char *msg = NULL;
    guint i;

    if (!m->recover_clients)
        return;
    if (st == COCO_PHASE_STATE_ABORTED)
        msg = g_strdup(_(
            "the destination gave back its abort token: the guest runs on this host again"));
    else if (st == COCO_PHASE_STATE_COMMITTED ||
             st == COCO_PHASE_STATE_FINISHED)
        msg = g_strdup(_(
            "the destination committed the migration and owns the guest: destroy the source"));
    else if (timeout)
        msg = g_strdup_printf(
            _("the peer host '%1$s' is still out of reach; the source stays paused: %2$s"),
            NULLSTR(m->peer_host), failure ? failure->message : "");
    else
        msg = g_strdup(failure ? failure->message : "");
    r.id = m->id;
    r.state = (char *)cocoPhaseStateTypeToString(st);
    r.message = msg;
    for (i = 0; i < m->recover_clients->len; i++)
        cocoAgentRelayPost(m->agent,
                           g_array_index(m->recover_clients, guint64, i),
                           COCO_RELAY_REPLY_RECOVER, &r);
    g_array_set_size(m->recover_clients, 0);
    cocoSourceClear(&m->recover_src);
}

static gboolean
cocoAgentMigrationOnRecoverTimeout(gpointer opaque)
{
    CocoAgentMigration *m = opaque;

    g_clear_pointer(&m->recover_src, g_source_unref);
    cocoAgentMigrationAnswerRecover(m, true);
    return G_SOURCE_REMOVE;
}

/* ---- the end --------------------------------------------------------------- */

typedef struct {
    CocoAgent *agent;
    CocoAgentMigration *m;
    guint64 session;
    char *identity;
    CocoPhaseEvent answer;
    GBytes *payload;
    uint32_t arg;
} CocoAgentMigrationDone;

static void
cocoAgentMigrationDoneFree(gpointer p)
{
    CocoAgentMigrationDone *d = p;

    cocoAgentMigrationUnref(d->m);
    g_free(d->identity);
    if (d->payload)
        g_bytes_unref(d->payload);
    g_free(d);
}

/* Main thread: the worker has nothing left to do. */
static gboolean
cocoAgentMigrationOnDone(gpointer opaque)
{
    CocoAgentMigrationDone *d = opaque;

    if (d->answer != COCO_PHASE_EVENT_LAST)
        cocoAgentIncomingRemember(cocoAgentIncomingOf(d->agent), d->session,
                                  d->identity, d->answer, d->payload, d->arg);
    cocoAgentRemoveMigration(d->agent, d->m);
    return G_SOURCE_REMOVE;
}

/* A final session whose QEMU is gone ends its worker; a destination leaves
 * its answer for a source that reconnects. */
static void
cocoAgentMigrationFinish(CocoAgentMigration *m)
{
    CocoAgentMigrationDone *d;
    CocoPhaseState st = cocoAgentMigrationState(m);

    if (!m->domain_gone || !cocoPhaseStateIsFinal(m->role, st) ||
        !g_atomic_int_compare_and_exchange(&m->done_posted, 0, 1))
        return;
    d = g_new0(CocoAgentMigrationDone, 1);
    d->agent = m->agent;
    d->m = cocoAgentMigrationRef(m);
    d->session = m->session_id;
    d->identity = g_strdup(m->peer_identity);
    d->answer = COCO_PHASE_EVENT_LAST;
    if (m->role == COCO_FIRMWARE_ROLE_DESTINATION) {
        if (st == COCO_PHASE_STATE_COMMITTED ||
            st == COCO_PHASE_STATE_FINISHED) {
            d->answer = COCO_PHASE_EVENT_PEER_COMMITTED;
        } else if (m->abort_token) {
            d->answer = COCO_PHASE_EVENT_PEER_ABORT_TOKEN;
            d->payload = g_bytes_ref(m->abort_token);
            d->arg = m->abort_token_arg;
        }
    }
    cocoAgentPostMain(m->agent, cocoAgentMigrationOnDone, d,
                      cocoAgentMigrationDoneFree);
}

/* ---- firmware and memory ---------------------------------------------------- */

static int
cocoAgentMigrationOpenRam(CocoAgentMigration *m, GError **error)
{
    struct stat st;

    if (m->dom.ram_error)
        return cocoErrorSet(error, COCO_ERROR_NOT_SUPPORTED, "%s",
                            m->dom.ram_error);
    if (!m->dom.ram_path)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("domain '%1$s' has no file-backed shared guest RAM; confidential migration needs <memoryBacking> with a file source and shared access"),
            m->dom.name);
    if ((m->ram_fd = open(m->dom.ram_path, O_RDWR | O_CLOEXEC)) < 0)
        return cocoErrorSetSystem(error, errno,
                                  _("cannot open the guest RAM file '%1$s'"),
                                  m->dom.ram_path);
    if (fstat(m->ram_fd, &st) < 0)
        return cocoErrorSetSystem(error, errno, _("cannot stat '%1$s'"),
                                  m->dom.ram_path);
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size % COCO_EMU_PAGE_SIZE != 0)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the guest RAM file '%1$s' has size '%2$lld', not a positive multiple of 4096"),
            m->dom.ram_path, (long long)st.st_size);
    m->size = (size_t)st.st_size;
    m->npages = m->size / COCO_EMU_PAGE_SIZE;
    return 0;
}

/* The source's dirty log reads QEMU's writes (the emulation's TDX write
 * blocking, cocoEmuLogWrites()) when QEMU made its userfaultfd (qemu-coco's
 * write-log preload); otherwise it hashes every exported page, which is
 * slower but as safe: said once per migration, not an error. */
static void
cocoAgentMigrationLogWrites(CocoAgentMigration *m)
{
    g_autoptr(GError) err = NULL;

    if (m->dom.pid > 0 && cocoEmuLogWrites(m->fw, m->dom.pid, &err) == 0) {
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_INFO,
                     "dirty tracking: QEMU pid=%d's writes are logged",
                     (int)m->dom.pid);
        return;
    }
    cocoAgentLog(m->agent, m, G_LOG_LEVEL_MESSAGE,
                 "dirty tracking: hashing exported pages (%s)",
                 err ? err->message : "QEMU's pid is unknown");
}

/* @own_vcpus: this host's own count for its domain (its relay's, else its
 * status file's; 0: unknown, then the session's). */
static int
cocoAgentMigrationNewFirmware(CocoAgentMigration *m, unsigned int own_vcpus,
                              GError **error)
{
    /* The firmware binds the session to this domain's own identity
     * (UUID, vCPUs, memory): a session spliced from another guest's
     * migration is refused at PREPARE, naming both. */
    CocoFirmwareVm vm = {.nvcpus = own_vcpus ? own_vcpus : m->nvcpus,
                         .memory = m->size};

    if (cocoFirmwareVmParseUuid(m->dom.uuid, vm.uuid, error) < 0)
        return -1;
    if (!m->def) {
        m->def = cocoMigrationDefNew();
        m->def->technology = COCO_TECHNOLOGY_TDX;
    }
    /* The destination creates as many streams as the source uses. */
    m->def->has_streams = true;
    m->def->forward_streams = m->streams;
    m->def->pages_per_bundle = m->pages_per_bundle;
    if (!(m->fw = cocoEmuNew(m->role, cocoAgentPlatform(m->agent), m->def, &vm,
                             error)) ||
        cocoEmuAttachMemoryFd(m->fw, m->ram_fd, 0, m->size, error) < 0)
        return -1;
    if (m->role == COCO_FIRMWARE_ROLE_SOURCE)
        cocoAgentMigrationLogWrites(m);
    return 0;
}

static int
cocoAgentEmuDirty(void *opaque, uint64_t gfn, GError **error)
{
    return cocoEmuMarkDirty(opaque, gfn, error);
}

static int
cocoAgentEmuGetDirty(void *opaque, uint64_t **gfns, size_t *ngfns,
                     GError **error)
{
    return cocoEmuGetDirty(opaque, true, gfns, ngfns, error);
}

static void
cocoAgentMigrationTransferConfig(CocoAgentMigration *m, CocoTransferConfig *tc)
{
    cocoTransferConfigInit(tc, m->def);
    tc->streams = m->streams;
    tc->pages_per_bundle = m->pages_per_bundle;
    tc->session_id = m->session_id;
    tc->npages = m->npages;
}

/* The precopy policy at a round boundary (the session's next_round):
 * libvirt's downtime limit as it is now, the engine's measurements. */
static int
cocoAgentMigrationNextRound(void *opaque, unsigned int rounds, GError **error)
{
    CocoAgentMigration *m = opaque;
    CocoTransferStats ts = {0};
    CocoPrecopyState st = {0};
    CocoPrecopyDecision d;
    int64_t now = g_get_monotonic_time();
    g_autofree char *predicted = NULL;

    if (!m->precopy_us)
        m->precopy_us = now;
    cocoAgentMigrationStats(m, &ts);
    m->policy.downtime_limit_ms =
        m->downtime_limit > 0 ? (uint64_t)m->downtime_limit : 0;
    st.epochs = rounds;
    st.elapsed_ms = (uint64_t)(now - m->precopy_us) / 1000;
    st.total_bytes = m->npages * COCO_EMU_PAGE_SIZE;
    st.dirty_rate = ts.dirty_rate * COCO_EMU_PAGE_SIZE;
    st.dirty_measured = ts.dirty_measured;
    st.since_scan_ms = ts.since_scan_ms;
    st.seal_rate = MAX(ts.epoch_rate, ts.rate);
    st.paused = m->guest_paused;
    cocoPrecopyDecide(&m->policy, &st, &d);
    m->predicted = d.predicted_ms != G_MAXUINT64;
    m->expected_downtime = m->predicted ? d.predicted_ms : 0;
    cocoAgentLog(
        m->agent, m, G_LOG_LEVEL_MESSAGE,
        "precopy epochs=%u elapsed_ms=%" PRIu64 " dirty_rate=%" PRIu64
        " seal_rate=%" PRIu64 " yielded_ms=%" PRIu64 " predicted_ms=%" PRId64
        " target_ms=%" PRIu64 " paused=%d action=%s",
        rounds, st.elapsed_ms, st.dirty_rate, st.seal_rate, ts.yielded_ms,
        m->predicted ? (int64_t)d.predicted_ms : (int64_t)-1, d.target_ms,
        (int)st.paused, cocoPrecopyActionTypeToString(d.action));
    predicted = m->predicted ? g_strdup_printf("%" PRIu64, d.predicted_ms)
                             : g_strdup(_("unknown (no dirty rate measured)"));
    switch (d.action) {
    case COCO_PRECOPY_CONTINUE:
        return 1;
    case COCO_PRECOPY_ABORT:
        return cocoErrorSet(
            error, COCO_ERROR_MIGRATION_ABORTED,
            _("pre-copy did not converge: '%1$s' reached after '%2$u' epochs and '%3$llu' ms; the predicted blackout '%4$s' ms exceeds the downtime target '%5$llu' ms (smaller of maxBlackout and libvirt's downtime-limit) at a dirty rate of '%6$llu' KiB/s and a seal rate of '%7$llu' KiB/s; <coco:precopy onNonConvergence='abort'>"),
            d.limit, rounds, (unsigned long long)st.elapsed_ms, predicted,
            (unsigned long long)d.target_ms,
            (unsigned long long)(st.dirty_rate / 1024),
            (unsigned long long)(st.seal_rate / 1024));
    case COCO_PRECOPY_PAUSE:
        cocoAgentLog(
            m->agent, m, G_LOG_LEVEL_WARNING,
            "precopy did not converge (%s reached): the guest pauses for the rest (onNonConvergence=pause)",
            d.limit);
        return 0;
    case COCO_PRECOPY_SWITCHOVER:
    case COCO_PRECOPY_FORCE:
    case COCO_PRECOPY_LAST:
    default:
        return 0;
    }
}

/* The policy's limits: the domain's <coco:precopy>, the host's
 * precopy_rounds as the least number of rounds. */
static void
cocoAgentMigrationInitPolicy(CocoAgentMigration *m)
{
    const CocoMigrationDef *def = m->def;

    memset(&m->policy, 0, sizeof(m->policy));
    m->policy.min_epochs = cocoAgentConfig(m->agent)->precopy_rounds;
    if (!def)
        return;
    m->policy.max_epochs = def->max_epochs;
    m->policy.max_time_ms = (uint64_t)def->max_time * 1000;
    m->policy.max_blackout_ms = def->max_blackout;
    m->policy.abort_on_non_convergence =
        def->has_on_non_convergence &&
        def->on_non_convergence == COCO_NON_CONVERGENCE_ABORT;
}

static void cocoAgentMigrationOnSwitching(void *opaque, bool on);

static int
cocoAgentMigrationNewSession(CocoAgentMigration *m, CocoPhaseData *data,
                             GError **error)
{
    CocoMigrationSessionConfig sc = {0};

    sc.role = m->role;
    sc.fw = m->fw;
    sc.nvcpus = m->nvcpus;
    sc.precopy_rounds = cocoAgentConfig(m->agent)->precopy_rounds;
    if (m->role == COCO_FIRMWARE_ROLE_SOURCE) {
        cocoAgentMigrationInitPolicy(m);
        sc.next_round = cocoAgentMigrationNextRound;
        sc.next_round_opaque = m;
    }
    sc.data = data;
    sc.send = cocoAgentMigrationSend;
    sc.send_opaque = m;
    sc.decide = cocoAgentMigrationDecide;
    sc.decide_opaque = m;
    sc.switching = cocoAgentMigrationOnSwitching;
    sc.switching_opaque = m;
    if (!(m->session = cocoMigrationSessionNew(&sc, error))) {
        cocoPhaseDataFree(data);
        return -1;
    }
    m->session_t0 = g_get_monotonic_time();
    m->session_wall_us = g_get_real_time();
    m->samples = g_array_new(FALSE, FALSE, sizeof(CocoAgentSample));
    return 0;
}

/* A precopy round ended on its thread (reported on this worker). */
static void
cocoAgentMigrationOnRoundEnd(const GError *why, void *opaque)
{
    CocoAgentMigration *m = opaque;
    g_autoptr(GError) err = NULL;

    if (!why) {
        cocoAgentMigrationReportEpoch(m);
        return;
    }
    if (!m->session || cocoAgentMigrationOver(m))
        return;
    cocoAgentLog(m->agent, m, G_LOG_LEVEL_WARNING, "precopy round failed: %s",
                 why->message);
    if (cocoMigrationSessionFail(m->session, why, &err) < 0)
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_WARNING, "local-failure: %s",
                     err->message);
    cocoAgentMigrationAfter(m);
}

/* Destination: the transfer engine's progress as session events. */
static gboolean
cocoAgentMigrationPoll(gpointer opaque)
{
    CocoAgentMigration *m = opaque;
    CocoTransferStats st;
    CocoPhaseEvent ev;
    bool did = false;

    if (!m->xdst || !m->session)
        return G_SOURCE_CONTINUE;
    cocoTransferDestGetStats(m->xdst, &st);
    cocoAgentMigrationSample(m, &st);
    while ((ev = cocoPhaseTransferTrackerNext(&m->tracker, &st)) !=
           COCO_PHASE_EVENT_LAST) {
        g_autoptr(GError) err = NULL;

        did = true;
        if (cocoMigrationSessionHandleEvent(m->session, ev, &err) < 0)
            cocoAgentLog(m->agent, m, G_LOG_LEVEL_MESSAGE,
                         "event=%s failed: %s", cocoPhaseEventTypeToString(ev),
                         err->message);
        if (!m->poll_src)
            break;
    }
    if (m->poll_src && !m->data_failed &&
        st.phase == COCO_TRANSFER_PHASE_FAILED && !cocoAgentMigrationOver(m)) {
        g_autoptr(GError) why = NULL;
        g_autoptr(GError) err = NULL;

        m->data_failed = true;
        did = true;
        cocoTransferDestGetError(m->xdst, &why);
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_WARNING, "import failed: %s",
                     why ? why->message : "");
        if (cocoMigrationSessionFail(m->session, why, &err) < 0)
            cocoAgentLog(m->agent, m, G_LOG_LEVEL_WARNING, "local-failure: %s",
                         err->message);
    }
    if (did && m->poll_src) {
        cocoAgentMigrationAfter(m);
        return m->poll_src ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/* ---- starting ------------------------------------------------------------ */

static int
cocoAgentMigrationLoadDomain(CocoAgentMigration *m, unsigned int *vcpus,
                             GError **error)
{
    return cocoAgentDomainLoad(cocoAgentConfig(m->agent)->pid_dir, m->dom.name,
                               &m->def, vcpus, error);
}

/* libvirt's max-bandwidth on the sealed pipeline, except while the guest
 * is paused during the precopy (force-complete): it cannot dirty any
 * more, so the rest of the round is part of its downtime and moves
 * uncapped, as QEMU's own downtime phase does. */
static void
cocoAgentMigrationApplyBandwidth(CocoAgentMigration *m)
{
    if (!m->xsrc)
        return;
    cocoTransferSourceSetMaxBandwidth(
        m->xsrc, m->guest_paused ? 0 : (uint64_t)m->max_bandwidth);
    /* Its guest is down: its own work waits for no other switchover. */
    cocoTransferSourceSetUrgent(m->xsrc, m->guest_paused || m->switching != 0);
}

/* The session entered (left) its switchover's downtime: the host's other
 * migrations hold their bulk pre-copy work meanwhile
 * (transfer/cocotransferpriority.h). Worker thread. */
static void
cocoAgentMigrationOnSwitching(void *opaque, bool on)
{
    CocoAgentMigration *m = opaque;

    if (!cocoAgentMigrationHold(m, &m->switching, on))
        return;
    cocoAgentMigrationApplyBandwidth(m);
    /* A source tells its destination, whose host holds its own bulk work
     * too (cocoAgentMigrationPeerSwitching()); best effort: a lost peer
     * is the session's business, not this notice's. */
    if (m->role == COCO_FIRMWARE_ROLE_SOURCE && m->ctl) {
        g_autoptr(GBytes) notice = cocoPhaseMessageEncodeSwitching(on);
        g_autoptr(GError) err = NULL;

        if (cocoAgentPeerConnSendBytes(m->ctl, notice, &err) < 0)
            cocoAgentLog(m->agent, m, G_LOG_LEVEL_MESSAGE,
                         "switching notice not sent: %s", err->message);
    }
}

/* Source (worker): connect to the peer agent, authenticate it, open the
 * data streams and start the session. Blocks this worker only. */
static int
cocoAgentMigrationStartSource(CocoAgentMigration *m, GError **error)
{
    const CocoAgentConfig *cfg = cocoAgentConfig(m->agent);
    g_autofree GIOStream **streams = NULL;
    CocoPeerHello hello = {0};
    CocoTransferConfig tc;
    CocoTransferSource *xsrc;
    CocoAgentPeerConn *ctl;
    CocoPhaseData *data;
    unsigned int vcpus = 0;
    unsigned int i;
    int ret = -1;

    /* docs/vfio.rst: DMA mappings the interposer could not unmap keep
     * guest pages pinned for a device on this host. */
    if (m->dom.vfio_leak)
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_LEAK,
            _("domain '%1$s' leaked DMA mappings of a VFIO host device, its pages stay pinned on this host: %2$s"),
            m->dom.name, m->dom.vfio_leak);
    if (cocoAgentMigrationLoadDomain(m, &vcpus, error) < 0)
        return -1;
    /* A client that did not detach the host devices (docs/formatcoco.rst,
     * <coco:hostdev>): refused before anything moves. */
    if (cocoAgentDomainLoadHostdevs(cfg->pid_dir, m->dom.name, m->def, error) <
        0)
        return -1;
    m->streams = cfg->streams;
    m->pages_per_bundle = cfg->pages_per_bundle;
    if (m->def && m->def->has_streams && m->def->forward_streams)
        m->streams = m->def->forward_streams;
    if (m->def && m->def->has_streams && m->def->pages_per_bundle)
        m->pages_per_bundle = m->def->pages_per_bundle;
    m->nvcpus = m->dom.vcpus ? m->dom.vcpus : vcpus ? vcpus : cfg->vcpus;
    if (!m->peer)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED, "%s",
            _("the relay did not report the destination's address: libvirt did not hand QEMU a network connection (tunnelled migration?); confidential migration needs a direct or peer-to-peer migration"));
    if (cocoPeerParseHost(m->peer, &m->peer_host, error) < 0)
        return -1;
    m->peer_port =
        cfg->peer_port
            ? cfg->peer_port
            : cocoAgentIncomingGetPort(cocoAgentIncomingOf(m->agent));
    g_free(m->peer);
    m->peer = g_strdup_printf("%s:%u", m->peer_host, m->peer_port);
    if (cocoAgentMigrationOpenRam(m, error) < 0 ||
        cocoAgentMigrationNewFirmware(m, m->nvcpus, error) < 0)
        return -1;
    /* The firmware's own dirty log: one mapping of the RAM file (the
     * firmware's); pages the guest never used are never read or sent. */
    m->dirty = cocoDirtyFirmwareNew(m->fw, m->npages);
    /* One migration at a time connects to this peer host (the peer's
     * limit on unauthenticated connections per address). */
    if (cocoAgentPeerSlotsAcquire(cocoAgentPeerSlotsOf(m->agent), m->peer_host,
                                  cfg->peer_timeout, error) < 0)
        return -1;
    m->setup_slot = g_strdup(m->peer_host);

    hello.kind = COCO_PEER_KIND_CONTROL;
    hello.protocol = COCO_PEER_PROTOCOL_VERSION;
    hello.session = m->session_id;
    hello.has_session = true;
    hello.streams = m->streams;
    hello.has_streams = true;
    hello.name = m->dom.name;
    hello.uuid = m->dom.uuid;
    hello.vcpus = m->nvcpus;
    hello.has_vcpus = true;
    hello.pages = (gint64)m->npages;
    hello.has_pages = true;
    hello.bundle = m->pages_per_bundle;
    hello.has_bundle = true;
    if (!(ctl = cocoAgentPeerConnect(m->agent, m->peer_host, m->peer_port,
                                     &hello, error))) {
        cocoAgentMetricsPeerError(cocoAgentMetricsOf(m->agent),
                                  COCO_AGENT_METRICS_PEER_OUTGOING,
                                  cocoAgentMetricsCause(*error));
        return -1;
    }
    m->ctl = ctl;
    streams = g_new0(GIOStream *, m->streams);
    for (i = 0; i < m->streams; i++) {
        CocoPeerHello sh = {0};

        sh.kind = COCO_PEER_KIND_STREAM;
        sh.protocol = COCO_PEER_PROTOCOL_VERSION;
        sh.session = m->session_id;
        sh.has_session = true;
        sh.streams = m->streams;
        sh.has_streams = true;
        sh.index = i;
        sh.has_index = true;
        streams[i] = cocoAgentPeerConnectStream(
            m->agent, m->peer_host, m->peer_port, &sh,
            cocoAgentPeerConnGetBinding(ctl), error);
        g_free(sh.token);
        if (!streams[i]) {
            cocoAgentMetricsPeerError(cocoAgentMetricsOf(m->agent),
                                      COCO_AGENT_METRICS_PEER_OUTGOING,
                                      cocoAgentMetricsCause(*error));
            goto cleanup;
        }
    }
    cocoAgentMigrationTransferConfig(m, &tc);
    if (!(xsrc = cocoTransferSourceNew(m->fw, m->dirty, &tc, streams, error)))
        goto cleanup;
    cocoTransferSourceSetPriority(xsrc, cocoAgentPriorityOf(m->agent));
    cocoTransferSourceSetDirtyHook(xsrc, cocoAgentEmuDirty, m->fw);
    cocoTransferSourceSetFirmwareDirty(xsrc, cocoAgentEmuGetDirty, m->fw);
    data = cocoPhaseDataNewTransferSource(xsrc);
    /* Precopy rounds on a thread of their own: this worker keeps serving
     * the relay's gates, progress and a cancel meanwhile. */
    cocoPhaseDataSetAsyncRounds(data, m->ctx, cocoAgentMigrationOnRoundEnd, m);
    if (cocoAgentMigrationNewSession(m, data, error) < 0)
        goto cleanup;
    m->xsrc = xsrc;
    cocoAgentMigrationApplyBandwidth(m);
    m->ctl = NULL;
    cocoAgentMigrationSetControl(m, ctl);
    ret = 0;

cleanup:
    for (i = 0; streams && i < m->streams; i++) {
        if (streams[i])
            g_object_unref(streams[i]);
    }
    return ret;
}

/* Destination (worker): the session of the assembled incoming migration. */
static int
cocoAgentMigrationStartDestination(CocoAgentMigration *m, GError **error)
{
    CocoTransferConfig tc;
    CocoTransferDest *xdst;
    CocoPhaseData *data;
    unsigned int vcpus = 0;

    if (cocoAgentMigrationLoadDomain(m, &vcpus, error) < 0 ||
        cocoAgentMigrationOpenRam(m, error) < 0)
        return -1;
    if ((gint64)m->npages != m->hello->pages)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the source's guest has '%1$lld' pages, the destination's RAM file '%2$s' '%3$llu'"),
            (long long)m->hello->pages, m->dom.ram_path,
            (unsigned long long)m->npages);
    if (cocoAgentMigrationNewFirmware(m, m->dom.vcpus ? m->dom.vcpus : vcpus,
                                      error) < 0)
        return -1;
    cocoAgentMigrationTransferConfig(m, &tc);
    if (!(xdst = cocoTransferDestNew(m->fw, &tc, m->in_streams, error)))
        return -1;
    data = cocoPhaseDataNewTransferDest(xdst);
    if (cocoAgentMigrationNewSession(m, data, error) < 0)
        return -1;
    m->xdst = xdst;
    if (cocoTransferDestStart(xdst, error) < 0)
        return -1;
    m->poll_src = cocoAgentMigrationTimer(m, COCO_MIGRATION_POLL_MS,
                                          cocoAgentMigrationPoll);
    return 0;
}

static gboolean
cocoAgentMigrationOnStart(gpointer opaque)
{
    CocoAgentMigration *m = opaque;
    g_autoptr(GError) err = NULL;
    int rc;

    /* The first record, here: the worker is the record's only writer, and
     * a durable write never runs on the main thread. */
    cocoAgentMigrationSave(m);
    if (m->role == COCO_FIRMWARE_ROLE_SOURCE)
        rc = cocoAgentMigrationStartSource(m, &err);
    else
        rc = cocoAgentMigrationStartDestination(m, &err);
    if (rc < 0) {
        size_t g;

        m->start_error = g_strdup(err->message);
        m->start_cause = cocoAgentMetricsCause(err);
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_WARNING, "cannot start: %s",
                     err->message);
        cocoAgentMigrationReleaseSlot(m);
        if (m->ctl) {
            cocoAgentPeerConnFree(m->ctl);
            m->ctl = NULL;
        }
        for (g = 0; g < COCO_PHASE_GATE_LAST; g++) {
            g_autofree char *reason = g_strdup_printf(
                _("the confidential migration could not start: %1$s"),
                m->start_error);

            /* The source never left its VM: a cont may run it. */
            cocoAgentMigrationVerdict(m, &m->held[g],
                                      g == COCO_PHASE_GATE_CONT &&
                                          m->role == COCO_FIRMWARE_ROLE_SOURCE,
                                      reason);
        }
        cocoAgentMigrationSave(m);
        cocoAgentMigrationFinish(m);
        return G_SOURCE_REMOVE;
    }
    if (m->role == COCO_FIRMWARE_ROLE_SOURCE) {
        cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_MIGRATE);
    } else {
        CocoAgentPeerConn *ctl = g_steal_pointer(&m->ctl);

        cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_INCOMING);
        cocoAgentMigrationSetControl(m, ctl);
    }
    /* Gates that arrived while it started. */
    if (m->held[COCO_PHASE_GATE_MIGRATE].relay &&
        m->role == COCO_FIRMWARE_ROLE_SOURCE)
        cocoAgentMigrationStartProgress(m,
                                        m->held[COCO_PHASE_GATE_MIGRATE].relay,
                                        m->held[COCO_PHASE_GATE_MIGRATE].id);
    return G_SOURCE_REMOVE;
}

/* ---- the worker ------------------------------------------------------------ */

static void
cocoAgentMigrationTeardown(CocoAgentMigration *m)
{
    size_t g;
    GSource **timers[] = {&m->poll_src,   &m->progress_src,  &m->switchover_src,
                          &m->hold_src,   &m->reconnect_src, &m->giveup_src,
                          &m->recover_src};

    for (g = 0; g < G_N_ELEMENTS(timers); g++)
        cocoSourceClear(timers[g]);
    cocoAgentMigrationReleaseSlot(m);
    for (g = 0; g < COCO_PHASE_GATE_LAST; g++)
        cocoAgentMigrationVerdict(
            m, &m->held[g], false,
            _("the host agent ended the migration session"));
    if (m->recover_clients && m->recover_clients->len)
        cocoAgentMigrationAnswerRecover(m, true);
    if (m->ctl) {
        cocoAgentPeerConnFree(m->ctl);
        m->ctl = NULL;
    }
    cocoAgentMigrationPeerSwitching(m, false);
    m->xsrc = NULL;
    m->xdst = NULL;
    /* Joins the transfer engine's threads. */
    g_clear_pointer(&m->session, cocoMigrationSessionFree);
    g_clear_pointer(&m->dirty, cocoDirtySourceFree);
    if (m->fw && cocoEmuWriteLogLost(m->fw))
        cocoAgentLog(
            m->agent, m, G_LOG_LEVEL_MESSAGE,
            "dirty tracking: the write log was dropped, the firmware hashed since: %s",
            cocoEmuWriteLogLost(m->fw));
    g_clear_pointer(&m->fw, cocoFirmwareFree);
    g_clear_pointer(&m->def, cocoMigrationDefFree);
    if (m->ram_fd >= 0)
        close(m->ram_fd);
    m->ram_fd = -1;
}

/* Main thread: a retired worker has ended. */
static gboolean
cocoAgentMigrationOnEnded(gpointer opaque)
{
    CocoAgentMigration *m = opaque;

    cocoAgentReapMigration(m->agent, m);
    return G_SOURCE_REMOVE;
}

static gpointer
cocoAgentMigrationThread(gpointer opaque)
{
    CocoAgentMigration *m = opaque;

    g_main_context_push_thread_default(m->ctx);
    g_main_loop_run(m->loop);
    cocoAgentMigrationTeardown(m);
    g_main_context_pop_thread_default(m->ctx);
#ifdef __GLIBC__
    /* The session's page states and dirty logs (about 14 bytes per guest
     * page) were just freed: hand the memory back to the host now, not
     * whenever the allocator trims, so an agent that moved an 8 GiB guest
     * does not keep its bookkeeping until the next migration. */
    malloc_trim(0);
#endif
    /* Retired: the main thread did not wait for the teardown; it joins
     * this thread now (the agent's end joins it otherwise). */
    if (g_atomic_int_get(&m->retiring))
        cocoAgentPostMain(m->agent, cocoAgentMigrationOnEnded,
                          cocoAgentMigrationRef(m),
                          (GDestroyNotify)cocoAgentMigrationUnref);
    return NULL;
}

/* Queue @func on the worker (from the main thread). */
static void
cocoAgentMigrationPost(CocoAgentMigration *m, GSourceFunc func, gpointer data,
                       GDestroyNotify destroy)
{
    GSource *src = g_idle_source_new();

    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(src, func, data, destroy);
    g_source_attach(src, m->ctx);
    g_source_unref(src);
}

static CocoAgentMigration *
cocoAgentMigrationNew(CocoAgent *agent, const CocoAgentDomainInfo *dom,
                      CocoFirmwareRole role, guint64 session, guint64 relay,
                      GError **error)
{
    CocoAgentMigration *m = g_new0(CocoAgentMigration, 1);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%S");
    g_autofree char *name = NULL;
    const char *p;

    m->refs = 1;
    m->agent = agent;
    m->role = role;
    m->session_id = session;
    m->relay = relay;
    m->ram_fd = -1;
    m->downtime_limit = -1;
    cocoAgentDomainInfoCopy(&m->dom, dom);
    m->started = g_date_time_format_iso8601(now);
    /* The id is a file name: only the name's safe characters. */
    name = g_strdup(dom->name);
    for (p = name; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
            name[p - name] = '_';
    }
    m->id = g_strdup_printf("%s-%s-%s-%08x", name,
                            cocoFirmwareRoleTypeToString(role), stamp,
                            (unsigned int)(session & 0xffffffffU));
    m->state = COCO_PHASE_STATE_IDLE;
    m->recover_clients = g_array_new(FALSE, FALSE, sizeof(guint64));
    m->ctx = g_main_context_new();
    m->loop = g_main_loop_new(m->ctx, FALSE);
    (void)error;
    return m;
}

/* Register @m and start its worker with the start task. */
static int
cocoAgentMigrationLaunch(CocoAgentMigration *m, GError **error)
{
    g_autofree char *tname = g_strdup_printf("coco-%.8s", m->id);

    cocoAgentMigrationPost(m, cocoAgentMigrationOnStart, m, NULL);
    m->thread = g_thread_try_new(tname, cocoAgentMigrationThread, m, NULL);
    if (!m->thread)
        return cocoErrorSet(error, COCO_ERROR_AGENT_LIMIT,
                            _("cannot start the worker of migration '%1$s'"),
                            m->id);
    cocoAgentAddMigration(m->agent, m);
    return 0;
}

CocoAgentMigration *
cocoAgentMigrationNewSource(CocoAgent *agent, const CocoAgentDomainInfo *dom,
                            guint64 relay, const char *peer, GError **error)
{
    guint64 sid = ((guint64)g_random_int() << 32) | g_random_int();
    CocoAgentMigration *m = cocoAgentMigrationNew(
        agent, dom, COCO_FIRMWARE_ROLE_SOURCE, sid, relay, error);

    m->peer = g_strdup(peer);
    if (cocoAgentMigrationLaunch(m, error) < 0) {
        cocoAgentMigrationUnref(m);
        return NULL;
    }
    return m;
}

CocoAgentMigration *
cocoAgentMigrationNewDestination(CocoAgent *agent,
                                 const CocoAgentDomainInfo *dom, guint64 relay,
                                 CocoPeerHello *hello, CocoAgentPeerConn *ctl,
                                 GIOStream **streams, GError **error)
{
    CocoAgentMigration *m =
        cocoAgentMigrationNew(agent, dom, COCO_FIRMWARE_ROLE_DESTINATION,
                              hello->session, relay, error);
    gint64 i;

    m->hello = hello;
    m->streams = (unsigned int)hello->streams;
    m->nvcpus = (unsigned int)hello->vcpus;
    m->pages_per_bundle = (unsigned int)hello->bundle;
    m->peer = g_strdup(cocoAgentPeerConnGetAddress(ctl));
    m->peer_host = g_strdup(cocoAgentPeerConnGetHost(ctl));
    m->peer_identity = g_strdup(cocoAgentPeerConnGetIdentity(ctl));
    m->ctl = ctl;
    /* NULL-terminated for the free path; the transfer engine reads the
     * first hello->streams. */
    m->in_streams = g_new0(GIOStream *, hello->streams + 1);
    for (i = 0; i < hello->streams; i++)
        m->in_streams[i] = streams[i];
    g_free(streams);
    if (cocoAgentMigrationLaunch(m, error) < 0) {
        cocoAgentMigrationUnref(m);
        return NULL;
    }
    return m;
}

/* ---- posts from the main thread --------------------------------------------- */

typedef struct {
    CocoAgentMigration *m;
    CocoPhaseEvent event;
    char *why;
    guint64 relay;
    gint64 id;
    CocoAgentPeerConn *ctl;
    gint64 downtime; /* parameters: -1 not given */
    gint64 bandwidth;
    bool running;
} CocoAgentMigrationInput;

static void
cocoAgentMigrationInputFree(gpointer p)
{
    CocoAgentMigrationInput *in = p;

    cocoAgentMigrationUnref(in->m);
    g_free(in->why);
    cocoAgentPeerConnFree(in->ctl);
    g_free(in);
}

static CocoAgentMigrationInput *
cocoAgentMigrationInputNew(CocoAgentMigration *m)
{
    CocoAgentMigrationInput *in = g_new0(CocoAgentMigrationInput, 1);

    in->m = cocoAgentMigrationRef(m);
    return in;
}

static gboolean
cocoAgentMigrationOnEvent(gpointer opaque)
{
    CocoAgentMigrationInput *in = opaque;
    CocoAgentMigration *m = in->m;
    g_autoptr(GError) why = NULL;

    if (in->why)
        cocoErrorSet(&why, COCO_ERROR_MIGRATION_ABORTED, "%s", in->why);
    cocoAgentMigrationEventWhy(m, in->event, why);
    return G_SOURCE_REMOVE;
}

void
cocoAgentMigrationPostEvent(CocoAgentMigration *m, CocoPhaseEvent event,
                            const char *why)
{
    CocoAgentMigrationInput *in = cocoAgentMigrationInputNew(m);

    in->event = event;
    in->why = g_strdup(why);
    cocoAgentMigrationPost(m, cocoAgentMigrationOnEvent, in,
                           cocoAgentMigrationInputFree);
}

static gboolean
cocoAgentMigrationOnParameters(gpointer opaque)
{
    CocoAgentMigrationInput *in = opaque;
    CocoAgentMigration *m = in->m;

    if (in->downtime >= 0)
        m->downtime_limit = in->downtime;
    if (in->bandwidth >= 0) {
        m->max_bandwidth = in->bandwidth;
        cocoAgentMigrationApplyBandwidth(m);
    }
    cocoAgentLog(m->agent, m, G_LOG_LEVEL_MESSAGE,
                 "libvirt's downtime_limit_ms=%" G_GINT64_FORMAT
                 " max_bandwidth=%" G_GINT64_FORMAT,
                 m->downtime_limit, m->max_bandwidth);
    return G_SOURCE_REMOVE;
}

static gboolean
cocoAgentMigrationOnVfioLeak(gpointer opaque)
{
    CocoAgentMigrationInput *in = opaque;
    CocoAgentMigration *m = in->m;
    g_autoptr(GError) why = NULL;
    g_autoptr(GError) err = NULL;
    CocoPhaseState st = cocoAgentMigrationState(m);

    if (!m->session || m->role != COCO_FIRMWARE_ROLE_SOURCE ||
        cocoAgentMigrationOver(m))
        return G_SOURCE_REMOVE;
    if (cocoPhaseStateAfterStartToken(m->role, st)) {
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_MESSAGE,
                     "VFIO leak in state %s, after the start token: the "
                     "migration goes on",
                     cocoPhaseStateTypeToString(st));
        return G_SOURCE_REMOVE;
    }
    cocoErrorSet(
        &why, COCO_ERROR_VFIO_LEAK,
        _("domain '%1$s' leaked DMA mappings of a VFIO host device, its pages stay pinned on this host: %2$s"),
        m->dom.name, in->why);
    cocoAgentLog(m->agent, m, G_LOG_LEVEL_WARNING, "%s", why->message);
    if (cocoMigrationSessionFail(m->session, why, &err) < 0)
        cocoAgentLog(m->agent, m, G_LOG_LEVEL_WARNING, "local-failure: %s",
                     err->message);
    cocoAgentMigrationAfter(m);
    return G_SOURCE_REMOVE;
}

void
cocoAgentMigrationPostParameters(CocoAgentMigration *m, gint64 downtime_ms,
                                 gint64 bandwidth)
{
    CocoAgentMigrationInput *in = cocoAgentMigrationInputNew(m);

    in->downtime = downtime_ms;
    in->bandwidth = bandwidth;
    cocoAgentMigrationPost(m, cocoAgentMigrationOnParameters, in,
                           cocoAgentMigrationInputFree);
}

static gboolean
cocoAgentMigrationOnRunState(gpointer opaque)
{
    CocoAgentMigrationInput *in = opaque;
    CocoAgentMigration *m = in->m;

    m->guest_paused = !in->running;
    cocoAgentMigrationApplyBandwidth(m);
    cocoAgentLog(m->agent, m, G_LOG_LEVEL_MESSAGE, "guest %s%s",
                 in->running ? "runs" : "paused",
                 m->xsrc && m->max_bandwidth > 0
                     ? (in->running ? ": the bandwidth cap applies again"
                                    : ": the rest of the round moves uncapped")
                     : "");
    return G_SOURCE_REMOVE;
}

void
cocoAgentMigrationPostRunState(CocoAgentMigration *m, bool running)
{
    CocoAgentMigrationInput *in = cocoAgentMigrationInputNew(m);

    in->running = running;
    cocoAgentMigrationPost(m, cocoAgentMigrationOnRunState, in,
                           cocoAgentMigrationInputFree);
}

void
cocoAgentMigrationPostVfioLeak(CocoAgentMigration *m, const char *reason)
{
    CocoAgentMigrationInput *in = cocoAgentMigrationInputNew(m);

    in->why = g_strdup(reason);
    cocoAgentMigrationPost(m, cocoAgentMigrationOnVfioLeak, in,
                           cocoAgentMigrationInputFree);
}

static gboolean
cocoAgentMigrationOnGate(gpointer opaque)
{
    CocoAgentMigrationInput *in = opaque;
    CocoAgentMigration *m = in->m;
    CocoPhaseGate pg = cocoPhaseEventGate(in->event);
    CocoAgentHeld *h;

    if (pg == COCO_PHASE_GATE_LAST)
        return G_SOURCE_REMOVE;
    h = &m->held[pg];
    if (h->relay)
        cocoAgentMigrationVerdict(
            m, h, false, _("superseded by a newer request for the same gate"));
    h->relay = in->relay;
    h->id = in->id;
    if (!m->session) {
        if (m->start_error) {
            g_autofree char *reason = g_strdup_printf(
                _("the confidential migration could not start: %1$s"),
                m->start_error);

            cocoAgentMigrationVerdict(m, h,
                                      pg == COCO_PHASE_GATE_CONT &&
                                          m->role == COCO_FIRMWARE_ROLE_SOURCE,
                                      reason);
        }
        /* Otherwise it is still starting: the start task answers. */
        return G_SOURCE_REMOVE;
    }
    if (pg == COCO_PHASE_GATE_MIGRATE) {
        /* `migrate` is held: the session releases it once SETUP and the
         * precopy rounds ran. */
        CocoPhaseState st = cocoMigrationSessionGetState(m->session);
        const GError *failure = cocoMigrationSessionGetFailure(m->session);

        if (m->role == COCO_FIRMWARE_ROLE_SOURCE && !cocoAgentMigrationOver(m))
            cocoAgentMigrationStartProgress(m, in->relay, in->id);
        if (cocoMigrationSessionGateHeld(m->session, pg) ||
            st == COCO_PHASE_STATE_IDLE || st == COCO_PHASE_STATE_PREPARING ||
            st == COCO_PHASE_STATE_SETUP)
            return G_SOURCE_REMOVE;
        if (!cocoPhaseStateMayRun(m->role, st) ||
            cocoPhaseStateIsFinal(m->role, st)) {
            g_autofree char *reason =
                g_strdup_printf(_("confidential migration aborted: %1$s"),
                                failure ? failure->message : "");

            cocoAgentMigrationVerdict(m, h, false, reason);
            return G_SOURCE_REMOVE;
        }
        cocoAgentMigrationVerdict(m, h, true, NULL);
        return G_SOURCE_REMOVE;
    }
    if (in->event == COCO_PHASE_EVENT_PRE_SWITCHOVER) {
        m->pending_switchover = true;
        cocoAgentMigrationAfter(m);
        return G_SOURCE_REMOVE;
    }
    cocoAgentMigrationEvent(m, in->event);
    return G_SOURCE_REMOVE;
}

void
cocoAgentMigrationPostGate(CocoAgentMigration *m, guint64 relay,
                           CocoPhaseEvent event, gint64 id)
{
    CocoAgentMigrationInput *in = cocoAgentMigrationInputNew(m);

    in->event = event;
    in->relay = relay;
    in->id = id;
    cocoAgentMigrationPost(m, cocoAgentMigrationOnGate, in,
                           cocoAgentMigrationInputFree);
}

static gboolean
cocoAgentMigrationOnRelay(gpointer opaque)
{
    CocoAgentMigrationInput *in = opaque;
    CocoAgentMigration *m = in->m;
    size_t g;

    /* What the old relay held dies with its connection. */
    for (g = 0; g < COCO_PHASE_GATE_LAST; g++) {
        if (m->held[g].relay && m->held[g].relay != in->relay)
            m->held[g].relay = 0;
    }
    if (m->progress.relay && m->progress.relay != in->relay) {
        m->progress.relay = 0;
        cocoSourceClear(&m->progress_src);
    }
    if (in->relay)
        m->relay = in->relay;
    else if (m->relay)
        m->relay = 0;
    return G_SOURCE_REMOVE;
}

void
cocoAgentMigrationPostRelay(CocoAgentMigration *m, guint64 relay)
{
    CocoAgentMigrationInput *in = cocoAgentMigrationInputNew(m);

    in->relay = relay;
    cocoAgentMigrationPost(m, cocoAgentMigrationOnRelay, in,
                           cocoAgentMigrationInputFree);
}

static gboolean
cocoAgentMigrationOnControl(gpointer opaque)
{
    CocoAgentMigrationInput *in = opaque;
    CocoAgentMigration *m = in->m;

    /* The source reconnected: its abort request follows on it. */
    cocoAgentMigrationSetControl(m, g_steal_pointer(&in->ctl));
    cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_PEER_RECONNECTED);
    return G_SOURCE_REMOVE;
}

void
cocoAgentMigrationPostControl(CocoAgentMigration *m, CocoAgentPeerConn *ctl)
{
    CocoAgentMigrationInput *in = cocoAgentMigrationInputNew(m);

    in->ctl = ctl;
    cocoAgentMigrationPost(m, cocoAgentMigrationOnControl, in,
                           cocoAgentMigrationInputFree);
}

static gboolean
cocoAgentMigrationOnRecover(gpointer opaque)
{
    CocoAgentMigrationInput *in = opaque;
    CocoAgentMigration *m = in->m;
    CocoPhaseState st = cocoAgentMigrationState(m);

    g_array_append_val(m->recover_clients, in->relay);
    if (m->role != COCO_FIRMWARE_ROLE_SOURCE ||
        !cocoPhaseStateAfterStartToken(m->role, st) ||
        st == COCO_PHASE_STATE_COMMITTED || st == COCO_PHASE_STATE_FINISHED) {
        cocoAgentMigrationAnswerRecover(m, false);
        return G_SOURCE_REMOVE;
    }
    if (!m->recover_src)
        m->recover_src =
            cocoAgentMigrationTimer(m, COCO_MIGRATION_RECOVER_WAIT_S * 1000U,
                                    cocoAgentMigrationOnRecoverTimeout);
    if (m->ctl)
        cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_PEER_RECONNECTED);
    else
        cocoAgentMigrationReconnect(m);
    return G_SOURCE_REMOVE;
}

void
cocoAgentMigrationPostRecover(CocoAgentMigration *m, guint64 client)
{
    CocoAgentMigrationInput *in = cocoAgentMigrationInputNew(m);

    in->relay = client;
    cocoAgentMigrationPost(m, cocoAgentMigrationOnRecover, in,
                           cocoAgentMigrationInputFree);
}

static gboolean
cocoAgentMigrationOnDomainGone(gpointer opaque)
{
    CocoAgentMigrationInput *in = opaque;
    CocoAgentMigration *m = in->m;

    m->domain_gone = true;
    if (m->session)
        cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_QEMU_GONE);
    else
        cocoAgentMigrationFinish(m);
    return G_SOURCE_REMOVE;
}

void
cocoAgentMigrationPostDomainGone(CocoAgentMigration *m)
{
    cocoAgentMigrationPost(m, cocoAgentMigrationOnDomainGone,
                           cocoAgentMigrationInputNew(m),
                           cocoAgentMigrationInputFree);
}

static gboolean
cocoAgentMigrationOnQuit(gpointer opaque)
{
    CocoAgentMigration *m = opaque;

    g_main_loop_quit(m->loop);
    return G_SOURCE_REMOVE;
}

void
cocoAgentMigrationRetire(CocoAgentMigration *m)
{
    if (!m->thread || g_atomic_int_get(&m->retiring))
        return;
    /* Set before the quit is queued: the worker reads it after its loop. */
    g_atomic_int_set(&m->retiring, 1);
    cocoAgentMigrationPost(m, cocoAgentMigrationOnQuit, m, NULL);
}

void
cocoAgentMigrationStop(CocoAgentMigration *m)
{
    if (!m->thread)
        return;
    cocoAgentMigrationPost(m, cocoAgentMigrationOnQuit, m, NULL);
    g_thread_join(g_steal_pointer(&m->thread));
}
