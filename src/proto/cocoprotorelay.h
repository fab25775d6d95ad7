/*
 * cocoprotorelay.h: the local protocol of virtcocod's unix socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One JSON object per line. The relays (qemu-coco, one per QEMU) and the
 * local clients (virt-coco) send requests; the agent answers and, for a
 * relay, sends verdicts and requests of its own. docs/qemu-coco.rst
 * ("Agent protocol") and docs/virtcocod.rst describe every message; this
 * header is the one definition both ends use (cocoprotorelay.c holds the
 * tables).
 *
 * Limits: a line is at most COCO_RELAY_LINE_MAX bytes before the relay's
 * hello was accepted and COCO_RELAY_LINE_MAX_AUTH after it (answers of the
 * agent: COCO_RELAY_REPLY_MAX, for the status with every record).
 */

#pragma once

#include "internal.h"
#include "proto/cocoproto.h"
#include "util/cocoenum.h"

#define COCO_RELAY_PROTOCOL_VERSION 2
/* Where virtcocod listens and qemu-coco connects unless configured. */
#define COCO_RELAY_DEFAULT_SOCKET "/run/libvirt-coco/agent.sock"
#define COCO_RELAY_LINE_MAX (16U * 1024U)
#define COCO_RELAY_LINE_MAX_AUTH (64U * 1024U)
#define COCO_RELAY_REPLY_MAX (32U * 1024U * 1024U)
#define COCO_RELAY_NAME_MAX 1024
#define COCO_RELAY_PATH_MAX 4096
#define COCO_RELAY_REASON_MAX 4096
#define COCO_RELAY_HOST_MAX 1024
#define COCO_RELAY_RAM_MAX 8

/* ---- relay / client -> agent ------------------------------------------- */

typedef enum {
    COCO_RELAY_MSG_HELLO = 0, /* a relay says which QEMU it serves */
    COCO_RELAY_MSG_EVENT, /* what it saw on the monitor */
    COCO_RELAY_MSG_GATE, /* a held command: the agent's verdict, please */
    COCO_RELAY_MSG_STATUS, /* every migration record (status readers) */
    COCO_RELAY_MSG_PROBE, /* who is this agent (anyone) */
    COCO_RELAY_MSG_DOMAIN, /* is this domain's relay connected */
    COCO_RELAY_MSG_PEER_PROBE, /* probe a peer agent for me */
    COCO_RELAY_MSG_PEER_STATUS, /* a peer agent's record of a migration */
    COCO_RELAY_MSG_RECOVER, /* reconcile a frozen source with its peer */
    COCO_RELAY_MSG_LAST
} CocoRelayMsgType;
COCO_ENUM_DECL(cocoRelayMsg);

/* The relay's view of its QEMU's part in a migration. */
typedef enum {
    COCO_RELAY_ROLE_NONE = 0,
    COCO_RELAY_ROLE_SOURCE,
    COCO_RELAY_ROLE_DESTINATION,
    COCO_RELAY_ROLE_LAST
} CocoRelayRole;
COCO_ENUM_DECL(cocoRelayRole);

typedef enum {
    COCO_RELAY_JOB_MIGRATION = 0, /* the guest moves to another QEMU */
    COCO_RELAY_JOB_IMAGE, /* save, snapshot, dump, restore */
    COCO_RELAY_JOB_LAST
} CocoRelayJob;
COCO_ENUM_DECL(cocoRelayJob);

/* The commands a relay holds for a verdict. */
typedef enum {
    COCO_RELAY_GATE_SWITCHOVER = 0, /* migrate-continue at pre-switchover */
    COCO_RELAY_GATE_CONT, /* cont after a migration */
    COCO_RELAY_GATE_MIGRATE, /* the source's migrate */
    COCO_RELAY_GATE_HOSTDEV, /* device_add of a VFIO device, wide vIOMMU */
    COCO_RELAY_GATE_LAST
} CocoRelayGate;
COCO_ENUM_DECL(cocoRelayGate);

/* What a relay reports. */
typedef enum {
    COCO_RELAY_EVENT_MIGRATE = 0, /* source: a job starts (libvirt's migrate) */
    COCO_RELAY_EVENT_MIGRATE_INCOMING, /* destination: a job starts */
    COCO_RELAY_EVENT_MIGRATION, /* a MIGRATION status (failed, ...) */
    COCO_RELAY_EVENT_MIGRATE_CANCEL, /* libvirt cancelled during precopy */
    COCO_RELAY_EVENT_PARAMETERS, /* libvirt's downtime limit or bandwidth */
    COCO_RELAY_EVENT_RUN_STATE, /* the guest stopped or runs (STOP/RESUME) */
    COCO_RELAY_EVENT_VFIO_LEAK, /* QEMU's VFIO interposer reported a leak */
    COCO_RELAY_EVENT_VFIO_STATE, /* what QEMU's VFIO devices hold now */
    COCO_RELAY_EVENT_LAST
} CocoRelayEventKind;
COCO_ENUM_DECL(cocoRelayEventKind);

typedef struct {
    char *path;
} CocoRelayRam;

/* The most VFIO devices a state names. */
#define COCO_RELAY_VFIO_DEVICES_MAX 32
#define COCO_RELAY_VFIO_NAME_MAX 64

typedef struct {
    char *name; /* "0000:03:00.0" */
} CocoRelayVfioDevice;

/* What the VFIO interposer in QEMU says it holds (docs/vfio.rst, "The
 * state report"): the devices QEMU has open (named ones in @devices,
 * all of them in @open) and the DMA mappings its address spaces keep. */
typedef struct {
    GPtrArray *devices; /* CocoRelayVfioDevice */
    gint64 open;
    gint64 spaces;
    gint64 mappings;
    gint64 mapped_bytes;
} CocoRelayVfioState;

typedef struct {
    gint64 version; /* COCO_RELAY_PROTOCOL_VERSION of the relay */
    bool has_version;
    gint64 pid; /* QEMU's */
    char *name;
    char *uuid;
    GPtrArray *ram; /* CocoRelayRam */
    gint64 vcpus;
    bool has_vcpus;
} CocoRelayHello;

typedef struct {
    int role; /* CocoRelayRole */
    bool has_role;
    int job; /* CocoRelayJob */
    bool has_job;
    char *uri;
    char *peer; /* "host:port", "[v6]:port" or "unix:..." */
    char *status; /* MIGRATION */
    bool ignore_shared;
    bool has_ignore_shared;
    gint64 downtime_limit; /* ms: migrate-set-parameters downtime-limit */
    bool has_downtime_limit;
    gint64 max_bandwidth; /* bytes/s: max-bandwidth (0: unlimited) */
    bool has_max_bandwidth;
    bool running; /* run-state */
    bool has_running;
    /* vfio-leak: the leak described (ranges included); migrate: the last
     * leak, repeated in case the event was lost (docs/vfio.rst). */
    char *reason;
    char *vfio_leak;
    gint64 count; /* vfio-leak: mappings that stay pinned */
    bool has_count;
    CocoRelayVfioState *vfio; /* vfio-state */
} CocoRelayEventData;

typedef struct {
    int event; /* CocoRelayEventKind */
    CocoRelayEventData *data;
} CocoRelayEvent;

typedef struct {
    gint64 id;
    int gate; /* CocoRelayGate */
    int role; /* CocoRelayRole */
    bool has_role;
} CocoRelayGateReq;

typedef struct {
    char *uuid;
} CocoRelayDomainReq;

typedef struct {
    char *host;
} CocoRelayPeerProbeReq;

typedef struct {
    char *host;
    char *id; /* the migration id on this host */
    guint64 session;
    bool has_session;
} CocoRelayPeerStatusReq;

typedef struct {
    char *id; /* the migration to recover (a frozen source) */
} CocoRelayRecoverReq;

/* Requests arrive on the agent's socket: this schema parses them. */
extern const CocoProtoSchema cocoRelayRequestSchema;

/* An "event" request line from its parts: @event one of
 * CocoRelayEventKind's names, @data (may be NULL) checked against the
 * event's definition, as the agent will. */
char *cocoRelayBuildEvent(const char *event, JsonObject *data, GError **error);

/* ---- agent -> relay / client ------------------------------------------- */

typedef enum {
    COCO_RELAY_REPLY_WELCOME = 0, /* hello accepted */
    COCO_RELAY_REPLY_REFUSED, /* hello (or request) refused; closes */
    COCO_RELAY_REPLY_VERDICT, /* a gate's verdict */
    COCO_RELAY_REPLY_PROGRESS, /* the private memory's copy */
    COCO_RELAY_REPLY_CANCEL, /* cancel QEMU's migration */
    COCO_RELAY_REPLY_PAUSE, /* keep the vCPUs stopped */
    COCO_RELAY_REPLY_RESUME, /* undo pause: resume if the relay stopped it */
    COCO_RELAY_REPLY_STATUS,
    COCO_RELAY_REPLY_PROBE,
    COCO_RELAY_REPLY_DOMAIN,
    COCO_RELAY_REPLY_PEER_PROBE,
    COCO_RELAY_REPLY_PEER_STATUS,
    COCO_RELAY_REPLY_RECOVER,
    COCO_RELAY_REPLY_ERROR, /* a request failed (the connection stays) */
    COCO_RELAY_REPLY_LAST
} CocoRelayReplyType;
COCO_ENUM_DECL(cocoRelayReply);

typedef struct {
    gint64 version;
} CocoRelayWelcome;

typedef struct {
    char *reason;
} CocoRelayReason; /* refused, cancel, pause, resume, error */

typedef struct {
    gint64 id;
    bool release;
    char *reason;
} CocoRelayVerdict;

typedef struct {
    gint64 id;
    char *phase;
    gint64 total;
    gint64 transferred;
    gint64 remaining;
    gint64 pages;
    gint64 epoch;
    gint64 rate;
    gint64 dirty_rate;
    gint64 elapsed_ms;
    gint64 expected_downtime; /* ms: the precopy policy's predicted
                                 blackout (absent: not predicted yet) */
    bool has_expected_downtime;
} CocoRelayProgress;

typedef struct {
    JsonArray *migrations;
} CocoRelayStatusReply;

typedef struct {
    char *version;
    char *firmware;
    JsonObject *platform;
    gint64 port;
    gint64 peer_port;
    gint64 protocol;
    bool has_protocol;
} CocoRelayProbeReply;

typedef struct {
    char *uuid;
    char *name;
    bool relay;
    gint64 qemu_pid;
    bool has_qemu_pid;
    char *migration; /* the current or last migration's id */
    char *state;
    CocoRelayVfioState *vfio; /* the relay's last VFIO state, if any */
    char *vfio_leak; /* the domain's recorded VFIO leak, if any */
} CocoRelayDomainReply;

typedef struct {
    char *host;
    JsonObject *probe;
} CocoRelayPeerProbeReply;

typedef struct {
    char *host;
    JsonObject *record;
} CocoRelayPeerStatusReply;

typedef struct {
    char *id;
    char *state;
    char *message;
} CocoRelayRecoverReply;

extern const CocoProtoSchema cocoRelayReplySchema;

/* The probe answer's platform: id, name, tcb. */
typedef struct {
    char *id;
    char *name;
    JsonObject *tcb;
} CocoRelayPlatform;
extern const CocoProtoStruct cocoRelayPlatformDef;
