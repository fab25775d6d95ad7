/*
 * cocoqmpagent.h: the relay's hook into the host agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "proto/cocoprotorelay.h"
#include "util/cocoenum.h"

#include <json-glib/json-glib.h>

/* A libvirt command the relay holds until the agent gives its verdict, and
 * this QEMU's part in the current migration: the relay protocol's own
 * definitions (cocoprotorelay.h), one for both ends. */
typedef CocoRelayGate CocoQmpGate;
#define COCO_QMP_GATE_SWITCHOVER COCO_RELAY_GATE_SWITCHOVER
#define COCO_QMP_GATE_CONT COCO_RELAY_GATE_CONT
#define COCO_QMP_GATE_MIGRATE COCO_RELAY_GATE_MIGRATE
#define COCO_QMP_GATE_HOSTDEV COCO_RELAY_GATE_HOSTDEV
#define COCO_QMP_GATE_LAST COCO_RELAY_GATE_LAST
#define cocoQmpGateTypeToString cocoRelayGateTypeToString

typedef CocoRelayRole CocoQmpRole;
#define COCO_QMP_ROLE_NONE COCO_RELAY_ROLE_NONE
#define COCO_QMP_ROLE_SOURCE COCO_RELAY_ROLE_SOURCE
#define COCO_QMP_ROLE_DESTINATION COCO_RELAY_ROLE_DESTINATION
#define COCO_QMP_ROLE_LAST COCO_RELAY_ROLE_LAST
#define cocoQmpRoleTypeToString cocoRelayRoleTypeToString

typedef struct _CocoQmpAgent CocoQmpAgent;

/*
 * The verdict on a gate: @release TRUE lets the command through; FALSE
 * refuses it and @reason (never NULL then) tells libvirt why. Called
 * exactly once per gate request; possibly before cocoQmpAgentGate()
 * returns (a broken connection), so callers set their state first.
 */
typedef void (*CocoQmpAgentVerdictFunc)(gboolean release, const char *reason,
                                        gpointer opaque);

/*
 * The agent asks the relay to cancel the outgoing migration (its session
 * failed after 'migrate' reached QEMU); @reason is never NULL.
 */
typedef void (*CocoQmpAgentCancelFunc)(const char *reason, gpointer opaque);

/*
 * The agent's progress report on the private-memory copy of the current
 * outgoing migration (the message as sent, borrowed; see
 * docs/qemu-coco.rst, "Agent protocol").
 */
typedef void (*CocoQmpAgentProgressFunc)(JsonObject *msg, gpointer opaque);

/*
 * The agent asks the relay to keep the source's vCPUs stopped (its session
 * is frozen: the source may not run, whatever QEMU does on its own after a
 * failed migration); @reason is never NULL.
 */
typedef void (*CocoQmpAgentPauseFunc)(const char *reason, gpointer opaque);

/*
 * The agent lets the source run again (it was paused by a 'pause' and the
 * migration's outcome is that the guest stays here): the relay stops
 * holding it paused and resumes it if the relay stopped it.
 */
typedef void (*CocoQmpAgentResumeFunc)(const char *reason, gpointer opaque);

typedef struct {
    /* A phase-marking event; @data is borrowed. No answer is expected. */
    void (*notify)(CocoQmpAgent *agent, const char *event, JsonObject *data);
    /* Ask for a verdict; the answer comes through @cb. */
    void (*gate)(CocoQmpAgent *agent, CocoQmpGate gate, CocoQmpRole role,
                 CocoQmpAgentVerdictFunc cb, gpointer opaque);
    void (*dispose)(CocoQmpAgent *agent);
    /* Whether the agent accepted this relay; otherwise *@reason says why
     * (NULL op: always ready). */
    gboolean (*ready)(CocoQmpAgent *agent, char **reason);
    /* Say hello now (QEMU runs) and stay connected. Optional. */
    void (*start)(CocoQmpAgent *agent);
    /* The answer to "is it ready", waiting up to @timeoutMs for an
     * answer to a hello in flight (or a new one); @cb is called exactly
     * once, never from inside. Optional: without it, ready() answers. */
    void (*waitReady)(CocoQmpAgent *agent, guint timeoutMs,
                      CocoQmpAgentVerdictFunc cb, gpointer opaque);
} CocoQmpAgentOps;

/* An agent implemented by @ops (tests use this for fakes). */
CocoQmpAgent *cocoQmpAgentNew(const CocoQmpAgentOps *ops, gpointer data);
gpointer cocoQmpAgentGetData(CocoQmpAgent *agent);
void cocoQmpAgentFree(CocoQmpAgent *agent);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoQmpAgent, cocoQmpAgentFree);

void cocoQmpAgentNotify(CocoQmpAgent *agent, const char *event,
                        JsonObject *data);
void cocoQmpAgentGate(CocoQmpAgent *agent, CocoQmpGate gate, CocoQmpRole role,
                      CocoQmpAgentVerdictFunc cb, gpointer opaque);

/* Who hears the agent's 'cancel' (the relay); NULL @cb stops listening. */
void cocoQmpAgentSetCancelFunc(CocoQmpAgent *agent, CocoQmpAgentCancelFunc cb,
                               gpointer opaque);
/* Deliver a 'cancel' from the agent (socket agents and test fakes). */
void cocoQmpAgentEmitCancel(CocoQmpAgent *agent, const char *reason);

/* Who hears the agent's 'progress' (the relay); NULL @cb stops listening. */
void cocoQmpAgentSetProgressFunc(CocoQmpAgent *agent,
                                 CocoQmpAgentProgressFunc cb, gpointer opaque);
/* Deliver a 'progress' from the agent (socket agents and test fakes). */
void cocoQmpAgentEmitProgress(CocoQmpAgent *agent, JsonObject *msg);

/* Whether a migration may start: the agent accepted this relay (its
 * hello). FALSE with *@reason (a message for libvirt) otherwise. */
gboolean cocoQmpAgentIsReady(CocoQmpAgent *agent, char **reason);

/* The same question, answered through @cb (release = ready, else the
 * reason) once the agent answered the relay's hello or after @timeoutMs:
 * a migration that arrives while the relay (re)connects waits for the
 * agent's verdict on it instead of being refused at once. */
void cocoQmpAgentWaitReady(CocoQmpAgent *agent, guint timeoutMs,
                           CocoQmpAgentVerdictFunc cb, gpointer opaque);

/* QEMU runs (its monitor answered): the relay introduces itself to the
 * agent now, so that clients can check it was accepted before they
 * migrate, and stays connected. */
void cocoQmpAgentStart(CocoQmpAgent *agent);

/* Who hears the agent's 'resume' (the relay); NULL @cb stops listening. */
void cocoQmpAgentSetResumeFunc(CocoQmpAgent *agent, CocoQmpAgentResumeFunc cb,
                               gpointer opaque);
void cocoQmpAgentEmitResume(CocoQmpAgent *agent, const char *reason);

/* Who hears the agent's 'pause' (the relay); NULL @cb stops listening. */
void cocoQmpAgentSetPauseFunc(CocoQmpAgent *agent, CocoQmpAgentPauseFunc cb,
                              gpointer opaque);
/* Deliver a 'pause' from the agent (socket agents and test fakes). */
void cocoQmpAgentEmitPause(CocoQmpAgent *agent, const char *reason);

/*
 * The agent behind a local stream socket at @path (see docs/qemu-coco.rst,
 * "Agent protocol"). The connection is opened by cocoQmpAgentStart() or
 * the first request, begins with @hello (consumed), and is reopened after
 * a failure: every second after a lost connection, with a delay doubling
 * up to 30 s after a refused hello (the next migration asks at once). A gate with no verdict after @timeoutSec
 * seconds (for 'migrate': no verdict and no progress report), or an
 * unreachable agent, is refused: the gates fail closed.
 */
CocoQmpAgent *cocoQmpAgentNewSocket(const char *path, GMainContext *ctx,
                                    JsonObject *hello, guint timeoutSec);
