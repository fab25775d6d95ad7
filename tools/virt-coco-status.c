/*
 * virt-coco-status.c: "virt-coco list" and "virt-coco status"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The confidential migrations this host's agent knows (in flight and
 * recent, from its "status" request), each with the peer agent's view of
 * the same session ("peer-status", asked through this host's agent).
 */

#include "virt-coco.h"
#include "client/cococlientagent.h"
#include "client/cococlientjson.h"

/* This host's agent and its records, each parsed. */
static GPtrArray *
cocoStatusRecords(CocoClientAgent *agent, GError **error)
{
    g_autoptr(JsonArray) arr = cocoClientAgentStatus(agent, error);
    g_autoptr(GPtrArray) recs = NULL;
    guint i;

    if (!arr)
        return NULL;
    recs = g_ptr_array_new_with_free_func((GDestroyNotify)cocoClientRecordFree);
    for (i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *o = cocoJsonArrayObject(arr, i);
        CocoClientRecord *rec;

        if (!o) {
            cocoErrorSet(
                error, COCO_ERROR_QMP_PROTOCOL,
                _("the agent at '%1$s' sent a record that is not an object"),
                cocoClientAgentGetPath(agent));
            return NULL;
        }
        if (!(rec = cocoClientRecordParse(o, cocoClientAgentGetPath(agent),
                                          error)))
            return NULL;
        g_ptr_array_add(recs, rec);
    }
    return g_steal_pointer(&recs);
}

/* This host's agent, at @option or the default socket. */
CocoClientAgent *
cocoStatusConnect(const char *option, GError **error)
{
    g_autofree char *path = cocoClientAgentSocketPath(option);
    CocoClientAgent *agent;
    int errnum = 0;

    if (!(agent = cocoClientAgentConnect(path, &errnum)))
        cocoErrorSetSystem(
            error, errnum,
            _("this host's agent is not reachable at '%1$s' (is virtcocod running?)"),
            path);
    return agent;
}

/* The summary of a record in "list" and a peer's view. */
static JsonObject *
cocoStatusSummary(const CocoClientRecord *rec)
{
    JsonObject *obj = json_object_new();

    json_object_set_string_member(obj, "id", rec->id);
    if (rec->domain)
        json_object_set_string_member(obj, "domain", rec->domain);
    else
        json_object_set_null_member(obj, "domain");
    if (rec->uuid)
        json_object_set_string_member(obj, "uuid", rec->uuid);
    else
        json_object_set_null_member(obj, "uuid");
    json_object_set_string_member(obj, "role", rec->role);
    json_object_set_string_member(obj, "state", rec->state);
    json_object_set_boolean_member(obj, "in_flight",
                                   !cocoClientRecordIsOver(rec));
    json_object_set_int_member(obj, "progress", cocoClientRecordProgress(rec));
    if (rec->peer)
        json_object_set_string_member(obj, "peer", rec->peer);
    else
        json_object_set_null_member(obj, "peer");
    if (rec->session)
        json_object_set_string_member(obj, "session", rec->session);
    else
        json_object_set_null_member(obj, "session");
    if (rec->started)
        json_object_set_string_member(obj, "started", rec->started);
    else
        json_object_set_null_member(obj, "started");
    json_object_set_int_member(obj, "bytes", (gint64)rec->bytes);
    json_object_set_int_member(obj, "epoch", (gint64)rec->epoch);
    if (rec->failure)
        json_object_set_string_member(obj, "failure", rec->failure);
    else
        json_object_set_null_member(obj, "failure");
    return obj;
}

/* {"host": ..., "record": ... | null, "error": ... | null} */
static JsonObject *
cocoStatusPeerView(const CocoClientRecord *rec, const CocoClientRecord *peer,
                   const char *reason, bool full)
{
    JsonObject *obj = json_object_new();
    g_autofree char *host = cocoClientRecordPeerHost(rec);

    if (host)
        json_object_set_string_member(obj, "host", host);
    else
        json_object_set_null_member(obj, "host");
    if (peer)
        json_object_set_object_member(obj, "record",
                                      full ? json_object_ref(peer->json)
                                           : cocoStatusSummary(peer));
    else
        json_object_set_null_member(obj, "record");
    if (reason)
        json_object_set_string_member(obj, "error", reason);
    else
        json_object_set_null_member(obj, "error");
    return obj;
}

/* ---- list --------------------------------------------------------------- */

int
cocoCmdList(CocoCtl *ctl, int argc, char **argv)
{
    gboolean active = FALSE;
    gboolean no_peer = FALSE;
    g_autofree char *socket = NULL;
    GOptionEntry entries[] = {
        {"active", 0, 0, G_OPTION_ARG_NONE, &active,
         N_("only the migrations in flight"), NULL},
        {"no-peer", 0, 0, G_OPTION_ARG_NONE, &no_peer,
         N_("do not ask the peer agents for their view"), NULL},
        {"agent-socket", 0, 0, G_OPTION_ARG_FILENAME, &socket,
         N_("this host agent's socket"), N_("PATH")},
        G_OPTION_ENTRY_NULL,
    };
    g_autoptr(CocoClientAgent) agent = NULL;
    g_autoptr(GPtrArray) recs = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonArray) out = json_array_new();
    guint i;

    if (!cocoCtlParseOptions(ctl, entries, &argc, &argv))
        return COCO_EXIT_USAGE;
    if (argc > 1)
        return cocoCtlUsageError(ctl, _("unexpected data '%1$s'"), argv[1]);
    if (!(agent = cocoStatusConnect(socket, &err)) ||
        !(recs = cocoStatusRecords(agent, &err)))
        return cocoCtlReportError(ctl, err);

    if (!ctl->json && !ctl->quiet) {
        const struct {
            const char *label;
            glong width;
        } cols[] = {
            {_("Id"), 44},        {_("Domain"), 12}, {_("Role"), 11},
            {_("State"), 11},     {NULL, 8},         {_("Peer"), 22},
            {_("Peer state"), 0},
        };
        g_autoptr(GString) pad = NULL;
        size_t c;

        for (c = 0; c < G_N_ELEMENTS(cols); c++) {
            if (!cols[c].label) {
                /* Right-aligned over the "NN %" column, then two blanks. */
                const char *p = _("Progress");
                glong n = g_utf8_strlen(p, -1);

                putchar(' ');
                for (; n < cols[c].width; n++)
                    putchar(' ');
                printf("%s ", p);
                continue;
            }
            printf(" %s", cocoCtlPad(&pad, cols[c].label, cols[c].width));
        }
        putchar('\n');
        printf("%s\n",
               "-----------------------------------------------------"
               "--------------------------------------------------------"
               "------------");
    }
    /* Newest first, as virsh lists. */
    for (i = recs->len; i > 0; i--) {
        CocoClientRecord *rec = g_ptr_array_index(recs, i - 1);
        g_autoptr(CocoClientRecord) peer = NULL;
        g_autofree char *reason = NULL;
        bool over = cocoClientRecordIsOver(rec);
        JsonObject *sum;

        if (active && over)
            continue;
        /* The peer's view of the migrations in flight. */
        if (!no_peer && !over &&
            cocoClientAgentPeerRecord(agent, rec, &peer, &reason, &err) < 0)
            return cocoCtlReportError(ctl, err);
        sum = cocoStatusSummary(rec);
        if (!no_peer && !over)
            json_object_set_object_member(
                sum, "peer_view", cocoStatusPeerView(rec, peer, reason, false));
        else
            json_object_set_null_member(sum, "peer_view");
        json_array_add_object_element(out, sum);
        if (ctl->json)
            continue;
        printf(" %-44s %-12s %-11s %-11s %6u %%  %-22s %s\n", rec->id,
               rec->domain ? rec->domain : "-", rec->role, rec->state,
               cocoClientRecordProgress(rec), rec->peer ? rec->peer : "-",
               peer ? peer->state : (reason ? _("unknown") : "-"));
    }
    if (ctl->json) {
        g_autoptr(JsonObject) obj = json_object_new();

        json_object_set_array_member(obj, "migrations", json_array_ref(out));
        cocoCtlPrintObject(ctl, obj);
    }
    return COCO_EXIT_OK;
}

/* ---- status ------------------------------------------------------------- */

static void
cocoStatusPrintRecord(const CocoClientRecord *rec)
{
    g_autoptr(GString) pad = NULL;
    guint i;

    printf("%s %s\n", cocoCtlPad(&pad, _("Migration:"), 13), rec->id);
    printf("%s %s (%s)\n", cocoCtlPad(&pad, _("Domain:"), 13),
           rec->domain ? rec->domain : "-", rec->uuid ? rec->uuid : "-");
    printf("%s %s\n", cocoCtlPad(&pad, _("Role:"), 13), rec->role);
    if (cocoClientRecordIsOver(rec))
        printf("%s %s\n", cocoCtlPad(&pad, _("State:"), 13), rec->state);
    else
        printf(_("%1$-13s %2$s (in flight)\n"), _("State:"), rec->state);
    printf("%s %s\n", cocoCtlPad(&pad, _("Started:"), 13),
           rec->started ? rec->started : "-");
    printf("%s %s\n", cocoCtlPad(&pad, _("Peer:"), 13),
           rec->peer ? rec->peer : "-");
    printf("%s %s\n", cocoCtlPad(&pad, _("Session:"), 13),
           rec->session ? rec->session : "-");
    printf(
        _("%1$-13s %2$u %% (%3$llu of %4$llu pages, %5$llu bytes sealed, epoch %6$llu, %7$llu rounds)\n"),
        _("Progress:"), cocoClientRecordProgress(rec),
        (unsigned long long)rec->sent_pages, (unsigned long long)rec->pages,
        (unsigned long long)rec->bytes, (unsigned long long)rec->epoch,
        (unsigned long long)rec->rounds);
    if (rec->downtime_us)
        printf(_("%1$-13s %2$.3f ms\n"), _("Downtime:"),
               (double)rec->downtime_us / 1000.0);
    if (rec->failure)
        printf("%s %s\n", cocoCtlPad(&pad, _("Failure:"), 13), rec->failure);
    printf("%s\n", _("Timeline:"));
    for (i = 0; i < rec->timeline->len; i++) {
        const CocoClientRecordEntry *e = g_ptr_array_index(rec->timeline, i);
        g_autofree char *steps = g_strjoinv(",", e->steps);

        printf("  %10.3f %10.3f  %-32s %s->%s [%s]%s%s\n", e->at_ms,
               e->duration_ms, e->phase ? e->phase : "", e->from ? e->from : "",
               e->to, steps, e->error ? " error=" : "",
               e->error ? e->error : "");
    }
}

int
cocoStatusFind(CocoClientAgent *agent, const char *key, CocoClientRecord **rec,
               CocoClientRecord **peer, char **reason, GError **error)
{
    g_autoptr(JsonArray) arr = cocoClientAgentStatus(agent, error);
    JsonObject *obj;

    *rec = NULL;
    if (!arr)
        return -1;
    if (!(obj = cocoClientRecordFind(arr, key)))
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("this host's agent has no record of a migration '%1$s' (a migration id, or a domain's name or UUID)"),
            key);
    if (!(*rec =
              cocoClientRecordParse(obj, cocoClientAgentGetPath(agent), error)))
        return -1;
    if (cocoClientAgentPeerRecord(agent, *rec, peer, reason, error) < 0) {
        g_clear_pointer(rec, cocoClientRecordFree);
        return -1;
    }
    return 0;
}

int
cocoCmdStatus(CocoCtl *ctl, int argc, char **argv)
{
    g_autofree char *socket = NULL;
    GOptionEntry entries[] = {
        {"agent-socket", 0, 0, G_OPTION_ARG_FILENAME, &socket,
         N_("this host agent's socket"), N_("PATH")},
        G_OPTION_ENTRY_NULL,
    };
    g_autoptr(CocoClientAgent) agent = NULL;
    g_autoptr(CocoClientRecord) rec = NULL;
    g_autoptr(CocoClientRecord) peer = NULL;
    g_autofree char *reason = NULL;
    g_autoptr(GError) err = NULL;

    if (!cocoCtlParseOptions(ctl, entries, &argc, &argv))
        return COCO_EXIT_USAGE;
    if (argc < 2)
        return cocoCtlUsageError(
            ctl, "%s", _("command 'status' requires a DOMAIN or migration ID"));
    if (argc > 2)
        return cocoCtlUsageError(ctl, _("unexpected data '%1$s'"), argv[2]);
    if (!(agent = cocoStatusConnect(socket, &err)) ||
        cocoStatusFind(agent, argv[1], &rec, &peer, &reason, &err) < 0)
        return cocoCtlReportError(ctl, err);

    if (ctl->json) {
        g_autoptr(JsonObject) obj = json_object_new();

        json_object_set_object_member(obj, "migration",
                                      json_object_ref(rec->json));
        json_object_set_object_member(
            obj, "peer", cocoStatusPeerView(rec, peer, reason, true));
        cocoCtlPrintObject(ctl, obj);
        return COCO_EXIT_OK;
    }
    cocoStatusPrintRecord(rec);
    printf("\n");
    if (peer) {
        printf("%s\n", _("The peer agent's view:"));
        cocoStatusPrintRecord(peer);
    } else {
        printf(_("The peer agent's view: not available: %1$s\n"), reason);
    }
    return COCO_EXIT_OK;
}
