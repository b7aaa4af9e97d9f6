/* records: the record endpoint and the record files (see records.h). */
#include "server/records.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/record.h"
#include "common/tls.h"
#include "server/api_json.h"
#include "server/records_render.h"
#include "server/sink.h"
#include "server/store.h"
#include "server/store_records.h"

#define RECORDS_RESP_MAX ((size_t)4 << 10)
#define RECORDS_JSON "application/json"
/* A byte offset or length in a query: at most 18 digits (< 2^63). */
#define RECORDS_NUM_DIGITS 18
/* Records rendered at one start (more wait for the next). */
#define RECORDS_START_RENDER_MAX 1000

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

/* The file half of an append, after the checks: it may run on the
 * thread pool (it reads srv's data_dir only). */
static int
append_run(const struct server *srv, const char *sid, int64_t offset,
    const uint8_t *body, size_t len, int complete, int *status,
    struct buf *resp)
{
	char dir[600], path[700];
	int64_t length, skip;
	int rc;

	if (records_dir(srv, dir, sizeof(dir)) != 0 ||
	    records_file(srv, sid, "rec", path, sizeof(path)) != 0 ||
	    stored_length(path, &length) != 0)
		return api_json_error_body(resp, status, 503, "ServiceUnavailable",
		    "The record cannot be stored now");
	if (offset > length)
		return length_json(resp, status, 409, length);
	skip = length - offset;
	if ((uint64_t)skip >= len)
		return length_json(resp, status, 200, length);
	if (complete)
		return api_json_error_body(resp, status, 400, "ValidationException",
		    "The record is complete");
	rc = append_bytes(dir, path, body + skip, len - (size_t)skip, &length);
	if (rc == PH_ERR_AGAIN)   /* changed under us: the agent resends */
		return api_json_error_body(resp, status, 503, "ServiceUnavailable",
		    "The record changed; retry");
	if (rc != 0)
		return api_json_error_body(resp, status, 503, "ServiceUnavailable",
		    "The record cannot be stored now");
	return length_json(resp, status, 200, length);
}

/* An append that passed the checks, for append_run later. */
struct append_args {
	int deferred;
	int64_t offset;
	int complete;
};

static int
do_append(struct server *srv, const char *sid, const struct record_row *row,
    const char *query, const uint8_t *body, size_t len, int *status,
    struct buf *resp, struct append_args *defer)
{
	int64_t offset;

	if (query_number(query, "offset", &offset) != 0)
		return api_json_error_body(resp, status, 400, "ValidationException",
		    "The query must be offset=BYTES");
	if (len > RECORDS_REQUEST_MAX)
		return api_json_error_body(resp, status, 413, "RequestTooLarge",
		    "An append carries at most 4194304 bytes");
	if (len == 0)
		return api_json_error_body(resp, status, 400, "ValidationException",
		    "An append carries at least one byte");
	if (!magic_ok(offset, body, len))
		return api_json_error_body(resp, status, 400, "ValidationException",
		    "The record does not start with the record magic");
	if (defer != NULL) {
		defer->deferred = 1;
		defer->offset = offset;
		defer->complete = row->complete;
		return 0;
	}
	return append_run(srv, sid, offset, body, len, row->complete, status,
	    resp);
}

static int
do_complete(struct server *srv, const char *sid, const struct record_row *row,
    const char *query, int *status, struct buf *resp, int *complete_out)
{
	char path[700];
	int64_t want, length;
	int rc;

	if (query_number(query, "length", &want) != 0)
		return api_json_error_body(resp, status, 400, "ValidationException",
		    "The query must be length=BYTES");
	if (records_file(srv, sid, "rec", path, sizeof(path)) != 0 ||
	    stored_length(path, &length) != 0)
		return api_json_error_body(resp, status, 503, "ServiceUnavailable",
		    "The record cannot be read now");
	if (want != length)
		return length_json(resp, status, 409, length);
	if (length == 0)
		return api_json_error_body(resp, status, 400, "ValidationException",
		    "An empty record cannot be complete");
	if (row->complete)
		return length_json(resp, status, 200, length);
	rc = store_record_complete(srv->store, sid, length, wall_ms());
	if (rc == PH_ERR_STATE)
		return length_json(resp, status, 409, row->length);
	if (rc != 0)
		return api_json_error_body(resp, status, 503, "ServiceUnavailable",
		    "The record cannot be completed now");
	log_info("event=record_complete session=%s length=%lld", sid,
	    (long long)length);
	if (complete_out != NULL)
		*complete_out = 1;
	return length_json(resp, status, 200, length);
}

static int
process(struct server *srv, const char *method, const char *path,
    const char *query, const char *peer_cn, const uint8_t *body, size_t len,
    int *status, struct buf *resp, int *complete_out,
    struct append_args *defer)
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
		return api_json_error_body(resp, status, 405, "MethodNotAllowed",
		    "Use POST");
	if (!records_is_request(path))
		return api_json_error_body(resp, status, 404, "NotFound",
		    "No such endpoint");
	rest = path + sizeof(RECORDS_PATH_PREFIX) - 1;
	slash = strchr(rest, '/');
	n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	complete = slash != NULL;
	if ((complete && strcmp(slash, complete_sfx) != 0) ||
	    !records_valid_session_id(rest, n))
		return api_json_error_body(resp, status, 400, "ValidationException",
		    "The path must be /v1/record/SESSION-ID[/complete]");
	memcpy(sid, rest, n);
	sid[n] = '\0';

	/* Only the session's target delivers its record; an unknown
	 * session looks the same as somebody else's. */
	rc = store_session_get(srv->store, sid, &sess);
	if (rc != 0 && rc != PH_ERR_NOTFOUND)
		return api_json_error_body(resp, status, 503, "ServiceUnavailable",
		    "The session cannot be looked up now");
	if (rc != 0 || peer_cn == NULL || strcmp(peer_cn, sess.target) != 0) {
		log_limited(LOG_WARN, "record_refused",
		    "event=record_refused session=%.96s instance=%.64s", sid,
		    peer_cn != NULL ? peer_cn : "-");
		return api_json_error_body(resp, status, 403, "AccessDeniedException",
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
		return api_json_error_body(resp, status, 503, "ServiceUnavailable",
		    "The record cannot be looked up now");
	if (complete)
		return do_complete(srv, sid, &row, query, status, resp,
		    complete_out);
	return do_append(srv, sid, &row, query, body, len, status, resp,
	    defer);
}

int
records_process(struct server *srv, const char *method, const char *path,
    const char *query, const char *peer_cn, const uint8_t *body, size_t len,
    int *status, struct buf *resp, int *complete_out)
{
	return process(srv, method, path, query, peer_cn, body, len, status,
	    resp, complete_out, NULL);
}

/* ---- appends on the thread pool ----------------------------------------- */

/* Appends wait in one queue and are written one at a time off the loop:
 * an fdatasync never stalls the sessions, and two appends to one record
 * never race. */
#define RECORDS_QUEUE_MAX 256

struct append_job {
	uv_work_t work;
	struct records *owner;
	struct http_request *req;
	char sid[SESSION_ID_MAX];
	struct append_args args;
	const uint8_t *body;       /* the request's, valid until answered */
	size_t len;
	int status;
	struct buf resp;
	struct append_job *next;
};

struct records {
	struct server *srv;
	struct append_job *head, *tail;
	size_t queued;
	int busy;
};

static void append_kick(struct records *r);

static void
append_respond(struct append_job *j)
{
	static const char oom[] = "{\"__type\":\"InternalServerError\","
	    "\"message\":\"out of memory\"}";

	if (j->status == 0)
		http_respond(j->req, 500, RECORDS_JSON, NULL, oom,
		    sizeof(oom) - 1);
	else
		http_respond(j->req, j->status, RECORDS_JSON, NULL,
		    j->resp.data, j->resp.len);
	buf_free(&j->resp);
	free(j);
}

static void
append_work(uv_work_t *w)
{
	struct append_job *j = w->data;

	if (append_run(j->owner->srv, j->sid, j->args.offset, j->body,
	    j->len, j->args.complete, &j->status, &j->resp) != 0)
		j->status = 0;
}

static struct append_job *
append_pop(struct records *r)
{
	struct append_job *j = r->head;

	if (j != NULL) {
		r->head = j->next;
		if (r->head == NULL)
			r->tail = NULL;
		r->queued--;
	}
	return j;
}

static void
append_after(uv_work_t *w, int status)
{
	struct append_job *j = w->data;
	struct records *r = j->owner;

	(void)append_pop(r);
	r->busy = 0;
	if (status != 0)
		(void)api_json_error_body(&j->resp, &j->status, 503,
		    "ServiceUnavailable", "The record cannot be stored now");
	append_respond(j);
	append_kick(r);
}

static void
append_kick(struct records *r)
{
	struct append_job *j;

	while (!r->busy && (j = r->head) != NULL) {
		j->work.data = j;
		if (uv_queue_work(r->srv->loop, &j->work, append_work,
		    append_after) == 0) {
			r->busy = 1;
			return;
		}
		(void)append_pop(r);
		(void)api_json_error_body(&j->resp, &j->status, 503,
		    "ServiceUnavailable", "The record cannot be stored now");
		append_respond(j);
	}
}

int
records_open(struct server *srv)
{
	struct records *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return PH_ERR_NOMEM;
	r->srv = srv;
	srv->records = r;
	return 0;
}

void
records_close(struct server *srv)
{
	struct records *r = srv->records;
	struct append_job *j;

	if (r == NULL)
		return;
	/* Only when the loop has stopped: nothing is in flight. */
	while ((j = append_pop(r)) != NULL) {
		(void)api_json_error_body(&j->resp, &j->status, 503,
		    "ServiceUnavailable", "portholed is stopping");
		append_respond(j);
	}
	free(r);
	srv->records = NULL;
}

/* Queue a checked append; the request is answered when it is written. */
static int
append_queue(struct records *r, struct http_request *req,
    const struct append_args *args)
{
	struct append_job *j;
	const char *p;
	size_t n;

	if (r->queued >= RECORDS_QUEUE_MAX ||
	    (j = calloc(1, sizeof(*j))) == NULL)
		return PH_ERR_AGAIN;
	j->owner = r;
	j->req = req;
	j->args = *args;
	j->body = req->body;
	j->len = req->body_len;
	/* The path was checked: /v1/record/SESSION-ID. */
	p = req->path + sizeof(RECORDS_PATH_PREFIX) - 1;
	n = strcspn(p, "/");
	snprintf(j->sid, sizeof(j->sid), "%.*s", (int)n, p);
	buf_init(&j->resp, RECORDS_RESP_MAX);
	if (r->tail != NULL)
		r->tail->next = j;
	else
		r->head = j;
	r->tail = j;
	r->queued++;
	append_kick(r);
	return 0;
}

void
records_handle(struct server *srv, struct http_request *req)
{
	static const char oom[] = "{\"__type\":\"InternalServerError\","
	    "\"message\":\"out of memory\"}";
	int status = 500, complete = 0;
	struct append_args defer;
	char sid[SESSION_ID_MAX];
	struct buf resp;
	const char *p;
	size_t n;

	memset(&defer, 0, sizeof(defer));
	buf_init(&resp, RECORDS_RESP_MAX);
	if (process(srv, req->method, req->path, req->query,
	    conn_peer_cn(req->conn), req->body, req->body_len, &status,
	    &resp, &complete, srv->records != NULL ? &defer : NULL) != 0) {
		http_respond(req, 500, RECORDS_JSON, NULL, oom,
		    sizeof(oom) - 1);
	} else if (defer.deferred) {
		if (append_queue(srv->records, req, &defer) != 0) {
			(void)api_json_error_body(&resp, &status, 503,
			    "ServiceUnavailable", "Too many appends wait; "
			    "retry");
			http_respond(req, status, RECORDS_JSON, NULL,
			    resp.data, resp.len);
		}
	} else {
		/* The path was checked: /v1/record/SESSION-ID/complete. */
		if (complete) {
			p = req->path + sizeof(RECORDS_PATH_PREFIX) - 1;
			n = strcspn(p, "/");
			snprintf(sid, sizeof(sid), "%.*s", (int)n, p);
		}
		http_respond(req, status, RECORDS_JSON, NULL, resp.data,
		    resp.len);
		if (complete && records_render(srv, sid) != 0)
			log_warn("event=record_render_deferred session=%s",
			    sid);
	}
	buf_free(&resp);
}

/* ---- rendering ----------------------------------------------------------- */

enum { RENDER_CAST, RENDER_LOG, RENDER_N };

static const char *const render_ext[RENDER_N] = { "cast", "log" };

/* Write one render to EXT.tmp, sync it and rename it into place, so a
 * crash leaves either the whole file or none. */
static int
render_one(const struct server *srv, const char *sid, int which,
    const uint8_t *rec, size_t len)
{
	char path[700], tmp[720];
	struct render_stats st;
	FILE *fp = NULL;
	int fd, rc;

	if ((rc = records_file(srv, sid, render_ext[which], path,
	    sizeof(path))) != 0)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0 || (fp = fdopen(fd, "w")) == NULL) {
		log_error("event=record_render_failed session=%s file=%s "
		    "err=\"%s\"", sid, render_ext[which], strerror(errno));
		if (fd >= 0)
			close(fd);
		(void)unlink(tmp);
		return PH_ERR_IO;
	}
	rc = which == RENDER_CAST ? records_render_cast(rec, len, fp, &st) :
	    records_render_log(rec, len, fp, &st);
	if (rc == 0 && (fflush(fp) != 0 || fsync(fd) != 0))
		rc = PH_ERR_IO;
	if (fclose(fp) != 0 && rc == 0)
		rc = PH_ERR_IO;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = PH_ERR_IO;
	if (rc != 0) {
		(void)unlink(tmp);
		if (rc != PH_ERR_INVALID)
			log_error("event=record_render_failed session=%s "
			    "file=%s err=%s", sid, render_ext[which],
			    ph_strerror(rc));
		return rc;
	}
	if (st.damaged || st.partial)
		log_warn("event=record_damaged session=%s frames=%llu "
		    "damaged=%d partial=%d note=\"rendered up to there\"", sid,
		    (unsigned long long)st.frames, st.damaged, st.partial);
	return 0;
}

int
records_render_files(const struct server *srv, const char *sid)
{
	char path[700], dir[600];
	struct record_reader r;
	struct record_header h;
	struct stat sb;
	void *map = NULL;
	int fd, rc = 0, i;

	if ((rc = records_file(srv, sid, "rec", path, sizeof(path))) != 0 ||
	    (rc = records_dir(srv, dir, sizeof(dir))) != 0)
		return rc;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return errno == ENOENT ? PH_ERR_NOTFOUND : PH_ERR_IO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return PH_ERR_IO;
	}
	if (sb.st_size == 0) {
		close(fd);
		return PH_ERR_INVALID;
	}
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return PH_ERR_IO;
	/* The agent writes the header; it names the session it records. */
	record_reader_init(&r, map, (size_t)sb.st_size);
	if (record_read_header(&r, &h) == 0 && (strcmp(h.session_id, sid) != 0
	    || !records_valid_session_id(h.instance_id,
	    strlen(h.instance_id))))
		log_warn("event=record_header_mismatch session=%s "
		    "note=\"the header names another session\"", sid);
	for (i = 0; i < RENDER_N && rc == 0; i++)
		rc = render_one(srv, sid, i, map, (size_t)sb.st_size);
	munmap(map, (size_t)sb.st_size);
	if (rc == 0)
		rc = sync_dir(dir);
	return rc;
}

struct render_job {
	uv_work_t work;
	struct server *srv;
	char sid[SESSION_ID_MAX];
	int rc;
};

static void
render_work(uv_work_t *w)
{
	struct render_job *j = w->data;

	j->rc = records_render_files(j->srv, j->sid);
}

/* Hand the files that exist to the sink with the session's preferences;
 * only then is the record rendered for good. */
static int
render_deliver(struct server *srv, const char *sid, int rendered)
{
	static const char *const exts[] = { "rec", "cast", "log" };
	char files[3][700];
	const char *paths[3];
	struct sink_item it;
	struct record_row row;
	size_t n = 0, i;
	int rc;

	if (srv->sink == NULL)
		return PH_ERR_STATE;    /* shutting down: the next start */
	if ((rc = store_record_get(srv->store, sid, &row)) != 0)
		return rc;
	for (i = 0; i < 3; i++) {
		if (i > 0 && !rendered)
			break;
		if (records_file(srv, sid, exts[i], files[n],
		    sizeof(files[n])) != 0)
			return PH_ERR_INVALID;
		paths[n] = files[n];
		n++;
	}
	memset(&it, 0, sizeof(it));
	it.session_id = sid;
	it.bucket = row.prefs.bucket;
	it.key_prefix = row.prefs.key_prefix;
	it.encrypt = row.prefs.encrypt;
	it.kms_key_id = row.prefs.kms_key_id;
	it.paths = paths;
	it.npaths = n;
	if ((rc = sink_enqueue(srv->sink, &it)) != 0)
		return rc;
	return store_record_set_rendered(srv->store, sid);
}

static void
render_after(uv_work_t *w, int status)
{
	struct render_job *j = w->data;
	int rc = j->rc;

	if (status != 0)
		rc = PH_ERR_STATE;
	/* A .rec that is not a record still goes to the sink as it is. */
	if (rc == 0 || rc == PH_ERR_INVALID)
		rc = render_deliver(j->srv, j->sid, rc == 0);
	if (rc == 0)
		log_info("event=record_queued session=%s rendered=%d",
		    j->sid, j->rc == 0);
	else
		log_warn("event=record_render_deferred session=%s err=%s "
		    "note=\"tried again at the next start\"", j->sid,
		    ph_strerror(rc));
	free(j);
}

int
records_render(struct server *srv, const char *sid)
{
	struct render_job *j;
	int rc;

	if (!records_valid_session_id(sid, strlen(sid)))
		return PH_ERR_INVALID;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return PH_ERR_NOMEM;
	j->srv = srv;
	snprintf(j->sid, sizeof(j->sid), "%s", sid);
	j->work.data = j;
	if ((rc = uv_queue_work(srv->loop, &j->work, render_work,
	    render_after)) != 0) {
		free(j);
		return PH_ERR_IO;
	}
	return 0;
}

static int
start_cb(void *arg, const struct record_row *r)
{
	struct server *srv = arg;

	(void)records_render(srv, r->session_id);
	return 0;
}

void
records_start(struct server *srv)
{
	char path[600];
	json_error_t jerr;
	json_t *o, *v;

	snprintf(path, sizeof(path), "%s/config.json", srv->data_dir);
	o = json_load_file(path, 0, &jerr);
	v = json_object_get(o, "RecordingStrict");
	if (v != NULL && !json_is_boolean(v))
		log_warn("event=config_ignored key=RecordingStrict "
		    "note=\"not true or false\"");
	srv->recording_strict = json_is_true(v);
	json_decref(o);
	if (srv->records == NULL && records_open(srv) != 0)
		log_warn("event=records_queue_failed note=\"appends are "
		    "written on the loop's thread\"");
	log_info("event=recording strict=%d", srv->recording_strict);
	if (store_record_foreach_unrendered(srv->store,
	    RECORDS_START_RENDER_MAX, start_cb, srv) != 0)
		log_warn("event=record_render_scan_failed");
}

/* ---- preferences --------------------------------------------------------- */

void
records_prefs_from_inputs(json_t *inputs, struct record_prefs *out)
{
	const char *s;
	json_t *v;

	memset(out, 0, sizeof(*out));
	if ((s = json_string_value(json_object_get(inputs,
	    "s3BucketName"))) != NULL)
		snprintf(out->bucket, sizeof(out->bucket), "%s", s);
	if ((s = json_string_value(json_object_get(inputs,
	    "s3KeyPrefix"))) != NULL)
		snprintf(out->key_prefix, sizeof(out->key_prefix), "%s", s);
	if ((s = json_string_value(json_object_get(inputs,
	    "kmsKeyId"))) != NULL)
		snprintf(out->kms_key_id, sizeof(out->kms_key_id), "%s", s);
	v = json_object_get(inputs, "s3EncryptionEnabled");
	out->encrypt = json_is_true(v) || (json_is_string(v) &&
	    strcmp(json_string_value(v), "true") == 0);
}

int
records_strict_check(struct server *srv, const struct record_prefs *p,
    char *why, size_t size)
{
	struct sink_status ss;

	if (!srv->recording_strict || p->bucket[0] == '\0' ||
	    srv->sink == NULL)
		return 0;
	sink_status(srv->sink, &ss);
	if (ss.healthy)
		return 0;
	snprintf(why, size, "Session recording is required "
	    "(RecordingStrict) and the record store for bucket %s is not "
	    "available: %s", p->bucket, ss.last_error[0] != '\0' ?
	    ss.last_error : "uploads are failing");
	return PH_ERR_STATE;
}
