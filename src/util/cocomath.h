/*
 * cocomath.h: checked unsigned 64-bit arithmetic and number parsing
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include <stdbool.h>
#include <stdint.h>

/* Each returns false (and leaves *res untouched) on overflow. */
static inline bool
cocoU64Add(uint64_t a, uint64_t b, uint64_t *res)
{
    uint64_t r;

    if (__builtin_add_overflow(a, b, &r))
        return false;
    *res = r;
    return true;
}

static inline bool
cocoU64Sub(uint64_t a, uint64_t b, uint64_t *res)
{
    if (b > a)
        return false;
    *res = a - b;
    return true;
}

static inline bool
cocoU64Mul(uint64_t a, uint64_t b, uint64_t *res)
{
    uint64_t r;

    if (__builtin_mul_overflow(a, b, &r))
        return false;
    *res = r;
    return true;
}

/*
 * cocoStrToU64:
 * Parse a whole string as an unsigned decimal (base 10) or, with base 16,
 * a hexadecimal number with an optional "0x" prefix. No sign, no leading
 * or trailing white space, no empty string, no overflow.
 * Returns 0 on success, -1 when malformed, -2 when it does not fit.
 */
int cocoStrToU64(const char *str, unsigned int base, uint64_t *res);
