/* api_ssm: the SSM actions through api_ssm_dispatch, on a real store in a
 * temporary directory, with the gateway replaced by the stubs below. */
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

#include "common/err.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/api_ssm.h"
#include "server/authz.h"
#include "server/gateway.h"
#include "server/store.h"
#include "server/store_iam.h"
#include "support/fixture.h"

#define T0 ((int64_t)1700000000000)

/* ---- gateway stubs (weak: the real gateway wins if linked in) ----------- */

static int stub_online;
static int stub_start_rc;
static int stub_starts;
static int stub_disconnects;
static json_t *stub_doc;
static json_t *stub_params;
static struct store *stub_store;

/* Run Command's dispatcher (linked through api_ssm) sends on the control
 * channel; no agent is connected here. */
__attribute__((weak)) int
gateway_send_control(struct gateway *gw, const char *instance_id,
    const char *type, const char *payload, uint8_t message_id[16])
{
	(void)gw;
	(void)instance_id;
	(void)type;
	(void)payload;
	(void)message_id;
	return PH_ERR_NOTFOUND;
}

__attribute__((weak)) int
gateway_instance_online(struct gateway *gw, const char *instance_id)
{
	(void)gw;
	(void)instance_id;
	return stub_online;
}

__attribute__((weak)) int
gateway_start_session(struct gateway *gw, const char *instance_id,
    const char *session_id, const char *document_name,
    json_t *document_content, json_t *parameters, const char *owner_arn,
    const char *run_as_user)
{
	(void)gw;
	(void)instance_id;
	(void)session_id;
	(void)document_name;
	(void)owner_arn;
	(void)run_as_user;
	stub_starts++;
	json_decref(stub_doc);
	json_decref(stub_params);
	stub_doc = json_incref(document_content);
	stub_params = json_incref(parameters);
	return stub_start_rc;
}

__attribute__((weak)) int
gateway_terminate_session(struct gateway *gw, const char *session_id,
    const char *reason)
{
	(void)gw;
	return store_session_set_status(stub_store, session_id, "Terminated",
	    reason, T0 + 500);
}

__attribute__((weak)) void
gateway_disconnect_instance(struct gateway *gw, const char *instance_id)
{
	(void)gw;
	(void)instance_id;
	stub_disconnects++;
}

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	struct tmpdb db;
	struct server srv;
	struct principal admin, bob;
	int gw_dummy;
};

/* CreateActivation needs an IAM role that trusts ssm.amazonaws.com: the
 * names the tests use. */
static int
make_roles(struct store *st)
{
	static const char trust[] = "{\"Version\":\"2012-10-17\","
	    "\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
	    "{\"Service\":\"ssm.amazonaws.com\"},\"Action\":"
	    "\"sts:AssumeRole\"}]}";
	static const char *const names[] = { "R", "SSMServiceRole", "R0",
	    "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10",
	    "R11", "R12" };
	struct iam_role_rec r;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		memset(&r, 0, sizeof(r));
		snprintf(r.name, sizeof(r.name), "%s", names[i]);
		snprintf(r.arn, sizeof(r.arn),
		    "arn:aws:iam::123456789012:role/%s", names[i]);
		r.trust_policy = (char *)trust;
		if (store_iam_role_create(st, &r) != 0)
			return -1;
	}
	return 0;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (test_server_open(&f->srv, &f->db, "ph-api") != 0 ||
	    make_roles(f->srv.store) != 0)
		return -1;
	f->srv.gw = (struct gateway *)&f->gw_dummy;
	test_user(&f->admin, "admin", 1);
	test_user(&f->bob, "bob", 0);
	stub_online = 1;
	stub_start_rc = 0;
	stub_starts = 0;
	stub_disconnects = 0;
	stub_store = f->srv.store;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	test_server_close(&f->srv, &f->db);
	json_decref(stub_doc);
	json_decref(stub_params);
	stub_doc = stub_params = NULL;
	free(f);
	return 0;
}

/* Run an action as p with a JSON text body; returns the output (NULL on
 * error, err filled in). */
static json_t *
run_as(struct fx *f, const struct principal *p, const char *action,
    const char *body, struct api_error *err)
{
	json_error_t jerr;

	return test_ssm_call(&f->srv, p, T0, action,
	    json_loads(body, 0, &jerr), err);
}

static json_t *
run(struct fx *f, const char *action, const char *body,
    struct api_error *err)
{
	return run_as(f, &f->admin, action, body, err);
}

/* The call must fail with this type (and message fragment). */
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
	assert_int_equal(err.status, 400);
	if (fragment != NULL && strstr(err.message, fragment) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err.message, fragment);
}

static const char *
sget(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	assert_non_null(s);
	return s;
}

/* Create an activation and register n instances with it. */
static void
register_instances(struct fx *f, int n, char ids[][21])
{
	struct api_error err;
	json_t *out;
	char role[STORE_IAM_ROLE_SIZE], id[40], code[32];
	int i;

	out = run(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"RegistrationLimit\":10,\"DefaultInstanceName\":\"web\","
	    "\"Tags\":[{\"Key\":\"env\",\"Value\":\"prod\"}]}", &err);
	assert_non_null(out);
	snprintf(id, sizeof(id), "%s", sget(out, "ActivationId"));
	snprintf(code, sizeof(code), "%s", sget(out, "ActivationCode"));
	json_decref(out);
	for (i = 0; i < n; i++)
		assert_int_equal(store_activation_register(f->srv.store, id,
		    code, T0, NULL, NULL, ids[i], role), 0);
}

/* ---- activations -------------------------------------------------------- */

static void
test_create_describe_delete(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out, *list, *a;
	char id[40], body[200];

	out = run(f, "CreateActivation", "{\"IamRole\":\"SSMServiceRole\","
	    "\"Description\":\"lab\",\"Tags\":[{\"Key\":\"team\","
	    "\"Value\":\"ops\"}]}", &err);
	assert_non_null(out);
	assert_true(api_pat_uuid(sget(out, "ActivationId")));
	assert_int_equal(strlen(sget(out, "ActivationCode")), 20);
	snprintf(id, sizeof(id), "%s", sget(out, "ActivationId"));
	json_decref(out);

	out = run(f, "DescribeActivations", "{}", &err);
	assert_non_null(out);
	list = json_object_get(out, "ActivationList");
	assert_int_equal(json_array_size(list), 1);
	a = json_array_get(list, 0);
	assert_string_equal(sget(a, "ActivationId"), id);
	assert_string_equal(sget(a, "IamRole"), "SSMServiceRole");
	assert_string_equal(sget(a, "Description"), "lab");
	assert_int_equal(json_integer_value(json_object_get(a,
	    "RegistrationLimit")), 1);
	assert_int_equal(json_integer_value(json_object_get(a,
	    "RegistrationsCount")), 0);
	assert_true(json_is_false(json_object_get(a, "Expired")));
	/* default expiry: 24 hours, timestamps in epoch seconds */
	assert_true(json_real_value(json_object_get(a, "ExpirationDate")) ==
	    (double)(T0 + 24 * 3600 * 1000) / 1000.0);
	assert_true(json_real_value(json_object_get(a, "CreatedDate")) ==
	    (double)T0 / 1000.0);
	assert_string_equal(sget(json_array_get(json_object_get(a, "Tags"),
	    0), "Key"), "team");
	assert_null(json_object_get(out, "NextToken"));
	json_decref(out);

	snprintf(body, sizeof(body), "{\"ActivationId\":\"%s\"}", id);
	out = run(f, "DeleteActivation", body, &err);
	assert_non_null(out);
	assert_int_equal(json_object_size(out), 0);
	json_decref(out);
	expect_error(f, "DeleteActivation", body, "InvalidActivation", id);
	expect_error(f, "DeleteActivation", "{\"ActivationId\":\"nope\"}",
	    "ValidationException", "activationId");
	expect_error(f, "DeleteActivation", "{}", "ValidationException",
	    "Value null at 'activationId'");
}

static void
test_create_activation_validation(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out;
	char body[600];

	expect_error(f, "CreateActivation", "{}", "ValidationException",
	    "1 validation error detected: Value null at 'iamRole' failed to "
	    "satisfy constraint: Member must not be null");
	/* The role must exist and trust ssm.amazonaws.com, as AWS checks. */
	expect_error(f, "CreateActivation", "{\"IamRole\":\"no-such-role\"}",
	    "ValidationException", "Nonexistent role or missing ssm service "
	    "principal in trust policy: arn:aws:iam::123456789012:role/"
	    "no-such-role");
	{
		struct iam_role_rec r;

		memset(&r, 0, sizeof(r));
		snprintf(r.name, sizeof(r.name), "ec2-only");
		snprintf(r.arn, sizeof(r.arn),
		    "arn:aws:iam::123456789012:role/ec2-only");
		r.trust_policy = (char *)"{\"Version\":\"2012-10-17\","
		    "\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
		    "{\"Service\":\"ec2.amazonaws.com\"},\"Action\":"
		    "\"sts:AssumeRole\"}]}";
		assert_int_equal(store_iam_role_create(f->srv.store, &r), 0);
		expect_error(f, "CreateActivation",
		    "{\"IamRole\":\"ec2-only\"}", "ValidationException",
		    "missing ssm service principal");
		/* A trust policy that is not JSON, or names the service
		 * only under a condition, trusts nobody here. */
		snprintf(r.name, sizeof(r.name), "garbled");
		snprintf(r.arn, sizeof(r.arn),
		    "arn:aws:iam::123456789012:role/garbled");
		r.trust_policy = (char *)"{\"Statement\": [ssm.amazonaws.com";
		assert_int_equal(store_iam_role_create(f->srv.store, &r), 0);
		expect_error(f, "CreateActivation",
		    "{\"IamRole\":\"garbled\"}", "ValidationException",
		    "Nonexistent role");
		snprintf(r.name, sizeof(r.name), "conditional");
		snprintf(r.arn, sizeof(r.arn),
		    "arn:aws:iam::123456789012:role/conditional");
		r.trust_policy = (char *)"{\"Statement\":[1,{\"Effect\":"
		    "\"Allow\",\"Principal\":{\"Service\":[\"ssm.amazonaws."
		    "com\"]},\"Action\":[\"sts:*\"],\"Condition\":{"
		    "\"StringEquals\":{\"aws:SourceAccount\":\"1\"}}}]}";
		assert_int_equal(store_iam_role_create(f->srv.store, &r), 0);
		expect_error(f, "CreateActivation",
		    "{\"IamRole\":\"conditional\"}", "ValidationException",
		    "Nonexistent role");
		/* A path in IamRole names the role after it. */
		expect_error(f, "CreateActivation",
		    "{\"IamRole\":\"service-role/ec2-only\"}",
		    "ValidationException", "role/service-role/ec2-only");
		out = run(f, "CreateActivation",
		    "{\"IamRole\":\"service-role/R\"}", &err);
		assert_non_null(out);
		json_decref(out);
	}
	expect_error(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"RegistrationLimit\":0}", "ValidationException",
	    "Value '0' at 'registrationLimit' failed to satisfy constraint: "
	    "Member must have value greater than or equal to 1");
	expect_error(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"RegistrationLimit\":1001}", "ValidationException",
	    "less than or equal to 1000");
	expect_error(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"RegistrationLimit\":\"5\"}", "SerializationException", NULL);
	expect_error(f, "CreateActivation", "{\"IamRole\":42}",
	    "SerializationException", NULL);
	expect_error(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"Tags\":{\"Key\":\"a\"}}", "SerializationException", NULL);
	expect_error(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"Tags\":[{\"Key\":\"a!b\",\"Value\":\"x\"}]}",
	    "ValidationException", "tags.1.member.key");
	expect_error(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"Tags\":[{\"Key\":\"a\"}]}", "ValidationException",
	    "Value null at 'tags.1.member.value'");
	expect_error(f, "CreateActivation", "{\"IamRole\":\"bad role\"}",
	    "ValidationException", "iamRole");
	expect_error(f, "CreateActivation", "{\"IamRole\":\"\","
	    "\"RegistrationLimit\":0}", "ValidationException",
	    "2 validation errors detected");
	memset(body, 0, sizeof(body));
	snprintf(body, sizeof(body), "{\"IamRole\":\"R\",\"Description\":\"");
	memset(body + strlen(body), 'x', 257);
	snprintf(body + strlen(body), sizeof(body) - strlen(body), "\"}");
	expect_error(f, "CreateActivation", body, "ValidationException",
	    "length less than or equal to 256");
	/* expiry: past, beyond 30 days, garbage; ISO text is fine */
	expect_error(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"ExpirationDate\":1600000000}", "ValidationException", NULL);
	expect_error(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"ExpirationDate\":1703000000}", "ValidationException", NULL);
	expect_error(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"ExpirationDate\":\"soon\"}", "SerializationException", NULL);
	out = run(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"ExpirationDate\":\"2023-11-20T00:00:00Z\"}", &err);
	assert_non_null(out);
	json_decref(out);
	out = run(f, "CreateActivation", "{\"IamRole\":\"R\","
	    "\"ExpirationDate\":1700100000.5,\"RegistrationLimit\":1000}",
	    &err);
	assert_non_null(out);
	json_decref(out);
}

static void
test_describe_activations_filters_paging(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out, *list;
	char ids[3][40], body[300], tok[64];
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(body, sizeof(body), "{\"IamRole\":\"R%d\","
		    "\"DefaultInstanceName\":\"n%d\"}", i % 2, i);
		out = run(f, "CreateActivation", body, &err);
		assert_non_null(out);
		snprintf(ids[i], sizeof(ids[i]), "%s",
		    sget(out, "ActivationId"));
		json_decref(out);
	}
	out = run(f, "DescribeActivations", "{\"Filters\":[{\"FilterKey\":"
	    "\"IamRole\",\"FilterValues\":[\"R0\"]}]}", &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out,
	    "ActivationList")), 2);
	json_decref(out);
	snprintf(body, sizeof(body), "{\"Filters\":[{\"FilterKey\":"
	    "\"ActivationIds\",\"FilterValues\":[\"%s\"]},{\"FilterKey\":"
	    "\"DefaultInstanceName\",\"FilterValues\":[\"n1\"]}]}", ids[1]);
	out = run(f, "DescribeActivations", body, &err);
	assert_non_null(out);
	list = json_object_get(out, "ActivationList");
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(sget(json_array_get(list, 0), "ActivationId"),
	    ids[1]);
	json_decref(out);
	expect_error(f, "DescribeActivations", "{\"Filters\":[{\"FilterKey\":"
	    "\"Color\",\"FilterValues\":[\"x\"]}]}", "ValidationException",
	    "Member must satisfy enum value set: [ActivationIds, "
	    "DefaultInstanceName, IamRole]");
	expect_error(f, "DescribeActivations", "{\"Filters\":[{\"FilterKey\":"
	    "\"IamRole\",\"FilterValues\":[7]}]}", "SerializationException",
	    NULL);
	expect_error(f, "DescribeActivations", "{\"Filters\":\"x\"}",
	    "SerializationException", NULL);
	expect_error(f, "DescribeActivations", "{\"MaxResults\":51}",
	    "ValidationException", "maxResults");
	expect_error(f, "DescribeActivations", "{\"NextToken\":\"garbage\"}",
	    "InvalidNextToken", NULL);

	/* pages of two */
	out = run(f, "DescribeActivations", "{\"MaxResults\":2}", &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out,
	    "ActivationList")), 2);
	snprintf(tok, sizeof(tok), "%s", sget(out, "NextToken"));
	json_decref(out);
	snprintf(body, sizeof(body), "{\"MaxResults\":2,\"NextToken\":\"%s\"}",
	    tok);
	out = run(f, "DescribeActivations", body, &err);
	assert_non_null(out);
	list = json_object_get(out, "ActivationList");
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(sget(json_array_get(list, 0), "ActivationId"),
	    ids[2]);
	assert_null(json_object_get(out, "NextToken"));
	json_decref(out);
}

static void
test_access_denied_and_dispatch(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	struct api_call c;
	json_t *in, *out = NULL;

	assert_null(run_as(f, &f->bob, "CreateActivation",
	    "{\"IamRole\":\"R\"}", &err));
	assert_string_equal(err.type, "AccessDeniedException");
	assert_int_equal(err.status, 400);
	assert_non_null(strstr(err.message, "User: arn:aws:iam::123456789012:"
	    "user/bob is not authorized to perform: ssm:CreateActivation"));
	assert_null(run_as(f, &f->bob, "DescribeSessions",
	    "{\"State\":\"Active\"}", &err));
	assert_string_equal(err.type, "AccessDeniedException");
	/* validation comes first, as AWS does */
	assert_null(run_as(f, &f->bob, "CreateActivation", "{}", &err));
	assert_string_equal(err.type, "ValidationException");

	expect_error(f, "LaunchRockets", "{}", "UnknownOperationException",
	    NULL);
	memset(&c, 0, sizeof(c));
	c.srv = &f->srv;
	c.principal = &f->admin;
	in = json_array();
	assert_int_not_equal(api_ssm_dispatch(&c, "DescribeActivations", in,
	    &out, &err), 0);
	assert_string_equal(err.type, "SerializationException");
	assert_null(out);
	json_decref(in);
}

/* ---- instances and tags ------------------------------------------------- */

static void
test_tags_round_trip(void **state)
{
	struct fx *f = *state;
	char ids[1][21], body[400];
	struct api_error err;
	json_t *out, *list;

	register_instances(f, 1, ids);
	snprintf(body, sizeof(body), "{\"ResourceType\":\"ManagedInstance\","
	    "\"ResourceId\":\"%s\"}", ids[0]);
	out = run(f, "ListTagsForResource", body, &err);
	assert_non_null(out);
	list = json_object_get(out, "TagList");
	assert_int_equal(json_array_size(list), 1);   /* from activation */
	json_decref(out);

	snprintf(body, sizeof(body), "{\"ResourceType\":\"ManagedInstance\","
	    "\"ResourceId\":\"%s\",\"Tags\":[{\"Key\":\"a\",\"Value\":\"1\"},"
	    "{\"Key\":\"env\",\"Value\":\"dev\"}]}", ids[0]);
	out = run(f, "AddTagsToResource", body, &err);
	assert_non_null(out);
	json_decref(out);
	snprintf(body, sizeof(body), "{\"ResourceType\":\"ManagedInstance\","
	    "\"ResourceId\":\"%s\"}", ids[0]);
	out = run(f, "ListTagsForResource", body, &err);
	assert_non_null(out);
	list = json_object_get(out, "TagList");
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(sget(json_array_get(list, 0), "Key"), "a");
	assert_string_equal(sget(json_array_get(list, 1), "Value"), "dev");
	json_decref(out);

	snprintf(body, sizeof(body), "{\"ResourceType\":\"ManagedInstance\","
	    "\"ResourceId\":\"%s\",\"TagKeys\":[\"a\"]}", ids[0]);
	out = run(f, "RemoveTagsFromResource", body, &err);
	assert_non_null(out);
	json_decref(out);
	snprintf(body, sizeof(body), "{\"ResourceType\":\"ManagedInstance\","
	    "\"ResourceId\":\"%s\"}", ids[0]);
	out = run(f, "ListTagsForResource", body, &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out, "TagList")), 1);
	json_decref(out);

	expect_error(f, "ListTagsForResource", "{\"ResourceType\":"
	    "\"ManagedInstance\",\"ResourceId\":\"mi-00000000000000000\"}",
	    "InvalidResourceId", NULL);
	expect_error(f, "ListTagsForResource", "{\"ResourceType\":"
	    "\"Spaceship\",\"ResourceId\":\"x\"}", "ValidationException",
	    "resourceType");
	expect_error(f, "AddTagsToResource", "{\"ResourceType\":\"Document\","
	    "\"ResourceId\":\"SSM-SessionManagerRunShell\"}",
	    "ValidationException", "Value null at 'tags'");
	expect_error(f, "AddTagsToResource", "{\"ResourceType\":\"Document\","
	    "\"ResourceId\":\"SSM-SessionManagerRunShell\",\"Tags\":[{\"Key\":"
	    "\"aws:x\",\"Value\":\"1\"}]}", "ValidationException", "aws:");
	/* other resource types are kept generically */
	out = run(f, "AddTagsToResource", "{\"ResourceType\":\"Parameter\","
	    "\"ResourceId\":\"/app/db\",\"Tags\":[{\"Key\":\"k\",\"Value\":"
	    "\"v\"}]}", &err);
	assert_non_null(out);
	json_decref(out);
	out = run(f, "ListTagsForResource", "{\"ResourceType\":\"Parameter\","
	    "\"ResourceId\":\"/app/db\"}", &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out, "TagList")), 1);
	json_decref(out);
}

static void
test_describe_instance_information(void **state)
{
	struct fx *f = *state;
	struct instance_conn_info info = { PORTHOLE_AGENT_VERSION, "Linux",
	    "Debian GNU/Linux", "12", "10.1.2.3", "web1" };
	struct store_tag t = { "role", "db" };
	char ids[3][21], body[400];
	struct api_error err;
	json_t *out, *list, *o;

	register_instances(f, 3, ids);
	assert_int_equal(store_instance_connected(f->srv.store, ids[0], &info,
	    T0 + 1000), 0);
	assert_int_equal(store_tags_add(f->srv.store, "ManagedInstance",
	    ids[2], &t, 1, STORE_TAGS_MAX), 0);

	out = run(f, "DescribeInstanceInformation", "{}", &err);
	assert_non_null(out);
	list = json_object_get(out, "InstanceInformationList");
	assert_int_equal(json_array_size(list), 3);
	json_decref(out);

	out = run(f, "DescribeInstanceInformation", "{\"Filters\":[{\"Key\":"
	    "\"PingStatus\",\"Values\":[\"Online\"]}]}", &err);
	assert_non_null(out);
	list = json_object_get(out, "InstanceInformationList");
	assert_int_equal(json_array_size(list), 1);
	o = json_array_get(list, 0);
	assert_string_equal(sget(o, "InstanceId"), ids[0]);
	assert_string_equal(sget(o, "PingStatus"), "Online");
	assert_string_equal(sget(o, "PlatformType"), "Linux");
	assert_string_equal(sget(o, "PlatformName"), "Debian GNU/Linux");
	assert_string_equal(sget(o, "ComputerName"), "web1");
	assert_string_equal(sget(o, "IPAddress"), "10.1.2.3");
	assert_string_equal(sget(o, "ResourceType"), "ManagedInstance");
	assert_string_equal(sget(o, "IamRole"), "R");
	assert_string_equal(sget(o, "Name"), "web");
	assert_true(json_is_true(json_object_get(o, "IsLatestVersion")));
	assert_true(json_real_value(json_object_get(o, "LastPingDateTime")) ==
	    (double)(T0 + 1000) / 1000.0);
	json_decref(out);

	out = run(f, "DescribeInstanceInformation", "{\"Filters\":[{\"Key\":"
	    "\"tag:role\",\"Values\":[\"db\",\"x\"]}]}", &err);
	assert_non_null(out);
	list = json_object_get(out, "InstanceInformationList");
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(sget(json_array_get(list, 0), "InstanceId"),
	    ids[2]);
	json_decref(out);
	out = run(f, "DescribeInstanceInformation", "{\"Filters\":[{\"Key\":"
	    "\"tag-key\",\"Values\":[\"env\"]}]}", &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out,
	    "InstanceInformationList")), 3);
	json_decref(out);
	snprintf(body, sizeof(body), "{\"InstanceInformationFilterList\":"
	    "[{\"key\":\"InstanceIds\",\"valueSet\":[\"%s\",\"%s\"]}]}",
	    ids[1], ids[2]);
	out = run(f, "DescribeInstanceInformation", body, &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out,
	    "InstanceInformationList")), 2);
	json_decref(out);

	/* paging: MaxResults is 5..50 */
	expect_error(f, "DescribeInstanceInformation", "{\"MaxResults\":4}",
	    "ValidationException", "greater than or equal to 5");
	expect_error(f, "DescribeInstanceInformation", "{\"Filters\":[{\"Key\":"
	    "\"Flavour\",\"Values\":[\"x\"]}]}", "InvalidFilterKey", NULL);
	expect_error(f, "DescribeInstanceInformation", "{\"Filters\":[{\"Key\":"
	    "\"PingStatus\",\"Values\":[\"Sleepy\"]}]}",
	    "InvalidInstanceInformationFilterValue", NULL);
	expect_error(f, "DescribeInstanceInformation", "{\"Filters\":[{\"Key\":"
	    "\"PingStatus\",\"Values\":[]}]}", "ValidationException",
	    "filters.1.member.values");
	expect_error(f, "DescribeInstanceInformation",
	    "{\"InstanceInformationFilterList\":[{\"key\":\"tag-key\","
	    "\"valueSet\":[\"x\"]}]}", "ValidationException", NULL);
}

static void
test_deregister(void **state)
{
	struct fx *f = *state;
	char ids[2][21], body[200];
	struct api_error err;
	json_t *out;

	register_instances(f, 2, ids);
	snprintf(body, sizeof(body), "{\"InstanceId\":\"%s\"}", ids[0]);
	out = run(f, "DeregisterManagedInstance", body, &err);
	assert_non_null(out);
	json_decref(out);
	assert_int_equal(stub_disconnects, 1);
	assert_int_equal(store_instance_active(f->srv.store, ids[0]),
	    PH_ERR_NOTFOUND);
	expect_error(f, "DeregisterManagedInstance", body, "InvalidInstanceId",
	    NULL);
	expect_error(f, "DeregisterManagedInstance",
	    "{\"InstanceId\":\"i-123\"}", "ValidationException",
	    "instanceId");
	out = run(f, "DescribeInstanceInformation", "{}", &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out,
	    "InstanceInformationList")), 1);
	json_decref(out);
}

/* ---- sessions ----------------------------------------------------------- */

static json_t *
start(struct fx *f, const char *target, const char *extra,
    struct api_error *err)
{
	char body[600];

	snprintf(body, sizeof(body), "{\"Target\":\"%s\"%s%s}", target,
	    extra ? "," : "", extra ? extra : "");
	return run(f, "StartSession", body, err);
}

static void
test_start_session(void **state)
{
	struct fx *f = *state;
	char ids[1][21], url[300], sid[SESSION_ID_MAX];
	struct session_rec rec;
	struct api_error err;
	const char *s;
	json_t *out;
	size_t i;

	register_instances(f, 1, ids);
	stub_online = 0;
	assert_null(start(f, ids[0], NULL, &err));
	assert_string_equal(err.type, "TargetNotConnected");
	assert_non_null(strstr(err.message, ids[0]));
	stub_online = 1;
	assert_null(start(f, "mi-00000000000000000", NULL, &err));
	assert_string_equal(err.type, "TargetNotConnected");
	assert_int_equal(stub_starts, 0);

	out = start(f, ids[0], "\"Reason\":\"fix disk\"", &err);
	assert_non_null(out);
	snprintf(sid, sizeof(sid), "%s", sget(out, "SessionId"));
	assert_int_equal(strncmp(sid, "admin-", 6), 0);
	assert_int_equal(strlen(sid), 6 + 17);
	for (i = 6; i < strlen(sid); i++)
		assert_non_null(strchr("0123456789abcdef", sid[i]));
	s = sget(out, "TokenValue");
	assert_true(strlen(s) >= 43 && strlen(s) <= 300);
	snprintf(url, sizeof(url), "wss://porthole.example:8443/v1/"
	    "data-channel/%s?role=publish_subscribe", sid);
	assert_string_equal(sget(out, "StreamUrl"), url);
	assert_int_equal(stub_starts, 1);
	assert_string_equal(json_string_value(json_object_get(stub_doc,
	    "sessionType")), "Standard_Stream");
	assert_int_equal(store_session_get(f->srv.store, sid, &rec), 0);
	assert_string_equal(rec.status, "Connected");
	assert_string_equal(rec.target, ids[0]);
	assert_string_equal(rec.owner, f->admin.arn);
	assert_string_equal(rec.reason, "fix disk");
	assert_string_equal(rec.document_name, "SSM-SessionManagerRunShell");
	/* the token opens the data channel once */
	assert_int_equal(store_session_consume_token(f->srv.store, sid, s,
	    T0 + 10), 0);
	assert_int_equal(store_session_consume_token(f->srv.store, sid, s,
	    T0 + 11), PH_ERR_DENIED);
	json_decref(out);

	/* the agent vanished between the check and the start */
	stub_start_rc = PH_ERR_NOTFOUND;
	assert_null(start(f, ids[0], NULL, &err));
	assert_string_equal(err.type, "TargetNotConnected");
	stub_start_rc = 0;

	expect_error(f, "StartSession", "{}", "ValidationException",
	    "Value null at 'target'");
	expect_error(f, "StartSession", "{\"Target\":\"x\","
	    "\"DocumentName\":\"a b c\"}", "ValidationException",
	    "documentName");
	expect_error(f, "StartSession", "{\"Target\":\"x\","
	    "\"Reason\":\"a\\nb\"}", "ValidationException", "reason");
	expect_error(f, "StartSession", "{\"Target\":\"x\","
	    "\"Parameters\":{\"command\":\"ls\"}}", "SerializationException",
	    NULL);
}

static void
test_start_session_documents(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	char ids[1][21];
	json_t *out, *props;

	register_instances(f, 1, ids);
	out = start(f, ids[0], "\"DocumentName\":"
	    "\"AWS-StartInteractiveCommand\",\"Parameters\":{\"command\":"
	    "[\"ls -la /\"]}", &err);
	assert_non_null(out);
	json_decref(out);
	props = json_object_get(json_object_get(stub_doc, "properties"),
	    "linux");
	assert_string_equal(json_string_value(json_object_get(props,
	    "commands")), "ls -la /");
	assert_string_equal(json_string_value(json_object_get(stub_params,
	    "command")), "ls -la /");
	assert_string_equal(json_string_value(json_object_get(stub_doc,
	    "sessionType")), "InteractiveCommands");

	/* defaults fill in; an ARN names the document too */
	out = start(f, ids[0], "\"DocumentName\":\"arn:aws:ssm:us-east-1::"
	    "document/AWS-StartPortForwardingSession\",\"Parameters\":"
	    "{\"portNumber\":[\"5432\"]}", &err);
	assert_non_null(out);
	json_decref(out);
	props = json_object_get(stub_doc, "properties");
	assert_string_equal(json_string_value(json_object_get(props,
	    "portNumber")), "5432");
	assert_string_equal(json_string_value(json_object_get(props,
	    "localPortNumber")), "0");

	expect_error(f, "StartSession", "{\"Target\":\"mi-00000000000000000\","
	    "\"DocumentName\":\"AWS-StartInteractiveCommand\"}",
	    "InvalidParameters", "command");
	expect_error(f, "StartSession", "{\"Target\":\"mi-00000000000000000\","
	    "\"DocumentName\":\"AWS-StartInteractiveCommand\","
	    "\"Parameters\":{\"command\":[\"ls\"],\"extra\":[\"x\"]}}",
	    "InvalidParameters", "extra");
	expect_error(f, "StartSession", "{\"Target\":\"mi-00000000000000000\","
	    "\"DocumentName\":\"AWS-StartPortForwardingSession\","
	    "\"Parameters\":{\"portNumber\":[\"99999\"]}}",
	    "InvalidParameters", "portNumber");
	expect_error(f, "StartSession", "{\"Target\":\"mi-00000000000000000\","
	    "\"DocumentName\":\"AWS-StartInteractiveCommand\","
	    "\"Parameters\":{\"command\":[\"a\",\"b\"]}}",
	    "InvalidParameters", "command");
	expect_error(f, "StartSession", "{\"Target\":\"mi-00000000000000000\","
	    "\"DocumentName\":\"No-Such-Doc\"}", "InvalidDocument", NULL);
}

static void
test_resume_terminate(void **state)
{
	struct fx *f = *state;
	char ids[1][21], sid[SESSION_ID_MAX], body[200];
	struct session_rec rec;
	struct api_error err;
	json_t *out;

	register_instances(f, 1, ids);
	out = start(f, ids[0], NULL, &err);
	assert_non_null(out);
	snprintf(sid, sizeof(sid), "%s", sget(out, "SessionId"));
	json_decref(out);
	snprintf(body, sizeof(body), "{\"SessionId\":\"%s\"}", sid);

	out = run(f, "ResumeSession", body, &err);
	assert_non_null(out);
	assert_string_equal(sget(out, "SessionId"), sid);
	assert_int_equal(store_session_consume_token(f->srv.store, sid,
	    sget(out, "TokenValue"), T0 + 1), 0);
	assert_non_null(strstr(sget(out, "StreamUrl"), sid));
	json_decref(out);

	out = run(f, "TerminateSession", body, &err);
	assert_non_null(out);
	assert_string_equal(sget(out, "SessionId"), sid);
	json_decref(out);
	assert_int_equal(store_session_get(f->srv.store, sid, &rec), 0);
	assert_string_equal(rec.status, "Terminated");
	/* idempotent, also for ids nobody knows */
	out = run(f, "TerminateSession", body, &err);
	assert_non_null(out);
	json_decref(out);
	out = run(f, "TerminateSession", "{\"SessionId\":\"ghost\"}", &err);
	assert_non_null(out);
	assert_string_equal(sget(out, "SessionId"), "ghost");
	json_decref(out);

	/* ended: no token, so the plugin says the session timed out */
	out = run(f, "ResumeSession", body, &err);
	assert_non_null(out);
	assert_string_equal(sget(out, "SessionId"), sid);
	assert_null(json_object_get(out, "TokenValue"));
	json_decref(out);
	expect_error(f, "ResumeSession", "{\"SessionId\":\"ghost\"}",
	    "DoesNotExistException", NULL);
	expect_error(f, "TerminateSession", "{}", "ValidationException",
	    "sessionId");
}

static void
test_describe_sessions(void **state)
{
	struct fx *f = *state;
	char ids[2][21], sids[3][SESSION_ID_MAX], body[800], tok[64];
	struct api_error err;
	json_t *out, *list, *s;
	int i;

	register_instances(f, 2, ids);
	for (i = 0; i < 3; i++) {
		out = start(f, ids[i == 2], NULL, &err);
		assert_non_null(out);
		snprintf(sids[i], sizeof(sids[i]), "%s",
		    sget(out, "SessionId"));
		json_decref(out);
	}
	assert_int_equal(store_session_set_status(f->srv.store, sids[0],
	    "Terminated", "exit", T0 + 100), 0);

	expect_error(f, "DescribeSessions", "{}", "ValidationException",
	    "Value null at 'state'");
	expect_error(f, "DescribeSessions", "{\"State\":\"Sleeping\"}",
	    "ValidationException", "[Active, History]");
	expect_error(f, "DescribeSessions", "{\"State\":\"Active\","
	    "\"Filters\":[{\"key\":\"Color\",\"value\":\"x\"}]}",
	    "ValidationException", "filters.1.member.key");
	expect_error(f, "DescribeSessions", "{\"State\":\"Active\","
	    "\"Filters\":[]}", "ValidationException", "filters");
	expect_error(f, "DescribeSessions", "{\"State\":\"Active\","
	    "\"Filters\":[{\"key\":\"InvokedAfter\",\"value\":\"yesterday\"}]}",
	    "ValidationException", NULL);
	expect_error(f, "DescribeSessions", "{\"State\":\"Active\","
	    "\"MaxResults\":201}", "ValidationException", "maxResults");

	out = run(f, "DescribeSessions", "{\"State\":\"Active\"}", &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out, "Sessions")), 2);
	json_decref(out);
	out = run(f, "DescribeSessions", "{\"State\":\"History\"}", &err);
	assert_non_null(out);
	list = json_object_get(out, "Sessions");
	assert_int_equal(json_array_size(list), 1);
	s = json_array_get(list, 0);
	assert_string_equal(sget(s, "SessionId"), sids[0]);
	assert_string_equal(sget(s, "Status"), "Terminated");
	assert_string_equal(sget(s, "Owner"), f->admin.arn);
	assert_string_equal(sget(s, "DocumentName"),
	    "SSM-SessionManagerRunShell");
	assert_string_equal(sget(s, "Details"), "exit");
	assert_true(json_real_value(json_object_get(s, "StartDate")) ==
	    (double)T0 / 1000.0);
	assert_true(json_real_value(json_object_get(s, "EndDate")) ==
	    (double)(T0 + 100) / 1000.0);
	json_decref(out);

	snprintf(body, sizeof(body), "{\"State\":\"Active\",\"Filters\":["
	    "{\"key\":\"Target\",\"value\":\"%s\"}]}", ids[1]);
	out = run(f, "DescribeSessions", body, &err);
	assert_non_null(out);
	list = json_object_get(out, "Sessions");
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(sget(json_array_get(list, 0), "SessionId"),
	    sids[2]);
	json_decref(out);
	snprintf(body, sizeof(body), "{\"State\":\"Active\",\"Filters\":["
	    "{\"key\":\"SessionId\",\"value\":\"%s\"},{\"key\":\"Owner\","
	    "\"value\":\"%s\"},{\"key\":\"Status\",\"value\":\"Connected\"},"
	    "{\"key\":\"InvokedAfter\",\"value\":\"2023-11-14T00:00:00Z\"},"
	    "{\"key\":\"InvokedBefore\",\"value\":\"2023-11-15T00:00:00Z\"}]}",
	    sids[1], f->admin.arn);
	out = run(f, "DescribeSessions", body, &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out, "Sessions")), 1);
	json_decref(out);
	out = run(f, "DescribeSessions", "{\"State\":\"Active\",\"Filters\":["
	    "{\"key\":\"InvokedAfter\",\"value\":\"2023-11-15T00:00:00Z\"}]}",
	    &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out, "Sessions")), 0);
	json_decref(out);
	out = run(f, "DescribeSessions", "{\"State\":\"Active\",\"Filters\":["
	    "{\"key\":\"Owner\",\"value\":\"arn:aws:iam::1:user/x\"}]}", &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out, "Sessions")), 0);
	json_decref(out);

	/* paging */
	out = run(f, "DescribeSessions", "{\"State\":\"Active\","
	    "\"MaxResults\":1}", &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out, "Sessions")), 1);
	snprintf(tok, sizeof(tok), "%s", sget(out, "NextToken"));
	json_decref(out);
	snprintf(body, sizeof(body), "{\"State\":\"Active\",\"MaxResults\":1,"
	    "\"NextToken\":\"%s\"}", tok);
	out = run(f, "DescribeSessions", body, &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out, "Sessions")), 1);
	assert_null(json_object_get(out, "NextToken"));
	json_decref(out);
}

static void
test_connection_status(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	char ids[1][21], body[100];
	json_t *out;

	register_instances(f, 1, ids);
	snprintf(body, sizeof(body), "{\"Target\":\"%s\"}", ids[0]);
	out = run(f, "GetConnectionStatus", body, &err);
	assert_non_null(out);
	assert_string_equal(sget(out, "Status"), "connected");
	assert_string_equal(sget(out, "Target"), ids[0]);
	json_decref(out);
	stub_online = 0;
	out = run(f, "GetConnectionStatus", body, &err);
	assert_non_null(out);
	assert_string_equal(sget(out, "Status"), "notconnected");
	json_decref(out);
	expect_error(f, "GetConnectionStatus", "{\"Target\":\"\"}",
	    "ValidationException", "target");
}

/* ---- helpers ------------------------------------------------------------ */

static void
test_time_and_tokens(void **state)
{
	int64_t ms;
	char tok[32];
	int off;

	(void)state;
	assert_int_equal(api_parse_time("2023-11-14T22:13:20Z", &ms), 0);
	assert_true(ms == T0);
	assert_int_equal(api_parse_time("2023-11-14T23:13:20.250+01:00", &ms),
	    0);
	assert_true(ms == T0 + 250);
	assert_int_equal(api_parse_time("2023-11-14", &ms), 0);
	assert_int_equal(api_parse_time("1700000000", &ms), 0);
	assert_true(ms == T0);
	assert_int_not_equal(api_parse_time("2023-13-01", &ms), 0);
	assert_int_not_equal(api_parse_time("2023-11-14T", &ms), 0);
	assert_int_not_equal(api_parse_time("", &ms), 0);
	api_token_encode(42, tok);
	assert_int_equal(api_token_decode(tok, &off), 0);
	assert_int_equal(off, 42);
	assert_int_not_equal(api_token_decode("ph1.zzzzzzzz", &off), 0);
	assert_int_not_equal(api_token_decode("ph1.ffffffff", &off), 0);
}

/* A parameter whose allowedValues holds non-strings (CreateDocument
 * refuses such documents; a built-in or older one may hold them): the
 * non-strings match nothing, and resolving never crashes. */
static void
test_resolve_allowed_values_non_string(void **state)
{
	struct api_error err;
	json_t *doc, *params, *d_out, *p_out;

	(void)state;
	doc = json_loads("{\"schemaVersion\":\"1.0\",\"parameters\":{\"p\":"
	    "{\"type\":\"String\",\"allowedValues\":[1,null,{},\"ok\"]}},"
	    "\"inputs\":{\"x\":\"{{ p }}\"}}", 0, NULL);
	assert_non_null(doc);
	params = json_loads("{\"p\":[\"ok\"]}", 0, NULL);
	assert_int_equal(api_ssm_resolve_document("D", doc, params, &d_out,
	    &p_out, &err), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    d_out, "inputs"), "x")), "ok");
	json_decref(d_out);
	json_decref(p_out);
	json_decref(params);
	params = json_loads("{\"p\":[\"1\"]}", 0, NULL);
	assert_int_not_equal(api_ssm_resolve_document("D", doc, params,
	    &d_out, &p_out, &err), 0);
	assert_null(d_out);
	json_decref(params);
	json_decref(doc);
}

/* ---- record delivery status --------------------------------------------- */

static void
test_record_delivery_status(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	struct api_call c;
	json_t *in, *out = NULL;
	const char *bodies[] = { "{}", "{\"QueueDepth\":\"x\"}",
	    "{\"Junk\":[1,{\"a\":null}]}" };
	size_t i;

	/* No sink configured: nothing queued, healthy; unknown members are
	 * ignored as every action does. */
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		out = run(f, "GetRecordDeliveryStatus", bodies[i], &err);
		assert_non_null(out);
		assert_int_equal(json_integer_value(json_object_get(out,
		    "QueueDepth")), 0);
		assert_true(json_is_true(json_object_get(out, "Healthy")));
		assert_null(json_object_get(out, "OldestQueuedTime"));
		assert_null(json_object_get(out, "LastError"));
		assert_int_equal(json_object_size(out), 2);
		json_decref(out);
	}
	assert_null(run_as(f, &f->bob, "GetRecordDeliveryStatus", "{}",
	    &err));
	assert_string_equal(err.type, "AccessDeniedException");
	assert_non_null(strstr(err.message,
	    "ssm:GetRecordDeliveryStatus"));
	/* A body that is not an object. */
	memset(&c, 0, sizeof(c));
	c.srv = &f->srv;
	c.principal = &f->admin;
	in = json_string("status");
	out = NULL;
	assert_int_not_equal(api_ssm_dispatch(&c, "GetRecordDeliveryStatus",
	    in, &out, &err), 0);
	assert_string_equal(err.type, "SerializationException");
	assert_null(out);
	json_decref(in);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_create_describe_delete),
		T(test_create_activation_validation),
		T(test_describe_activations_filters_paging),
		T(test_access_denied_and_dispatch),
		T(test_tags_round_trip),
		T(test_describe_instance_information),
		T(test_deregister),
		T(test_start_session),
		T(test_start_session_documents),
		T(test_resume_terminate),
		T(test_describe_sessions),
		T(test_connection_status),
		T(test_record_delivery_status),
		cmocka_unit_test(test_time_and_tokens),
		cmocka_unit_test(test_resolve_allowed_values_non_string),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
