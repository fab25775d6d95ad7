/*
 * cocodirtysource.c: dirty-page source dispatch
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "transfer/cocodirtysource.h"

uint64_t
cocoDirtySourceGetPages(CocoDirtySource *src)
{
    return src->npages;
}

void
cocoDirtySourceStart(CocoDirtySource *src)
{
    src->driver->start(src);
}

int
cocoDirtySourceRefresh(CocoDirtySource *src, GError **error)
{
    if (!src->driver->refresh)
        return 0;
    return src->driver->refresh(src, error);
}

uint64_t
cocoDirtySourceCollect(CocoDirtySource *src, uint64_t *out, size_t first,
                       size_t nwords)
{
    size_t total = cocoDirtyWords(src->npages);

    if (first >= total)
        return 0;
    if (nwords > total - first)
        nwords = total - first;
    return src->driver->collect(src, out, first, nwords);
}

int
cocoDirtySourceCollectChecked(CocoDirtySource *src, uint64_t *out, size_t first,
                              size_t nwords, GError **error)
{
    size_t total = cocoDirtyWords(src->npages);

    if (!src->driver->collectChecked) {
        cocoDirtySourceCollect(src, out, first, nwords);
        return 0;
    }
    if (first >= total)
        return 0;
    if (nwords > total - first)
        nwords = total - first;
    return src->driver->collectChecked(src, out, first, nwords, error);
}

bool
cocoDirtySourceIsFirmware(CocoDirtySource *src)
{
    return src->driver->firmware;
}

void
cocoDirtySourceExportBegin(CocoDirtySource *src, const uint64_t *gfns,
                           uint32_t ngfns, uint64_t *scratch)
{
    if (src->driver->exportBegin)
        src->driver->exportBegin(src, gfns, ngfns, scratch);
}

void
cocoDirtySourceExportEnd(CocoDirtySource *src, const uint64_t *gfns,
                         uint32_t ngfns, const uint8_t *gfn_status,
                         const uint64_t *scratch)
{
    if (src->driver->exportEnd)
        src->driver->exportEnd(src, gfns, ngfns, gfn_status, scratch);
}

void
cocoDirtySourceFree(CocoDirtySource *src)
{
    if (!src)
        return;
    src->driver->free(src);
}
