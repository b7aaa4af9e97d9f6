#include "agent/recorder.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"

struct agent_recorder {
	int fd;
	char id[128];
	struct rec_uploader *u;
	uint64_t t0_ns;          /* monotonic time of start_ms */
	uint64_t written;        /* on disk, whole frames */
	uint64_t batch_ns;       /* when the oldest waiting frame came */
	uint64_t bytes_in, bytes_out; /* for the end frame */
	struct buf batch;
	int failed;
	char err[256];
};

static uint64_t
rec_t_us(const struct agent_recorder *r)
{
	return (uv_hrtime() - r->t0_ns) / 1000;
}

const char *
agent_recorder_error(const struct agent_recorder *r)
{
	return r->err;
}

/* Write the batch; a short write is cut off again so the file always
 * ends on a frame boundary. */
static int
rec_flush(struct agent_recorder *r)
{
	size_t off = 0;
	ssize_t w;
	int e;

	if (r->failed)
		return PH_ERR_IO;
	while (off < r->batch.len) {
		w = write(r->fd, r->batch.data + off, r->batch.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			e = w < 0 ? errno : ENOSPC;
			if (ftruncate(r->fd, (off_t)r->written) != 0 ||
			    lseek(r->fd, (off_t)r->written, SEEK_SET) < 0)
				log_warn("event=record_truncate_failed "
				    "session=%s", r->id);
			snprintf(r->err, sizeof(r->err), "the session record "
			    "cannot be written: %s", strerror(e));
			log_error("event=record_write_failed session=%s "
			    "err=\"%s\"", r->id, strerror(e));
			r->failed = 1;
			buf_reset(&r->batch);
			return PH_ERR_IO;
		}
		off += (size_t)w;
	}
	r->written += r->batch.len;
	buf_reset(&r->batch);
	rec_upload_written(r->u, r->id, r->written, 0);
	return 0;
}

int
agent_recorder_frame(struct agent_recorder *r, char type, const void *p,
    size_t n)
{
	const uint8_t *c = p;
	size_t chunk;
	uint64_t t;
	int rc;

	if (r->failed)
		return PH_ERR_IO;
	t = rec_t_us(r);
	if (type == 'i')
		r->bytes_in += n;
	else if (type == 'o')
		r->bytes_out += n;
	do {
		chunk = n < RECORD_FRAME_MAX ? n : RECORD_FRAME_MAX;
		if (r->batch.len == 0)
			r->batch_ns = uv_hrtime();
		rc = record_frame_encode(&r->batch, type, t, c, chunk);
		if (rc == PH_ERR_TOOBIG) {
			/* The batch is full: write it and try again. */
			if ((rc = rec_flush(r)) != 0)
				return rc;
			r->batch_ns = uv_hrtime();
			rc = record_frame_encode(&r->batch, type, t, c, chunk);
		}
		if (rc != 0) {
			snprintf(r->err, sizeof(r->err), "cannot record a "
			    "frame: %s", ph_strerror(rc));
			r->failed = 1;
			return rc;
		}
		c += chunk;
		n -= chunk;
	} while (n > 0);
	if (r->batch.len >= REC_BATCH_BYTES)
		return rec_flush(r);
	return 0;
}

int
agent_recorder_resize(struct agent_recorder *r, unsigned cols,
    unsigned rows)
{
	char s[32];
	int n;

	n = snprintf(s, sizeof(s), "%ux%u", cols, rows);
	return agent_recorder_frame(r, 'r', s, (size_t)n);
}

int
agent_recorder_tick(struct agent_recorder *r)
{
	if (r->failed)
		return PH_ERR_IO;
	if (r->batch.len > 0 &&
	    uv_hrtime() - r->batch_ns >= (uint64_t)REC_BATCH_MS * 1000000)
		return rec_flush(r);
	return 0;
}

int
agent_recorder_full(struct agent_recorder *r)
{
	return r->u != NULL &&
	    rec_upload_unacked(r->u) >= rec_upload_spool_max(r->u);
}

int
agent_recorder_open(struct agent_recorder **out, const char *dir,
    const struct record_header *h, struct rec_uploader *u, char *err,
    size_t errlen)
{
	struct agent_recorder *r;
	char path[4200];
	int rc;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return PH_ERR_NOMEM;
	}
	r->fd = -1;
	r->u = u;
	r->t0_ns = uv_hrtime();
	snprintf(r->id, sizeof(r->id), "%s", h->session_id);
	/* One batch plus one frame of the largest size. */
	buf_init(&r->batch, REC_BATCH_BYTES + RECORD_FRAME_HEAD +
	    RECORD_FRAME_MAX);
	if (snprintf(path, sizeof(path), "%s/%s.rec", dir, h->session_id) >=
	    (int)sizeof(path)) {
		snprintf(err, errlen, "record path too long");
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create the record spool %s: %s",
		    dir, strerror(errno));
		rc = PH_ERR_IO;
		goto fail;
	}
	r->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (r->fd < 0) {
		snprintf(err, errlen, "cannot create the session record %s: "
		    "%s", path, strerror(errno));
		rc = PH_ERR_IO;
		goto fail;
	}
	if ((rc = record_header_encode(h, &r->batch)) != 0) {
		snprintf(err, errlen, "cannot encode the record header: %s",
		    ph_strerror(rc));
		goto fail_unlink;
	}
	/* The header goes to disk at once: the record exists from the
	 * start, whatever happens later. */
	if ((rc = rec_flush(r)) != 0) {
		snprintf(err, errlen, "%s", r->err);
		goto fail_unlink;
	}
	if ((rc = rec_upload_add(u, r->id)) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail_unlink;
	}
	rec_upload_written(u, r->id, r->written, 0);
	*out = r;
	return 0;
fail_unlink:
	unlink(path);
fail:
	if (r->fd >= 0)
		close(r->fd);
	buf_free(&r->batch);
	free(r);
	return rc;
}

int
agent_recorder_close(struct agent_recorder *r, const char *status,
    const char *reason, int exit_code)
{
	json_t *o;
	char *js = NULL;
	int rc = PH_ERR_NOMEM;

	if (r == NULL)
		return 0;
	o = json_pack("{s:s, s:s, s:s}", "event", "end", "status", status,
	    "reason", reason ? reason : "");
	if (o != NULL && exit_code >= 0)
		json_object_set_new(o, "exit_code", json_integer(exit_code));
	if (o != NULL) {
		json_object_set_new(o, "bytes_in",
		    json_integer((json_int_t)r->bytes_in));
		json_object_set_new(o, "bytes_out",
		    json_integer((json_int_t)r->bytes_out));
	}
	if (o != NULL)
		js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (js != NULL && (rc = agent_recorder_frame(r, 'm', js,
	    strlen(js))) == 0)
		rc = rec_flush(r);
	free(js);
	/* Ended even when the end frame could not be written: what is on
	 * disk is delivered and completed. */
	rec_upload_written(r->u, r->id, r->written, 1);
	log_info("event=record_closed session=%s bytes=%llu%s", r->id,
	    (unsigned long long)r->written, r->failed ? " failed=1" : "");
	close(r->fd);
	buf_free(&r->batch);
	free(r);
	return rc;
}
