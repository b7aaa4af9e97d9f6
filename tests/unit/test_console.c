/* console: what the web console's HTTP side decides on its own: which
 * file a request path names (traversal, encodings, symbolic links out),
 * Content-Types, the sign-in rate limiter (threshold, window, bounded
 * table), the Origin and CSRF checks, Cookie header parsing, and the
 * console sessions of the store (only a hash of the token kept; ending
 * a session ends the credentials issued under it), and that those
 * credentials authenticate as the IAM user itself (api_sts.c). */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "common/err.h"
#include "server/api_sts.h"
#include "server/authz.h"
#include "server/console.h"
#include "server/server.h"
#include "server/store.h"
#include "server/store_iam.h"
#include "server/store_console.h"
#include "server/store_sts.h"
#include "support/fixture.h"

#define T0 ((int64_t)1700000000000)

/* Now, in ms: a user made now must be older than credentials after it. */
static int64_t
st_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
#define MINUTE ((int64_t)60 * 1000)

/* ---- path resolution ---------------------------------------------------- */

struct tree {
	char top[64];       /* a temporary directory */
	char root[PATH_MAX]; /* top/www, real */
	char secret[PATH_MAX];
};

static void
touch(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int
tree_setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));
	char p[PATH_MAX + 64], www[128];

	if (t == NULL)
		return -1;
	snprintf(t->top, sizeof(t->top), "/tmp/ph-console-XXXXXX");
	if (mkdtemp(t->top) == NULL)
		return -1;
	snprintf(www, sizeof(www), "%s/www", t->top);
	if (mkdir(www, 0700) != 0 || realpath(www, t->root) == NULL)
		return -1;
	snprintf(p, sizeof(p), "%s/sub", t->root);
	if (mkdir(p, 0700) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/index.html", t->root);
	touch(p, "<!doctype html>");
	snprintf(p, sizeof(p), "%s/app.js", t->root);
	touch(p, "1");
	snprintf(p, sizeof(p), "%s/sub/a.css", t->root);
	touch(p, "a{}");
	snprintf(p, sizeof(p), "%s/.hidden", t->root);
	touch(p, "no");
	snprintf(t->secret, sizeof(t->secret), "%s/secret.key", t->top);
	touch(t->secret, "SECRET");
	/* One link out of the directory, one within it. */
	snprintf(p, sizeof(p), "%s/out.txt", t->root);
	if (symlink(t->secret, p) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/in.js", t->root);
	if (symlink("app.js", p) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/updir", t->root);
	if (symlink("..", p) != 0)
		return -1;
	*state = t;
	return 0;
}

static int
tree_teardown(void **state)
{
	struct tree *t = *state;
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->top);
	if (system(cmd) != 0)
		return -1;
	free(t);
	return 0;
}

static void
test_resolve_files(void **state)
{
	struct tree *t = *state;
	char out[PATH_MAX], want[PATH_MAX + 32];

	assert_int_equal(console_resolve(t->root, "", out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "%s/index.html", t->root);
	assert_string_equal(out, want);
	assert_int_equal(console_resolve(t->root, "app.js", out, sizeof(out)),
	    0);
	assert_int_equal(console_resolve(t->root, "sub/a.css", out,
	    sizeof(out)), 0);
	snprintf(want, sizeof(want), "%s/sub/a.css", t->root);
	assert_string_equal(out, want);
	/* A link within the directory is followed. */
	assert_int_equal(console_resolve(t->root, "in.js", out, sizeof(out)),
	    0);
	snprintf(want, sizeof(want), "%s/app.js", t->root);
	assert_string_equal(out, want);
	assert_int_equal(console_resolve(t->root, "missing.js", out,
	    sizeof(out)), PH_ERR_NOTFOUND);
	/* Too small an output. */
	assert_int_equal(console_resolve(t->root, "app.js", out, 8),
	    PH_ERR_TOOBIG);
}

static void
test_resolve_refused(void **state)
{
	static const char *const bad[] = {
		"..", "../secret.key", "sub/../../secret.key", "./app.js",
		".hidden", "sub/.", "sub//a.css", "/etc/passwd", "sub/",
		"%2e%2e/secret.key", "..%2fsecret.key", "a\\..\\b",
		"app.js?x", "app.js#x", "a b", "app.js\n", "\xc3\xa9.js",
		"sub/..", "~root",
	};
	struct tree *t = *state;
	char out[PATH_MAX], longp[700];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = console_resolve(t->root, bad[i], out, sizeof(out));

		if (rc != PH_ERR_INVALID)
			fail_msg("'%s' gave %d", bad[i], rc);
		assert_string_equal(out, "");
	}
	/* Links leading out of the directory. */
	assert_int_equal(console_resolve(t->root, "out.txt", out,
	    sizeof(out)), PH_ERR_INVALID);
	assert_int_equal(console_resolve(t->root, "updir/secret.key", out,
	    sizeof(out)), PH_ERR_INVALID);
	assert_int_equal(console_resolve(t->root, "updir", out, sizeof(out)),
	    PH_ERR_INVALID);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(console_resolve(t->root, longp, out, sizeof(out)),
	    PH_ERR_INVALID);
}

static void
test_content_types(void **state)
{
	(void)state;
	assert_string_equal(console_content_type("/x/index.html"),
	    "text/html; charset=utf-8");
	assert_string_equal(console_content_type("app.js"),
	    "text/javascript; charset=utf-8");
	assert_string_equal(console_content_type("a.css"),
	    "text/css; charset=utf-8");
	assert_string_equal(console_content_type("f.woff2"), "font/woff2");
	assert_string_equal(console_content_type("app.js.map"),
	    "application/json");
	assert_string_equal(console_content_type("README"),
	    "application/octet-stream");
	assert_string_equal(console_content_type("a.js/b"),
	    "application/octet-stream");
	assert_string_equal(console_content_type("x.exe"),
	    "application/octet-stream");
}

/* ---- rate limiter ------------------------------------------------------ */

static void
test_limiter_threshold_and_window(void **state)
{
	struct console_limiter *l;
	int i;

	(void)state;
	assert_int_equal(console_limiter_new(&l, 16), 0);
	for (i = 0; i < CONSOLE_RL_MAX_FAILURES - 1; i++) {
		console_limiter_fail(l, "user:alice", T0 + i * 1000);
		assert_int_equal(console_limiter_blocked(l, "user:alice",
		    T0 + i * 1000), 0);
	}
	console_limiter_fail(l, "user:alice", T0 + 10000);
	/* Blocked for the rest of the window that began at T0. */
	assert_int_equal(console_limiter_blocked(l, "user:alice", T0 + 10000),
	    (unsigned)((CONSOLE_RL_WINDOW_MS - 10000) / 1000));
	assert_true(console_limiter_blocked(l, "user:alice",
	    T0 + CONSOLE_RL_WINDOW_MS - 1) > 0);
	assert_int_equal(console_limiter_blocked(l, "user:alice",
	    T0 + CONSOLE_RL_WINDOW_MS), 0);
	/* Others are not affected. */
	assert_int_equal(console_limiter_blocked(l, "user:bob", T0 + 10000), 0);
	/* After the window, a failure starts a new one. */
	console_limiter_fail(l, "user:alice", T0 + CONSOLE_RL_WINDOW_MS + 1);
	assert_int_equal(console_limiter_blocked(l, "user:alice",
	    T0 + CONSOLE_RL_WINDOW_MS + 1), 0);
	/* Failures spread beyond the window never block. */
	for (i = 0; i < 20; i++) {
		console_limiter_fail(l, "addr:10.0.0.1", T0 + (int64_t)i *
		    CONSOLE_RL_WINDOW_MS);
		assert_int_equal(console_limiter_blocked(l, "addr:10.0.0.1",
		    T0 + (int64_t)i * CONSOLE_RL_WINDOW_MS), 0);
	}
	console_limiter_free(l);
}

static void
test_limiter_clear_and_bad_keys(void **state)
{
	struct console_limiter *l;
	char longkey[CONSOLE_RL_KEY_SIZE + 8];
	int i;

	(void)state;
	assert_int_equal(console_limiter_new(&l, 4), 0);
	for (i = 0; i < CONSOLE_RL_MAX_FAILURES; i++)
		console_limiter_fail(l, "user:carol", T0);
	assert_true(console_limiter_blocked(l, "user:carol", T0) > 0);
	console_limiter_clear(l, "user:carol");
	assert_int_equal(console_limiter_blocked(l, "user:carol", T0), 0);
	/* Empty, NULL and over-long keys are ignored, not stored. */
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	for (i = 0; i < 10; i++) {
		console_limiter_fail(l, "", T0);
		console_limiter_fail(l, NULL, T0);
		console_limiter_fail(l, longkey, T0);
	}
	assert_int_equal(console_limiter_blocked(l, "", T0), 0);
	assert_int_equal(console_limiter_blocked(l, NULL, T0), 0);
	assert_int_equal(console_limiter_blocked(l, longkey, T0), 0);
	console_limiter_clear(l, "never-seen");
	console_limiter_free(l);
	assert_int_equal(console_limiter_new(&l, 0), PH_ERR_INVALID);
	assert_null(l);
	console_limiter_free(NULL);
}

static void
test_limiter_bounded(void **state)
{
	struct console_limiter *l;
	char key[32];
	int i, j;

	(void)state;
	assert_int_equal(console_limiter_new(&l, 8), 0);
	/* A blocked key, then a flood of other names in the same window:
	 * the table stays at 8 entries; the oldest window gives way. */
	for (i = 0; i < CONSOLE_RL_MAX_FAILURES; i++)
		console_limiter_fail(l, "user:victim", T0);
	assert_true(console_limiter_blocked(l, "user:victim", T0) > 0);
	for (i = 0; i < 7; i++) {
		snprintf(key, sizeof(key), "user:n%d", i);
		console_limiter_fail(l, key, T0 + 1000);
	}
	/* 8 slots taken: the victim's is still there. */
	assert_true(console_limiter_blocked(l, "user:victim", T0 + 1000) > 0);
	for (i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "user:flood%d", i);
		for (j = 0; j < CONSOLE_RL_MAX_FAILURES; j++)
			console_limiter_fail(l, key, T0 + 2000 + i);
	}
	/* The newest flood keys hold the table and are blocked. */
	assert_true(console_limiter_blocked(l, "user:flood9999",
	    T0 + 20000) > 0);
	console_limiter_free(l);
}

static void
test_addr_key(void **state)
{
	char k[CONSOLE_RL_KEY_SIZE], k2[CONSOLE_RL_KEY_SIZE];

	(void)state;
	assert_int_equal(console_addr_key("10.1.2.3", k, sizeof(k)), 0);
	assert_string_equal(k, "addr:10.1.2.3");
	assert_int_equal(console_addr_key("2001:db8:1:2:aaaa::1", k,
	    sizeof(k)), 0);
	assert_string_equal(k, "addr:2001:db8:1:2::");
	assert_int_equal(console_addr_key("2001:db8:1:2:ffff:1:2:3", k2,
	    sizeof(k2)), 0);
	assert_string_equal(k, k2);
	assert_int_equal(console_addr_key("2001:db8:1:3::1", k2, sizeof(k2)),
	    0);
	assert_string_not_equal(k, k2);
	assert_int_equal(console_addr_key("::1", k, sizeof(k)), 0);
	assert_string_equal(k, "addr:::");
	assert_int_equal(console_addr_key("", k, sizeof(k)), 0);
	assert_string_equal(k, "addr:");
	assert_int_equal(console_addr_key(NULL, k, sizeof(k)), 0);
	assert_int_equal(console_addr_key("not:an:address", k, sizeof(k)), 0);
	assert_string_equal(k, "addr:not:an:address");
	assert_int_equal(console_addr_key("10.1.2.3", k, 8), PH_ERR_TOOBIG);
}

/* ---- Origin, CSRF, Cookie ---------------------------------------------- */

static void
test_origin(void **state)
{
	(void)state;
	assert_true(console_origin_ok(NULL, "127.0.0.1:8443"));
	assert_true(console_origin_ok(NULL, NULL));
	assert_true(console_origin_ok("https://127.0.0.1:8443",
	    "127.0.0.1:8443"));
	assert_false(console_origin_ok("http://127.0.0.1:8443",
	    "127.0.0.1:8443"));
	assert_false(console_origin_ok("https://127.0.0.1:8444",
	    "127.0.0.1:8443"));
	assert_false(console_origin_ok("https://evil.example",
	    "127.0.0.1:8443"));
	assert_false(console_origin_ok("https://127.0.0.1:8443.evil.example",
	    "127.0.0.1:8443"));
	assert_false(console_origin_ok("https://127.0.0.1:8443/",
	    "127.0.0.1:8443"));
	assert_false(console_origin_ok("null", "127.0.0.1:8443"));
	assert_false(console_origin_ok("", "127.0.0.1:8443"));
	assert_false(console_origin_ok("https://", ""));
	assert_false(console_origin_ok("https://x", NULL));
}

static void
test_csrf(void **state)
{
	(void)state;
	assert_true(console_csrf_ok("abcDEF-_0123", "abcDEF-_0123"));
	assert_false(console_csrf_ok(NULL, "abc"));
	assert_false(console_csrf_ok("abc", NULL));
	assert_false(console_csrf_ok("", ""));
	assert_false(console_csrf_ok("abc", ""));
	assert_false(console_csrf_ok("abd", "abc"));
	assert_false(console_csrf_ok("ab", "abc"));
	assert_false(console_csrf_ok("abcd", "abc"));
	assert_false(console_csrf_ok("ABC", "abc"));
}

static void
test_cookie(void **state)
{
	char v[16];

	(void)state;
	assert_int_equal(console_cookie("porthole_console=tok",
	    "porthole_console", v, sizeof(v)), 0);
	assert_string_equal(v, "tok");
	assert_int_equal(console_cookie("a=1; porthole_console=tok2; b=2",
	    "porthole_console", v, sizeof(v)), 0);
	assert_string_equal(v, "tok2");
	assert_int_equal(console_cookie("a=1;porthole_console=t3 ",
	    "porthole_console", v, sizeof(v)), 0);
	assert_string_equal(v, "t3");
	/* A longer name with the same start, and the name as a value. */
	assert_int_equal(console_cookie("porthole_console2=x; "
	    "y=porthole_console", "porthole_console", v, sizeof(v)),
	    PH_ERR_NOTFOUND);
	assert_string_equal(v, "");
	assert_int_equal(console_cookie("xporthole_console=x",
	    "porthole_console", v, sizeof(v)), PH_ERR_NOTFOUND);
	assert_int_equal(console_cookie("porthole_console", "porthole_console",
	    v, sizeof(v)), PH_ERR_NOTFOUND);
	assert_int_equal(console_cookie("porthole_console=", "porthole_console",
	    v, sizeof(v)), 0);
	assert_string_equal(v, "");
	assert_int_equal(console_cookie(";;; ;", "porthole_console", v,
	    sizeof(v)), PH_ERR_NOTFOUND);
	assert_int_equal(console_cookie("", "porthole_console", v, sizeof(v)),
	    PH_ERR_NOTFOUND);
	assert_int_equal(console_cookie(NULL, "porthole_console", v,
	    sizeof(v)), PH_ERR_NOTFOUND);
	assert_int_equal(console_cookie("porthole_console=0123456789abcdef",
	    "porthole_console", v, sizeof(v)), PH_ERR_TOOBIG);
	/* The first of two wins. */
	assert_int_equal(console_cookie("porthole_console=a; "
	    "porthole_console=b", "porthole_console", v, sizeof(v)), 0);
	assert_string_equal(v, "a");
}

/* ---- console sessions in the store ------------------------------------- */

static int
store_setup(void **state)
{
	return store_fx_setup(state, "ph-console-db");
}

static int
store_teardown(void **state)
{
	return store_fx_teardown(state);
}

/* Does the database file hold these bytes anywhere? */
static int
db_contains(const struct store_fx *f, const char *needle)
{
	char p[160];
	const char *files[2];
	size_t i, n = strlen(needle);
	int found = 0;

	snprintf(p, sizeof(p), "%s-wal", f->db.path);
	files[0] = f->db.path;
	files[1] = p;
	for (i = 0; i < 2 && !found; i++) {
		FILE *fp = fopen(files[i], "rb");
		char *buf;
		long len;

		if (fp == NULL)
			continue;
		fseek(fp, 0, SEEK_END);
		len = ftell(fp);
		fseek(fp, 0, SEEK_SET);
		buf = malloc((size_t)len + 1);
		assert_non_null(buf);
		if (fread(buf, 1, (size_t)len, fp) == (size_t)len)
			found = memmem(buf, (size_t)len, needle, n) != NULL;
		free(buf);
		fclose(fp);
	}
	return found;
}

static void
test_sessions(void **state)
{
	struct store_fx *f = *state;
	struct console_session s, g;
	char token[CONSOLE_TOKEN_SIZE], other[CONSOLE_TOKEN_SIZE];
	char id[CONSOLE_ID_SIZE];

	assert_int_equal(store_console_create(f->st, "alice", "10.0.0.1", T0,
	    T0 + 60 * MINUTE, &s, token, sizeof(token)), 0);
	assert_int_equal(strlen(token), CONSOLE_TOKEN_SIZE - 1);
	assert_int_equal(strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
	    "klmnopqrstuvwxyz0123456789-_"), strlen(token));
	assert_int_equal(strlen(s.csrf), CONSOLE_CSRF_SIZE - 1);
	assert_string_not_equal(s.csrf, token);
	assert_int_equal(store_console_token_id(token, id), 0);
	assert_string_equal(s.id, id);
	/* Only the hash is stored. */
	assert_false(db_contains(f, token));
	assert_true(db_contains(f, id));

	assert_int_equal(store_console_get(f->st, token, T0 + MINUTE, &g), 0);
	assert_string_equal(g.user_name, "alice");
	assert_string_equal(g.csrf, s.csrf);
	assert_string_equal(g.source_ip, "10.0.0.1");
	assert_true(g.expiry_ms == T0 + 60 * MINUTE);
	assert_int_equal(store_console_get(f->st, token, T0 + 60 * MINUTE, &g),
	    PH_ERR_EXPIRED);
	/* Not a token, a cut one, an altered one. */
	assert_int_equal(store_console_get(f->st, "", T0, &g), PH_ERR_NOTFOUND);
	assert_int_equal(store_console_get(f->st, NULL, T0, &g),
	    PH_ERR_NOTFOUND);
	memcpy(other, token, sizeof(other));
	other[10] = '\0';
	assert_int_equal(store_console_get(f->st, other, T0, &g),
	    PH_ERR_NOTFOUND);
	memcpy(other, token, sizeof(other));
	other[0] = other[0] == 'A' ? 'B' : 'A';
	assert_int_equal(store_console_get(f->st, other, T0, &g),
	    PH_ERR_NOTFOUND);
	memcpy(other, token, sizeof(other));
	other[5] = '\'';
	assert_int_equal(store_console_get(f->st, other, T0, &g),
	    PH_ERR_NOTFOUND);
	/* Two sessions differ. */
	assert_int_equal(store_console_create(f->st, "alice", "", T0,
	    T0 + MINUTE, &g, other, sizeof(other)), 0);
	assert_string_not_equal(other, token);
	assert_string_not_equal(g.csrf, s.csrf);
	/* Bad arguments. */
	assert_int_equal(store_console_create(f->st, "", "", T0, T0 + MINUTE,
	    &g, other, sizeof(other)), PH_ERR_INVALID);
	assert_int_equal(store_console_create(f->st, "bob", "", T0, T0, &g,
	    other, sizeof(other)), PH_ERR_INVALID);
	assert_int_equal(store_console_create(f->st, "bob", "", T0, T0 + MINUTE,
	    &g, other, 10), PH_ERR_INVALID);
	assert_int_equal(store_console_delete(f->st, "short"), PH_ERR_INVALID);
}

static void
test_signout_revokes_credentials(void **state)
{
	struct store_fx *f = *state;
	struct console_session s, s2;
	struct sts_cred c, c2, g;
	char token[CONSOLE_TOKEN_SIZE], token2[CONSOLE_TOKEN_SIZE];
	char st1[STS_TOKEN_SIZE], st2[STS_TOKEN_SIZE];

	assert_int_equal(store_console_create(f->st, "alice", "", T0,
	    T0 + 60 * MINUTE, &s, token, sizeof(token)), 0);
	assert_int_equal(store_console_create(f->st, "alice", "", T0,
	    T0 + 60 * MINUTE, &s2, token2, sizeof(token2)), 0);
	assert_int_equal(store_sts_issue_user(f->st, "alice", s.id,
	    "arn:aws:iam::123456789012:user/alice", T0, T0 + 15 * MINUTE, &c,
	    st1, sizeof(st1)), 0);
	assert_memory_equal(c.akid, "ASIA", 4);
	assert_int_equal(store_sts_issue_user(f->st, "alice", s2.id,
	    "arn:aws:iam::123456789012:user/alice", T0, T0 + 15 * MINUTE, &c2,
	    st2, sizeof(st2)), 0);
	assert_int_equal(store_sts_get(f->st, c.akid, &g), 0);
	assert_string_equal(g.user_name, "alice");
	assert_string_equal(g.role_name, "");
	assert_string_equal(g.console_session, s.id);
	assert_int_equal(store_sts_check_token(f->st, c.akid, st1), 0);
	/* Ending one session ends its credentials, not the other's. */
	assert_int_equal(store_console_delete(f->st, s.id), 0);
	assert_int_equal(store_console_get(f->st, token, T0, &s),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_sts_get(f->st, c.akid, &g), PH_ERR_NOTFOUND);
	assert_int_equal(store_sts_check_token(f->st, c.akid, st1),
	    PH_ERR_DENIED);
	assert_int_equal(store_sts_get(f->st, c2.akid, &g), 0);
	assert_int_equal(store_console_get(f->st, token2, T0, &s2), 0);
	/* A user's credentials need a user; a role's still need a role. */
	assert_int_equal(store_sts_issue_user(f->st, "", s2.id, "arn", T0,
	    T0 + MINUTE, &c, st1, sizeof(st1)), PH_ERR_INVALID);
	assert_int_equal(store_sts_issue(f->st, "", "sess", "arn", T0,
	    T0 + MINUTE, &c, st1, sizeof(st1)), PH_ERR_INVALID);
	/* Purge of expired sessions. */
	assert_int_equal(store_console_purge(f->st, T0 + 61 * MINUTE), 0);
	assert_int_equal(store_console_get(f->st, token2, T0, &s2),
	    PH_ERR_NOTFOUND);
}

static int
make_user(struct store *st, const char *name)
{
	struct iam_user_rec u;

	memset(&u, 0, sizeof(u));
	snprintf(u.name, sizeof(u.name), "%s", name);
	snprintf(u.path, sizeof(u.path), "/");
	snprintf(u.arn, sizeof(u.arn), "arn:aws:iam::123456789012:user/%s",
	    name);
	return store_iam_user_create(st, &u);
}

/* The credentials the page gets authenticate as the IAM user itself. */
static void
test_user_credentials_principal(void **state)
{
	struct store_fx *f = *state;
	struct server srv;
	struct principal p;
	struct iam_user_rec u;
	struct sts_cred c;
	char token[STS_TOKEN_SIZE], why[128], saved;
	int64_t now;

	memset(&srv, 0, sizeof(srv));
	srv.store = f->st;
	snprintf(srv.account_id, sizeof(srv.account_id), "123456789012");
	assert_int_equal(make_user(f->st, "alice"), 0);
	assert_int_equal(store_iam_user_get(f->st, "alice", &u), 0);
	now = st_now();
	assert_int_equal(store_sts_issue_user(f->st, "alice", "", u.arn,
	    now, now + 15 * MINUTE, &c, token, sizeof(token)), 0);
	assert_true(api_sts_temporary(c.akid));
	assert_int_equal(api_sts_principal(&srv, c.akid, token, now + 2000,
	    &p), 0);
	assert_int_equal(p.kind, PRINCIPAL_USER);
	assert_string_equal(p.name, "alice");
	assert_string_equal(p.arn, u.arn);
	assert_string_equal(p.user_id, u.user_id);
	assert_string_equal(p.access_key_id, c.akid);
	assert_string_equal(p.role_name, "");
	assert_false(p.is_root_admin);
	assert_true(p.active);
	/* Wrong or missing token, expired. */
	saved = token[3];
	token[3] = saved == 'A' ? 'B' : 'A';
	assert_int_equal(api_sts_principal(&srv, c.akid, token, now + 2000,
	    &p), PH_ERR_DENIED);
	assert_int_equal(api_sts_principal(&srv, c.akid, NULL, now + 2000,
	    &p), PH_ERR_DENIED);
	token[3] = saved;
	assert_int_equal(api_sts_principal(&srv, c.akid, token,
	    now + 15 * MINUTE, &p), PH_ERR_EXPIRED);
	/* The user deleted, then made again: not the same user. */
	assert_int_equal(store_iam_user_delete(f->st, "alice", why,
	    sizeof(why)), 0);
	assert_int_equal(api_sts_principal(&srv, c.akid, token, now + 2000,
	    &p), PH_ERR_DENIED);
	usleep(20000);
	assert_int_equal(make_user(f->st, "alice"), 0);
	assert_int_equal(api_sts_principal(&srv, c.akid, token, now + 2000,
	    &p), PH_ERR_DENIED);
	authz_free(&srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resolve_files, tree_setup,
		    tree_teardown),
		cmocka_unit_test_setup_teardown(test_resolve_refused,
		    tree_setup, tree_teardown),
		cmocka_unit_test(test_content_types),
		cmocka_unit_test(test_limiter_threshold_and_window),
		cmocka_unit_test(test_limiter_clear_and_bad_keys),
		cmocka_unit_test(test_limiter_bounded),
		cmocka_unit_test(test_addr_key),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_csrf),
		cmocka_unit_test(test_cookie),
		cmocka_unit_test_setup_teardown(test_sessions, store_setup,
		    store_teardown),
		cmocka_unit_test_setup_teardown(
		    test_signout_revokes_credentials, store_setup,
		    store_teardown),
		cmocka_unit_test_setup_teardown(
		    test_user_credentials_principal, store_setup,
		    store_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
