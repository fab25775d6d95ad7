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
