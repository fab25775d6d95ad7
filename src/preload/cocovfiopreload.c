/*
 * cocovfiopreload.c: the VFIO interposer as a library qemu-coco preloads
 * into the real QEMU (LD_PRELOAD)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Exports ioctl() and close() only (vfio-interposer.syms). ioctl() has a
 * fast path: a request whose type is not VFIO's (';') goes to the next
 * ioctl() at once; the others go through cocoVfioInterposerIoctl(), which
 * passes through everything but the requests it follows. close() asks the
 * interposer only for a descriptor it follows (a lock-free bit test).
 *
 * The environment (docs/vfio.rst, "The interposer"): qemu-coco sets
 * LIBVIRT_COCO_VFIO_REPORT_FD to the descriptor of a datagram socket whose
 * other end the relay reads; each leak report is one datagram. The library
 * takes the variable and its own entry in LD_PRELOAD out of the
 * environment and makes the socket close-on-exec, so that programs QEMU
 * runs (helpers, scripts) inherit neither.
 */

#include "internal.h"
#include "preload/cocopreloadenv.h"
#include "preload/cocovfiointerposer.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define COCO_VFIO_REPORT_FD_ENV "LIBVIRT_COCO_VFIO_REPORT_FD"
#define COCO_VFIO_LOG_PREFIX "libvirt-coco-vfio: "

typedef int (*CocoPreloadIoctlFunc)(int fd, unsigned long request, ...);
typedef int (*CocoPreloadCloseFunc)(int fd);

static CocoPreloadIoctlFunc cocoPreloadNextIoctl;
static CocoPreloadCloseFunc cocoPreloadNextClose;
static CocoVfioInterposer *cocoPreloadInterposer;
static int cocoPreloadReportFd = -1;

/* Declared as in <sys/ioctl.h> (not included: the name is ours here);
 * close() is the one of <unistd.h>. */
int ioctl(int fd, unsigned long request, ...);

static int
cocoPreloadNext(int fd, unsigned long request, void *arg)
{
    if (G_LIKELY(cocoPreloadNextIoctl))
        return cocoPreloadNextIoctl(fd, request, arg);
    return (int)syscall(SYS_ioctl, fd, request, arg);
}

static int
cocoPreloadKernelIoctl(void *opaque G_GNUC_UNUSED, int fd,
                       unsigned long request, void *arg)
{
    int rc = cocoPreloadNext(fd, request, arg);

    return rc < 0 ? -errno : rc;
}

static int
cocoPreloadKernelOpen(void *opaque G_GNUC_UNUSED,
                      const char *path G_GNUC_UNUSED)
{
    return -ENOSYS; /* the interposer never opens anything */
}

static void
cocoPreloadKernelClose(void *opaque G_GNUC_UNUSED, int fd G_GNUC_UNUSED)
{
}

static const CocoVfioOps cocoPreloadOps = {
    .ioctl = cocoPreloadKernelIoctl,
    .open = cocoPreloadKernelOpen,
    .close = cocoPreloadKernelClose,
    .opaque = NULL,
};

/* One line on QEMU's standard error, the domain log. */
static void
cocoPreloadLog(const char *line, void *opaque G_GNUC_UNUSED)
{
    g_autofree char *text = g_strdup_printf(COCO_VFIO_LOG_PREFIX "%s\n", line);
    size_t len = strlen(text);
    size_t off = 0;

    while (off < len) {
        ssize_t n = write(STDERR_FILENO, text + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

/* One datagram to the relay; never blocks QEMU, never raises SIGPIPE. */
static void
cocoPreloadReport(const char *json, void *opaque G_GNUC_UNUSED)
{
    if (cocoPreloadReportFd < 0)
        return;
    if (send(cocoPreloadReportFd, json, strlen(json),
             MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        cocoPreloadLog(
            _("the leak report could not be passed to qemu-coco's relay"),
            NULL);
}

/* The report socket named by the environment, if it is one. */
static void
cocoPreloadTakeReportFd(void)
{
    const char *val = getenv(COCO_VFIO_REPORT_FD_ENV);
    struct stat sb;
    char *end = NULL;
    long fd;

    if (!val)
        return;
    errno = 0;
    fd = strtol(val, &end, 10);
    if (errno != 0 || end == val || *end != '\0' || fd < 3 || fd > G_MAXINT ||
        fstat((int)fd, &sb) < 0 || !S_ISSOCK(sb.st_mode)) {
        cocoPreloadLog(_("ignoring an invalid leak report descriptor"), NULL);
        return;
    }
    if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0)
        return;
    cocoPreloadReportFd = (int)fd;
}

/* LD_PRELOAD without this library, and without the report variable. */
static void
cocoPreloadScrubEnv(void)
{
    unsetenv(COCO_VFIO_REPORT_FD_ENV);
    cocoPreloadEnvDropSelf((const void *)(uintptr_t)cocoPreloadScrubEnv);
}

static void
cocoPreloadAtForkChild(void)
{
    if (cocoPreloadInterposer)
        cocoVfioInterposerForkChild(cocoPreloadInterposer);
}

static void __attribute__((constructor)) cocoPreloadInit(void)
{
    cocoPreloadNextIoctl = (CocoPreloadIoctlFunc)dlsym(RTLD_NEXT, "ioctl");
    cocoPreloadNextClose = (CocoPreloadCloseFunc)dlsym(RTLD_NEXT, "close");
    cocoPreloadTakeReportFd();
    cocoPreloadScrubEnv();
    cocoPreloadInterposer = cocoVfioInterposerNew(
        &cocoPreloadOps, cocoPreloadLog, cocoPreloadReport, NULL);
    pthread_atfork(NULL, NULL, cocoPreloadAtForkChild);
}

int
ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    void *arg;
    int rc;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (G_LIKELY(!cocoVfioInterposerWants(request)) ||
        G_UNLIKELY(!cocoPreloadInterposer))
        return cocoPreloadNext(fd, request, arg);
    rc = cocoVfioInterposerIoctl(cocoPreloadInterposer, fd, request, arg);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return rc;
}

int
close(int fd)
{
    if (cocoPreloadInterposer &&
        cocoVfioInterposerTracks(cocoPreloadInterposer, fd)) {
        int saved = errno;

        cocoVfioInterposerClose(cocoPreloadInterposer, fd);
        errno = saved;
    }
    if (G_LIKELY(cocoPreloadNextClose))
        return cocoPreloadNextClose(fd);
    return (int)syscall(SYS_close, fd);
}
