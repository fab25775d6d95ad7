/*
 * cocokvm.h: the "kvm" firmware backend (the RFC ioctls on a VM fd)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Issues KVM_MIGRATE_CMD, KVM_{IMPORT,EXPORT}_MEMORY on the VM fd and
 * KVM_{IMPORT,EXPORT}_VCPU on the vCPU fds of a VM that a VMM owns, through
 * an injectable ioctl function (tests use a fake kernel). The fds are
 * borrowed: they must stay open while the firmware object lives.
 *
 * Retry policy (docs/kvm-abi.rst):
 *  - -EINTR: re-issued with identical arguments, transparently (bounded by
 *    the configured eintr_retries so a broken kernel cannot hang us);
 *  - -EAGAIN from PREPARE: returned at once as COCO_ERROR_FW_NOT_READY, the
 *    caller polls (it carries the agents' messages between the calls);
 *  - -EAGAIN from any other call: re-issued after a back-off that starts at
 *    eagain_backoff_us and doubles, at most eagain_retries times, then
 *    returned as COCO_ERROR_FW_NOT_READY;
 *  - buffer too small: the kernel returns -E2BIG and writes the size it
 *    needs into buf.size (KVM's convention, as KVM_GET_NESTED_STATE); also
 *    accepted: -EINVAL or -ENOSPC with buf.size grown. Reported as -ENOBUFS
 *    (COCO_ERROR_FW_BUFFER) with CocoFirmwareStatus.needed; the *Alloc()
 *    calls below own their buffer and retry once with the size needed.
 *
 * Threads: every call may run concurrently with any other on the same
 * object (e.g. one thread per memory stream); the object keeps no per-call
 * state. Whether the kernel accepts concurrent calls is the kernel's rule.
 */

#pragma once

#include "internal.h"
#include "firmware/cocofirmware.h"
#include "firmware/cocokvmconfig.h"

typedef struct {
    /* Issue @request on @fd with @arg; return the result (>= 0) or -errno. */
    int (*ioctl)(void *opaque, int fd, unsigned long request, void *arg);
    /* Sleep @usec microseconds (the -EAGAIN back-off). */
    void (*sleep)(void *opaque, unsigned int usec);
    void *opaque;
} CocoKvmOps;

/* The real ioctl(2) and g_usleep(). */
const CocoKvmOps *cocoKvmSystemOps(void);

/*
 * cocoKvmProbe:
 * KVM_CHECK_EXTENSION(KVM_CAP_MIGRATION) on @vm_fd; caps->migration tells
 * the answer (a kernel without it is not an error here). @fw_status (may be
 * NULL) tells whether the firmware-status extension is usable.
 * @ops and @cfg may be NULL (system ioctl, cocoKvmConfigLoad()).
 */
int cocoKvmProbe(int vm_fd, const CocoKvmOps *ops, const CocoKvmConfig *cfg,
                 CocoFirmwareCaps *caps, bool *fw_status, GError **error);

/*
 * cocoKvmFirmwareNew:
 * A CocoFirmware (driver "kvm") for the VM @vm_fd with @nvcpus vCPU fds.
 * Fails with COCO_ERROR_NOT_SUPPORTED when the kernel lacks
 * KVM_CAP_MIGRATION. @ops and @cfg may be NULL as for cocoKvmProbe().
 */
CocoFirmware *cocoKvmFirmwareNew(CocoFirmwareRole role, int vm_fd,
                                 const int *vcpu_fds, unsigned int nvcpus,
                                 const CocoKvmOps *ops,
                                 const CocoKvmConfig *cfg, GError **error);

/* The driver; exposed for tests and for the backend registry. */
extern const CocoFirmwareDriver cocoKvmFirmwareDriver;

/* Whether @fw (a "kvm" firmware) uses the firmware-status extension. */
bool cocoKvmFirmwareUsesExt(CocoFirmware *fw);

/*
 * cocoKvmMigrateCmdAlloc:
 * KVM_MIGRATE_CMD with a buffer the backend owns: @in (@inlen bytes, may be
 * empty) is copied into it; the output comes back in *@out (empty GBytes
 * when the call returns no data). On a short buffer the call is retried
 * once with the size the kernel asked for.
 */
int cocoKvmMigrateCmdAlloc(CocoFirmware *fw, CocoMigrateCmd cmd, uint32_t flags,
                           const void *in, size_t inlen, GBytes **out,
                           CocoFirmwareStatus *status, GError **error);

/* KVM_EXPORT_VCPU into a buffer the backend owns, retried once as above. */
int cocoKvmExportVcpuAlloc(CocoFirmware *fw, unsigned int vcpu, GBytes **out,
                           CocoFirmwareStatus *status, GError **error);
