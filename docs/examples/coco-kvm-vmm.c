/*
 * coco-kvm-vmm.c: the "kvm" backend as a VMM uses it (docs/kvm-abi.rst)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The VMM creates its VM and vCPUs and, when a confidential migration
 * starts, drives the RFC's calls itself: KVM answers no VM or vCPU ioctl
 * of another process. The migration agents' messages (PREPARE) and the
 * bundles travel through the host agent; here they are left to two
 * functions of the VMM's. Built with the project (meson) so that it
 * follows the API; run on a kernel without the RFC it says so.
 *
 *   cc coco-kvm-vmm.c $(pkg-config --cflags --libs libvirt-coco)
 */

#include <libvirt-coco/libvirt-coco.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The VMM's own channel to the host agent (not shown): the peer agent's
 * message for PREPARE, and where each bundle goes. */
static size_t
agentExchange(void *msg, size_t len, size_t cap)
{
    (void)msg;
    (void)len;
    (void)cap;
    return 0;
}

static void
agentSend(unsigned int stream, const void *bundle, size_t len)
{
    (void)stream;
    (void)bundle;
    (void)len;
}

/* The source side: PREPARE until the agents installed the keys, SETUP,
 * memory, SOURCE_BLACKOUT, the vCPUs, the start token, FINISH. */
static int
migrateOut(CocoKvmMigration *mig, const uint64_t *gfns, unsigned int ngfns,
           GError **error)
{
    static unsigned char buf[1 << 20];
    size_t len = 0;
    int ret;

    for (;;) {
        size_t cap = sizeof(buf);

        len = agentExchange(buf, len, cap);
        ret = cocoKvmMigrationCommand(mig, KVM_MIGRATE_PREPARE, 0, buf, &cap,
                                      NULL, error);
        if (ret != -EAGAIN)
            break;
        g_clear_error(error);
        len = cap; /* our agent's message for the peer */
    }
    if (ret < 0)
        return ret;
    len = sizeof(buf);
    if ((ret = cocoKvmMigrationCommand(mig, KVM_MIGRATE_SETUP, 0, buf, &len,
                                       NULL, error)) < 0)
        return ret;
    agentSend(0, buf, len);
    len = sizeof(buf);
    if ((ret = cocoKvmMigrationExportMemory(mig, 1, gfns, ngfns, NULL, buf,
                                            &len, NULL, error)) < 0)
        return ret;
    agentSend(1, buf, len);
    /* with the vCPUs stopped: */
    if ((ret = cocoKvmMigrationCommand(mig, KVM_MIGRATE_SOURCE_BLACKOUT, 0,
                                       NULL, NULL, NULL, error)) < 0)
        return ret;
    len = sizeof(buf);
    if ((ret = cocoKvmMigrationExportVcpu(mig, 0, buf, &len, NULL, error)) < 0)
        return ret;
    agentSend(0, buf, len);
    len = sizeof(buf);
    if ((ret = cocoKvmMigrationCommand(mig, KVM_MIGRATE_TOKEN, 1, buf, &len,
                                       NULL, error)) < 0)
        return ret;
    agentSend(0, buf, len);
    return cocoKvmMigrationCommand(mig, KVM_MIGRATE_FINISH, 0, NULL, NULL, NULL,
                                   error);
}

int
main(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoKvmMigration) mig = NULL;
    uint64_t gfns[] = {0x100, 0x101};
    bool supported = false;
    int kvm;
    int vm;
    int vcpu;

    if ((kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0 ||
        (vm = ioctl(kvm, KVM_CREATE_VM, 0)) < 0 ||
        (vcpu = ioctl(vm, KVM_CREATE_VCPU, 0)) < 0) {
        perror("KVM");
        return 1;
    }
    if (cocoKvmMigrationProbe(vm, &supported, &err) < 0) {
        fprintf(stderr, "%s\n", err->message);
        return 1;
    }
    printf("KVM_CAP_MIGRATION: %s\n", supported ? "present" : "absent");
    if (!(mig = cocoKvmMigrationNew(COCO_KVM_MIGRATION_SOURCE, vm, &vcpu, 1,
                                    &err))) {
        fprintf(stderr, "%s\n", err->message);
        return supported ? 1 : 0;
    }
    if (migrateOut(mig, gfns, G_N_ELEMENTS(gfns), &err) < 0) {
        fprintf(stderr, "%s\n", err->message);
        return 1;
    }
    return 0;
}
