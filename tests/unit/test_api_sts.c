/* api_sts: STS through api_handle without sockets: Query requests signed
 * here with SigV4 (OpenSSL HMAC), the real verifier, the STS dispatcher
 * and the session-token check for temporary credentials; the response is
 * captured by the http_respond stub below. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <sqlite3.h>

#include "common/err.h"
#include "common/http.h"
#include "common/uuid.h"
#include "server/api.h"
#include "server/api_sts.h"
#include "server/authz.h"
#include "server/gateway.h"
#include "server/server.h"
#include "server/store.h"
#include "server/store_iam.h"
#include "server/store_sts.h"
#include "support/signed_request.h"
#include "support/fixture.h"

#define ACCT "123456789012"
#define ROLE_ARN "arn:aws:iam::" ACCT ":role/ops/deploy"
#define TRUST_ACCOUNT "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":" \
	"\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::" ACCT ":root\"}," \
	"\"Action\":\"sts:AssumeRole\"}}"
#define TRUST_TEAM "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":" \
	"\"Allow\",\"Principal\":{\"AWS\":\"" ACCT "\"},\"Action\":[" \
	"\"sts:AssumeRole\",\"sts:TagSession\"],\"Condition\":{" \
	"\"StringEquals\":{\"aws:PrincipalTag/team\":\"ops\"," \
	"\"sts:RoleSessionName\":\"${aws:username}\"}}}}"
#define TRUST_OTHER "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":" \
	"\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::" ACCT \
	":user/nobody\"},\"Action\":\"sts:AssumeRole\"}}"

/* ---- stubs (weak: real definitions win when linked in) ------------------ */

/* The response is captured here; support/api_stubs.c has the others. */

static int resp_status;
static char resp_type[64];
static char resp_body[16384];

__attribute__((weak)) int
http_respond(struct http_request *req, int status, const char *content_type,
    const char *extra_headers, const void *body, size_t body_len)
{
	(void)req;
	(void)extra_headers;
	resp_status = status;
	snprintf(resp_type, sizeof(resp_type), "%s", content_type);
	snprintf(resp_body, sizeof(resp_body), "%.*s", (int)body_len,
	    (const char *)body);
	return 0;
}

/* ---- fixture -------------------------------------------------------------- */

struct fx {
	struct tmpdb db;
	struct server srv;
	char akid[STORE_AKID_SIZE], secret[STORE_SECRET_SIZE];
	char bob_akid[STORE_AKID_SIZE], bob_secret[STORE_SECRET_SIZE];
	/* The last AssumeRole's credentials. */
	char t_akid[32], t_secret[64], t_token[STS_TOKEN_SIZE];
};

static int
make_role(struct store *st, const char *name, const char *arn,
    const char *trust, int max)
{
	struct iam_role_rec r;
	int rc;

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.arn, sizeof(r.arn), "%s", arn);
	r.max_session_duration = max;
	r.trust_policy = strdup(trust);
	if (r.trust_policy == NULL)
		return PH_ERR_NOMEM;
	rc = store_iam_role_create(st, &r);
	iam_role_rec_clear(&r);
	return rc;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (test_server_open(&f->srv, &f->db, "ph-apists") != 0)
		return -1;
	if (store_iam_create_user(f->srv.store, "admin",
	    "arn:aws:iam::" ACCT ":user/admin", 1) != 0 ||
	    store_iam_create_access_key(f->srv.store, "admin", f->akid,
	    f->secret) != 0 ||
	    store_iam_create_user(f->srv.store, "bob",
	    "arn:aws:iam::" ACCT ":user/bob", 0) != 0 ||
	    store_iam_create_access_key(f->srv.store, "bob", f->bob_akid,
	    f->bob_secret) != 0 ||
	    make_role(f->srv.store, "deploy", ROLE_ARN, TRUST_ACCOUNT,
	    7200) != 0 ||
	    make_role(f->srv.store, "closed", "arn:aws:iam::" ACCT
	    ":role/closed", TRUST_OTHER, 3600) != 0 ||
	    make_role(f->srv.store, "team", "arn:aws:iam::" ACCT
	    ":role/team", TRUST_TEAM, 3600) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	test_server_close(&f->srv, &f->db);
	free(f);
	return 0;
}

/* The text of the first <tag> of the response, or "" if none. */
static const char *
xml_text(const char *tag, char *out, size_t size)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	out[0] = '\0';
	if ((a = strstr(resp_body, open)) == NULL)
		return out;
	a += strlen(open);
	if ((b = strstr(a, close)) == NULL)
		return out;
	snprintf(out, size, "%.*s", (int)(b - a), a);
	return out;
}

/* Status and, for an error, its Code. */
static void
expect(int status, const char *code)
{
	char v[128];

	if (resp_status != status)
		fail_msg("status %d, wanted %d: %s", resp_status, status,
		    resp_body);
	if (code != NULL && strcmp(xml_text("Code", v, sizeof(v)), code) != 0)
		fail_msg("code '%s', wanted %s: %s", v, code, resp_body);
}

static void
query(struct fx *f, const char *akid, const char *secret, const char *token,
    const char *body)
{
	struct signed_req *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	signed_req_make(s, akid, secret, token, "sts", NULL, body);
	api_handle(&f->srv, &s->req);
	free(s);
}

static void
assume(struct fx *f, const char *body)
{
	query(f, f->akid, f->secret, NULL, body);
	expect(200, NULL);
	xml_text("AccessKeyId", f->t_akid, sizeof(f->t_akid));
	xml_text("SecretAccessKey", f->t_secret, sizeof(f->t_secret));
	xml_text("SessionToken", f->t_token, sizeof(f->t_token));
}

#define ASSUME "Action=AssumeRole&Version=2011-06-15&RoleArn=" \
	"arn%3Aaws%3Aiam%3A%3A" ACCT "%3Arole%2Fops%2Fdeploy"
#define WHOAMI "Action=GetCallerIdentity&Version=2011-06-15"

static void
test_caller_identity(void **state)
{
	struct fx *f = *state;
	char v[256];

	query(f, f->akid, f->secret, NULL, WHOAMI);
	expect(200, NULL);
	assert_string_equal(resp_type, "text/xml");
	assert_non_null(strstr(resp_body, "<GetCallerIdentityResult>"));
	assert_string_equal(xml_text("Arn", v, sizeof(v)),
	    "arn:aws:iam::" ACCT ":user/admin");
	assert_string_equal(xml_text("Account", v, sizeof(v)), ACCT);
	assert_memory_equal(xml_text("UserId", v, sizeof(v)), "AIDA", 4);
	/* Any user may ask, whatever its policies. */
	query(f, f->bob_akid, f->bob_secret, NULL, WHOAMI);
	expect(200, NULL);
	assert_string_equal(xml_text("Arn", v, sizeof(v)),
	    "arn:aws:iam::" ACCT ":user/bob");
}

static void
test_assume_role(void **state)
{
	struct fx *f = *state;
	char v[512], id[64];
	time_t exp;
	struct tm tm;

	assume(f, ASSUME "&RoleSessionName=alice%40laptop&DurationSeconds="
	    "7200");
	assert_non_null(strstr(resp_body, "<AssumeRoleResult>"));
	assert_int_equal(strlen(f->t_akid), 20);
	assert_memory_equal(f->t_akid, "ASIA", 4);
	assert_int_equal(strlen(f->t_secret), 40);
	assert_int_equal(strlen(f->t_token), STS_TOKEN_SIZE - 1);
	assert_string_equal(xml_text("Arn", v, sizeof(v)), "arn:aws:sts::"
	    ACCT ":assumed-role/deploy/alice@laptop");
	xml_text("AssumedRoleId", id, sizeof(id));
	assert_memory_equal(id, "AROA", 4);
	assert_non_null(strstr(id, ":alice@laptop"));
	/* Expiration: two hours from now, ISO 8601 UTC. */
	xml_text("Expiration", v, sizeof(v));
	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(v, "%Y-%m-%dT%H:%M:%S", &tm));
	exp = timegm(&tm);
	assert_true(exp > time(NULL) + 7190 && exp <= time(NULL) + 7201);
	/* The role session asks who it is. */
	query(f, f->t_akid, f->t_secret, f->t_token, WHOAMI);
	expect(200, NULL);
	assert_string_equal(xml_text("Arn", v, sizeof(v)), "arn:aws:sts::"
	    ACCT ":assumed-role/deploy/alice@laptop");
	assert_string_equal(xml_text("UserId", v, sizeof(v)), id);
	/* Nothing the server logs or answers carries the secret again. */
	query(f, f->t_akid, f->t_secret, f->t_token, WHOAMI);
	assert_null(strstr(resp_body, f->t_secret));
}

static void
test_token_refused(void **state)
{
	struct fx *f = *state;
	struct signed_req *s = calloc(1, sizeof(*s));
	char bad[STS_TOKEN_SIZE];
	char v[256];

	assert_non_null(s);
	assume(f, ASSUME "&RoleSessionName=tok");
	/* No token, a changed one, another session's. */
	query(f, f->t_akid, f->t_secret, NULL, WHOAMI);
	expect(403, API_STS_INVALID_CODE);
	assert_string_equal(xml_text("Message", v, sizeof(v)),
	    API_STS_INVALID_MESSAGE);
	snprintf(bad, sizeof(bad), "%s", f->t_token);
	bad[10] = bad[10] == 'A' ? 'B' : 'A';
	query(f, f->t_akid, f->t_secret, bad, WHOAMI);
	expect(403, API_STS_INVALID_CODE);
	/* JSON services answer with their own type. */
	signed_req_make(s, f->t_akid, f->t_secret, NULL, "ssm",
	    "AmazonSSM.DescribeSessions", "{\"State\":\"Active\"}");
	api_handle(&f->srv, &s->req);
	assert_int_equal(resp_status, 403);
	assert_non_null(strstr(resp_body, API_STS_INVALID_TYPE));
	/* A long-term key with a token is refused too. */
	query(f, f->akid, f->secret, f->t_token, WHOAMI);
	expect(403, API_STS_INVALID_CODE);
	/* A wrong secret is a signature mismatch, token or not. */
	query(f, f->t_akid, "wrong", f->t_token, WHOAMI);
	assert_int_equal(resp_status, 403);
	/* An unknown temporary key id. */
	query(f, "ASIAAAAAAAAAAAAAAAAA", f->t_secret, f->t_token, WHOAMI);
	assert_int_equal(resp_status, 403);
	query(f, f->t_akid, f->t_secret, f->t_token, WHOAMI);
	expect(200, NULL);
	free(s);
}

static void
test_expired(void **state)
{
	struct fx *f = *state;
	struct signed_req *s = calloc(1, sizeof(*s));
	sqlite3 *db;
	char sql[256], v[256];

	assert_non_null(s);
	assume(f, ASSUME "&RoleSessionName=old&DurationSeconds=900");
	query(f, f->t_akid, f->t_secret, f->t_token, WHOAMI);
	expect(200, NULL);
	assert_int_equal(sqlite3_open(f->db.path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "UPDATE sts_credentials SET expiry_ms = "
	    "expiry_ms - 901000 WHERE akid = '%s'", f->t_akid);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	query(f, f->t_akid, f->t_secret, f->t_token, WHOAMI);
	expect(403, API_STS_EXPIRED_CODE);
	assert_string_equal(xml_text("Message", v, sizeof(v)),
	    API_STS_EXPIRED_MESSAGE);
	signed_req_make(s, f->t_akid, f->t_secret, f->t_token, "ssm",
	    "AmazonSSM.DescribeSessions", "{\"State\":\"Active\"}");
	api_handle(&f->srv, &s->req);
	assert_int_equal(resp_status, 400);
	assert_non_null(strstr(resp_body, API_STS_EXPIRED_TYPE));
	/* An expired credential with a wrong token is just invalid. */
	query(f, f->t_akid, f->t_secret, "AAAA", WHOAMI);
	expect(403, API_STS_INVALID_CODE);
	free(s);
}

static void
test_refusals(void **state)
{
	struct fx *f = *state;
	char v[512];

	/* The trust policy names someone else. */
	query(f, f->akid, f->secret, NULL, "Action=AssumeRole&RoleArn=arn%3A"
	    "aws%3Aiam%3A%3A" ACCT "%3Arole%2Fclosed&RoleSessionName=s1");
	expect(403, "AccessDenied");
	assert_string_equal(xml_text("Message", v, sizeof(v)), "User: "
	    "arn:aws:iam::" ACCT ":user/admin is not authorized to perform: "
	    "sts:AssumeRole on resource: arn:aws:iam::" ACCT ":role/closed");
	/* No such role, another account, a path that is not the role's. */
	query(f, f->akid, f->secret, NULL, "Action=AssumeRole&RoleArn=arn%3A"
	    "aws%3Aiam%3A%3A" ACCT "%3Arole%2Fnope&RoleSessionName=s1");
	expect(403, "AccessDenied");
	query(f, f->akid, f->secret, NULL, "Action=AssumeRole&RoleArn=arn%3A"
	    "aws%3Aiam%3A%3A210987654321%3Arole%2Fops%2Fdeploy&"
	    "RoleSessionName=s1");
	expect(403, "AccessDenied");
	query(f, f->akid, f->secret, NULL, "Action=AssumeRole&RoleArn=arn%3A"
	    "aws%3Aiam%3A%3A" ACCT "%3Arole%2Fdeploy&RoleSessionName=s1");
	expect(403, "AccessDenied");
	/* A user whose identity policies do not allow sts:AssumeRole. */
	query(f, f->bob_akid, f->bob_secret, NULL, ASSUME
	    "&RoleSessionName=s1");
	expect(403, "AccessDenied");
	assert_non_null(strstr(resp_body, "user/bob is not authorized"));
	/* Longer than the role allows. */
	query(f, f->akid, f->secret, NULL, ASSUME "&RoleSessionName=s1&"
	    "DurationSeconds=7201");
	expect(400, "ValidationError");
	assert_non_null(strstr(resp_body, "The requested DurationSeconds "
	    "exceeds the MaxSessionDuration set for this role."));
	/* A malformed session policy. */
	query(f, f->akid, f->secret, NULL, ASSUME "&RoleSessionName=s1&"
	    "Policy=%7B%22Statement%22%3A%5B%5D%7D");
	expect(400, "MalformedPolicyDocument");
	/* A valid one is taken. */
	query(f, f->akid, f->secret, NULL, ASSUME "&RoleSessionName=s1&"
	    "Policy=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A"
	    "%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22ssm%3A*%22%2C"
	    "%22Resource%22%3A%22*%22%7D%7D");
	expect(200, NULL);
	/* Session tags need sts:TagSession in the trust policy. */
	query(f, f->akid, f->secret, NULL, ASSUME "&RoleSessionName=s1&"
	    "Tags.member.1.Key=team&Tags.member.1.Value=ops");
	expect(403, "AccessDenied");
	/* An action STS does not have. */
	query(f, f->akid, f->secret, NULL, "Action=GetSessionToken");
	expect(400, "InvalidAction");
}

/* Trust-policy conditions see the caller's tags, its name and the
 * session name; session tags need sts:TagSession. */
static void
test_trust_conditions(void **state)
{
	static const struct store_tag ops = { "team", "ops" };
	struct fx *f = *state;
	char v[256];

#define TEAM "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A" ACCT \
	"%3Arole%2Fteam&RoleSessionName="
	query(f, f->akid, f->secret, NULL, TEAM "admin");
	expect(403, "AccessDenied");
	assert_int_equal(store_tags_add(f->srv.store, "IamUser", "admin", &ops,
	    1, 50), 0);
	query(f, f->akid, f->secret, NULL, TEAM "admin");
	expect(200, NULL);
	assert_string_equal(xml_text("Arn", v, sizeof(v)), "arn:aws:sts::"
	    ACCT ":assumed-role/team/admin");
	/* The session name must be the caller's user name. */
	query(f, f->akid, f->secret, NULL, TEAM "someone");
	expect(403, "AccessDenied");
	/* Session tags: this trust policy allows sts:TagSession. */
	query(f, f->akid, f->secret, NULL, TEAM "admin&Tags.member.1.Key="
	    "project&Tags.member.1.Value=blue");
	expect(200, NULL);
#undef TEAM
}

static void
test_garbage_parameters(void **state)
{
	static const char *const bad[] = {
		ASSUME,
		"Action=AssumeRole&RoleSessionName=s1",
		ASSUME "&RoleSessionName=x",
		ASSUME "&RoleSessionName=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaa",
		ASSUME "&RoleSessionName=a+b",
		ASSUME "&RoleSessionName=a%00b",
		ASSUME "&RoleSessionName=%C3%A9t%C3%A9",
		ASSUME "&RoleSessionName=s1&DurationSeconds=899",
		ASSUME "&RoleSessionName=s1&DurationSeconds=43201",
		ASSUME "&RoleSessionName=s1&DurationSeconds=",
		ASSUME "&RoleSessionName=s1&DurationSeconds=1e3",
		ASSUME "&RoleSessionName=s1&DurationSeconds=-900",
		ASSUME "&RoleSessionName=s1&DurationSeconds=99999999999999999999",
		ASSUME "&RoleSessionName=s1&ExternalId=a",
		ASSUME "&RoleSessionName=s1&ExternalId=a%20b",
		ASSUME "&RoleSessionName=s1&TokenCode=12345",
		ASSUME "&RoleSessionName=s1&SourceIdentity=%2A",
		ASSUME "&RoleSessionName=s1&Tags.member.1.Key=k",
		ASSUME "&RoleSessionName=s1&Tags.member.1.Key=&"
		    "Tags.member.1.Value=v",
		ASSUME "&RoleSessionName=s1&Tags.member.1.Key=k&"
		    "Tags.member.1.Value=v&Tags.member.2.Key=K&"
		    "Tags.member.2.Value=v",
		ASSUME "&RoleSessionName=s1&PolicyArns.member.1.arn=x",
		"Action=AssumeRole&RoleArn=short&RoleSessionName=s1",
		"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A" ACCT
		    "%3Auser%2Fbob&RoleSessionName=s1",
		"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A" ACCT
		    "%3Arole%2F&RoleSessionName=s1",
		"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A12345%3Arole"
		    "%2Fdeploy&RoleSessionName=s1",
	};
	struct fx *f = *state;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		query(f, f->akid, f->secret, NULL, bad[i]);
		if (resp_status != 400 || strstr(resp_body, "<Error>") ==
		    NULL || strstr(resp_body, "<Type>Sender</Type>") == NULL)
			fail_msg("%s: %d %s", bad[i], resp_status, resp_body);
	}
	/* Still serving. */
	query(f, f->akid, f->secret, NULL, WHOAMI);
	expect(200, NULL);
}

static void
test_role_deleted(void **state)
{
	struct fx *f = *state;
	char why[128];

	assume(f, ASSUME "&RoleSessionName=gone");
	query(f, f->t_akid, f->t_secret, f->t_token, WHOAMI);
	expect(200, NULL);
	assert_int_equal(store_iam_role_delete(f->srv.store, "deploy", why,
	    sizeof(why)), 0);
	query(f, f->t_akid, f->t_secret, f->t_token, WHOAMI);
	expect(403, API_STS_INVALID_CODE);
	/* A new role of the same name does not revive the session. */
	usleep(2000);
	assert_int_equal(make_role(f->srv.store, "deploy", ROLE_ARN,
	    TRUST_ACCOUNT, 3600), 0);
	query(f, f->t_akid, f->t_secret, f->t_token, WHOAMI);
	expect(403, API_STS_INVALID_CODE);
}

/* A JSON 1.1 SSM request with the last AssumeRole's credentials. */
static void
ssm_as_session(struct fx *f, const char *action, const char *body)
{
	struct signed_req *s = calloc(1, sizeof(*s));
	char target[96];

	assert_non_null(s);
	snprintf(target, sizeof(target), "AmazonSSM.%s", action);
	signed_req_make(s, f->t_akid, f->t_secret, f->t_token, "ssm", target, body);
	api_handle(&f->srv, &s->req);
	free(s);
}

#define ROLE_SSM "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":" \
	"\"Allow\",\"Action\":[\"ssm:DescribeSessions\"," \
	"\"ssm:DescribeInstanceInformation\"],\"Resource\":\"*\"}}"
/* {"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":
 * "ssm:DescribeSessions","Resource":"*"}}, form-encoded */
#define SP_SESSIONS "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement" \
	"%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22ssm%3A" \
	"DescribeSessions%22%2C%22Resource%22%3A%22*%22%7D%7D"
#define SP_DENIED "User: arn:aws:sts::" ACCT ":assumed-role/deploy/sp is " \
	"not authorized to perform: ssm:DescribeInstanceInformation on " \
	"resource: * because no session policy allows the " \
	"ssm:DescribeInstanceInformation action"

/* AssumeRole's Policy and PolicyArns are kept with the credentials and
 * limit the session to what they allow too. */
static void
test_session_policies(void **state)
{
	struct fx *f = *state;
	struct iam_policy_rec rec;
	char *pol = NULL, *arns = NULL, v[64];

	assert_int_equal(store_iam_inline_put(f->srv.store, IAM_ENTITY_ROLE,
	    "deploy", "ssm", ROLE_SSM), 0);
	/* Without session policies: the role's. */
	assume(f, ASSUME "&RoleSessionName=sp");
	assert_null(strstr(resp_body, "PackedPolicySize"));
	assert_int_equal(store_sts_session_policies(f->srv.store, f->t_akid,
	    &pol, &arns), 0);
	assert_string_equal(pol, "");
	assert_string_equal(arns, "");
	free(pol);
	free(arns);
	ssm_as_session(f, "DescribeInstanceInformation", "{}");
	assert_int_equal(resp_status, 200);

	assume(f, ASSUME "&RoleSessionName=sp&Policy=" SP_SESSIONS);
	assert_string_equal(xml_text("PackedPolicySize", v, sizeof(v)), "4");
	assert_int_equal(store_sts_session_policies(f->srv.store, f->t_akid,
	    &pol, &arns), 0);
	assert_non_null(strstr(pol, "ssm:DescribeSessions"));
	assert_string_equal(arns, "");
	free(pol);
	free(arns);
	ssm_as_session(f, "DescribeSessions", "{\"State\":\"Active\"}");
	assert_int_equal(resp_status, 200);
	ssm_as_session(f, "DescribeInstanceInformation", "{}");
	assert_int_equal(resp_status, 400);
	assert_non_null(strstr(resp_body, "AccessDeniedException"));
	assert_non_null(strstr(resp_body, SP_DENIED));

	/* A managed policy as the session policy. */
	memset(&rec, 0, sizeof(rec));
	snprintf(rec.arn, sizeof(rec.arn), "arn:aws:iam::" ACCT
	    ":policy/OnlySessions");
	snprintf(rec.name, sizeof(rec.name), "OnlySessions");
	snprintf(rec.path, sizeof(rec.path), "/");
	assert_int_equal(store_iam_policy_create(f->srv.store, &rec,
	    "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":"
	    "\"Allow\",\"Action\":\"ssm:DescribeSessions\",\"Resource\":"
	    "\"*\"}}"), 0);
	assume(f, ASSUME "&RoleSessionName=sp&PolicyArns.member.1.arn="
	    "arn%3Aaws%3Aiam%3A%3A" ACCT "%3Apolicy%2FOnlySessions");
	assert_int_equal(store_sts_session_policies(f->srv.store, f->t_akid,
	    &pol, &arns), 0);
	assert_string_equal(pol, "");
	assert_string_equal(arns, "[\"arn:aws:iam::" ACCT
	    ":policy/OnlySessions\"]");
	free(pol);
	free(arns);
	ssm_as_session(f, "DescribeSessions", "{\"State\":\"History\"}");
	assert_int_equal(resp_status, 200);
	ssm_as_session(f, "DescribeInstanceInformation", "{}");
	assert_int_equal(resp_status, 400);
	assert_non_null(strstr(resp_body, SP_DENIED));
}

/* Session policies too large, too many, or not policies. */
static void
test_session_policy_garbage(void **state)
{
	static const char *const bad[] = {
		"&Policy=",
		"&Policy=%01",
		"&Policy=%7B%0B%7D",
		"&Policy=%E2%82%AC",
		"&Policy=%FF",
		"&Policy=%C3",
		"&Policy=%5B%5D",
		"&Policy=null",
		"&Policy=%7B%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22"
		    "%2C%22Principal%22%3A%22*%22%2C%22Action%22%3A%22*%22"
		    "%2C%22Resource%22%3A%22*%22%7D%7D",
		"&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3A" ACCT
		    "%3Arole%2Fdeploy",
		"&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3A12%3Apolicy%2Fx",
		"&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3A" ACCT
		    "%3Apolicy%2F",
		"&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3A" ACCT
		    "%3Apolicy%2Fa%20b",
		"&PolicyArns.member.1.arn=arn%3Aaws%3Akms%3A%3A" ACCT
		    "%3Apolicy%2Fab",
	};
	struct fx *f = *state;
	char body[4096], v[256];
	size_t i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "%s&RoleSessionName=s1%s",
		    ASSUME, bad[i]);
		query(f, f->akid, f->secret, NULL, body);
		if (resp_status != 400 || strstr(resp_body,
		    "<Type>Sender</Type>") == NULL)
			fail_msg("%s: %d %s", bad[i], resp_status, resp_body);
	}
	/* Eleven managed policies. */
	n = (size_t)snprintf(body, sizeof(body), "%s",
	    ASSUME "&RoleSessionName=s1");
	for (i = 1; i <= 11; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n,
		    "&PolicyArns.member.%zu.arn=arn%%3Aaws%%3Aiam%%3A%%3Aaws"
		    "%%3Apolicy%%2FP%zu", i, i);
	query(f, f->akid, f->secret, NULL, body);
	expect(400, "ValidationError");
	assert_non_null(strstr(resp_body, "policyArns"));
	/* More than 2048 characters: a policy whose spaces fill it up. */
	n = (size_t)snprintf(body, sizeof(body), "%s", ASSUME
	    "&RoleSessionName=s1&Policy=" SP_SESSIONS);
	body[n - 6] = '\0';            /* before %7D%7D */
	n -= 6;
	for (i = 0; i < 2000; i++)
		body[n++] = '+';
	snprintf(body + n, sizeof(body) - n, "%%7D%%7D");
	query(f, f->akid, f->secret, NULL, body);
	expect(400, "PackedPolicyTooLarge");
	assert_string_equal(xml_text("Message", v, sizeof(v)), "Packed "
	    "policy consumes 102% of allotted space, please use smaller "
	    "policy.");
	/* Nothing was issued; still serving. */
	query(f, f->akid, f->secret, NULL, WHOAMI);
	expect(200, NULL);
}

/* The principal of a role session as api.c gets it. */
static void
test_principal(void **state)
{
	struct fx *f = *state;
	struct principal p;

	assume(f, ASSUME "&RoleSessionName=who");
	assert_true(api_sts_temporary(f->t_akid));
	assert_false(api_sts_temporary(f->akid));
	assert_false(api_sts_temporary(NULL));
	assert_int_equal(api_sts_principal(&f->srv, f->t_akid, f->t_token,
	    (int64_t)time(NULL) * 1000, &p), 0);
	assert_int_equal(p.kind, PRINCIPAL_ASSUMED_ROLE);
	assert_true(p.active);
	assert_false(p.is_root_admin);
	assert_string_equal(p.name, "who");
	assert_string_equal(p.role_name, "deploy");
	assert_string_equal(p.role_arn, ROLE_ARN);
	assert_string_equal(p.arn, "arn:aws:sts::" ACCT
	    ":assumed-role/deploy/who");
	assert_memory_equal(p.user_id, "AROA", 4);
	assert_non_null(strstr(p.user_id, ":who"));
	assert_string_equal(p.access_key_id, f->t_akid);
	assert_true(p.expiry_ms > (int64_t)time(NULL) * 1000);
	assert_int_equal(api_sts_principal(&f->srv, f->t_akid, f->t_token,
	    p.expiry_ms, &p), PH_ERR_EXPIRED);
	assert_int_equal(api_sts_principal(&f->srv, f->t_akid, NULL,
	    0, &p), PH_ERR_DENIED);
	assert_string_equal(p.arn, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_caller_identity, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_assume_role, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_token_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expired, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_garbage_parameters, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_trust_conditions, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_role_deleted, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_principal, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_policies, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_policy_garbage,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
