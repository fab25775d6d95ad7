/*
 * cocovirt.c: the libvirt side of libvirt-coco (public libvirt API only)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "virt/cocovirt.h"
#include "libvirt-coco/coco-migration-def.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

static void
cocoVirErrorFunc(void *opaque G_GNUC_UNUSED, virErrorPtr err G_GNUC_UNUSED)
{
    /* Errors are read with virGetLastError() where they happen. */
}

void
cocoVirInitialize(void)
{
    /* Before any other call: libvirt's per-thread error storage, which
     * even virTypedParamsAdd*() uses, needs it. */
    if (virInitialize() < 0)
        g_warning("libvirt-coco: cannot initialise libvirt");
    virSetErrorFunc(NULL, cocoVirErrorFunc);
}

int
cocoVirSetError(GError **error, const char *fallback)
{
    virErrorPtr err = virGetLastError();

    if (!err || err->code == VIR_ERR_OK)
        return cocoErrorSet(error, COCO_ERROR_LIBVIRT, "%s", fallback);
    return cocoErrorSetLibvirt(error, err->code, err->domain, err->message);
}

virConnectPtr
cocoVirConnect(const char *uri, GError **error)
{
    virConnectPtr conn = virConnectOpen(uri);

    if (!conn) {
        cocoVirSetError(error, _("failed to connect to the hypervisor"));
        return NULL;
    }
    return conn;
}

char *
cocoVirHostname(virConnectPtr conn, const char *uri, GError **error)
{
    g_autoptr(virConnect) ro = NULL;
    char *name;
    char *ret;

    if (!conn) {
        if (!(ro = virConnectOpenReadOnly(uri))) {
            cocoVirSetError(
                error,
                _("cannot connect to the destination to learn its host name"));
            return NULL;
        }
        conn = ro;
    }
    if (!(name = virConnectGetHostname(conn))) {
        cocoVirSetError(error, _("cannot get the destination's host name"));
        return NULL;
    }
    ret = g_strdup(name);
    free(name);
    return ret;
}

virDomainPtr
cocoVirLookupDomain(virConnectPtr conn, const char *name, GError **error)
{
    virDomainPtr dom = NULL;
    guint64 id = 0;
    virErrorPtr err;
    g_autofree char *msg = NULL;

    if (g_ascii_string_to_unsigned(name, 10, 0, G_MAXINT, &id, NULL))
        dom = virDomainLookupByID(conn, (int)id);
    if (!dom && strlen(name) == VIR_UUID_STRING_BUFLEN - 1)
        dom = virDomainLookupByUUIDString(conn, name);
    if (!dom)
        dom = virDomainLookupByName(conn, name);
    if (dom)
        return dom;

    err = virGetLastError();
    if (err && err->code != VIR_ERR_NO_DOMAIN) {
        cocoVirSetError(error, _("failed to look up the domain"));
        return NULL;
    }
    /* Keep libvirt's code, but name the domain the user asked for. */
    msg = g_strdup_printf(
        _("failed to get domain '%1$s': no domain with a matching name, UUID or id"),
        name);
    cocoErrorSetLibvirt(error, VIR_ERR_NO_DOMAIN,
                        err ? err->domain : VIR_FROM_DOM, msg);
    virResetLastError();
    return NULL;
}

/*
 * libvirt's metadata API takes and returns the element without namespace
 * declarations: virDomainSetMetadata() puts every element of the given tree
 * into the namespace named by its key and URI, and virDomainGetMetadata()
 * strips it again. Above this file the element always carries its
 * namespace, so convert at the boundary.
 */
static void
cocoVirSetTreeNs(xmlNodePtr node, xmlNsPtr ns)
{
    xmlNodePtr n;

    for (n = node; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        xmlSetNs(n, ns);
        cocoVirSetTreeNs(n->children, ns);
    }
}

/* Re-serialise @xml with every element in our namespace (@withNs) or in
 * none (!@withNs). */
static char *
cocoVirConvertNs(const char *xml, bool withNs, GError **error)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    xmlNodePtr copy;
    xmlDocPtr out;
    xmlBufferPtr buf;
    char *ret = NULL;

    doc = xmlReadMemory(xml, (int)strlen(xml), "metadata.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS);
    if (!doc || !(root = xmlDocGetRootElement(doc))) {
        cocoErrorSet(
            error, COCO_ERROR_XML_MALFORMED,
            _("the confidential-migration element is not well-formed XML"));
        xmlFreeDoc(doc);
        return NULL;
    }

    /* A fresh document, so that no stale namespace declaration survives. */
    out = xmlNewDoc(BAD_CAST "1.0");
    copy = xmlDocCopyNode(root, out, 1);
    xmlDocSetRootElement(out, copy);
    if (withNs) {
        xmlNsPtr ns = xmlNewNs(copy, BAD_CAST COCO_MIGRATION_NAMESPACE_URI,
                               BAD_CAST COCO_MIGRATION_NAMESPACE_PREFIX);

        cocoVirSetTreeNs(copy, ns);
    } else {
        xmlNsPtr defs = copy->nsDef;

        cocoVirSetTreeNs(copy, NULL);
        copy->nsDef = NULL;
        xmlFreeNsList(defs);
    }

    buf = xmlBufferCreate();
    xmlNodeDump(buf, out, copy, 0, 1);
    ret = g_strdup((const char *)xmlBufferContent(buf));
    xmlBufferFree(buf);
    xmlFreeDoc(out);
    xmlFreeDoc(doc);
    return ret;
}

int
cocoVirGetMetadata(virDomainPtr dom, unsigned int flags, char **xml,
                   GError **error)
{
    char *ret;
    char *converted;

    *xml = NULL;
    ret = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                               COCO_MIGRATION_NAMESPACE_URI, flags);
    if (!ret) {
        virErrorPtr err = virGetLastError();

        if (err && err->code == VIR_ERR_NO_DOMAIN_METADATA) {
            virResetLastError();
            return 0;
        }
        return cocoVirSetError(error,
                               _("failed to read the domain's metadata"));
    }
    converted = cocoVirConvertNs(ret, true, error);
    free(ret);
    if (!converted)
        return -1;
    *xml = converted;
    return 0;
}

int
cocoVirSetMetadata(virDomainPtr dom, const char *xml, unsigned int flags,
                   GError **error)
{
    g_autofree char *bare = NULL;

    if (xml && !(bare = cocoVirConvertNs(xml, false, error)))
        return -1;
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, bare,
                             bare ? COCO_MIGRATION_NAMESPACE_PREFIX : NULL,
                             COCO_MIGRATION_NAMESPACE_URI, flags) < 0)
        return cocoVirSetError(error,
                               _("failed to write the domain's metadata"));
    return 0;
}
