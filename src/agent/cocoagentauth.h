/*
 * cocoagentauth.h: is this relay really that domain's QEMU?
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A relay (qemu-coco) says in its hello which QEMU it serves: the QEMU
 * pid, the domain name and UUID, and the RAM files the agent will map
 * with root's privileges. The agent believes none of it until
 * cocoAgentAuthCheck() has verified, from the kernel's view:
 *
 *  1. the claimed pid runs one of the configured QEMU binaries
 *     (/proc/PID/exe, resolved, not deleted);
 *  2. its command line names the domain: "-name" with "guest=NAME" (or
 *     "NAME") first, and "-uuid UUID" when a UUID is claimed;
 *  3. libvirt's PID file PID_DIR/NAME.pid holds exactly that pid (libvirt
 *     writes it before it execs the emulator; required unless the
 *     configuration says otherwise);
 *  4. the connecting process (SO_PEERCRED) is root or runs as the QEMU's
 *     user, and is either the QEMU itself or shares its mount namespace
 *     and its cgroup (the relay is forked by qemu-coco before it execs
 *     QEMU; libvirt gives every QEMU a mount namespace of its own, so
 *     another domain's QEMU running as the same user cannot pose as it).
 *
 * The RAM paths of the hello are checked separately: each must be a
 * regular file QEMU has open (a /proc/PID/fd link resolves to it).
 *
 * The relay socket's 'status' request (every migration's record) is
 * answered for root, the agent's own user and the members of the
 * configured 'status_group' (cocoAgentAuthCheckStatus()).
 */

#pragma once

#include "internal.h"
#include "agent/cocoagentconfig.h"

#include <sys/types.h>

int cocoAgentAuthCheck(const CocoAgentConfig *cfg, pid_t peer_pid,
                       uid_t peer_uid, pid_t qemu_pid, const char *name,
                       const char *uuid, GError **error);

/* Whether process @pid has @path open (compared by device and inode). */
int cocoAgentAuthCheckOpenFile(pid_t pid, const char *path, GError **error);

/* Whether user @uid, whose process runs with group @gid, belongs to
 * @group: @gid is that group, or the user database makes @uid a member
 * (its primary group, or a supplementary one by getgrouplist()).
 * Returns 1 (member), 0 (not) or -1 with COCO_ERROR_INVALID_ARG when
 * @group does not exist. */
int cocoAgentAuthGroupMember(uid_t uid, gid_t gid, const char *group,
                             GError **error);

/* Whether the caller (@uid, @gid from SO_PEERCRED) may read the migration
 * status of the agent running as @self: root, @self, or a member of
 * @group (NULL or empty: nobody else). Returns 0 when allowed, -1 with
 * COCO_ERROR_ACCESS_DENIED when not; *@group_missing tells that @group
 * does not exist (then only root and @self are allowed). */
int cocoAgentAuthCheckStatus(uid_t uid, gid_t gid, uid_t self,
                             const char *group, bool *group_missing,
                             GError **error);
