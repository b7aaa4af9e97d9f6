/* client kms: strict base64, the GenerateDataKey request body (context
 * with and without the challenge), hostile responses, and the call
 * against a loopback fake KMS that answers or refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "client/awscfg.h"
#include "client/kms.h"
#include "common/buf.h"
#include "common/err.h"

#define U8(s) ((const uint8_t *)(s))
/* base64 of the bytes 0x00..0x3f */
#define KEY64_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygp" \
	"KissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="

static void
test_b64(void **state)
{
	uint8_t out[64];
	struct buf b;
	size_t n;

	(void)state;
	assert_int_equal(client_b64_decode("AQID", 4, out, sizeof(out), &n),
	    0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "\x01\x02\x03", 3);
	assert_int_equal(client_b64_decode("AQI=", 4, out, sizeof(out), &n),
	    0);
	assert_int_equal(n, 2);
	assert_int_equal(client_b64_decode("AQ==", 4, out, sizeof(out), &n),
	    0);
	assert_int_equal(n, 1);
	assert_int_equal(client_b64_decode(KEY64_B64, strlen(KEY64_B64), out,
	    sizeof(out), &n), 0);
	assert_int_equal(n, 64);
	assert_int_equal(out[63], 0x3f);
	/* Strict: no whitespace, no URL alphabet, no short or odd forms. */
	assert_int_equal(client_b64_decode("", 0, out, 64, &n),
	    PH_ERR_INVALID);
	assert_int_equal(client_b64_decode("AQI", 3, out, 64, &n),
	    PH_ERR_INVALID);
	assert_int_equal(client_b64_decode("AQ I", 4, out, 64, &n),
	    PH_ERR_INVALID);
	assert_int_equal(client_b64_decode("AQ-_", 4, out, 64, &n),
	    PH_ERR_INVALID);
	assert_int_equal(client_b64_decode("A=QI", 4, out, 64, &n),
	    PH_ERR_INVALID);
	assert_int_equal(client_b64_decode("====", 4, out, 64, &n),
	    PH_ERR_INVALID);
	assert_int_equal(client_b64_decode("AQID", 4, out, 2, &n),
	    PH_ERR_TOOBIG);
	assert_false(client_b64_valid(NULL, 0));
	assert_true(client_b64_valid("AQID", 4));
	buf_init(&b, 256);
	for (n = 0; n < 64; n++)
		out[n] = (uint8_t)n;
	assert_int_equal(client_b64_encode(out, 64, &b), 0);
	assert_string_equal(buf_cstr(&b), KEY64_B64);
	buf_reset(&b);
	assert_int_equal(client_b64_encode(out, 0, &b), 0);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void
test_request_body(void **state)
{
	struct client_kms_request rq = { "alias/session-manager-demo",
	    "alice-0123456789abcdef0", "mi-0123456789abcdef0", NULL };
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(client_kms_request_body(&rq, &b), 0);
	assert_string_equal(buf_cstr(&b), "{\"KeyId\":"
	    "\"alias/session-manager-demo\",\"NumberOfBytes\":64,"
	    "\"EncryptionContext\":{\"aws:ssm:SessionId\":"
	    "\"alice-0123456789abcdef0\",\"aws:ssm:TargetId\":"
	    "\"mi-0123456789abcdef0\"}}");
	buf_reset(&b);
	rq.challenge = "c2VjcmV0Y2hhbGxlbmdlMTY=";
	assert_int_equal(client_kms_request_body(&rq, &b), 0);
	assert_string_equal(buf_cstr(&b), "{\"KeyId\":"
	    "\"alias/session-manager-demo\",\"NumberOfBytes\":64,"
	    "\"EncryptionContext\":{\"aws:ssm:SessionId\":"
	    "\"alice-0123456789abcdef0\",\"aws:ssm:TargetId\":"
	    "\"mi-0123456789abcdef0\",\"aws:ssm:RandomChallenge\":"
	    "\"c2VjcmV0Y2hhbGxlbmdlMTY=\"}}");
	rq.key_id = NULL;
	assert_int_equal(client_kms_request_body(&rq, &b), PH_ERR_INVALID);
	buf_free(&b);
}

static int
parse(const char *json, uint8_t key[64], char **blob)
{
	char err[256];

	return client_kms_parse_response(U8(json), strlen(json), key, blob,
	    err, sizeof(err));
}

static void
test_parse_response(void **state)
{
	static const char *bad[] = {
		"", "nope", "[]", "{}",
		"{\"CiphertextBlob\":\"AQID\"}",
		"{\"Plaintext\":\"" KEY64_B64 "\"}",
		"{\"CiphertextBlob\":7,\"Plaintext\":\"" KEY64_B64 "\"}",
		"{\"CiphertextBlob\":\"\",\"Plaintext\":\"" KEY64_B64 "\"}",
		"{\"CiphertextBlob\":\"A Q\",\"Plaintext\":\"" KEY64_B64 "\"}",
		"{\"CiphertextBlob\":\"AQID\",\"Plaintext\":null}",
		"{\"CiphertextBlob\":\"AQID\",\"Plaintext\":\"AQID\"}",
		"{\"CiphertextBlob\":\"AQID\",\"Plaintext\":\"" KEY64_B64
		    "AAAA\"}",
		"{\"CiphertextBlob\":\"AQID\",\"Plaintext\":\"!!!!\"}",
	};
	uint8_t key[64];
	char *blob, *big;
	size_t i, n;

	(void)state;
	assert_int_equal(parse("{\"CiphertextBlob\":\"AQIDBA==\","
	    "\"Plaintext\":\"" KEY64_B64 "\",\"KeyId\":\"arn:k\"}", key,
	    &blob), 0);
	assert_string_equal(blob, "AQIDBA==");
	for (i = 0; i < 64; i++)
		assert_int_equal(key[i], i);
	free(blob);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(key, 0xaa, sizeof(key));
		blob = (char *)1;
		assert_int_equal(parse(bad[i], key, &blob), PH_ERR_INVALID);
		assert_null(blob);
		/* Nothing half-parsed is left in the key. */
		for (n = 0; n < 64; n++)
			assert_int_equal(key[n], 0);
	}
	/* A blob past the bound, and a body past the JSON bound. */
	big = malloc(200000);
	assert_non_null(big);
	n = (size_t)snprintf(big, 64, "{\"CiphertextBlob\":\"");
	memset(big + n, 'A', 8196);
	snprintf(big + n + 8196, 200, "\",\"Plaintext\":\"%s\"}", KEY64_B64);
	assert_int_equal(parse(big, key, &blob), PH_ERR_INVALID);
	memset(big, ' ', 199999);
	big[0] = '{';
	big[199998] = '}';
	big[199999] = '\0';
	assert_int_equal(parse(big, key, &blob), PH_ERR_INVALID);
	free(big);
}

/* One-connection loopback fake KMS: keeps the request, sends a canned
 * answer. */
struct fake {
	int lfd;
	int port;
	char req[65536];
	size_t req_len;
	const char *status_line;
	const char *body;
};

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd pfd;
	const char *head_end, *cl;
	char head[256];
	size_t need;
	ssize_t n;
	int fd, rounds;

	pfd.fd = f->lfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 10000) != 1)
		return NULL;
	if ((fd = accept(f->lfd, NULL, NULL)) < 0)
		return NULL;
	for (rounds = 0; rounds < 1000 && f->req_len < sizeof(f->req) - 1;
	    rounds++) {
		pfd.fd = fd;
		if (poll(&pfd, 1, 10000) != 1)
			break;
		n = read(fd, f->req + f->req_len,
		    sizeof(f->req) - 1 - f->req_len);
		if (n <= 0)
			break;
		f->req_len += (size_t)n;
		f->req[f->req_len] = '\0';
		if ((head_end = strstr(f->req, "\r\n\r\n")) == NULL)
			continue;
		need = (size_t)(head_end + 4 - f->req);
		cl = strcasestr(f->req, "\r\nContent-Length:");
		if (cl != NULL && cl < head_end)
			need += strtoul(cl + 17, NULL, 10);
		if (f->req_len >= need)
			break;
	}
	snprintf(head, sizeof(head), "%s\r\nContent-Type: "
	    "application/x-amz-json-1.1\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", f->status_line, strlen(f->body));
	if (send(fd, head, strlen(head), MSG_NOSIGNAL) > 0)
		(void)send(fd, f->body, strlen(f->body), MSG_NOSIGNAL);
	close(fd);
	return NULL;
}

static void
fake_start(struct fake *f, pthread_t *th, const char *status_line,
    const char *body)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(f, 0, sizeof(*f));
	f->status_line = status_line;
	f->body = body;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 1), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(th, NULL, fake_main, f), 0);
}

static void
make_cfg(struct client_awscfg *c, int port)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->access_key_id, sizeof(c->access_key_id), "AKIDTEST");
	snprintf(c->secret_access_key, sizeof(c->secret_access_key), "s");
	snprintf(c->region, sizeof(c->region), "us-east-1");
	/* Only the KMS endpoint reaches the fake. */
	snprintf(c->endpoint, sizeof(c->endpoint), "http://127.0.0.1:1");
	snprintf(c->kms_endpoint, sizeof(c->kms_endpoint),
	    "http://127.0.0.1:%d", port);
}

static void
test_generate_data_key(void **state)
{
	struct client_kms_request rq = { "alias/k", "sess-1", "mi-1",
	    "Y2hhbGxlbmdl" };
	struct client_awscfg cfg;
	struct fake f;
	pthread_t th;
	uint8_t key[64];
	char err[512], *blob = NULL;
	const char *body;
	json_t *o;
	int rc, i;

	(void)state;
	fake_start(&f, &th, "HTTP/1.1 200 OK", "{\"CiphertextBlob\":"
	    "\"AQIDBA==\",\"Plaintext\":\"" KEY64_B64 "\",\"KeyId\":"
	    "\"arn:aws:kms:us-east-1:111122223333:key/k\"}");
	make_cfg(&cfg, f.port);
	rc = client_kms_generate_data_key(&cfg, &rq, key, &blob, err,
	    sizeof(err));
	pthread_join(th, NULL);
	close(f.lfd);
	if (rc != 0)
		fail_msg("%s", err);
	assert_string_equal(blob, "AQIDBA==");
	for (i = 0; i < 64; i++)
		assert_int_equal(key[i], i);
	free(blob);
	assert_non_null(strcasestr(f.req,
	    "\r\nX-Amz-Target: TrentService.GenerateDataKey\r\n"));
	assert_non_null(strstr(f.req, "/kms/aws4_request"));
	body = strstr(f.req, "\r\n\r\n") + 4;
	o = json_loads(body, 0, NULL);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o,
	    "NumberOfBytes")), 64);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    o, "EncryptionContext"), "aws:ssm:RandomChallenge")),
	    "Y2hhbGxlbmdl");
	json_decref(o);

	/* A refusal: the CLI's message, no key. */
	fake_start(&f, &th, "HTTP/1.1 400 Bad Request", "{\"__type\":"
	    "\"AccessDeniedException\",\"message\":\"User: alice is not "
	    "authorized to perform: kms:GenerateDataKey\"}");
	make_cfg(&cfg, f.port);
	memset(key, 0x55, sizeof(key));
	rc = client_kms_generate_data_key(&cfg, &rq, key, &blob, err,
	    sizeof(err));
	pthread_join(th, NULL);
	close(f.lfd);
	assert_int_equal(rc, PH_ERR_INVALID);
	assert_null(blob);
	assert_string_equal(err, "An error occurred (AccessDeniedException) "
	    "when calling the GenerateDataKey operation: User: alice is not "
	    "authorized to perform: kms:GenerateDataKey");
	for (i = 0; i < 64; i++)
		assert_int_equal(key[i], 0);

	/* A 200 with a short key is refused as well. */
	fake_start(&f, &th, "HTTP/1.1 200 OK", "{\"CiphertextBlob\":\"AQID\","
	    "\"Plaintext\":\"AQID\"}");
	make_cfg(&cfg, f.port);
	rc = client_kms_generate_data_key(&cfg, &rq, key, &blob, err,
	    sizeof(err));
	pthread_join(th, NULL);
	close(f.lfd);
	assert_int_equal(rc, PH_ERR_INVALID);
	assert_non_null(strstr(err, "64-byte Plaintext"));

	/* Nobody listening. */
	make_cfg(&cfg, 1);
	rc = client_kms_generate_data_key(&cfg, &rq, key, &blob, err,
	    sizeof(err));
	assert_int_equal(rc, PH_ERR_IO);
	assert_non_null(strstr(err, "Could not connect to the endpoint URL"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_request_body),
		cmocka_unit_test(test_parse_response),
		cmocka_unit_test(test_generate_data_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
