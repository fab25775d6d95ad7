/*
 * cocoqmprelay.h: the QMP relay between libvirt and one QEMU
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "qmp/cocoqmpagent.h"

#include <json-glib/json-glib.h>

typedef struct _CocoQmpRelay CocoQmpRelay;

/*
 * A relay for one QEMU. @agent (consumed; may be NULL) is the host agent
 * hook: with no agent the relay passes everything through unchanged,
 * never touches x-ignore-shared and holds no command.
 */
CocoQmpRelay *cocoQmpRelayNew(GMainContext *ctx, CocoQmpAgent *agent);
void cocoQmpRelayFree(CocoQmpRelay *relay);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoQmpRelay, cocoQmpRelayFree);

/* QEMU's vIOMMU (libvirt's @model name, NULL: none; @awBits 0: not set):
 * a VFIO device hot-plugged behind a wide one is checked (the agent's
 * gate 'hostdev'; docs/hook.rst, "Hot-plug"). */
void cocoQmpRelaySetViommu(CocoQmpRelay *relay, const char *model,
                           unsigned int awBits);

/* Read the VFIO interposer's leak reports from the datagram socket @fd
 * (consumed) and forward each to the agent as the event 'vfio-leak'. */
void cocoQmpRelaySetVfioReport(CocoQmpRelay *relay, int fd);

/* Log every line passed or injected to @fd (consumed). */
void cocoQmpRelaySetTrace(CocoQmpRelay *relay, int fd);

/*
 * Relay between @clientFd (libvirt's end) and @qemuFd (a fresh QMP
 * connection to QEMU). Both are consumed. The session ends when either
 * side closes; closing one side closes the other, so QEMU starts a new
 * QMP session for the next libvirt connection.
 */
int cocoQmpRelayAddSession(CocoQmpRelay *relay, int clientFd, int qemuFd,
                           GError **error);

/*
 * Accept libvirt's connections on the listening socket @listenFd
 * (consumed) and open a QEMU connection to the unix socket @qemuPath for
 * each.
 */
int cocoQmpRelayListen(CocoQmpRelay *relay, int listenFd, const char *qemuPath,
                       GError **error);

guint cocoQmpRelayGetSessionCount(CocoQmpRelay *relay);

/* The state reported by the relay's own command 'x-coco-query-relay'. */
JsonObject *cocoQmpRelayQueryState(CocoQmpRelay *relay);
