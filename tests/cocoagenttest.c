/*
 * cocoagenttest.c: two host agents (virtcocod) on loopback, driven
 * through the relay protocol by fake relays, with two emulated firmware
 * sessions over two RAM files
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagent.h"
#include "agent/cocoagentauth.h"
#include "agent/cocoagentconfig.h"
#include "agent/cocoagentmetrics.h"
#include "agent/cocoagentmigration.h"
#include "agent/cocoagentpriv.h"
#include "agent/cocoagenttls.h"
#include "proto/cocoprotorelay.h"
#include "proto/cocoprotopeer.h"
#include "agent/cocoagentrecord.h"
#include "agent/cocoagentpeer.h"
#include "agent/cocoagentpeerslots.h"
#include "firmware/cocoemuplatform.h"
#include "util/cocohex.h"
#include "util/cocoerror.h"
#include "cocotestagent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-glib/json-glib.h>
#include <netinet/in.h>
#include <pwd.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 256
#define RAMSIZE (NPAGES * 4096)
#define GUEST "vm1"
#define UUID "0b6a3a5e-8a39-4f0c-9d2f-6c1b2f6a7e11"
#define WAIT_S 30

static unsigned int precopyRounds;
static const char *statusGroup = COCO_AGENT_DEFAULT_STATUS_GROUP;
/* Every log line of the agents, for the refusals' messages. */
static GMutex logLock;
static GString *logText;
/* The lines of a migration ("migration=ID ..."), and those of them whose
 * journald fields are missing or disagree with the text. */
static guint logMigrationLines;
static guint logFieldErrors;

static const char *
logField(const GLogField *fields, gsize n, const char *key)
{
    gsize i;

    for (i = 0; i < n; i++) {
        if (STREQ(fields[i].key, key) && fields[i].length < 0)
            return fields[i].value;
    }
    return NULL;
}

/* A line of a migration carries MIGRATION_ID, DOMAIN, DOMAIN_UUID, ROLE
 * and PHASE, and its text starts with the same id, domain and role. */
static void
logCheckFields(const GLogField *fields, gsize n)
{
    const char *msg = logField(fields, n, "MESSAGE");
    const char *id = logField(fields, n, "MIGRATION_ID");
    const char *dom = logField(fields, n, "DOMAIN");
    const char *role = logField(fields, n, "ROLE");
    const char *phase = logField(fields, n, "PHASE");
    g_autofree char *head = NULL;

    if (!msg || (!g_str_has_prefix(msg, "migration=") && !id))
        return;
    logMigrationLines++;
    if (id && dom && role && phase && logField(fields, n, "DOMAIN_UUID"))
        head =
            g_strdup_printf("migration=%s domain=%s role=%s ", id, dom, role);
    if (!head || !g_str_has_prefix(msg, head) ||
        cocoPhaseStateTypeFromString(phase) < 0) {
        logFieldErrors++;
        g_test_message("a migration's line without its fields: %s", msg);
    }
}

static GLogWriterOutput
logWriter(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer data)
{
    gsize i;

    for (i = 0; i < n; i++) {
        if (STREQ(fields[i].key, "MESSAGE")) {
            g_mutex_lock(&logLock);
            g_string_append_len(logText, fields[i].value,
                                fields[i].length < 0 ? -1 : fields[i].length);
            g_string_append_c(logText, '\n');
            logCheckFields(fields, n);
            g_mutex_unlock(&logLock);
        }
    }
    if (g_test_verbose() ||
        (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)))
        return g_log_writer_standard_streams(level, fields, n, data);
    return G_LOG_WRITER_HANDLED;
}

/* Wait until the agents logged @needle (since the last logClear()). */
static bool
logWait(const char *needle, unsigned int seconds)
{
    gint64 end = g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC;

    while (g_get_monotonic_time() < end) {
        bool found;

        g_mutex_lock(&logLock);
        found = strstr(logText->str, needle) != NULL;
        g_mutex_unlock(&logLock);
        if (found)
            return true;
        g_usleep(10000);
    }
    g_test_message("not logged: '%s'; the log:\n%s", needle, logText->str);
    return false;
}

static void
logClear(void)
{
    g_mutex_lock(&logLock);
    g_string_truncate(logText, 0);
    g_mutex_unlock(&logLock);
}

/* Which of the test PKI's identities (cocoTestPki()) host A and host B
 * present ("local": 127.0.0.1); each trusts the CA that issued its own. */
static const char *tlsCertA = "local";
static const char *tlsCertB = "local";
static unsigned int reconnectWindow = 3;
/* The limits of the agents: small, fast deadlines. */
#define HOST_LIMITS                                                            \
 "streams=2\npages_per_bundle=16\nvcpus=2\npeer_timeout=10\n"                  \
 "heartbeat_interval=1\npeer_deadline=3\nswitchover_timeout=5\n"               \
 "hold_timeout=1\nhandshake_timeout=5\n"

typedef struct {
    char *dir;
    CocoAgent *agent;
    GMainContext *ctx;
    GMainLoop *loop;
    GThread *thread;
    char *sock;
    char *ram;
    pid_t qemu; /* the fake QEMU: a shell holding the RAM file open */
} Host;

typedef struct {
    char *tmp;
    Host a; /* source */
    Host b; /* destination */
    Host c; /* a third agent, for some tests */
} Lab;

static gpointer
hostThread(gpointer opaque)
{
    Host *h = opaque;

    g_main_context_push_thread_default(h->ctx);
    g_main_loop_run(h->loop);
    g_main_context_pop_thread_default(h->ctx);
    return NULL;
}

static void hostStartAgent(Host *h, const char *name, bool source);

static void
hostInit(Lab *lab, Host *h, const char *name, bool source)
{
    g_autofree char *run = NULL;
    int fd;

    h->dir = g_build_filename(lab->tmp, name, NULL);
    g_assert_cmpint(g_mkdir_with_parents(h->dir, 0700), ==, 0);
    h->sock = g_build_filename(h->dir, "agent.sock", NULL);
    h->ram = g_build_filename(h->dir, "pc.ram", NULL);
    fd = open(h->ram, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, RAMSIZE), ==, 0);
    if (source) {
        g_autofree uint8_t *buf = g_malloc(RAMSIZE);
        size_t i;

        for (i = 0; i < RAMSIZE; i++)
            buf[i] = (uint8_t)(i * 7 + i / 4096 + 1);
        g_assert_cmpint(pwrite(fd, buf, RAMSIZE, 0), ==, RAMSIZE);
    }
    close(fd);
    run = g_build_filename(h->dir, "run", NULL);
    g_assert_cmpint(g_mkdir_with_parents(run, 0700), ==, 0);
    h->qemu = cocoTestQemuStart(GUEST, UUID, h->ram, run);
    hostStartAgent(h, name, source);
}

/* The agent of @h (again, after hostStop(): a restart). */
static void
hostStartAgent(Host *h, const char *name, bool source)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *extra =
        g_strdup_printf(HOST_LIMITS "precopy_rounds=%u\nreconnect_window=%u\n",
                        precopyRounds, reconnectWindow);
    g_autofree char *conf = cocoTestAgentWriteConf(
        h->dir, h->sock, source ? tlsCertA : tlsCertB, extra);
    CocoAgentConfig cfg;

    cocoAgentConfigInit(&cfg);
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, conf, true, &err), ==, 0);
    g_assert_no_error(err);
    g_free(cfg.status_group);
    cfg.status_group = g_strdup(statusGroup);
    cfg.quiet = false; /* the log writer keeps the lines */

    /* A restarted agent gets a new context: the stopped one's go. */
    g_clear_pointer(&h->loop, g_main_loop_unref);
    g_clear_pointer(&h->ctx, g_main_context_unref);
    h->ctx = g_main_context_new();
    h->agent = cocoAgentNew(&cfg, h->ctx, &err);
    g_assert_no_error(err);
    cocoAgentConfigClear(&cfg);
    h->loop = g_main_loop_new(h->ctx, FALSE);
    h->thread = g_thread_new(name, hostThread, h);
}

static void
hostStop(Host *h)
{
    gint64 end;

    if (!h->agent)
        return;
    g_main_loop_quit(h->loop);
    g_thread_join(h->thread);
    g_clear_pointer(&h->agent, cocoAgentFree);
    /* Let sources freed with the agent go, and the callbacks of the
     * asynchronous operations it cancelled run (GIO may complete them
     * from its worker threads a little later): 200 ms at most. */
    end = g_get_monotonic_time() + 200 * G_TIME_SPAN_MILLISECOND;
    while (g_get_monotonic_time() < end) {
        if (!g_main_context_iteration(h->ctx, FALSE))
            g_usleep(2000);
    }
}

static void
hostClear(Host *h)
{
    hostStop(h);
    cocoTestQemuStop(&h->qemu);
    g_clear_pointer(&h->loop, g_main_loop_unref);
    g_clear_pointer(&h->ctx, g_main_context_unref);
    g_free(h->dir);
    g_free(h->sock);
    g_free(h->ram);
}

static void
labInit(Lab *lab)
{
    g_autoptr(GError) err = NULL;

    memset(lab, 0, sizeof(*lab));
    lab->tmp = g_dir_make_tmp("cocoagenttest-XXXXXX", &err);
    g_assert_no_error(err);
    hostInit(lab, &lab->b, "B", false);
    hostInit(lab, &lab->a, "A", true);
    cocoAgentSetPeerPort(lab->a.agent, cocoAgentGetPort(lab->b.agent));
}

static void
labClear(Lab *lab)
{
    g_autofree char *cmd = NULL;

    hostClear(&lab->a);
    hostClear(&lab->b);
    cmd = g_strdup_printf("rm -rf '%s'", lab->tmp);
    g_assert_cmpint(system(cmd), ==, 0);
    g_free(lab->tmp);
}

/* ---- the fake relay ---------------------------------------------------- */

typedef CocoTestRelay Relay;

/* The next line as a JSON object; NULL at the end of the connection. */
static JsonObject *
relayRead(Relay *r)
{
    for (;;) {
        char *nl = memchr(r->in->str, '\n', r->in->len);
        char buf[4096];
        ssize_t n;

        if (nl) {
            g_autoptr(JsonParser) p = json_parser_new();
            g_autofree char *line = g_strndup(r->in->str, nl - r->in->str);

            g_string_erase(r->in, 0, nl - r->in->str + 1);
            g_assert_true(json_parser_load_from_data(p, line, -1, NULL));
            return json_object_ref(
                json_node_get_object(json_parser_get_root(p)));
        }
        n = read(r->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        g_assert_cmpint(n, >=, 0);
        if (n == 0)
            return NULL;
        g_string_append_len(r->in, buf, n);
    }
}

static JsonObject *
relayReadType(Relay *r, const char *type)
{
    for (;;) {
        JsonObject *o = relayRead(r);

        if (!o)
            return NULL;
        if (STREQ(json_object_get_string_member_with_default(o, "type", ""),
                  type))
            return o;
        json_object_unref(o);
    }
}

static void
relayHello(Relay *r, Host *h, pid_t pid, const char *name)
{
    g_autofree char *hello = g_strdup_printf(
        "{\"type\":\"hello\",\"version\":1,\"pid\":%d,\"name\":\"%s\","
        "\"uuid\":\"" UUID "\",\"vcpus\":2,\"ram\":[{\"id\":\"pc.ram\","
        "\"path\":\"%s\",\"size\":%d,\"share\":true}]}",
        (int)pid, name, h->ram, RAMSIZE);

    cocoTestRelayConnect(r, h->sock);
    cocoTestRelaySend(r, hello);
}

static void
relayWelcome(Relay *r, Host *h)
{
    JsonObject *o;

    relayHello(r, h, h->qemu, GUEST);
    o = relayRead(r);
    g_assert_nonnull(o);
    g_assert_cmpstr(json_object_get_string_member(o, "type"), ==, "welcome");
    json_object_unref(o);
}

/* Ask for a verdict; *reason gets the refusal, if any. */
static bool
relayGate(Relay *r, const char *gate, const char *role, int id, char **reason)
{
    g_autofree char *line = g_strdup_printf(
        "{\"type\":\"gate\",\"id\":%d,\"gate\":\"%s\",\"role\":\"%s\"}", id,
        gate, role);
    JsonObject *o;
    bool release;

    cocoTestRelaySend(r, line);
    for (;;) {
        o = relayReadType(r, "verdict");
        g_assert_nonnull(o);
        if (json_object_get_int_member(o, "id") == id)
            break;
        json_object_unref(o);
    }
    release = json_object_get_boolean_member(o, "release");
    if (reason)
        *reason = g_strdup(
            json_object_get_string_member_with_default(o, "reason", NULL));
    json_object_unref(o);
    return release;
}

/* The state of the newest migration record of @h for @role. */
static char *
hostState(Host *h, const char *role, char **failure)
{
    Relay r = {.fd = -1};
    JsonObject *o;
    JsonArray *arr;
    char *state = NULL;
    guint i;

    cocoTestRelayConnect(&r, h->sock);
    cocoTestRelaySend(&r, "{\"type\":\"status\"}");
    o = relayReadType(&r, "status");
    g_assert_nonnull(o);
    arr = json_object_get_array_member(o, "migrations");
    for (i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *rec = json_array_get_object_element(arr, i);

        if (STRNEQ(json_object_get_string_member(rec, "role"), role))
            continue;
        g_free(state);
        state = g_strdup(json_object_get_string_member(rec, "state"));
        if (failure) {
            g_free(*failure);
            *failure = g_strdup(json_object_get_string_member_with_default(
                rec, "failure", NULL));
        }
    }
    json_object_unref(o);
    cocoTestRelayClose(&r);
    return state;
}

/* The newest record of @h for @role. */
static JsonObject *
hostRecord(Host *h, const char *role)
{
    Relay r = {.fd = -1};
    JsonObject *o;
    JsonObject *found = NULL;
    JsonArray *arr;
    guint i;

    cocoTestRelayConnect(&r, h->sock);
    cocoTestRelaySend(&r, "{\"type\":\"status\"}");
    o = relayReadType(&r, "status");
    g_assert_nonnull(o);
    arr = json_object_get_array_member(o, "migrations");
    for (i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *rec = json_array_get_object_element(arr, i);

        if (STREQ(json_object_get_string_member(rec, "role"), role)) {
            g_clear_pointer(&found, json_object_unref);
            found = json_object_ref(rec);
        }
    }
    json_object_unref(o);
    cocoTestRelayClose(&r);
    g_assert_nonnull(found);
    return found;
}

static void
waitState(Host *h, const char *role, const char *want)
{
    gint64 end = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;
    g_autofree char *state = NULL;

    while (g_get_monotonic_time() < end) {
        g_free(state);
        state = hostState(h, role, NULL);
        if (STREQ_NULLABLE(state, want))
            return;
        g_usleep(2000);
    }
    g_test_message("%s: state '%s', expected '%s'", role, NULLSTR(state), want);
    g_assert_not_reached();
}

/* Wait until host @h counts @want switchover downtimes (a peer's
 * switching notice arrives asynchronously). */
static void
waitDowntimes(Host *h, unsigned int want)
{
    gint64 end = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;
    unsigned int n = 0;

    while (g_get_monotonic_time() < end) {
        n = cocoTransferPriorityDowntimes(cocoAgentPriorityOf(h->agent));
        if (n == want)
            return;
        g_usleep(2000);
    }
    g_test_message("%u downtimes, expected %u", n, want);
    g_assert_not_reached();
}

static void
startMigration(Lab *lab, Relay *ra, Relay *rb)
{
    relayWelcome(rb, &lab->b);
    cocoTestRelaySend(
        rb, "{\"type\":\"event\",\"event\":\"migrate-incoming\",\"data\":"
            "{\"role\":\"destination\",\"job\":\"migration\","
            "\"uri\":\"tcp:127.0.0.1:49152\",\"x-ignore-shared\":true}}");
    relayWelcome(ra, &lab->a);
    cocoTestRelaySend(ra, "{\"type\":\"event\",\"event\":\"migrate\",\"data\":"
                          "{\"role\":\"source\",\"job\":\"migration\",\"uri\":"
                          "\"fd:migrate\",\"peer\":\"127.0.0.1:49152\","
                          "\"x-ignore-shared\":true}}");
}

static void
guestWrite(Host *h, off_t off, uint8_t val)
{
    int fd = open(h->ram, O_RDWR | O_CLOEXEC);
    uint8_t buf[100];

    g_assert_cmpint(fd, >=, 0);
    memset(buf, val, sizeof(buf));
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf), off), ==, sizeof(buf));
    close(fd);
}

static void
assertSameRam(Lab *lab)
{
    g_autofree char *a = NULL;
    g_autofree char *b = NULL;
    gsize alen;
    gsize blen;

    g_assert_true(g_file_get_contents(lab->a.ram, &a, &alen, NULL));
    g_assert_true(g_file_get_contents(lab->b.ram, &b, &blen, NULL));
    g_assert_cmpmem(a, alen, b, blen);
}

/* cocoAgentCountActive() of @h, called in the agent's own context. */
typedef struct {
    CocoAgent *agent;
    guint n;
    bool done;
    GMutex lock;
    GCond cond;
} CountActiveCall;

static gboolean
countActiveCb(gpointer opaque)
{
    CountActiveCall *c = opaque;

    g_mutex_lock(&c->lock);
    c->n = cocoAgentCountActive(c->agent);
    c->done = true;
    g_cond_signal(&c->cond);
    g_mutex_unlock(&c->lock);
    return G_SOURCE_REMOVE;
}

static guint
hostCountActive(Host *h)
{
    CountActiveCall c = {.agent = h->agent};

    g_mutex_init(&c.lock);
    g_cond_init(&c.cond);
    g_main_context_invoke(h->ctx, countActiveCb, &c);
    g_mutex_lock(&c.lock);
    while (!c.done)
        g_cond_wait(&c.cond, &c.lock);
    g_mutex_unlock(&c.lock);
    g_mutex_clear(&c.lock);
    g_cond_clear(&c.cond);
    return c.n;
}

/* ---- tests ------------------------------------------------------------- */

static void
testMigrate(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;
    g_autofree char *records = NULL;
    g_autoptr(GDir) dir = NULL;
    const char *ent;
    unsigned int nrec = 0;
    unsigned int i;

    g_mutex_lock(&logLock);
    logMigrationLines = logFieldErrors = 0;
    g_mutex_unlock(&logLock);
    labInit(&lab);
    g_assert_cmpuint(hostCountActive(&lab.a), ==, 0);
    startMigration(&lab, &ra, &rb);
    /* the guest keeps writing while its memory moves */
    guestWrite(&lab.a, 3 * 4096 + 10, 0xA5);
    guestWrite(&lab.a, (NPAGES - 1) * 4096, 0x5A);
    g_assert_true(relayGate(&ra, "pre-switchover", "source", 1, &reason));
    /* the destination's RAM equals the source's once the gate opens */
    assertSameRam(&lab);
    /* Both in their switchover's downtime: A's source, and on B the
     * destination's handover and the source's switching notice (B's own
     * outgoing migrations would wait for both). */
    g_assert_cmpuint(
        cocoTransferPriorityDowntimes(cocoAgentPriorityOf(lab.a.agent)), ==, 1);
    waitDowntimes(&lab.b, 2);
    /* in flight on both hosts: virtcocod's SIGHUP waits for it */
    g_assert_cmpuint(hostCountActive(&lab.a), ==, 1);
    g_assert_cmpuint(hostCountActive(&lab.b), ==, 1);
    g_assert_true(relayGate(&rb, "cont", "destination", 1, &reason));
    waitState(&lab.b, "destination", "committed");
    waitState(&lab.a, "source", "committed");
    /* Confirm: libvirt kills the source QEMU */
    cocoTestQemuStop(&lab.a.qemu);
    waitState(&lab.a, "source", "finished");
    g_assert_cmpuint(hostCountActive(&lab.a), ==, 0);
    g_assert_cmpuint(hostCountActive(&lab.b), ==, 0);
    /* No host holds anything back any more (B once A's notice that its
     * guest left the downtime arrives). */
    g_assert_cmpuint(
        cocoTransferPriorityDowntimes(cocoAgentPriorityOf(lab.a.agent)), ==, 0);
    waitDowntimes(&lab.b, 0);
    /* journald fields on every line of the migration (docs/virtcocod.rst,
     * "Records and logs") */
    g_mutex_lock(&logLock);
    g_assert_cmpuint(logMigrationLines, >=, 16);
    g_assert_cmpuint(logFieldErrors, ==, 0);
    g_mutex_unlock(&logLock);
    /* the metrics the migration updated, on both hosts */
    {
        g_autofree char *ma =
            cocoAgentMetricsFormat(cocoAgentMetricsOf(lab.a.agent), NULL);
        g_autofree char *mb =
            cocoAgentMetricsFormat(cocoAgentMetricsOf(lab.b.agent), NULL);

        g_assert_nonnull(strstr(ma,
                                "virtcocod_migrations_total{role=\"source\","
                                "outcome=\"committed\",cause=\"none\"} 1\n"));
        g_assert_nonnull(
            strstr(mb, "virtcocod_migrations_total{role=\"destination\","
                       "outcome=\"committed\",cause=\"none\"} 1\n"));
        g_assert_nonnull(
            strstr(ma, "virtcocod_migration_downtime_seconds_count 1\n"));
        g_assert_nonnull(strstr(ma, "virtcocod_phase_duration_seconds_count{"
                                    "role=\"source\",phase=\"precopy\"} 1\n"));
        g_assert_null(
            strstr(ma, "virtcocod_sealed_bytes_total{role=\"source\"} 0\n"));
        g_assert_null(strstr(
            mb, "virtcocod_sealed_bytes_total{role=\"destination\"} 0\n"));
    }
    {
        JsonObject *rec = hostRecord(&lab.a, "source");
        JsonObject *xfer = json_object_get_object_member(rec, "transfer");
        JsonObject *cnt = json_object_get_object_member(rec, "counters");

        g_assert_cmpstr(json_object_get_string_member(xfer, "phase"), ==,
                        "done");
        g_assert_cmpint(json_object_get_int_member(xfer, "pages"), >=, NPAGES);
        g_assert_cmpint(json_object_get_int_member(cnt, "downtime_us"), >, 0);
        g_assert_cmpint(json_object_get_int_member(rec, "vcpus"), ==, 2);
        /* 8 events, and one per precopy round the policy ran. */
        g_assert_cmpuint(json_array_get_length(
                             json_object_get_array_member(rec, "timeline")),
                         >=, 8);
        json_object_unref(rec);
    }

    /* The record on disk: the migration's worker writes it after the
     * status shows the state (a temporary file, then a rename), so look
     * until it is there, ignoring the temporary files. */
    records = g_build_filename(lab.a.dir, "migrations", NULL);
    for (i = 0; i < 10 * WAIT_S; i++) {
        unsigned int finished = 0;

        nrec = 0;
        dir = g_dir_open(records, 0, NULL);
        g_assert_nonnull(dir);
        while ((ent = g_dir_read_name(dir))) {
            g_autofree char *path = g_build_filename(records, ent, NULL);
            g_autofree char *text = NULL;

            if (!g_str_has_suffix(ent, ".json"))
                continue;
            nrec++;
            if (g_file_get_contents(path, &text, NULL, NULL) &&
                strstr(text, "\"state\" : \"finished\"") &&
                strstr(text, "source-blackout"))
                finished++;
        }
        g_clear_pointer(&dir, g_dir_close);
        if (nrec == 1 && finished == 1)
            break;
        g_usleep(100000);
    }
    g_assert_cmpuint(nrec, ==, 1);
    g_assert_cmpuint(i, <, 10 * WAIT_S);
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* Removing a migration from the agent never makes the main thread wait
 * for its worker (issue 11: with two guests moving, one switchover waited
 * behind the other migration's teardown, which the main thread joined).
 * The worker here is held in its start, reading libvirt's status file of
 * the domain, which is a FIFO nobody writes yet: a stand-in for a long
 * teardown. Host A's main thread removes the migration and must go on
 * serving; the worker is joined once it ended. */
typedef struct {
    Host *h;
    CocoAgentMigration *m;
    gint started;
    gint removed;
    guint registered; /* after the removal, on the main thread */
    guint retiring;
    gint counted;
} RetireTest;

static void
retireWait(gint *flag, const char *what)
{
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    while (!g_atomic_int_get(flag)) {
        if (g_get_monotonic_time() > end)
            g_error("host A's main thread did not %s within 10 s", what);
        g_usleep(1000);
    }
}

static gboolean
retireStart(gpointer opaque)
{
    RetireTest *t = opaque;
    g_autoptr(GError) err = NULL;
    CocoAgentDomainInfo dom = {
        .pid = t->h->qemu,
        .name = (char *)GUEST,
        .uuid = (char *)UUID,
        .ram_path = t->h->ram,
    };

    t->m =
        cocoAgentMigrationNewSource(t->h->agent, &dom, 0, "127.0.0.1:1", &err);
    g_assert_no_error(err);
    g_atomic_int_set(&t->started, 1);
    return G_SOURCE_REMOVE;
}

static gboolean
retireRemove(gpointer opaque)
{
    RetireTest *t = opaque;

    cocoAgentRemoveMigration(t->h->agent, t->m);
    t->registered = cocoAgentMigrationCount(t->h->agent);
    t->retiring = cocoAgentRetiringCount(t->h->agent);
    g_atomic_int_set(&t->removed, 1);
    return G_SOURCE_REMOVE;
}

static gboolean
retireCount(gpointer opaque)
{
    RetireTest *t = opaque;

    t->retiring = cocoAgentRetiringCount(t->h->agent);
    g_atomic_int_set(&t->counted, 1);
    return G_SOURCE_REMOVE;
}

static void
testRetireDoesNotWait(void)
{
    Lab lab;
    RetireTest t = {0};
    g_autofree char *status = NULL;
    gint64 end;
    int fd;

    labInit(&lab);
    t.h = &lab.a;
    status = g_build_filename(lab.a.dir, "run", GUEST ".xml", NULL);
    g_assert_cmpint(mkfifo(status, 0600), ==, 0);
    g_main_context_invoke(lab.a.ctx, retireStart, &t);
    retireWait(&t.started, "start the migration");
    /* The worker blocks in its start (it opened the FIFO, or will). */
    g_main_context_invoke(lab.a.ctx, retireRemove, &t);
    retireWait(&t.removed, "return from removing the migration");
    g_assert_cmpuint(t.registered, ==, 0);
    g_assert_cmpuint(t.retiring, ==, 1);
    /* Release the worker: an empty status file, its start ends, then its
     * session, and the main thread joins it. */
    fd = open(status, O_WRONLY | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    do {
        g_atomic_int_set(&t.counted, 0);
        g_main_context_invoke(lab.a.ctx, retireCount, &t);
        retireWait(&t.counted, "count the retiring migrations");
        if (t.retiring == 0)
            break;
        g_usleep(10000);
    } while (g_get_monotonic_time() < end);
    g_assert_cmpuint(t.retiring, ==, 0);
    cocoAgentMigrationUnref(t.m);
    labClear(&lab);
}

/* SIGHUP ('systemctl reload virtcocod', the packages' upgrade) while a
 * migration is in flight: the built virtcocod, in host A's place, serves
 * the migration until its session is final (committed) and only then
 * exits with 75, the status virtcocod.service restarts. */
static void
testReloadWaitsForMigration(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autoptr(GError) err = NULL;
    g_autofree char *reason = NULL;
    g_autofree char *conf = NULL;
    g_autofree char *text = NULL;
    const char *argv[] = {g_getenv("VIRTCOCOD"), "-f", "-c", NULL, NULL};
    GPid pid;
    int status = 0;
    int i;

    if (!argv[0]) {
        g_test_skip("$VIRTCOCOD (the built agent) is not set");
        return;
    }
    labInit(&lab);
    /* host A's in-process agent goes (once its loop runs: a quit before
     * the run would be lost), the built one takes its place */
    while (!g_main_loop_is_running(lab.a.loop))
        g_usleep(1000);
    hostStop(&lab.a);
    unlink(lab.a.sock);
    /* what hostInit() gives the in-process agents */
    text = g_strdup_printf(HOST_LIMITS "peer_port=%u\nreconnect_window=%u\n",
                           cocoAgentGetPort(lab.b.agent), reconnectWindow);
    conf = cocoTestAgentWriteConf(lab.a.dir, lab.a.sock, tlsCertA, text);
    argv[3] = conf;
    g_assert_true(
        g_spawn_async(NULL, (char **)argv, NULL,
                      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                          (g_test_verbose() ? 0 : G_SPAWN_STDERR_TO_DEV_NULL),
                      NULL, NULL, &pid, &err));
    g_assert_no_error(err);
    /* listening, not just bound */
    for (i = 0; i < 10 * WAIT_S; i++) {
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc;

        g_strlcpy(addr.sun_path, lab.a.sock, sizeof(addr.sun_path));
        rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
        close(fd);
        if (rc == 0)
            break;
        g_usleep(100000);
    }

    startMigration(&lab, &ra, &rb);
    g_assert_true(relayGate(&ra, "pre-switchover", "source", 1, &reason));
    g_assert_cmpint(kill(pid, SIGHUP), ==, 0);
    /* four of its 250 ms looks at the migrations in flight */
    g_usleep(G_USEC_PER_SEC);
    g_assert_cmpint(waitpid(pid, &status, WNOHANG), ==, 0);
    /* the destination commits, the source's session is final (committed):
     * nothing in flight, the agent goes */
    g_assert_true(relayGate(&rb, "cont", "destination", 1, &reason));
    waitState(&lab.b, "destination", "committed");
    for (i = 0; i < 10 * WAIT_S && waitpid(pid, &status, WNOHANG) == 0; i++)
        g_usleep(100000);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 75);
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* Precopy before QEMU's device-state migration: a relay that holds
 * `migrate` gets its verdict after the rounds. */
static void
testMigratePrecopy(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;
    g_autofree char *state = NULL;

    precopyRounds = 2;
    labInit(&lab);
    precopyRounds = 0;
    startMigration(&lab, &ra, &rb);
    g_assert_true(relayGate(&ra, "migrate", "source", 1, &reason));
    state = hostState(&lab.a, "source", NULL);
    g_assert_cmpstr(state, ==, "precopy");
    guestWrite(&lab.a, 7 * 4096, 0x11);
    g_assert_true(relayGate(&ra, "pre-switchover", "source", 2, &reason));
    assertSameRam(&lab);
    g_assert_true(relayGate(&rb, "cont", "destination", 1, &reason));
    waitState(&lab.a, "source", "committed");
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* The relay that asked `migrate` hears how far the private memory is:
 * at once, at each epoch's end and while the rounds run. */
static void
testMigrateProgress(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;
    gint64 lastEpoch = -1;
    gint64 lastBytes = -1;
    guint nprogress = 0;
    bool released = false;

    precopyRounds = 3;
    labInit(&lab);
    precopyRounds = 0;
    startMigration(&lab, &ra, &rb);
    cocoTestRelaySend(&ra, "{\"type\":\"gate\",\"id\":7,\"gate\":\"migrate\","
                           "\"role\":\"source\"}");
    while (!released) {
        g_autoptr(JsonObject) o = relayRead(&ra);
        const char *type;

        g_assert_nonnull(o);
        type = json_object_get_string_member_with_default(o, "type", "");
        if (STREQ(type, "verdict")) {
            g_assert_cmpint(json_object_get_int_member(o, "id"), ==, 7);
            g_assert_true(json_object_get_boolean_member(o, "release"));
            released = true;
            continue;
        }
        g_assert_cmpstr(type, ==, "progress");
        g_assert_cmpint(json_object_get_int_member(o, "id"), ==, 7);
        g_assert_cmpint(json_object_get_int_member(o, "total"), ==, RAMSIZE);
        /* Never backwards. */
        g_assert_cmpint(json_object_get_int_member(o, "epoch"), >=, lastEpoch);
        g_assert_cmpint(json_object_get_int_member(o, "transferred"), >=,
                        lastBytes);
        lastEpoch = json_object_get_int_member(o, "epoch");
        lastBytes = json_object_get_int_member(o, "transferred");
        if (lastEpoch >= 1) {
            g_assert_cmpint(json_object_get_int_member(o, "pages"), >=, NPAGES);
            g_assert_cmpint(json_object_get_int_member(o, "transferred"), >,
                            RAMSIZE);
        }
        nprogress++;
    }
    /* One report when asked, one per epoch end (3 rounds). */
    g_assert_cmpuint(nprogress, >=, 4);
    g_assert_cmpint(lastEpoch, ==, 3);
    g_assert_true(relayGate(&ra, "pre-switchover", "source", 8, &reason));
    assertSameRam(&lab);
    /* The switchover is reported too: everything sent, nothing left. */
    {
        g_autoptr(JsonObject) o = NULL;

        for (;;) {
            g_clear_pointer(&o, json_object_unref);
            o = relayReadType(&ra, "progress");
            g_assert_nonnull(o);
            if (STREQ(json_object_get_string_member(o, "phase"), "done"))
                break;
        }
        g_assert_cmpint(json_object_get_int_member(o, "remaining"), ==, 0);
    }
    g_assert_true(relayGate(&rb, "cont", "destination", 1, &reason));
    waitState(&lab.a, "source", "committed");
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* libvirt cancels while the relay holds `migrate` (the relay's
 * `migrate-cancel`): both sides abort, the gate is refused, the source
 * keeps running. */
static void
testMigrateCancelRequest(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;
    g_autofree char *failure = NULL;
    g_autofree char *state = NULL;
    JsonObject *o;

    precopyRounds = 1000;
    labInit(&lab);
    precopyRounds = 0;
    startMigration(&lab, &ra, &rb);
    cocoTestRelaySend(&ra, "{\"type\":\"gate\",\"id\":3,\"gate\":\"migrate\","
                           "\"role\":\"source\"}");
    cocoTestRelaySend(&ra, "{\"type\":\"event\",\"event\":\"migrate-cancel\","
                           "\"data\":{\"role\":\"source\"}}");
    o = relayReadType(&ra, "verdict");
    g_assert_nonnull(o);
    g_assert_cmpint(json_object_get_int_member(o, "id"), ==, 3);
    g_assert_false(json_object_get_boolean_member(o, "release"));
    g_assert_nonnull(json_object_get_string_member(o, "reason"));
    json_object_unref(o);
    waitState(&lab.a, "source", "aborted");
    waitState(&lab.b, "destination", "aborted");
    state = hostState(&lab.a, "source", &failure);
    g_assert_nonnull(failure);
    {
        JsonObject *rec = hostRecord(&lab.a, "source");

        g_assert_true(json_object_get_boolean_member(rec, "may_run"));
        json_object_unref(rec);
    }
    /* The destination may not run. */
    g_assert_false(relayGate(&rb, "cont", "destination", 1, &reason));
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* Force-complete: libvirt pauses the guest during the precopy (virsh
 * suspend, Nova's force-complete; the relay's run-state event). The
 * source releases `migrate` at the next round boundary, whatever its
 * least number of rounds (1000 here). */
/* A guest paused during the precopy (force-complete) switches over at the
 * next round boundary; with libvirt's bandwidth cap (@capped: 32 KiB/s, the
 * first round of the 1 MiB guest would take about 30 s) the rest of the
 * round moves uncapped, so the switchover still comes at once. */
static void
testMigrateForceComplete(gconstpointer capped)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;
    JsonObject *o;
    gint64 t0;

    precopyRounds = 1000;
    labInit(&lab);
    precopyRounds = 0;
    logClear();
    startMigration(&lab, &ra, &rb);
    cocoTestRelaySend(&ra, capped
                               ? "{\"type\":\"event\",\"event\":\"migrate-"
                                 "parameters\",\"data\":{\"downtime-limit\":50,"
                                 "\"max-bandwidth\":32768}}"
                               : "{\"type\":\"event\",\"event\":\"migrate-"
                                 "parameters\",\"data\":{\"downtime-limit\":50,"
                                 "\"max-bandwidth\":1099511627776}}");
    cocoTestRelaySend(&ra, "{\"type\":\"gate\",\"id\":3,\"gate\":\"migrate\","
                           "\"role\":\"source\"}");
    if (capped) {
        /* The first round under way at the cap. */
        g_assert_true(logWait("precopy epochs=0", WAIT_S));
        g_usleep(500 * 1000);
    }
    t0 = g_get_monotonic_time();
    cocoTestRelaySend(&ra, "{\"type\":\"event\",\"event\":\"run-state\","
                           "\"data\":{\"running\":false}}");
    o = relayReadType(&ra, "verdict");
    g_assert_nonnull(o);
    g_assert_cmpint(json_object_get_int_member(o, "id"), ==, 3);
    g_assert_true(json_object_get_boolean_member(o, "release"));
    json_object_unref(o);
    if (capped) {
        g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
        g_assert_true(
            logWait("guest paused: the rest of the round moves uncapped", 1));
    }
    {
        JsonObject *rec = hostRecord(&lab.a, "source");
        JsonObject *cnt = json_object_get_object_member(rec, "counters");

        g_assert_cmpint(json_object_get_int_member(cnt, "rounds"), <, 1000);
        json_object_unref(rec);
    }
    g_assert_true(relayGate(&ra, "pre-switchover", "source", 4, &reason));
    assertSameRam(&lab);
    g_assert_true(relayGate(&rb, "cont", "destination", 1, &reason));
    waitState(&lab.a, "source", "committed");
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* (3) The destination QEMU dies after the start token: its abort token
 * comes back and the source resumes. */
static void
testAbortToken(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;

    labInit(&lab);
    startMigration(&lab, &ra, &rb);
    g_assert_true(relayGate(&ra, "pre-switchover", "source", 1, &reason));
    cocoTestQemuStop(&lab.b.qemu);
    waitState(&lab.a, "source", "aborted");
    g_assert_true(relayGate(&ra, "cont", "source", 2, &reason));
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* A leak reported while the domain's migration runs its precopy (before
 * the start token): the migration fails with the leak as its reason, both
 * hosts abort, and the source may run on. */
static void
testVfioLeakDuringMigration(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;
    g_autofree char *failure = NULL;
    g_autofree char *state = NULL;
    JsonObject *o;

    precopyRounds = 1000;
    labInit(&lab);
    precopyRounds = 0;
    startMigration(&lab, &ra, &rb);
    cocoTestRelaySend(&ra, "{\"type\":\"gate\",\"id\":3,\"gate\":\"migrate\","
                           "\"role\":\"source\"}");
    cocoTestRelaySend(&ra,
                      "{\"type\":\"event\",\"event\":\"vfio-leak\",\"data\":"
                      "{\"count\":1,\"reason\":\"1 DMA mapping(s) stay pinned: "
                      "[0xfffffffffffff000, 0xffffffffffffffff]\"}}");
    /* The migrate gate may have been released before the leak came: the
     * migration's end is what counts. */
    o = relayReadType(&ra, "verdict");
    g_assert_nonnull(o);
    g_assert_cmpint(json_object_get_int_member(o, "id"), ==, 3);
    json_object_unref(o);
    waitState(&lab.a, "source", "aborted");
    waitState(&lab.b, "destination", "aborted");
    state = hostState(&lab.a, "source", &failure);
    g_assert_nonnull(failure);
    g_assert_nonnull(strstr(failure, "leaked DMA mappings of a VFIO host"));
    g_assert_nonnull(
        strstr(failure, "[0xfffffffffffff000, 0xffffffffffffffff]"));
    {
        JsonObject *rec = hostRecord(&lab.a, "source");

        g_assert_true(json_object_get_boolean_member(rec, "may_run"));
        json_object_unref(rec);
    }
    /* The destination may not run. */
    g_assert_false(relayGate(&rb, "cont", "destination", 1, &reason));
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* The VFIO interposer reported a leak (the relay's "vfio-leak" event, or
 * the "vfio-leak" it repeats with a migration when the event was lost):
 * the domain's migration does not start, with the leak as the reason. */
static void
testVfioLeak(gconstpointer data)
{
    bool event = GPOINTER_TO_INT(data);
    Lab lab;
    Relay ra = {.fd = -1};
    g_autofree char *reason = NULL;
    g_autofree char *failure = NULL;
    g_autofree char *state = NULL;

    labInit(&lab);
    relayWelcome(&ra, &lab.a);
    if (event)
        cocoTestRelaySend(
            &ra, "{\"type\":\"event\",\"event\":\"vfio-leak\",\"data\":"
                 "{\"backend\":\"type1v2\",\"fix\":\"absent\",\"count\":1,"
                 "\"reason\":\"1 DMA mapping(s) stay pinned: "
                 "[0xfffffffffffff000, 0xffffffffffffffff]\"}}");
    cocoTestRelaySend(
        &ra, event ? "{\"type\":\"event\",\"event\":\"migrate\",\"data\":"
                     "{\"role\":\"source\",\"job\":\"migration\","
                     "\"uri\":\"fd:migrate\",\"x-ignore-shared\":true}}"
                   : "{\"type\":\"event\",\"event\":\"migrate\",\"data\":"
                     "{\"role\":\"source\",\"job\":\"migration\","
                     "\"uri\":\"fd:migrate\",\"x-ignore-shared\":true,"
                     "\"vfio-leak\":\"1 DMA mapping(s) stay pinned: "
                     "[0xfffffffffffff000, 0xffffffffffffffff]\"}}");
    g_assert_false(relayGate(&ra, "migrate", "source", 3, &reason));
    g_assert_nonnull(
        strstr(reason, "leaked DMA mappings of a VFIO host device"));
    g_assert_nonnull(
        strstr(reason, "[0xfffffffffffff000, 0xffffffffffffffff]"));
    state = hostState(&lab.a, "source", &failure);
    g_assert_nonnull(failure);
    g_assert_nonnull(strstr(failure, "leaked DMA mappings"));
    cocoTestRelayClose(&ra);
    labClear(&lab);
}

/* The relay's VFIO state (docs/vfio.rst, "The state report") is what a
 * "domain" request answers, typed; a malformed state is refused. */
static void
testVfioState(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay q = {.fd = -1};
    JsonObject *o;
    JsonObject *vfio;
    JsonArray *devices;

    labInit(&lab);
    relayWelcome(&ra, &lab.a);
    cocoTestRelayConnect(&q, lab.a.sock);
    cocoTestRelaySend(&q, "{\"type\":\"domain\",\"uuid\":\"" UUID "\"}");
    o = relayReadType(&q, "domain");
    g_assert_nonnull(o);
    g_assert_false(json_object_has_member(o, "vfio"));
    json_object_unref(o);
    cocoTestRelaySend(&ra,
                      "{\"type\":\"event\",\"event\":\"vfio-state\",\"data\":"
                      "{\"vfio\":{\"devices\":[{\"name\":\"0000:03:00.0\"}],"
                      "\"open\":1,\"spaces\":1,\"mappings\":2,"
                      "\"mapped-bytes\":12288}}}");
    /* Refused: more names than the protocol allows a state. */
    {
        g_autoptr(GString) line = g_string_new(
            "{\"type\":\"event\",\"event\":\"vfio-state\",\"data\":"
            "{\"vfio\":{\"devices\":[");
        int i;

        for (i = 0; i <= COCO_RELAY_VFIO_DEVICES_MAX; i++)
            g_string_append_printf(line, "%s{\"name\":\"d%d\"}", i ? "," : "",
                                   i);
        g_string_append(line, "],\"open\":33,\"spaces\":0,\"mappings\":0,"
                              "\"mapped-bytes\":0}}}");
        cocoTestRelaySend(&ra, line->str);
        o = relayReadType(&ra, "error");
        g_assert_nonnull(o);
        json_object_unref(o);
    }
    cocoTestRelaySend(&q, "{\"type\":\"domain\",\"uuid\":\"" UUID "\"}");
    o = relayReadType(&q, "domain");
    g_assert_nonnull(o);
    vfio = json_object_get_object_member(o, "vfio");
    g_assert_nonnull(vfio);
    devices = json_object_get_array_member(vfio, "devices");
    g_assert_cmpuint(json_array_get_length(devices), ==, 1);
    g_assert_cmpstr(json_object_get_string_member(
                        json_array_get_object_element(devices, 0), "name"),
                    ==, "0000:03:00.0");
    g_assert_cmpint(json_object_get_int_member(vfio, "open"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(vfio, "mapped-bytes"), ==,
                    12288);
    json_object_unref(o);
    /* The device was detached: nothing open, nothing mapped. */
    cocoTestRelaySend(&ra,
                      "{\"type\":\"event\",\"event\":\"vfio-state\",\"data\":"
                      "{\"vfio\":{\"devices\":[],\"open\":0,\"spaces\":0,"
                      "\"mappings\":0,\"mapped-bytes\":0}}}");
    cocoTestRelaySend(&q, "{\"type\":\"domain\",\"uuid\":\"" UUID "\"}");
    o = relayReadType(&q, "domain");
    g_assert_nonnull(o);
    vfio = json_object_get_object_member(o, "vfio");
    g_assert_cmpuint(
        json_array_get_length(json_object_get_array_member(vfio, "devices")),
        ==, 0);
    g_assert_cmpint(json_object_get_int_member(vfio, "open"), ==, 0);
    json_object_unref(o);
    cocoTestRelayClose(&q);
    cocoTestRelayClose(&ra);
    labClear(&lab);
}

/* <coco:hostdev action='detach'> with the device still attached (a client
 * that did not detach it, e.g. plain migrateToURI3): the source's migrate
 * gate refuses, naming the device and what the management layer must do;
 * action='refuse' names its own reason. */
static void
testHostdevStillAttached(gconstpointer data)
{
    const char *action = data;
    Lab lab;
    Relay ra = {.fd = -1};
    g_autofree char *reason = NULL;
    g_autofree char *status = NULL;
    g_autofree char *xml = g_strdup_printf(
        "<domstatus state='running' pid='1'><domain type='qemu'>"
        "<name>" GUEST "</name><vcpu placement='static'>2</vcpu><metadata>"
        "<coco:migration xmlns:coco='https://libvirt-coco.org/xmlns/"
        "migration/1.0' technology='tdx'><coco:agent hash='"
        "000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000'/>"
        "<coco:destinations><coco:minTcb component='module' svn='0'/>"
        "</coco:destinations>"
        "<coco:hostdev action='%s'/>"
        "</coco:migration></metadata><devices>"
        "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
        "<address domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>"
        "</source></hostdev></devices></domain></domstatus>",
        action);

    labInit(&lab);
    status = g_build_filename(lab.a.dir, "run", GUEST ".xml", NULL);
    g_assert_true(g_file_set_contents(status, xml, -1, NULL));
    relayWelcome(&ra, &lab.a);
    cocoTestRelaySend(&ra, "{\"type\":\"event\",\"event\":\"migrate\",\"data\":"
                           "{\"role\":\"source\",\"job\":\"migration\","
                           "\"uri\":\"fd:migrate\",\"x-ignore-shared\":true}}");
    g_assert_false(relayGate(&ra, "migrate", "source", 3, &reason));
    g_assert_nonnull(strstr(reason, "0000:03:00.0"));
    if (g_str_equal(action, "detach"))
        g_assert_nonnull(strstr(
            reason, "the management layer must detach its host devices"));
    else
        g_assert_nonnull(strstr(reason, "action='refuse'"));
    cocoTestRelayClose(&ra);
    labClear(&lab);
}

/* The relay's gate 'hostdev' (a VFIO device hot-plugged behind a wide
 * vIOMMU): refused while this host's fix is unknown (no VFIO under the
 * test's device root), released by the domain's allowUnsafeIommu='yes'. */
static void
testHostdevGate(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    g_autofree char *reason = NULL;
    g_autofree char *status = NULL;

    labInit(&lab);
    g_setenv("LIBVIRT_COCO_AGENT_DEVROOT", lab.tmp, TRUE);
    relayWelcome(&ra, &lab.a);
    g_assert_false(relayGate(&ra, "hostdev", "none", 5, &reason));
    g_assert_nonnull(strstr(reason, "is unknown (this host has no VFIO"));
    g_assert_nonnull(strstr(reason, "allowUnsafeIommu='yes'"));
    status = g_build_filename(lab.a.dir, "run", GUEST ".xml", NULL);
    g_assert_true(g_file_set_contents(
        status,
        "<domstatus state='running' pid='1'><domain type='qemu'>"
        "<name>" GUEST "</name><vcpu placement='static'>2</vcpu><metadata>"
        "<coco:migration xmlns:coco='https://libvirt-coco.org/xmlns/"
        "migration/1.0' technology='tdx'><coco:agent hash='"
        "000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000'/>"
        "<coco:destinations><coco:minTcb component='module' svn='0'/>"
        "</coco:destinations>"
        "<coco:hostdev action='detach' allowUnsafeIommu='yes'/>"
        "</coco:migration></metadata></domain></domstatus>",
        -1, NULL));
    g_clear_pointer(&reason, g_free);
    if (!relayGate(&ra, "hostdev", "none", 6, &reason))
        g_error("the override did not release the gate: %s", reason);
    g_unsetenv("LIBVIRT_COCO_AGENT_DEVROOT");
    cocoTestRelayClose(&ra);
    labClear(&lab);
}

/* The domain's <coco:migration> (from libvirt's status file) allows only
 * another platform: the source's firmware refuses the destination at
 * PREPARE, the switchover is refused and the source resumes. */
static void
testPolicyRefused(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;
    g_autofree char *status = NULL;
    g_autofree char *failure = NULL;
    g_autofree char *state = NULL;

    labInit(&lab);
    status = g_build_filename(lab.a.dir, "run", GUEST ".xml", NULL);
    g_assert_true(g_file_set_contents(
        status,
        "<domstatus state='running' pid='1'><domain type='qemu'>"
        "<name>" GUEST "</name><vcpu placement='static'>2</vcpu><metadata>"
        "<coco:migration xmlns:coco='https://libvirt-coco.org/xmlns/"
        "migration/1.0' technology='tdx'><coco:agent hash='"
        "000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000'/>"
        "<coco:destinations>"
        "<coco:platform id='abababababababababababababababababababababababab"
        "abababababababab' name='elsewhere'/></coco:destinations>"
        "</coco:migration></metadata></domain></domstatus>",
        -1, NULL));
    startMigration(&lab, &ra, &rb);
    g_assert_false(relayGate(&ra, "pre-switchover", "source", 1, &reason));
    g_assert_nonnull(strstr(reason, "not in the VM's list of allowed"));
    g_assert_true(relayGate(&ra, "cont", "source", 2, NULL));
    state = hostState(&lab.a, "source", &failure);
    g_assert_cmpstr(state, ==, "aborted");
    g_assert_nonnull(strstr(failure, "allowed destinations"));
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* (1) Cancelled before the blackout: the source resumes, the destination
 * may not. */
static void
testCancel(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;

    labInit(&lab);
    startMigration(&lab, &ra, &rb);
    cocoTestRelaySend(&ra,
                      "{\"type\":\"event\",\"event\":\"MIGRATION\",\"data\":"
                      "{\"status\":\"cancelled\",\"role\":\"source\"}}");
    waitState(&lab.a, "source", "aborted");
    g_assert_false(relayGate(&ra, "pre-switchover", "source", 1, &reason));
    g_assert_nonnull(reason);
    g_clear_pointer(&reason, g_free);
    g_assert_true(relayGate(&ra, "cont", "source", 2, &reason));
    waitState(&lab.b, "destination", "aborted");
    g_assert_false(relayGate(&rb, "cont", "destination", 1, &reason));
    g_assert_nonnull(strstr(reason, "destroyed"));
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* (4) The destination host's agent is lost after the start token: the
 * source must stay paused and say why. */
static void
testDestinationLost(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;
    g_autofree char *failure = NULL;
    g_autofree char *state = NULL;

    labInit(&lab);
    startMigration(&lab, &ra, &rb);
    /* From the switchover on, the source stays paused whatever QEMU does
     * by itself, until the migration's outcome is known: the pause comes
     * before the verdict. */
    cocoTestRelaySend(&ra,
                      "{\"type\":\"gate\",\"id\":1,\"gate\":\"pre-switchover\","
                      "\"role\":\"source\"}");
    {
        JsonObject *o = relayReadType(&ra, "pause");

        g_assert_nonnull(o);
        g_assert_nonnull(
            strstr(json_object_get_string_member(o, "reason"), "stays paused"));
        json_object_unref(o);
        o = relayReadType(&ra, "verdict");
        g_assert_nonnull(o);
        g_assert_true(json_object_get_boolean_member(o, "release"));
        json_object_unref(o);
    }
    cocoTestRelayClose(&rb);
    hostStop(&lab.b);
    /* It tries to learn the start token's fate, then gives up: frozen,
     * with what the operator can do. */
    waitState(&lab.a, "source", "await-token");
    g_assert_false(relayGate(&ra, "cont", "source", 2, &reason));
    g_assert_nonnull(strstr(reason, "stays paused"));
    g_clear_pointer(&reason, g_free);
    waitState(&lab.a, "source", "frozen");
    g_assert_false(relayGate(&ra, "cont", "source", 3, &reason));
    g_assert_nonnull(strstr(reason, "virt-coco recover"));
    state = hostState(&lab.a, "source", &failure);
    g_assert_cmpstr(state, ==, "frozen");
    g_assert_nonnull(strstr(failure, "did not come back"));
    cocoTestRelayClose(&ra);
    labClear(&lab);
}

static int peerConnectRaw(unsigned int port);

/* A proxy between the agents that forwards every connection except the
 * data streams (a plain hello): it holds those, open and unforwarded, so
 * that the destination's incoming migration waits for its streams. */
typedef struct {
    int lfd;
    unsigned int port;
    unsigned int to;
    GThread *thread;
    GPtrArray *fds; /* every socket, closed at the stop */
    GPtrArray *pumps; /* GThread */
    GMutex lock;
} HoldProxy;

typedef struct {
    int from;
    int to;
} HoldPump;

static gpointer
holdPumpThread(gpointer opaque)
{
    HoldPump *p = opaque;
    char buf[16384];
    ssize_t n;

    while ((n = read(p->from, buf, sizeof(buf))) > 0) {
        if (write(p->to, buf, (size_t)n) != n)
            break;
    }
    shutdown(p->to, SHUT_WR);
    g_free(p);
    return NULL;
}

static void
holdProxyPump(HoldProxy *px, int from, int to)
{
    HoldPump *p = g_new0(HoldPump, 1);

    p->from = from;
    p->to = to;
    g_ptr_array_add(px->pumps, g_thread_new("hold-pump", holdPumpThread, p));
}

static gpointer
holdProxyThread(gpointer opaque)
{
    HoldProxy *px = opaque;
    int c;

    while ((c = accept4(px->lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
        char head[4];
        int s;

        g_mutex_lock(&px->lock);
        g_ptr_array_add(px->fds, GINT_TO_POINTER(c));
        if (recv(c, head, sizeof(head), MSG_PEEK | MSG_WAITALL) == 4 &&
            memcmp(head, COCO_PEER_MAGIC, 4) != 0) {
            s = peerConnectRaw(px->to);
            g_ptr_array_add(px->fds, GINT_TO_POINTER(s));
            holdProxyPump(px, c, s);
            holdProxyPump(px, s, c);
        }
        g_mutex_unlock(&px->lock);
    }
    return NULL;
}

static void
holdProxyStart(HoldProxy *px, unsigned int to)
{
    struct sockaddr_in sin = {0};
    socklen_t len = sizeof(sin);

    memset(px, 0, sizeof(*px));
    g_mutex_init(&px->lock);
    px->to = to;
    px->fds = g_ptr_array_new();
    px->pumps = g_ptr_array_new();
    px->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(px->lfd, >=, 0);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(bind(px->lfd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    g_assert_cmpint(listen(px->lfd, 16), ==, 0);
    g_assert_cmpint(getsockname(px->lfd, (struct sockaddr *)&sin, &len), ==, 0);
    px->port = ntohs(sin.sin_port);
    px->thread = g_thread_new("hold-proxy", holdProxyThread, px);
}

static void
holdProxyStop(HoldProxy *px)
{
    guint i;

    shutdown(px->lfd, SHUT_RDWR);
    g_thread_join(px->thread);
    close(px->lfd);
    for (i = 0; i < px->fds->len; i++)
        shutdown(GPOINTER_TO_INT(g_ptr_array_index(px->fds, i)), SHUT_RDWR);
    for (i = 0; i < px->pumps->len; i++)
        g_thread_join(g_ptr_array_index(px->pumps, i));
    for (i = 0; i < px->fds->len; i++)
        close(GPOINTER_TO_INT(g_ptr_array_index(px->fds, i)));
    g_ptr_array_free(px->pumps, TRUE);
    g_ptr_array_free(px->fds, TRUE);
    g_mutex_clear(&px->lock);
}

/* The destination's incoming migration waits for its data streams, held
 * by a proxy, and then:
 * - its QEMU ends (the lab's first fault): the destination refuses it at
 *   once and tells the source why, well before the source's peer
 *   deadline (3 s);
 * - nothing more (the streams refused by a limit on the way): the
 *   destination refuses it at its streams deadline (handshake_timeout,
 *   5 s here) and tells the source how many arrived, although the
 *   source's own liveness deadline is shorter: the pending session sends
 *   heartbeats meanwhile.
 * The source aborts and may run on. */
typedef struct {
    bool stop_qemu;
    guint max_s; /* from the incoming session to the source's abort */
    const char *failure; /* in the source's record */
    const char *log; /* in the destination's log */
} HeldStreamsCase;

static const HeldStreamsCase heldQemuEnds = {
    true, 3,
    "the peer host aborted the migration: QEMU on the destination ended "
    "before the migration started",
    "refused: QEMU on the destination ended"};
static const HeldStreamsCase heldStreamsMissing = {
    false, 8,
    "the peer host aborted the migration: only '0' of the '2' data streams "
    "of the migration of domain",
    "data streams of the migration of domain"};

static void
testHeldStreams(gconstpointer data)
{
    const HeldStreamsCase *tc = data;
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    HoldProxy px;
    g_autofree char *reason = NULL;
    g_autofree char *failure = NULL;
    g_autofree char *state = NULL;
    gint64 t0;

    labInit(&lab);
    holdProxyStart(&px, cocoAgentGetPort(lab.b.agent));
    cocoAgentSetPeerPort(lab.a.agent, px.port);
    logClear();
    startMigration(&lab, &ra, &rb);
    g_assert_true(logWait("incoming session", WAIT_S));
    t0 = g_get_monotonic_time();
    if (tc->stop_qemu)
        cocoTestQemuStop(&lab.b.qemu);
    waitState(&lab.a, "source", "aborted");
    g_assert_cmpint(g_get_monotonic_time() - t0, <,
                    (gint64)tc->max_s * G_USEC_PER_SEC);
    state = hostState(&lab.a, "source", &failure);
    g_assert_nonnull(failure);
    if (!strstr(failure, tc->failure) || strstr(failure, "stopped answering"))
        g_error("the source's failure: %s", failure);
    g_assert_true(logWait(tc->log, WAIT_S));
    g_assert_true(relayGate(&ra, "cont", "source", 2, &reason));
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    holdProxyStop(&px);
    labClear(&lab);
}

/* Each peer host's set-up slot: a second taker waits for the first and
 * gets it when it is given back; a taker that waits too long is refused
 * naming the host; another host's slot is free meanwhile. */
typedef struct {
    CocoAgentPeerSlots *slots;
    gint64 took_us;
} SlotTaker;

static gpointer
slotTakerThread(gpointer opaque)
{
    SlotTaker *t = opaque;
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(cocoAgentPeerSlotsAcquire(t->slots, "10.0.0.2", 10, &err),
                    ==, 0);
    t->took_us = g_get_monotonic_time();
    cocoAgentPeerSlotsRelease(t->slots, "10.0.0.2");
    return NULL;
}

static void
testPeerSlots(void)
{
    CocoAgentPeerSlots *slots = cocoAgentPeerSlotsNew();
    g_autoptr(GError) err = NULL;
    SlotTaker t = {slots, 0};
    GThread *th;
    gint64 released;

    g_assert_cmpint(cocoAgentPeerSlotsAcquire(slots, "10.0.0.2", 1, &err), ==,
                    0);
    g_assert_cmpint(cocoAgentPeerSlotsAcquire(slots, "10.0.0.3", 1, &err), ==,
                    0);
    g_assert_cmpint(cocoAgentPeerSlotsAcquire(slots, "10.0.0.2", 1, &err), ==,
                    -1);
    g_assert_nonnull(strstr(err->message, "another migration to the peer "
                                          "host '10.0.0.2' was still setting "
                                          "up its connections after '1' "
                                          "seconds"));
    th = g_thread_new("slot-taker", slotTakerThread, &t);
    g_usleep(200 * 1000);
    g_assert_cmpint(t.took_us, ==, 0);
    released = g_get_monotonic_time();
    cocoAgentPeerSlotsRelease(slots, "10.0.0.2");
    g_thread_join(th);
    g_assert_cmpint(t.took_us, >=, released);
    cocoAgentPeerSlotsRelease(slots, "10.0.0.3");
    cocoAgentPeerSlotsFree(slots);
}

static void
assertRefused(Host *h, pid_t pid, const char *name, const char *what)
{
    Relay r = {.fd = -1};
    JsonObject *o;

    relayHello(&r, h, pid, name);
    o = relayRead(&r);
    g_assert_nonnull(o);
    g_assert_cmpstr(json_object_get_string_member(o, "type"), ==, "refused");
    g_assert_nonnull(strstr(json_object_get_string_member(o, "reason"), what));
    json_object_unref(o);
    g_assert_null(relayRead(&r));
    cocoTestRelayClose(&r);
}

/* A relay must not speak for a QEMU it is not. */
static void
testAuthRefused(void)
{
    Lab lab;
    pid_t other;
    g_autofree char *other_ram = NULL;

    labInit(&lab);
    /* the test process itself is no QEMU */
    assertRefused(&lab.a, getpid(), GUEST, "not a configured QEMU binary");
    /* a QEMU-looking process that libvirt did not record for the domain */
    other_ram = g_build_filename(lab.tmp, "other.ram", NULL);
    g_assert_true(g_file_set_contents(other_ram, "", 0, NULL));
    other = cocoTestQemuStart(GUEST, UUID, other_ram, NULL);
    assertRefused(&lab.a, other, GUEST, "PID file");
    /* the right pid, but another domain's name */
    assertRefused(&lab.a, lab.a.qemu, "vm2", "does not name domain");
    /* no such process */
    assertRefused(&lab.a, 0x3ffffff0, GUEST, "not a process of its user");
    cocoTestQemuStop(&other);
    labClear(&lab);
}

/* Garbage on the peer port and on the relay socket changes nothing: a
 * migration afterwards still works. */
static void
testGarbage(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    Relay junk = {.fd = -1};
    struct sockaddr_in sin = {0};
    static const char bad[] = "CAG1\xff\xff\xff\xff{not json";
    g_autofree char *reason = NULL;
    int fd;

    labInit(&lab);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)cocoAgentGetPort(lab.b.agent));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    g_assert_cmpint(write(fd, bad, sizeof(bad) - 1), ==, sizeof(bad) - 1);
    {
        char c;

        /* the agent closes the connection */
        g_assert_cmpint(read(fd, &c, 1), <=, 0);
    }
    close(fd);
    cocoTestRelayConnect(&junk, lab.b.sock);
    cocoTestRelaySend(&junk, "{\"type\":");
    cocoTestRelaySend(&junk, "[1,2,3]");
    cocoTestRelaySend(&junk, "{\"type\":\"gate\",\"id\":5,\"gate\":\"cont\"}");
    {
        JsonObject *o = relayReadType(&junk, "verdict");

        g_assert_nonnull(o);
        g_assert_false(json_object_get_boolean_member(o, "release"));
        json_object_unref(o);
    }
    cocoTestRelayClose(&junk);

    startMigration(&lab, &ra, &rb);
    g_assert_true(relayGate(&ra, "pre-switchover", "source", 1, &reason));
    assertSameRam(&lab);
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* The platform id of host @h, from its platform file. */
static char *
hostPlatformId(Host *h)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *path = g_build_filename(h->dir, "platform.conf", NULL);
    g_autoptr(CocoEmuPlatform) pf = cocoEmuPlatformLoad(path, false, &err);

    g_assert_no_error(err);
    return cocoHexEncode(cocoEmuPlatformGetId(pf), COCO_PLATFORM_ID_LEN);
}

static void
checkProbe(JsonObject *o, Host *h, unsigned int port, unsigned int peer_port)
{
    g_autofree char *id = hostPlatformId(h);
    JsonObject *pf;
    JsonObject *tcb;

    g_assert_nonnull(o);
    g_assert_cmpstr(json_object_get_string_member(o, "type"), ==, "probe");
    g_assert_cmpstr(json_object_get_string_member(o, "version"), ==,
                    PACKAGE_VERSION);
    g_assert_cmpstr(json_object_get_string_member(o, "firmware"), ==,
                    "emulated");
    g_assert_cmpint(json_object_get_int_member(o, "port"), ==, port);
    g_assert_cmpint(json_object_get_int_member(o, "peer_port"), ==, peer_port);
    pf = json_object_get_object_member(o, "platform");
    g_assert_nonnull(pf);
    g_assert_cmpstr(json_object_get_string_member(pf, "id"), ==, id);
    g_assert_nonnull(json_object_get_string_member(pf, "name"));
    tcb = json_object_get_object_member(pf, "tcb");
    g_assert_nonnull(tcb);
    g_assert_cmpint(json_object_get_int_member(tcb, "module"), ==, 0);
    g_assert_true(json_object_has_member(tcb, "agent"));
}

/* "probe" on the local socket (anyone may ask) and as a peer hello. */
static void
testProbe(void)
{
    Lab lab;
    Relay r = {.fd = -1};
    JsonObject *o;
    unsigned int aport;
    unsigned int bport;
    int fd;
    struct sockaddr_in sin = {0};
    socklen_t slen = sizeof(sin);

    labInit(&lab);
    aport = cocoAgentGetPort(lab.a.agent);
    bport = cocoAgentGetPort(lab.b.agent);

    cocoTestRelayConnect(&r, lab.a.sock);
    cocoTestRelaySend(&r, "{\"type\":\"probe\"}");
    o = relayReadType(&r, "probe");
    checkProbe(o, &lab.a, aport, bport);
    json_object_unref(o);
    /* The connection stays usable. */
    cocoTestRelaySend(&r, "{\"type\":\"probe\"}");
    o = relayReadType(&r, "probe");
    g_assert_nonnull(o);
    json_object_unref(o);
    cocoTestRelayClose(&r);

    /* The peer's probe, through the local agent (mutual TLS). */
    cocoTestRelayConnect(&r, lab.a.sock);
    cocoTestRelaySend(&r, "{\"type\":\"peer-probe\",\"host\":\"127.0.0.1\"}");
    o = relayReadType(&r, "peer-probe");
    g_assert_nonnull(o);
    checkProbe(json_object_get_object_member(o, "probe"), &lab.b, bport, bport);
    g_assert_true(json_object_get_boolean_member(
        json_object_get_object_member(o, "probe"), "tls"));
    json_object_unref(o);
    /* A probe leaves no trace: a second one works too. */
    cocoTestRelaySend(&r, "{\"type\":\"peer-probe\",\"host\":\"127.0.0.1\"}");
    o = relayReadType(&r, "peer-probe");
    g_assert_nonnull(o);
    json_object_unref(o);
    cocoTestRelayClose(&r);

    /* Nothing listens on a port we just closed: a clear error. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sin, &slen), ==, 0);
    close(fd);
    cocoAgentSetPeerPort(lab.a.agent, ntohs(sin.sin_port));
    cocoTestRelayConnect(&r, lab.a.sock);
    cocoTestRelaySend(&r, "{\"type\":\"peer-probe\",\"host\":\"127.0.0.1\"}");
    o = relayReadType(&r, "error");
    g_assert_nonnull(o);
    g_assert_nonnull(strstr(json_object_get_string_member(o, "reason"),
                            "cannot connect to the peer agent"));
    json_object_unref(o);
    cocoTestRelayClose(&r);
    labClear(&lab);
}

static void
testConfig(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *tmp = g_dir_make_tmp("cocoagentconf-XXXXXX", &err);
    g_autofree char *path = g_build_filename(tmp, "virtcocod.conf", NULL);
    CocoAgentConfig cfg;

    cocoAgentConfigInit(&cfg);
    g_assert_cmpstr(cfg.socket_path, ==, COCO_AGENT_DEFAULT_SOCKET);
    g_assert_cmpuint(cfg.port, ==, COCO_AGENT_DEFAULT_PORT);
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, false, &err), ==, 0);
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, true, &err), ==, -1);
    g_clear_error(&err);
    g_assert_true(g_file_set_contents(
        path,
        "[virtcocod]\nsocket=/run/x/agent.sock\nport=49301\nstreams=8\n"
        "state_dir=/var/lib/x\nqemu_binaries=/usr/bin/qemu-a;/usr/bin/qemu-b;\n"
        "records_max_age=12h\nreconnect_window=90\n"
        "max_unauthenticated_per_address=9\n",
        -1, NULL));
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, true, &err), ==, 0);
    g_assert_cmpstr(cfg.socket_path, ==, "/run/x/agent.sock");
    g_assert_cmpuint(cfg.port, ==, 49301);
    g_assert_cmpuint(cfg.streams, ==, 8);
    g_assert_cmpuint(cfg.records_max_age, ==, 12 * 3600);
    g_assert_cmpuint(cfg.reconnect_window, ==, 90);
    g_assert_cmpstr(cfg.qemu_binaries[1], ==, "/usr/bin/qemu-b");
    g_assert_cmpint(cocoAgentConfigValidate(&cfg, &err), ==, 0);
    /* 8 streams need more than 8 unauthenticated connections per address. */
    cfg.max_unauthenticated_per_address = 8;
    g_assert_cmpint(cocoAgentConfigValidate(&cfg, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "'max_unauthenticated_per_address' "
                                          "('8') must be larger than "
                                          "'streams' ('8')"));
    g_clear_error(&err);
    cfg.max_unauthenticated_per_address = 9;
    g_assert_cmpstr(cfg.status_group, ==, COCO_AGENT_DEFAULT_STATUS_GROUP);
    g_assert_true(g_file_set_contents(
        path, "[virtcocod]\nstatus_group = kvm \n", -1, NULL));
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, true, &err), ==, 0);
    g_assert_cmpstr(cfg.status_group, ==, "kvm");
    /* empty: root only */
    g_assert_true(
        g_file_set_contents(path, "[virtcocod]\nstatus_group=\n", -1, NULL));
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, true, &err), ==, 0);
    g_assert_null(cfg.status_group);
    /* A local user may no longer stand in for a domain. */
    g_assert_true(g_file_set_contents(
        path, "[virtcocod]\nrequire_pidfile=false\n", -1, NULL));
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, true, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "no longer supported"));
    g_clear_error(&err);
    g_assert_true(g_file_set_contents(
        path, "[virtcocod]\nrecords_max_age=soon\n", -1, NULL));
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, true, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "duration"));
    g_clear_error(&err);
    g_assert_true(
        g_file_set_contents(path, "[virtcocod]\nport=70000\n", -1, NULL));
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, true, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "'port'"));
    g_clear_error(&err);
    g_free(cfg.firmware);
    cfg.firmware = g_strdup("kvm");
    g_assert_cmpint(cocoAgentConfigValidate(&cfg, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_NOT_SUPPORTED);
    cocoAgentConfigClear(&cfg);
    unlink(path);
    rmdir(tmp);
}

static char *
groupName(gid_t gid)
{
    struct group *gr = getgrgid(gid);

    return gr ? g_strdup(gr->gr_name) : NULL;
}

/* Who may read the status: root, the agent's user, 'status_group'. */
static void
testStatusGroup(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *mine = groupName(getgid());
    struct passwd *nobody = getpwnam("nobody");
    const char *missing = "coco-no-such-group-4711";
    uid_t other = getuid() == 4711 ? 4712 : 4711;
    bool gone = true;

    g_assert_nonnull(mine);
    /* The caller's own primary group, by its gid and by the user
     * database (the gid passed is then another one). */
    g_assert_cmpint(cocoAgentAuthGroupMember(getuid(), getgid(), mine, &err),
                    ==, 1);
    g_assert_cmpint(
        cocoAgentAuthGroupMember(getuid(), getgid() + 1, mine, &err), ==, 1);
    g_assert_cmpint(cocoAgentAuthGroupMember(getuid(), getgid(), missing, &err),
                    ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_assert_nonnull(strstr(err->message, missing));
    g_clear_error(&err);

    /* root and the agent's own user, whatever the group */
    g_assert_cmpint(cocoAgentAuthCheckStatus(0, 0, 4710, NULL, &gone, &err), ==,
                    0);
    g_assert_false(gone);
    g_assert_cmpint(
        cocoAgentAuthCheckStatus(4710, 4710, 4710, missing, &gone, &err), ==,
        0);
    /* a uid the user database does not know, in the group by its gid */
    g_assert_cmpint(
        cocoAgentAuthCheckStatus(other, getgid(), 0, mine, &gone, &err), ==, 0);
    g_assert_false(gone);
    /* ... and with another gid: not a member */
    g_assert_cmpint(
        cocoAgentAuthCheckStatus(other, getgid() + 1, 0, mine, &gone, &err), ==,
        -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_ACCESS_DENIED);
    g_assert_nonnull(strstr(err->message, mine));
    g_assert_false(gone);
    g_clear_error(&err);
    /* no group configured: root only */
    g_assert_cmpint(
        cocoAgentAuthCheckStatus(other, getgid(), 0, NULL, &gone, &err), ==,
        -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_ACCESS_DENIED);
    g_assert_nonnull(strstr(err->message, "only root may"));
    g_clear_error(&err);
    g_assert_cmpint(
        cocoAgentAuthCheckStatus(other, getgid(), 0, "", &gone, &err), ==, -1);
    g_clear_error(&err);
    /* a group that does not exist: root only, and the caller learns why */
    g_assert_cmpint(
        cocoAgentAuthCheckStatus(other, getgid(), 0, missing, &gone, &err), ==,
        -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_ACCESS_DENIED);
    g_assert_nonnull(strstr(err->message, missing));
    g_assert_true(gone);
    g_clear_error(&err);
    /* a real user outside the group (when the user database has one) */
    if (nobody && nobody->pw_uid != getuid()) {
        uid_t nuid = nobody->pw_uid;
        gid_t ngid = nobody->pw_gid;
        g_autofree char *nmine = NULL;

        if (ngid != getgid()) {
            g_assert_cmpint(cocoAgentAuthGroupMember(nuid, ngid, mine, &err),
                            ==, 0);
            g_assert_cmpint(
                cocoAgentAuthCheckStatus(nuid, ngid, 0, mine, &gone, &err), ==,
                -1);
            g_clear_error(&err);
        }
        /* and inside its own primary group by the user database alone */
        if ((nmine = groupName(ngid))) {
            g_assert_cmpint(
                cocoAgentAuthCheckStatus(nuid, ngid + 1, 0, nmine, &gone, &err),
                ==, 0);
        }
    }
}

/* Ask @sock for the status as @uid/@gid (no supplementary groups) in a
 * child. Only async-signal-safe calls after the fork: the agents' threads
 * run. Returns the first line of the answer. */
static char *
statusAs(const char *sock, uid_t uid, gid_t gid)
{
    char buf[4096] = {0};
    int pfd[2];
    pid_t pid;
    int status;
    ssize_t n;
    size_t got = 0;
    char *nl;

    g_assert_cmpint(pipe2(pfd, O_CLOEXEC), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        static const char req[] = "{\"type\":\"status\"}\n";
        struct sockaddr_un addr = {0};
        char in[4096];
        ssize_t len;
        int fd;

        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0)
            _exit(2);
        addr.sun_family = AF_UNIX;
        memcpy(addr.sun_path, sock, strlen(sock));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
            _exit(3);
        if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
            _exit(4);
        while ((len = read(fd, in, sizeof(in))) > 0) {
            if (write(pfd[1], in, (size_t)len) != len)
                _exit(5);
            if (memchr(in, '\n', (size_t)len))
                break;
        }
        _exit(0);
    }
    close(pfd[1]);
    while (got < sizeof(buf) - 1 &&
           (n = read(pfd[0], buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    close(pfd[0]);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    if ((nl = strchr(buf, '\n')))
        *nl = '\0';
    return g_strdup(buf);
}

/* The relay socket's 'status' for a user that is not root: answered for
 * a member of 'status_group', refused with the reason otherwise. */
static void
testStatusAccess(void)
{
    struct passwd *nobody = getpwnam("nobody");
    g_autofree char *group = NULL;
    g_autofree char *answer = NULL;
    Lab lab;

    if (getuid() != 0 || !nobody) {
        g_test_skip("needs root and a user 'nobody'");
        return;
    }
    group = groupName(nobody->pw_gid);
    g_assert_nonnull(group);
    memset(&lab, 0, sizeof(lab));
    lab.tmp = g_dir_make_tmp("cocoagenttest-XXXXXX", NULL);
    g_assert_nonnull(lab.tmp);
    statusGroup = group;
    hostInit(&lab, &lab.a, "A", true);
    statusGroup = "coco-no-such-group-4711";
    hostInit(&lab, &lab.b, "B", false);
    statusGroup = NULL;
    hostInit(&lab, &lab.c, "C", false);
    statusGroup = COCO_AGENT_DEFAULT_STATUS_GROUP;
    /* nobody may reach the sockets */
    g_assert_cmpint(chmod(lab.tmp, 0711), ==, 0);
    g_assert_cmpint(chmod(lab.a.dir, 0711), ==, 0);
    g_assert_cmpint(chmod(lab.b.dir, 0711), ==, 0);
    g_assert_cmpint(chmod(lab.c.dir, 0711), ==, 0);

    answer = statusAs(lab.a.sock, nobody->pw_uid, nobody->pw_gid);
    g_assert_nonnull(strstr(answer, "\"type\":\"status\""));
    g_free(answer);
    /* a member by the user database, the process's gid another one */
    answer = statusAs(lab.a.sock, nobody->pw_uid, 0);
    g_assert_nonnull(strstr(answer, "\"type\":\"status\""));
    g_free(answer);
    answer = statusAs(lab.b.sock, nobody->pw_uid, nobody->pw_gid);
    g_assert_nonnull(strstr(answer, "\"type\":\"refused\""));
    g_assert_nonnull(
        strstr(answer, "'coco-no-such-group-4711' does not exist"));
    g_free(answer);
    answer = statusAs(lab.c.sock, nobody->pw_uid, nobody->pw_gid);
    g_assert_nonnull(strstr(answer, "\"type\":\"refused\""));
    g_assert_nonnull(strstr(answer, "only root may"));
    g_free(answer);
    /* root still is */
    answer = statusAs(lab.c.sock, 0, 0);
    g_assert_nonnull(strstr(answer, "\"type\":\"status\""));

    hostClear(&lab.c);
    labClear(&lab);
}

/* ---- attacks ----------------------------------------------------------- */

static int
peerConnectRaw(unsigned int port)
{
    struct sockaddr_in sin = {0};
    struct timeval tv = {.tv_sec = WAIT_S, .tv_usec = 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* The agent closes the connection (without an answer). */
static void
assertClosed(int fd)
{
    char c;
    ssize_t n = read(fd, &c, 1);

    /* An end of stream, or a reset for what it left unread. */
    g_assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
    close(fd);
}

static GBytes *
helloFrame(const char *json)
{
    GByteArray *out = g_byte_array_new();
    uint32_t le = GUINT32_TO_LE((uint32_t)strlen(json));

    g_byte_array_append(out, (const guint8 *)COCO_PEER_MAGIC, 4);
    g_byte_array_append(out, (const guint8 *)&le, 4);
    g_byte_array_append(out, (const guint8 *)json, (guint)strlen(json));
    return g_byte_array_free_to_bytes(out);
}

/* Milliseconds a status request of host @h takes now. */
static double
statusMs(Host *h)
{
    gint64 t0 = g_get_monotonic_time();
    g_autofree char *state G_GNUC_UNUSED = hostState(h, "source", NULL);

    return (double)(g_get_monotonic_time() - t0) / 1000.0;
}

static void
migrateOnce(Lab *lab)
{
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;

    startMigration(lab, &ra, &rb);
    g_assert_true(relayGate(&ra, "pre-switchover", "source", 1, &reason));
    assertSameRam(lab);
    g_assert_true(relayGate(&rb, "cont", "destination", 1, &reason));
    waitState(&lab->a, "source", "committed");
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
}

/* Hellos whose members have the wrong type, size or shape, before any
 * authentication: each refused with its reason; the agent serves on. */
static void
testAttackPeerHello(void)
{
    static const char *const bad[] = {
        "{\"kind\":5,\"session\":7}",
        "{\"kind\":\"stream\",\"protocol\":3,\"session\":[\"x\"],"
        "\"streams\":1,\"index\":0,\"token\":\"x\"}",
        "{\"kind\":\"stream\",\"protocol\":3,\"session\":\"0123456789abcdef\","
        "\"streams\":1e99,\"index\":0}",
        "{\"kind\":\"control\",\"protocol\":3,\"session\":\"0123456789abcdef\","
        "\"streams\":1,\"name\":\"vm1\",\"uuid\":\"" UUID "\",\"vcpus\":1,"
        "\"pages\":1,\"bundle\":1}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "{\"kind\":\"probe\",\"protocol\":1}",
    };
    static const char *const why[] = {
        "member 'kind' is not a string",
        "member 'session' is not 16 hexadecimal digits",
        "member 'streams' is not an integer",
        "hello without TLS: only data streams may",
        "deeper than",
        "protocol version '1'",
    };
    Lab lab;
    size_t i;
    int fd;

    labInit(&lab);
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GBytes) frame = helloFrame(bad[i]);

        logClear();
        fd = peerConnectRaw(cocoAgentGetPort(lab.b.agent));
        g_assert_cmpint(
            write(fd, g_bytes_get_data(frame, NULL), g_bytes_get_size(frame)),
            ==, (ssize_t)g_bytes_get_size(frame));
        assertClosed(fd);
        g_assert_true(logWait(why[i], WAIT_S));
    }
    /* A frame that announces 4 GiB: refused before anything is read. */
    logClear();
    fd = peerConnectRaw(cocoAgentGetPort(lab.b.agent));
    g_assert_cmpint(write(fd, "CAG2\xff\xff\xff\xff{", 9), ==, 9);
    assertClosed(fd);
    g_assert_true(logWait("announces", WAIT_S));
    migrateOnce(&lab);
    labClear(&lab);
}

/* The relay socket takes lines of any local user: typed, bounded. */
static void
testAttackRelayLines(void)
{
    static const char *const bad[] = {
        "{\"type\":7}",
        "{\"type\":\"hello\",\"pid\":\"1\",\"name\":1,\"uuid\":\"x\"}",
        "{\"type\":\"gate\",\"id\":\"1\",\"gate\":\"cont\"}",
        "{\"type\":\"event\",\"event\":{},\"data\":[]}",
        "{\"type\":\"domain\",\"uuid\":\"../../etc\"}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    static const char *const why[] = {
        "no string member 'type'",       "member 'pid' is not an integer",
        "member 'id' is not an integer", "member 'event' is not a string",
        "member 'uuid' is not a UUID",   "deeper than",
    };
    g_autofree char *big = g_strnfill(COCO_RELAY_LINE_MAX + 10, 'x');
    Lab lab;
    Relay r = {.fd = -1};
    size_t i;

    labInit(&lab);
    cocoTestRelayConnect(&r, lab.b.sock);
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(JsonObject) o = NULL;

        cocoTestRelaySend(&r, bad[i]);
        o = relayReadType(&r, "error");
        g_assert_nonnull(o);
        if (!strstr(json_object_get_string_member(o, "reason"), why[i]))
            g_error("'%s': '%s'", bad[i],
                    json_object_get_string_member(o, "reason"));
    }
    /* A line longer than the limit before a hello closes the connection. */
    g_assert_cmpint(write(r.fd, big, strlen(big)), ==, (ssize_t)strlen(big));
    g_assert_null(relayRead(&r));
    cocoTestRelayClose(&r);
    migrateOnce(&lab);
    labClear(&lab);
}

/* A peer that sends one byte every 100 ms cannot stretch its handshake,
 * nor slow the agent's other work; too many unauthenticated connections
 * are refused; a status and a migration are served meanwhile. */
static void
testAttackSlowAndMany(void)
{
    const CocoAgentConfig *cfg;
    CocoAgentCounts counts;
    g_autoptr(GArray) fds = g_array_new(FALSE, FALSE, sizeof(int));
    double normal;
    double loaded;
    gint64 t0;
    Lab lab;
    guint i;
    int slow;

    labInit(&lab);
    cfg = cocoAgentGetConfig(lab.b.agent);
    normal = statusMs(&lab.b);
    /* A TLS record that announces 512 bytes of handshake, then one byte
     * of it every 100 ms. */
    slow = peerConnectRaw(cocoAgentGetPort(lab.b.agent));
    logClear();
    g_assert_cmpint(write(slow, "\x16\x03\x01\x02\x00", 5), ==, 5);
    t0 = g_get_monotonic_time();
    while (g_get_monotonic_time() - t0 <
           (gint64)(cfg->tls.handshake_timeout + 3) * G_USEC_PER_SEC) {
        if (write(slow, "\x01", 1) != 1)
            break;
        g_usleep(100000);
    }
    /* The TLS handshake's own deadline, or the hello's: the same one. */
    g_assert_true(logWait("did not end within its deadline", 1) ||
                  logWait("did not complete its handshake", 1));
    close(slow);
    /* More unauthenticated connections from one address than allowed. */
    for (i = 0; i < cfg->max_unauthenticated_per_address + 4; i++) {
        int fd = peerConnectRaw(cocoAgentGetPort(lab.b.agent));

        g_array_append_val(fds, fd);
    }
    g_assert_true(logWait("too many unauthenticated connections", WAIT_S));
    cocoAgentGetCounts(lab.b.agent, &counts);
    g_assert_cmpuint(counts.peer_unauthenticated, <=,
                     cfg->max_unauthenticated_per_address);
    loaded = statusMs(&lab.b);
    g_test_message("status: %.1f ms idle, %.1f ms under attack", normal,
                   loaded);
    g_assert_cmpfloat(loaded, <, normal + 1000.0);
    for (i = 0; i < fds->len; i++)
        close(g_array_index(fds, int, i));
    migrateOnce(&lab);
    labClear(&lab);
}

/* The destination presents a certificate the source must refuse: the
 * migration cannot start, the source's record names why (@why), the source
 * keeps running. (A client certificate of another CA, refused by the
 * destination, is tested in cocoagenttlstest: an agent refuses to load
 * such a pair.) */
static void
tlsRefused(const char *certA, const char *certB, const char *why)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;
    g_autofree char *failure = NULL;
    g_autofree char *state = NULL;

    tlsCertA = certA;
    tlsCertB = certB;
    labInit(&lab);
    tlsCertA = tlsCertB = "local";
    logClear();
    startMigration(&lab, &ra, &rb);
    g_assert_false(relayGate(&ra, "migrate", "source", 1, &reason));
    g_assert_nonnull(strstr(reason, "could not start"));
    state = hostState(&lab.a, "source", &failure);
    g_assert_cmpstr(state, ==, "failed");
    if (!strstr(failure, why))
        g_error("%s/%s: %s", certA, certB, failure);
    g_clear_pointer(&reason, g_free);
    g_assert_true(relayGate(&ra, "cont", "source", 2, &reason));
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* The destination presents a valid certificate of the wrong host
 * (hostB, 10.97.0.2, while the source connects to 127.0.0.1). */
static void
testTlsWrongHost(void)
{
    tlsRefused("local", "hostB", "presented a valid certificate for");
}

/* The destination presents a good certificate of another CA. */
static void
testTlsOtherCa(void)
{
    tlsRefused("local", "localother", "is not issued by the CA");
}

/* A new migration of a domain whose earlier session is not final: its
 * migrate gate is refused (the relay then never starts QEMU's). */
static void
testEarlierNotFinal(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;

    labInit(&lab);
    startMigration(&lab, &ra, &rb);
    cocoTestRelaySend(&ra,
                      "{\"type\":\"gate\",\"id\":1,\"gate\":\"pre-switchover\","
                      "\"role\":\"source\"}");
    g_assert_nonnull(relayReadType(&ra, "verdict"));
    cocoTestRelayClose(&rb);
    hostStop(&lab.b);
    waitState(&lab.a, "source", "await-token");
    /* libvirt tries again meanwhile */
    cocoTestRelaySend(&ra, "{\"type\":\"event\",\"event\":\"migrate\",\"data\":"
                           "{\"role\":\"source\",\"job\":\"migration\",\"uri\":"
                           "\"fd:migrate\",\"peer\":\"127.0.0.1:49152\","
                           "\"x-ignore-shared\":true}}");
    g_assert_false(relayGate(&ra, "migrate", "source", 5, &reason));
    g_assert_nonnull(strstr(reason, "is not resolved"));
    cocoTestRelayClose(&ra);
    labClear(&lab);
}

/* A source's agent stops after the start token left (killed: its
 * sessions end with it) and starts again: the record is "interrupted",
 * the domain's cont is refused until 'recover' asks the destination;
 * while the destination is still in its migration nothing changes, once
 * it aborted the guest may run here again. */
static void
testInterruptedRecover(void)
{
    Lab lab;
    Relay ra = {.fd = -1};
    Relay rb = {.fd = -1};
    g_autofree char *reason = NULL;
    g_autofree char *line = NULL;
    g_autoptr(JsonObject) rec = NULL;
    JsonObject *o;

    labInit(&lab);
    startMigration(&lab, &ra, &rb);
    cocoTestRelaySend(&ra,
                      "{\"type\":\"gate\",\"id\":1,\"gate\":\"pre-switchover\","
                      "\"role\":\"source\"}");
    o = relayReadType(&ra, "verdict");
    g_assert_nonnull(o);
    g_assert_true(json_object_get_boolean_member(o, "release"));
    json_object_unref(o);
    waitState(&lab.b, "destination", "handover");
    cocoTestRelayClose(&ra);
    hostStop(&lab.a);
    hostStartAgent(&lab.a, "A", true);
    cocoAgentSetPeerPort(lab.a.agent, cocoAgentGetPort(lab.b.agent));
    rec = hostRecord(&lab.a, "source");
    g_assert_cmpstr(json_object_get_string_member(rec, "state"), ==,
                    "interrupted");
    g_assert_cmpstr(json_object_get_string_member(rec, "interrupted_in"), ==,
                    "handover");
    relayWelcome(&ra, &lab.a);
    /* Before, the restarted agent released it: it knew no migration. */
    g_assert_false(relayGate(&ra, "cont", "source", 2, &reason));
    g_assert_nonnull(strstr(reason, "virt-coco recover"));
    line = g_strdup_printf("{\"type\":\"recover\",\"id\":\"%s\"}",
                           json_object_get_string_member(rec, "id"));
    /* The destination still holds the session (its QEMU runs). */
    cocoTestRelaySend(&ra, line);
    o = relayReadType(&ra, "recover");
    g_assert_nonnull(o);
    g_assert_cmpstr(json_object_get_string_member(o, "state"), ==,
                    "interrupted");
    g_assert_nonnull(
        strstr(json_object_get_string_member(o, "message"), "try again"));
    json_object_unref(o);
    g_clear_pointer(&reason, g_free);
    g_assert_false(relayGate(&ra, "cont", "source", 3, &reason));
    /* It aborts (libvirt destroyed its QEMU): the guest may run here. */
    cocoTestQemuStop(&lab.b.qemu);
    waitState(&lab.b, "destination", "aborted");
    cocoTestRelaySend(&ra, line);
    {
        bool resumed = false;
        bool answered = false;

        /* The relay is told to let it run, and the client gets the answer
         * (in either order). */
        while (!resumed || !answered) {
            const char *type;

            o = relayRead(&ra);
            g_assert_nonnull(o);
            type = json_object_get_string_member(o, "type");
            if (STREQ(type, "resume")) {
                resumed = true;
            } else if (STREQ(type, "recover")) {
                answered = true;
                g_assert_cmpstr(json_object_get_string_member(o, "state"), ==,
                                "aborted");
                g_assert_nonnull(
                    strstr(json_object_get_string_member(o, "message"),
                           "runs on this host again"));
            }
            json_object_unref(o);
        }
    }
    g_assert_true(relayGate(&ra, "cont", "source", 4, NULL));
    g_clear_pointer(&rec, json_object_unref);
    rec = hostRecord(&lab.a, "source");
    g_assert_true(json_object_get_boolean_member(rec, "may_run"));
    g_assert_nonnull(json_object_get_string_member(rec, "recovered"));
    cocoTestRelayClose(&ra);
    cocoTestRelayClose(&rb);
    labClear(&lab);
}

/* Records: written atomically, kept within the limits, read back at a
 * restart, where one that was not final becomes "interrupted". */
static void
testRecordsRestart(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("cocorecords-XXXXXX", &err);
    g_autoptr(CocoAgentRecords) r = cocoAgentRecordsNew(dir, 3, 0);
    g_autoptr(CocoAgentRecords) again = NULL;
    g_autoptr(JsonArray) list = NULL;
    g_autoptr(JsonObject) rec = NULL;
    guint interrupted = 0;
    int i;

    for (i = 0; i < 5; i++) {
        JsonObject *o = json_object_new();
        g_autofree char *id = g_strdup_printf("vm-source-%d", i);

        json_object_set_string_member(o, "id", id);
        json_object_set_string_member(o, "role", "source");
        json_object_set_string_member(o, "state",
                                      i < 4 ? "finished" : "switchover");
        g_assert_cmpint(cocoAgentRecordsPut(r, id, o, &err), ==, 0);
    }
    /* The oldest final ones went; the live one stays. */
    g_assert_cmpuint(cocoAgentRecordsCount(r), ==, 3);
    g_assert_null(cocoAgentRecordsGet(r, "vm-source-0"));
    /* A restart: the live one was interrupted. */
    again = cocoAgentRecordsNew(dir, 3, 0);
    g_assert_cmpint(cocoAgentRecordsLoad(again, &interrupted, &err), ==, 0);
    g_assert_cmpuint(interrupted, ==, 1);
    rec = cocoAgentRecordsGet(again, "vm-source-4");
    g_assert_nonnull(rec);
    g_assert_cmpstr(json_object_get_string_member(rec, "state"), ==,
                    "interrupted");
    g_assert_cmpstr(json_object_get_string_member(rec, "interrupted_in"), ==,
                    "switchover");
    g_assert_nonnull(strstr(json_object_get_string_member(rec, "failure"),
                            "host agent stopped"));
    /* Interrupted after its start token left: only the destination can
     * say whether the guest may run here; once recovered, it may. */
    g_assert_true(cocoAgentRecordAwaitsRecovery(rec));
    json_object_set_string_member(rec, "recovered", "the destination aborted");
    g_assert_false(cocoAgentRecordAwaitsRecovery(rec));
    json_object_remove_member(rec, "recovered");
    json_object_set_string_member(rec, "interrupted_in", "precopy");
    g_assert_false(cocoAgentRecordAwaitsRecovery(rec));
    json_object_set_string_member(rec, "interrupted_in", "await-token");
    json_object_set_string_member(rec, "role", "destination");
    g_assert_false(cocoAgentRecordAwaitsRecovery(rec));
    json_object_set_string_member(rec, "role", "source");
    g_assert_true(cocoAgentRecordAwaitsRecovery(rec));
    list = cocoAgentRecordsList(again);
    g_assert_cmpuint(json_array_get_length(list), ==, 3);
    /* A record that cannot be written says so, loudly and in itself. */
    if (getuid() != 0) {
        g_assert_cmpint(chmod(dir, 0500), ==, 0);
        {
            JsonObject *o = json_object_new();

            json_object_set_string_member(o, "id", "vm-source-9");
            json_object_set_string_member(o, "role", "source");
            json_object_set_string_member(o, "state", "precopy");
            g_assert_cmpint(cocoAgentRecordsPut(r, "vm-source-9", o, &err), ==,
                            -1);
            g_assert_nonnull(strstr(err->message, "cannot write"));
            g_clear_error(&err);
            g_clear_pointer(&rec, json_object_unref);
            rec = cocoAgentRecordsGet(r, "vm-source-9");
            g_assert_nonnull(
                json_object_get_string_member(rec, "record_error"));
        }
        chmod(dir, 0700);
    }
    {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

        g_assert_cmpint(system(cmd), ==, 0);
    }
}

/* An unwritable state directory (a read-only mount) fails loudly: the
 * record of the migration carries the error. Runs as root too: the
 * directory is a file's place. */
static void
testRecordsUnwritable(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("cocorecords-XXXXXX", &err);
    g_autofree char *gone = g_build_filename(dir, "gone", NULL);
    g_autoptr(CocoAgentRecords) r = cocoAgentRecordsNew(gone, 3, 0);
    g_autoptr(JsonObject) rec = NULL;
    JsonObject *o = json_object_new();

    /* The directory is a file: nothing can be written below it. */
    g_assert_true(g_file_set_contents(gone, "", 0, NULL));
    json_object_set_string_member(o, "id", "vm-source-1");
    json_object_set_string_member(o, "role", "source");
    json_object_set_string_member(o, "state", "precopy");
    g_assert_cmpint(cocoAgentRecordsPut(r, "vm-source-1", o, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "cannot write the migration record"));
    rec = cocoAgentRecordsGet(r, "vm-source-1");
    g_assert_nonnull(json_object_get_string_member(rec, "record_error"));
    unlink(gone);
    rmdir(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* Attacks write to connections the agent closes. */
    signal(SIGPIPE, SIG_IGN);
    logText = g_string_new(NULL);
    g_log_set_writer_func(logWriter, NULL, NULL);
    g_assert_cmpint(cocoAgentTlsInit(NULL), ==, 0);
    cocoTestPki();
    g_test_add_func("/agent/config", testConfig);
    g_test_add_func("/agent/status-group", testStatusGroup);
    g_test_add_func("/agent/status-access", testStatusAccess);
    g_test_add_func("/agent/probe", testProbe);
    g_test_add_func("/agent/auth-refused", testAuthRefused);
    g_test_add_func("/agent/migrate", testMigrate);
    g_test_add_func("/agent/retire-does-not-wait", testRetireDoesNotWait);
    g_test_add_func("/agent/reload-waits-for-migration",
                    testReloadWaitsForMigration);
    g_test_add_func("/agent/migrate-precopy", testMigratePrecopy);
    g_test_add_func("/agent/migrate-progress", testMigrateProgress);
    g_test_add_func("/agent/migrate-cancel-request", testMigrateCancelRequest);
    g_test_add_data_func("/agent/migrate-force-complete", NULL,
                         testMigrateForceComplete);
    g_test_add_data_func("/agent/migrate-force-complete/capped",
                         GINT_TO_POINTER(1), testMigrateForceComplete);
    g_test_add_func("/agent/abort-token", testAbortToken);
    g_test_add_func("/agent/cancel", testCancel);
    g_test_add_func("/agent/policy-refused", testPolicyRefused);
    g_test_add_func("/agent/hostdev-gate", testHostdevGate);
    g_test_add_func("/agent/vfio-state", testVfioState);
    g_test_add_data_func("/agent/hostdev/still-attached/detach", "detach",
                         testHostdevStillAttached);
    g_test_add_data_func("/agent/hostdev/still-attached/refuse", "refuse",
                         testHostdevStillAttached);
    g_test_add_data_func("/agent/vfio-leak/event", GINT_TO_POINTER(1),
                         testVfioLeak);
    g_test_add_data_func("/agent/vfio-leak/with-migrate", GINT_TO_POINTER(0),
                         testVfioLeak);
    g_test_add_func("/agent/vfio-leak/during-migration",
                    testVfioLeakDuringMigration);
    g_test_add_func("/agent/garbage", testGarbage);
    g_test_add_func("/agent/destination-lost", testDestinationLost);
    g_test_add_data_func("/agent/destination-qemu-ends-before-start",
                         &heldQemuEnds, testHeldStreams);
    g_test_add_func("/agent/earlier-not-final", testEarlierNotFinal);
    g_test_add_data_func("/agent/streams-missing", &heldStreamsMissing,
                         testHeldStreams);
    g_test_add_func("/agent/peer-slots", testPeerSlots);
    g_test_add_func("/agent/attack/peer-hello", testAttackPeerHello);
    g_test_add_func("/agent/attack/relay-lines", testAttackRelayLines);
    g_test_add_func("/agent/attack/slow-and-many", testAttackSlowAndMany);
    g_test_add_func("/agent/tls/wrong-host", testTlsWrongHost);
    g_test_add_func("/agent/tls/other-ca", testTlsOtherCa);
    g_test_add_func("/agent/records/restart", testRecordsRestart);
    g_test_add_func("/agent/interrupted-recover", testInterruptedRecover);
    g_test_add_func("/agent/records/unwritable", testRecordsUnwritable);
    return g_test_run();
}
