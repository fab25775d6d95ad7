/*
 * cocopeermsgfuzz.c: libFuzzer target for the agents' control messages
 * (cocophasemessage.h): a byte stream as the control connection delivers
 * it, cut into frames with the per-type limits, each frame a peer
 * message fed to a destination's and to a source's phase engine over the
 * emulated firmware (which parses the key exchange, bundles and tokens).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzing=true
 * Run:   build-fuzz/tests/fuzz/cocopeermsgfuzz -max_total_time=600 \
 *            tests/fuzz/cocopeermsgcorpus
 *
 * Checks beyond ASan and UBSan: a malformed frame is refused with
 * COCO_ERROR_TRANSFER_PROTOCOL and one line; whatever the messages, the
 * two engines never let both guests run (the destination never runs: no
 * cont), and a message that does not fit changes nothing.
 */

#include "internal.h"
#include "firmware/cocoemu.h"
#include "firmware/cocoemuplatform.h"
#include "migration/cocomigrationsession.h"
#include "migration/cocophasedata.h"
#include "migration/cocophasemessage.h"
#include "util/cocoerror.h"

#include <stdlib.h>

#define NPAGES 8
#define MEMSIZE (NPAGES * COCO_EMU_PAGE_SIZE)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static CocoEmuPlatform *platform;
static uint8_t smem[MEMSIZE];
static uint8_t dmem[MEMSIZE];

static int
sendNowhere(void *opaque, const CocoPhaseMessage *msg, GError **error)
{
    return 0;
}

static void
decideNothing(void *opaque, const CocoPhaseDecision *d)
{
}

static CocoMigrationSession *
newSession(CocoFirmwareRole role, CocoFirmware **fw)
{
    CocoMigrationSessionConfig c = {0};
    CocoFirmwareVm vm = {.uuid = {0x42}, .nvcpus = 1, .memory = MEMSIZE};
    CocoMigrationDef def = {0};
    g_autoptr(GError) err = NULL;
    CocoMigrationSession *s;

    def.technology = COCO_TECHNOLOGY_TDX;
    def.has_streams = true;
    def.forward_streams = 2;
    if (!(*fw = cocoEmuNew(role, platform, &def, &vm, &err)) ||
        cocoEmuAttachMemory(*fw,
                            role == COCO_FIRMWARE_ROLE_SOURCE ? smem : dmem,
                            MEMSIZE, &err) < 0)
        abort();
    c.role = role;
    c.fw = *fw;
    c.nvcpus = 1;
    c.data = cocoPhaseDataNewDirect(NPAGES, 2, NULL, NULL);
    c.send = sendNowhere;
    c.decide = decideNothing;
    if (!(s = cocoMigrationSessionNew(&c, &err)))
        abort();
    return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree uint8_t *copy = g_memdup2(data, size ? size : 1);
    CocoFirmware *sfw = NULL;
    CocoFirmware *dfw = NULL;
    CocoMigrationSession *src;
    CocoMigrationSession *dst;
    size_t off = 0;

    if (!platform && !(platform = cocoEmuPlatformNew(NULL)))
        abort();
    src = newSession(COCO_FIRMWARE_ROLE_SOURCE, &sfw);
    dst = newSession(COCO_FIRMWARE_ROLE_DESTINATION, &dfw);
    /* Both sessions started, as the agents start them. */
    cocoMigrationSessionHandleEvent(dst, COCO_PHASE_EVENT_INCOMING, NULL);
    cocoMigrationSessionHandleEvent(src, COCO_PHASE_EVENT_MIGRATE, NULL);
    while (size - off >= COCO_PHASE_MESSAGE_HEADER) {
        g_autoptr(GError) err = NULL;
        CocoPhaseMessage msg;
        gssize whole = cocoPhaseMessagePeekLength(copy + off, size - off, &err);

        if (whole < 0) {
            if (err->code != COCO_ERROR_TRANSFER_PROTOCOL ||
                strchr(err->message, '\n'))
                abort();
            break;
        }
        if ((size_t)whole > size - off)
            break;
        if (cocoPhaseMessageDecode(copy + off, (size_t)whole, &msg, &err) < 0)
            abort(); /* the header said it is whole */
        off += (size_t)whole;
        if (cocoPhaseMessageIsTransport((unsigned int)msg.type))
            continue;
        if (cocoPhaseMessageAllowed((unsigned int)msg.type,
                                    COCO_FIRMWARE_ROLE_DESTINATION))
            cocoMigrationSessionReceive(dst, &msg, NULL);
        if (cocoPhaseMessageAllowed((unsigned int)msg.type,
                                    COCO_FIRMWARE_ROLE_SOURCE))
            cocoMigrationSessionReceive(src, &msg, NULL);
        /* No cont reached the destination: it never runs; the source may
         * only while no start token left it. */
        if (cocoMigrationSessionMayRun(dst) || cocoEmuCanRun(dfw))
            abort();
    }
    cocoMigrationSessionFree(src);
    cocoMigrationSessionFree(dst);
    cocoFirmwareFree(sfw);
    cocoFirmwareFree(dfw);
    return 0;
}
