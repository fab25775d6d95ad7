/*
 * cocoemu.h: the "emulated" firmware backend (a software TDX-like
 * migration firmware with real cryptography)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * API (stable once committed; see docs/firmware-emulated.rst):
 *
 *   CocoFirmware *cocoEmuNew(CocoFirmwareRole role, CocoEmuPlatform *pf,
 *                            const CocoMigrationDef *def,
 *                            const CocoFirmwareVm *vm, GError **error);
 *       The VM @vm (its UUID, vm->nvcpus vCPUs, 1..4096, and vm->memory
 *       bytes of guest memory; copied) on platform @pf (a reference is
 *       taken), bound to the policy of @def (copied). Every migration
 *       session is bound to @vm's UUID and to the digest of its immutable
 *       configuration (def->technology, vCPUs, pages): PREPARE refuses a
 *       peer whose session is for another VM (COCO_EMU_ST_VM_MISMATCH).
 *       A source starts RUNNABLE with random vCPU and TD private state; a
 *       destination starts UNINIT. Forward streams: def->forward_streams
 *       when set, else 1 (plus 1 backward). Drive it with the
 *       cocoFirmware*() dispatchers of cocofirmware.h; free it with
 *       cocoFirmwareFree().
 *   int cocoEmuAttachMemory(CocoFirmware *fw, void *mem, size_t size,
 *                           GError **error);
 *   int cocoEmuAttachMemoryFd(CocoFirmware *fw, int fd, uint64_t offset,
 *                             size_t size, GError **error);
 *       Guest private memory: caller's region, or a MAP_SHARED mapping of
 *       @fd (unmapped on free). @size must be the VM's vm->memory. Only
 *       outside a migration session (RUNNABLE or UNINIT).
 *   int cocoEmuLogWrites(CocoFirmware *fw, pid_t pid, GError **error);
 *       Source, file-backed memory, outside a session: the emulation's
 *       write blocking. Process @pid (the VMM, which made its userfaultfd
 *       with cocoWriteLogPrepareSelf()) has its writes to the RAM file
 *       logged (cocowritelog.h); the dirty log reads that log instead of
 *       hashing every exported page, and the start token trusts it while
 *       @pid maps the file as it did here. Without it, or once it fails,
 *       the dirty log hashes.
 *   const char *cocoEmuWriteLogLost(CocoFirmware *fw);
 *       Why the write log was dropped (the dirty log hashes since), or
 *       NULL.
 *   int cocoEmuMarkDirty(CocoFirmware *fw, uint64_t gfn, GError **error);
 *       The host reports a guest write (TDH.EXPORT.UNBLOCKW).
 *   int cocoEmuGetDirty(CocoFirmware *fw, bool scan, uint64_t **gfns,
 *                       size_t *ngfns, GError **error);
 *       The dirty pages (exported, then written) during an export, for
 *       g_free(). With @scan, first compare every exported clean page with
 *       the hash taken at its export and mark changed ones dirty: the
 *       emulated dirty log for guest RAM whose writer cannot be watched.
 *   bool cocoEmuCanRun(CocoFirmware *fw);           VP.ENTER legality
 *   int cocoEmuVcpuEnter(CocoFirmware *fw, unsigned int vcpu, GError **e);
 *   void cocoEmuVcpuExit(CocoFirmware *fw, unsigned int vcpu);
 *       Mark a vCPU inside the guest (SOURCE_BLACKOUT is -EBUSY meanwhile).
 *   CocoEmuOpState cocoEmuGetOpState(CocoFirmware *fw);
 *   int cocoEmuSetVcpuState(CocoFirmware *fw, unsigned int vcpu,
 *                           const void *data, size_t len, GError **error);
 *   const uint8_t *cocoEmuGetVcpuState(CocoFirmware *fw, unsigned int vcpu,
 *                                      size_t *len);
 *   const uint8_t *cocoEmuGetTdState(CocoFirmware *fw, size_t *len);
 *       Firmware-owned private state (readable for tests; NULL when empty).
 *       The pointer stays valid until that state is replaced (import, set)
 *       or the firmware is freed.
 *   size_t cocoEmuMemoryBundleSize(uint32_t ngfns);
 *       Buffer size EXPORT_MEMORY needs for @ngfns pages.
 *   int cocoEmuCheckDestination(allowed, nallowed, min_tcbs, nmin_tcbs,
 *                               const uint8_t *id, const unsigned int *svn,
 *                               GError **error);
 *       The destination rules of a VM's policy (allow list of platform
 *       ids, minimum TCB SVNs) applied to platform @id
 *       (COCO_PLATFORM_ID_LEN bytes) whose SVNs are @svn (one per
 *       CocoTcbComponent): 0, or -1 with COCO_ERROR_FW_POLICY. The
 *       firmware applies exactly this to a destination peer's hello; the
 *       host tools use it to refuse a destination before a migration.
 *
 *   int cocoEmuCheckRamSpace(const char *path, uint64_t bytes,
 *                            GError **error);
 *       Whether @bytes of guest memory fit in the RAM file @path (what it
 *       already holds counts) or, for a directory, on its file system:
 *       0, or -1 with COCO_ERROR_SYSTEM naming the path, the room needed
 *       and the room free. For preflight checks; the destination firmware
 *       reserves the pages itself before it imports any (the dirtyLog and
 *       reserveMemory operations of cocofirmware.h).
 *
 * PREPARE: *buflen is the length of the peer agent's message (0 at first)
 * and @buf must have room for COCO_EMU_PREPARE_MSG_MAX bytes: the reply is
 * written there and *buflen set to its length (0: nothing to carry).
 * Sequence (the host only carries the messages): source(0) -> M1, -EAGAIN;
 * destination(0) -> nothing, -EAGAIN; destination(M1) -> M2, -EAGAIN;
 * source(M2) -> M3, 0 (keys installed); destination(M3) -> nothing, 0.
 * Every message names the VM its sender serves and the VM the session is
 * for; a message for another VM is refused (-EACCES, VM_MISMATCH) before
 * anything else of it is used, and the keys are derived from both VMs'
 * identities and the session id, so a session spliced between two
 * migrations never gets keys that match.
 *
 * Sizes: tokens are COCO_EMU_TOKEN_SIZE bytes, PREPARE messages at most
 * COCO_EMU_PREPARE_MSG_MAX, SETUP at most COCO_EMU_SETUP_BUNDLE_SIZE, a vCPU
 * bundle at most COCO_EMU_VCPU_BUNDLE_MAX. A too-small buffer gives -ENOBUFS,
 * COCO_ERROR_FW_BUFFER and status->needed.
 *
 * Thread safety: every call on one CocoFirmware takes its mutex, so streams
 * may be driven from several threads. EXPORT_MEMORY and IMPORT_MEMORY check
 * and reserve under it, do the page cryptography outside it, and commit
 * under it again; the result is the same as if calls were serialised (see
 * docs/firmware-emulated.rst, "Concurrency").
 */

#pragma once

#include "internal.h"
#include "firmware/cocofirmware.h"
#include "firmware/cocoemuplatform.h"
#include "libvirt-coco/coco-migration-def.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Per-VM operation states (TDCS OP_STATE, coco.md §2.1), plus TEARDOWN: a
 * source whose session ended with FINISH (it can only be destroyed). */
typedef enum {
    COCO_EMU_OP_UNINIT = 0,
    COCO_EMU_OP_INIT,
    COCO_EMU_OP_RUNNABLE,
    COCO_EMU_OP_LIVE_EXPORT,
    COCO_EMU_OP_PAUSED_EXPORT,
    COCO_EMU_OP_POST_EXPORT,
    COCO_EMU_OP_MEMORY_IMPORT,
    COCO_EMU_OP_STATE_IMPORT,
    COCO_EMU_OP_POST_IMPORT,
    COCO_EMU_OP_LIVE_IMPORT,
    COCO_EMU_OP_FAILED_IMPORT,
    COCO_EMU_OP_TEARDOWN,
    COCO_EMU_OP_LAST
} CocoEmuOpState;
COCO_ENUM_DECL(cocoEmuOpState);

#define COCO_EMU_PAGE_SIZE 4096
#define COCO_EMU_MAX_GFNS 512
#define COCO_EMU_MAX_STREAMS 512 /* forward streams */
#define COCO_EMU_BUNDLE_VERSION 1
#define COCO_EMU_EPOCH_OUT_OF_ORDER 0xFFFFFFFFU
#define COCO_EMU_EPOCH_MAX 0xFFFFFFFEU
#define COCO_EMU_VCPU_STATE_MAX 65536 /* bytes of private state per vCPU */
#define COCO_EMU_VCPU_STATE_DEFAULT 1024
#define COCO_EMU_TD_STATE_LEN 256

/* Bundle types (MBMD types of coco.md §2.4). */
typedef enum {
    COCO_EMU_BUNDLE_IMMUTABLE = 0,
    COCO_EMU_BUNDLE_TD = 1, /* unused: TD state rides in vCPU 0's bundle */
    COCO_EMU_BUNDLE_VCPU = 2,
    COCO_EMU_BUNDLE_MEMORY = 16,
    COCO_EMU_BUNDLE_EPOCH_TOKEN = 32,
    COCO_EMU_BUNDLE_ABORT_TOKEN = 33,
} CocoEmuBundleType;

/*
 * The bundle header (our MBMD), 64 bytes, all fields little endian:
 *   size        whole bundle in bytes, header included
 *   version     COCO_EMU_BUNDLE_VERSION
 *   stream      forward stream index (0 for tokens, SETUP, vCPUs)
 *   type        CocoEmuBundleType
 *   counter     per-stream bundle counter (0 for tokens)
 *   epoch       epoch the bundle belongs to (0xFFFFFFFF: out of order)
 *   iv_counter  per-stream IV counter, never reused
 *   specific    memory: page count; vCPU: index; epoch token: total bundles
 *               of the session including this token; else 0
 *   key_id      check value of the key: HKDF(key, "coco-emu key id")[0..7]
 *   mac         AES-256-GCM tag over the header with stream, iv_counter and
 *               mac zeroed, followed by the bundle's gfn list (memory)
 * reserved fields must be 0.
 */
typedef struct {
    uint32_t size;
    uint16_t version;
    uint16_t stream;
    uint8_t type;
    uint8_t reserved0[3];
    uint32_t counter;
    uint32_t epoch;
    uint32_t reserved1;
    uint64_t iv_counter;
    uint64_t specific;
    uint8_t key_id[8];
    uint8_t mac[16];
} CocoEmuBundleHeader;

G_STATIC_ASSERT(sizeof(CocoEmuBundleHeader) == 64);
G_STATIC_ASSERT(offsetof(CocoEmuBundleHeader, version) == 4);
G_STATIC_ASSERT(offsetof(CocoEmuBundleHeader, stream) == 6);
G_STATIC_ASSERT(offsetof(CocoEmuBundleHeader, type) == 8);
G_STATIC_ASSERT(offsetof(CocoEmuBundleHeader, counter) == 12);
G_STATIC_ASSERT(offsetof(CocoEmuBundleHeader, epoch) == 16);
G_STATIC_ASSERT(offsetof(CocoEmuBundleHeader, iv_counter) == 24);
G_STATIC_ASSERT(offsetof(CocoEmuBundleHeader, specific) == 32);
G_STATIC_ASSERT(offsetof(CocoEmuBundleHeader, key_id) == 40);
G_STATIC_ASSERT(offsetof(CocoEmuBundleHeader, mac) == 48);

#define COCO_EMU_HEADER_SIZE 64
#define COCO_EMU_TOKEN_SIZE COCO_EMU_HEADER_SIZE
#define COCO_EMU_TAG_SIZE 16
/* SETUP payload: the immutable state, sealed (see cocoemu.c). */
#define COCO_EMU_IMMUTABLE_LEN 128
#define COCO_EMU_SETUP_BUNDLE_SIZE                                             \
 (COCO_EMU_HEADER_SIZE + COCO_EMU_IMMUTABLE_LEN + COCO_EMU_TAG_SIZE)
#define COCO_EMU_VCPU_BUNDLE_MAX                                               \
 (COCO_EMU_HEADER_SIZE + 8 + COCO_EMU_TD_STATE_LEN + COCO_EMU_VCPU_STATE_MAX + \
  COCO_EMU_TAG_SIZE)
#define COCO_EMU_PREPARE_MSG_MAX 512

/* Per-gfn status of EXPORT_MEMORY (TDX numbering where it has one). */
#define COCO_EMU_GFN_OK 0
#define COCO_EMU_GFN_SKIPPED 1 /* fine, but another gfn failed the call */
#define COCO_EMU_GFN_OUT_OF_RANGE 2
#define COCO_EMU_GFN_DUPLICATE 3
#define COCO_EMU_GFN_STATE_INCORRECT 4 /* already exported and not dirty */
#define COCO_EMU_GFN_NOT_MAPPED 5 /* not in the secure EPT: never used */
#define COCO_EMU_GFN_MIGRATED_IN_CURRENT_EPOCH 7

/*
 * Raw firmware status (CocoFirmwareStatus.fw_status), styled after TDX
 * completion codes: bit 63 error, bit 62 the destination VM failed for good
 * (FAILED_IMPORT), bits 47..32 the class below.
 */
#define COCO_EMU_STATUS_ERROR (1ULL << 63)
#define COCO_EMU_STATUS_FATAL (1ULL << 62)
#define COCO_EMU_STATUS(cls) (COCO_EMU_STATUS_ERROR | ((uint64_t)(cls) << 32))
#define COCO_EMU_STATUS_CLASS(st) ((unsigned int)(((st) >> 32) & 0xFFFF))

typedef enum {
    COCO_EMU_ST_SUCCESS = 0,
    COCO_EMU_ST_OP_STATE_INCORRECT = 0x0608, /* -EPERM, as TDX */
    COCO_EMU_ST_INVALID_OPERAND = 0x0E01, /* -EINVAL */
    COCO_EMU_ST_BUFFER_TOO_SMALL, /* -EINVAL + needed */
    COCO_EMU_ST_KEY_NOT_SET, /* -EAGAIN */
    COCO_EMU_ST_OPERAND_BUSY, /* -EBUSY */
    COCO_EMU_ST_VCPU_ALREADY_EXPORTED, /* -EEXIST */
    COCO_EMU_ST_VCPU_ALREADY_IMPORTED, /* -EEXIST, fatal */
    COCO_EMU_ST_PAGE_STATE_INCORRECT, /* -EPERM */
    COCO_EMU_ST_MIGRATED_IN_CURRENT_EPOCH, /* src -EPERM; dst -EPROTO */
    COCO_EMU_ST_EXPORTED_DIRTY_PAGES_REMAIN, /* -EPERM */
    COCO_EMU_ST_EXPORTED_PAGES_CHANGED, /* -EPERM: unreported writes */
    COCO_EMU_ST_SOME_VCPUS_NOT_MIGRATED, /* -EPERM */
    COCO_EMU_ST_TD_STATE_FIRST, /* -EPERM: vCPU 0 goes first */
    COCO_EMU_ST_INVALID_MBMD, /* -EBADMSG */
    COCO_EMU_ST_INCORRECT_MBMD_MAC, /* -EBADMSG */
    COCO_EMU_ST_INVALID_PAGE_MAC, /* -EBADMSG */
    COCO_EMU_ST_BUNDLE_REPLAYED, /* -EPROTO: counter too low */
    COCO_EMU_ST_BUNDLE_MISSING, /* -EPROTO: counter too high */
    COCO_EMU_ST_EPOCH_MISMATCH, /* -EPROTO: reorder (epochs) */
    COCO_EMU_ST_EPOCH_NOT_INCREASING, /* -EPROTO: token replay */
    COCO_EMU_ST_TOTAL_BUNDLES_MISMATCH, /* -EPROTO: dropped bundles */
    COCO_EMU_ST_KEY_MISMATCH, /* -EKEYREJECTED */
    COCO_EMU_ST_POLICY_REFUSED, /* -EACCES */
    COCO_EMU_ST_SIGNATURE_INVALID, /* -EBADMSG (PREPARE) */
    COCO_EMU_ST_IMMUTABLE_MISMATCH, /* -EINVAL, fatal */
    COCO_EMU_ST_IMPORT_FAILED, /* -EIO: VM failed for good */
    COCO_EMU_ST_ABORT_TOKEN_REQUIRED, /* -EPERM */
    COCO_EMU_ST_EPOCH_OVERFLOW, /* -EPERM */
    COCO_EMU_ST_PAGE_ALREADY_IMPORTED, /* -EPROTO (out of order) */
    COCO_EMU_ST_NO_MEMORY, /* -EPERM: none attached */
    COCO_EMU_ST_VM_MISMATCH, /* -EACCES: the peer's session is for another VM */
    COCO_EMU_ST_NO_BACKING, /* -ENOSPC/-ENOMEM: no room for guest pages */
} CocoEmuStatusClass;

CocoFirmware *cocoEmuNew(CocoFirmwareRole role, CocoEmuPlatform *pf,
                         const CocoMigrationDef *def, const CocoFirmwareVm *vm,
                         GError **error);
int cocoEmuAttachMemory(CocoFirmware *fw, void *mem, size_t size,
                        GError **error);
int cocoEmuAttachMemoryFd(CocoFirmware *fw, int fd, uint64_t offset,
                          size_t size, GError **error);
int cocoEmuLogWrites(CocoFirmware *fw, pid_t pid, GError **error);
const char *cocoEmuWriteLogLost(CocoFirmware *fw);
int cocoEmuMarkDirty(CocoFirmware *fw, uint64_t gfn, GError **error);
int cocoEmuGetDirty(CocoFirmware *fw, bool scan, uint64_t **gfns, size_t *ngfns,
                    GError **error);
bool cocoEmuCanRun(CocoFirmware *fw);
int cocoEmuVcpuEnter(CocoFirmware *fw, unsigned int vcpu, GError **error);
void cocoEmuVcpuExit(CocoFirmware *fw, unsigned int vcpu);
CocoEmuOpState cocoEmuGetOpState(CocoFirmware *fw);
int cocoEmuSetVcpuState(CocoFirmware *fw, unsigned int vcpu, const void *data,
                        size_t len, GError **error);
const uint8_t *cocoEmuGetVcpuState(CocoFirmware *fw, unsigned int vcpu,
                                   size_t *len);
const uint8_t *cocoEmuGetTdState(CocoFirmware *fw, size_t *len);
size_t cocoEmuMemoryBundleSize(uint32_t ngfns);
int cocoEmuCheckDestination(const uint8_t (*allowed)[COCO_PLATFORM_ID_LEN],
                            size_t nallowed, const CocoMinTcb *min_tcbs,
                            size_t nmin_tcbs, const uint8_t *id,
                            const unsigned int *svn, GError **error);
int cocoEmuCheckRamSpace(const char *path, uint64_t bytes, GError **error);
