/*
 * cocovfiomodel.c: a model of the kernel's VFIO type1 and iommufd DMA code
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Behaviour modelled (docs/vfio.rst, research vfio.md §2, §3, §6, §7):
 *  - type1 keeps one record per MAP in a tree ordered by IOVA. On a buggy
 *    kernel every lookup computes "iova + size" and so cannot see a record
 *    that ends at 2^64 (it wraps to 0): such records are invisible to the
 *    overlap check of MAP, to the bisection checks and to the search for the
 *    first record of an UNMAP, and an UNMAP whose own end is 2^64 removes
 *    nothing yet succeeds with size 0. The unmap loop itself walks the tree
 *    with rb_next() from the first visible record, so it does reach an
 *    invisible record lying inside the request: it drops the record and
 *    counts its size, but the unpin loop ("iova < iova + size") never runs,
 *    so its translation and pins stay (the same thing happens to every such
 *    record under VFIO_DMA_UNMAP_FLAG_ALL). Closing the container frees the
 *    domain (translations) but not those pins.
 *  - a fixed kernel uses inclusive ends throughout and answers EOVERFLOW for
 *    a wrapping (iova, size) where the buggy one answers EINVAL.
 *  - iommufd works on inclusive [iova, last] areas: a request that would
 *    split an area, and one that finds nothing, get ENOENT; (0, U64_MAX)
 *    unmaps all. Its type1 compatibility layer answers 0 instead of ENOENT
 *    for an empty range after afb47765f923.
 */

#include "cocovfiomodel.h"
#include "vfio/cocovfiouapi.h"

#include <errno.h>

typedef struct {
    uint64_t iova;
    uint64_t size;
    uint64_t last;
    bool top; /* last == 2^64-1, "iova + size" wraps to 0 */
    uint64_t seq;
    bool pte;
    bool pinned;
} ModelEntry;

struct _CocoVfioModel {
    CocoVfioModelConfig cfg;
    CocoVfioRange *ranges;
    size_t nranges;
    uint64_t pg;
    CocoVfioOps ops;
    int fd;
    uint32_t ioas_id;
    GTree *tree; /* ModelEntry* (key and value), ordered by (iova, seq) */
    GPtrArray *orphans; /* ModelEntry*: dropped records still live/pinned */
    uint64_t seq;
    uint64_t live;
    uint64_t pinned;
    CocoVfioModelFault fault;
    CocoVfioModelStats stats;
};

const CocoVfioModelVariant cocoVfioModelVariants[] = {
    {"type1-buggy-v1", {COCO_VFIO_MODEL_TYPE1, false, false, false, false}},
    {"type1-buggy-v1-all", {COCO_VFIO_MODEL_TYPE1, false, false, true, false}},
    {"type1-buggy-v2", {COCO_VFIO_MODEL_TYPE1, false, true, false, false}},
    {"type1-buggy-v2-all", {COCO_VFIO_MODEL_TYPE1, false, true, true, false}},
    {"type1-fixed-v1", {COCO_VFIO_MODEL_TYPE1, true, false, false, false}},
    {"type1-fixed-v1-all", {COCO_VFIO_MODEL_TYPE1, true, false, true, false}},
    {"type1-fixed-v2", {COCO_VFIO_MODEL_TYPE1, true, true, false, false}},
    {"type1-fixed-v2-all", {COCO_VFIO_MODEL_TYPE1, true, true, true, false}},
    {"compat-old", {COCO_VFIO_MODEL_COMPAT, false, true, true, true}},
    {"compat-new", {COCO_VFIO_MODEL_COMPAT, false, true, true, false}},
    {"iommufd", {COCO_VFIO_MODEL_IOMMUFD, false, true, true, false}},
};

const size_t cocoVfioModelNVariants = G_N_ELEMENTS(cocoVfioModelVariants);

const CocoVfioModelVariant *
cocoVfioModelVariantGet(const char *name)
{
    size_t i;

    for (i = 0; i < cocoVfioModelNVariants; i++) {
        if (STREQ(cocoVfioModelVariants[i].name, name))
            return &cocoVfioModelVariants[i];
    }
    g_error("no VFIO model variant '%s'", name);
    return NULL;
}

static const CocoVfioRange modelDefaultRanges[] = {
    {0, 0xfedfffffULL},
    {0xfef00000ULL, G_MAXUINT64},
};

static int
modelCompare(gconstpointer a, gconstpointer b, gpointer data G_GNUC_UNUSED)
{
    const ModelEntry *x = a;
    const ModelEntry *y = b;

    if (x->iova != y->iova)
        return x->iova < y->iova ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return 0;
}

static bool
modelIsType1(CocoVfioModel *m)
{
    return m->cfg.kind == COCO_VFIO_MODEL_TYPE1;
}

static bool
modelBuggy(CocoVfioModel *m)
{
    return modelIsType1(m) && !m->cfg.fixed;
}

static bool
modelVisible(CocoVfioModel *m, const ModelEntry *e)
{
    return !(modelBuggy(m) && e->top);
}

/* The last node with key <= (iova, any seq). */
static GTreeNode *
modelFloor(CocoVfioModel *m, uint64_t iova)
{
    ModelEntry key = {.iova = iova, .seq = G_MAXUINT64};
    GTreeNode *node = g_tree_upper_bound(m->tree, &key);

    return node ? g_tree_node_previous(node) : g_tree_node_last(m->tree);
}

/* The visible record containing @addr. Visible records never overlap. */
static GTreeNode *
modelContaining(CocoVfioModel *m, uint64_t addr)
{
    GTreeNode *node;

    for (node = modelFloor(m, addr); node; node = g_tree_node_previous(node)) {
        ModelEntry *e = g_tree_node_key(node);

        if (!modelVisible(m, e))
            continue;
        return e->last >= addr ? node : NULL;
    }
    return NULL;
}

/* The first visible record whose last byte is >= @start. */
static GTreeNode *
modelFirstFrom(CocoVfioModel *m, uint64_t start)
{
    GTreeNode *node = modelContaining(m, start);

    if (node)
        return node;
    node = modelFloor(m, start);
    node = node ? g_tree_node_next(node) : g_tree_node_first(m->tree);
    for (; node; node = g_tree_node_next(node)) {
        if (modelVisible(m, g_tree_node_key(node)))
            return node;
    }
    return NULL;
}

static bool
modelInRanges(CocoVfioModel *m, uint64_t iova, uint64_t last)
{
    size_t i;

    for (i = 0; i < m->nranges; i++) {
        if (m->ranges[i].first <= iova && last <= m->ranges[i].last)
            return true;
    }
    return false;
}

static void
modelEntryRelease(CocoVfioModel *m, ModelEntry *e)
{
    if (e->pte)
        m->live -= e->size;
    if (e->pinned)
        m->pinned -= e->size;
    e->pte = e->pinned = false;
}

/* Drop the record of @e: a real unmap, or (buggy, top) only the record. */
static void
modelDrop(CocoVfioModel *m, ModelEntry *e)
{
    g_tree_steal(m->tree, e);
    if (modelBuggy(m) && e->top) {
        g_ptr_array_add(m->orphans, e);
        return;
    }
    modelEntryRelease(m, e);
    g_free(e);
}

CocoVfioModel *
cocoVfioModelNew(const CocoVfioModelConfig *cfg)
{
    CocoVfioModel *m = g_new0(CocoVfioModel, 1);

    m->cfg = *cfg;
    if (!m->cfg.pgsizes)
        m->cfg.pgsizes = 0x1000 | 0x200000 | 0x40000000;
    m->pg = m->cfg.pgsizes & (~m->cfg.pgsizes + 1);
    if (cfg->ranges) {
        m->ranges =
            g_memdup2(cfg->ranges, cfg->nranges * sizeof(CocoVfioRange));
        m->nranges = cfg->nranges;
    } else {
        m->ranges = g_memdup2(modelDefaultRanges, sizeof(modelDefaultRanges));
        m->nranges = G_N_ELEMENTS(modelDefaultRanges);
    }
    m->cfg.ranges = m->ranges;
    m->fd = 1000;
    m->ioas_id = 7;
    m->tree = g_tree_new_full(modelCompare, NULL, g_free, NULL);
    m->orphans = g_ptr_array_new_with_free_func(g_free);
    return m;
}

void
cocoVfioModelFree(CocoVfioModel *m)
{
    if (!m)
        return;
    g_tree_destroy(m->tree);
    g_ptr_array_unref(m->orphans);
    g_free(m->ranges);
    g_free(m);
}

void
cocoVfioModelSetFault(CocoVfioModel *m, CocoVfioModelFault fault)
{
    m->fault = fault;
}

int
cocoVfioModelFd(CocoVfioModel *m)
{
    return m->fd;
}

uint32_t
cocoVfioModelIoasId(CocoVfioModel *m)
{
    return m->ioas_id;
}

const CocoVfioModelStats *
cocoVfioModelGetStats(CocoVfioModel *m)
{
    return &m->stats;
}

void
cocoVfioModelResetStats(CocoVfioModel *m)
{
    memset(&m->stats, 0, sizeof(m->stats));
}

uint64_t
cocoVfioModelLiveBytes(CocoVfioModel *m)
{
    return m->live;
}

uint64_t
cocoVfioModelPinnedBytes(CocoVfioModel *m)
{
    return m->pinned;
}

size_t
cocoVfioModelTrackedCount(CocoVfioModel *m)
{
    return (size_t)g_tree_nnodes(m->tree);
}

static gboolean
modelCollect(gpointer key, gpointer value G_GNUC_UNUSED, gpointer data)
{
    ModelEntry *e = key;
    CocoVfioRange r = {e->iova, e->last};

    if (e->pte || e->pinned)
        g_array_append_val((GArray *)data, r);
    return FALSE;
}

static int
modelRangeCompare(gconstpointer a, gconstpointer b)
{
    const CocoVfioRange *x = a;
    const CocoVfioRange *y = b;

    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return 0;
}

GArray *
cocoVfioModelLeftovers(CocoVfioModel *m)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(CocoVfioRange));
    guint i;

    g_tree_foreach(m->tree, modelCollect, out);
    for (i = 0; i < m->orphans->len; i++)
        modelCollect(g_ptr_array_index(m->orphans, i), NULL, out);
    g_array_sort(out, modelRangeCompare);
    return out;
}

void
cocoVfioModelRelease(CocoVfioModel *m)
{
    GTreeNode *node;
    guint i;

    m->stats.closes++;
    /* The domain goes away with all its translations. */
    for (node = g_tree_node_first(m->tree); node;
         node = g_tree_node_next(node)) {
        ModelEntry *e = g_tree_node_key(node);
        ModelEntry *keep;

        if (e->pte) {
            m->live -= e->size;
            e->pte = false;
        }
        if (modelBuggy(m) && e->top && e->pinned) {
            /* vfio_unmap_unpin() never runs its loop: the pin leaks. */
            keep = g_memdup2(e, sizeof(*e));
            g_ptr_array_add(m->orphans, keep);
            e->pinned = false;
        } else {
            modelEntryRelease(m, e);
        }
    }
    g_tree_destroy(m->tree);
    m->tree = g_tree_new_full(modelCompare, NULL, g_free, NULL);
    for (i = 0; i < m->orphans->len; i++) {
        ModelEntry *e = g_ptr_array_index(m->orphans, i);

        if (e->pte) {
            m->live -= e->size;
            e->pte = false;
        }
        if (!modelBuggy(m) && e->pinned) {
            m->pinned -= e->size;
            e->pinned = false;
        }
    }
}

static ModelEntry *
modelInsert(CocoVfioModel *m, uint64_t iova, uint64_t size)
{
    ModelEntry *e = g_new0(ModelEntry, 1);

    e->iova = iova;
    e->size = size;
    e->last = iova + size - 1;
    e->top = e->last == G_MAXUINT64;
    e->seq = m->seq++;
    e->pte = e->pinned = true;
    m->live += size;
    m->pinned += size;
    g_tree_insert(m->tree, e, e);
    return e;
}

int
cocoVfioModelMap(CocoVfioModel *m, uint64_t iova, uint64_t size)
{
    uint64_t last;
    bool iommufd = !modelIsType1(m);
    GTreeNode *node;

    m->stats.maps++;
    if (size == 0 || iova % m->pg || size % m->pg)
        return -EINVAL;
    if (__builtin_add_overflow(iova, size - 1, &last))
        return (iommufd || m->cfg.fixed) ? -EOVERFLOW : -EINVAL;
    if (!modelInRanges(m, iova, last))
        return -EINVAL;
    /* On a buggy kernel a new record ending at 2^64 goes left at every
     * node of vfio_find_dma(), and existing such records go right: no
     * overlap is ever seen. */
    if (!(modelBuggy(m) && last == G_MAXUINT64)) {
        node = modelFirstFrom(m, iova);
        if (node && ((ModelEntry *)g_tree_node_key(node))->iova <= last)
            return -EEXIST;
    }
    modelInsert(m, iova, size);
    return 0;
}

static size_t
modelCountIn(CocoVfioModel *m, uint64_t iova, uint64_t last)
{
    GTreeNode *node = modelFloor(m, iova);
    size_t n = 0;

    node = node ? node : g_tree_node_first(m->tree);
    for (; node; node = g_tree_node_next(node)) {
        ModelEntry *e = g_tree_node_key(node);

        if (e->iova > last)
            break;
        if (e->last >= iova)
            n++;
    }
    return n;
}

/* Injected faults: true when the request must be silently ignored. */
static bool
modelFaultSilent(CocoVfioModel *m, uint64_t iova, uint64_t last)
{
    switch (m->fault) {
    case COCO_VFIO_MODEL_FAULT_SILENT_ALL:
        return true;
    case COCO_VFIO_MODEL_FAULT_SILENT_MULTI:
        return modelCountIn(m, iova, last) > 1;
    case COCO_VFIO_MODEL_FAULT_NONE:
    default:
        return false;
    }
}

static uint64_t
modelUnmapAll(CocoVfioModel *m)
{
    uint64_t out = 0;
    GTreeNode *node;

    while ((node = g_tree_node_first(m->tree))) {
        ModelEntry *e = g_tree_node_key(node);

        out += e->size;
        modelDrop(m, e);
    }
    return out;
}

static int
modelType1Unmap(CocoVfioModel *m, struct vfio_iommu_type1_dma_unmap *u)
{
    uint64_t last;
    uint64_t out = 0;
    GTreeNode *node;
    bool end_2_64;

    m->stats.unmaps++;
    if (u->argsz < sizeof(*u) ||
        (u->flags & ~(VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP |
                      VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR)))
        return -EINVAL;
    if (u->flags & VFIO_DMA_UNMAP_FLAG_ALL) {
        m->stats.unmap_all++;
        if (!m->cfg.unmap_all || u->iova || u->size ||
            (u->flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP))
            return -EINVAL;
        if (m->fault == COCO_VFIO_MODEL_FAULT_SILENT_ALL) {
            u->size = 0;
            return 0;
        }
        u->size = modelUnmapAll(m);
        return 0;
    }
    if (u->flags)
        return -EINVAL; /* dirty bitmap and vaddr are not modelled */
    if (u->size == 0 || u->iova % m->pg || u->size % m->pg)
        return -EINVAL;
    if (__builtin_add_overflow(u->iova, u->size - 1, &last))
        return m->cfg.fixed ? -EOVERFLOW : -EINVAL;
    end_2_64 = last == G_MAXUINT64;
    if (end_2_64 && !m->cfg.fixed)
        m->stats.unmap_end_2_64++;

    if (m->cfg.v2 && (node = modelContaining(m, u->iova)) &&
        ((ModelEntry *)g_tree_node_key(node))->iova != u->iova)
        return -EINVAL;
    if (end_2_64 && !m->cfg.fixed) {
        /* vfio_find_dma_first_node(): "iova >= start + size" with
         * start + size == 0 rejects every candidate. */
        u->size = 0;
        return 0;
    }
    if (m->cfg.v2 && (node = modelContaining(m, last)) &&
        ((ModelEntry *)g_tree_node_key(node))->last != last)
        return -EINVAL;
    if (modelFaultSilent(m, u->iova, last)) {
        u->size = 0;
        return 0;
    }

    node = modelFirstFrom(m, u->iova);
    while (node) {
        ModelEntry *e = g_tree_node_key(node);
        GTreeNode *next;

        if (e->iova > last)
            break;
        if (!m->cfg.v2 && u->iova > e->iova)
            break;
        out += e->size;
        next = g_tree_node_next(node);
        modelDrop(m, e);
        node = next;
    }
    u->size = out;
    return 0;
}

/* iopt_unmap_iova_range(): 0, -ENOENT for a split (areas before it in the
 * walk are gone), or -ENODATA when nothing intersects. */
static int
modelIommufdUnmapRange(CocoVfioModel *m, uint64_t iova, uint64_t last,
                       uint64_t *out)
{
    GTreeNode *node;
    bool found = false;

    *out = 0;
    if (modelFaultSilent(m, iova, last))
        return 0;
    node = modelFirstFrom(m, iova);
    while (node) {
        ModelEntry *e = g_tree_node_key(node);
        GTreeNode *next;

        if (e->iova > last)
            break;
        found = true;
        if (e->iova < iova || e->last > last)
            return -ENOENT;
        *out += e->size;
        next = g_tree_node_next(node);
        modelDrop(m, e);
        node = next;
    }
    return found ? 0 : -ENODATA;
}

static int
modelCompatUnmap(CocoVfioModel *m, struct vfio_iommu_type1_dma_unmap *u)
{
    uint64_t last;
    uint64_t out;
    int rc;

    m->stats.unmaps++;
    if (u->flags & VFIO_DMA_UNMAP_FLAG_ALL) {
        m->stats.unmap_all++;
        if (u->flags != VFIO_DMA_UNMAP_FLAG_ALL)
            return -EOPNOTSUPP;
        if (u->iova || u->size)
            return -EINVAL;
        u->size =
            m->fault == COCO_VFIO_MODEL_FAULT_SILENT_ALL ? 0 : modelUnmapAll(m);
        return 0;
    }
    if (u->flags)
        return -EOPNOTSUPP;
    if (u->size == 0)
        return -EINVAL;
    if (__builtin_add_overflow(u->iova, u->size - 1, &last))
        return -EOVERFLOW;
    rc = modelIommufdUnmapRange(m, u->iova, last, &out);
    if (rc == -ENODATA) {
        if (m->cfg.compat_empty_enoent)
            return -ENOENT;
        rc = 0;
        out = 0;
    }
    if (rc < 0)
        return rc;
    u->size = out;
    return 0;
}

static int
modelIoasUnmap(CocoVfioModel *m, CocoIommuIoasUnmap *u)
{
    uint64_t last;
    uint64_t out;
    int rc;

    m->stats.unmaps++;
    if (u->size < sizeof(*u))
        return -EINVAL;
    if (u->ioas_id != m->ioas_id)
        return -ENOENT;
    if (u->iova == 0 && u->length == G_MAXUINT64) {
        m->stats.unmap_all++;
        u->length =
            m->fault == COCO_VFIO_MODEL_FAULT_SILENT_ALL ? 0 : modelUnmapAll(m);
        return 0;
    }
    if (u->iova >= G_MAXUINT64 || u->length >= G_MAXUINT64)
        return -EOVERFLOW;
    if (u->length == 0)
        return -EINVAL;
    if (__builtin_add_overflow(u->iova, u->length - 1, &last))
        return -EOVERFLOW;
    rc = modelIommufdUnmapRange(m, u->iova, last, &out);
    if (rc == -ENODATA)
        return -ENOENT;
    if (rc < 0)
        return rc;
    u->length = out;
    return 0;
}

static int
modelGetInfo(CocoVfioModel *m, struct vfio_iommu_type1_info *info)
{
    size_t iovacap = 16 + 16 * m->nranges;
    size_t availcap = 16; /* 12, aligned to 8 like vfio_info_cap_add() */
    size_t need = sizeof(*info) + iovacap + availcap;
    uint8_t *buf = (uint8_t *)info;
    struct vfio_iommu_type1_info_cap_iova_range *iova;
    struct vfio_iommu_type1_info_dma_avail *avail;
    uint32_t argsz = info->argsz;
    size_t i;

    if (argsz < COCO_VFIO_INFO_MINSZ)
        return -EINVAL;
    info->flags = VFIO_IOMMU_INFO_PGSIZES;
    info->iova_pgsizes = m->cfg.pgsizes;
    if (argsz < COCO_VFIO_INFO_CAPSZ)
        return 0;
    info->flags |= VFIO_IOMMU_INFO_CAPS;
    info->cap_offset = 0;
    if (argsz < need) {
        info->argsz = need;
        return 0;
    }
    info->cap_offset = sizeof(*info);
    iova = (void *)(buf + sizeof(*info));
    iova->header.id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
    iova->header.version = 1;
    iova->header.next = sizeof(*info) + iovacap;
    iova->nr_iovas = m->nranges;
    iova->reserved = 0;
    for (i = 0; i < m->nranges; i++) {
        iova->iova_ranges[i].start = m->ranges[i].first;
        iova->iova_ranges[i].end = m->ranges[i].last;
    }
    avail = (void *)(buf + sizeof(*info) + iovacap);
    avail->header.id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL;
    avail->header.version = 1;
    avail->header.next = 0;
    avail->avail = 65535 - (uint32_t)MIN(g_tree_nnodes(m->tree), 65535);
    return 0;
}

static int
modelIovaRanges(CocoVfioModel *m, CocoIommuIoasIovaRanges *q)
{
    CocoIommuIovaRange *out = (void *)(uintptr_t)q->allowed_iovas;
    size_t i;

    if (q->ioas_id != m->ioas_id)
        return -ENOENT;
    if (q->num_iovas < m->nranges) {
        q->num_iovas = m->nranges;
        return -EMSGSIZE;
    }
    for (i = 0; i < m->nranges; i++) {
        out[i].start = m->ranges[i].first;
        out[i].last = m->ranges[i].last;
    }
    q->num_iovas = m->nranges;
    q->out_iova_alignment = m->pg;
    return 0;
}

static int
modelIoctl(void *opaque, int fd, unsigned long request, void *arg)
{
    CocoVfioModel *m = opaque;

    m->stats.ioctls++;
    if (fd != m->fd)
        return -EBADF;

    if (m->cfg.kind == COCO_VFIO_MODEL_IOMMUFD) {
        if (request == COCO_IOMMU_IOAS_MAP) {
            CocoIommuIoasMap *mp = arg;

            if (mp->ioas_id != m->ioas_id)
                return -ENOENT;
            if (!(mp->flags & COCO_IOMMU_IOAS_MAP_FIXED_IOVA))
                return -EOPNOTSUPP;
            return cocoVfioModelMap(m, mp->iova, mp->length);
        }
        if (request == COCO_IOMMU_IOAS_UNMAP)
            return modelIoasUnmap(m, arg);
        if (request == COCO_IOMMU_IOAS_IOVA_RANGES)
            return modelIovaRanges(m, arg);
        return -ENOTTY;
    }

    switch (request) {
    case VFIO_CHECK_EXTENSION:
        switch ((uintptr_t)arg) {
        case VFIO_TYPE1_IOMMU:
        case VFIO_TYPE1v2_IOMMU:
            return 1;
        case VFIO_UNMAP_ALL:
            return m->cfg.kind == COCO_VFIO_MODEL_COMPAT || m->cfg.unmap_all;
        default:
            return 0;
        }
    case VFIO_IOMMU_GET_INFO:
        return modelGetInfo(m, arg);
    case VFIO_IOMMU_MAP_DMA: {
        struct vfio_iommu_type1_dma_map *mp = arg;

        return cocoVfioModelMap(m, mp->iova, mp->size);
    }
    case VFIO_IOMMU_UNMAP_DMA:
        if (m->cfg.kind == COCO_VFIO_MODEL_COMPAT)
            return modelCompatUnmap(m, arg);
        return modelType1Unmap(m, arg);
    default:
        return -ENOTTY;
    }
}

static int
modelOpen(void *opaque G_GNUC_UNUSED, const char *path G_GNUC_UNUSED)
{
    return -ENOENT;
}

static void
modelClose(void *opaque, int fd)
{
    CocoVfioModel *m = opaque;

    if (fd == m->fd)
        cocoVfioModelRelease(m);
}

const CocoVfioOps *
cocoVfioModelOps(CocoVfioModel *m)
{
    m->ops.ioctl = modelIoctl;
    m->ops.open = modelOpen;
    m->ops.close = modelClose;
    m->ops.opaque = m;
    return &m->ops;
}
