/*
 * cocophasetransfer.c: the data path over the transfer engine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "migration/cocophasetransfer.h"
#include "util/cocoerror.h"

typedef struct {
    gint refs; /* the data path, a round's thread and its notice */
    CocoTransferSource *src;
    CocoTransferDest *dst;

    /* Asynchronous rounds (cocoPhaseDataSetAsyncRounds()); main context
     * only, except round_err, which the thread sets before it ends. */
    GMainContext *ctx;
    CocoPhaseRoundEndFunc ended;
    void *opaque;
    GThread *round; /* the round in flight, until joined */
    guint round_seq; /* rounds started */
    guint rounds_done; /* rounds joined that succeeded */
    GError *round_err;
    bool freed; /* the data path is gone: notices do nothing */
} CocoPhaseXfer;

static CocoPhaseXfer *
cocoPhaseXferRef(CocoPhaseXfer *x)
{
    g_atomic_int_inc(&x->refs);
    return x;
}

static void
cocoPhaseXferUnref(gpointer opaque)
{
    CocoPhaseXfer *x = opaque;

    if (!g_atomic_int_dec_and_test(&x->refs))
        return;
    g_clear_error(&x->round_err);
    if (x->ctx)
        g_main_context_unref(x->ctx);
    g_free(x);
}

/* Wait for the round in flight; -1 with its error when it failed. */
static int
cocoPhaseXferJoin(CocoPhaseXfer *x, GError **error)
{
    if (!x->round)
        return 0;
    g_thread_join(x->round);
    x->round = NULL;
    if (x->round_err) {
        g_propagate_error(error, g_steal_pointer(&x->round_err));
        return -1;
    }
    x->rounds_done++;
    return 0;
}

static void
cocoPhaseXferStats(CocoPhaseXfer *x, CocoPhaseDataStats *st)
{
    CocoTransferStats ts;

    cocoTransferSourceGetStats(x->src, &ts);
    st->pages = ts.pages;
    st->bundles = ts.bundles;
    st->bytes = ts.bytes;
}

static int
cocoPhaseXferSetup(CocoPhaseData *d, CocoFirmware *fw G_GNUC_UNUSED,
                   CocoPhaseDataStats *st, GError **error)
{
    CocoPhaseXfer *x = d->priv;
    int ret = cocoTransferSourceStart(x->src, error);

    cocoPhaseXferStats(x, st);
    return ret;
}

/* The end of round @seq, from its thread to the main context. */
typedef struct {
    CocoPhaseXfer *x;
    guint seq;
} CocoPhaseXferNotice;

static void
cocoPhaseXferNoticeFree(gpointer opaque)
{
    CocoPhaseXferNotice *n = opaque;

    cocoPhaseXferUnref(n->x);
    g_free(n);
}

/* A round's thread ended: join it and report its end. A notice of a round already joined (another step waited for
 * it, or a newer round runs) does nothing. */
static gboolean
cocoPhaseXferOnRoundEnd(gpointer opaque)
{
    CocoPhaseXferNotice *n = opaque;
    CocoPhaseXfer *x = n->x;
    g_autoptr(GError) err = NULL;

    if (x->freed || !x->round || x->round_seq != n->seq)
        return G_SOURCE_REMOVE;
    cocoPhaseXferJoin(x, &err);
    if (x->ended)
        x->ended(err, x->opaque);
    return G_SOURCE_REMOVE;
}

static gpointer
cocoPhaseXferRoundThread(gpointer opaque)
{
    CocoPhaseXferNotice *n = opaque;
    CocoPhaseXfer *x = n->x;
    GError *err = NULL;

    GSource *idle;

    if (cocoTransferSourceRound(x->src, NULL, &err) < 0)
        x->round_err = err;
    /* Always queued (never run here: it joins this thread). */
    idle = g_idle_source_new();
    g_source_set_callback(idle, cocoPhaseXferOnRoundEnd, n,
                          cocoPhaseXferNoticeFree);
    g_source_attach(idle, x->ctx);
    g_source_unref(idle);
    return NULL;
}

static int
cocoPhaseXferRound(CocoPhaseData *d, CocoFirmware *fw G_GNUC_UNUSED,
                   CocoPhaseDataStats *st, GError **error)
{
    CocoPhaseXfer *x = d->priv;
    int ret;

    if (x->ctx) {
        /* The previous round ended before its acknowledgement came. */
        ret = cocoPhaseXferJoin(x, error);
        cocoPhaseXferStats(x, st);
        st->epochs = x->rounds_done;
        if (ret < 0)
            return -1;
        {
            CocoPhaseXferNotice *n = g_new0(CocoPhaseXferNotice, 1);

            n->x = cocoPhaseXferRef(x);
            n->seq = ++x->round_seq;
            x->round = g_thread_new("coco-round", cocoPhaseXferRoundThread, n);
        }
        return 0;
    }
    ret = cocoTransferSourceRound(x->src, NULL, error);
    cocoPhaseXferStats(x, st);
    if (ret == 0)
        st->epochs++;
    return ret;
}

static int
cocoPhaseXferWait(CocoPhaseData *d, GError **error)
{
    return cocoPhaseXferJoin(d->priv, error);
}

static int
cocoPhaseXferSync(CocoPhaseData *d, CocoFirmware *fw G_GNUC_UNUSED,
                  GError **error)
{
    CocoPhaseXfer *x = d->priv;

    if (cocoPhaseXferJoin(x, error) < 0)
        return -1;
    return cocoTransferSourceSync(x->src, error);
}

static int
cocoPhaseXferFinal(CocoPhaseData *d, CocoFirmware *fw G_GNUC_UNUSED,
                   unsigned int nvcpus, bool *start_token,
                   CocoPhaseDataStats *st, GError **error)
{
    CocoPhaseXfer *x = d->priv;
    int ret;

    if (cocoPhaseXferJoin(x, error) < 0) {
        *start_token = false;
        return -1;
    }
    if (x->ctx)
        st->epochs = x->rounds_done;
    ret = cocoTransferSourceFinish(x->src, nvcpus, error);

    /* On failure the engine cannot say whether the firmware emitted the
     * start token; the session finds out from ABORT. */
    *start_token = ret == 0;
    cocoPhaseXferStats(x, st);
    if (ret == 0)
        st->vcpus += nvcpus;
    return ret;
}

static int
cocoPhaseXferImport(CocoPhaseData *d G_GNUC_UNUSED,
                    CocoFirmware *fw G_GNUC_UNUSED, const CocoPhaseMessage *msg,
                    CocoPhaseEvent *progress,
                    CocoPhaseDataStats *st G_GNUC_UNUSED, GError **error)
{
    *progress = COCO_PHASE_EVENT_LAST;
    return cocoErrorSet(
        error, COCO_ERROR_TRANSFER_PROTOCOL,
        _("message '%1$s' carries migration data, which travels on the transfer streams here"),
        cocoPhaseEventTypeToString(msg->type));
}

static int
cocoPhaseXferNoSource(CocoPhaseData *d G_GNUC_UNUSED,
                      CocoFirmware *fw G_GNUC_UNUSED,
                      CocoPhaseDataStats *st G_GNUC_UNUSED, GError **error)
{
    return cocoErrorSet(error, COCO_ERROR_INTERNAL, "%s",
                        _("a destination data path cannot export"));
}

static int
cocoPhaseXferNoFinal(CocoPhaseData *d G_GNUC_UNUSED,
                     CocoFirmware *fw G_GNUC_UNUSED,
                     unsigned int nvcpus G_GNUC_UNUSED, bool *start_token,
                     CocoPhaseDataStats *st G_GNUC_UNUSED, GError **error)
{
    *start_token = false;
    return cocoErrorSet(error, COCO_ERROR_INTERNAL, "%s",
                        _("a destination data path cannot export"));
}

static void
cocoPhaseXferStop(CocoPhaseData *d)
{
    CocoPhaseXfer *x = d->priv;

    if (x->src)
        cocoTransferSourceCancel(x->src);
    if (x->dst)
        cocoTransferDestCancel(x->dst);
    /* A round in flight ends on the cancelled streams; its error is moot. */
    if (x->round) {
        g_autoptr(GError) err = NULL;

        cocoPhaseXferJoin(x, &err);
    }
}

static void
cocoPhaseXferFree(CocoPhaseData *d)
{
    CocoPhaseXfer *x = d->priv;

    if (!x)
        return;
    if (x->round) {
        g_autoptr(GError) err = NULL;

        if (x->src)
            cocoTransferSourceCancel(x->src);
        cocoPhaseXferJoin(x, &err);
    }
    if (x->src)
        cocoTransferSourceFree(x->src);
    if (x->dst)
        cocoTransferDestFree(x->dst);
    x->src = NULL;
    x->dst = NULL;
    x->freed = true;
    cocoPhaseXferUnref(x);
}

static const CocoPhaseDataOps cocoPhaseXferSourceOps = {
    .setup = cocoPhaseXferSetup,
    .round = cocoPhaseXferRound,
    .sync = cocoPhaseXferSync,
    .final = cocoPhaseXferFinal,
    .import = cocoPhaseXferImport,
    .wait = cocoPhaseXferWait,
    .stop = cocoPhaseXferStop,
    .free = cocoPhaseXferFree,
};

static const CocoPhaseDataOps cocoPhaseXferDestOps = {
    .setup = cocoPhaseXferNoSource,
    .round = cocoPhaseXferNoSource,
    .final = cocoPhaseXferNoFinal,
    .import = cocoPhaseXferImport,
    .stop = cocoPhaseXferStop,
    .free = cocoPhaseXferFree,
};

CocoPhaseData *
cocoPhaseDataNewTransferSource(CocoTransferSource *src)
{
    CocoPhaseData *d = g_new0(CocoPhaseData, 1);
    CocoPhaseXfer *x = g_new0(CocoPhaseXfer, 1);

    x->refs = 1;
    x->src = src;
    d->ops = &cocoPhaseXferSourceOps;
    d->priv = x;
    return d;
}

CocoPhaseData *
cocoPhaseDataNewTransferDest(CocoTransferDest *dst)
{
    CocoPhaseData *d = g_new0(CocoPhaseData, 1);
    CocoPhaseXfer *x = g_new0(CocoPhaseXfer, 1);

    x->refs = 1;
    x->dst = dst;
    d->ops = &cocoPhaseXferDestOps;
    d->priv = x;
    return d;
}

void
cocoPhaseDataSetAsyncRounds(CocoPhaseData *d, GMainContext *ctx,
                            CocoPhaseRoundEndFunc ended, void *opaque)
{
    CocoPhaseXfer *x = d->priv;

    g_return_if_fail(x->src && !x->round && !x->ctx);
    x->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
    x->ended = ended;
    x->opaque = opaque;
}

CocoPhaseEvent
cocoPhaseTransferTrackerNext(CocoPhaseTransferTracker *t,
                             const CocoTransferStats *stats)
{
    bool final = stats->phase == COCO_TRANSFER_PHASE_FINAL ||
                 stats->phase == COCO_TRANSFER_PHASE_DONE;

    if (stats->phase == COCO_TRANSFER_PHASE_IDLE ||
        stats->phase == COCO_TRANSFER_PHASE_SETUP ||
        stats->phase == COCO_TRANSFER_PHASE_FAILED)
        return COCO_PHASE_EVENT_LAST;
    if (!t->setup) {
        t->setup = true;
        return COCO_PHASE_EVENT_DATA_SETUP;
    }
    /* stats->epoch counts the epoch tokens imported */
    if (t->epochs < stats->epoch) {
        t->epochs++;
        return COCO_PHASE_EVENT_DATA_ROUND;
    }
    if (final && !t->start) {
        t->start = true;
        return COCO_PHASE_EVENT_DATA_START;
    }
    return COCO_PHASE_EVENT_LAST;
}
