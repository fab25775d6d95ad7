/*
 * cococlientpreflight.h: the checks made before a confidential migration,
 * shared by the migration driver (cococlientmigrate.h) and the libvirt
 * hook
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The local agent's probe (docs/virtcocod.rst), its firmware backend, the
 * domain's relay, the destination's agent (probed by the local agent),
 * the domain's destination policy against a probed platform and the
 * domain's <emulator>.
 */

#pragma once

#include "internal.h"
#include "client/cococlientagent.h"
#include "libvirt-coco/coco-migration-def.h"

#include <json-glib/json-glib.h>
#include <stdbool.h>

/* Seconds a preflight waits for the domain's relay to (re)connect. */
#define COCO_CLIENT_PREFLIGHT_RELAY_WAIT 3

/*
 * cocoClientPreflightCheckFirmware:
 * The @probe answer's firmware backend can migrate a confidential guest.
 * @source: the answer is the source host's agent's (else the destination's);
 * the message names which.
 */
int cocoClientPreflightCheckFirmware(JsonObject *probe, bool source,
                                     GError **error);

/*
 * cocoClientPreflightCheckPolicy:
 * The platform and TCB of the @probe answer of the agent on @host against
 * the destination rules of @def (cocoEmuCheckDestination()).
 */
int cocoClientPreflightCheckPolicy(const CocoMigrationDef *def,
                                   JsonObject *probe, const char *host,
                                   GError **error);

/*
 * cocoClientPreflightCheckEmulator:
 * The <emulator> of the domain document @xml (named @domname) is
 * qemu-coco.
 */
int cocoClientPreflightCheckEmulator(const char *xml, const char *domname,
                                     GError **error);

/*
 * cocoClientPreflightCheckStreams:
 * A requested stream count @parallel (0: none; @what names the option)
 * must be the domain's <coco:streams forward>, which the agents use.
 */
int cocoClientPreflightCheckStreams(int parallel, const char *what,
                                    const CocoMigrationDef *def,
                                    GError **error);

/*
 * cocoClientPreflightCheckRelay:
 * The relay of domain @domname (@uuid) is connected and authenticated to
 * this host's agent @agent ("domain" request), waiting up to
 * COCO_CLIENT_PREFLIGHT_RELAY_WAIT seconds for a relay that reconnects
 * (after an agent restart): without it QEMU would migrate the guest's
 * memory in its own clear stream.
 */
int cocoClientPreflightCheckRelay(CocoClientAgent *agent, const char *uuid,
                                  const char *domname, GError **error);

/*
 * cocoClientPreflightHosts:
 * With the local (source) agent @agent and its probe answer @src: have it
 * probe the destination's agent on @host ("peer-probe"), then check both
 * firmware backends and the domain's policy @def against the destination.
 */
int cocoClientPreflightHosts(CocoClientAgent *agent, JsonObject *src,
                             const char *host, const CocoMigrationDef *def,
                             GError **error);

/*
 * cocoClientSplitHostPort:
 * The host of "host", "host:port", "[v6]" or "[v6]:port" (an address with
 * more than one colon and no brackets is a bare IPv6 address).
 */
int cocoClientSplitHostPort(const char *addr, char **host, GError **error);

/*
 * cocoClientPreflightUriHost:
 * The host of a libvirt or migration URI @uri ("tcp:host[:port]" or
 * "scheme://host/..."); *@host is NULL when the URI names none.
 */
int cocoClientPreflightUriHost(const char *uri, char **host, GError **error);
