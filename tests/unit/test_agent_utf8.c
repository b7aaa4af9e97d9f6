/* agent utf8: PTY output is cut so that no UTF-8 sequence is split across
 * two messages (spec 7.1); invalid bytes pass through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "agent/utf8.h"

#define U(s) ((const uint8_t *)(s))

static void
test_complete_len(void **state)
{
	/* "é" = c3 a9, "€" = e2 82 ac, "😀" = f0 9f 98 80 */
	(void)state;
	assert_int_equal(agent_utf8_complete_len(U(""), 0), 0);
	assert_int_equal(agent_utf8_complete_len(U("abc"), 3), 3);
	assert_int_equal(agent_utf8_complete_len(U("a\xc3\xa9"), 3), 3);
	assert_int_equal(agent_utf8_complete_len(U("a\xc3"), 2), 1);
	assert_int_equal(agent_utf8_complete_len(U("a\xe2"), 2), 1);
	assert_int_equal(agent_utf8_complete_len(U("a\xe2\x82"), 3), 1);
	assert_int_equal(agent_utf8_complete_len(U("a\xe2\x82\xac"), 4), 4);
	assert_int_equal(agent_utf8_complete_len(U("\xf0"), 1), 0);
	assert_int_equal(agent_utf8_complete_len(U("\xf0\x9f\x98"), 3), 0);
	assert_int_equal(agent_utf8_complete_len(U("x\xf0\x9f\x98\x80"), 5),
	    5);
	/* Invalid bytes are not held back. */
	assert_int_equal(agent_utf8_complete_len(U("a\xff"), 2), 2);
	assert_int_equal(agent_utf8_complete_len(U("a\x80"), 2), 2);
	assert_int_equal(agent_utf8_complete_len(U("\x80\x80\x80\x80"), 4),
	    4);
	assert_int_equal(agent_utf8_complete_len(U("a\xc0"), 2), 2);
	/* An ASCII byte after a lead byte ends the broken sequence. */
	assert_int_equal(agent_utf8_complete_len(U("\xe2" "a"), 2), 2);
	/* A 2-byte lead with too many continuations: nothing to hold. */
	assert_int_equal(agent_utf8_complete_len(U("\xc3\xa9\xa9"), 3), 3);
}

/* Feed a text in every split and check that concatenating the emitted
 * pieces gives the text back and that every piece but the last ends on a
 * character boundary. */
static void
test_every_split(void **state)
{
	const char *text = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80!";
	size_t len = strlen(text), cut, held, keep;
	uint8_t buf[64], out[64];
	size_t outn;

	(void)state;
	for (cut = 0; cut <= len; cut++) {
		outn = 0;
		memcpy(buf, text, cut);
		keep = agent_utf8_complete_len(buf, cut);
		memcpy(out + outn, buf, keep);
		outn += keep;
		held = cut - keep;
		assert_true(held <= 3);
		memmove(buf, buf + keep, held);
		memcpy(buf + held, text + cut, len - cut);
		keep = agent_utf8_complete_len(buf, held + len - cut);
		assert_int_equal(keep, held + len - cut);
		memcpy(out + outn, buf, keep);
		outn += keep;
		assert_int_equal(outn, len);
		assert_memory_equal(out, text, len);
	}
}

static void
test_chunk_len(void **state)
{
	uint8_t b[2048];

	(void)state;
	memset(b, 'a', sizeof(b));
	assert_int_equal(agent_utf8_chunk_len(b, 10, 1024), 10);
	assert_int_equal(agent_utf8_chunk_len(b, 2048, 1024), 1024);
	/* A 3-byte sequence at 1022..1024 straddles the 1024 cut. */
	b[1022] = 0xe2;
	b[1023] = 0x82;
	b[1024] = 0xac;
	assert_int_equal(agent_utf8_chunk_len(b, 2048, 1024), 1022);
	/* Ending exactly at 1024 is fine. */
	memset(b, 'a', sizeof(b));
	b[1021] = 0xe2;
	b[1022] = 0x82;
	b[1023] = 0xac;
	assert_int_equal(agent_utf8_chunk_len(b, 2048, 1024), 1024);
	/* Garbage continuation bytes do not move the cut. */
	memset(b, 0x80, sizeof(b));
	assert_int_equal(agent_utf8_chunk_len(b, 2048, 1024), 1024);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_complete_len),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_chunk_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
