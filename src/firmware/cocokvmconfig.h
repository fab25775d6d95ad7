/*
 * cocokvmconfig.h: numbers and limits of the kvm firmware backend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The RFC gives no ioctl or capability numbers, so the ones the kvm backend
 * issues are provisional (include/libvirt-coco/coco-kvm-uapi.h). They are
 * chosen at build time (meson options -Dkvm_*_nr, -Dkvm_cap_*) and can be
 * overridden at run time by the host configuration, a GKeyFile:
 * $COCO_KVM_CONF if set, else SYSCONFDIR/libvirt-coco/kvm.conf if present.
 * See docs/kvm-abi.rst for the keys.
 */

#pragma once

#include "internal.h"
#include "util/cocoenum.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    COCO_KVM_IOCTL_MIGRATE_CMD = 0,
    COCO_KVM_IOCTL_IMPORT_MEMORY,
    COCO_KVM_IOCTL_EXPORT_MEMORY,
    COCO_KVM_IOCTL_IMPORT_VCPU,
    COCO_KVM_IOCTL_EXPORT_VCPU,
    COCO_KVM_IOCTL_LAST
} CocoKvmIoctl;
/* The key names of the [ioctl] group: "migrate_cmd", "import_memory", ... */
COCO_ENUM_DECL(cocoKvmIoctl);

typedef struct {
    unsigned int nr[COCO_KVM_IOCTL_LAST]; /* the nr byte under KVMIO */
    unsigned int cap_migration; /* KVM_CAP_MIGRATION */
    unsigned int cap_fw_status; /* COCO_KVM_CAP_MIGRATION_FW_STATUS */
    bool fw_status_ext; /* use the *_ext forms when the kernel has them */
    unsigned int eagain_retries; /* retries of -EAGAIN (not PREPARE) */
    unsigned int eagain_backoff_us; /* first back-off, doubled each time */
    unsigned int eintr_retries; /* bound on transparent -EINTR retries */
    unsigned int max_gfns; /* pages per memory call */
    unsigned int max_streams; /* forward streams + 1 backward */
    unsigned int mig_version; /* bundle format version */
} CocoKvmConfig;

/* The environment variable naming the configuration file (tests). */
#define COCO_KVM_CONF_ENV "COCO_KVM_CONF"

/* Fill @cfg with the built-in defaults (build options included). */
void cocoKvmConfigInit(CocoKvmConfig *cfg);

/* Overlay the keys of the GKeyFile @path on @cfg and validate the result.
 * Unknown groups or keys are errors. @cfg is unchanged on failure. */
int cocoKvmConfigLoadFile(CocoKvmConfig *cfg, const char *path, GError **error);

/* The configuration file used by cocoKvmConfigLoad(). */
const char *cocoKvmConfigPath(void);

/* Defaults, then the configuration file if it exists ($COCO_KVM_CONF must
 * exist when set). */
int cocoKvmConfigLoad(CocoKvmConfig *cfg, GError **error);

/* Check @cfg: numbers in range, distinct ioctl numbers and capabilities. */
int cocoKvmConfigValidate(const CocoKvmConfig *cfg, GError **error);

/* The ioctl request for @which: the RFC structure, or with @ext the
 * libvirt-coco extended structure (same nr, larger size). */
unsigned long cocoKvmConfigRequest(const CocoKvmConfig *cfg, CocoKvmIoctl which,
                                   bool ext);

/* "KVM_MIGRATE_CMD", "KVM_IMPORT_MEMORY", ... */
const char *cocoKvmIoctlName(CocoKvmIoctl which);
