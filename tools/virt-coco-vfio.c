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
#include "agent/cocoagentvfio.h"
#include "vfio/cocovfiocheck.h"

#include <stdio.h>
#include <inttypes.h>

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
        cocoCtlInfo(ctl, _("Fix unknown:  %1$s"), r->probe_error);
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
        g_autoptr(JsonNode) node = cocoAgentVfioReportToJson(r);

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
