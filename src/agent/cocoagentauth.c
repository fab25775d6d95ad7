/*
 * cocoagentauth.c: checking that a relay speaks for a domain's QEMU
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentauth.h"
#include "util/cocoerror.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
cocoAgentAuthResolve(const char *path)
{
    char buf[PATH_MAX];

    if (!realpath(path, buf))
        return NULL;
    return g_strdup(buf);
}

static bool
cocoAgentAuthExeAllowed(const CocoAgentConfig *cfg, const char *exe)
{
    size_t i;

    for (i = 0; cfg->qemu_binaries && cfg->qemu_binaries[i]; i++) {
        g_autofree char *allowed = cocoAgentAuthResolve(cfg->qemu_binaries[i]);

        if (allowed && STREQ(allowed, exe))
            return true;
    }
    return false;
}

/* Whether the NUL-separated @argv names the domain. */
static bool
cocoAgentAuthCmdlineMatches(const char *argv, size_t len, const char *name,
                            const char *uuid, bool *uuid_ok)
{
    const char *p = argv;
    const char *end = argv + len;
    const char *prev = NULL;
    bool name_ok = false;

    *uuid_ok = !uuid || !*uuid;
    while (p < end) {
        size_t n = strnlen(p, end - p);

        if (prev && STREQ(prev, "-name")) {
            g_auto(GStrv) parts = g_strsplit(p, ",", 2);
            const char *first = parts[0] ? parts[0] : "";

            if (STRPREFIX(first, "guest="))
                first += strlen("guest=");
            if (STREQ(first, name))
                name_ok = true;
        }
        if (prev && STREQ(prev, "-uuid") && uuid &&
            g_ascii_strcasecmp(p, uuid) == 0)
            *uuid_ok = true;
        prev = p;
        p += n + 1;
    }
    return name_ok;
}

static int
cocoAgentAuthSameLink(pid_t a, pid_t b, const char *what, bool *same)
{
    g_autofree char *pa = g_strdup_printf("/proc/%d/%s", (int)a, what);
    g_autofree char *pb = g_strdup_printf("/proc/%d/%s", (int)b, what);
    g_autofree char *la = g_file_read_link(pa, NULL);
    g_autofree char *lb = g_file_read_link(pb, NULL);

    if (!la || !lb)
        return -1;
    *same = STREQ(la, lb);
    return 0;
}

static int
cocoAgentAuthSameFile(pid_t a, pid_t b, const char *what, bool *same)
{
    g_autofree char *pa = g_strdup_printf("/proc/%d/%s", (int)a, what);
    g_autofree char *pb = g_strdup_printf("/proc/%d/%s", (int)b, what);
    g_autofree char *ca = NULL;
    g_autofree char *cb = NULL;

    if (!g_file_get_contents(pa, &ca, NULL, NULL) ||
        !g_file_get_contents(pb, &cb, NULL, NULL))
        return -1;
    *same = STREQ(ca, cb);
    return 0;
}

int
cocoAgentAuthCheck(const CocoAgentConfig *cfg, pid_t peer_pid, uid_t peer_uid,
                   pid_t qemu_pid, const char *name, const char *uuid,
                   GError **error)
{
    g_autofree char *procdir = NULL;
    g_autofree char *exelink = NULL;
    g_autofree char *exe = NULL;
    g_autofree char *cmdpath = NULL;
    g_autofree char *cmdline = NULL;
    gsize cmdlen = 0;
    struct stat st;
    bool uuid_ok = false;

    if (qemu_pid <= 1)
        return cocoErrorSet(error, COCO_ERROR_ACCESS_DENIED,
                            _("the relay claims an invalid QEMU pid '%1$d'"),
                            (int)qemu_pid);
    if (!name || !*name || strchr(name, '/'))
        return cocoErrorSet(error, COCO_ERROR_ACCESS_DENIED,
                            _("the relay claims an invalid domain name '%1$s'"),
                            NULLSTR(name));
    procdir = g_strdup_printf("/proc/%d", (int)qemu_pid);
    /* Nothing about a process the caller does not own is revealed: one
     * message whether it does not exist or belongs to somebody else. */
    if (stat(procdir, &st) < 0 || (peer_uid != 0 && peer_uid != st.st_uid))
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the relay (uid '%1$u') claims pid '%2$d' for domain '%3$s', which is not a process of its user"),
            (unsigned int)peer_uid, (int)qemu_pid, name);

    /* 1. the executable */
    exelink = g_strdup_printf("/proc/%d/exe", (int)qemu_pid);
    exe = g_file_read_link(exelink, NULL);
    if (!exe || g_str_has_suffix(exe, " (deleted)") ||
        !cocoAgentAuthExeAllowed(cfg, exe))
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("pid '%1$d' claimed for domain '%2$s' runs '%3$s', which is not a configured QEMU binary"),
            (int)qemu_pid, name, NULLSTR(exe));

    /* 2. the command line */
    cmdpath = g_strdup_printf("/proc/%d/cmdline", (int)qemu_pid);
    if (!g_file_get_contents(cmdpath, &cmdline, &cmdlen, NULL) ||
        !cocoAgentAuthCmdlineMatches(cmdline, cmdlen, name, uuid, &uuid_ok))
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the command line of pid '%1$d' does not name domain '%2$s'"),
            (int)qemu_pid, name);
    if (!uuid_ok)
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the command line of pid '%1$d' does not carry the UUID '%2$s' claimed for domain '%3$s'"),
            (int)qemu_pid, uuid, name);

    /* 3. libvirt's PID file */
    if (cfg->pid_dir) {
        g_autofree char *pidfile =
            g_strdup_printf("%s/%s.pid", cfg->pid_dir, name);
        g_autofree char *content = NULL;

        if (g_file_get_contents(pidfile, &content, NULL, NULL)) {
            g_autofree char *expect = g_strdup_printf("%d", (int)qemu_pid);

            g_strstrip(content);
            if (STRNEQ(content, expect))
                return cocoErrorSet(
                    error, COCO_ERROR_ACCESS_DENIED,
                    _("libvirt's PID file '%1$s' names pid '%2$s', not the claimed pid '%3$d'"),
                    pidfile, content, (int)qemu_pid);
        } else {
            return cocoErrorSet(
                error, COCO_ERROR_ACCESS_DENIED,
                _("libvirt's PID file '%1$s' for domain '%2$s' cannot be read"),
                pidfile, name);
        }
    }

    /* 4. the caller (its user was checked first) */
    if (peer_pid != qemu_pid) {
        bool same_ns = false;
        bool same_cg = false;

        if (cocoAgentAuthSameLink(peer_pid, qemu_pid, "ns/mnt", &same_ns) < 0 ||
            cocoAgentAuthSameFile(peer_pid, qemu_pid, "cgroup", &same_cg) < 0 ||
            !same_ns || !same_cg)
            return cocoErrorSet(
                error, COCO_ERROR_ACCESS_DENIED,
                _("the relay (pid '%1$d') is neither QEMU pid '%2$d' nor in its mount namespace and cgroup"),
                (int)peer_pid, (int)qemu_pid);
    }
    return 0;
}

int
cocoAgentAuthCheckOpenFile(pid_t pid, const char *path, GError **error)
{
    g_autofree char *fddir = g_strdup_printf("/proc/%d/fd", (int)pid);
    g_autoptr(GDir) dir = NULL;
    const char *ent;
    struct stat want;

    /* One message for every reason: the caller learns nothing about
     * files QEMU does not have open. */
    if (stat(path, &want) < 0 || !S_ISREG(want.st_mode) ||
        !(dir = g_dir_open(fddir, 0, NULL)))
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("QEMU pid '%1$d' does not have the guest RAM file '%2$s' open"),
            (int)pid, path);
    while ((ent = g_dir_read_name(dir))) {
        g_autofree char *link = g_strdup_printf("%s/%s", fddir, ent);
        struct stat st;

        if (stat(link, &st) == 0 && st.st_dev == want.st_dev &&
            st.st_ino == want.st_ino)
            return 0;
    }
    return cocoErrorSet(
        error, COCO_ERROR_ACCESS_DENIED,
        _("QEMU pid '%1$d' does not have the guest RAM file '%2$s' open"),
        (int)pid, path);
}

/* The gid of group @name: 1 found, 0 no such group, -1 lookup failed. */
static int
cocoAgentAuthGroupLookup(const char *name, gid_t *gid, GError **error)
{
    struct group grp;
    struct group *res = NULL;
    long max = sysconf(_SC_GETGR_R_SIZE_MAX);
    size_t len = max > 0 ? (size_t)max : 4096;
    g_autofree char *buf = NULL;
    int rc;

    for (;;) {
        buf = g_realloc(buf, len);
        rc = getgrnam_r(name, &grp, buf, len, &res);
        if (rc != ERANGE || len >= 1024 * 1024)
            break;
        len *= 2;
    }
    if (rc != 0 && rc != ENOENT && rc != ESRCH)
        return cocoErrorSetSystem(error, rc,
                                  _("cannot look up the group '%1$s'"), name);
    if (!res)
        return 0;
    *gid = grp.gr_gid;
    return 1;
}

/* Whether the user database puts @uid in group @want. */
static bool
cocoAgentAuthUserInGroup(uid_t uid, gid_t want)
{
    struct passwd pw;
    struct passwd *res = NULL;
    long max = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t len = max > 0 ? (size_t)max : 4096;
    g_autofree char *buf = NULL;
    g_autofree gid_t *groups = NULL;
    int ngroups = 64;
    int rc;
    int i;

    for (;;) {
        buf = g_realloc(buf, len);
        rc = getpwuid_r(uid, &pw, buf, len, &res);
        if (rc != ERANGE || len >= 1024 * 1024)
            break;
        len *= 2;
    }
    if (rc != 0 || !res)
        return false;
    if (pw.pw_gid == want)
        return true;
    for (;;) {
        int n = ngroups;

        groups = g_renew(gid_t, groups, ngroups);
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) >= 0) {
            ngroups = n;
            break;
        }
        /* too small: n is the number needed */
        if (n <= ngroups || n > 65536)
            return false;
        ngroups = n;
    }
    for (i = 0; i < ngroups; i++) {
        if (groups[i] == want)
            return true;
    }
    return false;
}

int
cocoAgentAuthGroupMember(uid_t uid, gid_t gid, const char *group,
                         GError **error)
{
    gid_t want = 0;
    int rc;

    if ((rc = cocoAgentAuthGroupLookup(group, &want, error)) < 0)
        return -1;
    if (rc == 0)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("the group '%1$s' does not exist"), group);
    if (gid == want)
        return 1;
    return cocoAgentAuthUserInGroup(uid, want) ? 1 : 0;
}

int
cocoAgentAuthCheckStatus(uid_t uid, gid_t gid, uid_t self, const char *group,
                         bool *group_missing, GError **error)
{
    g_autoptr(GError) err = NULL;
    int rc;

    *group_missing = false;
    if (uid == 0 || uid == self)
        return 0;
    if (!group || !*group)
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("uid '%1$u' may not read the migration status: only root may"),
            (unsigned int)uid);
    rc = cocoAgentAuthGroupMember(uid, gid, group, &err);
    if (rc > 0)
        return 0;
    if (rc < 0 && g_error_matches(err, COCO_ERROR, COCO_ERROR_INVALID_ARG)) {
        *group_missing = true;
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("uid '%1$u' may not read the migration status: only root may, as the status group '%2$s' does not exist"),
            (unsigned int)uid, group);
    }
    if (rc < 0)
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("uid '%1$u' may not read the migration status: %2$s"),
            (unsigned int)uid, err->message);
    return cocoErrorSet(
        error, COCO_ERROR_ACCESS_DENIED,
        _("uid '%1$u' may not read the migration status: only root and the members of group '%2$s' may"),
        (unsigned int)uid, group);
}
