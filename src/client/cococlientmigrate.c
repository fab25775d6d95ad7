/*
 * cococlientmigrate.c: the one driver of a confidential migration through
 * libvirt
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "client/cococlientmigrate.h"
#include "client/cococlientagent.h"
#include "client/cococlienthostdev.h"
#include "client/cococlientjson.h"
#include "client/cococlientpreflight.h"
#include "client/cococlientvalidate.h"
#include "conf/cocomigrationdef.h"
#include "util/cocoerror.h"
#include "virt/cocovirt.h"

#include <errno.h>

#define COCO_CLIENT_MIGRATE_RECORD_MS 200
#define COCO_CLIENT_MIGRATE_STATS_MS 250
/* After libvirt returns, how long the source agent's record may take to
 * end (Confirm ends it when the source's QEMU exits). */
#define COCO_CLIENT_MIGRATE_SETTLE_US (5 * G_USEC_PER_SEC)
/* libvirt's completed job moved more than this share of the guest's
 * memory (1/N) in QEMU's own stream: the memory went through it. */
#define COCO_CLIENT_MIGRATE_STREAM_SHARE 8

COCO_ENUM_IMPL(cocoClientMigrateState, COCO_CLIENT_MIGRATE_LAST, "preflight",
               "running", "completed", "failed", "cancelled");

/* Why a mode is refused; one whole message each, naming virsh's option
 * and libvirt's flag or parameter. */
typedef enum {
    COCO_CLIENT_REFUSE_NONE = 0,
    COCO_CLIENT_REFUSE_TUNNELLED,
    COCO_CLIENT_REFUSE_OFFLINE,
    COCO_CLIENT_REFUSE_STORAGE,
    COCO_CLIENT_REFUSE_RDMA,
    COCO_CLIENT_REFUSE_POSTCOPY_RESUME,
} CocoClientRefusal;

typedef struct {
    unsigned int flag;
    const char *name; /* libvirt's */
    const char *option; /* virsh's */
    CocoClientRefusal refusal;
} CocoClientMigrateFlagDef;

static const CocoClientMigrateFlagDef cocoClientMigrateFlags[] = {
    {VIR_MIGRATE_LIVE, "VIR_MIGRATE_LIVE", "--live", COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PEER2PEER, "VIR_MIGRATE_PEER2PEER", "--p2p",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_TUNNELLED, "VIR_MIGRATE_TUNNELLED", "--tunnelled",
     COCO_CLIENT_REFUSE_TUNNELLED},
    {VIR_MIGRATE_PERSIST_DEST, "VIR_MIGRATE_PERSIST_DEST", "--persistent",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_UNDEFINE_SOURCE, "VIR_MIGRATE_UNDEFINE_SOURCE",
     "--undefinesource", COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PAUSED, "VIR_MIGRATE_PAUSED", "--suspend",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_NON_SHARED_DISK, "VIR_MIGRATE_NON_SHARED_DISK",
     "--copy-storage-all", COCO_CLIENT_REFUSE_STORAGE},
    {VIR_MIGRATE_NON_SHARED_INC, "VIR_MIGRATE_NON_SHARED_INC",
     "--copy-storage-inc", COCO_CLIENT_REFUSE_STORAGE},
    {VIR_MIGRATE_CHANGE_PROTECTION, "VIR_MIGRATE_CHANGE_PROTECTION",
     "--change-protection", COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_UNSAFE, "VIR_MIGRATE_UNSAFE", "--unsafe",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_OFFLINE, "VIR_MIGRATE_OFFLINE", "--offline",
     COCO_CLIENT_REFUSE_OFFLINE},
    {VIR_MIGRATE_COMPRESSED, "VIR_MIGRATE_COMPRESSED", "--compressed",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_ABORT_ON_ERROR, "VIR_MIGRATE_ABORT_ON_ERROR",
     "--abort-on-error", COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_AUTO_CONVERGE, "VIR_MIGRATE_AUTO_CONVERGE", "--auto-converge",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_RDMA_PIN_ALL, "VIR_MIGRATE_RDMA_PIN_ALL", "--rdma-pin-all",
     COCO_CLIENT_REFUSE_RDMA},
    {VIR_MIGRATE_POSTCOPY, "VIR_MIGRATE_POSTCOPY", "--postcopy",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_TLS, "VIR_MIGRATE_TLS", "--tls", COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARALLEL, "VIR_MIGRATE_PARALLEL", "--parallel",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_NON_SHARED_SYNCHRONOUS_WRITES,
     "VIR_MIGRATE_NON_SHARED_SYNCHRONOUS_WRITES",
     "--copy-storage-synchronous-writes", COCO_CLIENT_REFUSE_STORAGE},
    {VIR_MIGRATE_POSTCOPY_RESUME, "VIR_MIGRATE_POSTCOPY_RESUME",
     "--postcopy-resume", COCO_CLIENT_REFUSE_POSTCOPY_RESUME},
    {VIR_MIGRATE_ZEROCOPY, "VIR_MIGRATE_ZEROCOPY", "--zerocopy",
     COCO_CLIENT_REFUSE_NONE},
};

typedef struct {
    const char *name; /* VIR_MIGRATE_PARAM_* */
    const char *type; /* GVariant (D-Bus) type */
    const char *option; /* virsh's */
    CocoClientRefusal refusal;
} CocoClientMigrateParamDef;

static const CocoClientMigrateParamDef cocoClientMigrateParams[] = {
    {VIR_MIGRATE_PARAM_URI, "s", "--migrateuri", COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_DEST_NAME, "s", "--dname", COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_DEST_XML, "s", "--xml", COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_PERSIST_XML, "s", "--persistent-xml",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_BANDWIDTH, "t", "--bandwidth", COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY, "t", "--postcopy-bandwidth",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_GRAPHICS_URI, "s", "--graphicsuri",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_LISTEN_ADDRESS, "s", "--listen-address",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_MIGRATE_DISKS, "as", "--migrate-disks",
     COCO_CLIENT_REFUSE_STORAGE},
    {VIR_MIGRATE_PARAM_DISKS_PORT, "i", "--disks-port",
     COCO_CLIENT_REFUSE_STORAGE},
    {VIR_MIGRATE_PARAM_DISKS_URI, "s", "--disks-uri",
     COCO_CLIENT_REFUSE_STORAGE},
    {VIR_MIGRATE_PARAM_COMPRESSION, "as", "--comp-methods",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_COMPRESSION_MT_LEVEL, "i", "--comp-mt-level",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_COMPRESSION_MT_THREADS, "i", "--comp-mt-threads",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_COMPRESSION_MT_DTHREADS, "i", "--comp-mt-dthreads",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_COMPRESSION_XBZRLE_CACHE, "t", "--comp-xbzrle-cache",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL, "i", "--auto-converge-initial",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT, "i",
     "--auto-converge-increment", COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS, "i", "--parallel-connections",
     COCO_CLIENT_REFUSE_NONE},
    {VIR_MIGRATE_PARAM_TLS_DESTINATION, "s", "--tls-destination",
     COCO_CLIENT_REFUSE_NONE},
};

typedef enum {
    COCO_CLIENT_EVENT_STARTED,
    COCO_CLIENT_EVENT_PROGRESS,
    COCO_CLIENT_EVENT_RECORD,
    COCO_CLIENT_EVENT_LIBVIRT_DONE,
    COCO_CLIENT_EVENT_WARNING,
    COCO_CLIENT_EVENT_HOSTDEV,
    COCO_CLIENT_EVENT_FINISHED,
} CocoClientEventType;

typedef struct {
    CocoClientEventType type;
    GError *error;
    bool cancelled;
    CocoClientMigrateProgress progress;
    CocoClientRecord *record;
    char *message; /* WARNING; HOSTDEV: the device */
    int step; /* HOSTDEV: CocoClientHostdevStep */
    CocoClientMigrateResult result;
} CocoClientEvent;

struct _CocoClientMigrate {
    gint refs;

    /* set before the start, read-only afterwards */
    char *uri;
    char *domain;
    char *desturi;
    char *agent_socket;
    unsigned int flags;
    virTypedParameterPtr params;
    int nparams;
    int maxparams;
    int parallel; /* "parallel.connections", 0: not given */
    char *migrateuri;
    char *dname;
    char *destxml;
    char *persistxml;
    unsigned int timeout;
    CocoClientTimeoutAction timeout_action;
    bool postcopy_after_precopy;
    bool want_progress;
    bool started;

    /* the callbacks' context only */
    GMainContext *ctx;
    const CocoClientMigrateCallbacks *cb;
    gpointer opaque;
    CocoClientMigrateState state;
    bool libvirt_done;
    GError *error;
    CocoClientRecord *record;
    guint entries_seen;
    CocoClientMigrateResult result;

    /* events for the context, in order */
    GMutex qlock;
    GQueue queue;
    GSource *idle;

    /* shared by the threads and cocoClientMigrateAbort(), under lock */
    GMutex lock;
    GCond cond;
    virDomainPtr dom;
    bool cancel; /* an abort was asked for */
    bool libvirt_called;
    bool libvirt_returned;
    bool in_stats; /* the statistics thread is inside libvirt */
    bool stop_stats; /* no more libvirt calls from that thread */
    bool stop_threads;
    bool over; /* the worker is done */
    JsonObject *latest; /* the record thread's newest copy */
};

/* What the worker's helpers share during one run. */
typedef struct {
    virConnectPtr conn;
    virConnectPtr dconn;
    CocoClientAgent *agent;
    GHashTable *known; /* record ids that existed before libvirt's call */
    char uuid[VIR_UUID_STRING_BUFLEN];
    char *name; /* the domain's name */
    guint64 guest_memory;
    /* <coco:hostdev action='detach'> with host devices: the plan */
    CocoClientHostdevPlan *hostdevs;
    CocoClientHostdevLibvirt *hostdev_lv;
} CocoClientRun;

static void
cocoClientRunClear(CocoClientRun *run)
{
    if (run->dconn)
        virConnectClose(run->dconn);
    if (run->conn)
        virConnectClose(run->conn);
    g_clear_pointer(&run->hostdev_lv, cocoClientHostdevLibvirtFree);
    g_clear_pointer(&run->hostdevs, cocoClientHostdevPlanFree);
    cocoClientAgentFree(run->agent);
    g_clear_pointer(&run->known, g_hash_table_unref);
    g_free(run->name);
}

CocoClientMigrate *
cocoClientMigrateRef(CocoClientMigrate *m)
{
    g_atomic_int_inc(&m->refs);
    return m;
}

static void
cocoClientEventFree(CocoClientEvent *ev)
{
    g_clear_error(&ev->error);
    cocoClientRecordFree(ev->record);
    g_free(ev->message);
    g_free(ev);
}

void
cocoClientMigrateUnref(CocoClientMigrate *m)
{
    if (!m || !g_atomic_int_dec_and_test(&m->refs))
        return;
    g_queue_clear_full(&m->queue, (GDestroyNotify)cocoClientEventFree);
    if (m->dom)
        virDomainFree(m->dom);
    if (m->params)
        virTypedParamsFree(m->params, m->nparams);
    g_clear_pointer(&m->latest, json_object_unref);
    cocoClientRecordFree(m->record);
    g_clear_error(&m->error);
    if (m->ctx)
        g_main_context_unref(m->ctx);
    g_mutex_clear(&m->qlock);
    g_mutex_clear(&m->lock);
    g_cond_clear(&m->cond);
    g_free(m->uri);
    g_free(m->domain);
    g_free(m->desturi);
    g_free(m->agent_socket);
    g_free(m->migrateuri);
    g_free(m->dname);
    g_free(m->destxml);
    g_free(m->persistxml);
    g_free(m);
}

CocoClientMigrate *
cocoClientMigrateNew(const char *uri, const char *domain, const char *desturi,
                     GError **error)
{
    CocoClientMigrate *m;

    if (!domain || !*domain || !desturi || !*desturi) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG, "%s",
                     _("a migration needs a domain and a destination URI"));
        return NULL;
    }
    /* Before any libvirt call, virTypedParamsAdd*() included. */
    cocoVirInitialize();
    m = g_new0(CocoClientMigrate, 1);
    m->refs = 1;
    m->uri = g_strdup(uri);
    m->domain = g_strdup(domain);
    m->desturi = g_strdup(desturi);
    m->state = COCO_CLIENT_MIGRATE_PREFLIGHT;
    g_mutex_init(&m->qlock);
    g_mutex_init(&m->lock);
    g_cond_init(&m->cond);
    g_queue_init(&m->queue);
    return m;
}

/* ---- options ------------------------------------------------------------ */

static int
cocoClientMigrateRefuse(CocoClientRefusal refusal, const char *option,
                        const char *name, GError **error)
{
    switch (refusal) {
    case COCO_CLIENT_REFUSE_TUNNELLED:
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("'%1$s' (%2$s) is refused: tunnelled migration carries guest RAM through libvirt's stream; use the default direct or --p2p mode"),
            option, name);
    case COCO_CLIENT_REFUSE_OFFLINE:
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("'%1$s' (%2$s) is refused: an offline migration moves only the definition, there is no confidential state to move; use 'virsh migrate --offline'"),
            option, name);
    case COCO_CLIENT_REFUSE_STORAGE:
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("'%1$s' (%2$s) is refused: non-shared storage migration is not supported for confidential domains: QEMU would copy the disks in its own clear stream, outside the agents' seal; keep the disks on storage both hosts share"),
            option, name);
    case COCO_CLIENT_REFUSE_RDMA:
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("'%1$s' (%2$s) is refused: RDMA migration moves the guest's memory through QEMU's RDMA stream, which the agents cannot seal; use a TCP migration URI"),
            option, name);
    case COCO_CLIENT_REFUSE_POSTCOPY_RESUME:
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("'%1$s' (%2$s) is refused: the agents move a confidential guest's memory before the switchover (post-copy runs as pre-copy), so no failed post-copy migration is left to resume"),
            option, name);
    case COCO_CLIENT_REFUSE_NONE:
    default:
        return 0;
    }
}

int
cocoClientMigrateSetFlags(CocoClientMigrate *m, unsigned int flags,
                          GError **error)
{
    unsigned int known = 0;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoClientMigrateFlags); i++) {
        const CocoClientMigrateFlagDef *f = &cocoClientMigrateFlags[i];

        if (f->refusal == COCO_CLIENT_REFUSE_NONE)
            known |= f->flag;
        else if (flags & f->flag)
            return cocoClientMigrateRefuse(f->refusal, f->option, f->name,
                                           error);
    }
    if (flags & ~known)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("migration flags '0x%1$x' are not supported for a confidential migration (supported: '0x%2$x')"),
            flags & ~known, known);
    m->flags = flags;
    return 0;
}

unsigned int
cocoClientMigrateGetFlags(CocoClientMigrate *m)
{
    return m->flags;
}

static char *
cocoClientMigrateParamNames(void)
{
    g_autoptr(GString) s = g_string_new(NULL);
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoClientMigrateParams); i++)
        g_string_append_printf(s, "%s%s", i ? ", " : "",
                               cocoClientMigrateParams[i].name);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* A string parameter: kept for the preflight when it matters there. */
static int
cocoClientMigrateAddString(CocoClientMigrate *m, const char *name,
                           const char *s, GError **error)
{
    if (!*s)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("migration parameter '%1$s' is empty"), name);
    if (STREQ(name, VIR_MIGRATE_PARAM_URI))
        m->migrateuri = g_strdup(s);
    else if (STREQ(name, VIR_MIGRATE_PARAM_DEST_NAME))
        m->dname = g_strdup(s);
    else if (STREQ(name, VIR_MIGRATE_PARAM_DEST_XML))
        m->destxml = g_strdup(s);
    else if (STREQ(name, VIR_MIGRATE_PARAM_PERSIST_XML))
        m->persistxml = g_strdup(s);
    if (virTypedParamsAddString(&m->params, &m->nparams, &m->maxparams, name,
                                s) < 0)
        return cocoVirSetError(error,
                               _("cannot build the migration parameters"));
    return 0;
}

int
cocoClientMigrateAddParam(CocoClientMigrate *m, const char *name,
                          GVariant *value, GError **error)
{
    const char *type = g_variant_get_type_string(value);
    const CocoClientMigrateParamDef *p = NULL;
    size_t i;
    int rc = 0;

    g_return_val_if_fail(!m->started, -1);
    for (i = 0; i < G_N_ELEMENTS(cocoClientMigrateParams); i++) {
        if (STREQ(cocoClientMigrateParams[i].name, name))
            p = &cocoClientMigrateParams[i];
    }
    if (!p) {
        g_autofree char *known = cocoClientMigrateParamNames();

        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("unknown migration parameter '%1$s' (known: %2$s)"), name, known);
    }
    if (p->refusal != COCO_CLIENT_REFUSE_NONE)
        return cocoClientMigrateRefuse(p->refusal, p->option, p->name, error);
    if (STRNEQ(type, p->type))
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("migration parameter '%1$s' has D-Bus type '%2$s', expected '%3$s'"),
            name, type, p->type);
    if (virTypedParamsGet(m->params, m->nparams, name) ||
        (STREQ(name, VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS) && m->parallel))
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("migration parameter '%1$s' is given twice"),
                            name);
    if (STREQ(name, VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS)) {
        gint32 n = g_variant_get_int32(value);

        if (n < 1 || n > 512)
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("migration parameter '%1$s' needs 1..512 streams, not '%2$d'"),
                name, n);
        /* The agents' stream count: checked against the element in the
         * preflight; given to libvirt only with VIR_MIGRATE_PARALLEL. */
        m->parallel = n;
        return 0;
    }
    if (STREQ(p->type, "s"))
        return cocoClientMigrateAddString(
            m, name, g_variant_get_string(value, NULL), error);
    if (STREQ(p->type, "as")) {
        g_autofree const char **list = g_variant_get_strv(value, NULL);

        if (!list[0])
            return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                                _("migration parameter '%1$s' is empty"), name);
        for (i = 0; list[i] && rc == 0; i++)
            rc = cocoClientMigrateAddString(m, name, list[i], error);
        return rc;
    }
    if (STREQ(p->type, "i"))
        rc = virTypedParamsAddInt(&m->params, &m->nparams, &m->maxparams, name,
                                  g_variant_get_int32(value));
    else
        rc = virTypedParamsAddULLong(&m->params, &m->nparams, &m->maxparams,
                                     name, g_variant_get_uint64(value));
    if (rc < 0)
        return cocoVirSetError(error,
                               _("cannot build the migration parameters"));
    return 0;
}

void
cocoClientMigrateSetAgentSocket(CocoClientMigrate *m, const char *path)
{
    g_free(m->agent_socket);
    m->agent_socket = g_strdup(path);
}

void
cocoClientMigrateSetTimeout(CocoClientMigrate *m, unsigned int seconds,
                            CocoClientTimeoutAction action)
{
    m->timeout = seconds;
    m->timeout_action = action;
}

void
cocoClientMigrateSetPostcopyAfterPrecopy(CocoClientMigrate *m)
{
    m->postcopy_after_precopy = true;
}

void
cocoClientMigrateSetProgress(CocoClientMigrate *m)
{
    m->want_progress = true;
}

/* ---- events for the callbacks' context ------------------------------------ */

static void cocoClientMigrateHandle(CocoClientMigrate *m, CocoClientEvent *ev);

static gboolean
cocoClientMigrateDispatch(gpointer opaque)
{
    CocoClientMigrate *m = opaque;

    g_mutex_lock(&m->qlock);
    g_clear_pointer(&m->idle, g_source_unref);
    for (;;) {
        CocoClientEvent *ev = g_queue_pop_head(&m->queue);

        g_mutex_unlock(&m->qlock);
        if (!ev)
            return G_SOURCE_REMOVE;
        cocoClientMigrateHandle(m, ev);
        cocoClientEventFree(ev);
        g_mutex_lock(&m->qlock);
    }
}

/* Queue @ev for the context (never handled in the calling thread). */
static void
cocoClientMigratePost(CocoClientMigrate *m, CocoClientEvent *ev)
{
    g_mutex_lock(&m->qlock);
    g_queue_push_tail(&m->queue, ev);
    if (!m->idle) {
        m->idle = g_idle_source_new();
        g_source_set_callback(m->idle, cocoClientMigrateDispatch,
                              cocoClientMigrateRef(m),
                              (GDestroyNotify)cocoClientMigrateUnref);
        g_source_attach(m->idle, m->ctx);
    }
    g_mutex_unlock(&m->qlock);
}

static CocoClientEvent *
cocoClientEventNew(CocoClientEventType type)
{
    CocoClientEvent *ev = g_new0(CocoClientEvent, 1);

    ev->type = type;
    return ev;
}

static void
cocoClientMigratePostWarning(CocoClientMigrate *m, const char *message)
{
    CocoClientEvent *ev = cocoClientEventNew(COCO_CLIENT_EVENT_WARNING);

    ev->message = g_strdup(message);
    cocoClientMigratePost(m, ev);
}

/* A host device passed a step (worker thread): for hostdev(). */
static void
cocoClientMigrateOnHostdev(const char *device, CocoClientHostdevStep step,
                           gpointer opaque)
{
    CocoClientMigrate *m = opaque;
    CocoClientEvent *ev = cocoClientEventNew(COCO_CLIENT_EVENT_HOSTDEV);

    ev->message = g_strdup(device);
    ev->step = step;
    cocoClientMigratePost(m, ev);
}

/* A new copy of the record: announce the entries not announced yet. */
static void
cocoClientMigrateTakeRecord(CocoClientMigrate *m, CocoClientRecord *rec)
{
    cocoClientRecordFree(m->record);
    m->record = rec;
    for (; m->entries_seen < rec->timeline->len; m->entries_seen++) {
        if (m->cb && m->cb->entry)
            m->cb->entry(m, rec, m->entries_seen, m->opaque);
    }
    if (m->cb && m->cb->record)
        m->cb->record(m, rec, m->opaque);
}

static void
cocoClientMigrateHandle(CocoClientMigrate *m, CocoClientEvent *ev)
{
    const CocoClientMigrateCallbacks *cb = m->cb;

    switch (ev->type) {
    case COCO_CLIENT_EVENT_STARTED:
        if (ev->error) {
            m->error = g_steal_pointer(&ev->error);
            m->state = ev->cancelled ? COCO_CLIENT_MIGRATE_CANCELLED
                                     : COCO_CLIENT_MIGRATE_FAILED;
        } else {
            m->state = COCO_CLIENT_MIGRATE_RUNNING;
        }
        if (cb && cb->started)
            cb->started(m, m->error, m->opaque);
        break;
    case COCO_CLIENT_EVENT_PROGRESS:
        if (cb && cb->progress)
            cb->progress(m, &ev->progress, m->opaque);
        break;
    case COCO_CLIENT_EVENT_RECORD:
        cocoClientMigrateTakeRecord(m, g_steal_pointer(&ev->record));
        break;
    case COCO_CLIENT_EVENT_LIBVIRT_DONE:
        m->libvirt_done = true;
        break;
    case COCO_CLIENT_EVENT_WARNING:
        if (cb && cb->warning)
            cb->warning(m, ev->message, m->opaque);
        break;
    case COCO_CLIENT_EVENT_HOSTDEV:
        if (cb && cb->hostdev)
            cb->hostdev(m, ev->message, ev->step, m->opaque);
        break;
    case COCO_CLIENT_EVENT_FINISHED:
        if (ev->record)
            cocoClientMigrateTakeRecord(m, g_steal_pointer(&ev->record));
        m->result = ev->result;
        m->libvirt_done = true;
        if (m->state == COCO_CLIENT_MIGRATE_RUNNING) {
            if (ev->error) {
                m->error = g_steal_pointer(&ev->error);
                m->state = ev->cancelled ? COCO_CLIENT_MIGRATE_CANCELLED
                                         : COCO_CLIENT_MIGRATE_FAILED;
            } else {
                m->state = COCO_CLIENT_MIGRATE_COMPLETED;
            }
        }
        if (m->cb && m->cb->finished)
            m->cb->finished(m, m->opaque);
        break;
    }
}

/* ---- the preflight ---------------------------------------------------------- */

static int
cocoClientMigrateValidate(const char *xml, const char *what,
                          CocoMigrationDef **def, GError **error)
{
    CocoValidateReport report = {.what = what};
    int ret = cocoValidateText(xml, &report, def, error);

    g_free(report.skip_reason);
    return ret;
}

/* The host the agents will use: the migration URI's, else the
 * destination URI's, else the destination libvirt's host name (which
 * libvirt also puts in the migration URI it makes up). */
static char *
cocoClientMigrateDestHost(CocoClientMigrate *m, CocoClientRun *run,
                          GError **error)
{
    char *host = NULL;

    if (m->migrateuri) {
        if (cocoClientPreflightUriHost(m->migrateuri, &host, error) < 0)
            return NULL;
    } else if (cocoClientPreflightUriHost(m->desturi, &host, error) < 0) {
        return NULL;
    }
    if (!host)
        host = cocoVirHostname(run->dconn, m->desturi, error);
    return host;
}

/* The local agent: connected, its probe, the domain's relay. */
static JsonObject *
cocoClientMigrateAgent(CocoClientMigrate *m, CocoClientRun *run, GError **error)
{
    g_autofree char *path = cocoClientAgentSocketPath(m->agent_socket);
    g_autoptr(GError) err = NULL;
    JsonObject *probe;
    int errnum = 0;

    if (!(run->agent = cocoClientAgentConnect(path, &errnum))) {
        cocoErrorSetSystem(
            error, errnum,
            _("the source host's agent is not reachable at '%1$s' (is virtcocod running?)"),
            path);
        return NULL;
    }
    if (!(probe = cocoClientAgentProbe(run->agent, &err))) {
        cocoErrorSet(
            error, COCO_ERROR_QMP_AGENT,
            _("the source host's agent at '%1$s' did not answer the probe: %2$s"),
            path, err->message);
        return NULL;
    }
    if (cocoClientPreflightCheckRelay(run->agent, run->uuid, run->name, error) <
        0) {
        json_object_unref(probe);
        return NULL;
    }
    return probe;
}

/* The ids of the source agent's records before libvirt is called. */
static int
cocoClientMigrateKnownRecords(CocoClientRun *run, GError **error)
{
    g_autoptr(JsonArray) arr = cocoClientAgentStatus(run->agent, error);
    guint i;

    if (!arr)
        return -1;
    run->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (i = 0; i < json_array_get_length(arr); i++) {
        const char *id = cocoJsonString(cocoJsonArrayObject(arr, i), "id");

        if (id)
            g_hash_table_add(run->known, g_strdup(id));
    }
    return 0;
}

static int
cocoClientMigratePreflight(CocoClientMigrate *m, CocoClientRun *run,
                           GError **error)
{
    g_autoptr(CocoMigrationDef) def = NULL;
    g_autoptr(JsonObject) probe = NULL;
    g_autofree char *element = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *host = NULL;
    virDomainInfo info;
    virDomainPtr dom;
    char *text;

    if (!(run->conn = cocoVirConnect(m->uri, error)) ||
        !(dom = cocoVirLookupDomain(run->conn, m->domain, error)))
        return -1;
    g_mutex_lock(&m->lock);
    m->dom = dom;
    g_mutex_unlock(&m->lock);
    run->name = g_strdup(virDomainGetName(dom));
    if (virDomainGetUUIDString(dom, run->uuid) < 0)
        return cocoVirSetError(error, _("cannot get the domain's UUID"));

    /* Without a host: the element, the XMLs, the streams, the emulator. */
    if (cocoVirGetMetadata(dom, VIR_DOMAIN_AFFECT_CURRENT, &element, error) < 0)
        return -1;
    if (!element)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_CONFIGURED,
            _("domain '%1$s' has no <coco:migration> element, so its migration cannot be confidential; migrate it with 'virsh migrate' or plain libvirt calls"),
            m->domain);
    if (!(text = virDomainGetXMLDesc(dom, 0)))
        return cocoVirSetError(error, _("failed to get the domain's XML"));
    xml = g_strdup(text);
    free(text);
    if (cocoClientMigrateValidate(xml, m->domain, &def, error) < 0)
        return -1;
    if (m->destxml) {
        g_autoptr(CocoMigrationDef) ddef = NULL;

        if (cocoClientMigrateValidate(m->destxml, VIR_MIGRATE_PARAM_DEST_XML,
                                      &ddef, error) < 0)
            return -1;
    }
    if (m->persistxml) {
        g_autoptr(CocoMigrationDef) pdef = NULL;

        if (cocoClientMigrateValidate(
                m->persistxml, VIR_MIGRATE_PARAM_PERSIST_XML, &pdef, error) < 0)
            return -1;
    }
    if (cocoClientPreflightCheckStreams(m->parallel,
                                        VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS,
                                        def, error) < 0 ||
        cocoClientPreflightCheckEmulator(xml, m->domain, error) < 0)
        return -1;
    if (virDomainGetInfo(dom, &info) == 0)
        run->guest_memory = (guint64)info.maxMem * 1024;
    else
        virResetLastError();

    /* The destination's libvirt, when the client drives the migration. */
    if (!(m->flags & VIR_MIGRATE_PEER2PEER) &&
        !(run->dconn = cocoVirConnect(m->desturi, error))) {
        cocoErrorPrefix(error, _("cannot connect to the destination '%1$s': "),
                        m->desturi);
        return -1;
    }

    /* This host's agent and the domain's relay, then the destination's
     * agent (through this one), firmware and policy. */
    if (!(probe = cocoClientMigrateAgent(m, run, error)) ||
        !(host = cocoClientMigrateDestHost(m, run, error)) ||
        cocoClientPreflightHosts(run->agent, probe, host, def, error) < 0)
        return -1;
    if (def->has_hostdev && def->hostdev_action == COCO_HOSTDEV_ACTION_DETACH) {
        if (!(run->hostdevs =
                  cocoClientHostdevPlanNew(run->name, xml, m->destxml, error)))
            return -1;
        run->hostdev_lv = cocoClientHostdevLibvirtNew(
            dom, run->dconn, m->desturi, m->dname ? m->dname : run->name,
            run->agent, run->uuid);
        cocoClientHostdevPlanSetOps(run->hostdevs, &cocoClientHostdevLibvirtOps,
                                    run->hostdev_lv);
        cocoClientHostdevPlanSetNotify(run->hostdevs,
                                       cocoClientMigrateOnHostdev, m);
    }
    return cocoClientMigrateKnownRecords(run, error);
}

/* ---- the source agent's record -------------------------------------------- */

/* The newest source record of the domain that did not exist before; once
 * found, the same id. */
static JsonObject *
cocoClientMigrateFindRecord(JsonArray *arr, const CocoClientRun *run,
                            const char *id)
{
    guint i;

    for (i = json_array_get_length(arr); i > 0; i--) {
        JsonObject *o = cocoJsonArrayObject(arr, i - 1);
        const char *rid = cocoJsonString(o, "id");
        const char *uuid = cocoJsonString(o, "uuid");

        if (!rid)
            continue;
        if (id) {
            if (STREQ(rid, id))
                return o;
            continue;
        }
        if (STREQ_NULLABLE(cocoJsonString(o, "role"), "source") && uuid &&
            g_ascii_strcasecmp(uuid, run->uuid) == 0 &&
            !g_hash_table_contains(run->known, rid))
            return o;
    }
    return NULL;
}

typedef struct {
    CocoClientMigrate *m;
    CocoClientRun *run;
} CocoClientThreadArg;

/* Wait until the threads are told to stop or @ms passed; true to stop. */
static bool
cocoClientMigrateSleep(CocoClientMigrate *m, unsigned int ms)
{
    gint64 until =
        g_get_monotonic_time() + (gint64)ms * G_TIME_SPAN_MILLISECOND;
    bool stop;

    g_mutex_lock(&m->lock);
    while (!m->stop_threads && g_cond_wait_until(&m->cond, &m->lock, until))
        ;
    stop = m->stop_threads;
    g_mutex_unlock(&m->lock);
    return stop;
}

static gpointer
cocoClientMigrateRecordThread(gpointer opaque)
{
    CocoClientThreadArg *arg = opaque;
    CocoClientMigrate *m = arg->m;
    g_autofree char *id = NULL;
    g_autofree char *last = NULL;

    do {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonArray) arr = NULL;
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *text = NULL;
        CocoClientRecord *rec;
        CocoClientEvent *ev;
        JsonObject *o;

        if (!(arr = cocoClientAgentStatus(arg->run->agent, &err))) {
            g_autofree char *msg = g_strdup_printf(
                _("cannot read the source agent's record of the migration: %1$s"),
                err->message);

            cocoClientMigratePostWarning(m, msg);
            break;
        }
        if (!(o = cocoClientMigrateFindRecord(arr, arg->run, id)))
            continue;
        node = json_node_new(JSON_NODE_OBJECT);
        json_node_set_object(node, o);
        text = json_to_string(node, FALSE);
        if (STREQ_NULLABLE(text, last))
            continue;
        if (!(rec = cocoClientRecordParse(
                  o, cocoClientAgentGetPath(arg->run->agent), &err))) {
            cocoClientMigratePostWarning(m, err->message);
            continue;
        }
        if (!id)
            id = g_strdup(rec->id);
        g_free(last);
        last = g_steal_pointer(&text);
        g_mutex_lock(&m->lock);
        g_clear_pointer(&m->latest, json_object_unref);
        m->latest = json_object_ref(o);
        g_cond_broadcast(&m->cond);
        g_mutex_unlock(&m->lock);
        ev = cocoClientEventNew(COCO_CLIENT_EVENT_RECORD);
        ev->record = rec;
        cocoClientMigratePost(m, ev);
    } while (!cocoClientMigrateSleep(m, COCO_CLIENT_MIGRATE_RECORD_MS));
    return NULL;
}

/* ---- libvirt's job statistics, the timeout, post-copy ----------------------- */

/* One libvirt call of the statistics thread, unless an abort stopped
 * them (libvirt 9.0 was seen to hang the migration for good when a job
 * statistics query met the cancel). */
static bool
cocoClientMigrateStatsEnter(CocoClientMigrate *m)
{
    bool ok;

    g_mutex_lock(&m->lock);
    ok = !m->stop_stats;
    m->in_stats = ok;
    g_mutex_unlock(&m->lock);
    return ok;
}

static void
cocoClientMigrateStatsLeave(CocoClientMigrate *m)
{
    g_mutex_lock(&m->lock);
    m->in_stats = false;
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
}

typedef enum {
    COCO_CLIENT_WARN_POSTCOPY_PASS,
    COCO_CLIENT_WARN_POSTCOPY_TIMEOUT,
    COCO_CLIENT_WARN_SUSPEND_TIMEOUT,
} CocoClientWarning;

/* A libvirt call of the statistics thread failed: say so, go on. */
static void
cocoClientMigrateWarnLibvirt(CocoClientMigrate *m, CocoClientWarning what)
{
    virErrorPtr e = virGetLastError();
    const char *why = e && e->message ? e->message : "?";
    g_autofree char *msg = NULL;

    switch (what) {
    case COCO_CLIENT_WARN_POSTCOPY_PASS:
        msg = g_strdup_printf(
            _("cannot switch to post-copy after the first pass: %1$s"), why);
        break;
    case COCO_CLIENT_WARN_POSTCOPY_TIMEOUT:
        msg = g_strdup_printf(
            _("cannot switch to post-copy after the timeout: %1$s"), why);
        break;
    case COCO_CLIENT_WARN_SUSPEND_TIMEOUT:
    default:
        msg = g_strdup_printf(
            _("cannot suspend the domain after the timeout: %1$s"), why);
        break;
    }
    virResetLastError();
    cocoClientMigratePostWarning(m, msg);
}

/* One look at libvirt's job; false when the thread should stop. */
static void
cocoClientMigrateStatsOnce(CocoClientMigrate *m, virDomainPtr dom,
                           CocoClientMigrateProgress *p)
{
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int type = VIR_DOMAIN_JOB_NONE;
    unsigned long long total = 0;
    unsigned long long remaining = 0;
    unsigned long long iteration = 0;
    int rc;

    if (!cocoClientMigrateStatsEnter(m))
        return;
    rc = virDomainGetJobStats(dom, &type, &params, &nparams, 0);
    cocoClientMigrateStatsLeave(m);
    if (rc < 0) {
        virResetLastError();
        return;
    }
    virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DATA_TOTAL, &total);
    virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DATA_REMAINING,
                            &remaining);
    virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_MEMORY_ITERATION,
                            &iteration);
    virTypedParamsFree(params, nparams);
    if (type == VIR_DOMAIN_JOB_NONE || total == 0)
        return;
    p->data_total = total;
    p->data_remaining = remaining;
    p->memory_iteration = iteration;
    /* Done only when the call returns: at most 99 % meanwhile. */
    p->percent = remaining >= total
                     ? 0
                     : (unsigned int)((double)(total - remaining) * 100.0 /
                                      (double)total);
    if (p->percent > 99)
        p->percent = 99;
    if (m->want_progress) {
        CocoClientEvent *ev = cocoClientEventNew(COCO_CLIENT_EVENT_PROGRESS);

        ev->progress = *p;
        cocoClientMigratePost(m, ev);
    }
}

static gpointer
cocoClientMigrateStatsThread(gpointer opaque)
{
    CocoClientThreadArg *arg = opaque;
    CocoClientMigrate *m = arg->m;
    gint64 start = g_get_monotonic_time();
    bool timeout_done = m->timeout == 0;
    bool postcopy_done = !m->postcopy_after_precopy;
    virDomainPtr dom;

    g_mutex_lock(&m->lock);
    dom = m->dom;
    virDomainRef(dom);
    g_mutex_unlock(&m->lock);
    do {
        CocoClientMigrateProgress p = {0};

        cocoClientMigrateStatsOnce(m, dom, &p);
        if (!postcopy_done && p.memory_iteration >= 2 &&
            cocoClientMigrateStatsEnter(m)) {
            postcopy_done = true;
            if (virDomainMigrateStartPostCopy(dom, 0) < 0)
                cocoClientMigrateWarnLibvirt(m, COCO_CLIENT_WARN_POSTCOPY_PASS);
            cocoClientMigrateStatsLeave(m);
        }
        if (!timeout_done &&
            g_get_monotonic_time() - start >=
                (gint64)m->timeout * G_USEC_PER_SEC &&
            cocoClientMigrateStatsEnter(m)) {
            timeout_done = true;
            if (m->timeout_action == COCO_CLIENT_TIMEOUT_POSTCOPY) {
                if (virDomainMigrateStartPostCopy(dom, 0) < 0)
                    cocoClientMigrateWarnLibvirt(
                        m, COCO_CLIENT_WARN_POSTCOPY_TIMEOUT);
            } else if (virDomainSuspend(dom) < 0) {
                cocoClientMigrateWarnLibvirt(m,
                                             COCO_CLIENT_WARN_SUSPEND_TIMEOUT);
            }
            cocoClientMigrateStatsLeave(m);
        }
    } while (!cocoClientMigrateSleep(m, COCO_CLIENT_MIGRATE_STATS_MS));
    virDomainFree(dom);
    return NULL;
}

/* ---- the worker ---------------------------------------------------------------- */

static void
cocoClientMigrateFinish(CocoClientMigrate *m, GError *error,
                        CocoClientRecord *record,
                        const CocoClientMigrateResult *result)
{
    CocoClientEvent *ev = cocoClientEventNew(COCO_CLIENT_EVENT_FINISHED);

    g_mutex_lock(&m->lock);
    m->over = true;
    ev->cancelled = m->cancel;
    g_clear_pointer(&m->dom, virDomainFree);
    g_mutex_unlock(&m->lock);
    ev->error = error;
    ev->record = record;
    if (result)
        ev->result = *result;
    cocoClientMigratePost(m, ev);
}

/* libvirt's completed job on the destination: the memory and data its
 * stream moved, and its downtime. */
static void
cocoClientMigrateCompletedStats(CocoClientMigrate *m, CocoClientRun *run,
                                CocoClientMigrateResult *res)
{
    g_autoptr(virConnect) ro = NULL;
    g_autoptr(virDomain) ddom = NULL;
    virConnectPtr dconn = run->dconn;
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int type = 0;
    unsigned long long v = 0;

    if (!dconn && !(dconn = ro = virConnectOpenReadOnly(m->desturi)))
        goto cleanup;
    if (!(ddom = virDomainLookupByName(dconn, m->dname ? m->dname : run->name)))
        goto cleanup;
    if (virDomainGetJobStats(ddom, &type, &params, &nparams,
                             VIR_DOMAIN_JOB_STATS_COMPLETED |
                                 VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) < 0)
        goto cleanup;
    if (virTypedParamsGetULLong(params, nparams,
                                VIR_DOMAIN_JOB_MEMORY_PROCESSED, &v) == 1) {
        res->have_libvirt = true;
        res->memory_processed = v;
    }
    if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DATA_PROCESSED,
                                &v) == 1) {
        res->have_libvirt = true;
        res->data_processed = v;
    }
    if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DOWNTIME, &v) ==
        1) {
        res->have_libvirt_downtime = true;
        res->libvirt_downtime_ms = v;
    }

cleanup:
    virTypedParamsFree(params, nparams);
    virResetLastError();
}

bool
cocoClientMigrateSealed(const CocoClientRecord *rec)
{
    return rec && cocoClientRecordSucceeded(rec) && rec->bytes > 0;
}

int
cocoClientMigrateCheckResult(const char *domain, const CocoClientRecord *rec,
                             const CocoClientMigrateResult *res, GError **error)
{
    guint64 share = res->guest_memory / COCO_CLIENT_MIGRATE_STREAM_SHARE;

    if (cocoClientMigrateSealed(rec))
        return 0;
    if (!rec && res->have_libvirt)
        return cocoErrorSet(
            error, COCO_ERROR_MIGRATION_UNSEALED,
            _("libvirt migrated domain '%1$s', but the source agent has no record of the migration: its memory did not move through the agents (libvirt's completed job moved '%2$llu' bytes of memory, '%3$llu' bytes in all)"),
            domain, (unsigned long long)res->memory_processed,
            (unsigned long long)res->data_processed);
    if (!rec)
        return cocoErrorSet(
            error, COCO_ERROR_MIGRATION_UNSEALED,
            _("libvirt migrated domain '%1$s', but the source agent has no record of the migration: its memory did not move through the agents"),
            domain);
    if (!cocoClientRecordSucceeded(rec))
        return cocoErrorSet(
            error, COCO_ERROR_MIGRATION_UNSEALED,
            _("libvirt migrated domain '%1$s', but the source agent's record '%2$s' is in state '%3$s', not finished (the agents sealed '%4$llu' bytes in '%5$llu' pages)"),
            domain, rec->id, rec->state, (unsigned long long)rec->bytes,
            (unsigned long long)rec->sent_pages);
    if (res->have_libvirt &&
        (res->memory_processed > share || res->data_processed > share))
        return cocoErrorSet(
            error, COCO_ERROR_MIGRATION_UNSEALED,
            _("the memory of domain '%1$s' went through QEMU's stream: libvirt's completed job moved '%2$llu' bytes of memory ('%3$llu' bytes in all) of '%4$llu', while the agents sealed nothing (record '%5$s')"),
            domain, (unsigned long long)res->memory_processed,
            (unsigned long long)res->data_processed,
            (unsigned long long)res->guest_memory, rec->id);
    return cocoErrorSet(
        error, COCO_ERROR_MIGRATION_UNSEALED,
        _("the agents sealed nothing for the migration of domain '%1$s' (record '%2$s', '%3$llu' pages): its memory did not move through them"),
        domain, rec->id, (unsigned long long)rec->pages);
}

/* After libvirt returned: wait for the record to end, at most
 * COCO_CLIENT_MIGRATE_SETTLE_US (at once when libvirt failed before any
 * agent took part). */
static JsonObject *
cocoClientMigrateSettle(CocoClientMigrate *m, bool failed)
{
    gint64 until = g_get_monotonic_time() + COCO_CLIENT_MIGRATE_SETTLE_US;
    JsonObject *latest = NULL;

    g_mutex_lock(&m->lock);
    for (;;) {
        g_autoptr(GError) err = NULL;
        g_autoptr(CocoClientRecord) rec = NULL;

        if (!m->latest && failed)
            break;
        if (m->latest && (rec = cocoClientRecordParse(m->latest, "", &err)) &&
            cocoClientRecordIsOver(rec))
            break;
        if (!g_cond_wait_until(&m->cond, &m->lock, until))
            break;
    }
    if (m->latest)
        latest = json_object_ref(m->latest);
    m->stop_threads = true;
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
    return latest;
}

static void
cocoClientMigrateBuildParams(CocoClientMigrate *m, CocoClientRun *run,
                             virTypedParameterPtr *params, int *nparams)
{
    const char *destxml =
        run->hostdevs ? cocoClientHostdevPlanDestXml(run->hostdevs) : NULL;
    int max = 0;
    int i;

    *params = NULL;
    *nparams = 0;
    for (i = 0; i < m->nparams; i++) {
        virTypedParameterPtr p = &m->params[i];

        switch ((virTypedParameterType)p->type) {
        case VIR_TYPED_PARAM_STRING:
            /* The destination XML without the host devices the driver
             * attaches after the migration. */
            virTypedParamsAddString(
                params, nparams, &max, p->field,
                destxml && STREQ(p->field, VIR_MIGRATE_PARAM_DEST_XML)
                    ? destxml
                    : p->value.s);
            break;
        case VIR_TYPED_PARAM_INT:
            virTypedParamsAddInt(params, nparams, &max, p->field, p->value.i);
            break;
        case VIR_TYPED_PARAM_ULLONG:
            virTypedParamsAddULLong(params, nparams, &max, p->field,
                                    p->value.ul);
            break;
        case VIR_TYPED_PARAM_UINT:
        case VIR_TYPED_PARAM_LLONG:
        case VIR_TYPED_PARAM_DOUBLE:
        case VIR_TYPED_PARAM_BOOLEAN:
        default:
            break;
        }
    }
    /* libvirt's multifd connections only with VIR_MIGRATE_PARALLEL, as
     * virsh passes them. */
    if (m->parallel && (m->flags & VIR_MIGRATE_PARALLEL))
        virTypedParamsAddInt(params, nparams, &max,
                             VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS,
                             m->parallel);
}

static int
cocoClientMigrateCall(CocoClientMigrate *m, CocoClientRun *run,
                      virDomainPtr dom, GError **error)
{
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int rc;

    cocoClientMigrateBuildParams(m, run, &params, &nparams);
    if (m->flags & VIR_MIGRATE_PEER2PEER) {
        rc = virDomainMigrateToURI3(dom, m->desturi, params,
                                    (unsigned int)nparams, m->flags);
    } else {
        virDomainPtr ddom = virDomainMigrate3(dom, run->dconn, params,
                                              (unsigned int)nparams, m->flags);

        rc = ddom ? 0 : -1;
        if (ddom)
            virDomainFree(ddom);
    }
    if (rc < 0)
        cocoVirSetError(error, _("the migration failed"));
    virTypedParamsFree(params, nparams);
    return rc;
}

/* @more (consumed) becomes *@err, or is added to its message. */
static void
cocoClientMigrateMergeError(GError **err, GError *more)
{
    char *msg;

    if (!*err) {
        *err = more;
        return;
    }
    msg = g_strdup_printf("%s; %s", (*err)->message, more->message);
    g_free((*err)->message);
    (*err)->message = msg;
    g_error_free(more);
}

/* The source gets its detached host devices back; a failure is added to
 * *@err's message. */
static void
cocoClientMigrateHostdevsBack(CocoClientRun *run, GError **err)
{
    GError *rerr = NULL;

    if (cocoClientHostdevRollback(run->hostdevs, &rerr) < 0)
        cocoClientMigrateMergeError(err, rerr);
}

static gpointer
cocoClientMigrateWorker(gpointer opaque)
{
    g_autoptr(CocoClientMigrate) m = opaque;
    CocoClientRun run = {0};
    CocoClientThreadArg arg = {.m = m, .run = &run};
    CocoClientMigrateResult res = {0};
    g_autoptr(JsonObject) latest = NULL;
    CocoClientRecord *rec = NULL;
    GThread *records = NULL;
    GThread *stats = NULL;
    GError *err = NULL;
    GError *hostdev_err = NULL;
    virDomainPtr dom = NULL;
    gint64 t0;
    bool cancelled;
    int rc;

    if (cocoClientMigratePreflight(m, &run, &err) == 0) {
        /* <coco:hostdev action='detach'>: libvirt refuses a detach during
         * its migration job, so before it (a failure rolls back). */
        if (run.hostdevs && cocoClientHostdevPlanCount(run.hostdevs) > 0)
            cocoClientHostdevDetach(run.hostdevs, &err);
        g_mutex_lock(&m->lock);
        if (!err && m->cancel)
            cocoErrorSet(
                &err, COCO_ERROR_MIGRATION_ABORTED,
                _("the migration of domain '%1$s' was aborted on request before libvirt was called"),
                m->domain);
        m->libvirt_called = !err;
        dom = m->dom;
        g_mutex_unlock(&m->lock);
        if (err && run.hostdevs)
            cocoClientMigrateHostdevsBack(&run, &err);
    }
    {
        CocoClientEvent *ev = cocoClientEventNew(COCO_CLIENT_EVENT_STARTED);

        ev->error = err ? g_error_copy(err) : NULL;
        g_mutex_lock(&m->lock);
        ev->cancelled = m->cancel;
        g_mutex_unlock(&m->lock);
        cocoClientMigratePost(m, ev);
    }
    if (err) {
        g_clear_error(&err);
        cocoClientMigrateFinish(m, NULL, NULL, NULL);
        cocoClientRunClear(&run);
        return NULL;
    }

    records = g_thread_new("coco-record", cocoClientMigrateRecordThread, &arg);
    if (m->want_progress || m->timeout || m->postcopy_after_precopy)
        stats = g_thread_new("coco-stats", cocoClientMigrateStatsThread, &arg);
    t0 = g_get_monotonic_time();
    rc = cocoClientMigrateCall(m, &run, dom, &err);
    res.have_total = true;
    res.total_ms = (guint64)(g_get_monotonic_time() - t0) / 1000;
    g_mutex_lock(&m->lock);
    m->libvirt_returned = true;
    cancelled = m->cancel;
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
    cocoClientMigratePost(m,
                          cocoClientEventNew(COCO_CLIENT_EVENT_LIBVIRT_DONE));
    if (rc < 0 && cancelled)
        cocoErrorPrefix(&err, _("the migration was aborted on request: "));
    if (run.hostdevs && cocoClientHostdevPlanCount(run.hostdevs) > 0) {
        res.hostdevs_detached = cocoClientHostdevPlanDetached(run.hostdevs);
        /* The guest runs on the destination: its devices are attached
         * there; else it runs on the source, which gets them back. */
        if (rc == 0)
            cocoClientHostdevAttachDest(run.hostdevs, &hostdev_err);
        else
            cocoClientMigrateHostdevsBack(&run, &err);
        res.hostdevs_attached = cocoClientHostdevPlanAttached(run.hostdevs);
    }

    latest = cocoClientMigrateSettle(m, rc < 0);
    g_thread_join(records);
    if (stats)
        g_thread_join(stats);
    if (latest) {
        g_autoptr(GError) perr = NULL;

        rec = cocoClientRecordParse(latest, cocoClientAgentGetPath(run.agent),
                                    &perr);
    }
    res.guest_memory = run.guest_memory;
    if (rec) {
        res.have_record = true;
        res.sealed_bytes = rec->bytes;
        res.sealed_pages = rec->sent_pages;
        res.have_agent_downtime = rec->downtime_us > 0;
        res.agent_downtime_ms = rec->downtime_us / 1000;
    }
    /* libvirt's numbers: always with the destination's connection; for
     * peer-to-peer (no such connection) only to name them in a failure. */
    if (rc == 0 && (run.dconn || !cocoClientMigrateSealed(rec)))
        cocoClientMigrateCompletedStats(m, &run, &res);
    if (rc == 0)
        cocoClientMigrateCheckResult(run.name, rec, &res, &err);
    if (hostdev_err)
        cocoClientMigrateMergeError(&err, g_steal_pointer(&hostdev_err));
    cocoClientMigrateFinish(m, err, rec, &res);
    cocoClientRunClear(&run);
    return NULL;
}

void
cocoClientMigrateStart(CocoClientMigrate *m, GMainContext *ctx,
                       const CocoClientMigrateCallbacks *cb, gpointer opaque)
{
    g_return_if_fail(!m->started);
    m->started = true;
    m->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
    m->cb = cb;
    m->opaque = opaque;
    g_thread_unref(g_thread_new("coco-migrate", cocoClientMigrateWorker,
                                cocoClientMigrateRef(m)));
}

void
cocoClientMigrateDetach(CocoClientMigrate *m)
{
    m->cb = NULL;
    m->opaque = NULL;
}

int
cocoClientMigrateAbort(CocoClientMigrate *m, GError **error)
{
    virDomainPtr dom = NULL;
    int ret = 0;

    g_mutex_lock(&m->lock);
    if (m->over || m->libvirt_returned) {
        g_mutex_unlock(&m->lock);
        return cocoErrorSet(
            error, COCO_ERROR_MIGRATION_PHASE,
            _("the migration of domain '%1$s' is over: nothing to abort"),
            m->domain);
    }
    if (m->cancel || !m->libvirt_called) {
        /* Asked before: once is enough. Before libvirt's call: the worker
         * does not make it. */
        m->cancel = true;
        g_mutex_unlock(&m->lock);
        return 0;
    }
    m->cancel = true;
    /* No statistics query may meet the cancel: stop them, and let one
     * under way end first. */
    m->stop_stats = true;
    while (m->in_stats && !m->libvirt_returned)
        g_cond_wait(&m->cond, &m->lock);
    if (m->dom && !m->libvirt_returned) {
        dom = m->dom;
        virDomainRef(dom);
    }
    g_mutex_unlock(&m->lock);
    if (dom && virDomainAbortJob(dom) < 0)
        ret = cocoVirSetError(error, _("libvirt cannot abort the migration"));
    if (dom)
        virDomainFree(dom);
    return ret;
}

/* ---- getters ------------------------------------------------------------------- */

CocoClientMigrateState
cocoClientMigrateGetState(CocoClientMigrate *m)
{
    return m->state;
}

bool
cocoClientMigrateGetLibvirtDone(CocoClientMigrate *m)
{
    return m->libvirt_done;
}

const char *
cocoClientMigrateGetDomain(CocoClientMigrate *m)
{
    return m->domain;
}

const char *
cocoClientMigrateGetDestUri(CocoClientMigrate *m)
{
    return m->desturi;
}

const CocoClientRecord *
cocoClientMigrateGetRecord(CocoClientMigrate *m)
{
    return m->record;
}

const CocoClientMigrateResult *
cocoClientMigrateGetResult(CocoClientMigrate *m)
{
    return &m->result;
}

const GError *
cocoClientMigrateGetError(CocoClientMigrate *m)
{
    return m->error;
}
