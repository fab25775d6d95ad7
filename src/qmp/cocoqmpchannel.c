/*
 * cocoqmpchannel.c: a non-blocking QMP stream with SCM_RIGHTS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "qmp/cocoqmpchannel.h"
#include "util/cocoerror.h"
#include "util/cocosource.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <sys/socket.h>
#include <unistd.h>

#define COCO_QMP_READ_SIZE 65536
#define COCO_QMP_MAX_FDS 16
#define COCO_QMP_MAX_LINE (64 * 1024 * 1024)

typedef struct {
    char *data;
    gsize len;
    gsize off;
    int *fds;
    size_t nfds;
} CocoQmpOutBuf;

struct _CocoQmpChannel {
    gint refs;
    int fd;
    char *label;
    GMainContext *ctx;
    GSource *inSource;
    GSource *outSource;
    CocoQmpLineBuf *lb;
    GQueue out; /* CocoQmpOutBuf */
    gsize queued;
    gboolean closed;
    CocoQmpChannelLineFunc lineFunc;
    CocoQmpChannelClosedFunc closedFunc;
    gpointer opaque;
};

static void
cocoQmpOutBufFree(CocoQmpOutBuf *b)
{
    size_t i;

    for (i = 0; i < b->nfds; i++)
        COCO_FORCE_CLOSE(b->fds[i]);
    g_free(b->fds);
    g_free(b->data);
    g_free(b);
}

static void
cocoQmpChannelStopSources(CocoQmpChannel *ch)
{
    cocoSourceClear(&ch->inSource);
    cocoSourceClear(&ch->outSource);
}

void
cocoQmpChannelClose(CocoQmpChannel *ch)
{
    CocoQmpOutBuf *b;

    if (ch->closed)
        return;
    ch->closed = TRUE;
    cocoQmpChannelStopSources(ch);
    while ((b = g_queue_pop_head(&ch->out)))
        cocoQmpOutBufFree(b);
    ch->queued = 0;
    COCO_FORCE_CLOSE(ch->fd);
}

static void
cocoQmpChannelFail(CocoQmpChannel *ch, const GError *error)
{
    if (ch->closed)
        return;
    cocoQmpChannelClose(ch);
    if (ch->closedFunc)
        ch->closedFunc(ch, error, ch->opaque);
}

static gboolean cocoQmpChannelOnOut(gint fd, GIOCondition cond,
                                    gpointer opaque);

static void
cocoQmpChannelFlush(CocoQmpChannel *ch)
{
    CocoQmpOutBuf *b;

    while (!ch->closed && (b = g_queue_peek_head(&ch->out))) {
        struct msghdr msg = {0};
        struct iovec iov;
        union {
            struct cmsghdr hdr;
            char buf[CMSG_SPACE(sizeof(int) * COCO_QMP_MAX_FDS)];
        } cbuf;
        ssize_t n;

        iov.iov_base = b->data + b->off;
        iov.iov_len = b->len - b->off;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (b->nfds > 0) {
            struct cmsghdr *c;

            memset(&cbuf, 0, sizeof(cbuf));
            msg.msg_control = cbuf.buf;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * b->nfds);
            c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * b->nfds);
            memcpy(CMSG_DATA(c), b->fds, sizeof(int) * b->nfds);
        }
        n = sendmsg(ch->fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            g_autoptr(GError) err = NULL;

            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!ch->outSource) {
                    ch->outSource = g_unix_fd_source_new(ch->fd, G_IO_OUT);
                    g_source_set_callback(ch->outSource,
                                          G_SOURCE_FUNC(cocoQmpChannelOnOut),
                                          ch, NULL);
                    g_source_attach(ch->outSource, ch->ctx);
                }
                return;
            }
            cocoErrorSetSystem(&err, errno, _("cannot write to '%1$s'"),
                               ch->label);
            cocoQmpChannelFail(ch, err);
            return;
        }
        if (b->nfds > 0) {
            size_t i;

            /* The descriptors went out with the first byte. */
            for (i = 0; i < b->nfds; i++)
                COCO_FORCE_CLOSE(b->fds[i]);
            b->nfds = 0;
        }
        b->off += (gsize)n;
        ch->queued -= (gsize)n;
        if (b->off == b->len)
            cocoQmpOutBufFree(g_queue_pop_head(&ch->out));
    }
    cocoSourceClear(&ch->outSource);
}

static gboolean
cocoQmpChannelOnOut(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoQmpChannel *ch = opaque;
    G_GNUC_UNUSED g_autoptr(CocoQmpChannel) hold = cocoQmpChannelRef(ch);

    if (ch->outSource) {
        g_source_unref(ch->outSource);
        ch->outSource = NULL;
    }
    cocoQmpChannelFlush(ch);
    return G_SOURCE_REMOVE;
}

static gboolean
cocoQmpChannelOnIn(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoQmpChannel *ch = opaque;
    G_GNUC_UNUSED g_autoptr(CocoQmpChannel) hold = cocoQmpChannelRef(ch);
    g_autoptr(GError) err = NULL;
    char buf[COCO_QMP_READ_SIZE];
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int) * COCO_QMP_MAX_FDS)];
    } cbuf;
    struct msghdr msg = {0};
    struct iovec iov = {buf, sizeof(buf)};
    struct cmsghdr *c;
    int fds[COCO_QMP_MAX_FDS];
    size_t nfds = 0;
    ssize_t n;
    CocoQmpLine *line;

    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.buf;
    msg.msg_controllen = sizeof(cbuf.buf);
    n = recvmsg(ch->fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return G_SOURCE_CONTINUE;
        cocoErrorSetSystem(&err, errno, _("cannot read from '%1$s'"),
                           ch->label);
        cocoQmpChannelFail(ch, err);
        return G_SOURCE_CONTINUE;
    }
    for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        size_t cnt, i;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < cnt; i++) {
            int f;

            memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (nfds < G_N_ELEMENTS(fds))
                fds[nfds++] = f;
            else
                close(f);
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
        size_t i;

        for (i = 0; i < nfds; i++)
            close(fds[i]);
        cocoErrorSet(&err, COCO_ERROR_QMP_PROTOCOL,
                     _("too many file descriptors in one message on '%1$s'"),
                     ch->label);
        cocoQmpChannelFail(ch, err);
        return G_SOURCE_CONTINUE;
    }
    if (n == 0) {
        size_t i;

        for (i = 0; i < nfds; i++)
            close(fds[i]);
        cocoQmpChannelFail(ch, NULL);
        return G_SOURCE_CONTINUE;
    }
    if (cocoQmpLineBufFeed(ch->lb, buf, (gsize)n, fds, nfds, &err) < 0) {
        cocoQmpChannelFail(ch, err);
        return G_SOURCE_CONTINUE;
    }
    while (!ch->closed && (line = cocoQmpLineBufPop(ch->lb)))
        ch->lineFunc(ch, line, ch->opaque);
    return G_SOURCE_CONTINUE;
}

CocoQmpChannel *
cocoQmpChannelNew(int fd, GMainContext *ctx, const char *label,
                  CocoQmpChannelLineFunc lineFunc,
                  CocoQmpChannelClosedFunc closedFunc, gpointer opaque)
{
    CocoQmpChannel *ch = g_new0(CocoQmpChannel, 1);
    int flags = fcntl(fd, F_GETFL);

    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    ch->refs = 1;
    ch->fd = fd;
    ch->label = g_strdup(label);
    ch->ctx =
        ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    ch->lb = cocoQmpLineBufNew(COCO_QMP_MAX_LINE);
    g_queue_init(&ch->out);
    ch->lineFunc = lineFunc;
    ch->closedFunc = closedFunc;
    ch->opaque = opaque;
    ch->inSource = g_unix_fd_source_new(fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(ch->inSource, G_SOURCE_FUNC(cocoQmpChannelOnIn), ch,
                          NULL);
    g_source_attach(ch->inSource, ch->ctx);
    return ch;
}

CocoQmpChannel *
cocoQmpChannelRef(CocoQmpChannel *ch)
{
    g_atomic_int_inc(&ch->refs);
    return ch;
}

void
cocoQmpChannelUnref(CocoQmpChannel *ch)
{
    if (!ch || !g_atomic_int_dec_and_test(&ch->refs))
        return;
    cocoQmpChannelClose(ch);
    cocoQmpLineBufFree(ch->lb);
    g_main_context_unref(ch->ctx);
    g_free(ch->label);
    g_free(ch);
}

gboolean
cocoQmpChannelIsClosed(CocoQmpChannel *ch)
{
    return ch->closed;
}

const char *
cocoQmpChannelGetLabel(CocoQmpChannel *ch)
{
    return ch->label;
}

int
cocoQmpChannelGetFd(CocoQmpChannel *ch)
{
    return ch->fd;
}

void
cocoQmpChannelSend(CocoQmpChannel *ch, const char *data, gsize len,
                   const int *fds, size_t nfds)
{
    CocoQmpOutBuf *b;
    size_t i;

    if (ch->closed || len == 0)
        return;
    b = g_new0(CocoQmpOutBuf, 1);
    b->data = g_memdup2(data, len);
    b->len = len;
    if (nfds > 0) {
        b->fds = g_new(int, nfds);
        for (i = 0; i < nfds; i++) {
            b->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
            if (b->fds[i] < 0) {
                g_autoptr(GError) err = NULL;

                b->nfds = i;
                cocoQmpOutBufFree(b);
                cocoErrorSetSystem(
                    &err, errno, _("cannot duplicate a descriptor for '%1$s'"),
                    ch->label);
                cocoQmpChannelFail(ch, err);
                return;
            }
        }
        b->nfds = nfds;
    }
    g_queue_push_tail(&ch->out, b);
    ch->queued += len;
    if (!ch->outSource)
        cocoQmpChannelFlush(ch);
}

void
cocoQmpChannelSetMaxLine(CocoQmpChannel *ch, gsize max)
{
    cocoQmpLineBufSetMax(ch->lb, max);
}

gsize
cocoQmpChannelQueued(CocoQmpChannel *ch)
{
    return ch->queued;
}
