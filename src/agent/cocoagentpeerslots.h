/*
 * cocoagentpeerslots.h: one migration at a time sets up its connections
 * to a peer host
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The peer counts every connection as unauthenticated until it has read
 * its hello, and refuses more than max_unauthenticated_per_address of them
 * from one address (cocoagentincoming.c). A source migration opens its
 * control connection and then its N data streams without waiting for the
 * peer to read each, so several migrations setting up to the same host at
 * once would arrive as one burst of (1 + N) each, and a stream the peer
 * refused is lost without a word. Each source migration therefore holds
 * its peer host's slot from its first connection until the peer said the
 * session is complete (PREPARED) or the migration failed; the others wait
 * for it, each at most peer_timeout seconds.
 */

#pragma once

#include "internal.h"

typedef struct _CocoAgentPeerSlots CocoAgentPeerSlots;

CocoAgentPeerSlots *cocoAgentPeerSlotsNew(void);
void cocoAgentPeerSlotsFree(CocoAgentPeerSlots *s);
/* Take @host's slot, waiting at most @timeout_s seconds for the migration
 * that holds it; -1 with a COCO_ERROR_AGENT_LIMIT error when it is still
 * held. Any thread but the main thread (it blocks). */
int cocoAgentPeerSlotsAcquire(CocoAgentPeerSlots *s, const char *host,
                              guint timeout_s, GError **error);
/* Give @host's slot back (taken by cocoAgentPeerSlotsAcquire()). */
void cocoAgentPeerSlotsRelease(CocoAgentPeerSlots *s, const char *host);
