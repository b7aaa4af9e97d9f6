/* agent task: case-insensitive JSON lookups and interactive_shell parsing
 * (spec 8.1, 8.2): good payloads, camel-case keys, broken Content, missing
 * or hostile fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "agent/jsonci.h"
#include "agent/task.h"
#include "common/err.h"

/* Wrap an AgentTaskPayload object as the gateway does: Content is the
 * payload serialised into a JSON string. */
static char *
wrap(json_t *inner)
{
	char *content, *out;
	json_t *o;

	content = json_dumps(inner, JSON_COMPACT);
	assert_non_null(content);
	o = json_pack("{s:s, s:s, s:s, s:i}", "Content", content, "TaskId",
	    "s-1", "Topic", "aws.ssm.startSession", "SchemaVersion", 1);
	assert_non_null(o);
	out = json_dumps(o, JSON_COMPACT);
	assert_non_null(out);
	json_decref(o);
	json_decref(inner);
	free(content);
	return out;
}

static int
parse_str(struct agent_task *t, const char *s, char *err, size_t errlen)
{
	return agent_task_parse(t, (const uint8_t *)s, strlen(s), err,
	    errlen);
}

static void
test_json_ci(void **state)
{
	json_t *o;
	int b;

	(void)state;
	o = json_loads("{\"sessionId\":\"a\",\"SESSIONID\":\"b\",\"Exact\":1,"
	    "\"flag\":\"TRUE\",\"off\":\"\",\"bad\":3,\"nul\":null}", 0, NULL);
	assert_non_null(o);
	assert_string_equal(agent_json_str(o, "sessionId"), "a");
	/* No exact key: the first case-insensitive match. */
	assert_non_null(agent_json_str(o, "SessionId"));
	assert_non_null(agent_json_get(o, "exact"));
	assert_null(agent_json_get(o, "missing"));
	assert_null(agent_json_str(o, "Exact")); /* not a string */
	assert_null(agent_json_get(NULL, "x"));
	assert_int_equal(agent_json_bool(o, "Flag", 0, &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(agent_json_bool(o, "off", 1, &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(agent_json_bool(o, "absent", 1, &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(agent_json_bool(o, "nul", 1, &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(agent_json_bool(o, "bad", 0, &b), PH_ERR_INVALID);
	json_decref(o);
}

static void
test_standard_stream(void **state)
{
	struct agent_task t;
	char err[256];
	char *s;

	(void)state;
	s = wrap(json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:b, s:s, "
	    "s:{s:s}}}, s:{}, s:s, s:s}",
	    "SessionId", "alice-0123456789abcdef0",
	    "DocumentName", "SSM-SessionManagerRunShell",
	    "DocumentContent", "schemaVersion", "1.0",
	    "sessionType", "Standard_Stream", "inputs", "kmsKeyId", "",
	    "runAsEnabled", 0, "runAsDefaultUser", "",
	    "shellProfile", "linux", "cd /tmp",
	    "Parameters", "RunAsUser", "", "SessionOwner", "arn:x"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), 0);
	assert_string_equal(t.session_id, "alice-0123456789abcdef0");
	assert_int_equal(t.type, AGENT_ST_STANDARD);
	assert_int_equal(t.run_as_enabled, 0);
	assert_null(t.kms_key_id);
	assert_null(t.commands);
	assert_string_equal(t.shell_profile, "cd /tmp");
	assert_string_equal(agent_session_type_name(t.type),
	    "Standard_Stream");
	agent_task_free(&t);
	free(s);
}

static void
test_camel_case_and_runas(void **state)
{
	struct agent_task t;
	char err[256];
	char *s;

	(void)state;
	/* spec 11.16: camel-case spellings and bool* strings. */
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:s, s:s, s:s}}, s:s}",
	    "sessionId", "s-1", "documentContent",
	    "SessionType", "Standard_Stream", "Inputs",
	    "RunAsEnabled", "true", "runAsDefaultUser", "deploy",
	    "KMSKEYID", "alias/x", "runAsUser", "  "));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), 0);
	assert_string_equal(t.session_id, "s-1");
	assert_int_equal(t.run_as_enabled, 1);
	/* A blank RunAsUser falls back to the default user. */
	assert_string_equal(t.run_as_user, "deploy");
	assert_string_equal(t.kms_key_id, "alias/x");
	agent_task_free(&t);
	free(s);

	s = wrap(json_pack("{s:s, s:{s:s, s:{s:b}}, s:s}", "SessionId",
	    "s-2", "DocumentContent", "sessionType", "Standard_Stream",
	    "inputs", "runAsEnabled", 1, "RunAsUser", "bob"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), 0);
	assert_string_equal(t.run_as_user, "bob");
	agent_task_free(&t);
	free(s);

	/* RunAs on without any user is an error for that session. */
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:b}}}", "SessionId", "s-3",
	    "DocumentContent", "sessionType", "Standard_Stream", "inputs",
	    "runAsEnabled", 1));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	assert_string_equal(t.session_id, "s-3");
	assert_non_null(strstr(err, "RunAs"));
	free(s);

	/* A user name that could be an option or a path. */
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:b}}, s:s}", "SessionId",
	    "s-4", "DocumentContent", "sessionType", "Standard_Stream",
	    "inputs", "runAsEnabled", 1, "RunAsUser", "-oops"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	free(s);
}

static void
test_interactive_commands(void **state)
{
	struct agent_task t;
	char err[256];
	char *s;

	(void)state;
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:{s:s}}, s:{s:{s:s}}}, "
	    "s:{s:[s]}}",
	    "SessionId", "s-5", "DocumentContent",
	    "sessionType", "InteractiveCommands",
	    "properties", "linux", "commands", "echo {{ command }}!",
	    "parameters", "command", "default", "dflt",
	    "Parameters", "command", "top"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), 0);
	assert_int_equal(t.type, AGENT_ST_INTERACTIVE);
	assert_string_equal(t.commands, "echo top!");
	agent_task_free(&t);
	free(s);

	/* No value given: the document's default. Unknown names stay. */
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:{s:s, s:s}}, s:{s:{s:s}}}}",
	    "SessionId", "s-6", "DocumentContent",
	    "sessionType", "InteractiveCommands",
	    "properties", "linux", "commands", "{{command}} {{ other }}",
	    "runAsElevated", "true",
	    "parameters", "command", "default", "top"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), 0);
	assert_string_equal(t.commands, "top {{ other }}");
	assert_int_equal(t.run_as_elevated, 1);
	agent_task_free(&t);
	free(s);

	/* spec 7.2: the commands must not be empty. */
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:{s:s}}}}", "SessionId", "s-7",
	    "DocumentContent", "sessionType", "InteractiveCommands",
	    "properties", "linux", "commands", "  "));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	assert_string_equal(t.session_id, "s-7");
	free(s);

	s = wrap(json_pack("{s:s, s:{s:s}}", "SessionId", "s-8",
	    "DocumentContent", "sessionType", "InteractiveCommands"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	assert_non_null(strstr(err, "commands"));
	free(s);
}

static void
test_other_types(void **state)
{
	struct agent_task t;
	char err[256];
	char *s;

	(void)state;
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:s}}}", "SessionId", "s-9",
	    "DocumentContent", "sessionType", "Port", "properties",
	    "portNumber", "22"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), 0);
	assert_int_equal(t.type, AGENT_ST_PORT);
	agent_task_free(&t);
	free(s);

	s = wrap(json_pack("{s:s, s:{s:s}}", "SessionId", "s-10",
	    "DocumentContent", "sessionType", "Telepathy"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	assert_string_equal(t.session_id, "s-10");
	free(s);

	s = wrap(json_pack("{s:s, s:{s:s, s:s}}", "SessionId", "s-11",
	    "DocumentContent", "schemaVersion", "2.2", "sessionType",
	    "Standard_Stream"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	free(s);
}

static void
test_bad_messages(void **state)
{
	struct agent_task t;
	char err[256];
	char *s, *big;
	size_t n = 2 * 1024 * 1024;

	(void)state;
	assert_int_equal(parse_str(&t, "", err, sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(parse_str(&t, "[1,2]", err, sizeof(err)),
	    PH_ERR_INVALID);
	assert_int_equal(parse_str(&t, "{\"Content\":7}", err, sizeof(err)),
	    PH_ERR_INVALID);
	assert_int_equal(parse_str(&t, "{\"Content\":\"not json\"}", err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_non_null(strstr(err, "Content"));
	assert_string_equal(t.session_id, "");
	assert_int_equal(parse_str(&t, "{\"Content\":\"[]\"}", err,
	    sizeof(err)), PH_ERR_INVALID);
	/* Content that is an object is not the string the spec demands. */
	assert_int_equal(parse_str(&t, "{\"Content\":{\"SessionId\":\"x\"}}",
	    err, sizeof(err)), PH_ERR_INVALID);
	/* Truncated input. */
	assert_int_equal(agent_task_parse(&t,
	    (const uint8_t *)"{\"Content\":\"{", 13, err, sizeof(err)),
	    PH_ERR_INVALID);

	/* Missing SessionId. */
	s = wrap(json_pack("{s:{s:s}}", "DocumentContent", "sessionType",
	    "Standard_Stream"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	assert_non_null(strstr(err, "SessionId"));
	assert_string_equal(t.session_id, "");
	free(s);

	/* A session id that would escape the URL path. */
	s = wrap(json_pack("{s:s, s:{s:s}}", "SessionId", "../../etc",
	    "DocumentContent", "sessionType", "Standard_Stream"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	assert_string_equal(t.session_id, "");
	free(s);

	/* Huge strings: session id, commands, KMS key, profile. */
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'a', n);
	big[n] = '\0';
	s = wrap(json_pack("{s:s, s:{s:s}}", "SessionId", big,
	    "DocumentContent", "sessionType", "Standard_Stream"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	assert_string_equal(t.session_id, "");
	free(s);
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:{s:s}}}}", "SessionId", "s-12",
	    "DocumentContent", "sessionType", "InteractiveCommands",
	    "properties", "linux", "commands", big));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_TOOBIG);
	assert_string_equal(t.session_id, "s-12");
	assert_null(t.commands);
	free(s);
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:s}}}", "SessionId", "s-13",
	    "DocumentContent", "sessionType", "Standard_Stream", "inputs",
	    "kmsKeyId", big));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_TOOBIG);
	free(s);
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:{s:s}}}}", "SessionId", "s-14",
	    "DocumentContent", "sessionType", "Standard_Stream", "inputs",
	    "shellProfile", "linux", big));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_TOOBIG);
	free(s);
	/* A parameter that expands past the limit. */
	big[AGENT_COMMANDS_MAX - 10] = '\0';
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:{s:s}}}, s:{s:s}}",
	    "SessionId", "s-15", "DocumentContent", "sessionType",
	    "InteractiveCommands", "properties", "linux", "commands",
	    "{{ c }}{{ c }}", "Parameters", "c", big));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_TOOBIG);
	free(s);
	free(big);

	/* Wrong types. */
	s = wrap(json_pack("{s:i}", "SessionId", 5));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	free(s);
	s = wrap(json_pack("{s:s, s:s}", "SessionId", "s-16",
	    "DocumentContent", "x"));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	free(s);
	s = wrap(json_pack("{s:s, s:{s:s, s:{s:i}}}", "SessionId", "s-17",
	    "DocumentContent", "sessionType", "Standard_Stream", "inputs",
	    "runAsEnabled", 3));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	free(s);
	s = wrap(json_pack("{s:s, s:{s:s}, s:i}", "SessionId", "s-18",
	    "DocumentContent", "sessionType", "Standard_Stream",
	    "RunAsUser", 1));
	assert_int_equal(parse_str(&t, s, err, sizeof(err)), PH_ERR_INVALID);
	free(s);
}

static void
test_validators(void **state)
{
	(void)state;
	assert_true(agent_valid_session_id("user-0123456789abcdef0"));
	assert_false(agent_valid_session_id(""));
	assert_false(agent_valid_session_id(".."));
	assert_false(agent_valid_session_id("a/b"));
	assert_false(agent_valid_session_id("a b"));
	assert_true(agent_valid_user_name("ssm-user"));
	assert_false(agent_valid_user_name("-rf"));
	assert_false(agent_valid_user_name("a:b"));
	assert_false(agent_valid_user_name(
	    "a123456789012345678901234567890123"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_ci),
		cmocka_unit_test(test_standard_stream),
		cmocka_unit_test(test_camel_case_and_runas),
		cmocka_unit_test(test_interactive_commands),
		cmocka_unit_test(test_other_types),
		cmocka_unit_test(test_bad_messages),
		cmocka_unit_test(test_validators),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
