/*
 * cocoagentconfig.c: the configuration of virtcocod
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentconfig.h"
#include "agent/cocoagentmetrics.h"
#include "transfer/cocotransfer.h"
#include "util/cocoerror.h"
#include "util/cocokeyfile.h"
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
    cfg->precopy_rounds = COCO_AGENT_DEFAULT_PRECOPY_ROUNDS;
    cfg->pid_dir = g_strdup(COCO_AGENT_DEFAULT_PID_DIR);
    cfg->qemu_binaries = g_strdupv((char **)cocoAgentDefaultQemu);
    cfg->peer_timeout = COCO_AGENT_DEFAULT_PEER_TIMEOUT;
    cfg->heartbeat_interval = COCO_AGENT_DEFAULT_HEARTBEAT;
    cfg->peer_deadline = COCO_AGENT_DEFAULT_PEER_DEADLINE;
    cfg->switchover_timeout = COCO_AGENT_DEFAULT_SWITCHOVER_TIMEOUT;
    cfg->hold_timeout = COCO_AGENT_DEFAULT_HOLD_TIMEOUT;
    cfg->reconnect_window = COCO_AGENT_DEFAULT_RECONNECT_WINDOW;
    cfg->max_unauthenticated = COCO_AGENT_DEFAULT_MAX_UNAUTH;
    cfg->max_unauthenticated_per_address =
        COCO_AGENT_DEFAULT_MAX_UNAUTH_PER_ADDRESS;
    cfg->max_relays_per_uid = COCO_AGENT_DEFAULT_MAX_RELAYS_PER_UID;
    cfg->max_migrations = COCO_AGENT_DEFAULT_MAX_MIGRATIONS;
    cfg->records_max = COCO_AGENT_DEFAULT_RECORDS_MAX;
    cfg->records_max_age = COCO_AGENT_DEFAULT_RECORDS_MAX_AGE;
    cocoAgentTlsConfigInit(&cfg->tls);
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
    g_free(cfg->metrics_listen);
    cocoAgentTlsConfigClear(&cfg->tls);
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
    dst->metrics_listen = g_strdup(src->metrics_listen);
    cocoAgentTlsConfigCopy(&dst->tls, &src->tls);
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

/* A boolean key ("true" or "false"): absent leaves *@out alone. */
static int
cocoAgentConfigBool(GKeyFile *kf, const char *path, const char *key, bool *out,
                    GError **error)
{
    g_autofree char *val = NULL;

    if (cocoAgentConfigString(kf, path, key, &val, error) < 0)
        return -1;
    if (!val)
        return 0;
    if (STREQ(val, "true"))
        *out = true;
    else if (STREQ(val, "false"))
        *out = false;
    else
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("key '%1$s' in '%2$s' must be 'true' or 'false', not '%3$s'"),
            key, path, val);
    return 0;
}

/* A duration: seconds, or a number with 's', 'm', 'h' or 'd'. */
static int
cocoAgentConfigDuration(GKeyFile *kf, const char *path, const char *key,
                        unsigned int *out, GError **error)
{
    g_autofree char *val = NULL;
    guint64 v = 0;
    guint64 unit = 1;
    size_t len;

    if (cocoAgentConfigString(kf, path, key, &val, error) < 0)
        return -1;
    if (!val)
        return 0;
    len = strlen(val);
    switch (val[len - 1]) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        len++;
        break;
    }
    val[len - 1] = '\0';
    if (cocoStrToU64(val, 10, &v) < 0 || v > G_MAXUINT / unit)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("key '%1$s' in '%2$s' must be a duration such as '3600', '90m', '12h' or '30d'"),
            key, path);
    *out = (unsigned int)(v * unit);
    return 0;
}

/* The integer keys, with their ranges: one table. */
typedef struct {
    const char *key;
    size_t offset;
    unsigned int min;
    unsigned int max;
} CocoAgentConfigUIntKey;

#define UKEY(k, m, lo, hi)                                                     \
 {                                                                             \
  k, offsetof(CocoAgentConfig, m), lo, hi                                      \
 }
static const CocoAgentConfigUIntKey cocoAgentConfigUIntKeys[] = {
    UKEY("port", port, 0, 65535),
    UKEY("peer_port", peer_port, 0, 65535),
    UKEY("streams", streams, 1, COCO_TRANSFER_MAX_STREAMS),
    UKEY("pages_per_bundle", pages_per_bundle, 1,
         COCO_TRANSFER_MAX_PAGES_PER_BUNDLE),
    UKEY("vcpus", vcpus, 1, 4096),
    UKEY("precopy_rounds", precopy_rounds, 0, 1000),
    UKEY("peer_timeout", peer_timeout, 1, 86400),
    UKEY("heartbeat_interval", heartbeat_interval, 1, 60),
    UKEY("peer_deadline", peer_deadline, 2, 3600),
    UKEY("switchover_timeout", switchover_timeout, 1, 3600),
    UKEY("hold_timeout", hold_timeout, 1, 300),
    UKEY("reconnect_window", reconnect_window, 0, 86400),
    UKEY("max_unauthenticated", max_unauthenticated, 1, 65535),
    UKEY("max_unauthenticated_per_address", max_unauthenticated_per_address, 1,
         65535),
    UKEY("max_relays_per_uid", max_relays_per_uid, 1, 65535),
    UKEY("max_migrations", max_migrations, 1, 4096),
    UKEY("records_max", records_max, 1, 1000000),
};

/* The agents' mutual TLS: libvirt's x509 files and the deadline. */
static int
cocoAgentConfigTls(GKeyFile *kf, const char *path, CocoAgentTlsConfig *tls,
                   GError **error)
{
    if (cocoAgentConfigString(kf, path, "tls_ca_cert", &tls->ca_cert, error) <
            0 ||
        cocoAgentConfigString(kf, path, "tls_server_cert", &tls->server_cert,
                              error) < 0 ||
        cocoAgentConfigString(kf, path, "tls_server_key", &tls->server_key,
                              error) < 0 ||
        cocoAgentConfigString(kf, path, "tls_client_cert", &tls->client_cert,
                              error) < 0 ||
        cocoAgentConfigString(kf, path, "tls_client_key", &tls->client_key,
                              error) < 0 ||
        cocoAgentConfigString(kf, path, "tls_ca_crl", &tls->ca_crl, error) <
            0 ||
        cocoAgentConfigUInt(kf, path, "handshake_timeout", 1,
                            COCO_AGENT_TLS_MAX_HANDSHAKE_TIMEOUT,
                            &tls->handshake_timeout, error) < 0)
        return -1;
    return 0;
}

/* The keys read by name (the integer keys are cocoAgentConfigUIntKeys):
 * with those, every key the loader reads. Any other key or group is
 * refused, so that a misspelt or removed setting never passes silently. */
static const char *const cocoAgentConfigKeys[] = {
    "socket",
    "listen",
    "platform",
    "state_dir",
    "firmware",
    "dbus",
    "libvirt_uri",
    "pid_dir",
    "status_group",
    "qemu_binaries",
    "records_max_age",
    "tls_ca_cert",
    "tls_server_cert",
    "tls_server_key",
    "tls_client_cert",
    "tls_client_key",
    "tls_ca_crl",
    "handshake_timeout",
    "metrics_listen",
    "metrics_allow_remote",
    NULL,
};

static bool
cocoAgentConfigKnownKey(const char *key)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoAgentConfigUIntKeys); i++) {
        if (STREQ(cocoAgentConfigUIntKeys[i].key, key))
            return true;
    }
    return g_strv_contains(cocoAgentConfigKeys, key);
}

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
        if (!cocoAgentConfigKnownKey(keys[i]))
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
    g_auto(GStrv) qemu = NULL;
    size_t i;

    if (!cocoKeyFileLoad(kf, path, &err)) {
        if (!required && g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return 0;
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("cannot read the configuration '%1$s': %2$s"),
                            path, err->message);
    }
    if (g_key_file_has_key(kf, COCO_AGENT_GROUP, "require_pidfile", NULL))
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("key '%1$s' in '%2$s' is no longer supported: libvirt's PID file of the domain is always required; remove the key"),
            "require_pidfile", path);
    if (cocoAgentConfigCheckKeys(kf, path, error) < 0)
        return -1;
    for (i = 0; i < G_N_ELEMENTS(cocoAgentConfigUIntKeys); i++) {
        const CocoAgentConfigUIntKey *k = &cocoAgentConfigUIntKeys[i];

        if (cocoAgentConfigUInt(
                kf, path, k->key, k->min, k->max,
                (unsigned int *)(void *)((char *)cfg + k->offset), error) < 0)
            return -1;
    }
    if (cocoAgentConfigDuration(kf, path, "records_max_age",
                                &cfg->records_max_age, error) < 0)
        return -1;
    if (cocoAgentConfigString(kf, path, "socket", &cfg->socket_path, error) <
            0 ||
        cocoAgentConfigString(kf, path, "listen", &cfg->listen_address, error) <
            0 ||
        cocoAgentConfigString(kf, path, "platform", &cfg->platform_file,
                              error) < 0 ||
        cocoAgentConfigString(kf, path, "state_dir", &cfg->state_dir, error) <
            0 ||
        cocoAgentConfigString(kf, path, "firmware", &cfg->firmware, error) <
            0 ||
        cocoAgentConfigString(kf, path, "dbus", &cfg->dbus, error) < 0 ||
        cocoAgentConfigString(kf, path, "libvirt_uri", &cfg->libvirt_uri,
                              error) < 0 ||
        cocoAgentConfigString(kf, path, "pid_dir", &cfg->pid_dir, error) < 0)
        return -1;
    if (cocoAgentConfigStatusGroup(kf, path, &cfg->status_group, error) < 0 ||
        cocoAgentConfigTls(kf, path, &cfg->tls, error) < 0)
        return -1;
    if (cocoAgentConfigStringFull(kf, path, "metrics_listen", true,
                                  &cfg->metrics_listen, error) < 0 ||
        cocoAgentConfigBool(kf, path, "metrics_allow_remote",
                            &cfg->metrics_allow_remote, error) < 0)
        return -1;
    qemu = g_key_file_get_string_list(kf, COCO_AGENT_GROUP, "qemu_binaries",
                                      NULL, NULL);
    if (qemu) {
        g_strfreev(cfg->qemu_binaries);
        cfg->qemu_binaries = g_steal_pointer(&qemu);
    }
    return 0;
}

static int
cocoAgentConfigValidateTls(const CocoAgentTlsConfig *tls, GError **error)
{
    const struct {
        const char *key;
        const char *path;
    } files[] = {
        {"tls_ca_cert", tls->ca_cert},
        {"tls_server_cert", tls->server_cert},
        {"tls_server_key", tls->server_key},
        {"tls_client_cert", tls->client_cert},
        {"tls_client_key", tls->client_key},
        {"tls_ca_crl", tls->ca_crl},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(files); i++) {
        /* Only tls_ca_crl may be unset. */
        if (!files[i].path && STREQ(files[i].key, "tls_ca_crl"))
            continue;
        if (!files[i].path || !g_path_is_absolute(files[i].path))
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("the path '%1$s' of key '%2$s' must be absolute"),
                NULLSTR(files[i].path), files[i].key);
    }
    if (tls->handshake_timeout < 1 ||
        tls->handshake_timeout > COCO_AGENT_TLS_MAX_HANDSHAKE_TIMEOUT)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the handshake timeout of '%1$u' seconds is out of range 1..300"),
            tls->handshake_timeout);
    return 0;
}

/* The metrics endpoint: an address this host only, unless allowed. */
static int
cocoAgentConfigValidateMetrics(const CocoAgentConfig *cfg, GError **error)
{
    g_autoptr(GInetSocketAddress) addr = NULL;

    if (!cfg->metrics_listen)
        return 0;
    if (!(addr = cocoAgentMetricsListenParse(cfg->metrics_listen, error)))
        return -1;
    if (!cfg->metrics_allow_remote &&
        !g_inet_address_get_is_loopback(
            g_inet_socket_address_get_address(addr)))
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the metrics address '%1$s' is not a loopback address: set 'metrics_allow_remote = true' to serve the metrics to other hosts"),
            cfg->metrics_listen);
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
    /* A migration's control connection and its streams arrive together,
     * each unauthenticated until its hello was read. */
    if (cfg->max_unauthenticated_per_address <= cfg->streams)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("'max_unauthenticated_per_address' ('%1$u') must be larger than 'streams' ('%2$u'): a migration's control connection and its data streams arrive together"),
            cfg->max_unauthenticated_per_address, cfg->streams);
    if (!cfg->qemu_binaries || !cfg->qemu_binaries[0])
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG, "%s",
                            _("the list of QEMU binaries must not be empty"));
    if (cfg->peer_deadline <= cfg->heartbeat_interval)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("'peer_deadline' ('%1$u' s) must be longer than 'heartbeat_interval' ('%2$u' s)"),
            cfg->peer_deadline, cfg->heartbeat_interval);
    if (!cfg->listen_address || !*cfg->listen_address)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG, "%s",
                            _("the listen address must be set"));
    if (cocoAgentConfigValidateTls(&cfg->tls, error) < 0)
        return -1;
    if (cocoAgentConfigValidateMetrics(cfg, error) < 0)
        return -1;
    return 0;
}
