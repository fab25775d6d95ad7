/*
 * cocokeyfile.c: configuration files, read with limits
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "util/cocokeyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

gboolean
cocoKeyFileLoad(GKeyFile *kf, const char *path, GError **error)
{
    g_autofree char *buf = NULL;
    struct stat st;
    size_t len = 0;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0) {
        int err = errno;

        g_set_error_literal(error, G_FILE_ERROR, g_file_error_from_errno(err),
                            g_strerror(err));
        return FALSE;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                            _("not a regular file"));
        return FALSE;
    }
    if (st.st_size > COCO_KEY_FILE_MAX) {
        close(fd);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    _("larger than %1$u bytes"),
                    (unsigned int)COCO_KEY_FILE_MAX);
        return FALSE;
    }
    /* One byte more than the limit: a file that grew since fstat(). */
    buf = g_malloc(COCO_KEY_FILE_MAX + 1);
    while (len <= COCO_KEY_FILE_MAX) {
        ssize_t n = read(fd, buf + len, COCO_KEY_FILE_MAX + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;

            close(fd);
            g_set_error_literal(error, G_FILE_ERROR,
                                g_file_error_from_errno(err), g_strerror(err));
            return FALSE;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len > COCO_KEY_FILE_MAX) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    _("larger than %1$u bytes"),
                    (unsigned int)COCO_KEY_FILE_MAX);
        return FALSE;
    }
    return g_key_file_load_from_data(kf, buf, len, G_KEY_FILE_NONE, error);
}
