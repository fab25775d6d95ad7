/*
 * cocopreloadenv.c: a preloaded library leaves QEMU's environment
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "preload/cocopreloadenv.h"

#include <dlfcn.h>
#include <stdlib.h>

void
cocoPreloadEnvDropSelf(const void *symbol)
{
    const char *preload = getenv("LD_PRELOAD");
    g_autoptr(GString) rest = g_string_new(NULL);
    g_auto(GStrv) parts = NULL;
    Dl_info info;
    size_t i;

    if (!preload || !dladdr(symbol, &info) || !info.dli_fname)
        return;
    parts = g_strsplit_set(preload, ": ", -1);
    for (i = 0; parts[i]; i++) {
        if (!*parts[i] || STREQ(parts[i], info.dli_fname))
            continue;
        if (rest->len)
            g_string_append_c(rest, ':');
        g_string_append(rest, parts[i]);
    }
    if (rest->len)
        setenv("LD_PRELOAD", rest->str, 1);
    else
        unsetenv("LD_PRELOAD");
}
