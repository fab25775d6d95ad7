/*
 * cocomigrationschema.c: validate <coco:migration> against its RelaxNG grammar
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "conf/cocomigrationdef.h"

#include <libxml/relaxng.h>

#include "conf/cocoxml.h"
#include "util/cocoerror.h"

#define COCO_MIGRATION_SCHEMA_FILE "coco-migration.rng"

/* The compiled grammar, kept for the path it came from. libxml2 does not
 * promise that one grammar may validate in several threads at once, so
 * loading and validating both happen under the lock. */
G_LOCK_DEFINE_STATIC(cocoMigrationSchema);
static xmlRelaxNG *cocoMigrationSchemaGrammar;
static char *cocoMigrationSchemaGrammarPath;

typedef struct {
    char *message; /* the first error */
} CocoSchemaErrors;

static void
cocoMigrationSchemaError(void *data, xmlError *err)
{
    CocoSchemaErrors *errors = data;

    if (!err || errors->message)
        return;
    errors->message = cocoXMLOneLine(err->message);
}

char *
cocoMigrationSchemaPath(void)
{
    const char *dir = g_getenv("COCO_SCHEMA_DIR");
    g_autofree char *exe = NULL;

    if (dir && *dir)
        return g_build_filename(dir, COCO_MIGRATION_SCHEMA_FILE, NULL);

    /* A program run from the build tree, not installed, uses the grammar of
     * the source tree it was built from (as libvirt's uninstalled builds
     * do); an installed one only ever uses the installed grammar. */
    exe = g_file_read_link("/proc/self/exe", NULL);
    if (exe && g_str_has_prefix(exe, COCO_BUILDDIR "/"))
        dir = COCO_SRC_SCHEMADIR;
    else
        dir = COCO_SCHEMADIR;
    return g_build_filename(dir, COCO_MIGRATION_SCHEMA_FILE, NULL);
}

/* Called with the lock held. */
static xmlRelaxNG *
cocoMigrationSchemaLoad(GError **error)
{
    g_autofree char *path = cocoMigrationSchemaPath();
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    CocoSchemaErrors errors = {0};
    xmlRelaxNGParserCtxt *pctxt;
    xmlRelaxNG *grammar;

    if (cocoMigrationSchemaGrammar &&
        STREQ(cocoMigrationSchemaGrammarPath, path))
        return cocoMigrationSchemaGrammar;

    if (!g_file_get_contents(path, &text, NULL, &local)) {
        cocoErrorSet(error, COCO_ERROR_SYSTEM,
                     _("cannot read the schema '%1$s': %2$s"), path,
                     local->message);
        return NULL;
    }
    if (!(doc = cocoXMLParseString(text, error))) {
        cocoErrorPrefix(error, _("schema '%1$s': "), path);
        return NULL;
    }

    /* The document parser context copies @doc. */
    if (!(pctxt = xmlRelaxNGNewDocParserCtxt(doc))) {
        cocoErrorSet(error, COCO_ERROR_INTERNAL,
                     _("cannot create a RelaxNG parser for '%1$s'"), path);
        return NULL;
    }
    xmlRelaxNGSetParserStructuredErrors(pctxt, cocoMigrationSchemaError,
                                        &errors);
    grammar = xmlRelaxNGParse(pctxt);
    xmlRelaxNGFreeParserCtxt(pctxt);
    if (!grammar) {
        cocoErrorSet(
            error, COCO_ERROR_INTERNAL,
            _("the schema '%1$s' is not a valid RelaxNG grammar: %2$s"), path,
            errors.message ? errors.message : _("unknown error"));
        g_free(errors.message);
        return NULL;
    }
    g_free(errors.message);

    if (cocoMigrationSchemaGrammar)
        xmlRelaxNGFree(cocoMigrationSchemaGrammar);
    g_free(cocoMigrationSchemaGrammarPath);
    cocoMigrationSchemaGrammar = grammar;
    cocoMigrationSchemaGrammarPath = g_steal_pointer(&path);
    return grammar;
}

int
cocoMigrationSchemaValidate(const char *xml, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    CocoSchemaErrors errors = {0};
    xmlRelaxNGValidCtxt *vctxt;
    xmlRelaxNG *grammar;
    int rc;

    if (!(doc = cocoXMLParseString(xml, error)))
        return -1;

    G_LOCK(cocoMigrationSchema);
    if (!(grammar = cocoMigrationSchemaLoad(error))) {
        G_UNLOCK(cocoMigrationSchema);
        return -1;
    }
    if (!(vctxt = xmlRelaxNGNewValidCtxt(grammar))) {
        G_UNLOCK(cocoMigrationSchema);
        return cocoErrorSet(error, COCO_ERROR_INTERNAL,
                            _("cannot create a RelaxNG validation context"));
    }
    xmlRelaxNGSetValidStructuredErrors(vctxt, cocoMigrationSchemaError,
                                       &errors);
    rc = xmlRelaxNGValidateDoc(vctxt, doc);
    xmlRelaxNGFreeValidCtxt(vctxt);
    G_UNLOCK(cocoMigrationSchema);

    if (rc != 0) {
        cocoErrorSet(error, COCO_ERROR_XML_SCHEMA,
                     _("the element does not match the grammar '%1$s': %2$s"),
                     COCO_MIGRATION_SCHEMA_FILE,
                     errors.message ? errors.message : _("validation failed"));
        g_free(errors.message);
        return -1;
    }
    g_free(errors.message);
    return 0;
}
