#include "agent/shell_pty.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "agent/jsonci.h"
#include "common/err.h"

/* What the child reports through the close-on-exec pipe when a step
 * fails: which step, and errno. */
enum spawn_step {
	STEP_SETSID = 1,
	STEP_CTTY,
	STEP_DUP,
	STEP_GROUPS,
	STEP_SETGID,
	STEP_SETUID,
	STEP_EXEC,
};

struct spawn_report {
	int step;
	int err;
};

int
agent_pty_resize(int fd, unsigned short rows, unsigned short cols)
{
	struct winsize ws;

	memset(&ws, 0, sizeof(ws));
	ws.ws_row = rows;
	ws.ws_col = cols;
	return ioctl(fd, TIOCSWINSZ, &ws) == 0 ? 0 : PH_ERR_IO;
}

/* Close every descriptor above 2 except keep. */
static void
child_close_fds(int keep)
{
	long max, fd;

	if (keep > 3 && close_range(3, (unsigned)keep - 1, 0) == 0 &&
	    close_range((unsigned)keep + 1, ~0u, 0) == 0)
		return;
	if (keep == 3 && close_range(4, ~0u, 0) == 0)
		return;
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = 3; fd < max; fd++)
		if (fd != keep)
			close((int)fd);
}

static void
child_fail(int report_fd, int step)
{
	struct spawn_report r;
	ssize_t w;

	r.step = step;
	r.err = errno;
	do
		w = write(report_fd, &r, sizeof(r));
	while (w < 0 && errno == EINTR);
	_exit(127);
}

/* In the child: only async-signal-safe calls from here on (the agent may
 * have threads, e.g. libuv's resolver pool). */
static void
child_run(const struct agent_spawn *sp, int slave, int report_fd)
{
	const struct agent_user *u = sp->user;
	struct sigaction sa;
	sigset_t all;
	int sig;

	/* An agent started with 0, 1 or 2 closed may hold the pipe or the
	 * slave there: move them out of the way of the dup2s below. */
	if (report_fd < 3 &&
	    (report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, 3)) < 0)
		_exit(127);
	if (slave < 3 && (slave = fcntl(slave, F_DUPFD, 3)) < 0)
		child_fail(report_fd, STEP_DUP);
	if (setsid() < 0)
		child_fail(report_fd, STEP_SETSID);
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		child_fail(report_fd, STEP_CTTY);
	if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
		child_fail(report_fd, STEP_DUP);
	if (slave > 2 && slave != report_fd)
		close(slave);
	child_close_fds(report_fd);
	/* Handlers and ignored signals of the agent must not leak into
	 * the shell (an ignored SIGPIPE survives exec). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL);
	sigemptyset(&all);
	(void)sigprocmask(SIG_SETMASK, &all, NULL);
	if (u != NULL && u->switch_user) {
		/* Groups first, then gid, then uid: each needs the
		 * privilege the next one drops. */
		if (setgroups((size_t)u->ngroups, u->groups) != 0)
			child_fail(report_fd, STEP_GROUPS);
		if (setgid(u->gid) != 0)
			child_fail(report_fd, STEP_SETGID);
		if (setuid(u->uid) != 0)
			child_fail(report_fd, STEP_SETUID);
		/* Dropping must be irreversible. */
		if (u->uid != 0 && setuid(0) == 0) {
			errno = EPERM;
			child_fail(report_fd, STEP_SETUID);
		}
	}
	if (sp->cwd == NULL || chdir(sp->cwd) != 0)
		(void)chdir("/");
	execve(sp->path, sp->argv, sp->envp);
	child_fail(report_fd, STEP_EXEC);
}

static const char *
step_name(int step)
{
	switch (step) {
	case STEP_SETSID:
		return "setsid";
	case STEP_CTTY:
		return "set the controlling terminal";
	case STEP_DUP:
		return "dup2";
	case STEP_GROUPS:
		return "setgroups";
	case STEP_SETGID:
		return "setgid";
	case STEP_SETUID:
		return "setuid";
	case STEP_EXEC:
		return "exec";
	}
	return "start";
}

int
agent_pty_spawn(const struct agent_spawn *sp, int *master, pid_t *pid,
    char *err, size_t errlen)
{
	int mfd = -1, sfd = -1, pfd[2] = { -1, -1 }, rc = PH_ERR_IO, status;
	struct spawn_report rep;
	sigset_t all, old;
	struct winsize ws;
	ssize_t r;
	pid_t child;

	*master = -1;
	*pid = -1;
	memset(&ws, 0, sizeof(ws));
	ws.ws_row = sp->rows;
	ws.ws_col = sp->cols;
	/* The size is set before fork so the program sees it from its
	 * first byte. */
	if (openpty(&mfd, &sfd, NULL, NULL,
	    sp->rows && sp->cols ? &ws : NULL) != 0) {
		ph_errf(err, errlen, "openpty: %s", strerror(errno));
		return PH_ERR_IO;
	}
	if (fcntl(mfd, F_SETFD, FD_CLOEXEC) != 0 ||
	    fcntl(sfd, F_SETFD, FD_CLOEXEC) != 0 ||
	    pipe2(pfd, O_CLOEXEC) != 0) {
		ph_errf(err, errlen, "pty set-up: %s", strerror(errno));
		goto fail;
	}
	/* No signal handler may run in the child before it resets them
	 * (libuv's would write into the agent's own pipe). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	child = fork();
	if (child == 0) {
		close(pfd[0]);
		close(mfd);
		child_run(sp, sfd, pfd[1]);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (child < 0) {
		ph_errf(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	close(pfd[1]);
	pfd[1] = -1;
	close(sfd);
	sfd = -1;
	/* EOF: exec succeeded (the pipe was close-on-exec). */
	do
		r = read(pfd[0], &rep, sizeof(rep));
	while (r < 0 && errno == EINTR);
	if (r == (ssize_t)sizeof(rep)) {
		ph_errf(err, errlen, "%s %s: %s", step_name(rep.step),
		    rep.step == STEP_EXEC ? sp->path : "failed",
		    strerror(rep.err));
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
		goto fail;
	}
	if (fcntl(mfd, F_SETFL, fcntl(mfd, F_GETFL) | O_NONBLOCK) != 0) {
		ph_errf(err, errlen, "fcntl: %s", strerror(errno));
		kill(child, SIGKILL);
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
		goto fail;
	}
	*master = mfd;
	mfd = -1; /* transferred */
	*pid = child;
	rc = 0;
fail:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (sfd >= 0)
		close(sfd);
	if (mfd >= 0)
		close(mfd);
	return rc;
}

int
agent_pty_parse_size(const void *p, size_t n, unsigned short *rows,
    unsigned short *cols)
{
	json_int_t c, r;
	json_t *o, *jc, *jr;
	int rc = PH_ERR_INVALID;

	if (n > 256)
		return PH_ERR_TOOBIG;
	o = json_loadb(p, n, 0, NULL);
	jc = agent_json_get(o, "cols");
	jr = agent_json_get(o, "rows");
	if (json_is_integer(jc) && json_is_integer(jr)) {
		c = json_integer_value(jc);
		r = json_integer_value(jr);
		if (c > 0 && c <= 65535 && r > 0 && r <= 65535) {
			*cols = (unsigned short)c;
			*rows = (unsigned short)r;
			rc = 0;
		}
	}
	json_decref(o);
	return rc;
}

/* Session and process group of pid from /proc/<pid>/stat. */
static int
proc_ids(const char *pid, pid_t *sid, pid_t *pgrp)
{
	char path[64], line[512], *p;
	long pg, se;
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (r <= 0)
		return -1;
	line[r] = '\0';
	/* The command name may contain anything: fields follow the last
	 * ')': state ppid pgrp session. */
	p = strrchr(line, ')');
	if (p == NULL || sscanf(p + 1, " %*c %*d %ld %ld", &pg, &se) != 2)
		return -1;
	*pgrp = (pid_t)pg;
	*sid = (pid_t)se;
	return 0;
}

int
agent_pty_signal_group(pid_t sid, pid_t pgid, int sig)
{
	struct dirent *e;
	pid_t s, g, pid;
	int n = 0;
	DIR *d;

	if (sid <= 1 || pgid <= 1)
		return 0;
	d = opendir("/proc");
	if (d == NULL)
		return kill(-pgid, sig) == 0 ? 1 : 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		if (proc_ids(e->d_name, &s, &g) != 0 || s != sid || g != pgid)
			continue;
		pid = (pid_t)strtol(e->d_name, NULL, 10);
		if (pid > 1 && kill(pid, sig) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static char *
cmd_keep(struct agent_session_cmd *c, char *s)
{
	if (s == NULL)
		return NULL;
	if (c->nstore >= (int)(sizeof(c->store) / sizeof(c->store[0]))) {
		free(s);
		return NULL;
	}
	c->store[c->nstore++] = s;
	return s;
}

static char *
cmd_fmt(struct agent_session_cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static char *
cmd_fmt(struct agent_session_cmd *c, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : cmd_keep(c, s);
}

int
agent_session_cmd_build(struct agent_session_cmd *c,
    const struct agent_user *u, const char *commands)
{
	const char *base;
	int i = 0;

	memset(c, 0, sizeof(*c));
	if (commands == NULL) {
		/* A login shell: argv[0] is "-" and the shell's name. */
		c->path = u->shell;
		base = strrchr(u->shell, '/');
		base = base != NULL ? base + 1 : u->shell;
		c->argv[0] = cmd_fmt(c, "-%s", base);
		c->argv[1] = NULL;
	} else {
		c->path = "/bin/sh";
		c->argv[0] = cmd_fmt(c, "sh");
		c->argv[1] = cmd_fmt(c, "-c");
		c->argv[2] = cmd_keep(c, strdup(commands));
		c->argv[3] = NULL;
		if (c->argv[1] == NULL || c->argv[2] == NULL)
			goto fail;
	}
	if (c->argv[0] == NULL)
		goto fail;
	c->envp[i++] = cmd_fmt(c, "HOME=%s", u->home);
	c->envp[i++] = cmd_fmt(c, "USER=%s", u->name);
	c->envp[i++] = cmd_fmt(c, "LOGNAME=%s", u->name);
	c->envp[i++] = cmd_fmt(c, "SHELL=%s", u->shell);
	c->envp[i++] = cmd_fmt(c, "PATH=%s", AGENT_SESSION_PATH);
	c->envp[i++] = cmd_fmt(c, "TERM=xterm-256color");
	c->envp[i++] = cmd_fmt(c, "LANG=C.UTF-8");
	c->envp[i] = NULL;
	while (--i >= 0)
		if (c->envp[i] == NULL)
			goto fail;
	return 0;
fail:
	agent_session_cmd_free(c);
	return PH_ERR_NOMEM;
}

void
agent_session_cmd_free(struct agent_session_cmd *c)
{
	int i;

	for (i = 0; i < c->nstore; i++)
		free(c->store[i]);
	memset(c, 0, sizeof(*c));
}
