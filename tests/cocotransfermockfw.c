/*
 * cocotransfermockfw.c: a plain-text firmware double for transfer tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "cocotransfermockfw.h"

#include <errno.h>

#define MOCK_MAGIC 0x4B434F4DU
#define MOCK_HDR 24 /* magic, stream, counter, epoch, n, type */

typedef struct {
    GMutex lock;
    uint8_t *mem;
    uint64_t npages;
    unsigned int nstreams;
    uint32_t *counter;
    uint32_t epoch;
    uint64_t total;
    bool setup;
    bool started;
    unsigned int vcpus;
    uint8_t *refuse;
} MockFw;

static MockFw *
mockGet(CocoFirmware *fw)
{
    return fw->priv;
}

static int
mockFail(GError **error, int err, const char *what)
{
    cocoErrorSet(error, cocoFirmwareErrnoToCode(err), "mock: %s", what);
    return err;
}

static void
put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint32_t
get32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

static int
mockCaps(CocoFirmware *fw, CocoFirmwareCaps *caps, GError **error)
{
    caps->migration = true;
    caps->max_streams = mockGet(fw)->nstreams + 1;
    caps->max_gfns = 512;
    return 0;
}

static int
mockCmd(CocoFirmware *fw, CocoMigrateCmd cmd, uint32_t flags, void *vbuf,
        size_t *buflen, CocoFirmwareStatus *status, GError **error)
{
    MockFw *m = mockGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&m->lock);
    bool src = fw->role == COCO_FIRMWARE_ROLE_SOURCE;
    uint8_t *buf = vbuf;

    switch (cmd) {
    case COCO_MIGRATE_CMD_SETUP:
        if (src) {
            put32(buf, MOCK_MAGIC);
            put32(buf + 4, (uint32_t)m->npages);
            *buflen = 8;
            m->total = 1;
            return 0;
        }
        if (*buflen != 8 || get32(buf) != MOCK_MAGIC ||
            get32(buf + 4) != m->npages)
            return mockFail(error, -EBADMSG, "bad immutable state");
        m->setup = true;
        m->total = 1;
        return 0;
    case COCO_MIGRATE_CMD_TOKEN:
        if (src) {
            if ((flags & COCO_MIGRATE_TOKEN_START) && m->vcpus != 2)
                return mockFail(error, -EPERM, "vCPUs missing");
            put32(buf, MOCK_MAGIC);
            put32(buf + 4, m->epoch + 1);
            put32(buf + 8, (uint32_t)(m->total + 1));
            put32(buf + 12, flags);
            *buflen = 16;
            m->total++;
            m->epoch++;
            memset(m->counter, 0, m->nstreams * sizeof(uint32_t));
            m->started = flags & COCO_MIGRATE_TOKEN_START;
            return 0;
        }
        if (*buflen != 16 || get32(buf) != MOCK_MAGIC ||
            get32(buf + 12) != flags)
            return mockFail(error, -EBADMSG, "bad token");
        if (get32(buf + 4) != m->epoch + 1)
            return mockFail(error, -EPROTO, "token epoch");
        if (get32(buf + 8) != m->total + 1)
            return mockFail(error, -EPROTO, "token before all bundles");
        if ((flags & COCO_MIGRATE_TOKEN_START) && m->vcpus != 2)
            return mockFail(error, -EPERM, "start token before vCPUs");
        m->total++;
        m->epoch++;
        memset(m->counter, 0, m->nstreams * sizeof(uint32_t));
        m->started = flags & COCO_MIGRATE_TOKEN_START;
        return 0;
    case COCO_MIGRATE_CMD_PREPARE:
    case COCO_MIGRATE_CMD_SOURCE_BLACKOUT:
    case COCO_MIGRATE_CMD_ABORT:
    case COCO_MIGRATE_CMD_FINISH:
    case COCO_MIGRATE_CMD_LAST:
    default:
        if (buflen)
            *buflen = 0;
        return 0;
    }
}

static int
mockExport(CocoFirmware *fw, uint32_t stream, const uint64_t *gfns, uint32_t n,
           uint8_t *st, void *vbuf, size_t *buflen, CocoFirmwareStatus *status,
           GError **error)
{
    MockFw *m = mockGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&m->lock);
    uint8_t *buf = vbuf;
    size_t need = MOCK_HDR + (size_t)n * (8 + 4096);
    bool bad = false;
    uint32_t i;

    if (stream >= m->nstreams || n == 0 || n > 512 || *buflen < need)
        return mockFail(error, -EINVAL, "bad export arguments");
    for (i = 0; i < n; i++) {
        st[i] = m->refuse[gfns[i]] ? 4 : 0;
        bad |= st[i] != 0;
    }
    if (bad) {
        for (i = 0; i < n; i++) {
            if (st[i] == 0)
                st[i] = 1;
        }
        *buflen = 0;
        return mockFail(error, -EPERM, "page refused");
    }
    put32(buf, MOCK_MAGIC);
    put32(buf + 4, stream);
    put32(buf + 8, m->counter[stream]++);
    put32(buf + 12, m->epoch);
    put32(buf + 16, n);
    put32(buf + 20, 0);
    for (i = 0; i < n; i++) {
        memcpy(buf + MOCK_HDR + i * 8, &gfns[i], 8);
        memcpy(buf + MOCK_HDR + n * 8 + (size_t)i * 4096,
               m->mem + gfns[i] * 4096, 4096);
    }
    m->total++;
    *buflen = need;
    return 0;
}

static int
mockImport(CocoFirmware *fw, uint32_t stream, const void *vbuf, size_t len,
           CocoFirmwareStatus *status, GError **error)
{
    MockFw *m = mockGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&m->lock);
    const uint8_t *buf = vbuf;
    uint32_t n, i;

    if (!m->setup || m->started)
        return mockFail(error, -EPERM, "import in wrong state");
    if (len < MOCK_HDR || get32(buf) != MOCK_MAGIC)
        return mockFail(error, -EBADMSG, "bad bundle");
    n = get32(buf + 16);
    if (len != MOCK_HDR + (size_t)n * (8 + 4096) || get32(buf + 4) != stream)
        return mockFail(error, -EBADMSG, "bad bundle size or stream");
    if (get32(buf + 12) != m->epoch)
        return mockFail(error, -EPROTO, "bundle of another epoch");
    if (get32(buf + 8) != m->counter[stream])
        return mockFail(error, -EPROTO, "bundle counter");
    m->counter[stream]++;
    for (i = 0; i < n; i++) {
        uint64_t g;

        memcpy(&g, buf + MOCK_HDR + i * 8, 8);
        if (g >= m->npages)
            return mockFail(error, -EBADMSG, "gfn out of range");
        memcpy(m->mem + g * 4096, buf + MOCK_HDR + n * 8 + (size_t)i * 4096,
               4096);
    }
    m->total++;
    return 0;
}

static int
mockExportVcpu(CocoFirmware *fw, unsigned int vcpu, void *buf, size_t *len,
               CocoFirmwareStatus *status, GError **error)
{
    MockFw *m = mockGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&m->lock);

    if (vcpu != m->vcpus)
        return mockFail(error, -EEXIST, "vCPU order");
    memset(buf, 0xA0 + (int)vcpu, 100);
    *len = 100;
    m->vcpus++;
    m->total++;
    return 0;
}

static int
mockImportVcpu(CocoFirmware *fw, unsigned int vcpu, const void *buf, size_t len,
               CocoFirmwareStatus *status, GError **error)
{
    MockFw *m = mockGet(fw);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&m->lock);

    if (vcpu != m->vcpus || len != 100 ||
        ((const uint8_t *)buf)[0] != 0xA0 + vcpu)
        return mockFail(error, -EBADMSG, "bad vCPU");
    m->vcpus++;
    m->total++;
    return 0;
}

static void
mockFree(CocoFirmware *fw)
{
    MockFw *m = mockGet(fw);

    g_mutex_clear(&m->lock);
    g_free(m->counter);
    g_free(m->refuse);
    g_free(m);
}

static const CocoFirmwareDriver mockDriver = {
    .name = "mock",
    .getCaps = mockCaps,
    .migrateCmd = mockCmd,
    .exportMemory = mockExport,
    .importMemory = mockImport,
    .exportVcpu = mockExportVcpu,
    .importVcpu = mockImportVcpu,
    .free = mockFree,
};

CocoFirmware *
mockFwNew(CocoFirmwareRole role, uint8_t *mem, uint64_t npages,
          unsigned int nstreams)
{
    CocoFirmware *fw = g_new0(CocoFirmware, 1);
    MockFw *m = g_new0(MockFw, 1);

    g_mutex_init(&m->lock);
    m->mem = mem;
    m->npages = npages;
    m->nstreams = nstreams;
    m->counter = g_new0(uint32_t, nstreams);
    m->refuse = g_new0(uint8_t, npages);
    fw->driver = &mockDriver;
    fw->role = role;
    fw->priv = m;
    return fw;
}

void
mockFwRefuse(CocoFirmware *fw, uint64_t gfn, bool refuse)
{
    MockFw *m = mockGet(fw);

    g_mutex_lock(&m->lock);
    m->refuse[gfn] = refuse;
    g_mutex_unlock(&m->lock);
}

uint32_t
mockFwEpoch(CocoFirmware *fw)
{
    MockFw *m = mockGet(fw);
    uint32_t e;

    g_mutex_lock(&m->lock);
    e = m->epoch;
    g_mutex_unlock(&m->lock);
    return e;
}

bool
mockFwStarted(CocoFirmware *fw)
{
    MockFw *m = mockGet(fw);
    bool s;

    g_mutex_lock(&m->lock);
    s = m->started;
    g_mutex_unlock(&m->lock);
    return s;
}
