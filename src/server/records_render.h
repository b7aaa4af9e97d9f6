/* records_render: the readable forms of a raw record (common/record.h).
 *   .cast  asciicast v2: a header line {"version":2,"width","height",
 *          "timestamp","title"}, then one JSON array per frame:
 *          [seconds, "o"|"i", text], [seconds, "r", "COLSxROWS"],
 *          [seconds, "m", metadata]. Text must be UTF-8 in JSON, so
 *          bytes that are not valid UTF-8 become U+FFFD here (the .rec
 *          keeps them as they were).
 *   .log   the plain-text transcript, like AWS's session log: the
 *          session's output with terminal escape sequences and control
 *          characters removed (CR LF becomes LF, a lone CR ends a line
 *          that is not empty; backspaces are dropped, not applied, so
 *          typed-and-erased characters that the terminal echoed stay
 *          visible), metadata frames as
 *          "[porthole] {...}" lines, invalid UTF-8 as U+FFFD.
 * Both read the record in memory and never past its end; a damaged frame
 * ends the rendering where it is (what came before is kept). */
#ifndef PORTHOLE_RECORDS_RENDER_H
#define PORTHOLE_RECORDS_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"

struct render_stats {
	uint64_t frames;
	int damaged;          /* a frame could not be read: stopped there */
	int partial;          /* the record ends inside a frame */
};

/* 0 (out written), PH_ERR_INVALID when the magic or header is not a
 * record's (nothing written), PH_ERR_IO when out failed. */
int records_render_cast(const uint8_t *rec, size_t len, FILE *out,
    struct render_stats *st);
int records_render_log(const uint8_t *rec, size_t len, FILE *out,
    struct render_stats *st);

/* Incremental UTF-8 repair: a sequence cut at the end of one chunk is
 * held (at most 3 bytes) and completed by the next. */
struct utf8_fix {
	uint8_t held[4];
	size_t nheld;
};

/* Append p[0..n) to out as valid UTF-8, each maximal invalid subpart as
 * U+FFFD. flush: the stream ends here (nothing is held). */
int utf8_fix_append(struct utf8_fix *u, const uint8_t *p, size_t n,
    int flush, struct buf *out);

#endif
