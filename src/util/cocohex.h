/*
 * cocohex.h: lower-case hexadecimal encoding
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include <stdint.h>

/* @len bytes of @buf as 2 * @len lower-case hex digits; g_free() it. */
char *cocoHexEncode(const uint8_t *buf, size_t len);
