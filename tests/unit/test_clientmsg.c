/* clientmsg: the golden vector of spec 3.2, round trips, every rejection of
 * spec 3.7 [R], and random frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/uuid.h"

#include <openssl/evp.h>

#define MAXP ((size_t)64 << 10)

/* spec 3.2: produced by the official plugin's serializer. */
static const uint8_t golden[123] = {
	0x00, 0x00, 0x00, 0x74, 0x69, 0x6e, 0x70, 0x75,
	0x74, 0x5f, 0x73, 0x74, 0x72, 0x65, 0x61, 0x6d,
	0x5f, 0x64, 0x61, 0x74, 0x61, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xa5, 0x08, 0xb5, 0xf0, 0x73, 0xf3, 0x1b, 0x16,
	0xdd, 0x01, 0xe5, 0x6b, 0xff, 0x48, 0x48, 0x3e,
	0x1d, 0x88, 0x7c, 0xe0, 0xf8, 0x67, 0x2e, 0x49,
	0x14, 0xd9, 0x00, 0x0e, 0x80, 0x1c, 0xd7, 0x4e,
	0xcd, 0x80, 0x5d, 0xd9, 0x36, 0x6c, 0x0b, 0xc4,
	0x2d, 0xc1, 0x6a, 0xdc, 0x01, 0x97, 0xdc, 0x2f,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03,
	0x6c, 0x73, 0x0d,
};
static const char golden_id[] = "dd01e56b-ff48-483e-a508-b5f073f31b16";

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A valid frame with an n-byte payload in b (freed by the caller). */
static void
make_frame(struct buf *b, size_t n)
{
	uint8_t id[16], *p;
	size_t i;

	p = malloc(n ? n : 1);
	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + 3);
	uuid_v4(id);
	buf_init(b, 0);
	assert_int_equal(clientmsg_encode(b, MT_OUTPUT_STREAM, 5, 0, id,
	    PT_OUTPUT, p, n), 0);
	free(p);
}

static void
test_uuid(void **state)
{
	uint8_t id[16], back[16];
	char s[UUID_STR_LEN], t[UUID_STR_LEN];
	int i;

	(void)state;
	for (i = 0; i < 100; i++) {
		uuid_v4(id);
		assert_int_equal(id[6] >> 4, 4);
		assert_int_equal(id[8] & 0xc0, 0x80);
		uuid_format(id, s);
		assert_int_equal(strlen(s), 36);
		assert_int_equal(uuid_parse(s, back), 0);
		assert_memory_equal(id, back, 16);
	}
	uuid_v4_str(s);
	uuid_v4_str(t);
	assert_string_not_equal(s, t);
	assert_int_equal(uuid_parse(golden_id, id), 0);
	assert_int_equal(id[0], 0xdd);
	assert_int_equal(id[15], 0x16);
	assert_int_equal(uuid_parse("DD01E56B-FF48-483E-A508-B5F073F31B16",
	    back), 0);
	assert_memory_equal(id, back, 16);
	uuid_format(back, s);
	assert_string_equal(s, golden_id);
	assert_int_equal(uuid_parse("dd01e56b-ff48-483e-a508-b5f073f31b1",
	    id), PH_ERR_INVALID);
	assert_int_equal(uuid_parse("dd01e56b-ff48-483e-a508-b5f073f31b166",
	    id), PH_ERR_INVALID);
	assert_int_equal(uuid_parse("dd01e56bff48-483e-a508-b5f073f31b16x",
	    id), PH_ERR_INVALID);
	assert_int_equal(uuid_parse("gd01e56b-ff48-483e-a508-b5f073f31b16",
	    id), PH_ERR_INVALID);
	assert_int_equal(uuid_parse("", id), PH_ERR_INVALID);
	assert_int_equal(uuid_parse(NULL, id), PH_ERR_INVALID);
}

static void
test_golden_encode(void **state)
{
	uint8_t id[16];
	struct buf b;

	(void)state;
	assert_int_equal(uuid_parse(golden_id, id), 0);
	buf_init(&b, 0);
	assert_int_equal(clientmsg_encode_at(&b, MT_INPUT_STREAM,
	    1700000000000ULL, 7, 0, id, PT_OUTPUT, "ls\r", 3), 0);
	assert_int_equal(b.len, sizeof(golden));
	assert_memory_equal(b.data, golden, sizeof(golden));
	/* Appending keeps what was there. */
	assert_int_equal(clientmsg_encode_at(&b, MT_INPUT_STREAM,
	    1700000000000ULL, 7, 0, id, PT_OUTPUT, "ls\r", 3), 0);
	assert_int_equal(b.len, 2 * sizeof(golden));
	assert_memory_equal(b.data + sizeof(golden), golden, sizeof(golden));
	buf_free(&b);
}

static void
test_golden_decode(void **state)
{
	struct clientmsg m;
	char s[UUID_STR_LEN];

	(void)state;
	assert_int_equal(clientmsg_decode(&m, golden, sizeof(golden), MAXP), 0);
	assert_string_equal(m.type, MT_INPUT_STREAM);
	assert_int_equal(m.schema_version, 1);
	assert_int_equal(m.created_ms, 1700000000000ULL);
	assert_int_equal(m.seq, 7);
	assert_int_equal(m.flags, 0);
	uuid_format(m.message_id, s);
	assert_string_equal(s, golden_id);
	assert_int_equal(m.payload_type, PT_OUTPUT);
	assert_int_equal(m.payload_len, 3);
	assert_ptr_equal(m.payload, golden + 120);
	assert_memory_equal(m.payload, "ls\r", 3);
	assert_int_equal(clientmsg_peek(&m, golden, sizeof(golden), MAXP), 0);
	assert_string_equal(m.type, MT_INPUT_STREAM);
	assert_int_equal(m.seq, 7);
}

static void
test_round_trips(void **state)
{
	static const size_t sizes[] = { 1, 1024, 65536 };
	static const char *types[] = { MT_INPUT_STREAM, MT_OUTPUT_STREAM,
	    MT_ACKNOWLEDGE, MT_CHANNEL_CLOSED, MT_START_PUBLICATION,
	    MT_AGENT_TASK_ACK, "x", "abcdefghijklmnopqrstuvwxyz012345" };
	uint8_t id[16], *p;
	struct clientmsg m;
	struct buf b;
	uint32_t pt;
	size_t si, ti, i;
	int64_t seq;

	(void)state;
	p = malloc(65536);
	assert_non_null(p);
	for (i = 0; i < 65536; i++)
		p[i] = (uint8_t)(i ^ (i >> 8));
	for (pt = PT_NONE; pt <= PT_EXIT_CODE; pt++) {
		for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
			ti = (pt + si) % (sizeof(types) / sizeof(types[0]));
			seq = (int64_t)pt * 1000003 + (int64_t)si;
			if (pt == PT_EXIT_CODE)
				seq = INT64_MAX;
			uuid_v4(id);
			buf_init(&b, 0);
			assert_int_equal(clientmsg_encode(&b, types[ti], seq,
			    pt & 3, id, pt, p, sizes[si]), 0);
			assert_int_equal(b.len, 120 + sizes[si]);
			assert_int_equal(clientmsg_decode(&m, b.data, b.len,
			    MAXP), 0);
			assert_string_equal(m.type, types[ti]);
			assert_int_equal(m.seq, seq);
			assert_int_equal(m.flags, pt & 3);
			assert_int_equal(m.payload_type, pt);
			assert_int_equal(m.schema_version, 1);
			assert_true(m.created_ms > 1600000000000ULL);
			assert_memory_equal(m.message_id, id, 16);
			assert_int_equal(m.payload_len, sizes[si]);
			assert_memory_equal(m.payload, p, sizes[si]);
			buf_free(&b);
		}
	}
	/* Negative sequence numbers survive (int64 on the wire). */
	buf_init(&b, 0);
	assert_int_equal(clientmsg_encode(&b, MT_ACKNOWLEDGE, -2, 3, id,
	    PT_NONE, "{}", 2), 0);
	assert_int_equal(clientmsg_decode(&m, b.data, b.len, MAXP), 0);
	assert_int_equal(m.seq, -2);
	assert_int_equal(m.flags, 3);
	buf_free(&b);
	free(p);
}

static void
test_encode_rejects(void **state)
{
	uint8_t id[16] = { 0 };
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(clientmsg_encode(&b, "", 0, 0, id, 0, "x", 1),
	    PH_ERR_INVALID);
	assert_int_equal(clientmsg_encode(&b,
	    "abcdefghijklmnopqrstuvwxyz0123456", 0, 0, id, 0, "x", 1),
	    PH_ERR_INVALID);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	/* A buffer limit below the frame size fails cleanly. */
	buf_init(&b, 150);
	assert_int_equal(clientmsg_encode(&b, MT_ACKNOWLEDGE, 0, 0, id, 0,
	    "0123456789012345678901234567890123456789", 40), PH_ERR_TOOBIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(clientmsg_encode(&b, MT_ACKNOWLEDGE, 0, 0, id, 0,
	    "0123456789", 10), 0);
	assert_int_equal(b.len, 130);
	buf_free(&b);
}

static void
test_decode_lengths(void **state)
{
	struct clientmsg m;
	uint8_t f[200];
	struct buf b;
	size_t n;

	(void)state;
	/* Shorter than the fixed 120 bytes, including 116..119. */
	for (n = 0; n < 120; n++) {
		assert_int_equal(clientmsg_decode(&m, golden, n, MAXP),
		    PH_ERR_SHORT);
		assert_int_equal(clientmsg_peek(&m, golden, n, MAXP),
		    PH_ERR_SHORT);
	}
	assert_int_equal(clientmsg_decode(&m, NULL, 0, MAXP), PH_ERR_SHORT);
	/* HeaderLength other than 116 (120 is the classic mistake). */
	memcpy(f, golden, sizeof(golden));
	put_be32(f, 120);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(golden), MAXP),
	    PH_ERR_INVALID);
	put_be32(f, 0);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(golden), MAXP),
	    PH_ERR_INVALID);
	/* PayloadLength larger, then smaller, than the frame carries. */
	memcpy(f, golden, sizeof(golden));
	put_be32(f + 116, 4);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(golden), MAXP),
	    PH_ERR_INVALID);
	/* The relay forwards what the agent accepts (spec 3.7 [R]). */
	assert_int_equal(clientmsg_peek(&m, f, sizeof(golden), MAXP), 0);
	assert_int_equal(m.quirks, CLIENTMSG_QUIRK_LENGTH);
	assert_int_equal(m.payload_len, 3);
	put_be32(f + 116, 2);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(golden), MAXP),
	    PH_ERR_INVALID);
	/* A frame one byte longer than its PayloadLength says. */
	memcpy(f, golden, sizeof(golden));
	f[sizeof(golden)] = 0;
	assert_int_equal(clientmsg_decode(&m, f, sizeof(golden) + 1, MAXP),
	    PH_ERR_INVALID);
	/* 100 MB claimed by a 123-byte frame: refused, nothing allocated
	 * (ASan would report a huge allocation). */
	memcpy(f, golden, sizeof(golden));
	put_be32(f + 116, 100u << 20);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(golden), MAXP),
	    PH_ERR_INVALID);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(golden), SIZE_MAX),
	    PH_ERR_INVALID);
	put_be32(f + 116, UINT32_MAX);
	assert_int_equal(clientmsg_peek(&m, f, sizeof(golden), SIZE_MAX), 0);
	assert_int_equal(m.payload_len, 3);
	assert_int_equal(clientmsg_decode_lenient(&m, f, sizeof(golden),
	    SIZE_MAX), 0);
	assert_int_equal(m.payload_len, 3);
	/* A 120-byte frame with an empty payload is valid. */
	buf_init(&b, 0);
	assert_int_equal(clientmsg_encode(&b, MT_START_PUBLICATION, 0, 3,
	    (const uint8_t *)"0123456789abcdef", 0, NULL, 0), 0);
	assert_int_equal(b.len, 120);
	assert_int_equal(clientmsg_decode(&m, b.data, b.len, MAXP), 0);
	assert_int_equal(m.payload_len, 0);
	assert_non_null(m.payload);
	buf_free(&b);
}

static void
test_decode_too_big(void **state)
{
	struct clientmsg m;
	struct buf b;

	(void)state;
	make_frame(&b, 65537);
	assert_int_equal(clientmsg_decode(&m, b.data, b.len, MAXP),
	    PH_ERR_TOOBIG);
	assert_int_equal(clientmsg_peek(&m, b.data, b.len, MAXP),
	    PH_ERR_TOOBIG);
	assert_int_equal(clientmsg_decode(&m, b.data, b.len, MAXP + 1), 0);
	buf_free(&b);
	make_frame(&b, 65536);
	assert_int_equal(clientmsg_decode(&m, b.data, b.len, MAXP), 0);
	assert_int_equal(clientmsg_decode(&m, b.data, b.len, 100),
	    PH_ERR_TOOBIG);
	buf_free(&b);
}

static void
test_decode_digest(void **state)
{
	struct clientmsg m;
	struct buf b;

	(void)state;
	make_frame(&b, 1024);
	/* One payload bit. */
	b.data[120 + 512] ^= 0x10;
	assert_int_equal(clientmsg_decode(&m, b.data, b.len, MAXP),
	    PH_ERR_DIGEST);
	/* The relay path does not read the digest. */
	assert_int_equal(clientmsg_peek(&m, b.data, b.len, MAXP), 0);
	b.data[120 + 512] ^= 0x10;
	assert_int_equal(clientmsg_decode(&m, b.data, b.len, MAXP), 0);
	/* One digest bit. */
	b.data[80 + 31] ^= 0x01;
	assert_int_equal(clientmsg_decode(&m, b.data, b.len, MAXP),
	    PH_ERR_DIGEST);
	b.data[80 + 31] ^= 0x01;
	b.data[80] ^= 0x80;
	assert_int_equal(clientmsg_decode(&m, b.data, b.len, MAXP),
	    PH_ERR_DIGEST);
	buf_free(&b);
}

static void
test_decode_fields(void **state)
{
	struct clientmsg m;
	uint8_t f[sizeof(golden)];

	(void)state;
	/* Empty type: all spaces, all NULs, or a mix. */
	memcpy(f, golden, sizeof(golden));
	memset(f + 4, ' ', 32);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(f), MAXP),
	    PH_ERR_INVALID);
	memset(f + 4, 0, 32);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(f), MAXP),
	    PH_ERR_INVALID);
	assert_int_equal(clientmsg_peek(&m, f, sizeof(f), MAXP),
	    PH_ERR_INVALID);
	memset(f + 4, 0, 16);
	memset(f + 20, ' ', 16);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(f), MAXP),
	    PH_ERR_INVALID);
	/* NUL padding (other senders) and surrounding spaces are stripped. */
	memcpy(f, golden, sizeof(golden));
	memset(f + 4 + 17, 0, 15);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(f), MAXP), 0);
	assert_string_equal(m.type, MT_INPUT_STREAM);
	memset(f + 4, ' ', 32);
	memcpy(f + 4 + 3, "acknowledge", 11);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(f), MAXP), 0);
	assert_string_equal(m.type, MT_ACKNOWLEDGE);
	/* Control bytes in the type are refused (it gets logged). */
	f[4 + 5] = '\x1b';
	assert_int_equal(clientmsg_decode(&m, f, sizeof(f), MAXP),
	    PH_ERR_INVALID);
	f[4 + 5] = 0xc3;
	assert_int_equal(clientmsg_decode(&m, f, sizeof(f), MAXP),
	    PH_ERR_INVALID);
	/* CreatedDate 0. */
	memcpy(f, golden, sizeof(golden));
	memset(f + 40, 0, 8);
	assert_int_equal(clientmsg_decode(&m, f, sizeof(f), MAXP),
	    PH_ERR_INVALID);
	assert_int_equal(clientmsg_peek(&m, f, sizeof(f), MAXP),
	    PH_ERR_INVALID);
}

/* spec 3.7 [R]: the agent decodes clients' frames as AWS's agent does. */
static void
set_hex_prefix_digest(uint8_t *f, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t md[32];
	unsigned int len = 0;
	size_t i;

	assert_int_equal(EVP_Digest(f + 120, n - 120, md, &len, EVP_sha256(),
	    NULL), 1);
	for (i = 0; i < 16; i++) {
		f[80 + 2 * i] = (uint8_t)hex[md[i] >> 4];
		f[80 + 2 * i + 1] = (uint8_t)hex[md[i] & 0x0f];
	}
}

static void
test_lenient_digest(void **state)
{
	struct clientmsg m;
	struct buf b;

	(void)state;
	/* A correct frame: no quirk. */
	assert_int_equal(clientmsg_decode_lenient(&m, golden, sizeof(golden),
	    MAXP), 0);
	assert_int_equal(m.quirks, 0);
	assert_int_equal(m.payload_len, 3);
	assert_memory_equal(m.payload, "ls\r", 3);
	/* The first 32 characters of the hex SHA-256 in the digest field
	 * (a JavaScript client's frames). */
	make_frame(&b, 300);
	/* Our own sender: a real digest, an exact length. */
	assert_int_equal(clientmsg_decode_lenient(&m, b.data, b.len, MAXP), 0);
	assert_int_equal(m.quirks, 0);
	set_hex_prefix_digest(b.data, b.len);
	assert_int_equal(clientmsg_decode(&m, b.data, b.len, MAXP),
	    PH_ERR_DIGEST);
	assert_int_equal(clientmsg_decode_lenient(&m, b.data, b.len, MAXP), 0);
	assert_int_equal(m.quirks, CLIENTMSG_QUIRK_DIGEST |
	    CLIENTMSG_QUIRK_DIGEST_HEX);
	assert_int_equal(m.payload_len, 300);
	assert_int_equal(m.payload[0], 3);
	/* Any other wrong digest: tolerated, counted as such. */
	b.data[80] ^= 0x40;
	assert_int_equal(clientmsg_decode_lenient(&m, b.data, b.len, MAXP), 0);
	assert_int_equal(m.quirks, CLIENTMSG_QUIRK_DIGEST);
	memset(b.data + 80, 0, 32);
	assert_int_equal(clientmsg_decode_lenient(&m, b.data, b.len, MAXP), 0);
	assert_int_equal(m.quirks, CLIENTMSG_QUIRK_DIGEST);
	buf_free(&b);
}

static void
test_lenient_lengths(void **state)
{
	struct clientmsg m;
	uint8_t f[200];
	struct buf b;
	uint32_t lens[] = { 0, 2, 4, 1000, UINT32_MAX };
	size_t i, n;

	(void)state;
	/* PayloadLength is not trusted: the payload runs to the end of the
	 * message whatever it says. */
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memcpy(f, golden, sizeof(golden));
		put_be32(f + 116, lens[i]);
		assert_int_equal(clientmsg_decode_lenient(&m, f,
		    sizeof(golden), MAXP), 0);
		assert_int_equal(m.payload_len, 3);
		assert_int_equal(m.payload_length, lens[i]);
		assert_int_equal(m.quirks, CLIENTMSG_QUIRK_LENGTH);
		assert_int_equal(clientmsg_decode(&m, f, sizeof(golden),
		    MAXP), PH_ERR_INVALID);
	}
	/* Extra bytes after what PayloadLength says belong to the payload
	 * (the digest no longer matches: tolerated too). */
	memcpy(f, golden, sizeof(golden));
	f[sizeof(golden)] = 'x';
	assert_int_equal(clientmsg_decode_lenient(&m, f, sizeof(golden) + 1,
	    MAXP), 0);
	assert_int_equal(m.payload_len, 4);
	assert_memory_equal(m.payload, "ls\rx", 4);
	assert_int_equal(m.quirks, CLIENTMSG_QUIRK_LENGTH |
	    CLIENTMSG_QUIRK_DIGEST);
	/* HeaderLength: AWS's agent starts the payload at HL + 4. */
	memcpy(f, golden, sizeof(golden));
	put_be32(f, 118);
	assert_int_equal(clientmsg_decode_lenient(&m, f, sizeof(golden),
	    MAXP), 0);
	assert_int_equal(m.payload_len, 1);
	assert_int_equal(m.payload[0], '\r');
	assert_true(m.quirks & CLIENTMSG_QUIRK_HEADER);
	put_be32(f, (uint32_t)sizeof(golden) - 4); /* empty payload */
	assert_int_equal(clientmsg_decode_lenient(&m, f, sizeof(golden),
	    MAXP), 0);
	assert_int_equal(m.payload_len, 0);
	assert_non_null(m.payload);
	/* Still refused: HL 0, HL past the frame, short frames. */
	put_be32(f, 0);
	assert_int_equal(clientmsg_decode_lenient(&m, f, sizeof(golden),
	    MAXP), PH_ERR_INVALID);
	assert_int_equal(clientmsg_peek(&m, f, sizeof(golden), MAXP),
	    PH_ERR_INVALID);
	put_be32(f, (uint32_t)sizeof(golden) - 3);
	assert_int_equal(clientmsg_decode_lenient(&m, f, sizeof(golden),
	    MAXP), PH_ERR_INVALID);
	put_be32(f, UINT32_MAX);
	assert_int_equal(clientmsg_decode_lenient(&m, f, sizeof(golden),
	    MAXP), PH_ERR_INVALID);
	assert_int_equal(clientmsg_peek(&m, f, sizeof(golden), MAXP),
	    PH_ERR_INVALID);
	for (n = 0; n < 120; n++)
		assert_int_equal(clientmsg_decode_lenient(&m, golden, n,
		    MAXP), PH_ERR_SHORT);
	assert_int_equal(clientmsg_decode_lenient(&m, NULL, 0, MAXP),
	    PH_ERR_SHORT);
	/* Above the maximum, whatever PayloadLength claims; a small HL
	 * makes the payload longer and is bounded the same way. */
	make_frame(&b, 65537);
	put_be32(b.data + 116, 10);
	assert_int_equal(clientmsg_decode_lenient(&m, b.data, b.len, MAXP),
	    PH_ERR_TOOBIG);
	assert_int_equal(clientmsg_peek(&m, b.data, b.len, MAXP),
	    PH_ERR_TOOBIG);
	buf_free(&b);
	make_frame(&b, 65534);
	put_be32(b.data, 100);
	assert_int_equal(clientmsg_decode_lenient(&m, b.data, b.len, MAXP),
	    PH_ERR_TOOBIG);
	buf_free(&b);
}

static void
test_lenient_fields(void **state)
{
	struct clientmsg m;
	uint8_t f[sizeof(golden)];

	(void)state;
	/* Flags, PayloadType, SchemaVersion and sequence numbers are the
	 * session's business: any value decodes. */
	memcpy(f, golden, sizeof(golden));
	memset(f + 36, 0xff, 4);
	memset(f + 48, 0xff, 16);
	memset(f + 112, 0xff, 4);
	assert_int_equal(clientmsg_decode_lenient(&m, f, sizeof(f), MAXP), 0);
	assert_int_equal(m.payload_type, UINT32_MAX);
	assert_int_equal(m.seq, -1);
	/* Still refused: an empty or unprintable type, CreatedDate 0. */
	memcpy(f, golden, sizeof(golden));
	memset(f + 4, ' ', 32);
	assert_int_equal(clientmsg_decode_lenient(&m, f, sizeof(f), MAXP),
	    PH_ERR_INVALID);
	memcpy(f, golden, sizeof(golden));
	f[4 + 3] = '\x1b';
	assert_int_equal(clientmsg_decode_lenient(&m, f, sizeof(f), MAXP),
	    PH_ERR_INVALID);
	memcpy(f, golden, sizeof(golden));
	memset(f + 40, 0, 8);
	assert_int_equal(clientmsg_decode_lenient(&m, f, sizeof(f), MAXP),
	    PH_ERR_INVALID);
}

static uint64_t rng_state;

static uint64_t
rng(void)
{
	/* xorshift64*: deterministic, seeded per test. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void
test_random_frames(void **state)
{
	static const int results[] = { 0, PH_ERR_SHORT, PH_ERR_INVALID,
	    PH_ERR_TOOBIG, PH_ERR_DIGEST };
	uint8_t f[300];
	struct clientmsg m;
	size_t n, i, k;
	int rc, known, ok = 0;
	long iter;

	(void)state;
	rng_state = 0x9e3779b97f4a7c15ULL;
	for (iter = 0; iter < 100000; iter++) {
		n = (size_t)(rng() % 301);
		for (i = 0; i < n; i++)
			f[i] = (uint8_t)rng();
		/* Half the time make the header plausible so the later
		 * checks are reached too. */
		if ((iter & 1) && n >= 120) {
			put_be32(f, 116);
			put_be32(f + 116, (uint32_t)(n - 120));
			memcpy(f + 4, "output_stream_data              ", 32);
			f[40] |= 1;
		}
		rc = (iter & 2) ? clientmsg_peek(&m, f, n, 200) :
		    clientmsg_decode(&m, f, n, 200);
		known = 0;
		for (k = 0; k < sizeof(results) / sizeof(results[0]); k++)
			if (rc == results[k])
				known = 1;
		assert_true(known);
		if (rc == 0) {
			ok++;
			/* The lenient peek starts the payload at
			 * HeaderLength + 4 and runs it to the end. */
			assert_true(m.header_length > 0);
			assert_int_equal(m.payload_len,
			    n - m.header_length - 4);
			assert_true(m.payload_len <= 200);
			assert_true(strlen(m.type) > 0);
		}
		rc = clientmsg_decode_lenient(&m, f, n, 200);
		assert_true(rc == 0 || rc == PH_ERR_SHORT ||
		    rc == PH_ERR_INVALID || rc == PH_ERR_TOOBIG);
		if (rc == 0)
			assert_true(m.payload >= f && m.payload +
			    m.payload_len == f + n);
	}
	/* The plausible peeks get through. */
	assert_true(ok > 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_golden_encode),
		cmocka_unit_test(test_golden_decode),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_encode_rejects),
		cmocka_unit_test(test_decode_lengths),
		cmocka_unit_test(test_decode_too_big),
		cmocka_unit_test(test_decode_digest),
		cmocka_unit_test(test_decode_fields),
		cmocka_unit_test(test_random_frames),
		cmocka_unit_test(test_lenient_digest),
		cmocka_unit_test(test_lenient_lengths),
		cmocka_unit_test(test_lenient_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
