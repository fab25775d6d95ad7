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

/* ---- the VM a firmware object serves ---------------------------------- */

int
cocoFirmwareVmParseUuid(const char *str, uint8_t *uuid, GError **error)
{
    static const uint8_t nil[COCO_FIRMWARE_UUID_LEN] = {0};
    size_t len = str ? strlen(str) : 0;
    bool dashed = len == COCO_FIRMWARE_UUID_STRLEN - 1;
    size_t n = 0;
    size_t i;

    if (!dashed && len != 2 * COCO_FIRMWARE_UUID_LEN)
        goto invalid;
    for (i = 0; i < len; i++) {
        int v;

        if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (str[i] != '-')
                goto invalid;
            continue;
        }
        if ((v = g_ascii_xdigit_value(str[i])) < 0)
            goto invalid;
        if (n % 2 == 0)
            uuid[n / 2] = (uint8_t)(v << 4);
        else
            uuid[n / 2] |= (uint8_t)v;
        n++;
    }
    if (memcmp(uuid, nil, COCO_FIRMWARE_UUID_LEN) == 0)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the nil UUID does not identify a VM; a confidential migration needs the domain's UUID"));
    return 0;

invalid:
    return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                        _("'%1$.64s' is not a VM UUID"), NULLSTR(str));
}

void
cocoFirmwareVmFormatUuid(const uint8_t *uuid, char *str)
{
    g_snprintf(str, COCO_FIRMWARE_UUID_STRLEN,
               "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
               "%02x%02x%02x%02x%02x%02x",
               uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6],
               uuid[7], uuid[8], uuid[9], uuid[10], uuid[11], uuid[12],
               uuid[13], uuid[14], uuid[15]);
}

int
cocoFirmwareVmValidate(const CocoFirmwareVm *vm, GError **error)
{
    static const uint8_t nil[COCO_FIRMWARE_UUID_LEN] = {0};

    if (!vm)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("the firmware needs the identity of its VM"));
    if (memcmp(vm->uuid, nil, COCO_FIRMWARE_UUID_LEN) == 0)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the nil UUID does not identify a VM; a confidential migration needs the domain's UUID"));
    if (vm->nvcpus == 0)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("a VM has at least one vCPU"));
    if (vm->memory == 0 || vm->memory % 4096 != 0)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("guest memory size '%1$llu' is not a positive multiple of 4096"),
            (unsigned long long)vm->memory);
    return 0;
}

/* ---- dispatchers ----------------------------------------------------- */

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
