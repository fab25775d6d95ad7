/*
 * cocovfiocaps.c: parsing VFIO_IOMMU_GET_INFO and its capability chain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "vfio/cocovfiocaps.h"
#include "vfio/cocovfiouapi.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"
#include <inttypes.h>

/* Sizes of the capability structures (header included), from the ABI. */
#define COCO_VFIO_CAP_HEADER_SIZE 8
#define COCO_VFIO_CAP_IOVA_FIXED 16 /* header, nr_iovas, reserved */
#define COCO_VFIO_CAP_IOVA_ENTRY 16 /* start, end */
#define COCO_VFIO_CAP_MIGRATION_SIZE 32
#define COCO_VFIO_CAP_DMA_AVAIL_SIZE 12

G_STATIC_ASSERT(sizeof(struct vfio_info_cap_header) ==
                COCO_VFIO_CAP_HEADER_SIZE);
G_STATIC_ASSERT(sizeof(struct vfio_iommu_type1_info_cap_iova_range) ==
                COCO_VFIO_CAP_IOVA_FIXED);
G_STATIC_ASSERT(sizeof(struct vfio_iova_range) == COCO_VFIO_CAP_IOVA_ENTRY);
G_STATIC_ASSERT(sizeof(struct vfio_iommu_type1_info_cap_migration) ==
                COCO_VFIO_CAP_MIGRATION_SIZE);
G_STATIC_ASSERT(sizeof(struct vfio_iommu_type1_info_dma_avail) ==
                COCO_VFIO_CAP_DMA_AVAIL_SIZE);

void
cocoVfioIommuInfoFree(CocoVfioIommuInfo *info)
{
    if (!info)
        return;
    g_free(info->ranges);
    g_free(info);
}

CocoVfioIommuInfo *
cocoVfioIommuInfoCopy(const CocoVfioIommuInfo *info)
{
    CocoVfioIommuInfo *copy = g_new0(CocoVfioIommuInfo, 1);

    *copy = *info;
    copy->ranges =
        g_memdup2(info->ranges, info->nranges * sizeof(CocoVfioRange));
    return copy;
}

int
cocoVfioIommuInfoSetRanges(CocoVfioIommuInfo *info, const CocoVfioRange *ranges,
                           size_t nranges, GError **error)
{
    size_t i;

    if (nranges == 0)
        return cocoErrorSet(error, COCO_ERROR_VFIO_CAPS,
                            _("the IOMMU reports no valid IOVA range"));
    for (i = 0; i < nranges; i++) {
        if (ranges[i].first > ranges[i].last)
            return cocoErrorSet(error, COCO_ERROR_VFIO_CAPS,
                                _("IOVA range %1$zu [0x%2$" PRIx64
                                  ", 0x%3$" PRIx64 "] ends before it starts"),
                                i, ranges[i].first, ranges[i].last);
        if (i > 0 && ranges[i].first <= ranges[i - 1].last)
            return cocoErrorSet(error, COCO_ERROR_VFIO_CAPS,
                                _("IOVA range %1$zu starting at 0x%2$" PRIx64
                                  " overlaps or precedes the range before it"),
                                i, ranges[i].first);
    }
    g_free(info->ranges);
    info->ranges = g_memdup2(ranges, nranges * sizeof(CocoVfioRange));
    info->nranges = nranges;
    return 0;
}

static uint32_t
cocoVfioGetU32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint16_t
cocoVfioGetU16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t
cocoVfioGetU64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static int
cocoVfioParseIovaCap(CocoVfioIommuInfo *info, const uint8_t *cap, size_t caplen,
                     GError **error)
{
    uint32_t nr;
    uint64_t need;
    g_autofree CocoVfioRange *ranges = NULL;
    uint32_t i;

    if (caplen < COCO_VFIO_CAP_IOVA_FIXED)
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_CAPS,
            _("the IOVA range capability is truncated: %1$zu bytes, at least %2$d needed"),
            caplen, COCO_VFIO_CAP_IOVA_FIXED);
    nr = cocoVfioGetU32(cap + COCO_VFIO_CAP_HEADER_SIZE);
    if (!cocoU64Mul(nr, COCO_VFIO_CAP_IOVA_ENTRY, &need) ||
        !cocoU64Add(need, COCO_VFIO_CAP_IOVA_FIXED, &need) || need > caplen)
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_CAPS,
            _("the IOVA range capability claims %1$u ranges but has room for %2$zu"),
            nr, (caplen - COCO_VFIO_CAP_IOVA_FIXED) / COCO_VFIO_CAP_IOVA_ENTRY);
    ranges = g_new0(CocoVfioRange, nr ? nr : 1);
    for (i = 0; i < nr; i++) {
        const uint8_t *e = cap + COCO_VFIO_CAP_IOVA_FIXED +
                           (size_t)i * COCO_VFIO_CAP_IOVA_ENTRY;

        ranges[i].first = cocoVfioGetU64(e);
        ranges[i].last = cocoVfioGetU64(e + 8); /* 'end' is inclusive */
    }
    return cocoVfioIommuInfoSetRanges(info, ranges, nr, error);
}

CocoVfioIommuInfo *
cocoVfioIommuInfoParse(const void *buf, size_t len, GError **error)
{
    const uint8_t *p = buf;
    g_autoptr(CocoVfioIommuInfo) info = g_new0(CocoVfioIommuInfo, 1);
    uint32_t argsz;
    uint32_t flags;
    size_t limit;
    uint32_t off;
    unsigned int ncaps = 0;
    bool seen[4] = {false, false, false, false};

    if (!buf || len < COCO_VFIO_INFO_MINSZ)
        return cocoErrorSet(
                   error, COCO_ERROR_VFIO_CAPS,
                   _("the IOMMU info is truncated: %1$zu bytes, at least %2$d needed"),
                   buf ? len : 0, COCO_VFIO_INFO_MINSZ),
               NULL;
    argsz = cocoVfioGetU32(p);
    flags = cocoVfioGetU32(p + 4);
    if (argsz < COCO_VFIO_INFO_MINSZ)
        return cocoErrorSet(
                   error, COCO_ERROR_VFIO_CAPS,
                   _("the IOMMU info has an argsz of %1$u, less than its %2$d-byte header"),
                   argsz, COCO_VFIO_INFO_MINSZ),
               NULL;
    if (argsz > len)
        return cocoErrorSet(
                   error, COCO_ERROR_VFIO_CAPS,
                   _("the IOMMU info is truncated: the kernel needs %1$u bytes, %2$zu were read"),
                   argsz, len),
               NULL;
    limit = argsz;

    if (!(flags & VFIO_IOMMU_INFO_PGSIZES))
        return cocoErrorSet(error, COCO_ERROR_VFIO_CAPS,
                            _("the IOMMU info does not report page sizes")),
               NULL;
    info->pgsizes = cocoVfioGetU64(p + 8);
    if (info->pgsizes == 0)
        return cocoErrorSet(
                   error, COCO_ERROR_VFIO_CAPS,
                   _("the IOMMU info reports an empty page size bitmap")),
               NULL;
    info->page_size = info->pgsizes & (~info->pgsizes + 1);

    off = 0;
    if (flags & VFIO_IOMMU_INFO_CAPS) {
        if (limit < COCO_VFIO_INFO_CAPSZ)
            return cocoErrorSet(
                       error, COCO_ERROR_VFIO_CAPS,
                       _("the IOMMU info announces capabilities but has no cap_offset (argsz %1$zu)"),
                       limit),
                   NULL;
        off = cocoVfioGetU32(p + 16);
    }

    while (off != 0) {
        const uint8_t *cap;
        uint16_t id;
        uint16_t version;
        uint32_t next;
        size_t end;

        if (++ncaps > COCO_VFIO_CAPS_MAX)
            return cocoErrorSet(
                       error, COCO_ERROR_VFIO_CAPS,
                       _("the IOMMU capability chain has more than %1$d entries"),
                       COCO_VFIO_CAPS_MAX),
                   NULL;
        if (off < COCO_VFIO_INFO_CAPSZ || off % 4 != 0 ||
            (size_t)off > limit - COCO_VFIO_CAP_HEADER_SIZE)
            return cocoErrorSet(
                       error, COCO_ERROR_VFIO_CAPS,
                       _("IOMMU capability offset %1$u is outside the %2$zu-byte info or misaligned"),
                       off, limit),
                   NULL;
        cap = p + off;
        id = cocoVfioGetU16(cap);
        version = cocoVfioGetU16(cap + 2);
        next = cocoVfioGetU32(cap + 4);
        /* The kernel appends capabilities, so a chain only moves forward;
         * this also rules out loops. */
        if (next != 0 && next <= off)
            return cocoErrorSet(
                       error, COCO_ERROR_VFIO_CAPS,
                       _("IOMMU capability %1$u at offset %2$u points back to offset %3$u (loop)"),
                       id, off, next),
                   NULL;
        if (next != 0 && next > limit)
            return cocoErrorSet(
                       error, COCO_ERROR_VFIO_CAPS,
                       _("IOMMU capability %1$u at offset %2$u points to offset %3$u past the %4$zu-byte info"),
                       id, off, next, limit),
                   NULL;
        end = next != 0 ? next : limit;

        if (id >= 1 && id <= 3) {
            if (seen[id])
                return cocoErrorSet(error, COCO_ERROR_VFIO_CAPS,
                                    _("IOMMU capability %1$u appears twice"),
                                    id),
                       NULL;
            seen[id] = true;
        }

        switch (id) {
        case VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE:
            if (version != 1)
                break;
            if (cocoVfioParseIovaCap(info, cap, end - off, error) < 0)
                return NULL;
            break;
        case VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION:
            if (version != 1)
                break;
            if (end - off < COCO_VFIO_CAP_MIGRATION_SIZE)
                return cocoErrorSet(
                           error, COCO_ERROR_VFIO_CAPS,
                           _("the IOMMU migration capability is truncated: %1$zu bytes, %2$d needed"),
                           end - off, COCO_VFIO_CAP_MIGRATION_SIZE),
                       NULL;
            info->has_migration = true;
            info->migration_flags = cocoVfioGetU32(cap + 8);
            info->migration_pgsizes = cocoVfioGetU64(cap + 16);
            info->migration_max_dirty_bitmap_size = cocoVfioGetU64(cap + 24);
            break;
        case VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL:
            if (version != 1)
                break;
            if (end - off < COCO_VFIO_CAP_DMA_AVAIL_SIZE)
                return cocoErrorSet(
                           error, COCO_ERROR_VFIO_CAPS,
                           _("the IOMMU DMA-available capability is truncated: %1$zu bytes, %2$d needed"),
                           end - off, COCO_VFIO_CAP_DMA_AVAIL_SIZE),
                       NULL;
            info->has_dma_avail = true;
            info->dma_avail = cocoVfioGetU32(cap + 8);
            break;
        default:
            /* Unknown capabilities (and versions) are skipped. */
            break;
        }
        off = next;
    }

    if (info->nranges == 0) {
        CocoVfioRange all = {0, G_MAXUINT64};

        if (cocoVfioIommuInfoSetRanges(info, &all, 1, error) < 0)
            return NULL;
    }
    return g_steal_pointer(&info);
}
