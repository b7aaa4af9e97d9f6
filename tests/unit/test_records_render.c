/* records_render: the .cast and .log of a record: the seed's AAFFHHJJ
 * typed-and-erased check, escapes removed, UTF-8 repaired (and sequences
 * split across frames joined), resizes and metadata, and damaged,
 * truncated or random records rendered without a read past their end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/record.h"
#include "server/records_render.h"

static void
header(struct buf *b)
{
	struct record_header h;

	memset(&h, 0, sizeof(h));
	snprintf(h.session_id, sizeof(h.session_id), "alice-0123456789abcdef0");
	snprintf(h.instance_id, sizeof(h.instance_id), "mi-0123456789abcdef0");
	snprintf(h.session_type, sizeof(h.session_type), "Standard_Stream");
	snprintf(h.run_as, sizeof(h.run_as), "ssm-user");
	h.start_ms = 1750000000123LL;
	h.width = 132;
	h.height = 43;
	assert_int_equal(record_header_encode(&h, b), 0);
}

static void
fr(struct buf *b, char type, uint64_t t, const char *s)
{
	assert_int_equal(record_frame_encode(b, type, t, s, strlen(s)), 0);
}

/* The seed's Step 3 as a shell session records it. */
static void
seed_record(struct buf *b)
{
	const char *typed = "AAFFHHJJ";
	uint64_t t = 1000;
	char c[2] = { 0, 0 };
	int i;

	header(b);
	fr(b, 'o', t, "\x1b]0;ssm-user@host: ~\x07\x1b[01;32mssm-user@host"
	    "\x1b[00m:~$ ");
	for (i = 0; typed[i] != '\0'; i++) {
		c[0] = typed[i];
		fr(b, 'i', t += 100000, c);
		fr(b, 'o', t += 1000, c);
	}
	for (i = 0; i < 8; i++) {
		fr(b, 'i', t += 100000, "\x7f");
		fr(b, 'o', t += 1000, "\b\x1b[K");
	}
	fr(b, 'r', t += 10, "100x30");
	fr(b, 'i', t += 100000, "whoami\r");
	fr(b, 'o', t += 1000, "whoami\r\n");
	fr(b, 'o', t += 1000, "ssm-user\r\n");
	/* "é" cut in two by the frames, then bytes that are not UTF-8. */
	fr(b, 'o', t += 10, "caf\xc3");
	fr(b, 'o', t += 10, "\xa9 \xff\xfe!\r\n");
	fr(b, 'i', t += 10, "exit\r");
	fr(b, 'm', t += 10, "{\"event\":\"end\",\"status\":\"Terminated\"}");
}

static char *
render(int cast, const uint8_t *p, size_t n, struct render_stats *st,
    int *rc, size_t *outlen)
{
	char *mem = NULL, *out;
	size_t len = 0;
	FILE *fp = open_memstream(&mem, &len);

	assert_non_null(fp);
	*rc = cast ? records_render_cast(p, n, fp, st) :
	    records_render_log(p, n, fp, st);
	fclose(fp);
	if (outlen != NULL)
		*outlen = len;
	out = malloc(len + 1);
	assert_non_null(out);
	memcpy(out, mem, len);
	out[len] = '\0';
	free(mem);
	return out;
}

static void
test_log_seed(void **state)
{
	struct render_stats st;
	struct buf b;
	char *s, *a, *w, *u;
	int rc;

	(void)state;
	buf_init(&b, 0);
	seed_record(&b);
	s = render(0, b.data, b.len, &st, &rc, NULL);
	assert_int_equal(rc, 0);
	assert_false(st.damaged);
	assert_false(st.partial);
	a = strstr(s, "AAFFHHJJ");
	w = strstr(s, "whoami");
	u = strstr(s, "ssm-user\n");
	assert_non_null(a);
	assert_non_null(w);
	assert_non_null(u);
	assert_true((size_t)(a - s) < (size_t)(w - s));
	assert_true((size_t)(w - s) < (size_t)(u - s));
	assert_null(strchr(s, 0x1b));
	assert_null(strchr(s, '\b'));
	assert_null(strchr(s, '\r'));
	assert_null(strstr(s, "ssm-user@host: ~"));   /* the OSC title */
	assert_non_null(strstr(s, "ssm-user@host:~$ AAFFHHJJ"));
	assert_non_null(strstr(s, "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd!\n"));
	assert_non_null(strstr(s, "\n[porthole] {\"event\":\"end\","));
	free(s);
	buf_free(&b);
}

static void
test_cast_seed(void **state)
{
	struct render_stats st;
	json_error_t jerr;
	json_t *h, *ev;
	struct buf b;
	char *s, *line, *save = NULL;
	int rc, n = 0, saw_r = 0, saw_cafe = 0, saw_m = 0;
	double last = 0;
	size_t typed = 0;

	(void)state;
	buf_init(&b, 0);
	seed_record(&b);
	s = render(1, b.data, b.len, &st, &rc, NULL);
	assert_int_equal(rc, 0);
	line = strtok_r(s, "\n", &save);
	h = json_loads(line, 0, &jerr);
	assert_non_null(h);
	assert_int_equal(json_integer_value(json_object_get(h, "version")), 2);
	assert_int_equal(json_integer_value(json_object_get(h, "width")), 132);
	assert_int_equal(json_integer_value(json_object_get(h, "height")), 43);
	assert_int_equal(json_integer_value(json_object_get(h, "timestamp")),
	    1750000000);
	json_decref(h);
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		const char *code, *text;
		double t;

		ev = json_loads(line, 0, &jerr);
		assert_non_null(ev);
		assert_int_equal(json_array_size(ev), 3);
		t = json_number_value(json_array_get(ev, 0));
		assert_true(t >= last);
		last = t;
		code = json_string_value(json_array_get(ev, 1));
		text = json_string_value(json_array_get(ev, 2));
		assert_non_null(code);
		assert_non_null(text);
		if (strcmp(code, "i") == 0 && strlen(text) == 1 &&
		    text[0] == "AAFFHHJJ"[typed])
			typed++;
		if (strcmp(code, "r") == 0) {
			assert_string_equal(text, "100x30");
			saw_r = 1;
		}
		if (strcmp(code, "o") == 0 && strstr(text, "\xc3\xa9 "
		    "\xef\xbf\xbd\xef\xbf\xbd!") != NULL)
			saw_cafe = 1;
		if (strcmp(code, "m") == 0)
			saw_m = 1;
		json_decref(ev);
		n++;
	}
	assert_int_equal(typed, 8);
	assert_true(saw_r && saw_cafe && saw_m);
	assert_true(n > 30);
	free(s);
	buf_free(&b);
}

static void
fix(const char *in, size_t n, int flush, const char *want, size_t wlen)
{
	struct utf8_fix u;
	struct buf b;

	memset(&u, 0, sizeof(u));
	buf_init(&b, 0);
	assert_int_equal(utf8_fix_append(&u, (const uint8_t *)in, n, flush,
	    &b), 0);
	assert_int_equal(b.len, wlen);
	assert_memory_equal(b.data, want, b.len);
	buf_free(&b);
}

#define R "\xef\xbf\xbd"
#define FIX(in, flush, want) \
	fix(in, sizeof(in) - 1, flush, want, sizeof(want) - 1)

static void
test_utf8_fix(void **state)
{
	struct utf8_fix u;
	struct buf b;

	(void)state;
	FIX("abc", 1, "abc");
	FIX("\xc0\x80", 1, R R);                 /* overlong */
	FIX("\xed\xa0\x80", 1, R R R);           /* surrogate */
	FIX("\xf4\x90\x80\x80", 1, R R R R);     /* past U+10FFFF */
	FIX("\xe2\x82", 1, R);                   /* cut, stream ends */
	FIX("\xe2\x82x", 0, R "x");              /* cut by a byte */
	FIX("\xf0\x9f\x98\x80", 1, "\xf0\x9f\x98\x80");
	FIX("a\0b", 1, "a\0b");
	/* Held across calls, then completed. */
	memset(&u, 0, sizeof(u));
	buf_init(&b, 0);
	assert_int_equal(utf8_fix_append(&u, (const uint8_t *)"x\xe2", 2, 0,
	    &b), 0);
	assert_int_equal(u.nheld, 1);
	assert_int_equal(utf8_fix_append(&u, (const uint8_t *)"\x82", 1, 0,
	    &b), 0);
	assert_int_equal(u.nheld, 2);
	assert_int_equal(utf8_fix_append(&u, (const uint8_t *)"\xac", 1, 0,
	    &b), 0);
	assert_int_equal(u.nheld, 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "x\xe2\x82\xac", 4);
	buf_free(&b);
}

static void
test_garbage(void **state)
{
	struct render_stats st;
	uint8_t junk[512], *copy;
	unsigned seed = 4242;
	struct buf b;
	size_t i, cut, len;
	char *s;
	int rc, k;

	(void)state;
	/* Not a record at all. */
	memset(junk, 'x', sizeof(junk));
	s = render(1, junk, sizeof(junk), &st, &rc, &len);
	assert_int_equal(rc, PH_ERR_INVALID);
	assert_int_equal(len, 0);
	free(s);
	s = render(0, junk, 0, &st, &rc, NULL);
	assert_int_equal(rc, PH_ERR_INVALID);
	free(s);

	buf_init(&b, 0);
	seed_record(&b);
	/* Every prefix: a clean end or a partial last frame, never more. */
	for (cut = 0; cut <= b.len; cut++) {
		copy = malloc(cut + 1);
		assert_non_null(copy);
		memcpy(copy, b.data, cut);
		for (k = 0; k < 2; k++) {
			s = render(k, copy, cut, &st, &rc, NULL);
			assert_true(rc == 0 || rc == PH_ERR_INVALID);
			free(s);
		}
		free(copy);
	}
	/* Random damage after the header. */
	for (i = 0; i < 2000; i++) {
		copy = malloc(b.len);
		assert_non_null(copy);
		memcpy(copy, b.data, b.len);
		for (k = 0; k < 4; k++)
			copy[rand_r(&seed) % b.len] = (uint8_t)rand_r(&seed);
		s = render((int)(i & 1), copy, b.len, &st, &rc, NULL);
		assert_true(rc == 0 || rc == PH_ERR_INVALID);
		free(s);
		free(copy);
	}
	buf_free(&b);
}

static void
log_of(const char *const *outputs, const char *want)
{
	struct render_stats st;
	struct buf b;
	char *s;
	int rc, i;

	buf_init(&b, 0);
	header(&b);
	for (i = 0; outputs[i] != NULL; i++)
		fr(&b, 'o', (uint64_t)i, outputs[i]);
	s = render(0, b.data, b.len, &st, &rc, NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(s, want);
	free(s);
	buf_free(&b);
}

/* Line ends: CR LF is one, a blank line stays, bash's redraw after Enter
 * adds none, a progress meter's CR ends its lines. */
static void
test_log_line_ends(void **state)
{
	static const char *const blank[] = { "a\r\n\r\nb\r", "\n", NULL };
	static const char *const bash[] = { "ls\r\n\x1b[?2004l\r", "x\r\n",
	    NULL };
	static const char *const meter[] = { "10%\r", "50%\r100%\r\n", NULL };
	static const char *const tabs[] = { "a\tb\x07\x7f\x1b(Bc\x1bPq\x1b\\d",
	    NULL };

	(void)state;
	log_of(blank, "a\n\nb\n");
	log_of(bash, "ls\nx\n");
	log_of(meter, "10%\n50%\n100%\n");
	log_of(tabs, "a\tbcd");
}

/* An escape sequence that never ends swallows a bounded amount. */
static void
test_unterminated_escape(void **state)
{
	struct render_stats st;
	struct buf b;
	char big[300], *s;
	int rc;

	(void)state;
	buf_init(&b, 0);
	header(&b);
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fr(&b, 'o', 1, "\x1b[");
	fr(&b, 'o', 2, big);
	fr(&b, 'o', 3, "visible");
	s = render(0, b.data, b.len, &st, &rc, NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(s, "visible"));
	free(s);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_seed),
		cmocka_unit_test(test_cast_seed),
		cmocka_unit_test(test_utf8_fix),
		cmocka_unit_test(test_log_line_ends),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_unterminated_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
