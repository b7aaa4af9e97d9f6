/* commands: the dispatcher's rules without a network: MaxConcurrency and
 * MaxErrors as counts (numbers and percentages), a command's Status from
 * its invocations, JobIds, the agent's statuses, and agent_job_reply
 * content applied to an invocation (outputs cut at AWS's limits, steps
 * merged across replies, Cancelling kept, garbage refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/err.h"
#include "server/commands.h"
#include "server/store_commands.h"

#define CMD "0b5a1c7e-1234-4d2e-9f00-aabbccddeeff"
#define INST "mi-0123456789abcdef0"

static void
test_rate_numbers(void **state)
{
	(void)state;
	assert_int_equal(commands_rate_value("10", 50, 1), 10);
	assert_int_equal(commands_rate_value("0", 50, 0), 0);
	assert_int_equal(commands_rate_value("0", 50, 1), 1);
	assert_int_equal(commands_rate_value("1", 0, 1), 1);
	assert_int_equal(commands_rate_value("200", 20, 1), 200);
	/* Absent: everything at once, no error allowed. */
	assert_int_equal(commands_rate_value(NULL, 20, 1), 20);
	assert_int_equal(commands_rate_value("", 20, 0), 0);
}

static void
test_rate_percentages(void **state)
{
	(void)state;
	assert_int_equal(commands_rate_value("10%", 50, 1), 5);
	assert_int_equal(commands_rate_value("100%", 1000, 1), 1000);
	assert_int_equal(commands_rate_value("50%", 5, 1), 2);
	/* A share below one target: concurrency 1, errors 0. */
	assert_int_equal(commands_rate_value("10%", 5, 1), 1);
	assert_int_equal(commands_rate_value("10%", 5, 0), 0);
	assert_int_equal(commands_rate_value("25%", 20, 0), 5);
	assert_int_equal(commands_rate_value("0%", 20, 1), 1);
	assert_int_equal(commands_rate_value("150%", 20, 1), 20);
}

static void
test_rate_garbage(void **state)
{
	(void)state;
	assert_int_equal(commands_rate_value("abc", 20, 1), 1);
	assert_int_equal(commands_rate_value("abc", 20, 0), 0);
	assert_int_equal(commands_rate_value("-3", 20, 0), 0);
	assert_int_equal(commands_rate_value("5%%", 20, 1), 1);
	assert_int_equal(commands_rate_value("5x", 20, 0), 0);
	assert_int_equal(commands_rate_value("%", 20, 1), 1);
	assert_int_equal(commands_rate_value("99999999999999", 20, 1),
	    1000000);
}

static void
tally(struct commands_tally *t, const char *const *sd, size_t n)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < n; i++)
		commands_tally_add(t, sd[2 * i], sd[2 * i + 1],
		    strcmp(sd[2 * i], "Pending") != 0 &&
		    strcmp(sd[2 * i], "Delayed") != 0 ? 1 : 0);
}

static void
agg(const char *const *sd, size_t n, int max_errors, const char *status,
    const char *details)
{
	struct commands_tally t;
	struct command_rec c;

	memset(&c, 0, sizeof(c));
	tally(&t, sd, n);
	commands_aggregate(&t, max_errors, &c);
	assert_string_equal(c.status, status);
	assert_string_equal(c.status_details, details);
	assert_int_equal(c.target_count, (int)n);
}

static void
test_aggregate(void **state)
{
	static const char *const ok[] = { "Success", "Success", "Success",
	    "Success" };
	static const char *const pending[] = { "Pending", "Pending",
	    "Delayed", "Delayed" };
	static const char *const running[] = { "Success", "Success",
	    "Pending", "Pending" };
	static const char *const failed[] = { "Success", "Success", "Failed",
	    "Failed" };
	static const char *const exec_to[] = { "TimedOut",
	    "ExecutionTimedOut" };
	static const char *const deliv_to[] = { "TimedOut",
	    "DeliveryTimedOut" };
	static const char *const incomplete[] = { "Success", "Success",
	    "Failed", "Failed", "Success", "Success" };
	static const char *const partial_dto[] = { "Success", "Success",
	    "TimedOut", "DeliveryTimedOut", "Success", "Success" };
	static const char *const terminated[] = { "Failed", "Failed",
	    "Failed", "Failed", "Cancelled", "Terminated" };
	static const char *const cancelling[] = { "Cancelling", "Cancelling",
	    "Success", "Success" };
	static const char *const cancelled[] = { "Cancelled", "Cancelled",
	    "Success", "Success" };
	struct commands_tally t;
	struct command_rec c;

	(void)state;
	agg(ok, 2, 0, "Success", "Success");
	agg(pending, 2, 0, "Pending", "Pending");
	agg(running, 2, 0, "InProgress", "InProgress");
	agg(failed, 2, 0, "Failed", "Failed");
	agg(exec_to, 1, 0, "TimedOut", "ExecutionTimedOut");
	agg(deliv_to, 1, 0, "TimedOut", "DeliveryTimedOut");
	/* Not enough failures to fail it: Incomplete. */
	agg(incomplete, 3, 1, "Failed", "Incomplete");
	agg(partial_dto, 3, 0, "TimedOut", "DeliveryTimedOut");
	agg(partial_dto, 3, 1, "Failed", "Incomplete");
	agg(terminated, 3, 1, "Failed", "Failed");
	agg(cancelling, 2, 0, "Cancelling", "Cancelling");
	agg(cancelled, 2, 0, "Cancelled", "Cancelled");
	/* The counts: delivery timeouts are not errors. */
	memset(&c, 0, sizeof(c));
	tally(&t, terminated, 3);
	commands_aggregate(&t, 1, &c);
	assert_int_equal(c.completed_count, 3);
	assert_int_equal(c.error_count, 2);
	tally(&t, partial_dto, 3);
	commands_aggregate(&t, 0, &c);
	assert_int_equal(c.error_count, 0);
	assert_int_equal(c.delivery_timed_out_count, 1);
	assert_int_equal(c.completed_count, 3);
	tally(&t, running, 2);
	commands_aggregate(&t, 0, &c);
	assert_int_equal(c.completed_count, 1);
	/* No target at all: nothing failed. */
	memset(&t, 0, sizeof(t));
	commands_aggregate(&t, 0, &c);
	assert_string_equal(c.status, "Success");
}

static void
test_map_status(void **state)
{
	char s[STORE_CMD_STATUS_SIZE], d[STORE_CMD_DETAILS_SIZE];

	(void)state;
	commands_map_status("TimedOut", s, sizeof(s), d, sizeof(d));
	assert_string_equal(s, "TimedOut");
	assert_string_equal(d, "ExecutionTimedOut");
	commands_map_status("SuccessAndReboot", s, sizeof(s), d, sizeof(d));
	assert_string_equal(s, "Success");
	commands_map_status("Cancelled", s, sizeof(s), d, sizeof(d));
	assert_string_equal(s, "Cancelled");
	commands_map_status("InProgress", s, sizeof(s), d, sizeof(d));
	assert_string_equal(d, "InProgress");
	commands_map_status("Whatever", s, sizeof(s), d, sizeof(d));
	assert_string_equal(s, "Failed");
	commands_map_status(NULL, s, sizeof(s), d, sizeof(d));
	assert_string_equal(s, "Failed");
	assert_true(commands_status_final("Success"));
	assert_true(commands_status_final("TimedOut"));
	assert_false(commands_status_final("Cancelling"));
	assert_false(commands_status_final("Delayed"));
}

static void
test_job_id(void **state)
{
	char c[STORE_COMMAND_ID_SIZE], i[64];

	(void)state;
	assert_int_equal(commands_parse_job_id("aws.ssm." CMD "." INST, c, i),
	    0);
	assert_string_equal(c, CMD);
	assert_string_equal(i, INST);
	assert_int_not_equal(commands_parse_job_id(NULL, c, i), 0);
	assert_int_not_equal(commands_parse_job_id("", c, i), 0);
	assert_int_not_equal(commands_parse_job_id("aws.ssm.", c, i), 0);
	assert_int_not_equal(commands_parse_job_id("aws.ssm.x.", c, i), 0);
	assert_int_not_equal(commands_parse_job_id("aws.ssm..mi-1", c, i), 0);
	assert_int_not_equal(commands_parse_job_id("aws.ec2." CMD "." INST,
	    c, i), 0);
	assert_int_not_equal(commands_parse_job_id("aws.ssm.nodot", c, i), 0);
	/* A command id longer than a UUID. */
	assert_int_not_equal(commands_parse_job_id("aws.ssm."
	    "0123456789012345678901234567890123456789.mi-1", c, i), 0);
}

static void
inv_init(struct invocation_rec *v)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->command_id, sizeof(v->command_id), CMD);
	snprintf(v->instance_id, sizeof(v->instance_id), INST);
	snprintf(v->status, sizeof(v->status), "InProgress");
	snprintf(v->status_details, sizeof(v->status_details), "InProgress");
	v->delivered_ms = 1000;
	v->response_code = -1;
	v->plugins_json = strdup("[]");
}

static char *
reply(const char *doc_status, const char *step_status, int code,
    const char *out, const char *err)
{
	json_t *o;
	char *s;

	o = json_pack("{s:{s:s}, s:s, s:s, s:{s:{s:s, s:i, s:s, s:s, s:s, "
	    "s:s, s:s, s:s, s:s}}}",
	    "additionalInfo", "dateTime", "2026-12-05T02:00:00.000Z",
	    "documentStatus", doc_status, "documentTraceOutput", "",
	    "runtimeStatus", "aws:runShellScript",
	    "status", step_status, "code", code, "name", "aws:runShellScript",
	    "output", out, "startDateTime", "2026-12-05T02:00:01.250Z",
	    "endDateTime", "2026-12-05T02:00:03.500Z", "stepName",
	    "aws:runShellScript", "standardOutput", out, "standardError", err);
	assert_non_null(o);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static void
test_reply_success(void **state)
{
	struct invocation_rec v;
	struct command_rec c;
	json_t *a, *p;
	json_error_t jerr;
	char *r;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.output_s3_bucket = "bucket";
	inv_init(&v);
	r = reply("Success", "Success", 0, "hello\n", "");
	assert_int_equal(commands_apply_reply(&v, &c, r, strlen(r), 5000), 0);
	free(r);
	assert_string_equal(v.status, "Success");
	assert_string_equal(v.status_details, "Success");
	assert_int_equal(v.response_code, 0);
	assert_string_equal(v.stdout_text, "hello\n");
	assert_string_equal(v.stderr_text, "");
	/* 2026-12-05T02:00:01.250Z and ...03.500Z */
	assert_int_equal(v.started_ms, (int64_t)1796436001250LL);
	assert_int_equal(v.ended_ms, (int64_t)1796436003500LL);
	a = json_loads(v.plugins_json, 0, &jerr);
	assert_true(json_is_array(a));
	assert_int_equal(json_array_size(a), 1);
	p = json_array_get(a, 0);
	assert_string_equal(json_string_value(json_object_get(p, "Name")),
	    "aws:runShellScript");
	assert_string_equal(json_string_value(json_object_get(p, "Status")),
	    "Success");
	assert_string_equal(json_string_value(json_object_get(p,
	    "OutputS3BucketName")), "bucket");
	assert_int_equal(json_integer_value(json_object_get(p,
	    "ResponseCode")), 0);
	json_decref(a);
	invocation_rec_clear(&v);
}

static void
test_reply_failed_and_timeout(void **state)
{
	struct invocation_rec v;
	char *r;

	(void)state;
	inv_init(&v);
	r = reply("Failed", "Failed", 3, "", "boom\n");
	assert_int_equal(commands_apply_reply(&v, NULL, r, strlen(r), 5000),
	    0);
	free(r);
	assert_string_equal(v.status, "Failed");
	assert_int_equal(v.response_code, 3);
	assert_string_equal(v.stderr_text, "boom\n");
	invocation_rec_clear(&v);

	inv_init(&v);
	r = reply("TimedOut", "TimedOut", 124, "", "");
	assert_int_equal(commands_apply_reply(&v, NULL, r, strlen(r), 5000),
	    0);
	free(r);
	assert_string_equal(v.status, "TimedOut");
	assert_string_equal(v.status_details, "ExecutionTimedOut");
	assert_int_equal(v.response_code, 124);
	invocation_rec_clear(&v);
}

static void
test_reply_in_progress_then_final(void **state)
{
	struct invocation_rec v;
	char *r;

	(void)state;
	inv_init(&v);
	v.delivered_ms = 0;
	r = reply("InProgress", "InProgress", 0, "part", "");
	assert_int_equal(commands_apply_reply(&v, NULL, r, strlen(r), 7000),
	    0);
	free(r);
	assert_string_equal(v.status, "InProgress");
	assert_int_equal(v.ended_ms, 0);
	assert_int_equal(v.response_code, -1);
	/* A reply proves delivery (its ack may have been lost). */
	assert_int_equal(v.delivered_ms, 7000);
	assert_string_equal(v.stdout_text, "part");
	r = reply("Success", "Success", 0, "partial and more", "");
	assert_int_equal(commands_apply_reply(&v, NULL, r, strlen(r), 8000),
	    0);
	free(r);
	assert_string_equal(v.status, "Success");
	assert_string_equal(v.stdout_text, "partial and more");
	/* The step is replaced, not added again. */
	assert_non_null(strstr(v.plugins_json, "aws:runShellScript"));
	assert_null(strstr(strstr(v.plugins_json, "\"Name\"") + 1,
	    "\"Name\""));
	invocation_rec_clear(&v);
}

static void
test_reply_cancelling(void **state)
{
	struct invocation_rec v;
	char *r;

	(void)state;
	inv_init(&v);
	snprintf(v.status, sizeof(v.status), "Cancelling");
	snprintf(v.status_details, sizeof(v.status_details), "Cancelling");
	r = reply("InProgress", "InProgress", 0, "x", "");
	assert_int_equal(commands_apply_reply(&v, NULL, r, strlen(r), 1), 0);
	free(r);
	assert_string_equal(v.status, "Cancelling");
	r = reply("Cancelled", "Cancelled", 0, "x", "");
	assert_int_equal(commands_apply_reply(&v, NULL, r, strlen(r), 2), 0);
	free(r);
	assert_string_equal(v.status, "Cancelled");
	assert_string_equal(v.status_details, "Cancelled");
	invocation_rec_clear(&v);
}

static size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static void
test_reply_output_limits(void **state)
{
	struct invocation_rec v;
	char *out, *err, *r;
	size_t i;

	(void)state;
	/* 30,000 two-byte characters: cut at 24,000 characters, never in
	 * the middle of one. */
	out = malloc(60001);
	err = malloc(20001);
	assert_non_null(out);
	assert_non_null(err);
	for (i = 0; i < 30000; i++)
		memcpy(out + 2 * i, "\xc3\xa9", 2);
	out[60000] = '\0';
	memset(err, 'e', 20000);
	err[20000] = '\0';
	inv_init(&v);
	r = reply("Success", "Success", 0, out, err);
	/* Bigger than the agent ever sends: refused as garbage. */
	assert_int_equal(commands_apply_reply(&v, NULL, r, strlen(r), 1),
	    PH_ERR_INVALID);
	free(r);
	out[2 * 25000] = '\0';
	err[9000] = '\0';
	r = reply("Success", "Success", 0, out, err);
	assert_int_equal(commands_apply_reply(&v, NULL, r, strlen(r), 1), 0);
	free(r);
	assert_int_equal(utf8_chars(v.stdout_text), 24000);
	assert_int_equal(strlen(v.stdout_text), 48000);
	assert_int_equal(strlen(v.stderr_text), 8000);
	free(out);
	free(err);
	invocation_rec_clear(&v);
}

static void
test_reply_garbage(void **state)
{
	static const char *const bad[] = {
		"", "not json", "[]", "{}", "null", "{\"documentStatus\":3}",
		"{\"documentStatus\":\"Success\",\"runtimeStatus\":\"x\"}",
		"{\"documentStatus\":\"Success\",\"runtimeStatus\":[1]}",
		"{\"documentStatus\":\"Success\"",
	};
	static const char nul[] = { 0, 1, 2 };
	static const char *const odd[] = {
		/* Steps that are not objects, codes that are not numbers,
		 * times that are not times: taken, with what is usable. */
		"{\"documentStatus\":\"Success\",\"runtimeStatus\":{\"a\":1}}",
		"{\"documentStatus\":\"Failed\",\"runtimeStatus\":{\"a\":"
		    "{\"status\":\"Failed\",\"code\":\"x\",\"startDateTime\":"
		    "\"9999-99-99T99:99:99Z\",\"standardOutput\":7}}}",
		"{\"documentStatus\":\"Success\",\"runtimeStatus\":null}",
	};
	struct invocation_rec v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		inv_init(&v);
		assert_int_equal(commands_apply_reply(&v, NULL, bad[i],
		    strlen(bad[i]), 1), PH_ERR_INVALID);
		/* Untouched. */
		assert_string_equal(v.status, "InProgress");
		assert_string_equal(v.plugins_json, "[]");
		invocation_rec_clear(&v);
	}
	for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		inv_init(&v);
		assert_int_equal(commands_apply_reply(&v, NULL, odd[i],
		    strlen(odd[i]), 1), 0);
		assert_true(commands_status_final(v.status));
		invocation_rec_clear(&v);
	}
	/* A broken plugins_json from the store is started over. */
	inv_init(&v);
	free(v.plugins_json);
	v.plugins_json = strdup("{broken");
	assert_int_equal(commands_apply_reply(&v, NULL, odd[0],
	    strlen(odd[0]), 1), 0);
	invocation_rec_clear(&v);
	inv_init(&v);
	assert_int_equal(commands_apply_reply(&v, NULL, NULL, 0, 1),
	    PH_ERR_INVALID);
	assert_int_equal(commands_apply_reply(&v, NULL, nul, sizeof(nul), 1),
	    PH_ERR_INVALID);
	invocation_rec_clear(&v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_numbers),
		cmocka_unit_test(test_rate_percentages),
		cmocka_unit_test(test_rate_garbage),
		cmocka_unit_test(test_aggregate),
		cmocka_unit_test(test_map_status),
		cmocka_unit_test(test_job_id),
		cmocka_unit_test(test_reply_success),
		cmocka_unit_test(test_reply_failed_and_timeout),
		cmocka_unit_test(test_reply_in_progress_then_final),
		cmocka_unit_test(test_reply_cancelling),
		cmocka_unit_test(test_reply_output_limits),
		cmocka_unit_test(test_reply_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
