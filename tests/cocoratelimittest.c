/*
 * cocoratelimittest.c: the transfer's token bucket, on a virtual clock
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "transfer/cocoratelimit.h"

#define MIB (1024ULL * 1024ULL)
#define RECORD (256ULL * 1024ULL + 32ULL)

typedef struct {
    int64_t now;
    guint sleeps;
} VirtualClock;

static int64_t
virtualNow(void *opaque)
{
    return ((VirtualClock *)opaque)->now;
}

static void
virtualSleep(void *opaque, int64_t us)
{
    VirtualClock *vc = opaque;

    g_assert_cmpint(us, >, 0);
    g_assert_cmpint(us, <=, 20000);
    vc->now += us;
    vc->sleeps++;
}

/* Send @bytes in records; the virtual seconds it took. */
static double
sendBytes(CocoRateLimit *rl, VirtualClock *vc, uint64_t bytes)
{
    int64_t t0 = vc->now;
    uint64_t sent;

    for (sent = 0; sent < bytes; sent += RECORD)
        g_assert_true(cocoRateLimitTake(rl, RECORD, NULL));
    return (double)(vc->now - t0) / 1e6;
}

static void
assertRate(uint64_t bytes, double secs, uint64_t rate)
{
    double measured = (double)bytes / secs;

    if (g_test_verbose())
        g_printerr("measured %.0f B/s for %" G_GUINT64_FORMAT " B/s\n",
                   measured, rate);
    g_assert_cmpfloat(measured, >=, (double)rate * 0.9);
    g_assert_cmpfloat(measured, <=, (double)rate * 1.1);
}

/* libvirt's max-bandwidth, 10 MiB/s (Nova's default elsewhere): 50 MiB
 * take 5 s within 10 %. */
static void
testRate(void)
{
    g_autoptr(CocoRateLimit) rl = cocoRateLimitNew();
    VirtualClock vc = {.now = 1000000};
    double secs;

    cocoRateLimitSetClock(rl, virtualNow, virtualSleep, &vc);
    cocoRateLimitSetRate(rl, 10 * MIB);
    g_assert_cmpuint(cocoRateLimitGetRate(rl), ==, 10 * MIB);
    secs = sendBytes(rl, &vc, 50 * MIB);
    assertRate(50 * MIB, secs, 10 * MIB);
    /* An idle spell earns at most a burst, not its whole length. */
    vc.now += 10 * G_USEC_PER_SEC;
    secs = sendBytes(rl, &vc, 20 * MIB);
    assertRate(20 * MIB, secs, 10 * MIB);
}

/* migrate-setspeed during the migration: the new rate at once. */
static void
testChange(void)
{
    g_autoptr(CocoRateLimit) rl = cocoRateLimitNew();
    VirtualClock vc = {.now = 1000000};
    double slow;
    double fast;

    cocoRateLimitSetClock(rl, virtualNow, virtualSleep, &vc);
    cocoRateLimitSetRate(rl, 10 * MIB);
    slow = sendBytes(rl, &vc, 20 * MIB);
    cocoRateLimitSetRate(rl, 40 * MIB);
    fast = sendBytes(rl, &vc, 40 * MIB);
    assertRate(20 * MIB, slow, 10 * MIB);
    assertRate(40 * MIB, fast, 40 * MIB);
}

/* libvirt's "unlimited" (its default) and 0: no waiting at all. */
static void
testUnlimited(void)
{
    g_autoptr(CocoRateLimit) rl = cocoRateLimitNew();
    VirtualClock vc = {.now = 1000000};

    cocoRateLimitSetClock(rl, virtualNow, virtualSleep, &vc);
    sendBytes(rl, &vc, 100 * MIB);
    cocoRateLimitSetRate(rl, G_MAXINT64);
    g_assert_cmpuint(cocoRateLimitGetRate(rl), ==, 0);
    sendBytes(rl, &vc, 100 * MIB);
    cocoRateLimitSetRate(rl, 0);
    sendBytes(rl, &vc, 100 * MIB);
    g_assert_cmpuint(vc.sleeps, ==, 0);
}

/* A cancelled transfer does not wait its debt off. */
static void
testCancel(void)
{
    g_autoptr(CocoRateLimit) rl = cocoRateLimitNew();
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    VirtualClock vc = {.now = 1000000};

    cocoRateLimitSetClock(rl, virtualNow, virtualSleep, &vc);
    cocoRateLimitSetRate(rl, 1024);
    g_cancellable_cancel(cancel);
    g_assert_false(cocoRateLimitTake(rl, 100 * MIB, cancel));
    g_assert_cmpuint(vc.sleeps, ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ratelimit/rate", testRate);
    g_test_add_func("/ratelimit/change", testChange);
    g_test_add_func("/ratelimit/unlimited", testUnlimited);
    g_test_add_func("/ratelimit/cancel", testCancel);
    return g_test_run();
}
