/*
 * cocotestrun.h: run a built binary of the project and keep what it said
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

typedef struct {
    int status; /* exit status */
    char *out; /* stdout */
    char *err; /* stderr */
} TestRun;

void testRunClear(TestRun *run);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TestRun, testRunClear)

/*
 * testRunArgv:
 * Run @argv (NULL-terminated) with @input on stdin (NULL: none) and the
 * variables of @env ("NAME", "VALUE", ..., NULL) set on top of ours; it
 * must exit normally. The result goes to the test log.
 */
void testRunArgv(TestRun *run, const char *const *argv, const char *const *env,
                 const char *input);
