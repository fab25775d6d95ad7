/*
 * cococonfigfuzz.c: libFuzzer target for the configuration files:
 * virtcocod.conf, qemu-coco.conf, the KVM ABI file (kvm.conf) and the
 * emulated platform's file, each read from a file as the programs read
 * it (cocoKeyFileLoad()), then validated.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzing=true
 * Run:   build-fuzz/tests/fuzz/cococonfigfuzz -max_total_time=600 \
 *            tests/fuzz/cococonfigcorpus
 *
 * Input: one byte choosing the file (its value modulo 4, in the order
 * above), then the file's bytes. Checks beyond ASan and UBSan: a file
 * that does not load is refused with COCO_ERROR_INVALID_ARG (the platform
 * file: any libvirt-coco error), one that loads validates or is refused
 * with a libvirt-coco error; every message is one line.
 */

#include "internal.h"
#include "agent/cocoagentconfig.h"
#include "firmware/cocoemuplatform.h"
#include "firmware/cocokvmconfig.h"
#include "util/cocoerror.h"
#include "qemu-coco-config.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A refusal: a libvirt-coco error of one line; a file that does not load
 * is COCO_ERROR_INVALID_ARG (@loading), one that loads may be refused
 * with another code (a setting not supported here, say). */
static void
checkError(GError *err, bool loading)
{
    if (!err || err->domain != COCO_ERROR ||
        (loading && err->code != COCO_ERROR_INVALID_ARG) ||
        strchr(err->message, '\n'))
        abort();
}

static void
fuzzAgent(const char *path)
{
    CocoAgentConfig cfg;
    g_autoptr(GError) err = NULL;

    cocoAgentConfigInit(&cfg);
    if (cocoAgentConfigLoad(&cfg, path, true, &err) < 0)
        checkError(err, true);
    else if (cocoAgentConfigValidate(&cfg, &err) < 0)
        checkError(err, false);
    cocoAgentConfigClear(&cfg);
}

static void
fuzzQemuCoco(const char *path)
{
    QemuCocoConfig cfg = {0};
    g_autoptr(GError) err = NULL;

    if (qemuCocoConfigLoad(path, &cfg, &err) < 0)
        checkError(err, true);
    qemuCocoConfigClear(&cfg);
}

static void
fuzzKvm(const char *path)
{
    CocoKvmConfig cfg;
    g_autoptr(GError) err = NULL;

    cocoKvmConfigInit(&cfg);
    if (cocoKvmConfigLoadFile(&cfg, path, &err) < 0)
        checkError(err, true);
    else if (cocoKvmConfigValidate(&cfg, &err) < 0)
        checkError(err, false);
}

static void
fuzzPlatform(const char *path)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoEmuPlatform) p = cocoEmuPlatformLoad(path, false, &err);

    if (!p)
        checkError(err, false);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void (*const fuzzers[])(const char *) = {fuzzAgent, fuzzQemuCoco,
                                                    fuzzKvm, fuzzPlatform};
    g_autofree char *path = NULL;
    size_t off = 1;
    int fd;

    if (size < 1)
        return 0;
    if ((fd = memfd_create("coco-config", MFD_CLOEXEC)) < 0)
        abort();
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);

        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    path = g_strdup_printf("/proc/self/fd/%d", fd);
    fuzzers[data[0] % G_N_ELEMENTS(fuzzers)](path);
    close(fd);
    return 0;
}
