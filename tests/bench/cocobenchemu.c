/*
 * cocobenchemu.c: what the emulated firmware's benchmarks share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "cocobenchemu.h"

#include <stdio.h>
#include <stdlib.h>

void
cocoBenchDie(const char *what, GError *err)
{
    fprintf(stderr, "%s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

void
cocoBenchEmuPrepare(CocoFirmware *src, CocoFirmware *dst)
{
    uint8_t m[COCO_EMU_PREPARE_MSG_MAX];
    uint8_t e[COCO_EMU_PREPARE_MSG_MAX];
    size_t len = 0;
    size_t elen = 0;
    GError *err = NULL;

    cocoFirmwareMigrateCmd(src, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                           &err);
    g_clear_error(&err);
    cocoFirmwareMigrateCmd(dst, COCO_MIGRATE_CMD_PREPARE, 0, e, &elen, NULL,
                           &err);
    g_clear_error(&err);
    cocoFirmwareMigrateCmd(dst, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                           &err);
    g_clear_error(&err);
    if (cocoFirmwareMigrateCmd(src, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                               &err) < 0 ||
        cocoFirmwareMigrateCmd(dst, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                               &err) < 0)
        cocoBenchDie("prepare", err);
}

void
cocoBenchEmuPair(size_t size, CocoFirmware **src, CocoFirmware **dst)
{
    g_autoptr(CocoEmuPlatform) spf = NULL;
    g_autoptr(CocoEmuPlatform) dpf = NULL;
    CocoMigrationDef def = {0};
    CocoFirmwareVm vm = {.uuid = {0x42}, .nvcpus = 1, .memory = size};
    GError *err = NULL;

    if (!(spf = cocoEmuPlatformNew(&err)) || !(dpf = cocoEmuPlatformNew(&err)))
        cocoBenchDie("platform", err);
    if (!(*src = cocoEmuNew(COCO_FIRMWARE_ROLE_SOURCE, spf, &def, &vm, &err)) ||
        !(*dst =
              cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, dpf, &def, &vm, &err)))
        cocoBenchDie("new", err);
}
