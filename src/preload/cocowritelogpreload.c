/*
 * cocowritelogpreload.c: the write-log preload qemu-coco puts into the
 * real QEMU (LD_PRELOAD), unless write_log = no in qemu-coco.conf
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Only a process can create a userfaultfd for its own memory. At load,
 * before QEMU maps guest RAM, this library creates the one the host
 * agent takes a copy of to log QEMU's writes to guest RAM during a
 * confidential migration (src/util/cocowritelog.h; docs/transfer.rst,
 * "Dirty tracking"). It registers nothing itself: until the agent does,
 * QEMU runs exactly as without it. It exports no symbol, and takes its
 * own entry out of LD_PRELOAD so that programs QEMU runs do not load it.
 * When the kernel has no asynchronous write protection (before Linux
 * 6.7), it says so once on stderr (QEMU's log) and the agent hashes
 * guest pages instead.
 */

#include "internal.h"
#include "preload/cocopreloadenv.h"
#include "util/cocowritelog.h"

#include <stdio.h>
#include <string.h>

static void __attribute__((constructor)) cocoWriteLogPreloadInit(void)
{
    int fd = cocoWriteLogPrepareSelf();

    cocoPreloadEnvDropSelf((const void *)(uintptr_t)cocoWriteLogPreloadInit);
    if (fd < 0)
        fprintf(
            stderr,
            "libvirt-coco-write-log: no userfaultfd with asynchronous write protection (%s); the host agent hashes guest pages instead\n",
            strerror(-fd));
}
