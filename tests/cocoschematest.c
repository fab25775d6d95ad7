/*
 * cocoschematest.c: the RelaxNG grammar and the C parser agree
 *
 * For every tests/cocoxml2xmlindata file, the real xmllint
 * (xmllint --noout --relaxng schemas/coco-migration.rng FILE), the C
 * parser + validator and cocoMigrationSchemaValidate() must all accept it,
 * or, for *-invalid.xml, all reject it. Boundary values of every attribute
 * are checked the same way.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"

#include <glib/gstdio.h>

#include "conf/cocomigrationdef.h"
#include "conf/cocoxml.h"
#include "util/cocoerror.h"
#include "cocoxml2xmlutils.h"

static char *testXmllint;
static char *testSchema;
static char *testTmpDir;

/* xmllint's verdict on @path: 1 valid, 0 invalid. Fails the test when
 * xmllint could not even load the grammar (exit code 5). */
static int
testXmllintVerdict(const char *path)
{
    g_autoptr(GError) err = NULL;
    const char *argv[] = {testXmllint, "--noout", "--relaxng",
                          testSchema,  path,      NULL};
    g_autofree char *out = NULL;
    g_autofree char *errout = NULL;
    int status = 0;

    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                 &errout, &status, &err);
    g_assert_no_error(err);
    g_assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 1 &&
        WEXITSTATUS(status) != 3 && WEXITSTATUS(status) != 4) {
        g_error("xmllint could not validate %s (exit %d): %s", path,
                WEXITSTATUS(status), errout);
    }
    return WEXITSTATUS(status) == 0;
}

static bool
testCVerdict(const char *xml, GError **err)
{
    GError *e = cocoTestParseValidate(xml);

    if (e) {
        g_propagate_error(err, e);
        return false;
    }
    return true;
}

static void
testSchemaFile(gconstpointer data)
{
    const char *name = data;
    g_autofree char *dir = cocoTestSrcPath("cocoxml2xmlindata");
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autofree char *xml = cocoTestReadFile(path);
    g_autoptr(GError) cerr = NULL;
    g_autoptr(GError) serr = NULL;
    bool expected = !g_str_has_suffix(name, "-invalid.xml");
    bool c_ok = testCVerdict(xml, &cerr);
    bool lib_ok = cocoMigrationSchemaValidate(xml, &serr) == 0;

    if (c_ok != expected) {
        g_test_fail_printf("C parser %s %s: %s", c_ok ? "accepts" : "rejects",
                           name, cerr ? cerr->message : "");
        return;
    }
    if (lib_ok != expected) {
        g_test_fail_printf("cocoMigrationSchemaValidate %s %s: %s",
                           lib_ok ? "accepts" : "rejects", name,
                           serr ? serr->message : "");
        return;
    }
    if (!testXmllint) {
        g_test_skip("xmllint is not installed");
        return;
    }
    if (testXmllintVerdict(path) != expected) {
        g_test_fail_printf("xmllint %s %s", expected ? "rejects" : "accepts",
                           name);
    }
}

/* The C-only rules: the grammar accepts these, C rejects them. */
static void
testSchemaCOnly(void)
{
    g_autofree char *dir = cocoTestSrcPath("cocovalidatedata");
    g_autoptr(GPtrArray) names = cocoTestListXML(dir);
    size_t checked = 0;
    size_t i;

    for (i = 0; i < names->len; i++) {
        const char *name = names->pdata[i];
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *xml = NULL;
        g_autoptr(GError) cerr = NULL;

        if (!g_str_has_prefix(name, "dup-"))
            continue;
        xml = cocoTestReadFile(path);
        g_assert_false(testCVerdict(xml, &cerr));
        g_assert_error(cerr, COCO_ERROR, COCO_ERROR_XML_DUPLICATE);
        g_assert_cmpint(cocoMigrationSchemaValidate(xml, NULL), ==, 0);
        if (testXmllint)
            g_assert_cmpint(testXmllintVerdict(path), ==, 1);
        checked++;
    }
    g_assert_cmpuint(checked, >=, 2);
}

/* The grammar itself: well-formed, and a valid RelaxNG grammar. */
static void
testSchemaGrammar(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *text = cocoTestReadFile(testSchema);
    g_autoptr(xmlDoc) doc = cocoXMLParseString(text, &err);
    g_autofree char *dir = cocoTestSrcPath("cocoxml2xmlindata");
    g_autofree char *valid = g_build_filename(dir, "tdx-full.xml", NULL);
    g_autofree char *xml = cocoTestReadFile(valid);
    xmlNode *root;

    g_assert_no_error(err);
    root = xmlDocGetRootElement(doc);
    g_assert_true(cocoXMLNodeIsElement(root, "grammar",
                                       "http://relaxng.org/ns/structure/1.0"));
    /* Loading compiles the grammar; a broken one fails here. */
    g_assert_cmpint(cocoMigrationSchemaValidate(xml, &err), ==, 0);
    g_assert_no_error(err);
    /* xmllint exits 5 when a grammar does not compile. */
    if (testXmllint)
        g_assert_cmpint(testXmllintVerdict(valid), ==, 1);
}

/* A broken or missing grammar is reported, not crashed on. */
static void
testSchemaMissing(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *saved = g_strdup(g_getenv("COCO_SCHEMA_DIR"));
    g_autofree char *dir = cocoTestSrcPath("cocoxml2xmlindata");
    g_autofree char *valid = g_build_filename(dir, "tdx-minimal.xml", NULL);
    g_autofree char *xml = cocoTestReadFile(valid);
    g_autofree char *bad =
        g_build_filename(testTmpDir, "coco-migration.rng", NULL);
    g_autofree char *path = NULL;

    g_setenv("COCO_SCHEMA_DIR", "/nonexistent-coco-schemas", TRUE);
    path = cocoMigrationSchemaPath();
    g_assert_cmpstr(path, ==, "/nonexistent-coco-schemas/coco-migration.rng");
    g_assert_cmpint(cocoMigrationSchemaValidate(xml, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_SYSTEM);
    g_clear_error(&err);

    g_file_set_contents(bad,
                        "<grammar xmlns='http://relaxng.org/ns/structure/1.0'>"
                        "<start><ref name='nowhere'/></start></grammar>",
                        -1, &err);
    g_assert_no_error(err);
    g_setenv("COCO_SCHEMA_DIR", testTmpDir, TRUE);
    g_assert_cmpint(cocoMigrationSchemaValidate(xml, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INTERNAL);
    g_assert_nonnull(strstr(err->message, "not a valid RelaxNG grammar"));
    g_clear_error(&err);
    g_unlink(bad);

    g_unsetenv("COCO_SCHEMA_DIR");
    g_free(path);
    path = cocoMigrationSchemaPath();
    /* This test runs from the build tree: the source tree's grammar. */
    g_assert_cmpstr(path, ==, COCO_SRC_SCHEMADIR "/coco-migration.rng");

    g_setenv("COCO_SCHEMA_DIR", saved, TRUE);
    g_assert_cmpint(cocoMigrationSchemaValidate(xml, &err), ==, 0);
    g_assert_no_error(err);

    /* Malformed input is reported as such, not as a grammar mismatch. */
    g_assert_cmpint(cocoMigrationSchemaValidate("<a>", &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_XML_MALFORMED);
    g_clear_error(&err);
    g_assert_cmpint(cocoMigrationSchemaValidate("<a/>", &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_XML_SCHEMA);
    g_assert_null(strchr(err->message, '\n'));
}

typedef struct {
    const char *element; /* where the attribute goes */
    const char *attr;
    const char *const *values;
} TestAttrValues;

static const char *const testNumbers[] = {
    "0",
    "00",
    "1",
    "001",
    "2",
    "9",
    "10",
    "99",
    "100",
    "511",
    "512",
    "513",
    "999",
    "1000",
    "65534",
    "65535",
    "65536",
    "0065535",
    "86399",
    "86400",
    "86401",
    "599999",
    "600000",
    "600001",
    "4294967293",
    "4294967294",
    "4294967295",
    "4294967296",
    "04294967294",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "0000000000000000000000000000000000000001",
    "",
    " 1",
    "1 ",
    "+1",
    "-0",
    "-1",
    "0x1",
    "1e3",
    "1.0",
    "\xd9\xa1",
    "1\t",
    NULL};

static const char *const testHex96[] = {
    "61979d8808016dc4db41b03ec11ce60d4b69cad93ac418e28ace328b9e56af99e5486183ef"
    "63a0e6500c9d6537fae7fa",
    "61979D8808016DC4DB41B03EC11CE60D4B69CAD93AC418E28ACE328B9E56AF99E5486183EF"
    "63A0E6500C9D6537FAE7FA",
    "61979d8808016dc4db41b03ec11ce60d4b69cad93ac418e28ace328b9e56af99e5486183ef"
    "63a0e6500c9d6537fae7f",
    "61979d8808016dc4db41b03ec11ce60d4b69cad93ac418e28ace328b9e56af99e5486183ef"
    "63a0e6500c9d6537fae7fa0",
    "61979d8808016dc4db41b03ec11ce60d4b69cad93ac418e28ace328b9e56af99e5486183ef"
    "63a0e6500c9d6537fae7fg",
    " 1979d8808016dc4db41b03ec11ce60d4b69cad93ac418e28ace328b9e56af99e5486183ef"
    "63a0e6500c9d6537fae7fa",
    "",
    NULL};

static const char *const testHex64[] = {
    "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc",
    "C0FFEE00112233445566778899AABBCCDDEEFF00112233445566778899AABBCC",
    "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbc",
    "0xffee00112233445566778899aabbccddeeff00112233445566778899aabbcc",
    "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc ",
    NULL};

static const char *const testEnums[] = {
    "tdx",   "sev",    "sev-snp",   "TDX",    " tdx",  "tdx ",
    "",      "module", "microcode", "loader", "agent", "Agent",
    "abort", "pause",  "yes",       "no",     "Yes",   "true",
    "1",     "refuse", "detach",    NULL};

static const char *const testNames[] = {"x",        "",      " ", "a&b",
                                        "\xc3\xa9", "&#10;", NULL};

static const TestAttrValues testAttrs[] = {
    {"migration", "technology", testEnums},
    {"agent", "hash", testHex96},
    {"agent", "minSvn", testNumbers},
    {"platform", "id", testHex64},
    {"platform", "name", testNames},
    {"minTcb", "component", testEnums},
    {"minTcb", "svn", testNumbers},
    {"streams", "forward", testNumbers},
    {"streams", "pagesPerBundle", testNumbers},
    {"precopy", "maxEpochs", testNumbers},
    {"precopy", "maxTime", testNumbers},
    {"precopy", "maxBlackout", testNumbers},
    {"precopy", "onNonConvergence", testEnums},
    {"postcopy", "allowed", testEnums},
    {"hostdev", "action", testEnums},
    {"hostdev", "allowUnsafeIommu", testEnums},
};

/* A full TDX element with @value in @element's @attr. */
static char *
testBoundaryDoc(const TestAttrValues *t, const char *value)
{
    static const struct {
        const char *element;
        const char *fixed; /* its other attributes */
    } parts[] = {
        {"agent", "hash='"
                  "61979d8808016dc4db41b03ec11ce60d4b69cad93ac418e28ace328b9e56"
                  "af99e5486183ef63a0e6500c9d6537fae7fa'"},
        {"platform",
         "id='"
         "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc'"},
        {"minTcb", "component='loader' svn='1'"},
        {"streams", ""},
        {"precopy", ""},
        {"postcopy", "allowed='no'"},
        {"hostdev", "action='detach'"},
    };
    g_autoptr(GString) doc = g_string_new(NULL);
    size_t i;

    g_string_append(
        doc, "<coco:migration xmlns:coco='" COCO_MIGRATION_NAMESPACE_URI "'");
    if (STREQ(t->element, "migration")) {
        g_string_append_printf(doc, " %s=\"", t->attr);
        g_string_append(doc, value);
        g_string_append(doc, "\">");
    } else {
        g_string_append(doc, " technology='tdx'>");
    }
    for (i = 0; i < G_N_ELEMENTS(parts); i++) {
        bool here = STREQ(parts[i].element, t->element);

        if (STREQ(parts[i].element, "platform"))
            g_string_append(doc, "<coco:destinations>");
        g_string_append_printf(doc, "<coco:%s ", parts[i].element);
        if (here && g_str_has_prefix(parts[i].fixed, t->attr)) {
            /* replace the fixed attribute of the same name */
            g_string_append_printf(doc, "%s=\"%s\"", t->attr, value);
            if (STREQ(t->attr, "component"))
                g_string_append(doc, " svn='1'");
        } else {
            g_string_append(doc, parts[i].fixed);
            if (here) {
                g_string_append_printf(doc, " %s=\"", t->attr);
                g_string_append(doc, value);
                g_string_append(doc, "\"");
            }
        }
        g_string_append(doc, "/>");
        if (STREQ(parts[i].element, "minTcb"))
            g_string_append(doc, "</coco:destinations>");
    }
    g_string_append(doc, "</coco:migration>\n");
    return g_string_free(g_steal_pointer(&doc), FALSE);
}

static void
testSchemaBoundaries(void)
{
    size_t i;
    size_t j;
    size_t n = 0;
    size_t accepted = 0;

    for (i = 0; i < G_N_ELEMENTS(testAttrs); i++) {
        for (j = 0; testAttrs[i].values[j]; j++) {
            g_autofree char *xml =
                testBoundaryDoc(&testAttrs[i], testAttrs[i].values[j]);
            g_autoptr(GError) cerr = NULL;
            g_autoptr(GError) serr = NULL;
            bool c_ok = testCVerdict(xml, &cerr);
            bool lib_ok = cocoMigrationSchemaValidate(xml, &serr) == 0;

            if (c_ok != lib_ok) {
                g_test_fail_printf(
                    "%s/@%s='%s': C %s (%s), grammar %s (%s)",
                    testAttrs[i].element, testAttrs[i].attr,
                    testAttrs[i].values[j], c_ok ? "accepts" : "rejects",
                    cerr ? cerr->message : "", lib_ok ? "accepts" : "rejects",
                    serr ? serr->message : "");
                return;
            }
            if (testXmllint) {
                g_autofree char *path =
                    g_build_filename(testTmpDir, "b.xml", NULL);
                g_autoptr(GError) werr = NULL;

                g_file_set_contents(path, xml, -1, &werr);
                g_assert_no_error(werr);
                if (testXmllintVerdict(path) != (int)c_ok) {
                    g_test_fail_printf("%s/@%s='%s': xmllint disagrees with C",
                                       testAttrs[i].element, testAttrs[i].attr,
                                       testAttrs[i].values[j]);
                    return;
                }
                g_unlink(path);
            }
            accepted += c_ok;
            n++;
        }
    }
    g_test_message("%zu boundary documents, %zu accepted", n, accepted);
    g_assert_cmpuint(accepted, >, 50);
    g_assert_cmpuint(n - accepted, >, 200);
}

int
main(int argc, char **argv)
{
    g_autofree char *indir = NULL;
    g_autoptr(GPtrArray) names = NULL;
    g_autoptr(GError) err = NULL;
    const char *top = g_getenv("abs_top_srcdir");
    int ret;
    size_t i;

    g_test_init(&argc, &argv, NULL);

    testSchema = g_build_filename(top ? top : "..", "schemas",
                                  "coco-migration.rng", NULL);
    if (!g_getenv("COCO_SCHEMA_DIR"))
        g_setenv("COCO_SCHEMA_DIR", COCO_SRC_SCHEMADIR, TRUE);
    testXmllint = g_find_program_in_path("xmllint");
    testTmpDir = g_dir_make_tmp("cocoschematest-XXXXXX", &err);
    g_assert_no_error(err);

    indir = cocoTestSrcPath("cocoxml2xmlindata");
    names = cocoTestListXML(indir);
    for (i = 0; i < names->len; i++) {
        g_autofree char *path =
            g_strdup_printf("/schema/file/%s", (const char *)names->pdata[i]);

        g_test_add_data_func(path, names->pdata[i], testSchemaFile);
    }
    g_test_add_func("/schema/c-only-rules", testSchemaCOnly);
    g_test_add_func("/schema/grammar", testSchemaGrammar);
    g_test_add_func("/schema/missing", testSchemaMissing);
    g_test_add_func("/schema/boundaries", testSchemaBoundaries);

    ret = g_test_run();
    g_rmdir(testTmpDir);
    g_free(testTmpDir);
    g_free(testXmllint);
    g_free(testSchema);
    return ret;
}
