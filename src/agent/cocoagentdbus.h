/*
 * cocoagentdbus.h: the D-Bus API of virtcocod (docs/dbus.rst)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Bus name and interface org.libvirtcoco.Agent1 at /org/libvirtcoco/Agent1,
 * the read-only methods Validate, Capabilities and GetMigrations and the
 * Version property. On the system bus every call is authorised by polkit
 * (action org.libvirtcoco.agent.read) for the calling bus name; on a
 * session bus only the agent's own user may call.
 */

#pragma once

#include "internal.h"
#include "agent/cocoagent.h"

#define COCO_AGENT_DBUS_NAME "org.libvirtcoco.Agent1"
#define COCO_AGENT_DBUS_PATH "/org/libvirtcoco/Agent1"
#define COCO_AGENT_DBUS_INTERFACE "org.libvirtcoco.Agent1"
#define COCO_AGENT_DBUS_ERROR_PREFIX "org.libvirtcoco.Error."
#define COCO_AGENT_DBUS_JOB_INTERFACE "org.libvirtcoco.Job1"
#define COCO_AGENT_DBUS_ACTION_READ "org.libvirtcoco.agent.read"
#define COCO_AGENT_DBUS_ACTION_MIGRATE "org.libvirtcoco.agent.migrate"

typedef struct _CocoAgentDBus CocoAgentDBus;

/* Whether this build has the D-Bus API (it needs polkit-gobject-1). */
bool cocoAgentDBusSupported(void);

/* Check @bus: "none", "session" or "system". */
int cocoAgentDBusCheckBus(const char *bus, GError **error);

/* Connect to @bus ("session" or "system"), export @agent's object and own
 * the bus name; serve in the thread-default main context. */
CocoAgentDBus *cocoAgentDBusNew(CocoAgent *agent, const char *bus,
                                GError **error);
void cocoAgentDBusFree(CocoAgentDBus *dbus);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoAgentDBus, cocoAgentDBusFree)

/* The D-Bus error name of a COCO_ERROR code: the prefix and the code's nick
 * in CamelCase ("xml-malformed" -> "org.libvirtcoco.Error.XmlMalformed"). */
char *cocoAgentDBusErrorName(int code);
