/*
 * cococlientagent.h: a client of this host's agent (virtcocod), on its
 * local socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Line-based JSON requests on the agent's unix socket (docs/virtcocod.rst,
 * "Client requests"): "probe" (anyone), and, for root, the agent's own
 * user and the members of its status_group, "status", "domain",
 * "peer-probe" and "peer-status", for root and the agent's user
 * "recover". Each request has one deadline for the whole exchange; an
 * answer line longer than COCO_CLIENT_AGENT_LINE_MAX is refused before
 * it is kept, every answer is parsed as a message of the agent's protocol
 * (cocoRelayReplySchema, src/proto/cocoprotorelay.c) and then read with
 * the safe getters (proto/cocoproto.h, cococlientjson.h).
 */

#pragma once

#include "internal.h"
#include "client/cococlientrecord.h"
#include "proto/cocoprotorelay.h"

#include <json-glib/json-glib.h>
#include <stdbool.h>

#define COCO_CLIENT_AGENT_SOCKET_ENV "VIRT_COCO_AGENT_SOCKET"
/* Seconds for a whole local request. */
#define COCO_CLIENT_AGENT_TIMEOUT 5
/* "recover": the agent waits up to 10 s for the outcome, after it
 * reconnected to the peer (its connect and TLS deadlines). */
#define COCO_CLIENT_AGENT_RECOVER_TIMEOUT 90
/* A request the local agent forwards to a peer agent (peer-probe,
 * peer-status): its connect and TLS deadlines, and some. */
#define COCO_CLIENT_AGENT_PEER_TIMEOUT 60
#define COCO_CLIENT_AGENT_LINE_MAX COCO_RELAY_REPLY_MAX

typedef struct _CocoClientAgent CocoClientAgent;

/* The outcome of a "recover" request. */
typedef struct {
    char *id;
    char *state; /* the source's state after the attempt */
    char *message; /* the agent's words for it */
} CocoClientRecoverInfo;

void cocoClientRecoverInfoClear(CocoClientRecoverInfo *info);

/* What the agent knows of a domain's relay ("domain" request). */
typedef struct {
    char *name; /* as the relay's hello named it, or NULL */
    bool relay; /* a relay of the domain is connected and authenticated */
    gint64 qemu_pid; /* its QEMU, 0 when none */
    /* The relay's last VFIO state (docs/vfio.rst, "The state report"),
     * when it sent one: the devices QEMU has open (named), how many are
     * open, and the DMA mappings its address spaces keep. */
    bool has_vfio;
    GStrv vfio_devices;
    gint64 vfio_open;
    gint64 vfio_mappings;
    gint64 vfio_mapped_bytes;
    char *vfio_leak; /* the domain's recorded VFIO leak, or NULL */
} CocoClientDomainInfo;

void cocoClientDomainInfoClear(CocoClientDomainInfo *info);

/*
 * cocoClientAgentSocketPath:
 * The agent's socket: @option when given, else $VIRT_COCO_AGENT_SOCKET,
 * else the default (/run/libvirt-coco/agent.sock).
 */
char *cocoClientAgentSocketPath(const char *option);

/* Connect to the agent at @path; NULL with *@errnum set when it cannot
 * (the caller words the error: it knows whose agent it is). */
CocoClientAgent *cocoClientAgentConnect(const char *path, int *errnum);
void cocoClientAgentFree(CocoClientAgent *agent);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoClientAgent, cocoClientAgentFree)

const char *cocoClientAgentGetPath(CocoClientAgent *agent);

/*
 * cocoClientAgentRequest:
 * Send @request (its "type" member names the answer expected) and wait up
 * to @timeout seconds for the answer of that type (a new reference). An
 * answer "refused" (COCO_ERROR_ACCESS_DENIED) or "error"
 * (COCO_ERROR_QMP_AGENT) becomes an error with its reason.
 */
JsonObject *cocoClientAgentRequest(CocoClientAgent *agent, JsonObject *request,
                                   unsigned int timeout, GError **error);

/* "probe": who the agent is (version, firmware, platform, ports). */
JsonObject *cocoClientAgentProbe(CocoClientAgent *agent, GError **error);

/* "status": the agent's migration records, oldest first (a new
 * reference). */
JsonArray *cocoClientAgentStatus(CocoClientAgent *agent, GError **error);

/* "domain": whether the relay of the domain with @uuid is connected and
 * authenticated to this agent. */
int cocoClientAgentDomain(CocoClientAgent *agent, const char *uuid,
                          CocoClientDomainInfo *info, GError **error);

/* "peer-probe": this agent probes the agent on @host (at its configured
 * peer port); returns the peer's probe answer. When the agent could not
 * reach or probe the peer, NULL is returned with *@peer_error set to its
 * reason (and @error not set). */
JsonObject *cocoClientAgentPeerProbe(CocoClientAgent *agent, const char *host,
                                     char **peer_error, GError **error);

/*
 * cocoClientAgentPeerStatus:
 * "peer-status": this agent asks the agent on @host for its record of the
 * migration with session @session (16 hex digits), or, when @session is
 * NULL, of the same session as this agent's record @id. *@record gets
 * the peer's record, or NULL when the peer has none. When the agent could
 * not ask the peer, 0 is returned with *@peer_error set to its reason.
 */
int cocoClientAgentPeerStatus(CocoClientAgent *agent, const char *host,
                              const char *id, const char *session,
                              JsonObject **record, char **peer_error,
                              GError **error);

/*
 * cocoClientAgentPeerRecord:
 * The peer agent's view of @rec (a record of this agent): this agent asks
 * the host of @rec's peer address for its record of @rec's session.
 * *@peer gets it, or NULL with *@reason saying why there is none (no
 * peer address or session in @rec, the peer cannot be asked, the peer has
 * no record of the session). -1 only for a failure of this host's agent.
 */
int cocoClientAgentPeerRecord(CocoClientAgent *agent,
                              const CocoClientRecord *rec,
                              CocoClientRecord **peer, char **reason,
                              GError **error);

/*
 * cocoClientAgentRecover:
 * "recover" (root and the agent's own user only): the agent's frozen
 * source migration @id reconnects to its peer and asks again what became
 * of the session. @info gets the state it is in afterwards and the
 * agent's message; deciding whether that is an outcome is the caller's.
 */
int cocoClientAgentRecover(CocoClientAgent *agent, const char *id,
                           CocoClientRecoverInfo *info, GError **error);
