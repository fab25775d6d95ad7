/*
 * cocovfiocontainer.h: internal interface of CocoVfioContainer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/coco-vfio.h"
#include "vfio/cocovfioops.h"

/*
 * cocoVfioContainerNewFromFd:
 * Build a container on an already configured descriptor: a type1 container
 * fd with its IOMMU set (TYPE1 / TYPE1V2), or an iommufd fd with @ioas_id
 * (IOMMUFD). Reads the IOMMU info, VFIO_UNMAP_ALL and probes the fix, all
 * through @ops. Takes ownership of @fd and of @extra_fds (closed, in
 * order, before @fd when the container is freed).
 */
CocoVfioContainer *cocoVfioContainerNewFromFd(const CocoVfioOps *ops,
                                              CocoVfioBackend backend, int fd,
                                              uint32_t ioas_id,
                                              const int *extra_fds,
                                              size_t nextra, GError **error);

/* Number of ioctls issued through the container since it was created. */
uint64_t cocoVfioContainerGetIoctlCount(CocoVfioContainer *container);

/* The errno of the last request the kernel refused (0: none yet): what a
 * caller that stands in for the kernel (the VFIO interposer) returns when
 * cocoVfioContainerMap() or cocoVfioContainerUnmap() fails with
 * COCO_ERROR_VFIO_KERNEL. */
int cocoVfioContainerGetLastErrno(CocoVfioContainer *container);

/* Bytes the shadow map records (G_MAXUINT64 when the sum does not fit). */
uint64_t cocoVfioContainerGetMappedBytes(CocoVfioContainer *container);

/* Copies of every recorded mapping, ascending (never NULL). */
void cocoVfioContainerGetMappings(CocoVfioContainer *container,
                                  CocoVfioRange **ranges, size_t *nranges);

/* Whether [first, last] overlaps a recorded mapping. */
bool cocoVfioContainerOverlaps(CocoVfioContainer *container, uint64_t first,
                               uint64_t last);

/* Drops every record without an ioctl: the kernel removed the mappings
 * itself (an iommufd IOAS was destroyed or its descriptor closed). */
void cocoVfioContainerForget(CocoVfioContainer *container);

/* The fix probe on its own: one side-effect-free UNMAP_DMA request of
 * [2^64 - pgsize, +2 * pgsize) on a type1 container fd. */
CocoVfioFixStatus cocoVfioProbeFix(const CocoVfioOps *ops, int fd,
                                   uint64_t pgsize);
/* The same; *@answer gets the kernel's answer (0 or -errno). */
CocoVfioFixStatus cocoVfioProbeFixRc(const CocoVfioOps *ops, int fd,
                                     uint64_t pgsize, int *answer);

/* The answer of the fix probe at open (0 or -errno; 0 for iommufd). */
int cocoVfioContainerGetFixProbeAnswer(CocoVfioContainer *container);
