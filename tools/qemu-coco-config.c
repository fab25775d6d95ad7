/*
 * qemu-coco-config.c: qemu-coco's configuration file (qemu-coco.conf)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qemu-coco-config.h"
#include "proto/cocoprotorelay.h"
#include "util/cocoerror.h"
#include "util/cocokeyfile.h"
#include "util/cocomath.h"

void
qemuCocoConfigClear(QemuCocoConfig *cfg)
{
    g_free(cfg->qemu);
    g_free(cfg->agentSocket);
    g_free(cfg->qmpLogDir);
    g_free(cfg->vfioInterposerPath);
    g_free(cfg->writeLogPath);
}

static const struct {
    const char *word;
    gboolean value;
} qemuCocoBooleans[] = {
    {"yes", TRUE},    {"no", FALSE}, {"true", TRUE},
    {"false", FALSE}, {"1", TRUE},   {"0", FALSE},
};

static char *
qemuCocoConfigString(GKeyFile *kf, const char *key)
{
    g_autofree char *v = g_key_file_get_string(kf, QEMU_COCO_GROUP, key, NULL);

    if (!v || !*v)
        return NULL;
    return g_steal_pointer(&v);
}

/* The keys of [qemu-coco]; any other key or group is refused. */
static const char *const qemuCocoConfigKeys[] = {
    "qemu",        "agent_socket",    "gate_timeout",
    "qmp_log_dir", "vfio_interposer", "vfio_interposer_path",
    "write_log",   "write_log_path",  NULL,
};

static int
qemuCocoConfigCheckKeys(GKeyFile *kf, const char *path, GError **error)
{
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    g_auto(GStrv) keys = NULL;
    size_t i;

    for (i = 0; groups[i]; i++) {
        if (STRNEQ(groups[i], QEMU_COCO_GROUP))
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("unknown group '%1$s' in '%2$s': the only group is '%3$s'"),
                groups[i], path, QEMU_COCO_GROUP);
    }
    keys = g_key_file_get_keys(kf, QEMU_COCO_GROUP, NULL, NULL);
    for (i = 0; keys && keys[i]; i++) {
        if (!g_strv_contains(qemuCocoConfigKeys, keys[i]))
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("unknown key '%1$s' in group '%2$s' of '%3$s'"), keys[i],
                QEMU_COCO_GROUP, path);
    }
    return 0;
}

/* A yes/no key; @value keeps its default when the key is absent. */
static int
qemuCocoConfigBool(GKeyFile *kf, const char *key, const char *path,
                   gboolean *value, GError **error)
{
    g_autofree char *word = qemuCocoConfigString(kf, key);
    size_t i;

    if (!word)
        return 0;
    for (i = 0; i < G_N_ELEMENTS(qemuCocoBooleans); i++) {
        if (STREQ(word, qemuCocoBooleans[i].word)) {
            *value = qemuCocoBooleans[i].value;
            return 0;
        }
    }
    return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                        _("'%1$s' in '%2$s' must be 'yes' or 'no', not '%3$s'"),
                        key, path, word);
}

/* An absolute path key; @value keeps its default when the key is
 * absent. */
static int
qemuCocoConfigPath(GKeyFile *kf, const char *key, const char *path,
                   char **value, GError **error)
{
    g_autofree char *v = NULL;

    if (!g_key_file_has_key(kf, QEMU_COCO_GROUP, key, NULL))
        return 0;
    v = qemuCocoConfigString(kf, key);
    if (!v || !g_path_is_absolute(v))
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("'%1$s' in '%2$s' must be an absolute path"), key,
                            path);
    g_free(*value);
    *value = g_steal_pointer(&v);
    return 0;
}

int
qemuCocoConfigLoad(const char *path, QemuCocoConfig *cfg, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *timeout = NULL;

    cfg->qemu = g_strdup(QEMU_COCO_DEFAULT_QEMU);
    cfg->gateTimeout = QEMU_COCO_DEFAULT_GATE_TIMEOUT;
    /* Without a configuration the relay still has its host's agent: a
     * confidential domain never migrates without one. */
    cfg->agentSocket = g_strdup(COCO_RELAY_DEFAULT_SOCKET);
    cfg->vfioInterposer = TRUE;
    cfg->vfioInterposerPath = g_strdup(COCO_VFIO_INTERPOSER);
    cfg->writeLog = TRUE;
    cfg->writeLogPath = g_strdup(COCO_WRITE_LOG_PRELOAD);
    if (!cocoKeyFileLoad(kf, path, &err)) {
        if (g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return 0;
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("cannot read the configuration '%1$s': %2$s"),
                            path, err->message);
    }
    if (qemuCocoConfigCheckKeys(kf, path, error) < 0)
        return -1;
    if (g_key_file_has_key(kf, QEMU_COCO_GROUP, "qemu", NULL)) {
        g_free(cfg->qemu);
        cfg->qemu = qemuCocoConfigString(kf, "qemu");
        if (!cfg->qemu || !g_path_is_absolute(cfg->qemu))
            return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                                _("'qemu' in '%1$s' must be an absolute path"),
                                path);
    }
    if (g_key_file_has_key(kf, QEMU_COCO_GROUP, "agent_socket", NULL)) {
        g_free(cfg->agentSocket);
        cfg->agentSocket = qemuCocoConfigString(kf, "agent_socket");
        if (!cfg->agentSocket || !g_path_is_absolute(cfg->agentSocket))
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("'agent_socket' in '%1$s' must be the absolute path of virtcocod's socket"),
                path);
    }
    cfg->qmpLogDir = qemuCocoConfigString(kf, "qmp_log_dir");
    timeout = qemuCocoConfigString(kf, "gate_timeout");
    if (timeout) {
        guint64 v;

        if (cocoStrToU64(timeout, 10, &v) < 0 || v == 0 || v > 86400)
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("'gate_timeout' in '%1$s' must be 1 to 86400 seconds, not '%2$s'"),
                path, timeout);
        cfg->gateTimeout = (guint)v;
    }
    if (qemuCocoConfigBool(kf, "vfio_interposer", path, &cfg->vfioInterposer,
                           error) < 0 ||
        qemuCocoConfigPath(kf, "vfio_interposer_path", path,
                           &cfg->vfioInterposerPath, error) < 0 ||
        qemuCocoConfigBool(kf, "write_log", path, &cfg->writeLog, error) < 0 ||
        qemuCocoConfigPath(kf, "write_log_path", path, &cfg->writeLogPath,
                           error) < 0)
        return -1;
    return 0;
}
