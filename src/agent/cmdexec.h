/* cmdexec: one step's process for Run Command. Spawns it in a process
 * group of its own (setsid through UV_PROCESS_DETACHED), stdin from
 * /dev/null, stdout and stderr through pipes into two files (each bounded
 * on disk; past the bound a note is written and the rest discarded, the
 * pipe still drained so the step never blocks). At the timeout, or when
 * stopped, the whole group gets SIGTERM and, after a grace period,
 * SIGKILL. */
#ifndef PORTHOLE_AGENT_CMDEXEC_H
#define PORTHOLE_AGENT_CMDEXEC_H

#include <stdint.h>

#include <uv.h>

/* AWS's agent reports a step it stopped (timeout, cancel) with this code:
 * 128 + SIGKILL. */
#define CMDEXEC_STOPPED_CODE 137
#define CMDEXEC_FILE_MAX_DEFAULT ((uint64_t)64 << 20)
#define CMDEXEC_KILL_GRACE_MS 2000u
/* After the step exits, background children holding the pipes get this
 * long before the pipes are closed. */
#define CMDEXEC_DRAIN_MS 1000u

struct cmdexec;

struct cmdexec_opts {
	const char *file;          /* the program */
	char **args;               /* argv, NULL-terminated */
	char **env;                /* environment, NULL-terminated */
	const char *cwd;
	const char *out_path, *err_path;
	uint64_t file_max;         /* per stream; 0: the default */
	unsigned timeout_s;        /* 0: none */
	unsigned kill_grace_ms;    /* 0: the default */
};

enum cmdexec_end { CMDEXEC_EXITED, CMDEXEC_TIMEDOUT, CMDEXEC_STOPPED };

struct cmdexec_result {
	enum cmdexec_end end;
	int exit_code;     /* 128 + signal for a signal; 137 when stopped */
	uint64_t out_bytes, err_bytes;  /* what the step wrote */
};

typedef void (*cmdexec_done_fn)(void *ud, const struct cmdexec_result *r);

/* Start; done runs once on the loop when the step has exited and its
 * output is on disk; the object frees itself after done returns. err
 * explains a failure to start (nothing runs then, done is not called). */
int cmdexec_start(struct cmdexec **out, uv_loop_t *loop,
    const struct cmdexec_opts *o, cmdexec_done_fn done, void *ud,
    char *err, size_t errlen);
/* Stop the step (cancel): TERM, then KILL after the grace period; done
 * reports CMDEXEC_STOPPED. */
void cmdexec_stop(struct cmdexec *x);
/* Kill the group at once and close every handle without calling done;
 * closed(ud) runs once all are closed (shutdown). */
void cmdexec_abort(struct cmdexec *x, void (*closed)(void *), void *ud);
/* Bytes written so far to each stream (streaming replies). */
void cmdexec_bytes(const struct cmdexec *x, uint64_t *out, uint64_t *err);
int cmdexec_pid(const struct cmdexec *x);

#endif
