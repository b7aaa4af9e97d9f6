/* client plugin: the argv contract of spec 1.2 for every argc, the
 * StartSession response with garbage, and the porthole command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "client/plugin.h"
#include "common/err.h"

#define RESP "{\"SessionId\": \"alice-0123456789abcdef0\", " \
	"\"TokenValue\": \"tok-1\", " \
	"\"StreamUrl\": \"wss://127.0.0.1:8443/v1/data-channel/" \
	"alice-0123456789abcdef0?role=publish_subscribe\"}"
#define PARAMS "{\"Target\": \"mi-0123456789abcdef0\", " \
	"\"DocumentName\": \"SSM-SessionManagerRunShell\"}"

/* A fake environment: pairs of name, value. */
struct fake_env {
	const char *const *kv;
	int lookups;
};

static const char *
fake_getenv(const char *name, void *ud)
{
	struct fake_env *e = ud;
	size_t i;

	e->lookups++;
	for (i = 0; e->kv != NULL && e->kv[i] != NULL; i += 2)
		if (strcmp(e->kv[i], name) == 0)
			return e->kv[i + 1];
	return NULL;
}

static int
parse(struct client_plugin_args *a, int argc, const char **argv,
    struct fake_env *env)
{
	static struct fake_env none;

	return client_plugin_parse(a, argc, (char *const *)argv, fake_getenv,
	    env != NULL ? env : &none);
}

static void
test_argc1_banner(void **state)
{
	const char *argv[] = { "session-manager-plugin", NULL };
	struct client_plugin_args a;

	(void)state;
	assert_int_equal(parse(&a, 1, argv, NULL), 0);
	assert_int_equal(a.action, CLIENT_PLUGIN_BANNER);
	client_plugin_args_free(&a);
}

static void
test_argc2_version_and_unknown(void **state)
{
	const char *v[] = { "session-manager-plugin", "--version", NULL };
	const char *u[] = { "session-manager-plugin", "frobnicate", NULL };
	const char *u3[] = { "session-manager-plugin", "--version", "x",
	    NULL };
	struct client_plugin_args a;

	(void)state;
	assert_int_equal(parse(&a, 2, v, NULL), 0);
	assert_int_equal(a.action, CLIENT_PLUGIN_VERSION);
	client_plugin_args_free(&a);
	assert_int_equal(parse(&a, 2, u, NULL), 0);
	assert_int_equal(a.action, CLIENT_PLUGIN_UNKNOWN_OP);
	assert_string_equal(a.unknown, "frobnicate");
	client_plugin_args_free(&a);
	/* argc 3, even with --version first: unknown operation. */
	assert_int_equal(parse(&a, 3, u3, NULL), 0);
	assert_int_equal(a.action, CLIENT_PLUGIN_UNKNOWN_OP);
	assert_string_equal(a.unknown, "--version");
	client_plugin_args_free(&a);
}

static void
test_argc4_legacy(void **state)
{
	const char *argv[] = { "session-manager-plugin", RESP, "us-east-1",
	    "StartSession", NULL };
	struct client_plugin_args a;

	(void)state;
	assert_int_equal(parse(&a, 4, argv, NULL), 0);
	assert_int_equal(a.action, CLIENT_PLUGIN_START);
	assert_true(a.legacy);
	assert_string_equal(a.resp.session_id, "alice-0123456789abcdef0");
	assert_string_equal(a.resp.token, "tok-1");
	assert_non_null(strstr(a.resp.stream_url, "/v1/data-channel/"));
	assert_string_equal(a.region, "us-east-1");
	assert_string_equal(a.profile, "");
	assert_string_equal(a.target, "");
	assert_string_equal(a.endpoint, "");
	assert_null(a.response_env);
	client_plugin_args_free(&a);
}

static void
test_argc5_6_7_8(void **state)
{
	const char *argv[] = { "session-manager-plugin", RESP, "eu-west-1",
	    "StartSession", "dev", PARAMS, "https://127.0.0.1:8443",
	    "extra", NULL };
	struct client_plugin_args a;

	(void)state;
	/* 5: profile only. */
	assert_int_equal(parse(&a, 5, argv, NULL), 0);
	assert_int_equal(a.action, CLIENT_PLUGIN_START);
	assert_false(a.legacy);
	assert_string_equal(a.profile, "dev");
	assert_string_equal(a.target, "");
	assert_string_equal(a.endpoint, "");
	client_plugin_args_free(&a);
	/* 6: + parameters. */
	assert_int_equal(parse(&a, 6, argv, NULL), 0);
	assert_string_equal(a.target, "mi-0123456789abcdef0");
	assert_string_equal(a.endpoint, "");
	client_plugin_args_free(&a);
	/* 7: what the CLI sends. */
	assert_int_equal(parse(&a, 7, argv, NULL), 0);
	assert_string_equal(a.region, "eu-west-1");
	assert_string_equal(a.target, "mi-0123456789abcdef0");
	assert_string_equal(a.endpoint, "https://127.0.0.1:8443");
	client_plugin_args_free(&a);
	/* 8: extra arguments are ignored. */
	assert_int_equal(parse(&a, 8, argv, NULL), 0);
	assert_int_equal(a.action, CLIENT_PLUGIN_START);
	assert_string_equal(a.endpoint, "https://127.0.0.1:8443");
	client_plugin_args_free(&a);
}

static void
test_env_var_mode(void **state)
{
	const char *kv[] = { "AWS_SSM_START_SESSION_RESPONSE", RESP,
	    "AWS_SSM_START_SESSION_RESPONSE_42", "{\"SessionId\":\"s2\","
	    "\"TokenValue\":\"t2\",\"StreamUrl\":\"ws://h/x\"}", NULL };
	struct fake_env env = { kv, 0 };
	const char *argv[] = { "session-manager-plugin",
	    "AWS_SSM_START_SESSION_RESPONSE", "us-east-1", "StartSession", "",
	    PARAMS, "https://ssm.us-east-1.amazonaws.com", NULL };
	const char *argv2[] = { "session-manager-plugin",
	    "AWS_SSM_START_SESSION_RESPONSE_42", "us-east-1", "StartSession",
	    "", "{}", "", NULL };
	const char *argv3[] = { "session-manager-plugin",
	    "AWS_SSM_START_SESSION_RESPONSE_MISSING", "us-east-1",
	    "StartSession", "", "{}", "", NULL };
	struct client_plugin_args a;

	(void)state;
	assert_int_equal(parse(&a, 7, argv, &env), 0);
	assert_int_equal(a.action, CLIENT_PLUGIN_START);
	assert_string_equal(a.response_env, "AWS_SSM_START_SESSION_RESPONSE");
	assert_string_equal(a.resp.token, "tok-1");
	client_plugin_args_free(&a);
	/* Any name with the prefix is read. */
	assert_int_equal(parse(&a, 7, argv2, &env), 0);
	assert_string_equal(a.resp.session_id, "s2");
	assert_string_equal(a.response_env,
	    "AWS_SSM_START_SESSION_RESPONSE_42");
	client_plugin_args_free(&a);
	/* Unset variable: a clean failure. */
	assert_int_equal(parse(&a, 7, argv3, &env), PH_ERR_INVALID);
	assert_int_equal(a.action, CLIENT_PLUGIN_FAIL);
	assert_non_null(strstr(a.err, "not set"));
	client_plugin_args_free(&a);
}

static void
test_invalid_operation(void **state)
{
	const char *argv[] = { "session-manager-plugin", RESP, "us-east-1",
	    "ResumeSession", "", "{}", "", NULL };
	struct client_plugin_args a;

	(void)state;
	assert_int_equal(parse(&a, 7, argv, NULL), 0);
	assert_int_equal(a.action, CLIENT_PLUGIN_INVALID_OP);
	client_plugin_args_free(&a);
}

static void
expect_fail(const char *resp, const char *params, int rc, const char *needle)
{
	const char *argv[] = { "session-manager-plugin", resp, "us-east-1",
	    "StartSession", "", params, "", NULL };
	struct client_plugin_args a;

	assert_int_equal(parse(&a, 7, argv, NULL), rc);
	assert_int_equal(a.action, CLIENT_PLUGIN_FAIL);
	assert_non_null(a.err[0] ? a.err : NULL);
	if (needle != NULL && strstr(a.err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", a.err, needle);
	assert_null(a.resp.session_id);
	assert_null(a.resp.token);
	assert_null(a.target);
	client_plugin_args_free(&a);
}

static void
test_response_garbage(void **state)
{
	char *huge;
	size_t n = CLIENT_MAX_RESPONSE_JSON + 10, i;

	(void)state;
	expect_fail("", "{}", PH_ERR_INVALID, "empty");
	expect_fail("not json", "{}", PH_ERR_INVALID, "not valid JSON");
	expect_fail("{\"SessionId\":", "{}", PH_ERR_INVALID, "JSON");
	expect_fail("[1,2,3]", "{}", PH_ERR_INVALID, "not a JSON object");
	expect_fail("{}", "{}", PH_ERR_INVALID, "SessionId");
	expect_fail("{\"SessionId\":\"s\",\"TokenValue\":\"t\"}", "{}",
	    PH_ERR_INVALID, "StreamUrl");
	expect_fail("{\"SessionId\":\"s\",\"StreamUrl\":\"wss://h/\"}", "{}",
	    PH_ERR_INVALID, "TokenValue");
	expect_fail("{\"SessionId\":5,\"TokenValue\":\"t\","
	    "\"StreamUrl\":\"u\"}", "{}", PH_ERR_INVALID, "not a string");
	expect_fail("{\"SessionId\":\"s\",\"TokenValue\":[\"t\"],"
	    "\"StreamUrl\":\"u\"}", "{}", PH_ERR_INVALID, "TokenValue");
	expect_fail("{\"SessionId\":\"s\",\"TokenValue\":null,"
	    "\"StreamUrl\":\"u\"}", "{}", PH_ERR_INVALID, "TokenValue");
	expect_fail("{\"SessionId\":\"\",\"TokenValue\":\"t\","
	    "\"StreamUrl\":\"u\"}", "{}", PH_ERR_INVALID, "empty");
	expect_fail("{\"SessionId\":\"s\\u0000x\",\"TokenValue\":\"t\","
	    "\"StreamUrl\":\"u\"}", "{}", PH_ERR_INVALID, NULL);
	expect_fail("{\"SessionId\":\"s\\u001b[2J\",\"TokenValue\":\"t\","
	    "\"StreamUrl\":\"u\"}", "{}", PH_ERR_INVALID, "control");
	expect_fail("{\"SessionId\":\"s\",\"SessionId\":\"t\","
	    "\"TokenValue\":\"t\",\"StreamUrl\":\"u\"}", "{}",
	    PH_ERR_INVALID, NULL);
	/* Bad request parameters. */
	expect_fail(RESP, "not json", PH_ERR_INVALID, "parameters");
	expect_fail(RESP, "[]", PH_ERR_INVALID, "parameters");
	expect_fail(RESP, "{\"Target\": 7}", PH_ERR_INVALID, "Target");

	/* Huge: refused before parsing. */
	huge = malloc(n + 1);
	assert_non_null(huge);
	huge[0] = '{';
	for (i = 1; i < n; i++)
		huge[i] = ' ';
	huge[n - 1] = '}';
	huge[n] = '\0';
	expect_fail(huge, "{}", PH_ERR_TOOBIG, "too large");
	free(huge);

	/* A field above its bound. */
	n = CLIENT_MAX_TOKEN + 100;
	huge = malloc(n + 64);
	assert_non_null(huge);
	i = (size_t)snprintf(huge, 64, "{\"SessionId\":\"s\",\"StreamUrl\":"
	    "\"u\",\"TokenValue\":\"");
	memset(huge + i, 'a', n);
	memcpy(huge + i + n, "\"}", 3);
	expect_fail(huge, "{}", PH_ERR_TOOBIG, "too long");
	free(huge);
}

static void
test_target_missing_is_empty(void **state)
{
	const char *argv[] = { "session-manager-plugin", RESP, "us-east-1",
	    "StartSession", "", "{\"DocumentName\":\"x\"}", "", NULL };
	struct client_plugin_args a;

	(void)state;
	assert_int_equal(parse(&a, 7, argv, NULL), 0);
	assert_string_equal(a.target, "");
	client_plugin_args_free(&a);
}

static void
test_resume_response(void **state)
{
	struct client_start_response r;
	char err[128];
	static const char ok[] = "{\"SessionId\":\"s\",\"TokenValue\":\"t9\","
	    "\"StreamUrl\":\"wss://x/\"}";
	static const char null_tok[] = "{\"SessionId\":\"s\","
	    "\"TokenValue\":null}";
	static const char no_tok[] = "{\"SessionId\":\"s\"}";

	(void)state;
	assert_int_equal(client_start_response_parse(&r, ok, strlen(ok), 0,
	    err, sizeof(err)), 0);
	assert_string_equal(r.token, "t9");
	assert_null(r.session_id); /* only TokenValue is read */
	client_start_response_free(&r);
	assert_int_equal(client_start_response_parse(&r, null_tok,
	    strlen(null_tok), 0, err, sizeof(err)), 0);
	assert_null(r.token);
	assert_int_equal(client_start_response_parse(&r, no_tok,
	    strlen(no_tok), 0, err, sizeof(err)), 0);
	assert_null(r.token);
	assert_int_equal(client_start_response_parse(&r, "{\"TokenValue\":1}",
	    16, 0, err, sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_start_response_parse(&r, "xx", 2, 0, err,
	    sizeof(err)), PH_ERR_INVALID);
}

static void
test_invoked_as(void **state)
{
	(void)state;
	assert_true(client_invoked_as_plugin("session-manager-plugin"));
	assert_true(client_invoked_as_plugin(
	    "/usr/local/bin/session-manager-plugin"));
	assert_false(client_invoked_as_plugin("/usr/bin/porthole"));
	assert_false(client_invoked_as_plugin("session-manager-plugin2"));
	assert_false(client_invoked_as_plugin(NULL));
}

static int
cli(struct client_cli_args *a, int argc, const char **argv)
{
	return client_cli_parse(a, argc, (char *const *)argv);
}

static void
test_cli_parse(void **state)
{
	const char *v[] = { "porthole", "--version", NULL };
	const char *h[] = { "porthole", "--help", NULL };
	const char *none[] = { "porthole", NULL };
	const char *bad[] = { "porthole", "launch", NULL };
	const char *full[] = { "porthole", "start-session", "--target",
	    "mi-1", "--document-name=AWS-StartInteractiveCommand",
	    "--parameters", "{\"command\":[\"uptime\"]}", "--profile", "p",
	    "--region", "r", "--endpoint-url", "https://e", NULL };
	const char *notarget[] = { "porthole", "start-session", NULL };
	const char *noval[] = { "porthole", "start-session", "--target",
	    NULL };
	const char *unk[] = { "porthole", "start-session", "--target", "x",
	    "--bogus", "y", NULL };
	struct client_cli_args a;

	(void)state;
	assert_int_equal(cli(&a, 2, v), 0);
	assert_int_equal(a.action, CLIENT_CLI_VERSION);
	assert_int_equal(cli(&a, 2, h), 0);
	assert_int_equal(a.action, CLIENT_CLI_HELP);
	assert_int_equal(cli(&a, 1, none), PH_ERR_INVALID);
	assert_int_equal(a.action, CLIENT_CLI_USAGE);
	assert_int_equal(cli(&a, 2, bad), PH_ERR_INVALID);
	assert_non_null(strstr(a.err, "launch"));
	assert_int_equal(cli(&a, 13, full), 0);
	assert_int_equal(a.action, CLIENT_CLI_START_SESSION);
	assert_string_equal(a.target, "mi-1");
	assert_string_equal(a.document_name, "AWS-StartInteractiveCommand");
	assert_string_equal(a.parameters, "{\"command\":[\"uptime\"]}");
	assert_string_equal(a.profile, "p");
	assert_string_equal(a.region, "r");
	assert_string_equal(a.endpoint_url, "https://e");
	assert_int_equal(cli(&a, 2, notarget), PH_ERR_INVALID);
	assert_non_null(strstr(a.err, "--target"));
	assert_int_equal(cli(&a, 3, noval), PH_ERR_INVALID);
	assert_non_null(strstr(a.err, "needs a value"));
	assert_int_equal(cli(&a, 6, unk), PH_ERR_INVALID);
	assert_non_null(strstr(a.err, "--bogus"));
}

static void
test_cli_keepalive_escape(void **state)
{
	const char *ok[] = { "porthole", "start-session", "--target", "x",
	    "--keepalive", "10", "--escape-char=^]", NULL };
	const char *off[] = { "porthole", "start-session", "--target", "x",
	    "--keepalive=0", "--escape-char", "none", NULL };
	const char *badka[] = { "porthole", "start-session", "--target", "x",
	    "--keepalive", "-1", NULL };
	const char *bigka[] = { "porthole", "start-session", "--target", "x",
	    "--keepalive", "3601", NULL };
	const char *badesc[] = { "porthole", "start-session", "--target",
	    "x", "--escape-char", "~~", NULL };
	struct client_cli_args a;
	int n = -5;

	(void)state;
	assert_int_equal(cli(&a, 7, ok), 0);
	assert_string_equal(a.keepalive, "10");
	assert_string_equal(a.escape_char, "^]");
	assert_int_equal(cli(&a, 7, off), 0);
	assert_string_equal(a.keepalive, "0");
	assert_string_equal(a.escape_char, "none");
	assert_int_equal(cli(&a, 6, badka), PH_ERR_INVALID);
	assert_string_equal(a.err, "--keepalive wants a number of seconds "
	    "from 0 to 3600, not -1");
	assert_int_equal(cli(&a, 6, bigka), PH_ERR_INVALID);
	assert_int_equal(cli(&a, 6, badesc), PH_ERR_INVALID);
	assert_string_equal(a.err, "--escape-char wants one character, ^X or "
	    "none, not ~~");

	assert_int_equal(client_parse_keepalive("0", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(client_parse_keepalive("3600", &n), 0);
	assert_int_equal(n, 3600);
	assert_int_equal(client_parse_keepalive("", &n), PH_ERR_INVALID);
	assert_int_equal(client_parse_keepalive(" 5", &n), PH_ERR_INVALID);
	assert_int_equal(client_parse_keepalive("5s", &n), PH_ERR_INVALID);
	assert_int_equal(client_parse_keepalive("999999999", &n),
	    PH_ERR_INVALID);
	assert_int_equal(client_parse_keepalive(NULL, &n), PH_ERR_INVALID);
	assert_int_equal(n, 3600);
}

static void
check_request(const char *target, const char *doc, const char *params,
    int rc, const char *want)
{
	struct client_cli_args a;
	char err[256], *out = NULL;

	memset(&a, 0, sizeof(a));
	a.target = target;
	a.document_name = doc;
	a.parameters = params;
	assert_int_equal(client_cli_start_request(&a, &out, err, sizeof(err)),
	    rc);
	if (rc == 0) {
		assert_non_null(out);
		assert_string_equal(out, want);
	} else
		assert_null(out);
	free(out);
}

static void
test_cli_request(void **state)
{
	(void)state;
	check_request("mi-1", NULL, NULL, 0, "{\"Target\":\"mi-1\"}");
	check_request("mi-1", "AWS-StartPortForwardingSession",
	    "portNumber=80,localPortNumber=9999", 0,
	    "{\"Target\":\"mi-1\",\"DocumentName\":"
	    "\"AWS-StartPortForwardingSession\",\"Parameters\":"
	    "{\"portNumber\":[\"80\"],\"localPortNumber\":[\"9999\"]}}");
	check_request("mi-1", "D", "command=[\"ls -l\", pwd]", 0,
	    "{\"Target\":\"mi-1\",\"DocumentName\":\"D\",\"Parameters\":"
	    "{\"command\":[\"ls -l\",\"pwd\"]}}");
	check_request("mi-1", "D", " {\"command\":[\"uptime\"]}", 0,
	    "{\"Target\":\"mi-1\",\"DocumentName\":\"D\",\"Parameters\":"
	    "{\"command\":[\"uptime\"]}}");
	check_request("mi-1", "D", "{\"command\":", PH_ERR_INVALID, NULL);
	check_request("mi-1", "D", "[1]", PH_ERR_INVALID, NULL);
	check_request("mi-1", "D", "novalue", PH_ERR_INVALID, NULL);
	check_request("mi-1", "D", "=x", PH_ERR_INVALID, NULL);
	check_request("mi-\xff", NULL, NULL, PH_ERR_INVALID, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_argc1_banner),
		cmocka_unit_test(test_argc2_version_and_unknown),
		cmocka_unit_test(test_argc4_legacy),
		cmocka_unit_test(test_argc5_6_7_8),
		cmocka_unit_test(test_env_var_mode),
		cmocka_unit_test(test_invalid_operation),
		cmocka_unit_test(test_response_garbage),
		cmocka_unit_test(test_target_missing_is_empty),
		cmocka_unit_test(test_resume_response),
		cmocka_unit_test(test_invoked_as),
		cmocka_unit_test(test_cli_parse),
		cmocka_unit_test(test_cli_keepalive_escape),
		cmocka_unit_test(test_cli_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
