#include "agent/cmdupload.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/cmdjob.h"
#include "agent/state.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proxy.h"

#define CMDUPLOAD_TIMEOUT_MS 120000L
/* portholed takes bodies up to 8 MiB (HTTP_MAX_BODY): a longer output is
 * sent cut, with a note, and stays whole on the instance. */
#define CMDUPLOAD_MAX (((size_t)8 << 20) - 512)
#define CMDUPLOAD_NOTE "\n--- output truncated for upload: %llu bytes " \
    "in all, the whole output is in %s on the instance ---\n"

struct cmdupload {
	uv_work_t work;
	char url_base[1024];
	char ca[AGENT_PATH_MAX], cert[AGENT_PATH_MAX], key[AGENT_PATH_MAX];
	char command_id[CMDJOB_CMD_ID_MAX + 1];
	char dir[AGENT_PATH_MAX];
	struct {
		char name[CMDJOB_NAME_MAX + 1];
		size_t index;
	} items[CMDJOB_STEPS_MAX];
	size_t n;
	atomic_int abort;
	int failures;
	cmdupload_done_fn done;
	void *ud;
};

int
cmdupload_path(const char *command_id, const char *step_name,
    const char *stream, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o;
	int n;
	const unsigned char *p;

	n = snprintf(out, len, "/v1/command-output/%s/", command_id);
	if (n < 0 || (size_t)n >= len)
		return PH_ERR_TOOBIG;
	o = (size_t)n;
	/* RFC 3986 unreserved characters stay, everything else is %XX. */
	for (p = (const unsigned char *)step_name; *p != '\0'; p++) {
		if (o + 4 >= len)
			return PH_ERR_TOOBIG;
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~') {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	n = snprintf(out + o, len - o, "/%s", stream);
	return n < 0 || (size_t)n >= len - o ? PH_ERR_TOOBIG : 0;
}

static size_t
up_discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return sz * n;
}

static int
up_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct cmdupload *u = ud;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return atomic_load(&u->abort) ? 1 : 0;
}

static int
up_one(struct cmdupload *u, CURL *h, size_t i, const char *stream)
{
	char path[2048], url[3200], file[AGENT_PATH_MAX + 64];
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs;
	struct stat sb;
	long status = 0;
	char *body = NULL;
	size_t blen = 0;
	CURLcode cc;
	FILE *f;
	int n;

	if (cmdupload_path(u->command_id, u->items[i].name, stream, path,
	    sizeof(path)) != 0)
		return PH_ERR_TOOBIG;
	snprintf(url, sizeof(url), "%s%s", u->url_base, path);
	snprintf(file, sizeof(file), "%s/%zu/%s", u->dir, u->items[i].index,
	    stream);
	f = fopen(file, "rbe");
	if (f == NULL || fstat(fileno(f), &sb) != 0) {
		if (f != NULL)
			fclose(f);
		return PH_ERR_IO;
	}
	if ((uint64_t)sb.st_size > CMDUPLOAD_MAX) {
		/* Cut: the head and a note, from memory. */
		size_t got, cap = CMDUPLOAD_MAX + AGENT_PATH_MAX + 256;

		body = malloc(cap);
		if (body == NULL) {
			fclose(f);
			return PH_ERR_NOMEM;
		}
		got = fread(body, 1, CMDUPLOAD_MAX, f);
		n = snprintf(body + got, cap - got, CMDUPLOAD_NOTE,
		    (unsigned long long)sb.st_size, file);
		blen = got + (n > 0 && (size_t)n < cap - got ? (size_t)n : 0);
		fclose(f);
		f = NULL;
	}
	/* No "Expect: 100-continue" round trip. */
	hdrs = curl_slist_append(NULL, "Expect:");
	errbuf[0] = '\0';
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	/* The process's proxy settings, whatever libcurl finds in the
	 * environment (proxy.h). */
	(void)proxy_curl_apply(h, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_CAINFO, u->ca);
	curl_easy_setopt(h, CURLOPT_SSLCERT, u->cert);
	curl_easy_setopt(h, CURLOPT_SSLKEY, u->key);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)blen);
	} else {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READDATA, f);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)sb.st_size);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, up_discard);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, CMDUPLOAD_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, up_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, u);
	cc = curl_easy_perform(h);
	if (f != NULL)
		fclose(f);
	free(body);
	curl_slist_free_all(hdrs);
	if (cc != CURLE_OK) {
		log_warn("event=command_output_upload_error command=%s "
		    "step=\"%s\" stream=%s err=\"%s\"", u->command_id,
		    u->items[i].name, stream,
		    errbuf[0] ? errbuf : curl_easy_strerror(cc));
		return PH_ERR_IO;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		log_warn("event=command_output_upload_refused command=%s "
		    "step=\"%s\" stream=%s status=%ld", u->command_id,
		    u->items[i].name, stream, status);
		return PH_ERR_DENIED;
	}
	return 0;
}

static void
up_work(uv_work_t *w)
{
	struct cmdupload *u = w->data;
	CURL *h = curl_easy_init();
	size_t i;

	if (h == NULL) {
		u->failures = (int)(2 * u->n);
		return;
	}
	for (i = 0; i < u->n && !atomic_load(&u->abort); i++) {
		if (up_one(u, h, i, "stdout") != 0)
			u->failures++;
		if (up_one(u, h, i, "stderr") != 0)
			u->failures++;
	}
	curl_easy_cleanup(h);
}

static void
up_after(uv_work_t *w, int status)
{
	struct cmdupload *u = w->data;
	cmdupload_done_fn done = u->done;
	void *ud = u->ud;
	int failures = u->failures + (status != 0);

	free(u);
	done(ud, failures);
}

int
cmdupload_start(struct cmdupload **out, uv_loop_t *loop,
    const struct agent_state *st, const char *command_id, const char *dir,
    const struct cmdupload_item *items, size_t n, cmdupload_done_fn done,
    void *ud)
{
	struct cmdupload *u;
	size_t i;
	int rc;

	*out = NULL;
	if (n > CMDJOB_STEPS_MAX)
		return PH_ERR_TOOBIG;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return PH_ERR_NOMEM;
	snprintf(u->url_base, sizeof(u->url_base), "%s", st->endpoint);
	/* The endpoint as registered may end with '/'. */
	i = strlen(u->url_base);
	while (i > 0 && u->url_base[i - 1] == '/')
		u->url_base[--i] = '\0';
	snprintf(u->ca, sizeof(u->ca), "%s", st->ca_path);
	snprintf(u->cert, sizeof(u->cert), "%s", st->cert_path);
	snprintf(u->key, sizeof(u->key), "%s", st->key_path);
	snprintf(u->command_id, sizeof(u->command_id), "%s", command_id);
	snprintf(u->dir, sizeof(u->dir), "%s", dir);
	for (i = 0; i < n; i++) {
		snprintf(u->items[i].name, sizeof(u->items[i].name), "%s",
		    items[i].step_name);
		u->items[i].index = items[i].index;
	}
	u->n = n;
	atomic_init(&u->abort, 0);
	u->done = done;
	u->ud = ud;
	u->work.data = u;
	rc = uv_queue_work(loop, &u->work, up_work, up_after);
	if (rc != 0) {
		free(u);
		return PH_ERR_IO;
	}
	*out = u;
	return 0;
}

void
cmdupload_abort(struct cmdupload *u)
{
	if (u != NULL)
		atomic_store(&u->abort, 1);
}
