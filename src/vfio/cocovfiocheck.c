/*
 * cocovfiocheck.c: the host's VFIO risk report
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "vfio/cocovfiocheck.h"
#include "vfio/cocovfiocaps.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"

#include <sys/utsname.h>

COCO_ENUM_IMPL(cocoVfioRisk, COCO_VFIO_RISK_LAST, "none", "low", "high",
               "unknown");

void
cocoVfioHostReportFree(CocoVfioHostReport *report)
{
    if (!report)
        return;
    g_free(report->kernel_release);
    if (report->groups)
        g_ptr_array_unref(report->groups);
    g_free(report->target);
    g_free(report->probe_error);
    cocoVfioIommuInfoFree(report->info);
    g_free(report->verdict);
    g_free(report);
}

CocoVfioRisk
cocoVfioRiskFromInfo(CocoVfioFixStatus fix, const CocoVfioIommuInfo *info)
{
    size_t i;

    if (fix == COCO_VFIO_FIX_PRESENT || fix == COCO_VFIO_FIX_NOT_NEEDED)
        return COCO_VFIO_RISK_NONE;
    if (!info)
        return COCO_VFIO_RISK_UNKNOWN;
    for (i = 0; i < info->nranges; i++) {
        if (info->ranges[i].last == G_MAXUINT64)
            return COCO_VFIO_RISK_HIGH;
    }
    return COCO_VFIO_RISK_LOW;
}

/* Whether "MAJOR.MINOR..." is at least 6.18. */
static bool
cocoVfioReleaseHasFix(const char *release)
{
    g_auto(GStrv) parts = g_strsplit(release, ".", 3);
    uint64_t major;
    uint64_t minor;
    g_autofree char *minor_digits = NULL;
    size_t n;

    if (!parts[0] || !parts[1])
        return false;
    n = strspn(parts[1], "0123456789");
    minor_digits = g_strndup(parts[1], n);
    if (cocoStrToU64(parts[0], 10, &major) < 0 ||
        cocoStrToU64(minor_digits, 10, &minor) < 0)
        return false;
    return major > 6 || (major == 6 && minor >= 18);
}

static void
cocoVfioReportVerdict(CocoVfioHostReport *r)
{
    g_free(r->verdict);
    switch (r->risk) {
    case COCO_VFIO_RISK_NONE:
        r->verdict = g_strdup(_(
            "safe: the kernel removes DMA mappings up to the end of the 64-bit IOVA space"));
        break;
    case COCO_VFIO_RISK_LOW:
        r->verdict = g_strdup(_(
            "low risk: the kernel lacks the range-safe unmap fix, but no IOVA range of this IOMMU reaches 2^64-1"));
        break;
    case COCO_VFIO_RISK_HIGH:
        r->verdict = g_strdup(_(
            "unsafe: the kernel lacks the range-safe unmap fix and an IOVA range reaches 2^64-1, so a 64-bit vIOMMU guest can leave DMA mappings and pinned pages behind; use kernel 6.18 or later or limit the vIOMMU address width"));
        break;
    case COCO_VFIO_RISK_UNKNOWN:
    case COCO_VFIO_RISK_LAST:
    default:
        if (!r->vfio_present)
            r->verdict = g_strdup(_(
                "no VFIO devices on this host (/dev/vfio/vfio is missing): nothing to check"));
        else
            r->verdict = g_strdup(_(
                "unknown: no VFIO group could be opened to probe the kernel; name one with --group or --device"));
        break;
    }
}

void
cocoVfioHostReportFromContainer(CocoVfioHostReport *report,
                                CocoVfioContainer *container,
                                const char *target)
{
    report->probed = true;
    g_free(report->target);
    report->target = g_strdup(target);
    report->backend = cocoVfioContainerGetBackend(container);
    report->fix = cocoVfioContainerGetFixStatus(container);
    report->unmap_all = cocoVfioContainerHasUnmapAll(container);
    cocoVfioIommuInfoFree(report->info);
    report->info = cocoVfioIommuInfoCopy(cocoVfioContainerGetInfo(container));
    report->risk = cocoVfioRiskFromInfo(report->fix, report->info);
    cocoVfioReportVerdict(report);
}

static int
cocoVfioGroupCompare(gconstpointer a, gconstpointer b)
{
    const char *x = *(const char *const *)a;
    const char *y = *(const char *const *)b;
    size_t lx = strlen(x);
    size_t ly = strlen(y);

    if (lx != ly)
        return lx < ly ? -1 : 1;
    return strcmp(x, y);
}

CocoVfioHostReport *
cocoVfioCheckHost(const char *devroot, int group, const char *bdf,
                  GError **error)
{
    g_autoptr(CocoVfioHostReport) r = g_new0(CocoVfioHostReport, 1);
    g_autofree char *vfiodir = g_build_filename(devroot, "vfio", NULL);
    g_autofree char *vfiodev = g_build_filename(vfiodir, "vfio", NULL);
    g_autoptr(CocoVfioContainer) c = NULL;
    g_autoptr(GDir) dir = NULL;
    g_autofree char *target = NULL;
    struct utsname uts;

    if (uname(&uts) == 0)
        r->kernel_release = g_strdup(uts.release);
    else
        r->kernel_release = g_strdup("unknown");
    r->release_has_fix = cocoVfioReleaseHasFix(r->kernel_release);
    r->vfio_present = g_file_test(vfiodev, G_FILE_TEST_EXISTS);
    r->groups = g_ptr_array_new_with_free_func(g_free);
    r->risk = COCO_VFIO_RISK_UNKNOWN;
    r->fix = COCO_VFIO_FIX_UNKNOWN;

    if ((dir = g_dir_open(vfiodir, 0, NULL))) {
        const char *name;

        while ((name = g_dir_read_name(dir))) {
            uint64_t n;

            if (cocoStrToU64(name, 10, &n) == 0)
                g_ptr_array_add(r->groups, g_strdup(name));
        }
        g_ptr_array_sort(r->groups, cocoVfioGroupCompare);
    }

    if (bdf) {
        if (!(c = cocoVfioContainerOpenDevice(bdf, 0, error)))
            return NULL;
        target = g_strdup(bdf);
    } else if (group >= 0) {
        if (!(c = cocoVfioContainerOpenGroup((unsigned int)group, 0, error)))
            return NULL;
        target = g_strdup_printf("group %d", group);
    } else if (r->vfio_present && r->groups->len > 0 &&
               STREQ(devroot, "/dev")) {
        const char *first = g_ptr_array_index(r->groups, 0);
        g_autoptr(GError) err = NULL;

        c = cocoVfioContainerOpenGroup(
            (unsigned int)g_ascii_strtoull(first, NULL, 10), 0, &err);
        if (!c)
            r->probe_error = g_strdup(err->message);
        target = g_strdup_printf("group %s", first);
    }

    if (c)
        cocoVfioHostReportFromContainer(r, c, target);
    else
        cocoVfioReportVerdict(r);
    return g_steal_pointer(&r);
}
