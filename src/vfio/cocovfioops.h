/*
 * cocovfioops.h: the injectable ioctl layer under src/vfio
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every system call the VFIO module makes goes through a CocoVfioOps, so
 * the unit tests can put a model of the kernel (tests/cocovfiomodel.c) in
 * place of /dev/vfio and /dev/iommu.
 */

#pragma once

#include "internal.h"

typedef struct {
    /* ioctl(2): returns the (non-negative) result or a negative errno.
     * For argument-by-value requests (VFIO_CHECK_EXTENSION) @arg carries
     * the value cast to a pointer. */
    int (*ioctl)(void *opaque, int fd, unsigned long request, void *arg);
    /* open(2) with O_RDWR | O_CLOEXEC: the fd or a negative errno. */
    int (*open)(void *opaque, const char *path);
    void (*close)(void *opaque, int fd);
    void *opaque;
} CocoVfioOps;

/* The real system calls. */
const CocoVfioOps *cocoVfioOpsReal(void);
