/*
 * cocoqmplinebuf.c: QMP line framing with file descriptors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "qmp/cocoqmplinebuf.h"
#include "util/cocoerror.h"

#include <unistd.h>

typedef struct {
    guint64 offset; /* stream offset of the first byte of its read */
    int fd;
} CocoQmpPendingFd;

struct _CocoQmpLineBuf {
    GByteArray *buf;
    guint64 base; /* stream offset of buf->data[0] */
    gsize scanned; /* bytes of buf known to hold no '\n' */
    gsize maxline;
    GArray *fds; /* CocoQmpPendingFd, in arrival order */
};

CocoQmpLine *
cocoQmpLineNew(const char *data, gsize len)
{
    CocoQmpLine *line = g_new0(CocoQmpLine, 1);

    line->data = g_malloc(len + 1);
    memcpy(line->data, data, len);
    line->data[len] = '\0';
    line->len = len;
    return line;
}

void
cocoQmpLineFree(CocoQmpLine *line)
{
    size_t i;

    if (!line)
        return;
    for (i = 0; i < line->nfds; i++)
        COCO_FORCE_CLOSE(line->fds[i]);
    g_free(line->fds);
    g_free(line->data);
    g_free(line);
}

void
cocoQmpLineBufSetMax(CocoQmpLineBuf *lb, gsize maxline)
{
    lb->maxline = maxline;
}

CocoQmpLineBuf *
cocoQmpLineBufNew(gsize maxline)
{
    CocoQmpLineBuf *lb = g_new0(CocoQmpLineBuf, 1);

    lb->buf = g_byte_array_new();
    lb->maxline = maxline;
    lb->fds = g_array_new(FALSE, FALSE, sizeof(CocoQmpPendingFd));
    return lb;
}

void
cocoQmpLineBufFree(CocoQmpLineBuf *lb)
{
    guint i;

    if (!lb)
        return;
    for (i = 0; i < lb->fds->len; i++)
        COCO_FORCE_CLOSE(g_array_index(lb->fds, CocoQmpPendingFd, i).fd);
    g_array_free(lb->fds, TRUE);
    g_byte_array_free(lb->buf, TRUE);
    g_free(lb);
}

int
cocoQmpLineBufFeed(CocoQmpLineBuf *lb, const char *data, gsize len,
                   const int *fds, size_t nfds, GError **error)
{
    size_t i;
    const char *nl;
    gsize tail;

    for (i = 0; i < nfds; i++) {
        CocoQmpPendingFd p = {lb->base + lb->buf->len, fds[i]};

        g_array_append_val(lb->fds, p);
    }
    if (len > G_MAXUINT)
        return cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL,
                            _("QMP read of '%1$zu' bytes is too large"), len);
    g_byte_array_append(lb->buf, (const guint8 *)data, (guint)len);

    /* The bytes after the last '\n' form the unfinished line. */
    nl = lb->buf->len ? memrchr(lb->buf->data, '\n', lb->buf->len) : NULL;
    tail = nl ? lb->buf->len - (gsize)((const guint8 *)nl - lb->buf->data) - 1
              : lb->buf->len;
    if (tail > lb->maxline)
        return cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL,
                            _("QMP line longer than '%1$zu' bytes"),
                            lb->maxline);
    return 0;
}

CocoQmpLine *
cocoQmpLineBufPop(CocoQmpLineBuf *lb)
{
    const guint8 *nl;
    CocoQmpLine *line;
    gsize len;
    guint64 end;
    guint n = 0;
    guint i;

    if (lb->scanned >= lb->buf->len)
        return NULL;
    nl = memchr(lb->buf->data + lb->scanned, '\n', lb->buf->len - lb->scanned);
    if (!nl) {
        lb->scanned = lb->buf->len;
        return NULL;
    }
    len = (gsize)(nl - lb->buf->data) + 1;
    line = cocoQmpLineNew((const char *)lb->buf->data, len);
    end = lb->base + len;

    while (n < lb->fds->len &&
           g_array_index(lb->fds, CocoQmpPendingFd, n).offset < end)
        n++;
    if (n > 0) {
        line->fds = g_new(int, n);
        line->nfds = n;
        for (i = 0; i < n; i++)
            line->fds[i] = g_array_index(lb->fds, CocoQmpPendingFd, i).fd;
        g_array_remove_range(lb->fds, 0, n);
    }

    g_byte_array_remove_range(lb->buf, 0, (guint)len);
    lb->base = end;
    lb->scanned = 0;
    return line;
}

gsize
cocoQmpLineBufPending(CocoQmpLineBuf *lb)
{
    return lb->buf->len;
}
