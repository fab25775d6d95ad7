/*
 * cocovfiocheck.h: the host's VFIO risk report ("virt-coco vfio check")
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/coco-vfio.h"
#include "util/cocoenum.h"

typedef enum {
    COCO_VFIO_RISK_NONE = 0, /* fixed kernel or iommufd */
    COCO_VFIO_RISK_LOW, /* unfixed, but no IOVA range reaches 2^64-1 */
    COCO_VFIO_RISK_HIGH, /* unfixed and an IOVA range reaches 2^64-1 */
    COCO_VFIO_RISK_UNKNOWN, /* nothing could be probed */
    COCO_VFIO_RISK_LAST
} CocoVfioRisk;
COCO_ENUM_DECL(cocoVfioRisk); /* "none", "low", "high", "unknown" */

typedef struct {
    char *kernel_release; /* uname -r */
    bool release_has_fix; /* release >= 6.18 (informational only) */
    bool vfio_present; /* <devroot>/vfio/vfio exists */
    GPtrArray *groups; /* char *: the group numbers in <devroot>/vfio */
    char *target; /* what was probed ("group 12", "0000:03:00.0"), or NULL */
    char *probe_error; /* why the fix status is unknown, or NULL */
    bool probed;
    CocoVfioBackend backend;
    CocoVfioFixStatus fix;
    bool unmap_all;
    CocoVfioIommuInfo *info;
    CocoVfioRisk risk;
    char *verdict; /* one translated sentence */
} CocoVfioHostReport;

void cocoVfioHostReportFree(CocoVfioHostReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoVfioHostReport, cocoVfioHostReportFree)

/* The risk of a container: fix status and whether a range ends at 2^64-1. */
CocoVfioRisk cocoVfioRiskFromInfo(CocoVfioFixStatus fix,
                                  const CocoVfioIommuInfo *info);

/* Fill the probe fields (backend, fix, unmap_all, info, risk, verdict) of
 * @report from an open container. */
void cocoVfioHostReportFromContainer(CocoVfioHostReport *report,
                                     CocoVfioContainer *container,
                                     const char *target);

/*
 * cocoVfioCheckHost:
 * @devroot: "/dev" (tests pass a scratch directory)
 * @group: the group to probe, or -1
 * @bdf: the device to probe, or NULL
 * Without @group and @bdf the first group in <devroot>/vfio is probed if
 * there is one; a failure to open it is recorded in probe_error, not
 * returned. A host without VFIO gives a report with vfio_present false.
 * Returns NULL with @error set only when an explicit @group or @bdf cannot
 * be probed.
 */
CocoVfioHostReport *cocoVfioCheckHost(const char *devroot, int group,
                                      const char *bdf, GError **error);

/* Opens VFIO group @group for the automatic probe (tests pass a model). */
typedef CocoVfioContainer *(*CocoVfioGroupOpenFunc)(unsigned int group,
                                                    void *opaque,
                                                    GError **error);

/*
 * cocoVfioCheckHostWith:
 * cocoVfioCheckHost() with the automatic probe's groups opened by @open,
 * whatever @devroot is. The automatic probe tries every group in
 * <devroot>/vfio in turn until one can be opened (a group QEMU holds is
 * busy); when none can, probe_error names each one's reason. A container
 * whose fix probe answers neither EOVERFLOW nor EINVAL leaves the status
 * unknown too, with the answer in probe_error.
 */
CocoVfioHostReport *cocoVfioCheckHostWith(const char *devroot, int group,
                                          const char *bdf,
                                          CocoVfioGroupOpenFunc open,
                                          void *opaque, GError **error);
