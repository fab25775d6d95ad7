/*
 * cocotestrun.c: run a built binary of the project and keep what it said
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "cocotestrun.h"

#include <gio/gio.h>

void
testRunClear(TestRun *run)
{
    g_free(run->out);
    g_free(run->err);
}

void
testRunArgv(TestRun *run, const char *const *argv, const char *const *env,
            const char *input)
{
    g_autoptr(GSubprocessLauncher) l = NULL;
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GError) err = NULL;
    size_t i;

    l = g_subprocess_launcher_new(
        (input ? G_SUBPROCESS_FLAGS_STDIN_PIPE : G_SUBPROCESS_FLAGS_NONE) |
        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
    for (i = 0; env && env[i] && env[i + 1]; i += 2)
        g_subprocess_launcher_setenv(l, env[i], env[i + 1], TRUE);
    p = g_subprocess_launcher_spawnv(l, argv, &err);
    g_assert_no_error(err);
    g_assert_true(g_subprocess_communicate_utf8(p, input, NULL, &run->out,
                                                &run->err, &err));
    g_assert_no_error(err);
    g_assert_true(g_subprocess_get_if_exited(p));
    run->status = g_subprocess_get_exit_status(p);
    g_test_message("%s: exit %d\nstdout: %s\nstderr: %s", argv[0], run->status,
                   run->out, run->err);
}
