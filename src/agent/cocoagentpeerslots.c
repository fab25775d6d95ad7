/*
 * cocoagentpeerslots.c: one migration at a time sets up its connections
 * to a peer host (cocoagentpeerslots.h)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "agent/cocoagentpeerslots.h"
#include "util/cocoerror.h"

struct _CocoAgentPeerSlots {
    GMutex lock;
    GCond cond;
    GHashTable *held; /* peer host -> itself */
};

CocoAgentPeerSlots *
cocoAgentPeerSlotsNew(void)
{
    CocoAgentPeerSlots *s = g_new0(CocoAgentPeerSlots, 1);

    g_mutex_init(&s->lock);
    g_cond_init(&s->cond);
    s->held = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return s;
}

void
cocoAgentPeerSlotsFree(CocoAgentPeerSlots *s)
{
    if (!s)
        return;
    g_hash_table_unref(s->held);
    g_cond_clear(&s->cond);
    g_mutex_clear(&s->lock);
    g_free(s);
}

int
cocoAgentPeerSlotsAcquire(CocoAgentPeerSlots *s, const char *host,
                          guint timeout_s, GError **error)
{
    gint64 until = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    int ret = 0;

    g_mutex_lock(&s->lock);
    while (g_hash_table_contains(s->held, host)) {
        if (!g_cond_wait_until(&s->cond, &s->lock, until) &&
            g_hash_table_contains(s->held, host)) {
            ret = cocoErrorSet(
                error, COCO_ERROR_AGENT_LIMIT,
                _("another migration to the peer host '%1$s' was still setting up its connections after '%2$u' seconds"),
                host, timeout_s);
            break;
        }
    }
    if (ret == 0)
        g_hash_table_add(s->held, g_strdup(host));
    g_mutex_unlock(&s->lock);
    return ret;
}

void
cocoAgentPeerSlotsRelease(CocoAgentPeerSlots *s, const char *host)
{
    g_mutex_lock(&s->lock);
    g_hash_table_remove(s->held, host);
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}
