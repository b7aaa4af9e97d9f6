/* api_ssm_records: recording preferences at StartSession, OutputUrl and
 * GetSessionLog (see api_ssm_records.h). */
#include "server/api_ssm_records.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/log.h"
#include "server/api_json.h"
#include "server/authz.h"
#include "server/records.h"
#include "server/sink.h"
#include "server/store.h"

#define URL_MAX 2084        /* botocore: S3OutputUrl at most 2083 */

int
api_ssm_records_prefs(const struct api_call *c, json_t *rdoc,
    struct record_prefs *p, struct api_error *err)
{
	char why[600];

	records_prefs_from_inputs(json_object_get(rdoc, "inputs"), p);
	if (records_strict_check(c->srv, p, why, sizeof(why)) != 0) {
		log_warn("event=session_refused reason=recording_unavailable "
		    "bucket=%s", p->bucket);
		return api_error_set(err, 400, "InvalidDocument", "%s", why);
	}
	return 0;
}

void
api_ssm_records_created(const struct api_call *c, const char *sid,
    const struct record_prefs *p)
{
	int rc = store_record_create(c->srv->store, sid, p, c->now_ms);

	if (rc != 0)
		log_error("event=record_prefs_failed session=%s err=%s "
		    "note=\"the record stays local\"", sid, ph_strerror(rc));
}

static int
local_url(const struct api_call *c, const char *sid, const char *ext,
    char *out, size_t size)
{
	char path[700];
	struct stat sb;
	int n;

	if (records_file(c->srv, sid, ext, path, sizeof(path)) != 0 ||
	    stat(path, &sb) != 0)
		return PH_ERR_NOTFOUND;
	n = snprintf(out, size, "file://%s", path);
	return n < 0 || (size_t)n >= size ? PH_ERR_TOOBIG : 0;
}

void
api_ssm_records_output_url(const struct api_call *c, const char *sid,
    json_t *session)
{
	char url[URL_MAX], where[URL_MAX];
	json_t *o;
	int s3 = 0, n;

	url[0] = '\0';
	if (c->srv->sink != NULL && sink_output_url(c->srv->sink, sid,
	    where, sizeof(where), &s3) == 0 && where[0] != '\0') {
		n = snprintf(url, sizeof(url), "%s%s", s3 ? "" : "file://",
		    where);
		if (n < 0 || (size_t)n >= sizeof(url))
			url[0] = '\0';
	}
	/* Not queued yet: where the record is arriving. */
	if (url[0] == '\0' && local_url(c, sid, "log", url,
	    sizeof(url)) != 0 && local_url(c, sid, "rec", url,
	    sizeof(url)) != 0)
		return;
	o = json_pack("{s:s}", "S3OutputUrl", url);
	if (o != NULL)
		json_object_set_new(session, "OutputUrl", o);
}

static int
not_here(const struct api_call *c, const char *sid, const char *fmt,
    struct api_error *err)
{
	struct record_row row;
	char where[URL_MAX], rec[700];
	struct stat sb;
	int s3 = 0, have_rec;

	have_rec = records_file(c->srv, sid, "rec", rec, sizeof(rec)) == 0 &&
	    stat(rec, &sb) == 0;
	if (store_record_get(c->srv->store, sid, &row) != 0)
		memset(&row, 0, sizeof(row));
	if (strcmp(fmt, "rec") != 0 && have_rec && !row.complete)
		return api_error_set(err, 400, "RecordNotReadyException",
		    "The record of session %s is not complete yet (the agent "
		    "is still delivering it); Format rec gives what has "
		    "arrived.", sid);
	if (strcmp(fmt, "rec") != 0 && have_rec && !row.rendered)
		return api_error_set(err, 400, "RecordNotReadyException",
		    "The %s of session %s is being rendered; try again "
		    "shortly.", fmt, sid);
	if (c->srv->sink != NULL && sink_output_url(c->srv->sink, sid, where,
	    sizeof(where), &s3) == 0 && s3)
		return api_error_set(err, 400, "DoesNotExistException",
		    "The record of session %s is no longer kept by portholed: "
		    "it was delivered to %s.", sid, where);
	if (have_rec)
		return api_error_set(err, 400, "DoesNotExistException",
		    "Session %s has no %s: its record could not be rendered "
		    "(Format rec gives it as it is).", sid, fmt);
	return api_error_set(err, 400, "DoesNotExistException",
	    "Session %s has no record.", sid);
}

/* Up to max bytes of the file from offset: Content and the page's
 * members. */
static int
read_page(int fd, const char *sid, int64_t offset,
    int64_t max, json_t *out, struct api_error *err)
{
	uint8_t *raw = NULL;
	char *b64 = NULL;
	struct stat sb;
	size_t n, got = 0;
	ssize_t r;
	int rc = 0;

	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		return api_error_internal(err, "get_session_log", PH_ERR_IO);
	if (offset > (int64_t)sb.st_size)
		return api_error_set(err, 400, "ValidationException",
		    "Offset %lld is past the end of the record of session %s "
		    "(%lld bytes).", (long long)offset, sid,
		    (long long)sb.st_size);
	n = (size_t)((int64_t)sb.st_size - offset < max ?
	    (int64_t)sb.st_size - offset : max);
	if ((raw = malloc(n + 1)) == NULL ||
	    (b64 = malloc(4 * ((n + 2) / 3) + 1)) == NULL) {
		rc = api_error_internal(err, "get_session_log", PH_ERR_NOMEM);
		goto done;
	}
	while (got < n) {
		r = pread(fd, raw + got, n - got, (off_t)(offset + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	b64[EVP_EncodeBlock((unsigned char *)b64, raw, (int)got)] = '\0';
	json_object_set_new(out, "Content", json_string(b64));
	json_object_set_new(out, "Length", json_integer((json_int_t)got));
	json_object_set_new(out, "TotalLength",
	    json_integer((json_int_t)sb.st_size));
	if (offset + (int64_t)got < (int64_t)sb.st_size)
		json_object_set_new(out, "NextOffset",
		    json_integer((json_int_t)(offset + (int64_t)got)));
done:
	free(raw);
	free(b64);
	return rc;
}

int
api_ssm_get_session_log(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const char *const formats[] = { "log", "cast", "rec", NULL };
	static const struct api_str sid_d = { "SessionId", "sessionId", 1, 1,
	    96, NULL, NULL, NULL };
	static const struct api_str fmt_d = { "Format", "format", 0, 0, 0,
	    NULL, NULL, formats };
	struct session_rec sess;
	struct record_row row;
	const char *sid, *fmt;
	int64_t offset, max;
	char arn[300], path[700];
	struct api_v v;
	int fd, rc;

	api_v_init(&v);
	sid = api_v_str(&v, in, &sid_d);
	fmt = api_v_str(&v, in, &fmt_d);
	api_v_int(&v, in, "Offset", "offset", 0, 0, INT64_MAX / 2, 0,
	    &offset);
	api_v_int(&v, in, "MaxBytes", "maxBytes", 0, 1, API_SESSION_LOG_MAX,
	    API_SESSION_LOG_DEFAULT, &max);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (fmt == NULL)
		fmt = "log";
	snprintf(arn, sizeof(arn), "arn:aws:ssm:%s:%s:session/%s",
	    c->srv->region, c->srv->account_id, sid);
	if ((rc = api_authorize(c, "ssm:GetSessionLog", arn, err)) != 0)
		return rc;
	if (!records_valid_session_id(sid, strlen(sid)))
		return api_error_set(err, 400, "DoesNotExistException",
		    "Session %s does not exist.", sid);
	rc = store_session_get(c->srv->store, sid, &sess);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 400, "DoesNotExistException",
		    "Session %s does not exist.", sid);
	if (rc != 0)
		return api_error_internal(err, "get_session_log", rc);
	if (records_file(c->srv, sid, fmt, path, sizeof(path)) != 0)
		return api_error_internal(err, "get_session_log",
		    PH_ERR_INVALID);
	/* A .cast or .log left over from a crash mid-render is replaced at
	 * the next start; only a rendered record's are served. */
	if (strcmp(fmt, "rec") != 0 && (store_record_get(c->srv->store, sid,
	    &row) != 0 || !row.rendered))
		return not_here(c, sid, fmt, err);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return not_here(c, sid, fmt, err);
		return api_error_internal(err, "get_session_log", PH_ERR_IO);
	}
	if (store_record_get(c->srv->store, sid, &row) != 0)
		memset(&row, 0, sizeof(row));
	json_object_set_new(out, "SessionId", json_string(sid));
	json_object_set_new(out, "Format", json_string(fmt));
	json_object_set_new(out, "Complete", json_boolean(row.complete));
	rc = read_page(fd, sid, offset, max, out, err);
	close(fd);
	/* One line per reading, not per page. */
	if (rc == 0 && offset == 0)
		log_info("event=session_log_read session=%s format=%s "
		    "offset=%lld by=%s", sid, fmt, (long long)offset,
		    c->principal != NULL ? c->principal->arn : "?");
	return rc;
}

int
api_ssm_get_record_delivery_status(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err)
{
	struct sink_status st;
	int rc;

	/* No input: unknown members are ignored, as for every action. */
	(void)in;
	if ((rc = api_authorize(c, "ssm:GetRecordDeliveryStatus", "*",
	    err)) != 0)
		return rc;
	sink_status(c->srv->sink, &st);
	json_object_set_new(out, "QueueDepth", json_integer((json_int_t)
	    st.depth));
	/* Epoch seconds, as botocore gives every timestamp. */
	if (st.depth > 0 && st.oldest_ms > 0)
		json_object_set_new(out, "OldestQueuedTime",
		    api_json_time(st.oldest_ms));
	json_object_set_new(out, "Healthy", json_boolean(st.healthy));
	/* s3.c's messages name the bucket and the failure, never a key. */
	if (st.last_error[0] != '\0')
		json_object_set_new(out, "LastError",
		    json_string(st.last_error));
	return 0;
}
