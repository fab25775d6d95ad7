/*
 * cocoagentmetricshttp.c: the agent's OpenMetrics endpoint (libsoup 3)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentmetrics.h"
#include "agent/cocoagentmetricshttp.h"
#include "util/cocoerror.h"
#include "util/cocosource.h"

#include <libsoup/soup.h>
#include <stdbool.h>

typedef struct _CocoAgentMetricsConn CocoAgentMetricsConn;

struct _CocoAgentMetricsHttp {
    GMainContext *ctx;
    SoupServer *server;
    GSocketService *service;
    unsigned int port;
    GList *conns; /* CocoAgentMetricsConn */
    guint nconns;
    CocoAgentMetricsRenderFunc render;
    gpointer opaque;
};

/* One accepted connection, until libsoup lets its GSocketConnection go. */
struct _CocoAgentMetricsConn {
    CocoAgentMetricsHttp *h;
    GSocketConnection *conn; /* weak */
    GSource *deadline;
};

static void
cocoAgentMetricsConnFree(CocoAgentMetricsConn *c)
{
    CocoAgentMetricsHttp *h = c->h;

    h->conns = g_list_remove(h->conns, c);
    h->nconns--;
    cocoSourceClear(&c->deadline);
    g_free(c);
}

/* The connection object is gone: libsoup closed it. */
static void
cocoAgentMetricsConnGone(gpointer opaque, GObject *where)
{
    cocoAgentMetricsConnFree(opaque);
}

/* Shutting the socket down makes libsoup's pending read or write fail,
 * so that it drops the connection. */
static void
cocoAgentMetricsConnShutdown(CocoAgentMetricsConn *c)
{
    g_socket_shutdown(g_socket_connection_get_socket(c->conn), TRUE, TRUE,
                      NULL);
}

static gboolean
cocoAgentMetricsConnExpired(gpointer opaque)
{
    CocoAgentMetricsConn *c = opaque;

    g_clear_pointer(&c->deadline, g_source_unref);
    cocoAgentMetricsConnShutdown(c);
    return G_SOURCE_REMOVE;
}

static gboolean
cocoAgentMetricsOnIncoming(GSocketService *service, GSocketConnection *conn,
                           GObject *source, gpointer opaque)
{
    CocoAgentMetricsHttp *h = opaque;
    g_autoptr(GSocketAddress) local = NULL;
    g_autoptr(GSocketAddress) remote = NULL;
    g_autoptr(GError) err = NULL;
    CocoAgentMetricsConn *c;

    if (h->nconns >= COCO_AGENT_METRICS_MAX_CONNECTIONS) {
        g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
        return TRUE;
    }
    local = g_socket_connection_get_local_address(conn, NULL);
    remote = g_socket_connection_get_remote_address(conn, NULL);
    c = g_new0(CocoAgentMetricsConn, 1);
    c->h = h;
    c->conn = conn;
    c->deadline = g_timeout_source_new_seconds(COCO_AGENT_METRICS_CONNECTION_S);
    g_source_set_callback(c->deadline, cocoAgentMetricsConnExpired, c, NULL);
    g_source_attach(c->deadline, h->ctx);
    h->conns = g_list_prepend(h->conns, c);
    h->nconns++;
    g_object_weak_ref(G_OBJECT(conn), cocoAgentMetricsConnGone, c);
    /* libsoup attaches its sources to the thread-default context. */
    g_main_context_push_thread_default(h->ctx);
    if (!soup_server_accept_iostream(h->server, G_IO_STREAM(conn), local,
                                     remote, &err))
        cocoAgentMetricsConnShutdown(c);
    g_main_context_pop_thread_default(h->ctx);
    return TRUE;
}

/* After the headers, before any body: refuse what is not a plain GET. */
static void
cocoAgentMetricsOnHeaders(SoupServer *server, SoupServerMessage *msg,
                          const char *path, GHashTable *query, gpointer opaque)
{
    SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
    SoupMessageHeaders *resp = soup_server_message_get_response_headers(msg);
    SoupEncoding enc = soup_message_headers_get_encoding(req);

    /* One request per connection (libsoup closes it after the answer):
     * say so, so that no client tries to reuse it. */
    soup_message_headers_replace(resp, "Connection", "close");
    if (STRNEQ(soup_server_message_get_method(msg), SOUP_METHOD_GET)) {
        soup_message_headers_replace(resp, "Allow", "GET");
        soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                                       NULL);
    } else if (enc == SOUP_ENCODING_CHUNKED ||
               (enc == SOUP_ENCODING_CONTENT_LENGTH &&
                soup_message_headers_get_content_length(req) > 0)) {
        soup_server_message_set_status(
            msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL);
    }
}

static void
cocoAgentMetricsOnRequest(SoupServer *server, SoupServerMessage *msg,
                          const char *path, GHashTable *query, gpointer opaque)
{
    CocoAgentMetricsHttp *h = opaque;
    char *text;

    if (STRNEQ(path, "/metrics")) {
        soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, NULL);
        return;
    }
    text = h->render(h->opaque);
    soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                 "Cache-Control", "no-store");
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_server_message_set_response(msg, COCO_AGENT_METRICS_CONTENT_TYPE,
                                     SOUP_MEMORY_TAKE, text, strlen(text));
}

CocoAgentMetricsHttp *
cocoAgentMetricsHttpNew(GInetSocketAddress *addr, GMainContext *ctx,
                        CocoAgentMetricsRenderFunc render, gpointer opaque,
                        GError **error)
{
    g_autoptr(CocoAgentMetricsHttp) h = g_new0(CocoAgentMetricsHttp, 1);
    g_autoptr(GSocketAddress) bound = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *where =
        g_inet_address_to_string(g_inet_socket_address_get_address(addr));
    bool ok;

    h->ctx = g_main_context_ref(ctx);
    h->render = render;
    h->opaque = opaque;
    h->server = soup_server_new("server-header", "virtcocod", NULL);
    soup_server_add_early_handler(h->server, NULL, cocoAgentMetricsOnHeaders, h,
                                  NULL);
    soup_server_add_handler(h->server, NULL, cocoAgentMetricsOnRequest, h,
                            NULL);
    /* The service accepts on the context that is thread-default now. */
    g_main_context_push_thread_default(ctx);
    h->service = g_socket_service_new();
    g_socket_listener_set_backlog(G_SOCKET_LISTENER(h->service),
                                  COCO_AGENT_METRICS_MAX_CONNECTIONS);
    g_signal_connect(h->service, "incoming",
                     G_CALLBACK(cocoAgentMetricsOnIncoming), h);
    ok = g_socket_listener_add_address(
        G_SOCKET_LISTENER(h->service), G_SOCKET_ADDRESS(addr),
        G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &bound, &err);
    if (ok)
        g_socket_service_start(h->service);
    g_main_context_pop_thread_default(ctx);
    if (!ok) {
        cocoErrorSet(error, COCO_ERROR_SYSTEM,
                     _("cannot listen for metrics on '%1$s' port '%2$u': %3$s"),
                     where, g_inet_socket_address_get_port(addr), err->message);
        return NULL;
    }
    h->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
    return g_steal_pointer(&h);
}

void
cocoAgentMetricsHttpFree(CocoAgentMetricsHttp *h)
{
    if (!h)
        return;
    if (h->service) {
        g_socket_service_stop(h->service);
        g_socket_listener_close(G_SOCKET_LISTENER(h->service));
        g_object_unref(h->service);
    }
    /* The connections outlive the server only as closed streams. */
    while (h->conns) {
        CocoAgentMetricsConn *c = h->conns->data;

        g_object_weak_unref(G_OBJECT(c->conn), cocoAgentMetricsConnGone, c);
        cocoAgentMetricsConnShutdown(c);
        cocoAgentMetricsConnFree(c);
    }
    if (h->server) {
        soup_server_disconnect(h->server);
        g_object_unref(h->server);
    }
    if (h->ctx)
        g_main_context_unref(h->ctx);
    g_free(h);
}

unsigned int
cocoAgentMetricsHttpGetPort(CocoAgentMetricsHttp *h)
{
    return h->port;
}
