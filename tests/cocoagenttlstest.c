/*
 * cocoagenttlstest.c: the agents' mutual TLS (src/agent/cocoagenttls.c)
 * on loopback TCP, with a PKI made by tests/cocotlsgen.sh at test time
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Our two ends against each other, and against peers written with GIO or
 * GnuTLS directly that do what our code never does: no certificate, a
 * certificate of another CA, of another host, expired, TLS 1.2, no ALPN,
 * silence, one byte every 100 ms. Every refusal is asserted by its message.
 */

#include "internal.h"
#include "agent/cocoagentconfig.h"
#include "agent/cocoagenttls.h"
#include "util/cocoerror.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A test that waits longer than this for a handshake has failed: ten
 * times the deadlines the tests set. */
#define GUARD_MS 10000
#define DEADLINE_MS 500

static char *pki;

static char *
pkiPath(const char *host, const char *file)
{
    return g_build_filename(pki, host, file, NULL);
}

static void
hostConfig(CocoAgentTlsConfig *cfg, const char *host)
{
    cocoAgentTlsConfigInit(cfg);
    g_free(cfg->ca_cert);
    g_free(cfg->server_cert);
    g_free(cfg->server_key);
    g_free(cfg->client_cert);
    g_free(cfg->client_key);
    cfg->ca_cert = pkiPath(host, "cacert.pem");
    cfg->server_cert = pkiPath(host, "servercert.pem");
    cfg->server_key = pkiPath(host, "private/serverkey.pem");
    cfg->client_cert = pkiPath(host, "clientcert.pem");
    cfg->client_key = pkiPath(host, "private/clientkey.pem");
    cfg->ca_crl = pkiPath(host, "cacrl.pem");
}

static CocoAgentTlsCreds *
hostCreds(const char *host)
{
    g_autoptr(GError) err = NULL;
    CocoAgentTlsConfig cfg;
    CocoAgentTlsCreds *creds;

    hostConfig(&cfg, host);
    creds = cocoAgentTlsCredsLoad(&cfg, &err);
    g_assert_no_error(err);
    g_assert_nonnull(creds);
    cocoAgentTlsConfigClear(&cfg);
    return creds;
}

/* A connected loopback TCP pair. */
static void
tcpPair(GIOStream **client, GIOStream **server)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GSocket) lsock =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                     G_SOCKET_PROTOCOL_TCP, &err);
    g_autoptr(GInetAddress) lo =
        g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
    g_autoptr(GSocketAddress) bound = NULL;
    g_autoptr(GSocket) csock = NULL;
    g_autoptr(GSocket) ssock = NULL;

    g_assert_no_error(err);
    g_assert_true(g_socket_bind(lsock, any, TRUE, &err));
    g_assert_true(g_socket_listen(lsock, &err));
    bound = g_socket_get_local_address(lsock, &err);
    g_assert_no_error(err);
    csock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_TCP, &err);
    g_assert_no_error(err);
    g_assert_true(g_socket_connect(csock, bound, NULL, &err));
    ssock = g_socket_accept(lsock, NULL, &err);
    g_assert_no_error(err);
    *client = G_IO_STREAM(g_socket_connection_factory_create_connection(csock));
    *server = G_IO_STREAM(g_socket_connection_factory_create_connection(ssock));
}

/* One end of a handshake. */
typedef struct {
    GIOStream *tls;
    GError *error;
    char *identity;
    bool done;
} Side;

static void
sideClear(Side *s)
{
    g_clear_object(&s->tls);
    g_clear_error(&s->error);
    g_clear_pointer(&s->identity, g_free);
    s->done = false;
}

static void
onOurs(GObject *src, GAsyncResult *res, gpointer opaque)
{
    Side *s = opaque;

    s->tls = cocoAgentTlsHandshakeFinish(res, &s->identity, &s->error);
    g_assert_true((s->tls == NULL) != (s->error == NULL));
    s->done = true;
}

static void
onRaw(GObject *src, GAsyncResult *res, gpointer opaque)
{
    Side *s = opaque;

    if (g_tls_connection_handshake_finish(G_TLS_CONNECTION(src), res,
                                          &s->error))
        s->tls = G_IO_STREAM(g_object_ref(src));
    s->done = true;
}

static gboolean
onGuard(gpointer opaque)
{
    *(bool *)opaque = true;
    return G_SOURCE_REMOVE;
}

/* Run the main context until every side in @sides is done; false when
 * the guard fired first. */
static bool
waitSides(Side **sides, size_t n)
{
    bool late = false;
    guint guard = g_timeout_add(GUARD_MS, onGuard, &late);
    size_t i;

    for (;;) {
        bool all = true;

        for (i = 0; i < n; i++)
            all = all && sides[i]->done;
        if (all || late)
            break;
        g_main_context_iteration(NULL, TRUE);
    }
    if (!late)
        g_source_remove(guard);
    return !late;
}

static void
ours(CocoAgentTlsCreds *creds, GIOStream *base, CocoAgentTlsRole role,
     const char *expected, guint timeout_ms, GCancellable *cancel, Side *s)
{
    cocoAgentTlsHandshakeAsync(creds, base, role, expected, timeout_ms, cancel,
                               onOurs, s);
}

/* A GIO certificate of @host's @role ("server", "client"), key included. */
static GTlsCertificate *
rawCert(const char *host, const char *role)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *cname = g_strdup_printf("%scert.pem", role);
    g_autofree char *kname = g_strdup_printf("private/%skey.pem", role);
    g_autofree char *c = pkiPath(host, cname);
    g_autofree char *k = pkiPath(host, kname);
    GTlsCertificate *cert = g_tls_certificate_new_from_files(c, k, &err);

    g_assert_no_error(err);
    return cert;
}

static gboolean
acceptAll(GTlsConnection *conn, GTlsCertificate *cert,
          GTlsCertificateFlags errors, gpointer opaque)
{
    return TRUE;
}

/* A client that is not ours: any certificate (or none), trusts anything,
 * ALPN only when @alpn. */
static void
rawClient(GIOStream *base, GTlsCertificate *cert, bool alpn, Side *s)
{
    static const char *const protos[] = {COCO_AGENT_TLS_ALPN, NULL};
    g_autoptr(GError) err = NULL;
    g_autoptr(GSocketConnectable) id = g_network_address_new("hostB", 0);
    g_autoptr(GIOStream) tls = g_tls_client_connection_new(base, id, &err);

    g_assert_no_error(err);
    if (cert)
        g_tls_connection_set_certificate(G_TLS_CONNECTION(tls), cert);
    if (alpn)
        g_tls_connection_set_advertised_protocols(G_TLS_CONNECTION(tls),
                                                  protos);
    g_signal_connect(tls, "accept-certificate", G_CALLBACK(acceptAll), NULL);
    g_tls_connection_handshake_async(G_TLS_CONNECTION(tls), G_PRIORITY_DEFAULT,
                                     NULL, onRaw, s);
}

/* A server that is not ours, presenting @cert and asking for nothing. */
static void
rawServer(GIOStream *base, GTlsCertificate *cert, Side *s)
{
    static const char *const protos[] = {COCO_AGENT_TLS_ALPN, NULL};
    g_autoptr(GError) err = NULL;
    g_autoptr(GIOStream) tls = g_tls_server_connection_new(base, cert, &err);

    g_assert_no_error(err);
    g_tls_connection_set_advertised_protocols(G_TLS_CONNECTION(tls), protos);
    g_tls_connection_handshake_async(G_TLS_CONNECTION(tls), G_PRIORITY_DEFAULT,
                                     NULL, onRaw, s);
}

static void
assertMessage(const GError *err, int code, const char *part)
{
    g_assert_nonnull(err);
    if (!strstr(err->message, part))
        g_error("message '%s' lacks '%s'", err->message, part);
    g_assert_error(err, COCO_ERROR, code);
    /* Every refusal names the peer's address. */
    if (!strstr(err->message, "'127.0.0.1:"))
        g_error("message '%s' does not name the peer", err->message);
}

/* Our client of @chost expecting @expected against our server of @shost. */
static void
mutual(const char *chost, const char *shost, const char *expected, Side *c,
       Side *s)
{
    g_autoptr(CocoAgentTlsCreds) cc = hostCreds(chost);
    g_autoptr(CocoAgentTlsCreds) sc = hostCreds(shost);
    g_autoptr(GIOStream) cbase = NULL;
    g_autoptr(GIOStream) sbase = NULL;
    Side *both[] = {c, s};

    tcpPair(&cbase, &sbase);
    ours(sc, sbase, COCO_AGENT_TLS_SERVER, NULL, GUARD_MS / 2, NULL, s);
    ours(cc, cbase, COCO_AGENT_TLS_CLIENT, expected, GUARD_MS / 2, NULL, c);
    g_assert_true(waitSides(both, 2));
}

static void
testCredsLoad(void)
{
    g_autoptr(CocoAgentTlsCreds) a = hostCreds("hostA");
    g_autoptr(CocoAgentTlsCreds) b = hostCreds("hostB");
    g_autoptr(CocoAgentTlsCreds) c = hostCreds("cnonly");

    g_assert_cmpstr(cocoAgentTlsCredsGetIdentity(a), ==, "hostA, 10.97.0.1");
    g_assert_cmpstr(cocoAgentTlsCredsGetIdentity(b), ==, "hostB, 10.97.0.2");
    g_assert_cmpstr(cocoAgentTlsCredsGetIdentity(c), ==, "CN=hostC");
    g_assert_true(cocoAgentTlsCredsRef(a) == a);
    cocoAgentTlsCredsUnref(a);
}

/* Load @host's files with @key set to @path (NULL: unchanged); the load
 * must fail with a message holding @part and naming the key. */
static void
credsRefused(const char *host, const char *key, const char *path,
             const char *part)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoAgentTlsCreds) creds = NULL;
    g_autofree char *quoted = g_strdup_printf("'%s'", key);
    CocoAgentTlsConfig cfg;
    char **field = NULL;

    hostConfig(&cfg, host);
    if (STREQ(key, "tls_ca_cert"))
        field = &cfg.ca_cert;
    else if (STREQ(key, "tls_server_cert"))
        field = &cfg.server_cert;
    else if (STREQ(key, "tls_server_key"))
        field = &cfg.server_key;
    else if (STREQ(key, "tls_client_cert"))
        field = &cfg.client_cert;
    else if (STREQ(key, "tls_ca_crl"))
        field = &cfg.ca_crl;
    else
        field = &cfg.client_key;
    if (path) {
        g_free(*field);
        *field = g_strdup(path);
    }
    creds = cocoAgentTlsCredsLoad(&cfg, &err);
    g_assert_null(creds);
    g_assert_nonnull(err);
    if (!strstr(err->message, part) || !strstr(err->message, quoted) ||
        !strstr(err->message, *field))
        g_error("message '%s' lacks '%s', %s or the file", err->message, part,
                quoted);
    cocoAgentTlsConfigClear(&cfg);
}

static void
testCredsRefused(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *tmp = g_dir_make_tmp("cocotlscreds-XXXXXX", &err);
    g_autofree char *open = g_build_filename(tmp, "serverkey.pem", NULL);
    g_autofree char *text = g_build_filename(tmp, "ca.txt", NULL);
    g_autofree char *bundle = g_build_filename(tmp, "withkey.pem", NULL);
    g_autofree char *key = pkiPath("hostB", "private/serverkey.pem");
    g_autofree char *data = NULL;
    g_autofree char *bcli = pkiPath("hostB", "clientcert.pem");
    g_autofree char *bclikey = pkiPath("hostB", "private/clientkey.pem");
    g_autofree char *bsrv = pkiPath("hostB", "servercert.pem");
    g_autofree char *other = pkiPath("otherca", "servercert.pem");
    g_autofree char *expired = pkiPath("expired", "servercert.pem");
    g_autofree char *notyet = pkiPath("notyet", "clientcert.pem");
    g_autofree char *missing = pkiPath("hostB", "nonexistent.pem");
    g_autofree char *crl2 = g_build_filename(pki, "ca2", "cacrl.pem", NULL);
    g_autofree char *oldcrl = g_build_filename(pki, "ca", "oldcrl.pem", NULL);
    gsize len;

    g_assert_no_error(err);
    g_assert_true(g_file_get_contents(key, &data, &len, NULL));
    g_assert_true(g_file_set_contents(open, data, (gssize)len, NULL));
    g_assert_cmpint(chmod(open, 0644), ==, 0);
    g_assert_true(g_file_set_contents(text, "not a certificate\n", -1, NULL));
    /* A certificate file with the key in it. */
    {
        g_autofree char *cert = NULL;
        g_autofree char *both = NULL;

        g_assert_true(g_file_get_contents(bsrv, &cert, NULL, NULL));
        both = g_strconcat(cert, data, NULL);
        g_assert_true(g_file_set_contents(bundle, both, -1, NULL));
    }

    credsRefused("hostB", "tls_ca_cert", missing, "cannot open");
    credsRefused("hostB", "tls_ca_cert", text, "holds no PEM certificate");
    credsRefused("hostB", "tls_ca_cert", tmp, "is not a regular file");
    credsRefused("hostB", "tls_ca_cert", bsrv, "is not a CA certificate");
    credsRefused("hostB", "tls_server_key", open,
                 "is accessible to every user (mode '0644')");
    credsRefused("hostB", "tls_server_cert", expired,
                 "expired on '2021-01-01 00:00:00 UTC'");
    credsRefused("hostB", "tls_client_cert", notyet,
                 "is not valid before '2099-01-01 00:00:00 UTC'");
    credsRefused("hostB", "tls_server_cert", other,
                 "is not issued by the CA in");
    credsRefused("hostB", "tls_server_key", bclikey,
                 "does not belong to the certificate");
    /* A client certificate where a server certificate belongs. */
    credsRefused("hostB", "tls_server_cert", bcli,
                 "is not for TLS 'server' use");
    credsRefused("hostB", "tls_client_key", "", "names no file");
    credsRefused(
        "hostB", "tls_server_cert", bundle,
        "holds a private key: keep it in the file of 'tls_server_key' only");
    credsRefused("revoked", "tls_server_cert", NULL,
                 "is revoked by the list in");
    credsRefused("hostB", "tls_ca_crl", crl2,
                 "is not issued by the CA in the key 'tls_ca_cert'");
    credsRefused("hostB", "tls_ca_crl", oldcrl,
                 "is out of date since '2021-01-01 00:00:00 UTC'");
    credsRefused("hostB", "tls_ca_crl", text,
                 "holds no PEM certificate revocation list");
    credsRefused("hostB", "tls_ca_crl", missing, "cannot open");
    credsRefused(
        "weak", "tls_server_cert", NULL,
        "has a 'EC/ECDSA' key of '224' bits, which TLS 1.3 cannot use");

    unlink(open);
    unlink(text);
    unlink(bundle);
    rmdir(tmp);
}

static void
testMutual(void)
{
    Side c = {0}, s = {0};
    g_autoptr(GError) err = NULL;
    char buf[5] = "";
    gsize got = 0;

    mutual("hostA", "hostB", "hostB", &c, &s);
    g_assert_no_error(s.error);
    g_assert_no_error(c.error);
    g_assert_cmpstr(c.identity, ==, "hostB, 10.97.0.2");
    g_assert_cmpstr(s.identity, ==, "hostA, 10.97.0.1");
    g_assert_cmpint(
        g_tls_connection_get_protocol_version(G_TLS_CONNECTION(c.tls)), ==,
        G_TLS_PROTOCOL_VERSION_TLS_1_3);
    g_assert_cmpstr(
        g_tls_connection_get_negotiated_protocol(G_TLS_CONNECTION(s.tls)), ==,
        COCO_AGENT_TLS_ALPN);
    /* The destination checks the source's names. */
    g_assert_cmpint(cocoAgentTlsPeerCheck(s.tls, "hostA", &err), ==, 0);
    g_assert_cmpint(cocoAgentTlsPeerCheck(s.tls, "10.97.0.1", &err), ==, 0);
    g_assert_cmpint(cocoAgentTlsPeerCheck(c.tls, "hostB", &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(cocoAgentTlsPeerCheck(s.tls, "hostC", &err), ==, -1);
    assertMessage(
        err, COCO_ERROR_ACCESS_DENIED,
        "presented a valid certificate for 'hostA, 10.97.0.1', not for 'hostC'");
    g_clear_error(&err);
    /* Data flows both ways. */
    g_assert_true(g_output_stream_write_all(
        g_io_stream_get_output_stream(c.tls), "ping", 4, NULL, NULL, &err));
    g_assert_true(g_input_stream_read_all(g_io_stream_get_input_stream(s.tls),
                                          buf, 4, &got, NULL, &err));
    g_assert_no_error(err);
    g_assert_cmpstr(buf, ==, "ping");
    sideClear(&c);
    sideClear(&s);

    /* The server's iPAddress, as a migration URI may name it. */
    mutual("hostA", "hostB", "10.97.0.2", &c, &s);
    g_assert_no_error(c.error);
    g_assert_no_error(s.error);
    sideClear(&c);
    sideClear(&s);

    /* A client certificate with only a CN (libvirt's client template). */
    mutual("cnonly", "hostB", "hostB", &c, &s);
    g_assert_no_error(c.error);
    g_assert_no_error(s.error);
    g_assert_cmpstr(s.identity, ==, "CN=hostC");
    g_assert_cmpint(cocoAgentTlsPeerCheck(s.tls, "hostC", &err), ==, 0);
    g_assert_cmpint(cocoAgentTlsPeerCheck(s.tls, "hostA", &err), ==, -1);
    assertMessage(err, COCO_ERROR_ACCESS_DENIED,
                  "a valid certificate for 'CN=hostC', not for 'hostA'");
    sideClear(&c);
    sideClear(&s);
}

/* The source connects to the host it migrates to, and finds another. */
static void
testWrongHost(void)
{
    Side c = {0}, s = {0};

    mutual("hostA", "hostB", "hostA", &c, &s);
    g_assert_null(c.tls);
    assertMessage(
        c.error, COCO_ERROR_ACCESS_DENIED,
        "presented a valid certificate for 'hostB, 10.97.0.2', not for 'hostA'");
    g_assert_nonnull(s.error);
    sideClear(&c);
    sideClear(&s);

    mutual("hostA", "hostB", "10.97.0.9", &c, &s);
    assertMessage(c.error, COCO_ERROR_ACCESS_DENIED, "not for '10.97.0.9'");
    sideClear(&c);
    sideClear(&s);
}

/* Our server against a client that is not ours. */
static void
serverRefuses(GTlsCertificate *cert, bool alpn, int code, const char *part)
{
    g_autoptr(CocoAgentTlsCreds) sc = hostCreds("hostB");
    g_autoptr(GIOStream) cbase = NULL;
    g_autoptr(GIOStream) sbase = NULL;
    Side c = {0}, s = {0};
    Side *both[] = {&c, &s};

    tcpPair(&cbase, &sbase);
    ours(sc, sbase, COCO_AGENT_TLS_SERVER, NULL, GUARD_MS / 2, NULL, &s);
    rawClient(cbase, cert, alpn, &c);
    g_assert_true(waitSides(both, 2));
    g_assert_null(s.tls);
    assertMessage(s.error, code, part);
    sideClear(&c);
    sideClear(&s);
}

/* Our client against a server that is not ours. */
static void
clientRefuses(GTlsCertificate *cert, int code, const char *part)
{
    g_autoptr(CocoAgentTlsCreds) cc = hostCreds("hostA");
    g_autoptr(GIOStream) cbase = NULL;
    g_autoptr(GIOStream) sbase = NULL;
    Side c = {0}, s = {0};
    Side *both[] = {&c, &s};

    tcpPair(&cbase, &sbase);
    rawServer(sbase, cert, &s);
    ours(cc, cbase, COCO_AGENT_TLS_CLIENT, "hostB", GUARD_MS / 2, NULL, &c);
    g_assert_true(waitSides(both, 2));
    g_assert_null(c.tls);
    assertMessage(c.error, code, part);
    sideClear(&c);
    sideClear(&s);
}

static void
testNoCertificate(void)
{
    serverRefuses(
        NULL, true, COCO_ERROR_ACCESS_DENIED,
        "presented no certificate: a client certificate of the CA in");
}

static void
testOtherCa(void)
{
    g_autoptr(GTlsCertificate) cli = rawCert("otherca", "client");
    g_autoptr(GTlsCertificate) srv = rawCert("otherca", "server");

    serverRefuses(
        cli, true, COCO_ERROR_ACCESS_DENIED,
        "presented a certificate ('hostB, 10.97.0.2') that is not issued by the CA in");
    clientRefuses(
        srv, COCO_ERROR_ACCESS_DENIED,
        "presented a certificate ('hostB, 10.97.0.2') that is not issued by the CA in");
}

static void
testExpired(void)
{
    g_autoptr(GTlsCertificate) cli = rawCert("expired", "client");
    g_autoptr(GTlsCertificate) srv = rawCert("expired", "server");
    g_autoptr(GTlsCertificate) early = rawCert("notyet", "server");

    serverRefuses(cli, true, COCO_ERROR_ACCESS_DENIED,
                  "that expired on '2021-01-01 00:00:00 UTC'");
    clientRefuses(srv, COCO_ERROR_ACCESS_DENIED,
                  "that expired on '2021-01-01 00:00:00 UTC'");
    clientRefuses(early, COCO_ERROR_ACCESS_DENIED,
                  "that is not valid before '2099-01-01 00:00:00 UTC'");
}

static void
testRevoked(void)
{
    g_autoptr(GTlsCertificate) cli = rawCert("revoked", "client");
    g_autoptr(GTlsCertificate) srv = rawCert("revoked", "server");
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoAgentTlsCreds) nocrl = NULL;
    g_autoptr(GIOStream) cbase = NULL;
    g_autoptr(GIOStream) sbase = NULL;
    CocoAgentTlsConfig cfg;
    Side c = {0}, s = {0};
    Side *both[] = {&c, &s};

    serverRefuses(
        cli, true, COCO_ERROR_ACCESS_DENIED,
        "presented a revoked certificate ('hostB, 10.97.0.2'): the list in");
    clientRefuses(
        srv, COCO_ERROR_ACCESS_DENIED,
        "presented a revoked certificate ('hostB, 10.97.0.2'): the list in");

    /* Without the list the same certificate passes: the list decided. */
    hostConfig(&cfg, "hostB");
    g_clear_pointer(&cfg.ca_crl, g_free);
    nocrl = cocoAgentTlsCredsLoad(&cfg, &err);
    g_assert_no_error(err);
    cocoAgentTlsConfigClear(&cfg);
    tcpPair(&cbase, &sbase);
    ours(nocrl, sbase, COCO_AGENT_TLS_SERVER, NULL, GUARD_MS / 2, NULL, &s);
    rawClient(cbase, cli, true, &c);
    g_assert_true(waitSides(both, 2));
    g_assert_no_error(s.error);
    g_assert_nonnull(s.tls);
    sideClear(&c);
    sideClear(&s);
}

/* A good certificate, but not our protocol. */
static void
testNoAlpn(void)
{
    g_autoptr(GTlsCertificate) cli = rawCert("hostA", "client");

    serverRefuses(cli, false, COCO_ERROR_TRANSFER_PROTOCOL,
                  "did not negotiate the protocol 'virtcocod/1'");
}

/* The client learns that the server refused it (TLS 1.3 would let the
 * client's handshake end before the server checked its certificate). */
static void
testClientLearnsRefusal(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *tmp = g_dir_make_tmp("cocotlsbundle-XXXXXX", &err);
    g_autofree char *bundle = g_build_filename(tmp, "cacert.pem", NULL);
    g_autofree char *ca1 = NULL;
    g_autofree char *ca2 = NULL;
    g_autofree char *both = NULL;
    g_autoptr(CocoAgentTlsCreds) cc = NULL;
    g_autoptr(CocoAgentTlsCreds) sc = hostCreds("hostB");
    g_autoptr(GIOStream) cbase = NULL;
    g_autoptr(GIOStream) sbase = NULL;
    g_autofree char *ca1path = g_build_filename(pki, "ca", "cacert.pem", NULL);
    g_autofree char *ca2path = g_build_filename(pki, "ca2", "cacert.pem", NULL);
    CocoAgentTlsConfig cfg;
    Side c = {0}, s = {0};
    Side *sides[] = {&c, &s};

    /* A client that trusts both CAs and holds a certificate of the
     * second, which the server does not trust. */
    g_assert_true(g_file_get_contents(ca1path, &ca1, NULL, NULL));
    g_assert_true(g_file_get_contents(ca2path, &ca2, NULL, NULL));
    both = g_strconcat(ca1, ca2, NULL);
    g_assert_true(g_file_set_contents(bundle, both, -1, NULL));
    hostConfig(&cfg, "otherca");
    g_free(cfg.ca_cert);
    cfg.ca_cert = g_strdup(bundle);
    cc = cocoAgentTlsCredsLoad(&cfg, &err);
    g_assert_no_error(err);
    cocoAgentTlsConfigClear(&cfg);

    tcpPair(&cbase, &sbase);
    ours(sc, sbase, COCO_AGENT_TLS_SERVER, NULL, GUARD_MS / 2, NULL, &s);
    ours(cc, cbase, COCO_AGENT_TLS_CLIENT, "hostB", GUARD_MS / 2, NULL, &c);
    g_assert_true(waitSides(sides, 2));
    assertMessage(s.error, COCO_ERROR_ACCESS_DENIED,
                  "that is not issued by the CA in");
    g_assert_null(c.tls);
    assertMessage(
        c.error, COCO_ERROR_ACCESS_DENIED,
        "did not accept the TLS session (it may refuse this host's certificate 'hostB, 10.97.0.2')");
    sideClear(&c);
    sideClear(&s);
    unlink(bundle);
    rmdir(tmp);
}

/* A peer that writes one byte every 100 ms on @sock until told to stop
 * (or the connection is gone): the start of a TLS handshake record that
 * announces 512 bytes, so that it is never complete. */
typedef struct {
    GSocket *sock;
    gint stop;
    gint sent;
    guint8 first; /* 0x16: handshake record */
} Dribbler;

static gpointer
dribble(gpointer opaque)
{
    Dribbler *d = opaque;
    guint8 rec[5 + 512];
    size_t i;

    memset(rec, 0, sizeof(rec));
    rec[0] = d->first;
    rec[1] = 3;
    rec[2] = 3;
    rec[3] = 2;
    rec[4] = 0;
    rec[5] = 1; /* client hello */
    for (i = 0; i < sizeof(rec) && !g_atomic_int_get(&d->stop); i++) {
        if (send(g_socket_get_fd(d->sock), rec + i, 1, MSG_NOSIGNAL) != 1)
            break;
        g_atomic_int_inc(&d->sent);
        g_usleep(100 * 1000);
    }
    return NULL;
}

static void
deadline(CocoAgentTlsRole role)
{
    g_autoptr(CocoAgentTlsCreds) creds = hostCreds("hostB");
    g_autoptr(GIOStream) cbase = NULL;
    g_autoptr(GIOStream) sbase = NULL;
    GIOStream *mine;
    GIOStream *peer;
    Dribbler d = {0};
    GThread *th;
    Side s = {0};
    Side *one[] = {&s};

    tcpPair(&cbase, &sbase);
    mine = role == COCO_AGENT_TLS_SERVER ? sbase : cbase;
    peer = role == COCO_AGENT_TLS_SERVER ? cbase : sbase;
    d.sock = g_socket_connection_get_socket(G_SOCKET_CONNECTION(peer));
    d.first = 0x16;
    th = g_thread_new("dribble", dribble, &d);
    ours(creds, mine, role, "hostA", DEADLINE_MS, NULL, &s);
    /* The dribbler needs 52 s for its record; the guard is 10 s. */
    g_assert_true(waitSides(one, 1));
    g_atomic_int_set(&d.stop, 1);
    g_thread_join(th);
    g_assert_cmpint(g_atomic_int_get(&d.sent), >=, 1);
    g_assert_null(s.tls);
    assertMessage(s.error, COCO_ERROR_TRANSFER_IO,
                  "did not end within its deadline of '500' ms");
    sideClear(&s);
}

static void
testDeadlineDribble(void)
{
    deadline(COCO_AGENT_TLS_SERVER);
    deadline(COCO_AGENT_TLS_CLIENT);
}

/* A server that accepts the connection and never answers. */
static void
testDeadlineSilent(void)
{
    g_autoptr(CocoAgentTlsCreds) creds = hostCreds("hostA");
    g_autoptr(GIOStream) cbase = NULL;
    g_autoptr(GIOStream) sbase = NULL;
    Side c = {0};
    Side *one[] = {&c};

    tcpPair(&cbase, &sbase);
    ours(creds, cbase, COCO_AGENT_TLS_CLIENT, "hostB", DEADLINE_MS, NULL, &c);
    g_assert_true(waitSides(one, 1));
    assertMessage(c.error, COCO_ERROR_TRANSFER_IO,
                  "did not end within its deadline of '500' ms");
    sideClear(&c);
}

static gboolean
cancelLater(gpointer opaque)
{
    g_cancellable_cancel(opaque);
    return G_SOURCE_REMOVE;
}

static void
testCancel(void)
{
    g_autoptr(CocoAgentTlsCreds) creds = hostCreds("hostA");
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(GIOStream) cbase = NULL;
    g_autoptr(GIOStream) sbase = NULL;
    Side c = {0};
    Side *one[] = {&c};

    tcpPair(&cbase, &sbase);
    ours(creds, cbase, COCO_AGENT_TLS_CLIENT, "hostB", GUARD_MS / 2, cancel,
         &c);
    g_timeout_add(50, cancelLater, cancel);
    g_assert_true(waitSides(one, 1));
    assertMessage(c.error, COCO_ERROR_MIGRATION_ABORTED, "was cancelled");
    sideClear(&c);
}

/* Garbage where a ServerHello belongs. */
static void
testNotTls(void)
{
    g_autoptr(CocoAgentTlsCreds) creds = hostCreds("hostA");
    g_autoptr(GIOStream) cbase = NULL;
    g_autoptr(GIOStream) sbase = NULL;
    g_autoptr(GError) err = NULL;
    Side c = {0};
    Side *one[] = {&c};
    static const char junk[] = "HTTP/1.0 400 Bad Request\r\n\r\n";

    tcpPair(&cbase, &sbase);
    g_assert_true(
        g_output_stream_write_all(g_io_stream_get_output_stream(sbase), junk,
                                  sizeof(junk) - 1, NULL, NULL, &err));
    ours(creds, cbase, COCO_AGENT_TLS_CLIENT, "hostB", GUARD_MS / 2, NULL, &c);
    g_assert_true(waitSides(one, 1));
    g_assert_null(c.tls);
    assertMessage(c.error, COCO_ERROR_TRANSFER_IO,
                  "the TLS handshake with the peer agent at");
    sideClear(&c);
}

/* A TLS 1.2 client written with GnuTLS directly, on its own thread. */
typedef struct {
    int fd;
    int rc;
} Tls12;

static gpointer
tls12Client(gpointer opaque)
{
    Tls12 *t = opaque;
    g_autofree char *cert = pkiPath("hostA", "clientcert.pem");
    g_autofree char *key = pkiPath("hostA", "private/clientkey.pem");
    gnutls_certificate_credentials_t cred;
    gnutls_session_t sess;

    g_assert_cmpint(gnutls_certificate_allocate_credentials(&cred), ==, 0);
    g_assert_cmpint(gnutls_certificate_set_x509_key_file(cred, cert, key,
                                                         GNUTLS_X509_FMT_PEM),
                    ==, 0);
    g_assert_cmpint(gnutls_init(&sess, GNUTLS_CLIENT), ==, 0);
    g_assert_cmpint(
        gnutls_priority_set_direct(sess, "NORMAL:-VERS-ALL:+VERS-TLS1.2", NULL),
        ==, 0);
    gnutls_credentials_set(sess, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_transport_set_int(sess, t->fd);
    gnutls_handshake_set_timeout(sess, GUARD_MS);
    do {
        t->rc = gnutls_handshake(sess);
    } while (t->rc < 0 && !gnutls_error_is_fatal(t->rc));
    gnutls_deinit(sess);
    gnutls_certificate_free_credentials(cred);
    return NULL;
}

static void
testTls12(void)
{
    g_autoptr(CocoAgentTlsCreds) creds = hostCreds("hostB");
    g_autoptr(GIOStream) cbase = NULL;
    g_autoptr(GIOStream) sbase = NULL;
    Tls12 t = {0};
    GThread *th;
    Side s = {0};
    Side *one[] = {&s};

    tcpPair(&cbase, &sbase);
    t.fd = g_socket_get_fd(
        g_socket_connection_get_socket(G_SOCKET_CONNECTION(cbase)));
    th = g_thread_new("tls12", tls12Client, &t);
    ours(creds, sbase, COCO_AGENT_TLS_SERVER, NULL, GUARD_MS / 2, NULL, &s);
    g_assert_true(waitSides(one, 1));
    g_thread_join(th);
    g_assert_cmpint(t.rc, <, 0);
    g_assert_null(s.tls);
    assertMessage(s.error, COCO_ERROR_TRANSFER_IO,
                  "the TLS handshake with the peer agent at");
    sideClear(&s);
}

static void
testChannelBinding(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GByteArray) c1 = NULL;
    g_autoptr(GByteArray) s1 = NULL;
    g_autoptr(GByteArray) c2 = NULL;
    g_autoptr(GByteArray) s2 = NULL;
    g_autoptr(GIOStream) a = NULL;
    g_autoptr(GIOStream) b = NULL;
    Side c = {0}, s = {0};

    mutual("hostA", "hostB", "hostB", &c, &s);
    g_assert_no_error(c.error);
    g_assert_cmpint(cocoAgentTlsChannelBinding(c.tls, &c1, &err), ==, 0);
    g_assert_cmpint(cocoAgentTlsChannelBinding(s.tls, &s1, &err), ==, 0);
    g_assert_no_error(err);
    sideClear(&c);
    sideClear(&s);
    mutual("hostA", "hostB", "hostB", &c, &s);
    g_assert_no_error(c.error);
    g_assert_cmpint(cocoAgentTlsChannelBinding(c.tls, &c2, &err), ==, 0);
    g_assert_cmpint(cocoAgentTlsChannelBinding(s.tls, &s2, &err), ==, 0);
    sideClear(&c);
    sideClear(&s);

    g_assert_cmpuint(c1->len, ==, COCO_AGENT_TLS_BINDING_SIZE);
    g_assert_cmpmem(c1->data, c1->len, s1->data, s1->len);
    g_assert_cmpmem(c2->data, c2->len, s2->data, s2->len);
    g_assert_true(memcmp(c1->data, c2->data, c1->len) != 0);

    /* A plain stream has none. */
    tcpPair(&a, &b);
    g_assert_cmpint(cocoAgentTlsChannelBinding(a, &c2, &err), ==, -1);
    assertMessage(err, COCO_ERROR_INVALID_ARG, "is not a TLS session");
}

static void
testStreamToken(void)
{
    g_autoptr(GByteArray) b1 = g_byte_array_new();
    g_autoptr(GByteArray) b2 = g_byte_array_new();
    g_autoptr(GByteArray) shorter = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    guint8 t[4][COCO_AGENT_TLS_TOKEN_SIZE];
    guint8 again[COCO_AGENT_TLS_TOKEN_SIZE];
    guint8 k1[COCO_AGENT_TLS_BINDING_SIZE], k2[COCO_AGENT_TLS_BINDING_SIZE];
    size_t i, j;

    for (i = 0; i < sizeof(k1); i++) {
        k1[i] = (guint8)i;
        k2[i] = (guint8)(i + 1);
    }
    g_byte_array_append(b1, k1, sizeof(k1));
    g_byte_array_append(b2, k2, sizeof(k2));
    g_byte_array_append(shorter, k1, sizeof(k1) - 1);

    g_assert_cmpint(cocoAgentTlsStreamToken(b1, 7, 0, t[0]), ==, 0);
    g_assert_cmpint(cocoAgentTlsStreamToken(b1, 7, 1, t[1]), ==, 0);
    g_assert_cmpint(cocoAgentTlsStreamToken(b1, 8, 0, t[2]), ==, 0);
    g_assert_cmpint(cocoAgentTlsStreamToken(b2, 7, 0, t[3]), ==, 0);
    for (i = 0; i < 4; i++) {
        for (j = i + 1; j < 4; j++)
            g_assert_true(memcmp(t[i], t[j], sizeof(t[i])) != 0);
    }
    g_assert_cmpint(cocoAgentTlsStreamToken(b1, 7, 0, again), ==, 0);
    g_assert_cmpmem(again, sizeof(again), t[0], sizeof(t[0]));
    g_assert_cmpint(cocoAgentTlsStreamToken(shorter, 7, 0, again), ==, -1);
    g_assert_cmpint(cocoAgentTlsStreamToken(NULL, 7, 0, again), ==, -1);

    g_assert_cmpint(
        cocoAgentTlsStreamTokenCheck(b1, 7, 1, t[1], "127.0.0.1:1", &err), ==,
        0);
    g_assert_no_error(err);
    /* Stream 0's hello replayed as stream 1, and into session 8. */
    g_assert_cmpint(
        cocoAgentTlsStreamTokenCheck(b1, 7, 1, t[0], "127.0.0.1:1", &err), ==,
        -1);
    assertMessage(
        err, COCO_ERROR_ACCESS_DENIED,
        "data stream '1' from '127.0.0.1:1' carries a token of another session than '0000000000000007'");
    g_clear_error(&err);
    g_assert_cmpint(
        cocoAgentTlsStreamTokenCheck(b1, 8, 0, t[0], "127.0.0.1:2", &err), ==,
        -1);
    assertMessage(err, COCO_ERROR_ACCESS_DENIED, "(spliced or replayed)");
    g_clear_error(&err);
    /* The same stream of another control connection. */
    g_assert_cmpint(
        cocoAgentTlsStreamTokenCheck(b2, 7, 0, t[0], "127.0.0.1:3", &err), ==,
        -1);
    assertMessage(err, COCO_ERROR_ACCESS_DENIED, "(spliced or replayed)");
}

static void
testConfig(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *tmp = g_dir_make_tmp("cocotlsconf-XXXXXX", &err);
    g_autofree char *path = g_build_filename(tmp, "virtcocod.conf", NULL);
    CocoAgentConfig cfg;

    cocoAgentConfigInit(&cfg);
    g_assert_cmpstr(cfg.tls.ca_cert, ==, "/etc/pki/CA/cacert.pem");
    g_assert_cmpstr(cfg.tls.server_cert, ==, "/etc/pki/libvirt/servercert.pem");
    g_assert_cmpstr(cfg.tls.server_key, ==,
                    "/etc/pki/libvirt/private/serverkey.pem");
    g_assert_cmpstr(cfg.tls.client_cert, ==, "/etc/pki/libvirt/clientcert.pem");
    g_assert_cmpstr(cfg.tls.client_key, ==,
                    "/etc/pki/libvirt/private/clientkey.pem");
    g_assert_cmpuint(cfg.tls.handshake_timeout, ==, 10);
    g_assert_null(cfg.tls.ca_crl);
    g_assert_cmpint(cocoAgentConfigValidate(&cfg, &err), ==, 0);
    g_assert_true(g_file_set_contents(
        path,
        "[virtcocod]\ntls_ca_cert = /etc/pki/qemu/ca-cert.pem\n"
        "tls_server_cert=/etc/pki/qemu/server-cert.pem\n"
        "tls_server_key=/etc/pki/qemu/server-key.pem\n"
        "tls_client_cert=/etc/pki/qemu/client-cert.pem\n"
        "tls_client_key=/etc/pki/qemu/client-key.pem\nhandshake_timeout=3\n"
        "tls_ca_crl=/etc/pki/qemu/ca-crl.pem\n",
        -1, NULL));
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, true, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpstr(cfg.tls.ca_cert, ==, "/etc/pki/qemu/ca-cert.pem");
    g_assert_cmpstr(cfg.tls.server_cert, ==, "/etc/pki/qemu/server-cert.pem");
    g_assert_cmpstr(cfg.tls.server_key, ==, "/etc/pki/qemu/server-key.pem");
    g_assert_cmpstr(cfg.tls.client_cert, ==, "/etc/pki/qemu/client-cert.pem");
    g_assert_cmpstr(cfg.tls.client_key, ==, "/etc/pki/qemu/client-key.pem");
    g_assert_cmpuint(cfg.tls.handshake_timeout, ==, 3);
    g_assert_cmpstr(cfg.tls.ca_crl, ==, "/etc/pki/qemu/ca-crl.pem");
    g_assert_cmpint(cocoAgentConfigValidate(&cfg, &err), ==, 0);
    {
        CocoAgentConfig copy;

        cocoAgentConfigCopy(&copy, &cfg);
        g_assert_cmpstr(copy.tls.client_key, ==, cfg.tls.client_key);
        g_assert_true(copy.tls.client_key != cfg.tls.client_key);
        cocoAgentConfigClear(&copy);
    }

    g_assert_true(g_file_set_contents(
        path, "[virtcocod]\nhandshake_timeout=0\n", -1, NULL));
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, true, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "'handshake_timeout'"));
    g_clear_error(&err);
    g_assert_true(
        g_file_set_contents(path, "[virtcocod]\ntls_client_key=\n", -1, NULL));
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, true, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "'tls_client_key'"));
    g_clear_error(&err);
    g_assert_true(g_file_set_contents(
        path, "[virtcocod]\ntls_ca_cert=cacert.pem\n", -1, NULL));
    g_assert_cmpint(cocoAgentConfigLoad(&cfg, path, true, &err), ==, 0);
    g_assert_cmpint(cocoAgentConfigValidate(&cfg, &err), ==, -1);
    g_assert_nonnull(
        strstr(err->message,
               "the path 'cacert.pem' of key 'tls_ca_cert' must be absolute"));
    cocoAgentConfigClear(&cfg);
    unlink(path);
    rmdir(tmp);
}

static void
makePki(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *script =
        g_build_filename(g_getenv("abs_srcdir") ? g_getenv("abs_srcdir") : ".",
                         "cocotlsgen.sh", NULL);
    g_autofree char *out = NULL;
    g_autofree char *errout = NULL;
    const char *argv[] = {"/bin/sh", script, NULL, NULL};
    int status = 0;

    pki = g_dir_make_tmp("cocotlspki-XXXXXX", &err);
    g_assert_no_error(err);
    argv[2] = pki;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                      &out, &errout, &status, &err) ||
        !g_spawn_check_wait_status(status, NULL))
        g_error("%s failed: %s", script, err ? err->message : errout);
}

static void
removePki(void)
{
    const char *argv[] = {"rm", "-rf", pki, NULL};

    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                 NULL, NULL, NULL, NULL);
    g_free(pki);
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    bool preset = g_getenv("G_TLS_GNUTLS_PRIORITY") != NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);
    if (cocoAgentTlsInit(&err) < 0)
        g_error("%s", err->message);
    if (!preset)
        g_assert_cmpstr(g_getenv("G_TLS_GNUTLS_PRIORITY"), ==,
                        COCO_AGENT_TLS_PRIORITY);
    makePki();
    g_test_add_func("/tls/config", testConfig);
    g_test_add_func("/tls/creds/load", testCredsLoad);
    g_test_add_func("/tls/creds/refused", testCredsRefused);
    g_test_add_func("/tls/handshake/mutual", testMutual);
    g_test_add_func("/tls/handshake/wrong-host", testWrongHost);
    g_test_add_func("/tls/handshake/no-certificate", testNoCertificate);
    g_test_add_func("/tls/handshake/other-ca", testOtherCa);
    g_test_add_func("/tls/handshake/expired", testExpired);
    g_test_add_func("/tls/handshake/revoked", testRevoked);
    g_test_add_func("/tls/handshake/no-alpn", testNoAlpn);
    g_test_add_func("/tls/handshake/client-learns-refusal",
                    testClientLearnsRefusal);
    g_test_add_func("/tls/handshake/deadline-silent", testDeadlineSilent);
    g_test_add_func("/tls/handshake/deadline-dribble", testDeadlineDribble);
    g_test_add_func("/tls/handshake/cancel", testCancel);
    g_test_add_func("/tls/handshake/not-tls", testNotTls);
    g_test_add_func("/tls/handshake/tls12", testTls12);
    g_test_add_func("/tls/channel-binding", testChannelBinding);
    g_test_add_func("/tls/stream-token", testStreamToken);
    ret = g_test_run();
    removePki();
    return ret;
}
