/*
 * cocokeyfile.c: configuration files, read with limits
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "util/cocokeyfile.h"
#include "util/cocofile.h"

gboolean
cocoKeyFileLoad(GKeyFile *kf, const char *path, GError **error)
{
    size_t len = 0;
    g_autofree char *buf =
        cocoFileReadRegular(path, COCO_KEY_FILE_MAX, &len, error);

    if (!buf)
        return FALSE;
    return g_key_file_load_from_data(kf, buf, len, G_KEY_FILE_NONE, error);
}
