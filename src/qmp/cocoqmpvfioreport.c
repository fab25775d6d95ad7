/*
 * cocoqmpvfioreport.c: the VFIO interposer's leak reports, read by the relay
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "qmp/cocoqmpvfioreport.h"
#include "libvirt-coco/coco-vfio.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"
#include "util/cocosource.h"

#include <errno.h>
#include <glib-unix.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <unistd.h>

/* Datagrams handled per wake-up: a flooding QEMU cannot starve the
 * relay's monitor connections. */
#define COCO_QMP_VFIO_REPORTS_PER_WAKEUP 16

static const char *
cocoQmpVfioString(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
        json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

static bool
cocoQmpVfioInt(JsonObject *o, const char *name, gint64 min, gint64 max,
               gint64 *val)
{
    JsonNode *n = json_object_get_member(o, name);

    if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
        json_node_get_value_type(n) != G_TYPE_INT64)
        return false;
    *val = json_node_get_int(n);
    return *val >= min && *val <= max;
}

static bool
cocoQmpVfioHex(JsonObject *o, const char *name, uint64_t *val)
{
    const char *s = cocoQmpVfioString(o, name);

    return s && STRPREFIX(s, "0x") && strlen(s) <= 18 &&
           cocoStrToU64(s, 16, val) == 0;
}

static char *
cocoQmpVfioHexString(uint64_t v)
{
    return g_strdup_printf("0x%" PRIx64 "", v);
}

COCO_ENUM_IMPL(cocoQmpVfioReportKind, COCO_QMP_VFIO_REPORT_LAST, "vfio-leak",
               "vfio-state");

/* A device name as sysfs spells it: letters, digits, ":._-". */
static bool
cocoQmpVfioDeviceNameValid(const char *s)
{
    size_t n = strlen(s);
    size_t i;

    if (n == 0 || n > COCO_QMP_VFIO_DEVICE_NAME_MAX)
        return false;
    for (i = 0; i < n; i++) {
        if (!g_ascii_isalnum(s[i]) && !strchr(":._-", s[i]))
            return false;
    }
    return true;
}

static JsonObject *
cocoQmpVfioStateParse(JsonObject *o, GError **error)
{
    g_autoptr(JsonObject) data = json_object_new();
    JsonArray *out = json_array_new();
    JsonArray *devices;
    JsonNode *dn;
    gint64 count;
    gint64 spaces;
    gint64 mappings;
    uint64_t bytes;
    guint i;

    json_object_set_array_member(data, "devices", out);
    if (!cocoQmpVfioInt(o, "count", 0, G_MAXINT32, &count) ||
        !cocoQmpVfioInt(o, "spaces", 0, G_MAXINT32, &spaces) ||
        !cocoQmpVfioInt(o, "mappings", 0, G_MAXINT64, &mappings) ||
        !cocoQmpVfioHex(o, "bytes", &bytes) || bytes > G_MAXINT64 ||
        (mappings == 0) != (bytes == 0)) {
        cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL, "%s",
            _("a VFIO state report lacks a valid 'count', 'spaces', 'mappings' or 'bytes'"));
        return NULL;
    }
    dn = json_object_get_member(o, "devices");
    if (!dn || !JSON_NODE_HOLDS_ARRAY(dn) ||
        json_array_get_length(devices = json_node_get_array(dn)) >
            COCO_QMP_VFIO_REPORT_DEVICES ||
        json_array_get_length(devices) > (guint)count) {
        cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL,
            _("a VFIO state report's 'devices' must be an array of at most %1$d names and no more than its count"),
            COCO_QMP_VFIO_REPORT_DEVICES);
        return NULL;
    }
    for (i = 0; i < json_array_get_length(devices); i++) {
        JsonNode *e = json_array_get_element(devices, i);

        if (!JSON_NODE_HOLDS_VALUE(e) ||
            json_node_get_value_type(e) != G_TYPE_STRING ||
            !cocoQmpVfioDeviceNameValid(json_node_get_string(e))) {
            cocoErrorSet(
                error, COCO_ERROR_QMP_PROTOCOL,
                _("device %1$u of a VFIO state report is not a device name (letters, digits, ':', '.', '_', '-', at most %2$d)"),
                i, COCO_QMP_VFIO_DEVICE_NAME_MAX);
            return NULL;
        }
        json_array_add_string_element(out, json_node_get_string(e));
    }
    json_object_set_int_member(data, "count", count);
    json_object_set_int_member(data, "spaces", spaces);
    json_object_set_int_member(data, "mappings", mappings);
    json_object_set_int_member(data, "bytes", (gint64)bytes);
    return g_steal_pointer(&data);
}

static JsonObject *cocoQmpVfioLeakParse(JsonObject *o, GError **error);

JsonObject *
cocoQmpVfioReportParse(const char *buf, size_t len, CocoQmpVfioReportKind *kind,
                       GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonNode *root;
    JsonObject *o;
    int k;

    if (len == 0 || len > COCO_QMP_VFIO_REPORT_MAX) {
        cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL,
                     _("a VFIO report of %1$zu bytes is refused (1 to %2$d)"),
                     len, COCO_QMP_VFIO_REPORT_MAX);
        return NULL;
    }
    if (!json_parser_load_from_data(parser, buf, (gssize)len, NULL) ||
        !(root = json_parser_get_root(parser)) ||
        !JSON_NODE_HOLDS_OBJECT(root)) {
        cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL, "%s",
                     _("a VFIO report is not a JSON object"));
        return NULL;
    }
    o = json_node_get_object(root);
    if ((k = cocoQmpVfioReportKindTypeFromString(
             NULLSTR(cocoQmpVfioString(o, "event")))) < 0) {
        cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL, "%s",
            _("a VFIO report names neither the event 'vfio-leak' nor 'vfio-state'"));
        return NULL;
    }
    *kind = k;
    if (k == COCO_QMP_VFIO_REPORT_STATE)
        return cocoQmpVfioStateParse(o, error);
    return cocoQmpVfioLeakParse(o, error);
}

static JsonObject *
cocoQmpVfioLeakParse(JsonObject *o, GError **error)
{
    g_autoptr(JsonObject) data = json_object_new();
    JsonArray *out = json_array_new();
    JsonNode *rn;
    JsonArray *ranges;
    const char *s;
    gint64 space;
    gint64 count;
    uint64_t bytes;
    guint i;

    json_object_set_array_member(data, "ranges", out);
    if (!(s = cocoQmpVfioString(o, "backend")) ||
        cocoVfioBackendTypeFromString(s) < 0) {
        cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL, "%s",
                     _("a VFIO leak report names no known backend"));
        return NULL;
    }
    json_object_set_string_member(data, "backend", s);
    if (!(s = cocoQmpVfioString(o, "fix")) ||
        cocoVfioFixStatusTypeFromString(s) < 0) {
        cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL, "%s",
                     _("a VFIO leak report names no known fix status"));
        return NULL;
    }
    json_object_set_string_member(data, "fix", s);
    if (!(s = cocoQmpVfioString(o, "when")) ||
        (STRNEQ(s, "unmap") && STRNEQ(s, "release"))) {
        cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL, "%s",
            _("a VFIO leak report says neither 'unmap' nor 'release'"));
        return NULL;
    }
    json_object_set_string_member(data, "when", s);
    if (!cocoQmpVfioInt(o, "space", 0, G_MAXUINT32, &space) ||
        !cocoQmpVfioInt(o, "count", 1, G_MAXINT32, &count) ||
        !cocoQmpVfioHex(o, "bytes", &bytes)) {
        cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL, "%s",
            _("a VFIO leak report lacks a valid 'space', 'count' or 'bytes'"));
        return NULL;
    }
    json_object_set_int_member(data, "space", space);
    json_object_set_int_member(data, "count", count);
    {
        g_autofree char *hex = cocoQmpVfioHexString(bytes);

        json_object_set_string_member(data, "bytes", hex);
    }
    rn = json_object_get_member(o, "ranges");
    if (!rn || !JSON_NODE_HOLDS_ARRAY(rn) ||
        json_array_get_length(ranges = json_node_get_array(rn)) >
            COCO_QMP_VFIO_REPORT_RANGES ||
        json_array_get_length(ranges) > (guint)count) {
        cocoErrorSet(
            error, COCO_ERROR_QMP_PROTOCOL,
            _("a VFIO leak report's 'ranges' must be an array of at most %1$d ranges and no more than its count"),
            COCO_QMP_VFIO_REPORT_RANGES);
        return NULL;
    }
    for (i = 0; i < json_array_get_length(ranges); i++) {
        JsonNode *e = json_array_get_element(ranges, i);
        JsonObject *r;
        uint64_t first;
        uint64_t last;
        g_autofree char *f = NULL;
        g_autofree char *l = NULL;

        if (!JSON_NODE_HOLDS_OBJECT(e) ||
            !cocoQmpVfioHex(json_node_get_object(e), "first", &first) ||
            !cocoQmpVfioHex(json_node_get_object(e), "last", &last) ||
            first > last) {
            cocoErrorSet(
                error, COCO_ERROR_QMP_PROTOCOL,
                _("range %1$u of a VFIO leak report is not a 'first' <= 'last' pair of hexadecimal IOVAs"),
                i);
            return NULL;
        }
        r = json_object_new();
        f = cocoQmpVfioHexString(first);
        l = cocoQmpVfioHexString(last);
        json_object_set_string_member(r, "first", f);
        json_object_set_string_member(r, "last", l);
        json_array_add_object_element(out, r);
    }
    return g_steal_pointer(&data);
}

char *
cocoQmpVfioReportDescribe(JsonObject *data)
{
    g_autoptr(GString) list = g_string_new(NULL);
    JsonArray *ranges = json_object_get_array_member(data, "ranges");
    gint64 count = json_object_get_int_member(data, "count");
    guint i;

    for (i = 0; i < json_array_get_length(ranges); i++) {
        JsonObject *r = json_array_get_object_element(ranges, i);

        g_string_append_printf(list, "%s[%s, %s]", i ? ", " : "",
                               json_object_get_string_member(r, "first"),
                               json_object_get_string_member(r, "last"));
    }
    if (count > (gint64)json_array_get_length(ranges))
        g_string_append_printf(list, ", +%" G_GINT64_FORMAT "",
                               count - (gint64)json_array_get_length(ranges));
    return g_strdup_printf(
        _("%1$lld DMA mapping(s) of %2$s bytes could not be unmapped on the %3$s backend (fix %4$s) and stay pinned until the host reboots: %5$s"),
        (long long)count, json_object_get_string_member(data, "bytes"),
        json_object_get_string_member(data, "backend"),
        json_object_get_string_member(data, "fix"), list->str);
}

struct _CocoQmpVfioReader {
    int fd;
    GSource *source;
    CocoQmpVfioReportFunc cb;
    gpointer opaque;
};

static gboolean
cocoQmpVfioReaderOnReadable(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoQmpVfioReader *reader = opaque;
    int i;

    for (i = 0; i < COCO_QMP_VFIO_REPORTS_PER_WAKEUP; i++) {
        char buf[COCO_QMP_VFIO_REPORT_MAX];
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) data = NULL;
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
        CocoQmpVfioReportKind kind = COCO_QMP_VFIO_REPORT_LEAK;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return G_SOURCE_CONTINUE;
        if (n < 0) {
            g_printerr("qemu-coco: %s: %s\n",
                       _("cannot read the VFIO interposer's reports"),
                       g_strerror(errno));
            g_clear_pointer(&reader->source, g_source_unref);
            return G_SOURCE_REMOVE;
        }
        if (!(data = cocoQmpVfioReportParse(buf, (size_t)n, &kind, &err))) {
            g_printerr("qemu-coco: %s\n", err->message);
            continue;
        }
        reader->cb(kind, data, reader->opaque);
    }
    return G_SOURCE_CONTINUE;
}

CocoQmpVfioReader *
cocoQmpVfioReaderNew(int fd, GMainContext *ctx, CocoQmpVfioReportFunc cb,
                     gpointer opaque)
{
    CocoQmpVfioReader *reader = g_new0(CocoQmpVfioReader, 1);

    reader->fd = fd;
    reader->cb = cb;
    reader->opaque = opaque;
    reader->source = g_unix_fd_source_new(fd, G_IO_IN);
    g_source_set_callback(reader->source,
                          G_SOURCE_FUNC(cocoQmpVfioReaderOnReadable), reader,
                          NULL);
    g_source_attach(reader->source, ctx);
    return reader;
}

void
cocoQmpVfioReaderFree(CocoQmpVfioReader *reader)
{
    if (!reader)
        return;
    cocoSourceClear(&reader->source);
    COCO_FORCE_CLOSE(reader->fd);
    g_free(reader);
}
