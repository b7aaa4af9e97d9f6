/* records: portholed's side of session recording. The agent delivers
 * each session's raw record (common/record.h) over HTTPS with its
 * mutual-TLS certificate:
 *   POST /v1/record/SESSION-ID?offset=N          append (1..4 MiB)
 *   POST /v1/record/SESSION-ID/complete?length=N  the record is whole
 * The bytes go to DATA_DIR/records/SESSION-ID.rec (0600, directory
 * 0700), fdatasync'd before the answer, so an acknowledged byte survives
 * a crash of portholed. A complete record is rendered as an asciicast v2
 * file (.cast) and a plain-text transcript (.log) next to it, and the
 * three files are handed to the sink (sink.h). */
#ifndef PORTHOLE_RECORDS_H
#define PORTHOLE_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/http.h"
#include "server/store_records.h"
#include "server/server.h"

#define RECORDS_DIR "records"
#define RECORDS_PATH_PREFIX "/v1/record/"
/* One append's body. */
#define RECORDS_REQUEST_MAX ((size_t)4 << 20)

/* The append queue (srv->records): appends are written on the thread
 * pool, one at a time. records_close only after the loop has run out:
 * appends still waiting are answered 503. Without it records_handle
 * writes on the loop's thread. */
int records_open(struct server *srv);
void records_close(struct server *srv);

/* Is this request for the record endpoint? */
int records_is_request(const char *path);
void records_handle(struct server *srv, struct http_request *req);

/* Everything records_handle does but the HTTP plumbing: status and JSON
 * body in resp. *complete_out (optional) is set to 1 when the answer
 * completed the record, which the caller then renders. 0, or an error
 * when resp could not be filled. */
int records_process(struct server *srv, const char *method,
    const char *path, const char *query, const char *peer_cn,
    const uint8_t *body, size_t len, int *status, struct buf *resp,
    int *complete_out);

/* DATA_DIR/records/SESSION-ID.EXT ("rec", "cast", "log"). PH_ERR_INVALID
 * for a session id that is not one. */
int records_file(const struct server *srv, const char *session_id,
    const char *ext, char *out, size_t size);
/* A session id as portholed makes them: 1..96 of [A-Za-z0-9_.@=,+-],
 * not "." or "..". */
int records_valid_session_id(const char *s, size_t len);

/* Render SESSION-ID.cast and .log from its .rec now, in this thread
 * (the work of records_render). 0, PH_ERR_INVALID when the .rec is not a
 * record (no renders: the .rec alone goes to the sink), PH_ERR_NOTFOUND
 * without a .rec, PH_ERR_IO. */
int records_render_files(const struct server *srv, const char *session_id);
/* Render a complete record on the thread pool, then queue its files to
 * srv->sink and mark it rendered (a failure leaves it for the next
 * start). */
int records_render(struct server *srv, const char *session_id);
/* The recording inputs of a resolved session document's "inputs"
 * (s3BucketName, s3KeyPrefix, s3EncryptionEnabled, kmsKeyId). */
void records_prefs_from_inputs(json_t *inputs, struct record_prefs *out);
/* Strict mode: PH_ERR_STATE (why filled) when the session would record
 * to a bucket while the sink is unhealthy, else 0. */
int records_strict_check(struct server *srv, const struct record_prefs *p,
    char *why, size_t size);

/* portholed's start: config.json's RecordingStrict, the append queue
 * (records_open), then every complete record whose renders are missing.
 * Call after the sink is open. */
void records_start(struct server *srv);

#endif
