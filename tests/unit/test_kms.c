/* kms: the key store and its cryptography on a real kms.db in a temporary
 * directory: round trips, the encryption context, tampered and garbage
 * blobs, the root key (file, environment, passphrase, mismatch), rotation
 * and its recovery, deletion dates, aliases and tags. */
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

#include <jansson.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/err.h"
#include "server/kms.h"

#define T0 ((int64_t)1700000000000)

struct fx {
	char dir[64];
	struct kms *k;
};

static void
fx_path(struct fx *f, const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", f->dir, name);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kms_root_opts o = { NULL, 0 };

	assert_non_null(f);
	unsetenv(KMS_ROOT_KEY_ENV);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_kms.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(kms_root_key_create(f->dir), 0);
	assert_int_equal(kms_open(&f->k, f->dir, &o), 0);
	*state = f;
	return 0;
}

static void
fx_unlink_all(struct fx *f)
{
	static const char *const names[] = { KMS_DB_FILE, KMS_DB_FILE "-wal",
	    KMS_DB_FILE "-shm", KMS_DB_FILE "-journal", KMS_ROOT_KEY_FILE,
	    KMS_ROOT_KEY_FILE ".new", "pass", "old.key" };
	char p[128];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		fx_path(f, names[i], p, sizeof(p));
		unlink(p);
	}
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	kms_close(f->k);
	fx_unlink_all(f);
	rmdir(f->dir);
	unsetenv(KMS_ROOT_KEY_ENV);
	free(f);
	return 0;
}

static void
new_key(struct fx *f, char id[KMS_KEY_ID_SIZE])
{
	struct kms_key_rec r;

	assert_int_equal(kms_key_create(f->k, "d", "{}", NULL, 0, T0, &r), 0);
	snprintf(id, KMS_KEY_ID_SIZE, "%s", r.id);
	assert_int_equal(r.state, KMS_STATE_ENABLED);
	assert_string_equal(r.description, "d");
	kms_key_rec_clear(&r);
}

static json_t *
ctx2(const char *k1, const char *v1, const char *k2, const char *v2)
{
	json_t *o = json_object();

	json_object_set_new(o, k1, json_string(v1));
	json_object_set_new(o, k2, json_string(v2));
	return o;
}

static void
t_round_trip(void **state)
{
	struct fx *f = *state;
	char id[KMS_KEY_ID_SIZE], got[KMS_KEY_ID_SIZE];
	uint8_t plain[KMS_PLAINTEXT_MAX];
	struct buf ct, pt;
	json_t *a, *b;
	size_t n;

	new_key(f, id);
	RAND_bytes(plain, sizeof(plain));
	a = ctx2("purpose", "e2e", "team", "ops");
	/* Same pairs, other insertion order. */
	b = ctx2("team", "ops", "purpose", "e2e");
	for (n = 1; n <= KMS_PLAINTEXT_MAX; n = n * 3 + 1) {
		buf_init(&ct, 0);
		buf_init(&pt, 0);
		assert_int_equal(kms_encrypt(f->k, id, a, plain, n, &ct), 0);
		assert_int_equal(ct.len, n + KMS_BLOB_OVERHEAD);
		assert_int_equal(kms_blob_key_id(ct.data, ct.len, got), 0);
		assert_string_equal(got, id);
		assert_int_equal(kms_decrypt(f->k, ct.data, ct.len, b, got,
		    &pt), 0);
		assert_int_equal(pt.len, n);
		assert_memory_equal(pt.data, plain, n);
		kms_buf_wipe(&pt);
		buf_free(&ct);
	}
	/* Limits. */
	buf_init(&ct, 0);
	assert_int_equal(kms_encrypt(f->k, id, NULL, plain, 0, &ct),
	    PH_ERR_INVALID);
	assert_int_equal(kms_encrypt(f->k, id, NULL, plain,
	    KMS_PLAINTEXT_MAX + 1, &ct), PH_ERR_INVALID);
	assert_int_equal(kms_encrypt(f->k, "not-a-uuid", NULL, plain, 4, &ct),
	    PH_ERR_INVALID);
	assert_int_equal(kms_encrypt(f->k,
	    "00000000-0000-4000-8000-000000000000", NULL, plain, 4, &ct),
	    PH_ERR_NOTFOUND);
	buf_free(&ct);
	json_decref(a);
	json_decref(b);
}

static void
t_context_bound(void **state)
{
	struct fx *f = *state;
	char id[KMS_KEY_ID_SIZE], got[KMS_KEY_ID_SIZE];
	json_t *ctx, *bad[6];
	struct buf ct, pt;
	size_t i;

	new_key(f, id);
	ctx = ctx2("aws:ssm:SessionId", "s-1", "aws:ssm:TargetId", "mi-1");
	bad[0] = NULL;
	bad[1] = json_object();
	bad[2] = ctx2("aws:ssm:SessionId", "s-1", "aws:ssm:TargetId", "mi-2");
	bad[3] = ctx2("aws:ssm:SessionId", "s-1", "aws:ssm:targetid", "mi-1");
	bad[4] = json_deep_copy(ctx);
	json_object_set_new(bad[4], "extra", json_string(""));
	/* Concatenation must not collide: ("ab","c") vs ("a","bc"). */
	bad[5] = ctx2("aws:ssm:SessionIds-1", "", "aws:ssm:TargetId", "mi-1");
	buf_init(&ct, 0);
	assert_int_equal(kms_encrypt(f->k, id, ctx, (const uint8_t *)"hi", 2,
	    &ct), 0);
	for (i = 0; i < 6; i++) {
		buf_init(&pt, 0);
		assert_int_equal(kms_decrypt(f->k, ct.data, ct.len, bad[i], got,
		    &pt), PH_ERR_CRYPTO);
		assert_int_equal(pt.len, 0);
		kms_buf_wipe(&pt);
		json_decref(bad[i]);
	}
	/* No context at all and an empty one are the same. */
	buf_reset(&ct);
	assert_int_equal(kms_encrypt(f->k, id, NULL, (const uint8_t *)"hi", 2,
	    &ct), 0);
	buf_init(&pt, 0);
	bad[0] = json_object();
	assert_int_equal(kms_decrypt(f->k, ct.data, ct.len, bad[0], got, &pt),
	    0);
	json_decref(bad[0]);
	kms_buf_wipe(&pt);
	/* A context value that is not a string. */
	bad[0] = json_pack("{s:i}", "a", 1);
	buf_reset(&ct);
	assert_int_equal(kms_encrypt(f->k, id, bad[0], (const uint8_t *)"hi",
	    2, &ct), PH_ERR_INVALID);
	json_decref(bad[0]);
	buf_free(&ct);
	json_decref(ctx);
}

static void
t_tampered_and_garbage(void **state)
{
	struct fx *f = *state;
	char id[KMS_KEY_ID_SIZE], got[KMS_KEY_ID_SIZE];
	uint8_t junk[KMS_CIPHERTEXT_MAX + 10];
	struct buf ct, pt, cp;
	size_t i;
	int bit, rc;

	new_key(f, id);
	buf_init(&ct, 0);
	assert_int_equal(kms_encrypt(f->k, id, NULL,
	    (const uint8_t *)"secret data", 11, &ct), 0);
	/* Every single-bit change of every byte is refused. */
	for (i = 0; i < ct.len; i++) {
		for (bit = 0; bit < 8; bit += 3) {
			buf_init(&cp, 0);
			buf_init(&pt, 0);
			assert_int_equal(buf_append(&cp, ct.data, ct.len), 0);
			cp.data[i] ^= (uint8_t)(1u << bit);
			rc = kms_decrypt(f->k, cp.data, cp.len, NULL, got, &pt);
			assert_true(rc == PH_ERR_CRYPTO ||
			    rc == PH_ERR_INVALID || rc == PH_ERR_NOTFOUND);
			assert_int_equal(pt.len, 0);
			buf_free(&pt);
			buf_free(&cp);
		}
	}
	/* Truncated and extended. */
	for (i = 0; i < ct.len; i++) {
		buf_init(&pt, 0);
		rc = kms_decrypt(f->k, ct.data, i, NULL, got, &pt);
		assert_true(rc == PH_ERR_CRYPTO || rc == PH_ERR_INVALID);
		buf_free(&pt);
	}
	buf_init(&cp, 0);
	buf_append(&cp, ct.data, ct.len);
	buf_append_u8(&cp, 0);
	buf_init(&pt, 0);
	assert_int_equal(kms_decrypt(f->k, cp.data, cp.len, NULL, got, &pt),
	    PH_ERR_CRYPTO);
	buf_free(&pt);
	buf_free(&cp);
	/* Random garbage of every length up to the limit and beyond. */
	for (i = 0; i < sizeof(junk); i += 1 + i / 4) {
		RAND_bytes(junk, sizeof(junk));
		if (i > 3 && i % 2 == 0)
			memcpy(junk, ct.data, 19);   /* our header and key */
		buf_init(&pt, 0);
		rc = kms_decrypt(f->k, junk, i, NULL, got, &pt);
		assert_true(rc == PH_ERR_CRYPTO || rc == PH_ERR_INVALID ||
		    rc == PH_ERR_NOTFOUND);
		buf_free(&pt);
	}
	assert_int_equal(kms_blob_key_id(NULL, 0, got), PH_ERR_INVALID);
	buf_free(&ct);
}

static void
t_base64(void **state)
{
	static const struct { const char *in; int ok; const char *out; } v[] = {
		{ "", 1, "" }, { "YQ==", 1, "a" }, { "YWI=", 1, "ab" },
		{ "YWJj", 1, "abc" }, { "YQ=", 0, NULL }, { "Y", 0, NULL },
		{ "YQ==YQ==", 0, NULL }, { "Y Q==", 0, NULL },
		{ "YQ==\n", 0, NULL }, { "====", 0, NULL }, { "Y===", 0, NULL },
		{ "YW-j", 0, NULL }, { "YW_j", 0, NULL },
		{ "\xff\xff\xff\xff", 0, NULL },
	};
	struct buf b;
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		buf_init(&b, 64);
		assert_int_equal(kms_b64_decode(v[i].in, strlen(v[i].in), &b),
		    v[i].ok ? 0 : PH_ERR_INVALID);
		if (v[i].ok) {
			assert_int_equal(b.len, strlen(v[i].out));
			assert_memory_equal(b.data, v[i].out, b.len);
		}
		buf_free(&b);
	}
	s = kms_b64_encode((const uint8_t *)"abc", 3);
	assert_string_equal(s, "YWJj");
	free(s);
	/* A bounded buffer refuses what does not fit. */
	buf_init(&b, 2);
	assert_int_equal(kms_b64_decode("YWJj", 4, &b), PH_ERR_TOOBIG);
	buf_free(&b);
}

static void
t_root_key_checks(void **state)
{
	struct fx *f = *state;
	struct kms_root_opts o = { NULL, 0 };
	char id[KMS_KEY_ID_SIZE], got[KMS_KEY_ID_SIZE], path[128];
	struct kms *k2 = NULL;
	struct buf ct, pt;
	struct stat sb;

	new_key(f, id);
	buf_init(&ct, 0);
	assert_int_equal(kms_encrypt(f->k, id, NULL, (const uint8_t *)"k", 1,
	    &ct), 0);
	kms_close(f->k);
	f->k = NULL;
	fx_path(f, KMS_ROOT_KEY_FILE, path, sizeof(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	fx_path(f, KMS_DB_FILE, path, sizeof(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* Never overwritten. */
	assert_int_equal(kms_root_key_create(f->dir), PH_ERR_EXISTS);
	/* One user of the store at a time. */
	assert_int_equal(kms_open(&f->k, f->dir, &o), 0);
	assert_int_equal(kms_open(&k2, f->dir, &o), PH_ERR_AGAIN);
	assert_null(k2);
	assert_int_equal(kms_rotate_root_key(f->dir, &o, NULL), PH_ERR_AGAIN);
	kms_close(f->k);
	f->k = NULL;

	/* A passphrase for a store made with a key file: refused, and the
	 * store is not changed (no salt is added). */
	{
		struct kms_root_opts po = { NULL, 0 };
		char pp[128];
		FILE *fp;

		fx_path(f, "pass", pp, sizeof(pp));
		fp = fopen(pp, "w");
		assert_non_null(fp);
		fputs("a long enough passphrase\n", fp);
		fclose(fp);
		po.passphrase_file = pp;
		assert_int_equal(kms_open(&k2, f->dir, &po), PH_ERR_DENIED);
		assert_int_equal(kms_open(&k2, f->dir, &po), PH_ERR_DENIED);
	}
	/* Another root key: refused. */
	setenv(KMS_ROOT_KEY_ENV, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	    1);
	assert_int_equal(kms_open(&k2, f->dir, &o), PH_ERR_DENIED);
	assert_null(k2);
	setenv(KMS_ROOT_KEY_ENV, "not base64", 1);
	assert_int_equal(kms_open(&k2, f->dir, &o), PH_ERR_INVALID);
	setenv(KMS_ROOT_KEY_ENV, "YWJj", 1);   /* 3 bytes */
	assert_int_equal(kms_open(&k2, f->dir, &o), PH_ERR_INVALID);
	unsetenv(KMS_ROOT_KEY_ENV);

	/* The file's key opens it again, and the old blob decrypts. */
	assert_int_equal(kms_open(&f->k, f->dir, &o), 0);
	buf_init(&pt, 0);
	assert_int_equal(kms_decrypt(f->k, ct.data, ct.len, NULL, got, &pt),
	    0);
	assert_memory_equal(pt.data, "k", 1);
	kms_buf_wipe(&pt);
	buf_free(&ct);

	/* A missing root key file: an error unless create is asked. */
	kms_close(f->k);
	f->k = NULL;
	fx_unlink_all(f);
	assert_int_equal(kms_open(&k2, f->dir, &o), PH_ERR_NOTFOUND);
	fx_unlink_all(f);
	o.create = 1;
	assert_int_equal(kms_open(&f->k, f->dir, &o), 0);
	fx_path(f, KMS_ROOT_KEY_FILE, path, sizeof(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

static void
t_env_and_passphrase(void **state)
{
	struct fx *f = *state;
	struct kms_root_opts o = { NULL, 0 };
	char id[KMS_KEY_ID_SIZE], got[KMS_KEY_ID_SIZE], pass[128];
	struct kms *k2 = NULL;
	struct buf ct, pt;
	FILE *fp;

	kms_close(f->k);
	f->k = NULL;
	fx_unlink_all(f);
	/* Environment key. */
	setenv(KMS_ROOT_KEY_ENV, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	    1);
	assert_int_equal(kms_open(&f->k, f->dir, &o), 0);
	new_key(f, id);
	kms_close(f->k);
	f->k = NULL;
	unsetenv(KMS_ROOT_KEY_ENV);
	fx_unlink_all(f);

	/* Passphrase file. */
	fx_path(f, "pass", pass, sizeof(pass));
	fp = fopen(pass, "w");
	assert_non_null(fp);
	fputs("correct horse battery staple\n", fp);
	fclose(fp);
	o.passphrase_file = pass;
	assert_int_equal(kms_open(&f->k, f->dir, &o), 0);
	new_key(f, id);
	buf_init(&ct, 0);
	assert_int_equal(kms_encrypt(f->k, id, NULL, (const uint8_t *)"pp", 2,
	    &ct), 0);
	kms_close(f->k);
	f->k = NULL;
	assert_int_equal(kms_open(&f->k, f->dir, &o), 0);
	buf_init(&pt, 0);
	assert_int_equal(kms_decrypt(f->k, ct.data, ct.len, NULL, got, &pt),
	    0);
	kms_buf_wipe(&pt);
	kms_close(f->k);
	f->k = NULL;
	/* Another passphrase is refused; so is a short one. */
	fp = fopen(pass, "w");
	fputs("correct horse battery stapler\n", fp);
	fclose(fp);
	assert_int_equal(kms_open(&k2, f->dir, &o), PH_ERR_DENIED);
	fp = fopen(pass, "w");
	fputs("short\n", fp);
	fclose(fp);
	assert_int_equal(kms_open(&k2, f->dir, &o), PH_ERR_INVALID);
	o.passphrase_file = "/nonexistent/pass";
	assert_int_equal(kms_open(&k2, f->dir, &o), PH_ERR_NOTFOUND);

	/* Rotation away from the passphrase to a file key. */
	fp = fopen(pass, "w");
	fputs("correct horse battery staple\n", fp);
	fclose(fp);
	o.passphrase_file = pass;
	assert_int_equal(kms_rotate_root_key(f->dir, &o, NULL), 0);
	o.passphrase_file = NULL;
	assert_int_equal(kms_open(&f->k, f->dir, &o), 0);
	buf_init(&pt, 0);
	assert_int_equal(kms_decrypt(f->k, ct.data, ct.len, NULL, got, &pt),
	    0);
	assert_memory_equal(pt.data, "pp", 2);
	kms_buf_wipe(&pt);
	buf_free(&ct);
}

static int
read_all(const char *path, char *out, size_t size)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	if (fp == NULL)
		return -1;
	n = fread(out, 1, size - 1, fp);
	out[n] = '\0';
	fclose(fp);
	return (int)n;
}

static void
write_all(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	chmod(path, 0600);
}

static void
t_rotation(void **state)
{
	struct fx *f = *state;
	struct kms_root_opts o = { NULL, 0 };
	char id[KMS_KEY_ID_SIZE], got[KMS_KEY_ID_SIZE];
	char path[128], next[128], before[128], after[128];
	struct buf ct[3], pt;
	struct stat sb;
	int i;

	for (i = 0; i < 3; i++) {
		new_key(f, id);
		buf_init(&ct[i], 0);
		assert_int_equal(kms_encrypt(f->k, id, NULL,
		    (const uint8_t *)"rot", 3, &ct[i]), 0);
	}
	kms_close(f->k);
	f->k = NULL;
	fx_path(f, KMS_ROOT_KEY_FILE, path, sizeof(path));
	fx_path(f, KMS_ROOT_KEY_FILE ".new", next, sizeof(next));
	assert_true(read_all(path, before, sizeof(before)) > 40);
	assert_int_equal(kms_rotate_root_key(f->dir, &o, NULL), 0);
	assert_true(read_all(path, after, sizeof(after)) > 40);
	assert_string_not_equal(before, after);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_not_equal(stat(next, &sb), 0);

	/* The old root key no longer opens the store. */
	fx_path(f, "old.key", next, sizeof(next));
	write_all(path, before);
	assert_int_equal(kms_open(&f->k, f->dir, &o), PH_ERR_DENIED);
	/* A rotation that committed but did not rename: finished at open. */
	fx_path(f, KMS_ROOT_KEY_FILE ".new", next, sizeof(next));
	write_all(next, after);
	assert_int_equal(kms_open(&f->k, f->dir, &o), 0);
	assert_true(read_all(path, before, sizeof(before)) > 40);
	assert_string_equal(before, after);
	assert_int_not_equal(stat(next, &sb), 0);
	for (i = 0; i < 3; i++) {
		buf_init(&pt, 0);
		assert_int_equal(kms_decrypt(f->k, ct[i].data, ct[i].len, NULL,
		    got, &pt), 0);
		assert_memory_equal(pt.data, "rot", 3);
		kms_buf_wipe(&pt);
		buf_free(&ct[i]);
	}
	kms_close(f->k);
	f->k = NULL;
	/* A rotation that never committed: its key file is dropped. */
	write_all(next, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
	assert_int_equal(kms_open(&f->k, f->dir, &o), 0);
	assert_int_not_equal(stat(next, &sb), 0);
	/* Rotation with the wrong current key changes nothing. */
	kms_close(f->k);
	f->k = NULL;
	setenv(KMS_ROOT_KEY_ENV, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	    1);
	assert_int_equal(kms_rotate_root_key(f->dir, &o, NULL), PH_ERR_DENIED);
	unsetenv(KMS_ROOT_KEY_ENV);
	assert_true(read_all(path, before, sizeof(before)) > 40);
	assert_string_equal(before, after);
	assert_int_equal(kms_open(&f->k, f->dir, &o), 0);
}

static int
count_key(void *arg, const char *id)
{
	(void)id;
	(*(int *)arg)++;
	return 0;
}

static int
count_alias(void *arg, const struct kms_alias_rec *a)
{
	(void)a;
	(*(int *)arg)++;
	return 0;
}

static void
count_tag(void *arg, const char *k, const char *v)
{
	(void)k;
	(void)v;
	(*(int *)arg)++;
}

static void
t_state_and_purge(void **state)
{
	struct fx *f = *state;
	char id[KMS_KEY_ID_SIZE], id2[KMS_KEY_ID_SIZE], t[KMS_KEY_ID_SIZE];
	struct kms_tag tag = { "a", "1" };
	struct kms_key_rec r;
	int n = 0;

	new_key(f, id);
	new_key(f, id2);
	assert_int_equal(kms_alias_create(f->k, "alias/x", id, T0), 0);
	assert_int_equal(kms_tags_add(f->k, id, &tag, 1), 0);
	assert_int_equal(kms_key_set_state(f->k, id,
	    KMS_STATE_PENDING_DELETION, T0 + 1000, 7), 0);
	assert_int_equal(kms_key_get(f->k, id, &r), 0);
	assert_int_equal(r.state, KMS_STATE_PENDING_DELETION);
	assert_int_equal(r.deletion_ms, T0 + 1000);
	assert_int_equal(r.pending_days, 7);
	kms_key_rec_clear(&r);
	assert_int_equal(kms_purge(f->k, T0 + 999), 0);
	assert_int_equal(kms_purge(f->k, T0 + 1000), 1);
	assert_int_equal(kms_key_get(f->k, id, &r), PH_ERR_NOTFOUND);
	assert_int_equal(kms_alias_target(f->k, "alias/x", t),
	    PH_ERR_NOTFOUND);
	assert_int_equal(kms_tags_foreach(f->k, id, count_tag, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(kms_key_foreach(f->k, 0, 100, count_key, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(kms_key_set_state(f->k, id, KMS_STATE_DISABLED, 0,
	    0), PH_ERR_NOTFOUND);
	assert_int_equal(kms_key_get(f->k, id2, &r), 0);
	kms_key_rec_clear(&r);
	assert_int_equal(kms_key_set_policy(f->k, id2, "{\"a\":1}"), 0);
	assert_int_equal(kms_key_get(f->k, id2, &r), 0);
	assert_string_equal(r.policy, "{\"a\":1}");
	kms_key_rec_clear(&r);
}

static void
t_aliases_and_tags(void **state)
{
	struct fx *f = *state;
	char id[KMS_KEY_ID_SIZE], id2[KMS_KEY_ID_SIZE], t[KMS_KEY_ID_SIZE];
	struct kms_tag tags[KMS_TAGS_MAX + 1];
	char names[KMS_TAGS_MAX + 1][16];
	const char *rm[2] = { "k0", "nope" };
	int i, n;

	new_key(f, id);
	new_key(f, id2);
	assert_int_equal(kms_alias_create(f->k, "alias/a", id, T0), 0);
	assert_int_equal(kms_alias_create(f->k, "alias/a", id2, T0),
	    PH_ERR_EXISTS);
	assert_int_equal(kms_alias_create(f->k, "alias/b", id, T0), 0);
	assert_int_equal(kms_alias_update(f->k, "alias/b", id2, T0 + 1), 0);
	assert_int_equal(kms_alias_update(f->k, "alias/c", id2, T0 + 1),
	    PH_ERR_NOTFOUND);
	assert_int_equal(kms_alias_target(f->k, "alias/b", t), 0);
	assert_string_equal(t, id2);
	n = 0;
	assert_int_equal(kms_alias_foreach(f->k, NULL, 0, 100, count_alias,
	    &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(kms_alias_foreach(f->k, id, 0, 100, count_alias,
	    &n), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(kms_alias_foreach(f->k, NULL, 1, 100, count_alias,
	    &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(kms_alias_delete(f->k, "alias/a"), 0);
	assert_int_equal(kms_alias_delete(f->k, "alias/a"), PH_ERR_NOTFOUND);

	for (i = 0; i <= KMS_TAGS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "k%d", i);
		tags[i].key = names[i];
		tags[i].value = "v";
	}
	assert_int_equal(kms_tags_add(f->k, id, tags, KMS_TAGS_MAX), 0);
	/* One more is too many, and nothing changes. */
	assert_int_equal(kms_tags_add(f->k, id, tags + KMS_TAGS_MAX, 1),
	    PH_ERR_TOOBIG);
	n = 0;
	assert_int_equal(kms_tags_foreach(f->k, id, count_tag, &n), 0);
	assert_int_equal(n, KMS_TAGS_MAX);
	/* Overwriting an existing key is not an addition. */
	tags[0].value = "w";
	assert_int_equal(kms_tags_add(f->k, id, tags, 1), 0);
	assert_int_equal(kms_tags_remove(f->k, id, rm, 2), 0);
	n = 0;
	assert_int_equal(kms_tags_foreach(f->k, id, count_tag, &n), 0);
	assert_int_equal(n, KMS_TAGS_MAX - 1);
	assert_int_equal(kms_key_create(f->k, "", "{}", tags,
	    KMS_TAGS_MAX + 1, T0, NULL), PH_ERR_TOOBIG);
}

static void
t_context_canonical(void **state)
{
	struct buf a, b;
	json_t *x, *y, *big;
	char k[32];
	int i;

	(void)state;
	buf_init(&a, 0);
	buf_init(&b, 0);
	x = json_pack("{s:s, s:s, s:s}", "b", "2", "a", "1", "c", "");
	y = json_pack("{s:s, s:s, s:s}", "c", "", "a", "1", "b", "2");
	assert_int_equal(kms_context_canonical(x, &a), 0);
	assert_int_equal(kms_context_canonical(y, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	json_decref(x);
	json_decref(y);
	buf_reset(&a);
	x = json_array();
	assert_int_equal(kms_context_canonical(x, &a), PH_ERR_INVALID);
	json_decref(x);
	big = json_object();
	for (i = 0; i < 2000; i++) {
		snprintf(k, sizeof(k), "key-%d", i);
		json_object_set_new(big, k, json_string("value"));
	}
	buf_reset(&a);
	assert_int_equal(kms_context_canonical(big, &a), PH_ERR_TOOBIG);
	json_decref(big);
	buf_free(&a);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(t_context_bound, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_tampered_and_garbage, setup,
		    teardown),
		cmocka_unit_test(t_base64),
		cmocka_unit_test_setup_teardown(t_root_key_checks, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_env_and_passphrase, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(t_state_and_purge, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_aliases_and_tags, setup,
		    teardown),
		cmocka_unit_test(t_context_canonical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
