/*
 * cococlienttest.c: the client layer without hosts (src/client/)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Hostile JSON read with typed getters, the agents' records and the
 * questions asked of them, host names of URIs and peer addresses, the
 * driver's refusals of modes, flags and parameters, the check that fails
 * a migration whose memory did not move sealed, and the timeline picture
 * (well-formed XML, both lanes). The binaries' tests (virtcocotest) run
 * the same code against real agents.
 */

#include "internal.h"
#include "client/cococlientjson.h"
#include "client/cococlientmigrate.h"
#include "client/cococlientpreflight.h"
#include "client/cococlientrecord.h"
#include "client/cococlienttimeline.h"

#include <libxml/parser.h>

static JsonObject *
testObject(const char *text)
{
    g_autoptr(GError) err = NULL;
    JsonObject *obj =
        cocoProtoParseJson(text, strlen(text), 1 << 20, "test", &err);

    g_assert_no_error(err);
    g_assert_nonnull(obj);
    return obj;
}

/* A member of the wrong type is absent, never a crash or a warning (the
 * test runs with G_DEBUG=fatal-warnings). */
static void
testJsonTypes(void)
{
    g_autoptr(JsonObject) o = testObject(
        "{\"s\": 5, \"i\": \"x\", \"d\": 1.5, \"o\": [1], \"a\": {}, "
        "\"b\": \"true\", \"n\": null, \"ok\": \"yes\", \"neg\": -3}");
    gint64 i = 0;
    double d = 0;
    bool b = false;

    g_assert_null(cocoJsonString(o, "s"));
    g_assert_null(cocoJsonString(o, "o"));
    g_assert_null(cocoJsonString(o, "n"));
    g_assert_null(cocoJsonString(o, "missing"));
    g_assert_cmpstr(cocoJsonString(o, "ok"), ==, "yes");
    g_assert_false(cocoJsonInt(o, "i", &i));
    g_assert_false(cocoJsonInt(o, "d", &i));
    g_assert_true(cocoJsonDouble(o, "d", &d));
    g_assert_cmpfloat(d, ==, 1.5);
    g_assert_true(cocoJsonDouble(o, "s", &d));
    g_assert_cmpuint(cocoClientJsonU64(o, "neg", 7), ==, 7);
    g_assert_false(cocoClientJsonBool(o, "b", &b));
    g_assert_null(cocoJsonObject(o, "o"));
    g_assert_null(cocoJsonArray(o, "a"));
    g_assert_nonnull(cocoJsonObject(o, "a"));
    g_assert_null(cocoJsonArrayObject(cocoJsonArray(o, "o"), 0));
    g_assert_null(cocoJsonObject(NULL, "a"));
}

#define TEST_RECORD                                                            \
 "{\"id\": \"g-source-1\", \"domain\": \"g\", \"uuid\": \"u\", "               \
 "\"role\": \"source\", \"peer\": \"[fd00::2]:49152\", "                       \
 "\"session\": \"0011223344556677\", \"started\": "                            \
 "\"2026-11-26T10:07:06.250000Z\", \"pages\": 100, \"state\": \"%s\", "        \
 "\"transfer\": {\"bytes\": %d, \"pages\": %d, \"epoch\": 2}, "                \
 "\"counters\": {\"rounds\": 2, \"blackout_us\": 40000, "                      \
 "\"downtime_us\": 12500}, \"timeline\": ["                                    \
 "{\"at_ms\": 0.5, \"duration_ms\": 0.1, \"event\": \"migrate\", "             \
 "\"phase\": \"Perform (S) start\", \"from\": \"idle\", "                      \
 "\"to\": \"preparing\", \"steps\": \"prepare-start, await-keys,\"}, "         \
 "{\"at_ms\": 20, \"duration_ms\": 1, \"event\": \"peer-round-done\", "        \
 "\"phase\": \"p\", \"from\": \"precopy\", \"to\": \"precopy\", "              \
 "\"steps\": \"\"}, "                                                          \
 "{\"at_ms\": 40, \"duration_ms\": 2, \"event\": \"pre-switchover\", "         \
 "\"phase\": \"p\", \"from\": \"precopy\", \"to\": \"switchover\", "           \
 "\"steps\": \"source-blackout,final\", \"error\": \"fw-state\"}], "           \
 "\"samples\": [[0.1, 0, 0, 0], [10, 200000, 50, 1], [40, 409600, 100, "       \
 "2]]}"

static CocoClientRecord *
testRecord(const char *state, int bytes, int pages)
{
    g_autofree char *text = g_strdup_printf(TEST_RECORD, state, bytes, pages);
    g_autoptr(JsonObject) obj = testObject(text);
    g_autoptr(GError) err = NULL;
    CocoClientRecord *rec = cocoClientRecordParse(obj, "test", &err);

    g_assert_no_error(err);
    g_assert_nonnull(rec);
    return rec;
}

static void
testRecordParse(void)
{
    g_autoptr(CocoClientRecord) rec = testRecord("precopy", 409600, 100);
    const CocoClientRecordEntry *e;
    g_autofree char *host = NULL;

    g_assert_cmpstr(rec->id, ==, "g-source-1");
    g_assert_cmpuint(rec->timeline->len, ==, 3);
    e = g_ptr_array_index(rec->timeline, 0);
    g_assert_cmpuint(g_strv_length(e->steps), ==, 2);
    g_assert_cmpstr(e->steps[1], ==, "await-keys");
    e = g_ptr_array_index(rec->timeline, 2);
    g_assert_cmpstr(e->error, ==, "fw-state");
    g_assert_cmpuint(rec->samples->len, ==, 3);
    g_assert_cmpuint(rec->downtime_us, ==, 12500);
    host = cocoClientRecordPeerHost(rec);
    g_assert_cmpstr(host, ==, "fd00::2");
    g_assert_cmpint(cocoClientRecordStartedUs(rec), ==,
                    G_GINT64_CONSTANT(1795687626250000));
    g_assert_false(cocoClientRecordIsOver(rec));
    g_assert_false(cocoClientRecordSucceeded(rec));
    g_assert_cmpuint(cocoClientRecordProgress(rec), ==, 99);
}

static void
testRecordStates(void)
{
    static const struct {
        const char *state;
        bool over;
        bool succeeded;
    } cases[] = {
        {"idle", false, false},
        {"preparing", false, false},
        {"setup", false, false},
        {"precopy", false, false},
        {"blackout", false, false},
        {"switchover", false, false},
        {"handover", false, false},
        {"await-token", false, false},
        {"committed", true, true},
        {"finished", true, true},
        {"aborted", true, false},
        {"frozen", true, false},
        /* a start that failed, a state of a newer agent */
        {"failed", true, false},
        {"interrupted", true, false},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(CocoClientRecord) rec = testRecord(cases[i].state, 0, 0);

        g_assert_cmpint(cocoClientRecordIsOver(rec), ==, cases[i].over);
        g_assert_cmpint(cocoClientRecordSucceeded(rec), ==, cases[i].succeeded);
        g_assert_cmpuint(cocoClientRecordProgress(rec), ==,
                         cases[i].succeeded ? 100 : 0);
    }
}

/* What a record must have, and bounds on what it may hold. */
static void
testRecordRejects(void)
{
    static const char *const bad[] = {
        "{\"role\": \"source\", \"state\": \"precopy\"}",
        "{\"id\": 5, \"role\": \"source\", \"state\": \"precopy\"}",
        "{\"id\": \"x\", \"role\": \"source\"}",
        "{\"id\": \"x\", \"role\": \"source\", \"state\": \"s\", "
        "\"timeline\": [{\"at_ms\": 1}]}",
        "{\"id\": \"x\", \"role\": \"source\", \"state\": \"s\", "
        "\"timeline\": [7]}",
        "{\"id\": \"x\", \"role\": \"source\", \"state\": \"s\", "
        "\"samples\": [[1, 2, 3]]}",
        "{\"id\": \"x\", \"role\": \"source\", \"state\": \"s\", "
        "\"samples\": [[1, -2, 3, 4]]}",
        "{\"id\": \"x\", \"role\": \"source\", \"state\": \"s\", "
        "\"samples\": [[1, \"2\", 3, 4]]}",
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(JsonObject) obj = testObject(bad[i]);
        g_autoptr(GError) err = NULL;
        g_autoptr(CocoClientRecord) rec =
            cocoClientRecordParse(obj, "test", &err);

        g_assert_null(rec);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_QMP_PROTOCOL);
    }
}

static void
testRecordFind(void)
{
    g_autoptr(JsonObject) obj = testObject(
        "{\"m\": [{\"id\": \"a-1\", \"domain\": \"a\", \"uuid\": "
        "\"AA\"}, {\"id\": \"a-2\", \"domain\": \"a\", \"uuid\": \"aa\"}, "
        "{\"id\": \"b-1\", \"domain\": \"b\"}, 5]}");
    JsonArray *arr = cocoJsonArray(obj, "m");

    g_assert_cmpstr(cocoJsonString(cocoClientRecordFind(arr, "a-1"), "id"), ==,
                    "a-1");
    /* a domain: its newest record, by name or UUID (any case) */
    g_assert_cmpstr(cocoJsonString(cocoClientRecordFind(arr, "a"), "id"), ==,
                    "a-2");
    g_assert_cmpstr(cocoJsonString(cocoClientRecordFind(arr, "Aa"), "id"), ==,
                    "a-2");
    g_assert_null(cocoClientRecordFind(arr, "c"));
}

static void
testHosts(void)
{
    static const struct {
        const char *uri;
        const char *host;
    } uris[] = {
        {"tcp:10.0.0.2", "10.0.0.2"},
        {"tcp:10.0.0.2:49152", "10.0.0.2"},
        {"tcp:[fd00::2]:49152", "fd00::2"},
        {"tcp://hostb:49152", "hostb"},
        {"qemu+ssh://root@hostb/system", "hostb"},
        {"qemu+tcp://[fd00::3]/system", "fd00::3"},
        {"qemu:///system", NULL},
        {"qemu+unix:///system?socket=/x", NULL},
    };
    static const char *const badaddr[] = {"[fd00::2", ":49152", "[]:1",
                                          "[::1]x", ""};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(uris); i++) {
        g_autofree char *host = NULL;
        g_autoptr(GError) err = NULL;

        g_assert_cmpint(cocoClientPreflightUriHost(uris[i].uri, &host, &err),
                        ==, 0);
        g_assert_no_error(err);
        g_assert_cmpstr(host, ==, uris[i].host);
    }
    for (i = 0; i < G_N_ELEMENTS(badaddr); i++) {
        g_autofree char *host = NULL;
        g_autoptr(GError) err = NULL;

        g_assert_cmpint(cocoClientSplitHostPort(badaddr[i], &host, &err), ==,
                        -1);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    }
}

/* A source agent that cannot authenticate its peers (no TLS credentials)
 * is refused before any peer is asked. */
static void
testPreflightTls(void)
{
    static const struct {
        const char *probe;
        const char *needle;
    } cases[] = {
        {"{\"type\": \"probe\", \"firmware\": \"emulated\"}",
         "authenticate its peers: it has no TLS credentials"},
        {"{\"type\": \"probe\", \"firmware\": \"emulated\", \"tls\": false, "
         "\"tls_error\": \"cannot read 'cacert.pem'\"}",
         "authenticate its peers: cannot read 'cacert.pem'"},
        {"{\"type\": \"probe\", \"firmware\": \"emulated\", \"tls\": \"yes\"}",
         "it has no TLS credentials"},
    };
    CocoMigrationDef def = {0};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(JsonObject) src = testObject(cases[i].probe);
        g_autoptr(GError) err = NULL;

        g_assert_cmpint(
            cocoClientPreflightHosts(NULL, src, "hostb", &def, &err), ==, -1);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_PEER_AUTH);
        g_assert_nonnull(strstr(err->message, cases[i].needle));
    }
}

/* Modes, flags and parameters refused when they are given. */
static void
testMigrateOptions(void)
{
    g_autoptr(CocoClientMigrate) m = NULL;
    g_autoptr(GError) err = NULL;
    static const struct {
        unsigned int flags;
        const char *needle;
    } flags[] = {
        {VIR_MIGRATE_TUNNELLED, "'--tunnelled' (VIR_MIGRATE_TUNNELLED)"},
        {VIR_MIGRATE_OFFLINE, "'--offline' (VIR_MIGRATE_OFFLINE)"},
        {VIR_MIGRATE_NON_SHARED_DISK, "non-shared storage"},
        {VIR_MIGRATE_NON_SHARED_INC, "non-shared storage"},
        {VIR_MIGRATE_NON_SHARED_SYNCHRONOUS_WRITES, "non-shared storage"},
        {VIR_MIGRATE_RDMA_PIN_ALL, "RDMA"},
        {VIR_MIGRATE_POSTCOPY_RESUME, "post-copy"},
        {1U << 30, "'0x40000000'"},
    };
    size_t i;

    g_assert_null(cocoClientMigrateNew(NULL, "", "qemu:///x", &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    m = cocoClientMigrateNew(NULL, "g", "qemu+tcp://b/system", &err);
    g_assert_no_error(err);
    for (i = 0; i < G_N_ELEMENTS(flags); i++) {
        g_assert_cmpint(cocoClientMigrateSetFlags(
                            m, VIR_MIGRATE_LIVE | flags[i].flags, &err),
                        ==, -1);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_NOT_SUPPORTED);
        g_assert_nonnull(strstr(err->message, flags[i].needle));
        g_clear_error(&err);
    }
    /* virsh's flags a confidential migration honours */
    g_assert_cmpint(cocoClientMigrateSetFlags(
                        m,
                        VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER |
                            VIR_MIGRATE_TLS | VIR_MIGRATE_POSTCOPY |
                            VIR_MIGRATE_AUTO_CONVERGE | VIR_MIGRATE_PARALLEL |
                            VIR_MIGRATE_ZEROCOPY |
                            VIR_MIGRATE_CHANGE_PROTECTION | VIR_MIGRATE_UNSAFE,
                        &err),
                    ==, 0);
    g_assert_no_error(err);

    g_assert_cmpint(
        cocoClientMigrateAddParam(m, "bogus", g_variant_new_string("x"), &err),
        ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_assert_nonnull(strstr(err->message, "destination_xml"));
    g_clear_error(&err);
    g_assert_cmpint(cocoClientMigrateAddParam(m, VIR_MIGRATE_PARAM_BANDWIDTH,
                                              g_variant_new_int32(5), &err),
                    ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_cmpint(cocoClientMigrateAddParam(
                        m, VIR_MIGRATE_PARAM_MIGRATE_DISKS,
                        g_variant_new_strv((const char *[]){"vda", NULL}, -1),
                        &err),
                    ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_NOT_SUPPORTED);
    g_clear_error(&err);
    g_assert_cmpint(cocoClientMigrateAddParam(m, VIR_MIGRATE_PARAM_URI,
                                              g_variant_new_string(""), &err),
                    ==, -1);
    g_clear_error(&err);
    g_assert_cmpint(
        cocoClientMigrateAddParam(m, VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS,
                                  g_variant_new_int32(0), &err),
        ==, -1);
    g_clear_error(&err);
    g_assert_cmpint(
        cocoClientMigrateAddParam(
            m, VIR_MIGRATE_PARAM_COMPRESSION,
            g_variant_new_strv((const char *[]){"xbzrle", "mt", NULL}, -1),
            &err),
        ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(cocoClientMigrateAddParam(m, VIR_MIGRATE_PARAM_BANDWIDTH,
                                              g_variant_new_uint64(100), &err),
                    ==, 0);
    g_assert_cmpint(cocoClientMigrateAddParam(m, VIR_MIGRATE_PARAM_BANDWIDTH,
                                              g_variant_new_uint64(100), &err),
                    ==, -1);
    g_assert_nonnull(strstr(err->message, "given twice"));
}

/* The check after libvirt reported success. */
static void
testMigrateCheck(void)
{
    g_autoptr(CocoClientRecord) ok = testRecord("finished", 409600, 100);
    g_autoptr(CocoClientRecord) nothing = testRecord("finished", 0, 0);
    g_autoptr(CocoClientRecord) aborted = testRecord("aborted", 4096, 1);
    CocoClientMigrateResult res = {.guest_memory = 400 * 1024 * 1024};
    CocoClientMigrateResult stream = {.guest_memory = 400 * 1024 * 1024,
                                      .have_libvirt = true,
                                      .memory_processed = 300 * 1024 * 1024,
                                      .data_processed = 301 * 1024 * 1024};
    GError *err = NULL;

    g_assert_true(cocoClientMigrateSealed(ok));
    g_assert_cmpint(cocoClientMigrateCheckResult("g", ok, &stream, &err), ==,
                    0);
    g_assert_no_error(err);

    /* no record at all: the numbers of libvirt's job are named */
    g_assert_cmpint(cocoClientMigrateCheckResult("g", NULL, &stream, &err), ==,
                    -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_MIGRATION_UNSEALED);
    g_assert_nonnull(strstr(err->message, "no record"));
    g_assert_nonnull(strstr(err->message, "'314572800' bytes of memory"));
    g_clear_error(&err);
    g_assert_cmpint(cocoClientMigrateCheckResult("g", NULL, &res, &err), ==,
                    -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_MIGRATION_UNSEALED);
    g_clear_error(&err);

    /* the record did not succeed */
    g_assert_cmpint(cocoClientMigrateCheckResult("g", aborted, &res, &err), ==,
                    -1);
    g_assert_nonnull(strstr(err->message, "state 'aborted'"));
    g_clear_error(&err);

    /* the agents sealed nothing while QEMU's stream moved the memory */
    g_assert_false(cocoClientMigrateSealed(nothing));
    g_assert_cmpint(cocoClientMigrateCheckResult("g", nothing, &stream, &err),
                    ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_MIGRATION_UNSEALED);
    g_assert_nonnull(strstr(err->message, "went through QEMU's stream"));
    g_clear_error(&err);
    g_assert_cmpint(cocoClientMigrateCheckResult("g", nothing, &res, &err), ==,
                    -1);
    g_assert_nonnull(strstr(err->message, "sealed nothing"));
    g_clear_error(&err);
}

static void
testTimeline(void)
{
    g_autoptr(CocoClientRecord) src = testRecord("finished", 409600, 100);
    g_autoptr(GError) err = NULL;
    g_autofree char *both = cocoClientTimelineSvg(src, NULL, &err);
    xmlDocPtr doc;

    g_assert_no_error(err);
    doc = xmlReadMemory(both, (int)strlen(both), "timeline.svg", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING);
    g_assert_nonnull(doc);
    g_assert_cmpstr((const char *)xmlDocGetRootElement(doc)->name, ==, "svg");
    xmlFreeDoc(doc);
    /* the missing lane says so; the round, the blackout, the bytes */
    g_assert_nonnull(strstr(both, "record is not available"));
    g_assert_nonnull(strstr(both, ">r1<"));
    g_assert_nonnull(strstr(both, "blackout 12.5 ms"));
    g_assert_nonnull(strstr(both, "<polyline"));
    g_assert_null(cocoClientTimelineSvg(NULL, NULL, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/client/json/types", testJsonTypes);
    g_test_add_func("/client/record/parse", testRecordParse);
    g_test_add_func("/client/record/states", testRecordStates);
    g_test_add_func("/client/record/rejects", testRecordRejects);
    g_test_add_func("/client/record/find", testRecordFind);
    g_test_add_func("/client/hosts", testHosts);
    g_test_add_func("/client/preflight/tls", testPreflightTls);
    g_test_add_func("/client/migrate/options", testMigrateOptions);
    g_test_add_func("/client/migrate/check", testMigrateCheck);
    g_test_add_func("/client/timeline", testTimeline);
    return g_test_run();
}
