/*
 * cocoagentdomain.c: what libvirt's status file says about a domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "agent/cocoagentdomain.h"
#include "conf/cocoxml.h"
#include "migration/cocohostdevpolicy.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"

#include <libxml/tree.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)

static xmlNode *
cocoAgentDomainFind(xmlNode *root)
{
    xmlNode *cur;

    if (cocoXMLNodeIsElement(root, "domain", NULL))
        return root;
    if (!cocoXMLNodeIsElement(root, "domstatus", NULL))
        return NULL;
    for (cur = root->children; cur; cur = cur->next) {
        if (cocoXMLNodeIsElement(cur, "domain", NULL))
            return cur;
    }
    return NULL;
}

static unsigned int
cocoAgentDomainVcpus(xmlNode *dom)
{
    xmlNode *cur;

    for (cur = dom->children; cur; cur = cur->next) {
        g_autofree char *text = NULL;
        uint64_t n;

        if (!cocoXMLNodeIsElement(cur, "vcpu", NULL))
            continue;
        text = (char *)xmlNodeGetContent(cur);
        if (text && cocoStrToU64(g_strstrip(text), 10, &n) == 0 && n > 0 &&
            n <= 4096)
            return (unsigned int)n;
    }
    return 0;
}

/* The <domain> of a status or domain document, as text. */
static char *
cocoAgentDomainText(const char *xml, unsigned int *vcpus, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlBuffer) buf = NULL;
    xmlNode *dom;

    if (!(doc = cocoXMLParseString(xml, error)))
        return NULL;
    if (!(dom = cocoAgentDomainFind(xmlDocGetRootElement(doc)))) {
        cocoErrorSet(error, COCO_ERROR_XML_NAMESPACE, "%s",
                     _("the status file holds no libvirt 'domain' element"));
        return NULL;
    }
    if (vcpus)
        *vcpus = cocoAgentDomainVcpus(dom);
    buf = xmlBufferCreate();
    if (xmlNodeDump(buf, doc, dom, 0, 0) < 0) {
        cocoErrorSet(error, COCO_ERROR_INTERNAL, "%s",
                     _("cannot serialise the domain element"));
        return NULL;
    }
    return g_strdup((const char *)xmlBufferContent(buf));
}

int
cocoAgentDomainParse(const char *xml, CocoMigrationDef **def,
                     unsigned int *vcpus, GError **error)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *text = NULL;
    CocoMigrationDef *parsed;

    *def = NULL;
    *vcpus = 0;
    if (!(text = cocoAgentDomainText(xml, vcpus, error)))
        return -1;
    parsed = cocoMigrationDefParseDomain(text, 0, &err);
    if (!parsed) {
        if (g_error_matches(err, COCO_ERROR, COCO_ERROR_NOT_CONFIGURED))
            return 0;
        g_propagate_error(error, g_steal_pointer(&err));
        return -1;
    }
    if (cocoMigrationDefValidate(parsed, error) < 0) {
        cocoMigrationDefFree(parsed);
        return -1;
    }
    *def = parsed;
    return 0;
}

int
cocoAgentDomainLoad(const char *pid_dir, const char *name,
                    CocoMigrationDef **def, unsigned int *vcpus, GError **error)
{
    g_autofree char *path = NULL;
    g_autofree char *xml = NULL;

    *def = NULL;
    *vcpus = 0;
    if (!pid_dir)
        return 0;
    path = g_strdup_printf("%s/%s.xml", pid_dir, name);
    if (!g_file_get_contents(path, &xml, NULL, NULL))
        return 0;
    if (cocoAgentDomainParse(xml, def, vcpus, error) < 0) {
        cocoErrorPrefix(error, _("libvirt's status file '%1$s': "), path);
        return -1;
    }
    return 0;
}

int
cocoAgentDomainCheckHostdevs(const char *xml, const CocoMigrationDef *def,
                             const char *name, GError **error)
{
    g_autofree char *text = NULL;

    if (!def)
        return 0;
    if (!(text = cocoAgentDomainText(xml, NULL, error)))
        return -1;
    return cocoHostdevMigrationCheck(text, def, name, error);
}

int
cocoAgentDomainLoadHostdevs(const char *pid_dir, const char *name,
                            const CocoMigrationDef *def, GError **error)
{
    g_autofree char *path = NULL;
    g_autofree char *xml = NULL;

    if (!pid_dir || !def)
        return 0;
    path = g_strdup_printf("%s/%s.xml", pid_dir, name);
    if (!g_file_get_contents(path, &xml, NULL, NULL))
        return 0;
    return cocoAgentDomainCheckHostdevs(xml, def, name, error);
}
