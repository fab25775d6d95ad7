/*
 * cocomigrationdef.h: internal helpers of the <coco:migration> model
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/coco-migration-def.h"

#include "util/cocoenum.h"

COCO_ENUM_DECL(cocoNonConvergence);
COCO_ENUM_DECL(cocoHostdevAction);
COCO_ENUM_DECL(cocoTcbComponent);

/* Largest values of the numeric attributes (the grammar's ranges). */
#define COCO_SVN_MAX 65535
#define COCO_STREAMS_MAX 512
#define COCO_PAGES_PER_BUNDLE_MAX 512
#define COCO_PRECOPY_MAX_EPOCHS_MAX 4294967294U
#define COCO_PRECOPY_MAX_TIME_MAX 86400
#define COCO_PRECOPY_MAX_BLACKOUT_MAX 600000

/*
 * cocoMigrationDefIsEqual:
 * Whether @a and @b describe the same element: fields that the element
 * does not carry (those of an absent part) are not compared.
 */
bool cocoMigrationDefIsEqual(const CocoMigrationDef *a,
                             const CocoMigrationDef *b);

/*
 * cocoMigrationSchemaPath:
 * The grammar cocoMigrationSchemaValidate() loads: $COCO_SCHEMA_DIR if set,
 * else the installed schema directory, plus "coco-migration.rng".
 */
char *cocoMigrationSchemaPath(void);
