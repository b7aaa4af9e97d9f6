/* kms_policy: key policy shapes (good and malformed documents) and the
 * evaluation: principals (users, roles for assumed-role sessions, the
 * account delegating to IAM, "*"), actions with wildcards, explicit Deny,
 * NotPrincipal/NotAction/NotResource, and Conditions evaluated by the
 * identity-policy engine against the request context (encryption context,
 * caller account, principal ARN), failing closed when they cannot be. */
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
	struct kms_policy_who w = { arn, role, ACCT, iam, NULL, 0 };
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
	/* With no request context: an Allow on a key that is absent does
	 * not apply... */
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\","
	    "\"Condition\":{\"Bool\":{\"kms:GrantIsForAWSResource\":"
	    "\"true\"}}}]}", ADMIN, NULL, 1, "kms:Encrypt"),
	    KMS_POLICY_IMPLICIT_DENY);
	/* ...and a Deny on a negated operator over an absent key does. */
	assert_int_equal(eval("{\"Statement\":[{\"Effect\":\"Allow\","
	    "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"},"
	    "{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":"
	    "\"kms:Decrypt\",\"Resource\":\"*\",\"Condition\":{"
	    "\"StringNotEquals\":{\"aws:SourceVpc\":\"vpc-1\"}}}]}", ADMIN,
	    NULL, 1, "kms:Decrypt"), KMS_POLICY_EXPLICIT_DENY);
}

static int
eval_ctx(const char *doc, const char *arn, const char *role,
    const struct policy_ctx *ctx, size_t nctx)
{
	struct kms_policy_who w = { arn, role, ACCT, 0, ctx, nctx };

	return kms_policy_eval_text(doc, &w, "kms:Decrypt", KEY);
}

#define COND_POLICY(effect, cond) "{\"Version\":\"2012-10-17\"," \
	"\"Statement\":[{\"Effect\":\"" effect "\",\"Principal\":{\"AWS\":" \
	"\"*\"},\"Action\":\"kms:Decrypt\",\"Resource\":\"*\"," \
	"\"Condition\":" cond "}]}"

static void
t_conditions_ctx(void **state)
{
	static const char *const sid[] = { "s-1" };
	static const char *const other[] = { "s-2" };
	static const char *const target[] = { "mi-0123456789abcdef0" };
	static const char *const acct[] = { ACCT };
	static const char *const role[] = { ROLE };
	static const char *const bad[] = { NULL };
	const struct policy_ctx match[] = {
		{ "kms:EncryptionContext:aws:ssm:SessionId", sid, 1 },
		{ "kms:EncryptionContext:aws:ssm:TargetId", target, 1 },
		{ "kms:CallerAccount", acct, 1 },
		{ "aws:PrincipalArn", role, 1 },
	};
	const struct policy_ctx miss[] = {
		{ "kms:EncryptionContext:aws:ssm:SessionId", other, 1 },
		{ "kms:CallerAccount", acct, 1 },
	};
	const struct policy_ctx broken[] = {
		{ "kms:EncryptionContext:aws:ssm:SessionId", bad, 1 },
	};
	const char *ec = COND_POLICY("Allow", "{\"StringEquals\":{"
	    "\"kms:EncryptionContext:aws:ssm:SessionId\":\"s-1\"}}");
	const char *pa = COND_POLICY("Allow", "{\"ArnLike\":{"
	    "\"aws:PrincipalArn\":\"arn:aws:iam::*:role/porthole-*\"},"
	    "\"StringEquals\":{\"kms:CallerAccount\":\"" ACCT "\"}}");
	const char *keys = COND_POLICY("Allow", "{\"ForAllValues:StringLike\""
	    ":{\"kms:EncryptionContextKeys\":\"aws:ssm:*\"}}");
	const char *deny = "{\"Version\":\"2012-10-17\",\"Statement\":["
	    "{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
	    "\"Resource\":\"*\"},{\"Effect\":\"Deny\",\"Principal\":\"*\","
	    "\"Action\":\"kms:Decrypt\",\"Resource\":\"*\",\"Condition\":"
	    "{\"Null\":{\"kms:EncryptionContext:aws:ssm:SessionId\":"
	    "\"true\"}}}]}";
	const char *var = COND_POLICY("Allow", "{\"StringEquals\":{"
	    "\"kms:EncryptionContext:aws:ssm:TargetId\":"
	    "\"${aws:username}\"}}");
	static const char *const uname[] = { "mi-0123456789abcdef0" };
	const struct policy_ctx with_user[] = {
		{ "kms:EncryptionContext:aws:ssm:TargetId", target, 1 },
		{ "aws:username", uname, 1 },
	};

	(void)state;
	/* kms:EncryptionContext:KEY: grants when it matches, not else. */
	assert_int_equal(eval_ctx(ec, SESSION, ROLE, match, 4),
	    KMS_POLICY_ALLOW);
	assert_int_equal(eval_ctx(ec, SESSION, ROLE, miss, 2),
	    KMS_POLICY_IMPLICIT_DENY);
	assert_int_equal(eval_ctx(ec, SESSION, ROLE, NULL, 0),
	    KMS_POLICY_IMPLICIT_DENY);
	/* Condition key names compare case-insensitively. */
	assert_int_equal(eval_ctx(COND_POLICY("Allow", "{\"StringEquals\":{"
	    "\"KMS:encryptioncontext:aws:ssm:sessionid\":\"s-1\"}}"), SESSION,
	    ROLE, match, 4), KMS_POLICY_ALLOW);
	/* aws:PrincipalArn (the role of a role session) and the caller's
	 * account, both required. */
	assert_int_equal(eval_ctx(pa, SESSION, ROLE, match, 4),
	    KMS_POLICY_ALLOW);
	assert_int_equal(eval_ctx(pa, SESSION, ROLE, miss, 2),
	    KMS_POLICY_IMPLICIT_DENY);
	/* A multi-valued key with a set operator. */
	{
		static const char *const k1[] = { "aws:ssm:SessionId",
		    "aws:ssm:TargetId" };
		static const char *const k2[] = { "aws:ssm:SessionId",
		    "purpose" };
		const struct policy_ctx c1[] = {
			{ "kms:EncryptionContextKeys", k1, 2 } };
		const struct policy_ctx c2[] = {
			{ "kms:EncryptionContextKeys", k2, 2 } };

		assert_int_equal(eval_ctx(keys, SESSION, ROLE, c1, 1),
		    KMS_POLICY_ALLOW);
		assert_int_equal(eval_ctx(keys, SESSION, ROLE, c2, 1),
		    KMS_POLICY_IMPLICIT_DENY);
	}
	/* A conditional Deny: only when the encryption context lacks the
	 * session id. */
	assert_int_equal(eval_ctx(deny, SESSION, ROLE, match, 4),
	    KMS_POLICY_ALLOW);
	assert_int_equal(eval_ctx(deny, SESSION, ROLE, NULL, 0),
	    KMS_POLICY_EXPLICIT_DENY);
	/* Policy variables expand in 2012-10-17 documents. */
	assert_int_equal(eval_ctx(var, SESSION, ROLE, with_user, 2),
	    KMS_POLICY_ALLOW);
	assert_int_equal(eval_ctx(var, SESSION, ROLE, match, 4),
	    KMS_POLICY_IMPLICIT_DENY);
	/* A context the engine cannot read fails closed both ways. */
	assert_int_equal(eval_ctx(ec, SESSION, ROLE, broken, 1),
	    KMS_POLICY_IMPLICIT_DENY);
	assert_int_equal(eval_ctx("{\"Version\":\"2012-10-17\",\"Statement\":"
	    "[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
	    "\"Resource\":\"*\"},{\"Effect\":\"Deny\",\"Principal\":\"*\","
	    "\"Action\":\"kms:Decrypt\",\"Resource\":\"*\",\"Condition\":"
	    "{\"StringEquals\":{\"kms:EncryptionContext:aws:ssm:SessionId\":"
	    "\"s-9\"}}}]}", SESSION, ROLE, broken, 1),
	    KMS_POLICY_EXPLICIT_DENY);
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
		/* Conditions the engine would refuse. */
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":"
		    "{\"StringEqualz\":{\"kms:CallerAccount\":\"1\"}}}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":"
		    "{\"StringEquals\":{}}}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":"
		    "{\"StringEquals\":{\"kms:CallerAccount\":[]}}}}",
		"{\"Statement\": {\"Effect\":\"Allow\",\"Principal\":\"*\","
		    "\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":"
		    "{\"StringEquals\":{\"kms:CallerAccount\":{\"a\":1}}}}}",
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
	    kms_policy_who){ ADMIN, NULL, ACCT, 1, NULL, 0 }, "kms:Encrypt", KEY),
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
		cmocka_unit_test(t_conditions_ctx),
		cmocka_unit_test(t_malformed),
		cmocka_unit_test(t_glob),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
