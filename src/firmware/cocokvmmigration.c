/*
 * cocokvmmigration.c: the public handle on the "kvm" backend
 * (<libvirt-coco/coco-kvm.h>), for a VMM calling from its own process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "firmware/cocokvm.h"
#include "libvirt-coco/coco-kvm.h"

#include <errno.h>

struct _CocoKvmMigration {
    CocoFirmware *fw;
};

G_STATIC_ASSERT((int)COCO_KVM_MIGRATION_SOURCE ==
                (int)COCO_FIRMWARE_ROLE_SOURCE);
G_STATIC_ASSERT((int)COCO_KVM_MIGRATION_DESTINATION ==
                (int)COCO_FIRMWARE_ROLE_DESTINATION);

int
cocoKvmMigrationProbe(int vm_fd, bool *supported, GError **error)
{
    CocoFirmwareCaps caps;

    *supported = false;
    if (cocoKvmProbe(vm_fd, NULL, NULL, &caps, NULL, error) < 0)
        return -1;
    *supported = caps.migration;
    return 0;
}

CocoKvmMigration *
cocoKvmMigrationNew(CocoKvmMigrationRole role, int vm_fd, const int *vcpu_fds,
                    unsigned int nvcpus, GError **error)
{
    CocoFirmware *fw = cocoKvmFirmwareNew((CocoFirmwareRole)role, vm_fd,
                                          vcpu_fds, nvcpus, NULL, NULL, error);
    CocoKvmMigration *m;

    if (!fw)
        return NULL;
    m = g_new0(CocoKvmMigration, 1);
    m->fw = fw;
    return m;
}

void
cocoKvmMigrationFree(CocoKvmMigration *migration)
{
    if (!migration)
        return;
    cocoFirmwareFree(migration->fw);
    g_free(migration);
}

/* The seam's status as the public API reports it. */
static int
cocoKvmMigrationDone(int ret, const CocoFirmwareStatus *st, size_t *buflen,
                     uint64_t *fw_status)
{
    if (fw_status)
        *fw_status = st->fw_status;
    if (ret == -ENOBUFS && buflen)
        *buflen = st->needed;
    return ret;
}

int
cocoKvmMigrationCommand(CocoKvmMigration *migration, unsigned int command,
                        unsigned int flags, void *buf, size_t *buflen,
                        uint64_t *fw_status, GError **error)
{
    CocoFirmwareStatus st = {0};
    size_t none = 0;

    /* an unknown sub-command is refused by the seam's dispatcher */
    return cocoKvmMigrationDone(
        cocoFirmwareMigrateCmd(migration->fw,
                               (CocoMigrateCmd)MIN(command, G_MAXINT), flags,
                               buf, buflen ? buflen : &none, &st, error),
        &st, buflen, fw_status);
}

int
cocoKvmMigrationExportMemory(CocoKvmMigration *migration, unsigned int stream,
                             const uint64_t *gfns, unsigned int ngfns,
                             uint8_t *gfn_status, void *buf, size_t *buflen,
                             uint64_t *fw_status, GError **error)
{
    CocoFirmwareStatus st = {0};

    return cocoKvmMigrationDone(
        cocoFirmwareExportMemory(migration->fw, stream, gfns, ngfns, gfn_status,
                                 buf, buflen, &st, error),
        &st, buflen, fw_status);
}

int
cocoKvmMigrationImportMemory(CocoKvmMigration *migration, unsigned int stream,
                             const void *buf, size_t buflen,
                             uint64_t *fw_status, GError **error)
{
    CocoFirmwareStatus st = {0};

    return cocoKvmMigrationDone(cocoFirmwareImportMemory(migration->fw, stream,
                                                         buf, buflen, &st,
                                                         error),
                                &st, NULL, fw_status);
}

int
cocoKvmMigrationExportVcpu(CocoKvmMigration *migration, unsigned int vcpu,
                           void *buf, size_t *buflen, uint64_t *fw_status,
                           GError **error)
{
    CocoFirmwareStatus st = {0};

    return cocoKvmMigrationDone(
        cocoFirmwareExportVcpu(migration->fw, vcpu, buf, buflen, &st, error),
        &st, buflen, fw_status);
}

int
cocoKvmMigrationImportVcpu(CocoKvmMigration *migration, unsigned int vcpu,
                           const void *buf, size_t buflen, uint64_t *fw_status,
                           GError **error)
{
    CocoFirmwareStatus st = {0};

    return cocoKvmMigrationDone(
        cocoFirmwareImportVcpu(migration->fw, vcpu, buf, buflen, &st, error),
        &st, NULL, fw_status);
}
