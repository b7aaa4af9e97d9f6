#include "agent/noninteractive.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"

/* One read of a pipe; what is read and not yet taken stays below this. */
#define NI_READ_MAX ((size_t)64 * 1024)
/* The child is looked for this often, faster once both pipes ended. */
#define NI_TICK_MS 100
#define NI_TICK_FAST_MS 10
/* After the command exited, a pipe that a background process keeps open
 * is given up when nothing came through it for this long. */
#define NI_EXIT_GRACE_MS 500
/* SIGHUP first, SIGKILL this much later; a child that ignores SIGKILL
 * (uninterruptible sleep) is given up after NI_GIVEUP_MS. */
#define NI_KILL_MS 2000
#define NI_GIVEUP_MS 7000
/* Longest path tried by the PATH search. */
#define NI_PATH_MAX 4096

struct ni_stream {
	struct agent_ni *ni;
	enum agent_ni_stream which;
	uv_pipe_t pipe;
	int live;           /* handle open (closed at the end of output) */
	int reading;
	int done;           /* no more bytes will come */
	struct buf held;    /* read, not yet taken */
	uint64_t last_ms;   /* last byte, or reading resumed */
};

struct agent_ni {
	uv_loop_t *loop;
	const struct agent_ni_cbs *cbs;
	void *ud;
	pid_t pid;
	int exited;
	int status;
	uint64_t exit_ms;
	struct ni_stream out, err;
	uv_timer_t timer;
	int timer_live;
	int timer_fast;
	int reported;
	int closing;        /* agent_ni_close: no more callbacks */
	int hup_sent, kill_sent;
	uint64_t kill_at, giveup_at;
	int in_offer;       /* on_output is running: no re-entry */
};

/* ---- splitting -------------------------------------------------------- */

void
agent_ni_argv_free(struct agent_ni_argv *a)
{
	if (a == NULL)
		return;
	free(a->argv);
	free(a->store);
	memset(a, 0, sizeof(*a));
}

static int
ni_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
agent_ni_split(const char *line, struct agent_ni_argv *a, char *err,
    size_t errlen)
{
	const char *p = line;
	char *w, **starts = NULL;
	size_t len, n = 0;
	int in_word = 0, rc = PH_ERR_INVALID;

	memset(a, 0, sizeof(*a));
	if (line == NULL) {
		ph_errf(err, errlen, "no command");
		return PH_ERR_INVALID;
	}
	len = strlen(line);
	/* Every word is at most as long as its source, and each NUL takes
	 * the place of at least one separator or quote. */
	a->store = malloc(len + 2);
	starts = calloc(AGENT_NI_MAX_WORDS + 1, sizeof(*starts));
	if (a->store == NULL || starts == NULL) {
		ph_errf(err, errlen, "out of memory");
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	w = a->store;
	for (;;) {
		if (*p == '\0' || ni_blank(*p)) {
			if (in_word) {
				*w++ = '\0';
				in_word = 0;
			}
			if (*p == '\0')
				break;
			p++;
			continue;
		}
		if (!in_word) {
			if (*p == '#') {
				/* A comment runs to the end of the line. */
				while (*p != '\0' && *p != '\n')
					p++;
				continue;
			}
			if (n >= AGENT_NI_MAX_WORDS) {
				ph_errf(err, errlen, "the command has more "
				    "than %d words", AGENT_NI_MAX_WORDS);
				rc = PH_ERR_TOOBIG;
				goto fail;
			}
			starts[n++] = w;
			in_word = 1;
		}
		if (*p == '\'') {
			p++;
			while (*p != '\0' && *p != '\'')
				*w++ = *p++;
			if (*p != '\'') {
				ph_errf(err, errlen, "unterminated ' in the "
				    "command");
				goto fail;
			}
			p++;
		} else if (*p == '"') {
			p++;
			while (*p != '\0' && *p != '"') {
				if (*p == '\\' && p[1] == '\n') {
					p += 2; /* a continued line */
					continue;
				}
				if (*p == '\\' && (p[1] == '$' || p[1] == '`' ||
				    p[1] == '"' || p[1] == '\\'))
					p++;
				*w++ = *p++;
			}
			if (*p != '"') {
				ph_errf(err, errlen, "unterminated \" in the "
				    "command");
				goto fail;
			}
			p++;
		} else if (*p == '\\') {
			if (p[1] == '\0') {
				ph_errf(err, errlen,
				    "the command ends with \\");
				goto fail;
			}
			if (p[1] == '\n') {
				p += 2;
				continue;
			}
			*w++ = p[1];
			p += 2;
		} else {
			*w++ = *p++;
		}
	}
	if (n == 0) {
		ph_errf(err, errlen, "the command is empty");
		goto fail;
	}
	a->argv = starts;
	starts = NULL; /* transferred */
	a->argv[n] = NULL;
	a->argc = (int)n;
	return 0;
fail:
	free(starts);
	free(a->store);
	a->store = NULL;
	return rc;
}

/* ---- the child -------------------------------------------------------- */

enum ni_step {
	NI_STEP_SETSID = 1,
	NI_STEP_DUP,
	NI_STEP_GROUPS,
	NI_STEP_SETGID,
	NI_STEP_SETUID,
	NI_STEP_EXEC,
};

struct ni_report {
	int step;
	int err;
};

static void
ni_child_fail(int report_fd, int step, int e)
{
	struct ni_report r;
	ssize_t w;

	r.step = step;
	r.err = e;
	do
		w = write(report_fd, &r, sizeof(r));
	while (w < 0 && errno == EINTR);
	_exit(AGENT_NI_EXIT_UNKNOWN);
}

/* A descriptor at 3 or above, so the dup2s onto 0-2 cannot clobber it. */
static int
ni_child_high(int fd, int report_fd)
{
	int n;

	if (fd >= 3)
		return fd;
	n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (n < 0)
		ni_child_fail(report_fd, NI_STEP_DUP, errno);
	return n;
}

/* execvp's search, done after the privileges were dropped so the user's
 * own permissions decide. Only async-signal-safe calls. */
static void
ni_child_exec(const struct agent_ni_spawn *sp, int report_fd)
{
	const char *name = sp->argv[0], *d, *e;
	char path[NI_PATH_MAX];
	size_t dl, nl = strlen(name);
	int seen_eacces = 0;

	if (strchr(name, '/') != NULL || sp->path == NULL) {
		execve(name, sp->argv, sp->envp);
		ni_child_fail(report_fd, NI_STEP_EXEC, errno);
	}
	if (nl == 0)
		ni_child_fail(report_fd, NI_STEP_EXEC, ENOENT);
	for (d = sp->path; ; d = e + 1) {
		e = strchr(d, ':');
		if (e == NULL)
			e = d + strlen(d);
		dl = (size_t)(e - d);
		/* An empty entry means the current directory, which is not
		 * searched here: it is the user's home, not a known place. */
		if (dl > 0 && dl + 1 + nl + 1 <= sizeof(path)) {
			memcpy(path, d, dl);
			path[dl] = '/';
			memcpy(path + dl + 1, name, nl + 1);
			execve(path, sp->argv, sp->envp);
			if (errno == EACCES)
				seen_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR &&
			    errno != ELOOP && errno != ENAMETOOLONG)
				ni_child_fail(report_fd, NI_STEP_EXEC, errno);
		}
		if (*e == '\0')
			break;
	}
	ni_child_fail(report_fd, NI_STEP_EXEC, seen_eacces ? EACCES : ENOENT);
}

static void
ni_child_run(const struct agent_ni_spawn *sp, int in, int out, int err,
    int report_fd)
{
	const struct agent_user *u = sp->user;
	struct sigaction sa;
	sigset_t none;
	int sig;

	if (report_fd < 3 &&
	    (report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, 3)) < 0)
		_exit(AGENT_NI_EXIT_UNKNOWN);
	in = ni_child_high(in, report_fd);
	out = ni_child_high(out, report_fd);
	err = ni_child_high(err, report_fd);
	/* Its own session and process group, so the whole command can be
	 * signalled, and no controlling terminal. */
	if (setsid() < 0)
		ni_child_fail(report_fd, NI_STEP_SETSID, errno);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		ni_child_fail(report_fd, NI_STEP_DUP, errno);
	/* Everything else of the agent stays out of the command. */
	if (close_range(3, (unsigned)report_fd - 1, 0) != 0 ||
	    close_range((unsigned)report_fd + 1, ~0u, 0) != 0)
		ni_child_fail(report_fd, NI_STEP_DUP, errno);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	if (u != NULL && u->switch_user) {
		if (setgroups((size_t)u->ngroups, u->groups) != 0)
			ni_child_fail(report_fd, NI_STEP_GROUPS, errno);
		if (setgid(u->gid) != 0)
			ni_child_fail(report_fd, NI_STEP_SETGID, errno);
		if (setuid(u->uid) != 0)
			ni_child_fail(report_fd, NI_STEP_SETUID, errno);
		if (u->uid != 0 && setuid(0) == 0)
			ni_child_fail(report_fd, NI_STEP_SETUID, EPERM);
	}
	if (sp->cwd == NULL || chdir(sp->cwd) != 0)
		(void)chdir("/");
	ni_child_exec(sp, report_fd);
}

static const char *
ni_step_name(int step)
{
	switch (step) {
	case NI_STEP_SETSID:
		return "setsid";
	case NI_STEP_DUP:
		return "dup2";
	case NI_STEP_GROUPS:
		return "setgroups";
	case NI_STEP_SETGID:
		return "setgid";
	case NI_STEP_SETUID:
		return "setuid";
	}
	return "start";
}

/* Fork and exec; on success *pid runs and *out_r / *err_r are the read
 * ends of its output pipes (close-on-exec). */
static int
ni_fork(const struct agent_ni_spawn *sp, pid_t *pid, int *out_r, int *err_r,
    int *code, char *err, size_t errlen)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, pr[2] = { -1, -1 };
	int devnull = -1, rc = PH_ERR_IO, status;
	struct ni_report rep;
	sigset_t all, old;
	ssize_t r;
	pid_t child;

	*code = AGENT_NI_EXIT_UNKNOWN;
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0 ||
	    pipe2(pr, O_CLOEXEC) != 0 ||
	    (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		ph_errf(err, errlen, "cannot set up the pipes: %s",
		    strerror(errno));
		goto fail;
	}
	/* No handler of the agent may run in the child before it resets
	 * them (libuv's would write into the agent's own pipe). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	child = fork();
	if (child == 0)
		ni_child_run(sp, devnull, po[1], pe[1], pr[1]);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (child < 0) {
		ph_errf(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	close(pr[1]);
	pr[1] = -1;
	/* EOF: exec succeeded (the report pipe was close-on-exec). */
	do
		r = read(pr[0], &rep, sizeof(rep));
	while (r < 0 && errno == EINTR);
	if (r == (ssize_t)sizeof(rep)) {
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
		if (rep.step == NI_STEP_EXEC && (rep.err == ENOENT ||
		    rep.err == ENOTDIR)) {
			*code = AGENT_NI_EXIT_NOT_FOUND;
			rc = PH_ERR_NOTFOUND;
			ph_errf(err, errlen, "%.256s: command not found",
			    sp->argv[0]);
		} else if (rep.step == NI_STEP_EXEC) {
			*code = AGENT_NI_EXIT_NOT_EXECUTABLE;
			rc = PH_ERR_DENIED;
			ph_errf(err, errlen, "%.256s: %s", sp->argv[0],
			    strerror(rep.err));
		} else {
			ph_errf(err, errlen, "%s failed: %s",
			    ni_step_name(rep.step), strerror(rep.err));
		}
		goto fail;
	}
	*pid = child;
	*out_r = po[0];
	*err_r = pe[0];
	po[0] = pe[0] = -1; /* transferred */
	rc = 0;
fail:
	if (po[0] >= 0)
		close(po[0]);
	if (po[1] >= 0)
		close(po[1]);
	if (pe[0] >= 0)
		close(pe[0]);
	if (pe[1] >= 0)
		close(pe[1]);
	if (pr[0] >= 0)
		close(pr[0]);
	if (pr[1] >= 0)
		close(pr[1]);
	if (devnull >= 0)
		close(devnull);
	return rc;
}

/* ---- the running command ---------------------------------------------- */

static uint64_t
ni_now(void)
{
	return uv_hrtime() / 1000000;
}

static void ni_check(struct agent_ni *ni, int reap);

static void
ni_maybe_free(struct agent_ni *ni)
{
	if (!ni->closing || ni->out.live || ni->err.live || ni->timer_live)
		return;
	buf_free(&ni->out.held);
	buf_free(&ni->err.held);
	free(ni);
}

/* The timer's data is the command, a pipe's its stream. */
static void
ni_handle_closed(uv_handle_t *h)
{
	struct ni_stream *st;
	struct agent_ni *ni;

	if (h->type == UV_TIMER) {
		ni = h->data;
		ni->timer_live = 0;
	} else {
		st = h->data;
		ni = st->ni;
		st->live = 0;
	}
	ni_maybe_free(ni);
}

static void
ni_stream_close(struct ni_stream *st)
{
	if (st->live && !uv_is_closing((uv_handle_t *)&st->pipe)) {
		if (st->reading)
			uv_read_stop((uv_stream_t *)&st->pipe);
		st->reading = 0;
		uv_close((uv_handle_t *)&st->pipe, ni_handle_closed);
	}
}

/* The stream will bring nothing more; what is held is still offered. */
static void
ni_stream_done(struct ni_stream *st)
{
	st->done = 1;
	ni_stream_close(st);
}

static void ni_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *b);

static void
ni_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct ni_stream *st = h->data;
	size_t room;

	(void)suggested;
	b->base = NULL;
	b->len = 0;
	if (st->held.len >= NI_READ_MAX ||
	    buf_reserve(&st->held, NI_READ_MAX - st->held.len) != 0)
		return; /* libuv reports UV_ENOBUFS */
	room = NI_READ_MAX - st->held.len;
	b->base = (char *)st->held.data + st->held.len;
	b->len = room;
}

/* Read while everything read so far was taken. */
static void
ni_stream_want(struct ni_stream *st)
{
	int want = !st->done && st->live && st->held.len == 0 &&
	    !st->ni->closing;

	if (want == st->reading)
		return;
	if (want) {
		if (uv_read_start((uv_stream_t *)&st->pipe, ni_alloc_cb,
		    ni_read_cb) != 0) {
			ni_stream_done(st);
			return;
		}
		/* The idle clock of NI_EXIT_GRACE_MS restarts here. */
		st->last_ms = ni_now();
	} else {
		uv_read_stop((uv_stream_t *)&st->pipe);
	}
	st->reading = want;
}

static void
ni_offer(struct ni_stream *st)
{
	struct agent_ni *ni = st->ni;
	size_t k;

	if (ni->closing || ni->in_offer)
		return;
	if (st->held.len > 0) {
		ni->in_offer = 1;
		k = ni->cbs->on_output(ni->ud, st->which, st->held.data,
		    st->held.len);
		ni->in_offer = 0;
		if (ni->closing)
			return;
		buf_consume(&st->held, k > st->held.len ? st->held.len : k);
	}
	ni_stream_want(st);
}

static void
ni_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *b)
{
	struct ni_stream *st = h->data;
	struct agent_ni *ni = st->ni;

	(void)b;
	if (ni->closing)
		return;
	if (nread > 0) {
		st->held.len += (size_t)nread;
		st->last_ms = ni_now();
		ni_offer(st);
	} else if (nread < 0) {
		/* UV_EOF: every writer is gone; an error ends it too. */
		if (nread != UV_EOF)
			log_debug("event=ni_pipe_error fd=%d err=\"%s\"",
			    (int)st->which, uv_strerror((int)nread));
		ni_stream_done(st);
	}
	ni_check(ni, 0);
}

static int
ni_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return AGENT_NI_EXIT_UNKNOWN;
}

static void
ni_reap(struct agent_ni *ni)
{
	int st;
	pid_t r;

	if (ni->exited)
		return;
	r = waitpid(ni->pid, &st, WNOHANG);
	if (r == ni->pid || (r < 0 && errno == ECHILD)) {
		ni->exited = 1;
		/* ECHILD: reaped elsewhere, the status is lost. */
		ni->status = r == ni->pid ? st : AGENT_NI_EXIT_UNKNOWN << 8;
		ni->exit_ms = ni_now();
	}
}

static void ni_tick(uv_timer_t *t);

static void
ni_set_tick(struct agent_ni *ni, int fast)
{
	if (!ni->timer_live || fast == ni->timer_fast)
		return;
	ni->timer_fast = fast;
	uv_timer_start(&ni->timer, ni_tick, fast ? NI_TICK_FAST_MS :
	    NI_TICK_MS, fast ? NI_TICK_FAST_MS : NI_TICK_MS);
}

/* reap: look for the child (the timer does; so does the end of both
 * pipes, when the exit is near), not on every resume. */
static void
ni_check(struct agent_ni *ni, int reap)
{
	uint64_t now;

	if (ni->closing || ni->reported)
		return;
	if (reap || (ni->out.done && ni->err.done))
		ni_reap(ni);
	if (ni->exited) {
		now = ni_now();
		if (now - ni->exit_ms >= NI_EXIT_GRACE_MS) {
			if (!ni->out.done && ni->out.reading &&
			    now - ni->out.last_ms >= NI_EXIT_GRACE_MS)
				ni_stream_done(&ni->out);
			if (!ni->err.done && ni->err.reading &&
			    now - ni->err.last_ms >= NI_EXIT_GRACE_MS)
				ni_stream_done(&ni->err);
		}
	}
	if (!ni->out.done || !ni->err.done || ni->out.held.len > 0 ||
	    ni->err.held.len > 0)
		return;
	if (!ni->exited) {
		/* The pipes ended; the exit follows at once, normally. */
		ni_set_tick(ni, 1);
		return;
	}
	ni->reported = 1;
	uv_timer_stop(&ni->timer); /* nothing left to watch */
	ni->cbs->on_exit(ni->ud, ni_code(ni->status));
}

static void
ni_tick(uv_timer_t *t)
{
	struct agent_ni *ni = t->data;
	uint64_t now = ni_now();

	if (!ni->closing) {
		ni_check(ni, 1);
		return;
	}
	/* Closed while the command ran: hang up, kill, reap. */
	ni_reap(ni);
	if (!ni->exited) {
		if (!ni->kill_sent && now >= ni->kill_at) {
			kill(-ni->pid, SIGKILL);
			kill(ni->pid, SIGKILL);
			ni->kill_sent = 1;
		}
		if (now < ni->giveup_at)
			return;
		log_warn("event=ni_not_reaped pid=%d", (int)ni->pid);
	}
	uv_timer_stop(&ni->timer);
	uv_close((uv_handle_t *)&ni->timer, ni_handle_closed);
}

static int
ni_stream_init(struct agent_ni *ni, struct ni_stream *st,
    enum agent_ni_stream which, int fd)
{
	st->ni = ni;
	st->which = which;
	buf_init(&st->held, NI_READ_MAX);
	if (uv_pipe_init(ni->loop, &st->pipe, 0) != 0) {
		close(fd);
		return PH_ERR_IO;
	}
	st->pipe.data = st;
	st->live = 1;
	/* libuv makes it non-blocking and owns it from here on. */
	if (uv_pipe_open(&st->pipe, fd) != 0) {
		close(fd);
		return PH_ERR_IO;
	}
	return 0;
}

int
agent_ni_start(struct agent_ni **out, uv_loop_t *loop,
    const struct agent_ni_spawn *sp, const struct agent_ni_cbs *cbs,
    void *ud, int *code, char *err, size_t errlen)
{
	struct agent_ni *ni;
	int out_r = -1, err_r = -1, rc;
	pid_t pid = -1;

	*out = NULL;
	*code = AGENT_NI_EXIT_UNKNOWN;
	if (sp->argv == NULL || sp->argv[0] == NULL) {
		ph_errf(err, errlen, "the command is empty");
		return PH_ERR_INVALID;
	}
	ni = calloc(1, sizeof(*ni));
	if (ni == NULL) {
		ph_errf(err, errlen, "out of memory");
		return PH_ERR_NOMEM;
	}
	rc = ni_fork(sp, &pid, &out_r, &err_r, code, err, errlen);
	if (rc != 0) {
		free(ni);
		return rc;
	}
	ni->loop = loop;
	ni->cbs = cbs;
	ni->ud = ud;
	ni->pid = pid;
	uv_timer_init(loop, &ni->timer);
	ni->timer.data = ni;
	ni->timer_live = 1;
	ni->timer_fast = -1;
	/* Each init takes its descriptor, even when it fails. */
	rc = ni_stream_init(ni, &ni->out, AGENT_NI_STDOUT, out_r);
	if (rc == 0)
		rc = ni_stream_init(ni, &ni->err, AGENT_NI_STDERR, err_r);
	else
		close(err_r);
	if (rc != 0) {
		/* Not reached with valid pipes; the command goes. */
		ph_errf(err, errlen, "cannot watch the command's output");
		agent_ni_close(ni);
		return PH_ERR_IO;
	}
	ni_set_tick(ni, 0);
	ni_stream_want(&ni->out);
	ni_stream_want(&ni->err);
	*out = ni;
	return 0;
}

pid_t
agent_ni_pid(const struct agent_ni *ni)
{
	return ni->pid;
}

void
agent_ni_resume(struct agent_ni *ni)
{
	if (ni == NULL || ni->closing)
		return;
	ni_offer(&ni->out);
	if (!ni->closing)
		ni_offer(&ni->err);
	ni_check(ni, 0);
}

int
agent_ni_signal(struct agent_ni *ni, int sig)
{
	if (ni == NULL || ni->exited || ni->pid <= 1)
		return PH_ERR_STATE;
	ni_reap(ni);
	if (ni->exited)
		return PH_ERR_STATE;
	if (kill(-ni->pid, sig) != 0 && kill(ni->pid, sig) != 0)
		return PH_ERR_IO;
	return 0;
}

void
agent_ni_close(struct agent_ni *ni)
{
	uint64_t now = ni_now();

	if (ni == NULL || ni->closing)
		return;
	ni->closing = 1;
	ni_stream_close(&ni->out);
	ni_stream_close(&ni->err);
	ni_reap(ni);
	if (!ni->exited) {
		kill(-ni->pid, SIGHUP);
		kill(ni->pid, SIGHUP);
		ni->hup_sent = 1;
		ni->kill_at = now + NI_KILL_MS;
		ni->giveup_at = now + NI_GIVEUP_MS;
		uv_timer_start(&ni->timer, ni_tick, NI_TICK_FAST_MS * 5,
		    NI_TICK_FAST_MS * 5);
		return;
	}
	uv_timer_stop(&ni->timer);
	uv_close((uv_handle_t *)&ni->timer, ni_handle_closed);
}
