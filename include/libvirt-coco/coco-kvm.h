/*
 * coco-kvm.h: the "kvm" backend for the VMM's own process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(LIBVIRT_COCO_H_INSIDE) && !defined(LIBVIRT_COCO_COMPILATION)
# error "Only <libvirt-coco/libvirt-coco.h> can be included directly."
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

G_BEGIN_DECLS

/**
 * CocoKvmMigration:
 *
 * The confidential-migration calls of the RFC ("Add import export API for
 * confidential guest live migration": KVM_MIGRATE_CMD,
 * KVM_{EXPORT,IMPORT}_MEMORY, KVM_{EXPORT,IMPORT}_VCPU) on a VM and its
 * vCPUs, with the retry policy and the error mapping of
 * docs/kvm-abi.rst. KVM refuses every VM and vCPU ioctl from a process
 * other than the one that created the VM, so the VMM (QEMU) links this
 * library and makes the calls from its own process; the keys, the policy
 * and the transport stay with the host agent. The descriptors are
 * borrowed: they must stay open while the handle lives. (Since: 0.1.0)
 */
typedef struct _CocoKvmMigration CocoKvmMigration;

/**
 * CocoKvmMigrationRole:
 * @COCO_KVM_MIGRATION_SOURCE: the VM migrates away
 * @COCO_KVM_MIGRATION_DESTINATION: the VM is the incoming copy
 *
 * The VM's part in a migration. (Since: 0.1.0)
 */
typedef enum {
    COCO_KVM_MIGRATION_SOURCE = 0,
    COCO_KVM_MIGRATION_DESTINATION = 1,
} CocoKvmMigrationRole;

/**
 * cocoKvmMigrationProbe:
 * @vm_fd: a VM descriptor this process created (KVM_CREATE_VM)
 * @supported: (out): whether the kernel implements KVM_CAP_MIGRATION
 * @error: return location for a #GError
 *
 * Asks the kernel for KVM_CAP_MIGRATION (its number from
 * /etc/libvirt-coco/kvm.conf, or the provisional one). A kernel without
 * it is not an error. A descriptor of another process gives
 * %COCO_ERROR_INVALID_ARG ("belongs to another process").
 *
 * Returns: 0, or -1 with @error set. (Since: 0.1.0)
 */
int cocoKvmMigrationProbe(int vm_fd, bool *supported, GError **error);

/**
 * cocoKvmMigrationNew:
 * @role: the VM's part in the migration
 * @vm_fd: a VM descriptor this process created
 * @vcpu_fds: (array length=nvcpus): its vCPU descriptors, in vCPU order
 * @nvcpus: the number of vCPUs
 * @error: return location for a #GError
 *
 * Probes the kernel and returns a handle for the calls below. A kernel
 * without KVM_CAP_MIGRATION gives %COCO_ERROR_NOT_SUPPORTED ("this kernel
 * does not implement KVM_CAP_MIGRATION").
 *
 * Returns: (transfer full): the handle, or %NULL with @error set. (Since: 0.1.0)
 */
CocoKvmMigration *cocoKvmMigrationNew(CocoKvmMigrationRole role, int vm_fd,
                                      const int *vcpu_fds, unsigned int nvcpus,
                                      GError **error);

/**
 * cocoKvmMigrationFree:
 * @migration: (nullable): a handle
 *
 * Frees @migration; the descriptors stay open. (Since: 0.1.0)
 */
void cocoKvmMigrationFree(CocoKvmMigration *migration);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoKvmMigration, cocoKvmMigrationFree)

/**
 * cocoKvmMigrationCommand:
 * @migration: a handle
 * @command: a sub-command, KVM_MIGRATE_PREPARE to KVM_MIGRATE_FINISH
 * @flags: the sub-command's flags (16 bits)
 * @buf: (nullable): the sub-command's buffer
 * @buflen: (inout) (nullable): its capacity in, the bytes used out; on
 *          -ENOBUFS the size the kernel needs (0 when it did not say)
 * @fw_status: (out) (optional): the firmware's raw completion status
 * @error: return location for a #GError
 *
 * KVM_MIGRATE_CMD on the VM (docs/kvm-abi.rst for each sub-command's
 * buffer). -EINTR is re-issued, -EAGAIN of PREPARE returned at once (the
 * caller carries the agents' messages and calls again), other -EAGAIN
 * retried with a back-off.
 *
 * Returns: 0, or the negative errno of the call with @error set. (Since: 0.1.0)
 */
int cocoKvmMigrationCommand(CocoKvmMigration *migration, unsigned int command,
                            unsigned int flags, void *buf, size_t *buflen,
                            uint64_t *fw_status, GError **error);

/**
 * cocoKvmMigrationExportMemory:
 * @migration: a source handle
 * @stream: the migration stream (TDX: stream index)
 * @gfns: (array length=ngfns): the guest frame numbers to export
 * @ngfns: how many
 * @gfn_status: (array length=ngfns) (nullable): one status per page out
 * @buf: the bundle buffer
 * @buflen: (inout): its capacity in, the bundle's length out
 * @fw_status: (out) (optional): the firmware's raw completion status
 * @error: return location for a #GError
 *
 * KVM_EXPORT_MEMORY on the VM.
 *
 * Returns: 0, or the negative errno of the call with @error set. (Since: 0.1.0)
 */
int cocoKvmMigrationExportMemory(CocoKvmMigration *migration,
                                 unsigned int stream, const uint64_t *gfns,
                                 unsigned int ngfns, uint8_t *gfn_status,
                                 void *buf, size_t *buflen, uint64_t *fw_status,
                                 GError **error);

/**
 * cocoKvmMigrationImportMemory:
 * @migration: a destination handle
 * @stream: the migration stream the bundle came on
 * @buf: the bundle
 * @buflen: its length
 * @fw_status: (out) (optional): the firmware's raw completion status
 * @error: return location for a #GError
 *
 * KVM_IMPORT_MEMORY on the VM.
 *
 * Returns: 0, or the negative errno of the call with @error set. (Since: 0.1.0)
 */
int cocoKvmMigrationImportMemory(CocoKvmMigration *migration,
                                 unsigned int stream, const void *buf,
                                 size_t buflen, uint64_t *fw_status,
                                 GError **error);

/**
 * cocoKvmMigrationExportVcpu:
 * @migration: a source handle
 * @vcpu: the vCPU's index
 * @buf: the state buffer
 * @buflen: (inout): its capacity in, the state's length out
 * @fw_status: (out) (optional): the firmware's raw completion status
 * @error: return location for a #GError
 *
 * KVM_EXPORT_VCPU on the vCPU's descriptor.
 *
 * Returns: 0, or the negative errno of the call with @error set. (Since: 0.1.0)
 */
int cocoKvmMigrationExportVcpu(CocoKvmMigration *migration, unsigned int vcpu,
                               void *buf, size_t *buflen, uint64_t *fw_status,
                               GError **error);

/**
 * cocoKvmMigrationImportVcpu:
 * @migration: a destination handle
 * @vcpu: the vCPU's index
 * @buf: the state
 * @buflen: its length
 * @fw_status: (out) (optional): the firmware's raw completion status
 * @error: return location for a #GError
 *
 * KVM_IMPORT_VCPU on the vCPU's descriptor (vCPU 0 first).
 *
 * Returns: 0, or the negative errno of the call with @error set. (Since: 0.1.0)
 */
int cocoKvmMigrationImportVcpu(CocoKvmMigration *migration, unsigned int vcpu,
                               const void *buf, size_t buflen,
                               uint64_t *fw_status, GError **error);

G_END_DECLS
