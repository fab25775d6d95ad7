/*
 * cocotestagent.h: a real virtcocod for tests that run the binaries
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

/* A virtcocod (the binary in $VIRTCOCOD) in a scratch directory, serving
 * its socket there and peers on loopback, on a port of the kernel's
 * choice. */
typedef struct {
    char *dir;
    char *sock;
    GPid pid;
} CocoTestAgent;

/* Start it (directory named after @prefix) and wait for its socket. */
void cocoTestAgentStart(CocoTestAgent *a, const char *prefix);

/* SIGTERM, reap, remove the directory. */
void cocoTestAgentStop(CocoTestAgent *a);
