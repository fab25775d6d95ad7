/*
 * cococlientrecord.h: an agent's record of one migration, read by clients
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The agents keep one JSON record per migration (docs/virtcocod.rst,
 * "Records and logs") and serve them through "status" and "peer-status".
 * A client reads a record once, with typed getters, into this structure;
 * the questions it asks of a record ("is it over?", "did it succeed?",
 * "how far is it?") are answered here and nowhere else in the client.
 */

#pragma once

#include "internal.h"
#include "migration/cocophase.h"

#include <json-glib/json-glib.h>
#include <stdbool.h>

/* One entry of the record's timeline: a phase event the session
 * handled. */
typedef struct {
    double at_ms; /* since the session started */
    double duration_ms;
    char *event;
    char *phase; /* the libvirt phase that caused it */
    char *from;
    char *to;
    char **steps; /* the sub-commands run, NULL-terminated */
    char *error; /* the error nick it failed with, or NULL */
} CocoClientRecordEntry;

/* One sample of the transfer's progress ("samples"). */
typedef struct {
    double at_ms;
    guint64 bytes;
    guint64 pages;
    guint64 epoch;
} CocoClientRecordSample;

typedef struct {
    char *id;
    char *domain;
    char *uuid;
    char *role; /* "source" or "destination" */
    char *peer; /* the peer agent's address, or NULL */
    char *session; /* 16 hex digits, or NULL */
    char *started; /* ISO 8601, or NULL */
    char *state; /* the phase engine's state, or "failed" */
    CocoPhaseState phase_state; /* COCO_PHASE_STATE_LAST: not one */
    char *failure;
    char *failure_code;
    guint64 streams;
    guint64 vcpus;
    guint64 pages; /* the guest's private pages */
    bool has_transfer;
    guint64 bytes; /* transfer: sealed bytes sent or received */
    guint64 sent_pages; /* transfer: pages, re-sent ones included */
    guint64 bundles;
    guint64 epoch;
    guint64 elapsed_ms;
    guint64 rate;
    guint64 rounds; /* counters */
    guint64 fw_calls;
    guint64 blackout_us;
    guint64 downtime_us;
    guint64 messages_sent;
    guint64 messages_received;
    guint64 message_bytes_sent;
    guint64 message_bytes_received;
    gint64 session_start_us; /* wall clock µs of the session's start, or -1 */
    GPtrArray *timeline; /* CocoClientRecordEntry */
    GArray *samples; /* CocoClientRecordSample */
    JsonObject *json; /* the record as the agent sent it */
} CocoClientRecord;

/*
 * cocoClientRecordParse:
 * Read the record @obj (from the agent named @from, for messages):
 * "id", "role" and "state" must be strings, every other member has its
 * documented type or is ignored.
 */
CocoClientRecord *cocoClientRecordParse(JsonObject *obj, const char *from,
                                        GError **error);
void cocoClientRecordFree(CocoClientRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoClientRecord, cocoClientRecordFree)

/* The session ended (successfully or not) or never started; a state
 * this client does not know counts as ended. */
bool cocoClientRecordIsOver(const CocoClientRecord *rec);

/* The guest moved through the agents: the destination committed (and,
 * on the source, FINISH ran or is about to). */
bool cocoClientRecordSucceeded(const CocoClientRecord *rec);

/* Percent of the guest's private pages sent at least once (a
 * destination: of its memory's bytes received), 0..100; 100 only when the
 * record succeeded. */
unsigned int cocoClientRecordProgress(const CocoClientRecord *rec);

/* The host of the record's peer address ("host:port", "[v6]:port"), or
 * NULL when it names none. */
char *cocoClientRecordPeerHost(const CocoClientRecord *rec);

/* The wall-clock time the session's clock (at_ms 0) started, in µs since
 * the epoch ("session_start_us", else "started"), or -1 when the record
 * names none. */
gint64 cocoClientRecordStartedUs(const CocoClientRecord *rec);

/*
 * cocoClientRecordFind:
 * In the agent's records @records: the one whose id is @key, else the
 * newest whose domain name or UUID is @key (NULL: none).
 */
JsonObject *cocoClientRecordFind(JsonArray *records, const char *key);
