/*
 * cocoqmphmp.h: the HMP forms of the commands the relay gates
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * QMP's 'human-monitor-command' runs a line of QEMU's human monitor:
 * "cont", "migrate", "migrate_continue"... would start, steer or resume a
 * migration or the guest past the relay's gates (a frozen source resumed
 * by 'virsh qemu-monitor-command --hmp c'). The relay refuses those lines
 * and names the QMP command that does the same through its gates.
 */

#pragma once

#include "internal.h"
#include "qmp/cocoqmpmessage.h"

/*
 * Is @msg a 'human-monitor-command' whose command is one the relay gates?
 * Then returns TRUE and sets *@hmp to the HMP command's name and *@qmp to
 * the QMP command to use (both static).
 */
gboolean cocoQmpHmpGated(const CocoQmpMessage *msg, const char **hmp,
                         const char **qmp);
