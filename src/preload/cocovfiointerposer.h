/*
 * cocovfiointerposer.h: QEMU's VFIO and iommufd requests through the
 * range-safe module
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The logic of the VFIO interposer that qemu-coco preloads into the real
 * QEMU (docs/vfio.rst, "The interposer"). It follows the descriptors QEMU
 * opens (type1 containers, groups, devices, iommufd and its IO address
 * spaces) from the requests QEMU issues on them, and stands in for the
 * kernel on the DMA map and unmap requests: those go through a
 * CocoVfioContainer (shadow map, fix probe, range-safe unmap) on QEMU's
 * own descriptor. Every other request reaches the kernel unchanged.
 *
 * The object knows nothing of LD_PRELOAD: the kernel is a CocoVfioOps (the
 * real ioctl in the preloaded library, the kernel model in the tests), and
 * messages and leak reports go to the two callbacks.
 */

#pragma once

#include "internal.h"
#include "vfio/cocovfioops.h"

#include <stdbool.h>
#include <stdint.h>
#include <linux/vfio.h>

typedef struct _CocoVfioInterposer CocoVfioInterposer;

/* One line for QEMU's standard error (the domain log), no newline. */
typedef void (*CocoVfioInterposerLogFunc)(const char *line, void *opaque);

/* One report, a JSON object on one line (docs/vfio.rst): a leak
 * ("vfio-leak") or what QEMU holds after a device came or went
 * ("vfio-state"); for the relay, which forwards it to the host agent. */
typedef void (*CocoVfioInterposerReportFunc)(const char *json, void *opaque);

/*
 * cocoVfioInterposerNew:
 * @ops: the kernel; ops->close is never called (the descriptors are
 *       QEMU's, QEMU closes them)
 */
CocoVfioInterposer *cocoVfioInterposerNew(const CocoVfioOps *ops,
                                          CocoVfioInterposerLogFunc log,
                                          CocoVfioInterposerReportFunc report,
                                          void *opaque);
void cocoVfioInterposerFree(CocoVfioInterposer *ip);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoVfioInterposer, cocoVfioInterposerFree)

/* The fast path: whether @request may concern the interposer at all
 * (VFIO and iommufd share the ioctl type ';'). Everything else goes to
 * the kernel without a look. */
static inline bool
cocoVfioInterposerWants(unsigned long request)
{
    return _IOC_TYPE(request) == VFIO_TYPE;
}

/*
 * cocoVfioInterposerIoctl:
 * QEMU's ioctl(@fd, @request, @arg) for a request that
 * cocoVfioInterposerWants(). Returns what the kernel would: the result
 * (>= 0) or a negative errno.
 */
int cocoVfioInterposerIoctl(CocoVfioInterposer *ip, int fd,
                            unsigned long request, void *arg);

/* Whether @fd is a descriptor the interposer follows (lock-free). */
bool cocoVfioInterposerTracks(CocoVfioInterposer *ip, int fd);

/* QEMU is about to close(@fd): a group or device whose close releases a
 * container's IOMMU has it torn down first. */
void cocoVfioInterposerClose(CocoVfioInterposer *ip, int fd);

/* In the child of a fork(): the descriptors are the parent's, so a child
 * that inherited any stops following them (nothing it closes or issues
 * touches the parent's mappings); one that inherited none starts afresh. */
void cocoVfioInterposerForkChild(CocoVfioInterposer *ip);

/* Counters, for tests and x-coco-query-relay style reports. */
typedef struct {
    uint64_t handled; /* requests the interposer looked at */
    uint64_t maps; /* DMA maps through the module */
    uint64_t unmaps; /* DMA unmaps through the module */
    uint64_t refused; /* maps refused (top of the IOVA space, unfixed) */
    uint64_t split; /* unmaps ending at 2^64 sent to an unfixed kernel safely */
    uint64_t releases; /* containers and IO address spaces released */
    uint64_t leaks; /* mappings reported as leaked */
    uint64_t reports; /* leak reports sent */
    uint64_t states; /* state reports sent */
} CocoVfioInterposerStats;

void cocoVfioInterposerGetStats(CocoVfioInterposer *ip,
                                CocoVfioInterposerStats *stats);
