/*
 * cocoenum.h: enum <-> string tables (one string per value, checked at build)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"

const char *cocoEnumToString(const char *const *types, unsigned int ntypes,
                             int type);
int cocoEnumFromString(const char *const *types, unsigned int ntypes,
                       const char *type);

/*
 * COCO_ENUM_IMPL(name, lastval, "first", "second", ...) defines
 * nameTypeToString() and nameTypeFromString() for the enum whose values
 * run from 0 to lastval - 1. The static assertion fails the build when
 * the table and the enum disagree in length.
 */
#define COCO_ENUM_IMPL(name, lastval, ...)                                     \
 static const char *const name##TypeList[] = {__VA_ARGS__};                    \
 const char *name##TypeToString(int type)                                      \
 {                                                                             \
  return cocoEnumToString(name##TypeList, G_N_ELEMENTS(name##TypeList), type); \
 }                                                                             \
 int name##TypeFromString(const char *type)                                    \
 {                                                                             \
  return cocoEnumFromString(name##TypeList, G_N_ELEMENTS(name##TypeList),      \
                            type);                                             \
 }                                                                             \
 G_STATIC_ASSERT(G_N_ELEMENTS(name##TypeList) == lastval)

#define COCO_ENUM_DECL(name)                                                   \
 const char *name##TypeToString(int type);                                     \
 int name##TypeFromString(const char *type)
