/*
 * cocotransferbench.c: throughput of the transfer pipeline against raw
 * AES-256-GCM, and of the hash-diff dirty scan against memcmp/memcpy
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Not a test: run with "meson test --benchmark -C build" (or directly:
 * cocotransferbench [MiB]). Prints one line per measurement and the
 * ratios docs/performance.rst quotes. Every figure is the best of a few
 * runs on the same data. A ratio always divides like by like: CPU seconds
 * by CPU seconds (the goals), wall by wall (shown beside them).
 */

#include "internal.h"
#include "firmware/cocoemu.h"
#include "firmware/cocoemuplatform.h"
#include "transfer/cocodirtybitmap.h"
#include "transfer/cocodirtyhash.h"
#include "transfer/cocotransferdest.h"
#include "transfer/cocotransfersource.h"
#include "util/cocopagehash.h"
#include "util/cocowritelog.h"

#include "transfer/cocodirtyfirmware.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define PAGE 4096
#define RUNS 3
/* Runs of each two-process configuration, each beside a bare one. */
#define TCP_RUNS 5

/* Socket buffer size for the socketpairs, 0 = the system default
 * (COCO_BENCH_SOCKBUF, bytes). TCP between hosts autotunes to megabytes. */
static int sockbuf;

static double
now(void)
{
    return (double)g_get_monotonic_time() / 1e6;
}

/* CPU seconds (user + system) of every thread of the process so far. */
static double
cpuNow(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The pipeline's dirty source: the hash-diff one (its hashes around every
 * export cost CPU) instead of a bitmap. */
static bool useHash;
/* libvirt's max-bandwidth for the pipeline's one precopy round (0: none);
 * the round's measured rate in bytes per second. */
static uint64_t capRate;
static double capMeasured;

/* CPU seconds the last benchPipeline()/benchFirmware() call used. */
static double lastCpu;

/* The source's guest memory is this file (a memfd), mapped at the region
 * the benchmarks read; -1 before main() makes it. */
static int srcFd = -1;
/* A stand-in for QEMU (startVmm()): it maps the RAM file and has made its
 * write log's userfaultfd; -1 where this kernel has no asynchronous
 * write protection. vmmCtl: closing it ends the process. */
static pid_t vmmPid = -1;
static int vmmCtl = -1;

/* How the source firmware reaches the guest memory. */
typedef enum {
    SRC_REGION, /* the benchmark's own mapping, every page mapped */
    SRC_FILE, /* the RAM file, mapped anew, as the agent maps QEMU's */
    SRC_LOG, /* the RAM file, with the VMM's writes logged */
} SrcMode;

static const char *const srcModeName[] = {
    "the source's memory a mapped region",
    "the source's memory a file, hashed",
    "the source's memory a file, write log (unhashed)",
};
G_STATIC_ASSERT(G_N_ELEMENTS(srcModeName) == SRC_LOG + 1);

static void
die(const char *what, GError *err)
{
    fprintf(stderr, "%s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

/* Attach the source's guest memory @mem to @sfw as @mode says. With
 * SRC_LOG, as the agent does under qemu-coco, the stand-in VMM's writes
 * are logged: exports seal straight from guest memory, unhashed; else
 * each export hashes a private copy of each page. */
static void
attachSource(CocoFirmware *sfw, uint8_t *mem, size_t size, SrcMode mode)
{
    g_autoptr(GError) err = NULL;

    if (mode == SRC_REGION
            ? cocoEmuAttachMemory(sfw, mem, size, &err) < 0
            : cocoEmuAttachMemoryFd(sfw, srcFd, 0, size, &err) < 0 ||
                  (mode == SRC_LOG && cocoEmuLogWrites(sfw, vmmPid, &err) < 0))
        die("source memory", err);
}

/* Fork the stand-in VMM: it makes its write log's userfaultfd (what
 * qemu-coco's preload does in QEMU), maps the RAM file and reads every
 * page in, then waits for vmmCtl to close. The log is of its writes, as
 * the agent's is of QEMU's: the benchmark's own mappings, like the
 * agent's, are not logged. */
static void
startVmm(size_t size)
{
    int ready[2];
    int ctl[2];
    char c = 0;
    pid_t pid;

    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(ctl, O_CLOEXEC) < 0)
        die("pipe", NULL);
    fflush(stdout);
    if ((pid = fork()) < 0)
        die("fork", NULL);
    if (pid == 0) {
        int ufd = cocoWriteLogPrepareSelf();
        volatile uint8_t *m =
            mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, srcFd, 0);
        size_t off;

        close(ready[0]);
        close(ctl[1]);
        if (m == MAP_FAILED)
            _exit(1);
        for (off = 0; off < size; off += PAGE)
            (void)m[off];
        c = ufd >= 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        while (read(ctl[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(ready[1]);
    close(ctl[0]);
    if (read(ready[0], &c, 1) != 1)
        die("the stand-in VMM", NULL);
    close(ready[0]);
    if (c == 'y') {
        vmmPid = pid;
        vmmCtl = ctl[1];
        return;
    }
    printf("(no asynchronous userfaultfd write protection: no write log)\n");
    close(ctl[1]);
    waitpid(pid, NULL, 0);
}

static void
stopVmm(void)
{
    if (vmmCtl < 0)
        return;
    close(vmmCtl);
    waitpid(vmmPid, NULL, 0);
}

/* Raw AES-256-GCM over the region, one 4 KiB page per operation with its
 * own IV (what the firmware does), encrypt then decrypt: seconds each.
 * Each writes a region of the same size (the ciphertext, the plaintext),
 * as the export writes bundles and the import the guest's pages. */
static void
benchGcm(const uint8_t *mem, size_t size, double *enc, double *dec, double *cpu,
         double *enccpu, double *deccpu)
{
    gnutls_aead_cipher_hd_t h;
    uint8_t keybuf[32], iv[12], tag[16];
    gnutls_datum_t key = {keybuf, sizeof(keybuf)};
    g_autofree uint8_t *ct = g_malloc(size);
    g_autofree uint8_t *tags = g_malloc(size / PAGE * 16);
    g_autofree uint8_t *pt = g_malloc(size);
    int r;

    memset(keybuf, 7, sizeof(keybuf));
    memset(iv, 0, sizeof(iv));
    if (gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &key) < 0)
        die("gnutls_aead_cipher_init", NULL);
    *enc = *dec = *cpu = *enccpu = *deccpu = 1e9;
    for (r = 0; r < RUNS; r++) {
        double t0 = now();
        double c0 = cpuNow();
        double c1;
        size_t off;

        for (off = 0; off < size; off += PAGE) {
            size_t ctlen = PAGE + 16;
            uint8_t out[PAGE + 16];

            memcpy(iv, &off, sizeof(off));
            if (gnutls_aead_cipher_encrypt(h, iv, sizeof(iv), NULL, 0, 16,
                                           mem + off, PAGE, out, &ctlen) < 0)
                die("encrypt", NULL);
            memcpy(ct + off, out, PAGE);
            memcpy(tags + off / PAGE * 16, out + PAGE, 16);
        }
        *enc = MIN(*enc, now() - t0);
        c1 = cpuNow();
        *enccpu = MIN(*enccpu, c1 - c0);

        t0 = now();
        for (off = 0; off < size; off += PAGE) {
            uint8_t in[PAGE + 16];
            size_t ptlen = PAGE;

            memcpy(iv, &off, sizeof(off));
            memcpy(in, ct + off, PAGE);
            memcpy(in + PAGE, tags + off / PAGE * 16, 16);
            if (gnutls_aead_cipher_decrypt(h, iv, sizeof(iv), NULL, 0, 16, in,
                                           PAGE + 16, pt + off, &ptlen) < 0)
                die("decrypt", NULL);
        }
        *dec = MIN(*dec, now() - t0);
        *deccpu = MIN(*deccpu, cpuNow() - c1);
        *cpu = MIN(*cpu, cpuNow() - c0);
    }
    (void)tag;
    gnutls_aead_cipher_deinit(h);
}

static GIOStream *
socketStream(int fd)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GSocket) sock = g_socket_new_from_fd(fd, &err);

    if (!sock)
        die("g_socket_new_from_fd", err);
    return G_IO_STREAM(g_socket_connection_factory_create_connection(sock));
}

static void
keyExchange(CocoFirmware *s, CocoFirmware *d)
{
    uint8_t m[COCO_EMU_PREPARE_MSG_MAX], e[COCO_EMU_PREPARE_MSG_MAX];
    size_t len = 0, elen = 0;

    if (cocoFirmwareMigrateCmd(s, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                               NULL) != -EAGAIN ||
        cocoFirmwareMigrateCmd(d, COCO_MIGRATE_CMD_PREPARE, 0, e, &elen, NULL,
                               NULL) != -EAGAIN ||
        cocoFirmwareMigrateCmd(d, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                               NULL) != -EAGAIN ||
        cocoFirmwareMigrateCmd(s, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                               NULL) != 0 ||
        cocoFirmwareMigrateCmd(d, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                               NULL) != 0)
        die("key exchange", NULL);
}

/* One whole-memory migration (epoch 0 at the switchover gate) of @mem to
 * @dmem with the emulated firmware; returns seconds from Start to the
 * destination's start token. */
static double
benchPipeline(uint8_t *mem, uint8_t *dmem, size_t size, unsigned int streams,
              unsigned int ppb)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoEmuPlatform) pf = cocoEmuPlatformNew(&err);
    g_autoptr(CocoFirmware) sfw = NULL;
    g_autoptr(CocoFirmware) dfw = NULL;
    g_autoptr(CocoDirtySource) dirty =
        useHash ? cocoDirtyHashNew(mem, size / PAGE, 5)
                : cocoDirtyBitmapNew(size / PAGE);
    g_autoptr(CocoTransferSource) src = NULL;
    g_autoptr(CocoTransferDest) dst = NULL;
    g_autofree GIOStream **sio = g_new0(GIOStream *, streams);
    g_autofree GIOStream **dio = g_new0(GIOStream *, streams);
    CocoTransferConfig cfg;
    CocoMigrationDef def;
    CocoFirmwareVm vm = {.uuid = {0x42}, .nvcpus = 1, .memory = size};
    unsigned int i;
    double t0, t, c0;

    memset(&def, 0, sizeof(def));
    def.has_streams = true;
    def.forward_streams = streams;
    if (!pf ||
        !(sfw = cocoEmuNew(COCO_FIRMWARE_ROLE_SOURCE, pf, &def, &vm, &err)) ||
        !(dfw = cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, pf, &def, &vm,
                           &err)) ||
        cocoEmuAttachMemory(sfw, mem, size, &err) < 0 ||
        cocoEmuAttachMemory(dfw, dmem, size, &err) < 0)
        die("emulated firmware", err);
    keyExchange(sfw, dfw);
    for (i = 0; i < streams; i++) {
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            die("socketpair", NULL);
        if (sockbuf) {
            setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof(sockbuf));
            setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof(sockbuf));
        }
        sio[i] = socketStream(sv[0]);
        dio[i] = socketStream(sv[1]);
    }
    cocoTransferConfigInit(&cfg, NULL);
    cfg.streams = streams;
    cfg.pages_per_bundle = ppb;
    if (!(dst = cocoTransferDestNew(dfw, &cfg, dio, &err)) ||
        !(src = cocoTransferSourceNew(sfw, dirty, &cfg, sio, &err)))
        die("transfer engine", err);

    c0 = cpuNow();
    t0 = now();
    if (capRate) {
        CocoTransferStats ts;
        double r0;

        /* One capped precopy round (all memory), measured alone. */
        cocoTransferSourceSetMaxBandwidth(src, capRate);
        if (cocoTransferDestStart(dst, &err) < 0 ||
            cocoTransferSourceStart(src, &err) < 0)
            die("migration", err);
        cocoTransferSourceGetStats(src, &ts);
        r0 = (double)ts.bytes;
        t = now();
        if (cocoTransferSourceRound(src, NULL, &err) < 0)
            die("precopy round", err);
        t = now() - t;
        cocoTransferSourceGetStats(src, &ts);
        capMeasured = ((double)ts.bytes - r0) / t;
    }
    if ((!capRate && (cocoTransferDestStart(dst, &err) < 0 ||
                      cocoTransferSourceStart(src, &err) < 0)) ||
        cocoTransferSourceSync(src, &err) < 0 ||
        cocoFirmwareMigrateCmd(sfw, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL,
                               NULL, NULL, &err) < 0 ||
        cocoTransferSourceFinish(src, 1, &err) < 0 ||
        cocoTransferDestWait(dst, &err) < 0)
        die("migration", err);
    t = now() - t0;
    lastCpu = cpuNow() - c0;
    if (memcmp(mem, dmem, size) != 0)
        die("destination memory differs", NULL);
    for (i = 0; i < streams; i++) {
        g_object_unref(sio[i]);
        g_object_unref(dio[i]);
    }
    return t;
}

/* The firmware alone: export every page in 512-page bundles into one
 * buffer and import each at once on the destination, on one thread,
 * with the same start/end steps as the pipeline. Seconds. */
static double
benchFirmware(uint8_t *mem, uint8_t *dmem, size_t size)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoEmuPlatform) pf = cocoEmuPlatformNew(&err);
    g_autoptr(CocoFirmware) sfw = NULL;
    g_autoptr(CocoFirmware) dfw = NULL;
    size_t cap = cocoEmuMemoryBundleSize(512);
    g_autofree uint8_t *buf = g_malloc(cap);
    g_autofree uint64_t *gfns = g_new(uint64_t, 512);
    uint8_t state[COCO_EMU_VCPU_BUNDLE_MAX];
    uint64_t npages = size / PAGE, g = 0;
    CocoMigrationDef def;
    CocoFirmwareVm vm = {.uuid = {0x42}, .nvcpus = 1, .memory = size};
    size_t len;
    double t0, c0;

    memset(&def, 0, sizeof(def));
    if (!pf ||
        !(sfw = cocoEmuNew(COCO_FIRMWARE_ROLE_SOURCE, pf, &def, &vm, &err)) ||
        !(dfw = cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, pf, &def, &vm,
                           &err)) ||
        cocoEmuAttachMemory(sfw, mem, size, &err) < 0 ||
        cocoEmuAttachMemory(dfw, dmem, size, &err) < 0)
        die("emulated firmware", err);
    keyExchange(sfw, dfw);

    c0 = cpuNow();
    t0 = now();
    len = sizeof(state);
    if (cocoFirmwareMigrateCmd(sfw, COCO_MIGRATE_CMD_SETUP, 0, state, &len,
                               NULL, &err) < 0 ||
        cocoFirmwareMigrateCmd(dfw, COCO_MIGRATE_CMD_SETUP, 0, state, &len,
                               NULL, &err) < 0 ||
        cocoFirmwareMigrateCmd(sfw, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL,
                               NULL, NULL, &err) < 0)
        die("setup", err);
    while (g < npages) {
        uint32_t n = 0;

        while (n < 512 && g < npages)
            gfns[n++] = g++;
        len = cap;
        if (cocoFirmwareExportMemory(sfw, 0, gfns, n, NULL, buf, &len, NULL,
                                     &err) < 0 ||
            cocoFirmwareImportMemory(dfw, 0, buf, len, NULL, &err) < 0)
            die("memory", err);
    }
    len = sizeof(state);
    if (cocoFirmwareExportVcpu(sfw, 0, state, &len, NULL, &err) < 0 ||
        cocoFirmwareImportVcpu(dfw, 0, state, len, NULL, &err) < 0)
        die("vcpu", err);
    len = sizeof(state);
    if (cocoFirmwareMigrateCmd(sfw, COCO_MIGRATE_CMD_TOKEN,
                               COCO_MIGRATE_TOKEN_START, state, &len, NULL,
                               &err) < 0 ||
        cocoFirmwareMigrateCmd(dfw, COCO_MIGRATE_CMD_TOKEN,
                               COCO_MIGRATE_TOKEN_START, state, &len, NULL,
                               &err) < 0)
        die("start token", err);
    t0 = now() - t0;
    lastCpu = cpuNow() - c0;
    return t0;
}

/* Per side: @threads threads each export their share of the pages on their
 * own stream (512-page bundles, kept), then @threads threads import them
 * on a destination; the export side and the import side are timed apart,
 * as a source and a destination host each have their own cores. */
typedef struct {
    CocoFirmware *fw;
    uint32_t stream;
    uint64_t first;
    uint64_t count;
    GPtrArray *bundles;
} SideJob;

static gpointer
sideExport(gpointer opaque)
{
    SideJob *j = opaque;
    uint64_t gfns[512];
    uint64_t g = j->first;
    uint64_t end = j->first + j->count;

    guint k = 0;

    while (g < end) {
        uint32_t n = 0;
        GByteArray *b = g_ptr_array_index(j->bundles, k++);
        size_t len = b->len;

        while (n < 512 && g < end)
            gfns[n++] = g++;
        if (cocoFirmwareExportMemory(j->fw, j->stream, gfns, n, NULL, b->data,
                                     &len, NULL, NULL) < 0)
            die("export", NULL);
        g_byte_array_set_size(b, len);
    }
    return NULL;
}

static gpointer
sideImport(gpointer opaque)
{
    SideJob *j = opaque;
    guint i;

    for (i = 0; i < j->bundles->len; i++) {
        GByteArray *b = g_ptr_array_index(j->bundles, i);

        if (cocoFirmwareImportMemory(j->fw, j->stream, b->data, b->len, NULL,
                                     NULL) < 0)
            die("import", NULL);
    }
    return NULL;
}

static void
benchSides(uint8_t *mem, uint8_t *dmem, size_t size, unsigned int threads,
           SrcMode mode, double *exp, double *expcpu, double *imp,
           double *impcpu)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoEmuPlatform) pf = cocoEmuPlatformNew(&err);
    g_autoptr(CocoFirmware) sfw = NULL;
    g_autoptr(CocoFirmware) dfw = NULL;
    uint8_t setup[COCO_EMU_SETUP_BUNDLE_SIZE];
    SideJob jobs[16];
    GThread *th[16];
    uint64_t npages = size / PAGE;
    CocoMigrationDef def;
    CocoFirmwareVm vm = {.uuid = {0x42}, .nvcpus = 1, .memory = size};
    size_t len = sizeof(setup);
    size_t bsize = cocoEmuMemoryBundleSize(512);
    double t0, c0;
    uint64_t g;
    unsigned int i;

    memset(&def, 0, sizeof(def));
    def.has_streams = true;
    def.forward_streams = threads;
    if (!pf ||
        !(sfw = cocoEmuNew(COCO_FIRMWARE_ROLE_SOURCE, pf, &def, &vm, &err)) ||
        !(dfw = cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, pf, &def, &vm,
                           &err)) ||
        cocoEmuAttachMemory(dfw, dmem, size, &err) < 0)
        die("emulated firmware", err);
    attachSource(sfw, mem, size, mode);
    keyExchange(sfw, dfw);
    if (cocoFirmwareMigrateCmd(sfw, COCO_MIGRATE_CMD_SETUP, 0, setup, &len,
                               NULL, &err) < 0 ||
        cocoFirmwareMigrateCmd(dfw, COCO_MIGRATE_CMD_SETUP, 0, setup, &len,
                               NULL, &err) < 0)
        die("setup", err);

    for (i = 0; i < threads; i++) {
        jobs[i].fw = sfw;
        jobs[i].stream = i;
        jobs[i].first = npages / threads * i;
        jobs[i].count =
            i + 1 == threads ? npages - jobs[i].first : npages / threads;
        jobs[i].bundles =
            g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
        /* The bundle buffers exist and are touched before the clock runs,
         * as a sender's reused buffers would be. */
        for (g = 0; g < jobs[i].count; g += 512) {
            GByteArray *b = g_byte_array_sized_new(bsize);

            g_byte_array_set_size(b, bsize);
            memset(b->data, 0, bsize);
            g_ptr_array_add(jobs[i].bundles, b);
        }
    }
    c0 = cpuNow();
    t0 = now();
    for (i = 0; i < threads; i++)
        th[i] = g_thread_new("export", sideExport, &jobs[i]);
    for (i = 0; i < threads; i++)
        g_thread_join(th[i]);
    *exp = now() - t0;
    *expcpu = cpuNow() - c0;

    c0 = cpuNow();
    t0 = now();
    for (i = 0; i < threads; i++) {
        jobs[i].fw = dfw;
        th[i] = g_thread_new("import", sideImport, &jobs[i]);
    }
    for (i = 0; i < threads; i++)
        g_thread_join(th[i]);
    *imp = now() - t0;
    *impcpu = cpuNow() - c0;
    for (i = 0; i < threads; i++)
        g_ptr_array_unref(jobs[i].bundles);
    if (memcmp(mem, dmem, size) != 0)
        die("destination memory differs", NULL);
}

typedef struct {
    const uint8_t *mem;
    size_t off;
    size_t len;
} GcmJob;

static gpointer
gcmThread(gpointer opaque)
{
    GcmJob *j = opaque;
    gnutls_aead_cipher_hd_t h;
    uint8_t keybuf[32], iv[12] = {0};
    gnutls_datum_t key = {keybuf, sizeof(keybuf)};
    uint8_t out[PAGE + 16];
    size_t off;

    memset(keybuf, 7, sizeof(keybuf));
    if (gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &key) < 0)
        die("gnutls_aead_cipher_init", NULL);
    for (off = j->off; off < j->off + j->len; off += PAGE) {
        size_t ctlen = sizeof(out);

        memcpy(iv, &off, sizeof(off));
        if (gnutls_aead_cipher_encrypt(h, iv, sizeof(iv), NULL, 0, 16,
                                       j->mem + off, PAGE, out, &ctlen) < 0)
            die("encrypt", NULL);
    }
    gnutls_aead_cipher_deinit(h);
    return NULL;
}

/* Raw AES-256-GCM encryption of the region split over @threads threads:
 * what the machine itself gives when more threads encrypt. Seconds. */
static double
benchGcmThreads(const uint8_t *mem, size_t size, unsigned int threads)
{
    GcmJob jobs[16];
    GThread *th[16];
    double t0 = now();
    size_t share = size / threads / PAGE * PAGE;
    unsigned int i;

    for (i = 0; i < threads; i++) {
        jobs[i].mem = mem;
        jobs[i].off = share * i;
        jobs[i].len = i + 1 == threads ? size - jobs[i].off : share;
        th[i] = g_thread_new("gcm", gcmThread, &jobs[i]);
    }
    for (i = 0; i < threads; i++)
        g_thread_join(th[i]);
    return now() - t0;
}

static void
benchScan(uint8_t *mem, uint8_t *copy, size_t size, double *hash, double *cmp,
          double *cpy)
{
    uint64_t npages = size / PAGE;
    g_autoptr(CocoDirtySource) src = cocoDirtyHashNew(mem, npages, 1);
    g_autofree uint64_t *out = g_new0(uint64_t, cocoDirtyWords(npages));
    uint64_t i, found = 0;
    int r;

    /* Seed the hashes as an export of every page would. */
    for (i = 0; i < npages; i++) {
        uint64_t h;
        uint8_t ok = 0;

        cocoDirtySourceExportBegin(src, &i, 1, &h);
        cocoDirtySourceExportEnd(src, &i, 1, &ok, &h);
    }
    *hash = *cmp = *cpy = 1e9;
    for (r = 0; r < RUNS; r++) {
        double t0 = now();
        size_t off;
        int diff = 0;

        found += cocoDirtySourceCollect(src, out, 0, cocoDirtyWords(npages));
        *hash = MIN(*hash, now() - t0);

        t0 = now();
        for (off = 0; off < size; off += PAGE)
            diff += memcmp(mem + off, copy + off, PAGE) != 0;
        *cmp = MIN(*cmp, now() - t0);
        if (diff)
            die("memcmp found a difference", NULL);

        t0 = now();
        memcpy(copy, mem, size);
        *cpy = MIN(*cpy, now() - t0);
    }
    if (found)
        die("hash scan found a change", NULL);
}

/*
 * The first write of each page of a RAM file (a memfd, reserved with
 * fallocate as the destination's is): through a shared mapping, one page
 * at a time as a decryption in place would write it, against pwrite() of
 * 64-page runs as the emulated firmware writes imported pages. CPU
 * seconds of each, best of RUNS.
 */
static void
benchFileWrite(const uint8_t *mem, size_t size, double *mapped, double *written)
{
    int r;

    *mapped = *written = 1e9;
    for (r = 0; r < RUNS; r++) {
        int mode;

        for (mode = 0; mode < 2; mode++) {
            int fd = memfd_create("write-bench", MFD_CLOEXEC);
            size_t run = 64 * PAGE;
            double c0;
            size_t off;

            if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
                fallocate(fd, 0, 0, (off_t)size) < 0)
                die("memfd", NULL);
            c0 = cpuNow();
            if (mode == 0) {
                uint8_t *m =
                    mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

                if (m == MAP_FAILED)
                    die("mmap", NULL);
                for (off = 0; off < size; off += PAGE)
                    memcpy(m + off, mem + off, PAGE);
                *mapped = MIN(*mapped, cpuNow() - c0);
                munmap(m, size);
            } else {
                for (off = 0; off < size; off += run) {
                    if (pwrite(fd, mem + off, MIN(run, size - off),
                               (off_t)off) != (ssize_t)MIN(run, size - off))
                        die("pwrite", NULL);
                }
                *written = MIN(*written, cpuNow() - c0);
            }
            close(fd);
        }
    }
}

/* ---- two processes over loopback TCP ------------------------------- */

/* A listening socket on 127.0.0.1; its port in *@port. */
static int
tcpListen(unsigned int *port)
{
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(fd, 64) < 0 || getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
        die("listen", NULL);
    *port = ntohs(a.sin_port);
    return fd;
}

static int
tcpConnect(unsigned int port)
{
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connect", NULL);
    return fd;
}

static void
fullIo(int fd, void *buf, size_t len, bool wr)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = wr ? write(fd, p, len) : read(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die(wr ? "write" : "read", NULL);
        p += n;
        len -= (size_t)n;
    }
}

/* What a destination process reports: its CPU seconds and a checksum of
 * the memory it received. */
typedef struct {
    double cpu;
    uint64_t sum;
} ChildResult;

static uint64_t
memSum(const uint8_t *mem, size_t size)
{
    uint64_t h = 0;
    size_t off;

    for (off = 0; off < size; off += PAGE)
        h = h * 1000003 ^ cocoPageHash(mem + off, 11);
    return h;
}

/* Wait for the destination process; its result. */
static ChildResult
childWait(pid_t pid, int rfd)
{
    ChildResult cr;
    int st;

    fullIo(rfd, &cr, sizeof(cr), false);
    close(rfd);
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("destination process", NULL);
    return cr;
}

/* The destination's guest memory, untouched: anonymous memory, or with
 * @file an empty RAM file (a memfd, *@fd; else -1) mapped shared with
 * @prot. The destination faults in or writes its pages. */
static uint8_t *
destMemory(size_t size, bool file, int prot, int *fd)
{
    void *m;

    *fd = -1;
    if (file && ((*fd = memfd_create("dest-ram", MFD_CLOEXEC)) < 0 ||
                 ftruncate(*fd, (off_t)size) < 0))
        die("memfd", NULL);
    if (file)
        m = mmap(NULL, size, prot, MAP_SHARED, *fd, 0);
    else
        m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        die("destination memory", NULL);
    return m;
}

static void
destMemoryFree(uint8_t *m, size_t size, int fd)
{
    munmap(m, size);
    if (fd >= 0)
        close(fd);
}

/*
 * The whole engine as between two hosts: the source here, the
 * destination in a child process, @streams loopback TCP connections, from
 * cocoTransferSourceStart() to the destination's start token. With
 * @dstFile the destination's guest memory is a file (a memfd), as the
 * agent's is, rather than anonymous memory; @mode: the source's
 * (attachSource()). Returns the wall seconds;
 * *@cpu the CPU seconds of both processes, *@recv the destination's.
 */
static double
benchTcp(uint8_t *mem, size_t size, unsigned int streams, unsigned int ppb,
         bool dstFile, SrcMode mode, double *cpu, double *recv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoEmuPlatform) pf = cocoEmuPlatformNew(&err);
    g_autoptr(CocoFirmware) sfw = NULL;
    g_autoptr(CocoFirmware) dfw = NULL;
    g_autoptr(CocoDirtySource) dirty = NULL;
    g_autoptr(CocoTransferSource) src = NULL;
    g_autofree GIOStream **sio = g_new0(GIOStream *, streams);
    uint8_t *dmem;
    CocoTransferConfig cfg;
    CocoMigrationDef def;
    CocoFirmwareVm vm = {.uuid = {0x42}, .nvcpus = 1, .memory = size};
    ChildResult cr;
    unsigned int port;
    unsigned int i;
    int lfd;
    int mfd;
    int pfd[2];
    pid_t pid;
    double t0, c0, t;

    memset(&def, 0, sizeof(def));
    def.has_streams = true;
    def.forward_streams = streams;
    /* The firmware writes the file through its own mapping. */
    dmem = destMemory(size, dstFile, PROT_READ, &mfd);
    if (!pf ||
        !(sfw = cocoEmuNew(COCO_FIRMWARE_ROLE_SOURCE, pf, &def, &vm, &err)) ||
        !(dfw = cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, pf, &def, &vm,
                           &err)) ||
        (dstFile ? cocoEmuAttachMemoryFd(dfw, mfd, 0, size, &err)
                 : cocoEmuAttachMemory(dfw, dmem, size, &err)) < 0)
        die("emulated firmware", err);
    attachSource(sfw, mem, size, mode);
    keyExchange(sfw, dfw);
    cocoTransferConfigInit(&cfg, NULL);
    cfg.streams = streams;
    cfg.pages_per_bundle = ppb;
    lfd = tcpListen(&port);
    if (pipe(pfd) < 0)
        die("pipe", NULL);
    fflush(stdout);
    if ((pid = fork()) < 0)
        die("fork", NULL);
    if (pid == 0) {
        g_autofree GIOStream **dio = g_new0(GIOStream *, streams);
        g_autoptr(CocoTransferDest) dst = NULL;
        double d0 = cpuNow();

        close(pfd[0]);
        for (i = 0; i < streams; i++)
            dio[i] = socketStream(accept4(lfd, NULL, NULL, SOCK_CLOEXEC));
        if (!(dst = cocoTransferDestNew(dfw, &cfg, dio, &err)) ||
            cocoTransferDestRun(dst, &err) < 0)
            die("destination", err);
        cr.cpu = cpuNow() - d0;
        cr.sum = memSum(dmem, size);
        fullIo(pfd[1], &cr, sizeof(cr), true);
        _exit(0);
    }
    close(pfd[1]);
    close(lfd);
    for (i = 0; i < streams; i++)
        sio[i] = socketStream(tcpConnect(port));
    dirty = cocoDirtyFirmwareNew(sfw, size / PAGE);
    if (!(src = cocoTransferSourceNew(sfw, dirty, &cfg, sio, &err)))
        die("transfer source", err);
    c0 = cpuNow();
    t0 = now();
    if (cocoTransferSourceStart(src, &err) < 0 ||
        cocoTransferSourceSync(src, &err) < 0 ||
        cocoFirmwareMigrateCmd(sfw, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL,
                               NULL, NULL, &err) < 0 ||
        cocoTransferSourceFinish(src, 1, &err) < 0)
        die("migration", err);
    cr = childWait(pid, pfd[0]);
    t = now() - t0;
    *cpu = cpuNow() - c0 + cr.cpu;
    *recv = cr.cpu;
    if (cr.sum != memSum(mem, size))
        die("destination memory differs", NULL);
    for (i = 0; i < streams; i++)
        g_object_unref(sio[i]);
    destMemoryFree(dmem, size, mfd);
    return t;
}

/* One stream of the bare pipeline: every @streams-th run of @batch pages
 * from @stream on, sent or received on @fd with its own cipher handle. */
typedef struct {
    const uint8_t *src;
    uint8_t *dst;
    size_t size;
    unsigned int batch;
    unsigned int stream;
    unsigned int streams;
    int fd;
    bool send;
} BareStream;

static gnutls_aead_cipher_hd_t
bareCipher(void)
{
    uint8_t keybuf[32];
    gnutls_datum_t key = {keybuf, sizeof(keybuf)};
    gnutls_aead_cipher_hd_t h;

    memset(keybuf, 7, sizeof(keybuf));
    if (gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &key) < 0)
        die("bare pipeline", NULL);
    return h;
}

/* One stream's batches: encrypt each page and send the batch, or receive
 * the batch and decrypt each page into the destination (@b->send). */
static gpointer
bareStream(gpointer opaque)
{
    BareStream *b = opaque;
    size_t rec = PAGE + 16;
    size_t step = (size_t)b->batch * PAGE * b->streams;
    g_autofree uint8_t *buf = g_malloc((size_t)b->batch * rec);
    gnutls_aead_cipher_hd_t h = bareCipher();
    uint8_t iv[12] = {0};
    size_t first;

    for (first = (size_t)b->stream * b->batch * PAGE; first < b->size;
         first += step) {
        size_t n = MIN((size_t)b->batch, (b->size - first) / PAGE);
        size_t k;

        if (!b->send)
            fullIo(b->fd, buf, n * rec, false);
        for (k = 0; k < n; k++) {
            size_t off = first + k * PAGE;
            size_t len = b->send ? rec : PAGE;

            memcpy(iv, &off, sizeof(off));
            if ((b->send ? gnutls_aead_cipher_encrypt(h, iv, sizeof(iv), NULL,
                                                      0, 16, b->src + off, PAGE,
                                                      buf + k * rec, &len)
                         : gnutls_aead_cipher_decrypt(h, iv, sizeof(iv), NULL,
                                                      0, 16, buf + k * rec, rec,
                                                      b->dst + off, &len)) < 0)
                die(b->send ? "encrypt" : "decrypt", NULL);
        }
        if (b->send)
            fullIo(b->fd, buf, n * rec, true);
    }
    gnutls_aead_cipher_deinit(h);
    return NULL;
}

/* Run @streams threads, one BareStream each, sending (@send) or
 * receiving; wait for them all. */
static void
bareRun(BareStream *b, unsigned int streams, bool send)
{
    GThread *th[8];
    unsigned int i;

    for (i = 0; i < streams; i++) {
        b[i].send = send;
        th[i] = g_thread_new("bare", bareStream, &b[i]);
    }
    for (i = 0; i < streams; i++)
        g_thread_join(th[i]);
}

/*
 * The bare reference of the same path: GnuTLS AES-256-GCM per 4 KiB page
 * (fresh IV), @batch pages' ciphertexts and tags sent in one write on
 * each of @streams loopback TCP connections (a thread each, every
 * @streams-th batch), received in one read and decrypted page by page
 * into fresh memory in a child process. Nothing else: no hashes, no
 * framing, no order or replay checks. With @srcFile the sender reads the
 * source's RAM file through a mapping of its own, made in the measured
 * time, as any process but QEMU must (the agent's firmware does); with
 * @dstFile the receiver decrypts into a fresh RAM file (a memfd) through
 * a shared mapping. Wall seconds; *@cpu both processes', *@recv the
 * receiving process's.
 */
static double
benchBareTcp(const uint8_t *mem, size_t size, unsigned int batch,
             unsigned int streams, bool srcFile, bool dstFile, double *cpu,
             double *recv)
{
    BareStream b[8];
    const uint8_t *src = mem;
    uint8_t *dmem;
    ChildResult cr;
    unsigned int port;
    unsigned int i;
    int dfd;
    int lfd;
    int pfd[2];
    pid_t pid;
    double t0, c0, t;

    g_assert(streams >= 1 && streams <= G_N_ELEMENTS(b));
    dmem = destMemory(size, dstFile, PROT_READ | PROT_WRITE, &dfd);
    for (i = 0; i < streams; i++)
        b[i] = (BareStream){.dst = dmem,
                            .size = size,
                            .batch = batch,
                            .stream = i,
                            .streams = streams};
    lfd = tcpListen(&port);
    if (pipe(pfd) < 0)
        die("pipe", NULL);
    fflush(stdout);
    if ((pid = fork()) < 0)
        die("fork", NULL);
    if (pid == 0) {
        double d0 = cpuNow();

        close(pfd[0]);
        /* The sender connects in stream order. */
        for (i = 0; i < streams; i++)
            b[i].fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        bareRun(b, streams, false);
        cr.cpu = cpuNow() - d0;
        cr.sum = memSum(dmem, size);
        fullIo(pfd[1], &cr, sizeof(cr), true);
        _exit(0);
    }
    close(pfd[1]);
    close(lfd);
    for (i = 0; i < streams; i++)
        b[i].fd = tcpConnect(port);
    c0 = cpuNow();
    t0 = now();
    if (srcFile &&
        (src = mmap(NULL, size, PROT_READ, MAP_SHARED, srcFd, 0)) == MAP_FAILED)
        die("bare pipeline: source RAM file", NULL);
    for (i = 0; i < streams; i++)
        b[i].src = src;
    bareRun(b, streams, true);
    cr = childWait(pid, pfd[0]);
    t = now() - t0;
    *cpu = cpuNow() - c0 + cr.cpu;
    *recv = cr.cpu;
    for (i = 0; i < streams; i++)
        close(b[i].fd);
    if (cr.sum != memSum(mem, size))
        die("bare pipeline: destination memory differs", NULL);
    if (src != mem)
        munmap((void *)src, size);
    destMemoryFree(dmem, size, dfd);
    return t;
}

/* The best of a two-process configuration's runs: its best wall
 * seconds; the CPU seconds of its least costly run and, of that run, the
 * receiving process's. */
typedef struct {
    double wall;
    double cpu;
    double recv;
} TcpBest;

#define TCP_BEST_INIT                                                          \
 {                                                                             \
  1e9, 1e9, 0                                                                  \
 }

static void
tcpBestAdd(TcpBest *b, double wall, double cpu, double recv)
{
    b->wall = MIN(b->wall, wall);
    if (cpu < b->cpu) {
        b->cpu = cpu;
        b->recv = recv;
    }
}

/* Run @fn RUNS times; best wall and best CPU seconds. */
typedef double (*BenchFunc)(uint8_t *mem, uint8_t *dmem, size_t size,
                            unsigned int streams, unsigned int ppb);

static double
benchFirmwareRun(uint8_t *mem, uint8_t *dmem, size_t size, unsigned int streams,
                 unsigned int ppb)
{
    return benchFirmware(mem, dmem, size);
}

static void
best(BenchFunc fn, uint8_t *mem, uint8_t *dmem, size_t size,
     unsigned int streams, unsigned int ppb, double *wall, double *cpu)
{
    int r;

    *wall = *cpu = 1e9;
    for (r = 0; r < RUNS; r++) {
        memset(dmem, 0, size);
        *wall = MIN(*wall, fn(mem, dmem, size, streams, ppb));
        *cpu = MIN(*cpu, lastCpu);
    }
}

int
main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)g_ascii_strtoull(argv[1], NULL, 10) : 256;
    size_t size;
    static const struct {
        unsigned int streams;
        unsigned int ppb;
    } runs[] = {{1, 512}, {2, 512}, {4, 512}, {4, 64}, {4, 1}};
    /* The last: the lab's shape, the destination's guest RAM a file the
     * agent writes (docs/performance.rst, "Writing the destination's
     * pages"). */
    static const struct {
        unsigned int streams;
        unsigned int ppb;
        bool file;
        SrcMode src;
    } tcpRuns[] = {
        {1, 64, false, SRC_REGION}, {1, 512, false, SRC_REGION},
        {4, 64, false, SRC_REGION}, {4, 512, false, SRC_REGION},
        {4, 64, true, SRC_REGION},  {1, 512, false, SRC_FILE},
        {1, 512, false, SRC_LOG},   {4, 512, false, SRC_LOG},
        {4, 512, true, SRC_LOG},
    };
    static const unsigned int bareBatch[] = {1, 64, 512};
    double bare[G_N_ELEMENTS(bareBatch)];
    double barewall[G_N_ELEMENTS(bareBatch)];
    uint8_t *mem, *dmem;
    double enc, dec, gcmcpu, enccpu, deccpu, gcm, fw, fwcpu, wall, cpu;
    double hash, cmp, cpy;
    double mb;
    size_t i;
    int r;

    if (mib == 0)
        mib = 256;
    size = mib * 1024 * 1024;
    mb = (double)mib;
    if (g_getenv("COCO_BENCH_SOCKBUF"))
        sockbuf = atoi(g_getenv("COCO_BENCH_SOCKBUF"));
    /* The source's guest memory is a RAM file, as QEMU's is. */
    if ((srcFd = memfd_create("source-ram", MFD_CLOEXEC)) < 0 ||
        ftruncate(srcFd, (off_t)size) < 0 ||
        (mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, srcFd,
                    0)) == MAP_FAILED)
        die("source memory", NULL);
    dmem = g_aligned_alloc0(size, 1, PAGE);
    for (i = 0; i < size / 8; i++)
        ((uint64_t *)(void *)mem)[i] = (uint64_t)i * 0x9E3779B97F4A7C15ULL;
    startVmm(size);

    printf("# libvirt-coco transfer benchmark, %zu MiB region, best of %d; "
           "wall = MiB per elapsed second, cpu = MiB per CPU second of all "
           "threads (and processes); every ratio divides cpu by cpu or wall "
           "by wall\n",
           mib, RUNS);
    benchGcm(mem, size, &enc, &dec, &gcmcpu, &enccpu, &deccpu);
    gcm = enc + dec;
    printf("raw AES-256-GCM (GnuTLS %s, 4 KiB per call): encrypt wall %.0f "
           "cpu %.0f, decrypt wall %.0f cpu %.0f, encrypt+decrypt wall %.0f "
           "cpu %.0f MiB/s\n",
           gnutls_check_version(NULL), mb / enc, mb / enccpu, mb / dec,
           mb / deccpu, mb / gcm, mb / gcmcpu);

    best(benchFirmwareRun, mem, dmem, size, 1, 512, &fw, &fwcpu);
    printf("emulated firmware alone (export+import on one thread, no I/O): "
           "wall %.0f cpu %.0f MiB/s; vs raw GCM wall %.2f cpu %.2f\n",
           mb / fw, mb / fwcpu, gcm / fw, gcmcpu / fwcpu);

    {
        static const unsigned int sides[] = {1, 2, 4};
        double exp1 = 0, imp1 = 0, gcm1 = 0;

        for (i = 0; i < G_N_ELEMENTS(sides); i++) {
            double exp = 1e9, expcpu = 1e9, imp = 1e9, impcpu = 1e9;
            double sexp[SRC_LOG + 1], sexpcpu[SRC_LOG + 1];
            double g = 1e9;
            SrcMode m;
            /* The raw reference again, between the runs it is compared
             * with: the machine's speed drifts within a run. */
            double renc = 1e9, rdec = 1e9, renccpu = 1e9, rdeccpu = 1e9;

            for (m = SRC_FILE; m <= SRC_LOG; m++)
                sexp[m] = sexpcpu[m] = 1e9;

            for (r = 0; r < RUNS; r++) {
                double e, ec, im, mc, re, rd, rg, rec, rdc;

                benchGcm(mem, size, &re, &rd, &rg, &rec, &rdc);
                renc = MIN(renc, re);
                rdec = MIN(rdec, rd);
                renccpu = MIN(renccpu, rec);
                rdeccpu = MIN(rdeccpu, rdc);
                memset(dmem, 0, size);
                benchSides(mem, dmem, size, sides[i], SRC_REGION, &e, &ec, &im,
                           &mc);
                exp = MIN(exp, e);
                expcpu = MIN(expcpu, ec);
                imp = MIN(imp, im);
                impcpu = MIN(impcpu, mc);
                for (m = SRC_FILE; m <= SRC_LOG; m++) {
                    if (m == SRC_LOG && vmmPid < 0)
                        continue;
                    memset(dmem, 0, size);
                    benchSides(mem, dmem, size, sides[i], m, &e, &ec, &im, &mc);
                    sexp[m] = MIN(sexp[m], e);
                    sexpcpu[m] = MIN(sexpcpu[m], ec);
                }
                g = MIN(g, benchGcmThreads(mem, size, sides[i]));
            }
            if (i == 0) {
                exp1 = exp;
                imp1 = imp;
                gcm1 = g;
            }
            printf("raw AES-256-GCM encrypt on %u thread(s): wall %.0f MiB/s; "
                   "scaling vs 1 thread %.2f\n",
                   sides[i], mb / g, gcm1 / g);
            printf("export side %u stream(s) on %u thread(s), %s: wall %.0f "
                   "cpu %.0f MiB/s; vs raw encrypt cpu %.2f wall %.2f; "
                   "scaling vs 1 stream %.2f\n",
                   sides[i], sides[i], srcModeName[SRC_REGION], mb / exp,
                   mb / expcpu, renccpu / expcpu, renc / exp, exp1 / exp);
            for (m = SRC_FILE; m <= SRC_LOG; m++) {
                if (sexp[m] < 1e9)
                    printf("export side %u stream(s) on %u thread(s), %s: "
                           "wall %.0f cpu %.0f MiB/s; vs raw encrypt cpu %.2f "
                           "%swall %.2f\n",
                           sides[i], sides[i], srcModeName[m], mb / sexp[m],
                           mb / sexpcpu[m], renccpu / sexpcpu[m],
                           m == SRC_LOG ? "(goal >= 0.9) " : "",
                           renc / sexp[m]);
            }
            printf("import side %u stream(s) on %u thread(s): wall %.0f cpu "
                   "%.0f MiB/s; vs raw decrypt cpu %.2f (goal >= 0.9) wall "
                   "%.2f; scaling vs 1 stream %.2f\n",
                   sides[i], sides[i], mb / imp, mb / impcpu, rdeccpu / impcpu,
                   rdec / imp, imp1 / imp);
        }
    }

    for (i = 0; i < G_N_ELEMENTS(bareBatch); i++) {
        bare[i] = barewall[i] = 1e9;
        for (r = 0; r < RUNS; r++) {
            double c, rc;

            barewall[i] =
                MIN(barewall[i], benchBareTcp(mem, size, bareBatch[i], 1, false,
                                              false, &c, &rc));
            bare[i] = MIN(bare[i], c);
        }
        printf("bare GnuTLS encrypt->send->recv->decrypt, two processes, "
               "loopback TCP, %u page(s) per write: wall %.0f cpu %.0f "
               "MiB/s\n",
               bareBatch[i], mb / barewall[i], mb / bare[i]);
    }
    for (i = 0; i < G_N_ELEMENTS(tcpRuns); i++) {
        size_t b = tcpRuns[i].ppb >= 512 ? 2 : 1;
        unsigned int streams = tcpRuns[i].streams;
        bool sfile = tcpRuns[i].src != SRC_REGION;
        bool files = sfile || tcpRuns[i].file;
        /* The reference of the same shape: as many streams, the same
         * memories (the lab's shape where they are files). */
        bool shaped = files || streams > 1;
        TcpBest eng = TCP_BEST_INIT, ref = TCP_BEST_INIT;
        TcpBest shape = TCP_BEST_INIT;
        g_autofree char *same = NULL;

        if (tcpRuns[i].src == SRC_LOG && vmmPid < 0)
            continue;
        /* The bare references again, run by run between the engine's
         * runs: two processes on loopback drift more than one loop. */
        for (r = 0; r < TCP_RUNS; r++) {
            double w, c, rc;

            w = benchBareTcp(mem, size, bareBatch[b], 1, false, false, &c, &rc);
            tcpBestAdd(&ref, w, c, rc);
            if (shaped) {
                w = benchBareTcp(mem, size, bareBatch[b], streams, sfile,
                                 tcpRuns[i].file, &c, &rc);
                tcpBestAdd(&shape, w, c, rc);
            }
            w = benchTcp(mem, size, streams, tcpRuns[i].ppb, tcpRuns[i].file,
                         tcpRuns[i].src, &c, &rc);
            tcpBestAdd(&eng, w, c, rc);
        }
        if (!shaped)
            shape = ref;
        else
            same = g_strdup_printf("; vs bare of the same shape (%u "
                                   "stream(s)%s) cpu %.2f wall %.2f",
                                   streams, files ? ", the same files" : "",
                                   shape.cpu / eng.cpu, shape.wall / eng.wall);
        printf("pipeline, two processes, loopback TCP, %u stream(s) x %u "
               "pages/bundle%s%s%s: wall %.0f cpu %.0f MiB/s; vs bare with the "
               "same pages per write cpu %.2f (goal >= 1.0) wall %.2f%s; vs "
               "bare 1 page per write cpu %.2f; CPU ms sending / receiving: "
               "engine %.0f / %.0f, bare of the same shape %.0f / %.0f\n",
               streams, tcpRuns[i].ppb,
               tcpRuns[i].file ? ", the destination's memory a file" : "",
               sfile ? ", " : "", sfile ? srcModeName[tcpRuns[i].src] : "",
               mb / eng.wall, mb / eng.cpu, ref.cpu / eng.cpu,
               ref.wall / eng.wall, same ? same : "", bare[0] / eng.cpu,
               (eng.cpu - eng.recv) * 1e3, eng.recv * 1e3,
               (shape.cpu - shape.recv) * 1e3, shape.recv * 1e3);
    }

    for (i = 0; i < G_N_ELEMENTS(runs); i++) {
        best(benchPipeline, mem, dmem, size, runs[i].streams, runs[i].ppb,
             &wall, &cpu);
        printf("pipeline in one process over socketpairs, %u stream(s) x %u "
               "pages/bundle: wall %.0f cpu %.0f MiB/s; vs raw GCM wall %.2f "
               "cpu %.2f; vs firmware alone wall %.2f cpu %.2f\n",
               runs[i].streams, runs[i].ppb, mb / wall, mb / cpu, gcm / wall,
               gcmcpu / cpu, fw / wall, fwcpu / cpu);
    }

    useHash = true;
    best(benchPipeline, mem, dmem, size, 4, 64, &wall, &cpu);
    useHash = false;
    printf("pipeline 4 stream(s) x 64 pages/bundle, hash-diff dirty source: "
           "wall %.0f cpu %.0f MiB/s; vs firmware alone wall %.2f cpu %.2f\n",
           mb / wall, mb / cpu, fw / wall, fwcpu / cpu);

    /* libvirt's max-bandwidth: an eighth of the uncapped pipeline's rate
     * measured above, on all streams together, within 10 %. */
    best(benchPipeline, mem, dmem, size, 4, 64, &wall, &cpu);
    capRate = (uint64_t)(mb * 1024 * 1024 / wall / 8);
    benchPipeline(mem, dmem, size, 4, 64);
    capRate = 0;
    printf("max-bandwidth %.0f MiB/s, pipeline 4 stream(s) x 64 "
           "pages/bundle, one precopy round: %.0f MiB/s; measured/limit "
           "%.3f\n",
           (double)(mb * 1024 * 1024 / wall / 8) / 1048576.0,
           capMeasured / 1048576.0,
           capMeasured / (mb * 1024 * 1024 / wall / 8));
    if (capMeasured < 0.9 * (mb * 1024 * 1024 / wall / 8) ||
        capMeasured > 1.1 * (mb * 1024 * 1024 / wall / 8))
        die("the capped rate is not within 10 % of max-bandwidth", NULL);

    memcpy(dmem, mem, size);
    {
        double mapped, written;
        double np = (double)(size / PAGE);

        benchFileWrite(mem, size, &mapped, &written);
        printf("first writes of a RAM file's pages (CPU): through a shared "
               "mapping %.2f us/page, pwrite of 64-page runs %.2f us/page; "
               "mapping/pwrite %.1f\n",
               mapped / np * 1e6, written / np * 1e6, mapped / written);
    }

    benchScan(mem, dmem, size, &hash, &cmp, &cpy);
    printf("hash-diff scan %.0f MiB/s, memcmp against a copy %.0f MiB/s, "
           "memcpy %.0f MiB/s; scan/memcmp %.2f, scan/memcpy %.2f\n",
           mb / hash, mb / cmp, mb / cpy, cmp / hash, cpy / hash);

    stopVmm();
    munmap(mem, size);
    close(srcFd);
    g_aligned_free(dmem);
    return 0;
}
