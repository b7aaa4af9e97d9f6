/* store_records: what portholed knows of each session's record beyond
 * its bytes (those are the file DATA_DIR/records/SESSION-ID.rec, whose
 * fdatasync'd size is the stored length): the recording preferences the
 * session started with (snapshot of the preferences document's inputs),
 * whether the agent declared the record complete, and whether its .cast
 * and .log were rendered and handed to the sink. */
#ifndef PORTHOLE_STORE_RECORDS_H
#define PORTHOLE_STORE_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "server/store.h"

#define RECORD_BUCKET_SIZE 64      /* S3 bucket names: 3..63 */
#define RECORD_PREFIX_SIZE 1025    /* S3 keys: at most 1024 bytes */
#define RECORD_KMS_KEY_SIZE 2049

/* The preferences document's s3BucketName, s3KeyPrefix,
 * s3EncryptionEnabled and kmsKeyId at StartSession. */
struct record_prefs {
	char bucket[RECORD_BUCKET_SIZE];       /* "": local only */
	char key_prefix[RECORD_PREFIX_SIZE];
	int encrypt;
	char kms_key_id[RECORD_KMS_KEY_SIZE];
};

struct record_row {
	char session_id[SESSION_ID_MAX];
	struct record_prefs prefs;
	int complete;
	int64_t length;          /* the complete record's length, else 0 */
	int64_t completed_ms;
	int rendered;            /* .cast and .log written, sink queued */
};

/* Create the row of a session (prefs NULL: local only). PH_ERR_EXISTS if
 * it has one. */
int store_record_create(struct store *st, const char *session_id,
    const struct record_prefs *prefs, int64_t now_ms);
/* 0 and out filled, or PH_ERR_NOTFOUND. */
int store_record_get(struct store *st, const char *session_id,
    struct record_row *out);
/* Mark complete at length (idempotent for the same length; PH_ERR_STATE
 * if it was completed at another length). */
int store_record_complete(struct store *st, const char *session_id,
    int64_t length, int64_t now_ms);
int store_record_set_rendered(struct store *st, const char *session_id);
/* Complete records not rendered yet (portholed's start); fn's non-zero
 * answer stops the walk. At most limit rows. */
int store_record_foreach_unrendered(struct store *st, int limit,
    int (*fn)(void *arg, const struct record_row *r), void *arg);

#endif
