#include "agent/record_upload.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "agent/state.h"
#include "agent/task.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proxy.h"
#include "common/record.h"

#define UPL_RESPONSE_MAX ((size_t)4096)
/* The worker wakes at least this often (back-off ends, stop). */
#define UPL_IDLE_WAIT_MS 1000u
/* Requests are batched: a record's new bytes go once UPL_POST_MIN of
 * them wait (less with a small spool), or once UPL_POST_DELAY_MS passed
 * since its last request, or at its end. One request per 64 KiB flush
 * cost a file rename for the .ack and an fdatasync at portholed each
 * (issue 11: recording within 5 % of unrecorded bulk output). */
#define UPL_POST_MIN ((uint64_t)1 << 20)
#define UPL_POST_DELAY_MS 200u

struct upl_entry {
	struct upl_entry *next;
	char id[AGENT_SESSION_ID_MAX + 1];
	uint64_t written;       /* on disk, whole frames */
	uint64_t acked;         /* portholed has these, durably */
	int ended;              /* the end frame is on disk */
	int busy;               /* the worker is sending it */
	unsigned fails;
	uint64_t next_try_ms;
	uint64_t last_post_ms;  /* when the worker last took it */
};

struct rec_uploader {
	char dir[AGENT_PATH_MAX];
	char origin[1100];      /* https://host:port */
	char ca[AGENT_PATH_MAX], cert[AGENT_PATH_MAX], key[AGENT_PATH_MAX];
	uint64_t spool_max;
	uint64_t post_min;      /* UPL_POST_MIN, at most spool_max / 4 */
	uv_mutex_t mu;
	uv_cond_t cv;
	uv_thread_t thr;
	int thread_live;
	int stop;               /* under mu; also read by curl's progress */
	struct upl_entry *head;
	size_t chunk;           /* shrinks on 413 */
	CURL *curl;             /* the worker's, reused: keep-alive */
};

static uint64_t
upl_now(void)
{
	return uv_hrtime() / 1000000;
}

const char *
rec_upload_dir(const struct rec_uploader *u)
{
	return u->dir;
}

uint64_t
rec_upload_spool_max(const struct rec_uploader *u)
{
	return u->spool_max;
}

static int
upl_path(const struct rec_uploader *u, const char *id, const char *suffix,
    char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s%s", u->dir, id, suffix);

	return n > 0 && (size_t)n < outlen ? 0 : PH_ERR_TOOBIG;
}

static struct upl_entry *
upl_find(struct rec_uploader *u, const char *id)
{
	struct upl_entry *e;

	for (e = u->head; e != NULL; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static struct upl_entry *
upl_insert(struct rec_uploader *u, const char *id)
{
	struct upl_entry *e;
	size_t n = strlen(id);

	if (n >= sizeof(e->id) || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->id, id, n + 1);
	e->next = u->head;
	u->head = e;
	return e;
}

static void
upl_remove(struct rec_uploader *u, struct upl_entry *e)
{
	struct upl_entry **pp;

	for (pp = &u->head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
	}
}

/* Round robin: a large record does not hold back the others. */
static void
upl_to_tail(struct rec_uploader *u, struct upl_entry *e)
{
	struct upl_entry **pp;

	for (pp = &u->head; *pp != NULL && *pp != e; pp = &(*pp)->next)
		;
	if (*pp == NULL || e->next == NULL)
		return;
	*pp = e->next;
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = e;
	e->next = NULL;
}

int
rec_upload_add(struct rec_uploader *u, const char *id)
{
	int rc = 0;

	if (u == NULL)
		return 0;
	uv_mutex_lock(&u->mu);
	if (upl_find(u, id) == NULL && upl_insert(u, id) == NULL)
		rc = PH_ERR_NOMEM;
	uv_mutex_unlock(&u->mu);
	return rc;
}

void
rec_upload_written(struct rec_uploader *u, const char *id, uint64_t len,
    int ended)
{
	struct upl_entry *e;
	int idle;

	if (u == NULL)
		return;
	uv_mutex_lock(&u->mu);
	if ((e = upl_find(u, id)) != NULL) {
		idle = e->written <= e->acked;
		if (len > e->written)
			e->written = len;
		if (ended)
			e->ended = 1;
		/* The worker wakes for what it must send now or time;
		 * otherwise its timed wait covers the rest (upl_pick). */
		if (idle || ended || e->written - e->acked >= u->post_min)
			uv_cond_signal(&u->cv);
	}
	uv_mutex_unlock(&u->mu);
}

uint64_t
rec_upload_unacked(struct rec_uploader *u)
{
	struct upl_entry *e;
	uint64_t sum = 0;

	if (u == NULL)
		return 0;
	uv_mutex_lock(&u->mu);
	for (e = u->head; e != NULL; e = e->next)
		if (e->written > e->acked)
			sum += e->written - e->acked;
	uv_mutex_unlock(&u->mu);
	return sum;
}

size_t
rec_upload_pending(struct rec_uploader *u)
{
	struct upl_entry *e;
	size_t n = 0;

	if (u == NULL)
		return 0;
	uv_mutex_lock(&u->mu);
	for (e = u->head; e != NULL; e = e->next)
		n++;
	uv_mutex_unlock(&u->mu);
	return n;
}

int
rec_upload_parse_length(const char *p, size_t n, uint64_t *len)
{
	json_t *o, *v;
	int rc = PH_ERR_INVALID;

	*len = 0;
	o = json_loadb(p, n, 0, NULL);
	v = json_is_object(o) ? json_object_get(o, "length") : NULL;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*len = (uint64_t)json_integer_value(v);
		rc = 0;
	}
	json_decref(o);
	return rc;
}

/* ---- the sidecar: the acknowledged offset ------------------------------- */

/* Losing an update only means resending bytes portholed skips, so no
 * fsync: a temporary file renamed over the old one. */
static void
upl_save_ack(struct rec_uploader *u, const char *id, uint64_t acked)
{
	char path[AGENT_PATH_MAX], tmp[AGENT_PATH_MAX + 8], text[32];
	int fd, n;

	if (upl_path(u, id, ".ack", path, sizeof(path)) != 0 ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return;
	n = snprintf(text, sizeof(text), "%" PRIu64 "\n", acked);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, text, (size_t)n) != n || close(fd) != 0) {
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return;
	}
	if (rename(tmp, path) != 0)
		unlink(tmp);
}

static uint64_t
upl_load_ack(const char *path)
{
	char *text = NULL, *end;
	unsigned long long v;

	if (agent_read_file(path, 64, &text, NULL) != 0)
		return 0;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || end == text || (*end != '\n' && *end != '\0'))
		v = 0; /* unreadable: resend from the start (idempotent) */
	free(text);
	return (uint64_t)v;
}

/* ---- recovery at start -------------------------------------------------- */

static int
is_end_frame(const struct record_frame *f)
{
	json_t *o, *v;
	int end;

	if (f->type != 'm' || f->len == 0)
		return 0;
	o = json_loadb((const char *)f->data, f->len, 0, NULL);
	v = json_is_object(o) ? json_object_get(o, "event") : NULL;
	end = json_is_string(v) && strcmp(json_string_value(v), "end") == 0;
	json_decref(o);
	return end;
}

int
rec_spool_finish(const char *path, uint64_t acked, uint64_t *len)
{
	struct record_header h;
	struct record_reader r;
	struct record_frame f;
	struct stat sb;
	struct buf end;
	void *map = MAP_FAILED;
	uint64_t last_t = 0;
	size_t size = 0, good;
	ssize_t w;
	int fd, rc = PH_ERR_IO, ended = 0, frc;
	json_t *o = NULL;
	char *js = NULL;

	*len = 0;
	buf_init(&end, 4096);
	if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return PH_ERR_IO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		goto fail;
	size = (size_t)sb.st_size;
	if (size == 0) {
		rc = PH_ERR_INVALID;
		goto fail;
	}
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		goto fail;
	record_reader_init(&r, map, size);
	if ((rc = record_read_header(&r, &h)) != 0)
		goto fail;
	good = r.off;
	while ((frc = record_read_frame(&r, &f)) == 1) {
		good = r.off;
		last_t = f.t_us;
		ended = is_end_frame(&f);
	}
	if (frc < 0) {
		/* Not a frame we wrote: keep the file for a person. */
		rc = PH_ERR_INVALID;
		goto fail;
	}
	munmap(map, size);
	map = MAP_FAILED;
	rc = PH_ERR_IO;
	if (good < size && good >= acked) {
		if (ftruncate(fd, (off_t)good) != 0)
			goto fail;
		size = good;
		ended = 0;
	}
	if (!ended && size == good) {
		o = json_pack("{s:s, s:s, s:s}", "event", "end", "status",
		    "Failed", "reason", REC_STOPPED_REASON);
		js = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) :
		    NULL;
		if (js == NULL || record_frame_encode(&end, 'm', last_t, js,
		    strlen(js)) != 0) {
			rc = PH_ERR_NOMEM;
			goto fail;
		}
		w = pwrite(fd, end.data, end.len, (off_t)size);
		if (w != (ssize_t)end.len) {
			if (ftruncate(fd, (off_t)size) != 0)
				log_warn("event=record_truncate_failed");
			goto fail;
		}
		size += end.len;
		(void)fdatasync(fd);
	}
	*len = size;
	rc = 0;
fail:
	if (map != MAP_FAILED)
		munmap(map, size);
	close(fd);
	free(js);
	json_decref(o);
	buf_free(&end);
	return rc;
}

static void
upl_recover(struct rec_uploader *u)
{
	char path[AGENT_PATH_MAX], ack[AGENT_PATH_MAX], id[256];
	struct upl_entry *e;
	struct dirent *de;
	uint64_t acked, len;
	size_t n;
	DIR *d;
	int rc, count = 0;

	if ((d = opendir(u->dir)) == NULL)
		return;
	/* Bounded: a spool directory holds one file per session. */
	while ((de = readdir(d)) != NULL && count < 100000) {
		n = strlen(de->d_name);
		if (n <= 4 || n - 4 >= sizeof(id) ||
		    strcmp(de->d_name + n - 4, ".rec") != 0)
			continue;
		snprintf(id, sizeof(id), "%.*s", (int)(n - 4), de->d_name);
		if (!agent_valid_session_id(id) ||
		    upl_path(u, id, ".rec", path, sizeof(path)) != 0 ||
		    upl_path(u, id, ".ack", ack, sizeof(ack)) != 0)
			continue;
		count++;
		acked = upl_load_ack(ack);
		rc = rec_spool_finish(path, acked, &len);
		if (rc != 0) {
			log_warn("event=record_spool_unreadable session=%s "
			    "err=\"%s\"", id, ph_strerror(rc));
			continue;
		}
		if ((e = upl_insert(u, id)) == NULL)
			break;
		e->written = len;
		e->acked = acked <= len ? acked : 0;
		e->ended = 1;
		log_info("event=record_spool_resumed session=%s bytes=%" PRIu64
		    " acked=%" PRIu64, id, len, e->acked);
	}
	closedir(d);
}

/* ---- HTTP ---------------------------------------------------------------- */

static size_t
upl_write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;

	if (buf_append(b, p, size * nmemb) != 0)
		return 0;
	return size * nmemb;
}

static int
upl_progress_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct rec_uploader *u = ud;
	int stop;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	uv_mutex_lock(&u->mu);
	stop = u->stop;
	uv_mutex_unlock(&u->mu);
	return stop; /* non-zero aborts the transfer */
}

/* POST body to url; *status and the answer's length. PH_ERR_IO when no
 * answer came. */
static int
upl_post(struct rec_uploader *u, const char *url, const void *body,
    size_t n, long *status, uint64_t *len, int *has_len)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs = NULL, *h;
	struct buf resp;
	CURLcode cc;
	int rc = PH_ERR_IO;

	*status = 0;
	*has_len = 0;
	buf_init(&resp, UPL_RESPONSE_MAX);
	if (u->curl == NULL && (u->curl = curl_easy_init()) == NULL) {
		buf_free(&resp);
		return PH_ERR_NOMEM;
	}
	h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
	if (h != NULL && (hdrs = h, h = curl_slist_append(hdrs, "Expect:")))
		hdrs = h;
	if (h == NULL) {
		curl_slist_free_all(hdrs);
		buf_free(&resp);
		return PH_ERR_NOMEM;
	}
	errbuf[0] = '\0';
	curl_easy_reset(u->curl);
	curl_easy_setopt(u->curl, CURLOPT_URL, url);
	/* The process's proxy settings, whatever libcurl finds in the
	 * environment (proxy.h). */
	(void)proxy_curl_apply(u->curl, url);
	curl_easy_setopt(u->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(u->curl, CURLOPT_CAINFO, u->ca);
	curl_easy_setopt(u->curl, CURLOPT_SSLCERT, u->cert);
	curl_easy_setopt(u->curl, CURLOPT_SSLKEY, u->key);
	curl_easy_setopt(u->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(u->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(u->curl, CURLOPT_SSLVERSION,
	    (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(u->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(u->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(u->curl, CURLOPT_POSTFIELDS, n ? body : "");
	curl_easy_setopt(u->curl, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)n);
	curl_easy_setopt(u->curl, CURLOPT_WRITEFUNCTION, upl_write_cb);
	curl_easy_setopt(u->curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(u->curl, CURLOPT_TIMEOUT_MS, REC_UPLOAD_TIMEOUT_MS);
	curl_easy_setopt(u->curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(u->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(u->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(u->curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(u->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(u->curl, CURLOPT_XFERINFOFUNCTION, upl_progress_cb);
	curl_easy_setopt(u->curl, CURLOPT_XFERINFODATA, u);
	cc = curl_easy_perform(u->curl);
	if (cc != CURLE_OK) {
		log_debug("event=record_upload_unreachable err=\"%s\"",
		    errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto fail;
	}
	curl_easy_getinfo(u->curl, CURLINFO_RESPONSE_CODE, status);
	if (rec_upload_parse_length((const char *)resp.data, resp.len,
	    len) == 0)
		*has_len = 1;
	rc = 0;
fail:
	curl_slist_free_all(hdrs);
	buf_free(&resp);
	return rc;
}

/* One step for a record: send the next chunk, or /complete. The entry's
 * snapshot is in *e (a copy); returns the new acked offset in *acked, 1
 * in *done once completed, and 0 or an error (retry later). */
static int
upl_step(struct rec_uploader *u, const struct upl_entry *e, uint64_t *acked,
    int *done)
{
	char url[1400], path[AGENT_PATH_MAX];
	uint8_t *body = NULL;
	uint64_t len, want;
	ssize_t r;
	long status;
	int fd = -1, rc, has_len;
	size_t n;

	*acked = e->acked;
	*done = 0;
	if (e->acked >= e->written && e->ended) {
		if (snprintf(url, sizeof(url), "%s/v1/record/%s/complete"
		    "?length=%" PRIu64, u->origin, e->id, e->written) >=
		    (int)sizeof(url))
			return PH_ERR_TOOBIG;
		if ((rc = upl_post(u, url, NULL, 0, &status, &len,
		    &has_len)) != 0)
			return rc;
		if (status == 200) {
			*done = 1;
			return 0;
		}
		if (status == 409 && has_len && len <= e->written) {
			*acked = len; /* portholed lost some: resend */
			return 0;
		}
		log_warn("event=record_complete_refused session=%s status=%ld",
		    e->id, status);
		return PH_ERR_DENIED;
	}
	want = e->written - e->acked;
	n = want < u->chunk ? (size_t)want : u->chunk;
	if ((rc = upl_path(u, e->id, ".rec", path, sizeof(path))) != 0)
		return rc;
	if ((body = malloc(n)) == NULL)
		return PH_ERR_NOMEM;
	rc = PH_ERR_IO;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto fail;
	r = pread(fd, body, n, (off_t)e->acked);
	if (r != (ssize_t)n)
		goto fail;
	rc = PH_ERR_TOOBIG;
	if (snprintf(url, sizeof(url), "%s/v1/record/%s?offset=%" PRIu64,
	    u->origin, e->id, e->acked) >= (int)sizeof(url))
		goto fail;
	if ((rc = upl_post(u, url, body, n, &status, &len, &has_len)) != 0)
		goto fail;
	rc = 0;
	if ((status == 200 || status == 409) && has_len && len <= e->written)
		*acked = len;
	else if (status == 413 && u->chunk > REC_UPLOAD_CHUNK_MIN) {
		u->chunk /= 2;
		rc = PH_ERR_AGAIN;
	} else {
		log_warn("event=record_upload_refused session=%s status=%ld "
		    "offset=%" PRIu64, e->id, status, e->acked);
		rc = PH_ERR_DENIED;
	}
fail:
	if (fd >= 0)
		close(fd);
	free(body);
	return rc;
}

static void
upl_delete(struct rec_uploader *u, const char *id)
{
	char path[AGENT_PATH_MAX];

	if (upl_path(u, id, ".rec", path, sizeof(path)) == 0)
		unlink(path);
	if (upl_path(u, id, ".ack", path, sizeof(path)) == 0)
		unlink(path);
}

/* The next record with something to do, or NULL and *wait_ms. */
static struct upl_entry *
upl_pick(struct rec_uploader *u, uint64_t now, uint64_t *wait_ms)
{
	struct upl_entry *e;
	uint64_t due;

	*wait_ms = UPL_IDLE_WAIT_MS;
	for (e = u->head; e != NULL; e = e->next) {
		if (e->busy || !(e->written > e->acked || e->ended))
			continue;
		due = e->next_try_ms;
		/* A running record's few new bytes wait for more. */
		if (!e->ended && e->written - e->acked < u->post_min &&
		    e->last_post_ms + UPL_POST_DELAY_MS > due)
			due = e->last_post_ms + UPL_POST_DELAY_MS;
		if (now >= due)
			return e;
		if (due - now < *wait_ms)
			*wait_ms = due - now;
	}
	return NULL;
}

static void
upl_thread(void *arg)
{
	struct rec_uploader *u = arg;
	struct upl_entry *e, snap;
	uint64_t wait_ms, acked, delay;
	int rc, done;

	uv_mutex_lock(&u->mu);
	while (!u->stop) {
		if ((e = upl_pick(u, upl_now(), &wait_ms)) == NULL) {
			(void)uv_cond_timedwait(&u->cv, &u->mu,
			    wait_ms * 1000000);
			continue;
		}
		e->busy = 1;
		e->last_post_ms = upl_now();
		snap = *e;
		uv_mutex_unlock(&u->mu);
		rc = upl_step(u, &snap, &acked, &done);
		/* An answer that moves nothing is retried later, not in a
		 * tight loop. */
		if (rc == 0 && !done && acked == snap.acked)
			rc = PH_ERR_STATE;
		if (rc == 0 && acked != snap.acked && !done)
			upl_save_ack(u, snap.id, acked);
		if (done) {
			upl_delete(u, snap.id);
			log_info("event=record_delivered session=%s bytes=%"
			    PRIu64, snap.id, snap.written);
		}
		uv_mutex_lock(&u->mu);
		e->busy = 0;
		e->acked = acked;
		if (done) {
			upl_remove(u, e);
			continue;
		}
		upl_to_tail(u, e);
		if (rc == 0 || rc == PH_ERR_AGAIN) {
			e->fails = 0;
			e->next_try_ms = 0;
			continue;
		}
		delay = (uint64_t)REC_UPLOAD_RETRY_MIN_MS << (e->fails < 8 ?
		    e->fails : 8);
		if (delay > REC_UPLOAD_RETRY_MAX_MS)
			delay = REC_UPLOAD_RETRY_MAX_MS;
		if (e->fails++ == 0 || e->fails % 20 == 0)
			log_warn("event=record_upload_retry session=%s "
			    "failures=%u in_ms=%" PRIu64 " err=\"%s\"", e->id,
			    e->fails, delay, ph_strerror(rc));
		e->next_try_ms = upl_now() + delay;
	}
	uv_mutex_unlock(&u->mu);
	if (u->curl != NULL)
		curl_easy_cleanup(u->curl);
	u->curl = NULL;
}

/* ---- life ---------------------------------------------------------------- */

/* "https://host:port[/...]" -> "https://host:port" */
static int
upl_origin(const char *endpoint, char *out, size_t outlen)
{
	const char *host;
	size_t n;
	int w;

	if (strncmp(endpoint, "https://", 8) != 0)
		return PH_ERR_INVALID;
	host = endpoint + 8;
	n = 8 + strcspn(host, "/?#");
	if (n <= 8 || n > 1024)
		return PH_ERR_INVALID;
	w = snprintf(out, outlen, "%.*s", (int)n, endpoint);
	return w > 0 && (size_t)w < outlen ? 0 : PH_ERR_TOOBIG;
}

int
rec_upload_new(struct rec_uploader **out, const struct rec_upload_cfg *c,
    char *err, size_t errlen)
{
	struct rec_uploader *u;

	*out = NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return PH_ERR_NOMEM;
	}
	u->spool_max = c->spool_max ? c->spool_max : REC_SPOOL_MAX_DEFAULT;
	u->post_min = u->spool_max / 4 < UPL_POST_MIN ? u->spool_max / 4 :
	    UPL_POST_MIN;
	u->chunk = REC_UPLOAD_CHUNK;
	if (snprintf(u->dir, sizeof(u->dir), "%s", c->dir) >=
	    (int)sizeof(u->dir) || upl_origin(c->endpoint, u->origin,
	    sizeof(u->origin)) != 0 ||
	    snprintf(u->ca, sizeof(u->ca), "%s", c->ca_file) >=
	    (int)sizeof(u->ca) ||
	    snprintf(u->cert, sizeof(u->cert), "%s", c->cert_file) >=
	    (int)sizeof(u->cert) ||
	    snprintf(u->key, sizeof(u->key), "%s", c->key_file) >=
	    (int)sizeof(u->key)) {
		snprintf(err, errlen, "record spool: bad endpoint or path");
		free(u);
		return PH_ERR_INVALID;
	}
	if (mkdir(u->dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", u->dir,
		    strerror(errno));
		free(u);
		return PH_ERR_IO;
	}
	uv_mutex_init(&u->mu);
	uv_cond_init(&u->cv);
	upl_recover(u);
	if (!c->no_thread) {
		if (uv_thread_create(&u->thr, upl_thread, u) != 0) {
			snprintf(err, errlen, "cannot start the record "
			    "uploader");
			rec_upload_free(u);
			return PH_ERR_IO;
		}
		u->thread_live = 1;
	}
	*out = u;
	return 0;
}

void
rec_upload_drain(struct rec_uploader *u, unsigned timeout_ms)
{
	unsigned waited = 0;

	/* Bounded: a short sleep per round, timeout_ms in all. */
	while (u != NULL && waited < timeout_ms && rec_upload_pending(u) > 0) {
		uv_sleep(50);
		waited += 50;
	}
}

void
rec_upload_free(struct rec_uploader *u)
{
	struct upl_entry *e;

	if (u == NULL)
		return;
	if (u->thread_live) {
		uv_mutex_lock(&u->mu);
		u->stop = 1;
		uv_cond_signal(&u->cv);
		uv_mutex_unlock(&u->mu);
		uv_thread_join(&u->thr);
	}
	while ((e = u->head) != NULL) {
		u->head = e->next;
		free(e);
	}
	uv_cond_destroy(&u->cv);
	uv_mutex_destroy(&u->mu);
	free(u);
}
