/*
 * cocovfiointerposertest.c: the VFIO interposer against the kernel model
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * QEMU's own sequences of VFIO requests (hot-plug and hot-unplug of a
 * host device behind a vIOMMU, with QEMU 7.2's split unmap of a 2^64
 * section) go through cocoVfioInterposerIoctl() and
 * cocoVfioInterposerClose() to the kernel model of tests/cocovfiomodel.c,
 * wrapped in a small VFIO "system" (a group, a device, SET_IOMMU, the
 * release of the IOMMU when the last group leaves, iommufd's IOAS and
 * device attachment). The control runs send the same requests to the
 * model directly and show what the interposer prevents. Set
 * COCO_VFIO_SEED to replay a random run.
 */

#include "internal.h"
#include "cocovfiomodel.h"
#include "preload/cocovfiointerposer.h"
#include "vfio/cocovfiouapi.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <sys/ioctl.h>

#define PG 0x1000ULL
#define TOP (G_MAXUINT64 - PG + 1)
#define HALF (G_GUINT64_CONSTANT(1) << 63)
#define GROUP_FD 2000
#define DEVICE_FD 3000
#define IOAS_ID 7

typedef CocoVfioModelVariant Variant;

/* The VFIO system around the model, as QEMU sees it. */
typedef struct {
    const Variant *v;
    CocoVfioModel *model;
    const CocoVfioOps *mops;
    CocoVfioOps ops;
    CocoVfioInterposer *ip; /* NULL: QEMU talks to the kernel directly */
    int cfd;
    bool attached;
    bool device_open;
    bool group_open;
    bool ioas_alive;
    uint64_t device_ioctls;
    size_t tracked_at_release; /* type1 records left when the IOMMU went */
    guint releases;
    GPtrArray *logs;
    GPtrArray *reports;
    GPtrArray *states; /* the "vfio-state" reports */
} Sys;

static bool
variantBuggy(const Variant *v)
{
    return v->cfg.kind == COCO_VFIO_MODEL_TYPE1 && !v->cfg.fixed;
}

static void
sysRelease(Sys *s)
{
    s->tracked_at_release = cocoVfioModelTrackedCount(s->model);
    s->releases++;
    cocoVfioModelRelease(s->model);
}

static int
sysIoctl(void *opaque, int fd, unsigned long request, void *arg)
{
    Sys *s = opaque;

    if (fd == GROUP_FD) {
        switch (request) {
        case VFIO_GROUP_SET_CONTAINER:
            if (*(const int *)arg != s->cfd)
                return -EBADF;
            if (s->attached)
                return -EBUSY;
            s->attached = true;
            return 0;
        case VFIO_GROUP_UNSET_CONTAINER:
            if (!s->attached)
                return -EINVAL;
            if (s->device_open)
                return -EBUSY;
            s->attached = false;
            sysRelease(s);
            return 0;
        case VFIO_GROUP_GET_DEVICE_FD:
            s->device_open = true;
            return DEVICE_FD;
        default:
            return -ENOTTY;
        }
    }
    if (fd == DEVICE_FD) {
        s->device_ioctls++;
        return 0;
    }
    if (fd == s->cfd && request == VFIO_SET_IOMMU)
        return s->attached ? 0 : -EINVAL;
    if (fd == s->cfd && request == COCO_IOMMU_IOAS_ALLOC) {
        CocoIommuIoasAlloc *a = arg;

        if (s->ioas_alive)
            return -ENOSPC; /* the model has one IOAS */
        s->ioas_alive = true;
        a->out_ioas_id = IOAS_ID;
        return 0;
    }
    if (fd == s->cfd && request == COCO_IOMMU_DESTROY) {
        CocoIommuDestroy *d = arg;

        if (!s->ioas_alive || d->id != IOAS_ID)
            return -ENOENT;
        s->ioas_alive = false;
        sysRelease(s);
        return 0;
    }
    return s->mops->ioctl(s->mops->opaque, fd, request, arg);
}

static void
sysLog(const char *line, void *opaque)
{
    Sys *s = opaque;

    if (g_test_verbose())
        g_printerr("log: %s\n", line);
    g_ptr_array_add(s->logs, g_strdup(line));
}

static void
sysReport(const char *json, void *opaque)
{
    Sys *s = opaque;

    if (strstr(json, "\"event\":\"vfio-state\""))
        g_ptr_array_add(s->states, g_strdup(json));
    else
        g_ptr_array_add(s->reports, g_strdup(json));
}

static void
sysInit(Sys *s, const Variant *v, bool interpose)
{
    memset(s, 0, sizeof(*s));
    s->v = v;
    s->model = cocoVfioModelNew(&v->cfg);
    s->mops = cocoVfioModelOps(s->model);
    s->cfd = cocoVfioModelFd(s->model);
    s->ops = *s->mops;
    s->ops.ioctl = sysIoctl;
    s->ops.opaque = s;
    s->logs = g_ptr_array_new_with_free_func(g_free);
    s->reports = g_ptr_array_new_with_free_func(g_free);
    s->states = g_ptr_array_new_with_free_func(g_free);
    if (interpose)
        s->ip = cocoVfioInterposerNew(&s->ops, sysLog, sysReport, s);
}

static void
sysClear(Sys *s)
{
    cocoVfioInterposerFree(s->ip);
    cocoVfioModelFree(s->model);
    g_ptr_array_unref(s->logs);
    g_ptr_array_unref(s->reports);
    g_ptr_array_unref(s->states);
}

/* QEMU's ioctl() and close(), with or without the interposer. */
static int
qemuIoctl(Sys *s, int fd, unsigned long request, void *arg)
{
    if (s->ip && cocoVfioInterposerWants(request))
        return cocoVfioInterposerIoctl(s->ip, fd, request, arg);
    return sysIoctl(s, fd, request, arg);
}

static void
qemuClose(Sys *s, int fd)
{
    if (s->ip && cocoVfioInterposerTracks(s->ip, fd))
        cocoVfioInterposerClose(s->ip, fd);
    if (fd == DEVICE_FD) {
        s->device_open = false;
        if (!s->group_open && s->attached) {
            s->attached = false;
            sysRelease(s);
        }
    } else if (fd == GROUP_FD) {
        s->group_open = false;
        if (s->attached && !s->device_open) {
            s->attached = false;
            sysRelease(s);
        }
    } else if (fd == s->cfd && s->v->cfg.kind == COCO_VFIO_MODEL_IOMMUFD) {
        if (s->ioas_alive) {
            s->ioas_alive = false;
            sysRelease(s);
        }
    }
}

static int
qemuMap(Sys *s, uint64_t iova, uint64_t size)
{
    struct vfio_iommu_type1_dma_map m = {
        .argsz = sizeof(m),
        .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        .vaddr = 0x7f0000000000ULL,
        .iova = iova,
        .size = size,
    };

    return qemuIoctl(s, s->cfd, VFIO_IOMMU_MAP_DMA, &m);
}

static int
qemuUnmap(Sys *s, uint64_t iova, uint64_t size, uint32_t flags, uint64_t *out)
{
    struct vfio_iommu_type1_dma_unmap u = {
        .argsz = sizeof(u), .flags = flags, .iova = iova, .size = size};
    int rc = qemuIoctl(s, s->cfd, VFIO_IOMMU_UNMAP_DMA, &u);

    if (out)
        *out = u.size;
    return rc;
}

/* vfio_connect_container() and vfio_get_device() of QEMU 7.2. */
static void
qemuPlug(Sys *s)
{
    char name[] = "0000:00:04.0";
    int cfd = s->cfd;

    s->group_open = true;
    g_assert_cmpint(qemuIoctl(s, GROUP_FD, VFIO_GROUP_SET_CONTAINER, &cfd), ==,
                    0);
    g_assert_cmpint(
        qemuIoctl(s, s->cfd, VFIO_SET_IOMMU,
                  (void *)(uintptr_t)(s->v->cfg.v2 ? VFIO_TYPE1v2_IOMMU
                                                   : VFIO_TYPE1_IOMMU)),
        ==, 0);
    g_assert_cmpint(qemuIoctl(s, GROUP_FD, VFIO_GROUP_GET_DEVICE_FD, name), ==,
                    DEVICE_FD);
}

/* device_del: vfio_put_base_device(), then vfio_disconnect_container():
 * the listener's region_del of the vIOMMU's 2^64 section (two halves,
 * "the unmap ioctl doesn't accept a full 64-bit span"), UNSET, close. */
static void
qemuUnplug(Sys *s)
{
    qemuClose(s, DEVICE_FD);
    qemuUnmap(s, 0, HALF, 0, NULL);
    qemuUnmap(s, HALF, HALF, 0, NULL);
    g_assert_cmpint(qemuIoctl(s, GROUP_FD, VFIO_GROUP_UNSET_CONTAINER, NULL),
                    ==, 0);
    qemuClose(s, s->cfd);
    qemuClose(s, GROUP_FD);
}

static bool
logsHave(Sys *s, const char *needle)
{
    guint i;

    for (i = 0; i < s->logs->len; i++) {
        if (strstr(g_ptr_array_index(s->logs, i), needle))
            return true;
    }
    return false;
}

/*
 * A guest behind a 64-bit vIOMMU maps a low page, the page just below the
 * top and the top page; QEMU maps each (vfio_iommu_map_notify), then the
 * device is unplugged. Through the interposer nothing stays pinned on any
 * kernel; on an unfixed kernel the top page is refused and the second half
 * of QEMU's split never reaches the kernel as a request ending at 2^64.
 */
static void
testUnplug(gconstpointer data)
{
    const Variant *v = data;
    Sys s;

    sysInit(&s, v, true);
    qemuPlug(&s);
    g_assert_cmpint(qemuMap(&s, 0x100000, 0x10000), ==, 0);
    g_assert_cmpint(qemuMap(&s, TOP - PG, PG), ==, 0);
    g_assert_cmpint(qemuMap(&s, TOP, PG), ==, variantBuggy(v) ? -EPERM : 0);
    g_assert_cmpint(qemuIoctl(&s, DEVICE_FD, VFIO_DEVICE_GET_INFO, NULL), ==,
                    0);
    g_assert_cmpuint(s.device_ioctls, ==, 1);
    g_assert_cmpuint(cocoVfioModelPinnedBytes(s.model), ==,
                     0x10000 + PG + (variantBuggy(v) ? 0 : PG));
    qemuUnplug(&s);

    g_assert_cmpuint(s.releases, ==, 1);
    g_assert_cmpuint(s.tracked_at_release, ==, 0);
    g_assert_cmpuint(cocoVfioModelPinnedBytes(s.model), ==, 0);
    g_assert_cmpuint(cocoVfioModelLiveBytes(s.model), ==, 0);
    g_assert_cmpuint(cocoVfioModelGetStats(s.model)->unmap_end_2_64, ==, 0);
    g_assert_cmpuint(s.reports->len, ==, 0);
    g_assert_true(logsHave(&s, "0 mapping(s) left to the kernel"));
    g_assert_true(logsHave(&s, "refusing to map") == variantBuggy(v));
    sysClear(&s);
}

/* The control: the same guest and unplug without the interposer leave the
 * top page pinned on an unfixed kernel (research/vfio.md §6, case D+H). */
static void
testUnplugWithout(gconstpointer data)
{
    const Variant *v = data;
    Sys s;

    sysInit(&s, v, false);
    qemuPlug(&s);
    g_assert_cmpint(qemuMap(&s, 0x100000, 0x10000), ==, 0);
    g_assert_cmpint(qemuMap(&s, TOP - PG, PG), ==, 0);
    g_assert_cmpint(qemuMap(&s, TOP, PG), ==, 0);
    qemuUnplug(&s);
    g_assert_cmpuint(s.releases, ==, 1);
    if (variantBuggy(v)) {
        g_assert_cmpuint(cocoVfioModelPinnedBytes(s.model), ==, PG);
        g_assert_cmpuint(s.tracked_at_release, >, 0);
    } else {
        g_assert_cmpuint(cocoVfioModelPinnedBytes(s.model), ==, 0);
    }
    sysClear(&s);
}

/* QEMU dies or closes the group with DMA still mapped: the interposer
 * unmaps it range-safely before the kernel releases the IOMMU. */
static void
testGroupCloseTearsDown(gconstpointer data)
{
    const Variant *v = data;
    Sys s;

    sysInit(&s, v, true);
    qemuPlug(&s);
    g_assert_cmpint(qemuMap(&s, 0x100000, 0x10000), ==, 0);
    g_assert_cmpint(qemuMap(&s, TOP - 2 * PG, PG), ==, 0);
    g_assert_cmpint(qemuMap(&s, TOP - PG, PG), ==, 0);
    qemuClose(&s, DEVICE_FD);
    g_assert_cmpuint(s.releases, ==, 0); /* the group keeps it */
    qemuClose(&s, s.cfd);
    g_assert_cmpuint(s.releases, ==, 0);
    qemuClose(&s, GROUP_FD);
    g_assert_cmpuint(s.releases, ==, 1);
    g_assert_cmpuint(s.tracked_at_release, ==, 0);
    g_assert_cmpuint(cocoVfioModelPinnedBytes(s.model), ==, 0);
    g_assert_cmpuint(cocoVfioModelGetStats(s.model)->unmap_end_2_64, ==, 0);
    if (variantBuggy(v))
        g_assert_cmpuint(cocoVfioModelGetStats(s.model)->unmap_all, ==, 0);
    g_assert_cmpuint(s.reports->len, ==, 0);
    sysClear(&s);
}

/* The group is closed while its device is open: the kernel releases the
 * IOMMU with the device, and so does the interposer. */
static void
testDeviceLast(void)
{
    Sys s;

    sysInit(&s, cocoVfioModelVariantGet("type1-buggy-v2"), true);
    qemuPlug(&s);
    g_assert_cmpint(qemuMap(&s, 0x100000, 0x10000), ==, 0);
    qemuClose(&s, GROUP_FD);
    g_assert_cmpuint(s.releases, ==, 0);
    qemuClose(&s, DEVICE_FD);
    g_assert_cmpuint(s.releases, ==, 1);
    g_assert_cmpuint(s.tracked_at_release, ==, 0);
    qemuClose(&s, s.cfd);
    sysClear(&s);
}

static JsonObject *
parseReport(const char *json)
{
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) err = NULL;

    g_assert_true(json_parser_load_from_data(p, json, -1, &err));
    g_assert_no_error(err);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p)));
    return json_object_ref(json_node_get_object(json_parser_get_root(p)));
}

/* A kernel that removes nothing (the model's fault): the release names
 * exactly the two mappings, in the log and in one report. */
static void
testLeakReport(void)
{
    g_autoptr(JsonObject) r = NULL;
    JsonArray *ranges;
    JsonObject *e;
    CocoVfioInterposerStats st;
    Sys s;

    sysInit(&s, cocoVfioModelVariantGet("type1-buggy-v2"), true);
    qemuPlug(&s);
    g_assert_cmpint(qemuMap(&s, 0x100000, 0x2000), ==, 0);
    g_assert_cmpint(qemuMap(&s, 0x200000, 0x1000), ==, 0);
    cocoVfioModelSetFault(s.model, COCO_VFIO_MODEL_FAULT_SILENT_ALL);
    qemuClose(&s, DEVICE_FD);
    qemuClose(&s, GROUP_FD);
    g_assert_cmpuint(s.releases, ==, 1);
    g_assert_cmpuint(s.reports->len, ==, 1);
    r = parseReport(g_ptr_array_index(s.reports, 0));
    g_assert_cmpstr(json_object_get_string_member(r, "event"), ==, "vfio-leak");
    g_assert_cmpstr(json_object_get_string_member(r, "when"), ==, "release");
    g_assert_cmpstr(json_object_get_string_member(r, "backend"), ==, "type1v2");
    g_assert_cmpstr(json_object_get_string_member(r, "fix"), ==, "absent");
    g_assert_cmpint(json_object_get_int_member(r, "count"), ==, 2);
    g_assert_cmpstr(json_object_get_string_member(r, "bytes"), ==, "0x3000");
    ranges = json_object_get_array_member(r, "ranges");
    g_assert_cmpuint(json_array_get_length(ranges), ==, 2);
    e = json_array_get_object_element(ranges, 0);
    g_assert_cmpstr(json_object_get_string_member(e, "first"), ==, "0x100000");
    g_assert_cmpstr(json_object_get_string_member(e, "last"), ==, "0x101fff");
    e = json_array_get_object_element(ranges, 1);
    g_assert_cmpstr(json_object_get_string_member(e, "first"), ==, "0x200000");
    g_assert_true(logsHave(&s, "[0x100000, 0x101fff], [0x200000, 0x200fff]"));
    cocoVfioInterposerGetStats(s.ip, &st);
    g_assert_cmpuint(st.leaks, ==, 2);
    g_assert_cmpuint(st.reports, ==, 1);
    sysClear(&s);
}

/* The state report after each step of QEMU 7.2's plug and unplug: the
 * device named while open, the mappings its container keeps, and after
 * the unplug nothing (what a detach confirms, docs/vfio.rst). */
static void
checkState(Sys *s, guint index, const char *device, gint64 count,
           gint64 mappings, const char *bytes)
{
    g_autoptr(JsonObject) r = NULL;
    JsonArray *devices;

    g_assert_cmpuint(s->states->len, >, index);
    r = parseReport(g_ptr_array_index(s->states, index));
    g_assert_cmpstr(json_object_get_string_member(r, "event"), ==,
                    "vfio-state");
    devices = json_object_get_array_member(r, "devices");
    g_assert_cmpuint(json_array_get_length(devices), ==, device ? 1 : 0);
    if (device)
        g_assert_cmpstr(json_array_get_string_element(devices, 0), ==, device);
    g_assert_cmpint(json_object_get_int_member(r, "count"), ==, count);
    g_assert_cmpint(json_object_get_int_member(r, "mappings"), ==, mappings);
    g_assert_cmpstr(json_object_get_string_member(r, "bytes"), ==, bytes);
}

static void
testStateReport(gconstpointer data)
{
    const Variant *v = data;
    CocoVfioInterposerStats st;
    Sys s;

    sysInit(&s, v, true);
    qemuPlug(&s);
    checkState(&s, 0, "0000:00:04.0", 1, 0, "0x0");
    g_assert_cmpint(qemuMap(&s, 0x100000, 0x2000), ==, 0);
    g_assert_cmpint(qemuMap(&s, 0x200000, 0x1000), ==, 0);
    qemuUnplug(&s);
    /* The device closed: its container still maps the guest's pages. */
    checkState(&s, 1, NULL, 0, 2, "0x3000");
    /* QEMU unmapped and the group left: nothing is held. */
    g_assert_cmpuint(s.states->len, ==, 3);
    checkState(&s, 2, NULL, 0, 0, "0x0");
    g_assert_cmpuint(s.reports->len, ==, 0);
    cocoVfioInterposerGetStats(s.ip, &st);
    g_assert_cmpuint(st.states, ==, 3);
    sysClear(&s);
}

/* A device name that is not one (QEMU's argument is a C string of any
 * bytes) is counted but not repeated. */
static void
testStateOddName(void)
{
    char name[] = "0000:00:04.0\"}";
    g_autoptr(JsonObject) r = NULL;
    int cfd;
    Sys s;

    sysInit(&s, cocoVfioModelVariantGet("type1-buggy-v2"), true);
    cfd = s.cfd;
    s.group_open = true;
    g_assert_cmpint(qemuIoctl(&s, GROUP_FD, VFIO_GROUP_SET_CONTAINER, &cfd), ==,
                    0);
    g_assert_cmpint(qemuIoctl(&s, s.cfd, VFIO_SET_IOMMU,
                              (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU),
                    ==, 0);
    g_assert_cmpint(qemuIoctl(&s, GROUP_FD, VFIO_GROUP_GET_DEVICE_FD, name), ==,
                    DEVICE_FD);
    g_assert_cmpuint(s.states->len, ==, 1);
    r = parseReport(g_ptr_array_index(s.states, 0));
    g_assert_cmpuint(
        json_array_get_length(json_object_get_array_member(r, "devices")), ==,
        0);
    g_assert_cmpint(json_object_get_int_member(r, "count"), ==, 1);
    qemuUnplug(&s);
    sysClear(&s);
}

/* QEMU's own unmap the kernel does not confirm: EIO, logged, reported. */
static void
testUnmapLeak(void)
{
    g_autoptr(JsonObject) r = NULL;
    uint64_t out = 1;
    Sys s;

    sysInit(&s, cocoVfioModelVariantGet("type1-buggy-v2"), true);
    qemuPlug(&s);
    g_assert_cmpint(qemuMap(&s, 0x100000, 0x1000), ==, 0);
    cocoVfioModelSetFault(s.model, COCO_VFIO_MODEL_FAULT_SILENT_ALL);
    g_assert_cmpint(qemuUnmap(&s, 0x100000, 0x1000, 0, &out), ==, -EIO);
    g_assert_cmpuint(out, ==, 0);
    g_assert_cmpuint(s.reports->len, ==, 1);
    r = parseReport(g_ptr_array_index(s.reports, 0));
    g_assert_cmpstr(json_object_get_string_member(r, "when"), ==, "unmap");
    g_assert_cmpint(json_object_get_int_member(r, "count"), ==, 1);
    sysClear(&s);
}

/* VFIO_DMA_UNMAP_FLAG_ALL from QEMU 10.2: on an unfixed kernel the module
 * never sends ALL (it reports success while the top stays pinned). */
static void
testUnmapAllFlag(gconstpointer data)
{
    const Variant *v = data;
    uint64_t out = 0;
    Sys s;

    sysInit(&s, v, true);
    qemuPlug(&s);
    g_assert_cmpint(qemuMap(&s, 0x100000, 0x10000), ==, 0);
    g_assert_cmpint(qemuMap(&s, TOP - PG, PG), ==, 0);
    cocoVfioModelResetStats(s.model);
    g_assert_cmpint(qemuUnmap(&s, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &out), ==, 0);
    g_assert_cmpuint(out, ==, 0x10000 + PG);
    g_assert_cmpuint(cocoVfioModelLiveBytes(s.model), ==, 0);
    if (variantBuggy(v))
        g_assert_cmpuint(cocoVfioModelGetStats(s.model)->unmap_all, ==, 0);
    qemuUnplug(&s);
    g_assert_cmpuint(cocoVfioModelPinnedBytes(s.model), ==, 0);
    sysClear(&s);
}

/* What the interposer does not own reaches the kernel unchanged; what it
 * cannot carry is refused. */
static void
testPassThrough(void)
{
    struct vfio_iommu_type1_dma_unmap u = {
        .argsz = sizeof(u),
        .flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
        .iova = 0x100000,
        .size = 0x1000,
    };
    CocoVfioInterposerStats st;
    uint64_t maps;
    Sys s;

    g_assert_false(cocoVfioInterposerWants(_IO(0xae, 0x80))); /* KVM_RUN */
    g_assert_false(cocoVfioInterposerWants(FIONREAD));
    g_assert_true(cocoVfioInterposerWants(VFIO_IOMMU_MAP_DMA));
    g_assert_true(cocoVfioInterposerWants(COCO_IOMMU_IOAS_MAP));

    sysInit(&s, cocoVfioModelVariantGet("type1-buggy-v2"), true);
    qemuPlug(&s);
    cocoVfioInterposerGetStats(s.ip, &st);
    g_assert_cmpint(qemuIoctl(&s, DEVICE_FD, VFIO_DEVICE_GET_INFO, NULL), ==,
                    0);
    g_assert_cmpint(qemuIoctl(&s, DEVICE_FD, VFIO_DEVICE_RESET, NULL), ==, 0);
    g_assert_cmpuint(s.device_ioctls, ==, 2);
    {
        CocoVfioInterposerStats st2;

        cocoVfioInterposerGetStats(s.ip, &st2);
        g_assert_cmpuint(st2.handled, ==, st.handled);
    }

    g_assert_cmpint(qemuMap(&s, 0x100000, 0x1000), ==, 0);
    /* overlapping, misaligned, wrapping (the kernel's own answer) */
    maps = cocoVfioModelGetStats(s.model)->maps;
    g_assert_cmpint(qemuMap(&s, 0x100000, 0x2000), ==, -EEXIST);
    g_assert_cmpint(qemuMap(&s, 0x300800, 0x1000), ==, -EINVAL);
    g_assert_cmpuint(cocoVfioModelGetStats(s.model)->maps, ==, maps);
    g_assert_cmpint(qemuMap(&s, TOP, 2 * PG), ==, -EINVAL);
    g_assert_cmpuint(cocoVfioModelGetStats(s.model)->maps, ==, maps + 1);
    /* a split of a mapping is refused as v2 does */
    g_assert_cmpint(qemuMap(&s, 0x400000, 0x2000), ==, 0);
    g_assert_cmpint(qemuUnmap(&s, 0x400000, 0x1000, 0, NULL), ==, -EINVAL);
    /* dirty bitmaps are not carried */
    g_assert_cmpint(qemuIoctl(&s, s.cfd, VFIO_IOMMU_UNMAP_DMA, &u), ==,
                    -EOPNOTSUPP);
    g_assert_true(logsHave(&s, "dirty bitmap"));
    g_assert_cmpuint(cocoVfioModelLiveBytes(s.model), ==, 0x3000);
    /* a request without its argument */
    g_assert_cmpint(qemuIoctl(&s, GROUP_FD, VFIO_GROUP_SET_CONTAINER, NULL), ==,
                    -EFAULT);
    qemuUnplug(&s);
    g_assert_cmpuint(cocoVfioModelPinnedBytes(s.model), ==, 0);
    sysClear(&s);
}

/* A forked child inherited QEMU's descriptors: nothing it closes may
 * touch the parent's mappings. */
static void
testForkChild(void)
{
    Sys s;

    sysInit(&s, cocoVfioModelVariantGet("type1-buggy-v2"), true);
    qemuPlug(&s);
    g_assert_cmpint(qemuMap(&s, 0x100000, 0x1000), ==, 0);
    cocoVfioModelResetStats(s.model);
    cocoVfioInterposerForkChild(s.ip);
    cocoVfioInterposerClose(s.ip, GROUP_FD);
    g_assert_cmpuint(cocoVfioModelGetStats(s.model)->unmaps, ==, 0);
    g_assert_cmpuint(cocoVfioModelLiveBytes(s.model), ==, 0x1000);
    sysClear(&s);

    /* a child of a process that followed nothing starts afresh */
    sysInit(&s, cocoVfioModelVariantGet("type1-buggy-v2"), true);
    cocoVfioInterposerForkChild(s.ip);
    qemuPlug(&s);
    g_assert_cmpint(qemuMap(&s, TOP, PG), ==, -EPERM);
    qemuUnplug(&s);
    sysClear(&s);
}

/* iommufd: no top-of-space bug, so nothing is refused; unmaps are
 * verified, a split is ENOENT as the kernel's, a device leaving says what
 * the IOAS keeps, destroy and close drop the records. */
static void
testIommufd(void)
{
    CocoIommuIoasAlloc a = {.size = sizeof(a)};
    CocoIommuIoasMap m = {
        .size = sizeof(m),
        .flags = COCO_IOMMU_IOAS_MAP_FIXED_IOVA | COCO_IOMMU_IOAS_MAP_READABLE,
        .ioas_id = IOAS_ID,
        .user_va = 0x7f0000000000ULL,
    };
    CocoIommuIoasUnmap u = {.size = sizeof(u), .ioas_id = IOAS_ID};
    struct vfio_device_bind_iommufd bind = {.argsz = sizeof(bind)};
    struct vfio_device_attach_iommufd_pt att = {.argsz = sizeof(att)};
    struct vfio_device_detach_iommufd_pt det = {.argsz = sizeof(det)};
    CocoIommuDestroy d = {.size = sizeof(d), .id = IOAS_ID};
    Sys s;

    sysInit(&s, cocoVfioModelVariantGet("iommufd"), true);
    g_assert_cmpint(qemuIoctl(&s, s.cfd, COCO_IOMMU_IOAS_ALLOC, &a), ==, 0);
    bind.iommufd = s.cfd;
    g_assert_cmpint(qemuIoctl(&s, DEVICE_FD, VFIO_DEVICE_BIND_IOMMUFD, &bind),
                    ==, 0);
    att.pt_id = IOAS_ID;
    g_assert_cmpint(
        qemuIoctl(&s, DEVICE_FD, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &att), ==, 0);
    m.iova = 0x100000;
    m.length = 0x10000;
    g_assert_cmpint(qemuIoctl(&s, s.cfd, COCO_IOMMU_IOAS_MAP, &m), ==, 0);
    m.iova = TOP;
    m.length = PG;
    g_assert_cmpint(qemuIoctl(&s, s.cfd, COCO_IOMMU_IOAS_MAP, &m), ==, 0);
    g_assert_cmpint(qemuIoctl(&s, s.cfd, COCO_IOMMU_IOAS_MAP, &m), ==, -EEXIST);
    /* split */
    u.iova = 0x100000;
    u.length = 0x1000;
    g_assert_cmpint(qemuIoctl(&s, s.cfd, COCO_IOMMU_IOAS_UNMAP, &u), ==,
                    -ENOENT);
    /* the top page, inclusive on iommufd */
    u.iova = TOP;
    u.length = PG;
    g_assert_cmpint(qemuIoctl(&s, s.cfd, COCO_IOMMU_IOAS_UNMAP, &u), ==, 0);
    g_assert_cmpuint(u.length, ==, PG);
    g_assert_cmpint(
        qemuIoctl(&s, DEVICE_FD, VFIO_DEVICE_DETACH_IOMMUFD_PT, &det), ==, 0);
    g_assert_true(logsHave(&s, "the last device left it; it keeps 1 DMA"));
    g_assert_cmpint(qemuIoctl(&s, s.cfd, COCO_IOMMU_DESTROY, &d), ==, 0);
    g_assert_true(logsHave(&s, "1 mapping(s) left to the kernel"));
    g_assert_cmpuint(cocoVfioModelPinnedBytes(s.model), ==, 0);
    qemuClose(&s, DEVICE_FD);

    /* a second IOAS, released by closing the iommufd */
    g_assert_cmpint(qemuIoctl(&s, s.cfd, COCO_IOMMU_IOAS_ALLOC, &a), ==, 0);
    m.iova = 0x200000;
    m.length = 0x1000;
    g_assert_cmpint(qemuIoctl(&s, s.cfd, COCO_IOMMU_IOAS_MAP, &m), ==, 0);
    u.iova = 0;
    u.length = G_MAXUINT64;
    g_assert_cmpint(qemuIoctl(&s, s.cfd, COCO_IOMMU_IOAS_UNMAP, &u), ==, 0);
    g_assert_cmpuint(u.length, ==, 0x1000);
    qemuClose(&s, s.cfd);
    g_assert_false(cocoVfioInterposerTracks(s.ip, s.cfd));
    g_assert_cmpuint(s.reports->len, ==, 0);
    sysClear(&s);
}

/*
 * Seeded random guests: maps anywhere in the model's last range (the top
 * page included), unmaps of recorded ranges, of whole regions and of
 * QEMU's two halves, then the unplug. Invariants: the kernel model never
 * sees a request ending at 2^64 or ALL on an unfixed kernel, every map the
 * interposer let through is unmapped, nothing stays pinned.
 */
static void
testRandom(gconstpointer data)
{
    const Variant *v = data;
    const char *seedenv = g_getenv("COCO_VFIO_SEED");
    guint32 seed =
        seedenv ? (guint32)g_ascii_strtoull(seedenv, NULL, 10) : g_random_int();
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
    int run;
    int nruns = g_test_slow() ? 2000 : 150;

    for (run = 0; run < nruns; run++) {
        Sys s;
        int i;
        int n = g_rand_int_range(rand, 1, 12);

        sysInit(&s, v, true);
        qemuPlug(&s);
        for (i = 0; i < n; i++) {
            uint64_t pages = g_rand_int_range(rand, 1, 4);
            uint64_t back = g_rand_int_range(rand, 1, 64);
            uint64_t iova = g_rand_boolean(rand)
                                ? G_MAXUINT64 - back * PG + 1
                                : 0x100000 + g_rand_int_range(rand, 0, 64) * PG;

            if (iova + (pages * PG - 1) < iova)
                pages = (G_MAXUINT64 - iova + 1) / PG;
            qemuMap(&s, iova, pages * PG);
            if (g_rand_int_range(rand, 0, 4) == 0)
                qemuUnmap(&s, iova, pages * PG, 0, NULL);
        }
        if (g_rand_boolean(rand))
            qemuUnmap(&s, 0xfef00000ULL, G_MAXUINT64 - 0xfef00000ULL + 1, 0,
                      NULL);
        qemuUnplug(&s);
        if (cocoVfioModelPinnedBytes(s.model) != 0 ||
            cocoVfioModelGetStats(s.model)->unmap_end_2_64 != 0 ||
            (variantBuggy(v) && cocoVfioModelGetStats(s.model)->unmap_all))
            g_error("random run %d of seed %u (%s) left %" G_GUINT64_FORMAT
                    " bytes pinned",
                    run, seed, v->name, cocoVfioModelPinnedBytes(s.model));
        g_assert_cmpuint(s.tracked_at_release, ==, 0);
        sysClear(&s);
    }
}

int
main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < cocoVfioModelNVariants; i++) {
        const Variant *v = &cocoVfioModelVariants[i];
        g_autofree char *unplug =
            g_strdup_printf("/vfio/interposer/unplug/%s", v->name);
        g_autofree char *without =
            g_strdup_printf("/vfio/interposer/unplug-without/%s", v->name);
        g_autofree char *teardown =
            g_strdup_printf("/vfio/interposer/group-close/%s", v->name);
        g_autofree char *all =
            g_strdup_printf("/vfio/interposer/unmap-all/%s", v->name);
        g_autofree char *random =
            g_strdup_printf("/vfio/interposer/random/%s", v->name);

        /* Native iommufd has no container: testIommufd() below. */
        if (v->cfg.kind == COCO_VFIO_MODEL_IOMMUFD)
            continue;
        g_test_add_data_func(unplug, v, testUnplug);
        g_test_add_data_func(without, v, testUnplugWithout);
        g_test_add_data_func(teardown, v, testGroupCloseTearsDown);
        if (v->cfg.unmap_all || v->cfg.kind == COCO_VFIO_MODEL_COMPAT)
            g_test_add_data_func(all, v, testUnmapAllFlag);
        g_test_add_data_func(random, v, testRandom);
    }
    g_test_add_func("/vfio/interposer/device-last", testDeviceLast);
    g_test_add_func("/vfio/interposer/leak-report", testLeakReport);
    g_test_add_data_func("/vfio/interposer/state-report",
                         cocoVfioModelVariantGet("type1-buggy-v2"),
                         testStateReport);
    g_test_add_func("/vfio/interposer/state-odd-name", testStateOddName);
    g_test_add_func("/vfio/interposer/unmap-leak", testUnmapLeak);
    g_test_add_func("/vfio/interposer/pass-through", testPassThrough);
    g_test_add_func("/vfio/interposer/fork-child", testForkChild);
    g_test_add_func("/vfio/interposer/iommufd", testIommufd);
    return g_test_run();
}
