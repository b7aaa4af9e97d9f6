/* api_kms: the KMS actions through api_kms_dispatch on a real key store in
 * a temporary directory: shapes, AWS errors, key policies for users and
 * instance principals, states and deletion dates, paging, and garbage
 * (every action with every member of the wrong type, missing, huge or
 * not base64). */
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

#include "common/buf.h"
#include "common/err.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/api_kms.h"
#include "server/authz.h"
#include "server/kms.h"
#include "server/server.h"
#include "server/store.h"
#include "server/store_iam.h"

#define T0 ((int64_t)1700000000000)
#define DAY ((int64_t)86400000)
#define ACCT "123456789012"
#define ADMIN_ARN "arn:aws:iam::" ACCT ":user/admin"
#define BOB_ARN "arn:aws:iam::" ACCT ":user/bob"
#define ROLE_ARN "arn:aws:iam::" ACCT ":role/porthole-test-role"
#define SESSION_ARN "arn:aws:sts::" ACCT \
	":assumed-role/porthole-test-role/mi-0123456789abcdef0"

struct fx {
	char dir[64];
	char dbpath[128];
	struct server srv;
	struct principal admin, bob, inst;
	struct api_call call;
	struct api_error err;
};

static struct fx *F;

static int
setup(void **state)
{
	struct kms_root_opts o = { NULL, 1 };
	struct fx *f = calloc(1, sizeof(*f));
	struct iam_role_rec role;

	assert_non_null(f);
	unsetenv(KMS_ROOT_KEY_ENV);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_api_kms.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(kms_open(&f->srv.kms, f->dir, &o), 0);
	snprintf(f->srv.region, sizeof(f->srv.region), "us-east-1");
	snprintf(f->srv.account_id, sizeof(f->srv.account_id), ACCT);
	f->admin.active = 1;
	f->admin.is_root_admin = 1;
	snprintf(f->admin.arn, sizeof(f->admin.arn), ADMIN_ARN);
	f->bob.active = 1;
	snprintf(f->bob.arn, sizeof(f->bob.arn), BOB_ARN);
	f->inst.active = 1;
	f->inst.is_instance = 1;
	snprintf(f->inst.arn, sizeof(f->inst.arn), SESSION_ARN);
	snprintf(f->inst.role_arn, sizeof(f->inst.role_arn), ROLE_ARN);
	snprintf(f->inst.instance_id, sizeof(f->inst.instance_id),
	    "mi-0123456789abcdef0");
	/* The instance acts as its role, whose policy allows what an
	 * encrypted session needs (authz evaluates it from the store). */
	f->inst.kind = PRINCIPAL_INSTANCE;
	snprintf(f->inst.role_name, sizeof(f->inst.role_name),
	    "porthole-test-role");
	snprintf(f->dbpath, sizeof(f->dbpath), "%s/porthole.db", f->dir);
	assert_int_equal(store_open(&f->srv.store, f->dbpath), 0);
	memset(&role, 0, sizeof(role));
	snprintf(role.name, sizeof(role.name), "porthole-test-role");
	snprintf(role.arn, sizeof(role.arn), ROLE_ARN);
	role.trust_policy = (char *)"{\"Statement\":{\"Effect\":\"Allow\","
	    "\"Principal\":{\"Service\":\"ssm.amazonaws.com\"},"
	    "\"Action\":\"sts:AssumeRole\"}}";
	assert_int_equal(store_iam_role_create(f->srv.store, &role), 0);
	assert_int_equal(store_iam_inline_put(f->srv.store, "role",
	    "porthole-test-role", "kms", "{\"Version\":\"2012-10-17\","
	    "\"Statement\":{\"Effect\":\"Allow\",\"Action\":"
	    "[\"kms:Decrypt\",\"kms:DescribeKey\"],\"Resource\":\"*\"}}"),
	    0);
	f->call.srv = &f->srv;
	f->call.principal = &f->admin;
	f->call.request_id = "r";
	f->call.now_ms = T0;
	F = f;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	static const char *const names[] = { KMS_DB_FILE, KMS_DB_FILE "-wal",
	    KMS_DB_FILE "-shm", KMS_ROOT_KEY_FILE };
	struct fx *f = *state;
	char p[128];
	size_t i;

	kms_close(f->srv.kms);
	authz_free(&f->srv);
	store_close(f->srv.store);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	unlink(f->dbpath);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Run action with body (JSON text) as principal p; *out set on success
 * (caller decrefs) or NULL. Returns the dispatcher's code. */
static int
call_as(const struct principal *p, const char *action, const char *body,
    json_t **out)
{
	json_t *in = json_loads(body, 0, NULL), *o = NULL;
	int rc;

	assert_non_null(in);
	memset(&F->err, 0, sizeof(F->err));
	F->call.principal = p;
	rc = api_kms_dispatch(&F->call, action, in, &o, &F->err);
	json_decref(in);
	if (rc == 0)
		assert_non_null(o);
	else {
		assert_null(o);
		assert_true(F->err.status >= 400 && F->err.status < 500);
		assert_true(F->err.type[0] != '\0');
	}
	if (out != NULL)
		*out = o;
	else
		json_decref(o);
	return rc;
}

static int
call(const char *action, const char *body, json_t **out)
{
	return call_as(&F->admin, action, body, out);
}

static void
expect_error(const struct principal *p, const char *action,
    const char *body, const char *type)
{
	int rc = call_as(p, action, body, NULL);

	if (rc == 0 || strcmp(F->err.type, type) != 0)
		fail_msg("%s %s: want %s, got rc %d %s: %s", action, body, type,
		    rc, F->err.type, F->err.message);
}

/* A new key; id and arn copied out. */
static void
new_key(const char *body, char *id, char *arn)
{
	json_t *o, *m;

	assert_int_equal(call("CreateKey", body, &o), 0);
	m = json_object_get(o, "KeyMetadata");
	snprintf(id, 40, "%s", json_string_value(json_object_get(m,
	    "KeyId")));
	if (arn != NULL)
		snprintf(arn, 200, "%s", json_string_value(json_object_get(m,
		    "Arn")));
	json_decref(o);
}

static void
t_create_describe(void **state)
{
	char id[40], arn[200], body[400];
	json_t *o, *m;

	(void)state;
	assert_int_equal(call("CreateKey", "{\"Description\": \"d\", \"Tags\": "
	    "[{\"TagKey\": \"team\", \"TagValue\": \"ops\"}], \"KeyUsage\": "
	    "\"ENCRYPT_DECRYPT\", \"KeySpec\": \"SYMMETRIC_DEFAULT\"}", &o),
	    0);
	m = json_object_get(o, "KeyMetadata");
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(m,
	    "KeyId")));
	assert_true(api_pat_uuid(id));
	snprintf(arn, sizeof(arn), "arn:aws:kms:us-east-1:" ACCT ":key/%s", id);
	assert_string_equal(json_string_value(json_object_get(m, "Arn")), arn);
	assert_string_equal(json_string_value(json_object_get(m, "KeyState")),
	    "Enabled");
	assert_true(json_is_true(json_object_get(m, "Enabled")));
	assert_true(json_is_number(json_object_get(m, "CreationDate")));
	assert_int_equal((int64_t)json_number_value(json_object_get(m,
	    "CreationDate")), T0 / 1000);
	json_decref(o);

	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\"}", arn);
	assert_int_equal(call("DescribeKey", body, &o), 0);
	json_decref(o);
	/* Unsupported kinds of key. */
	expect_error(&F->admin, "CreateKey", "{\"KeyUsage\": \"SIGN_VERIFY\"}",
	    "UnsupportedOperationException");
	expect_error(&F->admin, "CreateKey", "{\"KeySpec\": \"RSA_2048\"}",
	    "UnsupportedOperationException");
	expect_error(&F->admin, "CreateKey", "{\"KeySpec\": \"RSA_2048\", "
	    "\"CustomerMasterKeySpec\": \"RSA_2048\"}", "ValidationException");
	expect_error(&F->admin, "CreateKey", "{\"Origin\": \"EXTERNAL\"}",
	    "UnsupportedOperationException");
	expect_error(&F->admin, "CreateKey", "{\"MultiRegion\": true}",
	    "UnsupportedOperationException");
	expect_error(&F->admin, "CreateKey", "{\"KeySpec\": \"AES\"}",
	    "ValidationException");
	expect_error(&F->admin, "CreateKey", "{\"Tags\": [{\"TagKey\": "
	    "\"aws:x\", \"TagValue\": \"\"}]}", "TagException");
	expect_error(&F->admin, "Frobnicate", "{}",
	    "UnknownOperationException");
	/* Only the admin may create keys (until IAM). */
	expect_error(&F->bob, "CreateKey", "{}", "AccessDeniedException");
	expect_error(&F->inst, "CreateKey", "{}", "AccessDeniedException");
}

static void
t_key_references(void **state)
{
	char id[40], arn[200], body[600];
	json_t *o;

	(void)state;
	new_key("{}", id, arn);
	assert_int_equal(call("CreateAlias", "{\"AliasName\": \"alias/a\", "
	    "\"TargetKeyId\": \"alias/a\"}", NULL), PH_ERR_INVALID);
	assert_string_equal(F->err.type, "NotFoundException");
	snprintf(body, sizeof(body), "{\"AliasName\": \"alias/a\", "
	    "\"TargetKeyId\": \"%s\"}", arn);
	assert_int_equal(call("CreateAlias", body, NULL), 0);
	expect_error(&F->admin, "CreateAlias", body, "AlreadyExistsException");
	assert_int_equal(call("DescribeKey", "{\"KeyId\": \"alias/a\"}", &o),
	    0);
	json_decref(o);
	assert_int_equal(call("DescribeKey", "{\"KeyId\": \"arn:aws:kms:"
	    "us-east-1:" ACCT ":alias/a\"}", NULL), 0);
	/* Another region or account, bad forms. */
	expect_error(&F->admin, "DescribeKey", "{\"KeyId\": \"arn:aws:kms:"
	    "eu-west-1:" ACCT ":alias/a\"}", "NotFoundException");
	expect_error(&F->admin, "DescribeKey", "{\"KeyId\": \"arn:aws:kms:"
	    "us-east-1:999999999999:alias/a\"}", "NotFoundException");
	expect_error(&F->admin, "DescribeKey", "{\"KeyId\": \"arn:aws:kms:"
	    "us-east-1:" ACCT ":key/nope\"}", "NotFoundException");
	expect_error(&F->admin, "DescribeKey", "{\"KeyId\": \"arn:aws:kms:"
	    "us-east-1:" ACCT ":thing/x\"}", "NotFoundException");
	expect_error(&F->admin, "DescribeKey", "{\"KeyId\": \"ALIAS/a\"}",
	    "NotFoundException");
	expect_error(&F->admin, "DescribeKey",
	    "{\"KeyId\": \"00000000-0000-4000-8000-000000000000\"}",
	    "NotFoundException");
	assert_non_null(strstr(F->err.message, "does not exist"));
	/* Alias names where only keys are accepted. */
	expect_error(&F->admin, "DisableKey", "{\"KeyId\": \"alias/a\"}",
	    "NotFoundException");
	/* Alias rules. */
	snprintf(body, sizeof(body), "{\"AliasName\": \"no-prefix\", "
	    "\"TargetKeyId\": \"%s\"}", id);
	expect_error(&F->admin, "CreateAlias", body, "ValidationException");
	snprintf(body, sizeof(body), "{\"AliasName\": \"alias/\", "
	    "\"TargetKeyId\": \"%s\"}", id);
	expect_error(&F->admin, "CreateAlias", body, "ValidationException");
	snprintf(body, sizeof(body), "{\"AliasName\": \"alias/has space\", "
	    "\"TargetKeyId\": \"%s\"}", id);
	expect_error(&F->admin, "CreateAlias", body, "ValidationException");
	snprintf(body, sizeof(body), "{\"AliasName\": \"alias/aws/x\", "
	    "\"TargetKeyId\": \"%s\"}", id);
	expect_error(&F->admin, "CreateAlias", body,
	    "InvalidAliasNameException");
	snprintf(body, sizeof(body), "{\"AliasName\": \"alias/none\", "
	    "\"TargetKeyId\": \"%s\"}", id);
	expect_error(&F->admin, "UpdateAlias", body, "NotFoundException");
	expect_error(&F->admin, "DeleteAlias", "{\"AliasName\": \"alias/b\"}",
	    "NotFoundException");
	assert_int_equal(call("DeleteAlias", "{\"AliasName\": \"alias/a\"}",
	    NULL), 0);
	expect_error(&F->admin, "DescribeKey", "{\"KeyId\": \"alias/a\"}",
	    "NotFoundException");
}

static void
t_crypto(void **state)
{
	char id[40], id2[40], arn[200], body[9000];
	const char *ct;
	json_t *o, *d;

	(void)state;
	new_key("{}", id, arn);
	new_key("{}", id2, NULL);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Plaintext\": "
	    "\"aGVsbG8=\", \"EncryptionContext\": {\"b\": \"2\", \"a\": "
	    "\"1\"}}", id);
	assert_int_equal(call("Encrypt", body, &o), 0);
	assert_string_equal(json_string_value(json_object_get(o, "KeyId")),
	    arn);
	ct = json_string_value(json_object_get(o, "CiphertextBlob"));
	snprintf(body, sizeof(body), "{\"CiphertextBlob\": \"%s\", "
	    "\"EncryptionContext\": {\"a\": \"1\", \"b\": \"2\"}}", ct);
	assert_int_equal(call("Decrypt", body, &d), 0);
	assert_string_equal(json_string_value(json_object_get(d,
	    "Plaintext")), "aGVsbG8=");
	assert_string_equal(json_string_value(json_object_get(d, "KeyId")),
	    arn);
	json_decref(d);
	/* The instance, with the default policy (IAM allows it Decrypt). */
	assert_int_equal(call_as(&F->inst, "Decrypt", body, NULL), 0);
	snprintf(body, sizeof(body), "{\"CiphertextBlob\": \"%s\", "
	    "\"EncryptionContext\": {\"a\": \"1\"}}", ct);
	expect_error(&F->admin, "Decrypt", body, "InvalidCiphertextException");
	snprintf(body, sizeof(body), "{\"CiphertextBlob\": \"%s\", "
	    "\"EncryptionContext\": {\"a\": \"1\", \"b\": \"2\"}, \"KeyId\": "
	    "\"%s\"}", ct, id2);
	expect_error(&F->admin, "Decrypt", body, "IncorrectKeyException");
	snprintf(body, sizeof(body), "{\"CiphertextBlob\": \"%s\", "
	    "\"EncryptionContext\": {\"a\": \"1\", \"b\": \"2\"}, "
	    "\"DryRun\": true}", ct);
	expect_error(&F->admin, "Decrypt", body, "DryRunOperationException");
	assert_int_equal(F->err.status, 412);
	snprintf(body, sizeof(body), "{\"CiphertextBlob\": \"%s\", "
	    "\"EncryptionContext\": {\"a\": \"1\", \"b\": \"2\"}, "
	    "\"EncryptionAlgorithm\": \"RSAES_OAEP_SHA_1\"}", ct);
	expect_error(&F->admin, "Decrypt", body, "InvalidKeyUsageException");
	json_decref(o);

	/* Data keys. */
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"NumberOfBytes\": "
	    "64}", id);
	assert_int_equal(call("GenerateDataKey", body, &o), 0);
	assert_int_equal(strlen(json_string_value(json_object_get(o,
	    "Plaintext"))), 88);
	json_decref(o);
	assert_int_equal(call("GenerateDataKeyWithoutPlaintext", body, &o), 0);
	assert_null(json_object_get(o, "Plaintext"));
	json_decref(o);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"KeySpec\": "
	    "\"AES_128\"}", id);
	assert_int_equal(call("GenerateDataKey", body, &o), 0);
	assert_int_equal(strlen(json_string_value(json_object_get(o,
	    "Plaintext"))), 24);
	json_decref(o);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\"}", id);
	expect_error(&F->admin, "GenerateDataKey", body,
	    "ValidationException");
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"KeySpec\": "
	    "\"AES_256\", \"NumberOfBytes\": 32}", id);
	expect_error(&F->admin, "GenerateDataKey", body,
	    "ValidationException");
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"NumberOfBytes\": "
	    "1025}", id);
	expect_error(&F->admin, "GenerateDataKey", body,
	    "ValidationException");
	/* Plaintext limits. */
	memset(body, 0, sizeof(body));
	{
		size_t n, i;

		n = (size_t)snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", "
		    "\"Plaintext\": \"", id);
		for (i = 0; i < 6828; i++)   /* 5121 bytes in base64 */
			body[n + i] = 'A';
		snprintf(body + n + i, sizeof(body) - n - i, "\"}");
		expect_error(&F->admin, "Encrypt", body,
		    "ValidationException");
		assert_non_null(strstr(F->err.message, "plaintext"));
	}
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Plaintext\": \"\"}",
	    id);
	expect_error(&F->admin, "Encrypt", body, "ValidationException");
}

static void
t_policy(void **state)
{
	char id[40], body[2000], pol[1200];
	json_t *o;

	(void)state;
	/* A role-only policy locks the admin out: refused without the
	 * bypass. */
	snprintf(pol, sizeof(pol), "{\\\"Statement\\\": [{\\\"Effect\\\": "
	    "\\\"Allow\\\", \\\"Principal\\\": {\\\"AWS\\\": \\\"%s\\\"}, "
	    "\\\"Action\\\": \\\"kms:*\\\", \\\"Resource\\\": \\\"*\\\"}]}",
	    ROLE_ARN);
	snprintf(body, sizeof(body), "{\"Policy\": \"%s\"}", pol);
	expect_error(&F->admin, "CreateKey", body,
	    "MalformedPolicyDocumentException");
	assert_non_null(strstr(F->err.message, "will not allow you"));
	snprintf(body, sizeof(body), "{\"Policy\": \"%s\", "
	    "\"BypassPolicyLockoutSafetyCheck\": true}", pol);
	new_key(body, id, NULL);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Plaintext\": "
	    "\"eA==\"}", id);
	expect_error(&F->admin, "Encrypt", body, "AccessDeniedException");
	assert_non_null(strstr(F->err.message, "User: " ADMIN_ARN " is not "
	    "authorized to perform: kms:Encrypt on resource: arn:aws:kms:"));
	assert_non_null(strstr(F->err.message, "because no resource-based "
	    "policy allows the kms:Encrypt action"));
	/* The role's instance may (it is named); but only Decrypt and
	 * DescribeKey. */
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\"}", id);
	assert_int_equal(call_as(&F->inst, "DescribeKey", body, NULL), 0);
	expect_error(&F->inst, "GetKeyPolicy", body, "AccessDeniedException");
	expect_error(&F->admin, "GetKeyPolicy", body, "AccessDeniedException");

	/* Bob, named by a policy, may use a key though IAM says no. */
	snprintf(pol, sizeof(pol), "{\\\"Statement\\\": [{\\\"Effect\\\": "
	    "\\\"Allow\\\", \\\"Principal\\\": {\\\"AWS\\\": [\\\"%s\\\", "
	    "\\\"%s\\\"]}, \\\"Action\\\": \\\"kms:*\\\", \\\"Resource\\\": "
	    "\\\"*\\\"}]}", ADMIN_ARN, BOB_ARN);
	snprintf(body, sizeof(body), "{\"Policy\": \"%s\"}", pol);
	new_key(body, id, NULL);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Plaintext\": "
	    "\"eA==\"}", id);
	assert_int_equal(call_as(&F->bob, "Encrypt", body, NULL), 0);
	expect_error(&F->inst, "Encrypt", body, "AccessDeniedException");
	/* With the default policy Bob is out (IAM denies him). */
	new_key("{}", id, NULL);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Plaintext\": "
	    "\"eA==\"}", id);
	expect_error(&F->bob, "Encrypt", body, "AccessDeniedException");

	/* Get/Put. */
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\"}", id);
	assert_int_equal(call("GetKeyPolicy", body, &o), 0);
	assert_non_null(strstr(json_string_value(json_object_get(o,
	    "Policy")), ":root"));
	json_decref(o);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"PolicyName\": "
	    "\"other\"}", id);
	expect_error(&F->admin, "GetKeyPolicy", body, "NotFoundException");
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Policy\": "
	    "\"{\\\"Statement\\\": [\"}", id);
	expect_error(&F->admin, "PutKeyPolicy", body,
	    "MalformedPolicyDocumentException");
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Policy\": \"%s\"}",
	    id, pol);
	assert_int_equal(call("PutKeyPolicy", body, NULL), 0);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\"}", id);
	assert_int_equal(call("GetKeyPolicy", body, &o), 0);
	assert_non_null(strstr(json_string_value(json_object_get(o,
	    "Policy")), "user/bob"));
	json_decref(o);
}

/* A key policy's Conditions see the request: the encryption context
 * (kms:EncryptionContext:KEY), the caller's account and aws:PrincipalArn
 * (the role of an instance); the identity side gets the same keys. */
static void
t_policy_conditions(void **state)
{
	char id[40], body[4000], pol[2400], ct[1200];
	const char *s;
	json_t *o;

	(void)state;
	snprintf(pol, sizeof(pol), "{\\\"Version\\\": \\\"2012-10-17\\\", "
	    "\\\"Statement\\\": [{\\\"Effect\\\": \\\"Allow\\\", "
	    "\\\"Principal\\\": {\\\"AWS\\\": \\\"%s\\\"}, "
	    "\\\"Action\\\": \\\"kms:*\\\", \\\"Resource\\\": \\\"*\\\"}, "
	    "{\\\"Effect\\\": \\\"Allow\\\", \\\"Principal\\\": "
	    "{\\\"AWS\\\": \\\"*\\\"}, \\\"Action\\\": \\\"kms:Decrypt\\\", "
	    "\\\"Resource\\\": \\\"*\\\", \\\"Condition\\\": {"
	    "\\\"StringEquals\\\": {\\\"kms:EncryptionContext:aws:ssm:"
	    "TargetId\\\": \\\"mi-0123456789abcdef0\\\", "
	    "\\\"kms:CallerAccount\\\": \\\"" ACCT "\\\"}, "
	    "\\\"ArnEquals\\\": {\\\"aws:PrincipalArn\\\": \\\"%s\\\"}}}]}",
	    ADMIN_ARN, ROLE_ARN);
	snprintf(body, sizeof(body), "{\"Policy\": \"%s\"}", pol);
	new_key(body, id, NULL);
	/* The role's own policy does not matter here: drop it. */
	assert_int_equal(store_iam_inline_delete(F->srv.store, "role",
	    "porthole-test-role", "kms"), 0);

	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Plaintext\": "
	    "\"eA==\", \"EncryptionContext\": {\"aws:ssm:TargetId\": "
	    "\"mi-0123456789abcdef0\"}}", id);
	assert_int_equal(call("Encrypt", body, &o), 0);
	s = json_string_value(json_object_get(o, "CiphertextBlob"));
	snprintf(ct, sizeof(ct), "%s", s);
	json_decref(o);
	snprintf(body, sizeof(body), "{\"CiphertextBlob\": \"%s\", "
	    "\"EncryptionContext\": {\"aws:ssm:TargetId\": "
	    "\"mi-0123456789abcdef0\"}}", ct);
	assert_int_equal(call_as(&F->inst, "Decrypt", body, NULL), 0);
	/* Bob matches the context but is not the role. */
	expect_error(&F->bob, "Decrypt", body, "AccessDeniedException");

	/* Another instance's context: the condition fails. */
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Plaintext\": "
	    "\"eA==\", \"EncryptionContext\": {\"aws:ssm:TargetId\": "
	    "\"mi-00000000000000000\"}}", id);
	assert_int_equal(call("Encrypt", body, &o), 0);
	snprintf(ct, sizeof(ct), "%s", json_string_value(json_object_get(o,
	    "CiphertextBlob")));
	json_decref(o);
	snprintf(body, sizeof(body), "{\"CiphertextBlob\": \"%s\", "
	    "\"EncryptionContext\": {\"aws:ssm:TargetId\": "
	    "\"mi-00000000000000000\"}}", ct);
	expect_error(&F->inst, "Decrypt", body, "AccessDeniedException");
	assert_non_null(strstr(F->err.message, "because no resource-based "
	    "policy allows the kms:Decrypt action"));

	/* The default policy hands Decrypt to IAM; the role has none: the
	 * message says which side refused. */
	new_key("{}", id, NULL);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Plaintext\": "
	    "\"eA==\"}", id);
	assert_int_equal(call("Encrypt", body, &o), 0);
	snprintf(ct, sizeof(ct), "%s", json_string_value(json_object_get(o,
	    "CiphertextBlob")));
	json_decref(o);
	snprintf(body, sizeof(body), "{\"CiphertextBlob\": \"%s\"}", ct);
	expect_error(&F->inst, "Decrypt", body, "AccessDeniedException");
	assert_non_null(strstr(F->err.message, "User: " SESSION_ARN " is not "
	    "authorized to perform: kms:Decrypt"));
	assert_non_null(strstr(F->err.message, "because no identity-based "
	    "policy allows the kms:Decrypt action"));
	/* An identity policy conditioned on the encryption context: the
	 * IAM side sees the KMS keys too. */
	assert_int_equal(store_iam_inline_put(F->srv.store, "role",
	    "porthole-test-role", "kms", "{\"Version\":\"2012-10-17\","
	    "\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"kms:Decrypt\","
	    "\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{"
	    "\"kms:CallerAccount\":\"" ACCT "\"},\"Null\":{"
	    "\"kms:EncryptionContext:purpose\":\"false\"}}}}"), 0);
	expect_error(&F->inst, "Decrypt", body, "AccessDeniedException");
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Plaintext\": "
	    "\"eA==\", \"EncryptionContext\": {\"purpose\": \"x\"}}", id);
	assert_int_equal(call("Encrypt", body, &o), 0);
	snprintf(ct, sizeof(ct), "%s", json_string_value(json_object_get(o,
	    "CiphertextBlob")));
	json_decref(o);
	snprintf(body, sizeof(body), "{\"CiphertextBlob\": \"%s\", "
	    "\"EncryptionContext\": {\"purpose\": \"x\"}}", ct);
	assert_int_equal(call_as(&F->inst, "Decrypt", body, NULL), 0);
	/* More encryption-context pairs than the evaluation reads. */
	{
		struct buf big;
		int i;

		buf_init(&big, 8192);
		buf_appendf(&big, "{\"CiphertextBlob\": \"%s\", "
		    "\"EncryptionContext\": {", ct);
		for (i = 0; i < 65; i++)
			buf_appendf(&big, "%s\"k%d\": \"v\"", i ? ", " : "",
			    i);
		buf_appendf(&big, "}}");
		expect_error(&F->inst, "Decrypt", buf_cstr(&big),
		    "ValidationException");
		buf_free(&big);
	}
}

static void
t_states_and_deletion(void **state)
{
	char id[40], body[400], ctb[400];
	json_t *o;

	(void)state;
	new_key("{}", id, NULL);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Plaintext\": "
	    "\"eA==\"}", id);
	assert_int_equal(call("Encrypt", body, &o), 0);
	snprintf(ctb, sizeof(ctb), "{\"CiphertextBlob\": \"%s\"}",
	    json_string_value(json_object_get(o, "CiphertextBlob")));
	json_decref(o);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\"}", id);
	assert_int_equal(call("DisableKey", body, NULL), 0);
	expect_error(&F->admin, "Decrypt", ctb, "DisabledException");
	assert_int_equal(call("EnableKey", body, NULL), 0);
	assert_int_equal(call("Decrypt", ctb, NULL), 0);
	expect_error(&F->admin, "CancelKeyDeletion", body,
	    "KMSInvalidStateException");
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", "
	    "\"PendingWindowInDays\": 6}", id);
	expect_error(&F->admin, "ScheduleKeyDeletion", body,
	    "ValidationException");
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", "
	    "\"PendingWindowInDays\": 7}", id);
	assert_int_equal(call("ScheduleKeyDeletion", body, &o), 0);
	assert_int_equal((int64_t)json_number_value(json_object_get(o,
	    "DeletionDate")), (T0 + 7 * DAY) / 1000);
	json_decref(o);
	expect_error(&F->admin, "ScheduleKeyDeletion", body,
	    "KMSInvalidStateException");
	expect_error(&F->admin, "Decrypt", ctb, "KMSInvalidStateException");
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\"}", id);
	expect_error(&F->admin, "EnableKey", body, "KMSInvalidStateException");
	expect_error(&F->admin, "DisableKey", body,
	    "KMSInvalidStateException");
	assert_int_equal(call("DescribeKey", body, &o), 0);
	assert_non_null(json_object_get(json_object_get(o, "KeyMetadata"),
	    "DeletionDate"));
	json_decref(o);
	/* One millisecond before the date it is still there; at it, gone. */
	F->call.now_ms = T0 + 7 * DAY - 1;
	assert_int_equal(call("DescribeKey", body, NULL), 0);
	F->call.now_ms = T0 + 7 * DAY;
	expect_error(&F->admin, "DescribeKey", body, "NotFoundException");
	expect_error(&F->admin, "Decrypt", ctb, "InvalidCiphertextException");
	F->call.now_ms = T0;
}

static void
t_paging_and_tags(void **state)
{
	char id[40], body[400], marker[64];
	json_t *o;
	int i, seen = 0, rounds;

	(void)state;
	for (i = 0; i < 5; i++)
		new_key("{}", id, NULL);
	marker[0] = '\0';
	for (rounds = 0; rounds < 10; rounds++) {
		if (marker[0] == '\0')
			snprintf(body, sizeof(body), "{\"Limit\": 2}");
		else
			snprintf(body, sizeof(body), "{\"Limit\": 2, "
			    "\"Marker\": \"%s\"}", marker);
		assert_int_equal(call("ListKeys", body, &o), 0);
		seen += (int)json_array_size(json_object_get(o, "Keys"));
		if (!json_is_true(json_object_get(o, "Truncated"))) {
			json_decref(o);
			break;
		}
		snprintf(marker, sizeof(marker), "%s", json_string_value(
		    json_object_get(o, "NextMarker")));
		json_decref(o);
	}
	assert_int_equal(seen, 5);
	expect_error(&F->admin, "ListKeys", "{\"Marker\": \"garbage\"}",
	    "InvalidMarkerException");
	expect_error(&F->admin, "ListKeys", "{\"Limit\": 0}",
	    "ValidationException");
	expect_error(&F->admin, "ListKeys", "{\"Limit\": 1001}",
	    "ValidationException");

	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Tags\": [{"
	    "\"TagKey\": \"a\", \"TagValue\": \"1\"}, {\"TagKey\": \"b\", "
	    "\"TagValue\": \"2\"}]}", id);
	assert_int_equal(call("TagResource", body, NULL), 0);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Limit\": 1}", id);
	assert_int_equal(call("ListResourceTags", body, &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "Tags")), 1);
	assert_true(json_is_true(json_object_get(o, "Truncated")));
	json_decref(o);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"TagKeys\": "
	    "[\"a\"]}", id);
	assert_int_equal(call("UntagResource", body, NULL), 0);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\"}", id);
	assert_int_equal(call("ListResourceTags", body, &o), 0);
	assert_int_equal(json_array_size(json_object_get(o, "Tags")), 1);
	assert_false(json_is_true(json_object_get(o, "Truncated")));
	json_decref(o);
	snprintf(body, sizeof(body), "{\"KeyId\": \"%s\", \"Tags\": [{"
	    "\"TagKey\": \"aws:a\", \"TagValue\": \"1\"}]}", id);
	expect_error(&F->admin, "TagResource", body, "TagException");
}

/* ---- garbage ------------------------------------------------------------- */

static const char *const actions[] = {
	"CancelKeyDeletion", "CreateAlias", "CreateKey", "Decrypt",
	"DeleteAlias", "DescribeKey", "DisableKey", "EnableKey", "Encrypt",
	"GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GetKeyPolicy",
	"ListAliases", "ListKeys", "ListResourceTags", "PutKeyPolicy",
	"ScheduleKeyDeletion", "TagResource", "UntagResource", "UpdateAlias",
};

static const char *const members[] = {
	"KeyId", "Plaintext", "CiphertextBlob", "EncryptionContext",
	"GrantTokens", "EncryptionAlgorithm", "DryRun", "NumberOfBytes",
	"KeySpec", "Policy", "Description", "KeyUsage", "Tags", "TagKeys",
	"AliasName", "TargetKeyId", "Limit", "Marker", "PendingWindowInDays",
	"PolicyName", "BypassPolicyLockoutSafetyCheck", "Recipient",
	"CustomerMasterKeySpec", "Origin", "MultiRegion",
};

static json_t *
junk_value(int i, const char *valid_id)
{
	char *s;
	json_t *v;

	switch (i) {
	case 0: return json_integer(-1);
	case 1: return json_real(1e300);
	case 2: return json_true();
	case 3: return json_null();
	case 4: return json_array();
	case 5: return json_pack("[i, s, {}]", 1, "x");
	case 6: return json_object();
	case 7: return json_pack("{s:i}", "a", 1);
	case 8: return json_string("");
	case 9: return json_string("!!!not base64!!!");
	case 10: return json_string("alias/");
	case 11: return json_string(valid_id);
	case 12: return json_integer(INT64_MAX);
	case 13:
		s = malloc(300001);
		memset(s, 'A', 300000);
		s[300000] = '\0';
		v = json_string(s);
		free(s);
		return v;
	case 14: return json_string("\xc3\xa9\xe2\x82\xac");
	case 15: return json_pack("[{s:s, s:s}]", "TagKey", "k", "TagValue",
	    "v");
	case 16: return json_pack("[{s:i}]", "TagKey", 1);
	case 17: return json_string("YQ===");
	default: return json_string("arn:aws:kms:us-east-1:" ACCT ":key/x");
	}
}

#define NJUNK 19

static void
t_garbage(void **state)
{
	char id[40];
	json_t *in, *out;
	size_t a, m;
	int j, rc;

	(void)state;
	new_key("{}", id, NULL);
	for (a = 0; a < sizeof(actions) / sizeof(actions[0]); a++) {
		/* Missing everything. */
		in = json_object();
		out = NULL;
		memset(&F->err, 0, sizeof(F->err));
		F->call.principal = &F->admin;
		rc = api_kms_dispatch(&F->call, actions[a], in, &out, &F->err);
		if (rc != 0)
			assert_true(F->err.status >= 400 &&
			    F->err.status < 500);
		json_decref(out);
		json_decref(in);
		for (m = 0; m < sizeof(members) / sizeof(members[0]); m++) {
			for (j = 0; j < NJUNK; j++) {
				in = json_pack("{s:s}", "KeyId", id);
				json_object_set_new(in, members[m],
				    junk_value(j, id));
				out = NULL;
				memset(&F->err, 0, sizeof(F->err));
				rc = api_kms_dispatch(&F->call, actions[a], in,
				    &out, &F->err);
				if (rc != 0) {
					assert_null(out);
					if (F->err.status < 400 ||
					    F->err.status >= 500)
						fail_msg("%s %s junk %d: %d %s "
						    "%s", actions[a],
						    members[m], j,
						    F->err.status,
						    F->err.type,
						    F->err.message);
				}
				json_decref(out);
				json_decref(in);
			}
		}
	}
	/* The key may have been disabled, scheduled or re-policied above;
	 * what matters is that nothing crashed or leaked. Non-object
	 * bodies: */
	in = json_array();
	assert_int_not_equal(api_kms_dispatch(&F->call, "DescribeKey", in,
	    &out, &F->err), 0);
	assert_string_equal(F->err.type, "SerializationException");
	json_decref(in);
}

static void
t_required_members(void **state)
{
	(void)state;
	expect_error(&F->admin, "Encrypt", "{\"Plaintext\": \"eA==\"}",
	    "ValidationException");
	expect_error(&F->admin, "Encrypt", "{\"KeyId\": \"alias/x\"}",
	    "ValidationException");
	expect_error(&F->admin, "Decrypt", "{}", "ValidationException");
	expect_error(&F->admin, "Decrypt", "{\"CiphertextBlob\": 1}",
	    "SerializationException");
	expect_error(&F->admin, "Decrypt", "{\"CiphertextBlob\": \"@@@@\"}",
	    "SerializationException");
	expect_error(&F->admin, "Decrypt", "{\"CiphertextBlob\": \"eA==\"}",
	    "InvalidCiphertextException");
	expect_error(&F->admin, "Decrypt", "{\"CiphertextBlob\": \"eA==\", "
	    "\"EncryptionContext\": {\"a\": 1}}", "SerializationException");
	expect_error(&F->admin, "Decrypt", "{\"CiphertextBlob\": \"eA==\", "
	    "\"EncryptionContext\": \"a\"}", "SerializationException");
	expect_error(&F->admin, "DescribeKey", "{}", "ValidationException");
	expect_error(&F->admin, "DescribeKey", "{\"KeyId\": 5}",
	    "SerializationException");
	expect_error(&F->admin, "CreateAlias", "{\"AliasName\": \"alias/x\"}",
	    "ValidationException");
	expect_error(&F->admin, "PutKeyPolicy", "{\"KeyId\": \"x\"}",
	    "ValidationException");
	expect_error(&F->admin, "TagResource", "{\"KeyId\": \"x\"}",
	    "ValidationException");
	expect_error(&F->admin, "UntagResource", "{\"KeyId\": \"x\"}",
	    "ValidationException");
	/* Instances: nothing but Decrypt and DescribeKey. */
	expect_error(&F->inst, "ListKeys", "{}", "AccessDeniedException");
	expect_error(&F->inst, "Encrypt", "{\"KeyId\": \"x\", \"Plaintext\": "
	    "\"eA==\"}", "AccessDeniedException");
	assert_true(api_kms_instance_action("Decrypt"));
	assert_true(api_kms_instance_action("DescribeKey"));
	assert_false(api_kms_instance_action("Encrypt"));
	assert_false(api_kms_instance_action(NULL));
}

static void
t_no_key_store(void **state)
{
	struct kms *k = F->srv.kms;
	json_t *in = json_object(), *out = NULL;

	(void)state;
	F->srv.kms = NULL;
	assert_int_not_equal(api_kms_dispatch(&F->call, "ListKeys", in, &out,
	    &F->err), 0);
	assert_int_equal(F->err.status, 500);
	assert_null(out);
	json_decref(in);
	F->srv.kms = k;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_create_describe, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_key_references, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_crypto, setup, teardown),
		cmocka_unit_test_setup_teardown(t_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(t_policy_conditions, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_states_and_deletion, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_paging_and_tags, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(t_required_members, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_no_key_store, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
