/*
 * virt-coco-metadata.c: "virt-coco metadata"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "virt-coco.h"
#include "libvirt-coco/libvirt-coco.h"
#include "virt/cocovirt.h"

/* Read, check and canonicalise the element in @path. */
static char *
cocoMetadataLoad(const char *path, virDomainPtr dom, GError **error)
{
    g_autofree char *text = NULL;
    g_autoptr(CocoMigrationDef) def = NULL;
    char *domxml;
    int rc;

    if (!(text = cocoCtlReadFile(path, error)))
        return NULL;
    if (!(def = cocoMigrationDefParseString(text, 0, error)) ||
        cocoMigrationDefValidate(def, error) < 0 ||
        cocoMigrationSchemaValidate(text, error) < 0)
        return NULL;

    /* The element must agree with the domain it goes into. */
    if (!(domxml = virDomainGetXMLDesc(dom, 0))) {
        cocoVirSetError(error, _("failed to get the domain's XML"));
        return NULL;
    }
    rc = cocoMigrationDefValidateDomain(def, domxml, error);
    free(domxml);
    if (rc < 0)
        return NULL;
    return cocoMigrationDefFormat(def, 0);
}

static void
cocoMetadataPrintJson(CocoCtl *ctl, const char *domain, const char *action,
                      const char *xml)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "domain");
    json_builder_add_string_value(b, domain);
    json_builder_set_member_name(b, "action");
    json_builder_add_string_value(b, action);
    json_builder_set_member_name(b, "configured");
    json_builder_add_boolean_value(b, xml != NULL);
    if (xml) {
        json_builder_set_member_name(b, "xml");
        json_builder_add_string_value(b, xml);
    }
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    cocoCtlPrintJson(ctl, root);
}

int
cocoCmdMetadata(CocoCtl *ctl, int argc, char **argv)
{
    g_autofree char *setfile = NULL;
    gboolean remove = FALSE;
    gboolean live = FALSE;
    gboolean config = FALSE;
    GOptionEntry entries[] = {
        {"set", 0, 0, G_OPTION_ARG_FILENAME, &setfile,
         N_("store the element read from FILE"), N_("FILE")},
        {"remove", 0, 0, G_OPTION_ARG_NONE, &remove, N_("remove the element"),
         NULL},
        {"live", 0, 0, G_OPTION_ARG_NONE, &live,
         N_("affect the running domain"), NULL},
        {"config", 0, 0, G_OPTION_ARG_NONE, &config,
         N_("affect the persistent definition"), NULL},
        G_OPTION_ENTRY_NULL,
    };
    g_autoptr(GError) err = NULL;
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autofree char *xml = NULL;
    unsigned int flags = VIR_DOMAIN_AFFECT_CURRENT;
    const char *domname;

    if (!cocoCtlParseOptions(ctl, entries, &argc, &argv))
        return COCO_EXIT_USAGE;
    if (argc != 2)
        return cocoCtlUsageError(ctl, _("expected exactly one DOMAIN"));
    if (setfile && remove)
        return cocoCtlUsageError(
            ctl, _("options '--set' and '--remove' are mutually exclusive"));
    if (live)
        flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (config)
        flags |= VIR_DOMAIN_AFFECT_CONFIG;
    if (!setfile && !remove && live && config)
        return cocoCtlUsageError(
            ctl, _("reading takes at most one of '--live' and '--config'"));
    domname = argv[1];

    cocoVirInitialize();
    if (!(conn = cocoVirConnect(ctl->uri, &err)) ||
        !(dom = cocoVirLookupDomain(conn, domname, &err)))
        return cocoCtlReportError(ctl, err);

    if (remove) {
        if (cocoVirSetMetadata(dom, NULL, flags, &err) < 0)
            return cocoCtlReportError(ctl, err);
        if (ctl->json)
            cocoMetadataPrintJson(ctl, domname, "remove", NULL);
        else
            cocoCtlInfo(
                ctl,
                _("Confidential-migration element removed from domain '%1$s'"),
                domname);
        return COCO_EXIT_OK;
    }

    if (setfile) {
        if (!(xml = cocoMetadataLoad(setfile, dom, &err)) ||
            cocoVirSetMetadata(dom, xml, flags, &err) < 0)
            return cocoCtlReportError(ctl, err);
        if (ctl->json)
            cocoMetadataPrintJson(ctl, domname, "set", xml);
        else
            cocoCtlInfo(
                ctl,
                _("Confidential-migration element stored in domain '%1$s'"),
                domname);
        return COCO_EXIT_OK;
    }

    if (cocoVirGetMetadata(dom, flags, &xml, &err) < 0)
        return cocoCtlReportError(ctl, err);
    if (ctl->json) {
        cocoMetadataPrintJson(ctl, domname, "get", xml);
    } else if (xml) {
        printf("%s\n", xml);
    } else {
        cocoCtlInfo(
            ctl,
            _("Domain '%1$s' has no confidential-migration element (not configured)"),
            domname);
    }
    return COCO_EXIT_OK;
}
