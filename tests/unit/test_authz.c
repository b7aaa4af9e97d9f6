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
#include "server/api.h"
#include "server/api_json.h"
#include "server/authz.h"
#include "server/policy.h"
#include "server/store.h"
#include "server/store_iam.h"

#define ACCT "123456789012"
#define T0 ((int64_t)1700000000000)

struct fx {
	char dir[64];
	char path[128];
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/ph-authz-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/porthole.db", f->dir);
	if (store_open(&f->srv.store, f->path) != 0)
		return -1;
	snprintf(f->srv.region, sizeof(f->srv.region), "us-east-1");
	snprintf(f->srv.account_id, sizeof(f->srv.account_id), ACCT);
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
	char p[160];

	authz_free(&f->srv);
	store_close(f->srv.store);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
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
		cmocka_unit_test_setup_teardown(
		    test_deregister_bumps_generation, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
