/*
 * cocohostdevpolicy.c: what <coco:hostdev action> does to a migration of
 * a domain with VFIO host devices
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "migration/cocohostdevpolicy.h"
#include "util/cocoerror.h"
#include "vfio/cocovfiopolicy.h"

int
cocoHostdevMigrationVerdict(const CocoMigrationDef *def, const char *domname,
                            size_t nhostdevs, const char *first, GError **error)
{
    if (nhostdevs == 0)
        return 0;
    if (def && def->has_hostdev &&
        def->hostdev_action == COCO_HOSTDEV_ACTION_DETACH)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED,
            _("domain '%1$s' still has the host device '%2$s' ('%3$zu' in all) attached; with <coco:hostdev action='detach'> the management layer must detach its host devices before the migration (virDomainDetachDeviceFlags) and attach them on the destination afterwards, or migrate with 'virt-coco migrate', which does both"),
            NULLSTR(domname), NULLSTR(first), nhostdevs);
    return cocoErrorSet(
        error, COCO_ERROR_NOT_SUPPORTED,
        _("domain '%1$s' has the host device '%2$s' ('%3$zu' in all), and a host device cannot move with a confidential migration (<coco:hostdev action='refuse'>, the default); detach it before the migration (virsh detach-device)"),
        NULLSTR(domname), NULLSTR(first), nhostdevs);
}

int
cocoHostdevMigrationCheck(const char *domain_xml, const CocoMigrationDef *def,
                          const char *domname, GError **error)
{
    CocoVfioPolicyResult res = {0};
    int ret;

    /* The VFIO policy's walk over <devices>; the fix is not the question
     * here. */
    if (cocoVfioPolicyCheckDomain(domain_xml, def, COCO_VFIO_FIX_NOT_NEEDED,
                                  NULL, &res, error) < 0) {
        cocoVfioPolicyResultClear(&res);
        return -1;
    }
    ret = cocoHostdevMigrationVerdict(def, domname, res.nhostdevs,
                                      res.first_hostdev, error);
    cocoVfioPolicyResultClear(&res);
    return ret;
}
