/*
 * cocoagentconfig.c: the configuration of virtcocod
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentconfig.h"
#include "transfer/cocotransfer.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"

#include <errno.h>

#define COCO_AGENT_GROUP "virtcocod"

static const char *const cocoAgentDefaultQemu[] = {
    "/usr/bin/qemu-system-x86_64",
    "/usr/bin/qemu-system-aarch64",
    "/usr/libexec/qemu-kvm",
    NULL,
};

void
cocoAgentConfigInit(CocoAgentConfig *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->socket_path = g_strdup(COCO_AGENT_DEFAULT_SOCKET);
    cfg->listen_address = g_strdup("0.0.0.0");
    cfg->port = COCO_AGENT_DEFAULT_PORT;
    cfg->platform_file = g_strdup(COCO_AGENT_DEFAULT_PLATFORM);
    cfg->state_dir = g_strdup(COCO_AGENT_DEFAULT_STATE_DIR);
    cfg->firmware = g_strdup("emulated");
    cfg->dbus = g_strdup("none");
    cfg->libvirt_uri = g_strdup(COCO_AGENT_DEFAULT_LIBVIRT_URI);
    cfg->status_group = g_strdup(COCO_AGENT_DEFAULT_STATUS_GROUP);
    cfg->streams = COCO_TRANSFER_DEFAULT_STREAMS;
    cfg->pages_per_bundle = COCO_TRANSFER_DEFAULT_PAGES_PER_BUNDLE;
    cfg->vcpus = 1;
    cfg->pid_dir = g_strdup(COCO_AGENT_DEFAULT_PID_DIR);
    cfg->require_pidfile = true;
    cfg->qemu_binaries = g_strdupv((char **)cocoAgentDefaultQemu);
    cfg->peer_timeout = COCO_AGENT_DEFAULT_PEER_TIMEOUT;
}

void
cocoAgentConfigClear(CocoAgentConfig *cfg)
{
    g_free(cfg->socket_path);
    g_free(cfg->listen_address);
    g_free(cfg->platform_file);
    g_free(cfg->state_dir);
    g_free(cfg->firmware);
    g_free(cfg->dbus);
    g_free(cfg->libvirt_uri);
    g_free(cfg->status_group);
    g_free(cfg->pid_dir);
    g_strfreev(cfg->qemu_binaries);
    memset(cfg, 0, sizeof(*cfg));
}

void
cocoAgentConfigCopy(CocoAgentConfig *dst, const CocoAgentConfig *src)
{
    *dst = *src;
    dst->socket_path = g_strdup(src->socket_path);
    dst->listen_address = g_strdup(src->listen_address);
    dst->platform_file = g_strdup(src->platform_file);
    dst->state_dir = g_strdup(src->state_dir);
    dst->firmware = g_strdup(src->firmware);
    dst->dbus = g_strdup(src->dbus);
    dst->libvirt_uri = g_strdup(src->libvirt_uri);
    dst->status_group = g_strdup(src->status_group);
    dst->pid_dir = g_strdup(src->pid_dir);
    dst->qemu_binaries = g_strdupv(src->qemu_binaries);
}

/* A string key: absent leaves *@out alone; empty is an error unless
 * @allow_empty (then *@out becomes NULL). */
static int
cocoAgentConfigStringFull(GKeyFile *kf, const char *path, const char *key,
                          bool allow_empty, char **out, GError **error)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *val =
        g_key_file_get_string(kf, COCO_AGENT_GROUP, key, &err);

    if (!val) {
        if (g_error_matches(err, G_KEY_FILE_ERROR,
                            G_KEY_FILE_ERROR_KEY_NOT_FOUND) ||
            g_error_matches(err, G_KEY_FILE_ERROR,
                            G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
            return 0;
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("key '%1$s' in '%2$s' is invalid: %3$s"), key,
                            path, err->message);
    }
    g_strstrip(val);
    if (!*val && !allow_empty)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("key '%1$s' in '%2$s' is empty"), key, path);
    g_free(*out);
    *out = *val ? g_steal_pointer(&val) : NULL;
    return 0;
}

static int
cocoAgentConfigString(GKeyFile *kf, const char *path, const char *key,
                      char **out, GError **error)
{
    return cocoAgentConfigStringFull(kf, path, key, false, out, error);
}

static int
cocoAgentConfigUInt(GKeyFile *kf, const char *path, const char *key,
                    unsigned int min, unsigned int max, unsigned int *out,
                    GError **error)
{
    g_autofree char *val = NULL;
    uint64_t v;

    if (cocoAgentConfigString(kf, path, key, &val, error) < 0)
        return -1;
    if (!val)
        return 0;
    if (cocoStrToU64(val, 10, &v) < 0 || v < min || v > max)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("key '%1$s' in '%2$s' must be a number from '%3$u' to '%4$u', not '%5$s'"),
            key, path, min, max, val);
    *out = (unsigned int)v;
    return 0;
}

/* 'status_group': a group name, or empty for nobody but root. */
static int
cocoAgentConfigStatusGroup(GKeyFile *kf, const char *path, char **out,
                           GError **error)
{
    return cocoAgentConfigStringFull(kf, path, "status_group", true, out,
                                     error);
}

/* Every key the loader reads: any other key or group is refused, so that
 * a misspelt or removed setting is never silently ignored. */
static const char *const cocoAgentConfigKeys[] = {
    "socket",
    "listen",
    "port",
    "peer_port",
    "platform",
    "state_dir",
    "firmware",
    "dbus",
    "libvirt_uri",
    "streams",
    "pages_per_bundle",
    "vcpus",
    "precopy_rounds",
    "pid_dir",
    "require_pidfile",
    "peer_timeout",
    "status_group",
    "qemu_binaries",
    NULL,
};

static int
cocoAgentConfigCheckKeys(GKeyFile *kf, const char *path, GError **error)
{
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    g_auto(GStrv) keys = NULL;
    size_t i;

    for (i = 0; groups[i]; i++) {
        if (STRNEQ(groups[i], COCO_AGENT_GROUP))
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("unknown group '%1$s' in '%2$s': the only group is '%3$s'"),
                groups[i], path, COCO_AGENT_GROUP);
    }
    keys = g_key_file_get_keys(kf, COCO_AGENT_GROUP, NULL, NULL);
    for (i = 0; keys && keys[i]; i++) {
        if (!g_strv_contains(cocoAgentConfigKeys, keys[i]))
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("unknown key '%1$s' in group '%2$s' of '%3$s'"), keys[i],
                COCO_AGENT_GROUP, path);
    }
    return 0;
}

int
cocoAgentConfigLoad(CocoAgentConfig *cfg, const char *path, bool required,
                    GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *reqpid = NULL;
    g_auto(GStrv) qemu = NULL;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
        if (!required && g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return 0;
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("cannot read the configuration '%1$s': %2$s"),
                            path, err->message);
    }
    if (cocoAgentConfigCheckKeys(kf, path, error) < 0)
        return -1;
    if (cocoAgentConfigString(kf, path, "socket", &cfg->socket_path, error) <
            0 ||
        cocoAgentConfigString(kf, path, "listen", &cfg->listen_address, error) <
            0 ||
        cocoAgentConfigUInt(kf, path, "port", 0, 65535, &cfg->port, error) <
            0 ||
        cocoAgentConfigUInt(kf, path, "peer_port", 0, 65535, &cfg->peer_port,
                            error) < 0 ||
        cocoAgentConfigString(kf, path, "platform", &cfg->platform_file,
                              error) < 0 ||
        cocoAgentConfigString(kf, path, "state_dir", &cfg->state_dir, error) <
            0 ||
        cocoAgentConfigString(kf, path, "firmware", &cfg->firmware, error) <
            0 ||
        cocoAgentConfigString(kf, path, "dbus", &cfg->dbus, error) < 0 ||
        cocoAgentConfigString(kf, path, "libvirt_uri", &cfg->libvirt_uri,
                              error) < 0 ||
        cocoAgentConfigUInt(kf, path, "streams", 1, COCO_TRANSFER_MAX_STREAMS,
                            &cfg->streams, error) < 0 ||
        cocoAgentConfigUInt(kf, path, "pages_per_bundle", 1,
                            COCO_TRANSFER_MAX_PAGES_PER_BUNDLE,
                            &cfg->pages_per_bundle, error) < 0 ||
        cocoAgentConfigUInt(kf, path, "vcpus", 1, 4096, &cfg->vcpus, error) <
            0 ||
        cocoAgentConfigUInt(kf, path, "precopy_rounds", 0, 1000,
                            &cfg->precopy_rounds, error) < 0 ||
        cocoAgentConfigString(kf, path, "pid_dir", &cfg->pid_dir, error) < 0 ||
        cocoAgentConfigString(kf, path, "require_pidfile", &reqpid, error) <
            0 ||
        cocoAgentConfigUInt(kf, path, "peer_timeout", 1, 86400,
                            &cfg->peer_timeout, error) < 0)
        return -1;
    if (cocoAgentConfigStatusGroup(kf, path, &cfg->status_group, error) < 0)
        return -1;
    if (reqpid) {
        if (STREQ(reqpid, "true") || STREQ(reqpid, "1"))
            cfg->require_pidfile = true;
        else if (STREQ(reqpid, "false") || STREQ(reqpid, "0"))
            cfg->require_pidfile = false;
        else
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("key '%1$s' in '%2$s' must be 'true' or 'false', not '%3$s'"),
                "require_pidfile", path, reqpid);
    }
    qemu = g_key_file_get_string_list(kf, COCO_AGENT_GROUP, "qemu_binaries",
                                      NULL, NULL);
    if (qemu) {
        g_strfreev(cfg->qemu_binaries);
        cfg->qemu_binaries = g_steal_pointer(&qemu);
    }
    return 0;
}

int
cocoAgentConfigValidate(const CocoAgentConfig *cfg, GError **error)
{
    if (!cfg->firmware || STRNEQ(cfg->firmware, "emulated"))
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("firmware backend '%1$s' is not supported by virtcocod: only 'emulated' (the 'kvm' backend needs a VMM that owns the VM fd)"),
            NULLSTR(cfg->firmware));
    if (!cfg->socket_path || !g_path_is_absolute(cfg->socket_path))
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("the socket path '%1$s' must be absolute"),
                            NULLSTR(cfg->socket_path));
    if (!cfg->state_dir || !g_path_is_absolute(cfg->state_dir))
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("the state directory '%1$s' must be absolute"),
                            NULLSTR(cfg->state_dir));
    if (!cfg->platform_file || !*cfg->platform_file)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG, "%s",
                            _("the platform file must be set"));
    if (cfg->port > 65535 || cfg->peer_port > 65535)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("port '%1$u' is out of range"),
                            cfg->port > 65535 ? cfg->port : cfg->peer_port);
    if (cfg->streams < 1 || cfg->streams > COCO_TRANSFER_MAX_STREAMS)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("'%1$u' streams is out of range 1..512"),
                            cfg->streams);
    if (!cfg->qemu_binaries || !cfg->qemu_binaries[0])
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG, "%s",
                            _("the list of QEMU binaries must not be empty"));
    return 0;
}
