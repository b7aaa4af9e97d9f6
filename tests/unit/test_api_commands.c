/* api_ssm_commands: SendCommand, ListCommands, ListCommandInvocations,
 * GetCommandInvocation and CancelCommand through api_ssm_dispatch on a
 * real store in a temporary directory: the Command object, targets by
 * InstanceIds and by tags, AWS's errors, authorisation, the output
 * limits, paging and filters, and garbage in every member. The
 * dispatcher is absent (srv->commands NULL) except for CancelCommand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <uv.h>

#include "common/err.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/api_ssm.h"
#include "server/authz.h"
#include "server/commands.h"
#include "server/store.h"
#include "server/store_commands.h"
#include "support/fixture.h"

#define T0 ((int64_t)1700000000000)
#define NINST 3

struct fx {
	struct tmpdb db;
	struct server srv;
	struct principal admin, bob;
	char mi[NINST][21];
};

static void
register_instances(struct fx *f)
{
	static const struct store_tag web[] = { { "role", "web" },
	    { "env", "prod" } };
	static const struct store_tag db[] = { { "role", "db" },
	    { "env", "prod" } };
	char id[STORE_ACTIVATION_ID_SIZE], code[STORE_ACTIVATION_CODE_LEN + 1];
	char role[STORE_IAM_ROLE_SIZE], host[32];
	struct instance_conn_info info;
	struct activation_new a;
	int i;

	memset(&a, 0, sizeof(a));
	a.iam_role = "SSMServiceRole";
	a.registration_limit = 10;
	a.expiration_ms = T0 + 3600000;
	assert_int_equal(store_activation_create(f->srv.store, &a, T0, id,
	    code), 0);
	for (i = 0; i < NINST; i++) {
		assert_int_equal(store_activation_register(f->srv.store, id,
		    code, T0, NULL, "sha256:x", f->mi[i], role), 0);
		memset(&info, 0, sizeof(info));
		snprintf(host, sizeof(host), "host%d", i);
		info.platform_type = "Linux";
		info.computer_name = host;
		info.agent_version = "3.3.1000.0";
		assert_int_equal(store_instance_connected(f->srv.store,
		    f->mi[i], &info, T0), 0);
	}
	assert_int_equal(store_tags_add(f->srv.store, "ManagedInstance",
	    f->mi[0], web, 2, 50), 0);
	assert_int_equal(store_tags_add(f->srv.store, "ManagedInstance",
	    f->mi[1], db, 2, 50), 0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (test_server_open(&f->srv, &f->db, "ph-cmdapi") != 0)
		return -1;
	f->srv.loop = uv_default_loop();
	test_user(&f->admin, "admin", 1);
	test_user(&f->bob, "bob", 0);
	register_instances(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->srv.commands != NULL) {
		commands_free(f->srv.commands);
		uv_run(f->srv.loop, UV_RUN_NOWAIT);
	}
	test_server_close(&f->srv, &f->db);
	free(f);
	return 0;
}

static json_t *
run_as(struct fx *f, const struct principal *p, const char *action,
    const char *body, struct api_error *err)
{
	json_error_t jerr;
	json_t *in;

	in = json_loads(body, 0, &jerr);
	if (in == NULL)
		fail_msg("bad test JSON %s: %s", body, jerr.text);
	return test_ssm_call(&f->srv, p, T0 + 1000, action, in, err);
}

static json_t *
run(struct fx *f, const char *action, const char *body,
    struct api_error *err)
{
	return run_as(f, &f->admin, action, body, err);
}

static json_t *
ok(struct fx *f, const char *action, const char *body)
{
	struct api_error err;
	json_t *out = run(f, action, body, &err);

	if (out == NULL)
		fail_msg("%s %s: %s: %s", action, body, err.type, err.message);
	return out;
}

static void
expect_error(struct fx *f, const char *action, const char *body,
    const char *type, const char *fragment)
{
	struct api_error err;
	json_t *out = run(f, action, body, &err);

	if (out != NULL)
		fail_msg("%s %s succeeded", action, body);
	if (strcmp(err.type, type) != 0)
		fail_msg("%s %s: %s (%s), wanted %s", action, body, err.type,
		    err.message, type);
	if (fragment != NULL && strstr(err.message, fragment) == NULL)
		fail_msg("%s: message \"%s\" lacks \"%s\"", body, err.message,
		    fragment);
}

static const char *
sget(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	if (s == NULL)
		fail_msg("member %s missing", k);
	return s;
}

static json_int_t
iget(json_t *o, const char *k)
{
	json_t *x = json_object_get(o, k);

	if (!json_is_integer(x))
		fail_msg("member %s missing", k);
	return json_integer_value(x);
}

/* SendCommand; the new CommandId copied to id. */
static json_t *
send_ok(struct fx *f, const char *body, char id[STORE_COMMAND_ID_SIZE])
{
	json_t *out = ok(f, "SendCommand", body), *cmd;

	cmd = json_object_get(out, "Command");
	assert_non_null(cmd);
	snprintf(id, STORE_COMMAND_ID_SIZE, "%s", sget(cmd, "CommandId"));
	return out;
}

static void
test_send_instance_ids(void **state)
{
	struct fx *f = *state;
	char id[STORE_COMMAND_ID_SIZE], body[1024];
	json_t *out, *cmd, *inv, *l;

	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"%s\",\"%s\"],\"Parameters\":{\"commands\":"
	    "[\"echo hi\"]},\"Comment\":\"first\",\"TimeoutSeconds\":600,"
	    "\"MaxConcurrency\":\"1\",\"MaxErrors\":\"10%%\","
	    "\"OutputS3BucketName\":\"my-bucket\",\"OutputS3KeyPrefix\":\"p/\","
	    "\"ServiceRoleArn\":\"arn:aws:iam::123456789012:role/sns\","
	    "\"NotificationConfig\":{\"NotificationArn\":\"arn:aws:sns:us-east-"
	    "1:123456789012:t\",\"NotificationEvents\":[\"All\"],"
	    "\"NotificationType\":\"Command\"},\"CloudWatchOutputConfig\":"
	    "{\"CloudWatchOutputEnabled\":true},\"AlarmConfiguration\":"
	    "{\"Alarms\":[{\"Name\":\"cpu\"}]},\"SomethingNew\":1}",
	    f->mi[1], f->mi[0]);
	out = send_ok(f, body, id);
	cmd = json_object_get(out, "Command");
	assert_int_equal(strlen(id), 36);
	assert_string_equal(sget(cmd, "DocumentName"), "AWS-RunShellScript");
	assert_string_equal(sget(cmd, "DocumentVersion"), "1");
	assert_string_equal(sget(cmd, "Comment"), "first");
	assert_string_equal(sget(cmd, "Status"), "Pending");
	assert_string_equal(sget(cmd, "StatusDetails"), "Pending");
	assert_string_equal(sget(cmd, "MaxConcurrency"), "1");
	assert_string_equal(sget(cmd, "MaxErrors"), "10%");
	assert_string_equal(sget(cmd, "OutputS3BucketName"), "my-bucket");
	assert_string_equal(sget(cmd, "OutputS3KeyPrefix"), "p/");
	assert_string_equal(sget(cmd, "OutputS3Region"), "us-east-1");
	assert_string_equal(sget(cmd, "ServiceRole"),
	    "arn:aws:iam::123456789012:role/sns");
	assert_int_equal(iget(cmd, "TargetCount"), 2);
	assert_int_equal(iget(cmd, "CompletedCount"), 0);
	assert_int_equal(iget(cmd, "ErrorCount"), 0);
	assert_int_equal(iget(cmd, "DeliveryTimedOutCount"), 0);
	assert_int_equal(iget(cmd, "TimeoutSeconds"), 600);
	assert_int_equal(json_number_value(json_object_get(cmd,
	    "RequestedDateTime")), (T0 + 1000) / 1000.0);
	assert_int_equal(json_number_value(json_object_get(cmd,
	    "ExpiresAfter")), (T0 + 1000 + 600000) / 1000.0);
	assert_int_equal(json_array_size(json_object_get(cmd, "InstanceIds")),
	    2);
	assert_int_equal(json_array_size(json_object_get(cmd, "Targets")), 0);
	l = json_object_get(json_object_get(cmd, "Parameters"), "commands");
	assert_string_equal(json_string_value(json_array_get(l, 0)),
	    "echo hi");
	assert_string_equal(sget(json_object_get(cmd, "NotificationConfig"),
	    "NotificationType"), "Command");
	assert_true(json_is_true(json_object_get(json_object_get(cmd,
	    "CloudWatchOutputConfig"), "CloudWatchOutputEnabled")));
	assert_string_equal(sget(json_array_get(json_object_get(json_object_get(
	    cmd, "AlarmConfiguration"), "Alarms"), 0), "Name"), "cpu");
	json_decref(out);

	/* one invocation per target, in the order given */
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\"}", id);
	out = ok(f, "ListCommandInvocations", body);
	l = json_object_get(out, "CommandInvocations");
	assert_int_equal(json_array_size(l), 2);
	inv = json_array_get(l, 0);
	assert_string_equal(sget(inv, "InstanceId"), f->mi[1]);
	assert_string_equal(sget(inv, "InstanceName"), "host1");
	assert_string_equal(sget(inv, "Status"), "Pending");
	assert_string_equal(sget(inv, "Comment"), "first");
	assert_string_equal(sget(inv, "DocumentName"), "AWS-RunShellScript");
	assert_int_equal(json_array_size(json_object_get(inv,
	    "CommandPlugins")), 0);
	json_decref(out);

	/* GetCommandInvocation while pending: what the waiter retries on */
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceId\":"
	    "\"%s\"}", id, f->mi[0]);
	out = ok(f, "GetCommandInvocation", body);
	assert_string_equal(sget(out, "Status"), "Pending");
	assert_int_equal(iget(out, "ResponseCode"), -1);
	assert_string_equal(sget(out, "ExecutionStartDateTime"), "");
	assert_string_equal(sget(out, "StandardOutputContent"), "");
	json_decref(out);

	/* ListCommands shows it */
	out = ok(f, "ListCommands", "{}");
	l = json_object_get(out, "Commands");
	assert_int_equal(json_array_size(l), 1);
	assert_string_equal(sget(json_array_get(l, 0), "CommandId"), id);
	assert_non_null(json_object_get(json_array_get(l, 0),
	    "AlarmConfiguration"));
	json_decref(out);
}

static void
test_send_targets(void **state)
{
	struct fx *f = *state;
	char id[STORE_COMMAND_ID_SIZE], body[512];
	json_t *out, *cmd;

	/* tag:KEY */
	out = send_ok(f, "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"Targets\":[{\"Key\":\"tag:role\",\"Values\":[\"web\"]}],"
	    "\"Parameters\":{\"commands\":[\"true\"]}}", id);
	cmd = json_object_get(out, "Command");
	assert_int_equal(iget(cmd, "TargetCount"), 1);
	assert_int_equal(json_array_size(json_object_get(cmd, "Targets")), 1);
	assert_string_equal(sget(cmd, "MaxConcurrency"), "50");
	assert_string_equal(sget(cmd, "MaxErrors"), "0");
	assert_int_equal(iget(cmd, "TimeoutSeconds"), 3600);
	json_decref(out);
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceId\":"
	    "\"%s\"}", id, f->mi[0]);
	json_decref(ok(f, "GetCommandInvocation", body));
	/* tag-key: both tagged instances */
	out = send_ok(f, "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"Targets\":[{\"Key\":\"tag-key\",\"Values\":[\"env\"]}],"
	    "\"Parameters\":{\"commands\":[\"true\"]}}", id);
	assert_int_equal(iget(json_object_get(out, "Command"), "TargetCount"),
	    2);
	json_decref(out);
	/* several targets: all must match */
	out = send_ok(f, "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"Targets\":[{\"Key\":\"tag-key\",\"Values\":[\"env\"]},"
	    "{\"Key\":\"tag:role\",\"Values\":[\"db\",\"other\"]}],"
	    "\"Parameters\":{\"commands\":[\"true\"]}}", id);
	assert_int_equal(iget(json_object_get(out, "Command"), "TargetCount"),
	    1);
	json_decref(out);
	/* Key InstanceIds */
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"Targets\":[{\"Key\":\"InstanceIds\",\"Values\":[\"%s\"]}],"
	    "\"Parameters\":{\"commands\":[\"true\"]}}", f->mi[2]);
	out = send_ok(f, body, id);
	assert_int_equal(iget(json_object_get(out, "Command"), "TargetCount"),
	    1);
	json_decref(out);
	/* the document by ARN, at $LATEST */
	snprintf(body, sizeof(body), "{\"DocumentName\":\"arn:aws:ssm:"
	    "us-east-1::document/AWS-RunShellScript\",\"DocumentVersion\":"
	    "\"$LATEST\",\"InstanceIds\":[\"%s\"],\"Parameters\":"
	    "{\"commands\":[\"true\"]}}", f->mi[2]);
	out = send_ok(f, body, id);
	cmd = json_object_get(out, "Command");
	assert_string_equal(sget(cmd, "DocumentName"), "AWS-RunShellScript");
	assert_string_equal(sget(cmd, "DocumentVersion"), "1");
	json_decref(out);
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"DocumentVersion\":\"7\",\"InstanceIds\":[\"%s\"],"
	    "\"Parameters\":{\"commands\":[\"true\"]}}", f->mi[2]);
	expect_error(f, "SendCommand", body, "InvalidDocumentVersion", NULL);
	expect_error(f, "SendCommand", "{\"DocumentName\":\"arn:aws:ssm:x\","
	    "\"InstanceIds\":[\"mi-0123456789abcdef0\"]}", "InvalidDocument",
	    NULL);
	/* InstanceIds=*: all of them */
	out = send_ok(f, "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"Targets\":[{\"Key\":\"InstanceIds\",\"Values\":[\"*\"]}],"
	    "\"Parameters\":{\"commands\":[\"true\"]}}", id);
	assert_int_equal(iget(json_object_get(out, "Command"), "TargetCount"),
	    NINST);
	json_decref(out);
	/* nothing matches: done at once */
	out = send_ok(f, "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"Targets\":[{\"Key\":\"tag:role\",\"Values\":[\"none\"]}],"
	    "\"Parameters\":{\"commands\":[\"true\"]}}", id);
	cmd = json_object_get(out, "Command");
	assert_int_equal(iget(cmd, "TargetCount"), 0);
	assert_string_equal(sget(cmd, "Status"), "Success");
	json_decref(out);
	/* a deregistered instance is no target */
	assert_int_equal(store_instance_deregister(f->srv.store, f->mi[0],
	    T0), 0);
	out = send_ok(f, "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"Targets\":[{\"Key\":\"tag-key\",\"Values\":[\"env\"]}],"
	    "\"Parameters\":{\"commands\":[\"true\"]}}", id);
	assert_int_equal(iget(json_object_get(out, "Command"), "TargetCount"),
	    1);
	json_decref(out);
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"%s\"],\"Parameters\":{\"commands\":"
	    "[\"true\"]}}", f->mi[0]);
	expect_error(f, "SendCommand", body, "InvalidInstanceId", f->mi[0]);
}

static void
test_send_errors(void **state)
{
	struct fx *f = *state;
	char body[1024], big[200];
	int i;

	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"Parameters\":"
	    "{\"commands\":[\"true\"]}}");
	expect_error(f, "SendCommand", body, "InvalidInstanceId", NULL);
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"%s\",\"%s\"],\"Parameters\":"
	    "{\"commands\":[\"true\"]}}", f->mi[0], f->mi[0]);
	expect_error(f, "SendCommand", body, "DuplicateInstanceId", NULL);
	snprintf(body, sizeof(body), "{\"DocumentName\":\"No-Such-Doc\","
	    "\"InstanceIds\":[\"%s\"]}", f->mi[0]);
	expect_error(f, "SendCommand", body, "InvalidDocument", NULL);
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"%s\"],\"Parameters\":{\"nope\":[\"x\"]}}",
	    f->mi[0]);
	expect_error(f, "SendCommand", body, "InvalidParameters", NULL);
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"%s\"],\"Parameters\":{\"commands\":[\"x\"]},"
	    "\"OutputS3BucketName\":\"Bad_Bucket\"}", f->mi[0]);
	expect_error(f, "SendCommand", body, "InvalidOutputFolder", NULL);
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"%s\"],\"Parameters\":{\"commands\":[\"x\"]},"
	    "\"DocumentHash\":\"00\",\"DocumentHashType\":\"Sha256\"}",
	    f->mi[0]);
	expect_error(f, "SendCommand", body, "InvalidDocument", "hash");
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"Parameters\":{\"commands\":[\"x\"]}}");
	expect_error(f, "SendCommand", body, "ValidationException",
	    "InstanceIds or Targets");
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"%s\"],\"Targets\":[{\"Key\":\"tag-key\","
	    "\"Values\":[\"env\"]}]}", f->mi[0]);
	expect_error(f, "SendCommand", body, "ValidationException", NULL);
	expect_error(f, "SendCommand", "{\"DocumentName\":"
	    "\"AWS-RunShellScript\",\"Targets\":[{\"Key\":"
	    "\"resource-groups:Name\",\"Values\":[\"g\"]}],\"Parameters\":"
	    "{\"commands\":[\"x\"]}}",
	    "InvalidParameters", "not supported");
	expect_error(f, "SendCommand", "{\"DocumentName\":"
	    "\"AWS-RunShellScript\",\"Targets\":[{\"Key\":\"tag:role\","
	    "\"Values\":[]}],\"Parameters\":{\"commands\":[\"x\"]}}",
	    "InvalidParameters", "value");

	/* shapes */
	expect_error(f, "SendCommand", "{}", "ValidationException",
	    "documentName");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"ab\","
	    "\"InstanceIds\":[\"mi-0123456789abcdef0\"]}",
	    "ValidationException", "documentName");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"a b c\","
	    "\"InstanceIds\":[\"mi-0123456789abcdef0\"]}",
	    "ValidationException", "regular expression");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"DocumentVersion\":\"0\",\"InstanceIds\":"
	    "[\"mi-0123456789abcdef0\"]}", "ValidationException",
	    "documentVersion");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"bogus\"]}", "ValidationException",
	    "instanceIds.1.member");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"TimeoutSeconds\":"
	    "29}", "ValidationException", "timeoutSeconds");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"TimeoutSeconds\":"
	    "2592001}", "ValidationException", "timeoutSeconds");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"MaxConcurrency\":"
	    "\"0\"}", "ValidationException", "maxConcurrency");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"MaxConcurrency\":"
	    "\"101%\"}", "ValidationException", "maxConcurrency");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"MaxErrors\":"
	    "\"-1\"}", "ValidationException", "maxErrors");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"DocumentHashType\""
	    ":\"Md5\"}", "ValidationException", "documentHashType");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"NotificationConfig"
	    "\":{\"NotificationType\":\"Sometimes\"}}", "ValidationException",
	    "notificationType");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"AlarmConfiguration"
	    "\":{\"Alarms\":[]}}", "ValidationException", "alarms");
	/* every member's bounds */
	{
		static const struct {
			const char *extra, *path;
		} bounds[] = {
			{ "\"OutputS3Region\":\"ab\"", "outputS3Region" },
			{ "\"OutputS3Region\":\"abcdefghijklmnopqrstu\"",
			    "outputS3Region" },
			{ "\"OutputS3BucketName\":\"ab\"",
			    "outputS3BucketName" },
			{ "\"DocumentHash\":5", NULL },
			{ "\"ServiceRoleArn\":[]", NULL },
			{ "\"NotificationConfig\":{\"NotificationEvents\":"
			    "[\"Sometimes\"]}", "notificationEvents.1" },
			{ "\"NotificationConfig\":[]", NULL },
			{ "\"CloudWatchOutputConfig\":"
			    "{\"CloudWatchLogGroupName\":\"\"}",
			    "cloudWatchLogGroupName" },
			{ "\"AlarmConfiguration\":{\"Alarms\":"
			    "[{\"Name\":\"a\"},{\"Name\":\"b\"}]}", "alarms" },
			{ "\"AlarmConfiguration\":{\"Alarms\":"
			    "[{\"Name\":\"  \"}]}", "alarms.1.member.name" },
			{ "\"AlarmConfiguration\":{\"Alarms\":[{}]}",
			    "alarms.1.member.name" },
			{ "\"AlarmConfiguration\":{}", "alarms" },
			{ "\"Parameters\":{\"commands\":[7]}", NULL },
		};
		size_t k;

		for (k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++) {
			struct api_error e;
			json_t *o;

			snprintf(body, sizeof(body), "{\"DocumentName\":"
			    "\"AWS-RunShellScript\",\"InstanceIds\":"
			    "[\"%s\"],%s}", f->mi[0], bounds[k].extra);
			o = run(f, "SendCommand", body, &e);
			if (o != NULL)
				fail_msg("%s succeeded", body);
			if (strcmp(e.type, "ValidationException") != 0 &&
			    strcmp(e.type, "SerializationException") != 0)
				fail_msg("%s: %s", body, e.type);
			if (bounds[k].path != NULL &&
			    strstr(e.message, bounds[k].path) == NULL)
				fail_msg("%s: %s", body, e.message);
		}
	}
	memset(big, 'k', 164);
	big[164] = '\0';
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"Targets\":[{\"Key\":\"%s\",\"Values\":[\"a\"]}]}", big);
	expect_error(f, "SendCommand", body, "ValidationException",
	    "targets.1.member.key");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"Targets\":[{\"Key\":\"tag:a$b\",\"Values\":[\"a\"]}]}",
	    "ValidationException", "targets.1.member.key");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"Targets\":[{\"Values\":[\"a\"]}]}",
	    "ValidationException", "targets.1.member.key");
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"Targets\":[{\"Key\":\"tag-key\",\"Values\":[");
	for (i = 0; i < 51; i++)
		snprintf(body + strlen(body), sizeof(body) - strlen(body),
		    "%s\"v\"", i ? "," : "");
	snprintf(body + strlen(body), sizeof(body) - strlen(body), "]}]}");
	expect_error(f, "SendCommand", body, "ValidationException",
	    "targets.1.member.values");
	memset(big, 'c', 101);
	big[101] = '\0';
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"Comment\":\"%s\"}",
	    big);
	expect_error(f, "SendCommand", body, "ValidationException", "comment");
	/* 51 instances, 6 targets */
	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[");
	for (i = 0; i < 51; i++)
		snprintf(body + strlen(body), sizeof(body) - strlen(body),
		    "%s\"i-%08x\"", i ? "," : "", i);
	snprintf(body + strlen(body), sizeof(body) - strlen(body), "]}");
	expect_error(f, "SendCommand", body, "ValidationException",
	    "instanceIds");
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"Targets\":[{\"Key\":\"tag-key\",\"Values\":[\"a\"]},"
	    "{\"Key\":\"tag-key\",\"Values\":[\"a\"]},{\"Key\":\"tag-key\","
	    "\"Values\":[\"a\"]},{\"Key\":\"tag-key\",\"Values\":[\"a\"]},"
	    "{\"Key\":\"tag-key\",\"Values\":[\"a\"]},{\"Key\":\"tag-key\","
	    "\"Values\":[\"a\"]}]}", "ValidationException", "targets");
	/* wrong JSON types */
	expect_error(f, "SendCommand", "{\"DocumentName\":5}",
	    "SerializationException", NULL);
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":\"mi-0123456789abcdef0\"}",
	    "SerializationException", NULL);
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"Parameters\":"
	    "{\"commands\":\"x\"}}", "SerializationException", NULL);
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"Parameters\":"
	    "[1]}", "SerializationException", NULL);
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"Targets\":[\"x\"]}", "SerializationException", NULL);
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],\"TimeoutSeconds\":"
	    "\"60\"}", "SerializationException", NULL);
	expect_error(f, "SendCommand", "{\"DocumentName\":\"AWS-RunShellScript"
	    "\",\"InstanceIds\":[\"mi-0123456789abcdef0\"],"
	    "\"CloudWatchOutputConfig\":{\"CloudWatchOutputEnabled\":\"yes\"}}",
	    "SerializationException", NULL);
	/* nothing was created by any of these */
	{
		json_t *out = ok(f, "ListCommands", "{}");

		assert_int_equal(json_array_size(json_object_get(out,
		    "Commands")), 0);
		json_decref(out);
	}
}

/* Parameters that render a document over 1 MiB. */
static void
test_send_too_large(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	size_t n = 0, i;
	char *body, *v;
	json_t *out;

	body = malloc(2 << 20);
	v = malloc(60001);
	assert_non_null(body);
	assert_non_null(v);
	memset(v, 'a', 60000);
	v[60000] = '\0';
	n = (size_t)snprintf(body, 256, "{\"DocumentName\":"
	    "\"AWS-RunShellScript\",\"InstanceIds\":[\"%s\"],"
	    "\"Parameters\":{\"commands\":[", f->mi[0]);
	for (i = 0; i < 20; i++)
		n += (size_t)snprintf(body + n, (2 << 20) - n, "%s\"%s\"",
		    i ? "," : "", v);
	snprintf(body + n, (2 << 20) - n, "]}}");
	out = run(f, "SendCommand", body, &err);
	assert_null(out);
	assert_string_equal(err.type, "MaxDocumentSizeExceeded");
	free(body);
	free(v);
}

static void
test_access_denied(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	char body[256];
	json_t *out;

	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"%s\"],\"Parameters\":{\"commands\":"
	    "[\"true\"]}}", f->mi[0]);
	out = run_as(f, &f->bob, "SendCommand", body, &err);
	assert_null(out);
	assert_string_equal(err.type, "AccessDeniedException");
	assert_non_null(strstr(err.message, "User: arn:aws:iam::123456789012:"
	    "user/bob is not authorized to perform: ssm:SendCommand on "
	    "resource: arn:aws:ssm:us-east-1::document/AWS-RunShellScript"));
	out = run_as(f, &f->bob, "ListCommands", "{}", &err);
	assert_null(out);
	assert_string_equal(err.type, "AccessDeniedException");
	assert_non_null(strstr(err.message, "ssm:ListCommands on resource: *"));
	out = run_as(f, &f->bob, "ListCommandInvocations", "{}", &err);
	assert_null(out);
	assert_string_equal(err.type, "AccessDeniedException");
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceId\":"
	    "\"%s\"}", "11111111-1111-4111-8111-111111111111", f->mi[0]);
	out = run_as(f, &f->bob, "GetCommandInvocation", body, &err);
	assert_null(out);
	assert_string_equal(err.type, "AccessDeniedException");
	out = run_as(f, &f->bob, "CancelCommand", "{\"CommandId\":"
	    "\"11111111-1111-4111-8111-111111111111\"}", &err);
	assert_null(out);
	assert_string_equal(err.type, "AccessDeniedException");
}

/* The agent's results, as the dispatcher writes them. */
static void
set_result(struct fx *f, const char *id, const char *mi, size_t nout,
    size_t nerr)
{
	struct invocation_rec v;
	size_t i;

	assert_int_equal(store_invocation_get(f->srv.store, id, mi, &v), 0);
	snprintf(v.status, sizeof(v.status), "Failed");
	snprintf(v.status_details, sizeof(v.status_details), "Failed");
	v.delivered_ms = T0 + 2000;
	v.started_ms = T0 + 2000;
	v.ended_ms = T0 + 3052;
	v.response_code = 3;
	free(v.stdout_text);
	free(v.stderr_text);
	free(v.plugins_json);
	v.stdout_text = malloc(nout * 2 + 1);
	v.stderr_text = malloc(nerr + 1);
	assert_non_null(v.stdout_text);
	assert_non_null(v.stderr_text);
	/* two-byte characters: the limits count characters */
	for (i = 0; i < nout; i++)
		memcpy(v.stdout_text + 2 * i, "\xc3\xa9", 2);
	v.stdout_text[2 * nout] = '\0';
	memset(v.stderr_text, 'e', nerr);
	v.stderr_text[nerr] = '\0';
	v.plugins_json = strdup("[{\"Name\":\"runShellScript\",\"PluginName\":"
	    "\"runShellScript\",\"Status\":\"Failed\",\"StatusDetails\":"
	    "\"Failed\",\"ResponseCode\":3,\"ResponseStartDateTime\":"
	    "1700000002000,\"ResponseFinishDateTime\":1700000003052,"
	    "\"Output\":\"step out\",\"StandardOutputContent\":\"step out\","
	    "\"StandardErrorContent\":\"step err\"}]");
	assert_int_equal(store_invocation_update(f->srv.store, &v), 0);
	invocation_rec_clear(&v);
}

static void
test_get_invocation(void **state)
{
	struct fx *f = *state;
	char id[STORE_COMMAND_ID_SIZE], body[512];
	json_t *out, *p;

	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"%s\"],\"Parameters\":{\"commands\":"
	    "[\"true\"]}}", f->mi[0]);
	json_decref(send_ok(f, body, id));
	set_result(f, id, f->mi[0], 30000, 9000);
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceId\":"
	    "\"%s\"}", id, f->mi[0]);
	out = ok(f, "GetCommandInvocation", body);
	assert_string_equal(sget(out, "Status"), "Failed");
	assert_int_equal(iget(out, "ResponseCode"), 3);
	assert_string_equal(sget(out, "PluginName"), "runShellScript");
	assert_string_equal(sget(out, "ExecutionStartDateTime"),
	    "2023-11-14T22:13:22.000Z");
	assert_string_equal(sget(out, "ExecutionEndDateTime"),
	    "2023-11-14T22:13:23.052Z");
	assert_string_equal(sget(out, "ExecutionElapsedTime"), "PT1.052S");
	assert_int_equal(strlen(sget(out, "StandardOutputContent")),
	    24000 * 2);
	assert_int_equal(strlen(sget(out, "StandardErrorContent")), 8000);
	assert_string_equal(sget(out, "DocumentName"), "AWS-RunShellScript");
	assert_non_null(json_object_get(out, "CloudWatchOutputConfig"));
	json_decref(out);
	/* one step by name */
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceId\":"
	    "\"%s\",\"PluginName\":\"runShellScript\"}", id, f->mi[0]);
	out = ok(f, "GetCommandInvocation", body);
	assert_string_equal(sget(out, "StandardOutputContent"), "step out");
	assert_string_equal(sget(out, "StandardErrorContent"), "step err");
	json_decref(out);
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceId\":"
	    "\"%s\",\"PluginName\":\"nope-nope\"}", id, f->mi[0]);
	expect_error(f, "GetCommandInvocation", body, "InvalidPluginName",
	    NULL);
	/* --details */
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"Details\":true}",
	    id);
	out = ok(f, "ListCommandInvocations", body);
	p = json_array_get(json_object_get(json_array_get(json_object_get(out,
	    "CommandInvocations"), 0), "CommandPlugins"), 0);
	assert_non_null(p);
	assert_string_equal(sget(p, "Name"), "runShellScript");
	assert_string_equal(sget(p, "Output"), "step out");
	assert_int_equal(iget(p, "ResponseCode"), 3);
	assert_int_equal(json_number_value(json_object_get(p,
	    "ResponseFinishDateTime")), 1700000003.052);
	json_decref(out);

	/* no such invocation: the waiter's retry */
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceId\":"
	    "\"%s\"}", id, f->mi[1]);
	expect_error(f, "GetCommandInvocation", body, "InvocationDoesNotExist",
	    NULL);
	snprintf(body, sizeof(body), "{\"CommandId\":"
	    "\"11111111-1111-4111-8111-111111111111\",\"InstanceId\":\"%s\"}",
	    f->mi[0]);
	expect_error(f, "GetCommandInvocation", body, "InvocationDoesNotExist",
	    NULL);
	/* shapes */
	expect_error(f, "GetCommandInvocation", "{}", "ValidationException",
	    "commandId");
	expect_error(f, "GetCommandInvocation", "{\"CommandId\":\"short\","
	    "\"InstanceId\":\"mi-0123456789abcdef0\"}", "ValidationException",
	    "commandId");
	expect_error(f, "GetCommandInvocation", "{\"CommandId\":"
	    "\"11111111-1111-4111-8111-111111111111\",\"InstanceId\":\"x\"}",
	    "ValidationException", "instanceId");
	expect_error(f, "GetCommandInvocation", "{\"CommandId\":"
	    "\"11111111-1111-4111-8111-111111111111\",\"InstanceId\":"
	    "\"mi-0123456789abcdef0\",\"PluginName\":\"abc\"}",
	    "ValidationException", "pluginName");
	expect_error(f, "GetCommandInvocation", "{\"CommandId\":[],"
	    "\"InstanceId\":\"mi-0123456789abcdef0\"}",
	    "SerializationException", NULL);
}

static void
test_lists(void **state)
{
	struct fx *f = *state;
	char id[3][STORE_COMMAND_ID_SIZE], body[512];
	struct command_rec c;
	json_t *out, *l;
	const char *tok;
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(body, sizeof(body), "{\"DocumentName\":"
		    "\"AWS-RunShellScript\",\"InstanceIds\":[\"%s\"],"
		    "\"Parameters\":{\"commands\":[\"true\"]}}", f->mi[i]);
		json_decref(send_ok(f, body, id[i]));
	}
	assert_int_equal(store_command_get(f->srv.store, id[1], &c), 0);
	snprintf(c.status, sizeof(c.status), "Success");
	assert_int_equal(store_command_set_status(f->srv.store, &c), 0);
	command_rec_clear(&c);

	/* paging */
	out = ok(f, "ListCommands", "{\"MaxResults\":2}");
	assert_int_equal(json_array_size(json_object_get(out, "Commands")), 2);
	tok = sget(out, "NextToken");
	snprintf(body, sizeof(body), "{\"MaxResults\":2,\"NextToken\":\"%s\"}",
	    tok != NULL ? tok : "");
	json_decref(out);
	out = ok(f, "ListCommands", body);
	assert_int_equal(json_array_size(json_object_get(out, "Commands")), 1);
	assert_null(json_object_get(out, "NextToken"));
	json_decref(out);
	/* filters */
	out = ok(f, "ListCommands", "{\"Filters\":[{\"key\":\"Status\","
	    "\"value\":\"Success\"}]}");
	l = json_object_get(out, "Commands");
	assert_int_equal(json_array_size(l), 1);
	assert_string_equal(sget(json_array_get(l, 0), "CommandId"), id[1]);
	json_decref(out);
	out = ok(f, "ListCommands", "{\"Filters\":[{\"key\":\"ExecutionStage\","
	    "\"value\":\"Executing\"}]}");
	assert_int_equal(json_array_size(json_object_get(out, "Commands")), 2);
	json_decref(out);
	out = ok(f, "ListCommands", "{\"Filters\":[{\"key\":\"DocumentName\","
	    "\"value\":\"AWS-RunShellScript\"},{\"key\":\"InvokedAfter\","
	    "\"value\":\"2023-11-14T00:00:00Z\"},{\"key\":\"InvokedBefore\","
	    "\"value\":\"2030-01-01T00:00:00Z\"}]}");
	assert_int_equal(json_array_size(json_object_get(out, "Commands")), 3);
	json_decref(out);
	out = ok(f, "ListCommands", "{\"Filters\":[{\"key\":\"InvokedBefore\","
	    "\"value\":\"2023-11-14T00:00:00Z\"}]}");
	assert_int_equal(json_array_size(json_object_get(out, "Commands")), 0);
	json_decref(out);
	snprintf(body, sizeof(body), "{\"InstanceId\":\"%s\"}", f->mi[2]);
	out = ok(f, "ListCommands", body);
	l = json_object_get(out, "Commands");
	assert_int_equal(json_array_size(l), 1);
	assert_string_equal(sget(json_array_get(l, 0), "CommandId"), id[2]);
	json_decref(out);
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\"}", id[0]);
	out = ok(f, "ListCommands", body);
	assert_int_equal(json_array_size(json_object_get(out, "Commands")), 1);
	json_decref(out);
	/* invocations by instance, paged and filtered */
	out = ok(f, "ListCommandInvocations", "{\"MaxResults\":1}");
	assert_int_equal(json_array_size(json_object_get(out,
	    "CommandInvocations")), 1);
	assert_non_null(json_object_get(out, "NextToken"));
	json_decref(out);
	snprintf(body, sizeof(body), "{\"InstanceId\":\"%s\",\"Filters\":"
	    "[{\"key\":\"Status\",\"value\":\"Pending\"}]}", f->mi[1]);
	out = ok(f, "ListCommandInvocations", body);
	assert_int_equal(json_array_size(json_object_get(out,
	    "CommandInvocations")), 1);
	json_decref(out);

	/* errors */
	expect_error(f, "ListCommands", "{\"CommandId\":"
	    "\"11111111-1111-4111-8111-111111111111\"}", "InvalidCommandId",
	    NULL);
	expect_error(f, "ListCommandInvocations", "{\"CommandId\":"
	    "\"11111111-1111-4111-8111-111111111111\"}", "InvalidCommandId",
	    NULL);
	expect_error(f, "ListCommands", "{\"NextToken\":\"garbage!\"}",
	    "InvalidNextToken", NULL);
	expect_error(f, "ListCommands", "{\"MaxResults\":0}",
	    "ValidationException", "maxResults");
	expect_error(f, "ListCommands", "{\"MaxResults\":51}",
	    "ValidationException", "maxResults");
	expect_error(f, "ListCommands", "{\"Filters\":[]}",
	    "ValidationException", "filters");
	expect_error(f, "ListCommands", "{\"Filters\":[{\"key\":\"Nope\","
	    "\"value\":\"x\"}]}", "ValidationException",
	    "filters.1.member.key");
	expect_error(f, "ListCommands", "{\"Filters\":[{\"key\":\"Status\"}]}",
	    "ValidationException", "filters.1.member.value");
	expect_error(f, "ListCommands", "{\"Filters\":[{\"key\":\"Status\","
	    "\"value\":\"Delayed\"}]}", "InvalidFilterValue", NULL);
	expect_error(f, "ListCommands", "{\"Filters\":[{\"key\":"
	    "\"InvokedAfter\",\"value\":\"yesterday\"}]}",
	    "InvalidFilterValue", NULL);
	expect_error(f, "ListCommands", "{\"Filters\":[{\"key\":"
	    "\"ExecutionStage\",\"value\":\"Soon\"}]}",
	    "InvalidFilterValue", NULL);
	expect_error(f, "ListCommands", "{\"Filters\":{}}",
	    "SerializationException", NULL);
	expect_error(f, "ListCommands", "{\"InstanceId\":\"web1\"}",
	    "ValidationException", "instanceId");
	expect_error(f, "ListCommandInvocations", "{\"Details\":\"yes\"}",
	    "SerializationException", NULL);
	/* unknown members are ignored, as AWS does */
	json_decref(ok(f, "ListCommands", "{\"Whatever\":{\"x\":[1]}}"));
}

/* More rows than one chunk of the filtered scans: pages are whole and
 * nothing is seen twice. */
static void
test_lists_many(void **state)
{
	struct fx *f = *state;
	struct invocation_rec *inv;
	struct command_rec c;
	char body[256], tok[64];
	json_t *out, *l, *seen;
	int i, pages;

	inv = calloc(130, sizeof(*inv));
	assert_non_null(inv);
	seen = json_object();
	for (i = 0; i < 130; i++) {
		memset(&c, 0, sizeof(c));
		snprintf(c.command_id, sizeof(c.command_id),
		    "00000000-0000-4000-8000-%012d", i);
		c.document_name = (char *)"AWS-RunShellScript";
		c.requested_ms = T0 + (i % 7);   /* ties on the time */
		c.expires_ms = T0 + 3600000;
		c.timeout_seconds = 3600;
		snprintf(c.status, sizeof(c.status), "%s",
		    i % 2 ? "Success" : "InProgress");
		snprintf(inv[i].instance_id, sizeof(inv[i].instance_id),
		    "mi-%017d", i);
		inv[i].seq = i;
		inv[i].requested_ms = T0;
		inv[i].response_code = -1;
		snprintf(inv[i].status, sizeof(inv[i].status), "%s",
		    i % 3 ? "Pending" : "Success");
		assert_int_equal(store_command_create(f->srv.store, &c, NULL,
		    0), 0);
	}
	{
		/* one more command, with 130 invocations */
		struct command_rec nc;

		memset(&nc, 0, sizeof(nc));
		snprintf(nc.command_id, sizeof(nc.command_id),
		    "00000000-0000-4000-8000-999999999999");
		nc.document_name = (char *)"AWS-RunShellScript";
		nc.requested_ms = T0 - 1;
		snprintf(nc.status, sizeof(nc.status), "InProgress");
		for (i = 0; i < 130; i++)
			snprintf(inv[i].command_id, sizeof(inv[i].command_id),
			    "%s", nc.command_id);
		assert_int_equal(store_command_create(f->srv.store, &nc, inv,
		    130), 0);
	}
	free(inv);

	/* invocations: Status filter, 50 a page */
	tok[0] = '\0';
	for (pages = 0; pages < 10; pages++) {
		snprintf(body, sizeof(body), "{\"Filters\":[{\"key\":"
		    "\"Status\",\"value\":\"Pending\"}]%s%s%s}",
		    tok[0] ? ",\"NextToken\":\"" : "", tok, tok[0] ? "\"" : "");
		out = ok(f, "ListCommandInvocations", body);
		l = json_object_get(out, "CommandInvocations");
		for (i = 0; i < (int)json_array_size(l); i++) {
			const char *mi = sget(json_array_get(l, (size_t)i),
			    "InstanceId");

			assert_null(json_object_get(seen, mi));
			json_object_set_new(seen, mi, json_true());
		}
		snprintf(tok, sizeof(tok), "%s", json_string_value(
		    json_object_get(out, "NextToken")) ?
		    json_string_value(json_object_get(out, "NextToken")) : "");
		json_decref(out);
		if (tok[0] == '\0')
			break;
	}
	/* 130 minus every third (Success) */
	assert_int_equal(json_object_size(seen), 130 - 44);
	json_object_clear(seen);
	/* commands: ExecutionStage, 50 a page */
	tok[0] = '\0';
	for (pages = 0; pages < 10; pages++) {
		snprintf(body, sizeof(body), "{\"Filters\":[{\"key\":"
		    "\"ExecutionStage\",\"value\":\"Executing\"}]%s%s%s}",
		    tok[0] ? ",\"NextToken\":\"" : "", tok, tok[0] ? "\"" : "");
		out = ok(f, "ListCommands", body);
		l = json_object_get(out, "Commands");
		for (i = 0; i < (int)json_array_size(l); i++) {
			const char *id = sget(json_array_get(l, (size_t)i),
			    "CommandId");

			assert_null(json_object_get(seen, id));
			json_object_set_new(seen, id, json_true());
		}
		snprintf(tok, sizeof(tok), "%s", json_string_value(
		    json_object_get(out, "NextToken")) ?
		    json_string_value(json_object_get(out, "NextToken")) : "");
		json_decref(out);
		if (tok[0] == '\0')
			break;
	}
	/* 65 even ones and the one with the invocations */
	assert_int_equal(json_object_size(seen), 66);
	json_decref(seen);
}

static void
test_cancel(void **state)
{
	struct fx *f = *state;
	char id[STORE_COMMAND_ID_SIZE], body[512];
	json_t *out;

	snprintf(body, sizeof(body), "{\"DocumentName\":\"AWS-RunShellScript\","
	    "\"InstanceIds\":[\"%s\",\"%s\"],\"Parameters\":{\"commands\":"
	    "[\"sleep 300\"]}}", f->mi[0], f->mi[1]);
	json_decref(send_ok(f, body, id));
	/* no dispatcher: refused, nothing changes */
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\"}", id);
	expect_error(f, "CancelCommand", body, "InternalServerError", NULL);
	assert_int_equal(commands_new(&f->srv.commands, &f->srv), 0);
	/* shapes and unknown ids */
	expect_error(f, "CancelCommand", "{}", "ValidationException",
	    "commandId");
	expect_error(f, "CancelCommand", "{\"CommandId\":"
	    "\"11111111-1111-4111-8111-111111111111\"}", "InvalidCommandId",
	    NULL);
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceIds\":"
	    "[\"%s\",\"%s\"]}", id, f->mi[0], f->mi[0]);
	expect_error(f, "CancelCommand", body, "DuplicateInstanceId", NULL);
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceIds\":"
	    "[\"%s\"]}", id, f->mi[2]);
	expect_error(f, "CancelCommand", body, "InvalidInstanceId", NULL);
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceIds\":"
	    "[7]}", id);
	expect_error(f, "CancelCommand", body, "SerializationException", NULL);
	/* one instance, then the rest: undelivered invocations are
	 * Cancelled at once */
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceIds\":"
	    "[\"%s\"]}", id, f->mi[0]);
	out = ok(f, "CancelCommand", body);
	assert_int_equal(json_object_size(out), 0);
	json_decref(out);
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\",\"InstanceId\":"
	    "\"%s\"}", id, f->mi[0]);
	out = ok(f, "GetCommandInvocation", body);
	assert_string_equal(sget(out, "Status"), "Cancelled");
	json_decref(out);
	snprintf(body, sizeof(body), "{\"CommandId\":\"%s\"}", id);
	json_decref(ok(f, "CancelCommand", body));
	out = ok(f, "ListCommands", body);
	assert_string_equal(sget(json_array_get(json_object_get(out,
	    "Commands"), 0), "Status"), "Cancelled");
	json_decref(out);
	/* a final command: nothing to do, no error */
	json_decref(ok(f, "CancelCommand", body));
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_send_instance_ids),
		T(test_send_targets),
		T(test_send_errors),
		T(test_send_too_large),
		T(test_access_denied),
		T(test_get_invocation),
		T(test_lists),
		T(test_lists_many),
		T(test_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
