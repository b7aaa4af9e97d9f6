/* shell_pty: start a program on a new pseudo-terminal as a given user, the
 * way a login does (STYLE.md section 8): new session with the PTY as its
 * controlling terminal, inherited descriptors closed, signals reset,
 * privileges dropped, a fresh environment. */
#ifndef PORTHOLE_AGENT_SHELL_PTY_H
#define PORTHOLE_AGENT_SHELL_PTY_H

#include <stddef.h>
#include <sys/types.h>

#include "agent/user.h"

/* The PATH every session starts with. */
#define AGENT_SESSION_PATH \
	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct agent_spawn {
	const char *path;          /* program to exec */
	char *const *argv;         /* its argv (argv[0] may be "-bash") */
	char *const *envp;         /* its whole environment */
	const struct agent_user *user; /* drop to this user if switch_user */
	const char *cwd;           /* "/" if NULL or not reachable */
	unsigned short rows, cols; /* initial window size (0: leave unset) */
};

/* Fork the program on a new PTY. On success *master is the PTY master
 * (non-blocking, close-on-exec) and *pid the child, which is the leader
 * of its own session and process group. A failure before or at exec is
 * reported in err (e.g. "exec /bin/zsh: No such file or directory") and
 * the child is reaped. */
int agent_pty_spawn(const struct agent_spawn *sp, int *master, pid_t *pid,
    char *err, size_t errlen);

/* Parse a Size payload (spec 3.4: {"cols":N,"rows":M}, each 1-65535);
 * 0 on success. */
int agent_pty_parse_size(const void *p, size_t n, unsigned short *rows,
    unsigned short *cols);
/* Send sig to every process of session sid (the shell's pid) whose
 * process group is pgid (found through /proc, so a recycled group id
 * outside the session is never hit). Returns how many were signalled. */
int agent_pty_signal_group(pid_t sid, pid_t pgid, int sig);
/* Set the window size of a PTY (TIOCSWINSZ). */
int agent_pty_resize(int fd, unsigned short rows, unsigned short cols);

/* Build argv and environment for a session of u: a login shell
 * ("-bash") when commands is NULL, else `sh -c commands`. The strings
 * are owned by c (free with agent_session_cmd_free). */
struct agent_session_cmd {
	const char *path;
	char *argv[4];
	char *envp[8];
	char *store[12];
	int nstore;
};
int agent_session_cmd_build(struct agent_session_cmd *c,
    const struct agent_user *u, const char *commands);
void agent_session_cmd_free(struct agent_session_cmd *c);

#endif
