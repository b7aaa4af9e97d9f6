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

/* ---- the parts, for the watchdog and the tests ------------------------ */

#define UPDATE_MARKER_FILE "update.json"   /* in the state directory */
#define UPDATE_LOCK_FILE "update.lock"
#define UPDATE_WATCHDOG_PID_FILE "update-watchdog.pid"
#define UPDATE_RESTARTED_PID_FILE "update-restarted.pid"
#define UPDATE_CONFIRM_S_DEFAULT 120u      /* agent.json UpdateConfirmSeconds */
#define UPDATE_CONFIRM_S_MAX 3600u

/* update.json: the update in progress (0600). state is "Pending" until
 * the new agent confirms (it then removes the file) or the watchdog rolls
 * back ("RolledBack", with reason). */
struct update_marker {
	char command_id[128];
	char step_name[128];
	char from[32], to[32];
	char path[4096];          /* the agent's binary */
	char old_path[4100];      /* path + ".old": the binary before */
	long long deadline;       /* CLOCK_REALTIME seconds */
	unsigned confirm_s;
	long pid;                 /* the agent's, kept across the exec */
	unsigned long long pid_start;  /* its start time (/proc/PID/stat) */
	char state[16];
	char reason[512];
	json_t *argv;             /* the agent's command line (array) */
};

int update_marker_write(const char *state_dir, const struct update_marker *m);
/* PH_ERR_NOTFOUND without a marker. m->argv is a new reference. */
int update_marker_read(const char *state_dir, struct update_marker *m);
void update_marker_clear(struct update_marker *m);

/* Check a downloaded package: sha256_hex must be its digest and sig_b64
 * the CA's (ca_path) signature over platform, version and digest. why
 * says what failed. */
int update_verify_package(const char *ca_path, const char *platform,
    const char *version, const char *sha256_hex, const char *sig_b64,
    const void *data, size_t n, char *why, size_t whylen);
/* Put data in place of the binary at path: the old one stays as
 * path.old (a hard link, or a copy), the new one is written beside it,
 * fsync'd and renamed over path. */
int update_install(const char *path, const void *data, size_t n, char *why,
    size_t whylen);
/* Put path.old back over path. */
int update_restore(const char *path, const char *old_path);

/* The watchdog's work, in the calling process: wait until the marker's
 * deadline for the confirmation; without it mark the update RolledBack,
 * stop the new agent (pid and its start time), restore the old binary and
 * start it with the marker's argv, detached (its pid goes to
 * UPDATE_RESTARTED_PID_FILE). 0 either way, or an error. poll_ms: how
 * often it looks. */
int update_watchdog_run(const char *state_dir, unsigned poll_ms);
/* `porthole-agent update-watchdog --state-dir DIR`: what the update step
 * starts (detached, from the old binary) before the restart. */
int update_watchdog_main(int argc, char **argv);

/* The confirmation deadline of agent.json (config_path), in seconds. */
unsigned update_confirm_seconds(const char *config_path);

#endif
