/*
 * cocophase.c: the v3 phase -> sub-command mapping, as a table
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Source: ARCHITECTURE.md ("Where the phases are mapped") and
 * research/coco.md §3. docs/phases.rst explains every row.
 */

#include "migration/cocophase.h"

COCO_ENUM_IMPL(cocoPhaseEvent, COCO_PHASE_EVENT_LAST, "incoming", "migrate",
               "precopy-round", "query", "pre-switchover", "cont", "qemu-gone",
               "cancel", "migration-failed", "peer-lost", "local-failure",
               "deadline", "peer-reconnected", "give-up", "hold-expired",
               "peer-agent", "peer-prepared", "peer-setup", "peer-memory",
               "peer-token", "peer-vcpu", "peer-start-token", "peer-setup-done",
               "peer-round-done", "peer-switchover-done", "peer-committed",
               "peer-abort-request", "peer-abort-token", "peer-aborted",
               "data-setup", "data-round", "data-start");

COCO_ENUM_IMPL(cocoPhaseState, COCO_PHASE_STATE_LAST, "idle", "preparing",
               "setup", "precopy", "blackout", "switchover", "handover",
               "await-token", "committed", "finished", "aborted", "frozen",
               "failed", "interrupted");

COCO_ENUM_IMPL(cocoPhaseStep, COCO_PHASE_STEP_LAST, "prepare-start", "prepare",
               "await-keys", "send-prepared", "setup", "round-or-release",
               "round", "source-blackout", "final", "import", "send-setup-done",
               "send-round-done", "send-switchover-done", "commit",
               "send-committed", "finish", "abort", "abort-with-token",
               "request-token", "send-aborted", "freeze", "yield",
               "release-incoming", "release-migrate-continue", "release-cont",
               "refuse-held", "refuse-cont", "pause-source", "resume-source",
               "reconcile");

COCO_ENUM_IMPL(cocoPhaseGate, COCO_PHASE_GATE_LAST, "migrate-incoming",
               "migrate", "migrate-continue", "cont");

COCO_ENUM_IMPL(cocoPhaseVerdict, COCO_PHASE_VERDICT_LAST, "release", "refuse",
               "cancel", "pause", "resume");

G_STATIC_ASSERT(COCO_PHASE_EVENT_LAST <= 64);
G_STATIC_ASSERT(COCO_PHASE_STATE_LAST <= 32);

/* What each state means, per role. */
typedef struct {
    bool final[COCO_FIRMWARE_ROLE_LAST];
    bool may_run[COCO_FIRMWARE_ROLE_LAST];
    bool data_done;
    bool after_token; /* source */
    /* The guest is paused for a switchover that is under way (not a
     * failure's wait): the guest's downtime on that host. */
    bool switching[COCO_FIRMWARE_ROLE_LAST];
} CocoPhaseStateProps;

/* clang-format off */
static const CocoPhaseStateProps cocoPhaseStateTable[] = {
    /*                       final          may_run        data   token  switching */
    [COCO_PHASE_STATE_IDLE] =        {{false, false}, {true, false},  false, false, {false, false}},
    [COCO_PHASE_STATE_PREPARING] =   {{false, false}, {true, false},  false, false, {false, false}},
    [COCO_PHASE_STATE_SETUP] =       {{false, false}, {true, false},  false, false, {false, false}},
    [COCO_PHASE_STATE_PRECOPY] =     {{false, false}, {true, false},  false, false, {false, false}},
    [COCO_PHASE_STATE_BLACKOUT] =    {{false, false}, {false, false}, false, false, {true, false}},
    [COCO_PHASE_STATE_SWITCHOVER] =  {{false, false}, {false, false}, false, true,  {true, false}},
    [COCO_PHASE_STATE_HANDOVER] =    {{false, false}, {false, false}, false, true,  {true, true}},
    [COCO_PHASE_STATE_AWAIT_TOKEN] = {{false, false}, {false, false}, false, true,  {false, false}},
    [COCO_PHASE_STATE_COMMITTED] =   {{true, true},   {false, true},  true,  true,  {false, false}},
    [COCO_PHASE_STATE_FINISHED] =    {{true, true},   {false, false}, true,  true,  {false, false}},
    [COCO_PHASE_STATE_ABORTED] =     {{true, true},   {true, false},  true,  false, {false, false}},
    [COCO_PHASE_STATE_FROZEN] =      {{false, false}, {false, false}, true,  true,  {false, false}},
    [COCO_PHASE_STATE_FAILED] =      {{true, true},   {true, false},  true,  false, {false, false}},
    [COCO_PHASE_STATE_INTERRUPTED] = {{true, true},   {false, false}, true,  false, {false, false}},
};
/* clang-format on */
G_STATIC_ASSERT(G_N_ELEMENTS(cocoPhaseStateTable) == COCO_PHASE_STATE_LAST);
G_STATIC_ASSERT(COCO_FIRMWARE_ROLE_SOURCE < COCO_FIRMWARE_ROLE_LAST &&
                COCO_FIRMWARE_ROLE_DESTINATION < COCO_FIRMWARE_ROLE_LAST);

static const CocoPhaseStateProps *
cocoPhaseStateProps(CocoFirmwareRole role, CocoPhaseState state)
{
    if ((unsigned int)state >= COCO_PHASE_STATE_LAST ||
        (unsigned int)role >= COCO_FIRMWARE_ROLE_LAST)
        return NULL;
    return &cocoPhaseStateTable[state];
}

bool
cocoPhaseStateIsFinal(CocoFirmwareRole role, CocoPhaseState state)
{
    const CocoPhaseStateProps *p = cocoPhaseStateProps(role, state);

    return p && p->final[role];
}

bool
cocoPhaseStateIsSettled(CocoFirmwareRole role, CocoPhaseState state)
{
    return cocoPhaseStateIsFinal(role, state) ||
           (role == COCO_FIRMWARE_ROLE_SOURCE &&
            state == COCO_PHASE_STATE_FROZEN);
}

bool
cocoPhaseStateMayRun(CocoFirmwareRole role, CocoPhaseState state)
{
    const CocoPhaseStateProps *p = cocoPhaseStateProps(role, state);

    return p && p->may_run[role];
}

bool
cocoPhaseStateSwitching(CocoFirmwareRole role, CocoPhaseState state)
{
    const CocoPhaseStateProps *p = cocoPhaseStateProps(role, state);

    return p && p->switching[role];
}

bool
cocoPhaseStateDataDone(CocoPhaseState state)
{
    const CocoPhaseStateProps *p =
        cocoPhaseStateProps(COCO_FIRMWARE_ROLE_SOURCE, state);

    return p && p->data_done;
}

bool
cocoPhaseStateAfterStartToken(CocoFirmwareRole role, CocoPhaseState state)
{
    const CocoPhaseStateProps *p = cocoPhaseStateProps(role, state);

    return p && role == COCO_FIRMWARE_ROLE_SOURCE && p->after_token;
}

CocoPhaseState
cocoPhaseStateParse(const char *name)
{
    int v = name ? cocoPhaseStateTypeFromString(name) : -1;

    return v < 0 ? COCO_PHASE_STATE_LAST : (CocoPhaseState)v;
}

bool
cocoPhaseEventIsPeer(CocoPhaseEvent event)
{
    return event >= COCO_PHASE_EVENT_FIRST_PEER &&
           event <= COCO_PHASE_EVENT_LAST_PEER;
}

#define ST(x) (1U << COCO_PHASE_STATE_##x)
#define EV(x) (1ULL << COCO_PHASE_EVENT_##x)
#define STEP(x) COCO_PHASE_STEP_##x
#define STATE(x) COCO_PHASE_STATE_##x
#define END COCO_PHASE_STEP_LAST
#define SAME COCO_PHASE_STATE_LAST
#define SRC COCO_FIRMWARE_ROLE_SOURCE
#define DST COCO_FIRMWARE_ROLE_DESTINATION

/* Every peer message and data event: what a finished session ignores
 * (messages already in flight when it ended). */
#define EV_ANY_PEER                                                            \
 (EV(PEER_AGENT) | EV(PEER_PREPARED) | EV(PEER_SETUP) | EV(PEER_MEMORY) |      \
  EV(PEER_TOKEN) | EV(PEER_VCPU) | EV(PEER_START_TOKEN) |                      \
  EV(PEER_SETUP_DONE) | EV(PEER_ROUND_DONE) | EV(PEER_SWITCHOVER_DONE) |       \
  EV(PEER_COMMITTED) | EV(PEER_ABORT_REQUEST) | EV(PEER_ABORT_TOKEN) |         \
  EV(PEER_ABORTED) | EV(DATA_SETUP) | EV(DATA_ROUND) | EV(DATA_START))
/* Events the agent raises about deadlines and reconnections. */
#define EV_AGENT                                                               \
 (EV(DEADLINE) | EV(PEER_RECONNECTED) | EV(GIVE_UP) | EV(HOLD_EXPIRED))
#define EV_LATE                                                                \
 (EV_ANY_PEER | EV(PEER_LOST) | EV(QEMU_GONE) | EV(CANCEL) |                   \
  EV(MIGRATION_FAILED) | EV(PRECOPY_ROUND) | EV_AGENT)

/* Source states before the start token, and after it. */
#define ST_S_BEFORE_TOKEN                                                      \
 (ST(PREPARING) | ST(SETUP) | ST(PRECOPY) | ST(BLACKOUT))
#define ST_S_AFTER_TOKEN                                                       \
 (ST(SWITCHOVER) | ST(HANDOVER) | ST(AWAIT_TOKEN) | ST(FROZEN))
/* Destination states before the commit. */
#define ST_D_LIVE (ST(PREPARING) | ST(SETUP) | ST(PRECOPY) | ST(HANDOVER))

/* clang-format off */
static const CocoPhaseRule cocoPhaseTable[] = {
    /* query-migrate: anywhere, nothing to do (libvirt polls it). */
    {SRC, ~0U, EV(QUERY),
     SAME, SAME, "any",
     {END}},
    {DST, ~0U, EV(QUERY),
     SAME, SAME, "any",
     {END}},
    /* ---- source ---------------------------------------------------- */
    /* Perform (S), start: `migrate` held; agent exchange, SETUP. */
    {SRC, ST(IDLE), EV(MIGRATE),
     STATE(SETUP), STATE(PREPARING), "Perform (S) start",
     {STEP(PREPARE_START), STEP(AWAIT_KEYS), STEP(SETUP), END}},
    {SRC, ST(PREPARING), EV(PEER_AGENT),
     STATE(SETUP), SAME, "Perform (S) start",
     {STEP(PREPARE), STEP(AWAIT_KEYS), STEP(SETUP), END}},
    {SRC, ST(PREPARING), EV(PEER_PREPARED),
     STATE(SETUP), SAME, "Perform (S) start",
     {STEP(AWAIT_KEYS), STEP(SETUP), END}},
    /* Perform (S), precopy: the configured rounds, then release
     * `migrate`; more rounds when the agent asks. */
    {SRC, ST(SETUP), EV(PEER_SETUP_DONE),
     STATE(PRECOPY), SAME, "Perform (S) precopy",
     {STEP(ROUND_OR_RELEASE), END}},
    {SRC, ST(PRECOPY), EV(PEER_ROUND_DONE),
     SAME, SAME, "Perform (S) precopy",
     {STEP(ROUND_OR_RELEASE), END}},
    {SRC, ST(PRECOPY), EV(PRECOPY_ROUND),
     SAME, SAME, "Perform (S) precopy",
     {STEP(ROUND), END}},
    /* Perform (S), switchover: migrate-continue held. */
    {SRC, ST(PRECOPY), EV(PRE_SWITCHOVER),
     STATE(SWITCHOVER), SAME, "Perform (S) switchover",
     {STEP(PAUSE_SOURCE), STEP(BLACKOUT), STEP(FINAL), END}},
    {SRC, ST(SWITCHOVER), EV(PEER_SWITCHOVER_DONE),
     STATE(HANDOVER), SAME, "Perform (S) switchover",
     {STEP(RELEASE_CONTINUE), END}},
    /* Failure (1) and (2): before the start token, ABORT(S) without a
     * token; the source keeps or resumes running. */
    {SRC, ST_S_BEFORE_TOKEN,
     EV(CANCEL) | EV(MIGRATION_FAILED) | EV(QEMU_GONE) | EV(PEER_LOST) |
       EV(PEER_ABORTED) | EV(PEER_ABORT_TOKEN) | EV(LOCAL_FAILURE) | EV(CONT) |
       EV(DEADLINE),
     STATE(ABORTED), SAME, "Perform (S) failed",
     {STEP(ABORT), STEP(SEND_ABORTED), STEP(RESUME_SOURCE), STEP(REFUSE_HELD),
      END}},
    /* Held too long before the start token (nothing to wait for). */
    {SRC, ST_S_BEFORE_TOKEN | ST(IDLE), EV(HOLD_EXPIRED) | EV(PEER_RECONNECTED),
     SAME, SAME, "Perform (S)",
     {END}},
    /* Confirm (S), success: QEMU ends. */
    {SRC, ST_S_AFTER_TOKEN | ST(COMMITTED), EV(QEMU_GONE),
     STATE(FINISHED), SAME, "Confirm (S) success",
     {STEP(FINISH), END}},
    /* Confirm (S), cancelled, failure (3): the abort token travels back. */
    {SRC, ST(SWITCHOVER) | ST(HANDOVER),
     EV(CONT) | EV(CANCEL) | EV(MIGRATION_FAILED) | EV(LOCAL_FAILURE),
     STATE(AWAIT_TOKEN), SAME, "Confirm (S) cancelled",
     {STEP(REQUEST_TOKEN), END}},
    {SRC, ST_S_AFTER_TOKEN, EV(PEER_ABORT_TOKEN),
     STATE(ABORTED), SAME, "Confirm (S) cancelled",
     {STEP(ABORT_WITH_TOKEN), STEP(RESUME_SOURCE), STEP(REFUSE_HELD), END}},
    {SRC, ST(AWAIT_TOKEN), EV(CONT) | EV(CANCEL) | EV(MIGRATION_FAILED),
     SAME, SAME, "Confirm (S) cancelled",
     {END}},
    /* Failure (4): the destination stops answering after the start token
     * (a cut, a hung host, the switchover deadline): the source stays
     * paused and the agent reconnects to learn the token's fate; the
     * destination's abort token resumes it, its commit yields to it. */
    {SRC, ST(SWITCHOVER) | ST(HANDOVER) | ST(AWAIT_TOKEN),
     EV(PEER_LOST) | EV(DEADLINE),
     STATE(AWAIT_TOKEN), SAME, "Confirm (S) reconcile",
     {STEP(RECONCILE), END}},
    {SRC, ST(AWAIT_TOKEN) | ST(FROZEN), EV(PEER_RECONNECTED),
     SAME, SAME, "Confirm (S) reconcile",
     {STEP(REQUEST_TOKEN), END}},
    {SRC, ST(AWAIT_TOKEN) | ST(SWITCHOVER) | ST(HANDOVER), EV(HOLD_EXPIRED),
     SAME, SAME, "Confirm (S) reconcile",
     {STEP(REFUSE_HELD), END}},
    {SRC, ST(AWAIT_TOKEN), EV(GIVE_UP),
     STATE(FROZEN), SAME, "Confirm (S) reconcile",
     {STEP(FREEZE), END}},
    {SRC, ST_S_AFTER_TOKEN, EV(PEER_ABORTED) | EV(LOCAL_FAILURE),
     STATE(FROZEN), SAME, "Confirm (S) cancelled",
     {STEP(FREEZE), END}},
    {SRC, ST(FROZEN), EV(CONT) | EV(CANCEL) | EV(MIGRATION_FAILED),
     SAME, SAME, "Confirm (S) cancelled",
     {STEP(FREEZE), END}},
    {SRC, ST(FROZEN), EV(PEER_LOST) | EV(DEADLINE) | EV(GIVE_UP) |
       EV(HOLD_EXPIRED),
     SAME, SAME, "Confirm (S) cancelled",
     {STEP(REFUSE_HELD), END}},
    /* Failure (5): the destination committed and owns the guest. */
    {SRC, ST_S_AFTER_TOKEN, EV(PEER_COMMITTED),
     STATE(COMMITTED), SAME, "Finish (D) done",
     {STEP(YIELD), STEP(REFUSE_HELD), END}},
    {SRC, ST(COMMITTED), EV(CONT) | EV(CANCEL) | EV(MIGRATION_FAILED),
     SAME, SAME, "Confirm (S) cancelled",
     {STEP(REFUSE_HELD), END}},
    /* After the end. */
    {SRC, ST(ABORTED), EV(CONT),
     SAME, SAME, "Confirm (S) cancelled",
     {STEP(RELEASE_CONT), END}},
    {SRC, ST(ABORTED), EV(PRE_SWITCHOVER),
     SAME, SAME, "Perform (S) failed",
     {STEP(REFUSE_HELD), END}},
    {SRC, ST(FINISHED), EV(CONT),
     SAME, SAME, "Confirm (S) success",
     {STEP(REFUSE_CONT), END}},
    {SRC, ST(IDLE), EV(QEMU_GONE) | EV(PEER_LOST),
     STATE(ABORTED), SAME, "none",
     {END}},
    {SRC, ST(IDLE), EV(LOCAL_FAILURE),
     STATE(ABORTED), SAME, "Perform (S) failed",
     {STEP(SEND_ABORTED), STEP(REFUSE_HELD), END}},
    {SRC, ST(ABORTED) | ST(FINISHED) | ST(COMMITTED), EV(LOCAL_FAILURE),
     SAME, SAME, "after the end",
     {STEP(REFUSE_HELD), END}},
    {SRC, ST(ABORTED) | ST(FINISHED) | ST(COMMITTED), EV_LATE,
     SAME, SAME, "after the end",
     {END}},
    /* ---- destination ----------------------------------------------- */
    /* The agent's deadlines are the source's; a reconnection changes
     * nothing here (the session answers what the source asks). */
    {DST, ~0U, EV_AGENT,
     SAME, SAME, "any",
     {END}},
    /* Prepare (D): migrate-incoming held. */
    {DST, ST(IDLE), EV(INCOMING),
     STATE(PREPARING), SAME, "Prepare (D)",
     {STEP(PREPARE_START), STEP(RELEASE_INCOMING), END}},
    {DST, ST(PREPARING), EV(PEER_AGENT),
     STATE(SETUP), SAME, "Perform (S) start",
     {STEP(PREPARE), STEP(AWAIT_KEYS), STEP(SEND_PREPARED), END}},
    /* Perform (S): the data the source sends. */
    {DST, ST(SETUP) | ST(PRECOPY),
     EV(PEER_SETUP) | EV(PEER_MEMORY) | EV(PEER_TOKEN) | EV(PEER_VCPU) |
       EV(PEER_START_TOKEN),
     SAME, SAME, "Perform (S)",
     {STEP(IMPORT), END}},
    {DST, ST(SETUP), EV(DATA_SETUP),
     STATE(PRECOPY), SAME, "Perform (S) start",
     {STEP(SEND_SETUP_DONE), END}},
    {DST, ST(PRECOPY), EV(DATA_ROUND),
     SAME, SAME, "Perform (S) precopy",
     {STEP(SEND_ROUND_DONE), END}},
    {DST, ST(PRECOPY), EV(DATA_START),
     STATE(HANDOVER), SAME, "Perform (S) switchover",
     {STEP(SEND_SWITCHOVER_DONE), END}},
    /* Finish (D): cont held; commit, then release it. */
    {DST, ST(HANDOVER), EV(CONT),
     STATE(COMMITTED), SAME, "Finish (D)",
     {STEP(COMMIT), STEP(SEND_COMMITTED), STEP(RELEASE_CONT), END}},
    /* The source is lost after the start token: the destination stays
     * ready to commit (it is the only copy that can still run). */
    {DST, ST(HANDOVER), EV(PEER_LOST),
     SAME, SAME, "Finish (D)",
     {END}},
    /* Finish (D) cancelled, or any failure before the commit: ABORT(D),
     * the abort token goes back to the source. */
    {DST, ST_D_LIVE,
     EV(QEMU_GONE) | EV(LOCAL_FAILURE) | EV(MIGRATION_FAILED) | EV(CANCEL) |
       EV(PEER_ABORTED) | EV(PEER_ABORT_REQUEST) | EV(PEER_LOST) | EV(CONT),
     STATE(ABORTED), SAME, "Finish (D) cancelled",
     {STEP(ABORT), STEP(REFUSE_HELD), END}},
    {DST, ST(ABORTED), EV(PEER_ABORT_REQUEST),
     SAME, SAME, "Finish (D) cancelled",
     {STEP(ABORT), END}},
    {DST, ST(ABORTED) | ST(FINISHED), EV(CONT),
     SAME, SAME, "Finish (D) cancelled",
     {STEP(REFUSE_CONT), END}},
    /* Failure (5): after the commit nothing can abort any more. */
    /* A source that reconnects after the end asks again. */
    {DST, ST(FINISHED), EV(PEER_ABORT_REQUEST),
     SAME, SAME, "Finish (D) done",
     {STEP(SEND_COMMITTED), END}},
    {DST, ST(COMMITTED), EV(PEER_ABORT_REQUEST),
     SAME, SAME, "Finish (D) done",
     {STEP(SEND_COMMITTED), END}},
    {DST, ST(COMMITTED), EV(CONT),
     SAME, SAME, "Finish (D) done",
     {STEP(RELEASE_CONT), END}},
    {DST, ST(COMMITTED), EV(QEMU_GONE),
     STATE(FINISHED), SAME, "Finish (D) done",
     {END}},
    {DST, ST(IDLE), EV(QEMU_GONE) | EV(PEER_LOST),
     STATE(ABORTED), SAME, "none",
     {END}},
    {DST, ST(IDLE), EV(LOCAL_FAILURE),
     STATE(ABORTED), SAME, "Prepare (D)",
     {STEP(REFUSE_HELD), END}},
    {DST, ST(ABORTED) | ST(FINISHED) | ST(COMMITTED), EV(LOCAL_FAILURE),
     SAME, SAME, "after the end",
     {STEP(REFUSE_HELD), END}},
    {DST, ST(ABORTED) | ST(FINISHED) | ST(COMMITTED), EV_LATE,
     SAME, SAME, "after the end",
     {END}},
};
/* clang-format on */

const CocoPhaseRule *
cocoPhaseRules(size_t *nrules)
{
    *nrules = G_N_ELEMENTS(cocoPhaseTable);
    return cocoPhaseTable;
}

const CocoPhaseRule *
cocoPhaseRuleLookup(CocoFirmwareRole role, CocoPhaseState state,
                    CocoPhaseEvent event)
{
    size_t i;

    if ((unsigned int)state >= COCO_PHASE_STATE_LAST ||
        (unsigned int)event >= COCO_PHASE_EVENT_LAST)
        return NULL;
    for (i = 0; i < G_N_ELEMENTS(cocoPhaseTable); i++) {
        const CocoPhaseRule *r = &cocoPhaseTable[i];

        if (r->role == role && (r->states & (1U << state)) &&
            (r->events & (1ULL << event)))
            return r;
    }
    return NULL;
}

CocoPhaseGate
cocoPhaseEventGate(CocoPhaseEvent event)
{
    switch (event) {
    case COCO_PHASE_EVENT_INCOMING:
        return COCO_PHASE_GATE_MIGRATE_INCOMING;
    case COCO_PHASE_EVENT_MIGRATE:
        return COCO_PHASE_GATE_MIGRATE;
    case COCO_PHASE_EVENT_PRE_SWITCHOVER:
        return COCO_PHASE_GATE_MIGRATE_CONTINUE;
    case COCO_PHASE_EVENT_CONT:
        return COCO_PHASE_GATE_CONT;
    case COCO_PHASE_EVENT_PRECOPY_ROUND:
    case COCO_PHASE_EVENT_QUERY:
    case COCO_PHASE_EVENT_QEMU_GONE:
    case COCO_PHASE_EVENT_CANCEL:
    case COCO_PHASE_EVENT_MIGRATION_FAILED:
    case COCO_PHASE_EVENT_PEER_LOST:
    case COCO_PHASE_EVENT_LOCAL_FAILURE:
    case COCO_PHASE_EVENT_DEADLINE:
    case COCO_PHASE_EVENT_PEER_RECONNECTED:
    case COCO_PHASE_EVENT_GIVE_UP:
    case COCO_PHASE_EVENT_HOLD_EXPIRED:
    case COCO_PHASE_EVENT_PEER_AGENT:
    case COCO_PHASE_EVENT_PEER_PREPARED:
    case COCO_PHASE_EVENT_PEER_SETUP:
    case COCO_PHASE_EVENT_PEER_MEMORY:
    case COCO_PHASE_EVENT_PEER_TOKEN:
    case COCO_PHASE_EVENT_PEER_VCPU:
    case COCO_PHASE_EVENT_PEER_START_TOKEN:
    case COCO_PHASE_EVENT_PEER_SETUP_DONE:
    case COCO_PHASE_EVENT_PEER_ROUND_DONE:
    case COCO_PHASE_EVENT_PEER_SWITCHOVER_DONE:
    case COCO_PHASE_EVENT_PEER_COMMITTED:
    case COCO_PHASE_EVENT_PEER_ABORT_REQUEST:
    case COCO_PHASE_EVENT_PEER_ABORT_TOKEN:
    case COCO_PHASE_EVENT_PEER_ABORTED:
    case COCO_PHASE_EVENT_DATA_SETUP:
    case COCO_PHASE_EVENT_DATA_ROUND:
    case COCO_PHASE_EVENT_DATA_START:
    case COCO_PHASE_EVENT_LAST:
        break;
    }
    return COCO_PHASE_GATE_LAST;
}

char *
cocoPhaseExpectedEvents(CocoFirmwareRole role, CocoPhaseState state)
{
    g_autoptr(GString) out = g_string_new(NULL);
    int ev;

    for (ev = 0; ev < COCO_PHASE_EVENT_LAST; ev++) {
        if (ev == COCO_PHASE_EVENT_LOCAL_FAILURE || cocoPhaseEventIsPeer(ev) ||
            ev >= COCO_PHASE_EVENT_DATA_SETUP)
            continue;
        if (!cocoPhaseRuleLookup(role, state, ev))
            continue;
        if (out->len)
            g_string_append(out, ", ");
        g_string_append(out, cocoPhaseEventTypeToString(ev));
    }
    if (!out->len)
        g_string_append(out, "-");
    return g_string_free(g_steal_pointer(&out), FALSE);
}

typedef struct {
    const char *name; /* QMP command or event */
    const char *status; /* MIGRATION event status, or NULL */
    bool source; /* reported on the source */
    bool destination; /* reported on the destination */
    CocoPhaseEvent event;
} CocoPhaseQmp;

static const CocoPhaseQmp cocoPhaseQmpCommands[] = {
    {"migrate-incoming", NULL, false, true, COCO_PHASE_EVENT_INCOMING},
    {"migrate", NULL, true, false, COCO_PHASE_EVENT_MIGRATE},
    {"query-migrate", NULL, true, true, COCO_PHASE_EVENT_QUERY},
    /* libvirt answers QEMU's pre-switchover state with migrate-continue:
     * the relay holds that command */
    {"migrate-continue", NULL, true, false, COCO_PHASE_EVENT_PRE_SWITCHOVER},
    {"cont", NULL, true, true, COCO_PHASE_EVENT_CONT},
    {"migrate_cancel", NULL, true, false, COCO_PHASE_EVENT_CANCEL},
    {"quit", NULL, true, true, COCO_PHASE_EVENT_QEMU_GONE},
};

static const CocoPhaseQmp cocoPhaseQmpEvents[] = {
    {"MIGRATION", "failed", true, true, COCO_PHASE_EVENT_MIGRATION_FAILED},
    {"MIGRATION", "cancelled", true, false, COCO_PHASE_EVENT_CANCEL},
};

static CocoPhaseEvent
cocoPhaseQmpLookup(const CocoPhaseQmp *table, size_t n, CocoFirmwareRole role,
                   const char *name, const char *status)
{
    size_t i;

    if (!name)
        return COCO_PHASE_EVENT_LAST;
    for (i = 0; i < n; i++) {
        const CocoPhaseQmp *q = &table[i];

        if (STRNEQ(q->name, name) || !STREQ_NULLABLE(q->status, status))
            continue;
        if ((role == COCO_FIRMWARE_ROLE_SOURCE && q->source) ||
            (role == COCO_FIRMWARE_ROLE_DESTINATION && q->destination))
            return q->event;
    }
    return COCO_PHASE_EVENT_LAST;
}

CocoPhaseEvent
cocoPhaseEventFromQmpCommand(CocoFirmwareRole role, const char *command)
{
    return cocoPhaseQmpLookup(cocoPhaseQmpCommands,
                              G_N_ELEMENTS(cocoPhaseQmpCommands), role, command,
                              NULL);
}

CocoPhaseEvent
cocoPhaseEventFromQmpEvent(CocoFirmwareRole role, const char *event,
                           const char *status)
{
    return cocoPhaseQmpLookup(cocoPhaseQmpEvents,
                              G_N_ELEMENTS(cocoPhaseQmpEvents), role, event,
                              status);
}
