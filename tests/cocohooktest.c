/*
 * cocohooktest.c: the libvirt qemu.d hook, run as libvirtd runs it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case runs the built hook ($COCO_HOOK) with libvirt's four
 * arguments and a domain of tests/cocohookdata/ on stdin, and checks its
 * exit status, that stdout stays empty (for "migrate begin" and "restore
 * begin" empty output means "XML unchanged") and that a refusal is one
 * line on stderr naming the reason. A real virtcocod ($VIRTCOCOD) answers
 * the probe where a case needs an agent.
 */

#include "internal.h"

#include "cocotestagent.h"
#include "cocotestrun.h"

#include <gio/gio.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run the hook as "50-libvirt-coco DOMAIN @op @subop -" with the domain
 * file @name on stdin and the agent socket @sock (NULL: none there). */
static void
testHook(TestRun *run, const char *name, const char *op, const char *subop,
         const char *sock)
{
    g_autofree char *file = g_strdup_printf("%s.xml", name);
    g_autofree char *path =
        g_build_filename(g_getenv("abs_srcdir"), "cocohookdata", file, NULL);
    g_autofree char *xml = NULL;
    const char *argv[] = {g_getenv("COCO_HOOK"), name, op, subop, "-", NULL};
    const char *env[] = {"LIBVIRT_COCO_HOOK_AGENT_SOCKET",
                         sock ? sock : "/nonexistent/agent.sock",
                         "LIBVIRT_COCO_HOOK_DEVROOT",
                         "/nonexistent",
                         "LC_ALL",
                         "C",
                         NULL};

    g_assert_true(g_file_get_contents(path, &xml, NULL, NULL));
    testRunArgv(run, argv, env, xml);
    g_test_message("%s %s %s: exit %d\nstdout: %s\nstderr: %s", name, op, subop,
                   run->status, run->out, run->err);
}

/* Let through: exit 0, nothing on stdout or stderr. */
static void
testAssertPassed(const TestRun *run)
{
    g_assert_cmpint(run->status, ==, 0);
    g_assert_cmpstr(run->out, ==, "");
    g_assert_cmpstr(run->err, ==, "");
}

/* Refused: exit 1, nothing on stdout, one line on stderr holding
 * @needle. */
static void
testAssertRefused(const TestRun *run, const char *needle)
{
    const char *nl = strchr(run->err, '\n');

    g_assert_cmpint(run->status, ==, 1);
    g_assert_cmpstr(run->out, ==, "");
    g_assert_true(g_str_has_prefix(run->err, "libvirt-coco: "));
    g_assert_nonnull(nl);
    g_assert_cmpstr(nl + 1, ==, "");
    g_assert_nonnull(strstr(run->err, needle));
}

/* A domain without <coco:migration> is none of the hook's business, for
 * every operation: exit 0, nothing printed, even without an agent. */
static void
testNotConfidential(void)
{
    const char *ops[][2] = {{"migrate", "begin"},
                            {"restore", "begin"},
                            {"prepare", "begin"},
                            {"start", "begin"},
                            {"release", "end"}};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(ops); i++) {
        g_auto(TestRun) run = {0};

        testHook(&run, "plain", ops[i][0], ops[i][1], NULL);
        testAssertPassed(&run);
    }
}

/* Operations the hook does not check let even a confidential domain
 * through without an agent. */
static void
testOtherOperations(void)
{
    const char *ops[][2] = {{"start", "begin"},     {"started", "begin"},
                            {"stopped", "end"},     {"release", "end"},
                            {"reconnect", "begin"}, {"migrate", "end"}};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(ops); i++) {
        g_auto(TestRun) run = {0};

        testHook(&run, "accepted", ops[i][0], ops[i][1], NULL);
        testAssertPassed(&run);
    }
}

static void
testNoAgent(void)
{
    g_auto(TestRun) migrate = {0};
    g_auto(TestRun) restore = {0};

    testHook(&migrate, "accepted", "migrate", "begin", NULL);
    testAssertRefused(&migrate, "this host's agent is not reachable at "
                                "'/nonexistent/agent.sock'");
    g_assert_nonnull(strstr(migrate.err, "domain 'accepted'"));

    testHook(&restore, "accepted", "restore", "begin", NULL);
    testAssertRefused(&restore, "is virtcocod running?");
}

static void
testEmulator(void)
{
    g_auto(TestRun) run = {0};

    testHook(&run, "plainqemu", "migrate", "begin", NULL);
    testAssertRefused(&run, "not qemu-coco");
}

static void
testInvalidElement(void)
{
    g_auto(TestRun) run = {0};

    testHook(&run, "badcoco", "migrate", "begin", NULL);
    testAssertRefused(&run, "element is invalid");
    g_assert_nonnull(strstr(run.err, "'513'"));
}

static void
testUsage(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *out = NULL;
    g_autofree char *errout = NULL;
    const char *argv[] = {g_getenv("COCO_HOOK"), "vm", "migrate", NULL};
    int wait = 0;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                               G_SPAWN_STDIN_FROM_DEV_NULL, NULL, NULL, &out,
                               &errout, &wait, &err));
    g_assert_no_error(err);
    g_assert_true(WIFEXITED(wait));
    g_assert_cmpint(WEXITSTATUS(wait), ==, 2);
    g_assert_cmpstr(out, ==, "");
    g_assert_nonnull(strstr(errout, "usage:"));
}

/* With a real agent: the policy decides. A fresh platform has TCB SVNs 0
 * and a random identity. */
static void
testAgentPolicy(void)
{
    g_auto(TestRun) ok = {0};
    g_auto(TestRun) restore = {0};
    g_auto(TestRun) mintcb = {0};
    g_auto(TestRun) elsewhere = {0};
    g_auto(TestRun) emulator = {0};
    CocoTestAgent a = {0};

    cocoTestAgentStart(&a, "cocohooktest");

    testHook(&ok, "accepted", "migrate", "begin", a.sock);
    testAssertPassed(&ok);
    testHook(&restore, "accepted", "restore", "begin", a.sock);
    testAssertPassed(&restore);

    testHook(&mintcb, "mintcb", "migrate", "begin", a.sock);
    testAssertRefused(&mintcb, "policy refuses the destination");
    g_assert_nonnull(strstr(mintcb.err, "below the minimum 1"));

    testHook(&elsewhere, "elsewhere", "migrate", "begin", a.sock);
    testAssertRefused(&elsewhere, "policy refuses the destination");

    /* The emulator is checked whatever the agent says. */
    testHook(&emulator, "plainqemu", "migrate", "begin", a.sock);
    testAssertRefused(&emulator, "not qemu-coco");

    cocoTestAgentStop(&a);
}

/* prepare begin: VFIO host devices behind a 64-bit vIOMMU on a host whose
 * fix status is unknown (no VFIO under the test's device root). */
static void
testVfio(void)
{
    g_auto(TestRun) unsafe = {0};
    g_auto(TestRun) override = {0};
    g_auto(TestRun) nodev = {0};

    g_auto(TestRun) plain = {0};

    testHook(&unsafe, "hostdev", "prepare", "begin", NULL);
    testAssertRefused(&unsafe, "refusing to start the confidential domain");
    g_assert_nonnull(strstr(unsafe.err, "'0000:03:00.0'"));
    /* The probe failed (no VFIO here): "unknown", never "lacks the fix". */
    g_assert_nonnull(strstr(unsafe.err, "is unknown (this host has no VFIO"));
    g_assert_null(strstr(unsafe.err, "lacks"));

    /* A plain domain is libvirt's business, host devices or not
     * (docs/hook.rst, "What it checks"). */
    testHook(&plain, "plain-hostdev", "prepare", "begin", NULL);
    testAssertPassed(&plain);

    testHook(&override, "hostdev-override", "prepare", "begin", NULL);
    testAssertPassed(&override);

    /* No host devices: no agent, no VFIO needed at start. */
    testHook(&nodev, "accepted", "prepare", "begin", NULL);
    testAssertPassed(&nodev);
}

/* migrate begin (Prepare on the destination): a domain that still has a
 * host device is refused before anything moves, naming the device; with
 * action="detach" the client did not detach it (virt-coco migrate does),
 * and the message says what the management layer must do. No agent is
 * asked. */
static void
testHostdevMigration(void)
{
    g_auto(TestRun) detach = {0};
    g_auto(TestRun) refuse = {0};
    g_auto(TestRun) restore = {0};

    testHook(&detach, "hostdev", "migrate", "begin", NULL);
    testAssertRefused(&detach, "cannot receive the confidential domain");
    g_assert_nonnull(strstr(detach.err, "'0000:03:00.0'"));
    g_assert_nonnull(strstr(detach.err, "still has the host device"));
    g_assert_nonnull(strstr(
        detach.err, "the management layer must detach its host devices"));
    g_assert_nonnull(strstr(detach.err, "'virt-coco migrate'"));

    testHook(&refuse, "hostdev-refuse", "migrate", "begin", NULL);
    testAssertRefused(&refuse, "cannot receive the confidential domain");
    g_assert_nonnull(strstr(refuse.err, "'0000:03:00.0'"));
    g_assert_nonnull(strstr(refuse.err, "action='refuse'"));

    /* A restore is no migration: on to the agent (none here). */
    testHook(&restore, "hostdev-refuse", "restore", "begin", NULL);
    g_assert_cmpint(restore.status, ==, 1);
    g_assert_null(strstr(restore.err, "host device"));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_assert_nonnull(g_getenv("COCO_HOOK"));
    g_assert_nonnull(g_getenv("VIRTCOCOD"));

    g_test_add_func("/hook/usage", testUsage);
    g_test_add_func("/hook/not-confidential", testNotConfidential);
    g_test_add_func("/hook/other-operations", testOtherOperations);
    g_test_add_func("/hook/no-agent", testNoAgent);
    g_test_add_func("/hook/emulator", testEmulator);
    g_test_add_func("/hook/invalid-element", testInvalidElement);
    g_test_add_func("/hook/agent-policy", testAgentPolicy);
    g_test_add_func("/hook/vfio", testVfio);
    g_test_add_func("/hook/hostdev-migration", testHostdevMigration);
    return g_test_run();
}
