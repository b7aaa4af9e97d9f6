/* noninteractive: the command of a NonInteractiveCommands session (spec
 * 7.3). It runs without a terminal, its standard input is /dev/null, and
 * its standard output and standard error come back through two pipes read
 * with libuv. A pipe is read only while the consumer takes what was read
 * (STYLE.md 6), so a slow client stops the reads. The exit status is
 * reported as a shell reports it, after every byte of output. */
#ifndef PORTHOLE_AGENT_NONINTERACTIVE_H
#define PORTHOLE_AGENT_NONINTERACTIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "agent/user.h"

/* Exit codes of a command that could not be run, as sh reports them. */
#define AGENT_NI_EXIT_NOT_FOUND 127
#define AGENT_NI_EXIT_NOT_EXECUTABLE 126
/* spec 7.3: the code when none could be determined. */
#define AGENT_NI_EXIT_UNKNOWN 1
/* The most words a command line may split into. */
#define AGENT_NI_MAX_WORDS 4096

enum agent_ni_stream {
	AGENT_NI_STDOUT = 1,
	AGENT_NI_STDERR = 2,
};

/* A command line split into words (agent_ni_split). */
struct agent_ni_argv {
	char **argv;  /* argc words, then NULL */
	int argc;
	char *store;  /* the words' bytes */
};

/* Split a command line into words the way sh does for plain words (spec
 * 7.3: the command is split shell-style and run without a shell): blanks
 * and newlines separate words, '...' is literal, "..." keeps blanks and
 * takes \ before $ ` " \ and newline, \ outside quotes takes the next
 * character, # at the start of a word begins a comment to the end of the
 * line. Nothing is expanded. Fails on an unterminated quote, a trailing \,
 * no word at all or more than AGENT_NI_MAX_WORDS words. */
int agent_ni_split(const char *line, struct agent_ni_argv *a, char *err,
    size_t errlen);
void agent_ni_argv_free(struct agent_ni_argv *a);

struct agent_ni_spawn {
	char *const *argv;       /* argv[0] is looked up in path */
	char *const *envp;       /* the whole environment */
	const char *path;        /* search path for argv[0] without '/' */
	const struct agent_user *user; /* drop to it if switch_user */
	const char *cwd;         /* "/" if NULL or not reachable */
};

struct agent_ni;

struct agent_ni_cbs {
	/* Bytes of one stream, in order. Returns how many were taken
	 * (0..n); the rest is offered again after agent_ni_resume, and that
	 * pipe is not read meanwhile. */
	size_t (*on_output)(void *ud, enum agent_ni_stream st,
	    const uint8_t *p, size_t n);
	/* Both pipes are at their end (or, when a background process keeps
	 * one open, idle for a while after the command exited), every byte
	 * was taken, and the command was reaped: code is 0-255, 128+signal
	 * for a killed command. Called once. */
	void (*on_exit)(void *ud, int code);
};

/* Run the command. On success *out runs it and reports through cbs. When
 * the command cannot be run nothing is left behind, err says why (as a
 * shell would: "nosuch: command not found") and *code is the status a
 * shell would give (127 not found, 126 not executable, 1 otherwise). */
int agent_ni_start(struct agent_ni **out, uv_loop_t *loop,
    const struct agent_ni_spawn *sp, const struct agent_ni_cbs *cbs,
    void *ud, int *code, char *err, size_t errlen);
pid_t agent_ni_pid(const struct agent_ni *ni);
/* The consumer has room again: offer what is held, then read on. */
void agent_ni_resume(struct agent_ni *ni);
/* Send sig to the command's process group (it leads its own session). */
int agent_ni_signal(struct agent_ni *ni, int sig);
/* Stop reporting. A command still running gets SIGHUP, SIGKILL 2 s later;
 * ni frees itself once the command is reaped and its handles are closed,
 * so the loop must run on a little. */
void agent_ni_close(struct agent_ni *ni);

#endif
