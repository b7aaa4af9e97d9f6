/* agent handshake (spec 5, 6): the HandshakeRequest, strict validation of
 * hostile HandshakeResponses and challenge answers, the whole state
 * machine with a fake channel and a fake KMS, its time limits; the KMS
 * Decrypt body and answers; and the Decrypt call itself against a
 * loopback HTTPS server that demands the agent's client certificate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "agent/handshake.h"
#include "agent/kms_decrypt.h"
#include "agent/state.h"
#include "common/buf.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/sessioncrypt.h"
#include "server/pki.h"

#define SID "admin-0123456789abcdef0"
#define MI "mi-0123456789abcdef0"
#define ALIAS "alias/session-manager-demo-encryption"
#define MAXSENT 16

/* ---- a fake channel and KMS ---------------------------------------------- */

struct fake {
	uint32_t types[MAXSENT];
	char *payloads[MAXSENT];
	size_t lens[MAXSENT];
	int nsent;
	int send_rc;
	int decrypts;
	int decrypt_rc;
	char *blob, *sid, *tid, *challenge;
	struct sessioncrypt *sc;
};

static int
fake_send(void *ud, uint32_t type, const void *p, size_t n)
{
	struct fake *f = ud;

	if (f->send_rc != 0)
		return f->send_rc;
	assert_true(f->nsent < MAXSENT);
	assert_true(n > 0);
	f->types[f->nsent] = type;
	f->payloads[f->nsent] = strndup(p, n);
	f->lens[f->nsent] = n;
	f->nsent++;
	return 0;
}

static int
fake_decrypt(void *ud, const struct agent_kms_request *rq, char *err,
    size_t errlen)
{
	struct fake *f = ud;

	f->decrypts++;
	free(f->blob);
	free(f->sid);
	free(f->tid);
	free(f->challenge);
	f->blob = strdup(rq->ciphertext_b64);
	f->sid = strdup(rq->session_id);
	f->tid = strdup(rq->target_id);
	f->challenge = rq->challenge ? strdup(rq->challenge) : NULL;
	if (f->decrypt_rc != 0)
		snprintf(err, errlen, "no thread pool");
	return f->decrypt_rc;
}

static void
fake_set_crypto(void *ud, struct sessioncrypt *sc)
{
	struct fake *f = ud;

	f->sc = sc;
}

static const struct agent_hs_ops fake_ops = {
	.send = fake_send,
	.decrypt = fake_decrypt,
	.set_crypto = fake_set_crypto,
};

static void
fake_clear(struct fake *f)
{
	int i;

	for (i = 0; i < f->nsent; i++)
		free(f->payloads[i]);
	free(f->blob);
	free(f->sid);
	free(f->tid);
	free(f->challenge);
	memset(f, 0, sizeof(*f));
}

static struct agent_handshake *
new_hs(struct fake *f, enum agent_session_type type, const char *kms)
{
	struct agent_hs_params p = { SID, MI, type, kms, "3.3.1000.0", NULL };
	struct agent_handshake *hs;

	memset(f, 0, sizeof(*f));
	assert_int_equal(agent_handshake_new(&hs, &p, &fake_ops, f), 0);
	return hs;
}

static void
test_needed(void **state)
{
	(void)state;
	/* spec 5.1 */
	assert_false(agent_handshake_needed(AGENT_ST_STANDARD, NULL));
	assert_false(agent_handshake_needed(AGENT_ST_STANDARD, ""));
	assert_false(agent_handshake_needed(AGENT_ST_INTERACTIVE, NULL));
	assert_true(agent_handshake_needed(AGENT_ST_STANDARD, ALIAS));
	assert_true(agent_handshake_needed(AGENT_ST_INTERACTIVE, ALIAS));
	assert_true(agent_handshake_needed(AGENT_ST_NONINTERACTIVE, NULL));
	assert_true(agent_handshake_needed(AGENT_ST_PORT, NULL));
	assert_true(agent_handshake_encrypts(AGENT_ST_STANDARD, ALIAS));
	assert_true(agent_handshake_encrypts(AGENT_ST_NONINTERACTIVE, ALIAS));
	assert_false(agent_handshake_encrypts(AGENT_ST_PORT, ALIAS));
	assert_false(agent_handshake_encrypts(AGENT_ST_STANDARD, NULL));
}

/* ---- base64 -------------------------------------------------------------- */

static void
test_b64(void **state)
{
	static const char *const bad[] = {
		"", "A", "AB", "ABC", "AB=C", "A===", "====", "AB C", "AB\nC",
		"ABC-", "ABC_", "QQ=A", "=AAA", "AAAA====", "AB==AB==",
	};
	uint8_t out[16];
	struct buf b;
	size_t n, i;

	(void)state;
	assert_int_equal(agent_b64_decode("aGVsbG8=", 8, out, sizeof(out),
	    &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "hello", 5);
	assert_int_equal(agent_b64_decode("aGk=", 4, out, 2, &n), 0);
	assert_int_equal(agent_b64_decode("aGVsbG8=", 8, out, 4, &n),
	    PH_ERR_TOOBIG);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(agent_b64_decode(bad[i], strlen(bad[i]),
		    out, sizeof(out), &n), 0);
	buf_init(&b, 64);
	assert_int_equal(agent_b64_encode((const uint8_t *)"hello", 5, &b), 0);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.data, "aGVsbG8=", 8);
	buf_free(&b);
}

/* ---- HandshakeRequest ---------------------------------------------------- */

static void
test_request_json(void **state)
{
	struct agent_hs_params p = { SID, MI, AGENT_ST_STANDARD, ALIAS,
	    "3.3.1000.0", NULL };
	json_t *o, *a;
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(agent_handshake_request_json(&p,
	    "AAAAAAAAAAAAAAAAAAAAAA==", &b), 0);
	o = json_loadb((const char *)b.data, b.len, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o,
	    "AgentVersion")), "3.3.1000.0");
	a = json_object_get(o, "RequestedClientActions");
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(a, 0), "ActionType")), "SessionType");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(a, 0), "ActionParameters"), "SessionType")),
	    "Standard_Stream");
	assert_true(json_is_null(json_object_get(json_object_get(
	    json_array_get(a, 0), "ActionParameters"), "Properties")));
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(a, 1), "ActionType")), "KMSEncryption");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(a, 1), "ActionParameters"), "KMSKeyId")), ALIAS);
	json_decref(o);

	/* Port is never encrypted; no KMS: SessionType alone. */
	p.type = AGENT_ST_PORT;
	buf_reset(&b);
	assert_int_equal(agent_handshake_request_json(&p, NULL, &b), 0);
	o = json_loadb((const char *)b.data, b.len, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(o,
	    "RequestedClientActions")), 1);
	json_decref(o);
	buf_free(&b);
}

/* ---- HandshakeResponse --------------------------------------------------- */

static char *
response(const char *kms_result, const char *kms_status,
    const char *st_status)
{
	char *s;
	size_t n = strlen(kms_result) + 512;

	s = malloc(n);
	assert_non_null(s);
	snprintf(s, n, "{\"ClientVersion\":\"1.2.650.0\","
	    "\"ProcessedClientActions\":[{\"ActionType\":\"SessionType\","
	    "\"ActionStatus\":%s,\"ActionResult\":null,\"Error\":\"\"},"
	    "{\"ActionType\":\"KMSEncryption\",\"ActionStatus\":%s,"
	    "\"ActionResult\":%s,\"Error\":\"GenerateDataKey: Access\\u001b"
	    "[31mDenied\"}],\"Errors\":null}", st_status, kms_status,
	    kms_result);
	return s;
}

#define GOOD_RESULT "{\"KMSCipherTextKey\":\"AQIDBAUGBwg=\"," \
	"\"KMSCipherTextHash\":null}"

static void
test_response_valid(void **state)
{
	struct agent_hs_response r;
	char err[600], *s;
	const char *plain;

	(void)state;
	s = response(GOOD_RESULT, "1", "1");
	assert_int_equal(agent_handshake_parse_response((uint8_t *)s,
	    strlen(s), 1, &r, err, sizeof(err)), 0);
	assert_string_equal(r.client_version, "1.2.650.0");
	assert_string_equal(r.kms_ciphertext, "AQIDBAUGBwg=");
	assert_false(r.challenge_ack);
	agent_hs_response_free(&r);
	free(s);

	s = response("{\"KMSCipherTextKey\":\"AQIDBAUGBwg=\","
	    "\"KMSCipherTextHash\":null,\"ChallengeAcknowledgement\":true}",
	    "1", "1");
	assert_int_equal(agent_handshake_parse_response((uint8_t *)s,
	    strlen(s), 1, &r, err, sizeof(err)), 0);
	assert_true(r.challenge_ack);
	agent_hs_response_free(&r);
	free(s);

	/* Without KMS: SessionType only. */
	plain = "{\"ClientVersion\":\"1.2.0.0\",\"ProcessedClientActions\":"
	    "[{\"ActionType\":\"SessionType\",\"ActionStatus\":1,"
	    "\"ActionResult\":null,\"Error\":\"\"}],\"Errors\":[]}";
	assert_int_equal(agent_handshake_parse_response((const uint8_t *)plain,
	    strlen(plain), 0, &r, err, sizeof(err)), 0);
	assert_null(r.kms_ciphertext);
	agent_hs_response_free(&r);
}

static void
test_response_garbage(void **state)
{
	static const char *const cases[] = {
		"\x00\xffnot json {", "[1, 2, 3]", "\"hello\"", "null", "",
		"{", "{}", "42",
		"{\"ClientVersion\":5,\"ProcessedClientActions\":\"x\","
		"\"Errors\":7}",
		"{\"ClientVersion\":\"1.2.0.0\",\"ProcessedClientActions\":"
		"[1,\"a\",null],\"Errors\":null}",
		"{\"ClientVersion\":\"1.2.0.0\",\"Errors\":null}",
		"{\"ClientVersion\":\"1.2.0.0\",\"ProcessedClientActions\":[],"
		"\"Errors\":null}",
		"{\"ClientVersion\":\"1.2.0.0\",\"ProcessedClientActions\":[{"
		"\"ActionType\":\"SessionType\",\"ActionStatus\":1,"
		"\"ActionResult\":null,\"Error\":\"\"}],\"Errors\":null}",
		/* duplicate keys */
		"{\"ClientVersion\":\"1\",\"ClientVersion\":\"2\"}",
		/* a NUL inside a string */
		"{\"ClientVersion\":\"1.2\\u0000.0\",\"ProcessedClientActions\""
		":[]}",
	};
	struct { const char *result, *kms, *st; } acts[] = {
		{ "null", "2", "1" },               /* KMS Failed */
		{ "null", "3", "1" },               /* Unsupported */
		{ GOOD_RESULT, "1", "2" },          /* SessionType Failed */
		{ GOOD_RESULT, "\"1\"", "1" },      /* status a string */
		{ GOOD_RESULT, "1.0", "1" },        /* status a real */
		{ GOOD_RESULT, "null", "1" },
		{ GOOD_RESULT, "0", "1" },
		{ "null", "1", "1" },               /* no ActionResult */
		{ "42", "1", "1" },
		{ "{\"KMSCipherTextKey\":\"!!not b64!!\"}", "1", "1" },
		{ "{\"KMSCipherTextKey\":\"\"}", "1", "1" },
		{ "{\"KMSCipherTextKey\":7}", "1", "1" },
		{ "{\"KMSCipherTextKey\":\"AQID BA==\"}", "1", "1" },
		{ "{\"KMSCipherTextKey\":\"AQIDBA==\",\"KMSCipherTextHash\":5}",
		    "1", "1" },
		{ "{\"KMSCipherTextKey\":\"AQIDBA==\","
		    "\"ChallengeAcknowledgement\":\"yes\"}", "1", "1" },
	};
	struct agent_hs_response r;
	char err[600], *s, *big;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* The first one starts with a NUL byte. */
		n = i == 0 ? 12 : strlen(cases[i]);
		err[0] = '\0';
		assert_int_not_equal(agent_handshake_parse_response(
		    (const uint8_t *)cases[i], n, 1, &r, err, sizeof(err)), 0);
		assert_true(err[0] != '\0' || n == 0);
		assert_null(r.kms_ciphertext);
	}
	for (i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
		s = response(acts[i].result, acts[i].kms, acts[i].st);
		err[0] = '\0';
		assert_int_not_equal(agent_handshake_parse_response(
		    (uint8_t *)s, strlen(s), 1, &r, err, sizeof(err)), 0);
		assert_true(err[0] != '\0');
		/* Client text is shown without its escape sequences. */
		assert_null(strchr(err, '\x1b'));
		free(s);
	}
	/* The client's own error is the reason. */
	s = response("null", "2", "1");
	assert_int_not_equal(agent_handshake_parse_response((uint8_t *)s,
	    strlen(s), 1, &r, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "KMSEncryption"));
	assert_non_null(strstr(err, "Denied"));
	free(s);

	/* Deep nesting, huge strings, over the limit. */
	big = malloc(100000);
	assert_non_null(big);
	memset(big, '[', 5000);
	memset(big + 5000, ']', 5000);
	assert_int_not_equal(agent_handshake_parse_response((uint8_t *)big,
	    10000, 1, &r, err, sizeof(err)), 0);
	n = (size_t)snprintf(big, 100000, "{\"ClientVersion\":\"");
	memset(big + n, '9', 60000);
	n += 60000;
	n += (size_t)snprintf(big + n, 100000 - n, "\",\"ProcessedClient"
	    "Actions\":[],\"Errors\":null}");
	assert_int_not_equal(agent_handshake_parse_response((uint8_t *)big, n,
	    1, &r, err, sizeof(err)), 0);
	memset(big, ' ', 70 << 10);
	assert_int_equal(agent_handshake_parse_response((uint8_t *)big,
	    70 << 10, 1, &r, err, sizeof(err)), PH_ERR_INVALID);
	free(big);
	big = malloc(50000);
	assert_non_null(big);
	memset(big, 'A', 40000);
	big[40000] = '\0';
	s = malloc(41000);
	assert_non_null(s);
	snprintf(s, 41000, "{\"KMSCipherTextKey\":\"%s\"}", big);
	free(big);
	big = response(s, "1", "1");
	assert_int_not_equal(agent_handshake_parse_response((uint8_t *)big,
	    strlen(big), 1, &r, err, sizeof(err)), 0);
	free(big);
	free(s);
	/* Errors reported by the client fail it too. */
	s = strdup("{\"ClientVersion\":\"1.2.0.0\",\"ProcessedClientActions\""
	    ":[{\"ActionType\":\"SessionType\",\"ActionStatus\":1}],"
	    "\"Errors\":[\"boom\"]}");
	assert_int_not_equal(agent_handshake_parse_response((uint8_t *)s,
	    strlen(s), 0, &r, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "boom"));
	free(s);
}

/* ---- the state machine --------------------------------------------------- */

static uint8_t test_key[64];

static void
key_init(void)
{
	int i;

	for (i = 0; i < 64; i++)
		test_key[i] = (uint8_t)(i * 7 + 3);
}

static void
deliver_str(struct agent_handshake *hs, uint32_t type, const char *s,
    uint64_t now)
{
	assert_int_equal(agent_handshake_deliver(hs, type, (const uint8_t *)s,
	    strlen(s), now), 0);
}

/* Bring a handshake to WAIT_CHALLENGE; the decoded sealed challenge goes
 * to sealed. */
static struct agent_handshake *
to_challenge(struct fake *f, struct buf *sealed)
{
	struct agent_handshake *hs = new_hs(f, AGENT_ST_STANDARD, ALIAS);
	char *s;

	assert_int_equal(agent_handshake_start(hs, 1000), 0);
	s = response(GOOD_RESULT, "1", "1");
	deliver_str(hs, PT_HANDSHAKE_RESPONSE, s, 1100);
	free(s);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_DECRYPTING);
	agent_handshake_decrypted(hs, 0, test_key, NULL, 1200);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_WAIT_CHALLENGE);
	assert_int_equal(f->nsent, 2);
	assert_int_equal(f->types[1], PT_ENC_CHALLENGE_REQUEST);
	assert_int_equal(agent_handshake_parse_challenge(
	    (uint8_t *)f->payloads[1], f->lens[1], sealed), 0);
	assert_int_equal(sealed->len, 64 + SESSIONCRYPT_OVERHEAD);
	return hs;
}

static char *
challenge_answer(const uint8_t *plain, size_t n, enum sessioncrypt_role role)
{
	struct sessioncrypt *sc;
	struct buf sealed, js;
	char *out;

	buf_init(&sealed, 0);
	buf_init(&js, 0);
	assert_int_equal(sessioncrypt_new(&sc, role, test_key), 0);
	assert_int_equal(sessioncrypt_seal(sc, plain, n, &sealed), 0);
	assert_int_equal(agent_handshake_challenge_json(sealed.data,
	    sealed.len, &js), 0);
	out = strdup(buf_cstr(&js));
	sessioncrypt_free(sc);
	buf_free(&sealed);
	buf_free(&js);
	return out;
}

static void
test_full_kms(void **state)
{
	struct agent_handshake *hs;
	struct sessioncrypt *client;
	struct buf sealed, plain;
	struct fake f;
	json_t *o, *a;
	char *s;

	(void)state;
	hs = new_hs(&f, AGENT_ST_STANDARD, ALIAS);
	assert_true(agent_handshake_encrypted(hs));
	assert_int_equal(agent_handshake_start(hs, 1000), 0);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_WAIT_RESPONSE);
	assert_int_equal(f.nsent, 1);
	assert_int_equal(f.types[0], PT_HANDSHAKE_REQUEST);
	o = json_loads(f.payloads[0], 0, NULL);
	a = json_object_get(json_array_get(json_object_get(o,
	    "RequestedClientActions"), 1), "ActionParameters");
	assert_string_equal(json_string_value(json_object_get(a, "KMSKeyId")),
	    ALIAS);
	assert_int_equal(json_string_length(json_object_get(a, "Challenge")),
	    24);
	/* The client acknowledges the challenge: it joins the context. */
	s = response("{\"KMSCipherTextKey\":\"AQIDBAUGBwg=\","
	    "\"KMSCipherTextHash\":null,\"ChallengeAcknowledgement\":true}",
	    "1", "1");
	deliver_str(hs, PT_HANDSHAKE_RESPONSE, s, 1500);
	free(s);
	assert_int_equal(f.decrypts, 1);
	assert_string_equal(f.blob, "AQIDBAUGBwg=");
	assert_string_equal(f.sid, SID);
	assert_string_equal(f.tid, MI);
	assert_non_null(f.challenge);
	assert_string_equal(f.challenge, json_string_value(json_object_get(a,
	    "Challenge")));
	json_decref(o);
	assert_string_equal(agent_handshake_client_version(hs), "1.2.650.0");
	/* Shell input meanwhile is none of the handshake's business. */
	deliver_str(hs, PT_OUTPUT, "ls\r", 1600);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_DECRYPTING);

	agent_handshake_decrypted(hs, 0, test_key, NULL, 2000);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_WAIT_CHALLENGE);
	assert_non_null(f.sc);
	assert_int_equal(sessioncrypt_role(f.sc), SESSIONCRYPT_AGENT);
	buf_init(&sealed, 0);
	buf_init(&plain, 0);
	assert_int_equal(agent_handshake_parse_challenge(
	    (uint8_t *)f.payloads[1], f.lens[1], &sealed), 0);
	/* The client opens it with bytes 0-31 ... */
	assert_int_equal(sessioncrypt_new(&client, SESSIONCRYPT_CLIENT,
	    test_key), 0);
	assert_int_equal(sessioncrypt_open(client, sealed.data, sealed.len,
	    &plain), 0);
	assert_int_equal(plain.len, 64);
	sessioncrypt_free(client);
	/* ... and seals the same bytes with 32-63. */
	s = challenge_answer(plain.data, plain.len, SESSIONCRYPT_CLIENT);
	deliver_str(hs, PT_ENC_CHALLENGE_RESPONSE, s, 3000);
	free(s);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_DONE);
	assert_int_equal(f.nsent, 3);
	assert_int_equal(f.types[2], PT_HANDSHAKE_COMPLETE);
	o = json_loads(f.payloads[2], 0, NULL);
	assert_string_equal(json_string_value(json_object_get(o,
	    "CustomerMessage")), AGENT_HS_KMS_MESSAGE);
	assert_int_equal(json_integer_value(json_object_get(o,
	    "HandshakeTimeToComplete")), (json_int_t)2000 * 1000000);
	json_decref(o);
	/* Late or repeated messages change nothing once done. */
	deliver_str(hs, PT_HANDSHAKE_RESPONSE, "{}", 3100);
	agent_handshake_tick(hs, 100000);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_DONE);
	buf_free(&sealed);
	buf_free(&plain);
	agent_handshake_free(hs);
	fake_clear(&f);
}

static void
test_no_kms(void **state)
{
	struct agent_handshake *hs;
	struct fake f;
	json_t *o;

	(void)state;
	hs = new_hs(&f, AGENT_ST_NONINTERACTIVE, NULL);
	assert_false(agent_handshake_encrypted(hs));
	assert_int_equal(agent_handshake_start(hs, 10), 0);
	o = json_loads(f.payloads[0], 0, NULL);
	assert_int_equal(json_array_size(json_object_get(o,
	    "RequestedClientActions")), 1);
	json_decref(o);
	deliver_str(hs, PT_HANDSHAKE_RESPONSE, "{\"ClientVersion\":\"1.2.0.0\","
	    "\"ProcessedClientActions\":[{\"ActionType\":\"SessionType\","
	    "\"ActionStatus\":1,\"ActionResult\":null,\"Error\":\"\"}],"
	    "\"Errors\":null}", 20);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_DONE);
	assert_int_equal(f.decrypts, 0);
	assert_int_equal(f.types[1], PT_HANDSHAKE_COMPLETE);
	o = json_loads(f.payloads[1], 0, NULL);
	assert_string_equal(json_string_value(json_object_get(o,
	    "CustomerMessage")), "");
	json_decref(o);
	agent_handshake_free(hs);
	fake_clear(&f);
}

static void
test_failures(void **state)
{
	struct agent_handshake *hs;
	struct fake f;
	char *s;

	(void)state;
	/* Silence: 15 s (spec 5.3). */
	hs = new_hs(&f, AGENT_ST_STANDARD, ALIAS);
	assert_int_equal(agent_handshake_start(hs, 1000), 0);
	agent_handshake_tick(hs, 1000 + AGENT_HS_RESPONSE_WAIT_MS - 1);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_WAIT_RESPONSE);
	agent_handshake_tick(hs, 1000 + AGENT_HS_RESPONSE_WAIT_MS);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_FAILED);
	assert_non_null(strstr(agent_handshake_error(hs), "timed out"));
	/* Nothing more happens after a failure. */
	s = response(GOOD_RESULT, "1", "1");
	deliver_str(hs, PT_HANDSHAKE_RESPONSE, s, 20000);
	free(s);
	assert_int_equal(f.decrypts, 0);
	assert_int_equal(f.nsent, 1);
	agent_handshake_free(hs);
	fake_clear(&f);

	/* Decrypt refused: the KMS error is the reason. */
	hs = new_hs(&f, AGENT_ST_STANDARD, ALIAS);
	assert_int_equal(agent_handshake_start(hs, 0), 0);
	s = response(GOOD_RESULT, "1", "1");
	deliver_str(hs, PT_HANDSHAKE_RESPONSE, s, 10);
	free(s);
	assert_null(f.challenge); /* not acknowledged: not in the context */
	agent_handshake_decrypted(hs, PH_ERR_DENIED, NULL,
	    "KMS Decrypt failed: AccessDeniedException: not allowed", 20);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_FAILED);
	assert_non_null(strstr(agent_handshake_error(hs),
	    "AccessDeniedException"));
	assert_null(f.sc);
	/* A late key after the failure is ignored. */
	agent_handshake_decrypted(hs, 0, test_key, NULL, 30);
	assert_null(f.sc);
	agent_handshake_free(hs);
	fake_clear(&f);

	/* Decrypt never answers. */
	hs = new_hs(&f, AGENT_ST_STANDARD, ALIAS);
	assert_int_equal(agent_handshake_start(hs, 0), 0);
	s = response(GOOD_RESULT, "1", "1");
	deliver_str(hs, PT_HANDSHAKE_RESPONSE, s, 10);
	free(s);
	agent_handshake_tick(hs, 10 + AGENT_HS_DECRYPT_WAIT_MS);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_FAILED);
	agent_handshake_decrypted(hs, 0, test_key, NULL, 99999);
	assert_null(f.sc);
	agent_handshake_free(hs);
	fake_clear(&f);

	/* Decrypt cannot start. */
	hs = new_hs(&f, AGENT_ST_STANDARD, ALIAS);
	f.decrypt_rc = PH_ERR_IO;
	assert_int_equal(agent_handshake_start(hs, 0), 0);
	s = response(GOOD_RESULT, "1", "1");
	deliver_str(hs, PT_HANDSHAKE_RESPONSE, s, 10);
	free(s);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_FAILED);
	agent_handshake_free(hs);
	fake_clear(&f);

	/* Messages out of place. */
	hs = new_hs(&f, AGENT_ST_STANDARD, ALIAS);
	assert_int_equal(agent_handshake_start(hs, 0), 0);
	deliver_str(hs, PT_ENC_CHALLENGE_RESPONSE, "{\"Challenge\":\"AAAA\"}",
	    5);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_FAILED);
	agent_handshake_free(hs);
	fake_clear(&f);
	hs = new_hs(&f, AGENT_ST_STANDARD, ALIAS);
	assert_int_equal(agent_handshake_start(hs, 0), 0);
	s = response(GOOD_RESULT, "1", "1");
	deliver_str(hs, PT_HANDSHAKE_RESPONSE, s, 10);
	deliver_str(hs, PT_HANDSHAKE_RESPONSE, s, 11);
	free(s);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_FAILED);
	agent_handshake_free(hs);
	fake_clear(&f);

	/* The request cannot be sent. */
	hs = new_hs(&f, AGENT_ST_STANDARD, ALIAS);
	f.send_rc = PH_ERR_AGAIN;
	assert_int_not_equal(agent_handshake_start(hs, 0), 0);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_FAILED);
	agent_handshake_free(hs);
	fake_clear(&f);
}

static void
test_bad_challenges(void **state)
{
	struct agent_handshake *hs;
	struct sessioncrypt *client;
	struct buf sealed, plain;
	uint8_t other[64];
	struct fake f;
	char *s;
	int i;

	(void)state;
	buf_init(&sealed, 0);
	buf_init(&plain, 0);
	for (i = 0; i < 9; i++) {
		buf_reset(&sealed);
		buf_reset(&plain);
		hs = to_challenge(&f, &sealed);
		assert_int_equal(sessioncrypt_new(&client, SESSIONCRYPT_CLIENT,
		    test_key), 0);
		assert_int_equal(sessioncrypt_open(client, sealed.data,
		    sealed.len, &plain), 0);
		sessioncrypt_free(client);
		memset(other, 0x5a, sizeof(other));
		switch (i) {
		case 0: /* wrong bytes */
			s = challenge_answer(other, 64, SESSIONCRYPT_CLIENT);
			break;
		case 1: /* echoed unchanged */
			{
				struct buf js;

				buf_init(&js, 0);
				assert_int_equal(agent_handshake_challenge_json(
				    sealed.data, sealed.len, &js), 0);
				s = strdup(buf_cstr(&js));
				buf_free(&js);
			}
			break;
		case 2: /* sealed with the wrong half */
			s = challenge_answer(plain.data, plain.len,
			    SESSIONCRYPT_AGENT);
			break;
		case 3:
			s = strdup("{\"Challenge\":\"%%%not base64%%%\"}");
			break;
		case 4:
			s = strdup("\x01\x02 challenge?");
			break;
		case 5:
			s = strdup("{\"Challenge\":\"\"}");
			break;
		case 6: /* truncated */
			s = challenge_answer(plain.data, 12,
			    SESSIONCRYPT_CLIENT);
			break;
		case 7:
			s = strdup("{\"Challenge\":7}");
			break;
		default: /* a second HandshakeResponse instead */
			s = response(GOOD_RESULT, "1", "1");
			deliver_str(hs, PT_HANDSHAKE_RESPONSE, s, 1300);
			free(s);
			s = NULL;
			break;
		}
		if (s != NULL) {
			deliver_str(hs, PT_ENC_CHALLENGE_RESPONSE, s, 1300);
			free(s);
		}
		assert_int_equal(agent_handshake_state(hs), AGENT_HS_FAILED);
		/* No HandshakeComplete went out. */
		assert_int_equal(f.nsent, 2);
		agent_handshake_free(hs);
		fake_clear(&f);
	}
	/* Silence after the challenge. */
	buf_reset(&sealed);
	hs = to_challenge(&f, &sealed);
	agent_handshake_tick(hs, 1200 + AGENT_HS_CHALLENGE_WAIT_MS);
	assert_int_equal(agent_handshake_state(hs), AGENT_HS_FAILED);
	agent_handshake_free(hs);
	fake_clear(&f);
	buf_free(&sealed);
	buf_free(&plain);
}

/* ---- KMS Decrypt: body and answers --------------------------------------- */

static void
test_kms_body_and_answers(void **state)
{
	static const char denied[] =
	    "{\"__type\":\"com.amazonaws.kms#AccessDeniedException\","
	    "\"message\":\"no\\u001b[2J way\"}";
	struct agent_kms_request rq = { "AQIDBA==", SID, MI, NULL };
	uint8_t key[64];
	struct buf b, ans;
	char err[600];
	json_t *o, *ctx;
	int i;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(agent_kms_decrypt_body(&rq, &b), 0);
	o = json_loadb((const char *)b.data, b.len, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(o,
	    "CiphertextBlob")), "AQIDBA==");
	ctx = json_object_get(o, "EncryptionContext");
	assert_int_equal(json_object_size(ctx), 2);
	assert_string_equal(json_string_value(json_object_get(ctx,
	    "aws:ssm:SessionId")), SID);
	assert_string_equal(json_string_value(json_object_get(ctx,
	    "aws:ssm:TargetId")), MI);
	assert_null(json_object_get(o, "KeyId"));
	json_decref(o);
	rq.challenge = "c2VjcmV0";
	buf_reset(&b);
	assert_int_equal(agent_kms_decrypt_body(&rq, &b), 0);
	o = json_loadb((const char *)b.data, b.len, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o,
	    "EncryptionContext"), "aws:ssm:RandomChallenge")), "c2VjcmV0");
	json_decref(o);
	buf_free(&b);

	buf_init(&ans, 0);
	assert_int_equal(buf_append_str(&ans,
	    "{\"KeyId\":\"k\",\"Plaintext\":\""), 0);
	assert_int_equal(agent_b64_encode(test_key, 64, &ans), 0);
	assert_int_equal(buf_append_str(&ans, "\",\"EncryptionAlgorithm\":"
	    "\"SYMMETRIC_DEFAULT\"}"), 0);
	assert_int_equal(agent_kms_parse_response(200, ans.data, ans.len, key,
	    err, sizeof(err)), 0);
	assert_memory_equal(key, test_key, 64);
	/* 32 bytes is not a session key. */
	buf_reset(&ans);
	assert_int_equal(buf_append_str(&ans, "{\"Plaintext\":\""), 0);
	assert_int_equal(agent_b64_encode(test_key, 32, &ans), 0);
	assert_int_equal(buf_append_str(&ans, "\"}"), 0);
	assert_int_not_equal(agent_kms_parse_response(200, ans.data, ans.len,
	    key, err, sizeof(err)), 0);
	for (i = 0; i < 64; i++)
		assert_int_equal(key[i], 0);
	buf_free(&ans);
	assert_int_equal(agent_kms_parse_response(400, (const uint8_t *)denied,
	    strlen(denied), key, err, sizeof(err)), PH_ERR_DENIED);
	assert_non_null(strstr(err, "AccessDeniedException: no"));
	assert_non_null(strstr(err, "kms:Decrypt denied"));
	assert_null(strchr(err, '\x1b'));
	assert_int_not_equal(agent_kms_parse_response(500, (const uint8_t *)
	    "<html>", 6, key, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "500"));
	assert_int_not_equal(agent_kms_parse_response(200, (const uint8_t *)
	    "[]", 2, key, err, sizeof(err)), 0);
	assert_int_not_equal(agent_kms_parse_response(200, NULL, 0, key, err,
	    sizeof(err)), 0);
}

/* ---- KMS Decrypt over mutual TLS against a loopback server --------------- */

struct srv {
	SSL_CTX *ctx;
	int fd;
	int port;
	pthread_t th;
	const char *answers[4];
	int nanswers;
	char request[4][16384];
	char peer_cn[4][80];
};

static void
srv_one(struct srv *v, int c, int i)
{
	char *req = v->request[i], *hend, *cl;
	size_t got = 0, want = 0;
	char out[8192];
	X509 *peer;
	SSL *ssl;
	int r, n;

	ssl = SSL_new(v->ctx);
	SSL_set_fd(ssl, c);
	if (SSL_accept(ssl) != 1)
		goto done;
	peer = SSL_get1_peer_certificate(ssl);
	if (peer != NULL) {
		pki_cert_cn(peer, v->peer_cn[i], sizeof(v->peer_cn[i]));
		X509_free(peer);
	}
	while (got + 1 < sizeof(v->request[i])) {
		r = SSL_read(ssl, req + got, (int)(sizeof(v->request[i]) -
		    got - 1));
		if (r <= 0)
			break;
		got += (size_t)r;
		req[got] = '\0';
		if ((hend = strstr(req, "\r\n\r\n")) == NULL)
			continue;
		cl = strcasestr(req, "Content-Length:");
		want = (size_t)(hend + 4 - req) + (cl ? strtoul(cl + 15, NULL,
		    10) : 0);
		if (got >= want)
			break;
	}
	n = snprintf(out, sizeof(out), "HTTP/1.1 %s\r\nContent-Type: "
	    "application/x-amz-json-1.1\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%s", strncmp(v->answers[i], "{\"__", 4)
	    == 0 ? "400 Bad Request" : "200 OK",
	    strlen(v->answers[i]), v->answers[i]);
	SSL_write(ssl, out, n);
	SSL_shutdown(ssl);
done:
	SSL_free(ssl);
	close(c);
}

static void *
srv_main(void *arg)
{
	struct srv *v = arg;
	int i, c;

	for (i = 0; i < v->nanswers; i++) {
		if ((c = accept(v->fd, NULL, NULL)) < 0)
			break; /* shut down */
		srv_one(v, c, i);
	}
	return NULL;
}

struct tls_files {
	char dir[64];
	char ca[128], cert[128], key[128];
	EVP_PKEY *ca_key, *srv_key;
	X509 *ca_cert, *srv_cert;
};

static void
make_files(struct tls_files *t)
{
	const char *names[] = { "127.0.0.1" };
	EVP_PKEY *ck;
	X509_REQ *req;
	X509 *cc;

	snprintf(t->dir, sizeof(t->dir), "/tmp/ph-hs-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->ca, sizeof(t->ca), "%s/ca.pem", t->dir);
	snprintf(t->cert, sizeof(t->cert), "%s/cert.pem", t->dir);
	snprintf(t->key, sizeof(t->key), "%s/key.pem", t->dir);
	assert_int_equal(pki_ca_create(&t->ca_key, &t->ca_cert), 0);
	assert_int_equal(pki_server_cert_issue(t->ca_key, t->ca_cert, names,
	    1, &t->srv_key, &t->srv_cert), 0);
	ck = EVP_EC_gen("P-256");
	assert_non_null(ck);
	req = X509_REQ_new();
	assert_int_equal(X509_REQ_set_pubkey(req, ck), 1);
	assert_true(X509_REQ_sign(req, ck, EVP_sha256()) > 0);
	assert_int_equal(pki_client_cert_issue(t->ca_key, t->ca_cert, req, MI,
	    &cc), 0);
	assert_int_equal(pki_write_cert(t->ca, t->ca_cert), 0);
	assert_int_equal(pki_write_cert(t->cert, cc), 0);
	assert_int_equal(pki_write_key(t->key, ck), 0);
	X509_REQ_free(req);
	X509_free(cc);
	EVP_PKEY_free(ck);
}

static void
free_files(struct tls_files *t)
{
	unlink(t->ca);
	unlink(t->cert);
	unlink(t->key);
	rmdir(t->dir);
	EVP_PKEY_free(t->ca_key);
	EVP_PKEY_free(t->srv_key);
	X509_free(t->ca_cert);
	X509_free(t->srv_cert);
}

static void
srv_start(struct srv *v, struct tls_files *t)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	X509_STORE *store;

	v->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(v->ctx);
	assert_int_equal(SSL_CTX_use_certificate(v->ctx, t->srv_cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(v->ctx, t->srv_key), 1);
	store = SSL_CTX_get_cert_store(v->ctx);
	assert_int_equal(X509_STORE_add_cert(store, t->ca_cert), 1);
	/* Like portholed: no client certificate, no service. */
	SSL_CTX_set_verify(v->ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	v->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(v->fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(v->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(v->fd, 8), 0);
	assert_int_equal(getsockname(v->fd, (struct sockaddr *)&a, &al), 0);
	v->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&v->th, NULL, srv_main, v), 0);
}

static void
srv_stop(struct srv *v)
{
	/* Wakes a blocked accept (Linux: EINVAL). */
	(void)shutdown(v->fd, SHUT_RDWR);
	pthread_join(v->th, NULL);
	close(v->fd);
	SSL_CTX_free(v->ctx);
}

struct async_result {
	int calls;
	int rc;
	uint8_t key[64];
	char err[600];
};

static void
async_cb(void *ud, int rc, const uint8_t *key, const char *err)
{
	struct async_result *r = ud;

	r->calls++;
	r->rc = rc;
	if (key != NULL)
		memcpy(r->key, key, 64);
	snprintf(r->err, sizeof(r->err), "%s", err ? err : "");
}

static void
test_kms_over_tls(void **state)
{
	struct agent_kms_request rq = { "AQIDBA==", SID, MI, NULL };
	struct async_result ar, ar2;
	struct agent_kms_job *job;
	struct agent_state st;
	struct tls_files t;
	struct srv v;
	uv_loop_t loop;
	struct buf good;
	uint8_t key[64];
	char url[64], err[600], *body;
	json_t *o;

	(void)state;
	make_files(&t);
	memset(&v, 0, sizeof(v));
	buf_init(&good, 0);
	assert_int_equal(buf_append_str(&good, "{\"KeyId\":\"arn:k\","
	    "\"Plaintext\":\""), 0);
	assert_int_equal(agent_b64_encode(test_key, 64, &good), 0);
	assert_int_equal(buf_append_str(&good, "\",\"EncryptionAlgorithm\":"
	    "\"SYMMETRIC_DEFAULT\"}"), 0);
	v.answers[0] = buf_cstr(&good);
	v.answers[1] = "{\"__type\":\"AccessDeniedException\",\"message\":"
	    "\"The key policy does not allow kms:Decrypt\"}";
	v.answers[2] = buf_cstr(&good);
	v.nanswers = 3;
	srv_start(&v, &t);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", v.port);

	/* The contract: POST /, the target and type headers, no
	 * Authorization, our certificate. */
	assert_int_equal(agent_kms_decrypt(url, t.ca, t.cert, t.key, &rq, 5000,
	    key, err, sizeof(err)), 0);
	assert_memory_equal(key, test_key, 64);
	assert_int_equal(strncmp(v.request[0], "POST / HTTP/1.1\r\n", 17), 0);
	assert_non_null(strcasestr(v.request[0],
	    "\r\nX-Amz-Target: TrentService.Decrypt\r\n"));
	assert_non_null(strcasestr(v.request[0],
	    "\r\nContent-Type: application/x-amz-json-1.1\r\n"));
	assert_null(strcasestr(v.request[0], "Authorization"));
	assert_string_equal(v.peer_cn[0], MI);
	body = strstr(v.request[0], "\r\n\r\n") + 4;
	o = json_loads(body, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o,
	    "CiphertextBlob")), "AQIDBA==");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    o, "EncryptionContext"), "aws:ssm:TargetId")), MI);
	json_decref(o);

	/* An AWS error is the reason. */
	assert_int_equal(agent_kms_decrypt(url, t.ca, t.cert, t.key, &rq, 5000,
	    key, err, sizeof(err)), PH_ERR_DENIED);
	assert_non_null(strstr(err, "AccessDeniedException: The key policy"));

	/* On the thread pool, as the session runs it; a cancelled job never
	 * calls back. */
	memset(&st, 0, sizeof(st));
	snprintf(st.endpoint, sizeof(st.endpoint), "https://127.0.0.1:%d",
	    v.port);
	snprintf(st.ca_path, sizeof(st.ca_path), "%s", t.ca);
	snprintf(st.cert_path, sizeof(st.cert_path), "%s", t.cert);
	snprintf(st.key_path, sizeof(st.key_path), "%s", t.key);
	assert_int_equal(uv_loop_init(&loop), 0);
	memset(&ar, 0, sizeof(ar));
	memset(&ar2, 0, sizeof(ar2));
	assert_int_equal(agent_kms_decrypt_start(&loop, &st, &rq, async_cb,
	    &ar, &job), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(ar.calls, 1);
	assert_int_equal(ar.rc, 0);
	assert_memory_equal(ar.key, test_key, 64);
	/* No server answers this one: cancelled at once. */
	assert_int_equal(agent_kms_decrypt_start(&loop, &st, &rq, async_cb,
	    &ar2, &job), 0);
	agent_kms_decrypt_cancel(job);
	srv_stop(&v);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(ar2.calls, 0);
	assert_int_equal(uv_loop_close(&loop), 0);

	/* Nobody listening: a clear error, quickly. */
	assert_int_not_equal(agent_kms_decrypt(url, t.ca, t.cert, t.key, &rq,
	    2000, key, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "cannot reach KMS"));
	buf_free(&good);
	free_files(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_needed),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_request_json),
		cmocka_unit_test(test_response_valid),
		cmocka_unit_test(test_response_garbage),
		cmocka_unit_test(test_full_kms),
		cmocka_unit_test(test_no_kms),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_bad_challenges),
		cmocka_unit_test(test_kms_body_and_answers),
		cmocka_unit_test(test_kms_over_tls),
	};

	key_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
