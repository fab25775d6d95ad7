/*
 * cocoqmpmigration.c: which QEMU migration jobs are real migrations
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "qmp/cocoqmpmigration.h"

COCO_ENUM_IMPL(cocoQmpJob, COCO_QMP_JOB_LAST, "migration", "image");
COCO_ENUM_IMPL(cocoQmpFdKind, COCO_QMP_FD_LAST, "unknown", "socket", "other");

static gboolean
cocoQmpMigrationUriIsNetwork(const char *uri)
{
    static const char *const prefixes[] = {"tcp:", "unix:", "rdma:", "vsock:"};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(prefixes); i++) {
        if (STRPREFIX(uri, prefixes[i]))
            return TRUE;
    }
    return FALSE;
}

const char *
cocoQmpMigrationFdName(const char *uri)
{
    if (!uri || !STRPREFIX(uri, "fd:") || !uri[3])
        return NULL;
    return uri + 3;
}

CocoQmpJob
cocoQmpMigrationClassifySource(const char *uri, CocoQmpFdKind fdKind,
                               gboolean pauseBeforeSwitchover)
{
    if (!uri)
        return COCO_QMP_JOB_IMAGE;
    if (cocoQmpMigrationUriIsNetwork(uri))
        return COCO_QMP_JOB_MIGRATION;
    if (cocoQmpMigrationFdName(uri)) {
        switch (fdKind) {
        case COCO_QMP_FD_SOCKET:
            return COCO_QMP_JOB_MIGRATION;
        case COCO_QMP_FD_UNKNOWN:
        case COCO_QMP_FD_OTHER:
        case COCO_QMP_FD_LAST:
        default:
            return pauseBeforeSwitchover ? COCO_QMP_JOB_MIGRATION
                                         : COCO_QMP_JOB_IMAGE;
        }
    }
    return COCO_QMP_JOB_IMAGE;
}

CocoQmpJob
cocoQmpMigrationClassifyDestination(const char *uri, gboolean lateBlockActivate)
{
    if (!uri)
        return COCO_QMP_JOB_IMAGE;
    if (cocoQmpMigrationUriIsNetwork(uri))
        return COCO_QMP_JOB_MIGRATION;
    return lateBlockActivate ? COCO_QMP_JOB_MIGRATION : COCO_QMP_JOB_IMAGE;
}
