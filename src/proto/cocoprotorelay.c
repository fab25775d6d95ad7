/*
 * cocoprotorelay.c: the tables of virtcocod's local protocol
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "proto/cocoprotorelay.h"
#include "util/cocoerror.h"

COCO_ENUM_IMPL(cocoRelayMsg, COCO_RELAY_MSG_LAST, "hello", "event", "gate",
               "status", "probe", "domain", "peer-probe", "peer-status",
               "recover");
COCO_ENUM_IMPL(cocoRelayRole, COCO_RELAY_ROLE_LAST, "none", "source",
               "destination");
COCO_ENUM_IMPL(cocoRelayJob, COCO_RELAY_JOB_LAST, "migration", "image");
COCO_ENUM_IMPL(cocoRelayGate, COCO_RELAY_GATE_LAST, "pre-switchover", "cont",
               "migrate", "hostdev");
COCO_ENUM_IMPL(cocoRelayEventKind, COCO_RELAY_EVENT_LAST, "migrate",
               "migrate-incoming", "MIGRATION", "migrate-cancel",
               "migrate-parameters", "run-state", "vfio-leak", "vfio-state");
COCO_ENUM_IMPL(cocoRelayReply, COCO_RELAY_REPLY_LAST, "welcome", "refused",
               "verdict", "progress", "cancel", "pause", "resume", "status",
               "probe", "domain", "peer-probe", "peer-status", "recover",
               "error");

#define NAMES(x) x##TypeList

/* ---- requests ---------------------------------------------------------- */

static const CocoProtoField cocoRelayRamFields[] = {
    COCO_PROTO_F(CocoRelayRam, path, "path", COCO_PROTO_STRING, true, 1,
                 COCO_RELAY_PATH_MAX),
};
COCO_PROTO_STRUCT(cocoRelayRamDef, "hello.ram", CocoRelayRam,
                  cocoRelayRamFields);

static const CocoProtoField cocoRelayHelloFields[] = {
    COCO_PROTO_F_HAS(CocoRelayHello, version, has_version, "version",
                     COCO_PROTO_INT, 1, 1000),
    COCO_PROTO_F(CocoRelayHello, pid, "pid", COCO_PROTO_INT, true, 2, G_MAXINT),
    COCO_PROTO_F(CocoRelayHello, name, "name", COCO_PROTO_STRING, true, 1,
                 COCO_RELAY_NAME_MAX),
    COCO_PROTO_F(CocoRelayHello, uuid, "uuid", COCO_PROTO_UUID, true, 0, 0),
    COCO_PROTO_F_SUB(CocoRelayHello, ram, "ram", COCO_PROTO_ARRAY, false,
                     COCO_RELAY_RAM_MAX, &cocoRelayRamDef),
    COCO_PROTO_F_HAS(CocoRelayHello, vcpus, has_vcpus, "vcpus", COCO_PROTO_INT,
                     0, 4096),
};
COCO_PROTO_STRUCT(cocoRelayHelloDef, "hello", CocoRelayHello,
                  cocoRelayHelloFields);

static const CocoProtoField cocoRelayVfioDeviceFields[] = {
    COCO_PROTO_F(CocoRelayVfioDevice, name, "name", COCO_PROTO_STRING, true, 1,
                 COCO_RELAY_VFIO_NAME_MAX),
};
COCO_PROTO_STRUCT(cocoRelayVfioDeviceDef, "vfio.devices", CocoRelayVfioDevice,
                  cocoRelayVfioDeviceFields);

static const CocoProtoField cocoRelayVfioStateFields[] = {
    COCO_PROTO_F_SUB(CocoRelayVfioState, devices, "devices", COCO_PROTO_ARRAY,
                     true, COCO_RELAY_VFIO_DEVICES_MAX,
                     &cocoRelayVfioDeviceDef),
    COCO_PROTO_F(CocoRelayVfioState, open, "open", COCO_PROTO_INT, true, 0,
                 G_MAXINT32),
    COCO_PROTO_F(CocoRelayVfioState, spaces, "spaces", COCO_PROTO_INT, true, 0,
                 G_MAXINT32),
    COCO_PROTO_F(CocoRelayVfioState, mappings, "mappings", COCO_PROTO_INT, true,
                 0, G_MAXINT64),
    COCO_PROTO_F(CocoRelayVfioState, mapped_bytes, "mapped-bytes",
                 COCO_PROTO_INT, true, 0, G_MAXINT64),
};
COCO_PROTO_STRUCT(cocoRelayVfioStateDef, "vfio", CocoRelayVfioState,
                  cocoRelayVfioStateFields);

static const CocoProtoField cocoRelayEventDataFields[] = {
    COCO_PROTO_F_ENUM_HAS(CocoRelayEventData, role, has_role, "role",
                          NAMES(cocoRelayRole)),
    COCO_PROTO_F_ENUM_HAS(CocoRelayEventData, job, has_job, "job",
                          NAMES(cocoRelayJob)),
    COCO_PROTO_F(CocoRelayEventData, uri, "uri", COCO_PROTO_STRING, false, 0,
                 COCO_RELAY_PATH_MAX),
    COCO_PROTO_F(CocoRelayEventData, peer, "peer", COCO_PROTO_STRING, false, 0,
                 COCO_RELAY_HOST_MAX),
    COCO_PROTO_F(CocoRelayEventData, status, "status", COCO_PROTO_STRING, false,
                 0, 64),
    COCO_PROTO_F_HAS(CocoRelayEventData, ignore_shared, has_ignore_shared,
                     "x-ignore-shared", COCO_PROTO_BOOL, 0, 0),
    COCO_PROTO_F_HAS(CocoRelayEventData, downtime_limit, has_downtime_limit,
                     "downtime-limit", COCO_PROTO_INT, 0, G_MAXINT64),
    COCO_PROTO_F_HAS(CocoRelayEventData, max_bandwidth, has_max_bandwidth,
                     "max-bandwidth", COCO_PROTO_INT, 0, G_MAXINT64),
    COCO_PROTO_F_HAS(CocoRelayEventData, running, has_running, "running",
                     COCO_PROTO_BOOL, 0, 0),
    COCO_PROTO_F(CocoRelayEventData, reason, "reason", COCO_PROTO_STRING, false,
                 1, COCO_RELAY_REASON_MAX),
    COCO_PROTO_F(CocoRelayEventData, vfio_leak, "vfio-leak", COCO_PROTO_STRING,
                 false, 1, COCO_RELAY_REASON_MAX),
    COCO_PROTO_F_HAS(CocoRelayEventData, count, has_count, "count",
                     COCO_PROTO_INT, 1, G_MAXINT32),
    COCO_PROTO_F_SUB(CocoRelayEventData, vfio, "vfio", COCO_PROTO_OBJECT, false,
                     0, &cocoRelayVfioStateDef),
};
COCO_PROTO_STRUCT(cocoRelayEventDataDef, "event.data", CocoRelayEventData,
                  cocoRelayEventDataFields);

static const CocoProtoField cocoRelayEventFields[] = {
    COCO_PROTO_F_ENUM(CocoRelayEvent, event, "event", true,
                      NAMES(cocoRelayEventKind)),
    COCO_PROTO_F_SUB(CocoRelayEvent, data, "data", COCO_PROTO_OBJECT, false, 0,
                     &cocoRelayEventDataDef),
};
COCO_PROTO_STRUCT(cocoRelayEventDef, "event", CocoRelayEvent,
                  cocoRelayEventFields);

static const CocoProtoField cocoRelayGateFields[] = {
    COCO_PROTO_F(CocoRelayGateReq, id, "id", COCO_PROTO_INT, true, 0,
                 G_MAXINT64),
    COCO_PROTO_F_ENUM(CocoRelayGateReq, gate, "gate", true,
                      NAMES(cocoRelayGate)),
    COCO_PROTO_F_ENUM_HAS(CocoRelayGateReq, role, has_role, "role",
                          NAMES(cocoRelayRole)),
};
COCO_PROTO_STRUCT(cocoRelayGateDef, "gate", CocoRelayGateReq,
                  cocoRelayGateFields);

typedef struct {
    bool unused;
} CocoRelayEmpty;
static const CocoProtoField cocoRelayEmptyFields[1] = {
    {.name = "-", .type = COCO_PROTO_BOOL},
};
static const CocoProtoStruct cocoRelayStatusDef = {
    "status", sizeof(CocoRelayEmpty), cocoRelayEmptyFields, 0};
static const CocoProtoStruct cocoRelayProbeDef = {
    "probe", sizeof(CocoRelayEmpty), cocoRelayEmptyFields, 0};

static const CocoProtoField cocoRelayDomainFields[] = {
    COCO_PROTO_F(CocoRelayDomainReq, uuid, "uuid", COCO_PROTO_UUID, true, 0, 0),
};
COCO_PROTO_STRUCT(cocoRelayDomainDef, "domain", CocoRelayDomainReq,
                  cocoRelayDomainFields);

static const CocoProtoField cocoRelayPeerProbeFields[] = {
    COCO_PROTO_F(CocoRelayPeerProbeReq, host, "host", COCO_PROTO_STRING, true,
                 1, COCO_RELAY_HOST_MAX),
};
COCO_PROTO_STRUCT(cocoRelayPeerProbeDef, "peer-probe", CocoRelayPeerProbeReq,
                  cocoRelayPeerProbeFields);

static const CocoProtoField cocoRelayPeerStatusFields[] = {
    COCO_PROTO_F(CocoRelayPeerStatusReq, host, "host", COCO_PROTO_STRING, true,
                 1, COCO_RELAY_HOST_MAX),
    COCO_PROTO_F(CocoRelayPeerStatusReq, id, "id", COCO_PROTO_STRING, false, 1,
                 COCO_RELAY_NAME_MAX),
    COCO_PROTO_F_HAS(CocoRelayPeerStatusReq, session, has_session, "session",
                     COCO_PROTO_HEX64, 0, 0),
};
COCO_PROTO_STRUCT(cocoRelayPeerStatusDef, "peer-status", CocoRelayPeerStatusReq,
                  cocoRelayPeerStatusFields);

static const CocoProtoField cocoRelayRecoverFields[] = {
    COCO_PROTO_F(CocoRelayRecoverReq, id, "id", COCO_PROTO_STRING, true, 1,
                 COCO_RELAY_NAME_MAX),
};
COCO_PROTO_STRUCT(cocoRelayRecoverDef, "recover", CocoRelayRecoverReq,
                  cocoRelayRecoverFields);

static const CocoProtoMessage cocoRelayRequests[] = {
    {COCO_RELAY_MSG_HELLO, &cocoRelayHelloDef},
    {COCO_RELAY_MSG_EVENT, &cocoRelayEventDef},
    {COCO_RELAY_MSG_GATE, &cocoRelayGateDef},
    {COCO_RELAY_MSG_STATUS, &cocoRelayStatusDef},
    {COCO_RELAY_MSG_PROBE, &cocoRelayProbeDef},
    {COCO_RELAY_MSG_DOMAIN, &cocoRelayDomainDef},
    {COCO_RELAY_MSG_PEER_PROBE, &cocoRelayPeerProbeDef},
    {COCO_RELAY_MSG_PEER_STATUS, &cocoRelayPeerStatusDef},
    {COCO_RELAY_MSG_RECOVER, &cocoRelayRecoverDef},
};
G_STATIC_ASSERT(G_N_ELEMENTS(cocoRelayRequests) == COCO_RELAY_MSG_LAST);

const CocoProtoSchema cocoRelayRequestSchema = {
    "relay", COCO_RELAY_LINE_MAX_AUTH, cocoRelayRequests,
    G_N_ELEMENTS(cocoRelayRequests)};

/* ---- replies ----------------------------------------------------------- */

static const CocoProtoField cocoRelayWelcomeFields[] = {
    COCO_PROTO_F(CocoRelayWelcome, version, "version", COCO_PROTO_INT, true, 1,
                 1000),
};
COCO_PROTO_STRUCT(cocoRelayWelcomeDef, "welcome", CocoRelayWelcome,
                  cocoRelayWelcomeFields);

static const CocoProtoField cocoRelayReasonFields[] = {
    COCO_PROTO_F(CocoRelayReason, reason, "reason", COCO_PROTO_STRING, true, 0,
                 COCO_RELAY_REASON_MAX),
};
COCO_PROTO_STRUCT(cocoRelayRefusedDef, "refused", CocoRelayReason,
                  cocoRelayReasonFields);
COCO_PROTO_STRUCT(cocoRelayCancelDef, "cancel", CocoRelayReason,
                  cocoRelayReasonFields);
COCO_PROTO_STRUCT(cocoRelayPauseDef, "pause", CocoRelayReason,
                  cocoRelayReasonFields);
COCO_PROTO_STRUCT(cocoRelayResumeDef, "resume", CocoRelayReason,
                  cocoRelayReasonFields);
COCO_PROTO_STRUCT(cocoRelayErrorDef, "error", CocoRelayReason,
                  cocoRelayReasonFields);

static const CocoProtoField cocoRelayVerdictFields[] = {
    COCO_PROTO_F(CocoRelayVerdict, id, "id", COCO_PROTO_INT, true, -1,
                 G_MAXINT64),
    COCO_PROTO_F(CocoRelayVerdict, release, "release", COCO_PROTO_BOOL, true, 0,
                 0),
    COCO_PROTO_F(CocoRelayVerdict, reason, "reason", COCO_PROTO_STRING, false,
                 0, COCO_RELAY_REASON_MAX),
};
COCO_PROTO_STRUCT(cocoRelayVerdictDef, "verdict", CocoRelayVerdict,
                  cocoRelayVerdictFields);

#define PROGRESS_INT(m, json)                                                  \
 COCO_PROTO_F(CocoRelayProgress, m, json, COCO_PROTO_INT, false, 0, G_MAXINT64)
static const CocoProtoField cocoRelayProgressFields[] = {
    COCO_PROTO_F(CocoRelayProgress, id, "id", COCO_PROTO_INT, true, 0,
                 G_MAXINT64),
    COCO_PROTO_F(CocoRelayProgress, phase, "phase", COCO_PROTO_STRING, false, 0,
                 64),
    COCO_PROTO_F(CocoRelayProgress, total, "total", COCO_PROTO_INT, true, 0,
                 G_MAXINT64),
    PROGRESS_INT(transferred, "transferred"),
    PROGRESS_INT(remaining, "remaining"),
    PROGRESS_INT(pages, "pages"),
    PROGRESS_INT(epoch, "epoch"),
    PROGRESS_INT(rate, "rate"),
    PROGRESS_INT(dirty_rate, "dirty_rate"),
    PROGRESS_INT(elapsed_ms, "elapsed_ms"),
    COCO_PROTO_F_HAS(CocoRelayProgress, expected_downtime,
                     has_expected_downtime, "expected_downtime", COCO_PROTO_INT,
                     0, G_MAXINT64),
};
COCO_PROTO_STRUCT(cocoRelayProgressDef, "progress", CocoRelayProgress,
                  cocoRelayProgressFields);

static const CocoProtoField cocoRelayStatusReplyFields[] = {
    COCO_PROTO_F(CocoRelayStatusReply, migrations, "migrations",
                 COCO_PROTO_JSON_ARRAY, true, 0, 100000),
};
COCO_PROTO_STRUCT(cocoRelayStatusReplyDef, "status", CocoRelayStatusReply,
                  cocoRelayStatusReplyFields);

static const CocoProtoField cocoRelayPlatformFields[] = {
    COCO_PROTO_F(CocoRelayPlatform, id, "id", COCO_PROTO_STRING, true, 64, 64),
    COCO_PROTO_F(CocoRelayPlatform, name, "name", COCO_PROTO_STRING, false, 0,
                 COCO_RELAY_HOST_MAX),
    COCO_PROTO_F(CocoRelayPlatform, tcb, "tcb", COCO_PROTO_JSON, false, 0, 0),
};
const CocoProtoStruct cocoRelayPlatformDef = {
    "probe.platform", sizeof(CocoRelayPlatform), cocoRelayPlatformFields,
    G_N_ELEMENTS(cocoRelayPlatformFields)};

static const CocoProtoField cocoRelayProbeReplyFields[] = {
    COCO_PROTO_F(CocoRelayProbeReply, version, "version", COCO_PROTO_STRING,
                 true, 1, 64),
    COCO_PROTO_F(CocoRelayProbeReply, firmware, "firmware", COCO_PROTO_STRING,
                 true, 1, 64),
    COCO_PROTO_F(CocoRelayProbeReply, platform, "platform", COCO_PROTO_JSON,
                 true, 0, 0),
    COCO_PROTO_F(CocoRelayProbeReply, port, "port", COCO_PROTO_INT, false, 0,
                 65535),
    COCO_PROTO_F(CocoRelayProbeReply, peer_port, "peer_port", COCO_PROTO_INT,
                 false, 0, 65535),
    COCO_PROTO_F_HAS(CocoRelayProbeReply, protocol, has_protocol, "protocol",
                     COCO_PROTO_INT, 1, 1000),
};
COCO_PROTO_STRUCT(cocoRelayProbeReplyDef, "probe", CocoRelayProbeReply,
                  cocoRelayProbeReplyFields);

static const CocoProtoField cocoRelayDomainReplyFields[] = {
    COCO_PROTO_F(CocoRelayDomainReply, uuid, "uuid", COCO_PROTO_UUID, true, 0,
                 0),
    COCO_PROTO_F(CocoRelayDomainReply, name, "name", COCO_PROTO_STRING, false,
                 0, COCO_RELAY_NAME_MAX),
    COCO_PROTO_F(CocoRelayDomainReply, relay, "relay", COCO_PROTO_BOOL, true, 0,
                 0),
    COCO_PROTO_F_HAS(CocoRelayDomainReply, qemu_pid, has_qemu_pid, "qemu_pid",
                     COCO_PROTO_INT, 0, G_MAXINT),
    COCO_PROTO_F(CocoRelayDomainReply, migration, "migration",
                 COCO_PROTO_STRING, false, 0, COCO_RELAY_NAME_MAX),
    COCO_PROTO_F(CocoRelayDomainReply, state, "state", COCO_PROTO_STRING, false,
                 0, 64),
    COCO_PROTO_F_SUB(CocoRelayDomainReply, vfio, "vfio", COCO_PROTO_OBJECT,
                     false, 0, &cocoRelayVfioStateDef),
    COCO_PROTO_F(CocoRelayDomainReply, vfio_leak, "vfio-leak",
                 COCO_PROTO_STRING, false, 1, COCO_RELAY_REASON_MAX),
};
COCO_PROTO_STRUCT(cocoRelayDomainReplyDef, "domain", CocoRelayDomainReply,
                  cocoRelayDomainReplyFields);

static const CocoProtoField cocoRelayPeerProbeReplyFields[] = {
    COCO_PROTO_F(CocoRelayPeerProbeReply, host, "host", COCO_PROTO_STRING, true,
                 0, COCO_RELAY_HOST_MAX),
    COCO_PROTO_F(CocoRelayPeerProbeReply, probe, "probe", COCO_PROTO_JSON, true,
                 0, 0),
};
COCO_PROTO_STRUCT(cocoRelayPeerProbeReplyDef, "peer-probe",
                  CocoRelayPeerProbeReply, cocoRelayPeerProbeReplyFields);

static const CocoProtoField cocoRelayPeerStatusReplyFields[] = {
    COCO_PROTO_F(CocoRelayPeerStatusReply, host, "host", COCO_PROTO_STRING,
                 true, 0, COCO_RELAY_HOST_MAX),
    COCO_PROTO_F(CocoRelayPeerStatusReply, record, "record", COCO_PROTO_JSON,
                 false, 0, 0),
};
COCO_PROTO_STRUCT(cocoRelayPeerStatusReplyDef, "peer-status",
                  CocoRelayPeerStatusReply, cocoRelayPeerStatusReplyFields);

static const CocoProtoField cocoRelayRecoverReplyFields[] = {
    COCO_PROTO_F(CocoRelayRecoverReply, id, "id", COCO_PROTO_STRING, true, 0,
                 COCO_RELAY_NAME_MAX),
    COCO_PROTO_F(CocoRelayRecoverReply, state, "state", COCO_PROTO_STRING, true,
                 0, 64),
    COCO_PROTO_F(CocoRelayRecoverReply, message, "message", COCO_PROTO_STRING,
                 false, 0, COCO_RELAY_REASON_MAX),
};
COCO_PROTO_STRUCT(cocoRelayRecoverReplyDef, "recover", CocoRelayRecoverReply,
                  cocoRelayRecoverReplyFields);

static const CocoProtoMessage cocoRelayReplies[] = {
    {COCO_RELAY_REPLY_WELCOME, &cocoRelayWelcomeDef},
    {COCO_RELAY_REPLY_REFUSED, &cocoRelayRefusedDef},
    {COCO_RELAY_REPLY_VERDICT, &cocoRelayVerdictDef},
    {COCO_RELAY_REPLY_PROGRESS, &cocoRelayProgressDef},
    {COCO_RELAY_REPLY_CANCEL, &cocoRelayCancelDef},
    {COCO_RELAY_REPLY_PAUSE, &cocoRelayPauseDef},
    {COCO_RELAY_REPLY_RESUME, &cocoRelayResumeDef},
    {COCO_RELAY_REPLY_STATUS, &cocoRelayStatusReplyDef},
    {COCO_RELAY_REPLY_PROBE, &cocoRelayProbeReplyDef},
    {COCO_RELAY_REPLY_DOMAIN, &cocoRelayDomainReplyDef},
    {COCO_RELAY_REPLY_PEER_PROBE, &cocoRelayPeerProbeReplyDef},
    {COCO_RELAY_REPLY_PEER_STATUS, &cocoRelayPeerStatusReplyDef},
    {COCO_RELAY_REPLY_RECOVER, &cocoRelayRecoverReplyDef},
    {COCO_RELAY_REPLY_ERROR, &cocoRelayErrorDef},
};
G_STATIC_ASSERT(G_N_ELEMENTS(cocoRelayReplies) == COCO_RELAY_REPLY_LAST);

const CocoProtoSchema cocoRelayReplySchema = {"agent", COCO_RELAY_REPLY_MAX,
                                              cocoRelayReplies,
                                              G_N_ELEMENTS(cocoRelayReplies)};

char *
cocoRelayBuildEvent(const char *event, JsonObject *data, GError **error)
{
    CocoRelayEvent ev = {0};
    char *line;
    int kind = cocoRelayEventKindTypeFromString(event);

    if (kind < 0) {
        g_autofree char *shown = cocoProtoPrintable(event);

        cocoErrorSet(error, COCO_ERROR_AGENT_PROTOCOL,
                     _("'%1$s' is not an event of the relay protocol"), shown);
        return NULL;
    }
    ev.event = kind;
    if (data &&
        !(ev.data = cocoProtoParseStruct(&cocoRelayEventDataDef, data, error)))
        return NULL;
    line = cocoProtoBuildMessage(&cocoRelayRequestSchema, COCO_RELAY_MSG_EVENT,
                                 &ev);
    cocoProtoFree(&cocoRelayEventDataDef, ev.data);
    return line;
}
