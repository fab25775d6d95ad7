/*
 * cocoutiltest.c: tests of src/util
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "util/cocoenum.h"
#include "util/cocoerror.h"
#include "util/cocokeyfile.h"
#include "util/cocomath.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum {
    TEST_COLOR_RED,
    TEST_COLOR_GREEN,
    TEST_COLOR_LAST
} TestColor;

COCO_ENUM_DECL(testColor);
COCO_ENUM_IMPL(testColor, TEST_COLOR_LAST, "red", "green");

static void
testEnum(void)
{
    g_assert_cmpstr(testColorTypeToString(TEST_COLOR_GREEN), ==, "green");
    g_assert_null(testColorTypeToString(TEST_COLOR_LAST));
    g_assert_null(testColorTypeToString(-1));
    g_assert_cmpint(testColorTypeFromString("red"), ==, TEST_COLOR_RED);
    g_assert_cmpint(testColorTypeFromString("Red"), ==, -1);
    g_assert_cmpint(testColorTypeFromString(NULL), ==, -1);
}

static void
testMath(void)
{
    uint64_t r = 7;

    g_assert_true(cocoU64Add(1, 2, &r));
    g_assert_cmpuint(r, ==, 3);
    g_assert_false(cocoU64Add(G_MAXUINT64, 1, &r));
    g_assert_cmpuint(r, ==, 3);
    g_assert_true(cocoU64Sub(5, 5, &r));
    g_assert_cmpuint(r, ==, 0);
    g_assert_false(cocoU64Sub(4, 5, &r));
    g_assert_false(cocoU64Mul(G_MAXUINT64 / 2 + 1, 2, &r));
    g_assert_true(cocoU64Mul(G_MAXUINT64 / 2, 2, &r));
    g_assert_cmpuint(r, ==, G_MAXUINT64 - 1);
}

static void
testStrToU64(void)
{
    static const struct {
        const char *str;
        unsigned int base;
        int ret;
        uint64_t val;
    } cases[] = {
        {"0", 10, 0, 0},
        {"007", 10, 0, 7},
        {"18446744073709551615", 10, 0, G_MAXUINT64},
        {"18446744073709551616", 10, -2, 0},
        {"99999999999999999999999", 10, -2, 0},
        {"", 10, -1, 0},
        {"+1", 10, -1, 0},
        {"-1", 10, -1, 0},
        {" 1", 10, -1, 0},
        {"1 ", 10, -1, 0},
        {"12a", 10, -1, 0},
        {"0x20000000", 16, 0, 0x20000000},
        {"ffffffffffffffff", 16, 0, G_MAXUINT64},
        {"0x10000000000000000", 16, -2, 0},
        {"0x", 16, -1, 0},
        {"0xg", 16, -1, 0},
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint64_t val = 0;
        int ret = cocoStrToU64(cases[i].str, cases[i].base, &val);

        g_test_message("case '%s' base %u", cases[i].str, cases[i].base);
        g_assert_cmpint(ret, ==, cases[i].ret);
        if (ret == 0)
            g_assert_cmpuint(val, ==, cases[i].val);
    }
}

static void
testErrorNicks(void)
{
    int code;
    int n = 0;

    /* Every nick maps back to its code, and no two codes share a nick. */
    for (code = 0; code < COCO_ERROR_LAST; code++) {
        const char *nick = cocoErrorCodeToString(code);

        if (!nick)
            continue;
        n++;
        g_assert_cmpint(cocoErrorCodeFromString(nick), ==, code);
    }
    g_assert_cmpint(n, >, 30);
    g_assert_null(cocoErrorCodeToString(0));
    g_assert_cmpint(cocoErrorCodeFromString("no-such-nick"), ==, -1);
}

static void
testErrorLibvirt(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) copy = NULL;

    g_assert_cmpint(cocoErrorSetLibvirt(&err, 80, 10, "no metadata"), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_LIBVIRT);
    g_assert_cmpstr(err->message, ==, "no metadata");
    g_assert_cmpint(cocoErrorGetLibvirtCode(err), ==, 80);
    g_assert_cmpint(cocoErrorGetLibvirtDomain(err), ==, 10);

    /* The libvirt code survives a copy of the error. */
    copy = g_error_copy(err);
    g_assert_cmpint(cocoErrorGetLibvirtCode(copy), ==, 80);
}

static void
testErrorSystem(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(
        cocoErrorSetSystem(&err, ENOENT, "cannot open '%1$s'", "/x"), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_SYSTEM);
    g_assert_true(g_str_has_prefix(err->message, "cannot open '/x': "));
    g_assert_cmpint(cocoErrorGetLibvirtCode(err), ==, 0);
    /* A NULL error location is allowed and still returns -1. */
    g_assert_cmpint(cocoErrorSet(NULL, COCO_ERROR_INTERNAL, "x"), ==, -1);
}

/* Configuration files: a regular file of at most COCO_KEY_FILE_MAX
 * bytes; a FIFO is refused at once (no writer would ever come), a larger
 * file before it is read, a missing one is G_FILE_ERROR_NOENT. */
static void
testKeyFileLoad(void)
{
    g_autofree char *dir = g_dir_make_tmp("coco-keyfile-XXXXXX", NULL);
    g_autofree char *good = g_build_filename(dir, "good.conf", NULL);
    g_autofree char *big = g_build_filename(dir, "big.conf", NULL);
    g_autofree char *fifo = g_build_filename(dir, "fifo.conf", NULL);
    g_autofree char *none = g_build_filename(dir, "none.conf", NULL);
    g_autofree char *large = g_strnfill(COCO_KEY_FILE_MAX + 1, '#');
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *v = NULL;

    g_assert_nonnull(dir);
    g_assert_true(g_file_set_contents(good, "[g]\nk = v\n", -1, NULL));
    g_assert_true(cocoKeyFileLoad(kf, good, &err));
    g_assert_no_error(err);
    v = g_key_file_get_string(kf, "g", "k", NULL);
    g_assert_cmpstr(v, ==, "v");

    g_assert_true(g_file_set_contents(big, large, -1, NULL));
    g_assert_false(cocoKeyFileLoad(kf, big, &err));
    g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED);
    g_clear_error(&err);
    /* At the limit it is read (and parsed: all comment). */
    g_assert_true(g_file_set_contents(big, large, COCO_KEY_FILE_MAX, NULL));
    g_assert_true(cocoKeyFileLoad(kf, big, &err));
    g_assert_no_error(err);

    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    g_assert_false(cocoKeyFileLoad(kf, fifo, &err));
    g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    g_clear_error(&err);
    g_assert_false(cocoKeyFileLoad(kf, dir, &err));
    g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    g_clear_error(&err);

    g_assert_false(cocoKeyFileLoad(kf, none, &err));
    g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_NOENT);

    unlink(good);
    unlink(big);
    unlink(fifo);
    rmdir(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/util/enum", testEnum);
    g_test_add_func("/util/keyfile/load", testKeyFileLoad);
    g_test_add_func("/util/math/checked", testMath);
    g_test_add_func("/util/math/strtou64", testStrToU64);
    g_test_add_func("/util/error/nicks", testErrorNicks);
    g_test_add_func("/util/error/libvirt", testErrorLibvirt);
    g_test_add_func("/util/error/system", testErrorSystem);
    return g_test_run();
}
