/*
 * internal.h: definitions shared by every libvirt-coco source file
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "config.h"

#include <string.h>
#include <glib.h>
#include <glib/gi18n-lib.h>

#define LIBVIRT_COCO_COMPILATION 1

#define STREQ(a, b) (strcmp(a, b) == 0)
#define STRNEQ(a, b) (strcmp(a, b) != 0)
#define STREQ_NULLABLE(a, b) (g_strcmp0(a, b) == 0)
#define STRPREFIX(a, b) (strncmp(a, b, strlen(b)) == 0)
#define NULLSTR(s) ((s) ? (s) : "<null>")

/* Close an fd if it is open and mark it closed. */
#define COCO_FORCE_CLOSE(fd) cocoForceClose(&(fd))
void cocoForceClose(int *fd);
