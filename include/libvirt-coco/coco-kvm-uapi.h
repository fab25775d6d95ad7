/*
 * coco-kvm-uapi.h: the proposed KVM confidential-migration ioctl ABI
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The structures below are those of the RFC "[RFC PATCH 0/3] Add import
 * export API for confidential guest live migration" (Tony Lindgren,
 * kvm@vger.kernel.org, 2025-10-06, Message-ID
 * 20251006113524.1573116-1-tony.lindgren@linux.intel.com), patches 1/3-3/3
 * to Documentation/virt/kvm/api.rst sections 4.144-4.148. Their names, field
 * names, field types and field order are exactly as documented there; the
 * sizes and offsets are the natural C layout of those fields and are checked
 * by static assertions at the end of this file.
 *
 * The RFC gives NO ioctl numbers and NO capability number. The numbers here
 * are libvirt-coco's PROVISIONAL choice, in KVM's ioctl space (KVMIO, 0xAE)
 * but outside every number used by <linux/kvm.h>; see docs/kvm-abi.rst. They
 * can be overridden when compiling (define the COCO_KVM_*_NR and
 * COCO_KVM_CAP_* macros first) and libvirt-coco also reads them at run time
 * from its host configuration (kvm.conf).
 *
 * Everything prefixed coco_ / COCO_ is a libvirt-coco EXTENSION that the RFC
 * lacks: the raw firmware status and a per-page status. The RFC structures
 * are never changed for it; the extension is a trailer appended after an
 * unchanged RFC structure, passed with the same ioctl number and the larger
 * size, and only used when the kernel announces
 * %COCO_KVM_CAP_MIGRATION_FW_STATUS.
 */

#pragma once

#if !defined(LIBVIRT_COCO_H_INSIDE) && !defined(LIBVIRT_COCO_COMPILATION)
# error "Only <libvirt-coco/libvirt-coco.h> can be included directly."
#endif

#include <stddef.h>
#include <linux/ioctl.h>
#include <linux/kvm.h>
#include <linux/types.h>

/**
 * COCO_KVM_MIGRATE_CMD_NR:
 *
 * Provisional ioctl number (the "nr" byte under KVMIO) of %KVM_MIGRATE_CMD.
 * Define it before including this header to override it. (Since: 0.1.0)
 */
#ifndef COCO_KVM_MIGRATE_CMD_NR
# define COCO_KVM_MIGRATE_CMD_NR 0xf0
#endif

/**
 * COCO_KVM_IMPORT_MEMORY_NR:
 *
 * Provisional ioctl number of %KVM_IMPORT_MEMORY. (Since: 0.1.0)
 */
#ifndef COCO_KVM_IMPORT_MEMORY_NR
# define COCO_KVM_IMPORT_MEMORY_NR 0xf1
#endif

/**
 * COCO_KVM_EXPORT_MEMORY_NR:
 *
 * Provisional ioctl number of %KVM_EXPORT_MEMORY. (Since: 0.1.0)
 */
#ifndef COCO_KVM_EXPORT_MEMORY_NR
# define COCO_KVM_EXPORT_MEMORY_NR 0xf2
#endif

/**
 * COCO_KVM_IMPORT_VCPU_NR:
 *
 * Provisional ioctl number of %KVM_IMPORT_VCPU. (Since: 0.1.0)
 */
#ifndef COCO_KVM_IMPORT_VCPU_NR
# define COCO_KVM_IMPORT_VCPU_NR 0xf3
#endif

/**
 * COCO_KVM_EXPORT_VCPU_NR:
 *
 * Provisional ioctl number of %KVM_EXPORT_VCPU. (Since: 0.1.0)
 */
#ifndef COCO_KVM_EXPORT_VCPU_NR
# define COCO_KVM_EXPORT_VCPU_NR 0xf4
#endif

/**
 * COCO_KVM_CAP_MIGRATION:
 *
 * Provisional number of the capability %KVM_CAP_MIGRATION, probed with
 * KVM_CHECK_EXTENSION on the VM fd. (Since: 0.1.0)
 */
#ifndef COCO_KVM_CAP_MIGRATION
# define COCO_KVM_CAP_MIGRATION 1000
#endif

/**
 * COCO_KVM_CAP_MIGRATION_FW_STATUS:
 *
 * libvirt-coco extension: the kernel accepts the *_ext forms of the
 * migration ioctls (raw firmware status and per-page status). Provisional
 * number. (Since: 0.1.0)
 */
#ifndef COCO_KVM_CAP_MIGRATION_FW_STATUS
# define COCO_KVM_CAP_MIGRATION_FW_STATUS 1001
#endif

#ifndef KVM_MIGRATE_PREPARE
/* The RFC's definitions, unless a kernel header already provides them. */

/**
 * KVM_CAP_MIGRATION:
 *
 * The capability gating every ioctl below (RFC). (Since: 0.1.0)
 */
# define KVM_CAP_MIGRATION COCO_KVM_CAP_MIGRATION

/**
 * KVM_MIGRATE_PREPARE:
 *
 * Sub-command 0 of %KVM_MIGRATE_CMD (RFC). (Since: 0.1.0)
 */
# define KVM_MIGRATE_PREPARE 0

/**
 * KVM_MIGRATE_SETUP:
 *
 * Sub-command 1 of %KVM_MIGRATE_CMD (RFC). (Since: 0.1.0)
 */
# define KVM_MIGRATE_SETUP 1

/**
 * KVM_MIGRATE_TOKEN:
 *
 * Sub-command 2 of %KVM_MIGRATE_CMD (RFC). (Since: 0.1.0)
 */
# define KVM_MIGRATE_TOKEN 2

/**
 * KVM_MIGRATE_SOURCE_BLACKOUT:
 *
 * Sub-command 3 of %KVM_MIGRATE_CMD (RFC). (Since: 0.1.0)
 */
# define KVM_MIGRATE_SOURCE_BLACKOUT 3

/**
 * KVM_MIGRATE_ABORT:
 *
 * Sub-command 4 of %KVM_MIGRATE_CMD (RFC). (Since: 0.1.0)
 */
# define KVM_MIGRATE_ABORT 4

/**
 * KVM_MIGRATE_FINISH:
 *
 * Sub-command 5 of %KVM_MIGRATE_CMD (RFC). (Since: 0.1.0)
 */
# define KVM_MIGRATE_FINISH 5

/**
 * kvm_transfer_buffer:
 * @address: userspace buffer address
 * @size: size of the userspace buffer (libvirt-coco's reading: in/out; on
 *        -E2BIG the kernel writes the size it needs here)
 * @reserved: reserved for future use, must be 0
 *
 * A userspace buffer handed to the hardware (RFC). 16 bytes.
 * (Since: 0.1.0)
 */
struct kvm_transfer_buffer {
    __u64 address;
    __u32 size;
    __u32 reserved;
};

/**
 * kvm_migrate_cmd:
 * @command: one of the KVM_MIGRATE_* sub-commands
 * @flags: hardware specific flags
 * @reserved: reserved for future use, must be 0
 * @buf: userspace buffer for hardware specific data
 *
 * Parameter of %KVM_MIGRATE_CMD, a vm ioctl (RFC 4.144). 24 bytes.
 * (Since: 0.1.0)
 */
struct kvm_migrate_cmd {
    __u16 command;
    __u16 flags;
    __u32 reserved;
    struct kvm_transfer_buffer buf;
};

/**
 * kvm_memory_transfer:
 * @gfns: userspace address of the array of GFNs (__u64 each)
 * @nr_gfns: number of GFNs
 * @id: optional hardware specific transfer ID (TDX: migration stream index)
 * @flags: hardware specific flags
 * @reserved: reserved for future use, must be 0
 * @buf: userspace buffer to import memory from / export memory to
 *
 * Parameter of %KVM_IMPORT_MEMORY and %KVM_EXPORT_MEMORY, vm ioctls
 * (RFC 4.145, 4.146). 40 bytes. (Since: 0.1.0)
 */
struct kvm_memory_transfer {
    __u64 gfns;
    __u32 nr_gfns;
    __u16 id;
    __u16 flags;
    __u64 reserved;
    struct kvm_transfer_buffer buf;
};

/**
 * kvm_vcpu_transfer:
 * @flags: hardware specific flags
 * @reserved: reserved for future use, must be 0
 * @buf: userspace buffer to import vCPU state from / export it to
 *
 * Parameter of %KVM_IMPORT_VCPU and %KVM_EXPORT_VCPU, vcpu ioctls
 * (RFC 4.147, 4.148). 24 bytes. (Since: 0.1.0)
 */
struct kvm_vcpu_transfer {
    __u32 flags;
    __u32 reserved;
    struct kvm_transfer_buffer buf;
};

/**
 * KVM_MIGRATE_CMD:
 *
 * vm ioctl, struct kvm_migrate_cmd (in/out). Provisional number.
 * (Since: 0.1.0)
 */
# define KVM_MIGRATE_CMD                                                       \
  _IOWR(KVMIO, COCO_KVM_MIGRATE_CMD_NR, struct kvm_migrate_cmd)

/**
 * KVM_IMPORT_MEMORY:
 *
 * vm ioctl, struct kvm_memory_transfer (in/out). Provisional number.
 * (Since: 0.1.0)
 */
# define KVM_IMPORT_MEMORY                                                     \
  _IOWR(KVMIO, COCO_KVM_IMPORT_MEMORY_NR, struct kvm_memory_transfer)

/**
 * KVM_EXPORT_MEMORY:
 *
 * vm ioctl, struct kvm_memory_transfer (in/out). Provisional number.
 * (Since: 0.1.0)
 */
# define KVM_EXPORT_MEMORY                                                     \
  _IOWR(KVMIO, COCO_KVM_EXPORT_MEMORY_NR, struct kvm_memory_transfer)

/**
 * KVM_IMPORT_VCPU:
 *
 * vcpu ioctl, struct kvm_vcpu_transfer (in/out). Provisional number.
 * (Since: 0.1.0)
 */
# define KVM_IMPORT_VCPU                                                       \
  _IOWR(KVMIO, COCO_KVM_IMPORT_VCPU_NR, struct kvm_vcpu_transfer)

/**
 * KVM_EXPORT_VCPU:
 *
 * vcpu ioctl, struct kvm_vcpu_transfer (in/out). Provisional number.
 * (Since: 0.1.0)
 */
# define KVM_EXPORT_VCPU                                                       \
  _IOWR(KVMIO, COCO_KVM_EXPORT_VCPU_NR, struct kvm_vcpu_transfer)
#endif /* KVM_MIGRATE_PREPARE */

/**
 * COCO_KVM_MIGRATE_TOKEN_START:
 *
 * libvirt-coco's reading of the "hardware specific" @flags of
 * %KVM_MIGRATE_TOKEN: emit (source) / consume (destination) the start token
 * that closes the in-order phase. (Since: 0.1.0)
 */
#define COCO_KVM_MIGRATE_TOKEN_START (1U << 0)

/**
 * COCO_KVM_GFN_STATUS_UNKNOWN:
 *
 * Per-page status libvirt-coco reports for every page of a failed memory
 * call when the kernel gave no per-page status (plain RFC form). Firmware
 * per-page statuses are 5-bit, so this never collides. (Since: 0.1.0)
 */
#define COCO_KVM_GFN_STATUS_UNKNOWN 0xff

/**
 * coco_kvm_fw_status:
 * @fw_status: out: the raw firmware completion status of the call (TDX: the
 *             64-bit SEAMCALL status; 0 = success)
 * @gfn_status: in: userspace address of a __u8 array of nr_gfns entries
 *              that receives one firmware status per page (memory ioctls
 *              only; 0 = not wanted; must be 0 for the other ioctls)
 * @flags: must be 0
 * @reserved: must be 0
 *
 * libvirt-coco extension, NOT part of the RFC: a trailer appended after the
 * unchanged RFC structure in the *_ext structures. 24 bytes. (Since: 0.1.0)
 */
struct coco_kvm_fw_status {
    __u64 fw_status;
    __u64 gfn_status;
    __u32 flags;
    __u32 reserved;
};

/**
 * coco_kvm_migrate_cmd_ext:
 * @cmd: the RFC structure, unchanged
 * @ext: the libvirt-coco trailer
 *
 * Extended parameter of %COCO_KVM_MIGRATE_CMD_EXT. 48 bytes. (Since: 0.1.0)
 */
struct coco_kvm_migrate_cmd_ext {
    struct kvm_migrate_cmd cmd;
    struct coco_kvm_fw_status ext;
};

/**
 * coco_kvm_memory_transfer_ext:
 * @xfer: the RFC structure, unchanged
 * @ext: the libvirt-coco trailer
 *
 * Extended parameter of %COCO_KVM_IMPORT_MEMORY_EXT and
 * %COCO_KVM_EXPORT_MEMORY_EXT. 64 bytes. (Since: 0.1.0)
 */
struct coco_kvm_memory_transfer_ext {
    struct kvm_memory_transfer xfer;
    struct coco_kvm_fw_status ext;
};

/**
 * coco_kvm_vcpu_transfer_ext:
 * @xfer: the RFC structure, unchanged
 * @ext: the libvirt-coco trailer
 *
 * Extended parameter of %COCO_KVM_IMPORT_VCPU_EXT and
 * %COCO_KVM_EXPORT_VCPU_EXT. 48 bytes. (Since: 0.1.0)
 */
struct coco_kvm_vcpu_transfer_ext {
    struct kvm_vcpu_transfer xfer;
    struct coco_kvm_fw_status ext;
};

/**
 * COCO_KVM_MIGRATE_CMD_EXT:
 *
 * Same ioctl number as %KVM_MIGRATE_CMD, size of the extended structure.
 * (Since: 0.1.0)
 */
#define COCO_KVM_MIGRATE_CMD_EXT                                               \
 _IOWR(KVMIO, COCO_KVM_MIGRATE_CMD_NR, struct coco_kvm_migrate_cmd_ext)

/**
 * COCO_KVM_IMPORT_MEMORY_EXT:
 *
 * Extended form of %KVM_IMPORT_MEMORY. (Since: 0.1.0)
 */
#define COCO_KVM_IMPORT_MEMORY_EXT                                             \
 _IOWR(KVMIO, COCO_KVM_IMPORT_MEMORY_NR, struct coco_kvm_memory_transfer_ext)

/**
 * COCO_KVM_EXPORT_MEMORY_EXT:
 *
 * Extended form of %KVM_EXPORT_MEMORY. (Since: 0.1.0)
 */
#define COCO_KVM_EXPORT_MEMORY_EXT                                             \
 _IOWR(KVMIO, COCO_KVM_EXPORT_MEMORY_NR, struct coco_kvm_memory_transfer_ext)

/**
 * COCO_KVM_IMPORT_VCPU_EXT:
 *
 * Extended form of %KVM_IMPORT_VCPU. (Since: 0.1.0)
 */
#define COCO_KVM_IMPORT_VCPU_EXT                                               \
 _IOWR(KVMIO, COCO_KVM_IMPORT_VCPU_NR, struct coco_kvm_vcpu_transfer_ext)

/**
 * COCO_KVM_EXPORT_VCPU_EXT:
 *
 * Extended form of %KVM_EXPORT_VCPU. (Since: 0.1.0)
 */
#define COCO_KVM_EXPORT_VCPU_EXT                                               \
 _IOWR(KVMIO, COCO_KVM_EXPORT_VCPU_NR, struct coco_kvm_vcpu_transfer_ext)

/**
 * COCO_KVM_STATIC_ASSERT:
 * @expr: a constant expression
 * @msg: the message when it is false
 *
 * A compile-time check usable from C11 and C++11. (Since: 0.1.0)
 */
#ifdef __cplusplus
# define COCO_KVM_STATIC_ASSERT(expr, msg) static_assert(expr, msg)
#else
# define COCO_KVM_STATIC_ASSERT(expr, msg) _Static_assert(expr, msg)
#endif

/* Layout checks: every size and offset of the RFC and extension structures.
 * A kernel header that defines the RFC ABI with another layout fails here. */
COCO_KVM_STATIC_ASSERT(sizeof(struct kvm_transfer_buffer) == 16, "RFC layout");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_transfer_buffer, address) == 0,
                       "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_transfer_buffer, size) == 8, "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_transfer_buffer, reserved) == 12,
                       "RFC");

COCO_KVM_STATIC_ASSERT(sizeof(struct kvm_migrate_cmd) == 24, "RFC layout");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_migrate_cmd, command) == 0, "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_migrate_cmd, flags) == 2, "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_migrate_cmd, reserved) == 4, "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_migrate_cmd, buf) == 8, "RFC");

COCO_KVM_STATIC_ASSERT(sizeof(struct kvm_memory_transfer) == 40, "RFC layout");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_memory_transfer, gfns) == 0, "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_memory_transfer, nr_gfns) == 8,
                       "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_memory_transfer, id) == 12, "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_memory_transfer, flags) == 14,
                       "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_memory_transfer, reserved) == 16,
                       "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_memory_transfer, buf) == 24, "RFC");

COCO_KVM_STATIC_ASSERT(sizeof(struct kvm_vcpu_transfer) == 24, "RFC layout");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_vcpu_transfer, flags) == 0, "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_vcpu_transfer, reserved) == 4,
                       "RFC");
COCO_KVM_STATIC_ASSERT(offsetof(struct kvm_vcpu_transfer, buf) == 8, "RFC");

COCO_KVM_STATIC_ASSERT(sizeof(struct coco_kvm_fw_status) == 24, "ext layout");
COCO_KVM_STATIC_ASSERT(offsetof(struct coco_kvm_fw_status, fw_status) == 0,
                       "ext");
COCO_KVM_STATIC_ASSERT(offsetof(struct coco_kvm_fw_status, gfn_status) == 8,
                       "ext");
COCO_KVM_STATIC_ASSERT(offsetof(struct coco_kvm_fw_status, flags) == 16, "ext");
COCO_KVM_STATIC_ASSERT(offsetof(struct coco_kvm_fw_status, reserved) == 20,
                       "ext");

COCO_KVM_STATIC_ASSERT(sizeof(struct coco_kvm_migrate_cmd_ext) == 48,
                       "ext layout");
COCO_KVM_STATIC_ASSERT(offsetof(struct coco_kvm_migrate_cmd_ext, cmd) == 0,
                       "ext");
COCO_KVM_STATIC_ASSERT(offsetof(struct coco_kvm_migrate_cmd_ext, ext) == 24,
                       "ext");
COCO_KVM_STATIC_ASSERT(sizeof(struct coco_kvm_memory_transfer_ext) == 64,
                       "ext");
COCO_KVM_STATIC_ASSERT(offsetof(struct coco_kvm_memory_transfer_ext, xfer) == 0,
                       "ext");
COCO_KVM_STATIC_ASSERT(offsetof(struct coco_kvm_memory_transfer_ext, ext) == 40,
                       "ext");
COCO_KVM_STATIC_ASSERT(sizeof(struct coco_kvm_vcpu_transfer_ext) == 48,
                       "ext layout");
COCO_KVM_STATIC_ASSERT(offsetof(struct coco_kvm_vcpu_transfer_ext, xfer) == 0,
                       "ext");
COCO_KVM_STATIC_ASSERT(offsetof(struct coco_kvm_vcpu_transfer_ext, ext) == 24,
                       "ext");

COCO_KVM_STATIC_ASSERT(KVMIO == 0xAE, "KVM ioctl type");
COCO_KVM_STATIC_ASSERT(COCO_KVM_MIGRATE_CMD_NR >= 0 &&
                           COCO_KVM_MIGRATE_CMD_NR <= 0xff,
                       "ioctl nr is one byte");
COCO_KVM_STATIC_ASSERT(COCO_KVM_IMPORT_MEMORY_NR >= 0 &&
                           COCO_KVM_IMPORT_MEMORY_NR <= 0xff,
                       "ioctl nr is one byte");
COCO_KVM_STATIC_ASSERT(COCO_KVM_EXPORT_MEMORY_NR >= 0 &&
                           COCO_KVM_EXPORT_MEMORY_NR <= 0xff,
                       "ioctl nr is one byte");
COCO_KVM_STATIC_ASSERT(COCO_KVM_IMPORT_VCPU_NR >= 0 &&
                           COCO_KVM_IMPORT_VCPU_NR <= 0xff,
                       "ioctl nr is one byte");
COCO_KVM_STATIC_ASSERT(COCO_KVM_EXPORT_VCPU_NR >= 0 &&
                           COCO_KVM_EXPORT_VCPU_NR <= 0xff,
                       "ioctl nr is one byte");
