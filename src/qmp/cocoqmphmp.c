/*
 * cocoqmphmp.c: the HMP forms of the commands the relay gates
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qmp/cocoqmphmp.h"

#include <string.h>

/* QEMU 7.2's hmp-commands.hx: each HMP command (and alias) that starts,
 * steers or resumes a migration or the guest, with the QMP command the
 * relay gates in its place. */
static const struct {
    const char *hmp;
    const char *qmp;
} cocoQmpHmpGatedCommands[] = {
    {"c", "cont"},
    {"cont", "cont"},
    {"migrate", "migrate"},
    {"migrate_incoming", "migrate-incoming"},
    {"migrate_continue", "migrate-continue"},
    {"migrate_cancel", "migrate_cancel"},
    {"migrate_start_postcopy", "migrate-start-postcopy"},
    {"migrate_recover", "migrate-recover"},
    {"migrate_pause", "migrate-pause"},
    {"migrate_set_capability", "migrate-set-capabilities"},
    {"migrate_set_parameter", "migrate-set-parameters"},
    {"system_wakeup", "system_wakeup"},
    {"loadvm", "snapshot-load"},
};

gboolean
cocoQmpHmpGated(const CocoQmpMessage *msg, const char **hmp, const char **qmp)
{
    const char *line;
    size_t len, i;

    if (!msg->name || STRNEQ(msg->name, "human-monitor-command"))
        return FALSE;
    if (!(line = cocoQmpMessageGetArgString(msg, "command-line")))
        return FALSE;
    /* HMP's own parser: leading blanks, then the name up to a blank. */
    line += strspn(line, " \t\r\n");
    len = strcspn(line, " \t\r\n");
    for (i = 0; i < G_N_ELEMENTS(cocoQmpHmpGatedCommands); i++) {
        const char *name = cocoQmpHmpGatedCommands[i].hmp;

        if (strlen(name) == len && memcmp(name, line, len) == 0) {
            *hmp = name;
            *qmp = cocoQmpHmpGatedCommands[i].qmp;
            return TRUE;
        }
    }
    return FALSE;
}
