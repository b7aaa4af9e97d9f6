/* agent state: agent.json parsing with garbage, loading a state
 * directory, endpoint URLs, atomic file writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/state.h"
#include "common/err.h"

static int
parse(struct agent_state *st, const char *s)
{
	char err[256];

	memset(st, 0, sizeof(*st));
	return agent_state_parse(st, s, strlen(s), err, sizeof(err));
}

static void
test_parse_good(void **state)
{
	struct agent_state st;

	(void)state;
	assert_int_equal(parse(&st, "{\"InstanceId\":\"mi-0123456789abcdef0\","
	    "\"Endpoint\":\"https://porthole.example:8443/\","
	    "\"Region\":\"eu-west-1\"}"), 0);
	assert_string_equal(st.instance_id, "mi-0123456789abcdef0");
	assert_string_equal(st.ws_base, "wss://porthole.example:8443");
	assert_string_equal(st.region, "eu-west-1");
	assert_int_equal(st.sudoers_entry, 1);
	assert_int_equal(parse(&st, "{\"instanceid\":\"mi-1\",\"endpoint\":"
	    "\"https://[::1]:9\",\"SudoersEntry\":false}"), 0);
	assert_string_equal(st.ws_base, "wss://[::1]:9");
	assert_int_equal(st.sudoers_entry, 0);
	assert_string_equal(st.region, "");
}

static void
test_parse_garbage(void **state)
{
	static const char *bad[] = {
		"",
		"\x00\x01\x02",
		"null",
		"[]",
		"{",
		"{\"InstanceId\":\"mi-1\"}",
		"{\"Endpoint\":\"https://h\"}",
		"{\"InstanceId\":5,\"Endpoint\":\"https://h\"}",
		"{\"InstanceId\":\"\",\"Endpoint\":\"https://h\"}",
		"{\"InstanceId\":\"mi/../1\",\"Endpoint\":\"https://h\"}",
		"{\"InstanceId\":\"mi-1\",\"Endpoint\":\"http://h\"}",
		"{\"InstanceId\":\"mi-1\",\"Endpoint\":\"https://\"}",
		"{\"InstanceId\":\"mi-1\",\"Endpoint\":\"https://u@h\"}",
		"{\"InstanceId\":\"mi-1\",\"Endpoint\":\"https://h x\"}",
		"{\"InstanceId\":\"mi-1\",\"Endpoint\":\"https://h\","
		    "\"SudoersEntry\":\"maybe\"}",
		"{\"InstanceId\":\"mi-1\",\"Endpoint\":\"https://h\","
		    "\"Region\":7}",
		"{\"InstanceId\":\"mi-1\",\"InstanceId\":\"mi-2\","
		    "\"Endpoint\":\"https://h\"}",
	};
	struct agent_state st;
	char big[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(&st, bad[i]), PH_ERR_INVALID);
	memset(big, 'a', sizeof(big));
	memcpy(big, "{\"InstanceId\":\"", 15);
	memcpy(big + sizeof(big) - 40, "\",\"Endpoint\":\"https://h\"}", 26);
	assert_int_equal(parse(&st, big), PH_ERR_INVALID);
}

static void
test_endpoint(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(agent_endpoint_to_ws("HTTPS://h:1/x?y", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "wss://h:1");
	assert_int_equal(agent_endpoint_to_ws("https://h", out, 7),
	    PH_ERR_TOOBIG);
	assert_int_equal(agent_endpoint_to_ws("wss://h", out, sizeof(out)),
	    PH_ERR_INVALID);
	assert_int_equal(agent_endpoint_to_ws(NULL, out, sizeof(out)),
	    PH_ERR_INVALID);
}

static void
test_load_dir(void **state)
{
	char dir[] = "/tmp/test_agent_state.XXXXXX", path[128], *text;
	struct agent_state st;
	const char *json = "{\"InstanceId\":\"mi-2\","
	    "\"Endpoint\":\"https://127.0.0.1:1\"}";
	char err[256];
	struct stat sb;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(agent_state_load(&st, dir, err, sizeof(err)),
	    PH_ERR_NOTFOUND);
	assert_non_null(strstr(err, "register"));
	snprintf(path, sizeof(path), "%s/agent.json", dir);
	assert_int_equal(agent_write_file_atomic(path, json, strlen(json),
	    0600), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* Key, certificate and CA are missing. */
	assert_int_equal(agent_state_load(&st, dir, err, sizeof(err)),
	    PH_ERR_NOTFOUND);
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	assert_int_equal(agent_write_file_atomic(path, "k", 1, 0600), 0);
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	assert_int_equal(agent_write_file_atomic(path, "c", 1, 0644), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	assert_int_equal(agent_write_file_atomic(path, "a", 1, 0644), 0);
	assert_int_equal(agent_state_load(&st, dir, err, sizeof(err)), 0);
	assert_string_equal(st.instance_id, "mi-2");
	assert_non_null(strstr(st.key_path, "/key.pem"));

	/* Replacing a file keeps its content whole. */
	assert_int_equal(agent_write_file_atomic(path, "abc", 3, 0644), 0);
	assert_int_equal(agent_read_file(path, 16, &text, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(text, "abc");
	free(text);
	assert_int_equal(agent_read_file(path, 2, &text, &n), PH_ERR_TOOBIG);
	assert_null(text);

	/* A garbage agent.json is reported, not trusted. */
	snprintf(path, sizeof(path), "%s/agent.json", dir);
	assert_int_equal(agent_write_file_atomic(path, "\xff\xfe{", 3, 0600),
	    0);
	assert_int_equal(agent_state_load(&st, dir, err, sizeof(err)),
	    PH_ERR_INVALID);
	assert_non_null(strstr(err, "agent.json"));

	unlink(path);
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_load_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
