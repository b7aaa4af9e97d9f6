#include "agent/runcommand.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/cmdexec.h"
#include "agent/cmdjob.h"
#include "agent/cmdstore.h"
#include "agent/cmdupload.h"
#include "agent/jsonci.h"
#include "agent/state.h"
#include "agent/update.h"
#include "common/docparams.h"
#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"

extern char **environ;

/* Commands running at once; more are refused (ProcessorBufferFull). */
#define RC_MAX_RUNNING 32
/* InProgress replies with the output so far, at most this often. */
#define RC_STREAM_MS 2000
/* Unacknowledged replies are resent this often while connected, at most
 * RC_RESEND_BATCH per pass, only once they are RC_RESEND_AFTER_MS old;
 * after RC_REPLY_KEEP_MS they are dropped (AWS's agent: 2 h). */
#define RC_RESEND_MS 60000
#define RC_RESEND_BATCH 50
#define RC_RESEND_AFTER_MS 20000
#define RC_REPLY_KEEP_MS ((uint64_t)2 * 3600 * 1000)
/* Finished, acknowledged command directories kept (newest first). */
#define RC_KEEP_DONE 8
/* A document after substitution, at most. */
#define RC_DOC_MAX ((size_t)4 << 20)
#define RC_SCRIPT_MAX ((size_t)1 << 20)
#define RC_STATE_MAX ((size_t)1 << 20)
#define RC_MSG_RESTARTED "the agent restarted while the command was running"
#define RC_MSG_STOPPED "the agent stopped while the command was running"

struct rc_result {
	char status[16];
	int code;
	char *message;      /* replaces the output (errors, skips) */
	uint64_t start_ms, end_ms;
	int ran;            /* stdout/stderr files exist */
};

struct rc_cmd {
	struct rc_cmd *next;
	struct runcommand *rc;
	struct cmdjob job;
	struct cmdstep *steps;
	size_t nsteps;
	struct rc_result *res;
	size_t cur;
	char dir[AGENT_PATH_MAX];
	struct cmdexec *exec;
	int in_update;
	int cancelled;
	int uploading;
	int uploaded;
	uv_timer_t stream;
	int stream_open;
	uint64_t last_out, last_err;
	uint8_t progress_id[16];   /* the last InProgress reply on disk */
	int have_progress;
	struct cmdupload *upl;
};

struct runcommand {
	uv_loop_t *loop;
	char root[AGENT_PATH_MAX - 64];
	char instance_id[AGENT_INSTANCE_ID_MAX + 1];
	const struct agent_state *st;
	runcommand_send_fn send;
	void *send_ud;
	struct rc_cmd *cmds;
	size_t ncmds;
	uv_timer_t resend;
	int handles;
	int stopping;
	int update_checked;
	void (*on_stopped)(void *);
	void *stopped_ud;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void rc_run_next(struct rc_cmd *c);

/* snprintf whose cut is checked: PH_ERR_TOOBIG when the text did not
 * fit (paths under a state directory of legal length always fit). */
static int __attribute__((format(printf, 3, 4)))
fmt(char *out, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(out, len, f, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? PH_ERR_TOOBIG : 0;
}
static void rc_maybe_stopped(struct runcommand *rc);

/* ---- replies ------------------------------------------------------------- */

static int
rc_send(struct runcommand *rc, const char *type, const char *payload,
    const uint8_t id[16])
{
	uint8_t mid[16];

	if (rc->send == NULL)
		return PH_ERR_STATE;
	memcpy(mid, id, 16);
	return rc->send(rc->send_ud, type, payload, mid);
}

/* Keep a reply on disk, then send it. A reply that cannot be stored is
 * still sent: better once than never. */
static void
rc_reply(struct runcommand *rc, const char *command_id, int final,
    const char *payload, uint8_t id_out[16])
{
	uint8_t id[16];
	int rc_save;

	uuid_v4(id);
	rc_save = cmdstore_reply_save(rc->root, id, command_id, final,
	    now_ms(), payload);
	if (rc_save != 0)
		log_error("event=reply_not_stored command=%s err=\"%s\"",
		    command_id, ph_strerror(rc_save));
	if (rc_send(rc, MT_AGENT_JOB_REPLY, payload, id) != 0)
		log_info("event=reply_deferred command=%s final=%d",
		    command_id, final);
	if (id_out != NULL)
		memcpy(id_out, id, 16);
}

static void
rc_ack(struct runcommand *rc, const struct clientmsg *m, const char *job_id,
    int code)
{
	static const struct { int code; const char *name; } names[] = {
		{ CMDJOB_ACK_OK, "Successful" },
		{ 51401, "ClosedProcessor" },
		{ CMDJOB_ACK_BUFFER_FULL, "ProcessorBufferFull" },
		{ CMDJOB_ACK_UNEXPECTED_TYPE, "UnexpectedDocumentType" },
		{ CMDJOB_ACK_DUPLICATE, "DuplicateCommand" },
		{ CMDJOB_ACK_INVALID_DOCUMENT, "InvalidDocument" },
		{ CMDJOB_ACK_PARSE_ERROR, "AgentJobMessageParseError" },
	};
	const char *name = "UnexpectedError";
	char mid[UUID_STR_LEN], when[32], codes[16], *js;
	uint8_t id[16];
	json_t *o;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].code == code)
			name = names[i].name;
	uuid_format(m->message_id, mid);
	cmdjob_iso_time(m->created_ms, when);
	snprintf(codes, sizeof(codes), "%d", code);
	/* spec 8.3: statusCode is a string. */
	o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "jobId", job_id,
	    "acknowledgedMessageId", mid, "createdDate", when,
	    "statusCode", codes, "errorMessage", name);
	js = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (js == NULL)
		return;
	uuid_v4(id);
	if (rc_send(rc, MT_AGENT_JOB_ACK, js, id) != 0)
		log_warn("event=job_ack_not_sent job=%.80s", job_id);
	free(js);
}

/* Every step's result, with the output read back from its files. */
static char *
rc_build_reply(struct rc_cmd *c, const char *doc_status, size_t upto,
    int cur_in_progress)
{
	struct cmdjob_result *r;
	struct cmdjob_reply_info info;
	char **bufs, path[AGENT_PATH_MAX + 32];
	size_t i, n = 0, len;
	char *js = NULL;

	r = calloc(c->nsteps + 1, sizeof(*r));
	bufs = calloc(2 * (c->nsteps + 1), sizeof(*bufs));
	if (r == NULL || bufs == NULL)
		goto out;
	for (i = 0; i < upto && i < c->nsteps; i++, n++) {
		r[n].name = c->steps[i].name;
		r[n].plugin = c->steps[i].action;
		r[n].status = c->res[i].status[0] ? c->res[i].status :
		    "InProgress";
		if (cur_in_progress && i == c->cur)
			r[n].status = "InProgress";
		r[n].code = c->res[i].code;
		r[n].message = c->res[i].message;
		r[n].start_ms = c->res[i].start_ms;
		r[n].end_ms = c->res[i].end_ms;
		r[n].out = r[n].err = "";
		if (!c->res[i].ran)
			continue;
		/* One byte past the limit tells cmdjob the text was cut. */
		snprintf(path, sizeof(path), "%s/%zu/stdout", c->dir, i);
		if (cmdstore_read_head(path, CMDJOB_STDOUT_MAX + 1,
		    &bufs[2 * i], &len) == 0) {
			r[n].out = bufs[2 * i];
			r[n].out_len = len;
		}
		snprintf(path, sizeof(path), "%s/%zu/stderr", c->dir, i);
		if (cmdstore_read_head(path, CMDJOB_STDERR_MAX + 1,
		    &bufs[2 * i + 1], &len) == 0) {
			r[n].err = bufs[2 * i + 1];
			r[n].err_len = len;
		}
	}
	memset(&info, 0, sizeof(info));
	info.job_id = c->job.job_id;
	info.topic = CMDJOB_TOPIC_SEND;
	info.doc_status = doc_status ? doc_status : cmdjob_doc_status(r, n);
	info.bucket = c->job.bucket;
	info.prefix = c->job.prefix;
	info.instance_id = c->rc->instance_id;
	info.command_id = c->job.command_id;
	info.now_ms = now_ms();
	js = cmdjob_reply(&info, r, n);
out:
	for (i = 0; bufs != NULL && i < 2 * (c->nsteps + 1); i++)
		free(bufs[i]);
	free(bufs);
	free(r);
	return js;
}

/* An InProgress reply; it replaces the previous one still on disk (only
 * the newest matters). */
static void
rc_progress(struct rc_cmd *c, size_t upto, int cur_in_progress)
{
	char *js = rc_build_reply(c, "InProgress", upto, cur_in_progress);

	if (js == NULL)
		return;
	if (c->have_progress)
		(void)cmdstore_reply_delete(c->rc->root, c->progress_id);
	rc_reply(c->rc, c->job.command_id, 0, js, c->progress_id);
	c->have_progress = 1;
	free(js);
}

/* ---- the command's state on disk ----------------------------------------- */

static int
rc_save_state(struct rc_cmd *c, const char *state)
{
	char path[AGENT_PATH_MAX + 16], *js;
	json_t *o, *steps, *s;
	size_t i;
	int rc;

	steps = json_array();
	for (i = 0; steps != NULL && i < c->nsteps; i++) {
		s = json_pack("{s:s, s:s, s:s, s:i, s:s?, s:I, s:I, s:b}",
		    "name", c->steps[i].name, "action", c->steps[i].action,
		    "status", c->res[i].status, "code", c->res[i].code,
		    "message", c->res[i].message,
		    "startMs", (json_int_t)c->res[i].start_ms,
		    "endMs", (json_int_t)c->res[i].end_ms,
		    "ran", c->res[i].ran);
		if (s == NULL || json_array_append_new(steps, s) != 0) {
			json_decref(steps);
			return PH_ERR_NOMEM;
		}
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o*}",
	    "jobId", c->job.job_id, "commandId", c->job.command_id,
	    "bucket", c->job.bucket, "prefix", c->job.prefix,
	    "state", state, "current", (json_int_t)c->cur, "steps", steps);
	js = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (js == NULL)
		return PH_ERR_NOMEM;
	snprintf(path, sizeof(path), "%s/state.json", c->dir);
	rc = agent_write_file_atomic(path, js, strlen(js), 0600);
	free(js);
	if (rc != 0)
		log_warn("event=command_state_not_saved command=%s",
		    c->job.command_id);
	return rc;
}

/* Rebuild a command from its state.json (a restart). */
static int
rc_load_state(struct runcommand *rc, const char *dir, struct rc_cmd **out,
    char *state, size_t statelen)
{
	char path[AGENT_PATH_MAX + 16], *text = NULL;
	struct rc_cmd *c = NULL;
	json_t *o = NULL, *steps, *s;
	const char *v;
	size_t len, i, n;
	int ret = PH_ERR_INVALID;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/state.json", dir);
	if (agent_read_file(path, RC_STATE_MAX, &text, &len) != 0)
		return PH_ERR_NOTFOUND;
	o = json_loadb(text, len, 0, NULL);
	free(text);
	steps = json_object_get(o, "steps");
	v = json_string_value(json_object_get(o, "state"));
	if (!json_is_array(steps) || v == NULL ||
	    (n = json_array_size(steps)) > CMDJOB_STEPS_MAX)
		goto out;
	snprintf(state, statelen, "%s", v);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto out;
	c->rc = rc;
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
#define CP(dst, key) do { \
	v = json_string_value(json_object_get(o, key)); \
	if (v == NULL || strlen(v) >= sizeof(dst)) goto out; \
	memcpy(dst, v, strlen(v) + 1); } while (0)
	CP(c->job.job_id, "jobId");
	CP(c->job.command_id, "commandId");
	CP(c->job.bucket, "bucket");
	CP(c->job.prefix, "prefix");
	c->cur = (size_t)json_integer_value(json_object_get(o, "current"));
	c->nsteps = n;
	c->steps = calloc(n + 1, sizeof(*c->steps));
	c->res = calloc(n + 1, sizeof(*c->res));
	if (c->steps == NULL || c->res == NULL)
		goto out;
	json_array_foreach(steps, i, s) {
		v = json_string_value(json_object_get(s, "name"));
		if (v == NULL || strlen(v) >= sizeof(c->steps[i].name))
			goto out;
		snprintf(c->steps[i].name, sizeof(c->steps[i].name), "%s", v);
		v = json_string_value(json_object_get(s, "action"));
		if (v == NULL || strlen(v) >= sizeof(c->steps[i].action))
			goto out;
		snprintf(c->steps[i].action, sizeof(c->steps[i].action), "%s",
		    v);
		v = json_string_value(json_object_get(s, "status"));
		snprintf(c->res[i].status, sizeof(c->res[i].status), "%s",
		    v ? v : "");
		c->res[i].code = (int)json_integer_value(json_object_get(s,
		    "code"));
		v = json_string_value(json_object_get(s, "message"));
		if (v != NULL && (c->res[i].message = strdup(v)) == NULL)
			goto out;
		c->res[i].start_ms = (uint64_t)json_integer_value(
		    json_object_get(s, "startMs"));
		c->res[i].end_ms = (uint64_t)json_integer_value(
		    json_object_get(s, "endMs"));
		c->res[i].ran = json_is_true(json_object_get(s, "ran"));
	}
#undef CP
	if (c->cur > n)
		c->cur = n;
	*out = c;
	c = NULL;
	ret = 0;
out:
	if (c != NULL) {
		for (i = 0; c->res != NULL && i < c->nsteps; i++)
			free(c->res[i].message);
		free(c->res);
		free(c->steps);
		free(c);
	}
	json_decref(o);
	return ret;
}

/* ---- commands ------------------------------------------------------------ */

static void
rc_cmd_free(struct rc_cmd *c)
{
	size_t i;

	for (i = 0; c->res != NULL && i < c->nsteps; i++)
		free(c->res[i].message);
	free(c->res);
	if (c->job.doc != NULL)
		cmdjob_steps_free(c->steps, c->nsteps);
	else
		free(c->steps); /* loaded from disk: no inputs held */
	cmdjob_free(&c->job);
	free(c);
}

static void
rc_unlink_cmd(struct runcommand *rc, struct rc_cmd *c)
{
	struct rc_cmd **pp;

	for (pp = &rc->cmds; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			rc->ncmds--;
			return;
		}
	}
}

static void
rc_stream_closed(uv_handle_t *h)
{
	struct rc_cmd *c = h->data;
	struct runcommand *rc = c->rc;

	rc_cmd_free(c);
	rc->handles--;
	rc_maybe_stopped(rc);
}

/* The command is over: unlink it; it is freed once its timer is closed. */
static void
rc_cmd_release(struct rc_cmd *c)
{
	rc_unlink_cmd(c->rc, c);
	if (c->stream_open) {
		c->stream_open = 0;
		uv_close((uv_handle_t *)&c->stream, rc_stream_closed);
	} else {
		rc_cmd_free(c);
	}
}

static void
rc_set_result(struct rc_result *r, const char *status, int code,
    const char *message)
{
	snprintf(r->status, sizeof(r->status), "%s", status);
	r->code = code;
	free(r->message);
	r->message = message != NULL ? strdup(message) : NULL;
	if (r->start_ms == 0)
		r->start_ms = now_ms();
	r->end_ms = now_ms();
}

/* Write an update step's text into the step's output files so that the
 * reply reads every step the same way. */
static void
rc_write_outputs(struct rc_cmd *c, size_t i, const char *out,
    const char *err)
{
	char path[AGENT_PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%zu", c->dir, i);
	(void)mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%zu/stdout", c->dir, i);
	(void)agent_write_file_atomic(path, out ? out : "",
	    out ? strlen(out) : 0, 0600);
	snprintf(path, sizeof(path), "%s/%zu/stderr", c->dir, i);
	(void)agent_write_file_atomic(path, err ? err : "",
	    err ? strlen(err) : 0, 0600);
	c->res[i].ran = 1;
}

static const char *
rc_doc_status(const struct rc_cmd *c)
{
	struct cmdjob_result r[CMDJOB_STEPS_MAX];
	size_t i;

	memset(r, 0, sizeof(r));
	for (i = 0; i < c->nsteps && i < CMDJOB_STEPS_MAX; i++)
		r[i].status = c->res[i].status;
	return cmdjob_doc_status(r, i);
}

static void
rc_final(struct rc_cmd *c)
{
	char *js;
	size_t i;

	for (i = 0; i < c->nsteps; i++)
		if (c->res[i].status[0] == '\0')
			rc_set_result(&c->res[i], c->cancelled ? "Cancelled" :
			    "Failed", 1, c->cancelled ? "the command was "
			    "cancelled before this step ran" :
			    "this step did not run");
	js = rc_build_reply(c, NULL, c->nsteps, 0);
	if (js == NULL) {
		log_error("event=final_reply_failed command=%s",
		    c->job.command_id);
	} else {
		if (c->have_progress)
			(void)cmdstore_reply_delete(c->rc->root,
			    c->progress_id);
		c->have_progress = 0;
		rc_reply(c->rc, c->job.command_id, 1, js, NULL);
		free(js);
	}
	c->cur = c->nsteps;
	rc_save_state(c, "done");
	log_info("event=command_done command=%s status=%s",
	    c->job.command_id, rc_doc_status(c));
}

static void
rc_upload_done(void *ud, int failures)
{
	struct rc_cmd *c = ud;
	struct runcommand *rc = c->rc;

	c->upl = NULL;
	c->uploading = 0;
	c->uploaded = 1;
	if (failures > 0)
		log_warn("event=command_output_upload_failed command=%s "
		    "files=%d", c->job.command_id, failures);
	if (rc->stopping) {
		rc->handles--;
		rc_final(c);
		rc_cmd_release(c);
		rc_maybe_stopped(rc);
		return;
	}
	rc->handles--;
	rc_run_next(c);
}

/* Every step ran: upload the outputs when the job names a bucket, then
 * the final reply. */
static void
rc_finish(struct rc_cmd *c)
{
	struct runcommand *rc = c->rc;
	size_t i;
	int rv;

	if (c->job.bucket[0] != '\0' && !c->uploaded && rc->st != NULL) {
		struct cmdupload_item items[CMDJOB_STEPS_MAX];
		size_t n = 0;

		for (i = 0; i < c->nsteps; i++) {
			if (!c->res[i].ran)
				continue;
			items[n].step_name = c->steps[i].name;
			items[n].index = i;
			n++;
		}
		if (n > 0) {
			rv = cmdupload_start(&c->upl, rc->loop, rc->st,
			    c->job.command_id, c->dir, items, n,
			    rc_upload_done, c);
			if (rv == 0) {
				c->uploading = 1;
				rc->handles++;
				return;
			}
			log_warn("event=command_output_upload_failed "
			    "command=%s err=\"%s\"", c->job.command_id,
			    ph_strerror(rv));
		}
	}
	rc_final(c);
	rc_cmd_release(c);
}

static void
rc_stream_cb(uv_timer_t *t)
{
	struct rc_cmd *c = t->data;
	uint64_t o, e;

	if (c->exec == NULL)
		return;
	cmdexec_bytes(c->exec, &o, &e);
	if (o == c->last_out && e == c->last_err)
		return;
	c->last_out = o;
	c->last_err = e;
	rc_progress(c, c->cur + 1, 1);
}

static void
rc_step_done(void *ud, const struct cmdexec_result *r)
{
	struct rc_cmd *c = ud;
	struct rc_result *res = &c->res[c->cur];

	c->exec = NULL;
	uv_timer_stop(&c->stream);
	switch (r->end) {
	case CMDEXEC_TIMEDOUT:
		rc_set_result(res, "TimedOut", r->exit_code, NULL);
		break;
	case CMDEXEC_STOPPED:
		rc_set_result(res, c->cancelled ? "Cancelled" : "Failed",
		    r->exit_code, NULL);
		break;
	default:
		rc_set_result(res, r->exit_code == 0 ? "Success" : "Failed",
		    r->exit_code, NULL);
	}
	log_info("event=step_done command=%s step=\"%s\" status=%s code=%d "
	    "stdout_bytes=%llu stderr_bytes=%llu", c->job.command_id,
	    c->steps[c->cur].name, res->status, r->exit_code,
	    (unsigned long long)r->out_bytes,
	    (unsigned long long)r->err_bytes);
	c->cur++;
	rc_save_state(c, "running");
	/* AWS's agent reports each finished step while more follow. */
	if (c->cur < c->nsteps && !c->cancelled)
		rc_progress(c, c->cur, 0);
	rc_run_next(c);
}

/* The first executable named name in PATH. */
static int
rc_which(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH"), *p, *e;
	int n;

	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchr(p, ':');
		if (e == NULL)
			e = p + strlen(p);
		if (e == p)
			continue;
		n = snprintf(out, len, "%.*s/%s", (int)(e - p), p, name);
		if (n > 0 && (size_t)n < len && access(out, X_OK) == 0)
			return 0;
	}
	return PH_ERR_NOTFOUND;
}

static int
rc_env_skip(const char *e)
{
	static const char *ours[] = { "AWS_SSM_INSTANCE_ID=",
	    "AWS_SSM_REGION_NAME=", "SSM_COMMAND_ID=" };
	size_t i;

	for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		if (strncmp(e, ours[i], strlen(ours[i])) == 0)
			return 1;
	return 0;
}

/* The agent's environment plus AWS's variables for the step (ours are
 * the last three entries). */
static char **
rc_env(struct rc_cmd *c)
{
	const char *region = c->rc->st != NULL ? c->rc->st->region : "";
	size_t n = 0, i, k = 0;
	char **env;

	while (environ != NULL && environ[n] != NULL)
		n++;
	env = calloc(n + 4, sizeof(*env));
	if (env == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (!rc_env_skip(environ[i]))
			env[k++] = environ[i];
	if (asprintf(&env[k], "AWS_SSM_INSTANCE_ID=%s",
	    c->rc->instance_id) < 0)
		goto fail;
	if (asprintf(&env[k + 1], "AWS_SSM_REGION_NAME=%s", region) < 0)
		goto fail1;
	if (asprintf(&env[k + 2], "SSM_COMMAND_ID=%s",
	    c->job.command_id) < 0)
		goto fail2;
	return env;
fail2:
	free(env[k + 1]);
fail1:
	free(env[k]);
fail:
	free(env);
	return NULL;
}

static void
rc_env_free(char **env)
{
	size_t i;

	if (env == NULL)
		return;
	for (i = 0; env[i] != NULL; i++)
		;
	if (i >= 3) {
		free(env[i - 1]);
		free(env[i - 2]);
		free(env[i - 3]);
	}
	free(env);
}

/* Start a shell step; 0 when it runs, else msg says why not. */
static int
rc_start_script(struct rc_cmd *c, int powershell, char *msg, size_t msglen)
{
	struct cmdstep *s = &c->steps[c->cur];
	char sdir[AGENT_PATH_MAX + 32], script[AGENT_PATH_MAX + 64];
	char outp[AGENT_PATH_MAX + 64], errp[AGENT_PATH_MAX + 64];
	char prog[AGENT_PATH_MAX], cwd[AGENT_PATH_MAX];
	char *text, *args[4], **env;
	const char *wd;
	struct cmdexec_opts o;
	struct stat sb;
	int rv;

	if (powershell && rc_which("pwsh", prog, sizeof(prog)) != 0) {
		snprintf(msg, msglen, "PowerShell (pwsh) was not found in "
		    "PATH on this instance: aws:runPowerShellScript cannot "
		    "run. Step name: %s", s->name);
		return PH_ERR_NOTFOUND;
	}
	if (!powershell)
		snprintf(prog, sizeof(prog), "/bin/sh");
	text = cmdjob_script(s->inputs, RC_SCRIPT_MAX);
	if (text == NULL) {
		snprintf(msg, msglen, "the step's runCommand is missing or "
		    "is not a string or a list of strings. Step name: %s",
		    s->name);
		return PH_ERR_INVALID;
	}
	wd = agent_json_str(s->inputs, "workingDirectory");
	if (wd == NULL || wd[0] == '\0' || strspn(wd, " \t") == strlen(wd)) {
		snprintf(cwd, sizeof(cwd), "%s", c->dir);
	} else if (wd[0] == '/') {
		if (stat(wd, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			snprintf(msg, msglen, "the working directory %.1024s "
			    "does not exist on this instance. Step name: %s",
			    wd, s->name);
			free(text);
			return PH_ERR_NOTFOUND;
		}
		snprintf(cwd, sizeof(cwd), "%s", wd);
	} else {
		/* AWS's agent: a relative directory under the command's
		 * own, else the command's directory. */
		rv = snprintf(cwd, sizeof(cwd), "%s/%s", c->dir, wd);
		if (rv < 0 || (size_t)rv >= sizeof(cwd) ||
		    strstr(wd, "..") != NULL || stat(cwd, &sb) != 0 ||
		    !S_ISDIR(sb.st_mode))
			snprintf(cwd, sizeof(cwd), "%s", c->dir);
	}
	snprintf(sdir, sizeof(sdir), "%s/%zu", c->dir, c->cur);
	if (mkdir(sdir, 0700) != 0 && errno != EEXIST) {
		fmt(msg, msglen, "cannot create %s: %s", sdir,
		    strerror(errno));
		free(text);
		return PH_ERR_IO;
	}
	snprintf(script, sizeof(script), "%s/_script.%s", sdir,
	    powershell ? "ps1" : "sh");
	rv = agent_write_file_atomic(script, text, strlen(text), 0700);
	free(text);
	if (rv != 0) {
		fmt(msg, msglen, "cannot write the script %s", script);
		return rv;
	}
	snprintf(outp, sizeof(outp), "%s/stdout", sdir);
	snprintf(errp, sizeof(errp), "%s/stderr", sdir);
	env = rc_env(c);
	if (env == NULL) {
		snprintf(msg, msglen, "out of memory");
		return PH_ERR_NOMEM;
	}
	args[0] = prog;
	if (powershell) {
		args[1] = "-File";
		args[2] = script;
		args[3] = NULL;
	} else {
		args[1] = script;
		args[2] = NULL;
	}
	memset(&o, 0, sizeof(o));
	o.file = prog;
	o.args = args;
	o.env = env;
	o.cwd = cwd;
	o.out_path = outp;
	o.err_path = errp;
	o.timeout_s = cmdjob_timeout(s->inputs);
	c->res[c->cur].start_ms = now_ms();
	rv = cmdexec_start(&c->exec, c->rc->loop, &o, rc_step_done, c, msg,
	    msglen);
	rc_env_free(env);
	if (rv != 0)
		return rv;
	c->res[c->cur].ran = 1;
	c->last_out = c->last_err = 0;
	log_info("event=step_start command=%s step=\"%s\" pid=%d "
	    "timeout_s=%u", c->job.command_id, s->name,
	    cmdexec_pid(c->exec), o.timeout_s);
	uv_timer_start(&c->stream, rc_stream_cb, RC_STREAM_MS, RC_STREAM_MS);
	return 0;
}

static void
rc_update_done(void *ud, const struct update_result *r)
{
	struct rc_cmd *c = ud;

	if (r->status == NULL) {
		/* The agent execs its new binary now: the agent after the
		 * restart reports this step (update_confirm). */
		log_info("event=update_restart command=%s",
		    c->job.command_id);
		return;
	}
	c->in_update = 0;
	rc_write_outputs(c, c->cur, r->stdout_text, r->stderr_text);
	rc_set_result(&c->res[c->cur], r->status, r->code, NULL);
	c->cur++;
	rc_save_state(c, "running");
	rc_run_next(c);
}

static int
rc_start_update(struct rc_cmd *c, char *msg, size_t msglen)
{
	struct cmdstep *s = &c->steps[c->cur];
	int rv;

	if (c->rc->st == NULL) {
		snprintf(msg, msglen, "aws:updateSsmAgent is not available "
		    "on this agent. Step name: %s", s->name);
		return PH_ERR_STATE;
	}
	c->res[c->cur].start_ms = now_ms();
	c->in_update = 1;
	/* On disk first: the agent may restart inside the step. */
	rc_save_state(c, "running");
	rv = update_step_start(c->rc->loop, c->rc->st, c->job.command_id,
	    s->name, s->inputs, rc_update_done, c);
	if (rv != 0) {
		c->in_update = 0;
		snprintf(msg, msglen, "the agent update could not start: %s. "
		    "Step name: %s", ph_strerror(rv), s->name);
	}
	return rv;
}

static void
rc_run_next(struct rc_cmd *c)
{
	struct cmdstep *s;
	char msg[2048];
	enum cmdjob_op op;
	int rv;

	if (c->rc->stopping)
		return;
	while (c->cur < c->nsteps) {
		s = &c->steps[c->cur];
		if (c->cancelled) {
			rc_set_result(&c->res[c->cur], "Cancelled", 1,
			    "the command was cancelled before this step ran");
			c->cur++;
			continue;
		}
		op = cmdjob_step_op(s, msg, sizeof(msg));
		if (op == CMDJOB_SKIP) {
			rc_set_result(&c->res[c->cur], "Skipped", 0, msg);
			c->cur++;
			continue;
		}
		if (op == CMDJOB_FAIL) {
			rc_set_result(&c->res[c->cur], "Failed", 1, msg);
			c->cur++;
			continue;
		}
		msg[0] = '\0';
		if (strcmp(s->action, "aws:runShellScript") == 0)
			rv = rc_start_script(c, 0, msg, sizeof(msg));
		else if (strcmp(s->action, "aws:runPowerShellScript") == 0)
			rv = rc_start_script(c, 1, msg, sizeof(msg));
		else
			rv = rc_start_update(c, msg, sizeof(msg));
		if (rv == 0)
			return; /* its callback continues */
		log_warn("event=step_failed command=%s step=\"%s\" "
		    "err=\"%s\"", c->job.command_id, s->name, msg);
		rc_set_result(&c->res[c->cur], "Failed", 1, msg);
		c->cur++;
	}
	if (c->uploading)
		return;
	rc_finish(c);
}

static struct rc_cmd *
rc_find(struct runcommand *rc, const char *command_id)
{
	struct rc_cmd *c;

	for (c = rc->cmds; c != NULL; c = c->next)
		if (strcmp(c->job.command_id, command_id) == 0)
			return c;
	return NULL;
}

/* Parameters with the document's defaults for those not given (spec 8.2:
 * missing parameters take their default). */
static json_t *
rc_params(const struct cmdjob *j)
{
	json_t *p = json_copy(j->params), *defs, *d, *def;
	const char *name;

	if (p == NULL)
		return NULL;
	defs = agent_json_get(j->doc, "parameters");
	if (json_is_object(defs)) {
		json_object_foreach(defs, name, d) {
			if (json_object_get(p, name) != NULL)
				continue;
			def = agent_json_get(d, "default");
			if (def != NULL)
				json_object_set(p, name, def);
		}
	}
	return p;
}

static void
rc_start_command(struct runcommand *rc, struct cmdjob *job)
{
	struct rc_cmd *c;
	json_t *params;
	char err[256];
	int rv;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		cmdjob_free(job);
		return;
	}
	c->rc = rc;
	c->job = *job;
	memset(job, 0, sizeof(*job));
	fmt(c->dir, sizeof(c->dir), "%s/%s", rc->root, c->job.command_id);
	uv_timer_init(rc->loop, &c->stream);
	c->stream.data = c;
	c->stream_open = 1;
	rc->handles++;
	c->next = rc->cmds;
	rc->cmds = c;
	rc->ncmds++;
	err[0] = '\0';
	if (mkdir(c->dir, 0700) != 0) {
		snprintf(err, sizeof(err), "cannot create the command "
		    "directory: %s", strerror(errno));
		goto fail;
	}
	/* spec 8.2: the agent substitutes what references remain. */
	params = rc_params(&c->job);
	rv = params == NULL ? PH_ERR_NOMEM :
	    docparams_substitute(c->job.doc, params, RC_DOC_MAX);
	json_decref(params);
	if (rv != 0) {
		snprintf(err, sizeof(err), "the document's parameters could "
		    "not be substituted: %s", ph_strerror(rv));
		goto fail;
	}
	if (cmdjob_steps(c->job.doc, &c->steps, &c->nsteps, err,
	    sizeof(err)) != 0)
		goto fail;
	c->res = calloc(c->nsteps, sizeof(*c->res));
	if (c->res == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	rc_save_state(c, "running");
	log_info("event=command_start command=%s document=\"%s\" steps=%zu",
	    c->job.command_id, c->job.document_name, c->nsteps);
	/* spec 8.3: InProgress right after the ack. */
	rc_progress(c, 0, 0);
	rc_run_next(c);
	return;
fail:
	log_warn("event=command_failed command=%s err=\"%s\"",
	    c->job.command_id, err);
	if (c->steps == NULL) {
		/* One synthetic step carries the reason. */
		c->steps = calloc(1, sizeof(*c->steps));
		c->res = calloc(1, sizeof(*c->res));
		if (c->steps == NULL || c->res == NULL) {
			rc_cmd_release(c);
			return;
		}
		c->nsteps = 1;
		snprintf(c->steps[0].name, sizeof(c->steps[0].name),
		    "aws:runDocument");
		snprintf(c->steps[0].action, sizeof(c->steps[0].action),
		    "aws:runDocument");
		c->steps[0].inputs = json_object();
	}
	rc_set_result(&c->res[0], "Failed", 1, err);
	c->cur = c->nsteps;
	rc_final(c);
	rc_cmd_release(c);
}

/* ---- cancel -------------------------------------------------------------- */

static void
rc_cancel(struct runcommand *rc, const struct cmdjob *job)
{
	struct rc_cmd *c = rc_find(rc, job->cancel_command_id);
	struct cmdjob_reply_info info;
	char *js;

	if (c != NULL) {
		log_info("event=command_cancel command=%s",
		    c->job.command_id);
		c->cancelled = 1;
		if (c->exec != NULL)
			cmdexec_stop(c->exec);
	} else {
		log_info("event=command_cancel_unknown command=%s",
		    job->cancel_command_id);
	}
	/* The cancel job's own reply: done, or nothing to cancel. */
	memset(&info, 0, sizeof(info));
	info.job_id = job->job_id;
	info.topic = CMDJOB_TOPIC_CANCEL;
	info.doc_status = c != NULL ? "Success" : "Failed";
	info.instance_id = rc->instance_id;
	info.command_id = job->command_id;
	info.now_ms = now_ms();
	js = cmdjob_reply(&info, NULL, 0);
	if (js != NULL) {
		rc_reply(rc, job->command_id, 0, js, NULL);
		free(js);
	}
}

/* ---- entry points -------------------------------------------------------- */

static int
rc_dir_exists(struct runcommand *rc, const char *command_id)
{
	char p[AGENT_PATH_MAX + 80];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", rc->root, command_id);
	return lstat(p, &sb) == 0;
}

void
runcommand_on_job(struct runcommand *rc, const struct clientmsg *m)
{
	struct cmdjob job;
	char err[256];
	int code;

	if (rc == NULL)
		return;
	if (cmdjob_parse(&job, m->payload, m->payload_len, &code, err,
	    sizeof(err)) != 0) {
		log_warn("event=bad_agent_job job=%.80s code=%d err=\"%s\"",
		    job.job_id[0] ? job.job_id : "-", code, err);
		rc_ack(rc, m, job.job_id, code);
		return;
	}
	if (job.kind == CMDJOB_CANCEL) {
		rc_ack(rc, m, job.job_id, CMDJOB_ACK_OK);
		rc_cancel(rc, &job);
		cmdjob_free(&job);
		return;
	}
	if (rc_find(rc, job.command_id) != NULL ||
	    rc_dir_exists(rc, job.command_id)) {
		/* Acked so that portholed stops resending it. */
		log_info("event=duplicate_agent_job command=%s",
		    job.command_id);
		rc_ack(rc, m, job.job_id, CMDJOB_ACK_DUPLICATE);
		cmdjob_free(&job);
		return;
	}
	if (rc->stopping) {
		rc_ack(rc, m, job.job_id, 51401);
		cmdjob_free(&job);
		return;
	}
	if (rc->ncmds >= RC_MAX_RUNNING) {
		rc_ack(rc, m, job.job_id, CMDJOB_ACK_BUFFER_FULL);
		cmdjob_free(&job);
		return;
	}
	rc_ack(rc, m, job.job_id, CMDJOB_ACK_OK);
	rc_start_command(rc, &job);
}

/* Remove the oldest acknowledged command directories beyond the bound. */
static void
rc_prune(struct runcommand *rc)
{
	struct { char name[CMDJOB_CMD_ID_MAX + 1]; time_t t; } keep[64];
	char p[AGENT_PATH_MAX + 96], state[16];
	struct rc_cmd *c;
	struct dirent *de;
	struct stat sb;
	size_t n = 0, i, old;
	DIR *d;

	d = opendir(rc->root);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL && n < 64) {
		if (!cmdjob_valid_command_id(de->d_name) ||
		    strcmp(de->d_name, "replies") == 0 ||
		    rc_find(rc, de->d_name) != NULL)
			continue;
		fmt(p, sizeof(p), "%s/%s/acked", rc->root, de->d_name);
		if (stat(p, &sb) != 0)
			continue;
		fmt(keep[n].name, sizeof(keep[n].name), "%s",
		    de->d_name);
		keep[n].t = sb.st_mtime;
		n++;
	}
	closedir(d);
	(void)c;
	(void)state;
	while (n > RC_KEEP_DONE) {
		old = 0;
		for (i = 1; i < n; i++)
			if (keep[i].t < keep[old].t)
				old = i;
		fmt(p, sizeof(p), "%s/%s", rc->root, keep[old].name);
		if (cmdstore_rmtree(p) != 0)
			log_warn("event=command_dir_not_removed command=%s",
			    keep[old].name);
		keep[old] = keep[--n];
	}
}

void
runcommand_on_reply_ack(struct runcommand *rc, const struct clientmsg *m)
{
	struct cmdstore_reply r;
	char job[CMDJOB_ID_MAX + 1], p[AGENT_PATH_MAX + 96];
	uint8_t id[16];

	if (rc == NULL)
		return;
	if (cmdjob_parse_reply_ack(m->payload, m->payload_len, id, job,
	    sizeof(job)) != 0) {
		log_warn("event=bad_agent_job_reply_ack");
		return;
	}
	if (cmdstore_reply_take(rc->root, id, &r) != 0) {
		log_debug("event=reply_ack_unknown job=%.80s", job);
		return;
	}
	if (r.final && cmdjob_valid_command_id(r.command_id) &&
	    rc_find(rc, r.command_id) == NULL) {
		/* Acknowledged: the directory may go (a marker, then the
		 * bound on kept directories). */
		snprintf(p, sizeof(p), "%s/%s/acked", rc->root, r.command_id);
		(void)agent_write_file_atomic(p, "", 0, 0600);
		rc_prune(rc);
	}
	log_info("event=reply_acked command=%s final=%d", r.command_id,
	    r.final);
	free(r.payload);
}

/* Resend what portholed has not acknowledged. */
static void
rc_resend(struct runcommand *rc, int all)
{
	struct cmdstore_reply *r;
	size_t n, i, sent = 0;
	uint64_t now = now_ms();

	if (cmdstore_reply_list(rc->root, &r, &n, CMDSTORE_LIST_MAX) != 0)
		return;
	for (i = 0; i < n && sent < RC_RESEND_BATCH; i++) {
		if (now > r[i].created_ms &&
		    now - r[i].created_ms > RC_REPLY_KEEP_MS) {
			log_warn("event=reply_expired command=%s",
			    r[i].command_id);
			(void)cmdstore_reply_delete(rc->root, r[i].id);
			continue;
		}
		if (!all && now < r[i].created_ms + RC_RESEND_AFTER_MS)
			continue;
		if (rc_send(rc, MT_AGENT_JOB_REPLY, r[i].payload,
		    r[i].id) != 0)
			break; /* the channel is down */
		sent++;
	}
	if (sent > 0)
		log_info("event=replies_resent count=%zu", sent);
	cmdstore_replies_free(r, n);
}

static void
rc_resend_cb(uv_timer_t *t)
{
	rc_resend(t->data, 0);
}

/* A command found unfinished at start-up: report it Failed. */
static void
rc_recover_one(struct runcommand *rc, struct rc_cmd *c, const char *why)
{
	if (c->cur < c->nsteps && c->res[c->cur].status[0] == '\0') {
		rc_set_result(&c->res[c->cur], "Failed", 1, why);
		if (c->res[c->cur].start_ms == 0)
			c->res[c->cur].start_ms = c->res[c->cur].end_ms;
		c->cur++;
	}
	log_warn("event=command_interrupted command=%s reason=\"%s\"",
	    c->job.command_id, why);
	rc_final(c);
}

/* At start-up: commands whose state says running (the agent was killed or
 * restarted under them). */
static void
rc_recover(struct runcommand *rc, int updates_too)
{
	char p[AGENT_PATH_MAX + 96], state[16];
	struct rc_cmd *c;
	struct dirent *de;
	DIR *d;
	int n = 0;

	d = opendir(rc->root);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL && n < 1024) {
		if (!cmdjob_valid_command_id(de->d_name) ||
		    strcmp(de->d_name, "replies") == 0 ||
		    rc_find(rc, de->d_name) != NULL)
			continue;
		n++;
		fmt(p, sizeof(p), "%s/%s", rc->root, de->d_name);
		if (rc_load_state(rc, p, &c, state, sizeof(state)) != 0)
			continue;
		if (strcmp(state, "running") == 0 && (updates_too ||
		    c->cur >= c->nsteps ||
		    strcmp(c->steps[c->cur].action,
		    "aws:updateSsmAgent") != 0))
			rc_recover_one(rc, c, RC_MSG_RESTARTED);
		rc_cmd_free(c);
	}
	closedir(d);
}

/* After a restart into a new version (or a rollback): the update step's
 * result, then whatever else was left running. */
static void
rc_confirm_update(struct runcommand *rc)
{
	char cmd[CMDJOB_CMD_ID_MAX + 1], step[CMDJOB_NAME_MAX + 1];
	char msg[4096], p[AGENT_PATH_MAX + 96], state[16];
	struct update_result r;
	struct rc_cmd *c;
	int pending = 0;
	size_t i;

	if (rc->update_checked)
		return;
	rc->update_checked = 1;
	if (rc->st != NULL && update_confirm(rc->st, &pending, cmd,
	    sizeof(cmd), step, sizeof(step), &r, msg, sizeof(msg)) == 0 &&
	    pending && cmdjob_valid_command_id(cmd)) {
		snprintf(p, sizeof(p), "%s/%s", rc->root, cmd);
		if (rc_load_state(rc, p, &c, state, sizeof(state)) == 0) {
			for (i = 0; i < c->nsteps; i++)
				if (strcmp(c->steps[i].name, step) == 0)
					break;
			if (strcmp(state, "running") == 0 && i < c->nsteps &&
			    r.status != NULL) {
				rc_write_outputs(c, i, r.stdout_text,
				    r.stderr_text);
				rc_set_result(&c->res[i], r.status, r.code,
				    NULL);
				c->cur = i + 1;
				log_info("event=update_confirmed command=%s "
				    "status=%s", cmd, r.status);
				rc_final(c);
			}
			rc_cmd_free(c);
		}
	}
	rc_recover(rc, 1);
}

void
runcommand_channel_up(struct runcommand *rc)
{
	if (rc == NULL || rc->stopping)
		return;
	rc_confirm_update(rc);
	rc_resend(rc, 1);
}

int
runcommand_new(struct runcommand **out, uv_loop_t *loop,
    const char *state_dir, const char *instance_id,
    runcommand_send_fn send, void *send_ud)
{
	struct runcommand *rc;
	int n;

	*out = NULL;
	rc = calloc(1, sizeof(*rc));
	if (rc == NULL)
		return PH_ERR_NOMEM;
	n = snprintf(rc->root, sizeof(rc->root), "%s/commands", state_dir);
	if (n < 0 || (size_t)n >= sizeof(rc->root) ||
	    strlen(instance_id) >= sizeof(rc->instance_id)) {
		free(rc);
		return PH_ERR_TOOBIG;
	}
	snprintf(rc->instance_id, sizeof(rc->instance_id), "%s",
	    instance_id);
	if (cmdstore_prepare(rc->root) != 0) {
		log_error("event=commands_dir_failed dir=%s", rc->root);
		free(rc);
		return PH_ERR_IO;
	}
	rc->loop = loop;
	rc->send = send;
	rc->send_ud = send_ud;
	uv_timer_init(loop, &rc->resend);
	rc->resend.data = rc;
	rc->handles = 1;
	uv_timer_start(&rc->resend, rc_resend_cb, RC_RESEND_MS, RC_RESEND_MS);
	/* Unfinished commands of an earlier run are reported now; an update
	 * step waits for update_confirm once the channel is up. */
	rc_recover(rc, 0);
	rc_prune(rc);
	*out = rc;
	return 0;
}

void
runcommand_set_state(struct runcommand *rc, const struct agent_state *st)
{
	rc->st = st;
}

size_t
runcommand_running(const struct runcommand *rc)
{
	return rc->ncmds;
}

static void
rc_resend_closed(uv_handle_t *h)
{
	struct runcommand *rc = h->data;

	rc->handles--;
	rc_maybe_stopped(rc);
}

static void
rc_maybe_stopped(struct runcommand *rc)
{
	void (*fn)(void *);
	void *ud;

	if (!rc->stopping || rc->handles > 0)
		return;
	fn = rc->on_stopped;
	ud = rc->stopped_ud;
	free(rc);
	if (fn != NULL)
		fn(ud);
}

static void
rc_exec_closed(void *ud)
{
	struct runcommand *rc = ud;

	rc->handles--;
	rc_maybe_stopped(rc);
}

void
runcommand_shutdown(struct runcommand *rc, void (*on_stopped)(void *),
    void *ud)
{
	struct rc_cmd *c, *next;

	if (rc->stopping)
		return;
	rc->stopping = 1;
	rc->on_stopped = on_stopped;
	rc->stopped_ud = ud;
	uv_timer_stop(&rc->resend);
	for (c = rc->cmds; c != NULL; c = next) {
		next = c->next;
		if (c->uploading) {
			/* rc_upload_done finishes it. */
			cmdupload_abort(c->upl);
			continue;
		}
		if (c->in_update) {
			/* Left running on disk: update_confirm reports it
			 * after the restart. */
			rc_cmd_release(c);
			continue;
		}
		if (c->exec != NULL) {
			rc->handles++;
			cmdexec_abort(c->exec, rc_exec_closed, rc);
			c->exec = NULL;
			if (c->cur < c->nsteps)
				rc_set_result(&c->res[c->cur], "Failed", 1,
				    RC_MSG_STOPPED);
			c->cur++;
		}
		rc_final(c);
		rc_cmd_release(c);
	}
	uv_close((uv_handle_t *)&rc->resend, rc_resend_closed);
}
