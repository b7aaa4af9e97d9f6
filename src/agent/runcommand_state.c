/* runcommand_state: each command's state.json (rewritten after every
 * step), commands an earlier agent left running (reported Failed, or
 * with update_confirm's result), and the bound on kept directories. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/cmdjob.h"
#include "agent/cmdstore.h"
#include "agent/runcommand_int.h"
#include "agent/update.h"
#include "common/err.h"
#include "common/log.h"

/* ---- the command's state on disk ----------------------------------------- */

int
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
int
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

/* Remove the oldest acknowledged command directories beyond the bound. */
void
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
void
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
void
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
