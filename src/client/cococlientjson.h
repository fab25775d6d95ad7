/*
 * cococlientjson.h: typed reading of JSON that comes from outside, beyond
 * the safe accessors of proto/cocoproto.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The host agent's answers, its records and its peers' answers are read
 * only through cocoJson*() (proto/cocoproto.h) and these two, which check
 * the member's type first and never return a value of another type.
 */

#pragma once

#include "internal.h"
#include "proto/cocoproto.h"

#include <json-glib/json-glib.h>
#include <stdbool.h>

/* The non-negative integer member @name, or @fallback (absent, not an
 * integer or negative). */
guint64 cocoClientJsonU64(JsonObject *obj, const char *name, guint64 fallback);

/* The boolean member @name: false when absent or not a boolean (unlike
 * cocoJsonBoolDefault(), the caller learns that it was absent). */
bool cocoClientJsonBool(JsonObject *obj, const char *name, bool *value);
