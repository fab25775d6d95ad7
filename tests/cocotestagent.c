/*
 * cocotestagent.c: a real virtcocod for tests that run the binaries
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"

#include "cocotestagent.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

void
cocoTestAgentStart(CocoTestAgent *a, const char *prefix)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *tmpl = g_strdup_printf("%s-XXXXXX", prefix);
    g_autofree char *conf = NULL;
    g_autofree char *text = NULL;
    const char *argv[] = {g_getenv("VIRTCOCOD"), "-f", "-c", NULL, NULL};
    int i;

    g_assert_nonnull(argv[0]);
    a->dir = g_dir_make_tmp(tmpl, &err);
    g_assert_no_error(err);
    a->sock = g_build_filename(a->dir, "agent.sock", NULL);
    conf = g_build_filename(a->dir, "virtcocod.conf", NULL);
    /* Its TLS files: a throw-away PKI (tests/cocotlsgen.sh, certtool). */
    {
        g_autofree char *script = g_build_filename(
            g_getenv("abs_srcdir") ? g_getenv("abs_srcdir") : ".",
            "cocotlsgen.sh", NULL);
        g_autofree char *cmd =
            g_strdup_printf("sh '%s' '%s/pki'", script, a->dir);
        int status = 0;

        g_assert_true(
            g_spawn_command_line_sync(cmd, NULL, NULL, &status, &err));
        g_assert_no_error(err);
        g_assert_true(g_spawn_check_wait_status(status, NULL));
    }
    text = g_strdup_printf(
        "[virtcocod]\nsocket=%s\nlisten=127.0.0.1\nport=0\n"
        "platform=%s/platform.conf\nstate_dir=%s/migrations\n"
        "tls_ca_cert=%s/pki/local/cacert.pem\n"
        "tls_server_cert=%s/pki/local/servercert.pem\n"
        "tls_server_key=%s/pki/local/private/serverkey.pem\n"
        "tls_client_cert=%s/pki/local/clientcert.pem\n"
        "tls_client_key=%s/pki/local/private/clientkey.pem\n",
        a->sock, a->dir, a->dir, a->dir, a->dir, a->dir, a->dir, a->dir);
    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
    argv[3] = conf;
    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDOUT_TO_DEV_NULL |
                                    G_SPAWN_STDERR_TO_DEV_NULL,
                                NULL, NULL, &a->pid, &err));
    g_assert_no_error(err);
    for (i = 0; i < 5000 && !g_file_test(a->sock, G_FILE_TEST_EXISTS); i++)
        g_usleep(1000);
    g_assert_true(g_file_test(a->sock, G_FILE_TEST_EXISTS));
}

void
cocoTestAgentStop(CocoTestAgent *a)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", a->dir);
    int status;

    kill(a->pid, SIGTERM);
    waitpid(a->pid, &status, 0);
    g_assert_cmpint(system(cmd), ==, 0);
    g_clear_pointer(&a->dir, g_free);
    g_clear_pointer(&a->sock, g_free);
}
