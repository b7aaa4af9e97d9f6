/* loadgen_command: simulated agents that answer Run Command jobs (spec
 * 8.3) and the driver of porthole-loadgen's command mode (issue 12, row
 * 11).
 *
 * Per job an agent sends, as porthole-agent does:
 *   1. agent_job_ack {"jobId","acknowledgedMessageId","createdDate",
 *      "statusCode":"200","errorMessage":"Successful"};
 *   2. agent_job_reply documentStatus InProgress;
 *   3. after delay_ms the final agent_job_reply: Success, standard output
 *      "<instance id>\n", or Failed with code 1 for the failing agents.
 * A final reply not acknowledged (agent_job_reply_ack) within
 * LC_RESEND_MS (10 s) is sent again, at most LC_RESENDS times. "In flight" is
 * from the job's arrival to its final reply: the agents' own view of
 * MaxConcurrency. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen_command.h"
#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"

/* The real agent keeps an unacknowledged reply on disk and resends it
 * minutes later; sooner here, so a lost ack shows within a run, but not so
 * soon that a busy portholed gets every reply twice. */
#define LC_RESEND_MS 10000
#define LC_RESENDS 5
#define LC_POLL_MS 100
#define LC_PAGES_MAX 10000
#define LC_RESP_MAX ((size_t)4 << 20)
#define LC_STEP_DEFAULT "aws:runShellScript"
#define LC_JOBID_MAX 256

enum lc_job_state { LJ_RUNNING, LJ_FINAL_SENT, LJ_DONE };

struct lc_job {
	struct lc_job *next;
	struct lg_cmd *c;
	size_t idx;
	char job_id[LC_JOBID_MAX];
	char step[128];
	enum lc_job_state state;
	int cancelled;
	int resends;
	uint64_t start_ms;
	uint8_t final_id[16];           /* MessageId of the final reply */
	char *final_payload;
	uv_timer_t timer;
	int timer_init;
};

struct lc_agent {
	struct ws *ws;
	struct lc_job *jobs;
};

struct lg_cmd {
	uv_loop_t *loop;
	size_t n;
	char (*ids)[LG_ID_MAX + 1];
	struct lc_agent *agents;
	struct lg_cmd_opts o;
	struct lg_admin admin;
	int stopped;
	/* agents' counters */
	size_t jobs, duplicates, bad_jobs, cancels, acks_sent;
	size_t progress_replies, finals, finals_failed, finals_acked;
	size_t resends, send_failures, unacked_given_up;
	size_t in_flight, max_in_flight;
	/* the driver */
	uv_work_t work;
	int driving;
	json_t *targets;                /* instance ids, for "instance-ids" */
	json_t *summary;
	void (*done)(void *);
	void *done_arg;
};

/* ---- frames -------------------------------------------------------------- */

static void
lc_date(uint64_t ms, char out[64])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* One control frame with a JSON payload (PT_NONE, as control.c does). */
static int
lc_send(struct lg_cmd *c, size_t idx, const char *type, json_t *payload,
    uint8_t id_out[16])
{
	struct ws *w = c->agents[idx].ws;
	uint8_t id[16];
	struct buf b;
	char *js;
	int rc;

	if (w == NULL || payload == NULL) {
		c->send_failures++;
		return PH_ERR_STATE;
	}
	js = json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (js == NULL)
		return PH_ERR_NOMEM;
	uuid_v4(id);
	buf_init(&b, LG_ID_MAX + strlen(js) + CLIENTMSG_PAYLOAD_OFFSET + 64);
	rc = clientmsg_encode(&b, type, 0, 0, id, PT_NONE, js, strlen(js));
	if (rc == 0)
		rc = ws_send(w, WS_BINARY, b.data, b.len);
	buf_free(&b);
	free(js);
	if (rc != 0)
		c->send_failures++;
	else if (id_out != NULL)
		memcpy(id_out, id, 16);
	return rc;
}

/* The SendReplyPayload (spec 8.3) as a string; step NULL: no step yet. */
static char *
lc_reply_content(struct lg_cmd *c, const struct lc_job *j,
    const char *status, int code, const char *out, const char *errout)
{
	char now[64], start[64], output[600];
	json_t *o, *rs, *counts;
	char *s;

	lc_date(clientmsg_now_ms(), now);
	lc_date(j->start_ms, start);
	rs = json_object();
	counts = json_object();
	if (out != NULL) {
		snprintf(output, sizeof(output), "%s%s%s", out,
		    errout[0] != '\0' ? "\n----------ERROR-------\n" : "",
		    errout);
		json_object_set_new(rs, j->step, json_pack("{s:s, s:i, s:s, "
		    "s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
		    "status", status, "code", code, "name", j->step,
		    "output", output, "startDateTime", start,
		    "endDateTime", now, "outputS3BucketName", "",
		    "outputS3KeyPrefix", "", "stepName", j->step,
		    "standardOutput", out, "standardError", errout));
		json_object_set_new(counts, status, json_integer(1));
	}
	o = json_pack("{s:{s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:o}, "
	    "s:s, s:s, s:o}",
	    "additionalInfo", "agent", "lang", "en-US", "name",
	    "porthole-loadgen", "os", "linux", "osver", "1", "ver",
	    PORTHOLE_AGENT_VERSION, "dateTime", now, "runId", "",
	    "runtimeStatusCounts", counts,
	    "documentStatus", status, "documentTraceOutput", "",
	    "runtimeStatus", rs);
	s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	(void)c;
	return s;
}

static json_t *
lc_reply_frame(const struct lc_job *j, const char *content)
{
	return json_pack("{s:i, s:s, s:s, s:s}", "schemaVersion", 1,
	    "jobId", j->job_id, "content", content, "topic",
	    "aws.ssm.sendCommand");
}

/* ---- jobs ---------------------------------------------------------------- */

static struct lc_job *
lc_find(struct lg_cmd *c, size_t idx, const char *job_id)
{
	struct lc_job *j;

	for (j = c->agents[idx].jobs; j != NULL; j = j->next)
		if (strcmp(j->job_id, job_id) == 0)
			return j;
	return NULL;
}

static void
lc_send_final(struct lc_job *j)
{
	json_t *f = json_pack("{s:i, s:s, s:s, s:s}", "schemaVersion", 1,
	    "jobId", j->job_id, "content", j->final_payload, "topic",
	    "aws.ssm.sendCommand");

	(void)lc_send(j->c, j->idx, MT_AGENT_JOB_REPLY, f, j->final_id);
	json_decref(f);
}

static void
lc_timer_cb(uv_timer_t *t)
{
	struct lc_job *j = t->data;
	struct lg_cmd *c = j->c;
	const char *id = c->ids[j->idx];
	char out[LG_ID_MAX + 2];
	int fails;

	if (c->stopped)
		return;
	if (j->state == LJ_RUNNING) {
		fails = lg_cmd_agent_fails(c, j->idx);
		snprintf(out, sizeof(out), "%s\n", id);
		j->final_payload = j->cancelled ?
		    lc_reply_content(c, j, "Cancelled", 1, "", "") : fails ?
		    lc_reply_content(c, j, "Failed", 1, "",
		    "porthole-loadgen: failing as asked\n") :
		    lc_reply_content(c, j, "Success", 0, out, "");
		if (j->final_payload == NULL)
			return;
		j->state = LJ_FINAL_SENT;
		c->in_flight--;
		c->finals++;
		if (fails && !j->cancelled)
			c->finals_failed++;
		lc_send_final(j);
		uv_timer_start(&j->timer, lc_timer_cb, LC_RESEND_MS, 0);
		return;
	}
	if (j->state != LJ_FINAL_SENT)
		return;
	if (j->resends >= LC_RESENDS) {
		c->unacked_given_up++;
		j->state = LJ_DONE;
		return;
	}
	j->resends++;
	c->resends++;
	lc_send_final(j);
	uv_timer_start(&j->timer, lc_timer_cb, LC_RESEND_MS, 0);
}

static void
lc_ack(struct lg_cmd *c, size_t idx, const char *job_id,
    const struct clientmsg *m, const char *code, const char *msg)
{
	char mid[UUID_STR_LEN], created[64];
	json_t *a;

	uuid_format(m->message_id, mid);
	lc_date(m->created_ms, created);
	a = json_pack("{s:s, s:s, s:s, s:s, s:s}", "jobId", job_id,
	    "acknowledgedMessageId", mid, "createdDate", created,
	    "statusCode", code, "errorMessage", msg);
	if (lc_send(c, idx, MT_AGENT_JOB_ACK, a, NULL) == 0)
		c->acks_sent++;
	json_decref(a);
}

/* The first step's name in the document, else aws:runShellScript. */
static void
lc_step_name(json_t *content, char *out, size_t outlen)
{
	json_t *doc = json_object_get(content, "DocumentContent");
	json_t *steps = json_object_get(doc, "mainSteps");
	const char *s;

	s = json_string_value(json_object_get(json_array_get(steps, 0),
	    "name"));
	snprintf(out, outlen, "%s", s != NULL && *s != '\0' ? s :
	    LC_STEP_DEFAULT);
}

static void
lc_cancel(struct lg_cmd *c, size_t idx, json_t *content)
{
	const char *cancel = json_string_value(json_object_get(content,
	    "CancelMessageId"));
	struct lc_job *j;

	c->cancels++;
	if (cancel == NULL || (j = lc_find(c, idx, cancel)) == NULL ||
	    j->state != LJ_RUNNING)
		return;
	/* The next timer tick reports it Cancelled. */
	j->cancelled = 1;
	uv_timer_start(&j->timer, lc_timer_cb, 0, 0);
}

static void
lc_on_job(struct lg_cmd *c, size_t idx, const struct clientmsg *m)
{
	json_t *o = NULL, *content = NULL;
	const char *job_id, *topic, *cs;
	struct lc_job *j = NULL;
	char *ip = NULL;
	json_t *f;

	o = json_loadb((const char *)m->payload, m->payload_len, 0, NULL);
	job_id = json_string_value(json_object_get(o, "JobId"));
	topic = json_string_value(json_object_get(o, "Topic"));
	cs = json_string_value(json_object_get(o, "Content"));
	if (job_id == NULL || strlen(job_id) >= LC_JOBID_MAX ||
	    strncmp(job_id, "aws.ssm.", 8) != 0 || cs == NULL ||
	    (content = json_loads(cs, 0, NULL)) == NULL) {
		c->bad_jobs++;
		if (job_id != NULL && strlen(job_id) < LC_JOBID_MAX)
			lc_ack(c, idx, job_id, m, "51408",
			    "AgentJobMessageParseError");
		goto out;
	}
	if (topic != NULL && strncmp(topic, "aws.ssm.cancelCommand", 21) ==
	    0) {
		lc_ack(c, idx, job_id, m, "200", "Successful");
		lc_cancel(c, idx, content);
		goto out;
	}
	if (lc_find(c, idx, job_id) != NULL) {
		c->duplicates++;
		lc_ack(c, idx, job_id, m, "51405", "DuplicateCommand");
		goto out;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		goto out;
	j->c = c;
	j->idx = idx;
	snprintf(j->job_id, sizeof(j->job_id), "%s", job_id);
	lc_step_name(content, j->step, sizeof(j->step));
	j->start_ms = clientmsg_now_ms();
	uv_timer_init(c->loop, &j->timer);
	j->timer.data = j;
	j->timer_init = 1;
	j->next = c->agents[idx].jobs;
	c->agents[idx].jobs = j;
	c->jobs++;
	if (++c->in_flight > c->max_in_flight)
		c->max_in_flight = c->in_flight;
	lc_ack(c, idx, job_id, m, "200", "Successful");
	if ((ip = lc_reply_content(c, j, "InProgress", 0, NULL, NULL)) !=
	    NULL) {
		f = lc_reply_frame(j, ip);
		if (lc_send(c, idx, MT_AGENT_JOB_REPLY, f, NULL) == 0)
			c->progress_replies++;
		json_decref(f);
	}
	uv_timer_start(&j->timer, lc_timer_cb, c->o.delay_ms, 0);
out:
	free(ip);
	json_decref(content);
	json_decref(o);
}

static void
lc_on_reply_ack(struct lg_cmd *c, size_t idx, const struct clientmsg *m)
{
	json_t *o = json_loadb((const char *)m->payload, m->payload_len, 0,
	    NULL);
	const char *job_id = json_string_value(json_object_get(o, "jobId"));
	const char *mid = json_string_value(json_object_get(o,
	    "acknowledgedMessageId"));
	struct lc_job *j;
	uint8_t id[16];

	if (job_id == NULL || mid == NULL || uuid_parse(mid, id) != 0 ||
	    (j = lc_find(c, idx, job_id)) == NULL) {
		json_decref(o);
		return;
	}
	/* Acks of the InProgress replies need nothing. */
	if (j->state == LJ_FINAL_SENT && memcmp(id, j->final_id, 16) == 0) {
		j->state = LJ_DONE;
		c->finals_acked++;
		uv_timer_stop(&j->timer);
	}
	json_decref(o);
}

/* ---- the agents' interface ----------------------------------------------- */

int
lg_cmd_new(struct lg_cmd **out, uv_loop_t *loop, size_t n,
    char (*ids)[LG_ID_MAX + 1], const struct lg_cmd_opts *o,
    const struct lg_admin *admin)
{
	struct lg_cmd *c;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return PH_ERR_NOMEM;
	if (n > 0 && (c->agents = calloc(n, sizeof(*c->agents))) == NULL) {
		free(c);
		return PH_ERR_NOMEM;
	}
	c->loop = loop;
	c->n = n;
	c->ids = ids;
	c->o = *o;
	if (admin != NULL)
		c->admin = *admin;
	*out = c;
	return 0;
}

void
lg_cmd_set_channel(struct lg_cmd *c, size_t idx, struct ws *w)
{
	if (c != NULL && idx < c->n)
		c->agents[idx].ws = w;
}

int
lg_cmd_agent_fails(const struct lg_cmd *c, size_t idx)
{
	return c->o.fail_every > 0 && idx % c->o.fail_every ==
	    c->o.fail_every - 1;
}

void
lg_cmd_control_message(struct lg_cmd *c, size_t idx,
    const struct clientmsg *m)
{
	if (c == NULL || idx >= c->n || c->stopped)
		return;
	if (strcmp(m->type, MT_AGENT_JOB) == 0)
		lc_on_job(c, idx, m);
	else if (strcmp(m->type, MT_AGENT_JOB_REPLY_ACK) == 0)
		lc_on_reply_ack(c, idx, m);
}

void
lg_cmd_stop(struct lg_cmd *c)
{
	struct lc_job *j;
	size_t i;

	if (c == NULL)
		return;
	c->stopped = 1;
	for (i = 0; i < c->n; i++)
		for (j = c->agents[i].jobs; j != NULL; j = j->next)
			uv_timer_stop(&j->timer);
}

/* ---- the driver (a worker thread: lg_ssm_call blocks) -------------------- */

static double
lc_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of pid in seconds, -1 if unreadable. */
static double
lc_proc_cpu(long pid)
{
	char path[64], line[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	int k;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	/* Fields after the command name, which may hold spaces: p is
	 * before field 3 (state); utime and stime are 14 and 15. */
	if (p == NULL || (p = strrchr(line, ')')) == NULL)
		return -1;
	p++;
	for (k = 3; k < 14 && p != NULL; k++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A "Key:" line of /proc/pid/status in kB, -1 if unreadable. */
static long
lc_proc_kb(long pid, const char *key)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, kl) == 0) {
			kb = strtol(line + kl, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

static json_t *
lc_call(struct lg_cmd *c, const char *action, json_t *body, char *err,
    size_t errlen)
{
	struct buf resp;
	json_t *r = NULL;
	char *js;

	if (body == NULL || (js = json_dumps(body, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", action);
		return NULL;
	}
	buf_init(&resp, LC_RESP_MAX);
	if (lg_ssm_call(&c->admin, action, js, &resp, err, errlen) == 0 &&
	    (r = json_loadb((const char *)resp.data, resp.len, 0, NULL)) ==
	    NULL)
		snprintf(err, errlen, "%s: the answer is not JSON", action);
	buf_free(&resp);
	free(js);
	return r;
}

/* Targets from --target. */
static json_t *
lc_targets(struct lg_cmd *c, char *err, size_t errlen)
{
	const char *t = c->o.target != NULL ? c->o.target : "instance-ids";
	const char *eq;
	char key[160];

	if (strcmp(t, "instance-ids") == 0)
		return json_pack("[{s:s, s:O}]", "Key", "InstanceIds",
		    "Values", c->targets);
	if (strncmp(t, "tag-key:", 8) == 0)
		return json_pack("[{s:s, s:[s]}]", "Key", "tag-key",
		    "Values", t + 8);
	if (strncmp(t, "tag:", 4) == 0 && (eq = strchr(t + 4, '=')) != NULL &&
	    eq > t + 4 && (size_t)(eq - t) < sizeof(key)) {
		snprintf(key, sizeof(key), "%.*s", (int)(eq - t), t);
		return json_pack("[{s:s, s:[s]}]", "Key", key, "Values",
		    eq + 1);
	}
	snprintf(err, errlen, "--target wants tag:KEY=VALUE, tag-key:KEY or "
	    "instance-ids");
	return NULL;
}

static int
lc_final(const char *s)
{
	return s != NULL && (strcmp(s, "Success") == 0 ||
	    strcmp(s, "Failed") == 0 || strcmp(s, "Cancelled") == 0 ||
	    strcmp(s, "TimedOut") == 0);
}

static void
lc_count(json_t *counts, const char *k)
{
	json_t *v;

	if (k == NULL)
		k = "(none)";
	v = json_object_get(counts, k);
	json_object_set_new(counts, k, json_integer(v ?
	    json_integer_value(v) + 1 : 1));
}

static void
lc_drive_work(uv_work_t *w)
{
	struct lg_cmd *c = w->data;
	char err[1024], cid[128] = "";
	json_t *body = NULL, *r = NULL, *cmd, *tg, *counts, *details, *inv;
	const char *status = NULL, *next;
	double t0, t_final = -1, cpu0 = -1, cpu1 = -1, last_note;
	long rss, rss_peak = -1;
	size_t i, pages, ninv = 0;
	json_t *s = json_object();

	err[0] = '\0';
	c->summary = s;
	if (c->o.server_pid > 0) {
		cpu0 = lc_proc_cpu(c->o.server_pid);
		rss_peak = lc_proc_kb(c->o.server_pid, "VmRSS:");
		json_object_set_new(s, "server_rss_kb_before",
		    json_integer(rss_peak));
	}
	if ((tg = lc_targets(c, err, sizeof(err))) == NULL)
		goto fail;
	body = json_pack("{s:s, s:o, s:{s:[s]}, s:s, s:s, s:s}",
	    "DocumentName", c->o.send_document, "Targets", tg,
	    "Parameters", "commands", c->o.commands != NULL ?
	    c->o.commands : "echo hi",
	    "MaxConcurrency", c->o.max_concurrency != NULL ?
	    c->o.max_concurrency : "100%",
	    "MaxErrors", c->o.max_errors != NULL ? c->o.max_errors : "0",
	    "Comment", "porthole-loadgen");
	t0 = lc_mono();
	r = lc_call(c, "SendCommand", body, err, sizeof(err));
	json_decref(body);
	body = NULL;
	cmd = json_object_get(r, "Command");
	if (json_string_value(json_object_get(cmd, "CommandId")) == NULL) {
		if (err[0] == '\0')
			snprintf(err, sizeof(err), "SendCommand: no CommandId");
		goto fail;
	}
	snprintf(cid, sizeof(cid), "%s", json_string_value(json_object_get(
	    cmd, "CommandId")));
	json_object_set_new(s, "command_id", json_string(cid));
	json_object_set(s, "target_count", json_object_get(cmd,
	    "TargetCount"));
	json_decref(r);
	r = NULL;
	last_note = t0;
	/* Poll until final, bounded by timeout_s. */
	while (lc_mono() - t0 < (double)c->o.timeout_s) {
		usleep(LC_POLL_MS * 1000);
		if (c->o.server_pid > 0 && (rss = lc_proc_kb(c->o.server_pid,
		    "VmRSS:")) > rss_peak)
			rss_peak = rss;
		body = json_pack("{s:s}", "CommandId", cid);
		r = lc_call(c, "ListCommands", body, err, sizeof(err));
		json_decref(body);
		body = NULL;
		cmd = json_array_get(json_object_get(r, "Commands"), 0);
		status = json_string_value(json_object_get(cmd, "Status"));
		if (lc_final(status)) {
			t_final = lc_mono();
			json_object_set_new(s, "status", json_string(status));
			json_object_set(s, "status_details", json_object_get(
			    cmd, "StatusDetails"));
			json_object_set(s, "completed_count", json_object_get(
			    cmd, "CompletedCount"));
			json_object_set(s, "error_count", json_object_get(cmd,
			    "ErrorCount"));
			json_object_set(s, "target_count", json_object_get(cmd,
			    "TargetCount"));
			break;
		}
		if (lc_mono() - last_note >= 5) {
			last_note = lc_mono();
			fprintf(stderr, "porthole-loadgen: command %s %s, "
			    "%" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
			    " complete\n", cid, status ? status : "?",
			    json_integer_value(json_object_get(cmd,
			    "CompletedCount")), json_integer_value(
			    json_object_get(cmd, "TargetCount")));
		}
		json_decref(r);
		r = NULL;
	}
	json_decref(r);
	r = NULL;
	if (c->o.server_pid > 0) {
		cpu1 = lc_proc_cpu(c->o.server_pid);
		json_object_set_new(s, "server_cpu_seconds", json_real(
		    cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1));
		json_object_set_new(s, "server_rss_kb_peak",
		    json_integer(rss_peak));
		json_object_set_new(s, "server_vmhwm_kb", json_integer(
		    lc_proc_kb(c->o.server_pid, "VmHWM:")));
	}
	if (t_final < 0) {
		json_object_set_new(s, "status", json_string(status ? status :
		    "unknown"));
		json_object_set_new(s, "timed_out", json_true());
		json_object_set_new(s, "seconds_waited",
		    json_real(lc_mono() - t0));
		if (err[0] != '\0')
			json_object_set_new(s, "error", json_string(err));
		return;
	}
	json_object_set_new(s, "seconds_to_final", json_real(t_final - t0));
	/* Per-invocation statuses, page by page. */
	counts = json_object();
	details = json_object();
	json_object_set_new(s, "invocations", counts);
	json_object_set_new(s, "invocation_details", details);
	next = NULL;
	for (pages = 0; pages < LC_PAGES_MAX; pages++) {
		body = json_pack("{s:s, s:i}", "CommandId", cid, "MaxResults",
		    50);
		if (body != NULL && next != NULL)
			json_object_set_new(body, "NextToken",
			    json_string(next));
		json_decref(r);
		r = lc_call(c, "ListCommandInvocations", body, err,
		    sizeof(err));
		json_decref(body);
		body = NULL;
		if (r == NULL) {
			json_object_set_new(s, "error", json_string(err));
			break;
		}
		json_array_foreach(json_object_get(r,
		    "CommandInvocations"), i, inv) {
			lc_count(counts, json_string_value(json_object_get(inv,
			    "Status")));
			lc_count(details, json_string_value(json_object_get(
			    inv, "StatusDetails")));
			ninv++;
		}
		next = json_string_value(json_object_get(r, "NextToken"));
		if (next == NULL || *next == '\0')
			break;
	}
	json_decref(r);
	json_object_set_new(s, "invocations_listed", json_integer(
	    (json_int_t)ninv));
	return;
fail:
	json_decref(r);
	json_object_set_new(s, "error", json_string(err));
}

static void
lc_drive_after(uv_work_t *w, int status)
{
	struct lg_cmd *c = w->data;

	(void)status;
	c->driving = 0;
	if (c->done != NULL)
		c->done(c->done_arg);
}

int
lg_cmd_drive(struct lg_cmd *c, void (*done)(void *), void *arg)
{
	size_t i;

	if (c == NULL || c->o.send_document == NULL || c->driving)
		return PH_ERR_STATE;
	json_decref(c->targets);
	c->targets = json_array();
	for (i = 0; i < c->n; i++)
		if (c->agents[i].ws != NULL)
			json_array_append_new(c->targets,
			    json_string(c->ids[i]));
	c->done = done;
	c->done_arg = arg;
	c->work.data = c;
	c->driving = 1;
	if (uv_queue_work(c->loop, &c->work, lc_drive_work,
	    lc_drive_after) != 0) {
		c->driving = 0;
		return PH_ERR_IO;
	}
	return 0;
}

int
lg_cmd_busy(const struct lg_cmd *c)
{
	return c != NULL && c->driving;
}

int
lg_cmd_tag_agents(const struct lg_admin *admin, char (*ids)[LG_ID_MAX + 1],
    size_t n, const char *tag, char *err, size_t errlen)
{
	const char *eq = strchr(tag, '=');
	char key[129];
	struct buf resp;
	json_t *b;
	char *js;
	size_t i;
	int rc = 0;

	if (eq == NULL || eq == tag || (size_t)(eq - tag) >= sizeof(key)) {
		snprintf(err, errlen, "--tag wants KEY=VALUE");
		return PH_ERR_INVALID;
	}
	snprintf(key, sizeof(key), "%.*s", (int)(eq - tag), tag);
	buf_init(&resp, LC_RESP_MAX);
	for (i = 0; i < n && rc == 0; i++) {
		b = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "ResourceType",
		    "ManagedInstance", "ResourceId", ids[i], "Tags", "Key",
		    key, "Value", eq + 1);
		js = b ? json_dumps(b, JSON_COMPACT) : NULL;
		json_decref(b);
		if (js == NULL) {
			snprintf(err, errlen, "out of memory");
			rc = PH_ERR_NOMEM;
			break;
		}
		rc = lg_ssm_call(admin, "AddTagsToResource", js, &resp, err,
		    errlen);
		free(js);
	}
	buf_free(&resp);
	return rc;
}

void
lg_cmd_report(struct lg_cmd *c, json_t *out)
{
	size_t i, failing = 0;

	for (i = 0; i < c->n; i++)
		failing += lg_cmd_agent_fails(c, i) ? 1 : 0;
#define LC_SET(k, v) json_object_set_new(out, k, \
	    json_integer((json_int_t)(v)))
	LC_SET("command_agents_failing", failing);
	LC_SET("command_jobs", c->jobs);
	LC_SET("command_job_acks", c->acks_sent);
	LC_SET("command_duplicate_jobs", c->duplicates);
	LC_SET("command_bad_jobs", c->bad_jobs);
	LC_SET("command_cancels", c->cancels);
	LC_SET("command_progress_replies", c->progress_replies);
	LC_SET("command_final_replies", c->finals);
	LC_SET("command_final_failed", c->finals_failed);
	LC_SET("command_final_acked", c->finals_acked);
	LC_SET("command_reply_resends", c->resends);
	LC_SET("command_unacked_given_up", c->unacked_given_up);
	LC_SET("command_send_failures", c->send_failures);
	LC_SET("command_in_flight_at_end", c->in_flight);
	LC_SET("command_max_in_flight", c->max_in_flight);
#undef LC_SET
	if (c->summary != NULL)
		json_object_set(out, "command", c->summary);
}

void
lg_cmd_free(struct lg_cmd *c)
{
	struct lc_job *j, *nx;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		for (j = c->agents[i].jobs; j != NULL; j = nx) {
			nx = j->next;
			free(j->final_payload);
			free(j);
		}
	free(c->agents);
	json_decref(c->targets);
	json_decref(c->summary);
	lg_admin_clear(&c->admin);
	free(c);
}
