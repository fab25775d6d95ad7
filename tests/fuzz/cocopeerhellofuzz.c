/*
 * cocopeerhellofuzz.c: libFuzzer target for the agents' hello
 * (cocoprotopeer.h): the frame header and the JSON hello of every
 * connection between two agents, the data streams' one parsed before any
 * authentication.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzing=true
 * Run:   build-fuzz/tests/fuzz/cocopeerhellofuzz -max_total_time=600 \
 *            tests/fuzz/cocopeerhellocorpus
 *
 * Beyond ASan and UBSan it checks what the parser promises: a refusal is a
 * COCO_ERROR_AGENT_PROTOCOL with a one-line message; an accepted hello
 * satisfies cocoPeerHelloValidate(), and encoding it and parsing it again
 * gives the same hello.
 */

#include "internal.h"
#include "proto/cocoprotopeer.h"
#include "util/cocoerror.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
checkRefusal(const GError *err)
{
    if (!err || err->domain != COCO_ERROR ||
        err->code != COCO_ERROR_AGENT_PROTOCOL || strchr(err->message, '\n')) {
        g_printerr("bad refusal: %s\n", err ? err->message : "(none)");
        abort();
    }
}

static void
checkHello(const char *text, size_t len)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoPeerHello) hello = cocoPeerHelloParse(text, len, &err);
    g_autoptr(CocoPeerHello) again = NULL;
    g_autoptr(GBytes) frame = NULL;
    g_autoptr(GError) err2 = NULL;
    const uint8_t *p;
    gsize flen;
    uint32_t blen = 0;

    if (!hello) {
        checkRefusal(err);
        return;
    }
    if (cocoPeerHelloValidate(hello, &err2) < 0)
        abort();
    frame = cocoPeerHelloEncode(hello);
    p = g_bytes_get_data(frame, &flen);
    if (flen < COCO_PEER_HEADER ||
        cocoPeerFrameHeader(p, COCO_PEER_HELLO_MAX, &blen, &err2) < 0 ||
        blen != flen - COCO_PEER_HEADER)
        abort();
    if (!(again = cocoPeerHelloParse((const char *)p + COCO_PEER_HEADER, blen,
                                     &err2)) ||
        again->kind != hello->kind || again->session != hello->session ||
        again->streams != hello->streams || again->index != hello->index ||
        g_strcmp0(again->uuid, hello->uuid) != 0 ||
        g_strcmp0(again->token, hello->token) != 0)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *copy = g_malloc(size + 1);
    g_autoptr(GError) err = NULL;
    uint32_t len = 0;

    /* An exact-size copy: ASan sees a read past the end. */
    memcpy(copy, data, size);
    copy[size] = '\0';
    /* As a whole frame: the header first, then the announced JSON. */
    if (size >= COCO_PEER_HEADER) {
        if (cocoPeerFrameHeader((const uint8_t *)copy, COCO_PEER_HELLO_MAX,
                                &len, &err) < 0)
            checkRefusal(err);
        else if (len <= size - COCO_PEER_HEADER)
            checkHello(copy + COCO_PEER_HEADER, len);
    }
    /* As the JSON of a hello. */
    checkHello(copy, size);
    return 0;
}
