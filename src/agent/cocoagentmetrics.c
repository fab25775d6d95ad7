/*
 * cocoagentmetrics.c: the counters an agent exports (OpenMetrics)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentmetrics.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"

#include <inttypes.h>

COCO_ENUM_IMPL(cocoAgentMetricsPeer, COCO_AGENT_METRICS_PEER_LAST, "incoming",
               "outgoing");

/* Seconds: the upper bounds of the histograms' buckets, and their labels
 * (OpenMetrics wants the same text every time). */
static const double cocoAgentMetricsBounds[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
    0.5,   1.0,    2.5,   5.0,  10.0,  30.0, 60.0, 300.0,
};
static const char *const cocoAgentMetricsBoundLabels[] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",  "0.25",
    "0.5",   "1.0",    "2.5",   "5.0",  "10.0",  "30.0", "60.0", "300.0",
};
#define COCO_AGENT_METRICS_NBOUNDS G_N_ELEMENTS(cocoAgentMetricsBounds)
G_STATIC_ASSERT(G_N_ELEMENTS(cocoAgentMetricsBoundLabels) ==
                COCO_AGENT_METRICS_NBOUNDS);

typedef struct {
    guint64 buckets[COCO_AGENT_METRICS_NBOUNDS + 1]; /* not cumulative;
                                                        the last: +Inf */
    guint64 count;
    double sum; /* seconds */
} CocoAgentHistogram;

struct _CocoAgentMetrics {
    GMutex lock;
    /* "role outcome cause" -> guint64 (the key's strings are enum
     * names, without spaces) */
    GHashTable *migrations;
    /* "side reason" -> guint64 */
    GHashTable *peer_errors;
    guint64 sealed_bytes[COCO_FIRMWARE_ROLE_LAST];
    guint64 sealed_pages[COCO_FIRMWARE_ROLE_LAST];
    CocoAgentHistogram downtime;
    CocoAgentHistogram phases[COCO_FIRMWARE_ROLE_LAST][COCO_PHASE_STATE_LAST];
};

CocoAgentMetrics *
cocoAgentMetricsNew(void)
{
    CocoAgentMetrics *mx = g_new0(CocoAgentMetrics, 1);

    g_mutex_init(&mx->lock);
    mx->migrations =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    mx->peer_errors =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return mx;
}

void
cocoAgentMetricsFree(CocoAgentMetrics *mx)
{
    if (!mx)
        return;
    g_hash_table_unref(mx->migrations);
    g_hash_table_unref(mx->peer_errors);
    g_mutex_clear(&mx->lock);
    g_free(mx);
}

const char *
cocoAgentMetricsCause(const GError *err)
{
    const char *nick;

    if (!err)
        return "none";
    if (err->domain == COCO_ERROR) {
        nick = cocoErrorCodeToString(err->code);
        return nick ? nick : "other";
    }
    if (err->domain == G_TLS_ERROR)
        return "tls";
    if (err->domain == G_IO_ERROR)
        return "io";
    return "other";
}

/* Add 1 to the counter @key (taken) of @table; under the lock. */
static void
cocoAgentMetricsCount(GHashTable *table, char *key)
{
    guint64 *v = g_hash_table_lookup(table, key);

    if (v) {
        (*v)++;
        g_free(key);
        return;
    }
    v = g_new(guint64, 1);
    *v = 1;
    g_hash_table_insert(table, key, v);
}

static void
cocoAgentHistogramObserve(CocoAgentHistogram *h, gint64 us)
{
    double s = us > 0 ? (double)us / (double)G_USEC_PER_SEC : 0.0;
    size_t i;

    for (i = 0; i < COCO_AGENT_METRICS_NBOUNDS; i++) {
        if (s <= cocoAgentMetricsBounds[i])
            break;
    }
    h->buckets[i]++;
    h->count++;
    h->sum += s;
}

void
cocoAgentMetricsMigrationEnded(CocoAgentMetrics *mx, CocoFirmwareRole role,
                               CocoPhaseState outcome, const char *cause,
                               gint64 downtime_us)
{
    char *key = g_strdup_printf(
        "%s %s %s", NULLSTR(cocoFirmwareRoleTypeToString(role)),
        NULLSTR(cocoPhaseStateTypeToString(outcome)), cause ? cause : "none");

    g_mutex_lock(&mx->lock);
    cocoAgentMetricsCount(mx->migrations, key);
    if (role == COCO_FIRMWARE_ROLE_SOURCE && downtime_us > 0)
        cocoAgentHistogramObserve(&mx->downtime, downtime_us);
    g_mutex_unlock(&mx->lock);
}

void
cocoAgentMetricsPhaseEnded(CocoAgentMetrics *mx, CocoFirmwareRole role,
                           CocoPhaseState phase, gint64 duration_us)
{
    if ((unsigned int)role >= COCO_FIRMWARE_ROLE_LAST ||
        (unsigned int)phase >= COCO_PHASE_STATE_LAST)
        return;
    g_mutex_lock(&mx->lock);
    cocoAgentHistogramObserve(&mx->phases[role][phase], duration_us);
    g_mutex_unlock(&mx->lock);
}

void
cocoAgentMetricsSealed(CocoAgentMetrics *mx, CocoFirmwareRole role,
                       guint64 bytes, guint64 pages)
{
    if ((unsigned int)role >= COCO_FIRMWARE_ROLE_LAST)
        return;
    g_mutex_lock(&mx->lock);
    mx->sealed_bytes[role] += bytes;
    mx->sealed_pages[role] += pages;
    g_mutex_unlock(&mx->lock);
}

void
cocoAgentMetricsPeerError(CocoAgentMetrics *mx, CocoAgentMetricsPeer side,
                          const char *reason)
{
    char *key = g_strdup_printf("%s %s",
                                NULLSTR(cocoAgentMetricsPeerTypeToString(side)),
                                reason ? reason : "other");

    g_mutex_lock(&mx->lock);
    cocoAgentMetricsCount(mx->peer_errors, key);
    g_mutex_unlock(&mx->lock);
}

/* ---- formatting ---------------------------------------------------------- */

/* The metadata of one metric family (@unit may be NULL). */
static void
cocoAgentMetricsFamily(GString *out, const char *name, const char *type,
                       const char *unit, const char *help)
{
    g_string_append_printf(out, "# TYPE %s %s\n", name, type);
    if (unit)
        g_string_append_printf(out, "# UNIT %s %s\n", name, unit);
    g_string_append_printf(out, "# HELP %s %s\n", name, help);
}

/* A label value, escaped as OpenMetrics says (the values are enum names,
 * so this never changes them; it keeps the output valid regardless). */
static void
cocoAgentMetricsLabelValue(GString *out, const char *value)
{
    const char *p;

    for (p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            g_string_append_c(out, '\\');
        if (*p == '\n') {
            g_string_append(out, "\\n");
            continue;
        }
        g_string_append_c(out, *p);
    }
}

/* NAME SUFFIX{k1="v1",k2="v2",le="LE"}: @labels a NULL-terminated key,
 * value list (may be NULL), @le a bucket's bound (NULL: none). */
static void
cocoAgentMetricsSeries(GString *out, const char *name, const char *suffix,
                       const char *const *labels, const char *le)
{
    size_t i;
    bool first = true;

    g_string_append(out, name);
    g_string_append(out, suffix);
    if (!(labels && labels[0]) && !le)
        return;
    g_string_append_c(out, '{');
    for (i = 0; labels && labels[i]; i += 2) {
        g_string_append_printf(out, "%s%s=\"", first ? "" : ",", labels[i]);
        cocoAgentMetricsLabelValue(out, labels[i + 1]);
        g_string_append_c(out, '"');
        first = false;
    }
    if (le)
        g_string_append_printf(out, "%sle=\"%s\"", first ? "" : ",", le);
    g_string_append_c(out, '}');
}

static void
cocoAgentMetricsU64(GString *out, const char *name, const char *suffix,
                    const char *const *labels, guint64 value)
{
    cocoAgentMetricsSeries(out, name, suffix, labels, NULL);
    g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", value);
}

static void
cocoAgentMetricsHistogram(GString *out, const char *name,
                          const char *const *labels,
                          const CocoAgentHistogram *h)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    guint64 cum = 0;
    size_t i;

    for (i = 0; i <= COCO_AGENT_METRICS_NBOUNDS; i++) {
        cum += h->buckets[i];
        cocoAgentMetricsSeries(out, name, "_bucket", labels,
                               i < COCO_AGENT_METRICS_NBOUNDS
                                   ? cocoAgentMetricsBoundLabels[i]
                                   : "+Inf");
        g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", cum);
    }
    cocoAgentMetricsU64(out, name, "_count", labels, h->count);
    cocoAgentMetricsSeries(out, name, "_sum", labels, NULL);
    g_string_append_printf(out, " %s\n",
                           g_ascii_dtostr(buf, sizeof(buf), h->sum));
}

static gint
cocoAgentMetricsCompare(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The counters of @table (keys "v1 v2 ...") as @name_total with the label
 * names @keys, sorted; under the lock. */
static void
cocoAgentMetricsTable(GString *out, const char *name, GHashTable *table,
                      const char *const *keys, size_t nkeys)
{
    g_autofree gpointer *list = NULL;
    guint n = 0;
    guint i;

    list = g_hash_table_get_keys_as_array(table, &n);
    qsort(list, n, sizeof(gpointer), cocoAgentMetricsCompare);
    for (i = 0; i < n; i++) {
        g_auto(GStrv) values = g_strsplit(list[i], " ", (gint)nkeys);
        const char *labels[8] = {NULL};
        size_t k;

        for (k = 0; k < nkeys && k < 3 && values[k]; k++) {
            labels[2 * k] = keys[k];
            labels[2 * k + 1] = values[k];
        }
        cocoAgentMetricsU64(out, name, "_total", labels,
                            *(guint64 *)g_hash_table_lookup(table, list[i]));
    }
}

char *
cocoAgentMetricsFormat(CocoAgentMetrics *mx,
                       const CocoAgentMetricsGauges *gauges)
{
    static const char *const migKeys[] = {"role", "outcome", "cause"};
    static const char *const peerKeys[] = {"side", "reason"};
    GString *out = g_string_sized_new(4096);
    const char *version[] = {"version", PACKAGE_VERSION, NULL};
    size_t r;
    size_t p;

    cocoAgentMetricsFamily(out, "virtcocod_build", "info", NULL,
                           "the agent's version");
    cocoAgentMetricsU64(out, "virtcocod_build", "_info", version, 1);

    cocoAgentMetricsFamily(out, "virtcocod_migrations_in_flight", "gauge", NULL,
                           "migrations whose session is not final, by role");
    for (r = 0; r < COCO_FIRMWARE_ROLE_LAST; r++) {
        const char *labels[] = {"role", cocoFirmwareRoleTypeToString(r), NULL};

        cocoAgentMetricsU64(out, "virtcocod_migrations_in_flight", "", labels,
                            gauges ? gauges->in_flight[r] : 0);
    }
    cocoAgentMetricsFamily(out, "virtcocod_relay_connections", "gauge", NULL,
                           "open relay and local client connections");
    cocoAgentMetricsU64(out, "virtcocod_relay_connections", "", NULL,
                        gauges ? gauges->relay_connections : 0);
    cocoAgentMetricsFamily(
        out, "virtcocod_peer_connections_unauthenticated", "gauge", NULL,
        "peer agent connections that have not authenticated yet");
    cocoAgentMetricsU64(out, "virtcocod_peer_connections_unauthenticated", "",
                        NULL, gauges ? gauges->peer_unauthenticated : 0);
    cocoAgentMetricsFamily(out, "virtcocod_records", "gauge", NULL,
                           "migration records kept");
    cocoAgentMetricsU64(out, "virtcocod_records", "", NULL,
                        gauges ? gauges->records : 0);

    g_mutex_lock(&mx->lock);
    cocoAgentMetricsFamily(
        out, "virtcocod_migrations", "counter", NULL,
        "migrations that reached a final state since the agent started, by role, outcome (the final state) and cause (the failure's error code, or none)");
    cocoAgentMetricsTable(out, "virtcocod_migrations", mx->migrations, migKeys,
                          G_N_ELEMENTS(migKeys));
    cocoAgentMetricsFamily(
        out, "virtcocod_sealed_bytes", "counter", "bytes",
        "sealed guest memory sent (source) or received (destination), by role");
    for (r = 0; r < COCO_FIRMWARE_ROLE_LAST; r++) {
        const char *labels[] = {"role", cocoFirmwareRoleTypeToString(r), NULL};

        cocoAgentMetricsU64(out, "virtcocod_sealed_bytes", "_total", labels,
                            mx->sealed_bytes[r]);
    }
    cocoAgentMetricsFamily(
        out, "virtcocod_sealed_pages", "counter", NULL,
        "guest pages sealed (source) or imported (destination), by role");
    for (r = 0; r < COCO_FIRMWARE_ROLE_LAST; r++) {
        const char *labels[] = {"role", cocoFirmwareRoleTypeToString(r), NULL};

        cocoAgentMetricsU64(out, "virtcocod_sealed_pages", "_total", labels,
                            mx->sealed_pages[r]);
    }
    cocoAgentMetricsFamily(
        out, "virtcocod_migration_downtime_seconds", "histogram", "seconds",
        "the source's downtime of each migration: from the blackout to the destination's go");
    cocoAgentMetricsHistogram(out, "virtcocod_migration_downtime_seconds", NULL,
                              &mx->downtime);
    cocoAgentMetricsFamily(
        out, "virtcocod_phase_duration_seconds", "histogram", "seconds",
        "time a migration spent in a phase state before it left it, by role and phase");
    for (r = 0; r < COCO_FIRMWARE_ROLE_LAST; r++) {
        for (p = 0; p < COCO_PHASE_STATE_LAST; p++) {
            const char *labels[] = {"role", cocoFirmwareRoleTypeToString(r),
                                    "phase", cocoPhaseStateTypeToString(p),
                                    NULL};

            if (mx->phases[r][p].count == 0)
                continue;
            cocoAgentMetricsHistogram(out, "virtcocod_phase_duration_seconds",
                                      labels, &mx->phases[r][p]);
        }
    }
    cocoAgentMetricsFamily(
        out, "virtcocod_peer_connection_errors", "counter", NULL,
        "peer agent connections refused (incoming) or that failed (outgoing), by reason (an error code, limit, tls, io or other)");
    cocoAgentMetricsTable(out, "virtcocod_peer_connection_errors",
                          mx->peer_errors, peerKeys, G_N_ELEMENTS(peerKeys));
    g_mutex_unlock(&mx->lock);
    g_string_append(out, "# EOF\n");
    return g_string_free(out, FALSE);
}

/* ---- the endpoint's address ------------------------------------------------ */

GInetSocketAddress *
cocoAgentMetricsListenParse(const char *text, GError **error)
{
    g_autofree char *host = NULL;
    g_autoptr(GInetAddress) addr = NULL;
    const char *port = NULL;
    uint64_t num = 0;

    if (text && text[0] == '[') {
        const char *end = strchr(text, ']');

        if (end && end[1] == ':') {
            host = g_strndup(text + 1, end - text - 1);
            port = end + 2;
        }
    } else if (text) {
        const char *colon = strchr(text, ':');

        /* A bare IPv6 address must be in brackets: one colon only. */
        if (colon && !strchr(colon + 1, ':')) {
            host = g_strndup(text, colon - text);
            port = colon + 1;
        }
    }
    if (!host || !*host || !(addr = g_inet_address_new_from_string(host)) ||
        cocoStrToU64(port, 10, &num) < 0 || num > 65535) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the metrics address '%1$s' must be ADDRESS:PORT with a numeric IPv4 address or an IPv6 address in brackets, and a port from 0 to 65535"),
            NULLSTR(text));
        return NULL;
    }
    return G_INET_SOCKET_ADDRESS(g_inet_socket_address_new(addr, (guint16)num));
}
