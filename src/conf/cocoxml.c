/*
 * cocoxml.c: safe, quiet XML parsing and attribute helpers over libxml2
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "conf/cocoxml.h"

#include <limits.h>
#include <libxml/SAX2.h>
#include <libxml/parserInternals.h>

#include "util/cocoerror.h"
#include "util/cocomath.h"

typedef struct {
    char *message; /* the first error libxml2 reported */
    int line;
    bool doctype; /* a document type declaration was seen */
    int doctype_line;
} CocoXMLParseState;

char *
cocoXMLOneLine(const char *message)
{
    g_autofree char *copy = g_strdup(message ? message : "");
    char *p;

    /* libxml2 messages may span lines ("...!\nBytes: 0xE9 ...\n"). */
    for (p = copy; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    }
    g_strstrip(copy);
    return g_steal_pointer(&copy);
}

#define COCO_XML_QUOTE_MAX 100

char *
cocoXMLQuote(const char *value)
{
    GString *buf = g_string_new(NULL);
    const char *p;

    for (p = value ? value : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (buf->len >= COCO_XML_QUOTE_MAX && (c & 0xC0) != 0x80) {
            g_string_append(buf, "...");
            break;
        }
        if (c == '\n')
            g_string_append(buf, "\\n");
        else if (c == '\r')
            g_string_append(buf, "\\r");
        else if (c == '\t')
            g_string_append(buf, "\\t");
        else if (c < 0x20 || c == 0x7f)
            g_string_append_printf(buf, "\\x%02x", c);
        else
            g_string_append_c(buf, (char)c);
    }
    return g_string_free(buf, FALSE);
}

static void
cocoXMLParseError(void *data, xmlError *err)
{
    xmlParserCtxt *ctxt = data;
    CocoXMLParseState *state = ctxt ? ctxt->_private : NULL;

    if (!state || !err || err->level < XML_ERR_ERROR || state->message)
        return;
    state->message = cocoXMLOneLine(err->message);
    state->line = err->line;
}

/* Called at "<!DOCTYPE": stop before any declaration is read. */
static void
cocoXMLInternalSubset(void *data, const xmlChar *name G_GNUC_UNUSED,
                      const xmlChar *external_id G_GNUC_UNUSED,
                      const xmlChar *system_id G_GNUC_UNUSED)
{
    xmlParserCtxt *ctxt = data;
    CocoXMLParseState *state = ctxt->_private;

    state->doctype = true;
    state->doctype_line = xmlSAX2GetLineNumber(ctxt);
    xmlStopParser(ctxt);
}

xmlDoc *
cocoXMLParseString(const char *xml, GError **error)
{
    g_autoptr(xmlParserCtxt) ctxt = NULL;
    CocoXMLParseState state = {0};
    xmlDoc *doc = NULL;
    size_t len;

    if (!xml) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG, _("no XML document given"));
        return NULL;
    }
    len = strlen(xml);
    if (len > INT_MAX) {
        cocoErrorSet(error, COCO_ERROR_XML_MALFORMED,
                     _("the XML document is too large (%1$zu bytes)"), len);
        return NULL;
    }

    xmlInitParser();
    ctxt = xmlCreateMemoryParserCtxt(xml, (int)len);
    if (!ctxt) {
        cocoErrorSet(error, COCO_ERROR_XML_MALFORMED,
                     _("cannot create an XML parser context"));
        return NULL;
    }
    /* No XML_PARSE_NOENT, XML_PARSE_DTDLOAD, XML_PARSE_DTDATTR or
     * XML_PARSE_HUGE: entities stay unexpanded, no DTD is fetched, and
     * libxml2's depth and size limits apply. */
    xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOCDATA |
                                XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                XML_PARSE_BIG_LINES);
    ctxt->_private = &state;
    ctxt->sax->serror = cocoXMLParseError;
    ctxt->sax->internalSubset = cocoXMLInternalSubset;

    xmlParseDocument(ctxt);
    doc = g_steal_pointer(&ctxt->myDoc);

    if (state.doctype) {
        cocoErrorSet(
            error, COCO_ERROR_XML_MALFORMED,
            _("malformed XML at line %1$d: document type declarations (<!DOCTYPE>) are not allowed"),
            state.doctype_line);
        goto error;
    }
    if (!ctxt->wellFormed || !ctxt->nsWellFormed || !doc) {
        cocoErrorSet(error, COCO_ERROR_XML_MALFORMED,
                     _("malformed XML at line %1$d: %2$s"),
                     state.message ? state.line : 1,
                     state.message ? state.message : _("not a document"));
        goto error;
    }
    if (!xmlDocGetRootElement(doc)) {
        cocoErrorSet(error, COCO_ERROR_XML_MALFORMED,
                     _("malformed XML: the document has no root element"));
        goto error;
    }
    g_free(state.message);
    return doc;

error:
    g_free(state.message);
    xmlFreeDoc(doc);
    return NULL;
}

bool
cocoXMLNodeHasNs(const xmlNode *node, const char *uri)
{
    if (!uri)
        return !node->ns || !node->ns->href;
    return node->ns && node->ns->href &&
           STREQ((const char *)node->ns->href, uri);
}

bool
cocoXMLNodeIsElement(const xmlNode *node, const char *name, const char *uri)
{
    return node && node->type == XML_ELEMENT_NODE &&
           STREQ((const char *)node->name, name) && cocoXMLNodeHasNs(node, uri);
}

int
cocoXMLNextChild(const xmlNode *parent, xmlNode *node, xmlNode **next,
                 GError **error)
{
    for (; node; node = node->next) {
        switch (node->type) {
        case XML_ELEMENT_NODE:
            *next = node;
            return 0;
        case XML_COMMENT_NODE:
        case XML_PI_NODE:
            continue;
        case XML_TEXT_NODE:
        case XML_CDATA_SECTION_NODE:
            if (xmlIsBlankNode(node))
                continue;
            return cocoErrorSet(error, COCO_ERROR_XML_UNKNOWN,
                                _("element '%1$s' must not contain text"),
                                (const char *)parent->name);
        case XML_ATTRIBUTE_NODE:
        case XML_ENTITY_REF_NODE:
        case XML_ENTITY_NODE:
        case XML_DOCUMENT_NODE:
        case XML_DOCUMENT_TYPE_NODE:
        case XML_DOCUMENT_FRAG_NODE:
        case XML_NOTATION_NODE:
        case XML_HTML_DOCUMENT_NODE:
        case XML_DTD_NODE:
        case XML_ELEMENT_DECL:
        case XML_ATTRIBUTE_DECL:
        case XML_ENTITY_DECL:
        case XML_NAMESPACE_DECL:
        case XML_XINCLUDE_START:
        case XML_XINCLUDE_END:
#ifdef LIBXML_DOCB_ENABLED
        case XML_DOCB_DOCUMENT_NODE:
#endif
        default:
            return cocoErrorSet(
                error, COCO_ERROR_XML_UNKNOWN,
                _("element '%1$s' has content of an unexpected kind"),
                (const char *)parent->name);
        }
    }
    *next = NULL;
    return 0;
}

int
cocoXMLCheckAttributes(const xmlNode *node, const char *const *allowed,
                       GError **error)
{
    const xmlAttr *attr;

    for (attr = node->properties; attr; attr = attr->next) {
        const char *name = (const char *)attr->name;
        bool known = false;
        size_t i;

        if (attr->ns) {
            g_autofree char *href = cocoXMLQuote((const char *)attr->ns->href);

            return cocoErrorSet(
                error, COCO_ERROR_XML_UNKNOWN,
                _("unknown attribute '%1$s' in namespace '%2$s' on element '%3$s'"),
                name, href, (const char *)node->name);
        }
        for (i = 0; allowed[i]; i++) {
            if (STREQ(allowed[i], name)) {
                known = true;
                break;
            }
        }
        if (!known) {
            return cocoErrorSet(error, COCO_ERROR_XML_UNKNOWN,
                                _("unknown attribute '%1$s' on element '%2$s'"),
                                name, (const char *)node->name);
        }
    }
    return 0;
}

int
cocoXMLPropString(const xmlNode *node, const char *name, bool required,
                  char **value, GError **error)
{
    xmlChar *prop = xmlGetNoNsProp(node, (const xmlChar *)name);

    *value = NULL;
    if (!prop) {
        if (required) {
            return cocoErrorSet(
                error, COCO_ERROR_XML_MISSING,
                _("element '%1$s' is missing its required attribute '%2$s'"),
                (const char *)node->name, name);
        }
        return 0;
    }
    *value = g_strdup((const char *)prop);
    xmlFree(prop);
    return 1;
}

int
cocoXMLPropUInt(const xmlNode *node, const char *name, bool required,
                uint64_t min, uint64_t max, uint64_t *value, GError **error)
{
    g_autofree char *str = NULL;
    uint64_t val = 0;
    int rc;

    if ((rc = cocoXMLPropString(node, name, required, &str, error)) <= 0)
        return rc;
    if (cocoStrToU64(str, 10, &val) < 0 || val < min || val > max) {
        g_autofree char *quoted = cocoXMLQuote(str);

        return cocoErrorSet(
            error, COCO_ERROR_XML_NUMBER,
            _("attribute '%1$s' of element '%2$s' must be a decimal number from %3$llu to %4$llu, not '%5$s'"),
            name, (const char *)node->name, (unsigned long long)min,
            (unsigned long long)max, quoted);
    }
    *value = val;
    return 1;
}

int
cocoXMLPropEnum(const xmlNode *node, const char *name, bool required,
                const char *(*to_string)(int), int last, int *value,
                GError **error)
{
    g_autofree char *str = NULL;
    int rc;
    int i;

    if ((rc = cocoXMLPropString(node, name, required, &str, error)) <= 0)
        return rc;
    for (i = 0; i < last; i++) {
        if (STREQ(to_string(i), str)) {
            *value = i;
            return 1;
        }
    }

    {
        g_autoptr(GString) choices = g_string_new(NULL);
        g_autofree char *quoted = cocoXMLQuote(str);

        for (i = 0; i < last; i++) {
            if (i > 0)
                g_string_append(choices, ", ");
            g_string_append_printf(choices, "'%s'", to_string(i));
        }
        return cocoErrorSet(
            error, COCO_ERROR_XML_ENUM,
            _("attribute '%1$s' of element '%2$s' has the invalid value '%3$s' (expected one of %4$s)"),
            name, (const char *)node->name, quoted, choices->str);
    }
}

static const char *
cocoXMLYesNoToString(int value)
{
    return value ? "yes" : "no";
}

int
cocoXMLPropYesNo(const xmlNode *node, const char *name, bool required,
                 bool *value, GError **error)
{
    int val = 0;
    int rc;

    /* 0 = no, 1 = yes: the order cocoXMLYesNoToString() lists them in. */
    if ((rc = cocoXMLPropEnum(node, name, required, cocoXMLYesNoToString, 2,
                              &val, error)) <= 0)
        return rc;
    *value = val == 1;
    return 1;
}

int
cocoXMLPropHex(const xmlNode *node, const char *name, bool required,
               uint8_t *buf, size_t len, GError **error)
{
    g_autofree char *str = NULL;
    size_t i;
    int rc;

    if ((rc = cocoXMLPropString(node, name, required, &str, error)) <= 0)
        return rc;
    if (strlen(str) != len * 2)
        goto bad;
    for (i = 0; i < len; i++) {
        int hi = g_ascii_xdigit_value(str[2 * i]);
        int lo = g_ascii_xdigit_value(str[2 * i + 1]);

        if (hi < 0 || lo < 0)
            goto bad;
        buf[i] = (uint8_t)((hi << 4) | lo);
    }
    return 1;

bad : {
    g_autofree char *quoted = cocoXMLQuote(str);

    return cocoErrorSet(
        error, COCO_ERROR_XML_FORMAT,
        _("attribute '%1$s' of element '%2$s' must be %3$zu hexadecimal digits, not '%4$s'"),
        name, (const char *)node->name, len * 2, quoted);
}
}

void
cocoXMLEscapeAttr(GString *buf, const char *value)
{
    const char *p;

    for (p = value; *p; p++) {
        switch (*p) {
        case '&':
            g_string_append(buf, "&amp;");
            break;
        case '<':
            g_string_append(buf, "&lt;");
            break;
        case '>':
            g_string_append(buf, "&gt;");
            break;
        case '"':
            g_string_append(buf, "&quot;");
            break;
        case '\t':
            g_string_append(buf, "&#9;");
            break;
        case '\n':
            g_string_append(buf, "&#10;");
            break;
        case '\r':
            g_string_append(buf, "&#13;");
            break;
        default:
            g_string_append_c(buf, *p);
            break;
        }
    }
}

bool
cocoXMLIsValidText(const char *str)
{
    const char *p;

    if (!g_utf8_validate(str, -1, NULL))
        return false;
    for (p = str; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);

        /* XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD]
         * | [#x10000-#x10FFFF]; g_utf8_validate() already refused the
         * surrogates and anything above #x10FFFF. */
        if (c < 0x20 && c != 0x9 && c != 0xA && c != 0xD)
            return false;
        if (c == 0xFFFE || c == 0xFFFF)
            return false;
    }
    return true;
}
