/*
 * cocoagentpeer.c: connections between two hosts' agents
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentpeer.h"
#include "agent/cocoagenttls.h"
#include "util/cocoerror.h"
#include "util/cocofd.h"
#include "util/cocohex.h"
#include "util/cocosource.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define COCO_AGENT_PEER_READ 65536

struct _CocoAgentPeerConn {
    GIOStream *stream;
    GInputStream *in;
    GOutputStream *out;
    GSocket *sock;
    GMainContext *ctx;
    GSource *src;
    GSource *heartbeat;
    GSource *liveness;
    GByteArray *buf;
    CocoAgentPeerMessageFunc func;
    gpointer opaque;
    char *address;
    char *host;
    char *identity;
    GByteArray *binding;
    gint64 last_rx;
    guint64 seq;
    unsigned int deadline_s;
    bool closed;
    bool dispatching;
    bool free_pending;
};

void
cocoAgentPeerSocketOptions(int fd, unsigned int deadline_s)
{
    int on = 1;
    int idle = MAX(1, (int)deadline_s / 3);
    int intvl = MAX(1, (int)deadline_s / 6);
    int cnt = 3;
    unsigned int user_timeout = deadline_s * 1000U;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    /* Unacknowledged data older than the deadline fails the socket. */
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
               sizeof(user_timeout));
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
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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

static void
cocoAgentPeerSetTimeout(int fd, unsigned int seconds)
{
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A blocking TCP connection within @timeout seconds. */
static int
cocoAgentPeerConnectFd(const char *host, unsigned int port,
                       unsigned int timeout, GError **error)
{
    struct addrinfo hints = {0};
    struct addrinfo *res = NULL;
    struct addrinfo *ai;
    g_autofree char *service = g_strdup_printf("%u", port);
    int err = 0;
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
        /* Bounds connect(), and every blocking read and write after it. */
        cocoAgentPeerSetTimeout(fd, timeout);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (err == EINPROGRESS || err == EAGAIN)
        return cocoErrorSet(
            error, COCO_ERROR_PEER_TIMEOUT,
            _("the peer agent at '%1$s' port '%2$u' did not accept a connection within '%3$u' seconds"),
            host, port, timeout);
    return cocoErrorSetSystem(
        error, err, _("cannot connect to the peer agent at '%1$s' port '%2$u'"),
        host, port);
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

typedef struct {
    bool done;
    GIOStream *tls;
    char *identity;
    GError *error;
} CocoAgentPeerWait;

static void
cocoAgentPeerOnHandshake(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    CocoAgentPeerWait *w = opaque;

    w->tls = cocoAgentTlsHandshakeFinish(res, &w->identity, &w->error);
    w->done = true;
}

/* The client's TLS handshake, blocking the calling thread (never the
 * main thread) on a context of its own, within handshake_timeout. */
static GIOStream *
cocoAgentPeerHandshake(CocoAgent *agent, GIOStream *base, const char *host,
                       char **identity, GError **error)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    const CocoAgentConfig *cfg = cocoAgentConfig(agent);
    CocoAgentPeerWait w = {0};

    if (!cocoAgentTls(agent))
        return cocoErrorSet(
                   error, COCO_ERROR_PEER_AUTH, "%s",
                   _("this host has no TLS credentials for its agent (see the tls_* keys of virtcocod.conf): confidential migration refused")),
               NULL;
    g_main_context_push_thread_default(ctx);
    cocoAgentTlsHandshakeAsync(cocoAgentTls(agent), base, COCO_AGENT_TLS_CLIENT,
                               host, cfg->tls.handshake_timeout * 1000U, NULL,
                               cocoAgentPeerOnHandshake, &w);
    while (!w.done)
        g_main_context_iteration(ctx, TRUE);
    g_main_context_pop_thread_default(ctx);
    if (!w.tls) {
        g_propagate_error(error, w.error);
        return NULL;
    }
    *identity = w.identity;
    return w.tls;
}

static CocoAgentPeerConn *
cocoAgentPeerConnAlloc(GIOStream *stream, const char *address,
                       const char *identity, GByteArray *binding)
{
    CocoAgentPeerConn *conn = g_new0(CocoAgentPeerConn, 1);
    g_autoptr(GIOStream) base = NULL;
    const char *colon;

    conn->stream = stream;
    conn->in = g_io_stream_get_input_stream(stream);
    conn->out = g_io_stream_get_output_stream(stream);
    if (G_IS_TLS_CONNECTION(stream))
        g_object_get(stream, "base-io-stream", &base, NULL);
    else
        base = g_object_ref(stream);
    if (G_IS_SOCKET_CONNECTION(base))
        conn->sock = g_object_ref(
            g_socket_connection_get_socket(G_SOCKET_CONNECTION(base)));
    conn->buf = g_byte_array_new();
    conn->address = g_strdup(address);
    if (address[0] == '[' && strchr(address, ']'))
        conn->host = g_strndup(address + 1, strchr(address, ']') - address - 1);
    else if ((colon = strrchr(address, ':')))
        conn->host = g_strndup(address, colon - address);
    else
        conn->host = g_strdup(address);
    conn->identity = g_strdup(identity);
    conn->binding = binding;
    conn->last_rx = g_get_monotonic_time();
    return conn;
}

CocoAgentPeerConn *
cocoAgentPeerConnNew(GIOStream *stream, const char *address,
                     const char *identity, GByteArray *binding)
{
    return cocoAgentPeerConnAlloc(stream, address, identity, binding);
}

static int
cocoAgentPeerWrite(GOutputStream *out, const void *data, gsize len,
                   const char *address, GError **error)
{
    g_autoptr(GError) err = NULL;
    gsize written = 0;

    if (!g_output_stream_write_all(out, data, len, &written, NULL, &err)) {
        if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
            return cocoErrorSet(
                error, COCO_ERROR_PEER_TIMEOUT,
                _("the peer host '%1$s' stopped reading: a write did not complete in time"),
                address);
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_IO,
                            _("cannot write to the peer host '%1$s': %2$s"),
                            address, err->message);
    }
    return 0;
}

CocoAgentPeerConn *
cocoAgentPeerConnect(CocoAgent *agent, const char *host, unsigned int port,
                     const CocoPeerHello *hello, GError **error)
{
    const CocoAgentConfig *cfg = cocoAgentConfig(agent);
    g_autoptr(GIOStream) base = NULL;
    g_autoptr(GIOStream) tls = NULL;
    g_autoptr(GBytes) frame = NULL;
    g_autofree char *identity = NULL;
    g_autofree char *address = NULL;
    GByteArray *binding = NULL;
    CocoAgentPeerConn *conn;
    int fd;

    if ((fd = cocoAgentPeerConnectFd(host, port, cfg->peer_timeout, error)) < 0)
        return NULL;
    cocoAgentPeerSocketOptions(fd, cfg->peer_deadline);
    if (!(base = cocoAgentPeerStreamFromFd(fd, error)))
        return NULL;
    address = cocoAgentTlsPeerAddress(base);
    if (!(tls = cocoAgentPeerHandshake(agent, base, host, &identity, error)))
        return NULL;
    if (cocoAgentTlsChannelBinding(tls, &binding, error) < 0)
        return NULL;
    conn = cocoAgentPeerConnAlloc(g_steal_pointer(&tls), address, identity,
                                  binding);
    if (conn->sock)
        g_socket_set_timeout(conn->sock, cfg->peer_deadline);
    frame = cocoPeerHelloEncode(hello);
    if (cocoAgentPeerConnSendBytes(conn, frame, error) < 0) {
        cocoAgentPeerConnFree(conn);
        return NULL;
    }
    return conn;
}

GIOStream *
cocoAgentPeerConnectStream(CocoAgent *agent, const char *host,
                           unsigned int port, CocoPeerHello *hello,
                           const GByteArray *binding, GError **error)
{
    const CocoAgentConfig *cfg = cocoAgentConfig(agent);
    guint8 token[COCO_AGENT_TLS_TOKEN_SIZE];
    g_autoptr(GBytes) frame = NULL;
    g_autofree char *hex = NULL;
    gsize len;
    const void *data;
    int fd;
    int rc;

    if (cocoAgentTlsStreamToken(binding, hello->session, (guint)hello->index,
                                token) < 0)
        return cocoErrorSet(error, COCO_ERROR_INTERNAL, "%s",
                            _("no channel binding for the data streams")),
               NULL;
    hex = cocoHexEncode(token, sizeof(token));
    g_free(hello->token);
    hello->token = g_steal_pointer(&hex);
    if ((fd = cocoAgentPeerConnectFd(host, port, cfg->peer_timeout, error)) < 0)
        return NULL;
    cocoAgentPeerSocketOptions(fd, cfg->peer_deadline);
    frame = cocoPeerHelloEncode(hello);
    data = g_bytes_get_data(frame, &len);
    if ((rc = cocoFdSendAll(fd, data, len)) < 0) {
        close(fd);
        return cocoErrorSetSystem(
                   error, -rc,
                   _("cannot send the hello of a data stream to '%1$s'"), host),
               NULL;
    }
    /* The transfer engine's reads wait as long as the peer is alive
     * (keepalive, TCP_USER_TIMEOUT); only the hello had a deadline. */
    cocoAgentPeerSetTimeout(fd, 0);
    return cocoAgentPeerStreamFromFd(fd, error);
}

JsonObject *
cocoAgentPeerRequest(CocoAgent *agent, const char *host, unsigned int port,
                     const CocoPeerHello *hello, GError **error)
{
    g_autoptr(GError) err = NULL;
    CocoAgentPeerConn *conn;
    g_autofree char *text = NULL;
    uint8_t head[COCO_PEER_HEADER];
    JsonObject *obj = NULL;
    gsize got = 0;
    uint32_t len = 0;

    if (!(conn = cocoAgentPeerConnect(agent, host, port, hello, error)))
        return NULL;
    if (!g_input_stream_read_all(conn->in, head, sizeof(head), &got, NULL,
                                 &err) ||
        got != sizeof(head)) {
        cocoErrorSet(error, COCO_ERROR_TRANSFER_IO,
                     _("the peer agent '%1$s' did not answer: %2$s"),
                     conn->address, err ? err->message : _("end of stream"));
        goto cleanup;
    }
    if (cocoPeerFrameHeader(head, COCO_PEER_ANSWER_MAX, &len, error) < 0)
        goto cleanup;
    text = g_malloc(len + 1);
    if (!g_input_stream_read_all(conn->in, text, len, &got, NULL, &err) ||
        got != len) {
        cocoErrorSet(error, COCO_ERROR_TRANSFER_IO,
                     _("the peer agent '%1$s' did not answer: %2$s"),
                     conn->address, err ? err->message : _("end of stream"));
        goto cleanup;
    }
    text[len] = '\0';
    obj = cocoProtoParseJson(text, len, COCO_PEER_ANSWER_MAX,
                             _("peer agent's answer"), error);

cleanup:
    cocoAgentPeerConnFree(conn);
    return obj;
}

/* ---- an established connection ------------------------------------------ */

static void
cocoAgentPeerConnEnd(CocoAgentPeerConn *conn, GError *err)
{
    g_autoptr(GError) owned G_GNUC_UNUSED = err;

    if (conn->closed)
        return;
    conn->func(conn, NULL, err, conn->opaque);
}

/* Deliver every whole message in the buffer. */
static void
cocoAgentPeerConnDeliver(CocoAgentPeerConn *conn)
{
    while (!conn->closed && !conn->free_pending &&
           conn->buf->len >= COCO_PHASE_MESSAGE_HEADER) {
        GError *err = NULL;
        CocoPhaseMessage msg;
        gssize whole =
            cocoPhaseMessagePeekLength(conn->buf->data, conn->buf->len, &err);

        if (whole < 0) {
            cocoAgentPeerConnEnd(conn, err);
            return;
        }
        if ((gsize)whole > conn->buf->len)
            return;
        if (cocoPhaseMessageDecode(conn->buf->data, (size_t)whole, &msg, &err) <
            0) {
            cocoAgentPeerConnEnd(conn, err);
            return;
        }
        if ((unsigned int)msg.type != COCO_PHASE_MESSAGE_HEARTBEAT)
            conn->func(conn, &msg, NULL, conn->opaque);
        if (conn->free_pending || conn->closed)
            return;
        g_byte_array_remove_range(conn->buf, 0, (guint)whole);
    }
}

static gboolean
cocoAgentPeerConnOnIn(GObject *stream, gpointer opaque)
{
    CocoAgentPeerConn *conn = opaque;
    uint8_t data[COCO_AGENT_PEER_READ];
    GError *err = NULL;
    gssize n;

    if (conn->closed)
        return G_SOURCE_REMOVE;
    n = g_pollable_input_stream_read_nonblocking(
        G_POLLABLE_INPUT_STREAM(conn->in), data, sizeof(data), NULL, &err);
    if (n < 0 && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        g_clear_error(&err);
        return G_SOURCE_CONTINUE;
    }
    conn->dispatching = true;
    if (n <= 0) {
        GError *why = NULL;

        if (n < 0 && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
            /* The socket's own deadline (the same peer_deadline) fired
             * before the liveness check: the same cause, the same words. */
            cocoErrorSet(
                &why, COCO_ERROR_PEER_TIMEOUT,
                _("the peer host '%1$s' stopped answering: nothing received for '%2$u' seconds"),
                conn->host, conn->deadline_s);
        else if (n < 0)
            cocoErrorSet(&why, COCO_ERROR_TRANSFER_IO,
                         _("cannot read from the peer host '%1$s': %2$s"),
                         conn->address, err->message);
        else
            cocoErrorSet(&why, COCO_ERROR_TRANSFER_IO,
                         _("the peer host '%1$s' closed the connection"),
                         conn->address);
        g_clear_error(&err);
        cocoAgentPeerConnEnd(conn, why);
    } else {
        conn->last_rx = g_get_monotonic_time();
        g_byte_array_append(conn->buf, data, (guint)n);
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
cocoAgentPeerConnHeartbeat(CocoAgentPeerConn *conn)
{
    g_autoptr(GBytes) hb = NULL;
    g_autoptr(GError) err = NULL;

    if (conn->closed)
        return;
    hb = cocoPhaseMessageEncodeHeartbeat(++conn->seq);
    /* A failed write is reported by the reader or the liveness check. */
    cocoAgentPeerConnSendBytes(conn, hb, &err);
}

static gboolean
cocoAgentPeerConnOnHeartbeat(gpointer opaque)
{
    cocoAgentPeerConnHeartbeat(opaque);
    return G_SOURCE_CONTINUE;
}

static gboolean
cocoAgentPeerConnOnLiveness(gpointer opaque)
{
    CocoAgentPeerConn *conn = opaque;
    gint64 silent = g_get_monotonic_time() - conn->last_rx;
    GError *err = NULL;

    if (conn->closed || silent < (gint64)conn->deadline_s * G_USEC_PER_SEC)
        return G_SOURCE_CONTINUE;
    cocoErrorSet(
        &err, COCO_ERROR_PEER_TIMEOUT,
        _("the peer host '%1$s' stopped answering: nothing received for '%2$u' seconds"),
        conn->host, conn->deadline_s);
    conn->dispatching = true;
    cocoAgentPeerConnEnd(conn, err);
    conn->dispatching = false;
    if (conn->free_pending) {
        conn->free_pending = false;
        cocoAgentPeerConnFree(conn);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

void
cocoAgentPeerConnStart(CocoAgentPeerConn *conn, GMainContext *ctx,
                       unsigned int heartbeat_s, unsigned int deadline_s,
                       CocoAgentPeerMessageFunc func, gpointer opaque)
{
    conn->func = func;
    conn->opaque = opaque;
    conn->deadline_s = deadline_s;
    conn->last_rx = g_get_monotonic_time();
    if (conn->closed || conn->src)
        return;
    conn->ctx = g_main_context_ref(ctx);
    if (conn->sock)
        g_socket_set_timeout(conn->sock, deadline_s);
    conn->src = g_pollable_input_stream_create_source(
        G_POLLABLE_INPUT_STREAM(conn->in), NULL);
    g_source_set_callback(conn->src,
                          (GSourceFunc)(void (*)(void))cocoAgentPeerConnOnIn,
                          conn, NULL);
    g_source_attach(conn->src, ctx);
    if (heartbeat_s > 0) {
        conn->heartbeat = g_timeout_source_new_seconds(heartbeat_s);
        g_source_set_callback(conn->heartbeat, cocoAgentPeerConnOnHeartbeat,
                              conn, NULL);
        g_source_attach(conn->heartbeat, ctx);
    }
    if (deadline_s > 0) {
        conn->liveness = g_timeout_source_new(500);
        g_source_set_callback(conn->liveness, cocoAgentPeerConnOnLiveness, conn,
                              NULL);
        g_source_attach(conn->liveness, ctx);
    }
    /* Bytes that arrived with the hello. */
    if (conn->buf->len)
        cocoAgentPeerConnDeliver(conn);
}

int
cocoAgentPeerConnSendBytes(CocoAgentPeerConn *conn, GBytes *bytes,
                           GError **error)
{
    gsize len;
    const void *data = g_bytes_get_data(bytes, &len);

    if (conn->closed)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_IO,
            _("the connection to the peer host '%1$s' is closed"),
            conn->address);
    return cocoAgentPeerWrite(conn->out, data, len, conn->address, error);
}

int
cocoAgentPeerConnSendMessage(CocoAgentPeerConn *conn,
                             const CocoPhaseMessage *msg, GError **error)
{
    g_autoptr(GBytes) b = NULL;

    if (!(b = cocoPhaseMessageEncode(msg, error)))
        return -1;
    return cocoAgentPeerConnSendBytes(conn, b, error);
}

const char *
cocoAgentPeerConnGetAddress(CocoAgentPeerConn *conn)
{
    return conn->address;
}

const char *
cocoAgentPeerConnGetHost(CocoAgentPeerConn *conn)
{
    return conn->host;
}

const char *
cocoAgentPeerConnGetIdentity(CocoAgentPeerConn *conn)
{
    return conn->identity;
}

const GByteArray *
cocoAgentPeerConnGetBinding(CocoAgentPeerConn *conn)
{
    return conn->binding;
}

static void
cocoAgentPeerConnStopSources(CocoAgentPeerConn *conn)
{
    GSource **srcs[] = {&conn->src, &conn->heartbeat, &conn->liveness};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(srcs); i++)
        cocoSourceClear(srcs[i]);
}

void
cocoAgentPeerConnClose(CocoAgentPeerConn *conn)
{
    if (conn->closed)
        return;
    conn->closed = true;
    cocoAgentPeerConnStopSources(conn);
    if (conn->sock)
        g_socket_shutdown(conn->sock, TRUE, TRUE, NULL);
    g_io_stream_close(conn->stream, NULL, NULL);
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
    g_clear_object(&conn->stream);
    g_clear_object(&conn->sock);
    if (conn->ctx)
        g_main_context_unref(conn->ctx);
    g_byte_array_unref(conn->buf);
    if (conn->binding)
        g_byte_array_unref(conn->binding);
    g_free(conn->address);
    g_free(conn->host);
    g_free(conn->identity);
    g_free(conn);
}
