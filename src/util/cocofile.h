/*
 * cocofile.h: small files read with a bound
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

/*
 * The contents of the regular file at @path, at most @max bytes (NUL
 * terminated; its length in *@len). Opening does not wait (a FIFO or a
 * device at @path would block the reader or never end: refused); the size
 * is checked before the file is read and again as it is read (a file that
 * grew). Errors are G_FILE_ERROR, a message without the path for the
 * caller to place in its own: G_FILE_ERROR_NOENT for a missing file, _INVAL
 * for one that is not a regular file, _FAILED for one larger than @max,
 * else the error of open() or read().
 */
char *cocoFileReadRegular(const char *path, size_t max, size_t *len,
                          GError **error);
