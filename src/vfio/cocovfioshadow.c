/*
 * cocovfioshadow.c: the shadow map of DMA mappings
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "vfio/cocovfioshadow.h"
#include "util/cocomath.h"

struct _CocoVfioShadow {
    GTree *tree; /* &mapping->first -> CocoVfioMapping */
    uint64_t total; /* bytes of all mappings, valid when !total_overflow */
    bool total_overflow;
};

static int
cocoVfioShadowCompare(gconstpointer a, gconstpointer b,
                      gpointer data G_GNUC_UNUSED)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : (x > y ? 1 : 0);
}

CocoVfioShadow *
cocoVfioShadowNew(void)
{
    CocoVfioShadow *shadow = g_new0(CocoVfioShadow, 1);

    shadow->tree = g_tree_new_full(cocoVfioShadowCompare, NULL, NULL, g_free);
    return shadow;
}

void
cocoVfioShadowFree(CocoVfioShadow *shadow)
{
    if (!shadow)
        return;
    g_tree_destroy(shadow->tree);
    g_free(shadow);
}

size_t
cocoVfioShadowCount(CocoVfioShadow *shadow)
{
    return (size_t)g_tree_nnodes(shadow->tree);
}

/* The node of the mapping with the greatest first <= @iova, or NULL. */
static GTreeNode *
cocoVfioShadowFloor(CocoVfioShadow *shadow, uint64_t iova)
{
    GTreeNode *node = g_tree_upper_bound(shadow->tree, &iova);

    if (node)
        return g_tree_node_previous(node);
    return g_tree_node_last(shadow->tree);
}

/* The first node whose mapping ends at or after @iova. */
static GTreeNode *
cocoVfioShadowStart(CocoVfioShadow *shadow, uint64_t iova)
{
    GTreeNode *node = cocoVfioShadowFloor(shadow, iova);

    if (node) {
        const CocoVfioMapping *m = g_tree_node_value(node);

        if (m->last >= iova)
            return node;
        return g_tree_node_next(node);
    }
    return g_tree_node_first(shadow->tree);
}

/* Keep the byte total up to date. Once it has overflowed (the whole space
 * is mapped) it is recomputed by walking when it is next needed. */
static void
cocoVfioShadowAccount(CocoVfioShadow *shadow, const CocoVfioMapping *m,
                      bool add)
{
    uint64_t size = m->last - m->first; /* + 1 below, checked */

    if (shadow->total_overflow)
        return;
    if (add) {
        if (!cocoU64Add(shadow->total, size, &shadow->total) ||
            !cocoU64Add(shadow->total, 1, &shadow->total))
            shadow->total_overflow = true;
    } else {
        shadow->total -= size;
        shadow->total -= 1;
    }
}

/* Whether [first, last] holds every mapping, or every mapping but the
 * highest one (*all_but_last). */
static bool
cocoVfioShadowCovers(CocoVfioShadow *shadow, uint64_t first, uint64_t last,
                     bool *all_but_last)
{
    GTreeNode *lo = g_tree_node_first(shadow->tree);
    GTreeNode *hi = g_tree_node_last(shadow->tree);
    const CocoVfioMapping *mlo;
    const CocoVfioMapping *mhi;
    GTreeNode *prev;

    *all_but_last = false;
    if (!lo)
        return true;
    mlo = g_tree_node_value(lo);
    mhi = g_tree_node_value(hi);
    if (mlo->first < first)
        return false;
    if (mhi->last <= last)
        return true;
    if (lo == hi || mhi->first <= last)
        return false;
    prev = g_tree_node_previous(hi);
    if (((const CocoVfioMapping *)g_tree_node_value(prev))->last > last)
        return false;
    *all_but_last = true;
    return true;
}

const CocoVfioMapping *
cocoVfioShadowFindOverlap(CocoVfioShadow *shadow, uint64_t first, uint64_t last)
{
    GTreeNode *node = cocoVfioShadowStart(shadow, first);
    const CocoVfioMapping *m;

    if (!node)
        return NULL;
    m = g_tree_node_value(node);
    return m->first <= last ? m : NULL;
}

const CocoVfioMapping *
cocoVfioShadowLookup(CocoVfioShadow *shadow, uint64_t iova)
{
    return cocoVfioShadowFindOverlap(shadow, iova, iova);
}

bool
cocoVfioShadowInsert(CocoVfioShadow *shadow, uint64_t first, uint64_t last,
                     uint64_t vaddr)
{
    CocoVfioMapping *m;

    if (first > last || cocoVfioShadowFindOverlap(shadow, first, last))
        return false;
    m = g_new0(CocoVfioMapping, 1);
    m->first = first;
    m->last = last;
    m->vaddr = vaddr;
    g_tree_insert(shadow->tree, &m->first, m);
    cocoVfioShadowAccount(shadow, m, true);
    return true;
}

const CocoVfioMapping *
cocoVfioShadowFindSplit(CocoVfioShadow *shadow, uint64_t first, uint64_t last)
{
    const CocoVfioMapping *m = cocoVfioShadowLookup(shadow, first);

    if (m && m->first < first)
        return m;
    m = cocoVfioShadowLookup(shadow, last);
    if (m && m->last > last)
        return m;
    return NULL;
}

bool
cocoVfioShadowBytesIn(CocoVfioShadow *shadow, uint64_t first, uint64_t last,
                      uint64_t *bytes)
{
    GTreeNode *node;
    uint64_t sum = 0;
    bool but_last;

    if (!shadow->total_overflow &&
        cocoVfioShadowCovers(shadow, first, last, &but_last)) {
        sum = shadow->total;
        if (but_last) {
            const CocoVfioMapping *m =
                g_tree_node_value(g_tree_node_last(shadow->tree));

            sum -= m->last - m->first;
            sum -= 1;
        }
        *bytes = sum;
        return true;
    }
    node = cocoVfioShadowStart(shadow, first);
    for (; node; node = g_tree_node_next(node)) {
        const CocoVfioMapping *m = g_tree_node_value(node);

        if (m->first > last)
            break;
        if (m->first < first || m->last > last)
            continue;
        /* m->last - m->first + 1 only overflows for [0, 2^64-1]. */
        if (!cocoU64Add(sum, m->last - m->first, &sum) ||
            !cocoU64Add(sum, 1, &sum))
            return false;
    }
    *bytes = sum;
    return true;
}

GArray *
cocoVfioShadowListIn(CocoVfioShadow *shadow, uint64_t first, uint64_t last)
{
    GArray *list = g_array_new(FALSE, FALSE, sizeof(CocoVfioMapping));
    GTreeNode *node = cocoVfioShadowStart(shadow, first);

    for (; node; node = g_tree_node_next(node)) {
        const CocoVfioMapping *m = g_tree_node_value(node);

        if (m->first > last)
            break;
        if (m->first < first || m->last > last)
            continue;
        g_array_append_vals(list, m, 1);
    }
    return list;
}

size_t
cocoVfioShadowRemoveIn(CocoVfioShadow *shadow, uint64_t first, uint64_t last)
{
    g_autoptr(GArray) list = NULL;
    bool but_last;
    size_t i;

    if (cocoVfioShadowCovers(shadow, first, last, &but_last)) {
        /* Drop the whole tree at once; keep the highest mapping if it
         * lies outside the range. */
        size_t n = cocoVfioShadowCount(shadow);
        CocoVfioMapping *keep = NULL;

        if (but_last) {
            keep = g_tree_node_value(g_tree_node_last(shadow->tree));
            g_tree_steal(shadow->tree, &keep->first);
            n--;
        }
        g_tree_destroy(shadow->tree);
        shadow->tree =
            g_tree_new_full(cocoVfioShadowCompare, NULL, NULL, g_free);
        shadow->total = 0;
        shadow->total_overflow = false;
        if (keep) {
            g_tree_insert(shadow->tree, &keep->first, keep);
            cocoVfioShadowAccount(shadow, keep, true);
        }
        return n;
    }
    list = cocoVfioShadowListIn(shadow, first, last);
    for (i = 0; i < list->len; i++)
        cocoVfioShadowRemove(shadow,
                             g_array_index(list, CocoVfioMapping, i).first);
    return list->len;
}

bool
cocoVfioShadowRemove(CocoVfioShadow *shadow, uint64_t first)
{
    CocoVfioMapping *m = g_tree_lookup(shadow->tree, &first);

    if (!m)
        return false;
    cocoVfioShadowAccount(shadow, m, false);
    return g_tree_remove(shadow->tree, &first);
}
