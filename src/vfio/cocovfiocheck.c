/*
 * cocovfiocheck.c: the host's VFIO risk report
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "vfio/cocovfiocheck.h"
#include "vfio/cocovfiocaps.h"
#include "vfio/cocovfiocontainer.h"
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
    const char *why = NULLSTR(r->probe_error);
    bool unknown = r->fix == COCO_VFIO_FIX_UNKNOWN;

    g_free(r->verdict);
    switch (r->risk) {
    case COCO_VFIO_RISK_NONE:
        r->verdict = g_strdup(_(
            "safe: the kernel removes DMA mappings up to the end of the 64-bit IOVA space"));
        break;
    case COCO_VFIO_RISK_LOW:
        if (unknown)
            r->verdict = g_strdup_printf(
                _("low risk: whether the kernel has the range-safe unmap fix is unknown (%1$s), but no IOVA range of this IOMMU reaches 2^64-1"),
                why);
        else
            r->verdict = g_strdup(_(
                "low risk: the kernel lacks the range-safe unmap fix, but no IOVA range of this IOMMU reaches 2^64-1"));
        break;
    case COCO_VFIO_RISK_HIGH:
        if (unknown)
            r->verdict = g_strdup_printf(
                _("unsafe: whether the kernel has the range-safe unmap fix is unknown (%1$s), so it is treated as missing, and an IOVA range reaches 2^64-1, so a 64-bit vIOMMU guest can leave DMA mappings and pinned pages behind; use kernel 6.18 or later or limit the vIOMMU address width"),
                why);
        else
            r->verdict = g_strdup(_(
                "unsafe: the kernel lacks the range-safe unmap fix and an IOVA range reaches 2^64-1, so a 64-bit vIOMMU guest can leave DMA mappings and pinned pages behind; use kernel 6.18 or later or limit the vIOMMU address width"));
        break;
    case COCO_VFIO_RISK_UNKNOWN:
    case COCO_VFIO_RISK_LAST:
    default:
        if (!r->vfio_present)
            r->verdict = g_strdup(_(
                "no VFIO devices on this host (/dev/vfio/vfio is missing): nothing to check"));
        else if (r->probe_error)
            r->verdict = g_strdup_printf(
                _("unknown: the kernel's range-safe unmap fix could not be probed because %1$s; name a free group with --group or --device"),
                why);
        else
            r->verdict = g_strdup(_(
                "unknown: no VFIO group to probe the kernel with; name one with --group or --device"));
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
    g_clear_pointer(&report->probe_error, g_free);
    if (report->fix == COCO_VFIO_FIX_UNKNOWN) {
        int answer = cocoVfioContainerGetFixProbeAnswer(container);

        report->probe_error = g_strdup_printf(
            _("the probe (an unmap request whose end wraps past 2^64) was answered with '%1$s', neither EOVERFLOW (fixed) nor EINVAL (not fixed)"),
            answer < 0 ? g_strerror(-answer) : "0");
    }
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

static CocoVfioContainer *
cocoVfioOpenGroupReal(unsigned int group, void *opaque G_GNUC_UNUSED,
                      GError **error)
{
    return cocoVfioContainerOpenGroup(group, 0, error);
}

/* Every group in turn until one opens: a group QEMU holds is busy. */
static CocoVfioContainer *
cocoVfioProbeAnyGroup(CocoVfioHostReport *r, CocoVfioGroupOpenFunc open,
                      void *opaque, char **target)
{
    g_autoptr(GString) why = g_string_new(NULL);
    guint i;

    for (i = 0; i < r->groups->len; i++) {
        const char *name = g_ptr_array_index(r->groups, i);
        g_autoptr(GError) err = NULL;
        uint64_t n;
        CocoVfioContainer *c;

        if (cocoStrToU64(name, 10, &n) < 0 || n > G_MAXUINT)
            continue;
        if ((c = open((unsigned int)n, opaque, &err))) {
            *target = g_strdup_printf("group %s", name);
            return c;
        }
        g_string_append_printf(why, "%sgroup %s: %s", why->len ? "; " : "",
                               name, err ? err->message : "?");
    }
    r->probe_error =
        g_strdup_printf(_("no VFIO group could be opened (%1$s)"), why->str);
    return NULL;
}

CocoVfioHostReport *
cocoVfioCheckHost(const char *devroot, int group, const char *bdf,
                  GError **error)
{
    /* A scratch device root (the tests') has no groups to open. */
    return cocoVfioCheckHostWith(
        devroot, group, bdf,
        STREQ(devroot, "/dev") ? cocoVfioOpenGroupReal : NULL, NULL, error);
}

CocoVfioHostReport *
cocoVfioCheckHostWith(const char *devroot, int group, const char *bdf,
                      CocoVfioGroupOpenFunc open, void *opaque, GError **error)
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
    } else if (r->vfio_present && r->groups->len > 0 && open) {
        c = cocoVfioProbeAnyGroup(r, open, opaque, &target);
    }

    if (c)
        cocoVfioHostReportFromContainer(r, c, target);
    else
        cocoVfioReportVerdict(r);
    return g_steal_pointer(&r);
}
