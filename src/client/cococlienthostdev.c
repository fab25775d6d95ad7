/*
 * cococlienthostdev.c: host devices detached before a confidential
 * migration and attached again after it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "client/cococlienthostdev.h"
#include "util/cocoerror.h"
#include "virt/cocovirt.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <string.h>

COCO_ENUM_IMPL(cocoClientHostdevStep, COCO_CLIENT_HOSTDEV_STEP_LAST, "detach",
               "removed", "unmapped", "attach on the destination",
               "attach on the source");

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)

void
cocoClientHostdevFree(CocoClientHostdev *dev)
{
    if (!dev)
        return;
    g_free(dev->name);
    g_free(dev->xml);
    g_free(dev);
}

/* ---- the documents ----------------------------------------------------------- */

static bool
cocoClientHostdevIs(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !n->ns &&
           xmlStrEqual(n->name, BAD_CAST name);
}

static xmlNodePtr
cocoClientHostdevChild(xmlNodePtr n, const char *name)
{
    xmlNodePtr c;

    for (c = n ? n->children : NULL; c; c = c->next) {
        if (cocoClientHostdevIs(c, name))
            return c;
    }
    return NULL;
}

static char *
cocoClientHostdevProp(xmlNodePtr n, const char *name)
{
    xmlChar *v = n ? xmlGetNoNsProp(n, BAD_CAST name) : NULL;
    char *s = v ? g_strdup((const char *)v) : NULL;

    xmlFree(v);
    return s;
}

/* A PCI address attribute ("0x03", "3"), at most @max. */
static bool
cocoClientHostdevHex(xmlNodePtr addr, const char *name, guint64 max,
                     guint64 *out)
{
    g_autofree char *v = cocoClientHostdevProp(addr, name);
    const char *digits = v;
    char *end = NULL;

    if (!v || !*v)
        return false;
    if (g_str_has_prefix(v, "0x") || g_str_has_prefix(v, "0X"))
        digits = v + 2;
    if (!*digits || !g_ascii_isxdigit(*digits))
        return false;
    *out = g_ascii_strtoull(digits, &end, 16);
    return *end == '\0' && *out <= max;
}

/* VFIO's name of the device whose <source> is @src: a PCI address as
 * sysfs spells it, or an mdev's UUID. NULL when it names none. */
static char *
cocoClientHostdevSourceName(xmlNodePtr src, bool mdev)
{
    xmlNodePtr addr = cocoClientHostdevChild(src, "address");
    guint64 dom = 0;
    guint64 bus;
    guint64 slot;
    guint64 fn;

    if (!addr)
        return NULL;
    if (mdev) {
        g_autofree char *uuid = cocoClientHostdevProp(addr, "uuid");

        return uuid && g_uuid_string_is_valid(uuid) ? g_ascii_strdown(uuid, -1)
                                                    : NULL;
    }
    if ((xmlHasProp(addr, BAD_CAST "domain") &&
         !cocoClientHostdevHex(addr, "domain", 0xffff, &dom)) ||
        !cocoClientHostdevHex(addr, "bus", 0xff, &bus) ||
        !cocoClientHostdevHex(addr, "slot", 0x1f, &slot) ||
        !cocoClientHostdevHex(addr, "function", 0x7, &fn))
        return NULL;
    return g_strdup_printf("%04x:%02x:%02x.%x", (unsigned int)dom,
                           (unsigned int)bus, (unsigned int)slot,
                           (unsigned int)fn);
}

/* Whether @n is a VFIO host device; *@mdev for a mediated one. */
static bool
cocoClientHostdevIsVfio(xmlNodePtr n, bool *mdev)
{
    g_autofree char *mode = NULL;
    g_autofree char *type = NULL;

    *mdev = false;
    if (cocoClientHostdevIs(n, "interface")) {
        type = cocoClientHostdevProp(n, "type");
        return STREQ_NULLABLE(type, "hostdev");
    }
    if (!cocoClientHostdevIs(n, "hostdev"))
        return false;
    mode = cocoClientHostdevProp(n, "mode");
    type = cocoClientHostdevProp(n, "type");
    if (mode && STRNEQ(mode, "subsystem"))
        return false;
    *mdev = STREQ_NULLABLE(type, "mdev");
    return STREQ_NULLABLE(type, "pci") || *mdev;
}

GPtrArray *
cocoClientHostdevParse(const char *xml, char **stripped, GError **error)
{
    g_autoptr(GPtrArray) devs =
        g_ptr_array_new_with_free_func((GDestroyNotify)cocoClientHostdevFree);
    g_autoptr(GPtrArray) remove = g_ptr_array_new();
    g_autoptr(xmlDoc) doc = NULL;
    xmlNodePtr root;
    xmlNodePtr devices;
    xmlNodePtr n;
    guint i;

    if (stripped)
        *stripped = NULL;
    doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING);
    if (!doc || !(root = xmlDocGetRootElement(doc)) ||
        !cocoClientHostdevIs(root, "domain")) {
        cocoErrorSet(error, COCO_ERROR_XML_MALFORMED, "%s",
                     _("the domain's XML is not a libvirt <domain> document"));
        return NULL;
    }
    devices = cocoClientHostdevChild(root, "devices");
    for (n = devices ? devices->children : NULL; n; n = n->next) {
        g_autoptr(xmlBuffer) buf = NULL;
        g_autoptr(CocoClientHostdev) dev = NULL;
        bool mdev;

        if (!cocoClientHostdevIsVfio(n, &mdev))
            continue;
        if (devs->len >= COCO_CLIENT_HOSTDEV_MAX) {
            cocoErrorSet(
                error, COCO_ERROR_NOT_SUPPORTED,
                _("the domain has more than '%1$d' host devices to detach"),
                COCO_CLIENT_HOSTDEV_MAX);
            return NULL;
        }
        dev = g_new0(CocoClientHostdev, 1);
        if (!(dev->name = cocoClientHostdevSourceName(
                  cocoClientHostdevChild(n, "source"), mdev))) {
            cocoErrorSet(
                error, COCO_ERROR_XML_MALFORMED,
                _("host device '%1$u' of the domain names no valid source address, so it cannot be detached and attached again"),
                devs->len + 1);
            return NULL;
        }
        buf = xmlBufferCreate();
        if (xmlNodeDump(buf, doc, n, 0, 0) < 0) {
            cocoErrorSet(error, COCO_ERROR_INTERNAL,
                         _("cannot serialise host device '%1$s'"), dev->name);
            return NULL;
        }
        dev->xml = g_strdup((const char *)xmlBufferContent(buf));
        g_ptr_array_add(devs, g_steal_pointer(&dev));
        g_ptr_array_add(remove, n);
    }
    if (stripped) {
        xmlChar *out = NULL;
        int len = 0;

        for (i = 0; i < remove->len; i++) {
            xmlNodePtr r = g_ptr_array_index(remove, i);

            xmlUnlinkNode(r);
            xmlFreeNode(r);
        }
        xmlDocDumpMemory(doc, &out, &len);
        if (!out) {
            cocoErrorSet(error, COCO_ERROR_INTERNAL, "%s",
                         _("cannot serialise the destination XML"));
            return NULL;
        }
        *stripped = g_strdup((const char *)out);
        xmlFree(out);
    }
    return g_steal_pointer(&devs);
}

/* ---- the plan ------------------------------------------------------------------- */

struct _CocoClientHostdevPlan {
    char *domname;
    GPtrArray *devs; /* the source's, CocoClientHostdev */
    GPtrArray *dest_devs; /* what to attach on the destination */
    char *destxml; /* without its host devices, or NULL */
    bool *detached; /* per source device */
    guint attached;
    const CocoClientHostdevOps *ops;
    gpointer opaque;
    CocoClientHostdevNotify notify;
    gpointer notify_opaque;
};

CocoClientHostdevPlan *
cocoClientHostdevPlanNew(const char *domname, const char *xml,
                         const char *destxml, GError **error)
{
    g_autoptr(CocoClientHostdevPlan) plan = g_new0(CocoClientHostdevPlan, 1);

    plan->domname = g_strdup(domname);
    if (!(plan->devs = cocoClientHostdevParse(xml, NULL, error)))
        return NULL;
    if (destxml) {
        if (!(plan->dest_devs =
                  cocoClientHostdevParse(destxml, &plan->destxml, error))) {
            cocoErrorPrefix(error, _("the destination XML: "));
            return NULL;
        }
    } else {
        plan->dest_devs = g_ptr_array_ref(plan->devs);
    }
    plan->detached = g_new0(bool, plan->devs->len + 1);
    return g_steal_pointer(&plan);
}

void
cocoClientHostdevPlanFree(CocoClientHostdevPlan *plan)
{
    if (!plan)
        return;
    g_free(plan->domname);
    if (plan->devs)
        g_ptr_array_unref(plan->devs);
    if (plan->dest_devs)
        g_ptr_array_unref(plan->dest_devs);
    g_free(plan->destxml);
    g_free(plan->detached);
    g_free(plan);
}

void
cocoClientHostdevPlanSetOps(CocoClientHostdevPlan *plan,
                            const CocoClientHostdevOps *ops, gpointer opaque)
{
    plan->ops = ops;
    plan->opaque = opaque;
}

void
cocoClientHostdevPlanSetNotify(CocoClientHostdevPlan *plan,
                               CocoClientHostdevNotify notify, gpointer opaque)
{
    plan->notify = notify;
    plan->notify_opaque = opaque;
}

static void
cocoClientHostdevPassed(CocoClientHostdevPlan *plan, const char *device,
                        CocoClientHostdevStep step)
{
    if (plan->notify)
        plan->notify(device, step, plan->notify_opaque);
}

guint
cocoClientHostdevPlanCount(CocoClientHostdevPlan *plan)
{
    return plan->devs->len;
}

const char *
cocoClientHostdevPlanDestXml(CocoClientHostdevPlan *plan)
{
    return plan->destxml;
}

guint
cocoClientHostdevPlanDetached(CocoClientHostdevPlan *plan)
{
    guint n = 0;
    guint i;

    for (i = 0; i < plan->devs->len; i++)
        n += plan->detached[i] ? 1 : 0;
    return n;
}

guint
cocoClientHostdevPlanAttached(CocoClientHostdevPlan *plan)
{
    return plan->attached;
}

static int
cocoClientHostdevFail(CocoClientHostdevPlan *plan, const char *device,
                      CocoClientHostdevStep step, const GError *cause,
                      GError **error)
{
    return cocoErrorSet(
        error, cause ? cause->code : COCO_ERROR_INTERNAL,
        _("host device '%1$s' of domain '%2$s', step '%3$s': %4$s"), device,
        plan->domname, cocoClientHostdevStepTypeToString(step),
        cause ? cause->message : "");
}

/* Step 2: the live XML no longer has @dev. */
static int
cocoClientHostdevWaitRemoved(CocoClientHostdevPlan *plan,
                             const CocoClientHostdev *dev, GError **error)
{
    gint64 until = plan->ops->now(plan->opaque) +
                   COCO_CLIENT_HOSTDEV_REMOVE_S * G_USEC_PER_SEC;

    for (;;) {
        int rc = plan->ops->present(plan->opaque, dev, error);

        if (rc <= 0)
            return rc;
        if (plan->ops->now(plan->opaque) >= until)
            return cocoErrorSet(
                error, COCO_ERROR_LIBVIRT,
                _("libvirt still lists the device '%1$d' seconds after the detach request (the guest did not release it, or QEMU did not report DEVICE_DELETED)"),
                COCO_CLIENT_HOSTDEV_REMOVE_S);
        plan->ops->sleep(plan->opaque, COCO_CLIENT_HOSTDEV_POLL_MS);
    }
}

/* The first detached device the state still names, or NULL. */
static const char *
cocoClientHostdevStillOpen(CocoClientHostdevPlan *plan,
                           const CocoClientDomainInfo *info)
{
    guint i;

    for (i = 0; i < plan->devs->len; i++) {
        const CocoClientHostdev *dev = g_ptr_array_index(plan->devs, i);

        if (plan->detached[i] && info->vfio_devices &&
            g_strv_contains((const char *const *)info->vfio_devices, dev->name))
            return dev->name;
    }
    return NULL;
}

/* Step 3: the relay's VFIO state holds nothing of the detached devices.
 * Returns -1 with *@device the one to name. */
static int
cocoClientHostdevWaitUnmapped(CocoClientHostdevPlan *plan, const char **device,
                              GError **error)
{
    gint64 until = plan->ops->now(plan->opaque) +
                   COCO_CLIENT_HOSTDEV_CONFIRM_S * G_USEC_PER_SEC;
    const CocoClientHostdev *last = g_ptr_array_index(plan->devs, 0);

    *device = last->name;
    for (;;) {
        CocoClientDomainInfo info = {0};
        const char *open = NULL;
        bool done;

        if (plan->ops->state(plan->opaque, &info, error) < 0)
            return -1;
        if (info.vfio_leak) {
            cocoErrorSet(
                error, COCO_ERROR_VFIO_LEAK,
                _("the VFIO interposer reported a leak, guest pages stay pinned: %1$s"),
                info.vfio_leak);
            cocoClientDomainInfoClear(&info);
            return -1;
        }
        if (!info.has_vfio) {
            cocoClientDomainInfoClear(&info);
            return cocoErrorSet(
                error, COCO_ERROR_VFIO_LEAK, "%s",
                _("the domain's relay reported no VFIO state, so nothing confirms that QEMU unmapped the device's DMA (is the VFIO interposer turned off, 'vfio_interposer = no' in qemu-coco.conf?)"));
        }
        open = cocoClientHostdevStillOpen(plan, &info);
        if (open)
            *device = open;
        /* A device still open, or none open while mappings remain (the
         * last device's address space not released yet). */
        done = !open && !(info.vfio_open == 0 && info.vfio_mappings > 0);
        if (done) {
            cocoClientDomainInfoClear(&info);
            return 0;
        }
        if (plan->ops->now(plan->opaque) >= until) {
            if (open)
                cocoErrorSet(
                    error, COCO_ERROR_VFIO_LEAK,
                    _("QEMU still holds the device open '%1$d' seconds after libvirt removed it"),
                    COCO_CLIENT_HOSTDEV_CONFIRM_S);
            else
                cocoErrorSet(
                    error, COCO_ERROR_VFIO_LEAK,
                    _("no VFIO device is open, but QEMU's address spaces still map '%1$lld' DMA mapping(s) of '%2$lld' bytes"),
                    (long long)info.vfio_mappings,
                    (long long)info.vfio_mapped_bytes);
            cocoClientDomainInfoClear(&info);
            return -1;
        }
        cocoClientDomainInfoClear(&info);
        plan->ops->sleep(plan->opaque, COCO_CLIENT_HOSTDEV_POLL_MS);
    }
}

int
cocoClientHostdevRollback(CocoClientHostdevPlan *plan, GError **error)
{
    g_autoptr(GString) failed = g_string_new(NULL);
    guint i;

    for (i = plan->devs->len; i-- > 0;) {
        const CocoClientHostdev *dev = g_ptr_array_index(plan->devs, i);
        g_autoptr(GError) err = NULL;

        if (!plan->detached[i])
            continue;
        /* A detach the guest has not acted on yet (removal pending): the
         * device is still there, attaching it again would fail. */
        if (plan->ops->present(plan->opaque, dev, NULL) == 1) {
            plan->detached[i] = false;
            continue;
        }
        if (plan->ops->attach(plan->opaque, false, dev, &err) < 0) {
            g_string_append_printf(failed, "%s'%s': %s",
                                   failed->len ? "; " : "", dev->name,
                                   err->message);
            continue;
        }
        plan->detached[i] = false;
        cocoClientHostdevPassed(plan, dev->name,
                                COCO_CLIENT_HOSTDEV_STEP_ATTACH_SOURCE);
    }
    if (failed->len)
        return cocoErrorSet(
            error, COCO_ERROR_MIGRATION_PHASE,
            _("domain '%1$s' did not get its host devices back, step 'attach on the source': %2$s"),
            plan->domname, failed->str);
    return 0;
}

/* @error gets the rollback's failure added. */
static int
cocoClientHostdevFailRollback(CocoClientHostdevPlan *plan, GError **error)
{
    g_autoptr(GError) err = NULL;

    if (cocoClientHostdevRollback(plan, &err) < 0 && error && *error) {
        char *msg = g_strdup_printf("%s; %s", (*error)->message, err->message);

        g_free((*error)->message);
        (*error)->message = msg;
    }
    return -1;
}

int
cocoClientHostdevDetach(CocoClientHostdevPlan *plan, GError **error)
{
    const char *device = NULL;
    guint i;

    for (i = 0; i < plan->devs->len; i++) {
        const CocoClientHostdev *dev = g_ptr_array_index(plan->devs, i);
        g_autoptr(GError) err = NULL;

        if (plan->ops->detach(plan->opaque, dev, &err) < 0) {
            cocoClientHostdevFail(plan, dev->name,
                                  COCO_CLIENT_HOSTDEV_STEP_DETACH, err, error);
            return cocoClientHostdevFailRollback(plan, error);
        }
        /* From here on it may be gone: a rollback attaches it. */
        plan->detached[i] = true;
        cocoClientHostdevPassed(plan, dev->name,
                                COCO_CLIENT_HOSTDEV_STEP_DETACH);
        if (cocoClientHostdevWaitRemoved(plan, dev, &err) < 0) {
            cocoClientHostdevFail(plan, dev->name,
                                  COCO_CLIENT_HOSTDEV_STEP_REMOVED, err, error);
            return cocoClientHostdevFailRollback(plan, error);
        }
        cocoClientHostdevPassed(plan, dev->name,
                                COCO_CLIENT_HOSTDEV_STEP_REMOVED);
    }
    if (plan->devs->len > 0) {
        g_autoptr(GError) err = NULL;

        if (cocoClientHostdevWaitUnmapped(plan, &device, &err) < 0) {
            cocoClientHostdevFail(
                plan, device, COCO_CLIENT_HOSTDEV_STEP_UNMAPPED, err, error);
            return cocoClientHostdevFailRollback(plan, error);
        }
        for (i = 0; i < plan->devs->len; i++) {
            const CocoClientHostdev *dev = g_ptr_array_index(plan->devs, i);

            cocoClientHostdevPassed(plan, dev->name,
                                    COCO_CLIENT_HOSTDEV_STEP_UNMAPPED);
        }
    }
    return 0;
}

int
cocoClientHostdevAttachDest(CocoClientHostdevPlan *plan, GError **error)
{
    g_autoptr(GString) failed = g_string_new(NULL);
    guint i;

    for (i = 0; i < plan->dest_devs->len; i++) {
        const CocoClientHostdev *dev = g_ptr_array_index(plan->dest_devs, i);
        g_autoptr(GError) err = NULL;

        if (plan->ops->attach(plan->opaque, true, dev, &err) < 0) {
            g_string_append_printf(failed, "%s'%s': %s",
                                   failed->len ? "; " : "", dev->name,
                                   err->message);
            continue;
        }
        plan->attached++;
        cocoClientHostdevPassed(plan, dev->name,
                                COCO_CLIENT_HOSTDEV_STEP_ATTACH_DEST);
    }
    /* The source's devices are the destination's business now. */
    memset(plan->detached, 0, sizeof(bool) * plan->devs->len);
    if (failed->len)
        return cocoErrorSet(
            error, COCO_ERROR_MIGRATION_PHASE,
            _("domain '%1$s' runs on the destination without host devices, step 'attach on the destination': %2$s"),
            plan->domname, failed->str);
    return 0;
}

/* ---- libvirt and the agent ---------------------------------------------------- */

struct _CocoClientHostdevLibvirt {
    virDomainPtr dom;
    virConnectPtr dconn;
    virConnectPtr owned; /* opened on desturi */
    char *desturi;
    char *dname;
    CocoClientAgent *agent;
    char *uuid;
};

CocoClientHostdevLibvirt *
cocoClientHostdevLibvirtNew(virDomainPtr dom, virConnectPtr dconn,
                            const char *desturi, const char *dname,
                            CocoClientAgent *agent, const char *uuid)
{
    CocoClientHostdevLibvirt *lv = g_new0(CocoClientHostdevLibvirt, 1);

    lv->dom = dom;
    virDomainRef(dom);
    lv->dconn = dconn;
    lv->desturi = g_strdup(desturi);
    lv->dname = g_strdup(dname);
    lv->agent = agent;
    lv->uuid = g_strdup(uuid);
    return lv;
}

void
cocoClientHostdevLibvirtFree(CocoClientHostdevLibvirt *lv)
{
    if (!lv)
        return;
    virDomainFree(lv->dom);
    if (lv->owned)
        virConnectClose(lv->owned);
    g_free(lv->desturi);
    g_free(lv->dname);
    g_free(lv->uuid);
    g_free(lv);
}

static int
cocoClientHostdevLvDetach(gpointer opaque, const CocoClientHostdev *dev,
                          GError **error)
{
    CocoClientHostdevLibvirt *lv = opaque;

    if (virDomainDetachDeviceFlags(lv->dom, dev->xml, VIR_DOMAIN_AFFECT_LIVE) <
        0)
        return cocoVirSetError(error, _("libvirt refused the detach"));
    return 0;
}

static int
cocoClientHostdevLvPresent(gpointer opaque, const CocoClientHostdev *dev,
                           GError **error)
{
    CocoClientHostdevLibvirt *lv = opaque;
    g_autoptr(GPtrArray) devs = NULL;
    g_autofree char *xml = NULL;
    char *text;
    guint i;

    if (!(text = virDomainGetXMLDesc(lv->dom, 0)))
        return cocoVirSetError(error, _("failed to get the domain's XML"));
    xml = g_strdup(text);
    free(text);
    if (!(devs = cocoClientHostdevParse(xml, NULL, error)))
        return -1;
    for (i = 0; i < devs->len; i++) {
        const CocoClientHostdev *d = g_ptr_array_index(devs, i);

        if (STREQ(d->name, dev->name))
            return 1;
    }
    return 0;
}

static int
cocoClientHostdevLvState(gpointer opaque, CocoClientDomainInfo *info,
                         GError **error)
{
    CocoClientHostdevLibvirt *lv = opaque;

    return cocoClientAgentDomain(lv->agent, lv->uuid, info, error);
}

static int
cocoClientHostdevLvAttach(gpointer opaque, bool dest,
                          const CocoClientHostdev *dev, GError **error)
{
    CocoClientHostdevLibvirt *lv = opaque;
    g_autoptr(virDomain) ddom = NULL;
    virDomainPtr target = lv->dom;

    if (dest) {
        if (!lv->dconn &&
            !(lv->dconn = lv->owned = cocoVirConnect(lv->desturi, error)))
            return -1;
        if (!(ddom = cocoVirLookupDomain(lv->dconn, lv->dname, error)))
            return -1;
        target = ddom;
    }
    if (virDomainAttachDeviceFlags(target, dev->xml, VIR_DOMAIN_AFFECT_LIVE) <
        0)
        return cocoVirSetError(error, _("libvirt refused the attach"));
    return 0;
}

static void
cocoClientHostdevLvSleep(gpointer opaque G_GNUC_UNUSED, guint ms)
{
    g_usleep((gulong)ms * 1000);
}

static gint64
cocoClientHostdevLvNow(gpointer opaque G_GNUC_UNUSED)
{
    return g_get_monotonic_time();
}

const CocoClientHostdevOps cocoClientHostdevLibvirtOps = {
    .detach = cocoClientHostdevLvDetach,
    .present = cocoClientHostdevLvPresent,
    .state = cocoClientHostdevLvState,
    .attach = cocoClientHostdevLvAttach,
    .sleep = cocoClientHostdevLvSleep,
    .now = cocoClientHostdevLvNow,
};
