/*
 * coco-vfio.h: range-safe VFIO / iommufd DMA mapping and teardown
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(LIBVIRT_COCO_H_INSIDE) && !defined(LIBVIRT_COCO_COMPILATION)
# error "Only <libvirt-coco/libvirt-coco.h> can be included directly."
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

G_BEGIN_DECLS

/**
 * CocoVfioBackend:
 * @COCO_VFIO_BACKEND_TYPE1: a VFIO container with the type1 IOMMU, v1 unmap semantics ("type1")
 * @COCO_VFIO_BACKEND_TYPE1V2: a VFIO container with the type1v2 IOMMU ("type1v2")
 * @COCO_VFIO_BACKEND_IOMMUFD: an iommufd IO address space (IOAS) ("iommufd")
 * @COCO_VFIO_BACKEND_LAST: the number of backends
 *
 * The kernel interface a #CocoVfioContainer drives. iommufd's type1
 * compatibility container is a type1/type1v2 backend. (Since: 0.1.0)
 */
typedef enum {
    COCO_VFIO_BACKEND_TYPE1 = 0,
    COCO_VFIO_BACKEND_TYPE1V2,
    COCO_VFIO_BACKEND_IOMMUFD,
    COCO_VFIO_BACKEND_LAST
} CocoVfioBackend;

/**
 * CocoVfioFixStatus:
 * @COCO_VFIO_FIX_UNKNOWN: the probe was inconclusive; treated like @COCO_VFIO_FIX_ABSENT ("unknown")
 * @COCO_VFIO_FIX_ABSENT: the type1 top-of-IOVA-space fix (Linux 6.18) is missing ("absent")
 * @COCO_VFIO_FIX_PRESENT: the kernel has the fix, or is not affected (iommufd's type1 compatibility) ("present")
 * @COCO_VFIO_FIX_NOT_NEEDED: native iommufd, which never had the bug ("not-needed")
 * @COCO_VFIO_FIX_LAST: the number of values
 *
 * Whether the kernel behind a container handles DMA unmap requests that
 * end exactly at 2^64. (Since: 0.1.0)
 */
typedef enum {
    COCO_VFIO_FIX_UNKNOWN = 0,
    COCO_VFIO_FIX_ABSENT,
    COCO_VFIO_FIX_PRESENT,
    COCO_VFIO_FIX_NOT_NEEDED,
    COCO_VFIO_FIX_LAST
} CocoVfioFixStatus;

/**
 * CocoVfioRange:
 * @first: the first IOVA of the range
 * @last: the last IOVA of the range, inclusive (so 2^64-1 is expressible)
 *
 * An inclusive IOVA range; @first <= @last always. (Since: 0.1.0)
 */
typedef struct {
    uint64_t first;
    uint64_t last;
} CocoVfioRange;

/**
 * CocoVfioIommuInfo:
 * @pgsizes: bitmap of the IOMMU page sizes
 * @page_size: the smallest page size: the alignment of every mapping
 * @ranges: the valid IOVA ranges reported by the kernel, ascending
 * @nranges: number of @ranges
 * @has_dma_avail: whether the kernel reported @dma_avail
 * @dma_avail: how many more DMA mappings the kernel allows
 * @has_migration: whether the kernel reported the migration capability
 * @migration_flags: flags of the migration capability
 * @migration_pgsizes: page sizes usable for dirty tracking
 * @migration_max_dirty_bitmap_size: largest dirty bitmap in bytes
 *
 * What VFIO_IOMMU_GET_INFO (type1) or IOMMU_IOAS_IOVA_RANGES (iommufd)
 * reported. (Since: 0.1.0)
 */
typedef struct {
    uint64_t pgsizes;
    uint64_t page_size;
    CocoVfioRange *ranges;
    size_t nranges;
    bool has_dma_avail;
    uint32_t dma_avail;
    bool has_migration;
    uint32_t migration_flags;
    uint64_t migration_pgsizes;
    uint64_t migration_max_dirty_bitmap_size;
} CocoVfioIommuInfo;

/**
 * cocoVfioIommuInfoFree:
 * @info: (nullable): an info
 *
 * Frees @info. (Since: 0.1.0)
 */
void cocoVfioIommuInfoFree(CocoVfioIommuInfo *info);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoVfioIommuInfo, cocoVfioIommuInfoFree)

/**
 * CocoVfioContainer:
 *
 * An opaque handle on a VFIO container or an iommufd IOAS together with
 * the shadow map of every DMA mapping created through it. (Since: 0.1.0)
 */
typedef struct _CocoVfioContainer CocoVfioContainer;

/**
 * COCO_VFIO_OPEN_IOMMUFD:
 *
 * Flag of cocoVfioContainerOpenDevice(): bind the device's VFIO cdev to a
 * new iommufd IOAS instead of using a type1 container. (Since: 0.1.0)
 */
#define COCO_VFIO_OPEN_IOMMUFD (1U << 0)

/**
 * cocoVfioContainerOpenGroup:
 * @group: the IOMMU group number (/dev/vfio/@group)
 * @flags: must be 0
 * @error: return location for a #GError
 *
 * Opens /dev/vfio/vfio, attaches the viable group @group, selects the
 * type1v2 IOMMU (type1 when v2 is missing), reads the IOMMU info, checks
 * VFIO_UNMAP_ALL and probes for the top-of-IOVA-space fix without side
 * effects. The results are cached for the container's lifetime.
 *
 * Returns: (transfer full): the container, or %NULL with @error set. (Since: 0.1.0)
 */
CocoVfioContainer *cocoVfioContainerOpenGroup(unsigned int group,
                                              unsigned int flags,
                                              GError **error);

/**
 * cocoVfioContainerOpenDevice:
 * @bdf: a PCI address "DDDD:BB:SS.F" of a device bound to vfio-pci
 * @flags: 0 or %COCO_VFIO_OPEN_IOMMUFD
 * @error: return location for a #GError
 *
 * Like cocoVfioContainerOpenGroup() for the IOMMU group of @bdf or, with
 * %COCO_VFIO_OPEN_IOMMUFD, opens /dev/iommu, allocates an IOAS and binds
 * and attaches the device's VFIO cdev to it.
 *
 * Returns: (transfer full): the container, or %NULL with @error set. (Since: 0.1.0)
 */
CocoVfioContainer *cocoVfioContainerOpenDevice(const char *bdf,
                                               unsigned int flags,
                                               GError **error);

/**
 * cocoVfioContainerFree:
 * @container: (nullable): a container
 *
 * Tears down every mapping still recorded (see cocoVfioContainerTeardown()),
 * then closes the device, group and container descriptors. Mappings that
 * could not be removed are logged as host-level pin leaks together with
 * the change of the process's locked memory. (Since: 0.1.0)
 */
void cocoVfioContainerFree(CocoVfioContainer *container);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoVfioContainer, cocoVfioContainerFree)

/**
 * cocoVfioContainerGetBackend:
 * @container: a container
 *
 * Returns: the backend of @container. (Since: 0.1.0)
 */
CocoVfioBackend cocoVfioContainerGetBackend(CocoVfioContainer *container);

/**
 * cocoVfioContainerGetFixStatus:
 * @container: a container
 *
 * Returns: the cached result of the fix probe. (Since: 0.1.0)
 */
CocoVfioFixStatus cocoVfioContainerGetFixStatus(CocoVfioContainer *container);

/**
 * cocoVfioContainerHasUnmapAll:
 * @container: a container
 *
 * Returns: whether VFIO_CHECK_EXTENSION(VFIO_UNMAP_ALL) answered yes (always
 * %TRUE for iommufd, whose (0, U64_MAX) request unmaps all). (Since: 0.1.0)
 */
bool cocoVfioContainerHasUnmapAll(CocoVfioContainer *container);

/**
 * cocoVfioContainerGetInfo:
 * @container: a container
 *
 * Returns: (transfer none): the IOMMU information read at open. (Since: 0.1.0)
 */
const CocoVfioIommuInfo *cocoVfioContainerGetInfo(CocoVfioContainer *container);

/**
 * cocoVfioContainerGetUsableRanges:
 * @container: a container
 * @ranges: (out) (transfer full): the ranges mappings may use
 * @nranges: (out): number of @ranges
 *
 * The kernel's IOVA ranges, with the top page (ending at 2^64-1) removed
 * when the kernel lacks the fix: a mapping there could never be removed.
 * (Since: 0.1.0)
 */
void cocoVfioContainerGetUsableRanges(CocoVfioContainer *container,
                                      CocoVfioRange **ranges, size_t *nranges);

/**
 * cocoVfioContainerGetMappingCount:
 * @container: a container
 *
 * Returns: how many mappings the shadow map records. (Since: 0.1.0)
 */
size_t cocoVfioContainerGetMappingCount(CocoVfioContainer *container);

/**
 * COCO_VFIO_MAP_READ:
 *
 * Flag of cocoVfioContainerMap(): the device may read. (Since: 0.1.0)
 */
#define COCO_VFIO_MAP_READ (1U << 0)

/**
 * COCO_VFIO_MAP_WRITE:
 *
 * Flag of cocoVfioContainerMap(): the device may write. (Since: 0.1.0)
 */
#define COCO_VFIO_MAP_WRITE (1U << 1)

/**
 * cocoVfioRangeFromSize:
 * @iova: the first IOVA
 * @size: the length in bytes
 * @range: (out): the inclusive range
 * @error: return location for a #GError
 *
 * Converts a (start, size) pair to an inclusive range with checked
 * arithmetic: a zero @size or one whose last byte would pass 2^64-1
 * gives %COCO_ERROR_VFIO_RANGE.
 *
 * Returns: 0, or -1 with @error set. (Since: 0.1.0)
 */
int cocoVfioRangeFromSize(uint64_t iova, uint64_t size, CocoVfioRange *range,
                          GError **error);

/**
 * cocoVfioContainerMap:
 * @container: a container
 * @vaddr: the process memory to map
 * @first: the first IOVA, aligned to the IOMMU page size
 * @last: the last IOVA (inclusive); @last + 1 page-aligned
 * @flags: %COCO_VFIO_MAP_READ and/or %COCO_VFIO_MAP_WRITE
 * @error: return location for a #GError
 *
 * Maps [@first, @last] to @vaddr and records it in the shadow map. The
 * range must lie inside one usable range and overlap no recorded mapping.
 * On a kernel without the fix, a mapping whose last byte is 2^64-1 is
 * refused with %COCO_ERROR_VFIO_UNSAFE before any ioctl, because it could
 * never be removed again.
 *
 * Returns: 0, or -1 with @error set. (Since: 0.1.0)
 */
int cocoVfioContainerMap(CocoVfioContainer *container, void *vaddr,
                         uint64_t first, uint64_t last, unsigned int flags,
                         GError **error);

/**
 * cocoVfioContainerTrackMapping:
 * @container: a container
 * @vaddr: the process memory the mapping points to
 * @first: the first IOVA
 * @last: the last IOVA (inclusive)
 * @error: return location for a #GError
 *
 * Records a mapping that already exists in the kernel (created before the
 * container was handed to libvirt-coco) without an ioctl, so unmap and
 * teardown account for it. (Since: 0.1.0)
 *
 * Returns: 0, or -1 with @error set.
 */
int cocoVfioContainerTrackMapping(CocoVfioContainer *container, void *vaddr,
                                  uint64_t first, uint64_t last,
                                  GError **error);

/**
 * cocoVfioContainerUnmap:
 * @container: a container
 * @first: the first IOVA
 * @last: the last IOVA (inclusive); [0, 2^64-1] means everything
 * @unmapped: (out) (optional): the bytes really removed
 * @error: return location for a #GError
 *
 * Removes every recorded mapping inside [@first, @last]; a range that
 * would split a mapping is refused. The bytes the kernel reports are
 * compared with the shadow map: a shortfall is never success. On a kernel
 * without the fix no request ending at 2^64 is sent and VFIO_DMA_UNMAP_FLAG_ALL
 * is never used; mappings that cannot be removed give %COCO_ERROR_VFIO_LEAK
 * naming each of them (also available from cocoVfioContainerGetLeaks()).
 *
 * Returns: 0, or -1 with @error set. (Since: 0.1.0)
 */
int cocoVfioContainerUnmap(CocoVfioContainer *container, uint64_t first,
                           uint64_t last, uint64_t *unmapped, GError **error);

/**
 * cocoVfioContainerTeardown:
 * @container: a container
 * @error: return location for a #GError
 *
 * Removes every recorded mapping. On success nothing the container
 * created is mapped or pinned any more; otherwise %COCO_ERROR_VFIO_LEAK
 * names exactly the mappings that remain.
 *
 * Returns: 0, or -1 with @error set. (Since: 0.1.0)
 */
int cocoVfioContainerTeardown(CocoVfioContainer *container, GError **error);

/**
 * cocoVfioContainerGetLeaks:
 * @container: a container
 * @leaks: (out) (transfer full): the mappings the last unmap or teardown could not remove
 * @nleaks: (out): number of @leaks
 *
 * (Since: 0.1.0)
 */
void cocoVfioContainerGetLeaks(CocoVfioContainer *container,
                               CocoVfioRange **leaks, size_t *nleaks);

/**
 * cocoVfioBackendTypeToString:
 * @type: a #CocoVfioBackend
 *
 * Returns: the name of @type, or %NULL. (Since: 0.1.0)
 */
const char *cocoVfioBackendTypeToString(int type);

/**
 * cocoVfioBackendTypeFromString:
 * @type: a name
 *
 * Returns: the #CocoVfioBackend named @type, or -1. (Since: 0.1.0)
 */
int cocoVfioBackendTypeFromString(const char *type);

/**
 * cocoVfioFixStatusTypeToString:
 * @type: a #CocoVfioFixStatus
 *
 * Returns: the name of @type, or %NULL. (Since: 0.1.0)
 */
const char *cocoVfioFixStatusTypeToString(int type);

/**
 * cocoVfioFixStatusTypeFromString:
 * @type: a name
 *
 * Returns: the #CocoVfioFixStatus named @type, or -1. (Since: 0.1.0)
 */
int cocoVfioFixStatusTypeFromString(const char *type);

G_END_DECLS
