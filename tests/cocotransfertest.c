/*
 * cocotransfertest.c: end-to-end tests of the transfer engine over
 * socketpairs, with the emulated firmware and with a plain firmware double
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "cocotransfermockfw.h"
#include "firmware/cocoemu.h"
#include "firmware/cocoemuplatform.h"
#include "transfer/cocodirtybitmap.h"
#include "transfer/cocodirtyfirmware.h"
#include "transfer/cocodirtyhash.h"
#include "transfer/cocotransferdest.h"
#include "transfer/cocotransferframe.h"
#include "transfer/cocotransfersource.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096
#define NVCPUS 2

typedef enum {
    FW_MOCK,
    FW_EMU,
} FwKind;

typedef enum {
    DIRTY_BITMAP, /* the writer logs its writes */
    DIRTY_HASH, /* page hashes */
    DIRTY_EMULOG, /* the emulated firmware's dirty log, polled */
    DIRTY_FWLOG, /* the firmware's dirty log on the seam (the agent's) */
} DirtyKind;

static const char *const dirtyNames[] = {"bitmap", "hash", "emulog", "fwlog"};

typedef struct {
    FwKind fw;
    unsigned int streams;
    unsigned int ppb;
    DirtyKind dirty;
    size_t mib;
} Case;

typedef struct {
    Case c;
    uint64_t npages;
    uint8_t *smem;
    uint8_t *dmem;
    CocoEmuPlatform *spf;
    CocoEmuPlatform *dpf;
    CocoFirmware *sfw;
    CocoFirmware *dfw;
    CocoDirtySource *dirty;
    GIOStream **sio;
    GIOStream **dio;
    int *sfd;
    CocoTransferConfig cfg;
    CocoTransferSource *src;
    CocoTransferDest *dst;

    GThread *writer;
    int stop; /* atomic */
    uint64_t writes; /* atomic */
    int kill_stream; /* -1: none */
    uint32_t kill_epoch;
    int killed;
    unsigned int progress_calls;
    /* a relay on stream 1 that flips the byte at corrupt_at (-1: none) */
    int64_t corrupt_at;
    int relay_in;
    int relay_out;
    GThread *relay;
} Pair;

/* Copy stream 1 from the source to the destination, damaging one byte on
 * the way, until either side ends. */
static gpointer
relayThread(gpointer opaque)
{
    Pair *p = opaque;
    uint8_t buf[65536];
    int64_t off = 0;

    for (;;) {
        ssize_t n = read(p->relay_in, buf, sizeof(buf));
        ssize_t done = 0;

        if (n <= 0)
            break;
        if (p->corrupt_at >= off && p->corrupt_at < off + n)
            buf[p->corrupt_at - off] ^= 0xFF;
        off += n;
        while (done < n) {
            ssize_t w = send(p->relay_out, buf + done, (size_t)(n - done),
                             MSG_NOSIGNAL);

            if (w <= 0)
                goto out;
            done += w;
        }
    }
out:
    shutdown(p->relay_in, SHUT_RDWR);
    shutdown(p->relay_out, SHUT_RDWR);
    return NULL;
}

static GIOStream *
socketStream(int fd)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GSocket) sock = g_socket_new_from_fd(fd, &err);

    g_assert_no_error(err);
    return G_IO_STREAM(g_socket_connection_factory_create_connection(sock));
}

/* The emulated agents' key exchange, carried by the test as the host
 * agents would carry it: a PREPARE buffer holds the peer's message and has
 * room for COCO_EMU_PREPARE_MSG_MAX bytes; the reply replaces it. */
static void
emuKeyExchange(CocoFirmware *sfw, CocoFirmware *dfw)
{
    uint8_t m[COCO_EMU_PREPARE_MSG_MAX];
    uint8_t e[COCO_EMU_PREPARE_MSG_MAX];
    size_t len = 0;
    size_t elen = 0;

    g_assert_cmpint(cocoFirmwareMigrateCmd(sfw, COCO_MIGRATE_CMD_PREPARE, 0, m,
                                           &len, NULL, NULL),
                    ==, -EAGAIN);
    g_assert_cmpint(cocoFirmwareMigrateCmd(dfw, COCO_MIGRATE_CMD_PREPARE, 0, e,
                                           &elen, NULL, NULL),
                    ==, -EAGAIN);
    g_assert_cmpint(cocoFirmwareMigrateCmd(dfw, COCO_MIGRATE_CMD_PREPARE, 0, m,
                                           &len, NULL, NULL),
                    ==, -EAGAIN);
    g_assert_cmpint(cocoFirmwareMigrateCmd(sfw, COCO_MIGRATE_CMD_PREPARE, 0, m,
                                           &len, NULL, NULL),
                    ==, 0);
    g_assert_cmpint(cocoFirmwareMigrateCmd(dfw, COCO_MIGRATE_CMD_PREPARE, 0, m,
                                           &len, NULL, NULL),
                    ==, 0);
}

/* The emulated firmware compares exported pages with the hashes of what
 * it exported and logs the changed ones. */
static int
emuPoll(CocoDirtySource *src, void *opaque, GError **error)
{
    g_autofree uint64_t *gfns = NULL;
    size_t n = 0;
    size_t i;

    if (cocoEmuGetDirty(opaque, true, &gfns, &n, error) < 0)
        return -1;
    for (i = 0; i < n; i++)
        cocoDirtyBitmapSet(src, gfns[i]);
    return 0;
}

/* RAM files for the emulated firmware (source, destination) instead of
 * the pair's regions, when set (testHoles). */
static int ramFd[2] = {-1, -1};

static void
pairInitCorrupt(Pair *p, const Case *c, int64_t corrupt_at)
{
    size_t size = c->mib * 1024 * 1024;
    unsigned int i;

    memset(p, 0, sizeof(*p));
    p->c = *c;
    p->kill_stream = -1;
    p->corrupt_at = corrupt_at;
    p->npages = size / PAGE;
    p->smem = g_aligned_alloc(size, 1, PAGE);
    p->dmem = g_aligned_alloc0(size, 1, PAGE);
    for (i = 0; i < size / sizeof(uint64_t); i++)
        ((uint64_t *)(void *)p->smem)[i] = (uint64_t)i * 0x9E3779B97F4A7C15ULL;

    if (c->fw == FW_MOCK) {
        p->sfw = mockFwNew(COCO_FIRMWARE_ROLE_SOURCE, p->smem, p->npages,
                           c->streams);
        p->dfw = mockFwNew(COCO_FIRMWARE_ROLE_DESTINATION, p->dmem, p->npages,
                           c->streams);
    } else {
        g_autoptr(GError) err = NULL;
        CocoMigrationDef def;
        CocoFirmwareVm vm = {.uuid = {0x42}, .nvcpus = NVCPUS, .memory = size};

        memset(&def, 0, sizeof(def));
        def.has_streams = true;
        def.forward_streams = c->streams;
        def.pages_per_bundle = c->ppb;
        p->spf = cocoEmuPlatformNew(&err);
        g_assert_no_error(err);
        p->dpf = cocoEmuPlatformNew(&err);
        g_assert_no_error(err);
        p->sfw = cocoEmuNew(COCO_FIRMWARE_ROLE_SOURCE, p->spf, &def, &vm, &err);
        g_assert_no_error(err);
        p->dfw =
            cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, p->dpf, &def, &vm, &err);
        g_assert_no_error(err);
        if (ramFd[0] >= 0) {
            g_assert_cmpint(
                cocoEmuAttachMemoryFd(p->sfw, ramFd[0], 0, size, &err), ==, 0);
            g_assert_cmpint(
                cocoEmuAttachMemoryFd(p->dfw, ramFd[1], 0, size, &err), ==, 0);
        } else {
            g_assert_cmpint(cocoEmuAttachMemory(p->sfw, p->smem, size, &err),
                            ==, 0);
            g_assert_cmpint(cocoEmuAttachMemory(p->dfw, p->dmem, size, &err),
                            ==, 0);
        }
        emuKeyExchange(p->sfw, p->dfw);
    }

    switch (c->dirty) {
    case DIRTY_BITMAP:
        p->dirty = cocoDirtyBitmapNew(p->npages);
        break;
    case DIRTY_HASH:
        p->dirty = cocoDirtyHashNew(p->smem, p->npages, g_random_int());
        break;
    case DIRTY_EMULOG:
        p->dirty = cocoDirtyBitmapNewPolled(p->npages, emuPoll, p->sfw);
        break;
    case DIRTY_FWLOG:
        p->dirty = cocoDirtyFirmwareNew(p->sfw, p->npages);
        break;
    }

    p->sio = g_new0(GIOStream *, c->streams);
    p->dio = g_new0(GIOStream *, c->streams);
    p->sfd = g_new0(int, c->streams);
    for (i = 0; i < c->streams; i++) {
        int sv[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                        ==, 0);
        p->sfd[i] = sv[0];
        p->sio[i] = socketStream(sv[0]);
        if (i == 1 && p->corrupt_at >= 0) {
            int dv[2];

            g_assert_cmpint(
                socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, dv), ==, 0);
            p->relay_in = sv[1];
            p->relay_out = dv[0];
            sv[1] = dv[1];
            p->relay = g_thread_new("relay", relayThread, p);
        }
        /* Hand the destination its streams in reverse order: HELLO must
         * sort them out. */
        p->dio[c->streams - 1 - i] = socketStream(sv[1]);
    }

    cocoTransferConfigInit(&p->cfg, NULL);
    p->cfg.streams = c->streams;
    p->cfg.pages_per_bundle = c->ppb;
    p->cfg.session_id = 0x1234;
    p->cfg.max_epochs = 6;
    p->cfg.dirty_target = 64;
}

static void
pairInit(Pair *p, const Case *c)
{
    pairInitCorrupt(p, c, -1);
}

static void
pairClear(Pair *p)
{
    unsigned int i;

    if (p->relay) {
        shutdown(p->relay_in, SHUT_RDWR);
        g_thread_join(p->relay);
        close(p->relay_in);
        close(p->relay_out);
    }
    g_clear_pointer(&p->src, cocoTransferSourceFree);
    g_clear_pointer(&p->dst, cocoTransferDestFree);
    for (i = 0; i < p->c.streams; i++) {
        g_clear_object(&p->sio[i]);
        g_clear_object(&p->dio[i]);
    }
    g_free(p->sio);
    g_free(p->dio);
    g_free(p->sfd);
    g_clear_pointer(&p->dirty, cocoDirtySourceFree);
    g_clear_pointer(&p->sfw, cocoFirmwareFree);
    g_clear_pointer(&p->dfw, cocoFirmwareFree);
    g_clear_pointer(&p->spf, cocoEmuPlatformUnref);
    g_clear_pointer(&p->dpf, cocoEmuPlatformUnref);
    g_aligned_free(p->smem);
    g_aligned_free(p->dmem);
}

/* The guest: writes random words into a hot set (256 pages), a warm set
 * (the first 8 MiB) and, now and then, anywhere, while precopy runs; with
 * the bitmap source it logs each write after making it. */
static gpointer
writerThread(gpointer opaque)
{
    Pair *p = opaque;
    g_autoptr(GRand) rand = g_rand_new_with_seed(42);
    uint64_t hot = MIN(p->npages, 256);
    uint64_t warm = MIN(p->npages, 2048);

    while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
        unsigned int i;

        for (i = 0; i < 64; i++) {
            uint64_t range = i == 0 ? p->npages : (i % 2 ? hot : warm);
            uint64_t gfn =
                MIN((uint64_t)g_rand_double_range(rand, 0, (double)range),
                    p->npages - 1);
            uint64_t off = (uint64_t)g_rand_int_range(rand, 0, PAGE / 8);
            volatile uint64_t *w =
                (volatile uint64_t *)(void *)(p->smem + gfn * PAGE) + off;

            *w = ((uint64_t)g_rand_int(rand) << 32) | g_rand_int(rand);
            if (p->c.dirty == DIRTY_BITMAP)
                cocoDirtyBitmapSet(p->dirty, gfn);
        }
        __atomic_fetch_add(&p->writes, 64, __ATOMIC_RELAXED);
        g_usleep(200);
    }
    return NULL;
}

static int
emuDirtyHook(void *opaque, uint64_t gfn, GError **error)
{
    return cocoEmuMarkDirty(opaque, gfn, error);
}

static void
killProgress(const CocoTransferStats *stats, void *opaque)
{
    Pair *p = opaque;

    p->progress_calls++;
    if (p->kill_stream >= 0 && !p->killed && stats->epoch >= p->kill_epoch) {
        shutdown(p->sfd[p->kill_stream], SHUT_RDWR);
        p->killed = 1;
    }
}

static void
pairStart(Pair *p)
{
    g_autoptr(GError) err = NULL;

    p->dst = cocoTransferDestNew(p->dfw, &p->cfg, p->dio, &err);
    g_assert_no_error(err);
    p->src = cocoTransferSourceNew(p->sfw, p->dirty, &p->cfg, p->sio, &err);
    g_assert_no_error(err);
    cocoTransferSourceSetProgress(p->src, killProgress, p);
    if (p->c.fw == FW_EMU)
        cocoTransferSourceSetDirtyHook(p->src, emuDirtyHook, p->sfw);
    g_assert_cmpint(cocoTransferDestStart(p->dst, &err), ==, 0);
    g_assert_no_error(err);
}

/* Precopy with the writer running, blackout, final round. */
static int
pairMigrate(Pair *p, CocoTransferPrecopyResult *res, GError **error)
{
    int ret = -1;

    p->writer = g_thread_new("writer", writerThread, p);
    if (cocoTransferSourceStart(p->src, error) < 0 ||
        cocoTransferSourcePrecopy(p->src, res, error) < 0)
        goto stop;
    ret = 0;
stop:
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    g_thread_join(p->writer);
    if (ret < 0 || cocoTransferSourceSync(p->src, error) < 0)
        return -1;
    if (cocoFirmwareMigrateCmd(p->sfw, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0,
                               NULL, NULL, NULL, error) < 0)
        return -1;
    return cocoTransferSourceFinish(p->src, NVCPUS, error);
}

static void
testMigrate(gconstpointer data)
{
    const Case *c = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) derr = NULL;
    CocoTransferPrecopyResult res;
    CocoTransferStats sstats, dstats;
    Pair p;

    pairInit(&p, c);
    pairStart(&p);
    pairMigrate(&p, &res, &err);
    g_assert_no_error(err);
    g_assert_cmpint(cocoTransferDestWait(p.dst, &derr), ==, 0);
    g_assert_no_error(derr);

    /* The destination holds exactly the source's memory. */
    g_assert_true(memcmp(p.smem, p.dmem, c->mib * 1024 * 1024) == 0);
    g_assert_cmpuint(__atomic_load_n(&p.writes, __ATOMIC_RELAXED), >, 0);
    g_assert_cmpuint(res.epochs, >=, 1);

    cocoTransferSourceGetStats(p.src, &sstats);
    cocoTransferDestGetStats(p.dst, &dstats);
    g_test_message("precopy: %s after %u epochs, %" G_GUINT64_FORMAT
                   " pages pending; %" G_GUINT64_FORMAT
                   " pages, %" G_GUINT64_FORMAT " bytes in %" G_GUINT64_FORMAT
                   " ms, %" G_GUINT64_FORMAT " guest writes",
                   cocoTransferPrecopyEndTypeToString(res.end), res.epochs,
                   res.pending, sstats.pages, sstats.bytes, sstats.elapsed_ms,
                   __atomic_load_n(&p.writes, __ATOMIC_RELAXED));
    g_assert_cmpint(sstats.phase, ==, COCO_TRANSFER_PHASE_DONE);
    g_assert_cmpint(dstats.phase, ==, COCO_TRANSFER_PHASE_DONE);
    g_assert_cmpuint(sstats.pages, >=, p.npages);
    g_assert_cmpuint(sstats.bytes, ==, dstats.bytes);
    g_assert_cmpuint(sstats.bundles, ==, dstats.bundles);
    g_assert_cmpuint(sstats.bundles, >=, p.npages / c->ppb);
    g_assert_cmpuint(sstats.remaining, ==, 0);
    g_assert_cmpuint(p.progress_calls, >=, 2);

    if (c->fw == FW_EMU) {
        size_t slen, dlen;
        const uint8_t *sv, *dv;
        unsigned int i;

        g_assert_cmpint(cocoEmuGetOpState(p.dfw), ==, COCO_EMU_OP_POST_IMPORT);
        g_assert_cmpint(cocoEmuGetOpState(p.sfw), ==, COCO_EMU_OP_POST_EXPORT);
        for (i = 0; i < NVCPUS; i++) {
            sv = cocoEmuGetVcpuState(p.sfw, i, &slen);
            dv = cocoEmuGetVcpuState(p.dfw, i, &dlen);
            g_assert_nonnull(dv);
            g_assert_cmpmem(sv, slen, dv, dlen);
        }
        g_assert_cmpint(cocoFirmwareMigrateCmd(p.dfw, COCO_MIGRATE_CMD_FINISH,
                                               0, NULL, NULL, NULL, &err),
                        ==, 0);
        g_assert_no_error(err);
        g_assert_true(cocoEmuCanRun(p.dfw));
        g_assert_cmpint(cocoFirmwareMigrateCmd(p.sfw, COCO_MIGRATE_CMD_FINISH,
                                               0, NULL, NULL, NULL, &err),
                        ==, 0);
        g_assert_no_error(err);
        g_assert_false(cocoEmuCanRun(p.sfw));
    } else {
        g_assert_true(mockFwStarted(p.dfw));
    }
    pairClear(&p);
}

static bool
isStreamError(const GError *err)
{
    return err && err->domain == COCO_ERROR &&
           (err->code == COCO_ERROR_TRANSFER_IO ||
            err->code == COCO_ERROR_TRANSFER_PROTOCOL);
}

/* Close one stream after epoch 0: both sides stop with a stream error,
 * nothing hangs, and the firmware's abort path brings the source back. */
static void
testKill(gconstpointer data)
{
    const Case *c = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) derr = NULL;
    CocoTransferPrecopyResult res;
    CocoTransferStats stats;
    Pair p;

    pairInit(&p, c);
    p.kill_stream = (int)c->streams / 2;
    p.kill_epoch = 1;
    p.cfg.dirty_target = 0;
    pairStart(&p);
    g_assert_cmpint(pairMigrate(&p, &res, &err), ==, -1);
    g_assert_true(p.killed);
    g_assert_true(isStreamError(err));
    g_assert_cmpint(cocoTransferDestWait(p.dst, &derr), ==, -1);
    g_assert_true(isStreamError(derr));
    cocoTransferSourceGetStats(p.src, &stats);
    g_assert_cmpint(stats.phase, ==, COCO_TRANSFER_PHASE_FAILED);

    /* Later calls give the same error. */
    g_clear_error(&err);
    g_assert_cmpint(cocoTransferSourceFinish(p.src, NVCPUS, &err), ==, -1);
    g_assert_true(isStreamError(err));

    if (c->fw == FW_EMU) {
        uint8_t token[COCO_EMU_TOKEN_SIZE];
        size_t len = sizeof(token);

        g_clear_error(&err);
        /* Before the start token the source aborts without a token. */
        g_assert_cmpint(cocoFirmwareMigrateCmd(p.sfw, COCO_MIGRATE_CMD_ABORT, 0,
                                               NULL, NULL, NULL, &err),
                        ==, 0);
        g_assert_no_error(err);
        g_assert_cmpint(cocoEmuGetOpState(p.sfw), ==, COCO_EMU_OP_RUNNABLE);
        g_assert_true(cocoEmuCanRun(p.sfw));
        g_assert_cmpint(cocoFirmwareMigrateCmd(p.dfw, COCO_MIGRATE_CMD_ABORT, 0,
                                               token, &len, NULL, &err),
                        ==, 0);
        g_assert_no_error(err);
        g_assert_cmpuint(len, ==, COCO_EMU_TOKEN_SIZE);
        g_assert_cmpint(cocoEmuGetOpState(p.dfw), ==,
                        COCO_EMU_OP_FAILED_IMPORT);
    }
    pairClear(&p);
}

/* After the start token the destination gives up: its abort token travels
 * back on stream 0 and lets the source run again. */
static void
testAbortToken(gconstpointer data)
{
    const Case *c = data;
    g_autoptr(GError) err = NULL;
    CocoTransferPrecopyResult res;
    uint8_t token[COCO_TRANSFER_TOKEN_MAX];
    uint8_t got[COCO_TRANSFER_TOKEN_MAX];
    size_t len = sizeof(token);
    size_t glen = sizeof(got);
    Pair p;

    pairInit(&p, c);
    pairStart(&p);
    g_assert_cmpint(pairMigrate(&p, &res, &err), ==, 0);
    g_assert_cmpint(cocoTransferDestWait(p.dst, &err), ==, 0);
    g_assert_no_error(err);

    if (c->fw == FW_EMU) {
        /* Without the token the source may not run again. */
        g_assert_cmpint(cocoFirmwareMigrateCmd(p.sfw, COCO_MIGRATE_CMD_ABORT, 0,
                                               NULL, NULL, NULL, NULL),
                        <, 0);
        g_assert_cmpint(cocoFirmwareMigrateCmd(p.dfw, COCO_MIGRATE_CMD_ABORT, 0,
                                               token, &len, NULL, &err),
                        ==, 0);
        g_assert_no_error(err);
    } else {
        memset(token, 0x33, 64);
        len = 64;
    }
    g_assert_cmpint(cocoTransferDestSendAbortToken(p.dst, token, len, &err), ==,
                    0);
    g_assert_no_error(err);
    g_assert_cmpint(cocoTransferSourceReadAbortToken(p.src, got, &glen, &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_cmpmem(token, len, got, glen);

    if (c->fw == FW_EMU) {
        g_assert_cmpint(cocoFirmwareMigrateCmd(p.sfw, COCO_MIGRATE_CMD_ABORT, 0,
                                               got, &glen, NULL, &err),
                        ==, 0);
        g_assert_no_error(err);
        g_assert_true(cocoEmuCanRun(p.sfw));
    }
    pairClear(&p);
}

/* Pages the firmware refuses during precopy go into a later epoch. */
static void
testRefused(void)
{
    Case c = {FW_MOCK, 3, 16, DIRTY_BITMAP, 4};
    g_autoptr(GError) err = NULL;
    CocoTransferStats stats;
    uint64_t dirty = 0;
    Pair p;

    pairInit(&p, &c);
    pairStart(&p);
    mockFwRefuse(p.sfw, 5, true);
    mockFwRefuse(p.sfw, 700, true);
    g_assert_cmpint(cocoTransferSourceStart(p.src, &err), ==, 0);
    g_assert_cmpint(cocoTransferSourceRound(p.src, &dirty, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(dirty, ==, p.npages);
    cocoTransferSourceGetStats(p.src, &stats);
    g_assert_cmpuint(stats.pages, ==, p.npages - 2);
    g_assert_cmpuint(stats.retried, ==, 2);
    mockFwRefuse(p.sfw, 5, false);
    mockFwRefuse(p.sfw, 700, false);
    g_assert_cmpint(cocoTransferSourceRound(p.src, &dirty, &err), ==, 0);
    g_assert_cmpuint(dirty, ==, 2);
    g_assert_cmpint(cocoTransferSourceFinish(p.src, NVCPUS, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(cocoTransferDestWait(p.dst, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(memcmp(p.smem, p.dmem, c.mib * 1024 * 1024) == 0);

    pairClear(&p);
}

/* A page refused for good in the final epoch fails the transfer. */
static void
testRefusedFinal(void)
{
    Case c = {FW_MOCK, 2, 8, DIRTY_BITMAP, 1};
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) derr = NULL;
    Pair p;

    pairInit(&p, &c);
    pairStart(&p);
    mockFwRefuse(p.sfw, 9, true);
    g_assert_cmpint(cocoTransferSourceStart(p.src, &err), ==, 0);
    g_assert_cmpint(cocoTransferSourceFinish(p.src, NVCPUS, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_STATE);
    g_assert_cmpint(cocoTransferDestWait(p.dst, &derr), ==, -1);
    g_assert_true(isStreamError(derr));
    pairClear(&p);
}

static int
emuGetDirty(void *opaque, uint64_t **gfns, size_t *ngfns, GError **error)
{
    return cocoEmuGetDirty(opaque, true, gfns, ngfns, error);
}

/* A page changes after its export and the dirty source misses it (as a
 * hash-diff source does when the page changed and changed back while
 * the firmware read it): the start token refuses, unless the last scan
 * asks the firmware itself; then the destination gets the new copy. */
static void
testFirmwareDirty(void)
{
    Case c = {FW_EMU, 2, 64, DIRTY_BITMAP, 1};
    int ask;

    for (ask = 0; ask <= 1; ask++) {
        g_autoptr(GError) err = NULL;
        Pair p;

        pairInit(&p, &c);
        pairStart(&p);
        if (ask)
            cocoTransferSourceSetFirmwareDirty(p.src, emuGetDirty, p.sfw);
        g_assert_cmpint(cocoTransferSourceStart(p.src, &err), ==, 0);
        g_assert_cmpint(cocoTransferSourceRound(p.src, NULL, &err), ==, 0);
        g_assert_no_error(err);
        /* The guest writes page 7; nobody logs it. */
        p.smem[7 * PAGE + 100] ^= 0x5a;
        g_assert_cmpint(cocoTransferSourceSync(p.src, &err), ==, 0);
        g_assert_no_error(err);
        if (!ask) {
            g_assert_cmpint(
                cocoFirmwareMigrateCmd(p.sfw, COCO_MIGRATE_CMD_SOURCE_BLACKOUT,
                                       0, NULL, NULL, NULL, &err),
                ==, 0);
            g_assert_no_error(err);
            g_assert_cmpint(cocoTransferSourceFinish(p.src, NVCPUS, &err), ==,
                            -1);
            g_assert_nonnull(err);
            g_assert_nonnull(
                strstr(err->message, "changed without being reported dirty"));
            pairClear(&p);
            continue;
        }
        g_assert_cmpint(cocoFirmwareMigrateCmd(p.sfw,
                                               COCO_MIGRATE_CMD_SOURCE_BLACKOUT,
                                               0, NULL, NULL, NULL, &err),
                        ==, 0);
        g_assert_no_error(err);
        g_assert_cmpint(cocoTransferSourceFinish(p.src, NVCPUS, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_cmpint(cocoTransferDestWait(p.dst, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_true(memcmp(p.smem, p.dmem, c.mib * 1024 * 1024) == 0);
        pairClear(&p);
    }
}

/* No precopy at all: the whole memory moves at the switchover gate. */
static void
testNoPrecopy(void)
{
    Case c = {FW_MOCK, 2, 512, DIRTY_HASH, 4};
    g_autoptr(GError) err = NULL;
    Pair p;

    pairInit(&p, &c);
    pairStart(&p);
    g_assert_cmpint(cocoTransferSourceStart(p.src, &err), ==, 0);
    g_assert_cmpint(cocoTransferSourceFinish(p.src, NVCPUS, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(cocoTransferDestWait(p.dst, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(memcmp(p.smem, p.dmem, c.mib * 1024 * 1024) == 0);
    g_assert_cmpuint(mockFwEpoch(p.dfw), ==, 1);
    pairClear(&p);
}

/* A guest that dirties one page per progress report never converges
 * below one page. */
static void
dirtyOneProgress(const CocoTransferStats *stats, void *opaque)
{
    Pair *p = opaque;

    cocoDirtyBitmapSet(p->dirty, stats->epoch % p->npages);
}

/* Why precopy stops: converged (nothing written), the epoch limit, the
 * time limit; the final round still completes the migration. */
static void
testPrecopyEnds(void)
{
    static const struct {
        bool writes;
        uint32_t max_epochs;
        uint64_t max_time_ms;
        CocoTransferPrecopyEnd end;
    } cases[] = {
        {false, 5, 0, COCO_TRANSFER_PRECOPY_CONVERGED},
        {true, 3, 0, COCO_TRANSFER_PRECOPY_MAX_EPOCHS},
        {true, 100000, 1, COCO_TRANSFER_PRECOPY_MAX_TIME},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        Case c = {FW_MOCK, 2, 32, DIRTY_BITMAP, 2};
        g_autoptr(GError) err = NULL;
        CocoTransferPrecopyResult res;
        Pair p;

        pairInit(&p, &c);
        p.cfg.dirty_target = 0;
        p.cfg.max_epochs = cases[i].max_epochs;
        p.cfg.max_time_ms = cases[i].max_time_ms;
        pairStart(&p);
        if (cases[i].writes)
            cocoTransferSourceSetProgress(p.src, dirtyOneProgress, &p);
        g_assert_cmpint(cocoTransferSourceStart(p.src, &err), ==, 0);
        g_assert_cmpint(cocoTransferSourcePrecopy(p.src, &res, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_cmpint(res.end, ==, cases[i].end);
        switch (cases[i].end) {
        case COCO_TRANSFER_PRECOPY_CONVERGED:
            g_assert_cmpuint(res.epochs, ==, 1);
            g_assert_cmpuint(res.pending, ==, 0);
            break;
        case COCO_TRANSFER_PRECOPY_MAX_EPOCHS:
            g_assert_cmpuint(res.epochs, ==, 3);
            g_assert_cmpuint(res.pending, >=, 1);
            break;
        case COCO_TRANSFER_PRECOPY_MAX_TIME:
        case COCO_TRANSFER_PRECOPY_LAST:
        default:
            g_assert_cmpuint(res.epochs, <, 100000);
            break;
        }
        g_assert_cmpint(cocoTransferSourceSync(p.src, &err), ==, 0);
        g_assert_cmpint(cocoTransferSourceFinish(p.src, NVCPUS, &err), ==, 0);
        g_assert_cmpint(cocoTransferDestWait(p.dst, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_true(memcmp(p.smem, p.dmem, c.mib * 1024 * 1024) == 0);
        g_assert_cmpuint(mockFwEpoch(p.dfw), ==, res.epochs + 1);
        pairClear(&p);
    }
}

/* Cancelling from another thread stops the source and the peer sees it. */
static void
testCancel(void)
{
    Case c = {FW_MOCK, 2, 64, DIRTY_BITMAP, 4};
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) derr = NULL;
    Pair p;

    pairInit(&p, &c);
    pairStart(&p);
    g_assert_cmpint(cocoTransferSourceStart(p.src, &err), ==, 0);
    cocoTransferSourceCancel(p.src);
    g_assert_cmpint(cocoTransferSourceRound(p.src, NULL, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_MIGRATION_ABORTED);
    g_assert_cmpint(cocoTransferDestWait(p.dst, &derr), ==, -1);
    g_assert_true(isStreamError(derr));
    pairClear(&p);
}

/* The dirty hook runs on a stream thread: cancel from there, in the
 * middle of a scan job. */
static int
cancelHook(void *opaque, uint64_t gfn, GError **error)
{
    Pair *p = opaque;

    cocoTransferSourceCancel(p->src);
    return 0;
}

static void
testCancelRunning(void)
{
    Case c = {FW_MOCK, 3, 16, DIRTY_BITMAP, 2};
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) derr = NULL;
    CocoTransferPrecopyResult res;
    CocoTransferStats stats;
    Pair p;

    pairInit(&p, &c);
    p.cfg.dirty_target = 0;
    pairStart(&p);
    cocoTransferSourceSetProgress(p.src, dirtyOneProgress, &p);
    cocoTransferSourceSetDirtyHook(p.src, cancelHook, &p);
    g_assert_cmpint(cocoTransferSourceStart(p.src, &err), ==, 0);
    g_assert_cmpint(cocoTransferSourcePrecopy(p.src, &res, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_MIGRATION_ABORTED);
    cocoTransferSourceGetStats(p.src, &stats);
    g_assert_cmpint(stats.phase, ==, COCO_TRANSFER_PHASE_FAILED);
    g_assert_cmpuint(stats.epoch, ==, 1);
    g_assert_cmpint(cocoTransferDestWait(p.dst, &derr), ==, -1);
    g_assert_true(isStreamError(derr));
    pairClear(&p);
}

/* A stream thread that stays busy until the driving thread ticked: the
 * tick comes while the epoch runs, with the progress so far. */
typedef struct {
    GMutex lock;
    GCond cond;
    unsigned int ticks;
    uint32_t epoch;
} TickWait;

static int
tickWaitHook(void *opaque, uint64_t gfn G_GNUC_UNUSED,
             GError **error G_GNUC_UNUSED)
{
    TickWait *t = opaque;
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    g_mutex_lock(&t->lock);
    while (t->ticks == 0 && g_cond_wait_until(&t->cond, &t->lock, end))
        ;
    g_mutex_unlock(&t->lock);
    return 0;
}

static void
tickCount(const CocoTransferStats *stats, void *opaque)
{
    TickWait *t = opaque;

    g_mutex_lock(&t->lock);
    t->ticks++;
    t->epoch = stats->epoch;
    g_cond_broadcast(&t->cond);
    g_mutex_unlock(&t->lock);
}

static void
testTick(void)
{
    Case c = {FW_MOCK, 2, 16, DIRTY_BITMAP, 1};
    g_autoptr(GError) err = NULL;
    TickWait t = {0};
    Pair p;

    g_mutex_init(&t.lock);
    g_cond_init(&t.cond);
    pairInit(&p, &c);
    pairStart(&p);
    cocoTransferSourceSetTick(p.src, 1, tickCount, &t);
    g_assert_cmpint(cocoTransferSourceStart(p.src, &err), ==, 0);
    g_assert_cmpint(cocoTransferSourceRound(p.src, NULL, &err), ==, 0);
    cocoTransferSourceSetDirtyHook(p.src, tickWaitHook, &t);
    g_mutex_lock(&t.lock);
    t.ticks = 0;
    g_mutex_unlock(&t.lock);
    p.smem[5 * 4096] ^= 1;
    cocoDirtyBitmapSet(p.dirty, 5);
    /* The scan's hook waits for a tick: it can only come during the
     * round, from the thread driving it. */
    g_assert_cmpint(cocoTransferSourceRound(p.src, NULL, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(t.ticks, >=, 1);
    g_assert_cmpuint(t.epoch, ==, 1);
    /* Off: no tick at all. */
    cocoTransferSourceSetTick(p.src, 0, tickCount, &t);
    t.ticks = 0;
    g_assert_cmpint(cocoTransferSourceFinish(p.src, NVCPUS, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(t.ticks, ==, 0);
    g_assert_cmpint(cocoTransferDestWait(p.dst, &err), ==, 0);
    g_assert_no_error(err);
    pairClear(&p);
    g_mutex_clear(&t.lock);
    g_cond_clear(&t.cond);
}

/*
 * The host's switchovers first: while another migration sharing the
 * source's priority is in its downtime, the source's bulk work (a
 * pre-copy round) waits, at most the bounded time per piece, and counts
 * it; a source whose own guest is down (urgent) and the final epoch wait
 * for nothing.
 */
static void
testYield(void)
{
    Case c = {FW_MOCK, 1, 256, DIRTY_BITMAP, 1};
    g_autoptr(CocoTransferPriority) prio =
        cocoTransferPriorityNew(60 * G_USEC_PER_SEC);
    g_autoptr(GError) err = NULL;
    CocoTransferStats st;
    uint64_t yielded;
    guint64 id;
    Pair p;

    pairInit(&p, &c);
    pairStart(&p);
    cocoTransferSourceSetPriority(p.src, prio);
    g_assert_cmpint(cocoTransferSourceStart(p.src, &err), ==, 0);
    /* No downtime: nothing waits. */
    g_assert_cmpint(cocoTransferSourceRound(p.src, NULL, &err), ==, 0);
    cocoTransferSourceGetStats(p.src, &st);
    g_assert_cmpuint(st.yielded_ms, ==, 0);

    /* Another migration's guest is down and stays down: each piece of
     * the round waits its bound (half a second), then goes anyway. */
    id = cocoTransferPriorityEnter(prio);
    g_assert_cmpuint(cocoTransferPriorityDowntimes(prio), ==, 1);
    p.smem[5 * PAGE] ^= 1;
    cocoDirtyBitmapSet(p.dirty, 5);
    g_assert_cmpint(cocoTransferSourceRound(p.src, NULL, &err), ==, 0);
    g_assert_no_error(err);
    cocoTransferSourceGetStats(p.src, &st);
    g_assert_cmpuint(st.yielded_ms, >=, 400);
    yielded = st.yielded_ms;

    /* This source's own guest is down: it waits for nobody. */
    cocoTransferSourceSetUrgent(p.src, true);
    p.smem[6 * PAGE] ^= 1;
    cocoDirtyBitmapSet(p.dirty, 6);
    g_assert_cmpint(cocoTransferSourceRound(p.src, NULL, &err), ==, 0);
    cocoTransferSourceGetStats(p.src, &st);
    g_assert_cmpuint(st.yielded_ms, ==, yielded);
    cocoTransferSourceSetUrgent(p.src, false);

    /* The final epoch is downtime itself: no wait either. */
    p.smem[7 * PAGE] ^= 1;
    cocoDirtyBitmapSet(p.dirty, 7);
    g_assert_cmpint(cocoTransferSourceFinish(p.src, NVCPUS, &err), ==, 0);
    g_assert_no_error(err);
    cocoTransferSourceGetStats(p.src, &st);
    g_assert_cmpuint(st.yielded_ms, ==, yielded);
    g_assert_cmpint(cocoTransferDestWait(p.dst, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(memcmp(p.smem, p.dmem, p.npages * PAGE), ==, 0);
    cocoTransferPriorityLeave(prio, id);
    g_assert_cmpuint(cocoTransferPriorityDowntimes(prio), ==, 0);
    pairClear(&p);
}

/* A yield ends as soon as the last downtime does, when the downtime is
 * older than the priority's age bound, and at a cancel. */
typedef struct {
    CocoTransferPriority *prio;
    guint64 id;
} YieldLeave;

static gpointer
yieldLeaveLater(gpointer opaque)
{
    YieldLeave *l = opaque;

    g_usleep(50000);
    cocoTransferPriorityLeave(l->prio, l->id);
    return NULL;
}

static void
testYieldEnds(void)
{
    g_autoptr(CocoTransferPriority) prio =
        cocoTransferPriorityNew(60 * G_USEC_PER_SEC);
    g_autoptr(CocoTransferPriority) young = cocoTransferPriorityNew(100 * 1000);
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    YieldLeave l = {prio, 0};
    guint64 a;
    guint64 id;
    GThread *t;

    g_assert_cmpint(cocoTransferPriorityYield(prio, 10 * G_USEC_PER_SEC, NULL),
                    ==, 0);
    a = cocoTransferPriorityEnter(prio);
    l.id = cocoTransferPriorityEnter(prio);
    g_assert_cmpuint(a, !=, l.id);
    cocoTransferPriorityLeave(prio, a);
    t = g_thread_new("leave", yieldLeaveLater, &l);
    /* Returns at the Leave, long before its 10 s bound. */
    g_assert_cmpint(cocoTransferPriorityYield(prio, 10 * G_USEC_PER_SEC, NULL),
                    <, 5 * G_USEC_PER_SEC);
    g_thread_join(t);
    g_assert_cmpuint(cocoTransferPriorityDowntimes(prio), ==, 0);

    /* A downtime past the age bound (0.1 s) holds nothing back. */
    id = cocoTransferPriorityEnter(young);
    g_assert_cmpint(cocoTransferPriorityYield(young, 10 * G_USEC_PER_SEC, NULL),
                    <, 5 * G_USEC_PER_SEC);
    g_assert_cmpint(cocoTransferPriorityYield(young, 10 * G_USEC_PER_SEC, NULL),
                    ==, 0);
    g_assert_cmpuint(cocoTransferPriorityDowntimes(young), ==, 1);
    cocoTransferPriorityLeave(young, id);

    id = cocoTransferPriorityEnter(prio);
    g_cancellable_cancel(cancel);
    g_assert_cmpint(
        cocoTransferPriorityYield(prio, 10 * G_USEC_PER_SEC, cancel), <,
        5 * G_USEC_PER_SEC);
    cocoTransferPriorityLeave(prio, id);
}

/* Source and destination must agree on the configuration. */
static void
testMismatch(void)
{
    Case c = {FW_MOCK, 2, 64, DIRTY_BITMAP, 1};
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) derr = NULL;
    CocoTransferConfig dcfg;
    Pair p;

    pairInit(&p, &c);
    dcfg = p.cfg;
    dcfg.pages_per_bundle = 32;
    p.dst = cocoTransferDestNew(p.dfw, &dcfg, p.dio, &err);
    g_assert_no_error(err);
    p.src = cocoTransferSourceNew(p.sfw, p.dirty, &p.cfg, p.sio, &err);
    g_assert_no_error(err);
    g_assert_cmpint(cocoTransferDestStart(p.dst, &err), ==, 0);
    /* The destination may refuse (and close) before Start has written
     * everything; either way the source fails at the latest at Finish. */
    if (cocoTransferSourceStart(p.src, &err) == 0)
        cocoTransferSourceFinish(p.src, NVCPUS, &err);
    g_assert_true(isStreamError(err));
    g_assert_cmpint(cocoTransferDestWait(p.dst, &derr), ==, -1);
    g_assert_error(derr, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
    pairClear(&p);
}

/* A relay damages stream 1: a record header byte gives a protocol error,
 * a bundle byte the firmware's integrity error, fatal to the destination
 * VM; the source sees its stream fail and can abort. */
static void
testCorrupt(gconstpointer data)
{
    Case c = {FW_EMU, 2, 64, DIRTY_BITMAP, 4};
    int64_t at = GPOINTER_TO_INT(data);
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) derr = NULL;
    CocoTransferPrecopyResult res;
    Pair p;

    pairInitCorrupt(&p, &c, at);
    pairStart(&p);
    g_assert_cmpint(pairMigrate(&p, &res, &err), ==, -1);
    g_assert_true(isStreamError(err));
    g_assert_cmpint(cocoTransferDestWait(p.dst, &derr), ==, -1);
    if (at < COCO_TRANSFER_HEADER_SIZE * 3 + COCO_TRANSFER_HELLO_SIZE) {
        g_assert_error(derr, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
        g_assert_cmpint(cocoEmuGetOpState(p.dfw), ==,
                        COCO_EMU_OP_MEMORY_IMPORT);
    } else {
        g_assert_error(derr, COCO_ERROR, COCO_ERROR_FW_INTEGRITY);
        g_assert_cmpint(cocoEmuGetOpState(p.dfw), ==,
                        COCO_EMU_OP_FAILED_IMPORT);
    }
    g_clear_error(&err);
    g_assert_cmpint(cocoFirmwareMigrateCmd(p.sfw, COCO_MIGRATE_CMD_ABORT, 0,
                                           NULL, NULL, NULL, &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_true(cocoEmuCanRun(p.sfw));
    pairClear(&p);
}

static void
addCase(const char *prefix, GTestDataFunc func, FwKind fw, unsigned int streams,
        unsigned int ppb, DirtyKind dirty, size_t mib)
{
    Case *c = g_new0(Case, 1);
    g_autofree char *name = NULL;

    c->fw = fw;
    c->streams = streams;
    c->ppb = ppb;
    c->dirty = dirty;
    c->mib = mib;
    name = g_strdup_printf("%s/%us-%up-%s", prefix, streams, ppb,
                           dirtyNames[dirty]);
    g_test_add_data_func_full(name, c, func, g_free);
}

/*
 * The agent's configuration over a RAM file with holes: the firmware's own
 * dirty log, a guest that touches a page it never used and rewrites
 * another during the precopy. Only the pages in use are sent (and read),
 * the destination reserves them before the first bundle and ends up with
 * the same holes and the same content.
 */
static void
testHoles(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) derr = NULL;
    Case c = {FW_EMU, 2, 64, DIRTY_FWLOG, 4};
    size_t size = c.mib * 1024 * 1024;
    int sfd = memfd_create("coco-src", 0);
    int dfd = memfd_create("coco-dst", 0);
    uint8_t *sm;
    uint8_t *dm;
    CocoTransferStats st;
    uint64_t used = 0;
    uint64_t g;
    struct stat sst, dst;
    Pair p;

    g_assert_cmpint(sfd, >=, 0);
    g_assert_cmpint(dfd, >=, 0);
    g_assert_cmpint(ftruncate(sfd, size), ==, 0);
    g_assert_cmpint(ftruncate(dfd, size), ==, 0);
    ramFd[0] = sfd;
    ramFd[1] = dfd;
    pairInit(&p, &c);
    ramFd[0] = ramFd[1] = -1;
    sm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
    g_assert_true(sm != MAP_FAILED);
    /* The guest uses every 7th page and a run of 100. */
    for (g = 0; g < p.npages; g++) {
        if (g % 7 == 0 || (g >= 300 && g < 400)) {
            memcpy(sm + g * PAGE, p.smem + g * PAGE, PAGE);
            used++;
        }
    }
    pairStart(&p);
    g_assert_cmpint(cocoTransferSourceStart(p.src, &err), ==, 0);
    g_assert_cmpint(cocoTransferSourceRound(p.src, NULL, &err), ==, 0);
    g_assert_no_error(err);
    cocoTransferSourceGetStats(p.src, &st);
    g_assert_cmpuint(st.pages, ==, used);
    /* Touched for the first time, and rewritten. */
    sm[1 * PAGE + 9] = 0x42;
    sm[301 * PAGE] ^= 0xFF;
    used++;
    g_assert_cmpint(cocoTransferSourceRound(p.src, NULL, &err), ==, 0);
    g_assert_cmpint(cocoTransferSourceSync(p.src, &err), ==, 0);
    g_assert_cmpint(cocoFirmwareMigrateCmd(p.sfw,
                                           COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0,
                                           NULL, NULL, NULL, &err),
                    ==, 0);
    g_assert_cmpint(cocoTransferSourceFinish(p.src, NVCPUS, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(cocoTransferDestWait(p.dst, &derr), ==, 0);
    g_assert_no_error(derr);
    cocoTransferSourceGetStats(p.src, &st);
    g_assert_cmpuint(st.pages, ==, used + 1);

    /* Nothing of the holes was read in on the source, or written on the
     * destination; the content is the same. */
    g_assert_cmpint(fstat(sfd, &sst), ==, 0);
    g_assert_cmpint(fstat(dfd, &dst), ==, 0);
    g_assert_cmpint(sst.st_blocks * 512, ==, used * PAGE);
    g_assert_cmpint(dst.st_blocks, ==, sst.st_blocks);
    dm = mmap(NULL, size, PROT_READ, MAP_SHARED, dfd, 0);
    g_assert_true(dm != MAP_FAILED);
    g_assert_true(memcmp(sm, dm, size) == 0);
    munmap(dm, size);
    munmap(sm, size);
    pairClear(&p);
    close(sfd);
    close(dfd);
}

/* A scan's dirty-log calls: a few per stream thread, 512 to 16384 pages. */
static void
testScanClaim(void)
{
    g_assert_cmpuint(cocoTransferSourceScanClaim(64, 4), ==, 512);
    g_assert_cmpuint(cocoTransferSourceScanClaim(49152, 4), ==, 3072);
    g_assert_cmpuint(cocoTransferSourceScanClaim(262144, 4), ==, 16384);
    g_assert_cmpuint(cocoTransferSourceScanClaim(2097152, 4), ==, 16384);
    g_assert_cmpuint(cocoTransferSourceScanClaim(262144, 1), ==, 16384);
    g_assert_cmpuint(cocoTransferSourceScanClaim(262144, 512), ==, 512);
    g_assert_cmpuint(cocoTransferSourceScanClaim(262144, 0), ==, 16384);
}

int
main(int argc, char **argv)
{
    static const unsigned int streams[] = {1, 4, 16};
    static const unsigned int ppbs[] = {1, 64, 512};
    size_t i, j;

    g_test_init(&argc, &argv, NULL);

    for (i = 0; i < G_N_ELEMENTS(streams); i++) {
        for (j = 0; j < G_N_ELEMENTS(ppbs); j++)
            addCase("/transfer/emu/migrate", testMigrate, FW_EMU, streams[i],
                    ppbs[j], (i + j) % 2 ? DIRTY_HASH : DIRTY_BITMAP, 64);
    }
    addCase("/transfer/emu/migrate", testMigrate, FW_EMU, 4, 64, DIRTY_EMULOG,
            16);
    addCase("/transfer/emu/migrate", testMigrate, FW_EMU, 4, 64, DIRTY_FWLOG,
            16);
    addCase("/transfer/emu/migrate", testMigrate, FW_EMU, 2, 512, DIRTY_FWLOG,
            16);
    g_test_add_func("/transfer/emu/holes", testHoles);
    /* The firmware's own log in scan calls of 4096 pages. */
    addCase("/transfer/emu/migrate-128m", testMigrate, FW_EMU, 2, 64,
            DIRTY_FWLOG, 128);
    g_test_add_func("/transfer/scan-claim", testScanClaim);
    /* 1 GiB over 4 streams through the emulated firmware with the guest
     * writing during precopy (about 3 s here, 5 s under ASan). */
    addCase("/transfer/emu/migrate-1g", testMigrate, FW_EMU, 4, 512,
            DIRTY_BITMAP, 1024);
    addCase("/transfer/emu/kill", testKill, FW_EMU, 4, 64, DIRTY_HASH, 16);
    addCase("/transfer/emu/abort-token", testAbortToken, FW_EMU, 2, 64,
            DIRTY_BITMAP, 4);
    /* Stream 1 starts with HELLO (24 + 32 bytes), then a memory record:
     * its header at 56, the bundle from 80. */
    g_test_add_data_func("/transfer/emu/corrupt/header-magic",
                         GINT_TO_POINTER(56), testCorrupt);
    g_test_add_data_func("/transfer/emu/corrupt/header-type",
                         GINT_TO_POINTER(61), testCorrupt);
    g_test_add_data_func("/transfer/emu/corrupt/bundle-mac",
                         GINT_TO_POINTER(80 + 50), testCorrupt);
    g_test_add_data_func("/transfer/emu/corrupt/bundle-page",
                         GINT_TO_POINTER(80 + 64 + 64 * 24 + 5000),
                         testCorrupt);

    addCase("/transfer/mock/migrate", testMigrate, FW_MOCK, 3, 7, DIRTY_BITMAP,
            8);
    addCase("/transfer/mock/migrate", testMigrate, FW_MOCK, 5, 512, DIRTY_HASH,
            8);
    addCase("/transfer/mock/kill", testKill, FW_MOCK, 4, 16, DIRTY_BITMAP, 8);
    addCase("/transfer/mock/abort-token", testAbortToken, FW_MOCK, 1, 64,
            DIRTY_HASH, 2);
    addCase("/transfer/mock/migrate", testMigrate, FW_MOCK, 512, 1, DIRTY_HASH,
            4);
    g_test_add_func("/transfer/mock/refused", testRefused);
    g_test_add_func("/transfer/mock/refused-final", testRefusedFinal);
    g_test_add_func("/transfer/mock/no-precopy", testNoPrecopy);
    g_test_add_func("/transfer/mock/cancel", testCancel);
    g_test_add_func("/transfer/mock/precopy-ends", testPrecopyEnds);
    g_test_add_func("/transfer/mock/cancel-running", testCancelRunning);
    g_test_add_func("/transfer/mock/mismatch", testMismatch);
    g_test_add_func("/transfer/mock/tick", testTick);
    g_test_add_func("/transfer/mock/yield", testYield);
    g_test_add_func("/transfer/priority/yield-ends", testYieldEnds);
    g_test_add_func("/transfer/emu/firmware-dirty", testFirmwareDirty);

    return g_test_run();
}
