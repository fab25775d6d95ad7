/*
 * cocostoppedbench.c: the emulated firmware's pass over a stopped guest,
 * by guest size (not a unit test)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the source does between SOURCE_BLACKOUT and the start token, for
 * guests of COCO_STOPPED_BENCH_GIB (default "1 2 4 8") GiB of which the
 * same 256 MiB are used and 32 MiB written since the last live dirty log:
 * the paused dirty log over the whole guest, the export of what it lists,
 * the vCPU and the start token. The dirty log is called the way the
 * transfer engine calls it (cocoTransferSourceScanClaim() pages a call),
 * and, for reference, in calls of 512 pages (the engine's claim before it
 * grew with the guest), and in the calls of COCO_STOPPED_BENCH_CALLS
 * (pages, space-separated) if set. Each with QEMU's write log (this process writes
 * the RAM file, like QEMU with qemu-coco's preload) and with the hashing
 * the firmware falls back to. Prints milliseconds, median of
 * COCO_STOPPED_BENCH_ROUNDS (default 5).
 */

#include "cocobenchemu.h"
#include "transfer/cocotransfersource.h"
#include "util/cocowritelog.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define USED_MIB 256
#define WRITTEN_MIB 32
#define BLOCK (2 << 20) /* the guest uses 2 MiB blocks spread evenly */

/* The dirty log of the whole guest in calls of @slice pages. */
static void
dirtyLog(CocoFirmware *fw, uint64_t npages, uint64_t slice, uint64_t *bits)
{
    GError *err = NULL;
    uint64_t g;

    memset(bits, 0, (npages + 63) / 64 * sizeof(uint64_t));
    for (g = 0; g < npages; g += slice) {
        if (cocoFirmwareDirtyLog(fw, g, MIN(slice, npages - g), bits + g / 64,
                                 &err) < 0)
            cocoBenchDie("dirty log", err);
    }
}

/* Export every page listed in @bits; returns how many. */
static uint64_t
exportListed(CocoFirmware *fw, const uint64_t *bits, uint64_t npages,
             uint8_t *buf)
{
    uint64_t gfns[COCO_EMU_MAX_GFNS];
    GError *err = NULL;
    uint64_t total = 0;
    uint32_t n = 0;
    uint64_t g;

    for (g = 0; g <= npages; g++) {
        size_t len = cocoEmuMemoryBundleSize(COCO_EMU_MAX_GFNS);

        if (g < npages && bits[g / 64] & (1ULL << (g % 64))) {
            gfns[n++] = g;
            if (n < COCO_EMU_MAX_GFNS)
                continue;
        } else if (g < npages || n == 0) {
            continue;
        }
        if (cocoFirmwareExportMemory(fw, 0, gfns, n, NULL, buf, &len, NULL,
                                     &err) < 0)
            cocoBenchDie("export", err);
        total += n;
        n = 0;
    }
    return total;
}

typedef struct {
    double dirty; /* the paused dirty log */
    double stopped; /* SOURCE_BLACKOUT to the start token */
} Result;

static Result
runOnce(uint64_t gib, uint64_t slice, bool wlog)
{
    size_t size = gib << 30;
    uint64_t npages = size / COCO_EMU_PAGE_SIZE;
    uint64_t stride = size / (USED_MIB << 20) * BLOCK;
    g_autoptr(CocoFirmware) src = NULL;
    g_autoptr(CocoFirmware) dst = NULL;
    g_autofree uint64_t *bits = g_new0(uint64_t, (npages + 63) / 64);
    g_autofree uint8_t *buf =
        g_malloc(cocoEmuMemoryBundleSize(COCO_EMU_MAX_GFNS));
    uint8_t setup[COCO_EMU_SETUP_BUNDLE_SIZE];
    uint8_t vcpu[COCO_EMU_VCPU_BUNDLE_MAX];
    uint8_t tok[COCO_EMU_TOKEN_SIZE];
    GError *err = NULL;
    Result r;
    uint8_t *mem;
    size_t len;
    gint64 t0;
    gint64 t1;
    uint64_t off;
    int fd;

    fd = memfd_create("coco-bench-ram", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
        cocoBenchDie("memfd", NULL);
    mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED)
        cocoBenchDie("mmap", NULL);
    for (off = 0; off < size; off += stride)
        memset(mem + off, (int)(off >> 21) | 1, BLOCK);

    cocoBenchEmuPair(size, &src, &dst);
    if (cocoEmuAttachMemoryFd(src, fd, 0, size, &err) < 0)
        cocoBenchDie("attach", err);
    if (wlog && cocoEmuLogWrites(src, getpid(), &err) < 0)
        cocoBenchDie("write log", err);
    cocoBenchEmuPrepare(src, dst);
    len = sizeof(setup);
    if (cocoFirmwareMigrateCmd(src, COCO_MIGRATE_CMD_SETUP, 0, setup, &len,
                               NULL, &err) < 0)
        cocoBenchDie("setup", err);

    /* Live: everything used goes in epoch 0, then a clean pass, then the
     * guest writes 32 MiB of it. */
    dirtyLog(src, npages, slice, bits);
    exportListed(src, bits, npages, buf);
    len = sizeof(tok);
    if (cocoFirmwareMigrateCmd(src, COCO_MIGRATE_CMD_TOKEN, 0, tok, &len, NULL,
                               &err) < 0)
        cocoBenchDie("epoch token", err);
    dirtyLog(src, npages, slice, bits);
    for (off = 0; off < (WRITTEN_MIB << 20); off += COCO_EMU_PAGE_SIZE) {
        uint64_t b = off / BLOCK;
        uint64_t in = off % BLOCK;

        mem[b * stride + in] ^= 0x80;
    }

    t0 = g_get_monotonic_time();
    if (cocoFirmwareMigrateCmd(src, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL,
                               NULL, NULL, &err) < 0)
        cocoBenchDie("blackout", err);
    dirtyLog(src, npages, slice, bits);
    t1 = g_get_monotonic_time();
    if (exportListed(src, bits, npages, buf) !=
        (WRITTEN_MIB << 20) / COCO_EMU_PAGE_SIZE)
        cocoBenchDie(
            "the paused dirty log listed other pages than were written", NULL);
    len = sizeof(vcpu);
    if (cocoFirmwareExportVcpu(src, 0, vcpu, &len, NULL, &err) < 0)
        cocoBenchDie("vcpu", err);
    len = sizeof(tok);
    if (cocoFirmwareMigrateCmd(src, COCO_MIGRATE_CMD_TOKEN,
                               COCO_MIGRATE_TOKEN_START, tok, &len, NULL,
                               &err) < 0)
        cocoBenchDie("start token", err);
    if (wlog && cocoEmuWriteLogLost(src))
        cocoBenchDie(cocoEmuWriteLogLost(src), NULL);
    r.stopped = (g_get_monotonic_time() - t0) / 1e3;
    r.dirty = (t1 - t0) / 1e3;

    g_clear_pointer(&src, cocoFirmwareFree);
    munmap(mem, size);
    close(fd);
    return r;
}

static int
cmpDouble(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

static Result
median(uint64_t gib, uint64_t slice, bool wlog, unsigned int rounds)
{
    g_autofree double *d = g_new(double, rounds);
    g_autofree double *s = g_new(double, rounds);
    Result r;
    unsigned int i;

    for (i = 0; i < rounds; i++) {
        r = runOnce(gib, slice, wlog);
        d[i] = r.dirty;
        s[i] = r.stopped;
    }
    qsort(d, rounds, sizeof(*d), cmpDouble);
    qsort(s, rounds, sizeof(*s), cmpDouble);
    r.dirty = d[rounds / 2];
    r.stopped = s[rounds / 2];
    return r;
}

int
main(void)
{
    const char *sizes = g_getenv("COCO_STOPPED_BENCH_GIB");
    const char *env = g_getenv("COCO_STOPPED_BENCH_ROUNDS");
    const char *extra = g_getenv("COCO_STOPPED_BENCH_CALLS");
    unsigned int rounds = env ? (unsigned int)atoi(env) : 5;
    g_auto(GStrv) list = g_strsplit(sizes ? sizes : "1 2 4 8", " ", -1);
    int ufd = cocoWriteLogPrepareSelf();
    size_t i;

    if (rounds == 0)
        cocoBenchDie("COCO_STOPPED_BENCH_ROUNDS must be positive", NULL);
    if (ufd < 0)
        printf(
            "(no asynchronous userfaultfd write protection: hashing only)\n");
    printf("stopped guest, %d MiB used, %d MiB written; median of %u, ms\n",
           USED_MIB, WRITTEN_MIB, rounds);
    printf("%-5s  %-6s  %-12s  %-10s  %s\n", "GiB", "dirty", "call pages",
           "dirty log", "blackout -> start token");
    for (i = 0; list[i]; i++) {
        uint64_t gib = g_ascii_strtoull(list[i], NULL, 10);
        uint64_t npages = (gib << 30) / COCO_EMU_PAGE_SIZE;
        uint64_t slices[8] = {
            cocoTransferSourceScanClaim(npages, COCO_TRANSFER_DEFAULT_STREAMS),
            512};
        unsigned int nslices = 2;
        unsigned int m;
        unsigned int s;

        if (!gib)
            continue;
        if (extra) {
            g_auto(GStrv) e = g_strsplit(extra, " ", -1);

            for (s = 0; e[s] && nslices < G_N_ELEMENTS(slices); s++)
                slices[nslices++] = g_ascii_strtoull(e[s], NULL, 10) ?: 512;
        }
        for (m = ufd < 0 ? 1 : 0; m < 2; m++) {
            for (s = 0; s < nslices; s++) {
                Result r = median(gib, slices[s], m == 0, rounds);

                printf("%-5" G_GUINT64_FORMAT "  %-6s  %-12" G_GUINT64_FORMAT
                       "  %-10.1f  %.1f\n",
                       gib, m == 0 ? "log" : "hash", slices[s], r.dirty,
                       r.stopped);
            }
        }
    }
    return 0;
}
