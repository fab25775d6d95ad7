/*
 * cocotransferframetest.c: the record format, configuration limits, and
 * the destination's strict parsing of hostile or broken streams
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "cocotransfermockfw.h"
#include "transfer/cocotransfer.h"
#include "transfer/cocotransferdest.h"
#include "transfer/cocotransferframe.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static const CocoTransferLimits limits = {65536, 8192};

static void
testBundleMax(void)
{
    g_assert_cmpuint(cocoTransferBundleMax(1), ==, 4 * 4096);
    g_assert_cmpuint(cocoTransferBundleMax(256), ==, (2 + 1 + 256) * 4096);
    g_assert_cmpuint(cocoTransferBundleMax(257), ==, (2 + 2 + 257) * 4096);
    /* TDX layout of a full bundle: 48 + 4096 + 8192 + 2 MiB fits. */
    g_assert_cmpuint(cocoTransferBundleMax(512), >=,
                     48 + 4096 + 8192 + 512 * 4096);
}

static void
testHeaderRoundTrip(void)
{
    int t;

    for (t = 0; t < COCO_TRANSFER_RECORD_LAST; t++) {
        CocoTransferHeader in = {t, 0, 0xDEADBEEF, 7};
        CocoTransferHeader out;
        uint8_t buf[COCO_TRANSFER_HEADER_SIZE];
        g_autoptr(GError) err = NULL;

        switch ((CocoTransferRecordType)t) {
        case COCO_TRANSFER_RECORD_HELLO:
            in.length = COCO_TRANSFER_HELLO_SIZE;
            break;
        case COCO_TRANSFER_RECORD_MEMORY:
            in.length = 65536;
            break;
        case COCO_TRANSFER_RECORD_IMMUTABLE:
        case COCO_TRANSFER_RECORD_VCPU:
        case COCO_TRANSFER_RECORD_PAGE_MAP:
            in.length = 8192;
            break;
        case COCO_TRANSFER_RECORD_EPOCH_TOKEN:
        case COCO_TRANSFER_RECORD_START_TOKEN:
        case COCO_TRANSFER_RECORD_ABORT_TOKEN:
            in.length = 48;
            break;
        case COCO_TRANSFER_RECORD_EPOCH_END:
        case COCO_TRANSFER_RECORD_END:
        case COCO_TRANSFER_RECORD_LAST:
            break;
        }
        cocoTransferHeaderEncode(&in, buf);
        g_assert_cmpmem(buf, 4, "CCTR", 4);
        g_assert_cmpint(cocoTransferHeaderDecode(buf, &limits, 3, &out, &err),
                        ==, 0);
        g_assert_no_error(err);
        g_assert_cmpint(out.type, ==, in.type);
        g_assert_cmpuint(out.length, ==, in.length);
        g_assert_cmpuint(out.arg0, ==, in.arg0);
        g_assert_cmpuint(out.arg1, ==, in.arg1);
        g_assert_nonnull(cocoTransferRecordTypeToString(t));
    }
}

typedef struct {
    const char *name;
    size_t offset;
    uint8_t value;
} Corruption;

static void
testHeaderCorrupt(void)
{
    static const Corruption cases[] = {
        {"magic", 0, 'X'},   {"version", 4, 2},
        {"type", 5, 10},     {"type-high", 5, 0xFF},
        {"flags", 6, 1},     {"flags-high", 7, 0x80},
        {"reserved", 20, 1}, {"reserved-hi", 23, 0x10},
    };
    CocoTransferHeader hdr = {COCO_TRANSFER_RECORD_MEMORY, 4096, 1, 0};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint8_t buf[COCO_TRANSFER_HEADER_SIZE];
        CocoTransferHeader out;
        g_autoptr(GError) err = NULL;

        cocoTransferHeaderEncode(&hdr, buf);
        buf[cases[i].offset] = cases[i].value;
        g_test_message("corruption %s", cases[i].name);
        g_assert_cmpint(cocoTransferHeaderDecode(buf, &limits, 0, &out, &err),
                        ==, -1);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
    }
}

static void
testHeaderLengths(void)
{
    static const struct {
        CocoTransferRecordType type;
        uint32_t length;
        bool ok;
    } cases[] = {
        {COCO_TRANSFER_RECORD_HELLO, 32, true},
        {COCO_TRANSFER_RECORD_HELLO, 31, false},
        {COCO_TRANSFER_RECORD_HELLO, 33, false},
        {COCO_TRANSFER_RECORD_MEMORY, 0, false},
        {COCO_TRANSFER_RECORD_MEMORY, 1, true},
        {COCO_TRANSFER_RECORD_MEMORY, 65536, true},
        {COCO_TRANSFER_RECORD_MEMORY, 65537, false},
        {COCO_TRANSFER_RECORD_MEMORY, G_MAXUINT32, false},
        {COCO_TRANSFER_RECORD_IMMUTABLE, 8193, false},
        {COCO_TRANSFER_RECORD_VCPU, 0, false},
        {COCO_TRANSFER_RECORD_EPOCH_END, 0, true},
        {COCO_TRANSFER_RECORD_EPOCH_END, 1, false},
        {COCO_TRANSFER_RECORD_END, 4, false},
        {COCO_TRANSFER_RECORD_EPOCH_TOKEN, 4096, true},
        {COCO_TRANSFER_RECORD_START_TOKEN, 4097, false},
        {COCO_TRANSFER_RECORD_ABORT_TOKEN, 0, false},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        CocoTransferHeader hdr = {cases[i].type, cases[i].length, 0, 0};
        uint8_t buf[COCO_TRANSFER_HEADER_SIZE];
        CocoTransferHeader out;
        g_autoptr(GError) err = NULL;
        int rc;

        cocoTransferHeaderEncode(&hdr, buf);
        rc = cocoTransferHeaderDecode(buf, &limits, 0, &out, &err);
        g_test_message("case %zu", i);
        if (cases[i].ok) {
            g_assert_cmpint(rc, ==, 0);
        } else {
            g_assert_cmpint(rc, ==, -1);
            g_assert_error(err, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
        }
    }
}

static void
testHello(void)
{
    CocoTransferHello in = {7, 16, 512, 0x0123456789ABCDEFULL, 1ULL << 40};
    CocoTransferHello out;
    uint8_t buf[COCO_TRANSFER_HELLO_SIZE];
    g_autoptr(GError) err = NULL;

    cocoTransferHelloEncode(&in, buf);
    g_assert_cmpint(cocoTransferHelloDecode(buf, &out, &err), ==, 0);
    g_assert_cmpuint(out.stream, ==, 7);
    g_assert_cmpuint(out.nstreams, ==, 16);
    g_assert_cmpuint(out.pages_per_bundle, ==, 512);
    g_assert_cmpuint(out.session_id, ==, in.session_id);
    g_assert_cmpuint(out.npages, ==, in.npages);
    buf[13] = 1;
    g_assert_cmpint(cocoTransferHelloDecode(buf, &out, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
}

/* Reading records from a byte string: whole, cut at every position. */
static void
testReadTruncated(void)
{
    uint8_t payload[100];
    g_autoptr(GOutputStream) mem = g_memory_output_stream_new_resizable();
    g_autoptr(GError) err = NULL;
    const uint8_t *data;
    size_t size;
    size_t cut;

    memset(payload, 0x5A, sizeof(payload));
    g_assert_cmpint(cocoTransferRecordWrite(mem, 0, COCO_TRANSFER_RECORD_MEMORY,
                                            3, 0, payload, sizeof(payload),
                                            NULL, &err),
                    ==, 0);
    g_assert_true(g_output_stream_close(mem, NULL, NULL));
    data = g_memory_output_stream_get_data(G_MEMORY_OUTPUT_STREAM(mem));
    size = g_memory_output_stream_get_data_size(G_MEMORY_OUTPUT_STREAM(mem));
    g_assert_cmpuint(size, ==, COCO_TRANSFER_HEADER_SIZE + sizeof(payload));

    for (cut = 0; cut <= size; cut++) {
        g_autoptr(GInputStream) in =
            g_memory_input_stream_new_from_data(data, cut, NULL);
        CocoTransferHeader hdr;
        uint8_t buf[100];
        g_autoptr(GError) e = NULL;
        int rc;

        rc = cocoTransferRecordReadHeader(in, 2, &limits, &hdr, NULL, &e);
        if (cut == 0) {
            g_assert_error(e, COCO_ERROR, COCO_ERROR_TRANSFER_IO);
            continue;
        }
        if (cut < COCO_TRANSFER_HEADER_SIZE) {
            g_assert_cmpint(rc, ==, -1);
            g_assert_error(e, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
            continue;
        }
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpuint(hdr.length, ==, sizeof(payload));
        rc = cocoTransferRecordReadPayload(in, 2, hdr.type, buf, hdr.length,
                                           NULL, &e);
        if (cut < size) {
            g_assert_cmpint(rc, ==, -1);
            g_assert_error(e, COCO_ERROR, COCO_ERROR_TRANSFER_PROTOCOL);
        } else {
            g_assert_cmpint(rc, ==, 0);
            g_assert_cmpmem(buf, sizeof(buf), payload, sizeof(payload));
        }
    }
}

static void
testConfig(void)
{
    static const struct {
        unsigned int streams;
        unsigned int ppb;
        unsigned int max_gfns;
        bool ok;
    } cases[] = {
        {1, 1, 0, true},      {4, 64, 512, true},    {16, 512, 512, true},
        {31, 512, 512, true}, {32, 512, 512, false}, {512, 1, 512, true},
        {512, 16, 512, true}, {512, 32, 512, false}, {0, 64, 0, false},
        {513, 1, 0, false},   {4, 0, 0, false},      {4, 513, 0, false},
        {4, 128, 64, false},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        CocoTransferConfig cfg;
        g_autoptr(GError) err = NULL;
        int rc;

        cocoTransferConfigInit(&cfg, NULL);
        cfg.streams = cases[i].streams;
        cfg.pages_per_bundle = cases[i].ppb;
        rc = cocoTransferConfigValidate(&cfg, cases[i].max_gfns, &err);
        g_test_message("case %zu: %u x %u", i, cfg.streams,
                       cfg.pages_per_bundle);
        if (cases[i].ok) {
            g_assert_no_error(err);
            g_assert_cmpuint(cocoTransferBufferBytes(&cfg), <=,
                             COCO_TRANSFER_BUFFER_LIMIT);
        } else {
            g_assert_cmpint(rc, ==, -1);
            g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
        }
    }
}

static void
testConfigFromDef(void)
{
    CocoMigrationDef def;
    CocoTransferConfig cfg;

    cocoTransferConfigInit(&cfg, NULL);
    g_assert_cmpuint(cfg.streams, ==, COCO_TRANSFER_DEFAULT_STREAMS);
    g_assert_cmpuint(cfg.max_epochs, ==, COCO_TRANSFER_DEFAULT_MAX_EPOCHS);

    memset(&def, 0, sizeof(def));
    def.has_streams = true;
    def.forward_streams = 8;
    def.pages_per_bundle = 256;
    def.has_precopy = true;
    def.max_epochs = 12;
    def.max_time = 30;
    def.max_blackout = 300;
    cocoTransferConfigInit(&cfg, &def);
    g_assert_cmpuint(cfg.streams, ==, 8);
    g_assert_cmpuint(cfg.pages_per_bundle, ==, 256);
    g_assert_cmpuint(cfg.max_epochs, ==, 12);
    g_assert_cmpuint(cfg.max_time_ms, ==, 30000);
    g_assert_cmpuint(cfg.max_blackout_ms, ==, 300);
}

/* ---- the destination against crafted streams ------------------------- */

#define NPAGES 16

typedef struct {
    unsigned int nstreams;
    int fd[2]; /* the test's (source) ends */
    GIOStream *io[2];
    uint8_t mem[NPAGES * 4096];
    CocoFirmware *fw;
    CocoTransferDest *dst;
    CocoTransferConfig cfg;
} Crafted;

static void
craftedInit(Crafted *c, unsigned int nstreams)
{
    g_autoptr(GError) err = NULL;
    unsigned int i;

    memset(c, 0, sizeof(*c));
    c->nstreams = nstreams;
    cocoTransferConfigInit(&c->cfg, NULL);
    c->cfg.streams = nstreams;
    c->cfg.pages_per_bundle = 4;
    c->cfg.session_id = 77;
    c->fw = mockFwNew(COCO_FIRMWARE_ROLE_DESTINATION, c->mem, NPAGES, nstreams);
    for (i = 0; i < nstreams; i++) {
        int sv[2];
        g_autoptr(GSocket) sock = NULL;

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                        ==, 0);
        c->fd[i] = sv[0];
        sock = g_socket_new_from_fd(sv[1], &err);
        g_assert_no_error(err);
        c->io[i] =
            G_IO_STREAM(g_socket_connection_factory_create_connection(sock));
    }
    c->dst = cocoTransferDestNew(c->fw, &c->cfg, c->io, &err);
    g_assert_no_error(err);
    g_assert_cmpint(cocoTransferDestStart(c->dst, &err), ==, 0);
}

static void
craftedClear(Crafted *c)
{
    unsigned int i;

    g_clear_pointer(&c->dst, cocoTransferDestFree);
    for (i = 0; i < c->nstreams; i++) {
        g_clear_object(&c->io[i]);
        if (c->fd[i] >= 0)
            close(c->fd[i]);
    }
    cocoFirmwareFree(c->fw);
}

/* The destination may already have failed and closed its end: that is
 * fine, the test checks its error. */
static void
craftedRaw(Crafted *c, unsigned int i, const void *data, size_t len)
{
    ssize_t n = send(c->fd[i], data, len, MSG_NOSIGNAL);

    if (n < 0)
        g_assert_true(errno == EPIPE || errno == ECONNRESET);
    else
        g_assert_cmpint(n, ==, (ssize_t)len);
}

static void
craftedRecord(Crafted *c, unsigned int i, CocoTransferRecordType type,
              uint32_t arg0, uint32_t arg1, const void *payload, size_t len)
{
    CocoTransferHeader hdr = {type, (uint32_t)len, arg0, arg1};
    uint8_t buf[COCO_TRANSFER_HEADER_SIZE];

    cocoTransferHeaderEncode(&hdr, buf);
    craftedRaw(c, i, buf, sizeof(buf));
    if (len)
        craftedRaw(c, i, payload, len);
}

static void
craftedHello(Crafted *c, unsigned int i, unsigned int index, uint64_t session)
{
    CocoTransferHello hello = {index, c->nstreams, 4, session, NPAGES};
    uint8_t buf[COCO_TRANSFER_HELLO_SIZE];

    cocoTransferHelloEncode(&hello, buf);
    craftedRecord(c, i, COCO_TRANSFER_RECORD_HELLO, 0, 0, buf, sizeof(buf));
}

/* The mock's immutable state: magic and page count. */
static void
craftedImmutable(Crafted *c)
{
    uint32_t imm[2] = {0x4B434F4DU, NPAGES};

    craftedRecord(c, 0, COCO_TRANSFER_RECORD_IMMUTABLE, 0, 0, imm, sizeof(imm));
    /* No page is reserved in advance (an empty, final page map). */
    craftedRecord(c, 0, COCO_TRANSFER_RECORD_PAGE_MAP, 0, 0, NULL, 0);
}

/* With one stream the test closes it so that the destination sees the
 * end; with more, closing could race with the error under test, and the
 * destination must fail by itself. */
static void
craftedExpect(Crafted *c, int code)
{
    g_autoptr(GError) err = NULL;
    unsigned int i;

    for (i = 0; i < c->nstreams && c->nstreams == 1; i++) {
        close(c->fd[i]);
        c->fd[i] = -1;
    }
    g_assert_cmpint(cocoTransferDestWait(c->dst, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, code);
}

typedef void (*CraftFunc)(Crafted *c);

static void
craftNoHello(Crafted *c)
{
    craftedImmutable(c);
}

static void
craftGarbage(Crafted *c)
{
    craftedRaw(c, 0, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
}

static void
craftWrongSession(Crafted *c)
{
    craftedHello(c, 0, 0, 78);
}

static void
craftTruncatedHeader(Crafted *c)
{
    craftedHello(c, 0, 0, 77);
    craftedRaw(c, 0, "CCTR\1", 5);
}

static void
craftTruncatedPayload(Crafted *c)
{
    uint8_t half[10] = {0};
    CocoTransferHeader hdr = {COCO_TRANSFER_RECORD_IMMUTABLE, 8, 0, 0};
    uint8_t buf[COCO_TRANSFER_HEADER_SIZE];

    craftedHello(c, 0, 0, 77);
    cocoTransferHeaderEncode(&hdr, buf);
    craftedRaw(c, 0, buf, sizeof(buf));
    craftedRaw(c, 0, half, 4);
}

static void
craftOversized(Crafted *c)
{
    CocoTransferHeader hdr = {COCO_TRANSFER_RECORD_MEMORY, 1U << 30, 0, 0};
    uint8_t buf[COCO_TRANSFER_HEADER_SIZE];

    craftedHello(c, 0, 0, 77);
    craftedImmutable(c);
    cocoTransferHeaderEncode(&hdr, buf);
    craftedRaw(c, 0, buf, sizeof(buf));
}

static void
craftWrongEpoch(Crafted *c)
{
    uint8_t junk[64] = {0};

    craftedHello(c, 0, 0, 77);
    craftedImmutable(c);
    craftedRecord(c, 0, COCO_TRANSFER_RECORD_MEMORY, 5, 0, junk, sizeof(junk));
}

static void
craftCountMismatch(Crafted *c)
{
    craftedHello(c, 0, 0, 77);
    craftedImmutable(c);
    craftedRecord(c, 0, COCO_TRANSFER_RECORD_EPOCH_END, 0, 3, NULL, 0);
}

static void
craftEndTooEarly(Crafted *c)
{
    craftedHello(c, 0, 0, 77);
    craftedImmutable(c);
    craftedRecord(c, 0, COCO_TRANSFER_RECORD_END, 0, 0, NULL, 0);
}

static void
craftCancelled(Crafted *c)
{
    craftedHello(c, 0, 0, 77);
    craftedImmutable(c);
    craftedRecord(c, 0, COCO_TRANSFER_RECORD_END, COCO_TRANSFER_END_CANCELLED,
                  0, NULL, 0);
}

static void
craftTokenFirst(Crafted *c)
{
    uint8_t token[16] = {0};

    craftedHello(c, 0, 0, 77);
    craftedImmutable(c);
    /* A token before the epoch's end marker would overtake bundles. */
    craftedRecord(c, 0, COCO_TRANSFER_RECORD_EPOCH_TOKEN, 0, 0, token,
                  sizeof(token));
}

static void
craftCorruptBundle(Crafted *c)
{
    uint8_t junk[64];

    memset(junk, 0xEE, sizeof(junk));
    craftedHello(c, 0, 0, 77);
    craftedImmutable(c);
    craftedRecord(c, 0, COCO_TRANSFER_RECORD_MEMORY, 0, 0, junk, sizeof(junk));
}

static void
craftClosedAtBoundary(Crafted *c)
{
    craftedHello(c, 0, 0, 77);
    craftedImmutable(c);
}

static void
craftDuplicate(Crafted *c)
{
    craftedHello(c, 0, 0, 77);
    craftedHello(c, 1, 0, 77);
}

static void
craftMemoryOnStreamOneBeforeSetup(Crafted *c)
{
    /* Stream 1 may only start importing after stream 0's setup; a state
     * record on it is refused by its limits. */
    uint32_t imm[2] = {0x4B434F4DU, NPAGES};

    craftedHello(c, 1, 1, 77);
    craftedHello(c, 0, 0, 77);
    craftedImmutable(c);
    craftedRecord(c, 1, COCO_TRANSFER_RECORD_IMMUTABLE, 0, 0, imm, sizeof(imm));
}

/* The page map must follow the immutable state. */
static void
craftNoPageMap(Crafted *c)
{
    uint32_t imm[2] = {0x4B434F4DU, NPAGES};
    uint8_t junk[64] = {0};

    craftedHello(c, 0, 0, 77);
    craftedRecord(c, 0, COCO_TRANSFER_RECORD_IMMUTABLE, 0, 0, imm, sizeof(imm));
    craftedRecord(c, 0, COCO_TRANSFER_RECORD_MEMORY, 0, 0, junk, sizeof(junk));
}

/* Ranges are 16 bytes each, increasing, within the guest. */
static void
craftPageMapBad(Crafted *c, const uint64_t *ranges, size_t len)
{
    uint32_t imm[2] = {0x4B434F4DU, NPAGES};

    craftedHello(c, 0, 0, 77);
    craftedRecord(c, 0, COCO_TRANSFER_RECORD_IMMUTABLE, 0, 0, imm, sizeof(imm));
    craftedRecord(c, 0, COCO_TRANSFER_RECORD_PAGE_MAP, 0, 0, ranges, len);
}

static void
craftPageMapShort(Crafted *c)
{
    uint64_t r[2] = {GUINT64_TO_LE(0), GUINT64_TO_LE(4)};

    craftPageMapBad(c, r, 12);
}

static void
craftPageMapOutside(Crafted *c)
{
    uint64_t r[2] = {GUINT64_TO_LE(NPAGES - 2), GUINT64_TO_LE(3)};

    craftPageMapBad(c, r, sizeof(r));
}

static void
craftPageMapUnordered(Crafted *c)
{
    uint64_t r[4] = {GUINT64_TO_LE(8), GUINT64_TO_LE(4), GUINT64_TO_LE(2),
                     GUINT64_TO_LE(1)};

    craftPageMapBad(c, r, sizeof(r));
}

typedef struct {
    const char *name;
    unsigned int nstreams;
    CraftFunc func;
    int code;
} CraftCase;

static void
testCrafted(gconstpointer data)
{
    const CraftCase *cc = data;
    Crafted c;

    craftedInit(&c, cc->nstreams);
    cc->func(&c);
    craftedExpect(&c, cc->code);
    craftedClear(&c);
}

static const CraftCase craftCases[] = {
    {"no-hello", 1, craftNoHello, COCO_ERROR_TRANSFER_PROTOCOL},
    {"garbage", 1, craftGarbage, COCO_ERROR_TRANSFER_PROTOCOL},
    {"wrong-session", 1, craftWrongSession, COCO_ERROR_TRANSFER_PROTOCOL},
    {"truncated-header", 1, craftTruncatedHeader, COCO_ERROR_TRANSFER_PROTOCOL},
    {"truncated-payload", 1, craftTruncatedPayload,
     COCO_ERROR_TRANSFER_PROTOCOL},
    {"oversized", 1, craftOversized, COCO_ERROR_TRANSFER_PROTOCOL},
    {"wrong-epoch", 1, craftWrongEpoch, COCO_ERROR_TRANSFER_PROTOCOL},
    {"count-mismatch", 1, craftCountMismatch, COCO_ERROR_TRANSFER_PROTOCOL},
    {"end-too-early", 1, craftEndTooEarly, COCO_ERROR_TRANSFER_PROTOCOL},
    {"cancelled", 1, craftCancelled, COCO_ERROR_MIGRATION_ABORTED},
    {"token-first", 1, craftTokenFirst, COCO_ERROR_TRANSFER_PROTOCOL},
    {"corrupt-bundle", 1, craftCorruptBundle, COCO_ERROR_FW_INTEGRITY},
    {"closed", 1, craftClosedAtBoundary, COCO_ERROR_TRANSFER_IO},
    {"duplicate", 2, craftDuplicate, COCO_ERROR_TRANSFER_PROTOCOL},
    {"state-on-stream-1", 2, craftMemoryOnStreamOneBeforeSetup,
     COCO_ERROR_TRANSFER_PROTOCOL},
    {"no-page-map", 1, craftNoPageMap, COCO_ERROR_TRANSFER_PROTOCOL},
    {"page-map-short", 1, craftPageMapShort, COCO_ERROR_TRANSFER_PROTOCOL},
    {"page-map-outside", 1, craftPageMapOutside, COCO_ERROR_TRANSFER_PROTOCOL},
    {"page-map-unordered", 1, craftPageMapUnordered,
     COCO_ERROR_TRANSFER_PROTOCOL},
};

int
main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/transfer/frame/bundle-max", testBundleMax);
    g_test_add_func("/transfer/frame/header", testHeaderRoundTrip);
    g_test_add_func("/transfer/frame/corrupt", testHeaderCorrupt);
    g_test_add_func("/transfer/frame/lengths", testHeaderLengths);
    g_test_add_func("/transfer/frame/hello", testHello);
    g_test_add_func("/transfer/frame/truncated", testReadTruncated);
    g_test_add_func("/transfer/config/limits", testConfig);
    g_test_add_func("/transfer/config/def", testConfigFromDef);
    for (i = 0; i < G_N_ELEMENTS(craftCases); i++) {
        g_autofree char *name =
            g_strdup_printf("/transfer/dest/%s", craftCases[i].name);

        g_test_add_data_func(name, &craftCases[i], testCrafted);
    }
    return g_test_run();
}
