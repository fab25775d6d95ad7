/*
 * virt-coco-migrate.c: "virt-coco migrate --confidential"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * virsh 9.0's "migrate" options and rules on top of the one migration
 * driver (client/cococlientmigrate.h), which the agent's D-Bus Migrate()
 * uses too: the driver refuses what a confidential migration cannot
 * honour, runs the preflight, the libvirt call and the check of the
 * result; this file maps the options, prints progress (--verbose), the
 * JSON event stream (--json) and the source agent's record (--timeline),
 * and turns SIGINT/SIGTERM into the driver's abort (docs/virt-coco.rst).
 */

#include "virt-coco.h"
#include "client/cococlienthostdev.h"
#include "client/cococlientmigrate.h"
#include "virt/cocovirt.h"

#include <glib-unix.h>
#include <signal.h>
#include <stddef.h>

/* An INT64 option not given. */
#define COCO_MIGRATE_UNSET G_MININT64

typedef struct {
    gboolean confidential;
    gboolean live;
    gboolean offline;
    gboolean p2p;
    gboolean direct;
    gboolean tunnelled;
    gboolean persistent;
    gboolean undefinesource;
    gboolean suspend;
    gboolean copy_storage_all;
    gboolean copy_storage_inc;
    gboolean copy_storage_sync;
    gboolean change_protection;
    gboolean unsafe;
    gboolean verbose;
    gboolean compressed;
    gboolean auto_converge;
    gboolean rdma_pin_all;
    gboolean abort_on_error;
    gboolean postcopy;
    gboolean postcopy_after_precopy;
    gboolean postcopy_resume;
    gboolean zerocopy;
    gboolean timeout_suspend;
    gboolean timeout_postcopy;
    gboolean tls;
    gboolean parallel;
    gboolean timeline;
    char *domain;
    char *desturi;
    char *migrateuri;
    char *graphicsuri;
    char *listen_address;
    char *dname;
    char *xml;
    char *migrate_disks;
    char *disks_uri;
    char *comp_methods;
    char *persistent_xml;
    char *tls_destination;
    char *agent_socket;
    gint64 timeout;
    gint64 disks_port;
    gint64 comp_mt_level;
    gint64 comp_mt_threads;
    gint64 comp_mt_dthreads;
    gint64 comp_xbzrle_cache;
    gint64 auto_converge_initial;
    gint64 auto_converge_increment;
    gint64 postcopy_bandwidth;
    gint64 parallel_connections;
    gint64 bandwidth;
} CocoMigrateOpts;

/* virsh's flag options and libvirt's flags. */
static const struct {
    size_t offset;
    unsigned int flag;
} cocoMigrateFlagOpts[] = {
    {offsetof(CocoMigrateOpts, live), VIR_MIGRATE_LIVE},
    {offsetof(CocoMigrateOpts, offline), VIR_MIGRATE_OFFLINE},
    {offsetof(CocoMigrateOpts, p2p), VIR_MIGRATE_PEER2PEER},
    {offsetof(CocoMigrateOpts, tunnelled), VIR_MIGRATE_TUNNELLED},
    {offsetof(CocoMigrateOpts, persistent), VIR_MIGRATE_PERSIST_DEST},
    {offsetof(CocoMigrateOpts, undefinesource), VIR_MIGRATE_UNDEFINE_SOURCE},
    {offsetof(CocoMigrateOpts, suspend), VIR_MIGRATE_PAUSED},
    {offsetof(CocoMigrateOpts, copy_storage_all), VIR_MIGRATE_NON_SHARED_DISK},
    {offsetof(CocoMigrateOpts, copy_storage_inc), VIR_MIGRATE_NON_SHARED_INC},
    {offsetof(CocoMigrateOpts, copy_storage_sync),
     VIR_MIGRATE_NON_SHARED_SYNCHRONOUS_WRITES},
    {offsetof(CocoMigrateOpts, change_protection),
     VIR_MIGRATE_CHANGE_PROTECTION},
    {offsetof(CocoMigrateOpts, unsafe), VIR_MIGRATE_UNSAFE},
    {offsetof(CocoMigrateOpts, compressed), VIR_MIGRATE_COMPRESSED},
    {offsetof(CocoMigrateOpts, auto_converge), VIR_MIGRATE_AUTO_CONVERGE},
    {offsetof(CocoMigrateOpts, rdma_pin_all), VIR_MIGRATE_RDMA_PIN_ALL},
    {offsetof(CocoMigrateOpts, abort_on_error), VIR_MIGRATE_ABORT_ON_ERROR},
    {offsetof(CocoMigrateOpts, postcopy), VIR_MIGRATE_POSTCOPY},
    {offsetof(CocoMigrateOpts, postcopy_resume), VIR_MIGRATE_POSTCOPY_RESUME},
    {offsetof(CocoMigrateOpts, zerocopy), VIR_MIGRATE_ZEROCOPY},
    {offsetof(CocoMigrateOpts, tls), VIR_MIGRATE_TLS},
    {offsetof(CocoMigrateOpts, parallel), VIR_MIGRATE_PARALLEL},
};

typedef enum {
    COCO_MIGRATE_PARAM_STRING, /* char * */
    COCO_MIGRATE_PARAM_FILE, /* char *: the file's contents */
    COCO_MIGRATE_PARAM_LIST, /* char *: "a,b,c" */
    COCO_MIGRATE_PARAM_INT, /* gint64, 0..G_MAXINT */
    COCO_MIGRATE_PARAM_ULLONG, /* gint64, >= 0 */
} CocoMigrateParamKind;

/* virsh's value options and libvirt's typed parameters. */
static const struct {
    size_t offset;
    CocoMigrateParamKind kind;
    const char *param;
    const char *option;
} cocoMigrateParamOpts[] = {
    {offsetof(CocoMigrateOpts, migrateuri), COCO_MIGRATE_PARAM_STRING,
     VIR_MIGRATE_PARAM_URI, "--migrateuri"},
    {offsetof(CocoMigrateOpts, graphicsuri), COCO_MIGRATE_PARAM_STRING,
     VIR_MIGRATE_PARAM_GRAPHICS_URI, "--graphicsuri"},
    {offsetof(CocoMigrateOpts, listen_address), COCO_MIGRATE_PARAM_STRING,
     VIR_MIGRATE_PARAM_LISTEN_ADDRESS, "--listen-address"},
    {offsetof(CocoMigrateOpts, dname), COCO_MIGRATE_PARAM_STRING,
     VIR_MIGRATE_PARAM_DEST_NAME, "--dname"},
    {offsetof(CocoMigrateOpts, xml), COCO_MIGRATE_PARAM_FILE,
     VIR_MIGRATE_PARAM_DEST_XML, "--xml"},
    {offsetof(CocoMigrateOpts, migrate_disks), COCO_MIGRATE_PARAM_LIST,
     VIR_MIGRATE_PARAM_MIGRATE_DISKS, "--migrate-disks"},
    {offsetof(CocoMigrateOpts, disks_port), COCO_MIGRATE_PARAM_INT,
     VIR_MIGRATE_PARAM_DISKS_PORT, "--disks-port"},
    {offsetof(CocoMigrateOpts, disks_uri), COCO_MIGRATE_PARAM_STRING,
     VIR_MIGRATE_PARAM_DISKS_URI, "--disks-uri"},
    {offsetof(CocoMigrateOpts, comp_methods), COCO_MIGRATE_PARAM_LIST,
     VIR_MIGRATE_PARAM_COMPRESSION, "--comp-methods"},
    {offsetof(CocoMigrateOpts, comp_mt_level), COCO_MIGRATE_PARAM_INT,
     VIR_MIGRATE_PARAM_COMPRESSION_MT_LEVEL, "--comp-mt-level"},
    {offsetof(CocoMigrateOpts, comp_mt_threads), COCO_MIGRATE_PARAM_INT,
     VIR_MIGRATE_PARAM_COMPRESSION_MT_THREADS, "--comp-mt-threads"},
    {offsetof(CocoMigrateOpts, comp_mt_dthreads), COCO_MIGRATE_PARAM_INT,
     VIR_MIGRATE_PARAM_COMPRESSION_MT_DTHREADS, "--comp-mt-dthreads"},
    {offsetof(CocoMigrateOpts, comp_xbzrle_cache), COCO_MIGRATE_PARAM_ULLONG,
     VIR_MIGRATE_PARAM_COMPRESSION_XBZRLE_CACHE, "--comp-xbzrle-cache"},
    {offsetof(CocoMigrateOpts, auto_converge_initial), COCO_MIGRATE_PARAM_INT,
     VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL, "--auto-converge-initial"},
    {offsetof(CocoMigrateOpts, auto_converge_increment), COCO_MIGRATE_PARAM_INT,
     VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT, "--auto-converge-increment"},
    {offsetof(CocoMigrateOpts, persistent_xml), COCO_MIGRATE_PARAM_FILE,
     VIR_MIGRATE_PARAM_PERSIST_XML, "--persistent-xml"},
    {offsetof(CocoMigrateOpts, postcopy_bandwidth), COCO_MIGRATE_PARAM_ULLONG,
     VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY, "--postcopy-bandwidth"},
    {offsetof(CocoMigrateOpts, parallel_connections), COCO_MIGRATE_PARAM_INT,
     VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS, "--parallel-connections"},
    {offsetof(CocoMigrateOpts, bandwidth), COCO_MIGRATE_PARAM_ULLONG,
     VIR_MIGRATE_PARAM_BANDWIDTH, "--bandwidth"},
    {offsetof(CocoMigrateOpts, tls_destination), COCO_MIGRATE_PARAM_STRING,
     VIR_MIGRATE_PARAM_TLS_DESTINATION, "--tls-destination"},
};

/* virsh's rules between options: the first needs the second, or they
 * exclude each other. */
static const struct {
    size_t a;
    const char *aname;
    size_t b;
    const char *bname;
    bool exclusive;
} cocoMigrateRules[] = {
    {offsetof(CocoMigrateOpts, live), "--live",
     offsetof(CocoMigrateOpts, offline), "--offline", true},
    {offsetof(CocoMigrateOpts, p2p), "--p2p", offsetof(CocoMigrateOpts, direct),
     "--direct", true},
    {offsetof(CocoMigrateOpts, timeout_suspend), "--timeout-suspend",
     offsetof(CocoMigrateOpts, timeout_postcopy), "--timeout-postcopy", true},
    {offsetof(CocoMigrateOpts, postcopy_after_precopy),
     "--postcopy-after-precopy", offsetof(CocoMigrateOpts, postcopy),
     "--postcopy", false},
    {offsetof(CocoMigrateOpts, timeout_postcopy), "--timeout-postcopy",
     offsetof(CocoMigrateOpts, postcopy), "--postcopy", false},
};

/* Options whose values are not gboolean: given when set. */
static bool
cocoMigrateGiven(const CocoMigrateOpts *o, size_t offset)
{
    if (offset == offsetof(CocoMigrateOpts, persistent_xml))
        return o->persistent_xml != NULL;
    if (offset == offsetof(CocoMigrateOpts, tls_destination))
        return o->tls_destination != NULL;
    {
        gboolean v;

        memcpy(&v, (const char *)o + offset, sizeof(v));
        return v;
    }
}

typedef struct {
    CocoCtl *ctl;
    CocoMigrateOpts *o;
    CocoClientMigrate *m;
    bool done;
    bool printed; /* a --verbose progress line is on the terminal */
    gint64 last_progress_json;
} CocoMigrateRun;

/* ---- options ------------------------------------------------------------ */

static void
cocoMigrateOptsClear(CocoMigrateOpts *o)
{
    g_free(o->domain);
    g_free(o->desturi);
    g_free(o->migrateuri);
    g_free(o->graphicsuri);
    g_free(o->listen_address);
    g_free(o->dname);
    g_free(o->xml);
    g_free(o->migrate_disks);
    g_free(o->disks_uri);
    g_free(o->comp_methods);
    g_free(o->persistent_xml);
    g_free(o->tls_destination);
    g_free(o->agent_socket);
}

/* DOMAIN DESTURI [MIGRATEURI]: the positional forms of --domain,
 * --desturi and --migrateuri, as virsh takes them. */
static int
cocoMigrateArguments(CocoMigrateOpts *o, int argc, char **argv, GError **error)
{
    char **slots[] = {&o->domain, &o->desturi, &o->migrateuri};
    size_t s = 0;
    int i;

    for (i = 1; i < argc; i++) {
        while (s < G_N_ELEMENTS(slots) && *slots[s])
            s++;
        if (s == G_N_ELEMENTS(slots))
            return cocoErrorSet(error, COCO_ERROR_USAGE,
                                _("unexpected data '%1$s'"), argv[i]);
        *slots[s++] = g_strdup(argv[i]);
    }
    if (!o->domain)
        return cocoErrorSet(
            error, COCO_ERROR_USAGE, "%s",
            _("command 'migrate' requires the DOMAIN argument ('--domain')"));
    if (!o->desturi)
        return cocoErrorSet(
            error, COCO_ERROR_USAGE, "%s",
            _("command 'migrate' requires the DESTURI argument ('--desturi')"));
    return 0;
}

/* virsh's rules, then what virt-coco adds. */
static int
cocoMigrateCheckOptions(CocoMigrateOpts *o, GError **error)
{
    size_t i;

    if (!o->confidential)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED, "%s",
            _("virt-coco migrate needs '--confidential'; use 'virsh migrate' for a migration that need not be confidential"));
    for (i = 0; i < G_N_ELEMENTS(cocoMigrateRules); i++) {
        bool a = cocoMigrateGiven(o, cocoMigrateRules[i].a);
        bool b = cocoMigrateGiven(o, cocoMigrateRules[i].b);

        if (cocoMigrateRules[i].exclusive && a && b)
            return cocoErrorSet(
                error, COCO_ERROR_USAGE,
                _("options '%1$s' and '%2$s' are mutually exclusive"),
                cocoMigrateRules[i].aname, cocoMigrateRules[i].bname);
        if (!cocoMigrateRules[i].exclusive && a && !b)
            return cocoErrorSet(error, COCO_ERROR_USAGE,
                                _("option '%1$s' is required by option '%2$s'"),
                                cocoMigrateRules[i].bname,
                                cocoMigrateRules[i].aname);
    }
    if (o->persistent_xml && !o->persistent)
        return cocoErrorSet(
            error, COCO_ERROR_USAGE, "%s",
            _("option '--persistent' is required by option '--persistent-xml'"));
    if (o->tls_destination && !o->tls)
        return cocoErrorSet(
            error, COCO_ERROR_USAGE, "%s",
            _("option '--tls' is required by option '--tls-destination'"));
    if (o->timeout != COCO_MIGRATE_UNSET) {
        if (o->timeout < 0 || o->timeout > G_MAXINT)
            return cocoErrorSet(
                error, COCO_ERROR_USAGE,
                _("numeric value '%1$lld' for option '%2$s' is malformed or out of range"),
                (long long)o->timeout, "--timeout");
        if (o->timeout > 0 && !o->live)
            return cocoErrorSet(error, COCO_ERROR_USAGE, "%s",
                                _("option '--timeout' needs '--live'"));
    }
    if ((o->timeout_suspend || o->timeout_postcopy) &&
        (o->timeout == COCO_MIGRATE_UNSET || o->timeout == 0))
        return cocoErrorSet(
            error, COCO_ERROR_USAGE, "%s",
            _("options '--timeout-suspend' and '--timeout-postcopy' need '--timeout'"));
    if (o->direct)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED, "%s",
            _("'--direct' is refused: libvirt's QEMU driver has no unmanaged direct migration; use the default (client-managed) or --p2p mode"));
    return 0;
}

/* One value option as the driver's typed parameter. */
static int
cocoMigrateAddParam(CocoClientMigrate *m, CocoMigrateOpts *o, size_t i,
                    GError **error)
{
    const char *base = (const char *)o + cocoMigrateParamOpts[i].offset;
    const char *option = cocoMigrateParamOpts[i].option;
    const char *param = cocoMigrateParamOpts[i].param;
    g_autoptr(GVariant) value = NULL;
    const char *text = NULL;
    gint64 n = 0;

    switch (cocoMigrateParamOpts[i].kind) {
    case COCO_MIGRATE_PARAM_STRING:
    case COCO_MIGRATE_PARAM_FILE:
    case COCO_MIGRATE_PARAM_LIST:
        memcpy(&text, base, sizeof(text));
        if (!text)
            return 0;
        break;
    case COCO_MIGRATE_PARAM_INT:
    case COCO_MIGRATE_PARAM_ULLONG:
    default:
        memcpy(&n, base, sizeof(n));
        if (n == COCO_MIGRATE_UNSET)
            return 0;
        if (n < 0 || (cocoMigrateParamOpts[i].kind == COCO_MIGRATE_PARAM_INT &&
                      n > G_MAXINT))
            return cocoErrorSet(
                error, COCO_ERROR_USAGE,
                _("numeric value '%1$lld' for option '%2$s' is malformed or out of range"),
                (long long)n, option);
        break;
    }
    switch (cocoMigrateParamOpts[i].kind) {
    case COCO_MIGRATE_PARAM_STRING:
        value = g_variant_ref_sink(g_variant_new_string(text));
        break;
    case COCO_MIGRATE_PARAM_FILE: {
        g_autofree char *contents = cocoCtlReadFile(text, error);

        if (!contents)
            return -1;
        value = g_variant_ref_sink(g_variant_new_string(contents));
        break;
    }
    case COCO_MIGRATE_PARAM_LIST: {
        g_auto(GStrv) parts = g_strsplit(text, ",", -1);

        value = g_variant_ref_sink(
            g_variant_new_strv((const char *const *)parts, -1));
        break;
    }
    case COCO_MIGRATE_PARAM_INT:
        value = g_variant_ref_sink(g_variant_new_int32((gint32)n));
        break;
    case COCO_MIGRATE_PARAM_ULLONG:
    default:
        value = g_variant_ref_sink(g_variant_new_uint64((guint64)n));
        break;
    }
    return cocoClientMigrateAddParam(m, param, value, error);
}

/* The driver, with the options mapped to libvirt's flags and typed
 * parameters (it refuses what a confidential migration cannot honour). */
static CocoClientMigrate *
cocoMigrateBuild(CocoCtl *ctl, CocoMigrateOpts *o, GError **error)
{
    g_autoptr(CocoClientMigrate) m = NULL;
    unsigned int flags = 0;
    size_t i;

    if (!(m = cocoClientMigrateNew(ctl->uri, o->domain, o->desturi, error)))
        return NULL;
    for (i = 0; i < G_N_ELEMENTS(cocoMigrateFlagOpts); i++) {
        gboolean on;

        memcpy(&on, (const char *)o + cocoMigrateFlagOpts[i].offset,
               sizeof(on));
        if (on)
            flags |= cocoMigrateFlagOpts[i].flag;
    }
    if (cocoClientMigrateSetFlags(m, flags, error) < 0)
        return NULL;
    for (i = 0; i < G_N_ELEMENTS(cocoMigrateParamOpts); i++) {
        if (cocoMigrateAddParam(m, o, i, error) < 0)
            return NULL;
    }
    cocoClientMigrateSetAgentSocket(m, o->agent_socket);
    if (o->timeout != COCO_MIGRATE_UNSET && o->timeout > 0)
        cocoClientMigrateSetTimeout(m, (unsigned int)o->timeout,
                                    o->timeout_postcopy
                                        ? COCO_CLIENT_TIMEOUT_POSTCOPY
                                        : COCO_CLIENT_TIMEOUT_SUSPEND);
    if (o->postcopy_after_precopy)
        cocoClientMigrateSetPostcopyAfterPrecopy(m);
    if (o->verbose || ctl->json)
        cocoClientMigrateSetProgress(m);
    return g_steal_pointer(&m);
}

/* ---- output ------------------------------------------------------------- */

static void
cocoMigrateSetOptInt(JsonObject *obj, const char *name, bool have, guint64 v)
{
    if (have)
        json_object_set_int_member(obj, name, (gint64)v);
    else
        json_object_set_null_member(obj, name);
}

/* The "result" event: the last line of every run with --json. */
static void
cocoMigrateResultJson(CocoCtl *ctl, const GError *error,
                      const CocoClientMigrateResult *res,
                      const CocoClientRecord *rec)
{
    static const CocoClientMigrateResult none = {0};
    g_autoptr(JsonObject) obj = NULL;

    if (!res)
        res = &none;
    obj = json_object_new();
    json_object_set_string_member(obj, "event", "result");
    json_object_set_boolean_member(obj, "ok", error == NULL);
    if (error)
        json_object_set_object_member(obj, "error", cocoCtlErrorObject(error));
    else
        json_object_set_null_member(obj, "error");
    if (rec)
        json_object_set_string_member(obj, "migration", rec->id);
    else
        json_object_set_null_member(obj, "migration");
    cocoMigrateSetOptInt(obj, "downtime_ms",
                         res->have_libvirt_downtime || res->have_agent_downtime,
                         res->have_libvirt_downtime ? res->libvirt_downtime_ms
                                                    : res->agent_downtime_ms);
    cocoMigrateSetOptInt(obj, "total_ms", res->have_total, res->total_ms);
    cocoMigrateSetOptInt(obj, "bytes", res->have_record, res->sealed_bytes);
    cocoMigrateSetOptInt(obj, "pages", res->have_record, res->sealed_pages);
    cocoMigrateSetOptInt(obj, "libvirt_memory_processed", res->have_libvirt,
                         res->memory_processed);
    cocoMigrateSetOptInt(obj, "libvirt_data_processed", res->have_libvirt,
                         res->data_processed);
    /* <coco:hostdev action='detach'> (docs/formatcoco.rst). */
    json_object_set_int_member(obj, "hostdevs_detached",
                               res->hostdevs_detached);
    json_object_set_int_member(obj, "hostdevs_attached",
                               res->hostdevs_attached);
    cocoCtlPrintObject(ctl, obj);
}

/* The end of every run: "error: ..." on stderr, the "result" event. */
static int
cocoMigrateResult(CocoCtl *ctl, const GError *error,
                  const CocoClientMigrateResult *res,
                  const CocoClientRecord *rec)
{
    if (error)
        cocoCtlPrintError(error);
    if (ctl->json)
        cocoMigrateResultJson(ctl, error, res, rec);
    return error ? cocoCtlExitCode(error) : COCO_EXIT_OK;
}

/* A usage error while the options are read, as the "result" event. */
static void
cocoMigratePrintUsageError(CocoCtl *ctl, const GError *error)
{
    /* cocoCtlUsageError() printed the line on stderr already. */
    cocoMigrateResultJson(ctl, error, NULL, NULL);
}

static JsonArray *
cocoMigrateSteps(char **steps)
{
    JsonArray *arr = json_array_new();
    size_t i;

    for (i = 0; steps && steps[i]; i++)
        json_array_add_string_element(arr, steps[i]);
    return arr;
}

static void
cocoMigrateOnEntry(CocoClientMigrate *m G_GNUC_UNUSED,
                   const CocoClientRecord *rec, guint index, gpointer opaque)
{
    CocoMigrateRun *run = opaque;
    const CocoClientRecordEntry *e = g_ptr_array_index(rec->timeline, index);
    g_autoptr(JsonObject) obj = NULL;

    if (!run->ctl->json)
        return;
    obj = json_object_new();
    json_object_set_string_member(obj, "event", "phase");
    json_object_set_string_member(obj, "migration", rec->id);
    json_object_set_string_member(obj, "phase", e->phase ? e->phase : "");
    json_object_set_string_member(obj, "from", e->from ? e->from : "");
    json_object_set_string_member(obj, "to", e->to);
    json_object_set_array_member(obj, "steps", cocoMigrateSteps(e->steps));
    json_object_set_double_member(obj, "duration_ms", e->duration_ms);
    json_object_set_double_member(obj, "at_ms", e->at_ms);
    if (e->error)
        json_object_set_string_member(obj, "error", e->error);
    cocoCtlPrintObject(run->ctl, obj);
}

static void
cocoMigrateOnProgress(CocoClientMigrate *m G_GNUC_UNUSED,
                      const CocoClientMigrateProgress *p, gpointer opaque)
{
    CocoMigrateRun *run = opaque;
    gint64 now = g_get_monotonic_time();

    if (run->o->verbose) {
        double pct = p->data_remaining >= p->data_total
                         ? 0.0
                         : (double)(p->data_total - p->data_remaining) * 100.0 /
                               (double)p->data_total;

        /* As virsh: never 100 % before the call returns. */
        fprintf(stderr, "\r%s: [%5.2f %%]", _("Migration"), MIN(pct, 99.99));
        fflush(stderr);
        run->printed = true;
    }
    /* The JSON progress event, at most once a second. */
    if (run->ctl->json && (!run->last_progress_json ||
                           now - run->last_progress_json >= G_USEC_PER_SEC)) {
        g_autoptr(JsonObject) obj = json_object_new();

        run->last_progress_json = now;
        json_object_set_string_member(obj, "event", "progress");
        json_object_set_int_member(obj, "percent", p->percent);
        json_object_set_int_member(obj, "data_total", (gint64)p->data_total);
        json_object_set_int_member(obj, "data_remaining",
                                   (gint64)p->data_remaining);
        cocoCtlPrintObject(run->ctl, obj);
    }
}

static void
cocoMigrateOnWarning(CocoClientMigrate *m G_GNUC_UNUSED, const char *message,
                     gpointer opaque)
{
    CocoMigrateRun *run = opaque;

    if (run->printed) {
        fputc('\n', stderr);
        run->printed = false;
    }
    fprintf(stderr, _("warning: %1$s\n"), message);
}

/* <coco:hostdev action='detach'>: a step a host device passed, on stderr
 * with --verbose and as the JSON event "hostdev". */
static void
cocoMigrateOnHostdev(CocoClientMigrate *m G_GNUC_UNUSED, const char *device,
                     int step, gpointer opaque)
{
    CocoMigrateRun *run = opaque;
    const char *name = cocoClientHostdevStepTypeToString(step);

    if (run->o->verbose) {
        if (run->printed) {
            fputc('\n', stderr);
            run->printed = false;
        }
        fprintf(stderr, _("host device '%1$s': %2$s\n"), device, name);
    }
    if (run->ctl->json) {
        g_autoptr(JsonObject) obj = json_object_new();

        json_object_set_string_member(obj, "event", "hostdev");
        json_object_set_string_member(obj, "device", device);
        json_object_set_string_member(obj, "step", name);
        cocoCtlPrintObject(run->ctl, obj);
    }
}

static void
cocoMigrateOnFinished(CocoClientMigrate *m G_GNUC_UNUSED, gpointer opaque)
{
    CocoMigrateRun *run = opaque;

    run->done = true;
}

static const CocoClientMigrateCallbacks cocoMigrateCallbacks = {
    .progress = cocoMigrateOnProgress,
    .entry = cocoMigrateOnEntry,
    .warning = cocoMigrateOnWarning,
    .hostdev = cocoMigrateOnHostdev,
    .finished = cocoMigrateOnFinished,
};

/* SIGINT/SIGTERM: abort once (as virsh does) and keep waiting. */
static gboolean
cocoMigrateOnSignal(gpointer opaque)
{
    CocoMigrateRun *run = opaque;
    g_autoptr(GError) err = NULL;

    if (!run->done && cocoClientMigrateAbort(run->m, &err) < 0)
        fprintf(stderr, _("warning: cannot abort the migration: %1$s\n"),
                err->message);
    return G_SOURCE_CONTINUE;
}

/* --timeline: the source agent's record, as text or one JSON event. */
static void
cocoMigratePrintTimeline(CocoCtl *ctl, const CocoClientRecord *rec,
                         const CocoClientMigrateResult *res)
{
    guint i;

    if (ctl->json) {
        g_autoptr(JsonObject) obj = json_object_new();

        json_object_set_string_member(obj, "event", "timeline");
        if (rec)
            json_object_set_object_member(obj, "record",
                                          json_object_ref(rec->json));
        else
            json_object_set_null_member(obj, "record");
        cocoMigrateSetOptInt(obj, "libvirt_downtime_ms",
                             res->have_libvirt_downtime,
                             res->libvirt_downtime_ms);
        cocoCtlPrintObject(ctl, obj);
        return;
    }
    if (!rec) {
        printf("%s\n",
               _("No migration record of the source agent is available."));
        return;
    }
    printf(_("Migration %1$s: %2$s -> %3$s, state %4$s, %5$llu streams\n"),
           rec->id, NULLSTR(rec->domain), NULLSTR(rec->peer), rec->state,
           (unsigned long long)rec->streams);
    printf("  %10s %10s  %-32s %-24s %s\n", _("at ms"), _("took ms"),
           _("phase"), _("state"), _("steps"));
    for (i = 0; i < rec->timeline->len; i++) {
        const CocoClientRecordEntry *e = g_ptr_array_index(rec->timeline, i);
        g_autofree char *states =
            g_strdup_printf("%s->%s", e->from ? e->from : "", e->to);
        g_autofree char *steps = g_strjoinv(",", e->steps);

        printf("  %10.3f %10.3f  %-32s %-24s [%s]%s%s\n", e->at_ms,
               e->duration_ms, e->phase ? e->phase : "", states, steps,
               e->error ? " error=" : "", e->error ? e->error : "");
    }
    printf(
        _("Transfer: %1$llu bytes, %2$llu pages, %3$llu bundles, epoch %4$llu, %5$llu ms\n"),
        (unsigned long long)rec->bytes, (unsigned long long)rec->sent_pages,
        (unsigned long long)rec->bundles, (unsigned long long)rec->epoch,
        (unsigned long long)rec->elapsed_ms);
    printf(
        _("Messages: %1$llu sent (%2$llu bytes), %3$llu received (%4$llu bytes), %5$llu firmware calls\n"),
        (unsigned long long)rec->messages_sent,
        (unsigned long long)rec->message_bytes_sent,
        (unsigned long long)rec->messages_received,
        (unsigned long long)rec->message_bytes_received,
        (unsigned long long)rec->fw_calls);
    printf(
        _("Downtime: agent %1$.3f ms (from SOURCE_BLACKOUT, %2$.3f ms after the session started)\n"),
        (double)rec->downtime_us / 1000.0, (double)rec->blackout_us / 1000.0);
    if (res->have_libvirt_downtime)
        printf(
            _("Downtime: libvirt %1$llu ms (the destination's completed job)\n"),
            (unsigned long long)res->libvirt_downtime_ms);
    if (res->have_libvirt)
        printf(
            _("libvirt's stream: %1$llu bytes of memory, %2$llu bytes in all (the destination's completed job)\n"),
            (unsigned long long)res->memory_processed,
            (unsigned long long)res->data_processed);
    if (rec->failure)
        printf(_("Failure: %1$s\n"), rec->failure);
    fflush(stdout);
}

/* ---- the command ------------------------------------------------------- */

static void
cocoMigrateRunLoop(CocoMigrateRun *run)
{
    guint sigint = g_unix_signal_add(SIGINT, cocoMigrateOnSignal, run);
    guint sigterm = g_unix_signal_add(SIGTERM, cocoMigrateOnSignal, run);

    cocoClientMigrateStart(run->m, NULL, &cocoMigrateCallbacks, run);
    while (!run->done)
        g_main_context_iteration(NULL, TRUE);
    g_source_remove(sigint);
    g_source_remove(sigterm);
}

int
cocoCmdMigrate(CocoCtl *ctl, int argc, char **argv)
{
    CocoMigrateOpts o = {
        .timeout = COCO_MIGRATE_UNSET,
        .disks_port = COCO_MIGRATE_UNSET,
        .comp_mt_level = COCO_MIGRATE_UNSET,
        .comp_mt_threads = COCO_MIGRATE_UNSET,
        .comp_mt_dthreads = COCO_MIGRATE_UNSET,
        .comp_xbzrle_cache = COCO_MIGRATE_UNSET,
        .auto_converge_initial = COCO_MIGRATE_UNSET,
        .auto_converge_increment = COCO_MIGRATE_UNSET,
        .postcopy_bandwidth = COCO_MIGRATE_UNSET,
        .parallel_connections = COCO_MIGRATE_UNSET,
        .bandwidth = COCO_MIGRATE_UNSET,
    };
    GOptionEntry entries[] = {
        {"confidential", 0, 0, G_OPTION_ARG_NONE, &o.confidential,
         N_("migrate the guest's private state through the agents (required)"),
         NULL},
        {"domain", 0, 0, G_OPTION_ARG_STRING, &o.domain,
         N_("domain name, id or uuid"), N_("DOMAIN")},
        {"desturi", 0, 0, G_OPTION_ARG_STRING, &o.desturi,
         N_("connection URI of the destination host as seen from the client (normal migration) or source (p2p migration)"),
         N_("URI")},
        {"live", 0, 0, G_OPTION_ARG_NONE, &o.live, N_("live migration"), NULL},
        {"offline", 0, 0, G_OPTION_ARG_NONE, &o.offline,
         N_("refused: nothing confidential to move"), NULL},
        {"p2p", 0, 0, G_OPTION_ARG_NONE, &o.p2p, N_("peer-2-peer migration"),
         NULL},
        {"direct", 0, 0, G_OPTION_ARG_NONE, &o.direct,
         N_("refused: libvirt's QEMU driver has no direct migration"), NULL},
        {"tunnelled", 0, 0, G_OPTION_ARG_NONE, &o.tunnelled,
         N_("refused: guest RAM would travel in libvirt's stream"), NULL},
        {"persistent", 0, 0, G_OPTION_ARG_NONE, &o.persistent,
         N_("persist the domain on the destination"), NULL},
        {"undefinesource", 0, 0, G_OPTION_ARG_NONE, &o.undefinesource,
         N_("undefine the domain on the source"), NULL},
        {"suspend", 0, 0, G_OPTION_ARG_NONE, &o.suspend,
         N_("do not restart the domain on the destination host"), NULL},
        {"copy-storage-all", 0, 0, G_OPTION_ARG_NONE, &o.copy_storage_all,
         N_("refused: non-shared storage is not supported"), NULL},
        {"copy-storage-inc", 0, 0, G_OPTION_ARG_NONE, &o.copy_storage_inc,
         N_("refused: non-shared storage is not supported"), NULL},
        {"copy-storage-synchronous-writes", 0, 0, G_OPTION_ARG_NONE,
         &o.copy_storage_sync,
         N_("refused: non-shared storage is not supported"), NULL},
        {"change-protection", 0, 0, G_OPTION_ARG_NONE, &o.change_protection,
         N_("prevent any configuration changes to the domain until the migration ends"),
         NULL},
        {"unsafe", 0, 0, G_OPTION_ARG_NONE, &o.unsafe,
         N_("force the migration even if it may be unsafe"), NULL},
        {"verbose", 0, 0, G_OPTION_ARG_NONE, &o.verbose,
         N_("display the progress of the migration"), NULL},
        {"compressed", 0, 0, G_OPTION_ARG_NONE, &o.compressed,
         N_("compress repeated pages of libvirt's stream (device state only)"),
         NULL},
        {"auto-converge", 0, 0, G_OPTION_ARG_NONE, &o.auto_converge,
         N_("let QEMU throttle the vCPUs to converge"), NULL},
        {"rdma-pin-all", 0, 0, G_OPTION_ARG_NONE, &o.rdma_pin_all,
         N_("refused: RDMA migration cannot be sealed"), NULL},
        {"abort-on-error", 0, 0, G_OPTION_ARG_NONE, &o.abort_on_error,
         N_("abort on soft errors during the migration"), NULL},
        {"postcopy", 0, 0, G_OPTION_ARG_NONE, &o.postcopy,
         N_("enable post-copy (the agents still move the memory before the switchover)"),
         NULL},
        {"postcopy-after-precopy", 0, 0, G_OPTION_ARG_NONE,
         &o.postcopy_after_precopy,
         N_("switch to post-copy after the first pass of pre-copy"), NULL},
        {"postcopy-resume", 0, 0, G_OPTION_ARG_NONE, &o.postcopy_resume,
         N_("refused: no failed post-copy migration is left to resume"), NULL},
        {"zerocopy", 0, 0, G_OPTION_ARG_NONE, &o.zerocopy,
         N_("zero-copy for libvirt's parallel stream"), NULL},
        {"migrateuri", 0, 0, G_OPTION_ARG_STRING, &o.migrateuri,
         N_("migration URI, usually can be omitted"), N_("URI")},
        {"graphicsuri", 0, 0, G_OPTION_ARG_STRING, &o.graphicsuri,
         N_("graphics URI for seamless graphics migration"), N_("URI")},
        {"listen-address", 0, 0, G_OPTION_ARG_STRING, &o.listen_address,
         N_("the address the destination listens on for the migration"),
         N_("ADDRESS")},
        {"dname", 0, 0, G_OPTION_ARG_STRING, &o.dname,
         N_("rename the domain on the destination"), N_("NAME")},
        {"timeout", 0, 0, G_OPTION_ARG_INT64, &o.timeout,
         N_("run the --timeout-* action (suspend by default) when the live migration takes longer than N seconds"),
         N_("N")},
        {"timeout-suspend", 0, 0, G_OPTION_ARG_NONE, &o.timeout_suspend,
         N_("suspend the guest after the timeout"), NULL},
        {"timeout-postcopy", 0, 0, G_OPTION_ARG_NONE, &o.timeout_postcopy,
         N_("switch to post-copy after the timeout"), NULL},
        {"xml", 0, 0, G_OPTION_ARG_FILENAME, &o.xml,
         N_("the domain XML for the destination"), N_("FILE")},
        {"migrate-disks", 0, 0, G_OPTION_ARG_STRING, &o.migrate_disks,
         N_("refused: non-shared storage is not supported"), N_("DISKS")},
        {"disks-port", 0, 0, G_OPTION_ARG_INT64, &o.disks_port,
         N_("refused: non-shared storage is not supported"), N_("PORT")},
        {"disks-uri", 0, 0, G_OPTION_ARG_STRING, &o.disks_uri,
         N_("refused: non-shared storage is not supported"), N_("URI")},
        {"comp-methods", 0, 0, G_OPTION_ARG_STRING, &o.comp_methods,
         N_("comma-separated compression methods of libvirt's stream"),
         N_("METHODS")},
        {"comp-mt-level", 0, 0, G_OPTION_ARG_INT64, &o.comp_mt_level,
         N_("level of multithread compression"), N_("N")},
        {"comp-mt-threads", 0, 0, G_OPTION_ARG_INT64, &o.comp_mt_threads,
         N_("threads of multithread compression"), N_("N")},
        {"comp-mt-dthreads", 0, 0, G_OPTION_ARG_INT64, &o.comp_mt_dthreads,
         N_("decompression threads of multithread compression"), N_("N")},
        {"comp-xbzrle-cache", 0, 0, G_OPTION_ARG_INT64, &o.comp_xbzrle_cache,
         N_("page cache size of xbzrle compression in bytes"), N_("BYTES")},
        {"auto-converge-initial", 0, 0, G_OPTION_ARG_INT64,
         &o.auto_converge_initial,
         N_("initial CPU throttling rate of auto-convergence"), N_("PERCENT")},
        {"auto-converge-increment", 0, 0, G_OPTION_ARG_INT64,
         &o.auto_converge_increment,
         N_("CPU throttling rate increment of auto-convergence"),
         N_("PERCENT")},
        {"persistent-xml", 0, 0, G_OPTION_ARG_FILENAME, &o.persistent_xml,
         N_("the persistent domain XML for the destination"), N_("FILE")},
        {"tls", 0, 0, G_OPTION_ARG_NONE, &o.tls,
         N_("TLS for libvirt's migration stream"), NULL},
        {"postcopy-bandwidth", 0, 0, G_OPTION_ARG_INT64, &o.postcopy_bandwidth,
         N_("post-copy bandwidth limit in MiB/s"), N_("MIB")},
        {"parallel", 0, 0, G_OPTION_ARG_NONE, &o.parallel,
         N_("parallel connections for libvirt's stream"), NULL},
        {"parallel-connections", 0, 0, G_OPTION_ARG_INT64,
         &o.parallel_connections,
         N_("the agents' stream count (the domain's <coco:streams forward>); with --parallel also libvirt's"),
         N_("N")},
        {"bandwidth", 0, 0, G_OPTION_ARG_INT64, &o.bandwidth,
         N_("bandwidth limit of libvirt's stream in MiB/s"), N_("MIB")},
        {"tls-destination", 0, 0, G_OPTION_ARG_STRING, &o.tls_destination,
         N_("the destination host name for TLS verification"), N_("HOST")},
        {"agent-socket", 0, 0, G_OPTION_ARG_FILENAME, &o.agent_socket,
         N_("the source host agent's socket"), N_("PATH")},
        {"timeline", 0, 0, G_OPTION_ARG_NONE, &o.timeline,
         N_("print the source agent's record of the migration afterwards"),
         NULL},
        G_OPTION_ENTRY_NULL,
    };
    CocoMigrateRun run = {.ctl = ctl, .o = &o};
    g_autoptr(GError) err = NULL;
    const GError *failure;
    const CocoClientMigrateResult *res;
    const CocoClientRecord *rec;
    int ret;

    ctl->print_error = cocoMigratePrintUsageError;
    if (!cocoCtlParseOptions(ctl, entries, &argc, &argv)) {
        cocoMigrateOptsClear(&o);
        return COCO_EXIT_USAGE;
    }
    if (cocoMigrateArguments(&o, argc, argv, &err) < 0 ||
        cocoMigrateCheckOptions(&o, &err) < 0 ||
        !(run.m = cocoMigrateBuild(ctl, &o, &err))) {
        ret = cocoMigrateResult(ctl, err, NULL, NULL);
        cocoMigrateOptsClear(&o);
        return ret;
    }

    cocoMigrateRunLoop(&run);
    failure = cocoClientMigrateGetError(run.m);
    res = cocoClientMigrateGetResult(run.m);
    rec = cocoClientMigrateGetRecord(run.m);
    if (o.verbose && !failure)
        fprintf(stderr, "\r%s: [100 %%]\n", _("Migration"));
    else if (run.printed)
        fputc('\n', stderr);
    if (o.timeline && cocoClientMigrateGetLibvirtDone(run.m))
        cocoMigratePrintTimeline(ctl, rec, res);
    ret = cocoMigrateResult(ctl, failure, res, rec);
    cocoClientMigrateUnref(run.m);
    cocoMigrateOptsClear(&o);
    return ret;
}
