/*
 * cocometricsbench.c: what the agent's metrics cost (not a unit test)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * For N migrations (10, 1000, 10000), each ending after seven phases
 * with its sealed bytes, and a few peer errors:
 *  - the updates' CPU time per migration;
 *  - the CPU time of one scrape's text (cocoAgentMetricsFormat()),
 *    against the reference of the same run: the "status" answer for the
 *    same migrations (their records as one JSON array, which is what the
 *    relay's "status" sends; kept in memory here, records_max caps it at
 *    1000 by default), which grows with N where the scrape does not.
 * Times are CPU time of this thread (CLOCK_THREAD_CPUTIME_ID), medians.
 */

#include "internal.h"
#include "agent/cocoagentmetrics.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <time.h>

static double
cpuNow(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmpDouble(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : x > y;
}

#define REPEATS 9

static double
median(double *v)
{
    qsort(v, REPEATS, sizeof(double), cmpDouble);
    return v[REPEATS / 2];
}

/* A record as a migration's worker keeps it (the fields that grow). */
static JsonObject *
fakeRecord(unsigned int i)
{
    JsonObject *rec = json_object_new();
    JsonArray *tl = json_array_new();
    g_autofree char *id =
        g_strdup_printf("vm%u-source-20261207T030000-%08x", i, i);
    unsigned int e;

    json_object_set_string_member(rec, "id", id);
    json_object_set_string_member(rec, "domain", "vm");
    json_object_set_string_member(rec, "role", "source");
    json_object_set_string_member(rec, "state", "committed");
    json_object_set_boolean_member(rec, "final", TRUE);
    for (e = 0; e < 8; e++) {
        JsonObject *o = json_object_new();

        json_object_set_double_member(o, "at_ms", e * 10.5);
        json_object_set_string_member(o, "event", "pre-switchover");
        json_object_set_string_member(o, "from", "precopy");
        json_object_set_string_member(o, "to", "switchover");
        json_object_set_string_member(o, "steps", "source-blackout,final");
        json_array_add_object_element(tl, o);
    }
    json_object_set_array_member(rec, "timeline", tl);
    return rec;
}

static void
run(unsigned int n)
{
    static const CocoPhaseState phases[] = {
        COCO_PHASE_STATE_IDLE,     COCO_PHASE_STATE_PREPARING,
        COCO_PHASE_STATE_SETUP,    COCO_PHASE_STATE_PRECOPY,
        COCO_PHASE_STATE_BLACKOUT, COCO_PHASE_STATE_SWITCHOVER,
        COCO_PHASE_STATE_HANDOVER,
    };
    static const CocoPhaseState outcomes[] = {COCO_PHASE_STATE_COMMITTED,
                                              COCO_PHASE_STATE_ABORTED,
                                              COCO_PHASE_STATE_FAILED};
    static const char *const causes[] = {"none", "peer-timeout", "peer-auth"};
    g_autoptr(CocoAgentMetrics) mx = cocoAgentMetricsNew();
    g_autoptr(JsonArray) recs = json_array_new();
    CocoAgentMetricsGauges g = {{1, 1}, 2, 0, n};
    double scrape[REPEATS];
    double status[REPEATS];
    double t0;
    double update;
    size_t bytes = 0;
    size_t sbytes = 0;
    unsigned int i;
    unsigned int r;
    size_t p;

    t0 = cpuNow();
    for (i = 0; i < n; i++) {
        for (p = 0; p < G_N_ELEMENTS(phases); p++)
            cocoAgentMetricsPhaseEnded(mx, i % 2, phases[p],
                                       (gint64)(1000 * (p + 1) + i % 997));
        cocoAgentMetricsSealed(mx, i % 2, 1059184, 256);
        cocoAgentMetricsMigrationEnded(mx, i % 2, outcomes[i % 3],
                                       causes[i % 3], 80000 + i % 5000);
        if (i % 10 == 0)
            cocoAgentMetricsPeerError(mx, COCO_AGENT_METRICS_PEER_INCOMING,
                                      "limit");
    }
    update = (cpuNow() - t0) / n;

    for (i = 0; i < n; i++)
        json_array_add_object_element(recs, fakeRecord(i));
    for (r = 0; r < REPEATS; r++) {
        g_autofree char *text = NULL;
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *json = NULL;

        t0 = cpuNow();
        text = cocoAgentMetricsFormat(mx, &g);
        scrape[r] = cpuNow() - t0;
        bytes = strlen(text);

        t0 = cpuNow();
        node = json_node_new(JSON_NODE_ARRAY);
        json_node_set_array(node, recs);
        json = json_to_string(node, FALSE);
        status[r] = cpuNow() - t0;
        sbytes = strlen(json);
    }
    printf("migrations %7u: update %.2f us/migration; scrape %.1f us "
           "(%zu bytes); status %.1f us (%zu bytes); scrape/status %.4f\n",
           n, update * 1e6, median(scrape) * 1e6, bytes, median(status) * 1e6,
           sbytes, median(scrape) / median(status));
}

int
main(void)
{
    run(10);
    run(1000);
    run(10000);
    return 0;
}
