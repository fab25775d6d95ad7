/*
 * cocoagentdbus.c: the D-Bus API of virtcocod
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentdbus.h"
#include "agent/cocoagentjob.h"
#include "client/cococlientvalidate.h"
#include "agent/cocoagentvfio.h"
#include "agent/cocoagentdbusxml.h"
#include "util/cocoerror.h"
#include "virt/cocovirt.h"

#include <gio/gio.h>
#include <json-glib/json-gvariant.h>
#include <unistd.h>

#ifdef WITH_POLKIT
# include <polkit/polkit.h>
#endif

/* How long an ended job stays on the bus. */
#define COCO_AGENT_DBUS_JOB_LINGER_S 600

/* The properties of org.libvirtcoco.Job1 that a record poll changes. */
static const char *const cocoAgentDBusJobProgressProps[] = {
    "Phase", "Progress", "DataTotal",   "DataProcessed",
    "Epoch", "Downtime", "MigrationId", NULL,
};

typedef struct {
    CocoAgentDBus *dbus;
    CocoAgentJob *job;
    char *path;
    char *owner; /* unique name of the client that started it, or "" */
    guint watch_id;
    guint object_id;
    GDBusMethodInvocation *pending; /* Migrate()'s answer, until started */
    guint linger_id;
    GHashTable *sent; /* property -> the last value announced */
} CocoAgentDBusJob;

struct _CocoAgentDBus {
    CocoAgent *agent;
    GDBusConnection *conn;
    GDBusNodeInfo *node;
    GDBusInterfaceInfo *job_info;
    GHashTable *jobs; /* path -> CocoAgentDBusJob */
    unsigned int next_job;
    bool system; /* polkit authorises; else the agent's own user only */
#ifdef WITH_POLKIT
    PolkitAuthority *authority; /* system bus only */
    GCancellable *cancel; /* the checks in flight, cancelled at the end */
#endif
    guint object_id;
    guint owner_id;
};

bool
cocoAgentDBusSupported(void)
{
#ifdef WITH_POLKIT
    return true;
#else
    return false;
#endif
}

int
cocoAgentDBusCheckBus(const char *bus, GError **error)
{
    if (!bus || (STRNEQ(bus, "none") && STRNEQ(bus, "session") &&
                 STRNEQ(bus, "system")))
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("unknown D-Bus bus '%1$s': expected 'none', 'session' or 'system'"),
            NULLSTR(bus));
    if (STRNEQ(bus, "none") && !cocoAgentDBusSupported())
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("the D-Bus API ('%1$s' bus) is not supported by this build: it needs polkit-gobject-1"),
            bus);
    return 0;
}

char *
cocoAgentDBusErrorName(int code)
{
    const char *nick = cocoErrorCodeToString(code);
    GString *name = g_string_new(COCO_AGENT_DBUS_ERROR_PREFIX);
    bool upper = true;
    const char *p;

    if (!nick)
        nick = "internal";
    for (p = nick; *p; p++) {
        if (*p == '-') {
            upper = true;
            continue;
        }
        g_string_append_c(name, upper ? g_ascii_toupper(*p) : *p);
        upper = false;
    }
    return g_string_free(name, FALSE);
}

static void
cocoAgentDBusReturnError(GDBusMethodInvocation *inv, const GError *err)
{
    g_autofree char *name = NULL;

    if (err->domain == COCO_ERROR)
        name = cocoAgentDBusErrorName(err->code);
    else
        name = cocoAgentDBusErrorName(COCO_ERROR_INTERNAL);
    g_dbus_method_invocation_return_dbus_error(inv, name, err->message);
}

/* On a session bus, only the agent's own user (polkit does not apply). */
static int
cocoAgentDBusAuthorizeSession(CocoAgentDBus *dbus, GDBusMethodInvocation *inv,
                              GError **error)
{
    const char *sender = g_dbus_method_invocation_get_sender(inv);
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GError) err = NULL;
    guint32 uid;

    if (!sender)
        return cocoErrorSet(error, COCO_ERROR_ACCESS_DENIED, "%s",
                            _("a D-Bus call without a sender is not allowed"));
    reply = g_dbus_connection_call_sync(
        dbus->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
        "org.freedesktop.DBus", "GetConnectionUnixUser",
        g_variant_new("(s)", sender), G_VARIANT_TYPE("(u)"),
        G_DBUS_CALL_FLAGS_NONE, -1, NULL, &err);
    if (!reply)
        return cocoErrorSet(error, COCO_ERROR_ACCESS_DENIED,
                            _("cannot identify the caller '%1$s': %2$s"),
                            sender, err->message);
    g_variant_get(reply, "(u)", &uid);
    if (uid != getuid())
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("user '%1$u' may not call '%2$s' on the session bus of user '%3$u'"),
            uid, g_dbus_method_invocation_get_method_name(inv),
            (unsigned int)getuid());
    return 0;
}

static GVariant *
cocoAgentDBusJsonToDict(JsonObject *obj)
{
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

    json_node_set_object(node, obj);
    return json_gvariant_deserialize(node, "a{sv}", NULL);
}

static int
cocoAgentDBusValidate(GVariant *params, GVariant **out, GError **error)
{
    const char *xml = NULL;
    CocoValidateReport report = {.what = "Validate"};
    g_autoptr(CocoMigrationDef) def = NULL;
    GVariantBuilder b;
    int ret;

    g_variant_get(params, "(&s)", &xml);
    if (!*xml)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG, "%s",
                            _("the 'xml' argument of 'Validate' is empty"));
    ret = cocoValidateText(xml, &report, &def, error);
    if (ret == 0) {
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "valid", g_variant_new_boolean(TRUE));
        g_variant_builder_add(
            &b, "{sv}", "technology",
            g_variant_new_string(cocoTechnologyTypeToString(def->technology)));
        g_variant_builder_add(&b, "{sv}", "libvirt_schema_checked",
                              g_variant_new_boolean(report.domain_checked));
        if (report.skip_reason)
            g_variant_builder_add(&b, "{sv}", "libvirt_schema_skipped",
                                  g_variant_new_string(report.skip_reason));
        *out = g_variant_new("(a{sv})", &b);
    }
    g_free(report.skip_reason);
    return ret;
}

/* ---- jobs --------------------------------------------------------------- */

static void
cocoAgentDBusJobFree(CocoAgentDBusJob *dj)
{
    if (dj->object_id)
        g_dbus_connection_unregister_object(dj->dbus->conn, dj->object_id);
    if (dj->watch_id)
        g_bus_unwatch_name(dj->watch_id);
    if (dj->linger_id)
        g_source_remove(dj->linger_id);
    if (dj->pending) {
        g_autoptr(GError) err = NULL;

        cocoErrorSet(&err, COCO_ERROR_INTERNAL, "%s",
                     _("the agent's D-Bus service is ending"));
        cocoAgentDBusReturnError(dj->pending, err);
        g_object_unref(dj->pending);
    }
    cocoAgentJobDetach(dj->job);
    cocoAgentJobUnref(dj->job);
    g_hash_table_unref(dj->sent);
    g_free(dj->path);
    g_free(dj->owner);
    g_free(dj);
}

typedef GVariant *(*CocoAgentDBusJobGetter)(CocoAgentDBusJob *dj);

static GVariant *
cocoAgentDBusJobGetDomain(CocoAgentDBusJob *dj)
{
    return g_variant_new_string(cocoAgentJobGetDomain(dj->job));
}

static GVariant *
cocoAgentDBusJobGetDestUri(CocoAgentDBusJob *dj)
{
    return g_variant_new_string(cocoAgentJobGetDestUri(dj->job));
}

static GVariant *
cocoAgentDBusJobGetOwner(CocoAgentDBusJob *dj)
{
    return g_variant_new_string(dj->owner);
}

static GVariant *
cocoAgentDBusJobGetState(CocoAgentDBusJob *dj)
{
    return g_variant_new_string(
        cocoAgentJobStateTypeToString(cocoAgentJobGetState(dj->job)));
}

static GVariant *
cocoAgentDBusJobGetPhase(CocoAgentDBusJob *dj)
{
    return g_variant_new_string(cocoAgentJobGetPhase(dj->job));
}

static GVariant *
cocoAgentDBusJobGetProgress(CocoAgentDBusJob *dj)
{
    return g_variant_new_uint32(cocoAgentJobGetProgress(dj->job));
}

static GVariant *
cocoAgentDBusJobGetDataTotal(CocoAgentDBusJob *dj)
{
    return g_variant_new_uint64(cocoAgentJobGetDataTotal(dj->job));
}

static GVariant *
cocoAgentDBusJobGetDataProcessed(CocoAgentDBusJob *dj)
{
    return g_variant_new_uint64(cocoAgentJobGetDataProcessed(dj->job));
}

static GVariant *
cocoAgentDBusJobGetEpoch(CocoAgentDBusJob *dj)
{
    return g_variant_new_uint32(cocoAgentJobGetEpoch(dj->job));
}

static GVariant *
cocoAgentDBusJobGetDowntime(CocoAgentDBusJob *dj)
{
    return g_variant_new_uint64(cocoAgentJobGetDowntime(dj->job));
}

static GVariant *
cocoAgentDBusJobGetMigrationId(CocoAgentDBusJob *dj)
{
    return g_variant_new_string(cocoAgentJobGetMigrationId(dj->job));
}

static GVariant *
cocoAgentDBusJobGetLastError(CocoAgentDBusJob *dj)
{
    const GError *err = cocoAgentJobGetError(dj->job);
    g_autofree char *name = NULL;

    if (!err)
        return g_variant_new("(ss)", "", "");
    name = cocoAgentDBusErrorName(
        err->domain == COCO_ERROR ? err->code : COCO_ERROR_INTERNAL);
    return g_variant_new("(ss)", name, err->message);
}

/* org.libvirtcoco.Agent1.Job's properties (data/org.libvirtcoco.Agent1.xml):
 * one row per property. */
static const struct {
    const char *name;
    CocoAgentDBusJobGetter get;
} cocoAgentDBusJobProps[] = {
    {"Domain", cocoAgentDBusJobGetDomain},
    {"DestinationUri", cocoAgentDBusJobGetDestUri},
    {"Owner", cocoAgentDBusJobGetOwner},
    {"State", cocoAgentDBusJobGetState},
    {"Phase", cocoAgentDBusJobGetPhase},
    {"Progress", cocoAgentDBusJobGetProgress},
    {"DataTotal", cocoAgentDBusJobGetDataTotal},
    {"DataProcessed", cocoAgentDBusJobGetDataProcessed},
    {"Epoch", cocoAgentDBusJobGetEpoch},
    {"Downtime", cocoAgentDBusJobGetDowntime},
    {"MigrationId", cocoAgentDBusJobGetMigrationId},
    {"LastError", cocoAgentDBusJobGetLastError},
};

static GVariant *
cocoAgentDBusJobProperty(CocoAgentDBusJob *dj, const char *prop)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoAgentDBusJobProps); i++) {
        if (STREQ(cocoAgentDBusJobProps[i].name, prop))
            return cocoAgentDBusJobProps[i].get(dj);
    }
    return NULL;
}

/* Announce the properties in @props whose value changed since the last
 * announcement. */
static void
cocoAgentDBusJobAnnounce(CocoAgentDBusJob *dj, const char *const *props)
{
    GVariantBuilder changed;
    bool any = false;
    size_t i;

    if (!dj->object_id)
        return;
    g_variant_builder_init(&changed, G_VARIANT_TYPE("a{sv}"));
    for (i = 0; props[i]; i++) {
        g_autoptr(GVariant) v =
            g_variant_ref_sink(cocoAgentDBusJobProperty(dj, props[i]));
        GVariant *old = g_hash_table_lookup(dj->sent, props[i]);

        if (old && g_variant_equal(old, v))
            continue;
        g_hash_table_replace(dj->sent, (gpointer)props[i], g_variant_ref(v));
        g_variant_builder_add(&changed, "{sv}", props[i], v);
        any = true;
    }
    if (!any) {
        g_variant_builder_clear(&changed);
        return;
    }
    g_dbus_connection_emit_signal(
        dj->dbus->conn, NULL, dj->path, "org.freedesktop.DBus.Properties",
        "PropertiesChanged",
        g_variant_new("(sa{sv}as)", COCO_AGENT_DBUS_JOB_INTERFACE, &changed,
                      NULL),
        NULL);
}

static void
cocoAgentDBusJobOnOwnerVanished(GDBusConnection *conn G_GNUC_UNUSED,
                                const char *name, gpointer opaque)
{
    CocoAgentDBusJob *dj = opaque;
    static const char *const props[] = {"Owner", NULL};

    g_message("virtcocod: the client '%s' that started job '%s' went away; "
              "the agent keeps the job to its end",
              name, dj->path);
    g_clear_handle_id(&dj->watch_id, g_bus_unwatch_name);
    g_free(dj->owner);
    dj->owner = g_strdup("");
    cocoAgentDBusJobAnnounce(dj, props);
}

static gboolean
cocoAgentDBusJobOnLinger(gpointer opaque)
{
    CocoAgentDBusJob *dj = opaque;

    dj->linger_id = 0;
    g_hash_table_remove(dj->dbus->jobs, dj->path);
    return G_SOURCE_REMOVE;
}

static const GDBusInterfaceVTable cocoAgentDBusJobVTable;

static void
cocoAgentDBusJobOnStarted(CocoAgentJob *job G_GNUC_UNUSED, const GError *error,
                          gpointer opaque)
{
    CocoAgentDBusJob *dj = opaque;
    CocoAgentDBus *dbus = dj->dbus;
    g_autoptr(GDBusMethodInvocation) inv = g_steal_pointer(&dj->pending);
    g_autoptr(GError) err = NULL;

    if (error) {
        g_message("virtcocod: D-Bus Migrate of '%s' refused: %s",
                  cocoAgentJobGetDomain(dj->job), error->message);
        if (inv)
            cocoAgentDBusReturnError(inv, error);
        return;
    }
    dj->object_id = g_dbus_connection_register_object(
        dbus->conn, dj->path, dbus->job_info, &cocoAgentDBusJobVTable, dj, NULL,
        &err);
    if (!dj->object_id) {
        /* The migration goes on; the job cannot be shown. */
        g_warning("virtcocod: cannot export job '%s': %s", dj->path,
                  err->message);
        if (inv) {
            g_autoptr(GError) e = NULL;

            cocoErrorSet(
                &e, COCO_ERROR_SYSTEM,
                _("the migration started, but its job '%1$s' cannot be exported: %2$s"),
                dj->path, err->message);
            cocoAgentDBusReturnError(inv, e);
        }
        return;
    }
    if (*dj->owner)
        dj->watch_id = g_bus_watch_name_on_connection(
            dbus->conn, dj->owner, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
            cocoAgentDBusJobOnOwnerVanished, dj, NULL);
    g_message("virtcocod: job '%s': migrating '%s' to '%s' for '%s'", dj->path,
              cocoAgentJobGetDomain(dj->job), cocoAgentJobGetDestUri(dj->job),
              dj->owner);
    if (inv)
        g_dbus_method_invocation_return_value(inv,
                                              g_variant_new("(o)", dj->path));
}

static void
cocoAgentDBusJobOnChanged(CocoAgentJob *job, bool phase, gpointer opaque)
{
    CocoAgentDBusJob *dj = opaque;

    cocoAgentDBusJobAnnounce(dj, cocoAgentDBusJobProgressProps);
    if (phase && dj->object_id)
        g_dbus_connection_emit_signal(
            dj->dbus->conn, NULL, dj->path, COCO_AGENT_DBUS_JOB_INTERFACE,
            "PhaseChanged", g_variant_new("(s)", cocoAgentJobGetPhase(job)),
            NULL);
}

static void
cocoAgentDBusJobOnFinished(CocoAgentJob *job, gpointer opaque)
{
    CocoAgentDBusJob *dj = opaque;
    static const char *const props[] = {"State", "LastError", "Progress",
                                        "Phase", "Downtime",  NULL};
    const GError *err = cocoAgentJobGetError(job);
    g_autofree char *name = NULL;
    const char *state =
        cocoAgentJobStateTypeToString(cocoAgentJobGetState(job));

    g_clear_handle_id(&dj->watch_id, g_bus_unwatch_name);
    if (!dj->object_id) {
        /* Refused before it started: never exported. */
        g_hash_table_remove(dj->dbus->jobs, dj->path);
        return;
    }
    if (err)
        name = cocoAgentDBusErrorName(
            err->domain == COCO_ERROR ? err->code : COCO_ERROR_INTERNAL);
    g_message("virtcocod: job '%s': %s%s%s", dj->path, state, err ? ": " : "",
              err ? err->message : "");
    cocoAgentDBusJobAnnounce(dj, cocoAgentDBusJobProgressProps);
    cocoAgentDBusJobAnnounce(dj, props);
    g_dbus_connection_emit_signal(dj->dbus->conn, NULL, dj->path,
                                  COCO_AGENT_DBUS_JOB_INTERFACE, "Completed",
                                  g_variant_new("(sss)", state,
                                                name ? name : "",
                                                err ? err->message : ""),
                                  NULL);
    dj->linger_id = g_timeout_add_seconds(COCO_AGENT_DBUS_JOB_LINGER_S,
                                          cocoAgentDBusJobOnLinger, dj);
}

static const CocoAgentJobCallbacks cocoAgentDBusJobCallbacks = {
    .started = cocoAgentDBusJobOnStarted,
    .changed = cocoAgentDBusJobOnChanged,
    .finished = cocoAgentDBusJobOnFinished,
};

static bool
cocoAgentDBusJobBusy(CocoAgentDBus *dbus, const char *domain, char **path)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, dbus->jobs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoAgentDBusJob *dj = v;
        CocoAgentJobState st = cocoAgentJobGetState(dj->job);

        if ((st == COCO_AGENT_JOB_STATE_PREFLIGHT ||
             st == COCO_AGENT_JOB_STATE_RUNNING) &&
            STREQ(cocoAgentJobGetDomain(dj->job), domain)) {
            *path = dj->path;
            return true;
        }
    }
    return false;
}

/* Migrate(s domain, s dest_uri, a{sv} params, u flags) -> o: answered
 * when the job's checks end. */
static void
cocoAgentDBusMigrate(CocoAgentDBus *dbus, GDBusMethodInvocation *inv)
{
    GVariant *args = g_dbus_method_invocation_get_parameters(inv);
    const char *sender = g_dbus_method_invocation_get_sender(inv);
    g_autoptr(GVariant) params = NULL;
    g_autoptr(CocoAgentJob) job = NULL;
    g_autoptr(GError) err = NULL;
    const char *domain = NULL;
    const char *desturi = NULL;
    char *busy = NULL;
    CocoAgentDBusJob *dj;
    GVariantIter it;
    const char *key;
    GVariant *value;
    guint32 flags;

    g_variant_get(args, "(&s&s@a{sv}u)", &domain, &desturi, &params, &flags);
    if (!(job = cocoAgentJobNew(dbus->agent,
                                cocoAgentGetConfig(dbus->agent)->libvirt_uri,
                                domain, desturi, flags, &err))) {
        cocoAgentDBusReturnError(inv, err);
        return;
    }
    g_variant_iter_init(&it, params);
    while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
        int rc = cocoAgentJobAddParam(job, key, value, &err);

        g_variant_unref(value);
        if (rc < 0) {
            cocoAgentDBusReturnError(inv, err);
            return;
        }
    }
    if (cocoAgentDBusJobBusy(dbus, domain, &busy)) {
        cocoErrorSet(
            &err, COCO_ERROR_MIGRATION_PHASE,
            _("a migration of domain '%1$s' is already running as job '%2$s'"),
            domain, busy);
        cocoAgentDBusReturnError(inv, err);
        return;
    }
    dj = g_new0(CocoAgentDBusJob, 1);
    dj->dbus = dbus;
    dj->job = g_steal_pointer(&job);
    dj->path =
        g_strdup_printf("%s/Job/%u", COCO_AGENT_DBUS_PATH, ++dbus->next_job);
    dj->owner = g_strdup(sender ? sender : "");
    dj->pending = g_object_ref(inv);
    dj->sent = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                     (GDestroyNotify)g_variant_unref);
    g_hash_table_insert(dbus->jobs, dj->path, dj);
    cocoAgentJobStart(dj->job, &cocoAgentDBusJobCallbacks, dj);
}

static void
cocoAgentDBusJobOnAbort(GObject *source G_GNUC_UNUSED, GAsyncResult *res,
                        gpointer opaque)
{
    g_autoptr(GDBusMethodInvocation) inv = opaque;
    g_autoptr(GError) err = NULL;

    if (cocoAgentJobAbortFinish(NULL, res, &err) < 0)
        cocoAgentDBusReturnError(inv, err);
    else
        g_dbus_method_invocation_return_value(inv, NULL);
}

static void
cocoAgentDBusJobAbortCall(CocoAgentDBusJob *dj, GDBusMethodInvocation *inv)
{
    g_message("virtcocod: job '%s': abort asked by '%s'", dj->path,
              NULLSTR(g_dbus_method_invocation_get_sender(inv)));
    cocoAgentJobAbort(dj->job, cocoAgentDBusJobOnAbort, g_object_ref(inv));
}

static void
cocoAgentDBusJobGetRecordCall(CocoAgentDBusJob *dj, GDBusMethodInvocation *inv)
{
    g_autoptr(JsonObject) rec = cocoAgentJobGetRecord(dj->job);
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_NULL);
    g_autofree char *text = NULL;

    if (rec)
        json_node_init_object(node, rec);
    text = json_to_string(node, FALSE);
    g_dbus_method_invocation_return_value(inv, g_variant_new("(s)", text));
}

/* org.libvirtcoco.Agent1.Job's methods: one row per method, its polkit
 * action beside it. */
static const struct {
    const char *name;
    const char *action;
    void (*handler)(CocoAgentDBusJob *dj, GDBusMethodInvocation *inv);
} cocoAgentDBusJobMethods[] = {
    {"Abort", COCO_AGENT_DBUS_ACTION_MIGRATE, cocoAgentDBusJobAbortCall},
    {"GetRecord", COCO_AGENT_DBUS_ACTION_READ, cocoAgentDBusJobGetRecordCall},
};

/* Run an authorised call on a job object and answer it. */
static void
cocoAgentDBusJobDispatch(CocoAgentDBus *dbus, GDBusMethodInvocation *inv)
{
    const char *method = g_dbus_method_invocation_get_method_name(inv);
    const char *path = g_dbus_method_invocation_get_object_path(inv);
    CocoAgentDBusJob *dj = g_hash_table_lookup(dbus->jobs, path);
    g_autoptr(GError) err = NULL;
    size_t i;

    if (!dj || !dj->object_id) {
        cocoErrorSet(&err, COCO_ERROR_INVALID_ARG,
                     _("job '%1$s' no longer exists"), path);
        cocoAgentDBusReturnError(inv, err);
        return;
    }
    for (i = 0; i < G_N_ELEMENTS(cocoAgentDBusJobMethods); i++) {
        if (STREQ(cocoAgentDBusJobMethods[i].name, method)) {
            cocoAgentDBusJobMethods[i].handler(dj, inv);
            return;
        }
    }
    cocoErrorSet(&err, COCO_ERROR_INVALID_ARG, _("unknown method '%1$s'"),
                 method);
    cocoAgentDBusReturnError(inv, err);
}

/* ---- Agent1 -------------------------------------------------------------- */

static int
cocoAgentDBusVfioCheck(GVariant *params G_GNUC_UNUSED, GVariant **out,
                       GError **error)
{
    g_autoptr(CocoVfioHostReport) r = NULL;
    g_autoptr(JsonNode) node = NULL;
    GVariant *dict;

    if (!(r = cocoVfioCheckHost("/dev", -1, NULL, error)))
        return -1;
    node = cocoAgentVfioReportToJson(r);
    if (!(dict = json_gvariant_deserialize(node, "a{sv}", NULL)))
        return cocoErrorSet(error, COCO_ERROR_INTERNAL, "%s",
                            _("cannot convert the VFIO report to D-Bus"));
    *out = g_variant_new_tuple(&dict, 1);
    return 0;
}

/* ---- the methods of org.libvirtcoco.Agent1 ------------------------------ */

/* Validate's input: more would only be a way to keep a thread busy. */
#define COCO_AGENT_DBUS_VALIDATE_MAX (1024 * 1024)

/* A method that may take long (parsing a caller's document, probing the
 * host's VFIO) runs on a thread of GIO's pool: the agent's main loop only
 * dispatches and answers. */
typedef int (*CocoAgentDBusBlockingFunc)(GVariant *params, GVariant **out,
                                         GError **error);

static void
cocoAgentDBusBlockingThread(GTask *task, gpointer source, gpointer data,
                            GCancellable *cancel)
{
    GDBusMethodInvocation *inv = data;
    CocoAgentDBusBlockingFunc func = (CocoAgentDBusBlockingFunc)(void (*)(
        void))g_object_get_data(G_OBJECT(task), "func");
    GVariant *out = NULL;
    GError *err = NULL;

    if (func(g_dbus_method_invocation_get_parameters(inv), &out, &err) < 0)
        g_task_return_error(task, err);
    else
        g_task_return_pointer(task, g_variant_ref_sink(out),
                              (GDestroyNotify)g_variant_unref);
}

static void
cocoAgentDBusBlockingDone(GObject *source, GAsyncResult *res, gpointer opaque)
{
    GDBusMethodInvocation *inv = opaque;
    g_autoptr(GError) err = NULL;
    GVariant *out = g_task_propagate_pointer(G_TASK(res), &err);

    if (!out)
        cocoAgentDBusReturnError(inv, err);
    else {
        g_dbus_method_invocation_return_value(inv, out);
        g_variant_unref(out);
    }
    g_object_unref(inv);
}

static void
cocoAgentDBusRunBlocking(GDBusMethodInvocation *inv,
                         CocoAgentDBusBlockingFunc func)
{
    g_autoptr(GTask) task =
        g_task_new(NULL, NULL, cocoAgentDBusBlockingDone, g_object_ref(inv));

    g_object_set_data(G_OBJECT(task), "func", (gpointer)(void (*)(void))func);
    g_task_set_task_data(task, g_object_ref(inv), g_object_unref);
    g_task_run_in_thread(task, cocoAgentDBusBlockingThread);
}

static void
cocoAgentDBusOnValidate(CocoAgentDBus *dbus, GDBusMethodInvocation *inv)
{
    const char *xml = NULL;
    g_autoptr(GError) err = NULL;

    g_variant_get(g_dbus_method_invocation_get_parameters(inv), "(&s)", &xml);
    if (strlen(xml) > COCO_AGENT_DBUS_VALIDATE_MAX) {
        cocoErrorSet(
            &err, COCO_ERROR_INVALID_ARG,
            _("the 'xml' argument of 'Validate' has '%1$zu' bytes, more than the limit of '%2$d'"),
            strlen(xml), COCO_AGENT_DBUS_VALIDATE_MAX);
        cocoAgentDBusReturnError(inv, err);
        return;
    }
    cocoAgentDBusRunBlocking(inv, cocoAgentDBusValidate);
}

static void
cocoAgentDBusOnCapabilities(CocoAgentDBus *dbus, GDBusMethodInvocation *inv)
{
    g_autoptr(JsonObject) probe = cocoAgentGetProbe(dbus->agent);
    g_autoptr(GError) err = NULL;
    GVariant *dict;

    json_object_remove_member(probe, "type");
    if (!(dict = cocoAgentDBusJsonToDict(probe))) {
        cocoErrorSet(&err, COCO_ERROR_INTERNAL, "%s",
                     _("cannot convert the agent's capabilities to D-Bus"));
        cocoAgentDBusReturnError(inv, err);
        return;
    }
    g_dbus_method_invocation_return_value(inv, g_variant_new_tuple(&dict, 1));
}

static void
cocoAgentDBusOnGetMigrations(CocoAgentDBus *dbus, GDBusMethodInvocation *inv)
{
    g_autoptr(JsonArray) arr = cocoAgentGetStatus(dbus->agent);
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_ARRAY);
    g_autofree char *text = NULL;

    json_node_set_array(node, arr);
    text = json_to_string(node, FALSE);
    g_dbus_method_invocation_return_value(inv, g_variant_new("(s)", text));
}

static void
cocoAgentDBusOnGetJobs(CocoAgentDBus *dbus, GDBusMethodInvocation *inv)
{
    GVariantBuilder b;
    GHashTableIter it;
    gpointer v;

    g_variant_builder_init(&b, G_VARIANT_TYPE("ao"));
    g_hash_table_iter_init(&it, dbus->jobs);
    while (g_hash_table_iter_next(&it, NULL, &v))
        if (((CocoAgentDBusJob *)v)->object_id)
            g_variant_builder_add(&b, "o", ((CocoAgentDBusJob *)v)->path);
    g_dbus_method_invocation_return_value(inv, g_variant_new("(ao)", &b));
}

static void
cocoAgentDBusOnVfioCheck(CocoAgentDBus *dbus, GDBusMethodInvocation *inv)
{
    cocoAgentDBusRunBlocking(inv, cocoAgentDBusVfioCheck);
}

typedef struct {
    const char *name;
    const char *action; /* the polkit action it needs */
    void (*handler)(CocoAgentDBus *dbus, GDBusMethodInvocation *inv);
} CocoAgentDBusMethod;

/* org.libvirtcoco.Agent1 (data/org.libvirtcoco.Agent1.xml): one row per
 * method, its polkit action beside it. */
static const CocoAgentDBusMethod cocoAgentDBusMethods[] = {
    {"Validate", COCO_AGENT_DBUS_ACTION_READ, cocoAgentDBusOnValidate},
    {"Capabilities", COCO_AGENT_DBUS_ACTION_READ, cocoAgentDBusOnCapabilities},
    {"GetMigrations", COCO_AGENT_DBUS_ACTION_READ,
     cocoAgentDBusOnGetMigrations},
    {"Migrate", COCO_AGENT_DBUS_ACTION_MIGRATE, cocoAgentDBusMigrate},
    {"GetJobs", COCO_AGENT_DBUS_ACTION_READ, cocoAgentDBusOnGetJobs},
    {"VfioCheck", COCO_AGENT_DBUS_ACTION_READ, cocoAgentDBusOnVfioCheck},
};

static const CocoAgentDBusMethod *
cocoAgentDBusMethodLookup(const char *name)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoAgentDBusMethods); i++) {
        if (STREQ(cocoAgentDBusMethods[i].name, name))
            return &cocoAgentDBusMethods[i];
    }
    return NULL;
}

/* Run an authorised call and answer it. */
static void
cocoAgentDBusDispatch(CocoAgentDBus *dbus, GDBusMethodInvocation *inv)
{
    const char *method = g_dbus_method_invocation_get_method_name(inv);
    const CocoAgentDBusMethod *m;
    g_autoptr(GError) err = NULL;

    if (STREQ(g_dbus_method_invocation_get_interface_name(inv),
              COCO_AGENT_DBUS_JOB_INTERFACE)) {
        cocoAgentDBusJobDispatch(dbus, inv);
        return;
    }
    if (!(m = cocoAgentDBusMethodLookup(method))) {
        cocoErrorSet(&err, COCO_ERROR_INVALID_ARG, _("unknown method '%1$s'"),
                     method);
        cocoAgentDBusReturnError(inv, err);
        return;
    }
    m->handler(dbus, inv);
}

/* The polkit action of a method: mutating ones need .migrate (the job's
 * Abort too). */
static const char *
cocoAgentDBusAction(const char *method)
{
    const CocoAgentDBusMethod *m = cocoAgentDBusMethodLookup(method);
    size_t i;

    if (m)
        return m->action;
    for (i = 0; i < G_N_ELEMENTS(cocoAgentDBusJobMethods); i++) {
        if (STREQ(cocoAgentDBusJobMethods[i].name, method))
            return cocoAgentDBusJobMethods[i].action;
    }
    /* Unknown: the strictest action; the dispatch refuses it anyway. */
    return COCO_AGENT_DBUS_ACTION_MIGRATE;
}

static void
cocoAgentDBusRefuse(GDBusMethodInvocation *inv, const GError *err)
{
    g_message("virtcocod: D-Bus %s refused: %s",
              g_dbus_method_invocation_get_method_name(inv), err->message);
    cocoAgentDBusReturnError(inv, err);
}

#ifdef WITH_POLKIT
typedef struct {
    CocoAgentDBus *dbus;
    GDBusMethodInvocation *inv;
    const char *action;
} CocoAgentDBusCheck;

static void
cocoAgentDBusOnPolkit(GObject *source, GAsyncResult *res, gpointer opaque)
{
    CocoAgentDBusCheck *check = opaque;
    g_autoptr(PolkitAuthorizationResult) result = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) refusal = NULL;
    const char *sender = g_dbus_method_invocation_get_sender(check->inv);

    result = polkit_authority_check_authorization_finish(
        POLKIT_AUTHORITY(source), res, &err);
    if (!result)
        cocoErrorSet(&refusal, COCO_ERROR_ACCESS_DENIED,
                     _("cannot authorise '%1$s' for '%2$s': %3$s"),
                     check->action, sender, err->message);
    else if (!polkit_authorization_result_get_is_authorized(result))
        cocoErrorSet(&refusal, COCO_ERROR_ACCESS_DENIED,
                     _("polkit denies action '%1$s' to the caller '%2$s'"),
                     check->action, sender);
    /* After cocoAgentDBusFree(), @result is NULL (cancelled): refuse
     * without touching check->dbus. */
    if (refusal)
        cocoAgentDBusRefuse(check->inv, refusal);
    else
        cocoAgentDBusDispatch(check->dbus, check->inv);
    g_object_unref(check->inv);
    g_free(check);
}
#endif

/* Authorise a call (polkit on the system bus, the agent's own user on a
 * session bus), then run it. */
static void
cocoAgentDBusAuthorize(CocoAgentDBus *dbus, const char *sender,
                       const char *method, GDBusMethodInvocation *inv)
{
    g_autoptr(GError) err = NULL;

    if (!dbus->system) {
        if (cocoAgentDBusAuthorizeSession(dbus, inv, &err) < 0)
            cocoAgentDBusRefuse(inv, err);
        else
            cocoAgentDBusDispatch(dbus, inv);
        return;
    }
#ifdef WITH_POLKIT
    {
        /* Asynchronous: an authentication prompt must not stop the agent's
         * loop (relays, peers, migrations). */
        g_autoptr(PolkitSubject) subject = NULL;
        CocoAgentDBusCheck *check;

        if (!sender) {
            cocoErrorSet(&err, COCO_ERROR_ACCESS_DENIED, "%s",
                         _("a D-Bus call without a sender is not allowed"));
            cocoAgentDBusRefuse(inv, err);
            return;
        }
        check = g_new0(CocoAgentDBusCheck, 1);
        check->dbus = dbus;
        check->inv = g_object_ref(inv);
        check->action = cocoAgentDBusAction(method);
        subject = polkit_system_bus_name_new(sender);
        polkit_authority_check_authorization(
            dbus->authority, subject, check->action, NULL,
            POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION,
            dbus->cancel, cocoAgentDBusOnPolkit, check);
    }
#else
    cocoErrorSet(&err, COCO_ERROR_NOT_SUPPORTED, "%s",
                 _("cannot authorise the call: built without polkit"));
    cocoAgentDBusRefuse(inv, err);
#endif
}

static void
cocoAgentDBusOnCall(GDBusConnection *conn G_GNUC_UNUSED, const char *sender,
                    const char *path G_GNUC_UNUSED,
                    const char *iface G_GNUC_UNUSED, const char *method,
                    GVariant *params G_GNUC_UNUSED, GDBusMethodInvocation *inv,
                    gpointer opaque)
{
    cocoAgentDBusAuthorize(opaque, sender, method, inv);
}

static void
cocoAgentDBusJobOnCall(GDBusConnection *conn G_GNUC_UNUSED, const char *sender,
                       const char *path G_GNUC_UNUSED,
                       const char *iface G_GNUC_UNUSED, const char *method,
                       GVariant *params G_GNUC_UNUSED,
                       GDBusMethodInvocation *inv, gpointer opaque)
{
    cocoAgentDBusAuthorize(((CocoAgentDBusJob *)opaque)->dbus, sender, method,
                           inv);
}

static GVariant *
cocoAgentDBusJobOnGetProperty(GDBusConnection *conn G_GNUC_UNUSED,
                              const char *sender G_GNUC_UNUSED,
                              const char *path G_GNUC_UNUSED,
                              const char *iface G_GNUC_UNUSED, const char *prop,
                              GError **error, gpointer opaque)
{
    GVariant *v = cocoAgentDBusJobProperty(opaque, prop);

    if (!v)
        g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY,
                    _("unknown property '%1$s'"), prop);
    return v;
}

static const GDBusInterfaceVTable cocoAgentDBusJobVTable = {
    .method_call = cocoAgentDBusJobOnCall,
    .get_property = cocoAgentDBusJobOnGetProperty,
};

static GVariant *
cocoAgentDBusOnGetProperty(GDBusConnection *conn G_GNUC_UNUSED,
                           const char *sender G_GNUC_UNUSED,
                           const char *path G_GNUC_UNUSED,
                           const char *iface G_GNUC_UNUSED, const char *prop,
                           GError **error, gpointer opaque G_GNUC_UNUSED)
{
    if (STREQ(prop, "Version"))
        return g_variant_new_string(PACKAGE_VERSION);
    g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY,
                _("unknown property '%1$s'"), prop);
    return NULL;
}

static const GDBusInterfaceVTable cocoAgentDBusVTable = {
    .method_call = cocoAgentDBusOnCall,
    .get_property = cocoAgentDBusOnGetProperty,
};

static void
cocoAgentDBusOnNameLost(GDBusConnection *conn G_GNUC_UNUSED, const char *name,
                        gpointer opaque G_GNUC_UNUSED)
{
    g_warning("virtcocod: lost or could not own the D-Bus name '%s'", name);
}

static void
cocoAgentDBusOnNameAcquired(GDBusConnection *conn G_GNUC_UNUSED,
                            const char *name, gpointer opaque G_GNUC_UNUSED)
{
    g_message("virtcocod: serving D-Bus name '%s'", name);
}

CocoAgentDBus *
cocoAgentDBusNew(CocoAgent *agent, const char *bus, GError **error)
{
    g_autoptr(CocoAgentDBus) dbus = NULL;
    g_autoptr(GError) err = NULL;
    GDBusInterfaceInfo *info;

    if (cocoAgentDBusCheckBus(bus, error) < 0)
        return NULL;
    if (STREQ(bus, "none")) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG, "%s",
                     _("cannot serve D-Bus on bus 'none'"));
        return NULL;
    }
    /* Migrate() calls libvirt, in the main context and in job threads. */
    cocoVirInitialize();
    dbus = g_new0(CocoAgentDBus, 1);
    dbus->agent = agent;
    dbus->system = STREQ(bus, "system");
    dbus->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                       (GDestroyNotify)cocoAgentDBusJobFree);
    if (!(dbus->conn = g_bus_get_sync(dbus->system ? G_BUS_TYPE_SYSTEM
                                                   : G_BUS_TYPE_SESSION,
                                      NULL, &err))) {
        cocoErrorSet(error, COCO_ERROR_SYSTEM,
                     _("cannot connect to the D-Bus '%1$s' bus: %2$s"), bus,
                     err->message);
        return NULL;
    }
    g_dbus_connection_set_exit_on_close(dbus->conn, FALSE);
#ifdef WITH_POLKIT
    dbus->cancel = g_cancellable_new();
    if (dbus->system &&
        !(dbus->authority = polkit_authority_get_sync(NULL, &err))) {
        cocoErrorSet(error, COCO_ERROR_SYSTEM,
                     _("cannot reach polkit on the system bus: %1$s"),
                     err->message);
        return NULL;
    }
#endif
    if (!(dbus->node = g_dbus_node_info_new_for_xml(cocoAgentDBusXml, &err))) {
        cocoErrorSet(error, COCO_ERROR_INTERNAL,
                     _("cannot parse the D-Bus interface description: %1$s"),
                     err->message);
        return NULL;
    }
    info = g_dbus_node_info_lookup_interface(dbus->node,
                                             COCO_AGENT_DBUS_INTERFACE);
    dbus->job_info = g_dbus_node_info_lookup_interface(
        dbus->node, COCO_AGENT_DBUS_JOB_INTERFACE);
    dbus->object_id = g_dbus_connection_register_object(
        dbus->conn, COCO_AGENT_DBUS_PATH, info, &cocoAgentDBusVTable, dbus,
        NULL, &err);
    if (!dbus->object_id) {
        cocoErrorSet(error, COCO_ERROR_SYSTEM,
                     _("cannot export '%1$s' on D-Bus: %2$s"),
                     COCO_AGENT_DBUS_PATH, err->message);
        return NULL;
    }
    dbus->owner_id = g_bus_own_name_on_connection(
        dbus->conn, COCO_AGENT_DBUS_NAME, G_BUS_NAME_OWNER_FLAGS_NONE,
        cocoAgentDBusOnNameAcquired, cocoAgentDBusOnNameLost, NULL, NULL);
    return g_steal_pointer(&dbus);
}

void
cocoAgentDBusFree(CocoAgentDBus *dbus)
{
    if (!dbus)
        return;
    /* The jobs' migrations go on in libvirtd; their callbacks stop here. */
    if (dbus->jobs)
        g_hash_table_unref(dbus->jobs);
    if (dbus->owner_id)
        g_bus_unown_name(dbus->owner_id);
    if (dbus->object_id)
        g_dbus_connection_unregister_object(dbus->conn, dbus->object_id);
    if (dbus->node)
        g_dbus_node_info_unref(dbus->node);
    if (dbus->conn)
        g_object_unref(dbus->conn);
#ifdef WITH_POLKIT
    if (dbus->cancel) {
        /* A check that ends after this answers with a refusal and never
         * touches @dbus. */
        g_cancellable_cancel(dbus->cancel);
        g_object_unref(dbus->cancel);
    }
    if (dbus->authority)
        g_object_unref(dbus->authority);
#endif
    g_free(dbus);
}
