/* agent sysinfo: os-release parsing and the collected platform facts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "agent/sysinfo.h"

static void
parse(const char *text, char *name, size_t nl, char *ver, size_t vl)
{
	agent_osrelease_parse(text, strlen(text), name, nl, ver, vl);
}

static void
test_osrelease(void **state)
{
	char name[64], ver[16];

	(void)state;
	parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
	    "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n", name,
	    sizeof(name), ver, sizeof(ver));
	assert_string_equal(name, "Debian GNU/Linux");
	assert_string_equal(ver, "12");
	/* Bare and single-quoted values, CRLF, comments, escapes. */
	parse("# comment\r\nNAME=Alpine\r\nVERSION_ID='3.19.1'\r\n", name,
	    sizeof(name), ver, sizeof(ver));
	assert_string_equal(name, "Alpine");
	assert_string_equal(ver, "3.19.1");
	parse("NAME=\"a \\\"q\\\" b\"\nVERSION_ID=\n", name, sizeof(name),
	    ver, sizeof(ver));
	assert_string_equal(name, "a \"q\" b");
	assert_string_equal(ver, "");
	/* Keys that only start like ours do not count. */
	parse("NAMEX=1\nVERSION_ID_LIKE=2\nID=x", name, sizeof(name), ver,
	    sizeof(ver));
	assert_string_equal(name, "");
	assert_string_equal(ver, "");
	/* Truncation into small buffers, no terminator at the end, controls
	 * dropped, unterminated quote. */
	parse("VERSION_ID=\"1234567890123456789\"\nNAME=\"x\x01y", name,
	    sizeof(name), ver, sizeof(ver));
	assert_string_equal(ver, "123456789012345");
	assert_string_equal(name, "xy");
	parse("", name, sizeof(name), ver, sizeof(ver));
	assert_string_equal(name, "");
	parse("=\n==\nNAME", name, sizeof(name), ver, sizeof(ver));
	assert_string_equal(name, "");
}

static void
test_collect(void **state)
{
	struct agent_sysinfo si;

	(void)state;
	agent_sysinfo_collect(&si);
	assert_true(si.hostname[0] != '\0');
	assert_true(si.platform_name[0] != '\0');
	assert_true(si.ip_address[0] != '\0');
	assert_null(strchr(si.ip_address, ':'));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_osrelease),
		cmocka_unit_test(test_collect),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
