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

int
cocoHexDecode(const char *str, size_t len, uint8_t *out)
{
    size_t i;

    if (!str || strlen(str) != len * 2)
        return -1;
    for (i = 0; i < len; i++) {
        int hi = g_ascii_xdigit_value(str[2 * i]);
        int lo = g_ascii_xdigit_value(str[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    return 0;
}
