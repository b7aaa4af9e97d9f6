/* fuzz_clientmsg: the ClientMessage decoder (spec 3) on any bytes, then on
 * the same bytes with a correct digest, and a decoded frame encoded again
 * must decode to the same fields. Input: one frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "common/buf.h"
#include "common/clientmsg.h"
#include "fuzzin.h"

/* spec 3.1: the digest field, over the payload. */
#define OFF_DIGEST 80

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_round_trip(const struct clientmsg *m)
{
	struct clientmsg m2;
	struct buf b;

	buf_init(&b, (size_t)1 << 24);
	if (clientmsg_encode_at(&b, m->type, m->created_ms, m->seq,
	    m->flags, m->message_id, m->payload_type, m->payload,
	    m->payload_len) != 0)
		abort();
	if (clientmsg_decode(&m2, b.data, b.len, m->payload_len) != 0)
		abort();
	if (strcmp(m->type, m2.type) != 0 || m->seq != m2.seq ||
	    m->flags != m2.flags || m->created_ms != m2.created_ms ||
	    m->payload_type != m2.payload_type ||
	    m->payload_len != m2.payload_len ||
	    memcmp(m->message_id, m2.message_id, 16) != 0 ||
	    (m->payload_len > 0 && memcmp(m->payload, m2.payload,
	    m->payload_len) != 0))
		abort();
	buf_free(&b);
}

/* The agent's decoder (spec 3.7 [R]): whatever it accepts lies inside the
 * frame and ends with it; the relay's peek accepts the same frames; a
 * frame the strict decoder takes has no quirk. */
static void
check_lenient(const uint8_t *data, size_t size)
{
	struct clientmsg m, p;
	int rc, prc;

	rc = clientmsg_decode_lenient(&m, data, size, 1 << 20);
	prc = clientmsg_peek(&p, data, size, 1 << 20);
	if ((rc == 0) != (prc == 0))
		abort();
	if (rc == 0 && (m.payload < data || m.payload + m.payload_len !=
	    data + size || m.header_length == 0 ||
	    (size_t)m.header_length + 4 > size || m.type[0] == '\0'))
		abort();
	if (clientmsg_decode(&p, data, size, 1 << 20) == 0 &&
	    (rc != 0 || m.quirks != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct clientmsg m;
	uint8_t *copy;

	check_lenient(data, size);
	(void)clientmsg_decode(&m, data, size, 64);
	if (clientmsg_decode(&m, data, size, 1 << 20) == 0)
		check_round_trip(&m);
	/* Reach past the digest check: the same frame, digest made right. */
	if (size < CLIENTMSG_PAYLOAD_OFFSET)
		return 0;
	if ((copy = malloc(size)) == NULL)
		return 0;
	memcpy(copy, data, size);
	SHA256(copy + CLIENTMSG_PAYLOAD_OFFSET,
	    size - CLIENTMSG_PAYLOAD_OFFSET, copy + OFF_DIGEST);
	if (clientmsg_decode(&m, copy, size, 1 << 20) == 0)
		check_round_trip(&m);
	check_lenient(copy, size);
	free(copy);
	return 0;
}
