/*
 * virt-coco-vfio.c: "virt-coco vfio check"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Reports whether the host kernel removes VFIO DMA mappings up to the end
 * of the 64-bit IOVA space (the Linux 6.18 type1 fix), whether it offers
 * VFIO_UNMAP_ALL, the IOMMU's IOVA ranges and a risk verdict. Exit status:
 * 0 for a report (also on a host without VFIO), 1 when the verdict is
 * "high" or the named group/device cannot be probed, 2 on a usage error.
 */

#include "virt-coco.h"
#include "libvirt-coco/libvirt-coco.h"
#include "vfio/cocovfiocheck.h"

#include <stdio.h>
#include <inttypes.h>

static char *
cocoVfioHex(uint64_t v)
{
    return g_strdup_printf("0x%" PRIx64 "", v);
}

static JsonNode *
cocoVfioReportToJson(const CocoVfioHostReport *r)
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

static void
cocoVfioReportPrint(CocoCtl *ctl, const CocoVfioHostReport *r)
{
    g_autoptr(GString) groups = g_string_new(NULL);
    guint i;

    cocoCtlInfo(
        ctl, _("Kernel:       %1$s (%2$s)"), r->kernel_release,
        r->release_has_fix
            ? _("6.18 or later")
            : _("older than 6.18: fixed only if the fix was backported"));
    for (i = 0; r->groups && i < r->groups->len; i++)
        g_string_append_printf(groups, "%s%s", i ? " " : "",
                               (const char *)g_ptr_array_index(r->groups, i));
    if (!r->vfio_present)
        cocoCtlInfo(
            ctl, _("VFIO:         not available (/dev/vfio/vfio is missing)"));
    else
        cocoCtlInfo(ctl, _("VFIO:         available, groups: %1$s"),
                    groups->len ? groups->str : _("none"));
    if (r->probe_error)
        cocoCtlInfo(ctl, _("Probe:        %1$s could not be opened: %2$s"),
                    r->target, r->probe_error);
    if (r->probed) {
        cocoCtlInfo(ctl, _("Probed:       %1$s (%2$s)"), r->target,
                    cocoVfioBackendTypeToString(r->backend));
        cocoCtlInfo(ctl, _("Fix status:   %1$s"),
                    cocoVfioFixStatusTypeToString(r->fix));
        cocoCtlInfo(ctl, _("UNMAP_ALL:    %1$s"),
                    r->unmap_all ? _("yes") : _("no"));
        cocoCtlInfo(ctl, _("Page size:    0x%1$" PRIx64 ""),
                    r->info->page_size);
        for (i = 0; i < r->info->nranges; i++)
            cocoCtlInfo(ctl,
                        _("IOVA range:   [0x%1$" PRIx64 ", 0x%2$" PRIx64 "]"),
                        r->info->ranges[i].first, r->info->ranges[i].last);
    }
    cocoCtlInfo(ctl, _("Risk:         %1$s"),
                cocoVfioRiskTypeToString(r->risk));
    cocoCtlInfo(ctl, _("Verdict:      %1$s"), r->verdict);
}

static int
cocoCmdVfioCheck(CocoCtl *ctl, int group, const char *device)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoVfioHostReport) r = NULL;

    if (!(r = cocoVfioCheckHost("/dev", group, device, &err)))
        return cocoCtlReportError(ctl, err);
    if (ctl->json) {
        g_autoptr(JsonNode) node = cocoVfioReportToJson(r);

        cocoCtlPrintJson(ctl, node);
    } else {
        cocoVfioReportPrint(ctl, r);
    }
    return r->risk == COCO_VFIO_RISK_HIGH ? COCO_EXIT_REJECTED : COCO_EXIT_OK;
}

int
cocoCmdVfio(CocoCtl *ctl, int argc, char **argv)
{
    gint group = -1;
    g_autofree char *device = NULL;
    GOptionEntry entries[] = {
        {"group", 'g', 0, G_OPTION_ARG_INT, &group,
         N_("probe the IOMMU group N (/dev/vfio/N)"), N_("N")},
        {"device", 'd', 0, G_OPTION_ARG_STRING, &device,
         N_("probe the IOMMU group of the PCI device BDF"), N_("BDF")},
        G_OPTION_ENTRY_NULL,
    };

    if (!cocoCtlParseOptions(ctl, entries, &argc, &argv))
        return COCO_EXIT_USAGE;
    if (argc < 2)
        return cocoCtlUsageError(
            ctl, _("missing subcommand: use 'virt-coco vfio check'"));
    if (STRNEQ(argv[1], "check"))
        return cocoCtlUsageError(
            ctl, _("unknown vfio subcommand '%1$s': use 'check'"), argv[1]);
    if (argc > 2)
        return cocoCtlUsageError(ctl, _("unexpected argument '%1$s'"), argv[2]);
    if (group >= 0 && device)
        return cocoCtlUsageError(
            ctl, _("--group and --device cannot be used together"));
    if (group < -1)
        return cocoCtlUsageError(
            ctl, _("--group needs a group number, not '%1$d'"), group);
    return cocoCmdVfioCheck(ctl, group, device);
}
