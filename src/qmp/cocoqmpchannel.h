/*
 * cocoqmpchannel.h: a non-blocking stream socket carrying QMP lines and
 * file descriptors, driven by a GMainContext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "qmp/cocoqmplinebuf.h"

typedef struct _CocoQmpChannel CocoQmpChannel;

/* A complete line arrived; the callee owns @line. */
typedef void (*CocoQmpChannelLineFunc)(CocoQmpChannel *ch, CocoQmpLine *line,
                                       gpointer opaque);
/* The peer closed the stream, or it failed (@error is then set). */
typedef void (*CocoQmpChannelClosedFunc)(CocoQmpChannel *ch,
                                         const GError *error, gpointer opaque);

/* Takes ownership of @fd (made non-blocking here). */
CocoQmpChannel *cocoQmpChannelNew(int fd, GMainContext *ctx, const char *label,
                                  CocoQmpChannelLineFunc lineFunc,
                                  CocoQmpChannelClosedFunc closedFunc,
                                  gpointer opaque);
CocoQmpChannel *cocoQmpChannelRef(CocoQmpChannel *ch);
void cocoQmpChannelUnref(CocoQmpChannel *ch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoQmpChannel, cocoQmpChannelUnref);

/* Stop all I/O and close the socket; no callback runs afterwards. */
void cocoQmpChannelClose(CocoQmpChannel *ch);
gboolean cocoQmpChannelIsClosed(CocoQmpChannel *ch);

const char *cocoQmpChannelGetLabel(CocoQmpChannel *ch);
int cocoQmpChannelGetFd(CocoQmpChannel *ch);

/*
 * Queue @len bytes for sending, with @nfds descriptors attached to their
 * first byte (SCM_RIGHTS). The descriptors are duplicated: the caller keeps
 * its own. Sending happens as the socket allows; a failure closes the
 * channel.
 */
void cocoQmpChannelSend(CocoQmpChannel *ch, const char *data, gsize len,
                        const int *fds, size_t nfds);

/* The longest line accepted from the peer from now on (a longer one
 * closes the channel with an error). */
void cocoQmpChannelSetMaxLine(CocoQmpChannel *ch, gsize max);

/* Bytes queued and not yet written. */
gsize cocoQmpChannelQueued(CocoQmpChannel *ch);
