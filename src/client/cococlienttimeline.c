/*
 * cococlienttimeline.c: a picture of one confidential migration
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "client/cococlienttimeline.h"
#include "util/cocoerror.h"

#include <math.h>

/* The drawing's geometry, in SVG user units (pixels). */
#define TL_WIDTH 1000.0
#define TL_LEFT 150.0
#define TL_RIGHT 30.0
#define TL_LANE_H 46.0
#define TL_LANE1_Y 96.0
#define TL_LANE2_Y 176.0
#define TL_AXIS_Y 238.0
#define TL_CHART_Y 286.0
#define TL_CHART_H 150.0
#define TL_LEGEND_Y 478.0
#define TL_HEIGHT 540.0
#define TL_PLOT_W (TL_WIDTH - TL_LEFT - TL_RIGHT)

/* One lane: a record placed on the shared time axis. */
typedef struct {
    const CocoClientRecord *rec;
    const char *label;
    const char *color; /* of its bytes curve */
    double offset_ms; /* its session clock's 0 on the shared axis */
    double y;
} CocoTimelineLane;

typedef struct {
    GString *svg;
    double t_end; /* ms: the right end of the axis */
    guint64 max_bytes;
} CocoTimelinePicture;

static const struct {
    const char *state;
    const char *fill;
} cocoTimelineColors[] = {
    {"idle", "#d9d9d9"},      {"preparing", "#9ecae1"},
    {"setup", "#6baed6"},     {"precopy", "#4292c6"},
    {"blackout", "#d62728"},  {"switchover", "#ff7f0e"},
    {"handover", "#fdae6b"},  {"await-token", "#e6550d"},
    {"committed", "#31a354"}, {"finished", "#74c476"},
    {"aborted", "#969696"},   {"frozen", "#756bb1"},
};

static const char *
cocoTimelineFill(const char *state)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoTimelineColors); i++) {
        if (STREQ(cocoTimelineColors[i].state, state))
            return cocoTimelineColors[i].fill;
    }
    return "#bdbdbd";
}

/* Append @v with @decimals decimals, whatever the locale. */
static void
cocoTimelineNum(GString *s, double v, int decimals)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    char fmt[8];

    g_snprintf(fmt, sizeof(fmt), "%%.%df", decimals);
    g_string_append(s, g_ascii_formatd(buf, sizeof(buf), fmt, v));
}

/* A text element; @text is escaped here. */
static void
cocoTimelineText(GString *s, double x, double y, const char *anchor,
                 const char *style, const char *text)
{
    g_autofree char *esc = g_markup_escape_text(text, -1);

    g_string_append(s, "<text x=\"");
    cocoTimelineNum(s, x, 1);
    g_string_append(s, "\" y=\"");
    cocoTimelineNum(s, y, 1);
    g_string_append_printf(s, "\" text-anchor=\"%s\"%s%s%s>%s</text>\n", anchor,
                           style ? " style=\"" : "", style ? style : "",
                           style ? "\"" : "", esc);
}

static void
cocoTimelineRect(GString *s, double x, double y, double w, double h,
                 const char *attrs)
{
    g_string_append(s, "<rect x=\"");
    cocoTimelineNum(s, x, 2);
    g_string_append(s, "\" y=\"");
    cocoTimelineNum(s, y, 2);
    g_string_append(s, "\" width=\"");
    cocoTimelineNum(s, MAX(w, 0.0), 2);
    g_string_append(s, "\" height=\"");
    cocoTimelineNum(s, h, 2);
    g_string_append_printf(s, "\" %s/>\n", attrs);
}

static void
cocoTimelineLine(GString *s, double x1, double y1, double x2, double y2,
                 const char *attrs)
{
    g_string_append(s, "<line x1=\"");
    cocoTimelineNum(s, x1, 2);
    g_string_append(s, "\" y1=\"");
    cocoTimelineNum(s, y1, 2);
    g_string_append(s, "\" x2=\"");
    cocoTimelineNum(s, x2, 2);
    g_string_append(s, "\" y2=\"");
    cocoTimelineNum(s, y2, 2);
    g_string_append_printf(s, "\" %s/>\n", attrs);
}

static double
cocoTimelineX(const CocoTimelinePicture *p, double ms)
{
    return TL_LEFT + CLAMP(ms / p->t_end, 0.0, 1.0) * TL_PLOT_W;
}

/* A step of 1, 2 or 5 times a power of ten giving at most @max ticks. */
static double
cocoTimelineStep(double range, unsigned int max)
{
    double step = pow(10.0, floor(log10(MAX(range, 1e-3) / max)));

    while (range / step > max) {
        if (range / (step * 2) <= max)
            return step * 2;
        if (range / (step * 5) <= max)
            return step * 5;
        step *= 10;
    }
    return step;
}

/* The right end of a lane: its last event's end or last sample. */
static double
cocoTimelineLaneEnd(const CocoTimelineLane *lane)
{
    const CocoClientRecord *rec = lane->rec;
    double end = 0;
    guint i;

    for (i = 0; i < rec->timeline->len; i++) {
        const CocoClientRecordEntry *e = g_ptr_array_index(rec->timeline, i);

        end = MAX(end, e->at_ms + e->duration_ms);
    }
    if (rec->samples->len)
        end = MAX(end, g_array_index(rec->samples, CocoClientRecordSample,
                                     rec->samples->len - 1)
                           .at_ms);
    return lane->offset_ms + end;
}

static bool
cocoTimelineIsRound(const CocoClientRecordEntry *e)
{
    size_t i;

    /* A round ended: the destination imported it (data-round), the
     * source heard so (peer-round-done). */
    if (e->event &&
        (STREQ(e->event, "precopy-round") || STREQ(e->event, "data-round") ||
         STREQ(e->event, "peer-round-done")))
        return true;
    for (i = 0; e->steps && e->steps[i]; i++) {
        if (STREQ(e->steps[i], "round"))
            return true;
    }
    return false;
}

static void
cocoTimelineDrawLane(CocoTimelinePicture *p, const CocoTimelineLane *lane)
{
    GString *s = p->svg;
    const CocoClientRecord *rec = lane->rec;
    g_autofree char *title = NULL;
    double last_label = -1e9;
    double prev_ms = 0;
    const char *prev_state = "idle";
    unsigned int round = 0;
    guint i;

    cocoTimelineText(s, TL_LEFT - 10, lane->y + TL_LANE_H / 2 - 3, "end",
                     "font-weight:bold", lane->label);
    if (!rec) {
        cocoTimelineRect(
            s, TL_LEFT, lane->y, TL_PLOT_W, TL_LANE_H,
            "fill=\"none\" stroke=\"#999\" stroke-dasharray=\"4 3\"");
        cocoTimelineText(s, TL_LEFT + TL_PLOT_W / 2,
                         lane->y + TL_LANE_H / 2 + 4, "middle", "fill:#666",
                         _("this agent's record is not available"));
        return;
    }
    title = g_strdup_printf("%s (%s)", rec->id, rec->state);
    cocoTimelineText(s, TL_LEFT - 10, lane->y + TL_LANE_H / 2 + 12, "end",
                     "font-size:9px;fill:#555", rec->state);
    g_string_append(s, "<g>\n");
    g_string_append(s, "<title>");
    {
        g_autofree char *esc = g_markup_escape_text(title, -1);

        g_string_append(s, esc);
    }
    g_string_append(s, "</title>\n");
    /* The states as bands: each from its event to the next one. */
    for (i = 0; i <= rec->timeline->len; i++) {
        const CocoClientRecordEntry *e =
            i < rec->timeline->len ? g_ptr_array_index(rec->timeline, i) : NULL;
        double until = e ? e->at_ms : p->t_end - lane->offset_ms;
        double x0 = cocoTimelineX(p, lane->offset_ms + prev_ms);
        double x1 = cocoTimelineX(p, lane->offset_ms + until);
        g_autofree char *attrs =
            g_strdup_printf("fill=\"%s\" stroke=\"white\" stroke-width=\"0.5\"",
                            cocoTimelineFill(prev_state));

        if (x1 - x0 > 0.05)
            cocoTimelineRect(s, x0, lane->y, MAX(x1 - x0, 1.0), TL_LANE_H,
                             attrs);
        if (x1 - x0 > 7.0 * strlen(prev_state) &&
            STRNEQ(prev_state, "blackout"))
            cocoTimelineText(s, (x0 + x1) / 2, lane->y + TL_LANE_H / 2 + 4,
                             "middle", "font-size:11px;fill:white", prev_state);
        if (!e)
            break;
        prev_ms = e->at_ms;
        prev_state = e->to;
    }
    g_string_append(s, "</g>\n");
    /* Every event as a tick above the lane; the rounds numbered. */
    for (i = 0; i < rec->timeline->len; i++) {
        const CocoClientRecordEntry *e = g_ptr_array_index(rec->timeline, i);
        double x = cocoTimelineX(p, lane->offset_ms + e->at_ms);

        cocoTimelineLine(s, x, lane->y - 5, x, lane->y,
                         e->error ? "stroke=\"#d62728\" stroke-width=\"1.5\""
                                  : "stroke=\"#333\" stroke-width=\"0.7\"");
        if (cocoTimelineIsRound(e)) {
            g_autofree char *label = g_strdup_printf("r%u", ++round);

            if (x - last_label >= 16) {
                cocoTimelineText(s, x, lane->y - 8, "middle",
                                 "font-size:9px;fill:#333", label);
                last_label = x;
            }
        }
    }
}

static void
cocoTimelineDrawBlackout(CocoTimelinePicture *p, const CocoTimelineLane *src)
{
    GString *s = p->svg;
    const CocoClientRecord *rec = src->rec;
    g_autofree char *label = NULL;
    double start;
    double x0;
    double x1;

    if (!rec || rec->blackout_us == 0)
        return;
    start = src->offset_ms + (double)rec->blackout_us / 1000.0;
    x0 = cocoTimelineX(p, start);
    x1 = cocoTimelineX(p, start + (double)rec->downtime_us / 1000.0);
    cocoTimelineRect(
        s, x0, TL_LANE1_Y - 4, MAX(x1 - x0, 2.0),
        TL_LANE2_Y + TL_LANE_H - TL_LANE1_Y + 8,
        "fill=\"#d62728\" fill-opacity=\"0.35\" stroke=\"#d62728\"");
    label = g_strdup_printf(_("blackout %1$.1f ms"),
                            (double)rec->downtime_us / 1000.0);
    /* Beside the box, on the side with room for the label. */
    if (x1 + 110 <= TL_WIDTH)
        cocoTimelineText(s, x1 + 4, TL_LANE2_Y + TL_LANE_H + 16, "start",
                         "font-size:11px;fill:#d62728;font-weight:bold", label);
    else
        cocoTimelineText(s, x0 - 4, TL_LANE2_Y + TL_LANE_H + 16, "end",
                         "font-size:11px;fill:#d62728;font-weight:bold", label);
}

static void
cocoTimelineDrawAxis(CocoTimelinePicture *p)
{
    GString *s = p->svg;
    bool seconds = p->t_end >= 5000;
    double step = cocoTimelineStep(p->t_end, 10);
    double t;

    cocoTimelineLine(s, TL_LEFT, TL_AXIS_Y, TL_LEFT + TL_PLOT_W, TL_AXIS_Y,
                     "stroke=\"#333\"");
    for (t = 0; t <= p->t_end + step / 1000; t += step) {
        double x = cocoTimelineX(p, t);
        g_autoptr(GString) label = g_string_new(NULL);

        cocoTimelineLine(s, x, TL_AXIS_Y, x, TL_AXIS_Y + 5, "stroke=\"#333\"");
        cocoTimelineLine(s, x, TL_LANE1_Y - 12, x, TL_AXIS_Y,
                         "stroke=\"#000\" stroke-opacity=\"0.08\"");
        cocoTimelineNum(label, seconds ? t / 1000.0 : t,
                        seconds ? (step >= 1000 ? 0 : 1) : (step >= 1 ? 0 : 2));
        cocoTimelineText(s, x, TL_AXIS_Y + 17, "middle", "font-size:10px",
                         label->str);
    }
    cocoTimelineText(s, TL_LEFT + TL_PLOT_W, TL_AXIS_Y + 32, "end",
                     "font-size:10px;fill:#555",
                     seconds ? _("time since the first session started (s)")
                             : _("time since the first session started (ms)"));
}

static void
cocoTimelineDrawBytes(CocoTimelinePicture *p, const CocoTimelineLane *lanes,
                      size_t nlanes)
{
    GString *s = p->svg;
    double mib = (double)p->max_bytes / (1024.0 * 1024.0);
    double top = mib > 0 ? mib : 1.0;
    double step = cocoTimelineStep(top, 5);
    double v;
    size_t l;

    top = ceil(top / step) * step;
    cocoTimelineText(s, TL_LEFT - 10, TL_CHART_Y - 12, "end",
                     "font-weight:bold", _("sealed MiB"));
    cocoTimelineRect(s, TL_LEFT, TL_CHART_Y, TL_PLOT_W, TL_CHART_H,
                     "fill=\"none\" stroke=\"#333\"");
    for (v = 0; v <= top + step / 1000; v += step) {
        double y = TL_CHART_Y + TL_CHART_H - v / top * TL_CHART_H;
        g_autoptr(GString) label = g_string_new(NULL);

        cocoTimelineLine(s, TL_LEFT - 4, y, TL_LEFT + TL_PLOT_W, y,
                         "stroke=\"#000\" stroke-opacity=\"0.1\"");
        cocoTimelineNum(label, v, step >= 1 ? 0 : 1);
        cocoTimelineText(s, TL_LEFT - 8, y + 4, "end", "font-size:10px",
                         label->str);
    }
    for (l = 0; l < nlanes; l++) {
        const CocoClientRecord *rec = lanes[l].rec;
        guint i;

        if (!rec || !rec->samples->len)
            continue;
        g_string_append_printf(s,
                               "<polyline fill=\"none\" stroke=\"%s\" "
                               "stroke-width=\"2\" points=\"",
                               lanes[l].color);
        cocoTimelineNum(s, cocoTimelineX(p, lanes[l].offset_ms), 2);
        g_string_append_c(s, ',');
        cocoTimelineNum(s, TL_CHART_Y + TL_CHART_H, 2);
        for (i = 0; i < rec->samples->len; i++) {
            const CocoClientRecordSample *x =
                &g_array_index(rec->samples, CocoClientRecordSample, i);
            double y = TL_CHART_Y + TL_CHART_H -
                       (double)x->bytes / (1024.0 * 1024.0) / top * TL_CHART_H;

            g_string_append_c(s, ' ');
            cocoTimelineNum(s, cocoTimelineX(p, lanes[l].offset_ms + x->at_ms),
                            2);
            g_string_append_c(s, ',');
            cocoTimelineNum(s, y, 2);
        }
        g_string_append(s, "\"/>\n");
        /* The samples themselves: the line between two is not measured. */
        for (i = 0; i < rec->samples->len; i++) {
            const CocoClientRecordSample *x =
                &g_array_index(rec->samples, CocoClientRecordSample, i);
            double y = TL_CHART_Y + TL_CHART_H -
                       (double)x->bytes / (1024.0 * 1024.0) / top * TL_CHART_H;

            g_string_append(s, "<circle cx=\"");
            cocoTimelineNum(s, cocoTimelineX(p, lanes[l].offset_ms + x->at_ms),
                            2);
            g_string_append(s, "\" cy=\"");
            cocoTimelineNum(s, y, 2);
            g_string_append_printf(s, "\" r=\"2.5\" fill=\"%s\"/>\n",
                                   lanes[l].color);
        }
    }
    for (l = 0; l < nlanes; l++) {
        double y = TL_CHART_Y + 16 + 16 * (double)l;
        const CocoClientRecord *rec = lanes[l].rec;
        g_autofree char *label = NULL;

        if (rec && rec->samples->len && l == 0)
            label = g_strdup_printf(
                _("source: %1$.1f MiB sealed and sent (%2$llu pages, re-sent ones included)"),
                (double)rec->bytes / (1024.0 * 1024.0),
                (unsigned long long)rec->sent_pages);
        else if (rec && rec->samples->len)
            label = g_strdup_printf(_("destination: %1$.1f MiB received"),
                                    (double)rec->bytes / (1024.0 * 1024.0));
        else
            label = g_strdup_printf(_("%1$s: no samples in the record"),
                                    lanes[l].label);
        cocoTimelineLine(s, TL_LEFT + 10, y - 4, TL_LEFT + 30, y - 4,
                         rec && rec->samples->len
                             ? (l == 0
                                    ? "stroke=\"#1f77b4\" stroke-width=\"2\""
                                    : "stroke=\"#2ca02c\" stroke-width=\"2\"")
                             : "stroke=\"#999\" stroke-dasharray=\"3 2\"");
        cocoTimelineText(s, TL_LEFT + 36, y, "start", "font-size:11px", label);
    }
}

static void
cocoTimelineDrawLegend(CocoTimelinePicture *p)
{
    GString *s = p->svg;
    size_t i;

    cocoTimelineText(s, TL_LEFT - 10, TL_LEGEND_Y + 10, "end",
                     "font-weight:bold", _("states"));
    for (i = 0; i < G_N_ELEMENTS(cocoTimelineColors); i++) {
        double x = TL_LEFT + (double)(i % 6) * 120;
        double y = TL_LEGEND_Y + (double)(i / 6) * 18;
        g_autofree char *attrs =
            g_strdup_printf("fill=\"%s\"", cocoTimelineColors[i].fill);

        cocoTimelineRect(s, x, y, 12, 12, attrs);
        cocoTimelineText(s, x + 16, y + 10, "start", "font-size:10px",
                         cocoTimelineColors[i].state);
    }
}

static void
cocoTimelineDrawTitle(CocoTimelinePicture *p, const CocoClientRecord *src,
                      const CocoClientRecord *dst)
{
    const CocoClientRecord *any = src ? src : dst;
    g_autofree char *title = NULL;
    g_autofree char *sub = NULL;

    title = g_strdup_printf(
        _("Confidential migration of '%1$s' (session %2$s)"),
        any->domain ? any->domain : "?", any->session ? any->session : "?");
    if (src)
        sub = g_strdup_printf(
            _("source %1$s: %2$s, %3$llu precopy rounds, downtime %4$.1f ms; destination: %5$s"),
            src->id, src->state, (unsigned long long)src->rounds,
            (double)src->downtime_us / 1000.0, dst ? dst->state : "?");
    else
        sub = g_strdup_printf(_("destination %1$s: %2$s"), dst->id, dst->state);
    cocoTimelineText(p->svg, 20, 30, "start", "font-size:16px;font-weight:bold",
                     title);
    cocoTimelineText(p->svg, 20, 52, "start", "font-size:12px;fill:#444", sub);
}

char *
cocoClientTimelineSvg(const CocoClientRecord *source,
                      const CocoClientRecord *destination, GError **error)
{
    CocoTimelineLane lanes[2] = {
        {source, _("source"), "#1f77b4", 0, TL_LANE1_Y},
        {destination, _("destination"), "#2ca02c", 0, TL_LANE2_Y},
    };
    CocoTimelinePicture p = {0};
    gint64 t0 = G_MAXINT64;
    size_t l;

    if (!source && !destination) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG, "%s",
                     _("a timeline needs at least one agent's record"));
        return NULL;
    }
    /* The shared axis: 0 at the earlier session's start. */
    for (l = 0; l < 2; l++) {
        gint64 start =
            lanes[l].rec ? cocoClientRecordStartedUs(lanes[l].rec) : -1;

        if (start >= 0)
            t0 = MIN(t0, start);
    }
    for (l = 0; l < 2; l++) {
        gint64 start =
            lanes[l].rec ? cocoClientRecordStartedUs(lanes[l].rec) : -1;
        guint i;

        if (!lanes[l].rec)
            continue;
        lanes[l].offset_ms =
            start >= 0 && t0 != G_MAXINT64 ? (double)(start - t0) / 1000.0 : 0;
        p.t_end = MAX(p.t_end, cocoTimelineLaneEnd(&lanes[l]));
        for (i = 0; i < lanes[l].rec->samples->len; i++)
            p.max_bytes =
                MAX(p.max_bytes, g_array_index(lanes[l].rec->samples,
                                               CocoClientRecordSample, i)
                                     .bytes);
    }
    /* A little room after the last event. */
    p.t_end = MAX(p.t_end * 1.02, 1.0);

    p.svg = g_string_new(NULL);
    g_string_append(p.svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    g_string_append(p.svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" ");
    g_string_append(p.svg, "width=\"");
    cocoTimelineNum(p.svg, TL_WIDTH, 0);
    g_string_append(p.svg, "\" height=\"");
    cocoTimelineNum(p.svg, TL_HEIGHT, 0);
    g_string_append(p.svg, "\" viewBox=\"0 0 ");
    cocoTimelineNum(p.svg, TL_WIDTH, 0);
    g_string_append_c(p.svg, ' ');
    cocoTimelineNum(p.svg, TL_HEIGHT, 0);
    g_string_append(p.svg,
                    "\" font-family=\"DejaVu Sans, Verdana, sans-serif\" "
                    "font-size=\"12\">\n");
    cocoTimelineRect(p.svg, 0, 0, TL_WIDTH, TL_HEIGHT, "fill=\"white\"");
    cocoTimelineDrawTitle(&p, source, destination);
    cocoTimelineDrawAxis(&p);
    for (l = 0; l < 2; l++)
        cocoTimelineDrawLane(&p, &lanes[l]);
    cocoTimelineDrawBlackout(&p, &lanes[0]);
    cocoTimelineDrawBytes(&p, lanes, 2);
    cocoTimelineDrawLegend(&p);
    g_string_append(p.svg, "</svg>\n");
    return g_string_free(p.svg, FALSE);
}
