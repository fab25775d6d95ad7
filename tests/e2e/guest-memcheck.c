/*
 * guest-memcheck.c: the lab guest's whole-memory check
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Not part of the build: build-guest.sh compiles it (static) into the lab
 * guest's initramfs, whose init runs it when the kernel command line has
 * cocomem=1 (docs/lab.rst). It takes all the memory it can allocate
 * (MemAvailable less a reserve for the rest of the guest: the kernel, the
 * shell loops, the checksum workload's tmpfs), fills every page with a
 * pattern derived from the page's index and a per-page generation, and
 * then, round after round, verifies every page and rewrites one window of
 * pages with their next generation. A page lost, zeroed or misplaced by a
 * migration fails the pattern of its index; a page whose last rewrite did
 * not reach the destination (a dirty page not sent again) fails the
 * pattern of its generation. On the console:
 *
 *   GUEST-MEM pages P MiB M ...   once, after the fill (and the guest's
 *                                 MemTotal and MemAvailable before it)
 *   MEM n ok | MEM n BAD k        after round n: k pages did not verify
 *   PAGEBAD n page p word w ...   the first bad pages of round n (at most 4)
 *   GUEST-MEM-FAILED reason       it could not start (then no MEM lines)
 *
 * Each slice of verification is followed by a sleep three times as long,
 * so the check takes about a quarter of the vCPU whatever the host's
 * speed, and a round takes at least a second.
 *
 * Usage: memcheck [RESERVE-MIB [LIMIT-MIB]]
 *   RESERVE-MIB  what to leave to the rest of the guest (default 16)
 *   LIMIT-MIB    take at most this much (default: no limit; for a run
 *                outside the guest)
 */

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MC_PAGE 4096
#define MC_WORDS (MC_PAGE / sizeof(uint64_t))
#define MC_SLICE_PAGES 256 /* 1 MiB verified between two sleeps */
#define MC_WINDOW_PAGES 256 /* rewritten with a new generation per round */
#define MC_REPORT 4
#define MC_MIN_PAGES 1024
#define MC_MIN_ROUND_NS 1000000000ULL

static uint64_t
mcMix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t
mcWord(uint64_t seed, size_t w)
{
    return seed ^ ((uint64_t)w * 0x9e3779b97f4a7c15ULL);
}

static uint64_t
mcSeed(uint64_t page, uint32_t gen)
{
    return mcMix((page << 32) ^ gen ^ 0x636f636f6d656d00ULL);
}

static void
mcFill(uint64_t *p, uint64_t page, uint32_t gen)
{
    uint64_t seed = mcSeed(page, gen);
    size_t w;

    for (w = 0; w < MC_WORDS; w++)
        p[w] = mcWord(seed, w);
}

/* The index of the first word of page @page that does not verify, or -1. */
static long
mcCheck(const uint64_t *p, uint64_t page, uint32_t gen)
{
    uint64_t seed = mcSeed(page, gen);
    size_t w;

    for (w = 0; w < MC_WORDS; w++) {
        if (p[w] != mcWord(seed, w))
            return (long)w;
    }
    return -1;
}

static uint64_t
mcNow(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
mcSleep(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ULL),
                          .tv_nsec = (long)(ns % 1000000000ULL)};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* A field of /proc/meminfo ("MemAvailable:"), in bytes; 0 when it cannot
 * be read. */
static uint64_t
mcMeminfo(const char *field)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kib = 0;
    size_t len = strlen(field);

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, len) == 0 &&
            sscanf(line + len, " %llu kB", &kib) == 1)
            break;
    }
    fclose(f);
    return (uint64_t)kib * 1024;
}

/* The memcheck is the first process the kernel's OOM killer picks: when
 * the reserve was too small it dies (its MEM lines stop) rather than the
 * heartbeat or the checksum workload. */
static void
mcOomFirst(void)
{
    FILE *f = fopen("/proc/self/oom_score_adj", "w");

    if (f) {
        fputs("1000\n", f);
        fclose(f);
    }
}

/* One bad page: where, what it holds, and whether it is the page's
 * previous generation (a rewrite that did not arrive). */
static void
mcReport(unsigned long n, const uint64_t *page, uint64_t p, uint32_t gen,
         size_t w)
{
    int stale = gen > 0 && mcCheck(page, p, gen - 1) < 0;

    printf("PAGEBAD %lu page %llu word %zu gen %u got %016llx want %016llx%s\n",
           n, (unsigned long long)p, w, gen, (unsigned long long)page[w],
           (unsigned long long)mcWord(mcSeed(p, gen), w),
           stale ? " (stale: the previous generation)" : "");
}

static int
mcParseMiB(const char *arg, uint64_t *bytes)
{
    char *end = NULL;
    unsigned long long mib;

    errno = 0;
    mib = strtoull(arg, &end, 10);
    if (errno || end == arg || *end || mib == 0 || mib > 65536) {
        printf("GUEST-MEM-FAILED '%s' is not a number of MiB\n", arg);
        return -1;
    }
    *bytes = (uint64_t)mib << 20;
    return 0;
}

int
main(int argc, char **argv)
{
    uint64_t reserve = 16ULL << 20;
    uint64_t limit = 0;
    uint64_t avail;
    uint64_t pages;
    uint64_t cursor = 0;
    uint64_t *mem = MAP_FAILED;
    uint32_t *gen;
    uint64_t p;
    unsigned long n;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && mcParseMiB(argv[1], &reserve) < 0)
        return 1;
    if (argc > 2 && mcParseMiB(argv[2], &limit) < 0)
        return 1;
    mcOomFirst();
    avail = mcMeminfo("MemAvailable:");
    pages = avail > reserve ? (avail - reserve) / MC_PAGE : 0;
    if (limit && pages > limit / MC_PAGE)
        pages = limit / MC_PAGE;
    /* All it can allocate: a smaller size when the kernel refuses. */
    while (pages >= MC_MIN_PAGES) {
        mem = mmap(NULL, pages * MC_PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem != MAP_FAILED)
            break;
        pages -= pages / 16;
    }
    if (mem == MAP_FAILED) {
        printf("GUEST-MEM-FAILED %llu bytes available, %llu reserved\n",
               (unsigned long long)avail, (unsigned long long)reserve);
        return 1;
    }
    gen = calloc(pages, sizeof(*gen));
    if (!gen) {
        printf("GUEST-MEM-FAILED no memory for %llu generations\n",
               (unsigned long long)pages);
        return 1;
    }
    for (p = 0; p < pages; p++)
        mcFill(mem + p * MC_WORDS, p, 0);
    printf("GUEST-MEM pages %llu MiB %llu of MemTotal %llu MiB, MemAvailable "
           "%llu MiB\n",
           (unsigned long long)pages,
           (unsigned long long)(pages * MC_PAGE >> 20),
           (unsigned long long)(mcMeminfo("MemTotal:") >> 20),
           (unsigned long long)(avail >> 20));

    for (n = 1;; n++) {
        uint64_t start = mcNow();
        uint64_t bad = 0;
        uint64_t s;
        uint64_t i;

        for (s = 0; s < pages; s += MC_SLICE_PAGES) {
            uint64_t t0 = mcNow();
            uint64_t e =
                s + MC_SLICE_PAGES < pages ? s + MC_SLICE_PAGES : pages;

            for (p = s; p < e; p++) {
                long w = mcCheck(mem + p * MC_WORDS, p, gen[p]);

                if (w < 0)
                    continue;
                if (bad++ < MC_REPORT)
                    mcReport(n, mem + p * MC_WORDS, p, gen[p], (size_t)w);
            }
            mcSleep(3 * (mcNow() - t0));
        }
        for (i = 0; i < MC_WINDOW_PAGES && i < pages; i++) {
            gen[cursor]++;
            mcFill(mem + cursor * MC_WORDS, cursor, gen[cursor]);
            cursor = (cursor + 1) % pages;
        }
        if (bad)
            printf("MEM %lu BAD %llu\n", n, (unsigned long long)bad);
        else
            printf("MEM %lu ok\n", n);
        if (mcNow() - start < MC_MIN_ROUND_NS)
            mcSleep(MC_MIN_ROUND_NS - (mcNow() - start));
    }
    return 0;
}
