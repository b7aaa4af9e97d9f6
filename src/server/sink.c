/* sink: the durable delivery queue of finished records (sink.h). Every
 * file of an item is a row of the store's sink_queue; a local-only item
 * is delivered when queued. Files for a bucket are uploaded one at a time
 * on libuv's thread pool (s3_upload blocks); the loop thread alone reads
 * and writes the store. A failed upload is retried with exponential
 * backoff per file, and when one succeeds the bucket's other waiting
 * files are tried at once. The local copy is deleted only after the
 * bucket confirmed the object and the row was marked delivered. */
#include "server/sink.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/err.h"
#include "common/log.h"
#include "server/s3.h"
#include "server/store_sink.h"

#define SINK_PATHS_MAX 8
#define SINK_PREFIX_MAX 512
#define SINK_RETRY_MIN_S 1
#define SINK_RETRY_MAX_S 300
/* While failing, one summary line at most this often. */
#define SINK_FAIL_LOG_MS 60000
/* Files found missing before the next timer turn. */
#define SINK_SCAN_MAX 64
/* A store that cannot be read is tried again after this. */
#define SINK_STORE_RETRY_MS 5000
/* sink_close waits this many loop turns for an upload to stop. */
#define SINK_CLOSE_TURNS 10000

struct sink {
	struct server *srv;
	struct s3_config cfg;
	int64_t retry_min_ms;
	int64_t retry_max_ms;
	int keep_local;
	uv_timer_t timer;
	int timer_closed;
	uv_work_t work;
	int busy;
	int closing;
	atomic_int abort;
	struct sink_row job;         /* the file being uploaded */
	int job_rc;
	char job_err[256];
	int healthy;
	char last_error[256];
	int64_t fail_logged_ms;
	int64_t hold_until_ms;       /* no upload before (store trouble) */
};

static void sink_kick(struct sink *s);
static const char *sink_ext(const char *path);

static int64_t
sink_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An optional whole number of seconds in 1..max. */
static int
sink_config_seconds(json_t *o, const char *key, int64_t dflt, int64_t max,
    int64_t *out)
{
	json_t *v = json_object_get(o, key);
	json_int_t n;

	*out = dflt * 1000;
	if (v == NULL)
		return 0;
	n = json_is_integer(v) ? json_integer_value(v) : 0;
	if (n < 1 || n > max) {
		log_warn("event=config_ignored key=%s note=\"not a whole "
		    "number from 1 to %lld\"", key, (long long)max);
		return 0;
	}
	*out = (int64_t)n * 1000;
	return 0;
}

/* DATA_DIR/config.json's sink and S3 keys (docs/operator.md). */
static int
sink_load_config(struct sink *s)
{
	char path[600], why[200];
	json_error_t jerr;
	struct stat sb;
	json_t *o, *v;
	int rc;

	snprintf(path, sizeof(path), "%s/config.json", s->srv->data_dir);
	o = json_load_file(path, 0, &jerr);
	rc = s3_config_load(&s->cfg, o, s->srv->region, why, sizeof(why));
	if (rc != 0) {
		log_error("event=config_invalid file=%s note=\"%s\"", path,
		    why);
		goto done;
	}
	if (s->cfg.secret_key[0] != '\0' && stat(path, &sb) == 0 &&
	    (sb.st_mode & 077) != 0)
		log_warn("event=config_permissions file=%s mode=%03o "
		    "note=\"holds S3SecretAccessKey: make it 0600\"", path,
		    (unsigned)(sb.st_mode & 0777));
	sink_config_seconds(o, "SinkRetryMinSeconds", SINK_RETRY_MIN_S,
	    SINK_RETRY_MAX_S, &s->retry_min_ms);
	sink_config_seconds(o, "SinkRetryMaxSeconds", SINK_RETRY_MAX_S,
	    24 * 3600, &s->retry_max_ms);
	if (s->retry_max_ms < s->retry_min_ms)
		s->retry_max_ms = s->retry_min_ms;
	v = json_object_get(o, "SinkKeepLocalCopy");
	if (v != NULL && !json_is_boolean(v))
		log_warn("event=config_ignored key=SinkKeepLocalCopy "
		    "note=\"not true or false\"");
	s->keep_local = json_is_true(v);
done:
	json_decref(o);
	return rc;
}

int
sink_open(struct server *srv, struct sink **out)
{
	struct sink *s;
	size_t depth = 0;
	int64_t oldest = 0;
	int rc;

	*out = NULL;
	if (srv == NULL || srv->loop == NULL || srv->store == NULL)
		return PH_ERR_INVALID;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return PH_ERR_NOMEM;
	s->srv = srv;
	s->healthy = 1;
	atomic_init(&s->abort, 0);
	if ((rc = sink_load_config(s)) != 0) {
		free(s);
		return rc;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		s3_config_clear(&s->cfg);
		free(s);
		return PH_ERR_IO;
	}
	uv_timer_init(srv->loop, &s->timer);
	s->timer.data = s;
	/* The queue alone does not keep portholed running. */
	uv_unref((uv_handle_t *)&s->timer);
	(void)store_sink_stats(srv->store, &depth, &oldest);
	log_info("event=sink_open depth=%zu oldest_ms=%lld endpoint=\"%s\" "
	    "region=%s path_style=%d credentials=%s keep_local=%d",
	    depth, (long long)oldest, s->cfg.endpoint, s->cfg.region,
	    s->cfg.path_style, s->cfg.access_key[0] != '\0' ? "configured" :
	    "none", s->keep_local);
	*out = s;
	sink_kick(s);
	return 0;
}

static void
on_timer_closed(uv_handle_t *h)
{
	struct sink *s = h->data;

	s->timer_closed = 1;
}

void
sink_close(struct sink *s)
{
	int i;

	if (s == NULL)
		return;
	s->closing = 1;
	atomic_store(&s->abort, 1);
	uv_timer_stop(&s->timer);
	if (s->busy)
		(void)uv_cancel((uv_req_t *)&s->work);
	uv_close((uv_handle_t *)&s->timer, on_timer_closed);
	/* The upload stops at its next progress callback (about a second);
	 * its row stays queued for the next start. */
	for (i = 0; i < SINK_CLOSE_TURNS && (s->busy || !s->timer_closed);
	    i++)
		uv_run(s->srv->loop, UV_RUN_ONCE);
	if (s->busy) {
		/* Never free what a worker still reads. */
		log_error("event=sink_close_stuck");
		return;
	}
	s3_config_clear(&s->cfg);
	curl_global_cleanup();
	free(s);
}

/* ---- the uploader -------------------------------------------------------- */

static void
upload_work(uv_work_t *w)
{
	struct sink *s = w->data;
	struct s3_object o;
	const char *ext;

	memset(&o, 0, sizeof(o));
	o.bucket = s->job.bucket;
	o.key = s->job.object_key;
	o.sse = (enum s3_sse)s->job.sse;
	o.kms_key_id = s->job.kms_key_id;
	ext = sink_ext(s->job.path);
	if (strcmp(ext, ".log") == 0)
		o.content_type = "text/plain; charset=utf-8";
	else if (strcmp(ext, ".cast") == 0)
		o.content_type = "application/x-asciicast";
	s->job_err[0] = '\0';
	s->job_rc = s3_upload(&s->cfg, &o, s->job.path, &s->abort,
	    s->job_err, sizeof(s->job_err));
}

static void
sink_log_failing(struct sink *s, int64_t now)
{
	size_t depth = 0;
	int64_t oldest = 0;

	(void)store_sink_stats(s->srv->store, &depth, &oldest);
	log_warn("event=%s depth=%zu oldest_age_s=%lld bucket=%s "
	    "attempts=%d err=\"%s\"", s->healthy ? "sink_unhealthy" :
	    "sink_failing", depth, oldest > 0 ? (long long)(now - oldest) /
	    1000 : 0LL, s->job.bucket, s->job.attempts + 1, s->last_error);
	s->fail_logged_ms = now;
}

static void
upload_failed(struct sink *s, int64_t now)
{
	int64_t delay = s->retry_min_ms;
	int i;

	snprintf(s->last_error, sizeof(s->last_error), "%s",
	    s->job_err[0] != '\0' ? s->job_err : ph_strerror(s->job_rc));
	/* 1 s, 2 s, 4 s ... up to the maximum, per file. */
	for (i = 0; i < s->job.attempts && delay < s->retry_max_ms; i++)
		delay *= 2;
	if (delay > s->retry_max_ms)
		delay = s->retry_max_ms;
	/* A store that cannot note the retry must not make it at once. */
	if (store_sink_retry_at(s->srv->store, s->job.session_id,
	    s->job.path, now + delay) != 0)
		s->hold_until_ms = now + delay;
	if (s->healthy || now - s->fail_logged_ms >= SINK_FAIL_LOG_MS)
		sink_log_failing(s, now);
	s->healthy = 0;
}

static void
upload_done(struct sink *s, int64_t now)
{
	int rc;

	rc = store_sink_finish(s->srv->store, s->job.session_id, s->job.path,
	    SINK_DELIVERED, now);
	if (rc != 0) {
		/* Uploaded again later: a PUT of the same object is
		 * harmless, a lost row is not. */
		if (store_sink_retry_at(s->srv->store, s->job.session_id,
		    s->job.path, now + s->retry_max_ms) != 0)
			s->hold_until_ms = now + s->retry_max_ms;
		return;
	}
	log_info("event=sink_delivered session=%s bucket=%s key=\"%s\"",
	    s->job.session_id, s->job.bucket, s->job.object_key);
	if (!s->keep_local && unlink(s->job.path) != 0 && errno != ENOENT)
		log_warn("event=sink_unlink_failed path=\"%s\" errno=%d",
		    s->job.path, errno);
	if (!s->healthy) {
		size_t depth = 0;
		int64_t oldest = 0;

		(void)store_sink_wake(s->srv->store, s->job.bucket, now);
		(void)store_sink_stats(s->srv->store, &depth, &oldest);
		log_info("event=sink_healthy depth=%zu bucket=%s", depth,
		    s->job.bucket);
		s->healthy = 1;
		s->fail_logged_ms = 0;
	}
	s->last_error[0] = '\0';
}

static void
upload_after(uv_work_t *w, int status)
{
	struct sink *s = w->data;
	int64_t now = sink_now_ms();

	s->busy = 0;
	if (s->closing)
		return;          /* the row stays queued */
	if (status != 0)
		s->job_rc = PH_ERR_STATE;
	if (s->job_rc == 0)
		upload_done(s, now);
	else
		upload_failed(s, now);
	sink_kick(s);
}

static void
on_timer(uv_timer_t *t)
{
	sink_kick(t->data);
}

static void
sink_wait(struct sink *s, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	uv_timer_start(&s->timer, on_timer, (uint64_t)ms, 0);
}

/* The queue emptied while failing (its last failing files were lost):
 * no upload says the bucket is down any more. */
static void
sink_idle(struct sink *s)
{
	log_info("event=sink_healthy depth=0 note=\"nothing waits\"");
	s->healthy = 1;
	s->fail_logged_ms = 0;
	s->last_error[0] = '\0';
}

/* Start the next due upload, or wait for the next due time. */
static void
sink_kick(struct sink *s)
{
	struct stat sb;
	int64_t now, next_due;
	int i, rc;

	if (s->busy || s->closing || s->srv->shutting_down)
		return;
	uv_timer_stop(&s->timer);
	if ((now = sink_now_ms()) < s->hold_until_ms) {
		sink_wait(s, s->hold_until_ms - now);
		return;
	}
	for (i = 0; i < SINK_SCAN_MAX; i++) {
		now = sink_now_ms();
		rc = store_sink_next(s->srv->store, now, &s->job, &next_due);
		if (rc == PH_ERR_NOTFOUND) {
			if (next_due > 0)
				sink_wait(s, next_due - now);
			else if (!s->healthy)
				sink_idle(s);
			return;
		}
		if (rc != 0) {
			sink_wait(s, SINK_STORE_RETRY_MS);
			return;
		}
		if (stat(s->job.path, &sb) == 0 && S_ISREG(sb.st_mode))
			break;
		/* Nothing can bring it back: say so loudly, once. */
		log_error("event=sink_file_lost session=%s path=\"%s\" "
		    "errno=%d", s->job.session_id, s->job.path, errno);
		if (store_sink_finish(s->srv->store, s->job.session_id,
		    s->job.path, SINK_LOST, now) != 0) {
			sink_wait(s, SINK_STORE_RETRY_MS);
			return;
		}
	}
	if (i == SINK_SCAN_MAX) {
		sink_wait(s, 0);
		return;
	}
	s->work.data = s;
	s->busy = 1;
	if (uv_queue_work(s->srv->loop, &s->work, upload_work,
	    upload_after) != 0) {
		s->busy = 0;
		sink_wait(s, SINK_STORE_RETRY_MS);
	}
}

/* ---- queueing ------------------------------------------------------------ */

static int
sink_id_valid(const char *id)
{
	size_t n = id != NULL ? strlen(id) : 0;

	if (n == 0 || n >= SESSION_ID_MAX)
		return 0;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_.@") == n && id[0] != '.';
}

static int
sink_text_valid(const char *v, size_t max)
{
	size_t i, n = strnlen(v, max + 1);

	if (n > max)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return 0;
	return 1;
}

/* ".log" of "/d/records/ID.log": the last dot of the file's name. */
static const char *
sink_ext(const char *path)
{
	const char *base = strrchr(path, '/'), *dot;

	base = base != NULL ? base + 1 : path;
	dot = strrchr(base, '.');
	return dot != NULL && dot != base ? dot : "";
}

static int
sink_make_row(struct sink *s, const struct sink_item *it, const char *path,
    int64_t now, struct sink_row *r)
{
	const char *prefix = it->key_prefix != NULL ? it->key_prefix : "";
	size_t plen = strlen(prefix);
	struct stat sb;
	int n;

	memset(r, 0, sizeof(*r));
	if (path == NULL || path[0] == '\0' ||
	    !sink_text_valid(path, SINK_PATH_SIZE - 1))
		return PH_ERR_INVALID;
	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
		return PH_ERR_NOTFOUND;
	snprintf(r->session_id, sizeof(r->session_id), "%s", it->session_id);
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->queued_ms = now;
	r->next_ms = now;
	if (it->bucket == NULL || it->bucket[0] == '\0') {
		snprintf(r->url, sizeof(r->url), "%s", path);
		r->state = SINK_DELIVERED;
		r->done_ms = now;
		return 0;
	}
	snprintf(r->bucket, sizeof(r->bucket), "%s", it->bucket);
	/* PREFIX/SESSION-ID.EXT: a prefix without a trailing slash gets
	 * one, as the console shows such keys as a folder. */
	n = snprintf(r->object_key, sizeof(r->object_key), "%s%s%s%s", prefix,
	    plen > 0 && prefix[plen - 1] != '/' ? "/" : "", it->session_id,
	    sink_ext(path));
	if (n < 0 || (size_t)n >= sizeof(r->object_key))
		return PH_ERR_TOOBIG;
	if (it->encrypt)
		r->sse = it->kms_key_id != NULL && it->kms_key_id[0] != '\0' ?
		    S3_SSE_KMS : S3_SSE_S3;
	if (r->sse == S3_SSE_KMS)
		snprintf(r->kms_key_id, sizeof(r->kms_key_id), "%s",
		    it->kms_key_id);
	return s3_object_url(&s->cfg, r->bucket, r->object_key, r->url,
	    sizeof(r->url));
}

int
sink_enqueue(struct sink *s, const struct sink_item *it)
{
	struct sink_row *rows = NULL;
	int64_t now = sink_now_ms();
	size_t i, j;
	int rc;

	if (s == NULL || it == NULL || !sink_id_valid(it->session_id) ||
	    it->paths == NULL || it->npaths == 0 ||
	    it->npaths > SINK_PATHS_MAX)
		return PH_ERR_INVALID;
	if (it->bucket != NULL && it->bucket[0] != '\0' &&
	    !s3_bucket_valid(it->bucket))
		return PH_ERR_INVALID;
	if (it->key_prefix != NULL &&
	    !sink_text_valid(it->key_prefix, SINK_PREFIX_MAX))
		return PH_ERR_INVALID;
	/* A key id, alias or ARN: no spaces (it becomes a signed header). */
	if (it->encrypt && it->kms_key_id != NULL &&
	    (!sink_text_valid(it->kms_key_id, SINK_KMS_SIZE - 1) ||
	    strchr(it->kms_key_id, ' ') != NULL))
		return PH_ERR_INVALID;
	if ((rows = calloc(it->npaths, sizeof(*rows))) == NULL)
		return PH_ERR_NOMEM;
	for (i = 0; i < it->npaths; i++) {
		if ((rc = sink_make_row(s, it, it->paths[i], now,
		    &rows[i])) != 0)
			goto fail;
		/* Two files may not become one object or one row. */
		for (j = 0; j < i; j++)
			if (strcmp(rows[j].path, rows[i].path) == 0 ||
			    (rows[i].bucket[0] != '\0' &&
			    strcmp(rows[j].object_key,
			    rows[i].object_key) == 0)) {
				rc = PH_ERR_INVALID;
				goto fail;
			}
	}
	if ((rc = store_sink_add(s->srv->store, rows, it->npaths)) != 0)
		goto fail;
	log_info("event=sink_queued session=%s files=%zu bucket=%s",
	    it->session_id, it->npaths, rows[0].bucket[0] != '\0' ?
	    rows[0].bucket : "(local)");
	free(rows);
	sink_kick(s);
	return 0;
fail:
	free(rows);
	return rc;
}

int
sink_enqueue_object(struct sink *s, const char *id, const char *bucket,
    const char *key, const char *path, char *url, size_t urlsize)
{
	struct sink_row r;
	struct stat sb;
	int rc;

	if (s == NULL || !sink_id_valid(id) || bucket == NULL ||
	    !s3_bucket_valid(bucket) || key == NULL || key[0] == '\0' ||
	    !sink_text_valid(key, SINK_KEY_SIZE - 1) || path == NULL ||
	    !sink_text_valid(path, SINK_PATH_SIZE - 1))
		return PH_ERR_INVALID;
	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
		return PH_ERR_NOTFOUND;
	memset(&r, 0, sizeof(r));
	snprintf(r.session_id, sizeof(r.session_id), "%s", id);
	snprintf(r.path, sizeof(r.path), "%s", path);
	snprintf(r.bucket, sizeof(r.bucket), "%s", bucket);
	snprintf(r.object_key, sizeof(r.object_key), "%s", key);
	r.queued_ms = r.next_ms = sink_now_ms();
	if ((rc = s3_object_url(&s->cfg, bucket, key, r.url,
	    sizeof(r.url))) != 0)
		return rc;
	if ((rc = store_sink_add(s->srv->store, &r, 1)) != 0)
		return rc;
	if (url != NULL && urlsize > 0)
		snprintf(url, urlsize, "%s", r.url);
	log_info("event=sink_queued session=%s files=1 bucket=%s", id, bucket);
	sink_kick(s);
	return 0;
}

/* ---- where a record is --------------------------------------------------- */

struct url_pick {
	int rank;                   /* 0: none yet */
	char url[SINK_URL_SIZE];
	int s3;
};

/* The transcript first (what the console's history links to), then the
 * asciicast, then anything. */
static void
url_pick_row(const struct sink_row *r, void *arg)
{
	struct url_pick *p = arg;
	const char *ext = sink_ext(r->path);
	int rank = strcmp(ext, ".log") == 0 ? 3 :
	    strcmp(ext, ".cast") == 0 ? 2 : 1;

	if (rank <= p->rank)
		return;
	p->rank = rank;
	snprintf(p->url, sizeof(p->url), "%s", r->url);
	p->s3 = r->bucket[0] != '\0';
}

int
sink_output_url(struct sink *s, const char *session_id, char *out,
    size_t size, int *s3_url)
{
	struct url_pick p;
	int rc, n;

	if (out != NULL && size > 0)
		out[0] = '\0';
	if (s3_url != NULL)
		*s3_url = 0;
	if (s == NULL || out == NULL || size == 0 ||
	    !sink_id_valid(session_id))
		return PH_ERR_INVALID;
	memset(&p, 0, sizeof(p));
	rc = store_sink_foreach_session(s->srv->store, session_id,
	    url_pick_row, &p);
	if (rc != 0)
		return rc;
	n = snprintf(out, size, "%s", p.url);
	if (n < 0 || (size_t)n >= size) {
		out[0] = '\0';
		return PH_ERR_TOOBIG;
	}
	if (s3_url != NULL)
		*s3_url = p.s3;
	return 0;
}

void
sink_status(struct sink *s, struct sink_status *out)
{
	memset(out, 0, sizeof(*out));
	if (s == NULL) {
		out->healthy = 1;
		return;
	}
	(void)store_sink_stats(s->srv->store, &out->depth, &out->oldest_ms);
	out->healthy = s->healthy;
	snprintf(out->last_error, sizeof(out->last_error), "%s",
	    s->last_error);
}
