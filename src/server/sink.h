/* sink: delivery of finished session records. records.c keeps the local
 * copy under DATA_DIR/records/; the sink queues each finished record's
 * files in the store (a durable queue: a restart resumes it) and, when
 * the session's preferences name an S3 bucket (s3BucketName), uploads
 * them through s3.c with retries and backoff. A queued file's local copy
 * is deleted only after the bucket confirmed it; a record is never
 * dropped because uploads keep failing. */
#ifndef PORTHOLE_SINK_H
#define PORTHOLE_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "server/server.h"

struct sink;

/* One finished record, as the session's preferences said at its start. */
struct sink_item {
	const char *session_id;
	const char *bucket;          /* s3BucketName; "" or NULL: local only */
	const char *key_prefix;      /* s3KeyPrefix, e.g. "Session-Manager/" */
	int encrypt;                 /* s3EncryptionEnabled */
	const char *kms_key_id;      /* SSE-KMS key; NULL/"": SSE-S3 AES256 */
	const char *const *paths;    /* local files: .rec, .cast, .log */
	size_t npaths;
};

struct sink_status {
	size_t depth;                /* files waiting for upload */
	int64_t oldest_ms;           /* when the oldest was queued; 0: none */
	int healthy;                 /* the last upload attempt succeeded */
	char last_error[256];        /* the last failure, "" if none */
};

/* Open the queue and start the uploader on srv->loop. */
int sink_open(struct server *srv, struct sink **out);
/* Stops the uploader; queued items stay in the store for the next start. */
void sink_close(struct sink *s);
/* Queue an item (durably, before returning 0). */
int sink_enqueue(struct sink *s, const struct sink_item *it);
/* Queue one file for a bucket under an exact object key (Run Command's
 * step outputs, commands_output.c); id names the row as a session id
 * does (letters, digits, - _ . @) and a row of the same id and path is
 * replaced. The object's URL goes to url. */
int sink_enqueue_object(struct sink *s, const char *id, const char *bucket,
    const char *key, const char *path, char *url, size_t urlsize);
/* Where a session's record is, for DescribeSessions' OutputUrl: the S3
 * object's URL once queued for a bucket (s3_url 1), else the local path
 * (s3_url 0). PH_ERR_NOTFOUND if the session has no record. */
int sink_output_url(struct sink *s, const char *session_id, char *out,
    size_t size, int *s3_url);
void sink_status(struct sink *s, struct sink_status *out);

#endif
