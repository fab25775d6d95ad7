/*
 * virt-coco.c: the virt-coco command-line tool (global options, dispatch)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "virt-coco.h"
#include "libvirt-coco/libvirt-coco.h"

#include <locale.h>
#include <stdio.h>

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
     N_("--confidential [--live] [--p2p] [--verbose] [--timeline] [OPTION...] DOMAIN DESTURI [MIGRATEURI]"),
     cocoCmdMigrate},
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
    printf("%s\n\n  virt-coco %s %s\n", _(cmd->summary), cmd->name,
           _(cmd->usage));
    return COCO_EXIT_OK;
}

bool
cocoCtlParseOptions(CocoCtl *ctl, GOptionEntry *entries, int *argc,
                    char ***argv)
{
    const CocoCmdDef *cmd = ctl->cmd;
    gboolean json = ctl->json;
    GOptionEntry common[] = {
        {"json", 0, 0, G_OPTION_ARG_NONE, &json,
         N_("machine-readable JSON output"), NULL},
        G_OPTION_ENTRY_NULL,
    };
    g_autoptr(GOptionContext) octx = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *param = g_strdup_printf("%s %s", cmd->name, _(cmd->usage));

    octx = g_option_context_new(param);
    g_option_context_set_summary(octx, _(cmd->summary));
    g_option_context_set_translation_domain(octx, GETTEXT_PACKAGE);
    g_option_context_add_main_entries(octx, common, GETTEXT_PACKAGE);
    if (entries)
        g_option_context_add_main_entries(octx, entries, GETTEXT_PACKAGE);
    if (!g_option_context_parse(octx, argc, argv, &err)) {
        ctl->json = json;
        cocoCtlUsageError(ctl, "%s", err->message);
        return false;
    }
    ctl->json = json;
    return true;
}

static void
cocoCtlPrintErrorJson(CocoCtl *ctl, int code, const char *message, int vir_code)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;
    const char *nick = cocoErrorCodeToString(code);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "error");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "code");
    json_builder_add_string_value(b, nick ? nick : "unknown");
    json_builder_set_member_name(b, "number");
    json_builder_add_int_value(b, code);
    json_builder_set_member_name(b, "message");
    json_builder_add_string_value(b, message);
    if (vir_code) {
        json_builder_set_member_name(b, "libvirt_code");
        json_builder_add_int_value(b, vir_code);
    }
    json_builder_end_object(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    cocoCtlPrintJson(ctl, root);
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
    if (ctl->json)
        cocoCtlPrintErrorJson(ctl, COCO_ERROR_USAGE, msg, 0);
    return COCO_EXIT_USAGE;
}

int
cocoCtlReportError(CocoCtl *ctl, const GError *error)
{
    int code = error->domain == COCO_ERROR ? error->code : COCO_ERROR_INTERNAL;
    g_autofree char *oneline =
        g_strdelimit(g_strdup(error->message), "\n", ' ');

    fprintf(stderr, _("error: %1$s\n"), oneline);
    if (ctl->json)
        cocoCtlPrintErrorJson(ctl, code, oneline,
                              cocoErrorGetLibvirtCode(error));
    return code == COCO_ERROR_USAGE ? COCO_EXIT_USAGE : COCO_EXIT_REJECTED;
}

void
cocoCtlPrintJson(CocoCtl *ctl G_GNUC_UNUSED, JsonNode *node)
{
    g_autofree char *text = json_to_string(node, FALSE);

    printf("%s\n", text);
    fflush(stdout);
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
                return cocoCtlUsageError(&ctl, _("option '%1$s' needs a URI"),
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
