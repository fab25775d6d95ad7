/*
 * cocoagentjob.c: a confidential migration the agent starts through
 * libvirt for a client (the D-Bus face of the migration driver)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentjob.h"
#include "client/cococlientmigrate.h"
#include "util/cocoerror.h"

#include <libvirt/libvirt.h>

#define COCO_AGENT_JOB_PAGE_SIZE 4096

COCO_ENUM_IMPL(cocoAgentJobState, COCO_AGENT_JOB_STATE_LAST, "preflight",
               "running", "completed", "failed", "cancelled");

struct _CocoAgentJob {
    gint refs;
    CocoClientMigrate *m;

    /* main context only */
    const CocoAgentJobCallbacks *cb;
    gpointer opaque;
    bool started;
    char *phase;
};

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
    cocoClientMigrateDetach(job->m);
    cocoClientMigrateUnref(job->m);
    g_free(job->phase);
    g_free(job);
}

CocoAgentJob *
cocoAgentJobNew(CocoAgent *agent, const char *uri, const char *domain,
                const char *desturi, unsigned int flags, GError **error)
{
    g_autoptr(CocoClientMigrate) m = NULL;
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
    /* libvirtd drives the migration, not the agent. */
    if (!(m = cocoClientMigrateNew(uri, domain, desturi, error)) ||
        cocoClientMigrateSetFlags(m, flags | VIR_MIGRATE_PEER2PEER, error) < 0)
        return NULL;
    /* The driver reads this agent's record through its own socket. */
    cocoClientMigrateSetAgentSocket(m, cocoAgentGetConfig(agent)->socket_path);
    job = g_new0(CocoAgentJob, 1);
    job->refs = 1;
    job->m = g_steal_pointer(&m);
    job->phase = g_strdup("preflight");
    return job;
}

int
cocoAgentJobAddParam(CocoAgentJob *job, const char *name, GVariant *value,
                     GError **error)
{
    return cocoClientMigrateAddParam(job->m, name, value, error);
}

/* ---- the driver's callbacks --------------------------------------------- */

static void
cocoAgentJobSetPhase(CocoAgentJob *job, const char *phase)
{
    g_free(job->phase);
    job->phase = g_strdup(phase);
    if (job->cb && job->cb->changed)
        job->cb->changed(job, true, job->opaque);
}

static void
cocoAgentJobOnStarted(CocoClientMigrate *m G_GNUC_UNUSED, const GError *error,
                      gpointer opaque)
{
    CocoAgentJob *job = opaque;

    if (!error) {
        g_free(job->phase);
        job->phase = g_strdup("begin");
    }
    if (job->cb && job->cb->started)
        job->cb->started(job, error, job->opaque);
}

/* Every phase the record's timeline went through, in order: a phase
 * shorter than the driver's poll is not lost. */
static void
cocoAgentJobOnEntry(CocoClientMigrate *m G_GNUC_UNUSED,
                    const CocoClientRecord *rec, guint index, gpointer opaque)
{
    CocoAgentJob *job = opaque;
    const CocoClientRecordEntry *e = g_ptr_array_index(rec->timeline, index);

    if (*e->to && STRNEQ(e->to, job->phase))
        cocoAgentJobSetPhase(job, e->to);
}

static void
cocoAgentJobOnRecord(CocoClientMigrate *m G_GNUC_UNUSED,
                     const CocoClientRecord *rec, gpointer opaque)
{
    CocoAgentJob *job = opaque;

    /* A record without a timeline (a start that failed). */
    if (*rec->state && STRNEQ(rec->state, job->phase))
        cocoAgentJobSetPhase(job, rec->state);
    else if (job->cb && job->cb->changed)
        job->cb->changed(job, false, job->opaque);
}

static void
cocoAgentJobOnWarning(CocoClientMigrate *m, const char *message,
                      gpointer opaque G_GNUC_UNUSED)
{
    g_warning("virtcocod: migration of '%s': %s", cocoClientMigrateGetDomain(m),
              message);
}

static void
cocoAgentJobOnFinished(CocoClientMigrate *m G_GNUC_UNUSED, gpointer opaque)
{
    CocoAgentJob *job = opaque;

    if (job->cb && job->cb->finished)
        job->cb->finished(job, job->opaque);
}

static const CocoClientMigrateCallbacks cocoAgentJobCallbacks = {
    .started = cocoAgentJobOnStarted,
    .entry = cocoAgentJobOnEntry,
    .record = cocoAgentJobOnRecord,
    .warning = cocoAgentJobOnWarning,
    .finished = cocoAgentJobOnFinished,
};

void
cocoAgentJobStart(CocoAgentJob *job, const CocoAgentJobCallbacks *cb,
                  gpointer opaque)
{
    g_return_if_fail(!job->started);
    job->started = true;
    job->cb = cb;
    job->opaque = opaque;
    cocoClientMigrateStart(job->m, g_main_context_get_thread_default(),
                           &cocoAgentJobCallbacks, job);
}

void
cocoAgentJobDetach(CocoAgentJob *job)
{
    job->cb = NULL;
    job->opaque = NULL;
}

/* ---- abort --------------------------------------------------------------- */

static void
cocoAgentJobAbortThread(GTask *task, gpointer source G_GNUC_UNUSED,
                        gpointer opaque, GCancellable *cancel G_GNUC_UNUSED)
{
    CocoAgentJob *job = opaque;
    g_autoptr(GError) err = NULL;

    if (cocoClientMigrateAbort(job->m, &err) < 0)
        g_task_return_error(task, g_steal_pointer(&err));
    else
        g_task_return_boolean(task, TRUE);
}

void
cocoAgentJobAbort(CocoAgentJob *job, GAsyncReadyCallback callback,
                  gpointer opaque)
{
    g_autoptr(GTask) task = g_task_new(NULL, NULL, callback, opaque);
    CocoAgentJobState st = cocoAgentJobGetState(job);

    g_task_set_task_data(task, cocoAgentJobRef(job),
                         (GDestroyNotify)cocoAgentJobUnref);
    if (st != COCO_AGENT_JOB_STATE_RUNNING ||
        cocoClientMigrateGetLibvirtDone(job->m)) {
        g_task_return_new_error(
            task, COCO_ERROR, COCO_ERROR_MIGRATION_PHASE,
            _("the migration of domain '%1$s' is '%2$s': only a running one can be aborted"),
            cocoAgentJobGetDomain(job), cocoAgentJobStateTypeToString(st));
        return;
    }
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
    switch (cocoClientMigrateGetState(job->m)) {
    case COCO_CLIENT_MIGRATE_PREFLIGHT:
        return COCO_AGENT_JOB_STATE_PREFLIGHT;
    case COCO_CLIENT_MIGRATE_RUNNING:
        return COCO_AGENT_JOB_STATE_RUNNING;
    case COCO_CLIENT_MIGRATE_COMPLETED:
        return COCO_AGENT_JOB_STATE_COMPLETED;
    case COCO_CLIENT_MIGRATE_CANCELLED:
        return COCO_AGENT_JOB_STATE_CANCELLED;
    case COCO_CLIENT_MIGRATE_FAILED:
    case COCO_CLIENT_MIGRATE_LAST:
    default:
        return COCO_AGENT_JOB_STATE_FAILED;
    }
}

const char *
cocoAgentJobGetDomain(CocoAgentJob *job)
{
    return cocoClientMigrateGetDomain(job->m);
}

const char *
cocoAgentJobGetDestUri(CocoAgentJob *job)
{
    return cocoClientMigrateGetDestUri(job->m);
}

const char *
cocoAgentJobGetPhase(CocoAgentJob *job)
{
    return job->phase;
}

const char *
cocoAgentJobGetMigrationId(CocoAgentJob *job)
{
    const CocoClientRecord *rec = cocoClientMigrateGetRecord(job->m);

    return rec ? rec->id : "";
}

JsonObject *
cocoAgentJobGetRecord(CocoAgentJob *job)
{
    const CocoClientRecord *rec = cocoClientMigrateGetRecord(job->m);

    return rec ? json_object_ref(rec->json) : NULL;
}

guint64
cocoAgentJobGetDataTotal(CocoAgentJob *job)
{
    const CocoClientRecord *rec = cocoClientMigrateGetRecord(job->m);

    return rec ? rec->pages * COCO_AGENT_JOB_PAGE_SIZE : 0;
}

guint64
cocoAgentJobGetDataProcessed(CocoAgentJob *job)
{
    const CocoClientRecord *rec = cocoClientMigrateGetRecord(job->m);

    return rec ? rec->bytes : 0;
}

unsigned int
cocoAgentJobGetProgress(CocoAgentJob *job)
{
    const CocoClientRecord *rec = cocoClientMigrateGetRecord(job->m);

    if (cocoAgentJobGetState(job) == COCO_AGENT_JOB_STATE_COMPLETED)
        return 100;
    if (!rec)
        return 0;
    return MIN(cocoClientRecordProgress(rec), 99);
}

unsigned int
cocoAgentJobGetEpoch(CocoAgentJob *job)
{
    const CocoClientRecord *rec = cocoClientMigrateGetRecord(job->m);

    return rec ? (unsigned int)rec->epoch : 0;
}

guint64
cocoAgentJobGetDowntime(CocoAgentJob *job)
{
    const CocoClientRecord *rec = cocoClientMigrateGetRecord(job->m);

    return rec ? rec->downtime_us / 1000 : 0;
}

const GError *
cocoAgentJobGetError(CocoAgentJob *job)
{
    return cocoClientMigrateGetError(job->m);
}
