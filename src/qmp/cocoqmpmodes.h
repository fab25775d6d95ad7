/*
 * cocoqmpmodes.h: the migration modes libvirt may ask for that a
 * confidential migration cannot use
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A confidential guest's memory crosses hosts only through the host
 * agents' sealed pre-copy pipeline (QEMU's own stream carries the device
 * state, with x-ignore-shared). libvirt's other modes would either stop
 * QEMU's migration outright (post-copy with x-ignore-shared: "Postcopy is
 * not compatible with ignore-shared") or hide the destination from the
 * relay (tunnelled, parallel connections). The relay keeps the post-copy
 * capabilities from QEMU, refuses the switch to post-copy, and refuses a
 * 'migrate' in the other modes, naming the mode and the alternative.
 */

#pragma once

#include "internal.h"
#include "qmp/cocoqmpagent.h"
#include "qmp/cocoqmpmigration.h"

#include <json-glib/json-glib.h>

/* What libvirt's migrate-set-capabilities asked for, as far as it matters
 * here (per monitor connection). */
typedef struct {
    gboolean postcopy; /* 'postcopy-ram' on: kept from QEMU */
    gboolean multifd; /* 'multifd' on: parallel connections */
} CocoQmpModes;

/*
 * Read libvirt's 'migrate-set-capabilities' @caps into @modes and remove
 * from it the capabilities the relay keeps from QEMU ('postcopy-ram',
 * 'postcopy-preempt'). Returns the number of elements removed.
 */
guint cocoQmpModesFilterCapabilities(JsonArray *caps, CocoQmpModes *modes);

/*
 * Why a real migration (@role, its @uri, the kind of the descriptor a
 * "fd:" URI names) cannot be confidential in the modes of @modes: one
 * line for libvirt, naming the mode and what to use instead; NULL when
 * the mode is supported.
 */
char *cocoQmpModesRefusal(const CocoQmpModes *modes, CocoQmpRole role,
                          const char *uri, CocoQmpFdKind fdKind);

/* The answer to libvirt's 'migrate-start-postcopy' (virsh
 * migrate-postcopy, Nova's and VDSM's switch to post-copy). */
const char *cocoQmpModesPostcopyRefusal(void);

/* The destination's "host:port" in a "tcp:host:port[,options]" URI, or
 * NULL. */
char *cocoQmpModesTcpPeer(const char *uri);
