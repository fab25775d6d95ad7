/*
 * virt-coco-validate.c: "virt-coco validate"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "virt-coco.h"
#include "libvirt-coco/libvirt-coco.h"
#include "virt/cocovirt.h"
#include "client/cococlientvalidate.h"

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
        if (!(text = cocoCtlReadFile(argv[1], &err)))
            return cocoCtlReportError(ctl, err);
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
