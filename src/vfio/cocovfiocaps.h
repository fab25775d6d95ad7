/*
 * cocovfiocaps.h: parsing VFIO_IOMMU_GET_INFO and its capability chain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/coco-vfio.h"

/* Largest info buffer accepted from the kernel. */
#define COCO_VFIO_INFO_MAX (1024 * 1024)

/* Largest number of capabilities walked in one chain. */
#define COCO_VFIO_CAPS_MAX 64

/*
 * cocoVfioIommuInfoParse:
 * Parse @len bytes returned by VFIO_IOMMU_GET_INFO (struct
 * vfio_iommu_type1_info followed by its capability chain). Every offset
 * and length is checked against the buffer and the info's argsz; a chain
 * that points backwards, repeats, leaves the buffer, holds a truncated or
 * duplicated capability, or lists unsorted/overlapping IOVA ranges is
 * rejected with COCO_ERROR_VFIO_CAPS. Without an IOVA range capability
 * (kernels before 5.4) the whole space [0, 2^64-1] is reported.
 */
CocoVfioIommuInfo *cocoVfioIommuInfoParse(const void *buf, size_t len,
                                          GError **error);

/* A deep copy. */
CocoVfioIommuInfo *cocoVfioIommuInfoCopy(const CocoVfioIommuInfo *info);

/* Checks @ranges (ascending, non-overlapping, first <= last) and fills
 * info->ranges; COCO_ERROR_VFIO_CAPS when they are not. */
int cocoVfioIommuInfoSetRanges(CocoVfioIommuInfo *info,
                               const CocoVfioRange *ranges, size_t nranges,
                               GError **error);
