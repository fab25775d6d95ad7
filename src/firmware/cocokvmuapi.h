/*
 * cocokvmuapi.h: the KVM migration uapi as this build compiles it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Include this, never libvirt-coco/coco-kvm-uapi.h directly: the build-time
 * number overrides (meson options, generated cocokvmbuild.h) must be defined
 * before the public header's provisional defaults.
 */

#pragma once

#include "firmware/cocokvmbuild.h"
#include "libvirt-coco/coco-kvm-uapi.h"
