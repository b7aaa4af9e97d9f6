/* client_sendcmd: `porthole send-command`'s command line (targets,
 * parameters, rates, the request body), its progress line and its
 * per-instance result text. Garbage arguments get errors, never crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "client/sendcmd.h"
#include "common/err.h"

static int
parse(struct client_sendcmd_args *a, const char **argv)
{
	int argc = 0;

	while (argv[argc] != NULL)
		argc++;
	return client_sendcmd_parse(a, argc, (char **)argv);
}

static void
test_targets(void **state)
{
	json_t *t = json_array();
	char err[512];

	(void)state;
	assert_int_equal(client_sendcmd_add_targets(t,
	    "Key=tag:Env,Values=prod,dev", err, sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(t, 0), "Key")), "tag:Env");
	assert_int_equal(json_array_size(json_object_get(json_array_get(t, 0),
	    "Values")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(
	    json_array_get(t, 0), "Values"), 1)), "dev");
	assert_int_equal(client_sendcmd_add_targets(t,
	    "[{\"Key\":\"InstanceIds\",\"Values\":[\"mi-1\"]}]", err,
	    sizeof(err)), 0);
	assert_int_equal(json_array_size(t), 2);
	/* Garbage. */
	assert_int_equal(client_sendcmd_add_targets(t, "", err, sizeof(err)),
	    PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_targets(t, "tag:Env=prod", err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_non_null(strstr(err, "Key=K,Values="));
	assert_int_equal(client_sendcmd_add_targets(t, "Key=,Values=a", err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_targets(t, "Key=k,Values=", err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_targets(t, "Key=k,Values=a,,b",
	    err, sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_targets(t, "[{\"Key\":1}]", err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_targets(t, "[1,2]", err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_targets(t, "[{\"Key\":\"k\","
	    "\"Values\":[1]}]", err, sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_targets(t, "{nope", err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(json_array_size(t), 2);
	json_decref(t);
}

static void
test_parameters(void **state)
{
	json_t *p = json_object();
	char err[512];

	(void)state;
	assert_int_equal(client_sendcmd_add_parameters(p,
	    "commands=echo a,b", err, sizeof(err)), 0);
	assert_int_equal(client_sendcmd_add_parameters(p, "commands=uptime",
	    err, sizeof(err)), 0);
	assert_int_equal(json_array_size(json_object_get(p, "commands")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(
	    p, "commands"), 0)), "echo a,b");
	assert_int_equal(client_sendcmd_add_parameters(p,
	    "{\"executionTimeout\":\"60\",\"workingDirectory\":[\"/tmp\"]}",
	    err, sizeof(err)), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(
	    p, "executionTimeout"), 0)), "60");
	assert_int_equal(client_sendcmd_add_parameters(p, "=x", err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_parameters(p, "novalue", err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_parameters(p, "{\"a\":1}", err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_parameters(p, "{\"a\":[true]}",
	    err, sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_parameters(p, "{", err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_sendcmd_add_parameters(p, "a=\xff\xfe", err,
	    sizeof(err)), PH_ERR_INVALID);
	json_decref(p);
}

static void
test_rates(void **state)
{
	(void)state;
	assert_true(client_sendcmd_rate_valid("5", 0));
	assert_true(client_sendcmd_rate_valid("50%", 0));
	assert_true(client_sendcmd_rate_valid("100%", 0));
	assert_true(client_sendcmd_rate_valid("1%", 0));
	assert_true(client_sendcmd_rate_valid("0", 1));
	assert_true(client_sendcmd_rate_valid("0%", 1));
	assert_false(client_sendcmd_rate_valid("0", 0));
	assert_false(client_sendcmd_rate_valid("0%", 0));
	assert_false(client_sendcmd_rate_valid("101%", 1));
	assert_false(client_sendcmd_rate_valid("05", 1));
	assert_false(client_sendcmd_rate_valid("", 1));
	assert_false(client_sendcmd_rate_valid("%", 1));
	assert_false(client_sendcmd_rate_valid("5%%", 1));
	assert_false(client_sendcmd_rate_valid("-1", 1));
	assert_false(client_sendcmd_rate_valid("12345678", 1));
	assert_false(client_sendcmd_rate_valid("1e3", 1));
}

static void
test_parse_and_body(void **state)
{
	const char *ok[] = { "send-command", "--document-name",
	    "AWS-RunShellScript", "--targets", "Key=tag:Env,Values=prod",
	    "--parameters", "commands=echo hi", "--max-concurrency", "5",
	    "--max-errors", "10%", "--timeout-seconds", "60", "--comment",
	    "fan out", "--wait", NULL };
	const char *ids[] = { "send-command", "--document-name", "D",
	    "--instance-ids", "mi-0123,mi-0456", "mi-0789", NULL };
	struct client_sendcmd_args a;
	json_t *b;
	char *s;

	(void)state;
	assert_int_equal(parse(&a, ok), 0);
	assert_true(a.wait);
	s = client_sendcmd_body(&a);
	assert_non_null(s);
	b = json_loads(s, 0, NULL);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b,
	    "DocumentName")), "AWS-RunShellScript");
	assert_string_equal(json_string_value(json_object_get(b,
	    "MaxConcurrency")), "5");
	assert_string_equal(json_string_value(json_object_get(b,
	    "MaxErrors")), "10%");
	assert_int_equal(json_integer_value(json_object_get(b,
	    "TimeoutSeconds")), 60);
	assert_string_equal(json_string_value(json_array_get(json_object_get(
	    json_object_get(b, "Parameters"), "commands"), 0)), "echo hi");
	assert_null(json_object_get(b, "InstanceIds"));
	json_decref(b);
	free(s);
	client_sendcmd_args_free(&a);

	assert_int_equal(parse(&a, ids), 0);
	assert_int_equal(json_array_size(a.instance_ids), 3);
	s = client_sendcmd_body(&a);
	assert_non_null(strstr(s, "\"InstanceIds\":[\"mi-0123\",\"mi-0456\","
	    "\"mi-0789\"]"));
	assert_null(strstr(s, "Targets"));
	free(s);
	client_sendcmd_args_free(&a);
}

static void
test_parse_errors(void **state)
{
	const char *bad[][8] = {
		{ "send-command", NULL },
		{ "send-command", "--targets", "Key=a,Values=b", NULL },
		{ "send-command", "--document-name", "D", NULL },
		{ "send-command", "--document-name", "D", "--instance-ids",
		    "mi-1", "--targets", "Key=a,Values=b", NULL },
		{ "send-command", "--document-name", "D", "--instance-ids",
		    "mi-1;rm", NULL },
		{ "send-command", "--document-name", "D", "--instance-ids",
		    "mi-1", "--timeout-seconds", "29", NULL },
		{ "send-command", "--document-name", "D", "--instance-ids",
		    "mi-1", "--timeout-seconds", "x", NULL },
		{ "send-command", "--document-name", "D", "--instance-ids",
		    "mi-1", "--max-errors", "abc", NULL },
		{ "send-command", "--document-name", "D", "--instance-ids",
		    "mi-1", "--bogus", NULL },
		{ "send-command", "--document-name", "D", "--targets",
		    "Key=a,Values=b", "stray", NULL },
		{ "send-command", "--document-name", "D", "--instance-ids",
		    "mi-1", "--wait-seconds", "0", NULL },
		{ "send-command", "--document-name", "D", "--instance-ids",
		    "mi-1", "--max-concurrency", NULL },
	};
	struct client_sendcmd_args a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&a, bad[i]), -1);
		assert_true(a.err[0] != '\0');
		client_sendcmd_args_free(&a);
	}
	{
		const char *h[] = { "send-command", "--help", NULL };

		assert_int_equal(parse(&a, h), 1);
		client_sendcmd_args_free(&a);
	}
	{
		/* 51 instance ids: SendCommand's limit is 50. */
		char many[51 * 8 + 1];
		const char *v[] = { "send-command", "--document-name", "D",
		    "--instance-ids", many, NULL };
		size_t k, off = 0;

		for (k = 0; k < 51; k++)
			off += (size_t)snprintf(many + off, sizeof(many) - off,
			    "mi-%03zu,", k);
		assert_int_equal(parse(&a, v), -1);
		assert_non_null(strstr(a.err, "at most 50"));
		client_sendcmd_args_free(&a);
	}
}

static void
test_progress(void **state)
{
	char line[128];

	(void)state;
	client_sendcmd_progress(line, sizeof(line), 12, 20, 2, "InProgress");
	assert_string_equal(line, "12 / 20 done, 2 failed (InProgress)");
	client_sendcmd_progress(line, sizeof(line), 0, 0, 0, NULL);
	assert_string_equal(line, "0 / 0 done, 0 failed (Pending)");
	client_sendcmd_progress(line, sizeof(line), 1, 1, 0, "x\033[2Jy");
	assert_null(strchr(line, '\033'));
	client_sendcmd_progress(line, 8, 1000, 1000, 0, "Success");
	assert_int_equal(strlen(line), 7);
}

static void
test_result(void **state)
{
	json_t *inv;
	char out[1024];

	(void)state;
	inv = json_loads("{\"InstanceId\":\"mi-0123\",\"Status\":\"Success\","
	    "\"StatusDetails\":\"Success\",\"CommandPlugins\":[{\"Name\":"
	    "\"aws:runShellScript\",\"ResponseCode\":0,\"Output\":"
	    "\"one\\ntwo\\nthree\\nfour\\n\"}]}", 0, NULL);
	assert_int_equal(client_sendcmd_format_result(inv, out, sizeof(out)),
	    1);
	assert_string_equal(out, "mi-0123  Success  code 0\n    one\n"
	    "    two\n    three\n    ...\n");
	json_decref(inv);

	inv = json_loads("{\"InstanceId\":\"mi-9\",\"Status\":\"Failed\","
	    "\"StatusDetails\":\"Failed\",\"CommandPlugins\":[{\"Name\":\"a\","
	    "\"ResponseCode\":1,\"Output\":\"bad\\u001b[2J\"},{\"Name\":\"b\","
	    "\"ResponseCode\":-1,\"Output\":\"\"}]}", 0, NULL);
	assert_int_equal(client_sendcmd_format_result(inv, out, sizeof(out)),
	    0);
	assert_string_equal(out, "mi-9  Failed  code -1\n  [a]\n"
	    "    bad?[2J\n  [b]\n");
	json_decref(inv);

	/* Not run (MaxErrors): no plugins, the details differ. */
	inv = json_loads("{\"InstanceId\":\"mi-7\",\"Status\":\"Cancelled\","
	    "\"StatusDetails\":\"Cancelled\"}", 0, NULL);
	assert_int_equal(client_sendcmd_format_result(inv, out, sizeof(out)),
	    0);
	assert_string_equal(out, "mi-7  Cancelled\n");
	json_decref(inv);
	inv = json_loads("{\"InstanceId\":\"mi-7\",\"Status\":\"TimedOut\","
	    "\"StatusDetails\":\"DeliveryTimedOut\"}", 0, NULL);
	client_sendcmd_format_result(inv, out, sizeof(out));
	assert_string_equal(out, "mi-7  TimedOut/DeliveryTimedOut\n");
	/* Tiny buffers are still terminated. */
	client_sendcmd_format_result(inv, out, 5);
	assert_string_equal(out, "mi-7");
	json_decref(inv);
	/* Garbage. */
	inv = json_loads("{\"InstanceId\":5,\"Status\":[],\"CommandPlugins\":"
	    "{}}", 0, NULL);
	assert_int_equal(client_sendcmd_format_result(inv, out, sizeof(out)),
	    0);
	assert_string_equal(out, "  -\n");
	json_decref(inv);
	assert_int_equal(client_sendcmd_format_result(NULL, out, sizeof(out)),
	    0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_parameters),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_parse_and_body),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_result),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
