/* sigv4: requests signed by botocore (fixtures from fixtures/gen_sigv4.py),
 * by libcurl (CURLOPT_AWS_SIGV4, captured on loopback) and AWS's documented
 * example verify; tampering, wrong or unknown keys, clock skew and garbage
 * Authorization headers fail with the AWS error they map to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/err.h"
#include "common/hex.h"
#include "common/sigv4.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define MAX_HDRS 64

/* A request split into the pieces sigv4_verify takes; all owned. */
struct treq {
	char method[16];
	char path[4096];
	char query[4096];
	struct http_header hdrs[MAX_HDRS];
	size_t nhdrs;
	uint8_t *body;
	size_t body_len;
	time_t now;
};

struct keys {
	const char *akid;
	const char *secret;
	int state;	/* 0 active, else the error to return */
};

static int
lookup(void *arg, const char *akid, char *secret, size_t size)
{
	const struct keys *k = arg;

	for (; k->akid != NULL; k++) {
		if (strcmp(k->akid, akid) != 0)
			continue;
		if (k->state != 0)
			return k->state;
		snprintf(secret, size, "%s", k->secret);
		return 0;
	}
	return PH_ERR_NOTFOUND;
}

static struct keys good_keys[] = {
	{ AKID, SECRET, 0 },
	{ "AKIDOTHER", "other-secret", 0 },
	{ NULL, NULL, 0 },
};

static void
treq_free(struct treq *r)
{
	size_t i;

	for (i = 0; i < r->nhdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Minimal split of a raw HTTP/1.1 request (test input we produced). */
static void
treq_parse(struct treq *r, const char *raw, size_t len)
{
	const char *end, *line, *eol, *sp1, *sp2, *q, *colon, *v;
	size_t hlen;

	memset(r, 0, sizeof(*r));
	end = NULL;
	for (hlen = 0; hlen + 4 <= len; hlen++)
		if (memcmp(raw + hlen, "\r\n\r\n", 4) == 0) {
			end = raw + hlen;
			break;
		}
	assert_non_null(end);
	eol = strstr(raw, "\r\n");
	sp1 = memchr(raw, ' ', (size_t)(eol - raw));
	assert_non_null(sp1);
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	assert_non_null(sp2);
	snprintf(r->method, sizeof(r->method), "%.*s", (int)(sp1 - raw), raw);
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	if (q != NULL) {
		snprintf(r->path, sizeof(r->path), "%.*s",
		    (int)(q - sp1 - 1), sp1 + 1);
		snprintf(r->query, sizeof(r->query), "%.*s",
		    (int)(sp2 - q - 1), q + 1);
	} else
		snprintf(r->path, sizeof(r->path), "%.*s",
		    (int)(sp2 - sp1 - 1), sp1 + 1);
	for (line = eol + 2; line < end; line = eol + 2) {
		eol = strstr(line, "\r\n");
		colon = memchr(line, ':', (size_t)(eol - line));
		assert_non_null(colon);
		assert_true(r->nhdrs < MAX_HDRS);
		for (v = colon + 1; *v == ' '; v++)
			;
		r->hdrs[r->nhdrs].name = strndup(line, (size_t)(colon - line));
		r->hdrs[r->nhdrs].value = strndup(v, (size_t)(eol - v));
		r->nhdrs++;
	}
	r->body_len = len - (size_t)(end + 4 - raw);
	r->body = malloc(r->body_len + 1);
	assert_non_null(r->body);
	memcpy(r->body, end + 4, r->body_len);
}

static void
fixture_path(char *out, size_t size, const char *name, const char *ext)
{
	const char *slash = strrchr(__FILE__, '/');
	int dirlen = slash != NULL ? (int)(slash - __FILE__) : 1;

	snprintf(out, size, "%.*s/fixtures/sigv4/%s.%s", dirlen,
	    slash != NULL ? __FILE__ : ".", name, ext);
}

static void
load_fixture(struct treq *r, const char *name)
{
	char path[4096], raw[65536];
	size_t n;
	FILE *f;
	long long now;

	fixture_path(path, sizeof(path), name, "req");
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	n = fread(raw, 1, sizeof(raw) - 1, f);
	fclose(f);
	raw[n] = '\0';
	treq_parse(r, raw, n);
	fixture_path(path, sizeof(path), name, "now");
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lld", &now), 1);
	fclose(f);
	r->now = (time_t)now;
}

static struct http_header *
hdr(struct treq *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nhdrs; i++)
		if (strcasecmp(r->hdrs[i].name, name) == 0)
			return &r->hdrs[i];
	return NULL;
}

static void
set_hdr(struct treq *r, const char *name, const char *value)
{
	struct http_header *h = hdr(r, name);

	if (h == NULL) {
		assert_true(r->nhdrs < MAX_HDRS);
		h = &r->hdrs[r->nhdrs++];
		h->name = strdup(name);
	} else
		free(h->value);
	h->value = strdup(value);
}

static void
del_hdr(struct treq *r, const char *name)
{
	struct http_header *h = hdr(r, name);

	assert_non_null(h);
	free(h->name);
	free(h->value);
	*h = r->hdrs[--r->nhdrs];
}

static int
verify_at(struct treq *r, time_t now, struct keys *keys,
    struct sigv4_identity *id, struct sigv4_error *err)
{
	struct sigv4_request req = {
		.method = r->method, .path = r->path, .query = r->query,
		.headers = r->hdrs, .nheaders = r->nhdrs, .body = r->body,
		.body_len = r->body_len,
	};

	memset(err, 0, sizeof(*err));
	return sigv4_verify(&req, now, lookup, keys, id, err);
}

static void
expect_fail(struct treq *r, time_t now, struct keys *keys, const char *type)
{
	struct sigv4_identity id;
	struct sigv4_error err;
	int rc;

	rc = verify_at(r, now, keys, &id, &err);
	assert_true(rc < 0);
	assert_non_null(err.type);
	if (strcmp(err.type, type) != 0)
		fail_msg("expected %s, got %s: %s", type, err.type,
		    err.message);
	assert_int_equal(err.http_status, 403);
	assert_true(err.message[0] != '\0');
	/* The secret never appears in what is sent back. */
	assert_null(strstr(err.message, SECRET));
}

static const char *const fixtures[] = {
	"ssm_start_session", "ssm_describe_token", "kms_generate_data_key",
	"kms_list_keys_spaces", "get_control_channel", "get_query_encoded",
	"get_path_encoded", "get_query_empty_pair", "get_query_plus",
};

static void
test_botocore_fixtures(void **state)
{
	struct sigv4_identity id;
	struct sigv4_error err;
	struct treq r;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		load_fixture(&r, fixtures[i]);
		rc = verify_at(&r, r.now, good_keys, &id, &err);
		if (rc != 0)
			fail_msg("%s: %s: %s", fixtures[i],
			    err.type ? err.type : "?", err.message);
		assert_string_equal(id.access_key_id, AKID);
		assert_string_equal(id.region, "us-east-1");
		assert_string_equal(id.service,
		    strncmp(fixtures[i], "kms", 3) == 0 ? "kms" : "ssm");
		assert_string_equal(id.date, "20150830");
		/* The edges of the skew window are still accepted. */
		assert_int_equal(verify_at(&r, r.now - 10 +
		    SIGV4_MAX_SKEW_SECONDS, good_keys, &id, &err), 0);
		assert_int_equal(verify_at(&r, r.now - 10 -
		    SIGV4_MAX_SKEW_SECONDS, good_keys, &id, &err), 0);
		treq_free(&r);
	}
}

/* AWS's documented example (IAM ListUsers, "Create a signed AWS API
 * request"), a third signer independent of botocore and libcurl. */
static void
test_aws_documented_example(void **state)
{
	static const char raw[] =
	    "GET /?Action=ListUsers&Version=2010-05-08 HTTP/1.1\r\n"
	    "Host: iam.amazonaws.com\r\n"
	    "Content-Type: application/x-www-form-urlencoded; "
	    "charset=utf-8\r\n"
	    "X-Amz-Date: 20150830T123600Z\r\n"
	    "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"
	    "20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;"
	    "host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a"
	    "8edb4c82c400e06b5924a6f2b5d7\r\n\r\n";
	struct sigv4_identity id;
	struct sigv4_error err;
	struct treq r;
	int rc;

	(void)state;
	treq_parse(&r, raw, sizeof(raw) - 1);
	rc = verify_at(&r, 1440938160, good_keys, &id, &err);
	if (rc != 0)
		fail_msg("%s: %s", err.type, err.message);
	assert_string_equal(id.service, "iam");
	treq_free(&r);
}

static void
test_tampering(void **state)
{
	struct http_header *h;
	struct treq r;

	(void)state;
	/* Body. */
	load_fixture(&r, "ssm_start_session");
	r.body[10] ^= 1;
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	/* A signed header. */
	load_fixture(&r, "ssm_start_session");
	set_hdr(&r, "X-Amz-Target", "AmazonSSM.TerminateSession");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	/* A signed header sent twice is joined with a comma: a mismatch. */
	load_fixture(&r, "ssm_start_session");
	r.hdrs[r.nhdrs].name = strdup("X-Amz-Target");
	r.hdrs[r.nhdrs++].value = strdup("AmazonSSM.StartSession");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	/* An unsigned header may change (proxies add them). */
	load_fixture(&r, "ssm_start_session");
	set_hdr(&r, "User-Agent", "something/1.0");
	{
		struct sigv4_identity id;
		struct sigv4_error err;

		assert_int_equal(verify_at(&r, r.now, good_keys, &id, &err),
		    0);
	}
	treq_free(&r);
	/* Path. */
	load_fixture(&r, "kms_generate_data_key");
	snprintf(r.path, sizeof(r.path), "/x");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	load_fixture(&r, "get_path_encoded");
	snprintf(r.path, sizeof(r.path), "/v1/objects/a:b%%20c/d/e/f");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	/* A literal '+' is signed as sent: neither a space nor "%2B" in its
	 * place verifies, nor a reordered value. */
	load_fixture(&r, "get_query_plus");
	snprintf(r.query, sizeof(r.query), "stream=in%%20put&role=a%%2Bb+c");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	load_fixture(&r, "get_query_plus");
	snprintf(r.query, sizeof(r.query), "stream=in%%2Bput&role=a%%2Bb+c");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	load_fixture(&r, "get_query_plus");
	snprintf(r.query, sizeof(r.query), "stream=in+put&role=a+b%%2Bc");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	/* Query: a value, an added parameter. */
	load_fixture(&r, "get_control_channel");
	snprintf(r.query, sizeof(r.query), "stream=output&role=subscribe");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	snprintf(r.query, sizeof(r.query),
	    "stream=input&role=subscribe&x=1");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	/* Order and case of hex escapes do not matter. */
	snprintf(r.query, sizeof(r.query), "%%72ole=subscribe&stream=input");
	{
		struct sigv4_identity id;
		struct sigv4_error err;

		assert_int_equal(verify_at(&r, r.now, good_keys, &id, &err),
		    0);
	}
	treq_free(&r);
	/* Method. */
	load_fixture(&r, "get_control_channel");
	snprintf(r.method, sizeof(r.method), "POST");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	/* Signature itself. */
	load_fixture(&r, "ssm_start_session");
	h = hdr(&r, "Authorization");
	h->value[strlen(h->value) - 1] =
	    h->value[strlen(h->value) - 1] == '0' ? '1' : '0';
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	/* A content hash header that does not match the body. */
	load_fixture(&r, "kms_list_keys_spaces");
	r.body[2] = 'l';
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	load_fixture(&r, "ssm_start_session");
	set_hdr(&r, "X-Amz-Content-Sha256", "00000000000000000000000000000"
	    "00000000000000000000000000000000000");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
	/* UNSIGNED-PAYLOAD does not exempt the body here. */
	load_fixture(&r, "ssm_start_session");
	set_hdr(&r, "X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
	{
		struct sigv4_identity id;
		struct sigv4_error err;

		assert_int_equal(verify_at(&r, r.now, good_keys, &id, &err),
		    0);
		r.body[3] ^= 1;
		expect_fail(&r, r.now, good_keys,
		    "InvalidSignatureException");
	}
	treq_free(&r);
}

static void
test_keys(void **state)
{
	struct keys unknown[] = { { "AKIDOTHER", SECRET, 0 },
	    { NULL, NULL, 0 } };
	struct keys disabled[] = { { AKID, SECRET, PH_ERR_DENIED },
	    { NULL, NULL, 0 } };
	struct keys wrong[] = { { AKID,
	    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", 0 },
	    { NULL, NULL, 0 } };
	struct keys broken[] = { { AKID, SECRET, PH_ERR_IO },
	    { NULL, NULL, 0 } };
	struct sigv4_identity id;
	struct sigv4_error err;
	struct treq r;

	(void)state;
	load_fixture(&r, "ssm_start_session");
	expect_fail(&r, r.now, unknown, "UnrecognizedClientException");
	verify_at(&r, r.now, unknown, &id, &err);
	assert_string_equal(err.message,
	    "The security token included in the request is invalid.");
	expect_fail(&r, r.now, disabled, "UnrecognizedClientException");
	expect_fail(&r, r.now, wrong, "InvalidSignatureException");
	verify_at(&r, r.now, wrong, &id, &err);
	assert_string_equal(err.message, "The request signature we "
	    "calculated does not match the signature you provided. Check "
	    "your AWS Secret Access Key and signing method.");
	/* A store failure is not a client error. */
	assert_int_equal(verify_at(&r, r.now, broken, &id, &err), PH_ERR_IO);
	assert_int_equal(err.http_status, 500);
	treq_free(&r);
}

static void
test_skew(void **state)
{
	struct sigv4_identity id;
	struct sigv4_error err;
	struct treq r;
	time_t signed_at;

	(void)state;
	load_fixture(&r, "ssm_start_session");
	signed_at = r.now - 10;
	/* Signed 6 minutes ago. */
	assert_int_equal(verify_at(&r, signed_at + 360, good_keys, &id, &err),
	    PH_ERR_EXPIRED);
	assert_string_equal(err.type, "InvalidSignatureException");
	assert_string_equal(err.message, "Signature expired: "
	    "20150830T123600Z is now earlier than 20150830T123700Z "
	    "(20150830T124200Z - 5 min.)");
	/* Signed 6 minutes in the future. */
	assert_int_equal(verify_at(&r, signed_at - 360, good_keys, &id, &err),
	    PH_ERR_EXPIRED);
	assert_string_equal(err.type, "InvalidSignatureException");
	assert_string_equal(err.message, "Signature not yet current: "
	    "20150830T123600Z is still later than 20150830T123500Z "
	    "(20150830T123000Z + 5 min.)");
	/* One second past the window. */
	expect_fail(&r, signed_at + SIGV4_MAX_SKEW_SECONDS + 1, good_keys,
	    "InvalidSignatureException");
	expect_fail(&r, signed_at - SIGV4_MAX_SKEW_SECONDS - 1, good_keys,
	    "InvalidSignatureException");
	treq_free(&r);
}

static void
test_missing_parts(void **state)
{
	struct sigv4_identity id;
	struct sigv4_error err;
	struct treq r;

	(void)state;
	load_fixture(&r, "ssm_start_session");
	del_hdr(&r, "Authorization");
	expect_fail(&r, r.now, good_keys,
	    "MissingAuthenticationTokenException");
	verify_at(&r, r.now, good_keys, &id, &err);
	assert_string_equal(err.message, "Missing Authentication Token");
	treq_free(&r);

	load_fixture(&r, "ssm_start_session");
	del_hdr(&r, "X-Amz-Date");
	expect_fail(&r, r.now, good_keys, "IncompleteSignatureException");
	/* Date may carry the timestamp instead (same value, same result). */
	set_hdr(&r, "Date", "20150830T123600Z");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	set_hdr(&r, "Date", "Sun, 30 Aug 2015 12:36:00 GMT");
	expect_fail(&r, r.now, good_keys, "IncompleteSignatureException");
	treq_free(&r);

	/* Malformed X-Amz-Date values. */
	load_fixture(&r, "ssm_start_session");
	{
		static const char *const bad[] = { "", "2015-08-30T12:36:00Z",
		    "20150830T123600", "20150830T123600ZZ", "20151330T123600Z",
		    "20150830T253600Z", "2015083OT123600Z", "19000101T000000Z",
		    "20150830t123600z" };
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			set_hdr(&r, "X-Amz-Date", bad[i]);
			expect_fail(&r, r.now, good_keys,
			    "IncompleteSignatureException");
		}
	}
	/* A valid date that differs from the credential scope's. */
	set_hdr(&r, "X-Amz-Date", "20150831T000001Z");
	expect_fail(&r, 1440979201, good_keys, "InvalidSignatureException");
	assert_int_not_equal(verify_at(&r, 1440979201, good_keys, &id, &err),
	    0);
	assert_non_null(strstr(err.message, "Credential scope"));
	treq_free(&r);

	/* Host must be signed. */
	load_fixture(&r, "get_control_channel");
	set_hdr(&r, "Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE"
	    "/20150830/us-east-1/ssm/aws4_request, SignedHeaders=x-amz-date, "
	    "Signature=84bb2acfe66e851ba10da7c0e80b54ae710ac7174e5c69f15995838"
	    "b73a2261e");
	expect_fail(&r, r.now, good_keys, "IncompleteSignatureException");
	/* Spacing and order of the components are free. */
	set_hdr(&r, "Authorization", "  AWS4-HMAC-SHA256   Signature=84bb2acf"
	    "e66e851ba10da7c0e80b54ae710ac7174e5c69f15995838b73a2261e,"
	    "SignedHeaders=host;x-amz-date ,,Credential=AKIDEXAMPLE/20150830/"
	    "us-east-1/ssm/aws4_request  ");
	assert_int_equal(verify_at(&r, r.now, good_keys, &id, &err), 0);
	/* Two Authorization headers are refused. */
	r.hdrs[r.nhdrs].name = strdup("authorization");
	r.hdrs[r.nhdrs++].value = strdup(hdr(&r, "Authorization")->value);
	expect_fail(&r, r.now, good_keys, "IncompleteSignatureException");
	treq_free(&r);
}

static void
test_garbage_authorization(void **state)
{
/* Pieces of the valid Authorization of get_control_channel. */
#define A4 "AWS4-HMAC-SHA256 "
#define CRED "Credential=AKIDEXAMPLE/20150830/us-east-1/ssm/aws4_request, "
#define SH "SignedHeaders=host;x-amz-date, "
#define SIGHEX "84bb2acfe66e851ba10da7c0e80b54ae710ac7174e5c69f15995838b73" \
	"a2261e"
#define SIG "Signature=" SIGHEX
	static const char *const bad[] = {
		"", " ", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 ",
		"Basic dXNlcjpwYXNz", "Bearer abc",
		"AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
		"AWS4-HMAC-SHA512 " CRED SH SIG,
		"aws4-hmac-sha256 " CRED SH SIG,
		A4 CRED, A4 SH SIG, A4 CRED SIG, A4 CRED SH,
		A4 "Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, "
		    SH SIG,
		A4 "Credential=AKIDEXAMPLE/20150830/us-east-1/ssm/aws4_request"
		    "/x, " SH SIG,
		A4 "Credential=AKIDEXAMPLE/20150830/us-east-1/ssm/aws5_request,"
		    " " SH SIG,
		A4 "Credential=AKIDEXAMPLE/2015083X/us-east-1/ssm/aws4_request,"
		    " " SH SIG,
		A4 "Credential=/20150830/us-east-1/ssm/aws4_request, " SH SIG,
		A4 "Credential=AKIDEXAMPLE/20150830//ssm/aws4_request, " SH SIG,
		A4 CRED "SignedHeaders=, " SIG,
		A4 CRED "SignedHeaders=host;;x-amz-date, " SIG,
		A4 CRED "SignedHeaders=host;x-amz-date;, " SIG,
		A4 CRED "SignedHeaders=host;x-amz-date;host, " SIG,
		A4 CRED "SignedHeaders=ho(st, " SIG,
		A4 CRED SH "Signature=" "84bb2acfe66e851ba10da7c0e80b54ae710a"
		    "c7174e5c69f15995838b73a2261",
		A4 CRED SH "Signature=" "84BB2ACFE66E851BA10DA7C0E80B54AE710A"
		    "C7174E5C69F15995838B73A2261E",
		A4 CRED SH "Signature=" "zzbb2acfe66e851ba10da7c0e80b54ae710a"
		    "c7174e5c69f15995838b73a2261e",
		A4 CRED SH SIG ", " SIG,
		A4 CRED CRED SH SIG,
		A4 "Credential AKIDEXAMPLE",
		A4 "=, =, =", A4 ",,,,,,",
		A4 "Credential=, SignedHeaders=, Signature=",
		A4 "Foo=bar", A4 CRED SH SIG ", Foo=bar",
		A4 "Credential=A\x01\x02/20150830/us-east-1/ssm/aws4_request, "
		    SH SIG,
		A4 "Credential=AKIDEXAMPLE/20150830/us east 1/ssm/aws4_request,"
		    " " SH SIG,
	};
#undef A4
#undef CRED
#undef SH
#undef SIGHEX
#undef SIG
	const char *valid;
	struct sigv4_identity id;
	struct sigv4_error err;
	struct treq r;
	char *copy, *huge;
	size_t i, n;
	uint32_t seed = 12345;

	(void)state;
	load_fixture(&r, "get_control_channel");
	valid = strdup(hdr(&r, "Authorization")->value);
	assert_non_null(valid);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set_hdr(&r, "Authorization", bad[i]);
		assert_true(verify_at(&r, r.now, good_keys, &id, &err) < 0);
		assert_non_null(err.type);
		if (strcmp(err.type, "IncompleteSignatureException") != 0)
			fail_msg("variant %zu: %s: %s", i, err.type,
			    err.message);
	}
	/* Every truncation of a valid header fails cleanly. */
	n = strlen(valid);
	copy = malloc(n + 1);
	assert_non_null(copy);
	for (i = 0; i < n; i++) {
		memcpy(copy, valid, i);
		copy[i] = '\0';
		set_hdr(&r, "Authorization", copy);
		assert_true(verify_at(&r, r.now, good_keys, &id, &err) < 0);
		assert_non_null(err.type);
	}
	/* Random bytes spliced into a valid header. */
	for (i = 0; i < 2000; i++) {
		size_t k, flips;

		memcpy(copy, valid, n + 1);
		seed = seed * 1103515245u + 12345u;
		flips = 1 + (seed >> 16) % 4;
		for (k = 0; k < flips; k++) {
			seed = seed * 1103515245u + 12345u;
			copy[(seed >> 8) % n] = (char)(1 + (seed >> 20) % 255);
		}
		set_hdr(&r, "Authorization", copy);
		if (verify_at(&r, r.now, good_keys, &id, &err) != 0)
			assert_non_null(err.type);
	}
	free(copy);
	/* Huge. */
	huge = malloc(200001);
	assert_non_null(huge);
	memset(huge, 'A', 200000);
	memcpy(huge, "AWS4-HMAC-SHA256 Credential=", 28);
	huge[200000] = '\0';
	set_hdr(&r, "Authorization", huge);
	expect_fail(&r, r.now, good_keys, "IncompleteSignatureException");
	/* Long but under the header limit: a 4000-byte access key id. */
	n = (size_t)snprintf(huge, 200000, "AWS4-HMAC-SHA256 Credential=");
	memset(huge + n, 'K', 4000);
	snprintf(huge + n + 4000, 200000 - n - 4000, "/20150830/us-east-1/ssm/"
	    "aws4_request, SignedHeaders=host;x-amz-date, Signature="
	    "84bb2acfe66e851ba10da7c0e80b54ae710ac7174e5c69f15995838b73a2261e");
	set_hdr(&r, "Authorization", huge);
	expect_fail(&r, r.now, good_keys, "IncompleteSignatureException");
	free(huge);
	free((void *)valid);
	treq_free(&r);
}

/* A hostile path and query: long, dot-heavy, escape-heavy. */
static void
test_hostile_path_query(void **state)
{
	struct sigv4_identity id;
	struct sigv4_error err;
	struct treq r;
	size_t i;

	(void)state;
	load_fixture(&r, "get_control_channel");
	for (i = 0; i + 3 < sizeof(r.path); i += 3)
		memcpy(r.path + i, "/..", 3);
	r.path[i] = '\0';
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	for (i = 0; i + 1 < sizeof(r.query); i++)
		r.query[i] = "%&=+%z"[i % 6];
	r.query[i] = '\0';
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	memset(r.query, '&', sizeof(r.query) - 1);
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	snprintf(r.path, sizeof(r.path), "%s", "");
	snprintf(r.query, sizeof(r.query), "%s", "%");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	(void)id;
	(void)err;
	treq_free(&r);
}

/* Loopback capture server: accepts one connection, reads one request
 * (head and Content-Length body), answers 200 and keeps the bytes. */
struct capture {
	int lfd;
	int port;
	char buf[65536];
	size_t len;
	int ok;
};

static void *
capture_main(void *arg)
{
	struct capture *c = arg;
	struct pollfd pfd;
	const char *head_end, *cl;
	size_t need = 0;
	ssize_t n;
	int fd, rounds;
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/x-amz-json-1.1\r\nContent-Length: 2\r\n"
	    "Connection: close\r\n\r\n{}";

	pfd.fd = c->lfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 10000) != 1)
		return NULL;
	fd = accept(c->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	for (rounds = 0; rounds < 1000 && c->len < sizeof(c->buf) - 1;
	    rounds++) {
		pfd.fd = fd;
		if (poll(&pfd, 1, 10000) != 1)
			break;
		n = read(fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
		if (n <= 0)
			break;
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
		head_end = strstr(c->buf, "\r\n\r\n");
		if (head_end == NULL)
			continue;
		cl = strcasestr(c->buf, "\r\nContent-Length:");
		need = (size_t)(head_end + 4 - c->buf);
		if (cl != NULL && cl < head_end)
			need += strtoul(cl + 17, NULL, 10);
		if (c->len >= need) {
			c->ok = 1;
			break;
		}
	}
	if (write(fd, resp, sizeof(resp) - 1) < 0)
		c->ok = 0;
	close(fd);
	return NULL;
}

static void
capture_start(struct capture *c, pthread_t *th)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(c, 0, sizeof(*c));
	c->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(c->lfd, 1), 0);
	assert_int_equal(getsockname(c->lfd, (struct sockaddr *)&sa, &sl), 0);
	c->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(th, NULL, capture_main, c), 0);
}

static size_t
discard(void *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return sz * n;
}

/* Send one request through libcurl's own SigV4 signer; capture it. */
static void
curl_signed(struct treq *r, const char *method, const char *target,
    const char *body, const char *const *extra)
{
	struct curl_slist *hl = NULL;
	struct capture cap;
	pthread_t th;
	char url[512];
	CURL *h;
	CURLcode cc;

	capture_start(&cap, &th);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", cap.port, target);
	h = curl_easy_init();
	assert_non_null(h);
	for (; extra != NULL && *extra != NULL; extra++)
		hl = curl_slist_append(hl, *extra);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:ssm");
	curl_easy_setopt(h, CURLOPT_USERPWD, AKID ":" SECRET);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	else if (strcmp(method, "GET") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	cc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	curl_slist_free_all(hl);
	pthread_join(th, NULL);
	close(cap.lfd);
	if (cc != CURLE_OK)
		fail_msg("curl: %s", curl_easy_strerror(cc));
	assert_true(cap.ok);
	treq_parse(r, cap.buf, cap.len);
	r->now = time(NULL);
}

static void
test_curl_signed(void **state)
{
	static const char *const json[] = {
		"Content-Type: application/x-amz-json-1.1",
		"X-Amz-Target: AmazonSSM.StartSession", NULL };
	struct sigv4_identity id;
	struct sigv4_error err;
	struct treq r;
	int rc;

	(void)state;
	curl_signed(&r, "POST", "/", "{\"Target\":\"mi-0123456789abcdef0\"}",
	    json);
	assert_non_null(hdr(&r, "Authorization"));
	rc = verify_at(&r, r.now, good_keys, &id, &err);
	if (rc != 0)
		fail_msg("curl POST: %s: %s", err.type, err.message);
	assert_string_equal(id.access_key_id, AKID);
	assert_string_equal(id.service, "ssm");
	/* The same request, tampered. */
	r.body[3] ^= 1;
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	r.body[3] ^= 1;
	set_hdr(&r, "X-Amz-Target", "AmazonSSM.SendCommand");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);

	curl_signed(&r, "GET", "/v1/control-channel/mi-0123?role=subscribe"
	    "&stream=input", NULL, NULL);
	rc = verify_at(&r, r.now, good_keys, &id, &err);
	if (rc != 0)
		fail_msg("curl GET: %s: %s", err.type, err.message);
	snprintf(r.query, sizeof(r.query), "role=publish&stream=input");
	expect_fail(&r, r.now, good_keys, "InvalidSignatureException");
	treq_free(&r);
}

/* The percent escapes of paths and queries go through hex_byte: every
 * byte pair, and a NUL first stops it before the second byte. */
static void
test_hex_byte(void **state)
{
	static const char hexd[] = "0123456789abcdef0123456789ABCDEF";
	char p[3] = { 0, 0, 0 };
	int a, b, want;

	(void)state;
	for (a = 0; a < 256; a++) {
		for (b = 0; b < 256; b++) {
			p[0] = (char)a;
			p[1] = (char)b;
			want = -1;
			if (a != 0 && b != 0 && memchr(hexd, a, 32) != NULL &&
			    memchr(hexd, b, 32) != NULL)
				want = (int)(((strchr(hexd, a) - hexd) % 16) * 16 +
				    (strchr(hexd, b) - hexd) % 16);
			assert_int_equal(hex_byte(p), want);
		}
	}
	assert_int_equal(hex_byte("%4"), -1);
	assert_int_equal(hex_byte("zz"), -1);
	assert_int_equal(hex_byte("fF"), 255);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_byte),
		cmocka_unit_test(test_botocore_fixtures),
		cmocka_unit_test(test_aws_documented_example),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_skew),
		cmocka_unit_test(test_missing_parts),
		cmocka_unit_test(test_garbage_authorization),
		cmocka_unit_test(test_hostile_path_query),
		cmocka_unit_test(test_curl_signed),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
