/*
 * cocophasetransfer.c: the data path over the transfer engine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "migration/cocophasetransfer.h"
#include "util/cocoerror.h"

typedef struct {
    CocoTransferSource *src;
    CocoTransferDest *dst;
} CocoPhaseXfer;

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

static int
cocoPhaseXferRound(CocoPhaseData *d, CocoFirmware *fw G_GNUC_UNUSED,
                   CocoPhaseDataStats *st, GError **error)
{
    CocoPhaseXfer *x = d->priv;
    int ret = cocoTransferSourceRound(x->src, NULL, error);

    cocoPhaseXferStats(x, st);
    if (ret == 0)
        st->epochs++;
    return ret;
}

static int
cocoPhaseXferSync(CocoPhaseData *d, CocoFirmware *fw G_GNUC_UNUSED,
                  GError **error)
{
    CocoPhaseXfer *x = d->priv;

    return cocoTransferSourceSync(x->src, error);
}

static int
cocoPhaseXferFinal(CocoPhaseData *d, CocoFirmware *fw G_GNUC_UNUSED,
                   unsigned int nvcpus, bool *start_token,
                   CocoPhaseDataStats *st, GError **error)
{
    CocoPhaseXfer *x = d->priv;
    int ret = cocoTransferSourceFinish(x->src, nvcpus, error);

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
}

static void
cocoPhaseXferFree(CocoPhaseData *d)
{
    CocoPhaseXfer *x = d->priv;

    if (!x)
        return;
    if (x->src)
        cocoTransferSourceFree(x->src);
    if (x->dst)
        cocoTransferDestFree(x->dst);
    g_free(x);
}

static const CocoPhaseDataOps cocoPhaseXferSourceOps = {
    .setup = cocoPhaseXferSetup,
    .round = cocoPhaseXferRound,
    .sync = cocoPhaseXferSync,
    .final = cocoPhaseXferFinal,
    .import = cocoPhaseXferImport,
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

    x->dst = dst;
    d->ops = &cocoPhaseXferDestOps;
    d->priv = x;
    return d;
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
