/*
 * cocowritelog.c: which pages of a file another process wrote
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "util/cocowritelog.h"

#include "util/cocoerror.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* UAPI of Linux 6.7 (include/uapi/linux/userfaultfd.h and fs.h), newer
 * than this build's headers: the values are the documented ABI. */
#define COCO_UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1ULL << 12)
#define COCO_UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#define COCO_UFFD_FEATURE_WP_ASYNC (1ULL << 15)
#define COCO_UFFD_USER_MODE_ONLY 1
#define COCO_WRITE_LOG_FEATURES                                                \
 (COCO_UFFD_FEATURE_WP_HUGETLBFS_SHMEM | COCO_UFFD_FEATURE_WP_UNPOPULATED |    \
  COCO_UFFD_FEATURE_WP_ASYNC)

typedef struct {
    uint64_t start;
    uint64_t end;
    uint64_t categories;
} CocoPageRegion;

typedef struct {
    uint64_t size;
    uint64_t flags;
    uint64_t start;
    uint64_t end;
    uint64_t walk_end;
    uint64_t vec;
    uint64_t vec_len;
    uint64_t max_pages;
    uint64_t category_inverted;
    uint64_t category_mask;
    uint64_t category_anyof_mask;
    uint64_t return_mask;
} CocoPmScanArg;
G_STATIC_ASSERT(sizeof(CocoPmScanArg) == 96);
G_STATIC_ASSERT(sizeof(CocoPageRegion) == 24);

#define COCO_PAGEMAP_SCAN _IOWR('f', 16, CocoPmScanArg)
#define COCO_PM_SCAN_WP_MATCHING (1ULL << 0)
#define COCO_PM_SCAN_CHECK_WPASYNC (1ULL << 1)
#define COCO_PAGE_IS_WRITTEN (1ULL << 1)

#define COCO_WRITE_LOG_PAGE 4096ULL
#define COCO_WRITE_LOG_MAPS_MAX (16 * 1024 * 1024)
#define COCO_WRITE_LOG_VEC 64

/* One mapping of the file in the writer, clipped to the logged range. */
typedef struct {
    uint64_t start; /* virtual address */
    uint64_t end;
    uint64_t offset; /* file offset of start */
} CocoWriteLogMap;

struct _CocoWriteLog {
    pid_t pid;
    dev_t dev;
    ino_t ino;
    uint64_t offset;
    uint64_t size;
    int pidfd;
    int uffd;
    int pagemap;
    GArray *maps; /* CocoWriteLogMap, as registered */
};

int
cocoWriteLogPrepareSelf(void)
{
    struct uffdio_api api = {.api = UFFD_API,
                             .features = COCO_WRITE_LOG_FEATURES};
    int fd;

    /* User mode only: needs no privilege (vm.unprivileged_userfaultfd),
     * and asynchronous write protection is resolved in the kernel for
     * writes from either mode. */
    fd = (int)syscall(SYS_userfaultfd,
                      O_CLOEXEC | O_NONBLOCK | COCO_UFFD_USER_MODE_ONLY);
    if (fd < 0)
        return -errno;
    if (ioctl(fd, UFFDIO_API, &api) < 0 ||
        (api.features & COCO_WRITE_LOG_FEATURES) != COCO_WRITE_LOG_FEATURES) {
        int err = errno ? errno : EOPNOTSUPP;

        close(fd);
        return -err;
    }
    return fd;
}

/* The writer's mappings of the file that overlap the logged range. */
static GArray *
cocoWriteLogReadMaps(CocoWriteLog *log, GError **error)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/maps", (int)log->pid);
    g_autofree char *text = NULL;
    g_autoptr(GArray) maps = g_array_new(false, false, sizeof(CocoWriteLogMap));
    g_autoptr(GError) local = NULL;
    gsize len = 0;
    char *line;
    char *save = NULL;

    if (!g_file_get_contents(path, &text, &len, &local))
        return cocoErrorSet(error, COCO_ERROR_SYSTEM,
                            _("cannot read the mappings of process %1$d: %2$s"),
                            (int)log->pid, local->message),
               NULL;
    if (len > COCO_WRITE_LOG_MAPS_MAX)
        return cocoErrorSet(
                   error, COCO_ERROR_NOT_SUPPORTED,
                   _("process %1$d has more mappings than %2$d bytes of '%3$s'"),
                   (int)log->pid, COCO_WRITE_LOG_MAPS_MAX, path),
               NULL;
    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned long long start, end, off, ino;
        unsigned int maj, min;
        char perms[8];
        CocoWriteLogMap m;
        uint64_t lo, hi;

        if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms,
                   &off, &maj, &min, &ino) != 7)
            continue;
        if (ino != (unsigned long long)log->ino || maj != major(log->dev) ||
            min != minor(log->dev) || end <= start)
            continue;
        lo = MAX(off, log->offset);
        hi = MIN(off + (end - start), log->offset + log->size);
        if (lo >= hi)
            continue;
        m.start = start + (lo - off);
        m.end = m.start + (hi - lo);
        m.offset = lo;
        g_array_append_val(maps, m);
    }
    return g_steal_pointer(&maps);
}

/* The writer's userfaultfd that cocoWriteLogPrepareSelf() made: the one
 * whose negotiated features include asynchronous write protection. */
static int
cocoWriteLogFindUffd(CocoWriteLog *log, GError **error)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", (int)log->pid);
    g_autoptr(GDir) d = NULL;
    g_autoptr(GError) local = NULL;
    const char *name;

    if (!(d = g_dir_open(dir, 0, &local)))
        return cocoErrorSet(
            error, COCO_ERROR_SYSTEM,
            _("cannot list the descriptors of process %1$d: %2$s"),
            (int)log->pid, local->message);
    while ((name = g_dir_read_name(d))) {
        g_autofree char *link = g_strdup_printf("%s/%s", dir, name);
        g_autofree char *info = NULL;
        g_autofree char *target = NULL;
        g_autofree char *infopath = NULL;
        const char *api;
        unsigned long long ver, features;
        gint64 fdnum;

        if (!(target = g_file_read_link(link, NULL)) ||
            !g_str_equal(target, "anon_inode:[userfaultfd]"))
            continue;
        infopath = g_strdup_printf("/proc/%d/fdinfo/%s", (int)log->pid, name);
        if (!g_file_get_contents(infopath, &info, NULL, NULL) ||
            !(api = strstr(info, "API:")) ||
            sscanf(api + 4, " %llx:%llx", &ver, &features) != 2 ||
            (features & COCO_WRITE_LOG_FEATURES) != COCO_WRITE_LOG_FEATURES)
            continue;
        fdnum = g_ascii_strtoll(name, NULL, 10);
        if (fdnum < 0 || fdnum > G_MAXINT)
            continue;
        return (int)fdnum;
    }
    return cocoErrorSet(
        error, COCO_ERROR_NOT_SUPPORTED,
        _("process %1$d has no userfaultfd with asynchronous write protection (is qemu-coco's write-log preload loaded?)"),
        (int)log->pid);
}

CocoWriteLog *
cocoWriteLogAttach(pid_t pid, int fd, uint64_t offset, uint64_t size,
                   GError **error)
{
    g_autoptr(CocoWriteLog) log = g_new0(CocoWriteLog, 1);
    g_autoptr(GArray) maps = NULL;
    g_autofree char *pagemap = g_strdup_printf("/proc/%d/pagemap", (int)pid);
    struct stat st;
    int target;
    guint i;

    log->pid = pid;
    log->pidfd = log->uffd = log->pagemap = -1;
    log->offset = offset;
    log->size = size;
    if (pid <= 0 || size == 0 || offset % COCO_WRITE_LOG_PAGE ||
        size % COCO_WRITE_LOG_PAGE)
        return cocoErrorSet(
                   error, COCO_ERROR_INVALID_ARG,
                   _("cannot log writes of process %1$d to %2$llu bytes at %3$llu"),
                   (int)pid, (unsigned long long)size,
                   (unsigned long long)offset),
               NULL;
    if (fstat(fd, &st) < 0)
        return cocoErrorSetSystem(error, errno, "%s",
                                  _("cannot stat the guest RAM file")),
               NULL;
    log->dev = st.st_dev;
    log->ino = st.st_ino;
    if (!(maps = cocoWriteLogReadMaps(log, error)))
        return NULL;
    if (maps->len == 0)
        return cocoErrorSet(error, COCO_ERROR_NOT_SUPPORTED,
                            _("process %1$d does not map the guest RAM file"),
                            (int)pid),
               NULL;
    if ((target = cocoWriteLogFindUffd(log, error)) < 0)
        return NULL;
    if ((log->pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0)
        return cocoErrorSetSystem(error, errno, _("cannot open process %1$d"),
                                  (int)pid),
               NULL;
    if ((log->uffd = (int)syscall(SYS_pidfd_getfd, log->pidfd, target, 0)) < 0)
        return cocoErrorSetSystem(
                   error, errno,
                   _("cannot take the userfaultfd of process %1$d"), (int)pid),
               NULL;
    if ((log->pagemap = open(pagemap, O_RDONLY | O_CLOEXEC)) < 0)
        return cocoErrorSetSystem(error, errno, _("cannot open '%1$s'"),
                                  pagemap),
               NULL;
    log->maps =
        g_array_sized_new(false, false, sizeof(CocoWriteLogMap), maps->len);
    for (i = 0; i < maps->len; i++) {
        const CocoWriteLogMap *m = &g_array_index(maps, CocoWriteLogMap, i);
        struct uffdio_range range = {.start = m->start,
                                     .len = m->end - m->start};
        struct uffdio_register reg = {.range = range,
                                      .mode = UFFDIO_REGISTER_MODE_WP};
        struct uffdio_writeprotect wp = {.range = range,
                                         .mode = UFFDIO_WRITEPROTECT_MODE_WP};

        if (ioctl(log->uffd, UFFDIO_REGISTER, &reg) < 0)
            return cocoErrorSetSystem(
                       error, errno,
                       _("cannot register the guest RAM of process %1$d for write protection"),
                       (int)pid),
                   NULL;
        /* From here on, free() unregisters it. */
        g_array_append_val(log->maps, *m);
        if (ioctl(log->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
            return cocoErrorSetSystem(
                       error, errno,
                       _("cannot write-protect the guest RAM of process %1$d"),
                       (int)pid),
                   NULL;
    }
    return g_steal_pointer(&log);
}

static void
cocoWriteLogSetBits(uint64_t *bits, uint64_t from, uint64_t to)
{
    for (; from < to; from++)
        bits[from / 64] |= 1ULL << (from % 64);
}

int
cocoWriteLogCollect(CocoWriteLog *log, uint64_t first, uint64_t npages,
                    uint64_t *bits, GError **error)
{
    uint64_t lo = log->offset + first * COCO_WRITE_LOG_PAGE;
    uint64_t hi = lo + npages * COCO_WRITE_LOG_PAGE;
    guint i;

    for (i = 0; i < log->maps->len; i++) {
        const CocoWriteLogMap *m =
            &g_array_index(log->maps, CocoWriteLogMap, i);
        uint64_t mlo = MAX(lo, m->offset);
        uint64_t mhi = MIN(hi, m->offset + (m->end - m->start));
        CocoPageRegion vec[COCO_WRITE_LOG_VEC];
        uint64_t va, vend;

        if (mlo >= mhi)
            continue;
        va = m->start + (mlo - m->offset);
        vend = m->start + (mhi - m->offset);
        while (va < vend) {
            CocoPmScanArg arg = {
                .size = sizeof(arg),
                .flags = COCO_PM_SCAN_WP_MATCHING | COCO_PM_SCAN_CHECK_WPASYNC,
                .start = va,
                .end = vend,
                .vec = (uint64_t)(uintptr_t)vec,
                .vec_len = G_N_ELEMENTS(vec),
                .category_mask = COCO_PAGE_IS_WRITTEN,
                .return_mask = COCO_PAGE_IS_WRITTEN,
            };
            long n;
            long k;

            if ((n = ioctl(log->pagemap, COCO_PAGEMAP_SCAN, &arg)) < 0)
                return cocoErrorSetSystem(
                    error, errno,
                    _("cannot read which guest pages process %1$d wrote"),
                    (int)log->pid);
            for (k = 0; k < n; k++) {
                uint64_t s = MAX(vec[k].start, va);
                uint64_t e = MIN(vec[k].end, vend);

                if (s >= e)
                    continue;
                /* page index relative to @first */
                cocoWriteLogSetBits(
                    bits, (s - m->start + m->offset - lo) / COCO_WRITE_LOG_PAGE,
                    (e - m->start + m->offset - lo + COCO_WRITE_LOG_PAGE - 1) /
                        COCO_WRITE_LOG_PAGE);
            }
            if (arg.walk_end <= va || arg.walk_end > vend)
                return cocoErrorSet(
                    error, COCO_ERROR_SYSTEM,
                    _("the page-table scan of process %1$d did not advance"),
                    (int)log->pid);
            va = arg.walk_end;
        }
    }
    return 0;
}

int
cocoWriteLogCheck(CocoWriteLog *log, GError **error)
{
    g_autoptr(GArray) now = cocoWriteLogReadMaps(log, error);

    if (!now)
        return -1;
    if (now->len != log->maps->len ||
        memcmp(now->data, log->maps->data,
               (size_t)now->len * sizeof(CocoWriteLogMap)) != 0)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("process %1$d mapped the guest RAM file differently since its writes were first logged (%2$u mappings then, %3$u now)"),
            (int)log->pid, log->maps->len, now->len);
    return 0;
}

void
cocoWriteLogFree(CocoWriteLog *log)
{
    guint i;

    if (!log)
        return;
    if (log->uffd >= 0 && log->maps) {
        for (i = 0; i < log->maps->len; i++) {
            const CocoWriteLogMap *m =
                &g_array_index(log->maps, CocoWriteLogMap, i);
            struct uffdio_range r = {.start = m->start,
                                     .len = m->end - m->start};

            /* Fails harmlessly once the writer has exited or unmapped. */
            if (ioctl(log->uffd, UFFDIO_UNREGISTER, &r) < 0)
                continue;
        }
    }
    if (log->maps)
        g_array_unref(log->maps);
    if (log->pagemap >= 0)
        close(log->pagemap);
    if (log->uffd >= 0)
        close(log->uffd);
    if (log->pidfd >= 0)
        close(log->pidfd);
    g_free(log);
}
