/*
 * cocotransfer.c: configuration, memory bound and progress of a transfer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "transfer/cocotransfer.h"
#include "transfer/cocotransferframe.h"
#include "util/cocomath.h"

COCO_ENUM_IMPL(cocoTransferPhase, COCO_TRANSFER_PHASE_LAST, "idle", "setup",
               "precopy", "final", "done", "failed");

void
cocoTransferConfigInit(CocoTransferConfig *cfg, const CocoMigrationDef *def)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->streams = COCO_TRANSFER_DEFAULT_STREAMS;
    cfg->pages_per_bundle = COCO_TRANSFER_DEFAULT_PAGES_PER_BUNDLE;
    cfg->max_epochs = COCO_TRANSFER_DEFAULT_MAX_EPOCHS;
    cfg->dirty_target = COCO_TRANSFER_DEFAULT_DIRTY_TARGET;
    if (!def)
        return;
    if (def->forward_streams)
        cfg->streams = def->forward_streams;
    if (def->pages_per_bundle)
        cfg->pages_per_bundle = def->pages_per_bundle;
    if (def->max_epochs)
        cfg->max_epochs = def->max_epochs;
    if (def->max_time)
        cfg->max_time_ms = (uint64_t)def->max_time * 1000;
    cfg->max_blackout_ms = def->max_blackout;
}

uint64_t
cocoTransferBufferBytes(const CocoTransferConfig *cfg)
{
    uint64_t per = cocoTransferBundleMax(cfg->pages_per_bundle);
    uint64_t total;

    /* One bundle buffer per stream, one state buffer (stream 0's
     * immutable and vCPU state); per-stream page lists are included in
     * the bundle bound's slack. */
    if (!cocoU64Mul(per, cfg->streams, &total) ||
        !cocoU64Add(total, COCO_TRANSFER_STATE_MAX, &total))
        return G_MAXUINT64;
    return total;
}

int
cocoTransferConfigValidate(const CocoTransferConfig *cfg, unsigned int max_gfns,
                           GError **error)
{
    uint64_t need;

    if (cfg->streams < 1 || cfg->streams > COCO_TRANSFER_MAX_STREAMS)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("number of forward streams '%1$u' is outside 1..'%2$u'"),
            cfg->streams, COCO_TRANSFER_MAX_STREAMS);
    if (cfg->pages_per_bundle < 1 ||
        cfg->pages_per_bundle > COCO_TRANSFER_MAX_PAGES_PER_BUNDLE)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("pages per bundle '%1$u' is outside 1..'%2$u'"),
                            cfg->pages_per_bundle,
                            COCO_TRANSFER_MAX_PAGES_PER_BUNDLE);
    if (max_gfns && cfg->pages_per_bundle > max_gfns)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("pages per bundle '%1$u' exceeds the firmware's limit of '%2$u' pages per call"),
            cfg->pages_per_bundle, max_gfns);
    need = cocoTransferBufferBytes(cfg);
    if (need > COCO_TRANSFER_BUFFER_LIMIT)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("'%1$u' streams of '%2$u'-page bundles need '%3$llu' bytes of buffers, more than the limit of '%4$u' bytes; use fewer streams or smaller bundles"),
            cfg->streams, cfg->pages_per_bundle, (unsigned long long)need,
            COCO_TRANSFER_BUFFER_LIMIT);
    return 0;
}

void
cocoTransferCountersStart(CocoTransferCounters *c)
{
    __atomic_store_n(&c->start_us, g_get_monotonic_time(), __ATOMIC_RELAXED);
}

void
cocoTransferCountersRead(CocoTransferCounters *c, CocoTransferStats *stats)
{
    int64_t start = COCO_COUNTER_GET(c->start_us);
    int64_t now = g_get_monotonic_time();
    uint64_t us = start > 0 && now > start ? (uint64_t)(now - start) : 0;

    memset(stats, 0, sizeof(*stats));
    stats->phase = COCO_COUNTER_GET(c->phase);
    stats->epoch = COCO_COUNTER_GET(c->epoch);
    stats->bytes = COCO_COUNTER_GET(c->bytes);
    stats->pages = COCO_COUNTER_GET(c->pages);
    stats->bundles = COCO_COUNTER_GET(c->bundles);
    stats->dirty_pages = COCO_COUNTER_GET(c->dirty_pages);
    stats->remaining = COCO_COUNTER_GET(c->remaining);
    stats->retried = COCO_COUNTER_GET(c->retried);
    stats->epoch_rate = COCO_COUNTER_GET(c->epoch_rate);
    stats->dirty_rate = COCO_COUNTER_GET(c->dirty_rate);
    stats->dirty_measured = COCO_COUNTER_GET(c->dirty_measured) != 0;
    {
        int64_t scan = COCO_COUNTER_GET(c->scan_us);

        stats->since_scan_ms =
            scan > 0 && now > scan ? (uint64_t)(now - scan) / 1000 : 0;
    }
    stats->yielded_ms = (uint64_t)COCO_COUNTER_GET(c->yielded_us) / 1000;
    stats->elapsed_ms = us / 1000;
    if (us)
        stats->rate = (uint64_t)((double)stats->bytes * 1e6 / (double)us);
}

int
cocoTransferCheckFirmware(CocoFirmware *fw, CocoFirmwareRole role,
                          const CocoTransferConfig *cfg, GError **error)
{
    CocoFirmwareCaps caps;

    if (fw->role != role && role == COCO_FIRMWARE_ROLE_SOURCE)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("transfer source needs a firmware session of role '%1$s', not '%2$s'"),
            cocoFirmwareRoleTypeToString(role),
            NULLSTR(cocoFirmwareRoleTypeToString(fw->role)));
    if (fw->role != role)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("transfer destination needs a firmware session of role '%1$s', not '%2$s'"),
            cocoFirmwareRoleTypeToString(role),
            NULLSTR(cocoFirmwareRoleTypeToString(fw->role)));
    if (cocoFirmwareGetCaps(fw, &caps, error) < 0 ||
        cocoTransferConfigValidate(cfg, caps.max_gfns, error) < 0)
        return -1;
    if (caps.max_streams && cfg->streams + 1 > caps.max_streams)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("'%1$u' forward streams and a backward stream exceed the firmware's '%2$u' streams"),
            cfg->streams, caps.max_streams);
    return 0;
}
