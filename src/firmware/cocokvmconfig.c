/*
 * cocokvmconfig.c: numbers and limits of the kvm firmware backend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "firmware/cocokvmconfig.h"
#include "firmware/cocokvmuapi.h"
#include "util/cocoerror.h"
#include "util/cocokeyfile.h"
#include "util/cocomath.h"

#include <errno.h>
#include <limits.h>

COCO_ENUM_IMPL(cocoKvmIoctl, COCO_KVM_IOCTL_LAST, "migrate_cmd",
               "import_memory", "export_memory", "import_vcpu", "export_vcpu");

static const char *const cocoKvmIoctlNames[] = {
    "KVM_MIGRATE_CMD", "KVM_IMPORT_MEMORY", "KVM_EXPORT_MEMORY",
    "KVM_IMPORT_VCPU", "KVM_EXPORT_VCPU",
};
G_STATIC_ASSERT(G_N_ELEMENTS(cocoKvmIoctlNames) == COCO_KVM_IOCTL_LAST);

const char *
cocoKvmIoctlName(CocoKvmIoctl which)
{
    if ((unsigned int)which >= COCO_KVM_IOCTL_LAST)
        return NULL;
    return cocoKvmIoctlNames[which];
}

void
cocoKvmConfigInit(CocoKvmConfig *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->nr[COCO_KVM_IOCTL_MIGRATE_CMD] = _IOC_NR(KVM_MIGRATE_CMD);
    cfg->nr[COCO_KVM_IOCTL_IMPORT_MEMORY] = _IOC_NR(KVM_IMPORT_MEMORY);
    cfg->nr[COCO_KVM_IOCTL_EXPORT_MEMORY] = _IOC_NR(KVM_EXPORT_MEMORY);
    cfg->nr[COCO_KVM_IOCTL_IMPORT_VCPU] = _IOC_NR(KVM_IMPORT_VCPU);
    cfg->nr[COCO_KVM_IOCTL_EXPORT_VCPU] = _IOC_NR(KVM_EXPORT_VCPU);
    cfg->cap_migration = KVM_CAP_MIGRATION;
    cfg->cap_fw_status = COCO_KVM_CAP_MIGRATION_FW_STATUS;
    cfg->fw_status_ext = true;
    cfg->eagain_retries = 8;
    cfg->eagain_backoff_us = 100;
    cfg->eintr_retries = 1000;
    cfg->max_gfns = 512;
    cfg->max_streams = 512;
    cfg->mig_version = 0;
}

unsigned long
cocoKvmConfigRequest(const CocoKvmConfig *cfg, CocoKvmIoctl which, bool ext)
{
    unsigned int nr = cfg->nr[which];
    size_t size = 0;

    switch (which) {
    case COCO_KVM_IOCTL_MIGRATE_CMD:
        size = ext ? sizeof(struct coco_kvm_migrate_cmd_ext)
                   : sizeof(struct kvm_migrate_cmd);
        break;
    case COCO_KVM_IOCTL_IMPORT_MEMORY:
    case COCO_KVM_IOCTL_EXPORT_MEMORY:
        size = ext ? sizeof(struct coco_kvm_memory_transfer_ext)
                   : sizeof(struct kvm_memory_transfer);
        break;
    case COCO_KVM_IOCTL_IMPORT_VCPU:
    case COCO_KVM_IOCTL_EXPORT_VCPU:
        size = ext ? sizeof(struct coco_kvm_vcpu_transfer_ext)
                   : sizeof(struct kvm_vcpu_transfer);
        break;
    case COCO_KVM_IOCTL_LAST:
    default:
        return 0;
    }
    return _IOC(_IOC_READ | _IOC_WRITE, KVMIO, nr, size);
}

/* Parse "0x.." as hexadecimal, anything else as decimal, into [min, max]. */
static int
cocoKvmConfigParseUInt(GKeyFile *kf, const char *path, const char *group,
                       const char *key, unsigned int min, unsigned int max,
                       unsigned int *res, GError **error)
{
    g_autofree char *raw = NULL;
    const char *str;
    uint64_t val = 0;
    int rc;

    if (!(raw = g_key_file_get_value(kf, group, key, NULL)))
        return 0;
    str = g_strstrip(raw);
    if (STRPREFIX(str, "0x") || STRPREFIX(str, "0X"))
        rc = cocoStrToU64(str, 16, &val);
    else
        rc = cocoStrToU64(str, 10, &val);
    if (rc < 0 || val < min || val > max)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("invalid value '%1$s' of key '%2$s' in group '%3$s' of '%4$s': expected a number from %5$u to %6$u"),
            str, key, group, path, min, max);
    *res = (unsigned int)val;
    return 0;
}

static int
cocoKvmConfigCheckKeys(GKeyFile *kf, const char *path, GError **error)
{
    static const char *const known[][2] = {
        {"ioctl", "migrate_cmd"},    {"ioctl", "import_memory"},
        {"ioctl", "export_memory"},  {"ioctl", "import_vcpu"},
        {"ioctl", "export_vcpu"},    {"capability", "migration"},
        {"capability", "fw_status"}, {"extension", "fw_status"},
        {"retry", "eagain_retries"}, {"retry", "eagain_backoff_us"},
        {"retry", "eintr_retries"},  {"limits", "max_gfns"},
        {"limits", "max_streams"},   {"limits", "mig_version"},
    };
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    size_t g;

    for (g = 0; groups[g]; g++) {
        g_auto(GStrv) keys = g_key_file_get_keys(kf, groups[g], NULL, NULL);
        size_t k;

        for (k = 0; keys && keys[k]; k++) {
            size_t i;
            bool found = false;

            for (i = 0; i < G_N_ELEMENTS(known) && !found; i++)
                found = STREQ(known[i][0], groups[g]) &&
                        STREQ(known[i][1], keys[k]);
            if (!found)
                return cocoErrorSet(
                    error, COCO_ERROR_INVALID_ARG,
                    _("unknown key '%1$s' in group '%2$s' of '%3$s'"), keys[k],
                    groups[g], path);
        }
    }
    return 0;
}

int
cocoKvmConfigValidate(const CocoKvmConfig *cfg, GError **error)
{
    size_t i, j;

    for (i = 0; i < COCO_KVM_IOCTL_LAST; i++) {
        if (cfg->nr[i] > 0xff)
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("ioctl number '%1$u' of '%2$s' does not fit in one byte"),
                cfg->nr[i], cocoKvmIoctlName(i));
        for (j = 0; j < i; j++) {
            if (cfg->nr[i] == cfg->nr[j])
                return cocoErrorSet(
                    error, COCO_ERROR_INVALID_ARG,
                    _("ioctl number '0x%1$02x' is given to both '%2$s' and '%3$s'"),
                    cfg->nr[i], cocoKvmIoctlName(j), cocoKvmIoctlName(i));
        }
    }
    if (cfg->cap_migration == 0 || cfg->cap_fw_status == 0 ||
        cfg->cap_migration > INT_MAX || cfg->cap_fw_status > INT_MAX)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("capability numbers '%1$u' and '%2$u' must be from 1 to %3$d"),
            cfg->cap_migration, cfg->cap_fw_status, INT_MAX);
    if (cfg->cap_migration == cfg->cap_fw_status)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("capability number '%1$u' is given to both the migration capability and the firmware-status extension"),
            cfg->cap_migration);
    if (cfg->max_gfns == 0 || cfg->max_streams < 2)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("limits max_gfns '%1$u' and max_streams '%2$u' must be at least 1 and 2"),
            cfg->max_gfns, cfg->max_streams);
    return 0;
}

int
cocoKvmConfigLoadFile(CocoKvmConfig *cfg, const char *path, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    CocoKvmConfig tmp = *cfg;
    size_t i;

    if (!cocoKeyFileLoad(kf, path, &err))
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("cannot read the KVM configuration '%1$s': %2$s"),
                            path, err->message);
    if (cocoKvmConfigCheckKeys(kf, path, error) < 0)
        return -1;

    for (i = 0; i < COCO_KVM_IOCTL_LAST; i++) {
        if (cocoKvmConfigParseUInt(kf, path, "ioctl",
                                   cocoKvmIoctlTypeToString(i), 0, 0xff,
                                   &tmp.nr[i], error) < 0)
            return -1;
    }
    if (cocoKvmConfigParseUInt(kf, path, "capability", "migration", 1, INT_MAX,
                               &tmp.cap_migration, error) < 0 ||
        cocoKvmConfigParseUInt(kf, path, "capability", "fw_status", 1, INT_MAX,
                               &tmp.cap_fw_status, error) < 0 ||
        cocoKvmConfigParseUInt(kf, path, "retry", "eagain_retries", 0, 64,
                               &tmp.eagain_retries, error) < 0 ||
        cocoKvmConfigParseUInt(kf, path, "retry", "eagain_backoff_us", 0,
                               1000000, &tmp.eagain_backoff_us, error) < 0 ||
        cocoKvmConfigParseUInt(kf, path, "retry", "eintr_retries", 0, 1000000,
                               &tmp.eintr_retries, error) < 0 ||
        cocoKvmConfigParseUInt(kf, path, "limits", "max_gfns", 1, 1U << 20,
                               &tmp.max_gfns, error) < 0 ||
        cocoKvmConfigParseUInt(kf, path, "limits", "max_streams", 2, 1U << 16,
                               &tmp.max_streams, error) < 0 ||
        cocoKvmConfigParseUInt(kf, path, "limits", "mig_version", 0, 0xffff,
                               &tmp.mig_version, error) < 0)
        return -1;
    if (g_key_file_has_key(kf, "extension", "fw_status", NULL)) {
        g_autoptr(GError) berr = NULL;
        gboolean val =
            g_key_file_get_boolean(kf, "extension", "fw_status", &berr);

        if (berr)
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("invalid value of key 'fw_status' in group 'extension' of '%1$s': %2$s"),
                path, berr->message);
        tmp.fw_status_ext = val;
    }

    if (cocoKvmConfigValidate(&tmp, error) < 0) {
        cocoErrorPrefix(error, _("in '%1$s': "), path);
        return -1;
    }
    *cfg = tmp;
    return 0;
}

const char *
cocoKvmConfigPath(void)
{
    const char *env = g_getenv(COCO_KVM_CONF_ENV);

    if (env && *env)
        return env;
    return COCO_SYSCONFDIR "/libvirt-coco/kvm.conf";
}

int
cocoKvmConfigLoad(CocoKvmConfig *cfg, GError **error)
{
    const char *env = g_getenv(COCO_KVM_CONF_ENV);
    const char *path = cocoKvmConfigPath();

    cocoKvmConfigInit(cfg);
    /* The system file is optional; a file named in the environment is not. */
    if (!(env && *env) && !g_file_test(path, G_FILE_TEST_EXISTS))
        return 0;
    return cocoKvmConfigLoadFile(cfg, path, error);
}
