/*
 * cocoemutest.c: the emulated firmware backend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "firmware/cocoemu.h"
#include "util/cocowritelog.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gnutls/crypto.h>

#define NPAGES 64
#define NVCPUS 2
#define MEMSIZE (NPAGES * COCO_EMU_PAGE_SIZE)

typedef struct {
    CocoEmuPlatform *spf;
    CocoEmuPlatform *dpf;
    CocoMigrationDef def;
    CocoMigrationDef ddef; /* the destination's copy */
    CocoFirmwareVm vm; /* the guest (both ends of a migration) */
    CocoFirmwareVm dvm; /* the destination's idea of it */
    CocoPlatformId allowed[1];
    CocoMinTcb mins[1];
    CocoFirmware *src;
    CocoFirmware *dst;
    uint8_t *smem;
    uint8_t *dmem;
} Pair;

typedef struct {
    unsigned int dst_vcpus; /* 0: NVCPUS */
    bool other_dst_platform; /* destination not in the allow list */
    unsigned int dst_module_svn;
    bool dst_other_agent; /* its platform runs another agent */
    unsigned int dst_agent_svn;
    unsigned int src_agent_svn;
    bool dst_unbound; /* its VM definition names no agent */
    unsigned int dst_streams; /* 0: as the source (2) */
    uint8_t guest; /* the guest's UUID is this byte 16 times; 0: 0x42 */
    bool src_unbound; /* the source's VM definition names no agent */
    const Pair *hosts; /* run on this pair's two platforms (same hosts) */
    uint64_t pages; /* the guest's memory in pages; 0: NPAGES */
} PairOpts;

static const PairOpts defaultOpts = {0, false, 5, false, 2, 2, false, 0};

/* Assert a failed firmware call: errno, COCO_ERROR code, status class. */
#define CHECK_FAIL(ret, err, st, errnum, code, cls)                            \
 do {                                                                          \
  int r_ = (ret);                                                              \
  g_assert_cmpint(r_, ==, -(errnum));                                          \
  g_assert_error((err), COCO_ERROR, (int)(code));                              \
  g_assert_cmpint((st).err, ==, -(errnum));                                    \
  g_assert_cmphex(COCO_EMU_STATUS_CLASS((st).fw_status), ==, (cls));           \
  g_clear_error(&(err));                                                       \
 } while (0)

#define CHECK_OK(ret, err)                                                     \
 do {                                                                          \
  int r_ = (ret);                                                              \
  g_assert_no_error(err);                                                      \
  g_assert_cmpint(r_, ==, 0);                                                  \
 } while (0)

static void
pairInit(Pair *p, const PairOpts *o)
{
    GError *err = NULL;
    uint8_t agent[COCO_AGENT_HASH_LEN];
    uint8_t other[COCO_AGENT_HASH_LEN];
    size_t size = (o->pages ? o->pages : NPAGES) * COCO_EMU_PAGE_SIZE;
    size_t i;

    memset(p, 0, sizeof(*p));
    memset(agent, 0xA5, sizeof(agent));
    memset(other, 0x5A, sizeof(other));
    if (o->hosts) {
        p->spf = cocoEmuPlatformRef(o->hosts->spf);
        p->dpf = cocoEmuPlatformRef(o->hosts->dpf);
    } else {
        p->spf = cocoEmuPlatformNew(&err);
        g_assert_no_error(err);
        p->dpf = cocoEmuPlatformNew(&err);
        g_assert_no_error(err);
        cocoEmuPlatformSetAgentHash(p->spf, agent);
        cocoEmuPlatformSetAgentHash(p->dpf, o->dst_other_agent ? other : agent);
        cocoEmuPlatformSetSvn(p->spf, COCO_TCB_COMPONENT_MODULE, 5);
        cocoEmuPlatformSetSvn(p->spf, COCO_TCB_COMPONENT_AGENT,
                              o->src_agent_svn);
        cocoEmuPlatformSetSvn(p->dpf, COCO_TCB_COMPONENT_MODULE,
                              o->dst_module_svn);
        cocoEmuPlatformSetSvn(p->dpf, COCO_TCB_COMPONENT_AGENT,
                              o->dst_agent_svn);
    }

    p->def.technology = COCO_TECHNOLOGY_TDX;
    p->def.has_agent = !o->src_unbound;
    memcpy(p->def.agent_hash, agent, sizeof(agent));
    p->def.has_agent_min_svn = true;
    p->def.agent_min_svn = 2;
    p->def.has_destinations = true;
    if (o->other_dst_platform)
        memset(p->allowed[0].id, 0x11, COCO_PLATFORM_ID_LEN);
    else
        memcpy(p->allowed[0].id, cocoEmuPlatformGetId(p->dpf),
               COCO_PLATFORM_ID_LEN);
    p->def.platforms = p->allowed;
    p->def.nplatforms = 1;
    p->mins[0].component = COCO_TCB_COMPONENT_MODULE;
    p->mins[0].svn = 3;
    p->def.min_tcbs = p->mins;
    p->def.nmin_tcbs = 1;
    p->def.has_streams = true;
    p->def.forward_streams = 2;

    memset(p->vm.uuid, o->guest ? o->guest : 0x42, sizeof(p->vm.uuid));
    p->vm.nvcpus = NVCPUS;
    p->vm.memory = size;

    p->src =
        cocoEmuNew(COCO_FIRMWARE_ROLE_SOURCE, p->spf, &p->def, &p->vm, &err);
    g_assert_no_error(err);
    p->ddef = p->def;
    p->ddef.has_agent = !o->dst_unbound;
    if (o->dst_streams)
        p->ddef.forward_streams = o->dst_streams;
    p->dvm = p->vm;
    if (o->dst_vcpus)
        p->dvm.nvcpus = o->dst_vcpus;
    p->dst = cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, p->dpf, &p->ddef,
                        &p->dvm, &err);
    g_assert_no_error(err);
    p->smem = g_malloc(size);
    p->dmem = g_malloc0(size);
    for (i = 0; i < size; i++)
        p->smem[i] = (uint8_t)(i * 7 + i / 4096 + o->guest);
    g_assert_cmpint(cocoEmuAttachMemory(p->src, p->smem, size, &err), ==, 0);
    g_assert_cmpint(cocoEmuAttachMemory(p->dst, p->dmem, size, &err), ==, 0);
    g_assert_no_error(err);
}

static void
pairClear(Pair *p)
{
    cocoFirmwareFree(p->src);
    cocoFirmwareFree(p->dst);
    cocoEmuPlatformUnref(p->spf);
    cocoEmuPlatformUnref(p->dpf);
    g_free(p->smem);
    g_free(p->dmem);
}

static int
cmd(CocoFirmware *fw, CocoMigrateCmd c, uint32_t flags, GByteArray *buf,
    CocoFirmwareStatus *st, GError **err)
{
    size_t len = buf ? buf->len : 0;
    int ret = cocoFirmwareMigrateCmd(fw, c, flags, buf ? buf->data : NULL, &len,
                                     st, err);

    if (buf)
        g_byte_array_set_size(buf, len);
    return ret;
}

/* Output buffer of capacity @cap. */
static GByteArray *
outbuf(size_t cap)
{
    GByteArray *b = g_byte_array_sized_new(cap);

    g_byte_array_set_size(b, cap);
    return b;
}

static GByteArray *
copybuf(const GByteArray *b)
{
    GByteArray *c = g_byte_array_sized_new(b->len);

    g_byte_array_append(c, b->data, b->len);
    return c;
}

/* One PREPARE call: @msg holds @*len bytes of the peer's message and has
 * room for COCO_EMU_PREPARE_MSG_MAX; the reply replaces it. */
static int
prep(CocoFirmware *fw, uint8_t *msg, size_t *len, CocoFirmwareStatus *st,
     GError **err)
{
    return cocoFirmwareMigrateCmd(fw, COCO_MIGRATE_CMD_PREPARE, 0, msg, len, st,
                                  err);
}

/* The agent key exchange with the host carrying the messages. Returns the
 * first failure (from either side) or 0. */
static int
prepare(CocoFirmware *src, CocoFirmware *dst, CocoFirmwareStatus *st,
        GError **err)
{
    uint8_t m[COCO_EMU_PREPARE_MSG_MAX];
    size_t len = 0;
    int ret;

    ret = prep(src, m, &len, st, err);
    if (ret != -EAGAIN)
        return ret;
    g_clear_error(err);
    g_assert_cmpuint(len, >, 0);
    {
        uint8_t e[COCO_EMU_PREPARE_MSG_MAX];
        size_t elen = 0;

        ret = prep(dst, e, &elen, st, err);
        if (ret != -EAGAIN)
            return ret;
        g_clear_error(err);
        g_assert_cmpuint(elen, ==, 0);
    }
    ret = prep(dst, m, &len, st, err);
    if (ret != -EAGAIN)
        return ret;
    g_clear_error(err);
    g_assert_cmpuint(len, >, 0);
    ret = prep(src, m, &len, st, err);
    if (ret != 0)
        return ret;
    g_assert_cmpuint(len, >, 0);
    ret = prep(dst, m, &len, st, err);
    g_assert_cmpuint(len, ==, 0);
    return ret;
}

/* SETUP on both sides. */
static void
setup(Pair *p)
{
    g_autoptr(GByteArray) b = outbuf(COCO_EMU_SETUP_BUNDLE_SIZE);
    CocoFirmwareStatus st;
    GError *err = NULL;

    CHECK_OK(prepare(p->src, p->dst, &st, &err), err);
    CHECK_OK(cmd(p->src, COCO_MIGRATE_CMD_SETUP, 0, b, &st, &err), err);
    g_assert_cmpint(cocoEmuGetOpState(p->src), ==, COCO_EMU_OP_LIVE_EXPORT);
    CHECK_OK(cmd(p->dst, COCO_MIGRATE_CMD_SETUP, 0, b, &st, &err), err);
    g_assert_cmpint(cocoEmuGetOpState(p->dst), ==, COCO_EMU_OP_MEMORY_IMPORT);
}

static GByteArray *
expmem(CocoFirmware *fw, uint32_t stream, const uint64_t *gfns, uint32_t n,
       uint8_t *gst, CocoFirmwareStatus *st, GError **err, int *ret)
{
    GByteArray *b = outbuf(cocoEmuMemoryBundleSize(n));
    size_t len = b->len;

    *ret = cocoFirmwareExportMemory(fw, stream, gfns, n, gst, b->data, &len, st,
                                    err);
    g_byte_array_set_size(b, len);
    return b;
}

/* Export @n pages from @first on @stream; must succeed. */
static GByteArray *
expRange(CocoFirmware *fw, uint32_t stream, uint64_t first, uint32_t n)
{
    g_autofree uint64_t *g = g_new(uint64_t, n);
    CocoFirmwareStatus st;
    GError *err = NULL;
    GByteArray *b;
    uint32_t i;
    int ret;

    for (i = 0; i < n; i++)
        g[i] = first + i;
    b = expmem(fw, stream, g, n, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    return b;
}

static int
impmem(CocoFirmware *fw, uint32_t stream, GByteArray *b, CocoFirmwareStatus *st,
       GError **err)
{
    return cocoFirmwareImportMemory(fw, stream, b->data, b->len, st, err);
}

static void
impOk(CocoFirmware *fw, uint32_t stream, GByteArray *b)
{
    CocoFirmwareStatus st;
    GError *err = NULL;

    CHECK_OK(impmem(fw, stream, b, &st, &err), err);
}

static GByteArray *
token(CocoFirmware *fw, uint32_t flags)
{
    GByteArray *b = outbuf(COCO_EMU_TOKEN_SIZE);
    CocoFirmwareStatus st;
    GError *err = NULL;

    CHECK_OK(cmd(fw, COCO_MIGRATE_CMD_TOKEN, flags, b, &st, &err), err);
    g_assert_cmpuint(b->len, ==, COCO_EMU_TOKEN_SIZE);
    return b;
}

static void
tokenOk(CocoFirmware *dst, GByteArray *t, uint32_t flags)
{
    CocoFirmwareStatus st;
    GError *err = NULL;

    CHECK_OK(cmd(dst, COCO_MIGRATE_CMD_TOKEN, flags, t, &st, &err), err);
}

static GByteArray *
expvcpu(CocoFirmware *fw, unsigned int v, CocoFirmwareStatus *st, GError **err,
        int *ret)
{
    GByteArray *b = outbuf(COCO_EMU_VCPU_BUNDLE_MAX);
    size_t len = b->len;

    *ret = cocoFirmwareExportVcpu(fw, v, b->data, &len, st, err);
    g_byte_array_set_size(b, len);
    return b;
}

static void
vcpusOk(Pair *p)
{
    CocoFirmwareStatus st;
    GError *err = NULL;
    unsigned int v;
    int ret;

    for (v = 0; v < NVCPUS; v++) {
        g_autoptr(GByteArray) b = expvcpu(p->src, v, &st, &err, &ret);

        CHECK_OK(ret, err);
        CHECK_OK(cocoFirmwareImportVcpu(p->dst, v, b->data, b->len, &st, &err),
                 err);
    }
}

static void
blackoutOk(CocoFirmware *fw)
{
    CocoFirmwareStatus st;
    GError *err = NULL;

    CHECK_OK(cmd(fw, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL, &st, &err),
             err);
    g_assert_cmpint(cocoEmuGetOpState(fw), ==, COCO_EMU_OP_PAUSED_EXPORT);
}

/* Epoch 0: all pages, half on each stream. */
static void
epochZero(Pair *p)
{
    g_autoptr(GByteArray) a = expRange(p->src, 0, 0, NPAGES / 2);
    g_autoptr(GByteArray) b = expRange(p->src, 1, NPAGES / 2, NPAGES / 2);
    g_autoptr(GByteArray) t = NULL;

    impOk(p->dst, 1, b);
    impOk(p->dst, 0, a);
    t = token(p->src, 0);
    tokenOk(p->dst, t, 0);
}

/* Everything up to and including the start token on both sides. */
static void
toStartToken(Pair *p)
{
    g_autoptr(GByteArray) t = NULL;

    setup(p);
    epochZero(p);
    blackoutOk(p->src);
    vcpusOk(p);
    t = token(p->src, COCO_MIGRATE_TOKEN_START);
    g_assert_cmpint(cocoEmuGetOpState(p->src), ==, COCO_EMU_OP_POST_EXPORT);
    tokenOk(p->dst, t, COCO_MIGRATE_TOKEN_START);
    g_assert_cmpint(cocoEmuGetOpState(p->dst), ==, COCO_EMU_OP_POST_IMPORT);
}

static void
assertVmEqual(Pair *p)
{
    const uint8_t *a;
    const uint8_t *b;
    size_t la;
    size_t lb;
    unsigned int v;

    g_assert_cmpmem(p->smem, MEMSIZE, p->dmem, MEMSIZE);
    for (v = 0; v < NVCPUS; v++) {
        a = cocoEmuGetVcpuState(p->src, v, &la);
        b = cocoEmuGetVcpuState(p->dst, v, &lb);
        g_assert_nonnull(a);
        g_assert_cmpmem(a, la, b, lb);
    }
    a = cocoEmuGetTdState(p->src, &la);
    b = cocoEmuGetTdState(p->dst, &lb);
    g_assert_nonnull(a);
    g_assert_cmpmem(a, la, b, lb);
}

/* Guest write that the host reports. */
static void
guestWrite(Pair *p, uint64_t gfn, uint8_t val, bool report)
{
    GError *err = NULL;

    memset(p->smem + gfn * COCO_EMU_PAGE_SIZE + 100, val, 50);
    if (report) {
        g_assert_cmpint(cocoEmuMarkDirty(p->src, gfn, &err), ==, 0);
        g_assert_no_error(err);
    }
}

/* ---- success paths ----------------------------------------------------- */

static void
testFullMigration(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    uint64_t d1[] = {3, 40};
    uint64_t d2[] = {3, 7};
    g_autoptr(GByteArray) t1 = NULL;
    g_autoptr(GByteArray) t2 = NULL;
    g_autoptr(GByteArray) ts = NULL;
    int ret;

    pairInit(&p, &defaultOpts);
    g_assert_true(cocoEmuCanRun(p.src));
    g_assert_false(cocoEmuCanRun(p.dst));
    g_assert_cmpint(cocoEmuVcpuEnter(p.src, 0, &err), ==, 0);
    setup(&p);
    g_assert_true(cocoEmuCanRun(p.src)); /* LIVE_EXPORT: guest runs */
    epochZero(&p);

    /* Epoch 1: the guest dirties two pages, they go again. */
    guestWrite(&p, d1[0], 0x11, true);
    guestWrite(&p, d1[1], 0x22, true);
    {
        g_autoptr(GByteArray) b = NULL;

        b = expmem(p.src, 1, d1, 2, NULL, &st, &err, &ret);
        CHECK_OK(ret, err);
        impOk(p.dst, 1, b);
    }
    t1 = token(p.src, 0);
    tokenOk(p.dst, t1, 0);

    /* Epoch 2: more writes; blackout; the rest while paused. */
    guestWrite(&p, d2[0], 0x33, true);
    guestWrite(&p, d2[1], 0x44, true);
    cocoEmuVcpuExit(p.src, 0);
    blackoutOk(p.src);
    g_assert_false(cocoEmuCanRun(p.src));
    g_assert_cmpint(cocoEmuVcpuEnter(p.src, 0, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_STATE);
    g_clear_error(&err);
    t2 = token(p.src, 0); /* d2[0] was exported in epoch 1: new epoch */
    tokenOk(p.dst, t2, 0);
    {
        g_autoptr(GByteArray) b = NULL;

        b = expmem(p.src, 0, d2, 2, NULL, &st, &err, &ret);
        CHECK_OK(ret, err);
        impOk(p.dst, 0, b);
    }
    vcpusOk(&p);
    ts = token(p.src, COCO_MIGRATE_TOKEN_START);
    g_assert_false(cocoEmuCanRun(p.src));
    g_assert_false(cocoEmuCanRun(p.dst));
    tokenOk(p.dst, ts, COCO_MIGRATE_TOKEN_START);
    g_assert_false(cocoEmuCanRun(p.dst));

    /* Destination commit, then the source ends. */
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_LIVE_IMPORT);
    g_assert_true(cocoEmuCanRun(p.dst));
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_TEARDOWN);
    g_assert_false(cocoEmuCanRun(p.src));
    assertVmEqual(&p);

    /* IMPORT.END: a normal VM; the source stays dead. */
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_RUNNABLE);
    g_assert_true(cocoEmuCanRun(p.dst));
    ret = cmd(p.src, COCO_MIGRATE_CMD_ABORT, 0, NULL, &st, &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_OP_STATE_INCORRECT);
    g_assert_false(cocoEmuCanRun(p.src));
    pairClear(&p);
}

/* Guest memory from files mapped MAP_SHARED, the way a VM's RAM file is. */
static void
testFdMemory(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    int sfd = memfd_create("coco-src", 0);
    int dfd = memfd_create("coco-dst", 0);
    g_autofree uint8_t *check = g_malloc(MEMSIZE);
    g_autoptr(GByteArray) t = NULL;
    uint8_t *sm;

    g_assert_cmpint(sfd, >=, 0);
    g_assert_cmpint(dfd, >=, 0);
    g_assert_cmpint(ftruncate(sfd, MEMSIZE), ==, 0);
    g_assert_cmpint(ftruncate(dfd, MEMSIZE), ==, 0);
    pairInit(&p, &defaultOpts);
    g_assert_cmpint(cocoEmuAttachMemoryFd(p.src, sfd, 0, MEMSIZE, &err), ==, 0);
    g_assert_cmpint(cocoEmuAttachMemoryFd(p.dst, dfd, 0, MEMSIZE, &err), ==, 0);
    g_assert_no_error(err);
    /* The guest (another process in real life) writes through the file. */
    sm = mmap(NULL, MEMSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
    g_assert_true(sm != MAP_FAILED);
    memcpy(sm, p.smem, MEMSIZE);

    setup(&p);
    epochZero(&p);
    blackoutOk(p.src);
    vcpusOk(&p);
    t = token(p.src, COCO_MIGRATE_TOKEN_START);
    tokenOk(p.dst, t, COCO_MIGRATE_TOKEN_START);
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    g_assert_cmpint(pread(dfd, check, MEMSIZE, 0), ==, MEMSIZE);
    g_assert_cmpmem(check, MEMSIZE, sm, MEMSIZE);
    g_assert_true(cocoEmuCanRun(p.dst));
    g_assert_false(cocoEmuCanRun(p.src));

    /* No new memory in a session; a bad fd fails cleanly. */
    g_assert_cmpint(cocoEmuAttachMemoryFd(p.dst, dfd, 0, MEMSIZE, &err), ==,
                    -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_STATE);
    g_clear_error(&err);
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    g_assert_cmpint(cocoEmuAttachMemoryFd(p.dst, -1, 0, MEMSIZE, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_SYSTEM);
    g_clear_error(&err);
    munmap(sm, MEMSIZE);
    close(sfd);
    close(dfd);
    pairClear(&p);
}

/* Post-copy: never-exported pages after the start token, out of order. */
static void
testPostCopy(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    uint64_t late[] = {60, 61};
    uint64_t again[] = {5};
    uint8_t gst[2];
    g_autoptr(GByteArray) t = NULL;
    g_autoptr(GByteArray) b = NULL;
    g_autoptr(GByteArray) c = NULL;
    g_autoptr(GByteArray) a = NULL;
    int ret;

    pairInit(&p, &defaultOpts);
    setup(&p);
    a = expRange(p.src, 0, 0, 60); /* pages 60..63 not yet */
    impOk(p.dst, 0, a);
    blackoutOk(p.src);
    vcpusOk(&p);
    t = token(p.src, COCO_MIGRATE_TOKEN_START);
    tokenOk(p.dst, t, COCO_MIGRATE_TOKEN_START);

    /* An exported page cannot go again after the start token. */
    g_byte_array_unref(expmem(p.src, 0, again, 1, gst, &st, &err, &ret));
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_PAGE_STATE_INCORRECT);
    g_assert_cmpuint(gst[0], ==, COCO_EMU_GFN_STATE_INCORRECT);

    b = expmem(p.src, 1, late, 2, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p.dst, 1, b); /* POST_IMPORT */
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    c = expRange(p.src, 0, 62, 2);
    impOk(p.dst, 0, c); /* LIVE_IMPORT: the guest already runs */
    /* A replayed out-of-order bundle is refused but, after commit, only
     * ends the session. */
    ret = impmem(p.dst, 1, b, &st, &err);
    g_assert_cmpint(ret, ==, -EPROTO);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_SEQUENCE);
    g_clear_error(&err);
    g_assert_cmphex(COCO_EMU_STATUS_CLASS(st.fw_status), ==,
                    COCO_EMU_ST_PAGE_ALREADY_IMPORTED);
    g_assert_false(st.fw_status & COCO_EMU_STATUS_FATAL);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_RUNNABLE);
    g_assert_true(cocoEmuCanRun(p.dst));
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    g_assert_false(cocoEmuCanRun(p.src));
    assertVmEqual(&p);
    pairClear(&p);
}

typedef struct {
    CocoFirmware *fw;
    uint32_t stream;
    uint64_t first;
    GPtrArray *bundles;
} StreamJob;

static gpointer
streamExport(gpointer data)
{
    StreamJob *j = data;
    uint64_t g;

    for (g = j->first; g < j->first + NPAGES / 2; g += 4)
        g_ptr_array_add(j->bundles, expRange(j->fw, j->stream, g, 4));
    return NULL;
}

static gpointer
streamImport(gpointer data)
{
    StreamJob *j = data;
    guint i;

    for (i = 0; i < j->bundles->len; i++)
        impOk(j->fw, j->stream, g_ptr_array_index(j->bundles, i));
    return NULL;
}

/* Two streams driven by two threads each side. */
static void
testThreads(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    StreamJob jobs[2];
    GThread *th[2];
    g_autoptr(GByteArray) t = NULL;
    int k;

    pairInit(&p, &defaultOpts);
    setup(&p);
    for (k = 0; k < 2; k++) {
        jobs[k].fw = p.src;
        jobs[k].stream = k;
        jobs[k].first = k * (NPAGES / 2);
        jobs[k].bundles =
            g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
        th[k] = g_thread_new("export", streamExport, &jobs[k]);
    }
    for (k = 0; k < 2; k++)
        g_thread_join(th[k]);
    for (k = 0; k < 2; k++) {
        jobs[k].fw = p.dst;
        th[k] = g_thread_new("import", streamImport, &jobs[k]);
    }
    for (k = 0; k < 2; k++) {
        g_thread_join(th[k]);
        g_ptr_array_unref(jobs[k].bundles);
    }
    blackoutOk(p.src);
    vcpusOk(&p);
    t = token(p.src, COCO_MIGRATE_TOKEN_START);
    tokenOk(p.dst, t, COCO_MIGRATE_TOKEN_START);
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    assertVmEqual(&p);
    g_assert_true(cocoEmuCanRun(p.dst));
    g_assert_false(cocoEmuCanRun(p.src));
    pairClear(&p);
}

typedef struct {
    CocoFirmware *fw;
    uint32_t stream;
    GPtrArray *bundles;
    int tamper; /* index of the bundle to damage; -1: none */
    guint done; /* bundles imported */
    int ret;
    CocoFirmwareStatus st;
    GError *err;
} ImportJob;

/* Import a stream's bundles in order until one fails. */
static gpointer
streamImportJob(gpointer data)
{
    ImportJob *j = data;
    guint i;

    for (i = 0; i < j->bundles->len; i++) {
        GByteArray *b = g_ptr_array_index(j->bundles, i);

        if ((int)i == j->tamper)
            b->data[b->len - 100] ^= 0x20; /* a byte of the last page */
        j->ret = impmem(j->fw, j->stream, b, &j->st, &j->err);
        if (j->ret < 0)
            break;
        j->done++;
    }
    return NULL;
}

/* Two streams imported by two threads at once, one bundle damaged on
 * stream 1: that import fails the VM for good (page MAC), the other stream
 * either finished first or is refused afterwards, and no page of the
 * damaged bundle reaches guest memory. */
static void
testThreadsTamper(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    StreamJob jobs[2];
    ImportJob ij[2];
    GThread *th[2];
    GByteArray *bad;
    guint k;
    guint i;

    pairInit(&p, &defaultOpts);
    setup(&p);
    for (k = 0; k < 2; k++) {
        jobs[k].fw = p.src;
        jobs[k].stream = k;
        jobs[k].first = k * (NPAGES / 2);
        jobs[k].bundles =
            g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
        th[k] = g_thread_new("export", streamExport, &jobs[k]);
    }
    for (k = 0; k < 2; k++)
        g_thread_join(th[k]);
    for (k = 0; k < 2; k++) {
        memset(&ij[k], 0, sizeof(ij[k]));
        ij[k].fw = p.dst;
        ij[k].stream = k;
        ij[k].bundles = jobs[k].bundles;
        ij[k].tamper = k == 1 ? (int)jobs[k].bundles->len / 2 : -1;
        th[k] = g_thread_new("import", streamImportJob, &ij[k]);
    }
    for (k = 0; k < 2; k++)
        g_thread_join(th[k]);

    /* Stream 1: the damaged bundle is refused, fatally. */
    g_assert_cmpuint(ij[1].done, ==, (guint)ij[1].tamper);
    st = ij[1].st;
    err = ij[1].err;
    CHECK_FAIL(ij[1].ret, err, st, EBADMSG, COCO_ERROR_FW_INTEGRITY,
               COCO_EMU_ST_INVALID_PAGE_MAC);
    g_assert_true(st.fw_status & COCO_EMU_STATUS_FATAL);
    /* Stream 0: done before, or refused because the VM failed. */
    st = ij[0].st;
    err = ij[0].err;
    if (ij[0].done < jobs[0].bundles->len)
        CHECK_FAIL(ij[0].ret, err, st, EIO, COCO_ERROR_FW_FATAL,
                   COCO_EMU_ST_IMPORT_FAILED);
    else
        CHECK_OK(ij[0].ret, err);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_FAILED_IMPORT);
    /* Any later import is refused naming the failure that caused it, so
     * that whichever stream's error reaches the session first says why. */
    {
        GByteArray *b0 = g_ptr_array_index(jobs[0].bundles, 0);
        int r2;

        memset(&st, 0, sizeof(st));
        r2 = impmem(p.dst, 0, b0, &st, &err);
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(err->message,
                                "'import-memory' refused: the destination VM "
                                "failed for good and can only be torn down: "));
        g_assert_nonnull(strstr(err->message, "(tampered)"));
        CHECK_FAIL(r2, err, st, EIO, COCO_ERROR_FW_FATAL,
                   COCO_EMU_ST_IMPORT_FAILED);
    }

    /* Bundles of 4 pages: what was imported is exact; pages of bundles
     * never tried are untouched (those of the damaged bundle are undefined:
     * the VM failed for good). */
    bad = g_ptr_array_index(jobs[1].bundles, ij[1].tamper);
    g_assert_nonnull(bad);
    for (k = 0; k < 2; k++) {
        for (i = 0; i < NPAGES / 2; i++) {
            uint64_t g = k * (NPAGES / 2) + i;
            const uint8_t *d = p.dmem + g * COCO_EMU_PAGE_SIZE;

            if (i / 4 < ij[k].done) {
                g_assert_cmpmem(d, COCO_EMU_PAGE_SIZE,
                                p.smem + g * COCO_EMU_PAGE_SIZE,
                                COCO_EMU_PAGE_SIZE);
            } else if (i / 4 > ij[k].done) {
                g_assert_cmpuint(d[0] | d[100] | d[COCO_EMU_PAGE_SIZE - 1], ==,
                                 0);
            }
        }
        g_ptr_array_unref(jobs[k].bundles);
    }
    pairClear(&p);
}

typedef struct {
    Pair *p;
    int stop; /* atomic: 1 = make 256 more writes, then end */
    guint writes;
} WriterJob;

/* A guest writing pages without the host ever reporting it. */
static gpointer
unreportedWriter(gpointer data)
{
    WriterJob *w = data;
    guint extra = 0;
    uint64_t i = 0;

    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) || extra++ < 256) {
        uint64_t g = (i * 7) % NPAGES;
        volatile uint64_t *b =
            (volatile uint64_t *)(void *)(w->p->smem + g * COCO_EMU_PAGE_SIZE);

        /* Never the same value twice: every write changes its page. */
        b[(i * 131) % (COCO_EMU_PAGE_SIZE / 8)] = 0xC0C0000000000000ULL + i;
        i++;
        w->writes++;
    }
    return NULL;
}

/* Two streams exported by two threads while the guest writes without
 * reports: the keyed page hashes taken by the concurrent exports find
 * every changed page, and the VM arrives intact. */
static void
testThreadsUnreported(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    StreamJob jobs[2];
    GThread *th[2];
    GThread *wt;
    WriterJob w = {0};
    g_autofree uint64_t *dirty = NULL;
    g_autoptr(GByteArray) t = NULL;
    g_autoptr(GByteArray) t2 = NULL;
    g_autoptr(GByteArray) ts = NULL;
    size_t ndirty = 0;
    size_t i;
    int k;

    pairInit(&p, &defaultOpts);
    setup(&p);
    w.p = &p;
    wt = g_thread_new("writer", unreportedWriter, &w);
    for (k = 0; k < 2; k++) {
        jobs[k].fw = p.src;
        jobs[k].stream = k;
        jobs[k].first = k * (NPAGES / 2);
        jobs[k].bundles =
            g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
        th[k] = g_thread_new("export", streamExport, &jobs[k]);
    }
    for (k = 0; k < 2; k++)
        g_thread_join(th[k]);
    __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
    g_thread_join(wt);
    g_assert_cmpuint(w.writes, >=, 256);
    for (k = 0; k < 2; k++) {
        jobs[k].fw = p.dst;
        th[k] = g_thread_new("import", streamImport, &jobs[k]);
    }
    for (k = 0; k < 2; k++) {
        g_thread_join(th[k]);
        g_ptr_array_unref(jobs[k].bundles);
    }
    t = token(p.src, 0);
    tokenOk(p.dst, t, 0);

    /* The writes after the exports changed pages: the scan finds them. */
    CHECK_OK(cocoEmuGetDirty(p.src, true, &dirty, &ndirty, &err), err);
    g_assert_cmpuint(ndirty, >, 0);
    for (i = 0; i < ndirty; i++) {
        g_autoptr(GByteArray) b = NULL;
        int ret;

        b = expmem(p.src, i % 2, &dirty[i], 1, NULL, &st, &err, &ret);
        CHECK_OK(ret, err);
        impOk(p.dst, i % 2, b);
    }
    t2 = token(p.src, 0);
    tokenOk(p.dst, t2, 0);
    blackoutOk(p.src);
    vcpusOk(&p);
    ts = token(p.src, COCO_MIGRATE_TOKEN_START);
    tokenOk(p.dst, ts, COCO_MIGRATE_TOKEN_START);
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    assertVmEqual(&p);
    pairClear(&p);
}

/* A migrated VM migrates on: the destination becomes a source. */
static void
testOnward(void)
{
    Pair p;
    Pair q;
    GError *err = NULL;
    CocoFirmwareStatus st;
    const uint8_t *a;
    const uint8_t *b;
    size_t la;
    size_t lb;

    pairInit(&p, &defaultOpts);
    toStartToken(&p);
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_RUNNABLE);

    /* q: p's destination migrates on, to a new VM on the same platform
     * (the only one p's policy allows). */
    pairInit(&q, &defaultOpts);
    cocoFirmwareFree(q.src);
    cocoFirmwareFree(q.dst);
    q.src = g_steal_pointer(&p.dst);
    q.dst =
        cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, p.dpf, &q.def, &p.vm, &err);
    g_assert_no_error(err);
    g_assert_cmpint(cocoEmuAttachMemory(q.dst, q.dmem, MEMSIZE, &err), ==, 0);
    toStartToken(&q);
    CHECK_OK(cmd(q.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    g_assert_cmpmem(q.dmem, MEMSIZE, p.smem, MEMSIZE);
    a = cocoEmuGetVcpuState(p.src, 1, &la);
    b = cocoEmuGetVcpuState(q.dst, 1, &lb);
    g_assert_cmpmem(a, la, b, lb);
    a = cocoEmuGetTdState(p.src, &la);
    b = cocoEmuGetTdState(q.dst, &lb);
    g_assert_cmpmem(a, la, b, lb);
    g_assert_true(cocoEmuCanRun(q.dst));
    g_assert_false(cocoEmuCanRun(q.src));
    g_assert_false(cocoEmuCanRun(p.src));
    pairClear(&q);
    pairClear(&p);
}

/* ---- operation-state rules ------------------------------------------- */

static void
testStateRules(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    g_autoptr(GByteArray) b = outbuf(COCO_EMU_SETUP_BUNDLE_SIZE);
    g_autoptr(GByteArray) v1 = NULL;
    g_autoptr(GByteArray) v0 = NULL;
    g_autoptr(GByteArray) t = outbuf(COCO_EMU_TOKEN_SIZE);
    uint64_t g0 = 0;
    int ret;

    pairInit(&p, &defaultOpts);
    /* Nothing before SETUP; SETUP needs the key exchange first. */
    g_byte_array_unref(expmem(p.src, 0, &g0, 1, NULL, &st, &err, &ret));
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_OP_STATE_INCORRECT);
    ret = cmd(p.src, COCO_MIGRATE_CMD_SETUP, 0, b, &st, &err);
    CHECK_FAIL(ret, err, st, EAGAIN, COCO_ERROR_FW_NOT_READY,
               COCO_EMU_ST_KEY_NOT_SET);
    ret = cmd(p.src, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL, &st, &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_OP_STATE_INCORRECT);
    ret = cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_OP_STATE_INCORRECT);
    g_byte_array_set_size(t, COCO_EMU_TOKEN_SIZE);
    ret = cmd(p.dst, COCO_MIGRATE_CMD_ABORT, 0, t, &st, &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_OP_STATE_INCORRECT);
    g_byte_array_set_size(t, COCO_EMU_TOKEN_SIZE);
    ret = cmd(p.src, COCO_MIGRATE_CMD_TOKEN, 4, t, &st, &err);
    CHECK_FAIL(ret, err, st, EINVAL, COCO_ERROR_FW_INVALID,
               COCO_EMU_ST_INVALID_OPERAND);

    setup(&p);
    /* Live: no vCPU export, no start token, no second SETUP. */
    v0 = expvcpu(p.src, 0, &st, &err, &ret);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_OP_STATE_INCORRECT);
    g_byte_array_unref(v0);
    g_byte_array_set_size(t, COCO_EMU_TOKEN_SIZE);
    ret = cmd(p.src, COCO_MIGRATE_CMD_TOKEN, COCO_MIGRATE_TOKEN_START, t, &st,
              &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_OP_STATE_INCORRECT);
    g_byte_array_set_size(b, COCO_EMU_SETUP_BUNDLE_SIZE);
    ret = cmd(p.src, COCO_MIGRATE_CMD_SETUP, 0, b, &st, &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_OP_STATE_INCORRECT);
    /* A running vCPU blocks the blackout. */
    g_assert_cmpint(cocoEmuVcpuEnter(p.src, 1, &err), ==, 0);
    ret = cmd(p.src, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL, &st, &err);
    CHECK_FAIL(ret, err, st, EBUSY, COCO_ERROR_FW_BUSY,
               COCO_EMU_ST_OPERAND_BUSY);
    cocoEmuVcpuExit(p.src, 1);
    epochZero(&p);
    blackoutOk(p.src);

    /* vCPU 0 (TD state) first; each vCPU once; all before the start. */
    v1 = expvcpu(p.src, 1, &st, &err, &ret);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_TD_STATE_FIRST);
    g_byte_array_unref(v1);
    v0 = expvcpu(p.src, 0, &st, &err, &ret);
    CHECK_OK(ret, err);
    g_byte_array_unref(expvcpu(p.src, 0, &st, &err, &ret));
    CHECK_FAIL(ret, err, st, EEXIST, COCO_ERROR_FW_EXISTS,
               COCO_EMU_ST_VCPU_ALREADY_EXPORTED);
    g_byte_array_set_size(t, COCO_EMU_TOKEN_SIZE);
    ret = cmd(p.src, COCO_MIGRATE_CMD_TOKEN, COCO_MIGRATE_TOKEN_START, t, &st,
              &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_SOME_VCPUS_NOT_MIGRATED);
    v1 = expvcpu(p.src, 1, &st, &err, &ret);
    CHECK_OK(ret, err);

    /* Destination: vCPU 1 before vCPU 0 refused (not fatal); then fine. */
    ret = cocoFirmwareImportVcpu(p.dst, 1, v1->data, v1->len, &st, &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_TD_STATE_FIRST);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_MEMORY_IMPORT);
    CHECK_OK(cocoFirmwareImportVcpu(p.dst, 0, v0->data, v0->len, &st, &err),
             err);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_STATE_IMPORT);
    /* The start token before vCPU 1 arrived: fatal on the destination. */
    g_byte_array_set_size(t, COCO_EMU_TOKEN_SIZE);
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_TOKEN, COCO_MIGRATE_TOKEN_START, t,
                 &st, &err),
             err);
    ret = cmd(p.dst, COCO_MIGRATE_CMD_TOKEN, COCO_MIGRATE_TOKEN_START, t, &st,
              &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_SOME_VCPUS_NOT_MIGRATED);
    g_assert_true(st.fw_status & COCO_EMU_STATUS_FATAL);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_FAILED_IMPORT);
    /* Later calls refused for good. */
    ret = cocoFirmwareImportVcpu(p.dst, 1, v1->data, v1->len, &st, &err);
    CHECK_FAIL(ret, err, st, EIO, COCO_ERROR_FW_FATAL,
               COCO_EMU_ST_IMPORT_FAILED);
    ret = cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err);
    CHECK_FAIL(ret, err, st, EIO, COCO_ERROR_FW_FATAL,
               COCO_EMU_ST_IMPORT_FAILED);
    g_assert_false(cocoEmuCanRun(p.dst));
    g_assert_false(cocoEmuCanRun(p.src));
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_POST_EXPORT);
    pairClear(&p);
}

/* ---- per-page rules ------------------------------------------------------ */

static void
testPageRules(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    uint64_t clean[] = {1, 2};
    uint64_t dup[] = {9, 9};
    uint64_t out[] = {NPAGES};
    uint64_t d[] = {4};
    uint8_t gst[2];
    g_autoptr(GByteArray) t = NULL;
    g_autoptr(GByteArray) b = NULL;
    g_autoptr(GByteArray) small = outbuf(100);
    size_t len = small->len;
    int ret;

    pairInit(&p, &defaultOpts);
    setup(&p);
    epochZero(&p);

    /* A buffer too small reports the size needed. */
    ret = cocoFirmwareExportMemory(p.src, 0, d, 1, NULL, small->data, &len, &st,
                                   &err);
    CHECK_FAIL(ret, err, st, ENOBUFS, COCO_ERROR_FW_BUFFER,
               COCO_EMU_ST_BUFFER_TOO_SMALL);
    g_assert_cmpuint(st.needed, ==, cocoEmuMemoryBundleSize(1));

    /* Re-export of clean pages is refused; all or nothing. */
    g_byte_array_unref(expmem(p.src, 0, clean, 2, gst, &st, &err, &ret));
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_PAGE_STATE_INCORRECT);
    g_assert_cmpuint(gst[0], ==, COCO_EMU_GFN_STATE_INCORRECT);
    /* A dirty page goes once per epoch. */
    guestWrite(&p, 4, 2, true);
    t = token(p.src, 0);
    tokenOk(p.dst, t, 0);
    /* Duplicates and gfns outside memory. */
    guestWrite(&p, 9, 1, true);
    g_byte_array_unref(expmem(p.src, 0, dup, 2, gst, &st, &err, &ret));
    CHECK_FAIL(ret, err, st, EINVAL, COCO_ERROR_FW_INVALID,
               COCO_EMU_ST_INVALID_OPERAND);
    g_assert_cmpuint(gst[0], ==, COCO_EMU_GFN_SKIPPED);
    g_assert_cmpuint(gst[1], ==, COCO_EMU_GFN_DUPLICATE);
    g_byte_array_unref(expmem(p.src, 0, out, 1, gst, &st, &err, &ret));
    CHECK_FAIL(ret, err, st, EINVAL, COCO_ERROR_FW_INVALID,
               COCO_EMU_ST_INVALID_OPERAND);
    g_assert_cmpuint(gst[0], ==, COCO_EMU_GFN_OUT_OF_RANGE);

    b = expmem(p.src, 1, d, 1, gst, &st, &err, &ret);
    CHECK_OK(ret, err);
    g_assert_cmpuint(gst[0], ==, COCO_EMU_GFN_OK);
    impOk(p.dst, 1, b);
    guestWrite(&p, 4, 3, true);
    g_byte_array_unref(expmem(p.src, 1, d, 1, gst, &st, &err, &ret));
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_MIGRATED_IN_CURRENT_EPOCH);
    g_assert_cmpuint(gst[0], ==, COCO_EMU_GFN_MIGRATED_IN_CURRENT_EPOCH);

    /* Dirty pages block the start token. */
    blackoutOk(p.src);
    vcpusOk(&p);
    {
        g_autoptr(GByteArray) s = outbuf(COCO_EMU_TOKEN_SIZE);

        ret = cmd(p.src, COCO_MIGRATE_CMD_TOKEN, COCO_MIGRATE_TOKEN_START, s,
                  &st, &err);
        CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
                   COCO_EMU_ST_EXPORTED_DIRTY_PAGES_REMAIN);
    }
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_PAUSED_EXPORT);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_STATE_IMPORT);
    g_assert_false(cocoEmuCanRun(p.src));
    g_assert_false(cocoEmuCanRun(p.dst));
    pairClear(&p);
}

/* Token 0 and the vCPUs go; the start token is refused with status class
 * @cls and a message that names @why. */
static void
startRefused(Pair *p, uint32_t cls, const char *why)
{
    GError *err = NULL;
    CocoFirmwareStatus st;
    g_autoptr(GByteArray) t = token(p->src, 0);
    g_autoptr(GByteArray) s = outbuf(COCO_EMU_TOKEN_SIZE);
    int ret;

    tokenOk(p->dst, t, 0);
    vcpusOk(p);
    ret = cmd(p->src, COCO_MIGRATE_CMD_TOKEN, COCO_MIGRATE_TOKEN_START, s, &st,
              &err);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, why));
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE, cls);
}

/* Writes the host never reported are caught by the content hashes: the
 * blackout only stops the VM, the start token refuses while a page differs
 * from its exported copy (and marks it dirty); exported again, it goes. */
static void
testUnreportedWrites(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    uint64_t g56[] = {5, 6};
    g_autoptr(GByteArray) t = NULL;
    g_autoptr(GByteArray) b = NULL;
    g_autofree uint64_t *gfns = NULL;
    size_t n = 0;
    int ret;

    pairInit(&p, &defaultOpts);
    setup(&p);
    epochZero(&p);

    /* Page 5 before the blackout, page 6 while paused. */
    guestWrite(&p, 5, 0x77, false);
    blackoutOk(p.src);
    guestWrite(&p, 6, 0x78, false);
    /* An exported page changed without being reported dirty. */
    startRefused(&p, COCO_EMU_ST_EXPORTED_PAGES_CHANGED,
                 "changed without being reported dirty");
    g_assert_cmpint(cocoEmuGetDirty(p.src, false, &gfns, &n, &err), ==, 0);
    g_assert_cmpuint(n, ==, 2);
    b = expmem(p.src, 0, g56, 2, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p.dst, 0, b);
    t = token(p.src, COCO_MIGRATE_TOKEN_START);
    tokenOk(p.dst, t, COCO_MIGRATE_TOKEN_START);
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    assertVmEqual(&p);
    g_assert_true(cocoEmuCanRun(p.dst));
    g_assert_false(cocoEmuCanRun(p.src));
    pairClear(&p);
}

/* The dirty log of the seam (cocoFirmwareDirtyLog): pages never exported,
 * then exactly the exported pages written since; after the blackout its
 * pass is the last check, and the start token does not hash again. */
static void
testDirtyLogSeam(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    uint64_t bits[NPAGES / 64] = {0};
    uint64_t g[] = {3, 40};
    g_autoptr(GByteArray) t = NULL;
    g_autoptr(GByteArray) b = NULL;
    int ret;

    pairInit(&p, &defaultOpts);
    g_assert_cmpint(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), ==,
                    -EPERM);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_STATE);
    g_clear_error(&err);
    setup(&p);
    /* Before any export: every page (a caller's region has no holes). */
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, ~0ULL);
    g_assert_cmpint(cocoFirmwareDirtyLog(p.src, 1, 2, bits, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_INVALID);
    g_clear_error(&err);
    g_assert_cmpint(cocoFirmwareDirtyLog(p.src, 0, NPAGES + 1, bits, &err), ==,
                    -EINVAL);
    g_clear_error(&err);
    epochZero(&p);
    bits[0] = 0;
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, 0);
    guestWrite(&p, 3, 0x31, false);
    guestWrite(&p, 40, 0x32, true);
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, (1ULL << 3) | (1ULL << 40));
    /* Listed until exported. */
    bits[0] = 0;
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, (1ULL << 3) | (1ULL << 40));
    blackoutOk(p.src);
    t = token(p.src, 0);
    tokenOk(p.dst, t, 0);
    b = expmem(p.src, 1, g, 2, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p.dst, 1, b);
    /* The pass after the blackout: nothing left; every page final. */
    bits[0] = 0;
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, 0);
    vcpusOk(&p);
    g_byte_array_unref(t);
    t = token(p.src, COCO_MIGRATE_TOKEN_START);
    tokenOk(p.dst, t, COCO_MIGRATE_TOKEN_START);
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    assertVmEqual(&p);
    pairClear(&p);
}

/* A memfd as the RAM file with the pages [0, 4) and [20, 24) written. */
static int
sparseRam(uint8_t **map)
{
    int fd = memfd_create("coco-ram", 0);
    uint64_t i;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, MEMSIZE), ==, 0);
    *map = mmap(NULL, MEMSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    g_assert_true(*map != MAP_FAILED);
    for (i = 0; i < 4; i++) {
        memset(*map + i * COCO_EMU_PAGE_SIZE, (int)(i + 1), COCO_EMU_PAGE_SIZE);
        memset(*map + (20 + i) * COCO_EMU_PAGE_SIZE, (int)(i + 0x41),
               COCO_EMU_PAGE_SIZE);
    }
    return fd;
}

/* A pair whose source is sparseRam() (mapped at *@sm, file *@sfd) and
 * whose destination an empty RAM file (*@dfd), both attached. */
static void
sparsePair(Pair *p, uint8_t **sm, int *sfd, int *dfd)
{
    GError *err = NULL;

    *sfd = sparseRam(sm);
    *dfd = memfd_create("coco-dst", 0);
    g_assert_cmpint(*dfd, >=, 0);
    g_assert_cmpint(ftruncate(*dfd, MEMSIZE), ==, 0);
    pairInit(p, &defaultOpts);
    CHECK_OK(cocoEmuAttachMemoryFd(p->src, *sfd, 0, MEMSIZE, &err), err);
    CHECK_OK(cocoEmuAttachMemoryFd(p->dst, *dfd, 0, MEMSIZE, &err), err);
}

/* sparsePair() with the source's writes logged (this process is the
 * VMM, *@ufd its write log's userfaultfd) and SETUP done; false, the test
 * skipped, on a kernel without asynchronous write protection. */
static bool
loggedPair(Pair *p, uint8_t **sm, int *sfd, int *dfd, int *ufd)
{
    GError *err = NULL;

    if ((*ufd = cocoWriteLogPrepareSelf()) < 0) {
        g_test_skip(
            "this kernel has no asynchronous userfaultfd write protection (Linux 6.7)");
        return false;
    }
    sparsePair(p, sm, sfd, dfd);
    CHECK_OK(cocoEmuLogWrites(p->src, getpid(), &err), err);
    setup(p);
    return true;
}

/* The RAM file @fd holds exactly the @size bytes at @want. */
static void
ramFileIs(int fd, const uint8_t *want, size_t size)
{
    uint8_t *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);

    g_assert_true(m != MAP_FAILED);
    g_assert_cmpmem(m, size, want, size);
    munmap(m, size);
}

/* Pages present in @fd as a bitmap (SEEK_DATA / SEEK_HOLE). */
static uint64_t
presentPages(int fd)
{
    uint64_t bits = 0;
    off_t pos = 0;

    for (;;) {
        off_t d = lseek(fd, pos, SEEK_DATA);
        off_t h;

        if (d < 0)
            break;
        h = lseek(fd, d, SEEK_HOLE);
        for (; d < h; d += COCO_EMU_PAGE_SIZE)
            bits |= 1ULL << (d / COCO_EMU_PAGE_SIZE);
        pos = h;
    }
    return bits;
}

/* Epoch 0 of a pair over sparseRam(): the pages in @want (eight of
 * them), four per bundle on streams 0 and 1, imported; then token 0. */
static void
sparseEpochZero(Pair *p, uint64_t want)
{
    GError *err = NULL;
    CocoFirmwareStatus st;
    g_autoptr(GByteArray) a = NULL;
    g_autoptr(GByteArray) b = NULL;
    g_autoptr(GByteArray) t = NULL;
    uint64_t gfns[8];
    uint64_t i;
    uint32_t n = 0;
    int ret;

    for (i = 0; i < NPAGES; i++) {
        if (want & (1ULL << i))
            gfns[n++] = i;
    }
    g_assert_cmpuint(n, ==, 8);
    b = expmem(p->src, 0, gfns, 4, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    a = expmem(p->src, 1, gfns + 4, 4, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p->dst, 0, b);
    impOk(p->dst, 1, a);
    t = token(p->src, 0);
    tokenOk(p->dst, t, 0);
}

/*
 * Pages the guest never touched are ABSENT (not in the secure EPT): the
 * dirty log never lists them and they are never read; an export of one is
 * refused; once the guest touches one it is listed and goes. The
 * destination keeps the same holes, and the token's bundle count agrees.
 */
static void
testAbsentPages(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    uint8_t *sm;
    int sfd;
    int dfd;
    uint64_t bits[1] = {0};
    uint64_t want = 0xFULL | (0xFULL << 20);
    uint64_t absent[] = {2, 9};
    uint64_t touched[] = {9};
    uint64_t rewritten[] = {21};
    uint8_t gst[2];
    g_autoptr(GByteArray) b = NULL;
    g_autoptr(GByteArray) t = NULL;
    int ret;

    sparsePair(&p, &sm, &sfd, &dfd);
    setup(&p);
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, want);
    g_assert_cmphex(presentPages(sfd), ==, want); /* nothing read in */

    /* An absent page is not exported; the call exports nothing. */
    b = expmem(p.src, 0, absent, 2, gst, &st, &err, &ret);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_PAGE_STATE_INCORRECT);
    g_assert_cmpuint(gst[0], ==, COCO_EMU_GFN_SKIPPED);
    g_assert_cmpuint(gst[1], ==, COCO_EMU_GFN_NOT_MAPPED);
    g_assert_cmphex(presentPages(sfd), ==, want);

    /* Epoch 0: the pages in use, in one bundle on each stream. */
    sparseEpochZero(&p, want);

    /* The guest touches page 9 and rewrites page 21. */
    sm[9 * COCO_EMU_PAGE_SIZE + 5] = 0x99;
    sm[21 * COCO_EMU_PAGE_SIZE] ^= 0xFF;
    bits[0] = 0;
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, (1ULL << 9) | (1ULL << 21));
    blackoutOk(p.src);
    g_byte_array_unref(b);
    b = expmem(p.src, 0, touched, 1, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p.dst, 0, b);
    g_byte_array_unref(b);
    b = expmem(p.src, 1, rewritten, 1, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p.dst, 1, b);
    bits[0] = 0;
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, 0);
    vcpusOk(&p);
    t = token(p.src, COCO_MIGRATE_TOKEN_START);
    tokenOk(p.dst, t, COCO_MIGRATE_TOKEN_START);
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);

    /* Same holes, same content. */
    want |= 1ULL << 9;
    g_assert_cmphex(presentPages(sfd), ==, want);
    g_assert_cmphex(presentPages(dfd), ==, want);
    ramFileIs(dfd, sm, MEMSIZE);
    munmap(sm, MEMSIZE);
    close(sfd);
    close(dfd);
    pairClear(&p);
}

/* What this process has mapped of the memfd named @name, in kB (the Rss
 * of its mappings in /proc/self/smaps). */
static unsigned long
mappedKb(const char *name)
{
    g_autofree char *text = NULL;
    g_autofree char *needle = g_strdup_printf("/memfd:%s ", name);
    g_auto(GStrv) lines = NULL;
    unsigned long kb = 0;
    bool in = false;
    size_t i;

    g_assert_true(g_file_get_contents("/proc/self/smaps", &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (i = 0; lines[i]; i++) {
        unsigned long v;

        if (g_ascii_isxdigit(lines[i][0]) && strchr(lines[i], '-'))
            in = strstr(lines[i], needle) != NULL;
        else if (in && sscanf(lines[i], "Rss: %lu kB", &v) == 1)
            kb += v;
    }
    return kb;
}

/*
 * A destination whose guest memory is a file writes the imported pages
 * into it with pwrite(): none of them is faulted into the emulator's own
 * mapping (a first write through it costs more than the decryption). A
 * descriptor that cannot write at an offset (O_APPEND) goes through the
 * mapping instead. Either way the file holds the source's pages, and the
 * page left out stays a hole.
 */
static void
testImportThroughFile(gconstpointer data)
{
    bool append = GPOINTER_TO_INT(data);
    Pair p;
    GError *err = NULL;
    int dfd = memfd_create("coco-import", MFD_CLOEXEC);
    int afd;
    g_autofree char *self = NULL;
    g_autofree uint8_t *back = g_malloc(MEMSIZE);
    g_autoptr(GByteArray) a = NULL;
    g_autoptr(GByteArray) b = NULL;
    uint64_t i;

    g_assert_cmpint(dfd, >=, 0);
    g_assert_cmpint(ftruncate(dfd, MEMSIZE), ==, 0);
    self = g_strdup_printf("/proc/self/fd/%d", dfd);
    afd = open(self, O_RDWR | O_CLOEXEC | (append ? O_APPEND : 0));
    g_assert_cmpint(afd, >=, 0);
    pairInit(&p, &defaultOpts);
    for (i = 0; i < MEMSIZE; i++)
        p.smem[i] = (uint8_t)(i * 7 + i / COCO_EMU_PAGE_SIZE);
    CHECK_OK(cocoEmuAttachMemoryFd(p.dst, afd, 0, MEMSIZE, &err), err);
    close(afd);
    setup(&p);
    /* Two runs on stream 1: page NPAGES / 2 is left out. */
    b = expRange(p.src, 0, 0, NPAGES / 2);
    a = expRange(p.src, 1, NPAGES / 2 + 1, NPAGES / 2 - 1);
    impOk(p.dst, 0, b);
    impOk(p.dst, 1, a);

    if (append)
        g_assert_cmpuint(mappedKb("coco-import"), >=,
                         (NPAGES - 1) * COCO_EMU_PAGE_SIZE / 1024);
    else
        g_assert_cmpuint(mappedKb("coco-import"), ==, 0);
    g_assert_cmpint(pread(dfd, back, MEMSIZE, 0), ==, MEMSIZE);
    for (i = 0; i < NPAGES; i++) {
        const uint8_t *got = back + i * COCO_EMU_PAGE_SIZE;

        if (i == NPAGES / 2) {
            g_assert_cmpuint(got[0], ==, 0);
            continue;
        }
        g_assert_cmpmem(got, COCO_EMU_PAGE_SIZE,
                        p.smem + i * COCO_EMU_PAGE_SIZE, COCO_EMU_PAGE_SIZE);
    }
    g_assert_cmphex(presentPages(dfd), ==,
                    ~(uint64_t)0 & ~(1ULL << (NPAGES / 2)));
    close(dfd);
    pairClear(&p);
}

/* Bytes the file holds. */
static uint64_t
allocated(int fd)
{
    struct stat st;

    g_assert_cmpint(fstat(fd, &st), ==, 0);
    return (uint64_t)st.st_blocks * 512;
}

/* The destination reserves the ranges it is told before any import. */
/*
 * The emulation's write blocking read from the VMM's write log
 * (cocoEmuLogWrites()): this process is the VMM (its userfaultfd, its
 * mapping of the RAM). The dirty log lists what the VMM wrote, by a store
 * or by the kernel (read(2)), even the same bytes again, as TDX's write
 * blocking would, without hashing. After the blackout, the pages the log
 * saw unchanged pass the start token unhashed; once the VMM maps the RAM
 * anew, the token hashes them again and refuses a page written through
 * the new mapping.
 */
static void
testWriteLog(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    uint8_t *sm;
    uint8_t *m2;
    int sfd;
    int dfd;
    int zero;
    int ufd;
    uint64_t bits[1] = {0};
    uint64_t want = 0xFULL | (0xFULL << 20);
    uint64_t g12[] = {1, 2};
    const uint64_t lost[] = {0, 3, 20, 21, 22, 23};
    g_autofree uint64_t *gfns = NULL;
    size_t n = 0;
    g_autoptr(GByteArray) b = NULL;
    int ret;

    if (!loggedPair(&p, &sm, &sfd, &dfd, &ufd))
        return;
    g_assert_cmpint(cocoEmuLogWrites(p.dst, getpid(), &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_STATE);
    g_clear_error(&err);
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, want);
    sparseEpochZero(&p, want);
    bits[0] = 0;
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, 0);

    /* Page 1: the same byte stored again; page 2: read(2) into it. */
    ((volatile uint8_t *)sm)[COCO_EMU_PAGE_SIZE] = sm[COCO_EMU_PAGE_SIZE];
    zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    g_assert_cmpint(zero, >=, 0);
    g_assert_cmpint(read(zero, sm + 2 * COCO_EMU_PAGE_SIZE, 16), ==, 16);
    close(zero);
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, (1ULL << 1) | (1ULL << 2));
    bits[0] = 0;
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, (1ULL << 1) | (1ULL << 2)); /* still dirty */

    blackoutOk(p.src);
    b = expmem(p.src, 0, g12, 2, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p.dst, 0, b);
    bits[0] = 0;
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, 0);
    g_assert_null(cocoEmuWriteLogLost(p.src));

    /* A mapping the log does not cover: its write is not in the log. The
     * token sees the mappings changed: every page exported unhashed while
     * the VM ran is dirty now (pages 0, 3 and 20-23; 1 and 2 went with the
     * VM stopped) and it refuses, naming the lost log. */
    m2 = mmap(NULL, MEMSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
    g_assert_true(m2 != MAP_FAILED);
    m2[3 * COCO_EMU_PAGE_SIZE] ^= 0xFF;
    startRefused(&p, COCO_EMU_ST_EXPORTED_DIRTY_PAGES_REMAIN,
                 "the write log was lost");
    g_assert_nonnull(cocoEmuWriteLogLost(p.src));
    g_assert_nonnull(strstr(cocoEmuWriteLogLost(p.src),
                            "mapped the guest RAM file differently"));
    g_assert_cmpint(cocoEmuGetDirty(p.src, false, &gfns, &n, &err), ==, 0);
    g_assert_cmpuint(n, ==, G_N_ELEMENTS(lost));
    g_assert_cmpmem(gfns, n * sizeof(*gfns), lost, sizeof(lost));
    /* The dirty log, hashing now, lists them and no page exported with
     * the VM stopped (its copy is final, though it has no hash). */
    bits[0] = 0;
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, 0x9ULL | (0xFULL << 20));

    /* Exported again (hashed: the log is gone), the token goes and the
     * destination holds page 3 as written through the new mapping. */
    g_clear_pointer(&b, g_byte_array_unref);
    b = expmem(p.src, 0, lost, G_N_ELEMENTS(lost), NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p.dst, 0, b);
    g_clear_pointer(&b, g_byte_array_unref);
    b = token(p.src, COCO_MIGRATE_TOKEN_START);
    tokenOk(p.dst, b, COCO_MIGRATE_TOKEN_START);
    ramFileIs(dfd, sm, MEMSIZE);
    munmap(m2, MEMSIZE);
    munmap(sm, MEMSIZE);
    pairClear(&p);
    close(sfd);
    close(dfd);
    close(ufd);
}

/* The dirty log of all @npages pages must list exactly @want (sorted). */
static void
dirtyLogIs(CocoFirmware *fw, uint64_t npages, const uint64_t *want, size_t n)
{
    g_autofree uint64_t *bits = g_new0(uint64_t, (npages + 63) / 64);
    GError *err = NULL;
    size_t k = 0;
    uint64_t g;

    CHECK_OK(cocoFirmwareDirtyLog(fw, 0, npages, bits, &err), err);
    for (g = 0; g < npages; g++) {
        if (!(bits[g / 64] & (1ULL << (g % 64))))
            continue;
        g_assert_cmpuint(k, <, n);
        g_assert_cmpuint(g, ==, want[k]);
        k++;
    }
    g_assert_cmpuint(k, ==, n);
}

/* Export @gfns to the destination, then an epoch token. */
static void
epochOf(Pair *p, const uint64_t *gfns, uint32_t n)
{
    CocoFirmwareStatus st;
    GError *err = NULL;
    g_autoptr(GByteArray) b = NULL;
    g_autoptr(GByteArray) t = NULL;
    int ret;

    b = expmem(p->src, 0, gfns, n, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p->dst, 0, b);
    t = token(p->src, 0);
    tokenOk(p->dst, t, 0);
}

/*
 * Pages exported while the write log holds are sealed from guest memory
 * unhashed: nothing but the log can vouch for them. The firmware's own
 * record lists none dirty; a hashing scan (cocoEmuGetDirty(fw, true))
 * cannot compare them and lists every one.
 */
static void
testWriteLogUnhashed(void)
{
    Pair p;
    GError *err = NULL;
    uint8_t *sm;
    int sfd;
    int dfd;
    int ufd;
    uint64_t bits[1] = {0};
    uint64_t want = 0xFULL | (0xFULL << 20);
    const uint64_t all[] = {0, 1, 2, 3, 20, 21, 22, 23};
    g_autofree uint64_t *gfns = NULL;
    size_t n = 0;

    if (!loggedPair(&p, &sm, &sfd, &dfd, &ufd))
        return;
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_cmphex(bits[0], ==, want);
    sparseEpochZero(&p, want);
    g_assert_cmpint(cocoEmuGetDirty(p.src, false, &gfns, &n, &err), ==, 0);
    g_assert_cmpuint(n, ==, 0);
    g_clear_pointer(&gfns, g_free);
    g_assert_cmpint(cocoEmuGetDirty(p.src, true, &gfns, &n, &err), ==, 0);
    g_assert_cmpmem(gfns, n * sizeof(*gfns), all, sizeof(all));
    g_assert_null(cocoEmuWriteLogLost(p.src));
    munmap(sm, MEMSIZE);
    pairClear(&p);
    close(sfd);
    close(dfd);
    close(ufd);
}

/* An export on stream 0 run by a thread (testWriteLogLostInFlight()). */
typedef struct {
    CocoFirmware *fw;
    const uint64_t *gfns;
    uint32_t n;
    uint8_t *buf;
    size_t len;
    int ret;
    GError *err;
} HeldExport;

static gpointer
heldExport(gpointer opaque)
{
    HeldExport *h = opaque;
    CocoFirmwareStatus st;

    h->ret = cocoFirmwareExportMemory(h->fw, 0, h->gfns, h->n, NULL, h->buf,
                                      &h->len, &st, &h->err);
    return NULL;
}

/*
 * The write log lost while an export seals pages unhashed: nothing can
 * tell whether a write slipped past its copy, so it commits them dirty and
 * they go again, hashed. The export is held in its unlocked step by its
 * own output buffer, whose first write waits on a userfaultfd; meanwhile
 * the VMM maps its RAM differently and a dirty log finds the log lost.
 */
static void
testWriteLogLostInFlight(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    HeldExport h = {.gfns = (const uint64_t[]){0, 1}, .n = 2};
    const uint64_t rest[] = {2, 3, 20, 21, 22, 23};
    struct uffdio_api api = {.api = UFFD_API};
    struct uffdio_register reg = {.mode = UFFDIO_REGISTER_MODE_MISSING};
    struct uffd_msg msg;
    struct pollfd pfd = {.events = POLLIN};
    g_autoptr(GByteArray) held = NULL;
    g_autoptr(GByteArray) again = NULL;
    g_autoptr(GByteArray) others = NULL;
    g_autoptr(GByteArray) t = NULL;
    g_autofree uint64_t *gfns = NULL;
    uint64_t bits[1] = {0};
    size_t maplen;
    size_t n = 0;
    GThread *th;
    uint8_t *sm;
    uint8_t *ram;
    int ufd;
    int sfd;
    int dfd;
    int ret;

    if (!loggedPair(&p, &sm, &sfd, &dfd, &ufd))
        return;
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);

    pfd.fd = (int)syscall(SYS_userfaultfd,
                          O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    g_assert_cmpint(pfd.fd, >=, 0);
    g_assert_cmpint(ioctl(pfd.fd, UFFDIO_API, &api), ==, 0);
    h.len = cocoEmuMemoryBundleSize(h.n);
    maplen =
        (h.len + COCO_EMU_PAGE_SIZE - 1) & ~(size_t)(COCO_EMU_PAGE_SIZE - 1);
    h.buf = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_assert_true(h.buf != MAP_FAILED);
    reg.range.start = (uintptr_t)h.buf;
    reg.range.len = maplen;
    g_assert_cmpint(ioctl(pfd.fd, UFFDIO_REGISTER, &reg), ==, 0);
    h.fw = p.src;
    th = g_thread_new("held-export", heldExport, &h);
    g_assert_cmpint(poll(&pfd, 1, 10000), ==, 1);
    g_assert_cmpint(read(pfd.fd, &msg, sizeof(msg)), ==, sizeof(msg));
    g_assert_cmpuint(msg.event, ==, UFFD_EVENT_PAGEFAULT);

    /* The source's mapping replaced by one the log does not cover. */
    g_assert_true(mmap(sm, MEMSIZE, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == sm);
    CHECK_OK(cocoFirmwareDirtyLog(p.src, 0, NPAGES, bits, &err), err);
    g_assert_nonnull(cocoEmuWriteLogLost(p.src));
    g_assert_nonnull(
        strstr(cocoEmuWriteLogLost(p.src), "cannot read which guest pages"));
    /* Unregistering wakes the held write. */
    g_assert_cmpint(ioctl(pfd.fd, UFFDIO_UNREGISTER, &reg.range), ==, 0);
    g_thread_join(th);
    close(pfd.fd);
    CHECK_OK(h.ret, h.err);
    g_assert_cmpint(cocoEmuGetDirty(p.src, false, &gfns, &n, &err), ==, 0);
    g_assert_cmpmem(gfns, n * sizeof(*gfns), h.gfns, h.n * sizeof(*h.gfns));

    /* The held bundle is sound; its pages go again, hashed, and the
     * destination ends with the source's RAM. */
    held = g_byte_array_new();
    g_byte_array_append(held, h.buf, (guint)h.len);
    munmap(h.buf, maplen);
    impOk(p.dst, 0, held);
    others = expmem(p.src, 1, rest, G_N_ELEMENTS(rest), NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p.dst, 1, others);
    t = token(p.src, 0);
    tokenOk(p.dst, t, 0);
    g_clear_pointer(&t, g_byte_array_unref);
    again = expmem(p.src, 0, h.gfns, h.n, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p.dst, 0, again);
    blackoutOk(p.src);
    vcpusOk(&p);
    t = token(p.src, COCO_MIGRATE_TOKEN_START);
    tokenOk(p.dst, t, COCO_MIGRATE_TOKEN_START);
    ram = mmap(NULL, MEMSIZE, PROT_READ, MAP_SHARED, sfd, 0);
    g_assert_true(ram != MAP_FAILED);
    ramFileIs(dfd, ram, MEMSIZE);
    munmap(ram, MEMSIZE);
    munmap(sm, MEMSIZE);
    pairClear(&p);
    close(sfd);
    close(dfd);
    close(ufd);
}

/*
 * The write log's walk skips long runs of absent pages. A guest using two
 * runs of 16 pages 3000 pages apart: a write beyond the gap is listed, a
 * page touched inside the gap is found (SEEK_DATA), and the write that
 * touched it, left in the log while the page was absent, lists it once
 * more after its export (never lost, one extra export); the stopped pass
 * then verifies every page by the log and the start token passes.
 */
static void
testWriteLogGap(void)
{
    const uint64_t npages = 4096;
    const size_t size = npages * COCO_EMU_PAGE_SIZE;
    PairOpts o = defaultOpts;
    Pair p;
    GError *err = NULL;
    uint64_t used[32];
    uint64_t w3005_2000[] = {2000, 3005};
    uint64_t only2000[] = {2000};
    g_autoptr(GByteArray) t = NULL;
    uint8_t *sm;
    int ufd = cocoWriteLogPrepareSelf();
    int sfd;
    int dfd;
    uint64_t i;

    if (ufd < 0) {
        g_test_skip(
            "this kernel has no asynchronous userfaultfd write protection (Linux 6.7)");
        return;
    }
    sfd = memfd_create("coco-ram", 0);
    dfd = memfd_create("coco-dst", 0);
    g_assert_cmpint(sfd, >=, 0);
    g_assert_cmpint(dfd, >=, 0);
    g_assert_cmpint(ftruncate(sfd, (off_t)size), ==, 0);
    g_assert_cmpint(ftruncate(dfd, (off_t)size), ==, 0);
    sm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
    g_assert_true(sm != MAP_FAILED);
    for (i = 0; i < 16; i++) {
        used[i] = i;
        used[16 + i] = 3000 + i;
        sm[i * COCO_EMU_PAGE_SIZE] = (uint8_t)(i + 1);
        sm[(3000 + i) * COCO_EMU_PAGE_SIZE] = (uint8_t)(i + 0x41);
    }
    o.pages = npages;
    pairInit(&p, &o);
    CHECK_OK(cocoEmuAttachMemoryFd(p.src, sfd, 0, size, &err), err);
    CHECK_OK(cocoEmuAttachMemoryFd(p.dst, dfd, 0, size, &err), err);
    CHECK_OK(cocoEmuLogWrites(p.src, getpid(), &err), err);
    setup(&p);
    dirtyLogIs(p.src, npages, used, 32);
    epochOf(&p, used, 32);
    dirtyLogIs(p.src, npages, NULL, 0);

    sm[3005 * COCO_EMU_PAGE_SIZE] ^= 0xFF;
    sm[2000 * COCO_EMU_PAGE_SIZE] = 0x77;
    dirtyLogIs(p.src, npages, w3005_2000, 2);
    epochOf(&p, w3005_2000, 2);
    dirtyLogIs(p.src, npages, only2000, 1);
    epochOf(&p, only2000, 1);
    dirtyLogIs(p.src, npages, NULL, 0);

    blackoutOk(p.src);
    dirtyLogIs(p.src, npages, NULL, 0);
    vcpusOk(&p);
    t = token(p.src, COCO_MIGRATE_TOKEN_START);
    tokenOk(p.dst, t, COCO_MIGRATE_TOKEN_START);
    g_assert_null(cocoEmuWriteLogLost(p.src));
    /* The destination's RAM is the source's, byte for byte. */
    ramFileIs(dfd, sm, size);
    munmap(sm, size);
    pairClear(&p);
    close(sfd);
    close(dfd);
    close(ufd);
}

static void
testReserve(void)
{
    Pair p;
    GError *err = NULL;
    int dfd = memfd_create("coco-dst", 0);
    uint64_t ranges[] = {2, 3, 30, 1};
    uint64_t bad[] = {30, 1, 2, 3};
    uint64_t outside[] = {NPAGES - 1, 2};

    g_assert_cmpint(dfd, >=, 0);
    g_assert_cmpint(ftruncate(dfd, MEMSIZE), ==, 0);
    pairInit(&p, &defaultOpts);
    CHECK_OK(cocoEmuAttachMemoryFd(p.dst, dfd, 0, MEMSIZE, &err), err);
    g_assert_cmpint(cocoFirmwareReserveMemory(p.dst, bad, 2, &err), ==,
                    -EINVAL);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_INVALID);
    g_clear_error(&err);
    g_assert_cmpint(cocoFirmwareReserveMemory(p.dst, outside, 1, &err), ==,
                    -EINVAL);
    g_clear_error(&err);
    g_assert_cmpuint(allocated(dfd), ==, 0);
    CHECK_OK(cocoFirmwareReserveMemory(p.dst, ranges, 2, &err), err);
    /* Allocated, still holes to SEEK_DATA until written (shmem). */
    g_assert_cmpuint(allocated(dfd), ==, 4 * COCO_EMU_PAGE_SIZE);
    g_assert_cmphex(presentPages(dfd), ==, 0);
    /* A source has nothing to reserve. */
    g_assert_cmpint(cocoFirmwareReserveMemory(p.src, ranges, 2, &err), ==,
                    -EPERM);
    g_clear_error(&err);
    close(dfd);
    pairClear(&p);
}

/*
 * A full RAM backing: a tmpfs of 64 KiB (mounted here: root only). The
 * reservation is refused with the file, the room needed and the room free;
 * an import of pages never reserved fails the import cleanly (no SIGBUS);
 * cocoEmuCheckRamSpace() says the same beforehand.
 */
static void
testNoSpace(void)
{
    g_autofree char *dir = g_dir_make_tmp("coco-nospace-XXXXXX", NULL);
    g_autofree char *path = NULL;
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    uint64_t ranges[] = {0, NPAGES};
    g_autoptr(GByteArray) b = NULL;
    int fd;
    int ret;

    g_assert_nonnull(dir);
    if (mount("coco-nospace", dir, "tmpfs", 0, "size=64k") < 0) {
        g_test_skip("cannot mount a tmpfs (needs root)");
        g_rmdir(dir);
        return;
    }
    path = g_build_filename(dir, "ram", NULL);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, MEMSIZE), ==, 0);

    g_assert_cmpint(cocoEmuCheckRamSpace(path, MEMSIZE, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_SYSTEM);
    g_assert_nonnull(strstr(err->message, path));
    g_assert_nonnull(strstr(err->message, "MiB free"));
    g_clear_error(&err);
    CHECK_OK(cocoEmuCheckRamSpace(dir, 16 * 1024, &err), err);

    pairInit(&p, &defaultOpts);
    CHECK_OK(cocoEmuAttachMemoryFd(p.dst, fd, 0, MEMSIZE, &err), err);
    setup(&p);
    g_assert_cmpint(cocoFirmwareReserveMemory(p.dst, ranges, 1, &err), ==,
                    -ENOSPC);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_SYSTEM);
    g_assert_nonnull(strstr(err->message, path));
    g_assert_nonnull(strstr(err->message, "MiB free"));
    g_clear_error(&err);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_MEMORY_IMPORT);

    /* Unreserved: the import fails (the VM failed for good, as any import
     * failure before commit), the agent lives. */
    b = expRange(p.src, 0, 0, NPAGES / 2);
    ret = impmem(p.dst, 0, b, &st, &err);
    CHECK_FAIL(ret, err, st, ENOSPC, COCO_ERROR_SYSTEM, COCO_EMU_ST_NO_BACKING);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_FAILED_IMPORT);
    pairClear(&p);
    close(fd);
    g_assert_cmpint(umount(dir), ==, 0);
    g_rmdir(dir);
}

/* The emulated dirty log finds unreported writes; reported ones too. */
static void
testDirtyLog(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    g_autofree uint64_t *gfns = NULL;
    size_t n = 0;
    g_autoptr(GByteArray) t = NULL;
    g_autoptr(GByteArray) b = NULL;
    int ret;

    pairInit(&p, &defaultOpts);
    g_assert_cmpint(cocoEmuGetDirty(p.src, true, &gfns, &n, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_STATE);
    g_clear_error(&err);
    setup(&p);
    epochZero(&p);
    guestWrite(&p, 12, 1, true);
    guestWrite(&p, 30, 2, false);
    g_assert_cmpint(cocoEmuGetDirty(p.src, false, &gfns, &n, &err), ==, 0);
    g_assert_cmpuint(n, ==, 1);
    g_assert_cmpuint(gfns[0], ==, 12);
    g_clear_pointer(&gfns, g_free);
    g_assert_cmpint(cocoEmuGetDirty(p.src, true, &gfns, &n, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(n, ==, 2);
    g_assert_cmpuint(gfns[0], ==, 12);
    g_assert_cmpuint(gfns[1], ==, 30);
    /* Re-exported in the next epoch: clean again. */
    t = token(p.src, 0);
    tokenOk(p.dst, t, 0);
    b = expmem(p.src, 0, gfns, 2, NULL, &st, &err, &ret);
    CHECK_OK(ret, err);
    impOk(p.dst, 0, b);
    g_clear_pointer(&gfns, g_free);
    g_assert_cmpint(cocoEmuGetDirty(p.src, true, &gfns, &n, &err), ==, 0);
    g_assert_cmpuint(n, ==, 0);
    blackoutOk(p.src);
    vcpusOk(&p);
    g_byte_array_unref(t);
    t = token(p.src, COCO_MIGRATE_TOKEN_START);
    tokenOk(p.dst, t, COCO_MIGRATE_TOKEN_START);
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    assertVmEqual(&p);
    g_assert_true(cocoEmuCanRun(p.dst));
    g_assert_false(cocoEmuCanRun(p.src));
    pairClear(&p);
}

/* ---- abort ----------------------------------------------------------- */

static GByteArray *
abortDst(CocoFirmware *dst)
{
    GByteArray *t = outbuf(COCO_EMU_TOKEN_SIZE);
    CocoFirmwareStatus st;
    GError *err = NULL;

    CHECK_OK(cmd(dst, COCO_MIGRATE_CMD_ABORT, 0, t, &st, &err), err);
    g_assert_true(st.fw_status & COCO_EMU_STATUS_FATAL);
    g_assert_cmpuint(t->len, ==, COCO_EMU_TOKEN_SIZE);
    g_assert_cmpint(cocoEmuGetOpState(dst), ==, COCO_EMU_OP_FAILED_IMPORT);
    g_assert_false(cocoEmuCanRun(dst));
    return t;
}

static uint64_t
bundleIv(const GByteArray *b)
{
    CocoEmuBundleHeader h;

    memcpy(&h, b->data, sizeof(h));
    return GUINT64_FROM_LE(h.iv_counter);
}

static void
testAbortBeforeStart(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    g_autoptr(GByteArray) t = NULL;
    g_autoptr(GByteArray) b = NULL;
    g_autoptr(GByteArray) s = outbuf(COCO_EMU_SETUP_BUNDLE_SIZE);
    g_autoptr(CocoFirmware) dst2 = NULL;
    uint64_t iv_before;
    int ret;

    pairInit(&p, &defaultOpts);
    setup(&p);
    b = expRange(p.src, 0, 0, 8);
    impOk(p.dst, 0, b);
    iv_before = bundleIv(b);
    blackoutOk(p.src);
    /* No token may be given before the start token. */
    t = abortDst(p.dst);
    ret = cmd(p.src, COCO_MIGRATE_CMD_ABORT, 0, t, &st, &err);
    CHECK_FAIL(ret, err, st, EINVAL, COCO_ERROR_FW_INVALID,
               COCO_EMU_ST_INVALID_OPERAND);
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_ABORT, 0, NULL, &st, &err), err);
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_RUNNABLE);
    g_assert_true(cocoEmuCanRun(p.src));
    g_assert_false(cocoEmuCanRun(p.dst));

    /* A new session needs a new key exchange; then pages go again and the
     * IV counters continue (never reused). */
    ret = cmd(p.src, COCO_MIGRATE_CMD_SETUP, 0, s, &st, &err);
    CHECK_FAIL(ret, err, st, EAGAIN, COCO_ERROR_FW_NOT_READY,
               COCO_EMU_ST_KEY_NOT_SET);
    dst2 =
        cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, p.dpf, &p.def, &p.vm, &err);
    g_assert_no_error(err);
    g_assert_cmpint(cocoEmuAttachMemory(dst2, p.dmem, MEMSIZE, &err), ==, 0);
    cocoFirmwareFree(p.dst);
    p.dst = g_steal_pointer(&dst2);
    setup(&p);
    g_byte_array_unref(b);
    b = expRange(p.src, 0, 0, 8);
    g_assert_cmpuint(bundleIv(b), >, iv_before + 1);
    impOk(p.dst, 0, b);
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_LIVE_EXPORT);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_MEMORY_IMPORT);
    pairClear(&p);
}

static void
testAbortAfterStart(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    g_autoptr(GByteArray) t = NULL;
    g_autoptr(GByteArray) bad = NULL;
    g_autoptr(GByteArray) t2 = NULL;
    int ret;

    pairInit(&p, &defaultOpts);
    toStartToken(&p);
    g_assert_false(cocoEmuCanRun(p.src));
    g_assert_false(cocoEmuCanRun(p.dst));

    /* Without the token the source stays frozen. */
    ret = cmd(p.src, COCO_MIGRATE_CMD_ABORT, 0, NULL, &st, &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_ABORT_TOKEN_REQUIRED);
    t = abortDst(p.dst);
    /* A tampered token is refused. */
    bad = copybuf(t);
    bad->data[16] ^= 1; /* epoch */
    ret = cmd(p.src, COCO_MIGRATE_CMD_ABORT, 0, bad, &st, &err);
    CHECK_FAIL(ret, err, st, EBADMSG, COCO_ERROR_FW_INTEGRITY,
               COCO_EMU_ST_INCORRECT_MBMD_MAC);
    g_assert_false(cocoEmuCanRun(p.src));
    /* The destination can re-issue it (FAILED_IMPORT); other calls fail. */
    t2 = abortDst(p.dst);
    ret = cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err);
    CHECK_FAIL(ret, err, st, EIO, COCO_ERROR_FW_FATAL,
               COCO_EMU_ST_IMPORT_FAILED);
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_ABORT, 0, t2, &st, &err), err);
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_RUNNABLE);
    g_assert_true(cocoEmuCanRun(p.src));
    g_assert_false(cocoEmuCanRun(p.dst));
    pairClear(&p);
}

static void
testDestinationLost(void)
{
    Pair p;
    Pair q;
    GError *err = NULL;
    CocoFirmwareStatus st;
    g_autoptr(GByteArray) forged = NULL;
    int ret;

    pairInit(&p, &defaultOpts);
    pairInit(&q, &defaultOpts);
    toStartToken(&p);
    cocoFirmwareFree(p.dst);
    p.dst = NULL;

    /* An abort token of another migration does not unfreeze the source. */
    setup(&q);
    forged = abortDst(q.dst);
    ret = cmd(p.src, COCO_MIGRATE_CMD_ABORT, 0, forged, &st, &err);
    CHECK_FAIL(ret, err, st, EKEYREJECTED, COCO_ERROR_FW_KEY,
               COCO_EMU_ST_KEY_MISMATCH);
    ret = cmd(p.src, COCO_MIGRATE_CMD_ABORT, 0, NULL, &st, &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_ABORT_TOKEN_REQUIRED);
    g_assert_false(cocoEmuCanRun(p.src));
    g_assert_cmpint(cocoEmuVcpuEnter(p.src, 0, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_STATE);
    g_clear_error(&err);
    /* Giving up: teardown only. */
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_TEARDOWN);
    ret = cmd(p.src, COCO_MIGRATE_CMD_ABORT, 0, NULL, &st, &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_OP_STATE_INCORRECT);
    g_assert_false(cocoEmuCanRun(p.src));
    g_assert_cmpint(cocoEmuGetOpState(q.dst), ==, COCO_EMU_OP_FAILED_IMPORT);
    g_assert_true(cocoEmuCanRun(q.src)); /* still live-exporting */
    pairClear(&p);
    pairClear(&q);
}

static void
testCommitThenAbort(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    g_autoptr(GByteArray) t = outbuf(COCO_EMU_TOKEN_SIZE);
    int ret;

    pairInit(&p, &defaultOpts);
    toStartToken(&p);
    CHECK_OK(cmd(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    g_assert_true(cocoEmuCanRun(p.dst));
    ret = cmd(p.dst, COCO_MIGRATE_CMD_ABORT, 0, t, &st, &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_OP_STATE_INCORRECT);
    g_assert_cmpuint(t->len, ==, 0);
    ret = cmd(p.src, COCO_MIGRATE_CMD_ABORT, 0, NULL, &st, &err);
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_ABORT_TOKEN_REQUIRED);
    /* Exactly one side can run. */
    g_assert_true(cocoEmuCanRun(p.dst));
    g_assert_false(cocoEmuCanRun(p.src));
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_LIVE_IMPORT);
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_POST_EXPORT);
    assertVmEqual(&p);
    pairClear(&p);
}

/* ---- integrity and sequence on the destination ------------------------- */

typedef enum {
    ATTACK_PAGE, /* flip a ciphertext byte */
    ATTACK_PAGE_MAC, /* flip a page MAC byte */
    ATTACK_GFN, /* change a gfn in the list */
    ATTACK_HEADER, /* change the epoch field */
    ATTACK_IV, /* change the IV counter */
    ATTACK_REPLAY, /* import the same bundle twice */
    ATTACK_REORDER, /* second bundle of a stream first */
    ATTACK_EPOCH_LATE, /* a bundle of epoch 0 again after the token */
    ATTACK_EPOCH_EARLY, /* a bundle of epoch 1 before the epoch token */
    ATTACK_DROP_TAIL, /* last bundle of a stream dropped */
    ATTACK_TOKEN_REPLAY,
    ATTACK_WRONG_KEY, /* the destination exchanged keys with someone else */
    ATTACK_WRONG_STREAM,
} Attack;

typedef struct {
    Attack attack;
    int err;
    CocoErrorCode code;
    CocoEmuStatusClass cls;
} AttackCase;

static const AttackCase attackCases[] = {
    {ATTACK_PAGE, EBADMSG, COCO_ERROR_FW_INTEGRITY,
     COCO_EMU_ST_INVALID_PAGE_MAC},
    {ATTACK_PAGE_MAC, EBADMSG, COCO_ERROR_FW_INTEGRITY,
     COCO_EMU_ST_INVALID_PAGE_MAC},
    {ATTACK_GFN, EBADMSG, COCO_ERROR_FW_INTEGRITY,
     COCO_EMU_ST_INCORRECT_MBMD_MAC},
    {ATTACK_HEADER, EBADMSG, COCO_ERROR_FW_INTEGRITY,
     COCO_EMU_ST_INCORRECT_MBMD_MAC},
    {ATTACK_IV, EBADMSG, COCO_ERROR_FW_INTEGRITY,
     COCO_EMU_ST_INCORRECT_MBMD_MAC},
    {ATTACK_REPLAY, EPROTO, COCO_ERROR_FW_SEQUENCE,
     COCO_EMU_ST_BUNDLE_REPLAYED},
    {ATTACK_REORDER, EPROTO, COCO_ERROR_FW_SEQUENCE,
     COCO_EMU_ST_BUNDLE_MISSING},
    {ATTACK_EPOCH_LATE, EPROTO, COCO_ERROR_FW_SEQUENCE,
     COCO_EMU_ST_EPOCH_MISMATCH},
    {ATTACK_EPOCH_EARLY, EPROTO, COCO_ERROR_FW_SEQUENCE,
     COCO_EMU_ST_EPOCH_MISMATCH},
    {ATTACK_DROP_TAIL, EPROTO, COCO_ERROR_FW_SEQUENCE,
     COCO_EMU_ST_TOTAL_BUNDLES_MISMATCH},
    {ATTACK_TOKEN_REPLAY, EPROTO, COCO_ERROR_FW_SEQUENCE,
     COCO_EMU_ST_EPOCH_NOT_INCREASING},
    {ATTACK_WRONG_KEY, EKEYREJECTED, COCO_ERROR_FW_KEY,
     COCO_EMU_ST_KEY_MISMATCH},
    {ATTACK_WRONG_STREAM, EBADMSG, COCO_ERROR_FW_INTEGRITY,
     COCO_EMU_ST_INVALID_MBMD},
};

/* Run one attack; returns the destination's first failing call's result. */
static int
runAttack(Pair *p, Attack a, CocoFirmwareStatus *st, GError **err)
{
    g_autoptr(GByteArray) b1 = NULL;
    g_autoptr(GByteArray) b2 = NULL;
    g_autoptr(GByteArray) t = NULL;
    g_autoptr(GByteArray) s = outbuf(COCO_EMU_SETUP_BUNDLE_SIZE);
    size_t pages = COCO_EMU_HEADER_SIZE + 4 * 8 + 4 * 16;

    if (a == ATTACK_WRONG_KEY) {
        /* The source's agent then talked to another destination (on the
         * same, allowed platform): the two ends hold different keys. */
        g_autoptr(CocoFirmware) other = NULL;

        CHECK_OK(prepare(p->src, p->dst, st, err), *err);
        other = cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, p->dpf, &p->def,
                           &p->vm, err);
        g_assert_no_error(*err);
        CHECK_OK(prepare(p->src, other, st, err), *err);
        CHECK_OK(cmd(p->src, COCO_MIGRATE_CMD_SETUP, 0, s, st, err), *err);
        return cmd(p->dst, COCO_MIGRATE_CMD_SETUP, 0, s, st, err);
    }
    setup(p);
    b1 = expRange(p->src, 0, 0, 4);
    b2 = expRange(p->src, 0, 4, 4);
    switch (a) {
    case ATTACK_PAGE:
        b1->data[pages + 4096 + 7] ^= 0x80;
        return impmem(p->dst, 0, b1, st, err);
    case ATTACK_PAGE_MAC:
        b1->data[COCO_EMU_HEADER_SIZE + 4 * 8 + 3] ^= 1;
        return impmem(p->dst, 0, b1, st, err);
    case ATTACK_GFN:
        b1->data[COCO_EMU_HEADER_SIZE + 8] = 9; /* gfn 1 -> 9 */
        return impmem(p->dst, 0, b1, st, err);
    case ATTACK_HEADER:
        b1->data[16] ^= 1; /* epoch */
        return impmem(p->dst, 0, b1, st, err);
    case ATTACK_IV:
        b1->data[24] ^= 1;
        return impmem(p->dst, 0, b1, st, err);
    case ATTACK_REPLAY:
        impOk(p->dst, 0, b1);
        return impmem(p->dst, 0, b1, st, err);
    case ATTACK_REORDER:
        return impmem(p->dst, 0, b2, st, err);
    case ATTACK_EPOCH_LATE:
        /* (A bundle missing at the token fails the token's count.) */
        impOk(p->dst, 0, b1);
        impOk(p->dst, 0, b2);
        t = token(p->src, 0);
        tokenOk(p->dst, t, 0);
        return impmem(p->dst, 0, b2, st, err);
    case ATTACK_EPOCH_EARLY: {
        g_autoptr(GByteArray) b3 = NULL;

        impOk(p->dst, 0, b1);
        impOk(p->dst, 0, b2);
        t = token(p->src, 0);
        b3 = expRange(p->src, 0, 8, 4);
        return impmem(p->dst, 0, b3, st, err);
    }
    case ATTACK_DROP_TAIL:
        impOk(p->dst, 0, b1);
        t = token(p->src, 0);
        return cmd(p->dst, COCO_MIGRATE_CMD_TOKEN, 0, t, st, err);
    case ATTACK_TOKEN_REPLAY:
        impOk(p->dst, 0, b1);
        impOk(p->dst, 0, b2);
        t = token(p->src, 0);
        tokenOk(p->dst, t, 0);
        return cmd(p->dst, COCO_MIGRATE_CMD_TOKEN, 0, t, st, err);
    case ATTACK_WRONG_STREAM:
        return impmem(p->dst, 1, b1, st, err);
    case ATTACK_WRONG_KEY:
    default:
        break;
    }
    g_assert_not_reached();
    return 0;
}

static void
testAttack(gconstpointer data)
{
    const AttackCase *c = data;
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    g_autoptr(GByteArray) t = outbuf(COCO_EMU_TOKEN_SIZE);
    uint64_t g0 = 0;
    int ret;

    pairInit(&p, &defaultOpts);
    ret = runAttack(&p, c->attack, &st, &err);
    CHECK_FAIL(ret, err, st, c->err, c->code, c->cls);
    /* In order: the destination failed for good. */
    g_assert_true(st.fw_status & COCO_EMU_STATUS_FATAL);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_FAILED_IMPORT);
    g_assert_false(cocoEmuCanRun(p.dst));
    ret = cmd(p.dst, COCO_MIGRATE_CMD_TOKEN, 0, t, &st, &err);
    CHECK_FAIL(ret, err, st, EIO, COCO_ERROR_FW_FATAL,
               COCO_EMU_ST_IMPORT_FAILED);
    /* The source is unharmed: it aborts and runs on. */
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_LIVE_EXPORT);
    g_assert_true(cocoEmuCanRun(p.src));
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_ABORT, 0, NULL, &st, &err), err);
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_RUNNABLE);
    g_assert_true(cocoEmuCanRun(p.src));
    /* After the abort every page is exportable again (restored). */
    g_byte_array_unref(expmem(p.src, 0, &g0, 1, NULL, &st, &err, &ret));
    CHECK_FAIL(ret, err, st, EPERM, COCO_ERROR_FW_STATE,
               COCO_EMU_ST_OP_STATE_INCORRECT);
    pairClear(&p);
}

/* A VM of another shape is refused in PREPARE, before any key exists;
 * what the immutable-state bundle says that PREPARE cannot (the stream
 * count, the source's agent binding) is checked at SETUP, fatally. */
static void
testImmutableMismatch(void)
{
    PairOpts o = defaultOpts;
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    g_autoptr(GByteArray) s = outbuf(COCO_EMU_SETUP_BUNDLE_SIZE);
    g_autoptr(CocoFirmware) big = NULL;
    g_autofree uint8_t *bigmem = NULL;
    CocoFirmwareVm vm;
    int ret;

    /* Another vCPU count: the destination refuses the source's hello. */
    o.dst_vcpus = NVCPUS + 1;
    pairInit(&p, &o);
    ret = prepare(p.src, p.dst, &st, &err);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "the vCPU count, memory size or "
                                          "technology differ"));
    CHECK_FAIL(ret, err, st, EACCES, COCO_ERROR_FW_POLICY,
               COCO_EMU_ST_VM_MISMATCH);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_UNINIT);
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_RUNNABLE);
    ret = cmd(p.dst, COCO_MIGRATE_CMD_SETUP, 0, s, &st, &err);
    CHECK_FAIL(ret, err, st, EAGAIN, COCO_ERROR_FW_NOT_READY,
               COCO_EMU_ST_KEY_NOT_SET);
    g_assert_false(cocoEmuCanRun(p.dst));
    g_assert_true(cocoEmuCanRun(p.src));

    /* Another memory size: the same. Memory of another size than the VM
     * was created with cannot be attached. */
    vm = p.vm;
    vm.memory = 2 * MEMSIZE;
    big = cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, p.dpf, &p.def, &vm, &err);
    g_assert_no_error(err);
    bigmem = g_malloc0(2 * MEMSIZE);
    g_assert_cmpint(cocoEmuAttachMemory(big, bigmem, MEMSIZE, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_INVALID);
    g_clear_error(&err);
    g_assert_cmpint(cocoEmuAttachMemory(big, bigmem, 2 * MEMSIZE, &err), ==, 0);
    g_assert_no_error(err);
    ret = prepare(p.src, big, &st, &err);
    CHECK_FAIL(ret, err, st, EACCES, COCO_ERROR_FW_POLICY,
               COCO_EMU_ST_VM_MISMATCH);
    pairClear(&p);

    /* More forward streams at the source than created here. */
    o = defaultOpts;
    o.dst_streams = 1;
    pairInit(&p, &o);
    CHECK_OK(prepare(p.src, p.dst, &st, &err), err);
    g_byte_array_set_size(s, COCO_EMU_SETUP_BUNDLE_SIZE);
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_SETUP, 0, s, &st, &err), err);
    ret = cmd(p.dst, COCO_MIGRATE_CMD_SETUP, 0, s, &st, &err);
    CHECK_FAIL(ret, err, st, EINVAL, COCO_ERROR_FW_INVALID,
               COCO_EMU_ST_IMMUTABLE_MISMATCH);
    g_assert_true(st.fw_status & COCO_EMU_STATUS_FATAL);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_FAILED_IMPORT);
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_LIVE_EXPORT);
    g_assert_false(cocoEmuCanRun(p.dst));
    g_assert_true(cocoEmuCanRun(p.src));
    pairClear(&p);

    /* A source VM bound to no agent, on a platform running the right one,
     * into a destination VM bound to it. */
    o = defaultOpts;
    o.src_unbound = true;
    pairInit(&p, &o);
    CHECK_OK(prepare(p.src, p.dst, &st, &err), err);
    g_byte_array_set_size(s, COCO_EMU_SETUP_BUNDLE_SIZE);
    CHECK_OK(cmd(p.src, COCO_MIGRATE_CMD_SETUP, 0, s, &st, &err), err);
    ret = cmd(p.dst, COCO_MIGRATE_CMD_SETUP, 0, s, &st, &err);
    CHECK_FAIL(ret, err, st, EINVAL, COCO_ERROR_FW_INVALID,
               COCO_EMU_ST_IMMUTABLE_MISMATCH);
    g_assert_true(st.fw_status & COCO_EMU_STATUS_FATAL);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_FAILED_IMPORT);
    pairClear(&p);
}

/* ---- one session, one VM: two migrations between the same hosts -------- */

#define GUEST1 "11111111-1111-1111-1111-111111111111"
#define GUEST2 "22222222-2222-2222-2222-222222222222"

/* VM1 (@p1) and VM2 (@p2) migrate at the same time between the same two
 * hosts: the same source platform, the same destination platform. */
static void
splicePairs(Pair *p1, Pair *p2)
{
    PairOpts o = defaultOpts;

    o.guest = 0x11;
    pairInit(p1, &o);
    o.guest = 0x22;
    o.hosts = p1;
    pairInit(p2, &o);
    g_assert_cmpmem(cocoEmuPlatformGetId(p1->dpf), COCO_PLATFORM_ID_LEN,
                    cocoEmuPlatformGetId(p2->dpf), COCO_PLATFORM_ID_LEN);
}

/* A PREPARE message of another guest's migration: refused with the one
 * message naming both guests, nothing changed, nothing to carry. */
static void
spliceRefused(CocoFirmware *fw, const uint8_t *msg, size_t msglen,
              const char *peer, const char *self)
{
    uint8_t m[COCO_EMU_PREPARE_MSG_MAX];
    size_t len = msglen;
    g_autofree char *want = g_strdup_printf(
        "the peer's migration session is for guest '%s', not this guest '%s'",
        peer, self);
    CocoFirmwareStatus st;
    GError *err = NULL;
    CocoEmuOpState op = cocoEmuGetOpState(fw);
    int ret;

    memcpy(m, msg, msglen);
    ret = prep(fw, m, &len, &st, &err);
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, want);
    CHECK_FAIL(ret, err, st, EACCES, COCO_ERROR_FW_POLICY,
               COCO_EMU_ST_VM_MISMATCH);
    g_assert_cmpuint(len, ==, 0);
    g_assert_cmpint(cocoEmuGetOpState(fw), ==, op);
}

/* One PREPARE call that must give -EAGAIN (0 with @done) and a reply
 * (none unless @reply). */
static void
prepStep(CocoFirmware *fw, uint8_t *msg, size_t *len, bool done, bool reply)
{
    CocoFirmwareStatus st;
    GError *err = NULL;
    int ret = prep(fw, msg, len, &st, &err);

    if (done) {
        CHECK_OK(ret, err);
    } else {
        CHECK_FAIL(ret, err, st, EAGAIN, COCO_ERROR_FW_NOT_READY,
                   COCO_EMU_ST_KEY_NOT_SET);
    }
    if (reply)
        g_assert_cmpuint(*len, >, 0);
    else
        g_assert_cmpuint(*len, ==, 0);
}

/* The rest of a migration after PREPARE; the guest arrives whole. */
static void
migrateRest(Pair *p)
{
    CocoFirmwareStatus st;
    GError *err = NULL;

    g_assert_cmpint(cocoEmuGetOpState(p->src), ==, COCO_EMU_OP_RUNNABLE);
    {
        g_autoptr(GByteArray) b = outbuf(COCO_EMU_SETUP_BUNDLE_SIZE);
        g_autoptr(GByteArray) t = NULL;

        CHECK_OK(cmd(p->src, COCO_MIGRATE_CMD_SETUP, 0, b, &st, &err), err);
        CHECK_OK(cmd(p->dst, COCO_MIGRATE_CMD_SETUP, 0, b, &st, &err), err);
        epochZero(p);
        blackoutOk(p->src);
        vcpusOk(p);
        t = token(p->src, COCO_MIGRATE_TOKEN_START);
        tokenOk(p->dst, t, COCO_MIGRATE_TOKEN_START);
    }
    CHECK_OK(cmd(p->dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    CHECK_OK(cmd(p->src, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    assertVmEqual(p);
    g_assert_true(cocoEmuCanRun(p->dst));
    g_assert_false(cocoEmuCanRun(p->src));
}

/* The host swaps the two migrations' key-exchange messages, one step at a
 * time: every spliced message is refused naming both guests, and then the
 * unspliced sessions complete, each guest arriving in its own VM. */
static void
testSplicePrepare(void)
{
    Pair p1;
    Pair p2;
    uint8_t m1[COCO_EMU_PREPARE_MSG_MAX];
    uint8_t m2[COCO_EMU_PREPARE_MSG_MAX];
    uint8_t r1[COCO_EMU_PREPARE_MSG_MAX];
    uint8_t r2[COCO_EMU_PREPARE_MSG_MAX];
    uint8_t none[COCO_EMU_PREPARE_MSG_MAX];
    size_t l1 = 0;
    size_t l2 = 0;
    size_t rl1;
    size_t rl2;
    size_t nl = 0;

    splicePairs(&p1, &p2);
    g_assert_true(memcmp(p1.smem, p2.smem, MEMSIZE) != 0);
    prepStep(p1.src, m1, &l1, false, true);
    prepStep(p2.src, m2, &l2, false, true);
    g_assert_cmpuint(l1, ==, l2);
    prepStep(p1.dst, none, &nl, false, false);
    prepStep(p2.dst, none, &nl, false, false);

    /* 1. Hellos swapped: each destination gets the other guest's. */
    spliceRefused(p2.dst, m1, l1, GUEST1, GUEST2);
    spliceRefused(p1.dst, m2, l2, GUEST2, GUEST1);

    /* 2. Answers swapped: each source gets the other destination's. */
    memcpy(r1, m1, l1);
    rl1 = l1;
    prepStep(p1.dst, r1, &rl1, false, true);
    memcpy(r2, m2, l2);
    rl2 = l2;
    prepStep(p2.dst, r2, &rl2, false, true);
    g_assert_cmpuint(rl1, >, l1);
    spliceRefused(p1.src, r2, rl2, GUEST2, GUEST1);
    spliceRefused(p2.src, r1, rl1, GUEST1, GUEST2);

    /* 3. Confirmations swapped: the sources take their own destination's
     * answer, each destination gets the other source's confirmation. */
    prepStep(p1.src, r1, &rl1, true, true);
    prepStep(p2.src, r2, &rl2, true, true);
    spliceRefused(p2.dst, r1, rl1, GUEST1, GUEST2);
    spliceRefused(p1.dst, r2, rl2, GUEST2, GUEST1);

    /* The unspliced sessions complete. */
    prepStep(p1.dst, r1, &rl1, true, false);
    prepStep(p2.dst, r2, &rl2, true, false);
    migrateRest(&p1);
    migrateRest(&p2);
    g_assert_true(memcmp(p1.dmem, p2.dmem, MEMSIZE) != 0);
    pairClear(&p2);
    pairClear(&p1);
}

/* The host also rewrites the names in the messages. The destination of
 * the wrong guest answers a hello renamed to its guest, but its answer
 * names that guest and the source refuses it; renamed back, the answer's
 * signature fails; a renamed confirmation's too. */
static void
testSpliceForged(void)
{
    Pair p1;
    Pair p2;
    uint8_t m1[COCO_EMU_PREPARE_MSG_MAX];
    uint8_t m2[COCO_EMU_PREPARE_MSG_MAX];
    uint8_t r1[COCO_EMU_PREPARE_MSG_MAX];
    uint8_t r2[COCO_EMU_PREPARE_MSG_MAX];
    uint8_t f[COCO_EMU_PREPARE_MSG_MAX];
    size_t l1 = 0;
    size_t l2 = 0;
    size_t rl1;
    size_t rl2;
    size_t fl;
    const size_t bind = 2 * (16 + 32); /* the binding: two VM identities */
    const size_t sig = 64;
    CocoFirmwareStatus st;
    GError *err = NULL;
    int ret;

    splicePairs(&p1, &p2);
    prepStep(p1.src, m1, &l1, false, true);
    prepStep(p2.src, m2, &l2, false, true);
    fl = 0;
    prepStep(p2.dst, f, &fl, false, false);

    /* VM1's hello renamed to VM2 (a hello ends with its binding): VM2's
     * destination answers it, for VM2. */
    memcpy(f, m1, l1);
    memcpy(f + l1 - bind, m2 + l2 - bind, bind);
    fl = l1;
    prepStep(p2.dst, f, &fl, false, true);
    spliceRefused(p1.src, f, fl, GUEST2, GUEST1);
    /* ... and renamed to VM1 (the binding ends the answer's hello, its
     * signature follows): the signature no longer verifies. */
    memcpy(f + fl - sig - bind, m1 + l1 - bind, bind);
    ret = prep(p1.src, f, &fl, &st, &err);
    CHECK_FAIL(ret, err, st, EBADMSG, COCO_ERROR_FW_INTEGRITY,
               COCO_EMU_ST_SIGNATURE_INVALID);

    /* Each pair's own exchange up to the confirmation (VM2's destination
     * starts over). */
    fl = 0;
    prepStep(p2.dst, f, &fl, false, false);
    prepStep(p1.dst, r1, &fl, false, false);
    memcpy(r1, m1, l1);
    rl1 = l1;
    prepStep(p1.dst, r1, &rl1, false, true);
    memcpy(r2, m2, l2);
    rl2 = l2;
    prepStep(p2.dst, r2, &rl2, false, true);
    prepStep(p1.src, r1, &rl1, true, true);
    prepStep(p2.src, r2, &rl2, true, true);
    /* VM1's confirmation renamed to VM2 (header, binding, signature). */
    memcpy(f, r1, rl1);
    memcpy(f + 8, r2 + 8, bind);
    fl = rl1;
    ret = prep(p2.dst, f, &fl, &st, &err);
    CHECK_FAIL(ret, err, st, EBADMSG, COCO_ERROR_FW_INTEGRITY,
               COCO_EMU_ST_SIGNATURE_INVALID);

    prepStep(p1.dst, r1, &rl1, true, false);
    prepStep(p2.dst, r2, &rl2, true, false);
    migrateRest(&p1);
    migrateRest(&p2);
    pairClear(&p2);
    pairClear(&p1);
}

/* After PREPARE: each step of VM1's migration spliced into VM2's. */
typedef enum {
    SPLICE_SETUP,
    SPLICE_MEMORY,
    SPLICE_EPOCH_TOKEN,
    SPLICE_VCPU,
    SPLICE_START_TOKEN,
    SPLICE_ABORT_TOKEN, /* VM2's destination's abort token to VM1's source */
    SPLICE_LAST
} SpliceStep;

static const char *const spliceStepNames[] = {
    "setup", "memory", "epoch-token", "vcpu", "start-token", "abort-token",
};
G_STATIC_ASSERT(G_N_ELEMENTS(spliceStepNames) == SPLICE_LAST);

/* @ret is a refusal of data sealed under another session's keys; on a
 * destination (@fatal) in order, that fails it for good. */
static void
spliceKeyRefused(CocoFirmware *fw, int ret, GError **errp,
                 const CocoFirmwareStatus *stp, bool fatal)
{
    GError *err = g_steal_pointer(errp);
    CocoFirmwareStatus st = *stp;

    CHECK_FAIL(ret, err, st, EKEYREJECTED, COCO_ERROR_FW_KEY,
               COCO_EMU_ST_KEY_MISMATCH);
    if (fatal) {
        g_assert_true(st.fw_status & COCO_EMU_STATUS_FATAL);
        g_assert_cmpint(cocoEmuGetOpState(fw), ==, COCO_EMU_OP_FAILED_IMPORT);
    }
    g_assert_false(cocoEmuCanRun(fw));
}

/* VM1's whole migration, where at one step its output is first given to
 * VM2's destination (both PREPAREd correctly, each with its own peer): the
 * keys derive from each session's guests and session id, so VM2's
 * destination refuses it; VM1's migration then completes. */
static void
testSpliceStep(gconstpointer data)
{
    SpliceStep step = GPOINTER_TO_INT(data);
    Pair p1;
    Pair p2;
    CocoFirmwareStatus st;
    GError *err = NULL;
    g_autoptr(GByteArray) s = outbuf(COCO_EMU_SETUP_BUNDLE_SIZE);
    g_autoptr(GByteArray) a = NULL;
    g_autoptr(GByteArray) b = NULL;
    g_autoptr(GByteArray) t = NULL;
    g_autoptr(GByteArray) c = NULL;
    unsigned int v;
    int ret;

    splicePairs(&p1, &p2);
    CHECK_OK(prepare(p1.src, p1.dst, &st, &err), err);
    CHECK_OK(prepare(p2.src, p2.dst, &st, &err), err);
    if (step != SPLICE_SETUP) {
        g_autoptr(GByteArray) s2 = outbuf(COCO_EMU_SETUP_BUNDLE_SIZE);

        CHECK_OK(cmd(p2.src, COCO_MIGRATE_CMD_SETUP, 0, s2, &st, &err), err);
        CHECK_OK(cmd(p2.dst, COCO_MIGRATE_CMD_SETUP, 0, s2, &st, &err), err);
    }

    CHECK_OK(cmd(p1.src, COCO_MIGRATE_CMD_SETUP, 0, s, &st, &err), err);
    if (step == SPLICE_SETUP) {
        c = copybuf(s);
        ret = cmd(p2.dst, COCO_MIGRATE_CMD_SETUP, 0, c, &st, &err);
        spliceKeyRefused(p2.dst, ret, &err, &st, true);
    }
    CHECK_OK(cmd(p1.dst, COCO_MIGRATE_CMD_SETUP, 0, s, &st, &err), err);

    a = expRange(p1.src, 0, 0, NPAGES / 2);
    if (step == SPLICE_MEMORY) {
        ret = impmem(p2.dst, 0, a, &st, &err);
        spliceKeyRefused(p2.dst, ret, &err, &st, true);
    }
    impOk(p1.dst, 0, a);
    b = expRange(p1.src, 1, NPAGES / 2, NPAGES / 2);
    impOk(p1.dst, 1, b);
    t = token(p1.src, 0);
    if (step == SPLICE_EPOCH_TOKEN) {
        g_clear_pointer(&c, g_byte_array_unref);
        c = copybuf(t);
        ret = cmd(p2.dst, COCO_MIGRATE_CMD_TOKEN, 0, c, &st, &err);
        spliceKeyRefused(p2.dst, ret, &err, &st, true);
    }
    tokenOk(p1.dst, t, 0);

    blackoutOk(p1.src);
    for (v = 0; v < NVCPUS; v++) {
        g_autoptr(GByteArray) vb = expvcpu(p1.src, v, &st, &err, &ret);

        CHECK_OK(ret, err);
        if (step == SPLICE_VCPU && v == 0) {
            ret =
                cocoFirmwareImportVcpu(p2.dst, 0, vb->data, vb->len, &st, &err);
            spliceKeyRefused(p2.dst, ret, &err, &st, true);
        }
        CHECK_OK(
            cocoFirmwareImportVcpu(p1.dst, v, vb->data, vb->len, &st, &err),
            err);
    }
    g_clear_pointer(&t, g_byte_array_unref);
    t = token(p1.src, COCO_MIGRATE_TOKEN_START);
    if (step == SPLICE_START_TOKEN) {
        g_clear_pointer(&c, g_byte_array_unref);
        c = copybuf(t);
        ret = cmd(p2.dst, COCO_MIGRATE_CMD_TOKEN, COCO_MIGRATE_TOKEN_START, c,
                  &st, &err);
        spliceKeyRefused(p2.dst, ret, &err, &st, true);
    }
    tokenOk(p1.dst, t, COCO_MIGRATE_TOKEN_START);

    if (step == SPLICE_ABORT_TOKEN) {
        /* VM1's source, after its start token, may resume only with its
         * own destination's abort token, not VM2's. */
        g_clear_pointer(&c, g_byte_array_unref);
        c = outbuf(COCO_EMU_TOKEN_SIZE);
        CHECK_OK(cmd(p2.dst, COCO_MIGRATE_CMD_ABORT, 0, c, &st, &err), err);
        ret = cmd(p1.src, COCO_MIGRATE_CMD_ABORT, 0, c, &st, &err);
        spliceKeyRefused(p1.src, ret, &err, &st, false);
        g_assert_cmpint(cocoEmuGetOpState(p1.src), ==, COCO_EMU_OP_POST_EXPORT);
    }

    /* VM1's migration completes; VM2's source is unharmed and runs on. */
    CHECK_OK(cmd(p1.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    CHECK_OK(cmd(p1.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, &st, &err), err);
    assertVmEqual(&p1);
    g_assert_true(cocoEmuCanRun(p1.dst));
    g_assert_cmpint(cocoEmuGetOpState(p2.dst), ==, COCO_EMU_OP_FAILED_IMPORT);
    if (step != SPLICE_SETUP) {
        CHECK_OK(cmd(p2.src, COCO_MIGRATE_CMD_ABORT, 0, NULL, &st, &err), err);
    }
    g_assert_cmpint(cocoEmuGetOpState(p2.src), ==, COCO_EMU_OP_RUNNABLE);
    g_assert_true(cocoEmuCanRun(p2.src));
    pairClear(&p2);
    pairClear(&p1);
}

/* ---- PREPARE: identity and policy ------------------------------------- */

typedef struct {
    const char *name;
    PairOpts opts;
    bool src_refuses; /* else the destination refuses */
} PolicyCase;

static const PolicyCase policyCases[] = {
    {"platform-not-allowed", {0, true, 5, false, 2, 2, false, 0}, true},
    {"tcb-too-low", {0, false, 2, false, 2, 2, false, 0}, true},
    {"agent-svn-too-low", {0, false, 5, false, 1, 2, false, 0}, true},
    {"source-agent-svn-too-low", {0, false, 5, false, 2, 1, false, 0}, false},
    /* the destination platform runs another agent: it refuses itself */
    {"agent-hash-mismatch", {0, false, 5, true, 2, 2, false, 0}, false},
    /* ... and when its own VM names none, the source refuses it */
    {"peer-agent-hash-mismatch", {0, false, 5, true, 2, 2, true, 0}, true},
};

static void
testPolicy(gconstpointer data)
{
    const PolicyCase *c = data;
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    g_autoptr(GByteArray) s = outbuf(COCO_EMU_SETUP_BUNDLE_SIZE);
    int ret;

    pairInit(&p, &c->opts);
    ret = prepare(p.src, p.dst, &st, &err);
    CHECK_FAIL(ret, err, st, EACCES, COCO_ERROR_FW_POLICY,
               COCO_EMU_ST_POLICY_REFUSED);
    /* No keys were installed on the side that refused (nor, for a source
     * refusal, on the destination): SETUP is not possible. */
    ret = cmd(c->src_refuses ? p.src : p.dst, COCO_MIGRATE_CMD_SETUP, 0, s, &st,
              &err);
    CHECK_FAIL(ret, err, st, EAGAIN, COCO_ERROR_FW_NOT_READY,
               COCO_EMU_ST_KEY_NOT_SET);
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_RUNNABLE);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_UNINIT);
    g_assert_true(cocoEmuCanRun(p.src));
    g_assert_false(cocoEmuCanRun(p.dst));
    pairClear(&p);
}

/* A forged responder message (not signed by the claimed platform). */
static void
testPrepareSignature(void)
{
    Pair p;
    GError *err = NULL;
    CocoFirmwareStatus st;
    uint8_t m[COCO_EMU_PREPARE_MSG_MAX];
    size_t len = 0;
    size_t msglen;
    int ret;

    pairInit(&p, &defaultOpts);
    ret = prep(p.src, m, &len, &st, &err);
    CHECK_FAIL(ret, err, st, EAGAIN, COCO_ERROR_FW_NOT_READY,
               COCO_EMU_ST_KEY_NOT_SET);
    ret = prep(p.dst, m, &len, &st, &err);
    CHECK_FAIL(ret, err, st, EAGAIN, COCO_ERROR_FW_NOT_READY,
               COCO_EMU_ST_KEY_NOT_SET);
    m[100] ^= 1; /* the responder's nonce */
    msglen = len;
    ret = prep(p.src, m, &len, &st, &err);
    CHECK_FAIL(ret, err, st, EBADMSG, COCO_ERROR_FW_INTEGRITY,
               COCO_EMU_ST_SIGNATURE_INVALID);
    /* Garbage is refused as such. */
    m[0] = 'X';
    len = msglen;
    ret = prep(p.src, m, &len, &st, &err);
    CHECK_FAIL(ret, err, st, EINVAL, COCO_ERROR_FW_INVALID,
               COCO_EMU_ST_INVALID_OPERAND);
    /* No buffer to reply into. */
    len = 0;
    ret = prep(p.src, NULL, &len, &st, &err);
    CHECK_FAIL(ret, err, st, ENOBUFS, COCO_ERROR_FW_BUFFER,
               COCO_EMU_ST_BUFFER_TOO_SMALL);
    g_assert_cmpint(cocoEmuGetOpState(p.src), ==, COCO_EMU_OP_RUNNABLE);
    g_assert_cmpint(cocoEmuGetOpState(p.dst), ==, COCO_EMU_OP_UNINIT);
    g_assert_false(cocoEmuCanRun(p.dst));
    pairClear(&p);
}

/* ---- platform file ------------------------------------------------------ */

static void
testPlatformFile(void)
{
    g_autofree char *dir = g_dir_make_tmp("cocoemutest-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "platform.conf", NULL);
    g_autofree char *badpath = g_build_filename(dir, "bad.conf", NULL);
    g_autoptr(CocoEmuPlatform) a = NULL;
    g_autoptr(CocoEmuPlatform) b = NULL;
    g_autoptr(CocoEmuPlatform) c = NULL;
    uint8_t hash[COCO_AGENT_HASH_LEN];
    uint8_t pubhash[COCO_PLATFORM_ID_LEN];
    GError *err = NULL;
    struct stat sb;

    g_assert_nonnull(dir);
    g_assert_null(cocoEmuPlatformLoad(path, false, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_SYSTEM);
    g_clear_error(&err);
    a = cocoEmuPlatformLoad(path, true, &err);
    g_assert_no_error(err);
    g_assert_cmpint(stat(path, &sb), ==, 0);
    g_assert_cmpint(sb.st_mode & 0777, ==, 0600);
    /* The id is the SHA-256 of the public key. */
    g_assert_cmpint(gnutls_hash_fast(GNUTLS_DIG_SHA256,
                                     cocoEmuPlatformGetPublicKey(a), 32,
                                     pubhash),
                    ==, 0);
    g_assert_cmpmem(pubhash, sizeof(pubhash), cocoEmuPlatformGetId(a),
                    COCO_PLATFORM_ID_LEN);

    memset(hash, 0x3C, sizeof(hash));
    cocoEmuPlatformSetAgentHash(a, hash);
    cocoEmuPlatformSetSvn(a, COCO_TCB_COMPONENT_MICROCODE, 77);
    g_assert_cmpint(cocoEmuPlatformSave(a, path, &err), ==, 0);
    b = cocoEmuPlatformLoad(path, true, &err);
    g_assert_no_error(err);
    g_assert_cmpmem(cocoEmuPlatformGetId(a), COCO_PLATFORM_ID_LEN,
                    cocoEmuPlatformGetId(b), COCO_PLATFORM_ID_LEN);
    g_assert_cmpuint(cocoEmuPlatformGetSvn(b, COCO_TCB_COMPONENT_MICROCODE), ==,
                     77);
    g_assert_cmpmem(cocoEmuPlatformGetAgentHash(b), COCO_AGENT_HASH_LEN, hash,
                    sizeof(hash));

    g_assert_true(g_file_set_contents(
        badpath, "[platform]\nidentity-key=AAAA\n", -1, NULL));
    c = cocoEmuPlatformLoad(badpath, true, &err);
    g_assert_null(c);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_true(
        g_file_set_contents(badpath,
                            "[platform]\nidentity-key="
                            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                            "svn-loader=70000\n",
                            -1, NULL));
    c = cocoEmuPlatformLoad(badpath, true, &err);
    g_assert_null(c);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_unlink(path);
    g_unlink(badpath);
    g_rmdir(dir);
}

/* A new platform file's missing directories are created (the agent
 * without systemd's StateDirectory=), private to root. */
static void
testPlatformFileDir(void)
{
    g_autofree char *dir = g_dir_make_tmp("cocoemutest-XXXXXX", NULL);
    g_autofree char *sub = g_build_filename(dir, "state", NULL);
    g_autofree char *subdir = g_build_filename(sub, "lib", NULL);
    g_autofree char *path = g_build_filename(subdir, "platform.conf", NULL);
    g_autoptr(CocoEmuPlatform) p = NULL;
    GError *err = NULL;
    struct stat sb;

    g_assert_nonnull(dir);
    p = cocoEmuPlatformLoad(path, true, &err);
    g_assert_no_error(err);
    g_assert_nonnull(p);
    g_assert_cmpint(stat(subdir, &sb), ==, 0);
    g_assert_cmpint(sb.st_mode & 0777, ==, 0700);
    g_assert_cmpint(stat(path, &sb), ==, 0);
    g_assert_cmpint(sb.st_mode & 0777, ==, 0600);
    g_unlink(path);
    g_rmdir(subdir);
    g_rmdir(sub);
    g_rmdir(dir);
}

/* The destination rules, as host tools call them before a migration. */
static void
testCheckDestination(void)
{
    uint8_t allowed[2][COCO_PLATFORM_ID_LEN];
    uint8_t other[COCO_PLATFORM_ID_LEN];
    CocoMinTcb min[] = {{COCO_TCB_COMPONENT_MICROCODE, 5}};
    unsigned int svn[COCO_TCB_COMPONENT_LAST] = {0, 5, 0, 0};
    g_autoptr(GError) err = NULL;

    memset(allowed[0], 0x11, COCO_PLATFORM_ID_LEN);
    memset(allowed[1], 0x22, COCO_PLATFORM_ID_LEN);
    memset(other, 0x33, COCO_PLATFORM_ID_LEN);

    /* No rules: anything goes. */
    g_assert_cmpint(cocoEmuCheckDestination(NULL, 0, NULL, 0, other, svn, &err),
                    ==, 0);
    g_assert_cmpint(cocoEmuCheckDestination((const uint8_t(*)[32])allowed, 2,
                                            min, 1, allowed[1], svn, &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(cocoEmuCheckDestination((const uint8_t(*)[32])allowed, 2,
                                            min, 1, other, svn, &err),
                    ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_POLICY);
    g_assert_nonnull(strstr(err->message, "3333"));
    g_clear_error(&err);
    svn[COCO_TCB_COMPONENT_MICROCODE] = 4;
    g_assert_cmpint(cocoEmuCheckDestination((const uint8_t(*)[32])allowed, 2,
                                            min, 1, allowed[0], svn, &err),
                    ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_POLICY);
    g_assert_nonnull(strstr(err->message, "at SVN 4, below the minimum 5"));
}

int
main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/emu/full-migration", testFullMigration);
    g_test_add_func("/emu/check-destination", testCheckDestination);
    g_test_add_func("/emu/fd-memory", testFdMemory);
    g_test_add_func("/emu/post-copy", testPostCopy);
    g_test_add_func("/emu/threads", testThreads);
    g_test_add_func("/emu/threads-tamper", testThreadsTamper);
    g_test_add_func("/emu/threads-unreported", testThreadsUnreported);
    g_test_add_func("/emu/onward", testOnward);
    g_test_add_func("/emu/state-rules", testStateRules);
    g_test_add_func("/emu/page-rules", testPageRules);
    g_test_add_func("/emu/unreported-writes", testUnreportedWrites);
    g_test_add_func("/emu/dirty-log", testDirtyLog);
    g_test_add_func("/emu/dirty-log-seam", testDirtyLogSeam);
    g_test_add_func("/emu/absent-pages", testAbsentPages);
    g_test_add_func("/emu/write-log", testWriteLog);
    g_test_add_func("/emu/write-log-gap", testWriteLogGap);
    g_test_add_func("/emu/write-log-unhashed", testWriteLogUnhashed);
    g_test_add_func("/emu/write-log-lost-in-flight", testWriteLogLostInFlight);
    g_test_add_func("/emu/reserve", testReserve);
    g_test_add_data_func("/emu/import-through-file/pwrite", GINT_TO_POINTER(0),
                         testImportThroughFile);
    g_test_add_data_func("/emu/import-through-file/append", GINT_TO_POINTER(1),
                         testImportThroughFile);
    g_test_add_func("/emu/no-space", testNoSpace);
    g_test_add_func("/emu/abort-before-start", testAbortBeforeStart);
    g_test_add_func("/emu/abort-after-start", testAbortAfterStart);
    g_test_add_func("/emu/destination-lost", testDestinationLost);
    g_test_add_func("/emu/commit-then-abort", testCommitThenAbort);
    g_test_add_func("/emu/immutable-mismatch", testImmutableMismatch);
    g_test_add_func("/emu/splice/prepare", testSplicePrepare);
    g_test_add_func("/emu/splice/prepare-forged", testSpliceForged);
    for (i = 0; i < SPLICE_LAST; i++) {
        g_autofree char *name =
            g_strdup_printf("/emu/splice/%s", spliceStepNames[i]);

        g_test_add_data_func(name, GINT_TO_POINTER(i), testSpliceStep);
    }
    for (i = 0; i < G_N_ELEMENTS(attackCases); i++) {
        static const char *const names[] = {
            "tamper-page",    "tamper-page-mac",    "tamper-gfn",
            "tamper-header",  "tamper-iv",          "replay",
            "reorder-stream", "reorder-epoch-late", "reorder-epoch-early",
            "drop-tail",      "token-replay",       "wrong-key",
            "wrong-stream",
        };
        g_autofree char *name = NULL;

        G_STATIC_ASSERT(G_N_ELEMENTS(names) == G_N_ELEMENTS(attackCases));
        name = g_strdup_printf("/emu/attack/%s", names[i]);
        g_test_add_data_func(name, &attackCases[i], testAttack);
    }
    for (i = 0; i < G_N_ELEMENTS(policyCases); i++) {
        g_autofree char *name =
            g_strdup_printf("/emu/policy/%s", policyCases[i].name);

        g_test_add_data_func(name, &policyCases[i], testPolicy);
    }
    g_test_add_func("/emu/prepare-signature", testPrepareSignature);
    g_test_add_func("/emu/platform-file", testPlatformFile);
    g_test_add_func("/emu/platform-file-dir", testPlatformFileDir);
    return g_test_run();
}
