/*
 * cocoqmpvfioreport.h: the VFIO interposer's leak reports, read by the relay
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * qemu-coco gives QEMU (the VFIO interposer preloaded into it) one end of
 * a datagram socket pair and the relay the other (docs/vfio.rst, "The
 * interposer"). Each datagram is one leak report, a JSON object. QEMU is
 * not trusted: a report is parsed with a size cap, every member is typed
 * and checked, and only a rebuilt object goes on to the host agent.
 */

#pragma once

#include "internal.h"
#include "util/cocoenum.h"

#include <json-glib/json-glib.h>

/* The largest datagram read; a longer one is refused. */
#define COCO_QMP_VFIO_REPORT_MAX 8192
/* The most ranges a report may name. */
#define COCO_QMP_VFIO_REPORT_RANGES 32

/* The most device names a state report may carry. */
#define COCO_QMP_VFIO_REPORT_DEVICES 32
/* The longest device name. */
#define COCO_QMP_VFIO_DEVICE_NAME_MAX 64

typedef enum {
    COCO_QMP_VFIO_REPORT_LEAK = 0, /* "vfio-leak" */
    COCO_QMP_VFIO_REPORT_STATE, /* "vfio-state" */
    COCO_QMP_VFIO_REPORT_LAST
} CocoQmpVfioReportKind;
COCO_ENUM_DECL(cocoQmpVfioReportKind);

/*
 * cocoQmpVfioReportParse:
 * One datagram of @len bytes, either a leak: {"event": "vfio-leak",
 * "space": N, "backend": "type1|type1v2|iommufd", "fix": "...", "when":
 * "unmap|release", "count": N, "bytes": "0x...", "ranges": [{"first":
 * "0x...", "last": "0x..."}, ...]}, or what QEMU holds: {"event":
 * "vfio-state", "devices": ["0000:03:00.0", ...], "count": N, "spaces": N,
 * "mappings": N, "bytes": "0x..."}. Returns the checked data (the same
 * members but "event") with its kind in @kind, or NULL with @error set.
 */
JsonObject *cocoQmpVfioReportParse(const char *buf, size_t len,
                                   CocoQmpVfioReportKind *kind, GError **error);

/* One line for the log and for the agent's reason: "N DMA mapping(s),
 * B bytes, still pinned after QEMU's unmap: [first, last], ...". */
char *cocoQmpVfioReportDescribe(JsonObject *data);

typedef void (*CocoQmpVfioReportFunc)(CocoQmpVfioReportKind kind,
                                      JsonObject *data, gpointer opaque);

typedef struct _CocoQmpVfioReader CocoQmpVfioReader;

/* Read reports from @fd (consumed) on @ctx; each valid one goes to @cb,
 * a malformed one is logged and dropped. */
CocoQmpVfioReader *cocoQmpVfioReaderNew(int fd, GMainContext *ctx,
                                        CocoQmpVfioReportFunc cb,
                                        gpointer opaque);
void cocoQmpVfioReaderFree(CocoQmpVfioReader *reader);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoQmpVfioReader, cocoQmpVfioReaderFree)
