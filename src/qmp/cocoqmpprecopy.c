/*
 * cocoqmpprecopy.c: the source migration while the agents copy private
 * memory, as libvirt sees it through QMP
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "proto/cocoproto.h"
#include "qmp/cocoqmpprecopy.h"

#define COCO_QMP_PAGE_SIZE 4096

COCO_ENUM_IMPL(cocoQmpOwn, COCO_QMP_OWN_LAST, "none", "precopy", "cancelling",
               "forwarded", "failed", "cancelled");
COCO_ENUM_IMPL(cocoQmpOwnEvent, COCO_QMP_OWN_EV_LAST, "new-job", "hold",
               "forward", "fail", "cancel", "cancelled");

#define X COCO_QMP_OWN_LAST /* no transition */
#define N COCO_QMP_OWN_NONE
#define P COCO_QMP_OWN_PRECOPY
#define C COCO_QMP_OWN_CANCELLING
#define F COCO_QMP_OWN_FORWARDED
#define E COCO_QMP_OWN_FAILED
#define D COCO_QMP_OWN_CANCELLED
/* rows: from; columns: new-job, hold, forward, fail, cancel, cancelled */
static const CocoQmpOwn
    cocoQmpOwnTable[COCO_QMP_OWN_LAST][COCO_QMP_OWN_EV_LAST] = {
        [COCO_QMP_OWN_NONE] = {N, P, X, X, X, X},
        [COCO_QMP_OWN_PRECOPY] = {N, X, F, E, C, D},
        [COCO_QMP_OWN_CANCELLING] = {N, X, X, X, X, D},
        [COCO_QMP_OWN_FORWARDED] = {N, X, X, E, X, X},
        [COCO_QMP_OWN_FAILED] = {N, X, X, X, X, X},
        [COCO_QMP_OWN_CANCELLED] = {N, X, X, X, X, X},
};
#undef X
#undef N
#undef P
#undef C
#undef F
#undef E
#undef D

gboolean
cocoQmpOwnNext(CocoQmpOwn from, CocoQmpOwnEvent event, CocoQmpOwn *to)
{
    CocoQmpOwn next;

    if ((unsigned)from >= COCO_QMP_OWN_LAST ||
        (unsigned)event >= COCO_QMP_OWN_EV_LAST)
        return FALSE;
    next = cocoQmpOwnTable[from][event];
    if (next == COCO_QMP_OWN_LAST)
        return FALSE;
    *to = next;
    return TRUE;
}

static guint64
cocoQmpJsonU64(JsonObject *o, const char *member)
{
    JsonNode *n = json_object_get_member(o, member);
    GType t;

    if (!n || !JSON_NODE_HOLDS_VALUE(n))
        return 0;
    t = json_node_get_value_type(n);
    if (t == G_TYPE_INT64) {
        gint64 v = json_node_get_int(n);

        return v > 0 ? (guint64)v : 0;
    }
    if (t == G_TYPE_DOUBLE) {
        gdouble v = json_node_get_double(n);

        return v > 0 && v < 1.8e19 ? (guint64)v : 0;
    }
    return 0;
}

gboolean
cocoQmpProgressParse(JsonObject *msg, CocoQmpProgress *p)
{
    if (!json_object_has_member(msg, "total"))
        return FALSE;
    p->valid = TRUE;
    p->total = cocoQmpJsonU64(msg, "total");
    p->transferred = cocoQmpJsonU64(msg, "transferred");
    p->remaining = cocoQmpJsonU64(msg, "remaining");
    p->pages = cocoQmpJsonU64(msg, "pages");
    p->epoch = cocoQmpJsonU64(msg, "epoch");
    p->rate = cocoQmpJsonU64(msg, "rate");
    p->dirtyRate = cocoQmpJsonU64(msg, "dirty_rate");
    p->hasExpectedDowntime = json_object_has_member(msg, "expected_downtime");
    p->expectedDowntime = cocoQmpJsonU64(msg, "expected_downtime");
    p->done = STREQ(cocoJsonStringDefault(msg, "phase", ""), "done");
    return TRUE;
}

void
cocoQmpProgressMerge(CocoQmpProgress *shown, const CocoQmpProgress *fresh)
{
    CocoQmpProgress m = *fresh;

    if (shown->valid) {
        m.epoch = MAX(shown->epoch, fresh->epoch);
        m.transferred = MAX(shown->transferred, fresh->transferred);
        m.pages = MAX(shown->pages, fresh->pages);
        m.total = MAX(shown->total, fresh->total);
        /* A report of an older epoch changes nothing but the rates. */
        if (fresh->epoch < shown->epoch) {
            m.remaining = shown->remaining;
            m.done = shown->done;
        } else if (fresh->epoch == shown->epoch && !fresh->done) {
            m.remaining = MIN(shown->remaining, fresh->remaining);
        }
    }
    if (m.remaining > m.total)
        m.remaining = m.total;
    if (!m.done && m.remaining == 0)
        m.remaining = MIN((guint64)COCO_QMP_PAGE_SIZE, m.total);
    m.valid = TRUE;
    *shown = m;
}

JsonObject *
cocoQmpProgressToJson(const CocoQmpProgress *p)
{
    JsonObject *o = json_object_new();

    json_object_set_int_member(o, "total", (gint64)p->total);
    json_object_set_int_member(o, "transferred", (gint64)p->transferred);
    json_object_set_int_member(o, "remaining", (gint64)p->remaining);
    json_object_set_int_member(o, "pages", (gint64)p->pages);
    json_object_set_int_member(o, "epoch", (gint64)p->epoch);
    json_object_set_int_member(o, "rate", (gint64)p->rate);
    json_object_set_int_member(o, "dirty_rate", (gint64)p->dirtyRate);
    return o;
}

static gdouble
cocoQmpMbps(guint64 rate)
{
    return (gdouble)rate * 8.0 / 1e6;
}

static JsonObject *
cocoQmpPrecopyRam(const CocoQmpProgress *p)
{
    JsonObject *ram = json_object_new();

    json_object_set_int_member(ram, "transferred", (gint64)p->transferred);
    json_object_set_int_member(ram, "remaining", (gint64)p->remaining);
    json_object_set_int_member(ram, "total", (gint64)p->total);
    json_object_set_int_member(ram, "duplicate", 0);
    json_object_set_int_member(ram, "skipped", 0);
    json_object_set_int_member(ram, "normal", (gint64)p->pages);
    json_object_set_int_member(ram, "normal-bytes",
                               (gint64)(p->pages * COCO_QMP_PAGE_SIZE));
    json_object_set_int_member(ram, "dirty-pages-rate", (gint64)p->dirtyRate);
    json_object_set_double_member(ram, "mbps", cocoQmpMbps(p->rate));
    json_object_set_int_member(ram, "dirty-sync-count", (gint64)p->epoch);
    json_object_set_int_member(ram, "page-size", COCO_QMP_PAGE_SIZE);
    json_object_set_int_member(ram, "multifd-bytes", 0);
    json_object_set_int_member(ram, "pages-per-second",
                               (gint64)(p->rate / COCO_QMP_PAGE_SIZE));
    json_object_set_int_member(ram, "precopy-bytes", (gint64)p->transferred);
    json_object_set_int_member(ram, "downtime-bytes", 0);
    json_object_set_int_member(ram, "postcopy-bytes", 0);
    return ram;
}

JsonObject *
cocoQmpPrecopyStatus(CocoQmpOwn own, const CocoQmpProgress *p, gint64 totalMs,
                     const char *errorDesc, gint64 downtimeLimit)
{
    JsonObject *ret = json_object_new();
    const char *status = cocoQmpOwnTypeToString(own);

    switch (own) {
    case COCO_QMP_OWN_PRECOPY:
        status = "active";
        G_GNUC_FALLTHROUGH;
    case COCO_QMP_OWN_CANCELLING: {
        /* The agent's prediction; before it has one, the limit. */
        gint64 downtime =
            p->hasExpectedDowntime
                ? (gint64)MIN(p->expectedDowntime,
                              (guint64)COCO_QMP_EXPECTED_DOWNTIME_MAX)
                : MIN(downtimeLimit >= 0 ? downtimeLimit : 300,
                      COCO_QMP_EXPECTED_DOWNTIME_MAX);

        json_object_set_string_member(ret, "status", status);
        json_object_set_int_member(ret, "total-time", MAX(totalMs, 0));
        json_object_set_int_member(ret, "setup-time", 0);
        json_object_set_int_member(ret, "expected-downtime", downtime);
        json_object_set_object_member(ret, "ram", cocoQmpPrecopyRam(p));
        break;
    }
    case COCO_QMP_OWN_FAILED:
        json_object_set_string_member(ret, "status", status);
        json_object_set_string_member(ret, "error-desc", NULLSTR(errorDesc));
        break;
    case COCO_QMP_OWN_CANCELLED:
        json_object_set_string_member(ret, "status", status);
        break;
    case COCO_QMP_OWN_NONE:
    case COCO_QMP_OWN_FORWARDED:
    case COCO_QMP_OWN_LAST:
    default:
        break;
    }
    return ret;
}

static void
cocoQmpAddInt(JsonObject *o, const char *member, guint64 add, gboolean create)
{
    guint64 v;

    if (!json_object_has_member(o, member) && !create)
        return;
    v = cocoQmpJsonU64(o, member);
    v = v > G_MAXINT64 - add ? G_MAXINT64 : v + add;
    json_object_set_int_member(o, member, (gint64)v);
}

void
cocoQmpPrecopyAugment(JsonObject *ret, const CocoQmpProgress *p, guint64 passes)
{
    JsonNode *n = json_object_get_member(ret, "ram");
    const char *status = cocoJsonStringDefault(ret, "status", "");
    JsonObject *ram;

    if (STREQ(status, "setup"))
        json_object_set_string_member(ret, "status", "active");
    if (!p->valid || !n || !JSON_NODE_HOLDS_OBJECT(n))
        return;
    ram = json_node_get_object(n);
    cocoQmpAddInt(ram, "transferred", p->transferred, TRUE);
    cocoQmpAddInt(ram, "total", p->total, TRUE);
    cocoQmpAddInt(ram, "remaining", p->remaining, TRUE);
    cocoQmpAddInt(ram, "normal", p->pages, FALSE);
    cocoQmpAddInt(ram, "normal-bytes", p->pages * COCO_QMP_PAGE_SIZE, FALSE);
    cocoQmpAddInt(ram, "precopy-bytes", p->transferred, FALSE);
    cocoQmpAddInt(ram, "dirty-sync-count", passes, FALSE);
    if (json_object_has_member(ram, "mbps")) {
        JsonNode *m = json_object_get_member(ram, "mbps");
        gdouble v = 0;

        if (JSON_NODE_HOLDS_VALUE(m) &&
            json_node_get_value_type(m) == G_TYPE_DOUBLE)
            v = json_node_get_double(m);
        else
            v = (gdouble)cocoQmpJsonU64(ram, "mbps");
        json_object_set_double_member(ram, "mbps", v + cocoQmpMbps(p->rate));
    }
}
