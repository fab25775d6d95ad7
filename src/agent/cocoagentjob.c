/*
 * cocoagentjob.c: a confidential migration the agent starts through
 * libvirt for a client
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentjob.h"
#include "agent/cocoagentpreflight.h"
#include "agent/cocoagentvalidate.h"
#include "conf/cocomigrationdef.h"
#include "util/cocoerror.h"
#include "virt/cocovirt.h"

#include <libvirt/libvirt.h>

#define COCO_AGENT_JOB_POLL_MS 200
/* After libvirt returns, how long the job waits for the source agent's
 * record to end (Confirm ends it when QEMU exits). */
#define COCO_AGENT_JOB_SETTLE_US (5 * G_USEC_PER_SEC)
#define COCO_AGENT_JOB_PAGE_SIZE 4096

COCO_ENUM_IMPL(cocoAgentJobState, COCO_AGENT_JOB_STATE_LAST, "preflight",
               "running", "completed", "failed", "cancelled");

/* The libvirt flags a confidential migration can honour. PEER2PEER is
 * always added: libvirtd drives the migration, not the agent. */
#define COCO_AGENT_JOB_FLAGS                                                   \
 (VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |        \
  VIR_MIGRATE_UNDEFINE_SOURCE | VIR_MIGRATE_PAUSED |                           \
  VIR_MIGRATE_ABORT_ON_ERROR | VIR_MIGRATE_COMPRESSED |                        \
  VIR_MIGRATE_AUTO_CONVERGE)

struct _CocoAgentJob {
    gint refs;
    CocoAgent *agent;
    GMainContext *ctx;
    char *uri;
    char *domain;
    char *desturi;
    unsigned int flags;
    virTypedParameterPtr params;
    int nparams;
    int maxparams;
    int parallel; /* "parallel.connections": checked, not passed on */
    char *migrateuri;
    char *destxml;
    JsonObject *probe; /* the agent's own probe, taken in the main context */

    /* main context only */
    const CocoAgentJobCallbacks *cb;
    gpointer opaque;
    bool started;
    CocoAgentJobState state;
    char *phase;
    char *uuid;
    GHashTable *known; /* record ids that existed before the job */
    JsonObject *record;
    guint timeline_seen; /* entries of the record's timeline announced */
    GError *error;
    GSource *poll;
    gint64 settle_until;
    bool libvirt_done;
    bool abort_asked;

    /* shared with the worker and the abort thread */
    GMutex lock;
    virDomainPtr dom;
};

typedef enum {
    COCO_AGENT_JOB_EVENT_STARTED,
    COCO_AGENT_JOB_EVENT_DONE,
} CocoAgentJobEventType;

typedef struct {
    CocoAgentJob *job;
    CocoAgentJobEventType type;
    GError *error;
    char *uuid;
} CocoAgentJobEvent;

static void cocoAgentJobPollStop(CocoAgentJob *job);

CocoAgentJob *
cocoAgentJobRef(CocoAgentJob *job)
{
    g_atomic_int_inc(&job->refs);
    return job;
}

void
cocoAgentJobUnref(CocoAgentJob *job)
{
    if (!job || !g_atomic_int_dec_and_test(&job->refs))
        return;
    cocoAgentJobPollStop(job);
    if (job->dom)
        virDomainFree(job->dom);
    if (job->params)
        virTypedParamsFree(job->params, job->nparams);
    g_clear_pointer(&job->probe, json_object_unref);
    g_clear_pointer(&job->record, json_object_unref);
    g_clear_pointer(&job->known, g_hash_table_unref);
    g_clear_error(&job->error);
    g_main_context_unref(job->ctx);
    g_mutex_clear(&job->lock);
    g_free(job->uri);
    g_free(job->domain);
    g_free(job->desturi);
    g_free(job->migrateuri);
    g_free(job->destxml);
    g_free(job->phase);
    g_free(job->uuid);
    g_free(job);
}

CocoAgentJob *
cocoAgentJobNew(CocoAgent *agent, const char *uri, const char *domain,
                const char *desturi, unsigned int flags, GError **error)
{
    CocoAgentJob *job;

    if (!domain || !*domain) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG, "%s",
                     _("the 'domain' argument of 'Migrate' is empty"));
        return NULL;
    }
    if (!desturi || !*desturi) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG, "%s",
                     _("the 'dest_uri' argument of 'Migrate' is empty"));
        return NULL;
    }
    if (flags & VIR_MIGRATE_TUNNELLED) {
        cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED, "%s",
            _("flag VIR_MIGRATE_TUNNELLED is refused: the agents move the guest's private memory between the hosts themselves, libvirt's tunnel carries nothing confidential"));
        return NULL;
    }
    if (flags & VIR_MIGRATE_OFFLINE) {
        cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED, "%s",
            _("flag VIR_MIGRATE_OFFLINE is refused: an offline migration moves only the definition, there is no confidential state to move"));
        return NULL;
    }
    if (flags & ~(unsigned int)COCO_AGENT_JOB_FLAGS) {
        cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("migration flags '0x%1$x' are not supported for a confidential migration (supported: '0x%2$x')"),
            flags & ~(unsigned int)COCO_AGENT_JOB_FLAGS,
            (unsigned int)COCO_AGENT_JOB_FLAGS);
        return NULL;
    }
    job = g_new0(CocoAgentJob, 1);
    job->refs = 1;
    job->agent = agent;
    job->ctx = g_main_context_ref_thread_default();
    job->uri = g_strdup(uri);
    job->domain = g_strdup(domain);
    job->desturi = g_strdup(desturi);
    job->flags = flags | VIR_MIGRATE_PEER2PEER;
    job->state = COCO_AGENT_JOB_STATE_PREFLIGHT;
    job->phase = g_strdup("preflight");
    g_mutex_init(&job->lock);
    return job;
}

/* libvirt's parameters a client may set, with their D-Bus types. */
static const struct {
    const char *name;
    const char *type;
} cocoAgentJobParams[] = {
    {VIR_MIGRATE_PARAM_URI, "s"},
    {VIR_MIGRATE_PARAM_DEST_NAME, "s"},
    {VIR_MIGRATE_PARAM_DEST_XML, "s"},
    {VIR_MIGRATE_PARAM_PERSIST_XML, "s"},
    {VIR_MIGRATE_PARAM_LISTEN_ADDRESS, "s"},
    {VIR_MIGRATE_PARAM_BANDWIDTH, "t"},
    {VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS, "i"},
};

int
cocoAgentJobAddParam(CocoAgentJob *job, const char *name, GVariant *value,
                     GError **error)
{
    const char *type = g_variant_get_type_string(value);
    size_t i;
    int rc;

    for (i = 0; i < G_N_ELEMENTS(cocoAgentJobParams); i++)
        if (STREQ(cocoAgentJobParams[i].name, name))
            break;
    if (i == G_N_ELEMENTS(cocoAgentJobParams))
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("unknown migration parameter '%1$s' (known: migrate_uri, dest_name, dest_xml, persistent_xml, listen_address, bandwidth, parallel.connections)"),
            name);
    if (STRNEQ(type, cocoAgentJobParams[i].type))
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("migration parameter '%1$s' has D-Bus type '%2$s', expected '%3$s'"),
            name, type, cocoAgentJobParams[i].type);
    if (virTypedParamsGet(job->params, job->nparams, name) ||
        (STREQ(name, VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS) && job->parallel))
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
         * preflight, not given to libvirt (QEMU's own stream carries only
         * device state). */
        job->parallel = n;
        return 0;
    }
    if (STREQ(type, "s")) {
        const char *s = g_variant_get_string(value, NULL);

        if (!*s)
            return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                                _("migration parameter '%1$s' is empty"), name);
        if (STREQ(name, VIR_MIGRATE_PARAM_URI))
            job->migrateuri = g_strdup(s);
        if (STREQ(name, VIR_MIGRATE_PARAM_DEST_XML))
            job->destxml = g_strdup(s);
        rc = virTypedParamsAddString(&job->params, &job->nparams,
                                     &job->maxparams, name, s);
    } else {
        rc = virTypedParamsAddULLong(&job->params, &job->nparams,
                                     &job->maxparams, name,
                                     g_variant_get_uint64(value));
    }
    if (rc < 0)
        return cocoVirSetError(error,
                               _("cannot build the migration parameters"));
    return 0;
}

/* ---- the worker ---------------------------------------------------------- */

static void
cocoAgentJobEventFree(CocoAgentJobEvent *ev)
{
    g_clear_error(&ev->error);
    g_free(ev->uuid);
    cocoAgentJobUnref(ev->job);
    g_free(ev);
}

static gboolean cocoAgentJobOnEvent(gpointer opaque);

static void
cocoAgentJobPost(CocoAgentJob *job, CocoAgentJobEventType type, GError *error,
                 const char *uuid)
{
    CocoAgentJobEvent *ev = g_new0(CocoAgentJobEvent, 1);
    GSource *idle;

    ev->job = cocoAgentJobRef(job);
    ev->type = type;
    ev->error = error;
    ev->uuid = g_strdup(uuid);
    /* Always queued in the job's context, never run in this thread. */
    idle = g_idle_source_new();
    g_source_set_callback(idle, cocoAgentJobOnEvent, ev,
                          (GDestroyNotify)cocoAgentJobEventFree);
    g_source_attach(idle, job->ctx);
    g_source_unref(idle);
}

/* What "virt-coco migrate --confidential" checks before calling libvirt. */
static int
cocoAgentJobPreflight(CocoAgentJob *job, virConnectPtr conn, char **uuid,
                      GError **error)
{
    g_autoptr(CocoMigrationDef) def = NULL;
    g_autofree char *element = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *host = NULL;
    char uuidstr[VIR_UUID_STRING_BUFLEN];
    CocoValidateReport report = {.what = job->domain};
    virDomainPtr dom;
    char *text;
    int ret;

    if (!(dom = cocoVirLookupDomain(conn, job->domain, error)))
        return -1;
    g_mutex_lock(&job->lock);
    job->dom = dom;
    g_mutex_unlock(&job->lock);
    if (virDomainGetUUIDString(dom, uuidstr) < 0)
        return cocoVirSetError(error, _("cannot get the domain's UUID"));
    *uuid = g_strdup(uuidstr);
    if (cocoVirGetMetadata(dom, VIR_DOMAIN_AFFECT_CURRENT, &element, error) < 0)
        return -1;
    if (!element)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_CONFIGURED,
            _("domain '%1$s' has no <coco:migration> element, so its migration cannot be confidential; migrate it with plain libvirt calls"),
            job->domain);
    if (!(text = virDomainGetXMLDesc(dom, 0)))
        return cocoVirSetError(error, _("failed to get the domain's XML"));
    xml = g_strdup(text);
    free(text);
    ret = cocoValidateText(xml, &report, &def, error);
    g_clear_pointer(&report.skip_reason, g_free);
    if (ret < 0)
        return -1;
    if (job->destxml) {
        g_autoptr(CocoMigrationDef) ddef = NULL;

        report.what = VIR_MIGRATE_PARAM_DEST_XML;
        ret = cocoValidateText(job->destxml, &report, &ddef, error);
        g_clear_pointer(&report.skip_reason, g_free);
        if (ret < 0)
            return -1;
    }
    if (cocoPreflightCheckStreams(job->parallel,
                                  VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS, def,
                                  error) < 0)
        return -1;

    /* The host the agents will use: the migration URI's, else the
     * destination URI's, else the destination libvirt's host name. */
    if (job->migrateuri) {
        if (cocoPreflightUriHost(job->migrateuri, &host, error) < 0)
            return -1;
    } else if (cocoPreflightUriHost(job->desturi, &host, error) < 0) {
        return -1;
    }
    if (!host && !(host = cocoVirHostname(NULL, job->desturi, error)))
        return -1;
    return cocoPreflightHosts(cocoAgentGetConfig(job->agent)->socket_path,
                              job->probe, host, def, xml, job->domain, error);
}

static gpointer
cocoAgentJobWorker(gpointer opaque)
{
    g_autoptr(CocoAgentJob) job = opaque;
    g_autoptr(virConnect) conn = NULL;
    g_autofree char *uuid = NULL;
    GError *err = NULL;
    virDomainPtr dom;

    if (!(conn = cocoVirConnect(job->uri, &err))) {
        cocoErrorPrefix(&err, _("cannot connect to the local libvirt '%1$s': "),
                        job->uri);
        cocoAgentJobPost(job, COCO_AGENT_JOB_EVENT_STARTED, err, NULL);
        return NULL;
    }
    if (cocoAgentJobPreflight(job, conn, &uuid, &err) < 0) {
        cocoAgentJobPost(job, COCO_AGENT_JOB_EVENT_STARTED, err, uuid);
        return NULL;
    }
    cocoAgentJobPost(job, COCO_AGENT_JOB_EVENT_STARTED, NULL, uuid);

    g_mutex_lock(&job->lock);
    dom = job->dom;
    g_mutex_unlock(&job->lock);
    if (virDomainMigrateToURI3(dom, job->desturi, job->params,
                               (unsigned int)job->nparams, job->flags) < 0)
        cocoVirSetError(&err, _("the migration failed"));
    cocoAgentJobPost(job, COCO_AGENT_JOB_EVENT_DONE, err, NULL);
    return NULL;
}

void
cocoAgentJobStart(CocoAgentJob *job, const CocoAgentJobCallbacks *cb,
                  gpointer opaque)
{
    g_return_if_fail(!job->started);
    job->started = true;
    job->cb = cb;
    job->opaque = opaque;
    job->known = cocoAgentGetRecordIds(job->agent);
    job->probe = cocoAgentGetProbe(job->agent);
    g_thread_unref(
        g_thread_new("coco-job", cocoAgentJobWorker, cocoAgentJobRef(job)));
}

void
cocoAgentJobDetach(CocoAgentJob *job)
{
    job->cb = NULL;
    job->opaque = NULL;
}

/* ---- the main context ---------------------------------------------------- */

/* A number of the record (of its member object @obj), 0 without one. */
static guint64
cocoAgentJobRecordInt(JsonObject *rec, const char *obj, const char *member)
{
    JsonObject *o = obj && rec ? json_object_get_object_member(rec, obj) : rec;
    gint64 v = o ? json_object_get_int_member_with_default(o, member, 0) : 0;

    return v > 0 ? (guint64)v : 0;
}

static bool
cocoAgentJobRecordOver(JsonObject *rec)
{
    const char *st =
        json_object_get_string_member_with_default(rec, "state", "");

    return STREQ(st, "finished") || STREQ(st, "aborted") ||
           STREQ(st, "frozen") || STREQ(st, "committed") || STREQ(st, "failed");
}

static void
cocoAgentJobPollStop(CocoAgentJob *job)
{
    if (!job->poll)
        return;
    g_source_destroy(job->poll);
    g_clear_pointer(&job->poll, g_source_unref);
}

static void
cocoAgentJobFinish(CocoAgentJob *job)
{
    cocoAgentJobPollStop(job);
    if (job->error)
        job->state = job->abort_asked ? COCO_AGENT_JOB_STATE_CANCELLED
                                      : COCO_AGENT_JOB_STATE_FAILED;
    else
        job->state = COCO_AGENT_JOB_STATE_COMPLETED;
    g_mutex_lock(&job->lock);
    g_clear_pointer(&job->dom, virDomainFree);
    g_mutex_unlock(&job->lock);
    if (job->cb && job->cb->finished)
        job->cb->finished(job, job->opaque);
}

/* A new phase: announce it (with the numbers of the current record). */
static void
cocoAgentJobSetPhase(CocoAgentJob *job, const char *phase)
{
    g_free(job->phase);
    job->phase = g_strdup(phase);
    if (job->cb && job->cb->changed)
        job->cb->changed(job, true, job->opaque);
}

/* Read the source agent's record of our migration; true while the job
 * should go on polling. */
static bool
cocoAgentJobPoll(CocoAgentJob *job)
{
    g_autoptr(JsonObject) rec = NULL;
    bool phase = false;

    if (job->uuid && (rec = cocoAgentFindRecord(job->agent, job->uuid, "source",
                                                job->known))) {
        JsonArray *tl = json_object_get_array_member(rec, "timeline");
        guint n = tl ? json_array_get_length(tl) : 0;

        g_clear_pointer(&job->record, json_object_unref);
        job->record = json_object_ref(rec);
        /* Every phase the record's timeline went through since the last
         * poll, in order: a phase shorter than the poll is not lost. */
        for (; job->timeline_seen < n; job->timeline_seen++) {
            JsonObject *e =
                json_array_get_object_element(tl, job->timeline_seen);
            const char *to =
                e ? json_object_get_string_member_with_default(e, "to", "")
                  : "";

            if (*to && STRNEQ(to, job->phase)) {
                cocoAgentJobSetPhase(job, to);
                phase = true;
            }
        }
        /* A record without a timeline (a start that failed). */
        {
            const char *st =
                json_object_get_string_member_with_default(rec, "state", "");

            if (*st && STRNEQ(st, job->phase)) {
                cocoAgentJobSetPhase(job, st);
                phase = true;
            }
        }
        if (!phase && job->cb && job->cb->changed)
            job->cb->changed(job, false, job->opaque);
    }
    if (!job->libvirt_done)
        return true;
    /* Done once the record ended too; at once when libvirt failed before
     * any agent took part. */
    if ((job->record && cocoAgentJobRecordOver(job->record)) ||
        (!job->record && job->error) ||
        g_get_monotonic_time() >= job->settle_until) {
        cocoAgentJobFinish(job);
        return false;
    }
    return true;
}

static gboolean
cocoAgentJobOnPoll(gpointer opaque)
{
    CocoAgentJob *job = opaque;

    if (cocoAgentJobPoll(job))
        return G_SOURCE_CONTINUE;
    return G_SOURCE_REMOVE;
}

static void
cocoAgentJobPollStart(CocoAgentJob *job)
{
    job->poll = g_timeout_source_new(COCO_AGENT_JOB_POLL_MS);
    g_source_set_callback(job->poll, cocoAgentJobOnPoll, job, NULL);
    g_source_attach(job->poll, job->ctx);
}

static gboolean
cocoAgentJobOnEvent(gpointer opaque)
{
    CocoAgentJobEvent *ev = opaque;
    CocoAgentJob *job = ev->job;

    switch (ev->type) {
    case COCO_AGENT_JOB_EVENT_STARTED:
        job->uuid = g_steal_pointer(&ev->uuid);
        if (ev->error) {
            job->error = g_steal_pointer(&ev->error);
            job->state = COCO_AGENT_JOB_STATE_FAILED;
            if (job->cb && job->cb->started)
                job->cb->started(job, job->error, job->opaque);
            cocoAgentJobFinish(job);
            break;
        }
        job->state = COCO_AGENT_JOB_STATE_RUNNING;
        g_free(job->phase);
        job->phase = g_strdup("begin");
        cocoAgentJobPollStart(job);
        if (job->cb && job->cb->started)
            job->cb->started(job, NULL, job->opaque);
        break;
    case COCO_AGENT_JOB_EVENT_DONE:
        job->libvirt_done = true;
        job->settle_until = g_get_monotonic_time() + COCO_AGENT_JOB_SETTLE_US;
        if (ev->error) {
            job->error = g_steal_pointer(&ev->error);
            if (job->abort_asked)
                cocoErrorPrefix(&job->error,
                                _("the migration was aborted on request: "));
        }
        cocoAgentJobPoll(job);
        break;
    }
    return G_SOURCE_REMOVE;
}

/* ---- abort --------------------------------------------------------------- */

static void
cocoAgentJobAbortThread(GTask *task, gpointer source G_GNUC_UNUSED,
                        gpointer opaque, GCancellable *cancel G_GNUC_UNUSED)
{
    CocoAgentJob *job = opaque;
    virDomainPtr dom = NULL;
    g_autoptr(GError) err = NULL;

    g_mutex_lock(&job->lock);
    if (job->dom) {
        dom = job->dom;
        virDomainRef(dom);
    }
    g_mutex_unlock(&job->lock);
    if (!dom) {
        cocoErrorSet(
            &err, COCO_ERROR_MIGRATION_PHASE,
            _("the migration of domain '%1$s' is over: nothing to abort"),
            job->domain);
    } else if (virDomainAbortJob(dom) < 0) {
        cocoVirSetError(&err, _("libvirt cannot abort the migration"));
    }
    if (dom)
        virDomainFree(dom);
    if (err)
        g_task_return_error(task, g_steal_pointer(&err));
    else
        g_task_return_boolean(task, TRUE);
}

void
cocoAgentJobAbort(CocoAgentJob *job, GAsyncReadyCallback callback,
                  gpointer opaque)
{
    g_autoptr(GTask) task = g_task_new(NULL, NULL, callback, opaque);

    g_task_set_task_data(task, cocoAgentJobRef(job),
                         (GDestroyNotify)cocoAgentJobUnref);
    if (job->state != COCO_AGENT_JOB_STATE_RUNNING || job->libvirt_done) {
        g_task_return_new_error(
            task, COCO_ERROR, COCO_ERROR_MIGRATION_PHASE,
            _("the migration of domain '%1$s' is '%2$s': only a running one can be aborted"),
            job->domain, cocoAgentJobStateTypeToString(job->state));
        return;
    }
    job->abort_asked = true;
    g_task_run_in_thread(task, cocoAgentJobAbortThread);
}

int
cocoAgentJobAbortFinish(CocoAgentJob *job G_GNUC_UNUSED, GAsyncResult *res,
                        GError **error)
{
    return g_task_propagate_boolean(G_TASK(res), error) ? 0 : -1;
}

/* ---- getters ------------------------------------------------------------- */

CocoAgentJobState
cocoAgentJobGetState(CocoAgentJob *job)
{
    return job->state;
}

const char *
cocoAgentJobGetDomain(CocoAgentJob *job)
{
    return job->domain;
}

const char *
cocoAgentJobGetDestUri(CocoAgentJob *job)
{
    return job->desturi;
}

const char *
cocoAgentJobGetPhase(CocoAgentJob *job)
{
    return job->phase;
}

const char *
cocoAgentJobGetMigrationId(CocoAgentJob *job)
{
    return job->record ? json_object_get_string_member_with_default(job->record,
                                                                    "id", "")
                       : "";
}

JsonObject *
cocoAgentJobGetRecord(CocoAgentJob *job)
{
    return job->record ? json_object_ref(job->record) : NULL;
}

guint64
cocoAgentJobGetDataTotal(CocoAgentJob *job)
{
    return cocoAgentJobRecordInt(job->record, NULL, "pages") *
           COCO_AGENT_JOB_PAGE_SIZE;
}

guint64
cocoAgentJobGetDataProcessed(CocoAgentJob *job)
{
    return cocoAgentJobRecordInt(job->record, "transfer", "bytes");
}

unsigned int
cocoAgentJobGetProgress(CocoAgentJob *job)
{
    guint64 total = cocoAgentJobRecordInt(job->record, NULL, "pages");
    guint64 sent = cocoAgentJobRecordInt(job->record, "transfer", "pages");

    if (job->state == COCO_AGENT_JOB_STATE_COMPLETED)
        return 100;
    if (!total)
        return 0;
    return sent >= total ? 99 : (unsigned int)(sent * 100 / total);
}

unsigned int
cocoAgentJobGetEpoch(CocoAgentJob *job)
{
    return (unsigned int)cocoAgentJobRecordInt(job->record, "transfer",
                                               "epoch");
}

guint64
cocoAgentJobGetDowntime(CocoAgentJob *job)
{
    return cocoAgentJobRecordInt(job->record, "counters", "downtime_us") / 1000;
}

const GError *
cocoAgentJobGetError(CocoAgentJob *job)
{
    return job->error;
}
