/*
 * qemu-coco-config.h: qemu-coco's configuration file (qemu-coco.conf)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#define QEMU_COCO_CONFIG COCO_SYSCONFDIR "/libvirt-coco/qemu-coco.conf"
#define QEMU_COCO_GROUP "qemu-coco"
#define QEMU_COCO_DEFAULT_QEMU "/usr/bin/qemu-system-x86_64"
#define QEMU_COCO_DEFAULT_GATE_TIMEOUT 300

typedef struct {
    char *qemu;
    char *agentSocket;
    guint gateTimeout;
    char *qmpLogDir;
    gboolean vfioInterposer;
    char *vfioInterposerPath;
    gboolean writeLog;
    char *writeLogPath;
} QemuCocoConfig;

void qemuCocoConfigClear(QemuCocoConfig *cfg);

/* The defaults, then @path over them (a missing file keeps the
 * defaults). Fails with COCO_ERROR_INVALID_ARG naming the key. */
int qemuCocoConfigLoad(const char *path, QemuCocoConfig *cfg, GError **error);
