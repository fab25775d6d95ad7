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
 * result (or {"error": {...}}) is also printed as one JSON object on stdout,
 * in the shapes of docs/virt-coco-json.schema.json (one error object,
 * cocoCtlErrorObject(), everywhere).
 */

#pragma once

#include "internal.h"
#include "util/cocoerror.h"
#include "client/cococlientagent.h"
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

typedef struct _CocoCtl {
    const CocoCmdDef *cmd; /* the command being run */
    const char *uri; /* -c URI, or NULL for libvirt's default */
    bool json; /* --json: machine-readable output on stdout */
    bool quiet; /* -q: no informational output */
    /* With --json, how an error is printed when the command's output is
     * an event stream (migrate: its "result" event); NULL: {"error":
     * ...}. */
    void (*print_error)(struct _CocoCtl *ctl, const GError *error);
} CocoCtl;

struct _CocoCmdDef {
    const char *name;
    const char *summary; /* one translated line, N_() */
    const char *usage; /* argument synopsis, N_() */
    int (*handler)(CocoCtl *ctl, int argc, char **argv);
};

/*
 * cocoCtlParseOptions:
 * Parse the options of ctl->cmd (argv[0] is the command name) as virsh
 * does: "--name VALUE", "--name=VALUE", short forms, options anywhere
 * among the arguments, "--" ending them, each option at most once. The
 * common --json is added; --help prints the command's help and exits 0.
 * @entries uses GOptionEntry for the table (NONE, STRING, FILENAME, INT,
 * INT64; G_OPTION_FLAG_HIDDEN hides one from the help). The arguments
 * left (argv[0] first) replace *@argc and *@argv. On failure prints the usage
 * error and returns false; the caller returns COCO_EXIT_USAGE.
 */
bool cocoCtlParseOptions(CocoCtl *ctl, GOptionEntry *entries, int *argc,
                         char ***argv);

/*
 * cocoCtlUsageError:
 * Print "error: <message>" for a usage error (and a JSON error object with
 * --json). Returns COCO_EXIT_USAGE.
 */
int cocoCtlUsageError(CocoCtl *ctl, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* The exit code for @error: COCO_EXIT_USAGE for COCO_ERROR_USAGE, else
 * COCO_EXIT_REJECTED. */
int cocoCtlExitCode(const GError *error);

/* Print @error as one line "error: <message>" on stderr. */
void cocoCtlPrintError(const GError *error);

/*
 * cocoCtlErrorObject:
 * The JSON error object of @error (a new object): "code" (libvirt-coco's
 * integer code), "nick" (its stable name), "message" and, for libvirt's
 * errors, "libvirt_code".
 */
JsonObject *cocoCtlErrorObject(const GError *error);

/*
 * cocoCtlReportError:
 * Print @error as "error: <message>" on stderr (and, with --json,
 * {"error": cocoCtlErrorObject()} on stdout). Returns cocoCtlExitCode().
 */
int cocoCtlReportError(CocoCtl *ctl, const GError *error);

/*
 * cocoCtlPrintJson:
 * Print @node as one line of JSON on stdout (consumes nothing); doubles
 * with three decimals.
 */
void cocoCtlPrintJson(CocoCtl *ctl, JsonNode *node);

/* cocoCtlPrintJson() of an object (consumes nothing). */
void cocoCtlPrintObject(CocoCtl *ctl, JsonObject *obj);

/* @node as compact JSON text, doubles with three decimals. */
char *cocoCtlJsonToString(JsonNode *node);

/* @text left-aligned in @width characters (not bytes: a translated label
 * with umlauts keeps its column), as printf's "%-Ns" would for ASCII. */
const char *cocoCtlPad(GString **buf, const char *text, glong width);

/* The largest file a command reads (a domain XML or an element). */
#define COCO_CTL_FILE_MAX (16 * 1024 * 1024)

/*
 * cocoCtlReadFile:
 * The contents of the regular file @path (at most COCO_CTL_FILE_MAX
 * bytes), or NULL with COCO_ERROR_SYSTEM "cannot read '@path': <errno's
 * text>".
 */
char *cocoCtlReadFile(const char *path, GError **error);

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

/* This host's agent, at @option or $VIRT_COCO_AGENT_SOCKET or the
 * default socket (list, status, timeline, recover). */
CocoClientAgent *cocoStatusConnect(const char *option, GError **error);

/*
 * cocoStatusFind:
 * This host's agent's record @key (a migration id, or a domain's name or
 * UUID: its newest record), and the peer agent's view of it (*@peer, or
 * NULL with *@reason).
 */
int cocoStatusFind(CocoClientAgent *agent, const char *key,
                   CocoClientRecord **rec, CocoClientRecord **peer,
                   char **reason, GError **error);

/* Command handlers, one per command file. */
int cocoCmdValidate(CocoCtl *ctl, int argc, char **argv);
int cocoCmdMetadata(CocoCtl *ctl, int argc, char **argv);
int cocoCmdVfio(CocoCtl *ctl, int argc, char **argv);
int cocoCmdCapabilities(CocoCtl *ctl, int argc, char **argv);
int cocoCmdMigrate(CocoCtl *ctl, int argc, char **argv);
int cocoCmdList(CocoCtl *ctl, int argc, char **argv);
int cocoCmdStatus(CocoCtl *ctl, int argc, char **argv);
int cocoCmdTimeline(CocoCtl *ctl, int argc, char **argv);
int cocoCmdRecover(CocoCtl *ctl, int argc, char **argv);
