/*
 * cocovalidatetest.c: rules only C checks, and the domain cross-checks
 *
 * tests/cocovalidatedata/NAME.xml carries "<!-- expect: CODE DETAIL -->"
 * (CODE "ok" for success). Files named domain-*.xml are whole libvirt
 * domains: ParseDomain, Validate, then ValidateDomain; the others are a
 * standalone element: ParseString, then Validate.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"

#include <stdio.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "conf/cocomigrationdef.h"
#include "conf/cocoxml.h"
#include "util/cocoerror.h"
#include "cocoxml2xmlutils.h"

static GError *
testDomainCheck(const char *xml)
{
    g_autoptr(CocoMigrationDef) def = NULL;
    GError *err = NULL;

    if (!(def = cocoMigrationDefParseDomain(xml, 0, &err)))
        return err;
    if (cocoMigrationDefValidate(def, &err) < 0)
        return err;
    cocoMigrationDefValidateDomain(def, xml, &err);
    return err;
}

static void
testValidateFile(gconstpointer data)
{
    const char *name = data;
    g_autofree char *dir = cocoTestSrcPath("cocovalidatedata");
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autofree char *xml = cocoTestReadFile(path);
    g_autofree char *code = NULL;
    g_autofree char *detail = NULL;
    g_autoptr(GError) err = NULL;

    if (!cocoTestGetExpect(xml, &code, &detail))
        g_error("%s has no '<!-- expect: CODE -->' comment", name);

    if (g_str_has_prefix(name, "domain-"))
        err = testDomainCheck(xml);
    else
        err = cocoTestParseValidate(xml);

    if (STREQ(code, "ok")) {
        g_assert_no_error(err);
        return;
    }
    cocoTestCheckError(err, code, detail);
}

static void
testValidateApi(void)
{
    g_autoptr(CocoMigrationDef) def = cocoMigrationDefNew();
    g_autoptr(GError) err = NULL;

    cocoMigrationDefFree(NULL);
    g_assert_cmpint(def->technology, ==, COCO_TECHNOLOGY_TDX);
    g_assert_false(def->has_agent);

    g_assert_cmpstr(cocoTechnologyTypeToString(COCO_TECHNOLOGY_SEV_SNP), ==,
                    "sev-snp");
    g_assert_null(cocoTechnologyTypeToString(COCO_TECHNOLOGY_LAST));
    g_assert_null(cocoTechnologyTypeToString(-1));
    g_assert_cmpint(cocoTechnologyTypeFromString("sev"), ==,
                    COCO_TECHNOLOGY_SEV);
    g_assert_cmpint(cocoTechnologyTypeFromString("SEV"), ==, -1);
    g_assert_cmpint(cocoTechnologyTypeFromString(NULL), ==, -1);

    g_assert_null(cocoMigrationDefParseString("<x/>", 1, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_null(cocoMigrationDefParseDomain("<domain/>", 2, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_null(cocoMigrationDefParseString(NULL, 0, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    /* No error location: still fails cleanly. */
    g_assert_null(cocoMigrationDefParseString("<", 0, NULL));

    g_assert_cmpint(cocoMigrationDefValidate(NULL, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_cmpint(cocoMigrationDefValidateDomain(NULL, "<domain/>", &err), ==,
                    -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_cmpint(cocoMigrationDefValidateDomain(def, "<domain>", &err), ==,
                    -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_XML_MALFORMED);
    g_clear_error(&err);

    g_assert_null(cocoMigrationDefFormat(NULL, 0));
    g_assert_null(cocoMigrationDefFormat(def, 1));
    def->technology = COCO_TECHNOLOGY_LAST;
    g_assert_null(cocoMigrationDefFormat(def, 0));
}

/* A valid TDX definition built in code. */
static CocoMigrationDef *
testBaseDef(void)
{
    CocoMigrationDef *def = cocoMigrationDefNew();

    def->technology = COCO_TECHNOLOGY_TDX;
    def->has_agent = true;
    memset(def->agent_hash, 0xab, COCO_AGENT_HASH_LEN);
    def->has_destinations = true;
    def->nplatforms = 1;
    def->platforms = g_new0(CocoPlatformId, 1);
    memset(def->platforms[0].id, 0x11, COCO_PLATFORM_ID_LEN);
    return def;
}

typedef void (*TestMutate)(CocoMigrationDef *def);

static void
mutSvn(CocoMigrationDef *d)
{
    d->has_agent_min_svn = true;
    d->agent_min_svn = 65536;
}
static void
mutStreams(CocoMigrationDef *d)
{
    d->has_streams = true;
    d->forward_streams = 513;
}
static void
mutBundle(CocoMigrationDef *d)
{
    d->has_streams = true;
    d->pages_per_bundle = 100000;
}
static void
mutEpochs(CocoMigrationDef *d)
{
    d->has_precopy = true;
    d->max_epochs = G_MAXUINT32;
}
static void
mutTime(CocoMigrationDef *d)
{
    d->has_precopy = true;
    d->max_time = 86401;
}
static void
mutBlackout(CocoMigrationDef *d)
{
    d->has_precopy = true;
    d->max_blackout = 600001;
}
static void
mutNonConv(CocoMigrationDef *d)
{
    d->has_precopy = true;
    d->has_on_non_convergence = true;
    d->on_non_convergence = COCO_NON_CONVERGENCE_LAST;
}
static void
mutHostdev(CocoMigrationDef *d)
{
    d->has_hostdev = true;
    d->hostdev_action = 7;
}
static void
mutTechnology(CocoMigrationDef *d)
{
    d->technology = 99;
}
static void
mutNoDest(CocoMigrationDef *d)
{
    d->has_destinations = false;
}
static void
mutEmptyDest(CocoMigrationDef *d)
{
    d->nplatforms = 0;
}
static void
mutNameCtl(CocoMigrationDef *d)
{
    d->platforms[0].name = g_strdup("bad\001name");
}
static void
mutNameEmpty(CocoMigrationDef *d)
{
    d->platforms[0].name = g_strdup("");
}
static void
mutNameUtf8(CocoMigrationDef *d)
{
    d->platforms[0].name = g_strdup("\xff\xfe");
}
static void
mutTcb(CocoMigrationDef *d)
{
    d->nmin_tcbs = 1;
    d->min_tcbs = g_new0(CocoMinTcb, 1);
    d->min_tcbs[0].component = COCO_TCB_COMPONENT_LAST;
}
static void
mutTcbSvn(CocoMigrationDef *d)
{
    d->nmin_tcbs = 1;
    d->min_tcbs = g_new0(CocoMinTcb, 1);
    d->min_tcbs[0].svn = 70000;
}

static void
testValidateProgrammatic(void)
{
    static const struct {
        TestMutate mutate;
        CocoErrorCode code;
    } cases[] = {
        {mutSvn, COCO_ERROR_XML_NUMBER},
        {mutStreams, COCO_ERROR_XML_NUMBER},
        {mutBundle, COCO_ERROR_XML_NUMBER},
        {mutEpochs, COCO_ERROR_XML_NUMBER},
        {mutTime, COCO_ERROR_XML_NUMBER},
        {mutBlackout, COCO_ERROR_XML_NUMBER},
        {mutNonConv, COCO_ERROR_XML_ENUM},
        {mutHostdev, COCO_ERROR_XML_ENUM},
        {mutTechnology, COCO_ERROR_XML_ENUM},
        {mutNoDest, COCO_ERROR_XML_MISSING},
        {mutEmptyDest, COCO_ERROR_XML_MISSING},
        {mutNameCtl, COCO_ERROR_XML_FORMAT},
        {mutNameEmpty, COCO_ERROR_XML_FORMAT},
        {mutNameUtf8, COCO_ERROR_XML_FORMAT},
        {mutTcb, COCO_ERROR_XML_ENUM},
        {mutTcbSvn, COCO_ERROR_XML_NUMBER},
    };
    size_t i;

    {
        g_autoptr(CocoMigrationDef) def = testBaseDef();
        g_autoptr(GError) err = NULL;

        g_assert_cmpint(cocoMigrationDefValidate(def, &err), ==, 0);
        g_assert_no_error(err);
    }
    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(CocoMigrationDef) def = testBaseDef();
        g_autoptr(GError) err = NULL;

        cases[i].mutate(def);
        g_assert_cmpint(cocoMigrationDefValidate(def, &err), ==, -1);
        g_assert_error(err, COCO_ERROR, (gint)cases[i].code);
        g_assert_null(strchr(err->message, '\n'));
    }
}

/* A random valid definition. */
static CocoMigrationDef *
testRandomDef(GRand *rand)
{
    CocoMigrationDef *def = cocoMigrationDefNew();
    bool seen[COCO_TCB_COMPONENT_LAST] = {false};
    size_t i;
    size_t j;

    def->technology = g_rand_int_range(rand, 0, COCO_TECHNOLOGY_LAST);
    if (def->technology != COCO_TECHNOLOGY_SEV) {
        def->has_agent = true;
        for (i = 0; i < COCO_AGENT_HASH_LEN; i++)
            def->agent_hash[i] = (uint8_t)g_rand_int(rand);
        def->has_agent_min_svn = g_rand_boolean(rand);
        if (def->has_agent_min_svn)
            def->agent_min_svn = g_rand_int_range(rand, 0, 65536);
    }

    def->has_destinations = true;
    def->nplatforms = g_rand_int_range(rand, 0, 4);
    def->platforms = g_new0(CocoPlatformId, def->nplatforms);
    for (i = 0; i < def->nplatforms; i++) {
        static const char *const names[] = {
            "a",        "rack 1 & 2",        "<x>", "tab\there", "line\nbreak",
            "quote\"'", "\xc3\xa9t\xc3\xa9", "cr\r"};

        for (j = 0; j < COCO_PLATFORM_ID_LEN; j++)
            def->platforms[i].id[j] = (uint8_t)g_rand_int(rand);
        def->platforms[i].id[0] = (uint8_t)i; /* distinct */
        if (g_rand_boolean(rand)) {
            def->platforms[i].name =
                g_strdup(names[g_rand_int_range(rand, 0, G_N_ELEMENTS(names))]);
        }
    }
    def->min_tcbs = g_new0(CocoMinTcb, COCO_TCB_COMPONENT_LAST);
    for (i = 0; i < COCO_TCB_COMPONENT_LAST; i++) {
        int c = g_rand_int_range(rand, 0, COCO_TCB_COMPONENT_LAST);

        if (seen[c] || (c == COCO_TCB_COMPONENT_AGENT && !def->has_agent))
            continue;
        seen[c] = true;
        def->min_tcbs[def->nmin_tcbs].component = c;
        def->min_tcbs[def->nmin_tcbs].svn = g_rand_int_range(rand, 0, 65536);
        def->nmin_tcbs++;
    }
    if (def->nplatforms == 0 && def->nmin_tcbs == 0) {
        def->min_tcbs[0].component = COCO_TCB_COMPONENT_MODULE;
        def->nmin_tcbs = 1;
    }

    if ((def->has_streams = g_rand_boolean(rand))) {
        if (g_rand_boolean(rand))
            def->forward_streams = g_rand_int_range(rand, 1, 513);
        if (g_rand_boolean(rand))
            def->pages_per_bundle = g_rand_int_range(rand, 1, 513);
    }
    if ((def->has_precopy = g_rand_boolean(rand))) {
        if (g_rand_boolean(rand))
            def->max_epochs = g_rand_int_range(rand, 1, G_MAXINT32) * 2U;
        if (g_rand_boolean(rand))
            def->max_time = g_rand_int_range(rand, 1, 86401);
        if (g_rand_boolean(rand))
            def->max_blackout = g_rand_int_range(rand, 1, 600001);
        if ((def->has_on_non_convergence = g_rand_boolean(rand)))
            def->on_non_convergence = g_rand_int_range(rand, 0, 2);
    }
    if ((def->has_postcopy = g_rand_boolean(rand)))
        def->postcopy_allowed = g_rand_boolean(rand);
    if ((def->has_hostdev = g_rand_boolean(rand))) {
        def->hostdev_action = g_rand_int_range(rand, 0, 2);
        if ((def->has_allow_unsafe_iommu = g_rand_boolean(rand))) {
            def->allow_unsafe_iommu =
                def->hostdev_action == COCO_HOSTDEV_ACTION_DETACH &&
                g_rand_boolean(rand);
        }
    }
    return def;
}

/* parse(format(d)) == d for random valid d; the grammar accepts format(d). */
static void
testValidateRandomRoundTrip(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(20261126);
    size_t i;

    for (i = 0; i < 2000; i++) {
        g_autoptr(CocoMigrationDef) def = testRandomDef(rand);
        g_autoptr(CocoMigrationDef) def2 = NULL;
        g_autoptr(GError) err = NULL;
        g_autofree char *xml = NULL;
        g_autofree char *xml2 = NULL;

        g_assert_cmpint(cocoMigrationDefValidate(def, &err), ==, 0);
        g_assert_no_error(err);
        xml = cocoMigrationDefFormat(def, 0);
        g_assert_nonnull(xml);
        def2 = cocoMigrationDefParseString(xml, 0, &err);
        g_assert_no_error(err);
        g_assert_cmpint(cocoMigrationDefValidate(def2, &err), ==, 0);
        g_assert_true(cocoMigrationDefIsEqual(def, def2));
        xml2 = cocoMigrationDefFormat(def2, 0);
        g_assert_cmpstr(xml, ==, xml2);
        if (i % 10 == 0) {
            g_assert_cmpint(cocoMigrationSchemaValidate(xml, &err), ==, 0);
            g_assert_no_error(err);
        }
    }
}

/* Fields of absent parts are not compared; present ones are. */
static void
testValidateEqual(void)
{
    g_autoptr(CocoMigrationDef) a = testBaseDef();
    g_autoptr(CocoMigrationDef) b = testBaseDef();

    g_assert_true(cocoMigrationDefIsEqual(a, b));
    b->forward_streams = 4; /* <streams> absent */
    g_assert_true(cocoMigrationDefIsEqual(a, b));
    b->has_streams = true;
    g_assert_false(cocoMigrationDefIsEqual(a, b));
    a->has_streams = true;
    a->forward_streams = 4;
    g_assert_true(cocoMigrationDefIsEqual(a, b));
    b->platforms[0].name = g_strdup("x");
    g_assert_false(cocoMigrationDefIsEqual(a, b));
}

static void
testValidateQuote(void)
{
    g_autofree char *a = cocoXMLQuote("a\nb\tc\001");
    g_autofree char *b = NULL;
    g_autofree char *c = cocoXMLQuote(NULL);
    g_autofree char *long_value = g_strnfill(300, 'x');

    g_assert_cmpstr(a, ==, "a\\nb\\tc\\x01");
    b = cocoXMLQuote(long_value);
    g_assert_cmpuint(strlen(b), ==, 103);
    g_assert_true(g_str_has_suffix(b, "..."));
    g_assert_cmpstr(c, ==, "");
}

/* libxml2 must print nothing, whatever the input. */
static void
testValidateQuiet(void)
{
    static const char *const inputs[] = {
        "<",
        "<coco:migration technology='tdx'/>",
        ("<migration xmlns='https://libvirt-coco.org/xmlns/migration/1.0' "
         "technology='tdx'><agent hash='00'/></migration>"),
        "<!DOCTYPE x [<!ENTITY e 'x'>]><x>&e;</x>",
        "<?xml version='1.0' encoding='UTF-8'?><x a='\xff'/>",
        "<x xmlns:a='relative'><a:y/></x>",
        "<x>&undefined;</x>",
        "<x></y>",
    };
    g_autoptr(GError) err = NULL;
    g_autofree char *path = NULL;
    g_autofree char *captured = NULL;
    int fd = g_file_open_tmp("cocovalidatetest-XXXXXX", &path, &err);
    int saved;
    size_t i;

    g_assert_no_error(err);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    g_assert_cmpint(saved, >=, 0);
    g_assert_cmpint(dup2(fd, STDERR_FILENO), ==, STDERR_FILENO);

    for (i = 0; i < G_N_ELEMENTS(inputs); i++) {
        g_autoptr(CocoMigrationDef) def = NULL;

        def = cocoMigrationDefParseString(inputs[i], 0, NULL);
        g_assert_null(def);
        def = cocoMigrationDefParseDomain(inputs[i], 0, NULL);
        g_assert_null(def);
        g_assert_cmpint(cocoMigrationSchemaValidate(inputs[i], NULL), ==, -1);
    }

    fflush(stderr);
    g_assert_cmpint(dup2(saved, STDERR_FILENO), ==, STDERR_FILENO);
    close(saved);
    close(fd);
    g_file_get_contents(path, &captured, NULL, &err);
    g_assert_no_error(err);
    g_unlink(path);
    g_assert_cmpstr(captured, ==, "");
}

/* Deep nesting hits libxml2's limit; the allow list holds at most
 * COCO_MIGRATION_MAX_PLATFORMS entries, one more is refused. */
static GString *
platformList(size_t n)
{
    GString *s = g_string_new(NULL);
    size_t i;

    g_string_append(s, "<migration xmlns='" COCO_MIGRATION_NAMESPACE_URI
                       "' technology='sev'><destinations>");
    for (i = 0; i < n; i++)
        g_string_append_printf(s, "<platform id='%064zx'/>", i);
    g_string_append(s, "</destinations></migration>");
    return s;
}

static void
testValidateLimits(void)
{
    g_autoptr(GString) deep = g_string_new(NULL);
    g_autoptr(GString) many = platformList(COCO_MIGRATION_MAX_PLATFORMS);
    g_autoptr(GString) toomany = platformList(COCO_MIGRATION_MAX_PLATFORMS + 1);
    g_autoptr(CocoMigrationDef) def = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *out = NULL;
    size_t last = COCO_MIGRATION_MAX_PLATFORMS - 1;
    size_t i;

    for (i = 0; i < 5000; i++)
        g_string_append(deep, "<a>");
    for (i = 0; i < 5000; i++)
        g_string_append(deep, "</a>");
    g_assert_null(cocoMigrationDefParseString(deep->str, 0, &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_XML_MALFORMED);
    g_clear_error(&err);

    g_assert_null(cocoMigrationDefParseString(toomany->str, 0, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "1024"));
    g_clear_error(&err);

    def = cocoMigrationDefParseString(many->str, 0, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(def->nplatforms, ==, COCO_MIGRATION_MAX_PLATFORMS);
    g_assert_cmpint(cocoMigrationDefValidate(def, &err), ==, 0);
    g_assert_no_error(err);
    out = cocoMigrationDefFormat(def, 0);
    g_assert_nonnull(out);

    /* The last entry repeats the first: found. */
    def->platforms[last] = def->platforms[0];
    def->platforms[last].name = NULL;
    g_assert_cmpint(cocoMigrationDefValidate(def, &err), ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_XML_DUPLICATE);
}

int
main(int argc, char **argv)
{
    g_autofree char *dir = NULL;
    g_autoptr(GPtrArray) names = NULL;
    size_t i;

    g_test_init(&argc, &argv, NULL);
    if (!g_getenv("COCO_SCHEMA_DIR"))
        g_setenv("COCO_SCHEMA_DIR", COCO_SRC_SCHEMADIR, TRUE);

    dir = cocoTestSrcPath("cocovalidatedata");
    names = cocoTestListXML(dir);
    g_assert_cmpuint(names->len, >=, 20);
    for (i = 0; i < names->len; i++) {
        g_autofree char *path =
            g_strdup_printf("/validate/file/%s", (const char *)names->pdata[i]);

        g_test_add_data_func(path, names->pdata[i], testValidateFile);
    }
    g_test_add_func("/validate/api", testValidateApi);
    g_test_add_func("/validate/programmatic", testValidateProgrammatic);
    g_test_add_func("/validate/random-round-trip", testValidateRandomRoundTrip);
    g_test_add_func("/validate/equal", testValidateEqual);
    g_test_add_func("/validate/quote", testValidateQuote);
    g_test_add_func("/validate/quiet", testValidateQuiet);
    g_test_add_func("/validate/limits", testValidateLimits);

    return g_test_run();
}
