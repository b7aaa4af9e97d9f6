/* Run Command on the agent (spec 8.3): agent_job parsing (garbage,
 * keys in any case, oversize fields), the reply and AWS's truncation,
 * preconditions, and real /bin/sh steps on a libuv loop: output and exit
 * codes, the timeout killing a process tree, cancel, duplicates, reply
 * persistence and acknowledgement, a restart mid-command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "agent/cmdjob.h"
#include "agent/cmdstore.h"
#include "agent/cmdupload.h"
#include "agent/runcommand.h"
#include "agent/state.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/uuid.h"

/* ---- helpers ------------------------------------------------------------- */

static char *
job_text(const char *job_id, const char *topic, json_t *content)
{
	char *c, *out;
	json_t *o;

	c = json_dumps(content, JSON_COMPACT);
	assert_non_null(c);
	o = json_pack("{s:s, s:s, s:s, s:i}", "Content", c, "JobId", job_id,
	    "Topic", topic, "SchemaVersion", 1);
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	json_decref(content);
	free(c);
	return out;
}

static json_t *
send_content(const char *cmd, json_t *doc)
{
	return json_pack("{s:s, s:o, s:s, s:{}, s:s}", "CommandId", cmd,
	    "DocumentContent", doc, "DocumentName", "AWS-RunShellScript",
	    "Parameters", "CloudWatchOutputEnabled", "false");
}

/* A 2.2 document with one aws:runShellScript step. */
static json_t *
shell_doc(const char *script, const char *timeout)
{
	json_t *in = json_pack("{s:s}", "runCommand", script);

	if (timeout != NULL)
		json_object_set_new(in, "timeoutSeconds", json_string(timeout));
	return json_pack("{s:s, s:[{s:s, s:s, s:o}]}", "schemaVersion", "2.2",
	    "mainSteps", "action", "aws:runShellScript", "name", "run",
	    "inputs", in);
}

static int
parse(struct cmdjob *j, const char *s, int *ack)
{
	char err[256];

	return cmdjob_parse(j, (const uint8_t *)s, strlen(s), ack, err,
	    sizeof(err));
}

/* ---- parsing ------------------------------------------------------------- */

static void
test_parse_good(void **state)
{
	struct cmdjob j;
	char *s;
	int ack;

	(void)state;
	s = job_text("aws.ssm.c-1.mi-1", "aws.ssm.sendCommand.test",
	    send_content("c-1", shell_doc("echo hi", NULL)));
	assert_int_equal(parse(&j, s, &ack), 0);
	assert_int_equal(ack, 200);
	assert_int_equal(j.kind, CMDJOB_SEND);
	assert_string_equal(j.command_id, "c-1");
	assert_string_equal(j.job_id, "aws.ssm.c-1.mi-1");
	assert_non_null(j.doc);
	cmdjob_free(&j);
	free(s);
}

static void
test_parse_case_insensitive(void **state)
{
	struct cmdjob j;
	const char *s;
	int ack;

	(void)state;
	/* Go's decoder: jobid fills JobId, commandid fills CommandId. */
	s = "{\"jobid\":\"aws.ssm.c-2.mi-1\",\"TOPIC\":\"aws.ssm.sendCommand\","
	    "\"content\":\"{\\\"commandid\\\":\\\"c-2\\\",\\\"documentcontent"
	    "\\\":{\\\"schemaVersion\\\":\\\"2.2\\\",\\\"mainSteps\\\":[{"
	    "\\\"action\\\":\\\"aws:runShellScript\\\",\\\"name\\\":\\\"a\\\","
	    "\\\"inputs\\\":{\\\"runCommand\\\":[\\\"true\\\"]}}]},"
	    "\\\"outputs3bucketname\\\":\\\"bkt\\\"}\"}";
	assert_int_equal(parse(&j, s, &ack), 0);
	assert_string_equal(j.command_id, "c-2");
	assert_string_equal(j.bucket, "bkt");
	cmdjob_free(&j);
}

static void
test_parse_garbage(void **state)
{
	static const char *bad[] = {
		"", "null", "[]", "{", "{\"JobId\":1}", "\xff\xfe",
		"{\"JobId\":\"aws.ssm.x.y\"}",
		"{\"JobId\":\"aws.ssm.x.y\",\"Topic\":\"aws.ssm.sendCommand\","
		    "\"Content\":\"not json\"}",
		"{\"JobId\":\"aws.ssm.x.y\",\"Topic\":\"aws.ssm.sendCommand\","
		    "\"Content\":\"[1]\"}",
		"{\"JobId\":\"aws.ssm.x.y\",\"Topic\":\"aws.ssm.sendCommand\","
		    "\"Content\":\"{\\\"CommandId\\\":\\\"../etc\\\"}\"}",
		"{\"JobId\":\"aws.ssm.x.y\","
		    "\"Topic\":\"aws.ssm.cancelCommand\","
		    "\"Content\":\"{\\\"CancelMessageId\\\":\\\"bogus\\\"}\"}",
	};
	struct cmdjob j;
	size_t i;
	int ack;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_not_equal(parse(&j, bad[i], &ack), 0);
		assert_int_equal(ack, CMDJOB_ACK_PARSE_ERROR);
	}
	/* A topic this agent does not run. */
	assert_int_not_equal(parse(&j, "{\"JobId\":\"j\",\"Topic\":\"x\","
	    "\"Content\":\"{}\"}", &ack), 0);
	assert_int_equal(ack, CMDJOB_ACK_UNEXPECTED_TYPE);
}

static void
test_parse_bad_document(void **state)
{
	json_t *docs[5];
	struct cmdjob j;
	char *s;
	size_t i;
	int ack;

	(void)state;
	docs[0] = json_pack("{s:s}", "schemaVersion", "2.2");
	docs[1] = json_pack("{s:s, s:[]}", "schemaVersion", "2.2",
	    "mainSteps");
	docs[2] = json_pack("{s:s, s:[{s:s}]}", "schemaVersion", "2.2",
	    "mainSteps", "action", "aws:runShellScript");
	docs[3] = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}",
	    "schemaVersion", "2.2", "mainSteps", "action", "a", "name", "x",
	    "action", "b", "name", "x");
	docs[4] = json_pack("{s:[{s:s, s:s}]}", "mainSteps", "action", "a",
	    "name", "x");
	for (i = 0; i < 5; i++) {
		s = job_text("aws.ssm.c-3.mi-1", "aws.ssm.sendCommand",
		    send_content("c-3", docs[i]));
		assert_int_not_equal(parse(&j, s, &ack), 0);
		assert_int_equal(ack, CMDJOB_ACK_INVALID_DOCUMENT);
		free(s);
	}
}

static void
test_parse_oversize(void **state)
{
	char big[400], *s;
	struct cmdjob j;
	int ack;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	s = job_text(big, "aws.ssm.sendCommand",
	    send_content("c-4", shell_doc("true", NULL)));
	assert_int_not_equal(parse(&j, s, &ack), 0);
	assert_int_equal(ack, CMDJOB_ACK_PARSE_ERROR);
	free(s);
	/* A CommandId too long for a directory name. */
	s = job_text("aws.ssm.c.mi", "aws.ssm.sendCommand",
	    send_content(big + 300, shell_doc("true", NULL)));
	assert_int_not_equal(parse(&j, s, &ack), 0);
	free(s);
}

static void
test_parse_cancel_and_ack(void **state)
{
	struct cmdjob j;
	uint8_t id[16], want[16];
	char s[256], ids[UUID_STR_LEN], job[64];
	int ack;

	(void)state;
	assert_int_equal(parse(&j, "{\"JobId\":\"aws.ssm.k-1.mi-1\","
	    "\"Topic\":\"aws.ssm.cancelCommand\",\"Content\":"
	    "\"{\\\"CancelMessageId\\\":\\\"aws.ssm.c-9.mi-1\\\"}\"}", &ack),
	    0);
	assert_int_equal(j.kind, CMDJOB_CANCEL);
	assert_string_equal(j.cancel_command_id, "c-9");
	cmdjob_free(&j);
	uuid_v4(want);
	uuid_format(want, ids);
	snprintf(s, sizeof(s), "{\"JOBID\":\"j\",\"acknowledgedmessageid\":"
	    "\"%s\"}", ids);
	assert_int_equal(cmdjob_parse_reply_ack((const uint8_t *)s,
	    strlen(s), id, job, sizeof(job)), 0);
	assert_memory_equal(id, want, 16);
	assert_string_equal(job, "j");
	assert_int_not_equal(cmdjob_parse_reply_ack((const uint8_t *)"{}", 2,
	    id, job, sizeof(job)), 0);
	assert_int_not_equal(cmdjob_parse_reply_ack((const uint8_t *)"x", 1,
	    id, job, sizeof(job)), 0);
}

static void
test_steps_v12(void **state)
{
	struct cmdstep *st;
	size_t n;
	json_t *doc;
	char err[128], *script;

	(void)state;
	doc = json_loads("{\"schemaVersion\":\"1.2\",\"runtimeConfig\":{"
	    "\"aws:runShellScript\":{\"properties\":[{\"id\":\"0.aws:"
	    "runShellScript\",\"runCommand\":[\"echo a\",[\"echo b\"]],"
	    "\"timeoutSeconds\":\"9\"}]}}}", 0, NULL);
	assert_int_equal(cmdjob_steps(doc, &st, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(st[0].name, "aws:runShellScript");
	assert_string_equal(st[0].action, "aws:runShellScript");
	assert_int_equal(cmdjob_timeout(st[0].inputs), 9);
	script = cmdjob_script(st[0].inputs, 1024);
	assert_string_equal(script, "echo a\necho b\n");
	free(script);
	cmdjob_steps_free(st, n);
	json_decref(doc);
}

static void
test_timeout_bounds(void **state)
{
	json_t *in;

	(void)state;
	in = json_pack("{s:i}", "timeoutSeconds", 4);
	assert_int_equal(cmdjob_timeout(in), 3600);
	json_object_set_new(in, "timeoutSeconds", json_integer(172801));
	assert_int_equal(cmdjob_timeout(in), 3600);
	json_object_set_new(in, "timeoutSeconds", json_string("12.5"));
	assert_int_equal(cmdjob_timeout(in), 12);
	json_object_set_new(in, "timeoutSeconds", json_string("x"));
	assert_int_equal(cmdjob_timeout(in), 3600);
	json_object_del(in, "timeoutSeconds");
	assert_int_equal(cmdjob_timeout(in), 3600);
	json_decref(in);
}

static void
test_preconditions(void **state)
{
	struct cmdstep s;
	char msg[512];

	(void)state;
	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "x");
	snprintf(s.action, sizeof(s.action), "aws:runShellScript");
	s.v22 = 1;
	s.precondition = json_loads("{\"StringEquals\":[\"platformType\","
	    "\"Linux\"]}", 0, NULL);
	assert_int_equal(cmdjob_step_op(&s, msg, sizeof(msg)), CMDJOB_RUN);
	json_decref(s.precondition);
	s.precondition = json_loads("{\"StringEquals\":[\"platformType\","
	    "\"Windows\"]}", 0, NULL);
	assert_int_equal(cmdjob_step_op(&s, msg, sizeof(msg)), CMDJOB_SKIP);
	assert_non_null(strstr(msg, "unsatisfied preconditions"));
	json_decref(s.precondition);
	s.precondition = json_loads("{\"Nope\":[\"a\",\"b\"]}", 0, NULL);
	assert_int_equal(cmdjob_step_op(&s, msg, sizeof(msg)), CMDJOB_FAIL);
	json_decref(s.precondition);
	s.precondition = json_loads("{\"StringEquals\":[\"a\"]}", 0, NULL);
	assert_int_equal(cmdjob_step_op(&s, msg, sizeof(msg)), CMDJOB_FAIL);
	/* Before 2.2 a precondition is an error. */
	s.v22 = 0;
	assert_int_equal(cmdjob_step_op(&s, msg, sizeof(msg)), CMDJOB_FAIL);
	json_decref(s.precondition);
	s.precondition = NULL;
	snprintf(s.action, sizeof(s.action), "aws:nothing");
	assert_int_equal(cmdjob_step_op(&s, msg, sizeof(msg)), CMDJOB_FAIL);
	assert_non_null(strstr(msg, "aws:nothing"));
}

/* ---- the reply ----------------------------------------------------------- */

static json_t *
reply_content(const char *payload)
{
	json_t *o = json_loads(payload, 0, NULL), *c;

	assert_non_null(o);
	c = json_loads(json_string_value(json_object_get(o, "content")), 0,
	    NULL);
	assert_non_null(c);
	json_decref(o);
	return c;
}

static void
test_reply_truncation(void **state)
{
	struct cmdjob_result r[10];
	struct cmdjob_reply_info info;
	char *out, *err, *js;
	json_t *c, *s;
	const char *so, *o;
	size_t i;

	(void)state;
	out = malloc(30001);
	err = malloc(9001);
	memset(out, 'o', 30000);
	memset(err, 'e', 9000);
	out[29999] = '\xff'; /* invalid UTF-8 must not break the JSON */
	memset(r, 0, sizeof(r));
	for (i = 0; i < 10; i++) {
		char *name = malloc(8);

		snprintf(name, 8, "s%zu", i);
		r[i].name = name;
		r[i].plugin = "aws:runShellScript";
		r[i].status = i == 0 ? "Failed" : "Success";
		r[i].code = 0;
		r[i].out = out;
		r[i].out_len = 30000;
		r[i].err = err;
		r[i].err_len = 9000;
	}
	memset(&info, 0, sizeof(info));
	info.job_id = "aws.ssm.c.mi";
	info.command_id = "c";
	info.instance_id = "mi";
	info.doc_status = cmdjob_doc_status(r, 1);
	assert_string_equal(info.doc_status, "Failed");
	/* One step: AWS's limits. */
	js = cmdjob_reply(&info, r, 1);
	assert_non_null(js);
	c = reply_content(js);
	s = json_object_get(json_object_get(c, "runtimeStatus"), "s0");
	so = json_string_value(json_object_get(s, "standardOutput"));
	assert_true(strlen(so) <= 24000);
	assert_non_null(strstr(so, "--output truncated--"));
	assert_true(strlen(json_string_value(json_object_get(s,
	    "standardError"))) <= 8000);
	o = json_string_value(json_object_get(s, "output"));
	assert_true(strlen(o) <= 2500);
	assert_non_null(strstr(o, "----------ERROR-------"));
	/* Failed with code 0 is reported as 1. */
	assert_int_equal(json_integer_value(json_object_get(s, "code")), 1);
	json_decref(c);
	free(js);
	/* Ten such steps still fit in 120,000 bytes of content. */
	info.doc_status = cmdjob_doc_status(r, 10);
	js = cmdjob_reply(&info, r, 10);
	assert_non_null(js);
	c = reply_content(js);
	assert_int_equal(json_object_size(json_object_get(c,
	    "runtimeStatus")), 10);
	{
		char *cs = json_dumps(c, JSON_COMPACT);

		assert_true(strlen(cs) <= CMDJOB_CONTENT_MAX + 1024);
		free(cs);
	}
	json_decref(c);
	free(js);
	for (i = 0; i < 10; i++)
		free((char *)r[i].name);
	free(out);
	free(err);
}

static void
test_combined_output(void **state)
{
	char buf[2501], big[3000];

	(void)state;
	cmdjob_combined_output("out", 3, "", 0, 2500, buf);
	assert_string_equal(buf, "out");
	cmdjob_combined_output("out", 3, "err", 3, 2500, buf);
	assert_string_equal(buf, "out\n----------ERROR-------\nerr");
	memset(big, 'x', sizeof(big));
	cmdjob_combined_output(big, sizeof(big), "err", 3, 2500, buf);
	assert_true(strlen(buf) <= 2500);
	assert_non_null(strstr(buf, "---Output truncated---"));
	assert_non_null(strstr(buf, "\nerr"));
}

static void
test_doc_status(void **state)
{
	struct cmdjob_result r[3];

	(void)state;
	memset(r, 0, sizeof(r));
	r[0].status = "Success";
	r[1].status = "Skipped";
	r[2].status = "TimedOut";
	assert_string_equal(cmdjob_doc_status(r, 2), "Success");
	assert_string_equal(cmdjob_doc_status(r, 3), "TimedOut");
	r[1].status = "Cancelled";
	assert_string_equal(cmdjob_doc_status(r, 2), "Cancelled");
	r[0].status = "Failed";
	assert_string_equal(cmdjob_doc_status(r, 3), "Failed");
}

static void
test_upload_path(void **state)
{
	char p[256];

	(void)state;
	assert_int_equal(cmdupload_path("c-1", "aws:run Shell/x", "stdout", p,
	    sizeof(p)), 0);
	assert_string_equal(p, "/v1/command-output/c-1/aws%3Arun%20Shell%2Fx/"
	    "stdout");
	assert_int_not_equal(cmdupload_path("c-1", "abc", "stdout", p, 20),
	    0);
}

/* ---- running steps ------------------------------------------------------- */

struct frame {
	char type[40];
	char *payload;
	uint8_t id[16];
};

struct cap {
	struct frame f[512];
	size_t n;
	int down;        /* the channel is down: sends fail */
};

static int
cap_send(void *ud, const char *type, const char *payload, uint8_t id[16])
{
	struct cap *c = ud;

	if (c->down)
		return PH_ERR_STATE;
	assert_true(c->n < 512);
	snprintf(c->f[c->n].type, sizeof(c->f[c->n].type), "%s", type);
	c->f[c->n].payload = strdup(payload);
	memcpy(c->f[c->n].id, id, 16);
	c->n++;
	return 0;
}

static void
cap_free(struct cap *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->f[i].payload);
	c->n = 0;
}

/* The last agent_job_reply whose documentStatus is final, or -1. */
static int
final_reply(struct cap *c, const char *job_id, json_t **content)
{
	size_t i;
	json_t *o, *ct;
	const char *st;

	for (i = c->n; i-- > 0;) {
		if (strcmp(c->f[i].type, MT_AGENT_JOB_REPLY) != 0)
			continue;
		o = json_loads(c->f[i].payload, 0, NULL);
		if (strcmp(json_string_value(json_object_get(o, "jobId")),
		    job_id) != 0) {
			json_decref(o);
			continue;
		}
		ct = json_loads(json_string_value(json_object_get(o,
		    "content")), 0, NULL);
		json_decref(o);
		st = json_string_value(json_object_get(ct, "documentStatus"));
		if (st != NULL && strcmp(st, "InProgress") != 0) {
			*content = ct;
			return (int)i;
		}
		json_decref(ct);
	}
	return -1;
}

static int
ack_code(struct cap *c, const char *job_id)
{
	size_t i;
	json_t *o;
	int code = -1;

	for (i = 0; i < c->n; i++) {
		if (strcmp(c->f[i].type, MT_AGENT_JOB_ACK) != 0)
			continue;
		o = json_loads(c->f[i].payload, 0, NULL);
		if (strcmp(json_string_value(json_object_get(o, "jobId")),
		    job_id) == 0)
			code = atoi(json_string_value(json_object_get(o,
			    "statusCode")));
		json_decref(o);
	}
	return code;
}

static void
deliver(struct runcommand *rc, const char *type, const char *payload)
{
	struct clientmsg m;

	memset(&m, 0, sizeof(m));
	snprintf(m.type, sizeof(m.type), "%s", type);
	m.created_ms = 1700000000123ull;
	uuid_v4(m.message_id);
	m.payload = (const uint8_t *)payload;
	m.payload_len = strlen(payload);
	if (strcmp(type, MT_AGENT_JOB) == 0)
		runcommand_on_job(rc, &m);
	else
		runcommand_on_reply_ack(rc, &m);
}

static void
run_job(struct runcommand *rc, const char *cmd, json_t *doc)
{
	char jid[128], *s;

	snprintf(jid, sizeof(jid), "aws.ssm.%s.mi-0123", cmd);
	s = job_text(jid, "aws.ssm.sendCommand", send_content(cmd, doc));
	deliver(rc, MT_AGENT_JOB, s);
	free(s);
}

/* Run the loop until the job's final reply, at most secs seconds. */
static json_t *
wait_final(uv_loop_t *loop, struct cap *c, const char *cmd, int secs)
{
	char jid[128];
	json_t *ct = NULL;
	uint64_t end = uv_now(loop) + (uint64_t)secs * 1000;

	snprintf(jid, sizeof(jid), "aws.ssm.%s.mi-0123", cmd);
	while (final_reply(c, jid, &ct) < 0) {
		assert_true(uv_now(loop) < end);
		uv_run(loop, UV_RUN_ONCE);
	}
	return ct;
}

struct env {
	char dir[64];
	uv_loop_t loop;
	struct cap cap;
	struct runcommand *rc;
	uv_timer_t tick;   /* keeps UV_RUN_ONCE from blocking forever */
};

static void
tick_cb(uv_timer_t *t)
{
	(void)t;
}

static void
env_open(struct env *e)
{
	snprintf(e->dir, sizeof(e->dir), "/tmp/test_runcommand.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	assert_int_equal(uv_loop_init(&e->loop), 0);
	uv_timer_init(&e->loop, &e->tick);
	uv_timer_start(&e->tick, tick_cb, 50, 50);
	assert_int_equal(runcommand_new(&e->rc, &e->loop, e->dir, "mi-0123",
	    cap_send, &e->cap), 0);
}

static void
stopped_cb(void *ud)
{
	*(int *)ud = 1;
}

static void
env_stop_rc(struct env *e)
{
	int stopped = 0;

	runcommand_shutdown(e->rc, stopped_cb, &stopped);
	while (!stopped)
		uv_run(&e->loop, UV_RUN_ONCE);
	e->rc = NULL;
}

static void
env_close(struct env *e, int remove)
{
	char cmd[128];

	if (e->rc != NULL)
		env_stop_rc(e);
	uv_close((uv_handle_t *)&e->tick, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	cap_free(&e->cap);
	if (remove) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
		assert_int_equal(system(cmd), 0);
	}
}

static json_t *
step_of(json_t *content, const char *name)
{
	return json_object_get(json_object_get(content, "runtimeStatus"),
	    name);
}

static size_t
count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
test_run_shell(void **state)
{
	struct env e;
	json_t *ct, *s;
	char replies[128], wd[128];
	struct clientmsg dummy;
	int idx;

	(void)state;
	(void)dummy;
	memset(&e, 0, sizeof(e));
	env_open(&e);
	run_job(e.rc, "c-ok", shell_doc("echo hello; echo oops >&2; "
	    "echo \"$AWS_SSM_INSTANCE_ID $SSM_COMMAND_ID\"; pwd; exit 3",
	    NULL));
	assert_int_equal(ack_code(&e.cap, "aws.ssm.c-ok.mi-0123"), 200);
	ct = wait_final(&e.loop, &e.cap, "c-ok", 20);
	assert_string_equal(json_string_value(json_object_get(ct,
	    "documentStatus")), "Failed");
	s = step_of(ct, "run");
	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(s, "code")), 3);
	assert_string_equal(json_string_value(json_object_get(s, "status")),
	    "Failed");
	snprintf(wd, sizeof(wd), "hello\nmi-0123 c-ok\n%s/commands/c-ok\n",
	    e.dir);
	assert_string_equal(json_string_value(json_object_get(s,
	    "standardOutput")), wd);
	assert_string_equal(json_string_value(json_object_get(s,
	    "standardError")), "oops\n");
	json_decref(ct);
	/* The reply is on disk until acknowledged. */
	snprintf(replies, sizeof(replies), "%s/commands/replies", e.dir);
	assert_true(count_files(replies) >= 1);
	/* Garbage jobs are acknowledged with the spec's codes. */
	deliver(e.rc, MT_AGENT_JOB, "{\"JobId\":\"aws.ssm.g-1.mi-0123\","
	    "\"Topic\":\"aws.ssm.sendCommand\",\"Content\":\"{oops\"}");
	assert_int_equal(ack_code(&e.cap, "aws.ssm.g-1.mi-0123"),
	    CMDJOB_ACK_PARSE_ERROR);
	deliver(e.rc, MT_AGENT_JOB, "{\"JobId\":\"aws.ssm.g-2.mi-0123\","
	    "\"Topic\":\"aws.ssm.sendCommand\",\"Content\":"
	    "\"{\\\"CommandId\\\":\\\"g-2\\\",\\\"DocumentContent\\\":{}}\"}");
	assert_int_equal(ack_code(&e.cap, "aws.ssm.g-2.mi-0123"),
	    CMDJOB_ACK_INVALID_DOCUMENT);
	deliver(e.rc, MT_AGENT_JOB, "\x01garbage");
	/* The same job again: DuplicateCommand, nothing runs. */
	run_job(e.rc, "c-ok", shell_doc("echo again", NULL));
	assert_int_equal(ack_code(&e.cap, "aws.ssm.c-ok.mi-0123"),
	    CMDJOB_ACK_DUPLICATE);
	/* Acknowledge every reply sent: the directory empties. */
	for (idx = 0; idx < (int)e.cap.n; idx++) {
		char ack[256], ids[UUID_STR_LEN];

		if (strcmp(e.cap.f[idx].type, MT_AGENT_JOB_REPLY) != 0)
			continue;
		uuid_format(e.cap.f[idx].id, ids);
		snprintf(ack, sizeof(ack), "{\"jobId\":\"x\","
		    "\"acknowledgedMessageId\":\"%s\"}", ids);
		deliver(e.rc, MT_AGENT_JOB_REPLY_ACK, ack);
	}
	assert_int_equal(count_files(replies), 0);
	/* Garbage acks are ignored. */
	deliver(e.rc, MT_AGENT_JOB_REPLY_ACK, "{\"acknowledgedMessageId\":1}");
	deliver(e.rc, MT_AGENT_JOB_REPLY_ACK, "\x01\x02");
	env_close(&e, 1);
}

static void
test_run_success_and_steps(void **state)
{
	struct env e;
	json_t *ct, *doc;

	(void)state;
	memset(&e, 0, sizeof(e));
	env_open(&e);
	doc = json_loads("{\"schemaVersion\":\"2.2\",\"mainSteps\":["
	    "{\"action\":\"aws:runShellScript\",\"name\":\"one\",\"inputs\":"
	    "{\"runCommand\":[\"echo 1\"]}},"
	    "{\"action\":\"aws:runShellScript\",\"name\":\"win\","
	    "\"precondition\":{\"StringEquals\":[\"platformType\","
	    "\"Windows\"]},\"inputs\":{\"runCommand\":[\"echo 2\"]}},"
	    "{\"action\":\"aws:runShellScript\",\"name\":\"wd\",\"inputs\":"
	    "{\"runCommand\":\"pwd\",\"workingDirectory\":\"/tmp\"}}]}",
	    0, NULL);
	run_job(e.rc, "c-steps", doc);
	ct = wait_final(&e.loop, &e.cap, "c-steps", 20);
	assert_string_equal(json_string_value(json_object_get(ct,
	    "documentStatus")), "Success");
	assert_string_equal(json_string_value(json_object_get(step_of(ct,
	    "win"), "status")), "Skipped");
	assert_string_equal(json_string_value(json_object_get(step_of(ct,
	    "wd"), "standardOutput")), "/tmp\n");
	json_decref(ct);
	/* A missing working directory and an unknown action fail. */
	doc = json_loads("{\"schemaVersion\":\"2.2\",\"mainSteps\":["
	    "{\"action\":\"aws:runShellScript\",\"name\":\"nowd\",\"inputs\":"
	    "{\"runCommand\":\"pwd\",\"workingDirectory\":\"/nonexistent/x\"}},"
	    "{\"action\":\"aws:frobnicate\",\"name\":\"odd\"},"
	    "{\"action\":\"aws:runPowerShellScript\",\"name\":\"ps\","
	    "\"inputs\":{\"runCommand\":[\"Write-Output 1\"]}}]}", 0, NULL);
	run_job(e.rc, "c-bad", doc);
	ct = wait_final(&e.loop, &e.cap, "c-bad", 20);
	assert_string_equal(json_string_value(json_object_get(ct,
	    "documentStatus")), "Failed");
	assert_non_null(strstr(json_string_value(json_object_get(step_of(ct,
	    "nowd"), "output")), "does not exist"));
	assert_non_null(strstr(json_string_value(json_object_get(step_of(ct,
	    "odd"), "output")), "aws:frobnicate"));
	/* Without pwsh in PATH PowerShell steps fail saying so. */
	if (system("command -v pwsh >/dev/null 2>&1") != 0)
		assert_non_null(strstr(json_string_value(json_object_get(
		    step_of(ct, "ps"), "output")), "pwsh"));
	json_decref(ct);
	env_close(&e, 1);
}

static void
test_exit_codes_168_169(void **state)
{
	struct env e;
	json_t *ct, *doc;

	(void)state;
	memset(&e, 0, sizeof(e));
	env_open(&e);
	doc = json_loads("{\"schemaVersion\":\"2.2\",\"mainSteps\":["
	    "{\"action\":\"aws:runShellScript\",\"name\":\"a\",\"inputs\":"
	    "{\"runCommand\":\"exit 168\"}},"
	    "{\"action\":\"aws:runShellScript\",\"name\":\"b\",\"inputs\":"
	    "{\"runCommand\":\"echo never\"}}]}", 0, NULL);
	run_job(e.rc, "c-168", doc);
	ct = wait_final(&e.loop, &e.cap, "c-168", 20);
	assert_string_equal(json_string_value(json_object_get(ct,
	    "documentStatus")), "Success");
	assert_string_equal(json_string_value(json_object_get(step_of(ct,
	    "b"), "status")), "Skipped");
	json_decref(ct);
	doc = json_loads("{\"schemaVersion\":\"2.2\",\"mainSteps\":["
	    "{\"action\":\"aws:runShellScript\",\"name\":\"a\",\"inputs\":"
	    "{\"runCommand\":\"exit 169\"}},"
	    "{\"action\":\"aws:runShellScript\",\"name\":\"b\",\"inputs\":"
	    "{\"runCommand\":\"echo never\"}}]}", 0, NULL);
	run_job(e.rc, "c-169", doc);
	ct = wait_final(&e.loop, &e.cap, "c-169", 20);
	assert_string_equal(json_string_value(json_object_get(ct,
	    "documentStatus")), "Failed");
	assert_int_equal(json_integer_value(json_object_get(step_of(ct, "a"),
	    "code")), 169);
	assert_string_equal(json_string_value(json_object_get(step_of(ct,
	    "b"), "status")), "Skipped");
	json_decref(ct);
	env_close(&e, 1);
}

/* While a step runs, InProgress replies carry its output so far. */
static void
test_streaming(void **state)
{
	struct env e;
	json_t *ct;
	size_t i;
	int seen = 0;

	(void)state;
	memset(&e, 0, sizeof(e));
	env_open(&e);
	run_job(e.rc, "c-stream", shell_doc("echo first-part; sleep 3; "
	    "echo second-part", NULL));
	ct = wait_final(&e.loop, &e.cap, "c-stream", 20);
	json_decref(ct);
	for (i = 0; i < e.cap.n; i++) {
		json_t *o, *c, *s;
		const char *out;

		if (strcmp(e.cap.f[i].type, MT_AGENT_JOB_REPLY) != 0)
			continue;
		o = json_loads(e.cap.f[i].payload, 0, NULL);
		c = json_loads(json_string_value(json_object_get(o,
		    "content")), 0, NULL);
		s = step_of(c, "run");
		out = json_string_value(json_object_get(s, "standardOutput"));
		if (strcmp(json_string_value(json_object_get(c,
		    "documentStatus")), "InProgress") == 0 && out != NULL &&
		    strcmp(out, "first-part\n") == 0 &&
		    strcmp(json_string_value(json_object_get(s, "status")),
		    "InProgress") == 0)
			seen = 1;
		json_decref(c);
		json_decref(o);
	}
	assert_true(seen);
	env_close(&e, 1);
}

static void
ack_all(struct env *e)
{
	char ack[256], ids[UUID_STR_LEN];
	size_t i;

	for (i = 0; i < e->cap.n; i++) {
		if (strcmp(e->cap.f[i].type, MT_AGENT_JOB_REPLY) != 0)
			continue;
		uuid_format(e->cap.f[i].id, ids);
		snprintf(ack, sizeof(ack), "{\"jobId\":\"x\","
		    "\"acknowledgedMessageId\":\"%s\"}", ids);
		deliver(e->rc, MT_AGENT_JOB_REPLY_ACK, ack);
	}
}

/* Acknowledged commands' directories are kept up to a bound. */
static void
test_prune(void **state)
{
	struct env e;
	char cmd[32], root[128];
	json_t *ct;
	int i;

	(void)state;
	memset(&e, 0, sizeof(e));
	env_open(&e);
	for (i = 0; i < 12; i++) {
		snprintf(cmd, sizeof(cmd), "c-prune-%d", i);
		run_job(e.rc, cmd, shell_doc("true", NULL));
		ct = wait_final(&e.loop, &e.cap, cmd, 20);
		json_decref(ct);
		ack_all(&e);
	}
	snprintf(root, sizeof(root), "%s/commands", e.dir);
	/* 8 command directories and replies/. */
	assert_int_equal(count_files(root), 9);
	env_close(&e, 1);
}

static int
pid_alive(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	if (kill(pid, 0) != 0)
		return 0;
	/* A zombie waiting for its reaper is dead too. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p == NULL || p[2] != 'Z';
}

static void
test_timeout_kills_tree(void **state)
{
	struct env e;
	json_t *ct, *s;
	char path[128], *text;
	size_t len;
	pid_t child;
	int i;

	(void)state;
	memset(&e, 0, sizeof(e));
	env_open(&e);
	/* A background child that ignores TERM, and a foreground sleep. */
	run_job(e.rc, "c-slow", shell_doc("(trap '' TERM; sleep 60) & "
	    "echo $! > child.pid; echo started; sleep 60", "5"));
	ct = wait_final(&e.loop, &e.cap, "c-slow", 20);
	assert_string_equal(json_string_value(json_object_get(ct,
	    "documentStatus")), "TimedOut");
	s = step_of(ct, "run");
	assert_string_equal(json_string_value(json_object_get(s, "status")),
	    "TimedOut");
	assert_int_equal(json_integer_value(json_object_get(s, "code")), 137);
	assert_string_equal(json_string_value(json_object_get(s,
	    "standardOutput")), "started\n");
	json_decref(ct);
	snprintf(path, sizeof(path), "%s/commands/c-slow/child.pid", e.dir);
	assert_int_equal(agent_read_file(path, 64, &text, &len), 0);
	child = (pid_t)atoi(text);
	free(text);
	assert_true(child > 1);
	for (i = 0; i < 50 && pid_alive(child); i++)
		usleep(100000);
	assert_false(pid_alive(child));
	env_close(&e, 1);
}

static void
test_cancel(void **state)
{
	struct env e;
	json_t *ct;
	const char *cancel = "{\"JobId\":\"aws.ssm.k-1.mi-0123\",\"Topic\":"
	    "\"aws.ssm.cancelCommand\",\"Content\":\"{\\\"CancelMessageId\\\":"
	    "\\\"aws.ssm.c-cancel.mi-0123\\\"}\"}";
	uint64_t end;

	(void)state;
	memset(&e, 0, sizeof(e));
	env_open(&e);
	run_job(e.rc, "c-cancel", shell_doc("echo going; sleep 30", NULL));
	end = uv_now(&e.loop) + 1000;
	while (uv_now(&e.loop) < end)
		uv_run(&e.loop, UV_RUN_ONCE);
	deliver(e.rc, MT_AGENT_JOB, cancel);
	assert_int_equal(ack_code(&e.cap, "aws.ssm.k-1.mi-0123"), 200);
	ct = wait_final(&e.loop, &e.cap, "c-cancel", 10);
	assert_string_equal(json_string_value(json_object_get(ct,
	    "documentStatus")), "Cancelled");
	json_decref(ct);
	env_close(&e, 1);
}

static void
test_shutdown_then_restart(void **state)
{
	struct env e;
	json_t *ct;
	struct cmdstore_reply *r;
	char root[128], sdir[160], cmd[256];
	size_t n, i;
	int found = 0;
	uint64_t end;

	(void)state;
	memset(&e, 0, sizeof(e));
	env_open(&e);
	e.cap.down = 1; /* nothing reaches portholed */
	run_job(e.rc, "c-stop", shell_doc("sleep 30", NULL));
	end = uv_now(&e.loop) + 500;
	while (uv_now(&e.loop) < end)
		uv_run(&e.loop, UV_RUN_ONCE);
	env_stop_rc(&e);
	/* The final reply (Failed, the agent stopped) waits on disk. */
	snprintf(root, sizeof(root), "%s/commands", e.dir);
	assert_int_equal(cmdstore_reply_list(root, &r, &n, 64), 0);
	for (i = 0; i < n; i++)
		if (r[i].final && strstr(r[i].payload, "Failed") != NULL &&
		    strstr(r[i].payload, "the agent stopped") != NULL)
			found = 1;
	cmdstore_replies_free(r, n);
	assert_true(found);
	/* A command left "running" by a killed agent. */
	snprintf(sdir, sizeof(sdir), "%s/c-killed", root);
	assert_int_equal(mkdir(sdir, 0700), 0);
	snprintf(cmd, sizeof(cmd), "%s/state.json", sdir);
	{
		const char *st = "{\"jobId\":\"aws.ssm.c-killed.mi-0123\","
		    "\"commandId\":\"c-killed\",\"bucket\":\"\",\"prefix\":"
		    "\"\",\"state\":\"running\",\"current\":0,\"steps\":[{"
		    "\"name\":\"run\",\"action\":\"aws:runShellScript\","
		    "\"status\":\"\",\"code\":0,\"startMs\":1,\"endMs\":0,"
		    "\"ran\":false}]}";

		assert_int_equal(agent_write_file_atomic(cmd, st, strlen(st),
		    0600), 0);
	}
	/* The next start reports both once the channel is up. */
	e.cap.down = 0;
	assert_int_equal(runcommand_new(&e.rc, &e.loop, e.dir, "mi-0123",
	    cap_send, &e.cap), 0);
	runcommand_channel_up(e.rc);
	ct = wait_final(&e.loop, &e.cap, "c-killed", 5);
	assert_string_equal(json_string_value(json_object_get(ct,
	    "documentStatus")), "Failed");
	assert_non_null(strstr(json_string_value(json_object_get(step_of(ct,
	    "run"), "output")), "the agent restarted"));
	json_decref(ct);
	ct = wait_final(&e.loop, &e.cap, "c-stop", 5);
	assert_string_equal(json_string_value(json_object_get(ct,
	    "documentStatus")), "Failed");
	json_decref(ct);
	env_close(&e, 1);
}

static void
test_large_output(void **state)
{
	struct env e;
	json_t *ct, *s;
	char path[160];
	struct stat sb;

	(void)state;
	memset(&e, 0, sizeof(e));
	env_open(&e);
	run_job(e.rc, "c-big", shell_doc("head -c 3000000 /dev/zero | "
	    "tr '\\0' a; echo; head -c 20000 /dev/zero | tr '\\0' b >&2",
	    NULL));
	ct = wait_final(&e.loop, &e.cap, "c-big", 30);
	s = step_of(ct, "run");
	assert_string_equal(json_string_value(json_object_get(s, "status")),
	    "Success");
	assert_true(strlen(json_string_value(json_object_get(s,
	    "standardOutput"))) <= 24000);
	assert_true(strlen(json_string_value(json_object_get(s,
	    "standardError"))) <= 8000);
	json_decref(ct);
	/* The whole output is on disk. */
	snprintf(path, sizeof(path), "%s/commands/c-big/0/stdout", e.dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 3000001);
	env_close(&e, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_case_insensitive),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_parse_bad_document),
		cmocka_unit_test(test_parse_oversize),
		cmocka_unit_test(test_parse_cancel_and_ack),
		cmocka_unit_test(test_steps_v12),
		cmocka_unit_test(test_timeout_bounds),
		cmocka_unit_test(test_preconditions),
		cmocka_unit_test(test_reply_truncation),
		cmocka_unit_test(test_combined_output),
		cmocka_unit_test(test_doc_status),
		cmocka_unit_test(test_upload_path),
		cmocka_unit_test(test_run_shell),
		cmocka_unit_test(test_run_success_and_steps),
		cmocka_unit_test(test_exit_codes_168_169),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_timeout_kills_tree),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_shutdown_then_restart),
		cmocka_unit_test(test_large_output),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
