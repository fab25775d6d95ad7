/*
 * cocoagentmetricshttp.h: the agent's OpenMetrics endpoint (libsoup 3)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Plain HTTP on one address (docs/virtcocod.rst, "Metrics"): GET /metrics
 * answers the text of a render function, any other method 405 and any
 * other path 404. Everything runs on the agent's main context and never
 * blocks it: the accept, libsoup's reads and writes and the render (which
 * only copies counters). Hostile clients are bounded:
 *
 *  - at most COCO_AGENT_METRICS_MAX_CONNECTIONS connections at once; one
 *    more is closed as soon as it is accepted;
 *  - one request per connection ("Connection: close"), and a connection
 *    lives at most COCO_AGENT_METRICS_CONNECTION_S seconds, then it is
 *    shut down;
 *  - request headers are capped by libsoup (64 KiB), a request body is
 *    refused (413) before it is read.
 */

#pragma once

#include "internal.h"

#include <gio/gio.h>

#define COCO_AGENT_METRICS_MAX_CONNECTIONS 8
#define COCO_AGENT_METRICS_CONNECTION_S 10

typedef struct _CocoAgentMetricsHttp CocoAgentMetricsHttp;

/* The text of one scrape (OpenMetrics, allocated), on the main context. */
typedef char *(*CocoAgentMetricsRenderFunc)(gpointer opaque);

/* Listen on @addr (port 0: the kernel's choice) and serve in @ctx. */
CocoAgentMetricsHttp *cocoAgentMetricsHttpNew(GInetSocketAddress *addr,
                                              GMainContext *ctx,
                                              CocoAgentMetricsRenderFunc render,
                                              gpointer opaque, GError **error);
/* Stop listening and close every connection (main context). */
void cocoAgentMetricsHttpFree(CocoAgentMetricsHttp *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoAgentMetricsHttp, cocoAgentMetricsHttpFree)

/* The port bound. */
unsigned int cocoAgentMetricsHttpGetPort(CocoAgentMetricsHttp *h);
