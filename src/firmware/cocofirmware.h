/*
 * cocofirmware.h: the firmware seam (CocoFirmware)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One interface for the six KVM_MIGRATE_CMD sub-commands of the RFC
 * ("Add import export API for confidential guest live migration") and
 * KVM_{EXPORT,IMPORT}_{MEMORY,VCPU}. Backends: "kvm" (the RFC ioctls on a
 * VM fd and vCPU fds) and "emulated" (a software firmware following the TDX
 * module's migration rules). Everything above this seam is backend-blind.
 *
 * Conventions for every call:
 *  - returns 0 on success, or a negative errno exactly as the RFC ioctl
 *    would (-EPERM wrong state/order, -EBADMSG MAC/format, -EPROTO
 *    replay/drop/reorder, -EBUSY vCPUs running, -EAGAIN key not yet set,
 *    -EEXIST already exported, -EINVAL malformed arguments, -ENOBUFS
 *    buffer too small (status->needed says how big),
 *    -ENOTTY/-EOPNOTSUPP not supported); and then @error is set too, in the
 *    COCO_ERROR domain with the matching COCO_ERROR_FW_* code and a clear,
 *    translated message;
 *  - @status (may be NULL) receives the errno, the raw firmware status
 *    (TDX-style 64-bit completion code; the RFC has no such field, we keep
 *    it anyway) and, for a too-small buffer, the size needed;
 *  - buffers are caller-owned; *buflen is the capacity on input and the
 *    bytes used on output.
 */

#pragma once

#include "internal.h"
#include "util/cocoenum.h"
#include "util/cocoerror.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    COCO_MIGRATE_CMD_PREPARE = 0,
    COCO_MIGRATE_CMD_SETUP = 1,
    COCO_MIGRATE_CMD_TOKEN = 2,
    COCO_MIGRATE_CMD_SOURCE_BLACKOUT = 3,
    COCO_MIGRATE_CMD_ABORT = 4,
    COCO_MIGRATE_CMD_FINISH = 5,
    COCO_MIGRATE_CMD_LAST
} CocoMigrateCmd;
COCO_ENUM_DECL(cocoMigrateCmd); /* "prepare", "setup", "token", ... */

typedef enum {
    COCO_FIRMWARE_ROLE_SOURCE = 0,
    COCO_FIRMWARE_ROLE_DESTINATION,
    COCO_FIRMWARE_ROLE_LAST
} CocoFirmwareRole;
COCO_ENUM_DECL(cocoFirmwareRole); /* "source", "destination" */

/* Flags of COCO_MIGRATE_CMD_TOKEN: the start token (in-order phase done). */
#define COCO_MIGRATE_TOKEN_START (1U << 0)

typedef struct {
    int err; /* 0 or the negative errno returned */
    uint64_t fw_status; /* raw firmware completion status, 0 = success */
    size_t needed; /* -EINVAL for a short buffer: the size needed */
} CocoFirmwareStatus;

typedef struct {
    bool migration; /* KVM_CAP_MIGRATION */
    unsigned int max_streams; /* forward streams + 1 backward */
    unsigned int max_gfns; /* pages per EXPORT/IMPORT_MEMORY call */
    unsigned int mig_version; /* bundle format version */
} CocoFirmwareCaps;

/*
 * The VM a firmware object serves: the creation parameters of a backend
 * that is not given the VM by the kernel ("emulated"; the "kvm" backend's
 * VM is its VM fd, and its firmware knows the TD). The firmware binds every
 * migration session to this identity, as the TDX module binds one to a TD:
 * the key exchange names the source and the intended destination VM, each
 * side checks the peer's session is for its own VM, and the session keys
 * are derived from both identities. A migration keeps the guest's identity
 * (the same UUID and configuration on both sides).
 */
#define COCO_FIRMWARE_UUID_LEN 16
#define COCO_FIRMWARE_UUID_STRLEN 37 /* "8-4-4-4-12" hex digits and a NUL */

typedef struct {
    uint8_t uuid[COCO_FIRMWARE_UUID_LEN]; /* the domain's <uuid>, not nil */
    unsigned int nvcpus; /* >= 1 */
    uint64_t memory; /* guest private memory in bytes, a multiple of 4096 */
} CocoFirmwareVm;

/* Parse @str, a UUID as libvirt and QEMU write it (8-4-4-4-12 or 32 hex
 * digits, either case) into COCO_FIRMWARE_UUID_LEN bytes; the nil UUID is
 * refused. 0, or -1 with COCO_ERROR_INVALID_ARG. */
int cocoFirmwareVmParseUuid(const char *str, uint8_t *uuid, GError **error);
/* @uuid as 8-4-4-4-12 lower-case hex into @str (COCO_FIRMWARE_UUID_STRLEN
 * bytes). */
void cocoFirmwareVmFormatUuid(const uint8_t *uuid, char *str);
/* Every field of @vm in range: 0, or -1 with COCO_ERROR_INVALID_ARG. */
int cocoFirmwareVmValidate(const CocoFirmwareVm *vm, GError **error);

typedef struct _CocoFirmware CocoFirmware;

typedef struct {
    const char *name; /* "kvm", "emulated" */

    int (*getCaps)(CocoFirmware *fw, CocoFirmwareCaps *caps, GError **error);

    /*
     * KVM_MIGRATE_CMD. Buffer use per sub-command:
     *  PREPARE          in: the peer agent's last message (len 0 at first);
     *                   out: the message for the peer agent (len 0: none).
     *                   Returns -EAGAIN until the session keys are
     *                   installed, then 0. The host only carries the
     *                   messages; it never sees a key.
     *  SETUP            source out / destination in: immutable-state bundle.
     *  TOKEN            source out / destination in: an epoch token, or the
     *                   start token with COCO_MIGRATE_TOKEN_START.
     *  SOURCE_BLACKOUT  source only; no buffer.
     *  ABORT            destination out: the abort token;
     *                   source in: the abort token (len 0 before the start
     *                   token).
     *  FINISH           destination: commit (the VM may run after this);
     *                   source: end the session (the VM can never run).
     */
    int (*migrateCmd)(CocoFirmware *fw, CocoMigrateCmd cmd, uint32_t flags,
                      void *buf, size_t *buflen, CocoFirmwareStatus *status,
                      GError **error);

    /*
     * KVM_EXPORT_MEMORY: export @ngfns pages (<= caps.max_gfns) on forward
     * stream @stream into one bundle in @buf. @gfn_status (may be NULL) gets
     * one per-page status (0 ok) so the caller can retry failed pages.
     */
    int (*exportMemory)(CocoFirmware *fw, uint32_t stream, const uint64_t *gfns,
                        uint32_t ngfns, uint8_t *gfn_status, void *buf,
                        size_t *buflen, CocoFirmwareStatus *status,
                        GError **error);

    /* KVM_IMPORT_MEMORY: import one memory bundle received on @stream. */
    int (*importMemory)(CocoFirmware *fw, uint32_t stream, const void *buf,
                        size_t buflen, CocoFirmwareStatus *status,
                        GError **error);

    /* KVM_EXPORT_VCPU / KVM_IMPORT_VCPU for vCPU @vcpu. */
    int (*exportVcpu)(CocoFirmware *fw, unsigned int vcpu, void *buf,
                      size_t *buflen, CocoFirmwareStatus *status,
                      GError **error);
    int (*importVcpu)(CocoFirmware *fw, unsigned int vcpu, const void *buf,
                      size_t buflen, CocoFirmwareStatus *status,
                      GError **error);

    /*
     * Source, optional (KVM_GET_DIRTY_LOG of a confidential VM): set bit
     * g - @first of @bitmap for every page g of [@first, @first + @npages)
     * that must be exported: a page mapped in the VM (present in its
     * secure EPT) and not exported in this session, or exported and
     * written since. Pages the guest never touched are never listed.
     * Bits are only set (OR). @first is a multiple of 64 and the range
     * ends at or before the guest's last page; @bitmap holds
     * (@npages + 63) / 64 words. In a migration session only. Calls on
     * disjoint ranges may run concurrently.
     */
    int (*dirtyLog)(CocoFirmware *fw, uint64_t first, uint64_t npages,
                    uint64_t *bitmap, GError **error);

    /*
     * Destination, optional: reserve the guest memory backing of @n page
     * ranges (@ranges: @n pairs of first gfn and page count, increasing,
     * not overlapping, within the guest) before their pages are imported,
     * so that an import can never fail for want of memory. Fails with a
     * clear error, reserving nothing new, when the backing has no room.
     */
    int (*reserveMemory)(CocoFirmware *fw, const uint64_t *ranges, size_t n,
                         GError **error);

    void (*free)(CocoFirmware *fw);
} CocoFirmwareDriver;

struct _CocoFirmware {
    const CocoFirmwareDriver *driver;
    CocoFirmwareRole role;
    void *priv; /* the backend's */
};

/* Dispatchers: check arguments, call the backend, keep *status filled. */
int cocoFirmwareGetCaps(CocoFirmware *fw, CocoFirmwareCaps *caps,
                        GError **error);
int cocoFirmwareMigrateCmd(CocoFirmware *fw, CocoMigrateCmd cmd, uint32_t flags,
                           void *buf, size_t *buflen,
                           CocoFirmwareStatus *status, GError **error);
int cocoFirmwareExportMemory(CocoFirmware *fw, uint32_t stream,
                             const uint64_t *gfns, uint32_t ngfns,
                             uint8_t *gfn_status, void *buf, size_t *buflen,
                             CocoFirmwareStatus *status, GError **error);
int cocoFirmwareImportMemory(CocoFirmware *fw, uint32_t stream, const void *buf,
                             size_t buflen, CocoFirmwareStatus *status,
                             GError **error);
int cocoFirmwareExportVcpu(CocoFirmware *fw, unsigned int vcpu, void *buf,
                           size_t *buflen, CocoFirmwareStatus *status,
                           GError **error);
int cocoFirmwareImportVcpu(CocoFirmware *fw, unsigned int vcpu, const void *buf,
                           size_t buflen, CocoFirmwareStatus *status,
                           GError **error);
/* Optional operations: -EOPNOTSUPP with COCO_ERROR_NOT_SUPPORTED when the
 * backend does not have them. */
int cocoFirmwareDirtyLog(CocoFirmware *fw, uint64_t first, uint64_t npages,
                         uint64_t *bitmap, GError **error);
int cocoFirmwareReserveMemory(CocoFirmware *fw, const uint64_t *ranges,
                              size_t n, GError **error);
/* Whether the backend has the optional operation (without calling it). */
bool cocoFirmwareHasDirtyLog(CocoFirmware *fw);
void cocoFirmwareFree(CocoFirmware *fw);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoFirmware, cocoFirmwareFree)

/* Map a negative errno to its COCO_ERROR_FW_* code. */
CocoErrorCode cocoFirmwareErrnoToCode(int err);
