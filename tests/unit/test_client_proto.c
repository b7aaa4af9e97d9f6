/* client proto: OpenDataChannel, window size, channel_closed, handshake
 * request -> response, HandshakeComplete and ExitCode payloads, with
 * hostile input. */
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
hs(const char *req, struct client_handshake *h, struct buf *out)
{
	buf_reset(out);
	return client_proto_handshake_response(U8(req), strlen(req),
	    "1.2.700.0", h, out);
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
	/* Port: not supported yet -> Failed. */
	assert_int_equal(hs("{\"AgentVersion\":\"3\","
	    "\"RequestedClientActions\":"
	    "[{\"ActionType\":\"SessionType\",\"ActionParameters\":"
	    "{\"SessionType\":\"Port\",\"Properties\":{\"portNumber\":"
	    "\"80\"}}}]}", &h, &b), 0);
	assert_false(h.ok);
	assert_int_equal(h.type, CLIENT_SESSION_UNKNOWN);
	assert_string_equal(buf_cstr(&b),
	    "{\"ClientVersion\":\"1.2.700.0\",\"ProcessedClientActions\":"
	    "[{\"ActionType\":\"SessionType\",\"ActionStatus\":2,"
	    "\"ActionResult\":null,\"Error\":\"Port sessions are not supported "
	    "by this client yet\"}],\"Errors\":[\"Port sessions are not "
	    "supported by this client yet\"]}");

	/* Shell + KMSEncryption: SessionType succeeds, KMS fails. */
	assert_int_equal(hs("{\"AgentVersion\":\"3\","
	    "\"RequestedClientActions\":"
	    "[{\"ActionType\":\"SessionType\",\"ActionParameters\":"
	    "{\"SessionType\":\"Standard_Stream\",\"Properties\":null}},"
	    "{\"ActionType\":\"KMSEncryption\",\"ActionParameters\":"
	    "{\"KMSKeyId\":\"alias/k\",\"Challenge\":\"AAAA\"}}]}", &h, &b),
	    0);
	assert_false(h.ok);
	assert_true(h.kms_requested);
	assert_int_equal(h.type, CLIENT_SESSION_STANDARD);
	assert_string_equal(h.first_error,
	    "KMS encryption is not supported by this client yet");
	assert_string_equal(buf_cstr(&b),
	    "{\"ClientVersion\":\"1.2.700.0\",\"ProcessedClientActions\":"
	    "[{\"ActionType\":\"SessionType\",\"ActionStatus\":1,"
	    "\"ActionResult\":null,\"Error\":\"\"},{\"ActionType\":"
	    "\"KMSEncryption\",\"ActionStatus\":2,\"ActionResult\":null,"
	    "\"Error\":\"KMS encryption is not supported by this client "
	    "yet\"}],\"Errors\":[\"KMS encryption is not supported by this "
	    "client yet\"]}");

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
		cmocka_unit_test(test_handshake_complete),
		cmocka_unit_test(test_exit_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
