/*
 * cocotransferframe.c: the record format of a transfer stream
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "transfer/cocotransferframe.h"

COCO_ENUM_IMPL(cocoTransferRecord, COCO_TRANSFER_RECORD_LAST, "hello",
               "immutable", "memory", "epoch-end", "epoch-token", "vcpu",
               "start-token", "abort-token", "end", "page-map");

#define COCO_PAGE_SIZE 4096U

size_t
cocoTransferBundleMax(unsigned int pages_per_bundle)
{
    size_t n = pages_per_bundle;

    /* MBMD page + GPA-list page + one MAC-list page per 256 pages + data */
    return COCO_PAGE_SIZE * (2 + (n + 255) / 256 + n);
}

static void
putU32(uint8_t *p, uint32_t v)
{
    v = GUINT32_TO_LE(v);
    memcpy(p, &v, sizeof(v));
}

static void
putU64(uint8_t *p, uint64_t v)
{
    v = GUINT64_TO_LE(v);
    memcpy(p, &v, sizeof(v));
}

static uint32_t
getU32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return GUINT32_FROM_LE(v);
}

static uint64_t
getU64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return GUINT64_FROM_LE(v);
}

/*
 * Header layout (24 bytes, little endian):
 *   0  u32 magic "CCTR"     4  u8 version     5  u8 type
 *   6  u16 flags (0)        8  u32 length    12  u32 arg0
 *  16  u32 arg1            20  u32 reserved (0)
 */
void
cocoTransferHeaderEncode(const CocoTransferHeader *hdr,
                         uint8_t out[COCO_TRANSFER_HEADER_SIZE])
{
    memset(out, 0, COCO_TRANSFER_HEADER_SIZE);
    putU32(out, COCO_TRANSFER_MAGIC);
    out[4] = COCO_TRANSFER_VERSION;
    out[5] = (uint8_t)hdr->type;
    putU32(out + 8, hdr->length);
    putU32(out + 12, hdr->arg0);
    putU32(out + 16, hdr->arg1);
}

/* Bounds [min, max] of a payload length per record type. */
static void
cocoTransferLengthBounds(CocoTransferRecordType type,
                         const CocoTransferLimits *limits, size_t *min,
                         size_t *max)
{
    *min = 1;
    switch (type) {
    case COCO_TRANSFER_RECORD_HELLO:
        *min = *max = COCO_TRANSFER_HELLO_SIZE;
        break;
    case COCO_TRANSFER_RECORD_IMMUTABLE:
    case COCO_TRANSFER_RECORD_VCPU:
        *max = limits->state_max;
        break;
    case COCO_TRANSFER_RECORD_PAGE_MAP:
        *min = 0; /* a guest that uses no page */
        *max = limits->state_max;
        break;
    case COCO_TRANSFER_RECORD_MEMORY:
        *max = limits->bundle_max;
        break;
    case COCO_TRANSFER_RECORD_EPOCH_TOKEN:
    case COCO_TRANSFER_RECORD_START_TOKEN:
    case COCO_TRANSFER_RECORD_ABORT_TOKEN:
        *max = COCO_TRANSFER_TOKEN_MAX;
        break;
    case COCO_TRANSFER_RECORD_EPOCH_END:
    case COCO_TRANSFER_RECORD_END:
    case COCO_TRANSFER_RECORD_LAST:
    default:
        *min = *max = 0;
        break;
    }
}

int
cocoTransferHeaderDecode(const uint8_t in[COCO_TRANSFER_HEADER_SIZE],
                         const CocoTransferLimits *limits, unsigned int stream,
                         CocoTransferHeader *hdr, GError **error)
{
    uint32_t magic = getU32(in);
    uint16_t flags = (uint16_t)(in[6] | (in[7] << 8));
    size_t min, max;

    if (magic != COCO_TRANSFER_MAGIC)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("stream '%1$u' sent a record with bad magic '0x%2$08x'"), stream,
            magic);
    if (in[4] != COCO_TRANSFER_VERSION)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("stream '%1$u' sent a record of unsupported version '%2$u'"),
            stream, (unsigned int)in[4]);
    if (in[5] >= COCO_TRANSFER_RECORD_LAST)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("stream '%1$u' sent a record of unknown type '%2$u'"), stream,
            (unsigned int)in[5]);
    if (flags != 0 || getU32(in + 20) != 0)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("stream '%1$u' sent a record with reserved bits set"), stream);

    hdr->type = in[5];
    hdr->length = getU32(in + 8);
    hdr->arg0 = getU32(in + 12);
    hdr->arg1 = getU32(in + 16);

    cocoTransferLengthBounds(hdr->type, limits, &min, &max);
    if (hdr->length < min || hdr->length > max)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("stream '%1$u' sent a '%2$s' record of '%3$u' bytes, outside the bounds '%4$zu'..'%5$zu'"),
            stream, cocoTransferRecordTypeToString(hdr->type), hdr->length, min,
            max);
    return 0;
}

/*
 * HELLO payload (32 bytes, little endian):
 *   0 u32 stream   4 u32 nstreams   8 u32 pages_per_bundle  12 u32 reserved
 *  16 u64 session_id                24 u64 npages
 */
void
cocoTransferHelloEncode(const CocoTransferHello *hello,
                        uint8_t out[COCO_TRANSFER_HELLO_SIZE])
{
    memset(out, 0, COCO_TRANSFER_HELLO_SIZE);
    putU32(out, hello->stream);
    putU32(out + 4, hello->nstreams);
    putU32(out + 8, hello->pages_per_bundle);
    putU64(out + 16, hello->session_id);
    putU64(out + 24, hello->npages);
}

int
cocoTransferHelloDecode(const uint8_t in[COCO_TRANSFER_HELLO_SIZE],
                        CocoTransferHello *hello, GError **error)
{
    hello->stream = getU32(in);
    hello->nstreams = getU32(in + 4);
    hello->pages_per_bundle = getU32(in + 8);
    hello->session_id = getU64(in + 16);
    hello->npages = getU64(in + 24);

    if (getU32(in + 12) != 0)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("hello record of stream '%1$u' has reserved bits set"),
            hello->stream);
    return 0;
}

int
cocoTransferIOError(GError **error, GError *gerr, unsigned int stream,
                    bool writing)
{
    g_autoptr(GError) err = gerr;
    const char *msg = err ? err->message : "?";

    if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return cocoErrorSet(error, COCO_ERROR_MIGRATION_ABORTED,
                            _("transfer on stream '%1$u' was cancelled"),
                            stream);
    if (writing)
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_IO,
                            _("cannot write to stream '%1$u': %2$s"), stream,
                            msg);
    return cocoErrorSet(error, COCO_ERROR_TRANSFER_IO,
                        _("cannot read from stream '%1$u': %2$s"), stream, msg);
}

int
cocoTransferRecordWrite(GOutputStream *out, unsigned int stream,
                        CocoTransferRecordType type, uint32_t arg0,
                        uint32_t arg1, const void *payload, size_t length,
                        GCancellable *cancellable, GError **error)
{
    uint8_t hdrbuf[COCO_TRANSFER_HEADER_SIZE];
    CocoTransferHeader hdr = {type, (uint32_t)length, arg0, arg1};
    GOutputVector vec[2] = {{hdrbuf, sizeof(hdrbuf)}, {payload, length}};
    GError *gerr = NULL;

    if (length > G_MAXUINT32)
        return cocoErrorSet(error, COCO_ERROR_INTERNAL,
                            _("record of '%1$zu' bytes is too large"), length);
    cocoTransferHeaderEncode(&hdr, hdrbuf);
    if (!g_output_stream_writev_all(out, vec, length ? 2 : 1, NULL, cancellable,
                                    &gerr))
        return cocoTransferIOError(error, gerr, stream, true);
    return 0;
}

/* Read exactly @len bytes. Returns 0 on success, 1 on end of stream before
 * the first byte, 2 on end of stream after some bytes, -1 on error. */
static int
cocoTransferReadAll(GInputStream *in, unsigned int stream, void *buf,
                    size_t len, GCancellable *cancellable, GError **error)
{
    gsize got = 0;
    GError *gerr = NULL;

    if (!g_input_stream_read_all(in, buf, len, &got, cancellable, &gerr))
        return cocoTransferIOError(error, gerr, stream, false);
    if (got == len)
        return 0;
    return got == 0 ? 1 : 2;
}

int
cocoTransferRecordReadHeader(GInputStream *in, unsigned int stream,
                             const CocoTransferLimits *limits,
                             CocoTransferHeader *hdr, GCancellable *cancellable,
                             GError **error)
{
    uint8_t buf[COCO_TRANSFER_HEADER_SIZE];

    switch (
        cocoTransferReadAll(in, stream, buf, sizeof(buf), cancellable, error)) {
    case 0:
        return cocoTransferHeaderDecode(buf, limits, stream, hdr, error);
    case 1:
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_IO,
            _("stream '%1$u' was closed by the peer before its end record"),
            stream);
    case 2:
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("stream '%1$u' ended inside a record header (truncated)"),
            stream);
    default:
        return -1;
    }
}

int
cocoTransferRecordReadPayload(GInputStream *in, unsigned int stream,
                              CocoTransferRecordType type, void *buf,
                              size_t length, GCancellable *cancellable,
                              GError **error)
{
    int rc;

    if (length == 0)
        return 0;
    rc = cocoTransferReadAll(in, stream, buf, length, cancellable, error);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("stream '%1$u' ended inside a '%2$s' record of '%3$zu' bytes (truncated)"),
            stream, cocoTransferRecordTypeToString(type), length);
    return 0;
}
