/*
 * cocotransferdest.c: the import side of the transfer engine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One reader thread per stream. The epoch barrier lives in this object:
 * open_epoch is the epoch whose bundles may be imported (-1 until the
 * immutable state is in), arrived counts the streams that delivered their
 * EPOCH_END of it. The thread of stream 0 imports a token only when all
 * streams arrived; the others wait at their EPOCH_END until stream 0 has
 * imported the token and opened the next epoch (or the start token ended
 * the in-order phase).
 */

#include "transfer/cocotransferdest.h"
#include "transfer/cocotransferframe.h"

typedef struct {
    CocoTransferDest *dst;
    unsigned int slot; /* position in the caller's array */
    unsigned int index; /* stream index from HELLO */
    GThread *thread;
    GIOStream *io;
    GInputStream *in;
    uint8_t *buf;
} CocoDestStream;

struct _CocoTransferDest {
    CocoFirmware *fw;
    CocoTransferConfig cfg;
    CocoTransferLimits limits;
    CocoDestStream *streams;
    unsigned int nthreads;
    GCancellable *cancel;

    GMutex lock;
    GCond cond;
    bool *seen; /* stream indexes announced */
    uint64_t npages; /* guest pages, from the first HELLO */
    int64_t open_epoch;
    unsigned int arrived;
    bool final; /* start token imported */
    unsigned int ended; /* streams that read END */
    unsigned int exited; /* reader threads that returned */
    int failed; /* atomic */
    GError *error; /* first failure, under lock */
    bool started;
    bool closed;

    CocoTransferCounters counters;
    CocoTransferProgressFunc progress;
    void *progress_opaque;
};

/* The first failure is kept, except that the firmware's refusal of a VM
 * that failed for good (COCO_ERROR_FW_FATAL: another stream's next import)
 * gives way to the import failure that caused it (a tampered, replayed or
 * missing bundle), which may reach here second. */
static void
cocoDestFail(CocoTransferDest *dst, GError *err)
{
    g_mutex_lock(&dst->lock);
    if (dst->error && err &&
        g_error_matches(dst->error, COCO_ERROR, COCO_ERROR_FW_FATAL) &&
        (g_error_matches(err, COCO_ERROR, COCO_ERROR_FW_INTEGRITY) ||
         g_error_matches(err, COCO_ERROR, COCO_ERROR_FW_SEQUENCE)))
        g_clear_error(&dst->error);
    if (!dst->error)
        dst->error = g_steal_pointer(&err);
    __atomic_store_n(&dst->failed, 1, __ATOMIC_RELEASE);
    g_cond_broadcast(&dst->cond);
    g_mutex_unlock(&dst->lock);
    g_clear_error(&err);
    COCO_COUNTER_SET(dst->counters.phase, COCO_TRANSFER_PHASE_FAILED);
    g_cancellable_cancel(dst->cancel);
}

static bool
cocoDestFailed(CocoTransferDest *dst)
{
    return __atomic_load_n(&dst->failed, __ATOMIC_ACQUIRE) != 0;
}

static void
cocoDestProgress(CocoTransferDest *dst)
{
    CocoTransferStats stats;

    if (!dst->progress)
        return;
    cocoTransferCountersRead(&dst->counters, &stats);
    dst->progress(&stats, dst->progress_opaque);
}

static int
cocoDestUnexpected(CocoDestStream *s, const CocoTransferHeader *hdr,
                   GError **error)
{
    return cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL,
                        _("stream '%1$u' sent an unexpected '%2$s' record"),
                        s->index, cocoTransferRecordTypeToString(hdr->type));
}

static int
cocoDestWrongEpoch(CocoDestStream *s, const CocoTransferHeader *hdr,
                   int64_t epoch, GError **error)
{
    return cocoErrorSet(
        error, COCO_ERROR_TRANSFER_PROTOCOL,
        _("stream '%1$u' sent a '%2$s' record of epoch '%3$u' during epoch '%4$lld'"),
        s->index, cocoTransferRecordTypeToString(hdr->type), hdr->arg0,
        (long long)epoch);
}

static int
cocoDestHello(CocoDestStream *s, GError **error)
{
    CocoTransferDest *dst = s->dst;
    CocoTransferHeader hdr;
    CocoTransferHello hello;
    uint8_t buf[COCO_TRANSFER_HELLO_SIZE];
    bool dup;

    if (cocoTransferRecordReadHeader(s->in, s->slot, &dst->limits, &hdr,
                                     dst->cancel, error) < 0)
        return -1;
    if (hdr.type != COCO_TRANSFER_RECORD_HELLO)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("stream '%1$u' began with a '%2$s' record instead of hello"),
            s->slot, cocoTransferRecordTypeToString(hdr.type));
    if (cocoTransferRecordReadPayload(s->in, s->slot, hdr.type, buf,
                                      sizeof(buf), dst->cancel, error) < 0 ||
        cocoTransferHelloDecode(buf, &hello, error) < 0)
        return -1;
    if (hello.stream >= dst->cfg.streams ||
        hello.nstreams != dst->cfg.streams ||
        hello.pages_per_bundle != dst->cfg.pages_per_bundle)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("hello announces stream '%1$u' of '%2$u' with '%3$u' pages per bundle; this side expects '%4$u' streams of '%5$u' pages"),
            hello.stream, hello.nstreams, hello.pages_per_bundle,
            dst->cfg.streams, dst->cfg.pages_per_bundle);
    if (dst->cfg.session_id && hello.session_id != dst->cfg.session_id)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("stream '%1$u' belongs to session '%2$llx', not '%3$llx'"),
            hello.stream, (unsigned long long)hello.session_id,
            (unsigned long long)dst->cfg.session_id);
    if (dst->cfg.npages && hello.npages != dst->cfg.npages)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("source sends '%1$llu' guest pages, this side has '%2$llu'"),
            (unsigned long long)hello.npages,
            (unsigned long long)dst->cfg.npages);

    g_mutex_lock(&dst->lock);
    dup = dst->seen[hello.stream];
    dst->seen[hello.stream] = true;
    if (!dst->npages)
        dst->npages = hello.npages;
    else if (dst->npages != hello.npages)
        dup = true;
    g_mutex_unlock(&dst->lock);
    if (dup)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("stream index '%1$u' was announced twice, or with another page count"),
            hello.stream);
    s->index = hello.stream;
    COCO_COUNTER_ADD(dst->counters.bytes,
                     (uint64_t)COCO_TRANSFER_HEADER_SIZE + sizeof(buf));
    return 0;
}

/* Read the next header and its payload into s->buf. */
static int
cocoDestRead(CocoDestStream *s, CocoTransferHeader *hdr, GError **error)
{
    CocoTransferDest *dst = s->dst;
    CocoTransferLimits limits = dst->limits;

    if (s->index != 0)
        limits.state_max = 0;
    if (cocoTransferRecordReadHeader(s->in, s->index, &limits, hdr, dst->cancel,
                                     error) < 0 ||
        cocoTransferRecordReadPayload(s->in, s->index, hdr->type, s->buf,
                                      hdr->length, dst->cancel, error) < 0)
        return -1;
    COCO_COUNTER_ADD(dst->counters.bytes,
                     COCO_TRANSFER_HEADER_SIZE + (uint64_t)hdr->length);
    return 0;
}

/*
 * Stream 0, after the immutable state: the PAGE_MAP records (page ranges
 * of epoch 0, arg0 1 while more follow), each reserved through the
 * firmware before any bundle is imported; a firmware that reserves
 * nothing itself (the kernel's memory) is fine. Ranges must increase
 * within and across records and lie within the guest.
 */
static int
cocoDestPageMap(CocoDestStream *s, GError **error)
{
    CocoTransferDest *dst = s->dst;
    CocoTransferHeader hdr;
    uint64_t next = 0;
    bool reserve = true;

    do {
        g_autofree uint64_t *ranges = NULL;
        size_t n;
        size_t i;

        if (cocoDestRead(s, &hdr, error) < 0)
            return -1;
        if (hdr.type != COCO_TRANSFER_RECORD_PAGE_MAP)
            return cocoDestUnexpected(s, &hdr, error);
        if (hdr.length % COCO_TRANSFER_PAGE_RANGE_SIZE != 0 || hdr.arg0 > 1 ||
            hdr.arg1 != 0)
            return cocoErrorSet(
                error, COCO_ERROR_TRANSFER_PROTOCOL,
                _("stream '%1$u' sent a malformed page map of '%2$u' bytes"),
                s->index, hdr.length);
        n = hdr.length / COCO_TRANSFER_PAGE_RANGE_SIZE;
        ranges = g_new(uint64_t, 2 * n + 1);
        for (i = 0; i < n; i++) {
            uint64_t le[2];

            memcpy(le, s->buf + i * COCO_TRANSFER_PAGE_RANGE_SIZE, sizeof(le));
            ranges[2 * i] = GUINT64_FROM_LE(le[0]);
            ranges[2 * i + 1] = GUINT64_FROM_LE(le[1]);
            if (ranges[2 * i + 1] == 0 || ranges[2 * i] < next ||
                ranges[2 * i] > dst->npages ||
                ranges[2 * i + 1] > dst->npages - ranges[2 * i])
                return cocoErrorSet(
                    error, COCO_ERROR_TRANSFER_PROTOCOL,
                    _("stream '%1$u' sent a page map with a range out of order or outside the guest (%2$llu+%3$llu)"),
                    s->index, (unsigned long long)ranges[2 * i],
                    (unsigned long long)ranges[2 * i + 1]);
            next = ranges[2 * i] + ranges[2 * i + 1];
        }
        if (reserve && n) {
            GError *err = NULL;

            if (cocoFirmwareReserveMemory(dst->fw, ranges, n, &err) < 0) {
                if (!g_error_matches(err, COCO_ERROR,
                                     COCO_ERROR_NOT_SUPPORTED)) {
                    g_propagate_error(error, err);
                    return -1;
                }
                g_clear_error(&err);
                reserve = false;
            }
        }
    } while (hdr.arg0 == 1);
    return 0;
}

/* Returns 0 at END, -1 on failure (@error unset if another thread failed
 * first). */
static int
cocoDestStreamRun(CocoDestStream *s, GError **error)
{
    CocoTransferDest *dst = s->dst;
    CocoTransferHeader hdr;
    int64_t epoch = 0;
    uint32_t count = 0;
    uint32_t next_vcpu = 0;
    bool ended_epoch = false; /* stream 0: EPOCH_END read, token next */
    bool expect_end = false;

    if (cocoDestHello(s, error) < 0)
        return -1;
    s->buf = g_aligned_alloc(
        s->index == 0 ? MAX(dst->limits.bundle_max, dst->limits.state_max)
                      : dst->limits.bundle_max,
        1, 4096);

    if (s->index == 0) {
        size_t len;

        if (cocoDestRead(s, &hdr, error) < 0)
            return -1;
        if (hdr.type != COCO_TRANSFER_RECORD_IMMUTABLE)
            return cocoDestUnexpected(s, &hdr, error);
        len = hdr.length;
        if (cocoFirmwareMigrateCmd(dst->fw, COCO_MIGRATE_CMD_SETUP, 0, s->buf,
                                   &len, NULL, error) < 0 ||
            cocoDestPageMap(s, error) < 0)
            return -1;
        g_mutex_lock(&dst->lock);
        dst->open_epoch = 0;
        g_cond_broadcast(&dst->cond);
        g_mutex_unlock(&dst->lock);
        COCO_COUNTER_SET(dst->counters.phase, COCO_TRANSFER_PHASE_PRECOPY);
    } else {
        g_mutex_lock(&dst->lock);
        while (dst->open_epoch < 0 && !cocoDestFailed(dst))
            g_cond_wait(&dst->cond, &dst->lock);
        g_mutex_unlock(&dst->lock);
    }

    for (;;) {
        size_t len;

        if (cocoDestFailed(dst) || cocoDestRead(s, &hdr, error) < 0)
            return -1;
        if (expect_end && hdr.type != COCO_TRANSFER_RECORD_END)
            return cocoDestUnexpected(s, &hdr, error);
        len = hdr.length;

        switch (hdr.type) {
        case COCO_TRANSFER_RECORD_MEMORY:
            if (ended_epoch)
                return cocoDestUnexpected(s, &hdr, error);
            if (hdr.arg0 != epoch)
                return cocoDestWrongEpoch(s, &hdr, epoch, error);
            if (cocoFirmwareImportMemory(dst->fw, s->index, s->buf, len, NULL,
                                         error) < 0)
                return -1;
            count++;
            COCO_COUNTER_ADD(dst->counters.bundles, 1);
            break;

        case COCO_TRANSFER_RECORD_EPOCH_END:
            if (ended_epoch)
                return cocoDestUnexpected(s, &hdr, error);
            if (hdr.arg0 != epoch)
                return cocoDestWrongEpoch(s, &hdr, epoch, error);
            if (hdr.arg1 != count)
                return cocoErrorSet(
                    error, COCO_ERROR_TRANSFER_PROTOCOL,
                    _("stream '%1$u' announced '%2$u' bundles in epoch '%3$lld' but sent '%4$u'"),
                    s->index, hdr.arg1, (long long)epoch, count);
            count = 0;
            g_mutex_lock(&dst->lock);
            dst->arrived++;
            g_cond_broadcast(&dst->cond);
            if (s->index == 0) {
                while (dst->arrived < dst->cfg.streams && !cocoDestFailed(dst))
                    g_cond_wait(&dst->cond, &dst->lock);
                ended_epoch = true;
            } else {
                while (dst->open_epoch == epoch && !dst->final &&
                       !cocoDestFailed(dst))
                    g_cond_wait(&dst->cond, &dst->lock);
                if (dst->final)
                    expect_end = true;
                else
                    epoch = dst->open_epoch;
            }
            g_mutex_unlock(&dst->lock);
            break;

        case COCO_TRANSFER_RECORD_EPOCH_TOKEN:
        case COCO_TRANSFER_RECORD_START_TOKEN: {
            bool start = hdr.type == COCO_TRANSFER_RECORD_START_TOKEN;

            if (s->index != 0 || !ended_epoch)
                return cocoDestUnexpected(s, &hdr, error);
            if (hdr.arg0 != epoch)
                return cocoDestWrongEpoch(s, &hdr, epoch, error);
            if (cocoFirmwareMigrateCmd(dst->fw, COCO_MIGRATE_CMD_TOKEN,
                                       start ? COCO_MIGRATE_TOKEN_START : 0,
                                       s->buf, &len, NULL, error) < 0)
                return -1;
            g_mutex_lock(&dst->lock);
            if (start) {
                dst->final = true;
                expect_end = true;
            } else {
                dst->open_epoch = ++epoch;
                dst->arrived = 0;
            }
            g_cond_broadcast(&dst->cond);
            g_mutex_unlock(&dst->lock);
            ended_epoch = false;
            COCO_COUNTER_SET(dst->counters.epoch, (uint32_t)epoch);
            if (start)
                COCO_COUNTER_SET(dst->counters.phase,
                                 COCO_TRANSFER_PHASE_FINAL);
            cocoDestProgress(dst);
            break;
        }

        case COCO_TRANSFER_RECORD_VCPU:
            if (s->index != 0 || !ended_epoch)
                return cocoDestUnexpected(s, &hdr, error);
            if (hdr.arg0 != next_vcpu)
                return cocoErrorSet(
                    error, COCO_ERROR_TRANSFER_PROTOCOL,
                    _("stream '%1$u' sent vCPU '%2$u' where vCPU '%3$u' was due"),
                    s->index, hdr.arg0, next_vcpu);
            if (cocoFirmwareImportVcpu(dst->fw, hdr.arg0, s->buf, len, NULL,
                                       error) < 0)
                return -1;
            next_vcpu++;
            break;

        case COCO_TRANSFER_RECORD_END:
            if (hdr.arg0 == COCO_TRANSFER_END_CANCELLED)
                return cocoErrorSet(
                    error, COCO_ERROR_MIGRATION_ABORTED,
                    _("the source cancelled the transfer on stream '%1$u'"),
                    s->index);
            if (hdr.arg0 != COCO_TRANSFER_END_COMPLETE || hdr.arg1 != 0)
                return cocoErrorSet(
                    error, COCO_ERROR_TRANSFER_PROTOCOL,
                    _("stream '%1$u' sent an end record with unknown reason '%2$u'"),
                    s->index, hdr.arg0);
            if (!expect_end)
                return cocoErrorSet(
                    error, COCO_ERROR_TRANSFER_PROTOCOL,
                    _("stream '%1$u' ended before the start token"), s->index);
            g_mutex_lock(&dst->lock);
            dst->ended++;
            g_mutex_unlock(&dst->lock);
            return 0;

        case COCO_TRANSFER_RECORD_HELLO:
        case COCO_TRANSFER_RECORD_IMMUTABLE:
        case COCO_TRANSFER_RECORD_ABORT_TOKEN:
        case COCO_TRANSFER_RECORD_PAGE_MAP:
        case COCO_TRANSFER_RECORD_LAST:
        default:
            return cocoDestUnexpected(s, &hdr, error);
        }
    }
}

static void cocoDestCloseStreams(CocoTransferDest *dst);

static gpointer
cocoDestThread(gpointer opaque)
{
    CocoDestStream *s = opaque;
    CocoTransferDest *dst = s->dst;
    GError *err = NULL;
    bool last;

    if (cocoDestStreamRun(s, &err) < 0)
        cocoDestFail(dst, err);

    /* After a failure the last reader out closes every stream at once, so
     * the source stops writing into streams nobody reads any more. */
    g_mutex_lock(&dst->lock);
    last = ++dst->exited == dst->cfg.streams;
    g_mutex_unlock(&dst->lock);
    if (last && cocoDestFailed(dst))
        cocoDestCloseStreams(dst);
    return NULL;
}

CocoTransferDest *
cocoTransferDestNew(CocoFirmware *fw, const CocoTransferConfig *cfg,
                    GIOStream **streams, GError **error)
{
    g_autoptr(CocoTransferDest) dst = NULL;
    unsigned int i;

    if (cocoTransferCheckFirmware(fw, COCO_FIRMWARE_ROLE_DESTINATION, cfg,
                                  error) < 0)
        return NULL;

    dst = g_new0(CocoTransferDest, 1);
    g_mutex_init(&dst->lock);
    g_cond_init(&dst->cond);
    dst->fw = fw;
    dst->cfg = *cfg;
    dst->limits.bundle_max = cocoTransferBundleMax(cfg->pages_per_bundle);
    dst->limits.state_max = COCO_TRANSFER_STATE_MAX;
    dst->cancel = g_cancellable_new();
    dst->open_epoch = -1;
    dst->seen = g_new0(bool, cfg->streams);
    dst->streams = g_new0(CocoDestStream, cfg->streams);
    for (i = 0; i < cfg->streams; i++) {
        dst->streams[i].dst = dst;
        dst->streams[i].slot = i;
        dst->streams[i].index = G_MAXUINT;
        dst->streams[i].io = g_object_ref(streams[i]);
        dst->streams[i].in = g_io_stream_get_input_stream(streams[i]);
    }
    return g_steal_pointer(&dst);
}

void
cocoTransferDestSetProgress(CocoTransferDest *dst,
                            CocoTransferProgressFunc func, void *opaque)
{
    dst->progress = func;
    dst->progress_opaque = opaque;
}

int
cocoTransferDestStart(CocoTransferDest *dst, GError **error)
{
    unsigned int i;

    if (dst->started)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("transfer destination was already started"));
    dst->started = true;
    cocoTransferCountersStart(&dst->counters);
    COCO_COUNTER_SET(dst->counters.phase, COCO_TRANSFER_PHASE_SETUP);
    for (i = 0; i < dst->cfg.streams; i++) {
        g_autofree char *name = g_strdup_printf("coco-rx-%u", i);
        GError *err = NULL;

        dst->streams[i].thread =
            g_thread_try_new(name, cocoDestThread, &dst->streams[i], &err);
        if (!dst->streams[i].thread) {
            g_clear_error(&err);
            cocoErrorSet(&err, COCO_ERROR_SYSTEM,
                         _("cannot start the thread of stream '%1$u'"), i);
            cocoDestFail(dst, err);
            break;
        }
        dst->nthreads++;
    }
    if (cocoDestFailed(dst))
        return cocoTransferDestWait(dst, error);
    return 0;
}

/* Only once no reader thread uses the streams any more. */
static void
cocoDestCloseStreams(CocoTransferDest *dst)
{
    unsigned int i;
    bool closed;

    g_mutex_lock(&dst->lock);
    closed = dst->closed;
    dst->closed = true;
    g_mutex_unlock(&dst->lock);
    if (closed)
        return;
    for (i = 0; i < dst->cfg.streams; i++)
        g_io_stream_close(dst->streams[i].io, NULL, NULL);
}

int
cocoTransferDestGetError(CocoTransferDest *dst, GError **error)
{
    if (!cocoDestFailed(dst))
        return 0;
    g_mutex_lock(&dst->lock);
    if (error && dst->error)
        *error = g_error_copy(dst->error);
    else
        cocoErrorSet(error, COCO_ERROR_INTERNAL, "%s",
                     _("the transfer failed without a reason"));
    g_mutex_unlock(&dst->lock);
    return -1;
}

int
cocoTransferDestWait(CocoTransferDest *dst, GError **error)
{
    unsigned int i;

    if (!dst->started)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("transfer destination was not started"));
    for (i = 0; i < dst->nthreads; i++)
        g_clear_pointer(&dst->streams[i].thread, g_thread_join);
    dst->nthreads = 0;

    if (cocoDestFailed(dst)) {
        cocoDestCloseStreams(dst);
        g_mutex_lock(&dst->lock);
        if (error && dst->error)
            *error = g_error_copy(dst->error);
        g_mutex_unlock(&dst->lock);
        return -1;
    }
    if (!dst->final || dst->ended != dst->cfg.streams)
        return cocoErrorSet(
            error, COCO_ERROR_INTERNAL,
            _("transfer destination stopped before the start token"));
    COCO_COUNTER_SET(dst->counters.phase, COCO_TRANSFER_PHASE_DONE);
    cocoDestProgress(dst);
    return 0;
}

int
cocoTransferDestRun(CocoTransferDest *dst, GError **error)
{
    if (cocoTransferDestStart(dst, error) < 0)
        return -1;
    return cocoTransferDestWait(dst, error);
}

int
cocoTransferDestSendAbortToken(CocoTransferDest *dst, const void *token,
                               size_t len, GError **error)
{
    unsigned int i;

    if (dst->closed)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_IO,
            _("cannot send the abort token: the streams are closed"));
    if (len == 0 || len > COCO_TRANSFER_TOKEN_MAX)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("abort token of '%1$zu' bytes is outside 1..'%2$u'"), len,
            COCO_TRANSFER_TOKEN_MAX);
    for (i = 0; i < dst->cfg.streams; i++) {
        CocoDestStream *s = &dst->streams[i];

        if (s->index != 0 || s->buf == NULL)
            continue;
        return cocoTransferRecordWrite(g_io_stream_get_output_stream(s->io), 0,
                                       COCO_TRANSFER_RECORD_ABORT_TOKEN, 0, 0,
                                       token, len, NULL, error);
    }
    return cocoErrorSet(
        error, COCO_ERROR_TRANSFER_IO,
        _("cannot send the abort token: stream '%1$u' never connected"), 0U);
}

void
cocoTransferDestCancel(CocoTransferDest *dst)
{
    GError *err = NULL;

    cocoErrorSet(&err, COCO_ERROR_MIGRATION_ABORTED,
                 _("the transfer was cancelled"));
    cocoDestFail(dst, err);
}

void
cocoTransferDestGetStats(CocoTransferDest *dst, CocoTransferStats *stats)
{
    cocoTransferCountersRead(&dst->counters, stats);
}

void
cocoTransferDestFree(CocoTransferDest *dst)
{
    unsigned int i;

    if (!dst)
        return;
    if (dst->nthreads) {
        cocoTransferDestCancel(dst);
        for (i = 0; i < dst->nthreads; i++)
            g_clear_pointer(&dst->streams[i].thread, g_thread_join);
    }
    if (dst->streams) {
        cocoDestCloseStreams(dst);
        for (i = 0; i < dst->cfg.streams; i++) {
            g_clear_object(&dst->streams[i].io);
            g_aligned_free(dst->streams[i].buf);
        }
        g_free(dst->streams);
    }
    g_free(dst->seen);
    g_clear_object(&dst->cancel);
    g_clear_error(&dst->error);
    g_mutex_clear(&dst->lock);
    g_cond_clear(&dst->cond);
    g_free(dst);
}
