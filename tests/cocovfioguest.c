/*
 * cocovfioguest.c: the VFIO module against a real kernel, inside a guest
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Run by tests/cocovfiointegration.sh inside a QEMU TCG guest whose vIOMMU
 * (amd-iommu) exposes IOVAs up to 2^64-1, with QEMU's "edu" PCI device
 * bound to vfio-pci. Usage: cocovfioguest BDF. Prints "RESULT PASS" or
 * "RESULT FAIL: ..." as its last line.
 *
 * Phase A uses only the public API: map below, in and just under the top
 * of the last range, see the top page refused on an unfixed kernel, unmap
 * the whole last range and tear down, with no locked memory left.
 * Phase B hands the module a container that already holds a mapping of
 * the top page (made with a raw ioctl, as QEMU would for a guest using
 * that IOVA): teardown must remove everything else and name exactly that
 * mapping, and the kernel must show the rest is gone (MAP at the same
 * IOVA succeeds again).
 */

#include "internal.h"
#include "vfio/cocovfiocontainer.h"
#include "vfio/cocovfiouapi.h"
#include "util/cocoerror.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 0x1000ULL
#define TOP (G_MAXUINT64 - PG + 1)

static int failures;

#define CHECK(cond, ...)                                                       \
 do {                                                                          \
  if (cond) {                                                                  \
   printf("ok: " __VA_ARGS__);                                                 \
  } else {                                                                     \
   printf("FAIL: " __VA_ARGS__);                                               \
   failures++;                                                                 \
  }                                                                            \
  printf("\n");                                                                \
  fflush(stdout);                                                              \
 } while (0)

static long
vmlck(void)
{
    g_autofree char *status = NULL;
    const char *p;

    if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL) ||
        !(p = strstr(status, "VmLck:")))
        return -1;
    return strtol(p + 6, NULL, 10);
}

static int
rawMap(int fd, void *vaddr, uint64_t iova, uint64_t size)
{
    struct vfio_iommu_type1_dma_map m = {
        .argsz = sizeof(m),
        .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        .vaddr = (uint64_t)(uintptr_t)vaddr,
        .iova = iova,
        .size = size,
    };

    return ioctl(fd, VFIO_IOMMU_MAP_DMA, &m) < 0 ? -errno : 0;
}

static int
rawUnmap(int fd, uint64_t iova, uint64_t size, uint64_t *out)
{
    struct vfio_iommu_type1_dma_unmap u = {
        .argsz = sizeof(u), .iova = iova, .size = size};

    if (ioctl(fd, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
        return -errno;
    *out = u.size;
    return 0;
}

static uint64_t
lastRangeFirst(const CocoVfioIommuInfo *info)
{
    return info->ranges[info->nranges - 1].first;
}

static void
phaseA(const char *bdf, uint8_t *mem, bool *fixed)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoVfioContainer) c = NULL;
    const CocoVfioIommuInfo *info;
    uint64_t last_first;
    uint64_t mid;
    uint64_t out = 0;
    long before = vmlck();
    size_t i;
    int rc;

    c = cocoVfioContainerOpenDevice(bdf, 0, &err);
    CHECK(c != NULL, "open %s: %s", bdf, err ? err->message : "container");
    if (!c)
        return;
    info = cocoVfioContainerGetInfo(c);
    printf("backend %s fix %s unmap_all %d page 0x%" G_GINT64_MODIFIER "x\n",
           cocoVfioBackendTypeToString(cocoVfioContainerGetBackend(c)),
           cocoVfioFixStatusTypeToString(cocoVfioContainerGetFixStatus(c)),
           cocoVfioContainerHasUnmapAll(c), info->page_size);
    for (i = 0; i < info->nranges; i++)
        printf("range [0x%" G_GINT64_MODIFIER "x, 0x%" G_GINT64_MODIFIER "x]\n",
               info->ranges[i].first, info->ranges[i].last);
    *fixed = cocoVfioContainerGetFixStatus(c) == COCO_VFIO_FIX_PRESENT;
    CHECK(info->ranges[info->nranges - 1].last == G_MAXUINT64,
          "the last IOVA range reaches 2^64-1");
    last_first = lastRangeFirst(info);
    mid = last_first + 0x100000000ULL;

    CHECK(cocoVfioContainerMap(c, mem, 0x100000, 0x100fff,
                               COCO_VFIO_MAP_READ | COCO_VFIO_MAP_WRITE,
                               &err) == 0,
          "map a low page");
    g_clear_error(&err);
    CHECK(cocoVfioContainerMap(c, mem + PG, mid, mid + PG - 1,
                               COCO_VFIO_MAP_READ, &err) == 0,
          "map a page in the last range");
    g_clear_error(&err);
    CHECK(cocoVfioContainerMap(c, mem + 2 * PG, TOP - PG, TOP - 1,
                               COCO_VFIO_MAP_READ, &err) == 0,
          "map the page below the top");
    g_clear_error(&err);
    rc = cocoVfioContainerMap(c, mem + 3 * PG, TOP, G_MAXUINT64,
                              COCO_VFIO_MAP_READ, &err);
    if (*fixed)
        CHECK(rc == 0, "fixed kernel: the top page can be mapped");
    else
        CHECK(rc < 0 &&
                  g_error_matches(err, COCO_ERROR, COCO_ERROR_VFIO_UNSAFE),
              "unfixed kernel: the top page is refused (%s)",
              err ? err->message : "mapped");
    g_clear_error(&err);

    rc = cocoVfioContainerUnmap(c, last_first, G_MAXUINT64, &out, &err);
    CHECK(rc == 0 && out == (*fixed ? 3 : 2) * PG,
          "unmap of the whole last range removed 0x%" G_GINT64_MODIFIER
          "x bytes (%s)",
          out, err ? err->message : "no error");
    g_clear_error(&err);
    CHECK(cocoVfioContainerTeardown(c, &err) == 0, "teardown: %s",
          err ? err->message : "clean");
    CHECK(cocoVfioContainerGetMappingCount(c) == 0, "nothing recorded");
    g_clear_pointer(&c, cocoVfioContainerFree);
    CHECK(vmlck() == before, "locked memory back to %ld kB (now %ld kB)",
          before, vmlck());
}

static int
openContainer(const char *bdf, int *groupfd)
{
    g_autofree char *linkpath =
        g_strdup_printf("/sys/bus/pci/devices/%s/iommu_group", bdf);
    g_autofree char *link = g_file_read_link(linkpath, NULL);
    g_autofree char *base = link ? g_path_get_basename(link) : NULL;
    g_autofree char *gpath = g_strdup_printf("/dev/vfio/%s", base);
    int fd = open("/dev/vfio/vfio", O_RDWR);

    *groupfd = open(gpath, O_RDWR);
    if (fd < 0 || *groupfd < 0 ||
        ioctl(*groupfd, VFIO_GROUP_SET_CONTAINER, &fd) < 0 ||
        ioctl(fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
        return -1;
    return fd;
}

static void
phaseB(const char *bdf, uint8_t *mem, bool fixed)
{
    g_autoptr(GError) err = NULL;
    CocoVfioContainer *c;
    g_autofree CocoVfioRange *leaks = NULL;
    size_t nleaks = 0;
    uint64_t last_first;
    uint64_t mid;
    uint64_t out = 0;
    long before = vmlck();
    long after;
    int groupfd = -1;
    int fd = openContainer(bdf, &groupfd);
    int rc;
    uint64_t i;

    CHECK(fd >= 0, "raw container for %s", bdf);
    if (fd < 0)
        return;
    /* A mapping of the top page made before the module owns the fd. */
    CHECK(rawMap(fd, mem + 4 * PG, TOP, PG) == 0, "raw map of the top page");
    c = cocoVfioContainerNewFromFd(cocoVfioOpsReal(), COCO_VFIO_BACKEND_TYPE1V2,
                                   fd, 0, &groupfd, 1, &err);
    CHECK(c != NULL, "container from fd: %s", err ? err->message : "ok");
    if (!c)
        return;
    CHECK(cocoVfioContainerTrackMapping(c, mem + 4 * PG, TOP, G_MAXUINT64,
                                        &err) == 0,
          "track the top mapping");
    last_first = lastRangeFirst(cocoVfioContainerGetInfo(c));
    mid = last_first + 0x100000000ULL;
    for (i = 0; i < 8; i++) {
        g_clear_error(&err);
        rc = cocoVfioContainerMap(c, mem + 5 * PG, mid + i * 2 * PG,
                                  mid + i * 2 * PG + PG - 1, COCO_VFIO_MAP_READ,
                                  &err);
        if (rc < 0)
            break;
    }
    CHECK(i == 8, "eight mappings in the last range");
    g_clear_error(&err);
    CHECK(cocoVfioContainerMap(c, mem + 6 * PG, TOP - 2 * PG, TOP - 1,
                               COCO_VFIO_MAP_READ, &err) == 0,
          "two pages just below the top");
    g_clear_error(&err);

    rc = cocoVfioContainerTeardown(c, &err);
    if (fixed) {
        CHECK(rc == 0, "fixed kernel: teardown removes everything (%s)",
              err ? err->message : "ok");
    } else {
        cocoVfioContainerGetLeaks(c, &leaks, &nleaks);
        CHECK(rc < 0 && g_error_matches(err, COCO_ERROR, COCO_ERROR_VFIO_LEAK),
              "unfixed kernel: teardown reports a leak: %s",
              err ? err->message : "no error");
        CHECK(nleaks == 1 && leaks[0].first == TOP &&
                  leaks[0].last == G_MAXUINT64,
              "exactly the top mapping is named (%zu leaks)", nleaks);
    }
    /* The kernel agrees the rest is gone: the same IOVAs map again. */
    rc = rawMap(fd, mem + 5 * PG, mid, PG);
    CHECK(rc == 0,
          "the kernel has no mapping at 0x%" G_GINT64_MODIFIER
          "x any more (rc %d)",
          mid, rc);
    if (rc == 0)
        rawUnmap(fd, mid, PG, &out);
    rc = rawMap(fd, mem + 6 * PG, TOP - 2 * PG, 2 * PG);
    CHECK(rc == 0, "the kernel has no mapping below the top any more (rc %d)",
          rc);
    if (rc == 0)
        rawUnmap(fd, TOP - 2 * PG, 2 * PG, &out);
    after = vmlck();
    printf("VmLck before %ld kB, after teardown %ld kB\n", before, after);
    cocoVfioContainerFree(c);
    printf("VmLck after close %ld kB (%s)\n", vmlck(),
           fixed ? "expected unchanged"
                 : "on an unfixed kernel the top page's pin leaks");
    if (!fixed)
        CHECK(vmlck() - before == (long)(PG / 1024),
              "the pin of the top page leaked on close, as the research found");
}

/*
 * Phase C checks the kernel-model detail the module's clamp relies on (not
 * in the research notes): on an unfixed kernel the unmap loop walks the
 * tree with rb_next() from the first visible record, so a request that
 * ends below 2^64 but covers the start of a mapping ending at 2^64-1 drops
 * that mapping's record (its size is counted) while the mapping stays.
 */
static void
phaseC(const char *bdf, uint8_t *mem, bool fixed)
{
    int groupfd = -1;
    int fd = openContainer(bdf, &groupfd);
    uint64_t mid = (uint64_t)0x10000000000ULL + 0x100000000ULL;
    uint64_t out = 0;
    long before = vmlck();
    int rc;

    CHECK(fd >= 0, "raw container for %s", bdf);
    if (fd < 0)
        return;
    CHECK(rawMap(fd, mem + 8 * PG, mid, PG) == 0, "raw map of a mid page");
    CHECK(rawMap(fd, mem + 9 * PG, TOP - PG, 2 * PG) == 0,
          "raw map of the two top pages");
    rc = rawUnmap(fd, mid, TOP - mid, &out);
    printf("UNMAP [0x%" G_GINT64_MODIFIER "x, 0x%" G_GINT64_MODIFIER
           "x]: rc %d size 0x%" G_GINT64_MODIFIER "x\n",
           mid, (uint64_t)(TOP - 1), rc, out);
    if (fixed)
        CHECK(rc == -EINVAL,
              "fixed kernel: the request would split the top mapping");
    else
        CHECK(
            rc == 0 && out == 3 * PG,
            "unfixed kernel: the walk reached the top mapping and counted it");
    printf("VmLck before the maps %ld kB, after the unmap %ld kB\n", before,
           vmlck());
    if (!fixed)
        CHECK(
            vmlck() - before == (long)(2 * PG / 1024),
            "unfixed kernel: the two top pages stay pinned although their record is gone");
    close(groupfd);
    close(fd);
}

int
main(int argc, char **argv)
{
    uint8_t *mem;
    bool fixed = false;

    if (argc != 2) {
        fprintf(stderr, "usage: %s BDF\n", argv[0]);
        return 2;
    }
    mem = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return 1;
    memset(mem, 0x5a, 16 * PG);
    printf("phase A\n");
    phaseA(argv[1], mem, &fixed);
    printf("phase B\n");
    phaseB(argv[1], mem, fixed);
    printf("phase C\n");
    phaseC(argv[1], mem, fixed);
    if (failures)
        printf("RESULT FAIL: %d check(s) failed\n", failures);
    else
        printf("RESULT PASS\n");
    return failures ? 1 : 0;
}
