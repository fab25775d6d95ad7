/*
 * cocofakekernel.c: a fake KVM that implements the RFC migration ioctls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "cocofakekernel.h"
#include "firmware/cocokvmuapi.h"

#include <errno.h>

COCO_ENUM_IMPL(cocoFakeState, COCO_FAKE_STATE_LAST, "idle", "prepared",
               "live-export", "paused-export", "post-export", "finished",
               "memory-import", "post-import", "committed", "failed-import");

#define COCO_FAKE_MAGIC 0x4f434f43U /* "COCO" */
#define COCO_FAKE_VM_FD 1000
#define COCO_FAKE_BAD_FD 999
#define COCO_FAKE_STREAMS 8

/* The fake's bundle header, 48 bytes like a TDX MBMD. */
typedef struct {
    uint32_t magic;
    uint8_t type; /* 0 immutable, 2 vCPU, 16 memory, 32 epoch, 33 abort */
    uint8_t start; /* epoch token: the start token */
    uint16_t stream;
    uint32_t counter; /* per-stream bundle counter */
    uint32_t epoch;
    uint32_t index; /* vCPU index */
    uint32_t nr; /* pages */
    uint8_t pad[24];
} CocoFakeHdr;
G_STATIC_ASSERT(sizeof(CocoFakeHdr) == COCO_FAKE_HDR_SIZE);

enum {
    COCO_FAKE_TYPE_IMMUTABLE = 0,
    COCO_FAKE_TYPE_VCPU = 2,
    COCO_FAKE_TYPE_MEMORY = 16,
    COCO_FAKE_TYPE_EPOCH = 32,
    COCO_FAKE_TYPE_ABORT = 33,
};

struct _CocoFakeKernel {
    CocoKvmConfig cfg;
    CocoKvmOps ops;
    CocoFirmwareRole role;
    unsigned int nvcpus;
    CocoFakeState state;
    bool cap_migration;
    bool cap_fw_status;
    unsigned int not_ready;
    bool vcpus_running;
    int short_errno;
    GArray *faults; /* CocoFakeFault, count decremented as they fire */
    bool *vcpu_done; /* exported (source) / imported (destination) */
    uint32_t epoch;
    uint32_t counter[COCO_FAKE_STREAMS]; /* source: last sent; dest: seen */
    GHashTable *exported; /* gfn -> epoch + 1 */
    unsigned int calls[COCO_KVM_IOCTL_LAST + 1];
    unsigned int sleeps;
    unsigned long long slept_us;
    unsigned long last_request;
    unsigned char retry_bytes[64];
    size_t retry_len;
    unsigned long retry_request;
    bool retry_pending;
    bool retries_identical;
};

static int
cocoFakeFail(struct coco_kvm_fw_status *ext, int err, uint64_t fw)
{
    if (ext)
        ext->fw_status = fw;
    return err;
}

/* A short output buffer: report the size needed in buf.size. */
static int
cocoFakeShort(CocoFakeKernel *k, struct kvm_transfer_buffer *tb, size_t needed)
{
    tb->size = needed;
    return k->short_errno;
}

static bool
cocoFakeHdrValid(const struct kvm_transfer_buffer *tb, uint8_t type)
{
    const CocoFakeHdr *h = (const CocoFakeHdr *)(uintptr_t)tb->address;

    return tb->size >= sizeof(*h) && h->magic == COCO_FAKE_MAGIC &&
           h->type == type;
}

static CocoFakeHdr *
cocoFakeHdrWrite(struct kvm_transfer_buffer *tb, uint8_t type, size_t size)
{
    CocoFakeHdr *h = (CocoFakeHdr *)(uintptr_t)tb->address;

    memset(h, 0, size);
    h->magic = COCO_FAKE_MAGIC;
    h->type = type;
    tb->size = size;
    return h;
}

static int
cocoFakeStateError(struct coco_kvm_fw_status *ext)
{
    return cocoFakeFail(ext, -EPERM, COCO_FAKE_FW_OP_STATE_INCORRECT);
}

static int
cocoFakeMigrateCmd(CocoFakeKernel *k, struct kvm_migrate_cmd *c,
                   struct coco_kvm_fw_status *ext)
{
    struct kvm_transfer_buffer *tb = &c->buf;
    bool src = k->role == COCO_FIRMWARE_ROLE_SOURCE;
    CocoFakeHdr *h;
    unsigned int i;

    switch (c->command) {
    case KVM_MIGRATE_PREPARE:
        if (k->state != COCO_FAKE_STATE_IDLE)
            return cocoFakeStateError(ext);
        if (tb->size < COCO_FAKE_PREPARE_SIZE)
            return cocoFakeShort(k, tb, COCO_FAKE_PREPARE_SIZE);
        if (k->not_ready > 0) {
            k->not_ready--;
            return cocoFakeFail(ext, -EAGAIN, COCO_FAKE_FW_BUSY);
        }
        memset((void *)(uintptr_t)tb->address, 0xa5, COCO_FAKE_PREPARE_SIZE);
        tb->size = COCO_FAKE_PREPARE_SIZE;
        k->state = COCO_FAKE_STATE_PREPARED;
        return 0;

    case KVM_MIGRATE_SETUP:
        if (k->state != COCO_FAKE_STATE_PREPARED)
            return cocoFakeStateError(ext);
        if (src) {
            if (tb->size < COCO_FAKE_SETUP_SIZE)
                return cocoFakeShort(k, tb, COCO_FAKE_SETUP_SIZE);
            cocoFakeHdrWrite(tb, COCO_FAKE_TYPE_IMMUTABLE,
                             COCO_FAKE_SETUP_SIZE);
            k->state = COCO_FAKE_STATE_LIVE_EXPORT;
        } else {
            if (!cocoFakeHdrValid(tb, COCO_FAKE_TYPE_IMMUTABLE)) {
                k->state = COCO_FAKE_STATE_FAILED_IMPORT;
                return cocoFakeFail(ext, -EBADMSG, COCO_FAKE_FW_BAD_BUNDLE);
            }
            k->state = COCO_FAKE_STATE_MEMORY_IMPORT;
        }
        k->epoch = 0;
        memset(k->counter, 0, sizeof(k->counter));
        g_hash_table_remove_all(k->exported);
        return 0;

    case KVM_MIGRATE_TOKEN:
        if (c->flags & ~COCO_KVM_MIGRATE_TOKEN_START)
            return cocoFakeFail(ext, -EINVAL, 0);
        if (src) {
            bool start = c->flags & COCO_KVM_MIGRATE_TOKEN_START;

            if (k->state != COCO_FAKE_STATE_LIVE_EXPORT &&
                k->state != COCO_FAKE_STATE_PAUSED_EXPORT)
                return cocoFakeStateError(ext);
            if (start && k->state != COCO_FAKE_STATE_PAUSED_EXPORT)
                return cocoFakeStateError(ext);
            if (tb->size < COCO_FAKE_TOKEN_SIZE)
                return cocoFakeShort(k, tb, COCO_FAKE_TOKEN_SIZE);
            h = cocoFakeHdrWrite(tb, COCO_FAKE_TYPE_EPOCH,
                                 COCO_FAKE_TOKEN_SIZE);
            h->start = start;
            h->epoch = start ? G_MAXUINT32 : ++k->epoch;
            if (start)
                k->state = COCO_FAKE_STATE_POST_EXPORT;
        } else {
            const CocoFakeHdr *in = (const CocoFakeHdr *)(uintptr_t)tb->address;

            if (k->state != COCO_FAKE_STATE_MEMORY_IMPORT)
                return cocoFakeStateError(ext);
            if (!cocoFakeHdrValid(tb, COCO_FAKE_TYPE_EPOCH) ||
                (bool)in->start !=
                    (bool)(c->flags & COCO_KVM_MIGRATE_TOKEN_START)) {
                k->state = COCO_FAKE_STATE_FAILED_IMPORT;
                return cocoFakeFail(ext, -EBADMSG, COCO_FAKE_FW_BAD_BUNDLE);
            }
            if (in->start) {
                for (i = 0; i < k->nvcpus; i++) {
                    if (!k->vcpu_done[i]) {
                        k->state = COCO_FAKE_STATE_FAILED_IMPORT;
                        return cocoFakeStateError(ext);
                    }
                }
                k->state = COCO_FAKE_STATE_POST_IMPORT;
            } else {
                if (in->epoch <= k->epoch) {
                    k->state = COCO_FAKE_STATE_FAILED_IMPORT;
                    return cocoFakeFail(ext, -EPROTO, COCO_FAKE_FW_BAD_COUNTER);
                }
                k->epoch = in->epoch;
            }
        }
        return 0;

    case KVM_MIGRATE_SOURCE_BLACKOUT:
        if (tb->size != 0 || tb->address != 0)
            return cocoFakeFail(ext, -EINVAL, 0);
        if (!src || k->state != COCO_FAKE_STATE_LIVE_EXPORT)
            return cocoFakeStateError(ext);
        if (k->vcpus_running)
            return cocoFakeFail(ext, -EBUSY, COCO_FAKE_FW_BUSY);
        k->state = COCO_FAKE_STATE_PAUSED_EXPORT;
        return 0;

    case KVM_MIGRATE_ABORT:
        if (src) {
            switch (k->state) {
            case COCO_FAKE_STATE_PREPARED:
            case COCO_FAKE_STATE_LIVE_EXPORT:
            case COCO_FAKE_STATE_PAUSED_EXPORT:
                if (tb->size != 0)
                    return cocoFakeFail(ext, -EINVAL, 0);
                break;
            case COCO_FAKE_STATE_POST_EXPORT:
                /* Only the destination's abort token lets the source run. */
                if (tb->size == 0)
                    return cocoFakeStateError(ext);
                if (!cocoFakeHdrValid(tb, COCO_FAKE_TYPE_ABORT))
                    return cocoFakeFail(ext, -EBADMSG, COCO_FAKE_FW_BAD_BUNDLE);
                break;
            case COCO_FAKE_STATE_IDLE:
            case COCO_FAKE_STATE_FINISHED:
            case COCO_FAKE_STATE_MEMORY_IMPORT:
            case COCO_FAKE_STATE_POST_IMPORT:
            case COCO_FAKE_STATE_COMMITTED:
            case COCO_FAKE_STATE_FAILED_IMPORT:
            case COCO_FAKE_STATE_LAST:
            default:
                return cocoFakeStateError(ext);
            }
            k->state = COCO_FAKE_STATE_IDLE;
            memset(k->vcpu_done, 0, sizeof(bool) * k->nvcpus);
            return 0;
        }
        switch (k->state) {
        case COCO_FAKE_STATE_PREPARED:
        case COCO_FAKE_STATE_MEMORY_IMPORT:
        case COCO_FAKE_STATE_POST_IMPORT:
        case COCO_FAKE_STATE_FAILED_IMPORT:
            break;
        case COCO_FAKE_STATE_IDLE:
        case COCO_FAKE_STATE_LIVE_EXPORT:
        case COCO_FAKE_STATE_PAUSED_EXPORT:
        case COCO_FAKE_STATE_POST_EXPORT:
        case COCO_FAKE_STATE_FINISHED:
        case COCO_FAKE_STATE_COMMITTED:
        case COCO_FAKE_STATE_LAST:
        default:
            return cocoFakeStateError(ext);
        }
        if (tb->size < COCO_FAKE_TOKEN_SIZE)
            return cocoFakeShort(k, tb, COCO_FAKE_TOKEN_SIZE);
        cocoFakeHdrWrite(tb, COCO_FAKE_TYPE_ABORT, COCO_FAKE_TOKEN_SIZE);
        k->state = COCO_FAKE_STATE_FAILED_IMPORT;
        return 0;

    case KVM_MIGRATE_FINISH:
        if (tb->size != 0)
            return cocoFakeFail(ext, -EINVAL, 0);
        if (src && k->state == COCO_FAKE_STATE_POST_EXPORT)
            k->state = COCO_FAKE_STATE_FINISHED;
        else if (!src && k->state == COCO_FAKE_STATE_POST_IMPORT)
            k->state = COCO_FAKE_STATE_COMMITTED;
        else
            return cocoFakeStateError(ext);
        return 0;

    default:
        return cocoFakeFail(ext, -EINVAL, 0);
    }
}

static int
cocoFakeExportMemory(CocoFakeKernel *k, struct kvm_memory_transfer *x,
                     struct coco_kvm_fw_status *ext)
{
    const uint64_t *gfns = (const uint64_t *)(uintptr_t)x->gfns;
    uint8_t *st = ext ? (uint8_t *)(uintptr_t)ext->gfn_status : NULL;
    unsigned int bad = 0;
    CocoFakeHdr *h;
    uint32_t i;

    if (k->role != COCO_FIRMWARE_ROLE_SOURCE ||
        (k->state != COCO_FAKE_STATE_LIVE_EXPORT &&
         k->state != COCO_FAKE_STATE_PAUSED_EXPORT &&
         k->state != COCO_FAKE_STATE_POST_EXPORT))
        return cocoFakeStateError(ext);
    if (x->nr_gfns == 0 || x->nr_gfns > 512 || x->id >= COCO_FAKE_STREAMS)
        return cocoFakeFail(ext, -EINVAL, 0);
    if (!gfns)
        return -EFAULT;
    if (x->buf.size < COCO_FAKE_MEM_SIZE(x->nr_gfns))
        return cocoFakeShort(k, &x->buf, COCO_FAKE_MEM_SIZE(x->nr_gfns));

    /* A page may go once per epoch (the destination would refuse the
     * second copy), so the fake refuses it per page, as TDX does. */
    for (i = 0; i < x->nr_gfns; i++) {
        gpointer key = GSIZE_TO_POINTER(gfns[i]);

        if (GPOINTER_TO_UINT(g_hash_table_lookup(k->exported, key)) ==
            k->epoch + 1)
            bad++;
    }
    /* Without the per-page extension the caller could not tell which page
     * failed; the plain RFC form fails the whole call, changing nothing. */
    if (bad && !ext)
        return -EPERM;
    for (i = 0; i < x->nr_gfns; i++) {
        gpointer key = GSIZE_TO_POINTER(gfns[i]);
        bool ok = GPOINTER_TO_UINT(g_hash_table_lookup(k->exported, key)) !=
                  k->epoch + 1;

        g_hash_table_insert(k->exported, key, GUINT_TO_POINTER(k->epoch + 1));
        if (st)
            st[i] = ok ? 0 : COCO_FAKE_FW_PAGE_STATE;
    }

    h = cocoFakeHdrWrite(&x->buf, COCO_FAKE_TYPE_MEMORY,
                         COCO_FAKE_MEM_SIZE(x->nr_gfns));
    h->stream = x->id;
    h->counter = ++k->counter[x->id];
    h->epoch = k->epoch;
    h->nr = x->nr_gfns;
    if (ext)
        ext->fw_status = bad ? COCO_FAKE_FW_PAGE_STATE : 0;
    return 0;
}

static int
cocoFakeImportMemory(CocoFakeKernel *k, struct kvm_memory_transfer *x,
                     struct coco_kvm_fw_status *ext)
{
    const CocoFakeHdr *h = (const CocoFakeHdr *)(uintptr_t)x->buf.address;
    bool in_order = k->state == COCO_FAKE_STATE_MEMORY_IMPORT;

    if (k->role != COCO_FIRMWARE_ROLE_DESTINATION ||
        (k->state != COCO_FAKE_STATE_MEMORY_IMPORT &&
         k->state != COCO_FAKE_STATE_POST_IMPORT &&
         k->state != COCO_FAKE_STATE_COMMITTED))
        return cocoFakeStateError(ext);
    if (x->id >= COCO_FAKE_STREAMS || x->nr_gfns > 512)
        return cocoFakeFail(ext, -EINVAL, 0);
    if (!cocoFakeHdrValid(&x->buf, COCO_FAKE_TYPE_MEMORY) ||
        x->buf.size != COCO_FAKE_MEM_SIZE(h->nr) || h->stream != x->id) {
        if (in_order)
            k->state = COCO_FAKE_STATE_FAILED_IMPORT;
        return cocoFakeFail(ext, -EBADMSG, COCO_FAKE_FW_BAD_BUNDLE);
    }
    /* Replay, drop or reorder within the stream. */
    if (h->counter != k->counter[x->id] + 1 || h->epoch != k->epoch) {
        if (in_order)
            k->state = COCO_FAKE_STATE_FAILED_IMPORT;
        return cocoFakeFail(ext, -EPROTO, COCO_FAKE_FW_BAD_COUNTER);
    }
    k->counter[x->id]++;
    return 0;
}

static int
cocoFakeVcpu(CocoFakeKernel *k, bool export, unsigned int vcpu,
             struct kvm_vcpu_transfer *v, struct coco_kvm_fw_status *ext)
{
    size_t size = vcpu == 0 ? COCO_FAKE_VCPU0_SIZE : COCO_FAKE_VCPU_SIZE;
    CocoFakeHdr *h;

    if (v->flags != 0)
        return cocoFakeFail(ext, -EINVAL, 0);
    if (export) {
        if (k->role != COCO_FIRMWARE_ROLE_SOURCE ||
            k->state != COCO_FAKE_STATE_PAUSED_EXPORT)
            return cocoFakeStateError(ext);
        if (k->vcpu_done[vcpu])
            return cocoFakeFail(ext, -EEXIST, COCO_FAKE_FW_ALREADY);
        if (v->buf.size < size)
            return cocoFakeShort(k, &v->buf, size);
        h = cocoFakeHdrWrite(&v->buf, COCO_FAKE_TYPE_VCPU, size);
        h->index = vcpu;
        k->vcpu_done[vcpu] = true;
        return 0;
    }

    if (k->role != COCO_FIRMWARE_ROLE_DESTINATION ||
        k->state != COCO_FAKE_STATE_MEMORY_IMPORT)
        return cocoFakeStateError(ext);
    /* vCPU 0 carries the VM-scope state, which must come first. */
    if (vcpu != 0 && !k->vcpu_done[0])
        return cocoFakeStateError(ext);
    if (k->vcpu_done[vcpu])
        return cocoFakeFail(ext, -EEXIST, COCO_FAKE_FW_ALREADY);
    h = (CocoFakeHdr *)(uintptr_t)v->buf.address;
    if (!cocoFakeHdrValid(&v->buf, COCO_FAKE_TYPE_VCPU) ||
        v->buf.size != size || h->index != vcpu) {
        k->state = COCO_FAKE_STATE_FAILED_IMPORT;
        return cocoFakeFail(ext, -EBADMSG, COCO_FAKE_FW_BAD_BUNDLE);
    }
    k->vcpu_done[vcpu] = true;
    return 0;
}

/* The fault that fires for this call, if any. */
static const CocoFakeFault *
cocoFakeFault(CocoFakeKernel *k, int which, int cmd)
{
    guint i;

    for (i = 0; i < k->faults->len; i++) {
        CocoFakeFault *f = &g_array_index(k->faults, CocoFakeFault, i);

        if ((f->which != COCO_FAKE_ANY && f->which != which) ||
            (f->cmd != COCO_FAKE_ANY && f->cmd != cmd) || f->count == 0)
            continue;
        if (f->skip > 0) {
            f->skip--;
            continue;
        }
        f->count--;
        return f;
    }
    return NULL;
}

/* Decode @request against the kernel's numbers: the ioctl and whether the
 * extended structure was passed, or -1. */
static int
cocoFakeDecode(CocoFakeKernel *k, unsigned long request, bool *ext)
{
    unsigned int i;

    for (i = 0; i < COCO_KVM_IOCTL_LAST; i++) {
        if (request == cocoKvmConfigRequest(&k->cfg, i, false)) {
            *ext = false;
            return i;
        }
        if (k->cap_fw_status &&
            request == cocoKvmConfigRequest(&k->cfg, i, true)) {
            *ext = true;
            return i;
        }
    }
    return -1;
}

static int
cocoFakeDispatch(CocoFakeKernel *k, int fd, unsigned long request, void *arg)
{
    bool is_vm = fd == COCO_FAKE_VM_FD;
    bool is_vcpu =
        fd > COCO_FAKE_VM_FD && fd <= COCO_FAKE_VM_FD + (int)k->nvcpus;
    struct kvm_transfer_buffer *tb = NULL;
    struct coco_kvm_fw_status *ext = NULL;
    const CocoFakeFault *fault;
    bool has_ext = false;
    size_t rfcsize = 0;
    int cmd = COCO_FAKE_ANY;
    int which;

    if (!is_vm && !is_vcpu)
        return -EBADF;

    if (request == KVM_CHECK_EXTENSION) {
        unsigned long cap = (uintptr_t)arg;

        k->calls[COCO_FAKE_CHECK_EXTENSION]++;
        if (!is_vm)
            return -EINVAL;
        if ((fault = cocoFakeFault(k, COCO_FAKE_CHECK_EXTENSION, cmd)))
            return fault->err;
        if (cap == k->cfg.cap_migration)
            return k->cap_migration ? 1 : 0;
        if (cap == k->cfg.cap_fw_status)
            return k->cap_migration && k->cap_fw_status ? 1 : 0;
        return 0;
    }

    /* Unknown ioctls: KVM answers -ENOTTY on a VM fd, -EINVAL on a vCPU
     * fd; a kernel without the capability knows none of these. */
    which = k->cap_migration ? cocoFakeDecode(k, request, &has_ext) : -1;
    if (which < 0)
        return is_vm ? -ENOTTY : -EINVAL;
    k->calls[which]++;
    switch ((CocoKvmIoctl)which) {
    case COCO_KVM_IOCTL_MIGRATE_CMD:
    case COCO_KVM_IOCTL_IMPORT_MEMORY:
    case COCO_KVM_IOCTL_EXPORT_MEMORY:
        if (!is_vm)
            return -EINVAL;
        break;
    case COCO_KVM_IOCTL_IMPORT_VCPU:
    case COCO_KVM_IOCTL_EXPORT_VCPU:
        if (!is_vcpu)
            return -ENOTTY;
        break;
    case COCO_KVM_IOCTL_LAST:
    default:
        return -ENOTTY;
    }
    if (!arg)
        return -EFAULT;

    switch ((CocoKvmIoctl)which) {
    case COCO_KVM_IOCTL_MIGRATE_CMD: {
        struct kvm_migrate_cmd *c = arg;

        rfcsize = sizeof(*c);
        tb = &c->buf;
        cmd = c->command;
        if (c->reserved)
            return -EINVAL;
        break;
    }
    case COCO_KVM_IOCTL_IMPORT_MEMORY:
    case COCO_KVM_IOCTL_EXPORT_MEMORY: {
        struct kvm_memory_transfer *x = arg;

        rfcsize = sizeof(*x);
        tb = &x->buf;
        if (x->reserved)
            return -EINVAL;
        break;
    }
    case COCO_KVM_IOCTL_IMPORT_VCPU:
    case COCO_KVM_IOCTL_EXPORT_VCPU: {
        struct kvm_vcpu_transfer *v = arg;

        rfcsize = sizeof(*v);
        tb = &v->buf;
        if (v->reserved)
            return -EINVAL;
        break;
    }
    case COCO_KVM_IOCTL_LAST:
    default:
        return -ENOTTY;
    }
    if (has_ext) {
        ext = (struct coco_kvm_fw_status *)(void *)((char *)arg + rfcsize);
        if (ext->flags || ext->reserved ||
            (ext->gfn_status && which != COCO_KVM_IOCTL_EXPORT_MEMORY &&
             which != COCO_KVM_IOCTL_IMPORT_MEMORY))
            return -EINVAL;
        ext->fw_status = 0;
    }
    if (tb->reserved)
        return cocoFakeFail(ext, -EINVAL, 0);
    if (tb->size && !tb->address)
        return cocoFakeFail(ext, -EFAULT, 0);

    if ((fault = cocoFakeFault(k, which, cmd)))
        return cocoFakeFail(ext, fault->err, fault->fw_status);

    switch ((CocoKvmIoctl)which) {
    case COCO_KVM_IOCTL_MIGRATE_CMD:
        return cocoFakeMigrateCmd(k, arg, ext);
    case COCO_KVM_IOCTL_EXPORT_MEMORY:
        return cocoFakeExportMemory(k, arg, ext);
    case COCO_KVM_IOCTL_IMPORT_MEMORY:
        return cocoFakeImportMemory(k, arg, ext);
    case COCO_KVM_IOCTL_EXPORT_VCPU:
        return cocoFakeVcpu(k, true, fd - COCO_FAKE_VM_FD - 1, arg, ext);
    case COCO_KVM_IOCTL_IMPORT_VCPU:
        return cocoFakeVcpu(k, false, fd - COCO_FAKE_VM_FD - 1, arg, ext);
    case COCO_KVM_IOCTL_LAST:
    default:
        return -ENOTTY;
    }
}

static int
cocoFakeIoctl(void *opaque, int fd, unsigned long request, void *arg)
{
    CocoFakeKernel *k = opaque;
    size_t len = 0;
    int ret;

    k->last_request = request;
    if (request != KVM_CHECK_EXTENSION && arg)
        len = MIN(_IOC_SIZE(request), sizeof(k->retry_bytes));

    if (k->retry_pending && request == k->retry_request &&
        (len != k->retry_len || memcmp(arg, k->retry_bytes, len) != 0))
        k->retries_identical = false;
    k->retry_pending = false;
    if (len) {
        memcpy(k->retry_bytes, arg, len);
        k->retry_len = len;
        k->retry_request = request;
    }

    ret = cocoFakeDispatch(k, fd, request, arg);
    if (len && (ret == -EINTR || ret == -EAGAIN))
        k->retry_pending = true;
    return ret;
}

static void
cocoFakeSleep(void *opaque, unsigned int usec)
{
    CocoFakeKernel *k = opaque;

    k->sleeps++;
    k->slept_us += usec;
}

CocoFakeKernel *
cocoFakeKernelNew(CocoFirmwareRole role, unsigned int nvcpus,
                  const CocoKvmConfig *cfg)
{
    CocoFakeKernel *k = g_new0(CocoFakeKernel, 1);

    if (cfg)
        k->cfg = *cfg;
    else
        cocoKvmConfigInit(&k->cfg);
    k->ops.ioctl = cocoFakeIoctl;
    k->ops.sleep = cocoFakeSleep;
    k->ops.opaque = k;
    k->role = role;
    k->nvcpus = nvcpus;
    k->state = COCO_FAKE_STATE_IDLE;
    k->cap_migration = true;
    k->cap_fw_status = true;
    k->short_errno = -E2BIG;
    k->faults = g_array_new(FALSE, TRUE, sizeof(CocoFakeFault));
    k->vcpu_done = g_new0(bool, MAX(nvcpus, 1));
    k->exported = g_hash_table_new(g_direct_hash, g_direct_equal);
    k->retries_identical = true;
    return k;
}

void
cocoFakeKernelFree(CocoFakeKernel *k)
{
    if (!k)
        return;
    g_array_unref(k->faults);
    g_hash_table_unref(k->exported);
    g_free(k->vcpu_done);
    g_free(k);
}

const CocoKvmOps *
cocoFakeKernelOps(CocoFakeKernel *k)
{
    return &k->ops;
}

int
cocoFakeKernelVmFd(CocoFakeKernel *k G_GNUC_UNUSED)
{
    return COCO_FAKE_VM_FD;
}

int
cocoFakeKernelVcpuFd(CocoFakeKernel *k G_GNUC_UNUSED, unsigned int vcpu)
{
    return COCO_FAKE_VM_FD + 1 + (int)vcpu;
}

int
cocoFakeKernelBadFd(CocoFakeKernel *k G_GNUC_UNUSED)
{
    return COCO_FAKE_BAD_FD;
}

void
cocoFakeKernelSetCaps(CocoFakeKernel *k, bool migration, bool fw_status)
{
    k->cap_migration = migration;
    k->cap_fw_status = fw_status;
}

void
cocoFakeKernelSetNotReady(CocoFakeKernel *k, unsigned int polls)
{
    k->not_ready = polls;
}

void
cocoFakeKernelSetVcpusRunning(CocoFakeKernel *k, bool running)
{
    k->vcpus_running = running;
}

void
cocoFakeKernelSetShortErrno(CocoFakeKernel *k, int err)
{
    k->short_errno = err;
}

void
cocoFakeKernelAddFault(CocoFakeKernel *k, const CocoFakeFault *fault)
{
    g_array_append_val(k->faults, *fault);
}

CocoFakeState
cocoFakeKernelState(CocoFakeKernel *k)
{
    return k->state;
}

unsigned int
cocoFakeKernelCalls(CocoFakeKernel *k, int which)
{
    unsigned int sum = 0;
    size_t i;

    if (which != COCO_FAKE_ANY)
        return k->calls[which];
    for (i = 0; i < G_N_ELEMENTS(k->calls); i++)
        sum += k->calls[i];
    return sum;
}

unsigned int
cocoFakeKernelSleeps(CocoFakeKernel *k)
{
    return k->sleeps;
}

unsigned long long
cocoFakeKernelSleptUs(CocoFakeKernel *k)
{
    return k->slept_us;
}

unsigned long
cocoFakeKernelLastRequest(CocoFakeKernel *k)
{
    return k->last_request;
}

bool
cocoFakeKernelRetriesIdentical(CocoFakeKernel *k)
{
    return k->retries_identical;
}
