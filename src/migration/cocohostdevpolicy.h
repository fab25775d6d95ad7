/*
 * cocohostdevpolicy.h: what <coco:hostdev action> does to a migration of
 * a domain with VFIO host devices
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A host device's state cannot follow the guest's sealed memory, so a
 * confidential migration of a domain that still has one is refused,
 * naming the device: with action="refuse" (the default without the
 * element) because the domain says so; with action="detach" because the
 * client did not detach it first: "virt-coco migrate" (the client driver,
 * cococlienthostdev.h) detaches the devices before libvirt is called and
 * attaches them on the destination after Finish; another management
 * layer must do the same. The libvirt hook applies it when a migration
 * arrives and the source agent at the migrate gate (docs/hook.rst,
 * docs/formatcoco.rst), before anything moves.
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/coco-migration-def.h"

#include <stddef.h>

/*
 * cocoHostdevMigrationVerdict:
 * @def: the domain's <coco:migration> (its hostdev action)
 * @domname: the domain's name, for the message
 * @nhostdevs: its VFIO host devices
 * @first: the first one's name ("0000:03:00.0"), or NULL
 * 0 when the migration may go on (no host devices); -1 with
 * COCO_ERROR_NOT_SUPPORTED naming the device and the action otherwise.
 */
int cocoHostdevMigrationVerdict(const CocoMigrationDef *def,
                                const char *domname, size_t nhostdevs,
                                const char *first, GError **error);

/* The same for a libvirt domain XML document (its <devices>). */
int cocoHostdevMigrationCheck(const char *domain_xml,
                              const CocoMigrationDef *def, const char *domname,
                              GError **error);
