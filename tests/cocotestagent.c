/*
 * cocotestagent.c: a real virtcocod for tests that run the binaries, and
 * the stand-ins of a domain's QEMU and relay that it accepts
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"

#include "cocotestagent.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* The agents of one test process share one throw-away PKI
 * (tests/cocotlsgen.sh, certtool): their certificates name localhost and
 * 127.0.0.1 and come from the same CA, so they trust each other. It is
 * removed when the process exits. */
static char *cocoTestPkiDir;

static void
cocoTestAgentPkiRemove(void)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", cocoTestPkiDir);

    if (system(cmd) != 0)
        g_printerr("cannot remove '%s'\n", cocoTestPkiDir);
}

const char *
cocoTestPki(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *script = NULL;
    g_autofree char *cmd = NULL;
    int status = 0;

    if (cocoTestPkiDir)
        return cocoTestPkiDir;
    cocoTestPkiDir = g_dir_make_tmp("cocotestpki-XXXXXX", &err);
    g_assert_no_error(err);
    script =
        g_build_filename(g_getenv("abs_srcdir") ? g_getenv("abs_srcdir") : ".",
                         "cocotlsgen.sh", NULL);
    cmd = g_strdup_printf("sh '%s' '%s'", script, cocoTestPkiDir);
    g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, &err));
    g_assert_no_error(err);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    atexit(cocoTestAgentPkiRemove);
    return cocoTestPkiDir;
}

static bool
cocoTestAgentAccepts(const char *sock)
{
    struct sockaddr_un addr = {0};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    g_assert_cmpint(fd, >=, 0);
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, sock, sizeof(addr.sun_path));
    ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    return ok;
}

char *
cocoTestAgentWriteConf(const char *dir, const char *sock, const char *tls,
                       const char *extra)
{
    g_autofree char *id = g_build_filename(cocoTestPki(), tls, NULL);
    g_autofree char *text = NULL;
    char *conf = g_build_filename(dir, "virtcocod.conf", NULL);

    text = g_strdup_printf(
        "[virtcocod]\nsocket=%s\nlisten=127.0.0.1\nport=0\n"
        "platform=%s/platform.conf\nstate_dir=%s/migrations\n"
        "pid_dir=%s/run\nqemu_binaries=/bin/sh;\n"
        "tls_ca_cert=%s/cacert.pem\n"
        "tls_server_cert=%s/servercert.pem\n"
        "tls_server_key=%s/private/serverkey.pem\n"
        "tls_client_cert=%s/clientcert.pem\n"
        "tls_client_key=%s/private/clientkey.pem\n%s",
        sock, dir, dir, dir, id, id, id, id, id, extra ? extra : "");
    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
    return conf;
}

void
cocoTestAgentStartConf(CocoTestAgent *a, const char *prefix, const char *extra)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *tmpl = g_strdup_printf("%s-XXXXXX", prefix);
    g_autofree char *conf = NULL;
    const char *argv[] = {g_getenv("VIRTCOCOD"), "-f", "-c", NULL, NULL};
    int i;

    g_assert_nonnull(argv[0]);
    a->dir = g_dir_make_tmp(tmpl, &err);
    g_assert_no_error(err);
    a->sock = g_build_filename(a->dir, "agent.sock", NULL);
    a->piddir = g_build_filename(a->dir, "run", NULL);
    g_assert_cmpint(g_mkdir_with_parents(a->piddir, 0700), ==, 0);
    conf = cocoTestAgentWriteConf(a->dir, a->sock, "local", extra);
    argv[3] = conf;
    g_assert_true(
        g_spawn_async(NULL, (char **)argv, NULL,
                      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                          (g_test_verbose() ? 0 : G_SPAWN_STDERR_TO_DEV_NULL),
                      NULL, NULL, &a->pid, &err));
    g_assert_no_error(err);
    /* The socket exists once bound: wait until the agent accepts on it. */
    for (i = 0; i < 5000 && !cocoTestAgentAccepts(a->sock); i++)
        g_usleep(1000);
    g_assert_true(cocoTestAgentAccepts(a->sock));
}

void
cocoTestAgentStart(CocoTestAgent *a, const char *prefix)
{
    cocoTestAgentStartConf(a, prefix, NULL);
}

void
cocoTestAgentStop(CocoTestAgent *a)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", a->dir);
    int status;

    kill(a->pid, SIGTERM);
    waitpid(a->pid, &status, 0);
    g_assert_cmpint(system(cmd), ==, 0);
    g_clear_pointer(&a->dir, g_free);
    g_clear_pointer(&a->sock, g_free);
    g_clear_pointer(&a->piddir, g_free);
}

pid_t
cocoTestQemuStart(const char *name, const char *uuid, const char *ram,
                  const char *piddir)
{
    g_autofree char *guest = g_strdup_printf("guest=%s,debug-threads=on", name);
    const char *script =
        ram ? "exec 3<>\"$0\"; sleep 300; true" : "sleep 300; true";
    const char *argv[] = {"/bin/sh",        "-c",    script,
                          ram ? ram : "sh", "-name", guest,
                          "-uuid",          uuid,    NULL};
    GPid pid;
    int i;

    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDOUT_TO_DEV_NULL |
                                    G_SPAWN_STDERR_TO_DEV_NULL,
                                NULL, NULL, &pid, NULL));
    /* The agent reads its command line and open files: wait for them. */
    for (i = 0; i < 5000; i++) {
        g_autofree char *cmdpath = g_strdup_printf("/proc/%d/cmdline", pid);
        g_autofree char *fd3 = g_strdup_printf("/proc/%d/fd/3", pid);
        g_autofree char *cmdline = NULL;
        g_autofree char *link = NULL;
        gsize len = 0;

        if (g_file_get_contents(cmdpath, &cmdline, &len, NULL) &&
            memmem(cmdline, len, guest, strlen(guest)) &&
            (!ram || ((link = g_file_read_link(fd3, NULL)) &&
                      g_str_has_suffix(link, ram))))
            break;
        g_usleep(1000);
    }
    if (piddir) {
        g_autofree char *pidfile = g_strdup_printf("%s/%s.pid", piddir, name);
        g_autofree char *pidtext = g_strdup_printf("%d\n", (int)pid);

        g_assert_true(g_file_set_contents(pidfile, pidtext, -1, NULL));
    }
    return pid;
}

void
cocoTestQemuStop(pid_t *pid)
{
    g_autofree char *children = NULL;
    g_autofree char *path = NULL;
    int status;

    if (*pid <= 0)
        return;
    /* The shell's sleep first (it holds our output too), then the shell. */
    path = g_strdup_printf("/proc/%d/task/%d/children", *pid, *pid);
    if (g_file_get_contents(path, &children, NULL, NULL)) {
        g_auto(GStrv) list = g_strsplit(g_strstrip(children), " ", -1);
        size_t i;

        for (i = 0; list[i]; i++) {
            if (*list[i])
                kill((pid_t)atoi(list[i]), SIGKILL);
        }
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, &status, 0);
    *pid = 0;
}

void
cocoTestRelayConnect(CocoTestRelay *r, const char *sock)
{
    struct sockaddr_un addr = {0};
    struct timeval tv = {.tv_sec = 30, .tv_usec = 0};

    r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(r->fd, >=, 0);
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, sock, sizeof(addr.sun_path));
    g_assert_cmpint(connect(r->fd, (struct sockaddr *)&addr, sizeof(addr)), ==,
                    0);
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    r->in = g_string_new(NULL);
}

void
cocoTestRelaySend(CocoTestRelay *r, const char *line)
{
    g_autofree char *text = g_strconcat(line, "\n", NULL);
    size_t len = strlen(text);

    g_assert_cmpint(write(r->fd, text, len), ==, (ssize_t)len);
}

char *
cocoTestRelayReadLine(CocoTestRelay *r)
{
    for (;;) {
        char *nl = memchr(r->in->str, '\n', r->in->len);
        char buf[65536];
        ssize_t n;

        if (nl) {
            char *line = g_strndup(r->in->str, nl - r->in->str);

            g_string_erase(r->in, 0, nl - r->in->str + 1);
            return g_strchomp(line);
        }
        n = read(r->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        g_string_append_len(r->in, buf, n);
    }
}

char *
cocoTestRelayReadMatch(CocoTestRelay *r, const char *needle)
{
    for (;;) {
        char *line = cocoTestRelayReadLine(r);

        if (!line || strstr(line, needle))
            return line;
        g_free(line);
    }
}

void
cocoTestRelayClose(CocoTestRelay *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (r->in)
        g_string_free(r->in, TRUE);
    r->in = NULL;
}
