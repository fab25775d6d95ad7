/*
 * cocoagentrelay.c: the relay server, virtcocod's unix socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The relays (qemu-coco, with QEMU's dropped privileges) and the local
 * clients (virt-coco) connect here. Every line is parsed by the one
 * definition of the protocol (cocoprotorelay.h) and handled by the table
 * below; nothing is believed until checked:
 *
 *  - a relay speaks for a QEMU only after its hello passed
 *    cocoAgentAuthCheck() (cocoagentauth.h);
 *  - the status, the domains and the peers' views are for root, the
 *    agent's user and the members of status_group; recover is for root
 *    and the agent's user;
 *  - limits: connections per uid (max_relays_per_uid), lines of at most
 *    COCO_RELAY_LINE_MAX bytes before a hello and COCO_RELAY_LINE_MAX_AUTH
 *    after it, an answer queue of at most COCO_RELAY_REPLY_MAX bytes (a
 *    client that does not read is closed), a first request within
 *    handshake_timeout and, for clients, no more than
 *    COCO_RELAY_CLIENT_IDLE_S seconds of silence.
 */

#include "internal.h"
#include "agent/cocoagentauth.h"
#include "agent/cocoagentincoming.h"
#include "agent/cocoagentmigration.h"
#include "agent/cocoagentpeer.h"
#include "agent/cocoagentpriv.h"
#include "agent/cocoagentrelay.h"
#include "agent/cocoagentvfio.h"
#include "proto/cocoprotopeer.h"
#include "qmp/cocoqmpchannel.h"
#include "util/cocoerror.h"
#include "util/cocosource.h"

#include <errno.h>
#include <glib-unix.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define COCO_RELAY_CLIENT_IDLE_S 60
/* The gate 'hostdev': the probe of the host's VFIO groups and the read of
 * the domain's status file answer within this, or the device is refused. */
#define COCO_RELAY_HOSTDEV_TIMEOUT_S 10
/* All connections of all users together. */
#define COCO_RELAY_MAX_CONNECTIONS 4096

typedef struct _CocoAgentRelay CocoAgentRelay;
typedef struct _CocoAgentDomain CocoAgentDomain;

struct _CocoAgentRelay {
    CocoAgentRelayServer *srv;
    guint64 id;
    CocoQmpChannel *ch;
    pid_t peer_pid;
    uid_t peer_uid;
    gid_t peer_gid;
    CocoAgentDomain *dom; /* after an accepted hello */
    GSource *idle; /* deadline of a connection that is not a relay */
    bool counted; /* in per_uid: not (yet) an authenticated relay */
    bool dead;
};

struct _CocoAgentDomain {
    CocoAgentRelayServer *srv;
    CocoAgentDomainInfo info;
    guint64 relay; /* its current relay's id, 0: none */
    int pidfd;
    GSource *pid_src;
    bool incoming; /* the relay announced an incoming migration */
    CocoAgentMigration *mig; /* the current or last migration */
    char *refused; /* why the current job's migration was not started */
    /* The relay's last VFIO state (docs/vfio.rst, "The state report"),
     * answered to "domain" requests: a detach is confirmed from it. */
    bool has_vfio;
    GPtrArray *vfio_devices; /* char *, the open devices QEMU named */
    gint64 vfio_open;
    gint64 vfio_spaces;
    gint64 vfio_mappings;
    gint64 vfio_mapped_bytes;
};

struct _CocoAgentRelayServer {
    CocoAgent *agent;
    int fd;
    GSource *src;
    guint64 next_id;
    GHashTable *relays; /* &id -> CocoAgentRelay */
    GHashTable *per_uid; /* uid -> count */
    GHashTable *domains; /* pid -> CocoAgentDomain */
    GList *dead; /* closed relays, freed from an idle */
    GSource *reap;
    bool status_group_missing; /* logged once */
    gint64 last_limit_log;
};

static void cocoAgentRelayDrop(CocoAgentRelay *relay);

/* Connections that are not authenticated relays count per uid. */
static void
cocoAgentRelayUncount(CocoAgentRelay *relay)
{
    CocoAgentRelayServer *srv = relay->srv;
    guint n;

    if (!relay->counted)
        return;
    relay->counted = false;
    n = GPOINTER_TO_UINT(
        g_hash_table_lookup(srv->per_uid, GUINT_TO_POINTER(relay->peer_uid)));
    if (n <= 1)
        g_hash_table_remove(srv->per_uid, GUINT_TO_POINTER(relay->peer_uid));
    else
        g_hash_table_insert(srv->per_uid, GUINT_TO_POINTER(relay->peer_uid),
                            GUINT_TO_POINTER(n - 1));
}

void
cocoAgentDomainInfoClear(CocoAgentDomainInfo *info)
{
    g_free(info->name);
    g_free(info->uuid);
    g_free(info->ram_path);
    g_free(info->ram_error);
    g_free(info->vfio_leak);
    memset(info, 0, sizeof(*info));
}

void
cocoAgentDomainInfoCopy(CocoAgentDomainInfo *dst,
                        const CocoAgentDomainInfo *src)
{
    dst->pid = src->pid;
    dst->name = g_strdup(src->name);
    dst->uuid = g_strdup(src->uuid);
    dst->ram_path = g_strdup(src->ram_path);
    dst->ram_error = g_strdup(src->ram_error);
    dst->vcpus = src->vcpus;
    dst->vfio_leak = g_strdup(src->vfio_leak);
}

/* ---- sending -------------------------------------------------------------- */

static void
cocoAgentRelaySendLine(CocoAgentRelay *relay, const char *line)
{
    if (relay->dead || !relay->ch || cocoQmpChannelIsClosed(relay->ch))
        return;
    if (cocoQmpChannelQueued(relay->ch) + strlen(line) > COCO_RELAY_REPLY_MAX) {
        cocoAgentLog(relay->srv->agent, NULL, G_LOG_LEVEL_WARNING,
                     "local client pid=%d uid=%u does not read its answers: "
                     "closed",
                     (int)relay->peer_pid, (unsigned int)relay->peer_uid);
        cocoQmpChannelClose(relay->ch);
        cocoAgentRelayDrop(relay);
        return;
    }
    cocoQmpChannelSend(relay->ch, line, strlen(line), NULL, 0);
}

static void
cocoAgentRelaySend(CocoAgentRelay *relay, int type, const void *data)
{
    g_autofree char *line =
        cocoProtoBuildMessage(&cocoRelayReplySchema, type, data);

    cocoAgentRelaySendLine(relay, line);
}

static void
cocoAgentRelayError(CocoAgentRelay *relay, const char *reason)
{
    CocoRelayReason r = {(char *)reason};

    cocoAgentRelaySend(relay, COCO_RELAY_REPLY_ERROR, &r);
}

static void
cocoAgentRelayVerdict(CocoAgentRelay *relay, gint64 id, bool release,
                      const char *reason)
{
    CocoRelayVerdict v = {id, release, release ? NULL : (char *)reason};

    cocoAgentRelaySend(relay, COCO_RELAY_REPLY_VERDICT, &v);
}

/* Refuse and close: the connection is of no use any more. */
static void
cocoAgentRelayRefuse(CocoAgentRelay *relay, const char *reason)
{
    CocoRelayReason r = {(char *)reason};

    cocoAgentLog(relay->srv->agent, NULL, G_LOG_LEVEL_MESSAGE,
                 "relay pid=%d uid=%u refused: %s", (int)relay->peer_pid,
                 (unsigned int)relay->peer_uid, reason);
    cocoAgentRelaySend(relay, COCO_RELAY_REPLY_REFUSED, &r);
    cocoQmpChannelClose(relay->ch);
    cocoAgentRelayDrop(relay);
}

typedef struct {
    CocoAgent *agent;
    guint64 relay;
    char *line;
} CocoAgentRelayLine;

static void
cocoAgentRelayLineFree(gpointer p)
{
    CocoAgentRelayLine *l = p;

    g_free(l->line);
    g_free(l);
}

static gboolean
cocoAgentRelayOnPost(gpointer opaque)
{
    CocoAgentRelayLine *l = opaque;
    CocoAgentRelayServer *srv = cocoAgentRelayServerOf(l->agent);
    CocoAgentRelay *relay =
        srv ? g_hash_table_lookup(srv->relays, &l->relay) : NULL;

    if (relay)
        cocoAgentRelaySendLine(relay, l->line);
    return G_SOURCE_REMOVE;
}

void
cocoAgentRelayPost(CocoAgent *agent, guint64 relay, int type, const void *data)
{
    CocoAgentRelayLine *l = g_new0(CocoAgentRelayLine, 1);

    l->agent = agent;
    l->relay = relay;
    l->line = cocoProtoBuildMessage(&cocoRelayReplySchema, type, data);
    cocoAgentPostMain(agent, cocoAgentRelayOnPost, l, cocoAgentRelayLineFree);
}

/* ---- domains --------------------------------------------------------------- */

static void
cocoAgentDomainFree(gpointer p)
{
    CocoAgentDomain *dom = p;
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, dom->srv->relays);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoAgentRelay *r = v;

        if (r->dom == dom)
            r->dom = NULL;
    }
    if (dom->mig) {
        cocoAgentMigrationPostDomainGone(dom->mig);
        cocoAgentMigrationUnref(dom->mig);
    }
    g_clear_pointer(&dom->vfio_devices, g_ptr_array_unref);
    cocoSourceClear(&dom->pid_src);
    if (dom->pidfd >= 0)
        close(dom->pidfd);
    cocoAgentDomainInfoClear(&dom->info);
    g_free(dom->refused);
    g_free(dom);
}

/* QEMU ended: its migration learns it, the domain is forgotten. */
static gboolean
cocoAgentDomainOnQemuGone(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoAgentDomain *dom = opaque;
    CocoAgentRelayServer *srv = dom->srv;

    cocoAgentLog(srv->agent, NULL, G_LOG_LEVEL_MESSAGE,
                 "domain=%s pid=%d: QEMU ended", dom->info.name,
                 (int)dom->info.pid);
    g_clear_pointer(&dom->pid_src, g_source_unref);
    /* An announced incoming migration that has not started yet. */
    if (dom->incoming && dom->info.uuid)
        cocoAgentIncomingDomainGone(cocoAgentIncomingOf(srv->agent),
                                    dom->info.uuid);
    g_hash_table_remove(srv->domains, GINT_TO_POINTER(dom->info.pid));
    return G_SOURCE_REMOVE;
}

static CocoAgentDomain *
cocoAgentDomainGet(CocoAgentRelayServer *srv, pid_t pid, GError **error)
{
    CocoAgentDomain *dom =
        g_hash_table_lookup(srv->domains, GINT_TO_POINTER(pid));

    if (dom)
        return dom;
    dom = g_new0(CocoAgentDomain, 1);
    dom->srv = srv;
    dom->info.pid = pid;
    dom->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (dom->pidfd < 0) {
        cocoErrorSetSystem(error, errno, _("cannot watch QEMU pid '%1$d'"),
                           (int)pid);
        g_free(dom);
        return NULL;
    }
    dom->pid_src = g_unix_fd_source_new(dom->pidfd, G_IO_IN);
    g_source_set_callback(
        dom->pid_src, (GSourceFunc)(void (*)(void))cocoAgentDomainOnQemuGone,
        dom, NULL);
    g_source_attach(dom->pid_src, cocoAgentContext(srv->agent));
    g_hash_table_insert(srv->domains, GINT_TO_POINTER(pid), dom);
    return dom;
}

static CocoAgentDomain *
cocoAgentDomainByUuid(CocoAgentRelayServer *srv, const char *uuid)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, srv->domains);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoAgentDomain *dom = v;

        if (dom->info.uuid && g_ascii_strcasecmp(dom->info.uuid, uuid) == 0)
            return dom;
    }
    return NULL;
}

/* The domain's migration is now @m (a reference is taken); a final one it
 * replaces is stopped and forgotten. */
static void
cocoAgentDomainSetMigration(CocoAgentDomain *dom, CocoAgentMigration *m)
{
    if (dom->mig) {
        cocoAgentRemoveMigration(dom->srv->agent, dom->mig);
        cocoAgentMigrationUnref(dom->mig);
    }
    dom->mig = cocoAgentMigrationRef(m);
}

bool
cocoAgentRelayServerTakeIncoming(CocoAgentRelayServer *srv, const char *uuid,
                                 CocoAgentDomainInfo *info, guint64 *relay)
{
    CocoAgentDomain *dom = cocoAgentDomainByUuid(srv, uuid);

    if (!dom || !dom->incoming || !dom->relay)
        return false;
    if (dom->mig && !cocoAgentMigrationIsFinal(dom->mig))
        return false;
    dom->incoming = false;
    cocoAgentDomainInfoCopy(info, &dom->info);
    *relay = dom->relay;
    return true;
}

void
cocoAgentRelayServerAttach(CocoAgentRelayServer *srv, pid_t pid,
                           CocoAgentMigration *m)
{
    CocoAgentDomain *dom =
        g_hash_table_lookup(srv->domains, GINT_TO_POINTER(pid));

    if (dom)
        cocoAgentDomainSetMigration(dom, m);
    else
        /* QEMU ended meanwhile. */
        cocoAgentMigrationPostDomainGone(m);
}

guint
cocoAgentRelayServerDomainCount(CocoAgentRelayServer *srv)
{
    return g_hash_table_size(srv->domains);
}

/* ---- the handlers ---------------------------------------------------------- */

typedef void (*CocoAgentRelayHandler)(CocoAgentRelay *relay, void *msg);

static bool
cocoAgentRelayMayRead(CocoAgentRelay *relay)
{
    CocoAgentRelayServer *srv = relay->srv;
    const CocoAgentConfig *cfg = cocoAgentConfig(srv->agent);
    g_autoptr(GError) err = NULL;
    bool missing = false;

    if (cocoAgentAuthCheckStatus(relay->peer_uid, relay->peer_gid, getuid(),
                                 cfg->status_group, &missing, &err) == 0)
        return true;
    if (missing && !srv->status_group_missing) {
        srv->status_group_missing = true;
        cocoAgentLog(srv->agent, NULL, G_LOG_LEVEL_WARNING,
                     "virtcocod: status_group '%s' does not exist: only "
                     "root may read the migration status",
                     cfg->status_group);
    }
    cocoAgentRelayRefuse(relay, err->message);
    return false;
}

static void
cocoAgentRelayOnHello(CocoAgentRelay *relay, void *data)
{
    CocoRelayHello *msg = data;
    CocoAgentRelayServer *srv = relay->srv;
    const CocoAgentConfig *cfg = cocoAgentConfig(srv->agent);
    g_autoptr(GError) err = NULL;
    g_autofree char *ram_path = NULL;
    g_autofree char *ram_error = NULL;
    CocoAgentDomain *dom;
    CocoRelayWelcome welcome = {COCO_RELAY_PROTOCOL_VERSION};

    if (relay->dom) {
        cocoAgentRelayRefuse(relay, _("a second hello on one connection"));
        return;
    }
    if (cocoAgentAuthCheck(cfg, relay->peer_pid, relay->peer_uid,
                           (pid_t)msg->pid, msg->name, msg->uuid, &err) < 0) {
        cocoAgentRelayRefuse(relay, err->message);
        return;
    }
    if (msg->ram && msg->ram->len == 1) {
        CocoRelayRam *r = g_ptr_array_index(msg->ram, 0);

        if (cocoAgentAuthCheckOpenFile((pid_t)msg->pid, r->path, &err) < 0) {
            cocoAgentRelayRefuse(relay, err->message);
            return;
        }
        ram_path = g_strdup(r->path);
    } else if (msg->ram && msg->ram->len > 1) {
        ram_error = g_strdup_printf(
            _("domain '%1$s' has '%2$u' memory-backend-file objects; confidential migration supports exactly one"),
            msg->name, msg->ram->len);
    }
    if (!(dom = cocoAgentDomainGet(srv, (pid_t)msg->pid, &err))) {
        cocoAgentRelayRefuse(relay, err->message);
        return;
    }
    g_free(dom->info.name);
    dom->info.name = g_strdup(msg->name);
    g_free(dom->info.uuid);
    dom->info.uuid = g_strdup(msg->uuid);
    g_free(dom->info.ram_path);
    dom->info.ram_path = g_steal_pointer(&ram_path);
    g_free(dom->info.ram_error);
    dom->info.ram_error = g_steal_pointer(&ram_error);
    dom->info.vcpus = msg->has_vcpus ? (unsigned int)msg->vcpus : 0;
    dom->relay = relay->id;
    relay->dom = dom;
    cocoAgentRelayUncount(relay);
    /* A relay, not a client: no idle deadline, longer lines. */
    cocoSourceClear(&relay->idle);
    cocoQmpChannelSetMaxLine(relay->ch, COCO_RELAY_LINE_MAX_AUTH);
    if (dom->mig)
        cocoAgentMigrationPostRelay(dom->mig, relay->id);
    cocoAgentLog(srv->agent, NULL, G_LOG_LEVEL_MESSAGE,
                 "relay pid=%d: domain=%s uuid=%s qemu=%d ram=%s protocol=%lld",
                 (int)relay->peer_pid, dom->info.name, dom->info.uuid,
                 (int)dom->info.pid, NULLSTR(dom->info.ram_path),
                 msg->has_version ? (long long)msg->version : 1LL);
    cocoAgentRelaySend(relay, COCO_RELAY_REPLY_WELCOME, &welcome);
}

/* Source: libvirt's migrate reached the relay; a new migration starts
 * unless an earlier one of this domain is not final. */
static void
cocoAgentRelayOnMigrate(CocoAgentRelay *relay, const CocoRelayEventData *data)
{
    CocoAgentDomain *dom = relay->dom;
    CocoAgentRelayServer *srv = relay->srv;
    g_autoptr(GError) err = NULL;
    CocoAgentMigration *m;

    g_clear_pointer(&dom->refused, g_free);
    if (dom->mig && !cocoAgentMigrationIsFinal(dom->mig)) {
        dom->refused = g_strdup_printf(
            _("an earlier confidential migration of domain '%1$s' ('%2$s') is not resolved (state '%3$s'); resolve it first (virt-coco status %4$s)"),
            dom->info.name, cocoAgentMigrationGetId(dom->mig),
            cocoPhaseStateTypeToString(cocoAgentMigrationGetState(dom->mig)),
            cocoAgentMigrationGetId(dom->mig));
        cocoAgentLog(srv->agent, NULL, G_LOG_LEVEL_WARNING, "domain=%s: %s",
                     dom->info.name, dom->refused);
        return;
    }
    if (cocoAgentMigrationCount(srv->agent) >=
        cocoAgentConfig(srv->agent)->max_migrations) {
        dom->refused = g_strdup_printf(
            _("this host runs '%1$u' confidential migrations already, its limit (max_migrations)"),
            cocoAgentMigrationCount(srv->agent));
        return;
    }
    if (!(m = cocoAgentMigrationNewSource(srv->agent, &dom->info, relay->id,
                                          data->peer, &err))) {
        dom->refused = g_strdup(err->message);
        return;
    }
    cocoAgentDomainSetMigration(dom, m);
    /* libvirt's parameters set before its migrate. */
    if (data->has_downtime_limit || data->has_max_bandwidth)
        cocoAgentMigrationPostParameters(
            m, data->has_downtime_limit ? data->downtime_limit : -1,
            data->has_max_bandwidth ? data->max_bandwidth : -1);
    cocoAgentMigrationUnref(m);
}

/* The VFIO interposer in the domain's QEMU could not unmap DMA mappings
 * (docs/vfio.rst, "Leak reports"): the domain keeps the report, its later
 * migrations fail with it, and one in progress fails before its start
 * token. */
static void
cocoAgentRelayOnVfioLeak(CocoAgentRelay *relay, const char *reason)
{
    CocoAgentDomain *dom = relay->dom;

    g_free(dom->info.vfio_leak);
    dom->info.vfio_leak = g_strdup(
        reason
            ? reason
            : _("the VFIO interposer reported DMA mappings it could not unmap"));
    cocoAgentLog(relay->srv->agent, NULL, G_LOG_LEVEL_WARNING,
                 "domain=%s: VFIO leak: %s", dom->info.name,
                 dom->info.vfio_leak);
    if (dom->mig && !cocoAgentMigrationIsFinal(dom->mig) &&
        cocoAgentMigrationGetRole(dom->mig) == COCO_FIRMWARE_ROLE_SOURCE)
        cocoAgentMigrationPostVfioLeak(dom->mig, dom->info.vfio_leak);
}

/* The VFIO interposer's state of the domain's QEMU after a device came
 * or went: kept for "domain" requests. */
static void
cocoAgentRelayOnVfioState(CocoAgentRelay *relay, const CocoRelayVfioState *st)
{
    CocoAgentDomain *dom = relay->dom;
    guint i;

    g_clear_pointer(&dom->vfio_devices, g_ptr_array_unref);
    dom->vfio_devices = g_ptr_array_new_with_free_func(g_free);
    for (i = 0; st->devices && i < st->devices->len; i++) {
        const CocoRelayVfioDevice *d = g_ptr_array_index(st->devices, i);

        g_ptr_array_add(dom->vfio_devices, g_strdup(d->name));
    }
    dom->has_vfio = true;
    dom->vfio_open = st->open;
    dom->vfio_spaces = st->spaces;
    dom->vfio_mappings = st->mappings;
    dom->vfio_mapped_bytes = st->mapped_bytes;
    cocoAgentLog(relay->srv->agent, NULL, G_LOG_LEVEL_INFO,
                 "domain=%s VFIO state: %" G_GINT64_FORMAT
                 " device(s) open, %" G_GINT64_FORMAT
                 " address space(s), %" G_GINT64_FORMAT " DMA mapping(s)",
                 dom->info.name, st->open, st->spaces, st->mappings);
}

static void
cocoAgentRelayOnEvent(CocoAgentRelay *relay, void *data)
{
    CocoRelayEvent *msg = data;
    CocoAgentDomain *dom = relay->dom;
    CocoRelayEventData empty = {0};
    const CocoRelayEventData *d = msg->data ? msg->data : &empty;
    bool migration = d->has_job && d->job == COCO_RELAY_JOB_MIGRATION;
    CocoFirmwareRole role = COCO_FIRMWARE_ROLE_SOURCE;
    CocoPhaseEvent ev;

    cocoAgentLog(relay->srv->agent, NULL, G_LOG_LEVEL_DEBUG,
                 "domain=%s relay event=%s role=%s job=%s", dom->info.name,
                 cocoRelayEventKindTypeToString(msg->event),
                 d->has_role ? cocoRelayRoleTypeToString(d->role) : "-",
                 d->has_job ? cocoRelayJobTypeToString(d->job) : "-");
    switch ((CocoRelayEventKind)msg->event) {
    case COCO_RELAY_EVENT_MIGRATE_INCOMING:
        if (!migration)
            return;
        dom->incoming = true;
        cocoAgentIncomingAnnounced(cocoAgentIncomingOf(relay->srv->agent),
                                   dom->info.uuid);
        return;
    case COCO_RELAY_EVENT_MIGRATE:
        if (!migration || !d->has_role || d->role != COCO_RELAY_ROLE_SOURCE)
            return;
        /* The relay repeats a leak whose event this agent may have missed
         * (a restart, a reconnection). */
        if (d->vfio_leak && !dom->info.vfio_leak)
            dom->info.vfio_leak = g_strdup(d->vfio_leak);
        cocoAgentRelayOnMigrate(relay, d);
        return;
    case COCO_RELAY_EVENT_VFIO_LEAK:
        cocoAgentRelayOnVfioLeak(relay, d->reason);
        return;
    case COCO_RELAY_EVENT_VFIO_STATE:
        if (d->vfio)
            cocoAgentRelayOnVfioState(relay, d->vfio);
        return;
    case COCO_RELAY_EVENT_MIGRATE_CANCEL:
        if (dom->mig &&
            cocoAgentMigrationGetRole(dom->mig) == COCO_FIRMWARE_ROLE_SOURCE)
            cocoAgentMigrationPostEvent(dom->mig, COCO_PHASE_EVENT_CANCEL,
                                        NULL);
        return;
    case COCO_RELAY_EVENT_PARAMETERS:
        if (dom->mig &&
            cocoAgentMigrationGetRole(dom->mig) == COCO_FIRMWARE_ROLE_SOURCE &&
            !cocoAgentMigrationIsFinal(dom->mig))
            cocoAgentMigrationPostParameters(
                dom->mig, d->has_downtime_limit ? d->downtime_limit : -1,
                d->has_max_bandwidth ? d->max_bandwidth : -1);
        return;
    case COCO_RELAY_EVENT_RUN_STATE:
        if (dom->mig && d->has_running &&
            cocoAgentMigrationGetRole(dom->mig) == COCO_FIRMWARE_ROLE_SOURCE &&
            !cocoAgentMigrationIsFinal(dom->mig))
            cocoAgentMigrationPostRunState(dom->mig, d->running);
        return;
    case COCO_RELAY_EVENT_MIGRATION:
        if (!dom->mig)
            return;
        role = cocoAgentMigrationGetRole(dom->mig);
        /* The one QMP -> phase table (cocophase.c). */
        ev = cocoPhaseEventFromQmpEvent(role, "MIGRATION", d->status);
        if (ev != COCO_PHASE_EVENT_LAST)
            cocoAgentMigrationPostEvent(dom->mig, ev, NULL);
        return;
    case COCO_RELAY_EVENT_LAST:
    default:
        return;
    }
}

/* The relay's gates and the QMP commands they hold. */
static const char *const cocoAgentRelayGateCommand[] = {
    [COCO_RELAY_GATE_SWITCHOVER] = "migrate-continue",
    [COCO_RELAY_GATE_CONT] = "cont",
    [COCO_RELAY_GATE_MIGRATE] = "migrate",
    [COCO_RELAY_GATE_HOSTDEV] = "device_add",
};
G_STATIC_ASSERT(G_N_ELEMENTS(cocoAgentRelayGateCommand) ==
                COCO_RELAY_GATE_LAST);

/* The gate 'hostdev' (docs/hook.rst, "Hot-plug"): a VFIO device
 * hot-plugged behind a vIOMMU that reaches 2^64-1 (the relay asks only for
 * those). The host kernel's fix is probed and the domain's policy read off
 * the main loop. */
typedef struct {
    CocoAgentRelayServer *srv;
    guint64 relay;
    gint64 id;
    char *pid_dir;
    char *name;
    GSource *deadline; /* main thread: the agent's own */
    bool answered;
    gint refs; /* the task's and the deadline's */
} CocoAgentRelayHostdevCall;

static void
cocoAgentRelayHostdevCallUnref(gpointer p)
{
    CocoAgentRelayHostdevCall *c = p;

    if (!g_atomic_int_dec_and_test(&c->refs))
        return;
    g_free(c->pid_dir);
    g_free(c->name);
    g_free(c);
}

/* The verdict, once: from the probe or from the deadline. */
static void
cocoAgentRelayHostdevAnswer(CocoAgentRelayHostdevCall *c, bool ok,
                            const char *reason)
{
    CocoAgentRelay *relay;

    if (c->answered)
        return;
    c->answered = true;
    cocoSourceClear(&c->deadline);
    cocoAgentLog(c->srv->agent, NULL, G_LOG_LEVEL_MESSAGE,
                 "domain=%s gate=hostdev: %s", c->name,
                 ok ? "released" : reason);
    if ((relay = g_hash_table_lookup(c->srv->relays, &c->relay)))
        cocoAgentRelayVerdict(relay, c->id, ok, reason);
}

static gboolean
cocoAgentRelayHostdevOnDeadline(gpointer opaque)
{
    CocoAgentRelayHostdevCall *c = opaque;
    g_autofree char *reason = g_strdup_printf(
        _("the host's VFIO probe did not answer within '%1$u' seconds"),
        COCO_RELAY_HOSTDEV_TIMEOUT_S);

    g_clear_pointer(&c->deadline, g_source_unref);
    cocoAgentRelayHostdevAnswer(c, false, reason);
    return G_SOURCE_REMOVE;
}

static void
cocoAgentRelayHostdevThread(GTask *task, gpointer source, gpointer data,
                            GCancellable *cancel)
{
    CocoAgentRelayHostdevCall *c = data;
    const char *devroot = g_getenv("LIBVIRT_COCO_AGENT_DEVROOT");
    GError *err = NULL;

    if (cocoAgentVfioCheckHotplug(c->pid_dir, c->name,
                                  devroot && *devroot ? devroot : "/dev",
                                  &err) < 0)
        g_task_return_error(task, err);
    else
        g_task_return_boolean(task, TRUE);
}

static void
cocoAgentRelayHostdevDone(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    CocoAgentRelayHostdevCall *c = g_task_get_task_data(G_TASK(res));
    g_autoptr(GError) err = NULL;
    bool ok = g_task_propagate_boolean(G_TASK(res), &err);

    cocoAgentRelayHostdevAnswer(c, ok, ok ? NULL : err->message);
}

static void
cocoAgentRelayOnHostdev(CocoAgentRelay *relay, gint64 id)
{
    CocoAgentRelayHostdevCall *c = g_new0(CocoAgentRelayHostdevCall, 1);
    g_autoptr(GTask) task = NULL;

    c->srv = relay->srv;
    c->relay = relay->id;
    c->id = id;
    c->pid_dir = g_strdup(cocoAgentConfig(relay->srv->agent)->pid_dir);
    c->name = g_strdup(relay->dom->info.name);
    c->refs = 2;
    c->deadline = g_timeout_source_new_seconds(COCO_RELAY_HOSTDEV_TIMEOUT_S);
    g_source_set_callback(c->deadline, cocoAgentRelayHostdevOnDeadline, c,
                          cocoAgentRelayHostdevCallUnref);
    g_source_attach(c->deadline, cocoAgentContext(relay->srv->agent));
    task = g_task_new(NULL, NULL, cocoAgentRelayHostdevDone, NULL);
    g_task_set_task_data(task, c, cocoAgentRelayHostdevCallUnref);
    g_task_run_in_thread(task, cocoAgentRelayHostdevThread);
}

static void
cocoAgentRelayOnGate(CocoAgentRelay *relay, void *data)
{
    CocoRelayGateReq *msg = data;
    CocoAgentDomain *dom = relay->dom;
    CocoFirmwareRole role = COCO_FIRMWARE_ROLE_SOURCE;
    CocoPhaseEvent ev;

    if (msg->gate == COCO_RELAY_GATE_HOSTDEV) {
        cocoAgentRelayOnHostdev(relay, msg->id);
        return;
    }

    if (msg->has_role && msg->role == COCO_RELAY_ROLE_DESTINATION)
        role = COCO_FIRMWARE_ROLE_DESTINATION;
    if (dom->mig)
        role = cocoAgentMigrationGetRole(dom->mig);
    ev = cocoPhaseEventFromQmpCommand(role,
                                      cocoAgentRelayGateCommand[msg->gate]);
    if (ev == COCO_PHASE_EVENT_LAST ||
        cocoPhaseEventGate(ev) == COCO_PHASE_GATE_LAST) {
        g_autofree char *reason =
            g_strdup_printf(_("the host agent does not gate '%1$s' on a %2$s"),
                            cocoRelayGateTypeToString(msg->gate),
                            cocoFirmwareRoleTypeToString(role));

        cocoAgentRelayVerdict(relay, msg->id, false, reason);
        return;
    }
    if (ev == COCO_PHASE_EVENT_MIGRATE && dom->refused) {
        cocoAgentRelayVerdict(relay, msg->id, false, dom->refused);
        return;
    }
    if (!dom->mig) {
        g_autoptr(JsonObject) rec =
            ev == COCO_PHASE_EVENT_CONT && !dom->incoming && dom->info.uuid
                ? cocoAgentRecordsFindNew(cocoAgentRecords(relay->srv->agent),
                                          dom->info.uuid, "source", NULL)
                : NULL;

        if (rec && cocoAgentRecordAwaitsRecovery(rec)) {
            g_autofree char *reason = g_strdup_printf(
                _("the host agent stopped during migration '%1$s' after the start token left (state '%2$s'); the guest stays paused until the destination tells its fate: run 'virt-coco recover %1$s'"),
                cocoJsonStringDefault(rec, "id", "?"),
                cocoJsonStringDefault(rec, "interrupted_in", "?"));

            cocoAgentRelayVerdict(relay, msg->id, false, reason);
        } else if (ev == COCO_PHASE_EVENT_CONT && !dom->incoming) {
            cocoAgentRelayVerdict(relay, msg->id, true, NULL);
        } else {
            g_autofree char *reason = g_strdup_printf(
                _("no confidential migration of domain '%1$s' is in progress on this host; its guest memory did not move"),
                dom->info.name);

            cocoAgentRelayVerdict(relay, msg->id, false, reason);
        }
        return;
    }
    cocoAgentMigrationPostGate(dom->mig, relay->id, ev, msg->id);
}

static void
cocoAgentRelayOnStatus(CocoAgentRelay *relay, void *data)
{
    g_autoptr(JsonArray) arr = NULL;
    CocoRelayStatusReply r = {0};

    if (!cocoAgentRelayMayRead(relay))
        return;
    arr = cocoAgentRecordsList(cocoAgentRecords(relay->srv->agent));
    r.migrations = arr;
    cocoAgentRelaySend(relay, COCO_RELAY_REPLY_STATUS, &r);
}

static void
cocoAgentRelayOnProbe(CocoAgentRelay *relay, void *data)
{
    g_autoptr(JsonObject) probe = cocoAgentProbeObject(relay->srv->agent);
    g_autofree char *text = NULL;
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

    /* The probe object is built for both protocols: send it as is. */
    json_object_set_string_member(probe, "type", "probe");
    json_node_set_object(node, probe);
    text = json_to_string(node, FALSE);
    cocoAgentRelaySendLine(relay, text);
    cocoAgentRelaySendLine(relay, "\n");
}

static void
cocoAgentRelayOnDomain(CocoAgentRelay *relay, void *data)
{
    CocoRelayDomainReq *msg = data;
    CocoAgentDomain *dom;
    CocoRelayDomainReply r = {0};
    CocoRelayVfioState vfio = {0};
    g_autoptr(GPtrArray) devices = NULL;
    g_autofree CocoRelayVfioDevice *names = NULL;

    if (!cocoAgentRelayMayRead(relay))
        return;
    dom = cocoAgentDomainByUuid(relay->srv, msg->uuid);
    r.uuid = msg->uuid;
    if (dom) {
        r.name = dom->info.name;
        r.relay = dom->relay != 0;
        r.qemu_pid = dom->info.pid;
        r.has_qemu_pid = true;
        if (dom->mig) {
            r.migration = (char *)cocoAgentMigrationGetId(dom->mig);
            r.state = (char *)cocoPhaseStateTypeToString(
                cocoAgentMigrationGetState(dom->mig));
        }
        r.vfio_leak = dom->info.vfio_leak;
    }
    if (dom && dom->has_vfio) {
        guint i;

        devices = g_ptr_array_new();
        names = g_new0(CocoRelayVfioDevice, dom->vfio_devices->len + 1);
        for (i = 0; i < dom->vfio_devices->len; i++) {
            names[i].name = g_ptr_array_index(dom->vfio_devices, i);
            g_ptr_array_add(devices, &names[i]);
        }
        vfio.devices = devices;
        vfio.open = dom->vfio_open;
        vfio.spaces = dom->vfio_spaces;
        vfio.mappings = dom->vfio_mappings;
        vfio.mapped_bytes = dom->vfio_mapped_bytes;
        r.vfio = &vfio;
    }
    cocoAgentRelaySend(relay, COCO_RELAY_REPLY_DOMAIN, &r);
}

/* A request to a peer agent runs on a thread of its own (TLS, deadlines);
 * the answer goes to the client if it is still connected. */
typedef struct {
    CocoAgentRelayServer *srv;
    guint64 relay;
    int type; /* COCO_RELAY_REPLY_PEER_PROBE, _PEER_STATUS or _RECOVER */
    char *host;
    CocoPeerHello hello;
    char *recover; /* _RECOVER: the interrupted source record's id */
} CocoAgentRelayPeerCall;

static void
cocoAgentRelayPeerCallFree(gpointer p)
{
    CocoAgentRelayPeerCall *c = p;

    g_free(c->host);
    g_free(c->hello.id);
    g_free(c->recover);
    g_free(c);
}

static void
cocoAgentRelayPeerThread(GTask *task, gpointer source, gpointer data,
                         GCancellable *cancel)
{
    CocoAgentRelayPeerCall *c = data;
    CocoAgent *agent = c->srv->agent;
    const CocoAgentConfig *cfg = cocoAgentConfig(agent);
    g_autofree char *host = NULL;
    GError *err = NULL;
    JsonObject *obj;
    size_t len = strlen(c->host);

    /* A host name or address, no port: "[v6]" may come bracketed. */
    if (len > 2 && c->host[0] == '[' && c->host[len - 1] == ']')
        host = g_strndup(c->host + 1, len - 2);
    else
        host = g_strdup(c->host);
    obj = cocoAgentPeerRequest(
        agent, host,
        cfg->peer_port ? cfg->peer_port
                       : cocoAgentIncomingGetPort(cocoAgentIncomingOf(agent)),
        &c->hello, &err);
    if (obj)
        g_task_return_pointer(task, obj, (GDestroyNotify)json_object_unref);
    else
        g_task_return_error(task, err);
}

/* A new top-level object with @rec's members (the records' own object is
 * shared with their readers: never changed in place). */
static JsonObject *
cocoAgentRelayRecordCopy(JsonObject *rec)
{
    JsonObject *copy = json_object_new();
    g_autoptr(GList) names = json_object_get_members(rec);
    GList *l;

    for (l = names; l; l = l->next)
        json_object_set_member(copy, l->data,
                               json_object_dup_member(rec, l->data));
    return copy;
}

/* The relay of the running domain of UUID @uuid on this host, or 0. */
static guint64
cocoAgentRelayOfUuid(CocoAgentRelayServer *srv, const char *uuid)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, srv->domains);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoAgentDomain *dom = v;

        if (dom->relay && dom->info.uuid && uuid &&
            g_ascii_strcasecmp(dom->info.uuid, uuid) == 0)
            return dom->relay;
    }
    return 0;
}

/*
 * The destination's answer about a source record interrupted after its
 * start token. The destination's record decides: committed (or finished)
 * means it owns the guest; aborted, failed, interrupted before its commit,
 * or no record at all mean it can never run it, so the guest may run here
 * again: the relay lets it run, the record says so. Anything else (a
 * destination still in its migration) changes nothing yet.
 */
static void
cocoAgentRelayRecoverDone(CocoAgentRelayPeerCall *c, CocoAgentRelay *relay,
                          JsonObject *answer, const GError *err)
{
    CocoAgent *agent = c->srv->agent;
    g_autoptr(JsonObject) rec =
        cocoAgentRecordsGet(cocoAgentRecords(agent), c->recover);
    JsonObject *peer = answer ? cocoJsonObject(answer, "record") : NULL;
    CocoPhaseState pst = COCO_PHASE_STATE_LAST;
    CocoRelayRecoverReply r = {0};
    g_autofree char *msg = NULL;
    const char *state = "interrupted";
    guint64 to = 0;

    if (!rec)
        return;
    if (peer) {
        pst = cocoPhaseStateParse(cocoJsonString(peer, "state"));
        if (pst == COCO_PHASE_STATE_INTERRUPTED)
            pst = cocoPhaseStateParse(cocoJsonString(peer, "interrupted_in"));
    }
    if (!answer) {
        msg = g_strdup_printf(
            _("the peer host '%1$s' is still out of reach; the source stays paused: %2$s"),
            c->host, err ? err->message : "");
    } else if (pst == COCO_PHASE_STATE_COMMITTED ||
               pst == COCO_PHASE_STATE_FINISHED) {
        state = "committed";
        msg = g_strdup(_(
            "the destination committed the migration and owns the guest: destroy the source"));
    } else if (!peer ||
               cocoPhaseStateIsFinal(COCO_FIRMWARE_ROLE_DESTINATION, pst)) {
        g_autoptr(GError) werr = NULL;
        JsonObject *copy = cocoAgentRelayRecordCopy(rec);

        state = "aborted";
        msg = g_strdup_printf(
            _("the destination host '%1$s' did not commit the migration (its record: '%2$s'): the guest runs on this host again"),
            c->host,
            peer ? cocoJsonStringDefault(peer, "state", "?") : _("none"));
        json_object_set_string_member(copy, "recovered", msg);
        json_object_set_boolean_member(copy, "may_run", true);
        if (cocoAgentRecordsPut(cocoAgentRecords(agent), c->recover, copy,
                                &werr) < 0)
            cocoAgentLog(agent, NULL, G_LOG_LEVEL_CRITICAL, "%s",
                         werr->message);
        if ((to = cocoAgentRelayOfUuid(c->srv, cocoJsonString(rec, "uuid")))) {
            CocoRelayReason why = {msg};

            cocoAgentRelayPost(agent, to, COCO_RELAY_REPLY_RESUME, &why);
        }
    } else {
        msg = g_strdup_printf(
            _("the destination host '%1$s' is still in state '%2$s' of this migration; the source stays paused: try again"),
            c->host, cocoPhaseStateTypeToString(pst));
    }
    cocoAgentLog(agent, NULL, G_LOG_LEVEL_MESSAGE, "recover %s: %s", c->recover,
                 msg);
    if (!relay)
        return;
    r.id = c->recover;
    r.state = (char *)state;
    r.message = msg;
    cocoAgentRelaySend(relay, COCO_RELAY_REPLY_RECOVER, &r);
}

static void
cocoAgentRelayPeerDone(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    CocoAgentRelayPeerCall *c = g_task_get_task_data(G_TASK(res));
    CocoAgentRelay *relay = g_hash_table_lookup(c->srv->relays, &c->relay);
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonObject) answer = g_task_propagate_pointer(G_TASK(res), &err);

    if (c->type == COCO_RELAY_REPLY_RECOVER) {
        cocoAgentRelayRecoverDone(c, relay, answer, err);
        return;
    }
    if (!relay)
        return;
    if (!answer) {
        cocoAgentRelayError(relay, err->message);
        return;
    }
    if (c->type == COCO_RELAY_REPLY_PEER_PROBE) {
        CocoRelayPeerProbeReply r = {c->host, answer};

        cocoAgentRelaySend(relay, c->type, &r);
    } else {
        CocoRelayPeerStatusReply r = {c->host,
                                      cocoJsonObject(answer, "record")};

        cocoAgentRelaySend(relay, c->type, &r);
    }
}

static void
cocoAgentRelayPeerCall(CocoAgentRelay *relay, CocoAgentRelayPeerCall *c)
{
    g_autoptr(GTask) task = NULL;

    c->srv = relay->srv;
    c->relay = relay->id;
    c->hello.protocol = COCO_PEER_PROTOCOL_VERSION;
    task = g_task_new(NULL, NULL, cocoAgentRelayPeerDone, NULL);
    g_task_set_task_data(task, c, cocoAgentRelayPeerCallFree);
    g_task_run_in_thread(task, cocoAgentRelayPeerThread);
}

static void
cocoAgentRelayOnPeerProbe(CocoAgentRelay *relay, void *data)
{
    CocoRelayPeerProbeReq *msg = data;
    CocoAgentRelayPeerCall *c;

    if (!cocoAgentRelayMayRead(relay))
        return;
    c = g_new0(CocoAgentRelayPeerCall, 1);
    c->type = COCO_RELAY_REPLY_PEER_PROBE;
    c->host = g_strdup(msg->host);
    c->hello.kind = COCO_PEER_KIND_PROBE;
    cocoAgentRelayPeerCall(relay, c);
}

static void
cocoAgentRelayOnPeerStatus(CocoAgentRelay *relay, void *data)
{
    CocoRelayPeerStatusReq *msg = data;
    CocoAgentRelayPeerCall *c;

    if (!cocoAgentRelayMayRead(relay))
        return;
    if (!msg->id && !msg->has_session) {
        cocoAgentRelayError(
            relay, _("a peer-status request needs an id or a session"));
        return;
    }
    c = g_new0(CocoAgentRelayPeerCall, 1);
    c->type = COCO_RELAY_REPLY_PEER_STATUS;
    c->host = g_strdup(msg->host);
    c->hello.kind = COCO_PEER_KIND_STATUS;
    c->hello.id = g_strdup(msg->id);
    c->hello.session = msg->session;
    c->hello.has_session = msg->has_session;
    cocoAgentRelayPeerCall(relay, c);
}

/* Recover a source record interrupted after its start token: ask the
 * destination's agent for its record of the session. */
static void
cocoAgentRelayRecoverInterrupted(CocoAgentRelay *relay, const char *id)
{
    CocoAgent *agent = relay->srv->agent;
    g_autoptr(JsonObject) rec =
        cocoAgentRecordsGet(cocoAgentRecords(agent), id);
    g_autoptr(GError) err = NULL;
    CocoAgentRelayPeerCall *c;
    g_autofree char *host = NULL;
    const char *session = rec ? cocoJsonString(rec, "session") : NULL;
    char *end = NULL;
    guint64 sid = session ? g_ascii_strtoull(session, &end, 16) : 0;

    if (!rec || !cocoAgentRecordAwaitsRecovery(rec) ||
        !cocoAgentRelayOfUuid(relay->srv, cocoJsonString(rec, "uuid"))) {
        g_autofree char *reason = g_strdup_printf(
            _("no migration '%1$s' with a running QEMU on this host to recover"),
            id);

        cocoAgentRelayError(relay, reason);
        return;
    }
    if (!end || *end || strlen(session) != 16 ||
        cocoPeerParseHost(cocoJsonString(rec, "peer"), &host, &err) < 0) {
        g_autofree char *reason = g_strdup_printf(
            _("the record of migration '%1$s' names no peer host or session to ask"),
            id);

        cocoAgentRelayError(relay, reason);
        return;
    }
    c = g_new0(CocoAgentRelayPeerCall, 1);
    c->type = COCO_RELAY_REPLY_RECOVER;
    c->host = g_steal_pointer(&host);
    c->recover = g_strdup(id);
    c->hello.kind = COCO_PEER_KIND_STATUS;
    c->hello.session = sid;
    c->hello.has_session = true;
    cocoAgentRelayPeerCall(relay, c);
}

static void
cocoAgentRelayOnRecover(CocoAgentRelay *relay, void *data)
{
    CocoRelayRecoverReq *msg = data;
    CocoAgentMigration *m = NULL;
    GHashTableIter it;
    gpointer v;

    /* Recovering changes where a guest runs: root and the agent's user. */
    if (relay->peer_uid != 0 && relay->peer_uid != getuid()) {
        g_autofree char *reason = g_strdup_printf(
            _("uid '%1$u' may not recover a migration: only root may"),
            (unsigned int)relay->peer_uid);

        cocoAgentRelayRefuse(relay, reason);
        return;
    }
    g_hash_table_iter_init(&it, relay->srv->domains);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        CocoAgentDomain *dom = v;

        if (dom->mig && STREQ(cocoAgentMigrationGetId(dom->mig), msg->id))
            m = dom->mig;
    }
    if (!m) {
        cocoAgentRelayRecoverInterrupted(relay, msg->id);
        return;
    }
    cocoAgentMigrationPostRecover(m, relay->id);
}

typedef struct {
    CocoAgentRelayHandler handler;
    bool needs_hello; /* only an authenticated relay may send it */
} CocoAgentRelayMethod;

static const CocoAgentRelayMethod cocoAgentRelayMethods[] = {
    [COCO_RELAY_MSG_HELLO] = {cocoAgentRelayOnHello, false},
    [COCO_RELAY_MSG_EVENT] = {cocoAgentRelayOnEvent, true},
    [COCO_RELAY_MSG_GATE] = {cocoAgentRelayOnGate, true},
    [COCO_RELAY_MSG_STATUS] = {cocoAgentRelayOnStatus, false},
    [COCO_RELAY_MSG_PROBE] = {cocoAgentRelayOnProbe, false},
    [COCO_RELAY_MSG_DOMAIN] = {cocoAgentRelayOnDomain, false},
    [COCO_RELAY_MSG_PEER_PROBE] = {cocoAgentRelayOnPeerProbe, false},
    [COCO_RELAY_MSG_PEER_STATUS] = {cocoAgentRelayOnPeerStatus, false},
    [COCO_RELAY_MSG_RECOVER] = {cocoAgentRelayOnRecover, false},
};
G_STATIC_ASSERT(G_N_ELEMENTS(cocoAgentRelayMethods) == COCO_RELAY_MSG_LAST);

static gboolean
cocoAgentRelayOnIdle(gpointer opaque)
{
    CocoAgentRelay *relay = opaque;

    g_clear_pointer(&relay->idle, g_source_unref);
    cocoAgentLog(relay->srv->agent, NULL, G_LOG_LEVEL_DEBUG,
                 "local client pid=%d uid=%u idle: closed",
                 (int)relay->peer_pid, (unsigned int)relay->peer_uid);
    cocoQmpChannelClose(relay->ch);
    cocoAgentRelayDrop(relay);
    return G_SOURCE_REMOVE;
}

static void
cocoAgentRelayArmIdle(CocoAgentRelay *relay, guint seconds)
{
    cocoSourceClear(&relay->idle);
    relay->idle = g_timeout_source_new_seconds(seconds);
    g_source_set_callback(relay->idle, cocoAgentRelayOnIdle, relay, NULL);
    g_source_attach(relay->idle, cocoAgentContext(relay->srv->agent));
}

static void
cocoAgentRelayOnLine(CocoQmpChannel *ch, CocoQmpLine *line, gpointer opaque)
{
    CocoAgentRelay *relay = opaque;
    g_autoptr(CocoQmpLine) l = line;
    g_autoptr(GError) err = NULL;
    void *msg = NULL;
    int type = 0;

    if (relay->dead)
        return;
    if (cocoProtoParseMessage(&cocoRelayRequestSchema, l->data, l->len, &type,
                              &msg, &err) < 0) {
        /* A relay's line we cannot read fails closed: say why, keep
         * serving it (its next gate is answered). */
        cocoAgentLog(relay->srv->agent, NULL, G_LOG_LEVEL_MESSAGE,
                     "relay pid=%d: %s", (int)relay->peer_pid, err->message);
        cocoAgentRelayError(relay, err->message);
        return;
    }
    if (cocoAgentRelayMethods[type].needs_hello && !relay->dom) {
        if (type == COCO_RELAY_MSG_GATE)
            cocoAgentRelayVerdict(relay, ((CocoRelayGateReq *)msg)->id, false,
                                  _("the relay has not identified its QEMU"));
        else
            cocoAgentRelayError(relay,
                                _("the relay has not identified its QEMU"));
    } else {
        if (!relay->dom)
            cocoAgentRelayArmIdle(relay, COCO_RELAY_CLIENT_IDLE_S);
        cocoAgentRelayMethods[type].handler(relay, msg);
    }
    cocoProtoMessageFree(&cocoRelayRequestSchema, type, msg);
}

/* ---- connections ----------------------------------------------------------- */

static void
cocoAgentRelayFree(CocoAgentRelay *relay)
{
    cocoSourceClear(&relay->idle);
    g_clear_pointer(&relay->ch, cocoQmpChannelUnref);
    g_free(relay);
}

static gboolean
cocoAgentRelayReap(gpointer opaque)
{
    CocoAgentRelayServer *srv = opaque;

    g_list_free_full(g_steal_pointer(&srv->dead),
                     (GDestroyNotify)cocoAgentRelayFree);
    g_clear_pointer(&srv->reap, g_source_unref);
    return G_SOURCE_REMOVE;
}

/* Forget the relay (freed from an idle: the channel may be inside its own
 * callback). Its domain's migration forgets what it held. */
static void
cocoAgentRelayDrop(CocoAgentRelay *relay)
{
    CocoAgentRelayServer *srv = relay->srv;

    if (relay->dead)
        return;
    relay->dead = true;
    if (relay->dom && relay->dom->relay == relay->id) {
        relay->dom->relay = 0;
        if (relay->dom->mig)
            cocoAgentMigrationPostRelay(relay->dom->mig, 0);
    }
    g_hash_table_remove(srv->relays, &relay->id);
    cocoAgentRelayUncount(relay);
    srv->dead = g_list_prepend(srv->dead, relay);
    if (!srv->reap) {
        srv->reap = g_idle_source_new();
        g_source_set_callback(srv->reap, cocoAgentRelayReap, srv, NULL);
        g_source_attach(srv->reap, cocoAgentContext(srv->agent));
    }
}

static void
cocoAgentRelayOnClosed(CocoQmpChannel *ch, const GError *error, gpointer opaque)
{
    CocoAgentRelay *relay = opaque;

    if (error && relay->dom)
        cocoAgentLog(relay->srv->agent, NULL, G_LOG_LEVEL_MESSAGE,
                     "relay pid=%d of domain %s: %s", (int)relay->peer_pid,
                     relay->dom->info.name, error->message);
    cocoAgentRelayDrop(relay);
}

static gboolean
cocoAgentRelayServerOnAccept(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoAgentRelayServer *srv = opaque;
    const CocoAgentConfig *cfg = cocoAgentConfig(srv->agent);

    for (;;) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        CocoAgentRelay *relay;
        guint n;
        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (cfd < 0)
            break;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
            close(cfd);
            continue;
        }
        n = GPOINTER_TO_UINT(
            g_hash_table_lookup(srv->per_uid, GUINT_TO_POINTER(cred.uid)));
        if (n >= cfg->max_relays_per_uid ||
            g_hash_table_size(srv->relays) >= COCO_RELAY_MAX_CONNECTIONS) {
            gint64 now = g_get_monotonic_time();

            close(cfd);
            if (now - srv->last_limit_log > 10 * G_USEC_PER_SEC) {
                srv->last_limit_log = now;
                cocoAgentLog(srv->agent, NULL, G_LOG_LEVEL_WARNING,
                             "relay socket: connection of uid %u refused: it "
                             "has %u unidentified open (max_relays_per_uid %u)",
                             (unsigned int)cred.uid, n,
                             cfg->max_relays_per_uid);
            }
            continue;
        }
        relay = g_new0(CocoAgentRelay, 1);
        relay->srv = srv;
        relay->id = ++srv->next_id;
        relay->peer_pid = cred.pid;
        relay->peer_uid = cred.uid;
        relay->peer_gid = cred.gid;
        relay->counted = true;
        g_hash_table_insert(srv->relays, &relay->id, relay);
        g_hash_table_insert(srv->per_uid, GUINT_TO_POINTER(cred.uid),
                            GUINT_TO_POINTER(n + 1));
        relay->ch = cocoQmpChannelNew(cfd, cocoAgentContext(srv->agent),
                                      "relay", cocoAgentRelayOnLine,
                                      cocoAgentRelayOnClosed, relay);
        cocoQmpChannelSetMaxLine(relay->ch, COCO_RELAY_LINE_MAX);
        /* The first request must come soon. */
        cocoAgentRelayArmIdle(relay, cfg->tls.handshake_timeout);
    }
    return G_SOURCE_CONTINUE;
}

/* The socket path may name a stale socket of an earlier agent, never a
 * file of another kind, and never a live agent's socket. */
static int
cocoAgentRelayServerClaimPath(const char *path, GError **error)
{
    struct sockaddr_un addr = {0};
    struct stat st;
    int fd;
    int rc;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        return cocoErrorSetSystem(error, errno, _("cannot stat '%1$s'"), path);
    }
    if (!S_ISSOCK(st.st_mode))
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the socket path '%1$s' names an existing file that is not a socket; refusing to replace it"),
            path);
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return cocoErrorSetSystem(error, errno, "%s",
                                  _("cannot create the relay socket"));
    rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
    close(fd);
    if (rc == 0)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("another agent serves the socket '%1$s' already"),
                            path);
    if (unlink(path) < 0 && errno != ENOENT)
        return cocoErrorSetSystem(error, errno, _("cannot remove '%1$s'"),
                                  path);
    return 0;
}

CocoAgentRelayServer *
cocoAgentRelayServerNew(CocoAgent *agent, GError **error)
{
    const CocoAgentConfig *cfg = cocoAgentConfig(agent);
    const char *path = cfg->socket_path;
    g_autofree char *dir = g_path_get_dirname(path);
    struct sockaddr_un addr = {0};
    CocoAgentRelayServer *srv = g_new0(CocoAgentRelayServer, 1);

    srv->agent = agent;
    srv->fd = -1;
    srv->relays = g_hash_table_new(g_int64_hash, g_int64_equal);
    srv->per_uid = g_hash_table_new(NULL, NULL);
    srv->domains = g_hash_table_new_full(NULL, NULL, NULL, cocoAgentDomainFree);
    if (strlen(path) >= sizeof(addr.sun_path)) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("socket path '%1$s' is too long"), path);
        goto error;
    }
    if (g_mkdir_with_parents(dir, 0755) < 0) {
        cocoErrorSetSystem(error, errno, _("cannot create directory '%1$s'"),
                           dir);
        goto error;
    }
    if (cocoAgentRelayServerClaimPath(path, error) < 0)
        goto error;
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (srv->fd < 0) {
        cocoErrorSetSystem(error, errno, "%s",
                           _("cannot create the relay socket"));
        goto error;
    }
    if (bind(srv->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        cocoErrorSetSystem(error, errno, _("cannot bind '%1$s'"), path);
        goto error;
    }
    /* Relays run with QEMU's dropped privileges: SO_PEERCRED and
     * cocoAgentAuthCheck() decide who may do what. */
    if (chmod(path, 0666) < 0) {
        cocoErrorSetSystem(error, errno, _("cannot chmod '%1$s'"), path);
        goto error;
    }
    if (listen(srv->fd, 256) < 0) {
        cocoErrorSetSystem(error, errno, _("cannot listen on '%1$s'"), path);
        goto error;
    }
    srv->src = g_unix_fd_source_new(srv->fd, G_IO_IN);
    g_source_set_callback(
        srv->src, (GSourceFunc)(void (*)(void))cocoAgentRelayServerOnAccept,
        srv, NULL);
    g_source_attach(srv->src, cocoAgentContext(agent));
    return srv;

error:
    cocoAgentRelayServerFree(srv);
    return NULL;
}

void
cocoAgentRelayServerFree(CocoAgentRelayServer *srv)
{
    g_autoptr(GList) relays = NULL;
    GList *l;

    if (!srv)
        return;
    cocoSourceClear(&srv->src);
    if (srv->fd >= 0) {
        close(srv->fd);
        unlink(cocoAgentConfig(srv->agent)->socket_path);
    }
    relays = g_hash_table_get_values(srv->relays);
    for (l = relays; l; l = l->next) {
        CocoAgentRelay *relay = l->data;

        cocoQmpChannelClose(relay->ch);
        cocoAgentRelayDrop(relay);
    }
    g_hash_table_unref(srv->domains);
    cocoSourceClear(&srv->reap);
    g_list_free_full(g_steal_pointer(&srv->dead),
                     (GDestroyNotify)cocoAgentRelayFree);
    g_hash_table_unref(srv->relays);
    g_hash_table_unref(srv->per_uid);
    g_free(srv);
}

guint
cocoAgentRelayServerConnections(CocoAgentRelayServer *srv)
{
    return g_hash_table_size(srv->relays);
}
