/*
 * cocoxml2xmltest.c: <coco:migration> parse -> format round trips
 *
 * Every tests/cocoxml2xmlindata/NAME.xml is parsed, validated and formatted.
 * The result must equal tests/cocoxml2xmloutdata/NAME.xml when that exists,
 * else the input itself. Files named *-invalid.xml must be rejected with the
 * error their "<!-- expect: CODE DETAIL -->" comment names.
 * COCO_TEST_REGENERATE_OUTPUT=1 rewrites the outdata files (review them!).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"

#include <glib/gstdio.h>

#include "conf/cocomigrationdef.h"
#include "util/cocoerror.h"
#include "cocoxml2xmlutils.h"

static bool
testRegenerate(void)
{
    return STREQ_NULLABLE(g_getenv("COCO_TEST_REGENERATE_OUTPUT"), "1");
}

static void
testXML2XML(gconstpointer data)
{
    const char *name = data;
    g_autofree char *indir = cocoTestSrcPath("cocoxml2xmlindata");
    g_autofree char *outdir = cocoTestSrcPath("cocoxml2xmloutdata");
    g_autofree char *inpath = g_build_filename(indir, name, NULL);
    g_autofree char *outpath = g_build_filename(outdir, name, NULL);
    g_autofree char *input = cocoTestReadFile(inpath);
    g_autofree char *expected = NULL;
    g_autofree char *actual = NULL;
    g_autofree char *again = NULL;
    g_autoptr(CocoMigrationDef) def = NULL;
    g_autoptr(CocoMigrationDef) def2 = NULL;
    g_autoptr(GError) err = NULL;

    if (g_str_has_suffix(name, "-invalid.xml")) {
        g_autofree char *code = NULL;
        g_autofree char *detail = NULL;

        if (!cocoTestGetExpect(input, &code, &detail))
            g_error("%s has no '<!-- expect: CODE -->' comment", name);
        g_assert_false(g_file_test(outpath, G_FILE_TEST_EXISTS));
        err = cocoTestParseValidate(input);
        cocoTestCheckError(err, code, detail);
        return;
    }

    def = cocoMigrationDefParseString(input, 0, &err);
    g_assert_no_error(err);
    g_assert_nonnull(def);
    g_assert_cmpint(cocoMigrationDefValidate(def, &err), ==, 0);
    g_assert_no_error(err);

    actual = cocoMigrationDefFormat(def, 0);
    g_assert_nonnull(actual);

    if (testRegenerate() && STRNEQ(actual, input)) {
        g_file_set_contents(outpath, actual, -1, &err);
        g_assert_no_error(err);
    }
    if (g_file_test(outpath, G_FILE_TEST_EXISTS)) {
        expected = cocoTestReadFile(outpath);
        /* An outdata file for a canonical input would hide nothing. */
        g_assert_cmpstr(expected, !=, input);
    } else {
        expected = g_strdup(input);
    }
    g_assert_cmpstr(actual, ==, expected);

    /* parse(format(d)) == d, and formatting is stable. */
    def2 = cocoMigrationDefParseString(actual, 0, &err);
    g_assert_no_error(err);
    g_assert_cmpint(cocoMigrationDefValidate(def2, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(cocoMigrationDefIsEqual(def, def2));
    g_assert_true(cocoMigrationDefIsEqual(def2, def));
    again = cocoMigrationDefFormat(def2, 0);
    g_assert_cmpstr(again, ==, actual);

    /* The same element inside a domain's <metadata> parses the same. */
    {
        g_autofree char *domain = g_strdup_printf(
            "<domain type='kvm'><name>t</name><metadata>%s</metadata></domain>",
            input);
        g_autoptr(CocoMigrationDef) def3 = NULL;
        const char *body = strstr(input, "?>");

        if (body) {
            /* An XML declaration cannot sit inside another document. */
            g_free(domain);
            domain = g_strdup_printf(
                "<domain "
                "type='kvm'><name>t</name><metadata>%s</metadata></domain>",
                body + 2);
        }
        def3 = cocoMigrationDefParseDomain(domain, 0, &err);
        g_assert_no_error(err);
        g_assert_true(cocoMigrationDefIsEqual(def, def3));
    }
}

/* Every outdata file belongs to an input. */
static void
testOutdataHasInput(void)
{
    g_autofree char *indir = cocoTestSrcPath("cocoxml2xmlindata");
    g_autofree char *outdir = cocoTestSrcPath("cocoxml2xmloutdata");
    g_autoptr(GPtrArray) names = cocoTestListXML(outdir);
    size_t i;

    for (i = 0; i < names->len; i++) {
        g_autofree char *in = g_build_filename(indir, names->pdata[i], NULL);

        g_assert_true(g_file_test(in, G_FILE_TEST_EXISTS));
    }
}

/* Enough data, covering valid and invalid cases. */
static void
testDataCoverage(void)
{
    g_autofree char *indir = cocoTestSrcPath("cocoxml2xmlindata");
    g_autoptr(GPtrArray) names = cocoTestListXML(indir);
    size_t invalid = 0;
    size_t i;

    for (i = 0; i < names->len; i++) {
        if (g_str_has_suffix(names->pdata[i], "-invalid.xml"))
            invalid++;
    }
    g_assert_cmpuint(names->len, >=, 40);
    g_assert_cmpuint(invalid, >=, 20);
    g_assert_cmpuint(names->len - invalid, >=, 20);
}

int
main(int argc, char **argv)
{
    g_autofree char *indir = NULL;
    g_autoptr(GPtrArray) names = NULL;
    size_t i;

    g_test_init(&argc, &argv, NULL);

    indir = cocoTestSrcPath("cocoxml2xmlindata");
    names = cocoTestListXML(indir);
    for (i = 0; i < names->len; i++) {
        g_autofree char *path =
            g_strdup_printf("/xml2xml/%s", (const char *)names->pdata[i]);

        g_test_add_data_func(path, names->pdata[i], testXML2XML);
    }
    g_test_add_func("/xml2xml/outdata-has-input", testOutdataHasInput);
    g_test_add_func("/xml2xml/coverage", testDataCoverage);

    return g_test_run();
}
