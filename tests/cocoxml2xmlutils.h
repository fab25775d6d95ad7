/*
 * cocoxml2xmlutils.h: helpers shared by the coco XML tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include <stdbool.h>

/* $abs_srcdir/@name (the tests' source directory). */
char *cocoTestSrcPath(const char *name);

/* The names of the *.xml files in @dir, sorted. */
GPtrArray *cocoTestListXML(const char *dir);

/* Read a whole file (the test fails when it cannot). */
char *cocoTestReadFile(const char *path);

/*
 * cocoTestGetExpect:
 * Find "<!-- expect: CODE DETAIL -->" in @text: *@code gets CODE (an error
 * nick from cocoErrorCodeToString(), or "ok"), *@detail the rest (may be
 * empty), which the error message must contain. Returns false when the
 * text has no such comment.
 */
bool cocoTestGetExpect(const char *text, char **code, char **detail);

/*
 * cocoTestCheckError:
 * Assert that @err is set, has the code named @code and a one-line message
 * containing @detail.
 */
void cocoTestCheckError(const GError *err, const char *code,
                        const char *detail);

/* Parse and validate a standalone element; the first error or NULL. */
GError *cocoTestParseValidate(const char *xml);
