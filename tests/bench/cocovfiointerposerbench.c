/*
 * cocovfiointerposerbench.c: what the VFIO interposer costs QEMU's ioctls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: cocovfiointerposerbench INTERPOSER.so [ROUNDS]
 *
 * Ratios against a reference measured in the same run, CPU time of the
 * process (docs/performance.rst, "VFIO interposer"):
 *  - fast path: FIONREAD on a pipe (a request of another type, as
 *    KVM_RUN, the ioctl QEMU issues most) through the built library's
 *    ioctl() against glibc's ioctl();
 *  - VFIO pass-through: a VFIO request the interposer does not follow
 *    (VFIO_DEVICE_GET_INFO; the pipe answers ENOTTY), same comparison;
 *  - map and unmap: a DMA map and its unmap through the interposer's
 *    logic (shadow map, checks) against the same requests sent straight to
 *    the kernel model (tests/cocovfiomodel.c), which stands in for the
 *    kernel in both.
 * Rounds alternate between the two sides; the median ratio is reported.
 */

#include "internal.h"
#include "cocovfiomodel.h"
#include "preload/cocovfiointerposer.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define GROUP_FD 2000
#define CALLS 200000
#define MAPS 20000

typedef int (*BenchIoctl)(int fd, unsigned long request, ...);

static double
benchCpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
benchDoubleCmp(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : (x > y ? 1 : 0);
}

static double
benchMedian(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), benchDoubleCmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double
benchCalls(BenchIoctl fn, int fd, unsigned long request)
{
    double t0 = benchCpu();
    int n = 0;
    int i;

    for (i = 0; i < CALLS; i++)
        (void)fn(fd, request, &n);
    return benchCpu() - t0;
}

static void
benchPath(const char *name, BenchIoctl direct, BenchIoctl interposed, int fd,
          unsigned long request, int rounds)
{
    g_autofree double *dt = g_new0(double, rounds);
    g_autofree double *it = g_new0(double, rounds);
    g_autofree double *ratio = g_new0(double, rounds);
    int r;

    for (r = 0; r < rounds; r++) {
        if (r % 2) {
            it[r] = benchCalls(interposed, fd, request);
            dt[r] = benchCalls(direct, fd, request);
        } else {
            dt[r] = benchCalls(direct, fd, request);
            it[r] = benchCalls(interposed, fd, request);
        }
        ratio[r] = it[r] / dt[r];
    }
    printf("%-28s direct %7.1f ns  interposed %7.1f ns  ratio %.3f\n", name,
           benchMedian(dt, rounds) * 1e9 / CALLS,
           benchMedian(it, rounds) * 1e9 / CALLS, benchMedian(ratio, rounds));
}

/* The kernel model behind a group, as in cocovfiointerposertest.c. */
typedef struct {
    CocoVfioModel *model;
    const CocoVfioOps *mops;
    CocoVfioOps ops;
} BenchSys;

static int
benchSysIoctl(void *opaque, int fd, unsigned long request, void *arg)
{
    BenchSys *s = opaque;

    if (fd == GROUP_FD)
        return 0;
    if (request == VFIO_SET_IOMMU)
        return 0;
    return s->mops->ioctl(s->mops->opaque, fd, request, arg);
}

static double
benchMaps(BenchSys *s, CocoVfioInterposer *ip)
{
    int cfd = cocoVfioModelFd(s->model);
    double t0 = benchCpu();
    int i;

    for (i = 0; i < MAPS; i++) {
        struct vfio_iommu_type1_dma_map m = {
            .argsz = sizeof(m),
            .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
            .vaddr = 0x7f0000000000ULL,
            .iova = 0x100000000ULL + (uint64_t)i * 0x1000,
            .size = 0x1000,
        };
        int rc = ip ? cocoVfioInterposerIoctl(ip, cfd, VFIO_IOMMU_MAP_DMA, &m)
                    : benchSysIoctl(s, cfd, VFIO_IOMMU_MAP_DMA, &m);

        g_assert_cmpint(rc, ==, 0);
    }
    for (i = 0; i < MAPS; i++) {
        struct vfio_iommu_type1_dma_unmap u = {
            .argsz = sizeof(u),
            .iova = 0x100000000ULL + (uint64_t)i * 0x1000,
            .size = 0x1000,
        };
        int rc = ip ? cocoVfioInterposerIoctl(ip, cfd, VFIO_IOMMU_UNMAP_DMA, &u)
                    : benchSysIoctl(s, cfd, VFIO_IOMMU_UNMAP_DMA, &u);

        g_assert_cmpint(rc, ==, 0);
    }
    return benchCpu() - t0;
}

static void
benchMapUnmap(int rounds)
{
    CocoVfioModelConfig cfg = {COCO_VFIO_MODEL_TYPE1, false, true, true, false};
    g_autofree double *dt = g_new0(double, rounds);
    g_autofree double *it = g_new0(double, rounds);
    g_autofree double *ratio = g_new0(double, rounds);
    int r;

    for (r = 0; r < rounds; r++) {
        BenchSys s;
        CocoVfioInterposer *ip;
        int cfd;

        s.model = cocoVfioModelNew(&cfg);
        s.mops = cocoVfioModelOps(s.model);
        s.ops = *s.mops;
        s.ops.ioctl = benchSysIoctl;
        s.ops.opaque = &s;
        cfd = cocoVfioModelFd(s.model);
        ip = cocoVfioInterposerNew(&s.ops, NULL, NULL, NULL);
        g_assert_cmpint(cocoVfioInterposerIoctl(ip, GROUP_FD,
                                                VFIO_GROUP_SET_CONTAINER, &cfd),
                        ==, 0);
        g_assert_cmpint(
            cocoVfioInterposerIoctl(ip, cfd, VFIO_SET_IOMMU,
                                    (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU),
            ==, 0);
        if (r % 2) {
            it[r] = benchMaps(&s, ip);
            dt[r] = benchMaps(&s, NULL);
        } else {
            dt[r] = benchMaps(&s, NULL);
            it[r] = benchMaps(&s, ip);
        }
        ratio[r] = it[r] / dt[r];
        cocoVfioInterposerFree(ip);
        cocoVfioModelFree(s.model);
    }
    printf("%-28s direct %7.1f ns  interposed %7.1f ns  ratio %.3f\n",
           "map+unmap (kernel model)", benchMedian(dt, rounds) * 1e9 / MAPS,
           benchMedian(it, rounds) * 1e9 / MAPS, benchMedian(ratio, rounds));
}

int
main(int argc, char **argv)
{
    void *lib;
    BenchIoctl interposed;
    int rounds = argc > 2 ? atoi(argv[2]) : 9;
    int p[2];

    if (argc < 2) {
        fprintf(stderr, "usage: %s INTERPOSER.so [ROUNDS]\n", argv[0]);
        return 2;
    }
    if (rounds < 1)
        rounds = 1;
    if (!(lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL))) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    interposed = (BenchIoctl)dlsym(lib, "ioctl");
    g_assert_nonnull(interposed);
    g_assert_true(interposed != (BenchIoctl)ioctl);
    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);

    printf("VFIO interposer, %d rounds, CPU time per call (median)\n", rounds);
    benchPath("fast path (FIONREAD)", ioctl, interposed, p[0], FIONREAD,
              rounds);
    benchPath("VFIO pass-through", ioctl, interposed, p[0],
              VFIO_DEVICE_GET_INFO, rounds);
    benchMapUnmap(rounds);
    close(p[0]);
    close(p[1]);
    return 0;
}
