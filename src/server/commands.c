/* commands: Run Command's dispatcher (commands.h).
 *
 * The store is the state: which invocations are Pending, delivered
 * (delivered_ms, set by a successful agent_job_ack) or final. In memory
 * there are only two marks per invocation, both keyed by JobId: "a job
 * was sent and is not acked yet" (so a tick does not send it again while
 * the agent is busy acking) and "a cancelCommand job was sent". Both are
 * forgotten when the agent's control channel comes back, and both are
 * empty after a restart: an unacked job is sent again and an agent that
 * did get it answers DuplicateCommand, which counts as delivered. A job
 * the agent acked is never sent again.
 *
 * Everything runs on the loop: a 1 s tick drives every active command;
 * commands_kick and an agent coming online drive at once (the latter
 * coalesced through a short timer, as a thousand agents reconnect at
 * once after a restart). */
#include "server/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"
#include "server/gateway.h"
#include "server/store_commands.h"
#include "server/strmap.h"

#define CM_TICK_MS 1000
#define CM_SOON_MS 20
/* A job the agent did not ack within this is sent again. */
#define CM_RESEND_MS 30000
/* spec 8.3: the agent drops replies whose content is larger. */
#define CM_REPLY_CONTENT_MAX 120000
#define CM_REPLY_FRAME_MAX (CM_REPLY_CONTENT_MAX * 2 + 4096)
#define CM_ACK_FRAME_MAX 4096
/* A command's invocations driven per pass (bounded loops). */
#define CM_MAX_INVOCATIONS 100000
#define CM_MAX_ACTIVE 10000
#define CM_MAX_PLUGINS 64
#define CM_JOB_PREFIX "aws.ssm."
#define CM_TOPIC_SEND "aws.ssm.sendCommand"
#define CM_TOPIC_CANCEL "aws.ssm.cancelCommand"

struct cm_mark {
	int64_t at_ms;
	char instance_id[64];
	char job_id[160];
};

struct commands {
	struct server *srv;
	uv_timer_t tick;
	uv_timer_t soon;
	struct strmap *sent;      /* JobId -> cm_mark: job sent, not acked */
	struct strmap *cancels;   /* JobId -> cm_mark: cancelCommand sent */
	struct strmap *dirty;     /* command id -> its copy: drive soon */
	int soon_all;             /* drive every active command soon */
	int closing;              /* close callbacks still to come */
	int soon_armed;
	int in_drive;             /* no re-entry from a kick */
};

/* The invocation fields a pass looks at, copied out of the store's
 * iteration so the pass may write while it decides. */
struct cm_inv {
	char instance_id[64];
	char status[STORE_CMD_STATUS_SIZE];
	char details[STORE_CMD_DETAILS_SIZE];
	int64_t delivered_ms;
};

struct cm_invs {
	struct cm_inv *v;
	size_t n, cap;
	int partial;              /* not all of them: no status from these */
};

static int64_t
cm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
cm_set(char *dst, size_t size, const char *s)
{
	snprintf(dst, size, "%s", s != NULL ? s : "");
}

/* ---- pure pieces (unit-tested) ------------------------------------------ */

int
commands_rate_value(const char *rate, int target_count, int at_least_one)
{
	char *end;
	long v;
	int n;

	if (target_count < 0)
		target_count = 0;
	if (rate == NULL || rate[0] == '\0')
		return at_least_one ? (target_count > 0 ? target_count : 1) : 0;
	v = strtol(rate, &end, 10);
	if (end == rate || v < 0)
		return at_least_one ? 1 : 0;
	if (*end == '%' && end[1] == '\0') {
		if (v > 100)
			v = 100;
		/* A share of the targets, rounded down. */
		n = (int)((v * (long)target_count) / 100);
	} else if (*end == '\0')
		n = v > 1000000 ? 1000000 : (int)v;
	else
		return at_least_one ? 1 : 0;
	if (at_least_one && n < 1)
		n = 1;
	return n;
}

int
commands_status_final(const char *status)
{
	return status != NULL && (strcmp(status, "Success") == 0 ||
	    strcmp(status, "Failed") == 0 || strcmp(status, "TimedOut") == 0 ||
	    strcmp(status, "Cancelled") == 0);
}

void
commands_tally_add(struct commands_tally *t, const char *status,
    const char *details, int64_t delivered_ms)
{
	t->target++;
	if (delivered_ms != 0)
		t->delivered++;
	if (strcmp(status, "Success") == 0)
		t->success++;
	else if (strcmp(status, "Failed") == 0)
		t->failed++;
	else if (strcmp(status, "TimedOut") == 0) {
		if (strcmp(details, "DeliveryTimedOut") == 0)
			t->delivery_timed_out++;
		else
			t->exec_timed_out++;
	} else if (strcmp(status, "Cancelled") == 0) {
		if (strcmp(details, "Terminated") == 0)
			t->terminated++;
		else
			t->cancelled++;
	} else {
		t->open++;
		if (strcmp(status, "Cancelling") == 0)
			t->cancelling++;
	}
}

/* AWS's rules (Understanding command statuses): Failed and execution
 * timeouts count against MaxErrors, delivery timeouts do not but keep
 * the command from Success; a command is Failed (or TimedOut) once more
 * than MaxErrors invocations ended so, Incomplete (Status Failed) when
 * something else kept it from Success. */
void
commands_aggregate(const struct commands_tally *t, int max_errors,
    struct command_rec *c)
{
	const char *st, *de;
	int errors = t->failed + t->exec_timed_out;

	c->target_count = t->target;
	c->completed_count = t->target - t->open;
	c->error_count = errors;
	c->delivery_timed_out_count = t->delivery_timed_out;
	if (t->open > 0) {
		if (t->cancelling > 0)
			st = de = "Cancelling";
		else if (t->delivered > 0 || t->target - t->open > 0)
			st = de = "InProgress";
		else
			st = de = "Pending";
	} else if (t->success == t->target)
		st = de = "Success";
	else if (t->cancelled > 0)
		st = de = "Cancelled";
	else if (errors > max_errors) {
		if (t->failed == 0 || (t->exec_timed_out > max_errors &&
		    t->failed <= max_errors)) {
			st = "TimedOut";
			de = "ExecutionTimedOut";
		} else
			st = de = "Failed";
	} else if (t->delivery_timed_out > max_errors) {
		st = "TimedOut";
		de = "DeliveryTimedOut";
	} else {
		st = "Failed";
		de = "Incomplete";
	}
	cm_set(c->status, sizeof(c->status), st);
	cm_set(c->status_details, sizeof(c->status_details), de);
}

/* The agent's ResultStatus (spec 8.3) as the API's Status and
 * StatusDetails. */
void
commands_map_status(const char *agent, char *status, size_t ssize,
    char *details, size_t dsize)
{
	const char *st = "Failed", *de = "Failed";

	if (agent == NULL)
		;
	else if (strcmp(agent, "InProgress") == 0)
		st = de = "InProgress";
	else if (strcmp(agent, "NotStarted") == 0)
		st = de = "Pending";
	else if (strcmp(agent, "Success") == 0 ||
	    strcmp(agent, "SuccessAndReboot") == 0 ||
	    strcmp(agent, "PassedAndReboot") == 0)
		st = de = "Success";
	else if (strcmp(agent, "Skipped") == 0) {
		st = "Success";
		de = "Skipped";
	} else if (strcmp(agent, "TimedOut") == 0) {
		st = "TimedOut";
		de = "ExecutionTimedOut";
	} else if (strcmp(agent, "Cancelled") == 0)
		st = de = "Cancelled";
	else if (strcmp(agent, "Cancelling") == 0)
		st = de = "Cancelling";
	cm_set(status, ssize, st);
	cm_set(details, dsize, de);
}

/* "aws.ssm.<CommandId>.<InstanceId>": the command id is everything
 * between the prefix and the last dot. */
int
commands_parse_job_id(const char *job_id, char command_id[37],
    char instance_id[64])
{
	const char *rest, *dot;
	size_t n;

	if (job_id == NULL || strncmp(job_id, CM_JOB_PREFIX,
	    sizeof(CM_JOB_PREFIX) - 1) != 0)
		return PH_ERR_INVALID;
	rest = job_id + sizeof(CM_JOB_PREFIX) - 1;
	if ((dot = strrchr(rest, '.')) == NULL)
		return PH_ERR_INVALID;
	n = (size_t)(dot - rest);
	if (n == 0 || n >= STORE_COMMAND_ID_SIZE || dot[1] == '\0' ||
	    strlen(dot + 1) >= 64)
		return PH_ERR_INVALID;
	memcpy(command_id, rest, n);
	command_id[n] = '\0';
	snprintf(instance_id, 64, "%s", dot + 1);
	return 0;
}

/* yyyy-MM-ddTHH:mm:ss[.SSS]Z as ms; 0 if it is not one. */
static int64_t
cm_parse_time(const char *s)
{
	int y, mo, d, h, mi, se, ms = 0, n = 0;
	struct tm tm;

	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d,
	    &h, &mi, &se, &n) != 6)
		return 0;
	if (s[n] == '.') {
		int k;

		for (k = 1; k <= 3 && s[n + k] >= '0' && s[n + k] <= '9'; k++)
			ms = ms * 10 + (s[n + k] - '0');
		for (; k <= 3; k++)
			ms *= 10;
	}
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || se > 60)
		return 0;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* At most max characters (UTF-8 code points) of s, appended to *dst
 * (which holds *have characters so far). */
static int
cm_append_chars(char **dst, size_t *have, const char *s, size_t max)
{
	size_t i = 0, chars = *have, old, len;
	char *p;

	if (s == NULL || s[0] == '\0' || chars >= max)
		return 0;
	while (s[i] != '\0' && chars < max) {
		i++;
		while (((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		chars++;
	}
	old = *dst != NULL ? strlen(*dst) : 0;
	len = old + i;
	if ((p = realloc(*dst, len + 1)) == NULL)
		return PH_ERR_NOMEM;
	memcpy(p + old, s, i);
	p[len] = '\0';
	*dst = p;
	*have = chars;
	return 0;
}

static const char *
cm_jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int
cm_jint(json_t *o, const char *key, int dflt)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return (int)json_integer_value(v);
	if (json_is_string(v) && json_string_length(v) > 0 &&
	    json_string_length(v) < 12)
		return atoi(json_string_value(v));
	return dflt;
}

/* Apply one SendReplyPayload (the decoded "content" string) to v: its
 * Status, StatusDetails, steps, outputs, ResponseCode and times. The
 * command gives the bucket the steps name. 0 or PH_ERR_INVALID. */
int
commands_apply_reply(struct invocation_rec *v, const struct command_rec *c,
    const char *content, size_t len, int64_t now_ms)
{
	char st[STORE_CMD_STATUS_SIZE], de[STORE_CMD_DETAILS_SIZE];
	char pst[STORE_CMD_STATUS_SIZE], pde[STORE_CMD_DETAILS_SIZE];
	char *out = NULL, *err = NULL, *plugins_s = NULL;
	size_t outc = 0, errc = 0, nplug = 0;
	int64_t first_start = 0, last_end = 0, t;
	int code = -1, fail_code = -1, have_fail = 0, rc = PH_ERR_INVALID;
	json_t *o = NULL, *runtime, *plugins = NULL, *p, *prev;
	json_error_t jerr;
	const char *doc, *key;
	void *it;

	if (content == NULL || len == 0 || len > CM_REPLY_CONTENT_MAX)
		return PH_ERR_INVALID;
	o = json_loadb(content, len, 0, &jerr);
	if (o == NULL || !json_is_object(o) ||
	    (doc = cm_jstr(o, "documentStatus")) == NULL)
		goto fail;
	runtime = json_object_get(o, "runtimeStatus");
	if (runtime != NULL && !json_is_null(runtime) &&
	    !json_is_object(runtime))
		goto fail;
	commands_map_status(doc, st, sizeof(st), de, sizeof(de));
	rc = PH_ERR_NOMEM;
	/* Steps already known keep their place; a reply names the steps
	 * that finished (or the one running). */
	prev = NULL;
	if (v->plugins_json != NULL)
		prev = json_loads(v->plugins_json, 0, &jerr);
	plugins = json_is_array(prev) ? prev : json_array();
	if (plugins != prev)
		json_decref(prev);
	if (plugins == NULL)
		goto fail;
	for (it = json_object_iter(runtime); it != NULL && nplug <
	    CM_MAX_PLUGINS; it = json_object_iter_next(runtime, it), nplug++) {
		json_t *r = json_object_iter_value(it);
		const char *name;
		int pcode;
		size_t i;

		key = json_object_iter_key(it);
		if (!json_is_object(r))
			continue;
		commands_map_status(cm_jstr(r, "status"), pst, sizeof(pst), pde,
		    sizeof(pde));
		pcode = cm_jint(r, "code", strcmp(pst, "Success") == 0 ? 0 : -1);
		name = cm_jstr(r, "name");
		if (name == NULL || name[0] == '\0')
			name = key;
		p = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:s, s:s,"
		    " s:s, s:s, s:s, s:s}",
		    "Name", key, "PluginName", name,
		    "Status", pst, "StatusDetails", pde, "ResponseCode", pcode,
		    "ResponseStartDateTime",
		    (json_int_t)cm_parse_time(cm_jstr(r, "startDateTime")),
		    "ResponseFinishDateTime",
		    (json_int_t)cm_parse_time(cm_jstr(r, "endDateTime")),
		    "Output", cm_jstr(r, "output") ? cm_jstr(r, "output") : "",
		    "StandardOutputUrl", "", "StandardErrorUrl", "",
		    "OutputS3Region", c != NULL && c->output_s3_region ?
		    c->output_s3_region : "",
		    "OutputS3BucketName", c != NULL && c->output_s3_bucket ?
		    c->output_s3_bucket : "",
		    "OutputS3KeyPrefix", c != NULL && c->output_s3_prefix ?
		    c->output_s3_prefix : "");
		if (p == NULL)
			goto fail;
		/* The whole first 24,000/8,000 characters of the step, for
		 * GetCommandInvocation --plugin-name. */
		json_object_set_new(p, "StandardOutputContent", json_string(
		    cm_jstr(r, "standardOutput") ? cm_jstr(r,
		    "standardOutput") : ""));
		json_object_set_new(p, "StandardErrorContent", json_string(
		    cm_jstr(r, "standardError") ? cm_jstr(r,
		    "standardError") : ""));
		/* Replace the step if it was reported before. */
		for (i = 0; i < json_array_size(plugins); i++) {
			const char *n = cm_jstr(json_array_get(plugins, i),
			    "Name");

			if (n != NULL && strcmp(n, key) == 0)
				break;
		}
		if (i < json_array_size(plugins)) {
			/* An upload's URLs outlive the step's later replies. */
			json_t *was = json_array_get(plugins, i);
			const char *u;

			if ((u = cm_jstr(was, "StandardOutputUrl")) != NULL &&
			    u[0] != '\0')
				json_object_set_new(p, "StandardOutputUrl",
				    json_string(u));
			if ((u = cm_jstr(was, "StandardErrorUrl")) != NULL &&
			    u[0] != '\0')
				json_object_set_new(p, "StandardErrorUrl",
				    json_string(u));
			json_array_set_new(plugins, i, p);
		}
		else
			json_array_append_new(plugins, p);
	}
	/* The invocation's view: every step's outputs in order, its
	 * response code the first failing step's, else the last one's. */
	for (nplug = 0; nplug < json_array_size(plugins) && nplug <
	    CM_MAX_PLUGINS; nplug++) {
		json_t *q = json_array_get(plugins, nplug);
		const char *ps = cm_jstr(q, "Status");

		if (cm_append_chars(&out, &outc, cm_jstr(q,
		    "StandardOutputContent"), 24000) != 0 ||
		    cm_append_chars(&err, &errc, cm_jstr(q,
		    "StandardErrorContent"), 8000) != 0)
			goto fail;
		t = json_integer_value(json_object_get(q,
		    "ResponseStartDateTime"));
		if (t != 0 && (first_start == 0 || t < first_start))
			first_start = t;
		t = json_integer_value(json_object_get(q,
		    "ResponseFinishDateTime"));
		if (t > last_end)
			last_end = t;
		if (ps != NULL && strcmp(ps, "Success") != 0 &&
		    commands_status_final(ps) && !have_fail) {
			have_fail = 1;
			fail_code = cm_jint(q, "ResponseCode", -1);
		}
		if (ps != NULL && commands_status_final(ps))
			code = cm_jint(q, "ResponseCode", -1);
	}
	if ((plugins_s = json_dumps(plugins, JSON_COMPACT)) == NULL)
		goto fail;
	/* A cancel asked for stays Cancelling until the agent's final word. */
	if (!(strcmp(v->status, "Cancelling") == 0 &&
	    !commands_status_final(st))) {
		cm_set(v->status, sizeof(v->status), st);
		cm_set(v->status_details, sizeof(v->status_details), de);
	}
	if (v->delivered_ms == 0)
		v->delivered_ms = now_ms;
	if (v->started_ms == 0)
		v->started_ms = first_start != 0 ? first_start : now_ms;
	if (commands_status_final(v->status)) {
		v->ended_ms = last_end != 0 ? last_end : now_ms;
		v->response_code = have_fail ? fail_code : code;
		if (v->response_code < 0 && strcmp(v->status, "Success") == 0)
			v->response_code = 0;
	}
	free(v->plugins_json);
	v->plugins_json = plugins_s;
	plugins_s = NULL;
	free(v->stdout_text);
	v->stdout_text = out != NULL ? out : strdup("");
	out = NULL;
	free(v->stderr_text);
	v->stderr_text = err != NULL ? err : strdup("");
	err = NULL;
	rc = 0;
fail:
	free(out);
	free(err);
	free(plugins_s);
	json_decref(plugins);
	json_decref(o);
	return rc;
}

/* ---- marks --------------------------------------------------------------- */

static int
cm_mark_put(struct strmap *m, const char *job_id, const char *instance_id,
    int64_t now)
{
	struct cm_mark *k, *old = NULL;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return PH_ERR_NOMEM;
	k->at_ms = now;
	cm_set(k->instance_id, sizeof(k->instance_id), instance_id);
	cm_set(k->job_id, sizeof(k->job_id), job_id);
	if (strmap_put(m, k->job_id, k, (void **)&old) != 0) {
		free(k);
		return PH_ERR_NOMEM;
	}
	free(old);
	return 0;
}

static void
cm_mark_del(struct strmap *m, const char *job_id)
{
	struct cm_mark *k = strmap_get(m, job_id);

	if (k != NULL) {
		strmap_del(m, job_id, k);
		free(k);
	}
}

/* Forget the marks of one instance (NULL: all). */
static void
cm_mark_clear(struct strmap *m, const char *instance_id)
{
	struct cm_mark **all;
	size_t n, i;

	n = strmap_count(m);
	if (n == 0 || (all = calloc(n, sizeof(*all))) == NULL)
		return;
	n = strmap_values(m, (void **)all, n);
	for (i = 0; i < n; i++) {
		if (instance_id != NULL &&
		    strcmp(all[i]->instance_id, instance_id) != 0)
			continue;
		strmap_del(m, all[i]->job_id, all[i]);
		free(all[i]);
	}
	free(all);
}

static void
cm_job_id(char *out, size_t size, const char *command_id,
    const char *instance_id)
{
	snprintf(out, size, CM_JOB_PREFIX "%s.%s", command_id, instance_id);
}

/* ---- frames to the agent ------------------------------------------------- */

static int
cm_send_job(struct commands *cm, const char *instance_id, const char *job_id,
    const char *topic, json_t *content_obj)
{
	char *content = NULL, *payload = NULL;
	json_t *outer = NULL;
	int rc = PH_ERR_NOMEM;

	if ((content = json_dumps(content_obj, JSON_COMPACT)) == NULL)
		goto fail;
	outer = json_pack("{s:s, s:s, s:s, s:i}", "Content", content,
	    "JobId", job_id, "Topic", topic, "SchemaVersion", 1);
	if (outer == NULL ||
	    (payload = json_dumps(outer, JSON_COMPACT)) == NULL)
		goto fail;
	rc = gateway_send_control(cm->srv->gw, instance_id, MT_AGENT_JOB,
	    payload, NULL);
fail:
	free(payload);
	free(content);
	json_decref(outer);
	return rc;
}

static json_t *
cm_json_or(const char *s, json_t *dflt)
{
	json_error_t jerr;
	json_t *o = s != NULL && s[0] != '\0' ? json_loads(s, 0, &jerr) : NULL;

	if (o == NULL)
		return dflt;
	json_decref(dflt);
	return o;
}

/* spec 8.3: SendCommandPayload. */
static int
cm_deliver(struct commands *cm, const struct command_rec *c,
    const char *instance_id)
{
	char job_id[160];
	json_t *p;
	int rc;

	cm_job_id(job_id, sizeof(job_id), c->command_id, instance_id);
	p = json_pack("{s:o, s:o, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "Parameters", cm_json_or(c->parameters_json, json_object()),
	    "DocumentContent", cm_json_or(c->content_json, json_object()),
	    "CommandId", c->command_id,
	    "DocumentName", c->document_name ? c->document_name : "",
	    "OutputS3KeyPrefix", c->output_s3_prefix ? c->output_s3_prefix : "",
	    "OutputS3BucketName", c->output_s3_bucket ? c->output_s3_bucket : "",
	    "CloudWatchLogGroupName", "",
	    "CloudWatchOutputEnabled", "false");
	if (p == NULL)
		return PH_ERR_NOMEM;
	rc = cm_send_job(cm, instance_id, job_id, CM_TOPIC_SEND, p);
	json_decref(p);
	if (rc == 0) {
		cm_mark_put(cm->sent, job_id, instance_id, cm_now_ms());
		log_info("event=command_delivery command=%s instance=%s",
		    c->command_id, instance_id);
	}
	return rc;
}

/* spec 8.3: CancelPayload; the cancel job has its own id. */
static int
cm_send_cancel(struct commands *cm, const char *command_id,
    const char *instance_id)
{
	char job_id[160], cancel_id[160], uuid[UUID_STR_LEN];
	json_t *p;
	int rc;

	cm_job_id(job_id, sizeof(job_id), command_id, instance_id);
	uuid_v4_str(uuid);
	cm_job_id(cancel_id, sizeof(cancel_id), uuid, instance_id);
	p = json_pack("{s:s}", "CancelMessageId", job_id);
	if (p == NULL)
		return PH_ERR_NOMEM;
	rc = cm_send_job(cm, instance_id, cancel_id, CM_TOPIC_CANCEL, p);
	json_decref(p);
	if (rc == 0) {
		cm_mark_put(cm->cancels, job_id, instance_id, cm_now_ms());
		log_info("event=command_cancel_sent command=%s instance=%s",
		    command_id, instance_id);
	}
	return rc;
}

/* ---- driving a command --------------------------------------------------- */

static int
cm_collect_inv(void *arg, const struct invocation_rec *v)
{
	struct cm_invs *a = arg;
	struct cm_inv *n;

	if (a->n >= CM_MAX_INVOCATIONS) {
		a->partial = 1;
		return 1;
	}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;

		if ((n = realloc(a->v, cap * sizeof(*n))) == NULL) {
			a->partial = 1;
			return 1;
		}
		a->v = n;
		a->cap = cap;
	}
	n = &a->v[a->n++];
	memset(n, 0, sizeof(*n));
	cm_set(n->instance_id, sizeof(n->instance_id), v->instance_id);
	cm_set(n->status, sizeof(n->status), v->status);
	cm_set(n->details, sizeof(n->details), v->status_details);
	n->delivered_ms = v->delivered_ms;
	return 0;
}

/* Set one invocation's status (not yet delivered ones: Delayed,
 * DeliveryTimedOut, Terminated, Cancelled). */
static int
cm_set_inv(struct commands *cm, const char *command_id, struct cm_inv *ci,
    const char *status, const char *details, int final, int64_t now)
{
	struct invocation_rec v;
	int rc;

	memset(&v, 0, sizeof(v));
	rc = store_invocation_get(cm->srv->store, command_id, ci->instance_id,
	    &v);
	if (rc != 0)
		return rc;
	if (commands_status_final(v.status)) {
		invocation_rec_clear(&v);
		return PH_ERR_STATE;
	}
	cm_set(v.status, sizeof(v.status), status);
	cm_set(v.status_details, sizeof(v.status_details), details);
	if (final)
		v.ended_ms = now;
	rc = store_invocation_update(cm->srv->store, &v);
	invocation_rec_clear(&v);
	if (rc == 0) {
		cm_set(ci->status, sizeof(ci->status), status);
		cm_set(ci->details, sizeof(ci->details), details);
	}
	return rc;
}

/* Recompute the command's status and counts; write them if changed. */
static void
cm_update_command(struct commands *cm, struct command_rec *c,
    const struct cm_invs *a)
{
	struct commands_tally t;
	struct command_rec before;
	size_t i;

	if (a->partial) {
		log_limited(LOG_WARN, "commands_partial",
		    "event=command_status_skipped command=%s invocations=%zu",
		    c->command_id, a->n);
		return;
	}
	memset(&t, 0, sizeof(t));
	for (i = 0; i < a->n; i++)
		commands_tally_add(&t, a->v[i].status, a->v[i].details,
		    a->v[i].delivered_ms);
	memcpy(before.status, c->status, sizeof(before.status));
	memcpy(before.status_details, c->status_details,
	    sizeof(before.status_details));
	before.completed_count = c->completed_count;
	before.error_count = c->error_count;
	before.delivery_timed_out_count = c->delivery_timed_out_count;
	before.target_count = c->target_count;
	commands_aggregate(&t, commands_rate_value(c->max_errors,
	    (int)a->n, 0), c);
	if (strcmp(before.status, c->status) == 0 &&
	    strcmp(before.status_details, c->status_details) == 0 &&
	    before.completed_count == c->completed_count &&
	    before.error_count == c->error_count &&
	    before.delivery_timed_out_count == c->delivery_timed_out_count &&
	    before.target_count == c->target_count)
		return;
	if (store_command_set_status(cm->srv->store, c) != 0)
		log_warn("event=store_error op=command_set_status command=%s",
		    c->command_id);
	else if (commands_status_final(c->status))
		log_info("event=command_done command=%s status=%s details=%s "
		    "targets=%d errors=%d delivery_timed_out=%d",
		    c->command_id, c->status, c->status_details,
		    c->target_count, c->error_count,
		    c->delivery_timed_out_count);
}

static void
cm_drive_rec(struct commands *cm, struct command_rec *c, int64_t now)
{
	struct cm_invs a = { NULL, 0, 0, 0 };
	char job_id[160];
	int conc, max_err, inflight = 0, errors = 0, online;
	struct cm_mark *k;
	size_t i;

	if (commands_status_final(c->status))
		return;
	if (store_invocation_query(cm->srv->store, c->command_id, NULL, 0,
	    CM_MAX_INVOCATIONS, cm_collect_inv, &a) != 0) {
		log_warn("event=store_error op=invocation_query command=%s",
		    c->command_id);
		goto done;
	}
	conc = commands_rate_value(c->max_concurrency, (int)a.n, 1);
	max_err = commands_rate_value(c->max_errors, (int)a.n, 0);
	for (i = 0; i < a.n; i++) {
		struct cm_inv *ci = &a.v[i];

		cm_job_id(job_id, sizeof(job_id), c->command_id,
		    ci->instance_id);
		if (strcmp(ci->status, "Failed") == 0 ||
		    (strcmp(ci->status, "TimedOut") == 0 &&
		    strcmp(ci->details, "DeliveryTimedOut") != 0))
			errors++;
		if (commands_status_final(ci->status))
			continue;
		k = strmap_get(cm->sent, job_id);
		if (ci->delivered_ms != 0 || (k != NULL &&
		    now - k->at_ms < CM_RESEND_MS))
			inflight++;
	}
	for (i = 0; i < a.n; i++) {
		struct cm_inv *ci = &a.v[i];

		if (commands_status_final(ci->status))
			continue;
		cm_job_id(job_id, sizeof(job_id), c->command_id,
		    ci->instance_id);
		online = gateway_instance_online(cm->srv->gw, ci->instance_id);
		if (strcmp(ci->status, "Cancelling") == 0) {
			if (online && strmap_get(cm->cancels, job_id) == NULL)
				cm_send_cancel(cm, c->command_id,
				    ci->instance_id);
			continue;
		}
		if (ci->delivered_ms != 0)
			continue; /* the agent has it; it times out itself */
		k = strmap_get(cm->sent, job_id);
		if (c->expires_ms > 0 && now >= c->expires_ms) {
			/* Not delivered within TimeoutSeconds. */
			if (k != NULL)
				inflight--;
			cm_mark_del(cm->sent, job_id);
			cm_set_inv(cm, c->command_id, ci, "TimedOut",
			    "DeliveryTimedOut", 1, now);
			log_info("event=command_delivery_timed_out command=%s "
			    "instance=%s", c->command_id, ci->instance_id);
			continue;
		}
		if (k != NULL && now - k->at_ms < CM_RESEND_MS)
			continue; /* waiting for its ack */
		if (errors > max_err) {
			/* MaxErrors passed: the rest is never sent. */
			cm_mark_del(cm->sent, job_id);
			cm_set_inv(cm, c->command_id, ci, "Cancelled",
			    "Terminated", 1, now);
			continue;
		}
		if (inflight >= conc)
			continue;
		if (!online) {
			if (strcmp(ci->status, "Delayed") != 0)
				cm_set_inv(cm, c->command_id, ci, "Delayed",
				    "Delayed", 0, now);
			continue;
		}
		if (cm_deliver(cm, c, ci->instance_id) == 0)
			inflight++;
	}
	cm_update_command(cm, c, &a);
done:
	free(a.v);
}

static void
cm_drive(struct commands *cm, const char *command_id, int64_t now)
{
	struct command_rec c;

	memset(&c, 0, sizeof(c));
	if (store_command_get(cm->srv->store, command_id, &c) != 0)
		return;
	cm_drive_rec(cm, &c, now);
	command_rec_clear(&c);
}

struct cm_ids {
	char (*id)[STORE_COMMAND_ID_SIZE];
	size_t n, cap;
};

static int
cm_collect_cmd(void *arg, const struct command_rec *c)
{
	struct cm_ids *a = arg;
	void *n;

	if (a->n >= CM_MAX_ACTIVE)
		return 1;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;

		if ((n = realloc(a->id, cap * sizeof(*a->id))) == NULL)
			return 1;
		a->id = n;
		a->cap = cap;
	}
	cm_set(a->id[a->n++], STORE_COMMAND_ID_SIZE, c->command_id);
	return 0;
}

static void
cm_drive_all(struct commands *cm)
{
	struct cm_ids a = { NULL, 0, 0 };
	int64_t now = cm_now_ms();
	size_t i;

	if (cm->srv->shutting_down || cm->in_drive)
		return;
	cm->in_drive = 1;
	if (store_command_foreach_active(cm->srv->store, cm_collect_cmd,
	    &a) != 0)
		log_limited(LOG_WARN, "commands_store",
		    "event=store_error op=command_foreach_active");
	for (i = 0; i < a.n; i++)
		cm_drive(cm, a.id[i], now);
	free(a.id);
	cm->in_drive = 0;
}

static void
cm_tick_cb(uv_timer_t *t)
{
	cm_drive_all(t->data);
}

static void
cm_dirty_clear(struct commands *cm)
{
	char **all;
	size_t n, i;

	n = strmap_count(cm->dirty);
	if (n == 0 || (all = calloc(n, sizeof(*all))) == NULL)
		return;
	n = strmap_values(cm->dirty, (void **)all, n);
	for (i = 0; i < n; i++) {
		strmap_del(cm->dirty, all[i], all[i]);
		free(all[i]);
	}
	free(all);
}

/* Replies and acks of many agents come in bursts: the commands they
 * touch are driven once, together, a moment later. */
static void
cm_soon_cb(uv_timer_t *t)
{
	struct commands *cm = t->data;
	char **all = NULL;
	size_t n, i;

	cm->soon_armed = 0;
	if (cm->soon_all) {
		cm->soon_all = 0;
		cm_dirty_clear(cm);
		cm_drive_all(cm);
		return;
	}
	n = strmap_count(cm->dirty);
	if (n == 0 || (all = calloc(n, sizeof(*all))) == NULL)
		return;
	n = strmap_values(cm->dirty, (void **)all, n);
	for (i = 0; i < n; i++)
		strmap_del(cm->dirty, all[i], all[i]);
	for (i = 0; i < n; i++) {
		commands_kick(cm, all[i]);
		free(all[i]);
	}
	free(all);
}

/* Drive one command (NULL: all) soon. */
static void
cm_soon(struct commands *cm, const char *command_id)
{
	char *id, *old = NULL;

	if (cm->closing)
		return;
	if (command_id == NULL)
		cm->soon_all = 1;
	else if (strmap_get(cm->dirty, command_id) == NULL &&
	    (id = strdup(command_id)) != NULL) {
		if (strmap_put(cm->dirty, id, id, (void **)&old) != 0)
			free(id);
		else
			free(old);
	}
	if (cm->soon_armed)
		return;
	cm->soon_armed = 1;
	uv_timer_start(&cm->soon, cm_soon_cb, CM_SOON_MS, 0);
}

/* ---- public --------------------------------------------------------------- */

int
commands_new(struct commands **out, struct server *srv)
{
	struct commands *cm;

	*out = NULL;
	if ((cm = calloc(1, sizeof(*cm))) == NULL)
		return PH_ERR_NOMEM;
	cm->srv = srv;
	if (strmap_new(&cm->sent) != 0 || strmap_new(&cm->cancels) != 0 ||
	    strmap_new(&cm->dirty) != 0) {
		strmap_free(cm->sent);
		strmap_free(cm->cancels);
		free(cm);
		return PH_ERR_NOMEM;
	}
	uv_timer_init(srv->loop, &cm->tick);
	uv_timer_init(srv->loop, &cm->soon);
	cm->tick.data = cm->soon.data = cm;
	uv_timer_start(&cm->tick, cm_tick_cb, CM_TICK_MS, CM_TICK_MS);
	uv_unref((uv_handle_t *)&cm->tick);
	uv_unref((uv_handle_t *)&cm->soon);
	/* Commands left active by the previous process. */
	cm_soon(cm, NULL);
	*out = cm;
	return 0;
}

static void
cm_closed_cb(uv_handle_t *h)
{
	struct commands *cm = h->data;

	if (--cm->closing > 0)
		return;
	cm_mark_clear(cm->sent, NULL);
	cm_mark_clear(cm->cancels, NULL);
	cm_dirty_clear(cm);
	strmap_free(cm->sent);
	strmap_free(cm->cancels);
	strmap_free(cm->dirty);
	free(cm);
}

void
commands_free(struct commands *cm)
{
	if (cm == NULL)
		return;
	uv_timer_stop(&cm->tick);
	uv_timer_stop(&cm->soon);
	cm->closing = 2;
	uv_close((uv_handle_t *)&cm->tick, cm_closed_cb);
	uv_close((uv_handle_t *)&cm->soon, cm_closed_cb);
}

struct server *
commands_server(struct commands *cm)
{
	return cm->srv;
}

void
commands_kick(struct commands *cm, const char *command_id)
{
	if (cm == NULL || command_id == NULL || cm->in_drive ||
	    cm->srv->shutting_down)
		return;
	cm->in_drive = 1;
	cm_drive(cm, command_id, cm_now_ms());
	cm->in_drive = 0;
}

void
commands_agent_online(struct commands *cm, const char *instance_id)
{
	if (cm == NULL)
		return;
	/* Jobs it did not ack, and cancels, are sent again. */
	cm_mark_clear(cm->sent, instance_id);
	cm_mark_clear(cm->cancels, instance_id);
	cm_soon(cm, NULL);
}

void
commands_agent_offline(struct commands *cm, const char *instance_id)
{
	if (cm == NULL)
		return;
	cm_mark_clear(cm->sent, instance_id);
	cm_mark_clear(cm->cancels, instance_id);
}

int
commands_cancel(struct commands *cm, const char *command_id,
    json_t *instance_ids)
{
	struct cm_invs a = { NULL, 0, 0, 0 };
	struct command_rec c;
	char job_id[160];
	int64_t now = cm_now_ms();
	size_t i, j;
	int rc;

	if (cm == NULL)
		return PH_ERR_STATE;
	memset(&c, 0, sizeof(c));
	if ((rc = store_command_get(cm->srv->store, command_id, &c)) != 0)
		return rc;
	if (commands_status_final(c.status)) {
		command_rec_clear(&c);
		return PH_ERR_STATE;
	}
	rc = store_invocation_query(cm->srv->store, command_id, NULL, 0,
	    CM_MAX_INVOCATIONS, cm_collect_inv, &a);
	if (rc != 0)
		goto done;
	for (i = 0; i < a.n; i++) {
		struct cm_inv *ci = &a.v[i];
		int listed = json_array_size(instance_ids) == 0;

		for (j = 0; !listed && j < json_array_size(instance_ids); j++) {
			const char *s = json_string_value(json_array_get(
			    instance_ids, j));

			listed = s != NULL && strcmp(s, ci->instance_id) == 0;
		}
		if (!listed || commands_status_final(ci->status) ||
		    strcmp(ci->status, "Cancelling") == 0)
			continue;
		cm_job_id(job_id, sizeof(job_id), command_id, ci->instance_id);
		if (ci->delivered_ms == 0) {
			/* A job sent but not acked may still reach the
			 * agent: tell it to cancel too. */
			if (strmap_get(cm->sent, job_id) != NULL &&
			    gateway_instance_online(cm->srv->gw,
			    ci->instance_id))
				cm_send_cancel(cm, command_id,
				    ci->instance_id);
			cm_mark_del(cm->sent, job_id);
			cm_set_inv(cm, command_id, ci, "Cancelled",
			    "Cancelled", 1, now);
			continue;
		}
		if (cm_set_inv(cm, command_id, ci, "Cancelling", "Cancelling",
		    0, now) == 0 &&
		    gateway_instance_online(cm->srv->gw, ci->instance_id))
			cm_send_cancel(cm, command_id, ci->instance_id);
	}
	cm_update_command(cm, &c, &a);
	log_info("event=command_cancel command=%s status=%s", command_id,
	    c.status);
done:
	free(a.v);
	command_rec_clear(&c);
	return rc;
}

/* ---- frames from the agent ----------------------------------------------- */

void
commands_on_job_ack(struct commands *cm, const char *instance_id,
    const struct clientmsg *m)
{
	char cmd_id[STORE_COMMAND_ID_SIZE], inst[64], job_id[160];
	const char *jid, *msg;
	struct invocation_rec v;
	json_error_t jerr;
	json_t *o = NULL;
	int code, rc;

	if (cm == NULL)
		return;
	if (m->payload_len == 0 || m->payload_len > CM_ACK_FRAME_MAX ||
	    (o = json_loadb((const char *)m->payload, m->payload_len, 0,
	    &jerr)) == NULL || !json_is_object(o) ||
	    (jid = cm_jstr(o, "jobId")) == NULL) {
		log_limited(LOG_WARN, "bad_job_ack",
		    "event=bad_job_ack instance=%s len=%zu", instance_id,
		    m->payload_len);
		goto done;
	}
	code = cm_jint(o, "statusCode", -1);
	msg = cm_jstr(o, "errorMessage");
	if (commands_parse_job_id(jid, cmd_id, inst) != 0 ||
	    strcmp(inst, instance_id) != 0) {
		log_limited(LOG_WARN, "bad_job_ack",
		    "event=bad_job_ack instance=%s job=%.160s", instance_id,
		    jid);
		goto done;
	}
	cm_job_id(job_id, sizeof(job_id), cmd_id, inst);
	memset(&v, 0, sizeof(v));
	rc = store_invocation_get(cm->srv->store, cmd_id, inst, &v);
	if (rc != 0) {
		/* A cancelCommand job's ack names its own id. */
		log_debug("event=job_ack_unknown instance=%s job=%.160s code=%d",
		    instance_id, jid, code);
		goto done;
	}
	cm_mark_del(cm->sent, job_id);
	if (commands_status_final(v.status) || v.delivered_ms != 0) {
		invocation_rec_clear(&v);
		goto done;
	}
	/* 51405 DuplicateCommand: the agent has it already (an ack that
	 * was lost, or a job sent again after a restart). */
	if (code == 200 || code == 51405) {
		v.delivered_ms = cm_now_ms();
		if (strcmp(v.status, "Cancelling") != 0) {
			cm_set(v.status, sizeof(v.status), "InProgress");
			cm_set(v.status_details, sizeof(v.status_details),
			    "InProgress");
		}
	} else {
		char why[256];

		snprintf(why, sizeof(why), "The agent refused the command: "
		    "%s (%d)\n", msg != NULL ? msg : "UnexpectedError", code);
		cm_set(v.status, sizeof(v.status), "Failed");
		cm_set(v.status_details, sizeof(v.status_details), "Failed");
		v.ended_ms = cm_now_ms();
		free(v.stderr_text);
		v.stderr_text = strdup(why);
		log_warn("event=command_refused command=%s instance=%s "
		    "code=%d error=\"%.64s\"", cmd_id, inst, code,
		    msg != NULL ? msg : "");
	}
	if (store_invocation_update(cm->srv->store, &v) != 0)
		log_warn("event=store_error op=invocation_update command=%s "
		    "instance=%s", cmd_id, inst);
	invocation_rec_clear(&v);
	cm_soon(cm, cmd_id);
done:
	json_decref(o);
}

static void
cm_reply_ack(struct commands *cm, const char *instance_id, const char *job_id,
    const struct clientmsg *m)
{
	char mid[UUID_STR_LEN], *s;
	json_t *a;

	/* spec 8.3: the reply frame's canonical MessageId. */
	uuid_format(m->message_id, mid);
	a = json_pack("{s:s, s:s}", "jobId", job_id, "acknowledgedMessageId",
	    mid);
	if (a == NULL || (s = json_dumps(a, JSON_COMPACT)) == NULL) {
		json_decref(a);
		return;
	}
	if (gateway_send_control(cm->srv->gw, instance_id,
	    MT_AGENT_JOB_REPLY_ACK, s, NULL) != 0)
		log_debug("event=reply_ack_unsent instance=%s", instance_id);
	free(s);
	json_decref(a);
}

void
commands_on_job_reply(struct commands *cm, const char *instance_id,
    const struct clientmsg *m)
{
	char cmd_id[STORE_COMMAND_ID_SIZE], inst[64];
	struct invocation_rec v;
	struct command_rec c;
	const char *jid, *content, *topic;
	json_error_t jerr;
	json_t *o = NULL;
	int rc, was_final;

	if (cm == NULL)
		return;
	memset(&v, 0, sizeof(v));
	memset(&c, 0, sizeof(c));
	if (m->payload_len == 0 || m->payload_len > CM_REPLY_FRAME_MAX ||
	    (o = json_loadb((const char *)m->payload, m->payload_len, 0,
	    &jerr)) == NULL || !json_is_object(o) ||
	    (jid = cm_jstr(o, "jobId")) == NULL) {
		log_limited(LOG_WARN, "bad_job_reply",
		    "event=bad_job_reply instance=%s len=%zu", instance_id,
		    m->payload_len);
		goto done;
	}
	content = cm_jstr(o, "content");
	topic = cm_jstr(o, "topic");
	if (commands_parse_job_id(jid, cmd_id, inst) != 0 ||
	    strcmp(inst, instance_id) != 0) {
		/* Acked all the same, so the agent stops sending it. */
		log_limited(LOG_WARN, "bad_job_reply",
		    "event=job_reply_dropped instance=%s job=%.160s "
		    "reason=\"not this instance's job\"", instance_id, jid);
		cm_reply_ack(cm, instance_id, jid, m);
		goto done;
	}
	if (topic != NULL && strncmp(topic, CM_TOPIC_CANCEL,
	    sizeof(CM_TOPIC_CANCEL) - 1) == 0) {
		cm_reply_ack(cm, instance_id, jid, m);
		goto done;
	}
	rc = store_invocation_get(cm->srv->store, cmd_id, inst, &v);
	if (rc == PH_ERR_NOTFOUND) {
		log_limited(LOG_WARN, "bad_job_reply",
		    "event=job_reply_dropped instance=%s job=%.160s "
		    "reason=\"unknown command\"", instance_id, jid);
		cm_reply_ack(cm, instance_id, jid, m);
		goto done;
	}
	if (rc != 0)
		goto done; /* not acked: the agent sends it again */
	if (commands_status_final(v.status)) {
		log_debug("event=job_reply_late command=%s instance=%s",
		    cmd_id, inst);
		cm_reply_ack(cm, instance_id, jid, m);
		goto done;
	}
	if ((rc = store_command_get(cm->srv->store, cmd_id, &c)) != 0)
		goto done;
	was_final = commands_status_final(v.status);
	if (content == NULL || commands_apply_reply(&v, &c, content,
	    strlen(content), cm_now_ms()) != 0) {
		log_limited(LOG_WARN, "bad_job_reply",
		    "event=job_reply_dropped command=%s instance=%s "
		    "reason=\"unreadable content\"", cmd_id, inst);
		cm_reply_ack(cm, instance_id, jid, m);
		goto done;
	}
	cm_mark_del(cm->sent, jid);
	if (store_invocation_update(cm->srv->store, &v) != 0) {
		log_warn("event=store_error op=invocation_update command=%s "
		    "instance=%s", cmd_id, inst);
		goto done;
	}
	cm_reply_ack(cm, instance_id, jid, m);
	if (commands_status_final(v.status) && !was_final) {
		cm_mark_del(cm->cancels, jid);
		log_info("event=command_invocation_done command=%s instance=%s "
		    "status=%s code=%d", cmd_id, inst, v.status,
		    v.response_code);
	}
	cm_soon(cm, cmd_id);
done:
	invocation_rec_clear(&v);
	command_rec_clear(&c);
	json_decref(o);
}
