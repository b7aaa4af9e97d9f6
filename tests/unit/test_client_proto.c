/* client proto: OpenDataChannel, window size, channel_closed, handshake
 * request -> response (with KMSEncryption), the encryption challenge,
 * HandshakeComplete and ExitCode payloads, with hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "client/proto.h"
#include "common/buf.h"
#include "common/err.h"

#define U8(s) ((const uint8_t *)(s))

static void
test_open_data_channel(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(client_proto_open_data_channel(&b,
	    "11111111-2222-4333-8444-555555555555", "tok\"en",
	    "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "1.2.700.0"), 0);
	assert_string_equal(buf_cstr(&b),
	    "{\"MessageSchemaVersion\":\"1.0\","
	    "\"RequestId\":\"11111111-2222-4333-8444-555555555555\","
	    "\"TokenValue\":\"tok\\\"en\","
	    "\"ClientId\":\"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee\","
	    "\"ClientVersion\":\"1.2.700.0\"}");
	buf_free(&b);
}

static void
test_size(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 128);
	assert_int_equal(client_proto_size(&b, 90, 25), 0);
	assert_string_equal(buf_cstr(&b), "{\"cols\":90,\"rows\":25}");
	buf_reset(&b);
	assert_int_equal(client_proto_size(&b, 4294967295u, 0), 0);
	assert_string_equal(buf_cstr(&b),
	    "{\"cols\":4294967295,\"rows\":0}");
	buf_free(&b);
}

static int
closed(struct client_closed *c, const char *json)
{
	return client_proto_parse_closed(c, U8(json), strlen(json));
}

static void
test_channel_closed(void **state)
{
	struct client_closed c;
	char *big;
	size_t n = 20000;

	(void)state;
	assert_int_equal(closed(&c, "{\"MessageId\":\"m\",\"CreatedDate\":"
	    "\"2024-01-01T00:00:00.000Z\",\"DestinationId\":\"mi-1\","
	    "\"SessionId\":\"alice-1\",\"MessageType\":\"channel_closed\","
	    "\"SchemaVersion\":1,\"Output\":\"\",\"SessionStatus\":"
	    "\"Terminated\"}"), 0);
	assert_string_equal(c.session_id, "alice-1");
	assert_string_equal(c.output, "");
	assert_false(c.failed);
	client_closed_free(&c);

	assert_int_equal(closed(&c, "{\"SessionId\":\"s\",\"Output\":"
	    "\"The session's agent disconnected.\",\"SessionStatus\":"
	    "\"Failed\"}"), 0);
	assert_string_equal(c.output, "The session's agent disconnected.");
	assert_true(c.failed);
	client_closed_free(&c);

	/* The official shape: no SessionStatus. */
	assert_int_equal(closed(&c, "{\"SessionId\":\"s\",\"Output\":\"x\"}"),
	    0);
	assert_false(c.failed);
	client_closed_free(&c);

	/* Wrong types are ignored field by field; unusable ids dropped. */
	assert_int_equal(closed(&c, "{\"SessionId\":7,\"Output\":[1],"
	    "\"SessionStatus\":true}"), 0);
	assert_null(c.session_id);
	assert_string_equal(c.output, "");
	assert_false(c.failed);
	client_closed_free(&c);
	assert_int_equal(closed(&c, "{\"SessionId\":\"a b\"}"), 0);
	assert_null(c.session_id);
	client_closed_free(&c);
	assert_int_equal(closed(&c, "{\"SessionId\":\"a\\u001b]0;x\"}"), 0);
	assert_null(c.session_id);
	client_closed_free(&c);

	/* Escape sequences in Output do not reach the terminal. */
	assert_int_equal(closed(&c, "{\"Output\":\"a\\u001b[2Jb\\nc\"}"), 0);
	assert_string_equal(c.output, "a?[2Jb\nc");
	client_closed_free(&c);

	/* Not JSON, not an object, empty. */
	assert_int_equal(closed(&c, "garbage"), PH_ERR_INVALID);
	assert_int_equal(closed(&c, "[]"), PH_ERR_INVALID);
	assert_int_equal(closed(&c, "\"s\""), PH_ERR_INVALID);
	assert_int_equal(client_proto_parse_closed(&c, NULL, 0),
	    PH_ERR_INVALID);
	assert_int_equal(client_proto_parse_closed(&c, U8("{}"), 0),
	    PH_ERR_INVALID);

	/* A huge Output is cut to the display bound. */
	big = malloc(n + 32);
	assert_non_null(big);
	memcpy(big, "{\"Output\":\"", 11);
	memset(big + 11, 'x', n - 20);
	memcpy(big + 11 + n - 20, "\"}", 3);
	assert_int_equal(closed(&c, big), 0);
	assert_int_equal(strlen(c.output), CLIENT_MAX_MESSAGE_TEXT);
	client_closed_free(&c);
	/* Beyond the JSON bound: refused. */
	big = realloc(big, (size_t)70000 + 32);
	assert_non_null(big);
	memcpy(big, "{\"Output\":\"", 11);
	memset(big + 11, 'y', 70000);
	memcpy(big + 11 + 70000, "\"}", 3);
	assert_int_equal(closed(&c, big), PH_ERR_INVALID);
	free(big);
}

static int
hs_kms(const char *req, const struct client_kms_outcome *kms,
    struct client_handshake *h, struct buf *out)
{
	struct client_handshake parsed;
	int rc;

	buf_reset(out);
	rc = client_proto_handshake_response(U8(req), strlen(req),
	    "1.2.700.0", kms, h, out);
	/* Parsing alone learns the same. */
	assert_int_equal(client_proto_handshake_parse(U8(req), strlen(req),
	    &parsed), rc);
	if (rc == 0) {
		assert_int_equal(parsed.type, h->type);
		assert_int_equal(parsed.kms_requested, h->kms_requested);
		assert_int_equal(parsed.kms_params_ok, h->kms_params_ok);
		assert_string_equal(parsed.kms_key_id, h->kms_key_id);
		assert_string_equal(parsed.kms_challenge, h->kms_challenge);
	}
	return rc;
}

static int
hs(const char *req, struct client_handshake *h, struct buf *out)
{
	return hs_kms(req, NULL, h, out);
}

static void
test_handshake_shell_types(void **state)
{
	static const char *types[] = { "Standard_Stream",
	    "InteractiveCommands", "NonInteractiveCommands" };
	static const enum client_session_type want[] = {
	    CLIENT_SESSION_STANDARD, CLIENT_SESSION_INTERACTIVE,
	    CLIENT_SESSION_NONINTERACTIVE };
	struct client_handshake h;
	struct buf b;
	char req[512];
	size_t i;

	(void)state;
	buf_init(&b, 65536);
	for (i = 0; i < 3; i++) {
		snprintf(req, sizeof(req), "{\"AgentVersion\":\"3.3.1000.0\","
		    "\"RequestedClientActions\":[{\"ActionType\":"
		    "\"SessionType\",\"ActionParameters\":{\"SessionType\":"
		    "\"%s\",\"Properties\":null}}]}", types[i]);
		assert_int_equal(hs(req, &h, &b), 0);
		assert_int_equal(h.type, want[i]);
		assert_true(h.ok);
		assert_false(h.kms_requested);
		assert_string_equal(h.agent_version, "3.3.1000.0");
		assert_string_equal(buf_cstr(&b),
		    "{\"ClientVersion\":\"1.2.700.0\","
		    "\"ProcessedClientActions\":[{\"ActionType\":"
		    "\"SessionType\",\"ActionStatus\":1,\"ActionResult\":null,"
		    "\"Error\":\"\"}],\"Errors\":null}");
	}
	buf_free(&b);
}

static void
test_handshake_port_kms_unknown(void **state)
{
	struct client_handshake h;
	struct buf b;

	(void)state;
	buf_init(&b, 65536);
	/* Port: succeeds with its Properties (spec 7.4). */
	assert_int_equal(hs("{\"AgentVersion\":\"3\","
	    "\"RequestedClientActions\":"
	    "[{\"ActionType\":\"SessionType\",\"ActionParameters\":"
	    "{\"SessionType\":\"Port\",\"Properties\":{\"portNumber\":"
	    "\"80\"}}}]}", &h, &b), 0);
	assert_true(h.ok);
	assert_int_equal(h.type, CLIENT_SESSION_PORT);
	assert_string_equal(h.port.port_number, "80");
	assert_string_equal(buf_cstr(&b),
	    "{\"ClientVersion\":\"1.2.700.0\",\"ProcessedClientActions\":"
	    "[{\"ActionType\":\"SessionType\",\"ActionStatus\":1,"
	    "\"ActionResult\":null,\"Error\":\"\"}],\"Errors\":null}");
	/* Port with unusable Properties: Failed. */
	assert_int_equal(hs("{\"AgentVersion\":\"3\","
	    "\"RequestedClientActions\":"
	    "[{\"ActionType\":\"SessionType\",\"ActionParameters\":"
	    "{\"SessionType\":\"Port\",\"Properties\":{"
	    "\"localPortNumber\":\"99999\"}}}]}", &h, &b), 0);
	assert_false(h.ok);
	assert_int_equal(h.type, CLIENT_SESSION_UNKNOWN);
	assert_non_null(strstr(buf_cstr(&b), "\"ActionStatus\":2"));

	/* Shell + KMSEncryption without a KMS outcome: KMS fails. */
	assert_int_equal(hs("{\"AgentVersion\":\"3\","
	    "\"RequestedClientActions\":"
	    "[{\"ActionType\":\"SessionType\",\"ActionParameters\":"
	    "{\"SessionType\":\"Standard_Stream\",\"Properties\":null}},"
	    "{\"ActionType\":\"KMSEncryption\",\"ActionParameters\":"
	    "{\"KMSKeyId\":\"alias/k\",\"Challenge\":\"AAAA\"}}]}", &h, &b),
	    0);
	assert_false(h.ok);
	assert_true(h.kms_requested);
	assert_true(h.kms_params_ok);
	assert_string_equal(h.kms_key_id, "alias/k");
	assert_string_equal(h.kms_challenge, "AAAA");
	assert_int_equal(h.type, CLIENT_SESSION_STANDARD);
	assert_string_equal(h.first_error, "KMS encryption is not available");
	assert_string_equal(buf_cstr(&b),
	    "{\"ClientVersion\":\"1.2.700.0\",\"ProcessedClientActions\":"
	    "[{\"ActionType\":\"SessionType\",\"ActionStatus\":1,"
	    "\"ActionResult\":null,\"Error\":\"\"},{\"ActionType\":"
	    "\"KMSEncryption\",\"ActionStatus\":2,\"ActionResult\":null,"
	    "\"Error\":\"KMS encryption is not available\"}],"
	    "\"Errors\":[\"KMS encryption is not available\"]}");

	/* Unknown session type, unknown action, malformed action. */
	assert_int_equal(hs("{\"RequestedClientActions\":[{\"ActionType\":"
	    "\"SessionType\",\"ActionParameters\":{\"SessionType\":\"Bogus\"}},"
	    "{\"ActionType\":\"Teleport\",\"ActionParameters\":{}},7,"
	    "{\"ActionType\":\"SessionType\"}]}", &h, &b), 0);
	assert_false(h.ok);
	assert_string_equal(h.agent_version, "");
	assert_string_equal(buf_cstr(&b),
	    "{\"ClientVersion\":\"1.2.700.0\",\"ProcessedClientActions\":["
	    "{\"ActionType\":\"SessionType\",\"ActionStatus\":2,"
	    "\"ActionResult\":null,\"Error\":\"Unknown session type Bogus\"},"
	    "{\"ActionType\":\"Teleport\",\"ActionStatus\":3,"
	    "\"ActionResult\":null,\"Error\":\"Unsupported action Teleport\"},"
	    "{\"ActionType\":\"\",\"ActionStatus\":3,\"ActionResult\":null,"
	    "\"Error\":\"Malformed action\"},"
	    "{\"ActionType\":\"SessionType\",\"ActionStatus\":2,"
	    "\"ActionResult\":null,\"Error\":\"Unknown session type \"}],"
	    "\"Errors\":[\"Unknown session type Bogus\","
	    "\"Unsupported action Teleport\",\"Malformed action\","
	    "\"Unknown session type \"]}");

	/* An empty action list is answered with an empty one. */
	assert_int_equal(hs("{\"RequestedClientActions\":[]}", &h, &b), 0);
	assert_true(h.ok);
	assert_string_equal(buf_cstr(&b), "{\"ClientVersion\":\"1.2.700.0\","
	    "\"ProcessedClientActions\":[],\"Errors\":null}");
	buf_free(&b);
}

static void
test_handshake_garbage(void **state)
{
	struct client_handshake h;
	struct buf b;
	char *big;
	size_t i;

	(void)state;
	buf_init(&b, 65536);
	assert_int_equal(hs("", &h, &b), PH_ERR_INVALID);
	assert_int_equal(hs("nope", &h, &b), PH_ERR_INVALID);
	assert_int_equal(hs("[]", &h, &b), PH_ERR_INVALID);
	assert_int_equal(hs("{}", &h, &b), PH_ERR_INVALID);
	assert_int_equal(hs("{\"RequestedClientActions\":{}}", &h, &b),
	    PH_ERR_INVALID);
	assert_int_equal(b.len, 0);
	/* Too many actions. */
	big = malloc(100 * 20 + 64);
	assert_non_null(big);
	i = (size_t)snprintf(big, 64, "{\"RequestedClientActions\":[");
	for (int k = 0; k < 100; k++)
		i += (size_t)snprintf(big + i, 20, "%s{}", k ? "," : "");
	snprintf(big + i, 8, "]}");
	assert_int_equal(hs(big, &h, &b), PH_ERR_INVALID);
	free(big);
	buf_free(&b);
}

#define KMS_REQ(params) "{\"AgentVersion\":\"3.3.1000.0\"," \
	"\"RequestedClientActions\":[{\"ActionType\":\"SessionType\"," \
	"\"ActionParameters\":{\"SessionType\":\"Standard_Stream\"," \
	"\"Properties\":null}},{\"ActionType\":\"KMSEncryption\"," \
	"\"ActionParameters\":" params "}]}"

static void
test_handshake_kms(void **state)
{
	struct client_kms_outcome ok = { 1, "AQIDBA==", 1, NULL };
	struct client_kms_outcome old = { 1, "AQIDBA==", 0, NULL };
	struct client_kms_outcome bad = { 0, NULL, 0,
	    "An error occurred (AccessDeniedException) when calling the "
	    "GenerateDataKey operation: denied" };
	struct client_handshake h;
	struct buf b;

	(void)state;
	buf_init(&b, 65536);
	/* Success with the challenge acknowledged (spec 6.1 [I]). */
	assert_int_equal(hs_kms(KMS_REQ("{\"KMSKeyId\":\"arn:aws:kms:"
	    "us-east-1:111122223333:key/k1\",\"Challenge\":\"c2VjcmV0\"}"),
	    &ok, &h, &b), 0);
	assert_true(h.ok);
	assert_true(h.kms_requested);
	assert_string_equal(h.kms_key_id,
	    "arn:aws:kms:us-east-1:111122223333:key/k1");
	assert_string_equal(buf_cstr(&b),
	    "{\"ClientVersion\":\"1.2.700.0\",\"ProcessedClientActions\":"
	    "[{\"ActionType\":\"SessionType\",\"ActionStatus\":1,"
	    "\"ActionResult\":null,\"Error\":\"\"},{\"ActionType\":"
	    "\"KMSEncryption\",\"ActionStatus\":1,\"ActionResult\":"
	    "{\"KMSCipherTextKey\":\"AQIDBA==\",\"KMSCipherTextHash\":null,"
	    "\"ChallengeAcknowledgement\":true},\"Error\":\"\"}],"
	    "\"Errors\":null}");
	/* An agent without a challenge: no acknowledgement field. */
	assert_int_equal(hs_kms(KMS_REQ("{\"KMSKeyId\":\"alias/k\","
	    "\"Challenge\":null}"), &old, &h, &b), 0);
	assert_true(h.ok);
	assert_string_equal(h.kms_challenge, "");
	assert_non_null(strstr(buf_cstr(&b), "\"ActionResult\":"
	    "{\"KMSCipherTextKey\":\"AQIDBA==\",\"KMSCipherTextHash\":null},"));
	/* GenerateDataKey failed: Failed with its text. */
	assert_int_equal(hs_kms(KMS_REQ("{\"KMSKeyId\":\"alias/k\"}"), &bad,
	    &h, &b), 0);
	assert_false(h.ok);
	assert_string_equal(h.first_error, bad.error);
	assert_non_null(strstr(buf_cstr(&b), "{\"ActionType\":"
	    "\"KMSEncryption\",\"ActionStatus\":2,\"ActionResult\":null,"
	    "\"Error\":\"An error occurred (AccessDeniedException) when "
	    "calling the GenerateDataKey operation: denied\"}"));
	buf_free(&b);
}

static void
kms_params_bad(const char *req, const char *want_error)
{
	struct client_kms_outcome ok = { 1, "AQIDBA==", 1, NULL };
	struct client_handshake h;
	struct buf b;

	buf_init(&b, 65536);
	assert_int_equal(hs_kms(req, &ok, &h, &b), 0);
	assert_false(h.ok);
	assert_true(h.kms_requested);
	assert_false(h.kms_params_ok);
	assert_string_equal(h.first_error, want_error);
	/* Never a key in a failed answer. */
	assert_null(strstr(buf_cstr(&b), "KMSCipherTextKey"));
	buf_free(&b);
}

static void
test_handshake_kms_bad_params(void **state)
{
	char *big;
	size_t n;

	(void)state;
	kms_params_bad(KMS_REQ("null"),
	    "KMSEncryption has no ActionParameters object");
	kms_params_bad(KMS_REQ("[]"),
	    "KMSEncryption has no ActionParameters object");
	kms_params_bad(KMS_REQ("{}"), "KMSEncryption has no usable KMSKeyId");
	kms_params_bad(KMS_REQ("{\"KMSKeyId\":7}"),
	    "KMSEncryption has no usable KMSKeyId");
	kms_params_bad(KMS_REQ("{\"KMSKeyId\":\"\"}"),
	    "KMSEncryption has no usable KMSKeyId");
	kms_params_bad(KMS_REQ("{\"KMSKeyId\":\"alias/a b\"}"),
	    "KMSEncryption has no usable KMSKeyId");
	kms_params_bad(KMS_REQ("{\"KMSKeyId\":\"alias/\\u001b[2J\"}"),
	    "KMSEncryption has no usable KMSKeyId");
	kms_params_bad(KMS_REQ("{\"KMSKeyId\":\"k\",\"Challenge\":5}"),
	    "KMSEncryption has an unusable Challenge");
	kms_params_bad(KMS_REQ("{\"KMSKeyId\":\"k\",\"Challenge\":\"a b\"}"),
	    "KMSEncryption has an unusable Challenge");
	kms_params_bad(KMS_REQ("{\"KMSKeyId\":\"k\",\"Challenge\":\"abc\"}"),
	    "KMSEncryption has an unusable Challenge");
	/* A key id past 2048 bytes. */
	big = malloc(4096);
	assert_non_null(big);
	n = (size_t)snprintf(big, 4096, "%s", "{\"AgentVersion\":\"3\","
	    "\"RequestedClientActions\":[{\"ActionType\":\"KMSEncryption\","
	    "\"ActionParameters\":{\"KMSKeyId\":\"");
	memset(big + n, 'k', 2049);
	snprintf(big + n + 2049, 16, "\"}}]}");
	kms_params_bad(big, "KMSEncryption has no usable KMSKeyId");
	free(big);
	/* Two KMSEncryption actions: the second fails. */
	kms_params_bad("{\"RequestedClientActions\":[{\"ActionType\":"
	    "\"KMSEncryption\",\"ActionParameters\":7},{\"ActionType\":"
	    "\"KMSEncryption\",\"ActionParameters\":{\"KMSKeyId\":\"k\"}}]}",
	    "KMSEncryption has no ActionParameters object");
}

static void
test_challenge(void **state)
{
	struct buf b, out;
	static const char *bad[] = { "", "x", "[]", "{}",
	    "{\"Challenge\":1}", "{\"Challenge\":\"\"}",
	    "{\"Challenge\":\"@@@@\"}", "{\"Challenge\":\"AAA\"}",
	    "{\"Challenge\":null}" };
	char *big;
	size_t i;

	(void)state;
	buf_init(&b, 4096);
	buf_init(&out, 4096);
	assert_int_equal(client_proto_parse_challenge(
	    U8("{\"Challenge\":\"AQID\"}"), 20, &b), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "\x01\x02\x03", 3);
	assert_int_equal(client_proto_challenge_response(&out, b.data, b.len),
	    0);
	assert_string_equal(buf_cstr(&out), "{\"Challenge\":\"AQID\"}");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		assert_int_equal(client_proto_parse_challenge(U8(bad[i]),
		    strlen(bad[i]), &b), PH_ERR_INVALID);
		assert_int_equal(b.len, 0);
	}
	/* Larger than any challenge: refused. */
	big = malloc(4096);
	assert_non_null(big);
	memcpy(big, "{\"Challenge\":\"", 14);
	memset(big + 14, 'A', 2000);
	memcpy(big + 14 + 2000, "\"}", 3);
	buf_reset(&b);
	assert_int_equal(client_proto_parse_challenge(U8(big), strlen(big),
	    &b), PH_ERR_INVALID);
	free(big);
	buf_free(&b);
	buf_free(&out);
}

static int
hc(const char *s, char **m)
{
	return client_proto_parse_handshake_complete(U8(s), strlen(s), m);
}

static void
test_handshake_complete(void **state)
{
	char *m;

	(void)state;
	assert_int_equal(hc("{\"HandshakeTimeToComplete\":1000,"
	    "\"CustomerMessage\":\"This session is encrypted using AWS "
	    "KMS.\"}", &m), 0);
	assert_string_equal(m, "This session is encrypted using AWS KMS.");
	free(m);
	assert_int_equal(hc("{\"HandshakeTimeToComplete\":1}", &m), 0);
	assert_string_equal(m, "");
	free(m);
	assert_int_equal(hc("x", &m), PH_ERR_INVALID);
	assert_null(m);
}

static void
exit_ok(const char *s, int want)
{
	int code = -99;

	assert_int_equal(client_proto_parse_exit_code(U8(s), strlen(s),
	    &code), 0);
	assert_int_equal(code, want);
}

static void
exit_bad(const char *s)
{
	int code = -99;

	assert_int_equal(client_proto_parse_exit_code(U8(s), strlen(s),
	    &code), PH_ERR_INVALID);
	assert_int_equal(code, -99);
}

static void
test_exit_code(void **state)
{
	(void)state;
	exit_ok("EXIT_CODE: 0", 0);
	exit_ok("EXIT_CODE: 3", 3);
	exit_ok("EXIT_CODE:255\n", 255);
	exit_ok("EXIT_CODE: 256", 1);
	exit_ok("EXIT_CODE: -1", 1);
	exit_ok("EXIT_CODE: 99999999999999999999", 1);
	exit_bad("");
	exit_bad("EXIT_CODE:");
	exit_bad("EXIT_CODE: x");
	exit_bad("EXIT_CODE: 1x");
	exit_bad("exit_code: 1");
	assert_int_equal(client_proto_parse_exit_code(NULL, 0, NULL),
	    PH_ERR_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_data_channel),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_channel_closed),
		cmocka_unit_test(test_handshake_shell_types),
		cmocka_unit_test(test_handshake_port_kms_unknown),
		cmocka_unit_test(test_handshake_garbage),
		cmocka_unit_test(test_handshake_kms),
		cmocka_unit_test(test_handshake_kms_bad_params),
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_handshake_complete),
		cmocka_unit_test(test_exit_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
