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
#include "agent/jsonci.h"
#include "agent/runcommand_int.h"
#include "common/docparams.h"
#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"

uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* snprintf whose cut is checked: PH_ERR_TOOBIG when the text did not
 * fit (paths under a state directory of legal length always fit). */
int
fmt(char *out, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(out, len, f, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? PH_ERR_TOOBIG : 0;
}

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
void
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
char *
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
void
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

/* ---- commands ------------------------------------------------------------ */

void
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

	if (c->orphan == 1)
		c->rc = NULL; /* rc_update_done frees it */
	else
		rc_cmd_free(c);
	rc->handles--;
	rc_maybe_stopped(rc);
}

/* The command is over: unlink it; it is freed once its timer is closed. */
void
rc_cmd_release(struct rc_cmd *c)
{
	rc_unlink_cmd(c->rc, c);
	if (c->stream_open) {
		c->stream_open = 0;
		uv_close((uv_handle_t *)&c->stream, rc_stream_closed);
	} else if (c->orphan == 1) {
		c->rc = NULL; /* rc_update_done frees it */
	} else {
		rc_cmd_free(c);
	}
}

struct rc_cmd *
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
	if (c->res == NULL) {
		rc_cmd_release(c);
		return;
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

/* The command's final reply was acknowledged (or given up on): its
 * directory may go, a marker and then the bound on kept directories. */
static void
rc_command_over(struct runcommand *rc, const char *command_id)
{
	char p[AGENT_PATH_MAX + 96];

	if (!cmdjob_valid_command_id(command_id) ||
	    rc_find(rc, command_id) != NULL)
		return;
	if (fmt(p, sizeof(p), "%s/%s/acked", rc->root, command_id) != 0)
		return;
	(void)agent_write_file_atomic(p, "", 0, 0600);
	rc_prune(rc);
}

void
runcommand_on_reply_ack(struct runcommand *rc, const struct clientmsg *m)
{
	struct cmdstore_reply r;
	char job[CMDJOB_ID_MAX + 1];
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
	if (r.final)
		rc_command_over(rc, r.command_id);
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
			if (r[i].final)
				rc_command_over(rc, r[i].command_id);
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

void
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
			 * after the restart. The update still holds c: it
			 * outlives rc and its done callback frees it. */
			c->orphan = 1;
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
