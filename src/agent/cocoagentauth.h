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
