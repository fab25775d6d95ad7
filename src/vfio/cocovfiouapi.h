/*
 * cocovfiouapi.h: the VFIO and iommufd kernel ABI used by src/vfio
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * <linux/vfio.h> of the build host provides the type1 ABI. The iommufd ABI
 * (Linux 6.2) and the VFIO device cdev ioctls (Linux 6.6) are newer than
 * Debian 12's headers, so their documented layouts are declared here.
 */

#pragma once

#include <stdint.h>
#include <sys/ioctl.h>
#include <linux/types.h>
#include <linux/vfio.h>

/* The header's own minimum size of struct vfio_iommu_type1_info (ABI v5.4
 * and later carry cap_offset; older kernels fill only the first 16 bytes). */
#define COCO_VFIO_INFO_MINSZ 16
#define COCO_VFIO_INFO_CAPSZ 24

#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd {
    __u32 argsz;
    __u32 flags;
    __s32 iommufd;
    __u32 out_devid;
};
# define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif

#ifndef VFIO_DEVICE_ATTACH_IOMMUFD_PT
struct vfio_device_attach_iommufd_pt {
    __u32 argsz;
    __u32 flags;
    __u32 pt_id;
};
# define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#endif

#ifndef VFIO_DEVICE_DETACH_IOMMUFD_PT
struct vfio_device_detach_iommufd_pt {
    __u32 argsz;
    __u32 flags;
};
# define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)
#endif

#define COCO_IOMMUFD_TYPE ';'
#define COCO_IOMMUFD_CMD_DESTROY 0x80
#define COCO_IOMMUFD_CMD_IOAS_ALLOC 0x81
#define COCO_IOMMUFD_CMD_IOAS_COPY 0x83
#define COCO_IOMMUFD_CMD_IOAS_IOVA_RANGES 0x84
#define COCO_IOMMUFD_CMD_IOAS_MAP 0x85
#define COCO_IOMMUFD_CMD_IOAS_UNMAP 0x86
#define COCO_IOMMUFD_CMD_IOAS_MAP_FILE 0x8f

typedef struct {
    uint32_t size;
    uint32_t id;
} CocoIommuDestroy;
#define COCO_IOMMU_DESTROY _IO(COCO_IOMMUFD_TYPE, COCO_IOMMUFD_CMD_DESTROY)

typedef struct {
    uint32_t size;
    uint32_t flags;
    uint32_t out_ioas_id;
} CocoIommuIoasAlloc;
#define COCO_IOMMU_IOAS_ALLOC                                                  \
 _IO(COCO_IOMMUFD_TYPE, COCO_IOMMUFD_CMD_IOAS_ALLOC)

typedef struct {
    uint64_t start;
    uint64_t last;
} CocoIommuIovaRange;

typedef struct {
    uint32_t size;
    uint32_t ioas_id;
    uint32_t num_iovas;
    uint32_t reserved;
    uint64_t allowed_iovas;
    uint64_t out_iova_alignment;
} CocoIommuIoasIovaRanges;
#define COCO_IOMMU_IOAS_IOVA_RANGES                                            \
 _IO(COCO_IOMMUFD_TYPE, COCO_IOMMUFD_CMD_IOAS_IOVA_RANGES)

#define COCO_IOMMU_IOAS_MAP_FIXED_IOVA (1U << 0)
#define COCO_IOMMU_IOAS_MAP_WRITEABLE (1U << 1)
#define COCO_IOMMU_IOAS_MAP_READABLE (1U << 2)

typedef struct {
    uint32_t size;
    uint32_t flags;
    uint32_t ioas_id;
    uint32_t reserved;
    uint64_t user_va;
    uint64_t length;
    uint64_t iova;
} CocoIommuIoasMap;
#define COCO_IOMMU_IOAS_MAP _IO(COCO_IOMMUFD_TYPE, COCO_IOMMUFD_CMD_IOAS_MAP)

typedef struct {
    uint32_t size;
    uint32_t ioas_id;
    uint64_t iova;
    uint64_t length;
} CocoIommuIoasUnmap;
#define COCO_IOMMU_IOAS_UNMAP                                                  \
 _IO(COCO_IOMMUFD_TYPE, COCO_IOMMUFD_CMD_IOAS_UNMAP)

typedef struct {
    uint32_t size;
    uint32_t flags;
    uint32_t dst_ioas_id;
    uint32_t src_ioas_id;
    uint64_t length;
    uint64_t dst_iova;
    uint64_t src_iova;
} CocoIommuIoasCopy;
#define COCO_IOMMU_IOAS_COPY _IO(COCO_IOMMUFD_TYPE, COCO_IOMMUFD_CMD_IOAS_COPY)

typedef struct {
    uint32_t size;
    uint32_t flags;
    uint32_t ioas_id;
    int32_t fd;
    uint64_t start;
    uint64_t length;
    uint64_t iova;
} CocoIommuIoasMapFile;
#define COCO_IOMMU_IOAS_MAP_FILE                                               \
 _IO(COCO_IOMMUFD_TYPE, COCO_IOMMUFD_CMD_IOAS_MAP_FILE)

G_STATIC_ASSERT(sizeof(CocoIommuIoasAlloc) == 12);
G_STATIC_ASSERT(sizeof(CocoIommuIoasIovaRanges) == 32);
G_STATIC_ASSERT(sizeof(CocoIommuIoasMap) == 40);
G_STATIC_ASSERT(sizeof(CocoIommuIoasUnmap) == 24);
G_STATIC_ASSERT(sizeof(CocoIommuDestroy) == 8);
G_STATIC_ASSERT(sizeof(CocoIommuIoasCopy) == 40);
G_STATIC_ASSERT(sizeof(CocoIommuIoasMapFile) == 40);
G_STATIC_ASSERT(sizeof(struct vfio_iommu_type1_info) == COCO_VFIO_INFO_CAPSZ);
