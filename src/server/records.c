/* records: the record endpoint and the record files (see records.h). */
#include "server/records.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/record.h"
#include "common/tls.h"
#include "server/store.h"
#include "server/store_records.h"

#define RECORDS_RESP_MAX ((size_t)4 << 10)
#define RECORDS_JSON "application/json"
/* A byte offset or length in a query: at most 18 digits (< 2^63). */
#define RECORDS_NUM_DIGITS 18

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
records_is_request(const char *path)
{
	return path != NULL && strncmp(path, RECORDS_PATH_PREFIX,
	    sizeof(RECORDS_PATH_PREFIX) - 1) == 0;
}

int
records_valid_session_id(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len >= SESSION_ID_MAX)
		return 0;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' &&
	    s[1] == '.'))
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("_.@=,+-", c) != NULL) ||
		    c == '\0')
			return 0;
	}
	return 1;
}

int
records_file(const struct server *srv, const char *session_id,
    const char *ext, char *out, size_t size)
{
	int n;

	if (session_id == NULL ||
	    !records_valid_session_id(session_id, strlen(session_id)))
		return PH_ERR_INVALID;
	n = snprintf(out, size, "%s/" RECORDS_DIR "/%s.%s", srv->data_dir,
	    session_id, ext);
	return n < 0 || (size_t)n >= size ? PH_ERR_TOOBIG : 0;
}

/* DATA_DIR/records, 0700; an existing one is tightened to 0700. */
static int
records_dir(const struct server *srv, char *out, size_t size)
{
	struct stat sb;
	int n;

	n = snprintf(out, size, "%s/" RECORDS_DIR, srv->data_dir);
	if (n < 0 || (size_t)n >= size)
		return PH_ERR_TOOBIG;
	if (mkdir(out, 0700) != 0 && errno != EEXIST) {
		log_error("event=records_dir_failed err=\"%s\"",
		    strerror(errno));
		return PH_ERR_IO;
	}
	if (lstat(out, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		log_error("event=records_dir_failed err=\"not a directory\"");
		return PH_ERR_IO;
	}
	if ((sb.st_mode & 0077) != 0 && chmod(out, 0700) != 0)
		return PH_ERR_IO;
	return 0;
}

/* {"length": L} */
static int
length_json(struct buf *resp, int *status, int code, int64_t length)
{
	*status = code;
	buf_reset(resp);
	return buf_appendf(resp, "{\"length\":%lld}", (long long)length);
}

/* {"__type": type, "message": msg} */
static int
error_json(struct buf *resp, int *status, int code, const char *type,
    const char *msg)
{
	json_t *o;
	char *s;
	int rc;

	*status = code;
	buf_reset(resp);
	o = json_pack("{s:s, s:s}", "__type", type, "message", msg);
	if (o == NULL)
		return PH_ERR_NOMEM;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		return PH_ERR_NOMEM;
	rc = buf_append_str(resp, s);
	free(s);
	return rc;
}

/* The query must be exactly "NAME=DIGITS". */
static int
query_number(const char *query, const char *name, int64_t *out)
{
	size_t n = strlen(name), i;
	int64_t v = 0;
	const char *p;

	if (query == NULL || strncmp(query, name, n) != 0 || query[n] != '=')
		return PH_ERR_INVALID;
	p = query + n + 1;
	for (i = 0; p[i] != '\0'; i++) {
		if (p[i] < '0' || p[i] > '9' || i >= RECORDS_NUM_DIGITS)
			return PH_ERR_INVALID;
		v = v * 10 + (p[i] - '0');
	}
	if (i == 0)
		return PH_ERR_INVALID;
	*out = v;
	return 0;
}

/* The stored length: the size of the .rec file, 0 if there is none. */
static int
stored_length(const char *path, int64_t *out)
{
	struct stat sb;

	if (lstat(path, &sb) != 0) {
		if (errno != ENOENT)
			return PH_ERR_IO;
		*out = 0;
		return 0;
	}
	if (!S_ISREG(sb.st_mode))
		return PH_ERR_IO;
	*out = (int64_t)sb.st_size;
	return 0;
}

static int
sync_dir(const char *dir)
{
	int fd, rc = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return PH_ERR_IO;
	if (fsync(fd) != 0)
		rc = PH_ERR_IO;
	close(fd);
	return rc;
}

/* Write body[skip..len) at the end of the file (its length is *length),
 * fdatasync it, and advance *length. A failed write is cut off again so
 * the stored length stays what was acknowledged. */
static int
append_bytes(const char *dir, const char *path, const uint8_t *p,
    size_t n, int64_t *length)
{
	int fd, created = 0, rc = 0;
	struct stat sb;
	size_t done = 0;
	ssize_t w;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd >= 0)
		created = 1;
	else if (errno == EEXIST)
		fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		log_error("event=record_write_failed err=\"%s\"",
		    strerror(errno));
		return PH_ERR_IO;
	}
	/* The length under the open descriptor, not a stale one. */
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    (int64_t)sb.st_size != *length) {
		close(fd);
		return PH_ERR_AGAIN;
	}
	while (done < n) {
		w = pwrite(fd, p + done, n - done, (off_t)(*length + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("event=record_write_failed err=\"%s\"",
			    w < 0 ? strerror(errno) : "short write");
			rc = PH_ERR_IO;
			break;
		}
		done += (size_t)w;
	}
	if (rc == 0 && fdatasync(fd) != 0) {
		log_error("event=record_write_failed op=fdatasync err=\"%s\"",
		    strerror(errno));
		rc = PH_ERR_IO;
	}
	if (rc != 0 && ftruncate(fd, (off_t)*length) != 0)
		log_error("event=record_truncate_failed err=\"%s\"",
		    strerror(errno));
	close(fd);
	if (rc == 0 && created && sync_dir(dir) != 0)
		rc = PH_ERR_IO;
	if (rc == 0)
		*length += (int64_t)n;
	return rc;
}

/* Does the part of the body that lies in the magic match it? */
static int
magic_ok(int64_t offset, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && (int64_t)i + offset < RECORD_MAGIC_LEN; i++)
		if (p[i] != (uint8_t)RECORD_MAGIC[offset + (int64_t)i])
			return 0;
	return 1;
}

static int
do_append(struct server *srv, const char *sid, const struct record_row *row,
    const char *query, const uint8_t *body, size_t len, int *status,
    struct buf *resp)
{
	char dir[600], path[700];
	int64_t offset, length, skip;
	int rc;

	if (query_number(query, "offset", &offset) != 0)
		return error_json(resp, status, 400, "ValidationException",
		    "The query must be offset=BYTES");
	if (len > RECORDS_REQUEST_MAX)
		return error_json(resp, status, 413, "RequestTooLarge",
		    "An append carries at most 4194304 bytes");
	if (len == 0)
		return error_json(resp, status, 400, "ValidationException",
		    "An append carries at least one byte");
	if (!magic_ok(offset, body, len))
		return error_json(resp, status, 400, "ValidationException",
		    "The record does not start with the record magic");
	if (records_dir(srv, dir, sizeof(dir)) != 0 ||
	    records_file(srv, sid, "rec", path, sizeof(path)) != 0 ||
	    stored_length(path, &length) != 0)
		return error_json(resp, status, 503, "ServiceUnavailable",
		    "The record cannot be stored now");
	if (offset > length)
		return length_json(resp, status, 409, length);
	skip = length - offset;
	if ((uint64_t)skip >= len)
		return length_json(resp, status, 200, length);
	if (row->complete)
		return error_json(resp, status, 400, "ValidationException",
		    "The record is complete");
	rc = append_bytes(dir, path, body + skip, len - (size_t)skip, &length);
	if (rc == PH_ERR_AGAIN)   /* changed under us: the agent resends */
		return error_json(resp, status, 503, "ServiceUnavailable",
		    "The record changed; retry");
	if (rc != 0)
		return error_json(resp, status, 503, "ServiceUnavailable",
		    "The record cannot be stored now");
	return length_json(resp, status, 200, length);
}

static int
do_complete(struct server *srv, const char *sid, const struct record_row *row,
    const char *query, int *status, struct buf *resp, int *complete_out)
{
	char path[700];
	int64_t want, length;
	int rc;

	if (query_number(query, "length", &want) != 0)
		return error_json(resp, status, 400, "ValidationException",
		    "The query must be length=BYTES");
	if (records_file(srv, sid, "rec", path, sizeof(path)) != 0 ||
	    stored_length(path, &length) != 0)
		return error_json(resp, status, 503, "ServiceUnavailable",
		    "The record cannot be read now");
	if (want != length)
		return length_json(resp, status, 409, length);
	if (row->complete)
		return length_json(resp, status, 200, length);
	rc = store_record_complete(srv->store, sid, length, wall_ms());
	if (rc == PH_ERR_STATE)
		return length_json(resp, status, 409, row->length);
	if (rc != 0)
		return error_json(resp, status, 503, "ServiceUnavailable",
		    "The record cannot be completed now");
	log_info("event=record_complete session=%s length=%lld", sid,
	    (long long)length);
	if (complete_out != NULL)
		*complete_out = 1;
	return length_json(resp, status, 200, length);
}

int
records_process(struct server *srv, const char *method, const char *path,
    const char *query, const char *peer_cn, const uint8_t *body, size_t len,
    int *status, struct buf *resp, int *complete_out)
{
	static const char complete_sfx[] = "/complete";
	char sid[SESSION_ID_MAX];
	struct session_rec sess;
	struct record_row row;
	const char *rest, *slash;
	size_t n;
	int rc, complete;

	if (complete_out != NULL)
		*complete_out = 0;
	if (resp->max < RECORDS_RESP_MAX)
		resp->max = RECORDS_RESP_MAX;
	if (method == NULL || strcmp(method, "POST") != 0)
		return error_json(resp, status, 405, "MethodNotAllowed",
		    "Use POST");
	if (!records_is_request(path))
		return error_json(resp, status, 404, "NotFound",
		    "No such endpoint");
	rest = path + sizeof(RECORDS_PATH_PREFIX) - 1;
	slash = strchr(rest, '/');
	n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	complete = slash != NULL;
	if ((complete && strcmp(slash, complete_sfx) != 0) ||
	    !records_valid_session_id(rest, n))
		return error_json(resp, status, 400, "ValidationException",
		    "The path must be /v1/record/SESSION-ID[/complete]");
	memcpy(sid, rest, n);
	sid[n] = '\0';

	/* Only the session's target delivers its record; an unknown
	 * session looks the same as somebody else's. */
	rc = store_session_get(srv->store, sid, &sess);
	if (rc != 0 && rc != PH_ERR_NOTFOUND)
		return error_json(resp, status, 503, "ServiceUnavailable",
		    "The session cannot be looked up now");
	if (rc != 0 || peer_cn == NULL || strcmp(peer_cn, sess.target) != 0) {
		log_limited(LOG_WARN, "record_refused",
		    "event=record_refused session=%.96s instance=%.64s", sid,
		    peer_cn != NULL ? peer_cn : "-");
		return error_json(resp, status, 403, "AccessDeniedException",
		    "The certificate is not the session's target's");
	}
	rc = store_record_get(srv->store, sid, &row);
	if (rc == PH_ERR_NOTFOUND) {
		/* A session started before recording existed: local. */
		rc = store_record_create(srv->store, sid, NULL, wall_ms());
		if (rc == 0 || rc == PH_ERR_EXISTS)
			rc = store_record_get(srv->store, sid, &row);
	}
	if (rc != 0)
		return error_json(resp, status, 503, "ServiceUnavailable",
		    "The record cannot be looked up now");
	if (complete)
		return do_complete(srv, sid, &row, query, status, resp,
		    complete_out);
	return do_append(srv, sid, &row, query, body, len, status, resp);
}

void
records_handle(struct server *srv, struct http_request *req)
{
	static const char oom[] = "{\"__type\":\"InternalServerError\","
	    "\"message\":\"out of memory\"}";
	int status = 500, complete = 0;
	struct buf resp;

	buf_init(&resp, RECORDS_RESP_MAX);
	if (records_process(srv, req->method, req->path, req->query,
	    conn_peer_cn(req->conn), req->body, req->body_len, &status,
	    &resp, &complete) != 0)
		http_respond(req, 500, RECORDS_JSON, NULL, oom,
		    sizeof(oom) - 1);
	else
		http_respond(req, status, RECORDS_JSON, NULL, resp.data,
		    resp.len);
	buf_free(&resp);
}
