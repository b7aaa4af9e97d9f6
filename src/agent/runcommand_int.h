/* runcommand_int: what runcommand.c (jobs, replies, entry points),
 * runcommand_steps.c (running a command's steps) and runcommand_state.c
 * (state.json, restarts, clean-up) share. Not for other modules. */
#ifndef PORTHOLE_AGENT_RUNCOMMAND_INT_H
#define PORTHOLE_AGENT_RUNCOMMAND_INT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "agent/cmdexec.h"
#include "agent/cmdjob.h"
#include "agent/cmdupload.h"
#include "agent/runcommand.h"
#include "agent/state.h"

/* Commands running at once; more are refused (ProcessorBufferFull). */
#define RC_MAX_RUNNING 32
/* InProgress replies with the output so far, at most this often. */
#define RC_STREAM_MS 2000
/* Unacknowledged replies are resent this often while connected, at most
 * RC_RESEND_BATCH per pass, only once they are RC_RESEND_AFTER_MS old;
 * after RC_REPLY_KEEP_MS they are dropped (AWS's agent: 2 h). */
#define RC_RESEND_MS 60000
#define RC_RESEND_BATCH 50
#define RC_RESEND_AFTER_MS 20000
#define RC_REPLY_KEEP_MS ((uint64_t)2 * 3600 * 1000)
/* Finished, acknowledged command directories kept (newest first). */
#define RC_KEEP_DONE 8
/* A document after substitution, at most. */
#define RC_DOC_MAX ((size_t)4 << 20)
#define RC_SCRIPT_MAX ((size_t)1 << 20)
#define RC_STATE_MAX ((size_t)1 << 20)
/* AWS's exit codes that end the document after the step: as succeeded,
 * as failed. */
#define RC_EXIT_SUCCESS_STOP 168
#define RC_EXIT_FAILURE_STOP 169
#define RC_MSG_RESTARTED "the agent restarted while the command was running"
#define RC_MSG_STOPPED "the agent stopped while the command was running"

struct rc_result {
	char status[16];
	int code;
	char *message;      /* replaces the output (errors, skips) */
	uint64_t start_ms, end_ms;
	int ran;            /* stdout/stderr files exist */
};

struct rc_cmd {
	struct rc_cmd *next;
	struct runcommand *rc;
	struct cmdjob job;
	struct cmdstep *steps;
	size_t nsteps;
	struct rc_result *res;
	size_t cur;
	char dir[AGENT_PATH_MAX];
	struct cmdexec *exec;
	int in_update;
	int orphan;      /* the agent stopped inside aws:updateSsmAgent */
	int cancelled;
	int exit_doc;              /* a step exited 168/169: skip the rest */
	int uploading;
	int uploaded;
	uv_timer_t stream;
	int stream_open;
	uint64_t last_out, last_err;
	uint8_t progress_id[16];   /* the last InProgress reply on disk */
	int have_progress;
	struct cmdupload *upl;
};

struct runcommand {
	uv_loop_t *loop;
	char root[AGENT_PATH_MAX - 64];
	char instance_id[AGENT_INSTANCE_ID_MAX + 1];
	const struct agent_state *st;
	runcommand_send_fn send;
	void *send_ud;
	struct rc_cmd *cmds;
	size_t ncmds;
	uv_timer_t resend;
	int handles;
	int stopping;
	int update_checked;
	void (*on_stopped)(void *);
	void *stopped_ud;
};

/* runcommand.c */
uint64_t now_ms(void);
/* snprintf whose cut is checked: PH_ERR_TOOBIG when it did not fit. */
int fmt(char *out, size_t len, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
void rc_reply(struct runcommand *rc, const char *command_id, int final,
    const char *payload, uint8_t id_out[16]);
char *rc_build_reply(struct rc_cmd *c, const char *doc_status, size_t upto,
    int cur_in_progress);
void rc_progress(struct rc_cmd *c, size_t upto, int cur_in_progress);
void rc_cmd_free(struct rc_cmd *c);
void rc_cmd_release(struct rc_cmd *c);
struct rc_cmd *rc_find(struct runcommand *rc, const char *command_id);
void rc_maybe_stopped(struct runcommand *rc);

/* runcommand_steps.c */
void rc_set_result(struct rc_result *r, const char *status, int code,
    const char *message);
void rc_write_outputs(struct rc_cmd *c, size_t i, const char *out,
    const char *err);
/* The final reply: stored, sent, state "done". */
void rc_final(struct rc_cmd *c);
/* Run steps from c->cur on; the last one leads to the final reply. */
void rc_run_next(struct rc_cmd *c);

/* runcommand_state.c */
int rc_save_state(struct rc_cmd *c, const char *state);
int rc_load_state(struct runcommand *rc, const char *dir, struct rc_cmd **out,
    char *state, size_t statelen);
/* Report commands left running by an earlier agent (updates_too: also
 * those inside aws:updateSsmAgent). */
void rc_recover(struct runcommand *rc, int updates_too);
/* Once per process, with the control channel up. */
void rc_confirm_update(struct runcommand *rc);
/* Remove acknowledged command directories beyond the bound. */
void rc_prune(struct runcommand *rc);

#endif
