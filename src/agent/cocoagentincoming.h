/*
 * cocoagentincoming.h: the peer agents' connections (the destination side)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * See cocoagentincoming.c and cocoagentpriv.h.
 */

#pragma once

#include "internal.h"
#include "agent/cocoagentpriv.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoAgentIncoming, cocoAgentIncomingFree)

/* Connections that have not authenticated yet (tests, metrics). */
guint cocoAgentIncomingUnauthenticated(CocoAgentIncoming *inc);
