/*
 * cocovfiobench.c: teardown of many DMA mappings against the kernel model
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * For each kernel variant and mapping count, measures the module's
 * teardown (cocoVfioContainerTeardown) and, on the same layout in the same
 * run, a naive teardown that unmaps the mappings one by one. Prints time,
 * ioctls and the ratio. Times include the model's own work.
 * Usage: cocovfiobench [N...]   (default 10000 100000)
 */

#include "internal.h"
#include "cocovfiomodel.h"
#include "vfio/cocovfiocontainer.h"
#include "util/cocoerror.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PG 0x1000ULL

typedef struct {
    const char *name;
    CocoVfioModelConfig cfg;
    CocoVfioBackend backend;
} BenchVariant;

static const BenchVariant variants[] = {
    {"type1v2, unfixed kernel",
     {COCO_VFIO_MODEL_TYPE1, false, true, true, false},
     COCO_VFIO_BACKEND_TYPE1V2},
    {"type1v2, fixed kernel",
     {COCO_VFIO_MODEL_TYPE1, true, true, true, false},
     COCO_VFIO_BACKEND_TYPE1V2},
    {"iommufd",
     {COCO_VFIO_MODEL_IOMMUFD, false, true, true, false},
     COCO_VFIO_BACKEND_IOMMUFD},
};

/* CPU time of this process in ms: the machine is shared, wall time is
 * not a fair measure. */
static double
benchCpuMs(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* The model's ops, wrapped to take the time spent inside the "kernel". */
typedef struct {
    const CocoVfioOps *inner;
    CocoVfioOps ops;
    double ms_kernel;
} BenchOps;

static int
benchIoctl(void *opaque, int fd, unsigned long request, void *arg)
{
    BenchOps *b = opaque;
    double t0 = benchCpuMs();
    int rc = b->inner->ioctl(b->inner->opaque, fd, request, arg);

    b->ms_kernel += benchCpuMs() - t0;
    return rc;
}

static int
benchOpen(void *opaque, const char *path)
{
    BenchOps *b = opaque;

    return b->inner->open(b->inner->opaque, path);
}

static void
benchClose(void *opaque, int fd)
{
    BenchOps *b = opaque;

    b->inner->close(b->inner->opaque, fd);
}

typedef struct {
    double ms_map;
    double ms_teardown;
    double ms_module; /* teardown minus the time inside the model */
    uint64_t ioctls;
} BenchResult;

static CocoVfioContainer *
benchSetup(const BenchVariant *v, CocoVfioModel **model, BenchOps *bops,
           size_t n, double *ms_map)
{
    g_autoptr(GError) err = NULL;
    CocoVfioContainer *c;
    double t0;
    size_t i;

    *model = cocoVfioModelNew(&v->cfg);
    bops->inner = cocoVfioModelOps(*model);
    bops->ops.ioctl = benchIoctl;
    bops->ops.open = benchOpen;
    bops->ops.close = benchClose;
    bops->ops.opaque = bops;
    c = cocoVfioContainerNewFromFd(&bops->ops, v->backend,
                                   cocoVfioModelFd(*model),
                                   cocoVfioModelIoasId(*model), NULL, 0, &err);
    if (!c)
        g_error("%s", err->message);
    t0 = benchCpuMs();
    /* Half below 4 GiB, half in the last range (so the unfixed kernel's
     * clamped request still covers them). */
    for (i = 0; i < n; i++) {
        uint64_t first =
            (i % 2 ? 0x100000000ULL : 0x10000ULL) + (i / 2) * 2 * PG;

        if (cocoVfioContainerMap(c, NULL, first, first + PG - 1,
                                 COCO_VFIO_MAP_READ, &err) < 0)
            g_error("%s", err->message);
    }
    *ms_map = benchCpuMs() - t0;
    return c;
}

static void
benchOne(const BenchVariant *v, size_t n, bool naive, BenchResult *res)
{
    CocoVfioModel *model = NULL;
    BenchOps bops = {0};
    CocoVfioContainer *c = benchSetup(v, &model, &bops, n, &res->ms_map);
    g_autoptr(GError) err = NULL;
    uint64_t before = cocoVfioContainerGetIoctlCount(c);
    double t0;

    bops.ms_kernel = 0;
    t0 = benchCpuMs();

    if (naive) {
        size_t i;

        for (i = 0; i < n; i++) {
            uint64_t first =
                (i % 2 ? 0x100000000ULL : 0x10000ULL) + (i / 2) * 2 * PG;

            if (cocoVfioContainerUnmap(c, first, first + PG - 1, NULL, &err) <
                0)
                g_error("%s", err->message);
        }
    } else if (cocoVfioContainerTeardown(c, &err) < 0) {
        g_error("%s", err->message);
    }
    res->ms_teardown = benchCpuMs() - t0;
    res->ms_module = res->ms_teardown - bops.ms_kernel;
    res->ioctls = cocoVfioContainerGetIoctlCount(c) - before;
    if (cocoVfioModelLiveBytes(model) != 0 ||
        cocoVfioModelPinnedBytes(model) != 0)
        g_error("teardown left mappings in the model");
    cocoVfioContainerFree(c);
    cocoVfioModelFree(model);
}

int
main(int argc, char **argv)
{
    size_t counts[8] = {10000, 100000};
    size_t ncounts = 2;
    size_t i;
    size_t k;

    if (argc > 1) {
        ncounts = 0;
        for (i = 1; i < (size_t)argc && ncounts < G_N_ELEMENTS(counts); i++)
            counts[ncounts++] = (size_t)g_ascii_strtoull(argv[i], NULL, 10);
    }
    printf(
        "CPU ms; 'module' excludes the time spent inside the kernel model\n");
    printf("%-24s %7s %8s %9s %7s %6s | %9s %7s %7s | %6s %6s\n", "variant",
           "maps", "map", "teardown", "module", "ioctl", "naive", "module",
           "ioctl", "ratio", "mod.r");
    for (i = 0; i < G_N_ELEMENTS(variants); i++) {
        for (k = 0; k < ncounts; k++) {
            BenchResult fast;
            BenchResult naive;

            benchOne(&variants[i], counts[k], false, &fast);
            benchOne(&variants[i], counts[k], true, &naive);
            printf("%-24s %7zu %8.1f %9.2f %7.2f %6" G_GUINT64_FORMAT
                   " | %9.2f %7.2f %7" G_GUINT64_FORMAT " | %5.1fx %5.1fx\n",
                   variants[i].name, counts[k], fast.ms_map, fast.ms_teardown,
                   fast.ms_module, fast.ioctls, naive.ms_teardown,
                   naive.ms_module, naive.ioctls,
                   naive.ms_teardown / MAX(fast.ms_teardown, 0.001),
                   naive.ms_module / MAX(fast.ms_module, 0.001));
        }
    }
    return EXIT_SUCCESS;
}
