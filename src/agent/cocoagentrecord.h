/*
 * cocoagentrecord.h: the records of the migrations an agent ran
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One JSON record per migration (docs/virtcocod.rst, "Records and logs"),
 * kept in memory and in STATE_DIR/<id>.json. Thread-safe: the migrations'
 * workers update their records, the main thread reads them.
 *
 *  - Writes are atomic (a temporary file, fsync, rename). A record that
 *    cannot be written is logged at once and carries "record_error" from
 *    then on (its readers, the D-Bus job and virt-coco, show it): never
 *    lost silently.
 *  - Retention: at most @max_count records and none older than @max_age
 *    seconds once final; the oldest go first, files included.
 *  - At start, the records of the state directory are read back; one that
 *    is not final (the agent stopped during that migration) becomes
 *    "interrupted", with the state it was in and why, and is listed.
 */

#pragma once

#include "internal.h"

#include <json-glib/json-glib.h>
#include <stdbool.h>

/* A record file larger than this is not read back. */
#define COCO_AGENT_RECORD_FILE_MAX (4U * 1024U * 1024U)

typedef struct _CocoAgentRecords CocoAgentRecords;

CocoAgentRecords *cocoAgentRecordsNew(const char *dir, guint max_count,
                                      gint64 max_age_s);
void cocoAgentRecordsFree(CocoAgentRecords *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoAgentRecords, cocoAgentRecordsFree)

/*
 * Read the state directory back (at start): every record file, newest
 * kept up to the retention limits; a record that was not final becomes
 * "interrupted" (rewritten). *@interrupted counts them. Unreadable files
 * are logged and skipped.
 */
int cocoAgentRecordsLoad(CocoAgentRecords *r, guint *interrupted,
                         GError **error);

/*
 * Keep @rec (taken) as the record @id. Writes the file; on failure the
 * record keeps "record_error" and the error is returned (and logged by the
 * caller). Returns 0 or -1.
 */
int cocoAgentRecordsPut(CocoAgentRecords *r, const char *id, JsonObject *rec,
                        GError **error);

/* Apply the retention limits now. */
void cocoAgentRecordsPrune(CocoAgentRecords *r);

/* Every record, oldest first (references). */
JsonArray *cocoAgentRecordsList(CocoAgentRecords *r);

/* The record @id (a reference), or NULL. */
JsonObject *cocoAgentRecordsGet(CocoAgentRecords *r, const char *id);

/* The newest record of @session (16 hex digits in "session") in @role
 * (NULL: any), or NULL. */
JsonObject *cocoAgentRecordsFindSession(CocoAgentRecords *r, guint64 session,
                                        const char *role);

/* The newest record of domain @uuid in @role whose id is not in @known,
 * or NULL. */
JsonObject *cocoAgentRecordsFindNew(CocoAgentRecords *r, const char *uuid,
                                    const char *role, GHashTable *known);

/* The ids known now (a set). */
GHashTable *cocoAgentRecordsIds(CocoAgentRecords *r);

guint cocoAgentRecordsCount(CocoAgentRecords *r);

/* Whether a record's "state" and "role" make it final
 * (cocoPhaseStateIsFinal(); an unknown state is not final). */
bool cocoAgentRecordIsFinal(JsonObject *rec);

/*
 * Whether @rec is a source's record interrupted (the agent stopped) after
 * its start token left, not recovered since: only the destination can
 * tell whether the guest may run here again, so the source's 'cont' is
 * refused until a 'recover' learns it ("recovered" set).
 */
bool cocoAgentRecordAwaitsRecovery(JsonObject *rec);
