/*
 * cocoagentconfig.h: the configuration of virtcocod, the host agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A GKeyFile, group [virtcocod] (docs/virtcocod.rst lists every key).
 * cocoAgentConfigInit() sets the defaults, cocoAgentConfigLoad() reads a
 * file over them, the command line overrides single fields afterwards and
 * cocoAgentConfigValidate() checks the result.
 */

#pragma once

#include "internal.h"
#include "agent/cocoagenttls.h"
#include "proto/cocoprotorelay.h"

#include <stdbool.h>
#include <stdint.h>

/* meson installs the shipped file there (data/virtcocod.conf) */
#define COCO_AGENT_DEFAULT_CONFIG COCO_SYSCONFDIR "/libvirt-coco/virtcocod.conf"
#define COCO_AGENT_DEFAULT_SOCKET COCO_RELAY_DEFAULT_SOCKET
#define COCO_AGENT_DEFAULT_PORT 49300
#define COCO_AGENT_DEFAULT_PLATFORM "/var/lib/libvirt-coco/platform.conf"
#define COCO_AGENT_DEFAULT_STATE_DIR "/var/lib/libvirt-coco/migrations"
#define COCO_AGENT_DEFAULT_PID_DIR "/run/libvirt/qemu"
#define COCO_AGENT_DEFAULT_PEER_TIMEOUT 30
#define COCO_AGENT_DEFAULT_LIBVIRT_URI "qemu:///system"
#define COCO_AGENT_DEFAULT_STATUS_GROUP "virtcoco"
#define COCO_AGENT_DEFAULT_HEARTBEAT 2
#define COCO_AGENT_DEFAULT_PEER_DEADLINE 15
#define COCO_AGENT_DEFAULT_SWITCHOVER_TIMEOUT 60
#define COCO_AGENT_DEFAULT_HOLD_TIMEOUT 5
#define COCO_AGENT_DEFAULT_RECONNECT_WINDOW 300
#define COCO_AGENT_DEFAULT_MAX_UNAUTH 64
#define COCO_AGENT_DEFAULT_MAX_UNAUTH_PER_ADDRESS 8
#define COCO_AGENT_DEFAULT_MAX_RELAYS_PER_UID 32
#define COCO_AGENT_DEFAULT_MAX_MIGRATIONS 64
#define COCO_AGENT_DEFAULT_RECORDS_MAX 1000
#define COCO_AGENT_DEFAULT_RECORDS_MAX_AGE (30U * 24U * 3600U)

typedef struct {
    char *socket_path; /* the relays' unix socket */
    char *listen_address; /* TCP address the peer agents connect to */
    unsigned int port; /* TCP port we listen on (0: any, for tests) */
    unsigned int peer_port; /* port of the peer agents (0: same as port) */
    char *platform_file; /* emulated platform identity */
    char *state_dir; /* one JSON record per migration */
    char *firmware; /* "emulated" */
    unsigned int streams; /* forward streams per migration */
    unsigned int pages_per_bundle;
    unsigned int vcpus; /* vCPUs when the relay does not say */
    unsigned int precopy_rounds; /* rounds before the switchover */
    char *pid_dir; /* libvirt's <name>.pid files */
    char **qemu_binaries; /* executables a QEMU pid may run */
    unsigned int peer_timeout; /* seconds to wait for a peer */
    unsigned int heartbeat_interval; /* seconds between heartbeats */
    unsigned int peer_deadline; /* a peer silent this long is lost */
    unsigned int switchover_timeout; /* the agent's switchover deadline */
    unsigned int hold_timeout; /* a cont held while a token's fate is
                                  unknown */
    unsigned int reconnect_window; /* seconds a source keeps reconnecting */
    unsigned int max_unauthenticated; /* peer connections, all addresses */
    unsigned int max_unauthenticated_per_address;
    unsigned int max_relays_per_uid; /* unidentified relay connections */
    unsigned int max_migrations; /* workers at once */
    unsigned int records_max; /* records kept */
    unsigned int records_max_age; /* seconds a final record is kept, 0:
                                     forever */
    char *dbus; /* D-Bus API: "none", "session" or "system" */
    char *libvirt_uri; /* the local libvirt, for D-Bus Migrate() */
    char *status_group; /* may read the status too; NULL: root only */
    CocoAgentTlsConfig tls; /* tls_* and handshake_timeout */
    bool verbose;
    bool quiet; /* no event log lines (tests) */
} CocoAgentConfig;

void cocoAgentConfigInit(CocoAgentConfig *cfg);
void cocoAgentConfigClear(CocoAgentConfig *cfg);
/* Read @path over the current values. A missing file is an error only
 * when @required. */
int cocoAgentConfigLoad(CocoAgentConfig *cfg, const char *path, bool required,
                        GError **error);
int cocoAgentConfigValidate(const CocoAgentConfig *cfg, GError **error);
void cocoAgentConfigCopy(CocoAgentConfig *dst, const CocoAgentConfig *src);
