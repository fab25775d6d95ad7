/*
 * cococlienthostdevtest.c: the client driver's host device steps
 * (cococlienthostdev.h): the documents, the step machine and its rollback
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libvirt's test driver (test:///default, libvirt 9.0) answers "this
 * function is not supported by the connection driver" to
 * virDomainAttachDeviceFlags() and virDomainDetachDeviceFlags(), so the
 * libvirt side of the steps is a scripted host here: a live XML that
 * loses a device some polls after its detach (QEMU's DEVICE_DELETED),
 * failures injected per call, and the relay's VFIO state as the agent
 * answers it. The real ops (cocoClientHostdevLibvirtOps) run against the
 * test driver for what it has: a running domain with a <hostdev>, its live
 * XML, and its refusal of the detach and the attach, which must come back
 * named by device and step with nothing changed.
 */

#include "internal.h"
#include "client/cococlienthostdev.h"
#include "util/cocoerror.h"
#include "virt/cocovirt.h"

#include <string.h>

#define DEV_A "0000:03:00.0"
#define DEV_B "0000:04:00.1"
#define MDEV "8e3a1f0c-4c6b-4a3e-9e0e-3c1d2b4a5f60"

#define HOSTDEV(bus, fn)                                                       \
 "<hostdev mode='subsystem' type='pci' managed='yes'><driver name='vfio'/>"    \
 "<source><address domain='0x0000' bus='" bus "' slot='0x00' function='" fn    \
 "'/></source><alias name='hostdev0'/></hostdev>"

static const char domainXml[] =
    "<domain type='kvm'><name>vm1</name><devices>"
    "<disk type='file' device='disk'><source file='/x'/>"
    "<target dev='vda'/></disk>" HOSTDEV(
        "0x03",
        "0x0") "<interface type='hostdev' managed='yes'><source><address type='pci' "
               "domain='0x0000' bus='0x04' slot='0x00' function='0x1'/></source>"
               "</interface>"
               "<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
               "<address uuid='8E3A1F0C-4C6B-4A3E-9E0E-3C1D2B4A5F60'/></source></hostdev>"
               "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1'/>"
               "<product id='0x2'/></source></hostdev>"
               "<hostdev mode='capabilities' type='storage'><source><block>/dev/sdb"
               "</block></source></hostdev>"
               "</devices></domain>";

/* The documents: VFIO devices only, in order, named as VFIO names them;
 * the destination XML loses them. */
static void
testParse(void)
{
    g_autoptr(GPtrArray) devs = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *stripped = NULL;
    const CocoClientHostdev *d;

    devs = cocoClientHostdevParse(domainXml, &stripped, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(devs->len, ==, 3);
    d = g_ptr_array_index(devs, 0);
    g_assert_cmpstr(d->name, ==, DEV_A);
    g_assert_true(g_str_has_prefix(d->xml, "<hostdev mode=\"subsystem\""));
    g_assert_nonnull(strstr(d->xml, "bus=\"0x03\""));
    d = g_ptr_array_index(devs, 1);
    g_assert_cmpstr(d->name, ==, DEV_B);
    g_assert_true(g_str_has_prefix(d->xml, "<interface type=\"hostdev\""));
    d = g_ptr_array_index(devs, 2);
    g_assert_cmpstr(d->name, ==, MDEV);
    g_assert_null(strstr(stripped, "bus=\"0x03\""));
    g_assert_null(strstr(stripped, "<interface"));
    g_assert_null(strstr(stripped, "type=\"mdev\""));
    g_assert_nonnull(strstr(stripped, "type=\"usb\""));
    g_assert_nonnull(strstr(stripped, "<disk"));
}

static void
testParseBad(void)
{
    static const char *const bad[] = {
        "<domain><devices><hostdev mode='subsystem' type='pci'><source/>"
        "</hostdev></devices></domain>",
        "<domain><devices><hostdev mode='subsystem' type='pci'><source>"
        "<address bus='0x100' slot='0' function='0'/></source></hostdev>"
        "</devices></domain>",
        "<domain><devices><hostdev mode='subsystem' type='pci'><source>"
        "<address bus='0x1' slot='0x20' function='0'/></source></hostdev>"
        "</devices></domain>",
        "<domain><devices><hostdev mode='subsystem' type='pci'><source>"
        "<address bus='zz' slot='0' function='0'/></source></hostdev>"
        "</devices></domain>",
        "<domain><devices><hostdev mode='subsystem' type='mdev'><source>"
        "<address uuid='nope'/></source></hostdev></devices></domain>",
        "<domain><devices>",
        "<network/>",
    };
    g_autoptr(GString) many = g_string_new("<domain><devices>");
    g_autoptr(GPtrArray) none = NULL;
    g_autoptr(GError) err = NULL;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GPtrArray) devs = cocoClientHostdevParse(bad[i], NULL, &e);

        if (devs)
            g_error("accepted: %s", bad[i]);
        g_assert_nonnull(e);
    }
    for (i = 0; i <= COCO_CLIENT_HOSTDEV_MAX; i++)
        g_string_append_printf(
            many,
            "<hostdev mode='subsystem' type='pci'><source><address "
            "bus='0x%02zx' slot='0' function='0'/></source></hostdev>",
            i);
    g_string_append(many, "</devices></domain>");
    g_assert_null(cocoClientHostdevParse(many->str, NULL, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_NOT_SUPPORTED);
    none = cocoClientHostdevParse("<domain><devices/></domain>", NULL, NULL);
    g_assert_cmpuint(none->len, ==, 0);
}

/* ---- a scripted host ---- */

typedef struct {
    gint64 now; /* us */
    GHashTable *live; /* names on the source */
    GHashTable *dest; /* names attached on the destination */
    GHashTable *pending; /* name -> polls until libvirt drops it */
    guint remove_polls; /* G_MAXUINT: the guest never releases it */
    const char *fail_detach; /* the device whose detach fails */
    const char *fail_attach_source;
    const char *fail_attach_dest;
    /* the relay's VFIO state: open devices and mappings left */
    GHashTable *qemu_open;
    const char *qemu_keeps; /* a device QEMU does not close */
    gint64 mappings_after; /* mappings left once nothing is open */
    gint64 unmap_polls; /* polls until the space is released */
    bool no_state; /* the interposer is off */
    const char *leak;
    bool agent_down;
    GPtrArray *calls; /* "detach NAME", "attach source NAME", ... */
} Host;

static void
hostInit(Host *h)
{
    memset(h, 0, sizeof(*h));
    h->live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    h->dest = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    h->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    h->qemu_open = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    h->calls = g_ptr_array_new_with_free_func(g_free);
    h->remove_polls = 3;
    g_hash_table_add(h->live, g_strdup(DEV_A));
    g_hash_table_add(h->live, g_strdup(DEV_B));
    g_hash_table_add(h->live, g_strdup(MDEV));
    g_hash_table_add(h->qemu_open, g_strdup(DEV_A));
    g_hash_table_add(h->qemu_open, g_strdup(DEV_B));
    g_hash_table_add(h->qemu_open, g_strdup(MDEV));
}

static void
hostClear(Host *h)
{
    g_hash_table_unref(h->live);
    g_hash_table_unref(h->dest);
    g_hash_table_unref(h->pending);
    g_hash_table_unref(h->qemu_open);
    g_ptr_array_unref(h->calls);
}

static int
hostDetach(gpointer opaque, const CocoClientHostdev *dev, GError **error)
{
    Host *h = opaque;

    g_ptr_array_add(h->calls, g_strdup_printf("detach %s", dev->name));
    g_assert_true(g_hash_table_contains(h->live, dev->name));
    if (g_strcmp0(h->fail_detach, dev->name) == 0)
        return cocoErrorSet(error, COCO_ERROR_LIBVIRT, "%s",
                            "operation failed: device in use");
    g_hash_table_insert(h->pending, g_strdup(dev->name),
                        GUINT_TO_POINTER(h->remove_polls));
    return 0;
}

static int
hostPresent(gpointer opaque, const CocoClientHostdev *dev,
            GError **error G_GNUC_UNUSED)
{
    Host *h = opaque;
    gpointer left;

    if (g_hash_table_lookup_extended(h->pending, dev->name, NULL, &left)) {
        guint n = GPOINTER_TO_UINT(left);

        if (n == 0) {
            /* DEVICE_DELETED: libvirt drops it, QEMU closed it. */
            g_hash_table_remove(h->pending, dev->name);
            g_hash_table_remove(h->live, dev->name);
            if (g_strcmp0(h->qemu_keeps, dev->name) != 0)
                g_hash_table_remove(h->qemu_open, dev->name);
        } else if (n != G_MAXUINT) {
            g_hash_table_insert(h->pending, g_strdup(dev->name),
                                GUINT_TO_POINTER(n - 1));
        }
    }
    return g_hash_table_contains(h->live, dev->name) ? 1 : 0;
}

static int
hostState(gpointer opaque, CocoClientDomainInfo *info, GError **error)
{
    Host *h = opaque;
    g_autofree gpointer *keys = NULL;
    guint n = 0;

    cocoClientDomainInfoClear(info);
    if (h->agent_down)
        return cocoErrorSet(error, COCO_ERROR_QMP_AGENT, "%s",
                            "the agent is not reachable");
    info->relay = true;
    info->vfio_leak = g_strdup(h->leak);
    if (h->no_state)
        return 0;
    info->has_vfio = true;
    keys = g_hash_table_get_keys_as_array(h->qemu_open, &n);
    info->vfio_devices = g_strdupv((char **)keys);
    info->vfio_open = n;
    if (n > 0) {
        info->vfio_mappings = 5;
    } else if (h->unmap_polls > 0) {
        h->unmap_polls--;
        info->vfio_mappings = 5;
    } else {
        info->vfio_mappings = h->mappings_after;
    }
    info->vfio_mapped_bytes = info->vfio_mappings * 4096;
    return 0;
}

static int
hostAttach(gpointer opaque, bool dest, const CocoClientHostdev *dev,
           GError **error)
{
    Host *h = opaque;

    g_ptr_array_add(
        h->calls,
        g_strdup_printf("attach %s %s", dest ? "dest" : "source", dev->name));
    if (g_strcmp0(dest ? h->fail_attach_dest : h->fail_attach_source,
                  dev->name) == 0)
        return cocoErrorSet(error, COCO_ERROR_LIBVIRT, "%s",
                            "internal error: no free IOMMU group");
    g_assert_true(dest || !g_hash_table_contains(h->live, dev->name));
    g_hash_table_add(dest ? h->dest : h->live, g_strdup(dev->name));
    return 0;
}

static void
hostSleep(gpointer opaque, guint ms)
{
    Host *h = opaque;

    h->now += (gint64)ms * 1000;
}

static gint64
hostNow(gpointer opaque)
{
    Host *h = opaque;

    return h->now;
}

static const CocoClientHostdevOps hostOps = {
    .detach = hostDetach,
    .present = hostPresent,
    .state = hostState,
    .attach = hostAttach,
    .sleep = hostSleep,
    .now = hostNow,
};

/* Each step a device passed, as the driver's hostdev() callback gets it. */
static void
hostNotify(const char *device, CocoClientHostdevStep step, gpointer opaque)
{
    Host *h = opaque;

    g_ptr_array_add(h->calls,
                    g_strdup_printf("passed %s %s", device,
                                    cocoClientHostdevStepTypeToString(step)));
}

static CocoClientHostdevPlan *
planNew(Host *h, const char *destxml)
{
    g_autoptr(GError) err = NULL;
    CocoClientHostdevPlan *plan =
        cocoClientHostdevPlanNew("vm1", domainXml, destxml, &err);

    g_assert_no_error(err);
    cocoClientHostdevPlanSetOps(plan, &hostOps, h);
    cocoClientHostdevPlanSetNotify(plan, hostNotify, h);
    return plan;
}

static void
assertCalls(Host *h, const char *const *want)
{
    guint i;

    for (i = 0; want[i]; i++) {
        g_assert_cmpuint(i, <, h->calls->len);
        g_assert_cmpstr(g_ptr_array_index(h->calls, i), ==, want[i]);
    }
    g_assert_cmpuint(i, ==, h->calls->len);
}

/* Detach, confirm, migrate, attach on the destination. */
static void
testDetachAttach(void)
{
    static const char *const want[] = {
        "detach " DEV_A,
        "passed " DEV_A " detach",
        "passed " DEV_A " removed",
        "detach " DEV_B,
        "passed " DEV_B " detach",
        "passed " DEV_B " removed",
        "detach " MDEV,
        "passed " MDEV " detach",
        "passed " MDEV " removed",
        "passed " DEV_A " unmapped",
        "passed " DEV_B " unmapped",
        "passed " MDEV " unmapped",
        "attach dest " DEV_A,
        "passed " DEV_A " attach on the destination",
        "attach dest " DEV_B,
        "passed " DEV_B " attach on the destination",
        "attach dest " MDEV,
        "passed " MDEV " attach on the destination",
        NULL,
    };
    g_autoptr(CocoClientHostdevPlan) plan = NULL;
    g_autoptr(GError) err = NULL;
    Host h;

    hostInit(&h);
    h.unmap_polls = 4; /* the space is released a little later */
    plan = planNew(&h, NULL);
    g_assert_cmpuint(cocoClientHostdevPlanCount(plan), ==, 3);
    g_assert_null(cocoClientHostdevPlanDestXml(plan));
    g_assert_cmpint(cocoClientHostdevDetach(plan, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(g_hash_table_size(h.live), ==, 0);
    g_assert_cmpuint(cocoClientHostdevPlanDetached(plan), ==, 3);
    g_assert_cmpint(cocoClientHostdevAttachDest(plan, &err), ==, 0);
    g_assert_cmpuint(g_hash_table_size(h.dest), ==, 3);
    g_assert_cmpuint(cocoClientHostdevPlanAttached(plan), ==, 3);
    g_assert_cmpuint(cocoClientHostdevPlanDetached(plan), ==, 0);
    assertCalls(&h, want);
    hostClear(&h);
}

/* The destination XML maps the device to another host address: that is
 * what is attached there, and libvirt gets the XML without it. */
static void
testDestXml(void)
{
    static const char destxml[] =
        "<domain type='kvm'><name>vm1</name><devices>" HOSTDEV(
            "0x81",
            "0x2") "<disk type='file' device='disk'/></devices></domain>";
    static const char *const want[] = {
        "detach " DEV_A,
        "passed " DEV_A " detach",
        "passed " DEV_A " removed",
        "detach " DEV_B,
        "passed " DEV_B " detach",
        "passed " DEV_B " removed",
        "detach " MDEV,
        "passed " MDEV " detach",
        "passed " MDEV " removed",
        "passed " DEV_A " unmapped",
        "passed " DEV_B " unmapped",
        "passed " MDEV " unmapped",
        "attach dest 0000:81:00.2",
        "passed 0000:81:00.2 attach on the destination",
        NULL,
    };
    g_autoptr(CocoClientHostdevPlan) plan = NULL;
    g_autoptr(GError) err = NULL;
    Host h;

    hostInit(&h);
    plan = planNew(&h, destxml);
    g_assert_nonnull(cocoClientHostdevPlanDestXml(plan));
    g_assert_null(strstr(cocoClientHostdevPlanDestXml(plan), "hostdev"));
    g_assert_nonnull(strstr(cocoClientHostdevPlanDestXml(plan), "<disk"));
    g_assert_cmpint(cocoClientHostdevDetach(plan, &err), ==, 0);
    g_assert_cmpint(cocoClientHostdevAttachDest(plan, &err), ==, 0);
    g_assert_true(g_hash_table_contains(h.dest, "0000:81:00.2"));
    assertCalls(&h, want);
    hostClear(&h);
}

/* Each failure before the guest leaves: the error names the device and
 * the step, and the source gets back exactly what was detached. */
typedef struct {
    const char *name;
    void (*setup)(Host *h);
    const char *device;
    const char *step;
    const char *detail;
    guint attached_back; /* devices the source gets back */
} FailCase;

static void
failDetachB(Host *h)
{
    h->fail_detach = DEV_B;
}

static void
failNeverRemoved(Host *h)
{
    h->remove_polls = G_MAXUINT;
}

static void
failStillOpen(Host *h)
{
    /* libvirt drops the device, QEMU keeps it open (the interposer saw
     * no close). */
    h->qemu_keeps = DEV_B;
}

static void
failMappingsLeft(Host *h)
{
    h->mappings_after = 2;
}

static void
failLeak(Host *h)
{
    h->leak = "1 DMA mapping(s) of 0x1000 bytes could not be unmapped";
}

static void
failNoState(Host *h)
{
    h->no_state = true;
}

static void
failAgentDown(Host *h)
{
    h->agent_down = true;
}

static const FailCase failCases[] = {
    {"detach", failDetachB, DEV_B, "detach", "device in use", 1},
    {"removed", failNeverRemoved, DEV_A, "removed",
     "libvirt still lists the device '30' seconds", 0},
    {"still-open", failStillOpen, DEV_B, "unmapped",
     "QEMU still holds the device open '10' seconds after libvirt removed it",
     3},
    {"mappings-left", failMappingsLeft, DEV_A, "unmapped",
     "QEMU's address spaces still map '2' DMA mapping(s) of '8192' bytes", 3},
    {"leak", failLeak, DEV_A, "unmapped", "stay pinned: 1 DMA mapping(s)", 3},
    {"no-state", failNoState, DEV_A, "unmapped", "vfio_interposer = no", 3},
    {"agent-down", failAgentDown, DEV_A, "unmapped",
     "the agent is not reachable", 3},
};

static void
testFail(gconstpointer data)
{
    const FailCase *c = data;
    g_autoptr(CocoClientHostdevPlan) plan = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *head = NULL;
    guint attach_source = 0;
    guint passed_source = 0;
    guint i;
    Host h;

    hostInit(&h);
    c->setup(&h);
    plan = planNew(&h, NULL);
    g_assert_cmpint(cocoClientHostdevDetach(plan, &err), ==, -1);
    g_assert_nonnull(err);
    head = g_strdup_printf(
        "host device '%s' of domain 'vm1', step '%s': ", c->device, c->step);
    if (!g_str_has_prefix(err->message, head))
        g_error("%s: '%s' does not start with '%s'", c->name, err->message,
                head);
    if (c->detail && !strstr(err->message, c->detail))
        g_error("%s: '%s' does not say '%s'", c->name, err->message, c->detail);
    /* Rolled back: everything the source had, it has again; a device
     * whose detach libvirt refused, or whose removal is still pending (the
     * guest did not release it), is not attached twice. */
    g_assert_cmpuint(g_hash_table_size(h.live), ==, 3);
    g_assert_cmpuint(cocoClientHostdevPlanDetached(plan), ==, 0);
    for (i = 0; i < h.calls->len; i++) {
        const char *call = g_ptr_array_index(h.calls, i);

        attach_source += g_str_has_prefix(call, "attach source ");
        passed_source += g_str_has_suffix(call, " attach on the source");
        g_assert_false(g_str_has_suffix(call, " unmapped"));
    }
    g_assert_cmpuint(attach_source, ==, c->attached_back);
    g_assert_cmpuint(passed_source, ==, c->attached_back);
    g_assert_cmpuint(g_hash_table_size(h.dest), ==, 0);
    hostClear(&h);
}

/* The rollback itself fails for one device: both failures are named. */
static void
testRollbackFails(void)
{
    g_autoptr(CocoClientHostdevPlan) plan = NULL;
    g_autoptr(GError) err = NULL;
    Host h;

    hostInit(&h);
    h.mappings_after = 1;
    h.fail_attach_source = DEV_B;
    plan = planNew(&h, NULL);
    g_assert_cmpint(cocoClientHostdevDetach(plan, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "step 'unmapped'"));
    g_assert_nonnull(strstr(
        err->message,
        "domain 'vm1' did not get its host devices back, step 'attach on the source': '" DEV_B
        "': internal error: no free IOMMU group"));
    g_assert_cmpuint(cocoClientHostdevPlanDetached(plan), ==, 1);
    g_assert_false(g_hash_table_contains(h.live, DEV_B));
    g_assert_true(g_hash_table_contains(h.live, DEV_A));
    hostClear(&h);
}

/* libvirt failed after the detach: the source gets them back. */
static void
testMigrationFailed(void)
{
    g_autoptr(CocoClientHostdevPlan) plan = NULL;
    g_autoptr(GError) err = NULL;
    Host h;

    hostInit(&h);
    plan = planNew(&h, NULL);
    g_assert_cmpint(cocoClientHostdevDetach(plan, &err), ==, 0);
    g_assert_cmpuint(g_hash_table_size(h.live), ==, 0);
    g_assert_cmpint(cocoClientHostdevRollback(plan, &err), ==, 0);
    g_assert_cmpuint(g_hash_table_size(h.live), ==, 3);
    g_assert_cmpuint(g_hash_table_size(h.dest), ==, 0);
    hostClear(&h);
}

/* After Finish the source is gone: a device the destination refuses is
 * named, the others are attached. */
static void
testAttachDestFails(void)
{
    g_autoptr(CocoClientHostdevPlan) plan = NULL;
    g_autoptr(GError) err = NULL;
    Host h;

    hostInit(&h);
    h.fail_attach_dest = MDEV;
    plan = planNew(&h, NULL);
    g_assert_cmpint(cocoClientHostdevDetach(plan, &err), ==, 0);
    g_assert_cmpint(cocoClientHostdevAttachDest(plan, &err), ==, -1);
    g_assert_cmpstr(
        err->message, ==,
        "domain 'vm1' runs on the destination without host devices, step 'attach on the destination': '" MDEV
        "': internal error: no free IOMMU group");
    g_assert_cmpuint(cocoClientHostdevPlanAttached(plan), ==, 2);
    g_assert_cmpuint(g_hash_table_size(h.live), ==, 0);
    hostClear(&h);
}

/* The real ops on libvirt's test driver. */
static void
testLibvirtOps(void)
{
    static const char xml[] =
        "<domain type='test'><name>hd</name><memory>65536</memory>"
        "<vcpu>1</vcpu><os><type>hvm</type></os><devices>" HOSTDEV(
            "0x03", "0x0") "</devices></domain>";
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(CocoClientHostdevLibvirt) lv = NULL;
    g_autoptr(CocoClientHostdevPlan) plan = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *live = NULL;
    g_autoptr(GPtrArray) devs = NULL;
    const CocoClientHostdev *dev;
    char *text;

    cocoVirInitialize();
    conn = virConnectOpen("test:///default");
    g_assert_nonnull(conn);
    dom = virDomainCreateXML(conn, xml, 0);
    g_assert_nonnull(dom);
    text = virDomainGetXMLDesc(dom, 0);
    live = g_strdup(text);
    free(text);
    plan = cocoClientHostdevPlanNew("hd", live, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(cocoClientHostdevPlanCount(plan), ==, 1);
    lv = cocoClientHostdevLibvirtNew(dom, conn, "test:///default", "hd", NULL,
                                     "00000000-0000-0000-0000-000000000000");
    cocoClientHostdevPlanSetOps(plan, &cocoClientHostdevLibvirtOps, lv);
    g_assert_cmpint(cocoClientHostdevDetach(plan, &err), ==, -1);
    g_assert_true(g_str_has_prefix(
        err->message,
        "host device '0000:03:00.0' of domain 'hd', step 'detach': "));
    g_assert_nonnull(strstr(err->message, "virDomainDetachDeviceFlags"));
    g_assert_cmpuint(cocoClientHostdevPlanDetached(plan), ==, 0);
    devs = cocoClientHostdevParse(live, NULL, NULL);
    dev = g_ptr_array_index(devs, 0);
    g_assert_cmpint(cocoClientHostdevLibvirtOps.present(lv, dev, NULL), ==, 1);
    g_clear_error(&err);
    g_assert_cmpint(cocoClientHostdevAttachDest(plan, &err), ==, -1);
    g_assert_true(g_str_has_prefix(
        err->message,
        "domain 'hd' runs on the destination without host devices, step 'attach on the destination': '0000:03:00.0': "));
    g_assert_nonnull(strstr(err->message, "virDomainAttachDeviceFlags"));
    virDomainDestroy(dom);
}

int
main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/client/hostdev/parse", testParse);
    g_test_add_func("/client/hostdev/parse-bad", testParseBad);
    g_test_add_func("/client/hostdev/detach-attach", testDetachAttach);
    g_test_add_func("/client/hostdev/dest-xml", testDestXml);
    for (i = 0; i < G_N_ELEMENTS(failCases); i++) {
        g_autofree char *path =
            g_strdup_printf("/client/hostdev/fail/%s", failCases[i].name);

        g_test_add_data_func(path, &failCases[i], testFail);
    }
    g_test_add_func("/client/hostdev/rollback-fails", testRollbackFails);
    g_test_add_func("/client/hostdev/migration-failed", testMigrationFailed);
    g_test_add_func("/client/hostdev/attach-dest-fails", testAttachDestFails);
    g_test_add_func("/client/hostdev/libvirt-test-driver", testLibvirtOps);
    return g_test_run();
}
