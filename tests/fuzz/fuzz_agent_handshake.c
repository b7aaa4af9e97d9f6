/* fuzz_agent_handshake: the agent's side of the data-channel handshake
 * (spec 5, 6). The payload parsers on their own, then the state machine
 * driven by an operation sequence decoded from the input: payloads of any
 * type from the client, the KMS Decrypt result, clock ticks, an honest
 * client's answer to the encryption challenge, and failure from outside.
 *
 * Input: flags byte (bit 0-1 session type, bit 2 KMS), then operations:
 * op byte, then its operands (see the switch). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/handshake.h"
#include "common/buf.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/sessioncrypt.h"
#include "fuzzin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fx {
	struct buf last;          /* the last payload the agent sent */
	uint32_t last_type;
	struct sessioncrypt *sc;  /* the agent's, once set */
	int fail_send;
};

static uint8_t key[64];

static int
fx_send(void *ud, uint32_t type, const void *p, size_t n)
{
	struct fx *f = ud;

	if (f->fail_send)
		return PH_ERR_IO;
	buf_reset(&f->last);
	f->last_type = type;
	return buf_append(&f->last, p, n);
}

static int
fx_decrypt(void *ud, const struct agent_kms_request *rq, char *err,
    size_t errlen)
{
	(void)ud;
	if (rq->ciphertext_b64 == NULL || rq->session_id == NULL ||
	    rq->target_id == NULL)
		abort();
	(void)err;
	(void)errlen;
	return 0;
}

static void
fx_set_crypto(void *ud, struct sessioncrypt *sc)
{
	((struct fx *)ud)->sc = sc;
}

static const struct agent_hs_ops ops = {
	.send = fx_send,
	.decrypt = fx_decrypt,
	.set_crypto = fx_set_crypto,
};

/* What an honest client answers to the EncChallengeRequest last sent. */
static void
honest_answer(struct fx *f, struct agent_handshake *hs, uint64_t now)
{
	struct sessioncrypt *client = NULL;
	struct buf sealed, plain, js;

	if (f->last_type != PT_ENC_CHALLENGE_REQUEST)
		return;
	buf_init(&sealed, 1 << 16);
	buf_init(&plain, 1 << 16);
	buf_init(&js, 1 << 16);
	if (agent_handshake_parse_challenge(f->last.data, f->last.len,
	    &sealed) != 0 ||
	    sessioncrypt_new(&client, SESSIONCRYPT_CLIENT, key) != 0 ||
	    sessioncrypt_open(client, sealed.data, sealed.len, &plain) != 0)
		abort();	/* the agent's own challenge must open */
	buf_reset(&sealed);
	if (sessioncrypt_seal(client, plain.data, plain.len, &sealed) != 0 ||
	    agent_handshake_challenge_json(sealed.data, sealed.len, &js) != 0)
		abort();
	(void)agent_handshake_deliver(hs, PT_ENC_CHALLENGE_RESPONSE, js.data,
	    js.len, now);
	sessioncrypt_free(client);
	buf_free(&sealed);
	buf_free(&plain);
	buf_free(&js);
}

static void
parsers(const uint8_t *p, size_t n)
{
	struct agent_hs_response r;
	struct buf out;
	char err[AGENT_HS_MAX_REASON];

	memset(&r, 0, sizeof(r));
	if (agent_handshake_parse_response(p, n, 0, &r, err,
	    sizeof(err)) == 0)
		agent_hs_response_free(&r);
	if (agent_handshake_parse_response(p, n, 1, &r, err,
	    sizeof(err)) == 0) {
		if (r.kms_ciphertext == NULL)
			abort();
		agent_hs_response_free(&r);
	}
	buf_init(&out, 1 << 16);
	(void)agent_handshake_parse_challenge(p, n, &out);
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzzin in = { data, size };
	struct agent_hs_params prm;
	struct agent_handshake *hs = NULL;
	struct fx f;
	const uint8_t *p;
	uint64_t now = 1000;
	size_t n, steps = 0;
	uint8_t flags, op;
	int i;

	for (i = 0; i < 64; i++)
		key[i] = (uint8_t)(i * 7 + 3);
	parsers(data, size);
	memset(&f, 0, sizeof(f));
	buf_init(&f.last, 1 << 20);
	flags = fuzzin_u8(&in);
	memset(&prm, 0, sizeof(prm));
	prm.session_id = "s-0123456789abcdef0";
	prm.instance_id = "mi-0123456789abcdef0";
	prm.type = (enum agent_session_type)(AGENT_ST_STANDARD + (flags & 3));
	prm.kms_key_id = flags & 4 ? "alias/session" : NULL;
	prm.agent_version = "3.3.1000.0";
	/* Port sessions hand their properties to the handshake. */
	if (flags & 8)
		prm.properties = "{\"portNumber\":\"80\","
		    "\"type\":\"LocalPortForwarding\"}";
	if (agent_handshake_new(&hs, &prm, &ops, &f) != 0)
		goto out;
	if (agent_handshake_start(hs, now) != 0)
		goto out;
	while (in.n > 0 && steps++ < 256) {
		op = fuzzin_u8(&in);
		switch (op % 7) {
		case 0:		/* a client payload: type, bytes */
			op = fuzzin_u8(&in);
			p = fuzzin_bytes(&in, AGENT_HS_MAX_PAYLOAD + 16, &n);
			(void)agent_handshake_deliver(hs, op % 14, p, n, now);
			break;
		case 1:		/* Decrypt answered */
			agent_handshake_decrypted(hs, 0, key, NULL, now);
			break;
		case 2:		/* Decrypt failed */
			agent_handshake_decrypted(hs, PH_ERR_DENIED, NULL,
			    "AccessDeniedException: no", now);
			break;
		case 3:		/* time passes */
			now += (uint64_t)fuzzin_u16(&in) * 10;
			agent_handshake_tick(hs, now);
			break;
		case 4:
			honest_answer(&f, hs, now);
			break;
		case 5:
			agent_handshake_fail(hs, "the session is going away");
			break;
		case 6:		/* sends fail, or work again */
			f.fail_send = !f.fail_send;
			break;
		}
		if (agent_handshake_state(hs) == AGENT_HS_FAILED &&
		    agent_handshake_error(hs)[0] == '\0')
			abort();	/* a failure always says why */
	}
out:
	agent_handshake_free(hs);
	buf_free(&f.last);
	return 0;
}
