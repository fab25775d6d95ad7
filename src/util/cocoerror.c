/*
 * cocoerror.c: the COCO_ERROR domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "util/cocoerror.h"

#include <errno.h>
#include <unistd.h>

typedef struct {
    int virCode;
    int virDomain;
} CocoErrorPrivate;

static void
coco_error_private_init(CocoErrorPrivate *priv)
{
    priv->virCode = 0;
    priv->virDomain = 0;
}

static void
coco_error_private_copy(const CocoErrorPrivate *src, CocoErrorPrivate *dest)
{
    *dest = *src;
}

static void
coco_error_private_clear(CocoErrorPrivate *priv G_GNUC_UNUSED)
{
}

/* G_DEFINE_EXTENDED_ERROR defines these; declared for -Wmissing-prototypes. */
GQuark coco_error_quark(void);

/* GLib's macro casts the error's private area; clang's -Wcast-align
 * objects to that cast, which GLib itself guarantees is aligned. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-align"
G_DEFINE_EXTENDED_ERROR(CocoError, coco_error)
#pragma GCC diagnostic pop

GQuark
cocoErrorQuark(void)
{
    return coco_error_quark();
}

typedef struct {
    int code;
    const char *nick;
} CocoErrorNick;

/* The nicks are ABI, like the numbers: never change one. */
static const CocoErrorNick cocoErrorNicks[] = {
    {COCO_ERROR_INTERNAL, "internal"},
    {COCO_ERROR_INVALID_ARG, "invalid-arg"},
    {COCO_ERROR_NOT_SUPPORTED, "not-supported"},
    {COCO_ERROR_SYSTEM, "system"},
    {COCO_ERROR_LIBVIRT, "libvirt"},
    {COCO_ERROR_USAGE, "usage"},
    {COCO_ERROR_XML_MALFORMED, "xml-malformed"},
    {COCO_ERROR_XML_NAMESPACE, "xml-namespace"},
    {COCO_ERROR_XML_UNKNOWN, "xml-unknown"},
    {COCO_ERROR_XML_MISSING, "xml-missing"},
    {COCO_ERROR_XML_DUPLICATE, "xml-duplicate"},
    {COCO_ERROR_XML_ENUM, "xml-enum"},
    {COCO_ERROR_XML_NUMBER, "xml-number"},
    {COCO_ERROR_XML_FORMAT, "xml-format"},
    {COCO_ERROR_XML_SCHEMA, "xml-schema"},
    {COCO_ERROR_CONFIG_CONFLICT, "config-conflict"},
    {COCO_ERROR_NOT_CONFIGURED, "not-configured"},
    {COCO_ERROR_XML_ORDER, "xml-order"},
    {COCO_ERROR_FW_STATE, "fw-state"},
    {COCO_ERROR_FW_INTEGRITY, "fw-integrity"},
    {COCO_ERROR_FW_SEQUENCE, "fw-sequence"},
    {COCO_ERROR_FW_BUSY, "fw-busy"},
    {COCO_ERROR_FW_NOT_READY, "fw-not-ready"},
    {COCO_ERROR_FW_EXISTS, "fw-exists"},
    {COCO_ERROR_FW_INVALID, "fw-invalid"},
    {COCO_ERROR_FW_BUFFER, "fw-buffer"},
    {COCO_ERROR_FW_FATAL, "fw-fatal"},
    {COCO_ERROR_FW_POLICY, "fw-policy"},
    {COCO_ERROR_FW_KEY, "fw-key"},
    {COCO_ERROR_TRANSFER_IO, "transfer-io"},
    {COCO_ERROR_TRANSFER_PROTOCOL, "transfer-protocol"},
    {COCO_ERROR_VFIO_KERNEL, "vfio-kernel"},
    {COCO_ERROR_VFIO_RANGE, "vfio-range"},
    {COCO_ERROR_VFIO_LEAK, "vfio-leak"},
    {COCO_ERROR_VFIO_CAPS, "vfio-caps"},
    {COCO_ERROR_VFIO_UNSAFE, "vfio-unsafe"},
    {COCO_ERROR_MIGRATION_PHASE, "migration-phase"},
    {COCO_ERROR_MIGRATION_ABORTED, "migration-aborted"},
    {COCO_ERROR_MIGRATION_SOURCE_FROZEN, "migration-source-frozen"},
    {COCO_ERROR_MIGRATION_UNSEALED, "migration-unsealed"},
    {COCO_ERROR_ACCESS_DENIED, "access-denied"},
    {COCO_ERROR_AGENT_PROTOCOL, "agent-protocol"},
    {COCO_ERROR_PEER_AUTH, "peer-auth"},
    {COCO_ERROR_AGENT_LIMIT, "agent-limit"},
    {COCO_ERROR_PEER_TIMEOUT, "peer-timeout"},
    {COCO_ERROR_QMP_PROTOCOL, "qmp-protocol"},
    {COCO_ERROR_QMP_AGENT, "qmp-agent"},
};

const char *
cocoErrorCodeToString(int code)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoErrorNicks); i++) {
        if (cocoErrorNicks[i].code == code)
            return cocoErrorNicks[i].nick;
    }
    return NULL;
}

int
cocoErrorCodeFromString(const char *nick)
{
    size_t i;

    if (!nick)
        return -1;
    for (i = 0; i < G_N_ELEMENTS(cocoErrorNicks); i++) {
        if (STREQ(cocoErrorNicks[i].nick, nick))
            return cocoErrorNicks[i].code;
    }
    return -1;
}

int
cocoErrorGetLibvirtCode(const GError *error)
{
    CocoErrorPrivate *priv;

    if (!error || error->domain != COCO_ERROR)
        return 0;
    priv = coco_error_get_private(error);
    return priv ? priv->virCode : 0;
}

int
cocoErrorGetLibvirtDomain(const GError *error)
{
    CocoErrorPrivate *priv;

    if (!error || error->domain != COCO_ERROR)
        return 0;
    priv = coco_error_get_private(error);
    return priv ? priv->virDomain : 0;
}

int
cocoErrorSet(GError **error, CocoErrorCode code, const char *fmt, ...)
{
    va_list ap;

    if (!error)
        return -1;
    va_start(ap, fmt);
    g_propagate_error(error, g_error_new_valist(COCO_ERROR, code, fmt, ap));
    va_end(ap);
    return -1;
}

int
cocoErrorSetSystem(GError **error, int errnum, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    if (!error)
        return -1;
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, COCO_ERROR, COCO_ERROR_SYSTEM, "%s: %s", msg,
                g_strerror(errnum));
    return -1;
}

int
cocoErrorSetLibvirt(GError **error, int vir_code, int vir_domain,
                    const char *message)
{
    CocoErrorPrivate *priv;
    GError *err;

    if (!error)
        return -1;
    err = g_error_new_literal(COCO_ERROR, COCO_ERROR_LIBVIRT,
                              message ? message : _("unknown libvirt error"));
    priv = coco_error_get_private(err);
    priv->virCode = vir_code;
    priv->virDomain = vir_domain;
    g_propagate_error(error, err);
    return -1;
}

void
cocoErrorPrefix(GError **error, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *prefix = NULL;

    if (!error || !*error)
        return;
    va_start(ap, fmt);
    prefix = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_prefix_error(error, "%s", prefix);
}

void
cocoForceClose(int *fd)
{
    if (*fd >= 0) {
        int save = errno;

        close(*fd);
        errno = save;
        *fd = -1;
    }
}
