/*
 * libvirt-coco.h: the public API of libvirt-coco
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Include only this header. Every item is documented where it is declared,
 * with the version that introduced it.
 */

#pragma once

#define LIBVIRT_COCO_H_INSIDE

#include <libvirt-coco/coco-version.h>
#include <libvirt-coco/coco-error.h>
#include <libvirt-coco/coco-kvm.h>
#include <libvirt-coco/coco-kvm-uapi.h>
#include <libvirt-coco/coco-migration-def.h>
#include <libvirt-coco/coco-vfio.h>

#undef LIBVIRT_COCO_H_INSIDE
