/*
 * cocophasedata.c: the direct data path (firmware export/import calls,
 * bundles carried as phase messages)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "migration/cocophasedata.h"
#include "util/cocoerror.h"

#include <errno.h>

#define COCO_PHASE_DATA_MIN_BUF (64U * 1024U)
#define COCO_PHASE_DATA_PAGE 4096U
#define COCO_PHASE_DATA_DEFAULT_GFNS 512U

typedef struct {
    uint64_t npages;
    unsigned int nstreams;
    unsigned int next_stream;
    CocoPhaseDirtyFunc dirty;
    void *dirty_opaque;
    bool first_done; /* every page went out once */
    GArray *retry; /* gfns to send again in the next epoch */
    unsigned int max_gfns;
    GByteArray *buf; /* export/import scratch */
} CocoPhaseDirect;

void
cocoPhaseDataFree(CocoPhaseData *d)
{
    if (!d)
        return;
    if (d->ops && d->ops->free)
        d->ops->free(d);
    g_free(d);
}

static int
cocoPhaseDirectSend(CocoPhaseData *d, CocoPhaseEvent type, uint32_t arg,
                    const void *data, size_t len, CocoPhaseDataStats *st,
                    GError **error)
{
    CocoPhaseMessage msg = {type, arg, data, len};

    if (!d->send)
        return cocoErrorSet(error, COCO_ERROR_INTERNAL, "%s",
                            _("the data path has no transport to the peer"));
    if (d->send(d->send_opaque, &msg, error) < 0)
        return -1;
    st->bytes += len;
    return 0;
}

/* Call a firmware export that writes into p->buf, growing it once when
 * the backend reports the size it needs. */
static int
cocoPhaseDirectBuf(CocoPhaseDirect *p, size_t want)
{
    if (p->buf->len < want)
        g_byte_array_set_size(p->buf, want);
    return 0;
}

static bool
cocoPhaseDirectRetrySize(CocoPhaseDirect *p, int ret,
                         const CocoFirmwareStatus *status, size_t had,
                         GError **error)
{
    if (ret == -EINVAL && status->needed > had &&
        status->needed <= COCO_PHASE_MESSAGE_MAX) {
        cocoPhaseDirectBuf(p, status->needed);
        g_clear_error(error);
        return true;
    }
    return false;
}

static int
cocoPhaseDirectCmdOut(CocoPhaseDirect *p, CocoFirmware *fw, CocoMigrateCmd cmd,
                      uint32_t flags, size_t *len, GError **error)
{
    CocoFirmwareStatus status;
    int attempt;
    int ret = -EINVAL;

    for (attempt = 0; attempt < 2; attempt++) {
        *len = p->buf->len;
        ret = cocoFirmwareMigrateCmd(fw, cmd, flags, p->buf->data, len, &status,
                                     error);
        if (ret == 0 ||
            !cocoPhaseDirectRetrySize(p, ret, &status, p->buf->len, error))
            break;
    }
    return ret < 0 ? -1 : 0;
}

static int
cocoPhaseDirectSetup(CocoPhaseData *d, CocoFirmware *fw, CocoPhaseDataStats *st,
                     GError **error)
{
    CocoPhaseDirect *p = d->priv;
    CocoFirmwareCaps caps;
    size_t len;

    if (cocoFirmwareGetCaps(fw, &caps, error) < 0)
        return -1;
    p->max_gfns =
        caps.max_gfns ? MIN(caps.max_gfns, 512U) : COCO_PHASE_DATA_DEFAULT_GFNS;
    if (caps.max_streams >= 2 && p->nstreams > caps.max_streams - 1)
        p->nstreams = caps.max_streams - 1;
    if (cocoPhaseDirectCmdOut(p, fw, COCO_MIGRATE_CMD_SETUP, 0, &len, error) <
        0)
        return -1;
    return cocoPhaseDirectSend(d, COCO_PHASE_EVENT_PEER_SETUP, 0, p->buf->data,
                               len, st, error);
}

static gint
cocoPhaseCmpU64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The pages of this epoch: every page the first time, then the retries
 * and what the guest dirtied; sorted, without duplicates. */
static GArray *
cocoPhaseDirectPageSet(CocoPhaseDirect *p, GError **error)
{
    g_autoptr(GArray) set = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    uint64_t g;
    guint i;
    guint j = 0;

    if (!p->first_done) {
        for (g = 0; g < p->npages; g++)
            g_array_append_val(set, g);
        if (p->dirty && p->dirty(p->dirty_opaque, set, error) < 0)
            return NULL;
        /* everything goes out anyway: drop what the callback added */
        g_array_set_size(set, p->npages);
        return g_steal_pointer(&set);
    }
    g_array_append_vals(set, p->retry->data, p->retry->len);
    g_array_set_size(p->retry, 0);
    if (p->dirty && p->dirty(p->dirty_opaque, set, error) < 0)
        return NULL;
    g_array_sort(set, cocoPhaseCmpU64);
    for (i = 0; i < set->len; i++) {
        uint64_t v = g_array_index(set, uint64_t, i);

        if (v >= p->npages)
            continue;
        if (j > 0 && g_array_index(set, uint64_t, j - 1) == v)
            continue;
        g_array_index(set, uint64_t, j++) = v;
    }
    g_array_set_size(set, j);
    return g_steal_pointer(&set);
}

/* Export @n pages in one bundle and send it. Pages the firmware refuses
 * individually go to the retry list (the next epoch); an error with no
 * page refused individually is returned. */
static int
cocoPhaseDirectExportChunk(CocoPhaseData *d, CocoFirmware *fw,
                           const uint64_t *gfns, uint32_t n,
                           CocoPhaseDataStats *st, GError **error)
{
    CocoPhaseDirect *p = d->priv;
    g_autofree uint8_t *gst = g_new0(uint8_t, n);
    g_autofree uint64_t *now = NULL;
    uint32_t stream = p->next_stream;
    CocoFirmwareStatus status;
    uint32_t nnow = 0;
    uint32_t i;
    size_t len;
    int ret;

    cocoPhaseDirectBuf(p, (size_t)n * (COCO_PHASE_DATA_PAGE + 64) + 4096);
    len = p->buf->len;
    ret = cocoFirmwareExportMemory(fw, stream, gfns, n, gst, p->buf->data, &len,
                                   &status, error);
    if (ret < 0 && cocoPhaseDirectRetrySize(p, ret, &status, len, error)) {
        len = p->buf->len;
        ret = cocoFirmwareExportMemory(fw, stream, gfns, n, gst, p->buf->data,
                                       &len, &status, error);
    }
    if (ret < 0) {
        bool refused = false;

        now = g_new0(uint64_t, n);
        for (i = 0; i < n; i++) {
            if (gst[i] == 0 || gst[i] == 1)
                now[nnow++] = gfns[i];
            else
                refused = true;
        }
        if (!refused || nnow == n)
            return -1;
        for (i = 0; i < n; i++) {
            if (gst[i] != 0 && gst[i] != 1)
                g_array_append_val(p->retry, gfns[i]);
        }
        g_clear_error(error);
        if (nnow == 0)
            return 0;
        return cocoPhaseDirectExportChunk(d, fw, now, nnow, st, error);
    }
    p->next_stream = (p->next_stream + 1) % MAX(p->nstreams, 1U);
    if (cocoPhaseDirectSend(d, COCO_PHASE_EVENT_PEER_MEMORY, stream,
                            p->buf->data, len, st, error) < 0)
        return -1;
    st->pages += n;
    st->bundles++;
    return 0;
}

static int
cocoPhaseDirectExportSet(CocoPhaseData *d, CocoFirmware *fw, GArray *set,
                         CocoPhaseDataStats *st, GError **error)
{
    CocoPhaseDirect *p = d->priv;
    guint off;

    for (off = 0; off < set->len; off += p->max_gfns) {
        uint32_t n = MIN(set->len - off, p->max_gfns);

        if (cocoPhaseDirectExportChunk(
                d, fw, &g_array_index(set, uint64_t, off), n, st, error) < 0)
            return -1;
    }
    p->first_done = true;
    return 0;
}

static int
cocoPhaseDirectToken(CocoPhaseData *d, CocoFirmware *fw, uint32_t flags,
                     CocoPhaseDataStats *st, GError **error)
{
    CocoPhaseDirect *p = d->priv;
    size_t len;

    if (cocoPhaseDirectCmdOut(p, fw, COCO_MIGRATE_CMD_TOKEN, flags, &len,
                              error) < 0)
        return -1;
    return cocoPhaseDirectSend(d,
                               flags & COCO_MIGRATE_TOKEN_START
                                   ? COCO_PHASE_EVENT_PEER_START_TOKEN
                                   : COCO_PHASE_EVENT_PEER_TOKEN,
                               0, p->buf->data, len, st, error);
}

static int
cocoPhaseDirectRound(CocoPhaseData *d, CocoFirmware *fw, CocoPhaseDataStats *st,
                     GError **error)
{
    CocoPhaseDirect *p = d->priv;
    g_autoptr(GArray) set = NULL;

    if (!(set = cocoPhaseDirectPageSet(p, error)))
        return -1;
    if (cocoPhaseDirectExportSet(d, fw, set, st, error) < 0)
        return -1;
    if (cocoPhaseDirectToken(d, fw, 0, st, error) < 0)
        return -1;
    st->epochs++;
    return 0;
}

static int
cocoPhaseDirectSync(CocoPhaseData *d, CocoFirmware *fw G_GNUC_UNUSED,
                    GError **error)
{
    CocoPhaseDirect *p = d->priv;

    if (!p->dirty || !p->first_done)
        return 0;
    return p->dirty(p->dirty_opaque, p->retry, error);
}

static int
cocoPhaseDirectFinal(CocoPhaseData *d, CocoFirmware *fw, unsigned int nvcpus,
                     bool *start_token, CocoPhaseDataStats *st, GError **error)
{
    CocoPhaseDirect *p = d->priv;
    g_autoptr(GArray) set = NULL;
    unsigned int v;
    size_t len;

    *start_token = false;
    if (!(set = cocoPhaseDirectPageSet(p, error)))
        return -1;
    if (cocoPhaseDirectExportSet(d, fw, set, st, error) < 0)
        return -1;
    if (p->retry->len > 0)
        return cocoErrorSet(
            error, COCO_ERROR_FW_STATE,
            _("the firmware refused '%1$u' pages in the final epoch"),
            p->retry->len);
    for (v = 0; v < nvcpus; v++) {
        CocoFirmwareStatus status;
        int ret;

        cocoPhaseDirectBuf(p, COCO_PHASE_DATA_MIN_BUF);
        len = p->buf->len;
        ret = cocoFirmwareExportVcpu(fw, v, p->buf->data, &len, &status, error);
        if (ret < 0 && cocoPhaseDirectRetrySize(p, ret, &status, len, error)) {
            len = p->buf->len;
            ret = cocoFirmwareExportVcpu(fw, v, p->buf->data, &len, &status,
                                         error);
        }
        if (ret < 0)
            return -1;
        if (cocoPhaseDirectSend(d, COCO_PHASE_EVENT_PEER_VCPU, v, p->buf->data,
                                len, st, error) < 0)
            return -1;
        st->vcpus++;
    }
    if (cocoPhaseDirectCmdOut(p, fw, COCO_MIGRATE_CMD_TOKEN,
                              COCO_MIGRATE_TOKEN_START, &len, error) < 0)
        return -1;
    *start_token = true;
    return cocoPhaseDirectSend(d, COCO_PHASE_EVENT_PEER_START_TOKEN, 0,
                               p->buf->data, len, st, error);
}

static int
cocoPhaseDirectImport(CocoPhaseData *d, CocoFirmware *fw,
                      const CocoPhaseMessage *msg, CocoPhaseEvent *progress,
                      CocoPhaseDataStats *st, GError **error)
{
    CocoPhaseDirect *p = d->priv;
    size_t len = msg->len;
    int ret;

    *progress = COCO_PHASE_EVENT_LAST;
    /* The firmware takes a writable buffer. */
    cocoPhaseDirectBuf(p, MAX(msg->len, 1));
    if (msg->len)
        memcpy(p->buf->data, msg->data, msg->len);

    switch (msg->type) {
    case COCO_PHASE_EVENT_PEER_SETUP:
        ret = cocoFirmwareMigrateCmd(fw, COCO_MIGRATE_CMD_SETUP, 0,
                                     p->buf->data, &len, NULL, error);
        *progress = COCO_PHASE_EVENT_DATA_SETUP;
        break;
    case COCO_PHASE_EVENT_PEER_MEMORY:
        ret = cocoFirmwareImportMemory(fw, msg->arg, p->buf->data, msg->len,
                                       NULL, error);
        st->bundles++;
        break;
    case COCO_PHASE_EVENT_PEER_TOKEN:
        ret = cocoFirmwareMigrateCmd(fw, COCO_MIGRATE_CMD_TOKEN, 0,
                                     p->buf->data, &len, NULL, error);
        st->epochs++;
        *progress = COCO_PHASE_EVENT_DATA_ROUND;
        break;
    case COCO_PHASE_EVENT_PEER_VCPU:
        ret = cocoFirmwareImportVcpu(fw, msg->arg, p->buf->data, msg->len, NULL,
                                     error);
        st->vcpus++;
        break;
    case COCO_PHASE_EVENT_PEER_START_TOKEN:
        ret = cocoFirmwareMigrateCmd(fw, COCO_MIGRATE_CMD_TOKEN,
                                     COCO_MIGRATE_TOKEN_START, p->buf->data,
                                     &len, NULL, error);
        *progress = COCO_PHASE_EVENT_DATA_START;
        break;
    case COCO_PHASE_EVENT_INCOMING:
    case COCO_PHASE_EVENT_MIGRATE:
    case COCO_PHASE_EVENT_PRECOPY_ROUND:
    case COCO_PHASE_EVENT_QUERY:
    case COCO_PHASE_EVENT_PRE_SWITCHOVER:
    case COCO_PHASE_EVENT_CONT:
    case COCO_PHASE_EVENT_QEMU_GONE:
    case COCO_PHASE_EVENT_CANCEL:
    case COCO_PHASE_EVENT_MIGRATION_FAILED:
    case COCO_PHASE_EVENT_PEER_LOST:
    case COCO_PHASE_EVENT_LOCAL_FAILURE:
    case COCO_PHASE_EVENT_DEADLINE:
    case COCO_PHASE_EVENT_PEER_RECONNECTED:
    case COCO_PHASE_EVENT_GIVE_UP:
    case COCO_PHASE_EVENT_HOLD_EXPIRED:
    case COCO_PHASE_EVENT_PEER_AGENT:
    case COCO_PHASE_EVENT_PEER_PREPARED:
    case COCO_PHASE_EVENT_PEER_SETUP_DONE:
    case COCO_PHASE_EVENT_PEER_ROUND_DONE:
    case COCO_PHASE_EVENT_PEER_SWITCHOVER_DONE:
    case COCO_PHASE_EVENT_PEER_COMMITTED:
    case COCO_PHASE_EVENT_PEER_ABORT_REQUEST:
    case COCO_PHASE_EVENT_PEER_ABORT_TOKEN:
    case COCO_PHASE_EVENT_PEER_ABORTED:
    case COCO_PHASE_EVENT_DATA_SETUP:
    case COCO_PHASE_EVENT_DATA_ROUND:
    case COCO_PHASE_EVENT_DATA_START:
    case COCO_PHASE_EVENT_LAST:
    default:
        return cocoErrorSet(error, COCO_ERROR_INTERNAL,
                            _("message '%1$s' carries no migration data"),
                            NULLSTR(cocoPhaseEventTypeToString(msg->type)));
    }
    if (ret < 0) {
        *progress = COCO_PHASE_EVENT_LAST;
        return -1;
    }
    st->bytes += msg->len;
    return 0;
}

static void
cocoPhaseDirectFree(CocoPhaseData *d)
{
    CocoPhaseDirect *p = d->priv;

    if (!p)
        return;
    g_array_unref(p->retry);
    g_byte_array_unref(p->buf);
    g_free(p);
}

static const CocoPhaseDataOps cocoPhaseDirectOps = {
    .setup = cocoPhaseDirectSetup,
    .round = cocoPhaseDirectRound,
    .sync = cocoPhaseDirectSync,
    .final = cocoPhaseDirectFinal,
    .import = cocoPhaseDirectImport,
    .free = cocoPhaseDirectFree,
};

CocoPhaseData *
cocoPhaseDataNewDirect(uint64_t npages, unsigned int nstreams,
                       CocoPhaseDirtyFunc dirty, void *dirty_opaque)
{
    CocoPhaseData *d = g_new0(CocoPhaseData, 1);
    CocoPhaseDirect *p = g_new0(CocoPhaseDirect, 1);

    p->npages = npages;
    p->nstreams = MAX(nstreams, 1U);
    p->dirty = dirty;
    p->dirty_opaque = dirty_opaque;
    p->retry = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    p->max_gfns = COCO_PHASE_DATA_DEFAULT_GFNS;
    p->buf = g_byte_array_sized_new(COCO_PHASE_DATA_MIN_BUF);
    g_byte_array_set_size(p->buf, COCO_PHASE_DATA_MIN_BUF);
    d->ops = &cocoPhaseDirectOps;
    d->priv = p;
    return d;
}
