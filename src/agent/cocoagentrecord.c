/*
 * cocoagentrecord.c: the records of the migrations an agent ran
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentrecord.h"
#include "firmware/cocofirmware.h"
#include "migration/cocophase.h"
#include "proto/cocoproto.h"
#include "util/cocoerror.h"
#include "util/cocofile.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

struct _CocoAgentRecords {
    GMutex lock;
    char *dir;
    guint max_count;
    gint64 max_age_s;
    GHashTable *byid; /* id -> JsonObject */
    GQueue order; /* ids (owned), oldest first */
};

CocoAgentRecords *
cocoAgentRecordsNew(const char *dir, guint max_count, gint64 max_age_s)
{
    CocoAgentRecords *r = g_new0(CocoAgentRecords, 1);

    g_mutex_init(&r->lock);
    r->dir = g_strdup(dir);
    r->max_count = max_count ? max_count : 1;
    r->max_age_s = max_age_s;
    r->byid = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify)json_object_unref);
    g_queue_init(&r->order);
    return r;
}

void
cocoAgentRecordsFree(CocoAgentRecords *r)
{
    if (!r)
        return;
    g_hash_table_unref(r->byid);
    g_queue_clear_full(&r->order, g_free);
    g_mutex_clear(&r->lock);
    g_free(r->dir);
    g_free(r);
}

static CocoFirmwareRole
cocoAgentRecordRole(JsonObject *rec)
{
    int v =
        cocoFirmwareRoleTypeFromString(cocoJsonStringDefault(rec, "role", ""));

    return v < 0 ? COCO_FIRMWARE_ROLE_LAST : (CocoFirmwareRole)v;
}

bool
cocoAgentRecordIsFinal(JsonObject *rec)
{
    return cocoPhaseStateIsFinal(
        cocoAgentRecordRole(rec),
        cocoPhaseStateParse(cocoJsonString(rec, "state")));
}

bool
cocoAgentRecordAwaitsRecovery(JsonObject *rec)
{
    return cocoAgentRecordRole(rec) == COCO_FIRMWARE_ROLE_SOURCE &&
           cocoPhaseStateParse(cocoJsonString(rec, "state")) ==
               COCO_PHASE_STATE_INTERRUPTED &&
           cocoPhaseStateAfterStartToken(
               COCO_FIRMWARE_ROLE_SOURCE,
               cocoPhaseStateParse(cocoJsonString(rec, "interrupted_in"))) &&
           !json_object_has_member(rec, "recovered");
}

/* A record id is a file name: no separators, no dots first. */
static bool
cocoAgentRecordIdValid(const char *id)
{
    const char *p;

    if (!id || !*id || id[0] == '.' || strlen(id) > 255)
        return false;
    for (p = id; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    }
    return true;
}

static char *
cocoAgentRecordPath(CocoAgentRecords *r, const char *id)
{
    g_autofree char *name = g_strconcat(id, ".json", NULL);

    return g_build_filename(r->dir, name, NULL);
}

static int
cocoAgentRecordWrite(CocoAgentRecords *r, const char *id, JsonObject *rec,
                     GError **error)
{
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
    g_autoptr(GError) err = NULL;
    g_autofree char *text = NULL;
    g_autofree char *path = cocoAgentRecordPath(r, id);

    json_node_set_object(node, rec);
    text = json_to_string(node, TRUE);
    /* A temporary file, fsync, rename: a reader sees the old record or
     * the new one, never a torn one. */
    if (!g_file_set_contents_full(path, text, -1,
                                  G_FILE_SET_CONTENTS_CONSISTENT |
                                      G_FILE_SET_CONTENTS_DURABLE,
                                  0640, &err))
        return cocoErrorSet(error, COCO_ERROR_SYSTEM,
                            _("cannot write the migration record '%1$s': %2$s"),
                            path, err->message);
    return 0;
}

/* Under the lock: forget the oldest final records beyond the count, and
 * final records older than the age limit. A live one stays. */
static void
cocoAgentRecordsPruneLocked(CocoAgentRecords *r)
{
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    GList *l = r->order.head;

    while (l) {
        GList *next = l->next;
        const char *id = l->data;
        JsonObject *rec = g_hash_table_lookup(r->byid, id);
        bool over = g_queue_get_length(&r->order) > r->max_count;
        bool old =
            r->max_age_s > 0 && rec &&
            now - cocoJsonIntDefault(rec, "updated_s", now) > r->max_age_s;

        if ((over || old) && rec && cocoAgentRecordIsFinal(rec)) {
            g_autofree char *path = cocoAgentRecordPath(r, id);

            if (g_unlink(path) < 0 && errno != ENOENT)
                g_warning("cannot remove the migration record '%s': %s", path,
                          g_strerror(errno));
            g_hash_table_remove(r->byid, id);
            g_free(l->data);
            g_queue_delete_link(&r->order, l);
        }
        l = next;
    }
}

void
cocoAgentRecordsPrune(CocoAgentRecords *r)
{
    g_mutex_lock(&r->lock);
    cocoAgentRecordsPruneLocked(r);
    g_mutex_unlock(&r->lock);
}

int
cocoAgentRecordsPut(CocoAgentRecords *r, const char *id, JsonObject *rec,
                    GError **error)
{
    g_autoptr(JsonObject) owned G_GNUC_UNUSED = rec;
    JsonObject *old;
    int ret = 0;

    if (!cocoAgentRecordIdValid(id))
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("'%1$s' is not a valid migration record id"),
                            NULLSTR(id));
    json_object_set_int_member(rec, "updated_s",
                               g_get_real_time() / G_USEC_PER_SEC);
    g_mutex_lock(&r->lock);
    old = g_hash_table_lookup(r->byid, id);
    /* A write error sticks to the record: the next successful write does
     * not hide that an earlier state was lost. */
    if (old && cocoJsonString(old, "record_error") &&
        !json_object_has_member(rec, "record_error"))
        json_object_set_string_member(rec, "record_error",
                                      cocoJsonString(old, "record_error"));
    if (!old)
        g_queue_push_tail(&r->order, g_strdup(id));
    g_hash_table_replace(r->byid, g_strdup(id), json_object_ref(rec));
    g_mutex_unlock(&r->lock);

    /* The file: outside the lock (readers never wait for a disk). One
     * writer per id (the migration's worker). */
    if (cocoAgentRecordWrite(r, id, rec, error) < 0) {
        g_mutex_lock(&r->lock);
        json_object_set_string_member(rec, "record_error", (*error)->message);
        g_mutex_unlock(&r->lock);
        ret = -1;
    }
    cocoAgentRecordsPrune(r);
    return ret;
}

JsonArray *
cocoAgentRecordsList(CocoAgentRecords *r)
{
    JsonArray *arr = json_array_new();
    GList *l;

    g_mutex_lock(&r->lock);
    for (l = r->order.head; l; l = l->next) {
        JsonObject *rec = g_hash_table_lookup(r->byid, l->data);

        if (rec)
            json_array_add_object_element(arr, json_object_ref(rec));
    }
    g_mutex_unlock(&r->lock);
    return arr;
}

JsonObject *
cocoAgentRecordsGet(CocoAgentRecords *r, const char *id)
{
    JsonObject *rec;

    g_mutex_lock(&r->lock);
    rec = g_hash_table_lookup(r->byid, id);
    if (rec)
        json_object_ref(rec);
    g_mutex_unlock(&r->lock);
    return rec;
}

JsonObject *
cocoAgentRecordsFindSession(CocoAgentRecords *r, guint64 session,
                            const char *role)
{
    g_autofree char *sid =
        g_strdup_printf("%016" G_GINT64_MODIFIER "x", session);
    JsonObject *found = NULL;
    GList *l;

    g_mutex_lock(&r->lock);
    for (l = r->order.tail; l && !found; l = l->prev) {
        JsonObject *rec = g_hash_table_lookup(r->byid, l->data);

        if (rec && STREQ_NULLABLE(cocoJsonString(rec, "session"), sid) &&
            (!role || STREQ_NULLABLE(cocoJsonString(rec, "role"), role)))
            found = json_object_ref(rec);
    }
    g_mutex_unlock(&r->lock);
    return found;
}

JsonObject *
cocoAgentRecordsFindNew(CocoAgentRecords *r, const char *uuid, const char *role,
                        GHashTable *known)
{
    JsonObject *found = NULL;
    GList *l;

    g_mutex_lock(&r->lock);
    for (l = r->order.tail; l && !found; l = l->prev) {
        JsonObject *rec = g_hash_table_lookup(r->byid, l->data);
        const char *u = rec ? cocoJsonString(rec, "uuid") : NULL;

        if (rec && (!known || !g_hash_table_contains(known, l->data)) && u &&
            g_ascii_strcasecmp(u, uuid) == 0 &&
            STREQ_NULLABLE(cocoJsonString(rec, "role"), role))
            found = json_object_ref(rec);
    }
    g_mutex_unlock(&r->lock);
    return found;
}

GHashTable *
cocoAgentRecordsIds(CocoAgentRecords *r)
{
    GHashTable *ids =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GList *l;

    g_mutex_lock(&r->lock);
    for (l = r->order.head; l; l = l->next)
        g_hash_table_add(ids, g_strdup(l->data));
    g_mutex_unlock(&r->lock);
    return ids;
}

guint
cocoAgentRecordsCount(CocoAgentRecords *r)
{
    guint n;

    g_mutex_lock(&r->lock);
    n = g_queue_get_length(&r->order);
    g_mutex_unlock(&r->lock);
    return n;
}

/* ---- at start ---------------------------------------------------------- */

typedef struct {
    char *id;
    gint64 mtime;
} CocoAgentRecordFile;

static gint
cocoAgentRecordFileCmp(gconstpointer a, gconstpointer b)
{
    const CocoAgentRecordFile *x = a;
    const CocoAgentRecordFile *y = b;

    if (x->mtime != y->mtime)
        return x->mtime < y->mtime ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void
cocoAgentRecordFileClear(gpointer p)
{
    g_free(((CocoAgentRecordFile *)p)->id);
}

/* One record file, checked: a JSON object with a string id matching the
 * file's name, at most COCO_AGENT_RECORD_FILE_MAX bytes. */
static JsonObject *
cocoAgentRecordRead(CocoAgentRecords *r, const char *id, GError **error)
{
    g_autofree char *path = cocoAgentRecordPath(r, id);
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonObject) rec = NULL;
    size_t len = 0;

    if (!(text = cocoFileReadRegular(path, COCO_AGENT_RECORD_FILE_MAX, &len,
                                     &err))) {
        if (g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_INVAL) ||
            g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_FAILED))
            cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("the record '%1$s' is not a regular file of at most '%2$u' bytes"),
                path, COCO_AGENT_RECORD_FILE_MAX);
        else
            cocoErrorSet(error, COCO_ERROR_SYSTEM,
                         _("cannot read '%1$s': %2$s"), path, err->message);
        return NULL;
    }
    if (!(rec = cocoProtoParseJson(text, len, COCO_AGENT_RECORD_FILE_MAX,
                                   _("migration record"), error)))
        return NULL;
    if (!STREQ_NULLABLE(cocoJsonString(rec, "id"), id)) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("the record '%1$s' does not hold the migration '%2$s'"),
                     path, id);
        return NULL;
    }
    return g_steal_pointer(&rec);
}

int
cocoAgentRecordsLoad(CocoAgentRecords *r, guint *interrupted, GError **error)
{
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GArray) files =
        g_array_new(FALSE, FALSE, sizeof(CocoAgentRecordFile));
    const char *name;
    guint first = 0;
    guint i;

    *interrupted = 0;
    g_array_set_clear_func(files, cocoAgentRecordFileClear);
    if (!(dir = g_dir_open(r->dir, 0, &err))) {
        if (g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return 0;
        return cocoErrorSet(error, COCO_ERROR_SYSTEM,
                            _("cannot read the state directory '%1$s': %2$s"),
                            r->dir, err->message);
    }
    while ((name = g_dir_read_name(dir))) {
        CocoAgentRecordFile f;
        g_autofree char *path = NULL;
        struct stat st;

        if (!g_str_has_suffix(name, ".json") || name[0] == '.')
            continue;
        f.id = g_strndup(name, strlen(name) - 5);
        if (!cocoAgentRecordIdValid(f.id)) {
            g_free(f.id);
            continue;
        }
        path = g_build_filename(r->dir, name, NULL);
        f.mtime = g_stat(path, &st) == 0 ? (gint64)st.st_mtime : 0;
        g_array_append_val(files, f);
    }
    g_array_sort(files, cocoAgentRecordFileCmp);
    /* Only the newest max_count are read at all. */
    if (files->len > r->max_count)
        first = files->len - r->max_count;
    for (i = first; i < files->len; i++) {
        const char *id = g_array_index(files, CocoAgentRecordFile, i).id;
        g_autoptr(GError) rerr = NULL;
        g_autoptr(JsonObject) rec = cocoAgentRecordRead(r, id, &rerr);

        if (!rec) {
            g_warning("virtcocod: record skipped: %s", rerr->message);
            continue;
        }
        if (!cocoAgentRecordIsFinal(rec)) {
            g_autofree char *why = g_strdup_printf(
                _("the host agent stopped while the migration was in state '%1$s'; its firmware session ended with it"),
                cocoJsonStringDefault(rec, "state", "?"));

            json_object_set_string_member(
                rec, "interrupted_in",
                cocoJsonStringDefault(rec, "state", "?"));
            json_object_set_string_member(
                rec, "state",
                cocoPhaseStateTypeToString(COCO_PHASE_STATE_INTERRUPTED));
            json_object_set_boolean_member(rec, "may_run", false);
            json_object_set_boolean_member(rec, "final", true);
            json_object_set_string_member(rec, "failure", why);
            json_object_set_string_member(
                rec, "failure_code",
                cocoErrorCodeToString(COCO_ERROR_MIGRATION_ABORTED));
            (*interrupted)++;
            if (cocoAgentRecordWrite(r, id, rec, &rerr) < 0) {
                g_warning("virtcocod: %s", rerr->message);
                json_object_set_string_member(rec, "record_error",
                                              rerr->message);
            }
        }
        g_mutex_lock(&r->lock);
        if (!g_hash_table_contains(r->byid, id))
            g_queue_push_tail(&r->order, g_strdup(id));
        g_hash_table_replace(r->byid, g_strdup(id), g_steal_pointer(&rec));
        g_mutex_unlock(&r->lock);
    }
    cocoAgentRecordsPrune(r);
    return 0;
}
