/*
 * cocophasetest.c: the phase engine, two sessions back to back on two
 * emulated firmware instances, driven the way libvirt drives a v3
 * migration, with a failure injected at every step
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "firmware/cocoemu.h"
#include "migration/cocomigrationsession.h"
#include "migration/cocophase.h"
#include "migration/cocophasemessage.h"

#include <errno.h>

#define NPAGES 40
#define MEMSIZE (NPAGES * COCO_EMU_PAGE_SIZE)
#define NVCPUS 2

#define SRC COCO_FIRMWARE_ROLE_SOURCE
#define DST COCO_FIRMWARE_ROLE_DESTINATION

typedef enum {
    FAULT_NONE = 0,
    FAULT_FW, /* the k-th firmware call (either side) fails */
    FAULT_FW_AFTER, /* the k-th call takes effect, then reports failure */
    FAULT_TAMPER, /* the k-th message with a payload is corrupted */
    FAULT_LINK, /* the link breaks at the k-th delivery */
    FAULT_CRASH, /* the destination host dies at the k-th delivery */
    FAULT_CANCEL, /* libvirt cancels the job at the k-th delivery */
    FAULT_DQUIT, /* the destination QEMU dies at the k-th delivery */
} FaultKind;

typedef struct {
    CocoFirmwareRole role;
    CocoPhaseGate gate;
    CocoPhaseVerdict verdict;
    int code;
    char *message;
} Decision;

typedef struct _Harness Harness;

/* A firmware wrapper that fails the k-th call (of both sides). */
typedef struct {
    Harness *h;
    CocoFirmware *inner;
} Faulty;

struct _Harness {
    CocoEmuPlatform *spf;
    CocoEmuPlatform *dpf;
    CocoMigrationDef def;
    uint8_t *smem;
    uint8_t *dmem;
    CocoFirmware *sfw; /* emulated */
    CocoFirmware *dfw;
    CocoFirmware *swrap; /* what the sessions see */
    CocoFirmware *dwrap;
    CocoMigrationSession *src;
    CocoMigrationSession *dst;
    GQueue to_src; /* encoded messages (GBytes) */
    GQueue to_dst;
    GArray *decisions;
    bool src_paused; /* the source's last pause/resume decision */
    guint pauses; /* pause decisions */

    FaultKind fault;
    unsigned int k;
    unsigned int fw_calls;
    unsigned int payloads;
    unsigned int deliveries;
    bool fired;
    bool link_down;
    bool dst_dead;
    bool dst_quit;
    CocoEmuOpState src_op_at_fault;
    CocoEmuOpState dst_op_at_fault;

    /* guest writes the dirty callback reports */
    GArray *dirty;
    unsigned int rounds_seen;

    /* the switching callback, per role: "+STATE" or "-STATE" (the
     * session's state at the call), comma-separated */
    GString *switching[COCO_FIRMWARE_ROLE_LAST];
};

/* ---- the faulty firmware wrapper --------------------------------------- */

static bool
faultyFire(Harness *h)
{
    if ((h->fault != FAULT_FW && h->fault != FAULT_FW_AFTER) || h->fired)
        return false;
    if (++h->fw_calls != h->k)
        return false;
    h->fired = true;
    h->src_op_at_fault = cocoEmuGetOpState(h->sfw);
    h->dst_op_at_fault = cocoEmuGetOpState(h->dfw);
    return true;
}

static int
faultyErr(GError **error)
{
    cocoErrorSet(error, COCO_ERROR_FW_FATAL, "%s", "injected firmware fault");
    return -EIO;
}

static int
faultyCaps(CocoFirmware *fw, CocoFirmwareCaps *caps, GError **error)
{
    Faulty *f = fw->priv;

    return cocoFirmwareGetCaps(f->inner, caps, error);
}

static int
faultyCmd(CocoFirmware *fw, CocoMigrateCmd cmd, uint32_t flags, void *buf,
          size_t *buflen, CocoFirmwareStatus *status, GError **error)
{
    Faulty *f = fw->priv;

    if (faultyFire(f->h)) {
        if (f->h->fault == FAULT_FW_AFTER) {
            (void)cocoFirmwareMigrateCmd(f->inner, cmd, flags, buf, buflen,
                                         status, error);
            g_clear_error(error);
        }
        return faultyErr(error);
    }
    return cocoFirmwareMigrateCmd(f->inner, cmd, flags, buf, buflen, status,
                                  error);
}

static int
faultyExportMemory(CocoFirmware *fw, uint32_t stream, const uint64_t *gfns,
                   uint32_t ngfns, uint8_t *gfn_status, void *buf,
                   size_t *buflen, CocoFirmwareStatus *status, GError **error)
{
    Faulty *f = fw->priv;

    if (faultyFire(f->h)) {
        if (f->h->fault == FAULT_FW_AFTER) {
            (void)cocoFirmwareExportMemory(f->inner, stream, gfns, ngfns,
                                           gfn_status, buf, buflen, status,
                                           error);
            g_clear_error(error);
        }
        return faultyErr(error);
    }
    return cocoFirmwareExportMemory(f->inner, stream, gfns, ngfns, gfn_status,
                                    buf, buflen, status, error);
}

static int
faultyImportMemory(CocoFirmware *fw, uint32_t stream, const void *buf,
                   size_t buflen, CocoFirmwareStatus *status, GError **error)
{
    Faulty *f = fw->priv;

    if (faultyFire(f->h)) {
        if (f->h->fault == FAULT_FW_AFTER) {
            (void)cocoFirmwareImportMemory(f->inner, stream, buf, buflen,
                                           status, error);
            g_clear_error(error);
        }
        return faultyErr(error);
    }
    return cocoFirmwareImportMemory(f->inner, stream, buf, buflen, status,
                                    error);
}

static int
faultyExportVcpu(CocoFirmware *fw, unsigned int vcpu, void *buf, size_t *buflen,
                 CocoFirmwareStatus *status, GError **error)
{
    Faulty *f = fw->priv;

    if (faultyFire(f->h)) {
        if (f->h->fault == FAULT_FW_AFTER) {
            (void)cocoFirmwareExportVcpu(f->inner, vcpu, buf, buflen, status,
                                         error);
            g_clear_error(error);
        }
        return faultyErr(error);
    }
    return cocoFirmwareExportVcpu(f->inner, vcpu, buf, buflen, status, error);
}

static int
faultyImportVcpu(CocoFirmware *fw, unsigned int vcpu, const void *buf,
                 size_t buflen, CocoFirmwareStatus *status, GError **error)
{
    Faulty *f = fw->priv;

    if (faultyFire(f->h)) {
        if (f->h->fault == FAULT_FW_AFTER) {
            (void)cocoFirmwareImportVcpu(f->inner, vcpu, buf, buflen, status,
                                         error);
            g_clear_error(error);
        }
        return faultyErr(error);
    }
    return cocoFirmwareImportVcpu(f->inner, vcpu, buf, buflen, status, error);
}

static void
faultyFree(CocoFirmware *fw)
{
    g_free(fw->priv);
}

static const CocoFirmwareDriver faultyDriver = {
    .name = "faulty",
    .getCaps = faultyCaps,
    .migrateCmd = faultyCmd,
    .exportMemory = faultyExportMemory,
    .importMemory = faultyImportMemory,
    .exportVcpu = faultyExportVcpu,
    .importVcpu = faultyImportVcpu,
    .free = faultyFree,
};

static CocoFirmware *
faultyNew(Harness *h, CocoFirmware *inner)
{
    CocoFirmware *fw = g_new0(CocoFirmware, 1);
    Faulty *f = g_new0(Faulty, 1);

    f->h = h;
    f->inner = inner;
    fw->driver = &faultyDriver;
    fw->role = inner->role;
    fw->priv = f;
    return fw;
}

/* ---- transport and decisions ------------------------------------------- */

static int
sendTo(GQueue *q, Harness *h, const CocoPhaseMessage *msg, GError **error)
{
    GBytes *b;

    if (h->link_down)
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_IO, "%s",
                            "link to the peer agent is down");
    if (!(b = cocoPhaseMessageEncode(msg, error)))
        return -1;
    g_queue_push_tail(q, b);
    return 0;
}

static int
srcSend(void *opaque, const CocoPhaseMessage *msg, GError **error)
{
    Harness *h = opaque;

    return sendTo(&h->to_dst, h, msg, error);
}

static int
dstSend(void *opaque, const CocoPhaseMessage *msg, GError **error)
{
    Harness *h = opaque;

    return sendTo(&h->to_src, h, msg, error);
}

typedef struct {
    Harness *h;
    CocoFirmwareRole role;
} DecideCtx;

static DecideCtx srcCtx;
static DecideCtx dstCtx;

static void
switching(void *opaque, bool on)
{
    DecideCtx *c = opaque;
    GString *log = c->h->switching[c->role];
    CocoMigrationSession *sess = c->role == SRC ? c->h->src : c->h->dst;

    if (log->len)
        g_string_append_c(log, ',');
    g_string_append_printf(
        log, "%c%s", on ? '+' : '-',
        sess ? cocoPhaseStateTypeToString(cocoMigrationSessionGetState(sess))
             : "freed");
}

static void
decide(void *opaque, const CocoPhaseDecision *d)
{
    DecideCtx *c = opaque;
    Decision x = {c->role, d->gate, d->verdict, d->code, g_strdup(d->message)};

    if (g_test_verbose())
        g_printerr(
            "decision %s %s %s %s\n", cocoFirmwareRoleTypeToString(c->role),
            cocoPhaseGateTypeToString(d->gate),
            cocoPhaseVerdictTypeToString(d->verdict), NULLSTR(d->message));
    /* pause and resume hold no gate: the relay keeps the vCPUs stopped or
     * lets them go. */
    if (d->verdict == COCO_PHASE_VERDICT_PAUSE ||
        d->verdict == COCO_PHASE_VERDICT_RESUME) {
        g_assert_cmpint(c->role, ==, COCO_FIRMWARE_ROLE_SOURCE);
        c->h->src_paused = d->verdict == COCO_PHASE_VERDICT_PAUSE;
        c->h->pauses += d->verdict == COCO_PHASE_VERDICT_PAUSE;
        g_free(x.message);
        return;
    }
    g_array_append_val(c->h->decisions, x);
}

static void
decisionClear(gpointer p)
{
    g_free(((Decision *)p)->message);
}

/* The latest decision on @gate of @role after index @from, or NULL. */
static const Decision *
lastDecision(Harness *h, CocoFirmwareRole role, CocoPhaseGate gate, guint from)
{
    const Decision *found = NULL;
    guint i;

    for (i = from; i < h->decisions->len; i++) {
        const Decision *d = &g_array_index(h->decisions, Decision, i);

        if (d->role == role && d->gate == gate)
            found = d;
    }
    return found;
}

/* ---- dirty pages ------------------------------------------------------- */

static void
guestWrite(Harness *h, uint64_t gfn, uint8_t val)
{
    GError *err = NULL;

    memset(h->smem + gfn * COCO_EMU_PAGE_SIZE + 100, val, 64);
    g_assert_cmpint(cocoEmuMarkDirty(h->sfw, gfn, &err), ==, 0);
    g_assert_no_error(err);
    g_array_append_val(h->dirty, gfn);
}

static int
dirtyPages(void *opaque, GArray *gfns, GError **error)
{
    Harness *h = opaque;

    /* The guest keeps writing while precopy rounds run. */
    if (cocoEmuGetOpState(h->sfw) == COCO_EMU_OP_LIVE_EXPORT &&
        h->rounds_seen++ > 0)
        guestWrite(h, 3 + h->rounds_seen, (uint8_t)(0x40 + h->rounds_seen));
    g_array_append_vals(gfns, h->dirty->data, h->dirty->len);
    g_array_set_size(h->dirty, 0);
    return 0;
}

/* ---- harness ----------------------------------------------------------- */

/* The precopy policy as the session sees it (next_round): run
 * policyStopAt rounds, then release `migrate` or abort. */
static struct {
    bool on;
    unsigned int stop_at;
    bool abort;
    unsigned int calls;
} policy;

static int
policyNextRound(void *opaque, unsigned int rounds, GError **error)
{
    policy.calls++;
    g_assert_cmpuint(rounds, ==, policy.calls - 1);
    if (rounds < policy.stop_at)
        return 1;
    if (policy.abort)
        return cocoErrorSet(error, COCO_ERROR_MIGRATION_ABORTED,
                            "pre-copy did not converge: test");
    return 0;
}

static void
harnessInit(Harness *h, unsigned int rounds, FaultKind fault, unsigned int k)
{
    CocoMigrationSessionConfig sc = {0};
    CocoMigrationSessionConfig dc = {0};
    CocoFirmwareVm vm = {.uuid = {0x42}, .nvcpus = NVCPUS, .memory = MEMSIZE};
    uint8_t agent[COCO_AGENT_HASH_LEN];
    GError *err = NULL;
    size_t i;

    memset(h, 0, sizeof(*h));
    h->fault = fault;
    h->k = k;
    memset(agent, 0xA5, sizeof(agent));
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
    h->def.forward_streams = 2;

    h->sfw = cocoEmuNew(SRC, h->spf, &h->def, &vm, &err);
    g_assert_no_error(err);
    h->dfw = cocoEmuNew(DST, h->dpf, &h->def, &vm, &err);
    g_assert_no_error(err);
    h->smem = g_malloc(MEMSIZE);
    h->dmem = g_malloc0(MEMSIZE);
    for (i = 0; i < MEMSIZE; i++)
        h->smem[i] = (uint8_t)(i * 13 + i / COCO_EMU_PAGE_SIZE);
    g_assert_cmpint(cocoEmuAttachMemory(h->sfw, h->smem, MEMSIZE, &err), ==, 0);
    g_assert_cmpint(cocoEmuAttachMemory(h->dfw, h->dmem, MEMSIZE, &err), ==, 0);
    g_assert_no_error(err);
    h->swrap = faultyNew(h, h->sfw);
    h->dwrap = faultyNew(h, h->dfw);
    g_queue_init(&h->to_src);
    g_queue_init(&h->to_dst);
    h->decisions = g_array_new(FALSE, TRUE, sizeof(Decision));
    g_array_set_clear_func(h->decisions, decisionClear);
    h->dirty = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    h->switching[SRC] = g_string_new(NULL);
    h->switching[DST] = g_string_new(NULL);

    srcCtx.h = h;
    srcCtx.role = SRC;
    dstCtx.h = h;
    dstCtx.role = DST;
    sc.role = SRC;
    sc.fw = h->swrap;
    sc.nvcpus = NVCPUS;
    sc.precopy_rounds = rounds;
    if (policy.on) {
        sc.next_round = policyNextRound;
        policy.calls = 0;
    }
    sc.data = cocoPhaseDataNewDirect(NPAGES, 2, dirtyPages, h);
    sc.send = srcSend;
    sc.send_opaque = h;
    sc.decide = decide;
    sc.decide_opaque = &srcCtx;
    sc.switching = switching;
    sc.switching_opaque = &srcCtx;
    h->src = cocoMigrationSessionNew(&sc, &err);
    g_assert_no_error(err);
    dc.role = DST;
    dc.fw = h->dwrap;
    dc.data = cocoPhaseDataNewDirect(NPAGES, 2, NULL, NULL);
    dc.send = dstSend;
    dc.send_opaque = h;
    dc.decide = decide;
    dc.decide_opaque = &dstCtx;
    dc.switching = switching;
    dc.switching_opaque = &dstCtx;
    h->dst = cocoMigrationSessionNew(&dc, &err);
    g_assert_no_error(err);
}

static void
harnessClear(Harness *h)
{
    size_t r;

    cocoMigrationSessionFree(h->src);
    cocoMigrationSessionFree(h->dst);
    /* Every start of a switchover ended, by the end at the latest. */
    for (r = 0; r < G_N_ELEMENTS(h->switching); r++) {
        const char *last = strrchr(h->switching[r]->str, ',');

        last = last ? last + 1 : h->switching[r]->str;
        g_assert_true(*last == '\0' || *last == '-');
        g_string_free(h->switching[r], TRUE);
    }
    cocoFirmwareFree(h->swrap);
    cocoFirmwareFree(h->dwrap);
    cocoFirmwareFree(h->sfw);
    cocoFirmwareFree(h->dfw);
    cocoEmuPlatformUnref(h->spf);
    cocoEmuPlatformUnref(h->dpf);
    g_queue_clear_full(&h->to_src, (GDestroyNotify)g_bytes_unref);
    g_queue_clear_full(&h->to_dst, (GDestroyNotify)g_bytes_unref);
    g_array_unref(h->decisions);
    g_array_unref(h->dirty);
    g_free(h->smem);
    g_free(h->dmem);
}

/* An event for a session; a phase-order error is fine here (the relay
 * refuses the command), anything else was handled by the failure path. */
static void
event(Harness *h, CocoFirmwareRole role, CocoPhaseEvent ev)
{
    g_autoptr(GError) err = NULL;

    if (role == DST && h->dst_dead)
        return;
    if (cocoMigrationSessionHandleEvent(role == SRC ? h->src : h->dst, ev,
                                        &err) < 0 &&
        g_test_verbose())
        g_printerr("%s %s: %s\n", cocoFirmwareRoleTypeToString(role),
                   cocoPhaseEventTypeToString(ev), err->message);
}

static void
faultAtDelivery(Harness *h)
{
    h->fired = true;
    h->src_op_at_fault = cocoEmuGetOpState(h->sfw);
    h->dst_op_at_fault = cocoEmuGetOpState(h->dfw);
    switch (h->fault) {
    case FAULT_LINK:
        h->link_down = true;
        g_queue_clear_full(&h->to_src, (GDestroyNotify)g_bytes_unref);
        g_queue_clear_full(&h->to_dst, (GDestroyNotify)g_bytes_unref);
        event(h, SRC, COCO_PHASE_EVENT_PEER_LOST);
        event(h, DST, COCO_PHASE_EVENT_PEER_LOST);
        break;
    case FAULT_CRASH:
        /* The destination host is gone: its VM can never run. */
        h->link_down = true;
        h->dst_dead = true;
        g_queue_clear_full(&h->to_src, (GDestroyNotify)g_bytes_unref);
        g_queue_clear_full(&h->to_dst, (GDestroyNotify)g_bytes_unref);
        event(h, SRC, COCO_PHASE_EVENT_PEER_LOST);
        break;
    case FAULT_CANCEL:
        event(h, SRC, COCO_PHASE_EVENT_CANCEL);
        break;
    case FAULT_DQUIT:
        h->dst_quit = true;
        event(h, DST, COCO_PHASE_EVENT_QEMU_GONE);
        break;
    case FAULT_NONE:
    case FAULT_FW:
    case FAULT_FW_AFTER:
    case FAULT_TAMPER:
    default:
        break;
    }
}

/* Deliver queued messages both ways until both queues are empty. */
static void
pump(Harness *h)
{
    bool progress = true;

    while (progress) {
        int dir;

        progress = false;
        for (dir = 0; dir < 2; dir++) {
            GQueue *q = dir == 0 ? &h->to_dst : &h->to_src;
            CocoMigrationSession *to = dir == 0 ? h->dst : h->src;
            g_autoptr(GBytes) b = g_queue_pop_head(q);
            g_autoptr(GError) err = NULL;
            g_autofree uint8_t *copy = NULL;
            CocoPhaseMessage msg;
            gsize len;
            const uint8_t *data;

            if (!b)
                continue;
            progress = true;
            h->deliveries++;
            if (!h->fired && h->fault >= FAULT_LINK && h->deliveries == h->k) {
                faultAtDelivery(h);
                if (h->fault == FAULT_LINK || h->fault == FAULT_CRASH)
                    break;
            }
            if (dir == 0 && h->dst_dead)
                continue;
            data = g_bytes_get_data(b, &len);
            copy = g_memdup2(data, len);
            g_assert_cmpint(cocoPhaseMessageDecode(copy, len, &msg, &err), ==,
                            0);
            if (msg.len > 0 && h->fault == FAULT_TAMPER && !h->fired &&
                ++h->payloads == h->k) {
                h->fired = true;
                h->src_op_at_fault = cocoEmuGetOpState(h->sfw);
                h->dst_op_at_fault = cocoEmuGetOpState(h->dfw);
                ((uint8_t *)msg.data)[msg.len / 2] ^= 0x20;
            }
            if (cocoMigrationSessionReceive(to, &msg, &err) < 0 &&
                g_test_verbose())
                g_printerr("receive %s: %s\n",
                           cocoPhaseEventTypeToString(msg.type), err->message);
        }
    }
}

typedef enum {
    OUTCOME_MOVED = 0, /* the destination runs, the source is finished */
    OUTCOME_STAYED, /* the source runs, the destination is gone */
    OUTCOME_FROZEN, /* neither: the source is paused and says why */
    OUTCOME_LOST, /* neither: the destination died after its commit */
} Outcome;

static const char *const outcomeNames[] = {"moved", "stayed", "frozen", "lost"};

/* libvirt's side of a v3 migration, reacting to the gates the relay holds
 * (qemu driver, peer-to-peer or client-driven: the QEMU-level sequence is
 * the same). */
/* What the agent does when a source waits for the start token's fate:
 * it reconnects and asks again when the peer can be reached, else its
 * hold and its window expire. */
static void
agentDeadlines(Harness *h)
{
    if (cocoMigrationSessionGetState(h->src) != COCO_PHASE_STATE_AWAIT_TOKEN)
        return;
    if (!h->link_down && !h->dst_dead) {
        event(h, SRC, COCO_PHASE_EVENT_PEER_RECONNECTED);
        pump(h);
    }
    if (cocoMigrationSessionGetState(h->src) == COCO_PHASE_STATE_AWAIT_TOKEN) {
        event(h, SRC, COCO_PHASE_EVENT_HOLD_EXPIRED);
        event(h, SRC, COCO_PHASE_EVENT_GIVE_UP);
    }
}

static void
runLibvirt(Harness *h)
{
    const Decision *d;
    guint mark;
    bool src_paused = false;

    /* Prepare (D) */
    mark = h->decisions->len;
    event(h, DST, COCO_PHASE_EVENT_INCOMING);
    d = lastDecision(h, DST, COCO_PHASE_GATE_MIGRATE_INCOMING, mark);
    if (!d || d->verdict != COCO_PHASE_VERDICT_RELEASE) {
        event(h, DST, COCO_PHASE_EVENT_QEMU_GONE);
        return;
    }

    /* Perform (S) */
    mark = h->decisions->len;
    event(h, SRC, COCO_PHASE_EVENT_MIGRATE);
    event(h, SRC, COCO_PHASE_EVENT_QUERY);
    pump(h);
    d = lastDecision(h, SRC, COCO_PHASE_GATE_MIGRATE, mark);
    /* refused, or cancelled after the release: Perform failed */
    if (!d || d->verdict != COCO_PHASE_VERDICT_RELEASE)
        goto perform_failed;
    if (cocoMigrationSessionGetState(h->src) == COCO_PHASE_STATE_ABORTED)
        goto perform_failed;
    event(h, SRC, COCO_PHASE_EVENT_QUERY);
    event(h, DST, COCO_PHASE_EVENT_QUERY);

    /* guest writes before the switchover */
    if (cocoEmuGetOpState(h->sfw) == COCO_EMU_OP_LIVE_EXPORT) {
        guestWrite(h, 1, 0x11);
        guestWrite(h, NPAGES - 1, 0x22);
    }
    mark = h->decisions->len;
    src_paused = true; /* QEMU stops the vCPUs before pre-switchover */
    event(h, SRC, COCO_PHASE_EVENT_PRE_SWITCHOVER);
    pump(h);
    d = lastDecision(h, SRC, COCO_PHASE_GATE_MIGRATE_CONTINUE, mark);
    if (!d || d->verdict != COCO_PHASE_VERDICT_RELEASE)
        goto perform_failed;
    pump(h);

    /* Finish (D) */
    if (h->dst_quit || h->dst_dead)
        goto finish_failed;
    mark = h->decisions->len;
    event(h, DST, COCO_PHASE_EVENT_CONT);
    pump(h);
    d = lastDecision(h, DST, COCO_PHASE_GATE_CONT, mark);
    if (!d || d->verdict != COCO_PHASE_VERDICT_RELEASE)
        goto finish_failed;

    /* Confirm (S), success: libvirt kills the source QEMU */
    event(h, SRC, COCO_PHASE_EVENT_QEMU_GONE);
    pump(h);
    return;

perform_failed:
    pump(h);
    /* Finish (D) with the cancelled flag: libvirt kills the destination */
finish_failed:
    event(h, DST, COCO_PHASE_EVENT_QEMU_GONE);
    h->dst_quit = true;
    pump(h);
    /* Confirm (S), cancelled: resume the source if it was paused */
    if (src_paused) {
        mark = h->decisions->len;
        event(h, SRC, COCO_PHASE_EVENT_CONT);
        pump(h);
    }
    agentDeadlines(h);
}

static bool
srcCanRun(Harness *h)
{
    return cocoEmuCanRun(h->sfw);
}

static bool
dstCanRun(Harness *h)
{
    return !h->dst_dead && !h->dst_quit && cocoEmuCanRun(h->dfw);
}

/* The invariants every run must end with; returns the outcome. */
static Outcome
checkEnd(Harness *h)
{
    bool s = srcCanRun(h);
    bool d = dstCanRun(h);
    const Decision *cont;
    guint i;
    int g;

    /* never both */
    g_assert_false(s && d);
    /* the engine's view matches the firmware's */
    g_assert_cmpint(cocoMigrationSessionMayRun(h->src), ==, s);
    if (!h->dst_dead && !h->dst_quit)
        g_assert_cmpint(cocoMigrationSessionMayRun(h->dst), ==,
                        cocoEmuCanRun(h->dfw));
    /* no command left hanging in the relay */
    for (g = 0; g < COCO_PHASE_GATE_LAST; g++) {
        g_assert_false(cocoMigrationSessionGateHeld(h->src, g));
        if (!h->dst_dead)
            g_assert_false(cocoMigrationSessionGateHeld(h->dst, g));
    }
    /* a source that runs was never refused its cont */
    for (i = 0; i < h->decisions->len; i++) {
        const Decision *x = &g_array_index(h->decisions, Decision, i);

        if (x->verdict != COCO_PHASE_VERDICT_RELEASE) {
            g_assert_nonnull(x->message);
            g_assert_null(strchr(x->message, '\n'));
        }
    }
    if (d) {
        g_assert_cmpint(cocoMigrationSessionGetState(h->src), ==,
                        COCO_PHASE_STATE_FINISHED);
        g_assert_cmpmem(h->smem, MEMSIZE, h->dmem, MEMSIZE);
        return OUTCOME_MOVED;
    }
    if (s) {
        /* aborted, or never started (Prepare failed) */
        if (cocoMigrationSessionGetState(h->src) != COCO_PHASE_STATE_IDLE) {
            g_assert_cmpint(cocoMigrationSessionGetState(h->src), ==,
                            COCO_PHASE_STATE_ABORTED);
            g_assert_nonnull(cocoMigrationSessionGetFailure(h->src));
        }
        cont = lastDecision(h, SRC, COCO_PHASE_GATE_CONT, 0);
        if (cont)
            g_assert_cmpint(cont->verdict, ==, COCO_PHASE_VERDICT_RELEASE);
        return OUTCOME_STAYED;
    }
    /* neither runs: never silently */
    if (cocoMigrationSessionGetState(h->src) == COCO_PHASE_STATE_FROZEN) {
        const GError *why = cocoMigrationSessionGetFailure(h->src);

        g_assert_error(why, COCO_ERROR, COCO_ERROR_MIGRATION_SOURCE_FROZEN);
        g_assert_nonnull(strstr(why->message, "destroy it"));
        cont = lastDecision(h, SRC, COCO_PHASE_GATE_CONT, 0);
        g_assert_nonnull(cont);
        g_assert_cmpint(cont->verdict, ==, COCO_PHASE_VERDICT_REFUSE);
        g_assert_cmpint(cont->code, ==, COCO_ERROR_MIGRATION_SOURCE_FROZEN);
        return OUTCOME_FROZEN;
    }
    /* the destination committed, then its QEMU or host died */
    g_assert_true(h->dst_dead || h->dst_quit);
    g_assert_true(cocoEmuGetOpState(h->sfw) == COCO_EMU_OP_TEARDOWN);
    return OUTCOME_LOST;
}

/* ---- tests ------------------------------------------------------------- */

static void
testTable(void)
{
    size_t n;
    size_t i;
    int st;
    const CocoPhaseRule *rules = cocoPhaseRules(&n);

    g_assert_cmpuint(n, >, 20);
    for (i = 0; i < n; i++) {
        size_t j;
        bool ended = false;

        for (j = 0; j < COCO_PHASE_RULE_MAX_STEPS; j++) {
            if (rules[i].steps[j] == COCO_PHASE_STEP_LAST) {
                ended = true;
                break;
            }
            g_assert_nonnull(cocoPhaseStepTypeToString(rules[i].steps[j]));
        }
        g_assert_true(ended);
        g_assert_nonnull(rules[i].phase);
    }
    /* query is accepted everywhere; a failure is handled everywhere a
     * role can be */
    for (st = 0; st < COCO_PHASE_STATE_SESSION_LAST; st++) {
        g_assert_nonnull(cocoPhaseRuleLookup(SRC, st, COCO_PHASE_EVENT_QUERY));
        g_assert_nonnull(cocoPhaseRuleLookup(DST, st, COCO_PHASE_EVENT_QUERY));
        g_assert_nonnull(
            cocoPhaseRuleLookup(SRC, st, COCO_PHASE_EVENT_LOCAL_FAILURE));
        if (st != COCO_PHASE_STATE_BLACKOUT &&
            st != COCO_PHASE_STATE_SWITCHOVER &&
            st != COCO_PHASE_STATE_AWAIT_TOKEN && st != COCO_PHASE_STATE_FROZEN)
            g_assert_nonnull(
                cocoPhaseRuleLookup(DST, st, COCO_PHASE_EVENT_LOCAL_FAILURE));
    }
    /* the mapping of ARCHITECTURE.md */
    /* the source stays paused from the switchover on, then blacks out */
    g_assert_cmpint(cocoPhaseRuleLookup(SRC, COCO_PHASE_STATE_PRECOPY,
                                        COCO_PHASE_EVENT_PRE_SWITCHOVER)
                        ->steps[0],
                    ==, COCO_PHASE_STEP_PAUSE_SOURCE);
    g_assert_cmpint(cocoPhaseRuleLookup(SRC, COCO_PHASE_STATE_PRECOPY,
                                        COCO_PHASE_EVENT_PRE_SWITCHOVER)
                        ->steps[1],
                    ==, COCO_PHASE_STEP_BLACKOUT);
    g_assert_cmpint(cocoPhaseRuleLookup(DST, COCO_PHASE_STATE_HANDOVER,
                                        COCO_PHASE_EVENT_CONT)
                        ->steps[0],
                    ==, COCO_PHASE_STEP_COMMIT);
    g_assert_cmpint(
        cocoPhaseRuleLookup(SRC, COCO_PHASE_STATE_FROZEN, COCO_PHASE_EVENT_CONT)
            ->steps[0],
        ==, COCO_PHASE_STEP_FREEZE);
    g_assert_null(cocoPhaseRuleLookup(SRC, COCO_PHASE_STATE_IDLE,
                                      COCO_PHASE_EVENT_PRE_SWITCHOVER));
}

static void
testQmp(void)
{
    static const struct {
        CocoFirmwareRole role;
        const char *command;
        CocoPhaseEvent event;
    } cmds[] = {
        {DST, "migrate-incoming", COCO_PHASE_EVENT_INCOMING},
        {SRC, "migrate-incoming", COCO_PHASE_EVENT_LAST},
        {SRC, "migrate", COCO_PHASE_EVENT_MIGRATE},
        {DST, "migrate", COCO_PHASE_EVENT_LAST},
        {SRC, "migrate-continue", COCO_PHASE_EVENT_PRE_SWITCHOVER},
        {SRC, "cont", COCO_PHASE_EVENT_CONT},
        {DST, "cont", COCO_PHASE_EVENT_CONT},
        {SRC, "query-migrate", COCO_PHASE_EVENT_QUERY},
        {SRC, "migrate_cancel", COCO_PHASE_EVENT_CANCEL},
        {DST, "quit", COCO_PHASE_EVENT_QEMU_GONE},
        {SRC, "query-status", COCO_PHASE_EVENT_LAST},
        {SRC, NULL, COCO_PHASE_EVENT_LAST},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cmds); i++)
        g_assert_cmpint(
            cocoPhaseEventFromQmpCommand(cmds[i].role, cmds[i].command), ==,
            cmds[i].event);
    g_assert_cmpint(cocoPhaseEventFromQmpEvent(SRC, "MIGRATION", "failed"), ==,
                    COCO_PHASE_EVENT_MIGRATION_FAILED);
    g_assert_cmpint(cocoPhaseEventFromQmpEvent(DST, "MIGRATION", "failed"), ==,
                    COCO_PHASE_EVENT_MIGRATION_FAILED);
    g_assert_cmpint(cocoPhaseEventFromQmpEvent(SRC, "MIGRATION", "cancelled"),
                    ==, COCO_PHASE_EVENT_CANCEL);
    g_assert_cmpint(cocoPhaseEventFromQmpEvent(SRC, "MIGRATION", "active"), ==,
                    COCO_PHASE_EVENT_LAST);
    g_assert_cmpint(cocoPhaseEventFromQmpEvent(SRC, "MIGRATION", NULL), ==,
                    COCO_PHASE_EVENT_LAST);
    g_assert_cmpint(cocoPhaseEventFromQmpEvent(SRC, "STOP", NULL), ==,
                    COCO_PHASE_EVENT_LAST);
    /* the events that hold a gate are the commands the relay holds */
    g_assert_cmpint(cocoPhaseEventGate(
                        cocoPhaseEventFromQmpCommand(SRC, "migrate-continue")),
                    ==, COCO_PHASE_GATE_MIGRATE_CONTINUE);
    g_assert_cmpint(
        cocoPhaseEventGate(cocoPhaseEventFromQmpCommand(SRC, "migrate_cancel")),
        ==, COCO_PHASE_GATE_LAST);
}

/* docs/phases.rst names every event, state, step, gate and verdict. */
static void
testDocs(void)
{
    g_autofree char *path = g_build_filename(
        g_getenv("abs_top_srcdir") ? g_getenv("abs_top_srcdir") : "..", "docs",
        "phases.rst", NULL);
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;
    int i;

    g_assert_true(g_file_get_contents(path, &text, NULL, &err));
    for (i = 0; i < COCO_PHASE_EVENT_LAST; i++) {
        if (!strstr(text, cocoPhaseEventTypeToString(i)))
            g_error("docs/phases.rst lacks event '%s'",
                    cocoPhaseEventTypeToString(i));
    }
    for (i = 0; i < COCO_PHASE_STATE_LAST; i++)
        if (!strstr(text, cocoPhaseStateTypeToString(i)))
            g_error("docs/phases.rst lacks state '%s'",
                    cocoPhaseStateTypeToString(i));
    for (i = 0; i < COCO_PHASE_STEP_LAST; i++)
        if (!strstr(text, cocoPhaseStepTypeToString(i)))
            g_error("docs/phases.rst lacks step '%s'",
                    cocoPhaseStepTypeToString(i));
    for (i = 0; i < COCO_PHASE_GATE_LAST; i++)
        g_assert_nonnull(strstr(text, cocoPhaseGateTypeToString(i)));
    for (i = 0; i < COCO_PHASE_VERDICT_LAST; i++)
        g_assert_nonnull(strstr(text, cocoPhaseVerdictTypeToString(i)));
}

static void
testMessage(void)
{
    static const uint8_t payload[] = {1, 2, 3, 4, 5};
    CocoPhaseMessage in = {COCO_PHASE_EVENT_PEER_MEMORY, 7, payload,
                           sizeof(payload)};
    CocoPhaseMessage bad = {COCO_PHASE_EVENT_CONT, 0, NULL, 0};
    CocoPhaseMessage out;
    g_autoptr(GBytes) b = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *copy = NULL;
    gsize len;

    b = cocoPhaseMessageEncode(&in, &err);
    g_assert_no_error(err);
    copy = g_memdup2(g_bytes_get_data(b, &len), g_bytes_get_size(b));
    g_assert_cmpuint(len, ==, COCO_PHASE_MESSAGE_HEADER + sizeof(payload));
    g_assert_cmpint(cocoPhaseMessagePeekLength(copy, 16, &err), ==, len);
    g_assert_cmpint(cocoPhaseMessageDecode(copy, len, &out, &err), ==, 0);
    g_assert_cmpint(out.type, ==, in.type);
    g_assert_cmpuint(out.arg, ==, 7);
    g_assert_cmpmem(out.data, out.len, payload, sizeof(payload));

    g_assert_cmpint(cocoPhaseMessageDecode(copy, len - 1, &out, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
    g_clear_error(&err);
    copy[0] = 'X';
    g_assert_cmpint(cocoPhaseMessageDecode(copy, len, &out, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
    g_clear_error(&err);
    copy[0] = 'C';
    copy[4] = COCO_PHASE_EVENT_CONT;
    g_assert_cmpint(cocoPhaseMessageDecode(copy, len, &out, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
    g_clear_error(&err);
    g_assert_null(cocoPhaseMessageEncode(&bad, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
}

/* The transport's own frames: heartbeats both ways, switching notices
 * only to a destination, with an argument of 0 or 1 and no payload. */
static void
testMessageTransport(void)
{
    g_autoptr(GBytes) hb = cocoPhaseMessageEncodeHeartbeat(42);
    g_autoptr(GError) err = NULL;
    CocoPhaseMessage out;
    uint8_t frame[COCO_PHASE_MESSAGE_HEADER + 8];
    gsize len;
    unsigned int on;

    memcpy(frame, g_bytes_get_data(hb, &len), sizeof(frame));
    g_assert_cmpuint(len, ==, sizeof(frame));
    g_assert_cmpint(cocoPhaseMessageDecode(frame, len, &out, &err), ==, 0);
    g_assert_cmpuint(out.type, ==, COCO_PHASE_MESSAGE_HEARTBEAT);
    g_assert_true(cocoPhaseMessageAllowed(COCO_PHASE_MESSAGE_HEARTBEAT,
                                          COCO_FIRMWARE_ROLE_SOURCE));

    for (on = 0; on < 2; on++) {
        g_autoptr(GBytes) b = cocoPhaseMessageEncodeSwitching(on);

        memcpy(frame, g_bytes_get_data(b, &len), COCO_PHASE_MESSAGE_HEADER);
        g_assert_cmpuint(len, ==, COCO_PHASE_MESSAGE_HEADER);
        g_assert_cmpint(cocoPhaseMessageDecode(frame, len, &out, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_cmpuint(out.type, ==, COCO_PHASE_MESSAGE_SWITCHING);
        g_assert_cmpuint(out.arg, ==, on);
        g_assert_cmpuint(out.len, ==, 0);
    }
    g_assert_true(cocoPhaseMessageAllowed(COCO_PHASE_MESSAGE_SWITCHING,
                                          COCO_FIRMWARE_ROLE_DESTINATION));
    g_assert_false(cocoPhaseMessageAllowed(COCO_PHASE_MESSAGE_SWITCHING,
                                           COCO_FIRMWARE_ROLE_SOURCE));
    g_assert_true(cocoPhaseMessageIsTransport(COCO_PHASE_MESSAGE_SWITCHING));
    g_assert_true(cocoPhaseMessageIsTransport(COCO_PHASE_MESSAGE_HEARTBEAT));
    g_assert_false(cocoPhaseMessageIsTransport(COCO_PHASE_EVENT_PEER_MEMORY));
    g_assert_cmpstr(cocoPhaseMessageTypeName(COCO_PHASE_MESSAGE_SWITCHING), ==,
                    "switching");
    g_assert_cmpstr(cocoPhaseMessageTypeName(COCO_PHASE_MESSAGE_HEARTBEAT), ==,
                    "heartbeat");
    g_assert_cmpstr(cocoPhaseMessageTypeName(COCO_PHASE_EVENT_PEER_MEMORY), ==,
                    cocoPhaseEventTypeToString(COCO_PHASE_EVENT_PEER_MEMORY));
    /* An argument other than 0 or 1, and any payload, are refused. */
    frame[8] = 2;
    g_assert_cmpint(cocoPhaseMessagePeekLength(frame, len, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
    g_assert_nonnull(strstr(err->message, "switching notice"));
    g_clear_error(&err);
    frame[8] = 1;
    frame[12] = 1;
    g_assert_cmpint(cocoPhaseMessagePeekLength(frame, len, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
    g_assert_nonnull(strstr(err->message, "'switching'"));
}

static void
checkSuccess(unsigned int rounds)
{
    Harness h;
    size_t n;
    const CocoPhaseTimelineEntry *tl;
    const CocoPhaseCounters *c;
    g_autofree char *text = NULL;

    harnessInit(&h, rounds, FAULT_NONE, 0);
    runLibvirt(&h);
    g_assert_cmpint(checkEnd(&h), ==, OUTCOME_MOVED);
    g_assert_cmpint(cocoMigrationSessionGetState(h.dst), ==,
                    COCO_PHASE_STATE_COMMITTED);
    g_assert_null(cocoMigrationSessionGetFailure(h.src));
    g_assert_null(cocoMigrationSessionGetFailure(h.dst));
    /* each gate decided once, released */
    g_assert_cmpint(
        lastDecision(&h, DST, COCO_PHASE_GATE_MIGRATE_INCOMING, 0)->verdict, ==,
        COCO_PHASE_VERDICT_RELEASE);
    g_assert_cmpint(lastDecision(&h, SRC, COCO_PHASE_GATE_MIGRATE, 0)->verdict,
                    ==, COCO_PHASE_VERDICT_RELEASE);
    g_assert_cmpint(
        lastDecision(&h, SRC, COCO_PHASE_GATE_MIGRATE_CONTINUE, 0)->verdict, ==,
        COCO_PHASE_VERDICT_RELEASE);
    g_assert_cmpint(lastDecision(&h, DST, COCO_PHASE_GATE_CONT, 0)->verdict, ==,
                    COCO_PHASE_VERDICT_RELEASE);
    g_assert_cmpuint(h.decisions->len, ==, 4);
    /* The guest's downtime on each side: from before the source's final
     * transfer (its precopy state) until the commit. */
    g_assert_cmpstr(h.switching[SRC]->str, ==, "+precopy,-committed");
    g_assert_cmpstr(h.switching[DST]->str, ==, "+precopy,-committed");

    c = cocoMigrationSessionGetCounters(h.src);
    g_assert_cmpuint(c->rounds, ==, rounds);
    g_assert_cmpuint(c->data.epochs, ==, rounds);
    g_assert_cmpuint(c->data.vcpus, ==, NVCPUS);
    g_assert_cmpuint(c->data.pages, >=, NPAGES);
    if (rounds > 1)
        g_assert_cmpuint(c->data.pages, >, NPAGES);
    g_assert_cmpint(c->blackout_us, >, 0);
    g_assert_cmpint(c->downtime_us, >=, 0);
    c = cocoMigrationSessionGetCounters(h.dst);
    g_assert_cmpuint(c->data.vcpus, ==, NVCPUS);
    g_assert_cmpuint(c->data.epochs, ==, rounds);

    tl = cocoMigrationSessionGetTimeline(h.src, &n);
    g_assert_cmpuint(n, >=, 6);
    g_assert_cmpint(tl[0].event, ==, COCO_PHASE_EVENT_MIGRATE);
    g_assert_cmpint(tl[0].to, ==, COCO_PHASE_STATE_PREPARING);
    g_assert_cmpint(tl[n - 1].event, ==, COCO_PHASE_EVENT_QEMU_GONE);
    g_assert_cmpint(tl[n - 1].to, ==, COCO_PHASE_STATE_FINISHED);
    g_assert_cmpstr(tl[n - 1].steps, ==, "finish");
    text = cocoMigrationSessionFormatTimeline(h.src);
    g_assert_nonnull(strstr(text, "pre-switchover"));
    g_assert_nonnull(strstr(text, "source-blackout,final"));
    if (g_test_verbose())
        g_printerr("%s", text);
    harnessClear(&h);
}

static void
testSuccess(void)
{
    checkSuccess(0);
}

static void
testSuccessPrecopy(void)
{
    checkSuccess(3);
}

/* The policy, not precopy_rounds, decides how many rounds run. */
static void
testPolicyRounds(void)
{
    Harness h;
    const CocoPhaseCounters *c;

    policy.on = true;
    policy.stop_at = 2;
    policy.abort = false;
    /* precopy_rounds 5 is ignored once a policy decides. */
    harnessInit(&h, 5, FAULT_NONE, 0);
    runLibvirt(&h);
    g_assert_cmpint(checkEnd(&h), ==, OUTCOME_MOVED);
    c = cocoMigrationSessionGetCounters(h.src);
    g_assert_cmpuint(c->rounds, ==, 2);
    g_assert_cmpuint(policy.calls, ==, 3);
    harnessClear(&h);
    policy.on = false;
}

/* The policy aborts (onNonConvergence="abort"): `migrate` is refused
 * with its reason, the source keeps running. */
static void
testPolicyAbort(void)
{
    Harness h;
    const Decision *d;

    policy.on = true;
    policy.stop_at = 1;
    policy.abort = true;
    harnessInit(&h, 0, FAULT_NONE, 0);
    runLibvirt(&h);
    g_assert_cmpint(checkEnd(&h), ==, OUTCOME_STAYED);
    d = lastDecision(&h, SRC, COCO_PHASE_GATE_MIGRATE, 0);
    g_assert_nonnull(d);
    g_assert_cmpint(d->verdict, ==, COCO_PHASE_VERDICT_REFUSE);
    g_assert_nonnull(cocoMigrationSessionGetFailure(h.src));
    g_assert_nonnull(strstr(cocoMigrationSessionGetFailure(h.src)->message,
                            "did not converge"));
    harnessClear(&h);
    policy.on = false;
}

/* Number of fault points of @kind on the success path. */
static unsigned int
countPoints(FaultKind kind, unsigned int rounds)
{
    Harness h;
    unsigned int n;

    harnessInit(&h, rounds, FAULT_FW, G_MAXUINT);
    runLibvirt(&h);
    g_assert_cmpint(checkEnd(&h), ==, OUTCOME_MOVED);
    n = kind == FAULT_FW || kind == FAULT_FW_AFTER ? h.fw_calls : h.deliveries;
    if (kind == FAULT_TAMPER) {
        harnessClear(&h);
        harnessInit(&h, rounds, FAULT_TAMPER, G_MAXUINT);
        runLibvirt(&h);
        n = h.payloads;
    }
    harnessClear(&h);
    return n;
}

typedef struct {
    FaultKind kind;
    unsigned int rounds;
} SweepData;

static void
testSweep(gconstpointer opaque)
{
    const SweepData *sd = opaque;
    unsigned int n = countPoints(sd->kind, sd->rounds);
    unsigned int counts[4] = {0};
    unsigned int k;

    g_assert_cmpuint(n, >, 5);
    for (k = 1; k <= n; k++) {
        Harness h;
        Outcome o;
        bool after_token;
        bool committed;

        harnessInit(&h, sd->rounds, sd->kind, k);
        runLibvirt(&h);
        g_assert_true(h.fired);
        o = checkEnd(&h);
        counts[o]++;
        after_token = h.src_op_at_fault == COCO_EMU_OP_POST_EXPORT ||
                      h.src_op_at_fault == COCO_EMU_OP_TEARDOWN;
        committed = h.dst_op_at_fault == COCO_EMU_OP_LIVE_IMPORT ||
                    h.dst_op_at_fault == COCO_EMU_OP_RUNNABLE;
        if (g_test_verbose())
            g_printerr("k=%u src=%s dst=%s -> %s\n", k,
                       cocoEmuOpStateTypeToString(h.src_op_at_fault),
                       cocoEmuOpStateTypeToString(h.dst_op_at_fault),
                       outcomeNames[o]);
        /* (1), (2): a fault before the start token never costs the source */
        if (!after_token && !committed)
            g_assert_cmpint(o, ==, OUTCOME_STAYED);
        switch (sd->kind) {
        case FAULT_FW:
        case FAULT_FW_AFTER:
        case FAULT_TAMPER:
        case FAULT_CANCEL:
        case FAULT_DQUIT:
            /* (3): the destination stays reachable, so the abort token
             * always comes back: never frozen */
            /* except when FINISH(D) committed but reported a failure:
             * then neither may run, and the source says so */
            if (!(sd->kind == FAULT_FW_AFTER &&
                  cocoEmuGetOpState(h.dfw) == COCO_EMU_OP_LIVE_IMPORT))
                g_assert_cmpint(o, !=, OUTCOME_FROZEN);
            if (sd->kind != FAULT_DQUIT)
                g_assert_cmpint(o, !=, OUTCOME_LOST);
            break;
        case FAULT_CRASH:
        case FAULT_LINK:
            /* (4): lost after the token and before the commit: frozen */
            if (after_token && !committed)
                g_assert_true(o == OUTCOME_FROZEN || o == OUTCOME_MOVED);
            if (sd->kind == FAULT_CRASH && after_token && !committed)
                g_assert_cmpint(o, ==, OUTCOME_FROZEN);
            break;
        case FAULT_NONE:
        default:
            break;
        }
        /* (5): once committed, the source never runs again */
        if (committed)
            g_assert_true(o == OUTCOME_MOVED || o == OUTCOME_LOST);
        harnessClear(&h);
    }
    if (g_test_verbose())
        g_printerr("%u points: moved %u stayed %u frozen %u lost %u\n", n,
                   counts[0], counts[1], counts[2], counts[3]);
    /* every kind of fault hits the before-token part at least once */
    g_assert_cmpuint(counts[OUTCOME_STAYED], >, 0);
}

/* Case (4) spelled out: what the operator sees. */
static void
testFrozen(void)
{
    Harness h;
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) why = NULL;
    const Decision *d;
    guint mark;

    harnessInit(&h, 0, FAULT_NONE, 0);
    event(&h, DST, COCO_PHASE_EVENT_INCOMING);
    event(&h, SRC, COCO_PHASE_EVENT_MIGRATE);
    pump(&h);
    event(&h, SRC, COCO_PHASE_EVENT_PRE_SWITCHOVER);
    /* from the switchover on, the relay keeps the source paused */
    g_assert_true(h.src_paused);
    /* the destination host dies before it acknowledges the start token */
    g_assert_cmpint(cocoEmuGetOpState(h.sfw), ==, COCO_EMU_OP_POST_EXPORT);
    h.dst_dead = h.link_down = true;
    mark = h.decisions->len;
    cocoErrorSet(&why, COCO_ERROR_PEER_TIMEOUT, "%s",
                 "the peer host '10.0.0.2' stopped answering");
    g_assert_cmpint(cocoMigrationSessionHandleEventWhy(
                        h.src, COCO_PHASE_EVENT_PEER_LOST, why, &err),
                    ==, 0);
    /* its fate is unknown: the source waits for the token, paused */
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_AWAIT_TOKEN);
    g_assert_true(h.src_paused);
    d = lastDecision(&h, SRC, COCO_PHASE_GATE_MIGRATE_CONTINUE, mark);
    g_assert_nonnull(d);
    g_assert_cmpint(d->verdict, ==, COCO_PHASE_VERDICT_REFUSE);
    g_assert_cmpint(d->code, ==, COCO_ERROR_MIGRATION_SOURCE_FROZEN);
    g_assert_cmpstr(d->message, ==,
                    "the peer host '10.0.0.2' stopped answering; the source "
                    "stays paused until the destination's abort token is "
                    "back, then resumes by itself");
    /* libvirt's cont waits a while, then is refused (hold-expired) */
    mark = h.decisions->len;
    g_assert_cmpint(
        cocoMigrationSessionHandleEvent(h.src, COCO_PHASE_EVENT_CONT, &err), ==,
        0);
    g_assert_cmpuint(h.decisions->len, ==, mark);
    g_assert_true(cocoMigrationSessionGateHeld(h.src, COCO_PHASE_GATE_CONT));
    g_assert_cmpint(cocoMigrationSessionHandleEvent(
                        h.src, COCO_PHASE_EVENT_HOLD_EXPIRED, &err),
                    ==, 0);
    d = lastDecision(&h, SRC, COCO_PHASE_GATE_CONT, mark);
    g_assert_nonnull(d);
    g_assert_cmpint(d->verdict, ==, COCO_PHASE_VERDICT_REFUSE);
    g_assert_cmpint(d->code, ==, COCO_ERROR_MIGRATION_SOURCE_FROZEN);
    /* the window to learn the token's fate expires: frozen, saying what
     * the operator can do */
    g_clear_error(&why);
    cocoErrorSet(&why, COCO_ERROR_MIGRATION_SOURCE_FROZEN, "%s",
                 "the peer host did not come back; run 'virt-coco recover'");
    g_assert_cmpint(cocoMigrationSessionHandleEventWhy(
                        h.src, COCO_PHASE_EVENT_GIVE_UP, why, &err),
                    ==, 0);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_FROZEN);
    g_assert_cmpstr(cocoMigrationSessionGetFailure(h.src)->message, ==,
                    "the peer host did not come back; run 'virt-coco "
                    "recover'");
    /* libvirt tries to resume the source, twice: refused both times */
    mark = h.decisions->len;
    g_assert_cmpint(
        cocoMigrationSessionHandleEvent(h.src, COCO_PHASE_EVENT_CONT, &err), ==,
        0);
    g_assert_cmpint(
        cocoMigrationSessionHandleEvent(h.src, COCO_PHASE_EVENT_CONT, &err), ==,
        0);
    g_assert_cmpuint(h.decisions->len, ==, mark + 2);
    d = lastDecision(&h, SRC, COCO_PHASE_GATE_CONT, mark);
    g_assert_cmpint(d->verdict, ==, COCO_PHASE_VERDICT_REFUSE);
    g_assert_cmpint(d->code, ==, COCO_ERROR_MIGRATION_SOURCE_FROZEN);
    g_assert_nonnull(strstr(d->message, "virt-coco recover"));
    g_assert_false(cocoEmuCanRun(h.sfw));
    g_assert_false(cocoMigrationSessionMayRun(h.src));
    /* the operator destroys it */
    g_assert_cmpint(cocoMigrationSessionHandleEvent(
                        h.src, COCO_PHASE_EVENT_QEMU_GONE, &err),
                    ==, 0);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_FINISHED);
    harnessClear(&h);
}

/* Case (4) resolved: the link comes back before the window expires; the
 * reconnected source asks for the token, which the destination (whose
 * QEMU libvirt killed meanwhile) gives back: the source resumes by itself,
 * exactly one host runs the guest. */
static void
testReconcile(void)
{
    Harness h;
    g_autoptr(GError) err = NULL;

    harnessInit(&h, 0, FAULT_NONE, 0);
    event(&h, DST, COCO_PHASE_EVENT_INCOMING);
    event(&h, SRC, COCO_PHASE_EVENT_MIGRATE);
    pump(&h);
    event(&h, SRC, COCO_PHASE_EVENT_PRE_SWITCHOVER);
    pump(&h);
    /* a cut after the destination imported the start token */
    h.link_down = true;
    event(&h, SRC, COCO_PHASE_EVENT_PEER_LOST);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_AWAIT_TOKEN);
    event(&h, DST, COCO_PHASE_EVENT_PEER_LOST);
    g_assert_cmpint(cocoMigrationSessionGetState(h.dst), ==,
                    COCO_PHASE_STATE_HANDOVER);
    /* libvirt cancels; the destination's QEMU is killed: its token is
     * lost on the cut link, the destination keeps its answer */
    event(&h, DST, COCO_PHASE_EVENT_QEMU_GONE);
    g_assert_cmpint(cocoMigrationSessionGetState(h.dst), ==,
                    COCO_PHASE_STATE_ABORTED);
    g_queue_clear_full(&h.to_src, (GDestroyNotify)g_bytes_unref);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_AWAIT_TOKEN);
    /* the link is back: the source asks again */
    h.link_down = false;
    g_assert_cmpint(cocoMigrationSessionHandleEvent(
                        h.src, COCO_PHASE_EVENT_PEER_RECONNECTED, &err),
                    ==, 0);
    pump(&h);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_ABORTED);
    /* no cont was held: the relay resumes the guest itself */
    g_assert_false(h.src_paused);
    g_assert_true(cocoEmuCanRun(h.sfw));
    g_assert_false(cocoEmuCanRun(h.dfw));
    harnessClear(&h);
}

/* The destination's own data path fails outside a step (the transfer
 * engine's threads: a bundle the firmware refused): the agent reports it
 * with cocoMigrationSessionFail(); the destination aborts with that reason
 * and the source, told so, aborts and may run. */
static void
testDataFailure(void)
{
    Harness h;
    g_autoptr(GError) why = NULL;
    g_autoptr(GError) err = NULL;
    const GError *failure;
    const Decision *d;
    guint mark;

    harnessInit(&h, 0, FAULT_NONE, 0);
    event(&h, DST, COCO_PHASE_EVENT_INCOMING);
    event(&h, SRC, COCO_PHASE_EVENT_MIGRATE);
    pump(&h);
    g_assert_cmpint(cocoMigrationSessionGetState(h.dst), ==,
                    COCO_PHASE_STATE_PRECOPY);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_PRECOPY);
    cocoErrorSet(&why, COCO_ERROR_FW_INTEGRITY, "%s",
                 "memory bundle 3 failed its MAC check");
    g_assert_cmpint(cocoMigrationSessionFail(h.dst, why, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(cocoMigrationSessionGetState(h.dst), ==,
                    COCO_PHASE_STATE_ABORTED);
    failure = cocoMigrationSessionGetFailure(h.dst);
    g_assert_nonnull(failure);
    g_assert_cmpint(failure->code, ==, COCO_ERROR_FW_INTEGRITY);
    g_assert_cmpstr(failure->message, ==,
                    "memory bundle 3 failed its MAC check");
    g_assert_false(cocoMigrationSessionMayRun(h.dst));
    /* libvirt's later cont on the destination is refused with the reason */
    mark = h.decisions->len;
    event(&h, DST, COCO_PHASE_EVENT_CONT);
    d = lastDecision(&h, DST, COCO_PHASE_GATE_CONT, mark);
    g_assert_nonnull(d);
    g_assert_cmpint(d->verdict, ==, COCO_PHASE_VERDICT_REFUSE);
    g_assert_nonnull(strstr(d->message, "failed its MAC check"));
    /* the source learns it from the destination, with the reason, aborts
     * and may run */
    pump(&h);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_ABORTED);
    g_assert_cmpstr(
        cocoMigrationSessionGetFailure(h.src)->message, ==,
        "the peer host aborted the migration: memory bundle 3 failed its MAC check");
    g_assert_true(cocoMigrationSessionMayRun(h.src));
    g_assert_true(cocoEmuCanRun(h.sfw));
    /* reported again (the engine's later errors): nothing changes */
    mark = h.decisions->len;
    g_assert_cmpint(cocoMigrationSessionFail(h.dst, why, &err), ==, 0);
    g_assert_cmpint(cocoMigrationSessionGetState(h.dst), ==,
                    COCO_PHASE_STATE_ABORTED);
    g_assert_cmpuint(h.decisions->len, ==, mark);
    harnessClear(&h);
}

/* The destination fails and says why; the source, still writing, first
 * sees its streams break (a symptom), then reads the destination's abort
 * message: its failure names both. A reason with control characters and
 * beyond the length limit arrives printable and cut. */
static void
testPeerReason(void)
{
    Harness h;
    g_autoptr(GError) why = NULL;
    g_autoptr(GError) io = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *longer = g_strnfill(2000, 'x');
    const GError *failure;

    harnessInit(&h, 0, FAULT_NONE, 0);
    event(&h, DST, COCO_PHASE_EVENT_INCOMING);
    event(&h, SRC, COCO_PHASE_EVENT_MIGRATE);
    pump(&h);
    cocoErrorSet(&why, COCO_ERROR_FW_INTEGRITY,
                 "memory bundle 9 failed\nits MAC check %s", longer);
    g_assert_cmpint(cocoMigrationSessionFail(h.dst, why, &err), ==, 0);
    cocoErrorSet(&io, COCO_ERROR_TRANSFER_IO, "%s",
                 "cannot write to stream '0': Connection reset by peer");
    g_assert_cmpint(cocoMigrationSessionFail(h.src, io, &err), ==, 0);
    g_assert_no_error(err);
    failure = cocoMigrationSessionGetFailure(h.src);
    g_assert_cmpint(failure->code, ==, COCO_ERROR_TRANSFER_IO);
    pump(&h);
    failure = cocoMigrationSessionGetFailure(h.src);
    g_assert_cmpint(failure->code, ==, COCO_ERROR_MIGRATION_ABORTED);
    g_assert_true(g_str_has_prefix(
        failure->message,
        "cannot write to stream '0': Connection reset by peer; the peer host "
        "aborted the migration: memory bundle 9 failed its MAC check xxx"));
    g_assert_null(strchr(failure->message, '\n'));
    g_assert_cmpuint(strlen(failure->message), <, 700);
    g_assert_true(cocoMigrationSessionMayRun(h.src));
    /* the destination keeps its own cause */
    g_assert_cmpint(cocoMigrationSessionGetFailure(h.dst)->code, ==,
                    COCO_ERROR_FW_INTEGRITY);
    harnessClear(&h);
}

/* The source fails on a broken stream and tells the destination; the
 * destination, aborting because of it, sends its token without echoing
 * that reason back. */
static void
testPeerReasonNoEcho(void)
{
    Harness h;
    g_autoptr(GError) io = NULL;
    g_autoptr(GError) err = NULL;

    harnessInit(&h, 0, FAULT_NONE, 0);
    event(&h, DST, COCO_PHASE_EVENT_INCOMING);
    event(&h, SRC, COCO_PHASE_EVENT_MIGRATE);
    pump(&h);
    cocoErrorSet(&io, COCO_ERROR_TRANSFER_IO, "%s",
                 "cannot write to stream '2': Broken pipe");
    g_assert_cmpint(cocoMigrationSessionFail(h.src, io, &err), ==, 0);
    pump(&h);
    g_assert_cmpstr(
        cocoMigrationSessionGetFailure(h.dst)->message, ==,
        "the peer host aborted the migration: cannot write to stream '2': Broken pipe");
    g_assert_cmpstr(cocoMigrationSessionGetFailure(h.src)->message, ==,
                    "cannot write to stream '2': Broken pipe");
    g_assert_true(cocoMigrationSessionMayRun(h.src));
    harnessClear(&h);
}

/* Case (4) with recovery: the destination comes back and sends its abort
 * token; the source then resumes. */
static void
testFrozenRecovered(void)
{
    Harness h;
    g_autoptr(GError) err = NULL;
    const Decision *d;
    guint mark;

    harnessInit(&h, 0, FAULT_NONE, 0);
    event(&h, DST, COCO_PHASE_EVENT_INCOMING);
    event(&h, SRC, COCO_PHASE_EVENT_MIGRATE);
    pump(&h);
    event(&h, SRC, COCO_PHASE_EVENT_PRE_SWITCHOVER);
    pump(&h);
    event(&h, SRC, COCO_PHASE_EVENT_PEER_LOST);
    event(&h, SRC, COCO_PHASE_EVENT_CONT);
    event(&h, SRC, COCO_PHASE_EVENT_GIVE_UP);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_FROZEN);
    /* the link is back: the destination is cancelled and answers */
    event(&h, DST, COCO_PHASE_EVENT_QEMU_GONE);
    pump(&h);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_ABORTED);
    mark = h.decisions->len;
    g_assert_cmpint(
        cocoMigrationSessionHandleEvent(h.src, COCO_PHASE_EVENT_CONT, &err), ==,
        0);
    d = lastDecision(&h, SRC, COCO_PHASE_GATE_CONT, mark);
    g_assert_cmpint(d->verdict, ==, COCO_PHASE_VERDICT_RELEASE);
    /* a second cont (a later virsh resume) is released again */
    mark = h.decisions->len;
    g_assert_cmpint(
        cocoMigrationSessionHandleEvent(h.src, COCO_PHASE_EVENT_CONT, &err), ==,
        0);
    g_assert_cmpuint(h.decisions->len, ==, mark + 1);
    d = lastDecision(&h, SRC, COCO_PHASE_GATE_CONT, mark);
    g_assert_cmpint(d->verdict, ==, COCO_PHASE_VERDICT_RELEASE);
    g_assert_true(cocoEmuCanRun(h.sfw));
    g_assert_false(cocoEmuCanRun(h.dfw));
    harnessClear(&h);
}

/* A tampered abort token is refused by the firmware: frozen, said so. */
static void
testBadAbortToken(void)
{
    Harness h;
    const GError *why;

    harnessInit(&h, 0, FAULT_NONE, 0);
    event(&h, DST, COCO_PHASE_EVENT_INCOMING);
    event(&h, SRC, COCO_PHASE_EVENT_MIGRATE);
    pump(&h);
    event(&h, SRC, COCO_PHASE_EVENT_PRE_SWITCHOVER);
    pump(&h);
    event(&h, DST, COCO_PHASE_EVENT_QEMU_GONE); /* ABORT(D) -> token */
    h.fault = FAULT_TAMPER;
    h.k = 1;
    h.payloads = 0;
    pump(&h);
    g_assert_true(h.fired);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_FROZEN);
    why = cocoMigrationSessionGetFailure(h.src);
    g_assert_error(why, COCO_ERROR, COCO_ERROR_MIGRATION_SOURCE_FROZEN);
    g_assert_nonnull(strstr(why->message, "abort token was rejected"));
    event(&h, SRC, COCO_PHASE_EVENT_CONT);
    g_assert_cmpint(checkEnd(&h), ==, OUTCOME_FROZEN);
    harnessClear(&h);
}

/* Case (5): after the commit the source is refused, whatever libvirt
 * does. */
static void
testCommitted(void)
{
    Harness h;
    const Decision *d;
    guint mark;

    harnessInit(&h, 0, FAULT_NONE, 0);
    event(&h, DST, COCO_PHASE_EVENT_INCOMING);
    event(&h, SRC, COCO_PHASE_EVENT_MIGRATE);
    pump(&h);
    event(&h, SRC, COCO_PHASE_EVENT_PRE_SWITCHOVER);
    pump(&h);
    event(&h, DST, COCO_PHASE_EVENT_CONT);
    pump(&h);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_COMMITTED);
    /* Confirm fails on the source's side: libvirt tries cont */
    mark = h.decisions->len;
    event(&h, SRC, COCO_PHASE_EVENT_CONT);
    pump(&h);
    d = lastDecision(&h, SRC, COCO_PHASE_GATE_CONT, mark);
    g_assert_cmpint(d->verdict, ==, COCO_PHASE_VERDICT_REFUSE);
    g_assert_cmpint(d->code, ==, COCO_ERROR_MIGRATION_SOURCE_FROZEN);
    g_assert_nonnull(strstr(d->message, "owns the guest"));
    /* the destination QEMU dies after the commit: the guest is lost with
     * it, the source still never runs */
    event(&h, DST, COCO_PHASE_EVENT_QEMU_GONE);
    h.dst_quit = true;
    event(&h, SRC, COCO_PHASE_EVENT_QEMU_GONE);
    g_assert_cmpint(checkEnd(&h), ==, OUTCOME_LOST);
    harnessClear(&h);
}

/* Wrong order: refused, named, nothing changes. Repeats: idempotent. */
static void
testOrder(void)
{
    Harness h;
    g_autoptr(GError) err = NULL;
    size_t n1;
    size_t n2;
    guint mark;

    harnessInit(&h, 0, FAULT_NONE, 0);
    g_assert_cmpint(cocoMigrationSessionHandleEvent(
                        h.src, COCO_PHASE_EVENT_PRE_SWITCHOVER, &err),
                    ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_MIGRATION_PHASE);
    g_assert_nonnull(strstr(err->message, "'pre-switchover'"));
    g_assert_nonnull(strstr(err->message, "'idle'"));
    g_assert_nonnull(strstr(err->message, "migrate"));
    g_clear_error(&err);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_IDLE);
    g_assert_false(
        cocoMigrationSessionGateHeld(h.src, COCO_PHASE_GATE_MIGRATE_CONTINUE));
    g_assert_cmpuint(h.decisions->len, ==, 0);

    /* destination cont before anything */
    g_assert_cmpint(
        cocoMigrationSessionHandleEvent(h.dst, COCO_PHASE_EVENT_CONT, &err), ==,
        -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_MIGRATION_PHASE);
    g_clear_error(&err);
    /* a relay must not report peer messages or internal events */
    g_assert_cmpint(cocoMigrationSessionHandleEvent(
                        h.src, COCO_PHASE_EVENT_PEER_ABORT_TOKEN, &err),
                    ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_cmpint(cocoMigrationSessionHandleEvent(
                        h.src, COCO_PHASE_EVENT_LOCAL_FAILURE, &err),
                    ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);

    event(&h, DST, COCO_PHASE_EVENT_INCOMING);
    /* incoming twice */
    g_assert_cmpint(
        cocoMigrationSessionHandleEvent(h.dst, COCO_PHASE_EVENT_INCOMING, &err),
        ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_MIGRATION_PHASE);
    g_clear_error(&err);
    event(&h, SRC, COCO_PHASE_EVENT_MIGRATE);
    pump(&h);
    /* migrate twice */
    g_assert_cmpint(
        cocoMigrationSessionHandleEvent(h.src, COCO_PHASE_EVENT_MIGRATE, &err),
        ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_MIGRATION_PHASE);
    g_clear_error(&err);
    /* query, any number of times, on both sides: no change */
    cocoMigrationSessionGetTimeline(h.src, &n1);
    mark = h.decisions->len;
    for (int i = 0; i < 5; i++) {
        g_assert_cmpint(cocoMigrationSessionHandleEvent(
                            h.src, COCO_PHASE_EVENT_QUERY, &err),
                        ==, 0);
        g_assert_cmpint(cocoMigrationSessionHandleEvent(
                            h.dst, COCO_PHASE_EVENT_QUERY, &err),
                        ==, 0);
    }
    cocoMigrationSessionGetTimeline(h.src, &n2);
    g_assert_cmpuint(n2, ==, n1 + 5);
    g_assert_cmpuint(h.decisions->len, ==, mark);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_PRECOPY);
    /* destination cont before the start token: refused, nothing runs */
    g_assert_cmpint(
        cocoMigrationSessionHandleEvent(h.dst, COCO_PHASE_EVENT_CONT, &err), ==,
        0);
    g_assert_cmpint(lastDecision(&h, DST, COCO_PHASE_GATE_CONT, mark)->verdict,
                    ==, COCO_PHASE_VERDICT_REFUSE);
    pump(&h);
    g_assert_cmpint(cocoMigrationSessionGetState(h.src), ==,
                    COCO_PHASE_STATE_ABORTED);
    /* QEMU was told to stop its migration */
    g_assert_cmpint(
        lastDecision(&h, SRC, COCO_PHASE_GATE_MIGRATE, mark)->verdict, ==,
        COCO_PHASE_VERDICT_CANCEL);
    g_assert_true(cocoEmuCanRun(h.sfw));
    g_assert_false(cocoEmuCanRun(h.dfw));
    harnessClear(&h);

    /* a committed destination answers cont again and again */
    harnessInit(&h, 0, FAULT_NONE, 0);
    runLibvirt(&h);
    mark = h.decisions->len;
    event(&h, DST, COCO_PHASE_EVENT_CONT);
    event(&h, DST, COCO_PHASE_EVENT_CONT);
    g_assert_cmpuint(h.decisions->len, ==, mark + 2);
    g_assert_cmpint(lastDecision(&h, DST, COCO_PHASE_GATE_CONT, mark)->verdict,
                    ==, COCO_PHASE_VERDICT_RELEASE);
    g_assert_cmpint(checkEnd(&h), ==, OUTCOME_MOVED);
    harnessClear(&h);
}

static const char *const sweepNames[] = {
    "", "fw", "fw-after", "tamper", "link", "crash", "cancel", "dst-quit"};
G_STATIC_ASSERT(G_N_ELEMENTS(sweepNames) == FAULT_DQUIT + 1);
static const SweepData sweeps[] = {
    {FAULT_FW, 0},       {FAULT_FW, 2},     {FAULT_FW_AFTER, 0},
    {FAULT_FW_AFTER, 2}, {FAULT_TAMPER, 0}, {FAULT_TAMPER, 2},
    {FAULT_LINK, 0},     {FAULT_LINK, 2},   {FAULT_CRASH, 0},
    {FAULT_CRASH, 2},    {FAULT_CANCEL, 0}, {FAULT_CANCEL, 2},
    {FAULT_DQUIT, 0},    {FAULT_DQUIT, 2},
};

int
main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/phase/table", testTable);
    g_test_add_func("/phase/message", testMessage);
    g_test_add_func("/phase/message/transport", testMessageTransport);
    g_test_add_func("/phase/docs", testDocs);
    g_test_add_func("/phase/qmp", testQmp);
    g_test_add_func("/phase/success", testSuccess);
    g_test_add_func("/phase/success-precopy", testSuccessPrecopy);
    g_test_add_func("/phase/policy-rounds", testPolicyRounds);
    g_test_add_func("/phase/policy-abort", testPolicyAbort);
    g_test_add_func("/phase/order", testOrder);
    g_test_add_func("/phase/frozen", testFrozen);
    g_test_add_func("/phase/frozen-recovered", testFrozenRecovered);
    g_test_add_func("/phase/reconcile", testReconcile);
    g_test_add_func("/phase/data-failure", testDataFailure);
    g_test_add_func("/phase/peer-reason", testPeerReason);
    g_test_add_func("/phase/peer-reason-no-echo", testPeerReasonNoEcho);
    g_test_add_func("/phase/bad-abort-token", testBadAbortToken);
    g_test_add_func("/phase/committed", testCommitted);
    for (i = 0; i < G_N_ELEMENTS(sweeps); i++) {
        g_autofree char *name =
            g_strdup_printf("/phase/fault/%s/rounds-%u",
                            sweepNames[sweeps[i].kind], sweeps[i].rounds);

        g_test_add_data_func(name, &sweeps[i], testSweep);
    }
    return g_test_run();
}
