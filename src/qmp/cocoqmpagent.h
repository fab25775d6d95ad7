/*
 * cocoqmpagent.h: the relay's hook into the host agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "util/cocoenum.h"

#include <json-glib/json-glib.h>

/* A libvirt command the relay holds until the agent gives its verdict. */
typedef enum {
    COCO_QMP_GATE_SWITCHOVER, /* 'migrate-continue' at 'pre-switchover' */
    COCO_QMP_GATE_CONT, /* 'cont' after an incoming or outgoing migration */
    COCO_QMP_GATE_MIGRATE, /* source 'migrate' of a real migration (precopy) */
    COCO_QMP_GATE_HOSTDEV, /* 'device_add' of a VFIO device, wide vIOMMU */
    COCO_QMP_GATE_LAST
} CocoQmpGate;

COCO_ENUM_DECL(cocoQmpGate);

/* This QEMU's part in the current migration. */
typedef enum {
    COCO_QMP_ROLE_NONE,
    COCO_QMP_ROLE_SOURCE,
    COCO_QMP_ROLE_DESTINATION,
    COCO_QMP_ROLE_LAST
} CocoQmpRole;

COCO_ENUM_DECL(cocoQmpRole);

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

typedef struct {
    /* A phase-marking event; @data is borrowed. No answer is expected. */
    void (*notify)(CocoQmpAgent *agent, const char *event, JsonObject *data);
    /* Ask for a verdict; the answer comes through @cb. */
    void (*gate)(CocoQmpAgent *agent, CocoQmpGate gate, CocoQmpRole role,
                 CocoQmpAgentVerdictFunc cb, gpointer opaque);
    void (*dispose)(CocoQmpAgent *agent);
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

/* Who hears the agent's 'pause' (the relay); NULL @cb stops listening. */
void cocoQmpAgentSetPauseFunc(CocoQmpAgent *agent, CocoQmpAgentPauseFunc cb,
                              gpointer opaque);
/* Deliver a 'pause' from the agent (socket agents and test fakes). */
void cocoQmpAgentEmitPause(CocoQmpAgent *agent, const char *reason);

/*
 * The agent behind a local stream socket at @path (see docs/qemu-coco.rst,
 * "Agent protocol"). The connection is opened when first needed, begins
 * with @hello (consumed), and is reopened after a failure. A gate with no
 * verdict after @timeoutSec seconds, or an unreachable agent, is refused:
 * the gates fail closed.
 */
CocoQmpAgent *cocoQmpAgentNewSocket(const char *path, GMainContext *ctx,
                                    JsonObject *hello, guint timeoutSec);
