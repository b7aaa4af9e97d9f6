/* store_sts: temporary credentials of role sessions: what an issue gives
 * (key id, secret, token shapes), that only a hash of the token is kept,
 * that a missing, empty, cut, altered or foreign token is refused, expiry
 * bookkeeping, purging and revocation, and the argument checks. */
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
#include "server/store.h"
#include "server/store_sts.h"
#include "support/fixture.h"

#define T0 ((int64_t)1700000000000)
#define HOUR ((int64_t)3600 * 1000)
#define ARN "arn:aws:iam::123456789012:user/alice"

static int
setup(void **state)
{
	return store_fx_setup(state, "ph-sts");
}

static int
teardown(void **state)
{
	return store_fx_teardown(state);
}

static int
all_in(const char *s, const char *set)
{
	return strspn(s, set) == strlen(s);
}

static void
test_issue_and_get(void **state)
{
	struct store_fx *f = *state;
	struct sts_cred c, g;
	char token[STS_TOKEN_SIZE];

	assert_int_equal(store_sts_issue(f->st, "deploy", "alice-laptop", ARN,
	    T0, T0 + HOUR, &c, token, sizeof(token)), 0);
	assert_int_equal(strlen(c.akid), 20);
	assert_memory_equal(c.akid, "ASIA", 4);
	assert_true(all_in(c.akid + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"));
	assert_int_equal(strlen(c.secret), 40);
	assert_int_equal(strlen(token), STS_TOKEN_SIZE - 1);
	assert_true(all_in(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
	    "opqrstuvwxyz0123456789+/="));
	assert_int_equal(store_sts_get(f->st, c.akid, &g), 0);
	assert_string_equal(g.akid, c.akid);
	assert_string_equal(g.secret, c.secret);
	assert_string_equal(g.role_name, "deploy");
	assert_string_equal(g.session_name, "alice-laptop");
	assert_string_equal(g.source_arn, ARN);
	assert_true(g.expiry_ms == T0 + HOUR);
	assert_true(g.created_ms == T0);
	assert_int_equal(store_sts_check_token(f->st, c.akid, token), 0);
	/* Two issues never share a key id, secret or token. */
	{
		struct sts_cred c2;
		char t2[STS_TOKEN_SIZE];

		assert_int_equal(store_sts_issue(f->st, "deploy",
		    "alice-laptop", ARN, T0, T0 + HOUR, &c2, t2, sizeof(t2)),
		    0);
		assert_string_not_equal(c2.akid, c.akid);
		assert_string_not_equal(c2.secret, c.secret);
		assert_string_not_equal(t2, token);
		/* Each token belongs to its own key id only. */
		assert_int_equal(store_sts_check_token(f->st, c.akid, t2),
		    PH_ERR_DENIED);
		assert_int_equal(store_sts_check_token(f->st, c2.akid, token),
		    PH_ERR_DENIED);
	}
	assert_int_equal(store_sts_get(f->st, "ASIAAAAAAAAAAAAAAAAA", &g),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_sts_get(f->st, NULL, &g), PH_ERR_NOTFOUND);
}

/* The database holds a 32-byte hash, never the token. */
static void
test_token_hash_only(void **state)
{
	struct store_fx *f = *state;
	struct sts_cred c;
	char token[STS_TOKEN_SIZE];
	sqlite3 *db;
	sqlite3_stmt *s;
	int rows = 0;

	assert_int_equal(store_sts_issue(f->st, "deploy", "s1", ARN, T0,
	    T0 + HOUR, &c, token, sizeof(token)), 0);
	assert_int_equal(sqlite3_open_v2(f->db.path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT token_hash, secret, "
	    "akid, role_name, session_name, source_arn FROM sts_credentials",
	    -1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		int i;

		rows++;
		assert_int_equal(sqlite3_column_bytes(s, 0), 32);
		for (i = 1; i < 6; i++)
			assert_null(strstr((const char *)sqlite3_column_text(s,
			    i), token));
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	assert_int_equal(rows, 1);
}

/* Every near miss is refused; all go through the same hash-and-compare
 * path (CRYPTO_memcmp over fixed-size digests). */
static void
test_token_mismatch(void **state)
{
	struct store_fx *f = *state;
	struct sts_cred c;
	char token[STS_TOKEN_SIZE], t[STS_TOKEN_SIZE + 8];
	size_t n;

	assert_int_equal(store_sts_issue(f->st, "deploy", "s1", ARN, T0,
	    T0 + HOUR, &c, token, sizeof(token)), 0);
	n = strlen(token);
	assert_int_equal(store_sts_check_token(f->st, c.akid, NULL),
	    PH_ERR_DENIED);
	assert_int_equal(store_sts_check_token(f->st, c.akid, ""),
	    PH_ERR_DENIED);
	/* Cut by one, extended by one, first and last characters changed. */
	memcpy(t, token, n + 1);
	t[n - 1] = '\0';
	assert_int_equal(store_sts_check_token(f->st, c.akid, t),
	    PH_ERR_DENIED);
	memcpy(t, token, n);
	t[n] = 'A';
	t[n + 1] = '\0';
	assert_int_equal(store_sts_check_token(f->st, c.akid, t),
	    PH_ERR_DENIED);
	memcpy(t, token, n + 1);
	t[0] = t[0] == 'A' ? 'B' : 'A';
	assert_int_equal(store_sts_check_token(f->st, c.akid, t),
	    PH_ERR_DENIED);
	memcpy(t, token, n + 1);
	t[n - 1] = t[n - 1] == 'A' ? 'B' : 'A';
	assert_int_equal(store_sts_check_token(f->st, c.akid, t),
	    PH_ERR_DENIED);
	/* The right token under another (or no) key id. */
	assert_int_equal(store_sts_check_token(f->st, "ASIAAAAAAAAAAAAAAAAA",
	    token), PH_ERR_DENIED);
	assert_int_equal(store_sts_check_token(f->st, NULL, token),
	    PH_ERR_DENIED);
	assert_int_equal(store_sts_check_token(f->st,
	    "ASIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", token),
	    PH_ERR_DENIED);
	assert_int_equal(store_sts_check_token(f->st, c.akid, token), 0);
}

/* The store keeps the expiry; the caller (api_sts) compares it with the
 * clock. Purging removes only rows expired before the cutoff; issuing
 * purges what expired a day before. */
static void
test_expiry_and_purge(void **state)
{
	struct store_fx *f = *state;
	struct sts_cred old, cur, g;
	char token[STS_TOKEN_SIZE];
	int64_t n = -1;

	assert_int_equal(store_sts_issue(f->st, "deploy", "old", ARN, T0,
	    T0 + 900000, &old, token, sizeof(token)), 0);
	assert_int_equal(store_sts_issue(f->st, "deploy", "cur", ARN, T0,
	    T0 + HOUR, &cur, token, sizeof(token)), 0);
	assert_int_equal(store_sts_get(f->st, old.akid, &g), 0);
	assert_true(g.expiry_ms == T0 + 900000);
	assert_int_equal(store_sts_purge(f->st, T0 + 900000, &n), 0);
	assert_true(n == 0);	/* expiring at the cutoff is not before it */
	assert_int_equal(store_sts_purge(f->st, T0 + 900001, &n), 0);
	assert_true(n == 1);
	assert_int_equal(store_sts_get(f->st, old.akid, &g), PH_ERR_NOTFOUND);
	assert_int_equal(store_sts_get(f->st, cur.akid, &g), 0);
	/* An issue a day and more after cur expired sweeps it. */
	assert_int_equal(store_sts_issue(f->st, "deploy", "new", ARN,
	    T0 + HOUR + STS_PURGE_AFTER_MS + 1,
	    T0 + 2 * HOUR + STS_PURGE_AFTER_MS, &old, token, sizeof(token)),
	    0);
	assert_int_equal(store_sts_get(f->st, cur.akid, &g), PH_ERR_NOTFOUND);
	assert_int_equal(store_sts_get(f->st, old.akid, &g), 0);
	assert_int_equal(store_sts_purge(f->st, T0, NULL), 0);
}

static void
test_revoke_role(void **state)
{
	struct store_fx *f = *state;
	struct sts_cred a, b, g;
	char token[STS_TOKEN_SIZE];

	assert_int_equal(store_sts_issue(f->st, "Deploy", "s", ARN, T0,
	    T0 + HOUR, &a, token, sizeof(token)), 0);
	assert_int_equal(store_sts_issue(f->st, "other", "s", ARN, T0,
	    T0 + HOUR, &b, token, sizeof(token)), 0);
	/* Role names compare as IAM compares them: ignoring case. */
	assert_int_equal(store_sts_revoke_role(f->st, "deploy"), 0);
	assert_int_equal(store_sts_get(f->st, a.akid, &g), PH_ERR_NOTFOUND);
	assert_int_equal(store_sts_get(f->st, b.akid, &g), 0);
	assert_int_equal(store_sts_revoke_role(f->st, NULL), PH_ERR_INVALID);
}

/* Session policies are kept as given, "" for none; an unknown or
 * oversized key id has none to give. */
static void
test_session_policies(void **state)
{
	struct store_fx *f = *state;
	struct sts_cred a, b;
	char token[STS_TOKEN_SIZE], *pol, *arns, big[64];

	assert_int_equal(store_sts_issue_ex(f->st, "deploy", "s", ARN,
	    "{\"Statement\": []}", "[\"arn:aws:iam::aws:policy/P\"]", T0,
	    T0 + HOUR, &a, token, sizeof(token)), 0);
	assert_int_equal(store_sts_issue(f->st, "deploy", "s", ARN, T0,
	    T0 + HOUR, &b, token, sizeof(token)), 0);
	assert_int_equal(store_sts_session_policies(f->st, a.akid, &pol,
	    &arns), 0);
	assert_string_equal(pol, "{\"Statement\": []}");
	assert_string_equal(arns, "[\"arn:aws:iam::aws:policy/P\"]");
	free(pol);
	free(arns);
	assert_int_equal(store_sts_session_policies(f->st, b.akid, &pol,
	    &arns), 0);
	assert_string_equal(pol, "");
	assert_string_equal(arns, "");
	free(pol);
	free(arns);
	assert_int_equal(store_sts_session_policies(f->st,
	    "ASIANOSUCHKEY0000000", &pol, &arns), PH_ERR_NOTFOUND);
	assert_null(pol);
	assert_null(arns);
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_sts_session_policies(f->st, big, &pol, &arns),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_sts_session_policies(f->st, NULL, &pol, &arns),
	    PH_ERR_NOTFOUND);
	/* Revoking the role takes them along. */
	assert_int_equal(store_sts_revoke_role(f->st, "deploy"), 0);
	assert_int_equal(store_sts_session_policies(f->st, a.akid, &pol,
	    &arns), PH_ERR_NOTFOUND);
}

static void
test_bad_arguments(void **state)
{
	struct store_fx *f = *state;
	struct sts_cred c;
	char token[STS_TOKEN_SIZE], small[64], name[80];

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(store_sts_issue(f->st, "", "s", ARN, T0, T0 + HOUR,
	    &c, token, sizeof(token)), PH_ERR_INVALID);
	assert_int_equal(store_sts_issue(f->st, "r", "", ARN, T0, T0 + HOUR,
	    &c, token, sizeof(token)), PH_ERR_INVALID);
	assert_int_equal(store_sts_issue(f->st, "r", name, ARN, T0, T0 + HOUR,
	    &c, token, sizeof(token)), PH_ERR_INVALID);
	assert_int_equal(store_sts_issue(f->st, "r", "s", NULL, T0, T0 + HOUR,
	    &c, token, sizeof(token)), PH_ERR_INVALID);
	assert_int_equal(store_sts_issue(f->st, "r", "s", ARN, T0, T0, &c,
	    token, sizeof(token)), PH_ERR_INVALID);
	assert_int_equal(store_sts_issue(f->st, "r", "s", ARN, T0, T0 + HOUR,
	    &c, NULL, 0), PH_ERR_INVALID);
	/* A token buffer too small gets nothing, and nothing is stored. */
	assert_int_equal(store_sts_issue(f->st, "r", "s", ARN, T0, T0 + HOUR,
	    &c, small, sizeof(small)), PH_ERR_TOOBIG);
	assert_string_equal(small, "");
	assert_string_equal(c.akid, "");
	assert_int_equal(store_sts_purge(f->st, T0 + 2 * HOUR, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_issue_and_get, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_token_hash_only, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_token_mismatch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expiry_and_purge, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_revoke_role, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_policies, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
