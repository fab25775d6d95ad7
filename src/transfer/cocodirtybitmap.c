/*
 * cocodirtybitmap.c: a dirty source fed by an explicit write log
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "transfer/cocodirtybitmap.h"

typedef struct {
    CocoDirtySource parent;
    uint64_t *words;
    size_t nwords;
    CocoDirtyPollFunc poll;
    void *poll_opaque;
} CocoDirtyBitmap;

static int
cocoDirtyBitmapRefresh(CocoDirtySource *src, GError **error)
{
    CocoDirtyBitmap *bm = (CocoDirtyBitmap *)src;

    if (!bm->poll)
        return 0;
    return bm->poll(src, bm->poll_opaque, error);
}

static void
cocoDirtyBitmapStart(CocoDirtySource *src)
{
    CocoDirtyBitmap *bm = (CocoDirtyBitmap *)src;
    size_t i;

    /* Epoch 0 exports every page: earlier marks carry no news. */
    for (i = 0; i < bm->nwords; i++)
        __atomic_store_n(&bm->words[i], 0, __ATOMIC_RELAXED);
}

static uint64_t
cocoDirtyBitmapCollect(CocoDirtySource *src, uint64_t *out, size_t first,
                       size_t nwords)
{
    CocoDirtyBitmap *bm = (CocoDirtyBitmap *)src;
    uint64_t count = 0;
    size_t i;

    for (i = first; i < first + nwords; i++) {
        uint64_t w;

        if (__atomic_load_n(&bm->words[i], __ATOMIC_RELAXED) == 0)
            continue;
        w = __atomic_exchange_n(&bm->words[i], 0, __ATOMIC_ACQ_REL);
        out[i] |= w;
        count += (uint64_t)__builtin_popcountll(w);
    }
    return count;
}

static void
cocoDirtyBitmapFree(CocoDirtySource *src)
{
    CocoDirtyBitmap *bm = (CocoDirtyBitmap *)src;

    g_free(bm->words);
    g_free(bm);
}

static const CocoDirtySourceDriver cocoDirtyBitmapDriver = {
    .name = "bitmap",
    .start = cocoDirtyBitmapStart,
    .refresh = cocoDirtyBitmapRefresh,
    .collect = cocoDirtyBitmapCollect,
    .free = cocoDirtyBitmapFree,
};

CocoDirtySource *
cocoDirtyBitmapNew(uint64_t npages)
{
    CocoDirtyBitmap *bm = g_new0(CocoDirtyBitmap, 1);

    bm->parent.driver = &cocoDirtyBitmapDriver;
    bm->parent.npages = npages;
    bm->nwords = cocoDirtyWords(npages);
    bm->words = g_new0(uint64_t, bm->nwords ? bm->nwords : 1);
    return &bm->parent;
}

CocoDirtySource *
cocoDirtyBitmapNewPolled(uint64_t npages, CocoDirtyPollFunc poll, void *opaque)
{
    CocoDirtySource *src = cocoDirtyBitmapNew(npages);
    CocoDirtyBitmap *bm = (CocoDirtyBitmap *)src;

    bm->poll = poll;
    bm->poll_opaque = opaque;
    return src;
}

void
cocoDirtyBitmapSet(CocoDirtySource *src, uint64_t gfn)
{
    CocoDirtyBitmap *bm = (CocoDirtyBitmap *)src;

    g_return_if_fail(gfn < src->npages);
    __atomic_fetch_or(&bm->words[gfn / 64], 1ULL << (gfn % 64),
                      __ATOMIC_RELEASE);
}

bool
cocoDirtyBitmapTest(CocoDirtySource *src, uint64_t gfn)
{
    CocoDirtyBitmap *bm = (CocoDirtyBitmap *)src;

    g_return_val_if_fail(gfn < src->npages, false);
    return (__atomic_load_n(&bm->words[gfn / 64], __ATOMIC_ACQUIRE) >>
            (gfn % 64)) &
           1;
}

void
cocoDirtyBitmapMerge(CocoDirtySource *src, const uint64_t *log, size_t first,
                     size_t nwords)
{
    CocoDirtyBitmap *bm = (CocoDirtyBitmap *)src;
    size_t i;

    g_return_if_fail(first <= bm->nwords && nwords <= bm->nwords - first);
    for (i = 0; i < nwords; i++) {
        uint64_t w = log[i];

        /* Bits past npages in the last word are not pages. */
        if (first + i == bm->nwords - 1 && src->npages % 64)
            w &= (1ULL << (src->npages % 64)) - 1;
        if (w)
            __atomic_fetch_or(&bm->words[first + i], w, __ATOMIC_RELEASE);
    }
}
