#include "agent/cmdexec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"

#define CMDEXEC_NOTE "\n--- output truncated on the instance: over %llu " \
    "bytes ---\n"

struct cmdexec_stream {
	uv_pipe_t pipe;
	int fd;
	uint64_t written;    /* bytes the step produced */
	int open;            /* pipe still reading */
	int noted;
	struct cmdexec *x;
};

struct cmdexec {
	uv_loop_t *loop;
	uv_process_t proc;
	struct cmdexec_stream s[2];
	uv_timer_t timer;        /* timeout, then the kill grace period */
	uv_timer_t drain;
	uint64_t file_max;
	unsigned grace_ms;
	int pid;
	int exited;
	int exit_code;
	int term_signal;
	int stopping;            /* TERM sent */
	enum cmdexec_end end;
	int finished;            /* done called or aborted */
	int handles;
	cmdexec_done_fn done;
	void *ud;
	void (*closed)(void *);
	void *closed_ud;
};

static void
x_handle_closed(uv_handle_t *h)
{
	struct cmdexec *x = h->data;
	int i;

	if (--x->handles > 0)
		return;
	for (i = 0; i < 2; i++)
		if (x->s[i].fd >= 0)
			close(x->s[i].fd);
	if (x->closed != NULL)
		x->closed(x->closed_ud);
	free(x);
}

static void
x_close_all(struct cmdexec *x)
{
	int i;

	for (i = 0; i < 2; i++) {
		x->s[i].open = 0;
		if (!uv_is_closing((uv_handle_t *)&x->s[i].pipe))
			uv_close((uv_handle_t *)&x->s[i].pipe, x_handle_closed);
	}
	if (!uv_is_closing((uv_handle_t *)&x->timer))
		uv_close((uv_handle_t *)&x->timer, x_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&x->drain))
		uv_close((uv_handle_t *)&x->drain, x_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&x->proc))
		uv_close((uv_handle_t *)&x->proc, x_handle_closed);
}

static void
x_signal(struct cmdexec *x, int sig)
{
	/* The step leads its own group (setsid): signal every process in
	 * it, the children it left behind included. */
	if (x->pid > 0 && kill(-x->pid, sig) != 0 && errno == ESRCH &&
	    !x->exited)
		kill(x->pid, sig);
}

static void
x_maybe_done(struct cmdexec *x)
{
	struct cmdexec_result r;

	if (x->finished || !x->exited || x->s[0].open || x->s[1].open)
		return;
	x->finished = 1;
	memset(&r, 0, sizeof(r));
	r.end = x->end;
	if (x->end != CMDEXEC_EXITED)
		r.exit_code = CMDEXEC_STOPPED_CODE;
	else if (x->term_signal != 0)
		r.exit_code = 128 + x->term_signal;
	else
		r.exit_code = x->exit_code;
	r.out_bytes = x->s[0].written;
	r.err_bytes = x->s[1].written;
	for (int i = 0; i < 2; i++) {
		if (x->s[i].fd >= 0) {
			close(x->s[i].fd);
			x->s[i].fd = -1;
		}
	}
	x->done(x->ud, &r);
	x_close_all(x);
}

static void
x_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char buf[65536];

	(void)h;
	(void)hint;
	/* One read at a time on the loop's thread: a static buffer is
	 * enough, the bytes go to the file before the next read. */
	b->base = buf;
	b->len = sizeof(buf);
}

static void
x_write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		/* Disk full: the step goes on, this output is lost. */
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void
x_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct cmdexec *x = st->data;
	struct cmdexec_stream *s = (uv_pipe_t *)st == &x->s[0].pipe ?
	    &x->s[0] : &x->s[1];
	uint64_t room;
	char note[128];
	int n;

	if (nread < 0) {
		if (s->open) {
			s->open = 0;
			uv_read_stop(st);
		}
		x_maybe_done(x);
		return;
	}
	if (nread == 0 || s->fd < 0)
		return;
	room = s->written < x->file_max ? x->file_max - s->written : 0;
	if (room > 0)
		x_write_all(s->fd, b->base, (size_t)nread < room ?
		    (size_t)nread : (size_t)room);
	if ((uint64_t)nread > room && !s->noted) {
		s->noted = 1;
		n = snprintf(note, sizeof(note), CMDEXEC_NOTE,
		    (unsigned long long)x->file_max);
		if (n > 0)
			x_write_all(s->fd, note, (size_t)n);
	}
	s->written += (uint64_t)nread;
}

static void
x_drain_cb(uv_timer_t *t)
{
	struct cmdexec *x = t->data;
	int i;

	/* The step exited but something it started still holds the pipes:
	 * stop reading, the step is over. */
	for (i = 0; i < 2; i++) {
		if (x->s[i].open) {
			x->s[i].open = 0;
			uv_read_stop((uv_stream_t *)&x->s[i].pipe);
		}
	}
	x_maybe_done(x);
}

static void
x_exit(uv_process_t *p, int64_t status, int sig)
{
	struct cmdexec *x = p->data;

	x->exited = 1;
	x->exit_code = (int)status;
	x->term_signal = sig;
	if (x->stopping) {
		/* Whatever else is left in the group goes too. */
		x_signal(x, SIGKILL);
	}
	uv_timer_stop(&x->timer);
	uv_timer_start(&x->drain, x_drain_cb, x->stopping ? 200 :
	    CMDEXEC_DRAIN_MS, 0);
	x_maybe_done(x);
}

static void
x_kill_cb(uv_timer_t *t)
{
	struct cmdexec *x = t->data;

	log_warn("event=step_kill pid=%d signal=KILL", x->pid);
	x_signal(x, SIGKILL);
}

static void
x_term(struct cmdexec *x, enum cmdexec_end why)
{
	if (x->stopping || x->exited)
		return;
	x->stopping = 1;
	x->end = why;
	log_info("event=step_stop pid=%d reason=%s", x->pid,
	    why == CMDEXEC_TIMEDOUT ? "timeout" : "stopped");
	x_signal(x, SIGTERM);
	uv_timer_stop(&x->timer);
	uv_timer_start(&x->timer, x_kill_cb, x->grace_ms, 0);
}

static void
x_timeout_cb(uv_timer_t *t)
{
	x_term(t->data, CMDEXEC_TIMEDOUT);
}

int
cmdexec_start(struct cmdexec **out, uv_loop_t *loop,
    const struct cmdexec_opts *o, cmdexec_done_fn done, void *ud,
    char *err, size_t errlen)
{
	struct cmdexec *x;
	uv_process_options_t po;
	uv_stdio_container_t stdio[3];
	const char *paths[2] = { o->out_path, o->err_path };
	int i, rc;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		snprintf(err, errlen, "out of memory");
		return PH_ERR_NOMEM;
	}
	x->loop = loop;
	x->done = done;
	x->ud = ud;
	x->file_max = o->file_max ? o->file_max : CMDEXEC_FILE_MAX_DEFAULT;
	x->grace_ms = o->kill_grace_ms ? o->kill_grace_ms :
	    CMDEXEC_KILL_GRACE_MS;
	x->end = CMDEXEC_EXITED;
	for (i = 0; i < 2; i++) {
		x->s[i].x = x;
		x->s[i].fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC |
		    O_CLOEXEC | O_NOFOLLOW, 0600);
		if (x->s[i].fd < 0) {
			snprintf(err, errlen, "cannot create %s: %s",
			    paths[i], strerror(errno));
			if (i == 1)
				close(x->s[0].fd);
			free(x);
			return PH_ERR_IO;
		}
	}
	for (i = 0; i < 2; i++) {
		uv_pipe_init(loop, &x->s[i].pipe, 0);
		x->s[i].pipe.data = x;
	}
	uv_timer_init(loop, &x->timer);
	uv_timer_init(loop, &x->drain);
	x->timer.data = x;
	x->drain.data = x;
	x->proc.data = x;
	memset(&po, 0, sizeof(po));
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&x->s[0].pipe;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&x->s[1].pipe;
	po.file = o->file;
	po.args = o->args;
	po.env = o->env;
	po.cwd = o->cwd;
	po.flags = UV_PROCESS_DETACHED;
	po.stdio_count = 3;
	po.stdio = stdio;
	po.exit_cb = x_exit;
	rc = uv_spawn(loop, &x->proc, &po);
	if (rc != 0) {
		snprintf(err, errlen, "cannot run %s: %s", o->file,
		    uv_strerror(rc));
		/* uv_spawn failed: the process handle still needs closing. */
		x->handles = 5;
		x->finished = 1;
		x_close_all(x);
		return PH_ERR_IO;
	}
	x->handles = 5;
	x->pid = x->proc.pid;
	for (i = 0; i < 2; i++) {
		x->s[i].open = 1;
		uv_read_start((uv_stream_t *)&x->s[i].pipe, x_alloc, x_read);
	}
	if (o->timeout_s > 0)
		uv_timer_start(&x->timer, x_timeout_cb,
		    (uint64_t)o->timeout_s * 1000, 0);
	*out = x;
	return 0;
}

void
cmdexec_stop(struct cmdexec *x)
{
	x_term(x, CMDEXEC_STOPPED);
}

void
cmdexec_abort(struct cmdexec *x, void (*closed)(void *), void *ud)
{
	x->closed = closed;
	x->closed_ud = ud;
	x->finished = 1;
	x_signal(x, SIGKILL);
	x_close_all(x);
}

void
cmdexec_bytes(const struct cmdexec *x, uint64_t *out, uint64_t *err)
{
	*out = x->s[0].written;
	*err = x->s[1].written;
}

int
cmdexec_pid(const struct cmdexec *x)
{
	return x->pid;
}
