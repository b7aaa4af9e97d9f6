/* agent recorder and record spool: the record a session writes (batched,
 * whole frames only, end frame), a write that fails (file size limit as a
 * full disk) leaves a clean record and a clear error, the spool bound,
 * finishing records left by a stopped agent (partial tail, missing end
 * frame, garbage), the acknowledged-offset sidecar, portholed's answers
 * with garbage, and RecordSpoolMaxBytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <uv.h>

#include "agent/record_upload.h"
#include "agent/recorder.h"
#include "agent/state.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/record.h"

static char tmpdir[256];

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ph-test-recorder-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
header(struct record_header *h, const char *id)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->session_id, sizeof(h->session_id), "%s", id);
	snprintf(h->instance_id, sizeof(h->instance_id), "mi-0123456789abcdef0");
	snprintf(h->session_type, sizeof(h->session_type), "Standard_Stream");
	snprintf(h->run_as, sizeof(h->run_as), "ssm-user");
	h->start_ms = 1764892800000LL;
	h->width = 80;
	h->height = 24;
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	p = malloc(n > 0 ? (size_t)n : 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

/* Parse a whole record: every frame complete; the concatenated data of
 * type kind into out (may be NULL); the last frame in *last. */
static int
parse_all(const uint8_t *p, size_t n, char kind, struct buf *out,
    struct record_frame *last)
{
	struct record_header h;
	struct record_reader r;
	struct record_frame f;
	int count = 0;

	record_reader_init(&r, p, n);
	assert_int_equal(record_read_header(&r, &h), 0);
	memset(last, 0, sizeof(*last));
	while (record_read_frame(&r, &f) == 1) {
		if (out != NULL && f.type == kind)
			assert_int_equal(buf_append(out, f.data, f.len), 0);
		*last = f;
		count++;
	}
	assert_int_equal(r.partial, 0);
	assert_int_equal(r.off, n);
	return count;
}

static void
path_of(char *out, size_t n, const char *id, const char *suffix)
{
	snprintf(out, n, "%s/%s%s", tmpdir, id, suffix);
}

static void
test_record_written(void **state)
{
	struct agent_recorder *r, *r2;
	struct record_header h;
	struct record_frame last;
	struct stat sb;
	struct buf out;
	char err[256], path[512];
	uint8_t *p, big[100000];
	size_t n, i;

	(void)state;
	header(&h, "alice-0001");
	path_of(path, sizeof(path), "alice-0001", ".rec");
	assert_int_equal(agent_recorder_open(&r, tmpdir, &h, NULL, err,
	    sizeof(err)), 0);
	/* The header is on disk at once, the file private. */
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_true(sb.st_size > RECORD_MAGIC_LEN);
	/* A second record of the same session is refused. */
	assert_int_not_equal(agent_recorder_open(&r2, tmpdir, &h, NULL, err,
	    sizeof(err)), 0);
	assert_null(r2);
	assert_non_null(strstr(err, "cannot create the session record"));
	assert_int_equal(agent_recorder_close(r, "Terminated", "", -1), 0);
	header(&h, "alice-0002");
	path_of(path, sizeof(path), "alice-0002", ".rec");
	assert_int_equal(agent_recorder_open(&r, tmpdir, &h, NULL, err,
	    sizeof(err)), 0);
	assert_int_equal(stat(path, &sb), 0);
	n = (size_t)sb.st_size;
	assert_int_equal(agent_recorder_frame(r, 'i', "AAFFHHJJ", 8), 0);
	assert_int_equal(agent_recorder_resize(r, 132, 43), 0);
	/* Batched: nothing written yet, and a tick too soon writes none. */
	assert_int_equal(agent_recorder_tick(r), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((size_t)sb.st_size, n);
	usleep((REC_BATCH_MS + 20) * 1000);
	assert_int_equal(agent_recorder_tick(r), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_true((size_t)sb.st_size > n);
	/* A batch past REC_BATCH_BYTES is written at once. */
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(agent_recorder_frame(r, 'o', big, sizeof(big)), 0);
	p = slurp(path, &n);
	buf_init(&out, 0);
	parse_all(p, n, 'o', &out, &last);
	assert_int_equal(out.len, sizeof(big));
	assert_memory_equal(out.data, big, sizeof(big));
	free(p);
	buf_reset(&out);
	assert_int_equal(agent_recorder_frame(r, 'o', "\xff\x00\xfe", 3), 0);
	assert_int_equal(agent_recorder_close(r, "Terminated", "the shell "
	    "exited", 0), 0);
	p = slurp(path, &n);
	parse_all(p, n, 'i', &out, &last);
	assert_int_equal(out.len, 8);
	assert_memory_equal(out.data, "AAFFHHJJ", 8);
	assert_int_equal(last.type, 'm');
	assert_memory_equal(last.data, "{\"event\":\"end\",\"status\":"
	    "\"Terminated\",\"reason\":\"the shell exited\",\"exit_code\":0,"
	    "\"bytes_in\":8,\"bytes_out\":100003}",
	    last.len);
	free(p);
	buf_free(&out);
}

/* A file size limit fails the writes the way a full disk does. */
static void
test_write_fails(void **state)
{
	struct agent_recorder *r;
	struct record_header h;
	struct record_frame last;
	struct rlimit old, lim;
	char err[256], path[512];
	uint8_t chunk[4096], *p;
	size_t n;
	int i, rc = 0;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	header(&h, "bob-0001");
	path_of(path, sizeof(path), "bob-0001", ".rec");
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(agent_recorder_open(&r, tmpdir, &h, NULL, err,
	    sizeof(err)), 0);
	lim = old;
	lim.rlim_cur = 200000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (i = 0; i < 200 && rc == 0; i++)
		rc = agent_recorder_frame(r, 'o', chunk, sizeof(chunk));
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(agent_recorder_error(r), "cannot be written"));
	/* Sticky: later frames fail too. */
	assert_int_not_equal(agent_recorder_frame(r, 'i', "x", 1), 0);
	assert_int_not_equal(agent_recorder_tick(r), 0);
	assert_int_not_equal(agent_recorder_close(r, "Failed", "disk full",
	    -1), 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	/* What is on disk ends on a frame boundary. */
	p = slurp(path, &n);
	assert_true(n <= 200000);
	assert_true(parse_all(p, n, 'o', NULL, &last) > 0);
	free(p);
	/* An uncreatable spool fails the open with a reason. */
	assert_int_not_equal(agent_recorder_open(&r, "/proc/no/such", &h, NULL,
	    err, sizeof(err)), 0);
	assert_non_null(strstr(err, "cannot create"));
}

static void
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void
test_spool_finish(void **state)
{
	struct record_header h;
	struct record_frame last;
	struct buf b;
	char path[512];
	uint8_t *p;
	uint64_t len;
	size_t n, whole;

	(void)state;
	buf_init(&b, 0);
	header(&h, "carol-0001");
	assert_int_equal(record_header_encode(&h, &b), 0);
	assert_int_equal(record_frame_encode(&b, 'o', 5, "hello", 5), 0);
	whole = b.len;
	assert_int_equal(record_frame_encode(&b, 'o', 6, "world", 5), 0);
	/* Killed mid-write: the partial frame goes, an end frame comes. */
	path_of(path, sizeof(path), "carol-0001", ".rec");
	write_file(path, b.data, whole + 9);
	assert_int_equal(rec_spool_finish(path, 0, &len), 0);
	p = slurp(path, &n);
	assert_int_equal(len, n);
	assert_int_equal(parse_all(p, n, 'o', NULL, &last), 2);
	assert_int_equal(last.type, 'm');
	assert_non_null(memmem(last.data, last.len, REC_STOPPED_REASON,
	    strlen(REC_STOPPED_REASON)));
	assert_true(last.t_us == 5);
	free(p);
	/* Finished already: left as it is. */
	assert_int_equal(rec_spool_finish(path, 0, &len), 0);
	assert_int_equal(len, n);
	/* A partial tail already acknowledged is not cut (never below
	 * what portholed has) and gets no end frame after it. */
	write_file(path, b.data, whole + 9);
	assert_int_equal(rec_spool_finish(path, whole + 9, &len), 0);
	assert_int_equal(len, whole + 9);
	/* Garbage, an empty file, a bad frame type: left for a person. */
	write_file(path, "GET / HTTP/1.1\r\n\r\n", 18);
	assert_int_not_equal(rec_spool_finish(path, 0, &len), 0);
	write_file(path, "", 0);
	assert_int_not_equal(rec_spool_finish(path, 0, &len), 0);
	b.data[whole] = 'z';
	write_file(path, b.data, b.len);
	assert_int_not_equal(rec_spool_finish(path, 0, &len), 0);
	assert_int_not_equal(rec_spool_finish("/nonexistent/x.rec", 0, &len),
	    0);
	unlink(path);
	buf_free(&b);
}

static void
test_uploader_recovers_and_bounds(void **state)
{
	struct rec_upload_cfg cfg;
	struct rec_uploader *u;
	struct agent_recorder *r;
	struct record_header h;
	struct buf b;
	char err[256], path[512], spool[400];
	uint8_t chunk[65536];
	uint64_t len;
	int i;

	(void)state;
	snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	assert_int_equal(mkdir(spool, 0700), 0);
	/* Left by a stopped agent: a record, its sidecar, garbage. */
	buf_init(&b, 0);
	header(&h, "dave-0001");
	assert_int_equal(record_header_encode(&h, &b), 0);
	assert_int_equal(record_frame_encode(&b, 'o', 1, "x", 1), 0);
	snprintf(path, sizeof(path), "%s/dave-0001.rec", spool);
	write_file(path, b.data, b.len);
	snprintf(path, sizeof(path), "%s/dave-0001.ack", spool);
	write_file(path, "10\n", 3);
	snprintf(path, sizeof(path), "%s/junk.rec", spool);
	write_file(path, "junk", 4);
	snprintf(path, sizeof(path), "%s/not-a-record.txt", spool);
	write_file(path, "x", 1);

	memset(&cfg, 0, sizeof(cfg));
	cfg.dir = spool;
	cfg.endpoint = "https://127.0.0.1:1";
	cfg.ca_file = cfg.cert_file = cfg.key_file = "/nonexistent";
	cfg.spool_max = (uint64_t)1 << 20;
	cfg.no_thread = 1;
	cfg.endpoint = "http://plain.example";
	assert_int_not_equal(rec_upload_new(&u, &cfg, err, sizeof(err)), 0);
	cfg.endpoint = "https://127.0.0.1:1/some/path";
	assert_int_equal(rec_upload_new(&u, &cfg, err, sizeof(err)), 0);
	assert_int_equal(rec_upload_pending(u), 1);
	/* Finished at start: b plus an end frame, 10 bytes acknowledged. */
	snprintf(path, sizeof(path), "%s/dave-0001.rec", spool);
	assert_int_equal(rec_spool_finish(path, 0, &len), 0);
	assert_true(len > b.len);
	assert_int_equal(rec_upload_unacked(u), len - 10);

	/* Nothing is acknowledged (no worker): past the bound the
	 * recorder says the spool is full; nothing is dropped. */
	header(&h, "dave-0002");
	assert_int_equal(agent_recorder_open(&r, spool, &h, u, err,
	    sizeof(err)), 0);
	assert_int_equal(rec_upload_pending(u), 2);
	memset(chunk, 'y', sizeof(chunk));
	assert_int_equal(agent_recorder_full(r), 0);
	for (i = 0; i < 17; i++)
		assert_int_equal(agent_recorder_frame(r, 'o', chunk,
		    sizeof(chunk)), 0);
	assert_int_equal(agent_recorder_full(r), 1);
	assert_int_equal(agent_recorder_close(r, "Terminated", "", -1), 0);
	assert_true(rec_upload_unacked(u) > 17 * sizeof(chunk));
	rec_upload_free(u);
	buf_free(&b);
}

static void
test_parse_length(void **state)
{
	static const char *bad[] = { "", "{}", "[]", "{\"length\":-1}",
	    "{\"length\":\"5\"}", "{\"length\":1.5}", "length=5", "{\"len",
	    "\xff\xfe", NULL };
	const char *ok = "{\"length\":123456789012,\"x\":1}";
	uint64_t v;
	int i;

	(void)state;
	assert_int_equal(rec_upload_parse_length("{\"length\":0}", 12, &v), 0);
	assert_true(v == 0);
	assert_int_equal(rec_upload_parse_length(ok, strlen(ok), &v), 0);
	assert_true(v == 123456789012ULL);
	for (i = 0; bad[i] != NULL; i++)
		assert_int_not_equal(rec_upload_parse_length(bad[i],
		    strlen(bad[i]), &v), 0);
}

static void
test_spool_max_setting(void **state)
{
	struct agent_state st;
	char err[256];
	const char *base = "{\"InstanceId\":\"mi-1\",\"Endpoint\":"
	    "\"https://h:1\"";
	char text[256];

	(void)state;
	memset(&st, 0, sizeof(st));
	snprintf(text, sizeof(text), "%s}", base);
	assert_int_equal(agent_state_parse(&st, text, strlen(text), err,
	    sizeof(err)), 0);
	assert_true(st.record_spool_max == REC_SPOOL_MAX_DEFAULT);
	snprintf(text, sizeof(text), "%s,\"RecordSpoolMaxBytes\":2097152}",
	    base);
	assert_int_equal(agent_state_parse(&st, text, strlen(text), err,
	    sizeof(err)), 0);
	assert_true(st.record_spool_max == 2097152);
	snprintf(text, sizeof(text), "%s,\"RecordSpoolMaxBytes\":5}", base);
	assert_int_not_equal(agent_state_parse(&st, text, strlen(text), err,
	    sizeof(err)), 0);
	snprintf(text, sizeof(text), "%s,\"RecordSpoolMaxBytes\":\"1G\"}",
	    base);
	assert_int_not_equal(agent_state_parse(&st, text, strlen(text), err,
	    sizeof(err)), 0);
	assert_non_null(strstr(err, "RecordSpoolMaxBytes"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_written),
		cmocka_unit_test(test_write_fails),
		cmocka_unit_test(test_spool_finish),
		cmocka_unit_test(test_uploader_recovers_and_bounds),
		cmocka_unit_test(test_parse_length),
		cmocka_unit_test(test_spool_max_setting),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
