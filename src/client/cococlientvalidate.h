/*
 * cococlientvalidate.h: the checks of "virt-coco validate", shared with the
 * agent's D-Bus Validate method
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/libvirt-coco.h"

#include <stdbool.h>

typedef struct {
    const char *what; /* file name or domain name, for messages */
    bool domain_checked; /* the whole domain passed libvirt's grammar */
    char *skip_reason; /* why libvirt's grammar was not applied */
} CocoValidateReport;

/*
 * cocoValidateText:
 * Validate @text, a whole libvirt domain or a bare coco element: libvirt's
 * domain grammar when it is installed and knows the launchSecurity type,
 * the element's parse and validation rules, its grammar and its
 * cross-check with <launchSecurity>. @report->what names the document in
 * messages; the caller frees @report->skip_reason. *@defret gets the
 * parsed element.
 */
int cocoValidateText(const char *text, CocoValidateReport *report,
                     CocoMigrationDef **defret, GError **error);
