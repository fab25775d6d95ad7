/*
 * cocovfiocapstest.c: the VFIO_IOMMU_GET_INFO capability-chain parser
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "cocovfiomodel.h"
#include "vfio/cocovfiocaps.h"
#include "vfio/cocovfiouapi.h"
#include "util/cocoerror.h"

/* A buffer with the 24-byte info header and room for caps. */
typedef struct {
    uint8_t b[512];
    size_t len;
} Buf;

static void
put16(Buf *buf, size_t off, uint16_t v)
{
    memcpy(buf->b + off, &v, sizeof(v));
}

static void
put32(Buf *buf, size_t off, uint32_t v)
{
    memcpy(buf->b + off, &v, sizeof(v));
}

static void
put64(Buf *buf, size_t off, uint64_t v)
{
    memcpy(buf->b + off, &v, sizeof(v));
}

static void
bufInfo(Buf *buf, size_t len, uint32_t flags, uint64_t pgsizes,
        uint32_t cap_offset)
{
    memset(buf, 0, sizeof(*buf));
    buf->len = len;
    put32(buf, 0, (uint32_t)len);
    put32(buf, 4, flags);
    put64(buf, 8, pgsizes);
    put32(buf, 16, cap_offset);
}

static void
bufCap(Buf *buf, size_t off, uint16_t id, uint16_t version, uint32_t next)
{
    put16(buf, off, id);
    put16(buf, off + 2, version);
    put32(buf, off + 4, next);
}

#define FLAGS (VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS)

/* One IOVA cap with two ranges at 24, a DMA-avail cap at 72, a migration
 * cap at 88: 120 bytes. */
static void
bufGood(Buf *buf)
{
    bufInfo(buf, 120, FLAGS, 0x1000 | 0x200000, 24);
    bufCap(buf, 24, 1, 1, 72);
    put32(buf, 32, 2);
    put64(buf, 40, 0);
    put64(buf, 48, 0xfedfffffULL);
    put64(buf, 56, 0xfef00000ULL);
    put64(buf, 64, G_MAXUINT64);
    bufCap(buf, 72, 3, 1, 88);
    put32(buf, 80, 1234);
    bufCap(buf, 88, 2, 1, 0);
    put32(buf, 96, 1);
    put64(buf, 104, 0x1000);
    put64(buf, 112, 0x100000);
}

static void
testGood(void)
{
    Buf buf;
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoVfioIommuInfo) info = NULL;

    bufGood(&buf);
    info = cocoVfioIommuInfoParse(buf.b, buf.len, &err);
    g_assert_no_error(err);
    g_assert_nonnull(info);
    g_assert_cmpuint(info->page_size, ==, 0x1000);
    g_assert_cmpuint(info->nranges, ==, 2);
    g_assert_cmpuint(info->ranges[1].last, ==, G_MAXUINT64);
    g_assert_true(info->has_dma_avail);
    g_assert_cmpuint(info->dma_avail, ==, 1234);
    g_assert_true(info->has_migration);
    g_assert_cmpuint(info->migration_pgsizes, ==, 0x1000);
    g_assert_cmpuint(info->migration_max_dirty_bitmap_size, ==, 0x100000);
}

static void
testNoCaps(void)
{
    Buf buf;
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoVfioIommuInfo) info = NULL;

    /* A pre-5.4 kernel: 16 bytes, no caps: the whole space. */
    bufInfo(&buf, 16, VFIO_IOMMU_INFO_PGSIZES, 0x10000, 0);
    info = cocoVfioIommuInfoParse(buf.b, buf.len, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(info->page_size, ==, 0x10000);
    g_assert_cmpuint(info->nranges, ==, 1);
    g_assert_cmpuint(info->ranges[0].first, ==, 0);
    g_assert_cmpuint(info->ranges[0].last, ==, G_MAXUINT64);
}

static void
testUnknownSkipped(void)
{
    Buf buf;
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoVfioIommuInfo) info = NULL;

    bufGood(&buf);
    /* Unknown id and an unknown version of the IOVA cap are skipped. */
    bufCap(&buf, 24, 1, 2, 72);
    bufCap(&buf, 72, 77, 1, 88);
    info = cocoVfioIommuInfoParse(buf.b, buf.len, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(info->nranges, ==, 1);
    g_assert_false(info->has_dma_avail);
}

typedef void (*Mutator)(Buf *buf);

static void
mTooShort(Buf *b)
{
    b->len = 12;
}
static void
mArgszSmall(Buf *b)
{
    put32(b, 0, 8);
}
static void
mArgszBig(Buf *b)
{
    put32(b, 0, 400);
}
static void
mNoPgsizes(Buf *b)
{
    put32(b, 4, VFIO_IOMMU_INFO_CAPS);
}
static void
mZeroPgsizes(Buf *b)
{
    put64(b, 8, 0);
}
static void
mCapsNoRoom(Buf *b)
{
    b->len = 16;
    put32(b, 0, 16);
}
static void
mOffsetLow(Buf *b)
{
    put32(b, 16, 16);
}
static void
mOffsetPast(Buf *b)
{
    put32(b, 16, 116);
}
static void
mOffsetHuge(Buf *b)
{
    put32(b, 16, 0xfffffff0U);
}
static void
mOffsetOdd(Buf *b)
{
    put32(b, 16, 26);
}
static void
mLoopSelf(Buf *b)
{
    put32(b, 28, 24);
}
static void
mLoopBack(Buf *b)
{
    put32(b, 92, 72);
}
static void
mNextPast(Buf *b)
{
    put32(b, 92, 200);
}
static void
mIovaHuge(Buf *b)
{
    put32(b, 32, 0x10000001U);
}
static void
mIovaMore(Buf *b)
{
    put32(b, 32, 3);
}
static void
mIovaNone(Buf *b)
{
    put32(b, 32, 0);
}
static void
mIovaReversed(Buf *b)
{
    put64(b, 40, 0xfee00000ULL + 0x100000000ULL);
}
static void
mIovaOverlap(Buf *b)
{
    put64(b, 56, 0x1000);
}
static void
mIovaTrunc(Buf *b)
{
    put32(b, 28, 40);
}
static void
mDup(Buf *b)
{
    bufCap(b, 72, 1, 1, 88);
}
static void
mAvailTrunc(Buf *b)
{
    put32(b, 76, 80);
}
static void
mMigTrunc(Buf *b)
{
    b->len = 112;
    put32(b, 0, 112);
}

static void
testMalformed(void)
{
    static const struct {
        const char *name;
        Mutator mutate;
    } cases[] = {
        {"too-short", mTooShort},         {"argsz-small", mArgszSmall},
        {"argsz-big", mArgszBig},         {"no-pgsizes", mNoPgsizes},
        {"zero-pgsizes", mZeroPgsizes},   {"caps-no-room", mCapsNoRoom},
        {"offset-low", mOffsetLow},       {"offset-past", mOffsetPast},
        {"offset-huge", mOffsetHuge},     {"offset-odd", mOffsetOdd},
        {"loop-self", mLoopSelf},         {"loop-back", mLoopBack},
        {"next-past", mNextPast},         {"iova-huge", mIovaHuge},
        {"iova-more", mIovaMore},         {"iova-none", mIovaNone},
        {"iova-reversed", mIovaReversed}, {"iova-overlap", mIovaOverlap},
        {"iova-trunc", mIovaTrunc},       {"duplicate", mDup},
        {"avail-trunc", mAvailTrunc},     {"migration-trunc", mMigTrunc},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        Buf buf;
        g_autoptr(GError) err = NULL;
        g_autoptr(CocoVfioIommuInfo) info = NULL;

        bufGood(&buf);
        cases[i].mutate(&buf);
        info = cocoVfioIommuInfoParse(buf.b, buf.len, &err);
        if (info || !g_error_matches(err, COCO_ERROR, COCO_ERROR_VFIO_CAPS))
            g_error("case '%s' was not rejected", cases[i].name);
        g_assert_nonnull(err->message);
        g_assert_null(strchr(err->message, '\n'));
    }
}

static void
testLongChain(void)
{
    uint8_t buf[24 + 8 * 70] = {0};
    uint32_t v;
    size_t i;
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) err2 = NULL;
    g_autoptr(CocoVfioIommuInfo) info = NULL;

    v = sizeof(buf);
    memcpy(buf, &v, 4);
    v = FLAGS;
    memcpy(buf + 4, &v, 4);
    buf[9] = 0x10; /* pgsizes 0x1000 */
    v = 24;
    memcpy(buf + 16, &v, 4);
    for (i = 0; i < 70; i++) {
        uint16_t id = 100;
        uint32_t next = i + 1 < 70 ? 24 + 8 * (i + 1) : 0;

        memcpy(buf + 24 + 8 * i, &id, 2);
        memcpy(buf + 24 + 8 * i + 4, &next, 4);
    }
    g_assert_null(cocoVfioIommuInfoParse(buf, sizeof(buf), &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_VFIO_CAPS);
    /* 64 entries are fine. */
    v = 0;
    memcpy(buf + 24 + 8 * 63 + 4, &v, 4);
    info = cocoVfioIommuInfoParse(buf, sizeof(buf), &err2);
    g_assert_no_error(err2);
}

/* Every truncation of a valid answer is rejected or parsed, never read
 * past its end (the ASan build checks the latter). */
static void
testTruncations(void)
{
    Buf buf;
    size_t len;

    bufGood(&buf);
    for (len = 0; len <= buf.len; len++) {
        g_autofree uint8_t *copy = g_memdup2(buf.b, len ? len : 1);
        g_autoptr(GError) err = NULL;
        g_autoptr(CocoVfioIommuInfo) info =
            cocoVfioIommuInfoParse(copy, len, &err);

        if (len < buf.len) {
            g_assert_null(info);
            g_assert_error(err, COCO_ERROR, COCO_ERROR_VFIO_CAPS);
        } else {
            g_assert_nonnull(info);
        }
    }
}

/* The model's answer (what the container reads) parses back. */
static void
testFromModel(void)
{
    CocoVfioModelConfig cfg = {COCO_VFIO_MODEL_TYPE1, false, true, true, false};
    g_autoptr(CocoVfioModel) m = cocoVfioModelNew(&cfg);
    const CocoVfioOps *ops = cocoVfioModelOps(m);
    struct vfio_iommu_type1_info small = {.argsz = sizeof(small)};
    g_autofree uint8_t *buf = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoVfioIommuInfo) info = NULL;

    g_assert_cmpint(ops->ioctl(ops->opaque, cocoVfioModelFd(m),
                               VFIO_IOMMU_GET_INFO, &small),
                    ==, 0);
    g_assert_cmpuint(small.argsz, >, sizeof(small));
    g_assert_cmpuint(small.cap_offset, ==, 0);
    buf = g_malloc0(small.argsz);
    ((struct vfio_iommu_type1_info *)(void *)buf)->argsz = small.argsz;
    g_assert_cmpint(
        ops->ioctl(ops->opaque, cocoVfioModelFd(m), VFIO_IOMMU_GET_INFO, buf),
        ==, 0);
    info = cocoVfioIommuInfoParse(buf, small.argsz, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(info->nranges, ==, 2);
    g_assert_true(info->has_dma_avail);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vfio/caps/good", testGood);
    g_test_add_func("/vfio/caps/no-caps", testNoCaps);
    g_test_add_func("/vfio/caps/unknown-skipped", testUnknownSkipped);
    g_test_add_func("/vfio/caps/malformed", testMalformed);
    g_test_add_func("/vfio/caps/long-chain", testLongChain);
    g_test_add_func("/vfio/caps/truncations", testTruncations);
    g_test_add_func("/vfio/caps/from-model", testFromModel);
    return g_test_run();
}
