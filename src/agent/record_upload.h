/* record_upload: the spool of session records (STATE_DIR/records/<id>.rec,
 * written by recorder.c) and their delivery to portholed on a worker
 * thread (docs/operator.md "Recording"):
 *   POST /v1/record/<id>?offset=N    the bytes from N, 200 {"length": L}
 *   POST /v1/record/<id>/complete?length=N   once the session ended and
 *                                    every byte is acknowledged
 * over HTTPS with the agent's client certificate. The acknowledged offset
 * is kept in <id>.ack, so a restarted agent resumes where it was; a spool
 * file goes only after /complete answered 200. Failures retry forever
 * with capped back-off: nothing is dropped. */
#ifndef PORTHOLE_AGENT_RECORD_UPLOAD_H
#define PORTHOLE_AGENT_RECORD_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#define REC_SPOOL_MAX_DEFAULT ((uint64_t)256 << 20)
/* The most bytes one request carries (portholed takes 1..4 MiB). */
#define REC_UPLOAD_CHUNK ((size_t)4 << 20)
#define REC_UPLOAD_CHUNK_MIN ((size_t)64 << 10)
/* Back-off between failed attempts of one record. */
#define REC_UPLOAD_RETRY_MIN_MS 500u
#define REC_UPLOAD_RETRY_MAX_MS 30000u
#define REC_UPLOAD_TIMEOUT_MS 60000L
/* A stopping agent waits this long for the last records. */
#define REC_UPLOAD_DRAIN_MS 3000u
/* The end frame a record left by a stopped agent gets at restart. */
#define REC_STOPPED_REASON "the agent stopped during the session"

struct rec_uploader;

struct rec_upload_cfg {
	const char *dir;        /* the spool directory (created 0700) */
	const char *endpoint;   /* https://host:port of portholed */
	const char *ca_file, *cert_file, *key_file;
	uint64_t spool_max;     /* unacknowledged bytes before backpressure */
	int no_thread;          /* tests: recover only, deliver nothing */
};

/* Create the spool directory, finish every record left in it (a partial
 * last frame cut off, an end frame added when it has none: the agent
 * stopped) and start delivering them. */
int rec_upload_new(struct rec_uploader **out, const struct rec_upload_cfg *c,
    char *err, size_t errlen);
/* Wait up to timeout_ms for every record to be completed (a clean stop
 * delivers the records of the sessions it just ended). */
void rec_upload_drain(struct rec_uploader *u, unsigned timeout_ms);
/* Stop the worker (an upload in flight is abandoned; the spool stays for
 * the next start) and free. */
void rec_upload_free(struct rec_uploader *u);
const char *rec_upload_dir(const struct rec_uploader *u);

/* A new record of session id: its first len bytes are on disk; ended
 * once its end frame is. Called from the loop's thread. */
int rec_upload_add(struct rec_uploader *u, const char *id);
void rec_upload_written(struct rec_uploader *u, const char *id,
    uint64_t len, int ended);
/* Bytes written but not yet acknowledged, over every record. */
uint64_t rec_upload_unacked(struct rec_uploader *u);
uint64_t rec_upload_spool_max(const struct rec_uploader *u);
/* Records not yet completed (tests, logs). */
size_t rec_upload_pending(struct rec_uploader *u);

/* Make the spool file at path a complete record: cut a partial last
 * frame (never below acked) and append an end frame saying the agent
 * stopped unless it ends with one. *len gets its final length. */
int rec_spool_finish(const char *path, uint64_t acked, uint64_t *len);

/* Parse {"length": N} of portholed's answer. */
int rec_upload_parse_length(const char *p, size_t n, uint64_t *len);

#endif
