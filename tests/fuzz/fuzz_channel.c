/* fuzz_channel: one end of the reliability layer (spec 4: sequence
 * numbers, acknowledgements, the out-of-order buffer, retransmission) and
 * its end-to-end encryption (spec 6.3), driven by an operation sequence
 * decoded from the input. Frames the harness builds carry correct digests
 * so the fuzzer reaches the stream logic; raw frames test the decoder's
 * refusals. Small limits make the full-buffer paths reachable.
 *
 * Input: flags byte (bit 0: role agent, else client), then operations:
 * op byte, then its operands (see the switch). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/channel.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/sessioncrypt.h"
#include "fuzzin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fx {
	uint64_t now;
	int send_fails;
	int deliver_rc;
	int64_t last_delivered;  /* in-order check: counts deliveries */
	size_t sent;
};

static const char *const types[] = {
	MT_INPUT_STREAM, MT_OUTPUT_STREAM, MT_ACKNOWLEDGE, MT_CHANNEL_CLOSED,
	MT_START_PUBLICATION, MT_PAUSE_PUBLICATION, MT_AGENT_SESSION_STATE,
	"unknown_type",
};

static uint64_t
fx_clock(void *arg)
{
	return ((struct fx *)arg)->now;
}

static int
fx_send_frame(void *ud, const uint8_t *frame, size_t n)
{
	struct fx *f = ud;
	struct clientmsg m;

	if (f->send_fails)
		return PH_ERR_IO;
	/* Everything the channel writes is a valid frame. */
	if (clientmsg_decode(&m, frame, n, (size_t)1 << 20) != 0)
		abort();
	f->sent++;
	return 0;
}

static int
fx_deliver(void *ud, uint32_t payload_type, const uint8_t *p, size_t n)
{
	struct fx *f = ud;

	(void)payload_type;
	if (n > 0 && p == NULL)
		abort();
	if (f->deliver_rc == 0)
		f->last_delivered++;
	return f->deliver_rc;
}

static void
fx_on_control(void *ud, const struct clientmsg *m)
{
	(void)ud;
	if (m->type[0] == '\0')
		abort();
}

static const struct channel_cbs cbs = {
	.send_frame = fx_send_frame,
	.deliver = fx_deliver,
	.on_control = fx_on_control,
};

/* A frame from the peer: type, seq near what is expected, flags, payload
 * type and payload all from the input. */
static void
peer_frame(struct channel *ch, struct fuzzin *in, struct buf *b,
    struct sessioncrypt *peer)
{
	static const uint8_t id[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
	    13, 14, 15, 16 };
	const char *type = types[fuzzin_u8(in) % 8];
	int64_t seq = channel_expected_seq(ch) + (int8_t)fuzzin_u8(in);
	uint64_t flags = fuzzin_u8(in) % 4;
	uint32_t ptype = fuzzin_u8(in) % 14;
	const uint8_t *p;
	struct buf sealed;
	char ack[160];
	size_t n;

	p = fuzzin_bytes(in, 4096, &n);
	buf_init(&sealed, 1 << 16);
	if (strcmp(type, MT_ACKNOWLEDGE) == 0 && n > 0 && p[0] == 'A') {
		/* A well-formed acknowledgement of one of our sequences. */
		snprintf(ack, sizeof(ack), "{\"AcknowledgedMessageType\":"
		    "\"x\",\"AcknowledgedMessageId\":\"y\","
		    "\"AcknowledgedMessageSequenceNumber\":%lld,"
		    "\"IsSequentialMessage\":true}",
		    (long long)(channel_next_send_seq(ch) - 1 -
		    (n > 1 ? p[1] % 8 : 0)));
		p = (const uint8_t *)ack;
		n = strlen(ack);
	} else if (peer != NULL && n > 0 && p[0] == 'E') {
		/* Sealed by the peer's key: it opens. */
		if (sessioncrypt_seal(peer, p + 1, n - 1, &sealed) == 0) {
			p = sealed.data;
			n = sealed.len;
		}
	}
	buf_reset(b);
	if (clientmsg_encode_at(b, type, 1700000000000ull, seq, flags, id,
	    ptype, p, n) == 0)
		(void)channel_receive(ch, b->data, b->len);
	buf_free(&sealed);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct channel_limits lim = { .max_payload = 256, .max_unacked = 8,
	    .max_unacked_bytes = 2048, .max_out_of_order = 8 };
	struct fuzzin in = { data, size };
	struct sessioncrypt *mine = NULL, *peer = NULL;
	struct channel *ch = NULL;
	struct buf b;
	struct fx f;
	const uint8_t *p;
	uint8_t key[64];
	size_t n, steps = 0;
	int agent, i, crypto_on = 0;

	memset(&f, 0, sizeof(f));
	f.now = 1000;
	buf_init(&b, (size_t)1 << 20);
	agent = fuzzin_u8(&in) & 1;
	for (i = 0; i < 64; i++)
		key[i] = (uint8_t)(i * 13 + 1);
	if (channel_new(&ch, agent ? CHANNEL_AGENT : CHANNEL_CLIENT, &cbs, &f,
	    &lim) != 0)
		goto out;
	channel_set_clock(ch, fx_clock, &f);
	while (in.n > 0 && steps++ < 512) {
		switch (fuzzin_u8(&in) % 9) {
		case 0:
			peer_frame(ch, &in, &b, peer);
			break;
		case 1:		/* raw bytes as a frame */
			p = fuzzin_bytes(&in, 8192, &n);
			(void)channel_receive(ch, p, n);
			break;
		case 2:
			p = fuzzin_bytes(&in, 512, &n);
			(void)channel_send(ch, fuzzin_u8(&in) % 14, p, n);
			break;
		case 3:
			f.now += fuzzin_u16(&in);
			channel_tick(ch, f.now);
			break;
		case 4:
			channel_resend_all(ch);
			break;
		case 5:		/* encryption on (both ends) or off */
			if (mine == NULL) {
				if (sessioncrypt_new(&mine, agent ?
				    SESSIONCRYPT_AGENT : SESSIONCRYPT_CLIENT,
				    key) != 0 ||
				    sessioncrypt_new(&peer, agent ?
				    SESSIONCRYPT_CLIENT : SESSIONCRYPT_AGENT,
				    key) != 0)
					goto out;
			}
			crypto_on = !crypto_on;
			channel_set_crypto(ch, crypto_on ? mine : NULL);
			break;
		case 6:
			f.send_fails = !f.send_fails;
			break;
		case 7:
			f.deliver_rc = f.deliver_rc == 0 ? PH_ERR_AGAIN : 0;
			break;
		case 8:
			p = fuzzin_bytes(&in, 64, &n);
			(void)channel_send_control(ch, MT_AGENT_SESSION_STATE,
			    p, n);
			break;
		}
		if (channel_unacked(ch) > lim.max_unacked ||
		    channel_out_of_order(ch) > lim.max_out_of_order)
			abort();
	}
out:
	channel_free(ch);
	sessioncrypt_free(mine);
	sessioncrypt_free(peer);
	buf_free(&b);
	return 0;
}
