/*
 * cocokeyfile.h: configuration files, read with limits
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

/* The largest configuration file read (virtcocod.conf, the platform file,
 * the KVM ABI file): a few KiB in practice. */
#define COCO_KEY_FILE_MAX (256 * 1024)

/*
 * Load the key file at @path into @kf, as g_key_file_load_from_file()
 * does, but only a regular file of at most COCO_KEY_FILE_MAX bytes
 * (cocoFileReadRegular()). Errors are GLib's: that function's
 * G_FILE_ERROR or G_KEY_FILE_ERROR, each a message without the path, for
 * the caller to place in its own.
 */
gboolean cocoKeyFileLoad(GKeyFile *kf, const char *path, GError **error);
