/*
 * cocoxml.h: safe, quiet XML parsing and attribute helpers over libxml2
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <libxml/tree.h>
#include <libxml/parser.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlParserCtxt, xmlFreeParserCtxt)

/*
 * cocoXMLParseString:
 * Parse the NUL-terminated @xml without touching the network, without
 * substituting entities and without loading any DTD: a document type
 * declaration is refused outright, before its internal subset is read.
 * libxml2 prints nothing; the first error (with its line) goes to @error
 * as COCO_ERROR_XML_MALFORMED. Namespace errors (an undeclared prefix)
 * count as malformed too.
 */
xmlDoc *cocoXMLParseString(const char *xml, GError **error);

/*
 * cocoXMLOneLine:
 * A copy of a libxml2 message on one line, without surrounding space.
 */
char *cocoXMLOneLine(const char *message);

/*
 * cocoXMLQuote:
 * @value made fit for an error message: control characters written as
 * "\n", "\t", "\xNN", cut after 100 bytes (at a character boundary)
 * with "..." appended. Error messages stay on one line.
 */
char *cocoXMLQuote(const char *value);

/*
 * cocoXMLNodeHasNs:
 * Whether @node is an element in namespace @uri (NULL: in no namespace).
 */
bool cocoXMLNodeHasNs(const xmlNode *node, const char *uri);

/*
 * cocoXMLNodeIsElement:
 * Whether @node is the element @name in namespace @uri (NULL: none).
 */
bool cocoXMLNodeIsElement(const xmlNode *node, const char *name,
                          const char *uri);

/*
 * cocoXMLNextChild:
 * Step to the next element child of a parent, starting at @node (a child
 * or NULL). Comments and processing instructions are skipped, as is text
 * made of white space only; any other text gives COCO_ERROR_XML_UNKNOWN
 * naming @parent. Returns 0 with *@next set (NULL at the end) or -1.
 */
int cocoXMLNextChild(const xmlNode *parent, xmlNode *node, xmlNode **next,
                     GError **error);

/*
 * cocoXMLCheckAttributes:
 * Every attribute of @node must be in no namespace and named in the
 * NULL-terminated @allowed list; otherwise COCO_ERROR_XML_UNKNOWN.
 */
int cocoXMLCheckAttributes(const xmlNode *node, const char *const *allowed,
                           GError **error);

/*
 * cocoXMLPropString:
 * The value of @node's attribute @name (in no namespace), or NULL. With
 * @required, an absent attribute gives COCO_ERROR_XML_MISSING.
 * Returns 1 (present), 0 (absent) or -1.
 */
int cocoXMLPropString(const xmlNode *node, const char *name, bool required,
                      char **value, GError **error);

/*
 * cocoXMLPropUInt:
 * A decimal attribute (digits only, leading zeros allowed) within
 * [@min, @max]; COCO_ERROR_XML_NUMBER names the range otherwise.
 * Returns 1 (present), 0 (absent) or -1.
 */
int cocoXMLPropUInt(const xmlNode *node, const char *name, bool required,
                    uint64_t min, uint64_t max, uint64_t *value,
                    GError **error);

/*
 * cocoXMLPropEnum:
 * An attribute whose value is one of the strings @to_string gives for
 * 0..@last-1; COCO_ERROR_XML_ENUM lists them otherwise.
 * Returns 1 (present), 0 (absent) or -1.
 */
int cocoXMLPropEnum(const xmlNode *node, const char *name, bool required,
                    const char *(*to_string)(int), int last, int *value,
                    GError **error);

/*
 * cocoXMLPropYesNo:
 * An attribute that is 'yes' or 'no'. Returns 1 (present), 0 or -1.
 */
int cocoXMLPropYesNo(const xmlNode *node, const char *name, bool required,
                     bool *value, GError **error);

/*
 * cocoXMLPropHex:
 * An attribute of exactly 2 * @len hexadecimal digits (either case),
 * decoded into @buf; COCO_ERROR_XML_FORMAT otherwise.
 * Returns 1 (present), 0 (absent) or -1.
 */
int cocoXMLPropHex(const xmlNode *node, const char *name, bool required,
                   uint8_t *buf, size_t len, GError **error);

/*
 * cocoXMLEscapeAttr:
 * Append @value to @buf escaped for a double-quoted attribute, so that an
 * XML parser gives back exactly @value (tabs and line breaks included).
 */
void cocoXMLEscapeAttr(GString *buf, const char *value);

/*
 * cocoXMLIsValidText:
 * Whether @str is valid UTF-8 made only of characters XML 1.0 allows.
 */
bool cocoXMLIsValidText(const char *str);
