/*
 * cocoqmptest.c: tests of src/qmp, the QMP relay, against in-process fake
 * libvirt and QEMU peers on socketpairs (no QEMU needed)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "qmp/cocoqmpagent.h"
#include "proto/cocoprotorelay.h"
#include "qmp/cocoqmpchannel.h"
#include "qmp/cocoqmpguest.h"
#include "qmp/cocoqmphostdev.h"
#include "qmp/cocoqmplinebuf.h"
#include "qmp/cocoqmpmessage.h"
#include "qmp/cocoqmpmigration.h"
#include "qmp/cocoqmpprecopy.h"
#include "qmp/cocoqmprelay.h"
#include "qmp/cocoqmpprecopy.h"
#include "qmp/cocoqmpvfioreport.h"
#include "util/cocoerror.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Long enough to never fire on a loaded machine; only failures wait. */
#define TEST_TIMEOUT_MS 10000

/* ---- message ---- */

static void
testMessageKinds(void)
{
    static const struct {
        const char *text;
        CocoQmpKind kind;
        const char *name;
    } cases[] = {
        {"{\"QMP\": {\"version\": {}}}\r\n", COCO_QMP_KIND_GREETING, NULL},
        {"{\"execute\":\"cont\",\"id\":\"libvirt-1\"}\r\n",
         COCO_QMP_KIND_COMMAND, "cont"},
        {"{\"exec-oob\":\"migrate-pause\"}", COCO_QMP_KIND_COMMAND,
         "migrate-pause"},
        {"{\"return\": {}, \"id\": \"libvirt-1\"}\n", COCO_QMP_KIND_REPLY,
         NULL},
        {"{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}}",
         COCO_QMP_KIND_REPLY, NULL},
        {"{\"event\": \"STOP\", \"timestamp\": {}}", COCO_QMP_KIND_EVENT,
         "STOP"},
        {"{\"foo\": 1}", COCO_QMP_KIND_OTHER, NULL},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(CocoQmpMessage) msg = NULL;

        msg = cocoQmpMessageParse(cases[i].text, strlen(cases[i].text), &err);
        g_assert_no_error(err);
        g_assert_cmpint(msg->kind, ==, cases[i].kind);
        g_assert_cmpstr(msg->name, ==, cases[i].name);
    }
}

static void
testMessageInvalid(void)
{
    static const char *const bad[] = {
        "", "\r\n", "{\"execute\":", "[1,2]", "42", "{\"a\":1} {\"b\":2}"};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(CocoQmpMessage) msg = NULL;

        msg = cocoQmpMessageParse(bad[i], strlen(bad[i]), &err);
        g_assert_null(msg);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_QMP_PROTOCOL);
    }
}

static void
testMessageIdAndBuild(void)
{
    const char *text = "{\"execute\":\"migrate\",\"arguments\":{\"uri\":"
                       "\"fd:migrate\"},\"id\":{\"n\":[1,\"a\"]}}";
    g_autoptr(CocoQmpMessage) msg = NULL;
    g_autoptr(CocoQmpMessage) back = NULL;
    g_autofree char *key = NULL;
    g_autofree char *err = NULL;

    msg = cocoQmpMessageParse(text, strlen(text), NULL);
    g_assert_nonnull(msg);
    key = cocoQmpMessageIdKey(msg);
    g_assert_cmpstr(key, ==, "{\"n\":[1,\"a\"]}");
    g_assert_cmpstr(cocoQmpMessageGetArgString(msg, "uri"), ==, "fd:migrate");
    g_assert_null(cocoQmpMessageGetArgString(msg, "nope"));

    /* An error reply echoes the id whatever its JSON type. */
    err = cocoQmpBuildError("GenericError", "no \"way\"", msg->id);
    g_assert_true(g_str_has_suffix(err, "\r\n"));
    back = cocoQmpMessageParse(err, strlen(err), NULL);
    g_assert_nonnull(back);
    g_assert_true(cocoQmpMessageIsError(back));
    g_assert_cmpstr(cocoQmpMessageErrorDesc(back), ==, "no \"way\"");
    g_free(key);
    key = cocoQmpMessageIdKey(back);
    g_assert_cmpstr(key, ==, "{\"n\":[1,\"a\"]}");
}

/* ---- framing ---- */

static int
testPipeFd(int *other)
{
    int p[2];

    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
    *other = p[1];
    return p[0];
}

static void
testLineBufSplit(void)
{
    g_autoptr(CocoQmpLineBuf) lb = cocoQmpLineBufNew(1024);
    g_autoptr(CocoQmpLine) l1 = NULL;
    g_autoptr(CocoQmpLine) l2 = NULL;
    g_autoptr(CocoQmpLine) l3 = NULL;

    g_assert_cmpint(cocoQmpLineBufFeed(lb, "{\"a\"", 4, NULL, 0, NULL), ==, 0);
    g_assert_null(cocoQmpLineBufPop(lb));
    g_assert_cmpint(
        cocoQmpLineBufFeed(lb, ":1}\r\n{\"b\":2}\n{\"c\"", 17, NULL, 0, NULL),
        ==, 0);
    l1 = cocoQmpLineBufPop(lb);
    l2 = cocoQmpLineBufPop(lb);
    g_assert_nonnull(l1);
    g_assert_nonnull(l2);
    g_assert_null(cocoQmpLineBufPop(lb));
    g_assert_cmpstr(l1->data, ==, "{\"a\":1}\r\n");
    g_assert_cmpuint(l1->len, ==, 9);
    g_assert_cmpstr(l2->data, ==, "{\"b\":2}\n");
    g_assert_cmpuint(cocoQmpLineBufPending(lb), ==, 4);
    g_assert_cmpint(cocoQmpLineBufFeed(lb, ":3}\n", 4, NULL, 0, NULL), ==, 0);
    l3 = cocoQmpLineBufPop(lb);
    g_assert_cmpstr(l3->data, ==, "{\"c\":3}\n");
    g_assert_cmpuint(cocoQmpLineBufPending(lb), ==, 0);
}

static void
testLineBufFds(void)
{
    g_autoptr(CocoQmpLineBuf) lb = cocoQmpLineBufNew(1024);
    g_autoptr(CocoQmpLine) l1 = NULL;
    g_autoptr(CocoQmpLine) l2 = NULL;
    g_autoptr(CocoQmpLine) l3 = NULL;
    int w1, w2;
    int fd1 = testPipeFd(&w1);
    int fd2 = testPipeFd(&w2);

    /* fd1 arrives with the rest of line 1; fd2 with the start of line 3. */
    g_assert_cmpint(cocoQmpLineBufFeed(lb, "{\"x\":", 5, NULL, 0, NULL), ==, 0);
    g_assert_cmpint(
        cocoQmpLineBufFeed(lb, "1}\n{\"y\":2}\n", 11, &fd1, 1, NULL), ==, 0);
    g_assert_cmpint(cocoQmpLineBufFeed(lb, "{\"z\":3}\n", 8, &fd2, 1, NULL), ==,
                    0);
    l1 = cocoQmpLineBufPop(lb);
    l2 = cocoQmpLineBufPop(lb);
    l3 = cocoQmpLineBufPop(lb);
    g_assert_cmpuint(l1->nfds, ==, 1);
    g_assert_cmpint(l1->fds[0], ==, fd1);
    g_assert_cmpuint(l2->nfds, ==, 0);
    g_assert_cmpuint(l3->nfds, ==, 1);
    g_assert_cmpint(l3->fds[0], ==, fd2);
    close(w1);
    close(w2);
}

static void
testLineBufTooLong(void)
{
    g_autoptr(CocoQmpLineBuf) lb = cocoQmpLineBufNew(8);
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoQmpLine) l = NULL;

    g_assert_cmpint(cocoQmpLineBufFeed(lb, "1234567\n", 8, NULL, 0, NULL), ==,
                    0);
    l = cocoQmpLineBufPop(lb);
    g_assert_nonnull(l);
    g_assert_cmpint(cocoQmpLineBufFeed(lb, "123456789", 9, NULL, 0, &err), ==,
                    -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_QMP_PROTOCOL);
}

/* ---- fake peers ---- */

typedef struct {
    int fd;
    CocoQmpLineBuf *lb;
} TestPeer;

static void
testPeerInit(TestPeer *p, int fd)
{
    p->fd = fd;
    p->lb = cocoQmpLineBufNew(1 << 20);
}

static void
testPeerClear(TestPeer *p)
{
    cocoQmpLineBufFree(p->lb);
    if (p->fd >= 0)
        close(p->fd);
}

static void
testPeerSend(TestPeer *p, const char *text, int fd)
{
    struct msghdr msg = {0};
    struct iovec iov = {(void *)text, strlen(text)};
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } cbuf;

    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
        struct cmsghdr *c;

        memset(&cbuf, 0, sizeof(cbuf));
        msg.msg_control = cbuf.buf;
        msg.msg_controllen = sizeof(cbuf.buf);
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    g_assert_cmpint(sendmsg(p->fd, &msg, MSG_NOSIGNAL), ==,
                    (ssize_t)strlen(text));
}

/* Run the relay's main loop until @p has a complete line (or EOF: NULL). */
static CocoQmpLine *
testPeerRead(TestPeer *p)
{
    gint64 deadline = g_get_monotonic_time() + TEST_TIMEOUT_MS * 1000;

    for (;;) {
        CocoQmpLine *line = cocoQmpLineBufPop(p->lb);
        union {
            struct cmsghdr hdr;
            char buf[CMSG_SPACE(sizeof(int) * 4)];
        } cbuf;
        struct msghdr msg = {0};
        char buf[4096];
        struct iovec iov = {buf, sizeof(buf)};
        struct cmsghdr *c;
        int fds[4];
        size_t nfds = 0;
        ssize_t n;

        if (line)
            return line;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.buf;
        msg.msg_controllen = sizeof(cbuf.buf);
        n = recvmsg(p->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n == 0)
            return NULL;
        if (n < 0) {
            g_assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_main_context_iteration(NULL, FALSE);
            if (!g_main_context_pending(NULL)) {
                struct pollfd pfd = {p->fd, POLLIN, 0};

                poll(&pfd, 1, 10);
            }
            continue;
        }
        for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            memcpy(fds + nfds, CMSG_DATA(c), cnt * sizeof(int));
            nfds += cnt;
        }
        g_assert_cmpint(
            cocoQmpLineBufFeed(p->lb, buf, (gsize)n, fds, nfds, NULL), ==, 0);
    }
}

/* Spin the main loop until nothing is pending; then @p must have no data. */
static void
testPeerExpectNothing(TestPeer *p)
{
    char c;
    int i;

    for (i = 0; i < 50; i++)
        g_main_context_iteration(NULL, FALSE);
    g_assert_null(cocoQmpLineBufPop(p->lb));
    g_assert_cmpint(recv(p->fd, &c, 1, MSG_DONTWAIT | MSG_PEEK), ==, -1);
    g_assert_cmpint(errno, ==, EAGAIN);
}

static CocoQmpMessage *
testPeerReadMsg(TestPeer *p)
{
    g_autoptr(CocoQmpLine) line = testPeerRead(p);
    CocoQmpMessage *msg;

    g_assert_nonnull(line);
    g_assert_cmpuint(line->nfds, ==, 0);
    msg = cocoQmpMessageParse(line->data, line->len, NULL);
    g_assert_nonnull(msg);
    return msg;
}

static void
testPeerExpectLine(TestPeer *p, const char *text)
{
    g_autoptr(CocoQmpLine) line = testPeerRead(p);

    g_assert_nonnull(line);
    g_assert_cmpstr(line->data, ==, text);
}

/* The next line for libvirt is the relay's own MIGRATION event. */
static void
testPeerExpectMigration(TestPeer *p, const char *status)
{
    g_autoptr(CocoQmpMessage) ev = testPeerReadMsg(p);
    JsonObject *ts;

    g_assert_cmpint(ev->kind, ==, COCO_QMP_KIND_EVENT);
    g_assert_cmpstr(ev->name, ==, "MIGRATION");
    g_assert_cmpstr(cocoQmpMessageGetArgString(ev, "status"), ==, status);
    /* Shaped like QEMU's: a timestamp of now. */
    ts = json_object_get_object_member(ev->obj, "timestamp");
    g_assert_nonnull(ts);
    g_assert_cmpint(json_object_get_int_member(ts, "seconds"), >, 1600000000);
    g_assert_true(json_object_has_member(ts, "microseconds"));
}

/* libvirt's 'query-migrate' and the relay's answer ("return"). */
static CocoQmpMessage *
testQueryMigrate(TestPeer *libvirt, const char *id, JsonObject **ret)
{
    g_autofree char *cmd = g_strdup_printf(
        "{\"execute\":\"query-migrate\",\"id\":\"%s\"}\r\n", id);
    CocoQmpMessage *reply;

    testPeerSend(libvirt, cmd, -1);
    reply = testPeerReadMsg(libvirt);
    g_assert_cmpint(reply->kind, ==, COCO_QMP_KIND_REPLY);
    g_assert_cmpstr(json_node_get_string(reply->id), ==, id);
    *ret = json_object_get_object_member(reply->obj, "return");
    g_assert_nonnull(*ret);
    return reply;
}

/* ---- fake agent ---- */

typedef struct {
    guint gates;
    CocoQmpGate lastGate;
    CocoQmpRole lastRole;
    gboolean defer; /* keep the verdict for the test to give */
    gboolean deferMigrate; /* ... for the 'migrate' gate only */
    gboolean release; /* the immediate verdict */
    CocoQmpAgentVerdictFunc cb;
    gpointer opaque;
    GPtrArray *events;
} TestAgent;

static void
testAgentNotify(CocoQmpAgent *agent, const char *event, JsonObject *data)
{
    TestAgent *ta = cocoQmpAgentGetData(agent);
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
    g_autofree char *text = NULL;

    json_node_set_object(node, data);
    text = json_to_string(node, FALSE);
    g_ptr_array_add(ta->events, g_strdup_printf("%s %s", event, text));
}

static void
testAgentGate(CocoQmpAgent *agent, CocoQmpGate gate, CocoQmpRole role,
              CocoQmpAgentVerdictFunc cb, gpointer opaque)
{
    TestAgent *ta = cocoQmpAgentGetData(agent);

    ta->gates++;
    ta->lastGate = gate;
    ta->lastRole = role;
    if (gate == COCO_QMP_GATE_MIGRATE ? ta->deferMigrate : ta->defer) {
        ta->cb = cb;
        ta->opaque = opaque;
        return;
    }
    if (gate == COCO_QMP_GATE_MIGRATE) {
        cb(TRUE, NULL, opaque);
        return;
    }
    cb(ta->release, ta->release ? NULL : "test says no", opaque);
}

static void
testAgentDispose(CocoQmpAgent *agent)
{
    TestAgent *ta = cocoQmpAgentGetData(agent);

    if (ta->cb)
        ta->cb(FALSE, "gone", ta->opaque);
    ta->cb = NULL;
}

static const CocoQmpAgentOps testAgentOps = {
    .notify = testAgentNotify,
    .gate = testAgentGate,
    .dispose = testAgentDispose,
};

static void
testAgentReadyAnswer(gboolean release, const char *reason, gpointer opaque)
{
    gboolean *answered = opaque;

    g_assert_true(release);
    g_assert_null(reason);
    *answered = TRUE;
}

/* An agent without a waitReady op answers from the caller's main context
 * (a relay on a context of its own), never from GLib's global one. */
static void
testAgentWaitReadyContext(void)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    TestAgent ta = {0};
    g_autoptr(CocoQmpAgent) agent = NULL;
    gboolean answered = FALSE;
    guint i;

    g_main_context_push_thread_default(ctx);
    agent = cocoQmpAgentNew(&testAgentOps, &ta);
    cocoQmpAgentWaitReady(agent, 1000, testAgentReadyAnswer, &answered);
    g_assert_false(answered); /* never from inside */
    for (i = 0; i < 10 && !answered; i++)
        g_main_context_iteration(ctx, FALSE);
    g_assert_true(answered);
    g_main_context_pop_thread_default(ctx);
}

/* ---- relay fixture ---- */

typedef struct {
    CocoQmpRelay *relay;
    CocoQmpAgent *agentObj; /* owned by the relay */
    TestAgent agent;
    TestPeer libvirt;
    TestPeer qemu;
} Fixture;

static void
fixtureSetUp(Fixture *f, gconstpointer withAgent)
{
    int a[2], b[2];

    memset(&f->agent, 0, sizeof(f->agent));
    f->agent.release = TRUE;
    f->agent.events = g_ptr_array_new_with_free_func(g_free);
    f->agentObj = GPOINTER_TO_INT(withAgent)
                      ? cocoQmpAgentNew(&testAgentOps, &f->agent)
                      : NULL;
    f->relay = cocoQmpRelayNew(NULL, f->agentObj);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), ==,
                    0);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), ==,
                    0);
    testPeerInit(&f->libvirt, a[0]);
    testPeerInit(&f->qemu, b[0]);
    g_assert_cmpint(cocoQmpRelayAddSession(f->relay, a[1], b[1], NULL), ==, 0);
}

static void
fixtureTearDown(Fixture *f, gconstpointer data)
{
    cocoQmpRelayFree(f->relay);
    testPeerClear(&f->libvirt);
    testPeerClear(&f->qemu);
    g_ptr_array_unref(f->agent.events);
}

/* libvirt's handshake, passed through unchanged. */
static void
fixtureHandshake(Fixture *f)
{
    const char *greeting = "{\"QMP\": {\"version\": {}, \"capabilities\": "
                           "[\"oob\"]}}\r\n";

    testPeerSend(&f->qemu, greeting, -1);
    testPeerExpectLine(&f->libvirt, greeting);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"qmp_capabilities\",\"id\":\"libvirt-1\"}\r\n",
                 -1);
    testPeerExpectLine(
        &f->qemu,
        "{\"execute\":\"qmp_capabilities\",\"id\":\"libvirt-1\"}\r\n");
    testPeerSend(&f->qemu, "{\"return\": {}, \"id\": \"libvirt-1\"}\r\n", -1);
    testPeerExpectLine(&f->libvirt,
                       "{\"return\": {}, \"id\": \"libvirt-1\"}\r\n");
}

static void
testRelayPassThrough(Fixture *f, gconstpointer data)
{
    const char *ev = "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
                     "\"event\": \"RESUME\"}\r\n";
    const char *weird = "not json at all\n";
    g_autoptr(CocoQmpMessage) err = NULL;

    fixtureHandshake(f);
    testPeerSend(&f->qemu, ev, -1);
    testPeerExpectLine(&f->libvirt, ev);
    /* Text that is not one JSON object never reaches QEMU. */
    testPeerSend(&f->libvirt, weird, -1);
    err = testPeerReadMsg(&f->libvirt);
    g_assert_true(cocoQmpMessageIsError(err));
    testPeerExpectNothing(&f->qemu);
    /* QEMU's text reaches libvirt whatever it is. */
    testPeerSend(&f->qemu, weird, -1);
    testPeerExpectLine(&f->libvirt, weird);
    /* Without an agent a migration is refused: guest RAM would leave
     * the host in QEMU's own stream. */
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:h:1\"},"
                 "\"id\":\"libvirt-9\"}\r\n",
                 -1);
    {
        g_autoptr(CocoQmpMessage) refused = testPeerReadMsg(&f->libvirt);

        g_assert_true(cocoQmpMessageIsError(refused));
        g_assert_nonnull(strstr(cocoQmpMessageErrorDesc(refused),
                                "no host agent configured"));
    }
    testPeerExpectNothing(&f->qemu);
    /* A save still passes: its image holds the RAM (nothing injected). */
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":"
                 "\"exec:cat > /dev/null\"},\"id\":\"libvirt-12\"}\r\n",
                 -1);
    testPeerExpectLine(&f->qemu,
                       "{\"execute\":\"migrate\",\"arguments\":{\"uri\":"
                       "\"exec:cat > /dev/null\"},\"id\":\"libvirt-12\"}\r\n");
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate-continue\",\"arguments\":{\"state\":"
                 "\"pre-switchover\"},\"id\":\"libvirt-10\"}\r\n",
                 -1);
    testPeerExpectLine(
        &f->qemu, "{\"execute\":\"migrate-continue\",\"arguments\":{\"state\":"
                  "\"pre-switchover\"},\"id\":\"libvirt-10\"}\r\n");
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"cont\",\"id\":\"libvirt-11\"}\r\n", -1);
    testPeerExpectLine(&f->qemu,
                       "{\"execute\":\"cont\",\"id\":\"libvirt-11\"}\r\n");
    g_assert_cmpuint(f->agent.gates, ==, 0);
}

/* Two commands on one line would slip past the relay: refused. */
static void
testRelayTwoOnOneLine(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) err = NULL;

    fixtureHandshake(f);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"query-status\"} {\"execute\":\"cont\"}\r\n",
                 -1);
    err = testPeerReadMsg(&f->libvirt);
    g_assert_true(cocoQmpMessageIsError(err));
    testPeerExpectNothing(&f->qemu);
    g_assert_cmpuint(cocoQmpTextCountValues("{\"a\":\"}{\"} ", 10), ==, 1);
    g_assert_cmpuint(cocoQmpTextCountValues(" [1] 2", 6), ==, 2);
}

/* libvirt hands QEMU a descriptor with 'getfd'; it must arrive. */
static void
testRelayFdPassing(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpLine) line = NULL;
    struct stat sb;
    int w;
    int r = testPipeFd(&w);
    char c = 0;

    fixtureHandshake(f);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"migrate\"},"
        "\"id\":\"libvirt-2\"}\r\n",
        w);
    close(w);
    line = testPeerRead(&f->qemu);
    g_assert_nonnull(line);
    g_assert_true(g_str_has_prefix(line->data, "{\"execute\":\"getfd\""));
    g_assert_cmpuint(line->nfds, ==, 1);
    g_assert_cmpint(fstat(line->fds[0], &sb), ==, 0);
    g_assert_true(S_ISFIFO(sb.st_mode));
    /* It is the very pipe libvirt passed: bytes cross it. */
    g_assert_cmpint(write(line->fds[0], "k", 1), ==, 1);
    g_assert_cmpint(read(r, &c, 1), ==, 1);
    g_assert_cmpint(c, ==, 'k');
    close(r);
}

/*
 * 'migrate' for a real migration: the relay first sets x-ignore-shared
 * with its own id, swallows QEMU's answer, then forwards libvirt's
 * command; libvirt only ever sees replies to its own ids.
 */
static void
testRelayMigrateInjects(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) inj = NULL;
    g_autoptr(CocoQmpMessage) fwd = NULL;
    g_autoptr(CocoQmpLine) getfd = NULL;
    g_autofree char *reply = NULL;
    g_autofree char *reply2 = NULL;
    const char *injId;
    int sp[2];
    JsonNode *cap;

    fixtureHandshake(f);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), ==,
                    0);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"migrate\"},"
        "\"id\":\"libvirt-2\"}\r\n",
        sp[0]);
    getfd = testPeerRead(&f->qemu);
    g_assert_cmpuint(getfd->nfds, ==, 1);
    testPeerSend(&f->qemu, "{\"return\": {}, \"id\": \"libvirt-2\"}\r\n", -1);
    testPeerExpectLine(&f->libvirt,
                       "{\"return\": {}, \"id\": \"libvirt-2\"}\r\n");

    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:migrate\"},"
        "\"id\":\"libvirt-3\"}\r\n",
        -1);
    inj = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(inj->name, ==, "migrate-set-capabilities");
    injId = json_node_get_string(inj->id);
    g_assert_true(g_str_has_prefix(injId, "coco-relay-"));
    cap = json_array_get_element(
        json_object_get_array_member(cocoQmpMessageGetArguments(inj),
                                     "capabilities"),
        0);
    g_assert_cmpstr(
        json_object_get_string_member(json_node_get_object(cap), "capability"),
        ==, "x-ignore-shared");
    g_assert_true(
        json_object_get_boolean_member(json_node_get_object(cap), "state"));
    /* libvirt's command waits for the injected one. */
    testPeerExpectNothing(&f->qemu);

    /* QEMU emits an event, then answers the injected command. */
    testPeerSend(&f->qemu, "{\"event\": \"X\"}\r\n", -1);
    reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n", injId);
    testPeerSend(&f->qemu, reply, -1);
    /* The relay answers 'migrate' as QEMU would, at once... */
    testPeerExpectLine(&f->libvirt, "{\"event\": \"X\"}\r\n");
    testPeerExpectMigration(&f->libvirt, "setup");
    testPeerExpectLine(&f->libvirt, "{\"return\":{},\"id\":\"libvirt-3\"}\r\n");
    testPeerExpectMigration(&f->libvirt, "active");
    /* ...and QEMU gets it with the relay's id once the agent released. */
    fwd = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(fwd->name, ==, "migrate");
    g_assert_true(
        g_str_has_prefix(json_node_get_string(fwd->id), "coco-relay-"));
    g_assert_cmpstr(cocoQmpMessageGetArgString(fwd, "uri"), ==, "fd:migrate");
    reply2 = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                             json_node_get_string(fwd->id));
    testPeerSend(&f->qemu, reply2, -1);
    /* libvirt never sees the relay's replies. */
    testPeerExpectNothing(&f->libvirt);
    g_assert_cmpuint(f->agent.gates, ==, 1);
    g_assert_cmpint(f->agent.lastGate, ==, COCO_QMP_GATE_MIGRATE);
    g_assert_cmpuint(f->agent.events->len, ==, 2);
    g_assert_true(
        g_str_has_prefix(g_ptr_array_index(f->agent.events, 0), "migrate {"));
    /* The agent hears the MIGRATION statuses libvirt sees. */
    g_assert_nonnull(
        strstr(g_ptr_array_index(f->agent.events, 1), "\"status\":\"active\""));
    g_assert_nonnull(
        strstr(g_ptr_array_index(f->agent.events, 0), "\"job\":\"migration\""));
    close(sp[1]);
}

/* 'virsh save': a pipe, pause-before-switchover off -> x-ignore-shared off. */
static void
testRelaySaveTurnsOff(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) inj = NULL;
    g_autoptr(CocoQmpMessage) fwd = NULL;
    g_autoptr(CocoQmpLine) getfd = NULL;
    g_autoptr(CocoQmpMessage) caps = NULL;
    g_autofree char *reply = NULL;
    JsonNode *cap;
    int w;
    int r = testPipeFd(&w);

    fixtureHandshake(f);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{"
        "\"capabilities\":[{\"capability\":\"pause-before-switchover\","
        "\"state\":false}]},\"id\":\"libvirt-2\"}\r\n",
        -1);
    caps = testPeerReadMsg(&f->qemu);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"migrate\"},"
        "\"id\":\"libvirt-3\"}\r\n",
        w);
    getfd = testPeerRead(&f->qemu);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:migrate\"},"
        "\"id\":\"libvirt-4\"}\r\n",
        -1);
    inj = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(inj->name, ==, "migrate-set-capabilities");
    cap = json_array_get_element(
        json_object_get_array_member(cocoQmpMessageGetArguments(inj),
                                     "capabilities"),
        0);
    g_assert_false(
        json_object_get_boolean_member(json_node_get_object(cap), "state"));
    /* Even a QEMU that lacks the capability may save. */
    reply =
        g_strdup_printf("{\"error\": {\"class\": \"GenericError\", \"desc\":"
                        " \"nope\"}, \"id\": \"%s\"}\r\n",
                        json_node_get_string(inj->id));
    testPeerSend(&f->qemu, reply, -1);
    fwd = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(fwd->name, ==, "migrate");
    testPeerExpectNothing(&f->libvirt);
    /* An image is no migration: the agent is not asked. */
    g_assert_cmpuint(f->agent.gates, ==, 0);
    close(w);
    close(r);
}

/* libvirt's capabilities whose members have the wrong types: the relay
 * reads none of them as a name or a state and passes the line on (it
 * crashed on a capability that was a number). */
static void
testRelayCapabilitiesMistyped(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) fwd = NULL;

    fixtureHandshake(f);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{"
                 "\"capabilities\":[{\"capability\":5,\"state\":\"yes\"},"
                 "{\"capability\":null},{\"capability\":[]},{},7,"
                 "{\"capability\":\"pause-before-switchover\",\"state\":1}]},"
                 "\"id\":\"libvirt-2\"}\r\n",
                 -1);
    fwd = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(fwd->name, ==, "migrate-set-capabilities");
    testPeerExpectNothing(&f->libvirt);
}

static void fixtureStartSource(Fixture *f);
static void fixtureSyncEvents(Fixture *f, guint n);

/* 'migrate' of a source is held until the agent's precopy is done. */
static void
fixtureSendMigrate(Fixture *f)
{
    g_autoptr(CocoQmpMessage) inj = NULL;
    g_autofree char *reply = NULL;

    fixtureHandshake(f);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:/x\"},"
                 "\"id\":\"libvirt-3\"}\r\n",
                 -1);
    inj = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(inj->name, ==, "migrate-set-capabilities");
    reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(inj->id));
    testPeerSend(&f->qemu, reply, -1);
}

/* The agent reports progress on the private memory. */
static void
testAgentProgress(Fixture *f, guint64 transferred, guint64 remaining,
                  guint64 epoch)
{
    g_autoptr(JsonObject) p = json_object_new();

    json_object_set_string_member(p, "type", "progress");
    json_object_set_int_member(p, "id", 1);
    json_object_set_int_member(p, "total", 201326592);
    json_object_set_int_member(p, "transferred", transferred);
    json_object_set_int_member(p, "remaining", remaining);
    json_object_set_int_member(p, "pages", transferred / 4096);
    json_object_set_int_member(p, "epoch", epoch);
    json_object_set_int_member(p, "rate", 100000000);
    json_object_set_int_member(p, "dirty_rate", 250);
    cocoQmpAgentEmitProgress(f->agentObj, p);
}

/* libvirt's 'migrate' answered by the relay while the agent precopies. */
static void
fixtureOwnedMigrate(Fixture *f)
{
    f->agent.deferMigrate = TRUE;
    fixtureSendMigrate(f);
    testPeerExpectMigration(&f->libvirt, "setup");
    testPeerExpectLine(&f->libvirt, "{\"return\":{},\"id\":\"libvirt-3\"}\r\n");
    testPeerExpectMigration(&f->libvirt, "active");
    g_assert_cmpuint(f->agent.gates, ==, 1);
    g_assert_cmpint(f->agent.lastGate, ==, COCO_QMP_GATE_MIGRATE);
    g_assert_cmpint(f->agent.lastRole, ==, COCO_QMP_ROLE_SOURCE);
}

/* The agent releases 'migrate': QEMU gets libvirt's arguments. */
static CocoQmpMessage *
fixtureReleaseMigrate(Fixture *f)
{
    CocoQmpMessage *fwd;

    f->agent.cb(TRUE, NULL, f->agent.opaque);
    f->agent.cb = NULL;
    fwd = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(fwd->name, ==, "migrate");
    g_assert_true(
        g_str_has_prefix(json_node_get_string(fwd->id), "coco-relay-"));
    g_assert_cmpstr(cocoQmpMessageGetArgString(fwd, "uri"), ==, "unix:/x");
    return fwd;
}

/*
 * The relay answers 'migrate' at once and plays the migrating QEMU while
 * the agent precopies: 'query-migrate' gets the agent's numbers.
 */
static void
testRelayMigratePrecopy(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) q1 = NULL;
    g_autoptr(CocoQmpMessage) q2 = NULL;
    g_autoptr(CocoQmpMessage) pass = NULL;
    JsonObject *ret;
    JsonObject *ram;

    fixtureOwnedMigrate(f);
    /* The agent heard of the migration before it was asked. */
    g_assert_true(
        g_str_has_prefix(g_ptr_array_index(f->agent.events, 0), "migrate {"));
    /* QEMU saw nothing of it; libvirt's monitor is free. */
    q1 = testQueryMigrate(&f->libvirt, "libvirt-4", &ret);
    g_assert_cmpstr(json_object_get_string_member(ret, "status"), ==, "active");
    ram = json_object_get_object_member(ret, "ram");
    g_assert_nonnull(ram);
    g_assert_cmpint(json_object_get_int_member(ram, "transferred"), ==, 0);
    g_assert_true(json_object_has_member(ret, "total-time"));
    testPeerExpectNothing(&f->qemu);

    testAgentProgress(f, 150000000, 60000000, 1);
    /* One MIGRATION_PASS per epoch. */
    pass = testPeerReadMsg(&f->libvirt);
    g_assert_cmpstr(pass->name, ==, "MIGRATION_PASS");
    g_assert_cmpint(
        json_object_get_int_member(cocoQmpMessageGetArguments(pass), "pass"),
        ==, 1);
    q2 = testQueryMigrate(&f->libvirt, "libvirt-5", &ret);
    g_assert_cmpstr(json_object_get_string_member(ret, "status"), ==, "active");
    /* No prediction from the agent yet: QEMU's default limit. */
    g_assert_cmpint(json_object_get_int_member(ret, "expected-downtime"), ==,
                    300);
    ram = json_object_get_object_member(ret, "ram");
    g_assert_cmpint(json_object_get_int_member(ram, "transferred"), ==,
                    150000000);
    g_assert_cmpint(json_object_get_int_member(ram, "remaining"), ==, 60000000);
    g_assert_cmpint(json_object_get_int_member(ram, "total"), ==, 201326592);
    g_assert_cmpint(json_object_get_int_member(ram, "normal"), ==,
                    150000000 / 4096);
    g_assert_cmpint(json_object_get_int_member(ram, "normal-bytes"), ==,
                    (150000000 / 4096) * 4096);
    g_assert_cmpint(json_object_get_int_member(ram, "dirty-sync-count"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(ram, "dirty-pages-rate"), ==,
                    250);
    g_assert_cmpint(json_object_get_int_member(ram, "page-size"), ==, 4096);
    g_assert_cmpfloat(json_object_get_double_member(ram, "mbps"), ==, 800.0);
    /* The same epoch again: no second pass event. */
    testAgentProgress(f, 160000000, 50000000, 1);
    testPeerExpectNothing(&f->libvirt);
    testPeerExpectNothing(&f->qemu);
}

/*
 * On release QEMU gets the real 'migrate'; its reply and its repeated
 * 'setup' event stay in the relay, its later events and its
 * 'query-migrate' replies (with the private memory added) reach libvirt.
 */
static void
testRelayMigrateRelease(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) fwd = NULL;
    g_autoptr(CocoQmpMessage) qm = NULL;
    g_autoptr(CocoQmpMessage) reply = NULL;
    g_autoptr(CocoQmpMessage) st = NULL;
    g_autofree char *text = NULL;
    const char *active = "{\"event\": \"MIGRATION\", \"data\": {\"status\": "
                         "\"active\"}}\r\n";
    JsonObject *ret;
    JsonObject *ram;
    JsonObject *o;

    fixtureOwnedMigrate(f);
    testAgentProgress(f, 200000000, 4096000, 0);
    fwd = fixtureReleaseMigrate(f);
    text = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                           json_node_get_string(fwd->id));
    testPeerSend(&f->qemu,
                 "{\"event\": \"MIGRATION\", \"data\": {\"status\": "
                 "\"setup\"}}\r\n",
                 -1);
    testPeerSend(&f->qemu, text, -1);
    testPeerSend(&f->qemu, active, -1);
    testPeerExpectLine(&f->libvirt, active);
    testPeerExpectNothing(&f->libvirt);
    /* QEMU's passes follow the agent's epochs (none here: unchanged). */
    testPeerSend(&f->qemu,
                 "{\"event\": \"MIGRATION_PASS\", \"data\": {\"pass\": 1}}\r\n",
                 -1);
    testPeerExpectLine(
        &f->libvirt,
        "{\"event\": \"MIGRATION_PASS\", \"data\": {\"pass\": 1}}\r\n");

    /* 'query-migrate' goes to QEMU now; the reply counts private memory. */
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"query-migrate\",\"id\":\"libvirt-6\"}\r\n",
                 -1);
    qm = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(qm->name, ==, "query-migrate");
    g_assert_cmpstr(json_node_get_string(qm->id), ==, "libvirt-6");
    testAgentProgress(f, 210000000, 0, 2);
    testPeerSend(&f->qemu,
                 "{\"return\": {\"status\": \"active\", \"total-time\": 12, "
                 "\"ram\": {\"transferred\": 1000, \"remaining\": 10, "
                 "\"total\": 532480, \"normal\": 2, \"normal-bytes\": 8192, "
                 "\"mbps\": 1.5}}, \"id\": \"libvirt-6\"}\r\n",
                 -1);
    reply = testPeerReadMsg(&f->libvirt);
    g_assert_cmpstr(json_node_get_string(reply->id), ==, "libvirt-6");
    ret = json_object_get_object_member(reply->obj, "return");
    g_assert_cmpstr(json_object_get_string_member(ret, "status"), ==, "active");
    g_assert_cmpint(json_object_get_int_member(ret, "total-time"), ==, 12);
    ram = json_object_get_object_member(ret, "ram");
    g_assert_cmpint(json_object_get_int_member(ram, "transferred"), ==,
                    210001000);
    /* The agents' final epoch is still to come: at least a page. */
    g_assert_cmpint(json_object_get_int_member(ram, "remaining"), ==,
                    10 + 4096);
    g_assert_cmpint(json_object_get_int_member(ram, "total"), ==,
                    201326592 + 532480);
    g_assert_cmpint(json_object_get_int_member(ram, "normal"), ==,
                    2 + 210000000 / 4096);
    g_assert_cmpint(json_object_get_int_member(ram, "normal-bytes"), ==,
                    8192 + (210000000 / 4096) * 4096);
    g_assert_cmpfloat(json_object_get_double_member(ram, "mbps"), ==, 801.5);
    /* No pass events once QEMU migrates. */
    testPeerExpectNothing(&f->libvirt);

    /* Other replies pass byte for byte. */
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"query-status\",\"id\":\"libvirt-7\"}\r\n", -1);
    testPeerExpectLine(
        &f->qemu, "{\"execute\":\"query-status\",\"id\":\"libvirt-7\"}\r\n");
    testPeerSend(&f->qemu,
                 "{\"return\": {\"x\": 1}, \"id\": \"libvirt-7\"}\r\n", -1);
    testPeerExpectLine(&f->libvirt,
                       "{\"return\": {\"x\": 1}, \"id\": \"libvirt-7\"}\r\n");
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"x-coco-query-relay\",\"id\":\"libvirt-8\"}\r\n", -1);
    st = testPeerReadMsg(&f->libvirt);
    o = json_object_get_object_member(
        json_object_get_object_member(st->obj, "return"), "precopy");
    g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "forwarded");
    g_assert_cmpint(json_object_get_int_member(
                        json_object_get_object_member(o, "progress"), "epoch"),
                    ==, 2);
}

/* After two agent epochs QEMU's first pass is libvirt's third. */
static void
testRelayMigratePasses(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) p1 = NULL;
    g_autoptr(CocoQmpMessage) p2 = NULL;
    g_autoptr(CocoQmpMessage) p3 = NULL;
    g_autoptr(CocoQmpMessage) fwd = NULL;

    fixtureOwnedMigrate(f);
    testAgentProgress(f, 1000, 10, 1);
    p1 = testPeerReadMsg(&f->libvirt);
    testAgentProgress(f, 2000, 10, 2);
    p2 = testPeerReadMsg(&f->libvirt);
    g_assert_cmpint(
        json_object_get_int_member(cocoQmpMessageGetArguments(p2), "pass"), ==,
        2);
    fwd = fixtureReleaseMigrate(f);
    testPeerSend(&f->qemu,
                 "{\"event\": \"MIGRATION_PASS\", \"data\": {\"pass\": 1}}\r\n",
                 -1);
    p3 = testPeerReadMsg(&f->libvirt);
    g_assert_cmpstr(p3->name, ==, "MIGRATION_PASS");
    g_assert_cmpint(
        json_object_get_int_member(cocoQmpMessageGetArguments(p3), "pass"), ==,
        3);
}

/* QEMU rejects the real 'migrate': the relay fails the job for libvirt. */
static void
testRelayMigrateQemuError(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) fwd = NULL;
    g_autoptr(CocoQmpMessage) q = NULL;
    g_autofree char *text = NULL;
    JsonObject *ret;

    fixtureOwnedMigrate(f);
    fwd = fixtureReleaseMigrate(f);
    text = g_strdup_printf("{\"error\": {\"class\": \"GenericError\", "
                           "\"desc\": \"There's a migration process in "
                           "progress\"}, \"id\": \"%s\"}\r\n",
                           json_node_get_string(fwd->id));
    testPeerSend(&f->qemu, text, -1);
    testPeerExpectMigration(&f->libvirt, "failed");
    q = testQueryMigrate(&f->libvirt, "libvirt-9", &ret);
    g_assert_cmpstr(json_object_get_string_member(ret, "status"), ==, "failed");
    g_assert_cmpstr(json_object_get_string_member(ret, "error-desc"), ==,
                    "There's a migration process in progress");
    testPeerExpectNothing(&f->qemu);
    /* The agent learns that the migration failed. */
    g_assert_nonnull(
        strstr(g_ptr_array_index(f->agent.events, f->agent.events->len - 1),
               "\"status\":\"failed\""));
}

/* The agent refuses 'migrate': 'failed', and libvirt reads why. */
static void
testRelayMigrateGateRefuse(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) q = NULL;
    g_autoptr(CocoQmpMessage) ret = NULL;
    g_autoptr(CocoQmpMessage) cancel = NULL;
    JsonObject *r;
    JsonObject *o;
    const char *desc;

    fixtureOwnedMigrate(f);
    f->agent.cb(FALSE, "the peer agent is unreachable", f->agent.opaque);
    f->agent.cb = NULL;
    testPeerExpectMigration(&f->libvirt, "failed");
    q = testQueryMigrate(&f->libvirt, "libvirt-10", &r);
    g_assert_cmpstr(json_object_get_string_member(r, "status"), ==, "failed");
    desc = json_object_get_string_member(r, "error-desc");
    g_assert_true(g_str_has_prefix(
        desc, "qemu-coco: the host agent refused to start the migration: "));
    g_assert_nonnull(strstr(desc, "the peer agent is unreachable"));
    /* QEMU never saw 'migrate'; the relay is not in a migration. */
    testPeerExpectNothing(&f->qemu);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"x-coco-query-relay\",\"id\":\"libvirt-31\"}\r\n", -1);
    ret = testPeerReadMsg(&f->libvirt);
    o = json_object_get_object_member(ret->obj, "return");
    g_assert_cmpstr(json_object_get_string_member(o, "role"), ==, "none");
    g_assert_cmpint(json_object_get_int_member(o, "gates-refused"), ==, 1);
    g_assert_cmpstr(json_object_get_string_member(
                        json_object_get_object_member(o, "precopy"), "state"),
                    ==, "failed");
    /* libvirt's clean-up cancel goes to QEMU, which has nothing to do. */
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate_cancel\",\"id\":\"libvirt-11\"}\r\n",
                 -1);
    cancel = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(cancel->name, ==, "migrate_cancel");
}

/*
 * libvirt cancels (virDomainAbortJob) while the agent precopies: the
 * relay answers, tells the agent, and reports 'cancelled' once the agent
 * refused the gate. QEMU sees nothing.
 */
static void
testRelayMigrateCancel(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) q1 = NULL;
    g_autoptr(CocoQmpMessage) q2 = NULL;
    g_autoptr(CocoQmpMessage) next = NULL;
    JsonObject *ret;
    guint before;

    fixtureOwnedMigrate(f);
    testAgentProgress(f, 100000000, 101326592, 0);
    before = f->agent.events->len;
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate_cancel\",\"id\":\"libvirt-12\"}\r\n",
                 -1);
    testPeerExpectLine(&f->libvirt,
                       "{\"return\":{},\"id\":\"libvirt-12\"}\r\n");
    testPeerExpectMigration(&f->libvirt, "cancelling");
    g_assert_cmpuint(f->agent.events->len, >, before);
    g_assert_true(g_str_has_prefix(
        g_ptr_array_index(f->agent.events, f->agent.events->len - 1),
        "migrate-cancel {"));
    q1 = testQueryMigrate(&f->libvirt, "libvirt-13", &ret);
    g_assert_cmpstr(json_object_get_string_member(ret, "status"), ==,
                    "cancelling");
    g_assert_nonnull(json_object_get_object_member(ret, "ram"));
    testPeerExpectNothing(&f->qemu);

    /* The agent aborted its session and refuses the gate. */
    f->agent.cb(FALSE, "confidential migration aborted: cancelled",
                f->agent.opaque);
    f->agent.cb = NULL;
    testPeerExpectMigration(&f->libvirt, "cancelled");
    q2 = testQueryMigrate(&f->libvirt, "libvirt-14", &ret);
    g_assert_cmpstr(json_object_get_string_member(ret, "status"), ==,
                    "cancelled");
    testPeerExpectNothing(&f->qemu);
    /* A later cancel goes to QEMU as before. */
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate_cancel\",\"id\":\"libvirt-15\"}\r\n",
                 -1);
    next = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(next->name, ==, "migrate_cancel");
    g_assert_cmpstr(json_node_get_string(next->id), ==, "libvirt-15");
}

/* A release racing libvirt's cancel: QEMU still never starts. */
static void
testRelayMigrateCancelRelease(Fixture *f, gconstpointer data)
{
    fixtureOwnedMigrate(f);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate_cancel\",\"id\":\"libvirt-12\"}\r\n",
                 -1);
    testPeerExpectLine(&f->libvirt,
                       "{\"return\":{},\"id\":\"libvirt-12\"}\r\n");
    testPeerExpectMigration(&f->libvirt, "cancelling");
    f->agent.cb(TRUE, NULL, f->agent.opaque);
    f->agent.cb = NULL;
    testPeerExpectMigration(&f->libvirt, "cancelled");
    testPeerExpectNothing(&f->qemu);
}

/* libvirt goes away while the agent precopies: the agent is told. */
static void
testRelayMigrateClose(Fixture *f, gconstpointer data)
{
    fixtureOwnedMigrate(f);
    close(f->libvirt.fd);
    f->libvirt.fd = -1;
    g_assert_null(testPeerRead(&f->qemu));
    g_assert_true(g_str_has_prefix(
        g_ptr_array_index(f->agent.events, f->agent.events->len - 1),
        "migrate-cancel {"));
    f->agent.cb(TRUE, NULL, f->agent.opaque);
    f->agent.cb = NULL;
}

/* 'virsh restore': migrate-incoming from a pipe is not gated either. */
static void
testRelayRestoreNotGated(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) inj = NULL;
    g_autoptr(CocoQmpMessage) fwd = NULL;
    g_autofree char *reply = NULL;

    f->agent.deferMigrate = TRUE;
    f->agent.defer = TRUE;
    fixtureHandshake(f);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":"
                 "\"fd:restore\"},\"id\":\"libvirt-5\"}\r\n",
                 -1);
    inj = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(inj->name, ==, "migrate-set-capabilities");
    reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(inj->id));
    testPeerSend(&f->qemu, reply, -1);
    fwd = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(fwd->name, ==, "migrate-incoming");
    g_assert_cmpuint(f->agent.gates, ==, 0);
}

/* The agent's 'cancel': the relay cancels QEMU's migration itself. */
static void
testRelayAgentCancel(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) cancel = NULL;
    g_autoptr(CocoQmpMessage) ret = NULL;
    g_autofree char *reply = NULL;
    JsonObject *o;

    fixtureStartSource(f);
    cocoQmpAgentEmitCancel(f->agentObj, "the destination agent went away");
    cancel = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(cancel->name, ==, "migrate_cancel");
    g_assert_true(
        g_str_has_prefix(json_node_get_string(cancel->id), "coco-relay-"));
    reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(cancel->id));
    testPeerSend(&f->qemu, reply, -1);
    /* libvirt sees QEMU's events, never the relay's reply. */
    testPeerSend(&f->qemu,
                 "{\"event\": \"MIGRATION\", \"data\": {\"status\": "
                 "\"cancelled\"}}\r\n",
                 -1);
    fixtureSyncEvents(f, 1);
    testPeerExpectNothing(&f->libvirt);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"x-coco-query-relay\",\"id\":\"libvirt-32\"}\r\n", -1);
    ret = testPeerReadMsg(&f->libvirt);
    o = json_object_get_object_member(ret->obj, "return");
    g_assert_cmpint(json_object_get_int_member(o, "cancels"), ==, 1);
}

/* ---- the VFIO interposer's leak reports ---- */

#define TEST_VFIO_LEAK                                                         \
 "{\"event\":\"vfio-leak\",\"space\":1,\"backend\":\"type1v2\","               \
 "\"fix\":\"absent\",\"when\":\"release\",\"count\":2,\"bytes\":\"0x2000\","   \
 "\"ranges\":[{\"first\":\"0xfffffffffffff000\","                              \
 "\"last\":\"0xffffffffffffffff\"}]}"

static void
testVfioReportParse(void)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[1]",
        "{\"event\":\"other\"}",
        "{\"event\":\"vfio-leak\",\"space\":1,\"backend\":\"vfio\",\"fix\":"
        "\"absent\",\"when\":\"release\",\"count\":1,\"bytes\":\"0x1\","
        "\"ranges\":[]}",
        "{\"event\":\"vfio-leak\",\"space\":1,\"backend\":\"type1\",\"fix\":"
        "\"absent\",\"when\":\"later\",\"count\":1,\"bytes\":\"0x1\","
        "\"ranges\":[]}",
        "{\"event\":\"vfio-leak\",\"space\":1,\"backend\":\"type1\",\"fix\":"
        "\"absent\",\"when\":\"unmap\",\"count\":0,\"bytes\":\"0x1\","
        "\"ranges\":[]}",
        "{\"event\":\"vfio-leak\",\"space\":1,\"backend\":\"type1\",\"fix\":"
        "\"absent\",\"when\":\"unmap\",\"count\":1,\"bytes\":4096,"
        "\"ranges\":[]}",
        "{\"event\":\"vfio-leak\",\"space\":1,\"backend\":\"type1\",\"fix\":"
        "\"absent\",\"when\":\"unmap\",\"count\":1,\"bytes\":\"0x1\","
        "\"ranges\":[{\"first\":\"0x2000\",\"last\":\"0x1fff\"}]}",
        "{\"event\":\"vfio-leak\",\"space\":1,\"backend\":\"type1\",\"fix\":"
        "\"absent\",\"when\":\"unmap\",\"count\":1,\"bytes\":\"0x1\","
        "\"ranges\":[{\"first\":\"0x0\",\"last\":\"0x1fff\"},"
        "{\"first\":\"0x3000\",\"last\":\"0x3fff\"}]}",
        "{\"event\":\"vfio-leak\",\"space\":1,\"backend\":\"type1\",\"fix\":"
        "\"absent\",\"when\":\"unmap\",\"count\":1,\"bytes\":\"0x1\","
        "\"ranges\":[{\"first\":\"0x10000000000000000\",\"last\":\"0x1\"}]}",
    };
    g_autoptr(JsonObject) data = NULL;
    g_autofree char *text = NULL;
    g_autofree char *huge = g_strnfill(COCO_QMP_VFIO_REPORT_MAX + 1, ' ');
    size_t i;

    CocoQmpVfioReportKind kind = COCO_QMP_VFIO_REPORT_STATE;

    data = cocoQmpVfioReportParse(TEST_VFIO_LEAK, strlen(TEST_VFIO_LEAK), &kind,
                                  NULL);
    g_assert_nonnull(data);
    g_assert_cmpint(kind, ==, COCO_QMP_VFIO_REPORT_LEAK);
    g_assert_false(json_object_has_member(data, "event"));
    g_assert_cmpint(json_object_get_int_member(data, "count"), ==, 2);
    text = cocoQmpVfioReportDescribe(data);
    g_assert_cmpstr(
        text, ==,
        "2 DMA mapping(s) of 0x2000 bytes could not be unmapped on the type1v2 backend (fix absent) and stay pinned until the host reboots: [0xfffffffffffff000, 0xffffffffffffffff], +1");
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) no =
            cocoQmpVfioReportParse(bad[i], strlen(bad[i]), &kind, &err);

        g_assert_null(no);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_QMP_PROTOCOL);
    }
    g_assert_null(cocoQmpVfioReportParse(huge, strlen(huge), &kind, NULL));
}

#define TEST_VFIO_STATE                                                        \
 "{\"event\":\"vfio-state\",\"devices\":[\"0000:00:04.0\"],\"count\":1,"       \
 "\"spaces\":1,\"mappings\":2,\"bytes\":\"0x3000\"}"

/* The interposer's state report: what QEMU holds after a device came or
 * went; every member typed, names as sysfs spells them. */
static void
testVfioStateParse(void)
{
    static const char *const bad[] = {
        "{\"event\":\"vfio-state\",\"devices\":[],\"count\":0,"
        "\"spaces\":0,\"mappings\":0}",
        "{\"event\":\"vfio-state\",\"devices\":[],\"count\":-1,"
        "\"spaces\":0,\"mappings\":0,\"bytes\":\"0x0\"}",
        /* more names than open devices */
        "{\"event\":\"vfio-state\",\"devices\":[\"a\"],\"count\":0,"
        "\"spaces\":0,\"mappings\":0,\"bytes\":\"0x0\"}",
        /* a name with a quote, a slash, an empty one, a number */
        "{\"event\":\"vfio-state\",\"devices\":[\"a\\\"b\"],\"count\":1,"
        "\"spaces\":0,\"mappings\":0,\"bytes\":\"0x0\"}",
        "{\"event\":\"vfio-state\",\"devices\":[\"../x\"],\"count\":1,"
        "\"spaces\":0,\"mappings\":0,\"bytes\":\"0x0\"}",
        "{\"event\":\"vfio-state\",\"devices\":[\"\"],\"count\":1,"
        "\"spaces\":0,\"mappings\":0,\"bytes\":\"0x0\"}",
        "{\"event\":\"vfio-state\",\"devices\":[4],\"count\":1,"
        "\"spaces\":0,\"mappings\":0,\"bytes\":\"0x0\"}",
        /* mappings without bytes, bytes without mappings */
        "{\"event\":\"vfio-state\",\"devices\":[],\"count\":0,"
        "\"spaces\":1,\"mappings\":1,\"bytes\":\"0x0\"}",
        "{\"event\":\"vfio-state\",\"devices\":[],\"count\":0,"
        "\"spaces\":1,\"mappings\":0,\"bytes\":\"0x1000\"}",
        "{\"event\":\"vfio-state\",\"devices\":{},\"count\":0,"
        "\"spaces\":0,\"mappings\":0,\"bytes\":\"0x0\"}",
        "{\"event\":\"vfio-gone\"}",
    };
    CocoQmpVfioReportKind kind = COCO_QMP_VFIO_REPORT_LEAK;
    g_autoptr(JsonObject) data = NULL;
    g_autofree char *name65 = g_strnfill(65, 'a');
    g_autofree char *long_name = g_strdup_printf(
        "{\"event\":\"vfio-state\",\"devices\":[\"%s\"],\"count\":1,"
        "\"spaces\":0,\"mappings\":0,\"bytes\":\"0x0\"}",
        name65);
    size_t i;

    data = cocoQmpVfioReportParse(TEST_VFIO_STATE, strlen(TEST_VFIO_STATE),
                                  &kind, NULL);
    g_assert_nonnull(data);
    g_assert_cmpint(kind, ==, COCO_QMP_VFIO_REPORT_STATE);
    g_assert_cmpstr(json_array_get_string_element(
                        json_object_get_array_member(data, "devices"), 0),
                    ==, "0000:00:04.0");
    g_assert_cmpint(json_object_get_int_member(data, "mappings"), ==, 2);
    g_assert_cmpint(json_object_get_int_member(data, "bytes"), ==, 0x3000);
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) no =
            cocoQmpVfioReportParse(bad[i], strlen(bad[i]), &kind, &err);

        if (no)
            g_error("accepted: %s", bad[i]);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_QMP_PROTOCOL);
    }
    g_assert_null(
        cocoQmpVfioReportParse(long_name, strlen(long_name), &kind, NULL));
}

/* The state goes to the agent as the typed event 'vfio-state' (the relay
 * protocol's own definition accepts it) and shows in x-coco-query-relay. */
static void
testRelayVfioState(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) ret = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *line = NULL;
    const char *ev;
    JsonObject *st;
    int sp[2];
    int i;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp), ==,
                    0);
    cocoQmpRelaySetVfioReport(f->relay, sp[0]);
    fixtureHandshake(f);
    g_assert_cmpint(send(sp[1], TEST_VFIO_STATE, strlen(TEST_VFIO_STATE), 0),
                    ==, (ssize_t)strlen(TEST_VFIO_STATE));
    for (i = 0; i < 1000 && f->agent.events->len == 0; i++)
        g_main_context_iteration(NULL, FALSE);
    g_assert_cmpuint(f->agent.events->len, ==, 1);
    ev = g_ptr_array_index(f->agent.events, 0);
    g_assert_true(g_str_has_prefix(ev, "vfio-state {"));
    g_assert_true(json_parser_load_from_data(parser, ev + strlen("vfio-state "),
                                             -1, NULL));
    line = cocoRelayBuildEvent(
        "vfio-state", json_node_get_object(json_parser_get_root(parser)), &err);
    g_assert_no_error(err);
    g_assert_nonnull(strstr(line, "\"devices\":[{\"name\":\"0000:00:04.0\"}]"));
    g_assert_nonnull(strstr(line, "\"mapped-bytes\":12288"));
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"x-coco-query-relay\",\"id\":\"libvirt-70\"}\r\n", -1);
    ret = testPeerReadMsg(&f->libvirt);
    st = json_object_get_object_member(
        json_object_get_object_member(ret->obj, "return"), "vfio-state");
    g_assert_nonnull(st);
    g_assert_cmpint(json_object_get_int_member(st, "count"), ==, 1);
    close(sp[1]);
}

/* A report from QEMU's end of the socket reaches the agent as the event
 * 'vfio-leak' and rides along with the next migration; a malformed one is
 * dropped. */
static void
testRelayVfioLeak(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) ret = NULL;
    g_autoptr(CocoQmpMessage) inj = NULL;
    const char *ev;
    int sp[2];
    int i;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp), ==,
                    0);
    cocoQmpRelaySetVfioReport(f->relay, sp[0]);
    fixtureHandshake(f);
    g_assert_cmpint(send(sp[1], "{\"event\":1}", 11, 0), ==, 11);
    g_assert_cmpint(send(sp[1], TEST_VFIO_LEAK, strlen(TEST_VFIO_LEAK), 0), ==,
                    (ssize_t)strlen(TEST_VFIO_LEAK));
    for (i = 0; i < 1000 && f->agent.events->len == 0; i++)
        g_main_context_iteration(NULL, FALSE);
    g_assert_cmpuint(f->agent.events->len, ==, 1);
    ev = g_ptr_array_index(f->agent.events, 0);
    g_assert_true(g_str_has_prefix(ev, "vfio-leak {"));
    g_assert_nonnull(strstr(ev, "\"reason\":\"2 DMA mapping(s) of 0x2000"));
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"x-coco-query-relay\",\"id\":\"libvirt-70\"}\r\n", -1);
    ret = testPeerReadMsg(&f->libvirt);
    g_assert_cmpint(
        json_object_get_int_member(
            json_object_get_object_member(ret->obj, "return"), "vfio-leaks"),
        ==, 1);
    /* The next migration carries it to the agent again. */
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:/x\"},"
                 "\"id\":\"libvirt-71\"}\r\n",
                 -1);
    inj = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(inj->name, ==, "migrate-set-capabilities");
    {
        g_autofree char *reply =
            g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(inj->id));

        testPeerSend(&f->qemu, reply, -1);
    }
    testPeerExpectMigration(&f->libvirt, "setup");
    ev = g_ptr_array_index(f->agent.events, 1);
    g_assert_true(g_str_has_prefix(ev, "migrate {"));
    g_assert_nonnull(strstr(ev, "\"vfio-leak\":\"2 DMA mapping(s)"));
    close(sp[1]);
}

/* ---- hot-plugged VFIO devices ---- */

static void
testViommuFromArgv(void)
{
    static const struct {
        const char *args[4];
        const char *model;
        unsigned int aw;
        bool wide;
    } cases[] = {
        {{"-device", "e1000,id=net0"}, NULL, 0, false},
        {{"-device", "intel-iommu,intremap=on,aw-bits=48"}, "intel", 48, false},
        {{"-device",
          "{\"driver\":\"intel-iommu\",\"id\":\"iommu0\",\"aw-bits\":48}"},
         "intel",
         48,
         false},
        {{"-device", "{\"driver\":\"amd-iommu\",\"id\":\"iommu0\"}"},
         "amd",
         0,
         true},
        {{"-device", "virtio-iommu-pci,id=iommu0"}, "virtio", 0, true},
        {{"-device", "virtio-iommu-pci,aw-bits=48"}, "virtio", 48, false},
        {{"-machine", "virt,iommu=smmuv3"}, "smmuv3", 0, false},
        {{"-device", "x-new-iommu"}, "x-new-iommu", 0, true},
        {{"-device", "intel-iommu,aw-bits=lots"}, "intel", 64, true},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *argv[] = {(char *)"qemu", (char *)cases[i].args[0],
                        (char *)cases[i].args[1], NULL};
        CocoQmpViommu v = {0};

        cocoQmpViommuFromArgv(3, argv, &v);
        g_assert_cmpstr(v.model, ==, cases[i].model);
        g_assert_cmpuint(v.awBits, ==, cases[i].aw);
        g_assert_cmpint(cocoQmpViommuIsWide(&v), ==, cases[i].wide);
        cocoQmpViommuClear(&v);
    }
}

static void
testHostdevIsVfioAdd(void)
{
    static const struct {
        const char *text;
        const char *device; /* NULL: not a VFIO hot-plug */
    } cases[] = {
        {"{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"vfio-pci\","
         "\"host\":\"0000:06:00.0\",\"id\":\"hostdev0\"}}",
         "0000:06:00.0"},
        {"{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"vfio-pci\","
         "\"sysfsdev\":\"/sys/bus/mdev/devices/x\"}}",
         "/sys/bus/mdev/devices/x"},
        {"{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"e1000\","
         "\"id\":\"net1\"}}",
         NULL},
        {"{\"execute\":\"human-monitor-command\",\"arguments\":{"
         "\"command-line\":\" device_add  vfio-pci,host=0000:07:00.0\"}}",
         "0000:07:00.0"},
        {"{\"execute\":\"human-monitor-command\",\"arguments\":{"
         "\"command-line\":\"device_add driver=vfio-pci-nohotplug,id=h1\"}}",
         "h1"},
        {"{\"execute\":\"human-monitor-command\",\"arguments\":{"
         "\"command-line\":\"info pci\"}}",
         NULL},
        {"{\"execute\":\"device_del\",\"arguments\":{\"id\":\"hostdev0\"}}",
         NULL},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(CocoQmpMessage) msg =
            cocoQmpMessageParse(cases[i].text, strlen(cases[i].text), NULL);
        g_autofree char *device = NULL;

        g_assert_nonnull(msg);
        g_assert_cmpint(cocoQmpHostdevIsVfioAdd(msg, &device), ==,
                        cases[i].device != NULL);
        g_assert_cmpstr(device, ==, cases[i].device);
    }
}

#define TEST_HOTPLUG                                                           \
 "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"vfio-pci\","         \
 "\"host\":\"0000:06:00.0\",\"id\":\"hostdev0\"},\"id\":\"libvirt-80\"}\r\n"

/* Behind no vIOMMU (or a narrow one) a VFIO device just passes. */
static void
testRelayHotplugNarrow(Fixture *f, gconstpointer data)
{
    fixtureHandshake(f);
    cocoQmpRelaySetViommu(f->relay, "intel", 0);
    testPeerSend(&f->libvirt, TEST_HOTPLUG, -1);
    testPeerExpectLine(&f->qemu, TEST_HOTPLUG);
    g_assert_cmpuint(f->agent.gates, ==, 0);
}

/* Behind a wide vIOMMU the agent decides: refused, then released. */
static void
testRelayHotplugGate(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) err = NULL;

    fixtureHandshake(f);
    cocoQmpRelaySetViommu(f->relay, "amd", 0);
    f->agent.release = FALSE;
    testPeerSend(&f->libvirt, TEST_HOTPLUG, -1);
    err = testPeerReadMsg(&f->libvirt);
    g_assert_true(cocoQmpMessageIsError(err));
    g_assert_cmpstr(json_node_get_string(err->id), ==, "libvirt-80");
    g_assert_cmpstr(
        cocoQmpMessageErrorDesc(err), ==,
        "qemu-coco: refusing to hot-plug the VFIO host device '0000:06:00.0' behind the vIOMMU 'amd', which lets the guest use IOVAs up to 2^64-1: test says no");
    g_assert_cmpuint(f->agent.gates, ==, 1);
    g_assert_cmpint(f->agent.lastGate, ==, COCO_QMP_GATE_HOSTDEV);
    testPeerExpectNothing(&f->qemu);

    f->agent.release = TRUE;
    testPeerSend(&f->libvirt, TEST_HOTPLUG, -1);
    testPeerExpectLine(&f->qemu, TEST_HOTPLUG);
    g_assert_cmpuint(f->agent.gates, ==, 2);
}

/* Without an agent nothing can vouch for the host: refused. */
static void
testRelayHotplugNoAgent(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) err = NULL;

    fixtureHandshake(f);
    cocoQmpRelaySetViommu(f->relay, "virtio", 0);
    testPeerSend(&f->libvirt, TEST_HOTPLUG, -1);
    err = testPeerReadMsg(&f->libvirt);
    g_assert_true(cocoQmpMessageIsError(err));
    g_assert_nonnull(
        strstr(cocoQmpMessageErrorDesc(err), "no host agent is configured"));
    testPeerExpectNothing(&f->qemu);
}

/* A failed injection fails libvirt's migrate; QEMU never sees it. */
static void
testRelayInjectFailure(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) inj = NULL;
    g_autoptr(CocoQmpMessage) err = NULL;
    g_autoptr(CocoQmpMessage) next = NULL;
    g_autofree char *reply = NULL;

    fixtureHandshake(f);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":"
                 "\"tcp:[::]:49152\"},\"id\":\"libvirt-5\"}\r\n",
                 -1);
    inj = testPeerReadMsg(&f->qemu);
    /* Commands libvirt sends meanwhile keep their order behind it. */
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"query-migrate\",\"id\":\"libvirt-6\"}\r\n",
                 -1);
    testPeerExpectNothing(&f->qemu);
    reply =
        g_strdup_printf("{\"error\": {\"class\": \"GenericError\", \"desc\":"
                        " \"Capability not found\"}, \"id\": \"%s\"}\r\n",
                        json_node_get_string(inj->id));
    testPeerSend(&f->qemu, reply, -1);
    err = testPeerReadMsg(&f->libvirt);
    g_assert_true(cocoQmpMessageIsError(err));
    g_assert_cmpstr(json_node_get_string(err->id), ==, "libvirt-5");
    g_assert_nonnull(strstr(cocoQmpMessageErrorDesc(err), "x-ignore-shared"));
    g_assert_nonnull(
        strstr(cocoQmpMessageErrorDesc(err), "Capability not found"));
    next = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(next->name, ==, "query-migrate");
}

/* Drive a source up to libvirt's migrate-continue. */
static void
fixtureStartSource(Fixture *f)
{
    g_autoptr(CocoQmpMessage) inj = NULL;
    g_autoptr(CocoQmpMessage) fwd = NULL;
    g_autofree char *reply = NULL;

    fixtureHandshake(f);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:/x\"},"
                 "\"id\":\"libvirt-3\"}\r\n",
                 -1);
    inj = testPeerReadMsg(&f->qemu);
    reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(inj->id));
    testPeerSend(&f->qemu, reply, -1);
    testPeerExpectMigration(&f->libvirt, "setup");
    testPeerExpectLine(&f->libvirt, "{\"return\":{},\"id\":\"libvirt-3\"}\r\n");
    testPeerExpectMigration(&f->libvirt, "active");
    fwd = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(fwd->name, ==, "migrate");
    g_free(reply);
    reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(fwd->id));
    testPeerSend(&f->qemu, reply, -1);
    testPeerSend(&f->qemu,
                 "{\"event\": \"MIGRATION\", \"data\": {\"status\": "
                 "\"pre-switchover\"}}\r\n",
                 -1);
    testPeerExpectLine(&f->libvirt,
                       "{\"event\": \"MIGRATION\", \"data\": {\"status\": "
                       "\"pre-switchover\"}}\r\n");
}

static const char *switchover =
    "{\"execute\":\"migrate-continue\",\"arguments\":{\"state\":"
    "\"pre-switchover\"},\"id\":\"libvirt-7\"}\r\n";

static void
testRelayGateRelease(Fixture *f, gconstpointer data)
{
    f->agent.defer = TRUE;
    fixtureStartSource(f);
    testPeerSend(&f->libvirt, switchover, -1);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"query-migrate\",\"id\":\"libvirt-8\"}\r\n",
                 -1);
    testPeerExpectNothing(&f->qemu);
    g_assert_cmpuint(f->agent.gates, ==, 2); /* migrate, pre-switchover */
    g_assert_cmpint(f->agent.lastGate, ==, COCO_QMP_GATE_SWITCHOVER);
    g_assert_cmpint(f->agent.lastRole, ==, COCO_QMP_ROLE_SOURCE);
    /* Events still reach libvirt while the command is held. */
    testPeerSend(&f->qemu, "{\"event\": \"STOP\"}\r\n", -1);
    testPeerExpectLine(&f->libvirt, "{\"event\": \"STOP\"}\r\n");

    f->agent.cb(TRUE, NULL, f->agent.opaque);
    f->agent.cb = NULL;
    testPeerExpectLine(&f->qemu, switchover);
    testPeerExpectLine(
        &f->qemu, "{\"execute\":\"query-migrate\",\"id\":\"libvirt-8\"}\r\n");
}

static void
testRelayGateRefuse(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) err = NULL;
    g_autoptr(CocoQmpMessage) next = NULL;

    f->agent.release = FALSE;
    fixtureStartSource(f);
    testPeerSend(&f->libvirt, switchover, -1);
    err = testPeerReadMsg(&f->libvirt);
    g_assert_true(cocoQmpMessageIsError(err));
    g_assert_cmpstr(json_node_get_string(err->id), ==, "libvirt-7");
    g_assert_nonnull(
        strstr(cocoQmpMessageErrorDesc(err), "refused the switchover"));
    g_assert_nonnull(strstr(cocoQmpMessageErrorDesc(err), "test says no"));
    /* QEMU never saw migrate-continue: the next thing is libvirt's cancel. */
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate_cancel\",\"id\":\"libvirt-8\"}\r\n",
                 -1);
    next = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(next->name, ==, "migrate_cancel");
}

/* Wait until libvirt received @n events: the relay has seen them. */
static void
fixtureSyncEvents(Fixture *f, guint n)
{
    guint i;

    for (i = 0; i < n; i++) {
        g_autoptr(CocoQmpMessage) ev = testPeerReadMsg(&f->libvirt);

        g_assert_cmpint(ev->kind, ==, COCO_QMP_KIND_EVENT);
    }
}

/*
 * A cancelled source: QEMU resumes it itself (in either event order), so a
 * later 'cont' (virsh resume) is not a migration's and is not gated. A
 * source whose migration completed stays paused: its 'cont' is gated.
 */
static void
testRelaySourceCancelled(Fixture *f, gconstpointer data)
{
    const char *cont = "{\"execute\":\"cont\",\"id\":\"libvirt-40\"}\r\n";

    fixtureStartSource(f);
    testPeerSend(&f->qemu, "{\"event\": \"STOP\"}\r\n", -1);
    testPeerSend(&f->qemu,
                 "{\"event\": \"MIGRATION\", \"data\": {\"status\": "
                 "\"cancelled\"}}\r\n",
                 -1);
    testPeerSend(&f->qemu, "{\"event\": \"RESUME\"}\r\n", -1);
    fixtureSyncEvents(f, 3);
    testPeerSend(&f->libvirt, cont, -1);
    testPeerExpectLine(&f->qemu, cont);
    g_assert_cmpuint(f->agent.gates, ==, 1); /* migrate only */
}

/*
 * The agent's 'pause' (its source session is frozen): QEMU resumed the
 * source by itself after its migration failed past the switchover. The
 * relay stops it, stops it again whenever QEMU resumes it, and gates
 * libvirt's 'cont' until the agent releases one.
 */
static void
testRelayAgentPause(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) stop = NULL;
    g_autoptr(CocoQmpMessage) again = NULL;
    g_autoptr(CocoQmpMessage) err = NULL;
    g_autoptr(CocoQmpMessage) ret = NULL;
    g_autofree char *reply = NULL;
    const char *cont = "{\"execute\":\"cont\",\"id\":\"libvirt-42\"}\r\n";
    JsonObject *o;

    fixtureStartSource(f);
    testPeerSend(&f->qemu, "{\"event\": \"STOP\"}\r\n", -1);
    testPeerSend(&f->qemu,
                 "{\"event\": \"MIGRATION\", \"data\": {\"status\": "
                 "\"failed\"}}\r\n",
                 -1);
    testPeerSend(&f->qemu, "{\"event\": \"RESUME\"}\r\n", -1);
    fixtureSyncEvents(f, 3);
    cocoQmpAgentEmitPause(f->agentObj, "the destination was lost");
    stop = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(stop->name, ==, "stop");
    reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(stop->id));
    testPeerSend(&f->qemu, reply, -1);
    g_clear_pointer(&reply, g_free);
    testPeerSend(&f->qemu, "{\"event\": \"STOP\"}\r\n", -1);
    /* QEMU resumes it again: stopped again. */
    testPeerSend(&f->qemu, "{\"event\": \"RESUME\"}\r\n", -1);
    again = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(again->name, ==, "stop");
    reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(again->id));
    testPeerSend(&f->qemu, reply, -1);
    fixtureSyncEvents(f, 2);
    /* libvirt's (or the operator's) 'cont' goes to the agent, which
     * refuses it while the source is frozen. */
    f->agent.release = FALSE;
    testPeerSend(&f->libvirt, cont, -1);
    err = testPeerReadMsg(&f->libvirt);
    g_assert_true(cocoQmpMessageIsError(err));
    g_assert_nonnull(strstr(cocoQmpMessageErrorDesc(err), "refused to resume"));
    g_assert_cmpint(f->agent.lastGate, ==, COCO_QMP_GATE_CONT);
    g_assert_cmpint(f->agent.lastRole, ==, COCO_QMP_ROLE_SOURCE);
    /* The source recovered (the abort token came): 'cont' is released and
     * QEMU may run it. */
    f->agent.release = TRUE;
    testPeerSend(&f->libvirt, cont, -1);
    testPeerExpectLine(&f->qemu, cont);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"x-coco-query-relay\",\"id\":\"libvirt-43\"}\r\n", -1);
    ret = testPeerReadMsg(&f->libvirt);
    o = json_object_get_object_member(ret->obj, "return");
    g_assert_cmpint(json_object_get_int_member(o, "stops"), ==, 2);
    g_assert_false(json_object_get_boolean_member(o, "hold-paused"));
}

/*
 * The agent's 'resume' (the abort token came back) on a source QEMU had
 * resumed by itself and the relay stopped again (it kept it paused for
 * the agent): libvirt saw the guest resume and sends no 'cont' of its
 * own, so the relay runs it. Also when QEMU has not yet answered the
 * relay's 'stop' (case 1): the 'cont' goes after it, and the guest must
 * not stay paused. Case 2: the relay never stopped it (QEMU paused it
 * for the switchover): libvirt's own 'cont' decides, none is sent.
 */
static void
testRelayAgentResumeCase(Fixture *f, guint variant)
{
    g_autoptr(CocoQmpMessage) stop = NULL;
    g_autoptr(CocoQmpMessage) cont = NULL;
    g_autofree char *reply = NULL;

    fixtureStartSource(f);
    testPeerSend(&f->qemu, "{\"event\": \"STOP\"}\r\n", -1);
    fixtureSyncEvents(f, 1);
    cocoQmpAgentEmitPause(f->agentObj, "the switchover");
    if (variant == 2) {
        cocoQmpAgentEmitResume(f->agentObj, "the abort token came back");
        testPeerExpectNothing(&f->qemu);
        return;
    }
    testPeerSend(&f->qemu,
                 "{\"event\": \"MIGRATION\", \"data\": {\"status\": "
                 "\"failed\"}}\r\n",
                 -1);
    testPeerSend(&f->qemu, "{\"event\": \"RESUME\"}\r\n", -1);
    fixtureSyncEvents(f, 2);
    stop = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(stop->name, ==, "stop");
    reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(stop->id));
    if (variant == 0) {
        testPeerSend(&f->qemu, "{\"event\": \"STOP\"}\r\n", -1);
        testPeerSend(&f->qemu, reply, -1);
        fixtureSyncEvents(f, 1);
    }
    cocoQmpAgentEmitResume(f->agentObj, "the abort token came back");
    cont = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(cont->name, ==, "cont");
    if (variant == 1) {
        g_autofree char *contReply =
            g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(cont->id));

        testPeerSend(&f->qemu, "{\"event\": \"STOP\"}\r\n", -1);
        testPeerSend(&f->qemu, reply, -1);
        testPeerSend(&f->qemu, "{\"event\": \"RESUME\"}\r\n", -1);
        testPeerSend(&f->qemu, contReply, -1);
        fixtureSyncEvents(f, 2);
    }
    /* Resumed for good: QEMU's next RESUME is not stopped again. */
    testPeerExpectNothing(&f->qemu);
}

static void
testRelayAgentResumeStopped(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    testRelayAgentResumeCase(f, 0);
}

static void
testRelayAgentResumeStopUnanswered(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    testRelayAgentResumeCase(f, 1);
}

static void
testRelayAgentResumeNotStopped(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    testRelayAgentResumeCase(f, 2);
}

static void
testRelaySourceCompletedCont(Fixture *f, gconstpointer data)
{
    const char *cont = "{\"execute\":\"cont\",\"id\":\"libvirt-41\"}\r\n";

    fixtureStartSource(f);
    testPeerSend(&f->qemu, "{\"event\": \"STOP\"}\r\n", -1);
    testPeerSend(&f->qemu,
                 "{\"event\": \"MIGRATION\", \"data\": {\"status\": "
                 "\"completed\"}}\r\n",
                 -1);
    fixtureSyncEvents(f, 2);
    testPeerSend(&f->libvirt, cont, -1);
    testPeerExpectLine(&f->qemu, cont);
    g_assert_cmpuint(f->agent.gates, ==, 2); /* migrate, cont */
    g_assert_cmpint(f->agent.lastGate, ==, COCO_QMP_GATE_CONT);
    g_assert_cmpint(f->agent.lastRole, ==, COCO_QMP_ROLE_SOURCE);
}

/* 'cont' is gated only during a migration. */
static void
testRelayContGate(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) inj = NULL;
    g_autoptr(CocoQmpMessage) fwd = NULL;
    g_autoptr(CocoQmpMessage) err = NULL;
    g_autofree char *reply = NULL;
    const char *cont = "{\"execute\":\"cont\",\"id\":\"libvirt-20\"}\r\n";

    fixtureHandshake(f);
    /* A guest's first start: no migration, no gate. */
    testPeerSend(&f->libvirt, cont, -1);
    testPeerExpectLine(&f->qemu, cont);
    g_assert_cmpuint(f->agent.gates, ==, 0);

    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":"
                 "\"tcp:[::]:49152\"},\"id\":\"libvirt-5\"}\r\n",
                 -1);
    inj = testPeerReadMsg(&f->qemu);
    reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(inj->id));
    testPeerSend(&f->qemu, reply, -1);
    fwd = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(fwd->name, ==, "migrate-incoming");

    f->agent.release = FALSE;
    testPeerSend(&f->libvirt, cont, -1);
    err = testPeerReadMsg(&f->libvirt);
    g_assert_true(cocoQmpMessageIsError(err));
    g_assert_nonnull(strstr(cocoQmpMessageErrorDesc(err), "refused to resume"));
    g_assert_cmpint(f->agent.lastGate, ==, COCO_QMP_GATE_CONT);
    g_assert_cmpint(f->agent.lastRole, ==, COCO_QMP_ROLE_DESTINATION);

    f->agent.release = TRUE;
    testPeerSend(&f->libvirt, cont, -1);
    testPeerExpectLine(&f->qemu, cont);
    g_assert_cmpuint(f->agent.gates, ==, 2);
    /* Released: the migration is over, the next cont is not gated. */
    testPeerSend(&f->libvirt, cont, -1);
    testPeerExpectLine(&f->qemu, cont);
    g_assert_cmpuint(f->agent.gates, ==, 2);
}

/* Nova's live_migration_permit_post_copy: libvirt turns 'postcopy-ram'
 * on; QEMU never sees it (with x-ignore-shared it fails every
 * migration), libvirt gets QEMU's answer, the switch is refused. */
static void
testRelayPostcopyKept(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) caps = NULL;
    g_autoptr(CocoQmpMessage) refused = NULL;
    g_autoptr(CocoQmpMessage) st = NULL;
    JsonArray *arr;

    fixtureHandshake(f);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{"
        "\"capabilities\":[{\"capability\":\"postcopy-ram\",\"state\":true},"
        "{\"capability\":\"pause-before-switchover\",\"state\":true},"
        "{\"capability\":\"postcopy-preempt\",\"state\":false}]},"
        "\"id\":\"libvirt-2\"}\r\n",
        -1);
    caps = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(caps->name, ==, "migrate-set-capabilities");
    g_assert_cmpstr(json_node_get_string(caps->id), ==, "libvirt-2");
    arr = json_object_get_array_member(cocoQmpMessageGetArguments(caps),
                                       "capabilities");
    g_assert_cmpuint(json_array_get_length(arr), ==, 1);
    g_assert_cmpstr(
        json_object_get_string_member(
            json_node_get_object(json_array_get_element(arr, 0)), "capability"),
        ==, "pause-before-switchover");
    /* Only post-copy: the relay answers for QEMU. */
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{"
        "\"capabilities\":[{\"capability\":\"postcopy-ram\",\"state\":true}]},"
        "\"id\":\"libvirt-3\"}\r\n",
        -1);
    testPeerExpectLine(&f->libvirt, "{\"return\":{},\"id\":\"libvirt-3\"}\r\n");
    testPeerExpectNothing(&f->qemu);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"migrate-start-postcopy\",\"id\":\"libvirt-4\"}\r\n",
        -1);
    refused = testPeerReadMsg(&f->libvirt);
    g_assert_true(cocoQmpMessageIsError(refused));
    g_assert_cmpstr(json_node_get_string(refused->id), ==, "libvirt-4");
    g_assert_true(g_str_has_prefix(cocoQmpMessageErrorDesc(refused),
                                   "qemu-coco: post-copy is not supported for "
                                   "confidential migration: "));
    testPeerExpectNothing(&f->qemu);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"x-coco-query-relay\",\"id\":\"libvirt-5\"}\r\n", -1);
    st = testPeerReadMsg(&f->libvirt);
    g_assert_true(json_object_get_boolean_member(
        json_object_get_object_member(st->obj, "return"),
        "postcopy-requested"));
    /* The migration itself goes on as pre-copy. */
    fixtureOwnedMigrate(f);
}

/* The HMP forms of the gated commands would pass the gates ('virsh
 * qemu-monitor-command --hmp c' resuming a frozen source): refused, naming
 * the QMP command; any other HMP line reaches QEMU. */
static void
testRelayHmpGated(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *line;
        const char *hmp;
        const char *qmp;
    } gated[] = {
        {"c", "c", "cont"},
        {"  cont", "cont", "cont"},
        {"migrate -d tcp:10.0.0.2:4444", "migrate", "migrate"},
        {"migrate_continue pre-switchover", "migrate_continue",
         "migrate-continue"},
        {"migrate_start_postcopy", "migrate_start_postcopy",
         "migrate-start-postcopy"},
        {"migrate_set_capability x-ignore-shared off", "migrate_set_capability",
         "migrate-set-capabilities"},
        {"migrate_incoming\ttcp:0:4444", "migrate_incoming",
         "migrate-incoming"},
    };
    size_t i;

    fixtureHandshake(f);
    for (i = 0; i < G_N_ELEMENTS(gated); i++) {
        g_autoptr(CocoQmpMessage) refused = NULL;
        g_autofree char *json = NULL;
        g_autofree char *cmd = NULL;
        g_autofree char *want = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "execute");
        json_builder_add_string_value(b, "human-monitor-command");
        json_builder_set_member_name(b, "arguments");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "command-line");
        json_builder_add_string_value(b, gated[i].line);
        json_builder_end_object(b);
        json_builder_set_member_name(b, "id");
        json_builder_add_string_value(b, "hmp");
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        json_generator_set_root(gen, root);
        json = json_generator_to_data(gen, NULL);
        cmd = g_strdup_printf("%s\r\n", json);
        testPeerSend(&f->libvirt, cmd, -1);
        refused = testPeerReadMsg(&f->libvirt);
        g_assert_true(cocoQmpMessageIsError(refused));
        g_assert_cmpstr(json_node_get_string(refused->id), ==, "hmp");
        want = g_strdup_printf(
            "qemu-coco: the HMP command '%s' is refused: the relay gates it "
            "for the confidential migration, use the QMP command '%s'",
            gated[i].hmp, gated[i].qmp);
        g_assert_cmpstr(cocoQmpMessageErrorDesc(refused), ==, want);
        testPeerExpectNothing(&f->qemu);
    }
    /* Not gated: a longer name that starts like one, and 'info status'. */
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"human-monitor-command\",\"arguments\":{"
                 "\"command-line\":\"info status\"},\"id\":\"i\"}\r\n",
                 -1);
    testPeerExpectLine(&f->qemu,
                       "{\"execute\":\"human-monitor-command\",\"arguments\":{"
                       "\"command-line\":\"info status\"},\"id\":\"i\"}\r\n");
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"human-monitor-command\",\"arguments\":{"
                 "\"command-line\":\"continue_x\"},\"id\":\"j\"}\r\n",
                 -1);
    testPeerExpectLine(&f->qemu,
                       "{\"execute\":\"human-monitor-command\",\"arguments\":{"
                       "\"command-line\":\"continue_x\"},\"id\":\"j\"}\r\n");
}

/* Tunnelled: libvirt hands QEMU a pipe; refused at 'migrate'. */
static void
testRelayTunnelledRefused(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) caps = NULL;
    g_autoptr(CocoQmpLine) getfd = NULL;
    g_autoptr(CocoQmpMessage) refused = NULL;
    int w;
    int r = testPipeFd(&w);

    fixtureHandshake(f);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{"
        "\"capabilities\":[{\"capability\":\"pause-before-switchover\","
        "\"state\":true}]},\"id\":\"libvirt-2\"}\r\n",
        -1);
    caps = testPeerReadMsg(&f->qemu);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"migrate\"},"
        "\"id\":\"libvirt-3\"}\r\n",
        w);
    getfd = testPeerRead(&f->qemu);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:migrate\"},"
        "\"id\":\"libvirt-4\"}\r\n",
        -1);
    refused = testPeerReadMsg(&f->libvirt);
    g_assert_true(cocoQmpMessageIsError(refused));
    g_assert_nonnull(
        strstr(cocoQmpMessageErrorDesc(refused), "tunnelled migration"));
    g_assert_nonnull(strstr(cocoQmpMessageErrorDesc(refused), "--tunnelled"));
    testPeerExpectNothing(&f->qemu);
    g_assert_cmpuint(f->agent.gates, ==, 0);
    close(w);
    close(r);
}

/* Parallel connections ('multifd', a tcp: URI): refused at 'migrate'; a
 * plain tcp: URI names the destination for the agent. */
static void
testRelayMultifdRefused(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) caps = NULL;
    g_autoptr(CocoQmpMessage) caps2 = NULL;
    g_autoptr(CocoQmpMessage) refused = NULL;
    g_autoptr(CocoQmpMessage) inj = NULL;
    g_autofree char *reply = NULL;

    fixtureHandshake(f);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{"
        "\"capabilities\":[{\"capability\":\"multifd\",\"state\":true}]},"
        "\"id\":\"libvirt-2\"}\r\n",
        -1);
    caps = testPeerReadMsg(&f->qemu);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":"
                 "\"tcp:10.0.0.2:49152\"},\"id\":\"libvirt-3\"}\r\n",
                 -1);
    refused = testPeerReadMsg(&f->libvirt);
    g_assert_true(cocoQmpMessageIsError(refused));
    g_assert_nonnull(strstr(cocoQmpMessageErrorDesc(refused),
                            "parallel migration connections"));
    testPeerExpectNothing(&f->qemu);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{"
        "\"capabilities\":[{\"capability\":\"multifd\",\"state\":false}]},"
        "\"id\":\"libvirt-4\"}\r\n",
        -1);
    caps2 = testPeerReadMsg(&f->qemu);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":"
                 "\"tcp:10.0.0.2:49152\"},\"id\":\"libvirt-5\"}\r\n",
                 -1);
    inj = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(inj->name, ==, "migrate-set-capabilities");
    reply = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n",
                            json_node_get_string(inj->id));
    testPeerSend(&f->qemu, reply, -1);
    testPeerExpectMigration(&f->libvirt, "setup");
    g_assert_cmpuint(f->agent.events->len, >=, 1);
    g_assert_nonnull(strstr(g_ptr_array_index(f->agent.events, 0),
                            "\"peer\":\"10.0.0.2:49152\""));
}

/* libvirt's downtime limit and bandwidth reach QEMU unchanged and the
 * agent (before and during the migration); a STOP during the agents'
 * precopy tells the agent the guest is paused. */
static void
testRelayParameters(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) p1 = NULL;
    g_autoptr(CocoQmpMessage) p2 = NULL;
    g_autoptr(CocoQmpMessage) p3 = NULL;
    g_autoptr(CocoQmpMessage) st = NULL;
    const char *last;
    guint n;

    fixtureHandshake(f);
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate-set-parameters\",\"arguments\":{"
                 "\"downtime-limit\":100,\"max-bandwidth\":10485760},"
                 "\"id\":\"libvirt-2\"}\r\n",
                 -1);
    p1 = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(p1->name, ==, "migrate-set-parameters");
    g_assert_cmpstr(json_node_get_string(p1->id), ==, "libvirt-2");
    g_assert_cmpuint(f->agent.events->len, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(f->agent.events, 0), ==,
                    "migrate-parameters {\"downtime-limit\":100,"
                    "\"max-bandwidth\":10485760}");
    fixtureOwnedMigrate(f);
    /* The job starts with them. */
    n = f->agent.events->len;
    g_assert_nonnull(strstr(g_ptr_array_index(f->agent.events, 1),
                            "\"downtime-limit\":100"));
    g_assert_nonnull(strstr(g_ptr_array_index(f->agent.events, 1),
                            "\"max-bandwidth\":10485760"));
    /* Nova's downtime steps and virsh migrate-setspeed, old commands. */
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate_set_downtime\",\"arguments\":{"
                 "\"value\":0.25},\"id\":\"libvirt-4\"}\r\n",
                 -1);
    p2 = testPeerReadMsg(&f->qemu);
    g_assert_cmpstr(p2->name, ==, "migrate_set_downtime");
    testPeerSend(&f->libvirt,
                 "{\"execute\":\"migrate_set_speed\",\"arguments\":{"
                 "\"value\":1048576},\"id\":\"libvirt-5\"}\r\n",
                 -1);
    p3 = testPeerReadMsg(&f->qemu);
    g_assert_cmpuint(f->agent.events->len, ==, n + 2);
    g_assert_cmpstr(g_ptr_array_index(f->agent.events, n), ==,
                    "migrate-parameters {\"downtime-limit\":250}");
    g_assert_cmpstr(g_ptr_array_index(f->agent.events, n + 1), ==,
                    "migrate-parameters {\"max-bandwidth\":1048576}");
    /* virsh suspend / force-complete during the precopy. */
    testPeerSend(&f->qemu, "{\"event\": \"STOP\"}\r\n", -1);
    testPeerExpectLine(&f->libvirt, "{\"event\": \"STOP\"}\r\n");
    last = g_ptr_array_index(f->agent.events, f->agent.events->len - 1);
    g_assert_cmpstr(last, ==, "run-state {\"running\":false}");
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"x-coco-query-relay\",\"id\":\"libvirt-6\"}\r\n", -1);
    st = testPeerReadMsg(&f->libvirt);
    g_assert_cmpint(
        json_object_get_int_member(
            json_object_get_object_member(st->obj, "return"), "downtime-limit"),
        ==, 250);
}

/* One agent report with a phase and (optionally) a prediction. */
static void
testAgentReport(Fixture *f, guint64 transferred, guint64 remaining,
                guint64 epoch, guint64 rate, gint64 expected, const char *phase)
{
    g_autoptr(JsonObject) p = json_object_new();

    json_object_set_string_member(p, "type", "progress");
    json_object_set_int_member(p, "id", 1);
    json_object_set_string_member(p, "phase", phase);
    json_object_set_int_member(p, "total", 201326592);
    json_object_set_int_member(p, "transferred", transferred);
    json_object_set_int_member(p, "remaining", remaining);
    json_object_set_int_member(p, "pages", transferred / 4096);
    json_object_set_int_member(p, "epoch", epoch);
    json_object_set_int_member(p, "rate", rate);
    json_object_set_int_member(p, "dirty_rate", 250);
    if (expected >= 0)
        json_object_set_int_member(p, "expected_downtime", expected);
    cocoQmpAgentEmitProgress(f->agentObj, p);
}

/*
 * libvirt polls 'query-migrate' while the agents work (Nova's and VDSM's
 * monitors): whatever the agent reports (a tiny first rate, 0 remaining
 * during a long round, a stale report of an older epoch, a prediction
 * out of range), what libvirt sees stays possible: expected-downtime
 * bounded, remaining never rising within an epoch and never 0 before
 * the end, dirty-sync-count never falling.
 */
static void
testRelayJobNumbers(Fixture *f, gconstpointer data)
{
    static const struct {
        guint64 transferred, remaining, epoch, rate;
        gint64 expected;
        const char *phase;
    } reports[] = {
        {4096, 201322496, 0, 1, -1, "precopy"}, /* first: rate ~0 */
        {100000000, 101326592, 0, 100000000, -1, "precopy"},
        {201326592, 0, 0, 100000000, -1, "precopy"}, /* end of pass 0 */
        {201326592, 0, 1, 100000000, -1, "precopy"}, /* between epochs */
        {202000000, 8000000, 1, 100000000, -1, "precopy"}, /* rises */
        {203000000, 3000000, 1, 100000000, 40, "precopy"},
        {203500000, 2000000, 0, 100000000, 40, "precopy"}, /* stale */
        {204000000, 500000, 2, 100000000, 900000000, "precopy"},
        {204100000, 0, 2, 100000000, 5, "precopy"},
    };
    gint64 lastSync = -1;
    gint64 lastRemaining = G_MAXINT64;
    gint64 lastEpoch = -1;
    size_t i;

    fixtureOwnedMigrate(f);
    for (i = 0; i < G_N_ELEMENTS(reports); i++) {
        g_autoptr(CocoQmpMessage) q = NULL;
        g_autofree char *id = g_strdup_printf("libvirt-%zu", 10 + i);
        JsonObject *ret;
        JsonObject *ram;
        gint64 sync;
        gint64 remaining;
        gint64 downtime;

        testAgentReport(f, reports[i].transferred, reports[i].remaining,
                        reports[i].epoch, reports[i].rate, reports[i].expected,
                        reports[i].phase);
        /* A new epoch's pass event comes before the relay's answer. */
        {
            g_autoptr(CocoQmpMessage) m = NULL;

            testPeerSend(
                &f->libvirt,
                "{\"execute\":\"x-coco-query-relay\",\"id\":\"s\"}\r\n", -1);
            m = testPeerReadMsg(&f->libvirt);
            if (m->kind == COCO_QMP_KIND_EVENT) {
                g_assert_cmpstr(m->name, ==, "MIGRATION_PASS");
                g_clear_pointer(&m, cocoQmpMessageFree);
                m = testPeerReadMsg(&f->libvirt);
            }
            g_assert_cmpint(m->kind, ==, COCO_QMP_KIND_REPLY);
        }
        q = testQueryMigrate(&f->libvirt, id, &ret);
        ram = json_object_get_object_member(ret, "ram");
        sync = json_object_get_int_member(ram, "dirty-sync-count");
        remaining = json_object_get_int_member(ram, "remaining");
        downtime = json_object_get_int_member(ret, "expected-downtime");
        if (g_test_verbose())
            g_printerr("poll %zu: sync %" G_GINT64_FORMAT
                       " remaining %" G_GINT64_FORMAT
                       " expected-downtime %" G_GINT64_FORMAT "\n",
                       i, sync, remaining, downtime);
        g_assert_cmpint(sync, >=, lastSync);
        g_assert_cmpint(remaining, >, 0);
        g_assert_cmpint(remaining, <=,
                        json_object_get_int_member(ram, "total"));
        if (sync == lastEpoch)
            g_assert_cmpint(remaining, <=, lastRemaining);
        g_assert_cmpint(downtime, >=, 0);
        g_assert_cmpint(downtime, <=, COCO_QMP_EXPECTED_DOWNTIME_MAX);
        lastSync = sync;
        lastEpoch = sync;
        lastRemaining = remaining;
    }
    g_assert_cmpint(lastSync, ==, 2);
}

static void
testRelayQuery(Fixture *f, gconstpointer data)
{
    g_autoptr(CocoQmpMessage) ret = NULL;
    JsonObject *o;

    fixtureHandshake(f);
    testPeerSend(
        &f->libvirt,
        "{\"execute\":\"x-coco-query-relay\",\"id\":\"libvirt-30\"}\r\n", -1);
    ret = testPeerReadMsg(&f->libvirt);
    g_assert_cmpstr(json_node_get_string(ret->id), ==, "libvirt-30");
    o = json_object_get_object_member(ret->obj, "return");
    g_assert_cmpstr(json_object_get_string_member(o, "relay"), ==, "qemu-coco");
    g_assert_true(json_object_get_boolean_member(o, "agent"));
    g_assert_cmpint(json_object_get_int_member(o, "sessions"), ==, 1);
    testPeerExpectNothing(&f->qemu);
}

/* libvirt goes away: QEMU's session ends too, so the next one is fresh. */
static void
testRelaySessionClose(Fixture *f, gconstpointer data)
{
    fixtureHandshake(f);
    g_assert_cmpuint(cocoQmpRelayGetSessionCount(f->relay), ==, 1);
    close(f->libvirt.fd);
    f->libvirt.fd = -1;
    g_assert_null(testPeerRead(&f->qemu));
    g_assert_cmpuint(cocoQmpRelayGetSessionCount(f->relay), ==, 0);
}

/* A session closing while its gate waits: the late verdict is harmless. */
static void
testRelayCloseDuringGate(Fixture *f, gconstpointer data)
{
    f->agent.defer = TRUE;
    fixtureStartSource(f);
    testPeerSend(&f->libvirt, switchover, -1);
    testPeerExpectNothing(&f->qemu);
    close(f->libvirt.fd);
    f->libvirt.fd = -1;
    g_assert_null(testPeerRead(&f->qemu));
    f->agent.cb(TRUE, NULL, f->agent.opaque);
    f->agent.cb = NULL;
    g_assert_cmpuint(cocoQmpRelayGetSessionCount(f->relay), ==, 0);
}

/* ---- the socket agent ---- */

typedef struct {
    gboolean done;
    gboolean release;
    char *reason;
} TestVerdict;

static void
testVerdictCb(gboolean release, const char *reason, gpointer opaque)
{
    TestVerdict *v = opaque;

    v->done = TRUE;
    v->release = release;
    v->reason = g_strdup(reason);
}

static void
testCancelCb(const char *reason, gpointer opaque)
{
    char **out = opaque;

    g_free(*out);
    *out = g_strdup(reason);
}

static void
testProgressCb(JsonObject *msg, gpointer opaque)
{
    gint64 *total = opaque;

    *total = json_object_get_int_member(msg, "total");
}

static void
testSocketAgent(void)
{
    gint64 progressTotal = 0;
    g_autofree char *cancelReason = NULL;
    g_autofree char *dir = g_dir_make_tmp("cocoqmptest-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "agent.sock", NULL);
    g_autoptr(CocoQmpAgent) agent = NULL;
    g_autoptr(CocoQmpMessage) hello = NULL;
    g_autoptr(CocoQmpMessage) gate = NULL;
    g_autoptr(CocoQmpMessage) ev = NULL;
    g_autofree char *reply = NULL;
    g_autoptr(JsonObject) data = json_object_new();
    struct sockaddr_un addr = {0};
    TestVerdict v = {0};
    TestVerdict v2 = {0};
    JsonObject *h = json_object_new();
    TestPeer peer;
    int lfd;
    int cfd;

    json_object_set_string_member(h, "name", "guest");
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(lfd, 1), ==, 0);

    agent = cocoQmpAgentNewSocket(path, NULL, h, 60);
    json_object_set_string_member(data, "status", "active");
    cocoQmpAgentNotify(agent, "MIGRATION", data);
    cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(cfd, >=, 0);
    testPeerInit(&peer, cfd);
    hello = testPeerReadMsg(&peer);
    g_assert_cmpstr(json_object_get_string_member(hello->obj, "type"), ==,
                    "hello");
    g_assert_cmpstr(json_object_get_string_member(hello->obj, "name"), ==,
                    "guest");
    ev = testPeerReadMsg(&peer);
    g_assert_cmpstr(json_object_get_string_member(ev->obj, "event"), ==,
                    "MIGRATION");

    cocoQmpAgentGate(agent, COCO_QMP_GATE_SWITCHOVER, COCO_QMP_ROLE_SOURCE,
                     testVerdictCb, &v);
    gate = testPeerReadMsg(&peer);
    g_assert_cmpstr(json_object_get_string_member(gate->obj, "type"), ==,
                    "gate");
    g_assert_cmpstr(json_object_get_string_member(gate->obj, "gate"), ==,
                    "pre-switchover");
    g_assert_cmpstr(json_object_get_string_member(gate->obj, "role"), ==,
                    "source");
    g_assert_false(v.done);
    reply = g_strdup_printf("{\"type\":\"verdict\",\"id\":%" G_GINT64_FORMAT
                            ",\"release\":false,\"reason\":\"keys differ\"}\n",
                            json_object_get_int_member(gate->obj, "id"));
    testPeerSend(&peer, reply, -1);
    while (!v.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_false(v.release);
    g_assert_cmpstr(v.reason, ==, "keys differ");

    /* The agent's 'cancel' reaches whoever listens, with its reason. */
    cocoQmpAgentSetCancelFunc(agent, testCancelCb, &cancelReason);
    testPeerSend(&peer, "{\"type\":\"cancel\",\"reason\":\"peer is gone\"}\n",
                 -1);
    while (!cancelReason)
        g_main_context_iteration(NULL, TRUE);
    g_assert_cmpstr(cancelReason, ==, "peer is gone");

    /* Progress counts only for the last 'migrate' gate asked. */
    {
        g_autoptr(CocoQmpMessage) mg = NULL;
        g_autofree char *pr = NULL;
        TestVerdict v3 = {0};
        gint64 id;

        cocoQmpAgentSetProgressFunc(agent, testProgressCb, &progressTotal);
        cocoQmpAgentGate(agent, COCO_QMP_GATE_MIGRATE, COCO_QMP_ROLE_SOURCE,
                         testVerdictCb, &v3);
        mg = testPeerReadMsg(&peer);
        g_assert_cmpstr(json_object_get_string_member(mg->obj, "gate"), ==,
                        "migrate");
        id = json_object_get_int_member(mg->obj, "id");
        pr = g_strdup_printf(
            "{\"type\":\"progress\",\"id\":%" G_GINT64_FORMAT
            ",\"total\":7}\n{\"type\":\"progress\",\"id\":%" G_GINT64_FORMAT
            ",\"total\":9}\n{\"type\":\"verdict\",\"id\":%" G_GINT64_FORMAT
            ",\"release\":true}\n",
            id + 100, id, id);
        testPeerSend(&peer, pr, -1);
        while (!v3.done)
            g_main_context_iteration(NULL, TRUE);
        g_assert_true(v3.release);
        g_assert_cmpint(progressTotal, ==, 9);
        g_free(v3.reason);
    }

    /* The agent dies: a waiting gate is refused, fail closed. */
    cocoQmpAgentGate(agent, COCO_QMP_GATE_CONT, COCO_QMP_ROLE_DESTINATION,
                     testVerdictCb, &v2);
    testPeerClear(&peer);
    close(lfd);
    unlink(path);
    while (!v2.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_false(v2.release);
    g_assert_nonnull(v2.reason);
    g_free(v2.reason);
    memset(&v2, 0, sizeof(v2));

    /* No agent listening at all: refused with the path in the reason. */
    cocoQmpAgentGate(agent, COCO_QMP_GATE_CONT, COCO_QMP_ROLE_DESTINATION,
                     testVerdictCb, &v2);
    g_assert_false(v2.done);
    while (!v2.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_false(v2.release);
    g_assert_nonnull(strstr(v2.reason, path));
    g_free(v.reason);
    g_free(v2.reason);
    rmdir(dir);
}

/* A migration that arrives while the relay says hello waits for the
 * agent's answer: welcome, refusal or nothing within the wait. */
static void
testSocketAgentWaitReady(void)
{
    g_autofree char *dir = g_dir_make_tmp("cocoqmptest-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "agent.sock", NULL);
    g_autoptr(CocoQmpAgent) agent = NULL;
    struct sockaddr_un addr = {0};
    TestVerdict v = {0};
    TestPeer peer;
    int lfd;
    int cfd;

    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(lfd, 4), ==, 0);

    /* Not started: no connection yet (QEMU may not run). */
    agent = cocoQmpAgentNewSocket(path, NULL, NULL, 60);
    g_assert_false(cocoQmpAgentIsReady(agent, &v.reason));
    g_clear_pointer(&v.reason, g_free);

    /* The wait says hello; the answer comes later: welcome. */
    cocoQmpAgentWaitReady(agent, 10000, testVerdictCb, &v);
    cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(cfd, >=, 0);
    testPeerInit(&peer, cfd);
    {
        g_autoptr(CocoQmpMessage) hello = testPeerReadMsg(&peer);

        g_assert_cmpstr(json_object_get_string_member(hello->obj, "type"), ==,
                        "hello");
    }
    g_main_context_iteration(NULL, FALSE);
    g_assert_false(v.done);
    testPeerSend(&peer,
                 "{\"type\":\"welcome\",\"version\":" G_STRINGIFY(
                     COCO_RELAY_PROTOCOL_VERSION) "}\n",
                 -1);
    while (!v.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_true(v.release);
    g_clear_pointer(&v.reason, g_free);

    /* Answered already: at once, but never from inside the call. */
    memset(&v, 0, sizeof(v));
    cocoQmpAgentWaitReady(agent, 10000, testVerdictCb, &v);
    g_assert_false(v.done);
    while (!v.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_true(v.release);
    testPeerClear(&peer);

    /* The agent went; the next wait asks again and hears a refusal. */
    memset(&v, 0, sizeof(v));
    while (cocoQmpAgentIsReady(agent, &v.reason)) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_clear_pointer(&v.reason, g_free);
    cocoQmpAgentWaitReady(agent, 10000, testVerdictCb, &v);
    cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(cfd, >=, 0);
    testPeerInit(&peer, cfd);
    {
        g_autoptr(CocoQmpMessage) hello G_GNUC_UNUSED = testPeerReadMsg(&peer);
    }
    testPeerSend(&peer, "{\"type\":\"refused\",\"reason\":\"not a QEMU\"}\n",
                 -1);
    while (!v.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_false(v.release);
    g_assert_nonnull(strstr(v.reason, "not a QEMU"));
    g_clear_pointer(&v.reason, g_free);
    testPeerClear(&peer);

    /* Nobody answers the hello: not ready once the wait is over (a
     * fresh relay, so the refusal above is not the answer). */
    g_clear_pointer(&agent, cocoQmpAgentFree);
    agent = cocoQmpAgentNewSocket(path, NULL, NULL, 60);
    memset(&v, 0, sizeof(v));
    cocoQmpAgentWaitReady(agent, 200, testVerdictCb, &v);
    cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(cfd, >=, 0);
    while (!v.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_false(v.release);
    g_assert_nonnull(v.reason);
    g_free(v.reason);
    close(cfd);
    close(lfd);
    unlink(path);
    rmdir(dir);
}

/* ---- who owns the source job: the one transition table ---- */

static void
testOwnTable(void)
{
    static const struct {
        CocoQmpOwn from;
        CocoQmpOwnEvent ev;
        CocoQmpOwn to; /* COCO_QMP_OWN_LAST: refused */
    } cases[] = {
        {COCO_QMP_OWN_NONE, COCO_QMP_OWN_EV_HOLD, COCO_QMP_OWN_PRECOPY},
        {COCO_QMP_OWN_NONE, COCO_QMP_OWN_EV_FORWARD, COCO_QMP_OWN_LAST},
        {COCO_QMP_OWN_NONE, COCO_QMP_OWN_EV_CANCEL, COCO_QMP_OWN_LAST},
        {COCO_QMP_OWN_PRECOPY, COCO_QMP_OWN_EV_FORWARD, COCO_QMP_OWN_FORWARDED},
        {COCO_QMP_OWN_PRECOPY, COCO_QMP_OWN_EV_FAIL, COCO_QMP_OWN_FAILED},
        {COCO_QMP_OWN_PRECOPY, COCO_QMP_OWN_EV_CANCEL, COCO_QMP_OWN_CANCELLING},
        {COCO_QMP_OWN_PRECOPY, COCO_QMP_OWN_EV_CANCELLED,
         COCO_QMP_OWN_CANCELLED},
        {COCO_QMP_OWN_PRECOPY, COCO_QMP_OWN_EV_HOLD, COCO_QMP_OWN_LAST},
        /* A second cancel changes nothing; the agent's answer ends it. */
        {COCO_QMP_OWN_CANCELLING, COCO_QMP_OWN_EV_CANCEL, COCO_QMP_OWN_LAST},
        {COCO_QMP_OWN_CANCELLING, COCO_QMP_OWN_EV_FORWARD, COCO_QMP_OWN_LAST},
        {COCO_QMP_OWN_CANCELLING, COCO_QMP_OWN_EV_CANCELLED,
         COCO_QMP_OWN_CANCELLED},
        /* QEMU refuses to start: the relay fails the job. */
        {COCO_QMP_OWN_FORWARDED, COCO_QMP_OWN_EV_FAIL, COCO_QMP_OWN_FAILED},
        {COCO_QMP_OWN_FORWARDED, COCO_QMP_OWN_EV_CANCEL, COCO_QMP_OWN_LAST},
        {COCO_QMP_OWN_FAILED, COCO_QMP_OWN_EV_FORWARD, COCO_QMP_OWN_LAST},
        {COCO_QMP_OWN_CANCELLED, COCO_QMP_OWN_EV_FAIL, COCO_QMP_OWN_LAST},
    };
    CocoQmpOwn unused = COCO_QMP_OWN_LAST;
    size_t i;
    int st;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        CocoQmpOwn to = COCO_QMP_OWN_LAST;
        gboolean ok = cocoQmpOwnNext(cases[i].from, cases[i].ev, &to);

        g_assert_cmpint(ok, ==, cases[i].to != COCO_QMP_OWN_LAST);
        g_assert_cmpint(to, ==, cases[i].to);
    }
    /* A new job takes the ownership back from every state. */
    for (st = 0; st < COCO_QMP_OWN_LAST; st++) {
        CocoQmpOwn to = COCO_QMP_OWN_LAST;

        g_assert_true(cocoQmpOwnNext(st, COCO_QMP_OWN_EV_NEW_JOB, &to));
        g_assert_cmpint(to, ==, COCO_QMP_OWN_NONE);
    }
    g_assert_false(
        cocoQmpOwnNext(COCO_QMP_OWN_LAST, COCO_QMP_OWN_EV_NEW_JOB, &unused));
}

/* ---- the x-ignore-shared rule ---- */

static void
testMigrationRule(void)
{
    static const struct {
        const char *uri;
        CocoQmpFdKind fd;
        gboolean pause;
        CocoQmpJob job;
    } src[] = {
        {"tcp:hostB:49152", COCO_QMP_FD_UNKNOWN, FALSE, COCO_QMP_JOB_MIGRATION},
        {"unix:/run/x.sock", COCO_QMP_FD_UNKNOWN, FALSE,
         COCO_QMP_JOB_MIGRATION},
        {"fd:migrate", COCO_QMP_FD_SOCKET, FALSE, COCO_QMP_JOB_MIGRATION},
        {"fd:migrate", COCO_QMP_FD_SOCKET, TRUE, COCO_QMP_JOB_MIGRATION},
        /* virsh save / snapshot / dump: a pipe or file, no pause */
        {"fd:migrate", COCO_QMP_FD_OTHER, FALSE, COCO_QMP_JOB_IMAGE},
        {"fd:migrate", COCO_QMP_FD_UNKNOWN, FALSE, COCO_QMP_JOB_IMAGE},
        /* tunnelled migration: a pipe, but libvirt paused before switchover */
        {"fd:migrate", COCO_QMP_FD_OTHER, TRUE, COCO_QMP_JOB_MIGRATION},
        {"exec:cat > /x", COCO_QMP_FD_UNKNOWN, TRUE, COCO_QMP_JOB_IMAGE},
        {"file:/x", COCO_QMP_FD_UNKNOWN, FALSE, COCO_QMP_JOB_IMAGE},
        {NULL, COCO_QMP_FD_UNKNOWN, TRUE, COCO_QMP_JOB_IMAGE},
    };
    static const struct {
        const char *uri;
        gboolean late;
        CocoQmpJob job;
    } dst[] = {
        {"tcp:[::]:49152", FALSE, COCO_QMP_JOB_MIGRATION},
        {"unix:/x", FALSE, COCO_QMP_JOB_MIGRATION},
        {"fd:26", FALSE, COCO_QMP_JOB_IMAGE}, /* virsh restore */
        {"fd:26", TRUE, COCO_QMP_JOB_MIGRATION}, /* tunnelled */
        {"exec:cat /x", FALSE, COCO_QMP_JOB_IMAGE},
        {"defer", FALSE, COCO_QMP_JOB_IMAGE},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(src); i++)
        g_assert_cmpint(
            cocoQmpMigrationClassifySource(src[i].uri, src[i].fd, src[i].pause),
            ==, src[i].job);
    for (i = 0; i < G_N_ELEMENTS(dst); i++)
        g_assert_cmpint(
            cocoQmpMigrationClassifyDestination(dst[i].uri, dst[i].late), ==,
            dst[i].job);
    g_assert_cmpstr(cocoQmpMigrationFdName("fd:migrate"), ==, "migrate");
    g_assert_null(cocoQmpMigrationFdName("fd:"));
    g_assert_null(cocoQmpMigrationFdName("tcp:x:1"));
}

/* ---- QEMU's argv ---- */

static void
testGuestArgv(void)
{
    char *argv[] = {
        (char *)"/usr/libexec/qemu-coco",
        (char *)"-name",
        (char *)"guest=vm1,debug-threads=on",
        (char *)"-uuid",
        (char *)"c0c0c0c0-1111-4222-8333-444455556666",
        (char *)"-object",
        (char
             *)"{\"qom-type\":\"memory-backend-file\",\"id\":\"pc.ram\","
               "\"mem-path\":\"/ram/libvirt/qemu/1-vm1/pc.ram\",\"share\":true,"
               "\"size\":201326592}",
        (char *)"-object",
        (char *)"memory-backend-file,id=ram-node1,mem-path=/ram/a,,b,share=on,"
                "size=1048576",
        (char *)"-object",
        (char *)"{\"qom-type\":\"secret\",\"id\":\"masterKey0\"}",
        (char *)"-chardev",
        (char *)"socket,id=charmonitor,fd=21,server=on,wait=off",
        (char *)"-mon",
        (char *)"chardev=charmonitor,id=monitor,mode=control",
        NULL,
    };
    char *probe[] = {(char *)"qemu-coco",
                     (char *)"-machine",
                     (char *)"none,accel=kvm:tcg",
                     (char *)"-qmp",
                     (char *)"unix:/var/lib/libvirt/qemu/qmp.monitor,server=on",
                     NULL};
    g_autoptr(CocoQmpGuestInfo) info = NULL;
    g_autoptr(CocoQmpGuestInfo) pinfo = NULL;
    g_autoptr(JsonObject) hello = NULL;
    g_autofree char *rewritten = NULL;
    CocoQmpRamBackend *r;

    info = cocoQmpGuestInfoParse(G_N_ELEMENTS(argv) - 1, argv, NULL);
    g_assert_nonnull(info);
    g_assert_cmpint(info->monitorFd, ==, 21);
    g_assert_cmpint(info->monitorArg, ==, 12);
    g_assert_cmpstr(info->name, ==, "vm1");
    g_assert_cmpstr(info->uuid, ==, "c0c0c0c0-1111-4222-8333-444455556666");
    g_assert_cmpuint(info->ram->len, ==, 2);
    r = g_ptr_array_index(info->ram, 0);
    g_assert_cmpstr(r->id, ==, "pc.ram");
    g_assert_cmpstr(r->path, ==, "/ram/libvirt/qemu/1-vm1/pc.ram");
    g_assert_cmpuint(r->size, ==, 201326592);
    g_assert_true(r->share);
    r = g_ptr_array_index(info->ram, 1);
    g_assert_cmpstr(r->path, ==, "/ram/a,b");
    g_assert_cmpuint(r->size, ==, 1048576);

    rewritten = cocoQmpGuestRewriteMonitor(argv[12], 7);
    g_assert_cmpstr(rewritten, ==,
                    "socket,id=charmonitor,fd=7,server=on,wait=off");
    hello = cocoQmpGuestInfoToHello(info, 4242);
    g_assert_cmpint(json_object_get_int_member(hello, "pid"), ==, 4242);
    g_assert_cmpuint(
        json_array_get_length(json_object_get_array_member(hello, "ram")), ==,
        2);

    pinfo = cocoQmpGuestInfoParse(G_N_ELEMENTS(probe) - 1, probe, NULL);
    g_assert_nonnull(pinfo);
    g_assert_cmpint(pinfo->monitorFd, ==, -1);
}

/* A value qemu-coco refuses is quoted on one line, whatever libvirt put in
 * it (the domain's XML is a libvirt user's). */
static void
testGuestInfoRefusalOneLine(void)
{
    char *badObject[] = {(char *)"qemu-coco", (char *)"-object",
                         (char *)"{\"qom-type\":\n\"memory-backend-file\"",
                         NULL};
    char *noPath[] = {(char *)"qemu-coco", (char *)"-object",
                      (char *)"{\"qom-type\":\"memory-backend-file\","
                              "\"id\":\"pc\\nram\"}",
                      NULL};
    char *badFd[] = {(char *)"qemu-coco", (char *)"-chardev",
                     (char *)"socket,id=charmonitor,fd=2\n1", NULL};
    char **cases[] = {badObject, noPath, badFd};
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(CocoQmpGuestInfo) info =
            cocoQmpGuestInfoParse(3, cases[i], &err);

        g_assert_null(info);
        g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
        g_assert_null(strchr(err->message, '\n'));
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/qmp/message/kinds", testMessageKinds);
    g_test_add_func("/qmp/precopy/own-table", testOwnTable);
    g_test_add_func("/qmp/message/invalid", testMessageInvalid);
    g_test_add_func("/qmp/message/id-and-build", testMessageIdAndBuild);
    g_test_add_func("/qmp/linebuf/split", testLineBufSplit);
    g_test_add_func("/qmp/guest/refusal-one-line", testGuestInfoRefusalOneLine);
    g_test_add_func("/qmp/agent/wait-ready-context", testAgentWaitReadyContext);
    g_test_add_func("/qmp/linebuf/fds", testLineBufFds);
    g_test_add_func("/qmp/linebuf/too-long", testLineBufTooLong);
    g_test_add_func("/qmp/vfio-report/parse", testVfioReportParse);
    g_test_add_func("/qmp/vfio-report/state", testVfioStateParse);
    g_test_add_func("/qmp/hostdev/viommu", testViommuFromArgv);
    g_test_add_func("/qmp/hostdev/is-vfio-add", testHostdevIsVfioAdd);
    g_test_add("/qmp/relay/hotplug-narrow", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayHotplugNarrow, fixtureTearDown);
    g_test_add("/qmp/relay/hotplug-gate", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayHotplugGate, fixtureTearDown);
    g_test_add("/qmp/relay/hotplug-no-agent", Fixture, GINT_TO_POINTER(FALSE),
               fixtureSetUp, testRelayHotplugNoAgent, fixtureTearDown);
    g_test_add("/qmp/relay/vfio-leak", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayVfioLeak, fixtureTearDown);
    g_test_add("/qmp/relay/vfio-state", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayVfioState, fixtureTearDown);
    g_test_add("/qmp/relay/pass-through", Fixture, GINT_TO_POINTER(FALSE),
               fixtureSetUp, testRelayPassThrough, fixtureTearDown);
    g_test_add("/qmp/relay/two-on-one-line", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayTwoOnOneLine, fixtureTearDown);
    g_test_add("/qmp/relay/fd-passing", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayFdPassing, fixtureTearDown);
    g_test_add("/qmp/relay/migrate-injects", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayMigrateInjects, fixtureTearDown);
    g_test_add("/qmp/relay/save-turns-off", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelaySaveTurnsOff, fixtureTearDown);
    g_test_add("/qmp/relay/capabilities-mistyped", Fixture,
               GINT_TO_POINTER(TRUE), fixtureSetUp,
               testRelayCapabilitiesMistyped, fixtureTearDown);
    g_test_add("/qmp/relay/inject-failure", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayInjectFailure, fixtureTearDown);
    g_test_add("/qmp/relay/migrate-precopy", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayMigratePrecopy, fixtureTearDown);
    g_test_add("/qmp/relay/migrate-release", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayMigrateRelease, fixtureTearDown);
    g_test_add("/qmp/relay/migrate-passes", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayMigratePasses, fixtureTearDown);
    g_test_add("/qmp/relay/migrate-qemu-error", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayMigrateQemuError, fixtureTearDown);
    g_test_add("/qmp/relay/migrate-cancel", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayMigrateCancel, fixtureTearDown);
    g_test_add("/qmp/relay/migrate-cancel-release", Fixture,
               GINT_TO_POINTER(TRUE), fixtureSetUp,
               testRelayMigrateCancelRelease, fixtureTearDown);
    g_test_add("/qmp/relay/migrate-close", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayMigrateClose, fixtureTearDown);
    g_test_add("/qmp/relay/migrate-gate-refuse", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayMigrateGateRefuse, fixtureTearDown);
    g_test_add("/qmp/relay/restore-not-gated", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayRestoreNotGated, fixtureTearDown);
    g_test_add("/qmp/relay/agent-cancel", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayAgentCancel, fixtureTearDown);
    g_test_add("/qmp/relay/gate-release", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayGateRelease, fixtureTearDown);
    g_test_add("/qmp/relay/gate-refuse", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayGateRefuse, fixtureTearDown);
    g_test_add("/qmp/relay/cont-gate", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayContGate, fixtureTearDown);
    g_test_add("/qmp/relay/source-cancelled", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelaySourceCancelled, fixtureTearDown);
    g_test_add("/qmp/relay/agent-pause", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayAgentPause, fixtureTearDown);
    g_test_add("/qmp/relay/agent-resume/stopped", Fixture,
               GINT_TO_POINTER(TRUE), fixtureSetUp, testRelayAgentResumeStopped,
               fixtureTearDown);
    g_test_add("/qmp/relay/agent-resume/stop-unanswered", Fixture,
               GINT_TO_POINTER(TRUE), fixtureSetUp,
               testRelayAgentResumeStopUnanswered, fixtureTearDown);
    g_test_add("/qmp/relay/agent-resume/not-stopped", Fixture,
               GINT_TO_POINTER(TRUE), fixtureSetUp,
               testRelayAgentResumeNotStopped, fixtureTearDown);
    g_test_add("/qmp/relay/source-completed-cont", Fixture,
               GINT_TO_POINTER(TRUE), fixtureSetUp,
               testRelaySourceCompletedCont, fixtureTearDown);
    g_test_add("/qmp/relay/postcopy-kept", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayPostcopyKept, fixtureTearDown);
    g_test_add("/qmp/relay/hmp-gated", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayHmpGated, fixtureTearDown);
    g_test_add("/qmp/relay/tunnelled-refused", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayTunnelledRefused, fixtureTearDown);
    g_test_add("/qmp/relay/multifd-refused", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayMultifdRefused, fixtureTearDown);
    g_test_add("/qmp/relay/parameters", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayParameters, fixtureTearDown);
    g_test_add("/qmp/relay/job-numbers", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayJobNumbers, fixtureTearDown);
    g_test_add("/qmp/relay/query", Fixture, GINT_TO_POINTER(TRUE), fixtureSetUp,
               testRelayQuery, fixtureTearDown);
    g_test_add("/qmp/relay/session-close", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelaySessionClose, fixtureTearDown);
    g_test_add("/qmp/relay/close-during-gate", Fixture, GINT_TO_POINTER(TRUE),
               fixtureSetUp, testRelayCloseDuringGate, fixtureTearDown);
    g_test_add_func("/qmp/agent/socket", testSocketAgent);
    g_test_add_func("/qmp/agent/wait-ready", testSocketAgentWaitReady);
    g_test_add_func("/qmp/migration/rule", testMigrationRule);
    g_test_add_func("/qmp/guest/argv", testGuestArgv);
    return g_test_run();
}
