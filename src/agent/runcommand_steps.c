/* runcommand_steps: a command's steps one after the other: shell and
 * PowerShell scripts through cmdexec, aws:updateSsmAgent through update.h,
 * the InProgress replies while they run, the bucket upload and the final
 * reply. */
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
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
#include "agent/runcommand_int.h"
#include "agent/sysinfo.h"
#include "agent/update.h"
#include "common/err.h"
#include "common/log.h"

extern char **environ;

void
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
void
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

void
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
		rc_set_result(res, r->exit_code == 0 ||
		    r->exit_code == RC_EXIT_SUCCESS_STOP ? "Success" : "Failed",
		    r->exit_code, NULL);
		if (r->exit_code == RC_EXIT_SUCCESS_STOP ||
		    r->exit_code == RC_EXIT_FAILURE_STOP)
			c->exit_doc = 1;
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

/* AWS's variables for a step; the agent's own values of them and TERM
 * (no terminal here) are not passed on. */
static const char *const rc_env_ours[] = {
	"AWS_SSM_INSTANCE_ID", "AWS_SSM_REGION_NAME", "AWS_SSM_PLATFORM_NAME",
	"AWS_SSM_PLATFORM_VERSION", "SSM_COMMAND_ID", "TERM",
};
#define RC_ENV_OURS 6

static int
rc_env_skip(const char *e)
{
	size_t i, n;

	for (i = 0; i < RC_ENV_OURS; i++) {
		n = strlen(rc_env_ours[i]);
		if (strncmp(e, rc_env_ours[i], n) == 0 && e[n] == '=')
			return 1;
	}
	return 0;
}

static char *
rc_envstr(const char *name, const char *value)
{
	char *s;

	return asprintf(&s, "%s=%s", name, value) < 0 ? NULL : s;
}

/* The agent's environment plus AWS's variables (AWS's agent sets the
 * same), and HOME when the agent has none (PowerShell needs it). The
 * entries from position *first on are owned. */
static char **
rc_env(struct rc_cmd *c, size_t *first)
{
	const char *region = c->rc->st != NULL ? c->rc->st->region : "";
	struct agent_sysinfo si;
	struct passwd *pw;
	size_t n = 0, i, k = 0, o;
	char **env;
	int home = 0, bad = 0;

	agent_sysinfo_collect(&si);
	while (environ != NULL && environ[n] != NULL)
		n++;
	env = calloc(n + RC_ENV_OURS + 2, sizeof(*env));
	if (env == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (strncmp(environ[i], "HOME=", 5) == 0)
			home = 1;
		if (!rc_env_skip(environ[i]))
			env[k++] = environ[i];
	}
	*first = o = k;
	env[k++] = rc_envstr("AWS_SSM_INSTANCE_ID", c->rc->instance_id);
	env[k++] = rc_envstr("AWS_SSM_REGION_NAME", region);
	if (si.platform_name[0] != '\0')
		env[k++] = rc_envstr("AWS_SSM_PLATFORM_NAME",
		    si.platform_name);
	if (si.platform_version[0] != '\0')
		env[k++] = rc_envstr("AWS_SSM_PLATFORM_VERSION",
		    si.platform_version);
	env[k++] = rc_envstr("SSM_COMMAND_ID", c->job.command_id);
	if (!home && (pw = getpwuid(geteuid())) != NULL)
		env[k++] = rc_envstr("HOME", pw->pw_dir);
	for (i = o; i < k; i++)
		bad |= env[i] == NULL;
	if (bad) {
		for (i = o; i < k; i++)
			free(env[i]);
		free(env);
		return NULL;
	}
	return env;
}

static void
rc_env_free(char **env, size_t first)
{
	size_t i;

	if (env == NULL)
		return;
	for (i = first; env[i] != NULL; i++)
		free(env[i]);
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
	size_t env_first = 0;
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
	env = rc_env(c, &env_first);
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
	rc_env_free(env, env_first);
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
	if (c->orphan) {
		/* The agent stopped meanwhile: the state on disk still says
		 * running, the next start reports it. */
		if (c->rc == NULL)
			rc_cmd_free(c);
		else
			c->orphan = 2; /* freed when its timer closes */
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

void
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
		if (c->exit_doc) {
			/* AWS's agent: the document ends after 168/169. */
			snprintf(msg, sizeof(msg), "Plugin with name %s and id "
			    "%s skipped due to prior step with an exit "
			    "condition", s->action, s->name);
			rc_set_result(&c->res[c->cur], "Skipped", 0, msg);
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
