/*
 * cocophase.h: libvirt's v3 migration phases, as the QMP relay and the host
 * agent observe them, mapped to firmware sub-commands (as data)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The mapping is a table of rules: (role, state, event) -> a list of steps
 * (firmware sub-commands, messages to the peer agent, gate decisions) and
 * the state reached. The session (cocomigrationsession.h) interprets it.
 * docs/phases.rst prints the same table.
 */

#pragma once

#include "internal.h"
#include "firmware/cocofirmware.h"
#include "util/cocoenum.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * Events. The first group is what the QMP relay sees on the QEMU monitor
 * (or the agent decides); the "peer-*" group are messages from the peer
 * host's agent (CocoPhaseMessage.type); the "data-*" group is progress of
 * the destination's data path; "local-failure" is raised by the engine
 * itself when a step fails.
 */
typedef enum {
    COCO_PHASE_EVENT_INCOMING = 0, /* D: migrate-incoming (gate held) */
    COCO_PHASE_EVENT_MIGRATE, /* S: migrate (gate held) */
    COCO_PHASE_EVENT_PRECOPY_ROUND, /* S: the agent wants one more round */
    COCO_PHASE_EVENT_QUERY, /* S/D: query-migrate (idempotent) */
    COCO_PHASE_EVENT_PRE_SWITCHOVER, /* S: event pre-switchover; the relay
                                        holds migrate-continue */
    COCO_PHASE_EVENT_CONT, /* S/D: libvirt's cont (gate held) */
    COCO_PHASE_EVENT_QEMU_GONE, /* S/D: QEMU ended (quit, killed, crash) */
    COCO_PHASE_EVENT_CANCEL, /* S: migrate_cancel (job aborted) */
    COCO_PHASE_EVENT_MIGRATION_FAILED, /* S/D: MIGRATION status failed */
    COCO_PHASE_EVENT_PEER_LOST, /* S/D: the peer agent is unreachable */
    COCO_PHASE_EVENT_LOCAL_FAILURE, /* S/D: a step failed (engine) */
    COCO_PHASE_EVENT_DEADLINE, /* S: the agent's switchover deadline
                                  expired */
    COCO_PHASE_EVENT_PEER_RECONNECTED, /* S/D: a new control connection to
                                          the same peer session */
    COCO_PHASE_EVENT_GIVE_UP, /* S: the window to learn the start token's
                                 fate from the peer expired */
    COCO_PHASE_EVENT_HOLD_EXPIRED, /* S/D: a held command waited longer
                                      than the agent lets it */

    COCO_PHASE_EVENT_PEER_AGENT, /* key-exchange message (PREPARE) */
    COCO_PHASE_EVENT_PEER_PREPARED, /* the peer's PREPARE completed */
    COCO_PHASE_EVENT_PEER_SETUP, /* S->D immutable-state bundle */
    COCO_PHASE_EVENT_PEER_MEMORY, /* S->D memory bundle (arg: stream) */
    COCO_PHASE_EVENT_PEER_TOKEN, /* S->D epoch token */
    COCO_PHASE_EVENT_PEER_VCPU, /* S->D vCPU bundle (arg: vCPU) */
    COCO_PHASE_EVENT_PEER_START_TOKEN, /* S->D start token */
    COCO_PHASE_EVENT_PEER_SETUP_DONE, /* D->S immutable state imported */
    COCO_PHASE_EVENT_PEER_ROUND_DONE, /* D->S epoch token imported */
    COCO_PHASE_EVENT_PEER_SWITCHOVER_DONE, /* D->S start token imported */
    COCO_PHASE_EVENT_PEER_COMMITTED, /* D->S FINISH(D) done: D owns it */
    COCO_PHASE_EVENT_PEER_ABORT_REQUEST, /* S->D send me your abort token */
    COCO_PHASE_EVENT_PEER_ABORT_TOKEN, /* D->S the abort token */
    COCO_PHASE_EVENT_PEER_ABORTED, /* the peer aborted before the start
                                      token (no token involved) */

    COCO_PHASE_EVENT_DATA_SETUP, /* D: immutable state imported */
    COCO_PHASE_EVENT_DATA_ROUND, /* D: an epoch token imported */
    COCO_PHASE_EVENT_DATA_START, /* D: the start token imported */

    COCO_PHASE_EVENT_LAST
} CocoPhaseEvent;
COCO_ENUM_DECL(cocoPhaseEvent);

#define COCO_PHASE_EVENT_FIRST_PEER COCO_PHASE_EVENT_PEER_AGENT
#define COCO_PHASE_EVENT_LAST_PEER COCO_PHASE_EVENT_PEER_ABORTED

/* True for the events that travel between the agents as messages. */
bool cocoPhaseEventIsPeer(CocoPhaseEvent event);

/* States of one side's session. */
typedef enum {
    COCO_PHASE_STATE_IDLE = 0, /* nothing observed yet */
    COCO_PHASE_STATE_PREPARING, /* PREPARE: agent key exchange */
    COCO_PHASE_STATE_SETUP, /* S: immutable state sent, not acked;
                                    D: keys installed, waiting for it */
    COCO_PHASE_STATE_PRECOPY, /* S: live export; D: importing */
    COCO_PHASE_STATE_BLACKOUT, /* S: SOURCE_BLACKOUT done, no start
                                    token yet */
    COCO_PHASE_STATE_SWITCHOVER, /* S: start token emitted, D has not
                                    acknowledged it yet */
    COCO_PHASE_STATE_HANDOVER, /* S: migrate-continue released, QEMU
                                    moves device state; D: start token
                                    imported, waiting for cont */
    COCO_PHASE_STATE_AWAIT_TOKEN, /* S: cancelled after the start token,
                                     waiting for the abort token */
    COCO_PHASE_STATE_COMMITTED, /* D: FINISH(D) done, the guest runs
                                    there; S: told so, never resumes */
    COCO_PHASE_STATE_FINISHED, /* S: FINISH(S) done; D: QEMU ended after
                                    the commit. Session over */
    COCO_PHASE_STATE_ABORTED, /* S: ABORT(S) done, the source runs;
                                    D: ABORT(D) done, destroyed */
    COCO_PHASE_STATE_FROZEN, /* S: paused after the start token and
                                    without an abort token */
    /* Record-only states: no session is ever in them. */
    COCO_PHASE_STATE_FAILED, /* the session could not start */
    COCO_PHASE_STATE_INTERRUPTED, /* the agent stopped while the session
                                     was not final */
    COCO_PHASE_STATE_LAST
} CocoPhaseState;
/* The states a session can be in: the ones before the record-only ones. */
#define COCO_PHASE_STATE_SESSION_LAST COCO_PHASE_STATE_FAILED
COCO_ENUM_DECL(cocoPhaseState);

/*
 * The one home of every question about a state (like QEMU's
 * migration_has_failed()); the agent, its records, the D-Bus jobs and
 * virt-coco all ask these, never compare state names.
 */
/* The outcome is decided: this side's guest may run or not, for good. */
bool cocoPhaseStateIsFinal(CocoFirmwareRole role, CocoPhaseState state);
/* Nothing more happens without an operator or a peer that comes back:
 * final, or a frozen source. */
bool cocoPhaseStateIsSettled(CocoFirmwareRole role, CocoPhaseState state);
/* This side's guest may run now. */
bool cocoPhaseStateMayRun(CocoFirmwareRole role, CocoPhaseState state);
/* This side's guest is paused for a switchover under way (its downtime;
 * not a failure's wait): other migrations' bulk pre-copy yields. */
bool cocoPhaseStateSwitching(CocoFirmwareRole role, CocoPhaseState state);
/* The data path has nothing more to move. */
bool cocoPhaseStateDataDone(CocoPhaseState state);
/* The source has emitted its start token (its fate depends on the
 * destination's). */
bool cocoPhaseStateAfterStartToken(CocoFirmwareRole role, CocoPhaseState state);
/* A record's state name, as a state (COCO_PHASE_STATE_LAST if unknown). */
CocoPhaseState cocoPhaseStateParse(const char *name);

/* Steps a rule runs, in order. */
typedef enum {
    COCO_PHASE_STEP_PREPARE_START = 0, /* PREPARE, first call */
    COCO_PHASE_STEP_PREPARE, /* PREPARE with the peer's message */
    COCO_PHASE_STEP_AWAIT_KEYS, /* stop unless both sides have keys */
    COCO_PHASE_STEP_SEND_PREPARED, /* tell the peer our keys are in */
    COCO_PHASE_STEP_SETUP, /* S: SETUP through the data path */
    COCO_PHASE_STEP_ROUND_OR_RELEASE, /* S: next configured precopy round,
                                         or release `migrate` */
    COCO_PHASE_STEP_ROUND, /* S: one precopy round + TOKEN */
    COCO_PHASE_STEP_BLACKOUT, /* S: SOURCE_BLACKOUT */
    COCO_PHASE_STEP_FINAL, /* S: last pages, EXPORT_VCPU xN,
                                     TOKEN(START) */
    COCO_PHASE_STEP_IMPORT, /* D: hand a data blob to the data path */
    COCO_PHASE_STEP_SEND_SETUP_DONE, /* D: ack */
    COCO_PHASE_STEP_SEND_ROUND_DONE, /* D: ack */
    COCO_PHASE_STEP_SEND_SWITCHOVER_DONE, /* D: ack */
    COCO_PHASE_STEP_COMMIT, /* D: FINISH(D) = commit */
    COCO_PHASE_STEP_SEND_COMMITTED, /* D: tell the source */
    COCO_PHASE_STEP_FINISH, /* S: FINISH(S) */
    COCO_PHASE_STEP_ABORT, /* S: ABORT(S) without token (if the
                                     firmware session started);
                                     D: ABORT(D) -> abort token, sent back */
    COCO_PHASE_STEP_ABORT_WITH_TOKEN, /* S: ABORT(S) with the token */
    COCO_PHASE_STEP_REQUEST_TOKEN, /* S: ask D for its abort token (peer
                                      lost: freeze) */
    COCO_PHASE_STEP_SEND_ABORTED, /* tell the peer we aborted */
    COCO_PHASE_STEP_FREEZE, /* S: the source can never resume */
    COCO_PHASE_STEP_YIELD, /* S: the destination committed: the
                                     source can never resume */
    COCO_PHASE_STEP_RELEASE_INCOMING,
    COCO_PHASE_STEP_RELEASE_CONTINUE, /* release migrate-continue */
    COCO_PHASE_STEP_RELEASE_CONT,
    COCO_PHASE_STEP_REFUSE_HELD, /* refuse every held gate, with the
                                     reason; cancel QEMU's migration if
                                     `migrate` was already released */
    COCO_PHASE_STEP_REFUSE_CONT, /* refuse cont with the reason */
    COCO_PHASE_STEP_PAUSE_SOURCE, /* S: keep the vCPUs stopped from now on,
                                     whatever QEMU does by itself */
    COCO_PHASE_STEP_RESUME_SOURCE, /* S: let the source run again: release
                                      a held cont, or ask the relay */
    COCO_PHASE_STEP_RECONCILE, /* S: the start token's fate is unknown:
                                  refuse what is held, wait for the peer */
    COCO_PHASE_STEP_LAST
} CocoPhaseStep;
COCO_ENUM_DECL(cocoPhaseStep);

/* The QMP commands the relay holds until the engine decides. */
typedef enum {
    COCO_PHASE_GATE_MIGRATE_INCOMING = 0, /* D */
    COCO_PHASE_GATE_MIGRATE, /* S */
    COCO_PHASE_GATE_MIGRATE_CONTINUE, /* S */
    COCO_PHASE_GATE_CONT, /* S and D */
    COCO_PHASE_GATE_LAST
} CocoPhaseGate;
COCO_ENUM_DECL(cocoPhaseGate); /* the QMP command names */

typedef enum {
    COCO_PHASE_VERDICT_RELEASE = 0, /* pass the held command to QEMU */
    COCO_PHASE_VERDICT_REFUSE, /* answer it with a QMP error */
    COCO_PHASE_VERDICT_CANCEL, /* the gate was already released: send
                                       migrate_cancel to QEMU */
    COCO_PHASE_VERDICT_PAUSE, /* keep the vCPUs stopped (no gate) */
    COCO_PHASE_VERDICT_RESUME, /* the source may run: undo PAUSE and
                                  resume it if the relay stopped it */
    COCO_PHASE_VERDICT_LAST
} CocoPhaseVerdict;
COCO_ENUM_DECL(cocoPhaseVerdict);

/* One row of the mapping. */
#define COCO_PHASE_RULE_MAX_STEPS 6
typedef struct {
    CocoFirmwareRole role;
    uint32_t states; /* bit (1 << CocoPhaseState) per state it applies in */
    uint64_t events; /* bit (1 << CocoPhaseEvent) per event */
    CocoPhaseState next; /* after every step ran; LAST: unchanged */
    CocoPhaseState wait; /* when a step stops early; LAST: unchanged */
    const char *phase; /* the libvirt v3 phase this row belongs to */
    CocoPhaseStep steps[COCO_PHASE_RULE_MAX_STEPS]; /* LAST-terminated */
} CocoPhaseRule;

/* The whole table, and the first rule that applies (NULL: none). */
const CocoPhaseRule *cocoPhaseRules(size_t *nrules);
const CocoPhaseRule *cocoPhaseRuleLookup(CocoFirmwareRole role,
                                         CocoPhaseState state,
                                         CocoPhaseEvent event);

/* The gate an event holds (COCO_PHASE_GATE_LAST: none). */
CocoPhaseGate cocoPhaseEventGate(CocoPhaseEvent event);

/* "a, b, c": the relay/agent events @role accepts in @state. */
char *cocoPhaseExpectedEvents(CocoFirmwareRole role, CocoPhaseState state);

/*
 * What the relay reports for what it sees on the QEMU monitor (the table
 * of docs/phases.rst, "Events"): a QMP command libvirt sends, or a QMP
 * event QEMU emits (@status: the MIGRATION event's "status", else NULL).
 * COCO_PHASE_EVENT_LAST: nothing to report for @role. The relay holds the
 * commands whose event has a gate (cocoPhaseEventGate()).
 */
CocoPhaseEvent cocoPhaseEventFromQmpCommand(CocoFirmwareRole role,
                                            const char *command);
CocoPhaseEvent cocoPhaseEventFromQmpEvent(CocoFirmwareRole role,
                                          const char *event,
                                          const char *status);
