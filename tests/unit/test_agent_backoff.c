/* agent backoff: reconnect delays start at 0.5-1 s, double, never exceed
 * the cap, and restart after a reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/backoff.h"

static void
test_bounds(void **state)
{
	struct agent_backoff b;
	unsigned d, i, k, lo, hi;

	(void)state;
	agent_backoff_init(&b, AGENT_BACKOFF_BASE_MS, AGENT_BACKOFF_CAP_MS);
	/* Extremes of the jitter. */
	assert_int_equal(agent_backoff_next_r(&b, 0), 500);
	agent_backoff_reset(&b);
	assert_int_equal(agent_backoff_next_r(&b, UINT32_MAX), 1000);
	assert_int_equal(agent_backoff_next_r(&b, UINT32_MAX), 2000);
	assert_int_equal(agent_backoff_next_r(&b, 0), 2000);
	/* Random draws over many rounds stay inside [d/2, d]. */
	for (k = 0; k < 50; k++) {
		agent_backoff_reset(&b);
		for (i = 0; i < 40; i++) {
			hi = AGENT_BACKOFF_BASE_MS << (i < 6 ? i : 6);
			if (hi > AGENT_BACKOFF_CAP_MS)
				hi = AGENT_BACKOFF_CAP_MS;
			lo = hi / 2;
			d = agent_backoff_next(&b);
			assert_true(d >= lo);
			assert_true(d <= hi);
			assert_true(d <= AGENT_BACKOFF_CAP_MS);
		}
	}
	/* After a reset the schedule starts over. */
	agent_backoff_reset(&b);
	d = agent_backoff_next(&b);
	assert_true(d >= 500 && d <= 1000);
}

static void
test_data_channel_schedule(void **state)
{
	struct agent_backoff b;
	unsigned total = 0, i;

	(void)state;
	/* Five tries with the longest delays stay around 30 s. */
	agent_backoff_init(&b, AGENT_BACKOFF_BASE_MS, AGENT_BACKOFF_CAP_MS);
	for (i = 0; i < 5; i++)
		total += agent_backoff_next_r(&b, UINT32_MAX);
	assert_int_equal(total, 1000 + 2000 + 4000 + 8000 + 16000);
}

static void
test_degenerate(void **state)
{
	struct agent_backoff b;
	unsigned i;

	(void)state;
	agent_backoff_init(&b, 0, 0);
	for (i = 0; i < 100; i++)
		assert_true(agent_backoff_next(&b) <= 1);
	agent_backoff_init(&b, 5000, 1000); /* cap below base */
	assert_true(agent_backoff_next_r(&b, UINT32_MAX) <= 5000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_data_channel_schedule),
		cmocka_unit_test(test_degenerate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
