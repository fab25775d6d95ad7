/*
 * cocokvmtest.c: tests of the kvm firmware backend against the fake kernel
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "cocofakekernel.h"
#include "firmware/cocokvm.h"
#include "firmware/cocokvmconfig.h"
#include "firmware/cocokvmuapi.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>

#define NVCPUS 2

static char *
dataPath(const char *name)
{
    return g_build_filename(g_getenv("abs_srcdir"), "cocokvmdata", name, NULL);
}

static CocoFirmware *
newFw(CocoFakeKernel *k, CocoFirmwareRole role, const CocoKvmConfig *cfg,
      GError **error)
{
    int fds[NVCPUS];
    CocoKvmConfig def;
    unsigned int i;

    for (i = 0; i < NVCPUS; i++)
        fds[i] = cocoFakeKernelVcpuFd(k, i);
    if (!cfg) {
        cocoKvmConfigInit(&def);
        cfg = &def;
    }
    return cocoKvmFirmwareNew(role, cocoFakeKernelVmFd(k), fds, NVCPUS,
                              cocoFakeKernelOps(k), cfg, error);
}

static CocoFirmware *
newFwOk(CocoFakeKernel *k, CocoFirmwareRole role, bool ext)
{
    g_autoptr(GError) err = NULL;
    CocoKvmConfig cfg;
    CocoFirmware *fw;

    cocoKvmConfigInit(&cfg);
    cfg.fw_status_ext = ext;
    fw = newFw(k, role, &cfg, &err);
    g_assert_no_error(err);
    g_assert_nonnull(fw);
    g_assert_true(cocoKvmFirmwareUsesExt(fw) == ext);
    return fw;
}

/* One sub-command through the seam; asserts success; returns bytes used. */
static size_t
cmdOk(CocoFirmware *fw, CocoMigrateCmd cmd, uint32_t flags, void *buf,
      size_t len)
{
    g_autoptr(GError) err = NULL;
    CocoFirmwareStatus st;
    size_t used = len;

    g_assert_cmpint(
        cocoFirmwareMigrateCmd(fw, cmd, flags, buf, &used, &st, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(st.err, ==, 0);
    g_assert_cmpuint(st.fw_status, ==, 0);
    return used;
}

/* One sub-command through the seam that must fail with @code/@err. */
static void
cmdFail(CocoFirmware *fw, CocoMigrateCmd cmd, uint32_t flags, void *buf,
        size_t len, int experr, CocoErrorCode code, CocoFirmwareStatus *st)
{
    g_autoptr(GError) err = NULL;
    CocoFirmwareStatus tmp;
    size_t used = len;

    if (!st)
        st = &tmp;
    g_assert_cmpint(
        cocoFirmwareMigrateCmd(fw, cmd, flags, buf, &used, st, &err), ==,
        experr);
    g_assert_error(err, COCO_ERROR, (int)code);
    g_test_message("%s", err->message);
    g_assert_cmpint(st->err, ==, experr);
    g_assert_nonnull(strstr(err->message, cocoMigrateCmdTypeToString(cmd)));
}

/* ---- ABI ---- */

static void
testLayout(void)
{
    g_assert_cmpuint(sizeof(struct kvm_transfer_buffer), ==, 16);
    g_assert_cmpuint(offsetof(struct kvm_transfer_buffer, size), ==, 8);
    g_assert_cmpuint(offsetof(struct kvm_transfer_buffer, reserved), ==, 12);
    g_assert_cmpuint(sizeof(struct kvm_migrate_cmd), ==, 24);
    g_assert_cmpuint(offsetof(struct kvm_migrate_cmd, flags), ==, 2);
    g_assert_cmpuint(offsetof(struct kvm_migrate_cmd, reserved), ==, 4);
    g_assert_cmpuint(offsetof(struct kvm_migrate_cmd, buf), ==, 8);
    g_assert_cmpuint(sizeof(struct kvm_memory_transfer), ==, 40);
    g_assert_cmpuint(offsetof(struct kvm_memory_transfer, nr_gfns), ==, 8);
    g_assert_cmpuint(offsetof(struct kvm_memory_transfer, id), ==, 12);
    g_assert_cmpuint(offsetof(struct kvm_memory_transfer, flags), ==, 14);
    g_assert_cmpuint(offsetof(struct kvm_memory_transfer, reserved), ==, 16);
    g_assert_cmpuint(offsetof(struct kvm_memory_transfer, buf), ==, 24);
    g_assert_cmpuint(sizeof(struct kvm_vcpu_transfer), ==, 24);
    g_assert_cmpuint(offsetof(struct kvm_vcpu_transfer, reserved), ==, 4);
    g_assert_cmpuint(offsetof(struct kvm_vcpu_transfer, buf), ==, 8);
    g_assert_cmpuint(sizeof(struct coco_kvm_migrate_cmd_ext), ==, 48);
    g_assert_cmpuint(sizeof(struct coco_kvm_memory_transfer_ext), ==, 64);
    g_assert_cmpuint(sizeof(struct coco_kvm_vcpu_transfer_ext), ==, 48);

    /* Requests: KVMIO, read+write, the RFC size; ext: same nr, larger. */
    g_assert_cmpuint(_IOC_TYPE(KVM_MIGRATE_CMD), ==, 0xAE);
    g_assert_cmpuint(_IOC_DIR(KVM_MIGRATE_CMD), ==, _IOC_READ | _IOC_WRITE);
    g_assert_cmpuint(_IOC_SIZE(KVM_MIGRATE_CMD), ==, 24);
    g_assert_cmpuint(_IOC_SIZE(KVM_EXPORT_MEMORY), ==, 40);
    g_assert_cmpuint(_IOC_SIZE(KVM_IMPORT_VCPU), ==, 24);
    g_assert_cmpuint(_IOC_NR(COCO_KVM_MIGRATE_CMD_EXT), ==,
                     _IOC_NR(KVM_MIGRATE_CMD));
    g_assert_cmpuint(_IOC_SIZE(COCO_KVM_MIGRATE_CMD_EXT), ==, 48);
    g_assert_cmpuint(_IOC_SIZE(COCO_KVM_EXPORT_MEMORY_EXT), ==, 64);
    g_assert_cmpuint(_IOC_SIZE(COCO_KVM_EXPORT_VCPU_EXT), ==, 48);
    g_assert_cmpuint(KVM_MIGRATE_PREPARE, ==, COCO_MIGRATE_CMD_PREPARE);
    g_assert_cmpuint(KVM_MIGRATE_FINISH, ==, COCO_MIGRATE_CMD_FINISH);
    g_assert_cmpuint(KVM_MIGRATE_SOURCE_BLACKOUT, ==,
                     COCO_MIGRATE_CMD_SOURCE_BLACKOUT);
    g_assert_cmpuint(COCO_KVM_MIGRATE_TOKEN_START, ==,
                     COCO_MIGRATE_TOKEN_START);
}

static void
testRequestFromConfig(void)
{
    CocoKvmConfig cfg;

    cocoKvmConfigInit(&cfg);
    g_assert_cmpuint(
        cocoKvmConfigRequest(&cfg, COCO_KVM_IOCTL_MIGRATE_CMD, false), ==,
        KVM_MIGRATE_CMD);
    g_assert_cmpuint(
        cocoKvmConfigRequest(&cfg, COCO_KVM_IOCTL_IMPORT_MEMORY, false), ==,
        KVM_IMPORT_MEMORY);
    g_assert_cmpuint(
        cocoKvmConfigRequest(&cfg, COCO_KVM_IOCTL_EXPORT_MEMORY, true), ==,
        COCO_KVM_EXPORT_MEMORY_EXT);
    g_assert_cmpuint(
        cocoKvmConfigRequest(&cfg, COCO_KVM_IOCTL_IMPORT_VCPU, false), ==,
        KVM_IMPORT_VCPU);
    g_assert_cmpuint(
        cocoKvmConfigRequest(&cfg, COCO_KVM_IOCTL_EXPORT_VCPU, true), ==,
        COCO_KVM_EXPORT_VCPU_EXT);
    g_assert_cmpuint(cfg.cap_migration, ==, KVM_CAP_MIGRATION);
    g_assert_cmpuint(cfg.cap_fw_status, ==, COCO_KVM_CAP_MIGRATION_FW_STATUS);
}

/* Every nr of an _IO*(KVMIO, nr...) and every KVM_CAP_* value in the
 * <linux/kvm.h> this test was compiled against. */
static void
parseKvmHeader(GHashTable *nrs, GHashTable *caps, unsigned int *maxcap)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) lines = NULL;
    size_t i;

    g_assert_true(g_file_get_contents(COCO_TEST_KVM_H, &text, NULL, &err));
    g_assert_no_error(err);
    lines = g_strsplit(text, "\n", -1);
    *maxcap = 0;
    for (i = 0; lines[i]; i++) {
        const char *p = strstr(lines[i], "(KVMIO,");
        unsigned int cap;
        char name[128];

        if (p) {
            char *end = NULL;
            unsigned long nr = strtoul(p + strlen("(KVMIO,"), &end, 0);

            g_assert_true(end && (*end == ',' || *end == ')'));
            g_hash_table_add(nrs, GUINT_TO_POINTER((unsigned int)nr));
        }
        if (sscanf(lines[i], "#define KVM_CAP_%127s %u", name, &cap) == 2) {
            g_hash_table_add(caps, GUINT_TO_POINTER(cap));
            *maxcap = MAX(*maxcap, cap);
        }
    }
}

static void
testNoCollision(void)
{
    static const unsigned int upstream_nrs[] = {0x49, 0xd2, 0xd4, 0xd5};
    g_autoptr(GHashTable) nrs = g_hash_table_new(NULL, NULL);
    g_autoptr(GHashTable) caps = g_hash_table_new(NULL, NULL);
    unsigned int maxcap = 0;
    CocoKvmConfig cfg;
    size_t i;

    parseKvmHeader(nrs, caps, &maxcap);
    /* The parse must have seen the header, checked against compiled values. */
    g_assert_cmpuint(g_hash_table_size(nrs), >=, 100);
    g_assert_true(
        g_hash_table_contains(nrs, GUINT_TO_POINTER(_IOC_NR(KVM_CREATE_VM))));
    g_assert_true(g_hash_table_contains(
        nrs, GUINT_TO_POINTER(_IOC_NR(KVM_CREATE_DEVICE))));
    g_assert_true(g_hash_table_contains(
        nrs, GUINT_TO_POINTER(_IOC_NR(KVM_CHECK_EXTENSION))));
    g_assert_true(g_hash_table_contains(
        caps, GUINT_TO_POINTER(KVM_CAP_CHECK_EXTENSION_VM)));
    g_assert_cmpuint(g_hash_table_size(caps), >=, 100);

    /* Numbers newer kernels added after the installed header (upstream
     * include/uapi/linux/kvm.h, 2025: KVM_SET_USER_MEMORY_REGION2,
     * KVM_SET_MEMORY_ATTRIBUTES, KVM_CREATE_GUEST_MEMFD,
     * KVM_PRE_FAULT_MEMORY; capabilities up to 243). */
    for (i = 0; i < G_N_ELEMENTS(upstream_nrs); i++)
        g_hash_table_add(nrs, GUINT_TO_POINTER(upstream_nrs[i]));
    maxcap = MAX(maxcap, 243);

    cocoKvmConfigInit(&cfg);
    for (i = 0; i < COCO_KVM_IOCTL_LAST; i++) {
        if (g_hash_table_contains(nrs, GUINT_TO_POINTER(cfg.nr[i])))
            g_error("%s nr 0x%02x collides with an ioctl of %s",
                    cocoKvmIoctlName(i), cfg.nr[i], COCO_TEST_KVM_H);
    }
    g_assert_cmpuint(cfg.cap_migration, >, maxcap);
    g_assert_cmpuint(cfg.cap_fw_status, >, maxcap);
    g_assert_false(
        g_hash_table_contains(caps, GUINT_TO_POINTER(cfg.cap_migration)));
    g_assert_false(
        g_hash_table_contains(caps, GUINT_TO_POINTER(cfg.cap_fw_status)));
}

/* ---- configuration ---- */

static void
testConfigFiles(void)
{
    static const char *const bad[] = {
        "bad-unknown.conf",    "bad-dup.conf",  "bad-range.conf",
        "bad-number.conf",     "bad-bool.conf", "bad-caps.conf",
        "does-not-exist.conf",
    };
    g_autofree char *path = dataPath("override.conf");
    g_autoptr(GError) err = NULL;
    CocoKvmConfig cfg, orig;
    size_t i;

    cocoKvmConfigInit(&cfg);
    g_assert_cmpint(cocoKvmConfigValidate(&cfg, &err), ==, 0);
    g_assert_cmpint(cocoKvmConfigLoadFile(&cfg, path, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(cfg.nr[COCO_KVM_IOCTL_MIGRATE_CMD], ==, 0xe8);
    g_assert_cmpuint(cfg.nr[COCO_KVM_IOCTL_EXPORT_VCPU], ==, 0xec);
    g_assert_cmpuint(cfg.cap_migration, ==, 2000);
    g_assert_cmpuint(cfg.eagain_retries, ==, 2);
    g_assert_cmpuint(_IOC_NR(cocoKvmConfigRequest(
                         &cfg, COCO_KVM_IOCTL_IMPORT_MEMORY, false)),
                     ==, 0xe9);

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *p = dataPath(bad[i]);
        g_autoptr(GError) e = NULL;

        cocoKvmConfigInit(&cfg);
        orig = cfg;
        g_assert_cmpint(cocoKvmConfigLoadFile(&cfg, p, &e), ==, -1);
        g_assert_error(e, COCO_ERROR, COCO_ERROR_INVALID_ARG);
        g_assert_nonnull(strstr(e->message, bad[i]));
        g_assert_true(memcmp(&cfg, &orig, sizeof(cfg)) == 0);
    }
}

static void
testConfigEnv(void)
{
    g_autofree char *path = dataPath("no-ext.conf");
    g_autofree char *missing = dataPath("does-not-exist.conf");
    g_autoptr(GError) err = NULL;
    CocoKvmConfig cfg;

    g_setenv(COCO_KVM_CONF_ENV, path, TRUE);
    g_assert_cmpstr(cocoKvmConfigPath(), ==, path);
    g_assert_cmpint(cocoKvmConfigLoad(&cfg, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(cfg.fw_status_ext);

    g_setenv(COCO_KVM_CONF_ENV, missing, TRUE);
    g_assert_cmpint(cocoKvmConfigLoad(&cfg, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_unsetenv(COCO_KVM_CONF_ENV);
    g_assert_true(
        g_str_has_suffix(cocoKvmConfigPath(), "/libvirt-coco/kvm.conf"));
}

/* The kernel chose other numbers: the defaults miss them; the host
 * configuration named by $COCO_KVM_CONF reaches them. */
static void
testOverrideViaEnv(void)
{
    g_autofree char *path = dataPath("override.conf");
    g_autofree char *ionly = dataPath("ioctl-only.conf");
    g_autoptr(CocoFakeKernel) k = NULL;
    g_autoptr(CocoFakeKernel) k2 = NULL;
    g_autoptr(CocoFirmware) fw = NULL;
    g_autoptr(CocoFirmware) fw2 = NULL;
    g_autoptr(GError) err = NULL;
    CocoKvmConfig kcfg;
    guint8 buf[COCO_FAKE_PREPARE_SIZE];
    int fds[NVCPUS];

    cocoKvmConfigInit(&kcfg);
    g_assert_cmpint(cocoKvmConfigLoadFile(&kcfg, path, &err), ==, 0);
    k = cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, &kcfg);

    /* Built-in numbers: the capability is not found under its number. */
    g_assert_null(newFw(k, COCO_FIRMWARE_ROLE_SOURCE, NULL, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_NOT_SUPPORTED);
    g_clear_error(&err);

    fds[0] = cocoFakeKernelVcpuFd(k, 0);
    fds[1] = cocoFakeKernelVcpuFd(k, 1);
    g_setenv(COCO_KVM_CONF_ENV, path, TRUE);
    fw = cocoKvmFirmwareNew(COCO_FIRMWARE_ROLE_SOURCE, cocoFakeKernelVmFd(k),
                            fds, NVCPUS, cocoFakeKernelOps(k), NULL, &err);
    g_unsetenv(COCO_KVM_CONF_ENV);
    g_assert_no_error(err);
    cmdOk(fw, COCO_MIGRATE_CMD_PREPARE, 0, buf, sizeof(buf));
    g_assert_cmpuint(_IOC_NR(cocoFakeKernelLastRequest(k)), ==, 0xe8);
    g_assert_cmpint(cocoFakeKernelState(k), ==, COCO_FAKE_STATE_PREPARED);

    /* Same capability, other ioctl numbers: the kernel does not know ours. */
    cocoKvmConfigInit(&kcfg);
    g_assert_cmpint(cocoKvmConfigLoadFile(&kcfg, ionly, &err), ==, 0);
    k2 = cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, &kcfg);
    fw2 = newFwOk(k2, COCO_FIRMWARE_ROLE_SOURCE, true);
    cmdFail(fw2, COCO_MIGRATE_CMD_PREPARE, 0, buf, sizeof(buf), -ENOTTY,
            COCO_ERROR_NOT_SUPPORTED, NULL);
}

/* ---- capability and fds ---- */

static void
testCapability(void)
{
    g_autoptr(CocoFakeKernel) k =
        cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, NULL);
    g_autoptr(CocoFirmware) fw = NULL;
    g_autoptr(GError) err = NULL;
    CocoFirmwareCaps caps;
    CocoKvmConfig cfg;
    bool ext = true;

    cocoKvmConfigInit(&cfg);
    cocoFakeKernelSetCaps(k, false, false);
    g_assert_cmpint(cocoKvmProbe(cocoFakeKernelVmFd(k), cocoFakeKernelOps(k),
                                 &cfg, &caps, &ext, &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_false(caps.migration);
    g_assert_false(ext);

    g_assert_null(newFw(k, COCO_FIRMWARE_ROLE_SOURCE, &cfg, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_NOT_SUPPORTED);
    g_assert_nonnull(strstr(err->message, "KVM_CAP_MIGRATION"));
    g_assert_nonnull(strstr(
        err->message, "this kernel does not implement KVM_CAP_MIGRATION"));
    g_clear_error(&err);

    /* Capability without the extension: the plain RFC forms. */
    cocoFakeKernelSetCaps(k, true, false);
    fw = newFw(k, COCO_FIRMWARE_ROLE_SOURCE, &cfg, &err);
    g_assert_no_error(err);
    g_assert_false(cocoKvmFirmwareUsesExt(fw));
    g_assert_cmpint(cocoFirmwareGetCaps(fw, &caps, &err), ==, 0);
    g_assert_true(caps.migration);
    g_assert_cmpuint(caps.max_gfns, ==, 512);
    g_assert_cmpuint(caps.max_streams, ==, 512);
    {
        guint8 prep[COCO_FAKE_PREPARE_SIZE];

        cmdOk(fw, COCO_MIGRATE_CMD_PREPARE, 0, prep, sizeof(prep));
        g_assert_cmpuint(_IOC_SIZE(cocoFakeKernelLastRequest(k)), ==,
                         sizeof(struct kvm_migrate_cmd));
    }
    g_clear_pointer(&fw, cocoFirmwareFree);

    /* Probe failure other than "unknown": reported, not "absent". */
    cocoFakeKernelSetCaps(k, true, true);
    cocoFakeKernelAddFault(k,
                           &(CocoFakeFault){COCO_FAKE_CHECK_EXTENSION,
                                            COCO_FAKE_ANY, 0, 1, -EFAULT, 0});
    g_assert_null(newFw(k, COCO_FIRMWARE_ROLE_SOURCE, &cfg, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_SYSTEM);
    g_clear_error(&err);

    /* EIO: KVM's answer to a process that did not create the VM. */
    cocoFakeKernelAddFault(k, &(CocoFakeFault){COCO_FAKE_CHECK_EXTENSION,
                                               COCO_FAKE_ANY, 0, 1, -EIO, 0});
    g_assert_null(newFw(k, COCO_FIRMWARE_ROLE_SOURCE, &cfg, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_assert_nonnull(strstr(err->message, "belongs to another process"));
    g_assert_nonnull(
        strstr(err->message, "must be issued from the VMM's own process"));
    g_clear_error(&err);

    fw = newFw(k, COCO_FIRMWARE_ROLE_SOURCE, &cfg, &err);
    g_assert_no_error(err);
    g_assert_true(cocoKvmFirmwareUsesExt(fw));
    {
        guint8 tok[COCO_FAKE_TOKEN_SIZE];

        /* The fake is PREPARED from above; any call shows the form. */
        cmdFail(fw, COCO_MIGRATE_CMD_PREPARE, 0, tok, sizeof(tok), -EPERM,
                COCO_ERROR_FW_STATE, NULL);
        g_assert_cmpuint(_IOC_SIZE(cocoFakeKernelLastRequest(k)), ==,
                         sizeof(struct coco_kvm_migrate_cmd_ext));
    }
}

static void
testBadFds(void)
{
    g_autoptr(CocoFakeKernel) k =
        cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, NULL);
    g_autoptr(CocoFirmware) fw = NULL;
    g_autoptr(GError) err = NULL;
    CocoFirmwareStatus st;
    CocoKvmConfig cfg;
    guint8 buf[COCO_FAKE_VCPU0_SIZE];
    size_t len = sizeof(buf);
    int fds[NVCPUS];

    cocoKvmConfigInit(&cfg);
    fds[0] = cocoFakeKernelVcpuFd(k, 0);
    fds[1] = -1;
    g_assert_null(cocoKvmFirmwareNew(COCO_FIRMWARE_ROLE_SOURCE, -1, fds, 0,
                                     cocoFakeKernelOps(k), &cfg, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_null(cocoKvmFirmwareNew(COCO_FIRMWARE_ROLE_SOURCE,
                                     cocoFakeKernelVmFd(k), fds, NVCPUS,
                                     cocoFakeKernelOps(k), &cfg, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_assert_nonnull(strstr(err->message, "vCPU '1'"));
    g_clear_error(&err);

    /* A closed VM fd: the probe says so. */
    fds[1] = cocoFakeKernelVcpuFd(k, 1);
    g_assert_null(cocoKvmFirmwareNew(COCO_FIRMWARE_ROLE_SOURCE,
                                     cocoFakeKernelBadFd(k), fds, NVCPUS,
                                     cocoFakeKernelOps(k), &cfg, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_SYSTEM);
    g_assert_nonnull(strstr(err->message, "KVM_CAP_MIGRATION"));
    g_clear_error(&err);

    /* A closed vCPU fd, and the VM fd passed as a vCPU fd. */
    fds[0] = cocoFakeKernelBadFd(k);
    fds[1] = cocoFakeKernelVmFd(k);
    fw = cocoKvmFirmwareNew(COCO_FIRMWARE_ROLE_SOURCE, cocoFakeKernelVmFd(k),
                            fds, NVCPUS, cocoFakeKernelOps(k), &cfg, &err);
    g_assert_no_error(err);
    g_assert_cmpint(cocoFirmwareExportVcpu(fw, 0, buf, &len, &st, &err), ==,
                    -EBADF);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_SYSTEM);
    g_assert_nonnull(strstr(err->message, "EBADF"));
    g_assert_nonnull(strstr(err->message, "KVM_EXPORT_VCPU vcpu 0"));
    g_clear_error(&err);
    len = sizeof(buf);
    g_assert_cmpint(cocoFirmwareExportVcpu(fw, 1, buf, &len, &st, &err), ==,
                    -ENOTTY);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_NOT_SUPPORTED);
    g_clear_error(&err);
    len = sizeof(buf);
    g_assert_cmpint(cocoFirmwareExportVcpu(fw, NVCPUS, buf, &len, &st, &err),
                    ==, -EINVAL);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_INVALID);
    g_assert_cmpint(st.err, ==, -EINVAL);
}

/* ---- the flows ---- */

typedef struct {
    CocoFakeKernel *ks, *kd;
    CocoFirmware *src, *dst;
    guint8 prep[COCO_FAKE_PREPARE_SIZE];
    guint8 setup[COCO_FAKE_SETUP_SIZE];
    guint8 token[COCO_FAKE_TOKEN_SIZE];
} Pair;

static void
pairInit(Pair *p, bool ext)
{
    memset(p, 0, sizeof(*p));
    p->ks = cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, NULL);
    p->kd = cocoFakeKernelNew(COCO_FIRMWARE_ROLE_DESTINATION, NVCPUS, NULL);
    p->src = newFwOk(p->ks, COCO_FIRMWARE_ROLE_SOURCE, ext);
    p->dst = newFwOk(p->kd, COCO_FIRMWARE_ROLE_DESTINATION, ext);
}

static void
pairClear(Pair *p)
{
    cocoFirmwareFree(p->src);
    cocoFirmwareFree(p->dst);
    cocoFakeKernelFree(p->ks);
    cocoFakeKernelFree(p->kd);
}

/* Move one memory bundle of @gfns on @stream from source to destination. */
static void
moveMemory(Pair *p, uint32_t stream, const uint64_t *gfns, uint32_t n)
{
    g_autoptr(GError) err = NULL;
    g_autofree guint8 *buf = g_malloc0(COCO_FAKE_MEM_SIZE(n));
    g_autofree uint8_t *gst = g_malloc(n);
    CocoFirmwareStatus st;
    size_t len = COCO_FAKE_MEM_SIZE(n);
    uint32_t i;

    memset(gst, 0x77, n);
    g_assert_cmpint(cocoFirmwareExportMemory(p->src, stream, gfns, n, gst, buf,
                                             &len, &st, &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(len, ==, COCO_FAKE_MEM_SIZE(n));
    for (i = 0; i < n; i++)
        g_assert_cmpuint(gst[i], ==, 0);
    g_assert_cmpint(
        cocoFirmwareImportMemory(p->dst, stream, buf, len, &st, &err), ==, 0);
    g_assert_no_error(err);
}

/* PREPARE and SETUP on both sides; returns with memory flowing. */
static void
pairStart(Pair *p)
{
    size_t len;

    g_assert_cmpuint(
        cmdOk(p->dst, COCO_MIGRATE_CMD_PREPARE, 0, p->prep, sizeof(p->prep)),
        ==, COCO_FAKE_PREPARE_SIZE);
    cmdOk(p->src, COCO_MIGRATE_CMD_PREPARE, 0, p->prep, sizeof(p->prep));
    len = cmdOk(p->src, COCO_MIGRATE_CMD_SETUP, 0, p->setup, sizeof(p->setup));
    g_assert_cmpuint(len, ==, COCO_FAKE_SETUP_SIZE);
    cmdOk(p->dst, COCO_MIGRATE_CMD_SETUP, 0, p->setup, len);
    g_assert_cmpint(cocoFakeKernelState(p->ks), ==,
                    COCO_FAKE_STATE_LIVE_EXPORT);
    g_assert_cmpint(cocoFakeKernelState(p->kd), ==,
                    COCO_FAKE_STATE_MEMORY_IMPORT);
}

static void
moveToken(Pair *p, uint32_t flags)
{
    size_t len = cmdOk(p->src, COCO_MIGRATE_CMD_TOKEN, flags, p->token,
                       sizeof(p->token));

    g_assert_cmpuint(len, ==, COCO_FAKE_TOKEN_SIZE);
    cmdOk(p->dst, COCO_MIGRATE_CMD_TOKEN, flags, p->token, len);
}

/* Blackout, vCPUs, start token: both sides ready to FINISH or ABORT. */
static void
pairSwitchover(Pair *p)
{
    static const uint64_t last[] = {2};
    unsigned int i;

    cmdOk(p->src, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL, 0);
    g_assert_cmpint(cocoFakeKernelState(p->ks), ==,
                    COCO_FAKE_STATE_PAUSED_EXPORT);
    moveMemory(p, 1, last, 1);
    for (i = 0; i < NVCPUS; i++) {
        g_autoptr(GBytes) state = NULL;
        g_autoptr(GError) err = NULL;
        CocoFirmwareStatus st;
        gsize size;
        const void *data;

        g_assert_cmpint(cocoKvmExportVcpuAlloc(p->src, i, &state, &st, &err),
                        ==, 0);
        g_assert_no_error(err);
        data = g_bytes_get_data(state, &size);
        g_assert_cmpuint(size, ==,
                         i == 0 ? COCO_FAKE_VCPU0_SIZE : COCO_FAKE_VCPU_SIZE);
        g_assert_cmpint(
            cocoFirmwareImportVcpu(p->dst, i, data, size, &st, &err), ==, 0);
        g_assert_no_error(err);
    }
    moveToken(p, COCO_MIGRATE_TOKEN_START);
    g_assert_cmpint(cocoFakeKernelState(p->ks), ==,
                    COCO_FAKE_STATE_POST_EXPORT);
    g_assert_cmpint(cocoFakeKernelState(p->kd), ==,
                    COCO_FAKE_STATE_POST_IMPORT);
}

static void
testFlow(gconstpointer data)
{
    bool ext = GPOINTER_TO_INT(data);
    static const uint64_t first[] = {1, 2, 3, 4};
    static const uint64_t again[] = {2, 3};
    Pair p;

    pairInit(&p, ext);
    pairStart(&p);
    moveMemory(&p, 1, first, 2);
    moveMemory(&p, 2, first + 2, 2);
    moveToken(&p, 0);
    moveMemory(&p, 1, again, 2); /* a later epoch: re-export allowed */
    moveToken(&p, 0);
    pairSwitchover(&p);
    cmdOk(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, 0);
    g_assert_cmpint(cocoFakeKernelState(p.kd), ==, COCO_FAKE_STATE_COMMITTED);
    cmdOk(p.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, 0);
    g_assert_cmpint(cocoFakeKernelState(p.ks), ==, COCO_FAKE_STATE_FINISHED);
    /* Once committed, no abort token can ever be produced. */
    cmdFail(p.dst, COCO_MIGRATE_CMD_ABORT, 0, p.token, sizeof(p.token), -EPERM,
            COCO_ERROR_FW_STATE, NULL);
    g_assert_true(cocoFakeKernelRetriesIdentical(p.ks));
    pairClear(&p);
}

static void
testAbortBeforeStartToken(void)
{
    static const uint64_t gfns[] = {7};
    Pair p;

    pairInit(&p, true);
    pairStart(&p);
    moveMemory(&p, 1, gfns, 1);
    cmdOk(p.src, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL, 0);
    /* No token is needed (nor accepted) before the start token. */
    cmdFail(p.src, COCO_MIGRATE_CMD_ABORT, 0, p.token, sizeof(p.token), -EINVAL,
            COCO_ERROR_FW_INVALID, NULL);
    cmdOk(p.src, COCO_MIGRATE_CMD_ABORT, 0, NULL, 0);
    g_assert_cmpint(cocoFakeKernelState(p.ks), ==, COCO_FAKE_STATE_IDLE);
    cmdOk(p.dst, COCO_MIGRATE_CMD_ABORT, 0, p.token, sizeof(p.token));
    g_assert_cmpint(cocoFakeKernelState(p.kd), ==,
                    COCO_FAKE_STATE_FAILED_IMPORT);
    /* The source can start a new session. */
    cmdOk(p.src, COCO_MIGRATE_CMD_PREPARE, 0, p.prep, sizeof(p.prep));
    pairClear(&p);
}

static void
testAbortAfterStartToken(void)
{
    g_autoptr(GBytes) token = NULL;
    g_autoptr(GError) err = NULL;
    CocoFirmwareStatus st;
    guint8 junk[COCO_FAKE_TOKEN_SIZE] = {0};
    gsize size;
    const void *data;
    Pair p;

    pairInit(&p, true);
    pairStart(&p);
    pairSwitchover(&p);
    /* Without the destination's abort token the source may never run. */
    cmdFail(p.src, COCO_MIGRATE_CMD_ABORT, 0, NULL, 0, -EPERM,
            COCO_ERROR_FW_STATE, &st);
    g_assert_cmpuint(st.fw_status, ==, COCO_FAKE_FW_OP_STATE_INCORRECT);
    cmdFail(p.src, COCO_MIGRATE_CMD_ABORT, 0, junk, sizeof(junk), -EBADMSG,
            COCO_ERROR_FW_INTEGRITY, &st);
    g_assert_cmpuint(st.fw_status, ==, COCO_FAKE_FW_BAD_BUNDLE);
    g_assert_cmpint(cocoFakeKernelState(p.ks), ==, COCO_FAKE_STATE_POST_EXPORT);

    /* The destination's ABORT writes the token (backend-owned buffer). */
    g_assert_cmpint(cocoKvmMigrateCmdAlloc(p.dst, COCO_MIGRATE_CMD_ABORT, 0,
                                           NULL, 0, &token, &st, &err),
                    ==, 0);
    g_assert_no_error(err);
    data = g_bytes_get_data(token, &size);
    g_assert_cmpuint(size, ==, COCO_FAKE_TOKEN_SIZE);
    g_assert_cmpint(cocoFakeKernelState(p.kd), ==,
                    COCO_FAKE_STATE_FAILED_IMPORT);
    cmdOk(p.src, COCO_MIGRATE_CMD_ABORT, 0, (void *)data, size);
    g_assert_cmpint(cocoFakeKernelState(p.ks), ==, COCO_FAKE_STATE_IDLE);
    pairClear(&p);
}

/* Sub-commands out of order, per role. */
static void
testOrder(gconstpointer data)
{
    bool ext = GPOINTER_TO_INT(data);
    uint64_t fw = ext ? COCO_FAKE_FW_OP_STATE_INCORRECT : 0;
    g_autoptr(GError) err = NULL;
    CocoFirmwareStatus st;
    guint8 vbuf[COCO_FAKE_VCPU0_SIZE];
    size_t len;
    Pair p;

    pairInit(&p, ext);
    cmdFail(p.src, COCO_MIGRATE_CMD_SETUP, 0, p.setup, sizeof(p.setup), -EPERM,
            COCO_ERROR_FW_STATE, &st);
    g_assert_cmpuint(st.fw_status, ==, fw);
    cmdFail(p.dst, COCO_MIGRATE_CMD_SETUP, 0, p.setup, sizeof(p.setup), -EPERM,
            COCO_ERROR_FW_STATE, &st);
    cmdFail(p.src, COCO_MIGRATE_CMD_TOKEN, 0, p.token, sizeof(p.token), -EPERM,
            COCO_ERROR_FW_STATE, NULL);
    cmdFail(p.src, COCO_MIGRATE_CMD_FINISH, 0, NULL, 0, -EPERM,
            COCO_ERROR_FW_STATE, NULL);
    pairStart(&p);
    cmdFail(p.src, COCO_MIGRATE_CMD_PREPARE, 0, p.prep, sizeof(p.prep), -EPERM,
            COCO_ERROR_FW_STATE, NULL);
    cmdFail(p.dst, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL, 0, -EPERM,
            COCO_ERROR_FW_STATE, NULL);
    /* The start token only once the source is paused. */
    cmdFail(p.src, COCO_MIGRATE_CMD_TOKEN, COCO_MIGRATE_TOKEN_START, p.token,
            sizeof(p.token), -EPERM, COCO_ERROR_FW_STATE, NULL);
    /* vCPU state only once the source is paused. */
    len = sizeof(vbuf);
    g_assert_cmpint(cocoFirmwareExportVcpu(p.src, 0, vbuf, &len, &st, &err), ==,
                    -EPERM);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_STATE);
    g_assert_cmpuint(st.fw_status, ==, fw);
    g_clear_error(&err);
    /* Running vCPUs keep the source from pausing. */
    cocoFakeKernelSetVcpusRunning(p.ks, true);
    cmdFail(p.src, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL, 0, -EBUSY,
            COCO_ERROR_FW_BUSY, NULL);
    cocoFakeKernelSetVcpusRunning(p.ks, false);
    cmdOk(p.src, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL, 0);
    len = sizeof(vbuf);
    g_assert_cmpint(cocoFirmwareExportVcpu(p.src, 1, vbuf, &len, &st, &err), ==,
                    0);
    /* vCPU 1 before vCPU 0 on the destination: refused. */
    g_assert_cmpint(cocoFirmwareImportVcpu(p.dst, 1, vbuf, len, &st, &err), ==,
                    -EPERM);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_STATE);
    g_clear_error(&err);
    /* Each vCPU exactly once. */
    len = sizeof(vbuf);
    g_assert_cmpint(cocoFirmwareExportVcpu(p.src, 1, vbuf, &len, &st, &err), ==,
                    -EEXIST);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_EXISTS);
    g_clear_error(&err);
    /* The start token before every vCPU arrived: fatal for the destination. */
    cmdOk(p.src, COCO_MIGRATE_CMD_TOKEN, COCO_MIGRATE_TOKEN_START, p.token,
          sizeof(p.token));
    cmdFail(p.dst, COCO_MIGRATE_CMD_TOKEN, COCO_MIGRATE_TOKEN_START, p.token,
            sizeof(p.token), -EPERM, COCO_ERROR_FW_STATE, NULL);
    g_assert_cmpint(cocoFakeKernelState(p.kd), ==,
                    COCO_FAKE_STATE_FAILED_IMPORT);
    cmdFail(p.dst, COCO_MIGRATE_CMD_FINISH, 0, NULL, 0, -EPERM,
            COCO_ERROR_FW_STATE, NULL);
    pairClear(&p);
}

/* Replay, corruption and per-page status. */
static void
testIntegrity(gconstpointer data)
{
    bool ext = GPOINTER_TO_INT(data);
    static const uint64_t gfns[] = {10, 11, 10};
    g_autoptr(GError) err = NULL;
    guint8 buf[COCO_FAKE_MEM_SIZE(3)];
    uint8_t gst[3];
    CocoFirmwareStatus st;
    size_t len = COCO_FAKE_MEM_SIZE(2);
    Pair p;

    pairInit(&p, ext);
    pairStart(&p);
    g_assert_cmpint(
        cocoFirmwareExportMemory(p.src, 1, gfns, 2, gst, buf, &len, &st, &err),
        ==, 0);
    g_assert_cmpint(cocoFirmwareImportMemory(p.dst, 1, buf, len, &st, &err), ==,
                    0);
    /* The same bundle again: a replay. */
    g_assert_cmpint(cocoFirmwareImportMemory(p.dst, 1, buf, len, &st, &err), ==,
                    -EPROTO);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_SEQUENCE);
    g_assert_cmpuint(st.fw_status, ==, ext ? COCO_FAKE_FW_BAD_COUNTER : 0);
    g_assert_cmpint(cocoFakeKernelState(p.kd), ==,
                    COCO_FAKE_STATE_FAILED_IMPORT);
    g_clear_error(&err);

    /* A page twice in one epoch: per page with the extension, else the
     * whole call fails and every page is "unknown". */
    len = sizeof(buf);
    if (ext) {
        g_assert_cmpint(cocoFirmwareExportMemory(p.src, 2, gfns + 2, 1, gst,
                                                 buf, &len, &st, &err),
                        ==, 0);
        g_assert_no_error(err);
        g_assert_cmpuint(gst[0], ==, COCO_FAKE_FW_PAGE_STATE);
        g_assert_cmpuint(st.fw_status, ==, COCO_FAKE_FW_PAGE_STATE);
    } else {
        g_assert_cmpint(cocoFirmwareExportMemory(p.src, 2, gfns + 1, 2, gst,
                                                 buf, &len, &st, &err),
                        ==, -EPERM);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_STATE);
        g_assert_cmpuint(gst[0], ==, COCO_KVM_GFN_STATUS_UNKNOWN);
        g_assert_cmpuint(gst[1], ==, COCO_KVM_GFN_STATUS_UNKNOWN);
    }
    pairClear(&p);

    /* A corrupted immutable-state bundle. */
    pairInit(&p, ext);
    cmdOk(p.dst, COCO_MIGRATE_CMD_PREPARE, 0, p.prep, sizeof(p.prep));
    memset(p.setup, 0, sizeof(p.setup));
    cmdFail(p.dst, COCO_MIGRATE_CMD_SETUP, 0, p.setup, sizeof(p.setup),
            -EBADMSG, COCO_ERROR_FW_INTEGRITY, NULL);
    pairClear(&p);
}

/* ---- errno handling ---- */

static void
testErrnoMap(gconstpointer data)
{
    bool ext = GPOINTER_TO_INT(data);
    static const struct {
        int err;
        CocoErrorCode code;
        const char *text;
    } cases[] = {
        {EPERM, COCO_ERROR_FW_STATE, "EPERM"},
        {EBADMSG, COCO_ERROR_FW_INTEGRITY, "EBADMSG"},
        {EPROTO, COCO_ERROR_FW_SEQUENCE, "EPROTO"},
        {EBUSY, COCO_ERROR_FW_BUSY, "EBUSY"},
        {EAGAIN, COCO_ERROR_FW_NOT_READY, "EAGAIN"},
        {EEXIST, COCO_ERROR_FW_EXISTS, "EEXIST"},
        {EINVAL, COCO_ERROR_FW_INVALID, "EINVAL"},
        {ENOBUFS, COCO_ERROR_FW_BUFFER, "errno"},
        {EKEYREJECTED, COCO_ERROR_FW_KEY, "EKEYREJECTED"},
        {EACCES, COCO_ERROR_FW_POLICY, "EACCES"},
        {EIO, COCO_ERROR_FW_FATAL, "EIO"},
        {ENOTTY, COCO_ERROR_NOT_SUPPORTED, "not supported"},
        {EOPNOTSUPP, COCO_ERROR_NOT_SUPPORTED, "not supported"},
        {EBADF, COCO_ERROR_SYSTEM, "EBADF"},
        {EFAULT, COCO_ERROR_SYSTEM, "EFAULT"},
        {ENOMEM, COCO_ERROR_SYSTEM, "ENOMEM"},
        {ENXIO, COCO_ERROR_SYSTEM, "errno 6"},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(CocoFakeKernel) k =
            cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, NULL);
        g_autoptr(CocoFirmware) fw = newFwOk(k, COCO_FIRMWARE_ROLE_SOURCE, ext);
        g_autoptr(GError) err = NULL;
        guint8 buf[COCO_FAKE_PREPARE_SIZE];
        CocoFirmwareStatus st;
        size_t len = sizeof(buf);

        cocoFakeKernelAddFault(k,
                               &(CocoFakeFault){COCO_KVM_IOCTL_MIGRATE_CMD,
                                                COCO_MIGRATE_CMD_PREPARE, 0, 1,
                                                -cases[i].err, 0xC0FFEE00 + i});
        g_assert_cmpint(cocoFirmwareMigrateCmd(fw, COCO_MIGRATE_CMD_PREPARE, 0,
                                               buf, &len, &st, &err),
                        ==, -cases[i].err);
        g_assert_error(err, COCO_ERROR, (int)cases[i].code);
        g_test_message("%s", err->message);
        g_assert_cmpint(cocoFirmwareErrnoToCode(-cases[i].err), ==,
                        cases[i].code);
        g_assert_cmpint(st.err, ==, -cases[i].err);
        g_assert_cmpuint(st.fw_status, ==, ext ? 0xC0FFEE00 + i : 0);
        if (!strstr(err->message, cases[i].text) ||
            !strstr(err->message, "KVM_MIGRATE_CMD prepare"))
            g_error("errno %d: unexpected message: %s", cases[i].err,
                    err->message);
        /* One attempt only: none of these is retried (EAGAIN of PREPARE
         * is polled by the caller). */
        g_assert_cmpuint(cocoFakeKernelCalls(k, COCO_KVM_IOCTL_MIGRATE_CMD), ==,
                         1);
    }
}

/* EIO from a call, and EIO from a harmless query after it: the VM
 * descriptor is another process's (KVM's mm check), not a dead firmware. */
static void
testForeignEio(void)
{
    g_autoptr(CocoFakeKernel) k =
        cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, NULL);
    g_autoptr(CocoFirmware) fw = newFwOk(k, COCO_FIRMWARE_ROLE_SOURCE, true);
    g_autoptr(GError) err = NULL;
    guint8 buf[COCO_FAKE_PREPARE_SIZE];
    size_t len = sizeof(buf);

    cocoFakeKernelAddFault(
        k, &(CocoFakeFault){COCO_FAKE_ANY, COCO_FAKE_ANY, 0, 2, -EIO, 0});
    g_assert_cmpint(cocoFirmwareMigrateCmd(fw, COCO_MIGRATE_CMD_PREPARE, 0, buf,
                                           &len, NULL, &err),
                    ==, -EIO);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_assert_nonnull(strstr(err->message, "KVM_MIGRATE_CMD prepare"));
    g_assert_nonnull(strstr(err->message, "belongs to another process"));
}

static void
testEintr(void)
{
    g_autoptr(CocoFakeKernel) k =
        cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, NULL);
    g_autoptr(CocoFirmware) fw = newFwOk(k, COCO_FIRMWARE_ROLE_SOURCE, true);
    g_autoptr(CocoFirmware) fw2 = NULL;
    g_autoptr(GError) err = NULL;
    guint8 prep[COCO_FAKE_PREPARE_SIZE];
    guint8 setup[COCO_FAKE_SETUP_SIZE];
    CocoKvmConfig cfg;

    /* Transparent: three interruptions, then success. */
    cocoFakeKernelAddFault(k, &(CocoFakeFault){COCO_KVM_IOCTL_MIGRATE_CMD,
                                               COCO_MIGRATE_CMD_PREPARE, 0, 3,
                                               -EINTR, 0});
    cmdOk(fw, COCO_MIGRATE_CMD_PREPARE, 0, prep, sizeof(prep));
    g_assert_cmpuint(cocoFakeKernelCalls(k, COCO_KVM_IOCTL_MIGRATE_CMD), ==, 4);
    g_assert_cmpuint(cocoFakeKernelSleeps(k), ==, 0);
    g_assert_true(cocoFakeKernelRetriesIdentical(k));

    /* Bounded: a kernel that never stops interrupting. */
    cocoKvmConfigInit(&cfg);
    cfg.eintr_retries = 5;
    fw2 = newFw(k, COCO_FIRMWARE_ROLE_SOURCE, &cfg, &err);
    g_assert_no_error(err);
    cocoFakeKernelAddFault(k, &(CocoFakeFault){COCO_KVM_IOCTL_MIGRATE_CMD,
                                               COCO_MIGRATE_CMD_SETUP, 0, 1000,
                                               -EINTR, 0});
    cmdFail(fw2, COCO_MIGRATE_CMD_SETUP, 0, setup, sizeof(setup), -EINTR,
            COCO_ERROR_SYSTEM, NULL);
    g_assert_cmpuint(cocoFakeKernelCalls(k, COCO_KVM_IOCTL_MIGRATE_CMD), ==,
                     4 + 6);
    g_assert_cmpint(cocoFakeKernelState(k), ==, COCO_FAKE_STATE_PREPARED);
}

static void
testEagain(void)
{
    g_autoptr(CocoFakeKernel) k =
        cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, NULL);
    g_autoptr(CocoFirmware) fw = newFwOk(k, COCO_FIRMWARE_ROLE_SOURCE, true);
    guint8 prep[COCO_FAKE_PREPARE_SIZE];
    guint8 setup[COCO_FAKE_SETUP_SIZE];
    guint8 token[COCO_FAKE_TOKEN_SIZE];
    CocoFirmwareStatus st;
    unsigned int polls = 0;

    /* PREPARE: "not ready" goes to the caller at once, who polls. */
    cocoFakeKernelSetNotReady(k, 2);
    cmdFail(fw, COCO_MIGRATE_CMD_PREPARE, 0, prep, sizeof(prep), -EAGAIN,
            COCO_ERROR_FW_NOT_READY, &st);
    g_assert_cmpuint(st.fw_status, ==, COCO_FAKE_FW_BUSY);
    g_assert_cmpuint(cocoFakeKernelCalls(k, COCO_KVM_IOCTL_MIGRATE_CMD), ==, 1);
    g_assert_cmpuint(cocoFakeKernelSleeps(k), ==, 0);
    for (polls = 1; polls < 10; polls++) {
        g_autoptr(GError) err = NULL;
        size_t len = sizeof(prep);

        if (cocoFirmwareMigrateCmd(fw, COCO_MIGRATE_CMD_PREPARE, 0, prep, &len,
                                   &st, &err) == 0)
            break;
        g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_NOT_READY);
    }
    g_assert_cmpuint(polls, ==, 2);
    g_assert_cmpint(cocoFakeKernelState(k), ==, COCO_FAKE_STATE_PREPARED);

    /* Other calls: bounded back-off 100, 200, 400 us, then success. */
    cocoFakeKernelAddFault(k, &(CocoFakeFault){COCO_KVM_IOCTL_MIGRATE_CMD,
                                               COCO_MIGRATE_CMD_SETUP, 0, 3,
                                               -EAGAIN, 0});
    cmdOk(fw, COCO_MIGRATE_CMD_SETUP, 0, setup, sizeof(setup));
    g_assert_cmpuint(cocoFakeKernelSleeps(k), ==, 3);
    g_assert_cmpuint(cocoFakeKernelSleptUs(k), ==, 100 + 200 + 400);
    g_assert_true(cocoFakeKernelRetriesIdentical(k));

    /* Past the bound (8 retries): reported as not ready. */
    cocoFakeKernelAddFault(k, &(CocoFakeFault){COCO_KVM_IOCTL_MIGRATE_CMD,
                                               COCO_MIGRATE_CMD_TOKEN, 0, 100,
                                               -EAGAIN, 0});
    cmdFail(fw, COCO_MIGRATE_CMD_TOKEN, 0, token, sizeof(token), -EAGAIN,
            COCO_ERROR_FW_NOT_READY, NULL);
    g_assert_cmpuint(cocoFakeKernelSleeps(k), ==, 3 + 8);
    g_assert_cmpuint(cocoFakeKernelSleptUs(k), ==, 700 + 100 * ((1 << 8) - 1));
}

static void
testShortBuffer(gconstpointer data)
{
    int short_errno = GPOINTER_TO_INT(data);
    g_autoptr(CocoFakeKernel) k =
        cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, NULL);
    g_autoptr(CocoFirmware) fw = newFwOk(k, COCO_FIRMWARE_ROLE_SOURCE, true);
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) out = NULL;
    g_autofree char *needed = NULL;
    guint8 small[16];
    CocoFirmwareStatus st;
    unsigned int before;
    unsigned int i;

    cocoFakeKernelSetShortErrno(k, short_errno);
    /* Caller-owned buffer: reported with the size needed, not retried. */
    cmdFail(fw, COCO_MIGRATE_CMD_PREPARE, 0, small, sizeof(small), -ENOBUFS,
            COCO_ERROR_FW_BUFFER, &st);
    g_assert_cmpuint(st.needed, ==, COCO_FAKE_PREPARE_SIZE);
    g_assert_cmpuint(cocoFakeKernelCalls(k, COCO_KVM_IOCTL_MIGRATE_CMD), ==, 1);
    g_assert_cmpint(cocoFakeKernelState(k), ==, COCO_FAKE_STATE_IDLE);

    /* Backend-owned buffer: retried once with the size needed. */
    g_assert_cmpint(cocoKvmMigrateCmdAlloc(fw, COCO_MIGRATE_CMD_PREPARE, 0,
                                           small, sizeof(small), &out, &st,
                                           &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(g_bytes_get_size(out), ==, COCO_FAKE_PREPARE_SIZE);
    g_clear_pointer(&out, g_bytes_unref);
    before = cocoFakeKernelCalls(k, COCO_KVM_IOCTL_MIGRATE_CMD);
    g_assert_cmpint(cocoKvmMigrateCmdAlloc(fw, COCO_MIGRATE_CMD_SETUP, 0, NULL,
                                           0, &out, &st, &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(g_bytes_get_size(out), ==, COCO_FAKE_SETUP_SIZE);
    g_assert_cmpuint(cocoFakeKernelCalls(k, COCO_KVM_IOCTL_MIGRATE_CMD), ==,
                     before + 2);
    g_clear_pointer(&out, g_bytes_unref);

    /* vCPU state: vCPU 0 grows the buffer; vCPU 1 fits it at once. */
    cmdOk(fw, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL, 0);
    for (i = 0; i < NVCPUS; i++) {
        before = cocoFakeKernelCalls(k, COCO_KVM_IOCTL_EXPORT_VCPU);
        g_assert_cmpint(cocoKvmExportVcpuAlloc(fw, i, &out, &st, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_cmpuint(cocoFakeKernelCalls(k, COCO_KVM_IOCTL_EXPORT_VCPU), ==,
                         before + (i == 0 ? 2 : 1));
        g_clear_pointer(&out, g_bytes_unref);
    }
    /* A failure that is not about the size is reported, not retried. */
    g_assert_cmpint(cocoKvmExportVcpuAlloc(fw, 0, &out, &st, &err), ==,
                    -EEXIST);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_EXISTS);
    g_assert_null(out);
    g_clear_error(&err);

    /* The message names the size needed. */
    needed = g_strdup_printf("%u bytes", COCO_FAKE_TOKEN_SIZE);
    {
        size_t len = 8;
        guint8 tok[8];

        g_assert_cmpint(cocoFirmwareMigrateCmd(fw, COCO_MIGRATE_CMD_TOKEN, 0,
                                               tok, &len, &st, &err),
                        ==, -ENOBUFS);
        g_assert_nonnull(strstr(err->message, needed));
        g_assert_cmpuint(st.needed, ==, COCO_FAKE_TOKEN_SIZE);
    }
}

/* -EINVAL without a larger size stays "malformed", not "too small". */
static void
testEinvalIsNotShort(void)
{
    g_autoptr(CocoFakeKernel) k =
        cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, NULL);
    g_autoptr(CocoFirmware) fw = newFwOk(k, COCO_FIRMWARE_ROLE_SOURCE, true);
    guint8 prep[COCO_FAKE_PREPARE_SIZE];
    CocoFirmwareStatus st;

    cocoFakeKernelAddFault(k,
                           &(CocoFakeFault){COCO_KVM_IOCTL_MIGRATE_CMD,
                                            COCO_FAKE_ANY, 0, 1, -EINVAL, 0});
    cmdFail(fw, COCO_MIGRATE_CMD_PREPARE, 0, prep, sizeof(prep), -EINVAL,
            COCO_ERROR_FW_INVALID, &st);
    g_assert_cmpuint(st.needed, ==, 0);
    /* Flags wider than the RFC's 16 bits never reach the kernel. */
    cmdFail(fw, COCO_MIGRATE_CMD_PREPARE, 0x10000, prep, sizeof(prep), -EINVAL,
            COCO_ERROR_FW_INVALID, &st);
    g_assert_cmpuint(cocoFakeKernelCalls(k, COCO_KVM_IOCTL_MIGRATE_CMD), ==, 1);
}

static void
testMemoryArgs(void)
{
    g_autoptr(CocoFakeKernel) k =
        cocoFakeKernelNew(COCO_FIRMWARE_ROLE_SOURCE, NVCPUS, NULL);
    g_autoptr(CocoFirmware) fw = newFwOk(k, COCO_FIRMWARE_ROLE_SOURCE, true);
    g_autoptr(GError) err = NULL;
    g_autofree uint64_t *gfns = g_new0(uint64_t, 513);
    guint8 buf[64];
    CocoFirmwareStatus st;
    size_t len = sizeof(buf);

    g_assert_cmpint(
        cocoFirmwareExportMemory(fw, 1, gfns, 513, NULL, buf, &len, &st, &err),
        ==, -EINVAL);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_INVALID);
    g_clear_error(&err);
    g_assert_cmpint(cocoFirmwareExportMemory(fw, 70000, gfns, 1, NULL, buf,
                                             &len, &st, &err),
                    ==, -EINVAL);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_FW_INVALID);
    g_assert_nonnull(strstr(err->message, "70000"));
    g_assert_cmpuint(cocoFakeKernelCalls(k, COCO_FAKE_ANY), ==,
                     cocoFakeKernelCalls(k, COCO_FAKE_CHECK_EXTENSION));
}

/* The real ioctl path on an fd that is not KVM at all. */
static void
testSystemOpsNotKvm(void)
{
    g_autoptr(GError) err = NULL;
    CocoFirmwareCaps caps;
    CocoKvmConfig cfg;
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    int closed;

    g_assert_cmpint(fd, >=, 0);
    cocoKvmConfigInit(&cfg);
    g_assert_cmpint(cocoKvmProbe(fd, NULL, &cfg, &caps, NULL, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(caps.migration);
    g_assert_null(cocoKvmFirmwareNew(COCO_FIRMWARE_ROLE_SOURCE, fd, NULL, 0,
                                     NULL, &cfg, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_NOT_SUPPORTED);
    g_clear_error(&err);
    closed = fd;
    COCO_FORCE_CLOSE(fd);
    g_assert_cmpint(cocoKvmProbe(closed, NULL, &cfg, &caps, NULL, &err), ==,
                    -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_SYSTEM);
}

/* The running kernel, when /dev/kvm is usable: it has no KVM_CAP_MIGRATION
 * and knows none of our provisional requests (plain or extended), so they
 * collide with nothing it implements. */
static void
testSystemOpsRealKvm(void)
{
    const CocoKvmOps *ops = cocoKvmSystemOps();
    g_autoptr(GError) err = NULL;
    CocoFirmwareCaps caps;
    CocoKvmConfig cfg;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int vm = -1;
    int vcpu = -1;
    unsigned int i;

    if (kvm < 0) {
        g_test_skip("/dev/kvm is not usable here");
        return;
    }
    if ((vm = ioctl(kvm, KVM_CREATE_VM, 0)) < 0) {
        COCO_FORCE_CLOSE(kvm);
        g_test_skip("KVM_CREATE_VM failed");
        return;
    }
    vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);

    cocoKvmConfigInit(&cfg);
    g_assert_cmpint(cocoKvmProbe(vm, NULL, &cfg, &caps, NULL, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(caps.migration);
    g_assert_null(cocoKvmFirmwareNew(COCO_FIRMWARE_ROLE_SOURCE, vm, NULL, 0,
                                     NULL, &cfg, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_NOT_SUPPORTED);
    g_assert_nonnull(strstr(err->message, "KVM_CAP_MIGRATION"));

    for (i = 0; i < COCO_KVM_IOCTL_LAST * 2; i++) {
        struct coco_kvm_memory_transfer_ext arg; /* the largest */
        bool ext = i >= COCO_KVM_IOCTL_LAST;
        CocoKvmIoctl which = i % COCO_KVM_IOCTL_LAST;
        bool on_vcpu = which == COCO_KVM_IOCTL_IMPORT_VCPU ||
                       which == COCO_KVM_IOCTL_EXPORT_VCPU;
        int ret;

        if (on_vcpu && vcpu < 0)
            continue;
        memset(&arg, 0, sizeof(arg));
        ret = ops->ioctl(NULL, on_vcpu ? vcpu : vm,
                         cocoKvmConfigRequest(&cfg, which, ext), &arg);
        /* KVM: unknown VM ioctls -ENOTTY, unknown vCPU ioctls -EINVAL. */
        if (ret != -ENOTTY && !(on_vcpu && ret == -EINVAL))
            g_error("the running kernel answered %d to %s%s", ret,
                    cocoKvmIoctlName(which), ext ? " (ext)" : "");
    }
    if (vcpu >= 0)
        COCO_FORCE_CLOSE(vcpu);
    COCO_FORCE_CLOSE(vm);
    COCO_FORCE_CLOSE(kvm);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_unsetenv(COCO_KVM_CONF_ENV);

    g_test_add_func("/kvm/abi/layout", testLayout);
    g_test_add_func("/kvm/abi/request", testRequestFromConfig);
    g_test_add_func("/kvm/abi/no-collision", testNoCollision);
    g_test_add_func("/kvm/config/files", testConfigFiles);
    g_test_add_func("/kvm/config/env", testConfigEnv);
    g_test_add_func("/kvm/config/override-via-env", testOverrideViaEnv);
    g_test_add_func("/kvm/capability", testCapability);
    g_test_add_func("/kvm/bad-fds", testBadFds);
    g_test_add_data_func("/kvm/flow/rfc", GINT_TO_POINTER(0), testFlow);
    g_test_add_data_func("/kvm/flow/ext", GINT_TO_POINTER(1), testFlow);
    g_test_add_func("/kvm/abort/before-start-token", testAbortBeforeStartToken);
    g_test_add_func("/kvm/abort/after-start-token", testAbortAfterStartToken);
    g_test_add_data_func("/kvm/order/rfc", GINT_TO_POINTER(0), testOrder);
    g_test_add_data_func("/kvm/order/ext", GINT_TO_POINTER(1), testOrder);
    g_test_add_data_func("/kvm/integrity/rfc", GINT_TO_POINTER(0),
                         testIntegrity);
    g_test_add_data_func("/kvm/integrity/ext", GINT_TO_POINTER(1),
                         testIntegrity);
    g_test_add_data_func("/kvm/errno/rfc", GINT_TO_POINTER(0), testErrnoMap);
    g_test_add_data_func("/kvm/errno/ext", GINT_TO_POINTER(1), testErrnoMap);
    g_test_add_func("/kvm/foreign-eio", testForeignEio);
    g_test_add_func("/kvm/eintr", testEintr);
    g_test_add_func("/kvm/eagain", testEagain);
    g_test_add_data_func("/kvm/short-buffer/e2big", GINT_TO_POINTER(-E2BIG),
                         testShortBuffer);
    g_test_add_data_func("/kvm/short-buffer/einval", GINT_TO_POINTER(-EINVAL),
                         testShortBuffer);
    g_test_add_data_func("/kvm/short-buffer/enospc", GINT_TO_POINTER(-ENOSPC),
                         testShortBuffer);
    g_test_add_func("/kvm/einval-is-not-short", testEinvalIsNotShort);
    g_test_add_func("/kvm/memory-args", testMemoryArgs);
    g_test_add_func("/kvm/system/not-kvm", testSystemOpsNotKvm);
    g_test_add_func("/kvm/system/real-kvm", testSystemOpsRealKvm);

    return g_test_run();
}
