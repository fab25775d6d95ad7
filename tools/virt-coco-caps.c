/*
 * virt-coco-caps.c: "virt-coco capabilities"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What this host offers for confidential migration: the firmware backends
 * and where each runs, the KVM capability probe, the (provisional) ioctl
 * numbers, the identity of the emulated platform, the technologies and how
 * far each is supported, and the host's VFIO unmap safety with the
 * interposer qemu-coco preloads (README.rst, "What runs where").
 */

#include "virt-coco.h"
#include "firmware/cocoemu.h"
#include "firmware/cocoemuplatform.h"
#include "firmware/cocokvm.h"
#include "firmware/cocokvmconfig.h"
#include "conf/cocomigrationdef.h"
#include "agent/cocoagentvfio.h"
#include "util/cocohex.h"
#include "vfio/cocovfiocheck.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include <unistd.h>

typedef struct {
    const char *backend;
    /* KVM */
    const char *kvm_dev;
    bool kvm_usable;
    char *kvm_error;
    bool kvm_migration;
    bool kvm_fw_status;
    CocoKvmConfig kvm_cfg;
    const char *kvm_cfg_source;
    /* emulated */
    const char *platform_path;
    CocoEmuPlatform *platform;
    char *platform_error;
    /* VFIO */
    CocoVfioHostReport *vfio;
    bool interposer_installed;
} CocoCaps;

/* Where each firmware backend runs (README.rst, "What runs where"). */
static const struct {
    const char *name;
    const char *runs_in;
    const char *detail;
} cocoCapsBackends[] = {
    {"emulated", "agent",
     N_("runs in the host agent virtcocod: a software firmware following the TDX module's migration rules; the backend migrations use today")},
    {"kvm", "vmm",
     N_("runs in the VMM's own process (<libvirt-coco/coco-kvm.h>): KVM refuses VM and vCPU ioctls from any other process; no kernel implements the RFC yet and no shipped program issues it")},
};

/* How far each technology of the XML is supported. */
static const struct {
    CocoTechnology technology;
    const char *support;
    const char *detail;
} cocoCapsTechnologies[] = {
    {COCO_TECHNOLOGY_TDX, "migration",
     N_("libvirt's migration phases mapped onto the RFC's sub-commands, through the emulated firmware (TDX rules) or the kvm backend")},
    {COCO_TECHNOLOGY_SEV, "policy",
     N_("domain XML and destination policy only; a migration runs the same TDX-style emulated phases, the SEV mapping is future work")},
    {COCO_TECHNOLOGY_SEV_SNP, "policy",
     N_("domain XML and destination policy only; a migration runs the same TDX-style emulated phases, the SEV-SNP mapping is future work")},
};
G_STATIC_ASSERT(G_N_ELEMENTS(cocoCapsTechnologies) == COCO_TECHNOLOGY_LAST);

static void
cocoCapsClear(CocoCaps *caps)
{
    g_free(caps->kvm_error);
    g_free(caps->platform_error);
    if (caps->platform)
        cocoEmuPlatformUnref(caps->platform);
    cocoVfioHostReportFree(caps->vfio);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CocoCaps, cocoCapsClear)

/* Probe KVM_CAP_MIGRATION on a scratch VM of the running kernel. A host
 * without a usable /dev/kvm is a fact to report, not an error. */
static void
cocoCapsProbeKvm(CocoCaps *caps)
{
    g_autoptr(GError) err = NULL;
    CocoFirmwareCaps fwcaps;
    int kvm;
    int vm;

    if ((kvm = open(caps->kvm_dev, O_RDWR | O_CLOEXEC)) < 0) {
        caps->kvm_error = g_strdup_printf(_("cannot open '%1$s': %2$s"),
                                          caps->kvm_dev, g_strerror(errno));
        return;
    }
    if ((vm = ioctl(kvm, KVM_CREATE_VM, 0)) < 0) {
        caps->kvm_error =
            g_strdup_printf(_("cannot create a VM: %1$s"), g_strerror(errno));
        close(kvm);
        return;
    }
    caps->kvm_usable = true;
    if (cocoKvmProbe(vm, NULL, &caps->kvm_cfg, &fwcaps, &caps->kvm_fw_status,
                     &err) < 0)
        caps->kvm_error = g_strdup(err->message);
    else
        caps->kvm_migration = fwcaps.migration;
    close(vm);
    close(kvm);
}

static void
cocoCapsLoadPlatform(CocoCaps *caps)
{
    g_autoptr(GError) err = NULL;

    if (!g_file_test(caps->platform_path, G_FILE_TEST_EXISTS)) {
        caps->platform_error = g_strdup_printf(
            _("no platform identity at '%1$s' yet (the host agent creates it on its first start)"),
            caps->platform_path);
        return;
    }
    if (!(caps->platform =
              cocoEmuPlatformLoad(caps->platform_path, false, &err)))
        caps->platform_error = g_strdup(err->message);
}

/* The host's VFIO unmap safety (every free group probed; unprivileged
 * callers get "unknown" with the reason) and the interposer. */
static void
cocoCapsProbeVfio(CocoCaps *caps)
{
    g_autoptr(GError) err = NULL;

    caps->vfio = cocoVfioCheckHost("/dev", -1, NULL, &err);
    caps->interposer_installed =
        g_file_test(COCO_VFIO_INTERPOSER, G_FILE_TEST_EXISTS);
}

static void
cocoCapsPrintJson(CocoCtl *ctl, const CocoCaps *caps)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;
    unsigned int i;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "backend");
    json_builder_add_string_value(b, caps->backend);

    json_builder_set_member_name(b, "backends");
    json_builder_begin_object(b);
    for (i = 0; i < G_N_ELEMENTS(cocoCapsBackends); i++) {
        json_builder_set_member_name(b, cocoCapsBackends[i].name);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "runs_in");
        json_builder_add_string_value(b, cocoCapsBackends[i].runs_in);
        json_builder_set_member_name(b, "detail");
        json_builder_add_string_value(b, _(cocoCapsBackends[i].detail));
        json_builder_end_object(b);
    }
    json_builder_end_object(b);

    json_builder_set_member_name(b, "technologies");
    json_builder_begin_object(b);
    for (i = 0; i < G_N_ELEMENTS(cocoCapsTechnologies); i++) {
        json_builder_set_member_name(
            b, cocoTechnologyTypeToString(cocoCapsTechnologies[i].technology));
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "support");
        json_builder_add_string_value(b, cocoCapsTechnologies[i].support);
        json_builder_set_member_name(b, "detail");
        json_builder_add_string_value(b, _(cocoCapsTechnologies[i].detail));
        json_builder_end_object(b);
    }
    json_builder_end_object(b);

    json_builder_set_member_name(b, "vfio");
    json_builder_begin_object(b);
    if (caps->vfio) {
        json_builder_set_member_name(b, "host");
        json_builder_add_value(b, cocoAgentVfioReportToJson(caps->vfio));
    }
    json_builder_set_member_name(b, "interposer");
    json_builder_add_string_value(b, COCO_VFIO_INTERPOSER);
    json_builder_set_member_name(b, "interposer_installed");
    json_builder_add_boolean_value(b, caps->interposer_installed);
    json_builder_end_object(b);

    json_builder_set_member_name(b, "kvm");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "device");
    json_builder_add_string_value(b, caps->kvm_dev);
    json_builder_set_member_name(b, "usable");
    json_builder_add_boolean_value(b, caps->kvm_usable);
    json_builder_set_member_name(b, "migration");
    json_builder_add_boolean_value(b, caps->kvm_migration);
    json_builder_set_member_name(b, "firmware_status_extension");
    json_builder_add_boolean_value(b, caps->kvm_fw_status);
    if (caps->kvm_error) {
        json_builder_set_member_name(b, "error");
        json_builder_add_string_value(b, caps->kvm_error);
    }
    json_builder_set_member_name(b, "numbers_from");
    json_builder_add_string_value(b, caps->kvm_cfg_source);
    json_builder_set_member_name(b, "ioctls");
    json_builder_begin_object(b);
    for (i = 0; i < COCO_KVM_IOCTL_LAST; i++) {
        g_autofree char *req = g_strdup_printf(
            "0x%08lx", cocoKvmConfigRequest(&caps->kvm_cfg, i, false));

        json_builder_set_member_name(b, cocoKvmIoctlName(i));
        json_builder_add_string_value(b, req);
    }
    json_builder_end_object(b);
    json_builder_set_member_name(b, "cap_migration");
    json_builder_add_int_value(b, caps->kvm_cfg.cap_migration);
    json_builder_end_object(b);

    json_builder_set_member_name(b, "emulated");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "max_streams");
    json_builder_add_int_value(b, COCO_EMU_MAX_STREAMS);
    json_builder_set_member_name(b, "max_pages_per_bundle");
    json_builder_add_int_value(b, COCO_EMU_MAX_GFNS);
    json_builder_set_member_name(b, "bundle_version");
    json_builder_add_int_value(b, COCO_EMU_BUNDLE_VERSION);
    json_builder_set_member_name(b, "platform_file");
    json_builder_add_string_value(b, caps->platform_path);
    if (caps->platform) {
        const CocoEmuPlatform *pf = caps->platform;
        g_autofree char *id =
            cocoHexEncode(cocoEmuPlatformGetId(pf), COCO_PLATFORM_ID_LEN);
        g_autofree char *agent =
            cocoHexEncode(cocoEmuPlatformGetAgentHash(pf), COCO_AGENT_HASH_LEN);

        json_builder_set_member_name(b, "platform_id");
        json_builder_add_string_value(b, id);
        json_builder_set_member_name(b, "agent_hash");
        json_builder_add_string_value(b, agent);
        json_builder_set_member_name(b, "tcb");
        json_builder_begin_object(b);
        for (i = 0; i < COCO_TCB_COMPONENT_LAST; i++) {
            json_builder_set_member_name(b, cocoTcbComponentTypeToString(i));
            json_builder_add_int_value(b, cocoEmuPlatformGetSvn(pf, i));
        }
        json_builder_end_object(b);
    } else {
        json_builder_set_member_name(b, "platform_error");
        json_builder_add_string_value(b, caps->platform_error);
    }
    json_builder_end_object(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    cocoCtlPrintJson(ctl, root);
}

/* @label (translated) and spaces to fill 26 characters, counted in
 * characters rather than bytes, then a space: the values line up in every
 * language. */
static void
cocoCapsLabel(const char *label)
{
    glong n = g_utf8_strlen(label, -1);

    fputs(label, stdout);
    for (; n < 26; n++)
        putchar(' ');
    putchar(' ');
}

static void
cocoCapsPrint(const CocoCaps *caps)
{
    unsigned int i;

    cocoCapsLabel(_("Firmware backend:"));
    printf("%s\n", caps->backend);
    for (i = 0; i < G_N_ELEMENTS(cocoCapsBackends); i++)
        printf("  %-24s %s\n", cocoCapsBackends[i].name,
               _(cocoCapsBackends[i].detail));
    cocoCapsLabel(_("KVM device:"));
    printf("%s\n", caps->kvm_dev);
    cocoCapsLabel(_("KVM_CAP_MIGRATION:"));
    if (!caps->kvm_usable)
        printf("%s\n", caps->kvm_error);
    else if (caps->kvm_migration)
        printf("%s\n", _("present"));
    else
        printf(
            "%s\n",
            _("absent: this kernel does not implement KVM_CAP_MIGRATION (no kernel implements the RFC yet; the emulated backend is used)"));
    printf(_("KVM ioctl numbers (%1$s):\n"), caps->kvm_cfg_source);
    for (i = 0; i < COCO_KVM_IOCTL_LAST; i++)
        printf("  %-24s 0x%08lx\n", cocoKvmIoctlName(i),
               cocoKvmConfigRequest(&caps->kvm_cfg, i, false));
    printf("  %-24s %u\n", "KVM_CAP_MIGRATION", caps->kvm_cfg.cap_migration);
    printf(
        _("Emulated firmware: up to %1$u forward streams, %2$u pages per bundle, bundle version %3$u\n"),
        COCO_EMU_MAX_STREAMS, COCO_EMU_MAX_GFNS, COCO_EMU_BUNDLE_VERSION);
    if (caps->platform) {
        const CocoEmuPlatform *pf = caps->platform;
        g_autofree char *id =
            cocoHexEncode(cocoEmuPlatformGetId(pf), COCO_PLATFORM_ID_LEN);

        cocoCapsLabel(_("Platform identity:"));
        printf("%s\n", id);
        cocoCapsLabel(_("Platform TCB SVNs:"));
        for (i = 0; i < COCO_TCB_COMPONENT_LAST; i++)
            printf("%s%s=%u", i ? " " : "", cocoTcbComponentTypeToString(i),
                   cocoEmuPlatformGetSvn(pf, i));
        printf("\n");
    } else {
        cocoCapsLabel(_("Platform identity:"));
        printf("%s\n", caps->platform_error);
    }
    printf("%s\n", _("Technologies:"));
    for (i = 0; i < G_N_ELEMENTS(cocoCapsTechnologies); i++)
        printf("  %-24s %s: %s\n",
               cocoTechnologyTypeToString(cocoCapsTechnologies[i].technology),
               cocoCapsTechnologies[i].support,
               _(cocoCapsTechnologies[i].detail));
    cocoCapsLabel(_("VFIO unmap:"));
    printf("%s\n", caps->vfio ? caps->vfio->verdict : "?");
    cocoCapsLabel(_("VFIO interposer:"));
    if (caps->interposer_installed)
        printf(
            _("%1$s (qemu-coco preloads it into QEMU unless vfio_interposer = no)\n"),
            COCO_VFIO_INTERPOSER);
    else
        printf(_("%1$s is not installed\n"), COCO_VFIO_INTERPOSER);
}

int
cocoCmdCapabilities(CocoCtl *ctl, int argc, char **argv)
{
    g_autofree char *backend = NULL;
    g_autofree char *platform = NULL;
    GOptionEntry entries[] = {
        {"backend", 0, 0, G_OPTION_ARG_STRING, &backend,
         N_("firmware backend to report: 'emulated' or 'kvm'"), N_("NAME")},
        {"platform", 0, 0, G_OPTION_ARG_FILENAME, &platform,
         N_("the emulated platform's identity file"), N_("FILE")},
        G_OPTION_ENTRY_NULL,
    };
    g_autoptr(GError) err = NULL;
    g_auto(CocoCaps) caps = {0};

    if (!cocoCtlParseOptions(ctl, entries, &argc, &argv))
        return COCO_EXIT_USAGE;
    if (argc != 1)
        return cocoCtlUsageError(
            ctl, _("command 'capabilities' takes no arguments"));
    if (backend && STRNEQ(backend, "emulated") && STRNEQ(backend, "kvm"))
        return cocoCtlUsageError(
            ctl,
            _("unknown firmware backend '%1$s': expected 'emulated' or 'kvm'"),
            backend);

    caps.backend = backend ? backend : "emulated";
    caps.kvm_dev = g_getenv("COCO_KVM_DEVICE");
    if (!caps.kvm_dev)
        caps.kvm_dev = "/dev/kvm";
    caps.platform_path = platform ? platform : COCO_PLATFORM_FILE;

    /* A malformed number file is an error the operator must fix. */
    if (cocoKvmConfigLoad(&caps.kvm_cfg, &err) < 0)
        return cocoCtlReportError(ctl, err);
    caps.kvm_cfg_source = g_file_test(cocoKvmConfigPath(), G_FILE_TEST_EXISTS)
                              ? cocoKvmConfigPath()
                              : _("built-in provisional numbers");

    cocoCapsProbeKvm(&caps);
    cocoCapsLoadPlatform(&caps);
    cocoCapsProbeVfio(&caps);

    if (STREQ(caps.backend, "kvm") && !caps.kvm_migration) {
        g_autoptr(GError) e2 = NULL;

        cocoErrorSet(
            &e2, COCO_ERROR_NOT_SUPPORTED,
            _("the kvm firmware backend is not usable on this host: %1$s"),
            caps.kvm_error ? caps.kvm_error
                           : _("the kernel has no KVM_CAP_MIGRATION"));
        return cocoCtlReportError(ctl, e2);
    }

    if (ctl->json)
        cocoCapsPrintJson(ctl, &caps);
    else
        cocoCapsPrint(&caps);
    return COCO_EXIT_OK;
}
