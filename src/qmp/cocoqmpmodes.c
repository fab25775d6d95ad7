/*
 * cocoqmpmodes.c: the migration modes libvirt may ask for that a
 * confidential migration cannot use
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "proto/cocoproto.h"
#include "qmp/cocoqmpmodes.h"

/* The capabilities QEMU never sees from a confidential session. */
static const char *const cocoQmpModesKept[] = {
    "postcopy-ram",
    "postcopy-preempt",
};

guint
cocoQmpModesFilterCapabilities(JsonArray *caps, CocoQmpModes *modes)
{
    guint removed = 0;
    guint i = 0;

    while (i < json_array_get_length(caps)) {
        JsonNode *e = json_array_get_element(caps, i);
        const char *name;
        gboolean state;
        gboolean kept = FALSE;
        size_t k;

        if (!JSON_NODE_HOLDS_OBJECT(e)) {
            i++;
            continue;
        }
        name = cocoJsonStringDefault(json_node_get_object(e), "capability", "");
        state = cocoJsonBoolDefault(json_node_get_object(e), "state", FALSE);
        if (STREQ(name, "multifd"))
            modes->multifd = state;
        else if (STREQ(name, "postcopy-ram"))
            modes->postcopy = state;
        for (k = 0; k < G_N_ELEMENTS(cocoQmpModesKept); k++) {
            if (STREQ(name, cocoQmpModesKept[k]))
                kept = TRUE;
        }
        if (kept) {
            json_array_remove_element(caps, i);
            removed++;
            continue;
        }
        i++;
    }
    return removed;
}

char *
cocoQmpModesRefusal(const CocoQmpModes *modes, CocoQmpRole role,
                    const char *uri, CocoQmpFdKind fdKind)
{
    if (modes->multifd)
        return g_strdup(_(
            "qemu-coco: parallel migration connections (VIR_MIGRATE_PARALLEL, virsh migrate --parallel, QEMU's 'multifd') are not supported for confidential migration: the host agents move the guest's memory over their own sealed streams (<coco:streams forward='N'/>); migrate without --parallel"));
    /* libvirt passes QEMU a pipe (source) or its own stream (destination)
     * only when it tunnels the migration through its connection. */
    if (uri && STRPREFIX(uri, "fd:") &&
        (role == COCO_QMP_ROLE_DESTINATION || fdKind != COCO_QMP_FD_SOCKET))
        return g_strdup(_(
            "qemu-coco: tunnelled migration (VIR_MIGRATE_TUNNELLED, virsh migrate --tunnelled) is not supported for confidential migration: the guest's memory moves between the host agents' sealed streams, not through libvirt's connection; migrate without --tunnelled (Nova: live_migration_tunnelled = False)"));
    return NULL;
}

const char *
cocoQmpModesPostcopyRefusal(void)
{
    return _(
        "qemu-coco: post-copy is not supported for confidential migration: libvirt-coco moves the guest's private memory by pre-copy only and implements no post-copy import, whatever <coco:postcopy allowed> says; the migration goes on as pre-copy");
}

char *
cocoQmpModesTcpPeer(const char *uri)
{
    const char *end;

    if (!uri || !STRPREFIX(uri, "tcp:") || !uri[4])
        return NULL;
    end = strchr(uri + 4, ',');
    return end ? g_strndup(uri + 4, end - (uri + 4)) : g_strdup(uri + 4);
}
