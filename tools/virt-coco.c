/*
 * virt-coco.c: the virt-coco command-line tool (global options, dispatch,
 * the options of each command, output)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "virt-coco.h"
#include "libvirt-coco/libvirt-coco.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int cocoCmdHelp(CocoCtl *ctl, int argc, char **argv);

static const CocoCmdDef cocoCommands[] = {
    {"help", N_("print help for all commands or one"), N_("[COMMAND]"),
     cocoCmdHelp},
    {"validate", N_("validate a domain's confidential-migration settings"),
     N_("FILE | --domain NAME"), cocoCmdValidate},
    {"metadata",
     N_("show, set or remove a domain's confidential-migration element"),
     N_("DOMAIN [--set FILE | --remove] [--live] [--config]"), cocoCmdMetadata},
    {"capabilities",
     N_("show the firmware backend, KVM probe, ioctl numbers and platform identity"),
     N_("[--backend emulated|kvm] [--platform FILE]"), cocoCmdCapabilities},
    {"migrate",
     N_("migrate a domain confidentially (its private memory through the agents)"),
     N_("--confidential [OPTION...] [--domain] DOMAIN [--desturi] DESTURI [[--migrateuri] MIGRATEURI]"),
     cocoCmdMigrate},
    {"list",
     N_("list the confidential migrations in flight and recent on this host"),
     N_("[--active] [--no-peer] [--agent-socket PATH]"), cocoCmdList},
    {"status",
     N_("show one confidential migration, as both hosts' agents see it"),
     N_("[--agent-socket PATH] DOMAIN|ID"), cocoCmdStatus},
    {"timeline",
     N_("draw both agents' timelines of one confidential migration"),
     N_("[--svg FILE] [--png FILE] [--agent-socket PATH] DOMAIN|ID"),
     cocoCmdTimeline},
    {"recover",
     N_("ask this host's agent again what became of a frozen source migration"),
     N_("[--agent-socket PATH] ID"), cocoCmdRecover},
    {"vfio", N_("check the host's VFIO DMA-unmap safety"),
     N_("check [--group N | --device BDF]"), cocoCmdVfio},
    {NULL, NULL, NULL, NULL},
};

static const CocoCmdDef *
cocoCmdLookup(const char *name)
{
    const CocoCmdDef *cmd;

    for (cmd = cocoCommands; cmd->name; cmd++) {
        if (STREQ(cmd->name, name))
            return cmd;
    }
    return NULL;
}

static void
cocoPrintUsage(FILE *out)
{
    const CocoCmdDef *cmd;

    fprintf(out, "%s\n\n", _("Usage: virt-coco [OPTION...] COMMAND [ARG...]"));
    fprintf(out, "%s\n", _("Options:"));
    fprintf(out, "  -c, --connect URI   %s\n",
            _("libvirt connection URI (as virsh -c)"));
    fprintf(out, "      --json          %s\n",
            _("machine-readable JSON output on stdout"));
    fprintf(out, "  -q, --quiet         %s\n", _("no informational output"));
    fprintf(out, "  -v, --version       %s\n", _("print the version"));
    fprintf(out, "  -h, --help          %s\n\n", _("print this help"));
    fprintf(out, "%s\n", _("Commands:"));
    for (cmd = cocoCommands; cmd->name; cmd++)
        fprintf(out, "  %-13s %s\n", cmd->name, _(cmd->summary));
}

/* The usage line of one command. */
static void
cocoPrintCommandUsage(FILE *out, const CocoCmdDef *cmd)
{
    fprintf(out, _("Usage: virt-coco [-c URI] [--json] %1$s %2$s\n"), cmd->name,
            _(cmd->usage));
}

static int
cocoCmdHelp(CocoCtl *ctl, int argc, char **argv)
{
    const CocoCmdDef *cmd;

    if (argc > 2)
        return cocoCtlUsageError(
            ctl, _("command 'help' takes at most one argument"));
    if (argc < 2) {
        cocoPrintUsage(stdout);
        return COCO_EXIT_OK;
    }
    if (!(cmd = cocoCmdLookup(argv[1])))
        return cocoCtlUsageError(ctl, _("unknown command: '%1$s'"), argv[1]);
    printf("%s\n\n", _(cmd->summary));
    cocoPrintCommandUsage(stdout, cmd);
    printf("\n%s\n",
           _("Run 'virt-coco COMMAND --help' for the command's options."));
    return COCO_EXIT_OK;
}

/* ---- the options of a command ----------------------------------------- */

static bool
cocoCtlOptionTakesValue(const GOptionEntry *e)
{
    return e->arg != G_OPTION_ARG_NONE;
}

/* The placeholder of an option's value, for help and errors. */
static const char *
cocoCtlOptionValueName(const GOptionEntry *e)
{
    if (e->arg_description)
        return _(e->arg_description);
    switch (e->arg) {
    case G_OPTION_ARG_INT:
    case G_OPTION_ARG_INT64:
        return "N";
    case G_OPTION_ARG_FILENAME:
        return "FILE";
    case G_OPTION_ARG_NONE:
    case G_OPTION_ARG_STRING:
    case G_OPTION_ARG_CALLBACK:
    case G_OPTION_ARG_STRING_ARRAY:
    case G_OPTION_ARG_FILENAME_ARRAY:
    case G_OPTION_ARG_DOUBLE:
    default:
        return "STRING";
    }
}

static void
cocoCtlPrintCommandHelp(const CocoCmdDef *cmd, const GOptionEntry *const *sets)
{
    g_autoptr(GString) pad = NULL;
    size_t s;

    printf("%s\n\n", _(cmd->summary));
    cocoPrintCommandUsage(stdout, cmd);
    printf("\n%s\n", _("Options:"));
    for (s = 0; sets[s]; s++) {
        const GOptionEntry *e;

        for (e = sets[s]; e->long_name; e++) {
            g_autofree char *left = NULL;

            if (e->flags & G_OPTION_FLAG_HIDDEN)
                continue;
            left = g_strdup_printf(
                "%s%s--%s%s%s", e->short_name ? "-" : "",
                e->short_name ? (char[]){e->short_name, ',', ' ', '\0'} : "",
                e->long_name, cocoCtlOptionTakesValue(e) ? " " : "",
                cocoCtlOptionTakesValue(e) ? cocoCtlOptionValueName(e) : "");
            printf("  %s %s\n", cocoCtlPad(&pad, left, 34),
                   e->description ? _(e->description) : "");
        }
    }
    printf("  %-34s %s\n", "-h, --help", _("print this help"));
}

/* The entry of @sets named by @arg ("--name", "--name=value" or "-c"). */
static const GOptionEntry *
cocoCtlFindOption(const GOptionEntry *const *sets, const char *arg, size_t *set,
                  size_t *index)
{
    size_t s;

    for (s = 0; sets[s]; s++) {
        const GOptionEntry *e;

        for (e = sets[s]; e->long_name; e++) {
            size_t n = strlen(e->long_name);
            bool match;

            if (arg[1] == '-')
                match = strncmp(arg + 2, e->long_name, n) == 0 &&
                        (arg[2 + n] == '\0' || arg[2 + n] == '=');
            else
                match =
                    e->short_name && arg[1] == e->short_name && arg[2] == '\0';
            if (match) {
                *set = s;
                *index = (size_t)(e - sets[s]);
                return e;
            }
        }
    }
    return NULL;
}

/* Store @value into the option @e (named @name in errors). */
static bool
cocoCtlStoreOption(CocoCtl *ctl, const GOptionEntry *e, const char *name,
                   const char *value)
{
    gint64 v = 0;
    char *end = NULL;

    switch (e->arg) {
    case G_OPTION_ARG_NONE:
        *(gboolean *)e->arg_data = TRUE;
        return true;
    case G_OPTION_ARG_STRING:
    case G_OPTION_ARG_FILENAME:
        g_free(*(char **)e->arg_data);
        *(char **)e->arg_data = g_strdup(value);
        return true;
    case G_OPTION_ARG_INT:
    case G_OPTION_ARG_INT64:
        errno = 0;
        v = g_ascii_strtoll(value, &end, 10);
        if (!*value || *end || errno != 0 ||
            (e->arg == G_OPTION_ARG_INT && (v < G_MININT || v > G_MAXINT))) {
            cocoCtlUsageError(
                ctl,
                _("numeric value '%1$s' for option '%2$s' is malformed or out of range"),
                value, name);
            return false;
        }
        if (e->arg == G_OPTION_ARG_INT)
            *(gint *)e->arg_data = (gint)v;
        else
            *(gint64 *)e->arg_data = v;
        return true;
    case G_OPTION_ARG_CALLBACK:
    case G_OPTION_ARG_STRING_ARRAY:
    case G_OPTION_ARG_FILENAME_ARRAY:
    case G_OPTION_ARG_DOUBLE:
    default:
        cocoCtlUsageError(
            ctl, _("option '%1$s' has a type virt-coco cannot read"), name);
        return false;
    }
}

bool
cocoCtlParseOptions(CocoCtl *ctl, GOptionEntry *entries, int *argc,
                    char ***argv)
{
    gboolean json = ctl->json;
    GOptionEntry common[] = {
        {"json", 0, 0, G_OPTION_ARG_NONE, &json,
         N_("machine-readable JSON output"), NULL},
        G_OPTION_ENTRY_NULL,
    };
    const GOptionEntry *sets[] = {entries ? entries : common + 1, common, NULL};
    size_t base[2] = {0, 0};
    g_autofree bool *seen = NULL;
    char **args = *argv;
    int n = *argc;
    int out = 1;
    bool only_args = false;
    size_t total = 0;
    size_t s;
    int i;

    for (s = 0; sets[s]; s++) {
        base[s] = total;
        while (sets[s][total - base[s]].long_name)
            total++;
    }
    seen = g_new0(bool, total + 1);
    /* An error before a later --json is still reported in JSON. */
    for (i = 1; i < n && STRNEQ(args[i], "--"); i++) {
        if (STREQ(args[i], "--json"))
            ctl->json = true;
    }
    for (i = 1; i < n; i++) {
        const char *arg = args[i];
        const GOptionEntry *e;
        const char *value = NULL;
        g_autofree char *name = NULL;
        size_t set = 0;
        size_t index = 0;

        if (only_args || arg[0] != '-' || arg[1] == '\0') {
            args[out++] = args[i];
            continue;
        }
        if (STREQ(arg, "--")) {
            only_args = true;
            continue;
        }
        if (STREQ(arg, "--help") || STREQ(arg, "-h")) {
            cocoCtlPrintCommandHelp(ctl->cmd, sets);
            exit(COCO_EXIT_OK);
        }
        if (!(e = cocoCtlFindOption(sets, arg, &set, &index))) {
            g_autofree char *opt = g_strndup(arg, strcspn(arg, "="));

            cocoCtlUsageError(ctl,
                              _("command '%1$s' doesn't support option '%2$s'"),
                              ctl->cmd->name, opt);
            return false;
        }
        name = g_strdup_printf("--%s", e->long_name);
        if (seen[base[set] + index]) {
            cocoCtlUsageError(ctl, _("option '%1$s' already seen"), name);
            return false;
        }
        seen[base[set] + index] = true;
        if (arg[1] == '-' && (value = strchr(arg, '=')))
            value++;
        if (!cocoCtlOptionTakesValue(e)) {
            if (value) {
                cocoCtlUsageError(ctl, _("option '%1$s' takes no value"), name);
                return false;
            }
        } else if (!value) {
            if (i + 1 >= n) {
                cocoCtlUsageError(ctl, _("expected syntax: '%1$s %2$s'"), name,
                                  cocoCtlOptionValueName(e));
                return false;
            }
            value = args[++i];
        }
        if (!cocoCtlStoreOption(ctl, e, name, value))
            return false;
        /* --json applies to the errors that follow it. */
        ctl->json = json;
    }
    args[out] = NULL;
    *argc = out;
    ctl->json = json;
    return true;
}

/* ---- output ------------------------------------------------------------- */

static void cocoCtlJsonAppend(GString *out, JsonNode *node);

static void
cocoCtlJsonAppendString(GString *out, const char *s)
{
    const unsigned char *p;

    g_string_append_c(out, '"');
    for (p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (*p < 0x20)
                g_string_append_printf(out, "\\u%04x", *p);
            else
                g_string_append_c(out, (char)*p);
        }
    }
    g_string_append_c(out, '"');
}

static void
cocoCtlJsonAppendValue(GString *out, JsonNode *node)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    double d;

    switch (json_node_get_value_type(node)) {
    case G_TYPE_INT64:
        g_string_append_printf(out, "%" G_GINT64_FORMAT,
                               json_node_get_int(node));
        return;
    case G_TYPE_DOUBLE:
        /* Fixed precision: never 0.086999999999999994. */
        d = json_node_get_double(node);
        if (!isfinite(d)) {
            g_string_append(out, "null");
            return;
        }
        g_string_append(out, g_ascii_formatd(buf, sizeof(buf), "%.3f", d));
        return;
    case G_TYPE_BOOLEAN:
        g_string_append(out, json_node_get_boolean(node) ? "true" : "false");
        return;
    case G_TYPE_STRING:
        cocoCtlJsonAppendString(out, json_node_get_string(node));
        return;
    default:
        g_string_append(out, "null");
        return;
    }
}

static void
cocoCtlJsonAppend(GString *out, JsonNode *node)
{
    JsonObjectIter it;
    const char *name;
    JsonNode *member;
    JsonArray *arr;
    bool first = true;
    guint i;

    switch (JSON_NODE_TYPE(node)) {
    case JSON_NODE_OBJECT:
        g_string_append_c(out, '{');
        json_object_iter_init_ordered(&it, json_node_get_object(node));
        while (json_object_iter_next_ordered(&it, &name, &member)) {
            if (!first)
                g_string_append_c(out, ',');
            first = false;
            cocoCtlJsonAppendString(out, name);
            g_string_append_c(out, ':');
            cocoCtlJsonAppend(out, member);
        }
        g_string_append_c(out, '}');
        return;
    case JSON_NODE_ARRAY:
        arr = json_node_get_array(node);
        g_string_append_c(out, '[');
        for (i = 0; i < json_array_get_length(arr); i++) {
            if (i)
                g_string_append_c(out, ',');
            cocoCtlJsonAppend(out, json_array_get_element(arr, i));
        }
        g_string_append_c(out, ']');
        return;
    case JSON_NODE_VALUE:
        cocoCtlJsonAppendValue(out, node);
        return;
    case JSON_NODE_NULL:
    default:
        g_string_append(out, "null");
        return;
    }
}

const char *
cocoCtlPad(GString **buf, const char *text, glong width)
{
    glong n = g_utf8_validate(text, -1, NULL) ? g_utf8_strlen(text, -1)
                                              : (glong)strlen(text);

    if (!*buf)
        *buf = g_string_new(NULL);
    g_string_assign(*buf, text);
    for (; n < width; n++)
        g_string_append_c(*buf, ' ');
    return (*buf)->str;
}

char *
cocoCtlJsonToString(JsonNode *node)
{
    GString *out = g_string_new(NULL);

    cocoCtlJsonAppend(out, node);
    return g_string_free(out, FALSE);
}

void
cocoCtlPrintJson(CocoCtl *ctl G_GNUC_UNUSED, JsonNode *node)
{
    g_autofree char *text = cocoCtlJsonToString(node);

    printf("%s\n", text);
    fflush(stdout);
}

void
cocoCtlPrintObject(CocoCtl *ctl, JsonObject *obj)
{
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

    json_node_set_object(node, obj);
    cocoCtlPrintJson(ctl, node);
}

JsonObject *
cocoCtlErrorObject(const GError *error)
{
    JsonObject *eo = json_object_new();
    int code = error->domain == COCO_ERROR ? error->code : COCO_ERROR_INTERNAL;
    const char *nick = cocoErrorCodeToString(code);
    int vir = cocoErrorGetLibvirtCode(error);
    g_autofree char *oneline =
        g_strdelimit(g_strdup(error->message), "\n", ' ');

    json_object_set_int_member(eo, "code", code);
    json_object_set_string_member(eo, "nick", nick ? nick : "internal");
    json_object_set_string_member(eo, "message", oneline);
    if (vir)
        json_object_set_int_member(eo, "libvirt_code", vir);
    return eo;
}

/* {"error": {...}}: the error of every command but migrate's stream. */
static void
cocoCtlPrintErrorJson(CocoCtl *ctl, const GError *error)
{
    g_autoptr(JsonObject) obj = NULL;

    if (ctl->print_error) {
        ctl->print_error(ctl, error);
        return;
    }
    obj = json_object_new();
    json_object_set_object_member(obj, "error", cocoCtlErrorObject(error));
    cocoCtlPrintObject(ctl, obj);
}

int
cocoCtlUsageError(CocoCtl *ctl, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, _("error: %1$s\n"), msg);
    if (ctl->json) {
        g_autoptr(GError) err =
            g_error_new_literal(COCO_ERROR, COCO_ERROR_USAGE, msg);

        cocoCtlPrintErrorJson(ctl, err);
    }
    return COCO_EXIT_USAGE;
}

int
cocoCtlExitCode(const GError *error)
{
    return error->domain == COCO_ERROR && error->code == COCO_ERROR_USAGE
               ? COCO_EXIT_USAGE
               : COCO_EXIT_REJECTED;
}

void
cocoCtlPrintError(const GError *error)
{
    g_autofree char *oneline =
        g_strdelimit(g_strdup(error->message), "\n", ' ');

    fprintf(stderr, _("error: %1$s\n"), oneline);
}

int
cocoCtlReportError(CocoCtl *ctl, const GError *error)
{
    cocoCtlPrintError(error);
    if (ctl->json)
        cocoCtlPrintErrorJson(ctl, error);
    return cocoCtlExitCode(error);
}

char *
cocoCtlReadFile(const char *path, GError **error)
{
    g_autoptr(GString) text = g_string_new(NULL);
    struct stat st;
    char buf[65536];
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        cocoErrorSetSystem(error, errno, _("cannot read '%1$s'"), path);
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size > COCO_CTL_FILE_MAX) {
        int err = fstat(fd, &st) < 0 ? errno : 0;

        close(fd);
        if (err)
            cocoErrorSetSystem(error, err, _("cannot read '%1$s'"), path);
        else
            cocoErrorSet(
                error, COCO_ERROR_SYSTEM,
                _("cannot read '%1$s': not a regular file of at most '%2$u' bytes"),
                path, (unsigned int)COCO_CTL_FILE_MAX);
        return NULL;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;

            close(fd);
            cocoErrorSetSystem(error, err, _("cannot read '%1$s'"), path);
            return NULL;
        }
        if (n == 0)
            break;
        if (text->len + (size_t)n > COCO_CTL_FILE_MAX) {
            close(fd);
            cocoErrorSet(
                error, COCO_ERROR_SYSTEM,
                _("cannot read '%1$s': not a regular file of at most '%2$u' bytes"),
                path, (unsigned int)COCO_CTL_FILE_MAX);
            return NULL;
        }
        g_string_append_len(text, buf, n);
    }
    close(fd);
    return g_string_free(g_steal_pointer(&text), FALSE);
}

void
cocoCtlInfo(CocoCtl *ctl, const char *fmt, ...)
{
    va_list ap;

    if (ctl->json || ctl->quiet)
        return;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

int
main(int argc, char **argv)
{
    CocoCtl ctl = {0};
    const CocoCmdDef *cmd;
    int i;

    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, COCO_LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    /* Global options come before the command, as with virsh. */
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *opt = argv[i];

        if (STREQ(opt, "-c") || STREQ(opt, "--connect")) {
            if (++i >= argc)
                return cocoCtlUsageError(&ctl, _("expected syntax: '%1$s URI'"),
                                         opt);
            ctl.uri = argv[i];
        } else if (g_str_has_prefix(opt, "--connect=")) {
            ctl.uri = opt + strlen("--connect=");
        } else if (STREQ(opt, "--json")) {
            ctl.json = true;
        } else if (STREQ(opt, "-q") || STREQ(opt, "--quiet")) {
            ctl.quiet = true;
        } else if (STREQ(opt, "-v") || STREQ(opt, "--version")) {
            printf("%s\n", PACKAGE_VERSION);
            return COCO_EXIT_OK;
        } else if (STREQ(opt, "-h") || STREQ(opt, "--help")) {
            cocoPrintUsage(stdout);
            return COCO_EXIT_OK;
        } else {
            return cocoCtlUsageError(&ctl, _("unknown option: '%1$s'"), opt);
        }
    }

    if (i >= argc) {
        cocoPrintUsage(stderr);
        return cocoCtlUsageError(&ctl, _("no command given"));
    }
    if (!(cmd = cocoCmdLookup(argv[i])))
        return cocoCtlUsageError(&ctl, _("unknown command: '%1$s'"), argv[i]);
    ctl.cmd = cmd;
    return cmd->handler(&ctl, argc - i, argv + i);
}
