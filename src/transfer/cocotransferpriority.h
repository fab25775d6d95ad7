/*
 * cocotransferpriority.h: switchovers before bulk pre-copy, host-wide
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include <gio/gio.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * A guest paused for its switchover is down until its migration ends;
 * another migration's pre-copy is not (its guest runs). While any
 * migration of the host is in its downtime, the others' bulk pre-copy work
 * (dirty scans and memory bundles of the epochs before the final one)
 * waits, so the switchover's own threads, QEMU and libvirt get the cores.
 * The wait is bounded twice: per piece of work (the caller's bound), and
 * per downtime (@max_age_us after it began it holds nothing back any
 * more: a switchover stuck on a lost peer must not starve the others).
 *
 * One object per agent process, shared by every transfer source; any
 * thread may call any function.
 */
typedef struct _CocoTransferPriority CocoTransferPriority;

CocoTransferPriority *cocoTransferPriorityNew(int64_t max_age_us);
CocoTransferPriority *cocoTransferPriorityRef(CocoTransferPriority *p);
void cocoTransferPriorityUnref(CocoTransferPriority *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoTransferPriority, cocoTransferPriorityUnref);

/* A migration's guest entered its downtime: returns the id its
 * cocoTransferPriorityLeave() gives back. */
guint64 cocoTransferPriorityEnter(CocoTransferPriority *p);
void cocoTransferPriorityLeave(CocoTransferPriority *p, guint64 id);

/* Migrations in their downtime now (holding back or not). */
unsigned int cocoTransferPriorityDowntimes(CocoTransferPriority *p);

/*
 * cocoTransferPriorityYield:
 * Before a piece of bulk work: wait while a migration's downtime holds it
 * back, at most @max_us, and not past @cancel. Returns the microseconds
 * waited.
 */
int64_t cocoTransferPriorityYield(CocoTransferPriority *p, int64_t max_us,
                                  GCancellable *cancel);
