/*
 * cocoqmpprecopy.h: the source migration while the agents copy private
 * memory, as libvirt sees it through QMP
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * On a source with an agent the relay answers libvirt's 'migrate' itself
 * and QEMU only starts once the agents ran SETUP and their precopy rounds.
 * Meanwhile the relay plays a QEMU that migrates: it answers
 * 'query-migrate' from the agent's progress reports; once QEMU migrates,
 * it adds those numbers to QEMU's own replies.
 */

#pragma once

#include "internal.h"
#include "util/cocoenum.h"

#include <json-glib/json-glib.h>

/* Who answers libvirt's 'query-migrate' for the current source job. */
typedef enum {
    COCO_QMP_OWN_NONE, /* QEMU, unchanged */
    COCO_QMP_OWN_PRECOPY, /* the relay: the agents copy, QEMU waits */
    COCO_QMP_OWN_CANCELLING, /* the relay: libvirt cancelled, agent pending */
    COCO_QMP_OWN_FORWARDED, /* QEMU migrates; the relay adds private memory */
    COCO_QMP_OWN_FAILED, /* the relay: failed before QEMU migrated */
    COCO_QMP_OWN_CANCELLED, /* the relay: cancelled before QEMU migrated */
    COCO_QMP_OWN_LAST
} CocoQmpOwn;

COCO_ENUM_DECL(cocoQmpOwn);

/* What moves the ownership of the source job (cocoQmpOwnNext()). */
typedef enum {
    COCO_QMP_OWN_EV_NEW_JOB, /* libvirt's migrate: a new job, QEMU's */
    COCO_QMP_OWN_EV_HOLD, /* the relay holds migrate for the agents */
    COCO_QMP_OWN_EV_FORWARD, /* the agents are done: QEMU migrates */
    COCO_QMP_OWN_EV_FAIL, /* refused by the agent, or by QEMU at start */
    COCO_QMP_OWN_EV_CANCEL, /* libvirt's migrate_cancel during precopy */
    COCO_QMP_OWN_EV_CANCELLED, /* the agents stopped; QEMU never starts */
    COCO_QMP_OWN_EV_LAST
} CocoQmpOwnEvent;

COCO_ENUM_DECL(cocoQmpOwnEvent);

/*
 * The one transition table of the relay's ownership of the source job
 * (docs/qemu-coco.rst, "Who answers query-migrate"): the state that
 * @event moves @from to, in *@to. Returns FALSE, and leaves *@to alone,
 * when @event cannot happen in @from.
 */
gboolean cocoQmpOwnNext(CocoQmpOwn from, CocoQmpOwnEvent event, CocoQmpOwn *to);

/* The agent's latest 'progress' report (docs/qemu-coco.rst). */
typedef struct {
    gboolean valid;
    guint64 total; /* guest RAM bytes */
    guint64 transferred; /* bytes sent on the agents' streams */
    guint64 remaining; /* bytes still to send (the dirty estimate) */
    guint64 pages; /* pages sent */
    guint64 epoch; /* precopy epochs completed */
    guint64 rate; /* bytes per second */
    guint64 dirtyRate; /* pages dirtied per second */
} CocoQmpProgress;

/*
 * Read a 'progress' message into @p. Missing or negative numbers read as
 * 0. Returns FALSE (and leaves @p alone) when it has no "total".
 */
gboolean cocoQmpProgressParse(JsonObject *msg, CocoQmpProgress *p);

/* @p as the relay reports it in 'x-coco-query-relay'. */
JsonObject *cocoQmpProgressToJson(const CocoQmpProgress *p);

/*
 * The 'return' object of 'query-migrate' while the relay owns the job
 * (any state but NONE and FORWARDED), shaped like QEMU's:
 * status "active" (PRECOPY), "cancelling", "failed" with "error-desc"
 * @errorDesc, or "cancelled". @totalMs is the time since libvirt's
 * 'migrate'.
 */
JsonObject *cocoQmpPrecopyStatus(CocoQmpOwn own, const CocoQmpProgress *p,
                                 gint64 totalMs, const char *errorDesc);

/*
 * Add the private memory of @p to QEMU's 'query-migrate' return object
 * @ret (its "ram": transferred, total, remaining, normal, normal-bytes,
 * mbps, ...). A "setup" status becomes "active": libvirt saw the job
 * active already. Replies without "ram" get none.
 */
void cocoQmpPrecopyAugment(JsonObject *ret, const CocoQmpProgress *p);
