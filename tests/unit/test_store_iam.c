/* store_iam: users, groups, roles and policies in the store. Names unique
 * case-insensitively; entity ids in IAM's form; the documents that apply
 * to a user (its own inline and attached policies and its groups') and to
 * a role; DeleteConflict reasons; an inactive key refused at once; last
 * use written at most once a minute; scrypt login profiles; managed policy
 * versions (five at most, the default not deletable); renames carrying
 * keys and policies along; AWS-managed policies seeded; user ids given at
 * open to users written before schema version 3; every write bumping the
 * authorisation generation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "common/err.h"
#include "server/authz.h"
#include "server/store.h"
#include "server/store_iam.h"
#include "support/fixture.h"

#define ACCT "arn:aws:iam::123456789012:"
#define DOC(action) "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":" \
	"\"Allow\",\"Action\":\"" action "\",\"Resource\":\"*\"}]}"
#define TRUST "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":" \
	"\"Allow\",\"Principal\":{\"Service\":\"ec2.amazonaws.com\"}," \
	"\"Action\":\"sts:AssumeRole\"}]}"

static int
setup(void **state)
{
	return store_fx_setup(state, "ph-iam");
}

static int
teardown(void **state)
{
	return store_fx_teardown(state);
}

static void
mkuser(struct store *st, const char *name, struct iam_user_rec *u)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", name);
	snprintf(u->arn, sizeof(u->arn), ACCT "user/%s", name);
	assert_int_equal(store_iam_user_create(st, u), 0);
}

static void
mkgroup(struct store *st, const char *name)
{
	struct iam_group_rec g;

	memset(&g, 0, sizeof(g));
	snprintf(g.name, sizeof(g.name), "%s", name);
	snprintf(g.arn, sizeof(g.arn), ACCT "group/%s", name);
	assert_int_equal(store_iam_group_create(st, &g), 0);
	assert_memory_equal(g.group_id, "AGPA", 4);
}

static void
mkpolicy(struct store *st, const char *name, const char *doc,
    struct iam_policy_rec *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->arn, sizeof(p->arn), ACCT "policy/%s", name);
	assert_int_equal(store_iam_policy_create(st, p, doc), 0);
}

static int
id_ok(const char *id, const char *prefix)
{
	size_t i;

	if (strlen(id) != 21 || strncmp(id, prefix, 4) != 0)
		return 0;
	for (i = 4; i < 21; i++)
		if (!((id[i] >= 'A' && id[i] <= 'Z') ||
		    (id[i] >= '0' && id[i] <= '9')))
			return 0;
	return 1;
}

static void
test_users(void **state)
{
	struct store_fx *f = *state;
	struct iam_user_rec u, got;
	uint64_t gen;

	gen = store_authz_generation(f->st);
	mkuser(f->st, "Alice", &u);
	assert_true(store_authz_generation(f->st) > gen);
	assert_true(id_ok(u.user_id, "AIDA"));
	assert_string_equal(u.path, "/");
	assert_int_equal(store_iam_user_get(f->st, "alice", &got), 0);
	assert_string_equal(got.name, "Alice");
	assert_string_equal(got.user_id, u.user_id);
	assert_int_equal(got.is_root_admin, 0);
	memset(&got, 0, sizeof(got));
	snprintf(got.name, sizeof(got.name), "ALICE");
	snprintf(got.arn, sizeof(got.arn), ACCT "user/ALICE");
	assert_int_equal(store_iam_user_create(f->st, &got), PH_ERR_EXISTS);
	assert_int_equal(store_iam_user_get(f->st, "bob", &got),
	    PH_ERR_NOTFOUND);
	/* The old entry point (portholed init) gives an id too. */
	assert_int_equal(store_iam_create_user(f->st, "admin",
	    ACCT "user/admin", 1), 0);
	assert_int_equal(store_iam_user_get(f->st, "admin", &got), 0);
	assert_true(id_ok(got.user_id, "AIDA"));
	assert_int_equal(got.is_root_admin, 1);
}

struct docs {
	int n;
	char seen[1024];
};

static int
doc_cb(void *arg, const char *source, const char *document)
{
	struct docs *d = arg;

	assert_non_null(strstr(document, "\"Statement\""));
	d->n++;
	strncat(d->seen, source, sizeof(d->seen) - strlen(d->seen) - 2);
	strcat(d->seen, ";");
	return 0;
}

static int
stop_cb(void *arg, const char *source, const char *document)
{
	(void)arg;
	(void)source;
	(void)document;
	return 7;
}

static void
test_user_and_role_policies(void **state)
{
	struct store_fx *f = *state;
	struct iam_user_rec u;
	struct iam_role_rec r;
	struct iam_policy_rec p;
	struct docs d;

	mkuser(f->st, "carol", &u);
	mkgroup(f->st, "ops");
	mkpolicy(f->st, "Local", DOC("ssm:List*"), &p);
	assert_int_equal(store_iam_inline_put(f->st, IAM_ENTITY_USER, "carol",
	    "own", DOC("ssm:StartSession")), 0);
	assert_int_equal(store_iam_attach(f->st, IAM_ENTITY_USER, "carol",
	    p.arn), 0);
	assert_int_equal(store_iam_group_add_user(f->st, "ops", "carol"), 0);
	assert_int_equal(store_iam_inline_put(f->st, IAM_ENTITY_GROUP, "ops",
	    "grp", DOC("ssm:TerminateSession")), 0);
	assert_int_equal(store_iam_attach(f->st, IAM_ENTITY_GROUP, "ops",
	    "arn:aws:iam::aws:policy/ReadOnlyAccess"), 0);
	/* Another group the user is not in counts for nothing. */
	mkgroup(f->st, "other");
	assert_int_equal(store_iam_inline_put(f->st, IAM_ENTITY_GROUP,
	    "other", "no", DOC("kms:*")), 0);
	memset(&d, 0, sizeof(d));
	assert_int_equal(store_iam_user_policies(f->st, "CAROL", doc_cb, &d),
	    0);
	assert_int_equal(d.n, 4);
	assert_non_null(strstr(d.seen, "inline:own;"));
	assert_non_null(strstr(d.seen, "inline:grp;"));
	assert_non_null(strstr(d.seen, ACCT "policy/Local;"));
	assert_non_null(strstr(d.seen,
	    "arn:aws:iam::aws:policy/ReadOnlyAccess;"));
	assert_null(strstr(d.seen, "inline:no"));
	assert_int_equal(store_iam_user_policies(f->st, "carol", stop_cb,
	    NULL), 7);
	assert_int_equal(store_iam_user_policies(f->st, "nobody", doc_cb, &d),
	    PH_ERR_NOTFOUND);

	/* A new default version is what applies. */
	{
		char vid[16];
		char *doc = NULL;

		assert_int_equal(store_iam_policy_version_create(f->st, p.arn,
		    DOC("ec2:*"), 1, vid), 0);
		assert_string_equal(vid, "v2");
		memset(&d, 0, sizeof(d));
		assert_int_equal(store_iam_attach(f->st, IAM_ENTITY_USER,
		    "carol", p.arn), 0);      /* twice: no error */
		assert_int_equal(store_iam_policy_version_get(f->st, p.arn,
		    "v2", &doc, NULL), 0);
		assert_non_null(strstr(doc, "ec2:*"));
		free(doc);
	}

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "app");
	snprintf(r.arn, sizeof(r.arn), ACCT "role/app");
	r.trust_policy = (char *)TRUST;
	assert_int_equal(store_iam_role_create(f->st, &r), 0);
	assert_true(id_ok(r.role_id, "AROA"));
	assert_int_equal(r.max_session_duration, 3600);
	r.trust_policy = NULL;
	assert_int_equal(store_iam_inline_put(f->st, IAM_ENTITY_ROLE, "app",
	    "r", DOC("ssmmessages:*")), 0);
	assert_int_equal(store_iam_attach(f->st, IAM_ENTITY_ROLE, "app",
	    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"), 0);
	memset(&d, 0, sizeof(d));
	assert_int_equal(store_iam_role_policies(f->st, "APP", doc_cb, &d), 0);
	assert_int_equal(d.n, 2);
	assert_non_null(strstr(d.seen, "inline:r;"));
	assert_non_null(strstr(d.seen, "AmazonSSMManagedInstanceCore;"));
	assert_int_equal(store_iam_role_get(f->st, "App", &r), 0);
	assert_string_equal(r.trust_policy, TRUST);
	iam_role_rec_clear(&r);
	assert_null(r.trust_policy);
}

static void
test_delete_conflicts(void **state)
{
	struct store_fx *f = *state;
	char akid[STORE_AKID_SIZE], secret[STORE_SECRET_SIZE], why[256];
	struct iam_user_rec u;

	mkuser(f->st, "dave", &u);
	mkgroup(f->st, "g");
	assert_int_equal(store_iam_create_access_key(f->st, "dave", akid,
	    secret), 0);
	assert_int_equal(store_iam_user_delete(f->st, "dave", why,
	    sizeof(why)), PH_ERR_STATE);
	assert_non_null(strstr(why, "access keys"));
	assert_int_equal(store_iam_key_delete(f->st, "dave", akid), 0);
	assert_int_equal(store_iam_group_add_user(f->st, "g", "dave"), 0);
	assert_int_equal(store_iam_user_delete(f->st, "dave", why,
	    sizeof(why)), PH_ERR_STATE);
	assert_int_equal(store_iam_group_delete(f->st, "g", why, sizeof(why)),
	    PH_ERR_STATE);
	assert_int_equal(store_iam_group_remove_user(f->st, "g", "dave"), 0);
	assert_int_equal(store_iam_group_remove_user(f->st, "g", "dave"),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_iam_login_create(f->st, "dave", "Passw0rd!",
	    0), 0);
	assert_int_equal(store_iam_user_delete(f->st, "dave", why,
	    sizeof(why)), PH_ERR_STATE);
	assert_non_null(strstr(why, "login profile"));
	assert_int_equal(store_iam_login_delete(f->st, "dave"), 0);
	assert_int_equal(store_iam_user_delete(f->st, "dave", why,
	    sizeof(why)), 0);
	assert_int_equal(store_iam_group_delete(f->st, "G", why, sizeof(why)),
	    0);
	assert_int_equal(store_iam_user_delete(f->st, "dave", why,
	    sizeof(why)), PH_ERR_NOTFOUND);
}

static void
test_keys(void **state)
{
	struct store_fx *f = *state;
	char akid[STORE_AKID_SIZE], secret[STORE_SECRET_SIZE], got[64];
	struct iam_user_rec u;
	struct iam_key_rec k;
	struct principal p;
	uint64_t gen;

	mkuser(f->st, "erin", &u);
	assert_int_equal(store_iam_create_access_key(f->st, "erin", akid,
	    secret), 0);
	assert_int_equal(store_iam_lookup_key(f->st, akid, got, sizeof(got),
	    &p), 0);
	assert_string_equal(got, secret);
	assert_string_equal(p.user_id, u.user_id);
	assert_int_equal(p.kind, PRINCIPAL_USER);
	gen = store_authz_generation(f->st);
	assert_int_equal(store_iam_key_set_active(f->st, "erin", akid, 0), 0);
	assert_true(store_authz_generation(f->st) > gen);
	assert_int_equal(store_iam_lookup_key(f->st, akid, got, sizeof(got),
	    &p), PH_ERR_DENIED);
	assert_int_equal(store_iam_key_set_active(f->st, "erin", akid, 1), 0);
	assert_int_equal(store_iam_lookup_key(f->st, akid, got, sizeof(got),
	    NULL), 0);
	assert_int_equal(store_iam_key_set_active(f->st, "other", akid, 0),
	    PH_ERR_NOTFOUND);

	/* Last use: written, then not again within a minute. */
	assert_int_equal(store_iam_key_get(f->st, akid, &k), 0);
	assert_int_equal(k.last_used_ms, 0);
	store_iam_key_used(f->st, akid, "iam", "us-east-1", 1000000);
	assert_int_equal(store_iam_key_get(f->st, akid, &k), 0);
	assert_int_equal(k.last_used_ms, 1000000);
	assert_string_equal(k.last_used_service, "iam");
	assert_string_equal(k.last_used_region, "us-east-1");
	store_iam_key_used(f->st, akid, "ssm", "eu-west-1", 1030000);
	assert_int_equal(store_iam_key_get(f->st, akid, &k), 0);
	assert_int_equal(k.last_used_ms, 1000000);
	store_iam_key_used(f->st, akid, "ssm", "eu-west-1", 1061000);
	assert_int_equal(store_iam_key_get(f->st, akid, &k), 0);
	assert_int_equal(k.last_used_ms, 1061000);
	assert_string_equal(k.last_used_service, "ssm");
	store_iam_key_used(f->st, "AKIANOSUCHKEY0000000", "x", "y", 1);
}

static void
test_login_profiles(void **state)
{
	struct store_fx *f = *state;
	struct iam_user_rec u;
	int64_t created = 0;
	int reset = -1;

	mkuser(f->st, "frank", &u);
	assert_int_equal(store_iam_login_create(f->st, "Frank", "S3cret-pw",
	    1), 0);
	assert_int_equal(store_iam_login_create(f->st, "frank", "x", 0),
	    PH_ERR_EXISTS);
	assert_int_equal(store_iam_login_create(f->st, "ghost", "x", 0),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_iam_login_get(f->st, "frank", &created,
	    &reset), 0);
	assert_true(created > 0);
	assert_int_equal(reset, 1);
	assert_int_equal(store_iam_login_verify(f->st, "frank", "S3cret-pw"),
	    0);
	assert_int_equal(store_iam_login_verify(f->st, "frank", "S3cret-pX"),
	    PH_ERR_DENIED);
	assert_int_equal(store_iam_login_update(f->st, "frank", "New-pw-1",
	    -1), 0);
	assert_int_equal(store_iam_login_verify(f->st, "frank", "S3cret-pw"),
	    PH_ERR_DENIED);
	assert_int_equal(store_iam_login_verify(f->st, "frank", "New-pw-1"),
	    0);
	assert_int_equal(store_iam_login_get(f->st, "frank", NULL, &reset), 0);
	assert_int_equal(reset, 1);
	assert_int_equal(store_iam_login_update(f->st, "frank", NULL, 0), 0);
	assert_int_equal(store_iam_login_get(f->st, "frank", NULL, &reset), 0);
	assert_int_equal(reset, 0);
	assert_int_equal(store_iam_login_verify(f->st, "ghost", "x"),
	    PH_ERR_DENIED);
}

struct versions {
	int n;
	int defaults;
	char first[16];
};

static int
version_cb(void *arg, const char *vid, int is_default, int64_t created)
{
	struct versions *v = arg;

	if (v->n++ == 0)
		snprintf(v->first, sizeof(v->first), "%s", vid);
	v->defaults += is_default;
	(void)created;
	return 0;
}

static void
test_policy_versions(void **state)
{
	struct store_fx *f = *state;
	struct iam_policy_rec p, got;
	struct versions v;
	char vid[16], why[256];
	int i;

	mkpolicy(f->st, "pv", DOC("s3:*"), &p);
	assert_true(id_ok(p.policy_id, "ANPA"));
	assert_string_equal(p.default_version, "v1");
	for (i = 2; i <= 5; i++)
		assert_int_equal(store_iam_policy_version_create(f->st, p.arn,
		    DOC("s3:Get*"), 0, vid), 0);
	assert_string_equal(vid, "v5");
	assert_int_equal(store_iam_policy_version_create(f->st, p.arn,
	    DOC("s3:Get*"), 0, vid), PH_ERR_TOOBIG);
	memset(&v, 0, sizeof(v));
	assert_int_equal(store_iam_policy_version_foreach(f->st, p.arn,
	    version_cb, &v), 0);
	assert_int_equal(v.n, 5);
	assert_int_equal(v.defaults, 1);
	assert_string_equal(v.first, "v5");
	assert_int_equal(store_iam_policy_version_delete(f->st, p.arn, "v1"),
	    PH_ERR_STATE);
	assert_int_equal(store_iam_policy_set_default(f->st, p.arn, "v4"), 0);
	assert_int_equal(store_iam_policy_set_default(f->st, p.arn, "v9"),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_iam_policy_version_delete(f->st, p.arn, "v1"),
	    0);
	assert_int_equal(store_iam_policy_version_create(f->st, p.arn,
	    DOC("s3:Get*"), 0, vid), 0);
	assert_string_equal(vid, "v6");
	assert_int_equal(store_iam_policy_get(f->st, p.arn, &got), 0);
	assert_string_equal(got.default_version, "v4");
	/* Versions besides the default block deletion, as in IAM. */
	assert_int_equal(store_iam_policy_delete(f->st, p.arn, why,
	    sizeof(why)), PH_ERR_STATE);
	/* Attached: DeleteConflict too. */
	assert_int_equal(store_iam_attach(f->st, IAM_ENTITY_ROLE, "r", p.arn),
	    0);
	assert_int_equal(store_iam_policy_get(f->st, p.arn, &got), 0);
	assert_int_equal(got.attachment_count, 1);
	assert_int_equal(store_iam_detach(f->st, IAM_ENTITY_ROLE, "r", p.arn),
	    0);
	assert_int_equal(store_iam_detach(f->st, IAM_ENTITY_ROLE, "r", p.arn),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_iam_policy_version_delete(f->st, p.arn, "v2"),
	    0);
	assert_int_equal(store_iam_policy_version_delete(f->st, p.arn, "v3"),
	    0);
	assert_int_equal(store_iam_policy_version_delete(f->st, p.arn, "v5"),
	    0);
	assert_int_equal(store_iam_policy_version_delete(f->st, p.arn, "v6"),
	    0);
	assert_int_equal(store_iam_policy_delete(f->st, p.arn, why,
	    sizeof(why)), 0);
	assert_int_equal(store_iam_policy_get(f->st, p.arn, &got),
	    PH_ERR_NOTFOUND);
	/* AWS-managed policies are there and cannot be changed. */
	assert_int_equal(store_iam_policy_get(f->st,
	    "arn:aws:iam::aws:policy/AdministratorAccess", &got), 0);
	assert_int_equal(got.is_aws, 1);
	assert_int_equal(store_iam_policy_get(f->st,
	    "arn:aws:iam::aws:policy/service-role/AmazonEC2RoleforSSM", &got),
	    0);
	assert_int_equal(store_iam_policy_version_create(f->st, got.arn,
	    DOC("*"), 1, vid), PH_ERR_DENIED);
	assert_int_equal(store_iam_policy_delete(f->st, got.arn, why,
	    sizeof(why)), PH_ERR_DENIED);
}

static int
count_key_cb(void *arg, const struct iam_key_rec *k)
{
	(void)k;
	(*(int *)arg)++;
	return 0;
}

static void
test_rename_user(void **state)
{
	struct store_fx *f = *state;
	char akid[STORE_AKID_SIZE], secret[STORE_SECRET_SIZE];
	struct store_tag tag = { "team", "core" };
	struct iam_user_rec u, got;
	struct principal p;
	struct docs d;
	int n = 0;

	mkuser(f->st, "gina", &u);
	mkgroup(f->st, "grp");
	assert_int_equal(store_iam_create_access_key(f->st, "gina", akid,
	    secret), 0);
	assert_int_equal(store_iam_inline_put(f->st, IAM_ENTITY_USER, "gina",
	    "p", DOC("ssm:*")), 0);
	assert_int_equal(store_iam_group_add_user(f->st, "grp", "gina"), 0);
	assert_int_equal(store_tags_add(f->st, "IamUser", "gina", &tag, 1,
	    50), 0);
	assert_int_equal(store_iam_user_update(f->st, "GINA", "gina2",
	    "/new/", ACCT "user/new/gina2"), 0);
	assert_int_equal(store_iam_user_get(f->st, "gina", &got),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_iam_user_get(f->st, "gina2", &got), 0);
	assert_string_equal(got.user_id, u.user_id);
	assert_string_equal(got.path, "/new/");
	assert_string_equal(got.arn, ACCT "user/new/gina2");
	assert_int_equal(store_iam_lookup_key(f->st, akid, NULL, 0, &p), 0);
	assert_string_equal(p.name, "gina2");
	assert_int_equal(store_iam_key_foreach(f->st, "gina2", count_key_cb,
	    &n), 0);
	assert_int_equal(n, 1);
	memset(&d, 0, sizeof(d));
	assert_int_equal(store_iam_user_policies(f->st, "gina2", doc_cb, &d),
	    0);
	assert_int_equal(d.n, 1);
	/* A taken name refuses the rename and changes nothing. */
	mkuser(f->st, "hank", &u);
	assert_int_equal(store_iam_user_update(f->st, "gina2", "HANK", NULL,
	    ACCT "user/HANK"), PH_ERR_EXISTS);
	assert_int_equal(store_iam_user_get(f->st, "gina2", &got), 0);
	/* Only the case changes. */
	assert_int_equal(store_iam_user_update(f->st, "gina2", "Gina2", NULL,
	    ACCT "user/new/Gina2"), 0);
	assert_int_equal(store_iam_user_get(f->st, "gina2", &got), 0);
	assert_string_equal(got.name, "Gina2");
	assert_string_equal(got.arn, ACCT "user/new/Gina2");
	assert_int_equal(store_iam_lookup_key(f->st, akid, NULL, 0, &p), 0);
	assert_string_equal(p.name, "Gina2");
	/* Path only. */
	assert_int_equal(store_iam_user_update(f->st, "hank", NULL, "/x/",
	    ACCT "user/x/hank"), 0);
	assert_int_equal(store_iam_user_get(f->st, "hank", &got), 0);
	assert_string_equal(got.path, "/x/");
}

/* A database whose users predate version 3 (no ids) gets ids at open. */
static void
test_ids_given_at_open(void **state)
{
	struct store_fx *f = *state;
	struct iam_user_rec got;
	sqlite3 *db;

	assert_int_equal(store_iam_create_user(f->st, "admin",
	    ACCT "user/admin", 1), 0);
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(sqlite3_open(f->db.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE iam_users SET user_id = ''",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&f->st, f->db.path), 0);
	assert_int_equal(store_iam_user_get(f->st, "admin", &got), 0);
	assert_true(id_ok(got.user_id, "AIDA"));
	assert_int_equal(got.is_root_admin, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_and_role_policies,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_conflicts, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_profiles, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_policy_versions, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rename_user, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ids_given_at_open, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
