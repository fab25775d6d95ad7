/*
 * cococlientvalidate.c: the checks of "virt-coco validate"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "client/cococlientvalidate.h"
#include "util/cocoerror.h"

#include <string.h>
#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>

#define COCO_LIBVIRT_DOMAIN_RNG "/usr/share/libvirt/schemas/domain.rng"

static void
cocoValidateQuietErrors(void *ctx G_GNUC_UNUSED, const char *msg G_GNUC_UNUSED,
                        ...)
{
}

static void
cocoValidateStructuredError(void *userData, xmlErrorPtr err)
{
    char **first = userData;

    if (!*first && err && err->message)
        *first = g_strstrip(g_strdup(err->message));
}

/* Validate a whole domain against libvirt's own grammar, when installed. */
static int
cocoValidateLibvirtDomain(xmlDocPtr doc, CocoValidateReport *report,
                          GError **error)
{
    const char *rng = g_getenv("COCO_LIBVIRT_DOMAIN_RNG");
    xmlRelaxNGParserCtxtPtr pctxt = NULL;
    xmlRelaxNGPtr schema = NULL;
    xmlRelaxNGValidCtxtPtr vctxt = NULL;
    g_autofree char *first = NULL;
    int ret = -1;

    g_autofree char *common = NULL;
    g_autofree char *commonpath = NULL;
    g_autofree char *lstype = NULL;
    g_autofree char *needle = NULL;
    g_autofree char *rngdir = NULL;
    xmlNodePtr n;

    if (!rng)
        rng = COCO_LIBVIRT_DOMAIN_RNG;
    if (!g_file_test(rng, G_FILE_TEST_EXISTS)) {
        report->skip_reason = g_strdup_printf(
            _("libvirt's domain grammar '%1$s' is not installed"), rng);
        return 0;
    }

    /* libvirt releases before TDX/SEV-SNP support (9.0 in Debian 12) reject
     * those launchSecurity types although the domain is fine for a newer
     * libvirt. Apply the grammar only when it knows the domain's type. */
    for (n = xmlDocGetRootElement(doc)->children; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE &&
            xmlStrEqual(n->name, BAD_CAST "launchSecurity")) {
            xmlChar *t = xmlGetProp(n, BAD_CAST "type");

            lstype = g_strdup((const char *)t);
            xmlFree(t);
        }
    }
    rngdir = g_path_get_dirname(rng);
    commonpath = g_build_filename(rngdir, "domaincommon.rng", NULL);
    needle = g_strdup_printf("<value>%s</value>", lstype ? lstype : "");
    if (lstype && g_file_get_contents(commonpath, &common, NULL, NULL) &&
        !strstr(common, needle)) {
        report->skip_reason = g_strdup_printf(
            _("the installed libvirt grammar does not know launchSecurity type '%1$s'"),
            lstype);
        return 0;
    }

    if (!(pctxt = xmlRelaxNGNewParserCtxt(rng)))
        goto cleanup;
    xmlRelaxNGSetParserErrors(pctxt, cocoValidateQuietErrors,
                              cocoValidateQuietErrors, NULL);
    if (!(schema = xmlRelaxNGParse(pctxt))) {
        cocoErrorSet(error, COCO_ERROR_XML_SCHEMA,
                     _("cannot load libvirt's domain grammar '%1$s'"), rng);
        goto cleanup;
    }
    vctxt = xmlRelaxNGNewValidCtxt(schema);
    xmlRelaxNGSetValidStructuredErrors(vctxt, cocoValidateStructuredError,
                                       &first);
    if (xmlRelaxNGValidateDoc(vctxt, doc) != 0) {
        cocoErrorSet(error, COCO_ERROR_XML_SCHEMA,
                     _("'%1$s' is not a valid libvirt domain: %2$s"),
                     report->what, first ? first : _("grammar mismatch"));
        goto cleanup;
    }
    report->domain_checked = true;
    ret = 0;

cleanup:
    xmlRelaxNGFreeValidCtxt(vctxt);
    xmlRelaxNGFree(schema);
    xmlRelaxNGFreeParserCtxt(pctxt);
    return ret;
}

/* Return the coco element of a domain document as a standalone document
 * text (its namespace declared on it), or NULL when there is none. */
static char *
cocoValidateExtractElement(xmlDocPtr doc)
{
    xmlNodePtr root = xmlDocGetRootElement(doc);
    xmlNodePtr n;
    xmlNodePtr m;

    for (n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE ||
            !xmlStrEqual(n->name, BAD_CAST "metadata"))
            continue;
        for (m = n->children; m; m = m->next) {
            xmlDocPtr sub;
            xmlNodePtr copy;
            xmlChar *mem = NULL;
            int len = 0;
            char *ret;

            if (m->type != XML_ELEMENT_NODE || !m->ns ||
                !xmlStrEqual(m->ns->href,
                             BAD_CAST COCO_MIGRATION_NAMESPACE_URI))
                continue;
            sub = xmlNewDoc(BAD_CAST "1.0");
            copy = xmlDocCopyNode(m, sub, 1);
            xmlDocSetRootElement(sub, copy);
            xmlReconciliateNs(sub, copy);
            xmlDocDumpMemory(sub, &mem, &len);
            ret = g_strndup((const char *)mem, len);
            xmlFree(mem);
            xmlFreeDoc(sub);
            return ret;
        }
    }
    return NULL;
}

int
cocoValidateText(const char *text, CocoValidateReport *report,
                 CocoMigrationDef **defret, GError **error)
{
    g_autoptr(CocoMigrationDef) def = NULL;
    g_autofree char *element = NULL;
    xmlDocPtr doc;
    xmlNodePtr root;
    int ret = -1;

    doc = xmlReadMemory(text, (int)strlen(text), report->what, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING);
    if (!doc || !(root = xmlDocGetRootElement(doc))) {
        const xmlError *xerr = xmlGetLastError();

        cocoErrorSet(error, COCO_ERROR_XML_MALFORMED,
                     _("'%1$s' is not well-formed XML (line %2$d): %3$s"),
                     report->what, xerr ? xerr->line : 0,
                     xerr && xerr->message ? g_strstrip(xerr->message)
                                           : _("empty document"));
        goto cleanup;
    }

    /* The C rules first: their messages name the element, attribute and
     * value at fault. The grammar then gives its verdict too, so a file
     * passes only when both accept it. */
    if (xmlStrEqual(root->name, BAD_CAST "domain") && !root->ns) {
        if (cocoValidateLibvirtDomain(doc, report, error) < 0 ||
            !(def = cocoMigrationDefParseDomain(text, 0, error)) ||
            cocoMigrationDefValidate(def, error) < 0)
            goto cleanup;
        element = cocoValidateExtractElement(doc);
        if (element && cocoMigrationSchemaValidate(element, error) < 0)
            goto cleanup;
        if (cocoMigrationDefValidateDomain(def, text, error) < 0)
            goto cleanup;
    } else {
        if (!(def = cocoMigrationDefParseString(text, 0, error)) ||
            cocoMigrationDefValidate(def, error) < 0 ||
            cocoMigrationSchemaValidate(text, error) < 0)
            goto cleanup;
    }
    *defret = g_steal_pointer(&def);
    ret = 0;

cleanup:
    xmlFreeDoc(doc);
    return ret;
}
