/*
 * cocovfioops.c: the real system calls behind CocoVfioOps
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "vfio/cocovfioops.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int
cocoVfioRealIoctl(void *opaque G_GNUC_UNUSED, int fd, unsigned long request,
                  void *arg)
{
    int rc = ioctl(fd, request, arg);

    return rc < 0 ? -errno : rc;
}

static int
cocoVfioRealOpen(void *opaque G_GNUC_UNUSED, const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);

    return fd < 0 ? -errno : fd;
}

static void
cocoVfioRealClose(void *opaque G_GNUC_UNUSED, int fd)
{
    COCO_FORCE_CLOSE(fd);
}

static const CocoVfioOps cocoVfioRealOps = {
    .ioctl = cocoVfioRealIoctl,
    .open = cocoVfioRealOpen,
    .close = cocoVfioRealClose,
    .opaque = NULL,
};

const CocoVfioOps *
cocoVfioOpsReal(void)
{
    return &cocoVfioRealOps;
}
