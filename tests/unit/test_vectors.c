/* vectors: the data-channel test vectors of tests/vectors/datachannel.json,
 * which the browser console's module (console/test/dc.test.ts) is checked
 * against too, reproduced by the C client's encoder, decoder, channel,
 * payload builders and session cipher. Every expected output in the file
 * is what this program computes; PORTHOLE_VECTORS_WRITE=1 rewrites them
 * after a deliberate change of the inputs (and of nothing else). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <jansson.h>

#include "client/kms.h"
#include "client/proto.h"
#include "common/buf.h"
#include "common/channel.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/hex.h"
#include "common/http.h"
#include "common/sessioncrypt.h"
#include "common/sigv4.h"
#include "common/uuid.h"

#define VECTORS_PATH "../vectors/datachannel.json"
#define MAX_BYTES ((size_t)1 << 20)

static json_t *vec;
static int regen;

/* --- helpers ------------------------------------------------------------ */

/* Decode a hex string into a malloc'd buffer (never NULL, even empty). */
static uint8_t *
unhex(const char *s, size_t *n)
{
	size_t len = strlen(s), i;
	uint8_t *p;
	int b;

	assert_true(len % 2 == 0 && len / 2 <= MAX_BYTES);
	p = malloc(len / 2 + 1);
	assert_non_null(p);
	for (i = 0; i < len / 2; i++) {
		b = hex_byte(s + 2 * i);
		assert_true(b >= 0);
		p[i] = (uint8_t)b;
	}
	*n = len / 2;
	return p;
}

static char *
tohex(const uint8_t *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	char *s = malloc(2 * n + 1);
	size_t i;

	assert_non_null(s);
	for (i = 0; i < n; i++) {
		s[2 * i] = d[p[i] >> 4];
		s[2 * i + 1] = d[p[i] & 15];
	}
	s[2 * n] = '\0';
	return s;
}

static const char *
get_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_true(json_is_string(v));
	return json_string_value(v);
}

static uint64_t
get_u64(json_t *o, const char *key)
{
	const char *s = get_str(o, key);

	return strtoull(s, NULL, 10);
}

static int64_t
get_i64(json_t *o, const char *key)
{
	const char *s = get_str(o, key);

	return strtoll(s, NULL, 10);
}

static json_t *
get_array(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_true(json_is_array(v));
	return v;
}

/* The vector's expected value, or (rewriting) the computed one stored. */
static void
expect_str(json_t *o, const char *key, const char *got, size_t n)
{
	const char *want;

	if (regen) {
		assert_int_equal(json_object_set_new(o, key,
		    json_stringn(got, n)), 0);
		return;
	}
	want = get_str(o, key);
	if (strlen(want) != n || memcmp(want, got, n) != 0)
		fail_msg("%s: want %s, got %.*s", key, want, (int)n, got);
}

static void
expect_hex(json_t *o, const char *key, const uint8_t *p, size_t n)
{
	char *h = tohex(p, n);

	expect_str(o, key, h, strlen(h));
	free(h);
}

static void
expect_json(json_t *o, const char *key, json_t *got)
{
	if (regen) {
		assert_int_equal(json_object_set(o, key, got), 0);
		return;
	}
	if (!json_equal(json_object_get(o, key), got))
		fail_msg("%s differs", key);
}

/* --- frames ------------------------------------------------------------- */

static void
test_frames(void **state)
{
	json_t *frames = get_array(vec, "frames"), *f;
	struct clientmsg m;
	uint8_t id[16], *payload;
	size_t i, plen;
	struct buf b;

	(void)state;
	json_array_foreach(frames, i, f) {
		assert_int_equal(uuid_parse(get_str(f, "message_id"), id), 0);
		payload = unhex(get_str(f, "payload_hex"), &plen);
		buf_init(&b, MAX_BYTES);
		assert_int_equal(clientmsg_encode_at(&b, get_str(f, "type"),
		    get_u64(f, "created_ms"), get_i64(f, "seq"),
		    get_u64(f, "flags"), id, (uint32_t)json_integer_value(
		    json_object_get(f, "payload_type")), payload, plen), 0);
		expect_hex(f, "frame_hex", b.data, b.len);
		/* And back. */
		assert_int_equal(clientmsg_decode(&m, b.data, b.len,
		    MAX_BYTES), 0);
		assert_string_equal(m.type, get_str(f, "type"));
		assert_true(m.created_ms == get_u64(f, "created_ms"));
		assert_true(m.seq == get_i64(f, "seq"));
		assert_true(m.flags == get_u64(f, "flags"));
		assert_memory_equal(m.message_id, id, 16);
		assert_int_equal(m.payload_len, plen);
		if (plen > 0)
			assert_memory_equal(m.payload, payload, plen);
		buf_free(&b);
		free(payload);
	}
}

/* Hostile frames, made from the golden one: every one is refused. */
static void
bad_frame(json_t *out, const char *name, const uint8_t *p, size_t n)
{
	json_t *o = json_object();
	char *h = tohex(p, n);

	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "frame_hex", json_string(h));
	json_array_append_new(out, o);
	free(h);
}

static void
make_bad_frames(void)
{
	json_t *out = json_array(), *f0;
	uint8_t *g, t[512];
	size_t n;

	f0 = json_array_get(json_object_get(vec, "frames"), 0);
	g = unhex(get_str(f0, "frame_hex"), &n);
	assert_true(n == 123 && n <= sizeof(t));
	bad_frame(out, "empty", g, 0);
	bad_frame(out, "one byte", g, 1);
	bad_frame(out, "116 bytes", g, 116);
	bad_frame(out, "119 bytes", g, 119);
	bad_frame(out, "payload cut short", g, n - 1);
	memcpy(t, g, n);
	t[3] = 115;
	bad_frame(out, "HeaderLength 115", t, n);
	memcpy(t, g, n);
	t[0] = 0xff;
	bad_frame(out, "HeaderLength huge", t, n);
	memcpy(t, g, n);
	t[119] = 4;
	bad_frame(out, "PayloadLength one more than the frame", t, n);
	memcpy(t, g, n);
	t[116] = 0xff;
	bad_frame(out, "PayloadLength 4 GiB", t, n);
	memcpy(t, g, n);
	t[119] = 0;
	bad_frame(out, "PayloadLength 0 with a payload", t, n);
	memcpy(t, g, n);
	t[80] ^= 1;
	bad_frame(out, "digest off by a bit", t, n);
	memcpy(t, g, n);
	t[122] ^= 0x20;
	bad_frame(out, "payload changed", t, n);
	memcpy(t, g, n);
	memset(t + 40, 0, 8);
	bad_frame(out, "CreatedDate 0", t, n);
	memcpy(t, g, n);
	memset(t + 4, ' ', 32);
	bad_frame(out, "type all spaces", t, n);
	memcpy(t, g, n);
	memset(t + 4, 0, 32);
	bad_frame(out, "type all NULs", t, n);
	memcpy(t, g, n);
	t[6] = 0x01;
	bad_frame(out, "control byte in type", t, n);
	memcpy(t, g, n);
	t[6] = 0xc3;
	bad_frame(out, "non-ASCII byte in type", t, n);
	memcpy(t, g, n);
	memcpy(t + n, g + 120, 3);
	bad_frame(out, "payload longer than PayloadLength", t, n + 3);
	json_object_set_new(vec, "bad_frames", out);
	free(g);
}

static void
test_bad_frames(void **state)
{
	json_t *bad, *f;
	struct clientmsg m;
	uint8_t *p;
	size_t i, n;

	(void)state;
	if (regen)
		make_bad_frames();
	bad = get_array(vec, "bad_frames");
	assert_true(json_array_size(bad) > 10);
	json_array_foreach(bad, i, f) {
		p = unhex(get_str(f, "frame_hex"), &n);
		if (clientmsg_decode(&m, p, n, MAX_BYTES) == 0)
			fail_msg("accepted: %s", get_str(f, "name"));
		free(p);
	}
}

/* --- acknowledgements ---------------------------------------------------- */

struct capture {
	struct buf frames[4];
	int n;
};

static int
cap_send(void *ud, const uint8_t *frame, size_t n)
{
	struct capture *c = ud;

	assert_true(c->n < 4);
	buf_init(&c->frames[c->n], MAX_BYTES);
	assert_int_equal(buf_append(&c->frames[c->n], frame, n), 0);
	c->n++;
	return 0;
}

static int
cap_deliver(void *ud, uint32_t type, const uint8_t *p, size_t n)
{
	(void)ud;
	(void)type;
	(void)p;
	(void)n;
	return 0;
}

static void
test_acks(void **state)
{
	static const struct channel_cbs cbs = {
		.send_frame = cap_send,
		.deliver = cap_deliver,
	};
	json_t *acks = get_array(vec, "acks"), *a, *f;
	struct capture cap;
	struct channel *ch;
	struct clientmsg m;
	uint8_t *frame;
	size_t i, n;
	int k;

	(void)state;
	json_array_foreach(acks, i, a) {
		f = json_array_get(get_array(vec, "frames"),
		    (size_t)json_integer_value(json_object_get(a, "frame")));
		assert_non_null(f);
		frame = unhex(get_str(f, "frame_hex"), &n);
		memset(&cap, 0, sizeof(cap));
		assert_int_equal(channel_new(&ch, CHANNEL_CLIENT, &cbs, &cap,
		    NULL), 0);
		/* Delivered and acknowledged; then, as a duplicate,
		 * acknowledged again with the same payload. */
		assert_int_equal(channel_receive(ch, frame, n), 0);
		assert_int_equal(channel_receive(ch, frame, n), 0);
		assert_int_equal(cap.n, 2);
		for (k = 0; k < cap.n; k++) {
			assert_int_equal(clientmsg_decode(&m,
			    cap.frames[k].data, cap.frames[k].len,
			    MAX_BYTES), 0);
			assert_string_equal(m.type, MT_ACKNOWLEDGE);
			assert_true(m.seq == 0);
			assert_true(m.flags == 3);
			assert_int_equal(m.payload_type, PT_NONE);
			assert_int_equal(m.schema_version, 1);
			if (k == 0)
				expect_str(a, "ack_payload",
				    (const char *)m.payload, m.payload_len);
			else if (!regen)
				assert_memory_equal(m.payload,
				    get_str(a, "ack_payload"), m.payload_len);
			buf_free(&cap.frames[k]);
		}
		channel_free(ch);
		free(frame);
	}
}

/* --- JSON payloads ----------------------------------------------------- */

static void
test_handshakes(void **state)
{
	json_t *hss = get_array(vec, "handshakes"), *h, *k, *res;
	struct client_kms_outcome kms, *kp;
	struct client_handshake hs;
	const char *req;
	struct buf b;
	size_t i;
	static const char *const types[] = { "", "Standard_Stream",
	    "InteractiveCommands", "NonInteractiveCommands", "Port" };

	(void)state;
	json_array_foreach(hss, i, h) {
		req = get_str(h, "request");
		k = json_object_get(h, "kms");
		kp = NULL;
		memset(&kms, 0, sizeof(kms));
		if (json_is_object(k)) {
			kms.ok = json_is_true(json_object_get(k, "ok"));
			kms.ciphertext_b64 = json_string_value(
			    json_object_get(k, "ciphertext_b64"));
			kms.challenge_ack = json_is_true(json_object_get(k,
			    "challenge_ack"));
			kms.error = json_string_value(json_object_get(k,
			    "error"));
			kp = &kms;
		}
		buf_init(&b, MAX_BYTES);
		assert_int_equal(client_proto_handshake_response(
		    (const uint8_t *)req, strlen(req),
		    get_str(h, "client_version"), kp, &hs, &b), 0);
		expect_str(h, "response", (const char *)b.data, b.len);
		res = json_pack("{s:s, s:b, s:b, s:s, s:s, s:s}",
		    "session_type", types[hs.type],
		    "kms_requested", hs.kms_requested,
		    "ok", hs.ok,
		    "kms_key_id", hs.kms_params_ok ? hs.kms_key_id : "",
		    "kms_challenge", hs.kms_challenge,
		    "first_error", hs.first_error);
		assert_non_null(res);
		expect_json(h, "parsed", res);
		json_decref(res);
		buf_free(&b);
	}
}

static void
test_bad_handshakes(void **state)
{
	json_t *bad = get_array(vec, "bad_handshakes"), *v;
	struct client_handshake hs;
	struct buf b;
	size_t i;

	(void)state;
	json_array_foreach(bad, i, v) {
		buf_init(&b, MAX_BYTES);
		assert_int_not_equal(client_proto_handshake_response(
		    (const uint8_t *)json_string_value(v),
		    json_string_length(v), "1.2.700.0", NULL, &hs, &b), 0);
		assert_int_equal(b.len, 0);
		buf_free(&b);
	}
}

static void
test_handshake_complete(void **state)
{
	json_t *a = get_array(vec, "handshake_complete"), *h;
	const char *p;
	char *msg;
	size_t i;

	(void)state;
	json_array_foreach(a, i, h) {
		p = get_str(h, "payload");
		assert_int_equal(client_proto_parse_handshake_complete(
		    (const uint8_t *)p, strlen(p), &msg), 0);
		expect_str(h, "customer_message", msg, strlen(msg));
		free(msg);
	}
}

static void
test_channel_closed(void **state)
{
	json_t *a = get_array(vec, "channel_closed"), *h, *res;
	struct client_closed cc;
	const char *p;
	size_t i;

	(void)state;
	json_array_foreach(a, i, h) {
		p = get_str(h, "payload");
		assert_int_equal(client_proto_parse_closed(&cc,
		    (const uint8_t *)p, strlen(p)), 0);
		res = json_pack("{s:o, s:s, s:b}", "session_id",
		    cc.session_id != NULL ? json_string(cc.session_id) :
		    json_null(), "output", cc.output, "failed", cc.failed);
		assert_non_null(res);
		expect_json(h, "parsed", res);
		json_decref(res);
		client_closed_free(&cc);
	}
}

static void
test_kms_requests(void **state)
{
	json_t *a = get_array(vec, "kms_requests"), *h;
	struct client_kms_request rq;
	struct buf b;
	size_t i;

	(void)state;
	json_array_foreach(a, i, h) {
		rq.key_id = get_str(h, "key_id");
		rq.session_id = get_str(h, "session_id");
		rq.target = get_str(h, "target");
		rq.challenge = get_str(h, "challenge");
		buf_init(&b, MAX_BYTES);
		assert_int_equal(client_kms_request_body(&rq, &b), 0);
		expect_str(h, "body", (const char *)b.data, b.len);
		buf_free(&b);
	}
}

static void
test_sizes_and_open(void **state)
{
	json_t *a = get_array(vec, "sizes"), *h;
	struct buf b;
	size_t i;

	(void)state;
	json_array_foreach(a, i, h) {
		buf_init(&b, MAX_BYTES);
		assert_int_equal(client_proto_size(&b, (unsigned)
		    json_integer_value(json_object_get(h, "cols")), (unsigned)
		    json_integer_value(json_object_get(h, "rows"))), 0);
		expect_str(h, "payload", (const char *)b.data, b.len);
		buf_free(&b);
	}
	a = get_array(vec, "open_data_channel");
	json_array_foreach(a, i, h) {
		buf_init(&b, MAX_BYTES);
		assert_int_equal(client_proto_open_data_channel(&b,
		    get_str(h, "request_id"), get_str(h, "token"),
		    get_str(h, "client_id"), get_str(h, "client_version")), 0);
		expect_str(h, "text", (const char *)b.data, b.len);
		buf_free(&b);
	}
}

/* --- session cipher ---------------------------------------------------- */

static void
seal_vectors(json_t *arr, enum sessioncrypt_role sealer,
    const uint8_t *key)
{
	struct sessioncrypt *s, *o;
	json_t *v;
	uint8_t *nonce, *plain;
	size_t i, nn, pn;
	struct buf sealed, opened;

	assert_int_equal(sessioncrypt_new(&s, sealer, key), 0);
	assert_int_equal(sessioncrypt_new(&o, sealer == SESSIONCRYPT_AGENT ?
	    SESSIONCRYPT_CLIENT : SESSIONCRYPT_AGENT, key), 0);
	json_array_foreach(arr, i, v) {
		nonce = unhex(get_str(v, "nonce_hex"), &nn);
		plain = unhex(get_str(v, "plain_hex"), &pn);
		assert_int_equal(nn, SESSIONCRYPT_NONCE_LEN);
		sessioncrypt_set_test_nonce(s, nonce);
		buf_init(&sealed, MAX_BYTES);
		buf_init(&opened, MAX_BYTES);
		assert_int_equal(sessioncrypt_seal(s, plain, pn, &sealed), 0);
		expect_hex(v, "sealed_hex", sealed.data, sealed.len);
		/* The peer's role opens it; one flipped bit does not. */
		assert_int_equal(sessioncrypt_open(o, sealed.data, sealed.len,
		    &opened), 0);
		assert_int_equal(opened.len, pn);
		assert_memory_equal(opened.data, plain, pn);
		sealed.data[sealed.len - 1] ^= 1;
		buf_reset(&opened);
		assert_int_not_equal(sessioncrypt_open(o, sealed.data,
		    sealed.len, &opened), 0);
		buf_free(&sealed);
		buf_free(&opened);
		free(nonce);
		free(plain);
	}
	sessioncrypt_free(s);
	sessioncrypt_free(o);
}

static void
test_crypto(void **state)
{
	json_t *c = json_object_get(vec, "crypto"), *ch;
	struct sessioncrypt *agent, *client;
	uint8_t *key, *an, *cn, *plain;
	struct buf sealed, opened, resealed, payload, resp;
	size_t kn, n1, n2, pn;

	(void)state;
	assert_true(json_is_object(c));
	key = unhex(get_str(c, "key_hex"), &kn);
	assert_int_equal(kn, SESSIONCRYPT_KEY_LEN);
	seal_vectors(get_array(c, "agent_to_client"), SESSIONCRYPT_AGENT,
	    key);
	seal_vectors(get_array(c, "client_to_agent"), SESSIONCRYPT_CLIENT,
	    key);

	/* spec 6.4: the agent's challenge and the client's answer. */
	ch = json_object_get(c, "challenge");
	an = unhex(get_str(ch, "agent_nonce_hex"), &n1);
	cn = unhex(get_str(ch, "client_nonce_hex"), &n2);
	plain = unhex(get_str(ch, "plain_hex"), &pn);
	assert_int_equal(sessioncrypt_new(&agent, SESSIONCRYPT_AGENT, key), 0);
	assert_int_equal(sessioncrypt_new(&client, SESSIONCRYPT_CLIENT, key),
	    0);
	buf_init(&sealed, MAX_BYTES);
	buf_init(&opened, MAX_BYTES);
	buf_init(&resealed, MAX_BYTES);
	buf_init(&payload, MAX_BYTES);
	buf_init(&resp, MAX_BYTES);
	sessioncrypt_set_test_nonce(agent, an);
	assert_int_equal(sessioncrypt_seal(agent, plain, pn, &sealed), 0);
	/* The request payload as the agent sends it. */
	assert_int_equal(client_proto_challenge_response(&payload,
	    sealed.data, sealed.len), 0);
	expect_str(ch, "request_payload", (const char *)payload.data,
	    payload.len);
	buf_reset(&sealed);
	assert_int_equal(client_proto_parse_challenge(payload.data,
	    payload.len, &sealed), 0);
	assert_int_equal(sessioncrypt_open(client, sealed.data, sealed.len,
	    &opened), 0);
	sessioncrypt_set_test_nonce(client, cn);
	assert_int_equal(sessioncrypt_seal(client, opened.data, opened.len,
	    &resealed), 0);
	assert_int_equal(client_proto_challenge_response(&resp,
	    resealed.data, resealed.len), 0);
	expect_str(ch, "response_payload", (const char *)resp.data,
	    resp.len);
	buf_free(&sealed);
	buf_free(&opened);
	buf_free(&resealed);
	buf_free(&payload);
	buf_free(&resp);
	sessioncrypt_free(agent);
	sessioncrypt_free(client);
	free(an);
	free(cn);
	free(plain);
	free(key);
}

/* --- SigV4 --------------------------------------------------------------- */

struct sv_key {
	const char *akid, *secret;
};

static int
sv_lookup(void *arg, const char *akid, char *secret, size_t size)
{
	struct sv_key *k = arg;

	if (strcmp(akid, k->akid) != 0)
		return PH_ERR_NOTFOUND;
	snprintf(secret, size, "%s", k->secret);
	return 0;
}

static time_t
sv_time(const char *amz)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	assert_int_equal(sscanf(amz, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec), 6);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

/* Requests signed by the console's sigv4.ts verify with portholed's
 * verifier; one changed byte of the body does not. */
static void
test_sigv4(void **state)
{
	json_t *a = json_object_get(vec, "sigv4"), *v, *hdrs, *hv;
	struct http_header h[16];
	struct sigv4_request rq;
	struct sigv4_identity id;
	struct sigv4_error err;
	struct sv_key k;
	const char *name, *body;
	char *mut;
	size_t i, n;

	(void)state;
	/* Written by the console's test (dc.test.ts) with
	 * PORTHOLE_VECTORS_WRITE=1; verified here. */
	assert_true(json_is_array(a) && json_array_size(a) > 0);
	json_array_foreach(a, i, v) {
		hdrs = json_object_get(v, "headers");
		assert_true(json_is_object(hdrs));
		n = 0;
		json_object_foreach(hdrs, name, hv) {
			assert_true(n < 16);
			h[n].name = (char *)name;
			h[n].value = (char *)json_string_value(hv);
			n++;
		}
		body = get_str(v, "body");
		memset(&rq, 0, sizeof(rq));
		rq.method = get_str(v, "method");
		rq.path = get_str(v, "path");
		rq.query = "";
		rq.headers = h;
		rq.nheaders = n;
		rq.body = (const uint8_t *)body;
		rq.body_len = strlen(body);
		k.akid = get_str(v, "access_key_id");
		k.secret = get_str(v, "secret_access_key");
		assert_int_equal(sigv4_verify(&rq, sv_time(get_str(hdrs,
		    "X-Amz-Date")), sv_lookup, &k, &id, &err), 0);
		assert_string_equal(id.region, get_str(v, "region"));
		assert_string_equal(id.service, get_str(v, "service"));
		mut = strdup(body);
		assert_non_null(mut);
		mut[0] ^= 1;
		rq.body = (const uint8_t *)mut;
		assert_int_not_equal(sigv4_verify(&rq, sv_time(get_str(hdrs,
		    "X-Amz-Date")), sv_lookup, &k, &id, &err), 0);
		free(mut);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_acks),
		cmocka_unit_test(test_handshakes),
		cmocka_unit_test(test_bad_handshakes),
		cmocka_unit_test(test_handshake_complete),
		cmocka_unit_test(test_channel_closed),
		cmocka_unit_test(test_kms_requests),
		cmocka_unit_test(test_sizes_and_open),
		cmocka_unit_test(test_crypto),
		cmocka_unit_test(test_sigv4),
	};
	const char *path = getenv("PORTHOLE_VECTORS");
	json_error_t jerr;
	int rc;

	if (path == NULL)
		path = VECTORS_PATH;
	regen = getenv("PORTHOLE_VECTORS_WRITE") != NULL;
	vec = json_load_file(path, 0, &jerr);
	if (vec == NULL) {
		fprintf(stderr, "%s: %s (line %d)\n", path, jerr.text,
		    jerr.line);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (regen && rc == 0 && json_dump_file(vec, path, JSON_INDENT(1) |
	    JSON_PRESERVE_ORDER) != 0)
		rc = 1;
	json_decref(vec);
	return rc;
}
