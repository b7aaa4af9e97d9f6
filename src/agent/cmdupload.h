/* cmdupload: a finished command's whole step output to portholed, for a
 * job with OutputS3BucketName (commands.h): PUT
 *   /v1/command-output/<CommandId>/<StepName percent-encoded>/<stdout|stderr>
 * with the agent's client certificate, on libuv's thread pool so the loop
 * never waits. Failures are logged and counted; they do not change the
 * steps' status. */
#ifndef PORTHOLE_AGENT_CMDUPLOAD_H
#define PORTHOLE_AGENT_CMDUPLOAD_H

#include <stddef.h>

#include <uv.h>

struct agent_state;
struct cmdupload;

struct cmdupload_item {
	const char *step_name;
	size_t index;          /* <dir>/<index>/stdout and stderr */
};

typedef void (*cmdupload_done_fn)(void *ud, int failures);

/* Copies what it needs; done runs once on the loop. */
int cmdupload_start(struct cmdupload **out, uv_loop_t *loop,
    const struct agent_state *st, const char *command_id, const char *dir,
    const struct cmdupload_item *items, size_t n, cmdupload_done_fn done,
    void *ud);
/* Stop early (shutdown): the transfer in flight ends at its next progress
 * callback; done still runs. */
void cmdupload_abort(struct cmdupload *u);

/* The request path for one file (exposed for tests). */
int cmdupload_path(const char *command_id, const char *step_name,
    const char *stream, char *out, size_t len);

#endif
