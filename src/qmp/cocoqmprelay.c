/*
 * cocoqmprelay.c: the QMP relay between libvirt and one QEMU
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "proto/cocoproto.h"
#include "qmp/cocoqmprelay.h"
#include "qmp/cocoqmpchannel.h"
#include "qmp/cocoqmphmp.h"
#include "qmp/cocoqmphostdev.h"
#include "qmp/cocoqmpmessage.h"
#include "qmp/cocoqmpmigration.h"
#include "qmp/cocoqmpmodes.h"
#include "qmp/cocoqmpprecopy.h"
#include "qmp/cocoqmpvfioreport.h"
#include "util/cocoerror.h"
#include "util/cocosource.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define COCO_QMP_INJECT_PREFIX "coco-relay-"
/* How long a migration waits for the host agent's answer to a hello in
 * flight (a relay just started or reconnecting after an agent restart). */
#define COCO_QMP_AGENT_READY_WAIT_MS 5000

typedef struct _CocoQmpSession CocoQmpSession;

typedef void (*CocoQmpInjectDone)(CocoQmpSession *s, CocoQmpMessage *reply);

typedef struct {
    CocoQmpFdKind kind;
    char *peer;
} CocoQmpFdInfo;

struct _CocoQmpSession {
    gint refs;
    guint serial;
    CocoQmpRelay *relay;
    CocoQmpChannel *client; /* libvirt */
    CocoQmpChannel *qemu;
    gboolean closed;

    /* A libvirt command held back (injection or gate in flight). */
    gboolean busy;
    CocoQmpLine *current;
    CocoQmpMessage *currentMsg;
    GQueue later; /* CocoQmpLine: libvirt lines that arrived meanwhile */

    GHashTable *injected; /* id -> CocoQmpInjectDone (as gpointer) */
    GHashTable *augment; /* ids of libvirt's 'query-migrate' sent to QEMU */
    GHashTable *fds; /* fdname -> CocoQmpFdInfo */
    gboolean capPauseBeforeSwitchover;
    gboolean capLateBlockActivate;
    CocoQmpModes modes; /* libvirt's post-copy and multifd requests */

    /* The job of the held 'migrate' / 'migrate-incoming'. */
    CocoQmpJob pendingJob;
    CocoQmpRole pendingRole;
    char *pendingUri;
    char *pendingPeer;
    gboolean pendingWant;

    char *pendingHostdev; /* the VFIO device of the held 'device_add' */
};

struct _CocoQmpRelay {
    GMainContext *ctx;
    CocoQmpAgent *agent;
    int traceFd;
    int listenFd;
    GSource *listenSource;
    char *qemuPath;
    GList *sessions;
    guint nextSerial;
    guint64 nextInject;

    CocoQmpRole role;
    gboolean paused;
    gboolean migrationFailed; /* the last MIGRATION status: failed/cancelled */
    gboolean ignoreShared; /* the value the relay last set */
    gboolean ignoreSharedKnown;
    guint migrations;
    guint images;
    guint released;
    guint refused;
    guint cancels; /* 'migrate_cancel' sent for the agent */
    gboolean postcopyKept; /* libvirt asked for post-copy; QEMU never saw it */
    gint64 downtimeLimit; /* ms, libvirt's last downtime-limit; -1 unset */
    gint64 maxBandwidth; /* bytes/s, libvirt's last max-bandwidth; -1 unset */

    /* The outgoing migration the relay answered 'migrate' for. */
    CocoQmpOwn own;
    guint ownGen; /* bumped by every new job: stale verdicts are ignored */
    CocoQmpSession *ownSession; /* libvirt's connection; NULL once closed */
    JsonObject *ownArgs; /* libvirt's 'migrate' arguments */
    gint64 ownStart; /* monotonic us of libvirt's 'migrate' */
    gint64 ownForwarded; /* monotonic us the real 'migrate' went to QEMU */
    gboolean suppressSetup; /* QEMU's 'setup' event would repeat it */
    char *ownError; /* "error-desc" of a failure the relay reported */
    CocoQmpProgress progress; /* the agent's latest report */
    guint64 passes; /* MIGRATION_PASS events emitted */
    guint stops; /* 'stop' sent for the agent */
    char *holdPaused; /* the agent's reason to keep the vCPUs stopped */
    gboolean stoppedByRelay; /* the relay stopped them (QEMU had resumed) */
    guint stopsUnanswered; /* 'stop' sent, QEMU's answer not yet read */

    CocoQmpViommu viommu; /* QEMU's vIOMMU, for hot-plugged VFIO devices */
    CocoQmpVfioReader *vfioReader; /* the VFIO interposer's leak reports */
    guint vfioLeaks; /* reports received */
    char *vfioLeak; /* the last one, described */
    JsonObject *vfioState; /* the interposer's last state report */
};

static void cocoQmpSessionUnref(CocoQmpSession *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoQmpSession, cocoQmpSessionUnref);
static void cocoQmpSessionDrain(CocoQmpSession *s);
static void cocoQmpSessionProcess(CocoQmpSession *s, CocoQmpLine *line);
static void cocoQmpRelayStop(CocoQmpRelay *relay);

static void
cocoQmpFdInfoFree(CocoQmpFdInfo *info)
{
    g_free(info->peer);
    g_free(info);
}

static CocoQmpSession *
cocoQmpSessionRef(CocoQmpSession *s)
{
    s->refs++;
    return s;
}

static void
cocoQmpSessionUnref(CocoQmpSession *s)
{
    CocoQmpLine *l;

    if (!s || --s->refs > 0)
        return;
    g_clear_pointer(&s->client, cocoQmpChannelUnref);
    g_clear_pointer(&s->qemu, cocoQmpChannelUnref);
    g_clear_pointer(&s->current, cocoQmpLineFree);
    g_clear_pointer(&s->currentMsg, cocoQmpMessageFree);
    while ((l = g_queue_pop_head(&s->later)))
        cocoQmpLineFree(l);
    g_hash_table_unref(s->injected);
    g_hash_table_unref(s->augment);
    g_hash_table_unref(s->fds);
    g_free(s->pendingUri);
    g_free(s->pendingPeer);
    g_free(s->pendingHostdev);
    g_free(s);
}

static void
cocoQmpRelayTrace(CocoQmpRelay *relay, guint serial, const char *dir,
                  const char *data, gsize len)
{
    g_autofree char *text = NULL;
    gint64 now;

    if (relay->traceFd < 0)
        return;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    now = g_get_real_time();
    text = g_strdup_printf("%" G_GINT64_FORMAT ".%06d s%u %s %.*s\n",
                           now / G_USEC_PER_SEC, (int)(now % G_USEC_PER_SEC),
                           serial, dir, (int)MIN(len, (gsize)G_MAXINT), data);
    if (write(relay->traceFd, text, strlen(text)) < 0) {
        /* A full disk must not stop the guest's monitor. */
        COCO_FORCE_CLOSE(relay->traceFd);
    }
}

/* Tell the agent that libvirt cancelled the migration it precopies. */
static void
cocoQmpRelayNotifyCancel(CocoQmpRelay *relay)
{
    g_autoptr(JsonObject) data = json_object_new();

    json_object_set_string_member(
        data, "role", cocoQmpRoleTypeToString(COCO_QMP_ROLE_SOURCE));
    cocoQmpAgentNotify(relay->agent, "migrate-cancel", data);
}

/* Every change of who owns the source job goes through the one table
 * (cocoQmpOwnNext()); FALSE when @event cannot happen now. */
static gboolean
cocoQmpRelayOwnMove(CocoQmpRelay *relay, CocoQmpOwnEvent event)
{
    return cocoQmpOwnNext(relay->own, event, &relay->own);
}

static void
cocoQmpSessionClose(CocoQmpSession *s)
{
    CocoQmpRelay *relay = s->relay;

    if (s->closed)
        return;
    s->closed = TRUE;
    if (relay && relay->ownSession == s) {
        relay->ownSession = NULL;
        if (cocoQmpRelayOwnMove(relay, COCO_QMP_OWN_EV_CANCELLED)) {
            /* Nobody will ever start QEMU's part: the agents stop. */
            relay->role = COCO_QMP_ROLE_NONE;
            cocoQmpRelayNotifyCancel(relay);
        }
    }
    cocoQmpChannelClose(s->client);
    cocoQmpChannelClose(s->qemu);
    if (relay) {
        GList *link = g_list_find(relay->sessions, s);

        if (link) {
            relay->sessions = g_list_delete_link(relay->sessions, link);
            cocoQmpSessionUnref(s);
        }
    }
}

static void
cocoQmpSessionSendClient(CocoQmpSession *s, const char *text)
{
    cocoQmpRelayTrace(s->relay, s->serial, "R>L", text, strlen(text));
    cocoQmpChannelSend(s->client, text, strlen(text), NULL, 0);
}

static void
cocoQmpSessionForward(CocoQmpSession *s, CocoQmpChannel *to, CocoQmpLine *line)
{
    cocoQmpChannelSend(to, line->data, line->len, line->fds, line->nfds);
    cocoQmpLineFree(line);
}

static void
cocoQmpSessionInject(CocoQmpSession *s, const char *execute, JsonObject *args,
                     CocoQmpInjectDone done)
{
    g_autofree char *id = NULL;
    g_autofree char *text = NULL;

    id = g_strdup_printf(COCO_QMP_INJECT_PREFIX "%" G_GUINT64_FORMAT,
                         ++s->relay->nextInject);
    text = cocoQmpBuildCommand(execute, args, id);
    g_hash_table_insert(s->injected, g_steal_pointer(&id), (gpointer)done);
    cocoQmpRelayTrace(s->relay, s->serial, "R>Q", text, strlen(text));
    cocoQmpChannelSend(s->qemu, text, strlen(text), NULL, 0);
}

static void
cocoQmpSessionHold(CocoQmpSession *s, CocoQmpLine *line, CocoQmpMessage *msg)
{
    s->busy = TRUE;
    s->current = line;
    s->currentMsg = msg;
}

/* Let the held command through to QEMU. */
static void
cocoQmpSessionRelease(CocoQmpSession *s)
{
    CocoQmpLine *line = g_steal_pointer(&s->current);

    g_clear_pointer(&s->currentMsg, cocoQmpMessageFree);
    s->busy = FALSE;
    if (line) {
        cocoQmpRelayTrace(s->relay, s->serial, "L>Q", line->data, line->len);
        cocoQmpSessionForward(s, s->qemu, line);
    }
    cocoQmpSessionDrain(s);
}

/* Answer the held command with an error; QEMU never sees it. */
static void
cocoQmpSessionRefuse(CocoQmpSession *s, const char *desc)
{
    g_autofree char *text = NULL;

    text = cocoQmpBuildError("GenericError", desc,
                             s->currentMsg ? s->currentMsg->id : NULL);
    g_clear_pointer(&s->current, cocoQmpLineFree);
    g_clear_pointer(&s->currentMsg, cocoQmpMessageFree);
    s->busy = FALSE;
    g_printerr("%s\n", desc);
    cocoQmpSessionSendClient(s, text);
    cocoQmpSessionDrain(s);
}

static void
cocoQmpSessionDrain(CocoQmpSession *s)
{
    CocoQmpLine *line;

    while (!s->closed && !s->busy && (line = g_queue_pop_head(&s->later)))
        cocoQmpSessionProcess(s, line);
}

static JsonObject *
cocoQmpRelayJobData(CocoQmpSession *s)
{
    JsonObject *data = json_object_new();

    json_object_set_string_member(data, "role",
                                  cocoQmpRoleTypeToString(s->pendingRole));
    json_object_set_string_member(data, "job",
                                  cocoQmpJobTypeToString(s->pendingJob));
    json_object_set_string_member(data, "uri", NULLSTR(s->pendingUri));
    if (s->pendingPeer)
        json_object_set_string_member(data, "peer", s->pendingPeer);
    json_object_set_boolean_member(data, "x-ignore-shared", s->pendingWant);
    if (s->relay->downtimeLimit >= 0)
        json_object_set_int_member(data, "downtime-limit",
                                   s->relay->downtimeLimit);
    if (s->relay->maxBandwidth >= 0)
        json_object_set_int_member(data, "max-bandwidth",
                                   s->relay->maxBandwidth);
    if (s->relay->vfioLeak)
        json_object_set_string_member(data, "vfio-leak", s->relay->vfioLeak);
    return data;
}

/* A MIGRATION status libvirt sees, from QEMU or from the relay. */
static void
cocoQmpRelayOnMigrationStatus(CocoQmpRelay *relay, const char *status)
{
    if (relay->agent) {
        g_autoptr(JsonObject) data = json_object_new();

        json_object_set_string_member(data, "status", NULLSTR(status));
        json_object_set_string_member(data, "role",
                                      cocoQmpRoleTypeToString(relay->role));
        cocoQmpAgentNotify(relay->agent, "MIGRATION", data);
    }
    relay->migrationFailed =
        STREQ_NULLABLE(status, "failed") || STREQ_NULLABLE(status, "cancelled");
    /*
     * A source whose migration failed while it runs (QEMU resumes it
     * itself unless the migration had completed) needs no gate.
     */
    if (relay->role == COCO_QMP_ROLE_SOURCE && !relay->paused &&
        relay->migrationFailed && !relay->holdPaused)
        relay->role = COCO_QMP_ROLE_NONE;
}

/* Send libvirt an event of the relay's own, as QEMU would. */
static void
cocoQmpSessionEmitEvent(CocoQmpSession *s, const char *event, JsonObject *data)
{
    g_autofree char *text = cocoQmpBuildEvent(event, data);

    cocoQmpSessionSendClient(s, text);
}

/* A synthetic MIGRATION event for the migration the relay owns. */
static void
cocoQmpRelayEmitMigration(CocoQmpRelay *relay, const char *status)
{
    if (relay->ownSession && !relay->ownSession->closed) {
        JsonObject *data = json_object_new();

        json_object_set_string_member(data, "status", status);
        cocoQmpSessionEmitEvent(relay->ownSession, "MIGRATION", data);
    }
    cocoQmpRelayOnMigrationStatus(relay, status);
}

/* The relay fails the migration it owns; libvirt reads @desc from
 * 'query-migrate' after the event. */
static void
cocoQmpRelayFailMigration(CocoQmpRelay *relay, const char *desc)
{
    g_free(relay->ownError);
    relay->ownError = g_strdup(desc);
    cocoQmpRelayOwnMove(relay, COCO_QMP_OWN_EV_FAIL);
    cocoQmpRelayEmitMigration(relay, "failed");
}

static void
cocoQmpSessionOnForwardedMigrate(CocoQmpSession *s, CocoQmpMessage *reply)
{
    CocoQmpRelay *relay = s->relay;

    if (!cocoQmpMessageIsError(reply) || relay->ownSession != s ||
        relay->own != COCO_QMP_OWN_FORWARDED)
        return;
    /* QEMU refused to start: it emits no event, so the relay does. */
    relay->suppressSetup = FALSE;
    g_printerr("qemu-coco: QEMU refused 'migrate': %s\n",
               NULLSTR(cocoQmpMessageErrorDesc(reply)));
    cocoQmpRelayFailMigration(relay, NULLSTR(cocoQmpMessageErrorDesc(reply)));
}

/* The agents' precopy is done: QEMU starts with libvirt's arguments. */
static void
cocoQmpSessionForwardMigration(CocoQmpSession *s)
{
    CocoQmpRelay *relay = s->relay;

    cocoQmpRelayOwnMove(relay, COCO_QMP_OWN_EV_FORWARD);
    relay->ownForwarded = g_get_monotonic_time();
    relay->suppressSetup = TRUE;
    cocoQmpSessionInject(
        s, "migrate", relay->ownArgs ? json_object_ref(relay->ownArgs) : NULL,
        cocoQmpSessionOnForwardedMigrate);
}

typedef struct {
    CocoQmpSession *s;
    CocoQmpGate gate;
    guint gen;
} CocoQmpGateCall;

static void cocoQmpSessionOnVerdict(gboolean release, const char *reason,
                                    gpointer opaque);

/* Ask the agent about the held command; the verdict releases or refuses. */
static void
cocoQmpSessionAskAgent(CocoQmpSession *s, CocoQmpGate gate)
{
    CocoQmpGateCall *call = g_new0(CocoQmpGateCall, 1);

    call->s = cocoQmpSessionRef(s);
    call->gate = gate;
    call->gen = s->relay->ownGen;
    cocoQmpAgentGate(s->relay->agent, gate, s->relay->role,
                     cocoQmpSessionOnVerdict, call);
}

/*
 * A source's real migration with an agent: answer libvirt's 'migrate' at
 * once, as QEMU does ('setup' before the reply, 'active' after it), and
 * ask the agent's 'migrate' gate. QEMU gets 'migrate' only on release:
 * the agents run SETUP and their precopy rounds first, while libvirt's
 * monitor stays free for 'query-migrate' and 'migrate_cancel'.
 */
static void
cocoQmpSessionOwnMigration(CocoQmpSession *s)
{
    CocoQmpRelay *relay = s->relay;
    g_autofree char *ack = NULL;
    JsonObject *args = cocoQmpMessageGetArguments(s->currentMsg);
    JsonObject *data;

    cocoQmpRelayOwnMove(relay, COCO_QMP_OWN_EV_NEW_JOB);
    cocoQmpRelayOwnMove(relay, COCO_QMP_OWN_EV_HOLD);
    relay->ownSession = s;
    g_clear_pointer(&relay->ownArgs, json_object_unref);
    relay->ownArgs = args ? json_object_ref(args) : NULL;
    relay->ownStart = g_get_monotonic_time();
    relay->ownForwarded = 0;
    g_clear_pointer(&relay->ownError, g_free);
    memset(&relay->progress, 0, sizeof(relay->progress));
    relay->passes = 0;

    data = json_object_new();
    json_object_set_string_member(data, "status", "setup");
    cocoQmpSessionEmitEvent(s, "MIGRATION", data);
    ack = cocoQmpBuildReturn(NULL, s->currentMsg->id);
    g_clear_pointer(&s->current, cocoQmpLineFree);
    g_clear_pointer(&s->currentMsg, cocoQmpMessageFree);
    s->busy = FALSE;
    cocoQmpSessionSendClient(s, ack);
    cocoQmpRelayEmitMigration(relay, "active");
    cocoQmpSessionAskAgent(s, COCO_QMP_GATE_MIGRATE);
    cocoQmpSessionDrain(s);
}

/* The agent's verdict on the 'migrate' gate of the migration it owns. */
static void
cocoQmpSessionOnMigrateVerdict(CocoQmpSession *s, gboolean release,
                               const char *reason)
{
    CocoQmpRelay *relay = s->relay;
    g_autofree char *msg = NULL;

    if (release)
        relay->released++;
    else
        relay->refused++;
    if (relay->ownSession != s)
        return;
    if (relay->own == COCO_QMP_OWN_CANCELLING) {
        /* libvirt cancelled: QEMU never starts; the agent aborts (it got
         * 'migrate-cancel'), the source keeps running. */
        cocoQmpRelayOwnMove(relay, COCO_QMP_OWN_EV_CANCELLED);
        relay->role = COCO_QMP_ROLE_NONE;
        cocoQmpRelayEmitMigration(relay, "cancelled");
        return;
    }
    if (relay->own != COCO_QMP_OWN_PRECOPY)
        return;
    if (release) {
        cocoQmpSessionForwardMigration(s);
        return;
    }
    /* QEMU never starts this migration: nothing left to gate. */
    relay->role = COCO_QMP_ROLE_NONE;
    msg = g_strdup_printf(
        _("qemu-coco: the host agent refused to start the migration: %1$s"),
        reason);
    g_printerr("%s\n", msg);
    cocoQmpRelayFailMigration(relay, msg);
}

/*
 * libvirt's 'migrate_cancel' while the agents precopy: QEMU has nothing to
 * cancel. Answer it, tell the agent (it aborts, both sides, the source
 * keeps running, and refuses the gate) and report 'cancelled' then.
 */
static void
cocoQmpSessionCancelPrecopy(CocoQmpSession *s, CocoQmpMessage *msg)
{
    CocoQmpRelay *relay = s->relay;
    g_autofree char *ack = cocoQmpBuildReturn(NULL, msg->id);

    cocoQmpSessionSendClient(s, ack);
    /* Only the first cancel of a held job: a later one changes nothing. */
    if (!cocoQmpRelayOwnMove(relay, COCO_QMP_OWN_EV_CANCEL))
        return;
    cocoQmpRelayEmitMigration(relay, "cancelling");
    cocoQmpRelayNotifyCancel(relay);
}

/* 'query-migrate' while the relay owns the job: answered from the
 * agent's progress. */
static void
cocoQmpSessionQueryMigrate(CocoQmpSession *s, CocoQmpMessage *msg)
{
    CocoQmpRelay *relay = s->relay;
    g_autofree char *text = NULL;
    JsonNode *ret = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(
        ret,
        cocoQmpPrecopyStatus(relay->own, &relay->progress,
                             (g_get_monotonic_time() - relay->ownStart) / 1000,
                             relay->ownError, relay->downtimeLimit));
    text = cocoQmpBuildReturn(ret, msg->id);
    cocoQmpSessionSendClient(s, text);
}

/* The agent's progress on the private memory of the migration. */
static void
cocoQmpRelayOnAgentProgress(JsonObject *msg, gpointer opaque)
{
    CocoQmpRelay *relay = opaque;
    CocoQmpProgress p = {0};

    if (relay->own != COCO_QMP_OWN_PRECOPY &&
        relay->own != COCO_QMP_OWN_FORWARDED)
        return;
    if (!cocoQmpProgressParse(msg, &p))
        return;
    cocoQmpProgressMerge(&relay->progress, &p);
    p = relay->progress;
    /* One MIGRATION_PASS per precopy epoch, as QEMU's dirty syncs. */
    if (relay->own == COCO_QMP_OWN_PRECOPY && relay->ownSession &&
        !relay->ownSession->closed && p.epoch > relay->passes) {
        JsonObject *data = json_object_new();

        relay->passes = p.epoch;
        json_object_set_int_member(data, "pass", (gint64)p.epoch);
        cocoQmpSessionEmitEvent(relay->ownSession, "MIGRATION_PASS", data);
    }
}

/*
 * The job is decided and x-ignore-shared set: tell the agent, go on. A
 * source's real migration with an agent is answered by the relay and
 * reaches QEMU after the agents' precopy (cocoQmpSessionOwnMigration).
 */
static void
cocoQmpSessionStartJob(CocoQmpSession *s)
{
    CocoQmpRelay *relay = s->relay;
    const char *event =
        s->pendingRole == COCO_QMP_ROLE_SOURCE ? "migrate" : "migrate-incoming";

    if (s->pendingJob == COCO_QMP_JOB_MIGRATION) {
        relay->role = s->pendingRole;
        relay->migrations++;
    } else {
        relay->images++;
    }
    if (relay->agent) {
        g_autoptr(JsonObject) data = cocoQmpRelayJobData(s);

        cocoQmpAgentNotify(relay->agent, event, data);
        if (s->pendingJob == COCO_QMP_JOB_MIGRATION &&
            s->pendingRole == COCO_QMP_ROLE_SOURCE) {
            cocoQmpSessionOwnMigration(s);
            return;
        }
    }
    cocoQmpSessionRelease(s);
}

static void
cocoQmpSessionOnIgnoreShared(CocoQmpSession *s, CocoQmpMessage *reply)
{
    CocoQmpRelay *relay = s->relay;

    if (cocoQmpMessageIsError(reply)) {
        const char *desc = NULLSTR(cocoQmpMessageErrorDesc(reply));

        if (s->pendingWant) {
            g_autofree char *msg = NULL;

            msg = g_strdup_printf(
                _("qemu-coco: cannot turn on the migration capability 'x-ignore-shared': %1$s"),
                desc);
            cocoQmpSessionRefuse(s, msg);
            return;
        }
        /* A QEMU without the capability cannot ignore shared RAM. */
        relay->ignoreShared = FALSE;
    } else {
        relay->ignoreShared = s->pendingWant;
    }
    relay->ignoreSharedKnown = TRUE;
    cocoQmpSessionStartJob(s);
}

static char *
cocoQmpFdPeer(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN];

    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return NULL;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;

        if (!inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)))
            return NULL;
        return g_strdup_printf("%s:%u", host, ntohs(in->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

        if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
            return NULL;
        return g_strdup_printf("[%s]:%u", host, ntohs(in6->sin6_port));
    }
    if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;

        if (len > offsetof(struct sockaddr_un, sun_path) && un->sun_path[0])
            return g_strdup_printf("unix:%s", un->sun_path);
        return g_strdup("unix:");
    }
    return NULL;
}

static void
cocoQmpSessionOnGetfd(CocoQmpSession *s, CocoQmpLine *line, CocoQmpMessage *msg)
{
    const char *name = cocoQmpMessageGetArgString(msg, "fdname");
    CocoQmpFdInfo *info;
    struct stat sb;

    if (!name || line->nfds == 0)
        return;
    info = g_new0(CocoQmpFdInfo, 1);
    if (fstat(line->fds[0], &sb) == 0 && S_ISSOCK(sb.st_mode)) {
        info->kind = COCO_QMP_FD_SOCKET;
        info->peer = cocoQmpFdPeer(line->fds[0]);
    } else {
        info->kind = COCO_QMP_FD_OTHER;
    }
    g_hash_table_replace(s->fds, g_strdup(name), info);
}

static void
cocoQmpSessionOnSetCaps(CocoQmpSession *s, CocoQmpMessage *msg)
{
    JsonObject *args = cocoQmpMessageGetArguments(msg);
    JsonNode *n = args ? json_object_get_member(args, "capabilities") : NULL;
    JsonArray *caps;
    guint i;

    if (!n || !JSON_NODE_HOLDS_ARRAY(n))
        return;
    caps = json_node_get_array(n);
    for (i = 0; i < json_array_get_length(caps); i++) {
        JsonNode *e = json_array_get_element(caps, i);
        JsonObject *c;
        const char *name;
        gboolean state;

        if (!JSON_NODE_HOLDS_OBJECT(e))
            continue;
        c = json_node_get_object(e);
        name = cocoJsonStringDefault(c, "capability", "");
        state = cocoJsonBoolDefault(c, "state", FALSE);
        if (STREQ(name, "pause-before-switchover"))
            s->capPauseBeforeSwitchover = state;
        else if (STREQ(name, "late-block-activate"))
            s->capLateBlockActivate = state;
    }
}

/*
 * libvirt's 'migrate-set-capabilities' on a confidential session: QEMU
 * never gets the post-copy capabilities (with x-ignore-shared it would
 * fail every migration); libvirt's request is remembered and answered as
 * QEMU would. Returns TRUE when the relay answered or forwarded @line.
 */
static gboolean
cocoQmpSessionFilterCaps(CocoQmpSession *s, CocoQmpLine *line,
                         CocoQmpMessage *msg)
{
    JsonObject *args = cocoQmpMessageGetArguments(msg);
    JsonNode *n = args ? json_object_get_member(args, "capabilities") : NULL;
    g_autofree char *text = NULL;

    if (!n || !JSON_NODE_HOLDS_ARRAY(n) ||
        cocoQmpModesFilterCapabilities(json_node_get_array(n), &s->modes) == 0)
        return FALSE;
    s->relay->postcopyKept = s->modes.postcopy;
    cocoQmpRelayTrace(s->relay, s->serial, "L>R", line->data, line->len);
    cocoQmpLineFree(line);
    if (json_array_get_length(json_node_get_array(n)) == 0) {
        text = cocoQmpBuildReturn(NULL, msg->id);
        cocoQmpSessionSendClient(s, text);
        return TRUE;
    }
    text = cocoQmpBuildObjectLine(json_object_ref(msg->obj));
    cocoQmpRelayTrace(s->relay, s->serial, "R>Q", text, strlen(text));
    cocoQmpChannelSend(s->qemu, text, strlen(text), NULL, 0);
    return TRUE;
}

/* A non-negative number argument of libvirt's, or -1. */
static gint64
cocoQmpArgNumber(JsonObject *args, const char *member, gdouble scale)
{
    JsonNode *n = args ? json_object_get_member(args, member) : NULL;
    gdouble v;

    if (!n || !JSON_NODE_HOLDS_VALUE(n))
        return -1;
    if (json_node_get_value_type(n) == G_TYPE_INT64)
        v = (gdouble)json_node_get_int(n);
    else if (json_node_get_value_type(n) == G_TYPE_DOUBLE)
        v = json_node_get_double(n);
    else
        return -1;
    v *= scale;
    if (!(v >= 0))
        return -1;
    return v >= 9.2e18 ? G_MAXINT64 : (gint64)v;
}

/*
 * libvirt's migration parameters (migrate-set-parameters, and the old
 * migrate_set_downtime / migrate_set_speed): QEMU gets them unchanged;
 * the relay remembers the downtime limit and the bandwidth and tells the
 * agent, whose precopy policy and sealed pipeline follow them, also
 * during a migration (Nova's downtime steps, virsh migrate-setspeed).
 */
static void
cocoQmpSessionOnParameters(CocoQmpSession *s, CocoQmpMessage *msg)
{
    CocoQmpRelay *relay = s->relay;
    JsonObject *args = cocoQmpMessageGetArguments(msg);
    gint64 downtime = -1;
    gint64 bandwidth = -1;
    g_autoptr(JsonObject) data = NULL;

    if (STREQ(msg->name, "migrate-set-parameters")) {
        downtime = cocoQmpArgNumber(args, "downtime-limit", 1);
        bandwidth = cocoQmpArgNumber(args, "max-bandwidth", 1);
    } else if (STREQ(msg->name, "migrate_set_downtime")) {
        downtime = cocoQmpArgNumber(args, "value", 1000);
    } else {
        bandwidth = cocoQmpArgNumber(args, "value", 1);
    }
    if (downtime < 0 && bandwidth < 0)
        return;
    data = json_object_new();
    if (downtime >= 0) {
        relay->downtimeLimit = downtime;
        json_object_set_int_member(data, "downtime-limit", downtime);
    }
    if (bandwidth >= 0) {
        relay->maxBandwidth = bandwidth;
        json_object_set_int_member(data, "max-bandwidth", bandwidth);
    }
    if (relay->agent)
        cocoQmpAgentNotify(relay->agent, "migrate-parameters", data);
}

static void cocoQmpSessionMigrateGo(CocoQmpSession *s, const char *notReady);
static void cocoQmpSessionOnAgentReady(gboolean ready, const char *reason,
                                       gpointer opaque);

static void
cocoQmpSessionOnMigrate(CocoQmpSession *s, CocoQmpLine *line,
                        CocoQmpMessage *msg, CocoQmpRole role)
{
    CocoQmpRelay *relay = s->relay;
    const char *uri = cocoQmpMessageGetArgString(msg, "uri");

    /* A new job: the relay owns no migration any more. */
    cocoQmpRelayOwnMove(relay, COCO_QMP_OWN_EV_NEW_JOB);
    relay->ownGen++;
    relay->ownSession = NULL;
    relay->suppressSetup = FALSE;
    g_free(s->pendingUri);
    s->pendingUri = g_strdup(uri);
    g_clear_pointer(&s->pendingPeer, g_free);
    s->pendingRole = role;
    if (role == COCO_QMP_ROLE_SOURCE) {
        const char *fdname = cocoQmpMigrationFdName(uri);
        CocoQmpFdInfo *info =
            fdname ? g_hash_table_lookup(s->fds, fdname) : NULL;

        s->pendingJob = cocoQmpMigrationClassifySource(
            uri, info ? info->kind : COCO_QMP_FD_UNKNOWN,
            s->capPauseBeforeSwitchover);
        if (info && info->peer)
            s->pendingPeer = g_strdup(info->peer);
        else
            s->pendingPeer = cocoQmpModesTcpPeer(uri);
    } else {
        s->pendingJob =
            cocoQmpMigrationClassifyDestination(uri, s->capLateBlockActivate);
    }
    s->pendingWant = relay->agent && s->pendingJob == COCO_QMP_JOB_MIGRATION;
    cocoQmpSessionHold(s, line, msg);

    /* A mode the agents cannot carry is refused before anything starts. */
    if (relay->agent && s->pendingJob == COCO_QMP_JOB_MIGRATION) {
        CocoQmpFdInfo *info = NULL;
        g_autofree char *why = NULL;

        if (cocoQmpMigrationFdName(uri))
            info = g_hash_table_lookup(s->fds, cocoQmpMigrationFdName(uri));
        why = cocoQmpModesRefusal(&s->modes, role, uri,
                                  info ? info->kind : COCO_QMP_FD_UNKNOWN);
        if (why) {
            relay->refused++;
            cocoQmpSessionRefuse(s, why);
            return;
        }
    }

    /* A migration waits for the agent's answer to the relay's hello (a
     * relay that is just (re)connecting), then goes on or is refused. */
    if (relay->agent && s->pendingJob == COCO_QMP_JOB_MIGRATION) {
        CocoQmpGateCall *call = g_new0(CocoQmpGateCall, 1);

        call->s = cocoQmpSessionRef(s);
        call->gen = relay->ownGen;
        cocoQmpAgentWaitReady(relay->agent, COCO_QMP_AGENT_READY_WAIT_MS,
                              cocoQmpSessionOnAgentReady, call);
        return;
    }
    cocoQmpSessionMigrateGo(s, NULL);
}

static void
cocoQmpSessionOnAgentReady(gboolean ready, const char *reason, gpointer opaque)
{
    CocoQmpGateCall *call = opaque;
    CocoQmpSession *s = call->s;
    guint gen = call->gen;

    g_free(call);
    if (!s->closed && gen == s->relay->ownGen)
        cocoQmpSessionMigrateGo(
            s, ready ? NULL
                     : (reason ? reason : _("the host agent is not ready")));
    cocoQmpSessionUnref(s);
}

/* The held 'migrate' or 'migrate-incoming' goes on; @notReady: why the
 * host agent cannot take this relay's migration (NULL: it can). */
static void
cocoQmpSessionMigrateGo(CocoQmpSession *s, const char *notReady)
{
    CocoQmpRelay *relay = s->relay;
    JsonObject *args;
    JsonArray *caps;
    JsonObject *cap;

    /* Fail closed: a migration moves guest RAM only through the agents'
     * sealed pipeline; without an agent that accepted this relay, QEMU's
     * own stream would carry it in the clear. */
    if (s->pendingJob == COCO_QMP_JOB_MIGRATION) {
        g_autofree char *why = NULL;

        if (!relay->agent)
            why = g_strdup(_(
                "qemu-coco has no host agent configured (agent_socket in qemu-coco.conf)"));
        else if (notReady)
            why = g_strdup(notReady);
        if (why) {
            g_autofree char *desc = g_strdup_printf(
                _("qemu-coco: confidential migration refused: %1$s; the guest's memory would leave this host unsealed"),
                why);

            relay->refused++;
            cocoQmpSessionRefuse(s, desc);
            return;
        }
    }
    if (!relay->agent) {
        /* Save, snapshot, dump or restore: nothing moves the RAM but
         * QEMU's own stream. */
        cocoQmpSessionStartJob(s);
        return;
    }
    cap = json_object_new();
    json_object_set_string_member(cap, "capability", "x-ignore-shared");
    json_object_set_boolean_member(cap, "state", s->pendingWant);
    caps = json_array_new();
    json_array_add_object_element(caps, cap);
    args = json_object_new();
    json_object_set_array_member(args, "capabilities", caps);
    cocoQmpSessionInject(s, "migrate-set-capabilities", args,
                         cocoQmpSessionOnIgnoreShared);
}

static void
cocoQmpSessionOnVerdict(gboolean release, const char *reason, gpointer opaque)
{
    CocoQmpGateCall *call = opaque;
    CocoQmpSession *s = call->s;
    CocoQmpGate gate = call->gate;
    guint gen = call->gen;

    g_free(call);
    if (s->closed) {
        cocoQmpSessionUnref(s);
        return;
    }
    if (gate == COCO_QMP_GATE_MIGRATE) {
        /* A verdict for a job libvirt replaced since changes nothing. */
        if (gen == s->relay->ownGen)
            cocoQmpSessionOnMigrateVerdict(s, release, reason);
        cocoQmpSessionUnref(s);
        return;
    }
    if (release) {
        s->relay->released++;
        if (gate == COCO_QMP_GATE_CONT) {
            s->relay->role = COCO_QMP_ROLE_NONE;
            /* The agent lets the source run again (it recovered). */
            g_clear_pointer(&s->relay->holdPaused, g_free);
            s->relay->stoppedByRelay = FALSE;
        }
        cocoQmpSessionRelease(s);
    } else {
        g_autofree char *msg = NULL;

        s->relay->refused++;
        if (gate == COCO_QMP_GATE_SWITCHOVER) {
            msg = g_strdup_printf(
                _("qemu-coco: the host agent refused the switchover: %1$s"),
                reason);
        } else if (gate == COCO_QMP_GATE_HOSTDEV) {
            msg = cocoQmpHostdevRefusal(s->pendingHostdev, &s->relay->viommu,
                                        reason);
        } else
            msg = g_strdup_printf(
                _("qemu-coco: the host agent refused to resume the guest: %1$s"),
                reason);
        cocoQmpSessionRefuse(s, msg);
    }
    cocoQmpSessionUnref(s);
}

static void
cocoQmpSessionGate(CocoQmpSession *s, CocoQmpLine *line, CocoQmpMessage *msg,
                   CocoQmpGate gate)
{
    cocoQmpSessionHold(s, line, msg);
    cocoQmpSessionAskAgent(s, gate);
}

static void
cocoQmpSessionQueryRelay(CocoQmpSession *s, CocoQmpMessage *msg)
{
    g_autofree char *text = NULL;
    JsonNode *ret = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(ret, cocoQmpRelayQueryState(s->relay));
    text = cocoQmpBuildReturn(ret, msg->id);
    cocoQmpSessionSendClient(s, text);
}

/*
 * The commands the relay acts on, one handler each. A handler returns TRUE
 * when it took the line (answered, held or forwarded it) and FALSE when the
 * line goes on to QEMU unchanged. @line and @msg are the caller's: a handler
 * that keeps or frees one steals it.
 */
typedef gboolean (*CocoQmpCommandHandler)(CocoQmpSession *s, CocoQmpLine **line,
                                          CocoQmpMessage **msg);

static gboolean
cocoQmpCmdQueryRelay(CocoQmpSession *s, CocoQmpLine **line,
                     CocoQmpMessage **msg)
{
    cocoQmpRelayTrace(s->relay, s->serial, "L>R", (*line)->data, (*line)->len);
    cocoQmpSessionQueryRelay(s, *msg);
    cocoQmpLineFree(g_steal_pointer(line));
    return TRUE;
}

/* Does the relay answer for the migration of @s (QEMU has not seen it)? */
static gboolean
cocoQmpSessionOwnsUnforwarded(CocoQmpSession *s)
{
    CocoQmpRelay *relay = s->relay;

    return relay->ownSession == s && relay->own != COCO_QMP_OWN_NONE &&
           relay->own != COCO_QMP_OWN_FORWARDED;
}

static gboolean
cocoQmpCmdQueryMigrate(CocoQmpSession *s, CocoQmpLine **line,
                       CocoQmpMessage **msg)
{
    CocoQmpRelay *relay = s->relay;

    if (cocoQmpSessionOwnsUnforwarded(s)) {
        cocoQmpRelayTrace(relay, s->serial, "L>R", (*line)->data, (*line)->len);
        cocoQmpSessionQueryMigrate(s, *msg);
        cocoQmpLineFree(g_steal_pointer(line));
        return TRUE;
    }
    if (relay->ownSession == s && relay->own == COCO_QMP_OWN_FORWARDED) {
        g_autofree char *key = cocoQmpMessageIdKey(*msg);

        /* QEMU answers; the private memory is added to its reply. */
        if (key)
            g_hash_table_add(s->augment, g_steal_pointer(&key));
    }
    return FALSE;
}

static gboolean
cocoQmpCmdMigrateCancel(CocoQmpSession *s, CocoQmpLine **line,
                        CocoQmpMessage **msg)
{
    CocoQmpRelay *relay = s->relay;

    if (!cocoQmpSessionOwnsUnforwarded(s) ||
        (relay->own != COCO_QMP_OWN_PRECOPY &&
         relay->own != COCO_QMP_OWN_CANCELLING))
        return FALSE;
    cocoQmpRelayTrace(relay, s->serial, "L>R", (*line)->data, (*line)->len);
    cocoQmpSessionCancelPrecopy(s, *msg);
    cocoQmpLineFree(g_steal_pointer(line));
    return TRUE;
}

static gboolean
cocoQmpCmdMigrateAs(CocoQmpSession *s, CocoQmpLine **line, CocoQmpMessage **msg,
                    CocoQmpRole role)
{
    cocoQmpRelayTrace(s->relay, s->serial, "L>R", (*line)->data, (*line)->len);
    cocoQmpSessionOnMigrate(s, g_steal_pointer(line), g_steal_pointer(msg),
                            role);
    return TRUE;
}

static gboolean
cocoQmpCmdMigrate(CocoQmpSession *s, CocoQmpLine **line, CocoQmpMessage **msg)
{
    return cocoQmpCmdMigrateAs(s, line, msg, COCO_QMP_ROLE_SOURCE);
}

static gboolean
cocoQmpCmdMigrateIncoming(CocoQmpSession *s, CocoQmpLine **line,
                          CocoQmpMessage **msg)
{
    return cocoQmpCmdMigrateAs(s, line, msg, COCO_QMP_ROLE_DESTINATION);
}

static gboolean
cocoQmpCmdGateAs(CocoQmpSession *s, CocoQmpLine **line, CocoQmpMessage **msg,
                 CocoQmpGate gate)
{
    cocoQmpRelayTrace(s->relay, s->serial, "L>R", (*line)->data, (*line)->len);
    cocoQmpSessionGate(s, g_steal_pointer(line), g_steal_pointer(msg), gate);
    return TRUE;
}

static gboolean
cocoQmpCmdMigrateContinue(CocoQmpSession *s, CocoQmpLine **line,
                          CocoQmpMessage **msg)
{
    if (!s->relay->agent ||
        !STREQ_NULLABLE(cocoQmpMessageGetArgString(*msg, "state"),
                        "pre-switchover"))
        return FALSE;
    return cocoQmpCmdGateAs(s, line, msg, COCO_QMP_GATE_SWITCHOVER);
}

static gboolean
cocoQmpCmdCont(CocoQmpSession *s, CocoQmpLine **line, CocoQmpMessage **msg)
{
    if (!s->relay->agent || s->relay->role == COCO_QMP_ROLE_NONE)
        return FALSE;
    return cocoQmpCmdGateAs(s, line, msg, COCO_QMP_GATE_CONT);
}

/* Answer @line with the error @text; QEMU never sees it. */
static gboolean
cocoQmpSessionAnswerError(CocoQmpSession *s, CocoQmpLine **line,
                          CocoQmpMessage *msg, const char *text)
{
    g_autofree char *reply = cocoQmpBuildError("GenericError", text, msg->id);

    cocoQmpRelayTrace(s->relay, s->serial, "L>R", (*line)->data, (*line)->len);
    g_printerr("%s\n", text);
    cocoQmpSessionSendClient(s, reply);
    cocoQmpLineFree(g_steal_pointer(line));
    return TRUE;
}

static gboolean
cocoQmpCmdStartPostcopy(CocoQmpSession *s, CocoQmpLine **line,
                        CocoQmpMessage **msg)
{
    /* Post-copy needs the agents' post-copy import: there is none. */
    if (!s->relay->agent)
        return FALSE;
    return cocoQmpSessionAnswerError(s, line, *msg,
                                     cocoQmpModesPostcopyRefusal());
}

static gboolean
cocoQmpCmdParameters(CocoQmpSession *s, CocoQmpLine **line G_GNUC_UNUSED,
                     CocoQmpMessage **msg)
{
    cocoQmpSessionOnParameters(s, *msg);
    return FALSE;
}

static gboolean
cocoQmpCmdGetfd(CocoQmpSession *s, CocoQmpLine **line, CocoQmpMessage **msg)
{
    cocoQmpSessionOnGetfd(s, *line, *msg);
    return FALSE;
}

static gboolean
cocoQmpCmdSetCaps(CocoQmpSession *s, CocoQmpLine **line, CocoQmpMessage **msg)
{
    cocoQmpSessionOnSetCaps(s, *msg);
    if (!s->relay->agent || !cocoQmpSessionFilterCaps(s, *line, *msg))
        return FALSE;
    /* The filter took the line. */
    *line = NULL;
    return TRUE;
}

/* A VFIO device_add (QMP, or HMP through human-monitor-command). */
static gboolean
cocoQmpCmdHostdev(CocoQmpSession *s, CocoQmpLine **line, CocoQmpMessage **msg)
{
    CocoQmpRelay *relay = s->relay;
    g_autofree char *device = NULL;

    if (!cocoQmpHostdevIsVfioAdd(*msg, &device) ||
        !cocoQmpViommuIsWide(&relay->viommu))
        return FALSE;
    /* docs/hook.rst, "Hot-plug": the agent knows the host's kernel and
     * the domain's policy; without one the device is refused. */
    cocoQmpRelayTrace(relay, s->serial, "L>R", (*line)->data, (*line)->len);
    g_free(s->pendingHostdev);
    s->pendingHostdev = g_steal_pointer(&device);
    if (relay->agent) {
        cocoQmpSessionGate(s, g_steal_pointer(line), g_steal_pointer(msg),
                           COCO_QMP_GATE_HOSTDEV);
    } else {
        g_autofree char *text = cocoQmpHostdevRefusal(
            s->pendingHostdev, &relay->viommu,
            _("no host agent is configured (agent_socket) to check this host kernel's range-safe VFIO unmap fix and the domain's policy"));

        cocoQmpSessionHold(s, g_steal_pointer(line), g_steal_pointer(msg));
        cocoQmpSessionRefuse(s, text);
    }
    return TRUE;
}

/* An HMP command line: a VFIO device_add is gated like QMP's; the HMP forms
 * of the commands the relay gates are refused (they would pass the gates). */
static gboolean
cocoQmpCmdHmp(CocoQmpSession *s, CocoQmpLine **line, CocoQmpMessage **msg)
{
    g_autofree char *text = NULL;
    const char *hmp;
    const char *qmp;

    if (cocoQmpCmdHostdev(s, line, msg))
        return TRUE;
    if (!cocoQmpHmpGated(*msg, &hmp, &qmp))
        return FALSE;
    text = g_strdup_printf(
        _("qemu-coco: the HMP command '%1$s' is refused: the relay gates it for the confidential migration, use the QMP command '%2$s'"),
        hmp, qmp);
    return cocoQmpSessionAnswerError(s, line, *msg, text);
}

static const struct {
    const char *name;
    CocoQmpCommandHandler handle;
} cocoQmpCommands[] = {
    {"x-coco-query-relay", cocoQmpCmdQueryRelay},
    {"query-migrate", cocoQmpCmdQueryMigrate},
    {"migrate_cancel", cocoQmpCmdMigrateCancel},
    {"migrate", cocoQmpCmdMigrate},
    {"migrate-incoming", cocoQmpCmdMigrateIncoming},
    {"migrate-continue", cocoQmpCmdMigrateContinue},
    {"cont", cocoQmpCmdCont},
    {"migrate-start-postcopy", cocoQmpCmdStartPostcopy},
    {"device_add", cocoQmpCmdHostdev},
    {"human-monitor-command", cocoQmpCmdHmp},
    {"migrate-set-parameters", cocoQmpCmdParameters},
    {"migrate_set_downtime", cocoQmpCmdParameters},
    {"migrate_set_speed", cocoQmpCmdParameters},
    {"getfd", cocoQmpCmdGetfd},
    {"migrate-set-capabilities", cocoQmpCmdSetCaps},
};

static CocoQmpCommandHandler
cocoQmpCommandLookup(const char *name)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoQmpCommands); i++) {
        if (STREQ(cocoQmpCommands[i].name, name))
            return cocoQmpCommands[i].handle;
    }
    return NULL;
}

/* One libvirt line, when no other command is held. */
static void
cocoQmpSessionProcess(CocoQmpSession *s, CocoQmpLine *line)
{
    CocoQmpRelay *relay = s->relay;
    g_autoptr(CocoQmpMessage) msg = NULL;
    CocoQmpCommandHandler handle;

    msg = cocoQmpMessageParse(line->data, line->len, NULL);
    if (!msg) {
        g_autofree char *text = NULL;

        /*
         * Only what the relay understands reaches QEMU: text that is not one
         * JSON object (QEMU's parser is more lenient) could carry commands
         * past the gates.
         */
        cocoQmpRelayTrace(relay, s->serial, "L>R", line->data, line->len);
        text = cocoQmpBuildError(
            "GenericError",
            _("qemu-coco: a QMP command must be one JSON object on one line"),
            NULL);
        cocoQmpSessionSendClient(s, text);
        cocoQmpLineFree(line);
        return;
    }
    if (msg->kind == COCO_QMP_KIND_COMMAND && msg->name &&
        (handle = cocoQmpCommandLookup(msg->name)) && handle(s, &line, &msg))
        return;
    cocoQmpRelayTrace(relay, s->serial, "L>Q", line->data, line->len);
    cocoQmpSessionForward(s, s->qemu, line);
}

static void
cocoQmpSessionOnClientLine(CocoQmpChannel *ch, CocoQmpLine *line,
                           gpointer opaque)
{
    CocoQmpSession *s = opaque;

    if (s->busy) {
        g_queue_push_tail(&s->later, line);
        return;
    }
    cocoQmpSessionProcess(s, line);
}

/* QEMU's run state changed (@running): a guest paused during the agents'
 * precopy (virsh suspend, Nova's force-complete) switches over at once. */
static void
cocoQmpSessionOnRunState(CocoQmpSession *s, gboolean running)
{
    CocoQmpRelay *relay = s->relay;

    if (relay->agent && relay->own == COCO_QMP_OWN_PRECOPY) {
        g_autoptr(JsonObject) data = json_object_new();

        json_object_set_boolean_member(data, "running", running);
        cocoQmpAgentNotify(relay->agent, "run-state", data);
    }
}

static void
cocoQmpEventStop(CocoQmpSession *s, CocoQmpMessage *msg G_GNUC_UNUSED)
{
    cocoQmpSessionOnRunState(s, FALSE);
    s->relay->paused = TRUE;
}

static void
cocoQmpEventResume(CocoQmpSession *s, CocoQmpMessage *msg G_GNUC_UNUSED)
{
    CocoQmpRelay *relay = s->relay;

    cocoQmpSessionOnRunState(s, TRUE);
    relay->paused = FALSE;
    if (relay->holdPaused) {
        /* QEMU resumed a frozen source by itself (a failed migration):
         * stop it again; only the agent's verdict on 'cont' may run it. */
        cocoQmpRelayStop(relay);
    } else if (relay->role == COCO_QMP_ROLE_SOURCE && relay->migrationFailed) {
        /* QEMU resumed a source whose migration failed: nothing to
         * gate. */
        relay->role = COCO_QMP_ROLE_NONE;
    }
}

static void
cocoQmpEventMigration(CocoQmpSession *s, CocoQmpMessage *msg)
{
    cocoQmpRelayOnMigrationStatus(s->relay,
                                  cocoQmpMessageGetArgString(msg, "status"));
}

/* The QEMU events the relay acts on; every event reaches libvirt too. */
static const struct {
    const char *name;
    void (*handle)(CocoQmpSession *s, CocoQmpMessage *msg);
} cocoQmpEvents[] = {
    {"STOP", cocoQmpEventStop},
    {"RESUME", cocoQmpEventResume},
    {"MIGRATION", cocoQmpEventMigration},
};

static void
cocoQmpSessionOnEvent(CocoQmpSession *s, CocoQmpMessage *msg)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoQmpEvents); i++) {
        if (STREQ(cocoQmpEvents[i].name, msg->name)) {
            cocoQmpEvents[i].handle(s, msg);
            return;
        }
    }
}

static void
cocoQmpSessionOnQemuLine(CocoQmpChannel *ch, CocoQmpLine *line, gpointer opaque)
{
    CocoQmpSession *s = opaque;
    G_GNUC_UNUSED g_autoptr(CocoQmpSession) hold = cocoQmpSessionRef(s);
    g_autoptr(CocoQmpMessage) msg = NULL;

    msg = cocoQmpMessageParse(line->data, line->len, NULL);
    if (msg && msg->kind == COCO_QMP_KIND_REPLY && msg->id &&
        JSON_NODE_HOLDS_VALUE(msg->id) &&
        json_node_get_value_type(msg->id) == G_TYPE_STRING) {
        const char *id = json_node_get_string(msg->id);
        gpointer done;

        if (g_hash_table_lookup_extended(s->injected, id, NULL, &done)) {
            g_hash_table_remove(s->injected, id);
            cocoQmpRelayTrace(s->relay, s->serial, "Q>R", line->data,
                              line->len);
            cocoQmpLineFree(line);
            ((CocoQmpInjectDone)done)(s, msg);
            return;
        }
    }
    if (msg && msg->kind == COCO_QMP_KIND_EVENT && msg->name) {
        CocoQmpRelay *relay = s->relay;

        cocoQmpSessionOnEvent(s, msg);
        if (relay->suppressSetup && relay->ownSession == s &&
            STREQ(msg->name, "MIGRATION") &&
            STREQ_NULLABLE(cocoQmpMessageGetArgString(msg, "status"),
                           "setup")) {
            /* libvirt saw 'setup' and 'active' from the relay already. */
            relay->suppressSetup = FALSE;
            cocoQmpRelayTrace(relay, s->serial, "Q>R", line->data, line->len);
            cocoQmpLineFree(line);
            return;
        }
        if (relay->passes > 0 && relay->ownSession == s &&
            relay->own == COCO_QMP_OWN_FORWARDED &&
            STREQ(msg->name, "MIGRATION_PASS")) {
            JsonObject *data = cocoQmpMessageGetArguments(msg);
            gint64 pass;

            if (cocoJsonInt(data, "pass", &pass)) {
                g_autofree char *text = NULL;

                /* QEMU counts its passes from 1: they follow the
                 * agents' epochs libvirt saw already. */
                json_object_set_int_member(data, "pass",
                                           pass + (gint64)relay->passes);
                cocoQmpRelayTrace(relay, s->serial, "Q>R", line->data,
                                  line->len);
                cocoQmpLineFree(line);
                text = cocoQmpBuildObjectLine(json_object_ref(msg->obj));
                cocoQmpSessionSendClient(s, text);
                return;
            }
        }
    }
    if (msg && msg->kind == COCO_QMP_KIND_REPLY &&
        g_hash_table_size(s->augment) > 0) {
        g_autofree char *key = cocoQmpMessageIdKey(msg);
        JsonNode *ret = json_object_get_member(msg->obj, "return");

        if (key && g_hash_table_remove(s->augment, key) && ret &&
            JSON_NODE_HOLDS_OBJECT(ret)) {
            g_autofree char *text = NULL;

            cocoQmpRelayTrace(s->relay, s->serial, "Q>R", line->data,
                              line->len);
            cocoQmpLineFree(line);
            cocoQmpPrecopyAugment(json_node_get_object(ret),
                                  &s->relay->progress, s->relay->passes);
            text = cocoQmpBuildReturn(json_node_copy(ret), msg->id);
            cocoQmpSessionSendClient(s, text);
            return;
        }
    }
    cocoQmpRelayTrace(s->relay, s->serial, "Q>L", line->data, line->len);
    cocoQmpSessionForward(s, s->client, line);
}

static void
cocoQmpSessionOnClosed(CocoQmpChannel *ch, const GError *error, gpointer opaque)
{
    CocoQmpSession *s = opaque;
    G_GNUC_UNUSED g_autoptr(CocoQmpSession) hold = cocoQmpSessionRef(s);

    if (error)
        g_printerr("qemu-coco: session %u: %s\n", s->serial, error->message);
    cocoQmpSessionClose(s);
}

static void
cocoQmpSessionOnCancelReply(CocoQmpSession *s, CocoQmpMessage *reply)
{
    if (cocoQmpMessageIsError(reply))
        g_printerr("qemu-coco: 'migrate_cancel' failed: %s\n",
                   NULLSTR(cocoQmpMessageErrorDesc(reply)));
}

/*
 * The agent's session failed after 'migrate' reached QEMU: cancel QEMU's
 * migration through libvirt's monitor connection. QEMU then resumes the
 * source itself and libvirt sees the failed job; the reply goes to nobody.
 */
static void
cocoQmpRelayOnAgentCancel(const char *reason, gpointer opaque)
{
    CocoQmpRelay *relay = opaque;
    GList *l;

    g_printerr("qemu-coco: the host agent cancels the migration: %s\n", reason);
    for (l = relay->sessions; l; l = l->next) {
        CocoQmpSession *s = l->data;

        if (s->closed)
            continue;
        relay->cancels++;
        cocoQmpSessionInject(s, "migrate_cancel", NULL,
                             cocoQmpSessionOnCancelReply);
        return;
    }
    g_printerr(
        "%s\n",
        _("qemu-coco: no monitor connection to cancel the migration on"));
}

static void
cocoQmpSessionOnStopReply(CocoQmpSession *s, CocoQmpMessage *reply)
{
    if (s->relay->stopsUnanswered > 0)
        s->relay->stopsUnanswered--;
    if (cocoQmpMessageIsError(reply))
        g_printerr("qemu-coco: 'stop' failed: %s\n",
                   NULLSTR(cocoQmpMessageErrorDesc(reply)));
}

/* Stop the vCPUs through the first open monitor connection. */
static void
cocoQmpRelayStop(CocoQmpRelay *relay)
{
    GList *l;

    for (l = relay->sessions; l; l = l->next) {
        CocoQmpSession *s = l->data;

        if (s->closed)
            continue;
        relay->stops++;
        relay->stopsUnanswered++;
        relay->stoppedByRelay = TRUE;
        cocoQmpSessionInject(s, "stop", NULL, cocoQmpSessionOnStopReply);
        return;
    }
    g_printerr("%s\n",
               _("qemu-coco: no monitor connection to stop the guest on"));
}

/*
 * The agent's session is frozen (the destination was lost after the start
 * token): the source must not run, but QEMU resumes a source by itself
 * when its migration fails after the switchover. Stop it now and whenever
 * QEMU resumes it, and gate libvirt's 'cont' until the agent releases it.
 */
static void
cocoQmpRelayOnAgentPause(const char *reason, gpointer opaque)
{
    CocoQmpRelay *relay = opaque;

    g_printerr("qemu-coco: the host agent keeps the source paused: %s\n",
               reason);
    g_free(relay->holdPaused);
    relay->holdPaused = g_strdup(reason);
    relay->role = COCO_QMP_ROLE_SOURCE;
    /* Stopped already at pre-switchover: keep it so (RESUME re-stops). */
    if (!relay->paused)
        cocoQmpRelayStop(relay);
}

static void
cocoQmpRelayOnContReply(CocoQmpSession *s, CocoQmpMessage *reply)
{
    if (cocoQmpMessageIsError(reply))
        g_printerr("qemu-coco: QEMU refused 'cont': %s\n",
                   NULLSTR(cocoQmpMessageErrorDesc(reply)));
}

/* The agent lets the source run again (its abort token came back). */
static void
cocoQmpRelayOnAgentResume(const char *reason, gpointer opaque)
{
    CocoQmpRelay *relay = opaque;
    GList *l;

    g_printerr("qemu-coco: the host agent lets the source run: %s\n", reason);
    g_clear_pointer(&relay->holdPaused, g_free);
    relay->role = COCO_QMP_ROLE_NONE;
    /* QEMU had resumed it by itself and the relay stopped it: undo that,
     * also when the 'stop' is still on its way (QEMU runs the 'cont' after
     * it; libvirt, which saw the guest resume, sends none). Otherwise
     * libvirt's own 'cont' decides. */
    if (!relay->stoppedByRelay ||
        (!relay->paused && relay->stopsUnanswered == 0))
        return;
    relay->stoppedByRelay = FALSE;
    for (l = relay->sessions; l; l = l->next) {
        CocoQmpSession *s = l->data;

        if (s->closed)
            continue;
        cocoQmpSessionInject(s, "cont", NULL, cocoQmpRelayOnContReply);
        return;
    }
}

int
cocoQmpRelayAddSession(CocoQmpRelay *relay, int clientFd, int qemuFd,
                       GError **error)
{
    CocoQmpSession *s = g_new0(CocoQmpSession, 1);
    g_autofree char *clientLabel = NULL;
    g_autofree char *qemuLabel = NULL;

    s->refs = 1;
    s->relay = relay;
    s->serial = ++relay->nextSerial;
    g_queue_init(&s->later);
    s->injected = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    s->augment = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    s->fds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                   (GDestroyNotify)cocoQmpFdInfoFree);
    clientLabel = g_strdup_printf("libvirt connection %u", s->serial);
    qemuLabel = g_strdup_printf("QEMU connection %u", s->serial);
    s->client = cocoQmpChannelNew(clientFd, relay->ctx, clientLabel,
                                  cocoQmpSessionOnClientLine,
                                  cocoQmpSessionOnClosed, s);
    s->qemu =
        cocoQmpChannelNew(qemuFd, relay->ctx, qemuLabel,
                          cocoQmpSessionOnQemuLine, cocoQmpSessionOnClosed, s);
    relay->sessions = g_list_append(relay->sessions, s);
    return 0;
}

static int
cocoQmpRelayConnectQemu(const char *path, GError **error)
{
    struct sockaddr_un addr = {0};
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path))
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("QEMU monitor path '%1$s' is too long"), path);
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cocoErrorSetSystem(error, errno,
                                  _("cannot create a socket for '%1$s'"), path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int err = errno;

        close(fd);
        return cocoErrorSetSystem(
            error, err, _("cannot connect to QEMU's monitor at '%1$s'"), path);
    }
    return fd;
}

static gboolean
cocoQmpRelayOnAccept(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoQmpRelay *relay = opaque;
    g_autoptr(GError) err = NULL;
    int client;
    int qemu;

    client = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
            g_printerr("qemu-coco: cannot accept a monitor connection: %s\n",
                       g_strerror(errno));
        return G_SOURCE_CONTINUE;
    }
    qemu = cocoQmpRelayConnectQemu(relay->qemuPath, &err);
    if (qemu < 0) {
        g_printerr("qemu-coco: %s\n", err->message);
        close(client);
        return G_SOURCE_CONTINUE;
    }
    cocoQmpRelayAddSession(relay, client, qemu, NULL);
    /* QEMU runs (its monitor answered): the agent can authenticate the
     * relay now, and clients check that it did before they migrate. */
    if (relay->agent)
        cocoQmpAgentStart(relay->agent);
    return G_SOURCE_CONTINUE;
}

int
cocoQmpRelayListen(CocoQmpRelay *relay, int listenFd, const char *qemuPath,
                   GError **error)
{
    if (relay->listenFd >= 0) {
        close(listenFd);
        return cocoErrorSet(error, COCO_ERROR_INTERNAL,
                            _("the relay already listens on descriptor '%1$d'"),
                            relay->listenFd);
    }
    relay->listenFd = listenFd;
    relay->qemuPath = g_strdup(qemuPath);
    relay->listenSource = g_unix_fd_source_new(listenFd, G_IO_IN);
    g_source_set_callback(relay->listenSource,
                          G_SOURCE_FUNC(cocoQmpRelayOnAccept), relay, NULL);
    g_source_attach(relay->listenSource, relay->ctx);
    return 0;
}

CocoQmpRelay *
cocoQmpRelayNew(GMainContext *ctx, CocoQmpAgent *agent)
{
    CocoQmpRelay *relay = g_new0(CocoQmpRelay, 1);

    relay->ctx =
        ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    relay->agent = agent;
    if (agent) {
        cocoQmpAgentSetCancelFunc(agent, cocoQmpRelayOnAgentCancel, relay);
        cocoQmpAgentSetProgressFunc(agent, cocoQmpRelayOnAgentProgress, relay);
        cocoQmpAgentSetPauseFunc(agent, cocoQmpRelayOnAgentPause, relay);
        cocoQmpAgentSetResumeFunc(agent, cocoQmpRelayOnAgentResume, relay);
    }
    relay->traceFd = -1;
    relay->listenFd = -1;
    relay->downtimeLimit = -1;
    relay->maxBandwidth = -1;
    return relay;
}

void
cocoQmpRelayFree(CocoQmpRelay *relay)
{
    if (!relay)
        return;
    cocoSourceClear(&relay->listenSource);
    COCO_FORCE_CLOSE(relay->listenFd);
    while (relay->sessions)
        cocoQmpSessionClose(relay->sessions->data);
    /* Pending verdicts now find their sessions closed. */
    cocoQmpAgentFree(relay->agent);
    COCO_FORCE_CLOSE(relay->traceFd);
    g_clear_pointer(&relay->ownArgs, json_object_unref);
    g_free(relay->ownError);
    g_free(relay->qemuPath);
    g_free(relay->holdPaused);
    cocoQmpVfioReaderFree(relay->vfioReader);
    g_free(relay->vfioLeak);
    g_clear_pointer(&relay->vfioState, json_object_unref);
    cocoQmpViommuClear(&relay->viommu);
    g_main_context_unref(relay->ctx);
    g_free(relay);
}

/* A leak the VFIO interposer reported: the agent hears of it at once and
 * again with every migration it is asked to start (docs/vfio.rst). */
static void
cocoQmpRelayOnVfioLeak(JsonObject *data, gpointer opaque)
{
    CocoQmpRelay *relay = opaque;

    relay->vfioLeaks++;
    g_free(relay->vfioLeak);
    relay->vfioLeak = cocoQmpVfioReportDescribe(data);
    if (!relay->agent)
        return;
    json_object_set_string_member(data, "reason", relay->vfioLeak);
    cocoQmpAgentNotify(relay->agent, "vfio-leak", data);
}

/* What QEMU holds after a VFIO device came or went: the agent answers a
 * detach's confirmation from it (docs/vfio.rst, "The state report"). */
static void
cocoQmpRelayOnVfioState(JsonObject *data, gpointer opaque)
{
    CocoQmpRelay *relay = opaque;
    g_autoptr(JsonObject) ev = json_object_new();
    JsonObject *vfio;
    JsonArray *names = cocoJsonArray(data, "devices");
    JsonArray *devices;
    guint i;

    g_clear_pointer(&relay->vfioState, json_object_unref);
    relay->vfioState = json_object_ref(data);
    if (!relay->agent)
        return;
    vfio = json_object_new();
    devices = json_array_new();
    /* The report's parser checked each name (cocoqmpvfioreport.c). */
    for (i = 0; names && i < json_array_get_length(names); i++) {
        JsonObject *d = json_object_new();

        json_object_set_string_member(d, "name",
                                      json_array_get_string_element(names, i));
        json_array_add_object_element(devices, d);
    }
    json_object_set_array_member(vfio, "devices", devices);
    json_object_set_int_member(vfio, "open",
                               cocoJsonIntDefault(data, "count", 0));
    json_object_set_int_member(vfio, "spaces",
                               cocoJsonIntDefault(data, "spaces", 0));
    json_object_set_int_member(vfio, "mappings",
                               cocoJsonIntDefault(data, "mappings", 0));
    json_object_set_int_member(vfio, "mapped-bytes",
                               cocoJsonIntDefault(data, "bytes", 0));
    json_object_set_object_member(ev, "vfio", vfio);
    cocoQmpAgentNotify(relay->agent, "vfio-state", ev);
}

static void
cocoQmpRelayOnVfioReport(CocoQmpVfioReportKind kind, JsonObject *data,
                         gpointer opaque)
{
    if (kind == COCO_QMP_VFIO_REPORT_STATE)
        cocoQmpRelayOnVfioState(data, opaque);
    else
        cocoQmpRelayOnVfioLeak(data, opaque);
}

void
cocoQmpRelaySetViommu(CocoQmpRelay *relay, const char *model,
                      unsigned int awBits)
{
    cocoQmpViommuClear(&relay->viommu);
    relay->viommu.model = g_strdup(model);
    relay->viommu.awBits = awBits;
}

void
cocoQmpRelaySetVfioReport(CocoQmpRelay *relay, int fd)
{
    cocoQmpVfioReaderFree(relay->vfioReader);
    relay->vfioReader =
        cocoQmpVfioReaderNew(fd, relay->ctx, cocoQmpRelayOnVfioReport, relay);
}

void
cocoQmpRelaySetTrace(CocoQmpRelay *relay, int fd)
{
    COCO_FORCE_CLOSE(relay->traceFd);
    relay->traceFd = fd;
}

guint
cocoQmpRelayGetSessionCount(CocoQmpRelay *relay)
{
    return g_list_length(relay->sessions);
}

JsonObject *
cocoQmpRelayQueryState(CocoQmpRelay *relay)
{
    JsonObject *o = json_object_new();

    json_object_set_string_member(o, "relay", "qemu-coco");
    json_object_set_string_member(o, "version", PACKAGE_VERSION);
    json_object_set_boolean_member(o, "agent", relay->agent != NULL);
    if (relay->agent) {
        g_autofree char *why = NULL;
        gboolean ready = cocoQmpAgentIsReady(relay->agent, &why);

        json_object_set_boolean_member(o, "agent-ready", ready);
        if (!ready && why)
            json_object_set_string_member(o, "agent-error", why);
    }
    json_object_set_string_member(o, "role",
                                  cocoQmpRoleTypeToString(relay->role));
    if (relay->ignoreSharedKnown)
        json_object_set_boolean_member(o, "x-ignore-shared",
                                       relay->ignoreShared);
    else
        json_object_set_null_member(o, "x-ignore-shared");
    json_object_set_int_member(o, "migrations", relay->migrations);
    json_object_set_int_member(o, "images", relay->images);
    json_object_set_int_member(o, "gates-released", relay->released);
    json_object_set_int_member(o, "gates-refused", relay->refused);
    json_object_set_int_member(o, "cancels", relay->cancels);
    json_object_set_int_member(o, "stops", relay->stops);
    json_object_set_boolean_member(o, "hold-paused", relay->holdPaused != NULL);
    json_object_set_boolean_member(o, "postcopy-requested",
                                   relay->postcopyKept);
    json_object_set_int_member(o, "downtime-limit", relay->downtimeLimit);
    json_object_set_int_member(o, "max-bandwidth", relay->maxBandwidth);
    json_object_set_int_member(o, "sessions", g_list_length(relay->sessions));
    json_object_set_int_member(o, "vfio-leaks", relay->vfioLeaks);
    if (relay->vfioState)
        json_object_set_object_member(o, "vfio-state",
                                      json_object_ref(relay->vfioState));
    {
        JsonObject *pc = json_object_new();

        json_object_set_string_member(pc, "state",
                                      cocoQmpOwnTypeToString(relay->own));
        if (relay->own != COCO_QMP_OWN_NONE) {
            gint64 end = relay->ownForwarded ? relay->ownForwarded
                                             : g_get_monotonic_time();

            json_object_set_int_member(pc, "precopy-ms",
                                       (end - relay->ownStart) / 1000);
            json_object_set_int_member(pc, "passes", (gint64)relay->passes);
        }
        if (relay->progress.valid)
            json_object_set_object_member(
                pc, "progress", cocoQmpProgressToJson(&relay->progress));
        if (relay->ownError)
            json_object_set_string_member(pc, "error", relay->ownError);
        json_object_set_object_member(o, "precopy", pc);
    }
    return o;
}
