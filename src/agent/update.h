/* update: the aws:updateSsmAgent step. Downloads the agent package for
 * this platform from portholed (mutual TLS), verifies portholed's
 * signature over it, installs it over the running binary atomically
 * (keeping the old one), and restarts the agent into it. A watchdog
 * started before the restart puts the old binary back and starts it if the
 * new one has not reconnected to portholed by the deadline. The step's
 * result is reported by whichever agent runs after the restart: Success
 * from the new version once its control channel is up, Failed from the old
 * one after a rollback. */
#ifndef PORTHOLE_AGENT_UPDATE_H
#define PORTHOLE_AGENT_UPDATE_H

#include <stddef.h>

#include <uv.h>

#include <jansson.h>

struct agent_state;

/* What an update step finished with (also what runcommand reports). */
struct update_result {
	int code;              /* the step's ResponseCode: 0 on success */
	const char *status;    /* "Success", "Failed", or NULL when the agent is
	                        * about to restart (no reply now) */
	const char *stdout_text;
	const char *stderr_text;
};

typedef void (*update_done_fn)(void *ud, const struct update_result *r);

/* Run one aws:updateSsmAgent step. inputs: the step's inputs (agentName,
 * version, allowDowngrade, source...). command_id/step name identify the
 * step so that the agent after the restart can report it. done is called
 * once, on the loop; for a restart it is called with status NULL just
 * before the process execs the new binary. */
int update_step_start(uv_loop_t *loop, const struct agent_state *st,
    const char *command_id, const char *step_name, json_t *inputs,
    update_done_fn done, void *ud);

/* runcommand_channel_up calls this each time the control channel comes
 * up; a command left unfinished on disk whose running step is
 * aws:updateSsmAgent is then not reported as "agent restarted" but with
 * this result. */
/* At agent start-up, after the control channel is up: if an update was
 * in progress, confirm it (the watchdog stands down) and return its
 * result for the command to report; 0 and *pending = 0 if there was
 * none. command_id/step_name receive the step to report. */
int update_confirm(const struct agent_state *st, int *pending,
    char *command_id, size_t command_id_len, char *step_name,
    size_t step_name_len, struct update_result *r, char *msg,
    size_t msglen);
/* The r->stdout_text / stderr_text of update_confirm point into msg. */

#endif
