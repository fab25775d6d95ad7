/*
 * virtcocotest.c: the virt-coco command line, run as a user would run it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case runs the built binary ($VIRT_COCO) and checks its exit code,
 * that errors are one line "error: ..." on stderr, and the JSON on stdout.
 * libvirt is reached through its real test driver, with a node file from
 * tests/virtcocodata/ (each run of the tool sees it afresh).
 */

#include "internal.h"
#include "cocotestrun.h"

#include "cocotestagent.h"

#include <json-glib/json-glib.h>
#include <signal.h>
#include <unistd.h>

static char *
testData(const char *name)
{
    return g_build_filename(g_getenv("abs_srcdir"), "virtcocodata", name, NULL);
}

static char *
testNodeUri(void)
{
    g_autofree char *node = testData("testnode.xml");

    return g_strdup_printf("test://%s", node);
}

/* Run virt-coco with the NULL-terminated arguments. */
static void
testRun(TestRun *run, ...)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    const char *arg;
    va_list ap;

    g_ptr_array_add(argv, (gpointer)g_getenv("VIRT_COCO"));
    va_start(ap, run);
    while ((arg = va_arg(ap, const char *)))
        g_ptr_array_add(argv, (gpointer)arg);
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    testRunArgv(run, (const char *const *)argv->pdata, NULL, NULL);
}

/* A failed run prints exactly one line, "error: ...", on stderr. */
static void
testAssertOneLineError(const TestRun *run, const char *needle)
{
    const char *nl = strchr(run->err, '\n');

    g_assert_true(g_str_has_prefix(run->err, "error: "));
    g_assert_nonnull(nl);
    g_assert_cmpstr(nl + 1, ==, "");
    if (needle)
        g_assert_nonnull(strstr(run->err, needle));
}

static JsonObject *
testParseJson(JsonParser *parser, const char *text)
{
    g_autoptr(GError) err = NULL;
    JsonNode *root;

    g_assert_true(json_parser_load_from_data(parser, text, -1, &err));
    g_assert_no_error(err);
    root = json_parser_get_root(parser);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
    return json_node_get_object(root);
}

static void
testVersion(void)
{
    g_auto(TestRun) run = {0};

    testRun(&run, "--version", NULL);
    g_assert_cmpint(run.status, ==, 0);
    g_assert_cmpstr(run.out, ==, PACKAGE_VERSION "\n");
}

static void
testUsage(void)
{
    g_auto(TestRun) none = {0};
    g_auto(TestRun) unknown = {0};
    g_auto(TestRun) badopt = {0};
    g_auto(TestRun) help = {0};
    g_auto(TestRun) extra = {0};

    testRun(&none, NULL);
    g_assert_cmpint(none.status, ==, 2);
    g_assert_nonnull(strstr(none.err, "error: no command given\n"));

    testRun(&unknown, "frobnicate", NULL);
    g_assert_cmpint(unknown.status, ==, 2);
    testAssertOneLineError(&unknown, "'frobnicate'");

    testRun(&badopt, "--frob", "help", NULL);
    g_assert_cmpint(badopt.status, ==, 2);
    testAssertOneLineError(&badopt, "'--frob'");

    testRun(&help, "help", "validate", NULL);
    g_assert_cmpint(help.status, ==, 0);
    g_assert_nonnull(strstr(help.out, "virt-coco validate"));

    testRun(&extra, "validate", "a.xml", "b.xml", NULL);
    g_assert_cmpint(extra.status, ==, 2);
    testAssertOneLineError(&extra, NULL);
}

static void
testValidateExample(void)
{
    g_auto(TestRun) run = {0};
    g_autofree char *path = g_build_filename(
        g_getenv("abs_top_srcdir"), "docs", "examples", "tdx-domain.xml", NULL);

    testRun(&run, "validate", path, NULL);
    g_assert_cmpint(run.status, ==, 0);
    g_assert_nonnull(strstr(run.out, "valid confidential-migration settings "
                                     "(tdx)"));
    g_assert_cmpstr(run.err, ==, "");
}

static void
testValidateJson(void)
{
    g_auto(TestRun) run = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autofree char *path = testData("element.xml");
    JsonObject *obj;

    testRun(&run, "--json", "validate", path, NULL);
    g_assert_cmpint(run.status, ==, 0);
    obj = testParseJson(parser, run.out);
    g_assert_true(json_object_get_boolean_member(obj, "valid"));
    g_assert_cmpstr(json_object_get_string_member(obj, "technology"), ==,
                    "tdx");
}

static void
testValidateRejects(void)
{
    static const struct {
        const char *file;
        const char *nick;
        const char *needle;
    } cases[] = {
        {"element-badstreams.xml", NULL, "513"},
        {"malformed.xml", "xml-malformed", NULL},
        {"domain-notmigratable.xml", "config-conflict", NULL},
        {"no-such-file.xml", "system", "no-such-file.xml"},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_auto(TestRun) run = {0};
        g_auto(TestRun) jrun = {0};
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autofree char *path = testData(cases[i].file);
        JsonObject *err;

        testRun(&run, "validate", path, NULL);
        g_assert_cmpint(run.status, ==, 1);
        g_assert_cmpstr(run.out, ==, "");
        testAssertOneLineError(&run, cases[i].needle);

        testRun(&jrun, "validate", "--json", path, NULL);
        g_assert_cmpint(jrun.status, ==, 1);
        err = json_object_get_object_member(testParseJson(parser, jrun.out),
                                            "error");
        g_assert_nonnull(err);
        if (cases[i].nick)
            g_assert_cmpstr(json_object_get_string_member(err, "code"), ==,
                            cases[i].nick);
        g_assert_nonnull(json_object_get_string_member(err, "message"));
    }
}

static void
testMetadataGet(void)
{
    g_autofree char *uri = testNodeUri();
    g_auto(TestRun) run = {0};
    g_auto(TestRun) plain = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *obj;

    testRun(&run, "-c", uri, "metadata", "configured", NULL);
    g_assert_cmpint(run.status, ==, 0);
    g_assert_true(g_str_has_prefix(run.out, "<coco:migration xmlns:coco="));
    g_assert_nonnull(strstr(run.out, "technology=\"sev\""));

    /* Absent metadata reads as "not configured", not as an error. */
    testRun(&plain, "-c", uri, "--json", "metadata", "plain", NULL);
    g_assert_cmpint(plain.status, ==, 0);
    obj = testParseJson(parser, plain.out);
    g_assert_false(json_object_get_boolean_member(obj, "configured"));
}

static void
testMetadataSet(void)
{
    g_autofree char *uri = testNodeUri();
    g_autofree char *good = testData("element.xml");
    g_autofree char *bad = testData("element-badstreams.xml");
    g_auto(TestRun) run = {0};
    g_auto(TestRun) rej = {0};
    g_auto(TestRun) both = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *obj;

    testRun(&run, "-c", uri, "--json", "metadata", "plain", "--set", good,
            "--live", NULL);
    g_assert_cmpint(run.status, ==, 0);
    obj = testParseJson(parser, run.out);
    g_assert_cmpstr(json_object_get_string_member(obj, "action"), ==, "set");
    g_assert_nonnull(
        strstr(json_object_get_string_member(obj, "xml"), "forward=\"8\""));

    /* A rejected element never reaches libvirt. */
    testRun(&rej, "-c", uri, "metadata", "plain", "--set", bad, NULL);
    g_assert_cmpint(rej.status, ==, 1);
    testAssertOneLineError(&rej, NULL);

    testRun(&both, "-c", uri, "metadata", "plain", "--set", good, "--remove",
            NULL);
    g_assert_cmpint(both.status, ==, 2);
    testAssertOneLineError(&both, "mutually exclusive");
}

static void
testMetadataNoDomain(void)
{
    g_autofree char *uri = testNodeUri();
    g_auto(TestRun) run = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *err;

    testRun(&run, "-c", uri, "--json", "metadata", "ghost", NULL);
    g_assert_cmpint(run.status, ==, 1);
    testAssertOneLineError(&run, "'ghost'");
    err =
        json_object_get_object_member(testParseJson(parser, run.out), "error");
    g_assert_cmpstr(json_object_get_string_member(err, "code"), ==, "libvirt");
    /* libvirt's own code is kept: VIR_ERR_NO_DOMAIN. */
    g_assert_cmpint(json_object_get_int_member(err, "libvirt_code"), ==, 42);
}

static void
testValidateDomain(void)
{
    g_autofree char *uri = testNodeUri();
    g_auto(TestRun) run = {0};
    g_auto(TestRun) plain = {0};

    testRun(&run, "-c", uri, "validate", "--domain", "configured", NULL);
    g_assert_cmpint(run.status, ==, 0);
    g_assert_nonnull(strstr(run.out, "(sev)"));

    testRun(&plain, "-c", uri, "--json", "validate", "--domain", "plain", NULL);
    g_assert_cmpint(plain.status, ==, 1);
    g_assert_nonnull(strstr(plain.out, "\"not-configured\""));
}

static void
testCapabilities(void)
{
    g_autofree char *pf = testData("platform.conf");
    g_auto(TestRun) text = {0};
    g_auto(TestRun) json = {0};
    g_auto(TestRun) kvm = {0};
    g_auto(TestRun) bad = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *obj;
    JsonObject *emu;
    JsonObject *ioctls;

    testRun(&text, "capabilities", "--platform", pf, NULL);
    g_assert_cmpint(text.status, ==, 0);
    g_assert_nonnull(strstr(text.out, "KVM_MIGRATE_CMD"));

    testRun(&json, "--json", "capabilities", "--platform", pf, NULL);
    g_assert_cmpint(json.status, ==, 0);
    obj = testParseJson(parser, json.out);
    g_assert_cmpstr(json_object_get_string_member(obj, "backend"), ==,
                    "emulated");
    ioctls = json_object_get_object_member(
        json_object_get_object_member(obj, "kvm"), "ioctls");
    /* _IOWR(KVMIO, 0xf0, struct kvm_migrate_cmd): the provisional number. */
    g_assert_cmpstr(json_object_get_string_member(ioctls, "KVM_MIGRATE_CMD"),
                    ==, "0xc018aef0");
    /* Where each backend runs, how far each technology goes, VFIO. */
    g_assert_cmpstr(
        json_object_get_string_member(
            json_object_get_object_member(
                json_object_get_object_member(obj, "backends"), "kvm"),
            "runs_in"),
        ==, "vmm");
    g_assert_cmpstr(
        json_object_get_string_member(
            json_object_get_object_member(
                json_object_get_object_member(obj, "technologies"), "sev-snp"),
            "support"),
        ==, "policy");
    g_assert_true(json_object_has_member(
        json_object_get_object_member(obj, "vfio"), "interposer_installed"));
    emu = json_object_get_object_member(obj, "emulated");
    /* SHA-256 of the Ed25519 public key of seed 07..07, computed
     * independently with "openssl pkey -pubout" and sha256sum. */
    g_assert_cmpstr(
        json_object_get_string_member(emu, "platform_id"), ==,
        "fe812c12f3ab4ce6ac5db69ac352f906cb1b11ef43fb33e252ef7ff552263889");
    g_assert_cmpint(json_object_get_int_member(
                        json_object_get_object_member(emu, "tcb"), "module"),
                    ==, 3);

    /* No kernel implements the RFC: the kvm backend is refused clearly. */
    testRun(&kvm, "capabilities", "--backend", "kvm", NULL);
    g_assert_cmpint(kvm.status, ==, 1);
    testAssertOneLineError(&kvm, "kvm firmware backend is not usable");

    testRun(&bad, "capabilities", "--backend", "sgx", NULL);
    g_assert_cmpint(bad.status, ==, 2);
    testAssertOneLineError(&bad, "'sgx'");
}

static void
testVfioCheck(void)
{
    g_auto(TestRun) json = {0};
    g_auto(TestRun) sub = {0};
    g_auto(TestRun) group = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *obj;

    testRun(&json, "--json", "vfio", "check", NULL);
    obj = testParseJson(parser, json.out);
    g_assert_true(json_object_has_member(obj, "kernel"));
    g_assert_true(json_object_has_member(obj, "risk"));
    if (!g_file_test("/dev/vfio/vfio", G_FILE_TEST_EXISTS)) {
        /* No VFIO on this host: said clearly, and not an error. */
        g_assert_cmpint(json.status, ==, 0);
        g_assert_false(json_object_get_boolean_member(obj, "vfio_present"));
        g_assert_nonnull(strstr(json_object_get_string_member(obj, "verdict"),
                                "no VFIO devices on this host"));
    }

    testRun(&sub, "vfio", "frob", NULL);
    g_assert_cmpint(sub.status, ==, 2);
    testAssertOneLineError(&sub, "'frob'");

    testRun(&group, "vfio", "check", "--group", "abc", NULL);
    g_assert_cmpint(group.status, ==, 2);
    testAssertOneLineError(&group, "abc");
}

/* ---- migrate --confidential -------------------------------------------- */

/* The last line of @out as the "result" event. */
static JsonObject *
testResult(JsonParser *parser, const char *out)
{
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
    guint n = g_strv_length(lines);
    JsonObject *obj;

    /* out ends with "\n": the last element is empty. */
    g_assert_cmpuint(n, >=, 2);
    g_assert_cmpstr(lines[n - 1], ==, "");
    obj = testParseJson(parser, lines[n - 2]);
    g_assert_cmpstr(json_object_get_string_member(obj, "event"), ==, "result");
    return obj;
}

static void
testMigrateRefusals(void)
{
    g_autofree char *uri = testNodeUri();
    g_auto(TestRun) noconf = {0};
    g_auto(TestRun) plain = {0};
    g_auto(TestRun) bad = {0};
    g_auto(TestRun) offline = {0};
    g_auto(TestRun) args = {0};
    g_auto(TestRun) streams = {0};

    /* Without --confidential: refused, pointing to virsh. */
    testRun(&noconf, "-c", uri, "migrate", "--live", "configured",
            "test:///default", NULL);
    g_assert_cmpint(noconf.status, ==, 1);
    g_assert_cmpstr(noconf.out, ==, "");
    testAssertOneLineError(&noconf, "'virsh migrate'");

    /* No <coco:migration>: nothing confidential to move. */
    testRun(&plain, "-c", uri, "migrate", "--confidential", "plain",
            "test:///default", NULL);
    g_assert_cmpint(plain.status, ==, 1);
    testAssertOneLineError(&plain, "has no <coco:migration> element");
    g_assert_nonnull(strstr(plain.err, "'virsh migrate'"));

    /* An invalid element is refused before any host is asked. */
    testRun(&bad, "-c", uri, "migrate", "--confidential", "badcoco",
            "test:///default", "--agent-socket", "/nonexistent/agent.sock",
            NULL);
    g_assert_cmpint(bad.status, ==, 1);
    testAssertOneLineError(&bad, "513");

    testRun(&offline, "-c", uri, "migrate", "--confidential", "--offline",
            "configured", "test:///default", NULL);
    g_assert_cmpint(offline.status, ==, 1);
    testAssertOneLineError(&offline, "'--offline' is refused");

    testRun(&args, "-c", uri, "migrate", "--confidential", "configured", NULL);
    g_assert_cmpint(args.status, ==, 2);
    testAssertOneLineError(&args, "DESTURI");

    /* --parallel-connections states the agents' streams: <coco:streams>. */
    testRun(&streams, "-c", uri, "migrate", "--confidential",
            "--parallel-connections", "2", "plainqemu", "test:///default",
            NULL);
    g_assert_cmpint(streams.status, ==, 1);
    testAssertOneLineError(&streams, "forward='4'");
}

static void
testMigrateNoAgent(void)
{
    g_autofree char *uri = testNodeUri();
    g_auto(TestRun) run = {0};
    g_auto(TestRun) env = {0};
    g_auto(TestRun) json = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *obj;
    JsonObject *err;

    testRun(&run, "-c", uri, "migrate", "--confidential", "--live",
            "configured", "test:///default", "--agent-socket",
            "/nonexistent/agent.sock", NULL);
    g_assert_cmpint(run.status, ==, 1);
    g_assert_cmpstr(run.out, ==, "");
    testAssertOneLineError(&run, "source host's agent is not reachable at "
                                 "'/nonexistent/agent.sock'");

    /* The lab's variable names the socket too. */
    g_setenv("VIRT_COCO_AGENT_SOCKET", "/nonexistent/env.sock", TRUE);
    testRun(&env, "-c", uri, "migrate", "--confidential", "configured",
            "test:///default", NULL);
    g_unsetenv("VIRT_COCO_AGENT_SOCKET");
    g_assert_cmpint(env.status, ==, 1);
    testAssertOneLineError(&env, "'/nonexistent/env.sock'");

    /* --json: the error is the result line. */
    testRun(&json, "-c", uri, "--json", "migrate", "--confidential",
            "configured", "test:///default", "--agent-socket",
            "/nonexistent/agent.sock", NULL);
    g_assert_cmpint(json.status, ==, 1);
    obj = testResult(parser, json.out);
    g_assert_false(json_object_get_boolean_member(obj, "ok"));
    err = json_object_get_object_member(obj, "error");
    g_assert_cmpstr(json_object_get_string_member(err, "nick"), ==, "system");
    g_assert_cmpint(json_object_get_int_member(err, "code"), ==, 4);
    g_assert_nonnull(
        strstr(json_object_get_string_member(err, "message"), "not reachable"));
}

/* With real agents (one virtcocod plays both hosts): the preflight gets
 * past both agents and refuses on the policy or the emulator. */
static void
testMigratePreflight(void)
{
    g_autofree char *uri = testNodeUri();
    g_auto(TestRun) policy = {0};
    g_auto(TestRun) emulator = {0};
    g_auto(TestRun) nodest = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    CocoTestAgent a = {0};
    JsonObject *obj;

    cocoTestAgentStart(&a, "virtcocotest");

    /* "configured" wants TCB module SVN 1; a fresh platform has 0. */
    testRun(&policy, "-c", uri, "--json", "migrate", "--confidential",
            "configured", "test:///default", "tcp:127.0.0.1", "--agent-socket",
            a.sock, NULL);
    g_assert_cmpint(policy.status, ==, 1);
    testAssertOneLineError(&policy, "policy refuses the destination");
    g_assert_nonnull(strstr(policy.err, "below the minimum 1"));
    obj = testResult(parser, policy.out);
    g_assert_cmpstr(json_object_get_string_member(
                        json_object_get_object_member(obj, "error"), "nick"),
                    ==, "fw-policy");

    /* The policy accepts the host; the emulator is not qemu-coco. */
    testRun(&emulator, "-c", uri, "migrate", "--confidential",
            "--parallel-connections", "4", "plainqemu", "test:///default",
            "--migrateuri", "tcp://127.0.0.1:49152", "--agent-socket", a.sock,
            NULL);
    g_assert_cmpint(emulator.status, ==, 1);
    testAssertOneLineError(&emulator, "not qemu-coco");

    /* No agent where the destination's migration address points. */
    testRun(&nodest, "-c", uri, "migrate", "--confidential", "plainqemu",
            "test:///default", "tcp:127.0.0.2", "--agent-socket", a.sock, NULL);
    g_assert_cmpint(nodest.status, ==, 1);
    testAssertOneLineError(&nodest,
                           "destination host's agent on '127.0.0.2' is not "
                           "reachable");

    cocoTestAgentStop(&a);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_assert_nonnull(g_getenv("VIRT_COCO"));
    g_test_add_func("/virt-coco/version", testVersion);
    g_test_add_func("/virt-coco/usage", testUsage);
    g_test_add_func("/virt-coco/validate/example", testValidateExample);
    g_test_add_func("/virt-coco/validate/json", testValidateJson);
    g_test_add_func("/virt-coco/validate/rejects", testValidateRejects);
    g_test_add_func("/virt-coco/validate/domain", testValidateDomain);
    g_test_add_func("/virt-coco/metadata/get", testMetadataGet);
    g_test_add_func("/virt-coco/metadata/set", testMetadataSet);
    g_test_add_func("/virt-coco/metadata/no-domain", testMetadataNoDomain);
    g_test_add_func("/virt-coco/capabilities", testCapabilities);
    g_test_add_func("/virt-coco/vfio/check", testVfioCheck);
    g_test_add_func("/virt-coco/migrate/refusals", testMigrateRefusals);
    g_test_add_func("/virt-coco/migrate/no-agent", testMigrateNoAgent);
    g_test_add_func("/virt-coco/migrate/preflight", testMigratePreflight);
    return g_test_run();
}
