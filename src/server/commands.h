/* commands: Run Command's dispatcher. It drives every command that is not
 * final: delivers agent_job frames (spec 8.3) to online targets under the
 * command's MaxConcurrency, stops delivering past MaxErrors, records
 * agent_job_ack / agent_job_reply results (and acknowledges the replies),
 * times out undelivered invocations at TimeoutSeconds (DeliveryTimedOut),
 * sends cancelCommand jobs, and copies whole outputs to the command's
 * OutputS3BucketName through the sink. State is in store_commands, so a
 * restarted portholed picks up where it stopped. One per server
 * (srv->commands). */
#ifndef PORTHOLE_SERVER_COMMANDS_H
#define PORTHOLE_SERVER_COMMANDS_H

#include "common/clientmsg.h"
#include "server/server.h"

struct commands;

int commands_new(struct commands **out, struct server *srv);
/* Stop the timers; state stays in the store. */
void commands_free(struct commands *cm);

/* api_ssm_commands: a command was created (or cancelled): look at it now
 * rather than at the next tick. */
void commands_kick(struct commands *cm, const char *command_id);

/* gateway: an agent's control channel was registered (pending
 * invocations for it can be delivered) or went away. */
void commands_agent_online(struct commands *cm, const char *instance_id);
void commands_agent_offline(struct commands *cm, const char *instance_id);

/* gateway: agent_job_ack and agent_job_reply frames from an agent's
 * control channel (already decoded; payload not yet parsed). A reply is
 * acknowledged (agent_job_reply_ack) through gateway_send_control once
 * stored. Garbage is logged and dropped, never fatal. */
void commands_on_job_ack(struct commands *cm, const char *instance_id,
    const struct clientmsg *m);
void commands_on_job_reply(struct commands *cm, const char *instance_id,
    const struct clientmsg *m);

#endif
