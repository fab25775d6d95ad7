/*
 * cocobenchemu.h: what the emulated firmware's benchmarks share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "firmware/cocoemu.h"

/* Print @what and @err's message and exit(1). */
G_NORETURN void cocoBenchDie(const char *what, GError *err);

/* PREPARE between @src and @dst (the key exchange), or die. */
void cocoBenchEmuPrepare(CocoFirmware *src, CocoFirmware *dst);

/* A source and a destination of a one-vCPU guest of @size bytes, each on
 * a platform of its own (the platforms are referenced by the firmware),
 * or die. */
void cocoBenchEmuPair(size_t size, CocoFirmware **src, CocoFirmware **dst);
