/* s3: PutObject and multipart uploads to an S3-compatible store with
 * libcurl. libcurl signs each request (CURLOPT_AWS_SIGV4, service s3);
 * S3 wants the payload's SHA-256 in x-amz-content-sha256, which libcurl
 * (7.75+) then also takes as the signed payload hash. libcurl 7.88 signs
 * the query string as written, so every query here is already in
 * SigV4's canonical form: names sorted, values encoded, "uploads=". */
#include "server/s3.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/err.h"

#define S3_CONNECT_TIMEOUT_S 10L
#define S3_TIMEOUT_DFLT_S 60
#define S3_TIMEOUT_MAX_S 3600
#define S3_RESP_MAX (64 * 1024)    /* an answer's body: XML, small */
#define S3_ETAG_SIZE 130
#define S3_PARTS_MAX 10000         /* S3's limit */
#define S3_URL_SIZE 4096
#define S3_UPLOAD_ID_SIZE 1024
#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define S3_EXPECT_WAIT_MS 300L

/* ---- configuration ------------------------------------------------------- */

static int
cfg_string(json_t *o, const char *key, char *out, size_t size, char *why,
    size_t whysz)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	size_t i, n;

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		goto bad;
	s = json_string_value(v);
	n = strlen(s);
	if (n >= size)
		goto bad;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			goto bad;
	memcpy(out, s, n + 1);
	return 0;
bad:
	snprintf(why, whysz, "%s: want a string of at most %zu printable "
	    "characters without spaces", key, size - 1);
	return PH_ERR_INVALID;
}

/* http(s)://HOST[:PORT] with nothing after it but a slash. */
static int
endpoint_valid(char *e)
{
	size_t n = strlen(e);
	const char *host;

	if (strncmp(e, "https://", 8) == 0)
		host = e + 8;
	else if (strncmp(e, "http://", 7) == 0)
		host = e + 7;
	else
		return 0;
	if (n > 0 && e[n - 1] == '/')
		e[--n] = '\0';
	if (host[0] == '\0' || strpbrk(host, "/?#@\\") != NULL)
		return 0;
	return 1;
}

int
s3_config_load(struct s3_config *c, json_t *o, const char *region_dflt,
    char *why, size_t whysz)
{
	json_t *v;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	if (why != NULL && whysz > 0)
		why[0] = '\0';
	snprintf(c->region, sizeof(c->region), "%s",
	    region_dflt != NULL && region_dflt[0] != '\0' ? region_dflt :
	    "us-east-1");
	c->timeout_s = S3_TIMEOUT_DFLT_S;
	if (o == NULL)
		return 0;
	if ((rc = cfg_string(o, "S3Endpoint", c->endpoint,
	    sizeof(c->endpoint), why, whysz)) != 0 ||
	    (rc = cfg_string(o, "S3Region", c->region, sizeof(c->region),
	    why, whysz)) != 0 ||
	    (rc = cfg_string(o, "S3AccessKeyId", c->access_key,
	    sizeof(c->access_key), why, whysz)) != 0 ||
	    (rc = cfg_string(o, "S3SecretAccessKey", c->secret_key,
	    sizeof(c->secret_key), why, whysz)) != 0 ||
	    (rc = cfg_string(o, "S3SessionToken", c->session_token,
	    sizeof(c->session_token), why, whysz)) != 0 ||
	    (rc = cfg_string(o, "S3CAFile", c->ca_file, sizeof(c->ca_file),
	    why, whysz)) != 0)
		goto fail;
	if (c->endpoint[0] != '\0' && !endpoint_valid(c->endpoint)) {
		snprintf(why, whysz, "S3Endpoint: want http(s)://HOST[:PORT]");
		rc = PH_ERR_INVALID;
		goto fail;
	}
	if (c->region[0] == '\0' || strspn(c->region,
	    "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(c->region)) {
		snprintf(why, whysz, "S3Region: want a region name");
		rc = PH_ERR_INVALID;
		goto fail;
	}
	/* A store of one's own (MinIO, Ceph, Garage) rarely has a wildcard
	 * DNS name for its buckets; AWS prefers virtual hosts. */
	c->path_style = c->endpoint[0] != '\0';
	if ((v = json_object_get(o, "S3PathStyle")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(why, whysz, "S3PathStyle: want true or false");
			rc = PH_ERR_INVALID;
			goto fail;
		}
		c->path_style = json_is_true(v);
	}
	if ((v = json_object_get(o, "S3TimeoutSeconds")) != NULL) {
		json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;

		if (n < 1 || n > S3_TIMEOUT_MAX_S) {
			snprintf(why, whysz, "S3TimeoutSeconds: want 1 to %d",
			    S3_TIMEOUT_MAX_S);
			rc = PH_ERR_INVALID;
			goto fail;
		}
		c->timeout_s = (long)n;
	}
	if ((c->access_key[0] == '\0') != (c->secret_key[0] == '\0')) {
		snprintf(why, whysz, "S3AccessKeyId and S3SecretAccessKey "
		    "go together");
		rc = PH_ERR_INVALID;
		goto fail;
	}
	return 0;
fail:
	s3_config_clear(c);
	return rc;
}

void
s3_config_clear(struct s3_config *c)
{
	OPENSSL_cleanse(c->secret_key, sizeof(c->secret_key));
	OPENSSL_cleanse(c->session_token, sizeof(c->session_token));
}

int
s3_bucket_valid(const char *b)
{
	size_t n = b != NULL ? strlen(b) : 0;

	if (n < 3 || n > S3_BUCKET_MAX)
		return 0;
	if (strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n)
		return 0;
	if (b[0] == '.' || b[0] == '-' || b[n - 1] == '.' ||
	    b[n - 1] == '-' || strstr(b, "..") != NULL)
		return 0;
	return 1;
}

/* ---- URLs ---------------------------------------------------------------- */

/* SigV4's URI encoding: unreserved characters stay, '/' stays in a key,
 * everything else is %XX. */
static int
uri_encode(const char *in, int keep_slash, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in != '\0'; in++) {
		unsigned char ch = (unsigned char)*in;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
			if (o + 1 >= size)
				return PH_ERR_TOOBIG;
			out[o++] = (char)ch;
		} else {
			if (o + 3 >= size)
				return PH_ERR_TOOBIG;
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	if (o >= size)
		return PH_ERR_TOOBIG;
	out[o] = '\0';
	return 0;
}

int
s3_object_url(const struct s3_config *c, const char *bucket, const char *key,
    char *out, size_t size)
{
	char ekey[3 * S3_KEY_MAX + 1], base[600];
	const char *host;
	size_t scheme;
	int n;

	if (out != NULL && size > 0)
		out[0] = '\0';
	if (c == NULL || out == NULL || !s3_bucket_valid(bucket) ||
	    key == NULL || key[0] == '\0' || strlen(key) > S3_KEY_MAX)
		return PH_ERR_INVALID;
	if (uri_encode(key, 1, ekey, sizeof(ekey)) != 0)
		return PH_ERR_TOOBIG;
	if (c->endpoint[0] != '\0')
		snprintf(base, sizeof(base), "%s", c->endpoint);
	else
		snprintf(base, sizeof(base), "https://s3.%s.amazonaws.com",
		    c->region);
	host = strstr(base, "://");
	if (host == NULL)
		return PH_ERR_INVALID;
	host += 3;
	scheme = (size_t)(host - base);
	if (c->path_style)
		n = snprintf(out, size, "%s/%s/%s", base, bucket, ekey);
	else
		n = snprintf(out, size, "%.*s%s.%s/%s", (int)scheme, base,
		    bucket, host, ekey);
	if (n < 0 || (size_t)n >= size) {
		out[0] = '\0';
		return PH_ERR_TOOBIG;
	}
	return 0;
}

/* ---- one request --------------------------------------------------------- */

struct s3_call {
	const char *method;          /* PUT, POST or DELETE */
	char url[S3_URL_SIZE];
	const unsigned char *body;
	size_t len;
	size_t off;                  /* bytes of body sent */
	int sse;                     /* send the encryption headers */
	long status;
	char etag[S3_ETAG_SIZE];
	char *resp;                  /* up to S3_RESP_MAX, NUL-terminated */
	size_t resp_len;
};

struct s3_job {
	const struct s3_config *cfg;
	const struct s3_object *obj;
	const atomic_int *abort_flag;
	char *err;
	size_t errsz;
};

static size_t
call_read(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct s3_call *c = arg;
	size_t n = size * nmemb, left = c->len - c->off;

	if (n > left)
		n = left;
	memcpy(buf, c->body + c->off, n);
	c->off += n;
	return n;
}

static int
call_seek(void *arg, curl_off_t offset, int origin)
{
	struct s3_call *c = arg;

	if (origin != SEEK_SET || offset < 0 || (size_t)offset > c->len)
		return CURL_SEEKFUNC_CANTSEEK;
	c->off = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static size_t
call_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct s3_call *c = arg;
	size_t n = size * nmemb, room;
	char *r;

	if (c->resp == NULL) {
		if ((r = malloc(S3_RESP_MAX + 1)) == NULL)
			return 0;
		c->resp = r;
	}
	/* Past the cap the rest is read and dropped: an answer is small. */
	room = S3_RESP_MAX - c->resp_len;
	if (room > n)
		room = n;
	memcpy(c->resp + c->resp_len, p, room);
	c->resp_len += room;
	c->resp[c->resp_len] = '\0';
	return n;
}

static size_t
call_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct s3_call *c = arg;
	size_t n = size * nmemb, v;

	if (n > 5 && strncasecmp(p, "etag:", 5) == 0) {
		v = 5;
		while (v < n && (p[v] == ' ' || p[v] == '\t'))
			v++;
		while (n > v && (p[n - 1] == '\r' || p[n - 1] == '\n' ||
		    p[n - 1] == ' '))
			n--;
		if (n > v && n - v < sizeof(c->etag)) {
			memcpy(c->etag, p + v, n - v);
			c->etag[n - v] = '\0';
		}
	}
	return size * nmemb;
}

static int
call_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	const atomic_int *abort_flag = arg;

	(void)dt; (void)dn; (void)ut; (void)un;
	return abort_flag != NULL && atomic_load(abort_flag) ? 1 : 0;
}

static int
sha256_hex(const unsigned char *p, size_t n, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned len = 0, i;

	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
		return PH_ERR_CRYPTO;
	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

static int
add_header2(struct curl_slist **h, const char *name, const char *v)
{
	char line[2200];
	struct curl_slist *n;
	int len = snprintf(line, sizeof(line), "%s: %s", name, v);

	if (len < 0 || (size_t)len >= sizeof(line))
		return PH_ERR_TOOBIG;
	if ((n = curl_slist_append(*h, line)) == NULL)
		return PH_ERR_NOMEM;
	*h = n;
	return 0;
}

/* The text of an S3 <Error> answer, printable and short. */
static void
error_words(const struct s3_call *c, char *out, size_t size)
{
	char code[64] = "", msg[160] = "";
	xmlDocPtr doc = NULL;
	xmlNodePtr n;
	size_t i;

	if (c->resp != NULL && c->resp_len > 0)
		doc = xmlReadMemory(c->resp, (int)c->resp_len, "error.xml",
		    NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
		    XML_PARSE_NOWARNING);
	n = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
	if (n != NULL && xmlStrcmp(n->name, BAD_CAST "Error") == 0) {
		for (n = n->children; n != NULL; n = n->next) {
			xmlChar *t;

			if (n->type != XML_ELEMENT_NODE)
				continue;
			t = xmlNodeGetContent(n);
			if (t == NULL)
				continue;
			if (xmlStrcmp(n->name, BAD_CAST "Code") == 0)
				snprintf(code, sizeof(code), "%s", t);
			else if (xmlStrcmp(n->name, BAD_CAST "Message") == 0)
				snprintf(msg, sizeof(msg), "%s", t);
			xmlFree(t);
		}
	}
	xmlFreeDoc(doc);
	snprintf(out, size, "%s %s HTTP %ld%s%s%s%s", c->method,
	    strchr(c->url, '?') != NULL ? "(multipart)" : "object",
	    c->status, code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
	for (i = 0; out[i] != '\0'; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == '"' ||
		    out[i] == '\\' || out[i] == 0x7f)
			out[i] = ' ';
}

/* A request's headers, lower-case names. */
struct s3_hdr {
	const char *name;
	const char *value;
};

#define S3_HDRS_MAX 10

static int
hdr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct s3_hdr *)a)->name,
	    ((const struct s3_hdr *)b)->name);
}

static int
hmac256(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned len = 0;

	if (HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg,
	    strlen(msg), out, &len) == NULL || len != 32)
		return PH_ERR_CRYPTO;
	return 0;
}

static void
hex32(const unsigned char *p, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[64] = '\0';
}

/* SigV4 as AWS documents it, for the requests libcurl 7.88 signs wrong:
 * it sorts whole "name:value" lines, so x-amz-server-side-encryption
 * goes after x-amz-server-side-encryption-aws-kms-key-id. Our URL is
 * already canonical: path encoded once, query sorted and encoded. The
 * host, date and authorization headers are appended to hd. */
static int
own_sign(struct s3_job *j, struct s3_call *c, struct s3_hdr *hd, size_t *n,
    char *host, size_t hostsz, char *date, char *auth, size_t authsz)
{
	const struct s3_config *cfg = j->cfg;
	const char *p, *path, *query, *hash = NULL;
	char *cr = NULL, sts[300], scope[128], signed_names[400], sig[65];
	char chash[65], key[160], day[9];
	unsigned char k1[32], k2[32];
	size_t i, crsz = 16384, o = 0, sn = 0;
	struct tm tm;
	time_t now = time(NULL);
	int rc = PH_ERR_TOOBIG, w;

	if ((p = strstr(c->url, "://")) == NULL)
		return PH_ERR_INVALID;
	p += 3;
	path = strchr(p, '/');
	if (path == NULL || (size_t)(path - p) >= hostsz)
		return PH_ERR_INVALID;
	memcpy(host, p, (size_t)(path - p));
	host[path - p] = '\0';
	query = strchr(path, '?');
	gmtime_r(&now, &tm);
	strftime(date, 17, "%Y%m%dT%H%M%SZ", &tm);
	if (*n + 2 > S3_HDRS_MAX)
		return PH_ERR_TOOBIG;
	hd[(*n)++] = (struct s3_hdr){ "host", host };
	hd[(*n)++] = (struct s3_hdr){ "x-amz-date", date };
	qsort(hd, *n, sizeof(*hd), hdr_cmp);
	if ((cr = malloc(crsz)) == NULL)
		return PH_ERR_NOMEM;
	w = snprintf(cr, crsz, "%s\n%.*s\n%s\n", c->method,
	    (int)(query != NULL ? (size_t)(query - path) : strlen(path)),
	    path, query != NULL ? query + 1 : "");
	if (w < 0 || (size_t)w >= crsz)
		goto done;
	o = (size_t)w;
	signed_names[0] = '\0';
	for (i = 0; i < *n; i++) {
		w = snprintf(cr + o, crsz - o, "%s:%s\n", hd[i].name,
		    hd[i].value);
		if (w < 0 || (size_t)w >= crsz - o)
			goto done;
		o += (size_t)w;
		w = snprintf(signed_names + sn, sizeof(signed_names) - sn,
		    "%s%s", i > 0 ? ";" : "", hd[i].name);
		if (w < 0 || (size_t)w >= sizeof(signed_names) - sn)
			goto done;
		sn += (size_t)w;
		if (strcmp(hd[i].name, "x-amz-content-sha256") == 0)
			hash = hd[i].value;
	}
	if (hash == NULL)
		goto done;
	w = snprintf(cr + o, crsz - o, "\n%s\n%s", signed_names, hash);
	if (w < 0 || (size_t)w >= crsz - o)
		goto done;
	o += (size_t)w;
	if ((rc = sha256_hex((const unsigned char *)cr, o, chash)) != 0)
		goto done;
	snprintf(scope, sizeof(scope), "%.8s/%s/s3/aws4_request", date,
	    cfg->region);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", date,
	    scope, chash);
	snprintf(key, sizeof(key), "AWS4%s", cfg->secret_key);
	memcpy(day, date, 8);
	day[8] = '\0';
	if ((rc = hmac256(key, strlen(key), day, k1)) != 0 ||
	    (rc = hmac256(k1, 32, cfg->region, k2)) != 0 ||
	    (rc = hmac256(k2, 32, "s3", k1)) != 0 ||
	    (rc = hmac256(k1, 32, "aws4_request", k2)) != 0 ||
	    (rc = hmac256(k2, 32, sts, k1)) != 0)
		goto done;
	hex32(k1, sig);
	w = snprintf(auth, authsz, "AWS4-HMAC-SHA256 Credential=%s/%s, "
	    "SignedHeaders=%s, Signature=%s", cfg->access_key, scope,
	    signed_names, sig);
	rc = w < 0 || (size_t)w >= authsz ? PH_ERR_TOOBIG : 0;
done:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	free(cr);
	return rc;
}

/* Send one signed request; 0 on a 2xx answer. */
static int
s3_call_run(struct s3_job *j, struct s3_call *c, const char *content_type)
{
	const struct s3_config *cfg = j->cfg;
	char sigv4[128], hash[65], cerr[CURL_ERROR_SIZE], host[600];
	char date[17], auth[700];
	struct s3_hdr hd[S3_HDRS_MAX];
	struct curl_slist *h = NULL;
	CURL *cu = NULL;
	CURLcode cc;
	size_t n = 0, i;
	int rc, own = 0;

	c->status = 0;
	c->etag[0] = '\0';
	c->resp_len = 0;
	c->off = 0;
	cerr[0] = '\0';
	if ((rc = sha256_hex(c->body != NULL ? c->body :
	    (const unsigned char *)"", c->len, hash)) != 0)
		goto fail;
	hd[n++] = (struct s3_hdr){ "x-amz-content-sha256", hash };
	hd[n++] = (struct s3_hdr){ "content-type", content_type };
	if (cfg->session_token[0] != '\0')
		hd[n++] = (struct s3_hdr){ "x-amz-security-token",
		    cfg->session_token };
	if (c->sse && j->obj->sse == S3_SSE_S3)
		hd[n++] = (struct s3_hdr){ "x-amz-server-side-encryption",
		    "AES256" };
	if (c->sse && j->obj->sse == S3_SSE_KMS) {
		hd[n++] = (struct s3_hdr){ "x-amz-server-side-encryption",
		    "aws:kms" };
		if (j->obj->kms_key_id != NULL &&
		    j->obj->kms_key_id[0] != '\0') {
			hd[n++] = (struct s3_hdr){
			    "x-amz-server-side-encryption-aws-kms-key-id",
			    j->obj->kms_key_id };
			own = 1;
		}
	}
	if (own && (rc = own_sign(j, c, hd, &n, host, sizeof(host), date,
	    auth, sizeof(auth))) != 0) {
		snprintf(j->err, j->errsz, "cannot sign the request");
		goto fail;
	}
	for (i = 0; i < n; i++)
		if ((rc = add_header2(&h, hd[i].name, hd[i].value)) != 0)
			goto fail;
	if (own && (rc = add_header2(&h, "authorization", auth)) != 0)
		goto fail;
	if ((cu = curl_easy_init()) == NULL) {
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	if (!own) {
		snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", cfg->region);
		curl_easy_setopt(cu, CURLOPT_AWS_SIGV4, sigv4);
		curl_easy_setopt(cu, CURLOPT_USERNAME, cfg->access_key);
		curl_easy_setopt(cu, CURLOPT_PASSWORD, cfg->secret_key);
	}
	curl_easy_setopt(cu, CURLOPT_URL, c->url);
	curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, S3_CONNECT_TIMEOUT_S);
	/* A transfer slower than a byte a second for the timeout ends. */
	curl_easy_setopt(cu, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(cu, CURLOPT_LOW_SPEED_TIME, cfg->timeout_s);
	curl_easy_setopt(cu, CURLOPT_EXPECT_100_TIMEOUT_MS, S3_EXPECT_WAIT_MS);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, call_write);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, call_header);
	curl_easy_setopt(cu, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(cu, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(cu, CURLOPT_XFERINFOFUNCTION, call_progress);
	curl_easy_setopt(cu, CURLOPT_XFERINFODATA, (void *)j->abort_flag);
	if (cfg->ca_file[0] != '\0')
		curl_easy_setopt(cu, CURLOPT_CAINFO, cfg->ca_file);
	if (strcmp(c->method, "PUT") == 0) {
		curl_easy_setopt(cu, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(cu, CURLOPT_READFUNCTION, call_read);
		curl_easy_setopt(cu, CURLOPT_READDATA, c);
		curl_easy_setopt(cu, CURLOPT_SEEKFUNCTION, call_seek);
		curl_easy_setopt(cu, CURLOPT_SEEKDATA, c);
		curl_easy_setopt(cu, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)c->len);
	} else if (strcmp(c->method, "POST") == 0) {
		curl_easy_setopt(cu, CURLOPT_POST, 1L);
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS, c->body != NULL ?
		    (const char *)c->body : "");
		curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)c->len);
	} else {
		curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, c->method);
	}
	cc = curl_easy_perform(cu);
	if (cc != CURLE_OK) {
		if (cc == CURLE_ABORTED_BY_CALLBACK) {
			snprintf(j->err, j->errsz, "stopped");
			rc = PH_ERR_STATE;
		} else {
			snprintf(j->err, j->errsz, "%s: %s",
			    curl_easy_strerror(cc), cerr[0] ? cerr : "-");
			rc = PH_ERR_IO;
		}
		goto fail;
	}
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &c->status);
	if (c->status < 200 || c->status > 299) {
		error_words(c, j->err, j->errsz);
		rc = c->status == 403 ? PH_ERR_DENIED : PH_ERR_IO;
		goto fail;
	}
	rc = 0;
fail:
	curl_easy_cleanup(cu);
	curl_slist_free_all(h);
	return rc;
}

static void
call_free(struct s3_call *c)
{
	free(c->resp);
	c->resp = NULL;
}

/* The object's URL with a canonical query appended ("" for none). */
static int
call_url(struct s3_job *j, struct s3_call *c, const char *query)
{
	size_t n;

	if (s3_object_url(j->cfg, j->obj->bucket, j->obj->key, c->url,
	    sizeof(c->url)) != 0)
		return PH_ERR_TOOBIG;
	n = strlen(c->url);
	if (query[0] != '\0' && (size_t)snprintf(c->url + n,
	    sizeof(c->url) - n, "?%s", query) >= sizeof(c->url) - n)
		return PH_ERR_TOOBIG;
	return 0;
}

/* ---- XML answers --------------------------------------------------------- */

/* The text of root/child of an answer, if the root is the one wanted
 * (NULL: any but <Error>). */
static int
xml_child_text(const struct s3_call *c, const char *root, const char *child,
    char *out, size_t size)
{
	xmlDocPtr doc;
	xmlNodePtr n;
	int rc = PH_ERR_INVALID;

	out[0] = '\0';
	if (c->resp == NULL || c->resp_len == 0)
		return PH_ERR_INVALID;
	doc = xmlReadMemory(c->resp, (int)c->resp_len, "answer.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	n = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
	if (n == NULL || (root != NULL && xmlStrcmp(n->name,
	    BAD_CAST root) != 0) || xmlStrcmp(n->name, BAD_CAST "Error") == 0)
		goto done;
	for (n = n->children; n != NULL; n = n->next) {
		xmlChar *t;

		if (n->type != XML_ELEMENT_NODE ||
		    xmlStrcmp(n->name, BAD_CAST child) != 0)
			continue;
		if ((t = xmlNodeGetContent(n)) == NULL)
			break;
		if (xmlStrlen(t) > 0 && (size_t)xmlStrlen(t) < size) {
			memcpy(out, t, (size_t)xmlStrlen(t) + 1);
			rc = 0;
		}
		xmlFree(t);
		break;
	}
done:
	xmlFreeDoc(doc);
	return rc;
}

static int
complete_body(char etags[][S3_ETAG_SIZE], unsigned nparts, xmlBufferPtr buf)
{
	xmlTextWriterPtr w;
	unsigned i;
	int ok = 1;

	if ((w = xmlNewTextWriterMemory(buf, 0)) == NULL)
		return PH_ERR_NOMEM;
	ok &= xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL) >= 0;
	ok &= xmlTextWriterStartElementNS(w, NULL,
	    BAD_CAST "CompleteMultipartUpload", BAD_CAST S3_NS) >= 0;
	for (i = 0; ok && i < nparts; i++) {
		ok &= xmlTextWriterStartElement(w, BAD_CAST "Part") >= 0;
		ok &= xmlTextWriterWriteFormatElement(w,
		    BAD_CAST "PartNumber", "%u", i + 1) >= 0;
		ok &= xmlTextWriterWriteElement(w, BAD_CAST "ETag",
		    BAD_CAST etags[i]) >= 0;
		ok &= xmlTextWriterEndElement(w) >= 0;
	}
	ok &= xmlTextWriterEndDocument(w) >= 0;
	xmlFreeTextWriter(w);
	return ok ? 0 : PH_ERR_NOMEM;
}

/* ---- uploads ------------------------------------------------------------- */

static int
read_full(int fd, unsigned char *p, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return PH_ERR_IO;
		got += (size_t)r;
	}
	return 0;
}

static int
put_object(struct s3_job *j, int fd, size_t size)
{
	struct s3_call c;
	unsigned char *buf = NULL;
	int rc;

	memset(&c, 0, sizeof(c));
	c.method = "PUT";
	c.sse = 1;
	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return PH_ERR_NOMEM;
	if ((rc = read_full(fd, buf, size)) != 0) {
		snprintf(j->err, j->errsz, "cannot read the local file");
		goto done;
	}
	c.body = buf;
	c.len = size;
	if ((rc = call_url(j, &c, "")) != 0)
		goto done;
	if ((rc = s3_call_run(j, &c, j->obj->content_type)) != 0)
		goto done;
	if (c.etag[0] == '\0') {
		snprintf(j->err, j->errsz, "PUT object: HTTP %ld without an "
		    "ETag", c.status);
		rc = PH_ERR_IO;
	}
done:
	call_free(&c);
	free(buf);
	return rc;
}

static void
abort_multipart(struct s3_job *j, const char *eid)
{
	char query[S3_UPLOAD_ID_SIZE * 3 + 16], keep[256];
	struct s3_call c;

	/* Best effort, so the parts stop costing storage; the bucket's
	 * lifecycle rule should clean up what this misses. */
	memset(&c, 0, sizeof(c));
	c.method = "DELETE";
	snprintf(keep, sizeof(keep), "%s", j->err);
	snprintf(query, sizeof(query), "uploadId=%s", eid);
	if (call_url(j, &c, query) == 0)
		(void)s3_call_run(j, &c, "application/octet-stream");
	call_free(&c);
	snprintf(j->err, j->errsz, "%s", keep);
}

static int
multipart(struct s3_job *j, int fd, size_t size)
{
	char upload_id[S3_UPLOAD_ID_SIZE], eid[S3_UPLOAD_ID_SIZE * 3];
	char query[S3_UPLOAD_ID_SIZE * 3 + 64], got[S3_ETAG_SIZE];
	char (*etags)[S3_ETAG_SIZE] = NULL;
	unsigned char *buf = NULL;
	xmlBufferPtr xb = NULL;
	struct s3_call c;
	unsigned nparts, i;
	int rc, created = 0;

	memset(&c, 0, sizeof(c));
	nparts = (unsigned)((size + S3_PART_SIZE - 1) / S3_PART_SIZE);
	if (nparts == 0 || nparts > S3_PARTS_MAX) {
		snprintf(j->err, j->errsz, "file too large for one object");
		return PH_ERR_TOOBIG;
	}
	if ((etags = calloc(nparts, sizeof(*etags))) == NULL ||
	    (buf = malloc(S3_PART_SIZE)) == NULL) {
		rc = PH_ERR_NOMEM;
		goto done;
	}
	/* CreateMultipartUpload: the encryption is asked for here. */
	c.method = "POST";
	c.sse = 1;
	if ((rc = call_url(j, &c, "uploads=")) != 0 ||
	    (rc = s3_call_run(j, &c, j->obj->content_type)) != 0)
		goto done;
	if (xml_child_text(&c, "InitiateMultipartUploadResult", "UploadId",
	    upload_id, sizeof(upload_id)) != 0 ||
	    uri_encode(upload_id, 0, eid, sizeof(eid)) != 0) {
		snprintf(j->err, j->errsz, "CreateMultipartUpload: no "
		    "UploadId in the answer");
		rc = PH_ERR_INVALID;
		goto done;
	}
	created = 1;
	for (i = 0; i < nparts; i++) {
		size_t n = i + 1 < nparts ? S3_PART_SIZE :
		    size - (size_t)i * S3_PART_SIZE;

		if ((rc = read_full(fd, buf, n)) != 0) {
			snprintf(j->err, j->errsz, "cannot read the local "
			    "file");
			goto done;
		}
		call_free(&c);
		memset(&c, 0, sizeof(c));
		c.method = "PUT";
		c.body = buf;
		c.len = n;
		/* Canonical order: partNumber before uploadId. */
		snprintf(query, sizeof(query), "partNumber=%u&uploadId=%s",
		    i + 1, eid);
		if ((rc = call_url(j, &c, query)) != 0 ||
		    (rc = s3_call_run(j, &c, "application/octet-stream")) != 0)
			goto done;
		if (c.etag[0] == '\0') {
			snprintf(j->err, j->errsz, "UploadPart %u: no ETag",
			    i + 1);
			rc = PH_ERR_IO;
			goto done;
		}
		memcpy(etags[i], c.etag, sizeof(etags[i]));
	}
	if ((xb = xmlBufferCreate()) == NULL ||
	    complete_body(etags, nparts, xb) != 0) {
		rc = PH_ERR_NOMEM;
		goto done;
	}
	call_free(&c);
	memset(&c, 0, sizeof(c));
	c.method = "POST";
	c.body = xmlBufferContent(xb);
	c.len = (size_t)xmlBufferLength(xb);
	snprintf(query, sizeof(query), "uploadId=%s", eid);
	if ((rc = call_url(j, &c, query)) != 0 ||
	    (rc = s3_call_run(j, &c, "application/xml")) != 0)
		goto done;
	/* S3 may answer 200 and still fail: the body says which. The root
	 * is CompleteMultipartUploadResult (some stores say ...Response). */
	if (xml_child_text(&c, NULL, "ETag", got,
	    sizeof(got)) != 0) {
		error_words(&c, j->err, j->errsz);
		rc = PH_ERR_IO;
		goto done;
	}
	created = 0;
	rc = 0;
done:
	if (rc != 0 && created)
		abort_multipart(j, eid);
	call_free(&c);
	xmlBufferFree(xb);
	free(buf);
	free(etags);
	return rc;
}

int
s3_upload(const struct s3_config *cfg, const struct s3_object *o,
    const char *path, const atomic_int *abort_flag, char *err, size_t errsz)
{
	struct s3_object obj;
	struct s3_job j;
	struct stat sb;
	char dummy[8];
	int fd = -1, rc;

	if (err == NULL || errsz == 0) {
		err = dummy;
		errsz = sizeof(dummy);
	}
	err[0] = '\0';
	if (cfg == NULL || o == NULL || path == NULL ||
	    !s3_bucket_valid(o->bucket) || o->key == NULL ||
	    o->key[0] == '\0' || strlen(o->key) > S3_KEY_MAX) {
		snprintf(err, errsz, "invalid upload request");
		return PH_ERR_INVALID;
	}
	if (cfg->access_key[0] == '\0' || cfg->secret_key[0] == '\0') {
		snprintf(err, errsz, "no S3 credentials configured "
		    "(S3AccessKeyId, S3SecretAccessKey in config.json)");
		return PH_ERR_STATE;
	}
	obj = *o;
	if (obj.content_type == NULL)
		obj.content_type = "application/octet-stream";
	memset(&j, 0, sizeof(j));
	j.cfg = cfg;
	j.obj = &obj;
	j.abort_flag = abort_flag;
	j.err = err;
	j.errsz = errsz;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errsz, "cannot open the local file (errno %d)",
		    errno);
		rc = PH_ERR_NOTFOUND;
		goto done;
	}
	if ((uint64_t)sb.st_size <= S3_PART_SIZE)
		rc = put_object(&j, fd, (size_t)sb.st_size);
	else
		rc = multipart(&j, fd, (size_t)sb.st_size);
done:
	if (fd >= 0)
		close(fd);
	return rc;
}
