/*
 * cocoqmplinebuf.h: QMP line framing with the file descriptors that came
 * with each line (SCM_RIGHTS)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

/* One framed line: the bytes including the terminating '\n', and the file
 * descriptors that arrived with it (owned: freeing the line closes them). */
typedef struct {
    char *data;
    gsize len;
    int *fds;
    size_t nfds;
} CocoQmpLine;

CocoQmpLine *cocoQmpLineNew(const char *data, gsize len);
void cocoQmpLineFree(CocoQmpLine *line);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoQmpLine, cocoQmpLineFree);

typedef struct _CocoQmpLineBuf CocoQmpLineBuf;

/* @maxline: the longest line accepted, terminator included. */
CocoQmpLineBuf *cocoQmpLineBufNew(gsize maxline);
void cocoQmpLineBufFree(CocoQmpLineBuf *lb);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoQmpLineBuf, cocoQmpLineBufFree);

/*
 * Append @len bytes received in one read, with the @nfds descriptors that
 * came with them (ownership passes to the buffer, even on failure). A
 * descriptor belongs to the line that the first byte of its read
 * continues or starts. Fails with COCO_ERROR_QMP_PROTOCOL when a line
 * grows beyond the limit.
 */
int cocoQmpLineBufFeed(CocoQmpLineBuf *lb, const char *data, gsize len,
                       const int *fds, size_t nfds, GError **error);

/* The next complete line, or NULL. */
CocoQmpLine *cocoQmpLineBufPop(CocoQmpLineBuf *lb);

/* Change the longest line accepted from now on. */
void cocoQmpLineBufSetMax(CocoQmpLineBuf *lb, gsize maxline);

/* Bytes buffered that do not form a complete line yet. */
gsize cocoQmpLineBufPending(CocoQmpLineBuf *lb);
