/*
 * cocoproto.h: typed, bounded JSON messages
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every message that crosses a process or host boundary as JSON (the
 * relay <-> agent lines, the agents' hellos, the local requests of
 * virt-coco) is described once by a CocoProtoStruct: its members, each
 * with a type, a range or a length limit, and where it lives in a C
 * struct. Both ends parse and build with the same description:
 *
 *  - the text is checked before json-glib sees it (size, nesting depth);
 *  - every member is type- and range-checked, one line of error naming
 *    the message, the member and what was wrong; nothing is trusted;
 *  - strings are bounded, valid UTF-8 and free of control characters
 *    unless a member allows them;
 *  - unknown members are ignored (newer peers may add some), missing
 *    required ones are refused.
 *
 * The safe accessors at the end are for JSON the code reads member by
 * member (records, probe answers): they never return a value of another
 * type than the one asked for.
 */

#pragma once

#include "internal.h"

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The deepest nesting of objects and arrays any message may have. */
#define COCO_PROTO_MAX_DEPTH 16

typedef enum {
    COCO_PROTO_STRING = 0, /* char *, at most @max bytes */
    COCO_PROTO_INT, /* gint64 in [@min, @max] */
    COCO_PROTO_BOOL, /* bool */
    COCO_PROTO_ENUM, /* int, from the strings of @names */
    COCO_PROTO_HEX64, /* guint64, written as exactly 16 hex digits */
    COCO_PROTO_UUID, /* char *, a canonical UUID, lower case */
    COCO_PROTO_OBJECT, /* void *, a struct described by @sub */
    COCO_PROTO_ARRAY, /* GPtrArray * of @sub structs, at most @max items */
    COCO_PROTO_JSON, /* JsonObject *, kept as is (bounded by the text) */
    COCO_PROTO_JSON_ARRAY, /* JsonArray *, kept as is, at most @max items */
    COCO_PROTO_TYPE_LAST
} CocoProtoType;

typedef struct _CocoProtoStruct CocoProtoStruct;

typedef struct {
    const char *name;
    CocoProtoType type;
    bool required;
    int64_t min;
    int64_t max;
    size_t offset; /* of the value in the struct */
    size_t has_offset; /* of a bool set when the member was present; 0:
                          none (the struct's first member is never a
                          'has' flag) */
    const CocoProtoStruct *sub; /* OBJECT, ARRAY */
    const char *const *names; /* ENUM: the strings, by value */
    unsigned int nnames;
    bool multiline; /* STRING: newlines and tabs allowed */
} CocoProtoField;

struct _CocoProtoStruct {
    const char *name; /* for messages: the value of "type" */
    size_t size;
    const CocoProtoField *fields;
    size_t nfields;
};

/* One message of a protocol: the value of its "type" member, an id the
 * code switches on, and its members. */
typedef struct {
    int id;
    const CocoProtoStruct *def;
} CocoProtoMessage;

typedef struct {
    const char *name; /* "relay", "agent", ... for messages */
    size_t max_bytes; /* the longest text accepted */
    const CocoProtoMessage *messages;
    size_t nmessages;
} CocoProtoSchema;

/* Field descriptors, for the tables. */
#define COCO_PROTO_F(st, member, json, ty, req, lo, hi)                        \
 {                                                                             \
  .name = (json), .type = (ty), .required = (req), .min = (lo), .max = (hi),   \
  .offset = offsetof(st, member)                                               \
 }
#define COCO_PROTO_F_HAS(st, member, has, json, ty, lo, hi)                    \
 {                                                                             \
  .name = (json), .type = (ty), .required = false, .min = (lo), .max = (hi),   \
  .offset = offsetof(st, member), .has_offset = offsetof(st, has)              \
 }
#define COCO_PROTO_F_ENUM(st, member, json, req, tbl)                          \
 {                                                                             \
  .name = (json), .type = COCO_PROTO_ENUM, .required = (req),                  \
  .offset = offsetof(st, member), .names = (tbl), .nnames = G_N_ELEMENTS(tbl)  \
 }
#define COCO_PROTO_F_ENUM_HAS(st, member, has, json, tbl)                      \
 {                                                                             \
  .name = (json), .type = COCO_PROTO_ENUM, .offset = offsetof(st, member),     \
  .has_offset = offsetof(st, has), .names = (tbl), .nnames = G_N_ELEMENTS(tbl) \
 }
#define COCO_PROTO_F_SUB(st, member, json, ty, req, hi, subdef)                \
 {                                                                             \
  .name = (json), .type = (ty), .required = (req), .max = (hi),                \
  .offset = offsetof(st, member), .sub = (subdef)                              \
 }
#define COCO_PROTO_STRUCT(var, json, st, tbl)                                  \
 static const CocoProtoStruct var = {(json), sizeof(st), (tbl),                \
                                     G_N_ELEMENTS(tbl)}

/*
 * Check @len bytes of text before any JSON parser sees them: at most
 * @max_bytes, no NUL, nesting of objects and arrays at most
 * COCO_PROTO_MAX_DEPTH. @what names the text in the error.
 */
/*
 * @s as an error message may quote it: valid UTF-8 (else "?"), control
 * characters as spaces, at most 64 bytes (then "..."). Free with g_free().
 */
char *cocoProtoPrintable(const char *s);

int cocoProtoCheckText(const char *text, size_t len, size_t max_bytes,
                       const char *what, GError **error);

/* Parse JSON text (checked as above) into an object. */
JsonObject *cocoProtoParseJson(const char *text, size_t len, size_t max_bytes,
                               const char *what, GError **error);

/* A struct of @def from @obj; free it with cocoProtoFree(). */
void *cocoProtoParseStruct(const CocoProtoStruct *def, JsonObject *obj,
                           GError **error);
void cocoProtoFree(const CocoProtoStruct *def, void *data);

/* @data (a struct of @def) as a JSON object: the members of @def, the
 * optional ones only when present (their 'has' flag, or a non-NULL
 * pointer). */
JsonObject *cocoProtoBuildStruct(const CocoProtoStruct *def, const void *data);

/*
 * One message of @schema: the text is checked, parsed, its "type" looked
 * up and its members parsed. *@id gets the message's id, *@data its struct
 * (free with cocoProtoMessageFree()).
 */
int cocoProtoParseMessage(const CocoProtoSchema *schema, const char *text,
                          size_t len, int *id, void **data, GError **error);
void cocoProtoMessageFree(const CocoProtoSchema *schema, int id, void *data);

/* Message @id of @schema as one line of JSON text (with "type", ending in
 * a newline). */
char *cocoProtoBuildMessage(const CocoProtoSchema *schema, int id,
                            const void *data);

/* The description of message @id, or NULL. */
const CocoProtoStruct *cocoProtoSchemaLookup(const CocoProtoSchema *schema,
                                             int id);

/* ---- safe accessors ---------------------------------------------------- */

/* The string member @name of @obj, or NULL when it is absent or not a
 * string. */
const char *cocoJsonString(JsonObject *obj, const char *name);
/* The same with a default. */
const char *cocoJsonStringDefault(JsonObject *obj, const char *name,
                                  const char *def);
/* The integer member @name of @obj (an integer, not a double or string):
 * true and *@out, or false. */
bool cocoJsonInt(JsonObject *obj, const char *name, gint64 *out);
gint64 cocoJsonIntDefault(JsonObject *obj, const char *name, gint64 def);
/* A number (integer or double). */
bool cocoJsonDouble(JsonObject *obj, const char *name, double *out);
/* A boolean member, or @def. */
bool cocoJsonBoolDefault(JsonObject *obj, const char *name, bool def);
/* An object or array member, or NULL. */
JsonObject *cocoJsonObject(JsonObject *obj, const char *name);
JsonArray *cocoJsonArray(JsonObject *obj, const char *name);
/* Element @i of @arr when it is an object, or NULL. */
JsonObject *cocoJsonArrayObject(JsonArray *arr, guint i);
