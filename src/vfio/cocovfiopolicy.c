/*
 * cocovfiopolicy.c: refusing VFIO + 64-bit vIOMMU on unfixed host kernels
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "vfio/cocovfiopolicy.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"

#include <libxml/parser.h>
#include <libxml/xpath.h>

void
cocoVfioPolicyResultClear(CocoVfioPolicyResult *result)
{
    if (!result)
        return;
    g_free(result->first_hostdev);
    g_free(result->iommu_model);
    memset(result, 0, sizeof(*result));
}

static void
cocoVfioXmlDocFree(xmlDoc *doc)
{
    xmlFreeDoc(doc);
}

static void
cocoVfioXPathCtxFree(xmlXPathContext *ctx)
{
    xmlXPathFreeContext(ctx);
}

static void
cocoVfioXPathObjFree(xmlXPathObject *obj)
{
    xmlXPathFreeObject(obj);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, cocoVfioXmlDocFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, cocoVfioXPathCtxFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathObject, cocoVfioXPathObjFree)

/* The string value of @expr (relative to @node when not NULL), or NULL. */
static char *
cocoVfioXPathString(xmlXPathContext *ctx, xmlNode *node, const char *expr)
{
    g_autoptr(xmlXPathObject) obj = NULL;

    ctx->node = node ? node : xmlDocGetRootElement(ctx->doc);
    obj = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    if (!obj || obj->type != XPATH_STRING || !obj->stringval ||
        !*obj->stringval)
        return NULL;
    return g_strdup((const char *)obj->stringval);
}

/* "0x0000" style attributes of a PCI <address> to "0000:03:00.0". */
static char *
cocoVfioPciName(xmlXPathContext *ctx, xmlNode *addr)
{
    g_autofree char *dom = cocoVfioXPathString(ctx, addr, "string(@domain)");
    g_autofree char *bus = cocoVfioXPathString(ctx, addr, "string(@bus)");
    g_autofree char *slot = cocoVfioXPathString(ctx, addr, "string(@slot)");
    g_autofree char *fn = cocoVfioXPathString(ctx, addr, "string(@function)");
    uint64_t d = 0, b = 0, s = 0, f = 0;

    if (!bus || !slot || !fn || (dom && cocoStrToU64(dom, 16, &d) < 0) ||
        cocoStrToU64(bus, 16, &b) < 0 || cocoStrToU64(slot, 16, &s) < 0 ||
        cocoStrToU64(fn, 16, &f) < 0 || d > 0xffff || b > 0xff || s > 0x1f ||
        f > 7)
        return NULL;
    return g_strdup_printf("%04x:%02x:%02x.%x", (unsigned int)d,
                           (unsigned int)b, (unsigned int)s, (unsigned int)f);
}

static char *
cocoVfioHostdevName(xmlXPathContext *ctx, xmlNode *dev)
{
    g_autoptr(xmlXPathObject) obj = NULL;
    char *name = NULL;

    ctx->node = dev;
    obj = xmlXPathEvalExpression(
        (const xmlChar *)"source/address[not(@type) or @type='pci']", ctx);
    if (obj && obj->nodesetval && obj->nodesetval->nodeNr > 0)
        name = cocoVfioPciName(ctx, obj->nodesetval->nodeTab[0]);
    if (!name)
        name = cocoVfioXPathString(ctx, dev, "string(source/address/@uuid)");
    if (!name)
        name = cocoVfioXPathString(ctx, dev, "string(mac/@address)");
    if (!name)
        name = g_strdup((const char *)dev->name);
    return name;
}

bool
cocoVfioPolicyIommuIsWide(const char *model, unsigned int aw_bits)
{
    if (!model)
        return false;
    if (STREQ(model, "intel") || STREQ(model, "smmuv3"))
        return aw_bits == 64; /* at most 48/57 bits */
    /* amd, virtio, and any model we do not know */
    return !(aw_bits > 0 && aw_bits < 64);
}

static bool
cocoVfioPolicyFixed(CocoVfioFixStatus fix)
{
    return fix == COCO_VFIO_FIX_PRESENT || fix == COCO_VFIO_FIX_NOT_NEEDED;
}

static bool
cocoVfioPolicyOverride(const CocoMigrationDef *def)
{
    return def && def->has_allow_unsafe_iommu && def->allow_unsafe_iommu;
}

int
cocoVfioPolicyCheckHost(const CocoMigrationDef *def, CocoVfioFixStatus host_fix,
                        const char *fix_detail, bool *overridden,
                        GError **error)
{
    if (overridden)
        *overridden = false;
    if (cocoVfioPolicyFixed(host_fix))
        return 0;
    if (cocoVfioPolicyOverride(def)) {
        if (overridden)
            *overridden = true;
        return 0;
    }
    if (host_fix == COCO_VFIO_FIX_UNKNOWN)
        return cocoErrorSet(
            error, COCO_ERROR_VFIO_UNSAFE,
            _("whether this host kernel has the range-safe VFIO unmap fix is unknown (%1$s), so it is treated as missing: DMA mappings can stay live and pages pinned until reboot; use a host kernel 6.18 or later, limit the vIOMMU with <driver aw_bits='48'/>, or accept the risk with <coco:hostdev allowUnsafeIommu='yes'/>"),
            fix_detail ? fix_detail : _("the probe gave no answer"));
    return cocoErrorSet(
        error, COCO_ERROR_VFIO_UNSAFE,
        _("this host kernel lacks the range-safe VFIO unmap fix (its probe answered EINVAL), so DMA mappings can stay live and pages pinned until reboot; use a host kernel 6.18 or later, limit the vIOMMU with <driver aw_bits='48'/>, or accept the risk with <coco:hostdev allowUnsafeIommu='yes'/>"));
}

int
cocoVfioPolicyCheckDomain(const char *domain_xml, const CocoMigrationDef *def,
                          CocoVfioFixStatus host_fix, const char *fix_detail,
                          CocoVfioPolicyResult *result, GError **error)
{
    CocoVfioPolicyResult local = {0};
    CocoVfioPolicyResult *res = result ? result : &local;
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctx = NULL;
    g_autoptr(xmlXPathObject) devs = NULL;
    g_autofree char *name = NULL;
    g_autofree char *aw = NULL;
    xmlNode *root;
    bool fixed = cocoVfioPolicyFixed(host_fix);
    int ret = -1;

    memset(res, 0, sizeof(*res));
    if (!domain_xml) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("no domain XML was given"));
        goto cleanup;
    }
    doc = xmlReadMemory(domain_xml, strlen(domain_xml), "domain.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING);
    if (!doc || !(root = xmlDocGetRootElement(doc)) ||
        !xmlStrEqual(root->name, (const xmlChar *)"domain")) {
        cocoErrorSet(
            error, COCO_ERROR_XML_MALFORMED,
            _("the domain XML is not a well-formed <domain> document"));
        goto cleanup;
    }
    ctx = xmlXPathNewContext(doc);
    name = cocoVfioXPathString(ctx, NULL, "string(/domain/name)");

    devs = xmlXPathEvalExpression(
        (const xmlChar
             *)"/domain/devices/hostdev[(not(@mode) or @mode='subsystem') and (@type='pci' or @type='mdev')] | /domain/devices/interface[@type='hostdev']",
        ctx);
    if (devs && devs->nodesetval)
        res->nhostdevs = (size_t)devs->nodesetval->nodeNr;
    if (res->nhostdevs > 0)
        res->first_hostdev =
            cocoVfioHostdevName(ctx, devs->nodesetval->nodeTab[0]);

    res->iommu_model =
        cocoVfioXPathString(ctx, NULL, "string(/domain/devices/iommu/@model)");
    aw = cocoVfioXPathString(ctx, NULL,
                             "string(/domain/devices/iommu/driver/@aw_bits)");
    if (aw) {
        uint64_t bits;

        if (cocoStrToU64(aw, 10, &bits) < 0 || bits == 0 || bits > 64) {
            cocoErrorSet(
                error, COCO_ERROR_XML_NUMBER,
                _("the vIOMMU's aw_bits '%1$s' is not a number from 1 to 64"),
                aw);
            goto cleanup;
        }
        res->aw_bits = (unsigned int)bits;
    }
    res->wide_iova = cocoVfioPolicyIommuIsWide(res->iommu_model, res->aw_bits);

    res->unsafe = res->nhostdevs > 0 && res->wide_iova && !fixed;
    if (res->unsafe) {
        g_autoptr(GError) host = NULL;

        if (cocoVfioPolicyCheckHost(def, host_fix, fix_detail, &res->overridden,
                                    &host) < 0) {
            cocoErrorSet(
                error, COCO_ERROR_VFIO_UNSAFE,
                _("domain '%1$s': host device '%2$s' sits behind the vIOMMU model '%3$s', which lets the guest use IOVAs up to 2^64-1, and %4$s"),
                NULLSTR(name), NULLSTR(res->first_hostdev), res->iommu_model,
                host->message);
            goto cleanup;
        }
    }
    ret = 0;

cleanup:
    if (ret < 0 || !result)
        cocoVfioPolicyResultClear(res);
    return ret;
}
