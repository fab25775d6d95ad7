/*
 * cocoagent.c: virtcocod, the privileged host agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagent.h"
#include "agent/cocoagentauth.h"
#include "agent/cocoagentdomain.h"
#include "agent/cocoagentvfio.h"
#include "agent/cocoagentpeer.h"
#include "firmware/cocoemu.h"
#include "firmware/cocoemuplatform.h"
#include "migration/cocomigrationsession.h"
#include "migration/cocophasetransfer.h"
#include "qmp/cocoqmpchannel.h"
#include "qmp/cocoqmpmessage.h"
#include "transfer/cocodirtyhash.h"
#include "util/cocoerror.h"
#include "util/cocohex.h"
#include "conf/cocomigrationdef.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <glib-unix.h>
#include <gio/gunixsocketaddress.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define COCO_AGENT_POLL_MS 2
#define COCO_AGENT_PROGRESS_MS 200
#define COCO_AGENT_MAX_RECORDS 64

typedef struct _CocoAgentRelay CocoAgentRelay;
typedef struct _CocoAgentDomain CocoAgentDomain;
typedef struct _CocoAgentMigration CocoAgentMigration;

struct _CocoAgent {
    CocoAgentConfig cfg;
    GMainContext *ctx;
    CocoEmuPlatform *pf;
    int unix_fd;
    GSource *unix_src;
    int tcp_fd;
    GSource *tcp_src;
    unsigned int port;
    GList *relays; /* CocoAgentRelay */
    GList *dead; /* CocoAgentRelay, closed, freed from an idle */
    GSource *reap_src;
    GHashTable *domains; /* pid -> CocoAgentDomain */
    GHashTable *pending; /* session id -> CocoAgentPending */
    GHashTable *records; /* migration id -> JsonObject */
    GQueue record_order; /* ids, oldest first */
    bool status_group_missing; /* logged once */
};

struct _CocoAgentRelay {
    CocoAgent *agent;
    CocoQmpChannel *ch;
    pid_t peer_pid;
    uid_t peer_uid;
    gid_t peer_gid;
    CocoAgentDomain *dom;
};

struct _CocoAgentDomain {
    CocoAgent *agent;
    pid_t pid;
    char *name;
    char *uuid;
    char *ram_path;
    unsigned int vcpus;
    char *ram_error; /* why the RAM cannot be used, or NULL */
    int pidfd;
    GSource *pid_src;
    bool incoming; /* an incoming migration was announced */
    char *vfio_leak; /* the VFIO interposer's last leak report, or NULL */
    CocoAgentMigration *mig;
};

typedef struct {
    CocoAgentRelay *relay; /* NULL: not held */
    gint64 id;
} CocoAgentHeld;

struct _CocoAgentMigration {
    CocoAgent *agent;
    CocoAgentDomain *dom;
    char *id;
    char *name;
    char *uuid;
    CocoFirmwareRole role;
    uint64_t session_id;
    char *peer;
    unsigned int streams;
    unsigned int pages_per_bundle;
    unsigned int nvcpus;
    uint64_t npages;
    CocoMigrationDef *def; /* the domain's <coco:migration>, or NULL */
    int ram_fd;
    void *map;
    size_t size;
    CocoFirmware *fw;
    CocoDirtySource *dirty;
    CocoTransferSource *xsrc; /* borrowed from the session's data path */
    CocoTransferDest *xdst; /* borrowed from the session's data path */
    CocoPhaseTransferTracker tracker;
    CocoTransferStats xstats; /* last progress before the session ended */
    CocoMigrationSession *session;
    CocoAgentPeerConn *ctl;
    GSource *poll_src;
    CocoAgentHeld held[COCO_PHASE_GATE_LAST];
    CocoAgentHeld progress; /* the relay that asked 'migrate': its id */
    GSource *progress_src;
    uint32_t progress_epoch; /* the epoch and phase last reported */
    int progress_phase;
    int64_t epoch_us; /* when the last epoch ended */
    uint64_t dirty_rate; /* pages per second, from the last epoch */
    bool pending_switchover;
    bool pause_sent; /* the relay was told to keep a frozen source paused */
    bool data_failed; /* destination: the transfer's failure was reported */
    size_t logged;
    char *start_error;
    char *started;
    GDateTime *start_time;
};

static void cocoAgentMigrationAfter(CocoAgentMigration *m);
static void cocoAgentRelayDrop(CocoAgentRelay *relay);
static void cocoAgentRelaySend(CocoAgentRelay *relay, JsonObject *obj);
static bool cocoAgentMigrationOver(CocoAgentMigration *m);

/* ---- logging and records ---------------------------------------------- */

static void G_GNUC_PRINTF(2, 3)
    cocoAgentLog(CocoAgent *agent, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    if (agent->cfg.quiet)
        return;
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_message("%s", msg);
}

static void
cocoAgentVerdict(CocoAgentRelay *relay, gint64 id, bool release,
                 const char *reason)
{
    JsonObject *obj = json_object_new();

    json_object_set_string_member(obj, "type", "verdict");
    json_object_set_int_member(obj, "id", id);
    json_object_set_boolean_member(obj, "release", release);
    if (!release)
        json_object_set_string_member(obj, "reason", reason);
    cocoAgentRelaySend(relay, obj);
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
}

/*
 * Source: tell the relay that asked 'migrate' how far the private memory
 * is ({"type": "progress", ...}, docs/qemu-coco.rst): it answers
 * libvirt's query-migrate from it. "remaining" is an estimate: what the
 * first full pass has not sent yet, later the size of the last dirty set.
 */
static void
cocoAgentMigrationProgress(CocoAgentMigration *m)
{
    CocoTransferStats ts = {0};
    JsonObject *obj;
    uint64_t total = m->npages * COCO_EMU_PAGE_SIZE;
    uint64_t remaining = 0;
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
    if (ts.phase == COCO_TRANSFER_PHASE_DONE)
        remaining = 0;
    else if (ts.epoch <= 1)
        remaining = ts.pages < m->npages
                        ? (m->npages - ts.pages) * COCO_EMU_PAGE_SIZE
                        : 0;
    else
        remaining = ts.dirty_pages * COCO_EMU_PAGE_SIZE;
    obj = json_object_new();
    json_object_set_string_member(obj, "type", "progress");
    json_object_set_int_member(obj, "id", m->progress.id);
    json_object_set_string_member(
        obj, "phase", NULLSTR(cocoTransferPhaseTypeToString(ts.phase)));
    json_object_set_int_member(obj, "total", (gint64)total);
    json_object_set_int_member(obj, "transferred", (gint64)ts.bytes);
    json_object_set_int_member(obj, "remaining", (gint64)remaining);
    json_object_set_int_member(obj, "pages", (gint64)ts.pages);
    json_object_set_int_member(obj, "epoch", ts.epoch);
    json_object_set_int_member(obj, "rate", (gint64)ts.rate);
    json_object_set_int_member(obj, "dirty_rate", (gint64)m->dirty_rate);
    json_object_set_int_member(obj, "elapsed_ms", (gint64)ts.elapsed_ms);
    cocoAgentRelaySend(m->progress.relay, obj);
}

/* Report to the relay when an epoch or the transfer's phase changed. */
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

static void
cocoAgentMigrationStopProgress(CocoAgentMigration *m)
{
    if (!m->progress_src)
        return;
    g_source_destroy(m->progress_src);
    g_clear_pointer(&m->progress_src, g_source_unref);
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

/* The relay asked 'migrate' (@id): report to it from now on, every
 * COCO_AGENT_PROGRESS_MS (from this timer between epochs, from the
 * transfer engine's tick during one) and at each epoch's end. */
static void
cocoAgentMigrationStartProgress(CocoAgentMigration *m, CocoAgentRelay *relay,
                                gint64 id)
{
    m->progress.relay = relay;
    m->progress.id = id;
    cocoAgentMigrationProgress(m);
    if (m->progress_src)
        return;
    m->progress_src = g_timeout_source_new(COCO_AGENT_PROGRESS_MS);
    g_source_set_callback(m->progress_src, cocoAgentMigrationOnProgressTimer, m,
                          NULL);
    g_source_attach(m->progress_src, m->agent->ctx);
}

static JsonObject *
cocoAgentMigrationRecord(CocoAgentMigration *m)
{
    JsonObject *rec = json_object_new();
    JsonObject *cnt = json_object_new();
    JsonArray *tl = json_array_new();
    g_autofree char *sid =
        g_strdup_printf("%016" G_GINT64_MODIFIER "x", (guint64)m->session_id);
    const CocoPhaseTimelineEntry *e = NULL;
    const GError *failure = NULL;
    size_t n = 0;
    size_t i;

    json_object_set_string_member(rec, "id", m->id);
    json_object_set_string_member(rec, "domain", m->name);
    json_object_set_string_member(rec, "uuid", NULLSTR(m->uuid));
    json_object_set_string_member(rec, "role",
                                  cocoFirmwareRoleTypeToString(m->role));
    json_object_set_string_member(rec, "peer", NULLSTR(m->peer));
    json_object_set_string_member(rec, "session", sid);
    json_object_set_string_member(rec, "started", m->started);
    json_object_set_int_member(rec, "streams", m->streams);
    json_object_set_int_member(rec, "vcpus", m->nvcpus);
    json_object_set_int_member(rec, "pages", (gint64)m->npages);
    if (!m->session) {
        json_object_set_string_member(rec, "state", "failed");
        json_object_set_string_member(rec, "failure", NULLSTR(m->start_error));
        json_object_set_object_member(rec, "counters", cnt);
        json_object_set_array_member(rec, "timeline", tl);
        return rec;
    }
    json_object_set_string_member(
        rec, "state",
        cocoPhaseStateTypeToString(cocoMigrationSessionGetState(m->session)));
    json_object_set_boolean_member(rec, "may_run",
                                   cocoMigrationSessionMayRun(m->session));
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
    return rec;
}

/* Keep the record in memory and in the state directory. */
static void
cocoAgentMigrationSave(CocoAgentMigration *m)
{
    CocoAgent *agent = m->agent;
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
    g_autoptr(GError) err = NULL;
    g_autofree char *text = NULL;
    g_autofree char *path = NULL;
    JsonObject *rec = cocoAgentMigrationRecord(m);

    if (!g_hash_table_contains(agent->records, m->id)) {
        g_queue_push_tail(&agent->record_order, g_strdup(m->id));
        while (g_queue_get_length(&agent->record_order) >
               COCO_AGENT_MAX_RECORDS) {
            g_autofree char *old = g_queue_pop_head(&agent->record_order);

            g_hash_table_remove(agent->records, old);
        }
    }
    g_hash_table_replace(agent->records, g_strdup(m->id), json_object_ref(rec));
    json_node_take_object(node, rec);
    text = json_to_string(node, TRUE);
    path = g_strdup_printf("%s/%s.json", agent->cfg.state_dir, m->id);
    if (!g_file_set_contents_full(path, text, -1,
                                  G_FILE_SET_CONTENTS_CONSISTENT, 0640, &err))
        g_warning("cannot write the migration record '%s': %s", path,
                  err->message);
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

        cocoAgentLog(
            m->agent,
            "migration=%s domain=%s role=%s phase='%s' event=%s "
            "state=%s->%s steps=[%s] duration_ms=%.3f bytes=%" PRIu64
            " pages=%" PRIu64 " epoch=%u fw_calls=%" PRIu64 "%s%s",
            m->id, m->name, cocoFirmwareRoleTypeToString(m->role), x->phase,
            cocoPhaseEventTypeToString(x->event),
            cocoPhaseStateTypeToString(x->from),
            cocoPhaseStateTypeToString(x->to), x->steps,
            (double)x->duration_us / 1000.0, ts.bytes, ts.pages, ts.epoch,
            c->fw_calls, x->code ? " error=" : "",
            x->code ? NULLSTR(cocoErrorCodeToString((CocoErrorCode)x->code))
                    : "");
    }
}

/* ---- migrations -------------------------------------------------------- */

static void
cocoAgentMigrationFree(CocoAgentMigration *m)
{
    size_t g;

    if (!m)
        return;
    if (m->poll_src) {
        g_source_destroy(m->poll_src);
        g_source_unref(m->poll_src);
    }
    cocoAgentMigrationStopProgress(m);
    if (m->ctl)
        cocoAgentPeerConnFree(m->ctl);
    for (g = 0; g < COCO_PHASE_GATE_LAST; g++) {
        if (m->held[g].relay)
            cocoAgentVerdict(m->held[g].relay, m->held[g].id, false,
                             _("the host agent ended the migration session"));
    }
    m->xsrc = NULL;
    m->xdst = NULL;
    cocoMigrationSessionFree(m->session);
    cocoDirtySourceFree(m->dirty);
    cocoFirmwareFree(m->fw);
    cocoMigrationDefFree(m->def);
    if (m->map && m->map != MAP_FAILED)
        munmap(m->map, m->size);
    if (m->ram_fd >= 0)
        close(m->ram_fd);
    if (m->start_time)
        g_date_time_unref(m->start_time);
    g_free(m->started);
    g_free(m->start_error);
    g_free(m->id);
    g_free(m->name);
    g_free(m->uuid);
    g_free(m->peer);
    g_free(m);
}

static CocoAgentMigration *
cocoAgentMigrationNew(CocoAgent *agent, CocoAgentDomain *dom,
                      CocoFirmwareRole role, uint64_t session_id)
{
    CocoAgentMigration *m = g_new0(CocoAgentMigration, 1);
    g_autofree char *stamp = NULL;

    m->agent = agent;
    m->dom = dom;
    m->role = role;
    m->session_id = session_id;
    m->ram_fd = -1;
    m->name = g_strdup(dom->name);
    m->uuid = g_strdup(dom->uuid);
    m->start_time = g_date_time_new_now_utc();
    m->started = g_date_time_format_iso8601(m->start_time);
    stamp = g_date_time_format(m->start_time, "%Y%m%dT%H%M%S");
    m->id = g_strdup_printf("%s-%s-%s-%08x", m->name,
                            cocoFirmwareRoleTypeToString(role), stamp,
                            (unsigned int)(session_id & 0xffffffffU));
    return m;
}

/* Open and map the domain's RAM file. */
static int
cocoAgentMigrationOpenRam(CocoAgentMigration *m, GError **error)
{
    CocoAgentDomain *dom = m->dom;
    struct stat st;

    if (dom->ram_error)
        return cocoErrorSet(error, COCO_ERROR_NOT_SUPPORTED, "%s",
                            dom->ram_error);
    if (!dom->ram_path)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("domain '%1$s' has no file-backed shared guest RAM; confidential migration needs <memoryBacking> with a file source and shared access"),
            dom->name);
    if ((m->ram_fd = open(dom->ram_path, O_RDWR | O_CLOEXEC)) < 0)
        return cocoErrorSetSystem(error, errno,
                                  _("cannot open the guest RAM file '%1$s'"),
                                  dom->ram_path);
    if (fstat(m->ram_fd, &st) < 0)
        return cocoErrorSetSystem(error, errno, _("cannot stat '%1$s'"),
                                  dom->ram_path);
    if (st.st_size <= 0 || st.st_size % COCO_EMU_PAGE_SIZE != 0)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the guest RAM file '%1$s' has size '%2$lld', not a positive multiple of 4096"),
            dom->ram_path, (long long)st.st_size);
    m->size = (size_t)st.st_size;
    m->npages = m->size / COCO_EMU_PAGE_SIZE;
    return 0;
}

static int
cocoAgentMigrationNewFirmware(CocoAgentMigration *m, GError **error)
{
    if (!m->def) {
        m->def = cocoMigrationDefNew();
        m->def->technology = COCO_TECHNOLOGY_TDX;
    }
    /* The destination creates as many streams as the source uses. */
    m->def->has_streams = true;
    m->def->forward_streams = m->streams;
    m->def->pages_per_bundle = m->pages_per_bundle;
    if (!(m->fw = cocoEmuNew(m->role, m->agent->pf, m->def, m->nvcpus, error)))
        return -1;
    return cocoEmuAttachMemoryFd(m->fw, m->ram_fd, 0, m->size, error);
}

/* The domain's policy and vCPU count from libvirt's status file. */
static int
cocoAgentMigrationLoadDomain(CocoAgentMigration *m, unsigned int *vcpus,
                             GError **error)
{
    return cocoAgentDomainLoad(m->agent->cfg.pid_dir, m->name, &m->def, vcpus,
                               error);
}

/* The session's transport: one phase message on the control connection. */
static int
cocoAgentMigrationSend(void *opaque, const CocoPhaseMessage *msg,
                       GError **error)
{
    CocoAgentMigration *m = opaque;

    if (!m->ctl)
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_IO, "%s",
                            _("the connection to the peer agent is closed"));
    return cocoAgentPeerConnSendMessage(m->ctl, msg, error);
}

/* A relay of the migration's domain, or NULL. */
static CocoAgentRelay *
cocoAgentMigrationRelay(CocoAgentMigration *m)
{
    GList *l;

    for (l = m->agent->relays; l; l = l->next) {
        CocoAgentRelay *r = l->data;

        if (r->dom == m->dom)
            return r;
    }
    return NULL;
}

/* Ask the relay to act on QEMU: "cancel" (its migration) or "pause" (keep
 * the vCPUs stopped). */
static void
cocoAgentRelayRequest(CocoAgentRelay *relay, const char *type,
                      const char *reason)
{
    JsonObject *obj = json_object_new();

    json_object_set_string_member(obj, "type", type);
    json_object_set_string_member(obj, "reason", NULLSTR(reason));
    cocoAgentRelaySend(relay, obj);
}

static void
cocoAgentMigrationDecide(void *opaque, const CocoPhaseDecision *d)
{
    CocoAgentMigration *m = opaque;
    CocoAgentHeld *h = &m->held[d->gate];

    cocoAgentLog(m->agent, "migration=%s gate=%s verdict=%s%s%s", m->id,
                 cocoPhaseGateTypeToString(d->gate),
                 cocoPhaseVerdictTypeToString(d->verdict),
                 d->message ? " reason=" : "", d->message ? d->message : "");
    if (d->verdict == COCO_PHASE_VERDICT_CANCEL) {
        /* `migrate` already reached QEMU: ask the relay to cancel it (a
         * relay that does not know this message refuses the next gate
         * instead, which the session does anyway). */
        CocoAgentRelay *relay =
            h->relay ? h->relay : cocoAgentMigrationRelay(m);

        if (relay)
            cocoAgentRelayRequest(relay, "cancel", d->message);
        return;
    }
    if (!h->relay)
        return; /* the relay does not hold this command */
    /* The precopy's last numbers before QEMU's own migration starts. */
    if (d->gate == COCO_PHASE_GATE_MIGRATE &&
        d->verdict == COCO_PHASE_VERDICT_RELEASE)
        cocoAgentMigrationReportEpoch(m);
    cocoAgentVerdict(h->relay, h->id, d->verdict == COCO_PHASE_VERDICT_RELEASE,
                     d->message ? d->message : _("refused"));
    h->relay = NULL;
}

static bool
cocoAgentMigrationOver(CocoAgentMigration *m)
{
    if (!m->session)
        return true;
    switch (cocoMigrationSessionGetState(m->session)) {
    case COCO_PHASE_STATE_ABORTED:
    case COCO_PHASE_STATE_FINISHED:
        return true;
    case COCO_PHASE_STATE_COMMITTED:
        return m->role == COCO_FIRMWARE_ROLE_DESTINATION;
    case COCO_PHASE_STATE_IDLE:
    case COCO_PHASE_STATE_PREPARING:
    case COCO_PHASE_STATE_SETUP:
    case COCO_PHASE_STATE_PRECOPY:
    case COCO_PHASE_STATE_BLACKOUT:
    case COCO_PHASE_STATE_SWITCHOVER:
    case COCO_PHASE_STATE_HANDOVER:
    case COCO_PHASE_STATE_AWAIT_TOKEN:
    case COCO_PHASE_STATE_FROZEN:
    case COCO_PHASE_STATE_LAST:
    default:
        return false;
    }
}

/* Feed an event; gate events the session cannot place are refused. */
static void
cocoAgentMigrationEvent(CocoAgentMigration *m, CocoPhaseEvent ev)
{
    g_autoptr(GError) err = NULL;
    CocoPhaseGate gate = cocoPhaseEventGate(ev);

    if (cocoMigrationSessionHandleEvent(m->session, ev, &err) < 0) {
        cocoAgentLog(m->agent, "migration=%s event=%s failed: %s", m->id,
                     cocoPhaseEventTypeToString(ev), err->message);
        if (gate != COCO_PHASE_GATE_LAST && m->held[gate].relay &&
            !cocoMigrationSessionGateHeld(m->session, gate) &&
            err->code == COCO_ERROR_MIGRATION_PHASE) {
            cocoAgentVerdict(m->held[gate].relay, m->held[gate].id, false,
                             err->message);
            m->held[gate].relay = NULL;
        }
    }
    cocoAgentMigrationAfter(m);
}

static void
cocoAgentMigrationAfter(CocoAgentMigration *m)
{
    cocoAgentMigrationLogTimeline(m);
    if (m->pending_switchover && m->session) {
        CocoPhaseState st = cocoMigrationSessionGetState(m->session);

        if (st != COCO_PHASE_STATE_IDLE && st != COCO_PHASE_STATE_PREPARING &&
            st != COCO_PHASE_STATE_SETUP) {
            m->pending_switchover = false;
            cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_PRE_SWITCHOVER);
            return;
        }
    }
    cocoAgentMigrationLogTimeline(m);
    cocoAgentMigrationReportEpoch(m);
    if (cocoAgentMigrationOver(m))
        cocoAgentMigrationStopProgress(m);
    /* A frozen source may not run, but QEMU resumes a source by itself
     * when its migration fails after the switchover (no 'cont' to refuse):
     * the relay must stop it and keep it stopped. */
    if (m->session && m->role == COCO_FIRMWARE_ROLE_SOURCE && !m->pause_sent &&
        cocoMigrationSessionGetState(m->session) == COCO_PHASE_STATE_FROZEN) {
        CocoAgentRelay *relay = cocoAgentMigrationRelay(m);
        const GError *failure = cocoMigrationSessionGetFailure(m->session);

        if (relay) {
            m->pause_sent = true;
            cocoAgentLog(m->agent, "migration=%s relay pid=%d: keep paused",
                         m->id, (int)relay->peer_pid);
            cocoAgentRelayRequest(relay, "pause",
                                  failure ? failure->message : NULL);
        }
    }
    if (m->poll_src && cocoAgentMigrationOver(m)) {
        g_source_destroy(m->poll_src);
        g_clear_pointer(&m->poll_src, g_source_unref);
    }
    cocoAgentMigrationSave(m);
}

/* Destination: report the transfer engine's progress to the session. */
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
    while ((ev = cocoPhaseTransferTrackerNext(&m->tracker, &st)) !=
           COCO_PHASE_EVENT_LAST) {
        g_autoptr(GError) err = NULL;

        did = true;
        if (cocoMigrationSessionHandleEvent(m->session, ev, &err) < 0)
            cocoAgentLog(m->agent, "migration=%s event=%s failed: %s", m->id,
                         cocoPhaseEventTypeToString(ev), err->message);
        if (!m->poll_src)
            break;
    }
    /* The import failed on the engine's threads (a bundle the firmware
     * refused, a broken or malformed stream): the session must abort now
     * and say why, not wait for the source to notice. */
    if (m->poll_src && !m->data_failed &&
        st.phase == COCO_TRANSFER_PHASE_FAILED && !cocoAgentMigrationOver(m)) {
        g_autoptr(GError) why = NULL;
        g_autoptr(GError) err = NULL;

        m->data_failed = true;
        did = true;
        cocoTransferDestGetError(m->xdst, &why);
        cocoAgentLog(m->agent, "migration=%s import failed: %s", m->id,
                     why ? why->message : "");
        if (cocoMigrationSessionFail(m->session, why, &err) < 0)
            cocoAgentLog(m->agent, "migration=%s local-failure: %s", m->id,
                         err->message);
    }
    if (did && m->poll_src) {
        cocoAgentMigrationAfter(m);
        return m->poll_src ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/* A phase message from the peer agent, or the end of the connection. */
static void
cocoAgentMigrationOnMessage(CocoAgentPeerConn *conn,
                            const CocoPhaseMessage *msg, const GError *error,
                            gpointer opaque)
{
    CocoAgentMigration *m = opaque;
    g_autoptr(GError) err = NULL;

    if (!msg) {
        cocoAgentLog(m->agent, "migration=%s peer connection closed%s%s", m->id,
                     error ? ": " : "", error ? error->message : "");
        /* The session may still send (best effort) while it handles the
         * loss: keep the object, but mark it unusable. */
        cocoAgentPeerConnClose(conn);
        if (!m->session)
            return;
        if (cocoMigrationSessionHandleEvent(
                m->session, COCO_PHASE_EVENT_PEER_LOST, &err) < 0)
            cocoAgentLog(m->agent, "migration=%s peer-lost: %s", m->id,
                         err->message);
        cocoAgentMigrationAfter(m);
        return;
    }
    if (!m->session)
        return;
    if (cocoMigrationSessionReceive(m->session, msg, &err) < 0)
        cocoAgentLog(m->agent, "migration=%s message=%s failed: %s", m->id,
                     cocoPhaseEventTypeToString(msg->type), err->message);
    cocoAgentMigrationAfter(m);
}

static int
cocoAgentMigrationNewSession(CocoAgentMigration *m, CocoPhaseData *data,
                             GError **error)
{
    CocoMigrationSessionConfig sc = {0};

    sc.role = m->role;
    sc.fw = m->fw;
    sc.nvcpus = m->nvcpus;
    sc.precopy_rounds = m->agent->cfg.precopy_rounds;
    sc.data = data;
    sc.send = cocoAgentMigrationSend;
    sc.send_opaque = m;
    sc.decide = cocoAgentMigrationDecide;
    sc.decide_opaque = m;
    if (!(m->session = cocoMigrationSessionNew(&sc, error))) {
        cocoPhaseDataFree(data);
        return -1;
    }
    return 0;
}

/* A precopy round ended on its thread: report the epoch to the relay;
 * when it failed (a broken stream, a firmware refusal) the session aborts
 * now and says why. */
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
    cocoAgentLog(m->agent, "migration=%s precopy round failed: %s", m->id,
                 why->message);
    if (cocoMigrationSessionFail(m->session, why, &err) < 0)
        cocoAgentLog(m->agent, "migration=%s local-failure: %s", m->id,
                     err->message);
    cocoAgentMigrationAfter(m);
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
cocoAgentTransferConfig(CocoAgentMigration *m, CocoTransferConfig *tc)
{
    cocoTransferConfigInit(tc, m->def);
    tc->streams = m->streams;
    tc->pages_per_bundle = m->pages_per_bundle;
    tc->session_id = m->session_id;
    tc->npages = m->npages;
}

/* Source: `migrate` was seen: connect to the peer agent and start. */
static int
cocoAgentSourceStart(CocoAgentMigration *m, const char *peer, GError **error)
{
    CocoAgent *agent = m->agent;
    g_autofree GIOStream **streams = NULL;
    g_autofree char *host = NULL;
    CocoTransferConfig tc;
    CocoTransferSource *xsrc;
    CocoPhaseData *data;
    unsigned int port;
    unsigned int vcpus = 0;
    unsigned int i;
    int ret = -1;

    if (cocoAgentMigrationLoadDomain(m, &vcpus, error) < 0)
        return -1;
    m->streams = agent->cfg.streams;
    m->pages_per_bundle = agent->cfg.pages_per_bundle;
    if (m->def && m->def->has_streams && m->def->forward_streams)
        m->streams = m->def->forward_streams;
    if (m->def && m->def->has_streams && m->def->pages_per_bundle)
        m->pages_per_bundle = m->def->pages_per_bundle;
    m->nvcpus = m->dom->vcpus ? m->dom->vcpus
                : vcpus       ? vcpus
                              : agent->cfg.vcpus;
    if (!peer)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG, "%s",
            _("the relay did not report the destination's address (the migration connection has no peer)"));
    if (cocoAgentPeerParseHost(peer, &host, error) < 0)
        return -1;
    port = agent->cfg.peer_port ? agent->cfg.peer_port : agent->port;
    m->peer = g_strdup_printf("%s:%u", host, port);
    if (cocoAgentMigrationOpenRam(m, error) < 0 ||
        cocoAgentMigrationNewFirmware(m, error) < 0)
        return -1;
    m->map = mmap(NULL, m->size, PROT_READ, MAP_SHARED, m->ram_fd, 0);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        return cocoErrorSetSystem(error, errno,
                                  _("cannot map the guest RAM file '%1$s'"),
                                  m->dom->ram_path);
    }
    m->dirty = cocoDirtyHashNew(
        m->map, m->npages, g_random_int() ^ ((uint64_t)g_random_int() << 32));

    streams = g_new0(GIOStream *, m->streams);
    if (!(m->ctl = cocoAgentPeerConnect(host, port, agent->ctx,
                                        agent->cfg.peer_timeout, error)))
        goto cleanup;
    {
        CocoAgentPeerHello hello = {0};

        hello.kind = COCO_AGENT_PEER_CONTROL;
        hello.session_id = m->session_id;
        hello.streams = m->streams;
        hello.name = m->name;
        hello.uuid = m->uuid;
        hello.nvcpus = m->nvcpus;
        hello.npages = m->npages;
        hello.pages_per_bundle = m->pages_per_bundle;
        if (cocoAgentPeerConnSendHello(m->ctl, &hello, error) < 0)
            goto cleanup;
    }
    for (i = 0; i < m->streams; i++) {
        CocoAgentPeerHello hello = {0};

        hello.kind = COCO_AGENT_PEER_STREAM;
        hello.session_id = m->session_id;
        hello.streams = m->streams;
        hello.index = i;
        if (!(streams[i] = cocoAgentPeerConnectStream(
                  host, port, agent->cfg.peer_timeout, &hello, error)))
            goto cleanup;
    }
    cocoAgentTransferConfig(m, &tc);
    if (!(xsrc = cocoTransferSourceNew(m->fw, m->dirty, &tc, streams, error)))
        goto cleanup;
    cocoTransferSourceSetDirtyHook(xsrc, cocoAgentEmuDirty, m->fw);
    cocoTransferSourceSetFirmwareDirty(xsrc, cocoAgentEmuGetDirty, m->fw);
    data = cocoPhaseDataNewTransferSource(xsrc);
    /* Precopy rounds on a thread of their own: the loop keeps serving the
     * relays (progress), the D-Bus API and a cancel meanwhile. */
    cocoPhaseDataSetAsyncRounds(data, agent->ctx, cocoAgentMigrationOnRoundEnd,
                                m);
    if (cocoAgentMigrationNewSession(m, data, error) < 0)
        goto cleanup;
    m->xsrc = xsrc;
    cocoAgentPeerConnStart(m->ctl, cocoAgentMigrationOnMessage, m);
    ret = 0;

cleanup:
    for (i = 0; streams && i < m->streams; i++) {
        if (streams[i])
            g_object_unref(streams[i]);
    }
    return ret;
}

/* ---- destination: the peer agent's connections ------------------------- */

typedef struct {
    CocoAgent *agent;
    uint64_t session_id;
    unsigned int nstreams;
    char *name;
    char *uuid;
    unsigned int nvcpus;
    uint64_t npages;
    unsigned int pages_per_bundle;
    CocoAgentPeerConn *ctl;
    GIOStream **streams;
    unsigned int got;
    GSource *timeout;
} CocoAgentPending;

static void
cocoAgentPendingFree(gpointer p)
{
    CocoAgentPending *pd = p;
    unsigned int i;

    if (pd->timeout) {
        g_source_destroy(pd->timeout);
        g_source_unref(pd->timeout);
    }
    if (pd->ctl)
        cocoAgentPeerConnFree(pd->ctl);
    for (i = 0; pd->streams && i < pd->nstreams; i++) {
        if (pd->streams[i])
            g_object_unref(pd->streams[i]);
    }
    g_free(pd->streams);
    g_free(pd->name);
    g_free(pd->uuid);
    g_free(pd);
}

static CocoAgentDomain *
cocoAgentFindIncoming(CocoAgent *agent, const char *uuid, const char *name)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, agent->domains);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoAgentDomain *dom = v;

        if (!dom->incoming)
            continue;
        if (uuid && *uuid ? STREQ_NULLABLE(dom->uuid, uuid)
                          : STREQ_NULLABLE(dom->name, name))
            return dom;
    }
    return NULL;
}

static int
cocoAgentDestinationStart(CocoAgent *agent, CocoAgentPending *pd,
                          CocoAgentDomain *dom, GError **error)
{
    CocoAgentMigration *m;
    CocoTransferConfig tc;
    CocoTransferDest *xdst;
    CocoPhaseData *data;
    unsigned int vcpus = 0;
    GError *err = NULL;

    if (dom->mig) {
        cocoAgentMigrationFree(dom->mig);
        dom->mig = NULL;
    }
    m = cocoAgentMigrationNew(agent, dom, COCO_FIRMWARE_ROLE_DESTINATION,
                              pd->session_id);
    dom->mig = m;
    dom->incoming = false;
    m->streams = pd->nstreams;
    m->nvcpus = pd->nvcpus;
    m->pages_per_bundle = pd->pages_per_bundle;
    m->peer = g_strdup(cocoAgentPeerConnGetAddress(pd->ctl));
    m->ctl = g_steal_pointer(&pd->ctl);
    if (cocoAgentMigrationLoadDomain(m, &vcpus, &err) < 0 ||
        cocoAgentMigrationOpenRam(m, &err) < 0)
        goto error;
    if (m->npages != pd->npages) {
        cocoErrorSet(
            &err, COCO_ERROR_INVALID_ARG,
            _("the source's guest has '%1$llu' pages, the destination's RAM file '%2$s' '%3$llu'"),
            (unsigned long long)pd->npages, dom->ram_path,
            (unsigned long long)m->npages);
        goto error;
    }
    if (cocoAgentMigrationNewFirmware(m, &err) < 0)
        goto error;
    cocoAgentTransferConfig(m, &tc);
    if (!(xdst = cocoTransferDestNew(m->fw, &tc, pd->streams, &err)))
        goto error;
    data = cocoPhaseDataNewTransferDest(xdst);
    if (cocoAgentMigrationNewSession(m, data, &err) < 0)
        goto error;
    m->xdst = xdst;
    if (cocoTransferDestStart(xdst, &err) < 0)
        goto error;
    m->poll_src = g_timeout_source_new(COCO_AGENT_POLL_MS);
    g_source_set_callback(m->poll_src, cocoAgentMigrationPoll, m, NULL);
    g_source_attach(m->poll_src, agent->ctx);
    cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_INCOMING);
    cocoAgentPeerConnStart(m->ctl, cocoAgentMigrationOnMessage, m);
    return 0;

error:
    m->start_error = g_strdup(err->message);
    cocoAgentLog(agent, "migration=%s cannot start: %s", m->id, err->message);
    cocoAgentMigrationSave(m);
    g_propagate_error(error, err);
    return -1;
}

/* A pending incoming migration may be complete now. */
static void
cocoAgentPendingTry(CocoAgent *agent, CocoAgentPending *pd)
{
    g_autoptr(GError) err = NULL;
    CocoAgentDomain *dom;

    if (!pd->ctl || pd->got < pd->nstreams)
        return;
    if (!(dom = cocoAgentFindIncoming(agent, pd->uuid, pd->name)))
        return; /* wait for the relay's migrate-incoming */
    g_hash_table_steal(agent->pending, &pd->session_id);
    cocoAgentDestinationStart(agent, pd, dom, &err);
    cocoAgentPendingFree(pd);
}

static gboolean
cocoAgentPendingTimeout(gpointer opaque)
{
    CocoAgentPending *pd = opaque;

    cocoAgentLog(
        pd->agent,
        "incoming session %016" G_GINT64_MODIFIER
        "x for domain '%s' refused: no relay announced an incoming migration for it",
        (guint64)pd->session_id, NULLSTR(pd->name));
    g_source_unref(pd->timeout);
    pd->timeout = NULL;
    g_hash_table_remove(pd->agent->pending, &pd->session_id);
    return G_SOURCE_REMOVE;
}

static void
cocoAgentOnPeerHello(CocoAgent *agent, CocoAgentPeerConn *conn,
                     GIOStream *stream, const CocoAgentPeerHello *hello)
{
    CocoAgentPending *pd =
        g_hash_table_lookup(agent->pending, &hello->session_id);

    if (!pd) {
        pd = g_new0(CocoAgentPending, 1);
        pd->agent = agent;
        pd->session_id = hello->session_id;
        pd->nstreams = hello->streams;
        pd->streams = g_new0(GIOStream *, pd->nstreams);
        pd->timeout = g_timeout_source_new_seconds(agent->cfg.peer_timeout);
        g_source_set_callback(pd->timeout, cocoAgentPendingTimeout, pd, NULL);
        g_source_attach(pd->timeout, agent->ctx);
        g_hash_table_insert(agent->pending, &pd->session_id, pd);
    }
    if (hello->streams != pd->nstreams) {
        cocoAgentLog(agent, "peer hello: stream count mismatch");
        if (conn)
            cocoAgentPeerConnFree(conn);
        if (stream)
            g_object_unref(stream);
        return;
    }
    if (conn) {
        if (pd->ctl) {
            cocoAgentPeerConnFree(conn);
            return;
        }
        pd->ctl = conn;
        pd->name = g_strdup(hello->name);
        pd->uuid = g_strdup(hello->uuid);
        pd->nvcpus = hello->nvcpus;
        pd->npages = hello->npages;
        pd->pages_per_bundle = hello->pages_per_bundle;
    } else {
        if (hello->index >= pd->nstreams || pd->streams[hello->index]) {
            g_object_unref(stream);
            return;
        }
        pd->streams[hello->index] = stream;
        pd->got++;
    }
    cocoAgentPendingTry(agent, pd);
}

/* Who this agent is: the answer to "probe", locally and from peers. */
static JsonObject *
cocoAgentProbeObject(CocoAgent *agent)
{
    JsonObject *obj = json_object_new();
    JsonObject *pf = json_object_new();
    JsonObject *tcb = json_object_new();
    g_autofree char *id =
        cocoHexEncode(cocoEmuPlatformGetId(agent->pf), COCO_PLATFORM_ID_LEN);
    size_t c;

    for (c = 0; c < COCO_TCB_COMPONENT_LAST; c++)
        json_object_set_int_member(tcb, cocoTcbComponentTypeToString(c),
                                   cocoEmuPlatformGetSvn(agent->pf, c));
    json_object_set_string_member(pf, "id", id);
    json_object_set_string_member(pf, "name", g_get_host_name());
    json_object_set_object_member(pf, "tcb", tcb);
    json_object_set_string_member(obj, "type", "probe");
    json_object_set_string_member(obj, "version", PACKAGE_VERSION);
    json_object_set_string_member(obj, "firmware", agent->cfg.firmware);
    json_object_set_object_member(obj, "platform", pf);
    json_object_set_int_member(obj, "port", agent->port);
    json_object_set_int_member(obj, "peer_port",
                               agent->cfg.peer_port ? agent->cfg.peer_port
                                                    : agent->port);
    return obj;
}

static gboolean
cocoAgentOnTcpAccept(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoAgent *agent = opaque;
    g_autoptr(GError) err = NULL;
    CocoAgentPeerHello hello = {0};
    CocoAgentPeerConn *conn = NULL;
    GIOStream *stream = NULL;
    int cfd;

    cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0)
        return G_SOURCE_CONTINUE;
    if (cocoAgentPeerAccept(cfd, agent->ctx, &hello, &conn, &stream, &err) <
        0) {
        cocoAgentLog(agent, "peer connection refused: %s", err->message);
        return G_SOURCE_CONTINUE;
    }
    if (hello.kind == COCO_AGENT_PEER_PROBE) {
        g_autoptr(JsonObject) probe = cocoAgentProbeObject(agent);

        if (cocoAgentPeerConnSendFrame(conn, probe, &err) < 0)
            cocoAgentLog(agent, "probe from '%s' not answered: %s",
                         cocoAgentPeerConnGetAddress(conn), err->message);
        cocoAgentPeerConnFree(conn);
        cocoAgentPeerHelloClear(&hello);
        return G_SOURCE_CONTINUE;
    }
    cocoAgentOnPeerHello(agent, conn, stream, &hello);
    cocoAgentPeerHelloClear(&hello);
    return G_SOURCE_CONTINUE;
}

/* ---- domains and relays ------------------------------------------------ */

static void
cocoAgentDomainFree(gpointer p)
{
    CocoAgentDomain *dom = p;
    GList *l;

    for (l = dom->agent->relays; l; l = l->next) {
        CocoAgentRelay *r = l->data;

        if (r->dom == dom)
            r->dom = NULL;
    }
    cocoAgentMigrationFree(dom->mig);
    if (dom->pid_src) {
        g_source_destroy(dom->pid_src);
        g_source_unref(dom->pid_src);
    }
    if (dom->pidfd >= 0)
        close(dom->pidfd);
    g_free(dom->name);
    g_free(dom->uuid);
    g_free(dom->ram_path);
    g_free(dom->ram_error);
    g_free(dom->vfio_leak);
    g_free(dom);
}

/* QEMU ended: the sessions of this domain end too. */
static gboolean
cocoAgentOnQemuGone(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoAgentDomain *dom = opaque;
    CocoAgent *agent = dom->agent;
    pid_t pid = dom->pid;

    cocoAgentLog(agent, "domain=%s pid=%d: QEMU ended", dom->name, (int)pid);
    if (dom->mig && dom->mig->session)
        cocoAgentMigrationEvent(dom->mig, COCO_PHASE_EVENT_QEMU_GONE);
    g_source_unref(dom->pid_src);
    dom->pid_src = NULL;
    g_hash_table_remove(agent->domains, GINT_TO_POINTER(pid));
    return G_SOURCE_REMOVE;
}

static CocoAgentDomain *
cocoAgentDomainGet(CocoAgent *agent, pid_t pid, GError **error)
{
    CocoAgentDomain *dom =
        g_hash_table_lookup(agent->domains, GINT_TO_POINTER(pid));

    if (dom)
        return dom;
    dom = g_new0(CocoAgentDomain, 1);
    dom->agent = agent;
    dom->pid = pid;
    dom->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (dom->pidfd < 0) {
        cocoErrorSetSystem(error, errno, _("cannot watch QEMU pid '%1$d'"),
                           (int)pid);
        g_free(dom);
        return NULL;
    }
    dom->pid_src = g_unix_fd_source_new(dom->pidfd, G_IO_IN);
    g_source_set_callback(dom->pid_src,
                          (GSourceFunc)(void (*)(void))cocoAgentOnQemuGone, dom,
                          NULL);
    g_source_attach(dom->pid_src, agent->ctx);
    g_hash_table_insert(agent->domains, GINT_TO_POINTER(pid), dom);
    return dom;
}

static void
cocoAgentRelaySend(CocoAgentRelay *relay, JsonObject *obj)
{
    g_autofree char *line = cocoQmpBuildObjectLine(obj);

    cocoQmpChannelSend(relay->ch, line, strlen(line), NULL, 0);
}

static void
cocoAgentRelayRefuse(CocoAgentRelay *relay, const char *reason)
{
    JsonObject *obj = json_object_new();

    cocoAgentLog(relay->agent, "relay pid=%d refused: %s", (int)relay->peer_pid,
                 reason);
    json_object_set_string_member(obj, "type", "refused");
    json_object_set_string_member(obj, "reason", reason);
    cocoAgentRelaySend(relay, obj);
    cocoQmpChannelClose(relay->ch);
    cocoAgentRelayDrop(relay);
}

static void
cocoAgentRelayHello(CocoAgentRelay *relay, JsonObject *msg)
{
    CocoAgent *agent = relay->agent;
    g_autoptr(GError) err = NULL;
    const char *name =
        json_object_get_string_member_with_default(msg, "name", NULL);
    const char *uuid =
        json_object_get_string_member_with_default(msg, "uuid", NULL);
    gint64 pid = json_object_get_int_member_with_default(msg, "pid", -1);
    JsonArray *ram = NULL;
    g_autofree char *ram_path = NULL;
    g_autofree char *ram_error = NULL;
    CocoAgentDomain *dom;
    JsonObject *welcome;

    if (relay->dom) {
        cocoAgentRelayRefuse(relay, _("a second hello on one connection"));
        return;
    }
    if (pid <= 1 || pid > G_MAXINT) {
        cocoAgentRelayRefuse(relay, _("the hello carries no valid QEMU pid"));
        return;
    }
    if (cocoAgentAuthCheck(&agent->cfg, relay->peer_pid, relay->peer_uid,
                           (pid_t)pid, name, uuid, &err) < 0) {
        cocoAgentRelayRefuse(relay, err->message);
        return;
    }
    if (json_object_has_member(msg, "ram"))
        ram = json_object_get_array_member(msg, "ram");
    if (ram && json_array_get_length(ram) == 1) {
        JsonObject *r = json_array_get_object_element(ram, 0);
        const char *path =
            r ? json_object_get_string_member_with_default(r, "path", NULL)
              : NULL;

        if (!path) {
            ram_error = g_strdup(_("the hello's RAM entry has no path"));
        } else if (cocoAgentAuthCheckOpenFile((pid_t)pid, path, &err) < 0) {
            cocoAgentRelayRefuse(relay, err->message);
            return;
        } else {
            ram_path = g_strdup(path);
        }
    } else if (ram && json_array_get_length(ram) > 1) {
        ram_error = g_strdup_printf(
            _("domain '%1$s' has '%2$u' memory-backend-file objects; confidential migration supports exactly one"),
            name, json_array_get_length(ram));
    }
    if (!(dom = cocoAgentDomainGet(agent, (pid_t)pid, &err))) {
        cocoAgentRelayRefuse(relay, err->message);
        return;
    }
    g_free(dom->name);
    dom->name = g_strdup(name);
    g_free(dom->uuid);
    dom->uuid = g_strdup(uuid);
    g_free(dom->ram_path);
    dom->ram_path = g_steal_pointer(&ram_path);
    g_free(dom->ram_error);
    dom->ram_error = g_steal_pointer(&ram_error);
    dom->vcpus =
        (unsigned int)json_object_get_int_member_with_default(msg, "vcpus", 0);
    relay->dom = dom;
    cocoAgentLog(agent, "relay pid=%d: domain=%s qemu=%d ram=%s",
                 (int)relay->peer_pid, dom->name, (int)dom->pid,
                 NULLSTR(dom->ram_path));
    welcome = json_object_new();
    json_object_set_string_member(welcome, "type", "welcome");
    json_object_set_int_member(welcome, "version", 1);
    cocoAgentRelaySend(relay, welcome);
}

/* The VFIO interposer's leak, as the relay forwards it: the event's
 * "reason", or the "vfio-leak" the relay repeats with each migration. It
 * stays recorded for the domain (one line, capped). Returns whether the
 * domain has leaked. */
static bool
cocoAgentRelayVfioLeak(CocoAgentDomain *dom, JsonObject *data)
{
    const char *reason = NULL;

    if (data)
        reason = json_object_get_string_member_with_default(
            data,
            json_object_has_member(data, "reason") ? "reason" : "vfio-leak",
            NULL);
    if (reason && *reason) {
        g_free(dom->vfio_leak);
        dom->vfio_leak = g_strndup(reason, 1024);
        g_strdelimit(dom->vfio_leak, "\r\n", ' ');
    }
    return dom->vfio_leak != NULL;
}

static void
cocoAgentRelayEvent(CocoAgentRelay *relay, JsonObject *msg)
{
    CocoAgent *agent = relay->agent;
    CocoAgentDomain *dom = relay->dom;
    const char *event =
        json_object_get_string_member_with_default(msg, "event", "");
    JsonObject *data = json_object_has_member(msg, "data")
                           ? json_object_get_object_member(msg, "data")
                           : NULL;
    const char *role =
        data ? json_object_get_string_member_with_default(data, "role", "")
             : "";
    const char *job =
        data ? json_object_get_string_member_with_default(data, "job", "") : "";

    cocoAgentLog(agent, "domain=%s relay event=%s role=%s job=%s", dom->name,
                 event, role, job);
    if (STREQ(event, "migrate-incoming")) {
        if (STRNEQ(job, "migration"))
            return;
        dom->incoming = true;
        {
            g_autoptr(GList) pds = g_hash_table_get_values(agent->pending);
            GList *l;

            for (l = pds; l; l = l->next)
                cocoAgentPendingTry(agent, l->data);
        }
        return;
    }
    if (STREQ(event, "migrate")) {
        g_autoptr(GError) err = NULL;
        CocoAgentMigration *m;
        uint64_t sid;

        if (STRNEQ(job, "migration") || STRNEQ(role, "source"))
            return;
        if (dom->mig && !cocoAgentMigrationOver(dom->mig)) {
            cocoAgentLog(agent, "domain=%s: a migration is already running",
                         dom->name);
            return;
        }
        cocoAgentMigrationFree(dom->mig);
        sid = ((uint64_t)g_random_int() << 32) | g_random_int();
        m = cocoAgentMigrationNew(agent, dom, COCO_FIRMWARE_ROLE_SOURCE, sid);
        dom->mig = m;
        if (cocoAgentRelayVfioLeak(dom, data)) {
            /* docs/vfio.rst: a leak fails the domain's migrations. */
            m->start_error = g_strdup_printf(
                _("domain '%1$s' leaked DMA mappings of a VFIO host device, its pages stay pinned on this host: %2$s"),
                dom->name, dom->vfio_leak);
            cocoAgentLog(agent, "migration=%s cannot start: %s", m->id,
                         m->start_error);
            cocoAgentMigrationSave(m);
            return;
        }
        if (cocoAgentSourceStart(
                m,
                json_object_get_string_member_with_default(data, "peer", NULL),
                &err) < 0) {
            m->start_error = g_strdup(err->message);
            cocoAgentLog(agent, "migration=%s cannot start: %s", m->id,
                         err->message);
            cocoAgentMigrationSave(m);
            return;
        }
        cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_MIGRATE);
        return;
    }
    if (STREQ(event, "vfio-leak")) {
        if (!cocoAgentRelayVfioLeak(dom, data))
            dom->vfio_leak = g_strdup(_(
                "the VFIO interposer reported DMA mappings it could not unmap"));
        cocoAgentLog(agent, "domain=%s: VFIO leak: %s", dom->name,
                     NULLSTR(dom->vfio_leak));
        return;
    }
    if (STREQ(event, "migrate-cancel")) {
        /* libvirt cancelled while the relay holds QEMU's `migrate`: the
         * phase engine aborts (failure path 1, both sides; the source
         * keeps running) and the `migrate` gate is refused. */
        CocoAgentMigration *m = dom->mig;
        CocoAgentHeld *h;

        if (!m || m->role != COCO_FIRMWARE_ROLE_SOURCE)
            return;
        if (m->session && !cocoAgentMigrationOver(m))
            cocoAgentMigrationEvent(m, COCO_PHASE_EVENT_CANCEL);
        h = &m->held[COCO_PHASE_GATE_MIGRATE];
        if (h->relay) {
            cocoAgentVerdict(h->relay, h->id, false,
                             _("the migration was cancelled"));
            h->relay = NULL;
        }
        return;
    }
    if (STREQ(event, "MIGRATION") && dom->mig && dom->mig->session) {
        const char *status =
            data
                ? json_object_get_string_member_with_default(data, "status", "")
                : "";

        if (STREQ(status, "failed"))
            cocoAgentMigrationEvent(dom->mig,
                                    COCO_PHASE_EVENT_MIGRATION_FAILED);
        else if (STREQ(status, "cancelled"))
            cocoAgentMigrationEvent(dom->mig, COCO_PHASE_EVENT_CANCEL);
    }
}

static void
cocoAgentRelayGate(CocoAgentRelay *relay, JsonObject *msg)
{
    CocoAgentDomain *dom = relay->dom;
    CocoAgentMigration *m = dom->mig;
    const char *gate =
        json_object_get_string_member_with_default(msg, "gate", "");
    gint64 id = json_object_get_int_member_with_default(msg, "id", -1);
    CocoPhaseGate pg;
    CocoPhaseEvent ev;

    if (STREQ(gate, "hostdev")) {
        /* A VFIO device hot-plugged behind a wide vIOMMU (the relay only
         * asks for those): the host's kernel and the domain's policy. */
        g_autoptr(GError) err = NULL;
        const char *devroot = g_getenv("LIBVIRT_COCO_AGENT_DEVROOT");
        bool ok = cocoAgentVfioCheckHotplug(
                      relay->agent->cfg.pid_dir, dom->name,
                      devroot && *devroot ? devroot : "/dev", &err) == 0;

        cocoAgentLog(relay->agent, "domain=%s gate=hostdev: %s", dom->name,
                     ok ? "released" : err->message);
        cocoAgentVerdict(relay, id, ok, ok ? NULL : err->message);
        return;
    }
    if (STREQ(gate, "pre-switchover")) {
        pg = COCO_PHASE_GATE_MIGRATE_CONTINUE;
        ev = COCO_PHASE_EVENT_PRE_SWITCHOVER;
    } else if (STREQ(gate, "cont")) {
        pg = COCO_PHASE_GATE_CONT;
        ev = COCO_PHASE_EVENT_CONT;
    } else if (STREQ(gate, "migrate")) {
        pg = COCO_PHASE_GATE_MIGRATE;
        ev = COCO_PHASE_EVENT_LAST;
    } else {
        g_autofree char *reason = g_strdup_printf(
            _("the host agent does not know the gate '%1$s'"), gate);

        cocoAgentVerdict(relay, id, false, reason);
        return;
    }
    cocoAgentLog(relay->agent, "domain=%s gate=%s id=%" G_GINT64_FORMAT,
                 dom->name, gate, id);

    if (!m || (!m->session && !m->start_error)) {
        if (pg == COCO_PHASE_GATE_CONT && !dom->incoming) {
            cocoAgentVerdict(relay, id, true, NULL); /* nothing migrates */
        } else {
            g_autofree char *reason = g_strdup_printf(
                _("no confidential migration of domain '%1$s' is in progress on this host; its guest memory did not move"),
                dom->name);

            cocoAgentVerdict(relay, id, false, reason);
        }
        return;
    }
    if (!m->session) {
        g_autofree char *reason = g_strdup_printf(
            _("the confidential migration could not start: %1$s"),
            m->start_error);

        /* The source never left its VM: let it resume. */
        cocoAgentVerdict(relay, id,
                         pg == COCO_PHASE_GATE_CONT &&
                             m->role == COCO_FIRMWARE_ROLE_SOURCE,
                         reason);
        return;
    }
    if (m->held[pg].relay)
        cocoAgentVerdict(m->held[pg].relay, m->held[pg].id, false,
                         _("superseded by a newer request for the same gate"));
    m->held[pg].relay = relay;
    m->held[pg].id = id;
    if (pg == COCO_PHASE_GATE_MIGRATE) {
        /* `migrate` is held (a relay that supports it): the session
         * releases it once SETUP and the configured precopy rounds ran. */
        CocoPhaseState st = cocoMigrationSessionGetState(m->session);
        const GError *failure = cocoMigrationSessionGetFailure(m->session);

        if (m->role == COCO_FIRMWARE_ROLE_SOURCE && !cocoAgentMigrationOver(m))
            cocoAgentMigrationStartProgress(m, relay, id);

        if (cocoMigrationSessionGateHeld(m->session, pg) ||
            st == COCO_PHASE_STATE_IDLE || st == COCO_PHASE_STATE_PREPARING ||
            st == COCO_PHASE_STATE_SETUP)
            return;
        m->held[pg].relay = NULL;
        if (st == COCO_PHASE_STATE_ABORTED || st == COCO_PHASE_STATE_FROZEN) {
            g_autofree char *reason =
                g_strdup_printf(_("confidential migration aborted: %1$s"),
                                failure ? failure->message : "");

            cocoAgentVerdict(relay, id, false, reason);
            return;
        }
        cocoAgentVerdict(relay, id, true, NULL);
        return;
    }
    if (ev == COCO_PHASE_EVENT_PRE_SWITCHOVER) {
        m->pending_switchover = true;
        cocoAgentMigrationAfter(m);
        return;
    }
    cocoAgentMigrationEvent(m, ev);
}

static void
cocoAgentRelayStatus(CocoAgentRelay *relay)
{
    JsonObject *obj = json_object_new();

    json_object_set_string_member(obj, "type", "status");
    json_object_set_array_member(obj, "migrations",
                                 cocoAgentGetStatus(relay->agent));
    cocoAgentRelaySend(relay, obj);
}

/* Root, the agent's own user and the members of 'status_group' only. */
static void
cocoAgentRelayStatusRequest(CocoAgentRelay *relay)
{
    CocoAgent *agent = relay->agent;
    g_autoptr(GError) err = NULL;
    bool missing = false;

    if (cocoAgentAuthCheckStatus(relay->peer_uid, relay->peer_gid, getuid(),
                                 agent->cfg.status_group, &missing, &err) < 0) {
        if (missing && !agent->status_group_missing) {
            agent->status_group_missing = true;
            cocoAgentLog(agent,
                         "virtcocod: status_group '%s' does not exist: only "
                         "root may read the migration status",
                         agent->cfg.status_group);
        }
        cocoAgentRelayRefuse(relay, err->message);
        return;
    }
    cocoAgentRelayStatus(relay);
}

static void
cocoAgentRelayOnLine(CocoQmpChannel *ch, CocoQmpLine *line, gpointer opaque)
{
    CocoAgentRelay *relay = opaque;
    g_autoptr(CocoQmpLine) l = line;
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonNode *root;
    JsonObject *msg;
    const char *type;

    if (!json_parser_load_from_data(parser, l->data, (gssize)l->len, NULL) ||
        !(root = json_parser_get_root(parser)) || !JSON_NODE_HOLDS_OBJECT(root))
        return;
    msg = json_node_get_object(root);
    type = json_object_get_string_member_with_default(msg, "type", "");
    if (STREQ(type, "probe")) {
        /* Public facts (identity, TCB, ports): anyone may ask. */
        cocoAgentRelaySend(relay, cocoAgentProbeObject(relay->agent));
        return;
    }
    if (STREQ(type, "status")) {
        cocoAgentRelayStatusRequest(relay);
        return;
    }
    if (STREQ(type, "hello")) {
        cocoAgentRelayHello(relay, msg);
        return;
    }
    if (!relay->dom) {
        if (STREQ(type, "gate"))
            cocoAgentVerdict(
                relay, json_object_get_int_member_with_default(msg, "id", -1),
                false, _("the relay has not identified its QEMU"));
        return;
    }
    if (STREQ(type, "event"))
        cocoAgentRelayEvent(relay, msg);
    else if (STREQ(type, "gate"))
        cocoAgentRelayGate(relay, msg);
}

static void
cocoAgentRelayFree(CocoAgentRelay *relay)
{
    g_clear_pointer(&relay->ch, cocoQmpChannelUnref);
    g_free(relay);
}

/* Forget every gate this relay holds. */
static void
cocoAgentRelayForget(CocoAgent *agent, CocoAgentRelay *relay)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, agent->domains);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoAgentDomain *dom = v;
        size_t g;

        if (!dom->mig)
            continue;
        for (g = 0; g < COCO_PHASE_GATE_LAST; g++) {
            if (dom->mig->held[g].relay == relay)
                dom->mig->held[g].relay = NULL;
        }
        if (dom->mig->progress.relay == relay) {
            dom->mig->progress.relay = NULL;
            cocoAgentMigrationStopProgress(dom->mig);
        }
    }
}

static gboolean
cocoAgentRelayReap(gpointer opaque)
{
    CocoAgent *agent = opaque;

    g_list_free_full(g_steal_pointer(&agent->dead),
                     (GDestroyNotify)cocoAgentRelayFree);
    g_clear_pointer(&agent->reap_src, g_source_unref);
    return G_SOURCE_REMOVE;
}

/* The relay's connection is closed: forget it (freed from an idle, as
 * the channel may be inside its own callback). */
static void
cocoAgentRelayDrop(CocoAgentRelay *relay)
{
    CocoAgent *agent = relay->agent;

    cocoAgentRelayForget(agent, relay);
    agent->relays = g_list_remove(agent->relays, relay);
    agent->dead = g_list_prepend(agent->dead, relay);
    if (!agent->reap_src) {
        agent->reap_src = g_idle_source_new();
        g_source_set_callback(agent->reap_src, cocoAgentRelayReap, agent, NULL);
        g_source_attach(agent->reap_src, agent->ctx);
    }
}

static void
cocoAgentRelayOnClosed(CocoQmpChannel *ch, const GError *error, gpointer opaque)
{
    cocoAgentRelayDrop(opaque);
}

static gboolean
cocoAgentOnUnixAccept(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoAgent *agent = opaque;
    CocoAgentRelay *relay;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int cfd;

    cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0)
        return G_SOURCE_CONTINUE;
    if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        close(cfd);
        return G_SOURCE_CONTINUE;
    }
    relay = g_new0(CocoAgentRelay, 1);
    relay->agent = agent;
    relay->peer_pid = cred.pid;
    relay->peer_uid = cred.uid;
    relay->peer_gid = cred.gid;
    agent->relays = g_list_prepend(agent->relays, relay);
    relay->ch =
        cocoQmpChannelNew(cfd, agent->ctx, "relay", cocoAgentRelayOnLine,
                          cocoAgentRelayOnClosed, relay);
    return G_SOURCE_CONTINUE;
}

/* ---- the agent --------------------------------------------------------- */

static int
cocoAgentListenUnix(CocoAgent *agent, GError **error)
{
    const char *path = agent->cfg.socket_path;
    g_autofree char *dir = g_path_get_dirname(path);
    struct sockaddr_un addr = {0};

    if (strlen(path) >= sizeof(addr.sun_path))
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("socket path '%1$s' is too long"), path);
    if (g_mkdir_with_parents(dir, 0755) < 0)
        return cocoErrorSetSystem(error, errno,
                                  _("cannot create directory '%1$s'"), dir);
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    agent->unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (agent->unix_fd < 0)
        return cocoErrorSetSystem(error, errno, "%s",
                                  _("cannot create the relay socket"));
    if (unlink(path) < 0 && errno != ENOENT)
        return cocoErrorSetSystem(error, errno, _("cannot remove '%1$s'"),
                                  path);
    if (bind(agent->unix_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        return cocoErrorSetSystem(error, errno, _("cannot bind '%1$s'"), path);
    /* Relays run with QEMU's dropped privileges. SO_PEERCRED and
     * cocoAgentAuthCheck() decide who may do what. */
    if (chmod(path, 0666) < 0)
        return cocoErrorSetSystem(error, errno, _("cannot chmod '%1$s'"), path);
    if (listen(agent->unix_fd, 64) < 0)
        return cocoErrorSetSystem(error, errno, _("cannot listen on '%1$s'"),
                                  path);
    agent->unix_src = g_unix_fd_source_new(agent->unix_fd, G_IO_IN);
    g_source_set_callback(agent->unix_src,
                          (GSourceFunc)(void (*)(void))cocoAgentOnUnixAccept,
                          agent, NULL);
    g_source_attach(agent->unix_src, agent->ctx);
    return 0;
}

static int
cocoAgentListenTcp(CocoAgent *agent, GError **error)
{
    if ((agent->tcp_fd =
             cocoAgentPeerListen(agent->cfg.listen_address, agent->cfg.port,
                                 &agent->port, error)) < 0)
        return -1;
    agent->tcp_src = g_unix_fd_source_new(agent->tcp_fd, G_IO_IN);
    g_source_set_callback(agent->tcp_src,
                          (GSourceFunc)(void (*)(void))cocoAgentOnTcpAccept,
                          agent, NULL);
    g_source_attach(agent->tcp_src, agent->ctx);
    return 0;
}

CocoAgent *
cocoAgentNew(const CocoAgentConfig *cfg, GMainContext *ctx, GError **error)
{
    g_autoptr(CocoAgent) agent = g_new0(CocoAgent, 1);

    agent->unix_fd = -1;
    agent->tcp_fd = -1;
    cocoAgentConfigCopy(&agent->cfg, cfg);
    agent->ctx =
        ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    agent->domains =
        g_hash_table_new_full(NULL, NULL, NULL, cocoAgentDomainFree);
    agent->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                           cocoAgentPendingFree);
    agent->records = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify)json_object_unref);
    g_queue_init(&agent->record_order);
    if (cocoAgentConfigValidate(&agent->cfg, error) < 0)
        return NULL;
    if (!(agent->pf =
              cocoEmuPlatformLoad(agent->cfg.platform_file, true, error)))
        return NULL;
    if (g_mkdir_with_parents(agent->cfg.state_dir, 0750) < 0) {
        cocoErrorSetSystem(error, errno, _("cannot create directory '%1$s'"),
                           agent->cfg.state_dir);
        return NULL;
    }
    if (cocoAgentListenUnix(agent, error) < 0 ||
        cocoAgentListenTcp(agent, error) < 0)
        return NULL;
    cocoAgentLog(agent, "virtcocod: relays on '%s', peers on port %u",
                 agent->cfg.socket_path, agent->port);
    return g_steal_pointer(&agent);
}

void
cocoAgentFree(CocoAgent *agent)
{
    if (!agent)
        return;
    if (agent->unix_src) {
        g_source_destroy(agent->unix_src);
        g_source_unref(agent->unix_src);
    }
    if (agent->tcp_src) {
        g_source_destroy(agent->tcp_src);
        g_source_unref(agent->tcp_src);
    }
    if (agent->unix_fd >= 0) {
        close(agent->unix_fd);
        unlink(agent->cfg.socket_path);
    }
    if (agent->tcp_fd >= 0)
        close(agent->tcp_fd);
    g_hash_table_unref(agent->pending);
    g_hash_table_unref(agent->domains);
    if (agent->reap_src) {
        g_source_destroy(agent->reap_src);
        g_clear_pointer(&agent->reap_src, g_source_unref);
    }
    g_list_free_full(g_steal_pointer(&agent->dead),
                     (GDestroyNotify)cocoAgentRelayFree);
    g_list_free_full(g_steal_pointer(&agent->relays),
                     (GDestroyNotify)cocoAgentRelayFree);
    g_hash_table_unref(agent->records);
    g_queue_clear_full(&agent->record_order, g_free);
    if (agent->pf)
        cocoEmuPlatformUnref(agent->pf);
    g_main_context_unref(agent->ctx);
    cocoAgentConfigClear(&agent->cfg);
    g_free(agent);
}

unsigned int
cocoAgentGetPort(CocoAgent *agent)
{
    return agent->port;
}

void
cocoAgentSetPeerPort(CocoAgent *agent, unsigned int port)
{
    agent->cfg.peer_port = port;
}

JsonArray *
cocoAgentGetStatus(CocoAgent *agent)
{
    JsonArray *arr = json_array_new();
    GList *l;

    /* Refresh the records of live migrations first. */
    {
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, agent->domains);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            CocoAgentDomain *dom = v;

            if (dom->mig)
                cocoAgentMigrationSave(dom->mig);
        }
    }
    for (l = agent->record_order.head; l; l = l->next) {
        JsonObject *rec = g_hash_table_lookup(agent->records, l->data);

        if (rec)
            json_array_add_object_element(arr, json_object_ref(rec));
    }
    return arr;
}

JsonObject *
cocoAgentGetProbe(CocoAgent *agent)
{
    return cocoAgentProbeObject(agent);
}

const CocoAgentConfig *
cocoAgentGetConfig(CocoAgent *agent)
{
    return &agent->cfg;
}

GHashTable *
cocoAgentGetRecordIds(CocoAgent *agent)
{
    GHashTable *ids =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GList *l;

    for (l = agent->record_order.head; l; l = l->next)
        g_hash_table_add(ids, g_strdup(l->data));
    return ids;
}

JsonObject *
cocoAgentFindRecord(CocoAgent *agent, const char *uuid, const char *role,
                    GHashTable *known)
{
    GHashTableIter it;
    gpointer v;
    GList *l;

    g_hash_table_iter_init(&it, agent->domains);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoAgentMigration *m = ((CocoAgentDomain *)v)->mig;

        if (m && m->uuid && g_ascii_strcasecmp(m->uuid, uuid) == 0 &&
            STREQ(cocoFirmwareRoleTypeToString(m->role), role) &&
            !g_hash_table_contains(known, m->id))
            return cocoAgentMigrationRecord(m);
    }
    for (l = agent->record_order.tail; l; l = l->prev) {
        JsonObject *rec = g_hash_table_lookup(agent->records, l->data);

        if (rec && !g_hash_table_contains(known, l->data) &&
            g_ascii_strcasecmp(
                json_object_get_string_member_with_default(rec, "uuid", ""),
                uuid) == 0 &&
            STREQ(json_object_get_string_member_with_default(rec, "role", ""),
                  role))
            return json_object_ref(rec);
    }
    return NULL;
}
