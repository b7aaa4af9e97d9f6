/* store_commands: a command and its invocations round-trip through the
 * store; status and result updates; queries by command, instance, status,
 * document and time, with offset and limit; the active set after a
 * reopen; bad input refused; the alarm configuration kept beside. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/err.h"
#include "server/store.h"
#include "server/store_commands.h"
#include "support/fixture.h"

#define T0 ((int64_t)1700000000000)

static int
setup(void **state)
{
	return store_fx_setup(state, "ph-stcmd");
}

static int
teardown(void **state)
{
	return store_fx_teardown(state);
}

/* A command with n invocations on mi-000...0<i>. */
static void
make_command(struct store *st, const char *id, const char *doc,
    int64_t when, size_t n)
{
	struct invocation_rec inv[4];
	struct command_rec c;
	char names[4][32];
	size_t i;

	assert_true(n <= 4);
	memset(&c, 0, sizeof(c));
	memset(inv, 0, sizeof(inv));
	snprintf(c.command_id, sizeof(c.command_id), "%s", id);
	c.document_name = (char *)doc;
	snprintf(c.document_version, sizeof(c.document_version), "1");
	c.comment = (char *)"a comment";
	c.parameters_json = (char *)"{\"commands\":[\"echo hi\"]}";
	c.content_json = (char *)"{\"schemaVersion\":\"2.2\"}";
	c.owner_arn = (char *)"arn:aws:iam::123456789012:user/alice";
	c.requested_ms = when;
	c.expires_ms = when + 3600000;
	c.timeout_seconds = 3600;
	snprintf(c.status, sizeof(c.status), "Pending");
	c.target_count = (int)n;
	c.output_s3_bucket = (char *)"bucket";
	for (i = 0; i < n; i++) {
		snprintf(inv[i].command_id, sizeof(inv[i].command_id), "%s",
		    id);
		snprintf(inv[i].instance_id, sizeof(inv[i].instance_id),
		    "mi-0000000000000000%zu", i);
		snprintf(names[i], sizeof(names[i]), "host%zu", i);
		inv[i].instance_name = names[i];
		/* reverse: seq decides the order */
		inv[i].seq = (int)(n - 1 - i);
		inv[i].requested_ms = when;
		inv[i].response_code = -1;
	}
	assert_int_equal(store_command_create(st, &c, inv, n), 0);
}

#define ID1 "11111111-1111-4111-8111-111111111111"
#define ID2 "22222222-2222-4222-8222-222222222222"
#define ID3 "33333333-3333-4333-8333-333333333333"

static void
test_roundtrip(void **state)
{
	struct store_fx *f = *state;
	struct command_rec c;
	struct invocation_rec v;

	make_command(f->st, ID1, "AWS-RunShellScript", T0, 2);
	assert_int_equal(store_command_get(f->st, ID1, &c), 0);
	assert_string_equal(c.command_id, ID1);
	assert_string_equal(c.document_name, "AWS-RunShellScript");
	assert_string_equal(c.document_version, "1");
	assert_string_equal(c.comment, "a comment");
	assert_string_equal(c.parameters_json, "{\"commands\":[\"echo hi\"]}");
	assert_string_equal(c.targets_json, "[]");         /* NULL: [] */
	assert_string_equal(c.instance_ids_json, "[]");
	assert_string_equal(c.max_concurrency, "50");      /* defaults */
	assert_string_equal(c.max_errors, "0");
	assert_string_equal(c.status, "Pending");
	assert_string_equal(c.status_details, "Pending");
	assert_int_equal(c.target_count, 2);
	assert_int_equal(c.requested_ms, T0);
	assert_int_equal(c.expires_ms, T0 + 3600000);
	assert_string_equal(c.output_s3_bucket, "bucket");
	assert_null(c.output_s3_prefix);
	assert_null(c.notification_json);
	command_rec_clear(&c);

	assert_int_equal(store_invocation_get(f->st, ID1,
	    "mi-00000000000000001", &v), 0);
	assert_string_equal(v.instance_name, "host1");
	assert_int_equal(v.seq, 0);
	assert_string_equal(v.status, "Pending");
	assert_int_equal(v.response_code, -1);
	assert_string_equal(v.plugins_json, "[]");
	assert_string_equal(v.stdout_text, "");
	assert_null(v.stdout_url);

	/* results */
	snprintf(v.status, sizeof(v.status), "Success");
	snprintf(v.status_details, sizeof(v.status_details), "Success");
	v.delivered_ms = T0 + 10;
	v.started_ms = T0 + 20;
	v.ended_ms = T0 + 30;
	v.response_code = 0;
	free(v.stdout_text);
	v.stdout_text = strdup("hi\n");
	v.stdout_url = strdup("https://b.s3/x");
	free(v.plugins_json);
	v.plugins_json = strdup("[{\"Name\":\"runShellScript\"}]");
	assert_int_equal(store_invocation_update(f->st, &v), 0);
	invocation_rec_clear(&v);
	assert_int_equal(store_invocation_get(f->st, ID1,
	    "mi-00000000000000001", &v), 0);
	assert_string_equal(v.status, "Success");
	assert_int_equal(v.ended_ms, T0 + 30);
	assert_int_equal(v.response_code, 0);
	assert_string_equal(v.stdout_text, "hi\n");
	assert_string_equal(v.stdout_url, "https://b.s3/x");
	assert_string_equal(v.plugins_json, "[{\"Name\":\"runShellScript\"}]");
	assert_string_equal(v.instance_name, "host1");  /* not written */
	invocation_rec_clear(&v);

	assert_int_equal(store_invocation_get(f->st, ID1, "mi-nope", &v),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_command_get(f->st, ID2, &c), PH_ERR_NOTFOUND);
	command_rec_clear(&c);
	memset(&v, 0, sizeof(v));
	snprintf(v.command_id, sizeof(v.command_id), "%s", ID2);
	snprintf(v.instance_id, sizeof(v.instance_id), "mi-x");
	assert_int_equal(store_invocation_update(f->st, &v), PH_ERR_NOTFOUND);
}

static void
test_status(void **state)
{
	struct store_fx *f = *state;
	struct command_rec c;

	make_command(f->st, ID1, "AWS-RunShellScript", T0, 1);
	assert_int_equal(store_command_get(f->st, ID1, &c), 0);
	snprintf(c.status, sizeof(c.status), "Success");
	snprintf(c.status_details, sizeof(c.status_details), "Success");
	c.completed_count = 1;
	c.error_count = 2;
	c.delivery_timed_out_count = 3;
	assert_int_equal(store_command_set_status(f->st, &c), 0);
	command_rec_clear(&c);
	assert_int_equal(store_command_get(f->st, ID1, &c), 0);
	assert_string_equal(c.status, "Success");
	assert_int_equal(c.completed_count, 1);
	assert_int_equal(c.error_count, 2);
	assert_int_equal(c.delivery_timed_out_count, 3);
	snprintf(c.command_id, sizeof(c.command_id), "%s", ID2);
	assert_int_equal(store_command_set_status(f->st, &c), PH_ERR_NOTFOUND);
	command_rec_clear(&c);
}

struct collect {
	char ids[8][128];
	int n;
	int stop_after;
};

static int
cmd_cb(void *arg, const struct command_rec *c)
{
	struct collect *k = arg;

	if (k->n < 8)
		snprintf(k->ids[k->n++], sizeof(k->ids[0]), "%s",
		    c->command_id);
	return k->stop_after != 0 && k->n >= k->stop_after;
}

static int
inv_cb(void *arg, const struct invocation_rec *v)
{
	struct collect *k = arg;

	if (k->n < 8)
		snprintf(k->ids[k->n++], sizeof(k->ids[0]), "%s/%s",
		    v->command_id, v->instance_id);
	return 0;
}

static void
test_queries(void **state)
{
	struct store_fx *f = *state;
	struct command_query q;
	struct command_rec c;
	struct collect k;

	make_command(f->st, ID1, "AWS-RunShellScript", T0, 2);
	make_command(f->st, ID2, "Custom", T0 + 1000, 1);
	make_command(f->st, ID3, "AWS-RunShellScript", T0 + 2000, 3);

	/* all, newest first */
	memset(&q, 0, sizeof(q));
	memset(&k, 0, sizeof(k));
	assert_int_equal(store_command_query(f->st, &q, cmd_cb, &k), 0);
	assert_int_equal(k.n, 3);
	assert_string_equal(k.ids[0], ID3);
	assert_string_equal(k.ids[2], ID1);
	/* offset and limit */
	q.offset = 1;
	q.limit = 1;
	memset(&k, 0, sizeof(k));
	assert_int_equal(store_command_query(f->st, &q, cmd_cb, &k), 0);
	assert_int_equal(k.n, 1);
	assert_string_equal(k.ids[0], ID2);
	/* the callback stops it */
	memset(&q, 0, sizeof(q));
	memset(&k, 0, sizeof(k));
	k.stop_after = 1;
	assert_int_equal(store_command_query(f->st, &q, cmd_cb, &k), 0);
	assert_int_equal(k.n, 1);
	/* by instance: only commands with an invocation there */
	memset(&k, 0, sizeof(k));
	q.instance_id = "mi-00000000000000002";
	assert_int_equal(store_command_query(f->st, &q, cmd_cb, &k), 0);
	assert_int_equal(k.n, 1);
	assert_string_equal(k.ids[0], ID3);
	/* by document, time window, command id, status */
	memset(&q, 0, sizeof(q));
	memset(&k, 0, sizeof(k));
	q.document_name = "AWS-RunShellScript";
	q.after_ms = T0 + 1;
	assert_int_equal(store_command_query(f->st, &q, cmd_cb, &k), 0);
	assert_int_equal(k.n, 1);
	assert_string_equal(k.ids[0], ID3);
	memset(&q, 0, sizeof(q));
	memset(&k, 0, sizeof(k));
	q.before_ms = T0 + 1000;
	assert_int_equal(store_command_query(f->st, &q, cmd_cb, &k), 0);
	assert_int_equal(k.n, 1);
	assert_string_equal(k.ids[0], ID1);
	memset(&q, 0, sizeof(q));
	memset(&k, 0, sizeof(k));
	q.command_id = ID2;
	assert_int_equal(store_command_query(f->st, &q, cmd_cb, &k), 0);
	assert_int_equal(k.n, 1);
	assert_int_equal(store_command_get(f->st, ID2, &c), 0);
	snprintf(c.status, sizeof(c.status), "Failed");
	assert_int_equal(store_command_set_status(f->st, &c), 0);
	command_rec_clear(&c);
	memset(&q, 0, sizeof(q));
	memset(&k, 0, sizeof(k));
	q.status = "Failed";
	assert_int_equal(store_command_query(f->st, &q, cmd_cb, &k), 0);
	assert_int_equal(k.n, 1);
	assert_string_equal(k.ids[0], ID2);

	/* invocations of a command in seq order */
	memset(&k, 0, sizeof(k));
	assert_int_equal(store_invocation_query(f->st, ID3, NULL, 0, 0,
	    inv_cb, &k), 0);
	assert_int_equal(k.n, 3);
	assert_string_equal(k.ids[0], ID3 "/mi-00000000000000002");
	assert_string_equal(k.ids[2], ID3 "/mi-00000000000000000");
	memset(&k, 0, sizeof(k));
	assert_int_equal(store_invocation_query(f->st, ID3, NULL, 1, 1,
	    inv_cb, &k), 0);
	assert_int_equal(k.n, 1);
	assert_string_equal(k.ids[0], ID3 "/mi-00000000000000001");
	/* one instance's, newest first */
	memset(&k, 0, sizeof(k));
	assert_int_equal(store_invocation_query(f->st, NULL,
	    "mi-00000000000000000", 0, 0, inv_cb, &k), 0);
	assert_int_equal(k.n, 3);
	assert_string_equal(k.ids[0], ID3 "/mi-00000000000000000");
	assert_string_equal(k.ids[2], ID1 "/mi-00000000000000000");
	/* one pair */
	memset(&k, 0, sizeof(k));
	assert_int_equal(store_invocation_query(f->st, ID1,
	    "mi-00000000000000001", 0, 0, inv_cb, &k), 0);
	assert_int_equal(k.n, 1);
	/* everything */
	memset(&k, 0, sizeof(k));
	assert_int_equal(store_invocation_query(f->st, NULL, NULL, 0, 0,
	    inv_cb, &k), 0);
	assert_int_equal(k.n, 6);
}

/* A callback that writes to the store while a query runs. */
struct writer {
	struct store *st;
	int n;
};

static int
active_cb(void *arg, const struct command_rec *c)
{
	struct writer *w = arg;
	struct command_rec copy = *c;

	snprintf(copy.status, sizeof(copy.status), "Success");
	assert_int_equal(store_command_set_status(w->st, &copy), 0);
	w->n++;
	return 0;
}

static void
test_active_after_reopen(void **state)
{
	struct store_fx *f = *state;
	struct command_rec c;
	struct writer w;

	make_command(f->st, ID1, "AWS-RunShellScript", T0, 1);
	make_command(f->st, ID2, "AWS-RunShellScript", T0 + 1, 1);
	assert_int_equal(store_command_get(f->st, ID2, &c), 0);
	snprintf(c.status, sizeof(c.status), "Cancelled");
	assert_int_equal(store_command_set_status(f->st, &c), 0);
	command_rec_clear(&c);
	store_close(f->st);
	assert_int_equal(store_open(&f->st, f->db.path), 0);
	memset(&w, 0, sizeof(w));
	w.st = f->st;
	assert_int_equal(store_command_foreach_active(f->st, active_cb, &w),
	    0);
	assert_int_equal(w.n, 1);
	w.n = 0;
	assert_int_equal(store_command_foreach_active(f->st, active_cb, &w),
	    0);
	assert_int_equal(w.n, 0);
}

static void
test_bad_input(void **state)
{
	struct store_fx *f = *state;
	struct invocation_rec inv;
	struct command_rec c;
	char *alarm;

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_command_create(f->st, &c, NULL, 0),
	    PH_ERR_INVALID);          /* no id, no document */
	snprintf(c.command_id, sizeof(c.command_id), "%s", ID1);
	assert_int_equal(store_command_create(f->st, &c, NULL, 0),
	    PH_ERR_INVALID);          /* no document */
	c.document_name = (char *)"D";
	assert_int_equal(store_command_create(f->st, &c, NULL, 1),
	    PH_ERR_INVALID);          /* n without invocations */
	memset(&inv, 0, sizeof(inv));
	snprintf(inv.command_id, sizeof(inv.command_id), "%s", ID2);
	snprintf(inv.instance_id, sizeof(inv.instance_id), "mi-1");
	assert_int_equal(store_command_create(f->st, &c, &inv, 1),
	    PH_ERR_INVALID);          /* another command's invocation */
	/* a failed invocation insert leaves no command behind */
	snprintf(inv.command_id, sizeof(inv.command_id), "%s", ID1);
	inv.instance_id[0] = '\0';
	assert_int_not_equal(store_command_create(f->st, &c, &inv, 1), 0);
	assert_int_equal(store_command_get(f->st, ID1, &c), PH_ERR_NOTFOUND);
	memset(&c, 0, sizeof(c));
	/* the same id twice */
	make_command(f->st, ID1, "D", T0, 0);
	snprintf(c.command_id, sizeof(c.command_id), "%s", ID1);
	c.document_name = (char *)"D";
	assert_int_equal(store_command_create(f->st, &c, NULL, 0),
	    PH_ERR_EXISTS);
	/* NULL lookups */
	assert_int_equal(store_command_get(f->st, NULL, &c), PH_ERR_NOTFOUND);
	assert_int_equal(store_invocation_get(f->st, NULL, NULL, &inv),
	    PH_ERR_NOTFOUND);
	/* the alarm configuration */
	assert_int_equal(store_command_get_alarm(f->st, ID1, &alarm), 0);
	assert_null(alarm);
	assert_int_equal(store_command_set_alarm(f->st, ID1,
	    "{\"Alarms\":[{\"Name\":\"a\"}]}"), 0);
	assert_int_equal(store_command_get_alarm(f->st, ID1, &alarm), 0);
	assert_string_equal(alarm, "{\"Alarms\":[{\"Name\":\"a\"}]}");
	free(alarm);
	assert_int_equal(store_command_set_alarm(f->st, ID2, "{}"),
	    PH_ERR_NOTFOUND);
	assert_int_equal(store_command_get_alarm(f->st, ID2, &alarm),
	    PH_ERR_NOTFOUND);
	command_rec_clear(NULL);
	invocation_rec_clear(NULL);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_roundtrip),
		T(test_status),
		T(test_queries),
		T(test_active_after_reopen),
		T(test_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
