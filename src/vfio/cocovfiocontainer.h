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

/* The fix probe on its own: one side-effect-free UNMAP_DMA request of
 * [2^64 - pgsize, +2 * pgsize) on a type1 container fd. */
CocoVfioFixStatus cocoVfioProbeFix(const CocoVfioOps *ops, int fd,
                                   uint64_t pgsize);
