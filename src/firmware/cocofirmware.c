/*
 * cocofirmware.c: the firmware seam dispatchers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "firmware/cocofirmware.h"

#include <errno.h>

COCO_ENUM_IMPL(cocoMigrateCmd, COCO_MIGRATE_CMD_LAST, "prepare", "setup",
               "token", "source-blackout", "abort", "finish");

COCO_ENUM_IMPL(cocoFirmwareRole, COCO_FIRMWARE_ROLE_LAST, "source",
               "destination");

CocoErrorCode
cocoFirmwareErrnoToCode(int err)
{
    switch (-err) {
    case EPERM:
        return COCO_ERROR_FW_STATE;
    case EBADMSG:
        return COCO_ERROR_FW_INTEGRITY;
    case EPROTO:
        return COCO_ERROR_FW_SEQUENCE;
    case EBUSY:
        return COCO_ERROR_FW_BUSY;
    case EAGAIN:
        return COCO_ERROR_FW_NOT_READY;
    case EEXIST:
        return COCO_ERROR_FW_EXISTS;
    case EINVAL:
        return COCO_ERROR_FW_INVALID;
    case ENOBUFS:
        return COCO_ERROR_FW_BUFFER;
    case EKEYREJECTED:
        return COCO_ERROR_FW_KEY;
    case EACCES:
        return COCO_ERROR_FW_POLICY;
    case EIO:
        return COCO_ERROR_FW_FATAL;
    case ENOTTY:
    case EOPNOTSUPP:
        return COCO_ERROR_NOT_SUPPORTED;
    default:
        return COCO_ERROR_SYSTEM;
    }
}

static void
cocoFirmwareStatusReset(CocoFirmwareStatus *status)
{
    if (status)
        memset(status, 0, sizeof(*status));
}

/* Keep status->err consistent with the return value whatever the backend
 * filled in, and make sure a failure always carries an error message. */
static int
cocoFirmwareFinish(CocoFirmware *fw, const char *what, int ret,
                   CocoFirmwareStatus *status, GError **error)
{
    if (status)
        status->err = ret < 0 ? ret : 0;
    if (ret < 0 && error && !*error)
        cocoErrorSet(error, cocoFirmwareErrnoToCode(ret),
                     _("firmware backend '%1$s' failed in '%2$s': %3$s"),
                     fw->driver->name, what, g_strerror(-ret));
    return ret;
}

static int
cocoFirmwareUnsupported(CocoFirmware *fw, const char *what,
                        CocoFirmwareStatus *status, GError **error)
{
    cocoErrorSet(error, COCO_ERROR_NOT_SUPPORTED,
                 _("firmware backend '%1$s' does not support '%2$s'"),
                 fw->driver->name, what);
    if (status)
        status->err = -EOPNOTSUPP;
    return -EOPNOTSUPP;
}

int
cocoFirmwareGetCaps(CocoFirmware *fw, CocoFirmwareCaps *caps, GError **error)
{
    memset(caps, 0, sizeof(*caps));
    if (!fw->driver->getCaps)
        return cocoFirmwareUnsupported(fw, "capabilities", NULL, error);
    return cocoFirmwareFinish(
        fw, "capabilities", fw->driver->getCaps(fw, caps, error), NULL, error);
}

int
cocoFirmwareMigrateCmd(CocoFirmware *fw, CocoMigrateCmd cmd, uint32_t flags,
                       void *buf, size_t *buflen, CocoFirmwareStatus *status,
                       GError **error)
{
    const char *what = cocoMigrateCmdTypeToString(cmd);

    cocoFirmwareStatusReset(status);
    if (!what) {
        cocoErrorSet(error, COCO_ERROR_FW_INVALID,
                     _("unknown migration sub-command '%1$d'"), (int)cmd);
        if (status)
            status->err = -EINVAL;
        return -EINVAL;
    }
    if (!fw->driver->migrateCmd)
        return cocoFirmwareUnsupported(fw, what, status, error);
    return cocoFirmwareFinish(
        fw, what,
        fw->driver->migrateCmd(fw, cmd, flags, buf, buflen, status, error),
        status, error);
}

int
cocoFirmwareExportMemory(CocoFirmware *fw, uint32_t stream,
                         const uint64_t *gfns, uint32_t ngfns,
                         uint8_t *gfn_status, void *buf, size_t *buflen,
                         CocoFirmwareStatus *status, GError **error)
{
    cocoFirmwareStatusReset(status);
    if (!fw->driver->exportMemory)
        return cocoFirmwareUnsupported(fw, "export-memory", status, error);
    return cocoFirmwareFinish(fw, "export-memory",
                              fw->driver->exportMemory(fw, stream, gfns, ngfns,
                                                       gfn_status, buf, buflen,
                                                       status, error),
                              status, error);
}

int
cocoFirmwareImportMemory(CocoFirmware *fw, uint32_t stream, const void *buf,
                         size_t buflen, CocoFirmwareStatus *status,
                         GError **error)
{
    cocoFirmwareStatusReset(status);
    if (!fw->driver->importMemory)
        return cocoFirmwareUnsupported(fw, "import-memory", status, error);
    return cocoFirmwareFinish(
        fw, "import-memory",
        fw->driver->importMemory(fw, stream, buf, buflen, status, error),
        status, error);
}

int
cocoFirmwareExportVcpu(CocoFirmware *fw, unsigned int vcpu, void *buf,
                       size_t *buflen, CocoFirmwareStatus *status,
                       GError **error)
{
    cocoFirmwareStatusReset(status);
    if (!fw->driver->exportVcpu)
        return cocoFirmwareUnsupported(fw, "export-vcpu", status, error);
    return cocoFirmwareFinish(
        fw, "export-vcpu",
        fw->driver->exportVcpu(fw, vcpu, buf, buflen, status, error), status,
        error);
}

int
cocoFirmwareImportVcpu(CocoFirmware *fw, unsigned int vcpu, const void *buf,
                       size_t buflen, CocoFirmwareStatus *status,
                       GError **error)
{
    cocoFirmwareStatusReset(status);
    if (!fw->driver->importVcpu)
        return cocoFirmwareUnsupported(fw, "import-vcpu", status, error);
    return cocoFirmwareFinish(
        fw, "import-vcpu",
        fw->driver->importVcpu(fw, vcpu, buf, buflen, status, error), status,
        error);
}

int
cocoFirmwareDirtyLog(CocoFirmware *fw, uint64_t first, uint64_t npages,
                     uint64_t *bitmap, GError **error)
{
    if (!fw->driver->dirtyLog)
        return cocoFirmwareUnsupported(fw, "dirty log", NULL, error);
    if (first % 64 != 0)
        return cocoErrorSet(
            error, COCO_ERROR_FW_INVALID,
            _("a dirty log range starts at a multiple of 64 pages, not at '%1$llu'"),
            (unsigned long long)first);
    return cocoFirmwareFinish(
        fw, "dirty log", fw->driver->dirtyLog(fw, first, npages, bitmap, error),
        NULL, error);
}

int
cocoFirmwareReserveMemory(CocoFirmware *fw, const uint64_t *ranges, size_t n,
                          GError **error)
{
    if (!fw->driver->reserveMemory)
        return cocoFirmwareUnsupported(fw, "reserve memory", NULL, error);
    return cocoFirmwareFinish(fw, "reserve memory",
                              fw->driver->reserveMemory(fw, ranges, n, error),
                              NULL, error);
}

bool
cocoFirmwareHasDirtyLog(CocoFirmware *fw)
{
    return fw->driver->dirtyLog != NULL;
}

void
cocoFirmwareFree(CocoFirmware *fw)
{
    if (!fw)
        return;
    if (fw->driver && fw->driver->free)
        fw->driver->free(fw);
    g_free(fw);
}
