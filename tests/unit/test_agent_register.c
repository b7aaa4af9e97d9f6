/* agent register: --region without --endpoint names the endpoint as AWS's
 * agent derives it, https://ssm.REGION.amazonaws.com; anything that is
 * not a region name is refused rather than put into a URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "agent/register.h"
#include "common/err.h"

static void
test_region_endpoint(void **state)
{
	char out[128];

	(void)state;
	assert_int_equal(agent_register_region_endpoint("us-east-1", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "https://ssm.us-east-1.amazonaws.com");
	assert_int_equal(agent_register_region_endpoint("eu-central-2", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "https://ssm.eu-central-2.amazonaws.com");
	assert_int_equal(agent_register_region_endpoint("us-gov-west-1",
	    out, sizeof(out)), 0);
	assert_string_equal(out, "https://ssm.us-gov-west-1.amazonaws.com");
}

static void
test_region_garbage(void **state)
{
	static const char *bad[] = {
		"", "-us-east-1", "us-east-1-", "US-EAST-1", "us_east_1",
		"us-east-1.evil.example", "us-east-1/x", "us east 1",
		"us-east-1@evil", "\xff\xfe", "us-east-1\n",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	char out[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(agent_register_region_endpoint(bad[i], out,
		    sizeof(out)), PH_ERR_INVALID);
	assert_int_equal(agent_register_region_endpoint(NULL, out,
	    sizeof(out)), PH_ERR_INVALID);
	/* Too small a buffer is an error, never a cut URL. */
	assert_int_equal(agent_register_region_endpoint("us-east-1", out,
	    20), PH_ERR_TOOBIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_region_endpoint),
		cmocka_unit_test(test_region_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
