/* store: file mode, IAM keys, activation rules and registration, instance
 * lifecycle, tags, session status transitions and single-use tokens; state
 * changes kept while writes fail (a VFS shim makes every write fail with
 * SQLITE_FULL, as a full disk does) and written when they succeed again;
 * why an open fails. */
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
#include <sqlite3.h>

#include "common/err.h"
#include "server/authz.h"
#include "server/store.h"
#include "server/store_journal.h"
#include "support/fixture.h"

#define T0 ((int64_t)1700000000000)
#define HOUR ((int64_t)3600 * 1000)

/* Set: every write to a database file fails with SQLITE_FULL. */
static int disk_full;

static int
setup(void **state)
{
	return store_fx_setup(state, "ph-store");
}

static int
teardown(void **state)
{
	disk_full = 0;
	return store_fx_teardown(state);
}

static void
test_file_mode(void **state)
{
	struct store_fx *f = *state;
	struct stat sb;
	char p[160];

	assert_int_equal(stat(f->db.path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* The WAL holds the same secrets. */
	assert_int_equal(store_iam_create_user(f->st, "u", "arn:u", 0), 0);
	snprintf(p, sizeof(p), "%s-wal", f->db.path);
	if (stat(p, &sb) == 0)
		assert_int_equal(sb.st_mode & 0077, 0);
}

static void
test_reopen_keeps_data(void **state)
{
	struct store_fx *f = *state;
	struct principal p;

	assert_int_equal(store_iam_create_user(f->st, "admin",
	    "arn:aws:iam::000000000000:user/admin", 1), 0);
	store_close(f->st);
	assert_int_equal(store_open(&f->st, f->db.path), 0);
	assert_int_equal(store_iam_create_user(f->st, "admin", "x", 0),
	    PH_ERR_EXISTS);
	assert_int_equal(store_iam_lookup_key(f->st, "AKIANOPE", NULL, 0, &p),
	    PH_ERR_NOTFOUND);
}

static void
test_iam_keys(void **state)
{
	struct store_fx *f = *state;
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
	struct store_fx *f = *state;
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
	struct store_fx *f = *state;
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
	struct store_fx *f = *state;
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
	struct store_fx *f = *state;
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
	struct store_fx *f = *state;
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
	struct store_fx *f = *state;
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
	struct store_fx *f = *state;
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
	struct store_fx *f = *state;
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


/* ---- a full disk: the default VFS, with writes failing on demand -------- */

static sqlite3_vfs *real_vfs;
static sqlite3_vfs full_vfs;

struct full_file {
	sqlite3_file base;
	sqlite3_file *real;        /* the real VFS's file, right after this */
};

#define REAL(f) (((struct full_file *)(f))->real)

static int
ff_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int
ff_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}

static int
ff_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	if (disk_full)
		return SQLITE_FULL;
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}

static int
ff_truncate(sqlite3_file *f, sqlite3_int64 n)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), n);
}

static int
ff_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int
ff_size(sqlite3_file *f, sqlite3_int64 *n)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), n);
}

static int
ff_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}

static int
ff_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}

static int
ff_reserved(sqlite3_file *f, int *r)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}

static int
ff_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
ff_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
ff_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
ff_shm_map(sqlite3_file *f, int i, int size, int extend, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), i, size, extend, p);
}

static int
ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void
ff_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
ff_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int
ff_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
{
	return REAL(f)->pMethods->xFetch(REAL(f), o, n, p);
}

static int
ff_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static const sqlite3_io_methods ff_methods = {
	3, ff_close, ff_read, ff_write, ff_truncate, ff_sync, ff_size,
	ff_lock, ff_unlock, ff_reserved, ff_fcntl, ff_sector, ff_devchar,
	ff_shm_map, ff_shm_lock, ff_shm_barrier, ff_shm_unmap, ff_fetch,
	ff_unfetch,
};

static int
full_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
    int *out_flags)
{
	struct full_file *p = (struct full_file *)f;
	int rc;

	(void)vfs;
	p->real = (sqlite3_file *)(p + 1);
	rc = real_vfs->xOpen(real_vfs, name, p->real, flags, out_flags);
	p->base.pMethods = p->real->pMethods != NULL ? &ff_methods : NULL;
	return rc;
}

/* Made the default, so the store opens every file through it. */
static void
full_vfs_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	assert_true(real_vfs->iVersion >= 1);
	full_vfs = *real_vfs;
	full_vfs.zName = "ph-test-full";
	full_vfs.szOsFile = (int)sizeof(struct full_file) +
	    real_vfs->szOsFile;
	full_vfs.xOpen = full_open;
	full_vfs.pNext = NULL;
	assert_int_equal(sqlite3_vfs_register(&full_vfs, 1), SQLITE_OK);
}

/* A column of one row as the database file holds it, read on a
 * connection of its own (not through the store). */
static void
db_value(const char *path, const char *sql, const char *id, char *out,
    size_t size)
{
	sqlite3_stmt *s = NULL;
	sqlite3 *db = NULL;

	out[0] = '\0';
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW)
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(s,
		    0));
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static void
db_session_status(const char *path, const char *sid, char *out,
    size_t size)
{
	db_value(path, "SELECT status FROM sessions WHERE id = ?1", sid, out,
	    size);
}

static void
db_ping_status(const char *path, const char *mi, char *out, size_t size)
{
	db_value(path, "SELECT ping_status FROM instances WHERE id = ?1", mi,
	    out, size);
}

static int
history_cb(void *arg, const struct session_info *s)
{
	char *buf = arg;
	size_t n = strlen(buf);

	snprintf(buf + n, 256 - n, "%s=%s;", s->rec.session_id,
	    s->rec.status);
	return 0;
}

static void
query_sessions(struct store *st, int history, char buf[256])
{
	struct session_query q;

	memset(&q, 0, sizeof(q));
	q.history = history;
	q.after_ms = INT64_MIN;
	q.before_ms = INT64_MAX;
	q.limit = 100;
	buf[0] = '\0';
	assert_int_equal(store_session_query(st, &q, history_cb, buf), 0);
}

static void
register_instance(struct store *st, char mi[21])
{
	char id[STORE_ACTIVATION_ID_SIZE], code[STORE_ACTIVATION_CODE_LEN + 1];
	char role[STORE_IAM_ROLE_SIZE];

	make_activation(st, 1, T0 + HOUR, id, code);
	assert_int_equal(store_activation_register(st, id, code, T0, NULL,
	    NULL, mi, role), 0);
}

/* A session that ends and an agent that goes while the disk is full:
 * reads show it at once, the database gets it when writes succeed. */
static void
test_full_disk_kept_and_written(void **state)
{
	struct store_fx *f = *state;
	struct instance_conn_info info = { "3.3.1000.0", "Linux", "Debian",
	    "12", "10.0.0.5", "host1" };
	static const struct store_tag tags[] = { { "a", "1" }, { "b", "2" } };
	char mi[21], v[64], buf[256], tok[STORE_TOKEN_SIZE];
	struct instance_rec in;
	struct tagcollect tc;
	struct session_rec r;
	struct opencount o;

	register_instance(f->st, mi);
	assert_int_equal(store_instance_connected(f->st, mi, &info, T0 + 1),
	    0);
	new_session(f->st, "s1", mi, T0 + 2);
	new_session(f->st, "s2", mi, T0 + 3);
	assert_int_equal(store_session_issue_token(f->st, "s2", T0, 60000,
	    tok), 0);

	disk_full = 1;
	/* Writes that are not state changes fail as before, and leave
	 * nothing half done. */
	assert_int_equal(store_iam_create_user(f->st, "u", "arn:u", 0),
	    PH_ERR_IO);
	assert_int_equal(store_tags_add(f->st, "ManagedInstance", mi, tags, 2,
	    STORE_TAGS_MAX), PH_ERR_IO);
	assert_int_equal(store_session_set_status(f->st, "s1", "Terminated",
	    "exit", T0 + 10), 0);
	assert_int_equal(store_instance_seen(f->st, mi, T0 + 11), 0);
	assert_int_equal(store_session_set_status(f->st, "s2", "Failed",
	    "agent gone", T0 + 12), 0);
	assert_int_equal(store_instance_disconnected(f->st, mi, T0 + 12), 0);
	assert_int_equal(store_retry(f->st), 3);

	/* Not in the database ... */
	db_session_status(f->db.path, "s1", v, sizeof(v));
	assert_string_equal(v, "Connected");
	db_ping_status(f->db.path, mi, v, sizeof(v));
	assert_string_equal(v, "Online");
	/* ... but every read shows it. */
	assert_int_equal(store_session_get(f->st, "s1", &r), 0);
	assert_string_equal(r.status, "Terminated");
	assert_int_equal(r.end_ms, T0 + 10);
	assert_int_equal(store_instance_get(f->st, mi, &in), 0);
	assert_string_equal(in.ping_status, "ConnectionLost");
	assert_int_equal(in.last_ping_ms, T0 + 11);
	query_sessions(f->st, 0, buf);
	assert_string_equal(buf, "");
	query_sessions(f->st, 1, buf);
	assert_string_equal(buf, "s2=Failed;s1=Terminated;");
	memset(&o, 0, sizeof(o));
	assert_int_equal(store_session_foreach_open(f->st, open_cb, &o), 0);
	assert_int_equal(o.n, 0);
	/* An ended session takes no token even before the end is written. */
	assert_int_equal(store_session_consume_token(f->st, "s2", tok,
	    T0 + 13), PH_ERR_DENIED);
	assert_int_equal(store_session_issue_token(f->st, "s1", T0, 60000,
	    tok), PH_ERR_STATE);
	/* The end is final here as in the database. */
	assert_int_equal(store_session_set_status(f->st, "s1", "Connected",
	    "", T0 + 14), PH_ERR_STATE);
	assert_int_equal(store_session_set_status(f->st, "s1", "Terminated",
	    "", T0 + 14), 0);

	disk_full = 0;
	assert_int_equal(store_retry(f->st), 0);
	db_session_status(f->db.path, "s1", v, sizeof(v));
	assert_string_equal(v, "Terminated");
	db_session_status(f->db.path, "s2", v, sizeof(v));
	assert_string_equal(v, "Failed");
	db_ping_status(f->db.path, mi, v, sizeof(v));
	assert_string_equal(v, "ConnectionLost");
	db_value(f->db.path, "SELECT details FROM sessions WHERE id = ?1", "s2",
	    v, sizeof(v));
	assert_string_equal(v, "agent gone");
	assert_int_equal(store_instance_get(f->st, mi, &in), 0);
	assert_int_equal(in.last_ping_ms, T0 + 11);
	/* Nothing was left half done: writes work and the transactions
	 * that failed are gone. */
	memset(&tc, 0, sizeof(tc));
	store_tags_foreach(f->st, "ManagedInstance", mi, tag_cb, &tc);
	assert_string_equal(tc.buf, "env=prod;team=ops;");
	assert_int_equal(store_iam_create_user(f->st, "u", "arn:u", 0), 0);
	assert_int_equal(store_tags_add(f->st, "ManagedInstance", mi, tags, 2,
	    STORE_TAGS_MAX), 0);
	query_sessions(f->st, 1, buf);
	assert_string_equal(buf, "s2=Failed;s1=Terminated;");
}

/* A later change of a record supersedes the pending one and the result
 * is what the changes made in order would have written. */
static void
test_full_disk_supersede(void **state)
{
	struct store_fx *f = *state;
	struct instance_conn_info a = { "1.0", "Linux", "Debian", "12",
	    "10.0.0.5", "old" };
	struct instance_conn_info b = { "2.0", "Linux", "Debian", "13",
	    "10.0.0.6", "new" };
	char mi[21], v[64];
	struct instance_rec in;

	register_instance(f->st, mi);
	new_session(f->st, "s1", mi, T0);
	disk_full = 1;
	assert_int_equal(store_instance_connected(f->st, mi, &a, T0 + 1), 0);
	assert_int_equal(store_instance_disconnected(f->st, mi, T0 + 2), 0);
	assert_int_equal(store_instance_connected(f->st, mi, &b, T0 + 3), 0);
	assert_int_equal(store_session_set_status(f->st, "s1", "Terminating",
	    "bye", T0 + 4), 0);
	assert_int_equal(store_session_set_status(f->st, "s1", "Terminated",
	    "", T0 + 5), 0);
	/* one entry per record */
	assert_int_equal(store_retry(f->st), 2);
	assert_int_equal(store_instance_get(f->st, mi, &in), 0);
	assert_string_equal(in.ping_status, "Online");
	assert_string_equal(in.computer_name, "new");

	disk_full = 0;
	assert_int_equal(store_retry(f->st), 0);
	assert_int_equal(store_instance_seen(f->st, mi, T0 + 6), 0);
	db_ping_status(f->db.path, mi, v, sizeof(v));
	assert_string_equal(v, "Online");
	db_value(f->db.path, "SELECT computer_name FROM instances WHERE id = ?1",
	    mi, v, sizeof(v));
	assert_string_equal(v, "new");
	db_value(f->db.path, "SELECT agent_version FROM instances WHERE id = ?1",
	    mi, v, sizeof(v));
	assert_string_equal(v, "2.0");
	db_session_status(f->db.path, "s1", v, sizeof(v));
	assert_string_equal(v, "Terminated");
	db_value(f->db.path, "SELECT details FROM sessions WHERE id = ?1", "s1",
	    v, sizeof(v));
	assert_string_equal(v, "bye");
	db_value(f->db.path, "SELECT last_ping_ms FROM instances WHERE id = ?1",
	    mi, v, sizeof(v));
	assert_string_equal(v, "1700000000006");
}

/* What the database refuses when it is written at last is dropped (the
 * instance was deregistered meanwhile); other records do not wait. */
static void
test_full_disk_refused_later(void **state)
{
	struct store_fx *f = *state;
	char mi[21], v[64];
	struct instance_rec in;
	struct session_rec r;

	register_instance(f->st, mi);
	new_session(f->st, "s1", mi, T0);
	disk_full = 1;
	assert_int_equal(store_instance_connected(f->st, mi, NULL, T0 + 1), 0);
	assert_int_equal(store_session_set_status(f->st, "s1", "Terminating",
	    "", T0 + 2), 0);
	disk_full = 0;
	/* Written directly: other records are not held up by the journal. */
	assert_int_equal(store_instance_deregister(f->st, mi, T0 + 3), 0);
	assert_int_equal(store_instance_get(f->st, mi, &in), 0);
	assert_string_equal(in.ping_status, "ConnectionLost");
	assert_int_equal(store_retry(f->st), 0);
	db_ping_status(f->db.path, mi, v, sizeof(v));
	assert_string_equal(v, "ConnectionLost");
	assert_int_equal(store_session_get(f->st, "s1", &r), 0);
	assert_string_equal(r.status, "Terminating");
	/* An unknown session is not kept: the error is the database's. */
	assert_int_equal(store_session_set_status(f->st, "nope", "Failed", "",
	    T0), PH_ERR_NOTFOUND);
}

/* The journal itself: bounded, ordered by latest change, merges. */
static void
test_journal_bounds(void **state)
{
	struct store_journal *j;
	const struct sj_entry *e;

	(void)state;
	assert_int_equal(sj_new(&j, 2), 0);
	assert_null(sj_first(j));
	assert_int_equal(sj_session(j, "s1", "Terminating", "r1", 1), 0);
	assert_int_equal(sj_instance_disconnected(j, "mi-1"), 0);
	/* full: a new record is refused, a keep-alive silently dropped */
	assert_int_equal(sj_session(j, "s2", "Failed", "", 2), PH_ERR_TOOBIG);
	assert_int_equal(sj_instance_seen(j, "mi-2", 2), 0);
	assert_int_equal(sj_count(j), 2);
	/* a change of a pending record merges and moves it last */
	assert_int_equal(sj_session(j, "s1", "Terminated", "", 3), 0);
	assert_int_equal(sj_count(j), 2);
	e = sj_first(j);
	assert_int_equal(e->kind, SJ_INSTANCE);
	assert_string_equal(e->id, "mi-1");
	assert_int_equal(e->ping, SJ_PING_LOST);
	sj_drop(j, e);
	e = sj_first(j);
	assert_string_equal(e->status, "Terminated");
	assert_string_equal(e->reason, "r1");
	assert_int_equal(e->at_ms, 3);
	assert_ptr_equal(sj_find(j, SJ_SESSION, "s1"), e);
	assert_null(sj_find(j, SJ_INSTANCE, "s1"));
	/* final once terminal */
	assert_int_equal(sj_session(j, "s1", "Failed", "", 4), PH_ERR_STATE);
	assert_int_equal(sj_session(j, "s1", "Connected", "", 4),
	    PH_ERR_STATE);
	assert_int_equal(sj_session(j, "s1", "Terminated", "x", 4), 0);
	assert_int_equal(sj_session(j, "", "Failed", "", 4), PH_ERR_INVALID);
	sj_drop(j, e);
	assert_int_equal(sj_count(j), 0);
	assert_null(sj_first(j));
	assert_null(sj_find(j, SJ_SESSION, "s1"));
	sj_free(j);
}

/* serve opens without creating: a missing database is NOTFOUND (then,
 * and only then, `init` is the advice), other failures say why. */
static void
test_open_errors(void **state)
{
	struct store_fx *f = *state;
	struct store *st = NULL;
	char path[160], why[200];

	snprintf(path, sizeof(path), "%s/missing.db", f->db.dir);
	assert_int_equal(store_open_ex(&st, path, 0, why, sizeof(why)),
	    PH_ERR_NOTFOUND);
	assert_null(st);
	assert_string_equal(why, "it does not exist");
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/not-a-db", f->db.dir);
	{
		FILE *fp = fopen(path, "w");

		assert_non_null(fp);
		fputs("this is not an SQLite database, just some text that is "
		    "long enough to hold a header of one hundred bytes, so "
		    "SQLite reads it and refuses it as such.\n", fp);
		fclose(fp);
	}
	assert_int_not_equal(store_open_ex(&st, path, 0, why, sizeof(why)),
	    0);
	assert_null(st);
	assert_non_null(strstr(why, "not a database"));
	unlink(path);
	/* the existing database opens without STORE_OPEN_CREATE */
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open_ex(&f->st, f->db.path, 0, NULL, 0), 0);
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
		cmocka_unit_test_setup_teardown(
		    test_full_disk_kept_and_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_disk_supersede,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_disk_refused_later,
		    setup, teardown),
		cmocka_unit_test(test_journal_bounds),
		cmocka_unit_test_setup_teardown(test_open_errors, setup,
		    teardown),
	};

	full_vfs_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
