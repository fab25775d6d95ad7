/*
 * cocovirt.h: the libvirt side of libvirt-coco (public libvirt API only)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "util/cocoerror.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

/*
 * cocoVirInitialize:
 * Initialise libvirt (virInitialize()) and install an error handler that
 * prints nothing (libvirt's default handler writes every error to stderr
 * behind our back). Call once before any other libvirt call.
 */
void cocoVirInitialize(void);

/*
 * cocoVirSetError:
 * Map libvirt's last error (virGetLastError()) into COCO_ERROR_LIBVIRT,
 * keeping libvirt's code, domain and message. When libvirt has no error
 * recorded, @fallback (a whole translated message) is used. Returns -1.
 */
int cocoVirSetError(GError **error, const char *fallback);

/*
 * cocoVirConnect:
 * Open a read-write connection to @uri (NULL: libvirt's default).
 */
virConnectPtr cocoVirConnect(const char *uri, GError **error);

/*
 * cocoVirHostname:
 * The host name of the libvirt at @uri: asked on @conn when given, else on
 * a read-only connection to @uri opened and closed here.
 */
char *cocoVirHostname(virConnectPtr conn, const char *uri, GError **error);

/*
 * cocoVirLookupDomain:
 * Find a domain by name, UUID or id, as virsh does.
 */
virDomainPtr cocoVirLookupDomain(virConnectPtr conn, const char *name,
                                 GError **error);

/*
 * cocoVirGetMetadata:
 * Read the <coco:migration> element of @dom (flags: VIR_DOMAIN_AFFECT_*).
 * Absent metadata is not an error: returns 0 with *@xml = NULL.
 * Returns 0 on success, -1 with @error set.
 */
int cocoVirGetMetadata(virDomainPtr dom, unsigned int flags, char **xml,
                       GError **error);

/*
 * cocoVirSetMetadata:
 * Store @xml (a <coco:migration> element) in @dom's metadata, or remove the
 * element when @xml is NULL. Returns 0 or -1 with @error set.
 */
int cocoVirSetMetadata(virDomainPtr dom, const char *xml, unsigned int flags,
                       GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virConnect, virConnectClose)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, virDomainFree)
