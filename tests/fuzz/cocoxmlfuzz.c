/*
 * cocoxmlfuzz.c: libFuzzer target for the <coco:migration> parser
 *
 * For every input: parse, validate, and for a valid element check that
 * format and parse are inverses (parse(format(d)) == d, format stable).
 * The C verdict is also compared with the RelaxNG grammar's verdict
 * (schemas/coco-migration.rng, through libxml2), except for the
 * uniqueness rules only C can check. The same input is tried as a full
 * domain document (ParseDomain + ValidateDomain).
 *
 * An input starting with '@' is a template: the rest, split at '|', gives
 * the values of the attributes listed in fuzzTemplateAttrs ("~" leaves one
 * out), placed in a document with every element. This lets the fuzzer
 * search the value space of each attribute without breaking the markup.
 *
 * Built with -Dfuzzing=true and CC=clang; run e.g.
 *   ./cocoxmlfuzz -dict=cocoxml.dict -max_total_time=600 corpus/
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "conf/cocomigrationdef.h"
#include "conf/cocoxml.h"
#include "util/cocoerror.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT (64 * 1024)

static void
fuzzFail(const char *what, const char *xml, const char *detail)
{
    fprintf(stderr, "cocoxmlfuzz: %s\n--- input ---\n%s\n--- detail ---\n%s\n",
            what, xml, NULLSTR(detail));
    abort();
}

/* Errors must be ours, from the conf block, on one line. */
static void
fuzzCheckError(const GError *err, const char *xml)
{
    if (!err)
        fuzzFail("failure without an error", xml, NULL);
    if (err->domain != COCO_ERROR || err->code < 100 || err->code > 199 ||
        !cocoErrorCodeToString(err->code))
        fuzzFail("error outside the conf block", xml, err->message);
    if (!*err->message || strchr(err->message, '\n'))
        fuzzFail("error message empty or not one line", xml, err->message);
}

static void
fuzzCheckRoundTrip(const CocoMigrationDef *def, const char *xml)
{
    g_autoptr(CocoMigrationDef) def2 = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *out = cocoMigrationDefFormat(def, 0);
    g_autofree char *out2 = NULL;

    if (!out)
        fuzzFail("format of a valid definition failed", xml, NULL);
    if (!(def2 = cocoMigrationDefParseString(out, 0, &err)))
        fuzzFail("formatted output does not parse", xml, err->message);
    if (cocoMigrationDefValidate(def2, &err) < 0)
        fuzzFail("formatted output does not validate", xml, err->message);
    if (!cocoMigrationDefIsEqual(def, def2))
        fuzzFail("parse(format(d)) != d", xml, out);
    out2 = cocoMigrationDefFormat(def2, 0);
    if (g_strcmp0(out, out2) != 0)
        fuzzFail("format is not stable", xml, out2);
    if (cocoMigrationSchemaValidate(out, &err) < 0)
        fuzzFail("formatted output violates the grammar", out, err->message);
}

static const char *const fuzzTemplateAttrs[][2] = {
    {"migration", "technology"},
    {"agent", "hash"},
    {"agent", "minSvn"},
    {"platform", "id"},
    {"platform", "name"},
    {"minTcb", "component"},
    {"minTcb", "svn"},
    {"streams", "forward"},
    {"streams", "pagesPerBundle"},
    {"precopy", "maxEpochs"},
    {"precopy", "maxTime"},
    {"precopy", "maxBlackout"},
    {"precopy", "onNonConvergence"},
    {"postcopy", "allowed"},
    {"hostdev", "action"},
    {"hostdev", "allowUnsafeIommu"},
};

static void
fuzzTemplateElement(GString *doc, char **fields, const char *element,
                    const char *close)
{
    guint n = g_strv_length(fields);
    size_t i;

    g_string_append_printf(doc, "<coco:%s", element);
    if (STREQ(element, "migration"))
        g_string_append(doc, " xmlns:coco='" COCO_MIGRATION_NAMESPACE_URI "'");
    for (i = 0; i < G_N_ELEMENTS(fuzzTemplateAttrs); i++) {
        if (STRNEQ(fuzzTemplateAttrs[i][0], element) || i >= n ||
            STREQ(fields[i], "~"))
            continue;
        g_string_append_printf(doc, " %s=\"", fuzzTemplateAttrs[i][1]);
        cocoXMLEscapeAttr(doc, fields[i]);
        g_string_append_c(doc, '"');
    }
    g_string_append(doc, close);
}

static char *
fuzzTemplate(const char *input)
{
    g_auto(GStrv) fields = g_strsplit(input, "|", -1);
    GString *doc = g_string_new(NULL);

    fuzzTemplateElement(doc, fields, "migration", ">");
    fuzzTemplateElement(doc, fields, "agent", "/>");
    g_string_append(doc, "<coco:destinations>");
    fuzzTemplateElement(doc, fields, "platform", "/>");
    fuzzTemplateElement(doc, fields, "minTcb", "/>");
    g_string_append(doc, "</coco:destinations>");
    fuzzTemplateElement(doc, fields, "streams", "/>");
    fuzzTemplateElement(doc, fields, "precopy", "/>");
    fuzzTemplateElement(doc, fields, "postcopy", "/>");
    fuzzTemplateElement(doc, fields, "hostdev", "/>");
    g_string_append(doc, "</coco:migration>");
    return g_string_free(doc, FALSE);
}

int
LLVMFuzzerInitialize(int *argc G_GNUC_UNUSED, char ***argv G_GNUC_UNUSED)
{
    g_setenv("COCO_SCHEMA_DIR", COCO_SRC_SCHEMADIR, FALSE);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *xml = NULL;
    g_autoptr(CocoMigrationDef) def = NULL;
    g_autoptr(CocoMigrationDef) ddef = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) serr = NULL;
    g_autoptr(GError) derr = NULL;
    bool c_valid = false;
    bool c_only = false;
    int schema;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    xml = g_strndup((const char *)data, size);
    if (xml[0] == '@') {
        char *doc = fuzzTemplate(xml + 1);

        g_free(xml);
        xml = doc;
    }

    /* The standalone element. */
    if ((def = cocoMigrationDefParseString(xml, 0, &err))) {
        if (cocoMigrationDefValidate(def, &err) == 0) {
            c_valid = true;
            fuzzCheckRoundTrip(def, xml);
        } else {
            fuzzCheckError(err, xml);
            /* Uniqueness is the one rule the grammar cannot express. */
            c_only = err->code == COCO_ERROR_XML_DUPLICATE;
        }
    } else {
        fuzzCheckError(err, xml);
    }

    schema = cocoMigrationSchemaValidate(xml, &serr);
    if (schema < 0 && serr->code != COCO_ERROR_XML_SCHEMA &&
        serr->code != COCO_ERROR_XML_MALFORMED)
        fuzzFail("schema validation failed to run", xml, serr->message);
    if (!c_only && c_valid != (schema == 0)) {
        fuzzFail(c_valid ? "C accepts what the grammar rejects"
                         : "the grammar accepts what C rejects",
                 xml, c_valid ? serr->message : err->message);
    }

    /* The same input as a domain document. */
    if ((ddef = cocoMigrationDefParseDomain(xml, 0, &derr))) {
        if (cocoMigrationDefValidate(ddef, &derr) == 0) {
            fuzzCheckRoundTrip(ddef, xml);
            if (cocoMigrationDefValidateDomain(ddef, xml, &derr) < 0)
                fuzzCheckError(derr, xml);
        } else {
            fuzzCheckError(derr, xml);
        }
    } else {
        fuzzCheckError(derr, xml);
    }
    return 0;
}
