/*
 * cocovfiotest.c: range-safe VFIO unmap against the kernel model
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The 12-row matrix of docs/vfio.rst for every kernel variant where it
 * applies, then seeded random layouts and requests. Set COCO_VFIO_SEED to
 * replay a failing random run.
 */

#include "internal.h"
#include "cocovfiomodel.h"
#include "vfio/cocovfiocheck.h"
#include "vfio/cocovfiocontainer.h"
#include "vfio/cocovfioshadow.h"
#include "vfio/cocovfiouapi.h"
#include "util/cocoerror.h"

#include <errno.h>
#include <glib/gstdio.h>

#define PG 0x1000ULL
#define TOP (G_MAXUINT64 - PG + 1) /* the top page: [TOP, 2^64-1] */
#define LASTR_FIRST 0xfef00000ULL /* the model's last range */

typedef CocoVfioModelVariant Variant;

typedef struct {
    const Variant *v;
    CocoVfioModel *model;
    CocoVfioContainer *c;
} Env;

static bool
variantBuggy(const Variant *v)
{
    return v->cfg.kind == COCO_VFIO_MODEL_TYPE1 && !v->cfg.fixed;
}

static void
envInit(Env *env, const Variant *v)
{
    g_autoptr(GError) err = NULL;
    CocoVfioBackend backend;

    env->v = v;
    env->model = cocoVfioModelNew(&v->cfg);
    if (v->cfg.kind == COCO_VFIO_MODEL_IOMMUFD)
        backend = COCO_VFIO_BACKEND_IOMMUFD;
    else
        backend =
            v->cfg.v2 ? COCO_VFIO_BACKEND_TYPE1V2 : COCO_VFIO_BACKEND_TYPE1;
    env->c = cocoVfioContainerNewFromFd(
        cocoVfioModelOps(env->model), backend, cocoVfioModelFd(env->model),
        cocoVfioModelIoasId(env->model), NULL, 0, &err);
    g_assert_no_error(err);
    g_assert_nonnull(env->c);
    cocoVfioModelResetStats(env->model);
}

static void
envClear(Env *env)
{
    cocoVfioContainerFree(env->c);
    cocoVfioModelFree(env->model);
    memset(env, 0, sizeof(*env));
}

/* A mapping ending at 2^64-1: through the module where the kernel is
 * fixed, else made behind the module's back (by an earlier owner of the
 * container) and handed over with TrackMapping. */
static void
envMapTop(Env *env, uint64_t first)
{
    g_autoptr(GError) err = NULL;

    if (variantBuggy(env->v)) {
        g_assert_cmpint(
            cocoVfioModelMap(env->model, first, G_MAXUINT64 - first + 1), ==,
            0);
        g_assert_cmpint(cocoVfioContainerTrackMapping(env->c, NULL, first,
                                                      G_MAXUINT64, &err),
                        ==, 0);
    } else {
        g_assert_cmpint(cocoVfioContainerMap(env->c, NULL, first, G_MAXUINT64,
                                             COCO_VFIO_MAP_READ, &err),
                        ==, 0);
    }
    g_assert_no_error(err);
}

static void
envMap(Env *env, uint64_t first, uint64_t last)
{
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(
        cocoVfioContainerMap(env->c, NULL, first, last,
                             COCO_VFIO_MAP_READ | COCO_VFIO_MAP_WRITE, &err),
        ==, 0);
    g_assert_no_error(err);
}

static void
assertModelClean(Env *env)
{
    g_assert_cmpuint(cocoVfioModelLiveBytes(env->model), ==, 0);
    g_assert_cmpuint(cocoVfioModelPinnedBytes(env->model), ==, 0);
    g_assert_cmpuint(cocoVfioModelTrackedCount(env->model), ==, 0);
}

static bool
leaksMatchModel(Env *env)
{
    g_autoptr(GArray) left = cocoVfioModelLeftovers(env->model);
    g_autofree CocoVfioRange *leaks = NULL;
    size_t nleaks;
    size_t i;

    cocoVfioContainerGetLeaks(env->c, &leaks, &nleaks);
    if (nleaks != left->len)
        return false;
    for (i = 0; i < nleaks; i++) {
        CocoVfioRange *r = &g_array_index(left, CocoVfioRange, i);

        if (r->first != leaks[i].first || r->last != leaks[i].last)
            return false;
    }
    return true;
}

/* The invariant the module promises on an unfixed kernel. */
static void
assertNeverUnsafeRequests(Env *env)
{
    const CocoVfioModelStats *st = cocoVfioModelGetStats(env->model);

    if (variantBuggy(env->v)) {
        g_assert_cmpuint(st->unmap_end_2_64, ==, 0);
        g_assert_cmpuint(st->unmap_all, ==, 0);
    }
}

#define FOREACH_VARIANT(i) for (i = 0; i < cocoVfioModelNVariants; i++)

/* Row 1: empty, [0, 2^64-1]. */
static void
testRow1Empty(void)
{
    size_t i;

    FOREACH_VARIANT(i)
    {
        Env env;
        g_autoptr(GError) err = NULL;
        uint64_t out = 1;

        envInit(&env, &cocoVfioModelVariants[i]);
        g_assert_cmpint(
            cocoVfioContainerUnmap(env.c, 0, G_MAXUINT64, &out, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_cmpuint(out, ==, 0);
        if (cocoVfioModelVariants[i].cfg.kind == COCO_VFIO_MODEL_IOMMUFD)
            g_assert_cmpuint(cocoVfioModelGetStats(env.model)->unmap_all, ==,
                             1);
        assertNeverUnsafeRequests(&env);
        envClear(&env);
    }
}

/* Row 2: a low page, exact unmap. */
static void
testRow2Low(void)
{
    size_t i;

    FOREACH_VARIANT(i)
    {
        Env env;
        g_autoptr(GError) err = NULL;
        uint64_t out = 0;

        envInit(&env, &cocoVfioModelVariants[i]);
        envMap(&env, 0x1000, 0x1fff);
        g_assert_cmpuint(cocoVfioModelLiveBytes(env.model), ==, PG);
        g_assert_cmpint(
            cocoVfioContainerUnmap(env.c, 0x1000, 0x1fff, &out, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_cmpuint(out, ==, PG);
        assertModelClean(&env);
        g_assert_cmpuint(cocoVfioContainerGetMappingCount(env.c), ==, 0);
        envClear(&env);
    }
}

/* Rows 3 and 4: a page in the middle of, or just below the top of, the last
 * range; unmap the whole last range. */
static void
testRow3Row4(void)
{
    const uint64_t pages[] = {0x100000000ULL, G_MAXUINT64 - 2 * PG + 1};
    size_t i;
    size_t p;

    FOREACH_VARIANT(i)
    {
        for (p = 0; p < G_N_ELEMENTS(pages); p++) {
            Env env;
            g_autoptr(GError) err = NULL;
            uint64_t out = 0;
            uint64_t before;

            envInit(&env, &cocoVfioModelVariants[i]);
            envMap(&env, pages[p], pages[p] + PG - 1);
            before = cocoVfioContainerGetIoctlCount(env.c);
            g_assert_cmpint(cocoVfioContainerUnmap(env.c, LASTR_FIRST,
                                                   G_MAXUINT64, &out, &err),
                            ==, 0);
            g_assert_no_error(err);
            g_assert_cmpuint(out, ==, PG);
            /* One call: clamped on a buggy kernel, whole elsewhere. */
            g_assert_cmpuint(cocoVfioContainerGetIoctlCount(env.c) - before, ==,
                             1);
            assertModelClean(&env);
            assertNeverUnsafeRequests(&env);
            envClear(&env);
        }
    }
}

/* Row 5: the top page; exact, whole range and teardown. Row 6: a two-page
 * mapping ending at 2^64, with and without a mapping below it. */
static void
testRow5Row6Top(void)
{
    size_t i;
    int kind;

    FOREACH_VARIANT(i)
    {
        for (kind = 0; kind < 5; kind++) {
            Env env;
            g_autoptr(GError) err = NULL;
            uint64_t first = kind < 3 ? TOP : G_MAXUINT64 - 2 * PG + 1;
            uint64_t out = 0;
            int rc;

            envInit(&env, &cocoVfioModelVariants[i]);
            if (kind == 4)
                envMap(&env, 0x100000000ULL, 0x100000000ULL + PG - 1);
            envMapTop(&env, first);
            if (kind == 0)
                rc = cocoVfioContainerUnmap(env.c, first, G_MAXUINT64, &out,
                                            &err);
            else if (kind == 2)
                rc = cocoVfioContainerTeardown(env.c, &err);
            else
                rc = cocoVfioContainerUnmap(env.c, LASTR_FIRST, G_MAXUINT64,
                                            &out, &err);
            assertNeverUnsafeRequests(&env);
            if (variantBuggy(&cocoVfioModelVariants[i])) {
                g_assert_cmpint(rc, ==, -1);
                g_assert_error(err, COCO_ERROR, COCO_ERROR_VFIO_LEAK);
                g_assert_nonnull(strstr(err->message, "0xffffffffffffffff]"));
                g_assert_true(leaksMatchModel(&env));
                /* The record is still in the kernel, live and pinned. */
                g_assert_cmpuint(cocoVfioModelTrackedCount(env.model), ==, 1);
                g_assert_cmpuint(cocoVfioModelLiveBytes(env.model), ==,
                                 G_MAXUINT64 - first + 1);
                if (kind == 4)
                    g_assert_cmpuint(out, ==, PG);
                /* Closing leaks the pin, as on the real kernel. */
                cocoVfioContainerFree(g_steal_pointer(&env.c));
                g_assert_cmpuint(cocoVfioModelLiveBytes(env.model), ==, 0);
                g_assert_cmpuint(cocoVfioModelPinnedBytes(env.model), ==,
                                 G_MAXUINT64 - first + 1);
            } else {
                g_assert_no_error(err);
                g_assert_cmpint(rc, ==, 0);
                assertModelClean(&env);
            }
            envClear(&env);
        }
    }
}

/* Row 7: mapping the top page. */
static void
testRow7MapTop(void)
{
    size_t i;

    FOREACH_VARIANT(i)
    {
        Env env;
        g_autoptr(GError) err = NULL;
        int rc;

        envInit(&env, &cocoVfioModelVariants[i]);
        rc = cocoVfioContainerMap(env.c, NULL, TOP, G_MAXUINT64,
                                  COCO_VFIO_MAP_READ, &err);
        if (variantBuggy(&cocoVfioModelVariants[i])) {
            g_assert_cmpint(rc, ==, -1);
            g_assert_error(err, COCO_ERROR, COCO_ERROR_VFIO_UNSAFE);
            g_assert_cmpuint(cocoVfioModelGetStats(env.model)->ioctls, ==, 0);
        } else {
            g_assert_no_error(err);
            g_assert_cmpint(rc, ==, 0);
            g_assert_cmpuint(cocoVfioModelLiveBytes(env.model), ==, PG);
            g_assert_cmpint(cocoVfioContainerTeardown(env.c, &err), ==, 0);
            g_assert_no_error(err);
            assertModelClean(&env);
        }
        envClear(&env);
    }
}

/* Row 8: a wrapping [2^64-pg, +2pg). */
static void
testRow8Wrap(void)
{
    size_t i;

    FOREACH_VARIANT(i)
    {
        Env env;
        g_autoptr(GError) err = NULL;
        CocoVfioRange r = {0, 0};
        int expect;

        envInit(&env, &cocoVfioModelVariants[i]);
        g_assert_cmpint(cocoVfioRangeFromSize(TOP, 2 * PG, &r, &err), ==, -1);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_VFIO_RANGE);
        g_assert_cmpuint(cocoVfioModelGetStats(env.model)->ioctls, ==, 0);
        /* What the kernel itself answers. */
        expect = variantBuggy(&cocoVfioModelVariants[i]) ? -EINVAL : -EOVERFLOW;
        g_assert_cmpint(cocoVfioModelMap(env.model, TOP, 2 * PG), ==, expect);
        g_clear_error(&err);
        g_assert_cmpint(cocoVfioRangeFromSize(TOP, PG, &r, &err), ==, 0);
        g_assert_cmpuint(r.last, ==, G_MAXUINT64);
        envClear(&env);
    }
}

/* Row 9: malformed requests never reach the kernel. */
static void
testRow9Malformed(void)
{
    size_t i;

    FOREACH_VARIANT(i)
    {
        Env env;
        CocoVfioRange r;
        g_autoptr(GError) e1 = NULL;
        g_autoptr(GError) e2 = NULL;
        g_autoptr(GError) e3 = NULL;
        g_autoptr(GError) e4 = NULL;
        g_autoptr(GError) e5 = NULL;
        g_autoptr(GError) e6 = NULL;

        envInit(&env, &cocoVfioModelVariants[i]);
        g_assert_cmpint(cocoVfioRangeFromSize(0x1000, 0, &r, &e1), ==, -1);
        g_assert_error(e1, COCO_ERROR, COCO_ERROR_VFIO_RANGE);
        g_assert_cmpint(
            cocoVfioContainerMap(env.c, NULL, 0x1001, 0x1fff, 0, &e2), ==, -1);
        g_assert_error(e2, COCO_ERROR, COCO_ERROR_VFIO_RANGE);
        g_assert_cmpint(
            cocoVfioContainerUnmap(env.c, 0x1000, 0x17ff, NULL, &e3), ==, -1);
        g_assert_error(e3, COCO_ERROR, COCO_ERROR_VFIO_RANGE);
        g_assert_cmpint(
            cocoVfioContainerUnmap(env.c, 0x2000, 0x0fff, NULL, &e4), ==, -1);
        g_assert_error(e4, COCO_ERROR, COCO_ERROR_VFIO_RANGE);
        /* Outside the IOMMU's ranges (the MSI hole) and splitting. */
        g_assert_cmpint(cocoVfioContainerMap(env.c, NULL, 0xfee00000ULL,
                                             0xfee00fffULL, 0, &e5),
                        ==, -1);
        g_assert_error(e5, COCO_ERROR, COCO_ERROR_VFIO_RANGE);
        g_assert_cmpuint(cocoVfioModelGetStats(env.model)->ioctls, ==, 0);
        envMap(&env, 0x10000, 0x13fff);
        g_assert_cmpint(
            cocoVfioContainerUnmap(env.c, 0x11000, 0x1ffff, NULL, &e6), ==, -1);
        g_assert_error(e6, COCO_ERROR, COCO_ERROR_VFIO_RANGE);
        g_assert_cmpuint(cocoVfioModelGetStats(env.model)->unmaps, ==, 0);
        envClear(&env);
    }
}

/* Row 10: the kernel reports less than expected. */
static void
testRow10Shortfall(void)
{
    size_t i;

    FOREACH_VARIANT(i)
    {
        Env env;
        g_autoptr(GError) err = NULL;
        uint64_t out = 0;

        /* Silent multi-mapping requests: the per-mapping fallback works. */
        envInit(&env, &cocoVfioModelVariants[i]);
        envMap(&env, 0x10000, 0x10fff);
        envMap(&env, 0x20000, 0x21fff);
        envMap(&env, 0x30000, 0x30fff);
        cocoVfioModelSetFault(env.model, COCO_VFIO_MODEL_FAULT_SILENT_MULTI);
        g_assert_cmpint(
            cocoVfioContainerUnmap(env.c, 0x10000, 0x3ffff, &out, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_cmpuint(out, ==, 4 * PG);
        g_assert_cmpuint(cocoVfioModelGetStats(env.model)->unmaps, ==, 4);
        assertModelClean(&env);
        envClear(&env);

        /* Every request silent: each mapping is reported, then closed. */
        envInit(&env, &cocoVfioModelVariants[i]);
        envMap(&env, 0x10000, 0x10fff);
        envMap(&env, 0x20000, 0x21fff);
        envMap(&env, 0x100000000ULL, 0x100000fffULL);
        cocoVfioModelSetFault(env.model, COCO_VFIO_MODEL_FAULT_SILENT_ALL);
        g_assert_cmpint(cocoVfioContainerTeardown(env.c, &err), ==, -1);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_VFIO_LEAK);
        g_assert_true(leaksMatchModel(&env));
        g_assert_cmpuint(cocoVfioContainerGetMappingCount(env.c), ==, 3);
        cocoVfioContainerFree(g_steal_pointer(&env.c));
        g_assert_cmpuint(cocoVfioModelLiveBytes(env.model), ==, 0);
        g_assert_cmpuint(cocoVfioModelPinnedBytes(env.model), ==, 0);
        envClear(&env);
    }
}

/* Row 11: the fix probe. */
static void
testRow11Probe(void)
{
    size_t i;

    FOREACH_VARIANT(i)
    {
        Env env;
        CocoVfioFixStatus expect;

        envInit(&env, &cocoVfioModelVariants[i]);
        if (cocoVfioModelVariants[i].cfg.kind == COCO_VFIO_MODEL_IOMMUFD)
            expect = COCO_VFIO_FIX_NOT_NEEDED;
        else if (variantBuggy(&cocoVfioModelVariants[i]))
            expect = COCO_VFIO_FIX_ABSENT;
        else
            expect = COCO_VFIO_FIX_PRESENT;
        g_assert_cmpint(cocoVfioContainerGetFixStatus(env.c), ==, expect);
        if (cocoVfioModelVariants[i].cfg.kind != COCO_VFIO_MODEL_IOMMUFD) {
            g_assert_cmpint(cocoVfioProbeFix(cocoVfioModelOps(env.model),
                                             cocoVfioModelFd(env.model), PG),
                            ==, expect);
            g_assert_cmpint(cocoVfioContainerHasUnmapAll(env.c), ==,
                            cocoVfioModelVariants[i].cfg.kind ==
                                    COCO_VFIO_MODEL_COMPAT ||
                                cocoVfioModelVariants[i].cfg.unmap_all);
        }
        /* The probe has no side effect. */
        g_assert_cmpuint(cocoVfioModelTrackedCount(env.model), ==, 0);
        envClear(&env);
    }
}

/* Row 12: many mappings and a top one; teardown. */
static void
testRow12Many(void)
{
    size_t i;

    FOREACH_VARIANT(i)
    {
        Env env;
        g_autoptr(GError) err = NULL;
        uint64_t j;
        int rc;

        envInit(&env, &cocoVfioModelVariants[i]);
        for (j = 0; j < 500; j++) {
            envMap(&env, j * 2 * PG, j * 2 * PG + PG - 1);
            envMap(&env, 0x100000000ULL + j * 4 * PG,
                   0x100000000ULL + j * 4 * PG + 2 * PG - 1);
        }
        envMapTop(&env, TOP);
        rc = cocoVfioContainerTeardown(env.c, &err);
        assertNeverUnsafeRequests(&env);
        if (variantBuggy(&cocoVfioModelVariants[i])) {
            g_autofree CocoVfioRange *leaks = NULL;
            size_t nleaks;

            g_assert_cmpint(rc, ==, -1);
            g_assert_error(err, COCO_ERROR, COCO_ERROR_VFIO_LEAK);
            cocoVfioContainerGetLeaks(env.c, &leaks, &nleaks);
            g_assert_cmpuint(nleaks, ==, 1);
            g_assert_cmpuint(leaks[0].first, ==, TOP);
            g_assert_true(leaksMatchModel(&env));
            g_assert_cmpuint(cocoVfioModelTrackedCount(env.model), ==, 1);
        } else {
            g_assert_no_error(err);
            g_assert_cmpint(rc, ==, 0);
            assertModelClean(&env);
        }
        envClear(&env);
    }
}

/* The model itself reproduces the kernel behaviour of vfio.md §6. */
static void
testModelBuggyKernel(void)
{
    CocoVfioModelConfig cfg = {COCO_VFIO_MODEL_TYPE1, false, true, true, false};
    g_autoptr(CocoVfioModel) m = cocoVfioModelNew(&cfg);
    const CocoVfioOps *ops = cocoVfioModelOps(m);
    struct vfio_iommu_type1_dma_unmap u = {.argsz = sizeof(u)};

    /* A: map top; UNMAP(start, end-start+1): rc 0, size 0, still live;
     * duplicate map accepted. */
    g_assert_cmpint(cocoVfioModelMap(m, TOP, PG), ==, 0);
    u.iova = LASTR_FIRST;
    u.size = G_MAXUINT64 - LASTR_FIRST + 1;
    g_assert_cmpint(
        ops->ioctl(ops->opaque, cocoVfioModelFd(m), VFIO_IOMMU_UNMAP_DMA, &u),
        ==, 0);
    g_assert_cmpuint(u.size, ==, 0);
    g_assert_cmpuint(cocoVfioModelLiveBytes(m), ==, PG);
    g_assert_cmpint(cocoVfioModelMap(m, TOP, PG), ==, 0);
    /* B: a mid page is not removed by a request ending at 2^64. */
    g_assert_cmpint(cocoVfioModelMap(m, 0x100000000ULL, PG), ==, 0);
    u.iova = LASTR_FIRST;
    u.size = G_MAXUINT64 - LASTR_FIRST + 1;
    g_assert_cmpint(
        ops->ioctl(ops->opaque, cocoVfioModelFd(m), VFIO_IOMMU_UNMAP_DMA, &u),
        ==, 0);
    g_assert_cmpuint(u.size, ==, 0);
    g_assert_cmpint(cocoVfioModelMap(m, 0x100000000ULL, PG), ==, -EEXIST);
    /* E: ALL reports everything but the top pages stay live and pinned. */
    u.iova = u.size = 0;
    u.flags = VFIO_DMA_UNMAP_FLAG_ALL;
    g_assert_cmpint(
        ops->ioctl(ops->opaque, cocoVfioModelFd(m), VFIO_IOMMU_UNMAP_DMA, &u),
        ==, 0);
    g_assert_cmpuint(u.size, ==, 3 * PG);
    g_assert_cmpuint(cocoVfioModelTrackedCount(m), ==, 0);
    g_assert_cmpuint(cocoVfioModelLiveBytes(m), ==, 2 * PG);
    /* H: close clears translations, keeps the pins. */
    cocoVfioModelRelease(m);
    g_assert_cmpuint(cocoVfioModelLiveBytes(m), ==, 0);
    g_assert_cmpuint(cocoVfioModelPinnedBytes(m), ==, 2 * PG);
}

/* Random layouts and requests. */
static guint32
propertySeed(void)
{
    const char *env = g_getenv("COCO_VFIO_SEED");

    if (env)
        return (guint32)g_ascii_strtoull(env, NULL, 0);
    return 0xc0c0f10U;
}

#define PCHECK(cond, ...)                                                      \
 do {                                                                          \
  if (!(cond)) {                                                               \
   g_test_fail_printf("COCO_VFIO_SEED=%u variant %s iteration %u: " #cond      \
                      ": " __VA_ARGS__);                                       \
   return false;                                                               \
  }                                                                            \
 } while (0)

static uint64_t
randomAddress(GRand *rand, uint64_t npages)
{
    switch (g_rand_int_range(rand, 0, 4)) {
    case 0: /* low range */
        return (uint64_t)g_rand_int_range(rand, 0, 64) * PG;
    case 1: /* start of the last range */
        return LASTR_FIRST + (uint64_t)g_rand_int_range(rand, 0, 64) * PG;
    case 2: /* just below 4 GiB .. */
        return 0x100000000ULL + (uint64_t)g_rand_int_range(rand, 0, 64) * PG;
    default: /* the top of the space */
        return G_MAXUINT64 -
               ((uint64_t)g_rand_int_range(rand, 0, 48) + npages) * PG + 1;
    }
}

static bool
propertyRun(const Variant *v, guint32 seed, unsigned int iter)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed + iter);
    Env env;
    int nmaps = g_rand_int_range(rand, 0, 40);
    int nreq = g_rand_int_range(rand, 0, 8);
    g_autoptr(GError) err = NULL;
    bool ok = true;
    int k;

    envInit(&env, v);
    if (g_rand_boolean(rand))
        envMapTop(&env, G_MAXUINT64 -
                            (uint64_t)g_rand_int_range(rand, 1, 4) * PG + 1);
    for (k = 0; k < nmaps; k++) {
        uint64_t npages = (uint64_t)g_rand_int_range(rand, 1, 4);
        uint64_t first = randomAddress(rand, npages);
        g_autoptr(GError) merr = NULL;

        if (cocoVfioContainerMap(env.c, NULL, first, first + npages * PG - 1,
                                 COCO_VFIO_MAP_READ, &merr) < 0) {
            if (!(g_error_matches(merr, COCO_ERROR, COCO_ERROR_VFIO_RANGE) ||
                  g_error_matches(merr, COCO_ERROR, COCO_ERROR_VFIO_UNSAFE))) {
                g_test_fail_printf(
                    "COCO_VFIO_SEED=%u variant %s iteration %u: map: %s", seed,
                    v->name, iter, merr->message);
                ok = false;
                goto cleanup;
            }
        }
    }
    for (k = 0; k < nreq && ok; k++) {
        uint64_t first;
        uint64_t last;
        g_autoptr(GError) uerr = NULL;
        uint64_t out = 0;
        int rc;

        switch (g_rand_int_range(rand, 0, 3)) {
        case 0:
            first = 0;
            last = G_MAXUINT64;
            break;
        case 1:
            first = randomAddress(rand, 1);
            last = G_MAXUINT64;
            break;
        default:
            first = randomAddress(rand, 1);
            last = first + (uint64_t)g_rand_int_range(rand, 1, 80) * PG - 1;
            if (last < first)
                last = G_MAXUINT64;
            break;
        }
        rc = cocoVfioContainerUnmap(env.c, first, last, &out, &uerr);
        if (rc < 0 && g_error_matches(uerr, COCO_ERROR, COCO_ERROR_VFIO_RANGE))
            continue; /* would split a mapping: refused before any ioctl */
        if (rc == 0) {
            /* Nothing live is left inside the range. */
            g_autoptr(GArray) left = cocoVfioModelLeftovers(env.model);
            guint j;

            for (j = 0; j < left->len; j++) {
                CocoVfioRange *r = &g_array_index(left, CocoVfioRange, j);

                PCHECK(r->last < first || r->first > last,
                       "[%" G_GINT64_MODIFIER "x, %" G_GINT64_MODIFIER
                       "x] still live after unmap",
                       seed, v->name, iter, r->first, r->last);
            }
        } else {
            PCHECK(g_error_matches(uerr, COCO_ERROR, COCO_ERROR_VFIO_LEAK),
                   "%s", seed, v->name, iter, uerr->message);
            PCHECK(variantBuggy(v), "leak on a fixed kernel", seed, v->name,
                   iter);
        }
    }

    if (cocoVfioContainerTeardown(env.c, &err) == 0) {
        PCHECK(cocoVfioModelLiveBytes(env.model) == 0, "live after teardown",
               seed, v->name, iter);
        PCHECK(cocoVfioModelPinnedBytes(env.model) == 0,
               "pinned after teardown", seed, v->name, iter);
    } else {
        PCHECK(g_error_matches(err, COCO_ERROR, COCO_ERROR_VFIO_LEAK), "%s",
               seed, v->name, iter, err->message);
        PCHECK(leaksMatchModel(&env), "reported leaks differ from the model",
               seed, v->name, iter);
        PCHECK(variantBuggy(v), "leak on a fixed kernel", seed, v->name, iter);
    }
    {
        const CocoVfioModelStats *st = cocoVfioModelGetStats(env.model);

        if (variantBuggy(v)) {
            PCHECK(st->unmap_end_2_64 == 0, "request ending at 2^64", seed,
                   v->name, iter);
            PCHECK(st->unmap_all == 0, "UNMAP_FLAG_ALL on a buggy kernel", seed,
                   v->name, iter);
        }
    }

cleanup:
    envClear(&env);
    return ok;
}

static void
testProperty(void)
{
    guint32 seed = propertySeed();
    unsigned int iters = g_test_slow() ? 5000 : 300;
    size_t i;
    unsigned int it;

    g_test_message("property seed %u (COCO_VFIO_SEED=%u replays it)", seed,
                   seed);
    FOREACH_VARIANT(i)
    {
        for (it = 0; it < iters; it++) {
            if (!propertyRun(&cocoVfioModelVariants[i], seed, it))
                return;
        }
    }
}

/* The shadow map on its own. */
static void
testShadow(void)
{
    g_autoptr(CocoVfioShadow) s = cocoVfioShadowNew();
    g_autoptr(GArray) list = NULL;
    uint64_t bytes = 0;
    uint64_t i;

    g_assert_true(cocoVfioShadowInsert(s, 0x1000, 0x1fff, 0));
    g_assert_false(cocoVfioShadowInsert(s, 0x1800, 0x27ff, 0));
    g_assert_false(cocoVfioShadowInsert(s, 0x0, 0x1000, 0));
    g_assert_true(cocoVfioShadowInsert(s, 0x2000, 0x3fff, 0));
    g_assert_true(cocoVfioShadowInsert(s, TOP, G_MAXUINT64, 0));
    g_assert_false(cocoVfioShadowInsert(s, 5, 4, 0));
    g_assert_nonnull(cocoVfioShadowLookup(s, G_MAXUINT64));
    g_assert_null(cocoVfioShadowLookup(s, 0x4000));
    g_assert_true(cocoVfioShadowBytesIn(s, 0, G_MAXUINT64, &bytes));
    g_assert_cmpuint(bytes, ==, 4 * PG);
    g_assert_true(cocoVfioShadowBytesIn(s, 0x1000, 0x2fff, &bytes));
    g_assert_cmpuint(bytes, ==, PG);
    g_assert_true(cocoVfioShadowBytesIn(s, 0, G_MAXUINT64 - PG, &bytes));
    g_assert_cmpuint(bytes, ==, 3 * PG);
    g_assert_true(cocoVfioShadowBytesIn(s, 0x2000, G_MAXUINT64 - PG, &bytes));
    g_assert_cmpuint(bytes, ==, 2 * PG);
    g_assert_nonnull(cocoVfioShadowFindSplit(s, 0x1000, 0x2fff));
    g_assert_null(cocoVfioShadowFindSplit(s, 0x1000, 0x3fff));
    list = cocoVfioShadowListIn(s, 0, G_MAXUINT64);
    g_assert_cmpuint(list->len, ==, 3);
    g_assert_cmpuint(cocoVfioShadowRemoveIn(s, 0x0, G_MAXUINT64 - PG), ==, 2);
    g_assert_cmpuint(cocoVfioShadowCount(s), ==, 1);
    g_assert_nonnull(cocoVfioShadowLookup(s, G_MAXUINT64));
    g_assert_true(cocoVfioShadowBytesIn(s, 0, G_MAXUINT64, &bytes));
    g_assert_cmpuint(bytes, ==, PG);
    g_assert_cmpuint(cocoVfioShadowRemoveIn(s, 0, G_MAXUINT64), ==, 1);

    /* The whole space mapped: the byte count does not fit in 64 bits. */
    g_assert_true(cocoVfioShadowInsert(s, 0, G_MAXUINT64 / 2, 0));
    g_assert_true(cocoVfioShadowInsert(s, G_MAXUINT64 / 2 + 1, G_MAXUINT64, 0));
    g_assert_false(cocoVfioShadowBytesIn(s, 0, G_MAXUINT64, &bytes));
    cocoVfioShadowRemoveIn(s, 0, G_MAXUINT64);

    for (i = 0; i < 100000; i++)
        g_assert_true(
            cocoVfioShadowInsert(s, i * 2 * PG, i * 2 * PG + PG - 1, 0));
    g_assert_cmpuint(cocoVfioShadowCount(s), ==, 100000);
    g_assert_nonnull(cocoVfioShadowLookup(s, 99999 * 2 * PG + 5));
    g_assert_null(cocoVfioShadowLookup(s, 99999 * 2 * PG + PG));
}

/* Usable ranges and the host report. */
static void
testUsableAndReport(void)
{
    size_t i;

    FOREACH_VARIANT(i)
    {
        Env env;
        g_autofree CocoVfioRange *r = NULL;
        g_autoptr(CocoVfioHostReport) rep = g_new0(CocoVfioHostReport, 1);
        size_t n;

        envInit(&env, &cocoVfioModelVariants[i]);
        cocoVfioContainerGetUsableRanges(env.c, &r, &n);
        g_assert_cmpuint(n, ==, 2);
        g_assert_cmpuint(r[1].last, ==,
                         variantBuggy(&cocoVfioModelVariants[i])
                             ? G_MAXUINT64 - PG
                             : G_MAXUINT64);
        cocoVfioHostReportFromContainer(rep, env.c, "model");
        g_assert_cmpint(rep->risk, ==,
                        variantBuggy(&cocoVfioModelVariants[i])
                            ? COCO_VFIO_RISK_HIGH
                            : COCO_VFIO_RISK_NONE);
        g_assert_cmpuint(rep->info->nranges, ==, 2);
        g_assert_true(rep->info->has_dma_avail ||
                      cocoVfioModelVariants[i].cfg.kind ==
                          COCO_VFIO_MODEL_IOMMUFD);
        envClear(&env);
    }
}

static void
testRiskAndHost(void)
{
    CocoVfioRange narrow[] = {{0, 0xffffffffffffULL}};
    CocoVfioRange wide[] = {{0, G_MAXUINT64}};
    CocoVfioIommuInfo info = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoVfioHostReport) rep = NULL;
    g_autofree char *dir = g_dir_make_tmp("cocovfioXXXXXX", NULL);

    info.ranges = narrow;
    info.nranges = 1;
    g_assert_cmpint(cocoVfioRiskFromInfo(COCO_VFIO_FIX_ABSENT, &info), ==,
                    COCO_VFIO_RISK_LOW);
    info.ranges = wide;
    g_assert_cmpint(cocoVfioRiskFromInfo(COCO_VFIO_FIX_UNKNOWN, &info), ==,
                    COCO_VFIO_RISK_HIGH);
    g_assert_cmpint(cocoVfioRiskFromInfo(COCO_VFIO_FIX_PRESENT, &info), ==,
                    COCO_VFIO_RISK_NONE);
    g_assert_cmpint(cocoVfioRiskFromInfo(COCO_VFIO_FIX_ABSENT, NULL), ==,
                    COCO_VFIO_RISK_UNKNOWN);

    /* A host without /dev/vfio. */
    g_assert_nonnull(dir);
    rep = cocoVfioCheckHost(dir, -1, NULL, &err);
    g_assert_no_error(err);
    g_assert_nonnull(rep);
    g_assert_false(rep->vfio_present);
    g_assert_false(rep->probed);
    g_assert_cmpint(rep->risk, ==, COCO_VFIO_RISK_UNKNOWN);
    g_assert_nonnull(strstr(rep->verdict, "no VFIO devices"));
    g_assert_nonnull(rep->kernel_release);
    g_rmdir(dir);

    g_clear_error(&err);
    g_assert_null(cocoVfioContainerOpenDevice("0000:3:00.0", 0, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_null(cocoVfioContainerOpenDevice("ffff:ff:1f.7", 0, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_NOT_SUPPORTED);

    g_assert_cmpstr(cocoVfioFixStatusTypeToString(COCO_VFIO_FIX_NOT_NEEDED), ==,
                    "not-needed");
    g_assert_cmpint(cocoVfioBackendTypeFromString("type1v2"), ==,
                    COCO_VFIO_BACKEND_TYPE1V2);
    g_assert_cmpstr(cocoVfioRiskTypeToString(COCO_VFIO_RISK_HIGH), ==, "high");
}

/* The automatic probe's groups: a list of the ones that are busy, and a
 * model behind the others; the probe request can be answered oddly. */
typedef struct {
    const char *busy; /* ",7,12," */
    CocoVfioModel *model;
    CocoVfioOps ops;
    int probeAnswer; /* 0: the model's own */
    GPtrArray *tried;
} ProbeHost;

static int
probeHostIoctl(void *opaque, int fd, unsigned long request, void *arg)
{
    ProbeHost *h = opaque;
    const CocoVfioOps *mops = cocoVfioModelOps(h->model);

    if (h->probeAnswer && request == VFIO_IOMMU_UNMAP_DMA &&
        ((struct vfio_iommu_type1_dma_unmap *)arg)->iova == TOP)
        return h->probeAnswer;
    return mops->ioctl(mops->opaque, fd, request, arg);
}

static void
probeHostClose(void *opaque, int fd)
{
    ProbeHost *h = opaque;
    const CocoVfioOps *mops = cocoVfioModelOps(h->model);

    mops->close(mops->opaque, fd);
}

static CocoVfioContainer *
probeHostOpen(unsigned int group, void *opaque, GError **error)
{
    ProbeHost *h = opaque;
    g_autofree char *key = g_strdup_printf(",%u,", group);

    g_ptr_array_add(h->tried, g_strdup_printf("%u", group));
    if (strstr(h->busy, key)) {
        cocoErrorSetSystem(error, EBUSY, _("cannot open '%1$s'"), key);
        return NULL;
    }
    h->ops = *cocoVfioModelOps(h->model);
    h->ops.ioctl = probeHostIoctl;
    h->ops.close = probeHostClose;
    h->ops.opaque = h;
    return cocoVfioContainerNewFromFd(&h->ops, COCO_VFIO_BACKEND_TYPE1V2,
                                      cocoVfioModelFd(h->model), 0, NULL, 0,
                                      error);
}

static CocoVfioHostReport *
probeHostRun(ProbeHost *h, const char *dir)
{
    g_autoptr(GError) err = NULL;
    CocoVfioHostReport *rep;

    g_ptr_array_set_size(h->tried, 0);
    rep = cocoVfioCheckHostWith(dir, -1, NULL, probeHostOpen, h, &err);
    g_assert_no_error(err);
    g_assert_nonnull(rep);
    return rep;
}

/* The hook's probe tries every group until one opens, and tells "not
 * fixed" from "unknown because the probe failed". */
static void
testProbeEveryGroup(void)
{
    g_autofree char *dir = g_dir_make_tmp("cocovfioXXXXXX", NULL);
    g_autofree char *vfio = g_build_filename(dir, "vfio", NULL);
    const char *const files[] = {"vfio", "7", "12", "13", "devices"};
    ProbeHost h = {0};
    size_t i;

    g_assert_cmpint(g_mkdir(vfio, 0700), ==, 0);
    for (i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *f = g_build_filename(vfio, files[i], NULL);

        g_assert_true(g_file_set_contents(f, "", 0, NULL));
    }
    h.model = cocoVfioModelNew(&cocoVfioModelVariantGet("type1-buggy-v2")->cfg);
    h.tried = g_ptr_array_new_with_free_func(g_free);

    /* 7 and 12 busy (QEMU holds them): 13 is probed, "not fixed". */
    h.busy = ",7,12,";
    {
        g_autoptr(CocoVfioHostReport) rep = probeHostRun(&h, dir);

        g_assert_cmpuint(h.tried->len, ==, 3);
        g_assert_cmpstr(rep->target, ==, "group 13");
        g_assert_cmpint(rep->fix, ==, COCO_VFIO_FIX_ABSENT);
        g_assert_null(rep->probe_error);
        g_assert_cmpint(rep->risk, ==, COCO_VFIO_RISK_HIGH);
        g_assert_nonnull(
            strstr(rep->verdict, "lacks the range-safe unmap fix"));
    }
    /* All busy: unknown, and why. */
    h.busy = ",7,12,13,";
    {
        g_autoptr(CocoVfioHostReport) rep = probeHostRun(&h, dir);

        g_assert_false(rep->probed);
        g_assert_cmpint(rep->fix, ==, COCO_VFIO_FIX_UNKNOWN);
        g_assert_cmpint(rep->risk, ==, COCO_VFIO_RISK_UNKNOWN);
        g_assert_nonnull(
            strstr(rep->probe_error, "no VFIO group could be opened"));
        g_assert_nonnull(strstr(rep->probe_error, "group 7: "));
        g_assert_nonnull(strstr(rep->probe_error, "group 13: "));
        g_assert_nonnull(strstr(rep->verdict, "could not be probed because"));
        g_assert_null(strstr(rep->verdict, "lacks"));
    }
    /* Opened, but the probe answered neither EOVERFLOW nor EINVAL. */
    h.busy = ",";
    h.probeAnswer = -EPERM;
    {
        g_autoptr(CocoVfioHostReport) rep = probeHostRun(&h, dir);

        g_assert_true(rep->probed);
        g_assert_cmpstr(rep->target, ==, "group 7");
        g_assert_cmpint(rep->fix, ==, COCO_VFIO_FIX_UNKNOWN);
        g_assert_nonnull(strstr(rep->probe_error, g_strerror(EPERM)));
        g_assert_nonnull(
            strstr(rep->verdict, "unsafe: whether the kernel has"));
        g_assert_null(strstr(rep->verdict, "lacks"));
    }
    /* A fixed kernel. */
    cocoVfioModelFree(h.model);
    h.model = cocoVfioModelNew(&cocoVfioModelVariantGet("type1-fixed-v2")->cfg);
    h.probeAnswer = 0;
    {
        g_autoptr(CocoVfioHostReport) rep = probeHostRun(&h, dir);

        g_assert_cmpint(rep->fix, ==, COCO_VFIO_FIX_PRESENT);
        g_assert_cmpint(rep->risk, ==, COCO_VFIO_RISK_NONE);
    }
    cocoVfioModelFree(h.model);
    g_ptr_array_unref(h.tried);
    for (i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *f = g_build_filename(vfio, files[i], NULL);

        g_unlink(f);
    }
    g_rmdir(vfio);
    g_rmdir(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vfio/model/buggy-kernel", testModelBuggyKernel);
    g_test_add_func("/vfio/shadow", testShadow);
    g_test_add_func("/vfio/matrix/1-empty", testRow1Empty);
    g_test_add_func("/vfio/matrix/2-low", testRow2Low);
    g_test_add_func("/vfio/matrix/3-4-last-range", testRow3Row4);
    g_test_add_func("/vfio/matrix/5-6-top", testRow5Row6Top);
    g_test_add_func("/vfio/matrix/7-map-top", testRow7MapTop);
    g_test_add_func("/vfio/matrix/8-wrap", testRow8Wrap);
    g_test_add_func("/vfio/matrix/9-malformed", testRow9Malformed);
    g_test_add_func("/vfio/matrix/10-shortfall", testRow10Shortfall);
    g_test_add_func("/vfio/matrix/11-probe", testRow11Probe);
    g_test_add_func("/vfio/matrix/12-many", testRow12Many);
    g_test_add_func("/vfio/usable-and-report", testUsableAndReport);
    g_test_add_func("/vfio/risk-and-host", testRiskAndHost);
    g_test_add_func("/vfio/probe-every-group", testProbeEveryGroup);
    g_test_add_func("/vfio/property", testProperty);
    return g_test_run();
}
