/* store_sink: the sink's durable delivery queue, the sink_queue table.
 * One row per file of a finished record; a row stays after delivery so
 * DescribeSessions can say where the record went. */
#ifndef PORTHOLE_STORE_SINK_H
#define PORTHOLE_STORE_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "server/store.h"

#define SINK_PATH_SIZE 1024
#define SINK_KEY_SIZE 1025      /* S3's 1024 bytes, NUL */
#define SINK_KMS_SIZE 2049
#define SINK_URL_SIZE 2048

enum sink_state {
	SINK_QUEUED = 0,        /* waiting for an upload */
	SINK_DELIVERED = 1,     /* the bucket has it, or local only */
	SINK_LOST = 2,          /* the local file vanished before upload */
};

struct sink_row {
	char session_id[SESSION_ID_MAX];
	char path[SINK_PATH_SIZE];   /* the local file */
	char bucket[64];             /* "": local only */
	char object_key[SINK_KEY_SIZE];
	int sse;                     /* enum s3_sse */
	char kms_key_id[SINK_KMS_SIZE];
	char url[SINK_URL_SIZE];     /* the object's URL, or the local path */
	int64_t queued_ms;
	int64_t next_ms;             /* not tried again before */
	int attempts;
	int state;                   /* enum sink_state */
	int64_t done_ms;
};

/* Add rows in one transaction: all or none. A row for a session's file
 * that is already there is replaced (queued again). */
int store_sink_add(struct store *st, const struct sink_row *rows, size_t n);
/* The queued row due first with next_ms <= now_ms; PH_ERR_NOTFOUND if
 * none is due. *next_due_ms (may be NULL) gets the earliest next_ms of
 * any queued row, 0 if the queue is empty. */
int store_sink_next(struct store *st, int64_t now_ms, struct sink_row *out,
    int64_t *next_due_ms);
/* Mark a row delivered or lost. */
int store_sink_finish(struct store *st, const char *session_id,
    const char *path, int state, int64_t now_ms);
/* A failed attempt: count it and hold the row until next_ms. */
int store_sink_retry_at(struct store *st, const char *session_id,
    const char *path, int64_t next_ms);
/* The bucket works again: its waiting rows are due now. */
int store_sink_wake(struct store *st, const char *bucket, int64_t now_ms);
/* Queued rows and when the oldest was queued (0 if none). */
int store_sink_stats(struct store *st, size_t *depth, int64_t *oldest_ms);
/* Call fn for each row of a session (at most 16); PH_ERR_NOTFOUND if
 * there is none. */
int store_sink_foreach_session(struct store *st, const char *session_id,
    void (*fn)(const struct sink_row *r, void *arg), void *arg);

#endif
