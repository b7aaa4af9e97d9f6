/* records: the record endpoint against a real store in a temporary data
 * directory (records_process: everything but the HTTP plumbing): appends
 * and their durability, resends, the 403/409/413/400 answers, /complete,
 * file modes, and garbage paths, queries and bodies. */
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

#include "common/buf.h"
#include "common/err.h"
#include "common/record.h"
#include "server/records.h"
#include "server/server.h"
#include "server/store.h"
#include "server/store_records.h"

#define T0 ((int64_t)1750000000000)
#define INST "mi-0123456789abcdef0"
#define OTHER "mi-0fedcba98765432100"
#define SID "alice-0123456789abcdef0"

struct fx {
	char base[64];
	struct server srv;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct session_rec r;
	char db[128];

	if (f == NULL)
		return -1;
	snprintf(f->base, sizeof(f->base), "/tmp/ph-records-XXXXXX");
	if (mkdtemp(f->base) == NULL)
		return -1;
	snprintf(f->srv.data_dir, sizeof(f->srv.data_dir), "%s", f->base);
	snprintf(db, sizeof(db), "%s/porthole.db", f->base);
	if (store_open(&f->srv.store, db) != 0)
		return -1;
	memset(&r, 0, sizeof(r));
	snprintf(r.session_id, sizeof(r.session_id), SID);
	snprintf(r.target, sizeof(r.target), INST);
	snprintf(r.owner, sizeof(r.owner), "arn:aws:iam::000000000000:"
	    "user/alice");
	snprintf(r.status, sizeof(r.status), "Connected");
	snprintf(r.document_name, sizeof(r.document_name),
	    "SSM-SessionManagerRunShell");
	r.start_ms = T0;
	if (store_session_create(f->srv.store, &r, NULL) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	store_close(f->srv.store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->base);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

struct answer {
	int status;
	long long length;        /* -1: none in the body */
	char type[64];
	int complete;
};

static struct answer
post(struct fx *f, const char *path, const char *query, const char *cn,
    const void *body, size_t len)
{
	struct answer a;
	struct buf resp;
	json_error_t jerr;
	json_t *o, *v;

	memset(&a, 0, sizeof(a));
	buf_init(&resp, 0);
	assert_int_equal(records_process(&f->srv, "POST", path, query, cn,
	    body, len, &a.status, &resp, &a.complete), 0);
	o = json_loadb((const char *)resp.data, resp.len, 0, &jerr);
	assert_non_null(o);
	v = json_object_get(o, "length");
	a.length = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
	v = json_object_get(o, "__type");
	if (json_is_string(v))
		snprintf(a.type, sizeof(a.type), "%s", json_string_value(v));
	json_decref(o);
	buf_free(&resp);
	return a;
}

/* One frame by hand (record.h's layout), so these tests do not lean on
 * the codec they do not test. */
static size_t
frame(uint8_t *out, char type, uint64_t t_us, const char *data)
{
	size_t len = strlen(data), i;

	out[0] = (uint8_t)type;
	for (i = 0; i < 8; i++)
		out[1 + i] = (uint8_t)(t_us >> (56 - 8 * i));
	for (i = 0; i < 4; i++)
		out[9 + i] = (uint8_t)(len >> (24 - 8 * i));
	memcpy(out + RECORD_FRAME_HEAD, data, len);
	return RECORD_FRAME_HEAD + len;
}

/* A small valid record: magic, header, two frames. */
static size_t
sample(uint8_t *out, size_t size)
{
	size_t n;

	n = (size_t)snprintf((char *)out, size, RECORD_MAGIC
	    "{\"version\":1,\"session_id\":\"" SID "\",\"instance_id\":"
	    "\"" INST "\",\"session_type\":\"Standard_Stream\","
	    "\"start_ms\":1750000000000,\"width\":80,\"height\":24,"
	    "\"run_as\":\"ssm-user\"}\n");
	assert_true(n + 64 < size);
	n += frame(out + n, 'o', 1000, "$ ");
	n += frame(out + n, 'i', 2000, "ls\r");
	return n;
}

static void
read_file(struct fx *f, const char *ext, uint8_t *out, size_t size,
    size_t *len)
{
	char path[700];
	FILE *fp;

	assert_int_equal(records_file(&f->srv, SID, ext, path, sizeof(path)),
	    0);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	*len = fread(out, 1, size, fp);
	fclose(fp);
}

static void
test_append_and_resend(void **state)
{
	struct fx *f = *state;
	uint8_t rec[4096], got[4096];
	char path[700], q[64];
	struct answer a;
	struct stat sb;
	size_t n, len;

	n = sample(rec, sizeof(rec));
	a = post(f, "/v1/record/" SID, "offset=0", INST, rec, 10);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.length, 10);
	/* A gap: the agent is told where to resume. */
	snprintf(q, sizeof(q), "offset=%d", 12);
	a = post(f, "/v1/record/" SID, q, INST, rec + 12, n - 12);
	assert_int_equal(a.status, 409);
	assert_int_equal(a.length, 10);
	/* A resend overlapping what is stored: the prefix is skipped. */
	snprintf(q, sizeof(q), "offset=%d", 4);
	a = post(f, "/v1/record/" SID, q, INST, rec + 4, n - 4);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.length, (long long)n);
	/* Entirely old bytes: nothing changes. */
	a = post(f, "/v1/record/" SID, "offset=0", INST, rec, n);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.length, (long long)n);
	read_file(f, "rec", got, sizeof(got), &len);
	assert_int_equal(len, n);
	assert_memory_equal(got, rec, n);

	assert_int_equal(records_file(&f->srv, SID, "rec", path,
	    sizeof(path)), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/records", f->base);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
}

static void
test_refused(void **state)
{
	struct fx *f = *state;
	uint8_t rec[4096], *big;
	struct answer a;
	size_t n;

	n = sample(rec, sizeof(rec));
	/* Another instance, no certificate, an unknown session: 403. */
	a = post(f, "/v1/record/" SID, "offset=0", OTHER, rec, n);
	assert_int_equal(a.status, 403);
	a = post(f, "/v1/record/" SID, "offset=0", NULL, rec, n);
	assert_int_equal(a.status, 403);
	a = post(f, "/v1/record/bob-0123456789abcdef0", "offset=0", INST,
	    rec, n);
	assert_int_equal(a.status, 403);
	a = post(f, "/v1/record/" SID "/complete", "length=0", OTHER, NULL,
	    0);
	assert_int_equal(a.status, 403);
	/* Past the per-request limit. */
	big = calloc(1, RECORDS_REQUEST_MAX + 1);
	assert_non_null(big);
	memcpy(big, rec, n);
	a = post(f, "/v1/record/" SID, "offset=0", INST, big,
	    RECORDS_REQUEST_MAX + 1);
	assert_int_equal(a.status, 413);
	/* Exactly the limit is fine. */
	a = post(f, "/v1/record/" SID, "offset=0", INST, big,
	    RECORDS_REQUEST_MAX);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.length, (long long)RECORDS_REQUEST_MAX);
	free(big);
}

static void
test_complete(void **state)
{
	struct fx *f = *state;
	uint8_t rec[4096];
	struct record_row row;
	struct answer a;
	char q[64];
	size_t n;

	n = sample(rec, sizeof(rec));
	a = post(f, "/v1/record/" SID, "offset=0", INST, rec, n - 3);
	assert_int_equal(a.status, 200);
	snprintf(q, sizeof(q), "length=%zu", n);
	a = post(f, "/v1/record/" SID "/complete", q, INST, NULL, 0);
	assert_int_equal(a.status, 409);
	assert_int_equal(a.length, (long long)(n - 3));
	assert_false(a.complete);
	snprintf(q, sizeof(q), "offset=%zu", n - 3);
	a = post(f, "/v1/record/" SID, q, INST, rec + n - 3, 3);
	assert_int_equal(a.status, 200);
	snprintf(q, sizeof(q), "length=%zu", n);
	a = post(f, "/v1/record/" SID "/complete", q, INST, NULL, 0);
	assert_int_equal(a.status, 200);
	assert_int_equal(a.length, (long long)n);
	assert_true(a.complete);
	assert_int_equal(store_record_get(f->srv.store, SID, &row), 0);
	assert_true(row.complete);
	assert_int_equal(row.length, (long long)n);
	/* Again: the same answer, nothing new to render. */
	a = post(f, "/v1/record/" SID "/complete", q, INST, NULL, 0);
	assert_int_equal(a.status, 200);
	assert_false(a.complete);
	/* A resend of old bytes is fine; new bytes are not. */
	a = post(f, "/v1/record/" SID, "offset=0", INST, rec, n);
	assert_int_equal(a.status, 200);
	snprintf(q, sizeof(q), "offset=%zu", n);
	a = post(f, "/v1/record/" SID, q, INST, rec + 7, 5);
	assert_int_equal(a.status, 400);
}

static void
test_garbage(void **state)
{
	static const char *const bad_paths[] = {
		"/v1/record/", "/v1/record//complete", "/v1/record/" SID "/",
		"/v1/record/" SID "/completed", "/v1/record/" SID "/complete/",
		"/v1/record/..", "/v1/record/.", "/v1/record/a/b/complete",
		"/v1/record/%2e%2e", "/v1/record/a b", "/v1/record/\x01",
		"/v1/record/" SID "?x", NULL,
	};
	static const char *const bad_queries[] = {
		"", "offset=", "offset=-1", "offset=+1", "offset=1x",
		"offset=0&offset=1", "offset=0x10", "length=0",
		"offset=1234567890123456789", "offset= 1", "OFFSET=0",
		"offset=0&", NULL,
	};
	uint8_t rec[4096], junk[64];
	struct answer a;
	struct buf resp;
	char longid[200];
	size_t i;
	int status;

	(void)sample(rec, sizeof(rec));
	for (i = 0; bad_paths[i] != NULL; i++) {
		a = post(*state, bad_paths[i], "offset=0", INST, rec, 20);
		assert_int_equal(a.status, 400);
	}
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	memcpy(longid, "/v1/record/", 11);
	a = post(*state, longid, "offset=0", INST, rec, 20);
	assert_int_equal(a.status, 400);
	for (i = 0; bad_queries[i] != NULL; i++) {
		a = post(*state, "/v1/record/" SID, bad_queries[i], INST,
		    rec, 20);
		assert_int_equal(a.status, 400);
	}
	a = post(*state, "/v1/record/" SID "/complete", "offset=0",
	    INST, NULL, 0);
	assert_int_equal(a.status, 400);
	a = post(*state, "/v1/record/" SID "/complete", "length=0",
	    INST, NULL, 0);
	assert_int_equal(a.status, 400);
	/* Not the magic, and an empty append. */
	memset(junk, 'x', sizeof(junk));
	a = post(*state, "/v1/record/" SID, "offset=0", INST, junk,
	    sizeof(junk));
	assert_int_equal(a.status, 400);
	a = post(*state, "/v1/record/" SID, "offset=0", INST, rec, 0);
	assert_int_equal(a.status, 400);
	/* Not POST. */
	buf_init(&resp, 0);
	assert_int_equal(records_process(&((struct fx *)*state)->srv, "GET",
	    "/v1/record/" SID, "offset=0", INST, NULL, 0, &status, &resp,
	    NULL), 0);
	assert_int_equal(status, 405);
	buf_free(&resp);
}

static int
count_cb(void *arg, const struct record_row *r)
{
	int *n = arg;

	assert_string_equal(r->session_id, SID);
	(*n)++;
	return 0;
}

static int
exists(struct fx *f, const char *ext)
{
	char path[700];
	struct stat sb;

	assert_int_equal(records_file(&f->srv, SID, ext, path, sizeof(path)),
	    0);
	return stat(path, &sb) == 0;
}

/* A complete record waits for rendering (portholed's start finds it);
 * rendering writes .cast and .log; the preferences are kept. */
static void
test_render_pending(void **state)
{
	struct fx *f = *state;
	struct record_prefs p;
	struct record_row row;
	uint8_t rec[4096];
	struct answer a;
	char q[64];
	int n = 0;
	size_t len;

	memset(&p, 0, sizeof(p));
	snprintf(p.bucket, sizeof(p.bucket), "audit-bucket");
	snprintf(p.key_prefix, sizeof(p.key_prefix), "Session-Manager/");
	p.encrypt = 1;
	assert_int_equal(store_record_create(f->srv.store, SID, &p, T0), 0);
	assert_int_equal(store_record_create(f->srv.store, SID, &p, T0),
	    PH_ERR_EXISTS);
	len = sample(rec, sizeof(rec));
	assert_int_equal(records_render_files(&f->srv, SID), PH_ERR_NOTFOUND);
	a = post(f, "/v1/record/" SID, "offset=0", INST, rec, len);
	assert_int_equal(a.status, 200);
	assert_int_equal(store_record_foreach_unrendered(f->srv.store, 10,
	    count_cb, &n), 0);
	assert_int_equal(n, 0);
	snprintf(q, sizeof(q), "length=%zu", len);
	a = post(f, "/v1/record/" SID "/complete", q, INST, NULL, 0);
	assert_int_equal(a.status, 200);
	assert_int_equal(store_record_foreach_unrendered(f->srv.store, 10,
	    count_cb, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(records_render_files(&f->srv, SID), 0);
	assert_true(exists(f, "cast"));
	assert_true(exists(f, "log"));
	assert_false(exists(f, "cast.tmp"));
	assert_int_equal(store_record_set_rendered(f->srv.store, SID), 0);
	n = 0;
	assert_int_equal(store_record_foreach_unrendered(f->srv.store, 10,
	    count_cb, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_record_get(f->srv.store, SID, &row), 0);
	assert_string_equal(row.prefs.bucket, "audit-bucket");
	assert_string_equal(row.prefs.key_prefix, "Session-Manager/");
	assert_true(row.prefs.encrypt);
	assert_true(row.rendered);
	assert_int_equal(store_record_set_rendered(f->srv.store, "nobody"),
	    PH_ERR_NOTFOUND);
}

/* A .rec that is only the magic and garbage: no renders, a clear code. */
static void
test_render_corrupt(void **state)
{
	struct fx *f = *state;
	static const char junk[] = RECORD_MAGIC "{not json\n\x01\x02";
	struct answer a;

	a = post(f, "/v1/record/" SID, "offset=0", INST, junk,
	    sizeof(junk) - 1);
	assert_int_equal(a.status, 200);
	assert_int_equal(records_render_files(&f->srv, SID), PH_ERR_INVALID);
	assert_false(exists(f, "cast"));
	assert_false(exists(f, "log"));
	assert_false(exists(f, "cast.tmp"));
}

/* The preferences' recording inputs, as StartSession keeps them; strict
 * mode has nothing to refuse without a sink or a bucket. */
static void
test_prefs(void **state)
{
	struct fx *f = *state;
	struct record_prefs p;
	json_error_t jerr;
	char why[300];
	json_t *in;

	in = json_loads("{\"s3BucketName\":\"audit\",\"s3KeyPrefix\":"
	    "\"Session-Manager/\",\"s3EncryptionEnabled\":true,"
	    "\"kmsKeyId\":\"alias/sessions\"}", 0, &jerr);
	assert_non_null(in);
	records_prefs_from_inputs(in, &p);
	assert_string_equal(p.bucket, "audit");
	assert_string_equal(p.key_prefix, "Session-Manager/");
	assert_true(p.encrypt);
	assert_string_equal(p.kms_key_id, "alias/sessions");
	json_decref(in);
	in = json_loads("{\"s3BucketName\":7,\"s3EncryptionEnabled\":"
	    "\"true\"}", 0, &jerr);
	records_prefs_from_inputs(in, &p);
	assert_string_equal(p.bucket, "");
	assert_true(p.encrypt);
	json_decref(in);
	records_prefs_from_inputs(NULL, &p);
	assert_string_equal(p.bucket, "");
	assert_false(p.encrypt);
	f->srv.recording_strict = 1;
	snprintf(p.bucket, sizeof(p.bucket), "audit");
	assert_int_equal(records_strict_check(&f->srv, &p, why, sizeof(why)),
	    0);
}

/* Random paths, queries and bodies: every answer is a status the
 * protocol knows, and nothing crashes (ASan builds check more). */
static void
test_fuzz(void **state)
{
	static const char alphabet[] = "/v1recodmplt?=&.%-_0123456789ab\x01 ";
	static const int known[] = { 200, 400, 403, 404, 405, 409, 413 };
	char path[128], query[64];
	uint8_t body[256];
	struct buf resp;
	unsigned seed = 12345;
	int i, j, status, ok;
	size_t n;

	buf_init(&resp, 0);
	for (i = 0; i < 3000; i++) {
		n = (size_t)(rand_r(&seed) % 40);
		snprintf(path, sizeof(path), "%s", i % 3 == 0 ?
		    "/v1/record/" SID : "/v1/record/");
		for (j = 0; j < (int)n && strlen(path) < sizeof(path) - 1;
		    j++) {
			size_t l = strlen(path);

			path[l] = alphabet[rand_r(&seed) %
			    (sizeof(alphabet) - 1)];
			path[l + 1] = '\0';
		}
		n = (size_t)(rand_r(&seed) % 20);
		snprintf(query, sizeof(query), i % 2 ? "offset=" : "");
		for (j = 0; j < (int)n; j++) {
			size_t l = strlen(query);

			query[l] = alphabet[rand_r(&seed) %
			    (sizeof(alphabet) - 1)];
			query[l + 1] = '\0';
		}
		n = (size_t)(rand_r(&seed) % sizeof(body));
		for (j = 0; j < (int)n; j++)
			body[j] = (uint8_t)rand_r(&seed);
		if (i % 5 == 0 && n >= RECORD_MAGIC_LEN)
			memcpy(body, RECORD_MAGIC, RECORD_MAGIC_LEN);
		assert_int_equal(records_process(&((struct fx *)*state)->srv,
		    "POST", path, query, i % 7 ? INST : NULL, body, n,
		    &status, &resp, NULL), 0);
		for (ok = 0, j = 0; j < (int)(sizeof(known) /
		    sizeof(known[0])); j++)
			ok |= status == known[j];
		assert_true(ok);
	}
	buf_free(&resp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_and_resend, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_complete, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_pending, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_render_corrupt, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_prefs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
