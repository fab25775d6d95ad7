/*
 * cocosource.h: ending a GLib source the caller holds a reference to
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include <glib.h>

/* Destroy *@src (it never dispatches again), release the caller's
 * reference and set *@src to NULL; nothing when it is NULL already. */
void cocoSourceClear(GSource **src);
