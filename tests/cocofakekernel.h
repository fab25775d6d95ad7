/*
 * cocofakekernel.h: a fake KVM that implements the RFC migration ioctls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * An ioctl function (CocoKvmOps) for the kvm firmware backend that models
 * one VM with its vCPU fds, KVM_CHECK_EXTENSION, the sub-command order per
 * role (research/coco.md §2.1-2.6, §3), EINTR/EAGAIN, short buffers that
 * report the size needed, and a fault-injection table. Bundles are opaque
 * blobs with a 48-byte header (no cryptography): a source fake's output can
 * be fed to a destination fake, which checks type, stream counters and
 * epochs like the firmware would.
 */

#pragma once

#include "internal.h"
#include "firmware/cocofirmware.h"
#include "firmware/cocokvm.h"

typedef enum {
    COCO_FAKE_STATE_IDLE = 0, /* source runnable / destination created */
    COCO_FAKE_STATE_PREPARED, /* session keys installed */
    COCO_FAKE_STATE_LIVE_EXPORT,
    COCO_FAKE_STATE_PAUSED_EXPORT,
    COCO_FAKE_STATE_POST_EXPORT, /* start token emitted */
    COCO_FAKE_STATE_FINISHED, /* source: session over, never runs again */
    COCO_FAKE_STATE_MEMORY_IMPORT,
    COCO_FAKE_STATE_POST_IMPORT, /* start token consumed */
    COCO_FAKE_STATE_COMMITTED, /* destination may run */
    COCO_FAKE_STATE_FAILED_IMPORT, /* destination: teardown only */
    COCO_FAKE_STATE_LAST
} CocoFakeState;
COCO_ENUM_DECL(cocoFakeState);

/* Firmware statuses the fake reports (TDX_OP_STATE_INCORRECT is the TDX
 * module's; the others are the fake's own). */
#define COCO_FAKE_FW_OP_STATE_INCORRECT 0xC000060800000000ULL
#define COCO_FAKE_FW_BUSY 0x8000020000000000ULL
#define COCO_FAKE_FW_BAD_BUNDLE 0xC0000C0000000001ULL
#define COCO_FAKE_FW_BAD_COUNTER 0xC0000C0000000002ULL
#define COCO_FAKE_FW_ALREADY 0xC0000C0000000003ULL
#define COCO_FAKE_FW_PAGE_STATE 0x0000000000000004ULL /* per page */

/* Sizes of the fake's bundles. */
#define COCO_FAKE_HDR_SIZE 48
#define COCO_FAKE_PREPARE_SIZE 64
#define COCO_FAKE_SETUP_SIZE (COCO_FAKE_HDR_SIZE + 3 * 4096)
#define COCO_FAKE_TOKEN_SIZE COCO_FAKE_HDR_SIZE
#define COCO_FAKE_VCPU0_SIZE (COCO_FAKE_HDR_SIZE + 4 * 4096)
#define COCO_FAKE_VCPU_SIZE (COCO_FAKE_HDR_SIZE + 2 * 4096)
#define COCO_FAKE_MEM_SIZE(n)                                                  \
 (COCO_FAKE_HDR_SIZE + (size_t)(n) * (8 + 16 + 4096))

/* Any ioctl / any sub-command in a fault. */
#define COCO_FAKE_ANY -1
/* The fault's ioctl: KVM_CHECK_EXTENSION. */
#define COCO_FAKE_CHECK_EXTENSION ((int)COCO_KVM_IOCTL_LAST)

typedef struct {
    int which; /* CocoKvmIoctl, COCO_FAKE_CHECK_EXTENSION or COCO_FAKE_ANY */
    int cmd; /* CocoMigrateCmd for MIGRATE_CMD, or COCO_FAKE_ANY */
    unsigned int skip; /* let this many matching calls pass first */
    unsigned int count; /* then fail this many */
    int err; /* the negative errno */
    uint64_t fw_status; /* reported through the extension */
} CocoFakeFault;

typedef struct _CocoFakeKernel CocoFakeKernel;

/* A VM of @role with @nvcpus vCPUs; the kernel's ioctl numbers are @cfg's
 * (NULL: the built-in defaults). Capability and extension present. */
CocoFakeKernel *cocoFakeKernelNew(CocoFirmwareRole role, unsigned int nvcpus,
                                  const CocoKvmConfig *cfg);
void cocoFakeKernelFree(CocoFakeKernel *k);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoFakeKernel, cocoFakeKernelFree)

/* The ops to hand to cocoKvmFirmwareNew(). */
const CocoKvmOps *cocoFakeKernelOps(CocoFakeKernel *k);

int cocoFakeKernelVmFd(CocoFakeKernel *k);
int cocoFakeKernelVcpuFd(CocoFakeKernel *k, unsigned int vcpu);
/* An fd number the fake does not know (a closed fd). */
int cocoFakeKernelBadFd(CocoFakeKernel *k);

void cocoFakeKernelSetCaps(CocoFakeKernel *k, bool migration, bool fw_status);
/* PREPARE answers -EAGAIN @polls times before the keys are installed. */
void cocoFakeKernelSetNotReady(CocoFakeKernel *k, unsigned int polls);
void cocoFakeKernelSetVcpusRunning(CocoFakeKernel *k, bool running);
/* The errno of a short buffer: -E2BIG (default), -EINVAL or -ENOSPC; the
 * size needed is always written back into buf.size. */
void cocoFakeKernelSetShortErrno(CocoFakeKernel *k, int err);
void cocoFakeKernelAddFault(CocoFakeKernel *k, const CocoFakeFault *fault);

CocoFakeState cocoFakeKernelState(CocoFakeKernel *k);
/* ioctls that reached the fake for @which (COCO_FAKE_ANY: all). */
unsigned int cocoFakeKernelCalls(CocoFakeKernel *k, int which);
/* Back-off sleeps requested through the ops, and their total. */
unsigned int cocoFakeKernelSleeps(CocoFakeKernel *k);
unsigned long long cocoFakeKernelSleptUs(CocoFakeKernel *k);
/* The request and argument bytes of the last ioctl. */
unsigned long cocoFakeKernelLastRequest(CocoFakeKernel *k);
/* Whether every re-issue after EINTR/EAGAIN repeated identical bytes. */
bool cocoFakeKernelRetriesIdentical(CocoFakeKernel *k);
