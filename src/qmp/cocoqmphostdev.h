/*
 * cocoqmphostdev.h: a VFIO host device hot-plugged into a confidential
 * domain, as the relay sees it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libvirt's qemu hook has no hot-plug operation, so the relay checks
 * libvirt's device_add of a VFIO PCI device (docs/hook.rst, "Hot-plug"):
 * behind a vIOMMU that lets the guest use IOVAs up to 2^64-1 (QEMU's
 * command line says which), the host agent decides from the host kernel's
 * fix and the domain's policy (the gate 'hostdev'); without an agent the
 * device is refused. Behind no vIOMMU or a narrow one it passes.
 */

#pragma once

#include "internal.h"
#include "qmp/cocoqmpmessage.h"

#include <stdbool.h>

typedef struct {
    char *model; /* libvirt's name ("intel", "amd", "virtio", "smmuv3") or
                    QEMU's driver for another; NULL: no vIOMMU */
    unsigned int awBits; /* aw-bits, 0 when not set */
} CocoQmpViommu;

void cocoQmpViommuClear(CocoQmpViommu *viommu);

/*
 * cocoQmpViommuFromArgv:
 * The vIOMMU on QEMU's command line: -device intel-iommu, amd-iommu,
 * virtio-iommu-pci (or -device), any other "-iommu" driver, each in the
 * key=value or the JSON form, with aw-bits; -machine ...,iommu=smmuv3.
 */
void cocoQmpViommuFromArgv(int argc, char *const *argv, CocoQmpViommu *viommu);

/* Whether it lets the guest use IOVAs up to 2^64-1 (docs/vfio.rst, the
 * same rule as the hook's). */
bool cocoQmpViommuIsWide(const CocoQmpViommu *viommu);

/*
 * cocoQmpHostdevIsVfioAdd:
 * Whether libvirt's @msg hot-plugs a VFIO PCI device: device_add with the
 * driver vfio-pci (or vfio-pci-nohotplug), or the same through HMP
 * (human-monitor-command "device_add vfio-pci,..."). *@device (may be
 * NULL) gets its name: the host address, the sysfs path or the id.
 */
bool cocoQmpHostdevIsVfioAdd(const CocoQmpMessage *msg, char **device);

/* The relay's refusal of @device with the agent's (or its own) @reason. */
char *cocoQmpHostdevRefusal(const char *device, const CocoQmpViommu *viommu,
                            const char *reason);
