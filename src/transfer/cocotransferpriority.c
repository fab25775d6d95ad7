/*
 * cocotransferpriority.c: switchovers before bulk pre-copy, host-wide
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "transfer/cocotransferpriority.h"

/* A cancellation is seen within this. */
#define COCO_PRIORITY_SLICE_US 20000

typedef struct {
    guint64 id;
    int64_t since_us; /* monotonic */
} CocoPriorityDowntime;

struct _CocoTransferPriority {
    gint refs;
    GMutex lock;
    GCond cond;
    GArray *downtimes; /* CocoPriorityDowntime, under lock */
    gint count; /* downtimes->len, atomic reads */
    guint64 next_id;
    int64_t max_age_us;
};

CocoTransferPriority *
cocoTransferPriorityNew(int64_t max_age_us)
{
    CocoTransferPriority *p = g_new0(CocoTransferPriority, 1);

    p->refs = 1;
    g_mutex_init(&p->lock);
    g_cond_init(&p->cond);
    p->downtimes = g_array_new(FALSE, FALSE, sizeof(CocoPriorityDowntime));
    p->max_age_us = max_age_us;
    return p;
}

CocoTransferPriority *
cocoTransferPriorityRef(CocoTransferPriority *p)
{
    g_atomic_int_inc(&p->refs);
    return p;
}

void
cocoTransferPriorityUnref(CocoTransferPriority *p)
{
    if (!p || !g_atomic_int_dec_and_test(&p->refs))
        return;
    g_array_unref(p->downtimes);
    g_mutex_clear(&p->lock);
    g_cond_clear(&p->cond);
    g_free(p);
}

guint64
cocoTransferPriorityEnter(CocoTransferPriority *p)
{
    CocoPriorityDowntime d;

    g_mutex_lock(&p->lock);
    d.id = ++p->next_id;
    d.since_us = g_get_monotonic_time();
    g_array_append_val(p->downtimes, d);
    g_atomic_int_set(&p->count, (gint)p->downtimes->len);
    g_mutex_unlock(&p->lock);
    return d.id;
}

void
cocoTransferPriorityLeave(CocoTransferPriority *p, guint64 id)
{
    bool found = false;
    guint i;

    g_mutex_lock(&p->lock);
    for (i = 0; i < p->downtimes->len; i++) {
        if (g_array_index(p->downtimes, CocoPriorityDowntime, i).id == id) {
            g_array_remove_index_fast(p->downtimes, i);
            found = true;
            break;
        }
    }
    g_atomic_int_set(&p->count, (gint)p->downtimes->len);
    g_cond_broadcast(&p->cond);
    g_mutex_unlock(&p->lock);
    g_return_if_fail(found);
}

unsigned int
cocoTransferPriorityDowntimes(CocoTransferPriority *p)
{
    return (unsigned int)g_atomic_int_get(&p->count);
}

/* Until when the downtimes under way hold bulk work (0: none does);
 * under lock. */
static int64_t
cocoPriorityHoldUntil(CocoTransferPriority *p, int64_t now)
{
    int64_t until = 0;
    guint i;

    for (i = 0; i < p->downtimes->len; i++) {
        int64_t end =
            g_array_index(p->downtimes, CocoPriorityDowntime, i).since_us +
            p->max_age_us;

        if (end > now && end > until)
            until = end;
    }
    return until;
}

int64_t
cocoTransferPriorityYield(CocoTransferPriority *p, int64_t max_us,
                          GCancellable *cancel)
{
    int64_t start;
    int64_t deadline;
    int64_t now;

    /* The common case, no downtime: no lock. */
    if (g_atomic_int_get(&p->count) == 0 || max_us <= 0)
        return 0;
    g_mutex_lock(&p->lock);
    start = now = g_get_monotonic_time();
    deadline = start + max_us;
    for (;;) {
        int64_t until = cocoPriorityHoldUntil(p, now);

        if (!until || now >= deadline ||
            (cancel && g_cancellable_is_cancelled(cancel)))
            break;
        g_cond_wait_until(
            &p->cond, &p->lock,
            MIN(MIN(deadline, until), now + COCO_PRIORITY_SLICE_US));
        now = g_get_monotonic_time();
    }
    g_mutex_unlock(&p->lock);
    return now - start;
}
