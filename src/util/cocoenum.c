/*
 * cocoenum.c: enum <-> string tables
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "util/cocoenum.h"

const char *
cocoEnumToString(const char *const *types, unsigned int ntypes, int type)
{
    if (type < 0 || (unsigned int)type >= ntypes)
        return NULL;
    return types[type];
}

int
cocoEnumFromString(const char *const *types, unsigned int ntypes,
                   const char *type)
{
    unsigned int i;

    if (!type)
        return -1;
    for (i = 0; i < ntypes; i++) {
        if (types[i] && STREQ(types[i], type))
            return (int)i;
    }
    return -1;
}
