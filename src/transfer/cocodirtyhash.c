/*
 * cocodirtyhash.c: a dirty source that compares page hashes between rounds
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "transfer/cocodirtyhash.h"

G_STATIC_ASSERT(COCO_DIRTY_PAGE_SIZE == COCO_PAGE_HASH_SIZE);

typedef struct {
    CocoDirtySource parent;
    const uint8_t *mem;
    uint64_t seed;
    uint64_t *hashes; /* hash of the copy last exported; 0 = none */
} CocoDirtyHash;

static inline const uint8_t *
cocoDirtyHashPage(CocoDirtyHash *dh, uint64_t gfn)
{
    return dh->mem + gfn * COCO_DIRTY_PAGE_SIZE;
}

static void
cocoDirtyHashStart(CocoDirtySource *src)
{
    CocoDirtyHash *dh = (CocoDirtyHash *)src;

    memset(dh->hashes, 0, src->npages * sizeof(uint64_t));
}

static uint64_t
cocoDirtyHashCollect(CocoDirtySource *src, uint64_t *out, size_t first,
                     size_t nwords)
{
    CocoDirtyHash *dh = (CocoDirtyHash *)src;
    uint64_t gfn = (uint64_t)first * 64;
    uint64_t end = MIN(src->npages, (uint64_t)(first + nwords) * 64);
    uint64_t count = 0;

    for (; gfn < end; gfn++) {
        uint64_t h = cocoPageHash(cocoDirtyHashPage(dh, gfn), dh->seed);

        if (h == dh->hashes[gfn])
            continue;
        /* The copy exported next will set the hash (exportEnd). */
        dh->hashes[gfn] = 0;
        out[gfn / 64] |= 1ULL << (gfn % 64);
        count++;
    }
    return count;
}

static void
cocoDirtyHashExportBegin(CocoDirtySource *src, const uint64_t *gfns,
                         uint32_t ngfns, uint64_t *scratch)
{
    CocoDirtyHash *dh = (CocoDirtyHash *)src;
    uint32_t i;

    for (i = 0; i < ngfns; i++)
        scratch[i] = cocoPageHash(cocoDirtyHashPage(dh, gfns[i]), dh->seed);
}

static void
cocoDirtyHashExportEnd(CocoDirtySource *src, const uint64_t *gfns,
                       uint32_t ngfns, const uint8_t *gfn_status,
                       const uint64_t *scratch)
{
    CocoDirtyHash *dh = (CocoDirtyHash *)src;
    uint32_t i;

    for (i = 0; i < ngfns; i++) {
        uint64_t after;

        if (gfn_status && gfn_status[i] != 0) {
            dh->hashes[gfns[i]] = 0;
            continue;
        }
        after = cocoPageHash(cocoDirtyHashPage(dh, gfns[i]), dh->seed);
        /* Changed while the firmware read it: unknown copy, resend. */
        dh->hashes[gfns[i]] = after == scratch[i] ? after : 0;
    }
}

static void
cocoDirtyHashFree(CocoDirtySource *src)
{
    CocoDirtyHash *dh = (CocoDirtyHash *)src;

    g_free(dh->hashes);
    g_free(dh);
}

static const CocoDirtySourceDriver cocoDirtyHashDriver = {
    .name = "hash",
    .start = cocoDirtyHashStart,
    .collect = cocoDirtyHashCollect,
    .exportBegin = cocoDirtyHashExportBegin,
    .exportEnd = cocoDirtyHashExportEnd,
    .free = cocoDirtyHashFree,
};

CocoDirtySource *
cocoDirtyHashNew(const void *mem, uint64_t npages, uint64_t seed)
{
    CocoDirtyHash *dh = g_new0(CocoDirtyHash, 1);

    dh->parent.driver = &cocoDirtyHashDriver;
    dh->parent.npages = npages;
    dh->mem = mem;
    dh->seed = seed;
    dh->hashes = g_new0(uint64_t, npages ? npages : 1);
    return &dh->parent;
}
