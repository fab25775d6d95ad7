/*
 * cocoagentrelay.h: the relay server, virtcocod's unix socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * See cocoagentrelay.c and cocoagentpriv.h.
 */

#pragma once

#include "internal.h"
#include "agent/cocoagentpriv.h"

/* Open connections (relays and clients), for tests and metrics. */
guint cocoAgentRelayServerConnections(CocoAgentRelayServer *srv);
