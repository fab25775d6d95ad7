/*
 * cocohex.c: lower-case hexadecimal encoding
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "util/cocohex.h"

char *
cocoHexEncode(const uint8_t *buf, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *str = g_new0(char, len * 2 + 1);
    size_t i;

    for (i = 0; i < len; i++) {
        str[2 * i] = digits[buf[i] >> 4];
        str[2 * i + 1] = digits[buf[i] & 0xf];
    }
    return str;
}
