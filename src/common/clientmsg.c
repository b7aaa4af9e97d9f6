/* clientmsg: encoder and validating decoder of the binary frame of spec
 * section 3. Every length is checked before it is used; nothing is
 * allocated while decoding, so a hostile PayloadLength costs nothing. */
#include "common/clientmsg.h"
#include "common/err.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* spec 3.1: field offsets. */
#define OFF_HEADER_LENGTH 0
#define OFF_TYPE 4
#define OFF_SCHEMA 36
#define OFF_CREATED 40
#define OFF_SEQ 48
#define OFF_FLAGS 56
#define OFF_ID 64
#define OFF_DIGEST 80
#define OFF_PAYLOAD_TYPE 112
#define OFF_PAYLOAD_LENGTH 116
#define DIGEST_LEN 32

/* spec 3.1: senders write SchemaVersion 1. */
#define CLIENTMSG_SCHEMA 1

/* SHA-256 fetched once: the one-shot SHA256() looks the algorithm up by
 * name on every call, which costs more than hashing 1 KiB on this kind of
 * CPU, and every frame is hashed at both ends. */
static EVP_MD *clientmsg_md;
static pthread_once_t clientmsg_md_once = PTHREAD_ONCE_INIT;

static void
clientmsg_md_fetch(void)
{
	clientmsg_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int
clientmsg_sha256(const uint8_t *p, size_t n, uint8_t out[DIGEST_LEN])
{
	unsigned int len = 0;

	(void)pthread_once(&clientmsg_md_once, clientmsg_md_fetch);
	if (clientmsg_md == NULL ||
	    EVP_Digest(p, n, out, &len, clientmsg_md, NULL) != 1 ||
	    len != DIGEST_LEN)
		return PH_ERR_CRYPTO;
	return 0;
}
static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t
clientmsg_now_ms(void)
{
	struct timespec ts;

	/* spec 3.1: CreatedDate is wall-clock milliseconds since the epoch. */
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
clientmsg_encode_at(struct buf *out, const char *type, uint64_t created_ms,
    int64_t seq, uint64_t flags, const uint8_t id[16], uint32_t payload_type,
    const void *payload, size_t payload_len)
{
	size_t tlen;
	uint8_t *h;
	int rc;

	if (type == NULL || id == NULL || (payload == NULL && payload_len > 0))
		return PH_ERR_INVALID;
	tlen = strlen(type);
	if (tlen == 0 || tlen > CLIENTMSG_TYPE_LEN)
		return PH_ERR_INVALID;
	if (payload_len > UINT32_MAX ||
	    payload_len > SIZE_MAX - CLIENTMSG_PAYLOAD_OFFSET)
		return PH_ERR_TOOBIG;
	if ((rc = buf_reserve(out,
	    CLIENTMSG_PAYLOAD_OFFSET + payload_len)) != 0)
		return rc;
	/* Written in place: the payload is copied once and hashed where it
	 * lies in the output. */
	h = out->data + out->len;
	put_be32(h + OFF_HEADER_LENGTH, CLIENTMSG_HEADER_LENGTH);
	/* spec 3.1, 11.5: left-aligned, padded with spaces, not NULs. */
	memset(h + OFF_TYPE, ' ', CLIENTMSG_TYPE_LEN);
	memcpy(h + OFF_TYPE, type, tlen);
	put_be32(h + OFF_SCHEMA, CLIENTMSG_SCHEMA);
	put_be64(h + OFF_CREATED, created_ms);
	put_be64(h + OFF_SEQ, (uint64_t)seq);
	put_be64(h + OFF_FLAGS, flags);
	/* spec 3.2: the two 8-byte halves are swapped on the wire. */
	memcpy(h + OFF_ID, id + 8, 8);
	memcpy(h + OFF_ID + 8, id, 8);
	put_be32(h + OFF_PAYLOAD_TYPE, payload_type);
	put_be32(h + OFF_PAYLOAD_LENGTH, (uint32_t)payload_len);
	if (payload_len > 0)
		memcpy(h + CLIENTMSG_PAYLOAD_OFFSET, payload, payload_len);
	if (clientmsg_sha256(h + CLIENTMSG_PAYLOAD_OFFSET, payload_len,
	    h + OFF_DIGEST) != 0)
		return PH_ERR_CRYPTO;
	out->len += CLIENTMSG_PAYLOAD_OFFSET + payload_len;
	return 0;
}

int
clientmsg_encode(struct buf *out, const char *type, int64_t seq,
    uint64_t flags, const uint8_t id[16], uint32_t payload_type,
    const void *payload, size_t payload_len)
{
	return clientmsg_encode_at(out, type, clientmsg_now_ms(), seq, flags,
	    id, payload_type, payload, payload_len);
}

/* spec 3.1: receivers strip NULs and surrounding whitespace. Control and
 * non-ASCII bytes are refused so a type can be logged safely. */
static int
parse_type(char out[CLIENTMSG_TYPE_LEN + 1], const uint8_t *p)
{
	size_t i, n = 0, start = 0;

	for (i = 0; i < CLIENTMSG_TYPE_LEN; i++) {
		if (p[i] == '\0')
			continue;
		if (p[i] < 0x20 || p[i] > 0x7e) {
			if (p[i] != '\t' && p[i] != '\n' && p[i] != '\r' &&
			    p[i] != '\v' && p[i] != '\f')
				return PH_ERR_INVALID;
		}
		out[n++] = (char)p[i];
	}
	while (n > 0 && (out[n - 1] == ' ' || (out[n - 1] >= '\t' &&
	    out[n - 1] <= '\r')))
		n--;
	while (start < n && (out[start] == ' ' || (out[start] >= '\t' &&
	    out[start] <= '\r')))
		start++;
	if (start > 0)
		memmove(out, out + start, n - start);
	n -= start;
	out[n] = '\0';
	for (i = 0; i < n; i++)
		if ((uint8_t)out[i] < 0x20)
			return PH_ERR_INVALID;
	return n == 0 ? PH_ERR_INVALID : 0;
}

static int
decode_header(struct clientmsg *m, const uint8_t *frame, size_t n,
    size_t max_payload, int lenient)
{
	struct bufr r;
	uint32_t hl, plen;
	uint64_t v;
	size_t off;
	const uint8_t *typ, *id;

	memset(m, 0, sizeof(*m));
	/* spec 3.7 [R]: the fixed part is 120 bytes. */
	if (frame == NULL || n < CLIENTMSG_PAYLOAD_OFFSET)
		return PH_ERR_SHORT;
	bufr_init(&r, frame, n);
	if (bufr_get_be32(&r, &hl) != 0)
		return PH_ERR_SHORT;
	/* AWS's agent wants HeaderLength != 0 and starts the payload at
	 * HeaderLength + 4; one past the frame is refused (spec 3.7 [R]:
	 * AWS's reader dies on it). */
	if (lenient ? hl == 0 || (uint64_t)hl + 4 > (uint64_t)n :
	    hl != CLIENTMSG_HEADER_LENGTH)
		return PH_ERR_INVALID;
	off = (size_t)hl + 4;
	if (n - off > max_payload)
		return PH_ERR_TOOBIG;
	if (bufr_get_ref(&r, &typ, CLIENTMSG_TYPE_LEN) != 0 ||
	    bufr_get_be32(&r, &m->schema_version) != 0 ||
	    bufr_get_be64(&r, &m->created_ms) != 0 ||
	    bufr_get_be64(&r, &v) != 0 ||
	    bufr_get_be64(&r, &m->flags) != 0 ||
	    bufr_get_ref(&r, &id, 16) != 0 ||
	    bufr_skip(&r, DIGEST_LEN) != 0 ||
	    bufr_get_be32(&r, &m->payload_type) != 0 ||
	    bufr_get_be32(&r, &plen) != 0)
		return PH_ERR_SHORT;
	m->seq = (int64_t)v;
	/* Only the frame's real length bounds the payload: PayloadLength is
	 * never trusted. Strict receivers refuse a disagreeing one; lenient
	 * ones note it (spec 3.7: AWS's agent ignores it). */
	if ((uint64_t)plen != (uint64_t)(n - off)) {
		if (!lenient)
			return PH_ERR_INVALID;
		m->quirks |= CLIENTMSG_QUIRK_LENGTH;
	}
	if (hl != CLIENTMSG_HEADER_LENGTH)
		m->quirks |= CLIENTMSG_QUIRK_HEADER;
	if (parse_type(m->type, typ) != 0)
		return PH_ERR_INVALID;
	if (m->created_ms == 0)
		return PH_ERR_INVALID;
	/* spec 3.2: undo the swap of the two halves. */
	memcpy(m->message_id, id + 8, 8);
	memcpy(m->message_id + 8, id, 8);
	m->header_length = hl;
	m->payload_length = plen;
	m->payload_len = n - off;
	/* Never NULL, even when empty: callers may memcpy from it. */
	m->payload = frame + off;
	return 0;
}

int
clientmsg_peek(struct clientmsg *m, const uint8_t *frame, size_t n,
    size_t max_payload)
{
	return decode_header(m, frame, n, max_payload, 1);
}

int
clientmsg_decode(struct clientmsg *m, const uint8_t *frame, size_t n,
    size_t max_payload)
{
	uint8_t md[DIGEST_LEN];
	int rc;

	if ((rc = decode_header(m, frame, n, max_payload, 0)) != 0)
		return rc;
	if (clientmsg_sha256(m->payload, m->payload_len, md) != 0)
		return PH_ERR_CRYPTO;
	if (CRYPTO_memcmp(md, frame + OFF_DIGEST, DIGEST_LEN) != 0) {
		memset(m, 0, sizeof(*m));
		return PH_ERR_DIGEST;
	}
	return 0;
}

int
clientmsg_decode_lenient(struct clientmsg *m, const uint8_t *frame,
    size_t n, size_t max_payload)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t md[DIGEST_LEN];
	char h[DIGEST_LEN];
	size_t i;
	int rc;

	if ((rc = decode_header(m, frame, n, max_payload, 1)) != 0)
		return rc;
	if (clientmsg_sha256(m->payload, m->payload_len, md) != 0)
		return PH_ERR_CRYPTO;
	if (CRYPTO_memcmp(md, frame + OFF_DIGEST, DIGEST_LEN) == 0)
		return 0;
	m->quirks |= CLIENTMSG_QUIRK_DIGEST;
	/* The first 32 characters of the lower-case hex digest: what one
	 * JavaScript client writes (spec 3.7). Named apart in the logs. */
	for (i = 0; i < DIGEST_LEN / 2; i++) {
		h[2 * i] = hex[md[i] >> 4];
		h[2 * i + 1] = hex[md[i] & 0x0f];
	}
	if (CRYPTO_memcmp(h, frame + OFF_DIGEST, DIGEST_LEN) == 0)
		m->quirks |= CLIENTMSG_QUIRK_DIGEST_HEX;
	return 0;
}
