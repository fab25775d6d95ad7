/*
 * cocoqmphostdev.c: a VFIO host device hot-plugged into a confidential
 * domain, as the relay sees it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "proto/cocoproto.h"
#include "qmp/cocoqmphostdev.h"
#include "util/cocomath.h"
#include "vfio/cocovfiopolicy.h"

/* QEMU's vIOMMU devices by libvirt's model names. */
static const struct {
    const char *driver;
    const char *model;
} cocoQmpViommuDrivers[] = {
    {"intel-iommu", "intel"},       {"amd-iommu", "amd"},
    {"virtio-iommu-pci", "virtio"}, {"virtio-iommu-device", "virtio"},
    {"arm-smmuv3", "smmuv3"},
};

/* VFIO PCI devices. */
static const char *const cocoQmpVfioDrivers[] = {
    "vfio-pci",
    "vfio-pci-nohotplug",
};

void
cocoQmpViommuClear(CocoQmpViommu *viommu)
{
    g_clear_pointer(&viommu->model, g_free);
    viommu->awBits = 0;
}

/* Libvirt's model for QEMU's @driver, the driver itself for an IOMMU we do
 * not know (treated as wide), or NULL for a device that is no IOMMU. */
static const char *
cocoQmpViommuModel(const char *driver)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoQmpViommuDrivers); i++) {
        if (STREQ(driver, cocoQmpViommuDrivers[i].driver))
            return cocoQmpViommuDrivers[i].model;
    }
    if (g_str_has_suffix(driver, "-iommu") || STRPREFIX(driver, "virtio-iommu"))
        return driver;
    return NULL;
}

/* QemuOpts "a=b,c=d" ("," doubled inside a value) into key/value pairs;
 * a first element without "=" is stored under @implied. */
static GHashTable *
cocoQmpOptsParse(const char *text, const char *implied)
{
    GHashTable *opts =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GString) cur = g_string_new(NULL);
    gboolean first = TRUE;
    const char *p = text;

    for (;;) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(cur, ',');
            p += 2;
            continue;
        }
        if (*p && *p != ',') {
            g_string_append_c(cur, *p++);
            continue;
        }
        {
            const char *eq = strchr(cur->str, '=');

            if (eq)
                g_hash_table_replace(opts, g_strndup(cur->str, eq - cur->str),
                                     g_strdup(eq + 1));
            else if (first && implied && cur->len)
                g_hash_table_replace(opts, g_strdup(implied),
                                     g_strdup(cur->str));
        }
        first = FALSE;
        g_string_truncate(cur, 0);
        if (!*p)
            break;
        p++;
    }
    return opts;
}

/* A JSON object's members as strings (numbers printed). */
static GHashTable *
cocoQmpOptsFromJson(JsonObject *o)
{
    GHashTable *opts =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GList) members = json_object_get_members(o);
    GList *l;

    for (l = members; l; l = l->next) {
        JsonNode *n = json_object_get_member(o, l->data);
        char *val = NULL;

        if (!JSON_NODE_HOLDS_VALUE(n))
            continue;
        if (json_node_get_value_type(n) == G_TYPE_STRING)
            val = g_strdup(json_node_get_string(n));
        else if (json_node_get_value_type(n) == G_TYPE_INT64)
            val = g_strdup_printf("%" G_GINT64_FORMAT "", json_node_get_int(n));
        if (val)
            g_hash_table_replace(opts, g_strdup(l->data), val);
    }
    return opts;
}

/* "-device" in either of its forms. */
static GHashTable *
cocoQmpDeviceOpts(const char *arg)
{
    if (arg[0] == '{') {
        g_autoptr(JsonParser) p = json_parser_new();
        JsonNode *root;

        if (!json_parser_load_from_data(p, arg, -1, NULL) ||
            !(root = json_parser_get_root(p)) || !JSON_NODE_HOLDS_OBJECT(root))
            return NULL;
        return cocoQmpOptsFromJson(json_node_get_object(root));
    }
    return cocoQmpOptsParse(arg, "driver");
}

static unsigned int
cocoQmpAwBits(GHashTable *opts)
{
    const char *v = g_hash_table_lookup(opts, "aw-bits");
    uint64_t n;

    if (!v || cocoStrToU64(v, 10, &n) < 0 || n > 64)
        return v ? 64 : 0; /* unreadable: the widest */
    return (unsigned int)n;
}

void
cocoQmpViommuFromArgv(int argc, char *const *argv, CocoQmpViommu *viommu)
{
    int i;

    cocoQmpViommuClear(viommu);
    for (i = 1; i + 1 < argc; i++) {
        g_autoptr(GHashTable) opts = NULL;
        const char *model;

        if (STREQ(argv[i], "-device")) {
            opts = cocoQmpDeviceOpts(argv[++i]);
            if (!opts || !g_hash_table_lookup(opts, "driver") ||
                !(model =
                      cocoQmpViommuModel(g_hash_table_lookup(opts, "driver"))))
                continue;
        } else if (STREQ(argv[i], "-machine") || STREQ(argv[i], "-M")) {
            opts = cocoQmpOptsParse(argv[++i], "type");
            if (!STREQ_NULLABLE(g_hash_table_lookup(opts, "iommu"), "smmuv3"))
                continue;
            model = "smmuv3";
        } else {
            continue;
        }
        g_free(viommu->model);
        viommu->model = g_strdup(model);
        viommu->awBits = cocoQmpAwBits(opts);
    }
}

bool
cocoQmpViommuIsWide(const CocoQmpViommu *viommu)
{
    return cocoVfioPolicyIommuIsWide(viommu->model, viommu->awBits);
}

static bool
cocoQmpIsVfioDriver(const char *driver)
{
    size_t i;

    for (i = 0; driver && i < G_N_ELEMENTS(cocoQmpVfioDrivers); i++) {
        if (STREQ(driver, cocoQmpVfioDrivers[i]))
            return true;
    }
    return false;
}

bool
cocoQmpHostdevIsVfioAdd(const CocoQmpMessage *msg, char **device)
{
    g_autoptr(GHashTable) opts = NULL;
    JsonObject *args = cocoQmpMessageGetArguments(msg);
    const char *name;

    if (device)
        *device = NULL;
    if (!msg->name || !args)
        return false;
    if (STREQ(msg->name, "device_add")) {
        opts = cocoQmpOptsFromJson(args);
    } else if (STREQ(msg->name, "human-monitor-command")) {
        g_autofree char *line =
            g_strdup(cocoQmpMessageGetArgString(msg, "command-line"));
        g_auto(GStrv) words = NULL;

        if (!line)
            return false;
        words = g_strsplit(g_strstrip(line), " ", 2);
        if (!words[0] || STRNEQ(words[0], "device_add") || !words[1])
            return false;
        opts = cocoQmpDeviceOpts(g_strstrip(words[1]));
    } else {
        return false;
    }
    if (!opts || !cocoQmpIsVfioDriver(g_hash_table_lookup(opts, "driver")))
        return false;
    if (!(name = g_hash_table_lookup(opts, "host")) &&
        !(name = g_hash_table_lookup(opts, "sysfsdev")) &&
        !(name = g_hash_table_lookup(opts, "id")))
        name = g_hash_table_lookup(opts, "driver");
    if (device)
        *device = g_strdup(name);
    return true;
}

char *
cocoQmpHostdevRefusal(const char *device, const CocoQmpViommu *viommu,
                      const char *reason)
{
    g_autofree char *quoted = cocoProtoPrintable(device);
    g_autofree char *model = cocoProtoPrintable(viommu->model);

    return g_strdup_printf(
        _("qemu-coco: refusing to hot-plug the VFIO host device '%1$s' behind the vIOMMU '%2$s', which lets the guest use IOVAs up to 2^64-1: %3$s"),
        quoted, model, reason);
}
