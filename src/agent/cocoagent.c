/*
 * cocoagent.c: virtcocod, the privileged host agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagent.h"
#include "agent/cocoagentincoming.h"
#include "agent/cocoagentmetrics.h"
#include "agent/cocoagentmetricshttp.h"
#include "agent/cocoagentpeerslots.h"
#include "agent/cocoagentmigration.h"
#include "agent/cocoagentpriv.h"
#include "agent/cocoagentrecord.h"
#include "agent/cocoagentrelay.h"
#include "agent/cocoagenttls.h"
#include "conf/cocomigrationdef.h"
#include "firmware/cocoemuplatform.h"
#include "proto/cocoprotopeer.h"
#include "proto/cocoprotorelay.h"
#include "util/cocoerror.h"
#include "util/cocohex.h"
#include "util/cocosource.h"

#include <errno.h>
#include <stdarg.h>

/* What outlives the agent for the closures queued on its context: a
 * closure posted by a worker runs only while the agent lives. */
typedef struct {
    gint refs;
    GMutex lock;
    CocoAgent *agent; /* NULL once freed */
} CocoAgentMailbox;

struct _CocoAgent {
    CocoAgentConfig cfg;
    GMainContext *ctx;
    CocoEmuPlatform *pf;
    CocoAgentTlsCreds *tls; /* NULL: migrations are refused, with why */
    char *tls_error;
    CocoAgentRecords *records;
    CocoAgentRelayServer *relays;
    CocoAgentIncoming *incoming;
    GHashTable *migrations; /* CocoAgentMigration (reference) -> itself */
    GHashTable *retiring; /* removed, worker not joined yet: the same */
    CocoAgentMailbox *mailbox;
    CocoAgentMetrics *metrics;
    CocoAgentMetricsHttp *metrics_http; /* NULL: no endpoint */
    CocoAgentPeerSlots *peer_slots;
    CocoTransferPriority *priority;
};

/* ---- shared with the agent's other files ----------------------------------- */

const CocoAgentConfig *
cocoAgentConfig(CocoAgent *agent)
{
    return &agent->cfg;
}

GMainContext *
cocoAgentContext(CocoAgent *agent)
{
    return agent->ctx;
}

CocoAgentRecords *
cocoAgentRecords(CocoAgent *agent)
{
    return agent->records;
}

CocoAgentTlsCreds *
cocoAgentTls(CocoAgent *agent)
{
    return agent->tls;
}

CocoEmuPlatform *
cocoAgentPlatform(CocoAgent *agent)
{
    return agent->pf;
}

CocoAgentRelayServer *
cocoAgentRelayServerOf(CocoAgent *agent)
{
    return agent->relays;
}

CocoAgentIncoming *
cocoAgentIncomingOf(CocoAgent *agent)
{
    return agent->incoming;
}

CocoAgentMetrics *
cocoAgentMetricsOf(CocoAgent *agent)
{
    return agent->metrics;
}

CocoAgentPeerSlots *
cocoAgentPeerSlotsOf(CocoAgent *agent)
{
    return agent->peer_slots;
}

CocoTransferPriority *
cocoAgentPriorityOf(CocoAgent *agent)
{
    return agent->priority;
}

static void
cocoAgentMailboxUnref(CocoAgentMailbox *mb)
{
    if (g_atomic_int_dec_and_test(&mb->refs)) {
        g_mutex_clear(&mb->lock);
        g_free(mb);
    }
}

typedef struct {
    CocoAgentMailbox *mb;
    GSourceFunc func;
    gpointer data;
    GDestroyNotify destroy;
} CocoAgentLetter;

static void
cocoAgentLetterFree(gpointer p)
{
    CocoAgentLetter *l = p;

    if (l->destroy)
        l->destroy(l->data);
    cocoAgentMailboxUnref(l->mb);
    g_free(l);
}

static gboolean
cocoAgentLetterRun(gpointer p)
{
    CocoAgentLetter *l = p;

    /* Main thread: the agent is freed on this thread too. */
    if (l->mb->agent)
        l->func(l->data);
    return G_SOURCE_REMOVE;
}

void
cocoAgentPostMain(CocoAgent *agent, GSourceFunc func, gpointer data,
                  GDestroyNotify destroy)
{
    CocoAgentLetter *l = g_new0(CocoAgentLetter, 1);
    GSource *src = g_idle_source_new();

    l->mb = agent->mailbox;
    g_atomic_int_inc(&l->mb->refs);
    l->func = func;
    l->data = data;
    l->destroy = destroy;
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(src, cocoAgentLetterRun, l, cocoAgentLetterFree);
    g_source_attach(src, agent->ctx);
    g_source_unref(src);
}

/* syslog priorities, as journald reads them. */
static const char *
cocoAgentLogPriority(GLogLevelFlags level)
{
    if (level & G_LOG_LEVEL_ERROR)
        return "3";
    if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
        return "4";
    if (level & G_LOG_LEVEL_MESSAGE)
        return "5";
    if (level & G_LOG_LEVEL_INFO)
        return "6";
    return "7";
}

void
cocoAgentLog(CocoAgent *agent, CocoAgentMigration *m, GLogLevelFlags level,
             const char *fmt, ...)
{
    g_autofree char *text = NULL;
    g_autofree char *msg = NULL;
    const char *phase = NULL;
    GLogField fields[9];
    gsize n = 0;
    va_list ap;

    /* Tests ask for quiet; debug lines only with --verbose. */
    if (agent->cfg.quiet &&
        !(level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR)))
        return;
    if ((level & G_LOG_LEVEL_DEBUG) && !agent->cfg.verbose)
        return;
    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (m) {
        phase = cocoPhaseStateTypeToString(cocoAgentMigrationGetState(m));
        msg = g_strdup_printf(
            "migration=%s domain=%s role=%s %s", cocoAgentMigrationGetId(m),
            NULLSTR(cocoAgentMigrationGetName(m)),
            cocoFirmwareRoleTypeToString(cocoAgentMigrationGetRole(m)), text);
    }
    fields[n++] = (GLogField){"MESSAGE", msg ? msg : text, -1};
    fields[n++] = (GLogField){"PRIORITY", cocoAgentLogPriority(level), -1};
    fields[n++] = (GLogField){"GLIB_DOMAIN", G_LOG_DOMAIN, -1};
    if (m) {
        fields[n++] =
            (GLogField){"MIGRATION_ID", cocoAgentMigrationGetId(m), -1};
        fields[n++] =
            (GLogField){"DOMAIN", NULLSTR(cocoAgentMigrationGetName(m)), -1};
        fields[n++] = (GLogField){"DOMAIN_UUID",
                                  NULLSTR(cocoAgentMigrationGetUuid(m)), -1};
        fields[n++] = (GLogField){
            "ROLE", cocoFirmwareRoleTypeToString(cocoAgentMigrationGetRole(m)),
            -1};
        fields[n++] = (GLogField){"PHASE", NULLSTR(phase), -1};
    }
    /* The level decides what GLib does (fatal in tests for criticals);
     * the PRIORITY field is what journald sees. */
    g_log_structured_array(level & G_LOG_LEVEL_CRITICAL ? G_LOG_LEVEL_CRITICAL
                                                        : G_LOG_LEVEL_MESSAGE,
                           fields, n);
}

void
cocoAgentAddMigration(CocoAgent *agent, CocoAgentMigration *m)
{
    g_hash_table_add(agent->migrations, cocoAgentMigrationRef(m));
}

void
cocoAgentRemoveMigration(CocoAgent *agent, CocoAgentMigration *m)
{
    if (!g_hash_table_contains(agent->migrations, m))
        return;
    /* Its teardown (transfer threads joined, firmware and RAM mapping
     * freed) runs on its worker: the main thread goes on serving the
     * other migrations' relays and peers meanwhile. */
    g_hash_table_add(agent->retiring, cocoAgentMigrationRef(m));
    g_hash_table_remove(agent->migrations, m);
    cocoAgentMigrationRetire(m);
}

void
cocoAgentReapMigration(CocoAgent *agent, CocoAgentMigration *m)
{
    if (!g_hash_table_contains(agent->retiring, m))
        return;
    /* It has ended: the join returns at once. */
    cocoAgentMigrationStop(m);
    g_hash_table_remove(agent->retiring, m);
}

guint
cocoAgentRetiringCount(CocoAgent *agent)
{
    return g_hash_table_size(agent->retiring);
}

CocoAgentMigration *
cocoAgentFindMigrationBySession(CocoAgent *agent, guint64 session,
                                CocoFirmwareRole role)
{
    GHashTableIter it;
    gpointer k;

    g_hash_table_iter_init(&it, agent->migrations);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        CocoAgentMigration *m = k;

        if (cocoAgentMigrationGetSession(m) == session &&
            cocoAgentMigrationGetRole(m) == role)
            return m;
    }
    return NULL;
}

guint
cocoAgentMigrationCount(CocoAgent *agent)
{
    return g_hash_table_size(agent->migrations);
}

JsonObject *
cocoAgentProbeObject(CocoAgent *agent)
{
    JsonObject *obj = json_object_new();
    JsonObject *pf = json_object_new();
    JsonObject *tcb = json_object_new();
    g_autofree char *id =
        cocoHexEncode(cocoEmuPlatformGetId(agent->pf), COCO_PLATFORM_ID_LEN);
    unsigned int port = cocoAgentIncomingGetPort(agent->incoming);
    size_t c;

    for (c = 0; c < COCO_TCB_COMPONENT_LAST; c++)
        json_object_set_int_member(tcb, cocoTcbComponentTypeToString(c),
                                   cocoEmuPlatformGetSvn(agent->pf, c));
    json_object_set_string_member(pf, "id", id);
    json_object_set_string_member(pf, "name", g_get_host_name());
    json_object_set_object_member(pf, "tcb", tcb);
    json_object_set_string_member(obj, "type", "probe");
    json_object_set_string_member(obj, "version", PACKAGE_VERSION);
    json_object_set_int_member(obj, "protocol", COCO_PEER_PROTOCOL_VERSION);
    json_object_set_string_member(obj, "firmware", agent->cfg.firmware);
    json_object_set_object_member(obj, "platform", pf);
    json_object_set_int_member(obj, "port", port);
    json_object_set_int_member(
        obj, "peer_port", agent->cfg.peer_port ? agent->cfg.peer_port : port);
    json_object_set_boolean_member(obj, "tls", agent->tls != NULL);
    if (agent->tls_error)
        json_object_set_string_member(obj, "tls_error", agent->tls_error);
    return obj;
}

/* ---- the metrics endpoint ------------------------------------------------------ */

/* One scrape (main thread): the counters and what the agent holds now. */
static char *
cocoAgentMetricsRender(gpointer opaque)
{
    CocoAgent *agent = opaque;
    CocoAgentMetricsGauges g = {{0}};
    CocoAgentCounts counts = {0};
    GHashTableIter it;
    gpointer k;

    g_hash_table_iter_init(&it, agent->migrations);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        CocoFirmwareRole role = cocoAgentMigrationGetRole(k);

        if (!cocoAgentMigrationIsFinal(k) && role < COCO_FIRMWARE_ROLE_LAST)
            g.in_flight[role]++;
    }
    cocoAgentGetCounts(agent, &counts);
    g.relay_connections = counts.relay_connections;
    g.peer_unauthenticated = counts.peer_unauthenticated;
    g.records = counts.records;
    return cocoAgentMetricsFormat(agent->metrics, &g);
}

static int
cocoAgentMetricsServe(CocoAgent *agent, GError **error)
{
    g_autoptr(GInetSocketAddress) addr = NULL;

    /* Validated with the configuration; parsed again for the address. */
    if (!(addr = cocoAgentMetricsListenParse(agent->cfg.metrics_listen, error)))
        return -1;
    if (!(agent->metrics_http = cocoAgentMetricsHttpNew(
              addr, agent->ctx, cocoAgentMetricsRender, agent, error)))
        return -1;
    if (!agent->cfg.quiet)
        g_message("virtcocod: metrics on '%s' (port %u), GET /metrics",
                  agent->cfg.metrics_listen,
                  cocoAgentMetricsHttpGetPort(agent->metrics_http));
    return 0;
}

unsigned int
cocoAgentGetMetricsPort(CocoAgent *agent)
{
    return agent->metrics_http
               ? cocoAgentMetricsHttpGetPort(agent->metrics_http)
               : 0;
}

char *
cocoAgentGetMetrics(CocoAgent *agent)
{
    return cocoAgentMetricsRender(agent);
}

/* ---- the agent ---------------------------------------------------------------- */

CocoAgent *
cocoAgentNew(const CocoAgentConfig *cfg, GMainContext *ctx, GError **error)
{
    g_autoptr(CocoAgent) agent = g_new0(CocoAgent, 1);
    g_autoptr(GError) err = NULL;
    guint interrupted = 0;

    cocoAgentConfigCopy(&agent->cfg, cfg);
    agent->ctx =
        ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    agent->mailbox = g_new0(CocoAgentMailbox, 1);
    agent->mailbox->refs = 1;
    agent->mailbox->agent = agent;
    g_mutex_init(&agent->mailbox->lock);
    agent->migrations = g_hash_table_new_full(
        NULL, NULL, (GDestroyNotify)cocoAgentMigrationUnref, NULL);
    agent->retiring = g_hash_table_new_full(
        NULL, NULL, (GDestroyNotify)cocoAgentMigrationUnref, NULL);
    agent->metrics = cocoAgentMetricsNew();
    agent->peer_slots = cocoAgentPeerSlotsNew();
    /* A healthy switchover's downtime is tens to hundreds of
     * milliseconds; one that lasts longer (a lost peer) stops holding the
     * others back after a second. */
    agent->priority = cocoTransferPriorityNew(G_USEC_PER_SEC);
    if (cocoAgentConfigValidate(&agent->cfg, error) < 0)
        return NULL;
    if (!(agent->pf =
              cocoEmuPlatformLoad(agent->cfg.platform_file, true, error)))
        return NULL;
    /* Without credentials the agent still serves its relays (save,
     * restore, status) but refuses every migration, saying why. */
    if (!(agent->tls = cocoAgentTlsCredsLoad(&agent->cfg.tls, &err))) {
        agent->tls_error = g_strdup(err->message);
        g_message("virtcocod: confidential migrations refused: %s",
                  err->message);
    }
    if (g_mkdir_with_parents(agent->cfg.state_dir, 0750) < 0) {
        cocoErrorSetSystem(error, errno, _("cannot create directory '%1$s'"),
                           agent->cfg.state_dir);
        return NULL;
    }
    agent->records =
        cocoAgentRecordsNew(agent->cfg.state_dir, agent->cfg.records_max,
                            (gint64)agent->cfg.records_max_age);
    if (cocoAgentRecordsLoad(agent->records, &interrupted, error) < 0)
        return NULL;
    if (interrupted > 0)
        g_message("virtcocod: %u migrations were interrupted by the agent's "
                  "stop; their records say so",
                  interrupted);
    if (!(agent->relays = cocoAgentRelayServerNew(agent, error)) ||
        !(agent->incoming = cocoAgentIncomingNew(agent, error)))
        return NULL;
    if (agent->cfg.metrics_listen && cocoAgentMetricsServe(agent, error) < 0)
        return NULL;
    if (!agent->cfg.quiet)
        g_message("virtcocod: relays on '%s', peers on '%s' port %u (TLS %s)",
                  agent->cfg.socket_path, agent->cfg.listen_address,
                  cocoAgentIncomingGetPort(agent->incoming),
                  agent->tls ? "ready" : "missing");
    return g_steal_pointer(&agent);
}

void
cocoAgentFree(CocoAgent *agent)
{
    g_autoptr(GList) migs = NULL;
    GList *l;

    if (!agent)
        return;
    cocoAgentMetricsHttpFree(agent->metrics_http);
    /* The workers first, the retired ones too: nothing they post
     * afterwards runs. */
    if (agent->migrations) {
        migs = g_hash_table_get_keys(agent->migrations);
        for (l = migs; l; l = l->next)
            cocoAgentMigrationStop(l->data);
        g_clear_pointer(&migs, g_list_free);
    }
    if (agent->retiring) {
        migs = g_hash_table_get_keys(agent->retiring);
        for (l = migs; l; l = l->next)
            cocoAgentMigrationStop(l->data);
    }
    if (agent->mailbox) {
        agent->mailbox->agent = NULL;
        cocoAgentMailboxUnref(agent->mailbox);
    }
    cocoAgentIncomingFree(agent->incoming);
    cocoAgentRelayServerFree(agent->relays);
    if (agent->migrations)
        g_hash_table_unref(agent->migrations);
    if (agent->retiring)
        g_hash_table_unref(agent->retiring);
    cocoAgentRecordsFree(agent->records);
    if (agent->tls)
        cocoAgentTlsCredsUnref(agent->tls);
    g_free(agent->tls_error);
    if (agent->pf)
        cocoEmuPlatformUnref(agent->pf);
    cocoAgentMetricsFree(agent->metrics);
    cocoAgentPeerSlotsFree(agent->peer_slots);
    g_clear_pointer(&agent->priority, cocoTransferPriorityUnref);
    g_main_context_unref(agent->ctx);
    cocoAgentConfigClear(&agent->cfg);
    g_free(agent);
}

unsigned int
cocoAgentGetPort(CocoAgent *agent)
{
    return cocoAgentIncomingGetPort(agent->incoming);
}

void
cocoAgentSetPeerPort(CocoAgent *agent, unsigned int port)
{
    agent->cfg.peer_port = port;
}

const CocoAgentConfig *
cocoAgentGetConfig(CocoAgent *agent)
{
    return &agent->cfg;
}

JsonArray *
cocoAgentGetStatus(CocoAgent *agent)
{
    return cocoAgentRecordsList(agent->records);
}

GHashTable *
cocoAgentGetRecordIds(CocoAgent *agent)
{
    return cocoAgentRecordsIds(agent->records);
}

JsonObject *
cocoAgentFindRecord(CocoAgent *agent, const char *uuid, const char *role,
                    GHashTable *known)
{
    return cocoAgentRecordsFindNew(agent->records, uuid, role, known);
}

JsonObject *
cocoAgentGetProbe(CocoAgent *agent)
{
    return cocoAgentProbeObject(agent);
}

guint
cocoAgentCountActive(CocoAgent *agent)
{
    GHashTableIter it;
    gpointer k;
    guint n = 0;

    g_hash_table_iter_init(&it, agent->migrations);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        if (!cocoAgentMigrationIsFinal(k))
            n++;
    }
    return n;
}

void
cocoAgentGetCounts(CocoAgent *agent, CocoAgentCounts *counts)
{
    counts->relay_connections = cocoAgentRelayServerConnections(agent->relays);
    counts->peer_unauthenticated =
        cocoAgentIncomingUnauthenticated(agent->incoming);
    counts->migrations = g_hash_table_size(agent->migrations);
    counts->records = cocoAgentRecordsCount(agent->records);
}
