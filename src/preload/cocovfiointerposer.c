/*
 * cocovfiointerposer.c: QEMU's VFIO and iommufd requests through the
 * range-safe module
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * docs/vfio.rst, "The interposer". An address space is a type1 container
 * (its IOMMU set with VFIO_SET_IOMMU) or an iommufd IOAS; each gets a
 * CocoVfioContainer on QEMU's own descriptor, whose map and unmap stand in
 * for the kernel's. A type1 container's IOMMU is released by the kernel
 * when its last group leaves it (VFIO_GROUP_UNSET_CONTAINER, or the group's
 * descriptor closed with no device of it open): the interposer tears down
 * what is still recorded first, range-safely, and reports what cannot be
 * removed. An IOAS is released by IOMMU_DESTROY or by closing its iommufd;
 * iommufd removes everything itself then, so only the record is dropped.
 */

#include "preload/cocovfiointerposer.h"
#include "vfio/cocovfiocontainer.h"
#include "vfio/cocovfiouapi.h"
#include "util/cocoerror.h"

#include <errno.h>
#include <inttypes.h>

/* Descriptors below this are followed in a lock-free bitmap. */
#define COCO_VFIO_IP_FDBITS 65536
/* Refused maps logged per address space; the release line counts all. */
#define COCO_VFIO_IP_REFUSALS_LOGGED 8
/* Ranges named in one leak report; "count" has the total. */
#define COCO_VFIO_IP_REPORT_RANGES 32
/* Devices named in one state report; "count" has the total. */
#define COCO_VFIO_IP_REPORT_DEVICES 32
/* The longest device name the interposer repeats. */
#define COCO_VFIO_IP_DEVICE_NAME_MAX 64

typedef struct {
    guint id;
    bool iommufd;
    int fd; /* QEMU's container fd or iommufd; -1 once QEMU closed it */
    uint32_t ioas_id;
    CocoVfioContainer *c; /* type1: NULL until an IOMMU is set */
    guint ngroups; /* type1: attached groups */
    guint ndevices; /* iommufd: attached devices */
    uint64_t maps;
    uint64_t unmaps;
    uint64_t refused;
    uint64_t split;
    bool dirty_logged;
} CocoVfioIpSpace;

typedef enum {
    COCO_VFIO_IP_FD_CONTAINER,
    COCO_VFIO_IP_FD_GROUP,
    COCO_VFIO_IP_FD_DEVICE,
    COCO_VFIO_IP_FD_IOMMUFD,
} CocoVfioIpFdKind;

typedef struct _CocoVfioIpFd CocoVfioIpFd;
struct _CocoVfioIpFd {
    CocoVfioIpFdKind kind;
    int fd;
    /* CONTAINER: its space; GROUP: the container it is attached to;
     * DEVICE (cdev): the IOAS it is attached to. */
    CocoVfioIpSpace *space;
    CocoVfioIpFd *group; /* DEVICE from a group */
    char *name; /* DEVICE from a group: its name ("0000:03:00.0"), if sane */
    guint ndevices; /* GROUP: its open device descriptors */
    bool closed; /* GROUP: QEMU closed it, devices of it are still open */
    GHashTable *ioas; /* IOMMUFD: ioas id -> CocoVfioIpSpace */
};

struct _CocoVfioInterposer {
    GMutex lock;
    CocoVfioOps kops; /* the kernel, with a close that does nothing */
    CocoVfioInterposerLogFunc log;
    CocoVfioInterposerReportFunc report;
    void *opaque;
    bool disabled; /* a forked child that inherited the parent's state */
    GHashTable *fds; /* fd -> CocoVfioIpFd */
    guint nextId;
    gint nhigh; /* followed descriptors >= COCO_VFIO_IP_FDBITS */
    guint32 bits[COCO_VFIO_IP_FDBITS / 32];
    CocoVfioInterposerStats stats;
};

static void
cocoVfioIpNoClose(void *opaque G_GNUC_UNUSED, int fd G_GNUC_UNUSED)
{
}

static void cocoVfioIpLog(CocoVfioInterposer *ip, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static void
cocoVfioIpLog(CocoVfioInterposer *ip, const char *fmt, ...)
{
    g_autofree char *line = NULL;
    va_list ap;

    va_start(ap, fmt);
    line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (ip->log)
        ip->log(line, ip->opaque);
}

/* ---- the descriptor table ---------------------------------------------- */

static void
cocoVfioIpMark(CocoVfioInterposer *ip, int fd, bool on)
{
    if (fd < 0)
        return;
    if (fd >= COCO_VFIO_IP_FDBITS) {
        if (on)
            g_atomic_int_inc(&ip->nhigh);
        else
            g_atomic_int_dec_and_test(&ip->nhigh);
        return;
    }
    if (on)
        g_atomic_int_or(&ip->bits[fd / 32], 1U << (fd % 32));
    else
        g_atomic_int_and(&ip->bits[fd / 32], ~(1U << (fd % 32)));
}

bool
cocoVfioInterposerTracks(CocoVfioInterposer *ip, int fd)
{
    if (fd < 0)
        return false;
    if (fd >= COCO_VFIO_IP_FDBITS)
        return g_atomic_int_get(&ip->nhigh) > 0;
    return (g_atomic_int_get(&ip->bits[fd / 32]) & (1U << (fd % 32))) != 0;
}

static CocoVfioIpFd *
cocoVfioIpLookup(CocoVfioInterposer *ip, int fd, CocoVfioIpFdKind kind)
{
    CocoVfioIpFd *e = g_hash_table_lookup(ip->fds, GINT_TO_POINTER(fd));

    return e && e->kind == kind ? e : NULL;
}

static CocoVfioIpFd *
cocoVfioIpAdd(CocoVfioInterposer *ip, int fd, CocoVfioIpFdKind kind)
{
    CocoVfioIpFd *e = g_new0(CocoVfioIpFd, 1);

    e->kind = kind;
    e->fd = fd;
    g_hash_table_replace(ip->fds, GINT_TO_POINTER(fd), e);
    cocoVfioIpMark(ip, fd, true);
    return e;
}

/* Take @e out of the table (QEMU closed it); the caller frees it. */
static void
cocoVfioIpRemove(CocoVfioInterposer *ip, CocoVfioIpFd *e)
{
    g_hash_table_steal(ip->fds, GINT_TO_POINTER(e->fd));
    cocoVfioIpMark(ip, e->fd, false);
}

/* ---- address spaces --------------------------------------------------- */

static char *
cocoVfioIpLabel(const CocoVfioIpSpace *s)
{
    if (s->iommufd)
        return g_strdup_printf("iommufd IOAS %u (space %u)", s->ioas_id, s->id);
    return g_strdup_printf("VFIO container (space %u)", s->id);
}

static CocoVfioIpSpace *
cocoVfioIpSpaceNew(CocoVfioInterposer *ip, int fd)
{
    CocoVfioIpSpace *s = g_new0(CocoVfioIpSpace, 1);

    s->id = ++ip->nextId;
    s->fd = fd;
    return s;
}

/* A leak report for the relay, and its line in the log. */
static void
cocoVfioIpReportLeaks(CocoVfioInterposer *ip, CocoVfioIpSpace *s,
                      const char *when, const CocoVfioRange *leaks,
                      size_t nleaks)
{
    g_autoptr(GString) json = g_string_new(NULL);
    uint64_t bytes = 0;
    size_t i;

    for (i = 0; i < nleaks; i++) {
        uint64_t len = leaks[i].last - leaks[i].first;

        if (len == G_MAXUINT64 || bytes > G_MAXUINT64 - len - 1)
            bytes = G_MAXUINT64;
        else
            bytes += len + 1;
    }
    ip->stats.leaks += nleaks;
    g_string_append_printf(
        json,
        "{\"event\":\"vfio-leak\",\"space\":%u,\"backend\":\"%s\",\"fix\":\"%s\",\"when\":\"%s\",\"count\":%zu,\"bytes\":\"0x%" PRIx64
        "\",\"ranges\":[",
        s->id, cocoVfioBackendTypeToString(cocoVfioContainerGetBackend(s->c)),
        cocoVfioFixStatusTypeToString(cocoVfioContainerGetFixStatus(s->c)),
        when, nleaks, bytes);
    for (i = 0; i < nleaks && i < COCO_VFIO_IP_REPORT_RANGES; i++)
        g_string_append_printf(
            json, "%s{\"first\":\"0x%" PRIx64 "\",\"last\":\"0x%" PRIx64 "\"}",
            i ? "," : "", leaks[i].first, leaks[i].last);
    g_string_append(json, "]}");
    if (ip->report) {
        ip->stats.reports++;
        ip->report(json->str, ip->opaque);
    }
}

/* A device name as the kernel's sysfs spells it ("0000:03:00.0", an mdev
 * UUID): repeated in reports only when it is one. */
static char *
cocoVfioIpDeviceName(const char *arg)
{
    size_t i;

    for (i = 0; i <= COCO_VFIO_IP_DEVICE_NAME_MAX && arg[i]; i++) {
        if (!g_ascii_isalnum(arg[i]) && !strchr(":._-", arg[i]))
            return NULL;
    }
    if (i == 0 || i > COCO_VFIO_IP_DEVICE_NAME_MAX)
        return NULL;
    return g_strndup(arg, i);
}

static void
cocoVfioIpAddSpace(GPtrArray *spaces, CocoVfioIpSpace *s)
{
    if (s && s->c && !g_ptr_array_find(spaces, s, NULL))
        g_ptr_array_add(spaces, s);
}

/*
 * What QEMU holds now, for the relay (docs/vfio.rst, "The state
 * report"): the devices it has open and the DMA mappings its address
 * spaces keep. Sent whenever a device is opened or closed and when a
 * group leaves, so the last report tells whether a detached device left
 * anything mapped.
 */
static void
cocoVfioIpReportState(CocoVfioInterposer *ip)
{
    g_autoptr(GString) json =
        g_string_new("{\"event\":\"vfio-state\",\"devices\":[");
    g_autoptr(GPtrArray) spaces = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    guint ndevices = 0;
    guint named = 0;
    uint64_t mappings = 0;
    uint64_t bytes = 0;
    guint i;

    if (!ip->report)
        return;
    g_hash_table_iter_init(&it, ip->fds);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoVfioIpFd *e = v;
        GHashTableIter ii;
        gpointer sv;

        switch (e->kind) {
        case COCO_VFIO_IP_FD_DEVICE:
            ndevices++;
            if (e->name && named < COCO_VFIO_IP_REPORT_DEVICES)
                g_string_append_printf(json, "%s\"%s\"", named++ ? "," : "",
                                       e->name);
            cocoVfioIpAddSpace(spaces, e->space);
            break;
        case COCO_VFIO_IP_FD_CONTAINER:
        case COCO_VFIO_IP_FD_GROUP:
            cocoVfioIpAddSpace(spaces, e->space);
            break;
        case COCO_VFIO_IP_FD_IOMMUFD:
            g_hash_table_iter_init(&ii, e->ioas);
            while (g_hash_table_iter_next(&ii, NULL, &sv))
                cocoVfioIpAddSpace(spaces, sv);
            break;
        default:
            break;
        }
    }
    for (i = 0; i < spaces->len; i++) {
        CocoVfioIpSpace *s = g_ptr_array_index(spaces, i);
        uint64_t b = cocoVfioContainerGetMappedBytes(s->c);

        mappings += cocoVfioContainerGetMappingCount(s->c);
        bytes = bytes > G_MAXUINT64 - b ? G_MAXUINT64 : bytes + b;
    }
    g_string_append_printf(json,
                           "],\"count\":%u,\"spaces\":%u,\"mappings\":%" PRIu64
                           ",\"bytes\":\"0x%" PRIx64 "\"}",
                           ndevices, spaces->len, mappings, bytes);
    ip->stats.states++;
    ip->report(json->str, ip->opaque);
}

/* The module's error for the leaks it just named: log and report them. */
static void
cocoVfioIpLeakError(CocoVfioInterposer *ip, CocoVfioIpSpace *s,
                    const char *when, const GError *err)
{
    g_autofree CocoVfioRange *leaks = NULL;
    g_autofree char *label = cocoVfioIpLabel(s);
    size_t nleaks = 0;

    cocoVfioContainerGetLeaks(s->c, &leaks, &nleaks);
    cocoVfioIpLog(ip, _("%1$s: %2$s"), label, err->message);
    if (nleaks > 0)
        cocoVfioIpReportLeaks(ip, s, when, leaks, nleaks);
}

/*
 * The kernel is about to release the address space's IOMMU (type1: its
 * last group leaves): unmap, range-safely, what QEMU left mapped. What
 * cannot be removed is logged and reported.
 */
static void
cocoVfioIpSpaceTeardown(CocoVfioInterposer *ip, CocoVfioIpSpace *s)
{
    g_autoptr(GError) err = NULL;

    if (!s->c || cocoVfioContainerGetMappingCount(s->c) == 0)
        return;
    if (cocoVfioContainerTeardown(s->c, &err) < 0) {
        if (g_error_matches(err, COCO_ERROR, COCO_ERROR_VFIO_LEAK))
            cocoVfioIpLeakError(ip, s, "release", err);
        else
            cocoVfioIpLog(ip, "%s", err->message);
    }
}

/* The kernel released the IOMMU of @s: one line of accounting, and the
 * module's record goes (what it still holds, the kernel dropped). */
static void
cocoVfioIpSpaceRelease(CocoVfioInterposer *ip, CocoVfioIpSpace *s)
{
    g_autofree char *label = NULL;
    size_t left;

    if (!s->c)
        return;
    label = cocoVfioIpLabel(s);
    left = cocoVfioContainerGetMappingCount(s->c);
    cocoVfioIpLog(
        ip,
        _("%1$s (%2$s, fix %3$s) released: %4$" PRIu64 " DMA map(s), %5$" PRIu64
          " unmap(s) of which %6$" PRIu64
          " ended at 2^64 and were split for this kernel, %7$" PRIu64
          " map(s) refused, %8$zu mapping(s) left to the kernel"),
        label, cocoVfioBackendTypeToString(cocoVfioContainerGetBackend(s->c)),
        cocoVfioFixStatusTypeToString(cocoVfioContainerGetFixStatus(s->c)),
        s->maps, s->unmaps, s->split, s->refused, left);
    ip->stats.releases++;
    cocoVfioContainerForget(s->c);
    g_clear_pointer(&s->c, cocoVfioContainerFree);
    s->maps = s->unmaps = s->refused = s->split = 0;
}

static void
cocoVfioIpSpaceFree(CocoVfioIpSpace *s)
{
    if (!s)
        return;
    if (s->c) {
        cocoVfioContainerForget(s->c);
        cocoVfioContainerFree(s->c);
    }
    g_free(s);
}

/* A type1 container is forgotten once QEMU closed it and no group keeps
 * the kernel's container alive. */
static void
cocoVfioIpSpaceMaybeFree(CocoVfioIpSpace *s)
{
    if (!s->iommufd && s->fd < 0 && s->ngroups == 0)
        cocoVfioIpSpaceFree(s);
}

/* @g left its container (the kernel has done it). */
static void
cocoVfioIpGroupLeave(CocoVfioInterposer *ip, CocoVfioIpFd *g)
{
    CocoVfioIpSpace *s = g->space;

    if (!s)
        return;
    g->space = NULL;
    if (s->ngroups > 0)
        s->ngroups--;
    if (s->ngroups == 0) {
        cocoVfioIpSpaceRelease(ip, s);
        cocoVfioIpSpaceMaybeFree(s);
    }
}

/* Before the kernel detaches @g from its container: the last group's
 * departure releases the IOMMU, so tear down first. */
static void
cocoVfioIpGroupBeforeLeave(CocoVfioInterposer *ip, CocoVfioIpFd *g)
{
    if (g->space && g->space->ngroups == 1)
        cocoVfioIpSpaceTeardown(ip, g->space);
}

/* ---- errors ----------------------------------------------------------- */

/* The errno the kernel gives for the refused map of [first, last]. */
static int
cocoVfioIpMapErrno(CocoVfioInterposer *ip, CocoVfioIpSpace *s, uint64_t first,
                   uint64_t last, const GError *err)
{
    g_autofree char *label = NULL;

    if (err->domain != COCO_ERROR)
        return -EIO;
    switch (err->code) {
    case COCO_ERROR_VFIO_UNSAFE:
        s->refused++;
        ip->stats.refused++;
        if (s->refused <= COCO_VFIO_IP_REFUSALS_LOGGED) {
            label = cocoVfioIpLabel(s);
            cocoVfioIpLog(ip, _("%1$s: %2$s"), label, err->message);
        }
        return -EPERM;
    case COCO_ERROR_VFIO_RANGE:
        /* an overlap is EEXIST for both type1 and iommufd, an IOVA range
         * the IOMMU does not offer or a misaligned one EINVAL */
        return cocoVfioContainerOverlaps(s->c, first, last) ? -EEXIST : -EINVAL;
    case COCO_ERROR_VFIO_KERNEL:
        return cocoVfioContainerGetLastErrno(s->c)
                   ? -cocoVfioContainerGetLastErrno(s->c)
                   : -EIO;
    default:
        return -EIO;
    }
}

/* Unmap [first, last] of @s through the module; *@out gets the bytes
 * removed, as the kernel writes them back. */
static int
cocoVfioIpUnmap(CocoVfioInterposer *ip, CocoVfioIpSpace *s, uint64_t first,
                uint64_t last, uint64_t *out)
{
    g_autoptr(GError) err = NULL;
    CocoVfioFixStatus fix = cocoVfioContainerGetFixStatus(s->c);
    uint64_t removed = 0;

    s->unmaps++;
    ip->stats.unmaps++;
    if (!s->iommufd && last == G_MAXUINT64 && fix != COCO_VFIO_FIX_PRESENT &&
        fix != COCO_VFIO_FIX_NOT_NEEDED) {
        s->split++;
        ip->stats.split++;
    }
    if (cocoVfioContainerUnmap(s->c, first, last, &removed, &err) == 0) {
        *out = removed;
        return 0;
    }
    *out = removed;
    if (g_error_matches(err, COCO_ERROR, COCO_ERROR_VFIO_LEAK)) {
        cocoVfioIpLeakError(ip, s, "unmap", err);
        return -EIO;
    }
    if (g_error_matches(err, COCO_ERROR, COCO_ERROR_VFIO_RANGE))
        return s->iommufd ? -ENOENT : -EINVAL; /* a split, as the kernel */
    if (g_error_matches(err, COCO_ERROR, COCO_ERROR_VFIO_KERNEL) &&
        cocoVfioContainerGetLastErrno(s->c))
        return -cocoVfioContainerGetLastErrno(s->c);
    return -EIO;
}

static int
cocoVfioIpKernel(CocoVfioInterposer *ip, int fd, unsigned long request,
                 void *arg)
{
    return ip->kops.ioctl(ip->kops.opaque, fd, request, arg);
}

/* ---- type1 ------------------------------------------------------------ */

static int
cocoVfioIpGroupSetContainer(CocoVfioInterposer *ip, int fd,
                            unsigned long request, void *arg)
{
    const int *cfd = arg;
    CocoVfioIpFd *g;
    CocoVfioIpFd *c;
    int rc;

    if (!cfd)
        return -EFAULT;
    rc = cocoVfioIpKernel(ip, fd, request, arg);
    if (rc < 0)
        return rc;
    if (!(g = cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_GROUP)))
        g = cocoVfioIpAdd(ip, fd, COCO_VFIO_IP_FD_GROUP);
    if (!(c = cocoVfioIpLookup(ip, *cfd, COCO_VFIO_IP_FD_CONTAINER))) {
        c = cocoVfioIpAdd(ip, *cfd, COCO_VFIO_IP_FD_CONTAINER);
        c->space = cocoVfioIpSpaceNew(ip, *cfd);
    }
    if (g->space != c->space) {
        cocoVfioIpGroupLeave(ip, g);
        g->space = c->space;
        c->space->ngroups++;
    }
    return rc;
}

static int
cocoVfioIpGroupUnsetContainer(CocoVfioInterposer *ip, int fd,
                              unsigned long request, void *arg)
{
    CocoVfioIpFd *g = cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_GROUP);
    int rc;

    /* The kernel refuses while a device of the group is open. */
    if (g && g->ndevices == 0)
        cocoVfioIpGroupBeforeLeave(ip, g);
    rc = cocoVfioIpKernel(ip, fd, request, arg);
    if (rc == 0 && g) {
        cocoVfioIpGroupLeave(ip, g);
        cocoVfioIpReportState(ip);
    }
    return rc;
}

static int
cocoVfioIpGroupGetDeviceFd(CocoVfioInterposer *ip, int fd,
                           unsigned long request, void *arg)
{
    CocoVfioIpFd *g = cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_GROUP);
    CocoVfioIpFd *d;
    int rc = cocoVfioIpKernel(ip, fd, request, arg);

    if (rc < 0 || !g)
        return rc;
    d = cocoVfioIpAdd(ip, rc, COCO_VFIO_IP_FD_DEVICE);
    d->group = g;
    d->name = arg ? cocoVfioIpDeviceName(arg) : NULL;
    g->ndevices++;
    cocoVfioIpReportState(ip);
    return rc;
}

static int
cocoVfioIpSetIommu(CocoVfioInterposer *ip, int fd, unsigned long request,
                   void *arg)
{
    g_autoptr(GError) err = NULL;
    CocoVfioIpFd *c = cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_CONTAINER);
    unsigned long type = (unsigned long)(uintptr_t)arg;
    CocoVfioBackend backend;
    int rc;

    rc = cocoVfioIpKernel(ip, fd, request, arg);
    if (rc < 0 || !c)
        return rc;
    switch (type) {
    case VFIO_TYPE1_IOMMU:
        backend = COCO_VFIO_BACKEND_TYPE1;
        break;
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_TYPE1_NESTING_IOMMU:
        backend = COCO_VFIO_BACKEND_TYPE1V2;
        break;
    default:
        /* no-IOMMU, SPAPR: no type1 DMA mapping to guard */
        return rc;
    }
    cocoVfioIpSpaceRelease(ip, c->space);
    c->space->c =
        cocoVfioContainerNewFromFd(&ip->kops, backend, fd, 0, NULL, 0, &err);
    if (!c->space->c) {
        /* Fail closed: QEMU gives up the container rather than map DMA
         * the interposer cannot account for. */
        cocoVfioIpLog(
            ip,
            _("cannot follow the VFIO container's DMA mappings, refusing to use it: %1$s"),
            err->message);
        return -EIO;
    }
    return rc;
}

static int
cocoVfioIpMapDma(CocoVfioInterposer *ip, int fd, unsigned long request,
                 void *arg)
{
    CocoVfioIpFd *c = cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_CONTAINER);
    struct vfio_iommu_type1_dma_map *m = arg;
    g_autoptr(GError) err = NULL;
    unsigned int flags = 0;
    CocoVfioRange r;

    if (!c || !c->space->c || !m || m->argsz < sizeof(*m) ||
        (m->flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) ||
        cocoVfioRangeFromSize(m->iova, m->size, &r, NULL) < 0)
        /* Not a new mapping (VADDR update), or one the kernel rejects
         * while validating its arguments. */
        return cocoVfioIpKernel(ip, fd, request, arg);
    if (m->flags & VFIO_DMA_MAP_FLAG_READ)
        flags |= COCO_VFIO_MAP_READ;
    if (m->flags & VFIO_DMA_MAP_FLAG_WRITE)
        flags |= COCO_VFIO_MAP_WRITE;
    if (cocoVfioContainerMap(c->space->c, (void *)(uintptr_t)m->vaddr, r.first,
                             r.last, flags, &err) < 0)
        return cocoVfioIpMapErrno(ip, c->space, r.first, r.last, err);
    ip->stats.maps++;
    c->space->maps++;
    return 0;
}

static int
cocoVfioIpUnmapDma(CocoVfioInterposer *ip, int fd, unsigned long request,
                   void *arg)
{
    CocoVfioIpFd *c = cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_CONTAINER);
    struct vfio_iommu_type1_dma_unmap *u = arg;
    CocoVfioRange r;
    uint64_t out = 0;
    int rc;

    if (!c || !c->space->c || !u || u->argsz < sizeof(*u))
        return cocoVfioIpKernel(ip, fd, request, arg);
    if (u->flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) {
        /* The bitmap would have to be carried through the split requests;
         * only QEMU's VFIO device migration uses it. */
        if (!c->space->dirty_logged) {
            c->space->dirty_logged = true;
            cocoVfioIpLog(
                ip, "%s",
                _("DMA unmap with a dirty bitmap is not supported by the interposer (VFIO device migration); set vfio_interposer = no in qemu-coco.conf to use it"));
        }
        return -EOPNOTSUPP;
    }
    if (u->flags == VFIO_DMA_UNMAP_FLAG_ALL && u->iova == 0 && u->size == 0) {
        r.first = 0;
        r.last = G_MAXUINT64;
    } else if (u->flags != 0 ||
               cocoVfioRangeFromSize(u->iova, u->size, &r, NULL) < 0) {
        /* VADDR (no mapping changes) or arguments the kernel rejects. */
        return cocoVfioIpKernel(ip, fd, request, arg);
    }
    rc = cocoVfioIpUnmap(ip, c->space, r.first, r.last, &out);
    u->size = out;
    return rc;
}

/* ---- iommufd ---------------------------------------------------------- */

static CocoVfioIpSpace *
cocoVfioIpIoas(CocoVfioInterposer *ip, int fd, uint32_t ioas_id)
{
    CocoVfioIpFd *f = cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_IOMMUFD);
    CocoVfioIpSpace *s;

    if (!f)
        return NULL;
    s = g_hash_table_lookup(f->ioas, GUINT_TO_POINTER(ioas_id));
    return s && s->c ? s : NULL;
}

static int
cocoVfioIpIoasAlloc(CocoVfioInterposer *ip, int fd, unsigned long request,
                    void *arg)
{
    CocoIommuIoasAlloc *a = arg;
    g_autoptr(GError) err = NULL;
    CocoVfioIpFd *f;
    CocoVfioIpSpace *s;
    int rc;

    if (!a)
        return -EFAULT;
    rc = cocoVfioIpKernel(ip, fd, request, arg);
    if (rc < 0 || a->size < sizeof(*a))
        return rc;
    if (!(f = cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_IOMMUFD))) {
        f = cocoVfioIpAdd(ip, fd, COCO_VFIO_IP_FD_IOMMUFD);
        f->ioas = g_hash_table_new_full(NULL, NULL, NULL,
                                        (GDestroyNotify)cocoVfioIpSpaceFree);
    }
    s = cocoVfioIpSpaceNew(ip, fd);
    s->iommufd = true;
    s->ioas_id = a->out_ioas_id;
    s->c = cocoVfioContainerNewFromFd(&ip->kops, COCO_VFIO_BACKEND_IOMMUFD, fd,
                                      a->out_ioas_id, NULL, 0, &err);
    if (!s->c) {
        CocoIommuDestroy d = {.size = sizeof(d), .id = a->out_ioas_id};

        cocoVfioIpLog(
            ip,
            _("cannot follow the DMA mappings of iommufd IOAS %1$u, refusing to use it: %2$s"),
            a->out_ioas_id, err->message);
        cocoVfioIpKernel(ip, fd, COCO_IOMMU_DESTROY, &d);
        cocoVfioIpSpaceFree(s);
        return -EIO;
    }
    g_hash_table_replace(f->ioas, GUINT_TO_POINTER(s->ioas_id), s);
    return rc;
}

static int
cocoVfioIpIoasMap(CocoVfioInterposer *ip, int fd, unsigned long request,
                  void *arg)
{
    CocoIommuIoasMap *m = arg;
    CocoVfioIpSpace *s;
    g_autoptr(GError) err = NULL;
    unsigned int flags = 0;
    CocoVfioRange r;
    int rc;

    if (!m || m->size < sizeof(*m) || !(s = cocoVfioIpIoas(ip, fd, m->ioas_id)))
        return cocoVfioIpKernel(ip, fd, request, arg);
    if (m->flags == (m->flags & (COCO_IOMMU_IOAS_MAP_FIXED_IOVA |
                                 COCO_IOMMU_IOAS_MAP_READABLE |
                                 COCO_IOMMU_IOAS_MAP_WRITEABLE)) &&
        (m->flags & COCO_IOMMU_IOAS_MAP_FIXED_IOVA) &&
        cocoVfioRangeFromSize(m->iova, m->length, &r, NULL) == 0) {
        if (m->flags & COCO_IOMMU_IOAS_MAP_READABLE)
            flags |= COCO_VFIO_MAP_READ;
        if (m->flags & COCO_IOMMU_IOAS_MAP_WRITEABLE)
            flags |= COCO_VFIO_MAP_WRITE;
        if (cocoVfioContainerMap(s->c, (void *)(uintptr_t)m->user_va, r.first,
                                 r.last, flags, &err) < 0)
            return cocoVfioIpMapErrno(ip, s, r.first, r.last, err);
        ip->stats.maps++;
        s->maps++;
        return 0;
    }
    /* The kernel picks the IOVA (or rejects the arguments): record what it
     * mapped. */
    rc = cocoVfioIpKernel(ip, fd, request, arg);
    if (rc == 0 && m->length > 0 &&
        cocoVfioContainerTrackMapping(s->c, (void *)(uintptr_t)m->user_va,
                                      m->iova, m->iova + (m->length - 1),
                                      NULL) == 0)
        s->maps++;
    return rc;
}

static int
cocoVfioIpIoasMapFile(CocoVfioInterposer *ip, int fd, unsigned long request,
                      void *arg)
{
    CocoIommuIoasMapFile *m = arg;
    CocoVfioIpSpace *s;
    int rc = cocoVfioIpKernel(ip, fd, request, arg);

    /* A memfd mapping: recorded once the kernel made it (iommufd has no
     * top-of-space bug to prevent). */
    if (rc == 0 && m && m->size >= sizeof(*m) && m->length > 0 &&
        (s = cocoVfioIpIoas(ip, fd, m->ioas_id)) &&
        cocoVfioContainerTrackMapping(s->c, NULL, m->iova,
                                      m->iova + (m->length - 1), NULL) == 0)
        s->maps++;
    return rc;
}

static int
cocoVfioIpIoasCopy(CocoVfioInterposer *ip, int fd, unsigned long request,
                   void *arg)
{
    CocoIommuIoasCopy *cp = arg;
    CocoVfioIpSpace *s;
    int rc = cocoVfioIpKernel(ip, fd, request, arg);

    if (rc == 0 && cp && cp->size >= sizeof(*cp) && cp->length > 0 &&
        (s = cocoVfioIpIoas(ip, fd, cp->dst_ioas_id)) &&
        cocoVfioContainerTrackMapping(s->c, NULL, cp->dst_iova,
                                      cp->dst_iova + (cp->length - 1),
                                      NULL) == 0)
        s->maps++;
    return rc;
}

static int
cocoVfioIpIoasUnmap(CocoVfioInterposer *ip, int fd, unsigned long request,
                    void *arg)
{
    CocoIommuIoasUnmap *u = arg;
    CocoVfioIpSpace *s;
    CocoVfioRange r;
    uint64_t out = 0;
    int rc;

    if (!u || u->size < sizeof(*u) || !(s = cocoVfioIpIoas(ip, fd, u->ioas_id)))
        return cocoVfioIpKernel(ip, fd, request, arg);
    if (u->iova == 0 && u->length == G_MAXUINT64) {
        r.first = 0;
        r.last = G_MAXUINT64;
    } else if (cocoVfioRangeFromSize(u->iova, u->length, &r, NULL) < 0) {
        return cocoVfioIpKernel(ip, fd, request, arg);
    }
    rc = cocoVfioIpUnmap(ip, s, r.first, r.last, &out);
    u->length = out;
    return rc;
}

/* iommufd removed every mapping of @s itself (destroy, close); no device
 * is attached to it any more. */
static void
cocoVfioIpIoasGone(CocoVfioInterposer *ip, CocoVfioIpSpace *s)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, ip->fds);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoVfioIpFd *d = v;

        if (d->kind == COCO_VFIO_IP_FD_DEVICE && d->space == s)
            d->space = NULL;
    }
    cocoVfioIpSpaceRelease(ip, s);
}

static int
cocoVfioIpDestroy(CocoVfioInterposer *ip, int fd, unsigned long request,
                  void *arg)
{
    CocoIommuDestroy *d = arg;
    CocoVfioIpFd *f = cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_IOMMUFD);
    CocoVfioIpSpace *s;
    int rc = cocoVfioIpKernel(ip, fd, request, arg);

    if (rc < 0 || !f || !d || d->size < sizeof(*d))
        return rc;
    if ((s = g_hash_table_lookup(f->ioas, GUINT_TO_POINTER(d->id)))) {
        cocoVfioIpIoasGone(ip, s);
        g_hash_table_remove(f->ioas, GUINT_TO_POINTER(d->id));
    }
    return rc;
}

static int
cocoVfioIpDeviceBind(CocoVfioInterposer *ip, int fd, unsigned long request,
                     void *arg)
{
    struct vfio_device_bind_iommufd *b = arg;
    int rc = cocoVfioIpKernel(ip, fd, request, arg);

    if (rc == 0 && b && !cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_DEVICE))
        cocoVfioIpAdd(ip, fd, COCO_VFIO_IP_FD_DEVICE);
    return rc;
}

/* A cdev device leaves its IOAS: the IOAS keeps its mappings (and pins)
 * until QEMU unmaps or destroys it; say so when no device is left. */
static void
cocoVfioIpDeviceDetach(CocoVfioInterposer *ip, CocoVfioIpFd *d)
{
    CocoVfioIpSpace *s = d->space;
    g_autofree char *label = NULL;

    if (!s)
        return;
    d->space = NULL;
    if (s->ndevices > 0)
        s->ndevices--;
    if (s->ndevices > 0 || !s->c || cocoVfioContainerGetMappingCount(s->c) == 0)
        return;
    label = cocoVfioIpLabel(s);
    cocoVfioIpLog(
        ip,
        _("%1$s: the last device left it; it keeps %2$zu DMA mapping(s), 0x%3$" PRIx64
          " bytes, pinned until QEMU unmaps or destroys it"),
        label, cocoVfioContainerGetMappingCount(s->c),
        cocoVfioContainerGetMappedBytes(s->c));
}

static CocoVfioIpSpace *
cocoVfioIpFindIoas(CocoVfioInterposer *ip, uint32_t id)
{
    GHashTableIter it;
    gpointer v;

    /* A device names the IOAS by id only; the ids of one process's
     * iommufds rarely collide, the first one found is taken. */
    g_hash_table_iter_init(&it, ip->fds);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoVfioIpFd *f = v;
        CocoVfioIpSpace *s;

        if (f->kind == COCO_VFIO_IP_FD_IOMMUFD &&
            (s = g_hash_table_lookup(f->ioas, GUINT_TO_POINTER(id))))
            return s;
    }
    return NULL;
}

static int
cocoVfioIpDeviceAttach(CocoVfioInterposer *ip, int fd, unsigned long request,
                       void *arg)
{
    struct vfio_device_attach_iommufd_pt *a = arg;
    CocoVfioIpFd *d = cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_DEVICE);
    CocoVfioIpSpace *s;
    int rc = cocoVfioIpKernel(ip, fd, request, arg);

    if (rc < 0 || !d || !a)
        return rc;
    cocoVfioIpDeviceDetach(ip, d);
    if ((s = cocoVfioIpFindIoas(ip, a->pt_id))) {
        d->space = s;
        s->ndevices++;
    }
    return rc;
}

static int
cocoVfioIpDeviceDetachPt(CocoVfioInterposer *ip, int fd, unsigned long request,
                         void *arg)
{
    CocoVfioIpFd *d = cocoVfioIpLookup(ip, fd, COCO_VFIO_IP_FD_DEVICE);
    int rc = cocoVfioIpKernel(ip, fd, request, arg);

    if (rc == 0 && d)
        cocoVfioIpDeviceDetach(ip, d);
    return rc;
}

/* ---- dispatch --------------------------------------------------------- */

typedef int (*CocoVfioIpHandler)(CocoVfioInterposer *ip, int fd,
                                 unsigned long request, void *arg);

static const struct {
    unsigned long request;
    CocoVfioIpHandler handler;
} cocoVfioIpHandlers[] = {
    {VFIO_GROUP_SET_CONTAINER, cocoVfioIpGroupSetContainer},
    {VFIO_GROUP_UNSET_CONTAINER, cocoVfioIpGroupUnsetContainer},
    {VFIO_GROUP_GET_DEVICE_FD, cocoVfioIpGroupGetDeviceFd},
    {VFIO_SET_IOMMU, cocoVfioIpSetIommu},
    {VFIO_IOMMU_MAP_DMA, cocoVfioIpMapDma},
    {VFIO_IOMMU_UNMAP_DMA, cocoVfioIpUnmapDma},
    {VFIO_DEVICE_BIND_IOMMUFD, cocoVfioIpDeviceBind},
    {VFIO_DEVICE_ATTACH_IOMMUFD_PT, cocoVfioIpDeviceAttach},
    {VFIO_DEVICE_DETACH_IOMMUFD_PT, cocoVfioIpDeviceDetachPt},
    {COCO_IOMMU_IOAS_ALLOC, cocoVfioIpIoasAlloc},
    {COCO_IOMMU_IOAS_MAP, cocoVfioIpIoasMap},
    {COCO_IOMMU_IOAS_MAP_FILE, cocoVfioIpIoasMapFile},
    {COCO_IOMMU_IOAS_COPY, cocoVfioIpIoasCopy},
    {COCO_IOMMU_IOAS_UNMAP, cocoVfioIpIoasUnmap},
    {COCO_IOMMU_DESTROY, cocoVfioIpDestroy},
};

int
cocoVfioInterposerIoctl(CocoVfioInterposer *ip, int fd, unsigned long request,
                        void *arg)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = NULL;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoVfioIpHandlers); i++) {
        if (cocoVfioIpHandlers[i].request == request)
            break;
    }
    if (i == G_N_ELEMENTS(cocoVfioIpHandlers) || ip->disabled)
        return cocoVfioIpKernel(ip, fd, request, arg);
    locker = g_mutex_locker_new(&ip->lock);
    ip->stats.handled++;
    return cocoVfioIpHandlers[i].handler(ip, fd, request, arg);
}

static void
cocoVfioIpFdFree(CocoVfioIpFd *e)
{
    if (e->ioas)
        g_hash_table_unref(e->ioas);
    g_free(e->name);
    g_free(e);
}

/* A group's descriptor and its devices are all gone: it leaves its
 * container as if unset. */
static void
cocoVfioIpGroupGone(CocoVfioInterposer *ip, CocoVfioIpFd *g)
{
    cocoVfioIpGroupBeforeLeave(ip, g);
    cocoVfioIpGroupLeave(ip, g);
    cocoVfioIpFdFree(g);
}

void
cocoVfioInterposerClose(CocoVfioInterposer *ip, int fd)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = NULL;
    CocoVfioIpFd *e;
    GHashTableIter it;
    gpointer v;

    if (ip->disabled)
        return;
    locker = g_mutex_locker_new(&ip->lock);
    if (!(e = g_hash_table_lookup(ip->fds, GINT_TO_POINTER(fd))))
        return;
    cocoVfioIpRemove(ip, e);
    switch (e->kind) {
    case COCO_VFIO_IP_FD_CONTAINER:
        /* The kernel's container lives while a group is attached. */
        e->space->fd = -1;
        cocoVfioIpSpaceMaybeFree(e->space);
        cocoVfioIpFdFree(e);
        break;
    case COCO_VFIO_IP_FD_GROUP:
        if (e->ndevices > 0) {
            e->closed = true; /* released with its last device */
            break;
        }
        if (e->space) {
            cocoVfioIpGroupGone(ip, e);
            cocoVfioIpReportState(ip);
        } else {
            cocoVfioIpGroupGone(ip, e);
        }
        break;
    case COCO_VFIO_IP_FD_DEVICE:
        cocoVfioIpDeviceDetach(ip, e);
        if (e->group) {
            CocoVfioIpFd *g = e->group;

            if (g->ndevices > 0)
                g->ndevices--;
            if (g->closed && g->ndevices == 0)
                cocoVfioIpGroupGone(ip, g);
        }
        cocoVfioIpFdFree(e);
        cocoVfioIpReportState(ip);
        break;
    case COCO_VFIO_IP_FD_IOMMUFD:
        /* Every IOAS goes with the iommufd; devices bound to it are
         * detached by the kernel. */
        g_hash_table_iter_init(&it, e->ioas);
        while (g_hash_table_iter_next(&it, NULL, &v))
            cocoVfioIpIoasGone(ip, v);
        cocoVfioIpFdFree(e);
        break;
    default:
        cocoVfioIpFdFree(e);
        break;
    }
}

void
cocoVfioInterposerForkChild(CocoVfioInterposer *ip)
{
    /* The lock may have been held by another thread of the parent. */
    g_mutex_init(&ip->lock);
    if (g_hash_table_size(ip->fds) > 0)
        ip->disabled = true;
}

void
cocoVfioInterposerGetStats(CocoVfioInterposer *ip,
                           CocoVfioInterposerStats *stats)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&ip->lock);

    *stats = ip->stats;
}

CocoVfioInterposer *
cocoVfioInterposerNew(const CocoVfioOps *ops, CocoVfioInterposerLogFunc log,
                      CocoVfioInterposerReportFunc report, void *opaque)
{
    CocoVfioInterposer *ip = g_new0(CocoVfioInterposer, 1);

    g_mutex_init(&ip->lock);
    ip->kops = *ops;
    ip->kops.close = cocoVfioIpNoClose;
    ip->log = log;
    ip->report = report;
    ip->opaque = opaque;
    ip->fds = g_hash_table_new_full(NULL, NULL, NULL,
                                    (GDestroyNotify)cocoVfioIpFdFree);
    return ip;
}

void
cocoVfioInterposerFree(CocoVfioInterposer *ip)
{
    GHashTableIter it;
    gpointer v;
    GPtrArray *spaces;

    if (!ip)
        return;
    /* Type1 spaces are referenced by their container and groups. */
    spaces = g_ptr_array_new();
    g_hash_table_iter_init(&it, ip->fds);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoVfioIpFd *e = v;

        if ((e->kind == COCO_VFIO_IP_FD_CONTAINER ||
             e->kind == COCO_VFIO_IP_FD_GROUP) &&
            e->space && !g_ptr_array_find(spaces, e->space, NULL))
            g_ptr_array_add(spaces, e->space);
    }
    g_hash_table_destroy(ip->fds);
    g_ptr_array_foreach(spaces, (GFunc)(void (*)(void))cocoVfioIpSpaceFree,
                        NULL);
    g_ptr_array_unref(spaces);
    g_mutex_clear(&ip->lock);
    g_free(ip);
}
