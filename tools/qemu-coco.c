/*
 * qemu-coco.c: the <emulator> of confidential domains. It execs the real
 * QEMU in place (libvirt tracks QEMU's own PID) after starting, for a
 * guest, a QMP relay between libvirt's monitor socket and QEMU's.
 * See docs/qemu-coco.rst.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "qemu-coco-config.h"
#include "qmp/cocoqmpguest.h"
#include "qmp/cocoqmphostdev.h"
#include "qmp/cocoqmprelay.h"
#include "proto/cocoprotorelay.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the VFIO interposer reads (src/preload/cocovfiopreload.c). */
#define QEMU_COCO_VFIO_REPORT_FD_ENV "LIBVIRT_COCO_VFIO_REPORT_FD"

static void
qemuCocoExecQemu(const char *qemu, char **argv)
{
    argv[0] = (char *)qemu;
    execv(qemu, argv);
    g_printerr("qemu-coco: cannot execute '%s': %s\n", qemu, g_strerror(errno));
    _exit(127);
}

/* Close every descriptor except 0-2 and those in @keep. */
static void
qemuCocoCloseOthers(const int *keep, size_t nkeep)
{
    g_autoptr(GArray) fds = g_array_new(FALSE, FALSE, sizeof(int));
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    guint i;

    if (!d)
        return;
    while ((de = readdir(d))) {
        guint64 v;
        int fd;
        size_t k;
        gboolean kept = FALSE;

        if (cocoStrToU64(de->d_name, 10, &v) < 0 || v > G_MAXINT)
            continue;
        fd = (int)v;
        if (fd <= 2 || fd == dirfd(d))
            continue;
        for (k = 0; k < nkeep; k++)
            kept |= keep[k] == fd;
        if (!kept)
            g_array_append_val(fds, fd);
    }
    closedir(d);
    for (i = 0; i < fds->len; i++)
        close(g_array_index(fds, int, i));
}

typedef struct {
    GMainLoop *loop;
} QemuCocoRelayCtx;

static gboolean
qemuCocoOnQemuExit(gint fd, GIOCondition cond, gpointer opaque)
{
    QemuCocoRelayCtx *rc = opaque;

    g_main_loop_quit(rc->loop);
    return G_SOURCE_REMOVE;
}

/* The relay process: runs until QEMU (@qemuPidfd) exits. */
static int
qemuCocoRelayMain(const QemuCocoConfig *cfg, CocoQmpGuestInfo *info,
                  pid_t qemuPid, int qemuPidfd, int monitorFd,
                  const char *qemuSock, int traceFd, int reportFd,
                  const CocoQmpViommu *viommu)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoQmpRelay) relay = NULL;
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    CocoQmpAgent *agent = NULL;
    QemuCocoRelayCtx rc = {loop};
    int devnull;

    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        close(devnull);
    }
    signal(SIGPIPE, SIG_IGN);

    if (cfg->agentSocket)
        agent = cocoQmpAgentNewSocket(cfg->agentSocket, NULL,
                                      cocoQmpGuestInfoToHello(info, qemuPid),
                                      cfg->gateTimeout);
    relay = cocoQmpRelayNew(NULL, agent);
    if (traceFd >= 0)
        cocoQmpRelaySetTrace(relay, traceFd);
    if (reportFd >= 0)
        cocoQmpRelaySetVfioReport(relay, reportFd);
    cocoQmpRelaySetViommu(relay, viommu->model, viommu->awBits);
    if (cocoQmpRelayListen(relay, monitorFd, qemuSock, &err) < 0) {
        g_printerr("qemu-coco: %s\n", err->message);
        return 1;
    }
    g_printerr(
        "qemu-coco: relay %d for QEMU %d: agent %s, VFIO interposer %s\n",
        (int)getpid(), (int)qemuPid,
        cfg->agentSocket ? cfg->agentSocket : "none",
        reportFd >= 0 ? cfg->vfioInterposerPath : "off");
    g_unix_fd_add(qemuPidfd, G_IO_IN, qemuCocoOnQemuExit, &rc);
    g_main_loop_run(loop);
    return 0;
}

/* Put @lib first in QEMU's LD_PRELOAD; a missing library fails the start
 * (@key = no in qemu-coco.conf is the explicit way to run without it). */
static int
qemuCocoPreload(const char *lib, const char *what, const char *key)
{
    const char *preload = g_getenv("LD_PRELOAD");
    g_autofree char *value = NULL;

    if (access(lib, R_OK) < 0) {
        g_printerr(
            "qemu-coco: cannot use the %s '%s': %s (set %s = no in qemu-coco.conf to run QEMU without it)\n",
            what, lib, g_strerror(errno), key);
        return -1;
    }
    value = preload && *preload ? g_strdup_printf("%s:%s", lib, preload)
                                : g_strdup(lib);
    g_setenv("LD_PRELOAD", value, TRUE);
    return 0;
}

/*
 * QEMU's environment for the VFIO interposer (docs/vfio.rst): the library
 * first in LD_PRELOAD and the descriptor of its report socket. A missing
 * library fails the start: the switch that turns it off is explicit.
 */
static int
qemuCocoPrepareInterposer(const QemuCocoConfig *cfg, int *reportFds)
{
    g_autofree char *fd = NULL;

    if (qemuCocoPreload(cfg->vfioInterposerPath, "VFIO interposer",
                        "vfio_interposer") < 0)
        return -1;
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, reportFds) < 0) {
        g_printerr("qemu-coco: socketpair: %s\n", g_strerror(errno));
        return -1;
    }
    fd = g_strdup_printf("%d", reportFds[1]);
    g_setenv(QEMU_COCO_VFIO_REPORT_FD_ENV, fd, TRUE);
    return 0;
}

static int
qemuCocoRunGuest(const QemuCocoConfig *cfg, CocoQmpGuestInfo *info, int argc,
                 char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *sock = NULL;
    g_autofree char *chardev = NULL;
    struct sockaddr_un addr = {0};
    pid_t self = getpid();
    int traceFd = -1;
    int reportFds[2] = {-1, -1};
    CocoQmpViommu viommu = {0};
    int qfd;
    int pidfd;
    pid_t child;
    int status;

    /* QEMU's own monitor socket, in a directory only its user can enter. */
    dir = g_dir_make_tmp("qemu-coco-XXXXXX", &err);
    if (!dir) {
        g_printerr("qemu-coco: %s\n", err->message);
        return 1;
    }
    sock = g_build_filename(dir, "qmp.sock", NULL);
    if (strlen(sock) >= sizeof(addr.sun_path)) {
        g_printerr("qemu-coco: socket path '%s' is too long\n", sock);
        return 1;
    }
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, sock, sizeof(addr.sun_path));
    qfd = socket(AF_UNIX, SOCK_STREAM, 0); /* inherited by QEMU */
    if (qfd < 0 || bind(qfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(qfd, 8) < 0) {
        g_printerr("qemu-coco: cannot listen on '%s': %s\n", sock,
                   g_strerror(errno));
        return 1;
    }
    pidfd = (int)syscall(SYS_pidfd_open, self, 0);
    if (pidfd < 0) {
        g_printerr("qemu-coco: pidfd_open: %s\n", g_strerror(errno));
        return 1;
    }
    if (cfg->qmpLogDir) {
        g_autofree char *base =
            g_strdup_printf("%s-qmp.log", info->name ? info->name : "guest");
        g_autofree char *path = g_build_filename(cfg->qmpLogDir, base, NULL);

        traceFd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (traceFd < 0)
            g_printerr("qemu-coco: cannot open '%s': %s\n", path,
                       g_strerror(errno));
    }

    if (cfg->vfioInterposer && qemuCocoPrepareInterposer(cfg, reportFds) < 0)
        return 1;
    /* The userfaultfd through which the agent logs QEMU's writes to guest
     * RAM (src/preload/cocowritelogpreload.c). */
    if (cfg->writeLog && qemuCocoPreload(cfg->writeLogPath, "write-log preload",
                                         "write_log") < 0)
        return 1;
    cocoQmpViommuFromArgv(argc, argv, &viommu);

    child = fork();
    if (child < 0) {
        g_printerr("qemu-coco: fork: %s\n", g_strerror(errno));
        return 1;
    }
    if (child == 0) {
        /* Detach twice so the relay is not QEMU's child. */
        pid_t relay = fork();
        int keep[4];
        int ret;

        if (relay != 0)
            _exit(relay < 0 ? 1 : 0);
        setsid();
        keep[0] = info->monitorFd;
        keep[1] = pidfd;
        keep[2] = traceFd;
        keep[3] = reportFds[0];
        qemuCocoCloseOthers(keep, G_N_ELEMENTS(keep));
        ret = qemuCocoRelayMain(cfg, info, self, pidfd, info->monitorFd, sock,
                                traceFd, reportFds[0], &viommu);
        unlink(sock);
        rmdir(dir);
        _exit(ret);
    }
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        g_printerr("qemu-coco: cannot start the relay\n");
        return 1;
    }

    close(info->monitorFd);
    close(pidfd);
    if (traceFd >= 0)
        close(traceFd);
    if (reportFds[0] >= 0) {
        /* QEMU keeps its end across the exec; the interposer makes it
         * close-on-exec again for whatever QEMU runs. */
        close(reportFds[0]);
        fcntl(reportFds[1], F_SETFD, 0);
    }
    chardev = cocoQmpGuestRewriteMonitor(argv[info->monitorArg], qfd);
    argv[info->monitorArg] = chardev;
    qemuCocoExecQemu(cfg->qemu, argv);
    return 127;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoQmpGuestInfo) info = NULL;
    QemuCocoConfig cfg = {0};
    const char *path = g_getenv("QEMU_COCO_CONFIG");
    int ret;

    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, COCO_LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    if (!path)
        path = QEMU_COCO_CONFIG;
    if (argc == 2 && STREQ(argv[1], "--coco-config-path")) {
        printf("%s\n", path);
        return 0;
    }
    if (qemuCocoConfigLoad(path, &cfg, &err) < 0) {
        g_printerr("qemu-coco: %s\n", err->message);
        qemuCocoConfigClear(&cfg);
        return 1;
    }
    if (argc == 2 && STREQ(argv[1], "--coco-check-config")) {
        /* The packages' and the tests' check of a configuration file. */
        printf("%s: qemu=%s agent_socket=%s gate_timeout=%u "
               "vfio_interposer=%s vfio_interposer_path=%s "
               "write_log=%s write_log_path=%s\n",
               path, cfg.qemu, cfg.agentSocket ? cfg.agentSocket : "none",
               cfg.gateTimeout, cfg.vfioInterposer ? "yes" : "no",
               cfg.vfioInterposerPath, cfg.writeLog ? "yes" : "no",
               cfg.writeLogPath);
        qemuCocoConfigClear(&cfg);
        return 0;
    }
    info = cocoQmpGuestInfoParse(argc, argv, &err);
    if (!info) {
        g_printerr("qemu-coco: %s\n", err->message);
        qemuCocoConfigClear(&cfg);
        return 1;
    }
    if (info->monitorFd < 0) {
        /* Capability probing, -help, -version: QEMU itself. */
        qemuCocoExecQemu(cfg.qemu, argv);
    }
    ret = qemuCocoRunGuest(&cfg, info, argc, argv);
    qemuCocoConfigClear(&cfg);
    return ret;
}
