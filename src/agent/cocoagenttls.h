/*
 * cocoagenttls.h: mutual TLS between two hosts' agents
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The agents authenticate each other with the x509 files libvirt's own TLS
 * already uses (docs/virtcocod.rst, "Trust between agents"): one CA, a
 * server certificate the destination presents and a client certificate the
 * source presents, both issued by that CA to the host's name.
 *
 * GIO's TLS (GTlsConnection, glib-networking's GnuTLS backend) runs the
 * handshake; GnuTLS itself checks the files when they are loaded.
 *
 *   - cocoAgentTlsInit() once in main(), before any thread: it checks that
 *     GIO has a TLS backend and, unless the operator set
 *     G_TLS_GNUTLS_PRIORITY, makes glib-networking offer TLS 1.3 only.
 *   - cocoAgentTlsCredsLoad() reads and checks the five files (readable,
 *     PEM, within their validity, issued by the CA for the right purpose,
 *     not revoked, each key matching its certificate and not accessible to
 *     every user) and the CA's revocation list when there is one, and fails
 *     with one message naming the file and its configuration key.
 *   - cocoAgentTlsHandshakeAsync() runs one handshake on a connected stream
 *     under an overall deadline. The client (the source host) checks the
 *     server's chain against the CA and its identity against the host it
 *     connects to (subjectAltName dNSName or iPAddress, else the CN, as
 *     libvirt does); the server requires a client certificate of the CA.
 *     Both check the peer's chain against the CA's revocation list.
 *     Both ends require TLS 1.3 and the ALPN protocol "virtcocod/1", and
 *     the server confirms it accepted the client with one record before the
 *     client's handshake completes, so that a refusal is reported by both
 *     ends. The server hands back the client certificate's names; the caller
 *     checks them against the host the migration comes from with
 *     cocoAgentTlsPeerCheck().
 *   - cocoAgentTlsChannelBinding() and cocoAgentTlsStreamToken() bind the
 *     data streams, which do not travel in TLS, to the authenticated control
 *     connection: a stream's hello carries a token only the two ends of that
 *     control connection can compute.
 *
 * Each refusal has its own message and names the peer's address.
 */

#pragma once

#include "internal.h"

#include <gio/gio.h>
#include <stdbool.h>
#include <stdint.h>

/* libvirt's locations (libvirt's kbase "TLS x509 certificates"). */
#define COCO_AGENT_TLS_DEFAULT_CA_CERT "/etc/pki/CA/cacert.pem"
#define COCO_AGENT_TLS_DEFAULT_SERVER_CERT "/etc/pki/libvirt/servercert.pem"
#define COCO_AGENT_TLS_DEFAULT_SERVER_KEY                                      \
 "/etc/pki/libvirt/private/serverkey.pem"
#define COCO_AGENT_TLS_DEFAULT_CLIENT_CERT "/etc/pki/libvirt/clientcert.pem"
#define COCO_AGENT_TLS_DEFAULT_CLIENT_KEY                                      \
 "/etc/pki/libvirt/private/clientkey.pem"
/* Read when it exists, as libvirt does, unless tls_ca_crl names a file. */
#define COCO_AGENT_TLS_DEFAULT_CA_CRL "/etc/pki/CA/cacrl.pem"
/* Seconds a whole handshake may take (handshake_timeout). */
#define COCO_AGENT_TLS_DEFAULT_HANDSHAKE_TIMEOUT 10
#define COCO_AGENT_TLS_MAX_HANDSHAKE_TIMEOUT 300

/* The ALPN protocol both ends require. */
#define COCO_AGENT_TLS_ALPN "virtcocod/1"
/* What glib-networking offers unless G_TLS_GNUTLS_PRIORITY is set. */
#define COCO_AGENT_TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3"
/* No certificate, key or CA file may be larger (checked before reading). */
#define COCO_AGENT_TLS_FILE_MAX (1024 * 1024)
/* RFC 9266 tls-exporter: 32 bytes. */
#define COCO_AGENT_TLS_BINDING_SIZE 32
/* HMAC-SHA256. */
#define COCO_AGENT_TLS_TOKEN_SIZE 32

/* The configuration keys of the same names (docs/virtcocod.rst). */
typedef struct {
    char *ca_cert; /* tls_ca_cert */
    char *server_cert; /* tls_server_cert */
    char *server_key; /* tls_server_key */
    char *client_cert; /* tls_client_cert */
    char *client_key; /* tls_client_key */
    char *ca_crl; /* tls_ca_crl; NULL: COCO_AGENT_TLS_DEFAULT_CA_CRL if it
                     exists */
    unsigned int handshake_timeout; /* seconds, handshake_timeout */
} CocoAgentTlsConfig;

/* libvirt's locations and the default deadline. */
void cocoAgentTlsConfigInit(CocoAgentTlsConfig *cfg);
void cocoAgentTlsConfigClear(CocoAgentTlsConfig *cfg);
void cocoAgentTlsConfigCopy(CocoAgentTlsConfig *dst,
                            const CocoAgentTlsConfig *src);

/* Once, from main() before any other thread starts (it may set
 * G_TLS_GNUTLS_PRIORITY): fails when GIO has no TLS backend (the package
 * glib-networking is missing). */
int cocoAgentTlsInit(GError **error);

typedef struct _CocoAgentTlsCreds CocoAgentTlsCreds;

/* Read and check the CA, server and client files of @cfg. The result is
 * immutable and may be shared between threads. */
CocoAgentTlsCreds *cocoAgentTlsCredsLoad(const CocoAgentTlsConfig *cfg,
                                         GError **error);
CocoAgentTlsCreds *cocoAgentTlsCredsRef(CocoAgentTlsCreds *creds);
void cocoAgentTlsCredsUnref(CocoAgentTlsCreds *creds);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoAgentTlsCreds, cocoAgentTlsCredsUnref);
/* The names of this host's server certificate ("hostA, 10.97.0.1"). */
const char *cocoAgentTlsCredsGetIdentity(CocoAgentTlsCreds *creds);

typedef enum {
    COCO_AGENT_TLS_CLIENT = 0, /* the source: connects, presents clientcert */
    COCO_AGENT_TLS_SERVER, /* the destination: accepts, presents servercert */
} CocoAgentTlsRole;

/*
 * Run the TLS handshake of @role on the connected @base. @expected_peer
 * (client only, required) is the host name or IP address the server's
 * certificate must name: the host libvirt migrates to. The whole
 * handshake, the server's confirmation included, must end within
 * @timeout_ms (one deadline, however the peer paces its bytes); cancelling
 * @cancellable ends it too. @callback runs in the thread-default main
 * context of the caller, which must be running; so must the handshake's
 * certificate check. While it runs, the handshake holds one of GIO's worker
 * threads: the caller limits how many unauthenticated handshakes it starts.
 */
void cocoAgentTlsHandshakeAsync(CocoAgentTlsCreds *creds, GIOStream *base,
                                CocoAgentTlsRole role,
                                const char *expected_peer, guint timeout_ms,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
/*
 * The authenticated stream (a GTlsConnection over the base stream), or
 * NULL with the refusal in @error; the base stream is closed then.
 * *@peer_identity (may be NULL) gets the names in the peer's certificate
 * ("hostA, 10.97.0.1", or "CN=hostA" when it has no subjectAltName).
 */
GIOStream *cocoAgentTlsHandshakeFinish(GAsyncResult *res, char **peer_identity,
                                       GError **error);

/* The peer address ("10.97.0.1:41634") of a base or TLS stream, for
 * messages; "local" for a stream without an IP address. */
char *cocoAgentTlsPeerAddress(GIOStream *stream);

/* Whether the peer's certificate of the authenticated @tls names @host
 * (dNSName or iPAddress, else the CN): what the destination checks
 * against the host the migration comes from. */
int cocoAgentTlsPeerCheck(GIOStream *tls, const char *host, GError **error);

/* RFC 9266 tls-exporter of the authenticated @tls (32 bytes): equal at both
 * ends of one TLS session, unknown to anyone else, different per session. */
int cocoAgentTlsChannelBinding(GIOStream *tls, GByteArray **out,
                               GError **error);

/*
 * The token data stream @index of session @session_id carries in its hello:
 * HMAC-SHA256 keyed by @binding of "coco-stream" | session (u64 big-endian)
 * | index (u32 big-endian). Fails (-1) only for a binding shorter than
 * COCO_AGENT_TLS_BINDING_SIZE. A stream whose token checks can come only
 * from the peer of that control connection and only for that session and
 * index; the receiver still accepts each index once per session.
 */
int cocoAgentTlsStreamToken(const GByteArray *binding, guint64 session_id,
                            guint index, guint8 out[COCO_AGENT_TLS_TOKEN_SIZE]);
/* Compare @token with the expected one in constant time; a mismatch is
 * refused with a message naming @peer (the stream's address). */
int cocoAgentTlsStreamTokenCheck(const GByteArray *binding, guint64 session_id,
                                 guint index,
                                 const guint8 token[COCO_AGENT_TLS_TOKEN_SIZE],
                                 const char *peer, GError **error);
