/* recorder: one session's raw record (common/record.h) written to the
 * spool, STATE_DIR/records/<id>.rec: the header at start, then every
 * input byte the client sent ('i'), every output byte ('o'), size changes
 * ('r') and an end frame ('m'). Frames are batched in memory (up to
 * REC_BATCH_BYTES or REC_BATCH_MS) and written without fsync: durability
 * is portholed's acknowledgement (record_upload.h). A write that fails
 * (disk full) is undone and makes the recorder failed: the session must
 * end rather than run unrecorded. */
#ifndef PORTHOLE_AGENT_RECORDER_H
#define PORTHOLE_AGENT_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#include "agent/record_upload.h"
#include "common/record.h"

#define REC_BATCH_BYTES ((size_t)64 << 10)
#define REC_BATCH_MS 100

struct agent_recorder;

/* Create dir/<h->session_id>.rec (0600, a new file) with its header and
 * tell u (may be NULL: nothing is delivered). */
int agent_recorder_open(struct agent_recorder **out, const char *dir,
    const struct record_header *h, struct rec_uploader *u, char *err,
    size_t errlen);
/* Append a frame of type 'i', 'o', 'r' or 'm' (data of any length: split
 * into frames of at most RECORD_FRAME_MAX). 0, or an error once the
 * record cannot be written (then agent_recorder_error says why). */
int agent_recorder_frame(struct agent_recorder *r, char type,
    const void *p, size_t n);
int agent_recorder_resize(struct agent_recorder *r, unsigned cols,
    unsigned rows);
/* Write what waited longer than REC_BATCH_MS (call it from a timer). */
int agent_recorder_tick(struct agent_recorder *r);
/* The spool holds more unacknowledged bytes than it may: stop reading
 * the session's output until it drains. */
int agent_recorder_full(struct agent_recorder *r);
const char *agent_recorder_error(const struct agent_recorder *r);
/* The end frame {"event":"end","status","reason"[,"exit_code"],
 * "bytes_in","bytes_out"}
 * (exit_code < 0: none), the last write, close, and free. */
int agent_recorder_close(struct agent_recorder *r, const char *status,
    const char *reason, int exit_code);

#endif
