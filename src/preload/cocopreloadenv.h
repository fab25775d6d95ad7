/*
 * cocopreloadenv.h: what a library qemu-coco preloads into QEMU does to
 * QEMU's environment
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

/* Take the library that holds @symbol out of LD_PRELOAD (unset when
 * nothing is left), so that programs QEMU runs do not load it. */
void cocoPreloadEnvDropSelf(const void *symbol);
