/* record: encode/decode round trips, every prefix of a record reads as a
 * clean record or a partial last frame, garbage is refused without a read
 * past its end (the copies are exact-size heap blocks, so ASan sees it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/record.h"

static void
fill_header(struct record_header *h)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->session_id, sizeof(h->session_id), "alice-0123456789abcdef");
	snprintf(h->instance_id, sizeof(h->instance_id), "mi-0123456789abcdef0");
	snprintf(h->session_type, sizeof(h->session_type), "Standard_Stream");
	snprintf(h->run_as, sizeof(h->run_as), "ssm-user");
	h->start_ms = 1764892800123LL;
	h->width = 132;
	h->height = 43;
}

/* A record with a header and a few frames of every type in b. */
static void
make_record(struct buf *b, uint8_t *bin, size_t binlen)
{
	struct record_header h;
	size_t i;

	for (i = 0; i < binlen; i++)
		bin[i] = (uint8_t)(i * 131 + 7);
	fill_header(&h);
	assert_int_equal(record_header_encode(&h, b), 0);
	assert_int_equal(record_frame_encode(b, 'i', 10, "AAFFHHJJ", 8), 0);
	assert_int_equal(record_frame_encode(b, 'o', 20, bin, binlen), 0);
	assert_int_equal(record_frame_encode(b, 'r', 30, "80x24", 5), 0);
	assert_int_equal(record_frame_encode(b, 'o', 40, NULL, 0), 0);
	assert_int_equal(record_frame_encode(b, 'm', 50,
	    "{\"event\":\"end\"}", 15), 0);
}

static void
test_round_trip(void **state)
{
	struct record_header h, h2;
	struct record_reader r;
	struct record_frame f;
	struct buf b;
	uint8_t bin[1000];

	(void)state;
	buf_init(&b, 0);
	make_record(&b, bin, sizeof(bin));
	assert_memory_equal(b.data, RECORD_MAGIC, RECORD_MAGIC_LEN);
	fill_header(&h);
	record_reader_init(&r, b.data, b.len);
	assert_int_equal(record_read_header(&r, &h2), 0);
	assert_string_equal(h2.session_id, h.session_id);
	assert_string_equal(h2.instance_id, h.instance_id);
	assert_string_equal(h2.session_type, h.session_type);
	assert_string_equal(h2.run_as, h.run_as);
	assert_true(h2.start_ms == h.start_ms);
	assert_int_equal(h2.width, 132);
	assert_int_equal(h2.height, 43);

	assert_int_equal(record_read_frame(&r, &f), 1);
	assert_int_equal(f.type, 'i');
	assert_true(f.t_us == 10);
	assert_int_equal(f.len, 8);
	assert_memory_equal(f.data, "AAFFHHJJ", 8);
	assert_int_equal(record_read_frame(&r, &f), 1);
	assert_int_equal(f.type, 'o');
	assert_int_equal(f.len, sizeof(bin));
	assert_memory_equal(f.data, bin, sizeof(bin));
	assert_int_equal(record_read_frame(&r, &f), 1);
	assert_int_equal(f.type, 'r');
	assert_memory_equal(f.data, "80x24", 5);
	assert_int_equal(record_read_frame(&r, &f), 1);
	assert_int_equal(f.type, 'o');
	assert_int_equal(f.len, 0);
	assert_int_equal(record_read_frame(&r, &f), 1);
	assert_int_equal(f.type, 'm');
	assert_true(f.t_us == 50);
	assert_int_equal(record_read_frame(&r, &f), 0);
	assert_int_equal(r.partial, 0);
	assert_int_equal(r.off, b.len);
	assert_int_equal(record_read_frame(&r, &f), 0);
	buf_free(&b);
}

static void
test_encode_refusals(void **state)
{
	struct record_header h;
	struct buf b;
	uint8_t *big;

	(void)state;
	buf_init(&b, 64);
	assert_int_equal(record_frame_encode(&b, 'x', 0, "a", 1),
	    PH_ERR_INVALID);
	assert_int_equal(record_frame_encode(&b, 'o', 0, NULL, 1),
	    PH_ERR_INVALID);
	big = calloc(1, RECORD_FRAME_MAX + 1);
	assert_non_null(big);
	assert_int_equal(record_frame_encode(&b, 'o', 0, big,
	    RECORD_FRAME_MAX + 1), PH_ERR_INVALID);
	free(big);
	/* Past the buffer's maximum: nothing half-written. */
	assert_int_equal(record_frame_encode(&b, 'o', 0, "0123456789", 10), 0);
	assert_int_equal(b.len, RECORD_FRAME_HEAD + 10);
	assert_int_equal(record_frame_encode(&b, 'o', 0,
	    "0123456789012345678901234567890123456789", 40), PH_ERR_TOOBIG);
	assert_int_equal(b.len, RECORD_FRAME_HEAD + 10);
	buf_reset(&b);
	fill_header(&h);
	assert_int_not_equal(record_header_encode(&h, &b), 0);
	buf_free(&b);
}

/* Every prefix: the header reads or is short; frames end cleanly at a
 * frame boundary, otherwise the last one is partial. Each prefix is an
 * exact-size copy so a read past it is a heap overflow. */
static void
test_prefixes(void **state)
{
	struct record_header h;
	struct record_reader r;
	struct record_frame f;
	struct buf b;
	uint8_t bin[300], *copy;
	size_t n, bounds[8], nb = 0, i, end = 0;
	int rc, at_boundary, guard;

	(void)state;
	buf_init(&b, 0);
	make_record(&b, bin, sizeof(bin));
	/* The frame boundaries. */
	record_reader_init(&r, b.data, b.len);
	assert_int_equal(record_read_header(&r, &h), 0);
	bounds[nb++] = r.off;
	while (record_read_frame(&r, &f) == 1 && nb < 8)
		bounds[nb++] = r.off;
	assert_int_equal(nb, 6);

	for (n = 0; n <= b.len; n++) {
		copy = malloc(n ? n : 1);
		assert_non_null(copy);
		memcpy(copy, b.data, n);
		record_reader_init(&r, copy, n);
		rc = record_read_header(&r, &h);
		if (n < bounds[0]) {
			assert_int_equal(rc, PH_ERR_SHORT);
			assert_int_equal(r.partial, 1);
			free(copy);
			continue;
		}
		assert_int_equal(rc, 0);
		guard = 0;
		while ((rc = record_read_frame(&r, &f)) == 1 && guard++ < 10)
			assert_true(r.off <= n);
		assert_int_equal(rc, 0);
		at_boundary = 0;
		for (i = 0; i < nb; i++)
			if (bounds[i] == n)
				at_boundary = 1;
		assert_int_equal(r.partial, !at_boundary);
		end = r.off;
		assert_true(end <= n);
		free(copy);
	}
	assert_int_equal(end, b.len);
	buf_free(&b);
}

static int
header_rc(const char *text)
{
	struct record_header h;
	struct record_reader r;
	size_t n = strlen(text);
	uint8_t *copy;
	int rc;

	copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, text, n);
	record_reader_init(&r, copy, n);
	rc = record_read_header(&r, &h);
	free(copy);
	return rc;
}

static void
test_bad_headers(void **state)
{
	char big[RECORD_HEADER_MAX + 64];

	(void)state;
	assert_int_equal(header_rc("PHREC2\n{}\n"), PH_ERR_INVALID);
	assert_int_equal(header_rc("GET / HTTP/1.1\r\n\r\n"), PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\n{\"version\":1,\"session_id\":"
	    "\"s\"}\n"), 0);
	assert_int_equal(header_rc("PHREC1\n{\"version\":1,\"session_id\":"
	    "\"s\",\"future\":[1,2]}\n"), 0);
	assert_int_equal(header_rc("PHREC1\n{\"session_id\":\"s\"}\n"),
	    PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\n{\"version\":2,\"session_id\":"
	    "\"s\"}\n"), PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\n{\"version\":1}\n"),
	    PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\n[1]\n"), PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\nnot json\n"), PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\n\n"), PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\n{\"version\":1,\"session_id\":"
	    "\"s\",\"width\":-1}\n"), PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\n{\"version\":1,\"session_id\":"
	    "\"s\",\"width\":\"80\"}\n"), PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\n{\"version\":1,\"session_id\":"
	    "\"s\\u0000t\"}\n"), PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\n{\"version\":1,\"session_id\":"
	    "\"s\",\"instance_id\":\"0123456789012345678901234567890123"
	    "\"}\n"), PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\n{\"version\":1,\"session_id\":"
	    "\"s\",\"session_id\":\"t\"}\n"), PH_ERR_INVALID);
	/* No newline within the limit: too long, not "wait for more". */
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "PHREC1\n{", 8);
	assert_int_equal(header_rc(big), PH_ERR_INVALID);
	assert_int_equal(header_rc("PHREC1\n{\"version\""), PH_ERR_SHORT);
	assert_int_equal(header_rc(""), PH_ERR_SHORT);
}

static void
test_bad_frames(void **state)
{
	static const uint8_t bad_type[] = { 'x', 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0, 0, 0 };
	static const uint8_t too_long[] = { 'o', 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0x10, 0, 1, 'a' };
	static const uint8_t lying[] = { 'o', 0, 0, 0, 0, 0, 0, 0, 1,
	    0xff, 0xff, 0xff, 0xff, 'a', 'b' };
	struct record_reader r;
	struct record_frame f;
	uint8_t *copy;

	(void)state;
	record_reader_init(&r, bad_type, sizeof(bad_type));
	assert_int_equal(record_read_frame(&r, &f), PH_ERR_INVALID);
	record_reader_init(&r, too_long, sizeof(too_long));
	assert_int_equal(record_read_frame(&r, &f), PH_ERR_INVALID);
	copy = malloc(sizeof(lying));
	assert_non_null(copy);
	memcpy(copy, lying, sizeof(lying));
	record_reader_init(&r, copy, sizeof(lying));
	assert_int_equal(record_read_frame(&r, &f), PH_ERR_INVALID);
	/* A length within the limit but past the end: partial. */
	copy[9] = 0;
	copy[10] = 0;
	copy[11] = 0;
	copy[12] = 5;
	record_reader_init(&r, copy, sizeof(lying));
	assert_int_equal(record_read_frame(&r, &f), 0);
	assert_int_equal(r.partial, 1);
	assert_int_equal(r.off, 0);
	free(copy);
	record_reader_init(&r, NULL, 10);
	assert_int_equal(record_read_frame(&r, &f), 0);
}

/* Random bytes after a valid header: the reader ends, in a bounded number
 * of steps, without reading past the end. */
static void
test_garbage(void **state)
{
	struct record_header h;
	struct record_reader r;
	struct record_frame f;
	struct buf b;
	uint8_t *copy;
	uint32_t x = 12345;
	size_t hlen, n, i;
	int round, rc, steps;

	(void)state;
	buf_init(&b, 0);
	fill_header(&h);
	assert_int_equal(record_header_encode(&h, &b), 0);
	hlen = b.len;
	for (round = 0; round < 2000; round++) {
		b.len = hlen;
		x = x * 1103515245u + 12345u;
		n = (x >> 16) % 200;
		for (i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			/* Mostly valid types and small lengths. */
			if (i % 13 == 0)
				buf_append_u8(&b,
				    (uint8_t)"iorm?"[(x >> 16) % 5]);
			else
				buf_append_u8(&b, (uint8_t)((x >> 24) % 4));
		}
		copy = malloc(b.len);
		assert_non_null(copy);
		memcpy(copy, b.data, b.len);
		record_reader_init(&r, copy, b.len);
		assert_int_equal(record_read_header(&r, &h), 0);
		steps = 0;
		while ((rc = record_read_frame(&r, &f)) == 1) {
			assert_true(r.off <= b.len);
			assert_true(f.data == NULL ||
			    f.data + f.len <= copy + b.len);
			assert_true(++steps <= 200);
		}
		assert_true(rc == 0 || rc == PH_ERR_INVALID);
		free(copy);
	}
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_encode_refusals),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
