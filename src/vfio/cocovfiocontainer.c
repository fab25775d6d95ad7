/*
 * cocovfiocontainer.c: range-safe DMA map, unmap and teardown
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The algorithm follows docs/vfio.rst ("The unmap algorithm"):
 *  - every range is inclusive [first, last], all arithmetic is checked;
 *  - every mapping made through the container is recorded in a shadow map,
 *    which gives the bytes each request must remove; the size the kernel
 *    writes back is compared with it and a shortfall is never success;
 *  - on a type1 kernel without the Linux 6.18 fix no request whose end is
 *    exactly 2^64 is ever sent, VFIO_DMA_UNMAP_FLAG_ALL is never used, no
 *    request covers the start of a mapping that ends at 2^64-1 and such a
 *    mapping is never created; one that exists anyway is reported as a
 *    leak (COCO_ERROR_VFIO_LEAK) instead of being "removed" silently.
 */

#include "vfio/cocovfiocontainer.h"
#include "vfio/cocovfiocaps.h"
#include "vfio/cocovfioshadow.h"
#include "vfio/cocovfiouapi.h"
#include "util/cocoenum.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <inttypes.h>

#define COCO_U64_HALF (G_GUINT64_CONSTANT(1) << 63)

/* How many leaking mappings the error message lists by address. */
#define COCO_VFIO_LEAKS_NAMED 8

COCO_ENUM_IMPL(cocoVfioBackend, COCO_VFIO_BACKEND_LAST, "type1", "type1v2",
               "iommufd");

COCO_ENUM_IMPL(cocoVfioFixStatus, COCO_VFIO_FIX_LAST, "unknown", "absent",
               "present", "not-needed");

struct _CocoVfioContainer {
    CocoVfioOps ops;
    CocoVfioBackend backend;
    int fd;
    uint32_t ioas_id;
    GArray *extra_fds; /* int: device or group fds, closed first */
    CocoVfioIommuInfo *info;
    uint64_t pgsize;
    CocoVfioFixStatus fix;
    bool unmap_all;
    CocoVfioShadow *shadow;
    GArray *leaks; /* CocoVfioRange */
    uint64_t nioctls;
    int last_errno; /* of the last ioctl the kernel refused */
    int fix_probe_rc; /* the fix probe's answer: 0 or -errno */
};

static int
cocoVfioIoctl(CocoVfioContainer *c, unsigned long request, void *arg)
{
    int rc;

    c->nioctls++;
    rc = c->ops.ioctl(c->ops.opaque, c->fd, request, arg);
    if (rc < 0)
        c->last_errno = -rc;
    return rc;
}

static bool
cocoVfioIsFixed(CocoVfioContainer *c)
{
    return c->fix == COCO_VFIO_FIX_PRESENT ||
           c->fix == COCO_VFIO_FIX_NOT_NEEDED;
}

int
cocoVfioRangeFromSize(uint64_t iova, uint64_t size, CocoVfioRange *range,
                      GError **error)
{
    uint64_t last;

    if (size == 0)
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_RANGE,
            _("the IOVA range at 0x%1$" PRIx64 " has a size of zero"), iova);
    if (!cocoU64Add(iova, size - 1, &last))
        return cocoErrorSet(error, COCO_ERROR_VFIO_RANGE,
                            _("the IOVA range at 0x%1$" PRIx64
                              " of size 0x%2$" PRIx64 " overflows past 2^64-1"),
                            iova, size);
    range->first = iova;
    range->last = last;
    return 0;
}

static int
cocoVfioCheckRange(CocoVfioContainer *c, uint64_t first, uint64_t last,
                   GError **error)
{
    if (first > last)
        return cocoErrorSet(error, COCO_ERROR_VFIO_RANGE,
                            _("the IOVA range [0x%1$" PRIx64 ", 0x%2$" PRIx64
                              "] ends before it starts"),
                            first, last);
    if ((first & (c->pgsize - 1)) != 0 ||
        (last & (c->pgsize - 1)) != c->pgsize - 1)
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_RANGE,
            _("the IOVA range [0x%1$" PRIx64 ", 0x%2$" PRIx64
              "] is not aligned to the IOMMU page size 0x%3$" PRIx64 ""),
            first, last, c->pgsize);
    return 0;
}

static void
cocoVfioLeakAdd(CocoVfioContainer *c, const CocoVfioMapping *m)
{
    CocoVfioRange r = {m->first, m->last};

    g_array_append_val(c->leaks, r);
}

static int
cocoVfioLeakReport(CocoVfioContainer *c, GError **error)
{
    g_autoptr(GString) list = g_string_new(NULL);
    size_t i;

    for (i = 0; i < c->leaks->len && i < COCO_VFIO_LEAKS_NAMED; i++) {
        const CocoVfioRange *r = &g_array_index(c->leaks, CocoVfioRange, i);

        g_string_append_printf(list, "%s[0x%" PRIx64 ", 0x%" PRIx64 "]",
                               i ? ", " : "", r->first, r->last);
    }
    if (c->leaks->len > COCO_VFIO_LEAKS_NAMED)
        g_string_append_printf(list, ", +%u",
                               c->leaks->len - COCO_VFIO_LEAKS_NAMED);
    return cocoErrorSet(
        error, COCO_ERROR_VFIO_LEAK,
        _("cannot remove %1$u DMA mapping(s) %2$s: the kernel did not confirm their removal (a mapping whose last byte is 2^64-1 cannot be removed without the Linux 6.18 type1 fix); their pages stay pinned until the container is closed, and on such a kernel until reboot"),
        c->leaks->len, list->str);
}

/* One raw unmap request. Returns 0 with *out set, or a negative errno. */
static int
cocoVfioUnmapRaw(CocoVfioContainer *c, uint64_t first, uint64_t last, bool all,
                 uint64_t *out)
{
    int rc;

    if (c->backend == COCO_VFIO_BACKEND_IOMMUFD) {
        CocoIommuIoasUnmap u = {.size = sizeof(u), .ioas_id = c->ioas_id};

        if (first == 0 && last == G_MAXUINT64) {
            u.iova = 0;
            u.length = G_MAXUINT64;
        } else {
            u.iova = first;
            u.length = last - first + 1;
        }
        rc = cocoVfioIoctl(c, COCO_IOMMU_IOAS_UNMAP, &u);
        if (rc < 0)
            return rc;
        *out = u.length;
        return 0;
    } else {
        struct vfio_iommu_type1_dma_unmap u = {.argsz = sizeof(u)};

        if (all) {
            /* Only ever on a fixed kernel: elsewhere ALL reports success
             * while a top-reaching mapping stays live and pinned. */
            if (!cocoVfioIsFixed(c))
                return -EPERM;
            u.flags = VFIO_DMA_UNMAP_FLAG_ALL;
        } else {
            if (first == 0 && last == G_MAXUINT64)
                return -ERANGE; /* not expressible as (iova, size) */
            /* Never send a request ending exactly at 2^64 to a kernel
             * without the fix: it silently unmaps nothing. */
            if (last == G_MAXUINT64 && !cocoVfioIsFixed(c))
                return -EPERM;
            u.iova = first;
            u.size = last - first + 1;
        }
        rc = cocoVfioIoctl(c, VFIO_IOMMU_UNMAP_DMA, &u);
        if (rc < 0)
            return rc;
        *out = u.size;
        return 0;
    }
}

/*
 * Exact per-mapping unmaps of the recorded mappings inside [first, last]
 * after a bulk request removed only @bulk_out of the bytes expected.
 * A mapping whose exact request removes nothing was either removed by the
 * bulk request or is stuck; when those mappings add up to @bulk_out the
 * kernel's accounting is consistent and they were removed, otherwise each
 * of them is a leak.
 */
static void
cocoVfioUnmapEach(CocoVfioContainer *c, uint64_t first, uint64_t last,
                  uint64_t bulk_out, uint64_t *removed)
{
    g_autoptr(GArray) list = cocoVfioShadowListIn(c->shadow, first, last);
    g_autoptr(GArray) zeros =
        g_array_new(FALSE, FALSE, sizeof(CocoVfioMapping));
    uint64_t zero_bytes = 0;
    bool zero_sum_ok = true;
    size_t i;

    for (i = 0; i < list->len; i++) {
        const CocoVfioMapping *m = &g_array_index(list, CocoVfioMapping, i);
        uint64_t size = m->last - m->first + 1;
        uint64_t out = 0;
        int rc;

        if (m->last == G_MAXUINT64 && !cocoVfioIsFixed(c)) {
            cocoVfioLeakAdd(c, m);
            continue;
        }
        rc = cocoVfioUnmapRaw(c, m->first, m->last, false, &out);
        if (rc == 0 && out == size) {
            cocoVfioShadowRemove(c->shadow, m->first);
            *removed += size;
        } else if ((rc == 0 && out == 0) || rc == -ENOENT) {
            g_array_append_vals(zeros, m, 1);
            if (!cocoU64Add(zero_bytes, size, &zero_bytes))
                zero_sum_ok = false;
        } else {
            g_debug("exact unmap of [0x%" PRIx64 ", 0x%" PRIx64
                    "]: rc=%d out=0x%" PRIx64 "",
                    m->first, m->last, rc, out);
            cocoVfioLeakAdd(c, m);
        }
    }

    if (zeros->len == 0)
        return;
    if (zero_sum_ok && zero_bytes == bulk_out) {
        for (i = 0; i < zeros->len; i++)
            cocoVfioShadowRemove(
                c->shadow, g_array_index(zeros, CocoVfioMapping, i).first);
        *removed += zero_bytes;
        return;
    }
    for (i = 0; i < zeros->len; i++)
        cocoVfioLeakAdd(c, &g_array_index(zeros, CocoVfioMapping, i));
    g_debug("unmap shortfall: %" PRIu64
            " bytes removed by the range request, %" PRIu64
            " bytes unconfirmed",
            bulk_out, zero_bytes);
}

/*
 * One request covering [first, last] (ALL when @all), which the caller has
 * checked is safe to send to this kernel. Compares the bytes the kernel
 * reports with the shadow map and updates it. Leaks go to c->leaks.
 */
static int
cocoVfioUnmapSegment(CocoVfioContainer *c, uint64_t first, uint64_t last,
                     bool all, uint64_t *removed, GError **error)
{
    uint64_t expected = 0;
    uint64_t out = 0;
    int rc;

    if (!cocoVfioShadowBytesIn(c->shadow, first, last, &expected)) {
        cocoVfioUnmapEach(c, first, last, 0, removed);
        return 0;
    }

    rc = cocoVfioUnmapRaw(c, first, last, all, &out);
    if (rc == -ENOENT) {
        /* iommufd (and its type1 compatibility before Linux 6.18's
         * afb47765) answers ENOENT for an empty range, and also for a
         * split: only the shadow map can tell which. */
        if (expected > 0)
            cocoVfioUnmapEach(c, first, last, 0, removed);
        return 0;
    }
    if (rc < 0)
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_KERNEL,
            _("the kernel refused to unmap IOVA range [0x%1$" PRIx64
              ", 0x%2$" PRIx64 "]: %3$s"),
            first, last, g_strerror(-rc));
    if (out == expected) {
        cocoVfioShadowRemoveIn(c->shadow, first, last);
        *removed += out;
        return 0;
    }
    if (out < expected) {
        cocoVfioUnmapEach(c, first, last, out, removed);
        return 0;
    }

    /* More than recorded: a mapping not made through this container. */
    cocoVfioShadowRemoveIn(c->shadow, first, last);
    *removed += out;
    if (cocoVfioIsFixed(c))
        return 0;
    return cocoErrorSet(
        error, COCO_ERROR_VFIO_KERNEL,
        _("the kernel unmapped 0x%1$" PRIx64 " bytes in [0x%2$" PRIx64
          ", 0x%3$" PRIx64 "] but only 0x%4$" PRIx64
          " were mapped through this container; without the Linux 6.18 fix the pages of the unknown mapping may stay pinned"),
        out, first, last, expected);
}

int
cocoVfioContainerUnmap(CocoVfioContainer *c, uint64_t first, uint64_t last,
                       uint64_t *unmapped, GError **error)
{
    const CocoVfioMapping *split;
    uint64_t removed = 0;
    int ret = 0;

    if (unmapped)
        *unmapped = 0;
    if (cocoVfioCheckRange(c, first, last, error) < 0)
        return -1;
    if ((split = cocoVfioShadowFindSplit(c->shadow, first, last)))
        return cocoErrorSet(error, COCO_ERROR_VFIO_RANGE,
                            _("unmapping [0x%1$" PRIx64 ", 0x%2$" PRIx64
                              "] would split the DMA mapping [0x%3$" PRIx64
                              ", 0x%4$" PRIx64 "]"),
                            first, last, split->first, split->last);
    g_array_set_size(c->leaks, 0);

    if (c->backend == COCO_VFIO_BACKEND_IOMMUFD) {
        /* Inclusive on the kernel side too: no top-of-space workaround. */
        ret = cocoVfioUnmapSegment(c, first, last, false, &removed, error);
    } else if (last < G_MAXUINT64) {
        ret = cocoVfioUnmapSegment(c, first, last, false, &removed, error);
    } else if (cocoVfioIsFixed(c)) {
        if (first != 0) {
            ret = cocoVfioUnmapSegment(c, first, last, false, &removed, error);
        } else if (c->unmap_all) {
            ret =
                cocoVfioUnmapSegment(c, 0, G_MAXUINT64, true, &removed, error);
        } else {
            ret = cocoVfioUnmapSegment(c, 0, COCO_U64_HALF - 1, false, &removed,
                                       error);
            if (ret == 0)
                ret = cocoVfioUnmapSegment(c, COCO_U64_HALF, G_MAXUINT64, false,
                                           &removed, error);
        }
    } else {
        /* Unfixed or unknown kernel. The request must neither end at 2^64
         * (a silent no-op for the whole range) nor cover the start of a
         * mapping ending at 2^64-1 (the kernel's walk would drop its
         * record and keep its translation and pins). */
        const CocoVfioMapping *top =
            cocoVfioShadowLookup(c->shadow, G_MAXUINT64);
        uint64_t clamp = G_MAXUINT64 - c->pgsize;
        CocoVfioMapping topcopy = {0, 0, 0};

        if (top) {
            /* No split (checked above), so first <= top->first. */
            topcopy = *top;
            if (top->first > 0)
                clamp = top->first - 1;
        }
        if (!(top && top->first == first) && first <= clamp)
            ret = cocoVfioUnmapSegment(c, first, clamp, false, &removed, error);
        if (top)
            cocoVfioLeakAdd(c, &topcopy);
    }

    if (unmapped)
        *unmapped = removed;
    if (ret < 0)
        return -1;
    if (c->leaks->len > 0)
        return cocoVfioLeakReport(c, error);
    return 0;
}

int
cocoVfioContainerTeardown(CocoVfioContainer *c, GError **error)
{
    g_array_set_size(c->leaks, 0);
    if (cocoVfioShadowCount(c->shadow) == 0)
        return 0;
    return cocoVfioContainerUnmap(c, 0, G_MAXUINT64, NULL, error);
}

static bool
cocoVfioInUsableRange(CocoVfioContainer *c, uint64_t first, uint64_t last)
{
    size_t i;

    for (i = 0; i < c->info->nranges; i++) {
        if (c->info->ranges[i].first <= first &&
            last <= c->info->ranges[i].last)
            return true;
    }
    return false;
}

static int
cocoVfioCheckNewMapping(CocoVfioContainer *c, uint64_t first, uint64_t last,
                        GError **error)
{
    const CocoVfioMapping *m;

    if (cocoVfioCheckRange(c, first, last, error) < 0)
        return -1;
    if (first == 0 && last == G_MAXUINT64)
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_RANGE,
            _("a DMA mapping cannot cover the whole 64-bit IOVA space"));
    if ((m = cocoVfioShadowFindOverlap(c->shadow, first, last)))
        return cocoErrorSet(error, COCO_ERROR_VFIO_RANGE,
                            _("the IOVA range [0x%1$" PRIx64 ", 0x%2$" PRIx64
                              "] overlaps the DMA mapping [0x%3$" PRIx64
                              ", 0x%4$" PRIx64 "]"),
                            first, last, m->first, m->last);
    return 0;
}

int
cocoVfioContainerMap(CocoVfioContainer *c, void *vaddr, uint64_t first,
                     uint64_t last, unsigned int flags, GError **error)
{
    uint64_t size;
    int rc;

    if (flags & ~(COCO_VFIO_MAP_READ | COCO_VFIO_MAP_WRITE))
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("unsupported DMA map flags 0x%1$x"),
                            flags &
                                ~(COCO_VFIO_MAP_READ | COCO_VFIO_MAP_WRITE));
    if (cocoVfioCheckNewMapping(c, first, last, error) < 0)
        return -1;
    if (last == G_MAXUINT64 && !cocoVfioIsFixed(c))
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_UNSAFE,
            _("refusing to map [0x%1$" PRIx64 ", 0x%2$" PRIx64
              "]: its last byte is 2^64-1 and this kernel lacks the Linux 6.18 type1 fix, so it could never be unmapped; the usable IOVA space ends at 0x%3$" PRIx64
              ""),
            first, last, G_MAXUINT64 - c->pgsize);
    if (!cocoVfioInUsableRange(c, first, last))
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_RANGE,
            _("the IOVA range [0x%1$" PRIx64 ", 0x%2$" PRIx64
              "] is not inside one of the IOMMU's valid IOVA ranges"),
            first, last);
    size = last - first + 1;

    if (c->backend == COCO_VFIO_BACKEND_IOMMUFD) {
        CocoIommuIoasMap m = {
            .size = sizeof(m),
            .flags = COCO_IOMMU_IOAS_MAP_FIXED_IOVA,
            .ioas_id = c->ioas_id,
            .user_va = (uint64_t)(uintptr_t)vaddr,
            .length = size,
            .iova = first,
        };

        if (flags & COCO_VFIO_MAP_READ)
            m.flags |= COCO_IOMMU_IOAS_MAP_READABLE;
        if (flags & COCO_VFIO_MAP_WRITE)
            m.flags |= COCO_IOMMU_IOAS_MAP_WRITEABLE;
        rc = cocoVfioIoctl(c, COCO_IOMMU_IOAS_MAP, &m);
    } else {
        struct vfio_iommu_type1_dma_map m = {
            .argsz = sizeof(m),
            .vaddr = (uint64_t)(uintptr_t)vaddr,
            .iova = first,
            .size = size,
        };

        if (flags & COCO_VFIO_MAP_READ)
            m.flags |= VFIO_DMA_MAP_FLAG_READ;
        if (flags & COCO_VFIO_MAP_WRITE)
            m.flags |= VFIO_DMA_MAP_FLAG_WRITE;
        rc = cocoVfioIoctl(c, VFIO_IOMMU_MAP_DMA, &m);
    }
    if (rc < 0)
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_KERNEL,
            _("the kernel refused to map IOVA range [0x%1$" PRIx64
              ", 0x%2$" PRIx64 "]: %3$s"),
            first, last, g_strerror(-rc));
    if (!cocoVfioShadowInsert(c->shadow, first, last,
                              (uint64_t)(uintptr_t)vaddr))
        return cocoErrorSet(
            error, COCO_ERROR_INTERNAL,
            _("the shadow map refused [0x%1$" PRIx64 ", 0x%2$" PRIx64 "]"),
            first, last);
    return 0;
}

int
cocoVfioContainerTrackMapping(CocoVfioContainer *c, void *vaddr, uint64_t first,
                              uint64_t last, GError **error)
{
    if (cocoVfioCheckNewMapping(c, first, last, error) < 0)
        return -1;
    cocoVfioShadowInsert(c->shadow, first, last, (uint64_t)(uintptr_t)vaddr);
    return 0;
}

CocoVfioFixStatus
cocoVfioProbeFix(const CocoVfioOps *ops, int fd, uint64_t pgsize)
{
    int rc;

    return cocoVfioProbeFixRc(ops, fd, pgsize, &rc);
}

CocoVfioFixStatus
cocoVfioProbeFixRc(const CocoVfioOps *ops, int fd, uint64_t pgsize, int *answer)
{
    struct vfio_iommu_type1_dma_unmap u = {
        .argsz = sizeof(u),
        .flags = 0,
        .iova = G_MAXUINT64 - pgsize + 1,
        .size = 2 * pgsize,
    };
    int rc;

    /* iova + size - 1 wraps: every kernel rejects this during argument
     * validation, so nothing is unmapped. 6012379ede6a (a prerequisite of
     * the range fix ef270ec44637) changed the answer to EOVERFLOW. */
    rc = ops->ioctl(ops->opaque, fd, VFIO_IOMMU_UNMAP_DMA, &u);
    *answer = rc;
    if (rc == -EOVERFLOW)
        return COCO_VFIO_FIX_PRESENT;
    if (rc == -EINVAL)
        return COCO_VFIO_FIX_ABSENT;
    return COCO_VFIO_FIX_UNKNOWN;
}

static int
cocoVfioReadType1Info(CocoVfioContainer *c, GError **error)
{
    g_autofree void *buf = NULL;
    size_t len = COCO_VFIO_INFO_CAPSZ;
    int attempt;

    for (attempt = 0; attempt < 4; attempt++) {
        struct vfio_iommu_type1_info *info;
        int rc;

        g_free(buf);
        buf = g_malloc0(len);
        info = buf;
        info->argsz = len;
        rc = cocoVfioIoctl(c, VFIO_IOMMU_GET_INFO, buf);
        if (rc < 0)
            return cocoErrorSet(error, COCO_ERROR_VFIO_KERNEL,
                                _("VFIO_IOMMU_GET_INFO failed: %1$s"),
                                g_strerror(-rc));
        if (info->argsz <= len) {
            if (!(c->info = cocoVfioIommuInfoParse(buf, len, error)))
                return -1;
            return 0;
        }
        if (info->argsz > COCO_VFIO_INFO_MAX)
            return cocoErrorSet(
                error, COCO_ERROR_VFIO_CAPS,
                _("the IOMMU info needs %1$u bytes, more than the %2$d accepted"),
                info->argsz, COCO_VFIO_INFO_MAX);
        len = info->argsz;
    }
    return cocoErrorSet(error, COCO_ERROR_VFIO_CAPS,
                        _("the IOMMU info kept growing while it was read"));
}

static int
cocoVfioReadIommufdInfo(CocoVfioContainer *c, GError **error)
{
    g_autofree CocoIommuIovaRange *kr = NULL;
    g_autofree CocoVfioRange *ranges = NULL;
    CocoIommuIoasIovaRanges q = {.size = sizeof(q), .ioas_id = c->ioas_id};
    long host_pg = sysconf(_SC_PAGESIZE);
    uint32_t n;
    uint32_t i;
    int rc;

    rc = cocoVfioIoctl(c, COCO_IOMMU_IOAS_IOVA_RANGES, &q);
    if (rc < 0 && rc != -EMSGSIZE)
        return cocoErrorSet(error, COCO_ERROR_VFIO_KERNEL,
                            _("IOMMU_IOAS_IOVA_RANGES failed: %1$s"),
                            g_strerror(-rc));
    n = q.num_iovas;
    if (n == 0 || n > COCO_VFIO_INFO_MAX / sizeof(*kr))
        return cocoErrorSet(error, COCO_ERROR_VFIO_CAPS,
                            _("the IOAS reports %1$u IOVA ranges"), n);
    kr = g_new0(CocoIommuIovaRange, n);
    q.num_iovas = n;
    q.allowed_iovas = (uint64_t)(uintptr_t)kr;
    rc = cocoVfioIoctl(c, COCO_IOMMU_IOAS_IOVA_RANGES, &q);
    if (rc < 0)
        return cocoErrorSet(error, COCO_ERROR_VFIO_KERNEL,
                            _("IOMMU_IOAS_IOVA_RANGES failed: %1$s"),
                            g_strerror(-rc));
    if (q.num_iovas != n)
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_CAPS,
            _("the IOAS IOVA ranges changed while they were read"));
    ranges = g_new0(CocoVfioRange, n);
    for (i = 0; i < n; i++) {
        ranges[i].first = kr[i].start;
        ranges[i].last = kr[i].last;
    }
    c->info = g_new0(CocoVfioIommuInfo, 1);
    if (cocoVfioIommuInfoSetRanges(c->info, ranges, n, error) < 0)
        return -1;
    if (q.out_iova_alignment == 0 ||
        (q.out_iova_alignment & (q.out_iova_alignment - 1)) != 0)
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_CAPS,
            _("the IOAS reports an IOVA alignment of 0x%1$" PRIx64
              ", not a power of two"),
            (uint64_t)q.out_iova_alignment);
    c->info->page_size = MAX((uint64_t)q.out_iova_alignment,
                             host_pg > 0 ? (uint64_t)host_pg : 4096);
    c->info->pgsizes = c->info->page_size;
    return 0;
}

CocoVfioContainer *
cocoVfioContainerNewFromFd(const CocoVfioOps *ops, CocoVfioBackend backend,
                           int fd, uint32_t ioas_id, const int *extra_fds,
                           size_t nextra, GError **error)
{
    g_autoptr(CocoVfioContainer) c = g_new0(CocoVfioContainer, 1);
    int rc;

    c->ops = *ops;
    c->backend = backend;
    c->fd = fd;
    c->ioas_id = ioas_id;
    c->extra_fds = g_array_new(FALSE, FALSE, sizeof(int));
    if (nextra)
        g_array_append_vals(c->extra_fds, extra_fds, nextra);
    c->shadow = cocoVfioShadowNew();
    c->leaks = g_array_new(FALSE, FALSE, sizeof(CocoVfioRange));

    switch (backend) {
    case COCO_VFIO_BACKEND_TYPE1:
    case COCO_VFIO_BACKEND_TYPE1V2:
        if (cocoVfioReadType1Info(c, error) < 0)
            return NULL;
        c->pgsize = c->info->page_size;
        rc = cocoVfioIoctl(c, VFIO_CHECK_EXTENSION,
                           (void *)(uintptr_t)VFIO_UNMAP_ALL);
        c->unmap_all = rc > 0;
        c->nioctls++; /* the probe below */
        c->fix =
            cocoVfioProbeFixRc(&c->ops, c->fd, c->pgsize, &c->fix_probe_rc);
        break;
    case COCO_VFIO_BACKEND_IOMMUFD:
        if (cocoVfioReadIommufdInfo(c, error) < 0)
            return NULL;
        c->pgsize = c->info->page_size;
        c->unmap_all = true;
        c->fix = COCO_VFIO_FIX_NOT_NEEDED;
        break;
    case COCO_VFIO_BACKEND_LAST:
    default:
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("unknown VFIO backend %1$d"), (int)backend);
        return NULL;
    }
    return g_steal_pointer(&c);
}

/* The process's locked memory in kB (VmLck), or -1. */
static long
cocoVfioReadVmLck(void)
{
    g_autofree char *status = NULL;
    const char *p;

    if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL))
        return -1;
    if (!(p = strstr(status, "VmLck:")))
        return -1;
    return strtol(p + strlen("VmLck:"), NULL, 10);
}

void
cocoVfioContainerFree(CocoVfioContainer *c)
{
    g_autoptr(GError) err = NULL;
    bool real;
    long before = -1;
    size_t nleaks = 0;
    guint i;

    if (!c)
        return;
    /* Only a real kernel can leave host pins behind; with an injected ops
     * table (the tests' kernel model) the messages are debug output. */
    real = c->ops.ioctl == cocoVfioOpsReal()->ioctl;
    if (c->shadow && c->info && cocoVfioShadowCount(c->shadow) > 0) {
        if (cocoVfioContainerTeardown(c, &err) < 0) {
            if (real)
                g_message("%s", err->message);
            else
                g_debug("%s", err->message);
        }
        nleaks = cocoVfioShadowCount(c->shadow);
    }
    if (nleaks > 0 && real)
        before = cocoVfioReadVmLck();
    for (i = 0; c->extra_fds && i < c->extra_fds->len; i++)
        c->ops.close(c->ops.opaque, g_array_index(c->extra_fds, int, i));
    if (c->fd >= 0)
        c->ops.close(c->ops.opaque, c->fd);
    if (nleaks > 0 && real) {
        long after = cocoVfioReadVmLck();

        if (before >= 0 && after >= 0)
            g_message(
                _("closed the VFIO container with %1$zu DMA mapping(s) that could not be unmapped (locked memory %2$ld kB before the close, %3$ld kB after): without the Linux 6.18 fix their pages stay pinned until the host reboots"),
                nleaks, before, after);
        else
            g_message(
                _("closed the VFIO container with %1$zu DMA mapping(s) that could not be unmapped: without the Linux 6.18 fix their pages stay pinned until the host reboots"),
                nleaks);
    }
    if (c->extra_fds)
        g_array_unref(c->extra_fds);
    if (c->leaks)
        g_array_unref(c->leaks);
    cocoVfioShadowFree(c->shadow);
    cocoVfioIommuInfoFree(c->info);
    g_free(c);
}

CocoVfioBackend
cocoVfioContainerGetBackend(CocoVfioContainer *c)
{
    return c->backend;
}

CocoVfioFixStatus
cocoVfioContainerGetFixStatus(CocoVfioContainer *c)
{
    return c->fix;
}

bool
cocoVfioContainerHasUnmapAll(CocoVfioContainer *c)
{
    return c->unmap_all;
}

const CocoVfioIommuInfo *
cocoVfioContainerGetInfo(CocoVfioContainer *c)
{
    return c->info;
}

size_t
cocoVfioContainerGetMappingCount(CocoVfioContainer *c)
{
    return cocoVfioShadowCount(c->shadow);
}

uint64_t
cocoVfioContainerGetIoctlCount(CocoVfioContainer *c)
{
    return c->nioctls;
}

int
cocoVfioContainerGetLastErrno(CocoVfioContainer *c)
{
    return c->last_errno;
}

int
cocoVfioContainerGetFixProbeAnswer(CocoVfioContainer *c)
{
    return c->fix_probe_rc;
}

uint64_t
cocoVfioContainerGetMappedBytes(CocoVfioContainer *c)
{
    uint64_t bytes = 0;

    if (!cocoVfioShadowBytesIn(c->shadow, 0, G_MAXUINT64, &bytes))
        return G_MAXUINT64;
    return bytes;
}

void
cocoVfioContainerGetMappings(CocoVfioContainer *c, CocoVfioRange **ranges,
                             size_t *nranges)
{
    g_autoptr(GArray) list = cocoVfioShadowListIn(c->shadow, 0, G_MAXUINT64);
    size_t i;

    *nranges = list->len;
    *ranges = g_new0(CocoVfioRange, MAX(list->len, 1));
    for (i = 0; i < list->len; i++) {
        const CocoVfioMapping *m = &g_array_index(list, CocoVfioMapping, i);

        (*ranges)[i].first = m->first;
        (*ranges)[i].last = m->last;
    }
}

bool
cocoVfioContainerOverlaps(CocoVfioContainer *c, uint64_t first, uint64_t last)
{
    return cocoVfioShadowFindOverlap(c->shadow, first, last) != NULL;
}

void
cocoVfioContainerForget(CocoVfioContainer *c)
{
    cocoVfioShadowRemoveIn(c->shadow, 0, G_MAXUINT64);
    g_array_set_size(c->leaks, 0);
}

void
cocoVfioContainerGetUsableRanges(CocoVfioContainer *c, CocoVfioRange **ranges,
                                 size_t *nranges)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(CocoVfioRange));
    size_t i;

    for (i = 0; i < c->info->nranges; i++) {
        CocoVfioRange r = c->info->ranges[i];

        if (r.last == G_MAXUINT64 && !cocoVfioIsFixed(c)) {
            if (r.last - r.first < c->pgsize)
                continue; /* only the top page */
            r.last = G_MAXUINT64 - c->pgsize;
        }
        g_array_append_val(out, r);
    }
    *nranges = out->len;
    *ranges = (CocoVfioRange *)(void *)g_array_free(out, FALSE);
}

void
cocoVfioContainerGetLeaks(CocoVfioContainer *c, CocoVfioRange **leaks,
                          size_t *nleaks)
{
    *nleaks = c->leaks->len;
    *leaks = g_memdup2(c->leaks->data, c->leaks->len * sizeof(CocoVfioRange));
}

static bool
cocoVfioBdfValid(const char *bdf)
{
    static const char pattern[] = "xxxx:xx:xx.x";
    size_t i;

    if (!bdf || strlen(bdf) != strlen(pattern))
        return false;
    for (i = 0; pattern[i]; i++) {
        if (pattern[i] == 'x' ? !g_ascii_isxdigit(bdf[i])
                              : bdf[i] != pattern[i])
            return false;
    }
    return bdf[11] >= '0' && bdf[11] <= '7';
}

CocoVfioContainer *
cocoVfioContainerOpenGroup(unsigned int group, unsigned int flags,
                           GError **error)
{
    const CocoVfioOps *ops = cocoVfioOpsReal();
    g_autofree char *path = g_strdup_printf("/dev/vfio/%u", group);
    struct vfio_group_status status = {.argsz = sizeof(status)};
    CocoVfioBackend backend;
    CocoVfioContainer *c;
    int container = -1;
    int gfd = -1;
    int rc;

    if (flags != 0) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("unsupported flags 0x%1$x for a VFIO group"), flags);
        return NULL;
    }
    if ((container = ops->open(ops->opaque, "/dev/vfio/vfio")) < 0) {
        cocoErrorSetSystem(error, -container, _("cannot open '%1$s'"),
                           "/dev/vfio/vfio");
        return NULL;
    }
    rc = ops->ioctl(ops->opaque, container, VFIO_GET_API_VERSION, NULL);
    if (rc != VFIO_API_VERSION) {
        cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("'/dev/vfio/vfio' speaks VFIO API version %1$d, not %2$d"), rc,
            VFIO_API_VERSION);
        goto error;
    }
    if ((gfd = ops->open(ops->opaque, path)) < 0) {
        cocoErrorSetSystem(error, -gfd, _("cannot open '%1$s'"), path);
        goto error;
    }
    rc = ops->ioctl(ops->opaque, gfd, VFIO_GROUP_GET_STATUS, &status);
    if (rc < 0 || !(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        cocoErrorSet(
            error, COCO_ERROR_VFIO_KERNEL,
            _("VFIO group '%1$s' is not viable: every device in the group must be bound to vfio-pci or unbound"),
            path);
        goto error;
    }
    rc = ops->ioctl(ops->opaque, gfd, VFIO_GROUP_SET_CONTAINER, &container);
    if (rc < 0) {
        cocoErrorSet(error, COCO_ERROR_VFIO_KERNEL,
                     _("cannot attach VFIO group '%1$s' to a container: %2$s"),
                     path, g_strerror(-rc));
        goto error;
    }
    if (ops->ioctl(ops->opaque, container, VFIO_CHECK_EXTENSION,
                   (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU) > 0) {
        backend = COCO_VFIO_BACKEND_TYPE1V2;
        rc = ops->ioctl(ops->opaque, container, VFIO_SET_IOMMU,
                        (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU);
    } else if (ops->ioctl(ops->opaque, container, VFIO_CHECK_EXTENSION,
                          (void *)(uintptr_t)VFIO_TYPE1_IOMMU) > 0) {
        backend = COCO_VFIO_BACKEND_TYPE1;
        rc = ops->ioctl(ops->opaque, container, VFIO_SET_IOMMU,
                        (void *)(uintptr_t)VFIO_TYPE1_IOMMU);
    } else {
        cocoErrorSet(error, COCO_ERROR_NOT_SUPPORTED,
                     _("the VFIO container for '%1$s' offers no type1 IOMMU"),
                     path);
        goto error;
    }
    if (rc < 0) {
        cocoErrorSet(error, COCO_ERROR_VFIO_KERNEL,
                     _("cannot set the type1 IOMMU for '%1$s': %2$s"), path,
                     g_strerror(-rc));
        goto error;
    }
    c = cocoVfioContainerNewFromFd(ops, backend, container, 0, &gfd, 1, error);
    if (!c)
        return NULL; /* both fds closed by the free */
    return c;

error:
    if (gfd >= 0)
        ops->close(ops->opaque, gfd);
    ops->close(ops->opaque, container);
    return NULL;
}

static CocoVfioContainer *
cocoVfioContainerOpenIommufd(const char *bdf, GError **error)
{
    const CocoVfioOps *ops = cocoVfioOpsReal();
    g_autofree char *sysdir =
        g_strdup_printf("/sys/bus/pci/devices/%s/vfio-dev", bdf);
    g_autofree char *devpath = NULL;
    g_autoptr(GDir) dir = NULL;
    CocoIommuIoasAlloc alloc = {.size = sizeof(alloc)};
    struct vfio_device_bind_iommufd bind = {.argsz = sizeof(bind)};
    struct vfio_device_attach_iommufd_pt attach = {.argsz = sizeof(attach)};
    g_autoptr(GError) direrr = NULL;
    const char *name;
    int iommufd = -1;
    int devfd = -1;
    int rc;

    if (!(dir = g_dir_open(sysdir, 0, &direrr))) {
        cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("device '%1$s' has no VFIO cdev ('%2$s' is missing): it is not bound to vfio-pci or the kernel lacks CONFIG_VFIO_DEVICE_CDEV"),
            bdf, sysdir);
        return NULL;
    }
    while ((name = g_dir_read_name(dir))) {
        if (STRPREFIX(name, "vfio")) {
            devpath = g_strdup_printf("/dev/vfio/devices/%s", name);
            break;
        }
    }
    if (!devpath) {
        cocoErrorSet(error, COCO_ERROR_NOT_SUPPORTED,
                     _("device '%1$s' has no VFIO cdev in '%2$s'"), bdf,
                     sysdir);
        return NULL;
    }
    if ((iommufd = ops->open(ops->opaque, "/dev/iommu")) < 0) {
        cocoErrorSetSystem(error, -iommufd, _("cannot open '%1$s'"),
                           "/dev/iommu");
        return NULL;
    }
    if ((devfd = ops->open(ops->opaque, devpath)) < 0) {
        cocoErrorSetSystem(error, -devfd, _("cannot open '%1$s'"), devpath);
        goto error;
    }
    bind.iommufd = iommufd;
    if ((rc = ops->ioctl(ops->opaque, devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind)) <
        0) {
        cocoErrorSet(error, COCO_ERROR_VFIO_KERNEL,
                     _("cannot bind '%1$s' to iommufd: %2$s"), devpath,
                     g_strerror(-rc));
        goto error;
    }
    if ((rc = ops->ioctl(ops->opaque, iommufd, COCO_IOMMU_IOAS_ALLOC, &alloc)) <
        0) {
        cocoErrorSet(error, COCO_ERROR_VFIO_KERNEL,
                     _("cannot allocate an iommufd IOAS: %1$s"),
                     g_strerror(-rc));
        goto error;
    }
    attach.pt_id = alloc.out_ioas_id;
    if ((rc = ops->ioctl(ops->opaque, devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT,
                         &attach)) < 0) {
        cocoErrorSet(error, COCO_ERROR_VFIO_KERNEL,
                     _("cannot attach '%1$s' to iommufd IOAS %2$u: %3$s"),
                     devpath, alloc.out_ioas_id, g_strerror(-rc));
        goto error;
    }
    return cocoVfioContainerNewFromFd(ops, COCO_VFIO_BACKEND_IOMMUFD, iommufd,
                                      alloc.out_ioas_id, &devfd, 1, error);

error:
    if (devfd >= 0)
        ops->close(ops->opaque, devfd);
    ops->close(ops->opaque, iommufd);
    return NULL;
}

CocoVfioContainer *
cocoVfioContainerOpenDevice(const char *bdf, unsigned int flags, GError **error)
{
    g_autofree char *link = NULL;
    g_autofree char *linkpath = NULL;
    g_autofree char *base = NULL;
    uint64_t group;

    if (!cocoVfioBdfValid(bdf)) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("'%1$s' is not a PCI address of the form DDDD:BB:SS.F"),
                     NULLSTR(bdf));
        return NULL;
    }
    if (flags & ~COCO_VFIO_OPEN_IOMMUFD) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("unsupported flags 0x%1$x for a VFIO device"), flags);
        return NULL;
    }
    if (flags & COCO_VFIO_OPEN_IOMMUFD)
        return cocoVfioContainerOpenIommufd(bdf, error);

    linkpath = g_strdup_printf("/sys/bus/pci/devices/%s/iommu_group", bdf);
    if (!(link = g_file_read_link(linkpath, NULL))) {
        cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("device '%1$s' has no IOMMU group ('%2$s' is missing): no such device or the IOMMU is disabled"),
            bdf, linkpath);
        return NULL;
    }
    base = g_path_get_basename(link);
    if (cocoStrToU64(base, 10, &group) < 0 || group > G_MAXUINT) {
        cocoErrorSet(error, COCO_ERROR_VFIO_KERNEL,
                     _("cannot read the IOMMU group of '%1$s' from '%2$s'"),
                     bdf, link);
        return NULL;
    }
    return cocoVfioContainerOpenGroup((unsigned int)group, 0, error);
}
