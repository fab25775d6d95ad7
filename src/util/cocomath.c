/*
 * cocomath.c: number parsing without overflow
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "util/cocomath.h"

static int
cocoDigitValue(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
cocoStrToU64(const char *str, unsigned int base, uint64_t *res)
{
    uint64_t val = 0;
    const char *p = str;

    if (!str || (base != 10 && base != 16))
        return -1;
    if (base == 16 && (STRPREFIX(p, "0x") || STRPREFIX(p, "0X")))
        p += 2;
    if (*p == '\0')
        return -1;

    for (; *p; p++) {
        int d = cocoDigitValue(*p);

        if (d < 0 || (unsigned int)d >= base)
            return -1;
        if (!cocoU64Mul(val, base, &val) || !cocoU64Add(val, (uint64_t)d, &val))
            return -2;
    }
    *res = val;
    return 0;
}
