/*
 * cocotestagent.h: a real virtcocod for tests that run the binaries, and
 * the stand-ins of a domain's QEMU and relay that it accepts
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include <sys/types.h>

/* A virtcocod (the binary in $VIRTCOCOD) in a scratch directory, serving
 * its socket there and peers on loopback, on a port of the kernel's
 * choice. */
typedef struct {
    char *dir;
    char *sock;
    char *piddir; /* libvirt's PID files as the agent reads them */
    GPid pid;
} CocoTestAgent;

/* The test PKI of this process (tests/cocotlsgen.sh, certtool), made at
 * the first call and removed at exit: a directory with one subdirectory of
 * TLS files per identity ("local": localhost and 127.0.0.1). */
const char *cocoTestPki(void);

/* Write @dir/virtcocod.conf, the configuration of a test agent, and return
 * its path: the socket @sock, peers on 127.0.0.1 on a port of the kernel's
 * choice, the platform file, records (@dir/migrations) and libvirt's PID
 * files (@dir/run) in @dir, /bin/sh as a QEMU binary, the TLS files of
 * identity @tls of cocoTestPki(), then the lines @extra ("key=value\n"...,
 * may be NULL). */
char *cocoTestAgentWriteConf(const char *dir, const char *sock, const char *tls,
                             const char *extra);

/* Start it (directory named after @prefix) and wait for its socket. */
void cocoTestAgentStart(CocoTestAgent *a, const char *prefix);

/* The same with more configuration lines (@extra, "key=value\n"...,
 * may be NULL); the agent accepts /bin/sh as a QEMU binary (the stand-in
 * QEMU below) and reads PID files from a->piddir. */
void cocoTestAgentStartConf(CocoTestAgent *a, const char *prefix,
                            const char *extra);

/* SIGTERM, reap, remove the directory. */
void cocoTestAgentStop(CocoTestAgent *a);

/* A process the agent accepts as the QEMU of domain @name (@uuid): the
 * shell, whose command line names the domain, holding the guest RAM file
 * @ram open (NULL: none) as QEMU does; its PID file goes to @piddir (NULL:
 * none, a QEMU that libvirt did not record). */
pid_t cocoTestQemuStart(const char *name, const char *uuid, const char *ram,
                        const char *piddir);
/* Kill it (and its sleep) and reap it; *@pid becomes 0. */
void cocoTestQemuStop(pid_t *pid);

/* A connection to the agent's socket, as a relay or a client has. */
typedef struct {
    int fd;
    GString *in;
} CocoTestRelay;

void cocoTestRelayConnect(CocoTestRelay *r, const char *sock);
/* Send @line and a newline. */
void cocoTestRelaySend(CocoTestRelay *r, const char *line);
/* The next line (without its end), or NULL at the end of the connection
 * or after 30 s. */
char *cocoTestRelayReadLine(CocoTestRelay *r);
/* The next line containing @needle; the others are dropped. */
char *cocoTestRelayReadMatch(CocoTestRelay *r, const char *needle);
void cocoTestRelayClose(CocoTestRelay *r);
