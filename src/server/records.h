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

#include "common/buf.h"
#include "common/http.h"
#include "server/server.h"

#define RECORDS_DIR "records"
#define RECORDS_PATH_PREFIX "/v1/record/"
/* One append's body. */
#define RECORDS_REQUEST_MAX ((size_t)4 << 20)

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

#endif
