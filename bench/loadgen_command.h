/* loadgen_command: porthole-loadgen's command mode (issue 12, row 11).
 * The simulated agents answer agent_job (spec 8.3) as porthole-agent
 * does, without running anything: agent_job_ack, an InProgress reply,
 * and after a delay a final reply, Success with the instance id as
 * standard output, or Failed (code 1) for every Nth agent. Unacknowledged
 * final replies are resent a few times. The driver (optional) sends one
 * command to the agents through the API, waits until it is final and
 * reports the counts, the time and portholed's CPU and memory. */
#ifndef PORTHOLE_BENCH_LOADGEN_COMMAND_H
#define PORTHOLE_BENCH_LOADGEN_COMMAND_H

#include <jansson.h>
#include <uv.h>

#include "bench/loadgen.h"
#include "common/clientmsg.h"
#include "common/ws.h"

struct lg_cmd;

struct lg_cmd_opts {
	unsigned delay_ms;          /* job -> final reply */
	unsigned fail_every;        /* 0: none; N: agents N-1, 2N-1, ... */
	/* The driver (send_document NULL: agents only). */
	const char *send_document;
	const char *commands;       /* the "commands" parameter */
	const char *max_concurrency;
	const char *max_errors;
	const char *target;         /* "tag:K=V", "tag-key:K", "instance-ids" */
	unsigned timeout_s;         /* bound on waiting for the final status */
	long server_pid;            /* 0: none */
};

/* n agents, ids borrowed (they outlive c). opts' strings are borrowed. */
int lg_cmd_new(struct lg_cmd **out, uv_loop_t *loop, size_t n,
    char (*ids)[LG_ID_MAX + 1], const struct lg_cmd_opts *o,
    const struct lg_admin *admin);
/* The agent's control channel opened (w) or closed (NULL). */
void lg_cmd_set_channel(struct lg_cmd *c, size_t idx, struct ws *w);
/* A frame agent idx received on its control channel. */
void lg_cmd_control_message(struct lg_cmd *c, size_t idx,
    const struct clientmsg *m);
/* 1 if agent idx answers Failed. */
int lg_cmd_agent_fails(const struct lg_cmd *c, size_t idx);
/* Start the driver on a worker thread (the agents keep answering on the
 * loop); done runs on the loop when the command is final or the wait ran
 * out. 0, or PH_ERR_STATE without a driver. */
int lg_cmd_drive(struct lg_cmd *c, void (*done)(void *), void *arg);
/* The driver runs (lg_cmd_free must wait). */
int lg_cmd_busy(const struct lg_cmd *c);
/* AddTagsToResource Key=Value on every agent (blocking: before the loop
 * runs). */
int lg_cmd_tag_agents(const struct lg_admin *admin,
    char (*ids)[LG_ID_MAX + 1], size_t n, const char *tag, char *err,
    size_t errlen);
/* Stop the timers (the channels are closing). */
void lg_cmd_stop(struct lg_cmd *c);
/* "command_jobs", "command_max_in_flight", ... and "command" (the
 * driver's summary) into out. */
void lg_cmd_report(struct lg_cmd *c, json_t *out);
void lg_cmd_free(struct lg_cmd *c);

#endif
