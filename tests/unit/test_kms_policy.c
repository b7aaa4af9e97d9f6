/* kms_policy: key policy shapes (good and malformed documents) and the
 * evaluation: principals (users, roles for assumed-role sessions, the
 * account delegating to IAM, "*"), actions with wildcards, explicit Deny,
 * NotPrincipal/NotAction/NotResource and conditions read safely. */
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
#include "server/kms_policy.h"

#define ACCT "123456789012"
#define KEY "arn:aws:kms:us-east-1:" ACCT \
	":key/0b6b4f4e-1c1a-4c1a-9e2e-1a2b3c4d5e6f"
#define ADMIN "arn:aws:iam::" ACCT ":user/admin"
#define BOB "arn:aws:iam::" ACCT ":user/bob"
#define ROLE "arn:aws:iam::" ACCT ":role/porthole-test-role"
#define SESSION "arn:aws:sts::" ACCT \
	":assumed-role/porthole-test-role/mi-0123456789abcdef0"

static int
eval(const char *doc, const char *arn, const char *role, int iam,
    const char *action)
{
	struct kms_policy_who w = { arn, role, ACCT, iam };
	struct kms_policy *p = NULL;
	char msg[256];
	int d;

	assert_int_equal(kms_policy_parse(doc, &p, msg, sizeof(msg)), 0);
	d = kms_policy_eval(p, &w, action, KEY);
	assert_int_equal(kms_policy_eval_text(doc, &w, action, KEY), d);
	kms_policy_free(p);
	return d;
}

static void
t_default_policy(void **state)
{
	char *doc = kms_policy_default(ACCT);
	json_t *o;

	(void)state;
	assert_non_null(doc);
	o = json_loads(doc, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(json_object_get(o, "Statement"), 0), "Principal"),
	    "AWS")), "arn:aws:iam::" ACCT ":root");
	json_decref(o);
	/* The account's IAM decides. */
	assert_int_equal(eval(doc, ADMIN, NULL, 1, "kms:Decrypt"),
	    KMS_POLICY_ALLOW);
	assert_int_equal(eval(doc, BOB, NULL, 0, "kms:Decrypt"),
	    KMS_POLICY_IMPLICIT_DENY);
	assert_int_equal(eval(doc, SESSION, ROLE, 1, "kms:Decrypt"),
	    KMS_POLICY_ALLOW);
	free(doc);
}

static void
t_principals(void **state)
{
	const char *doc = "{\"Version\":\"2012-10-17\",\"Statement\":["
	    "{\"Sid\":\"Users\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":"
	    "[\"" ADMIN "\"]},\"Action\":\"kms:*\",\"Resource\":\"*\"},"
	    "{\"Sid\":\"Instances\",\"Effect\":\"Allow\",\"Principal\":"
	    "{\"AWS\":\"" ROLE "\"},\"Action\":[\"kms:Decrypt\","
	    "\"kms:DescribeKey\"],"
	    "\"Resource\":\"*\"}]}";

	(void)state;
	/* Named users need no IAM allow (same account). */
	assert_int_equal(eval(doc, ADMIN, NULL, 0, "kms:GenerateDataKey"),
	    KMS_POLICY_ALLOW);
	assert_int_equal(eval(doc, BOB, NULL, 1, "kms:GenerateDataKey"),
	    KMS_POLICY_IMPLICIT_DENY);
	/* A role's session matches the role. */
	assert_int_equal(eval(doc, SESSION, ROLE, 0, "kms:Decrypt"),
	    KMS_POLICY_ALLOW);
	assert_int_equal(eval(doc, SESSION, ROLE, 0, "kms:decrypt"),
	    KMS_POLICY_ALLOW);
	assert_int_equal(eval(doc, SESSION, ROLE, 0, "kms:Encrypt"),
	    KMS_POLICY_IMPLICIT_DENY);
	assert_int_equal(eval(doc, SESSION, "arn:aws:iam::" ACCT
	    ":role/other", 1, "kms:Decrypt"), KMS_POLICY_IMPLICIT_DENY);
	/* The session ARN itself may be named. */
	assert_int_equal(eval("{\"Statement\":{\"Effect\":\"Allow\","
	    "\"Principal\":{\"AWS\":\"" SESSION "\"},\"Action\":"
	    "\"kms:Decrypt\",\"Resource\":\"*\"}}", SESSION, ROLE, 0,
	    "kms:Decrypt"),
	    KMS_POLICY_ALLOW);
	/* "*" and {"AWS":"*"}: everyone. */
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"}]}", BOB,
	    NULL, 0, "kms:Encrypt"), KMS_POLICY_ALLOW);
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":{\"AWS\":\"*\"},\"Action\":\"kms:En*\",\"Resource\":"
	    "\"*\"}]}", BOB, NULL, 0, "kms:Encrypt"), KMS_POLICY_ALLOW);
	/* The bare account id delegates like the root ARN. */
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":{\"AWS\":\"" ACCT "\"},\"Action\":\"kms:*\","
	    "\"Resource\":\"*\"}]}", BOB, NULL, 1, "kms:Encrypt"),
	    KMS_POLICY_ALLOW);
	/* Another account's root is not ours. */
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":{\"AWS\":\"arn:aws:iam::999999999999:root\"},"
	    "\"Action\":\"kms:*\",\"Resource\":\"*\"}]}", ADMIN, NULL, 1,
	    "kms:Encrypt"), KMS_POLICY_IMPLICIT_DENY);
	/* Service principals never match a user. */
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":{\"Service\":\"ssm.amazonaws.com\"},\"Action\":"
	    "\"kms:*\",\"Resource\":\"*\"}]}", ADMIN, NULL, 1, "kms:Encrypt"),
	    KMS_POLICY_IMPLICIT_DENY);
}

static void
t_deny_and_not(void **state)
{
	const char *doc = "{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
	    "{\"AWS\":\"arn:aws:iam::" ACCT ":root\"},\"Action\":\"kms:*\","
	    "\"Resource\":\"*\"},{\"Effect\":\"Deny\",\"Principal\":{\"AWS\":"
	    "\"" BOB "\"},\"Action\":\"kms:Decrypt\",\"Resource\":\"*\"}]}";

	(void)state;
	assert_int_equal(eval(doc, BOB, NULL, 1, "kms:Decrypt"),
	    KMS_POLICY_EXPLICIT_DENY);
	assert_int_equal(eval(doc, BOB, NULL, 1, "kms:Encrypt"),
	    KMS_POLICY_ALLOW);
	assert_int_equal(eval(doc, ADMIN, NULL, 1, "kms:Decrypt"),
	    KMS_POLICY_ALLOW);
	/* A Deny naming the account covers everyone in it, IAM or not. */
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"},"
	    "{\"Effect\":\"Deny\",\"Principal\":{\"AWS\":\"" ACCT "\"},"
	    "\"Action\":\"kms:ScheduleKeyDeletion\",\"Resource\":\"*\"}]}",
	    ADMIN, NULL, 0, "kms:ScheduleKeyDeletion"),
	    KMS_POLICY_EXPLICIT_DENY);
	/* NotAction, NotResource, NotPrincipal. */
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"NotAction\":\"kms:Decrypt\",\"Resource\":"
	    "\"*\"}]}", BOB, NULL, 0, "kms:Decrypt"),
	    KMS_POLICY_IMPLICIT_DENY);
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"NotAction\":\"kms:Decrypt\",\"Resource\":"
	    "\"*\"}]}", BOB, NULL, 0, "kms:Encrypt"), KMS_POLICY_ALLOW);
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"Action\":\"*\",\"NotResource\":\"" KEY
	    "\"}]}", BOB, NULL, 0, "kms:Encrypt"), KMS_POLICY_IMPLICIT_DENY);
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Deny\","
	    "\"NotPrincipal\":{\"AWS\":\"" ADMIN "\"},\"Action\":\"*\","
	    "\"Resource\":\"*\"},{\"Effect\":\"Allow\",\"Principal\":\"*\","
	    "\"Action\":\"*\",\"Resource\":\"*\"}]}", BOB, NULL, 0,
	    "kms:Encrypt"), KMS_POLICY_EXPLICIT_DENY);
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Deny\","
	    "\"NotPrincipal\":{\"AWS\":\"" ADMIN "\"},\"Action\":\"*\","
	    "\"Resource\":\"*\"},{\"Effect\":\"Allow\",\"Principal\":\"*\","
	    "\"Action\":\"*\",\"Resource\":\"*\"}]}", ADMIN, NULL, 0,
	    "kms:Encrypt"), KMS_POLICY_ALLOW);
	/* Resource patterns. */
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":"
	    "\"arn:aws:kms:us-east-1:" ACCT ":key/*\"}]}", BOB, NULL, 0,
	    "kms:Encrypt"), KMS_POLICY_ALLOW);
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":"
	    "\"arn:aws:kms:eu-west-1:*\"}]}", BOB, NULL, 0, "kms:Encrypt"),
	    KMS_POLICY_IMPLICIT_DENY);
}

static void
t_conditions(void **state)
{
	(void)state;
	/* Not evaluated yet: an Allow with a condition never applies... */
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\","
	    "\"Condition\":{\"Bool\":{\"kms:GrantIsForAWSResource\":"
	    "\"true\"}}}]}", ADMIN, NULL, 1, "kms:Encrypt"),
	    KMS_POLICY_IMPLICIT_DENY);
	/* ...and a Deny with one always does. */
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"},"
	    "{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":"
	    "\"kms:Decrypt\",\"Resource\":\"*\",\"Condition\":{"
	    "\"StringNotEquals\":{\"aws:SourceVpc\":\"vpc-1\"}}}]}", ADMIN,
	    NULL, 1, "kms:Decrypt"), KMS_POLICY_EXPLICIT_DENY);
}

static void
t_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"not json",
		"{\"Version\": \"2012-10-17\", \"Statement\": [",
		"[]",
		"{}",
		"{\"Statement\": []}",
		"{\"Statement\": \"x\"}",
		"{\"Statement\": [1]}",
		"{\"Version\": \"2020-01-01\", \"Statement\": {\"Effect\":"
		    "\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
		    "\"Resource\":\"*\"}}",
		"{\"Version\": 5, \"Statement\": {}}",
		"{\"Id\": [], \"Statement\": {\"Effect\":\"Allow\","
		    "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"}}",
		"{\"Extra\": 1, \"Statement\": {\"Effect\":\"Allow\","
		    "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Maybe\",\"Principal\":\"*\","
		    "\"Action\":\"*\",\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Principal\":\"*\",\"Action\":\"*\","
		    "\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Action\":\"*\","
		    "\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"bob\","
		    "\"Action\":\"*\",\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":{},"
		    "\"Action\":\"*\",\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":{\"AWS\":"
		    "[]},\"Action\":\"*\",\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":{\"AWS\":"
		    "[1]},\"Action\":\"*\",\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":"
		    "{\"Nobody\":\"x\"},\"Action\":\"*\",\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Action\":\"Decrypt\",\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Action\":\"kms:\",\"Resource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Action\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Action\":\"*\",\"Resource\":\"*\","
		    "\"NotResource\":\"*\"}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":[]}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Action\":\"*\",\"Resource\":\"*\","
		    "\"Condition\":{\"Bool\":1}}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Action\":\"*\",\"Resource\":\"*\",\"Surprise\":1}}",
		"{\"Statement\": {\"Sid\":1,\"Effect\":\"Allow\",\"Principal\":"
		    "\"*\",\"Action\":\"*\",\"Resource\":\"*\"}}",
		"{\"Statement\": {}, \"Statement\": {}}",
	};
	static const char head[] = "{\"Statement\":{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"}}";
	struct kms_policy *p;
	char msg[256], *big;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = (struct kms_policy *)&p;
		msg[0] = '\0';
		assert_int_equal(kms_policy_parse(bad[i], &p, msg, sizeof(msg)),
		    PH_ERR_INVALID);
		assert_null(p);
		assert_true(strlen(msg) > 0);
	}
	assert_int_equal(kms_policy_parse(NULL, &p, NULL, 0), PH_ERR_INVALID);
	/* Too large. */
	n = KMS_POLICY_MAX + 100;
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, head, strlen(head));
	big[n] = '\0';
	assert_int_equal(kms_policy_parse(big, &p, msg, sizeof(msg)),
	    PH_ERR_INVALID);
	free(big);
	/* Garbage evaluates to nothing allowed. */
	assert_int_equal(kms_policy_eval_text("garbage", &(struct
	    kms_policy_who){ ADMIN, NULL, ACCT, 1 }, "kms:Encrypt", KEY),
	    KMS_POLICY_IMPLICIT_DENY);
	assert_int_equal(kms_policy_eval(NULL, NULL, NULL, NULL),
	    KMS_POLICY_IMPLICIT_DENY);
}

static void
t_glob(void **state)
{
	char s[4096];

	(void)state;
	assert_true(kms_policy_glob("*", "", 0));
	assert_true(kms_policy_glob("kms:*", "kms:Decrypt", 0));
	assert_true(kms_policy_glob("kms:*crypt", "kms:Decrypt", 0));
	assert_true(kms_policy_glob("kms:?ecrypt", "kms:Decrypt", 0));
	assert_false(kms_policy_glob("kms:?crypt", "kms:Decrypt", 0));
	assert_true(kms_policy_glob("KMS:DECRYPT", "kms:Decrypt", 1));
	assert_false(kms_policy_glob("KMS:DECRYPT", "kms:Decrypt", 0));
	assert_false(kms_policy_glob("kms:Decrypt", "kms:Decrypt2", 0));
	assert_true(kms_policy_glob("a*b*c*d", "aXbYcZd", 0));
	/* A pathological pattern stays bounded. */
	memset(s, 'a', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	assert_false(kms_policy_glob("*a*a*a*a*a*a*a*a*a*b", s, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_default_policy),
		cmocka_unit_test(t_principals),
		cmocka_unit_test(t_deny_and_not),
		cmocka_unit_test(t_conditions),
		cmocka_unit_test(t_malformed),
		cmocka_unit_test(t_glob),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
