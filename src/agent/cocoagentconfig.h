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

#include <stdbool.h>
#include <stdint.h>

/* meson installs the shipped file there (data/virtcocod.conf) */
#define COCO_AGENT_DEFAULT_CONFIG COCO_SYSCONFDIR "/libvirt-coco/virtcocod.conf"
#define COCO_AGENT_DEFAULT_SOCKET "/run/libvirt-coco/agent.sock"
#define COCO_AGENT_DEFAULT_PORT 49300
#define COCO_AGENT_DEFAULT_PLATFORM "/var/lib/libvirt-coco/platform.conf"
#define COCO_AGENT_DEFAULT_STATE_DIR "/var/lib/libvirt-coco/migrations"
#define COCO_AGENT_DEFAULT_PID_DIR "/run/libvirt/qemu"
#define COCO_AGENT_DEFAULT_PEER_TIMEOUT 30
#define COCO_AGENT_DEFAULT_LIBVIRT_URI "qemu:///system"
#define COCO_AGENT_DEFAULT_STATUS_GROUP "virtcoco"

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
    bool require_pidfile;
    char **qemu_binaries; /* executables a QEMU pid may run */
    unsigned int peer_timeout; /* seconds to wait for a peer */
    char *dbus; /* D-Bus API: "none", "session" or "system" */
    char *libvirt_uri; /* the local libvirt, for D-Bus Migrate() */
    char *status_group; /* may read the status too; NULL: root only */
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
