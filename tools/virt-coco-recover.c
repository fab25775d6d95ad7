/*
 * virt-coco-recover.c: "virt-coco recover"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A source frozen after its start token (its peer did not say in time
 * whether it imported the token) stays paused until its fate is known:
 * this host's agent reconnects to the peer and asks again (the agent's
 * "recover" request, docs/virtcocod.rst; docs/phases.rst). The command
 * succeeds once the outcome is decided, either way, and fails while the
 * source is still frozen.
 */

#include "virt-coco.h"
#include "firmware/cocofirmware.h"
#include "migration/cocophase.h"

int
cocoCmdRecover(CocoCtl *ctl, int argc, char **argv)
{
    g_autofree char *socket = NULL;
    GOptionEntry entries[] = {
        {"agent-socket", 0, 0, G_OPTION_ARG_FILENAME, &socket,
         N_("this host agent's socket"), N_("PATH")},
        G_OPTION_ENTRY_NULL,
    };
    g_autoptr(CocoClientAgent) agent = NULL;
    CocoClientRecoverInfo info = {0};
    g_autoptr(GError) err = NULL;
    CocoPhaseState st;
    bool final;
    int ret;

    if (!cocoCtlParseOptions(ctl, entries, &argc, &argv))
        return COCO_EXIT_USAGE;
    if (argc < 2)
        return cocoCtlUsageError(
            ctl, "%s", _("command 'recover' requires a migration ID"));
    if (argc > 2)
        return cocoCtlUsageError(ctl, _("unexpected data '%1$s'"), argv[2]);
    if (!(agent = cocoStatusConnect(socket, &err)) ||
        cocoClientAgentRecover(agent, argv[1], &info, &err) < 0)
        return cocoCtlReportError(ctl, err);

    st = cocoPhaseStateParse(info.state);
    final = cocoPhaseStateIsFinal(COCO_FIRMWARE_ROLE_SOURCE, st);
    if (!final) {
        cocoErrorSet(&err, COCO_ERROR_MIGRATION_SOURCE_FROZEN,
                     _("migration '%1$s' is still '%2$s': %3$s"), info.id,
                     info.state, info.message);
        ret = cocoCtlReportError(ctl, err);
    } else if (ctl->json) {
        g_autoptr(JsonObject) obj = json_object_new();
        JsonObject *ro = json_object_new();

        json_object_set_string_member(ro, "migration", info.id);
        json_object_set_string_member(ro, "state", info.state);
        json_object_set_boolean_member(
            ro, "may_run", cocoPhaseStateMayRun(COCO_FIRMWARE_ROLE_SOURCE, st));
        json_object_set_string_member(ro, "message", info.message);
        json_object_set_object_member(obj, "recover", ro);
        cocoCtlPrintObject(ctl, obj);
        ret = COCO_EXIT_OK;
    } else {
        printf(_("Migration '%1$s': %2$s: %3$s\n"), info.id, info.state,
               info.message);
        ret = COCO_EXIT_OK;
    }
    cocoClientRecoverInfoClear(&info);
    return ret;
}
