/*
 * cococlientrecord.c: an agent's record of one migration, read by clients
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "client/cococlientrecord.h"
#include "client/cococlientjson.h"
#include "client/cococlientpreflight.h"
#include "util/cocoerror.h"

/* Bounds on what a record may hold, checked before anything is kept. */
#define COCO_CLIENT_RECORD_MAX_ENTRIES 4096
#define COCO_CLIENT_RECORD_MAX_SAMPLES 65536
#define COCO_CLIENT_RECORD_PAGE_SIZE 4096

static void
cocoClientRecordEntryFree(gpointer p)
{
    CocoClientRecordEntry *e = p;

    g_free(e->event);
    g_free(e->phase);
    g_free(e->from);
    g_free(e->to);
    g_strfreev(e->steps);
    g_free(e->error);
    g_free(e);
}

void
cocoClientRecordFree(CocoClientRecord *rec)
{
    if (!rec)
        return;
    g_free(rec->id);
    g_free(rec->domain);
    g_free(rec->uuid);
    g_free(rec->role);
    g_free(rec->peer);
    g_free(rec->session);
    g_free(rec->started);
    g_free(rec->state);
    g_free(rec->failure);
    g_free(rec->failure_code);
    if (rec->timeline)
        g_ptr_array_unref(rec->timeline);
    if (rec->samples)
        g_array_unref(rec->samples);
    if (rec->json)
        json_object_unref(rec->json);
    g_free(rec);
}

static char *
cocoClientRecordDupString(JsonObject *obj, const char *name)
{
    return g_strdup(cocoJsonString(obj, name));
}

/* "a,b,c" -> {"a", "b", "c"} without empty parts. */
static char **
cocoClientRecordSplitSteps(const char *steps)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new();
    g_auto(GStrv) parts = g_strsplit(steps ? steps : "", ",", -1);
    size_t i;

    for (i = 0; parts[i]; i++) {
        g_strstrip(parts[i]);
        if (*parts[i])
            g_ptr_array_add(out, g_strdup(parts[i]));
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&out), FALSE);
}

static int
cocoClientRecordParseTimeline(CocoClientRecord *rec, JsonArray *tl,
                              const char *from, GError **error)
{
    guint n = tl ? json_array_get_length(tl) : 0;
    guint i;

    if (n > COCO_CLIENT_RECORD_MAX_ENTRIES)
        return cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL,
            _("the record '%1$s' from '%2$s' has '%3$u' timeline entries, more than '%4$u'"),
            rec->id, from, n, (unsigned int)COCO_CLIENT_RECORD_MAX_ENTRIES);
    for (i = 0; i < n; i++) {
        JsonObject *o = cocoJsonArrayObject(tl, i);
        CocoClientRecordEntry *e;

        if (!o || !cocoJsonString(o, "to"))
            return cocoErrorSet(
                error, COCO_ERROR_QMP_PROTOCOL,
                _("the record '%1$s' from '%2$s' has a malformed timeline entry '%3$u'"),
                rec->id, from, i);
        e = g_new0(CocoClientRecordEntry, 1);
        cocoJsonDouble(o, "at_ms", &e->at_ms);
        cocoJsonDouble(o, "duration_ms", &e->duration_ms);
        e->event = g_strdup(cocoJsonString(o, "event"));
        e->phase = g_strdup(cocoJsonString(o, "phase"));
        e->from = g_strdup(cocoJsonString(o, "from"));
        e->to = g_strdup(cocoJsonString(o, "to"));
        e->steps = cocoClientRecordSplitSteps(cocoJsonString(o, "steps"));
        e->error = g_strdup(cocoJsonString(o, "error"));
        g_ptr_array_add(rec->timeline, e);
    }
    return 0;
}

/* "samples": [[at_ms, bytes, pages, epoch], ...] */
static int
cocoClientRecordParseSamples(CocoClientRecord *rec, JsonArray *arr,
                             const char *from, GError **error)
{
    guint n = arr ? json_array_get_length(arr) : 0;
    guint i;

    if (n > COCO_CLIENT_RECORD_MAX_SAMPLES)
        return cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL,
            _("the record '%1$s' from '%2$s' has '%3$u' samples, more than '%4$u'"),
            rec->id, from, n, (unsigned int)COCO_CLIENT_RECORD_MAX_SAMPLES);
    for (i = 0; i < n; i++) {
        JsonNode *node = json_array_get_element(arr, i);
        JsonArray *s =
            JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
        CocoClientRecordSample sample = {0};
        gint64 v[3];
        guint k;

        if (!s || json_array_get_length(s) != 4)
            goto malformed;
        for (k = 0; k < 4; k++) {
            JsonNode *x = json_array_get_element(s, k);

            if (!JSON_NODE_HOLDS_VALUE(x))
                goto malformed;
            if (k == 0) {
                if (json_node_get_value_type(x) == G_TYPE_DOUBLE)
                    sample.at_ms = json_node_get_double(x);
                else if (json_node_get_value_type(x) == G_TYPE_INT64)
                    sample.at_ms = (double)json_node_get_int(x);
                else
                    goto malformed;
                continue;
            }
            if (json_node_get_value_type(x) != G_TYPE_INT64 ||
                (v[k - 1] = json_node_get_int(x)) < 0)
                goto malformed;
        }
        sample.bytes = (guint64)v[0];
        sample.pages = (guint64)v[1];
        sample.epoch = (guint64)v[2];
        g_array_append_val(rec->samples, sample);
    }
    return 0;

malformed:
    return cocoErrorSet(
        error, COCO_ERROR_QMP_PROTOCOL,
        _("the record '%1$s' from '%2$s' has a malformed sample '%3$u'"),
        rec->id, from, i);
}

CocoClientRecord *
cocoClientRecordParse(JsonObject *obj, const char *from, GError **error)
{
    g_autoptr(CocoClientRecord) rec = g_new0(CocoClientRecord, 1);
    JsonObject *xo;
    JsonObject *co;

    rec->timeline = g_ptr_array_new_with_free_func(cocoClientRecordEntryFree);
    rec->samples = g_array_new(FALSE, TRUE, sizeof(CocoClientRecordSample));
    rec->id = cocoClientRecordDupString(obj, "id");
    rec->role = cocoClientRecordDupString(obj, "role");
    rec->state = cocoClientRecordDupString(obj, "state");
    if (!rec->id || !*rec->id || !rec->role || !rec->state) {
        cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL,
            _("a record from '%1$s' lacks its 'id', 'role' or 'state'"), from);
        return NULL;
    }
    rec->json = json_object_ref(obj);
    rec->domain = cocoClientRecordDupString(obj, "domain");
    rec->uuid = cocoClientRecordDupString(obj, "uuid");
    rec->peer = cocoClientRecordDupString(obj, "peer");
    rec->session = cocoClientRecordDupString(obj, "session");
    rec->started = cocoClientRecordDupString(obj, "started");
    rec->failure = cocoClientRecordDupString(obj, "failure");
    rec->failure_code = cocoClientRecordDupString(obj, "failure_code");
    if (!cocoJsonInt(obj, "session_start_us", &rec->session_start_us) ||
        rec->session_start_us < 0)
        rec->session_start_us = -1;
    rec->phase_state = cocoPhaseStateParse(rec->state);
    rec->streams = cocoClientJsonU64(obj, "streams", 0);
    rec->vcpus = cocoClientJsonU64(obj, "vcpus", 0);
    rec->pages = cocoClientJsonU64(obj, "pages", 0);
    if ((xo = cocoJsonObject(obj, "transfer"))) {
        rec->has_transfer = true;
        rec->bytes = cocoClientJsonU64(xo, "bytes", 0);
        rec->sent_pages = cocoClientJsonU64(xo, "pages", 0);
        rec->bundles = cocoClientJsonU64(xo, "bundles", 0);
        rec->epoch = cocoClientJsonU64(xo, "epoch", 0);
        rec->elapsed_ms = cocoClientJsonU64(xo, "elapsed_ms", 0);
        rec->rate = cocoClientJsonU64(xo, "rate", 0);
    }
    if ((co = cocoJsonObject(obj, "counters"))) {
        rec->rounds = cocoClientJsonU64(co, "rounds", 0);
        rec->fw_calls = cocoClientJsonU64(co, "fw_calls", 0);
        rec->blackout_us = cocoClientJsonU64(co, "blackout_us", 0);
        rec->downtime_us = cocoClientJsonU64(co, "downtime_us", 0);
        rec->messages_sent = cocoClientJsonU64(co, "messages_sent", 0);
        rec->messages_received = cocoClientJsonU64(co, "messages_received", 0);
        rec->message_bytes_sent =
            cocoClientJsonU64(co, "message_bytes_sent", 0);
        rec->message_bytes_received =
            cocoClientJsonU64(co, "message_bytes_received", 0);
    }
    if (cocoClientRecordParseTimeline(rec, cocoJsonArray(obj, "timeline"), from,
                                      error) < 0 ||
        cocoClientRecordParseSamples(rec, cocoJsonArray(obj, "samples"), from,
                                     error) < 0)
        return NULL;
    return g_steal_pointer(&rec);
}

bool
cocoClientRecordIsOver(const CocoClientRecord *rec)
{
    int role = cocoFirmwareRoleTypeFromString(NULLSTR(rec->role));

    /* An unknown role or state is nothing to wait for. */
    if (role < 0 || rec->phase_state >= COCO_PHASE_STATE_LAST)
        return true;
    return cocoPhaseStateIsSettled((CocoFirmwareRole)role, rec->phase_state);
}

bool
cocoClientRecordSucceeded(const CocoClientRecord *rec)
{
    return rec->phase_state == COCO_PHASE_STATE_COMMITTED ||
           rec->phase_state == COCO_PHASE_STATE_FINISHED;
}

unsigned int
cocoClientRecordProgress(const CocoClientRecord *rec)
{
    guint64 total = rec->pages * COCO_CLIENT_RECORD_PAGE_SIZE;

    if (cocoClientRecordSucceeded(rec))
        return 100;
    if (!rec->pages)
        return 0;
    /* A destination counts the bytes it received, not pages. */
    if (rec->sent_pages == 0 && STREQ(rec->role, "destination"))
        return rec->bytes >= total ? 99
                                   : (unsigned int)(rec->bytes * 100 / total);
    if (rec->sent_pages >= rec->pages)
        return 99;
    return (unsigned int)(rec->sent_pages * 100 / rec->pages);
}

char *
cocoClientRecordPeerHost(const CocoClientRecord *rec)
{
    char *host = NULL;

    if (!rec->peer || !*rec->peer ||
        cocoClientSplitHostPort(rec->peer, &host, NULL) < 0)
        return NULL;
    return host;
}

gint64
cocoClientRecordStartedUs(const CocoClientRecord *rec)
{
    g_autoptr(GDateTime) dt = NULL;

    if (rec->session_start_us >= 0)
        return rec->session_start_us;
    if (!rec->started ||
        !(dt = g_date_time_new_from_iso8601(rec->started, NULL)))
        return -1;
    return g_date_time_to_unix(dt) * G_USEC_PER_SEC +
           g_date_time_get_microsecond(dt);
}

JsonObject *
cocoClientRecordFind(JsonArray *records, const char *key)
{
    guint n = records ? json_array_get_length(records) : 0;
    guint i;

    for (i = 0; i < n; i++) {
        JsonObject *o = cocoJsonArrayObject(records, i);

        if (o && STREQ_NULLABLE(cocoJsonString(o, "id"), key))
            return o;
    }
    for (i = n; i > 0; i--) {
        JsonObject *o = cocoJsonArrayObject(records, i - 1);
        const char *uuid = cocoJsonString(o, "uuid");

        if (o && (STREQ_NULLABLE(cocoJsonString(o, "domain"), key) ||
                  (uuid && g_ascii_strcasecmp(uuid, key) == 0)))
            return o;
    }
    return NULL;
}
