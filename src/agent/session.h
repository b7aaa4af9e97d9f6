/* session: one Session Manager session on this machine (spec 7.1, 7.2):
 * its data channel to the gateway, the reliability layer (common/channel),
 * and the shell in a PTY that feeds it. */
#ifndef PORTHOLE_AGENT_SESSION_H
#define PORTHOLE_AGENT_SESSION_H

#include <stddef.h>
#include <uv.h>

#include "agent/record_upload.h"
#include "agent/state.h"
#include "agent/task.h"
#include "common/tls.h"

/* What every session shares with the control channel. */
struct agent_ctx {
	uv_loop_t *loop;
	struct tls_ctx *tls;          /* mutual TLS: state dir's cert + key */
	const struct agent_state *st;
	/* Delivers session records (record_upload.h); NULL: they stay in
	 * STATE_DIR/records. */
	struct rec_uploader *rec;
};

struct agent_session;

struct agent_session_cbs {
	/* The session is over: send agent_task_complete (spec 8.2) with
	 * status "Success" or "Failed" and output (may be ""). Called once. */
	void (*on_complete)(void *ud, const char *session_id,
	    const char *status, const char *output);
	/* Every resource is released; s is freed after this returns. */
	void (*on_freed)(void *ud, struct agent_session *s);
};

/* Start a session for task (its contents are moved into the session).
 * On failure nothing was started, err explains why (shown to the user
 * through agent_task_complete) and task is left for the caller to free. */
int agent_session_start(struct agent_session **out,
    const struct agent_ctx *ctx, struct agent_task *task,
    const struct agent_session_cbs *cbs, void *ud, char *err,
    size_t errlen);
const char *agent_session_id(const struct agent_session *s);
/* End it now (channel_closed from the gateway, or the agent stopping):
 * the shell's process group gets SIGHUP, SIGKILL 2 s later if needed.
 * status/output go to on_complete unless the session already ended. */
void agent_session_terminate(struct agent_session *s, const char *status,
    const char *output);

#endif
