/*
 * cocoagentvfio.h: a host's VFIO safety report as JSON
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "vfio/cocovfiocheck.h"

#include <json-glib/json-glib.h>

/*
 * cocoAgentVfioReportToJson:
 * @r as the object "virt-coco vfio check --json" prints (docs/virt-coco.rst):
 * kernel, VFIO groups, the probed container's backend, fix status, IOVA
 * ranges, risk and verdict.
 */
JsonNode *cocoAgentVfioReportToJson(const CocoVfioHostReport *r);

/*
 * cocoAgentVfioCheckHotplug:
 * The relay's gate 'hostdev' (docs/hook.rst, "Hot-plug"): a VFIO host
 * device hot-plugged into the domain @name behind a vIOMMU that lets the
 * guest use IOVAs up to 2^64-1. Allowed on a host kernel with the fix
 * (probed under @devroot, every free group tried) or by the domain's
 * allowUnsafeIommu='yes' (read from libvirt's status file in @pid_dir);
 * otherwise COCO_ERROR_VFIO_UNSAFE with the reason.
 */
int cocoAgentVfioCheckHotplug(const char *pid_dir, const char *name,
                              const char *devroot, GError **error);
