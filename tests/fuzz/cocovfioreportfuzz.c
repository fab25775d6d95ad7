/*
 * cocovfioreportfuzz.c: libFuzzer target for the datagrams the VFIO
 * interposer in QEMU sends the relay (cocoqmpvfioreport.h): leak and state
 * reports. QEMU is not trusted.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzing=true
 * Run:   build-fuzz/tests/fuzz/cocovfioreportfuzz -max_total_time=600 \
 *            tests/fuzz/cocovfioreportcorpus
 *
 * Checks beyond ASan and UBSan: a refusal is COCO_ERROR_QMP_PROTOCOL; an
 * accepted report is rebuilt only of checked members (a leak is
 * described, a state's names are sysfs-style and no more than its count).
 */

#include "internal.h"
#include "qmp/cocoqmpvfioreport.h"
#include "util/cocoerror.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonObject) obj = NULL;
    CocoQmpVfioReportKind kind = COCO_QMP_VFIO_REPORT_LAST;
    g_autofree char *text = NULL;
    JsonArray *devices;
    guint i;

    obj = cocoQmpVfioReportParse((const char *)data, size, &kind, &err);
    if (!obj) {
        if (!err || err->code != COCO_ERROR_QMP_PROTOCOL)
            abort();
        return 0;
    }
    if (json_object_has_member(obj, "event"))
        abort();
    switch (kind) {
    case COCO_QMP_VFIO_REPORT_LEAK:
        text = cocoQmpVfioReportDescribe(obj);
        if (!text || strchr(text, '\n'))
            abort();
        break;
    case COCO_QMP_VFIO_REPORT_STATE:
        devices = json_object_get_array_member(obj, "devices");
        if (!devices || json_array_get_length(devices) >
                            (guint)json_object_get_int_member(obj, "count"))
            abort();
        for (i = 0; i < json_array_get_length(devices); i++) {
            const char *s = json_array_get_string_element(devices, i);

            if (!s || !*s || strlen(s) > COCO_QMP_VFIO_DEVICE_NAME_MAX ||
                strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ:._-") != strlen(s))
                abort();
        }
        break;
    case COCO_QMP_VFIO_REPORT_LAST:
    default:
        abort();
    }
    return 0;
}
