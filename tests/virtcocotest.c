/*
 * virtcocotest.c: the virt-coco command line, run as a user would run it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case runs the built binary ($VIRT_COCO) and checks its exit code,
 * that errors are one line "error: ..." on stderr, and the JSON on stdout.
 * libvirt is reached through its real test driver, with a node file from
 * tests/virtcocodata/ (each run of the tool sees it afresh). Real agents
 * ($VIRTCOCOD) answer where a case needs them: two of them, with
 * stand-ins for the domain's QEMU and relays, run a real confidential
 * migration (the agents' part of it) for list, status and timeline. Every
 * JSON line any case printed is validated against
 * docs/virt-coco-json.schema.json by the last case.
 */

#include "internal.h"
#include "cocotestrun.h"

#include "cocotestagent.h"

#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>

/* Every JSON output of the cases, for the schema check at the end. */
static GString *jsonLines;

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

static void
testRunV(TestRun *run, GPtrArray *argv)
{
    bool json = false;
    guint i;

    g_ptr_array_add(argv, NULL);
    testRunArgv(run, (const char *const *)argv->pdata, NULL, NULL);
    for (i = 1; argv->pdata[i]; i++) {
        if (STREQ((char *)argv->pdata[i], "--json"))
            json = true;
    }
    if (json) {
        g_autofree char *label = g_strjoinv(" ", (char **)argv->pdata + 1);

        g_string_append_printf(jsonLines, "# %s\n%s",
                               g_strdelimit(label, "\n", ' '), run->out);
    }
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
    testRunV(run, argv);
}

/* The same with the arguments of a NULL-terminated array. */
static void
testRunStrv(TestRun *run, const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    size_t i;

    g_ptr_array_add(argv, (gpointer)g_getenv("VIRT_COCO"));
    for (i = 0; args[i]; i++)
        g_ptr_array_add(argv, (gpointer)args[i]);
    testRunV(run, argv);
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
    g_assert_nonnull(strstr(help.out, "validate FILE | --domain NAME"));

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
        /* One error shape: an integer code and its nick. */
        g_assert_cmpint(json_object_get_int_member(err, "code"), >, 0);
        if (cases[i].nick)
            g_assert_cmpstr(json_object_get_string_member(err, "nick"), ==,
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
    g_assert_cmpstr(json_object_get_string_member(err, "nick"), ==, "libvirt");
    g_assert_cmpint(json_object_get_int_member(err, "code"), ==, 5);
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

/* The nick of the error of @run's "result" event. */
static char *
testResultNick(const TestRun *run)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *obj = testResult(parser, run->out);
    JsonObject *err = json_object_get_object_member(obj, "error");

    g_assert_false(json_object_get_boolean_member(obj, "ok"));
    g_assert_nonnull(err);
    g_assert_cmpint(json_object_get_int_member(err, "code"), >, 0);
    return g_strdup(json_object_get_string_member(err, "nick"));
}

/* Options refused or wrong before any host is asked: each with its exit
 * code, one line "error: ..." naming the option and why, and (with
 * --json) the error as the "result" event. */
static void
testMigrateOptions(void)
{
    static const struct {
        const char *args[8];
        int status;
        const char *nick;
        const char *needle;
    } cases[] = {
        /* without --confidential: refused, pointing to virsh */
        {{"--live", "configured", "test:///default"},
         1,
         "not-supported",
         "'virsh migrate'"},
        /* virsh's option rules, virsh's words */
        {{"--confidential", "--frob", "configured", "test:///default"},
         2,
         "usage",
         "command 'migrate' doesn't support option '--frob'"},
        {{"--confidential", "configured", "test:///default", "--timeout"},
         2,
         "usage",
         "expected syntax: '--timeout N'"},
        {{"--confidential", "--timeout", "abc", "configured", "x"},
         2,
         "usage",
         "numeric value 'abc' for option '--timeout'"},
        {{"--confidential", "--live", "--live", "configured", "x"},
         2,
         "usage",
         "option '--live' already seen"},
        {{"--confidential", "--live=yes", "configured", "x"},
         2,
         "usage",
         "option '--live' takes no value"},
        {{"--confidential", "configured"}, 2, "usage", "DESTURI"},
        {{"--confidential", "--desturi", "x"}, 2, "usage", "DOMAIN"},
        {{"--confidential", "a", "b", "c", "d"},
         2,
         "usage",
         "unexpected data 'd'"},
        {{"--confidential", "--live", "--offline", "a", "b"},
         2,
         "usage",
         "options '--live' and '--offline' are mutually exclusive"},
        {{"--confidential", "--p2p", "--direct", "a", "b"},
         2,
         "usage",
         "options '--p2p' and '--direct' are mutually exclusive"},
        {{"--confidential", "--persistent-xml", "f", "a", "b"},
         2,
         "usage",
         "option '--persistent' is required by option '--persistent-xml'"},
        {{"--confidential", "--tls-destination", "h", "a", "b"},
         2,
         "usage",
         "option '--tls' is required by option '--tls-destination'"},
        {{"--confidential", "--postcopy-after-precopy", "a", "b"},
         2,
         "usage",
         "option '--postcopy' is required by option '--postcopy-after-precopy'"},
        {{"--confidential", "--timeout-postcopy", "--timeout", "5", "--live",
          "a", "b"},
         2,
         "usage",
         "option '--postcopy' is required by option '--timeout-postcopy'"},
        {{"--confidential", "--timeout-suspend", "--timeout-postcopy",
          "--postcopy", "a", "b"},
         2,
         "usage",
         "mutually exclusive"},
        {{"--confidential", "--timeout", "5", "a", "b"},
         2,
         "usage",
         "option '--timeout' needs '--live'"},
        {{"--confidential", "--timeout-suspend", "--live", "a", "b"},
         2,
         "usage",
         "need '--timeout'"},
        {{"--confidential", "--bandwidth", "-5", "a", "b"},
         2,
         "usage",
         "numeric value '-5' for option '--bandwidth'"},
        /* modes a confidential migration cannot honour: the mode, why,
         * the alternative */
        {{"--confidential", "--offline", "configured", "test:///default"},
         1,
         "not-supported",
         "'--offline' (VIR_MIGRATE_OFFLINE) is refused: an offline migration"},
        {{"--confidential", "--tunnelled", "configured", "test:///default"},
         1,
         "not-supported",
         "tunnelled migration carries guest RAM through libvirt's stream; use the default direct or --p2p mode"},
        {{"--confidential", "--copy-storage-all", "configured",
          "test:///default"},
         1,
         "not-supported",
         "'--copy-storage-all' (VIR_MIGRATE_NON_SHARED_DISK) is refused: non-shared storage migration is not supported for confidential domains"},
        {{"--confidential", "--copy-storage-inc", "a", "b"},
         1,
         "not-supported",
         "'--copy-storage-inc'"},
        {{"--confidential", "--copy-storage-synchronous-writes", "a", "b"},
         1,
         "not-supported",
         "'--copy-storage-synchronous-writes'"},
        {{"--confidential", "--migrate-disks", "vda", "a", "b"},
         1,
         "not-supported",
         "'--migrate-disks' (migrate_disks) is refused"},
        {{"--confidential", "--disks-port", "5000", "a", "b"},
         1,
         "not-supported",
         "'--disks-port'"},
        {{"--confidential", "--disks-uri", "tcp://x", "a", "b"},
         1,
         "not-supported",
         "'--disks-uri'"},
        {{"--confidential", "--rdma-pin-all", "a", "b"},
         1,
         "not-supported",
         "RDMA"},
        {{"--confidential", "--postcopy-resume", "a", "b"},
         1,
         "not-supported",
         "no failed post-copy migration is left to resume"},
        {{"--confidential", "--direct", "a", "b"},
         1,
         "not-supported",
         "'--direct' is refused"},
        {{"--confidential", "--xml", "/nonexistent/dest.xml", "a", "b"},
         1,
         "system",
         "'/nonexistent/dest.xml'"},
    };
    g_autofree char *uri = testNodeUri();
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *args[16] = {"-c", uri, "--json", "migrate"};
        g_auto(TestRun) run = {0};
        g_autofree char *nick = NULL;
        size_t n = 4;
        size_t k;

        for (k = 0; cases[i].args[k]; k++)
            args[n++] = cases[i].args[k];
        testRunStrv(&run, args);
        g_assert_cmpint(run.status, ==, cases[i].status);
        testAssertOneLineError(&run, cases[i].needle);
        /* never GLib's words or quotes */
        g_assert_null(strstr(run.err, "Unknown option"));
        g_assert_null(strstr(run.err, "\xe2\x80\x9c"));
        nick = testResultNick(&run);
        g_assert_cmpstr(nick, ==, cases[i].nick);
    }
}

/* The options virsh 9.0's "migrate" has (virsh help migrate, 47 with
 * --domain and --desturi). */
static const char *const testVirshMigrateOptions[] = {
    "domain",
    "desturi",
    "live",
    "offline",
    "p2p",
    "direct",
    "tunnelled",
    "persistent",
    "undefinesource",
    "suspend",
    "copy-storage-all",
    "copy-storage-inc",
    "copy-storage-synchronous-writes",
    "change-protection",
    "unsafe",
    "verbose",
    "compressed",
    "auto-converge",
    "rdma-pin-all",
    "abort-on-error",
    "postcopy",
    "postcopy-after-precopy",
    "postcopy-resume",
    "zerocopy",
    "migrateuri",
    "graphicsuri",
    "listen-address",
    "dname",
    "timeout",
    "timeout-suspend",
    "timeout-postcopy",
    "xml",
    "migrate-disks",
    "disks-port",
    "disks-uri",
    "comp-methods",
    "comp-mt-level",
    "comp-mt-threads",
    "comp-mt-dthreads",
    "comp-xbzrle-cache",
    "auto-converge-initial",
    "auto-converge-increment",
    "persistent-xml",
    "tls",
    "postcopy-bandwidth",
    "parallel",
    "parallel-connections",
    "bandwidth",
    "tls-destination",
    NULL};

/* Every option of virsh's "migrate" is known to virt-coco's (supported or
 * refused with its reason, never "doesn't support"): the list above, and
 * the installed virsh's own list when there is one. */
static void
testMigrateVirshParity(void)
{
    g_auto(TestRun) help = {0};
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *virsh = g_find_program_in_path("virsh");
    guint i;

    for (i = 0; testVirshMigrateOptions[i]; i++)
        g_ptr_array_add(names, g_strdup(testVirshMigrateOptions[i]));
    g_assert_cmpuint(names->len, ==, 49);
    if (virsh) {
        const char *argv[] = {virsh,  "-c",      "test:///default",
                              "help", "migrate", NULL};
        g_auto(TestRun) vh = {0};
        g_auto(GStrv) lines = NULL;
        guint seen = 0;

        testRunArgv(&vh, argv, NULL, NULL);
        g_assert_cmpint(vh.status, ==, 0);
        lines = g_strsplit(vh.out, "\n", -1);
        for (i = 0; lines[i]; i++) {
            const char *l = g_strstrip(lines[i]);
            g_autofree char *name = NULL;

            if (g_str_has_prefix(l, "[--"))
                l++;
            if (!g_str_has_prefix(l, "--"))
                continue;
            name = g_strndup(l + 2, strcspn(l + 2, " ]"));
            seen++;
            if (!g_ptr_array_find_with_equal_func(names, name, g_str_equal,
                                                  NULL))
                g_ptr_array_add(names, g_steal_pointer(&name));
        }
        g_test_message("virsh help migrate: %u options", seen);
        g_assert_cmpuint(seen, >=, 47);
    }
    testRun(&help, "migrate", "--help", NULL);
    g_assert_cmpint(help.status, ==, 0);
    /* The usage line names the command after the global options. */
    g_assert_nonnull(strstr(help.out, "Usage: virt-coco [-c URI] [--json] "
                                      "migrate --confidential [OPTION...]"));
    for (i = 0; i < names->len; i++) {
        g_autofree char *opt =
            g_strdup_printf("  --%s ", (char *)g_ptr_array_index(names, i));

        if (!strstr(help.out, opt))
            g_test_message("missing from 'migrate --help': %s", opt);
        g_assert_nonnull(strstr(help.out, opt));
    }
}

static void
testMigrateRefusals(void)
{
    g_autofree char *uri = testNodeUri();
    g_auto(TestRun) plain = {0};
    g_auto(TestRun) bad = {0};
    g_auto(TestRun) streams = {0};
    g_auto(TestRun) named = {0};
    g_auto(TestRun) emulator = {0};

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

    /* --parallel-connections states the agents' streams: <coco:streams>. */
    testRun(&streams, "-c", uri, "migrate", "--confidential",
            "--parallel-connections", "2", "plainqemu", "test:///default",
            NULL);
    g_assert_cmpint(streams.status, ==, 1);
    testAssertOneLineError(&streams, "forward='4'");

    /* The named forms, as virsh takes them. */
    testRun(&named, "-c", uri, "migrate", "--confidential", "--desturi",
            "test:///default", "--domain", "plain", NULL);
    g_assert_cmpint(named.status, ==, 1);
    testAssertOneLineError(&named, "domain 'plain' has no <coco:migration>");

    /* Not qemu-coco: its memory would go in QEMU's clear stream. */
    testRun(&emulator, "-c", uri, "migrate", "--confidential",
            "--parallel-connections", "4", "plainqemu", "test:///default",
            NULL);
    g_assert_cmpint(emulator.status, ==, 1);
    testAssertOneLineError(&emulator, "not qemu-coco");
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

    testRun(&run, "-c", uri, "migrate", "--confidential", "--live", "cocook",
            "test:///default", "--agent-socket", "/nonexistent/agent.sock",
            NULL);
    g_assert_cmpint(run.status, ==, 1);
    g_assert_cmpstr(run.out, ==, "");
    testAssertOneLineError(&run, "source host's agent is not reachable at "
                                 "'/nonexistent/agent.sock'");

    /* The lab's variable names the socket too. */
    g_setenv("VIRT_COCO_AGENT_SOCKET", "/nonexistent/env.sock", TRUE);
    testRun(&env, "-c", uri, "migrate", "--confidential", "cocook",
            "test:///default", NULL);
    g_unsetenv("VIRT_COCO_AGENT_SOCKET");
    g_assert_cmpint(env.status, ==, 1);
    testAssertOneLineError(&env, "'/nonexistent/env.sock'");

    /* --json: the error is the result line. */
    testRun(&json, "-c", uri, "--json", "migrate", "--confidential", "cocook",
            "test:///default", "--agent-socket", "/nonexistent/agent.sock",
            NULL);
    g_assert_cmpint(json.status, ==, 1);
    obj = testResult(parser, json.out);
    g_assert_false(json_object_get_boolean_member(obj, "ok"));
    g_assert_true(json_object_get_null_member(obj, "bytes"));
    err = json_object_get_object_member(obj, "error");
    g_assert_cmpstr(json_object_get_string_member(err, "nick"), ==, "system");
    g_assert_cmpint(json_object_get_int_member(err, "code"), ==, 4);
    g_assert_nonnull(
        strstr(json_object_get_string_member(err, "message"), "not reachable"));
}

/* ---- two agents, stand-in QEMUs and relays ------------------------------ */

#define TEST_UUID_OK "5f2e3d4c-5b6a-4789-8a9b-0c1d2e3f4a5b"
#define TEST_UUID_POLICY "6f2e3d4c-5b6a-4789-8a9b-0c1d2e3f4a5b"
#define TEST_RAM (1024 * 1024)

typedef struct {
    CocoTestAgent a; /* the source host's agent */
    CocoTestAgent b; /* the destination host's agent */
    pid_t qa;
    pid_t qb;
    pid_t qpolicy;
    CocoTestRelay ra;
    CocoTestRelay rb;
    CocoTestRelay rpolicy;
    char *rama;
    char *ramb;
} TestHosts;

static void
testHostsRam(const char *path, bool fill)
{
    g_autofree char *buf = g_malloc0(TEST_RAM);
    size_t i;

    for (i = 0; fill && i < TEST_RAM; i++)
        buf[i] = (char)(i * 7 + i / 4096 + 1);
    g_assert_true(g_file_set_contents(path, buf, TEST_RAM, NULL));
}

/* The port the agent at @sock listens on for peers. */
static char *
testAgentPort(const char *sock)
{
    CocoTestRelay r = {.fd = -1};
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autofree char *line = NULL;
    JsonObject *obj;

    cocoTestRelayConnect(&r, sock);
    cocoTestRelaySend(&r, "{\"type\":\"probe\"}");
    line = cocoTestRelayReadMatch(&r, "\"probe\"");
    cocoTestRelayClose(&r);
    g_assert_nonnull(line);
    obj = testParseJson(parser, line);
    return g_strdup_printf("%" G_GINT64_FORMAT,
                           json_object_get_int_member(obj, "port"));
}

/* A relay that said hello for @name (@uuid) with the RAM file @ram (NULL:
 * none) of QEMU @qemu, and was welcomed. */
static void
testRelayHello(CocoTestRelay *r, const char *sock, pid_t qemu, const char *name,
               const char *uuid, const char *ram)
{
    g_autofree char *hello = NULL;
    g_autofree char *answer = NULL;

    if (ram)
        hello = g_strdup_printf(
            "{\"type\":\"hello\",\"version\":1,\"pid\":%d,\"name\":\"%s\","
            "\"uuid\":\"%s\",\"vcpus\":1,\"ram\":[{\"id\":\"pc.ram\","
            "\"path\":\"%s\",\"size\":%d,\"share\":true}]}",
            (int)qemu, name, uuid, ram, TEST_RAM);
    else
        hello = g_strdup_printf(
            "{\"type\":\"hello\",\"version\":1,\"pid\":%d,\"name\":\"%s\","
            "\"uuid\":\"%s\",\"vcpus\":1}",
            (int)qemu, name, uuid);
    cocoTestRelayConnect(r, sock);
    cocoTestRelaySend(r, hello);
    answer = cocoTestRelayReadLine(r);
    g_assert_nonnull(answer);
    g_assert_nonnull(strstr(answer, "\"welcome\""));
}

/* Two agents on loopback, each with the other's port as its peers'. */
static void
testHostsStart(TestHosts *h)
{
    g_autofree char *bport = NULL;
    g_autofree char *aport = NULL;
    g_autofree char *aextra = NULL;
    g_autofree char *bextra = NULL;

    memset(h, 0, sizeof(*h));
    h->ra.fd = h->rb.fd = h->rpolicy.fd = -1;
    /* B once for a port of the kernel's choice, then again on that port
     * knowing A's. */
    cocoTestAgentStartConf(&h->b, "virtcocotest-B", NULL);
    bport = testAgentPort(h->b.sock);
    cocoTestAgentStop(&h->b);
    aextra = g_strdup_printf(
        "streams=2\npages_per_bundle=16\nprecopy_rounds=12\npeer_port=%s\n",
        bport);
    cocoTestAgentStartConf(&h->a, "virtcocotest-A", aextra);
    aport = testAgentPort(h->a.sock);
    bextra = g_strdup_printf(
        "streams=2\npages_per_bundle=16\nport=%s\npeer_port=%s\n", bport,
        aport);
    cocoTestAgentStartConf(&h->b, "virtcocotest-B", bextra);
}

/* The stand-in QEMUs of "cocook" on both hosts, "cocopolicy" on the
 * source, with their relays. */
static void
testHostsRelays(TestHosts *h)
{
    h->rama = g_build_filename(h->a.dir, "pc.ram", NULL);
    h->ramb = g_build_filename(h->b.dir, "pc.ram", NULL);
    testHostsRam(h->rama, true);
    testHostsRam(h->ramb, false);
    h->qa = cocoTestQemuStart("cocook", TEST_UUID_OK, h->rama, h->a.piddir);
    h->qb = cocoTestQemuStart("cocook", TEST_UUID_OK, h->ramb, h->b.piddir);
    h->qpolicy =
        cocoTestQemuStart("cocopolicy", TEST_UUID_POLICY, NULL, h->a.piddir);
    testRelayHello(&h->ra, h->a.sock, h->qa, "cocook", TEST_UUID_OK, h->rama);
    testRelayHello(&h->rb, h->b.sock, h->qb, "cocook", TEST_UUID_OK, h->ramb);
    testRelayHello(&h->rpolicy, h->a.sock, h->qpolicy, "cocopolicy",
                   TEST_UUID_POLICY, NULL);
}

static void
testHostsStop(TestHosts *h)
{
    cocoTestRelayClose(&h->ra);
    cocoTestRelayClose(&h->rb);
    cocoTestRelayClose(&h->rpolicy);
    cocoTestQemuStop(&h->qa);
    cocoTestQemuStop(&h->qb);
    cocoTestQemuStop(&h->qpolicy);
    cocoTestAgentStop(&h->a);
    cocoTestAgentStop(&h->b);
    g_free(h->rama);
    g_free(h->ramb);
}

/* Ask @gate of the agent behind @r and wait for its verdict (progress
 * lines before it are dropped): true when released. */
static bool
testGate(CocoTestRelay *r, const char *gate, const char *role, int id)
{
    g_autofree char *line = g_strdup_printf(
        "{\"type\":\"gate\",\"id\":%d,\"gate\":\"%s\",\"role\":\"%s\"}", id,
        gate, role);
    g_autofree char *want = g_strdup_printf("\"id\":%d,", id);

    cocoTestRelaySend(r, line);
    for (;;) {
        g_autofree char *answer = cocoTestRelayReadMatch(r, "\"verdict\"");

        g_assert_nonnull(answer);
        if (strstr(answer, want))
            return strstr(answer, "\"release\":true") != NULL;
    }
}

/* virt-coco status --json of @key at @sock: the local record's state. */
static char *
testStatusState(const char *sock, const char *key)
{
    g_auto(TestRun) run = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *obj;

    testRun(&run, "--json", "status", "--agent-socket", sock, key, NULL);
    g_assert_cmpint(run.status, ==, 0);
    obj = testParseJson(parser, run.out);
    return g_strdup(json_object_get_string_member(
        json_object_get_object_member(obj, "migration"), "state"));
}

static void
testWaitState(const char *sock, const char *key, const char *want)
{
    gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

    for (;;) {
        g_autofree char *state = testStatusState(sock, key);

        if (STREQ(state, want))
            return;
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(20 * 1000);
    }
}

/* Every JSON number with a fraction in @out has exactly three decimals
 * (a number follows ':', ',' or '[' and ends at ',', ']' or '}'). */
static void
testAssertFixedDecimals(const char *out)
{
    g_autoptr(GRegex) re =
        g_regex_new("[:,\\[]-?[0-9]+\\.([0-9]+)[,\\]}]", 0, 0, NULL);
    g_autoptr(GMatchInfo) mi = NULL;

    g_regex_match(re, out, 0, &mi);
    while (g_match_info_matches(mi)) {
        g_autofree char *frac = g_match_info_fetch(mi, 1);

        g_assert_cmpuint(strlen(frac), ==, 3);
        g_match_info_next(mi, NULL);
    }
}

/* The preflight with real agents, each refusal before libvirt is called;
 * then the whole driver up to libvirt's call (the test driver cannot
 * migrate). */
static void
testMigratePreflight(TestHosts *h)
{
    g_autofree char *uri = testNodeUri();
    g_auto(TestRun) relay = {0};
    g_auto(TestRun) policy = {0};
    g_auto(TestRun) nodest = {0};
    g_auto(TestRun) libvirt = {0};
    g_auto(TestRun) list = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(JsonParser) lparser = json_parser_new();
    JsonObject *obj;
    JsonObject *err;

    /* Fail closed: the domain's relay is not connected to this agent. */
    testRun(&relay, "-c", uri, "--json", "migrate", "--confidential", "cocook",
            "test:///default", "tcp:127.0.0.1", "--agent-socket", h->a.sock,
            NULL);
    g_assert_cmpint(relay.status, ==, 1);
    testAssertOneLineError(&relay,
                           "the relay of domain 'cocook' ('" TEST_UUID_OK
                           "') is not connected to this host's agent");
    obj = testResult(parser, relay.out);
    err = json_object_get_object_member(obj, "error");
    g_assert_cmpstr(json_object_get_string_member(err, "nick"), ==,
                    "qmp-agent");

    testHostsRelays(h);

    /* "cocopolicy" wants TCB module SVN 1; a fresh platform has 0. */
    testRun(&policy, "-c", uri, "migrate", "--confidential", "cocopolicy",
            "test:///default", "tcp:127.0.0.1", "--agent-socket", h->a.sock,
            NULL);
    g_assert_cmpint(policy.status, ==, 1);
    testAssertOneLineError(&policy, "policy refuses the destination");
    g_assert_nonnull(strstr(policy.err, "below the minimum 1"));

    /* No agent where the destination's migration address points: this
     * host's agent probed it ("peer-probe"). */
    testRun(&nodest, "-c", uri, "migrate", "--confidential", "--live", "cocook",
            "test:///default", "--migrateuri", "tcp:127.0.0.2",
            "--agent-socket", h->a.sock, NULL);
    g_assert_cmpint(nodest.status, ==, 1);
    testAssertOneLineError(&nodest,
                           "destination host's agent on '127.0.0.2' is not "
                           "reachable");

    /* Every check passes: libvirt is called, and the test driver cannot
     * migrate; its error is the result, and no agent record is made. */
    testRun(&libvirt, "-c", uri, "--json", "migrate", "--confidential",
            "--live", "--verbose", "--timeline", "--tls", "--postcopy",
            "--auto-converge", "--compressed", "--bandwidth", "100", "--dname",
            "moved", "--parallel-connections", "2", "cocook", "test:///default",
            "tcp:127.0.0.1", "--agent-socket", h->a.sock, NULL);
    g_assert_cmpint(libvirt.status, ==, 1);
    testAssertOneLineError(&libvirt, "not supported");
    obj = testResult(parser, libvirt.out);
    err = json_object_get_object_member(obj, "error");
    g_assert_cmpstr(json_object_get_string_member(err, "nick"), ==, "libvirt");
    g_assert_cmpint(json_object_get_int_member(err, "libvirt_code"), >, 0);
    g_assert_true(json_object_get_null_member(obj, "migration"));
    g_assert_cmpint(json_object_get_int_member(obj, "total_ms"), >=, 0);

    testRun(&list, "--json", "list", "--agent-socket", h->a.sock, NULL);
    g_assert_cmpint(list.status, ==, 0);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(
                         testParseJson(lparser, list.out), "migrations")),
                     ==, 0);
}

/* The agents' part of a confidential migration of "cocook", driven
 * through the relays as qemu-coco drives it; "list" while it runs. */
static void
testAgentsMigrate(TestHosts *h)
{
    g_auto(TestRun) active = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *mig;
    JsonObject *view;
    JsonArray *arr;

    cocoTestRelaySend(
        &h->rb, "{\"type\":\"event\",\"event\":\"migrate-incoming\","
                "\"data\":{\"role\":\"destination\",\"job\":\"migration\","
                "\"uri\":\"tcp:127.0.0.1:49152\",\"x-ignore-shared\":true}}");
    cocoTestRelaySend(&h->ra,
                      "{\"type\":\"event\",\"event\":\"migrate\",\"data\":"
                      "{\"role\":\"source\",\"job\":\"migration\",\"uri\":"
                      "\"fd:migrate\",\"peer\":\"127.0.0.1:49152\","
                      "\"x-ignore-shared\":true}}");
    /* `migrate` is released after the precopy rounds. */
    g_assert_true(testGate(&h->ra, "migrate", "source", 1));

    /* In flight: this host's record and the peer's view of the session. */
    testRun(&active, "--json", "list", "--active", "--agent-socket", h->a.sock,
            NULL);
    g_assert_cmpint(active.status, ==, 0);
    arr = json_object_get_array_member(testParseJson(parser, active.out),
                                       "migrations");
    g_assert_cmpuint(json_array_get_length(arr), ==, 1);
    mig = json_array_get_object_element(arr, 0);
    g_assert_cmpstr(json_object_get_string_member(mig, "role"), ==, "source");
    g_assert_cmpstr(json_object_get_string_member(mig, "state"), ==, "precopy");
    g_assert_true(json_object_get_boolean_member(mig, "in_flight"));
    g_assert_cmpint(json_object_get_int_member(mig, "progress"), ==, 99);
    view = json_object_get_object_member(mig, "peer_view");
    g_assert_cmpstr(json_object_get_string_member(view, "host"), ==,
                    "127.0.0.1");
    g_assert_true(json_object_get_null_member(view, "error"));
    g_assert_cmpstr(json_object_get_string_member(
                        json_object_get_object_member(view, "record"), "role"),
                    ==, "destination");
    g_assert_cmpstr(
        json_object_get_string_member(
            json_object_get_object_member(view, "record"), "session"),
        ==, json_object_get_string_member(mig, "session"));

    g_assert_true(testGate(&h->ra, "pre-switchover", "source", 2));
    g_assert_true(testGate(&h->rb, "cont", "destination", 1));
    testWaitState(h->a.sock, "cocook", "committed");
    /* Confirm: libvirt ends the source's QEMU. */
    cocoTestQemuStop(&h->qa);
    testWaitState(h->a.sock, "cocook", "finished");
}

static void
testAgentsList(TestHosts *h)
{
    g_auto(TestRun) text = {0};
    g_auto(TestRun) json = {0};
    g_auto(TestRun) active = {0};
    g_auto(TestRun) extra = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(JsonParser) aparser = json_parser_new();
    JsonArray *arr;
    JsonObject *mig;

    testRun(&text, "list", "--agent-socket", h->a.sock, NULL);
    g_assert_cmpint(text.status, ==, 0);
    g_assert_nonnull(strstr(text.out, "cocook-source-"));
    g_assert_nonnull(strstr(text.out, "finished"));

    testRun(&json, "--json", "list", "--agent-socket", h->a.sock, NULL);
    g_assert_cmpint(json.status, ==, 0);
    arr = json_object_get_array_member(testParseJson(parser, json.out),
                                       "migrations");
    g_assert_cmpuint(json_array_get_length(arr), ==, 1);
    mig = json_array_get_object_element(arr, 0);
    g_assert_cmpstr(json_object_get_string_member(mig, "state"), ==,
                    "finished");
    g_assert_false(json_object_get_boolean_member(mig, "in_flight"));
    g_assert_cmpint(json_object_get_int_member(mig, "progress"), ==, 100);
    g_assert_cmpint(json_object_get_int_member(mig, "bytes"), >, TEST_RAM);
    /* The peer is asked only about migrations in flight. */
    g_assert_true(json_object_get_null_member(mig, "peer_view"));

    testRun(&active, "--json", "list", "--active", "--agent-socket", h->a.sock,
            NULL);
    g_assert_cmpint(active.status, ==, 0);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(
                         testParseJson(aparser, active.out), "migrations")),
                     ==, 0);

    testRun(&extra, "list", "now", NULL);
    g_assert_cmpint(extra.status, ==, 2);
    testAssertOneLineError(&extra, "unexpected data 'now'");
}

static void
testAgentsStatus(TestHosts *h)
{
    g_auto(TestRun) json = {0};
    g_auto(TestRun) text = {0};
    g_auto(TestRun) missing = {0};
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *obj;
    JsonObject *mig;
    JsonObject *peer;
    JsonObject *prec;
    g_autofree char *bid = NULL;

    testRun(&json, "--json", "status", "--agent-socket", h->a.sock, "cocook",
            NULL);
    g_assert_cmpint(json.status, ==, 0);
    testAssertFixedDecimals(json.out);
    obj = testParseJson(parser, json.out);
    mig = json_object_get_object_member(obj, "migration");
    peer = json_object_get_object_member(obj, "peer");
    prec = json_object_get_object_member(peer, "record");
    g_assert_cmpstr(json_object_get_string_member(mig, "state"), ==,
                    "finished");
    g_assert_cmpuint(
        json_array_get_length(json_object_get_array_member(mig, "samples")), >=,
        2);
    g_assert_nonnull(prec);
    g_assert_cmpstr(json_object_get_string_member(prec, "role"), ==,
                    "destination");
    g_assert_cmpstr(json_object_get_string_member(prec, "state"), ==,
                    "committed");
    g_assert_cmpstr(json_object_get_string_member(prec, "session"), ==,
                    json_object_get_string_member(mig, "session"));
    bid = g_strdup(json_object_get_string_member(prec, "id"));

    /* From the destination, by its own id: the source's view. */
    testRun(&text, "status", "--agent-socket", h->b.sock, bid, NULL);
    g_assert_cmpint(text.status, ==, 0);
    g_assert_nonnull(strstr(text.out, bid));
    g_assert_nonnull(strstr(text.out, "The peer agent's view:"));
    g_assert_nonnull(strstr(text.out, "cocook-source-"));
    g_assert_nonnull(strstr(text.out, "source-blackout"));

    testRun(&missing, "--json", "status", "--agent-socket", h->a.sock, "nosuch",
            NULL);
    g_assert_cmpint(missing.status, ==, 1);
    testAssertOneLineError(&missing, "has no record of a migration 'nosuch'");
}

/* The picture from both records, checked as XML (xmllint) and rendered
 * (rsvg-convert, when installed). */
static void
testAgentsTimeline(TestHosts *h)
{
    g_autofree char *svg = g_build_filename(h->a.dir, "timeline.svg", NULL);
    g_autofree char *svgb = g_build_filename(h->b.dir, "timeline.svg", NULL);
    g_autofree char *png = g_build_filename(h->a.dir, "timeline.png", NULL);
    g_autofree char *xmllint = g_find_program_in_path("xmllint");
    g_autofree char *rsvg = g_find_program_in_path("rsvg-convert");
    g_autofree char *text = NULL;
    g_autofree char *textb = NULL;
    g_auto(TestRun) run = {0};
    g_auto(TestRun) fromb = {0};
    g_auto(TestRun) none = {0};

    testRun(&run, "--json", "timeline", "--agent-socket", h->a.sock, "--svg",
            svg, "cocook", NULL);
    g_assert_cmpint(run.status, ==, 0);
    g_assert_cmpstr(run.err, ==, "");
    g_assert_true(g_file_get_contents(svg, &text, NULL, NULL));
    /* To look at it: VIRTCOCOTEST_TIMELINE=FILE keeps a copy. */
    if (g_getenv("VIRTCOCOTEST_TIMELINE"))
        g_assert_true(g_file_set_contents(g_getenv("VIRTCOCOTEST_TIMELINE"),
                                          text, -1, NULL));
    g_assert_true(g_str_has_prefix(text, "<?xml"));
    /* both lanes, the rounds, the blackout, bytes over time */
    g_assert_nonnull(strstr(text, ">source<"));
    g_assert_nonnull(strstr(text, ">destination<"));
    g_assert_nonnull(strstr(text, ">precopy<"));
    g_assert_nonnull(strstr(text, ">r1<"));
    g_assert_nonnull(strstr(text, "blackout "));
    g_assert_nonnull(strstr(text, "<polyline"));
    g_assert_null(strstr(text, "not available"));
    if (xmllint) {
        const char *argv[] = {xmllint, "--noout", svg, NULL};
        g_auto(TestRun) lint = {0};

        testRunArgv(&lint, argv, NULL, NULL);
        g_assert_cmpint(lint.status, ==, 0);
        g_assert_cmpstr(lint.err, ==, "");
    }

    /* From the destination's side: the same picture. */
    testRun(&fromb, "timeline", "--agent-socket", h->b.sock, "--svg", svgb,
            "cocook", NULL);
    g_assert_cmpint(fromb.status, ==, 0);
    g_assert_true(g_file_get_contents(svgb, &textb, NULL, NULL));
    g_assert_cmpstr(text, ==, textb);

    if (rsvg) {
        g_auto(TestRun) p = {0};
        g_autofree char *data = NULL;
        gsize len = 0;

        testRun(&p, "timeline", "--agent-socket", h->a.sock, "--png", png,
                "cocook", NULL);
        g_assert_cmpint(p.status, ==, 0);
        g_assert_true(g_file_get_contents(png, &data, &len, NULL));
        g_assert_cmpuint(len, >, 1000);
        g_assert_cmpmem(data, 8, "\x89PNG\r\n\x1a\n", 8);
    } else {
        g_test_message("rsvg-convert is not installed: no PNG rendered");
    }

    testRun(&none, "timeline", "--agent-socket", h->a.sock, "cocook", NULL);
    g_assert_cmpint(none.status, ==, 2);
    testAssertOneLineError(&none, "'--svg FILE' or '--png FILE'");
}

/* recover: of a migration whose outcome is decided, the state and the
 * agent's words (exit 0); of one this agent does not run, its error. */
static void
testAgentsRecover(TestHosts *h)
{
    g_auto(TestRun) status = {0};
    g_auto(TestRun) done = {0};
    g_auto(TestRun) json = {0};
    g_auto(TestRun) other = {0};
    g_auto(TestRun) usage = {0};
    g_autoptr(JsonParser) sparser = json_parser_new();
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autofree char *bid = NULL;
    JsonObject *ro;

    testRun(&status, "--json", "status", "--agent-socket", h->b.sock, "cocook",
            NULL);
    g_assert_cmpint(status.status, ==, 0);
    bid = g_strdup(json_object_get_string_member(
        json_object_get_object_member(testParseJson(sparser, status.out),
                                      "migration"),
        "id"));

    testRun(&done, "recover", "--agent-socket", h->b.sock, bid, NULL);
    g_assert_cmpint(done.status, ==, 0);
    g_assert_nonnull(strstr(done.out, bid));
    g_assert_nonnull(strstr(done.out, "committed: the destination committed"));

    testRun(&json, "--json", "recover", "--agent-socket", h->b.sock, bid, NULL);
    g_assert_cmpint(json.status, ==, 0);
    ro = json_object_get_object_member(testParseJson(parser, json.out),
                                       "recover");
    g_assert_cmpstr(json_object_get_string_member(ro, "migration"), ==, bid);
    g_assert_cmpstr(json_object_get_string_member(ro, "state"), ==,
                    "committed");
    g_assert_false(json_object_get_boolean_member(ro, "may_run"));

    /* A's agent runs no migration of that id (its QEMU ended). */
    testRun(&other, "--json", "recover", "--agent-socket", h->a.sock, bid,
            NULL);
    g_assert_cmpint(other.status, ==, 1);
    testAssertOneLineError(&other,
                           "with a running QEMU on this host to recover");

    testRun(&usage, "recover", "--agent-socket", h->a.sock, NULL);
    g_assert_cmpint(usage.status, ==, 2);
    testAssertOneLineError(&usage, "command 'recover' requires a migration ID");
}

static void
testAgents(void)
{
    TestHosts h;

    testHostsStart(&h);
    testMigratePreflight(&h);
    testAgentsMigrate(&h);
    testAgentsList(&h);
    testAgentsStatus(&h);
    testAgentsTimeline(&h);
    testAgentsRecover(&h);
    testHostsStop(&h);
}

/* Last: every JSON line printed above, against the documented schema. */
static void
testJsonSchema(void)
{
    const char *python = g_getenv("COCO_JSON_PYTHON");
    const char *check = g_getenv("COCO_JSON_CHECK");
    const char *schema = g_getenv("COCO_JSON_SCHEMA");
    g_autofree char *path = NULL;
    g_auto(TestRun) run = {0};
    int fd;

    if (!python || !*python) {
        g_test_skip("no python3 with python3-jsonschema");
        return;
    }
    fd = g_file_open_tmp("virtcocotest-XXXXXX.jsonl", &path, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    g_assert_true(g_file_set_contents(path, jsonLines->str,
                                      (gssize)jsonLines->len, NULL));
    {
        const char *argv[] = {python, check, schema, path, NULL};

        testRunArgv(&run, argv, NULL, NULL);
    }
    unlink(path);
    g_assert_cmpint(run.status, ==, 0);
    g_assert_nonnull(strstr(run.out, ", 0 invalid"));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_assert_nonnull(g_getenv("VIRT_COCO"));
    jsonLines = g_string_new(NULL);
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
    g_test_add_func("/virt-coco/migrate/options", testMigrateOptions);
    g_test_add_func("/virt-coco/migrate/virsh-parity", testMigrateVirshParity);
    g_test_add_func("/virt-coco/migrate/refusals", testMigrateRefusals);
    g_test_add_func("/virt-coco/migrate/no-agent", testMigrateNoAgent);
    g_test_add_func("/virt-coco/agents", testAgents);
    /* Last (a suite of its own, created last): the JSON of every case. */
    g_test_add_func("/virt-coco/schema/json", testJsonSchema);
    return g_test_run();
}
