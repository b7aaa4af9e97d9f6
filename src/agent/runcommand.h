/* runcommand: Run Command on the agent (spec 8.3). Takes agent_job frames
 * from the control channel, acknowledges them (agent_job_ack), runs the
 * document's steps as root in a per-command working directory under the
 * state directory (aws:runShellScript with /bin/sh, aws:runPowerShellScript
 * with pwsh, aws:updateSsmAgent through update.h), streams InProgress
 * replies with the output so far while a step runs, kills the step's
 * whole process group at its timeout, and sends the final
 * agent_job_reply. Every reply is kept on disk until portholed
 * acknowledges it (agent_job_reply_ack) and resent when the control
 * channel comes back; a command found unfinished at start-up (the agent
 * was restarted under it) is reported Failed with the reason.
 * cancelCommand jobs stop a running command (Cancelled). */
#ifndef PORTHOLE_AGENT_RUNCOMMAND_H
#define PORTHOLE_AGENT_RUNCOMMAND_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/clientmsg.h"

struct runcommand;

/* How runcommand sends a frame on the control channel (control.c):
 * type, JSON payload; 0, or non-zero if the channel is down (the reply
 * stays on disk and is resent by runcommand_channel_up). */
typedef int (*runcommand_send_fn)(void *ud, const char *type,
    const char *payload, uint8_t message_id[16]);

/* state_dir: the agent's state directory (commands/ lives under it);
 * instance_id: this instance. */
int runcommand_new(struct runcommand **out, uv_loop_t *loop,
    const char *state_dir, const char *instance_id,
    runcommand_send_fn send, void *send_ud);
/* Kill running steps' process groups, record them as Failed on disk
 * ("the agent stopped"), close handles; on_stopped runs once every handle
 * is closed. */
void runcommand_shutdown(struct runcommand *rc, void (*on_stopped)(void *),
    void *ud);

/* control.c: the control channel is open (resend unacknowledged replies)
 * and the two incoming message types of spec 8.3. */
void runcommand_channel_up(struct runcommand *rc);
void runcommand_on_job(struct runcommand *rc, const struct clientmsg *m);
void runcommand_on_reply_ack(struct runcommand *rc,
    const struct clientmsg *m);

struct agent_state;
/* The agent's identity and endpoint (region for the steps' environment,
 * certificate for output uploads, aws:updateSsmAgent). Borrowed; set
 * before the first job. */
void runcommand_set_state(struct runcommand *rc,
    const struct agent_state *st);
/* Commands running now (tests, logs). */
size_t runcommand_running(const struct runcommand *rc);

#endif
