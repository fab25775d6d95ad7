/*
 * virt-coco.h: the virt-coco command-line tool, shared by its command files
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each command group lives in its own file (virt-coco-<group>.c) and
 * exposes one handler. Exit codes are the same for every command:
 * COCO_EXIT_OK (0) on success, COCO_EXIT_REJECTED (1) when an input was
 * rejected or an operation failed, COCO_EXIT_USAGE (2) on a usage error.
 * Errors are printed as one line "error: ..." on stderr; with --json the
 * result (or {"error": {...}}) is also printed as one JSON object on stdout.
 */

#pragma once

#include "internal.h"
#include "util/cocoerror.h"
#include "libvirt-coco/libvirt-coco.h"

#include <stdbool.h>
#include <stdio.h>
#include <json-glib/json-glib.h>

typedef enum {
    COCO_EXIT_OK = 0,
    COCO_EXIT_REJECTED = 1,
    COCO_EXIT_USAGE = 2,
} CocoExitCode;

typedef struct _CocoCmdDef CocoCmdDef;

typedef struct {
    const CocoCmdDef *cmd; /* the command being run */
    const char *uri; /* -c URI, or NULL for libvirt's default */
    bool json; /* --json: machine-readable output on stdout */
    bool quiet; /* -q: no informational output */
} CocoCtl;

struct _CocoCmdDef {
    const char *name;
    const char *summary; /* one translated line, N_() */
    const char *usage; /* argument synopsis, N_() */
    int (*handler)(CocoCtl *ctl, int argc, char **argv);
};

/*
 * cocoCtlParseOptions:
 * Parse the options of ctl->cmd (argv[0] is the command name). @entries
 * may also hold the global --json option; the common ones are added.
 * On failure prints the usage error and returns false; the caller
 * returns COCO_EXIT_USAGE.
 */
bool cocoCtlParseOptions(CocoCtl *ctl, GOptionEntry *entries, int *argc,
                         char ***argv);

/*
 * cocoCtlUsageError:
 * Print "error: <message>" for a usage error (and a JSON error object with
 * --json). Returns COCO_EXIT_USAGE.
 */
int cocoCtlUsageError(CocoCtl *ctl, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/*
 * cocoCtlReportError:
 * Print @error as "error: <message>" on stderr (and as a JSON object with
 * its code nick, number and, for libvirt errors, libvirt's code with
 * --json). Returns COCO_EXIT_USAGE for COCO_ERROR_USAGE, else
 * COCO_EXIT_REJECTED.
 */
int cocoCtlReportError(CocoCtl *ctl, const GError *error);

/*
 * cocoCtlPrintJson:
 * Print @node as one line of JSON on stdout (consumes nothing).
 */
void cocoCtlPrintJson(CocoCtl *ctl, JsonNode *node);

/*
 * cocoCtlInfo:
 * Print an informational line on stdout unless --json or -q.
 */
void cocoCtlInfo(CocoCtl *ctl, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/*
 * cocoValidateDomainText:
 * Apply every check of "virt-coco validate --domain" to the domain
 * document @xml (@what names it in messages): libvirt's grammar when it
 * applies, the element's parse and validation rules and its cross-check
 * with <launchSecurity>. *@def gets the parsed element.
 */
int cocoValidateDomainText(const char *xml, const char *what,
                           CocoMigrationDef **def, GError **error);

/* Command handlers, one per command file. */
int cocoCmdValidate(CocoCtl *ctl, int argc, char **argv);
int cocoCmdMetadata(CocoCtl *ctl, int argc, char **argv);
int cocoCmdVfio(CocoCtl *ctl, int argc, char **argv);
int cocoCmdCapabilities(CocoCtl *ctl, int argc, char **argv);
int cocoCmdMigrate(CocoCtl *ctl, int argc, char **argv);
