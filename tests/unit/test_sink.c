/* sink: local-only records are delivered when queued and keep their
 * local copy; OutputUrl's choice (transcript first, S3 URL for a bucket);
 * the queue survives a close and reopen; uploads that cannot succeed (no
 * credentials, nothing listening) keep every file, count attempts, back
 * off and say so in sink_status; a file that vanished is reported lost;
 * garbage items, bucket names, prefixes and config.json values are
 * refused; s3's URLs (path-style, virtual-hosted, key encoding) and
 * s3_upload's argument checks.
 *
 * With arguments it is the driver of tests/e2e/test_s3_sink.py (against
 * a real S3 server): see drive_main. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "common/err.h"
#include "common/log.h"
#include "server/audit_sink.h"
#include "server/s3.h"
#include "server/server.h"
#include "server/sink.h"
#include "server/store.h"

struct fx {
	char dir[64];
	char db[128];
	uv_loop_t loop;
	struct server srv;
	struct sink *sink;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ph-sink-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/porthole.db", f->dir);
	if (uv_loop_init(&f->loop) != 0)
		return -1;
	f->srv.loop = &f->loop;
	snprintf(f->srv.data_dir, sizeof(f->srv.data_dir), "%s", f->dir);
	snprintf(f->srv.region, sizeof(f->srv.region), "us-east-1");
	if (store_open(&f->srv.store, f->db) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[200];

	sink_close(f->sink);
	store_close(f->srv.store);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	/* Only the fixture's own mkdtemp directory. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
write_config(struct fx *f, const char *json)
{
	char p[160];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/config.json", f->dir);
	assert_non_null(fp = fopen(p, "w"));
	fputs(json, fp);
	fclose(fp);
	chmod(p, 0600);
}

static void
mkfile(struct fx *f, const char *name, size_t n, char *path, size_t size)
{
	FILE *fp;
	size_t i;

	snprintf(path, size, "%s/%s", f->dir, name);
	assert_non_null(fp = fopen(path, "w"));
	for (i = 0; i < n; i++)
		fputc('a' + (int)(i % 26), fp);
	fclose(fp);
}

static int
exists(const char *p)
{
	struct stat sb;

	return stat(p, &sb) == 0;
}

static void
on_alive(uv_timer_t *t)
{
	(void)t;
}

/* Turn the loop until cond holds or about ms passed. */
static int
run_until(struct fx *f, int (*cond)(struct fx *), int ms)
{
	uv_timer_t alive;
	int i, ok = 0;

	/* The sink's timer does not keep a loop alive (portholed's listener
	 * does): a referenced one stands in for it. */
	uv_timer_init(&f->loop, &alive);
	uv_timer_start(&alive, on_alive, 10, 10);
	for (i = 0; i < ms / 10 && !ok; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		if (!(ok = cond(f)))
			usleep(10000);
	}
	uv_close((uv_handle_t *)&alive, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	return ok || cond(f);
}

static int
is_unhealthy(struct fx *f)
{
	struct sink_status ss;

	sink_status(f->sink, &ss);
	return !ss.healthy;
}

static int
is_depth1_unhealthy(struct fx *f)
{
	struct sink_status ss;

	sink_status(f->sink, &ss);
	return !ss.healthy && ss.depth == 1;
}

static int
is_idle(struct fx *f)
{
	struct sink_status ss;

	sink_status(f->sink, &ss);
	return ss.healthy && ss.depth == 0;
}

static const char SID[] = "alice-0123456789abcdef0";

static void
test_local_only(void **state)
{
	struct fx *f = *state;
	char rec[200], cast[200], log[200], url[300];
	const char *paths[3] = { rec, cast, log };
	struct sink_item it = { SID, "", NULL, 0, NULL, paths, 3 };
	struct sink_status ss;
	int s3 = -1;

	mkfile(f, "a.rec", 100, rec, sizeof(rec));
	mkfile(f, "a.cast", 100, cast, sizeof(cast));
	mkfile(f, "a.log", 100, log, sizeof(log));
	assert_int_equal(sink_open(&f->srv, &f->sink), 0);
	assert_int_equal(sink_output_url(f->sink, SID, url, sizeof(url), &s3),
	    PH_ERR_NOTFOUND);
	assert_int_equal(sink_enqueue(f->sink, &it), 0);
	assert_int_equal(sink_output_url(f->sink, SID, url, sizeof(url), &s3),
	    0);
	assert_string_equal(url, log);
	assert_int_equal(s3, 0);
	sink_status(f->sink, &ss);
	assert_int_equal(ss.depth, 0);
	assert_int_equal(ss.oldest_ms, 0);
	assert_int_equal(ss.healthy, 1);
	assert_string_equal(ss.last_error, "");
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_true(exists(rec) && exists(cast) && exists(log));
	/* Without a transcript the asciicast is the answer. */
	it.session_id = "bob-1";
	it.npaths = 2;
	assert_int_equal(sink_enqueue(f->sink, &it), 0);
	assert_int_equal(sink_output_url(f->sink, "bob-1", url, sizeof(url),
	    &s3), 0);
	assert_string_equal(url, cast);
	/* Too small a buffer is said, not cut. */
	assert_int_equal(sink_output_url(f->sink, SID, url, 8, &s3),
	    PH_ERR_TOOBIG);
	assert_string_equal(url, "");
	/* Reopened: still known. */
	sink_close(f->sink);
	f->sink = NULL;
	assert_int_equal(sink_open(&f->srv, &f->sink), 0);
	assert_int_equal(sink_output_url(f->sink, SID, url, sizeof(url), &s3),
	    0);
	assert_string_equal(url, log);
}

static void
test_garbage(void **state)
{
	struct fx *f = *state;
	char log[200], log2[200], url[300], longid[200];
	const char *paths[2] = { log, log2 };
	const char *dup[2] = { log, log };
	const char *nulls[1] = { NULL };
	struct sink_item it = { SID, "bucket-1", "p/", 0, NULL, paths, 1 };
	struct sink_item bad;
	static const char *const ids[] = { "", ".x", "../x", "a b", "a/b",
	    "a\nb", "a\"b" };
	static const char *const buckets[] = { "ab", "UPPER", "a..b", "-ab",
	    "ab-", "a_b", "a b", "bucket/x",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	struct sink_status ss;
	size_t i;
	int s3;

	mkfile(f, "x.log", 10, log, sizeof(log));
	mkfile(f, "y.log", 10, log2, sizeof(log2));
	assert_int_equal(sink_open(&f->srv, &f->sink), 0);
	assert_int_equal(sink_enqueue(f->sink, NULL), PH_ERR_INVALID);
	assert_int_equal(sink_enqueue(NULL, &it), PH_ERR_INVALID);
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		bad = it;
		bad.session_id = ids[i];
		assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	}
	bad = it;
	bad.session_id = NULL;
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	bad.session_id = longid;
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	for (i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		bad = it;
		bad.bucket = buckets[i];
		assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	}
	bad = it;
	bad.npaths = 0;
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	bad.npaths = 9;
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	bad.npaths = 1;
	bad.paths = NULL;
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	bad.paths = nulls;
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	bad.paths = dup;
	bad.npaths = 2;
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	/* Two .log files would be one object. */
	bad.paths = paths;
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	bad = it;
	bad.key_prefix = "a\x01b/";
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	bad.key_prefix = "p/";
	bad.encrypt = 1;
	bad.kms_key_id = "key\n";
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	bad.kms_key_id = "alias/my key";
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_INVALID);
	bad = it;
	snprintf(url, sizeof(url), "%s/missing.log", f->dir);
	paths[0] = url;
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_NOTFOUND);
	paths[0] = f->dir;   /* a directory */
	assert_int_equal(sink_enqueue(f->sink, &bad), PH_ERR_NOTFOUND);
	/* Nothing of it was queued. */
	sink_status(f->sink, &ss);
	assert_int_equal(ss.depth, 0);
	assert_int_equal(sink_output_url(f->sink, "../x", url, sizeof(url),
	    &s3), PH_ERR_INVALID);
	assert_int_equal(sink_output_url(f->sink, SID, NULL, 0, &s3),
	    PH_ERR_INVALID);
	assert_int_equal(sink_output_url(f->sink, SID, url, sizeof(url),
	    NULL), PH_ERR_NOTFOUND);
	sink_status(NULL, &ss);
	assert_int_equal(ss.healthy, 1);
}

static void
test_no_credentials(void **state)
{
	struct fx *f = *state;
	char log[200], cast[200], url[300];
	const char *paths[2] = { log, cast };
	struct sink_item it = { SID, "my-bucket", "Session-Manager", 1, NULL,
	    paths, 2 };
	struct sink_status ss;
	int s3 = 0;

	write_config(f, "{\"SinkRetryMaxSeconds\": 1}");
	mkfile(f, "s.log", 10, log, sizeof(log));
	mkfile(f, "s.cast", 10, cast, sizeof(cast));
	assert_int_equal(sink_open(&f->srv, &f->sink), 0);
	assert_int_equal(sink_enqueue(f->sink, &it), 0);
	assert_int_equal(sink_output_url(f->sink, SID, url, sizeof(url), &s3),
	    0);
	assert_int_equal(s3, 1);
	assert_string_equal(url, "https://my-bucket.s3.us-east-1.amazonaws.com/"
	    "Session-Manager/alice-0123456789abcdef0.log");
	assert_true(run_until(f, is_unhealthy, 5000));
	sink_status(f->sink, &ss);
	assert_int_equal(ss.depth, 2);
	assert_true(ss.oldest_ms > 0);
	assert_non_null(strstr(ss.last_error, "credentials"));
	assert_true(exists(log) && exists(cast));
	/* The queue outlives the process. */
	sink_close(f->sink);
	f->sink = NULL;
	assert_int_equal(sink_open(&f->srv, &f->sink), 0);
	sink_status(f->sink, &ss);
	assert_int_equal(ss.depth, 2);
	assert_int_equal(ss.healthy, 1);   /* nothing tried yet */
	/* A file gone before its upload is reported, not retried forever. */
	assert_int_equal(unlink(cast), 0);
	assert_true(run_until(f, is_depth1_unhealthy, 8000));
	sink_status(f->sink, &ss);
	assert_int_equal(ss.depth, 1);
	assert_true(exists(log));
	/* Its last file gone too: nothing waits, nothing is failing. */
	assert_int_equal(unlink(log), 0);
	assert_true(run_until(f, is_idle, 5000));
	sink_status(f->sink, &ss);
	assert_string_equal(ss.last_error, "");
}

/* Nothing listens on the endpoint: curl's error, backoff, files kept. */
static void
test_unreachable(void **state)
{
	struct fx *f = *state;
	char log[200], url[300];
	const char *paths[1] = { log };
	struct sink_item it = { SID, "bkt", "", 0, NULL, paths, 1 };
	struct sink_status ss;
	uv_tcp_t probe;
	struct sockaddr_in sa;
	int len = sizeof(sa), s3, port;
	char cfg[400];

	/* A loopback port that was free a moment ago. */
	assert_int_equal(uv_tcp_init(&f->loop, &probe), 0);
	uv_ip4_addr("127.0.0.1", 0, &sa);
	assert_int_equal(uv_tcp_bind(&probe, (struct sockaddr *)&sa, 0), 0);
	assert_int_equal(uv_tcp_getsockname(&probe, (struct sockaddr *)&sa,
	    &len), 0);
	port = ntohs(sa.sin_port);
	uv_close((uv_handle_t *)&probe, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	snprintf(cfg, sizeof(cfg), "{\"S3Endpoint\": \"http://127.0.0.1:%d/\","
	    " \"S3AccessKeyId\": \"AKIDEXAMPLE\", \"S3SecretAccessKey\": "
	    "\"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\", \"S3Region\": "
	    "\"eu-west-1\", \"SinkRetryMinSeconds\": 1, "
	    "\"SinkRetryMaxSeconds\": 2}", port);
	write_config(f, cfg);
	mkfile(f, "u.log", 10, log, sizeof(log));
	assert_int_equal(sink_open(&f->srv, &f->sink), 0);
	assert_int_equal(sink_enqueue(f->sink, &it), 0);
	snprintf(cfg, sizeof(cfg), "http://127.0.0.1:%d/bkt/%s.log", port, SID);
	assert_int_equal(sink_output_url(f->sink, SID, url, sizeof(url), &s3),
	    0);
	assert_string_equal(url, cfg);
	assert_int_equal(s3, 1);
	assert_true(run_until(f, is_unhealthy, 10000));
	sink_status(f->sink, &ss);
	assert_int_equal(ss.depth, 1);
	assert_non_null(strstr(ss.last_error, "onnect"));
	assert_null(strstr(ss.last_error, "wJalr"));
	assert_true(exists(log));
}

static void
test_bad_config(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {
		"{\"S3Endpoint\": \"ftp://x\"}",
		"{\"S3Endpoint\": \"http://\"}",
		"{\"S3Endpoint\": \"http://h/path\"}",
		"{\"S3Endpoint\": \"http://u:p@h\"}",
		"{\"S3Endpoint\": 5}",
		"{\"S3Region\": \"Bad Region\"}",
		"{\"S3Region\": \"\"}",
		"{\"S3PathStyle\": \"yes\"}",
		"{\"S3TimeoutSeconds\": 0}",
		"{\"S3TimeoutSeconds\": \"5\"}",
		"{\"S3AccessKeyId\": \"AKID\"}",
		"{\"S3SecretAccessKey\": \"secret\"}",
		"{\"S3AccessKeyId\": \"AK ID\", \"S3SecretAccessKey\": \"s\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_config(f, bad[i]);
		assert_int_equal(sink_open(&f->srv, &f->sink), PH_ERR_INVALID);
		assert_null(f->sink);
	}
	/* Not JSON at all: the defaults (like the rest of portholed). */
	write_config(f, "{not json");
	assert_int_equal(sink_open(&f->srv, &f->sink), 0);
}

static void
test_urls(void **state)
{
	struct s3_config c;
	char url[300], why[200];
	json_t *o;

	(void)state;
	o = json_loads("{\"S3Endpoint\": \"https://minio.example:9000\"}", 0,
	    NULL);
	assert_int_equal(s3_config_load(&c, o, "eu-central-1", why,
	    sizeof(why)), 0);
	json_decref(o);
	assert_int_equal(c.path_style, 1);
	assert_string_equal(c.region, "eu-central-1");
	assert_int_equal(s3_object_url(&c, "b.1", "a b/ü+x.log", url,
	    sizeof(url)), 0);
	assert_string_equal(url,
	    "https://minio.example:9000/b.1/a%20b/%C3%BC%2Bx.log");
	c.path_style = 0;
	assert_int_equal(s3_object_url(&c, "bkt", "k", url, sizeof(url)), 0);
	assert_string_equal(url, "https://bkt.minio.example:9000/k");
	assert_int_equal(s3_config_load(&c, NULL, NULL, why, sizeof(why)), 0);
	assert_int_equal(c.path_style, 0);
	assert_int_equal(s3_object_url(&c, "bkt", "k", url, sizeof(url)), 0);
	assert_string_equal(url, "https://bkt.s3.us-east-1.amazonaws.com/k");
	assert_int_equal(s3_object_url(&c, "bkt", "k", url, 10), PH_ERR_TOOBIG);
	assert_int_equal(s3_object_url(&c, "BKT", "k", url, sizeof(url)),
	    PH_ERR_INVALID);
	assert_int_equal(s3_object_url(&c, "bkt", "", url, sizeof(url)),
	    PH_ERR_INVALID);
	assert_true(s3_bucket_valid("my.bucket-1"));
	assert_false(s3_bucket_valid(NULL));
	assert_false(s3_bucket_valid(".ab"));
}

/* s3_upload's own checks, before any I/O. */
static void
test_upload_args(void **state)
{
	struct s3_object ob = { "bkt", "k", S3_SSE_NONE, NULL, NULL };
	struct s3_config c;
	char err[128];

	(void)state;
	assert_int_equal(s3_config_load(&c, NULL, "us-east-1", err,
	    sizeof(err)), 0);
	assert_int_equal(s3_upload(&c, &ob, "/nonexistent", NULL, err,
	    sizeof(err)), PH_ERR_STATE);
	assert_non_null(strstr(err, "credentials"));
	snprintf(c.access_key, sizeof(c.access_key), "AKID");
	snprintf(c.secret_key, sizeof(c.secret_key), "secret");
	assert_int_equal(s3_upload(&c, &ob, "/nonexistent", NULL, err,
	    sizeof(err)), PH_ERR_NOTFOUND);
	ob.bucket = "B";
	assert_int_equal(s3_upload(&c, &ob, "/x", NULL, err, sizeof(err)),
	    PH_ERR_INVALID);
	ob.bucket = "bkt";
	ob.key = "";
	assert_int_equal(s3_upload(&c, &ob, "/x", NULL, NULL, 0),
	    PH_ERR_INVALID);
	assert_int_equal(s3_upload(NULL, &ob, "/x", NULL, err, sizeof(err)),
	    PH_ERR_INVALID);
	s3_config_clear(&c);
	assert_string_equal(c.secret_key, "");
}

/* ---- the e2e test's driver ----------------------------------------------- */

static volatile sig_atomic_t drive_stop;

static void
on_term(int sig)
{
	(void)sig;
	drive_stop = 1;
}

static void
print_status(struct sink *s)
{
	struct sink_status ss;
	json_t *o;
	char *txt;

	sink_status(s, &ss);
	o = json_pack("{s:I, s:I, s:b, s:s}", "depth", (json_int_t)ss.depth,
	    "oldest_ms", (json_int_t)ss.oldest_ms, "healthy", ss.healthy,
	    "last_error", ss.last_error);
	txt = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	printf("%s\n", txt != NULL ? txt : "{}");
	fflush(stdout);
	free(txt);
	json_decref(o);
}

/* An audit file closed by rotation (audit_sink.c): a link queued as
 * audit-DAY.N, the trail's file kept; told again, nothing new. */
static void
test_audit_file(void **state)
{
	struct fx *f = *state;
	struct audit_sink as;
	struct sink_status ss;
	char path[300], link_path[300], url[300];
	json_t *o;
	int s3 = 0;

	snprintf(path, sizeof(path), "%s/audit", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	mkfile(f, "audit/audit-2026-12-04.3.jsonl", 500, path, sizeof(path));
	assert_int_equal(sink_open(&f->srv, &f->sink), 0);
	f->srv.sink = f->sink;
	o = json_loads("{\"AuditS3Bucket\":\"audit-bkt\","
	    "\"AuditS3KeyPrefix\":\"trail\"}", 0, NULL);
	audit_sink_config(&as, &f->srv, o);
	json_decref(o);
	audit_sink_rotated(&as, path);
	snprintf(link_path, sizeof(link_path), "%s/" AUDIT_OUTBOX_SUBDIR
	    "/audit-2026-12-04.3.jsonl", f->dir);
	/* No credentials: the upload fails, the link waits. */
	assert_true(exists(path) && exists(link_path));
	assert_int_equal(sink_output_url(f->sink, "audit-2026-12-04.3", url,
	    sizeof(url), &s3), 0);
	assert_int_equal(s3, 1);
	assert_non_null(strstr(url, "audit-bkt"));
	assert_non_null(strstr(url, "/trail/audit-2026-12-04.3.jsonl"));
	sink_status(f->sink, &ss);
	assert_int_equal(ss.depth, 1);
	/* Told again (a restart): still one item, no error. */
	audit_sink_rotated(&as, path);
	sink_status(f->sink, &ss);
	assert_int_equal(ss.depth, 1);
	/* Not an audit file's name: refused, nothing queued. */
	mkfile(f, "audit/other.txt", 5, path, sizeof(path));
	audit_sink_rotated(&as, path);
	sink_status(f->sink, &ss);
	assert_int_equal(ss.depth, 1);
	f->srv.sink = NULL;
}

/* test_sink drive DATA_DIR SECONDS [SESSION BUCKET PREFIX ENCRYPT KMS
 * FILE...]: open DATA_DIR's store and sink, queue the item if given, and
 * run until the queue is empty, SECONDS passed or SIGTERM; a status line
 * (JSON) whenever it changes and at the end. */
static int
drive_main(int argc, char **argv)
{
	struct sink_status ss, last;
	struct sink_item it;
	struct server srv;
	uv_timer_t alive;
	char db[600];
	time_t end;
	int rc;

	if (argc < 4)
		return 2;
	memset(&srv, 0, sizeof(srv));
	memset(&last, 0, sizeof(last));
	last.depth = (size_t)-1;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	srv.loop = uv_default_loop();
	snprintf(srv.data_dir, sizeof(srv.data_dir), "%s", argv[2]);
	snprintf(srv.region, sizeof(srv.region), "us-east-1");
	snprintf(db, sizeof(db), "%s/porthole.db", argv[2]);
	if (store_open(&srv.store, db) != 0)
		return 1;
	if ((rc = sink_open(&srv, &srv.sink)) != 0) {
		store_close(srv.store);
		return 1;
	}
	if (argc >= 10) {
		memset(&it, 0, sizeof(it));
		it.session_id = argv[4];
		it.bucket = argv[5];
		it.key_prefix = argv[6];
		it.encrypt = atoi(argv[7]);
		it.kms_key_id = argv[8];
		it.paths = (const char *const *)(argv + 9);
		it.npaths = (size_t)(argc - 9);
		if ((rc = sink_enqueue(srv.sink, &it)) != 0) {
			printf("{\"enqueue\": \"%s\"}\n", ph_strerror(rc));
			sink_close(srv.sink);
			store_close(srv.store);
			uv_loop_close(srv.loop);
			return 1;
		}
	}
	end = time(NULL) + atoi(argv[3]);
	uv_timer_init(srv.loop, &alive);
	uv_timer_start(&alive, on_alive, 20, 20);
	while (!drive_stop && time(NULL) < end) {
		uv_run(srv.loop, UV_RUN_NOWAIT);
		sink_status(srv.sink, &ss);
		if (ss.depth != last.depth || ss.healthy != last.healthy) {
			print_status(srv.sink);
			last = ss;
		}
		if (ss.depth == 0)
			break;
		usleep(20000);
	}
	print_status(srv.sink);
	sink_close(srv.sink);
	uv_close((uv_handle_t *)&alive, NULL);
	uv_run(srv.loop, UV_RUN_NOWAIT);
	store_close(srv.store);
	uv_loop_close(srv.loop);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_local_only, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_credentials, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_config, setup,
		    teardown),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_upload_args),
	};
	FILE *quiet = NULL;
	int rc;

	if (argc > 1 && strcmp(argv[1], "drive") == 0)
		return drive_main(argc, argv);
	/* The failures these tests cause are logged; SINK_DEBUG shows them. */
	if (getenv("SINK_DEBUG") != NULL)
		log_set_level(LOG_DEBUG);
	else
		log_set_output(quiet = fopen("/dev/null", "w"));
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	log_set_output(NULL);
	if (quiet != NULL)
		fclose(quiet);
	return rc;
}
