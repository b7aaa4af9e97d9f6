/* logs: `porthole logs SESSION-ID [--cast|--text|--raw]` prints a
 * session's record (GetSessionLog, page by page); `porthole replay
 * SESSION-ID [--speed N]` plays its output in the terminal with the
 * recorded timing. */
#ifndef PORTHOLE_CLIENT_LOGS_H
#define PORTHOLE_CLIENT_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* GetSessionLog asks for this much per page (its base64 fits the API
 * client's response limit). */
#define CLIENT_LOGS_PAGE ((int64_t)2 << 20)
/* Replay: no wait between two frames is longer than this (idle time),
 * after --speed. */
#define CLIENT_REPLAY_MAX_WAIT_MS 2000

/* argv[0] is "logs" or "replay". Exit status: 0, 2 (usage), 255 (API). */
int client_logs_main(int argc, char **argv);

/* One page's answer: the decoded Content into out (appended), the next
 * offset (-1: the end). 0 or PH_ERR_INVALID for an answer that is not
 * one. */
int client_logs_page_parse(const uint8_t *body, size_t len, struct buf *out,
    int64_t *next_offset);

/* Replay: consume the complete frames at the start of in (the record's
 * bytes so far; *have_header tracks the header), writing output frames
 * to fd with waits of (frame time - *last_us) / speed, each at most
 * CLIENT_REPLAY_MAX_WAIT_MS (speed 0: no waits). Returns 0 and leaves a
 * partial frame in in, or PH_ERR_INVALID for bytes that are not a
 * record. */
int client_replay_feed(struct buf *in, int *have_header, uint64_t *last_us,
    double speed, int fd);

#endif
