/*
 * cocomigrationdef.c: parse, format and validate <coco:migration>
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "conf/cocomigrationdef.h"
#include "util/cocohex.h"

#include "conf/cocoxml.h"
#include "util/cocoerror.h"
#include "util/cocomath.h"

COCO_ENUM_IMPL(cocoTechnology, COCO_TECHNOLOGY_LAST, "tdx", "sev", "sev-snp");
COCO_ENUM_IMPL(cocoNonConvergence, COCO_NON_CONVERGENCE_LAST, "abort", "pause");
COCO_ENUM_IMPL(cocoHostdevAction, COCO_HOSTDEV_ACTION_LAST, "refuse", "detach");
COCO_ENUM_IMPL(cocoTcbComponent, COCO_TCB_COMPONENT_LAST, "module", "microcode",
               "loader", "agent");

/* The children of <migration>, in the order the grammar requires. */
typedef enum {
    COCO_MIGRATION_CHILD_AGENT,
    COCO_MIGRATION_CHILD_DESTINATIONS,
    COCO_MIGRATION_CHILD_STREAMS,
    COCO_MIGRATION_CHILD_PRECOPY,
    COCO_MIGRATION_CHILD_POSTCOPY,
    COCO_MIGRATION_CHILD_HOSTDEV,
    COCO_MIGRATION_CHILD_LAST
} CocoMigrationChild;

COCO_ENUM_DECL(cocoMigrationChild);
COCO_ENUM_IMPL(cocoMigrationChild, COCO_MIGRATION_CHILD_LAST, "agent",
               "destinations", "streams", "precopy", "postcopy", "hostdev");

/* The URI every version of the namespace starts with. */
#define COCO_MIGRATION_NAMESPACE_BASE                                          \
 "https://libvirt-coco.org/xmlns/migration/"

/* TD attribute bit 29: the TD may be migrated. */
#define COCO_TDX_ATTR_MIGRATABLE (1ULL << 29)
/* SEV guest policy bit 3, NOSEND: the guest must not be sent elsewhere. */
#define COCO_SEV_POLICY_NOSEND (1ULL << 3)
/* SEV-SNP guest policy bit 18, MIGRATE_MA: a migration agent is allowed. */
#define COCO_SNP_POLICY_MIGRATE_MA (1ULL << 18)

CocoMigrationDef *
cocoMigrationDefNew(void)
{
    return g_new0(CocoMigrationDef, 1);
}

void
cocoMigrationDefFree(CocoMigrationDef *def)
{
    size_t i;

    if (!def)
        return;
    for (i = 0; i < def->nplatforms; i++)
        g_free(def->platforms[i].name);
    g_free(def->platforms);
    g_free(def->min_tcbs);
    g_free(def);
}

/* Element children must be in our namespace. */
static int
cocoMigrationCheckChildNs(const xmlNode *parent, const xmlNode *child,
                          GError **error)
{
    if (cocoXMLNodeHasNs(child, COCO_MIGRATION_NAMESPACE_URI))
        return 0;
    if (cocoXMLNodeHasNs(child, NULL)) {
        return cocoErrorSet(
            error, COCO_ERROR_XML_NAMESPACE,
            _("element '%1$s' in element '%2$s' has no namespace; it must be in namespace '%3$s'"),
            (const char *)child->name, (const char *)parent->name,
            COCO_MIGRATION_NAMESPACE_URI);
    }
    {
        g_autofree char *href = cocoXMLQuote((const char *)child->ns->href);

        return cocoErrorSet(
            error, COCO_ERROR_XML_NAMESPACE,
            _("element '%1$s' in element '%2$s' is in namespace '%3$s'; it must be in namespace '%4$s'"),
            (const char *)child->name, (const char *)parent->name, href,
            COCO_MIGRATION_NAMESPACE_URI);
    }
}

/* Elements declared empty: no element children, no text. */
static int
cocoMigrationCheckEmpty(const xmlNode *node, GError **error)
{
    xmlNode *child = NULL;

    if (cocoXMLNextChild(node, node->children, &child, error) < 0)
        return -1;
    if (child) {
        return cocoErrorSet(
            error, COCO_ERROR_XML_UNKNOWN,
            _("unknown element '%1$s' in element '%2$s', which must be empty"),
            (const char *)child->name, (const char *)node->name);
    }
    return 0;
}

static int
cocoMigrationParseAgent(CocoMigrationDef *def, const xmlNode *node,
                        GError **error)
{
    static const char *const attrs[] = {"hash", "minSvn", NULL};
    uint64_t svn = 0;
    int rc;

    if (cocoXMLCheckAttributes(node, attrs, error) < 0 ||
        cocoXMLPropHex(node, "hash", true, def->agent_hash, COCO_AGENT_HASH_LEN,
                       error) < 0)
        return -1;
    if ((rc = cocoXMLPropUInt(node, "minSvn", false, 0, COCO_SVN_MAX, &svn,
                              error)) < 0)
        return -1;
    def->has_agent_min_svn = rc == 1;
    def->agent_min_svn = (unsigned int)svn;
    if (cocoMigrationCheckEmpty(node, error) < 0)
        return -1;
    def->has_agent = true;
    return 0;
}

static int
cocoMigrationParsePlatform(CocoMigrationDef *def, size_t *cap,
                           const xmlNode *node, GError **error)
{
    static const char *const attrs[] = {"id", "name", NULL};
    CocoPlatformId platform = {0};
    g_autofree char *name = NULL;

    if (cocoXMLCheckAttributes(node, attrs, error) < 0 ||
        cocoXMLPropHex(node, "id", true, platform.id, COCO_PLATFORM_ID_LEN,
                       error) < 0 ||
        cocoXMLPropString(node, "name", false, &name, error) < 0)
        return -1;
    if (name && !*name) {
        return cocoErrorSet(
            error, COCO_ERROR_XML_FORMAT,
            _("attribute 'name' of element 'platform' must not be empty"));
    }
    if (cocoMigrationCheckEmpty(node, error) < 0)
        return -1;
    if (def->nplatforms >= COCO_MIGRATION_MAX_PLATFORMS)
        return cocoErrorSet(
            error, COCO_ERROR_XML_NUMBER,
            _("element 'destinations' lists more than '%1$d' platforms"),
            COCO_MIGRATION_MAX_PLATFORMS);

    if (def->nplatforms == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        def->platforms = g_renew(CocoPlatformId, def->platforms, *cap);
    }
    platform.name = g_steal_pointer(&name);
    def->platforms[def->nplatforms++] = platform;
    return 0;
}

static int
cocoMigrationParseMinTcb(CocoMigrationDef *def, size_t *cap,
                         const xmlNode *node, GError **error)
{
    static const char *const attrs[] = {"component", "svn", NULL};
    int component = 0;
    uint64_t svn = 0;

    if (cocoXMLCheckAttributes(node, attrs, error) < 0 ||
        cocoXMLPropEnum(node, "component", true, cocoTcbComponentTypeToString,
                        COCO_TCB_COMPONENT_LAST, &component, error) < 0 ||
        cocoXMLPropUInt(node, "svn", true, 0, COCO_SVN_MAX, &svn, error) < 0 ||
        cocoMigrationCheckEmpty(node, error) < 0)
        return -1;

    if (def->nmin_tcbs == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        def->min_tcbs = g_renew(CocoMinTcb, def->min_tcbs, *cap);
    }
    def->min_tcbs[def->nmin_tcbs].component = component;
    def->min_tcbs[def->nmin_tcbs].svn = (unsigned int)svn;
    def->nmin_tcbs++;
    return 0;
}

static int
cocoMigrationParseDestinations(CocoMigrationDef *def, const xmlNode *node,
                               GError **error)
{
    static const char *const attrs[] = {NULL};
    size_t platforms_cap = 0;
    size_t min_tcbs_cap = 0;
    xmlNode *cur = NULL;

    if (cocoXMLCheckAttributes(node, attrs, error) < 0)
        return -1;

    if (cocoXMLNextChild(node, node->children, &cur, error) < 0)
        return -1;
    while (cur) {
        const char *name = (const char *)cur->name;

        if (cocoMigrationCheckChildNs(node, cur, error) < 0)
            return -1;
        if (STREQ(name, "platform")) {
            if (def->nmin_tcbs > 0) {
                return cocoErrorSet(
                    error, COCO_ERROR_XML_ORDER,
                    _("element '%1$s' must come before element '%2$s' in element '%3$s'"),
                    "platform", "minTcb", "destinations");
            }
            if (cocoMigrationParsePlatform(def, &platforms_cap, cur, error) < 0)
                return -1;
        } else if (STREQ(name, "minTcb")) {
            if (cocoMigrationParseMinTcb(def, &min_tcbs_cap, cur, error) < 0)
                return -1;
        } else {
            return cocoErrorSet(error, COCO_ERROR_XML_UNKNOWN,
                                _("unknown element '%1$s' in element '%2$s'"),
                                name, "destinations");
        }
        if (cocoXMLNextChild(node, cur->next, &cur, error) < 0)
            return -1;
    }

    if (def->nplatforms == 0 && def->nmin_tcbs == 0) {
        return cocoErrorSet(
            error, COCO_ERROR_XML_MISSING,
            _("element 'destinations' needs at least one 'platform' or 'minTcb' element"));
    }
    def->has_destinations = true;
    return 0;
}

static int
cocoMigrationParseStreams(CocoMigrationDef *def, const xmlNode *node,
                          GError **error)
{
    static const char *const attrs[] = {"forward", "pagesPerBundle", NULL};
    uint64_t forward = 0;
    uint64_t pages = 0;

    if (cocoXMLCheckAttributes(node, attrs, error) < 0 ||
        cocoXMLPropUInt(node, "forward", false, 1, COCO_STREAMS_MAX, &forward,
                        error) < 0 ||
        cocoXMLPropUInt(node, "pagesPerBundle", false, 1,
                        COCO_PAGES_PER_BUNDLE_MAX, &pages, error) < 0 ||
        cocoMigrationCheckEmpty(node, error) < 0)
        return -1;
    def->has_streams = true;
    def->forward_streams = (unsigned int)forward;
    def->pages_per_bundle = (unsigned int)pages;
    return 0;
}

static int
cocoMigrationParsePrecopy(CocoMigrationDef *def, const xmlNode *node,
                          GError **error)
{
    static const char *const attrs[] = {"maxEpochs", "maxTime", "maxBlackout",
                                        "onNonConvergence", NULL};
    uint64_t epochs = 0;
    uint64_t time = 0;
    uint64_t blackout = 0;
    int action = 0;
    int rc;

    if (cocoXMLCheckAttributes(node, attrs, error) < 0 ||
        cocoXMLPropUInt(node, "maxEpochs", false, 1,
                        COCO_PRECOPY_MAX_EPOCHS_MAX, &epochs, error) < 0 ||
        cocoXMLPropUInt(node, "maxTime", false, 1, COCO_PRECOPY_MAX_TIME_MAX,
                        &time, error) < 0 ||
        cocoXMLPropUInt(node, "maxBlackout", false, 1,
                        COCO_PRECOPY_MAX_BLACKOUT_MAX, &blackout, error) < 0)
        return -1;
    if ((rc = cocoXMLPropEnum(node, "onNonConvergence", false,
                              cocoNonConvergenceTypeToString,
                              COCO_NON_CONVERGENCE_LAST, &action, error)) < 0)
        return -1;
    if (cocoMigrationCheckEmpty(node, error) < 0)
        return -1;
    def->has_precopy = true;
    def->max_epochs = (uint32_t)epochs;
    def->max_time = (uint32_t)time;
    def->max_blackout = (uint32_t)blackout;
    def->has_on_non_convergence = rc == 1;
    def->on_non_convergence = action;
    return 0;
}

static int
cocoMigrationParsePostcopy(CocoMigrationDef *def, const xmlNode *node,
                           GError **error)
{
    static const char *const attrs[] = {"allowed", NULL};

    if (cocoXMLCheckAttributes(node, attrs, error) < 0 ||
        cocoXMLPropYesNo(node, "allowed", true, &def->postcopy_allowed, error) <
            0 ||
        cocoMigrationCheckEmpty(node, error) < 0)
        return -1;
    def->has_postcopy = true;
    return 0;
}

static int
cocoMigrationParseHostdev(CocoMigrationDef *def, const xmlNode *node,
                          GError **error)
{
    static const char *const attrs[] = {"action", "allowUnsafeIommu", NULL};
    int action = 0;
    int rc;

    if (cocoXMLCheckAttributes(node, attrs, error) < 0 ||
        cocoXMLPropEnum(node, "action", true, cocoHostdevActionTypeToString,
                        COCO_HOSTDEV_ACTION_LAST, &action, error) < 0)
        return -1;
    if ((rc = cocoXMLPropYesNo(node, "allowUnsafeIommu", false,
                               &def->allow_unsafe_iommu, error)) < 0)
        return -1;
    if (cocoMigrationCheckEmpty(node, error) < 0)
        return -1;
    def->has_hostdev = true;
    def->hostdev_action = action;
    def->has_allow_unsafe_iommu = rc == 1;
    return 0;
}

/* @root is known to be <migration> in our namespace. */
static CocoMigrationDef *
cocoMigrationDefParseNode(const xmlNode *root, GError **error)
{
    static const char *const attrs[] = {"technology", NULL};
    g_autoptr(CocoMigrationDef) def = cocoMigrationDefNew();
    bool seen[COCO_MIGRATION_CHILD_LAST] = {false};
    int last = -1;
    int technology = 0;
    xmlNode *cur = NULL;

    if (cocoXMLCheckAttributes(root, attrs, error) < 0 ||
        cocoXMLPropEnum(root, "technology", true, cocoTechnologyTypeToString,
                        COCO_TECHNOLOGY_LAST, &technology, error) < 0)
        return NULL;
    def->technology = technology;

    if (cocoXMLNextChild(root, root->children, &cur, error) < 0)
        return NULL;
    while (cur) {
        const char *name = (const char *)cur->name;
        int child;
        int rc = -1;

        if (cocoMigrationCheckChildNs(root, cur, error) < 0)
            return NULL;
        if ((child = cocoMigrationChildTypeFromString(name)) < 0) {
            cocoErrorSet(error, COCO_ERROR_XML_UNKNOWN,
                         _("unknown element '%1$s' in element '%2$s'"), name,
                         COCO_MIGRATION_ELEMENT);
            return NULL;
        }
        if (seen[child]) {
            cocoErrorSet(
                error, COCO_ERROR_XML_DUPLICATE,
                _("element '%1$s' may appear only once in element '%2$s'"),
                name, COCO_MIGRATION_ELEMENT);
            return NULL;
        }
        if (child < last) {
            cocoErrorSet(
                error, COCO_ERROR_XML_ORDER,
                _("element '%1$s' must come before element '%2$s' in element '%3$s'"),
                name, cocoMigrationChildTypeToString(last),
                COCO_MIGRATION_ELEMENT);
            return NULL;
        }
        seen[child] = true;
        last = child;

        switch ((CocoMigrationChild)child) {
        case COCO_MIGRATION_CHILD_AGENT:
            rc = cocoMigrationParseAgent(def, cur, error);
            break;
        case COCO_MIGRATION_CHILD_DESTINATIONS:
            rc = cocoMigrationParseDestinations(def, cur, error);
            break;
        case COCO_MIGRATION_CHILD_STREAMS:
            rc = cocoMigrationParseStreams(def, cur, error);
            break;
        case COCO_MIGRATION_CHILD_PRECOPY:
            rc = cocoMigrationParsePrecopy(def, cur, error);
            break;
        case COCO_MIGRATION_CHILD_POSTCOPY:
            rc = cocoMigrationParsePostcopy(def, cur, error);
            break;
        case COCO_MIGRATION_CHILD_HOSTDEV:
            rc = cocoMigrationParseHostdev(def, cur, error);
            break;
        case COCO_MIGRATION_CHILD_LAST:
        default:
            break;
        }
        if (rc < 0)
            return NULL;

        if (cocoXMLNextChild(root, cur->next, &cur, error) < 0)
            return NULL;
    }

    if (!seen[COCO_MIGRATION_CHILD_DESTINATIONS]) {
        cocoErrorSet(
            error, COCO_ERROR_XML_MISSING,
            _("element '%1$s' is missing its required child element '%2$s'"),
            COCO_MIGRATION_ELEMENT, "destinations");
        return NULL;
    }
    return g_steal_pointer(&def);
}

static int
cocoMigrationCheckFlags(unsigned int flags, GError **error)
{
    if (flags != 0) {
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("unsupported flags 0x%1$x"), flags);
    }
    return 0;
}

CocoMigrationDef *
cocoMigrationDefParseString(const char *xml, unsigned int flags, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *root;

    if (cocoMigrationCheckFlags(flags, error) < 0)
        return NULL;
    if (!(doc = cocoXMLParseString(xml, error)))
        return NULL;
    root = xmlDocGetRootElement(doc);

    if (STRNEQ((const char *)root->name, COCO_MIGRATION_ELEMENT)) {
        cocoErrorSet(
            error, COCO_ERROR_XML_NAMESPACE,
            _("the root element is '%1$s'; expected element '%2$s' in namespace '%3$s'"),
            (const char *)root->name, COCO_MIGRATION_ELEMENT,
            COCO_MIGRATION_NAMESPACE_URI);
        return NULL;
    }
    if (cocoXMLNodeHasNs(root, NULL)) {
        cocoErrorSet(
            error, COCO_ERROR_XML_NAMESPACE,
            _("element '%1$s' has no namespace; it must be in namespace '%2$s'"),
            COCO_MIGRATION_ELEMENT, COCO_MIGRATION_NAMESPACE_URI);
        return NULL;
    }
    if (!cocoXMLNodeHasNs(root, COCO_MIGRATION_NAMESPACE_URI)) {
        g_autofree char *href = cocoXMLQuote((const char *)root->ns->href);

        cocoErrorSet(
            error, COCO_ERROR_XML_NAMESPACE,
            _("element '%1$s' is in namespace '%2$s'; it must be in namespace '%3$s'"),
            COCO_MIGRATION_ELEMENT, href, COCO_MIGRATION_NAMESPACE_URI);
        return NULL;
    }
    return cocoMigrationDefParseNode(root, error);
}

/* The root of a domain document: <domain> in no namespace. */
static xmlNode *
cocoMigrationDomainRoot(xmlDoc *doc, GError **error)
{
    xmlNode *root = xmlDocGetRootElement(doc);

    if (!cocoXMLNodeIsElement(root, "domain", NULL)) {
        cocoErrorSet(
            error, COCO_ERROR_XML_NAMESPACE,
            _("the root element is '%1$s'; expected a libvirt 'domain' element in no namespace"),
            (const char *)root->name);
        return NULL;
    }
    return root;
}

/* The one element child @name (no namespace) of @parent, or NULL. */
static int
cocoMigrationDomainChild(const xmlNode *parent, const char *name,
                         xmlNode **child, GError **error)
{
    xmlNode *cur;

    *child = NULL;
    for (cur = parent->children; cur; cur = cur->next) {
        if (!cocoXMLNodeIsElement(cur, name, NULL))
            continue;
        if (*child) {
            return cocoErrorSet(
                error, COCO_ERROR_XML_DUPLICATE,
                _("element '%1$s' may appear only once in element '%2$s'"),
                name, (const char *)parent->name);
        }
        *child = cur;
    }
    return 0;
}

CocoMigrationDef *
cocoMigrationDefParseDomain(const char *domain_xml, unsigned int flags,
                            GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *root;
    xmlNode *metadata = NULL;
    xmlNode *found = NULL;
    xmlNode *cur;

    if (cocoMigrationCheckFlags(flags, error) < 0)
        return NULL;
    if (!(doc = cocoXMLParseString(domain_xml, error)))
        return NULL;
    if (!(root = cocoMigrationDomainRoot(doc, error)))
        return NULL;
    if (cocoMigrationDomainChild(root, "metadata", &metadata, error) < 0)
        return NULL;

    for (cur = metadata ? metadata->children : NULL; cur; cur = cur->next) {
        if (cur->type != XML_ELEMENT_NODE ||
            STRNEQ((const char *)cur->name, COCO_MIGRATION_ELEMENT) ||
            !cur->ns || !cur->ns->href)
            continue;
        if (STRNEQ((const char *)cur->ns->href, COCO_MIGRATION_NAMESPACE_URI)) {
            if (STRPREFIX((const char *)cur->ns->href,
                          COCO_MIGRATION_NAMESPACE_BASE)) {
                g_autofree char *href =
                    cocoXMLQuote((const char *)cur->ns->href);

                cocoErrorSet(
                    error, COCO_ERROR_XML_NAMESPACE,
                    _("element '%1$s' in the domain metadata is in namespace '%2$s', which this version does not support; expected '%3$s'"),
                    COCO_MIGRATION_ELEMENT, href, COCO_MIGRATION_NAMESPACE_URI);
                return NULL;
            }
            continue;
        }
        if (found) {
            cocoErrorSet(
                error, COCO_ERROR_XML_DUPLICATE,
                _("element '%1$s' in namespace '%2$s' appears more than once in the domain metadata"),
                COCO_MIGRATION_ELEMENT, COCO_MIGRATION_NAMESPACE_URI);
            return NULL;
        }
        found = cur;
    }

    if (!found) {
        cocoErrorSet(
            error, COCO_ERROR_NOT_CONFIGURED,
            _("the domain has no element '%1$s' in namespace '%2$s' in its metadata"),
            COCO_MIGRATION_ELEMENT, COCO_MIGRATION_NAMESPACE_URI);
        return NULL;
    }
    return cocoMigrationDefParseNode(found, error);
}

char *
cocoMigrationDefFormat(const CocoMigrationDef *def, unsigned int flags)
{
    g_autoptr(GString) buf = NULL;
    const char *technology;
    size_t i;

    if (!def || flags != 0)
        return NULL;
    if (!(technology = cocoTechnologyTypeToString(def->technology)))
        return NULL;

    buf = g_string_new(NULL);
    g_string_append_printf(
        buf, "<coco:%s xmlns:coco=\"%s\" technology=\"%s\">\n",
        COCO_MIGRATION_ELEMENT, COCO_MIGRATION_NAMESPACE_URI, technology);

    if (def->has_agent) {
        g_autofree char *hash =
            cocoHexEncode(def->agent_hash, COCO_AGENT_HASH_LEN);

        g_string_append_printf(buf, "  <coco:agent hash=\"%s\"", hash);
        if (def->has_agent_min_svn)
            g_string_append_printf(buf, " minSvn=\"%u\"", def->agent_min_svn);
        g_string_append(buf, "/>\n");
    }

    if (def->has_destinations) {
        if (def->nplatforms == 0 && def->nmin_tcbs == 0) {
            g_string_append(buf, "  <coco:destinations/>\n");
        } else {
            g_string_append(buf, "  <coco:destinations>\n");
        }
        for (i = 0; i < def->nplatforms; i++) {
            g_autofree char *id =
                cocoHexEncode(def->platforms[i].id, COCO_PLATFORM_ID_LEN);

            g_string_append_printf(buf, "    <coco:platform id=\"%s\"", id);
            if (def->platforms[i].name) {
                g_string_append(buf, " name=\"");
                cocoXMLEscapeAttr(buf, def->platforms[i].name);
                g_string_append_c(buf, '"');
            }
            g_string_append(buf, "/>\n");
        }
        for (i = 0; i < def->nmin_tcbs; i++) {
            const char *component =
                cocoTcbComponentTypeToString(def->min_tcbs[i].component);

            if (!component)
                return NULL;
            g_string_append_printf(
                buf, "    <coco:minTcb component=\"%s\" svn=\"%u\"/>\n",
                component, def->min_tcbs[i].svn);
        }
        if (def->nplatforms > 0 || def->nmin_tcbs > 0)
            g_string_append(buf, "  </coco:destinations>\n");
    }

    if (def->has_streams) {
        g_string_append(buf, "  <coco:streams");
        if (def->forward_streams)
            g_string_append_printf(buf, " forward=\"%u\"",
                                   def->forward_streams);
        if (def->pages_per_bundle)
            g_string_append_printf(buf, " pagesPerBundle=\"%u\"",
                                   def->pages_per_bundle);
        g_string_append(buf, "/>\n");
    }

    if (def->has_precopy) {
        g_string_append(buf, "  <coco:precopy");
        if (def->max_epochs)
            g_string_append_printf(buf, " maxEpochs=\"%u\"",
                                   (unsigned int)def->max_epochs);
        if (def->max_time)
            g_string_append_printf(buf, " maxTime=\"%u\"",
                                   (unsigned int)def->max_time);
        if (def->max_blackout)
            g_string_append_printf(buf, " maxBlackout=\"%u\"",
                                   (unsigned int)def->max_blackout);
        if (def->has_on_non_convergence) {
            const char *action =
                cocoNonConvergenceTypeToString(def->on_non_convergence);

            if (!action)
                return NULL;
            g_string_append_printf(buf, " onNonConvergence=\"%s\"", action);
        }
        g_string_append(buf, "/>\n");
    }

    if (def->has_postcopy) {
        g_string_append_printf(buf, "  <coco:postcopy allowed=\"%s\"/>\n",
                               def->postcopy_allowed ? "yes" : "no");
    }

    if (def->has_hostdev) {
        const char *action = cocoHostdevActionTypeToString(def->hostdev_action);

        if (!action)
            return NULL;
        g_string_append_printf(buf, "  <coco:hostdev action=\"%s\"", action);
        if (def->has_allow_unsafe_iommu) {
            g_string_append_printf(buf, " allowUnsafeIommu=\"%s\"",
                                   def->allow_unsafe_iommu ? "yes" : "no");
        }
        g_string_append(buf, "/>\n");
    }

    g_string_append_printf(buf, "</coco:%s>\n", COCO_MIGRATION_ELEMENT);
    return g_string_free(g_steal_pointer(&buf), FALSE);
}

static int
cocoMigrationValidateRange(const char *attr, const char *element,
                           uint64_t value, uint64_t min, uint64_t max,
                           GError **error)
{
    if (value < min || value > max) {
        return cocoErrorSet(
            error, COCO_ERROR_XML_NUMBER,
            _("attribute '%1$s' of element '%2$s' must be a decimal number from %3$llu to %4$llu, not '%5$llu'"),
            attr, element, (unsigned long long)min, (unsigned long long)max,
            (unsigned long long)value);
    }
    return 0;
}

static int
cocoMigrationValidateAgent(const CocoMigrationDef *def, GError **error)
{
    const char *technology = cocoTechnologyTypeToString(def->technology);

    switch ((CocoTechnology)def->technology) {
    case COCO_TECHNOLOGY_TDX:
    case COCO_TECHNOLOGY_SEV_SNP:
        if (!def->has_agent) {
            return cocoErrorSet(
                error, COCO_ERROR_CONFIG_CONFLICT,
                _("technology '%1$s' needs element 'agent' naming the migration agent the guest is bound to"),
                technology);
        }
        break;
    case COCO_TECHNOLOGY_SEV:
        if (def->has_agent) {
            return cocoErrorSet(
                error, COCO_ERROR_CONFIG_CONFLICT,
                _("technology '%1$s' has no migration agent; remove element 'agent'"),
                technology);
        }
        break;
    case COCO_TECHNOLOGY_LAST:
    default:
        return cocoErrorSet(error, COCO_ERROR_XML_ENUM,
                            _("technology %1$d is not a known value"),
                            (int)def->technology);
    }
    if (def->has_agent && def->has_agent_min_svn &&
        cocoMigrationValidateRange("minSvn", "agent", def->agent_min_svn, 0,
                                   COCO_SVN_MAX, error) < 0)
        return -1;
    return 0;
}

static int
cocoMigrationValidateDestinations(const CocoMigrationDef *def, GError **error)
{
    g_autoptr(GHashTable) ids = NULL;
    bool seen[COCO_TCB_COMPONENT_LAST] = {false};
    size_t i;

    if (!def->has_destinations) {
        return cocoErrorSet(
            error, COCO_ERROR_XML_MISSING,
            _("element '%1$s' is missing its required child element '%2$s'"),
            COCO_MIGRATION_ELEMENT, "destinations");
    }
    if (def->nplatforms == 0 && def->nmin_tcbs == 0) {
        return cocoErrorSet(
            error, COCO_ERROR_XML_MISSING,
            _("element 'destinations' needs at least one 'platform' or 'minTcb' element"));
    }

    ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (i = 0; i < def->nplatforms; i++) {
        const CocoPlatformId *platform = &def->platforms[i];
        char *id = cocoHexEncode(platform->id, COCO_PLATFORM_ID_LEN);

        if (!g_hash_table_add(ids, id)) {
            return cocoErrorSet(
                error, COCO_ERROR_XML_DUPLICATE,
                _("platform '%1$s' is listed more than once in element 'destinations'"),
                id);
        }
        if (platform->name &&
            (!*platform->name || !cocoXMLIsValidText(platform->name))) {
            return cocoErrorSet(
                error, COCO_ERROR_XML_FORMAT,
                _("attribute 'name' of platform '%1$s' must be a non-empty string of valid XML characters"),
                id);
        }
    }

    for (i = 0; i < def->nmin_tcbs; i++) {
        const CocoMinTcb *tcb = &def->min_tcbs[i];
        const char *component = cocoTcbComponentTypeToString(tcb->component);

        if (!component) {
            return cocoErrorSet(error, COCO_ERROR_XML_ENUM,
                                _("minTcb component %1$d is not a known value"),
                                (int)tcb->component);
        }
        if (seen[tcb->component]) {
            return cocoErrorSet(
                error, COCO_ERROR_XML_DUPLICATE,
                _("minTcb component '%1$s' is listed more than once in element 'destinations'"),
                component);
        }
        seen[tcb->component] = true;
        if (cocoMigrationValidateRange("svn", "minTcb", tcb->svn, 0,
                                       COCO_SVN_MAX, error) < 0)
            return -1;
        if (tcb->component == COCO_TCB_COMPONENT_AGENT &&
            def->technology == COCO_TECHNOLOGY_SEV) {
            return cocoErrorSet(
                error, COCO_ERROR_CONFIG_CONFLICT,
                _("minTcb component 'agent' needs a migration agent, which technology '%1$s' does not have"),
                cocoTechnologyTypeToString(def->technology));
        }
    }
    return 0;
}

static int
cocoMigrationValidateTuning(const CocoMigrationDef *def, GError **error)
{
    if (def->has_streams) {
        if (def->forward_streams &&
            cocoMigrationValidateRange("forward", "streams",
                                       def->forward_streams, 1,
                                       COCO_STREAMS_MAX, error) < 0)
            return -1;
        if (def->pages_per_bundle &&
            cocoMigrationValidateRange("pagesPerBundle", "streams",
                                       def->pages_per_bundle, 1,
                                       COCO_PAGES_PER_BUNDLE_MAX, error) < 0)
            return -1;
    }

    if (def->has_precopy) {
        if (def->max_epochs && cocoMigrationValidateRange(
                                   "maxEpochs", "precopy", def->max_epochs, 1,
                                   COCO_PRECOPY_MAX_EPOCHS_MAX, error) < 0)
            return -1;
        if (def->max_time &&
            cocoMigrationValidateRange("maxTime", "precopy", def->max_time, 1,
                                       COCO_PRECOPY_MAX_TIME_MAX, error) < 0)
            return -1;
        if (def->max_blackout &&
            cocoMigrationValidateRange(
                "maxBlackout", "precopy", def->max_blackout, 1,
                COCO_PRECOPY_MAX_BLACKOUT_MAX, error) < 0)
            return -1;
        if (def->has_on_non_convergence &&
            !cocoNonConvergenceTypeToString(def->on_non_convergence)) {
            return cocoErrorSet(error, COCO_ERROR_XML_ENUM,
                                _("onNonConvergence %1$d is not a known value"),
                                (int)def->on_non_convergence);
        }
    }

    if (def->has_hostdev) {
        if (!cocoHostdevActionTypeToString(def->hostdev_action)) {
            return cocoErrorSet(error, COCO_ERROR_XML_ENUM,
                                _("hostdev action %1$d is not a known value"),
                                (int)def->hostdev_action);
        }
        if (def->has_allow_unsafe_iommu && def->allow_unsafe_iommu &&
            def->hostdev_action != COCO_HOSTDEV_ACTION_DETACH) {
            return cocoErrorSet(
                error, COCO_ERROR_CONFIG_CONFLICT,
                _("attribute allowUnsafeIommu='yes' of element 'hostdev' needs action='detach', not action='%1$s'"),
                cocoHostdevActionTypeToString(def->hostdev_action));
        }
    }
    return 0;
}

int
cocoMigrationDefValidate(const CocoMigrationDef *def, GError **error)
{
    if (!def) {
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("no definition given"));
    }
    if (cocoMigrationValidateAgent(def, error) < 0 ||
        cocoMigrationValidateDestinations(def, error) < 0 ||
        cocoMigrationValidateTuning(def, error) < 0)
        return -1;
    return 0;
}

/* Read the <policy> of a <launchSecurity>: 1 (found), 0 (absent), -1. */
static int
cocoMigrationLaunchPolicy(const xmlNode *launch, uint64_t *policy, char **text,
                          GError **error)
{
    xmlNode *node = NULL;
    g_autofree char *content = NULL;
    xmlChar *raw;
    int rc;

    if (cocoMigrationDomainChild(launch, "policy", &node, error) < 0)
        return -1;
    if (!node)
        return 0;

    raw = xmlNodeGetContent(node);
    content = g_strdup(raw ? (const char *)raw : "");
    xmlFree(raw);
    g_strstrip(content);

    rc = cocoStrToU64(content, 16, policy);
    if (rc < 0) {
        g_autofree char *quoted = cocoXMLQuote(content);

        g_free(content);
        content = g_steal_pointer(&quoted);
    }
    if (rc == -1) {
        return cocoErrorSet(
            error, COCO_ERROR_XML_FORMAT,
            _("launchSecurity policy '%1$s' is not a hexadecimal number"),
            content);
    }
    if (rc < 0) {
        return cocoErrorSet(
            error, COCO_ERROR_XML_NUMBER,
            _("launchSecurity policy '%1$s' does not fit in 64 bits"), content);
    }
    *text = g_steal_pointer(&content);
    return 1;
}

int
cocoMigrationDefValidateDomain(const CocoMigrationDef *def,
                               const char *domain_xml, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *type = NULL;
    g_autofree char *text = NULL;
    const char *technology;
    xmlNode *root;
    xmlNode *launch = NULL;
    uint64_t policy = 0;
    int rc;

    if (!def) {
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("no definition given"));
    }
    if (!(technology = cocoTechnologyTypeToString(def->technology))) {
        return cocoErrorSet(error, COCO_ERROR_XML_ENUM,
                            _("technology %1$d is not a known value"),
                            (int)def->technology);
    }
    if (!(doc = cocoXMLParseString(domain_xml, error)))
        return -1;
    if (!(root = cocoMigrationDomainRoot(doc, error)))
        return -1;
    if (cocoMigrationDomainChild(root, "launchSecurity", &launch, error) < 0)
        return -1;
    if (!launch)
        return 0;

    if (cocoXMLPropString(launch, "type", true, &type, error) < 0)
        return -1;
    if (STRNEQ(type, technology)) {
        g_autofree char *quoted = cocoXMLQuote(type);

        return cocoErrorSet(
            error, COCO_ERROR_CONFIG_CONFLICT,
            _("launchSecurity type '%1$s' does not match technology '%2$s' of element 'migration'"),
            quoted, technology);
    }
    if ((rc = cocoMigrationLaunchPolicy(launch, &policy, &text, error)) < 0)
        return -1;

    switch ((CocoTechnology)def->technology) {
    case COCO_TECHNOLOGY_TDX:
        if (rc == 0) {
            return cocoErrorSet(
                error, COCO_ERROR_CONFIG_CONFLICT,
                _("TDX launchSecurity has no 'policy'; the default policy does not set the migratable bit 29 (0x20000000)"));
        }
        if (!(policy & COCO_TDX_ATTR_MIGRATABLE)) {
            return cocoErrorSet(
                error, COCO_ERROR_CONFIG_CONFLICT,
                _("TDX launchSecurity policy '%1$s' does not set the migratable bit 29 (0x20000000)"),
                text);
        }
        break;
    case COCO_TECHNOLOGY_SEV:
        if (rc == 1 && (policy & COCO_SEV_POLICY_NOSEND)) {
            return cocoErrorSet(
                error, COCO_ERROR_CONFIG_CONFLICT,
                _("SEV launchSecurity policy '%1$s' sets NOSEND (bit 3, 0x8), which forbids migrating the guest"),
                text);
        }
        break;
    case COCO_TECHNOLOGY_SEV_SNP:
        if (rc == 1 && !(policy & COCO_SNP_POLICY_MIGRATE_MA)) {
            return cocoErrorSet(
                error, COCO_ERROR_CONFIG_CONFLICT,
                _("SEV-SNP launchSecurity policy '%1$s' does not set MIGRATE_MA (bit 18, 0x40000), so the guest cannot use a migration agent"),
                text);
        }
        break;
    case COCO_TECHNOLOGY_LAST:
    default:
        break;
    }
    return 0;
}

bool
cocoMigrationDefIsEqual(const CocoMigrationDef *a, const CocoMigrationDef *b)
{
    size_t i;

    if (a->technology != b->technology || a->has_agent != b->has_agent ||
        a->has_destinations != b->has_destinations ||
        a->has_streams != b->has_streams || a->has_precopy != b->has_precopy ||
        a->has_postcopy != b->has_postcopy || a->has_hostdev != b->has_hostdev)
        return false;

    if (a->has_agent) {
        if (memcmp(a->agent_hash, b->agent_hash, COCO_AGENT_HASH_LEN) != 0 ||
            a->has_agent_min_svn != b->has_agent_min_svn ||
            (a->has_agent_min_svn && a->agent_min_svn != b->agent_min_svn))
            return false;
    }

    if (a->has_destinations) {
        if (a->nplatforms != b->nplatforms || a->nmin_tcbs != b->nmin_tcbs)
            return false;
        for (i = 0; i < a->nplatforms; i++) {
            if (memcmp(a->platforms[i].id, b->platforms[i].id,
                       COCO_PLATFORM_ID_LEN) != 0 ||
                !STREQ_NULLABLE(a->platforms[i].name, b->platforms[i].name))
                return false;
        }
        for (i = 0; i < a->nmin_tcbs; i++) {
            if (a->min_tcbs[i].component != b->min_tcbs[i].component ||
                a->min_tcbs[i].svn != b->min_tcbs[i].svn)
                return false;
        }
    }

    if (a->has_streams && (a->forward_streams != b->forward_streams ||
                           a->pages_per_bundle != b->pages_per_bundle))
        return false;

    if (a->has_precopy) {
        if (a->max_epochs != b->max_epochs || a->max_time != b->max_time ||
            a->max_blackout != b->max_blackout ||
            a->has_on_non_convergence != b->has_on_non_convergence ||
            (a->has_on_non_convergence &&
             a->on_non_convergence != b->on_non_convergence))
            return false;
    }

    if (a->has_postcopy && a->postcopy_allowed != b->postcopy_allowed)
        return false;

    if (a->has_hostdev) {
        if (a->hostdev_action != b->hostdev_action ||
            a->has_allow_unsafe_iommu != b->has_allow_unsafe_iommu ||
            (a->has_allow_unsafe_iommu &&
             a->allow_unsafe_iommu != b->allow_unsafe_iommu))
            return false;
    }
    return true;
}
