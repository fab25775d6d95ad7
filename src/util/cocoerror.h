/*
 * cocoerror.h: reporting into the COCO_ERROR domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/coco-error.h"

/*
 * cocoErrorSet:
 * Set *@error (if @error is not NULL) to a COCO_ERROR with @code. @fmt must be
 * a whole translatable message, _("..."), with positional arguments
 * ('%1$s'). Always returns -1 so callers can "return cocoErrorSet(...)".
 */
int cocoErrorSet(GError **error, CocoErrorCode code, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/*
 * cocoErrorSetSystem:
 * Like cocoErrorSet() with COCO_ERROR_SYSTEM, appending ": " and the
 * description of @errnum. Returns -1.
 */
int cocoErrorSetSystem(GError **error, int errnum, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/*
 * cocoErrorSetLibvirt:
 * Record an error that libvirt reported: @vir_code and @vir_domain are
 * libvirt's virErrorNumber and virErrorDomain, @message libvirt's text,
 * kept unchanged. Returns -1.
 */
int cocoErrorSetLibvirt(GError **error, int vir_code, int vir_domain,
                        const char *message);

/*
 * cocoErrorPrefix:
 * Prefix an error's message with a translated context ("while X: ").
 */
void cocoErrorPrefix(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
