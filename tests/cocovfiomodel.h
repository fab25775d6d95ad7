/*
 * cocovfiomodel.h: a model of the kernel's VFIO type1 and iommufd DMA
 * mapping code, used as the ioctl double of the VFIO unit tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Follows docs/vfio.rst "Kernel-behaviour model" (research: vfio.md §7):
 * buggy type1 (Linux before 6.18 without ef270ec44637/6012379ede6a), fixed
 * type1, native iommufd, and iommufd's type1 compatibility before and after
 * afb47765f923 (ENOENT vs 0 for an empty range).
 */

#pragma once

#include "internal.h"
#include "vfio/cocovfioops.h"
#include "libvirt-coco/coco-vfio.h"

typedef enum {
    COCO_VFIO_MODEL_TYPE1 = 0,
    COCO_VFIO_MODEL_IOMMUFD,
    COCO_VFIO_MODEL_COMPAT,
} CocoVfioModelKind;

typedef struct {
    CocoVfioModelKind kind;
    bool fixed; /* type1: the 6.18 fix is present */
    bool v2; /* type1: v2 unmap semantics */
    bool unmap_all; /* type1: VFIO_UNMAP_ALL extension */
    bool compat_empty_enoent; /* compat: before afb47765 */
    uint64_t pgsizes; /* 0: 4 KiB | 2 MiB | 1 GiB */
    const CocoVfioRange *ranges; /* NULL: the two ranges of vfio.md §6 */
    size_t nranges;
} CocoVfioModelConfig;

/* Fault injection, for the shortfall paths. */
typedef enum {
    COCO_VFIO_MODEL_FAULT_NONE = 0,
    /* Range unmaps that would remove more than one mapping report success
     * with size 0 and change nothing; exact ones work. */
    COCO_VFIO_MODEL_FAULT_SILENT_MULTI,
    /* Every range unmap reports success with size 0 and changes nothing. */
    COCO_VFIO_MODEL_FAULT_SILENT_ALL,
} CocoVfioModelFault;

/* A kernel variant the tests run against, by name (docs/vfio.rst,
 * "Kernel-behaviour model"). */
typedef struct {
    const char *name;
    CocoVfioModelConfig cfg;
} CocoVfioModelVariant;

/* Every variant, one list for the VFIO tests and benchmarks: buggy and
 * fixed type1 with v1 and v2 semantics, with and without VFIO_UNMAP_ALL,
 * iommufd's type1 compatibility before and after afb47765f923, and native
 * iommufd. */
extern const CocoVfioModelVariant cocoVfioModelVariants[];
extern const size_t cocoVfioModelNVariants;

/* The variant called @name; aborts the test when there is none. */
const CocoVfioModelVariant *cocoVfioModelVariantGet(const char *name);

typedef struct _CocoVfioModel CocoVfioModel;

CocoVfioModel *cocoVfioModelNew(const CocoVfioModelConfig *cfg);
void cocoVfioModelFree(CocoVfioModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoVfioModel, cocoVfioModelFree)

const CocoVfioOps *cocoVfioModelOps(CocoVfioModel *model);
int cocoVfioModelFd(CocoVfioModel *model);
uint32_t cocoVfioModelIoasId(CocoVfioModel *model);
void cocoVfioModelSetFault(CocoVfioModel *model, CocoVfioModelFault fault);

/* Map directly (as another process or an earlier owner would): 0 or -errno. */
int cocoVfioModelMap(CocoVfioModel *model, uint64_t iova, uint64_t size);

/* Release of the container (close of the fd): translations go, and on a
 * buggy kernel the pins of top-reaching mappings stay. */
void cocoVfioModelRelease(CocoVfioModel *model);

/* State. */
uint64_t cocoVfioModelLiveBytes(CocoVfioModel *model); /* IOMMU PTEs */
uint64_t cocoVfioModelPinnedBytes(CocoVfioModel *model); /* locked_vm */
size_t cocoVfioModelTrackedCount(CocoVfioModel *model); /* type1 records */
/* Inclusive ranges with a live translation or a pin, ascending, merged per
 * mapping (one entry per mapping record). */
GArray *cocoVfioModelLeftovers(CocoVfioModel *model);

/* Counters and the request log. */
typedef struct {
    uint64_t ioctls;
    uint64_t maps;
    uint64_t unmaps;
    uint64_t unmap_all; /* VFIO_DMA_UNMAP_FLAG_ALL requests */
    uint64_t unmap_end_2_64; /* type1 range requests with iova+size == 2^64 */
    uint64_t closes;
} CocoVfioModelStats;

const CocoVfioModelStats *cocoVfioModelGetStats(CocoVfioModel *model);
void cocoVfioModelResetStats(CocoVfioModel *model);
