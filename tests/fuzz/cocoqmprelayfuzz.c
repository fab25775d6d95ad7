/*
 * cocoqmprelayfuzz.c: libFuzzer target for qemu-coco's QMP relay
 * (cocoqmprelay.h): what QEMU and libvirt send one relay session, line by
 * line, through the relay's own channels, its id routing, its migration
 * and hot-plug handling and its gates. Neither side is trusted.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzing=true
 * Run:   build-fuzz/tests/fuzz/cocoqmprelayfuzz -max_total_time=600 \
 *            tests/fuzz/cocoqmprelaycorpus
 *
 * Input: one byte of options (bit 0: the relay has an agent; bit 1: the
 * agent releases its gates, else it refuses them; bit 2: it answers only
 * when it goes away; bit 3: the guest has a wide AMD vIOMMU, so a VFIO
 * hot-plug goes through the 'hostdev' gate), then lines, each starting with who sends it: 'L'
 * libvirt, 'F' libvirt with a descriptor attached (one end of a new
 * socketpair, as libvirt passes with 'getfd' and 'add-fd'), anything else
 * QEMU (a leading 'Q' is dropped). A line keeps its '\n'; the last one
 * may have none. The corpus started from the lab's QMP traces of both
 * hosts (``qmp_log_dir``, docs/qemu-coco.rst), one seed per QEMU.
 *
 * Checks beyond ASan and UBSan: every line the relay sends QEMU is one
 * JSON object (libvirt's text that is not never reaches it, and neither
 * does anything else); the relay survives every input and frees all it
 * made.
 */

#include "internal.h"
#include "qmp/cocoqmpagent.h"
#include "qmp/cocoqmpmessage.h"
#include "qmp/cocoqmprelay.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    FUZZ_AGENT = 1 << 0,
    FUZZ_RELEASE = 1 << 1,
    FUZZ_DEFER = 1 << 2,
    FUZZ_VIOMMU = 1 << 3,
};

/* A verdict the agent keeps until it goes away. */
typedef struct {
    CocoQmpAgentVerdictFunc cb;
    gpointer opaque;
} FuzzVerdict;

typedef struct {
    unsigned int options;
    GArray *pending; /* FuzzVerdict */
} FuzzAgent;

static void
fuzzAgentNotify(CocoQmpAgent *agent G_GNUC_UNUSED,
                const char *event G_GNUC_UNUSED, JsonObject *data G_GNUC_UNUSED)
{
}

static void
fuzzAgentGate(CocoQmpAgent *agent, CocoQmpGate gate G_GNUC_UNUSED,
              CocoQmpRole role G_GNUC_UNUSED, CocoQmpAgentVerdictFunc cb,
              gpointer opaque)
{
    FuzzAgent *fa = cocoQmpAgentGetData(agent);
    FuzzVerdict v = {cb, opaque};

    if (fa->options & FUZZ_DEFER) {
        g_array_append_val(fa->pending, v);
        return;
    }
    if (fa->options & FUZZ_RELEASE)
        cb(TRUE, NULL, opaque);
    else
        cb(FALSE, "the fuzzer says no", opaque);
}

static void
fuzzAgentDispose(CocoQmpAgent *agent)
{
    FuzzAgent *fa = cocoQmpAgentGetData(agent);
    guint i;

    for (i = 0; i < fa->pending->len; i++) {
        FuzzVerdict *v = &g_array_index(fa->pending, FuzzVerdict, i);

        v->cb(FALSE, "gone", v->opaque);
    }
    g_array_set_size(fa->pending, 0);
}

static const CocoQmpAgentOps fuzzAgentOps = {
    .notify = fuzzAgentNotify,
    .gate = fuzzAgentGate,
    .dispose = fuzzAgentDispose,
};

/* One end the fuzzer holds: what the relay sent it, not yet a whole
 * line. */
typedef struct {
    int fd;
    GString *partial;
} FuzzPeer;

static void
fuzzPump(GMainContext *ctx)
{
    unsigned int i;

    for (i = 0; i < 64 && g_main_context_iteration(ctx, FALSE); i++)
        ;
}

/* Read what the relay sent; for QEMU's end (@qemu), check each line. */
static void
fuzzDrain(FuzzPeer *p, bool qemu)
{
    char buf[65536];
    ssize_t n;
    char *nl;

    while ((n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        if (!qemu)
            continue;
        g_string_append_len(p->partial, buf, n);
        while ((nl = memchr(p->partial->str, '\n', p->partial->len))) {
            gsize len = (gsize)(nl - p->partial->str) + 1;
            g_autoptr(GError) err = NULL;
            g_autoptr(CocoQmpMessage) msg =
                cocoQmpMessageParse(p->partial->str, len, &err);

            if (!msg)
                abort();
            g_string_erase(p->partial, 0, (gssize)len);
        }
    }
}

/* Send @data with a descriptor attached to its first byte. */
static size_t
fuzzSendFd(FuzzPeer *p, const uint8_t *data, size_t len)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {(void *)data, len};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = u.buf,
                        .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c;
    int sp[2];
    ssize_t n;

    if (len == 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return 0;
    memset(&u, 0, sizeof(u));
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &sp[1], sizeof(int));
    n = sendmsg(p->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    close(sp[0]);
    close(sp[1]);
    return n > 0 ? (size_t)n : len;
}

static void
fuzzSend(FuzzPeer *p, const uint8_t *data, size_t len, bool withFd)
{
    if (withFd) {
        size_t n = fuzzSendFd(p, data, len);

        data += n;
        len -= n;
    }
    while (len > 0) {
        ssize_t n = send(p->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n <= 0)
            return; /* closed by the relay, or full: the rest is lost */
        data += n;
        len -= (size_t)n;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GMainContext *ctx;
    CocoQmpRelay *relay;
    CocoQmpAgent *agent = NULL;
    FuzzAgent fa = {0};
    FuzzPeer libvirt = {-1, NULL};
    FuzzPeer qemu = {-1, NULL};
    int a[2], b[2];
    size_t off = 1;

    if (size < 1)
        return 0;
    fa.options = data[0];
    fa.pending = g_array_new(FALSE, FALSE, sizeof(FuzzVerdict));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) < 0)
        abort();
    ctx = g_main_context_new();
    g_main_context_push_thread_default(ctx);
    if (fa.options & FUZZ_AGENT)
        agent = cocoQmpAgentNew(&fuzzAgentOps, &fa);
    relay = cocoQmpRelayNew(ctx, agent);
    if (fa.options & FUZZ_VIOMMU)
        cocoQmpRelaySetViommu(relay, "amd", 0);
    libvirt = (FuzzPeer){a[0], g_string_new(NULL)};
    qemu = (FuzzPeer){b[0], g_string_new(NULL)};
    if (cocoQmpRelayAddSession(relay, a[1], b[1], NULL) < 0)
        abort();

    while (off < size) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t end = nl ? (size_t)(nl - data) + 1 : size;
        bool withFd = data[off] == 'F';
        bool fromLibvirt = withFd || data[off] == 'L';
        size_t start = off + (fromLibvirt || data[off] == 'Q' ? 1 : 0);

        fuzzSend(fromLibvirt ? &libvirt : &qemu, data + start, end - start,
                 withFd);
        off = end;
        fuzzPump(ctx);
        fuzzDrain(&libvirt, false);
        fuzzDrain(&qemu, true);
    }

    cocoQmpRelayFree(relay);
    fuzzPump(ctx);
    fuzzDrain(&qemu, true);
    close(libvirt.fd);
    close(qemu.fd);
    g_string_free(libvirt.partial, TRUE);
    g_string_free(qemu.partial, TRUE);
    g_array_unref(fa.pending);
    g_main_context_pop_thread_default(ctx);
    g_main_context_unref(ctx);
    return 0;
}
