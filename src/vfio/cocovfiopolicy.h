/*
 * cocovfiopolicy.h: refusing VFIO + 64-bit vIOMMU on unfixed host kernels
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Used by the libvirt hook before a domain starts or a migration arrives.
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/coco-vfio.h"
#include "libvirt-coco/coco-migration-def.h"

typedef struct {
    size_t
        nhostdevs; /* VFIO host devices (hostdev pci/mdev, interface hostdev) */
    char *first_hostdev; /* e.g. "0000:03:00.0", or NULL */
    char *iommu_model; /* <iommu model=...>, or NULL without a vIOMMU */
    unsigned int aw_bits; /* <driver aw_bits=...>, 0 when not set */
    bool wide_iova; /* the vIOMMU lets the guest use IOVAs up to 2^64-1 */
    bool unsafe; /* hostdevs + wide vIOMMU + host kernel without the fix */
    bool overridden; /* unsafe but allowed by allowUnsafeIommu='yes' */
} CocoVfioPolicyResult;

void cocoVfioPolicyResultClear(CocoVfioPolicyResult *result);

/* Whether a vIOMMU of libvirt's @model ("intel", "amd", "virtio",
 * "smmuv3", or any other) with <driver aw_bits=@aw_bits> (0: not set) lets
 * the guest use IOVAs up to 2^64-1. NULL: no vIOMMU. */
bool cocoVfioPolicyIommuIsWide(const char *model, unsigned int aw_bits);

/*
 * cocoVfioPolicyCheckHost:
 * The host's half of the policy, for a VFIO host device behind a wide
 * vIOMMU: allowed on a kernel with the fix, or by allowUnsafeIommu='yes'
 * in @def (then *@overridden); otherwise COCO_ERROR_VFIO_UNSAFE saying
 * whether the kernel lacks the fix or the probe failed (@fix_detail: why
 * the status is unknown), with the remedies.
 */
int cocoVfioPolicyCheckHost(const CocoMigrationDef *def,
                            CocoVfioFixStatus host_fix, const char *fix_detail,
                            bool *overridden, GError **error);

/*
 * cocoVfioPolicyCheckDomain:
 * @domain_xml: a libvirt domain XML document
 * @def: the domain's parsed <coco:migration>, or NULL
 * @host_fix: the host kernel's fix status (cocoVfioContainerGetFixStatus(),
 *            or COCO_VFIO_FIX_UNKNOWN when it could not be probed)
 * @fix_detail: (nullable): why @host_fix is unknown
 * @result: (optional): what was found
 * Refuses (COCO_ERROR_VFIO_UNSAFE) a domain with VFIO host devices behind a
 * vIOMMU exposing 64-bit IOVAs (model 'amd', or 'virtio' without an
 * aw_bits limit below 64) on a host kernel without the fix, unless @def
 * sets allowUnsafeIommu='yes'. Malformed XML gives COCO_ERROR_XML_*.
 */
int cocoVfioPolicyCheckDomain(const char *domain_xml,
                              const CocoMigrationDef *def,
                              CocoVfioFixStatus host_fix,
                              const char *fix_detail,
                              CocoVfioPolicyResult *result, GError **error);
