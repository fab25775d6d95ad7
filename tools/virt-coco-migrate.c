/*
 * virt-coco-migrate.c: "virt-coco migrate --confidential"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A confidential live migration through libvirt's public API, with
 * virsh's option names, after a preflight of both hosts' agents
 * (docs/virt-coco.rst). The migration call runs in a worker thread; the
 * main thread prints progress, polls the source agent's record for phase
 * events and handles SIGINT/SIGTERM (virDomainAbortJob, once).
 */

#include "virt-coco.h"
#include "agent/cocoagentpreflight.h"
#include "agent/cocoagentconfig.h"
#include "agent/cocoagentpeer.h"
#include "conf/cocomigrationdef.h"
#include "proto/cocoproto.h"
#include "firmware/cocoemu.h"
#include "util/cocofd.h"
#include "virt/cocovirt.h"

#include <errno.h>
#include <glib-unix.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define COCO_MIGRATE_POLL_MS 250
#define COCO_MIGRATE_SOCKET_ENV "VIRT_COCO_AGENT_SOCKET"

typedef struct {
    /* options */
    gboolean confidential;
    gboolean live;
    gboolean offline;
    gboolean p2p;
    gboolean persistent;
    gboolean undefinesource;
    gboolean suspend;
    gboolean verbose;
    gboolean abort_on_error;
    gboolean compressed;
    gboolean timeline;
    gint timeout;
    gint64 bandwidth;
    gint parallel;
    char *dname;
    char *xmlfile;
    char *migrateuri;
    char *listen_address;
    char *agent_socket;
    /* arguments */
    const char *domname;
    const char *desturi;
} CocoMigrateOpts;

typedef struct {
    CocoCtl *ctl;
    CocoMigrateOpts *o;
    virDomainPtr dom;
    virConnectPtr dconn;
    virTypedParameterPtr params;
    int nparams;
    unsigned int flags;
    GMainContext *ctx;

    /* the worker's result */
    GThread *worker;
    bool done; /* under lock */
    int ret;
    GError *error;
    gint64 t_start;
    gint64 t_end;

    /* the source agent's status connection (-1: none or not allowed) */
    int status_fd;
    GString *status_in;
    bool status_pending;
    GHashTable *known; /* record ids that existed before we started */
    char *mig_id; /* our record, once seen */
    guint emitted; /* timeline entries printed */
    JsonObject *record; /* the newest copy of our record */

    /* progress */
    GMutex lock; /* done and the progress numbers */
    GCond cond;
    GThread *progress;
    int last_percent; /* -1: nothing printed */
    unsigned long long data_total;
    unsigned long long data_remaining;
    guint progress_seq;
    guint progress_sent;
    bool in_stats; /* the progress thread is in virDomainGetJobStats() */
    bool stop_stats; /* an abort was asked for: no more job statistics */
    gint64 last_progress_json;
    guint timeout_id;
    bool aborted;
    bool suspended;
} CocoMigrateJob;

/* ---- output ------------------------------------------------------------- */

static void
cocoMigratePrintObject(CocoCtl *ctl, JsonObject *obj)
{
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

    json_node_set_object(node, obj);
    cocoCtlPrintJson(ctl, node);
}

static void
cocoMigrateSetOptInt(JsonObject *obj, const char *name, bool have, gint64 v)
{
    if (have)
        json_object_set_int_member(obj, name, v);
    else
        json_object_set_null_member(obj, name);
}

/* The last line of every run with --json; on stderr, "error: ...". */
static int
cocoMigrateResult(CocoCtl *ctl, const GError *error, bool have_downtime,
                  gint64 downtime_ms, bool have_total, gint64 total_ms,
                  bool have_bytes, gint64 bytes)
{
    int ret = COCO_EXIT_OK;

    if (error) {
        int code =
            error->domain == COCO_ERROR ? error->code : COCO_ERROR_INTERNAL;
        g_autofree char *oneline =
            g_strdelimit(g_strdup(error->message), "\n", ' ');

        fprintf(stderr, _("error: %1$s\n"), oneline);
        ret = code == COCO_ERROR_USAGE ? COCO_EXIT_USAGE : COCO_EXIT_REJECTED;
        if (ctl->json) {
            g_autoptr(JsonObject) obj = json_object_new();
            JsonObject *eo = json_object_new();
            const char *nick = cocoErrorCodeToString(code);
            int vir = cocoErrorGetLibvirtCode(error);

            json_object_set_int_member(eo, "code", code);
            json_object_set_string_member(eo, "nick", nick ? nick : "unknown");
            json_object_set_string_member(eo, "message", oneline);
            if (vir)
                json_object_set_int_member(eo, "libvirt_code", vir);
            json_object_set_string_member(obj, "event", "result");
            json_object_set_boolean_member(obj, "ok", FALSE);
            json_object_set_object_member(obj, "error", eo);
            cocoMigrateSetOptInt(obj, "downtime_ms", have_downtime,
                                 downtime_ms);
            cocoMigrateSetOptInt(obj, "total_ms", have_total, total_ms);
            cocoMigrateSetOptInt(obj, "bytes", have_bytes, bytes);
            cocoMigratePrintObject(ctl, obj);
        }
        return ret;
    }
    if (ctl->json) {
        g_autoptr(JsonObject) obj = json_object_new();

        json_object_set_string_member(obj, "event", "result");
        json_object_set_boolean_member(obj, "ok", TRUE);
        json_object_set_null_member(obj, "error");
        cocoMigrateSetOptInt(obj, "downtime_ms", have_downtime, downtime_ms);
        cocoMigrateSetOptInt(obj, "total_ms", have_total, total_ms);
        cocoMigrateSetOptInt(obj, "bytes", have_bytes, bytes);
        cocoMigratePrintObject(ctl, obj);
    }
    return ret;
}

static int
cocoMigrateFail(CocoCtl *ctl, const GError *error)
{
    return cocoMigrateResult(ctl, error, false, 0, false, 0, false, 0);
}

/* ---- the source agent's unix socket -------------------------------------- */

/* ---- preflight --------------------------------------------------------- */

/* The host the agents will use: that of the migration URI when given,
 * else that of DESTURI, else the destination libvirt's own host name
 * (which libvirt also puts in the migration URI it makes up). */
static int
cocoMigrateDestHost(CocoMigrateJob *job, const char *migrateuri, char **host,
                    GError **error)
{
    if (migrateuri)
        return cocoPreflightUriHost(migrateuri, host, error);
    if (cocoPreflightUriHost(job->o->desturi, host, error) < 0)
        return -1;
    if (*host)
        return 0;
    return (*host = cocoVirHostname(job->dconn, job->o->desturi, error)) ? 0
                                                                         : -1;
}

static char *
cocoMigrateSocketPath(const CocoMigrateOpts *o)
{
    const char *env = g_getenv(COCO_MIGRATE_SOCKET_ENV);

    if (o->agent_socket)
        return g_strdup(o->agent_socket);
    if (env && *env)
        return g_strdup(env);
    return g_strdup(COCO_AGENT_DEFAULT_SOCKET);
}

/* Both hosts' agents, their firmware, the policy and the emulator. */
static int
cocoMigratePreflight(CocoMigrateJob *job, const CocoMigrationDef *def,
                     const char *xml, const char *migrateuri, GError **error)
{
    CocoMigrateOpts *o = job->o;
    g_autofree char *path = cocoMigrateSocketPath(o);
    g_autoptr(GString) in = g_string_new(NULL);
    g_autoptr(JsonObject) src = NULL;
    g_autofree char *host = NULL;
    g_autoptr(GError) err = NULL;
    int fd;

    /* (a) the source host's agent */
    if ((fd = cocoPreflightAgentConnect(path)) < 0)
        return cocoErrorSetSystem(
            error, -fd,
            _("the source host's agent is not reachable at '%1$s' (is virtcocod running?)"),
            path);
    src = cocoPreflightAgentRequest(fd, in, "probe", &err);
    close(fd);
    if (!src || STRNEQ(cocoJsonStringDefault(src, "type", ""), "probe"))
        return cocoErrorSet(
            error, COCO_ERROR_QMP_AGENT,
            _("the source host's agent at '%1$s' did not answer the probe: %2$s"),
            path,
            err ? err->message : cocoJsonStringDefault(src, "reason", "?"));
    /* (b) the destination host's agent, where the source agent will go,
     * (c) firmware, (d) policy, (e) emulator */
    if (cocoMigrateDestHost(job, migrateuri, &host, error) < 0)
        return -1;
    return cocoPreflightHosts(path, src, host, def, xml, o->domname, error);
}

/* ---- the source agent's record ------------------------------------------- */

/* Open the status connection; when the agent refuses (not root), say so
 * once and go on without phase events. */
static void
cocoMigrateStatusOpen(CocoMigrateJob *job)
{
    g_autofree char *path = cocoMigrateSocketPath(job->o);
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonObject) obj = NULL;
    JsonArray *arr;
    guint i;
    int fd;

    job->status_fd = -1;
    job->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if ((fd = cocoPreflightAgentConnect(path)) < 0)
        cocoErrorSetSystem(&err, -fd, _("cannot connect to '%1$s'"), path);
    if (fd < 0 ||
        !(obj =
              cocoPreflightAgentRequest(fd, job->status_in, "status", &err)) ||
        STRNEQ(json_object_get_string_member_with_default(obj, "type", ""),
               "status")) {
        fprintf(
            stderr,
            _("warning: cannot read the source agent's migration status (%1$s); no phase events\n"),
            err ? err->message
                : json_object_get_string_member_with_default(obj, "reason",
                                                             "?"));
        if (fd >= 0)
            close(fd);
        return;
    }
    arr = json_object_get_array_member(obj, "migrations");
    for (i = 0; arr && i < json_array_get_length(arr); i++) {
        JsonObject *rec = json_array_get_object_element(arr, i);
        const char *id =
            json_object_get_string_member_with_default(rec, "id", NULL);

        if (id)
            g_hash_table_add(job->known, g_strdup(id));
    }
    job->status_fd = fd;
}

static JsonArray *
cocoMigrateSteps(const char *steps)
{
    JsonArray *arr = json_array_new();
    g_auto(GStrv) parts = NULL;
    size_t i;

    if (!steps || !*steps)
        return arr;
    parts = g_strsplit(steps, ",", -1);
    for (i = 0; parts[i]; i++) {
        g_strstrip(parts[i]);
        if (*parts[i])
            json_array_add_string_element(arr, parts[i]);
    }
    return arr;
}

/* Emit the timeline entries of our record not printed yet. */
static void
cocoMigrateEmitPhases(CocoMigrateJob *job)
{
    JsonArray *tl;
    guint n;

    if (!job->record || !job->ctl->json)
        return;
    tl = json_object_get_array_member(job->record, "timeline");
    n = tl ? json_array_get_length(tl) : 0;
    for (; job->emitted < n; job->emitted++) {
        JsonObject *e = json_array_get_object_element(tl, job->emitted);
        g_autoptr(JsonObject) obj = json_object_new();

        json_object_set_string_member(obj, "event", "phase");
        json_object_set_string_member(obj, "migration", job->mig_id);
        json_object_set_string_member(
            obj, "phase",
            json_object_get_string_member_with_default(e, "phase", ""));
        json_object_set_string_member(
            obj, "from",
            json_object_get_string_member_with_default(e, "from", ""));
        json_object_set_string_member(
            obj, "to", json_object_get_string_member_with_default(e, "to", ""));
        json_object_set_array_member(
            obj, "steps",
            cocoMigrateSteps(
                json_object_get_string_member_with_default(e, "steps", "")));
        json_object_set_double_member(
            obj, "duration_ms",
            json_object_get_double_member_with_default(e, "duration_ms", 0));
        json_object_set_double_member(
            obj, "at_ms",
            json_object_get_double_member_with_default(e, "at_ms", 0));
        if (json_object_has_member(e, "error"))
            json_object_set_string_member(
                obj, "error",
                json_object_get_string_member_with_default(e, "error", ""));
        cocoMigratePrintObject(job->ctl, obj);
    }
}

/* A status answer: find our record (the newest source record of this
 * domain that did not exist before we started). */
static void
cocoMigrateOnStatus(CocoMigrateJob *job, JsonObject *status)
{
    JsonArray *arr = json_object_get_array_member(status, "migrations");
    const char *name = virDomainGetName(job->dom);
    guint i;

    for (i = 0; arr && i < json_array_get_length(arr); i++) {
        JsonObject *rec = json_array_get_object_element(arr, i);
        const char *id =
            json_object_get_string_member_with_default(rec, "id", "");
        const char *role =
            json_object_get_string_member_with_default(rec, "role", "");
        const char *dom =
            json_object_get_string_member_with_default(rec, "domain", "");

        if (job->mig_id ? STRNEQ(id, job->mig_id)
                        : (STRNEQ(role, "source") || STRNEQ(dom, name) ||
                           g_hash_table_contains(job->known, id)))
            continue;
        if (!job->mig_id)
            job->mig_id = g_strdup(id);
        g_clear_pointer(&job->record, json_object_unref);
        job->record = json_object_ref(rec);
    }
    cocoMigrateEmitPhases(job);
}

/* Read what the agent sent; false when the connection is gone. */
static bool
cocoMigrateStatusRead(CocoMigrateJob *job)
{
    char buf[65536];
    JsonObject *obj;
    bool got;
    ssize_t n = recv(job->status_fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (n <= 0) {
        close(job->status_fd);
        job->status_fd = -1;
        return false;
    }
    g_string_append_len(job->status_in, buf, n);
    while ((obj = cocoPreflightTakeLine(job->status_in, &got)) || got) {
        if (!obj)
            continue;
        if (STREQ(json_object_get_string_member_with_default(obj, "type", ""),
                  "status")) {
            job->status_pending = false;
            cocoMigrateOnStatus(job, obj);
        }
        json_object_unref(obj);
    }
    return true;
}

static gboolean
cocoMigrateOnStatusIn(gint fd G_GNUC_UNUSED, GIOCondition cond G_GNUC_UNUSED,
                      gpointer opaque)
{
    CocoMigrateJob *job = opaque;

    return cocoMigrateStatusRead(job) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void
cocoMigrateStatusPoll(CocoMigrateJob *job)
{
    if (job->status_fd < 0 || job->status_pending)
        return;
    if (cocoPreflightAgentSend(job->status_fd, "status", NULL) < 0) {
        close(job->status_fd);
        job->status_fd = -1;
        return;
    }
    job->status_pending = true;
}

static bool
cocoMigrateRecordOver(JsonObject *rec)
{
    const char *state =
        rec ? json_object_get_string_member_with_default(rec, "state", "") : "";

    return STREQ(state, "finished") || STREQ(state, "committed") ||
           STREQ(state, "aborted") || STREQ(state, "frozen") ||
           STREQ(state, "failed");
}

/* After the migration: blocking status requests for the final state of
 * the record (the source's session ends when its QEMU is gone, just after
 * libvirt's Confirm; give it COCO_PREFLIGHT_AGENT_TIMEOUT seconds). */
static void
cocoMigrateStatusFinal(CocoMigrateJob *job)
{
    struct timeval tv = {.tv_sec = COCO_PREFLIGHT_AGENT_TIMEOUT};
    gint64 deadline =
        g_get_monotonic_time() + COCO_PREFLIGHT_AGENT_TIMEOUT * G_USEC_PER_SEC;

    if (job->status_fd < 0)
        return;
    /* Let a pending answer arrive first. */
    while (job->status_pending && job->status_fd >= 0) {
        fd_set rfds;
        struct timeval t = tv;

        FD_ZERO(&rfds);
        FD_SET(job->status_fd, &rfds);
        if (select(job->status_fd + 1, &rfds, NULL, NULL, &t) <= 0)
            return;
        cocoMigrateStatusRead(job);
    }
    while (job->status_fd >= 0) {
        g_autoptr(JsonObject) obj = NULL;

        if (!(obj = cocoPreflightAgentRequest(job->status_fd, job->status_in,
                                              "status", NULL)) ||
            STRNEQ(json_object_get_string_member_with_default(obj, "type", ""),
                   "status"))
            return;
        cocoMigrateOnStatus(job, obj);
        if (!job->record || cocoMigrateRecordOver(job->record) ||
            g_get_monotonic_time() > deadline)
            return;
        g_usleep(50 * 1000);
    }
}

/* ---- progress, timeout and signals --------------------------------------- */

/* One look at libvirt's job, in the progress thread: the "\rMigration:"
 * line with --verbose, the numbers kept for the JSON progress event. */
static void
cocoMigrateProgressOnce(CocoMigrateJob *job)
{
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int type = VIR_DOMAIN_JOB_NONE;
    unsigned long long total = 0;
    unsigned long long remaining = 0;
    int percent;
    int rc;

    g_mutex_lock(&job->lock);
    if (job->stop_stats) {
        g_mutex_unlock(&job->lock);
        return;
    }
    job->in_stats = true;
    g_mutex_unlock(&job->lock);
    rc = virDomainGetJobStats(job->dom, &type, &params, &nparams, 0);
    g_mutex_lock(&job->lock);
    job->in_stats = false;
    g_cond_broadcast(&job->cond);
    g_mutex_unlock(&job->lock);
    if (rc < 0) {
        virResetLastError();
        return;
    }
    virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DATA_TOTAL, &total);
    virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DATA_REMAINING,
                            &remaining);
    virTypedParamsFree(params, nparams);
    if (type == VIR_DOMAIN_JOB_NONE || total == 0)
        return;
    /* Done only when the call returns: at most 99 % meanwhile. */
    percent = remaining >= total
                  ? 0
                  : (int)((double)(total - remaining) * 100.0 / (double)total);
    if (percent > 99)
        percent = 99;
    g_mutex_lock(&job->lock);
    if (!job->done) {
        if (job->o->verbose)
            fprintf(stderr, "\r%s: [%3d %%]", _("Migration"), percent);
        job->last_percent = percent;
        job->data_total = total;
        job->data_remaining = remaining;
        job->progress_seq++;
    }
    g_mutex_unlock(&job->lock);
}

/* libvirt's job statistics may wait for the migration's monitor commands:
 * a thread of their own keeps the main thread free for signals. */
static gpointer
cocoMigrateProgressThread(gpointer opaque)
{
    CocoMigrateJob *job = opaque;

    g_mutex_lock(&job->lock);
    while (!job->done) {
        gint64 until = g_get_monotonic_time() +
                       COCO_MIGRATE_POLL_MS * G_TIME_SPAN_MILLISECOND;

        g_mutex_unlock(&job->lock);
        cocoMigrateProgressOnce(job);
        g_mutex_lock(&job->lock);
        while (!job->done && g_cond_wait_until(&job->cond, &job->lock, until))
            ;
    }
    g_mutex_unlock(&job->lock);
    return NULL;
}

/* The JSON progress event, at most once a second. */
static void
cocoMigrateProgressJson(CocoMigrateJob *job)
{
    g_autoptr(JsonObject) obj = NULL;
    gint64 now = g_get_monotonic_time();

    if (job->last_progress_json &&
        now - job->last_progress_json < G_USEC_PER_SEC)
        return;
    g_mutex_lock(&job->lock);
    if (job->progress_seq != job->progress_sent) {
        job->progress_sent = job->progress_seq;
        obj = json_object_new();
        json_object_set_string_member(obj, "event", "progress");
        json_object_set_int_member(obj, "percent", job->last_percent);
        json_object_set_int_member(obj, "data_total", (gint64)job->data_total);
        json_object_set_int_member(obj, "data_remaining",
                                   (gint64)job->data_remaining);
    }
    g_mutex_unlock(&job->lock);
    if (!obj)
        return;
    job->last_progress_json = now;
    cocoMigratePrintObject(job->ctl, obj);
}

static gboolean
cocoMigrateOnTick(gpointer opaque)
{
    CocoMigrateJob *job = opaque;

    if (job->ctl->json)
        cocoMigrateProgressJson(job);
    cocoMigrateStatusPoll(job);
    return G_SOURCE_CONTINUE;
}

static bool
cocoMigrateIsDone(CocoMigrateJob *job)
{
    bool done;

    g_mutex_lock(&job->lock);
    done = job->done;
    g_mutex_unlock(&job->lock);
    return done;
}

/* virsh's --timeout: suspend the guest so that the migration completes. */
static gboolean
cocoMigrateOnTimeout(gpointer opaque)
{
    CocoMigrateJob *job = opaque;

    job->timeout_id = 0;
    if (cocoMigrateIsDone(job))
        return G_SOURCE_REMOVE;
    job->suspended = true;
    if (virDomainSuspend(job->dom) < 0) {
        virErrorPtr e = virGetLastError();

        fprintf(
            stderr,
            _("warning: cannot suspend the domain after the timeout: %1$s\n"),
            e && e->message ? e->message : "?");
        virResetLastError();
    }
    return G_SOURCE_REMOVE;
}

/* SIGINT/SIGTERM: abort the job once (as virsh does) and keep waiting. */
static gboolean
cocoMigrateOnSignal(gpointer opaque)
{
    CocoMigrateJob *job = opaque;

    if (job->aborted || cocoMigrateIsDone(job))
        return G_SOURCE_CONTINUE;
    job->aborted = true;
    /* libvirt 9.0 was seen to hang the migration for good when a job
     * statistics query met the cancel (the lab's SIGINT scenario): stop
     * asking, and let a query under way end first. */
    g_mutex_lock(&job->lock);
    job->stop_stats = true;
    while (job->in_stats && !job->done)
        g_cond_wait(&job->cond, &job->lock);
    g_mutex_unlock(&job->lock);
    if (virDomainAbortJob(job->dom) < 0) {
        virErrorPtr e = virGetLastError();

        fprintf(stderr, _("warning: cannot abort the migration: %1$s\n"),
                e && e->message ? e->message : "?");
        virResetLastError();
    }
    return G_SOURCE_CONTINUE;
}

static gpointer
cocoMigrateWorker(gpointer opaque)
{
    CocoMigrateJob *job = opaque;
    virDomainPtr ddom = NULL;

    if (job->o->p2p) {
        job->ret = virDomainMigrateToURI3(
            job->dom, job->o->desturi, job->params, job->nparams, job->flags);
    } else {
        ddom = virDomainMigrate3(job->dom, job->dconn, job->params,
                                 job->nparams, job->flags);
        job->ret = ddom ? 0 : -1;
    }
    if (job->ret < 0)
        cocoVirSetError(&job->error, _("the migration failed"));
    if (ddom)
        virDomainFree(ddom);
    job->t_end = g_get_monotonic_time();
    g_mutex_lock(&job->lock);
    job->done = true;
    g_cond_broadcast(&job->cond);
    g_mutex_unlock(&job->lock);
    g_main_context_wakeup(job->ctx);
    return NULL;
}

/* ---- after the migration ---------------------------------------------- */

static gint64
cocoMigrateRecordInt(JsonObject *rec, const char *obj, const char *member,
                     gint64 fallback)
{
    JsonObject *o = rec ? json_object_get_object_member(rec, obj) : NULL;

    return o ? json_object_get_int_member_with_default(o, member, fallback)
             : fallback;
}

/* libvirt's downtime of the completed job, from the destination. */
static bool
cocoMigrateDestDowntime(CocoMigrateJob *job, gint64 *downtime_ms)
{
    g_autoptr(virDomain) ddom = NULL;
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int type = 0;
    unsigned long long v = 0;
    bool ok = false;
    const char *name =
        job->o->dname ? job->o->dname : virDomainGetName(job->dom);

    if (!job->dconn || !(ddom = virDomainLookupByName(job->dconn, name))) {
        virResetLastError();
        return false;
    }
    if (virDomainGetJobStats(ddom, &type, &params, &nparams,
                             VIR_DOMAIN_JOB_STATS_COMPLETED |
                                 VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) == 0 &&
        virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DOWNTIME, &v) ==
            1) {
        *downtime_ms = (gint64)v;
        ok = true;
    }
    virTypedParamsFree(params, nparams);
    virResetLastError();
    return ok;
}

static void
cocoMigratePrintTimeline(CocoMigrateJob *job, bool have_libvirt_downtime,
                         gint64 libvirt_downtime)
{
    JsonObject *rec = job->record;
    JsonArray *tl;
    guint i;

    if (job->ctl->json) {
        g_autoptr(JsonObject) obj = json_object_new();

        json_object_set_string_member(obj, "event", "timeline");
        if (rec)
            json_object_set_object_member(obj, "record", json_object_ref(rec));
        else
            json_object_set_null_member(obj, "record");
        cocoMigrateSetOptInt(obj, "libvirt_downtime_ms", have_libvirt_downtime,
                             libvirt_downtime);
        cocoMigratePrintObject(job->ctl, obj);
        return;
    }
    if (!rec) {
        printf("%s\n",
               _("No migration record of the source agent is available."));
        return;
    }
    printf(
        _("Migration %1$s: %2$s -> %3$s, state %4$s, %5$lld streams\n"),
        json_object_get_string_member_with_default(rec, "id", "?"),
        json_object_get_string_member_with_default(rec, "domain", "?"),
        json_object_get_string_member_with_default(rec, "peer", "?"),
        json_object_get_string_member_with_default(rec, "state", "?"),
        (long long)json_object_get_int_member_with_default(rec, "streams", 0));
    printf("  %10s %10s  %-32s %-24s %s\n", _("at ms"), _("took ms"),
           _("phase"), _("state"), _("steps"));
    tl = json_object_get_array_member(rec, "timeline");
    for (i = 0; tl && i < json_array_get_length(tl); i++) {
        JsonObject *e = json_array_get_object_element(tl, i);
        g_autofree char *states = g_strdup_printf(
            "%s->%s", json_object_get_string_member_with_default(e, "from", ""),
            json_object_get_string_member_with_default(e, "to", ""));

        printf("  %10.3f %10.3f  %-32s %-24s [%s]%s%s\n",
               json_object_get_double_member_with_default(e, "at_ms", 0),
               json_object_get_double_member_with_default(e, "duration_ms", 0),
               json_object_get_string_member_with_default(e, "phase", ""),
               states,
               json_object_get_string_member_with_default(e, "steps", ""),
               json_object_has_member(e, "error") ? " error=" : "",
               json_object_get_string_member_with_default(e, "error", ""));
    }
    printf(
        _("Transfer: %1$lld bytes, %2$lld pages, %3$lld bundles, epoch %4$lld, %5$lld ms\n"),
        (long long)cocoMigrateRecordInt(rec, "transfer", "bytes", 0),
        (long long)cocoMigrateRecordInt(rec, "transfer", "pages", 0),
        (long long)cocoMigrateRecordInt(rec, "transfer", "bundles", 0),
        (long long)cocoMigrateRecordInt(rec, "transfer", "epoch", 0),
        (long long)cocoMigrateRecordInt(rec, "transfer", "elapsed_ms", 0));
    printf(
        _("Messages: %1$lld sent (%2$lld bytes), %3$lld received (%4$lld bytes), %5$lld firmware calls\n"),
        (long long)cocoMigrateRecordInt(rec, "counters", "messages_sent", 0),
        (long long)cocoMigrateRecordInt(rec, "counters", "message_bytes_sent",
                                        0),
        (long long)cocoMigrateRecordInt(rec, "counters", "messages_received",
                                        0),
        (long long)cocoMigrateRecordInt(rec, "counters",
                                        "message_bytes_received", 0),
        (long long)cocoMigrateRecordInt(rec, "counters", "fw_calls", 0));
    printf(
        _("Downtime: agent %1$.3f ms (from SOURCE_BLACKOUT, %2$.3f ms after the session started)\n"),
        (double)cocoMigrateRecordInt(rec, "counters", "downtime_us", 0) /
            1000.0,
        (double)cocoMigrateRecordInt(rec, "counters", "blackout_us", 0) /
            1000.0);
    if (have_libvirt_downtime)
        printf(
            _("Downtime: libvirt %1$lld ms (the destination's completed job)\n"),
            (long long)libvirt_downtime);
    if (json_object_has_member(rec, "failure") &&
        !json_object_get_null_member(rec, "failure"))
        printf(_("Failure: %1$s\n"),
               json_object_get_string_member_with_default(rec, "failure", ""));
    fflush(stdout);
}

/* ---- the command ------------------------------------------------------- */

static int
cocoMigrateBuildParams(CocoMigrateJob *job, const char *migrateuri,
                       const char *destxml, GError **error)
{
    CocoMigrateOpts *o = job->o;
    int max = 0;

    if (migrateuri &&
        virTypedParamsAddString(&job->params, &job->nparams, &max,
                                VIR_MIGRATE_PARAM_URI, migrateuri) < 0)
        goto error;
    if (o->dname &&
        virTypedParamsAddString(&job->params, &job->nparams, &max,
                                VIR_MIGRATE_PARAM_DEST_NAME, o->dname) < 0)
        goto error;
    if (destxml &&
        virTypedParamsAddString(&job->params, &job->nparams, &max,
                                VIR_MIGRATE_PARAM_DEST_XML, destxml) < 0)
        goto error;
    if (o->bandwidth > 0 &&
        virTypedParamsAddULLong(&job->params, &job->nparams, &max,
                                VIR_MIGRATE_PARAM_BANDWIDTH,
                                (unsigned long long)o->bandwidth) < 0)
        goto error;
    if (o->listen_address &&
        virTypedParamsAddString(&job->params, &job->nparams, &max,
                                VIR_MIGRATE_PARAM_LISTEN_ADDRESS,
                                o->listen_address) < 0)
        goto error;

    if (o->live)
        job->flags |= VIR_MIGRATE_LIVE;
    if (o->p2p)
        job->flags |= VIR_MIGRATE_PEER2PEER;
    if (o->persistent)
        job->flags |= VIR_MIGRATE_PERSIST_DEST;
    if (o->undefinesource)
        job->flags |= VIR_MIGRATE_UNDEFINE_SOURCE;
    if (o->suspend)
        job->flags |= VIR_MIGRATE_PAUSED;
    if (o->abort_on_error)
        job->flags |= VIR_MIGRATE_ABORT_ON_ERROR;
    if (o->compressed)
        job->flags |= VIR_MIGRATE_COMPRESSED;
    return 0;

error:
    return cocoVirSetError(error, _("cannot build the migration parameters"));
}

/* The checks that need no host: options and the domain's element. */
static int
cocoMigrateCheckOptions(CocoMigrateOpts *o, int argc, char **argv,
                        const char **migrateuri, GError **error)
{
    if (!o->confidential)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED, "%s",
            _("virt-coco migrate needs '--confidential'; use 'virsh migrate' for a migration that need not be confidential"));
    if (argc < 3 || argc > 4)
        return cocoErrorSet(error, COCO_ERROR_USAGE, "%s",
                            _("expected DOMAIN DESTURI [MIGRATEURI]"));
    o->domname = argv[1];
    o->desturi = argv[2];
    *migrateuri = o->migrateuri;
    if (argc == 4) {
        if (o->migrateuri && STRNEQ(o->migrateuri, argv[3]))
            return cocoErrorSet(
                error, COCO_ERROR_USAGE,
                _("MIGRATEURI '%1$s' and '--migrateuri %2$s' disagree"),
                argv[3], o->migrateuri);
        *migrateuri = argv[3];
    }
    if (o->offline)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED, "%s",
            _("'--offline' is refused: an offline migration moves only the definition, there is no confidential state to move; use 'virsh migrate --offline'"));
    if (o->timeout < 0)
        return cocoErrorSet(
            error, COCO_ERROR_USAGE,
            _("option '--timeout' needs a positive number of seconds, not '%1$d'"),
            o->timeout);
    if (o->timeout > 0 && !o->live)
        return cocoErrorSet(error, COCO_ERROR_USAGE, "%s",
                            _("option '--timeout' needs '--live'"));
    if (o->bandwidth < 0)
        return cocoErrorSet(error, COCO_ERROR_USAGE,
                            _("option '--bandwidth' needs MiB/s, not '%1$lld'"),
                            (long long)o->bandwidth);
    return 0;
}

static void
cocoMigrateOptsClear(CocoMigrateOpts *o)
{
    g_free(o->dname);
    g_free(o->xmlfile);
    g_free(o->migrateuri);
    g_free(o->listen_address);
    g_free(o->agent_socket);
}

static void
cocoMigrateJobClear(CocoMigrateJob *job)
{
    g_mutex_clear(&job->lock);
    g_cond_clear(&job->cond);
    if (job->status_fd >= 0)
        close(job->status_fd);
    if (job->status_in)
        g_string_free(job->status_in, TRUE);
    g_clear_pointer(&job->known, g_hash_table_unref);
    g_clear_pointer(&job->record, json_object_unref);
    g_free(job->mig_id);
    if (job->params)
        virTypedParamsFree(job->params, job->nparams);
    g_clear_error(&job->error);
    if (job->dconn)
        virConnectClose(job->dconn);
    if (job->dom)
        virDomainFree(job->dom);
}

/* Run the migration in the worker; progress, status and signals here. */
static void
cocoMigrateRun(CocoMigrateJob *job)
{
    GSource *status_src = NULL;
    guint tick;
    guint sigint;
    guint sigterm;

    job->ctx = g_main_context_default();
    sigint = g_unix_signal_add(SIGINT, cocoMigrateOnSignal, job);
    sigterm = g_unix_signal_add(SIGTERM, cocoMigrateOnSignal, job);
    if (job->status_fd >= 0) {
        status_src = g_unix_fd_source_new(job->status_fd, G_IO_IN | G_IO_HUP);
        g_source_set_callback(
            status_src, (GSourceFunc)(void (*)(void))cocoMigrateOnStatusIn, job,
            NULL);
        g_source_attach(status_src, job->ctx);
    }
    tick = g_timeout_add(COCO_MIGRATE_POLL_MS, cocoMigrateOnTick, job);
    if (job->o->timeout > 0)
        job->timeout_id = g_timeout_add_seconds((guint)job->o->timeout,
                                                cocoMigrateOnTimeout, job);

    job->t_start = g_get_monotonic_time();
    job->worker = g_thread_new("migrate", cocoMigrateWorker, job);
    if (job->o->verbose || job->ctl->json)
        job->progress =
            g_thread_new("progress", cocoMigrateProgressThread, job);
    while (!cocoMigrateIsDone(job))
        g_main_context_iteration(job->ctx, TRUE);
    g_thread_join(job->worker);
    if (job->progress)
        g_thread_join(job->progress);

    g_source_remove(tick);
    g_clear_handle_id(&job->timeout_id, g_source_remove);
    if (status_src) {
        g_source_destroy(status_src);
        g_source_unref(status_src);
    }
    g_source_remove(sigint);
    g_source_remove(sigterm);
}

int
cocoCmdMigrate(CocoCtl *ctl, int argc, char **argv)
{
    CocoMigrateOpts o = {0};
    GOptionEntry entries[] = {
        {"confidential", 0, 0, G_OPTION_ARG_NONE, &o.confidential,
         N_("migrate the guest's private state through the agents (required)"),
         NULL},
        {"live", 0, 0, G_OPTION_ARG_NONE, &o.live, N_("live migration"), NULL},
        {"offline", 0, 0, G_OPTION_ARG_NONE, &o.offline,
         N_("refused: nothing confidential to move"), NULL},
        {"p2p", 0, 0, G_OPTION_ARG_NONE, &o.p2p, N_("peer-2-peer migration"),
         NULL},
        {"persistent", 0, 0, G_OPTION_ARG_NONE, &o.persistent,
         N_("persist the domain on the destination"), NULL},
        {"undefinesource", 0, 0, G_OPTION_ARG_NONE, &o.undefinesource,
         N_("undefine the domain on the source"), NULL},
        {"suspend", 0, 0, G_OPTION_ARG_NONE, &o.suspend,
         N_("do not restart the domain on the destination"), NULL},
        {"verbose", 0, 0, G_OPTION_ARG_NONE, &o.verbose,
         N_("display the progress of the migration"), NULL},
        {"timeout", 0, 0, G_OPTION_ARG_INT, &o.timeout,
         N_("suspend the guest after N seconds of live migration"), N_("N")},
        {"bandwidth", 0, 0, G_OPTION_ARG_INT64, &o.bandwidth,
         N_("migration bandwidth limit of libvirt's stream in MiB/s"),
         N_("MIB")},
        {"parallel-connections", 0, 0, G_OPTION_ARG_INT, &o.parallel,
         N_("the agents' stream count; must match <coco:streams>"), N_("N")},
        {"dname", 0, 0, G_OPTION_ARG_STRING, &o.dname,
         N_("rename the domain on the destination"), N_("NAME")},
        {"xml", 0, 0, G_OPTION_ARG_FILENAME, &o.xmlfile,
         N_("the domain XML for the destination"), N_("FILE")},
        {"migrateuri", 0, 0, G_OPTION_ARG_STRING, &o.migrateuri,
         N_("migration URI, usually can be omitted"), N_("URI")},
        {"listen-address", 0, 0, G_OPTION_ARG_STRING, &o.listen_address,
         N_("the address the destination listens on"), N_("ADDRESS")},
        {"abort-on-error", 0, 0, G_OPTION_ARG_NONE, &o.abort_on_error,
         N_("abort on soft errors during migration"), NULL},
        {"compressed", 0, 0, G_OPTION_ARG_NONE, &o.compressed,
         N_("compress libvirt's stream (device state only)"), NULL},
        {"agent-socket", 0, 0, G_OPTION_ARG_FILENAME, &o.agent_socket,
         N_("the source host agent's socket"), N_("PATH")},
        {"timeline", 0, 0, G_OPTION_ARG_NONE, &o.timeline,
         N_("print the source agent's record of the migration afterwards"),
         NULL},
        G_OPTION_ENTRY_NULL,
    };
    CocoMigrateJob job = {
        .ctl = ctl, .o = &o, .status_fd = -1, .last_percent = -1};
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoMigrationDef) def = NULL;
    g_autofree char *element = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *destxml = NULL;
    g_autoptr(virConnect) conn = NULL;
    const char *migrateuri = NULL;
    gint64 downtime = 0;
    gint64 bytes = 0;
    bool have_downtime = false;
    bool have_bytes = false;
    int ret;

    if (!cocoCtlParseOptions(ctl, entries, &argc, &argv)) {
        cocoMigrateOptsClear(&o);
        return COCO_EXIT_USAGE;
    }
    g_mutex_init(&job.lock);
    g_cond_init(&job.cond);
    job.status_in = g_string_new(NULL);
    if (cocoMigrateCheckOptions(&o, argc, argv, &migrateuri, &err) < 0)
        goto fail;

    cocoVirInitialize();
    if (!(conn = cocoVirConnect(ctl->uri, &err)) ||
        !(job.dom = cocoVirLookupDomain(conn, o.domname, &err)) ||
        cocoVirGetMetadata(job.dom, VIR_DOMAIN_AFFECT_CURRENT, &element, &err) <
            0)
        goto fail;
    if (!element) {
        cocoErrorSet(
            &err, COCO_ERROR_NOT_CONFIGURED,
            _("domain '%1$s' has no <coco:migration> element, so its migration cannot be confidential; use 'virsh migrate' for it"),
            o.domname);
        goto fail;
    }
    {
        char *text = virDomainGetXMLDesc(job.dom, 0);

        if (!text) {
            cocoVirSetError(&err, _("failed to get the domain's XML"));
            goto fail;
        }
        xml = g_strdup(text);
        free(text);
    }
    if (cocoValidateDomainText(xml, o.domname, &def, &err) < 0 ||
        cocoPreflightCheckStreams(o.parallel, "--parallel-connections", def,
                                  &err) < 0)
        goto fail;
    if (o.xmlfile) {
        g_autoptr(CocoMigrationDef) ddef = NULL;
        g_autoptr(GError) rerr = NULL;

        if (!g_file_get_contents(o.xmlfile, &destxml, NULL, &rerr)) {
            cocoErrorSet(&err, COCO_ERROR_SYSTEM, _("cannot read '%1$s': %2$s"),
                         o.xmlfile, rerr->message);
            goto fail;
        }
        if (cocoValidateDomainText(destxml, o.xmlfile, &ddef, &err) < 0)
            goto fail;
    }

    if (!o.p2p && !(job.dconn = cocoVirConnect(o.desturi, &err))) {
        cocoErrorPrefix(&err, _("cannot connect to the destination '%1$s': "),
                        o.desturi);
        goto fail;
    }
    if (cocoMigratePreflight(&job, def, xml, migrateuri, &err) < 0 ||
        cocoMigrateBuildParams(&job, migrateuri, destxml, &err) < 0)
        goto fail;

    if (ctl->json || o.timeline)
        cocoMigrateStatusOpen(&job);
    cocoMigrateRun(&job);
    if (o.verbose && job.ret == 0)
        fprintf(stderr, "\r%s: [100 %%]\n", _("Migration"));
    else if (o.verbose && job.last_percent >= 0)
        fputc('\n', stderr);
    cocoMigrateStatusFinal(&job);

    if (job.ret == 0)
        have_downtime = cocoMigrateDestDowntime(&job, &downtime);
    if (o.timeline)
        cocoMigratePrintTimeline(&job, have_downtime, downtime);
    if (!have_downtime && job.record &&
        json_object_get_object_member(job.record, "counters")) {
        downtime =
            cocoMigrateRecordInt(job.record, "counters", "downtime_us", 0) /
            1000;
        have_downtime = true;
    }
    if (job.record && json_object_get_object_member(job.record, "transfer")) {
        bytes = cocoMigrateRecordInt(job.record, "transfer", "bytes", 0);
        have_bytes = true;
    }
    ret = cocoMigrateResult(ctl, job.ret < 0 ? job.error : NULL, have_downtime,
                            downtime, true, (job.t_end - job.t_start) / 1000,
                            have_bytes, bytes);
    cocoMigrateJobClear(&job);
    cocoMigrateOptsClear(&o);
    return ret;

fail:
    ret = cocoMigrateFail(ctl, err);
    cocoMigrateJobClear(&job);
    cocoMigrateOptsClear(&o);
    return ret;
}
