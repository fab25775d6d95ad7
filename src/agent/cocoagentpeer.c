/*
 * cocoagentpeer.c: the TCP connections between two hosts' agents
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentpeer.h"
#include "util/cocoerror.h"
#include "util/cocofd.h"
#include "util/cocomath.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct _CocoAgentPeerConn {
    int fd;
    GMainContext *ctx;
    GSource *src;
    GByteArray *in;
    CocoAgentPeerMessageFunc func;
    gpointer opaque;
    char *address;
    bool closed;
    bool dispatching;
    bool free_pending;
};

void
cocoAgentPeerHelloClear(CocoAgentPeerHello *hello)
{
    g_free(hello->name);
    g_free(hello->uuid);
    memset(hello, 0, sizeof(*hello));
}

int
cocoAgentPeerParseHost(const char *peer, char **host, GError **error)
{
    const char *colon;

    if (peer[0] == '[') {
        const char *end = strchr(peer, ']');

        if (!end || end == peer + 1)
            return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                                _("malformed peer address '%1$s'"), peer);
        *host = g_strndup(peer + 1, end - peer - 1);
        return 0;
    }
    colon = strrchr(peer, ':');
    if (colon == peer)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("malformed peer address '%1$s'"), peer);
    *host = colon ? g_strndup(peer, colon - peer) : g_strdup(peer);
    return 0;
}

static void
cocoAgentPeerSetTimeout(int fd, unsigned int seconds)
{
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int
cocoAgentPeerListen(const char *address, unsigned int port, unsigned int *bound,
                    GError **error)
{
    struct addrinfo hints = {0};
    struct addrinfo *res = NULL;
    g_autofree char *service = g_strdup_printf("%u", port);
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    int on = 1;
    int fd = -1;
    int rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    if ((rc = getaddrinfo(address, service, &hints, &res)) != 0)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("cannot resolve listen address '%1$s': %2$s"),
                            NULLSTR(address), gai_strerror(rc));
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        cocoErrorSetSystem(error, errno, "%s",
                           _("cannot create the peer socket"));
        goto error;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
        cocoErrorSetSystem(error, errno, _("cannot bind '%1$s' port '%2$u'"),
                           NULLSTR(address), port);
        goto error;
    }
    if (listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        cocoErrorSetSystem(error, errno, _("cannot listen on port '%1$u'"),
                           port);
        goto error;
    }
    *bound = ss.ss_family == AF_INET6
                 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    freeaddrinfo(res);
    return fd;

error:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return -1;
}

static int
cocoAgentPeerConnectFd(const char *host, unsigned int port,
                       unsigned int timeout, GError **error)
{
    struct addrinfo hints = {0};
    struct addrinfo *res = NULL;
    struct addrinfo *ai;
    g_autofree char *service = g_strdup_printf("%u", port);
    int err = 0;
    int on = 1;
    int rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if ((rc = getaddrinfo(host, service, &hints, &res)) != 0)
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_IO,
                            _("cannot resolve the peer agent '%1$s': %2$s"),
                            host, gai_strerror(rc));
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0) {
            err = errno;
            continue;
        }
        cocoAgentPeerSetTimeout(fd, timeout);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
            freeaddrinfo(res);
            return fd;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    return cocoErrorSetSystem(
        error, err, _("cannot connect to the peer agent at '%1$s' port '%2$u'"),
        host, port);
}

static int
cocoAgentPeerWriteAll(int fd, const void *buf, size_t len, GError **error)
{
    int rc = cocoFdSendAll(fd, buf, len);

    if (rc < 0)
        return cocoErrorSetSystem(error, -rc, "%s",
                                  _("cannot write to the peer agent"));
    return 0;
}

static int
cocoAgentPeerReadAll(int fd, void *buf, size_t len, GError **error)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cocoErrorSetSystem(error, errno, "%s",
                                      _("cannot read the peer's hello"));
        if (n == 0)
            return cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL, "%s",
                                _("the peer closed before its hello"));
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* "CAG1" | u32 LE length | the JSON text of @root. */
static int
cocoAgentPeerWriteFrame(int fd, JsonNode *root, uint32_t max, GError **error)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autofree char *text = NULL;
    g_autoptr(GByteArray) out = g_byte_array_new();
    gsize len = 0;
    uint32_t le;

    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, &len);
    if (len > max)
        return cocoErrorSet(
            error, COCO_ERROR_INTERNAL,
            _("a frame of '%1$zu' bytes is too long for a peer agent"),
            (size_t)len);
    le = GUINT32_TO_LE((uint32_t)len);
    g_byte_array_append(out, (const guint8 *)COCO_AGENT_PEER_MAGIC, 4);
    g_byte_array_append(out, (const guint8 *)&le, 4);
    g_byte_array_append(out, (const guint8 *)text, (guint)len);
    return cocoAgentPeerWriteAll(fd, out->data, out->len, error);
}

/* Read one frame; *@text gets its JSON text (NUL-terminated). */
static int
cocoAgentPeerReadFrame(int fd, uint32_t max, char **text, uint32_t *lenp,
                       GError **error)
{
    g_autofree char *buf = NULL;
    uint8_t head[8];
    uint32_t len;

    if (cocoAgentPeerReadAll(fd, head, sizeof(head), error) < 0)
        return -1;
    memcpy(&len, head + 4, 4);
    len = GUINT32_FROM_LE(len);
    if (memcmp(head, COCO_AGENT_PEER_MAGIC, 4) != 0 || len == 0 || len > max)
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL, "%s",
                            _("the peer's hello is malformed"));
    buf = g_malloc0(len + 1);
    if (cocoAgentPeerReadAll(fd, buf, len, error) < 0)
        return -1;
    *text = g_steal_pointer(&buf);
    *lenp = len;
    return 0;
}

static int
cocoAgentPeerWriteHello(int fd, const CocoAgentPeerHello *hello, GError **error)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *sid = g_strdup_printf("%016" G_GINT64_MODIFIER "x",
                                           (guint64)hello->session_id);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "kind");
    if (hello->kind == COCO_AGENT_PEER_PROBE) {
        json_builder_add_string_value(b, "probe");
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        return cocoAgentPeerWriteFrame(fd, root, COCO_AGENT_PEER_HELLO_MAX,
                                       error);
    }
    if (hello->kind == COCO_AGENT_PEER_STATUS) {
        json_builder_add_string_value(b, "status");
        json_builder_set_member_name(b, "session");
        json_builder_add_string_value(b, sid);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        return cocoAgentPeerWriteFrame(fd, root, COCO_AGENT_PEER_HELLO_MAX,
                                       error);
    }
    json_builder_add_string_value(
        b, hello->kind == COCO_AGENT_PEER_CONTROL ? "control" : "stream");
    json_builder_set_member_name(b, "session");
    json_builder_add_string_value(b, sid);
    json_builder_set_member_name(b, "streams");
    json_builder_add_int_value(b, hello->streams);
    if (hello->kind == COCO_AGENT_PEER_STREAM) {
        json_builder_set_member_name(b, "index");
        json_builder_add_int_value(b, hello->index);
    } else {
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, NULLSTR(hello->name));
        json_builder_set_member_name(b, "uuid");
        json_builder_add_string_value(b, hello->uuid ? hello->uuid : "");
        json_builder_set_member_name(b, "vcpus");
        json_builder_add_int_value(b, hello->nvcpus);
        json_builder_set_member_name(b, "pages");
        json_builder_add_int_value(b, (gint64)hello->npages);
        json_builder_set_member_name(b, "bundle");
        json_builder_add_int_value(b, hello->pages_per_bundle);
    }
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    return cocoAgentPeerWriteFrame(fd, root, COCO_AGENT_PEER_HELLO_MAX, error);
}

static int
cocoAgentPeerReadHello(int fd, CocoAgentPeerHello *hello, GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autofree char *text = NULL;
    uint32_t len;
    JsonNode *root;
    JsonObject *o;
    const char *kind;
    const char *sid;
    gint64 streams;

    if (cocoAgentPeerReadFrame(fd, COCO_AGENT_PEER_HELLO_MAX, &text, &len,
                               error) < 0)
        return -1;
    if (!json_parser_load_from_data(parser, text, len, NULL) ||
        !(root = json_parser_get_root(parser)) || !JSON_NODE_HOLDS_OBJECT(root))
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL, "%s",
                            _("the peer's hello is not a JSON object"));
    o = json_node_get_object(root);
    kind = json_object_get_string_member_with_default(o, "kind", "");
    sid = json_object_get_string_member_with_default(o, "session", "");
    streams = json_object_get_int_member_with_default(o, "streams", 0);
    if (STREQ(kind, "probe")) {
        hello->kind = COCO_AGENT_PEER_PROBE;
        return 0;
    }
    if (STREQ(kind, "control"))
        hello->kind = COCO_AGENT_PEER_CONTROL;
    else if (STREQ(kind, "stream"))
        hello->kind = COCO_AGENT_PEER_STREAM;
    else if (STREQ(kind, "status"))
        hello->kind = COCO_AGENT_PEER_STATUS;
    else
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL,
                            _("the peer's hello has an unknown kind '%1$s'"),
                            kind);
    if (strlen(sid) != 16 || cocoStrToU64(sid, 16, &hello->session_id) < 0)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("the peer's hello has a malformed session '%1$s'"), sid);
    if (hello->kind == COCO_AGENT_PEER_STATUS)
        return 0;
    if (streams < 1 || streams > 512)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("the peer's hello asks for '%1$lld' streams, not 1..512"),
            (long long)streams);
    hello->streams = (unsigned int)streams;
    if (hello->kind == COCO_AGENT_PEER_STREAM) {
        gint64 index = json_object_get_int_member_with_default(o, "index", -1);

        if (index < 0 || index >= streams)
            return cocoErrorSet(
                error, COCO_ERROR_TRANSFER_PROTOCOL,
                _("the peer's hello names stream '%1$lld' of '%2$lld'"),
                (long long)index, (long long)streams);
        hello->index = (unsigned int)index;
    } else {
        gint64 vcpus = json_object_get_int_member_with_default(o, "vcpus", 0);
        gint64 pages = json_object_get_int_member_with_default(o, "pages", 0);
        gint64 bundle = json_object_get_int_member_with_default(o, "bundle", 0);

        if (vcpus < 1 || vcpus > 4096 || pages < 1 || bundle < 1 ||
            bundle > 512)
            return cocoErrorSet(
                error, COCO_ERROR_TRANSFER_PROTOCOL, "%s",
                _("the peer's hello has no valid vCPU or page count"));
        hello->nvcpus = (unsigned int)vcpus;
        hello->npages = (uint64_t)pages;
        hello->pages_per_bundle = (unsigned int)bundle;
        hello->name =
            g_strdup(json_object_get_string_member_with_default(o, "name", ""));
        hello->uuid =
            g_strdup(json_object_get_string_member_with_default(o, "uuid", ""));
    }
    return 0;
}

static CocoAgentPeerConn *
cocoAgentPeerConnNew(int fd, GMainContext *ctx)
{
    CocoAgentPeerConn *conn = g_new0(CocoAgentPeerConn, 1);
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char host[NI_MAXHOST] = "";
    char serv[NI_MAXSERV] = "";

    conn->fd = fd;
    conn->ctx = g_main_context_ref(ctx);
    conn->in = g_byte_array_new();
    if (getpeername(fd, (struct sockaddr *)&ss, &sslen) == 0 &&
        getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), serv,
                    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        conn->address = g_strdup_printf("%s:%s", host, serv);
    else
        conn->address = g_strdup("?");
    return conn;
}

CocoAgentPeerConn *
cocoAgentPeerConnect(const char *host, unsigned int port, GMainContext *ctx,
                     unsigned int timeout, GError **error)
{
    int fd = cocoAgentPeerConnectFd(host, port, timeout, error);

    if (fd < 0)
        return NULL;
    return cocoAgentPeerConnNew(fd, ctx);
}

int
cocoAgentPeerConnSendHello(CocoAgentPeerConn *conn,
                           const CocoAgentPeerHello *hello, GError **error)
{
    return cocoAgentPeerWriteHello(conn->fd, hello, error);
}

static GIOStream *
cocoAgentPeerStreamFromFd(int fd, GError **error)
{
    g_autoptr(GSocket) sock = g_socket_new_from_fd(fd, error);

    if (!sock) {
        close(fd);
        return NULL;
    }
    return G_IO_STREAM(g_socket_connection_factory_create_connection(sock));
}

GIOStream *
cocoAgentPeerConnectStream(const char *host, unsigned int port,
                           unsigned int timeout,
                           const CocoAgentPeerHello *hello, GError **error)
{
    int fd = cocoAgentPeerConnectFd(host, port, timeout, error);

    if (fd < 0)
        return NULL;
    if (cocoAgentPeerWriteHello(fd, hello, error) < 0) {
        close(fd);
        return NULL;
    }
    cocoAgentPeerSetTimeout(fd, 0);
    return cocoAgentPeerStreamFromFd(fd, error);
}

int
cocoAgentPeerAccept(int fd, GMainContext *ctx, CocoAgentPeerHello *hello,
                    CocoAgentPeerConn **conn, GIOStream **stream,
                    GError **error)
{
    int on = 1;

    *conn = NULL;
    *stream = NULL;
    cocoAgentPeerSetTimeout(fd, 5);
    if (cocoAgentPeerReadHello(fd, hello, error) < 0) {
        cocoAgentPeerHelloClear(hello);
        close(fd);
        return -1;
    }
    cocoAgentPeerSetTimeout(fd, 0);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (hello->kind == COCO_AGENT_PEER_PROBE ||
        hello->kind == COCO_AGENT_PEER_STATUS) {
        /* The answer is one frame: do not let a silent prober block us. */
        cocoAgentPeerSetTimeout(fd, 5);
        *conn = cocoAgentPeerConnNew(fd, ctx);
        return 0;
    }
    if (hello->kind == COCO_AGENT_PEER_CONTROL) {
        *conn = cocoAgentPeerConnNew(fd, ctx);
        return 0;
    }
    if (!(*stream = cocoAgentPeerStreamFromFd(fd, error))) {
        cocoAgentPeerHelloClear(hello);
        return -1;
    }
    return 0;
}

int
cocoAgentPeerConnSendFrame(CocoAgentPeerConn *conn, JsonObject *obj,
                           GError **error)
{
    g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);

    if (conn->closed)
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_IO, "%s",
                            _("the connection to the peer agent is closed"));
    json_node_set_object(root, obj);
    return cocoAgentPeerWriteFrame(conn->fd, root, COCO_AGENT_PEER_ANSWER_MAX,
                                   error);
}

/* Send @hello and read the one-frame answer of type @type. */
static JsonObject *
cocoAgentPeerAsk(const char *host, unsigned int port, unsigned int timeout,
                 const CocoAgentPeerHello *hello, const char *type,
                 GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autofree char *text = NULL;
    JsonNode *root;
    JsonNode *tnode;
    uint32_t len = 0;
    int fd;

    if ((fd = cocoAgentPeerConnectFd(host, port, timeout, error)) < 0)
        return NULL;
    if (cocoAgentPeerWriteHello(fd, hello, error) < 0 ||
        cocoAgentPeerReadFrame(fd, COCO_AGENT_PEER_ANSWER_MAX, &text, &len,
                               error) < 0) {
        close(fd);
        return NULL;
    }
    close(fd);
    if (!json_parser_load_from_data(parser, text, len, NULL) ||
        !(root = json_parser_get_root(parser)) ||
        !JSON_NODE_HOLDS_OBJECT(root) ||
        !(tnode = json_object_get_member(json_node_get_object(root), "type")) ||
        !JSON_NODE_HOLDS_VALUE(tnode) ||
        json_node_get_value_type(tnode) != G_TYPE_STRING ||
        STRNEQ(json_node_get_string(tnode), type)) {
        cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("the agent at '%1$s' port '%2$u' did not answer the '%3$s' request"),
            host, port, type);
        return NULL;
    }
    return json_object_ref(json_node_get_object(root));
}

JsonObject *
cocoAgentPeerProbe(const char *host, unsigned int port, unsigned int timeout,
                   GError **error)
{
    CocoAgentPeerHello hello = {.kind = COCO_AGENT_PEER_PROBE};

    return cocoAgentPeerAsk(host, port, timeout, &hello, "probe", error);
}

JsonObject *
cocoAgentPeerStatus(const char *host, unsigned int port, unsigned int timeout,
                    uint64_t session_id, GError **error)
{
    CocoAgentPeerHello hello = {.kind = COCO_AGENT_PEER_STATUS,
                                .session_id = session_id};

    return cocoAgentPeerAsk(host, port, timeout, &hello, "peer-status", error);
}

/* Deliver every whole message in the buffer. */
static void
cocoAgentPeerConnDeliver(CocoAgentPeerConn *conn)
{
    while (!conn->closed && conn->in->len >= COCO_PHASE_MESSAGE_HEADER) {
        g_autoptr(GError) err = NULL;
        CocoPhaseMessage msg;
        gssize whole =
            cocoPhaseMessagePeekLength(conn->in->data, conn->in->len, &err);

        if (whole < 0) {
            conn->func(conn, NULL, err, conn->opaque);
            return;
        }
        if ((gsize)whole > conn->in->len)
            return;
        if (cocoPhaseMessageDecode(conn->in->data, (size_t)whole, &msg, &err) <
            0) {
            conn->func(conn, NULL, err, conn->opaque);
            return;
        }
        conn->func(conn, &msg, NULL, conn->opaque);
        if (conn->free_pending)
            return;
        g_byte_array_remove_range(conn->in, 0, (guint)whole);
    }
}

static gboolean
cocoAgentPeerConnOnIn(gint fd, GIOCondition cond, gpointer opaque)
{
    CocoAgentPeerConn *conn = opaque;
    uint8_t buf[65536];
    g_autoptr(GError) err = NULL;
    ssize_t n;

    if (conn->closed)
        return G_SOURCE_REMOVE;
    n = recv(conn->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return G_SOURCE_CONTINUE;
    conn->dispatching = true;
    if (n <= 0) {
        if (n < 0)
            cocoErrorSetSystem(&err, errno, "%s",
                               _("cannot read from the peer agent"));
        conn->func(conn, NULL, err, conn->opaque);
    } else {
        g_byte_array_append(conn->in, buf, (guint)n);
        cocoAgentPeerConnDeliver(conn);
    }
    conn->dispatching = false;
    if (conn->free_pending) {
        conn->free_pending = false;
        cocoAgentPeerConnFree(conn);
        return G_SOURCE_REMOVE;
    }
    return conn->closed ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

void
cocoAgentPeerConnStart(CocoAgentPeerConn *conn, CocoAgentPeerMessageFunc func,
                       gpointer opaque)
{
    conn->func = func;
    conn->opaque = opaque;
    if (conn->closed || conn->src)
        return;
    conn->src = g_unix_fd_source_new(conn->fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(conn->src,
                          (GSourceFunc)(void (*)(void))cocoAgentPeerConnOnIn,
                          conn, NULL);
    g_source_attach(conn->src, conn->ctx);
}

int
cocoAgentPeerConnSendMessage(CocoAgentPeerConn *conn,
                             const CocoPhaseMessage *msg, GError **error)
{
    g_autoptr(GBytes) b = NULL;
    gsize len;
    const void *data;

    if (conn->closed)
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_IO, "%s",
                            _("the connection to the peer agent is closed"));
    if (!(b = cocoPhaseMessageEncode(msg, error)))
        return -1;
    data = g_bytes_get_data(b, &len);
    return cocoAgentPeerWriteAll(conn->fd, data, len, error);
}

const char *
cocoAgentPeerConnGetAddress(CocoAgentPeerConn *conn)
{
    return conn->address;
}

void
cocoAgentPeerConnClose(CocoAgentPeerConn *conn)
{
    if (conn->closed)
        return;
    conn->closed = true;
    if (conn->src) {
        g_source_destroy(conn->src);
        g_clear_pointer(&conn->src, g_source_unref);
    }
    if (conn->fd >= 0) {
        shutdown(conn->fd, SHUT_RDWR);
        close(conn->fd);
        conn->fd = -1;
    }
}

void
cocoAgentPeerConnFree(CocoAgentPeerConn *conn)
{
    if (!conn)
        return;
    if (conn->dispatching) {
        conn->free_pending = true;
        cocoAgentPeerConnClose(conn);
        return;
    }
    cocoAgentPeerConnClose(conn);
    g_byte_array_unref(conn->in);
    g_main_context_unref(conn->ctx);
    g_free(conn->address);
    g_free(conn);
}
