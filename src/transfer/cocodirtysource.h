/*
 * cocodirtysource.h: where the pages dirtied between epochs come from
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A dirty source covers guest frames 0 .. npages-1 and answers one
 * question per epoch: which pages changed since the previous answer.
 * Answers are bitmaps of 64-bit words (bit g % 64 of word g / 64 is guest
 * frame g). Two implementations: an explicit bitmap that a write tracker
 * feeds (what KVM_GET_DIRTY_LOG gives, cocodirtybitmap.h), and a hash-diff
 * source for memory that can be read but whose writer cannot be watched
 * (cocodirtyhash.h).
 *
 * Threading: collect() may run concurrently on disjoint word ranges, and
 * exportBegin()/exportEnd() concurrently on disjoint frame sets; the
 * transfer engine guarantees both. Marking pages dirty (the bitmap's
 * writer side) may run at any time from any thread.
 */

#pragma once

#include "internal.h"

#include <stdbool.h>
#include <stdint.h>

#define COCO_DIRTY_PAGE_SIZE 4096U

typedef struct _CocoDirtySource CocoDirtySource;

typedef struct {
    const char *name; /* "bitmap", "hash", "firmware" */

    /* The firmware's own log (cocodirtyfirmware.h): it also lists the
     * pages never exported (so epoch 0 scans instead of sending every
     * page: pages the guest never used are left out), and the firmware
     * needs no report of what it lists (no UNBLOCKW hook). */
    bool firmware;

    /* Begin a session: everything is considered not yet exported. */
    void (*start)(CocoDirtySource *src);

    /* Optional: bring the source up to date before a scan (read a dirty
     * log). Called once per scan, by one thread. */
    int (*refresh)(CocoDirtySource *src, GError **error);

    /* OR the pages of words [first, first + nwords) that were dirtied since
     * the previous collect into @out (indexed like the whole bitmap), and
     * forget them here. Returns how many pages were added. */
    uint64_t (*collect)(CocoDirtySource *src, uint64_t *out, size_t first,
                        size_t nwords);
    /* Like collect, for a source that can fail: 0 or -1 with @error. When
     * set, the engine calls it instead of collect. */
    int (*collectChecked)(CocoDirtySource *src, uint64_t *out, size_t first,
                          size_t nwords, GError **error);

    /* Optional: the firmware is about to read @gfns / has read them
     * (@gfn_status: 0 = exported). @scratch holds @ngfns words for the
     * source's use between the two calls. */
    void (*exportBegin)(CocoDirtySource *src, const uint64_t *gfns,
                        uint32_t ngfns, uint64_t *scratch);
    void (*exportEnd)(CocoDirtySource *src, const uint64_t *gfns,
                      uint32_t ngfns, const uint8_t *gfn_status,
                      const uint64_t *scratch);

    void (*free)(CocoDirtySource *src);
} CocoDirtySourceDriver;

struct _CocoDirtySource {
    const CocoDirtySourceDriver *driver;
    uint64_t npages;
};

/* Number of 64-bit words of a bitmap of @npages pages. */
static inline size_t
cocoDirtyWords(uint64_t npages)
{
    return (size_t)((npages + 63) / 64);
}

uint64_t cocoDirtySourceGetPages(CocoDirtySource *src);
void cocoDirtySourceStart(CocoDirtySource *src);
int cocoDirtySourceRefresh(CocoDirtySource *src, GError **error);
uint64_t cocoDirtySourceCollect(CocoDirtySource *src, uint64_t *out,
                                size_t first, size_t nwords);
/* collect, or collectChecked where the source has it: 0 or -1. */
int cocoDirtySourceCollectChecked(CocoDirtySource *src, uint64_t *out,
                                  size_t first, size_t nwords, GError **error);
bool cocoDirtySourceIsFirmware(CocoDirtySource *src);
void cocoDirtySourceExportBegin(CocoDirtySource *src, const uint64_t *gfns,
                                uint32_t ngfns, uint64_t *scratch);
void cocoDirtySourceExportEnd(CocoDirtySource *src, const uint64_t *gfns,
                              uint32_t ngfns, const uint8_t *gfn_status,
                              const uint64_t *scratch);
void cocoDirtySourceFree(CocoDirtySource *src);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoDirtySource, cocoDirtySourceFree)
