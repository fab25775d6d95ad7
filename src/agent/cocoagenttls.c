/*
 * cocoagenttls.c: mutual TLS between two hosts' agents
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagenttls.h"
#include "util/cocoerror.h"
#include "util/cocosource.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The record the server sends once it accepted the client. */
static const guint8 cocoAgentTlsConfirm[8] = {'C', 'A', 'T',  '1',
                                              'O', 'K', '\r', '\n'};

/* At most this many names of a certificate go into a message. */
#define COCO_AGENT_TLS_NAMES_MAX 16
#define COCO_AGENT_TLS_NAME_MAX 255

struct _CocoAgentTlsCreds {
    gint refs;
    GTlsDatabase *db;
    GTlsCertificate *server;
    GTlsCertificate *client;
    char *ca_path;
    char *crl_path; /* NULL: no revocation list */
    char *identity;
    /* The CAs and CRLs, for the revocation check GIO does not make. */
    GMutex lock;
    gnutls_x509_trust_list_t tl;
};

G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_x509_crt_t, gnutls_x509_crt_deinit,
                                NULL);
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_x509_privkey_t,
                                gnutls_x509_privkey_deinit, NULL);

static void
cocoAgentTlsTrustListFree(gnutls_x509_trust_list_t tl)
{
    gnutls_x509_trust_list_deinit(tl, 1);
}

G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_x509_trust_list_t,
                                cocoAgentTlsTrustListFree, NULL);

/* The contents of one file; a key's bytes are wiped when freed. */
typedef struct {
    guint8 *data;
    size_t len;
    bool secret;
} CocoAgentTlsFile;

static void
cocoAgentTlsFileClear(CocoAgentTlsFile *f)
{
    if (f->data && f->secret)
        explicit_bzero(f->data, f->len);
    g_clear_pointer(&f->data, g_free);
    f->len = 0;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CocoAgentTlsFile, cocoAgentTlsFileClear);

/* The certificates of one PEM file, the first one the host's own. */
typedef struct {
    gnutls_x509_crt_t *crts;
    unsigned int n;
} CocoAgentTlsCertList;

static void
cocoAgentTlsCertListClear(CocoAgentTlsCertList *l)
{
    unsigned int i;

    for (i = 0; i < l->n; i++)
        gnutls_x509_crt_deinit(l->crts[i]);
    gnutls_free(l->crts);
    l->crts = NULL;
    l->n = 0;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CocoAgentTlsCertList,
                                 cocoAgentTlsCertListClear);

/* The CRLs of one PEM file, until a trust list owns them. */
typedef struct {
    gnutls_x509_crl_t *crls;
    unsigned int n;
} CocoAgentTlsCrlList;

static void
cocoAgentTlsCrlListClear(CocoAgentTlsCrlList *l)
{
    unsigned int i;

    for (i = 0; i < l->n; i++)
        gnutls_x509_crl_deinit(l->crls[i]);
    gnutls_free(l->crls);
    l->crls = NULL;
    l->n = 0;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CocoAgentTlsCrlList, cocoAgentTlsCrlListClear);

void
cocoAgentTlsConfigInit(CocoAgentTlsConfig *cfg)
{
    cfg->ca_cert = g_strdup(COCO_AGENT_TLS_DEFAULT_CA_CERT);
    cfg->server_cert = g_strdup(COCO_AGENT_TLS_DEFAULT_SERVER_CERT);
    cfg->server_key = g_strdup(COCO_AGENT_TLS_DEFAULT_SERVER_KEY);
    cfg->client_cert = g_strdup(COCO_AGENT_TLS_DEFAULT_CLIENT_CERT);
    cfg->client_key = g_strdup(COCO_AGENT_TLS_DEFAULT_CLIENT_KEY);
    cfg->ca_crl = NULL;
    cfg->handshake_timeout = COCO_AGENT_TLS_DEFAULT_HANDSHAKE_TIMEOUT;
}

void
cocoAgentTlsConfigClear(CocoAgentTlsConfig *cfg)
{
    g_free(cfg->ca_cert);
    g_free(cfg->server_cert);
    g_free(cfg->server_key);
    g_free(cfg->client_cert);
    g_free(cfg->client_key);
    g_free(cfg->ca_crl);
    memset(cfg, 0, sizeof(*cfg));
}

void
cocoAgentTlsConfigCopy(CocoAgentTlsConfig *dst, const CocoAgentTlsConfig *src)
{
    dst->ca_cert = g_strdup(src->ca_cert);
    dst->server_cert = g_strdup(src->server_cert);
    dst->server_key = g_strdup(src->server_key);
    dst->client_cert = g_strdup(src->client_cert);
    dst->client_key = g_strdup(src->client_key);
    dst->ca_crl = g_strdup(src->ca_crl);
    dst->handshake_timeout = src->handshake_timeout;
}

static int
cocoAgentTlsBackendCheck(GError **error)
{
    if (!g_tls_backend_supports_tls(g_tls_backend_get_default()))
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED, "%s",
            _("GIO has no TLS backend, so the peer agents cannot be authenticated: install glib-networking"));
    return 0;
}

int
cocoAgentTlsInit(GError **error)
{
    /* glib-networking reads it once, when its first connection is made. */
    if (!g_getenv("G_TLS_GNUTLS_PRIORITY"))
        g_setenv("G_TLS_GNUTLS_PRIORITY", COCO_AGENT_TLS_PRIORITY, FALSE);
    return cocoAgentTlsBackendCheck(error);
}

/* "2021-01-01 00:00:00 UTC" */
static char *
cocoAgentTlsFormatTime(time_t t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc((gint64)t);

    return dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC") : g_strdup("?");
}

/* Append @len bytes of a name from a certificate, printable ASCII only. */
static void
cocoAgentTlsAppendName(GString *s, const char *name, size_t len)
{
    size_t i;

    if (s->len)
        g_string_append(s, ", ");
    for (i = 0; i < len && i < COCO_AGENT_TLS_NAME_MAX; i++)
        g_string_append_c(s, g_ascii_isprint(name[i]) ? name[i] : '?');
}

/* The subjectAltName dNSName and iPAddress entries of @crt, or its CN. */
static char *
cocoAgentTlsCertNames(gnutls_x509_crt_t crt)
{
    g_autoptr(GString) s = g_string_new(NULL);
    char buf[COCO_AGENT_TLS_NAME_MAX + 1];
    unsigned int i, shown = 0;
    size_t len;

    for (i = 0; shown < COCO_AGENT_TLS_NAMES_MAX; i++) {
        char ip[INET6_ADDRSTRLEN];
        int type;

        len = sizeof(buf);
        type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &len, NULL);
        if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
            continue;
        if (type < 0)
            break;
        if (type == GNUTLS_SAN_DNSNAME) {
            cocoAgentTlsAppendName(s, buf, len);
            shown++;
        } else if (type == GNUTLS_SAN_IPADDRESS && (len == 4 || len == 16) &&
                   inet_ntop(len == 4 ? AF_INET : AF_INET6, buf, ip,
                             sizeof(ip))) {
            cocoAgentTlsAppendName(s, ip, strlen(ip));
            shown++;
        }
    }
    if (s->len)
        return g_string_free(g_steal_pointer(&s), FALSE);
    len = sizeof(buf);
    if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
                                      buf, &len) == 0) {
        cocoAgentTlsAppendName(s, buf, len);
        g_string_prepend(s, "CN=");
        return g_string_free(g_steal_pointer(&s), FALSE);
    }
    return g_strdup("no name");
}

/* The DER of a GIO certificate as a GnuTLS one; NULL if it will not
 * parse. */
static gnutls_x509_crt_t
cocoAgentTlsCrtFromGio(GTlsCertificate *cert)
{
    g_autoptr(GByteArray) der = NULL;
    g_auto(gnutls_x509_crt_t) crt = NULL;
    gnutls_datum_t d;

    g_object_get(cert, "certificate", &der, NULL);
    if (!der || gnutls_x509_crt_init(&crt) < 0)
        return NULL;
    d.data = der->data;
    d.size = der->len;
    if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0)
        return NULL;
    return g_steal_pointer(&crt);
}

static char *
cocoAgentTlsGioCertNames(GTlsCertificate *cert)
{
    g_auto(gnutls_x509_crt_t) crt = cert ? cocoAgentTlsCrtFromGio(cert) : NULL;

    return crt ? cocoAgentTlsCertNames(crt) : g_strdup("unreadable");
}

/* Read a file named by configuration key @key: a regular file of at most
 * COCO_AGENT_TLS_FILE_MAX bytes; a @secret one must not be accessible to
 * every user. */
static int
cocoAgentTlsReadFile(const char *path, const char *key, bool secret,
                     CocoAgentTlsFile *out, GError **error)
{
    struct stat st;
    size_t got = 0;
    int fd;

    if (!path || !*path)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("the key '%1$s' names no file"), key);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
        return cocoErrorSetSystem(
            error, errno, _("cannot open '%1$s' (key '%2$s')"), path, key);
    if (fstat(fd, &st) < 0) {
        int err = errno;

        close(fd);
        return cocoErrorSetSystem(
            error, err, _("cannot read '%1$s' (key '%2$s')"), path, key);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("'%1$s' (key '%2$s') is not a regular file"),
                            path, key);
    }
    if (secret && (st.st_mode & S_IRWXO)) {
        close(fd);
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the private key '%1$s' (key '%2$s') is accessible to every user (mode '%3$04o'): make it readable by its owner only (chmod 600)"),
            path, key, (unsigned int)(st.st_mode & 07777));
    }
    if (st.st_size <= 0 || st.st_size > COCO_AGENT_TLS_FILE_MAX) {
        close(fd);
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("'%1$s' (key '%2$s') is empty or larger than '%3$u' bytes"), path,
            key, (unsigned int)COCO_AGENT_TLS_FILE_MAX);
    }
    out->secret = secret;
    out->data = g_malloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, out->data + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;

            close(fd);
            out->len = got;
            cocoAgentTlsFileClear(out);
            return cocoErrorSetSystem(
                error, err, _("cannot read '%1$s' (key '%2$s')"), path, key);
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    out->data[got] = '\0';
    out->len = got;
    return 0;
}

static int
cocoAgentTlsParseCerts(const CocoAgentTlsFile *f, const char *path,
                       const char *key, CocoAgentTlsCertList *out,
                       GError **error)
{
    gnutls_datum_t d = {f->data, (unsigned int)f->len};
    int rc = gnutls_x509_crt_list_import2(&out->crts, &out->n, &d,
                                          GNUTLS_X509_FMT_PEM, 0);

    if (rc < 0 || out->n == 0)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("'%1$s' (key '%2$s') holds no PEM certificate: %3$s"), path, key,
            rc < 0 ? gnutls_strerror(rc) : "empty");
    return 0;
}

static int
cocoAgentTlsCheckDates(gnutls_x509_crt_t crt, const char *path, const char *key,
                       GError **error)
{
    time_t now = time(NULL);
    time_t act = gnutls_x509_crt_get_activation_time(crt);
    time_t exp = gnutls_x509_crt_get_expiration_time(crt);

    if (act == (time_t)-1 || exp == (time_t)-1)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("a certificate in '%1$s' (key '%2$s') has no validity period"),
            path, key);
    if (exp < now) {
        g_autofree char *when = cocoAgentTlsFormatTime(exp);

        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the certificate in '%1$s' (key '%2$s') expired on '%3$s'"), path,
            key, when);
    }
    if (act > now) {
        g_autofree char *when = cocoAgentTlsFormatTime(act);

        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the certificate in '%1$s' (key '%2$s') is not valid before '%3$s'"),
            path, key, when);
    }
    return 0;
}

/* The CRL file: every CRL in it issued by one of @cas and not out of
 * date. */
static int
cocoAgentTlsLoadCrls(const char *path, const CocoAgentTlsCertList *cas,
                     CocoAgentTlsCrlList *out, GError **error)
{
    g_auto(CocoAgentTlsFile) f = {0};
    gnutls_datum_t d;
    time_t now = time(NULL);
    unsigned int i;
    int rc;

    if (cocoAgentTlsReadFile(path, "tls_ca_crl", false, &f, error) < 0)
        return -1;
    d.data = f.data;
    d.size = (unsigned int)f.len;
    rc = gnutls_x509_crl_list_import2(&out->crls, &out->n, &d,
                                      GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || out->n == 0)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("'%1$s' (key '%2$s') holds no PEM certificate revocation list: %3$s"),
            path, "tls_ca_crl", rc < 0 ? gnutls_strerror(rc) : "empty");
    for (i = 0; i < out->n; i++) {
        time_t next = gnutls_x509_crl_get_next_update(out->crls[i]);
        unsigned int status = 0;

        if (next != (time_t)-1 && next < now) {
            g_autofree char *when = cocoAgentTlsFormatTime(next);

            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("the revocation list in '%1$s' (key '%2$s') is out of date since '%3$s'"),
                path, "tls_ca_crl", when);
        }
        /* The signature must be the CA's; a CA without the cRLSign key
         * usage (libvirt's CA template has none) is accepted, as libvirt
         * does: a list can only refuse more. */
        if (gnutls_x509_crl_verify(out->crls[i], cas->crts, cas->n,
                                   GNUTLS_VERIFY_DISABLE_CA_SIGN,
                                   &status) < 0 ||
            status)
            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("the revocation list in '%1$s' (key '%2$s') is not issued by the CA in the key '%3$s'"),
                path, "tls_ca_crl", "tls_ca_cert");
    }
    return 0;
}

/* The CA file: every certificate in it a CA within its validity; and the
 * CRL file when @crl_path is not NULL. */
static int
cocoAgentTlsLoadCa(const char *path, const char *crl_path,
                   gnutls_x509_trust_list_t *tl, GError **error)
{
    g_auto(CocoAgentTlsFile) f = {0};
    g_auto(CocoAgentTlsCertList) cas = {0};
    g_auto(CocoAgentTlsCrlList) crls = {0};
    g_auto(gnutls_x509_trust_list_t) list = NULL;
    unsigned int i;

    if (cocoAgentTlsReadFile(path, "tls_ca_cert", false, &f, error) < 0 ||
        cocoAgentTlsParseCerts(&f, path, "tls_ca_cert", &cas, error) < 0)
        return -1;
    for (i = 0; i < cas.n; i++) {
        if (cocoAgentTlsCheckDates(cas.crts[i], path, "tls_ca_cert", error) < 0)
            return -1;
        if (gnutls_x509_crt_get_ca_status(cas.crts[i], NULL) <= 0) {
            g_autofree char *names = cocoAgentTlsCertNames(cas.crts[i]);

            return cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("the certificate '%1$s' in '%2$s' (key '%3$s') is not a CA certificate"),
                names, path, "tls_ca_cert");
        }
    }
    if (crl_path && cocoAgentTlsLoadCrls(crl_path, &cas, &crls, error) < 0)
        return -1;
    if (gnutls_x509_trust_list_init(&list, 0) < 0)
        return cocoErrorSet(error, COCO_ERROR_INTERNAL, "%s",
                            _("cannot create a GnuTLS trust list"));
    /* The list owns the certificates and the CRLs from here on. */
    if (gnutls_x509_trust_list_add_cas(list, cas.crts, cas.n, 0) !=
        (int)cas.n) {
        cas.n = 0;
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("cannot use the CA certificates in '%1$s' (key '%2$s')"), path,
            "tls_ca_cert");
    }
    cas.n = 0;
    if (crls.n && gnutls_x509_trust_list_add_crls(list, crls.crls, crls.n, 0,
                                                  0) != (int)crls.n) {
        crls.n = 0;
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("cannot use the revocation lists in '%1$s' (key '%2$s')"),
            crl_path, "tls_ca_crl");
    }
    crls.n = 0;
    *tl = g_steal_pointer(&list);
    return 0;
}

/* A key TLS 1.3 can sign with: RSA of 2048 bits or more (RSA-PSS), ECDSA
 * on P-256, P-384 or P-521, Ed25519 or Ed448. Otherwise the handshake
 * would fail with GnuTLS's "no supported cipher suites". */
static int
cocoAgentTlsCheckKeyType(gnutls_x509_crt_t crt, const char *path,
                         const char *key, GError **error)
{
    unsigned int bits = 0;
    int pk = gnutls_x509_crt_get_pk_algorithm(crt, &bits);
    bool ok = false;

    if (pk == GNUTLS_PK_RSA || pk == GNUTLS_PK_RSA_PSS)
        ok = bits >= 2048;
    else if (pk == GNUTLS_PK_ECDSA)
        ok = bits >= 256;
    else if (pk == GNUTLS_PK_EDDSA_ED25519 || pk == GNUTLS_PK_EDDSA_ED448)
        ok = true;
    if (!ok)
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the certificate in '%1$s' (key '%2$s') has a '%3$s' key of '%4$u' bits, which TLS 1.3 cannot use: use RSA of 2048 bits or more, or ECDSA on P-256, P-384 or P-521"),
            path, key, NULLSTR(gnutls_pk_algorithm_get_name(pk)), bits);
    return 0;
}

/* One host certificate and its key: within its validity, issued by the CA
 * for @purpose_oid, the key matching it and not readable by everyone.
 * Returns the GIO certificate (with its key) and the certificate's names. */
static GTlsCertificate *
cocoAgentTlsLoadPair(gnutls_x509_trust_list_t tl, const char *ca_path,
                     const char *crl_path, const char *cert_path,
                     const char *cert_key, const char *key_path,
                     const char *key_key, const char *purpose_oid,
                     const char *purpose, char **names, GError **error)
{
    g_auto(CocoAgentTlsFile) cf = {0};
    g_auto(CocoAgentTlsFile) kf = {0};
    g_auto(CocoAgentTlsFile) pem = {0};
    g_auto(CocoAgentTlsCertList) chain = {0};
    g_auto(gnutls_x509_privkey_t) pkey = NULL;
    g_autoptr(GError) gerr = NULL;
    gnutls_typed_vdata_st vdata = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID,
        .data = (unsigned char *)purpose_oid,
    };
    gnutls_datum_t kd;
    gnutls_datum_t pk8 = {NULL, 0};
    unsigned char id1[64], id2[64];
    size_t id1len = sizeof(id1), id2len = sizeof(id2);
    unsigned int status = 0;
    GTlsCertificate *cert;
    unsigned int i;
    int rc;

    if (cocoAgentTlsReadFile(cert_path, cert_key, false, &cf, error) < 0 ||
        cocoAgentTlsParseCerts(&cf, cert_path, cert_key, &chain, error) < 0)
        return NULL;
    /* A certificate file is readable by everyone; a key in it is not
     * where GIO would look for ours, and should not be there at all. */
    if (strstr((const char *)cf.data, "PRIVATE KEY-----")) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the certificate file '%1$s' (key '%2$s') holds a private key: keep it in the file of '%3$s' only"),
            cert_path, cert_key, key_key);
        return NULL;
    }
    for (i = 0; i < chain.n; i++) {
        if (cocoAgentTlsCheckDates(chain.crts[i], cert_path, cert_key, error) <
            0)
            return NULL;
    }
    rc = gnutls_x509_trust_list_verify_crt2(tl, chain.crts, chain.n, &vdata, 1,
                                            0, &status, NULL);
    if (rc < 0 || (status & GNUTLS_CERT_SIGNER_NOT_FOUND)) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the certificate in '%1$s' (key '%2$s') is not issued by the CA in '%3$s' (key '%4$s')"),
            cert_path, cert_key, ca_path, "tls_ca_cert");
        return NULL;
    }
    if (status & GNUTLS_CERT_REVOKED) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the certificate in '%1$s' (key '%2$s') is revoked by the list in '%3$s' (key '%4$s')"),
            cert_path, cert_key, NULLSTR(crl_path), "tls_ca_crl");
        return NULL;
    }
    if (status & GNUTLS_CERT_PURPOSE_MISMATCH) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the certificate in '%1$s' (key '%2$s') is not for TLS '%3$s' use (certtool's template needs 'tls_www_%3$s')"),
            cert_path, cert_key, purpose);
        return NULL;
    }
    if (status) {
        gnutls_datum_t text = {NULL, 0};
        g_autofree char *why = NULL;

        if (gnutls_certificate_verification_status_print(
                status, GNUTLS_CRT_X509, &text, 0) == 0) {
            why = g_strndup((const char *)text.data, text.size);
            gnutls_free(text.data);
        }
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the certificate in '%1$s' (key '%2$s') does not verify against the CA in '%3$s': %4$s"),
            cert_path, cert_key, ca_path, NULLSTR(why));
        return NULL;
    }

    if (cocoAgentTlsReadFile(key_path, key_key, true, &kf, error) < 0)
        return NULL;
    kd.data = kf.data;
    kd.size = (unsigned int)kf.len;
    if (gnutls_x509_privkey_init(&pkey) < 0 ||
        (rc = gnutls_x509_privkey_import2(pkey, &kd, GNUTLS_X509_FMT_PEM, NULL,
                                          GNUTLS_PKCS_PLAIN)) < 0) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the private key '%1$s' (key '%2$s') cannot be read (an unencrypted PEM key is needed): %3$s"),
            key_path, key_key, gnutls_strerror(rc));
        return NULL;
    }
    if (gnutls_x509_crt_get_key_id(chain.crts[0], 0, id1, &id1len) < 0 ||
        gnutls_x509_privkey_get_key_id(pkey, 0, id2, &id2len) < 0 ||
        id1len != id2len || memcmp(id1, id2, id1len) != 0) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the private key '%1$s' (key '%2$s') does not belong to the certificate in '%3$s' (key '%4$s')"),
            key_path, key_key, cert_path, cert_key);
        return NULL;
    }
    if (cocoAgentTlsCheckKeyType(chain.crts[0], cert_path, cert_key, error) < 0)
        return NULL;
    /* GIO reads PKCS#8 of any key type; the file may be PKCS#1 or SEC1. */
    if ((rc = gnutls_x509_privkey_export2_pkcs8(pkey, GNUTLS_X509_FMT_PEM, NULL,
                                                GNUTLS_PKCS_PLAIN, &pk8)) < 0) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("cannot convert the private key '%1$s' (key '%2$s'): %3$s"),
            key_path, key_key, gnutls_strerror(rc));
        return NULL;
    }
    pem.secret = true;
    pem.len = cf.len + 1 + pk8.size;
    pem.data = g_malloc(pem.len + 1);
    memcpy(pem.data, cf.data, cf.len);
    pem.data[cf.len] = '\n';
    memcpy(pem.data + cf.len + 1, pk8.data, pk8.size);
    pem.data[pem.len] = '\0';
    explicit_bzero(pk8.data, pk8.size);
    gnutls_free(pk8.data);
    if (!(cert = g_tls_certificate_new_from_pem((const char *)pem.data,
                                                (gssize)pem.len, &gerr))) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("GIO cannot use the certificate in '%1$s' (key '%2$s') with its key '%3$s': %4$s"),
            cert_path, cert_key, key_path, gerr->message);
        return NULL;
    }
    *names = cocoAgentTlsCertNames(chain.crts[0]);
    return cert;
}

CocoAgentTlsCreds *
cocoAgentTlsCredsLoad(const CocoAgentTlsConfig *cfg, GError **error)
{
    g_autoptr(CocoAgentTlsCreds) creds = NULL;
    g_autoptr(GError) gerr = NULL;
    g_autofree char *client_names = NULL;

    if (cocoAgentTlsBackendCheck(error) < 0)
        return NULL;
    creds = g_new0(CocoAgentTlsCreds, 1);
    creds->refs = 1;
    g_mutex_init(&creds->lock);
    creds->ca_path = g_strdup(cfg->ca_cert);
    /* Like libvirt's cacrl.pem: used when it exists, unless named. */
    if (cfg->ca_crl)
        creds->crl_path = g_strdup(cfg->ca_crl);
    else if (g_file_test(COCO_AGENT_TLS_DEFAULT_CA_CRL, G_FILE_TEST_EXISTS))
        creds->crl_path = g_strdup(COCO_AGENT_TLS_DEFAULT_CA_CRL);
    if (cocoAgentTlsLoadCa(cfg->ca_cert, creds->crl_path, &creds->tl, error) <
        0)
        return NULL;
    if (!(creds->db = g_tls_file_database_new(cfg->ca_cert, &gerr))) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("GIO cannot use the CA in '%1$s' (key '%2$s'): %3$s"),
                     cfg->ca_cert, "tls_ca_cert", gerr->message);
        return NULL;
    }
    if (!(creds->server = cocoAgentTlsLoadPair(
              creds->tl, cfg->ca_cert, creds->crl_path, cfg->server_cert,
              "tls_server_cert", cfg->server_key, "tls_server_key",
              GNUTLS_KP_TLS_WWW_SERVER, "server", &creds->identity, error)) ||
        !(creds->client = cocoAgentTlsLoadPair(
              creds->tl, cfg->ca_cert, creds->crl_path, cfg->client_cert,
              "tls_client_cert", cfg->client_key, "tls_client_key",
              GNUTLS_KP_TLS_WWW_CLIENT, "client", &client_names, error)))
        return NULL;
    return g_steal_pointer(&creds);
}

CocoAgentTlsCreds *
cocoAgentTlsCredsRef(CocoAgentTlsCreds *creds)
{
    g_atomic_int_inc(&creds->refs);
    return creds;
}

void
cocoAgentTlsCredsUnref(CocoAgentTlsCreds *creds)
{
    if (!creds || !g_atomic_int_dec_and_test(&creds->refs))
        return;
    g_clear_object(&creds->db);
    g_clear_object(&creds->server);
    g_clear_object(&creds->client);
    if (creds->tl)
        gnutls_x509_trust_list_deinit(creds->tl, 1);
    g_mutex_clear(&creds->lock);
    g_free(creds->ca_path);
    g_free(creds->crl_path);
    g_free(creds->identity);
    g_free(creds);
}

const char *
cocoAgentTlsCredsGetIdentity(CocoAgentTlsCreds *creds)
{
    return creds->identity;
}

char *
cocoAgentTlsPeerAddress(GIOStream *stream)
{
    g_autoptr(GIOStream) base = NULL;
    g_autoptr(GSocketAddress) addr = NULL;
    g_autofree char *ip = NULL;
    GInetAddress *inet;

    if (G_IS_TLS_CONNECTION(stream))
        g_object_get(stream, "base-io-stream", &base, NULL);
    else
        base = g_object_ref(stream);
    if (!G_IS_SOCKET_CONNECTION(base) ||
        !(addr = g_socket_connection_get_remote_address(
              G_SOCKET_CONNECTION(base), NULL)) ||
        !G_IS_INET_SOCKET_ADDRESS(addr))
        return g_strdup("local");
    inet = g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(addr));
    ip = g_inet_address_to_string(inet);
    if (g_inet_address_get_family(inet) == G_SOCKET_FAMILY_IPV6)
        return g_strdup_printf(
            "[%s]:%u", ip,
            g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(addr)));
    return g_strdup_printf(
        "%s:%u", ip,
        g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(addr)));
}

/* One handshake in progress. */
typedef struct {
    CocoAgentTlsCreds *creds;
    GIOStream *base;
    GTlsConnection *tls;
    CocoAgentTlsRole role;
    char *address;
    char *expected;
    guint timeout_ms;
    GCancellable *cancel; /* the deadline's and the caller's */
    GCancellable *caller;
    gulong caller_id;
    GSource *timer;
    bool timed_out;
    bool confirming;
    /* What the certificate check saw. */
    bool cert_seen;
    GTlsCertificateFlags cert_errors;
    char *cert_names;
    time_t cert_activation;
    time_t cert_expiration;
    guint8 confirm[sizeof(cocoAgentTlsConfirm)];
    char *peer_identity;
} CocoAgentTlsHandshake;

static void
cocoAgentTlsHandshakeFree(gpointer opaque)
{
    CocoAgentTlsHandshake *hs = opaque;

    if (hs->caller_id)
        g_cancellable_disconnect(hs->caller, hs->caller_id);
    g_clear_object(&hs->caller);
    cocoSourceClear(&hs->timer);
    if (hs->tls)
        g_signal_handlers_disconnect_by_data(hs->tls, hs);
    g_clear_object(&hs->tls);
    g_clear_object(&hs->base);
    g_clear_object(&hs->cancel);
    cocoAgentTlsCredsUnref(hs->creds);
    g_free(hs->address);
    g_free(hs->expected);
    g_free(hs->cert_names);
    g_free(hs->peer_identity);
    g_free(hs);
}

static gboolean
cocoAgentTlsOnDeadline(gpointer opaque)
{
    CocoAgentTlsHandshake *hs = opaque;

    hs->timed_out = true;
    g_cancellable_cancel(hs->cancel);
    return G_SOURCE_REMOVE;
}

/* May run in any thread. */
static void
cocoAgentTlsOnCallerCancel(GCancellable *caller, gpointer opaque)
{
    g_cancellable_cancel(opaque);
}

/* The certificate check (GIO's accept-certificate): always on the server,
 * on the client only when the chain or the identity did not verify. */
static gboolean
cocoAgentTlsOnAcceptCert(GTlsConnection *conn, GTlsCertificate *cert,
                         GTlsCertificateFlags errors, gpointer opaque)
{
    CocoAgentTlsHandshake *hs = opaque;
    g_auto(gnutls_x509_crt_t) crt = cocoAgentTlsCrtFromGio(cert);

    hs->cert_seen = true;
    hs->cert_errors = errors;
    g_free(hs->cert_names);
    if (crt) {
        hs->cert_names = cocoAgentTlsCertNames(crt);
        hs->cert_activation = gnutls_x509_crt_get_activation_time(crt);
        hs->cert_expiration = gnutls_x509_crt_get_expiration_time(crt);
    } else {
        hs->cert_names = g_strdup("unreadable");
        hs->cert_errors |= G_TLS_CERTIFICATE_GENERIC_ERROR;
    }
    return hs->cert_errors == 0;
}

/* The refusal of a peer certificate GIO's check saw. */
static void
cocoAgentTlsCertError(CocoAgentTlsHandshake *hs, GError **error)
{
    GTlsCertificateFlags f = hs->cert_errors;

    if (f & G_TLS_CERTIFICATE_UNKNOWN_CA) {
        cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' presented a certificate ('%2$s') that is not issued by the CA in '%3$s'"),
            hs->address, hs->cert_names, hs->creds->ca_path);
    } else if (f & G_TLS_CERTIFICATE_EXPIRED) {
        g_autofree char *when = cocoAgentTlsFormatTime(hs->cert_expiration);

        cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' presented a certificate ('%2$s') that expired on '%3$s'"),
            hs->address, hs->cert_names, when);
    } else if (f & G_TLS_CERTIFICATE_NOT_ACTIVATED) {
        g_autofree char *when = cocoAgentTlsFormatTime(hs->cert_activation);

        cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' presented a certificate ('%2$s') that is not valid before '%3$s'"),
            hs->address, hs->cert_names, when);
    } else if (f & G_TLS_CERTIFICATE_BAD_IDENTITY) {
        cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' presented a valid certificate for '%2$s', not for '%3$s'"),
            hs->address, hs->cert_names, NULLSTR(hs->expected));
    } else if (f & G_TLS_CERTIFICATE_REVOKED) {
        cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' presented a revoked certificate ('%2$s')"),
            hs->address, hs->cert_names);
    } else if (f & G_TLS_CERTIFICATE_INSECURE) {
        cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' presented a certificate ('%2$s') with an insecure algorithm"),
            hs->address, hs->cert_names);
    } else {
        cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' presented a certificate ('%2$s') that does not verify for this use (GIO's flags '0x%3$x')"),
            hs->address, hs->cert_names, (unsigned int)f);
    }
}

/* End the handshake with the refusal that explains @err. */
static void
cocoAgentTlsFail(GTask *task, CocoAgentTlsHandshake *hs, const GError *err)
{
    GError *error = NULL;

    if (hs->timed_out) {
        cocoErrorSet(
            &error, COCO_ERROR_TRANSFER_IO,
            _("the TLS handshake with the peer agent at '%1$s' did not end within its deadline of '%2$u' ms"),
            hs->address, hs->timeout_ms);
    } else if (g_cancellable_is_cancelled(hs->cancel)) {
        cocoErrorSet(
            &error, COCO_ERROR_MIGRATION_ABORTED,
            _("the TLS handshake with the peer agent at '%1$s' was cancelled"),
            hs->address);
    } else if (hs->cert_seen && hs->cert_errors) {
        cocoAgentTlsCertError(hs, &error);
    } else if (hs->role == COCO_AGENT_TLS_SERVER &&
               g_error_matches(err, G_TLS_ERROR,
                               G_TLS_ERROR_CERTIFICATE_REQUIRED)) {
        cocoErrorSet(
            &error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' presented no certificate: a client certificate of the CA in '%2$s' is required"),
            hs->address, hs->creds->ca_path);
    } else if (g_error_matches(err, G_TLS_ERROR, G_TLS_ERROR_NOT_TLS)) {
        cocoErrorSet(&error, COCO_ERROR_TRANSFER_PROTOCOL,
                     _("the peer at '%1$s' does not speak TLS: %2$s"),
                     hs->address, err->message);
    } else if (hs->confirming && hs->role == COCO_AGENT_TLS_CLIENT) {
        cocoErrorSet(
            &error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' did not accept the TLS session (it may refuse this host's certificate '%2$s'): %3$s"),
            hs->address, hs->creds->identity, err ? err->message : "");
    } else if (err && err->domain == COCO_ERROR) {
        error = g_error_copy(err);
    } else {
        cocoErrorSet(
            &error, COCO_ERROR_TRANSFER_IO,
            _("the TLS handshake with the peer agent at '%1$s' failed: %2$s"),
            hs->address, err ? err->message : "");
    }
    g_io_stream_close(hs->base, NULL, NULL);
    g_task_return_error(task, error);
}

static const char *
cocoAgentTlsVersionName(GTlsProtocolVersion v)
{
    switch (v) {
    case G_TLS_PROTOCOL_VERSION_SSL_3_0:
        return "SSL 3.0";
    case G_TLS_PROTOCOL_VERSION_TLS_1_0:
        return "TLS 1.0";
    case G_TLS_PROTOCOL_VERSION_TLS_1_1:
        return "TLS 1.1";
    case G_TLS_PROTOCOL_VERSION_TLS_1_2:
        return "TLS 1.2";
    case G_TLS_PROTOCOL_VERSION_TLS_1_3:
        return "TLS 1.3";
    case G_TLS_PROTOCOL_VERSION_DTLS_1_0:
        return "DTLS 1.0";
    case G_TLS_PROTOCOL_VERSION_DTLS_1_2:
        return "DTLS 1.2";
    case G_TLS_PROTOCOL_VERSION_UNKNOWN:
    default:
        return "unknown";
    }
}

/* The peer's chain against the CRLs, which GIO's database does not read.
 * Only a revocation counts here: GIO checked the rest. */
static int
cocoAgentTlsCheckRevoked(CocoAgentTlsHandshake *hs, GError **error)
{
    gnutls_x509_crt_t chain[16];
    gnutls_typed_vdata_st vdata = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID,
        .data = (unsigned char *)(hs->role == COCO_AGENT_TLS_CLIENT
                                      ? GNUTLS_KP_TLS_WWW_SERVER
                                      : GNUTLS_KP_TLS_WWW_CLIENT),
    };
    GTlsCertificate *cert = g_tls_connection_get_peer_certificate(hs->tls);
    g_autofree char *names = NULL;
    unsigned int status = 0;
    unsigned int n = 0;
    unsigned int i;
    int rc;

    if (!hs->creds->crl_path)
        return 0;
    for (; cert && n < G_N_ELEMENTS(chain);
         cert = g_tls_certificate_get_issuer(cert)) {
        if (!(chain[n] = cocoAgentTlsCrtFromGio(cert)))
            break;
        n++;
    }
    if (n == 0)
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' is not authenticated by a certificate"),
            hs->address);
    g_mutex_lock(&hs->creds->lock);
    rc = gnutls_x509_trust_list_verify_crt2(hs->creds->tl, chain, n, &vdata, 1,
                                            0, &status, NULL);
    g_mutex_unlock(&hs->creds->lock);
    names = cocoAgentTlsCertNames(chain[0]);
    for (i = 0; i < n; i++)
        gnutls_x509_crt_deinit(chain[i]);
    if (rc < 0 || (status & GNUTLS_CERT_REVOKED))
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' presented a revoked certificate ('%2$s'): the list in '%3$s' names it"),
            hs->address, names, hs->creds->crl_path);
    return 0;
}

/* TLS 1.3 and our ALPN protocol, whatever the priority string allowed. */
static int
cocoAgentTlsCheckSession(CocoAgentTlsHandshake *hs, GError **error)
{
    GTlsProtocolVersion v = g_tls_connection_get_protocol_version(hs->tls);
    const char *alpn = g_tls_connection_get_negotiated_protocol(hs->tls);

    if (v != G_TLS_PROTOCOL_VERSION_TLS_1_3)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("the peer agent at '%1$s' negotiated '%2$s': only TLS 1.3 is accepted"),
            hs->address, cocoAgentTlsVersionName(v));
    if (!alpn || STRNEQ(alpn, COCO_AGENT_TLS_ALPN))
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("the peer at '%1$s' did not negotiate the protocol '%2$s': it is not a libvirt-coco agent"),
            hs->address, COCO_AGENT_TLS_ALPN);
    return 0;
}

static void
cocoAgentTlsSucceed(GTask *task, CocoAgentTlsHandshake *hs)
{
    hs->peer_identity = cocoAgentTlsGioCertNames(
        g_tls_connection_get_peer_certificate(hs->tls));
    cocoSourceClear(&hs->timer);
    g_task_return_pointer(task, g_object_ref(hs->tls), g_object_unref);
}

static void
cocoAgentTlsOnConfirmSent(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    g_autoptr(GTask) task = opaque;
    CocoAgentTlsHandshake *hs = g_task_get_task_data(task);
    g_autoptr(GError) err = NULL;

    if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(obj), res, NULL,
                                          &err)) {
        cocoAgentTlsFail(task, hs, err);
        return;
    }
    cocoAgentTlsSucceed(task, hs);
}

static void
cocoAgentTlsOnConfirmRead(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    g_autoptr(GTask) task = opaque;
    CocoAgentTlsHandshake *hs = g_task_get_task_data(task);
    g_autoptr(GError) err = NULL;
    gsize got = 0;

    if (!g_input_stream_read_all_finish(G_INPUT_STREAM(obj), res, &got, &err)) {
        cocoAgentTlsFail(task, hs, err);
        return;
    }
    if (got != sizeof(hs->confirm) ||
        memcmp(hs->confirm, cocoAgentTlsConfirm, sizeof(hs->confirm)) != 0) {
        g_autoptr(GError) why = NULL;

        cocoErrorSet(&why, COCO_ERROR_TRANSFER_PROTOCOL, "%s",
                     _("the session ended before the server's confirmation"));
        cocoAgentTlsFail(task, hs, why);
        return;
    }
    cocoAgentTlsSucceed(task, hs);
}

static void
cocoAgentTlsOnHandshake(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    g_autoptr(GTask) task = opaque;
    CocoAgentTlsHandshake *hs = g_task_get_task_data(task);
    g_autoptr(GError) err = NULL;
    GIOStream *io = G_IO_STREAM(hs->tls);

    if (!g_tls_connection_handshake_finish(hs->tls, res, &err) ||
        cocoAgentTlsCheckSession(hs, &err) < 0 ||
        cocoAgentTlsCheckRevoked(hs, &err) < 0) {
        cocoAgentTlsFail(task, hs, err);
        return;
    }
    hs->confirming = true;
    if (hs->role == COCO_AGENT_TLS_SERVER)
        g_output_stream_write_all_async(
            g_io_stream_get_output_stream(io), cocoAgentTlsConfirm,
            sizeof(cocoAgentTlsConfirm), G_PRIORITY_DEFAULT, hs->cancel,
            cocoAgentTlsOnConfirmSent, g_steal_pointer(&task));
    else
        g_input_stream_read_all_async(
            g_io_stream_get_input_stream(io), hs->confirm, sizeof(hs->confirm),
            G_PRIORITY_DEFAULT, hs->cancel, cocoAgentTlsOnConfirmRead,
            g_steal_pointer(&task));
}

static GTlsConnection *
cocoAgentTlsNewConnection(CocoAgentTlsHandshake *hs, GError **error)
{
    static const char *const alpn[] = {COCO_AGENT_TLS_ALPN, NULL};
    g_autoptr(GError) gerr = NULL;
    GIOStream *tls;

    if (hs->role == COCO_AGENT_TLS_CLIENT) {
        g_autoptr(GSocketConnectable) id = NULL;

        if (!hs->expected || !*hs->expected) {
            cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("no host name to check the certificate of the peer agent at '%1$s' against"),
                hs->address);
            return NULL;
        }
        id = g_network_address_new(hs->expected, 0);
        if (!(tls = g_tls_client_connection_new(hs->base, id, &gerr)))
            goto error;
        g_tls_connection_set_certificate(G_TLS_CONNECTION(tls),
                                         hs->creds->client);
    } else {
        if (!(tls = g_tls_server_connection_new(hs->base, hs->creds->server,
                                                &gerr)))
            goto error;
        g_object_set(tls, "authentication-mode", G_TLS_AUTHENTICATION_REQUIRED,
                     NULL);
    }
    g_tls_connection_set_database(G_TLS_CONNECTION(tls), hs->creds->db);
    g_tls_connection_set_advertised_protocols(G_TLS_CONNECTION(tls), alpn);
    g_signal_connect(tls, "accept-certificate",
                     G_CALLBACK(cocoAgentTlsOnAcceptCert), hs);
    return G_TLS_CONNECTION(tls);

error:
    cocoErrorSet(error, COCO_ERROR_NOT_SUPPORTED,
                 _("cannot start TLS with the peer agent at '%1$s': %2$s"),
                 hs->address, gerr->message);
    return NULL;
}

void
cocoAgentTlsHandshakeAsync(CocoAgentTlsCreds *creds, GIOStream *base,
                           CocoAgentTlsRole role, const char *expected_peer,
                           guint timeout_ms, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
    g_autoptr(GTask) task = g_task_new(NULL, NULL, callback, user_data);
    g_autoptr(GMainContext) ctx = g_main_context_ref_thread_default();
    CocoAgentTlsHandshake *hs = g_new0(CocoAgentTlsHandshake, 1);
    GError *error = NULL;

    g_task_set_source_tag(task, cocoAgentTlsHandshakeAsync);
    g_task_set_task_data(task, hs, cocoAgentTlsHandshakeFree);
    hs->creds = cocoAgentTlsCredsRef(creds);
    hs->base = g_object_ref(base);
    hs->role = role;
    hs->address = cocoAgentTlsPeerAddress(base);
    hs->expected = g_strdup(expected_peer);
    hs->timeout_ms = timeout_ms;
    hs->cancel = g_cancellable_new();
    if (!(hs->tls = cocoAgentTlsNewConnection(hs, &error))) {
        g_io_stream_close(base, NULL, NULL);
        g_task_return_error(task, error);
        return;
    }
    hs->timer = g_timeout_source_new(timeout_ms);
    g_source_set_callback(hs->timer, cocoAgentTlsOnDeadline, hs, NULL);
    g_source_attach(hs->timer, ctx);
    if (cancellable) {
        hs->caller = g_object_ref(cancellable);
        hs->caller_id = g_cancellable_connect(
            cancellable, G_CALLBACK(cocoAgentTlsOnCallerCancel),
            g_object_ref(hs->cancel), g_object_unref);
    }
    g_tls_connection_handshake_async(hs->tls, G_PRIORITY_DEFAULT, hs->cancel,
                                     cocoAgentTlsOnHandshake,
                                     g_steal_pointer(&task));
}

GIOStream *
cocoAgentTlsHandshakeFinish(GAsyncResult *res, char **peer_identity,
                            GError **error)
{
    GTask *task = G_TASK(res);
    CocoAgentTlsHandshake *hs = g_task_get_task_data(task);
    GIOStream *tls;

    g_return_val_if_fail(g_task_is_valid(res, NULL), NULL);
    if (!(tls = g_task_propagate_pointer(task, error)))
        return NULL;
    if (peer_identity)
        *peer_identity = g_strdup(hs->peer_identity);
    return tls;
}

/* Whether @crt names @host: GnuTLS's RFC 6125 check (dNSName, iPAddress,
 * the CN of a server certificate without them), and for a certificate
 * without dNSName and iPAddress entries its one CN, whatever its purpose:
 * libvirt's client certificates name their host only there. */
static bool
cocoAgentTlsCertMatches(gnutls_x509_crt_t crt, const char *host)
{
    char buf[COCO_AGENT_TLS_NAME_MAX + 1];
    size_t len;
    unsigned int i;
    int type;

    if (gnutls_x509_crt_check_hostname2(crt, host, 0))
        return true;
    for (i = 0;; i++) {
        len = sizeof(buf);
        type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &len, NULL);
        if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
            continue;
        if (type < 0)
            break;
        if (type == GNUTLS_SAN_DNSNAME || type == GNUTLS_SAN_IPADDRESS)
            return false;
    }
    /* Exactly one CN, printable, equal to @host. */
    len = sizeof(buf);
    if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0,
                                      buf, &len) !=
        GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
        return false;
    len = sizeof(buf) - 1;
    if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
                                      buf, &len) < 0)
        return false;
    buf[MIN(len, sizeof(buf) - 1)] = '\0';
    if (strlen(buf) != len)
        return false;
    for (i = 0; i < len; i++) {
        if (!g_ascii_isgraph(buf[i]))
            return false;
    }
    return g_ascii_strcasecmp(buf, host) == 0;
}

int
cocoAgentTlsPeerCheck(GIOStream *tls, const char *host, GError **error)
{
    g_autofree char *address = cocoAgentTlsPeerAddress(tls);
    g_auto(gnutls_x509_crt_t) crt = NULL;
    g_autofree char *names = NULL;
    GTlsCertificate *cert = NULL;

    if (G_IS_TLS_CONNECTION(tls))
        cert = g_tls_connection_get_peer_certificate(G_TLS_CONNECTION(tls));
    if (!cert || !(crt = cocoAgentTlsCrtFromGio(cert)))
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("the peer agent at '%1$s' is not authenticated by a certificate"),
            address);
    if (host && *host && cocoAgentTlsCertMatches(crt, host))
        return 0;
    names = cocoAgentTlsCertNames(crt);
    return cocoErrorSet(
        error, COCO_ERROR_ACCESS_DENIED,
        _("the peer agent at '%1$s' presented a valid certificate for '%2$s', not for '%3$s'"),
        address, names, NULLSTR(host));
}

int
cocoAgentTlsChannelBinding(GIOStream *tls, GByteArray **out, GError **error)
{
    g_autoptr(GByteArray) data = g_byte_array_new();
    g_autoptr(GError) gerr = NULL;
    g_autofree char *address = cocoAgentTlsPeerAddress(tls);

    if (!G_IS_TLS_CONNECTION(tls))
        return cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("the connection to the peer agent at '%1$s' is not a TLS session"),
            address);
    if (!g_tls_connection_get_channel_binding_data(
            G_TLS_CONNECTION(tls), G_TLS_CHANNEL_BINDING_TLS_EXPORTER, data,
            &gerr))
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("no tls-exporter channel binding for the TLS session with the peer agent at '%1$s': %2$s"),
            address, gerr->message);
    if (data->len != COCO_AGENT_TLS_BINDING_SIZE)
        return cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("the tls-exporter channel binding of the session with the peer agent at '%1$s' has '%2$u' bytes, not '%3$u'"),
            address, data->len, (unsigned int)COCO_AGENT_TLS_BINDING_SIZE);
    *out = g_steal_pointer(&data);
    return 0;
}

int
cocoAgentTlsStreamToken(const GByteArray *binding, guint64 session_id,
                        guint index, guint8 out[COCO_AGENT_TLS_TOKEN_SIZE])
{
    static const char label[] = "coco-stream";
    guint8 msg[sizeof(label) - 1 + 8 + 4];
    g_autoptr(GHmac) hmac = NULL;
    gsize len = COCO_AGENT_TLS_TOKEN_SIZE;
    guint64 sid = GUINT64_TO_BE(session_id);
    guint32 idx = GUINT32_TO_BE(index);

    if (!binding || binding->len < COCO_AGENT_TLS_BINDING_SIZE)
        return -1;
    memcpy(msg, label, sizeof(label) - 1);
    memcpy(msg + sizeof(label) - 1, &sid, 8);
    memcpy(msg + sizeof(label) - 1 + 8, &idx, 4);
    hmac = g_hmac_new(G_CHECKSUM_SHA256, binding->data, binding->len);
    g_hmac_update(hmac, msg, sizeof(msg));
    g_hmac_get_digest(hmac, out, &len);
    return len == COCO_AGENT_TLS_TOKEN_SIZE ? 0 : -1;
}

int
cocoAgentTlsStreamTokenCheck(const GByteArray *binding, guint64 session_id,
                             guint index,
                             const guint8 token[COCO_AGENT_TLS_TOKEN_SIZE],
                             const char *peer, GError **error)
{
    guint8 want[COCO_AGENT_TLS_TOKEN_SIZE];
    guint8 diff = 0;
    size_t i;

    if (cocoAgentTlsStreamToken(binding, session_id, index, want) < 0)
        return cocoErrorSet(
            error, COCO_ERROR_INTERNAL,
            _("no channel binding to check data stream '%1$u' from '%2$s' against"),
            index, NULLSTR(peer));
    for (i = 0; i < sizeof(want); i++)
        diff |= want[i] ^ token[i];
    explicit_bzero(want, sizeof(want));
    if (diff)
        return cocoErrorSet(
            error, COCO_ERROR_ACCESS_DENIED,
            _("data stream '%1$u' from '%2$s' carries a token of another session than '%3$016llx' (spliced or replayed)"),
            index, NULLSTR(peer), (unsigned long long)session_id);
    return 0;
}
