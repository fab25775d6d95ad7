/*
 * cocoagentvfio.c: a host's VFIO safety report as JSON, for
 * "virt-coco vfio check --json" and the agent's D-Bus VfioCheck()
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentvfio.h"
#include "agent/cocoagentdomain.h"
#include "libvirt-coco/libvirt-coco.h"
#include "vfio/cocovfiopolicy.h"

#include <inttypes.h>

static char *
cocoVfioHex(uint64_t v)
{
    return g_strdup_printf("0x%" PRIx64 "", v);
}

JsonNode *
cocoAgentVfioReportToJson(const CocoVfioHostReport *r)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    guint i;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "kernel");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "release");
    json_builder_add_string_value(b, r->kernel_release);
    json_builder_set_member_name(b, "release_at_least_6_18");
    json_builder_add_boolean_value(b, r->release_has_fix);
    json_builder_end_object(b);

    json_builder_set_member_name(b, "vfio_present");
    json_builder_add_boolean_value(b, r->vfio_present);
    json_builder_set_member_name(b, "groups");
    json_builder_begin_array(b);
    for (i = 0; r->groups && i < r->groups->len; i++)
        json_builder_add_string_value(b, g_ptr_array_index(r->groups, i));
    json_builder_end_array(b);

    json_builder_set_member_name(b, "probed");
    json_builder_add_boolean_value(b, r->probed);
    if (r->target) {
        json_builder_set_member_name(b, "target");
        json_builder_add_string_value(b, r->target);
    }
    if (r->probe_error) {
        json_builder_set_member_name(b, "probe_error");
        json_builder_add_string_value(b, r->probe_error);
    }
    if (r->probed) {
        json_builder_set_member_name(b, "backend");
        json_builder_add_string_value(b,
                                      cocoVfioBackendTypeToString(r->backend));
        json_builder_set_member_name(b, "fix");
        json_builder_add_string_value(b, cocoVfioFixStatusTypeToString(r->fix));
        json_builder_set_member_name(b, "unmap_all");
        json_builder_add_boolean_value(b, r->unmap_all);
        json_builder_set_member_name(b, "page_size");
        json_builder_add_int_value(b, (gint64)r->info->page_size);
        json_builder_set_member_name(b, "iova_ranges");
        json_builder_begin_array(b);
        for (i = 0; i < r->info->nranges; i++) {
            g_autofree char *first = cocoVfioHex(r->info->ranges[i].first);
            g_autofree char *last = cocoVfioHex(r->info->ranges[i].last);

            json_builder_begin_object(b);
            json_builder_set_member_name(b, "first");
            json_builder_add_string_value(b, first);
            json_builder_set_member_name(b, "last");
            json_builder_add_string_value(b, last);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        if (r->info->has_dma_avail) {
            json_builder_set_member_name(b, "dma_avail");
            json_builder_add_int_value(b, r->info->dma_avail);
        }
    } else {
        json_builder_set_member_name(b, "fix");
        json_builder_add_string_value(b, cocoVfioFixStatusTypeToString(r->fix));
    }
    json_builder_set_member_name(b, "risk");
    json_builder_add_string_value(b, cocoVfioRiskTypeToString(r->risk));
    json_builder_set_member_name(b, "verdict");
    json_builder_add_string_value(b, r->verdict);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

int
cocoAgentVfioCheckHotplug(const char *pid_dir, const char *name,
                          const char *devroot, GError **error)
{
    g_autoptr(CocoMigrationDef) def = NULL;
    g_autoptr(CocoVfioHostReport) report = NULL;
    g_autoptr(GError) err = NULL;
    CocoVfioFixStatus fix = COCO_VFIO_FIX_UNKNOWN;
    const char *detail = NULL;
    unsigned int vcpus;

    if (cocoAgentDomainLoad(pid_dir, name, &def, &vcpus, error) < 0)
        return -1;
    if ((report = cocoVfioCheckHost(devroot, -1, NULL, &err))) {
        fix = report->fix;
        detail = report->probe_error;
        if (!report->vfio_present)
            detail = _("this host has no VFIO (/dev/vfio/vfio is missing)");
    } else {
        detail = err->message;
    }
    return cocoVfioPolicyCheckHost(def, fix, detail, NULL, error);
}
