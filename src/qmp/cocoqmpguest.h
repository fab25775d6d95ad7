/*
 * cocoqmpguest.h: what qemu-coco learns about a guest from QEMU's argv
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include <json-glib/json-glib.h>

typedef struct {
    char *id;
    char *path;
    guint64 size;
    gboolean share;
} CocoQmpRamBackend;

typedef struct {
    int monitorFd; /* libvirt's listening monitor socket, or -1 */
    int monitorArg; /* argv index of that -chardev value, or -1 */
    char *name; /* -name guest=NAME */
    char *uuid; /* -uuid */
    GPtrArray *ram; /* CocoQmpRamBackend: memory-backend-file objects */
} CocoQmpGuestInfo;

void cocoQmpGuestInfoFree(CocoQmpGuestInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoQmpGuestInfo, cocoQmpGuestInfoFree);

/*
 * Read QEMU's command line as libvirt builds it. A guest has
 * "-chardev socket,id=charmonitor,fd=N,..."; anything else (libvirt's
 * capability probe, -help, -version) has monitorFd == -1.
 */
CocoQmpGuestInfo *cocoQmpGuestInfoParse(int argc, char *const *argv,
                                        GError **error);

/* The -chardev value @arg with its "fd=N" replaced by "fd=@fd". */
char *cocoQmpGuestRewriteMonitor(const char *arg, int fd);

/* The agent protocol's "hello" object for this guest run by @pid. */
JsonObject *cocoQmpGuestInfoToHello(const CocoQmpGuestInfo *info, gint64 pid);
