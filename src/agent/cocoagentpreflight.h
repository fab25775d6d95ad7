/*
 * cocoagentpreflight.h: the checks a host makes before a confidential
 * migration, shared by "virt-coco migrate" and the libvirt hook
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The local agent's probe (docs/virtcocod.rst), its firmware backend, the
 * domain's destination policy against a probed platform and the domain's
 * <emulator>.
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/coco-migration-def.h"

#include <json-glib/json-glib.h>

#define COCO_PREFLIGHT_AGENT_TIMEOUT 5 /* seconds, for every agent request */
/* A probe of the peer through the local agent: its connect and TLS
 * deadlines, and some. */
#define COCO_PREFLIGHT_PEER_TIMEOUT 60
#define COCO_PREFLIGHT_ANSWER_MAX (32U * 1024U * 1024U)

/*
 * cocoPreflightAgentConnect:
 * Connect to the agent's unix socket @path with send and receive timeouts.
 * Returns the descriptor, or -errno (the caller words the error).
 */
int cocoPreflightAgentConnect(const char *path);

/*
 * cocoPreflightAgentRequest:
 * Send {"type": @type} on @fd and wait (with the socket's timeout) for the
 * answer of that type or "refused". @in keeps bytes read beyond it.
 */
JsonObject *cocoPreflightAgentRequest(int fd, GString *in, const char *type,
                                      GError **error);

/*
 * cocoPreflightCheckFirmware:
 * The @probe answer's firmware backend can migrate a confidential guest.
 * @source: the answer is the source host's agent's (else the destination's);
 * the message names which.
 */
int cocoPreflightCheckFirmware(JsonObject *probe, bool source, GError **error);

/*
 * cocoPreflightCheckPolicy:
 * The platform and TCB of the @probe answer of the agent on @host against
 * the destination rules of @def (cocoEmuCheckDestination()).
 */
int cocoPreflightCheckPolicy(const CocoMigrationDef *def, JsonObject *probe,
                             const char *host, GError **error);

/*
 * cocoPreflightCheckEmulator:
 * The <emulator> of the domain document @xml (named @domname) is
 * qemu-coco.
 */
int cocoPreflightCheckEmulator(const char *xml, const char *domname,
                               GError **error);

/* Send {"type": @type} on @fd. */
int cocoPreflightAgentSend(int fd, const char *type, GError **error);

/* Take the next whole line out of @in: the JSON object it holds, or NULL
 * (*@got tells whether a line was taken). */
JsonObject *cocoPreflightTakeLine(GString *in, bool *got);

/*
 * cocoPreflightUriHost:
 * The host of a libvirt or migration URI @uri ("tcp:host[:port]" or
 * "scheme://host/..."); *@host is NULL when the URI names none.
 */
int cocoPreflightUriHost(const char *uri, char **host, GError **error);

/*
 * cocoPreflightCheckStreams:
 * A requested stream count @parallel (0: none; @what names the option)
 * must be the domain's <coco:streams forward>, which the agents use.
 */
int cocoPreflightCheckStreams(int parallel, const char *what,
                              const CocoMigrationDef *def, GError **error);

/*
 * cocoPreflightHosts:
 * With the source agent's probe answer @src: have the local agent (at
 * @agent_socket) probe the destination's agent on @host, then check both firmware backends, the
 * domain's policy against the destination and the domain's <emulator>
 * (domain document @xml, named @domname).
 */
int cocoPreflightHosts(const char *agent_socket, JsonObject *src,
                       const char *host, const CocoMigrationDef *def,
                       const char *xml, const char *domname, GError **error);
