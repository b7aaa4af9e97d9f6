/* handshake: the agent's side of spec 5 (handshake) and 6 (KMS session
 * encryption), without I/O. */
#include "agent/handshake.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clientmsg.h"
#include "common/err.h"
#include "common/log.h"
#include "common/sessioncrypt.h"

/* Client text repeated in a reason, in characters. */
#define HS_CLIENT_TEXT_MAX 300
/* A decoded challenge we look at (spec 6.4: 92 bytes are expected). */
#define HS_MAX_CHALLENGE_BYTES 1024
#define HS_MAX_CHALLENGE_B64 ((HS_MAX_CHALLENGE_BYTES + 2) / 3 * 4)
/* spec 5.2: requested actions, in this order. */
#define HS_ACTION_SESSION_TYPE "SessionType"
#define HS_ACTION_KMS "KMSEncryption"
/* spec 5.2 ActionStatus */
#define HS_STATUS_SUCCESS 1

struct agent_handshake {
	const struct agent_hs_ops *ops;
	void *ud;
	char *session_id;
	char *instance_id;
	char *kms_key_id;
	char *agent_version;
	char *properties;
	enum agent_session_type type;
	int encrypt;
	enum agent_hs_state state;
	uint64_t started_ms;
	uint64_t deadline_ms;
	/* spec 5.2: the KMSEncryption Challenge, base64 of 16 bytes. */
	char nonce_b64[32];
	/* spec 6.4: what we sealed for the client to send back. */
	uint8_t challenge[AGENT_HS_CHALLENGE_LEN];
	struct sessioncrypt *sc;
	char client_version[AGENT_HS_MAX_VERSION + 1];
	char error[AGENT_HS_MAX_REASON];
};

int
agent_handshake_encrypts(enum agent_session_type type,
    const char *kms_key_id)
{
	return kms_key_id != NULL && *kms_key_id != '\0' &&
	    type != AGENT_ST_PORT;
}

int
agent_handshake_needed(enum agent_session_type type, const char *kms_key_id)
{
	return type == AGENT_ST_NONINTERACTIVE || type == AGENT_ST_PORT ||
	    agent_handshake_encrypts(type, kms_key_id);
}

/* ---- payloads ------------------------------------------------------------ */

int
agent_handshake_request_json(const struct agent_hs_params *p,
    const char *challenge_b64, struct buf *out)
{
	json_t *o = NULL, *acts, *a, *props;
	char *s;
	int rc = PH_ERR_NOMEM;

	if (p->agent_version == NULL)
		return PH_ERR_INVALID;
	props = p->properties != NULL ?
	    json_loads(p->properties, JSON_DECODE_ANY, NULL) : json_null();
	if (props == NULL)
		return PH_ERR_INVALID;
	/* spec 5.2: SessionType first; Properties are null for the shell
	 * types; Port carries the document's resolved properties. */
	acts = json_array();
	a = json_pack("{s:s, s:{s:s, s:o}}", "ActionType",
	    HS_ACTION_SESSION_TYPE, "ActionParameters", "SessionType",
	    agent_session_type_name(p->type), "Properties", props);
	if (acts == NULL || a == NULL) {
		json_decref(a);
		goto fail;
	}
	if (json_array_append_new(acts, a) != 0)
		goto fail;
	if (agent_handshake_encrypts(p->type, p->kms_key_id)) {
		a = json_pack("{s:s, s:{s:s}}", "ActionType", HS_ACTION_KMS,
		    "ActionParameters", "KMSKeyId", p->kms_key_id);
		if (a == NULL)
			goto fail;
		if (challenge_b64 != NULL && json_object_set_new(
		    json_object_get(a, "ActionParameters"), "Challenge",
		    json_string(challenge_b64)) != 0) {
			json_decref(a);
			goto fail;
		}
		if (json_array_append_new(acts, a) != 0)
			goto fail;
	}
	o = json_pack("{s:s, s:o}", "AgentVersion", p->agent_version,
	    "RequestedClientActions", acts);
	acts = NULL; /* transferred (json_pack's o steals it, even on error) */
	if (o == NULL)
		goto fail;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s != NULL) {
		rc = buf_append_str(out, s);
		free(s);
	}
fail:
	json_decref(acts);
	json_decref(o);
	return rc;
}

/* Client text for a reason: printable ASCII only, bounded. */
static void
hs_clean(char *out, size_t outlen, const char *s)
{
	size_t i, j = 0;

	if (outlen == 0)
		return;
	for (i = 0; s != NULL && s[i] != '\0' && j + 1 < outlen &&
	    i < HS_CLIENT_TEXT_MAX; i++)
		out[j++] = (unsigned char)s[i] < 0x20 ||
		    (unsigned char)s[i] >= 0x7f ? '?' : s[i];
	out[j] = '\0';
}

static int
hs_printable(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* One ProcessedClientAction: the expected type, ActionStatus 1. */
static int
hs_check_action(json_t *a, const char *want, char *err, size_t errlen)
{
	json_t *type, *status, *e;
	char text[HS_CLIENT_TEXT_MAX + 1];

	if (!json_is_object(a)) {
		snprintf(err, errlen, "a processed action is not an object");
		return PH_ERR_INVALID;
	}
	type = json_object_get(a, "ActionType");
	if (!json_is_string(type) || strcmp(json_string_value(type), want) !=
	    0 || json_string_length(type) != strlen(want)) {
		snprintf(err, errlen, "the processed actions do not answer the "
		    "requested ones (%s expected)", want);
		return PH_ERR_INVALID;
	}
	e = json_object_get(a, "Error");
	if (e != NULL && !json_is_string(e) && !json_is_null(e)) {
		snprintf(err, errlen, "the %s action's Error is not a string",
		    want);
		return PH_ERR_INVALID;
	}
	status = json_object_get(a, "ActionStatus");
	if (!json_is_integer(status)) {
		snprintf(err, errlen, "the %s action has no integer "
		    "ActionStatus", want);
		return PH_ERR_INVALID;
	}
	if (json_integer_value(status) != HS_STATUS_SUCCESS) {
		hs_clean(text, sizeof(text), json_is_string(e) ?
		    json_string_value(e) : "");
		snprintf(err, errlen, "the client %s %s%s%s",
		    json_integer_value(status) == 3 ? "does not support" :
		    "could not do", want, text[0] ? ": " : "", text);
		return PH_ERR_DENIED;
	}
	return 0;
}

static int
hs_check_kms_result(json_t *a, struct agent_hs_response *out, char *err,
    size_t errlen)
{
	json_t *r, *k, *h, *ack;
	uint8_t *tmp = NULL;
	size_t got = 0;
	int rc = PH_ERR_INVALID;

	r = json_object_get(a, "ActionResult");
	if (!json_is_object(r)) {
		snprintf(err, errlen, "the KMSEncryption action has no "
		    "ActionResult object");
		return PH_ERR_INVALID;
	}
	k = json_object_get(r, "KMSCipherTextKey");
	h = json_object_get(r, "KMSCipherTextHash");
	ack = json_object_get(r, "ChallengeAcknowledgement");
	if (!json_is_string(k) || json_string_length(k) == 0 ||
	    json_string_length(k) > AGENT_KMS_MAX_BLOB_B64) {
		snprintf(err, errlen, "KMSCipherTextKey is missing or too "
		    "long");
		return PH_ERR_INVALID;
	}
	if ((h != NULL && !json_is_null(h) && !json_is_string(h)) ||
	    (ack != NULL && !json_is_null(ack) && !json_is_boolean(ack))) {
		snprintf(err, errlen, "the KMSEncryption ActionResult has "
		    "fields of the wrong type");
		return PH_ERR_INVALID;
	}
	if ((tmp = malloc(AGENT_KMS_MAX_BLOB)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return PH_ERR_NOMEM;
	}
	if (agent_b64_decode(json_string_value(k), json_string_length(k), tmp,
	    AGENT_KMS_MAX_BLOB, &got) != 0 || got == 0) {
		snprintf(err, errlen, "KMSCipherTextKey is not base64 of a "
		    "KMS ciphertext");
		goto fail;
	}
	if ((out->kms_ciphertext = strdup(json_string_value(k))) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	out->challenge_ack = json_is_true(ack);
	rc = 0;
fail:
	free(tmp);
	return rc;
}

int
agent_handshake_parse_response(const uint8_t *p, size_t n, int want_kms,
    struct agent_hs_response *out, char *err, size_t errlen)
{
	json_t *o = NULL, *v, *acts, *errs;
	size_t want = want_kms ? 2 : 1, i;
	char text[HS_CLIENT_TEXT_MAX + 1];
	int rc = PH_ERR_INVALID;

	memset(out, 0, sizeof(*out));
	if (p == NULL || n == 0 || n > AGENT_HS_MAX_PAYLOAD) {
		snprintf(err, errlen, "the HandshakeResponse is empty or too "
		    "large");
		return PH_ERR_INVALID;
	}
	/* jansson refuses NUL bytes, bad UTF-8 and nesting past its depth
	 * limit. */
	o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		snprintf(err, errlen, "the HandshakeResponse is not a JSON "
		    "object");
		goto fail;
	}
	v = json_object_get(o, "ClientVersion");
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > AGENT_HS_MAX_VERSION ||
	    !hs_printable(json_string_value(v), json_string_length(v))) {
		snprintf(err, errlen, "the HandshakeResponse has no valid "
		    "ClientVersion");
		goto fail;
	}
	memcpy(out->client_version, json_string_value(v),
	    json_string_length(v));
	out->client_version[json_string_length(v)] = '\0';
	errs = json_object_get(o, "Errors");
	if (errs != NULL && !json_is_null(errs) && !json_is_array(errs)) {
		snprintf(err, errlen, "the HandshakeResponse's Errors is not a "
		    "list");
		goto fail;
	}
	acts = json_object_get(o, "ProcessedClientActions");
	if (!json_is_array(acts) || json_array_size(acts) != want) {
		snprintf(err, errlen, "the HandshakeResponse does not answer "
		    "the %zu requested action%s", want, want == 1 ? "" : "s");
		goto fail;
	}
	for (i = 0; i < want; i++) {
		rc = hs_check_action(json_array_get(acts, i), i == 0 ?
		    HS_ACTION_SESSION_TYPE : HS_ACTION_KMS, err, errlen);
		if (rc != 0)
			goto fail;
	}
	rc = PH_ERR_INVALID;
	if (json_is_array(errs) && json_array_size(errs) > 0) {
		v = json_array_get(errs, 0);
		hs_clean(text, sizeof(text), json_is_string(v) ?
		    json_string_value(v) : "");
		snprintf(err, errlen, "the client reported an error%s%s",
		    text[0] ? ": " : "", text);
		goto fail;
	}
	if (want_kms && (rc = hs_check_kms_result(json_array_get(acts, 1),
	    out, err, errlen)) != 0)
		goto fail;
	rc = 0;
fail:
	json_decref(o);
	if (rc != 0)
		agent_hs_response_free(out);
	return rc;
}

void
agent_hs_response_free(struct agent_hs_response *r)
{
	free(r->kms_ciphertext);
	memset(r, 0, sizeof(*r));
}

int
agent_handshake_challenge_json(const uint8_t *sealed, size_t n,
    struct buf *out)
{
	struct buf b;
	json_t *o;
	char *s;
	int rc;

	buf_init(&b, HS_MAX_CHALLENGE_B64 + 8);
	if (n == 0 || n > HS_MAX_CHALLENGE_BYTES) {
		rc = PH_ERR_INVALID;
		goto fail;
	}
	if ((rc = agent_b64_encode(sealed, n, &b)) != 0)
		goto fail;
	rc = PH_ERR_NOMEM;
	o = json_pack("{s:s%}", "Challenge", (const char *)b.data, b.len);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (s != NULL) {
		rc = buf_append_str(out, s);
		free(s);
	}
fail:
	buf_free(&b);
	return rc;
}

int
agent_handshake_parse_challenge(const uint8_t *p, size_t n, struct buf *out)
{
	uint8_t tmp[HS_MAX_CHALLENGE_BYTES];
	json_t *o = NULL, *c;
	size_t got = 0;
	int rc = PH_ERR_INVALID;

	if (p == NULL || n == 0 || n > AGENT_HS_MAX_PAYLOAD)
		return PH_ERR_INVALID;
	o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
	c = json_object_get(o, "Challenge");
	if (!json_is_string(c) || json_string_length(c) == 0 ||
	    json_string_length(c) > HS_MAX_CHALLENGE_B64)
		goto fail;
	if (agent_b64_decode(json_string_value(c), json_string_length(c), tmp,
	    sizeof(tmp), &got) != 0 || got == 0)
		goto fail;
	rc = buf_append(out, tmp, got);
fail:
	json_decref(o);
	return rc;
}

/* ---- the state machine --------------------------------------------------- */

int
agent_handshake_new(struct agent_handshake **out,
    const struct agent_hs_params *p, const struct agent_hs_ops *ops,
    void *ud)
{
	struct agent_handshake *hs;

	*out = NULL;
	if (p->session_id == NULL || p->instance_id == NULL ||
	    p->agent_version == NULL)
		return PH_ERR_INVALID;
	if ((hs = calloc(1, sizeof(*hs))) == NULL)
		return PH_ERR_NOMEM;
	hs->ops = ops;
	hs->ud = ud;
	hs->type = p->type;
	hs->encrypt = agent_handshake_encrypts(p->type, p->kms_key_id);
	hs->session_id = strdup(p->session_id);
	hs->instance_id = strdup(p->instance_id);
	hs->agent_version = strdup(p->agent_version);
	if (p->properties != NULL &&
	    (hs->properties = strdup(p->properties)) == NULL) {
		agent_handshake_free(hs);
		return PH_ERR_NOMEM;
	}
	if (hs->encrypt)
		hs->kms_key_id = strdup(p->kms_key_id);
	if (hs->session_id == NULL || hs->instance_id == NULL ||
	    hs->agent_version == NULL || (hs->encrypt &&
	    hs->kms_key_id == NULL)) {
		agent_handshake_free(hs);
		return PH_ERR_NOMEM;
	}
	hs->state = AGENT_HS_IDLE;
	*out = hs;
	return 0;
}

void
agent_handshake_free(struct agent_handshake *hs)
{
	if (hs == NULL)
		return;
	OPENSSL_cleanse(hs->challenge, sizeof(hs->challenge));
	sessioncrypt_free(hs->sc); /* wipes the data key */
	free(hs->session_id);
	free(hs->instance_id);
	free(hs->kms_key_id);
	free(hs->agent_version);
	free(hs->properties);
	free(hs);
}

enum agent_hs_state
agent_handshake_state(const struct agent_handshake *hs)
{
	return hs->state;
}

const char *
agent_handshake_error(const struct agent_handshake *hs)
{
	return hs->error;
}

const char *
agent_handshake_client_version(const struct agent_handshake *hs)
{
	return hs->client_version;
}

int
agent_handshake_encrypted(const struct agent_handshake *hs)
{
	return hs->encrypt;
}

void
agent_handshake_fail(struct agent_handshake *hs, const char *reason)
{
	if (hs->state == AGENT_HS_FAILED || hs->state == AGENT_HS_DONE)
		return;
	snprintf(hs->error, sizeof(hs->error), "Session handshake failed: %s",
	    reason != NULL && *reason != '\0' ? reason : "unknown error");
	log_warn("event=handshake_failed session=%s state=%d reason=\"%s\"",
	    hs->session_id, (int)hs->state, hs->error);
	hs->state = AGENT_HS_FAILED;
	hs->deadline_ms = 0;
	OPENSSL_cleanse(hs->challenge, sizeof(hs->challenge));
}

int
agent_handshake_start(struct agent_handshake *hs, uint64_t now_ms)
{
	struct agent_hs_params p;
	uint8_t nonce[AGENT_HS_NONCE_LEN];
	struct buf b, nb;
	int rc;

	if (hs->state != AGENT_HS_IDLE)
		return PH_ERR_STATE;
	buf_init(&b, AGENT_HS_MAX_PAYLOAD);
	buf_init(&nb, sizeof(hs->nonce_b64));
	memset(&p, 0, sizeof(p));
	p.session_id = hs->session_id;
	p.instance_id = hs->instance_id;
	p.type = hs->type;
	p.kms_key_id = hs->kms_key_id;
	p.agent_version = hs->agent_version;
	p.properties = hs->properties;
	if (hs->encrypt) {
		rc = PH_ERR_CRYPTO;
		if (RAND_bytes(nonce, sizeof(nonce)) != 1 ||
		    (rc = agent_b64_encode(nonce, sizeof(nonce), &nb)) != 0)
			goto fail;
		memcpy(hs->nonce_b64, nb.data, nb.len);
		hs->nonce_b64[nb.len] = '\0';
	}
	rc = agent_handshake_request_json(&p, hs->encrypt ? hs->nonce_b64 :
	    NULL, &b);
	if (rc == 0)
		rc = hs->ops->send(hs->ud, PT_HANDSHAKE_REQUEST, b.data, b.len);
fail:
	buf_free(&b);
	buf_free(&nb);
	if (rc != 0) {
		agent_handshake_fail(hs, "cannot send the HandshakeRequest");
		return rc;
	}
	hs->started_ms = now_ms;
	hs->deadline_ms = now_ms + AGENT_HS_RESPONSE_WAIT_MS;
	hs->state = AGENT_HS_WAIT_RESPONSE;
	log_info("event=handshake_start session=%s kms=%d", hs->session_id,
	    hs->encrypt);
	return 0;
}

/* spec 5.4: HandshakeComplete, then the session plugin may start. */
static void
hs_complete(struct agent_handshake *hs, uint64_t now_ms)
{
	json_t *o;
	char *s;
	int rc = PH_ERR_NOMEM;

	o = json_pack("{s:I, s:s}", "HandshakeTimeToComplete",
	    (json_int_t)((now_ms - hs->started_ms) * 1000000),
	    "CustomerMessage", hs->encrypt ? AGENT_HS_KMS_MESSAGE : "");
	s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (s != NULL) {
		rc = hs->ops->send(hs->ud, PT_HANDSHAKE_COMPLETE, s, strlen(s));
		free(s);
	}
	if (rc != 0) {
		agent_handshake_fail(hs, "cannot send HandshakeComplete");
		return;
	}
	hs->state = AGENT_HS_DONE;
	hs->deadline_ms = 0;
	OPENSSL_cleanse(hs->challenge, sizeof(hs->challenge));
	log_info("event=handshake_complete session=%s kms=%d client=%s "
	    "ms=%llu", hs->session_id, hs->encrypt, hs->client_version,
	    (unsigned long long)(now_ms - hs->started_ms));
}

static void
hs_on_response(struct agent_handshake *hs, const uint8_t *p, size_t n,
    uint64_t now_ms)
{
	struct agent_hs_response r;
	struct agent_kms_request rq;
	char err[AGENT_HS_MAX_REASON - 64];

	if (agent_handshake_parse_response(p, n, hs->encrypt, &r, err,
	    sizeof(err)) != 0) {
		agent_handshake_fail(hs, err);
		return;
	}
	snprintf(hs->client_version, sizeof(hs->client_version), "%s",
	    r.client_version);
	if (!hs->encrypt) {
		agent_hs_response_free(&r);
		hs_complete(hs, now_ms);
		return;
	}
	/* spec 6.1: our own identity and context; the challenge only when
	 * the client says it bound it. */
	memset(&rq, 0, sizeof(rq));
	rq.ciphertext_b64 = r.kms_ciphertext;
	rq.session_id = hs->session_id;
	rq.target_id = hs->instance_id;
	rq.challenge = r.challenge_ack ? hs->nonce_b64 : NULL;
	hs->state = AGENT_HS_DECRYPTING;
	hs->deadline_ms = now_ms + AGENT_HS_DECRYPT_WAIT_MS;
	err[0] = '\0';
	if (hs->ops->decrypt(hs->ud, &rq, err, sizeof(err)) != 0)
		agent_handshake_fail(hs, err[0] ? err :
		    "cannot call KMS Decrypt");
	agent_hs_response_free(&r);
}

void
agent_handshake_decrypted(struct agent_handshake *hs, int rc,
    const uint8_t *key, const char *err, uint64_t now_ms)
{
	uint8_t sealed[AGENT_HS_CHALLENGE_LEN + SESSIONCRYPT_OVERHEAD];
	struct buf b;

	if (hs->state != AGENT_HS_DECRYPTING)
		return; /* failed or timed out meanwhile */
	if (rc != 0 || key == NULL) {
		agent_handshake_fail(hs, err != NULL && *err != '\0' ? err :
		    "KMS Decrypt failed");
		return;
	}
	if (sessioncrypt_new(&hs->sc, SESSIONCRYPT_AGENT, key) != 0) {
		hs->sc = NULL;
		agent_handshake_fail(hs, "cannot set up the session cipher");
		return;
	}
	/* spec 6.4: 64 random bytes sealed with our key (bytes 0-31). */
	buf_init(&b, AGENT_HS_MAX_PAYLOAD);
	rc = PH_ERR_CRYPTO;
	if (RAND_bytes(hs->challenge, sizeof(hs->challenge)) == 1 &&
	    sessioncrypt_seal_to(hs->sc, hs->challenge, sizeof(hs->challenge),
	    sealed) == 0 &&
	    (rc = agent_handshake_challenge_json(sealed, sizeof(sealed),
	    &b)) == 0) {
		/* From here on the channel seals and opens. */
		hs->ops->set_crypto(hs->ud, hs->sc);
		rc = hs->ops->send(hs->ud, PT_ENC_CHALLENGE_REQUEST, b.data,
		    b.len);
	}
	buf_free(&b);
	if (rc != 0) {
		agent_handshake_fail(hs, "cannot send the encryption "
		    "challenge");
		return;
	}
	hs->state = AGENT_HS_WAIT_CHALLENGE;
	hs->deadline_ms = now_ms + AGENT_HS_CHALLENGE_WAIT_MS;
}

static void
hs_on_challenge(struct agent_handshake *hs, const uint8_t *p, size_t n,
    uint64_t now_ms)
{
	uint8_t plain[AGENT_HS_CHALLENGE_LEN];
	struct buf b;
	int ok;

	buf_init(&b, HS_MAX_CHALLENGE_BYTES);
	ok = agent_handshake_parse_challenge(p, n, &b) == 0;
	if (!ok) {
		buf_free(&b);
		agent_handshake_fail(hs, "the encryption challenge response "
		    "is not valid");
		return;
	}
	/* spec 6.4: sealed by the client with bytes 32-63, the same 64
	 * bytes. */
	ok = b.len == sizeof(plain) + SESSIONCRYPT_OVERHEAD &&
	    sessioncrypt_open_to(hs->sc, b.data, b.len, plain) == 0 &&
	    CRYPTO_memcmp(plain, hs->challenge, sizeof(plain)) == 0;
	OPENSSL_cleanse(plain, sizeof(plain));
	buf_free(&b);
	if (!ok) {
		agent_handshake_fail(hs, "the client did not prove it has the "
		    "session key (encryption challenge mismatch)");
		return;
	}
	hs_complete(hs, now_ms);
}

int
agent_handshake_deliver(struct agent_handshake *hs, uint32_t ptype,
    const uint8_t *p, size_t n, uint64_t now_ms)
{
	switch (ptype) {
	case PT_HANDSHAKE_RESPONSE:
		if (hs->state == AGENT_HS_WAIT_RESPONSE)
			hs_on_response(hs, p, n, now_ms);
		else if (hs->state != AGENT_HS_FAILED)
			agent_handshake_fail(hs, "a HandshakeResponse came "
			    "out of place");
		return 0;
	case PT_ENC_CHALLENGE_RESPONSE:
		if (hs->state == AGENT_HS_WAIT_CHALLENGE)
			hs_on_challenge(hs, p, n, now_ms);
		else if (hs->state != AGENT_HS_FAILED)
			agent_handshake_fail(hs, "an encryption challenge "
			    "response came out of place");
		return 0;
	default:
		return 0;
	}
}

void
agent_handshake_tick(struct agent_handshake *hs, uint64_t now_ms)
{
	if (hs->deadline_ms == 0 || now_ms < hs->deadline_ms)
		return;
	switch (hs->state) {
	case AGENT_HS_WAIT_RESPONSE:
		agent_handshake_fail(hs, "the client did not answer the "
		    "handshake within 15 seconds (handshake timed out)");
		break;
	case AGENT_HS_DECRYPTING:
		agent_handshake_fail(hs, "KMS Decrypt did not answer in time");
		break;
	case AGENT_HS_WAIT_CHALLENGE:
		agent_handshake_fail(hs, "the client did not answer the "
		    "encryption challenge within 15 seconds");
		break;
	default:
		hs->deadline_ms = 0;
		break;
	}
}
