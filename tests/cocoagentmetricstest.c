/*
 * cocoagentmetricstest.c: the agent's metrics (cocoagentmetrics.h): what
 * a migration's end, its phases and refused peers count, as OpenMetrics
 * text that python3-prometheus-client's parser reads back; the counters
 * under concurrent updates; the endpoint's address and configuration keys
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentconfig.h"
#include "agent/cocoagentmetrics.h"
#include "util/cocoerror.h"

#include <unistd.h>

/* The samples of @text as tests/check-openmetrics.py prints them after
 * the real parser read them; NULL (and the test skipped) without it. */
static char *
parseOpenMetrics(const char *text)
{
    g_autoptr(GError) err = NULL;
    const char *python = g_getenv("COCO_OPENMETRICS_PYTHON");
    g_autofree char *script =
        g_build_filename(g_getenv("abs_srcdir") ? g_getenv("abs_srcdir") : ".",
                         "check-openmetrics.py", NULL);
    g_autofree char *tmp = NULL;
    g_autofree char *out = NULL;
    g_autofree char *errout = NULL;
    const char *argv[] = {python, script, NULL, NULL};
    int fd;
    int status = 0;

    if (!python || !*python) {
        g_test_skip("no python3 with prometheus_client "
                    "(python3-prometheus-client)");
        return NULL;
    }
    fd = g_file_open_tmp("cocometrics-XXXXXX.txt", &tmp, &err);
    g_assert_no_error(err);
    close(fd);
    g_assert_true(g_file_set_contents(tmp, text, -1, NULL));
    argv[2] = tmp;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL,
                               NULL, &out, &errout, &status, &err));
    g_assert_no_error(err);
    unlink(tmp);
    if (!g_spawn_check_wait_status(status, NULL))
        g_error("the parser refused the text: %s\n%s", errout, text);
    return g_steal_pointer(&out);
}

static void
assertLine(const char *samples, const char *line)
{
    g_autofree char *needle = g_strdup_printf("\n%s\n", line);
    g_autofree char *hay = g_strdup_printf("\n%s", samples);

    if (!strstr(hay, needle))
        g_error("no line '%s' in:\n%s", line, samples);
}

/* A fake migration on each side, a failed one, refused peers: every
 * counter as the parser reads it back. */
static void
testFormat(void)
{
    g_autoptr(CocoAgentMetrics) mx = cocoAgentMetricsNew();
    g_autoptr(GError) timeout = NULL;
    g_autoptr(GError) tls = NULL;
    CocoAgentMetricsGauges g = {{2, 1}, 3, 4, 5};
    g_autofree char *text = NULL;
    g_autofree char *samples = NULL;

    /* source: 2 ms preparing, 40 ms precopy, 80 ms downtime, committed */
    cocoAgentMetricsPhaseEnded(mx, COCO_FIRMWARE_ROLE_SOURCE,
                               COCO_PHASE_STATE_PREPARING, 2000);
    cocoAgentMetricsPhaseEnded(mx, COCO_FIRMWARE_ROLE_SOURCE,
                               COCO_PHASE_STATE_PRECOPY, 40000);
    cocoAgentMetricsSealed(mx, COCO_FIRMWARE_ROLE_SOURCE, 1000000, 256);
    cocoAgentMetricsSealed(mx, COCO_FIRMWARE_ROLE_SOURCE, 59184, 0);
    cocoAgentMetricsMigrationEnded(mx, COCO_FIRMWARE_ROLE_SOURCE,
                                   COCO_PHASE_STATE_COMMITTED,
                                   cocoAgentMetricsCause(NULL), 80000);
    /* destination */
    cocoAgentMetricsPhaseEnded(mx, COCO_FIRMWARE_ROLE_DESTINATION,
                               COCO_PHASE_STATE_PRECOPY, 3000000);
    cocoAgentMetricsSealed(mx, COCO_FIRMWARE_ROLE_DESTINATION, 1059184, 0);
    cocoAgentMetricsMigrationEnded(mx, COCO_FIRMWARE_ROLE_DESTINATION,
                                   COCO_PHASE_STATE_COMMITTED, "none", 0);
    /* a source that timed out and aborted: no downtime */
    cocoErrorSet(&timeout, COCO_ERROR_PEER_TIMEOUT, "%s", "late");
    cocoAgentMetricsMigrationEnded(mx, COCO_FIRMWARE_ROLE_SOURCE,
                                   COCO_PHASE_STATE_ABORTED,
                                   cocoAgentMetricsCause(timeout), 0);
    /* peers */
    g_set_error_literal(&tls, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE, "x");
    cocoAgentMetricsPeerError(mx, COCO_AGENT_METRICS_PEER_INCOMING, "limit");
    cocoAgentMetricsPeerError(mx, COCO_AGENT_METRICS_PEER_INCOMING, "limit");
    cocoAgentMetricsPeerError(mx, COCO_AGENT_METRICS_PEER_INCOMING,
                              cocoAgentMetricsCause(tls));
    cocoAgentMetricsPeerError(mx, COCO_AGENT_METRICS_PEER_OUTGOING,
                              cocoAgentMetricsCause(timeout));

    text = cocoAgentMetricsFormat(mx, &g);
    g_assert_true(g_str_has_suffix(text, "\n# EOF\n"));
    if (!(samples = parseOpenMetrics(text)))
        return;
    assertLine(samples, "# virtcocod_migrations counter -");
    assertLine(samples, "# virtcocod_sealed_bytes counter bytes");
    assertLine(samples,
               "# virtcocod_migration_downtime_seconds histogram seconds");
    assertLine(samples, "# virtcocod_phase_duration_seconds histogram seconds");
    assertLine(samples,
               "virtcocod_build_info{version=\"" PACKAGE_VERSION "\"} 1");
    assertLine(samples, "virtcocod_migrations_total{cause=\"none\","
                        "outcome=\"committed\",role=\"source\"} 1");
    assertLine(samples, "virtcocod_migrations_total{cause=\"none\","
                        "outcome=\"committed\",role=\"destination\"} 1");
    assertLine(samples, "virtcocod_migrations_total{cause=\"peer-timeout\","
                        "outcome=\"aborted\",role=\"source\"} 1");
    assertLine(samples, "virtcocod_migrations_in_flight{role=\"source\"} 2");
    assertLine(samples,
               "virtcocod_migrations_in_flight{role=\"destination\"} 1");
    assertLine(samples, "virtcocod_relay_connections{} 3");
    assertLine(samples, "virtcocod_peer_connections_unauthenticated{} 4");
    assertLine(samples, "virtcocod_records{} 5");
    assertLine(samples,
               "virtcocod_sealed_bytes_total{role=\"source\"} 1059184");
    assertLine(samples,
               "virtcocod_sealed_bytes_total{role=\"destination\"} 1059184");
    assertLine(samples, "virtcocod_sealed_pages_total{role=\"source\"} 256");
    /* downtime: 80 ms is above 0.05 and within 0.1 */
    assertLine(samples,
               "virtcocod_migration_downtime_seconds_bucket{le=\"0.05\"} 0");
    assertLine(samples,
               "virtcocod_migration_downtime_seconds_bucket{le=\"0.1\"} 1");
    assertLine(samples,
               "virtcocod_migration_downtime_seconds_bucket{le=\"+Inf\"} 1");
    assertLine(samples, "virtcocod_migration_downtime_seconds_count{} 1");
    assertLine(samples, "virtcocod_migration_downtime_seconds_sum{} 0.08");
    /* phases, cumulative buckets */
    assertLine(samples, "virtcocod_phase_duration_seconds_bucket{le=\"0.025\","
                        "phase=\"precopy\",role=\"source\"} 0");
    assertLine(samples, "virtcocod_phase_duration_seconds_bucket{le=\"0.05\","
                        "phase=\"precopy\",role=\"source\"} 1");
    assertLine(samples, "virtcocod_phase_duration_seconds_bucket{le=\"0.0025\","
                        "phase=\"preparing\",role=\"source\"} 1");
    assertLine(samples, "virtcocod_phase_duration_seconds_bucket{le=\"2.5\","
                        "phase=\"precopy\",role=\"destination\"} 0");
    assertLine(samples, "virtcocod_phase_duration_seconds_bucket{le=\"5.0\","
                        "phase=\"precopy\",role=\"destination\"} 1");
    assertLine(samples, "virtcocod_phase_duration_seconds_sum{"
                        "phase=\"precopy\",role=\"destination\"} 3");
    /* a phase nobody left has no series */
    g_assert_null(strstr(samples, "phase=\"blackout\""));
    assertLine(samples, "virtcocod_peer_connection_errors_total{"
                        "reason=\"limit\",side=\"incoming\"} 2");
    assertLine(samples, "virtcocod_peer_connection_errors_total{"
                        "reason=\"tls\",side=\"incoming\"} 1");
    assertLine(samples, "virtcocod_peer_connection_errors_total{"
                        "reason=\"peer-timeout\",side=\"outgoing\"} 1");
}

/* Nothing counted yet: still valid, and the parser agrees. */
static void
testFormatEmpty(void)
{
    g_autoptr(CocoAgentMetrics) mx = cocoAgentMetricsNew();
    g_autofree char *text = cocoAgentMetricsFormat(mx, NULL);
    g_autofree char *samples = parseOpenMetrics(text);

    if (!samples)
        return;
    assertLine(samples, "virtcocod_migration_downtime_seconds_count{} 0");
    assertLine(samples, "virtcocod_migrations_in_flight{role=\"source\"} 0");
    g_assert_null(strstr(samples, "virtcocod_migrations_total"));
}

#define THREADS 4
#define UPDATES 5000

static gpointer
updateThread(gpointer opaque)
{
    CocoAgentMetrics *mx = opaque;
    unsigned int i;

    for (i = 0; i < UPDATES; i++) {
        cocoAgentMetricsSealed(mx, COCO_FIRMWARE_ROLE_SOURCE, 3, 1);
        cocoAgentMetricsPhaseEnded(mx, COCO_FIRMWARE_ROLE_SOURCE,
                                   COCO_PHASE_STATE_PRECOPY, 1000);
        cocoAgentMetricsMigrationEnded(mx, COCO_FIRMWARE_ROLE_SOURCE,
                                       COCO_PHASE_STATE_COMMITTED, "none",
                                       1000);
        cocoAgentMetricsPeerError(mx, COCO_AGENT_METRICS_PEER_INCOMING,
                                  "limit");
    }
    return NULL;
}

/* Workers update while the main thread formats: nothing is lost. */
static void
testThreads(void)
{
    g_autoptr(CocoAgentMetrics) mx = cocoAgentMetricsNew();
    GThread *threads[THREADS];
    g_autofree char *text = NULL;
    g_autofree char *want = NULL;
    unsigned int i;

    for (i = 0; i < THREADS; i++)
        threads[i] = g_thread_new("update", updateThread, mx);
    for (i = 0; i < 20; i++)
        g_free(cocoAgentMetricsFormat(mx, NULL));
    for (i = 0; i < THREADS; i++)
        g_thread_join(threads[i]);
    text = cocoAgentMetricsFormat(mx, NULL);
    want = g_strdup_printf("virtcocod_sealed_bytes_total{role=\"source\"} %u\n",
                           3 * THREADS * UPDATES);
    g_assert_nonnull(strstr(text, want));
    g_free(want);
    want = g_strdup_printf("virtcocod_migrations_total{role=\"source\","
                           "outcome=\"committed\",cause=\"none\"} %u\n",
                           THREADS * UPDATES);
    g_assert_nonnull(strstr(text, want));
    g_free(want);
    want = g_strdup_printf("virtcocod_phase_duration_seconds_count{"
                           "role=\"source\",phase=\"precopy\"} %u\n",
                           THREADS * UPDATES);
    g_assert_nonnull(strstr(text, want));
    g_free(want);
    want = g_strdup_printf("virtcocod_peer_connection_errors_total{"
                           "side=\"incoming\",reason=\"limit\"} %u\n",
                           THREADS * UPDATES);
    g_assert_nonnull(strstr(text, want));
}

static void
testListenParse(void)
{
    const struct {
        const char *text;
        const char *host; /* NULL: refused */
        unsigned int port;
    } cases[] = {
        {"127.0.0.1:9464", "127.0.0.1", 9464},
        {"[::1]:9464", "::1", 9464},
        {"0.0.0.0:0", "0.0.0.0", 0},
        {"10.0.0.1:65535", "10.0.0.1", 65535},
        {"127.0.0.1:65536", NULL, 0},
        {"127.0.0.1:", NULL, 0},
        {"127.0.0.1", NULL, 0},
        {":9464", NULL, 0},
        {"localhost:9464", NULL, 0},
        {"::1:9464", NULL, 0},
        {"[::1]9464", NULL, 0},
        {"[::1", NULL, 0},
        {"127.0.0.1:-1", NULL, 0},
        {"127.0.0.1:+80", NULL, 0},
        {"127.0.0.1:80x", NULL, 0},
        {"", NULL, 0},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GInetSocketAddress) addr =
            cocoAgentMetricsListenParse(cases[i].text, &err);

        if (!cases[i].host) {
            g_assert_null(addr);
            g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
            g_assert_nonnull(strstr(err->message, "the metrics address"));
            continue;
        }
        g_assert_no_error(err);
        {
            g_autofree char *host = g_inet_address_to_string(
                g_inet_socket_address_get_address(addr));

            g_assert_cmpstr(host, ==, cases[i].host);
            g_assert_cmpuint(g_inet_socket_address_get_port(addr), ==,
                             cases[i].port);
        }
    }
}

/* Load @text as virtcocod.conf over the defaults and validate it; the
 * error's message, or NULL when valid. */
static char *
configTry(const char *text, CocoAgentConfig *cfg)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp("cocometricsconf-XXXXXX", &path, &err);
    int rc;

    g_assert_no_error(err);
    close(fd);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    cocoAgentConfigInit(cfg);
    /* only what the metrics keys need to validate: absolute TLS paths */
    rc = cocoAgentConfigLoad(cfg, path, true, &err);
    unlink(path);
    if (rc == 0)
        rc = cocoAgentConfigValidate(cfg, &err);
    return rc < 0 ? g_strdup(err->message) : NULL;
}

static void
testConfig(void)
{
    const char *base = "[virtcocod]\n";
    const struct {
        const char *keys;
        const char *error; /* NULL: valid */
    } cases[] = {
        {"", NULL},
        {"metrics_listen =\n", NULL},
        {"metrics_listen = 127.0.0.1:9464\n", NULL},
        {"metrics_listen = [::1]:9464\n", NULL},
        {"metrics_listen = 0.0.0.0:9464\n", "is not a loopback address"},
        {"metrics_listen = [::]:9464\n", "is not a loopback address"},
        {"metrics_listen = 192.0.2.7:9464\n", "is not a loopback address"},
        {"metrics_listen = 192.0.2.7:9464\nmetrics_allow_remote = true\n",
         NULL},
        {"metrics_listen = 192.0.2.7:9464\nmetrics_allow_remote = false\n",
         "is not a loopback address"},
        {"metrics_allow_remote = yes\n", "must be 'true' or 'false'"},
        {"metrics_listen = localhost:9464\n", "must be ADDRESS:PORT"},
        {"metrics_port = 9464\n", "unknown key 'metrics_port'"},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *text = g_strconcat(base, cases[i].keys, NULL);
        CocoAgentConfig cfg;
        g_autofree char *msg = configTry(text, &cfg);

        if (!cases[i].error) {
            g_assert_null(msg);
        } else {
            g_assert_nonnull(msg);
            g_assert_nonnull(strstr(msg, cases[i].error));
            /* one line, naming the value */
            g_assert_null(strchr(msg, '\n'));
        }
        cocoAgentConfigClear(&cfg);
    }
    /* off by default */
    {
        CocoAgentConfig cfg;

        cocoAgentConfigInit(&cfg);
        g_assert_null(cfg.metrics_listen);
        g_assert_false(cfg.metrics_allow_remote);
        cocoAgentConfigClear(&cfg);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/agent-metrics/format", testFormat);
    g_test_add_func("/agent-metrics/format-empty", testFormatEmpty);
    g_test_add_func("/agent-metrics/threads", testThreads);
    g_test_add_func("/agent-metrics/listen-parse", testListenParse);
    g_test_add_func("/agent-metrics/config", testConfig);
    return g_test_run();
}
