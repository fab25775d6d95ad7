/*
 * cococlienthostdev.h: <coco:hostdev action="detach"> in the client
 * driver: host devices detached before a confidential migration and
 * attached again after it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libvirt refuses to detach a device while its migration job runs, so the
 * client that drives the migration does it first, as OpenStack Nova does
 * for SR-IOV ports (docs/formatcoco.rst, <coco:hostdev>):
 *
 *  1. detach: each VFIO host device of the live domain through libvirt's
 *     public API (virDomainDetachDeviceFlags(), LIVE, with the device's
 *     XML as libvirt gave it);
 *  2. removed: the device is gone from the live XML (libvirt updates it on
 *     QEMU's DEVICE_DELETED), re-read until COCO_CLIENT_HOSTDEV_REMOVE_S;
 *  3. unmapped: the source agent's copy of the relay's VFIO state says
 *     QEMU holds none of the devices and, with none left open, no DMA
 *     mapping (docs/vfio.rst, "The state report"), and no leak was
 *     reported, until COCO_CLIENT_HOSTDEV_CONFIRM_S;
 *
 * then the migration; after it, attach: each device of the destination
 * XML (the <hostdev> elements of VIR_MIGRATE_PARAM_DEST_XML when given,
 * which may name other host addresses; else the source's) on the
 * destination. A failure before the guest left rolls back: the devices
 * detached so far are attached on the source again. Every error names the
 * device and the step.
 *
 * libvirt and the agent are reached through CocoClientHostdevOps, so the
 * step machine can be tested against a scripted libvirt (libvirt's test
 * driver cannot detach devices).
 */

#pragma once

#include "internal.h"
#include "client/cococlientagent.h"
#include "util/cocoenum.h"

#include <libvirt/libvirt.h>
#include <stdbool.h>

/* Seconds for the device to leave the live XML (libvirt itself waits 5 s
 * for QEMU's DEVICE_DELETED before it returns "removal pending"). */
#define COCO_CLIENT_HOSTDEV_REMOVE_S 30
/* Seconds for the relay's VFIO state to show the device gone. */
#define COCO_CLIENT_HOSTDEV_CONFIRM_S 10
/* Milliseconds between two reads of the live XML or the agent. */
#define COCO_CLIENT_HOSTDEV_POLL_MS 100
/* The most host devices a domain may have for a detach. */
#define COCO_CLIENT_HOSTDEV_MAX 64

typedef enum {
    COCO_CLIENT_HOSTDEV_STEP_DETACH = 0,
    COCO_CLIENT_HOSTDEV_STEP_REMOVED,
    COCO_CLIENT_HOSTDEV_STEP_UNMAPPED,
    COCO_CLIENT_HOSTDEV_STEP_ATTACH_DEST,
    COCO_CLIENT_HOSTDEV_STEP_ATTACH_SOURCE,
    COCO_CLIENT_HOSTDEV_STEP_LAST
} CocoClientHostdevStep;
COCO_ENUM_DECL(cocoClientHostdevStep);

/* One VFIO host device of a domain XML. */
typedef struct {
    char *name; /* "0000:03:00.0" or an mdev's UUID: VFIO's device name */
    char *xml; /* the element (<hostdev> or <interface type='hostdev'>) */
} CocoClientHostdev;

void cocoClientHostdevFree(CocoClientHostdev *dev);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoClientHostdev, cocoClientHostdevFree)

/*
 * cocoClientHostdevParse:
 * The VFIO host devices of the libvirt domain document @xml (<hostdev
 * mode='subsystem'> of type pci or mdev, <interface type='hostdev'>), in
 * document order, as a GPtrArray of CocoClientHostdev (empty when none).
 * When @stripped is not NULL it gets the document without them (for
 * libvirt's destination XML: the source has none any more when libvirt
 * compares them). A device without a source address, and more than
 * COCO_CLIENT_HOSTDEV_MAX devices, are refused.
 */
GPtrArray *cocoClientHostdevParse(const char *xml, char **stripped,
                                  GError **error);

/* What the driver needs of libvirt and the agent. */
typedef struct {
    /* virDomainDetachDeviceFlags(LIVE) of @dev on the source. */
    int (*detach)(gpointer opaque, const CocoClientHostdev *dev,
                  GError **error);
    /* Whether the live XML of the source still has @dev: 1 yes, 0 no. */
    int (*present)(gpointer opaque, const CocoClientHostdev *dev,
                   GError **error);
    /* The source agent's "domain" answer (cococlientagent.h). */
    int (*state)(gpointer opaque, CocoClientDomainInfo *info, GError **error);
    /* virDomainAttachDeviceFlags(LIVE) of @dev on the destination
     * (@dest) or the source. */
    int (*attach)(gpointer opaque, bool dest, const CocoClientHostdev *dev,
                  GError **error);
    /* Sleep @ms (tests: advance a clock). */
    void (*sleep)(gpointer opaque, guint ms);
    /* A monotonic clock in microseconds. */
    gint64 (*now)(gpointer opaque);
} CocoClientHostdevOps;

typedef struct _CocoClientHostdevPlan CocoClientHostdevPlan;

/*
 * cocoClientHostdevPlanNew:
 * The plan for the domain @domname whose live document is @xml; @destxml
 * (NULL: none) is libvirt's destination XML. NULL with @error set when a
 * document is malformed. cocoClientHostdevPlanCount() is 0 for a domain
 * without VFIO host devices (nothing to do).
 */
CocoClientHostdevPlan *cocoClientHostdevPlanNew(const char *domname,
                                                const char *xml,
                                                const char *destxml,
                                                GError **error);
void cocoClientHostdevPlanFree(CocoClientHostdevPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoClientHostdevPlan, cocoClientHostdevPlanFree)

void cocoClientHostdevPlanSetOps(CocoClientHostdevPlan *plan,
                                 const CocoClientHostdevOps *ops,
                                 gpointer opaque);

/* Told of each step a device passed (failures come as the error). */
typedef void (*CocoClientHostdevNotify)(const char *device,
                                        CocoClientHostdevStep step,
                                        gpointer opaque);
void cocoClientHostdevPlanSetNotify(CocoClientHostdevPlan *plan,
                                    CocoClientHostdevNotify notify,
                                    gpointer opaque);
guint cocoClientHostdevPlanCount(CocoClientHostdevPlan *plan);
/* The destination XML without its host devices (NULL: none was given). */
const char *cocoClientHostdevPlanDestXml(CocoClientHostdevPlan *plan);
/* Devices detached from the source and not attached again. */
guint cocoClientHostdevPlanDetached(CocoClientHostdevPlan *plan);
/* Devices attached on the destination. */
guint cocoClientHostdevPlanAttached(CocoClientHostdevPlan *plan);

/*
 * cocoClientHostdevDetach:
 * Steps 1-3 for every device. On failure the devices detached so far are
 * attached on the source again (their failures are added to the message)
 * and -1 is returned with @error naming the device and the step.
 */
int cocoClientHostdevDetach(CocoClientHostdevPlan *plan, GError **error);

/*
 * cocoClientHostdevRollback:
 * The migration failed and the guest runs on the source: attach every
 * detached device there again. -1 names the devices that could not be.
 */
int cocoClientHostdevRollback(CocoClientHostdevPlan *plan, GError **error);

/*
 * cocoClientHostdevAttachDest:
 * The guest runs on the destination: attach the destination XML's
 * devices there. Every device is tried; -1 names those that failed (the
 * guest keeps running without them: the source is gone).
 */
int cocoClientHostdevAttachDest(CocoClientHostdevPlan *plan, GError **error);

/*
 * cocoClientHostdevLibvirtOps:
 * The real ops: the source domain @dom, the destination domain named
 * @dname on @dconn (NULL: opened on @desturi when needed), the source
 * agent @agent asked about @uuid. The returned object is the ops' opaque
 * pointer; free it with cocoClientHostdevLibvirtFree().
 */
typedef struct _CocoClientHostdevLibvirt CocoClientHostdevLibvirt;

CocoClientHostdevLibvirt *cocoClientHostdevLibvirtNew(
    virDomainPtr dom, virConnectPtr dconn, const char *desturi,
    const char *dname, CocoClientAgent *agent, const char *uuid);
void cocoClientHostdevLibvirtFree(CocoClientHostdevLibvirt *lv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoClientHostdevLibvirt,
                              cocoClientHostdevLibvirtFree)
extern const CocoClientHostdevOps cocoClientHostdevLibvirtOps;
