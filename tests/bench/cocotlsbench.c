/*
 * cocotlsbench.c: should the data streams travel inside TLS?
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Not a test: run with "meson test --benchmark -C build cocotlsbench" (or
 * directly: cocotlsbench [MiB], with COCO_TLSGEN naming
 * tests/cocotlsgen.sh). The transfer pipeline (emulated firmware, whose
 * bundles are already sealed with AES-256-GCM) moves a region over
 * loopback TCP three ways, in the same run:
 *
 *   plain   the data streams as they are today (the reference)
 *   token   the same, each stream first carrying the 44-byte hello token
 *           of cocoAgentTlsStreamToken() that the destination checks
 *   tls     each data stream inside its own mutual TLS 1.3 session
 *           (GIO's TLS, glib-networking's GnuTLS backend)
 *
 * and prints MiB per CPU-second of the whole process (both ends, the
 * kernel's share included) and per wall second, and the ratios against
 * plain. docs/virtcocod.rst ("Trust between agents") holds the rule
 * (an authenticated pipeline keeps >= 0.9x plain per CPU-second) and the
 * decision. It also measures the cost of one mutual handshake of the
 * control connection and one TLS stream's throughput through GIO against
 * GnuTLS used directly. Every figure is the best of a few runs.
 */

#include "internal.h"
#include "agent/cocoagenttls.h"
#include "firmware/cocoemu.h"
#include "firmware/cocoemuplatform.h"
#include "transfer/cocodirtybitmap.h"
#include "transfer/cocotransferdest.h"
#include "transfer/cocotransfersource.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define PAGE 4096
#define RUNS 5
#define TOKEN_ROUNDS 100000
#define HELLO_LEN (8 + 4 + COCO_AGENT_TLS_TOKEN_SIZE)

typedef enum {
    MODE_PLAIN = 0,
    MODE_TOKEN,
    MODE_TLS,
    MODE_LAST,
} Mode;

static const char *const modeNames[MODE_LAST] = {"plain", "token", "tls"};

static char *pki;
static CocoAgentTlsCreds *credsA; /* the source */
static CocoAgentTlsCreds *credsB; /* the destination */

static double
now(void)
{
    return (double)g_get_monotonic_time() / 1e6;
}

static double
cpuNow(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
die(const char *what, GError *err)
{
    fprintf(stderr, "%s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

/* A connected loopback TCP pair. */
static void
tcpPair(GIOStream **client, GIOStream **server)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GInetAddress) lo =
        g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
    g_autoptr(GSocketAddress) bound = NULL;
    g_autoptr(GSocket) lsock = NULL;
    g_autoptr(GSocket) csock = NULL;
    g_autoptr(GSocket) ssock = NULL;

    if (!(lsock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                               G_SOCKET_PROTOCOL_TCP, &err)) ||
        !g_socket_bind(lsock, any, TRUE, &err) ||
        !g_socket_listen(lsock, &err) ||
        !(bound = g_socket_get_local_address(lsock, &err)) ||
        !(csock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                               G_SOCKET_PROTOCOL_TCP, &err)) ||
        !g_socket_connect(csock, bound, NULL, &err) ||
        !(ssock = g_socket_accept(lsock, NULL, &err)))
        die("loopback TCP", err);
    g_socket_set_option(csock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
    g_socket_set_option(ssock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
    *client = G_IO_STREAM(g_socket_connection_factory_create_connection(csock));
    *server = G_IO_STREAM(g_socket_connection_factory_create_connection(ssock));
}

typedef struct {
    GIOStream *tls;
    GError *error;
    bool done;
} Side;

static void
onHandshake(GObject *src, GAsyncResult *res, gpointer opaque)
{
    Side *s = opaque;

    s->tls = cocoAgentTlsHandshakeFinish(res, NULL, &s->error);
    s->done = true;
}

/* One mutual handshake, A the client, B the server: the two TLS streams
 * replace *@a and *@b. */
static void
handshake(GIOStream **a, GIOStream **b)
{
    Side c = {0}, s = {0};

    cocoAgentTlsHandshakeAsync(credsB, *b, COCO_AGENT_TLS_SERVER, NULL, 10000,
                               NULL, onHandshake, &s);
    cocoAgentTlsHandshakeAsync(credsA, *a, COCO_AGENT_TLS_CLIENT, "hostB",
                               10000, NULL, onHandshake, &c);
    while (!c.done || !s.done)
        g_main_context_iteration(NULL, TRUE);
    if (!c.tls)
        die("client handshake", c.error);
    if (!s.tls)
        die("server handshake", s.error);
    g_object_unref(*a);
    g_object_unref(*b);
    *a = c.tls;
    *b = s.tls;
}

static void
keyExchange(CocoFirmware *s, CocoFirmware *d)
{
    uint8_t m[COCO_EMU_PREPARE_MSG_MAX], e[COCO_EMU_PREPARE_MSG_MAX];
    size_t len = 0, elen = 0;

    if (cocoFirmwareMigrateCmd(s, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                               NULL) != -EAGAIN ||
        cocoFirmwareMigrateCmd(d, COCO_MIGRATE_CMD_PREPARE, 0, e, &elen, NULL,
                               NULL) != -EAGAIN ||
        cocoFirmwareMigrateCmd(d, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                               NULL) != -EAGAIN ||
        cocoFirmwareMigrateCmd(s, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                               NULL) != 0 ||
        cocoFirmwareMigrateCmd(d, COCO_MIGRATE_CMD_PREPARE, 0, m, &len, NULL,
                               NULL) != 0)
        die("key exchange", NULL);
}

/* The stream hellos of MODE_TOKEN: session, index, token; the destination
 * reads and checks each. */
static void
streamTokens(GIOStream **sio, GIOStream **dio, unsigned int streams,
             const GByteArray *binding, guint64 session)
{
    g_autoptr(GError) err = NULL;
    unsigned int i;

    for (i = 0; i < streams; i++) {
        guint8 hello[HELLO_LEN];
        guint64 sid = GUINT64_TO_BE(session);
        guint32 idx = GUINT32_TO_BE(i);

        memcpy(hello, &sid, 8);
        memcpy(hello + 8, &idx, 4);
        if (cocoAgentTlsStreamToken(binding, session, i, hello + 12) < 0 ||
            !g_output_stream_write_all(g_io_stream_get_output_stream(sio[i]),
                                       hello, sizeof(hello), NULL, NULL, &err))
            die("stream hello", err);
    }
    for (i = 0; i < streams; i++) {
        guint8 hello[HELLO_LEN];
        gsize got = 0;
        guint64 sid;
        guint32 idx;

        if (!g_input_stream_read_all(g_io_stream_get_input_stream(dio[i]),
                                     hello, sizeof(hello), &got, NULL, &err) ||
            got != sizeof(hello))
            die("stream hello", err);
        memcpy(&sid, hello, 8);
        memcpy(&idx, hello + 8, 4);
        if (cocoAgentTlsStreamTokenCheck(binding, GUINT64_FROM_BE(sid),
                                         GUINT32_FROM_BE(idx), hello + 12,
                                         "loopback", &err) < 0)
            die("stream token", err);
    }
}

/* One whole-memory migration of @mem to @dmem over @streams loopback TCP
 * streams in @mode. *@cpu gets the CPU seconds; returns wall seconds. */
static double
pipeline(uint8_t *mem, uint8_t *dmem, size_t size, unsigned int streams,
         unsigned int ppb, Mode mode, const GByteArray *binding, double *cpu)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoEmuPlatform) pf = cocoEmuPlatformNew(&err);
    g_autoptr(CocoFirmware) sfw = NULL;
    g_autoptr(CocoFirmware) dfw = NULL;
    g_autoptr(CocoDirtySource) dirty = cocoDirtyBitmapNew(size / PAGE);
    g_autoptr(CocoTransferSource) src = NULL;
    g_autoptr(CocoTransferDest) dst = NULL;
    g_autofree GIOStream **sio = g_new0(GIOStream *, streams);
    g_autofree GIOStream **dio = g_new0(GIOStream *, streams);
    CocoTransferConfig cfg;
    CocoMigrationDef def;
    CocoFirmwareVm vm = {.uuid = {0x42}, .nvcpus = 1, .memory = size};
    unsigned int i;
    double t0, c0, t;

    memset(&def, 0, sizeof(def));
    def.has_streams = true;
    def.forward_streams = streams;
    if (!pf ||
        !(sfw = cocoEmuNew(COCO_FIRMWARE_ROLE_SOURCE, pf, &def, &vm, &err)) ||
        !(dfw = cocoEmuNew(COCO_FIRMWARE_ROLE_DESTINATION, pf, &def, &vm,
                           &err)) ||
        cocoEmuAttachMemory(sfw, mem, size, &err) < 0 ||
        cocoEmuAttachMemory(dfw, dmem, size, &err) < 0)
        die("emulated firmware", err);
    keyExchange(sfw, dfw);
    /* Connections and handshakes exist before the clock runs, as the
     * agents open them before the transfer starts. */
    for (i = 0; i < streams; i++) {
        tcpPair(&sio[i], &dio[i]);
        if (mode == MODE_TLS)
            handshake(&sio[i], &dio[i]);
    }
    cocoTransferConfigInit(&cfg, NULL);
    cfg.streams = streams;
    cfg.pages_per_bundle = ppb;

    c0 = cpuNow();
    t0 = now();
    if (mode == MODE_TOKEN)
        streamTokens(sio, dio, streams, binding, 0x1122334455667788ULL);
    if (!(dst = cocoTransferDestNew(dfw, &cfg, dio, &err)) ||
        !(src = cocoTransferSourceNew(sfw, dirty, &cfg, sio, &err)) ||
        cocoTransferDestStart(dst, &err) < 0 ||
        cocoTransferSourceStart(src, &err) < 0 ||
        cocoTransferSourceSync(src, &err) < 0 ||
        cocoFirmwareMigrateCmd(sfw, COCO_MIGRATE_CMD_SOURCE_BLACKOUT, 0, NULL,
                               NULL, NULL, &err) < 0 ||
        cocoTransferSourceFinish(src, 1, &err) < 0 ||
        cocoTransferDestWait(dst, &err) < 0)
        die("migration", err);
    t = now() - t0;
    *cpu = cpuNow() - c0;
    if (memcmp(mem, dmem, size) != 0)
        die("destination memory differs", NULL);
    g_clear_pointer(&src, cocoTransferSourceFree);
    g_clear_pointer(&dst, cocoTransferDestFree);
    for (i = 0; i < streams; i++) {
        g_object_unref(sio[i]);
        g_object_unref(dio[i]);
    }
    return t;
}

/* One TLS stream's throughput: @size bytes from one thread to another
 * through GIO's TLS, then through GnuTLS sessions used directly (same
 * priority, same certificates). */
typedef struct {
    GIOStream *io;
    gnutls_session_t sess;
    size_t size;
} Pump;

static gpointer
gioWriter(gpointer opaque)
{
    Pump *p = opaque;
    g_autofree guint8 *buf = g_malloc0(65536);
    size_t done = 0;

    while (done < p->size) {
        if (!g_output_stream_write_all(g_io_stream_get_output_stream(p->io),
                                       buf, 65536, NULL, NULL, NULL))
            die("GIO TLS write", NULL);
        done += 65536;
    }
    return NULL;
}

static double
gioStream(size_t size, double *cpu)
{
    g_autoptr(GIOStream) a = NULL;
    g_autoptr(GIOStream) b = NULL;
    g_autofree guint8 *buf = g_malloc(65536);
    Pump p;
    GThread *th;
    size_t done = 0;
    double t0, c0, t;

    tcpPair(&a, &b);
    handshake(&a, &b);
    p.io = a;
    p.size = size;
    c0 = cpuNow();
    t0 = now();
    th = g_thread_new("gio-writer", gioWriter, &p);
    while (done < size) {
        gssize n = g_input_stream_read(g_io_stream_get_input_stream(b), buf,
                                       65536, NULL, NULL);

        if (n <= 0)
            die("GIO TLS read", NULL);
        done += (size_t)n;
    }
    g_thread_join(th);
    t = now() - t0;
    *cpu = cpuNow() - c0;
    return t;
}

static gpointer
gnutlsWriter(gpointer opaque)
{
    Pump *p = opaque;
    g_autofree guint8 *buf = g_malloc0(65536);
    size_t done = 0;

    while (done < p->size) {
        ssize_t n = gnutls_record_send(p->sess, buf, 65536);

        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n < 0)
            die("GnuTLS send", NULL);
        done += (size_t)n;
    }
    return NULL;
}

typedef struct {
    gnutls_session_t sess;
    int rc;
} Hs;

static gpointer
gnutlsHandshake(gpointer opaque)
{
    Hs *h = opaque;

    do {
        h->rc = gnutls_handshake(h->sess);
    } while (h->rc < 0 && !gnutls_error_is_fatal(h->rc));
    return NULL;
}

static gnutls_certificate_credentials_t
gnutlsCreds(const char *host, const char *role)
{
    g_autofree char *ca = g_build_filename(pki, host, "cacert.pem", NULL);
    g_autofree char *cn = g_strdup_printf("%scert.pem", role);
    g_autofree char *kn = g_strdup_printf("private/%skey.pem", role);
    g_autofree char *cert = g_build_filename(pki, host, cn, NULL);
    g_autofree char *key = g_build_filename(pki, host, kn, NULL);
    gnutls_certificate_credentials_t c;

    if (gnutls_certificate_allocate_credentials(&c) < 0 ||
        gnutls_certificate_set_x509_trust_file(c, ca, GNUTLS_X509_FMT_PEM) <
            0 ||
        gnutls_certificate_set_x509_key_file(c, cert, key,
                                             GNUTLS_X509_FMT_PEM) < 0)
        die("GnuTLS credentials", NULL);
    return c;
}

static double
gnutlsStream(size_t size, double *cpu)
{
    g_autoptr(GIOStream) a = NULL;
    g_autoptr(GIOStream) b = NULL;
    g_autofree guint8 *buf = g_malloc(65536);
    gnutls_certificate_credentials_t cc = gnutlsCreds("hostA", "client");
    gnutls_certificate_credentials_t sc = gnutlsCreds("hostB", "server");
    gnutls_session_t cs = NULL, ss = NULL;
    Hs hc, hsrv;
    GThread *t1, *t2, *th;
    Pump p;
    size_t done = 0;
    double t0, c0, t;

    tcpPair(&a, &b);
    if (gnutls_init(&cs, GNUTLS_CLIENT) < 0 ||
        gnutls_init(&ss, GNUTLS_SERVER) < 0 ||
        gnutls_priority_set_direct(cs, COCO_AGENT_TLS_PRIORITY, NULL) < 0 ||
        gnutls_priority_set_direct(ss, COCO_AGENT_TLS_PRIORITY, NULL) < 0)
        die("GnuTLS session", NULL);
    gnutls_credentials_set(cs, GNUTLS_CRD_CERTIFICATE, cc);
    gnutls_credentials_set(ss, GNUTLS_CRD_CERTIFICATE, sc);
    gnutls_certificate_server_set_request(ss, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_cert(cs, "hostB", 0);
    gnutls_transport_set_int(cs, g_socket_get_fd(g_socket_connection_get_socket(
                                     G_SOCKET_CONNECTION(a))));
    gnutls_transport_set_int(ss, g_socket_get_fd(g_socket_connection_get_socket(
                                     G_SOCKET_CONNECTION(b))));
    hc.sess = cs;
    hsrv.sess = ss;
    t1 = g_thread_new("hs-client", gnutlsHandshake, &hc);
    t2 = g_thread_new("hs-server", gnutlsHandshake, &hsrv);
    g_thread_join(t1);
    g_thread_join(t2);
    if (hc.rc < 0 || hsrv.rc < 0)
        die("GnuTLS handshake", NULL);

    p.sess = cs;
    p.size = size;
    c0 = cpuNow();
    t0 = now();
    th = g_thread_new("gnutls-writer", gnutlsWriter, &p);
    while (done < size) {
        ssize_t n = gnutls_record_recv(ss, buf, 65536);

        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n <= 0)
            die("GnuTLS recv", NULL);
        done += (size_t)n;
    }
    g_thread_join(th);
    t = now() - t0;
    *cpu = cpuNow() - c0;
    gnutls_deinit(cs);
    gnutls_deinit(ss);
    gnutls_certificate_free_credentials(cc);
    gnutls_certificate_free_credentials(sc);
    return t;
}

static void
makePki(void)
{
    g_autoptr(GError) err = NULL;
    const char *script = g_getenv("COCO_TLSGEN");
    const char *argv[] = {"/bin/sh", script, NULL, NULL};
    g_autofree char *errout = NULL;
    int status = 0;

    if (!script)
        die("COCO_TLSGEN (tests/cocotlsgen.sh) is not set", NULL);
    if (!(pki = g_dir_make_tmp("cocotlsbench-XXXXXX", &err)))
        die("temporary directory", err);
    argv[2] = pki;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                      NULL, &errout, &status, &err) ||
        !g_spawn_check_wait_status(status, NULL)) {
        fprintf(stderr, "%s", errout ? errout : "");
        die(script, err);
    }
}

static CocoAgentTlsCreds *
loadCreds(const char *host)
{
    g_autoptr(GError) err = NULL;
    CocoAgentTlsConfig cfg;
    CocoAgentTlsCreds *creds;

    cocoAgentTlsConfigInit(&cfg);
    g_free(cfg.ca_cert);
    g_free(cfg.server_cert);
    g_free(cfg.server_key);
    g_free(cfg.client_cert);
    g_free(cfg.client_key);
    cfg.ca_cert = g_build_filename(pki, host, "cacert.pem", NULL);
    cfg.server_cert = g_build_filename(pki, host, "servercert.pem", NULL);
    cfg.server_key =
        g_build_filename(pki, host, "private", "serverkey.pem", NULL);
    cfg.client_cert = g_build_filename(pki, host, "clientcert.pem", NULL);
    cfg.client_key =
        g_build_filename(pki, host, "private", "clientkey.pem", NULL);
    if (!(creds = cocoAgentTlsCredsLoad(&cfg, &err)))
        die("credentials", err);
    cocoAgentTlsConfigClear(&cfg);
    return creds;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GByteArray) binding = NULL;
    size_t mib = argc > 1 ? (size_t)g_ascii_strtoull(argv[1], NULL, 10) : 256;
    static const struct {
        unsigned int streams;
        unsigned int ppb;
    } shapes[] = {{4, 64}, {1, 512}};
    const char *rm[] = {"rm", "-rf", NULL, NULL};
    uint8_t *mem, *dmem;
    double hswall = 1e9, hscpu = 1e9;
    size_t size, i;
    double mb;
    int r;

    if (mib == 0)
        mib = 256;
    size = mib * 1024 * 1024;
    mb = (double)mib;
    if (cocoAgentTlsInit(&err) < 0)
        die("TLS", err);
    makePki();
    credsA = loadCreds("hostA");
    credsB = loadCreds("hostB");

    printf("# libvirt-coco TLS benchmark, %zu MiB region over loopback TCP, "
           "best of %d; cpu = MiB per CPU second of the whole process (both "
           "ends), wall = MiB per elapsed second\n",
           mib, RUNS);

    /* The control connection's mutual handshake (the binding comes from
     * it). */
    for (r = 0; r < RUNS; r++) {
        g_autoptr(GIOStream) a = NULL;
        g_autoptr(GIOStream) b = NULL;
        double c0, t0;

        tcpPair(&a, &b);
        c0 = cpuNow();
        t0 = now();
        handshake(&a, &b);
        hswall = MIN(hswall, now() - t0);
        hscpu = MIN(hscpu, cpuNow() - c0);
        if (!binding && cocoAgentTlsChannelBinding(a, &binding, &err) < 0)
            die("channel binding", err);
    }
    printf("mutual TLS 1.3 handshake (both ends, %s): wall %.2f ms, cpu %.2f "
           "ms\n",
           COCO_AGENT_TLS_PRIORITY, hswall * 1e3, hscpu * 1e3);

    /* What a token costs a stream: made by the source, checked by the
     * destination, once per stream and migration. */
    {
        guint8 tok[COCO_AGENT_TLS_TOKEN_SIZE];
        double c0 = cpuNow();

        for (r = 0; r < TOKEN_ROUNDS; r++) {
            if (cocoAgentTlsStreamToken(binding, 1, (guint)r, tok) < 0 ||
                cocoAgentTlsStreamTokenCheck(binding, 1, (guint)r, tok,
                                             "loopback", &err) < 0)
                die("stream token", err);
        }
        printf("stream token made and checked: cpu %.2f us per stream\n",
               (cpuNow() - c0) / TOKEN_ROUNDS * 1e6);
    }

    mem = g_aligned_alloc(size, 1, PAGE);
    dmem = g_aligned_alloc0(size, 1, PAGE);
    for (i = 0; i < size / 8; i++)
        ((uint64_t *)(void *)mem)[i] = (uint64_t)i * 0x9E3779B97F4A7C15ULL;

    for (i = 0; i < G_N_ELEMENTS(shapes); i++) {
        double wall[MODE_LAST], cpu[MODE_LAST];
        Mode m;

        for (m = 0; m < MODE_LAST; m++)
            wall[m] = cpu[m] = 1e9;
        /* Interleaved, so that a change in the machine's load hits every
         * mode alike. */
        for (r = 0; r < RUNS; r++) {
            for (m = 0; m < MODE_LAST; m++) {
                double c = 0;

                memset(dmem, 0, size);
                wall[m] =
                    MIN(wall[m], pipeline(mem, dmem, size, shapes[i].streams,
                                          shapes[i].ppb, m, binding, &c));
                cpu[m] = MIN(cpu[m], c);
            }
        }
        for (m = 0; m < MODE_LAST; m++)
            printf("pipeline %u stream(s) x %u pages/bundle, %s streams: "
                   "wall %.0f cpu %.0f MiB/s; vs plain wall %.2f cpu %.2f\n",
                   shapes[i].streams, shapes[i].ppb, modeNames[m], mb / wall[m],
                   mb / cpu[m], wall[MODE_PLAIN] / wall[m],
                   cpu[MODE_PLAIN] / cpu[m]);
    }

    {
        double gw = 1e9, gc = 1e9, nw = 1e9, nc = 1e9;

        for (r = 0; r < RUNS; r++) {
            double c;

            gw = MIN(gw, gioStream(size, &c));
            gc = MIN(gc, c);
            nw = MIN(nw, gnutlsStream(size, &c));
            nc = MIN(nc, c);
        }
        printf("one TLS 1.3 stream, GnuTLS %s directly: wall %.0f cpu %.0f "
               "MiB/s\n",
               gnutls_check_version(NULL), mb / nw, mb / nc);
        printf("one TLS 1.3 stream through GIO (glib-networking): wall %.0f "
               "cpu %.0f MiB/s; vs GnuTLS directly wall %.2f cpu %.2f\n",
               mb / gw, mb / gc, nw / gw, nc / gc);
    }

    g_aligned_free(mem);
    g_aligned_free(dmem);
    cocoAgentTlsCredsUnref(credsA);
    cocoAgentTlsCredsUnref(credsB);
    rm[2] = pki;
    g_spawn_sync(NULL, (char **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                 NULL, NULL, NULL);
    g_free(pki);
    return 0;
}
