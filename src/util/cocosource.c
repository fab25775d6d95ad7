/*
 * cocosource.c: ending a GLib source the caller holds a reference to
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "util/cocosource.h"

void
cocoSourceClear(GSource **src)
{
    if (!*src)
        return;
    g_source_destroy(*src);
    g_clear_pointer(src, g_source_unref);
}
