/* client escape: ssh's "~." rules as a pure state machine: at the start
 * of the session and after CR or LF only; "~." disconnects, "~?" asks for
 * help, "~~" sends one '~', "~x" sends both; a '~' split across reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "client/escape.h"
#include "common/err.h"

#define U8(s) ((const uint8_t *)(s))

/* Run the filter over s like the session does (continuing after events)
 * and record what would be sent and which events happened, as "D"/"H". */
static void
run(struct client_escape *e, const char *s, char *sent, char *events)
{
	enum client_escape_event ev;
	uint8_t out[256];
	size_t n = strlen(s), used, outlen = 0, ne = 0;
	const uint8_t *p = U8(s);

	while (n > 0) {
		used = client_escape_filter(e, p, n, out, &outlen, &ev);
		assert_true(used > 0 && used <= n);
		p += used;
		n -= used;
		if (ev == CLIENT_ESCAPE_DISCONNECT)
			events[ne++] = 'D';
		else if (ev == CLIENT_ESCAPE_HELP)
			events[ne++] = 'H';
		else
			assert_int_equal(n, 0);
	}
	events[ne] = '\0';
	memcpy(sent, out, outlen);
	sent[outlen] = '\0';
}

static void
check(const char *in, const char *want_sent, const char *want_events)
{
	struct client_escape e;
	char sent[256], events[32];

	client_escape_init(&e, '~');
	run(&e, in, sent, events);
	assert_string_equal(sent, want_sent);
	assert_string_equal(events, want_events);
}

static void
test_rules(void **state)
{
	(void)state;
	/* At the start of the session. */
	check("~.", "", "D");
	check("~?", "", "H");
	check("~~", "~", "");
	check("~x", "~x", "");
	/* After CR and after LF. */
	check("ls\r~.", "ls\r", "D");
	check("ls\n~.", "ls\n", "D");
	/* Not at the start of a line: plain bytes. */
	check("a~.", "a~.", "");
	check("a~?", "a~?", "");
	check("a~~", "a~~", "");
	/* "~~" leaves the line start: a following "~." is plain. */
	check("~~~.", "~~.", "");
	/* Help keeps the line start, so "~?~." disconnects. */
	check("~?~.", "", "HD");
	/* "~" then CR: both sent, and a new line starts. */
	check("~\r~.", "~\r", "D");
	check("echo hi\r~x\r~~\recho ~\r", "echo hi\r~x\r~\recho ~\r", "");
	/* Control bytes are ordinary. */
	check("\x03~.", "\x03~.", "");
	check("\x03\r~.", "\x03\r", "D");
}

static void
test_split_reads(void **state)
{
	struct client_escape e;
	enum client_escape_event ev;
	uint8_t out[8];
	size_t outlen = 0;

	(void)state;
	client_escape_init(&e, '~');
	/* A lone '~' is held until the next read decides. */
	assert_int_equal(client_escape_filter(&e, U8("~"), 1, out, &outlen,
	    &ev), 1);
	assert_int_equal(outlen, 0);
	assert_int_equal(ev, CLIENT_ESCAPE_NONE);
	assert_int_equal(client_escape_filter(&e, U8("."), 1, out, &outlen,
	    &ev), 1);
	assert_int_equal(ev, CLIENT_ESCAPE_DISCONNECT);
	assert_int_equal(outlen, 0);
	/* Held '~' released with the next byte: n + 1 bytes out. */
	client_escape_init(&e, '~');
	outlen = 0;
	(void)client_escape_filter(&e, U8("~"), 1, out, &outlen, &ev);
	assert_int_equal(client_escape_filter(&e, U8("y"), 1, out, &outlen,
	    &ev), 1);
	assert_int_equal(outlen, 2);
	assert_memory_equal(out, "~y", 2);
	/* The event stops the scan; the rest is filtered on the next call. */
	client_escape_init(&e, '~');
	outlen = 0;
	assert_int_equal(client_escape_filter(&e, U8("~?ab"), 4, out, &outlen,
	    &ev), 2);
	assert_int_equal(ev, CLIENT_ESCAPE_HELP);
	assert_int_equal(client_escape_filter(&e, U8("ab"), 2, out, &outlen,
	    &ev), 2);
	assert_int_equal(ev, CLIENT_ESCAPE_NONE);
	assert_memory_equal(out, "ab", 2);
}

static void
test_off_and_other_chars(void **state)
{
	struct client_escape e;
	char sent[256], events[32];

	(void)state;
	/* Off: every byte passes. */
	client_escape_init(&e, -1);
	run(&e, "~.~?~~", sent, events);
	assert_string_equal(sent, "~.~?~~");
	assert_string_equal(events, "");
	/* Another escape character. */
	client_escape_init(&e, 0x1d);  /* ^] */
	run(&e, "\x1d\x1d~.\x1d\x1d\r\x1d.", sent, events);
	/* At the start "^]^]" sends one; mid-line both. */
	assert_string_equal(sent, "\x1d~.\x1d\x1d\r");
	assert_string_equal(events, "D");
}

static void
test_parse_and_help(void **state)
{
	char help[512];
	int ch = 0;

	(void)state;
	assert_int_equal(client_escape_parse("none", &ch), 0);
	assert_int_equal(ch, -1);
	assert_int_equal(client_escape_parse("%", &ch), 0);
	assert_int_equal(ch, '%');
	assert_int_equal(client_escape_parse("^]", &ch), 0);
	assert_int_equal(ch, 0x1d);
	assert_int_equal(client_escape_parse("^a", &ch), 0);
	assert_int_equal(ch, 1);
	assert_int_equal(client_escape_parse("", &ch), PH_ERR_INVALID);
	assert_int_equal(client_escape_parse(" ", &ch), PH_ERR_INVALID);
	assert_int_equal(client_escape_parse("ab", &ch), PH_ERR_INVALID);
	assert_int_equal(client_escape_parse("^1", &ch), PH_ERR_INVALID);
	assert_int_equal(client_escape_parse(NULL, &ch), PH_ERR_INVALID);
	client_escape_help('~', help, sizeof(help));
	assert_string_equal(help, "Supported escape sequences:\r\n"
	    " ~.   - end the session (disconnect)\r\n"
	    " ~?   - this message\r\n"
	    " ~~   - send the escape character by typing it twice\r\n"
	    "(Note that escapes are only recognized immediately after "
	    "newline.)\r\n");
	client_escape_help(0x1d, help, sizeof(help));
	assert_non_null(strstr(help, " ^].   - end the session"));
	client_escape_name('~', help, 4);
	assert_string_equal(help, "~");
	client_escape_name(0x1d, help, 4);
	assert_string_equal(help, "^]");
	client_escape_name(0x7f, help, 4);
	assert_string_equal(help, "^?");
	client_escape_name(-1, help, 4);
	assert_string_equal(help, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_split_reads),
		cmocka_unit_test(test_off_and_other_chars),
		cmocka_unit_test(test_parse_and_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
