/* kms_decrypt: the agent's KMS Decrypt of the session data key (spec 6.1),
 * off the event loop on the libuv thread pool. */
#include "agent/kms_decrypt.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/proxy.h"

/* Connecting is part of the whole bound, but should never take it all. */
#define KMS_CONNECT_TIMEOUT_MS 5000L
/* Text from the network we repeat in an error, in characters. */
#define KMS_ERR_TEXT_MAX 300

/* ---- base64 -------------------------------------------------------------- */

static int
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int
agent_b64_decode(const char *s, size_t n, uint8_t *out, size_t max,
    size_t *outlen)
{
	uint8_t *tmp;
	size_t raw, pad = 0, i;
	int got;

	*outlen = 0;
	if (s == NULL || n == 0 || n % 4 != 0 || n > ((size_t)1 << 24))
		return PH_ERR_INVALID;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (i = 0; i < n - pad; i++)
		if (!b64_char((unsigned char)s[i]))
			return PH_ERR_INVALID;
	raw = n / 4 * 3;
	if (raw - pad > max)
		return PH_ERR_TOOBIG;
	if ((tmp = malloc(raw)) == NULL)
		return PH_ERR_NOMEM;
	/* EVP_DecodeBlock does not strip padding: it returns whole
	 * triplets, so the length is checked against raw. */
	got = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	if (got < 0 || (size_t)got != raw) {
		OPENSSL_cleanse(tmp, raw);
		free(tmp);
		return PH_ERR_INVALID;
	}
	memcpy(out, tmp, raw - pad);
	*outlen = raw - pad;
	/* The bytes may be a key. */
	OPENSSL_cleanse(tmp, raw);
	free(tmp);
	return 0;
}

int
agent_b64_encode(const uint8_t *p, size_t n, struct buf *out)
{
	size_t need;
	int rc;

	if (n > ((size_t)1 << 24))
		return PH_ERR_TOOBIG;
	need = (n + 2) / 3 * 4;
	if ((rc = buf_reserve(out, need + 1)) != 0)
		return rc;
	/* EVP_EncodeBlock writes a NUL after the text: room was made. */
	(void)EVP_EncodeBlock(out->data + out->len, p, (int)n);
	out->len += need;
	return 0;
}

/* ---- request and response ---------------------------------------------- */

int
agent_kms_decrypt_body(const struct agent_kms_request *rq, struct buf *out)
{
	json_t *o, *ctx;
	char *s;
	int rc = PH_ERR_NOMEM;

	if (rq->ciphertext_b64 == NULL || rq->session_id == NULL ||
	    rq->target_id == NULL)
		return PH_ERR_INVALID;
	/* spec 6.1: the context the client used for GenerateDataKey,
	 * rebuilt from what we know; the challenge only when the client
	 * said it put it in. */
	ctx = json_pack("{s:s, s:s}", "aws:ssm:SessionId", rq->session_id,
	    "aws:ssm:TargetId", rq->target_id);
	if (ctx == NULL)
		return PH_ERR_INVALID;
	if (rq->challenge != NULL && json_object_set_new(ctx,
	    "aws:ssm:RandomChallenge", json_string(rq->challenge)) != 0) {
		json_decref(ctx);
		return PH_ERR_INVALID;
	}
	o = json_pack("{s:s, s:o}", "CiphertextBlob", rq->ciphertext_b64,
	    "EncryptionContext", ctx);
	if (o == NULL)
		return PH_ERR_INVALID;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s != NULL) {
		rc = buf_append_str(out, s);
		free(s);
	}
	return rc;
}

/* Copy network text into out without control characters, bounded. */
static void
kms_clean(char *out, size_t outlen, const char *s)
{
	size_t i, j = 0;

	if (outlen == 0)
		return;
	for (i = 0; s != NULL && s[i] != '\0' && j + 1 < outlen &&
	    i < KMS_ERR_TEXT_MAX; i++)
		out[j++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ?
		    '?' : s[i];
	out[j] = '\0';
}

static void
kms_report_error(long status, json_t *o, char *err, size_t errlen)
{
	const char *type = NULL, *msg = NULL, *hash;
	char t[128], m[KMS_ERR_TEXT_MAX + 1];
	json_t *v;

	if (json_is_object(o)) {
		v = json_object_get(o, "__type");
		type = json_is_string(v) ? json_string_value(v) : NULL;
		v = json_object_get(o, "message");
		if (!json_is_string(v))
			v = json_object_get(o, "Message");
		msg = json_is_string(v) ? json_string_value(v) : NULL;
	}
	if (type != NULL && (hash = strrchr(type, '#')) != NULL)
		type = hash + 1; /* "prefix#Type" as AWS sometimes sends */
	if (type == NULL || *type == '\0') {
		snprintf(err, errlen, "KMS Decrypt failed with HTTP status %ld",
		    status);
		return;
	}
	kms_clean(t, sizeof(t), type);
	kms_clean(m, sizeof(m), msg);
	/* A refusal says so first: the key policy or the instance role
	 * lacks kms:Decrypt, not a fault to retry. */
	if (strcmp(t, "AccessDeniedException") == 0)
		snprintf(err, errlen, "kms:Decrypt denied: %s%s%s", t,
		    m[0] != '\0' ? ": " : "", m);
	else if (m[0] != '\0')
		snprintf(err, errlen, "KMS Decrypt failed: %s: %s", t, m);
	else
		snprintf(err, errlen, "KMS Decrypt failed: %s", t);
}

int
agent_kms_parse_response(long status, const uint8_t *p, size_t n,
    uint8_t key[AGENT_KMS_KEY_LEN], char *err, size_t errlen)
{
	json_t *o = NULL, *pt;
	size_t klen = 0;
	int rc = PH_ERR_INVALID;

	OPENSSL_cleanse(key, AGENT_KMS_KEY_LEN);
	if (p != NULL && n > 0 && n <= AGENT_KMS_MAX_RESPONSE)
		o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES,
		    NULL);
	if (status != 200) {
		kms_report_error(status, o, err, errlen);
		rc = status == 400 || status == 403 ? PH_ERR_DENIED :
		    PH_ERR_IO;
		goto fail;
	}
	if (!json_is_object(o)) {
		snprintf(err, errlen, "KMS Decrypt answered with something "
		    "that is not a JSON object");
		goto fail;
	}
	pt = json_object_get(o, "Plaintext");
	if (!json_is_string(pt) || agent_b64_decode(json_string_value(pt),
	    json_string_length(pt), key, AGENT_KMS_KEY_LEN, &klen) != 0 ||
	    klen != AGENT_KMS_KEY_LEN) {
		OPENSSL_cleanse(key, AGENT_KMS_KEY_LEN);
		snprintf(err, errlen, "KMS Decrypt did not return a %d-byte "
		    "data key", AGENT_KMS_KEY_LEN);
		goto fail;
	}
	rc = 0;
fail:
	if (o != NULL) {
		/* jansson keeps its own copy of the base64 key. */
		pt = json_object_get(o, "Plaintext");
		if (json_is_string(pt))
			OPENSSL_cleanse((char *)json_string_value(pt),
			    json_string_length(pt));
		json_decref(o);
	}
	return rc;
}

/* ---- the call ------------------------------------------------------------ */

static size_t
kms_write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;

	/* Less than given fails the transfer; the buffer was reserved up
	 * front, so no realloc leaves a copy of the key behind. */
	if (b->len + size * nmemb > b->cap || buf_append(b, p, size * nmemb)
	    != 0)
		return 0;
	return size * nmemb;
}

int
agent_kms_decrypt(const char *url, const char *ca_file,
    const char *cert_file, const char *key_file,
    const struct agent_kms_request *rq, long timeout_ms,
    uint8_t key[AGENT_KMS_KEY_LEN], char *err, size_t errlen)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs = NULL, *h;
	struct buf req, resp;
	long status = 0;
	CURLcode cc;
	CURL *c = NULL;
	int rc;

	OPENSSL_cleanse(key, AGENT_KMS_KEY_LEN);
	buf_init(&req, (size_t)32 << 10);
	buf_init(&resp, AGENT_KMS_MAX_RESPONSE);
	errbuf[0] = '\0';
	if ((rc = buf_reserve(&resp, AGENT_KMS_MAX_RESPONSE)) != 0 ||
	    (rc = agent_kms_decrypt_body(rq, &req)) != 0) {
		snprintf(err, errlen, "cannot build the KMS Decrypt request: "
		    "%s", ph_strerror(rc));
		goto fail;
	}
	rc = PH_ERR_NOMEM;
	if ((c = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot set up the KMS Decrypt call");
		goto fail;
	}
	/* No Authorization: the client certificate is our identity. */
	h = curl_slist_append(hdrs, "X-Amz-Target: TrentService.Decrypt");
	if (h != NULL)
		hdrs = h;
	h = h ? curl_slist_append(hdrs,
	    "Content-Type: application/x-amz-json-1.1") : NULL;
	if (h != NULL)
		hdrs = h;
	h = h ? curl_slist_append(hdrs, "Expect:") : NULL;
	if (h == NULL) {
		snprintf(err, errlen, "cannot set up the KMS Decrypt call");
		goto fail;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	/* The process's proxy settings, whatever libcurl finds in the
	 * environment (proxy.h). */
	(void)proxy_curl_apply(c, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
	curl_easy_setopt(c, CURLOPT_SSLCERT, cert_file);
	curl_easy_setopt(c, CURLOPT_SSLKEY, key_file);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, buf_cstr(&req));
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)req.len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, kms_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    timeout_ms < KMS_CONNECT_TIMEOUT_MS ? timeout_ms :
	    KMS_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "cannot reach KMS: %s",
		    errbuf[0] ? errbuf : curl_easy_strerror(cc));
		rc = cc == CURLE_OPERATION_TIMEDOUT ? PH_ERR_EXPIRED :
		    PH_ERR_IO;
		goto fail;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	rc = agent_kms_parse_response(status, resp.data, resp.len, key, err,
	    errlen);
fail:
	if (resp.data != NULL)
		OPENSSL_cleanse(resp.data, resp.cap);
	if (c != NULL)
		curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	buf_free(&req);
	buf_free(&resp);
	return rc;
}

/* ---- on the thread pool ------------------------------------------------- */

struct agent_kms_job {
	uv_work_t req;
	void (*cb)(void *ud, int rc, const uint8_t *key, const char *err);
	void *ud;
	int cancelled;
	char url[1100];
	char ca[AGENT_PATH_MAX];
	char cert[AGENT_PATH_MAX];
	char keyfile[AGENT_PATH_MAX];
	char *blob, *session_id, *target_id, *challenge;
	int rc;
	uint8_t key[AGENT_KMS_KEY_LEN];
	char err[AGENT_KMS_ERR_MAX];
};

static void
kms_job_free(struct agent_kms_job *j)
{
	OPENSSL_cleanse(j->key, sizeof(j->key));
	free(j->blob);
	free(j->session_id);
	free(j->target_id);
	free(j->challenge);
	free(j);
}

static void
kms_work(uv_work_t *req)
{
	struct agent_kms_job *j = req->data;
	struct agent_kms_request rq;

	rq.ciphertext_b64 = j->blob;
	rq.session_id = j->session_id;
	rq.target_id = j->target_id;
	rq.challenge = j->challenge;
	j->err[0] = '\0';
	j->rc = agent_kms_decrypt(j->url, j->ca, j->cert, j->keyfile, &rq,
	    AGENT_KMS_TIMEOUT_MS, j->key, j->err, sizeof(j->err));
}

static void
kms_after(uv_work_t *req, int status)
{
	struct agent_kms_job *j = req->data;

	if (!j->cancelled) {
		if (status != 0 && j->rc == 0) {
			j->rc = PH_ERR_STATE;
			snprintf(j->err, sizeof(j->err), "the KMS Decrypt "
			    "call did not run: %s", uv_strerror(status));
		}
		if (j->rc != 0 && j->err[0] == '\0')
			snprintf(j->err, sizeof(j->err), "KMS Decrypt failed: "
			    "%s", ph_strerror(j->rc));
		j->cb(j->ud, j->rc, j->rc == 0 ? j->key : NULL, j->err);
	}
	kms_job_free(j);
}

/* "https://host:port[/path]" -> "https://host:port/" */
static int
kms_url(const char *endpoint, char *out, size_t outlen)
{
	const char *host, *slash;
	size_t n;
	int w;

	if (strncmp(endpoint, "https://", 8) != 0)
		return PH_ERR_INVALID;
	host = endpoint + 8;
	slash = strchr(host, '/');
	n = slash != NULL ? (size_t)(slash - endpoint) : strlen(endpoint);
	if (n <= 8 || n > (size_t)INT32_MAX)
		return PH_ERR_INVALID;
	w = snprintf(out, outlen, "%.*s/", (int)n, endpoint);
	return w > 0 && (size_t)w < outlen ? 0 : PH_ERR_TOOBIG;
}

int
agent_kms_decrypt_start(uv_loop_t *loop, const struct agent_state *st,
    const struct agent_kms_request *rq,
    void (*cb)(void *ud, int rc, const uint8_t *key, const char *err),
    void *ud, struct agent_kms_job **out)
{
	struct agent_kms_job *j;
	int rc;

	*out = NULL;
	if (rq->ciphertext_b64 == NULL || rq->session_id == NULL ||
	    rq->target_id == NULL)
		return PH_ERR_INVALID;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return PH_ERR_NOMEM;
	j->cb = cb;
	j->ud = ud;
	j->req.data = j;
	if ((rc = kms_url(st->endpoint, j->url, sizeof(j->url))) != 0)
		goto fail;
	rc = PH_ERR_TOOBIG;
	if (snprintf(j->ca, sizeof(j->ca), "%s", st->ca_path) >=
	    (int)sizeof(j->ca) ||
	    snprintf(j->cert, sizeof(j->cert), "%s", st->cert_path) >=
	    (int)sizeof(j->cert) ||
	    snprintf(j->keyfile, sizeof(j->keyfile), "%s", st->key_path) >=
	    (int)sizeof(j->keyfile))
		goto fail;
	rc = PH_ERR_NOMEM;
	j->blob = strdup(rq->ciphertext_b64);
	j->session_id = strdup(rq->session_id);
	j->target_id = strdup(rq->target_id);
	if (rq->challenge != NULL)
		j->challenge = strdup(rq->challenge);
	if (j->blob == NULL || j->session_id == NULL || j->target_id == NULL ||
	    (rq->challenge != NULL && j->challenge == NULL))
		goto fail;
	if (uv_queue_work(loop, &j->req, kms_work, kms_after) != 0) {
		rc = PH_ERR_IO;
		goto fail;
	}
	*out = j;
	return 0;
fail:
	kms_job_free(j);
	return rc;
}

void
agent_kms_decrypt_cancel(struct agent_kms_job *job)
{
	if (job == NULL)
		return;
	job->cancelled = 1;
	/* Not started yet: kms_after runs with UV_ECANCELED and frees it;
	 * running: it frees itself when the call returns. */
	(void)uv_cancel((uv_req_t *)&job->req);
}
