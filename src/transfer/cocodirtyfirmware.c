/*
 * cocodirtyfirmware.c: a dirty source that is the firmware's own dirty log
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "transfer/cocodirtyfirmware.h"

typedef struct {
    CocoDirtySource parent;
    CocoFirmware *fw;
} CocoDirtyFirmware;

static void
cocoDirtyFirmwareStart(CocoDirtySource *src G_GNUC_UNUSED)
{
}

static uint64_t
cocoDirtyFirmwareCollect(CocoDirtySource *src G_GNUC_UNUSED,
                         uint64_t *out G_GNUC_UNUSED,
                         size_t first G_GNUC_UNUSED,
                         size_t nwords G_GNUC_UNUSED)
{
    /* The engine calls collectChecked. */
    return 0;
}

static int
cocoDirtyFirmwareCollectChecked(CocoDirtySource *src, uint64_t *out,
                                size_t first, size_t nwords, GError **error)
{
    CocoDirtyFirmware *df = (CocoDirtyFirmware *)src;
    uint64_t g = (uint64_t)first * 64;
    uint64_t n = MIN(src->npages - g, (uint64_t)nwords * 64);

    return cocoFirmwareDirtyLog(df->fw, g, n, out + first, error) < 0 ? -1 : 0;
}

static void
cocoDirtyFirmwareFree(CocoDirtySource *src)
{
    g_free(src);
}

static const CocoDirtySourceDriver cocoDirtyFirmwareDriver = {
    .name = "firmware",
    .firmware = true,
    .start = cocoDirtyFirmwareStart,
    .collect = cocoDirtyFirmwareCollect,
    .collectChecked = cocoDirtyFirmwareCollectChecked,
    .free = cocoDirtyFirmwareFree,
};

CocoDirtySource *
cocoDirtyFirmwareNew(CocoFirmware *fw, uint64_t npages)
{
    CocoDirtyFirmware *df = g_new0(CocoDirtyFirmware, 1);

    df->parent.driver = &cocoDirtyFirmwareDriver;
    df->parent.npages = npages;
    df->fw = fw;
    return &df->parent;
}
