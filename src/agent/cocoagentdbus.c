/*
 * cocoagentdbus.c: the D-Bus API of virtcocod
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentdbus.h"
#include "agent/cocoagentvalidate.h"
#include "agent/cocoagentdbusxml.h"
#include "util/cocoerror.h"

#include <gio/gio.h>
#include <json-glib/json-gvariant.h>
#include <unistd.h>

#ifdef WITH_POLKIT
# include <polkit/polkit.h>
#endif

struct _CocoAgentDBus {
    CocoAgent *agent;
    GDBusConnection *conn;
    GDBusNodeInfo *node;
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

/* Run an authorised call and answer it. */
static void
cocoAgentDBusDispatch(CocoAgentDBus *dbus, GDBusMethodInvocation *inv)
{
    const char *method = g_dbus_method_invocation_get_method_name(inv);
    GVariant *params = g_dbus_method_invocation_get_parameters(inv);
    g_autoptr(GError) err = NULL;
    GVariant *out = NULL;

    if (STREQ(method, "Validate")) {
        if (cocoAgentDBusValidate(params, &out, &err) < 0) {
            cocoAgentDBusReturnError(inv, err);
            return;
        }
    } else if (STREQ(method, "Capabilities")) {
        g_autoptr(JsonObject) probe = cocoAgentGetProbe(dbus->agent);
        GVariant *dict;

        json_object_remove_member(probe, "type");
        if (!(dict = cocoAgentDBusJsonToDict(probe))) {
            cocoErrorSet(&err, COCO_ERROR_INTERNAL, "%s",
                         _("cannot convert the agent's capabilities to D-Bus"));
            cocoAgentDBusReturnError(inv, err);
            return;
        }
        out = g_variant_new_tuple(&dict, 1);
    } else if (STREQ(method, "GetMigrations")) {
        g_autoptr(JsonArray) arr = cocoAgentGetStatus(dbus->agent);
        g_autoptr(JsonNode) node = json_node_new(JSON_NODE_ARRAY);
        g_autofree char *text = NULL;

        json_node_set_array(node, arr);
        text = json_to_string(node, FALSE);
        out = g_variant_new("(s)", text);
    } else {
        cocoErrorSet(&err, COCO_ERROR_INVALID_ARG, _("unknown method '%1$s'"),
                     method);
        cocoAgentDBusReturnError(inv, err);
        return;
    }
    g_dbus_method_invocation_return_value(inv, out);
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

static void
cocoAgentDBusOnCall(GDBusConnection *conn G_GNUC_UNUSED,
                    const char *sender G_GNUC_UNUSED,
                    const char *path G_GNUC_UNUSED,
                    const char *iface G_GNUC_UNUSED,
                    const char *method G_GNUC_UNUSED,
                    GVariant *params G_GNUC_UNUSED, GDBusMethodInvocation *inv,
                    gpointer opaque)
{
    CocoAgentDBus *dbus = opaque;
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
        check->action = COCO_AGENT_DBUS_ACTION_READ;
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
    dbus = g_new0(CocoAgentDBus, 1);
    dbus->agent = agent;
    dbus->system = STREQ(bus, "system");
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
