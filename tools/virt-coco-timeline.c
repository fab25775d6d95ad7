/*
 * virt-coco-timeline.c: "virt-coco timeline"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The picture of one confidential migration (client/cococlienttimeline.h)
 * from this host's agent's record and the peer agent's record of the same
 * session, as SVG and, through rsvg-convert (librsvg2-bin) when it is
 * installed, as PNG.
 */

#include "virt-coco.h"
#include "client/cococlienttimeline.h"

#include <errno.h>
#include <unistd.h>

static int
cocoTimelineWrite(const char *path, const char *svg, GError **error)
{
    g_autoptr(GError) err = NULL;

    if (STREQ(path, "-")) {
        fputs(svg, stdout);
        fflush(stdout);
        return 0;
    }
    if (!g_file_set_contents(path, svg, -1, &err))
        return cocoErrorSet(error, COCO_ERROR_SYSTEM,
                            _("cannot write '%1$s': %2$s"), path, err->message);
    return 0;
}

/* PNG through rsvg-convert, from a temporary copy of the SVG. */
static int
cocoTimelinePng(const char *path, const char *svg, GError **error)
{
    g_autofree char *prog = g_find_program_in_path("rsvg-convert");
    g_autofree char *tmp = NULL;
    g_autofree char *errtext = NULL;
    g_autoptr(GError) err = NULL;
    const char *argv[] = {NULL, "--format", "png", "--output",
                          path, NULL,       NULL};
    int status = 0;
    int fd;

    if (!prog)
        return cocoErrorSet(
            error, COCO_ERROR_NOT_SUPPORTED, "%s",
            _("'--png' needs rsvg-convert (Debian's librsvg2-bin, Fedora's librsvg2-tools); '--svg' needs nothing"));
    if ((fd = g_file_open_tmp("virt-coco-timeline-XXXXXX.svg", &tmp, &err)) < 0)
        return cocoErrorSet(error, COCO_ERROR_SYSTEM,
                            _("cannot create a temporary file: %1$s"),
                            err->message);
    close(fd);
    if (!g_file_set_contents(tmp, svg, -1, &err)) {
        unlink(tmp);
        return cocoErrorSet(error, COCO_ERROR_SYSTEM,
                            _("cannot write '%1$s': %2$s"), tmp, err->message);
    }
    argv[0] = prog;
    argv[5] = tmp;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, NULL, &errtext, &status, &err)) {
        unlink(tmp);
        return cocoErrorSet(error, COCO_ERROR_SYSTEM,
                            _("cannot run '%1$s': %2$s"), prog, err->message);
    }
    unlink(tmp);
    if (!g_spawn_check_wait_status(status, NULL))
        return cocoErrorSet(error, COCO_ERROR_SYSTEM,
                            _("'%1$s' could not render '%2$s': %3$s"), prog,
                            path, g_strstrip(errtext));
    return 0;
}

static void
cocoTimelineSetPath(JsonObject *obj, const char *name, const char *path)
{
    if (path)
        json_object_set_string_member(obj, name, path);
    else
        json_object_set_null_member(obj, name);
}

int
cocoCmdTimeline(CocoCtl *ctl, int argc, char **argv)
{
    g_autofree char *svgpath = NULL;
    g_autofree char *pngpath = NULL;
    g_autofree char *socket = NULL;
    GOptionEntry entries[] = {
        {"svg", 0, 0, G_OPTION_ARG_FILENAME, &svgpath,
         N_("write the picture as SVG to FILE ('-': standard output)"),
         N_("FILE")},
        {"png", 0, 0, G_OPTION_ARG_FILENAME, &pngpath,
         N_("write the picture as PNG to FILE (needs rsvg-convert)"),
         N_("FILE")},
        {"agent-socket", 0, 0, G_OPTION_ARG_FILENAME, &socket,
         N_("this host agent's socket"), N_("PATH")},
        G_OPTION_ENTRY_NULL,
    };
    g_autoptr(CocoClientAgent) agent = NULL;
    g_autoptr(CocoClientRecord) rec = NULL;
    g_autoptr(CocoClientRecord) peer = NULL;
    g_autofree char *reason = NULL;
    g_autofree char *svg = NULL;
    g_autoptr(GError) err = NULL;
    const CocoClientRecord *src;
    const CocoClientRecord *dst;

    if (!cocoCtlParseOptions(ctl, entries, &argc, &argv))
        return COCO_EXIT_USAGE;
    if (argc < 2)
        return cocoCtlUsageError(
            ctl, "%s",
            _("command 'timeline' requires a DOMAIN or migration ID"));
    if (argc > 2)
        return cocoCtlUsageError(ctl, _("unexpected data '%1$s'"), argv[2]);
    if (!svgpath && !pngpath)
        return cocoCtlUsageError(
            ctl, "%s",
            _("command 'timeline' needs '--svg FILE' or '--png FILE'"));
    if (ctl->json && svgpath && STREQ(svgpath, "-"))
        return cocoCtlUsageError(
            ctl, "%s", _("'--svg -' and '--json' both want standard output"));
    if (!(agent = cocoStatusConnect(socket, &err)) ||
        cocoStatusFind(agent, argv[1], &rec, &peer, &reason, &err) < 0)
        return cocoCtlReportError(ctl, err);
    if (reason)
        fprintf(stderr,
                _("warning: the peer agent's record is not available: %1$s\n"),
                reason);
    src = STREQ(rec->role, "destination") ? peer : rec;
    dst = STREQ(rec->role, "destination") ? rec : peer;
    if (!(svg = cocoClientTimelineSvg(src, dst, &err)) ||
        (svgpath && cocoTimelineWrite(svgpath, svg, &err) < 0) ||
        (pngpath && cocoTimelinePng(pngpath, svg, &err) < 0))
        return cocoCtlReportError(ctl, err);

    if (ctl->json) {
        g_autoptr(JsonObject) obj = json_object_new();
        JsonObject *tl = json_object_new();

        json_object_set_string_member(tl, "migration", rec->id);
        cocoTimelineSetPath(tl, "source", src ? src->id : NULL);
        cocoTimelineSetPath(tl, "destination", dst ? dst->id : NULL);
        cocoTimelineSetPath(tl, "svg", svgpath);
        cocoTimelineSetPath(tl, "png", pngpath);
        json_object_set_object_member(obj, "timeline", tl);
        cocoCtlPrintObject(ctl, obj);
    } else if (!svgpath || STRNEQ(svgpath, "-")) {
        if (svgpath)
            cocoCtlInfo(ctl, _("Wrote the timeline of '%1$s' to '%2$s'"),
                        rec->id, svgpath);
        if (pngpath)
            cocoCtlInfo(ctl, _("Wrote the timeline of '%1$s' to '%2$s'"),
                        rec->id, pngpath);
    }
    return COCO_EXIT_OK;
}
