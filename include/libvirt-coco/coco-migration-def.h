/*
 * coco-migration-def.h: the confidential-migration domain XML element
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(LIBVIRT_COCO_H_INSIDE) && !defined(LIBVIRT_COCO_COMPILATION)
# error "Only <libvirt-coco/libvirt-coco.h> can be included directly."
#endif

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

G_BEGIN_DECLS

/**
 * COCO_MIGRATION_NAMESPACE_URI:
 *
 * The versioned namespace of the element libvirt-coco keeps in a domain's
 * <metadata>. A later, incompatible grammar gets a new URI. (Since: 0.1.0)
 */
#define COCO_MIGRATION_NAMESPACE_URI                                           \
 "https://libvirt-coco.org/xmlns/migration/1.0"

/**
 * COCO_MIGRATION_NAMESPACE_PREFIX:
 *
 * The prefix libvirt-coco uses for its namespace, the "key" argument of
 * virDomainSetMetadata(). (Since: 0.1.0)
 */
#define COCO_MIGRATION_NAMESPACE_PREFIX "coco"

/**
 * COCO_MIGRATION_ELEMENT:
 *
 * The local name of the element: <coco:migration>. (Since: 0.1.0)
 */
#define COCO_MIGRATION_ELEMENT "migration"

/**
 * CocoTechnology:
 * @COCO_TECHNOLOGY_TDX: Intel TDX ("tdx")
 * @COCO_TECHNOLOGY_SEV: AMD SEV ("sev")
 * @COCO_TECHNOLOGY_SEV_SNP: AMD SEV-SNP ("sev-snp")
 * @COCO_TECHNOLOGY_LAST: the number of technologies
 *
 * The confidential-computing technology of the guest. (Since: 0.1.0)
 */
typedef enum {
    COCO_TECHNOLOGY_TDX = 0,
    COCO_TECHNOLOGY_SEV,
    COCO_TECHNOLOGY_SEV_SNP,
    COCO_TECHNOLOGY_LAST
} CocoTechnology;

/**
 * CocoNonConvergence:
 * @COCO_NON_CONVERGENCE_ABORT: abort the migration, the source keeps running ("abort")
 * @COCO_NON_CONVERGENCE_PAUSE: pause the guest and finish the migration ("pause")
 * @COCO_NON_CONVERGENCE_LAST: the number of values
 *
 * What to do when precopy does not converge within its limits. (Since: 0.1.0)
 */
typedef enum {
    COCO_NON_CONVERGENCE_ABORT = 0,
    COCO_NON_CONVERGENCE_PAUSE,
    COCO_NON_CONVERGENCE_LAST
} CocoNonConvergence;

/**
 * CocoHostdevAction:
 * @COCO_HOSTDEV_ACTION_REFUSE: refuse to migrate a domain with VFIO host devices ("refuse")
 * @COCO_HOSTDEV_ACTION_DETACH: detach them before and re-attach after ("detach")
 * @COCO_HOSTDEV_ACTION_LAST: the number of values
 *
 * What to do with VFIO host devices. (Since: 0.1.0)
 */
typedef enum {
    COCO_HOSTDEV_ACTION_REFUSE = 0,
    COCO_HOSTDEV_ACTION_DETACH,
    COCO_HOSTDEV_ACTION_LAST
} CocoHostdevAction;

/**
 * CocoTcbComponent:
 * @COCO_TCB_COMPONENT_MODULE: the TDX module or the SEV firmware ("module")
 * @COCO_TCB_COMPONENT_MICROCODE: CPU microcode ("microcode")
 * @COCO_TCB_COMPONENT_LOADER: the SEAM loader or SEV boot loader ("loader")
 * @COCO_TCB_COMPONENT_AGENT: the migration agent (MigTD) ("agent")
 * @COCO_TCB_COMPONENT_LAST: the number of values
 *
 * A component of a platform's trusted computing base whose security
 * version number (SVN) a destination policy can require. (Since: 0.1.0)
 */
typedef enum {
    COCO_TCB_COMPONENT_MODULE = 0,
    COCO_TCB_COMPONENT_MICROCODE,
    COCO_TCB_COMPONENT_LOADER,
    COCO_TCB_COMPONENT_AGENT,
    COCO_TCB_COMPONENT_LAST
} CocoTcbComponent;

/**
 * COCO_AGENT_HASH_LEN:
 *
 * Length in bytes of a migration agent identity (SHA-384). (Since: 0.1.0)
 */
#define COCO_AGENT_HASH_LEN 48

/**
 * COCO_PLATFORM_ID_LEN:
 *
 * Length in bytes of a platform identity (SHA-256 of the platform's
 * identity public key). (Since: 0.1.0)
 */
#define COCO_PLATFORM_ID_LEN 32

/**
 * COCO_MIGRATION_MAX_PLATFORMS:
 *
 * The most <coco:platform> entries one <coco:destinations> may list. A
 * longer allow list is refused before any grammar sees it: RelaxNG
 * validation grows with the square of its length. (Since: 0.1.0)
 */
#define COCO_MIGRATION_MAX_PLATFORMS 1024

/**
 * CocoPlatformId:
 * @id: the platform identity
 * @name: an optional operator label, or %NULL
 *
 * One entry of a destination allow list. (Since: 0.1.0)
 */
typedef struct {
    uint8_t id[COCO_PLATFORM_ID_LEN];
    char *name;
} CocoPlatformId;

/**
 * CocoMinTcb:
 * @component: the TCB component
 * @svn: the lowest acceptable security version number (0..65535)
 *
 * One minimum-TCB rule of a destination policy. (Since: 0.1.0)
 */
typedef struct {
    CocoTcbComponent component;
    unsigned int svn;
} CocoMinTcb;

/**
 * CocoMigrationDef:
 * @technology: the confidential technology (required)
 * @has_agent: whether <agent> is present
 * @agent_hash: the migration agent (MigTD) SHA-384 info hash the guest was bound to
 * @has_agent_min_svn: whether the agent's minSvn attribute is present
 * @agent_min_svn: the lowest acceptable agent SVN
 * @has_destinations: whether <destinations> is present
 * @platforms: the destination allow list (may be empty)
 * @nplatforms: number of @platforms
 * @min_tcbs: minimum TCB rules (may be empty)
 * @nmin_tcbs: number of @min_tcbs
 * @has_streams: whether <streams> is present
 * @forward_streams: number of forward streams, 1..512 (0 = not set)
 * @pages_per_bundle: pages per bundle, 1..512 (0 = not set)
 * @has_precopy: whether <precopy> is present
 * @max_epochs: precopy epoch limit, 0 = not set
 * @max_time: precopy time limit in seconds, 0 = not set
 * @max_blackout: longest acceptable blackout in milliseconds, 0 = not set
 * @has_on_non_convergence: whether onNonConvergence is present
 * @on_non_convergence: what to do when precopy does not converge
 * @has_postcopy: whether <postcopy> is present
 * @postcopy_allowed: post-copy allowed (experimental; default no)
 * @has_hostdev: whether <hostdev> is present
 * @hostdev_action: what to do with VFIO host devices
 * @has_allow_unsafe_iommu: whether allowUnsafeIommu is present
 * @allow_unsafe_iommu: accept a 64-bit vIOMMU on an unfixed host kernel
 *
 * The parsed <coco:migration> element. Every optional part records whether
 * it was present, so formatting gives back exactly what was parsed. Only
 * libvirt-coco allocates it (cocoMigrationDefNew()); fields may be appended
 * in later versions. (Since: 0.1.0)
 */
typedef struct {
    CocoTechnology technology;

    bool has_agent;
    uint8_t agent_hash[COCO_AGENT_HASH_LEN];
    bool has_agent_min_svn;
    unsigned int agent_min_svn;

    bool has_destinations;
    CocoPlatformId *platforms;
    size_t nplatforms;
    CocoMinTcb *min_tcbs;
    size_t nmin_tcbs;

    bool has_streams;
    unsigned int forward_streams;
    unsigned int pages_per_bundle;

    bool has_precopy;
    uint32_t max_epochs;
    uint32_t max_time;
    uint32_t max_blackout;
    bool has_on_non_convergence;
    CocoNonConvergence on_non_convergence;

    bool has_postcopy;
    bool postcopy_allowed;

    bool has_hostdev;
    CocoHostdevAction hostdev_action;
    bool has_allow_unsafe_iommu;
    bool allow_unsafe_iommu;
} CocoMigrationDef;

/**
 * cocoMigrationDefNew:
 *
 * Returns: (transfer full): a new, empty definition. (Since: 0.1.0)
 */
CocoMigrationDef *cocoMigrationDefNew(void);

/**
 * cocoMigrationDefFree:
 * @def: (nullable): a definition
 *
 * Frees @def and everything it owns. (Since: 0.1.0)
 */
void cocoMigrationDefFree(CocoMigrationDef *def);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoMigrationDef, cocoMigrationDefFree)

/**
 * cocoMigrationDefParseString:
 * @xml: a document whose root is <coco:migration>
 * @flags: must be 0
 * @error: return location for a #GError
 *
 * Parses the element. Syntax faults are reported here, the first one found
 * in document order, each with its own code: %COCO_ERROR_XML_MALFORMED (not
 * well-formed, with the line; also any <!DOCTYPE>, which is refused before
 * it is read), %COCO_ERROR_XML_NAMESPACE (wrong root element or namespace),
 * %COCO_ERROR_XML_UNKNOWN (unknown element or attribute, or text),
 * %COCO_ERROR_XML_MISSING, %COCO_ERROR_XML_DUPLICATE (a singleton element
 * repeated), %COCO_ERROR_XML_ORDER (children out of the required order),
 * %COCO_ERROR_XML_ENUM, %COCO_ERROR_XML_NUMBER (the message gives the range)
 * and %COCO_ERROR_XML_FORMAT (hex digits). The parser never touches the
 * network, expands no entities, loads no DTD and prints nothing. Semantic
 * rules are checked by cocoMigrationDefValidate(), which callers normally
 * run next.
 *
 * Returns: (transfer full): the definition, or %NULL with @error set. (Since: 0.1.0)
 */
CocoMigrationDef *cocoMigrationDefParseString(const char *xml,
                                              unsigned int flags,
                                              GError **error);

/**
 * cocoMigrationDefParseDomain:
 * @domain_xml: a full libvirt domain XML document
 * @flags: must be 0
 * @error: return location for a #GError
 *
 * Finds the <coco:migration> element inside the domain's <metadata> and
 * parses it. A domain without it gives %COCO_ERROR_NOT_CONFIGURED.
 *
 * Returns: (transfer full): the definition, or %NULL with @error set. (Since: 0.1.0)
 */
CocoMigrationDef *cocoMigrationDefParseDomain(const char *domain_xml,
                                              unsigned int flags,
                                              GError **error);

/**
 * cocoMigrationDefFormat:
 * @def: a definition
 * @flags: must be 0
 *
 * Formats @def as a standalone <coco:migration> element carrying its
 * namespace declaration, indented by two spaces, ending in a newline:
 * numbers in decimal without leading zeros, hex digits in lower case,
 * attributes in the order of the grammar. For a @def that passes
 * cocoMigrationDefValidate(), parsing the result gives back an equal
 * definition, and formatting a parsed canonical document gives it back
 * byte for byte.
 *
 * Returns: (transfer full): the XML text, or %NULL when @flags is not 0 or
 * @def holds a value outside its enumeration. (Since: 0.1.0)
 */
char *cocoMigrationDefFormat(const CocoMigrationDef *def, unsigned int flags);

/**
 * cocoMigrationDefValidate:
 * @def: a parsed definition
 * @error: return location for a #GError
 *
 * Checks the rules that span several parts of the element, reporting the
 * first fault: an agent identity is required for TDX and SEV-SNP and not
 * allowed for SEV, nor is a minTcb of component 'agent'; allowUnsafeIommu
 * 'yes' needs hostdev action 'detach' (all %COCO_ERROR_CONFIG_CONFLICT); no
 * platform id and no minTcb component is listed twice
 * (%COCO_ERROR_XML_DUPLICATE). For a definition built in code it also checks
 * what the parser guarantees: <destinations> present and not empty, numbers
 * and enumerations in range, platform names non-empty valid XML text.
 *
 * Returns: 0 when valid, -1 with @error set. (Since: 0.1.0)
 */
int cocoMigrationDefValidate(const CocoMigrationDef *def, GError **error);

/**
 * cocoMigrationDefValidateDomain:
 * @def: a valid definition
 * @domain_xml: the full domain XML @def belongs to
 * @error: return location for a #GError
 *
 * Cross-checks @def against the domain: its <launchSecurity> type must
 * match the technology, a TDX policy must be present and have the
 * migratable bit 29 (0x20000000) set, an SEV policy must not set NOSEND
 * (bit 3) and an SEV-SNP policy must set MIGRATE_MA (bit 18); these give
 * %COCO_ERROR_CONFIG_CONFLICT. A policy that is not a hexadecimal number
 * (optional "0x") gives %COCO_ERROR_XML_FORMAT. A domain without
 * <launchSecurity> passes.
 *
 * Returns: 0 when consistent, -1 with @error set. (Since: 0.1.0)
 */
int cocoMigrationDefValidateDomain(const CocoMigrationDef *def,
                                   const char *domain_xml, GError **error);

/**
 * cocoMigrationSchemaValidate:
 * @xml: a document whose root is <coco:migration>
 * @error: return location for a #GError
 *
 * Validates @xml against the RelaxNG grammar (schemas/coco-migration.rng),
 * loaded from $COCO_SCHEMA_DIR when set, else from the installed schema
 * directory. The grammar expresses every rule of cocoMigrationDefParseString()
 * and cocoMigrationDefValidate() except uniqueness (a platform id or minTcb
 * component listed twice). libxml2 prints nothing; the first message is kept.
 *
 * Returns: 0 when valid, -1 with @error set: %COCO_ERROR_XML_SCHEMA when the
 * grammar rejects @xml, %COCO_ERROR_XML_MALFORMED when @xml is not
 * well-formed, %COCO_ERROR_SYSTEM or %COCO_ERROR_INTERNAL when the grammar
 * cannot be read or compiled. (Since: 0.1.0)
 */
int cocoMigrationSchemaValidate(const char *xml, GError **error);

/**
 * cocoTechnologyTypeToString:
 * @type: a #CocoTechnology
 *
 * Returns: the XML string of @type, or %NULL when out of range. (Since: 0.1.0)
 */
const char *cocoTechnologyTypeToString(int type);

/**
 * cocoTechnologyTypeFromString:
 * @type: an XML string
 *
 * Returns: the #CocoTechnology of @type, or -1. (Since: 0.1.0)
 */
int cocoTechnologyTypeFromString(const char *type);

G_END_DECLS
