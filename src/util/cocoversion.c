/*
 * cocoversion.c: library version
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "libvirt-coco/coco-version.h"

unsigned long
cocoGetVersion(void)
{
    return COCO_VERSION_NUMBER;
}
