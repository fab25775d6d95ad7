/*
 * cocoprecopypolicytest.c: the precopy policy's decisions
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "migration/cocoprecopypolicy.h"

#define MIB (1024ULL * 1024ULL)

/* 1 GiB guest, 10 MiB/s dirtied, 100 MiB/s sealed, 200 ms since the last
 * scan: 2 MiB to send in the blackout, 20 ms. */
static CocoPrecopyState
stateConverging(uint32_t epochs)
{
    CocoPrecopyState st = {0};

    st.epochs = epochs;
    st.elapsed_ms = 1000;
    st.total_bytes = 1024 * MIB;
    st.dirty_rate = 10 * MIB;
    st.dirty_measured = true;
    st.since_scan_ms = 200;
    st.seal_rate = 100 * MIB;
    return st;
}

static void
testTarget(void)
{
    CocoPrecopyPolicy p = {0};

    g_assert_cmpuint(cocoPrecopyTarget(&p), ==,
                     COCO_PRECOPY_DEFAULT_DOWNTIME_MS);
    p.max_blackout_ms = 20;
    g_assert_cmpuint(cocoPrecopyTarget(&p), ==, 20);
    p.downtime_limit_ms = 100;
    g_assert_cmpuint(cocoPrecopyTarget(&p), ==, 20);
    p.downtime_limit_ms = 10;
    g_assert_cmpuint(cocoPrecopyTarget(&p), ==, 10);
    p.max_blackout_ms = 0;
    g_assert_cmpuint(cocoPrecopyTarget(&p), ==, 10);
}

static void
testPredict(void)
{
    CocoPrecopyState st = stateConverging(2);

    g_assert_cmpuint(cocoPrecopyPredict(&st), ==, 20);
    /* Never more than all RAM: 1 GiB at 100 MiB/s. */
    st.since_scan_ms = 1000 * 1000;
    g_assert_cmpuint(cocoPrecopyPredict(&st), ==, 10240);
    st.dirty_measured = false;
    g_assert_cmpuint(cocoPrecopyPredict(&st), ==, G_MAXUINT64);
    st.dirty_measured = true;
    st.seal_rate = 0;
    g_assert_cmpuint(cocoPrecopyPredict(&st), ==, G_MAXUINT64);
}

static void
testDecide(void)
{
    CocoPrecopyPolicy p = {0};
    CocoPrecopyState st = stateConverging(2);
    CocoPrecopyDecision d;

    /* Fits the default target (300 ms). */
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_SWITCHOVER);
    g_assert_cmpuint(d.predicted_ms, ==, 20);
    g_assert_cmpuint(d.max_epochs, ==, COCO_PRECOPY_DEFAULT_MAX_EPOCHS);
    /* The first round always runs. */
    st.epochs = 0;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_CONTINUE);
    /* No dirty rate measured yet: go on. */
    st = stateConverging(1);
    st.dirty_measured = false;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_CONTINUE);
    /* libvirt's downtime limit (Nova's first step) below the prediction. */
    st = stateConverging(3);
    p.downtime_limit_ms = 10;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_CONTINUE);
    g_assert_cmpuint(d.target_ms, ==, 10);
    /* ...and raised during the migration (its later steps). */
    p.downtime_limit_ms = 50;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_SWITCHOVER);
    /* maxBlackout is the smaller one. */
    p.max_blackout_ms = 15;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_CONTINUE);
    /* The host's least number of rounds. */
    p.max_blackout_ms = 0;
    p.min_epochs = 4;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_CONTINUE);
    st.epochs = 4;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_SWITCHOVER);
}

static void
testLimits(void)
{
    CocoPrecopyPolicy p = {0};
    CocoPrecopyState st = stateConverging(3);
    CocoPrecopyDecision d;

    p.max_blackout_ms = 5; /* 20 ms predicted: never fits */
    p.max_epochs = 3;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_PAUSE);
    g_assert_cmpstr(d.limit, ==, "maxEpochs");
    p.abort_on_non_convergence = true;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_ABORT);
    st.epochs = 2;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_CONTINUE);
    p.max_time_ms = 1000;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_ABORT);
    g_assert_cmpstr(d.limit, ==, "maxTime");
    /* Without a maxEpochs: the default, or the host's larger minimum. */
    p.max_epochs = 0;
    p.max_time_ms = 0;
    p.min_epochs = 40;
    st.epochs = 39;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_CONTINUE);
    g_assert_cmpuint(d.max_epochs, ==, 40);
    st.epochs = 40;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_ABORT);
    /* Even a limit hit before the first round lets it run. */
    p.max_epochs = 1;
    p.min_epochs = 0;
    st.epochs = 0;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_CONTINUE);
}

/* A paused guest (force-complete) switches over at once, whatever the
 * prediction or the rounds so far. */
static void
testPaused(void)
{
    CocoPrecopyPolicy p = {.max_blackout_ms = 1, .min_epochs = 5};
    CocoPrecopyState st = stateConverging(0);
    CocoPrecopyDecision d;

    st.paused = true;
    st.dirty_measured = false;
    cocoPrecopyDecide(&p, &st, &d);
    g_assert_cmpint(d.action, ==, COCO_PRECOPY_FORCE);
    g_assert_cmpstr(cocoPrecopyActionTypeToString(d.action), ==, "force");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/precopy-policy/target", testTarget);
    g_test_add_func("/precopy-policy/predict", testPredict);
    g_test_add_func("/precopy-policy/decide", testDecide);
    g_test_add_func("/precopy-policy/limits", testLimits);
    g_test_add_func("/precopy-policy/paused", testPaused);
    return g_test_run();
}
