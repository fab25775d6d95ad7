/*
 * cocophasetransfertest.c: the phase engine with the multi-stream transfer
 * engine as its data path (socketpairs, two emulated firmwares)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "firmware/cocoemu.h"
#include "migration/cocomigrationsession.h"
#include "migration/cocophasetransfer.h"
#include "transfer/cocodirtybitmap.h"

#include <errno.h>
#include <sys/socket.h>

#define NPAGES 64
#define MEMSIZE (NPAGES * COCO_EMU_PAGE_SIZE)
#define NVCPUS 2
#define NSTREAMS 2
#define WAIT_US (20 * G_USEC_PER_SEC)

#define SRC COCO_FIRMWARE_ROLE_SOURCE
#define DST COCO_FIRMWARE_ROLE_DESTINATION

typedef struct {
    CocoEmuPlatform *spf;
    CocoEmuPlatform *dpf;
    CocoMigrationDef def;
    uint8_t *smem;
    uint8_t *dmem;
    CocoFirmware *sfw;
    CocoFirmware *dfw;
    CocoDirtySource *dirty;
    CocoTransferDest *xdst; /* owned by the destination's data path */
    CocoMigrationSession *src;
    CocoMigrationSession *dst;
    CocoPhaseTransferTracker tracker;
    GQueue to_src;
    GQueue to_dst;
    bool link_down;
    /* asynchronous rounds (cocoPhaseDataSetAsyncRounds()) */
    unsigned int round_ends;
    GError *round_err;
    /* last decision per role and gate: verdict + 1, 0 = none */
    int verdict[2][COCO_PHASE_GATE_LAST];
    int code[2][COCO_PHASE_GATE_LAST];
} Harness;

typedef struct {
    Harness *h;
    CocoFirmwareRole role;
} Ctx;

static Ctx sctx;
static Ctx dctx;

static int
sendTo(Harness *h, GQueue *q, const CocoPhaseMessage *msg, GError **error)
{
    GBytes *b;

    if (h->link_down)
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_IO, "%s", "link down");
    if (!(b = cocoPhaseMessageEncode(msg, error)))
        return -1;
    g_queue_push_tail(q, b);
    return 0;
}

static int
srcSend(void *opaque, const CocoPhaseMessage *msg, GError **error)
{
    Harness *h = opaque;

    return sendTo(h, &h->to_dst, msg, error);
}

static int
dstSend(void *opaque, const CocoPhaseMessage *msg, GError **error)
{
    Harness *h = opaque;

    return sendTo(h, &h->to_src, msg, error);
}

static void
decide(void *opaque, const CocoPhaseDecision *d)
{
    Ctx *c = opaque;

    if (g_test_verbose())
        g_printerr(
            "decision %s %s %s %s\n", cocoFirmwareRoleTypeToString(c->role),
            cocoPhaseGateTypeToString(d->gate),
            cocoPhaseVerdictTypeToString(d->verdict), NULLSTR(d->message));
    /* pause and resume hold no gate */
    if (d->verdict == COCO_PHASE_VERDICT_PAUSE ||
        d->verdict == COCO_PHASE_VERDICT_RESUME)
        return;
    c->h->verdict[c->role][d->gate] = d->verdict + 1;
    c->h->code[c->role][d->gate] = d->code;
}

static GIOStream *
socketStream(int fd)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GSocket) sock = g_socket_new_from_fd(fd, &err);

    g_assert_no_error(err);
    return G_IO_STREAM(g_socket_connection_factory_create_connection(sock));
}

/* Set: the firmware refuses the next dirty page (testRoundFailAsync). */
static gint failDirtyHook;

static int
emuDirtyHook(void *opaque, uint64_t gfn, GError **error)
{
    if (g_atomic_int_get(&failDirtyHook))
        return cocoErrorSet(
            error, COCO_ERROR_FW_STATE,
            "test: the firmware refuses dirty page %" G_GUINT64_FORMAT, gfn);
    return cocoEmuMarkDirty(opaque, gfn, error);
}

/* The end of a round on its thread, in the test's main context. */
static void
onRoundEnd(const GError *error, void *opaque)
{
    Harness *h = opaque;

    h->round_ends++;
    if (error && !h->round_err)
        h->round_err = g_error_copy(error);
}

static void
harnessInit(Harness *h, unsigned int rounds, bool async)
{
    CocoMigrationSessionConfig sc = {0};
    CocoMigrationSessionConfig dc = {0};
    CocoTransferConfig cfg;
    GIOStream *sio[NSTREAMS];
    GIOStream *dio[NSTREAMS];
    CocoTransferSource *xsrc;
    CocoFirmwareVm vm = {.uuid = {0x42}, .nvcpus = NVCPUS, .memory = MEMSIZE};
    uint8_t agent[COCO_AGENT_HASH_LEN];
    GError *err = NULL;
    size_t i;

    memset(h, 0, sizeof(*h));
    memset(agent, 0x3C, sizeof(agent));
    h->spf = cocoEmuPlatformNew(&err);
    g_assert_no_error(err);
    h->dpf = cocoEmuPlatformNew(&err);
    g_assert_no_error(err);
    cocoEmuPlatformSetAgentHash(h->spf, agent);
    cocoEmuPlatformSetAgentHash(h->dpf, agent);
    h->def.technology = COCO_TECHNOLOGY_TDX;
    h->def.has_agent = true;
    memcpy(h->def.agent_hash, agent, sizeof(agent));
    h->def.has_streams = true;
    h->def.forward_streams = NSTREAMS;
    h->sfw = cocoEmuNew(SRC, h->spf, &h->def, &vm, &err);
    g_assert_no_error(err);
    h->dfw = cocoEmuNew(DST, h->dpf, &h->def, &vm, &err);
    g_assert_no_error(err);
    h->smem = g_malloc(MEMSIZE);
    h->dmem = g_malloc0(MEMSIZE);
    for (i = 0; i < MEMSIZE; i++)
        h->smem[i] = (uint8_t)(i * 31 + i / COCO_EMU_PAGE_SIZE);
    g_assert_cmpint(cocoEmuAttachMemory(h->sfw, h->smem, MEMSIZE, &err), ==, 0);
    g_assert_cmpint(cocoEmuAttachMemory(h->dfw, h->dmem, MEMSIZE, &err), ==, 0);

    for (i = 0; i < NSTREAMS; i++) {
        int sv[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                        ==, 0);
        sio[i] = socketStream(sv[0]);
        dio[i] = socketStream(sv[1]);
    }
    cocoTransferConfigInit(&cfg, NULL);
    cfg.streams = NSTREAMS;
    cfg.pages_per_bundle = 16;
    cfg.session_id = 77;
    h->dirty = cocoDirtyBitmapNew(NPAGES);
    h->xdst = cocoTransferDestNew(h->dfw, &cfg, dio, &err);
    g_assert_no_error(err);
    xsrc = cocoTransferSourceNew(h->sfw, h->dirty, &cfg, sio, &err);
    g_assert_no_error(err);
    cocoTransferSourceSetDirtyHook(xsrc, emuDirtyHook, h->sfw);
    for (i = 0; i < NSTREAMS; i++) {
        g_object_unref(sio[i]);
        g_object_unref(dio[i]);
    }
    g_assert_cmpint(cocoTransferDestStart(h->xdst, &err), ==, 0);
    g_assert_no_error(err);

    g_queue_init(&h->to_src);
    g_queue_init(&h->to_dst);
    sctx.h = dctx.h = h;
    sctx.role = SRC;
    dctx.role = DST;
    sc.role = SRC;
    sc.fw = h->sfw;
    sc.nvcpus = NVCPUS;
    sc.precopy_rounds = rounds;
    sc.data = cocoPhaseDataNewTransferSource(xsrc);
    if (async)
        cocoPhaseDataSetAsyncRounds(sc.data, NULL, onRoundEnd, h);
    sc.send = srcSend;
    sc.send_opaque = h;
    sc.decide = decide;
    sc.decide_opaque = &sctx;
    h->src = cocoMigrationSessionNew(&sc, &err);
    g_assert_no_error(err);
    dc.role = DST;
    dc.fw = h->dfw;
    dc.data = cocoPhaseDataNewTransferDest(h->xdst);
    dc.send = dstSend;
    dc.send_opaque = h;
    dc.decide = decide;
    dc.decide_opaque = &dctx;
    h->dst = cocoMigrationSessionNew(&dc, &err);
    g_assert_no_error(err);
}

static void
harnessClear(Harness *h)
{
    cocoMigrationSessionFree(h->src);
    cocoMigrationSessionFree(h->dst);
    cocoDirtySourceFree(h->dirty);
    cocoFirmwareFree(h->sfw);
    cocoFirmwareFree(h->dfw);
    cocoEmuPlatformUnref(h->spf);
    cocoEmuPlatformUnref(h->dpf);
    g_queue_clear_full(&h->to_src, (GDestroyNotify)g_bytes_unref);
    g_queue_clear_full(&h->to_dst, (GDestroyNotify)g_bytes_unref);
    g_clear_error(&h->round_err);
    /* Notices of rounds already joined: they must do nothing. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_free(h->smem);
    g_free(h->dmem);
}

static void
event(Harness *h, CocoFirmwareRole role, CocoPhaseEvent ev)
{
    g_autoptr(GError) err = NULL;

    if (cocoMigrationSessionHandleEvent(role == SRC ? h->src : h->dst, ev,
                                        &err) < 0 &&
        g_test_verbose())
        g_printerr("%s %s: %s\n", cocoFirmwareRoleTypeToString(role),
                   cocoPhaseEventTypeToString(ev), err->message);
}

/* Carry messages both ways (in order per direction). */
static bool
carry(Harness *h)
{
    bool did = false;
    int dir;

    for (dir = 0; dir < 2; dir++) {
        GQueue *q = dir == 0 ? &h->to_dst : &h->to_src;
        CocoMigrationSession *to = dir == 0 ? h->dst : h->src;
        GBytes *b;

        while ((b = g_queue_pop_head(q))) {
            g_autoptr(GError) err = NULL;
            CocoPhaseMessage msg;
            gsize len;
            const void *data = g_bytes_get_data(b, &len);

            g_assert_cmpint(cocoPhaseMessageDecode(data, len, &msg, &err), ==,
                            0);
            if (cocoMigrationSessionReceive(to, &msg, &err) < 0 &&
                g_test_verbose())
                g_printerr("receive %s: %s\n",
                           cocoPhaseEventTypeToString(msg.type), err->message);
            g_bytes_unref(b);
            did = true;
        }
    }
    return did;
}

static bool
progress(Harness *h)
{
    CocoTransferStats st;
    CocoPhaseEvent ev;
    bool did = false;

    cocoTransferDestGetStats(h->xdst, &st);
    while ((ev = cocoPhaseTransferTrackerNext(&h->tracker, &st)) !=
           COCO_PHASE_EVENT_LAST) {
        event(h, DST, ev);
        did = true;
    }
    return did;
}

/* Run the agents until @gate of @role is decided (or, with
 * COCO_PHASE_GATE_LAST, until nothing moves any more). */
static void
pumpUntil(Harness *h, CocoFirmwareRole role, CocoPhaseGate gate)
{
    gint64 end = g_get_monotonic_time() + WAIT_US;

    while (g_get_monotonic_time() < end) {
        bool did = g_main_context_iteration(NULL, FALSE);

        did |= carry(h);
        did |= progress(h);
        did |= carry(h);
        if (gate != COCO_PHASE_GATE_LAST && h->verdict[role][gate])
            return;
        if (!did) {
            if (gate == COCO_PHASE_GATE_LAST)
                return;
            g_usleep(1000);
        }
    }
    g_assert_not_reached();
}

static void
startMigration(Harness *h)
{
    event(h, DST, COCO_PHASE_EVENT_INCOMING);
    g_assert_cmpint(h->verdict[DST][COCO_PHASE_GATE_MIGRATE_INCOMING], ==,
                    COCO_PHASE_VERDICT_RELEASE + 1);
    event(h, SRC, COCO_PHASE_EVENT_MIGRATE);
    pumpUntil(h, SRC, COCO_PHASE_GATE_MIGRATE);
    g_assert_cmpint(h->verdict[SRC][COCO_PHASE_GATE_MIGRATE], ==,
                    COCO_PHASE_VERDICT_RELEASE + 1);
}

static void
guestWrite(Harness *h, uint64_t gfn)
{
    memset(h->smem + gfn * COCO_EMU_PAGE_SIZE + 7, 0x5A, 100);
    cocoDirtyBitmapSet(h->dirty, gfn);
}

static void
switchover(Harness *h)
{
    event(h, SRC, COCO_PHASE_EVENT_PRE_SWITCHOVER);
    pumpUntil(h, SRC, COCO_PHASE_GATE_MIGRATE_CONTINUE);
}

static void
checkMigrated(unsigned int rounds, bool async)
{
    Harness h;
    const CocoPhaseCounters *c;

    harnessInit(&h, rounds, async);
    startMigration(&h);
    guestWrite(&h, 2);
    guestWrite(&h, NPAGES - 3);
    switchover(&h);
    g_assert_cmpint(h.verdict[SRC][COCO_PHASE_GATE_MIGRATE_CONTINUE], ==,
                    COCO_PHASE_VERDICT_RELEASE + 1);
    g_assert_cmpint(cocoEmuGetOpState(h.dfw), ==, COCO_EMU_OP_POST_IMPORT);
    event(&h, DST, COCO_PHASE_EVENT_CONT);
    g_assert_cmpint(h.verdict[DST][COCO_PHASE_GATE_CONT], ==,
                    COCO_PHASE_VERDICT_RELEASE + 1);
    pumpUntil(&h, DST, COCO_PHASE_GATE_LAST);
    event(&h, SRC, COCO_PHASE_EVENT_QEMU_GONE);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_FINISHED);
    g_assert_true(cocoEmuCanRun(h.dfw));
    g_assert_false(cocoEmuCanRun(h.sfw));
    g_assert_cmpmem(h.smem, MEMSIZE, h.dmem, MEMSIZE);
    c = cocoMigrationSessionGetCounters(h.src);
    g_assert_cmpuint(c->rounds, ==, rounds);
    g_assert_cmpuint(c->data.pages, >=, NPAGES);
    g_assert_cmpuint(c->data.vcpus, ==, NVCPUS);
    g_assert_cmpuint(h.tracker.epochs, ==, rounds);
    g_assert_cmpuint(c->data.epochs, ==, rounds);
    g_assert_null(h.round_err);
    harnessClear(&h);
}

static void
testMigrate(void)
{
    checkMigrated(0, false);
}

static void
testMigratePrecopy(void)
{
    checkMigrated(3, false);
}

/* The rounds on a thread of their own: the same migration. */
static void
testMigrateAsync(void)
{
    checkMigrated(3, true);
}

/* Cancelled while a round runs on its thread: the session stops the data
 * path (cancel, wait) before the firmware's ABORT; both sides abort and
 * the source may run. */
static void
testCancelAsync(void)
{
    Harness h;

    harnessInit(&h, 2, true);
    event(&h, DST, COCO_PHASE_EVENT_INCOMING);
    event(&h, SRC, COCO_PHASE_EVENT_MIGRATE);
    /* Until the first round started (SETUP acknowledged). */
    while (cocoMigrationSessionGetState(h.src) != COCO_PHASE_STATE_PRECOPY) {
        g_assert_true(carry(&h) || progress(&h) ||
                      g_main_context_iteration(NULL, FALSE) ||
                      (g_usleep(1000), true));
    }
    event(&h, SRC, COCO_PHASE_EVENT_CANCEL);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_ABORTED);
    pumpUntil(&h, SRC, COCO_PHASE_GATE_LAST);
    g_assert_cmpint(cocoMigrationSessionGetState(h.dst), ==,
                    COCO_PHASE_STATE_ABORTED);
    g_assert_true(cocoEmuCanRun(h.sfw));
    g_assert_false(cocoEmuCanRun(h.dfw));
    harnessClear(&h);
}

/* A round fails on its thread (the firmware refuses a dirty page): the
 * end callback carries the error in the main context, the caller fails
 * the session with it, and the source may run. */
static void
testRoundFailAsync(void)
{
    Harness h;
    g_autoptr(GError) err = NULL;

    harnessInit(&h, 2, true);
    event(&h, DST, COCO_PHASE_EVENT_INCOMING);
    event(&h, SRC, COCO_PHASE_EVENT_MIGRATE);
    while (cocoMigrationSessionGetState(h.src) != COCO_PHASE_STATE_PRECOPY) {
        carry(&h);
        progress(&h);
        g_usleep(1000);
    }
    /* The next round's dirty page is refused by the firmware. */
    g_atomic_int_set(&failDirtyHook, 1);
    guestWrite(&h, 5);
    {
        gint64 end = g_get_monotonic_time() + WAIT_US;

        while (!h.round_err && g_get_monotonic_time() < end) {
            if (!g_main_context_iteration(NULL, FALSE) && !carry(&h) &&
                !progress(&h))
                g_usleep(1000);
        }
    }
    g_atomic_int_set(&failDirtyHook, 0);
    g_assert_nonnull(h.round_err);
    g_assert_nonnull(
        strstr(h.round_err->message, "test: the firmware refuses"));
    g_assert_cmpint(cocoMigrationSessionFail(h.src, h.round_err, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_ABORTED);
    g_assert_true(cocoMigrationSessionMayRun(h.src));
    g_assert_true(cocoEmuCanRun(h.sfw));
    harnessClear(&h);
}

/* (3) The destination QEMU is killed after the start token: its abort
 * token travels back on the agents' connection and the source resumes. */
static void
testAbortToken(void)
{
    Harness h;

    harnessInit(&h, 1, false);
    startMigration(&h);
    switchover(&h);
    g_assert_cmpint(cocoEmuGetOpState(h.sfw), ==, COCO_EMU_OP_POST_EXPORT);
    event(&h, DST, COCO_PHASE_EVENT_QEMU_GONE);
    pumpUntil(&h, DST, COCO_PHASE_GATE_LAST);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_ABORTED);
    event(&h, SRC, COCO_PHASE_EVENT_CONT);
    g_assert_cmpint(h.verdict[SRC][COCO_PHASE_GATE_CONT], ==,
                    COCO_PHASE_VERDICT_RELEASE + 1);
    g_assert_true(cocoEmuCanRun(h.sfw));
    g_assert_false(cocoEmuCanRun(h.dfw));
    harnessClear(&h);
}

/* (1) Cancelled during precopy: the streams close, both sides abort. */
static void
testCancel(void)
{
    Harness h;

    harnessInit(&h, 2, false);
    startMigration(&h);
    event(&h, SRC, COCO_PHASE_EVENT_CANCEL);
    pumpUntil(&h, SRC, COCO_PHASE_GATE_LAST);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_ABORTED);
    g_assert_cmpint(cocoMigrationSessionGetState(h.dst), ==,
                    COCO_PHASE_STATE_ABORTED);
    g_assert_true(cocoEmuCanRun(h.sfw));
    g_assert_false(cocoEmuCanRun(h.dfw));
    g_assert_cmpint(cocoEmuGetOpState(h.dfw), ==, COCO_EMU_OP_FAILED_IMPORT);
    harnessClear(&h);
}

/* (4) The agents' connection is lost after the start token. */
static void
testFrozen(void)
{
    Harness h;

    harnessInit(&h, 0, false);
    startMigration(&h);
    event(&h, SRC, COCO_PHASE_EVENT_PRE_SWITCHOVER);
    h.link_down = true;
    g_queue_clear_full(&h.to_dst, (GDestroyNotify)g_bytes_unref);
    event(&h, SRC, COCO_PHASE_EVENT_PEER_LOST);
    g_assert_cmpint(h.verdict[SRC][COCO_PHASE_GATE_MIGRATE_CONTINUE], ==,
                    COCO_PHASE_VERDICT_REFUSE + 1);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_AWAIT_TOKEN);
    /* cont is held until the agent's hold expires, then refused */
    event(&h, SRC, COCO_PHASE_EVENT_CONT);
    g_assert_cmpint(h.verdict[SRC][COCO_PHASE_GATE_CONT], ==, 0);
    event(&h, SRC, COCO_PHASE_EVENT_HOLD_EXPIRED);
    g_assert_cmpint(h.verdict[SRC][COCO_PHASE_GATE_CONT], ==,
                    COCO_PHASE_VERDICT_REFUSE + 1);
    g_assert_cmpint(h.code[SRC][COCO_PHASE_GATE_CONT], ==,
                    COCO_ERROR_MIGRATION_SOURCE_FROZEN);
    g_assert_false(cocoEmuCanRun(h.sfw));
    g_assert_false(cocoEmuCanRun(h.dfw));
    harnessClear(&h);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/phase-transfer/migrate", testMigrate);
    g_test_add_func("/phase-transfer/migrate-precopy", testMigratePrecopy);
    g_test_add_func("/phase-transfer/migrate-async", testMigrateAsync);
    g_test_add_func("/phase-transfer/cancel-async", testCancelAsync);
    g_test_add_func("/phase-transfer/round-fail-async", testRoundFailAsync);
    g_test_add_func("/phase-transfer/abort-token", testAbortToken);
    g_test_add_func("/phase-transfer/cancel", testCancel);
    g_test_add_func("/phase-transfer/frozen", testFrozen);
    return g_test_run();
}
