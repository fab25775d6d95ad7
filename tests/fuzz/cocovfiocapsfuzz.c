/*
 * cocovfiocapsfuzz.c: libFuzzer target for the VFIO_IOMMU_GET_INFO parser
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzing=true
 * Run:   build-fuzz/tests/fuzz/cocovfiocapsfuzz -max_total_time=600 CORPUS
 * Beyond "no crash, no out-of-bounds read" (ASan) it checks what the parser
 * promises: a parsed result has a power-of-two page size taken from the
 * bitmap and at least one range, ranges ascending and non-overlapping; a
 * rejection is a COCO_ERROR_VFIO_CAPS with a one-line message.
 */

#include "internal.h"
#include "vfio/cocovfiocaps.h"
#include "util/cocoerror.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoVfioIommuInfo) info = NULL;
    g_autofree uint8_t *copy = g_memdup2(data, size ? size : 1);
    size_t i;

    /* An exact-size heap copy: ASan sees any read past the end. */
    info = cocoVfioIommuInfoParse(size ? copy : NULL, size, &err);
    if (!info) {
        if (!g_error_matches(err, COCO_ERROR, COCO_ERROR_VFIO_CAPS) ||
            strchr(err->message, '\n'))
            abort();
        return 0;
    }
    if (err || info->nranges == 0 || info->page_size == 0 ||
        (info->page_size & (info->page_size - 1)) != 0 ||
        !(info->pgsizes & info->page_size) ||
        (info->pgsizes & (info->page_size - 1)) != 0)
        abort();
    for (i = 0; i < info->nranges; i++) {
        if (info->ranges[i].first > info->ranges[i].last)
            abort();
        if (i > 0 && info->ranges[i].first <= info->ranges[i - 1].last)
            abort();
    }
    return 0;
}
