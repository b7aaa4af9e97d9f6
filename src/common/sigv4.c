/* sigv4: AWS Signature Version 4 verification of header-signed requests,
 * following AWS's "Create a signed AWS API request" documentation: rebuild
 * the canonical request from what was received, derive the signing key from
 * the caller's secret and compare signatures in constant time. */
#include "common/sigv4.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/hex.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* An Authorization header longer than this is refused before parsing. */
#define SIGV4_MAX_AUTH_LEN 8192
#define SIGV4_MAX_SIGNED_HEADERS 64
/* Canonical request bound: path, query and signed headers all come from a
 * request head that the HTTP layer already limits to 64 KiB, so this only
 * guards against an expansion by percent-encoding (at most 3x). */
#define SIGV4_MAX_CANONICAL ((size_t)1 << 20)
#define SIGV4_SECRET_MAX 512
/* "YYYYMMDDTHHMMSSZ": the ISO 8601 basic format AWS requires. */
#define SIGV4_AMZDATE_LEN 16

static const char msg_mismatch[] = "The request signature we calculated does "
    "not match the signature you provided. Check your AWS Secret Access Key "
    "and signing method.";
static const char msg_badtoken[] =
    "The security token included in the request is invalid.";

struct sigv4_auth {
	char akid[sizeof(((struct sigv4_identity *)0)->access_key_id)];
	char date[9];
	char region[sizeof(((struct sigv4_identity *)0)->region)];
	char service[sizeof(((struct sigv4_identity *)0)->service)];
	/* Points into the caller's copy of the header. */
	const char *signed_headers;
	char signature[65];
};

struct sigv4_qpair {
	size_t koff, klen;	/* encoded name, offset into the pair buffer */
	size_t voff, vlen;	/* encoded value */
};

static void set_err(struct sigv4_error *err, int status, const char *type,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
set_err(struct sigv4_error *err, int status, const char *type,
    const char *fmt, ...)
{
	va_list ap;

	err->http_status = status;
	err->type = type;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

static int
is_unreserved(unsigned char c)
{
	/* RFC 3986 section 2.3, which SigV4 uses for its URI encoding. */
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

static int
uri_encode(struct buf *b, const uint8_t *p, size_t n, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3];
	size_t i, run;
	int rc;

	for (i = 0; i < n; i += run) {
		for (run = 0; i + run < n && (is_unreserved(p[i + run]) ||
		    (keep_slash && p[i + run] == '/')); run++)
			;
		if (run > 0) {
			if ((rc = buf_append(b, p + i, run)) != 0)
				return rc;
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[p[i] >> 4];
		esc[2] = hex[p[i] & 0xf];
		if ((rc = buf_append(b, esc, 3)) != 0)
			return rc;
		run = 1;
	}
	return 0;
}

/* Decode a query component and encode it the canonical way (so "a%2fb",
 * "a%2Fb" and "a/b" all become "a%2Fb"). '+' decodes to a space as in form
 * encoding: botocore sends parameters that way while signing "%20". A '%'
 * that does not start a valid escape is taken literally. */
static int
query_component(struct buf *b, const char *p, size_t n)
{
	uint8_t tmp[256];
	size_t i, t = 0;
	int x, rc;

	for (i = 0; i < n; i++) {
		uint8_t c = (uint8_t)p[i];

		if (c == '%' && i + 2 < n && (x = hex_byte(p + i + 1)) >= 0) {
			c = (uint8_t)x;
			i += 2;
		} else if (c == '+')
			c = ' ';
		tmp[t++] = c;
		if (t == sizeof(tmp)) {
			if ((rc = uri_encode(b, tmp, t, 0)) != 0)
				return rc;
			t = 0;
		}
	}
	return uri_encode(b, tmp, t, 0);
}

static int
bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int
qpair_cmp(const struct sigv4_qpair *a, const struct sigv4_qpair *b,
    const uint8_t *base)
{
	int c;

	c = bytes_cmp(base + a->koff, a->klen, base + b->koff, b->klen);
	if (c != 0)
		return c;
	return bytes_cmp(base + a->voff, a->vlen, base + b->voff, b->vlen);
}

/* Insertion sort keeps this reentrant (qsort has no context argument in
 * C11); queries are short, and the count is bounded by the caller. */
static void
qpairs_sort(struct sigv4_qpair *v, size_t n, const uint8_t *base)
{
	struct sigv4_qpair t;
	size_t i, j;

	for (i = 1; i < n; i++) {
		t = v[i];
		for (j = i; j > 0 && qpair_cmp(&v[j - 1], &t, base) > 0; j--)
			v[j] = v[j - 1];
		v[j] = t;
	}
}

/* Canonical query string: every name=value pair decoded and re-encoded,
 * sorted by encoded name then encoded value, joined with '&'. With raw set,
 * the pairs are kept as sent instead (empty ones too) and only sorted: what
 * botocore signs for a query that is part of the URL it was given, where a
 * literal '+' stays '+' (AWS's rule above turns it into "%20", as botocore
 * does for parameters it encodes itself and as libcurl does). */
static int
canonical_query(struct buf *out, const char *q, int raw)
{
	struct sigv4_qpair *pairs = NULL;
	struct buf enc;
	size_t n = 0, max = 1, i, qlen;
	const char *p, *amp, *eq, *end;
	const uint8_t *base;
	int rc = 0;

	buf_init(&enc, SIGV4_MAX_CANONICAL);
	qlen = strlen(q);
	if (qlen == 0)
		goto fail;
	for (p = q; *p != '\0'; p++)
		if (*p == '&')
			max++;
	/* Bounded so the quadratic sort stays cheap on a hostile query. */
	if (max > 1024) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	if ((pairs = calloc(max, sizeof(*pairs))) == NULL) {
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	for (p = q; p <= q + qlen; p = end + 1) {
		amp = memchr(p, '&', (size_t)(q + qlen - p));
		end = amp != NULL ? amp : q + qlen;
		if (end == p && !raw)
			continue;	/* "a=1&&b=2": nothing between */
		eq = memchr(p, '=', (size_t)(end - p));
		if (raw) {
			pairs[n].koff = (size_t)(p - q);
			pairs[n].klen = (size_t)((eq ? eq : end) - p);
			pairs[n].voff = eq ? (size_t)(eq + 1 - q) : 0;
			pairs[n].vlen = eq ? (size_t)(end - eq - 1) : 0;
			n++;
			continue;
		}
		pairs[n].koff = enc.len;
		if ((rc = query_component(&enc, p, (size_t)((eq ? eq : end) -
		    p))) != 0)
			goto fail;
		pairs[n].klen = enc.len - pairs[n].koff;
		pairs[n].voff = enc.len;
		if (eq != NULL && (rc = query_component(&enc, eq + 1,
		    (size_t)(end - eq - 1))) != 0)
			goto fail;
		pairs[n].vlen = enc.len - pairs[n].voff;
		n++;
	}
	/* A query of empty pairs ("=") encodes to nothing: enc has no
	 * memory then, and offsets must not be applied to NULL. */
	base = raw ? (const uint8_t *)q : enc.data != NULL ? enc.data :
	    (const uint8_t *)"";
	qpairs_sort(pairs, n, base);
	for (i = 0; i < n; i++) {
		if (i > 0 && (rc = buf_append(out, "&", 1)) != 0)
			goto fail;
		if ((rc = buf_append(out, base + pairs[i].koff,
		    pairs[i].klen)) != 0 ||
		    (rc = buf_append(out, "=", 1)) != 0 ||
		    (rc = buf_append(out, base + pairs[i].voff,
		    pairs[i].vlen)) != 0)
			goto fail;
	}
fail:
	free(pairs);
	buf_free(&enc);
	return rc;
}

/* Canonical URI for services other than S3: remove "." and ".." segments
 * and empty segments (repeated slashes), then URI-encode every byte that is
 * not unreserved. The path arrives already encoded by the client, so an
 * escape like "%3A" is encoded again ("%253A"), which is what AWS and the
 * SDKs sign. */
static int
canonical_uri(struct buf *out, const char *path)
{
	size_t *segs = NULL;	/* start, length pairs of kept segments */
	size_t nsegs = 0, max = 1, len, i, start;
	int rc = 0;

	len = strlen(path);
	if (len == 0)
		return buf_append(out, "/", 1);
	for (i = 0; i < len; i++)
		if (path[i] == '/')
			max++;
	if ((segs = calloc(max, 2 * sizeof(*segs))) == NULL)
		return PH_ERR_NOMEM;
	for (start = 0; start <= len; start = i + 1) {
		size_t seglen;

		for (i = start; i < len && path[i] != '/'; i++)
			;
		seglen = i - start;
		if (seglen == 0 || (seglen == 1 && path[start] == '.'))
			continue;
		if (seglen == 2 && path[start] == '.' &&
		    path[start + 1] == '.') {
			if (nsegs > 0)
				nsegs--;
			continue;
		}
		segs[2 * nsegs] = start;
		segs[2 * nsegs + 1] = seglen;
		nsegs++;
	}
	if (path[0] == '/' && (rc = buf_append(out, "/", 1)) != 0)
		goto fail;
	for (i = 0; i < nsegs; i++) {
		if (i > 0 && (rc = buf_append(out, "/", 1)) != 0)
			goto fail;
		if ((rc = uri_encode(out, (const uint8_t *)path + segs[2 * i],
		    segs[2 * i + 1], 0)) != 0)
			goto fail;
	}
	if (nsegs > 0 && path[len - 1] == '/' &&
	    (rc = buf_append(out, "/", 1)) != 0)
		goto fail;
fail:
	free(segs);
	return rc;
}

/* Append a header value with leading/trailing whitespace removed and inner
 * runs of whitespace collapsed to one space (the SigV4 "Trimall"). */
static int
append_trimall(struct buf *b, const char *v)
{
	int pending = 0, any = 0, rc;

	for (; *v != '\0'; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
			pending = any;
			continue;
		}
		if (pending && (rc = buf_append(b, " ", 1)) != 0)
			return rc;
		pending = 0;
		any = 1;
		if ((rc = buf_append(b, v, 1)) != 0)
			return rc;
	}
	return 0;
}

static const char *
find_header(const struct sigv4_request *req, const char *name, int *count)
{
	const char *found = NULL;
	size_t i;

	*count = 0;
	for (i = 0; i < req->nheaders; i++) {
		if (req->headers[i].name == NULL ||
		    req->headers[i].value == NULL ||
		    strcasecmp(req->headers[i].name, name) != 0)
			continue;
		if (found == NULL)
			found = req->headers[i].value;
		(*count)++;
	}
	return found;
}

static int
canonical_headers(struct buf *out, const struct sigv4_request *req,
    const char *signed_headers)
{
	const char *p = signed_headers, *semi;
	char name[128];
	size_t i, n;
	int rc, first;

	while (*p != '\0') {
		semi = strchr(p, ';');
		n = semi != NULL ? (size_t)(semi - p) : strlen(p);
		if (n == 0 || n >= sizeof(name))
			return PH_ERR_INVALID;
		for (i = 0; i < n; i++)
			name[i] = (char)tolower((unsigned char)p[i]);
		name[n] = '\0';
		if ((rc = buf_append(out, name, n)) != 0 ||
		    (rc = buf_append(out, ":", 1)) != 0)
			return rc;
		first = 1;
		for (i = 0; i < req->nheaders; i++) {
			if (req->headers[i].name == NULL ||
			    req->headers[i].value == NULL ||
			    strcasecmp(req->headers[i].name, name) != 0)
				continue;
			if (!first && (rc = buf_append(out, ",", 1)) != 0)
				return rc;
			if ((rc = append_trimall(out,
			    req->headers[i].value)) != 0)
				return rc;
			first = 0;
		}
		if ((rc = buf_append(out, "\n", 1)) != 0)
			return rc;
		p += n;
		if (*p == ';')
			p++;
	}
	return 0;
}

static int
valid_token(const char *s, size_t n, size_t max, const char *extra)
{
	size_t i;

	if (n == 0 || n >= max)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    strchr(extra, s[i]) == NULL)
			return 0;
	return 1;
}

static int
copy_token(char *dst, size_t size, const char *s, size_t n)
{
	if (n >= size)
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* Check a SignedHeaders list: lower-case names of token characters
 * separated by ';', no duplicates, bounded count, and "host" among them. */
static int
check_signed_headers(const char *sh, int *has_host, char *why, size_t wlen)
{
	const char *names[SIGV4_MAX_SIGNED_HEADERS];
	size_t lens[SIGV4_MAX_SIGNED_HEADERS];
	size_t n = 0, i, len;
	const char *p = sh, *semi;

	*has_host = 0;
	while (*p != '\0') {
		semi = strchr(p, ';');
		len = semi != NULL ? (size_t)(semi - p) : strlen(p);
		if (!valid_token(p, len, 128, "-_.!#$%&'*+^`|~")) {
			snprintf(why, wlen, "SignedHeaders is malformed.");
			return -1;
		}
		if (n == SIGV4_MAX_SIGNED_HEADERS) {
			snprintf(why, wlen, "Too many SignedHeaders.");
			return -1;
		}
		for (i = 0; i < n; i++)
			if (lens[i] == len &&
			    strncasecmp(names[i], p, len) == 0) {
				snprintf(why, wlen,
				    "SignedHeaders lists a header twice.");
				return -1;
			}
		names[n] = p;
		lens[n++] = len;
		if (len == 4 && strncasecmp(p, "host", 4) == 0)
			*has_host = 1;
		p += len;
		if (*p == ';') {
			p++;
			if (*p == '\0') {
				snprintf(why, wlen,
				    "SignedHeaders is malformed.");
				return -1;
			}
		}
	}
	if (n == 0) {
		snprintf(why, wlen, "SignedHeaders is empty.");
		return -1;
	}
	return 0;
}

/* Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request */
static int
parse_credential(struct sigv4_auth *a, const char *v, size_t n, char *why,
    size_t wlen)
{
	const char *part[5];
	size_t plen[5], k = 0, i, start = 0;

	for (i = 0; i <= n && k < 5; i++) {
		if (i == n || v[i] == '/') {
			part[k] = v + start;
			plen[k++] = i - start;
			start = i + 1;
		}
	}
	if (k != 5 || start <= n) {
		snprintf(why, wlen, "Credential is malformed; expected "
		    "'ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request'.");
		return -1;
	}
	if (!valid_token(part[0], plen[0], sizeof(a->akid), "") ||
	    copy_token(a->akid, sizeof(a->akid), part[0], plen[0]) != 0) {
		snprintf(why, wlen, "Credential has an invalid access key id.");
		return -1;
	}
	if (plen[1] != 8 || !valid_token(part[1], 8, 9, "") ||
	    strspn(part[1], "0123456789") < 8) {
		snprintf(why, wlen,
		    "Credential should be scoped to a valid date.");
		return -1;
	}
	memcpy(a->date, part[1], 8);
	a->date[8] = '\0';
	if (!valid_token(part[2], plen[2], sizeof(a->region), "-_") ||
	    copy_token(a->region, sizeof(a->region), part[2], plen[2]) != 0) {
		snprintf(why, wlen,
		    "Credential should be scoped to a valid region.");
		return -1;
	}
	if (!valid_token(part[3], plen[3], sizeof(a->service), "-_.") ||
	    copy_token(a->service, sizeof(a->service), part[3],
	    plen[3]) != 0) {
		snprintf(why, wlen,
		    "Credential should be scoped to a valid service.");
		return -1;
	}
	if (plen[4] != strlen(SIGV4_TERMINATOR) ||
	    memcmp(part[4], SIGV4_TERMINATOR, plen[4]) != 0) {
		snprintf(why, wlen, "Credential should be scoped with a valid "
		    "terminator: '" SIGV4_TERMINATOR "'.");
		return -1;
	}
	return 0;
}

/* Parse "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..."
 * in place (hdr is the caller's writable copy). Components may be separated
 * by commas, spaces or both, in any order; each must appear once. */
static int
parse_authorization(struct sigv4_auth *a, char *hdr, char *why, size_t wlen)
{
	static const char seps[] = ", \t";
	char *p = hdr, *tok, *eq;
	int seen_cred = 0, seen_sh = 0, seen_sig = 0, has_host;
	size_t n, k;

	memset(a, 0, sizeof(*a));
	p += strspn(p, " \t");
	n = strcspn(p, " \t");
	if (n != strlen(SIGV4_ALGORITHM) ||
	    memcmp(p, SIGV4_ALGORITHM, n) != 0) {
		snprintf(why, wlen, "Authorization header requires the '"
		    SIGV4_ALGORITHM "' algorithm, with 'Credential', "
		    "'SignedHeaders' and 'Signature' parameters.");
		return -1;
	}
	p += n;
	for (;;) {
		p += strspn(p, seps);
		if (*p == '\0')
			break;
		tok = p;
		n = strcspn(p, seps);
		p += n;
		if (*p != '\0')
			*p++ = '\0';
		if ((eq = memchr(tok, '=', n)) == NULL) {
			snprintf(why, wlen, "Authorization header is "
			    "malformed: a component is not Key=Value.");
			return -1;
		}
		*eq++ = '\0';
		n = strlen(eq);
		if (strcmp(tok, "Credential") == 0 && !seen_cred) {
			seen_cred = 1;
			if (parse_credential(a, eq, n, why, wlen) != 0)
				return -1;
		} else if (strcmp(tok, "SignedHeaders") == 0 && !seen_sh) {
			seen_sh = 1;
			if (check_signed_headers(eq, &has_host, why,
			    wlen) != 0)
				return -1;
			if (!has_host) {
				snprintf(why, wlen, "'Host' or ':authority' "
				    "must be a 'SignedHeader' in the AWS "
				    "Authorization.");
				return -1;
			}
			a->signed_headers = eq;
		} else if (strcmp(tok, "Signature") == 0 && !seen_sig) {
			seen_sig = 1;
			if (n != 64 || strspn(eq, "0123456789abcdef") != 64) {
				snprintf(why, wlen, "Signature must be 64 "
				    "lower-case hexadecimal characters.");
				return -1;
			}
			memcpy(a->signature, eq, 65);
		} else {
			snprintf(why, wlen, "Authorization header has an "
			    "unknown or repeated component.");
			return -1;
		}
	}
	if (!seen_cred || !seen_sh || !seen_sig) {
		k = 0;
		why[0] = '\0';
		if (!seen_cred)
			k += (size_t)snprintf(why + k, wlen - k,
			    "Authorization header requires 'Credential' "
			    "parameter. ");
		if (!seen_sig && k < wlen)
			k += (size_t)snprintf(why + k, wlen - k,
			    "Authorization header requires 'Signature' "
			    "parameter. ");
		if (!seen_sh && k < wlen)
			snprintf(why + k, wlen - k, "Authorization header "
			    "requires 'SignedHeaders' parameter.");
		return -1;
	}
	return 0;
}

/* Parse "YYYYMMDDTHHMMSSZ" into seconds since the epoch. */
static int
parse_amzdate(const char *s, time_t *t)
{
	struct tm tm;
	int i;

	if (strlen(s) != SIGV4_AMZDATE_LEN || s[8] != 'T' || s[15] != 'Z')
		return -1;
	for (i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)s[i]))
			return -1;
	memset(&tm, 0, sizeof(tm));
#define D2(o) ((s[o] - '0') * 10 + (s[(o) + 1] - '0'))
	tm.tm_year = D2(0) * 100 + D2(2) - 1900;
	tm.tm_mon = D2(4) - 1;
	tm.tm_mday = D2(6);
	tm.tm_hour = D2(9);
	tm.tm_min = D2(11);
	tm.tm_sec = D2(13);
#undef D2
	if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	*t = timegm(&tm);
	return *t == (time_t)-1 ? -1 : 0;
}

static void
format_amzdate(time_t t, char out[SIGV4_AMZDATE_LEN + 1])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, SIGV4_AMZDATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) == 0)
		snprintf(out, SIGV4_AMZDATE_LEN + 1, "?");
}

static void
hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return PH_ERR_CRYPTO;
	hex_encode(md, 32, out);
	return 0;
}

static int
hmac256(const void *key, size_t klen, const void *msg, size_t mlen,
    uint8_t out[32])
{
	unsigned int olen = 0;

	if (HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen) ==
	    NULL || olen != 32)
		return PH_ERR_CRYPTO;
	return 0;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
 * service), "aws4_request"); the signature is HMAC(kSigning, sts). */
static int
compute_signature(const char *secret, const struct sigv4_auth *a,
    const char *sts, size_t stslen, char out[65])
{
	uint8_t k[32], sig[32];
	char kdate[4 + SIGV4_SECRET_MAX];
	size_t slen = strlen(secret);
	int rc = PH_ERR_CRYPTO;

	if (slen > SIGV4_SECRET_MAX)
		return PH_ERR_INVALID;
	memcpy(kdate, "AWS4", 4);
	memcpy(kdate + 4, secret, slen);
	if (hmac256(kdate, 4 + slen, a->date, strlen(a->date), k) != 0 ||
	    hmac256(k, 32, a->region, strlen(a->region), k) != 0 ||
	    hmac256(k, 32, a->service, strlen(a->service), k) != 0 ||
	    hmac256(k, 32, SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR),
	    k) != 0 ||
	    hmac256(k, 32, sts, stslen, sig) != 0)
		goto fail;
	hex_encode(sig, 32, out);
	rc = 0;
fail:
	OPENSSL_cleanse(kdate, sizeof(kdate));
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

static int
build_canonical(struct buf *cr, const struct sigv4_request *req,
    const struct sigv4_auth *a, const char *payload_hash, int raw_query)
{
	int rc;

	if ((rc = buf_append_str(cr, req->method)) != 0 ||
	    (rc = buf_append(cr, "\n", 1)) != 0 ||
	    (rc = canonical_uri(cr, req->path)) != 0 ||
	    (rc = buf_append(cr, "\n", 1)) != 0 ||
	    (rc = canonical_query(cr, req->query, raw_query)) != 0 ||
	    (rc = buf_append(cr, "\n", 1)) != 0 ||
	    (rc = canonical_headers(cr, req, a->signed_headers)) != 0 ||
	    (rc = buf_append(cr, "\n", 1)) != 0)
		return rc;
	/* The signed header names appear lower-cased, as signers emit them. */
	{
		const char *p;

		for (p = a->signed_headers; *p != '\0'; p++) {
			char c = (char)tolower((unsigned char)*p);

			if ((rc = buf_append(cr, &c, 1)) != 0)
				return rc;
		}
	}
	if ((rc = buf_append(cr, "\n", 1)) != 0 ||
	    (rc = buf_append_str(cr, payload_hash)) != 0)
		return rc;
	return 0;
}

int
sigv4_verify(const struct sigv4_request *req, time_t now,
    sigv4_secret_fn lookup, void *lookup_arg, struct sigv4_identity *id,
    struct sigv4_error *err)
{
	struct sigv4_error dummy;
	struct sigv4_auth a;
	struct buf cr, sts;
	char *hdr = NULL;
	char why[200], secret[SIGV4_SECRET_MAX + 1];
	char body_hash[65], cr_hash[65], first_hash[65], sig[65];
	char lo[SIGV4_AMZDATE_LEN + 1], hi[SIGV4_AMZDATE_LEN + 1];
	char nowbuf[SIGV4_AMZDATE_LEN + 1];
	const char *auth, *date, *date_name, *csha;
	time_t t;
	int count, rc, raw, matched = 0;

	buf_init(&cr, SIGV4_MAX_CANONICAL);
	buf_init(&sts, 4096);
	secret[0] = '\0';
	if (err == NULL)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	if (req == NULL || req->method == NULL || req->path == NULL ||
	    req->query == NULL || (req->nheaders > 0 && req->headers == NULL) ||
	    (req->body_len > 0 && req->body == NULL) || lookup == NULL) {
		set_err(err, 500, "InternalFailure",
		    "The request could not be verified.");
		rc = PH_ERR_INVALID;
		goto fail;
	}

	auth = find_header(req, "Authorization", &count);
	if (auth == NULL) {
		set_err(err, 403, "MissingAuthenticationTokenException",
		    "Missing Authentication Token");
		rc = PH_ERR_DENIED;
		goto fail;
	}
	if (count > 1 || strlen(auth) > SIGV4_MAX_AUTH_LEN) {
		set_err(err, 403, "IncompleteSignatureException",
		    count > 1 ? "More than one Authorization header." :
		    "The Authorization header is too long.");
		rc = PH_ERR_INVALID;
		goto fail;
	}
	if ((hdr = strdup(auth)) == NULL) {
		rc = PH_ERR_NOMEM;
		set_err(err, 500, "InternalFailure", "Out of memory.");
		goto fail;
	}
	if (parse_authorization(&a, hdr, why, sizeof(why)) != 0) {
		set_err(err, 403, "IncompleteSignatureException", "%s", why);
		rc = PH_ERR_INVALID;
		goto fail;
	}

	date_name = "X-Amz-Date";
	if ((date = find_header(req, date_name, &count)) == NULL) {
		date_name = "Date";
		date = find_header(req, date_name, &count);
	}
	if (date == NULL) {
		set_err(err, 403, "IncompleteSignatureException",
		    "Authorization header requires existence of either a "
		    "'X-Amz-Date' or a 'Date' header.");
		rc = PH_ERR_INVALID;
		goto fail;
	}
	if (count > 1 || parse_amzdate(date, &t) != 0) {
		set_err(err, 403, "IncompleteSignatureException",
		    "Date must be in ISO-8601 'basic format' "
		    "(YYYYMMDD'T'HHMMSS'Z'), in one '%s' header.", date_name);
		rc = PH_ERR_INVALID;
		goto fail;
	}
	if (memcmp(date, a.date, 8) != 0) {
		set_err(err, 403, "InvalidSignatureException",
		    "Date in Credential scope does not match YYYYMMDD from "
		    "ISO-8601 version of date from HTTP: '%s' != '%.8s', from "
		    "'%s'.", a.date, date, date_name);
		rc = PH_ERR_DENIED;
		goto fail;
	}

	rc = lookup(lookup_arg, a.akid, secret, sizeof(secret));
	secret[sizeof(secret) - 1] = '\0';
	if (rc == PH_ERR_NOTFOUND || rc == PH_ERR_DENIED) {
		set_err(err, 403, "UnrecognizedClientException", msg_badtoken);
		rc = PH_ERR_DENIED;
		goto fail;
	}
	if (rc != 0) {
		set_err(err, 500, "InternalFailure",
		    "The request could not be verified.");
		goto fail;
	}

	/* The window is symmetric: AWS refuses both stale and future
	 * signatures with the same exception. */
	format_amzdate(now, nowbuf);
	if (t < now - SIGV4_MAX_SKEW_SECONDS) {
		format_amzdate(now - SIGV4_MAX_SKEW_SECONDS, lo);
		set_err(err, 403, "InvalidSignatureException",
		    "Signature expired: %s is now earlier than %s (%s - %d "
		    "min.)", date, lo, nowbuf, SIGV4_MAX_SKEW_SECONDS / 60);
		rc = PH_ERR_EXPIRED;
		goto fail;
	}
	if (t > now + SIGV4_MAX_SKEW_SECONDS) {
		format_amzdate(now + SIGV4_MAX_SKEW_SECONDS, hi);
		set_err(err, 403, "InvalidSignatureException",
		    "Signature not yet current: %s is still later than %s (%s "
		    "+ %d min.)", date, hi, nowbuf,
		    SIGV4_MAX_SKEW_SECONDS / 60);
		rc = PH_ERR_EXPIRED;
		goto fail;
	}

	if ((rc = sha256_hex(req->body_len ? req->body : (const uint8_t *)"",
	    req->body_len, body_hash)) != 0) {
		set_err(err, 500, "InternalFailure",
		    "The request could not be verified.");
		goto fail;
	}
	/* Services other than S3 always sign the body; a declared content
	 * hash must match it, and UNSIGNED-PAYLOAD does not exempt it. */
	csha = find_header(req, "X-Amz-Content-Sha256", &count);
	if (csha != NULL && (count > 1 || (strcmp(csha,
	    SIGV4_UNSIGNED_PAYLOAD) != 0 && strcmp(csha, body_hash) != 0))) {
		set_err(err, 403, "InvalidSignatureException", "The provided "
		    "'x-amz-content-sha256' header does not match what was "
		    "computed.");
		rc = PH_ERR_DIGEST;
		goto fail;
	}

	/* The canonical query as AWS defines it first, then as botocore
	 * signs a query it was given in the URL, if that differs. */
	for (raw = 0; raw < 2; raw++) {
		buf_reset(&cr);
		buf_reset(&sts);
		if ((rc = build_canonical(&cr, req, &a, body_hash, raw)) != 0) {
			if (rc == PH_ERR_NOMEM)
				set_err(err, 500, "InternalFailure",
				    "Out of memory.");
			else
				set_err(err, 403, "InvalidSignatureException",
				    "The request is too large to verify.");
			goto fail;
		}
		if ((rc = sha256_hex(cr.data, cr.len, cr_hash)) != 0)
			goto fail_internal;
		/* Same canonical request: the answer is already known. */
		if (raw && strcmp(cr_hash, first_hash) == 0)
			break;
		if ((rc = buf_appendf(&sts, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/"
		    SIGV4_TERMINATOR "\n%s", date, a.date, a.region, a.service,
		    cr_hash)) != 0 ||
		    (rc = compute_signature(secret, &a, (const char *)sts.data,
		    sts.len, sig)) != 0)
			goto fail_internal;
		if (CRYPTO_memcmp(sig, a.signature, 64) == 0) {
			matched = 1;
			break;
		}
		memcpy(first_hash, cr_hash, sizeof(first_hash));
	}
	if (!matched) {
		set_err(err, 403, "InvalidSignatureException", msg_mismatch);
		rc = PH_ERR_DENIED;
		goto fail;
	}

	if (id != NULL) {
		memset(id, 0, sizeof(*id));
		memcpy(id->access_key_id, a.akid, sizeof(id->access_key_id));
		memcpy(id->region, a.region, sizeof(id->region));
		memcpy(id->service, a.service, sizeof(id->service));
		memcpy(id->date, a.date, sizeof(id->date));
	}
	rc = 0;
	goto fail;
fail_internal:
	set_err(err, 500, "InternalFailure",
	    "The request could not be verified.");
fail:
	OPENSSL_cleanse(secret, sizeof(secret));
	free(hdr);
	buf_free(&cr);
	buf_free(&sts);
	return rc;
}
