/*
 * cocotransferframe.h: the record format of a transfer stream
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every byte on a transfer stream belongs to a record: a fixed 24-byte
 * header (little endian) followed by "length" payload bytes. The payloads
 * of bundle records are the firmware's opaque bundles, passed unchanged.
 * Parsing is strict: unknown magic, version, type, flags or non-zero
 * reserved bytes, and a length outside the bounds of the record's type are
 * COCO_ERROR_TRANSFER_PROTOCOL; a stream ending inside a record is
 * COCO_ERROR_TRANSFER_PROTOCOL (truncated); a stream ending between records
 * or any I/O failure is COCO_ERROR_TRANSFER_IO. docs/transfer.rst has the
 * layout.
 */

#pragma once

#include "internal.h"
#include "util/cocoenum.h"
#include "util/cocoerror.h"

#include <gio/gio.h>
#include <stdbool.h>
#include <stdint.h>

/* "CCTR" as bytes on the wire */
#define COCO_TRANSFER_MAGIC 0x52544343U
#define COCO_TRANSFER_VERSION 1
#define COCO_TRANSFER_HEADER_SIZE 24
#define COCO_TRANSFER_HELLO_SIZE 32

/* Bounds on the payloads of tokens (48-byte MBMDs in TDX) and state
 * bundles (immutable state, one vCPU's state). */
#define COCO_TRANSFER_TOKEN_MAX 4096U
#define COCO_TRANSFER_STATE_MAX (1024U * 1024U)

typedef enum {
    COCO_TRANSFER_RECORD_HELLO = 0, /* every stream, first record */
    COCO_TRANSFER_RECORD_IMMUTABLE, /* stream 0: immutable-state bundle */
    COCO_TRANSFER_RECORD_MEMORY, /* any stream: memory bundle, arg0 epoch */
    COCO_TRANSFER_RECORD_EPOCH_END, /* any stream: arg0 epoch, arg1 count */
    COCO_TRANSFER_RECORD_EPOCH_TOKEN, /* stream 0: arg0 epoch closed */
    COCO_TRANSFER_RECORD_VCPU, /* stream 0: arg0 vCPU index */
    COCO_TRANSFER_RECORD_START_TOKEN, /* stream 0: arg0 last epoch */
    COCO_TRANSFER_RECORD_ABORT_TOKEN, /* stream 0, backward direction */
    COCO_TRANSFER_RECORD_END, /* every stream, last record; arg0 reason */
    COCO_TRANSFER_RECORD_PAGE_MAP, /* stream 0: page ranges; arg0 1 = more */
    COCO_TRANSFER_RECORD_LAST
} CocoTransferRecordType;
COCO_ENUM_DECL(cocoTransferRecord);

/* arg0 of an END record */
typedef enum {
    COCO_TRANSFER_END_COMPLETE = 0, /* all data sent */
    COCO_TRANSFER_END_CANCELLED = 1, /* the sender gave up */
} CocoTransferEndReason;

typedef struct {
    CocoTransferRecordType type;
    uint32_t length; /* payload bytes */
    uint32_t arg0;
    uint32_t arg1;
} CocoTransferHeader;

/* Payload of a HELLO record. */
typedef struct {
    uint32_t stream; /* index of this stream, 0 carries state and tokens */
    uint32_t nstreams; /* forward streams of the session */
    uint32_t pages_per_bundle;
    uint64_t session_id; /* chosen by the host agents; 0 = none */
    uint64_t npages; /* guest pages covered by the transfer */
} CocoTransferHello;

/* A PAGE_MAP payload: pairs of u64 first gfn, u64 page count. */
#define COCO_TRANSFER_PAGE_RANGE_SIZE 16U

/* Largest payload accepted per record type on one stream. */
typedef struct {
    size_t bundle_max; /* memory bundles */
    size_t state_max; /* immutable and vCPU state */
} CocoTransferLimits;

/* Bound on one memory bundle of @pages_per_bundle pages (TDX layout:
 * MBMD, GPA-list page, MAC-list pages, the pages), rounded up to pages. */
size_t cocoTransferBundleMax(unsigned int pages_per_bundle);

void cocoTransferHeaderEncode(const CocoTransferHeader *hdr,
                              uint8_t out[COCO_TRANSFER_HEADER_SIZE]);
int cocoTransferHeaderDecode(const uint8_t in[COCO_TRANSFER_HEADER_SIZE],
                             const CocoTransferLimits *limits,
                             unsigned int stream, CocoTransferHeader *hdr,
                             GError **error);

void cocoTransferHelloEncode(const CocoTransferHello *hello,
                             uint8_t out[COCO_TRANSFER_HELLO_SIZE]);
int cocoTransferHelloDecode(const uint8_t in[COCO_TRANSFER_HELLO_SIZE],
                            CocoTransferHello *hello, GError **error);

/* Write one record (header and payload in one vectored write). */
int cocoTransferRecordWrite(GOutputStream *out, unsigned int stream,
                            CocoTransferRecordType type, uint32_t arg0,
                            uint32_t arg1, const void *payload, size_t length,
                            GCancellable *cancellable, GError **error);

/* Read and check one header. End of stream before its first byte is
 * COCO_ERROR_TRANSFER_IO, inside it COCO_ERROR_TRANSFER_PROTOCOL. */
int cocoTransferRecordReadHeader(GInputStream *in, unsigned int stream,
                                 const CocoTransferLimits *limits,
                                 CocoTransferHeader *hdr,
                                 GCancellable *cancellable, GError **error);

/* Read exactly @length payload bytes; a short read is a truncated record. */
int cocoTransferRecordReadPayload(GInputStream *in, unsigned int stream,
                                  CocoTransferRecordType type, void *buf,
                                  size_t length, GCancellable *cancellable,
                                  GError **error);

/* Turn a GIO error of stream @stream into a COCO_ERROR one (consumes
 * @gerr). Cancellation becomes COCO_ERROR_MIGRATION_ABORTED. */
int cocoTransferIOError(GError **error, GError *gerr, unsigned int stream,
                        bool writing);
