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

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/clientmsg.h"
#include "common/http.h"
#include "server/server.h"

struct commands;

int commands_new(struct commands **out, struct server *srv);
/* Stop the timers; state stays in the store. */
void commands_free(struct commands *cm);

/* api_ssm_commands: a command was created (or cancelled): look at it now
 * rather than at the next tick. */
void commands_kick(struct commands *cm, const char *command_id);

/* CancelCommand: invocations not yet delivered (of the listed instances,
 * or all if instance_ids is NULL or empty) become Cancelled at once;
 * delivered ones become Cancelling and their agents get a cancelCommand
 * job. The command's status follows. 0, PH_ERR_NOTFOUND, or PH_ERR_STATE
 * if the command is already final. */
int commands_cancel(struct commands *cm, const char *command_id,
    json_t *instance_ids);

/* The whole output of a step, for OutputS3BucketName: the agent PUTs it
 * (mutual TLS, as the instance) to
 *   /v1/command-output/<CommandId>/<StepName>/<stdout|stderr>
 * StepName percent-encoded; the body is the output (at most
 * COMMANDS_OUTPUT_MAX bytes). portholed checks that the instance has an
 * invocation of that command with a bucket and writes the object through
 * the sink under AWS's key layout; the invocation's StandardOutputUrl /
 * StandardErrorUrl point at it. api.c routes the request here. */
#define COMMANDS_OUTPUT_MAX ((size_t)64 * 1024 * 1024)
void commands_handle_output(struct commands *cm, struct http_request *req);

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

/* The server the dispatcher runs for (commands_output.c). */
struct server *commands_server(struct commands *cm);

/* The dispatcher's rules, exposed for its unit tests. */
struct command_rec;
struct invocation_rec;

/* How many counts of targets "10" or "10%" of target_count is (a
 * percentage rounded down); at_least_one for MaxConcurrency. */
int commands_rate_value(const char *rate, int target_count, int at_least_one);
/* Success, Failed, TimedOut, Cancelled: nothing changes it any more. */
int commands_status_final(const char *status);

/* A command's invocations by outcome. */
struct commands_tally {
	int target, delivered, open, cancelling, success, failed;
	int exec_timed_out, delivery_timed_out, cancelled, terminated;
};
void commands_tally_add(struct commands_tally *t, const char *status,
    const char *details, int64_t delivered_ms);
/* The command's Status, StatusDetails and four counts, as AWS computes
 * them from its invocations and MaxErrors (as a count). */
void commands_aggregate(const struct commands_tally *t, int max_errors,
    struct command_rec *c);
/* The agent's document or step status as Status / StatusDetails. */
void commands_map_status(const char *agent, char *status, size_t ssize,
    char *details, size_t dsize);
/* JobId "aws.ssm.<CommandId>.<InstanceId>" split; PH_ERR_INVALID. */
int commands_parse_job_id(const char *job_id, char command_id[37],
    char instance_id[64]);
/* Apply an agent_job_reply's content (SendReplyPayload JSON) to an
 * invocation: Status, StatusDetails, plugins_json (CommandPlugin objects,
 * with each step's StandardOutputContent / StandardErrorContent),
 * stdout/stderr (24,000 / 8,000 characters), ResponseCode, times.
 * 0 or PH_ERR_INVALID (v unchanged). */
int commands_apply_reply(struct invocation_rec *v, const struct command_rec *c,
    const char *content, size_t len, int64_t now_ms);

#endif
