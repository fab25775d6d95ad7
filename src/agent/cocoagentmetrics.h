/*
 * cocoagentmetrics.h: the counters an agent exports (OpenMetrics)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One small object per agent, always kept (whether or not the endpoint
 * of cocoagentmetricshttp.h serves it): updated where a migration ends,
 * where a phase ends and where a peer connection is refused, from any
 * thread (the migrations' workers, the main thread), under one mutex
 * held for a few additions. Formatting takes the same mutex and copies
 * nothing per migration: its cost grows with the label sets seen (roles,
 * outcomes, causes, phases), never with the number of migrations.
 *
 * Label values come from the agent's enums only (roles, phase states,
 * error code nicks and the reasons below), never from free text, so the
 * number of series stays bounded. docs/virtcocod.rst ("Metrics") lists
 * every metric.
 */

#pragma once

#include "internal.h"
#include "firmware/cocofirmware.h"
#include "util/cocoenum.h"
#include "migration/cocophase.h"

#include <gio/gio.h>
#include <stdbool.h>

/* The content type of the text cocoAgentMetricsFormat() returns. */
#define COCO_AGENT_METRICS_CONTENT_TYPE                                        \
 "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* Which side of a peer connection failed. */
typedef enum {
    COCO_AGENT_METRICS_PEER_INCOMING = 0, /* refused by this agent */
    COCO_AGENT_METRICS_PEER_OUTGOING, /* this agent could not connect */

    COCO_AGENT_METRICS_PEER_LAST
} CocoAgentMetricsPeer;
COCO_ENUM_DECL(cocoAgentMetricsPeer);

typedef struct _CocoAgentMetrics CocoAgentMetrics;

CocoAgentMetrics *cocoAgentMetricsNew(void);
void cocoAgentMetricsFree(CocoAgentMetrics *mx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoAgentMetrics, cocoAgentMetricsFree)

/*
 * The label of an error: its COCO_ERROR code's nick ("peer-auth"), "tls"
 * or "io" for GIO's TLS and I/O errors, "other" for any other domain,
 * "none" for NULL. A static string.
 */
const char *cocoAgentMetricsCause(const GError *err);

/* A migration in @role reached the final state @outcome; @cause is its
 * failure (NULL: none), @downtime_us the source's downtime (0: none). */
void cocoAgentMetricsMigrationEnded(CocoAgentMetrics *mx, CocoFirmwareRole role,
                                    CocoPhaseState outcome, const char *cause,
                                    gint64 downtime_us);

/* A migration in @role left @phase after @duration_us. */
void cocoAgentMetricsPhaseEnded(CocoAgentMetrics *mx, CocoFirmwareRole role,
                                CocoPhaseState phase, gint64 duration_us);

/* A migration in @role sealed (source) or opened (destination) @bytes
 * more of sealed data, @pages more guest pages. */
void cocoAgentMetricsSealed(CocoAgentMetrics *mx, CocoFirmwareRole role,
                            guint64 bytes, guint64 pages);

/* A peer connection failed (@reason: cocoAgentMetricsCause(), or "limit"
 * for a connection over the unauthenticated limits). */
void cocoAgentMetricsPeerError(CocoAgentMetrics *mx, CocoAgentMetricsPeer side,
                               const char *reason);

/* What the agent counts now, read at each scrape (main thread). */
typedef struct {
    guint in_flight[COCO_FIRMWARE_ROLE_LAST]; /* sessions not final */
    guint relay_connections; /* relays and local clients */
    guint peer_unauthenticated; /* peer connections before their hello */
    guint records; /* migration records kept */
} CocoAgentMetricsGauges;

/* The OpenMetrics text of every metric (ends with "# EOF\n"). */
char *cocoAgentMetricsFormat(CocoAgentMetrics *mx,
                             const CocoAgentMetricsGauges *gauges);

/*
 * Parse "ADDRESS:PORT" (an IPv6 address in brackets: "[::1]:9464"), the
 * address a literal IPv4 or IPv6 address (no host names: nothing is
 * resolved), the port 0..65535 (0: any, for tests). Returns the address,
 * or NULL with @error.
 */
GInetSocketAddress *cocoAgentMetricsListenParse(const char *text,
                                                GError **error);
