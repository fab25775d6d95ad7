/*
 * cocoagentdomain.h: what libvirt's status file says about a domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libvirt keeps the live definition of every running domain in
 * PID_DIR/NAME.xml (<domstatus> around the <domain>), next to NAME.pid.
 * The agent reads the domain's <coco:migration> element (the migration
 * policy the firmware session is bound to, streams, bundle size) and its
 * vCPU count from there, as root and without a libvirt connection: the
 * destination's libvirt holds the domain's job lock from Prepare to
 * Finish, so asking it would block.
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/coco-migration-def.h"

/*
 * *@def gets the parsed and validated element (NULL when the domain has
 * none, or the status file cannot be read: the caller's defaults apply),
 * *@vcpus the domain's vCPU count (0: unknown). Returns -1 when the
 * element is present but malformed or invalid.
 */
int cocoAgentDomainLoad(const char *pid_dir, const char *name,
                        CocoMigrationDef **def, unsigned int *vcpus,
                        GError **error);

/* The same from a status or domain document in memory. */
int cocoAgentDomainParse(const char *xml, CocoMigrationDef **def,
                         unsigned int *vcpus, GError **error);

/*
 * cocoAgentDomainCheckHostdevs:
 * The source's migrate gate for a client that did not detach the
 * domain's host devices (docs/formatcoco.rst, <coco:hostdev>): the live
 * document @xml of the confidential domain @name (policy @def) must hold
 * no VFIO host device, else COCO_ERROR_NOT_SUPPORTED naming the device
 * and what the management layer must do (cocoHostdevMigrationVerdict()).
 * A domain without the element (@def NULL) is not checked.
 */
int cocoAgentDomainCheckHostdevs(const char *xml, const CocoMigrationDef *def,
                                 const char *name, GError **error);

/* The same from libvirt's status file PID_DIR/NAME.xml (nothing is
 * checked when it cannot be read: the destination's hook checks too). */
int cocoAgentDomainLoadHostdevs(const char *pid_dir, const char *name,
                                const CocoMigrationDef *def, GError **error);
