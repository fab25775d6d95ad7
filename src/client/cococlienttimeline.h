/*
 * cococlienttimeline.h: a picture of one confidential migration, from the
 * two agents' records
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One SVG document: a lane per agent (source above, destination below)
 * with the phase engine's states as bands, every handled event as a tick,
 * the precopy rounds numbered, the blackout (SOURCE_BLACKOUT to the
 * release of migrate-continue) across both lanes, and below them the
 * sealed bytes each agent had sent or received over time (the records'
 * "samples"). The lanes share one time axis: each record's session clock
 * is placed at its wall-clock start ("session_start_us"), so the two
 * hosts' clocks are assumed to agree (NTP; the lab's hosts share one).
 */

#pragma once

#include "internal.h"
#include "client/cococlientrecord.h"

/*
 * cocoClientTimelineSvg:
 * The SVG document (UTF-8, standalone) of the migration recorded by
 * @source and @destination; either may be NULL (its lane then says that
 * its record is not available), not both.
 */
char *cocoClientTimelineSvg(const CocoClientRecord *source,
                            const CocoClientRecord *destination,
                            GError **error);
