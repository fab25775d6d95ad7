/*
 * cocomigrationsession.c: the phase engine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "migration/cocomigrationsession.h"
#include "util/cocoerror.h"

#include <errno.h>

#define COCO_SESSION_BUF (64U * 1024U)
#define COCO_SESSION_MAX_FAILURES 8
/* Bytes of the reason an abort message carries to the peer. */
#define COCO_SESSION_REASON_MAX 512

typedef enum {
    COCO_STEP_DONE = 0, /* next step */
    COCO_STEP_WAIT = 1, /* stop here: wait for another event */
} CocoStepResult;

struct _CocoMigrationSession {
    CocoMigrationSessionConfig cfg;
    CocoPhaseState state;

    bool keys_local;
    bool keys_peer;
    bool setup_attempted; /* SETUP issued: a firmware session may exist */
    bool setup_ok;
    bool start_token; /* source: the firmware emitted it */
    bool migrate_released;
    bool continue_released;
    bool cancel_sent;
    bool paused; /* PAUSE decided and not undone */
    bool switching; /* cfg.switching told true last */
    bool data_stopped;
    bool held[COCO_PHASE_GATE_LAST];
    unsigned int rounds_started;

    CocoPhaseEvent cause; /* the event being handled */
    const CocoPhaseMessage *msg; /* the message being handled */
    const GError *why; /* the agent's reason for the event being handled */
    GError *failure;
    GQueue pending; /* internal events, GINT_TO_POINTER */
    GByteArray *buf;

    CocoPhaseCounters counters;
    GArray *timeline; /* CocoPhaseTimelineEntry */
    GString *steps_run;
    int64_t t0;
};

static void
cocoPhaseTimelineEntryClear(gpointer p)
{
    CocoPhaseTimelineEntry *e = p;

    g_free(e->steps);
}

static int
cocoSessionSend(void *opaque, const CocoPhaseMessage *msg, GError **error)
{
    CocoMigrationSession *s = opaque;

    if (!s->cfg.send)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_IO, "%s",
            _("the session has no transport to the peer agent"));
    if (s->cfg.send(s->cfg.send_opaque, msg, error) < 0)
        return -1;
    s->counters.messages_sent++;
    s->counters.bytes_sent += msg->len;
    return 0;
}

static int
cocoSessionSendSimple(CocoMigrationSession *s, CocoPhaseEvent type,
                      const void *data, size_t len, GError **error)
{
    CocoPhaseMessage msg = {type, 0, data, len};

    return cocoSessionSend(s, &msg, error);
}

/* Sends whose failure changes nothing (the peer learns it another way:
 * the connection is gone). */
static void
cocoSessionSendBestEffort(CocoMigrationSession *s, CocoPhaseEvent type,
                          const void *data, size_t len)
{
    g_autoptr(GError) err = NULL;

    if (cocoSessionSendSimple(s, type, data, len, &err) < 0)
        g_string_append(s->steps_run, "(unsent)");
}

/* Why this side aborts, for the peer (at most COCO_SESSION_REASON_MAX
 * bytes of valid UTF-8), or NULL when there is nothing new to tell. */
static char *
cocoSessionReason(CocoMigrationSession *s)
{
    /* Aborting because the peer did: its own reason would only echo. */
    if (s->cause == COCO_PHASE_EVENT_PEER_ABORTED ||
        s->cause == COCO_PHASE_EVENT_PEER_ABORT_REQUEST ||
        s->cause == COCO_PHASE_EVENT_PEER_ABORT_TOKEN)
        return NULL;
    if (!s->failure || !s->failure->message || !*s->failure->message)
        return NULL;
    return g_utf8_make_valid(
        s->failure->message,
        (gssize)MIN(strlen(s->failure->message), COCO_SESSION_REASON_MAX));
}

/* Tell the peer this side aborted, and why (the failure's message, at
 * most COCO_SESSION_REASON_MAX bytes): the peer's record and error then
 * name the cause, not only the symptom it saw. */
static void
cocoSessionSendAborted(CocoMigrationSession *s)
{
    g_autofree char *reason = cocoSessionReason(s);

    cocoSessionSendBestEffort(s, COCO_PHASE_EVENT_PEER_ABORTED, reason,
                              reason ? strlen(reason) : 0);
}

/* The reason a peer-aborted message, or a peer-abort-token message after
 * its token (argument: the token's length), carries, made printable, or
 * NULL. */
static char *
cocoSessionPeerReason(const CocoPhaseMessage *msg)
{
    const char *data;
    size_t len;
    char *reason;
    char *p;

    if (!msg)
        return NULL;
    if (msg->type == COCO_PHASE_EVENT_PEER_ABORTED) {
        data = msg->data;
        len = msg->len;
    } else if (msg->type == COCO_PHASE_EVENT_PEER_ABORT_TOKEN && msg->arg &&
               msg->arg < msg->len) {
        data = (const char *)msg->data + msg->arg;
        len = msg->len - msg->arg;
    } else {
        return NULL;
    }
    if (!len)
        return NULL;
    reason = g_utf8_make_valid(data, (gssize)MIN(len, COCO_SESSION_REASON_MAX));
    for (p = reason; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return reason;
}

CocoMigrationSession *
cocoMigrationSessionNew(const CocoMigrationSessionConfig *cfg, GError **error)
{
    CocoMigrationSession *s;

    if (!cfg->fw || !cfg->data || !cfg->data->ops ||
        (unsigned int)cfg->role >= COCO_FIRMWARE_ROLE_LAST) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG, "%s",
            _("a migration session needs a role, a firmware and a data path"));
        return NULL;
    }
    if (cfg->fw->role != cfg->role) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("the firmware is a '%1$s', the session a '%2$s'"),
                     cocoFirmwareRoleTypeToString(cfg->fw->role),
                     cocoFirmwareRoleTypeToString(cfg->role));
        return NULL;
    }
    s = g_new0(CocoMigrationSession, 1);
    s->cfg = *cfg;
    s->cfg.data->send = cocoSessionSend;
    s->cfg.data->send_opaque = s;
    s->state = COCO_PHASE_STATE_IDLE;
    g_queue_init(&s->pending);
    s->buf = g_byte_array_sized_new(COCO_SESSION_BUF);
    g_byte_array_set_size(s->buf, COCO_SESSION_BUF);
    s->timeline = g_array_new(FALSE, TRUE, sizeof(CocoPhaseTimelineEntry));
    g_array_set_clear_func(s->timeline, cocoPhaseTimelineEntryClear);
    s->steps_run = g_string_new(NULL);
    s->t0 = g_get_monotonic_time();
    return s;
}

static void
cocoSessionSetSwitching(CocoMigrationSession *s, bool on)
{
    if (s->switching == on)
        return;
    s->switching = on;
    if (s->cfg.switching)
        s->cfg.switching(s->cfg.switching_opaque, on);
}

void
cocoMigrationSessionFree(CocoMigrationSession *s)
{
    if (!s)
        return;
    cocoSessionSetSwitching(s, false);
    cocoPhaseDataFree(s->cfg.data);
    g_clear_error(&s->failure);
    g_queue_clear(&s->pending);
    g_byte_array_unref(s->buf);
    g_array_unref(s->timeline);
    g_string_free(s->steps_run, TRUE);
    g_free(s);
}

/* ---- decisions --------------------------------------------------------- */

static void
cocoSessionDecide(CocoMigrationSession *s, CocoPhaseGate gate,
                  CocoPhaseVerdict verdict, int code, const char *message)
{
    CocoPhaseDecision d = {gate, verdict, code, message};

    if (verdict == COCO_PHASE_VERDICT_RELEASE ||
        verdict == COCO_PHASE_VERDICT_REFUSE)
        s->held[gate] = false;
    if (s->cfg.decide)
        s->cfg.decide(s->cfg.decide_opaque, &d);
}

static void
cocoSessionRelease(CocoMigrationSession *s, CocoPhaseGate gate)
{
    if (!s->held[gate])
        return;
    if (gate == COCO_PHASE_GATE_MIGRATE)
        s->migrate_released = true;
    if (gate == COCO_PHASE_GATE_MIGRATE_CONTINUE) {
        s->continue_released = true;
        if (s->counters.blackout_us)
            s->counters.downtime_us =
                g_get_monotonic_time() - s->t0 - s->counters.blackout_us;
    }
    cocoSessionDecide(s, gate, COCO_PHASE_VERDICT_RELEASE, 0, NULL);
}

/* Record why the migration stops, from the event that stops it, unless a
 * step failure already said why. */
static void
cocoSessionNoteCause(CocoMigrationSession *s)
{
    /* One whole message per role: translations inflect the role. */
    bool source = s->cfg.role == COCO_FIRMWARE_ROLE_SOURCE;

    if (s->failure)
        return;
    if (s->why) {
        s->failure = g_error_copy(s->why);
        return;
    }
    switch (s->cause) {
    case COCO_PHASE_EVENT_CANCEL:
        cocoErrorSet(&s->failure, COCO_ERROR_MIGRATION_ABORTED, "%s",
                     _("the migration was cancelled"));
        break;
    case COCO_PHASE_EVENT_MIGRATION_FAILED:
        cocoErrorSet(
            &s->failure, COCO_ERROR_MIGRATION_ABORTED, "%s",
            source
                ? _("QEMU on the source reported that the migration failed")
                : _("QEMU on the destination reported that the migration failed"));
        break;
    case COCO_PHASE_EVENT_QEMU_GONE:
        cocoErrorSet(
            &s->failure, COCO_ERROR_MIGRATION_ABORTED, "%s",
            source
                ? _("QEMU on the source ended before the migration completed")
                : _("QEMU on the destination ended before the migration completed"));
        break;
    case COCO_PHASE_EVENT_PEER_LOST:
        cocoErrorSet(&s->failure, COCO_ERROR_MIGRATION_ABORTED, "%s",
                     _("the peer host's agent can no longer be reached"));
        break;
    case COCO_PHASE_EVENT_PEER_ABORTED:
    case COCO_PHASE_EVENT_PEER_ABORT_TOKEN:
    case COCO_PHASE_EVENT_PEER_ABORT_REQUEST: {
        g_autofree char *reason = cocoSessionPeerReason(s->msg);

        if (reason)
            cocoErrorSet(&s->failure, COCO_ERROR_MIGRATION_ABORTED,
                         _("the peer host aborted the migration: %1$s"),
                         reason);
        else
            cocoErrorSet(&s->failure, COCO_ERROR_MIGRATION_ABORTED, "%s",
                         _("the peer host aborted the migration"));
        break;
    }
    case COCO_PHASE_EVENT_CONT:
        cocoErrorSet(
            &s->failure, COCO_ERROR_MIGRATION_ABORTED, "%s",
            source
                ? _("libvirt resumed the source before the switchover completed")
                : _("libvirt resumed the destination before the switchover completed"));
        break;
    case COCO_PHASE_EVENT_DEADLINE:
        cocoErrorSet(
            &s->failure, COCO_ERROR_PEER_TIMEOUT, "%s",
            _("the peer host did not confirm the switchover before the agent's deadline"));
        break;
    case COCO_PHASE_EVENT_GIVE_UP:
        cocoErrorSet(
            &s->failure, COCO_ERROR_MIGRATION_SOURCE_FROZEN, "%s",
            _("the peer host did not come back to say whether it imported the start token"));
        break;
    case COCO_PHASE_EVENT_PEER_RECONNECTED:
    case COCO_PHASE_EVENT_HOLD_EXPIRED:
    case COCO_PHASE_EVENT_PRE_SWITCHOVER:
    case COCO_PHASE_EVENT_INCOMING:
    case COCO_PHASE_EVENT_MIGRATE:
    case COCO_PHASE_EVENT_PRECOPY_ROUND:
    case COCO_PHASE_EVENT_QUERY:
    case COCO_PHASE_EVENT_LOCAL_FAILURE:
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
    case COCO_PHASE_EVENT_DATA_SETUP:
    case COCO_PHASE_EVENT_DATA_ROUND:
    case COCO_PHASE_EVENT_DATA_START:
    case COCO_PHASE_EVENT_LAST:
        cocoErrorSet(&s->failure, COCO_ERROR_MIGRATION_ABORTED,
                     _("the migration was aborted in state '%1$s'"),
                     cocoPhaseStateTypeToString(s->state));
        break;
    }
}

static void
cocoSessionRefuseGate(CocoMigrationSession *s, CocoPhaseGate gate)
{
    g_autofree char *msg = NULL;
    int code = COCO_ERROR_MIGRATION_ABORTED;

    switch (s->state) {
    case COCO_PHASE_STATE_FROZEN:
        code = COCO_ERROR_MIGRATION_SOURCE_FROZEN;
        msg = g_strdup(s->failure ? s->failure->message : "");
        break;
    case COCO_PHASE_STATE_AWAIT_TOKEN:
        code = COCO_ERROR_MIGRATION_SOURCE_FROZEN;
        cocoSessionNoteCause(s);
        msg = g_strdup_printf(
            _("%1$s; the source stays paused until the destination's abort token is back, then resumes by itself"),
            s->failure->message);
        break;
    case COCO_PHASE_STATE_COMMITTED:
    case COCO_PHASE_STATE_FINISHED:
        if (s->cfg.role == COCO_FIRMWARE_ROLE_SOURCE) {
            code = COCO_ERROR_MIGRATION_SOURCE_FROZEN;
            msg = g_strdup(_(
                "the destination committed the migration and owns the guest; the source can never resume; destroy it"));
            break;
        }
        msg = g_strdup(_("the migration is over; nothing to hold"));
        break;
    case COCO_PHASE_STATE_IDLE:
    case COCO_PHASE_STATE_PREPARING:
    case COCO_PHASE_STATE_SETUP:
    case COCO_PHASE_STATE_PRECOPY:
    case COCO_PHASE_STATE_BLACKOUT:
    case COCO_PHASE_STATE_SWITCHOVER:
    case COCO_PHASE_STATE_HANDOVER:
    case COCO_PHASE_STATE_ABORTED:
    case COCO_PHASE_STATE_FAILED:
    case COCO_PHASE_STATE_INTERRUPTED:
    case COCO_PHASE_STATE_LAST:
    default:
        cocoSessionNoteCause(s);
        if (s->cfg.role == COCO_FIRMWARE_ROLE_SOURCE)
            msg = g_strdup_printf(
                _("confidential migration aborted: %1$s; the source keeps running"),
                s->failure->message);
        else
            msg = g_strdup_printf(
                _("confidential migration aborted: %1$s; the destination can only be destroyed"),
                s->failure->message);
        break;
    }
    cocoSessionDecide(s, gate, COCO_PHASE_VERDICT_REFUSE, code, msg);
}

static void
cocoSessionRefuseHeld(CocoMigrationSession *s)
{
    int g;

    for (g = 0; g < COCO_PHASE_GATE_LAST; g++) {
        if (s->held[g])
            cocoSessionRefuseGate(s, g);
    }
    /* `migrate` already went to QEMU: stop QEMU's migration too, unless
     * QEMU itself reported the end or the device state already moved. */
    if (s->cfg.role == COCO_FIRMWARE_ROLE_SOURCE && s->migrate_released &&
        !s->continue_released && !s->cancel_sent && !s->start_token &&
        s->state != COCO_PHASE_STATE_FROZEN &&
        s->cause != COCO_PHASE_EVENT_CANCEL &&
        s->cause != COCO_PHASE_EVENT_MIGRATION_FAILED &&
        s->cause != COCO_PHASE_EVENT_QEMU_GONE) {
        g_autofree char *msg = g_strdup_printf(
            _("confidential migration aborted: %1$s; the source keeps running"),
            s->failure ? s->failure->message : "");

        s->cancel_sent = true;
        cocoSessionDecide(s, COCO_PHASE_GATE_MIGRATE, COCO_PHASE_VERDICT_CANCEL,
                          COCO_ERROR_MIGRATION_ABORTED, msg);
    }
}

/* The source can never resume by itself now. */
static void
cocoSessionFreeze(CocoMigrationSession *s, const GError *why)
{
    s->state = COCO_PHASE_STATE_FROZEN;
    if (!s->failure || s->failure->code != COCO_ERROR_MIGRATION_SOURCE_FROZEN) {
        g_clear_error(&s->failure);
        if (!why && s->cause == COCO_PHASE_EVENT_PEER_ABORTED)
            cocoErrorSet(
                &s->failure, COCO_ERROR_MIGRATION_SOURCE_FROZEN, "%s",
                _("the destination failed after the start token without an abort token; the source cannot resume; destroy it or recover the destination"));
        else if (why)
            cocoErrorSet(
                &s->failure, COCO_ERROR_MIGRATION_SOURCE_FROZEN,
                _("the destination's abort token was rejected (%1$s); the source cannot resume; destroy it or recover the destination"),
                why->message);
        else if (s->why)
            cocoErrorSet(&s->failure, COCO_ERROR_MIGRATION_SOURCE_FROZEN, "%s",
                         s->why->message);
        else
            cocoErrorSet(
                &s->failure, COCO_ERROR_MIGRATION_SOURCE_FROZEN, "%s",
                _("the destination was lost after the start token; the source cannot resume without its abort token; destroy it or recover the destination"));
    }
    cocoSessionRefuseHeld(s);
}

/* ---- steps ------------------------------------------------------------- */

static int
cocoSessionFw(CocoMigrationSession *s, CocoMigrateCmd cmd, uint32_t flags,
              void *buf, size_t *len, CocoFirmwareStatus *status,
              GError **error)
{
    s->counters.fw_calls++;
    return cocoFirmwareMigrateCmd(s->cfg.fw, cmd, flags, buf, len, status,
                                  error);
}

/* PREPARE with @in (may be empty) in place; sends what it produces. */
static int
cocoSessionPrepare(CocoMigrationSession *s, const void *in, size_t inlen,
                   GError **error)
{
    CocoFirmwareStatus status;
    size_t len = inlen;
    int ret;

    if (inlen > s->buf->len)
        g_byte_array_set_size(s->buf, inlen);
    if (inlen)
        memcpy(s->buf->data, in, inlen);
    ret = cocoSessionFw(s, COCO_MIGRATE_CMD_PREPARE, 0, s->buf->data, &len,
                        &status, error);
    if (ret < 0 && ret != -EAGAIN)
        return -1;
    if (ret == -EAGAIN)
        g_clear_error(error);
    if (len > 0 && len <= s->buf->len &&
        cocoSessionSendSimple(s, COCO_PHASE_EVENT_PEER_AGENT, s->buf->data, len,
                              error) < 0)
        return -1;
    if (ret == 0)
        s->keys_local = true;
    return 0;
}

/* Stop moving data, once (the data path also waits for a precopy round
 * running on a thread of its own). */
static void
cocoSessionStopData(CocoMigrationSession *s)
{
    CocoPhaseData *data = s->cfg.data;

    if (s->data_stopped)
        return;
    s->data_stopped = true;
    if (data->ops->stop)
        data->ops->stop(data);
}

static int
cocoSessionAbortSource(CocoMigrationSession *s, GError **error)
{
    g_autoptr(GError) err = NULL;
    CocoFirmwareStatus status;
    size_t len = 0;

    /* Before the start token a precopy round may still run: the
     * firmware's ABORT must come after it. */
    if (!s->start_token)
        cocoSessionStopData(s);
    if (!s->setup_attempted)
        return COCO_STEP_DONE;
    if (cocoSessionFw(s, COCO_MIGRATE_CMD_ABORT, 0, NULL, &len, &status,
                      &err) == 0)
        return COCO_STEP_DONE;
    if (status.err == -EPERM && !s->setup_ok)
        return COCO_STEP_DONE; /* SETUP never took effect */
    if (status.err == -EPERM && !s->start_token) {
        /* The firmware wants a token: it emitted the start token although
         * the data path could not say so. Only the destination's abort
         * token brings the source back now. */
        g_autoptr(GError) serr = NULL;

        s->start_token = true;
        s->state = COCO_PHASE_STATE_AWAIT_TOKEN;
        if (cocoSessionSendSimple(s, COCO_PHASE_EVENT_PEER_ABORT_REQUEST, NULL,
                                  0, &serr) < 0)
            cocoSessionFreeze(s, NULL);
        return COCO_STEP_WAIT;
    }
    g_clear_error(&s->failure);
    cocoErrorSet(
        &s->failure, COCO_ERROR_MIGRATION_SOURCE_FROZEN,
        _("the source firmware refused to abort (%1$s); the source cannot resume; destroy it"),
        err->message);
    s->state = COCO_PHASE_STATE_FROZEN;
    g_propagate_error(error, g_steal_pointer(&err));
    return -1;
}

static int
cocoSessionAbortDestination(CocoMigrationSession *s, GError **error)
{
    g_autoptr(GError) err = NULL;
    CocoFirmwareStatus status;
    size_t len = s->buf->len;

    s->state = COCO_PHASE_STATE_ABORTED;
    cocoSessionNoteCause(s);
    /* Always ask the firmware: a data path of its own (the transfer
     * engine) may have imported the immutable state without the session
     * seeing it. Before that, ABORT fails with -EPERM: nothing to undo. */
    if (cocoSessionFw(s, COCO_MIGRATE_CMD_ABORT, 0, s->buf->data, &len, &status,
                      &err) == 0) {
        /* The token, then why (the argument is the token's length). */
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_autofree char *reason = cocoSessionReason(s);
        CocoPhaseMessage msg = {COCO_PHASE_EVENT_PEER_ABORT_TOKEN, 0, NULL, 0};

        g_byte_array_append(out, s->buf->data, (guint)len);
        if (reason) {
            msg.arg = (uint32_t)len;
            g_byte_array_append(out, (const guint8 *)reason,
                                (guint)strlen(reason));
        }
        msg.data = out->data;
        msg.len = out->len;
        if (cocoSessionSend(s, &msg, &err) < 0)
            g_string_append(s->steps_run, "(unsent)");
        return COCO_STEP_DONE;
    }
    /* No token: tell the source, so it does not wait for one. */
    cocoSessionSendAborted(s);
    if (status.err == -EPERM && !s->setup_ok)
        return COCO_STEP_DONE;
    g_propagate_error(error, g_steal_pointer(&err));
    return -1;
}

static int
cocoSessionStep(CocoMigrationSession *s, CocoPhaseStep step, GError **error)
{
    CocoPhaseData *data = s->cfg.data;
    CocoFirmwareStatus status;
    size_t len = 0;

    switch (step) {
    case COCO_PHASE_STEP_PREPARE_START:
        return cocoSessionPrepare(s, NULL, 0, error);
    case COCO_PHASE_STEP_PREPARE:
        return cocoSessionPrepare(s, s->msg->data, s->msg->len, error);
    case COCO_PHASE_STEP_AWAIT_KEYS:
        if (!s->keys_local)
            return COCO_STEP_WAIT;
        if (s->cfg.role == COCO_FIRMWARE_ROLE_SOURCE && !s->keys_peer)
            return COCO_STEP_WAIT;
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_SEND_PREPARED:
        return cocoSessionSendSimple(s, COCO_PHASE_EVENT_PEER_PREPARED, NULL, 0,
                                     error);
    case COCO_PHASE_STEP_SETUP:
        s->setup_attempted = true;
        s->counters.fw_calls++;
        if (data->ops->setup(data, s->cfg.fw, &s->counters.data, error) < 0)
            return -1;
        s->setup_ok = true;
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_ROUND_OR_RELEASE: {
        int more = s->rounds_started < s->cfg.precopy_rounds;

        if (s->cfg.next_round &&
            (more = s->cfg.next_round(s->cfg.next_round_opaque,
                                      s->rounds_started, error)) < 0)
            return -1;
        if (more)
            return cocoSessionStep(s, COCO_PHASE_STEP_ROUND, error);
        /* The last round is over before QEMU's own migration starts. */
        if (data->ops->wait && data->ops->wait(data, error) < 0)
            return -1;
        cocoSessionRelease(s, COCO_PHASE_GATE_MIGRATE);
        return COCO_STEP_DONE;
    }
    case COCO_PHASE_STEP_ROUND:
        s->rounds_started++;
        s->counters.rounds++;
        s->counters.fw_calls++;
        return data->ops->round(data, s->cfg.fw, &s->counters.data, error);
    case COCO_PHASE_STEP_BLACKOUT:
        if (data->ops->sync && data->ops->sync(data, s->cfg.fw, error) < 0)
            return -1;
        if (cocoSessionFw(s, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL, &len,
                          &status, error) < 0)
            return -1;
        s->state = COCO_PHASE_STATE_BLACKOUT;
        s->counters.blackout_us = g_get_monotonic_time() - s->t0;
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_FINAL: {
        bool token = false;
        int ret;

        s->counters.fw_calls++;
        ret = data->ops->final(data, s->cfg.fw, s->cfg.nvcpus, &token,
                               &s->counters.data, error);
        if (token) {
            s->start_token = true;
            s->state = COCO_PHASE_STATE_SWITCHOVER;
        }
        return ret;
    }
    case COCO_PHASE_STEP_IMPORT: {
        CocoPhaseEvent progress = COCO_PHASE_EVENT_LAST;

        if (s->msg->type == COCO_PHASE_EVENT_PEER_SETUP)
            s->setup_attempted = true;
        if (data->ops->import(data, s->cfg.fw, s->msg, &progress,
                              &s->counters.data, error) < 0)
            return -1;
        if (s->msg->type == COCO_PHASE_EVENT_PEER_SETUP)
            s->setup_ok = true;
        if (progress != COCO_PHASE_EVENT_LAST)
            g_queue_push_tail(&s->pending, GINT_TO_POINTER(progress));
        return COCO_STEP_DONE;
    }
    case COCO_PHASE_STEP_SEND_SETUP_DONE:
        return cocoSessionSendSimple(s, COCO_PHASE_EVENT_PEER_SETUP_DONE, NULL,
                                     0, error);
    case COCO_PHASE_STEP_SEND_ROUND_DONE:
        return cocoSessionSendSimple(s, COCO_PHASE_EVENT_PEER_ROUND_DONE, NULL,
                                     0, error);
    case COCO_PHASE_STEP_SEND_SWITCHOVER_DONE:
        return cocoSessionSendSimple(s, COCO_PHASE_EVENT_PEER_SWITCHOVER_DONE,
                                     NULL, 0, error);
    case COCO_PHASE_STEP_COMMIT:
        return cocoSessionFw(s, COCO_MIGRATE_CMD_FINISH, 0, NULL, &len, &status,
                             error);
    case COCO_PHASE_STEP_SEND_COMMITTED:
        cocoSessionSendBestEffort(s, COCO_PHASE_EVENT_PEER_COMMITTED, NULL, 0);
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_FINISH:
        /* Whatever FINISH says, this source never runs again. */
        s->state = COCO_PHASE_STATE_FINISHED;
        return cocoSessionFw(s, COCO_MIGRATE_CMD_FINISH, 0, NULL, &len, &status,
                             error);
    case COCO_PHASE_STEP_ABORT:
        cocoSessionNoteCause(s);
        if (s->cfg.role == COCO_FIRMWARE_ROLE_SOURCE)
            return cocoSessionAbortSource(s, error);
        return cocoSessionAbortDestination(s, error);
    case COCO_PHASE_STEP_ABORT_WITH_TOKEN: {
        g_autoptr(GError) err = NULL;

        /* A reason may follow the token: the argument is then its length. */
        len = s->msg->arg && s->msg->arg <= s->msg->len ? s->msg->arg
                                                        : s->msg->len;
        if (len > s->buf->len)
            g_byte_array_set_size(s->buf, len);
        if (len)
            memcpy(s->buf->data, s->msg->data, len);
        if (cocoSessionFw(s, COCO_MIGRATE_CMD_ABORT, 0, s->buf->data, &len,
                          &status, &err) < 0) {
            cocoSessionFreeze(s, err);
            g_propagate_error(error, g_steal_pointer(&err));
            return -1;
        }
        cocoSessionNoteCause(s);
        s->state = COCO_PHASE_STATE_ABORTED;
        return COCO_STEP_DONE;
    }
    case COCO_PHASE_STEP_REQUEST_TOKEN: {
        g_autoptr(GError) err = NULL;

        cocoSessionNoteCause(s);
        /* The peer is out of reach: the agent reconnects and asks again
         * (peer-reconnected), until its window expires (give-up). */
        if (cocoSessionSendSimple(s, COCO_PHASE_EVENT_PEER_ABORT_REQUEST, NULL,
                                  0, &err) < 0)
            g_string_append(s->steps_run, "(unsent)");
        return COCO_STEP_DONE;
    }
    case COCO_PHASE_STEP_RECONCILE: {
        int g;

        cocoSessionNoteCause(s);
        s->state = COCO_PHASE_STATE_AWAIT_TOKEN;
        /* migrate-continue must not wait: libvirt cancels its migration,
         * the source stays paused (PAUSE) until the token's fate is
         * known. A held cont waits for the agent's HOLD_EXPIRED. */
        for (g = 0; g < COCO_PHASE_GATE_LAST; g++) {
            if (s->held[g] && g != COCO_PHASE_GATE_CONT)
                cocoSessionRefuseGate(s, g);
        }
        return COCO_STEP_DONE;
    }
    case COCO_PHASE_STEP_PAUSE_SOURCE:
        if (!s->paused) {
            s->paused = true;
            cocoSessionDecide(s, COCO_PHASE_GATE_CONT, COCO_PHASE_VERDICT_PAUSE,
                              0, NULL);
        }
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_RESUME_SOURCE:
        if (s->held[COCO_PHASE_GATE_CONT]) {
            s->paused = false;
            cocoSessionRelease(s, COCO_PHASE_GATE_CONT);
        } else if (s->paused) {
            s->paused = false;
            cocoSessionDecide(s, COCO_PHASE_GATE_CONT,
                              COCO_PHASE_VERDICT_RESUME, 0, NULL);
        }
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_SEND_ABORTED:
        if (s->cause != COCO_PHASE_EVENT_PEER_LOST &&
            s->cause != COCO_PHASE_EVENT_PEER_ABORTED &&
            s->cause != COCO_PHASE_EVENT_PEER_ABORT_TOKEN)
            cocoSessionSendAborted(s);
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_FREEZE:
        cocoSessionFreeze(s, NULL);
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_YIELD:
        s->state = COCO_PHASE_STATE_COMMITTED;
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_RELEASE_INCOMING:
        cocoSessionRelease(s, COCO_PHASE_GATE_MIGRATE_INCOMING);
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_RELEASE_CONTINUE:
        cocoSessionRelease(s, COCO_PHASE_GATE_MIGRATE_CONTINUE);
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_RELEASE_CONT:
        cocoSessionRelease(s, COCO_PHASE_GATE_CONT);
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_REFUSE_HELD:
        cocoSessionRefuseHeld(s);
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_REFUSE_CONT:
        if (s->held[COCO_PHASE_GATE_CONT]) {
            if (s->cfg.role == COCO_FIRMWARE_ROLE_SOURCE &&
                s->state == COCO_PHASE_STATE_FINISHED)
                cocoSessionDecide(
                    s, COCO_PHASE_GATE_CONT, COCO_PHASE_VERDICT_REFUSE,
                    COCO_ERROR_MIGRATION_SOURCE_FROZEN,
                    _("the migration finished and the guest moved to the destination; destroy the source"));
            else
                cocoSessionRefuseGate(s, COCO_PHASE_GATE_CONT);
        }
        return COCO_STEP_DONE;
    case COCO_PHASE_STEP_LAST:
    default:
        break;
    }
    return cocoErrorSet(error, COCO_ERROR_INTERNAL,
                        _("unknown phase step '%1$d'"), (int)step);
}

/* ---- dispatch ---------------------------------------------------------- */

static void
cocoSessionRecord(CocoMigrationSession *s, CocoPhaseEvent event,
                  const CocoPhaseRule *rule, CocoPhaseState from, int64_t start,
                  int code)
{
    CocoPhaseTimelineEntry e = {0};
    int64_t now = g_get_monotonic_time();

    e.at_us = start - s->t0;
    e.duration_us = now - start;
    e.event = event;
    e.from = from;
    e.to = s->state;
    e.phase = rule ? rule->phase : "none";
    e.steps = g_strdup(s->steps_run->str);
    e.code = code;
    g_array_append_val(s->timeline, e);
}

/* The session is over for the data path: nothing more moves, failures
 * change nothing. */
static bool
cocoSessionEnded(const CocoMigrationSession *s)
{
    return cocoPhaseStateDataDone(s->state);
}

static void
cocoSessionMaybeStop(CocoMigrationSession *s)
{
    if (cocoSessionEnded(s))
        cocoSessionStopData(s);
}

/* This side already failed on a broken connection (a symptom), and the
 * peer's abort message, read later, says why: keep both. */
static void
cocoSessionNoteLateReason(CocoMigrationSession *s, const CocoPhaseMessage *msg)
{
    g_autofree char *reason = NULL;
    GError *both = NULL;

    if (!s->failure || s->failure->domain != COCO_ERROR ||
        s->failure->code != COCO_ERROR_TRANSFER_IO ||
        !(reason = cocoSessionPeerReason(msg)))
        return;
    cocoErrorSet(&both, COCO_ERROR_MIGRATION_ABORTED,
                 _("%1$s; the peer host aborted the migration: %2$s"),
                 s->failure->message, reason);
    g_clear_error(&s->failure);
    s->failure = both;
}

static int
cocoSessionDispatchOne(CocoMigrationSession *s, CocoPhaseEvent event,
                       const CocoPhaseMessage *msg, GError **error)
{
    const CocoPhaseRule *rule;
    CocoPhaseState from = s->state;
    CocoPhaseGate gate;
    int64_t start = g_get_monotonic_time();
    g_autoptr(GError) err = NULL;
    size_t i;
    int ret = COCO_STEP_DONE;

    s->counters.events++;
    g_string_truncate(s->steps_run, 0);
    cocoSessionNoteLateReason(s, msg);
    if (!(rule = cocoPhaseRuleLookup(s->cfg.role, s->state, event))) {
        g_autofree char *expected =
            cocoPhaseExpectedEvents(s->cfg.role, s->state);

        cocoErrorSet(
            &err, COCO_ERROR_MIGRATION_PHASE,
            _("phase event '%1$s' is out of order: the %2$s is in state '%3$s' and expects one of '%4$s'"),
            NULLSTR(cocoPhaseEventTypeToString(event)),
            cocoFirmwareRoleTypeToString(s->cfg.role),
            cocoPhaseStateTypeToString(s->state), expected);
        cocoSessionRecord(s, event, NULL, from, start, err->code);
        g_propagate_error(error, g_steal_pointer(&err));
        return -1;
    }
    if ((gate = cocoPhaseEventGate(event)) != COCO_PHASE_GATE_LAST)
        s->held[gate] = true;
    if (event == COCO_PHASE_EVENT_PEER_PREPARED)
        s->keys_peer = true;
    if (event == COCO_PHASE_EVENT_DATA_SETUP)
        s->setup_attempted = s->setup_ok = true;
    s->cause = event;
    s->msg = msg;
    if (rule->next != COCO_PHASE_STATE_LAST &&
        cocoPhaseStateSwitching(s->cfg.role, rule->next))
        cocoSessionSetSwitching(s, true);

    for (i = 0; i < COCO_PHASE_RULE_MAX_STEPS &&
                rule->steps[i] != COCO_PHASE_STEP_LAST;
         i++) {
        if (s->steps_run->len)
            g_string_append_c(s->steps_run, ',');
        g_string_append(s->steps_run,
                        cocoPhaseStepTypeToString(rule->steps[i]));
        if ((ret = cocoSessionStep(s, rule->steps[i], &err)) != COCO_STEP_DONE)
            break;
    }
    s->msg = NULL;

    if (ret < 0) {
        if (!err)
            cocoErrorSet(&err, COCO_ERROR_INTERNAL,
                         _("phase step '%1$s' failed without a reason"),
                         cocoPhaseStepTypeToString(rule->steps[i]));
        if (!s->failure)
            s->failure = g_error_copy(err);
        cocoSessionSetSwitching(s,
                                cocoPhaseStateSwitching(s->cfg.role, s->state));
        cocoSessionRecord(s, event, rule, from, start, err->code);
        cocoSessionMaybeStop(s);
        g_queue_push_tail(&s->pending,
                          GINT_TO_POINTER(COCO_PHASE_EVENT_LOCAL_FAILURE));
        g_propagate_error(error, g_steal_pointer(&err));
        return -1;
    }
    if (ret == COCO_STEP_WAIT) {
        if (rule->wait != COCO_PHASE_STATE_LAST)
            s->state = rule->wait;
    } else if (rule->next != COCO_PHASE_STATE_LAST) {
        s->state = rule->next;
    }
    cocoSessionSetSwitching(s, cocoPhaseStateSwitching(s->cfg.role, s->state));
    cocoSessionRecord(s, event, rule, from, start, 0);
    cocoSessionMaybeStop(s);
    return 0;
}

static int
cocoSessionDispatch(CocoMigrationSession *s, CocoPhaseEvent event,
                    const CocoPhaseMessage *msg, GError **error)
{
    g_autoptr(GError) first = NULL;
    unsigned int failures = 0;
    int ret;

    ret = cocoSessionDispatchOne(s, event, msg, &first);
    if (ret < 0 && first->code == COCO_ERROR_MIGRATION_PHASE &&
        g_queue_is_empty(&s->pending)) {
        g_propagate_error(error, g_steal_pointer(&first));
        return -1;
    }
    while (!g_queue_is_empty(&s->pending)) {
        CocoPhaseEvent ev = GPOINTER_TO_INT(g_queue_pop_head(&s->pending));
        g_autoptr(GError) err = NULL;

        if (ev == COCO_PHASE_EVENT_LOCAL_FAILURE &&
            ++failures > COCO_SESSION_MAX_FAILURES)
            break;
        if (cocoSessionDispatchOne(s, ev, NULL, &err) < 0 && !first)
            first = g_steal_pointer(&err);
    }
    g_queue_clear(&s->pending);
    if (first) {
        g_propagate_error(error, g_steal_pointer(&first));
        return -1;
    }
    return 0;
}

int
cocoMigrationSessionHandleEvent(CocoMigrationSession *s, CocoPhaseEvent event,
                                GError **error)
{
    return cocoMigrationSessionHandleEventWhy(s, event, NULL, error);
}

int
cocoMigrationSessionHandleEventWhy(CocoMigrationSession *s,
                                   CocoPhaseEvent event, const GError *why,
                                   GError **error)
{
    int ret;

    if ((unsigned int)event >= COCO_PHASE_EVENT_LAST ||
        cocoPhaseEventIsPeer(event) || event == COCO_PHASE_EVENT_LOCAL_FAILURE)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("'%1$s' is not an event the relay or the agent may report"),
            NULLSTR(cocoPhaseEventTypeToString(event)));
    s->why = why;
    ret = cocoSessionDispatch(s, event, NULL, error);
    s->why = NULL;
    return ret;
}

int
cocoMigrationSessionFail(CocoMigrationSession *s, const GError *why,
                         GError **error)
{
    if (cocoSessionEnded(s))
        return 0;
    if (!s->failure && why)
        s->failure = g_error_copy(why);
    return cocoSessionDispatch(s, COCO_PHASE_EVENT_LOCAL_FAILURE, NULL, error);
}

int
cocoMigrationSessionReceive(CocoMigrationSession *s,
                            const CocoPhaseMessage *msg, GError **error)
{
    if (!cocoPhaseEventIsPeer(msg->type))
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL,
                            _("'%1$s' is not a message between agents"),
                            NULLSTR(cocoPhaseEventTypeToString(msg->type)));
    s->counters.messages_received++;
    s->counters.bytes_received += msg->len;
    return cocoSessionDispatch(s, msg->type, msg, error);
}

/* ---- queries ----------------------------------------------------------- */

CocoFirmwareRole
cocoMigrationSessionGetRole(CocoMigrationSession *s)
{
    return s->cfg.role;
}

CocoPhaseState
cocoMigrationSessionGetState(CocoMigrationSession *s)
{
    return s->state;
}

bool
cocoMigrationSessionMayRun(CocoMigrationSession *s)
{
    return cocoPhaseStateMayRun(s->cfg.role, s->state);
}

bool
cocoMigrationSessionGateHeld(CocoMigrationSession *s, CocoPhaseGate gate)
{
    return (unsigned int)gate < COCO_PHASE_GATE_LAST && s->held[gate];
}

const GError *
cocoMigrationSessionGetFailure(CocoMigrationSession *s)
{
    return s->failure;
}

const CocoPhaseCounters *
cocoMigrationSessionGetCounters(CocoMigrationSession *s)
{
    return &s->counters;
}

const CocoPhaseTimelineEntry *
cocoMigrationSessionGetTimeline(CocoMigrationSession *s, size_t *n)
{
    *n = s->timeline->len;
    return (const CocoPhaseTimelineEntry *)(const void *)s->timeline->data;
}

char *
cocoMigrationSessionFormatTimeline(CocoMigrationSession *s)
{
    g_autoptr(GString) out = g_string_new(NULL);
    guint i;

    for (i = 0; i < s->timeline->len; i++) {
        const CocoPhaseTimelineEntry *e =
            &g_array_index(s->timeline, CocoPhaseTimelineEntry, i);

        g_string_append_printf(
            out, "%10.3f ms %8.3f ms  %-12s %-20s %s -> %s  [%s]%s%s\n",
            (double)e->at_us / 1000.0, (double)e->duration_us / 1000.0,
            cocoFirmwareRoleTypeToString(s->cfg.role),
            cocoPhaseEventTypeToString(e->event),
            cocoPhaseStateTypeToString(e->from),
            cocoPhaseStateTypeToString(e->to), e->steps,
            e->code ? " error=" : "",
            e->code ? NULLSTR(cocoErrorCodeToString(e->code)) : "");
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}
