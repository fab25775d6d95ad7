/*
 * cocovfioshadow.c: the shadow map of DMA mappings
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "vfio/cocovfioshadow.h"
#include "util/cocomath.h"

struct _CocoVfioShadow {
    GTree *tree; /* &mapping->first -> CocoVfioMapping */
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
    GTreeNode *node = cocoVfioShadowStart(shadow, first);
    uint64_t sum = 0;

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
    size_t i;

    if (first == 0 && last == G_MAXUINT64) {
        size_t n = cocoVfioShadowCount(shadow);

        g_tree_destroy(shadow->tree);
        shadow->tree =
            g_tree_new_full(cocoVfioShadowCompare, NULL, NULL, g_free);
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
    return g_tree_remove(shadow->tree, &first);
}
