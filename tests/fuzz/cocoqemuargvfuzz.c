/*
 * cocoqemuargvfuzz.c: libFuzzer target for QEMU's command line as
 * qemu-coco reads it (cocoqmpguest.h, cocoqmphostdev.h): libvirt builds
 * it from a domain's XML, which a libvirt user writes, so its values
 * (names, paths, -object JSON, -device options) are not trusted.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzing=true
 * Run:   build-fuzz/tests/fuzz/cocoqemuargvfuzz -max_total_time=600 \
 *            tests/fuzz/cocoqemuargvcorpus
 *
 * Input: the arguments after argv[0], each ended by a '\0' (the last may
 * not be). Checks beyond ASan and UBSan: a refusal is a libvirt-coco
 * error of one line; a guest with a monitor has its -chardev at a valid
 * index, whose rewrite names the new descriptor; the agent's hello is
 * built from whatever was read.
 */

#include "internal.h"
#include "qmp/cocoqmpguest.h"
#include "qmp/cocoqmphostdev.h"
#include "util/cocoerror.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* At most this many arguments (libvirt's lines have a few hundred). */
#define FUZZ_ARGS_MAX 4096

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoQmpGuestInfo) info = NULL;
    g_autoptr(JsonObject) hello = NULL;
    CocoQmpViommu viommu;
    size_t off = 0;

    g_ptr_array_add(argv, g_strdup("qemu-system-x86_64"));
    while (off < size && argv->len < FUZZ_ARGS_MAX) {
        const uint8_t *nul = memchr(data + off, '\0', size - off);
        size_t end = nul ? (size_t)(nul - data) : size;

        g_ptr_array_add(argv, g_strndup((const char *)data + off, end - off));
        off = end + 1;
    }
    g_ptr_array_add(argv, NULL);

    memset(&viommu, 0, sizeof(viommu));
    cocoQmpViommuFromArgv((int)argv->len - 1, (char *const *)argv->pdata,
                          &viommu);
    (void)cocoQmpViommuIsWide(&viommu);
    cocoQmpViommuClear(&viommu);

    info = cocoQmpGuestInfoParse((int)argv->len - 1, (char *const *)argv->pdata,
                                 &err);
    if (!info) {
        if (!err || err->domain != COCO_ERROR || strchr(err->message, '\n'))
            abort();
        return 0;
    }
    if (info->monitorFd >= 0) {
        g_autofree char *rewritten = NULL;

        if (info->monitorArg < 1 || info->monitorArg >= (int)argv->len - 1)
            abort();
        rewritten =
            cocoQmpGuestRewriteMonitor(argv->pdata[info->monitorArg], 12345);
        if (!rewritten || !strstr(rewritten, "fd=12345"))
            abort();
    }
    hello = cocoQmpGuestInfoToHello(info, 4242);
    if (!hello)
        abort();
    return 0;
}
