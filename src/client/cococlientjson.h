/*
 * cococlientjson.h: typed reading of JSON that comes from outside
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * json-glib's *_with_default() getters return NULL for a string member
 * that holds a number and warn (a fatal warning in tests) for a member
 * that holds an object; the host agent's answers, its records and its
 * peers' answers are read only through these getters, which check the
 * member's type first and never return a value of another type.
 */

#pragma once

#include "internal.h"

#include <json-glib/json-glib.h>
#include <stdbool.h>

/* The string member @name of @obj, or NULL (absent, null or not a
 * string). */
const char *cocoClientJsonString(JsonObject *obj, const char *name);

/* The integer member @name of @obj: false when absent or not an
 * integer (a double is not an integer). */
bool cocoClientJsonInt(JsonObject *obj, const char *name, gint64 *value);

/* The non-negative integer member @name, or @fallback (absent, not an
 * integer or negative). */
guint64 cocoClientJsonU64(JsonObject *obj, const char *name, guint64 fallback);

/* The number (integer or double) member @name: false when absent or not
 * a number. */
bool cocoClientJsonNumber(JsonObject *obj, const char *name, double *value);

/* The boolean member @name: false when absent or not a boolean. */
bool cocoClientJsonBool(JsonObject *obj, const char *name, bool *value);

/* The object member @name, or NULL (absent, null or not an object). */
JsonObject *cocoClientJsonObject(JsonObject *obj, const char *name);

/* The array member @name, or NULL (absent, null or not an array). */
JsonArray *cocoClientJsonArray(JsonObject *obj, const char *name);

/* Element @i of @arr when it is an object, else NULL. */
JsonObject *cocoClientJsonArrayObject(JsonArray *arr, guint i);

/*
 * cocoClientJsonParseObject:
 * Parse @len bytes of @text as one JSON object (a new reference); @what
 * names where it came from (a path or host) in the error.
 */
JsonObject *cocoClientJsonParseObject(const char *text, gssize len,
                                      const char *what, GError **error);
