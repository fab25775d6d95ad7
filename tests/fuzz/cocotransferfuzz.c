/*
 * cocotransferfuzz.c: libFuzzer target for a data stream as the
 * destination's transfer engine reads it (cocotransferdest.h): its record
 * framing (cocotransferframe.h), the hello, and the bundles, vCPU states,
 * page map and tokens the emulated destination firmware imports. The
 * peer host is not trusted.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzing=true
 * Run:   build-fuzz/tests/fuzz/cocotransferfuzz -max_total_time=600 \
 *            tests/fuzz/cocotransfercorpus
 *
 * Each input gets a fresh source and destination firmware (16 pages of
 * guest memory, 4 pages per bundle, one stream) that agreed their keys.
 * Input: one byte of mode, then
 *   - mode even: the stream's bytes as they are;
 *   - mode odd: edits of 5 bytes each (offset, 3 bytes little endian, an
 *     operation and a value: flip the byte's bits in value, cut the
 *     stream there, or insert value there) applied to a stream the real
 *     source made of its guest memory, so the framing around records
 *     the firmware accepts is reached, not only what a forger can send.
 *
 * Checks beyond ASan and UBSan: a refusal is a libvirt-coco error of one
 * line; a stream the destination accepts to its start token left the
 * destination's memory equal to the source's (and a stream not made by
 * the source is never accepted).
 */

#include "internal.h"
#include "firmware/cocoemu.h"
#include "firmware/cocoemuplatform.h"
#include "transfer/cocodirtybitmap.h"
#include "transfer/cocotransferdest.h"
#include "transfer/cocotransfersource.h"
#include "util/cocoerror.h"

#include <errno.h>
#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PAGES 16
#define FUZZ_PAGE 4096
#define FUZZ_PPB 4
/* A stream made by the source is about 100 KiB; edits stay near it. */
#define FUZZ_STREAM_MAX (1024 * 1024)

static CocoEmuPlatform *fuzzPlatform;

typedef struct {
    CocoFirmware *sfw;
    CocoFirmware *dfw;
    uint8_t *smem;
    uint8_t *dmem;
} FuzzPair;

static void
fuzzPairClear(FuzzPair *p)
{
    g_clear_pointer(&p->sfw, cocoFirmwareFree);
    g_clear_pointer(&p->dfw, cocoFirmwareFree);
    g_free(p->smem);
    g_free(p->dmem);
}

/* Two firmwares that agreed their migration keys (the PREPARE steps the
 * agents relay between them). */
static void
fuzzPairInit(FuzzPair *p)
{
    g_autoptr(GError) err = NULL;
    CocoMigrationDef def;
    CocoFirmwareVm vm = {
        .uuid = {0x42}, .nvcpus = 1, .memory = FUZZ_PAGES * FUZZ_PAGE};
    uint8_t m[COCO_EMU_PREPARE_MSG_MAX], e[COCO_EMU_PREPARE_MSG_MAX];
    size_t len = 0, elen = 0;
    size_t i;

    memset(&def, 0, sizeof(def));
    def.has_streams = true;
    def.forward_streams = 1;
    p->smem = g_malloc0(FUZZ_PAGES * FUZZ_PAGE);
    p->dmem = g_malloc0(FUZZ_PAGES * FUZZ_PAGE);
    /* Some pages used, some zero, as a guest's are. */
    for (i = 0; i < FUZZ_PAGES * FUZZ_PAGE; i++)
        p->smem[i] = (i / FUZZ_PAGE) % 3 ? (uint8_t)(i * 31 + i / 7) : 0;
    if (!(p->sfw = cocoEmuNew(COCO_FIRMWARE_ROLE_SOURCE, fuzzPlatform, &def,
                              &vm, &err)) ||
        !(p->dfw = cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, fuzzPlatform,
                              &def, &vm, &err)) ||
        cocoEmuAttachMemory(p->sfw, p->smem, FUZZ_PAGES * FUZZ_PAGE, &err) <
            0 ||
        cocoEmuAttachMemory(p->dfw, p->dmem, FUZZ_PAGES * FUZZ_PAGE, &err) < 0)
        abort();
    if (cocoFirmwareMigrateCmd(p->sfw, COCO_MIGRATE_CMD_PREPARE, 0, m, &len,
                               NULL, NULL) != -EAGAIN ||
        cocoFirmwareMigrateCmd(p->dfw, COCO_MIGRATE_CMD_PREPARE, 0, e, &elen,
                               NULL, NULL) != -EAGAIN ||
        cocoFirmwareMigrateCmd(p->dfw, COCO_MIGRATE_CMD_PREPARE, 0, m, &len,
                               NULL, NULL) != -EAGAIN ||
        cocoFirmwareMigrateCmd(p->sfw, COCO_MIGRATE_CMD_PREPARE, 0, m, &len,
                               NULL, NULL) != 0 ||
        cocoFirmwareMigrateCmd(p->dfw, COCO_MIGRATE_CMD_PREPARE, 0, m, &len,
                               NULL, NULL) != 0)
        abort();
}

static void
fuzzConfig(CocoTransferConfig *cfg)
{
    cocoTransferConfigInit(cfg, NULL);
    cfg->streams = 1;
    cfg->pages_per_bundle = FUZZ_PPB;
}

/* The stream the source makes of its guest memory: a pre-copy epoch,
 * the switchover, the vCPU and the start token. */
static GByteArray *
fuzzSourceStream(FuzzPair *p)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
    g_autoptr(GInputStream) in = g_memory_input_stream_new();
    g_autoptr(GIOStream) io = g_simple_io_stream_new(in, out);
    g_autoptr(CocoDirtySource) dirty = cocoDirtyBitmapNew(FUZZ_PAGES);
    g_autoptr(CocoTransferSource) src = NULL;
    GIOStream *streams[1] = {io};
    CocoTransferConfig cfg;
    GBytes *bytes;

    fuzzConfig(&cfg);
    if (!(src = cocoTransferSourceNew(p->sfw, dirty, &cfg, streams, &err)) ||
        cocoTransferSourceStart(src, &err) < 0 ||
        cocoTransferSourceSync(src, &err) < 0 ||
        cocoFirmwareMigrateCmd(p->sfw, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0,
                               NULL, NULL, NULL, &err) < 0 ||
        cocoTransferSourceFinish(src, 1, &err) < 0)
        abort();
    g_clear_pointer(&src, cocoTransferSourceFree);
    if (!g_output_stream_close(out, NULL, NULL))
        abort();
    bytes = g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(out));
    return g_bytes_unref_to_array(bytes);
}

/* Apply the edits of @data to @stream. */
static void
fuzzEdit(GByteArray *stream, const uint8_t *data, size_t size)
{
    size_t i;

    for (i = 0; i + 5 <= size && stream->len < FUZZ_STREAM_MAX; i += 5) {
        size_t off = (size_t)data[i] | (size_t)data[i + 1] << 8 |
                     (size_t)data[i + 2] << 16;
        uint8_t val = data[i + 4];

        off %= stream->len + 1;
        switch (data[i + 3] % 3) {
        case 0:
            if (off < stream->len)
                stream->data[off] ^= val ? val : 1;
            break;
        case 1:
            g_byte_array_set_size(stream, off);
            break;
        default:
            g_byte_array_set_size(stream, stream->len + 1);
            memmove(stream->data + off + 1, stream->data + off,
                    stream->len - 1 - off);
            stream->data[off] = val;
            break;
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GByteArray) stream = NULL;
    g_autoptr(GInputStream) in = NULL;
    g_autoptr(GOutputStream) out = NULL;
    g_autoptr(GIOStream) io = NULL;
    g_autoptr(CocoTransferDest) dst = NULL;
    GIOStream *streams[1];
    CocoTransferConfig cfg;
    FuzzPair p = {0};
    bool edited;
    int rc;

    if (size < 1 || size > FUZZ_STREAM_MAX)
        return 0;
    if (!fuzzPlatform && !(fuzzPlatform = cocoEmuPlatformNew(NULL)))
        abort();
    fuzzPairInit(&p);
    edited = data[0] & 1;
    if (edited) {
        stream = fuzzSourceStream(&p);
        fuzzEdit(stream, data + 1, size - 1);
    } else {
        stream = g_byte_array_new();
        g_byte_array_append(stream, data + 1, (guint)(size - 1));
    }

    in = g_memory_input_stream_new_from_data(
        g_memdup2(stream->data, stream->len), stream->len, g_free);
    out = g_memory_output_stream_new_resizable();
    io = g_simple_io_stream_new(in, out);
    streams[0] = io;
    fuzzConfig(&cfg);
    if (!(dst = cocoTransferDestNew(p.dfw, &cfg, streams, &err)))
        abort();
    rc = cocoTransferDestRun(dst, &err);
    if (rc < 0) {
        if (!err || err->domain != COCO_ERROR || strchr(err->message, '\n'))
            abort();
    } else if (!edited || memcmp(p.smem, p.dmem, FUZZ_PAGES * FUZZ_PAGE) != 0) {
        /* Accepted: only the source's stream, and its memory whole. */
        abort();
    }
    g_clear_pointer(&dst, cocoTransferDestFree);
    fuzzPairClear(&p);
    return 0;
}
