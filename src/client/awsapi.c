/* awsapi: signed AWS JSON 1.1 calls over libcurl, and STS AssumeRole over
 * the Query protocol (form body, XML answer read with libxml2). libcurl's
 * own SigV4 signer (CURLOPT_AWS_SIGV4) signs the request; this file only
 * frames it and turns the answer into what the AWS CLI would print. */
#include "client/awsapi.h"
#include "common/err.h"
#include "common/proxy.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>

struct awsapi_sink {
	struct buf *b;
	int too_big;
};

static size_t
awsapi_write(void *p, size_t size, size_t nmemb, void *ud)
{
	struct awsapi_sink *s = ud;
	size_t n = size * nmemb;

	if (buf_append(s->b, p, n) != 0) {
		s->too_big = 1;
		return 0;	/* makes libcurl stop with CURLE_WRITE_ERROR */
	}
	return n;
}

/* Copy at most outlen-1 bytes, replacing control characters so a hostile
 * server cannot drive the user's terminal through an error message. */
static void
copy_printable(char *out, size_t outlen, const char *s, size_t n)
{
	size_t i;

	if (outlen == 0)
		return;
	for (i = 0; i < n && i + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[i] = '\0';
}

void
client_awsapi_error_parse(long http_status, const uint8_t *body,
    size_t body_len, char *code, size_t codelen, char *message,
    size_t msglen)
{
	json_t *root = NULL, *t;
	const char *c = NULL, *m = NULL, *hash, *colon;
	char num[32];
	size_t clen;

	if (body != NULL && body_len > 0)
		root = json_loadb((const char *)body, body_len, 0, NULL);
	if (root != NULL && json_is_object(root)) {
		t = json_object_get(root, "__type");
		if (json_is_string(t))
			c = json_string_value(t);
		t = json_object_get(root, "message");
		if (!json_is_string(t))
			t = json_object_get(root, "Message");
		if (json_is_string(t))
			m = json_string_value(t);
	}
	if (code != NULL) {
		if (c != NULL) {
			/* "com.amazonaws.ssm#InvalidTarget" and
			 * "Type:http://internal.amazon.com/..." forms. */
			colon = strchr(c, ':');
			clen = colon != NULL ? (size_t)(colon - c) : strlen(c);
			hash = memrchr(c, '#', clen);
			if (hash != NULL) {
				clen -= (size_t)(hash + 1 - c);
				c = hash + 1;
			}
			copy_printable(code, codelen, c, clen);
		} else {
			snprintf(num, sizeof(num), "%ld", http_status);
			copy_printable(code, codelen, num, strlen(num));
		}
	}
	if (message != NULL)
		copy_printable(message, msglen, m != NULL ? m : "",
		    m != NULL ? strlen(m) : 0);
	json_decref(root);
}

void
client_awsapi_error_message(const char *operation, long http_status,
    const uint8_t *body, size_t body_len, char *out, size_t outlen)
{
	char code[128], msg[1024];
	const char *op = operation != NULL ? operation : "";
	const char *dot = strrchr(op, '.');

	if (dot != NULL)
		op = dot + 1;
	client_awsapi_error_parse(http_status, body, body_len, code,
	    sizeof(code), msg, sizeof(msg));
	snprintf(out, outlen, "An error occurred (%s) when calling the %s "
	    "operation: %s", code, op, msg);
}

static int
valid_name(const char *s, size_t max, const char *extra)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    strchr(extra, s[i]) == NULL)
			return 0;
	return 1;
}

static void
transport_error(CURLcode cc, const char *url, const char *detail,
    char *errbuf, size_t errlen)
{
	const char *d = detail[0] != '\0' ? detail : curl_easy_strerror(cc);

	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		snprintf(errbuf, errlen, "Could not connect to the endpoint "
		    "URL: \"%s\" (%s)", url, d);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(errbuf, errlen, "Read timeout on endpoint URL: \"%s\" "
		    "(%s)", url, d);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		snprintf(errbuf, errlen, "SSL validation failed for %s (%s)",
		    url, d);
		break;
	default:
		snprintf(errbuf, errlen, "Request to \"%s\" failed: %s", url,
		    d);
		break;
	}
}

static int awsapi_post(const struct client_awscfg *, const char *,
    const char *, const char *, const char *, const char *, long *,
    struct buf *, char *, size_t, long);
static void awsapi_xml_error_message(const char *, long, const uint8_t *,
    size_t, char *, size_t);

int
client_awsapi_call(const struct client_awscfg *cfg, const char *target,
    const char *service, const char *body_json, long *http_status,
    struct buf *response, char *errbuf, size_t errlen)
{
	return client_awsapi_call_timeout(cfg, target, service, body_json,
	    http_status, response, errbuf, errlen, CLIENT_AWSAPI_TIMEOUT);
}

int
client_awsapi_call_timeout(const struct client_awscfg *cfg,
    const char *target, const char *service, const char *body_json,
    long *http_status, struct buf *response, char *errbuf, size_t errlen,
    long timeout_s)
{
	const char *url;

	if (http_status != NULL)
		*http_status = 0;
	if (errlen > 0)
		errbuf[0] = '\0';
	if (cfg == NULL || target == NULL || service == NULL ||
	    response == NULL || !valid_name(target, 128, "._-")) {
		snprintf(errbuf, errlen, "Invalid API call arguments.");
		return PH_ERR_INVALID;
	}
	url = client_awscfg_endpoint(cfg, service);
	return awsapi_post(cfg, url, service, target, NULL, body_json != NULL ?
	    body_json : "{}", http_status, response, errbuf, errlen,
	    timeout_s);
}

/* One signed POST: a JSON 1.1 call (target given) or a Query one (action
 * given: form body, XML answer). */
static int
awsapi_post(const struct client_awscfg *cfg, const char *url,
    const char *service, const char *target, const char *action,
    const char *body, long *http_status, struct buf *response, char *errbuf,
    size_t errlen, long timeout_s)
{
	struct curl_slist *hl = NULL, *tmp;
	struct awsapi_sink sink;
	char sigv4[160], line[CLIENT_AWSCFG_MAX_LINE + 64];
	char detail[CURL_ERROR_SIZE];
	CURL *h = NULL;
	CURLcode cc;
	long status = 0;
	int rc;

	if (http_status != NULL)
		*http_status = 0;
	if (errlen > 0)
		errbuf[0] = '\0';
	detail[0] = '\0';
	if (timeout_s <= 0)
		timeout_s = CLIENT_AWSAPI_TIMEOUT;
	if (cfg == NULL || service == NULL || response == NULL ||
	    !valid_name(service, 63, "-") ||
	    !valid_name(cfg->region, 63, "-") ||
	    cfg->access_key_id[0] == '\0') {
		snprintf(errbuf, errlen, "Invalid API call arguments.");
		return PH_ERR_INVALID;
	}
	if (url == NULL || url[0] == '\0') {
		snprintf(errbuf, errlen, "No endpoint is configured.");
		return PH_ERR_INVALID;
	}
	if (response->max > CLIENT_AWSAPI_MAX_RESPONSE)
		response->max = CLIENT_AWSAPI_MAX_RESPONSE;
	buf_reset(response);
	sink.b = response;
	sink.too_big = 0;

	if ((h = curl_easy_init()) == NULL) {
		snprintf(errbuf, errlen, "Could not initialise libcurl.");
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:%s", cfg->region, service);
	if (target != NULL)
		snprintf(line, sizeof(line), "X-Amz-Target: %s", target);
	else
		snprintf(line, sizeof(line), "Accept: text/xml");
	/* "Expect:" turns off 100-continue; the body is small. */
	if ((tmp = curl_slist_append(hl, target != NULL ?
	    "Content-Type: application/x-amz-json-1.1" : "Content-Type: "
	    "application/x-www-form-urlencoded; charset=utf-8")) == NULL ||
	    (hl = tmp, tmp = curl_slist_append(hl, line)) == NULL ||
	    (hl = tmp, tmp = curl_slist_append(hl, "Expect:")) == NULL) {
		snprintf(errbuf, errlen, "Out of memory.");
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	hl = tmp;
	if (cfg->session_token[0] != '\0') {
		snprintf(line, sizeof(line), "X-Amz-Security-Token: %s",
		    cfg->session_token);
		tmp = curl_slist_append(hl, line);
		OPENSSL_cleanse(line, sizeof(line));
		if (tmp == NULL) {
			snprintf(errbuf, errlen, "Out of memory.");
			rc = PH_ERR_NOMEM;
			goto fail;
		}
		hl = tmp;
	}

	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    proxy_curl_apply(h, url) != 0 ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") !=
	    CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_USERNAME, cfg->access_key_id) !=
	    CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->secret_access_key) !=
	    CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)strlen(body)) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_USERAGENT,
	    "porthole/" PORTHOLE_CLIENT_VERSION) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, awsapi_write) !=
	    CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
	    timeout_s < CLIENT_AWSAPI_CONNECT_TIMEOUT ? timeout_s :
	    CLIENT_AWSAPI_CONNECT_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    (cfg->ca_bundle[0] != '\0' && curl_easy_setopt(h, CURLOPT_CAINFO,
	    cfg->ca_bundle) != CURLE_OK)) {
		snprintf(errbuf, errlen, "Could not set up the request to "
		    "\"%s\".", url);
		rc = PH_ERR_INVALID;
		goto fail;
	}

	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (http_status != NULL)
		*http_status = status;
	if (sink.too_big) {
		snprintf(errbuf, errlen, "The response from \"%s\" is larger "
		    "than %zu bytes.", url, response->max);
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	if (cc != CURLE_OK) {
		transport_error(cc, url, detail, errbuf, errlen);
		rc = PH_ERR_IO;
		goto fail;
	}
	if (status >= 200 && status < 300) {
		rc = 0;
		goto fail;
	}
	if (target != NULL)
		client_awsapi_error_message(target, status, response->data,
		    response->len, errbuf, errlen);
	else
		awsapi_xml_error_message(action, status, response->data,
		    response->len, errbuf, errlen);
	if (status == 401 || status == 403)
		rc = PH_ERR_DENIED;
	else if (status >= 400 && status < 500)
		rc = PH_ERR_INVALID;
	else
		rc = PH_ERR_IO;
fail:
	if (h != NULL)
		curl_easy_cleanup(h);
	curl_slist_free_all(hl);
	return rc;
}

/* ---- Query protocol answers (STS): XML through libxml2. */

/* The first element named name (any namespace) at or under n, depth
 * first. libxml2 bounds the document's depth. */
static xmlNode *
awsapi_xml_find(xmlNode *n, const char *name)
{
	xmlNode *c, *r;

	for (c = n; c != NULL; c = c->next) {
		if (c->type == XML_ELEMENT_NODE &&
		    xmlStrcmp(c->name, BAD_CAST name) == 0)
			return c;
		if ((r = awsapi_xml_find(c->children, name)) != NULL)
			return r;
	}
	return NULL;
}

/* The text of element name into out; 0, or -1 if absent or too long. */
static int
awsapi_xml_text(xmlDoc *doc, const char *name, char *out, size_t size)
{
	xmlNode *n = awsapi_xml_find(xmlDocGetRootElement(doc), name);
	xmlChar *t;
	int rc = -1;

	out[0] = '\0';
	if (n == NULL || (t = xmlNodeGetContent(n)) == NULL)
		return -1;
	if (strlen((const char *)t) < size) {
		memcpy(out, t, strlen((const char *)t) + 1);
		rc = 0;
	}
	OPENSSL_cleanse(t, strlen((const char *)t));
	xmlFree(t);
	return rc;
}

static xmlDoc *
awsapi_xml_parse(const uint8_t *body, size_t len)
{
	if (body == NULL || len == 0 || len > CLIENT_AWSAPI_MAX_RESPONSE)
		return NULL;
	/* No network, no entity expansion, quiet. */
	return xmlReadMemory((const char *)body, (int)len, "response.xml",
	    NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static void
awsapi_xml_error_message(const char *operation, long http_status,
    const uint8_t *body, size_t body_len, char *out, size_t outlen)
{
	char code[128], msg[1024], c[128], m[1024];
	xmlDoc *doc = awsapi_xml_parse(body, body_len);

	snprintf(c, sizeof(c), "%ld", http_status);
	m[0] = '\0';
	if (doc != NULL) {
		if (awsapi_xml_text(doc, "Code", code, sizeof(code)) == 0 &&
		    code[0] != '\0')
			snprintf(c, sizeof(c), "%s", code);
		if (awsapi_xml_text(doc, "Message", msg, sizeof(msg)) == 0)
			snprintf(m, sizeof(m), "%s", msg);
		xmlFreeDoc(doc);
	}
	copy_printable(code, sizeof(code), c, strlen(c));
	copy_printable(msg, sizeof(msg), m, strlen(m));
	snprintf(out, outlen, "An error occurred (%s) when calling the %s "
	    "operation: %s", code, operation != NULL ? operation : "", msg);
}

/* Credentials from a server go into headers: printable, no spaces. */
static int
awsapi_cred_ok(const char *s, size_t min)
{
	const unsigned char *p;

	if (strlen(s) < min)
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return 0;
	return 1;
}

static int
awsapi_form_add(struct buf *b, const char *name, const char *value)
{
	char *e;
	int rc;

	if ((e = curl_easy_escape(NULL, value, 0)) == NULL)
		return PH_ERR_NOMEM;
	rc = buf_appendf(b, "&%s=%s", name, e);
	curl_free(e);
	return rc;
}

int
client_awsapi_assume_role(const struct client_awscfg *src, const char *url,
    const char *role_arn, const char *session_name, int duration_s,
    const char *external_id, struct client_awscfg *dst, char *errbuf,
    size_t errlen)
{
	struct buf body, resp;
	char n[32];
	xmlDoc *doc = NULL;
	long status = 0;
	int rc;

	buf_init(&body, 16384);
	buf_init(&resp, CLIENT_AWSAPI_MAX_RESPONSE);
	if (role_arn == NULL || session_name == NULL || dst == NULL) {
		snprintf(errbuf, errlen, "Invalid AssumeRole arguments.");
		rc = PH_ERR_INVALID;
		goto out;
	}
	snprintf(n, sizeof(n), "%d", duration_s);
	if ((rc = buf_append_str(&body, "Action=AssumeRole&Version="
	    "2011-06-15")) != 0 ||
	    (rc = awsapi_form_add(&body, "RoleArn", role_arn)) != 0 ||
	    (rc = awsapi_form_add(&body, "RoleSessionName",
	    session_name)) != 0 ||
	    (duration_s > 0 && (rc = awsapi_form_add(&body, "DurationSeconds",
	    n)) != 0) ||
	    (external_id != NULL && (rc = awsapi_form_add(&body, "ExternalId",
	    external_id)) != 0) ||
	    (rc = buf_append_u8(&body, 0)) != 0) {
		snprintf(errbuf, errlen, "The AssumeRole request is too "
		    "large.");
		goto out;
	}
	if ((rc = awsapi_post(src, url, "sts", NULL, "AssumeRole",
	    (const char *)body.data, &status, &resp, errbuf, errlen,
	    CLIENT_AWSAPI_TIMEOUT)) != 0)
		goto out;
	if ((doc = awsapi_xml_parse(resp.data, resp.len)) == NULL ||
	    awsapi_xml_text(doc, "AccessKeyId", dst->access_key_id,
	    sizeof(dst->access_key_id)) != 0 ||
	    awsapi_xml_text(doc, "SecretAccessKey", dst->secret_access_key,
	    sizeof(dst->secret_access_key)) != 0 ||
	    awsapi_xml_text(doc, "SessionToken", dst->session_token,
	    sizeof(dst->session_token)) != 0 ||
	    !awsapi_cred_ok(dst->access_key_id, 16) ||
	    !awsapi_cred_ok(dst->secret_access_key, 1) ||
	    !awsapi_cred_ok(dst->session_token, 1)) {
		OPENSSL_cleanse(dst->secret_access_key,
		    sizeof(dst->secret_access_key));
		OPENSSL_cleanse(dst->session_token,
		    sizeof(dst->session_token));
		dst->access_key_id[0] = '\0';
		snprintf(errbuf, errlen, "The AssumeRole answer from \"%s\" "
		    "has no usable credentials.", url);
		rc = PH_ERR_INVALID;
		goto out;
	}
	rc = 0;
out:
	if (doc != NULL)
		xmlFreeDoc(doc);
	OPENSSL_cleanse(resp.data, resp.cap);
	buf_free(&resp);
	buf_free(&body);
	return rc;
}
