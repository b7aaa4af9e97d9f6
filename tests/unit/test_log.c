/* Unit tests for log.c: rate-limited lines (per-key token buckets) and
 * the summaries of what they suppressed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static uint64_t fake_now;
static FILE *out;

static uint64_t
fake_clock(void)
{
	return fake_now;
}

static int
setup(void **state)
{
	(void)state;
	out = tmpfile();
	assert_non_null(out);
	fake_now = 1000000;
	log_set_output(out);
	log_set_clock(fake_clock);
	log_set_level(LOG_INFO);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	log_set_output(NULL);
	log_set_clock(NULL);
	fclose(out);
	return 0;
}

/* Everything written since the last call. */
static char *
take_output(void)
{
	static char text[1 << 16];
	size_t n;

	fflush(out);
	rewind(out);
	n = fread(text, 1, sizeof(text) - 1, out);
	text[n] = '\0';
	rewind(out);
	assert_int_equal(ftruncate(fileno(out), 0), 0);
	return text;
}

static int
count(const char *text, const char *needle)
{
	int n = 0;

	while ((text = strstr(text, needle)) != NULL) {
		n++;
		text += strlen(needle);
	}
	return n;
}

static void
test_burst_then_suppressed(void **state)
{
	char *t;
	int i;

	(void)state;
	/* A flood of 20,000 in one instant: the burst and nothing more. */
	for (i = 0; i < 20000; i++)
		log_limited(LOG_WARN, "flood", "event=flood n=%d", i);
	t = take_output();
	assert_int_equal(count(t, "event=flood"), LOG_LIMIT_BURST);
	assert_int_equal(count(t, "suppressed="), 0);
	/* The summary names the key and how many were dropped. */
	log_flush_suppressed();
	t = take_output();
	assert_int_equal(count(t, "\n"), 1);
	assert_non_null(strstr(t, "event=log_suppressed key=flood "
	    "count=19990"));
	assert_non_null(strstr(t, "level=warn"));
	/* Reported once: a second flush has nothing to say. */
	log_flush_suppressed();
	assert_string_equal(take_output(), "");
}

static void
test_refill_and_inline_count(void **state)
{
	char *t;
	int i;

	(void)state;
	for (i = 0; i < LOG_LIMIT_BURST + 5; i++)
		log_limited(LOG_INFO, "refill", "event=refill n=%d", i);
	t = take_output();
	assert_int_equal(count(t, "event=refill"), LOG_LIMIT_BURST);
	/* One interval buys one line, which carries the count it follows. */
	fake_now += LOG_LIMIT_INTERVAL_MS;
	log_limited(LOG_INFO, "refill", "event=refill n=late");
	log_limited(LOG_INFO, "refill", "event=refill n=later");
	t = take_output();
	assert_int_equal(count(t, "event=refill"), 1);
	assert_non_null(strstr(t, "event=refill n=late suppressed=5\n"));
	/* A long quiet time refills the whole burst, not more. */
	fake_now += 3600 * 1000;
	for (i = 0; i < LOG_LIMIT_BURST * 2; i++)
		log_limited(LOG_INFO, "refill", "event=refill n=%d", i);
	t = take_output();
	assert_int_equal(count(t, "event=refill"), LOG_LIMIT_BURST);
	/* "later" and the second half of this burst. */
	assert_non_null(strstr(t, "suppressed=1\n"));
	log_flush_suppressed();
	t = take_output();
	assert_non_null(strstr(t, "key=refill count=10\n"));
	assert_non_null(strstr(t, "level=info"));
}

static void
test_keys_are_independent(void **state)
{
	char *t;
	int i;

	(void)state;
	for (i = 0; i < 100; i++)
		log_limited(LOG_WARN, "one", "event=one");
	log_limited(LOG_WARN, "two", "event=two");
	t = take_output();
	assert_int_equal(count(t, "event=one"), LOG_LIMIT_BURST);
	assert_int_equal(count(t, "event=two"), 1);
	/* Plain lines are never limited. */
	for (i = 0; i < 100; i++)
		log_warn("event=plain");
	t = take_output();
	assert_int_equal(count(t, "event=plain"), 100);
	/* Lines below the level are neither written nor counted. */
	log_set_level(LOG_WARN);
	for (i = 0; i < 100; i++)
		log_limited(LOG_INFO, "quiet", "event=quiet");
	log_flush_suppressed();
	t = take_output();
	assert_int_equal(count(t, "quiet"), 0);
	log_set_level(LOG_INFO);
}

static void
test_many_keys(void **state)
{
	static char keys[100][16];
	char *t;
	int i, j;

	(void)state;
	/* More keys than buckets: the extra ones share one, so the total
	 * stays bounded however many distinct keys there are. */
	for (i = 0; i < 100; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		for (j = 0; j < 50; j++)
			log_limited(LOG_WARN, keys[i], "event=%s", keys[i]);
	}
	t = take_output();
	assert_true(count(t, "\n") <= 100 * LOG_LIMIT_BURST);
	assert_true(count(t, "\n") >= 63 * LOG_LIMIT_BURST);
	log_flush_suppressed();
	t = take_output();
	assert_true(count(t, "event=log_suppressed") <= 64);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_burst_then_suppressed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_refill_and_inline_count,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_are_independent,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_keys, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
