/* authz: the policy decision point on a real store in a temporary
 * directory: the root admin, identity policies of users, groups and roles
 * written through store_iam, the request context (every condition key
 * authz fills in), the per-principal cache and its invalidation, and
 * AccessDeniedException's wording through api_authorize. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/authz.h"
#include "server/policy.h"
#include "server/store.h"
#include "server/store_iam.h"
#include "server/store_sts.h"
#include "support/fixture.h"

#define ACCT "123456789012"
#define T0 ((int64_t)1700000000000)

struct fx {
	struct tmpdb db;
	struct server srv;
	struct principal admin, bob;
};

static void
user_principal(struct principal *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	p->kind = PRINCIPAL_USER;
	p->active = 1;
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->user_id, sizeof(p->user_id), "AIDA%sEXAMPLE", name);
	snprintf(p->arn, sizeof(p->arn), "arn:aws:iam::" ACCT ":user/%s",
	    name);
	snprintf(p->origin.source_ip, sizeof(p->origin.source_ip),
	    "127.0.0.1");
	p->origin.secure_transport = 1;
	snprintf(p->origin.region, sizeof(p->origin.region), "us-east-1");
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (test_server_open(&f->srv, &f->db, "ph-authz") != 0)
		return -1;
	user_principal(&f->admin, "admin");
	f->admin.is_root_admin = 1;
	user_principal(&f->bob, "bob");
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

static int
decide(struct fx *f, const struct principal *p, const char *action,
    const char *resource)
{
	return authz_decide(&f->srv, p, action, resource, NULL, 0);
}

/* A registered managed instance with one tag; its id in id. */
static void
add_instance(struct fx *f, const char *tag_key, const char *tag_value,
    char id[21])
{
	struct store_tag tag = { tag_key, tag_value };
	struct activation_new a;
	char aid[STORE_ACTIVATION_ID_SIZE];
	char code[STORE_ACTIVATION_CODE_LEN + 1];
	char role[STORE_IAM_ROLE_SIZE];

	memset(&a, 0, sizeof(a));
	a.iam_role = "SSMInstanceRole";
	a.registration_limit = 1;
	a.expiration_ms = T0 + 86400000;
	a.tags = &tag;
	a.ntags = 1;
	assert_int_equal(store_activation_create(f->srv.store, &a, T0, aid,
	    code), 0);
	assert_int_equal(store_activation_register(f->srv.store, aid, code,
	    T0, NULL, NULL, id, role), 0);
}

static void
instance_arn(const char *id, char *out, size_t size)
{
	snprintf(out, size, "arn:aws:ssm:us-east-1:" ACCT
	    ":managed-instance/%s", id);
}

static void
make_user(struct fx *f, const char *name)
{
	struct iam_user_rec u;

	memset(&u, 0, sizeof(u));
	snprintf(u.name, sizeof(u.name), "%s", name);
	snprintf(u.path, sizeof(u.path), "/");
	snprintf(u.arn, sizeof(u.arn), "arn:aws:iam::" ACCT ":user/%s", name);
	assert_int_equal(store_iam_user_create(f->srv.store, &u), 0);
}

static void
put_policy(struct fx *f, const char *type, const char *entity,
    const char *pname, const char *doc)
{
	assert_int_equal(store_iam_inline_put(f->srv.store, type, entity,
	    pname, doc), 0);
}

static void
tag(struct fx *f, const char *rtype, const char *rid, const char *k,
    const char *v)
{
	struct store_tag t = { k, v };

	assert_int_equal(store_tags_add(f->srv.store, rtype, rid, &t, 1,
	    STORE_TAGS_MAX), 0);
}

/* Credentials of a session of role with session policies (NULL: none);
 * p's access key id set to them. */
static void
issue(struct fx *f, const char *role, const char *policy, const char *arns,
    struct principal *p)
{
	char token[STS_TOKEN_SIZE];
	struct sts_cred cred;

	assert_int_equal(store_sts_issue_ex(f->srv.store, role, "s",
	    "arn:aws:iam::" ACCT ":user/admin", policy, arns, T0,
	    T0 + 3600000, &cred, token, sizeof(token)), 0);
	snprintf(p->access_key_id, sizeof(p->access_key_id), "%s",
	    cred.akid);
}

/* ---- without identity policies ----------------------------------------- */

static void
test_root_admin_allowed(void **state)
{
	struct fx *f = *state;

	assert_int_equal(decide(f, &f->admin, "ssm:StartSession", "*"),
	    POLICY_ALLOW);
	assert_int_equal(authz_check(&f->srv, &f->admin, "iam:DeleteUser",
	    "arn:aws:iam::" ACCT ":user/x"), 0);
	/* No cache is needed (nor made) for the root admin. */
	assert_int_equal(authz_cache_loads(&f->srv), 0);
}

static void
test_not_active_or_absent_denied(void **state)
{
	struct fx *f = *state;
	struct principal p = f->admin;

	p.active = 0;
	assert_int_equal(decide(f, &p, "ssm:StartSession", "*"),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(decide(f, NULL, "ssm:StartSession", "*"),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(authz_check(&f->srv, NULL, "ssm:StartSession", "*"),
	    PH_ERR_DENIED);
	/* The root admin flag means nothing on a role session. */
	p = f->admin;
	p.kind = PRINCIPAL_ASSUMED_ROLE;
	snprintf(p.role_name, sizeof(p.role_name), "NoSuchRole");
	assert_int_equal(decide(f, &p, "ssm:StartSession", "*"),
	    POLICY_DENY_IMPLICIT);
}

static void
test_no_policy_implicit_deny(void **state)
{
	struct fx *f = *state;

	assert_int_equal(decide(f, &f->bob, "ssm:DescribeSessions", "*"),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(authz_check(&f->srv, &f->bob, "ssm:DescribeSessions",
	    "*"), PH_ERR_DENIED);
}

static void
test_message_implicit(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	struct api_call c;

	memset(&c, 0, sizeof(c));
	memset(&err, 0, sizeof(err));
	c.srv = &f->srv;
	c.principal = &f->bob;
	assert_int_equal(api_authorize(&c, "ssm:StartSession",
	    "arn:aws:ssm:us-east-1:" ACCT ":managed-instance/"
	    "mi-0123456789abcdef0", &err), PH_ERR_INVALID);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.type, "AccessDeniedException");
	assert_string_equal(err.message, "User: arn:aws:iam::" ACCT
	    ":user/bob is not authorized to perform: ssm:StartSession on "
	    "resource: arn:aws:ssm:us-east-1:" ACCT ":managed-instance/"
	    "mi-0123456789abcdef0 because no identity-based policy allows "
	    "the ssm:StartSession action");
	/* Allowed: err untouched. */
	memset(&err, 0, sizeof(err));
	c.principal = &f->admin;
	assert_int_equal(api_authorize(&c, "ssm:StartSession", "*", &err), 0);
	assert_int_equal(err.status, 0);
}

/* The denial's log line: one line, caller-supplied text cannot forge
 * fields or lines. */
static void
test_deny_log_line(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	struct api_call c;
	char text[1024];
	FILE *tmp;
	size_t n;

	memset(&c, 0, sizeof(c));
	c.srv = &f->srv;
	c.principal = &f->bob;
	assert_non_null(tmp = tmpfile());
	log_set_output(tmp);
	api_authorize(&c, "ssm:StartSession", "arn:aws:ssm:us-east-1:" ACCT
	    ":managed-instance/x\nlevel=error event=forged y=\x01", &err);
	log_set_output(NULL);
	rewind(tmp);
	n = fread(text, 1, sizeof(text) - 1, tmp);
	text[n] = '\0';
	fclose(tmp);
	assert_non_null(strstr(text, "event=authz_deny principal=arn:aws:iam::"
	    ACCT ":user/bob action=ssm:StartSession resource=arn:aws:ssm:"
	    "us-east-1:" ACCT ":managed-instance/x?level=error?event=forged?"
	    "y=? deny=implicit\n"));
	assert_ptr_equal(strchr(text, '\n'), text + n - 1);
}

/* Deregistration drops an instance's tags, so decisions that read them
 * must not be served from a cache made before. */
static void
test_deregister_bumps_generation(void **state)
{
	struct fx *f = *state;
	uint64_t g;
	char id[21];

	add_instance(f, "Environment", "stage", id);
	g = store_authz_generation(f->srv.store);
	assert_int_equal(store_instance_deregister(f->srv.store, id, T0 + 1),
	    0);
	assert_true(store_authz_generation(f->srv.store) > g);
}


/* ---- identity policies ------------------------------------------------- */

static void
test_user_allow_and_explicit_deny(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	struct api_call c;

	make_user(f, "bob");
	put_policy(f, IAM_ENTITY_USER, "bob", "read", "{\"Version\": "
	    "\"2012-10-17\", \"Statement\": {\"Effect\": \"Allow\", "
	    "\"Action\": \"ssm:Describe*\", \"Resource\": \"*\"}}");
	assert_int_equal(decide(f, &f->bob, "ssm:DescribeSessions", "*"),
	    POLICY_ALLOW);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", "*"),
	    POLICY_DENY_IMPLICIT);
	put_policy(f, IAM_ENTITY_USER, "bob", "deny", "{\"Version\": "
	    "\"2012-10-17\", \"Statement\": {\"Effect\": \"Deny\", "
	    "\"Action\": \"ssm:DescribeSessions\", \"Resource\": \"*\"}}");
	assert_int_equal(decide(f, &f->bob, "ssm:DescribeSessions", "*"),
	    POLICY_DENY_EXPLICIT);
	assert_int_equal(decide(f, &f->bob, "ssm:DescribeInstanceInformation",
	    "*"), POLICY_ALLOW);
	memset(&c, 0, sizeof(c));
	memset(&err, 0, sizeof(err));
	c.srv = &f->srv;
	c.principal = &f->bob;
	assert_int_equal(api_authorize(&c, "ssm:DescribeSessions", "*", &err),
	    PH_ERR_INVALID);
	assert_string_equal(err.type, "AccessDeniedException");
	assert_string_equal(err.message, "User: arn:aws:iam::" ACCT
	    ":user/bob is not authorized to perform: ssm:DescribeSessions on "
	    "resource: * with an explicit deny in an identity-based policy");
}

/* Step 6's group: StartSession on instances tagged Environment=stage,
 * Terminate only on the user's own sessions. */
static void
test_group_policy_tags_and_own_sessions(void **state)
{
	struct fx *f = *state;
	struct iam_group_rec g;
	char stage[21], prod[21], arn[128];

	make_user(f, "bob");
	memset(&g, 0, sizeof(g));
	snprintf(g.name, sizeof(g.name), "session-manager-limited");
	snprintf(g.path, sizeof(g.path), "/");
	snprintf(g.arn, sizeof(g.arn), "arn:aws:iam::" ACCT
	    ":group/session-manager-limited");
	assert_int_equal(store_iam_group_create(f->srv.store, &g), 0);
	put_policy(f, IAM_ENTITY_GROUP, "session-manager-limited", "enduser",
	    "{\"Version\": \"2012-10-17\", \"Statement\": ["
	    "{\"Effect\": \"Allow\", \"Action\": \"ssm:StartSession\", "
	    "\"Resource\": \"arn:aws:ssm:*:*:managed-instance/*\", "
	    "\"Condition\": {\"StringLike\": "
	    "{\"ssm:resourceTag/Environment\": [\"stage\"]}}}, "
	    "{\"Effect\": \"Allow\", \"Action\": \"ssm:StartSession\", "
	    "\"Resource\": "
	    "\"arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell\", "
	    "\"Condition\": {\"BoolIfExists\": "
	    "{\"ssm:SessionDocumentAccessCheck\": \"true\"}}}, "
	    "{\"Effect\": \"Allow\", \"Action\": [\"ssm:TerminateSession\", "
	    "\"ssm:ResumeSession\"], \"Resource\": "
	    "\"arn:aws:ssm:*:*:session/${aws:username}-*\"}]}");
	add_instance(f, "Environment", "stage", stage);
	add_instance(f, "Environment", "prod", prod);
	/* Not a member yet. */
	instance_arn(stage, arn, sizeof(arn));
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", arn),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(store_iam_group_add_user(f->srv.store,
	    "session-manager-limited", "bob"), 0);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", arn),
	    POLICY_ALLOW);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession",
	    "arn:aws:ssm:us-east-1:" ACCT
	    ":document/SSM-SessionManagerRunShell"), POLICY_ALLOW);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession",
	    "arn:aws:ssm:us-east-1::document/AWS-StartInteractiveCommand"),
	    POLICY_DENY_IMPLICIT);
	instance_arn(prod, arn, sizeof(arn));
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", arn),
	    POLICY_DENY_IMPLICIT);
	/* A tag change takes effect at once. */
	tag(f, "ManagedInstance", prod, "Environment", "stage");
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", arn),
	    POLICY_ALLOW);
	/* Deregistered: its tags are gone. */
	assert_int_equal(store_instance_deregister(f->srv.store, prod,
	    T0 + 1), 0);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", arn),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(decide(f, &f->bob, "ssm:TerminateSession",
	    "arn:aws:ssm:us-east-1:" ACCT ":session/bob-0123456789abcdef0"),
	    POLICY_ALLOW);
	assert_int_equal(decide(f, &f->bob, "ssm:ResumeSession",
	    "arn:aws:ssm:us-east-1:" ACCT ":session/admin-0123456789abcdef0"),
	    POLICY_DENY_IMPLICIT);
	/* "bobby-..." is not bob's. */
	assert_int_equal(decide(f, &f->bob, "ssm:TerminateSession",
	    "arn:aws:ssm:us-east-1:" ACCT ":session/bobby-0123456789abcde"),
	    POLICY_DENY_IMPLICIT);
	/* Out of the group: nothing. */
	assert_int_equal(store_iam_group_remove_user(f->srv.store,
	    "session-manager-limited", "bob"), 0);
	assert_int_equal(decide(f, &f->bob, "ssm:TerminateSession",
	    "arn:aws:ssm:us-east-1:" ACCT ":session/bob-0123456789abcdef0"),
	    POLICY_DENY_IMPLICIT);
}

/* Managed policies attached to the user and to its group count too. */
static void
test_attached_managed_policies(void **state)
{
	struct fx *f = *state;
	struct iam_policy_rec pr;
	struct iam_group_rec g;

	make_user(f, "bob");
	memset(&g, 0, sizeof(g));
	snprintf(g.name, sizeof(g.name), "ops");
	snprintf(g.path, sizeof(g.path), "/");
	snprintf(g.arn, sizeof(g.arn), "arn:aws:iam::" ACCT ":group/ops");
	assert_int_equal(store_iam_group_create(f->srv.store, &g), 0);
	assert_int_equal(store_iam_group_add_user(f->srv.store, "ops", "bob"),
	    0);
	memset(&pr, 0, sizeof(pr));
	snprintf(pr.name, sizeof(pr.name), "Sessions");
	snprintf(pr.path, sizeof(pr.path), "/");
	snprintf(pr.arn, sizeof(pr.arn), "arn:aws:iam::" ACCT
	    ":policy/Sessions");
	assert_int_equal(store_iam_policy_create(f->srv.store, &pr,
	    "{\"Version\": \"2012-10-17\", \"Statement\": {\"Effect\": "
	    "\"Allow\", \"Action\": \"ssm:DescribeSessions\", \"Resource\": "
	    "\"*\"}}"), 0);
	assert_int_equal(decide(f, &f->bob, "ssm:DescribeSessions", "*"),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(store_iam_attach(f->srv.store, IAM_ENTITY_GROUP,
	    "ops", pr.arn), 0);
	assert_int_equal(decide(f, &f->bob, "ssm:DescribeSessions", "*"),
	    POLICY_ALLOW);
	assert_int_equal(store_iam_detach(f->srv.store, IAM_ENTITY_GROUP,
	    "ops", pr.arn), 0);
	assert_int_equal(decide(f, &f->bob, "ssm:DescribeSessions", "*"),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(store_iam_attach(f->srv.store, IAM_ENTITY_USER,
	    "bob", pr.arn), 0);
	assert_int_equal(decide(f, &f->bob, "ssm:DescribeSessions", "*"),
	    POLICY_ALLOW);
}

/* One statement per condition key authz fills in: action ssm:K<n> is
 * allowed only if that key has the expected value. */
static const char ctx_policy[] = "{\"Version\": \"2012-10-17\", "
    "\"Statement\": ["
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K1\", \"Resource\": \"*\", "
    "\"Condition\": {\"StringEquals\": {\"aws:username\": \"bob\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K2\", \"Resource\": \"*\", "
    "\"Condition\": {\"StringEquals\": {\"aws:userid\": "
    "\"AIDAbobEXAMPLE\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K3\", \"Resource\": \"*\", "
    "\"Condition\": {\"ArnEquals\": {\"aws:PrincipalArn\": "
    "\"arn:aws:iam::" ACCT ":user/bob\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K4\", \"Resource\": \"*\", "
    "\"Condition\": {\"StringEquals\": {\"aws:PrincipalAccount\": \""
    ACCT "\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K5\", \"Resource\": \"*\", "
    "\"Condition\": {\"StringEquals\": {\"aws:PrincipalType\": "
    "\"User\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K6\", \"Resource\": \"*\", "
    "\"Condition\": {\"StringEquals\": {\"aws:PrincipalTag/team\": "
    "\"ops\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K7\", \"Resource\": \"*\", "
    "\"Condition\": {\"IpAddress\": {\"aws:SourceIp\": "
    "\"127.0.0.0/8\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K8\", \"Resource\": \"*\", "
    "\"Condition\": {\"Bool\": {\"aws:SecureTransport\": \"true\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K9\", \"Resource\": \"*\", "
    "\"Condition\": {\"StringEquals\": {\"aws:RequestedRegion\": "
    "\"us-east-1\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K10\", \"Resource\": \"*\", "
    "\"Condition\": {\"DateGreaterThan\": {\"aws:CurrentTime\": "
    "\"2020-01-01T00:00:00Z\"}, \"DateLessThan\": {\"aws:CurrentTime\": "
    "\"2100-01-01T00:00:00Z\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K11\", \"Resource\": \"*\", "
    "\"Condition\": {\"NumericGreaterThan\": {\"aws:EpochTime\": "
    "\"1600000000\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K12\", \"Resource\": \"*\", "
    "\"Condition\": {\"StringEquals\": {\"aws:ResourceTag/Environment\": "
    "\"stage\", \"ssm:resourceTag/Environment\": \"stage\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:StartSession\", "
    "\"Resource\": \"*\", \"Condition\": {\"Bool\": "
    "{\"ssm:SessionDocumentAccessCheck\": \"true\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K14\", \"Resource\": \"*\", "
    "\"Condition\": {\"StringEquals\": {\"kms:ViaService\": "
    "\"ssm.us-east-1.amazonaws.com\"}}}, "
    "{\"Effect\": \"Allow\", \"Action\": \"ssm:K15\", \"Resource\": "
    "\"arn:aws:ssm:*:*:document/${aws:PrincipalTag/team}-*\"}]}";

static void
test_context_keys(void **state)
{
	struct fx *f = *state;
	static const char *const vias[] = { "ssm.us-east-1.amazonaws.com" };
	struct policy_ctx via = { "kms:ViaService", vias, 1 };
	static const char *const no[] = { "false" };
	struct policy_ctx nodoc = { "ssm:SessionDocumentAccessCheck", no, 1 };
	struct principal p;
	char id[21], arn[128], act[32];
	int i;

	make_user(f, "bob");
	put_policy(f, IAM_ENTITY_USER, "bob", "ctx", ctx_policy);
	tag(f, "IamUser", "bob", "team", "ops");
	add_instance(f, "Environment", "stage", id);
	instance_arn(id, arn, sizeof(arn));
	for (i = 1; i <= 11; i++) {
		snprintf(act, sizeof(act), "ssm:K%d", i);
		assert_int_equal(decide(f, &f->bob, act, "*"), POLICY_ALLOW);
	}
	assert_int_equal(decide(f, &f->bob, "ssm:K12", arn), POLICY_ALLOW);
	assert_int_equal(decide(f, &f->bob, "ssm:K12", "*"),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", "*"),
	    POLICY_ALLOW);
	/* No document named: the caller says false. */
	assert_int_equal(authz_decide(&f->srv, &f->bob, "ssm:StartSession",
	    "*", &nodoc, 1), POLICY_DENY_IMPLICIT);
	/* Only StartSession carries ssm:SessionDocumentAccessCheck. */
	assert_int_equal(decide(f, &f->bob, "ssm:K14", "*"),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(authz_check_ctx(&f->srv, &f->bob, "ssm:K14", "*",
	    &via, 1), 0);
	assert_int_equal(decide(f, &f->bob, "ssm:K15",
	    "arn:aws:ssm:us-east-1:" ACCT ":document/ops-runbook"),
	    POLICY_ALLOW);
	assert_int_equal(decide(f, &f->bob, "ssm:K15",
	    "arn:aws:ssm:us-east-1:" ACCT ":document/dev-runbook"),
	    POLICY_DENY_IMPLICIT);
	/* The request-level keys come from the principal's origin. */
	p = f->bob;
	snprintf(p.origin.source_ip, sizeof(p.origin.source_ip),
	    "192.0.2.7");
	p.origin.secure_transport = 0;
	snprintf(p.origin.region, sizeof(p.origin.region), "eu-west-1");
	assert_int_equal(decide(f, &p, "ssm:K7", "*"), POLICY_DENY_IMPLICIT);
	assert_int_equal(decide(f, &p, "ssm:K8", "*"), POLICY_DENY_IMPLICIT);
	assert_int_equal(decide(f, &p, "ssm:K9", "*"), POLICY_DENY_IMPLICIT);
	/* A principal tag change reaches the cached principal. */
	tag(f, "IamUser", "bob", "team", "dev");
	assert_int_equal(decide(f, &f->bob, "ssm:K6", "*"),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(decide(f, &f->bob, "ssm:K15",
	    "arn:aws:ssm:us-east-1:" ACCT ":document/dev-runbook"),
	    POLICY_ALLOW);
}

/* A role session and an instance have their role's policies and tags;
 * aws:PrincipalArn is the role's ARN and there is no aws:username. */
static void
test_role_principals(void **state)
{
	struct fx *f = *state;
	struct iam_role_rec r;
	struct principal p;

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "SSMInstanceRole");
	snprintf(r.path, sizeof(r.path), "/");
	snprintf(r.arn, sizeof(r.arn), "arn:aws:iam::" ACCT
	    ":role/SSMInstanceRole");
	r.max_session_duration = 3600;
	r.trust_policy = strdup("{\"Version\": \"2012-10-17\", "
	    "\"Statement\": {\"Effect\": \"Allow\", \"Principal\": "
	    "{\"Service\": \"ssm.amazonaws.com\"}, \"Action\": "
	    "\"sts:AssumeRole\"}}");
	assert_non_null(r.trust_policy);
	assert_int_equal(store_iam_role_create(f->srv.store, &r), 0);
	iam_role_rec_clear(&r);
	put_policy(f, IAM_ENTITY_ROLE, "SSMInstanceRole", "core",
	    "{\"Version\": \"2012-10-17\", \"Statement\": ["
	    "{\"Effect\": \"Allow\", \"Action\": "
	    "\"ssm:UpdateInstanceInformation\", \"Resource\": \"*\", "
	    "\"Condition\": {\"ArnEquals\": {\"aws:PrincipalArn\": "
	    "\"arn:aws:iam::" ACCT ":role/SSMInstanceRole\"}, "
	    "\"StringEquals\": {\"aws:PrincipalType\": \"AssumedRole\", "
	    "\"aws:PrincipalTag/tier\": \"web\"}, "
	    "\"Null\": {\"aws:username\": \"true\"}}}]}");
	tag(f, "IamRole", "SSMInstanceRole", "tier", "web");
	memset(&p, 0, sizeof(p));
	p.kind = PRINCIPAL_INSTANCE;
	p.is_instance = 1;
	p.active = 1;
	snprintf(p.name, sizeof(p.name), "mi-0123456789abcdef0");
	snprintf(p.instance_id, sizeof(p.instance_id), "mi-0123456789abcdef0");
	snprintf(p.role_name, sizeof(p.role_name), "SSMInstanceRole");
	snprintf(p.role_arn, sizeof(p.role_arn), "arn:aws:iam::" ACCT
	    ":role/SSMInstanceRole");
	snprintf(p.arn, sizeof(p.arn), "arn:aws:sts::" ACCT
	    ":assumed-role/SSMInstanceRole/mi-0123456789abcdef0");
	assert_int_equal(decide(f, &p, "ssm:UpdateInstanceInformation", "*"),
	    POLICY_ALLOW);
	assert_int_equal(decide(f, &p, "kms:Decrypt", "*"),
	    POLICY_DENY_IMPLICIT);
	p.kind = PRINCIPAL_ASSUMED_ROLE;
	p.is_instance = 0;
	issue(f, "SSMInstanceRole", NULL, NULL, &p);
	snprintf(p.name, sizeof(p.name), "ops-session");
	snprintf(p.arn, sizeof(p.arn), "arn:aws:sts::" ACCT
	    ":assumed-role/SSMInstanceRole/ops-session");
	assert_int_equal(decide(f, &p, "ssm:UpdateInstanceInformation", "*"),
	    POLICY_ALLOW);
	/* A role that does not exist grants nothing. */
	snprintf(p.role_name, sizeof(p.role_name), "Gone");
	snprintf(p.role_arn, sizeof(p.role_arn), "arn:aws:iam::" ACCT
	    ":role/Gone");
	assert_int_equal(decide(f, &p, "ssm:UpdateInstanceInformation", "*"),
	    POLICY_DENY_IMPLICIT);
}

/* ---- session policies --------------------------------------------------- */

static void
role_session(struct fx *f, struct principal *p)
{
	struct iam_role_rec r;

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "Ops");
	snprintf(r.path, sizeof(r.path), "/");
	snprintf(r.arn, sizeof(r.arn), "arn:aws:iam::" ACCT ":role/Ops");
	r.max_session_duration = 3600;
	r.trust_policy = strdup("{\"Version\": \"2012-10-17\", "
	    "\"Statement\": {\"Effect\": \"Allow\", \"Principal\": "
	    "{\"AWS\": \"" ACCT "\"}, \"Action\": \"sts:AssumeRole\"}}");
	assert_non_null(r.trust_policy);
	assert_int_equal(store_iam_role_create(f->srv.store, &r), 0);
	iam_role_rec_clear(&r);
	put_policy(f, IAM_ENTITY_ROLE, "Ops", "ssm", "{\"Version\": "
	    "\"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", "
	    "\"Action\": [\"ssm:DescribeSessions\", "
	    "\"ssm:DescribeInstanceInformation\", "
	    "\"ssm:ListTagsForResource\"], "
	    "\"Resource\": \"*\"}, {\"Effect\": \"Deny\", \"Action\": "
	    "\"ssm:ListTagsForResource\", \"Resource\": \"*\"}]}");
	memset(p, 0, sizeof(*p));
	p->kind = PRINCIPAL_ASSUMED_ROLE;
	p->active = 1;
	snprintf(p->name, sizeof(p->name), "s");
	snprintf(p->role_name, sizeof(p->role_name), "Ops");
	snprintf(p->role_arn, sizeof(p->role_arn), "arn:aws:iam::" ACCT
	    ":role/Ops");
	snprintf(p->arn, sizeof(p->arn), "arn:aws:sts::" ACCT
	    ":assumed-role/Ops/s");
}

static int
decide_src(struct fx *f, const struct principal *p, const char *action,
    int *src)
{
	return authz_decide_src(&f->srv, p, action, "*", NULL, 0, src);
}

#define ONLY_SESSIONS "{\"Version\": \"2012-10-17\", \"Statement\": " \
	"{\"Effect\": \"Allow\", \"Action\": \"ssm:DescribeSessions\", " \
	"\"Resource\": \"*\"}}"

/* The intersection: the role's policies and the session's must both
 * allow; a deny of either wins and says which it was. */
static void
test_session_policy_inline(void **state)
{
	struct fx *f = *state;
	struct principal p;
	int src;

	role_session(f, &p);
	/* No session policy: the role's policies alone. */
	issue(f, "Ops", NULL, NULL, &p);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeInstanceInformation",
	    &src), POLICY_ALLOW);
	issue(f, "Ops", "", "", &p);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeInstanceInformation",
	    &src), POLICY_ALLOW);

	issue(f, "Ops", ONLY_SESSIONS, NULL, &p);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeSessions", &src),
	    POLICY_ALLOW);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeInstanceInformation",
	    &src), POLICY_DENY_IMPLICIT);
	assert_int_equal(src, AUTHZ_SRC_SESSION);
	/* Neither allows: the role's is the message. */
	assert_int_equal(decide_src(f, &p, "kms:Decrypt", &src),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(src, AUTHZ_SRC_IDENTITY);
	/* The role's explicit deny wins over the session's implicit one. */
	assert_int_equal(decide_src(f, &p, "ssm:ListTagsForResource", &src),
	    POLICY_DENY_EXPLICIT);
	assert_int_equal(src, AUTHZ_SRC_IDENTITY);

	/* A session policy cannot grant what the role does not. */
	issue(f, "Ops", "{\"Version\": \"2012-10-17\", \"Statement\": ["
	    "{\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": "
	    "\"*\"}, {\"Effect\": \"Deny\", \"Action\": "
	    "\"ssm:DescribeSessions\", \"Resource\": \"*\"}]}", NULL, &p);
	assert_int_equal(decide_src(f, &p, "kms:Decrypt", &src),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(src, AUTHZ_SRC_IDENTITY);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeInstanceInformation",
	    &src), POLICY_ALLOW);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeSessions", &src),
	    POLICY_DENY_EXPLICIT);
	assert_int_equal(src, AUTHZ_SRC_SESSION);
}

static void
test_session_policy_arns(void **state)
{
	struct fx *f = *state;
	struct iam_policy_rec rec;
	struct principal p;
	char ver[16];
	int src;

	role_session(f, &p);
	memset(&rec, 0, sizeof(rec));
	snprintf(rec.arn, sizeof(rec.arn), "arn:aws:iam::" ACCT
	    ":policy/Narrow");
	snprintf(rec.name, sizeof(rec.name), "Narrow");
	snprintf(rec.path, sizeof(rec.path), "/");
	assert_int_equal(store_iam_policy_create(f->srv.store, &rec,
	    "{\"Version\": \"2012-10-17\", \"Statement\": {\"Effect\": "
	    "\"Allow\", \"Action\": \"ssm:DescribeInstanceInformation\", "
	    "\"Resource\": \"*\"}}"), 0);
	issue(f, "Ops", NULL, "[\"arn:aws:iam::" ACCT ":policy/Narrow\"]",
	    &p);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeInstanceInformation",
	    &src), POLICY_ALLOW);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeSessions", &src),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(src, AUTHZ_SRC_SESSION);
	/* A new default version takes effect (the generation moves). */
	assert_int_equal(store_iam_policy_version_create(f->srv.store,
	    rec.arn, ONLY_SESSIONS, 1, ver), 0);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeSessions", &src),
	    POLICY_ALLOW);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeInstanceInformation",
	    &src), POLICY_DENY_IMPLICIT);
	/* Inline and managed together: either may allow. */
	issue(f, "Ops", "{\"Version\": \"2012-10-17\", \"Statement\": "
	    "{\"Effect\": \"Allow\", \"Action\": "
	    "\"ssm:DescribeInstanceInformation\", \"Resource\": \"*\"}}",
	    "[\"arn:aws:iam::" ACCT ":policy/Narrow\"]", &p);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeSessions", &src),
	    POLICY_ALLOW);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeInstanceInformation",
	    &src), POLICY_ALLOW);
	/* A managed policy that is not there grants nothing, but the
	 * session still has session policies. */
	issue(f, "Ops", NULL, "[\"arn:aws:iam::" ACCT ":policy/Gone\"]", &p);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeSessions", &src),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(src, AUTHZ_SRC_SESSION);
}

/* Damaged session policies, a session without credentials: closed. */
static void
test_session_policy_garbage(void **state)
{
	struct fx *f = *state;
	static const char *const bad_arns[] = { "not json", "{}", "[1]",
	    "[\"x\", null]", "[" };
	struct principal p;
	size_t i;
	int src;

	role_session(f, &p);
	issue(f, "Ops", "{\"Statement\": [\x01", NULL, &p);
	assert_int_equal(decide_src(f, &p, "ssm:DescribeSessions", &src),
	    POLICY_DENY_EXPLICIT);
	assert_int_equal(src, AUTHZ_SRC_SESSION);
	for (i = 0; i < sizeof(bad_arns) / sizeof(bad_arns[0]); i++) {
		issue(f, "Ops", NULL, bad_arns[i], &p);
		assert_int_equal(decide_src(f, &p, "ssm:DescribeSessions",
		    &src), POLICY_DENY_EXPLICIT);
	}
	/* Credentials that are gone, or none named: nothing. */
	snprintf(p.access_key_id, sizeof(p.access_key_id),
	    "ASIAAAAAAAAAAAAAAAAA");
	assert_int_not_equal(decide_src(f, &p, "ssm:DescribeSessions", &src),
	    POLICY_ALLOW);
	p.access_key_id[0] = '\0';
	assert_int_equal(decide_src(f, &p, "ssm:DescribeSessions", &src),
	    POLICY_DENY_EXPLICIT);
}

/* api_authorize words a session policy's denial as AWS does. */
static void
test_session_policy_messages(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	struct api_call c;
	struct principal p;

	role_session(f, &p);
	issue(f, "Ops", "{\"Version\": \"2012-10-17\", \"Statement\": ["
	    "{\"Effect\": \"Allow\", \"Action\": \"ssm:DescribeSessions\", "
	    "\"Resource\": \"*\"}, {\"Effect\": \"Deny\", \"Action\": "
	    "\"ssm:DescribeInstanceInformation\", \"Resource\": \"*\", "
	    "\"Condition\": {\"Bool\": {\"aws:SecureTransport\": "
	    "\"false\"}}}]}", NULL, &p);
	memset(&c, 0, sizeof(c));
	c.srv = &f->srv;
	c.principal = &p;
	memset(&err, 0, sizeof(err));
	assert_int_equal(api_authorize(&c, "ssm:DescribeSessions", "*", &err),
	    0);
	assert_int_not_equal(api_authorize(&c,
	    "ssm:DescribeInstanceInformation", "*", &err), 0);
	assert_string_equal(err.type, "AccessDeniedException");
	assert_string_equal(err.message, "User: arn:aws:sts::" ACCT
	    ":assumed-role/Ops/s is not authorized to perform: "
	    "ssm:DescribeInstanceInformation on resource: * with an explicit "
	    "deny in a session policy");
	p.origin.secure_transport = 1;
	memset(&err, 0, sizeof(err));
	assert_int_not_equal(api_authorize(&c,
	    "ssm:DescribeInstanceInformation", "*", &err), 0);
	assert_string_equal(err.message, "User: arn:aws:sts::" ACCT
	    ":assumed-role/Ops/s is not authorized to perform: "
	    "ssm:DescribeInstanceInformation on resource: * because no "
	    "session policy allows the ssm:DescribeInstanceInformation "
	    "action");
}

/* ---- the cache ---------------------------------------------------------- */

static void
test_cache_invalidation(void **state)
{
	struct fx *f = *state;
	uint64_t loads;

	make_user(f, "bob");
	put_policy(f, IAM_ENTITY_USER, "bob", "p", "{\"Version\": "
	    "\"2012-10-17\", \"Statement\": {\"Effect\": \"Allow\", "
	    "\"Action\": \"ssm:DescribeSessions\", \"Resource\": \"*\"}}");
	assert_int_equal(decide(f, &f->bob, "ssm:DescribeSessions", "*"),
	    POLICY_ALLOW);
	loads = authz_cache_loads(&f->srv);
	assert_int_equal(loads, 1);
	assert_int_equal(decide(f, &f->bob, "ssm:DescribeSessions", "*"),
	    POLICY_ALLOW);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", "*"),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(authz_cache_loads(&f->srv), loads);
	/* A policy change: loaded again, and the new document decides. */
	put_policy(f, IAM_ENTITY_USER, "bob", "p", "{\"Version\": "
	    "\"2012-10-17\", \"Statement\": {\"Effect\": \"Allow\", "
	    "\"Action\": \"ssm:StartSession\", \"Resource\": \"*\"}}");
	assert_int_equal(decide(f, &f->bob, "ssm:DescribeSessions", "*"),
	    POLICY_DENY_IMPLICIT);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", "*"),
	    POLICY_ALLOW);
	assert_int_equal(authz_cache_loads(&f->srv), loads + 1);
	/* Deleting it. */
	assert_int_equal(store_iam_inline_delete(f->srv.store,
	    IAM_ENTITY_USER, "bob", "p"), 0);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", "*"),
	    POLICY_DENY_IMPLICIT);
}

/* At most AUTHZ_CACHE_MAX (256) principals; the least recently used one
 * goes first. */
static void
test_cache_bounded(void **state)
{
	struct fx *f = *state;
	struct principal p;
	char name[32];
	int i;

	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		user_principal(&p, name);
		assert_int_equal(decide(f, &p, "ssm:StartSession", "*"),
		    POLICY_DENY_IMPLICIT);
	}
	assert_int_equal(authz_cache_loads(&f->srv), 300);
	user_principal(&p, "u299");
	decide(f, &p, "ssm:StartSession", "*");
	assert_int_equal(authz_cache_loads(&f->srv), 300);
	user_principal(&p, "u0");
	decide(f, &p, "ssm:StartSession", "*");
	assert_int_equal(authz_cache_loads(&f->srv), 301);
}

/* A stored document that does not parse (damage: the API checks what it
 * stores) denies everything that principal asks, explicitly. */
static void
test_garbage_policy_fails_closed(void **state)
{
	struct fx *f = *state;

	make_user(f, "bob");
	put_policy(f, IAM_ENTITY_USER, "bob", "ok", "{\"Version\": "
	    "\"2012-10-17\", \"Statement\": {\"Effect\": \"Allow\", "
	    "\"Action\": \"*\", \"Resource\": \"*\"}}");
	put_policy(f, IAM_ENTITY_USER, "bob", "junk", "{\"Statement\": [\x01");
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", "*"),
	    POLICY_DENY_EXPLICIT);
	assert_int_equal(store_iam_inline_delete(f->srv.store,
	    IAM_ENTITY_USER, "bob", "junk"), 0);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession", "*"),
	    POLICY_ALLOW);
	/* Garbage action and resource strings are just unmatched. */
	assert_int_equal(decide(f, &f->bob, "", ""), POLICY_ALLOW);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession",
	    "arn:aws:ssm:::::::managed-instance/"), POLICY_ALLOW);
	assert_int_equal(decide(f, &f->bob, "ssm:StartSession",
	    "arn:aws:ssm:us-east-1:" ACCT ":managed-instance/*"),
	    POLICY_ALLOW);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root_admin_allowed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_not_active_or_absent_denied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_policy_implicit_deny,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_implicit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_deny_log_line, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_deregister_bumps_generation, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_user_allow_and_explicit_deny, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_group_policy_tags_and_own_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_attached_managed_policies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_context_keys, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_role_principals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_policy_inline,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_policy_arns,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_policy_garbage,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_policy_messages,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_invalidation,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_bounded, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_garbage_policy_fails_closed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
