/*
 * cocotransferdest.h: the import side of the transfer engine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * How the host agent drives it (destination host):
 *
 *   PREPARE (key exchange) is done beforehand through the firmware seam.
 *   dst = cocoTransferDestNew(fw, &cfg, streams, &err);
 *   cocoTransferDestStart(dst)     one reader thread per stream: HELLO,
 *                                  SETUP with the immutable state, memory
 *                                  bundles, epoch tokens, vCPU states and
 *                                  the start token, in the firmware's order
 *   cocoTransferDestWait(dst)      returns 0 once the start token has been
 *                                  imported and every stream has ended
 *   -- FINISH (commit) through the firmware seam; if the destination must
 *      give up instead: ABORT gives the abort token, and
 *      cocoTransferDestSendAbortToken() carries it back on stream 0 --
 *
 * The streams may be given in any order; each names its index in HELLO.
 * A memory bundle of epoch e+1 is imported only after the token of epoch
 * e, and that token only after every stream has delivered all bundles of
 * epoch e (EPOCH_END records): the barrier of docs/transfer.rst.
 * cocoTransferDestGetStats() and cocoTransferDestCancel() may be called
 * from any thread. After a failure every stream is closed.
 */

#pragma once

#include "firmware/cocofirmware.h"
#include "transfer/cocotransfer.h"

#include <gio/gio.h>

typedef struct _CocoTransferDest CocoTransferDest;

CocoTransferDest *cocoTransferDestNew(CocoFirmware *fw,
                                      const CocoTransferConfig *cfg,
                                      GIOStream **streams, GError **error);
void cocoTransferDestSetProgress(CocoTransferDest *dst,
                                 CocoTransferProgressFunc func, void *opaque);
int cocoTransferDestStart(CocoTransferDest *dst, GError **error);
int cocoTransferDestWait(CocoTransferDest *dst, GError **error);
/* Start and wait. */
int cocoTransferDestRun(CocoTransferDest *dst, GError **error);
int cocoTransferDestSendAbortToken(CocoTransferDest *dst, const void *token,
                                   size_t len, GError **error);
void cocoTransferDestCancel(CocoTransferDest *dst);
void cocoTransferDestGetStats(CocoTransferDest *dst, CocoTransferStats *stats);
/* 0 while the transfer has not failed; -1 with a copy of its first error
 * once it has (any thread). */
int cocoTransferDestGetError(CocoTransferDest *dst, GError **error);
void cocoTransferDestFree(CocoTransferDest *dst);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoTransferDest, cocoTransferDestFree)
