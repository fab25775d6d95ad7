/*
 * cocofile.c: small files read with a bound
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "util/cocofile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
cocoFileErrno(GError **error, int err)
{
    g_set_error_literal(error, G_FILE_ERROR, g_file_error_from_errno(err),
                        g_strerror(err));
    return NULL;
}

char *
cocoFileReadRegular(const char *path, size_t max, size_t *len, GError **error)
{
    g_autofree char *buf = NULL;
    struct stat st;
    size_t got = 0;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0)
        return cocoFileErrno(error, errno);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                            _("not a regular file"));
        return NULL;
    }
    /* One byte more than the bound: a file that grew since fstat(). */
    if ((size_t)st.st_size <= max) {
        buf = g_malloc(max + 1);
        while (got <= max) {
            ssize_t n = read(fd, buf + got, max + 1 - got);

            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                int err = errno;

                close(fd);
                return cocoFileErrno(error, err);
            }
            if (n == 0)
                break;
            got += (size_t)n;
        }
    }
    close(fd);
    if ((size_t)st.st_size > max || got > max) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    _("larger than %1$u bytes"), (unsigned int)max);
        return NULL;
    }
    buf[got] = '\0';
    *len = got;
    return g_steal_pointer(&buf);
}
