/*
 * virt-coco-validate.c: "virt-coco validate"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "virt-coco.h"
#include "libvirt-coco/libvirt-coco.h"
#include "virt/cocovirt.h"

#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>

#define COCO_LIBVIRT_DOMAIN_RNG "/usr/share/libvirt/schemas/domain.rng"

typedef struct {
    const char *what; /* file name or domain name, for messages */
    bool domain_checked; /* the whole domain passed libvirt's grammar */
    char *skip_reason; /* why libvirt's grammar was not applied */
} CocoValidateReport;

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

static int
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

int
cocoValidateDomainText(const char *xml, const char *what,
                       CocoMigrationDef **def, GError **error)
{
    CocoValidateReport report = {.what = what};
    int ret = cocoValidateText(xml, &report, def, error);

    g_free(report.skip_reason);
    return ret;
}

static void
cocoValidatePrint(CocoCtl *ctl, const CocoValidateReport *report,
                  const CocoMigrationDef *def)
{
    const char *tech = cocoTechnologyTypeToString(def->technology);

    if (ctl->json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "valid");
        json_builder_add_boolean_value(b, TRUE);
        json_builder_set_member_name(b, "source");
        json_builder_add_string_value(b, report->what);
        json_builder_set_member_name(b, "technology");
        json_builder_add_string_value(b, tech);
        json_builder_set_member_name(b, "libvirt_schema_checked");
        json_builder_add_boolean_value(b, report->domain_checked);
        if (report->skip_reason) {
            json_builder_set_member_name(b, "libvirt_schema_skipped");
            json_builder_add_string_value(b, report->skip_reason);
        }
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        cocoCtlPrintJson(ctl, root);
        return;
    }
    cocoCtlInfo(ctl, _("%1$s: valid confidential-migration settings (%2$s)"),
                report->what, tech);
    if (report->skip_reason)
        cocoCtlInfo(ctl, _("note: libvirt's domain grammar not applied: %1$s"),
                    report->skip_reason);
}

int
cocoCmdValidate(CocoCtl *ctl, int argc, char **argv)
{
    g_autofree char *domname = NULL;
    gboolean config = FALSE;
    GOptionEntry entries[] = {
        {"domain", 'd', 0, G_OPTION_ARG_STRING, &domname,
         N_("validate the element of a defined domain"), N_("NAME")},
        {"config", 0, 0, G_OPTION_ARG_NONE, &config,
         N_("use the persistent definition of --domain"), NULL},
        G_OPTION_ENTRY_NULL,
    };
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoMigrationDef) def = NULL;
    g_autofree char *text = NULL;
    CocoValidateReport report = {0};

    if (!cocoCtlParseOptions(ctl, entries, &argc, &argv))
        return COCO_EXIT_USAGE;

    if (domname) {
        g_autoptr(virConnect) conn = NULL;
        g_autoptr(virDomain) dom = NULL;
        char *xml;

        if (argc != 1)
            return cocoCtlUsageError(
                ctl, _("give either FILE or --domain, not both"));
        cocoVirInitialize();
        if (!(conn = cocoVirConnect(ctl->uri, &err)) ||
            !(dom = cocoVirLookupDomain(conn, domname, &err)))
            return cocoCtlReportError(ctl, err);
        xml = virDomainGetXMLDesc(dom, config ? VIR_DOMAIN_XML_INACTIVE : 0);
        if (!xml) {
            cocoVirSetError(&err, _("failed to get the domain's XML"));
            return cocoCtlReportError(ctl, err);
        }
        text = g_strdup(xml);
        free(xml);
        report.what = domname;
    } else {
        if (argc != 2)
            return cocoCtlUsageError(
                ctl, _("expected exactly one FILE (or --domain NAME)"));
        if (config)
            return cocoCtlUsageError(ctl,
                                     _("option '--config' needs '--domain'"));
        if (!g_file_get_contents(argv[1], &text, NULL, &err)) {
            g_autoptr(GError) e2 = NULL;

            cocoErrorSet(&e2, COCO_ERROR_SYSTEM, _("cannot read '%1$s': %2$s"),
                         argv[1], err->message);
            return cocoCtlReportError(ctl, e2);
        }
        report.what = argv[1];
    }

    if (cocoValidateText(text, &report, &def, &err) < 0) {
        g_free(report.skip_reason);
        return cocoCtlReportError(ctl, err);
    }
    cocoValidatePrint(ctl, &report, def);
    g_free(report.skip_reason);
    return COCO_EXIT_OK;
}
