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
/* Decode exactly @len bytes from the 2 * @len hex digits of @str (either
 * case) into @out: 0, or -1 when @str is not that. */
int cocoHexDecode(const char *str, size_t len, uint8_t *out);
