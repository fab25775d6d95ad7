/*
 * cocomigrationsession.h: one side of one confidential migration (the
 * phase engine)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A session interprets the table of cocophase.h for its role. It does no
 * I/O of its own: the host agent feeds it
 *  - the events the QMP relay observes (cocoMigrationSessionHandleEvent),
 *  - the messages of the peer host's agent (cocoMigrationSessionReceive),
 * and applies the decisions it makes about the QMP commands the relay
 * holds (CocoPhaseDecisionFunc). Messages to the peer go through the
 * CocoPhaseSendFunc; guest memory and state through a CocoPhaseData.
 *
 * Invariants (tested): the source and the destination never both run;
 * when neither can, the source says so (COCO_ERROR_MIGRATION_SOURCE_FROZEN
 * on every cont) or the destination's QEMU is gone. An event that does not
 * fit the current state fails with COCO_ERROR_MIGRATION_PHASE and changes
 * nothing.
 *
 * Not thread-safe: call it from one thread (the agent's main loop).
 */

#pragma once

#include "internal.h"
#include "firmware/cocofirmware.h"
#include "migration/cocophase.h"
#include "migration/cocophasedata.h"
#include "migration/cocophasemessage.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct _CocoMigrationSession CocoMigrationSession;

/* What the relay must do with a QMP command it holds. */
typedef struct {
    CocoPhaseGate gate;
    CocoPhaseVerdict verdict;
    int code; /* REFUSE/CANCEL: the CocoErrorCode */
    const char *message; /* REFUSE/CANCEL: one line for the QMP error */
} CocoPhaseDecision;

typedef void (*CocoPhaseDecisionFunc)(void *opaque,
                                      const CocoPhaseDecision *decision);

/*
 * Source: asked at every precopy round boundary, @rounds rounds started so
 * far: 1 runs another round, 0 releases `migrate` (the switchover may
 * come), -1 with @error aborts the migration with that reason.
 */
typedef int (*CocoPhaseNextRoundFunc)(void *opaque, unsigned int rounds,
                                      GError **error);

/*
 * The session's guest starts (@on true) or ends its switchover's downtime
 * (cocoPhaseStateSwitching()): true before the steps of a rule that leads
 * into such a state run (the final transfer is part of it), false once the
 * session is in a state that is not. Calls alternate, starting with true.
 */
typedef void (*CocoPhaseSwitchingFunc)(void *opaque, bool on);

typedef struct {
    CocoFirmwareRole role;
    CocoFirmware *fw; /* borrowed; must outlive the session */
    unsigned int nvcpus; /* vCPUs to export (source) */
    unsigned int precopy_rounds; /* source: rounds run before `migrate` is
                                    released (0: memory moves at the
                                    switchover gate); ignored with
                                    next_round */
    CocoPhaseNextRoundFunc next_round; /* source: the precopy policy */
    void *next_round_opaque;
    CocoPhaseData *data; /* taken by the session */
    CocoPhaseSendFunc send;
    void *send_opaque;
    CocoPhaseDecisionFunc decide;
    void *decide_opaque;
    CocoPhaseSwitchingFunc switching; /* optional */
    void *switching_opaque;
} CocoMigrationSessionConfig;

typedef struct {
    uint64_t events; /* events and messages handled */
    uint64_t messages_sent;
    uint64_t messages_received;
    uint64_t bytes_sent; /* message payload bytes */
    uint64_t bytes_received;
    uint64_t rounds; /* precopy rounds (source) */
    uint64_t fw_calls; /* sub-commands the session itself issued */
    CocoPhaseDataStats data;
    int64_t blackout_us; /* source: SOURCE_BLACKOUT time, 0 = none */
    int64_t downtime_us; /* source: blackout -> migrate-continue released;
                              destination: 0 */
} CocoPhaseCounters;

/* One handled event, in order. Times are microseconds since the session
 * was created. */
typedef struct {
    int64_t at_us;
    int64_t duration_us;
    CocoPhaseEvent event;
    CocoPhaseState from;
    CocoPhaseState to;
    const char *phase; /* the table row's libvirt phase */
    char *steps; /* "step,step,..." as run; "" none */
    int code; /* 0, or the CocoErrorCode it failed with */
} CocoPhaseTimelineEntry;

CocoMigrationSession *cocoMigrationSessionNew(
    const CocoMigrationSessionConfig *cfg, GError **error);
void cocoMigrationSessionFree(CocoMigrationSession *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoMigrationSession, cocoMigrationSessionFree)

/*
 * An event the relay observed or the agent raises (not a peer-* event).
 * Returns 0 when it was handled as planned; -1 with @error when it does
 * not fit the state (COCO_ERROR_MIGRATION_PHASE, nothing changed: the
 * relay refuses the command it holds with that message), or when a step
 * failed (the failure path ran already and its decisions were made; the
 * error says what failed).
 */
int cocoMigrationSessionHandleEvent(CocoMigrationSession *s,
                                    CocoPhaseEvent event, GError **error);
/* The same, with the agent's reason for the event (the session's failure
 * when the event ends it and nothing said why before): "the peer host
 * 10.97.0.2 stopped answering during the switchover". */
int cocoMigrationSessionHandleEventWhy(CocoMigrationSession *s,
                                       CocoPhaseEvent event, const GError *why,
                                       GError **error);

/*
 * The side's own data path failed outside a step (the destination's
 * transfer engine, on its threads, refused a bundle): run the failure path
 * of the current state (local-failure) with @why as the session's failure.
 * Nothing happens once the session ended. Same return convention.
 */
int cocoMigrationSessionFail(CocoMigrationSession *s, const GError *why,
                             GError **error);

/* A message from the peer agent. Same return convention. */
int cocoMigrationSessionReceive(CocoMigrationSession *s,
                                const CocoPhaseMessage *msg, GError **error);

CocoFirmwareRole cocoMigrationSessionGetRole(CocoMigrationSession *s);
CocoPhaseState cocoMigrationSessionGetState(CocoMigrationSession *s);

/* The engine's view: may this side's guest run now? (source: until the
 * blackout and after an abort; destination: once committed). */
bool cocoMigrationSessionMayRun(CocoMigrationSession *s);

/* True while the relay holds @gate and the engine has not decided. */
bool cocoMigrationSessionGateHeld(CocoMigrationSession *s, CocoPhaseGate gate);

/* Why the session aborted or froze (NULL while all went well). */
const GError *cocoMigrationSessionGetFailure(CocoMigrationSession *s);

const CocoPhaseCounters *cocoMigrationSessionGetCounters(
    CocoMigrationSession *s);
const CocoPhaseTimelineEntry *cocoMigrationSessionGetTimeline(
    CocoMigrationSession *s, size_t *n);

/* The timeline as text, one line per entry, for logs and --timeline. */
char *cocoMigrationSessionFormatTimeline(CocoMigrationSession *s);
