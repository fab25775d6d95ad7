/*
 * cocotransferdirtytest.c: the dirty-page sources and the page hash
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "transfer/cocodirtybitmap.h"
#include "transfer/cocodirtyhash.h"

#define PAGE 4096

static uint64_t
popcount(const uint64_t *words, size_t n)
{
    uint64_t c = 0;
    size_t i;

    for (i = 0; i < n; i++)
        c += (uint64_t)__builtin_popcountll(words[i]);
    return c;
}

static bool
bit(const uint64_t *words, uint64_t gfn)
{
    return (words[gfn / 64] >> (gfn % 64)) & 1;
}

static void
testBitmap(void)
{
    g_autoptr(CocoDirtySource) src = cocoDirtyBitmapNew(130);
    uint64_t out[3] = {0};
    uint64_t log[3] = {~0ULL, 0, ~0ULL};

    g_assert_cmpuint(cocoDirtySourceGetPages(src), ==, 130);
    cocoDirtyBitmapSet(src, 0);
    cocoDirtyBitmapSet(src, 64);
    cocoDirtyBitmapSet(src, 129);
    cocoDirtyBitmapSet(src, 129);
    g_assert_true(cocoDirtyBitmapTest(src, 64));
    g_assert_false(cocoDirtyBitmapTest(src, 65));

    /* Collect by ranges; what is collected is cleared. */
    g_assert_cmpuint(cocoDirtySourceCollect(src, out, 1, 1), ==, 1);
    g_assert_true(bit(out, 64));
    g_assert_false(cocoDirtyBitmapTest(src, 64));
    g_assert_true(cocoDirtyBitmapTest(src, 0));
    g_assert_cmpuint(cocoDirtySourceCollect(src, out, 0, 100), ==, 2);
    g_assert_cmpuint(popcount(out, 3), ==, 3);
    g_assert_cmpuint(cocoDirtySourceCollect(src, out, 0, 3), ==, 0);
    g_assert_cmpuint(cocoDirtySourceCollect(src, out, 3, 1), ==, 0);

    /* A dirty log merges in; bits past the last page are not pages. */
    memset(out, 0, sizeof(out));
    cocoDirtyBitmapMerge(src, log, 0, 3);
    g_assert_cmpuint(cocoDirtySourceCollect(src, out, 0, 3), ==, 64 + 2);
    g_assert_cmpuint(out[2], ==, 3);

    /* start() forgets earlier marks: epoch 0 sends everything anyway. */
    cocoDirtyBitmapSet(src, 7);
    cocoDirtySourceStart(src);
    g_assert_false(cocoDirtyBitmapTest(src, 7));
}

typedef struct {
    CocoDirtySource *src;
    uint64_t npages;
    int stop;
    uint64_t marked;
} Marker;

static gpointer
markerThread(gpointer opaque)
{
    Marker *m = opaque;
    uint64_t i;

    for (i = 0; i < 200000; i++) {
        cocoDirtyBitmapSet(m->src, (i * 7919) % m->npages);
        m->marked++;
    }
    return NULL;
}

/* Marks made while another thread collects are never lost. */
static void
testBitmapConcurrent(void)
{
    Marker m = {cocoDirtyBitmapNew(4096), 4096, 0, 0};
    g_autofree uint64_t *seen = g_new0(uint64_t, 64);
    g_autofree uint64_t *out = g_new0(uint64_t, 64);
    GThread *t = g_thread_new("marker", markerThread, &m);
    uint64_t i;

    for (i = 0; i < 2000; i++) {
        size_t w;

        memset(out, 0, 64 * sizeof(uint64_t));
        cocoDirtySourceCollect(m.src, out, 0, 64);
        for (w = 0; w < 64; w++)
            seen[w] |= out[w];
    }
    g_thread_join(t);
    memset(out, 0, 64 * sizeof(uint64_t));
    cocoDirtySourceCollect(m.src, out, 0, 64);
    for (i = 0; i < 64; i++)
        seen[i] |= out[i];
    /* 7919 is prime to 4096: every page was marked at least once. */
    g_assert_cmpuint(popcount(seen, 64), ==, 4096);
    cocoDirtySourceFree(m.src);
}

static void
testPageHash(void)
{
    g_autofree uint8_t *page = g_malloc(PAGE);
    g_autofree uint8_t *moved = g_malloc(PAGE);
    g_autoptr(GHashTable) seen =
        g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    g_autoptr(GRand) rand = g_rand_new_with_seed(7);
    uint64_t h0;
    size_t i;

    for (i = 0; i < PAGE; i++)
        page[i] = (uint8_t)g_rand_int(rand);
    h0 = cocoPageHash(page, 1);
    g_assert_cmpuint(h0, !=, 0);
    g_assert_cmpuint(h0, ==, cocoPageHash(page, 1));
    g_assert_cmpuint(h0, !=, cocoPageHash(page, 2));

    /* The vector code computes the portable code's value. */
    for (i = 0; i < 64; i++) {
        uint64_t seed = g_rand_int(rand);

        page[g_rand_int_range(rand, 0, PAGE)] ^= (uint8_t)(i + 1);
        g_assert_cmpuint(cocoPageHash(page, seed), ==,
                         cocoPageHashGeneric(page, seed));
    }
    memset(moved, 0, PAGE);
    g_assert_cmpuint(cocoPageHash(moved, 9), ==, cocoPageHashGeneric(moved, 9));
    {
        /* The copying form: same hash, same bytes. */
        g_autofree uint8_t *copy = g_malloc0(COCO_PAGE_HASH_SIZE);

        g_assert_cmpuint(cocoPageHashCopy(copy, page, 9), ==,
                         cocoPageHashGeneric(page, 9));
        g_assert_cmpmem(copy, COCO_PAGE_HASH_SIZE, page, COCO_PAGE_HASH_SIZE);
    }

    /* Every single-bit flip changes the hash (and no two collide). */
    for (i = 0; i < PAGE * 8; i += 7) {
        uint64_t *h = g_new(uint64_t, 1);

        page[i / 8] ^= (uint8_t)(1U << (i % 8));
        *h = cocoPageHash(page, 3);
        page[i / 8] ^= (uint8_t)(1U << (i % 8));
        g_assert_false(g_hash_table_contains(seen, h));
        g_hash_table_add(seen, h);
    }

    /* Moving data inside the page changes it: 64-byte stripes swapped, a
     * word moved one stripe on. */
    memcpy(moved, page, PAGE);
    memcpy(moved, page + 64, 64);
    memcpy(moved + 64, page, 64);
    g_assert_cmpuint(cocoPageHash(moved, 3), !=, cocoPageHash(page, 3));
    memcpy(moved, page, PAGE);
    memcpy(moved + 1024, page, 1024);
    memcpy(moved, page + 1024, 1024);
    g_assert_cmpuint(cocoPageHash(moved, 3), !=, cocoPageHash(page, 3));
}

static void
testHashSource(void)
{
    uint64_t npages = 100;
    g_autofree uint8_t *mem = g_malloc0(npages * PAGE);
    g_autoptr(CocoDirtySource) src = cocoDirtyHashNew(mem, npages, 99);
    uint64_t out[2] = {0};
    uint64_t gfns[3] = {3, 50, 99};
    uint64_t scratch[3];
    uint8_t status[3] = {0, 0, 0};
    uint64_t i;

    cocoDirtySourceStart(src);
    /* Nothing exported yet: every page is dirty. */
    g_assert_cmpuint(cocoDirtySourceCollect(src, out, 0, 2), ==, npages);

    /* Export everything (as epoch 0 does); then nothing is dirty. */
    for (i = 0; i < npages; i++) {
        cocoDirtySourceExportBegin(src, &i, 1, scratch);
        cocoDirtySourceExportEnd(src, &i, 1, status, scratch);
    }
    memset(out, 0, sizeof(out));
    g_assert_cmpuint(cocoDirtySourceCollect(src, out, 0, 2), ==, 0);

    mem[5 * PAGE + 17] = 1;
    mem[64 * PAGE + 4095] = 1;
    g_assert_cmpuint(cocoDirtySourceCollect(src, out, 0, 2), ==, 2);
    g_assert_true(bit(out, 5));
    g_assert_true(bit(out, 64));
    /* Until the changed pages are exported again they stay dirty. */
    memset(out, 0, sizeof(out));
    g_assert_cmpuint(cocoDirtySourceCollect(src, out, 1, 1), ==, 1);
    g_assert_true(bit(out, 64));

    /* A page that changes while the firmware reads it is exported again;
     * a page the firmware refused is too. */
    cocoDirtySourceExportBegin(src, gfns, 3, scratch);
    mem[50 * PAGE] = 9;
    status[2] = 4;
    cocoDirtySourceExportEnd(src, gfns, 3, status, scratch);
    memset(out, 0, sizeof(out));
    g_assert_cmpuint(cocoDirtySourceCollect(src, out, 0, 2), ==, 4);
    g_assert_true(bit(out, 50));
    g_assert_true(bit(out, 99));
    g_assert_false(bit(out, 3));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/transfer/dirty/bitmap", testBitmap);
    g_test_add_func("/transfer/dirty/bitmap-concurrent", testBitmapConcurrent);
    g_test_add_func("/transfer/dirty/page-hash", testPageHash);
    g_test_add_func("/transfer/dirty/hash", testHashSource);
    return g_test_run();
}
