/* store: file mode, IAM keys, activation rules and registration, instance
 * lifecycle, tags, session status transitions and single-use tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/err.h"
#include "server/authz.h"
#include "server/store.h"

#define T0 ((int64_t)1700000000000)
#define HOUR ((int64_t)3600 * 1000)

struct fx {
	char dir[64];
	char path[128];
	struct store *st;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ph-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/porthole.db", f->dir);
	if (store_open(&f->st, f->path) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char p[160];

	store_close(f->st);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_file_mode(void **state)
{
	struct fx *f = *state;
	struct stat sb;
	char p[160];

	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* The WAL holds the same secrets. */
	assert_int_equal(store_iam_create_user(f->st, "u", "arn:u", 0), 0);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	if (stat(p, &sb) == 0)
		assert_int_equal(sb.st_mode & 0077, 0);
}

static void
test_reopen_keeps_data(void **state)
{
	struct fx *f = *state;
	struct principal p;

	assert_int_equal(store_iam_create_user(f->st, "admin",
	    "arn:aws:iam::000000000000:user/admin", 1), 0);
	store_close(f->st);
	assert_int_equal(store_open(&f->st, f->path), 0);
	assert_int_equal(store_iam_create_user(f->st, "admin", "x", 0),
	    PH_ERR_EXISTS);
	assert_int_equal(store_iam_lookup_key(f->st, "AKIANOPE", NULL, 0, &p),
	    PH_ERR_NOTFOUND);
}

static void
test_iam_keys(void **state)
{
	struct fx *f = *state;
	char akid[STORE_AKID_SIZE], secret[STORE_SECRET_SIZE], got[64];
	struct principal p;
	size_t i;

	assert_int_equal(store_iam_create_user(f->st, "admin",
	    "arn:aws:iam::000000000000:user/admin", 1), 0);
	assert_int_equal(store_iam_create_user(f->st, "bob",
	    "arn:aws:iam::000000000000:user/bob", 0), 0);
	assert_int_equal(store_iam_create_access_key(f->st, "nobody", akid,
	    secret), PH_ERR_NOTFOUND);
	assert_int_equal(store_iam_create_access_key(f->st, "admin", akid,
	    secret), 0);
	assert_int_equal(strlen(akid), 20);
	assert_memory_equal(akid, "AKIA", 4);
	for (i = 4; i < 20; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
		    akid[i]));
	assert_int_equal(strlen(secret), 40);
	assert_int_equal(store_iam_lookup_key(f->st, akid, got, sizeof(got),
	    &p), 0);
	assert_string_equal(got, secret);
	assert_string_equal(p.name, "admin");
	assert_string_equal(p.arn, "arn:aws:iam::000000000000:user/admin");
	assert_string_equal(p.access_key_id, akid);
	assert_int_equal(p.is_root_admin, 1);
	assert_int_equal(p.active, 1);
	/* A secret buffer too small is an error, not a truncation. */
	assert_int_not_equal(store_iam_lookup_key(f->st, akid, got, 10, NULL),
	    0);

	assert_int_equal(store_iam_create_access_key(f->st, "bob", akid,
	    secret), 0);
	assert_int_equal(store_iam_lookup_key(f->st, akid, NULL, 0, &p), 0);
	assert_string_equal(p.name, "bob");
	assert_int_equal(p.is_root_admin, 0);
	assert_int_equal(store_iam_lookup_key(f->st,
	    "AKIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", got, sizeof(got), &p),
	    PH_ERR_NOTFOUND);
}

static void
test_activation_rules(void **state)
{
	(void)state;
	assert_int_equal(store_activation_rules(1, T0, T0 + 1, 1, 0), 0);
	assert_int_equal(store_activation_rules(0, T0, T0 + 1, 1, 0),
	    PH_ERR_DENIED);
	/* A wrong code says nothing about expiry or limit. */
	assert_int_equal(store_activation_rules(0, T0 + 5, T0, 1, 1),
	    PH_ERR_DENIED);
	assert_int_equal(store_activation_rules(1, T0, T0, 1, 0),
	    PH_ERR_EXPIRED);
	assert_int_equal(store_activation_rules(1, T0 + 1, T0, 1, 0),
	    PH_ERR_EXPIRED);
	assert_int_equal(store_activation_rules(1, T0, T0 + 1, 1, 1),
	    PH_ERR_TOOBIG);
	assert_int_equal(store_activation_rules(1, T0, T0 + 1, 3, 2), 0);
	assert_string_equal(store_activation_error_type(PH_ERR_DENIED),
	    "InvalidActivation");
	assert_string_equal(store_activation_error_type(PH_ERR_EXPIRED),
	    "ActivationExpired");
	assert_non_null(store_activation_error_message(PH_ERR_TOOBIG));
}

static void
make_activation(struct store *st, int limit, int64_t exp, char *id,
    char *code)
{
	static const struct store_tag tags[] = { { "env", "prod" },
	    { "team", "ops" } };
	struct activation_new a;

	memset(&a, 0, sizeof(a));
	a.description = "test";
	a.default_instance_name = "web";
	a.iam_role = "SSMServiceRole";
	a.registration_limit = limit;
	a.expiration_ms = exp;
	a.tags = tags;
	a.ntags = 2;
	assert_int_equal(store_activation_create(st, &a, T0, id, code), 0);
}

struct tagcollect {
	char buf[256];
};

static void
tag_cb(void *arg, const char *k, const char *v)
{
	struct tagcollect *t = arg;
	size_t n = strlen(t->buf);

	snprintf(t->buf + n, sizeof(t->buf) - n, "%s=%s;", k, v);
}

static void
test_register_good(void **state)
{
	struct fx *f = *state;
	char id[STORE_ACTIVATION_ID_SIZE], code[STORE_ACTIVATION_CODE_LEN + 1];
	char mi[21], role[STORE_IAM_ROLE_SIZE];
	struct activation_rec a;
	struct instance_rec in;
	struct tagcollect tc;
	size_t i;

	make_activation(f->st, 2, T0 + 24 * HOUR, id, code);
	assert_int_equal(strlen(id), 36);
	assert_int_equal(strlen(code), 20);
	assert_int_equal(store_activation_register(f->st, id, code, T0 + 1000,
	    NULL, "sha256:abc", mi, role), 0);
	assert_int_equal(strlen(mi), 20);
	assert_memory_equal(mi, "mi-", 3);
	for (i = 3; i < 20; i++)
		assert_non_null(strchr("0123456789abcdef", mi[i]));
	assert_string_equal(role, "SSMServiceRole");
	assert_int_equal(store_activation_get(f->st, id, &a), 0);
	assert_int_equal(a.registrations_count, 1);
	assert_int_equal(a.registration_limit, 2);
	assert_int_equal(store_instance_get(f->st, mi, &in), 0);
	assert_string_equal(in.name, "web");
	assert_string_equal(in.activation_id, id);
	assert_string_equal(in.iam_role, "SSMServiceRole");
	assert_string_equal(in.cert_fingerprint, "sha256:abc");
	assert_string_equal(in.ping_status, "ConnectionLost");
	assert_int_equal(in.registration_ms, T0 + 1000);
	assert_int_equal(store_instance_active(f->st, mi), 0);
	/* The activation's tags went to the instance. */
	memset(&tc, 0, sizeof(tc));
	store_tags_foreach(f->st, "ManagedInstance", mi, tag_cb, &tc);
	assert_string_equal(tc.buf, "env=prod;team=ops;");
	assert_int_equal(store_instance_set_cert(f->st, mi, "01ab", NULL), 0);
	assert_int_equal(store_instance_get(f->st, mi, &in), 0);
	assert_string_equal(in.cert_serial, "01ab");
	assert_string_equal(in.cert_fingerprint, "sha256:abc");

	/* A name given at registration wins over the default. */
	assert_int_equal(store_activation_register(f->st, id, code, T0 + 2000,
	    "db-1", NULL, mi, role), 0);
	assert_int_equal(store_instance_get(f->st, mi, &in), 0);
	assert_string_equal(in.name, "db-1");
}

static void
test_register_refusals(void **state)
{
	struct fx *f = *state;
	char id[STORE_ACTIVATION_ID_SIZE], code[STORE_ACTIVATION_CODE_LEN + 1];
	char id2[STORE_ACTIVATION_ID_SIZE];
	char code2[STORE_ACTIVATION_CODE_LEN + 1];
	char bad[STORE_ACTIVATION_CODE_LEN + 1];
	char mi[21], role[STORE_IAM_ROLE_SIZE];
	struct activation_rec a;

	make_activation(f->st, 1, T0 + HOUR, id, code);
	/* wrong code */
	snprintf(bad, sizeof(bad), "%s", code);
	bad[0] = bad[0] == 'A' ? 'B' : 'A';
	assert_int_equal(store_activation_register(f->st, id, bad, T0, NULL,
	    NULL, mi, role), PH_ERR_DENIED);
	assert_string_equal(mi, "");
	assert_int_equal(store_activation_register(f->st, id, "", T0, NULL,
	    NULL, mi, role), PH_ERR_DENIED);
	/* unknown id */
	assert_int_equal(store_activation_register(f->st,
	    "00000000-0000-4000-8000-000000000000", code, T0, NULL, NULL, mi,
	    role), PH_ERR_DENIED);
	/* expired */
	assert_int_equal(store_activation_register(f->st, id, code,
	    T0 + HOUR, NULL, NULL, mi, role), PH_ERR_EXPIRED);
	assert_int_equal(store_activation_get(f->st, id, &a), 0);
	assert_int_equal(a.registrations_count, 0);
	/* limit 1: the first registers, the second does not */
	assert_int_equal(store_activation_register(f->st, id, code, T0, NULL,
	    NULL, mi, role), 0);
	assert_int_equal(store_activation_register(f->st, id, code, T0, NULL,
	    NULL, mi, role), PH_ERR_TOOBIG);
	assert_int_equal(store_activation_get(f->st, id, &a), 0);
	assert_int_equal(a.registrations_count, 1);
	/* another activation's code does not open this one */
	make_activation(f->st, 5, T0 + HOUR, id2, code2);
	assert_int_equal(store_activation_register(f->st, id2, code, T0, NULL,
	    NULL, mi, role), PH_ERR_DENIED);
	/* deleted: gone, its instances stay */
	assert_int_equal(store_activation_delete(f->st, id), 0);
	assert_int_equal(store_activation_delete(f->st, id), PH_ERR_NOTFOUND);
	assert_int_equal(store_activation_register(f->st, id, code, T0, NULL,
	    NULL, mi, role), PH_ERR_DENIED);
}

static void
test_instance_lifecycle(void **state)
{
	struct fx *f = *state;
	char id[STORE_ACTIVATION_ID_SIZE], code[STORE_ACTIVATION_CODE_LEN + 1];
	char mi[21], role[STORE_IAM_ROLE_SIZE];
	struct instance_conn_info info = { "3.3.1000.0", "Linux", "Debian",
	    "12", "10.0.0.5", "host1" };
	struct instance_rec in;
	struct tagcollect tc;

	make_activation(f->st, 1, T0 + HOUR, id, code);
	assert_int_equal(store_activation_register(f->st, id, code, T0, NULL,
	    NULL, mi, role), 0);
	assert_int_equal(store_instance_connected(f->st, mi, &info, T0 + 5),
	    0);
	assert_int_equal(store_instance_get(f->st, mi, &in), 0);
	assert_string_equal(in.ping_status, "Online");
	assert_int_equal(in.last_ping_ms, T0 + 5);
	assert_string_equal(in.agent_version, "3.3.1000.0");
	assert_string_equal(in.platform_name, "Debian");
	assert_string_equal(in.computer_name, "host1");
	assert_int_equal(store_instance_seen(f->st, mi, T0 + 9), 0);
	assert_int_equal(store_instance_disconnected(f->st, mi, T0 + 10), 0);
	assert_int_equal(store_instance_get(f->st, mi, &in), 0);
	assert_string_equal(in.ping_status, "ConnectionLost");
	assert_int_equal(in.last_ping_ms, T0 + 9);

	assert_int_equal(store_instance_deregister(f->st, mi, T0 + 20), 0);
	assert_int_equal(store_instance_active(f->st, mi), PH_ERR_NOTFOUND);
	assert_int_equal(store_instance_deregister(f->st, mi, T0 + 21),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_instance_connected(f->st, mi, &info, T0 + 30),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_instance_get(f->st, mi, &in), 0);
	assert_int_equal(in.deregistered, 1);
	memset(&tc, 0, sizeof(tc));
	store_tags_foreach(f->st, "ManagedInstance", mi, tag_cb, &tc);
	assert_string_equal(tc.buf, "");
	assert_int_equal(store_instance_active(f->st, "mi-00000000000000000"),
	    PH_ERR_NOTFOUND);
}

static void
test_tags(void **state)
{
	struct fx *f = *state;
	struct store_tag t[3] = { { "a", "1" }, { "b", "2" }, { "a", "3" } };
	struct store_tag many[STORE_TAGS_MAX + 1];
	const char *keys[] = { "a", "zz" };
	char names[STORE_TAGS_MAX + 1][8];
	struct tagcollect tc;
	size_t i;

	assert_int_equal(store_tags_add(f->st, "Document", "D", t, 3,
	    STORE_TAGS_MAX), 0);
	memset(&tc, 0, sizeof(tc));
	store_tags_foreach(f->st, "Document", "D", tag_cb, &tc);
	assert_string_equal(tc.buf, "a=3;b=2;");
	assert_int_equal(store_tags_remove(f->st, "Document", "D", keys, 2),
	    0);
	memset(&tc, 0, sizeof(tc));
	store_tags_foreach(f->st, "Document", "D", tag_cb, &tc);
	assert_string_equal(tc.buf, "b=2;");
	for (i = 0; i < STORE_TAGS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "k%zu", i);
		many[i].key = names[i];
		many[i].value = "";
	}
	/* 50 new + "b" = 51: refused as a whole */
	assert_int_equal(store_tags_add(f->st, "Document", "D", many,
	    STORE_TAGS_MAX, STORE_TAGS_MAX), PH_ERR_TOOBIG);
	memset(&tc, 0, sizeof(tc));
	store_tags_foreach(f->st, "Document", "D", tag_cb, &tc);
	assert_string_equal(tc.buf, "b=2;");
}

static void
new_session(struct store *st, const char *sid, const char *target,
    int64_t start)
{
	struct session_rec r;

	memset(&r, 0, sizeof(r));
	snprintf(r.session_id, sizeof(r.session_id), "%s", sid);
	snprintf(r.target, sizeof(r.target), "%s", target);
	snprintf(r.owner, sizeof(r.owner), "arn:aws:iam::0:user/admin");
	snprintf(r.status, sizeof(r.status), "Connected");
	snprintf(r.document_name, sizeof(r.document_name),
	    "SSM-SessionManagerRunShell");
	snprintf(r.reason, sizeof(r.reason), "debugging");
	r.start_ms = start;
	assert_int_equal(store_session_create(st, &r, "60"), 0);
}

static void
test_session_status(void **state)
{
	struct fx *f = *state;
	struct session_info si;
	struct session_rec r;

	new_session(f->st, "admin-0123456789abcdef0", "mi-0123456789abcdef0",
	    T0);
	assert_int_equal(store_session_get(f->st, "admin-0123456789abcdef0",
	    &r), 0);
	assert_string_equal(r.status, "Connected");
	assert_string_equal(r.reason, "debugging");
	assert_int_equal(r.start_ms, T0);
	assert_int_equal(r.end_ms, 0);
	assert_int_equal(store_session_get(f->st, "nope", &r),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_session_set_status(f->st,
	    "admin-0123456789abcdef0", "Bogus", "", T0), PH_ERR_INVALID);
	assert_int_equal(store_session_set_status(f->st,
	    "admin-0123456789abcdef0", "Terminating", "", T0 + 1), 0);
	assert_int_equal(store_session_set_status(f->st,
	    "admin-0123456789abcdef0", "Terminated", "exit", T0 + 2), 0);
	/* final: neither a live nor another terminal state replaces it */
	assert_int_equal(store_session_set_status(f->st,
	    "admin-0123456789abcdef0", "Connected", "", T0 + 3),
	    PH_ERR_STATE);
	assert_int_equal(store_session_set_status(f->st,
	    "admin-0123456789abcdef0", "Failed", "", T0 + 3), PH_ERR_STATE);
	assert_int_equal(store_session_set_status(f->st,
	    "admin-0123456789abcdef0", "Terminated", "", T0 + 4), 0);
	assert_int_equal(store_session_get_info(f->st,
	    "admin-0123456789abcdef0", &si), 0);
	assert_string_equal(si.rec.status, "Terminated");
	assert_int_equal(si.rec.end_ms, T0 + 2);
	assert_string_equal(si.details, "exit");
	assert_string_equal(si.max_session_duration, "60");
	assert_string_equal(si.rec.reason, "debugging");

	new_session(f->st, "s2", "mi-0123456789abcdef0", T0);
	assert_int_equal(store_session_set_status(f->st, "s2", "Failed",
	    "agent died", T0 + 5), 0);
	assert_int_equal(store_session_set_status(f->st, "s2", "Terminated",
	    "", T0 + 6), PH_ERR_STATE);
	assert_int_equal(store_session_get(f->st, "s2", &r), 0);
	assert_string_equal(r.status, "Failed");
	assert_int_equal(store_session_set_status(f->st, "nope", "Failed",
	    "", T0), PH_ERR_NOTFOUND);
}

static void
test_session_tokens(void **state)
{
	struct fx *f = *state;
	char tok[STORE_TOKEN_SIZE], tok2[STORE_TOKEN_SIZE];

	new_session(f->st, "a", "mi-0123456789abcdef0", T0);
	new_session(f->st, "b", "mi-0123456789abcdef0", T0);
	/* no token issued yet */
	assert_int_equal(store_session_consume_token(f->st, "a", "x", T0),
	    PH_ERR_DENIED);
	assert_int_equal(store_session_issue_token(f->st, "a", T0, 60000, tok),
	    0);
	assert_true(strlen(tok) >= 43 && strlen(tok) <= 300);
	/* another session's token is refused */
	assert_int_equal(store_session_consume_token(f->st, "b", tok, T0),
	    PH_ERR_DENIED);
	assert_int_equal(store_session_consume_token(f->st, "a", "", T0),
	    PH_ERR_DENIED);
	assert_int_equal(store_session_consume_token(f->st, "a", tok, T0 + 1),
	    0);
	/* single use */
	assert_int_equal(store_session_consume_token(f->st, "a", tok, T0 + 2),
	    PH_ERR_DENIED);
	/* expiry */
	assert_int_equal(store_session_issue_token(f->st, "a", T0, 60000,
	    tok2), 0);
	assert_string_not_equal(tok, tok2);
	assert_int_equal(store_session_consume_token(f->st, "a", tok2,
	    T0 + 60000), PH_ERR_DENIED);
	/* a new token replaces the old one */
	assert_int_equal(store_session_issue_token(f->st, "a", T0, 60000, tok),
	    0);
	assert_int_equal(store_session_issue_token(f->st, "a", T0, 60000,
	    tok2), 0);
	assert_int_equal(store_session_consume_token(f->st, "a", tok, T0 + 1),
	    PH_ERR_DENIED);
	/* a terminated session takes no token and honours none */
	assert_int_equal(store_session_set_status(f->st, "a", "Terminated",
	    "", T0 + 2), 0);
	assert_int_equal(store_session_consume_token(f->st, "a", tok2,
	    T0 + 3), PH_ERR_DENIED);
	assert_int_equal(store_session_issue_token(f->st, "a", T0, 60000, tok),
	    PH_ERR_STATE);
	assert_int_equal(store_session_issue_token(f->st, "zz", T0, 60000,
	    tok), PH_ERR_STATE);
}

struct opencount {
	int n;
	char last[SESSION_ID_MAX];
};

static void
open_cb(void *arg, const char *sid, const char *target)
{
	struct opencount *o = arg;

	(void)target;
	o->n++;
	snprintf(o->last, sizeof(o->last), "%s", sid);
}

static int
count_cb(void *arg, const struct session_info *s)
{
	(void)s;
	(*(int *)arg)++;
	return 0;
}

static void
test_session_lists(void **state)
{
	struct fx *f = *state;
	struct session_query q;
	struct opencount o;
	int n;

	new_session(f->st, "s1", "mi-0123456789abcdef0", T0);
	new_session(f->st, "s2", "mi-0123456789abcdef1", T0 + 10);
	new_session(f->st, "s3", "mi-0123456789abcdef1", T0 + 20);
	assert_int_equal(store_session_set_status(f->st, "s1", "Terminated",
	    "", T0 + 30), 0);
	memset(&o, 0, sizeof(o));
	assert_int_equal(store_session_foreach_open(f->st, open_cb, &o), 0);
	assert_int_equal(o.n, 2);

	memset(&q, 0, sizeof(q));
	q.after_ms = INT64_MIN;
	q.before_ms = INT64_MAX;
	q.limit = 100;
	n = 0;
	assert_int_equal(store_session_query(f->st, &q, count_cb, &n), 0);
	assert_int_equal(n, 2);
	q.history = 1;
	n = 0;
	assert_int_equal(store_session_query(f->st, &q, count_cb, &n), 0);
	assert_int_equal(n, 1);
	q.history = 0;
	q.target = "mi-0123456789abcdef1";
	q.after_ms = T0 + 15;
	n = 0;
	assert_int_equal(store_session_query(f->st, &q, count_cb, &n), 0);
	assert_int_equal(n, 1);
	q.after_ms = INT64_MIN;
	q.offset = 1;
	n = 0;
	assert_int_equal(store_session_query(f->st, &q, count_cb, &n), 0);
	assert_int_equal(n, 1);
}

static void
test_documents(void **state)
{
	struct fx *f = *state;
	char type[32];
	char *c = NULL;

	assert_int_equal(store_document_get(f->st, "SSM-SessionManagerRunShell",
	    &c, type), 0);
	assert_string_equal(type, "Session");
	assert_non_null(strstr(c, "\"sessionType\":\"Standard_Stream\""));
	free(c);
	assert_int_equal(store_document_get(f->st,
	    "AWS-StartInteractiveCommand", &c, type), 0);
	assert_non_null(strstr(c, "{{ command }}"));
	free(c);
	assert_int_equal(store_document_get(f->st, "Nope", &c, type),
	    PH_ERR_NOTFOUND);
	assert_null(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_mode, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_iam_keys, setup,
		    teardown),
		cmocka_unit_test(test_activation_rules),
		cmocka_unit_test_setup_teardown(test_register_good, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_register_refusals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_instance_lifecycle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_status, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_tokens, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_lists, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_documents, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
