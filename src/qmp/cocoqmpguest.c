/*
 * cocoqmpguest.c: what qemu-coco learns about a guest from QEMU's argv
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "proto/cocoproto.h"
#include "qmp/cocoqmpguest.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"

static void
cocoQmpRamBackendFree(CocoQmpRamBackend *ram)
{
    g_free(ram->id);
    g_free(ram->path);
    g_free(ram);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoQmpRamBackend, cocoQmpRamBackendFree);

void
cocoQmpGuestInfoFree(CocoQmpGuestInfo *info)
{
    if (!info)
        return;
    g_free(info->name);
    g_free(info->uuid);
    g_ptr_array_unref(info->ram);
    g_free(info);
}

/*
 * Split a QEMU option string "a,k=v,k2=v2" into keys and values. A ",,"
 * stands for a literal comma. The first item may lack "=" (an implied
 * key); it is returned under the key "".
 */
static GHashTable *
cocoQmpGuestSplitOpts(const char *str)
{
    GHashTable *opts =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GString) item = g_string_new(NULL);
    const char *p = str;
    gboolean first = TRUE;

    for (;;) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(item, ',');
            p += 2;
            continue;
        }
        if (*p == ',' || *p == '\0') {
            const char *eq = strchr(item->str, '=');

            if (eq) {
                g_hash_table_replace(
                    opts, g_strndup(item->str, (gsize)(eq - item->str)),
                    g_strdup(eq + 1));
            } else if (first) {
                g_hash_table_replace(opts, g_strdup(""), g_strdup(item->str));
            } else {
                g_hash_table_replace(opts, g_strdup(item->str), g_strdup("on"));
            }
            first = FALSE;
            g_string_truncate(item, 0);
            if (*p == '\0')
                break;
            p++;
            continue;
        }
        g_string_append_c(item, *p);
        p++;
    }
    return opts;
}

static gboolean
cocoQmpGuestBool(const char *v)
{
    return v && (STREQ(v, "on") || STREQ(v, "yes") || STREQ(v, "true"));
}

static int
cocoQmpGuestParseObject(CocoQmpGuestInfo *info, const char *arg, GError **error)
{
    g_autoptr(CocoQmpRamBackend) ram = NULL;

    if (arg[0] == '{') {
        g_autoptr(JsonParser) parser = json_parser_new_immutable();
        JsonObject *obj;
        JsonNode *n;

        if (!json_parser_load_from_data(parser, arg, -1, NULL) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
            g_autofree char *quoted = cocoProtoPrintable(arg);

            return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                                _("cannot parse the QEMU object '%1$s'"),
                                quoted);
        }
        obj = json_node_get_object(json_parser_get_root(parser));
        if (STRNEQ(cocoJsonStringDefault(obj, "qom-type", ""),
                   "memory-backend-file"))
            return 0;
        ram = g_new0(CocoQmpRamBackend, 1);
        ram->id = g_strdup(cocoJsonStringDefault(obj, "id", ""));
        ram->path = g_strdup(cocoJsonStringDefault(obj, "mem-path", ""));
        n = json_object_get_member(obj, "size");
        if (n && JSON_NODE_HOLDS_VALUE(n) &&
            json_node_get_value_type(n) == G_TYPE_INT64 &&
            json_node_get_int(n) >= 0)
            ram->size = (guint64)json_node_get_int(n);
        ram->share = cocoJsonBoolDefault(obj, "share", FALSE);
    } else {
        g_autoptr(GHashTable) opts = cocoQmpGuestSplitOpts(arg);
        const char *type = g_hash_table_lookup(opts, "");
        const char *size;

        if (!type)
            type = g_hash_table_lookup(opts, "qom-type");
        if (!type || STRNEQ(type, "memory-backend-file"))
            return 0;
        ram = g_new0(CocoQmpRamBackend, 1);
        ram->id = g_strdup(g_hash_table_lookup(opts, "id"));
        ram->path = g_strdup(g_hash_table_lookup(opts, "mem-path"));
        size = g_hash_table_lookup(opts, "size");
        if (size && cocoStrToU64(size, 10, &ram->size) < 0)
            ram->size = 0;
        ram->share = cocoQmpGuestBool(g_hash_table_lookup(opts, "share"));
    }
    if (!ram->path || !ram->path[0]) {
        g_autofree char *quoted = cocoProtoPrintable(ram->id);

        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("memory backend '%1$s' has no mem-path"), quoted);
    }
    g_ptr_array_add(info->ram, g_steal_pointer(&ram));
    return 0;
}

static int
cocoQmpGuestParseChardev(CocoQmpGuestInfo *info, const char *arg, int idx,
                         GError **error)
{
    g_autoptr(GHashTable) opts = cocoQmpGuestSplitOpts(arg);
    const char *fd;
    guint64 v;

    if (!STREQ_NULLABLE(g_hash_table_lookup(opts, "id"), "charmonitor"))
        return 0;
    fd = g_hash_table_lookup(opts, "fd");
    if (!fd)
        return 0;
    if (cocoStrToU64(fd, 10, &v) < 0 || v > G_MAXINT) {
        g_autofree char *quoted = cocoProtoPrintable(fd);

        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("the monitor descriptor '%1$s' is not a number"),
                            quoted);
    }
    info->monitorFd = (int)v;
    info->monitorArg = idx;
    return 0;
}

CocoQmpGuestInfo *
cocoQmpGuestInfoParse(int argc, char *const *argv, GError **error)
{
    g_autoptr(CocoQmpGuestInfo) info = g_new0(CocoQmpGuestInfo, 1);
    int i;

    info->monitorFd = -1;
    info->monitorArg = -1;
    info->ram =
        g_ptr_array_new_with_free_func((GDestroyNotify)cocoQmpRamBackendFree);

    for (i = 1; i + 1 < argc; i++) {
        const char *opt = argv[i];
        const char *val = argv[i + 1];

        if (opt[0] != '-')
            continue;
        if (opt[1] == '-')
            opt++;
        if (STREQ(opt, "-chardev")) {
            if (cocoQmpGuestParseChardev(info, val, i + 1, error) < 0)
                return NULL;
            i++;
        } else if (STREQ(opt, "-object")) {
            if (cocoQmpGuestParseObject(info, val, error) < 0)
                return NULL;
            i++;
        } else if (STREQ(opt, "-name")) {
            g_autoptr(GHashTable) opts = cocoQmpGuestSplitOpts(val);
            const char *name = g_hash_table_lookup(opts, "guest");

            if (!name)
                name = g_hash_table_lookup(opts, "");
            g_free(info->name);
            info->name = g_strdup(name);
            i++;
        } else if (STREQ(opt, "-uuid")) {
            g_free(info->uuid);
            info->uuid = g_strdup(val);
            i++;
        }
    }
    return g_steal_pointer(&info);
}

char *
cocoQmpGuestRewriteMonitor(const char *arg, int fd)
{
    g_auto(GStrv) parts = g_strsplit(arg, ",", -1);
    size_t i;

    for (i = 0; parts[i]; i++) {
        if (STRPREFIX(parts[i], "fd=")) {
            g_free(parts[i]);
            parts[i] = g_strdup_printf("fd=%d", fd);
        }
    }
    return g_strjoinv(",", parts);
}

JsonObject *
cocoQmpGuestInfoToHello(const CocoQmpGuestInfo *info, gint64 pid)
{
    JsonObject *hello = json_object_new();
    JsonArray *ram = json_array_new();
    guint i;

    json_object_set_string_member(hello, "type", "hello");
    json_object_set_int_member(hello, "version", 1);
    json_object_set_int_member(hello, "pid", pid);
    if (info->name)
        json_object_set_string_member(hello, "name", info->name);
    if (info->uuid)
        json_object_set_string_member(hello, "uuid", info->uuid);
    for (i = 0; i < info->ram->len; i++) {
        CocoQmpRamBackend *r = g_ptr_array_index(info->ram, i);
        JsonObject *o = json_object_new();

        json_object_set_string_member(o, "id", NULLSTR(r->id));
        json_object_set_string_member(o, "path", r->path);
        json_object_set_int_member(o, "size",
                                   r->size > G_MAXINT64 ? -1 : (gint64)r->size);
        json_object_set_boolean_member(o, "share", r->share);
        json_array_add_object_element(ram, o);
    }
    json_object_set_array_member(hello, "ram", ram);
    return hello;
}
