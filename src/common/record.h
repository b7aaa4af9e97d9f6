/* record: the session record as the agent writes it and portholed keeps
 * it, byte-exact ("raw record", file suffix .rec). Both readable forms
 * (asciicast v2 .cast, plain-text transcript .log) are rendered from it.
 *
 * Layout:
 *   "PHREC1\n"
 *   one JSON object on one line, then "\n" (the header):
 *     {"version":1,"session_id":"…","instance_id":"mi-…",
 *      "session_type":"Standard_Stream|InteractiveCommands|
 *                      NonInteractiveCommands|Port",
 *      "start_ms":<epoch ms>,"width":<cols>,"height":<rows>,
 *      "run_as":"ssm-user"}          (unknown members are ignored)
 *   frames, each:
 *     type   1 byte: 'i' input bytes (what the client sent, as sent),
 *                    'o' output bytes (what the session printed),
 *                    'r' resize ("COLSxROWS" in ASCII),
 *                    'm' metadata: one JSON object (a port connection
 *                        {"event":"connect","host":…,"port":…},
 *                        byte counts, the end {"event":"end",
 *                        "status":"Terminated|Failed","reason":"…"})
 *     time   8 bytes big-endian: microseconds since start_ms
 *     length 4 bytes big-endian: at most RECORD_FRAME_MAX
 *     data   length bytes (any bytes: binary output stays binary)
 *
 * A record is appended to and delivered by byte offset, so any prefix
 * that ends on a frame boundary is a valid record; a reader stops cleanly
 * at a partial last frame (a crash mid-write). */
#ifndef PORTHOLE_RECORD_H
#define PORTHOLE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define RECORD_MAGIC "PHREC1\n"
#define RECORD_MAGIC_LEN 7
#define RECORD_HEADER_MAX 4096            /* the JSON line */
#define RECORD_FRAME_HEAD 13              /* type, time, length */
#define RECORD_FRAME_MAX ((size_t)1 << 20)

struct record_header {
	char session_id[128];
	char instance_id[32];
	char session_type[32];
	char run_as[64];
	int64_t start_ms;
	int width, height;
};

struct record_frame {
	char type;                 /* 'i', 'o', 'r', 'm' */
	uint64_t t_us;             /* since start_ms */
	const uint8_t *data;       /* points into the reader's input */
	size_t len;
};

/* Append the magic and header line / one frame to out. PH_ERR_INVALID for
 * an unknown type or an oversized frame, PH_ERR_TOOBIG past out's max. */
int record_header_encode(const struct record_header *h, struct buf *out);
int record_frame_encode(struct buf *out, char type, uint64_t t_us,
    const void *data, size_t len);

/* Reading a record held in memory (or mapped): record_read_header once,
 * then record_read_frame until it returns 0 (clean end, or a partial last
 * frame: *partial set). PH_ERR_INVALID for bad magic, header or frame
 * type; never reads past len. */
struct record_reader {
	const uint8_t *p;
	size_t len, off;
	int partial;               /* the input ended inside a frame */
};

void record_reader_init(struct record_reader *r, const void *p, size_t len);
int record_read_header(struct record_reader *r, struct record_header *h);
/* 1 and *f filled, 0 at the end, or a negative error. */
int record_read_frame(struct record_reader *r, struct record_frame *f);

#endif
