/*
 * cocoemubench.c: throughput of the emulated firmware (not a unit test)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Migrates COCO_EMU_BENCH_MIB (default 256) MiB of guest memory in bundles
 * of 512 pages on one stream and prints the export and import rates and
 * the time the blackout's hash check of every exported page takes.
 */

#include "cocobenchemu.h"

#include <stdio.h>
#include <stdlib.h>

int
main(void)
{
    const char *env = g_getenv("COCO_EMU_BENCH_MIB");
    uint64_t mib = env ? g_ascii_strtoull(env, NULL, 10) : 256;
    size_t size = mib << 20;
    uint64_t npages = size / COCO_EMU_PAGE_SIZE;
    g_autoptr(CocoFirmware) src = NULL;
    g_autoptr(CocoFirmware) dst = NULL;
    g_autofree uint8_t *smem = NULL;
    g_autofree uint8_t *dmem = NULL;
    g_autofree uint8_t *buf = NULL;
    uint8_t setup[COCO_EMU_SETUP_BUNDLE_SIZE];
    uint64_t gfns[COCO_EMU_MAX_GFNS];
    GError *err = NULL;
    size_t len;
    gint64 t0;
    gint64 texp = 0;
    gint64 timp = 0;
    gint64 tblack;
    uint64_t g;
    uint64_t i;

    if (mib == 0 || npages % COCO_EMU_MAX_GFNS)
        cocoBenchDie("COCO_EMU_BENCH_MIB must be a positive multiple of 2",
                     NULL);
    cocoBenchEmuPair(size, &src, &dst);
    smem = g_malloc(size);
    dmem = g_malloc0(size);
    for (i = 0; i < size; i += 8)
        memcpy(smem + i, &i, 8);
    if (cocoEmuAttachMemory(src, smem, size, &err) < 0 ||
        cocoEmuAttachMemory(dst, dmem, size, &err) < 0)
        cocoBenchDie("attach", err);
    cocoBenchEmuPrepare(src, dst);
    len = sizeof(setup);
    if (cocoFirmwareMigrateCmd(src, COCO_MIGRATE_CMD_SETUP, 0, setup, &len,
                               NULL, &err) < 0 ||
        cocoFirmwareMigrateCmd(dst, COCO_MIGRATE_CMD_SETUP, 0, setup, &len,
                               NULL, &err) < 0)
        cocoBenchDie("setup", err);

    buf = g_malloc(cocoEmuMemoryBundleSize(COCO_EMU_MAX_GFNS));
    for (g = 0; g < npages; g += COCO_EMU_MAX_GFNS) {
        for (i = 0; i < COCO_EMU_MAX_GFNS; i++)
            gfns[i] = g + i;
        len = cocoEmuMemoryBundleSize(COCO_EMU_MAX_GFNS);
        t0 = g_get_monotonic_time();
        if (cocoFirmwareExportMemory(src, 0, gfns, COCO_EMU_MAX_GFNS, NULL, buf,
                                     &len, NULL, &err) < 0)
            cocoBenchDie("export", err);
        texp += g_get_monotonic_time() - t0;
        t0 = g_get_monotonic_time();
        if (cocoFirmwareImportMemory(dst, 0, buf, len, NULL, &err) < 0)
            cocoBenchDie("import", err);
        timp += g_get_monotonic_time() - t0;
    }
    t0 = g_get_monotonic_time();
    if (cocoFirmwareMigrateCmd(src, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL,
                               NULL, NULL, &err) < 0)
        cocoBenchDie("blackout", err);
    tblack = g_get_monotonic_time() - t0;
    if (memcmp(smem, dmem, size) != 0)
        cocoBenchDie("memory differs", NULL);

    printf("emulated firmware, %" G_GUINT64_FORMAT " MiB, 512-page bundles\n",
           mib);
    printf("export: %.0f MiB/s\n", mib / (texp / 1e6));
    printf("import: %.0f MiB/s\n", mib / (timp / 1e6));
    printf("blackout hash check: %.1f ms (%.0f MiB/s)\n", tblack / 1e3,
           mib / (tblack / 1e6));
    return 0;
}
