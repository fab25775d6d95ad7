/*
 * cocoqmpmigration.h: which QEMU migration jobs are real migrations
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "util/cocoenum.h"

/*
 * libvirt drives both host-to-host migration and save, snapshot, dump and
 * restore through QEMU's 'migrate' and 'migrate-incoming' commands. Only a
 * real migration may run with x-ignore-shared: anything else writes or
 * reads an image that must contain the guest's RAM.
 */
typedef enum {
    COCO_QMP_JOB_MIGRATION, /* guest moves to another QEMU: ignore shared RAM */
    COCO_QMP_JOB_IMAGE, /* save/snapshot/dump/restore: RAM in the stream */
    COCO_QMP_JOB_LAST
} CocoQmpJob;

COCO_ENUM_DECL(cocoQmpJob);

/* What the relay knows about the descriptor a 'fd:NAME' URI names. */
typedef enum {
    COCO_QMP_FD_UNKNOWN, /* no 'getfd' with that name was seen */
    COCO_QMP_FD_SOCKET, /* a socket: libvirt's connection to the peer */
    COCO_QMP_FD_OTHER, /* a pipe or a file */
    COCO_QMP_FD_LAST
} CocoQmpFdKind;

COCO_ENUM_DECL(cocoQmpFdKind);

/*
 * The source side ('migrate'): tcp:, unix:, rdma: and vsock: URIs are
 * migrations. fd:NAME is a migration when the descriptor is a socket;
 * when it is a pipe or a file (or unknown) it is a migration only if
 * libvirt's last capability set turned pause-before-switchover on, which
 * libvirt does for every migration and never for save, snapshot or dump
 * (that covers tunnelled migration through a pipe). exec: and file: URIs
 * are images.
 */
CocoQmpJob cocoQmpMigrationClassifySource(const char *uri, CocoQmpFdKind fdKind,
                                          gboolean pauseBeforeSwitchover);

/*
 * The destination side ('migrate-incoming'): tcp:, unix:, rdma: and vsock:
 * URIs are migrations. fd:, exec: and file: are restores unless libvirt's
 * last capability set turned late-block-activate on, which libvirt does
 * for incoming migrations only (tunnelled migration arrives through a
 * pipe).
 */
CocoQmpJob cocoQmpMigrationClassifyDestination(const char *uri,
                                               gboolean lateBlockActivate);

/* The name in a "fd:NAME" URI, or NULL. */
const char *cocoQmpMigrationFdName(const char *uri);
