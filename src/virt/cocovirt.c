/*
 * cocovirt.c: the libvirt side of libvirt-coco (public libvirt API only)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "virt/cocovirt.h"
#include "libvirt-coco/coco-migration-def.h"

static void
cocoVirErrorFunc(void *opaque G_GNUC_UNUSED, virErrorPtr err G_GNUC_UNUSED)
{
    /* Errors are read with virGetLastError() where they happen. */
}

void
cocoVirInitialize(void)
{
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

virDomainPtr
cocoVirLookupDomain(virConnectPtr conn, const char *name, GError **error)
{
    virDomainPtr dom = NULL;
    guint64 id = 0;
    virErrorPtr err;

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
    virResetLastError();
    cocoErrorSet(error, COCO_ERROR_LIBVIRT, _("failed to get domain '%1$s'"),
                 name);
    return NULL;
}

int
cocoVirGetMetadata(virDomainPtr dom, unsigned int flags, char **xml,
                   GError **error)
{
    char *ret;

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
    *xml = g_strdup(ret);
    free(ret);
    return 0;
}

int
cocoVirSetMetadata(virDomainPtr dom, const char *xml, unsigned int flags,
                   GError **error)
{
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, xml,
                             xml ? COCO_MIGRATION_NAMESPACE_PREFIX : NULL,
                             COCO_MIGRATION_NAMESPACE_URI, flags) < 0)
        return cocoVirSetError(error,
                               _("failed to write the domain's metadata"));
    return 0;
}
