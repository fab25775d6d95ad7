/*
 * cocotransfersource.c: the export side of the transfer engine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Threads: the caller's thread is the coordinator; it owns the epochs and
 * writes every record that is not a memory bundle (HELLO, immutable state,
 * EPOCH_END, tokens, vCPU state, END) while the stream threads are idle.
 * One stream thread per forward stream runs jobs the coordinator posts:
 * SCAN (collect the dirty set of a range of bitmap words) and EXPORT
 * (claim bitmap words, export their pages in bundles of up to
 * pages_per_bundle on its own firmware stream, write them to its own byte
 * stream). Work is claimed through one atomic cursor, so fast streams take
 * more. A job ends when every thread has finished it; the coordinator
 * waits for that before it closes the epoch, so an epoch token is always
 * exported after every bundle of its epoch.
 */

#include "transfer/cocotransfersource.h"
#include "transfer/cocoratelimit.h"
#include "transfer/cocotransferframe.h"
#include "transfer/cocotransferpriority.h"

#include <errno.h>

COCO_ENUM_IMPL(cocoTransferPrecopyEnd, COCO_TRANSFER_PRECOPY_LAST, "converged",
               "max-epochs", "max-time");

/* Bitmap words one export claim takes: 512 pages. */
#define COCO_SOURCE_CLAIM_WORDS 8
/* A scan claim: about COCO_SOURCE_SCAN_SHARE claims per stream thread,
 * between 512 pages and COCO_SOURCE_SCAN_CLAIM_MAX_WORDS words. */
#define COCO_SOURCE_SCAN_SHARE 4
#define COCO_SOURCE_SCAN_CLAIM_MAX_WORDS 256
/* The longest a piece of bulk work waits for another migration's
 * downtime: pre-copy always progresses. */
#define COCO_SOURCE_YIELD_MAX_US 500000

/* Passes over pages the firmware refused, in the final epoch. */
#define COCO_SOURCE_FINAL_PASSES 4

typedef enum {
    COCO_SOURCE_JOB_SCAN,
    COCO_SOURCE_JOB_EXPORT,
} CocoSourceJob;

typedef struct {
    CocoTransferSource *src;
    unsigned int index;
    GThread *thread;
    GIOStream *io;
    GOutputStream *out;
    uint8_t *buf; /* one bundle */
    uint64_t *gfns;
    uint8_t *status;
    uint64_t *scratch;
    uint32_t epoch_bundles; /* bundles written in the current epoch */
} CocoSourceStream;

struct _CocoTransferSource {
    CocoFirmware *fw;
    CocoDirtySource *dirty;
    CocoTransferConfig cfg;
    size_t bundle_max;
    uint64_t npages;
    size_t nwords;
    size_t scan_words; /* bitmap words one scan claim takes */
    uint64_t *pending; /* pages of the next epoch */
    uint64_t *retry; /* pages the firmware refused (atomic) */
    bool scanned; /* pending holds a fresh scan */
    bool synced; /* scanned after the guest stopped writing */
    bool fwlog; /* the dirty source is the firmware's own log */
    uint8_t *state; /* immutable / vCPU state, COCO_TRANSFER_STATE_MAX */
    CocoSourceStream *streams;
    unsigned int nthreads;

    GCancellable *cancel;
    GMutex lock;
    GCond job_cond;
    GCond done_cond;
    unsigned int job_gen;
    CocoSourceJob job;
    unsigned int job_done;
    bool quit;
    size_t cursor; /* atomic: next bitmap word to claim */
    uint32_t epoch; /* epoch being sent */

    int failed; /* atomic */
    GError *error; /* the first failure, under lock */
    bool started;
    bool finished;
    bool closed;

    CocoTransferCounters counters;
    CocoRateLimit *ratelimit; /* libvirt's max-bandwidth, all streams */
    int unthrottled; /* atomic: the final epoch (guest paused) */
    CocoTransferPriority *priority; /* the host's switchovers first */
    int urgent; /* atomic: this guest is down, its work yields to none */
    CocoTransferProgressFunc progress;
    void *progress_opaque;
    CocoTransferProgressFunc tick;
    void *tick_opaque;
    unsigned int tick_ms;
    CocoTransferDirtyFunc dirty_hook;
    void *dirty_opaque;
    CocoTransferFirmwareDirtyFunc fw_dirty;
    void *fw_dirty_opaque;
};

static void
cocoSourceFail(CocoTransferSource *src, GError *err)
{
    g_mutex_lock(&src->lock);
    if (!src->error)
        src->error = g_steal_pointer(&err);
    g_mutex_unlock(&src->lock);
    g_clear_error(&err);
    __atomic_store_n(&src->failed, 1, __ATOMIC_RELEASE);
    COCO_COUNTER_SET(src->counters.phase, COCO_TRANSFER_PHASE_FAILED);
    g_cancellable_cancel(src->cancel);
}

static bool
cocoSourceFailed(CocoTransferSource *src)
{
    return __atomic_load_n(&src->failed, __ATOMIC_ACQUIRE) != 0;
}

/* Close every stream so the peer sees the end at once. Only while the
 * stream threads are idle. */
static void
cocoSourceCloseStreams(CocoTransferSource *src)
{
    unsigned int i;

    if (src->closed)
        return;
    src->closed = true;
    for (i = 0; i < src->cfg.streams; i++)
        g_io_stream_close(src->streams[i].io, NULL, NULL);
}

/* Return -1 with the first failure copied to @error if the engine failed;
 * closes the streams on the first such call. */
static int
cocoSourceCheck(CocoTransferSource *src, GError **error)
{
    if (!cocoSourceFailed(src))
        return 0;
    cocoSourceCloseStreams(src);
    g_mutex_lock(&src->lock);
    if (error && src->error)
        *error = g_error_copy(src->error);
    g_mutex_unlock(&src->lock);
    return -1;
}

/* Record a failure of the coordinator (@err set by a callee) and return
 * it through @error. */
static int
cocoSourceFailWith(CocoTransferSource *src, GError *err, GError **error)
{
    cocoSourceFail(src, err);
    return cocoSourceCheck(src, error);
}

static void
cocoSourceProgress(CocoTransferSource *src)
{
    CocoTransferStats stats;

    if (!src->progress)
        return;
    cocoTransferCountersRead(&src->counters, &stats);
    src->progress(&stats, src->progress_opaque);
}

static void
cocoSourceMarkRetry(CocoTransferSource *src, uint64_t gfn)
{
    __atomic_fetch_or(&src->retry[gfn / 64], 1ULL << (gfn % 64),
                      __ATOMIC_RELAXED);
}

/*
 * Export s->gfns[0..n) as one bundle and write it. Per-page refusals:
 * pages the firmware skipped only because another page failed are
 * submitted again at once; the others wait for the next epoch (or the
 * next pass of the final epoch). A failure without any per-page status is
 * fatal.
 */
/* Bulk work (the guest runs: not the final epoch, not paused) waits while
 * another migration of the host is in its downtime. */
static void
cocoSourceYield(CocoTransferSource *src)
{
    int64_t waited;

    if (!src->priority ||
        __atomic_load_n(&src->unthrottled, __ATOMIC_RELAXED) ||
        __atomic_load_n(&src->urgent, __ATOMIC_RELAXED))
        return;
    waited = cocoTransferPriorityYield(src->priority, COCO_SOURCE_YIELD_MAX_US,
                                       src->cancel);
    if (waited > 0)
        COCO_COUNTER_ADD(src->counters.yielded_us, waited);
}

static int
cocoSourceExportBundle(CocoSourceStream *s, uint32_t n, GError **error)
{
    CocoTransferSource *src = s->src;
    uint32_t total = n;

    cocoSourceYield(src);
    while (n > 0) {
        g_autoptr(GError) err = NULL;
        size_t len = src->bundle_max;
        uint32_t m = 0;
        uint32_t refused = 0;
        uint32_t i;
        int rc;

        memset(s->status, 0, n);
        cocoDirtySourceExportBegin(src->dirty, s->gfns, n, s->scratch);
        rc = cocoFirmwareExportMemory(src->fw, s->index, s->gfns, n, s->status,
                                      s->buf, &len, NULL, &err);
        for (i = 0; i < n; i++)
            refused += s->status[i] != 0;
        if (rc < 0 && refused == 0) {
            memset(s->status, 1, n);
            cocoDirtySourceExportEnd(src->dirty, s->gfns, n, s->status,
                                     s->scratch);
            g_propagate_error(error, g_steal_pointer(&err));
            return -1;
        }
        cocoDirtySourceExportEnd(src->dirty, s->gfns, n, s->status, s->scratch);

        if (rc == 0) {
            if (len > src->bundle_max)
                return cocoErrorSet(
                    error, COCO_ERROR_INTERNAL,
                    _("firmware returned a bundle of '%1$zu' bytes for a buffer of '%2$zu'"),
                    len, src->bundle_max);
            if (len > 0) {
                if (!__atomic_load_n(&src->unthrottled, __ATOMIC_RELAXED))
                    cocoRateLimitTake(src->ratelimit,
                                      COCO_TRANSFER_HEADER_SIZE + (uint64_t)len,
                                      src->cancel);
                if (cocoTransferRecordWrite(
                        s->out, s->index, COCO_TRANSFER_RECORD_MEMORY,
                        src->epoch, 0, s->buf, len, src->cancel, error) < 0)
                    return -1;
                s->epoch_bundles++;
                COCO_COUNTER_ADD(src->counters.bytes,
                                 COCO_TRANSFER_HEADER_SIZE + (uint64_t)len);
                COCO_COUNTER_ADD(src->counters.bundles, 1);
            }
            for (i = 0; i < n; i++) {
                if (s->status[i] != 0)
                    cocoSourceMarkRetry(src, s->gfns[i]);
            }
            COCO_COUNTER_ADD(src->counters.pages, (uint64_t)(n - refused));
            COCO_COUNTER_ADD(src->counters.retried, (uint64_t)refused);
            break;
        }

        /* The call exported nothing. */
        for (i = 0; i < n; i++) {
            if (s->status[i] == 0 ||
                s->status[i] == COCO_TRANSFER_GFN_SKIPPED) {
                s->gfns[m++] = s->gfns[i];
            } else {
                cocoSourceMarkRetry(src, s->gfns[i]);
                COCO_COUNTER_ADD(src->counters.retried, 1);
            }
        }
        if (m == n) {
            g_propagate_error(error, g_steal_pointer(&err));
            return -1;
        }
        n = m;
    }
    COCO_COUNTER_SUB(src->counters.remaining, (uint64_t)total);
    return 0;
}

static int
cocoSourceJobExport(CocoSourceStream *s, GError **error)
{
    CocoTransferSource *src = s->src;
    uint32_t n = 0;

    for (;;) {
        size_t first = __atomic_fetch_add(&src->cursor, COCO_SOURCE_CLAIM_WORDS,
                                          __ATOMIC_RELAXED);
        size_t w;

        if (first >= src->nwords || cocoSourceFailed(src))
            break;
        for (w = first; w < MIN(src->nwords, first + COCO_SOURCE_CLAIM_WORDS);
             w++) {
            uint64_t bits = src->pending[w];

            src->pending[w] = 0;
            while (bits) {
                s->gfns[n++] =
                    (uint64_t)w * 64 + (uint64_t)__builtin_ctzll(bits);
                bits &= bits - 1;
                if (n == src->cfg.pages_per_bundle) {
                    if (cocoSourceExportBundle(s, n, error) < 0)
                        return -1;
                    n = 0;
                }
            }
        }
    }
    if (n > 0 && !cocoSourceFailed(src))
        return cocoSourceExportBundle(s, n, error);
    return 0;
}

uint64_t
cocoTransferSourceScanClaim(uint64_t npages, unsigned int nthreads)
{
    uint64_t words = (npages + 63) / 64;

    words /= (uint64_t)MAX(nthreads, 1U) * COCO_SOURCE_SCAN_SHARE;
    return CLAMP(words, (uint64_t)COCO_SOURCE_CLAIM_WORDS,
                 (uint64_t)COCO_SOURCE_SCAN_CLAIM_MAX_WORDS) *
           64;
}

/* Collect the words [first, first + scan_words) into pending and report
 * the pages new there to the firmware. */
static int
cocoSourceScanRange(CocoSourceStream *s, size_t first, GError **error)
{
    CocoTransferSource *src = s->src;
    size_t end = MIN(src->nwords, first + src->scan_words);
    uint64_t before[COCO_SOURCE_SCAN_CLAIM_MAX_WORDS];
    size_t w;

    /* The firmware's own log needs no report of what it listed. */
    if (!src->dirty_hook || src->fwlog)
        return cocoDirtySourceCollectChecked(src->dirty, src->pending, first,
                                             end - first, error);
    memcpy(before, src->pending + first, (end - first) * sizeof(uint64_t));
    if (cocoDirtySourceCollectChecked(src->dirty, src->pending, first,
                                      end - first, error) < 0)
        return -1;
    for (w = first; w < end; w++) {
        uint64_t bits = src->pending[w] & ~before[w - first];

        while (bits) {
            uint64_t gfn = (uint64_t)w * 64 + (uint64_t)__builtin_ctzll(bits);

            bits &= bits - 1;
            if (src->dirty_hook(src->dirty_opaque, gfn, error) < 0)
                return -1;
        }
    }
    return 0;
}

static int
cocoSourceJobScan(CocoSourceStream *s, GError **error)
{
    CocoTransferSource *src = s->src;
    int ret = 0;

    for (;;) {
        size_t first =
            __atomic_fetch_add(&src->cursor, src->scan_words, __ATOMIC_RELAXED);

        if (first >= src->nwords || cocoSourceFailed(src))
            break;
        cocoSourceYield(src);
        if (cocoSourceScanRange(s, first, error) < 0) {
            ret = -1;
            break;
        }
    }
    return ret;
}

static gpointer
cocoSourceThread(gpointer opaque)
{
    CocoSourceStream *s = opaque;
    CocoTransferSource *src = s->src;
    unsigned int gen = 0;

    g_mutex_lock(&src->lock);
    for (;;) {
        CocoSourceJob job;

        while (src->job_gen == gen && !src->quit)
            g_cond_wait(&src->job_cond, &src->lock);
        if (src->quit)
            break;
        gen = src->job_gen;
        job = src->job;
        g_mutex_unlock(&src->lock);

        if (!cocoSourceFailed(src)) {
            GError *err = NULL;

            switch (job) {
            case COCO_SOURCE_JOB_SCAN:
                if (cocoSourceJobScan(s, &err) < 0)
                    cocoSourceFail(src, err);
                break;
            case COCO_SOURCE_JOB_EXPORT:
                if (cocoSourceJobExport(s, &err) < 0)
                    cocoSourceFail(src, err);
                break;
            }
        }

        g_mutex_lock(&src->lock);
        if (++src->job_done == src->nthreads)
            g_cond_signal(&src->done_cond);
    }
    g_mutex_unlock(&src->lock);
    return NULL;
}

/* Run @job on every stream thread and wait until all have finished it. */
static int
cocoSourceRunJob(CocoTransferSource *src, CocoSourceJob job, GError **error)
{
    g_mutex_lock(&src->lock);
    __atomic_store_n(&src->cursor, 0, __ATOMIC_RELAXED);
    src->job = job;
    src->job_done = 0;
    src->job_gen++;
    g_cond_broadcast(&src->job_cond);
    while (src->job_done < src->nthreads) {
        gint64 deadline;

        if (!src->tick) {
            g_cond_wait(&src->done_cond, &src->lock);
            continue;
        }
        deadline = g_get_monotonic_time() + (gint64)src->tick_ms * 1000;
        if (!g_cond_wait_until(&src->done_cond, &src->lock, deadline) &&
            src->job_done < src->nthreads) {
            CocoTransferStats stats;

            /* The epoch runs on: report from the driving thread. */
            g_mutex_unlock(&src->lock);
            cocoTransferCountersRead(&src->counters, &stats);
            src->tick(&stats, src->tick_opaque);
            g_mutex_lock(&src->lock);
        }
    }
    g_mutex_unlock(&src->lock);
    return cocoSourceCheck(src, error);
}

static void
cocoSourceStopThreads(CocoTransferSource *src)
{
    unsigned int i;

    g_mutex_lock(&src->lock);
    src->quit = true;
    g_cond_broadcast(&src->job_cond);
    g_mutex_unlock(&src->lock);
    for (i = 0; i < src->nthreads; i++)
        g_thread_join(g_steal_pointer(&src->streams[i].thread));
    src->nthreads = 0;
}

/* Coordinator write of a non-bundle record; threads are idle. */
static int
cocoSourceWrite(CocoTransferSource *src, unsigned int stream,
                CocoTransferRecordType type, uint32_t arg0, uint32_t arg1,
                const void *payload, size_t len, GError **error)
{
    GError *err = NULL;

    /* A cancellation during the wait fails the write below. */
    if (!__atomic_load_n(&src->unthrottled, __ATOMIC_RELAXED))
        cocoRateLimitTake(src->ratelimit,
                          COCO_TRANSFER_HEADER_SIZE + (uint64_t)len,
                          src->cancel);
    if (cocoTransferRecordWrite(src->streams[stream].out, stream, type, arg0,
                                arg1, payload, len, src->cancel, &err) < 0)
        return cocoSourceFailWith(src, err, error);
    COCO_COUNTER_ADD(src->counters.bytes,
                     COCO_TRANSFER_HEADER_SIZE + (uint64_t)len);
    return 0;
}

CocoTransferSource *
cocoTransferSourceNew(CocoFirmware *fw, CocoDirtySource *dirty,
                      const CocoTransferConfig *cfg, GIOStream **streams,
                      GError **error)
{
    g_autoptr(CocoTransferSource) src = NULL;
    unsigned int i;

    if (cocoTransferCheckFirmware(fw, COCO_FIRMWARE_ROLE_SOURCE, cfg, error) <
        0)
        return NULL;

    src = g_new0(CocoTransferSource, 1);
    g_mutex_init(&src->lock);
    g_cond_init(&src->job_cond);
    g_cond_init(&src->done_cond);
    src->fw = fw;
    src->dirty = dirty;
    src->cfg = *cfg;
    src->cancel = g_cancellable_new();
    src->ratelimit = cocoRateLimitNew();
    src->bundle_max = cocoTransferBundleMax(cfg->pages_per_bundle);
    src->npages = cocoDirtySourceGetPages(dirty);
    src->fwlog = cocoDirtySourceIsFirmware(dirty);
    src->nwords = cocoDirtyWords(src->npages);
    src->scan_words =
        cocoTransferSourceScanClaim(src->npages, cfg->streams) / 64;
    src->pending = g_new0(uint64_t, src->nwords + 1);
    src->retry = g_new0(uint64_t, src->nwords + 1);
    src->state = g_malloc(COCO_TRANSFER_STATE_MAX);
    src->streams = g_new0(CocoSourceStream, cfg->streams);
    for (i = 0; i < cfg->streams; i++) {
        CocoSourceStream *s = &src->streams[i];

        s->src = src;
        s->index = i;
        s->io = g_object_ref(streams[i]);
        s->out = g_io_stream_get_output_stream(s->io);
        s->buf = g_aligned_alloc(src->bundle_max, 1, 4096);
        s->gfns = g_new0(uint64_t, cfg->pages_per_bundle);
        s->status = g_new0(uint8_t, cfg->pages_per_bundle);
        s->scratch = g_new0(uint64_t, cfg->pages_per_bundle);
    }
    return g_steal_pointer(&src);
}

void
cocoTransferSourceSetProgress(CocoTransferSource *src,
                              CocoTransferProgressFunc func, void *opaque)
{
    src->progress = func;
    src->progress_opaque = opaque;
}

void
cocoTransferSourceSetTick(CocoTransferSource *src, unsigned int interval_ms,
                          CocoTransferProgressFunc func, void *opaque)
{
    src->tick = interval_ms ? func : NULL;
    src->tick_ms = interval_ms;
    src->tick_opaque = opaque;
}

void
cocoTransferSourceSetDirtyHook(CocoTransferSource *src,
                               CocoTransferDirtyFunc func, void *opaque)
{
    src->dirty_hook = func;
    src->dirty_opaque = opaque;
}

void
cocoTransferSourceSetFirmwareDirty(CocoTransferSource *src,
                                   CocoTransferFirmwareDirtyFunc func,
                                   void *opaque)
{
    src->fw_dirty = func;
    src->fw_dirty_opaque = opaque;
}

static int cocoSourceScan(CocoTransferSource *src, uint64_t *count,
                          GError **error);
static int cocoSourcePageMap(CocoTransferSource *src, GError **error);

int
cocoTransferSourceStart(CocoTransferSource *src, GError **error)
{
    GError *err = NULL;
    size_t len = COCO_TRANSFER_STATE_MAX;
    uint64_t count = 0;
    unsigned int i;

    if (cocoSourceCheck(src, error) < 0)
        return -1;
    if (src->started)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("transfer source was already started"));
    src->started = true;
    cocoTransferCountersStart(&src->counters);
    COCO_COUNTER_SET(src->counters.phase, COCO_TRANSFER_PHASE_SETUP);
    cocoDirtySourceStart(src->dirty);

    for (i = 0; i < src->cfg.streams; i++) {
        g_autofree char *name = g_strdup_printf("coco-tx-%u", i);

        src->streams[i].thread =
            g_thread_try_new(name, cocoSourceThread, &src->streams[i], &err);
        if (!src->streams[i].thread) {
            g_clear_error(&err);
            cocoErrorSet(&err, COCO_ERROR_SYSTEM,
                         _("cannot start the thread of stream '%1$u'"), i);
            return cocoSourceFailWith(src, err, error);
        }
        src->nthreads++;
    }

    for (i = 0; i < src->cfg.streams; i++) {
        CocoTransferHello hello = {i, src->cfg.streams,
                                   src->cfg.pages_per_bundle,
                                   src->cfg.session_id, src->npages};
        uint8_t buf[COCO_TRANSFER_HELLO_SIZE];

        cocoTransferHelloEncode(&hello, buf);
        if (cocoSourceWrite(src, i, COCO_TRANSFER_RECORD_HELLO, 0, 0, buf,
                            sizeof(buf), error) < 0)
            return -1;
    }

    if (cocoFirmwareMigrateCmd(src->fw, COCO_MIGRATE_CMD_SETUP, 0, src->state,
                               &len, NULL, &err) < 0)
        return cocoSourceFailWith(src, err, error);
    if (cocoSourceWrite(src, 0, COCO_TRANSFER_RECORD_IMMUTABLE, 0, 0,
                        src->state, len, error) < 0 ||
        cocoSourceScan(src, &count, error) < 0 ||
        cocoSourcePageMap(src, error) < 0)
        return -1;
    COCO_COUNTER_SET(src->counters.phase, COCO_TRANSFER_PHASE_PRECOPY);
    cocoSourceProgress(src);
    return 0;
}

static int
cocoSourceReady(CocoTransferSource *src, GError **error)
{
    if (cocoSourceCheck(src, error) < 0)
        return -1;
    if (!src->started)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("transfer source was not started"));
    if (src->finished)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("transfer source has already sent its start token"));
    return 0;
}

static uint64_t
cocoSourceCountPending(CocoTransferSource *src)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < src->nwords; i++)
        n += (uint64_t)__builtin_popcountll(src->pending[i]);
    return n;
}

/* Move refused pages into the pending set, reporting them dirty again
 * (a refusal may mean the firmware did not know they changed). Stream
 * threads are idle. */
static int
cocoSourceTakeRetries(CocoTransferSource *src, GError **error)
{
    size_t i;

    for (i = 0; i < src->nwords; i++) {
        uint64_t bits;

        if (!__atomic_load_n(&src->retry[i], __ATOMIC_RELAXED))
            continue;
        bits = __atomic_exchange_n(&src->retry[i], 0, __ATOMIC_RELAXED);
        src->pending[i] |= bits;
        while (bits && src->dirty_hook && !src->fwlog && src->epoch > 0) {
            GError *err = NULL;
            uint64_t gfn = (uint64_t)i * 64 + (uint64_t)__builtin_ctzll(bits);

            bits &= bits - 1;
            if (src->dirty_hook(src->dirty_opaque, gfn, &err) < 0)
                return cocoSourceFailWith(src, err, error);
        }
    }
    return 0;
}

/* Collect the dirty set into pending (on top of what it holds). */
static int
cocoSourceScan(CocoTransferSource *src, uint64_t *count, GError **error)
{
    int64_t now = g_get_monotonic_time();
    int64_t prev = COCO_COUNTER_GET(src->counters.scan_us);
    bool measure = false;

    COCO_COUNTER_SET(src->counters.scan_us, now);
    if (src->epoch == 0 && !src->scanned && !src->fwlog) {
        size_t i;

        /* Epoch 0 sends every page (the firmware's own log lists the
         * pages the guest uses instead: the scan below). */
        for (i = 0; i < src->nwords; i++)
            src->pending[i] = ~0ULL;
        if (src->npages % 64)
            src->pending[src->nwords - 1] = (1ULL << (src->npages % 64)) - 1;
    } else {
        GError *err = NULL;

        if (cocoDirtySourceRefresh(src->dirty, &err) < 0)
            return cocoSourceFailWith(src, err, error);
        if (cocoSourceTakeRetries(src, error) < 0 ||
            cocoSourceRunJob(src, COCO_SOURCE_JOB_SCAN, error) < 0)
            return -1;
        measure = prev > 0 && now > prev;
    }
    src->scanned = true;
    *count = cocoSourceCountPending(src);
    COCO_COUNTER_SET(src->counters.dirty_pages, *count);
    /* Pages dirtied per second since the previous scan began: the
     * precopy policy's dirty rate. */
    if (measure) {
        COCO_COUNTER_SET(
            src->counters.dirty_rate,
            (uint64_t)((double)*count * 1e6 / (double)(now - prev)));
        COCO_COUNTER_SET(src->counters.dirty_measured, 1);
    }
    return 0;
}

/*
 * Before the first bundle: tell the destination which pages are coming in
 * epoch 0 (pending, just scanned), as PAGE_MAP records of page ranges on
 * stream 0, so that it reserves their memory before it imports any (pages
 * the guest touches later are reserved as they come). Stream threads are
 * idle.
 */
static int
cocoSourcePageMap(CocoTransferSource *src, GError **error)
{
    size_t cap = COCO_TRANSFER_STATE_MAX / COCO_TRANSFER_PAGE_RANGE_SIZE;
    size_t n = 0;
    uint64_t g = 0;

    while (g < src->npages) {
        uint64_t w = src->pending[g / 64] >> (g % 64);
        uint64_t start;
        uint64_t le[2];
        uint8_t *p;

        if (!w) {
            g = (g / 64 + 1) * 64;
            continue;
        }
        g += (uint64_t)__builtin_ctzll(w);
        if (g >= src->npages)
            break;
        start = g;
        while (g < src->npages && src->pending[g / 64] & (1ULL << (g % 64)))
            g++;
        if (n == cap) {
            if (cocoSourceWrite(src, 0, COCO_TRANSFER_RECORD_PAGE_MAP, 1, 0,
                                src->state, n * COCO_TRANSFER_PAGE_RANGE_SIZE,
                                error) < 0)
                return -1;
            n = 0;
        }
        p = src->state + n++ * COCO_TRANSFER_PAGE_RANGE_SIZE;
        le[0] = GUINT64_TO_LE(start);
        le[1] = GUINT64_TO_LE(g - start);
        memcpy(p, le, sizeof(le));
    }
    return cocoSourceWrite(src, 0, COCO_TRANSFER_RECORD_PAGE_MAP, 0, 0,
                           src->state, n * COCO_TRANSFER_PAGE_RANGE_SIZE,
                           error);
}

/* Export pending in the current epoch and write EPOCH_END everywhere. */
static int
cocoSourceExportEpoch(CocoTransferSource *src, uint64_t count, bool final,
                      GError **error)
{
    unsigned int pass;
    unsigned int i;

    COCO_COUNTER_SET(src->counters.epoch, src->epoch);
    COCO_COUNTER_SET(src->counters.remaining, count);
    for (i = 0; i < src->cfg.streams; i++)
        src->streams[i].epoch_bundles = 0;

    for (pass = 0;; pass++) {
        if (cocoSourceRunJob(src, COCO_SOURCE_JOB_EXPORT, error) < 0)
            return -1;
        if (!final)
            break;
        /* Nothing may stay behind once the guest is paused. */
        if (cocoSourceTakeRetries(src, error) < 0)
            return -1;
        count = cocoSourceCountPending(src);
        if (count == 0)
            break;
        if (pass + 1 >= COCO_SOURCE_FINAL_PASSES) {
            GError *err = NULL;

            cocoErrorSet(
                &err, COCO_ERROR_FW_STATE,
                _("firmware refused to export '%1$llu' pages in the final epoch '%2$u'"),
                (unsigned long long)count, src->epoch);
            return cocoSourceFailWith(src, err, error);
        }
        COCO_COUNTER_SET(src->counters.remaining, count);
    }
    src->scanned = false;

    for (i = 0; i < src->cfg.streams; i++) {
        if (cocoSourceWrite(src, i, COCO_TRANSFER_RECORD_EPOCH_END, src->epoch,
                            src->streams[i].epoch_bundles, NULL, 0, error) < 0)
            return -1;
    }
    return 0;
}

/* Export the current epoch's token and write it to stream 0. */
static int
cocoSourceToken(CocoTransferSource *src, bool start, GError **error)
{
    GError *err = NULL;
    size_t len = COCO_TRANSFER_TOKEN_MAX;

    if (cocoFirmwareMigrateCmd(src->fw, COCO_MIGRATE_CMD_TOKEN,
                               start ? COCO_MIGRATE_TOKEN_START : 0, src->state,
                               &len, NULL, &err) < 0)
        return cocoSourceFailWith(src, err, error);
    return cocoSourceWrite(src, 0,
                           start ? COCO_TRANSFER_RECORD_START_TOKEN
                                 : COCO_TRANSFER_RECORD_EPOCH_TOKEN,
                           src->epoch, 0, src->state, len, error);
}

int
cocoTransferSourceRound(CocoTransferSource *src, uint64_t *dirty_pages,
                        GError **error)
{
    uint64_t count = 0;
    uint64_t bytes0;
    int64_t t0 = g_get_monotonic_time();
    int64_t dt;

    if (cocoSourceReady(src, error) < 0)
        return -1;
    bytes0 = COCO_COUNTER_GET(src->counters.bytes);
    if (!src->scanned && cocoSourceScan(src, &count, error) < 0)
        return -1;
    count = cocoSourceCountPending(src);
    COCO_COUNTER_SET(src->counters.dirty_pages, count);
    if (cocoSourceExportEpoch(src, count, false, error) < 0 ||
        cocoSourceToken(src, false, error) < 0)
        return -1;

    dt = g_get_monotonic_time() - t0;
    if (dt > 0)
        COCO_COUNTER_SET(
            src->counters.epoch_rate,
            (uint64_t)((double)(COCO_COUNTER_GET(src->counters.bytes) -
                                bytes0) *
                       1e6 / (double)dt));
    src->epoch++;
    COCO_COUNTER_SET(src->counters.epoch, src->epoch);
    if (dirty_pages)
        *dirty_pages = count;
    cocoSourceProgress(src);
    return 0;
}

static bool
cocoSourceConverged(CocoTransferSource *src, uint64_t count)
{
    uint64_t rate = COCO_COUNTER_GET(src->counters.epoch_rate);

    if (count <= src->cfg.dirty_target)
        return true;
    if (src->cfg.max_blackout_ms && rate) {
        double ms =
            (double)count * COCO_DIRTY_PAGE_SIZE * 1000.0 / (double)rate;

        return ms <= (double)src->cfg.max_blackout_ms;
    }
    return false;
}

int
cocoTransferSourcePrecopy(CocoTransferSource *src,
                          CocoTransferPrecopyResult *result, GError **error)
{
    uint32_t max_epochs = src->cfg.max_epochs
                              ? src->cfg.max_epochs
                              : COCO_TRANSFER_DEFAULT_MAX_EPOCHS;
    int64_t t0 = g_get_monotonic_time();
    uint64_t count = 0;

    memset(result, 0, sizeof(*result));
    if (cocoSourceReady(src, error) < 0)
        return -1;
    if (src->epoch == 0 && cocoTransferSourceRound(src, NULL, error) < 0)
        return -1;

    for (;;) {
        uint64_t ms = (uint64_t)(g_get_monotonic_time() - t0) / 1000;

        if (!src->scanned && cocoSourceScan(src, &count, error) < 0)
            return -1;
        count = cocoSourceCountPending(src);
        cocoSourceProgress(src);
        if (cocoSourceConverged(src, count)) {
            result->end = COCO_TRANSFER_PRECOPY_CONVERGED;
            break;
        }
        if (src->epoch >= max_epochs) {
            result->end = COCO_TRANSFER_PRECOPY_MAX_EPOCHS;
            break;
        }
        if (src->cfg.max_time_ms && ms >= src->cfg.max_time_ms) {
            result->end = COCO_TRANSFER_PRECOPY_MAX_TIME;
            break;
        }
        if (cocoTransferSourceRound(src, NULL, error) < 0)
            return -1;
    }
    result->epochs = src->epoch;
    result->pending = count;
    return 0;
}

int
cocoTransferSourceSync(CocoTransferSource *src, GError **error)
{
    uint64_t count = 0;

    if (cocoSourceReady(src, error) < 0)
        return -1;
    if (src->fwlog) {
        /* The firmware's log is read after SOURCE_BLACKOUT, in Finish: one
         * pass over memory, on every stream's thread, with the VM stopped
         * for good (the firmware then knows those pages final). */
        src->scanned = false;
    } else if ((src->epoch > 0 || src->scanned) && src->fw_dirty) {
        g_autofree uint64_t *gfns = NULL;
        GError *err = NULL;
        size_t n = 0;
        size_t i;

        /* The firmware already holds these pages as changed: no dirty
         * hook (UNBLOCKW) for them. */
        if (src->fw_dirty(src->fw_dirty_opaque, &gfns, &n, &err) < 0)
            return cocoSourceFailWith(src, err, error);
        if (cocoSourceTakeRetries(src, error) < 0)
            return -1;
        for (i = 0; i < n; i++) {
            if (gfns[i] >= src->npages) {
                cocoErrorSet(
                    &err, COCO_ERROR_FW_INVALID,
                    _("the firmware reports gfn '%1$llu' dirty, outside guest memory of %2$llu pages"),
                    (unsigned long long)gfns[i],
                    (unsigned long long)src->npages);
                return cocoSourceFailWith(src, err, error);
            }
            src->pending[gfns[i] / 64] |= 1ULL << (gfns[i] % 64);
        }
        src->scanned = true;
        count = cocoSourceCountPending(src);
        COCO_COUNTER_SET(src->counters.dirty_pages, count);
    } else if (src->epoch > 0 || src->scanned) {
        src->scanned = false;
        if (cocoSourceScan(src, &count, error) < 0)
            return -1;
    }
    src->synced = true;
    cocoSourceProgress(src);
    return 0;
}

int
cocoTransferSourceFinish(CocoTransferSource *src, unsigned int nvcpus,
                         GError **error)
{
    uint64_t count = 0;
    unsigned int i;

    if (cocoSourceReady(src, error) < 0)
        return -1;
    /* The guest is paused: the last epoch goes at full speed, as QEMU's
     * own downtime phase does. */
    __atomic_store_n(&src->unthrottled, 1, __ATOMIC_RELAXED);
    COCO_COUNTER_SET(src->counters.phase, COCO_TRANSFER_PHASE_FINAL);
    cocoSourceProgress(src);

    /* Rescan unless cocoTransferSourceSync() ran after the guest stopped:
     * it ran until the blackout. The firmware's own log is always read
     * here, after the blackout: the pass that finds the last writes and
     * the pages touched for the first time. */
    if (!src->synced)
        src->scanned = src->scanned && src->epoch == 0;
    if (src->fwlog)
        src->scanned = false;
    if ((!src->scanned && cocoSourceScan(src, &count, error) < 0) ||
        cocoSourceExportEpoch(src, cocoSourceCountPending(src), true, error) <
            0)
        return -1;

    for (i = 0; i < nvcpus; i++) {
        GError *err = NULL;
        size_t len = COCO_TRANSFER_STATE_MAX;

        if (cocoFirmwareExportVcpu(src->fw, i, src->state, &len, NULL, &err) <
            0)
            return cocoSourceFailWith(src, err, error);
        if (cocoSourceWrite(src, 0, COCO_TRANSFER_RECORD_VCPU, i, 0, src->state,
                            len, error) < 0)
            return -1;
    }
    if (cocoSourceToken(src, true, error) < 0)
        return -1;
    for (i = 0; i < src->cfg.streams; i++) {
        if (cocoSourceWrite(src, i, COCO_TRANSFER_RECORD_END,
                            COCO_TRANSFER_END_COMPLETE, 0, NULL, 0, error) < 0)
            return -1;
    }
    src->finished = true;
    cocoSourceStopThreads(src);
    COCO_COUNTER_SET(src->counters.phase, COCO_TRANSFER_PHASE_DONE);
    cocoSourceProgress(src);
    return 0;
}

int
cocoTransferSourceReadAbortToken(CocoTransferSource *src, void *buf,
                                 size_t *buflen, GError **error)
{
    CocoTransferLimits limits = {0, 0};
    CocoTransferHeader hdr;
    GInputStream *in;

    if (cocoSourceCheck(src, error) < 0)
        return -1;
    if (!src->finished)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("an abort token can only follow the start token"));
    in = g_io_stream_get_input_stream(src->streams[0].io);
    if (cocoTransferRecordReadHeader(in, 0, &limits, &hdr, src->cancel, error) <
        0)
        return -1;
    if (hdr.type != COCO_TRANSFER_RECORD_ABORT_TOKEN)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("stream '%1$u' sent a '%2$s' record where an abort token was expected"),
            0U, cocoTransferRecordTypeToString(hdr.type));
    if (hdr.length > *buflen)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("abort token of '%1$u' bytes does not fit a buffer of '%2$zu'"),
            hdr.length, *buflen);
    if (cocoTransferRecordReadPayload(in, 0, hdr.type, buf, hdr.length,
                                      src->cancel, error) < 0)
        return -1;
    *buflen = hdr.length;
    return 0;
}

void
cocoTransferSourceCancel(CocoTransferSource *src)
{
    GError *err = NULL;

    cocoErrorSet(&err, COCO_ERROR_MIGRATION_ABORTED,
                 _("the transfer was cancelled"));
    cocoSourceFail(src, err);
}

void
cocoTransferSourceSetMaxBandwidth(CocoTransferSource *src, uint64_t rate)
{
    cocoRateLimitSetRate(src->ratelimit, rate);
}

void
cocoTransferSourceSetPriority(CocoTransferSource *src,
                              CocoTransferPriority *priority)
{
    g_clear_pointer(&src->priority, cocoTransferPriorityUnref);
    if (priority)
        src->priority = cocoTransferPriorityRef(priority);
}

void
cocoTransferSourceSetUrgent(CocoTransferSource *src, bool urgent)
{
    __atomic_store_n(&src->urgent, urgent ? 1 : 0, __ATOMIC_RELAXED);
}

void
cocoTransferSourceGetStats(CocoTransferSource *src, CocoTransferStats *stats)
{
    cocoTransferCountersRead(&src->counters, stats);
}

void
cocoTransferSourceFree(CocoTransferSource *src)
{
    unsigned int i;

    if (!src)
        return;
    if (src->nthreads) {
        g_cancellable_cancel(src->cancel);
        cocoSourceStopThreads(src);
    }
    if (src->streams) {
        cocoSourceCloseStreams(src);
        for (i = 0; i < src->cfg.streams; i++) {
            CocoSourceStream *s = &src->streams[i];

            g_clear_object(&s->io);
            g_aligned_free(s->buf);
            g_free(s->gfns);
            g_free(s->status);
            g_free(s->scratch);
        }
        g_free(src->streams);
    }
    g_clear_object(&src->cancel);
    cocoRateLimitFree(src->ratelimit);
    g_clear_pointer(&src->priority, cocoTransferPriorityUnref);
    g_clear_error(&src->error);
    g_free(src->pending);
    g_free(src->retry);
    g_free(src->state);
    g_mutex_clear(&src->lock);
    g_cond_clear(&src->job_cond);
    g_cond_clear(&src->done_cond);
    g_free(src);
}
