/* session: the client end of one data-channel session. One libuv loop
 * drives the WebSocket, the reliability layer (channel), stdin, stdout and
 * stderr, the window size and reconnects; the blocking API calls
 * (ResumeSession, GenerateDataKey, TerminateSession) run on libuv's
 * worker threads. */
#include "client/session.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "client/escape.h"
#include "client/portfwd.h"
#include "client/portprops.h"
#include "client/proto.h"
#include "client/tty.h"
#include "common/buf.h"
#include "common/channel.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proxy.h"
#include "common/sessioncrypt.h"
#include "common/tls.h"
#include "common/uuid.h"
#include "common/ws.h"

#define SESS_HEAP_KEEP ((size_t)4 << 20) /* see client_session_run */
#define SESS_TICK_MS 50            /* channel_tick period */
#define SESS_WINCH_POLL_MS 500     /* spec 7.1: size poll */
#define SESS_INPUT_PAYLOAD 1024    /* spec 10.4: at most 1024 bytes each */
#define SESS_STDIN_READ ((size_t)64 << 10) /* one read(2) of the keyboard */
#define SESS_INQ_MAX ((size_t)256 << 10)   /* input waiting to be sent */
#define SESS_INQ_LOW ((size_t)64 << 10)    /* read stdin below this */
#define SESS_STDIN_TICK_READS 4    /* reads per tick for non-pollable stdin */
#define SESS_OUT_SOFT ((size_t)256 << 10) /* stop reading the socket */
#define SESS_OUT_MAX ((size_t)4 << 20)
#define SESS_OUT_WRITE ((size_t)64 << 10)
#define SESS_OUT_SEGS 256          /* alternations of stdout and stderr */
#define SESS_OUT_FLUSH_MS 5000     /* final flush of stdout, at most */
#define SESS_WS_PENDING_MAX ((size_t)1 << 20)
#define SESS_WS_MAX_MESSAGE (((size_t)64 << 10) + 1024) /* spec 10.4 [R] */
#define SESS_MAX_RETRIES 5         /* spec 4.7: first try + 5 retries */
#define SESS_STABLE_MS 5000        /* a connection this old resets retries */
#define SESS_CLOSE_GRACE_MS 300    /* wait for our close frame, then stop */
/* channel_closed waits while acknowledged output still sits in the
 * channel (our stdout was slower than the stream), as long as it moves. */
#define SESS_CLOSE_DRAIN_MS 3000
/* After a failed handshake the agent cancels the session and the gateway
 * says channel_closed; past this we end on our own. */
#define SESS_HS_FAIL_WAIT_MS 5000
/* spec 4.4: the official plugin terminates the session after 3000 resends
 * of one message (about 5 minutes at its 100 ms cadence). Our channel
 * resends once per RTO (at most 1 s), so 300 is the same 5 minutes. */
#define SESS_GIVEUP_RESENDS 300
#define SESS_GIVEUP_TERMINATE_S 10

/* AWS-StartSSHSession: after stdin ends, what we sent may take this long
 * to be acknowledged before we leave anyway. */
#define SESS_PORT_EOF_DRAIN_MS 5000

/* spec 6.5: what a legacy AWS CLI (plugin argc 4) gets for KMSEncryption. */
#define SESS_LEGACY_KMS_ERROR "KMS encryption needs a newer AWS CLI: " \
	"upgrade your AWS CLI to open encrypted sessions"

enum sess_in_mode {
	IN_NONE,  /* stdin closed or unusable */
	IN_POLL,  /* terminal, pipe, socket: uv_poll */
	IN_TICK,  /* regular file, /dev/null: read from the tick timer */
};

/* A run of queued output bytes bound for one descriptor. */
struct sess_seg {
	int fd;
	size_t len;
};

struct sess {
	uv_loop_t loop;
	const struct client_session_params *p;
	char client_id[UUID_STR_LEN];
	char *token;
	int token_used;          /* sent in an OpenDataChannel already */
	struct tls_ctx *tls;
	struct ws *ws;
	int ws_open;
	int out_paused;          /* socket reads stopped: stdout is slow */
	int read_paused;         /* what ws_pause_read was last told */
	int connected_once;
	struct channel *ch;
	unsigned keepalive_ms;   /* 0: no pings */

	uv_timer_t tick, winch_poll, retry, stable, grace, hs_fail;
	uv_signal_t sig_winch, sig_int, sig_quit, sig_tstp, sig_cont;

	/* Keyboard: read ahead into inq (through the escape filter), sent
	 * in 1024-byte messages once the session takes input. */
	enum sess_in_mode in_mode;
	uv_poll_t in_poll;
	int in_polling;
	int in_eof;
	int in_is_tty;
	struct buf inq;
	struct client_escape esc;
	char esc_name[4];        /* "~", or "^]" for a control character */

	/* Output for fds 1 and 2, in arrival order: bytes in outq, runs in
	 * segs (a ring). */
	int out_pollable[2];
	uv_poll_t out_poll[2];
	int out_polling[2];
	struct buf outq;
	struct sess_seg segs[SESS_OUT_SEGS];
	unsigned seg_head, seg_count;

	int ready;               /* the session takes input */
	struct client_handshake hs;
	int hs_seen;
	int hs_complete;
	int hs_failed;           /* exit non-zero however it ends */
	int remote_exit;         /* PayloadType 12, -1 if none */
	/* channel_closed came with output still to write (sess_on_control) */
	int closed_wait;
	struct buf closed_msg;
	size_t closed_ooo;
	uint64_t closed_moved_ms;

	/* KMSEncryption (spec 6): the request being answered, the
	 * GenerateDataKey call on a worker, and the session cipher. */
	struct buf hs_req;
	int hs_pending;          /* response waits for GenerateDataKey */
	uv_work_t kms_req;
	int kms_busy;
	int kms_rc;
	uint8_t kms_key[CLIENT_KMS_DATA_KEY_LEN];
	char *kms_blob;
	char kms_err[640];
	struct sessioncrypt *sc;
	int challenge_done;

	unsigned cols, rows;
	int size_sent;

	uv_work_t resume_req;    /* ResumeSession on a worker thread */
	int resume_busy;
	int resume_rc;
	char *resume_tok;
	char resume_err[512];

	uv_work_t term_req;      /* TerminateSession on a worker thread */
	int term_busy;
	int term_started;
	long term_timeout;
	int term_rc;
	int term_report;         /* tell the user if it failed */
	char term_err[512];

	/* Port sessions (spec 7.4): 0 until the handshake says Port. The
	 * stdin/stdout mode uses the keyboard and output paths above; basic
	 * and mux use pf. */
	enum client_port_mode port_mode;
	struct client_portfwd *pf;
	int pf_paused;           /* pf asked us to stop reading the socket */
	uint64_t port_eof_ms;    /* stdio mode: when stdin ended */
	int eof_deferred;        /* stdin ended before the type was known */
	uv_signal_t sig_term, sig_hup;

	unsigned retries;
	int finished;
	int closed_down;         /* the WebSocket is gone or given up on */
	int exit_code;
};

/* Static: a session is one per process, and a finished session's objects
 * stay reachable until exit. */
static struct sess sess_state;

static void sess_lost(struct sess *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sess_fatal(struct sess *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void stdin_update(struct sess *s);
static void input_flush(struct sess *s);
static void sess_port_interrupt(struct sess *s);
static void sess_update_pause(struct sess *s);
static void sess_port_begin(struct sess *s);
static void sess_init_signal(struct sess *s, uv_signal_t *h, uv_signal_cb cb,
    int sig);

/* ---- stdout and stderr ------------------------------------------------- */

/* Write everything, waiting for the descriptor if it is non-blocking. For
 * our own messages and the final flush only. */
static int
out_write_all(int fd, const uint8_t *p, size_t n, int timeout_ms)
{
	struct pollfd pfd;
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, timeout_ms) <= 0)
				return PH_ERR_IO;
			continue;
		}
		return PH_ERR_IO;
	}
	return 0;
}

static int
out_idx(int fd)
{
	return fd == STDERR_FILENO ? 1 : 0;
}

static void
out_stop_polls(struct sess *s)
{
	int k;

	for (k = 0; k < 2; k++) {
		if (s->out_polling[k]) {
			uv_poll_stop(&s->out_poll[k]);
			s->out_polling[k] = 0;
		}
	}
}

static void
out_pop(struct sess *s)
{
	s->seg_head = (s->seg_head + 1) % SESS_OUT_SEGS;
	s->seg_count--;
}

static void out_cb(uv_poll_t *h, int status, int events);

/* Read the socket again once the terminal has caught up. */
static void
out_maybe_resume(struct sess *s)
{
	if (s->out_paused && s->outq.len < SESS_OUT_SOFT / 2) {
		s->out_paused = 0;
		sess_update_pause(s);
	}
}

/* Stop reading the data channel while a local reader (stdout, a
 * forwarded connection) is behind, except when our own window is full:
 * then the agent's acknowledgements must come in, or a program that
 * writes before it reads would wait on us for ever. Frames we cannot take
 * meanwhile are refused (the agent resends them). */
static void
sess_update_pause(struct sess *s)
{
	int want = (s->out_paused || s->pf_paused) &&
	    channel_can_send(s->ch);

	if (s->ws == NULL || want == s->read_paused)
		return;
	s->read_paused = want;
	ws_pause_read(s->ws, want);
}

/* Write queued output in order until a descriptor would block; then
 * wait for that one. Descriptors that cannot be polled (regular files)
 * are written to directly. */
static void
out_pump(struct sess *s)
{
	struct sess_seg *g;
	size_t n;
	ssize_t w;
	int k;

	while (s->seg_count > 0) {
		g = &s->segs[s->seg_head];
		k = out_idx(g->fd);
		if (!s->out_pollable[k]) {
			if (out_write_all(g->fd, s->outq.data, g->len,
			    SESS_OUT_FLUSH_MS) != 0 && errno == EPIPE &&
			    g->fd == STDOUT_FILENO) {
				buf_reset(&s->outq);
				s->seg_count = 0;
				sess_fatal(s, "cannot write to standard "
				    "output: %s", strerror(errno));
				return;
			}
			buf_consume(&s->outq, g->len);
			out_pop(s);
			continue;
		}
		n = g->len < SESS_OUT_WRITE ? g->len : SESS_OUT_WRITE;
		w = write(g->fd, s->outq.data, n);
		if (w > 0) {
			buf_consume(&s->outq, (size_t)w);
			g->len -= (size_t)w;
			if (g->len == 0)
				out_pop(s);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (s->out_polling[1 - k]) {
				uv_poll_stop(&s->out_poll[1 - k]);
				s->out_polling[1 - k] = 0;
			}
			if (!s->out_polling[k] && uv_poll_start(
			    &s->out_poll[k], UV_WRITABLE, out_cb) == 0)
				s->out_polling[k] = 1;
			out_maybe_resume(s);
			return;
		}
		if (g->fd == STDOUT_FILENO) {
			/* Nobody reads our output any more: nothing to show
			 * an error on either. */
			buf_reset(&s->outq);
			s->seg_count = 0;
			out_stop_polls(s);
			sess_fatal(s, "cannot write to standard output: %s",
			    strerror(errno));
			return;
		}
		/* A closed stderr loses the remote stderr, not the session. */
		log_warn("event=stderr_write_failed err=\"%s\"",
		    strerror(errno));
		buf_consume(&s->outq, g->len);
		out_pop(s);
	}
	out_stop_polls(s);
	out_maybe_resume(s);
}

static void
out_cb(uv_poll_t *h, int status, int events)
{
	struct sess *s = h->data;
	int k = h == &s->out_poll[1] ? 1 : 0;

	if (status < 0) {
		log_warn("event=output_poll_failed fd=%d err=\"%s\"", k + 1,
		    uv_strerror(status));
		uv_poll_stop(h);
		s->out_polling[k] = 0;
		/* From now on this descriptor is written to directly. */
		s->out_pollable[k] = 0;
	}
	out_pump(s);
}

/* Queue bytes for fd 1 or 2. Returns PH_ERR_AGAIN when the queue is over
 * its soft limit (unless force): the message is then not acknowledged and
 * the agent resends it later, which is the backpressure towards the
 * remote program. */
static int
out_enqueue(struct sess *s, int fd, const uint8_t *p, size_t n, int force)
{
	struct sess_seg *tail = NULL;
	int rc;

	if (n == 0)
		return 0;
	/* A slow terminal stops the socket's reads, so TCP, portholed and
	 * the agent's PTY reads carry the backpressure as in ssh; refusing
	 * frames instead stalls the stream on the agent's resend timers.
	 * Frames already read still fit up to the hard limit. */
	if (!force && s->outq.len >= SESS_OUT_MAX)
		return PH_ERR_AGAIN;
	if (!force && s->outq.len + n >= SESS_OUT_SOFT && s->ws != NULL &&
	    !s->out_paused) {
		s->out_paused = 1;
		sess_update_pause(s);
	}
	if (s->seg_count > 0)
		tail = &s->segs[(s->seg_head + s->seg_count - 1) %
		    SESS_OUT_SEGS];
	if ((tail == NULL || tail->fd != fd) && s->seg_count == SESS_OUT_SEGS)
		return PH_ERR_AGAIN;
	rc = buf_append(&s->outq, p, n);
	if (rc != 0)
		return rc == PH_ERR_TOOBIG ? PH_ERR_AGAIN : rc;
	if (tail != NULL && tail->fd == fd)
		tail->len += n;
	else {
		tail = &s->segs[(s->seg_head + s->seg_count) % SESS_OUT_SEGS];
		tail->fd = fd;
		tail->len = n;
		s->seg_count++;
	}
	/* Written at once unless a descriptor is already waited for (then
	 * the queue grows and leaves in large writes). */
	if (!s->out_polling[0] && !s->out_polling[1])
		out_pump(s);
	return 0;
}

/* Everything queued, now, waiting for slow descriptors (the end). */
static void
out_flush(struct sess *s)
{
	struct sess_seg *g;

	out_stop_polls(s);
	while (s->seg_count > 0) {
		g = &s->segs[s->seg_head];
		(void)out_write_all(g->fd, s->outq.data, g->len,
		    SESS_OUT_FLUSH_MS);
		buf_consume(&s->outq, g->len);
		out_pop(s);
	}
	buf_reset(&s->outq);
}

/* A line of our own on the terminal, in order with session output. */
static void
sess_note(struct sess *s, int fd, const char *text)
{
	struct buf b;

	buf_init(&b, 8192);
	if (buf_appendf(&b, "%s%s", text, client_tty_eol()) == 0 &&
	    out_enqueue(s, fd, b.data, b.len, 1) != 0) {
		out_flush(s);
		(void)out_write_all(fd, b.data, b.len, 1000);
	}
	buf_free(&b);
}

/* ---- the end ----------------------------------------------------------- */

/* uv_run returns once the WebSocket is gone and no worker is left: a
 * worker reads the caller's configuration, which is wiped after we
 * return. Every worker's call is bounded by its own timeout. */
static void
sess_maybe_stop(struct sess *s)
{
	if (s->finished && s->closed_down && !s->term_busy && !s->kms_busy &&
	    !s->resume_busy)
		uv_stop(&s->loop);
}

static void
sess_grace_cb(uv_timer_t *t)
{
	struct sess *s = t->data;

	s->closed_down = 1;
	sess_maybe_stop(s);
}

static void
term_work(uv_work_t *req)
{
	struct sess *s = req->data;

	s->term_err[0] = '\0';
	s->term_rc = s->p->terminate(s->p->resume_ud, s->p->session_id,
	    s->term_timeout, s->term_err, sizeof(s->term_err));
}

static void
term_done(uv_work_t *req, int status)
{
	struct sess *s = req->data;
	char line[700];

	s->term_busy = 0;
	if (status == 0 && s->term_rc != 0) {
		log_warn("event=terminate_failed session=%s err=\"%s\"",
		    s->p->session_id, s->term_err);
		if (s->term_report) {
			snprintf(line, sizeof(line), "porthole: could not "
			    "terminate session %s: %s\n", s->p->session_id,
			    s->term_err[0] ? s->term_err :
			    ph_strerror(s->term_rc));
			(void)out_write_all(STDERR_FILENO,
			    (const uint8_t *)line, strlen(line), 1000);
		}
	}
	sess_maybe_stop(s);
}

/* ssm:TerminateSession off the loop, once, best effort. */
static void
sess_terminate(struct sess *s, long timeout_s, int report)
{
	if (s->p->terminate == NULL || s->term_started)
		return;
	s->term_started = 1;
	s->term_timeout = timeout_s;
	s->term_report = report;
	s->term_req.data = s;
	if (uv_queue_work(&s->loop, &s->term_req, term_work, term_done) == 0)
		s->term_busy = 1;
}

/* Stop everything, leave the terminal as we found it and let the loop end
 * shortly (after our close frame had a chance to leave). stdout_text is
 * printed after the restore. */
static void
sess_finish(struct sess *s, int code, const char *stdout_text,
    const char *stderr_text)
{
	if (s->finished)
		return;
	s->finished = 1;
	s->exit_code = code;
	if (s->in_polling) {
		uv_poll_stop(&s->in_poll);
		s->in_polling = 0;
	}
	uv_timer_stop(&s->tick);
	uv_timer_stop(&s->winch_poll);
	uv_timer_stop(&s->retry);
	uv_timer_stop(&s->stable);
	uv_timer_stop(&s->hs_fail);
	/* Listener, connections and the unix socket file go now. */
	client_portfwd_close(s->pf);
	s->pf = NULL;
	s->pf_paused = 0;
	out_flush(s);
	client_tty_restore();
	if (stdout_text != NULL && *stdout_text != '\0') {
		(void)out_write_all(STDOUT_FILENO,
		    (const uint8_t *)stdout_text, strlen(stdout_text), 1000);
	}
	if (stderr_text != NULL && *stderr_text != '\0') {
		(void)out_write_all(STDERR_FILENO,
		    (const uint8_t *)stderr_text, strlen(stderr_text), 1000);
	}
	if (s->ws != NULL) {
		ws_close(s->ws, 1000, "client exiting");
		uv_timer_start(&s->grace, sess_grace_cb, SESS_CLOSE_GRACE_MS,
		    0);
	} else {
		s->closed_down = 1;
		sess_maybe_stop(s);
	}
}

static void
sess_fatal(struct sess *s, const char *fmt, ...)
{
	char msg[700], line[720];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_debug("event=session_fatal session=%s reason=\"%s\"",
	    s->p->session_id, msg);
	snprintf(line, sizeof(line), "\n%s\n", msg);
	sess_finish(s, CLIENT_EXIT_FAIL, NULL, line);
}

/* channel_closed (spec 3.5): the session is over. */
static void
sess_closed(struct sess *s, const uint8_t *p, size_t n)
{
	struct client_closed cc;
	const char *sid;
	char *text;
	size_t len;
	int code = CLIENT_EXIT_OK;

	if (client_proto_parse_closed(&cc, p, n) != 0) {
		log_warn("event=bad_channel_closed session=%s",
		    s->p->session_id);
		memset(&cc, 0, sizeof(cc));
	}
	sid = cc.session_id != NULL ? cc.session_id : s->p->session_id;
	/* porthole extension: SessionStatus "Failed" (e.g. the agent died)
	 * exits 1 so scripts notice; the official plugin exits 0. A session
	 * whose handshake failed on our side failed too. */
	if (cc.failed || s->hs_failed)
		code = CLIENT_EXIT_FAIL;
	else if (!s->p->plugin_mode && s->remote_exit >= 0 &&
	    s->hs.type == CLIENT_SESSION_NONINTERACTIVE)
		code = s->remote_exit;
	len = strlen(sid) + (cc.output ? strlen(cc.output) : 0) + 64;
	text = malloc(len);
	if (text != NULL) {
		/* spec 7.5 */
		if (cc.output != NULL && *cc.output != '\0')
			snprintf(text, len, "\n\nSessionId: %s : %s\n\n", sid,
			    cc.output);
		else
			snprintf(text, len,
			    "\n\nExiting session with sessionId: %s.\n\n", sid);
	}
	sess_finish(s, code, text, NULL);
	free(text);
	client_closed_free(&cc);
}

/* "~.": leave now, whatever the connection is doing (ssh's escape). */
static void
sess_escape_disconnect(struct sess *s)
{
	char text[400];

	/* What was typed before the escape still goes, if it can. */
	input_flush(s);
	/* Echoed like ssh does, then said after the terminal is back. */
	snprintf(text, sizeof(text), "%s.\nporthole: disconnected from "
	    "session %s\n", s->esc_name, s->p->session_id);
	/* ssh's 255; as session-manager-plugin 0, since the AWS CLI reports
	 * any other status as a failed command. */
	sess_finish(s, s->p->plugin_mode ? CLIENT_EXIT_OK : CLIENT_EXIT_ESCAPE,
	    NULL, text);
	/* Nobody will resume it: end it on the service too. */
	sess_terminate(s, CLIENT_TERMINATE_TIMEOUT, 1);
}

/* ---- window size ------------------------------------------------------- */

static void
sess_send_size(struct sess *s, int force)
{
	unsigned cols, rows;
	struct buf b;

	if (s->finished || !s->ws_open || s->port_mode != 0)
		return;
	client_tty_winsize(&cols, &rows);
	if (!force && s->size_sent && cols == s->cols && rows == s->rows)
		return;
	buf_init(&b, 128);
	if (client_proto_size(&b, cols, rows) == 0 &&
	    channel_send(s->ch, PT_SIZE, b.data, b.len) == 0) {
		s->cols = cols;
		s->rows = rows;
		s->size_sent = 1;
	}
	buf_free(&b);
}

static void
winch_cb(uv_signal_t *h, int sig)
{
	sess_send_size(h->data, 0);
}

static void
winch_poll_cb(uv_timer_t *t)
{
	sess_send_size(t->data, 0);
}

/* ---- keyboard input ---------------------------------------------------- */

/* The session takes input: first output seen (no handshake) or the
 * handshake complete, and, when the agent asked for KMS, the cipher in
 * place (spec 5.3 [R]: no PayloadType 1 before HandshakeComplete). */
static int
input_open(struct sess *s)
{
	return s->ready && !s->finished && !s->hs_pending && s->ws_open &&
	    s->ws != NULL && (!s->hs.kms_requested || s->sc != NULL);
}

/* Send queued input back to back, 1024 bytes a message, while the
 * channel's window and the socket allow. */
static void
input_flush(struct sess *s)
{
	size_t off = 0, k, max = s->port_mode != 0 ? CLIENT_PORT_PAYLOAD :
	    SESS_INPUT_PAYLOAD;
	int rc;

	if (input_open(s)) {
		while (off < s->inq.len && channel_can_send(s->ch) &&
		    ws_write_pending(s->ws) < SESS_WS_PENDING_MAX) {
			k = s->inq.len - off;
			if (k > max)
				k = max;
			rc = channel_send(s->ch, PT_OUTPUT, s->inq.data + off,
			    k);
			if (rc == PH_ERR_AGAIN)
				break;
			if (rc != 0) {
				/* Cannot be sent in any later try either. */
				log_warn("event=input_dropped bytes=%zu "
				    "err=\"%s\"", k, ph_strerror(rc));
			}
			off += k;
		}
		buf_consume(&s->inq, off);
	}
	stdin_update(s);
	if (s->pf != NULL && !s->finished)
		client_portfwd_writable(s->pf);
	sess_update_pause(s);
}

/* Bytes for the remote side (not through the escape filter). */
static void
input_add(struct sess *s, const uint8_t *p, size_t n)
{
	if (buf_append(&s->inq, p, n) != 0)
		log_warn("event=input_dropped bytes=%zu err=\"queue full\"", n);
	input_flush(s);
}

static int
stdin_wanted(struct sess *s)
{
	/* Read even before the session takes input, so "~." works on a
	 * session that never answers; the queue bounds the read-ahead. */
	return s->in_mode != IN_NONE && !s->in_eof && !s->finished &&
	    s->inq.len < SESS_INQ_LOW && s->port_mode != CLIENT_PORT_BASIC &&
	    s->port_mode != CLIENT_PORT_MUX;
}

static void
stdin_eof(struct sess *s)
{
	static const uint8_t eot = 0x04;

	s->in_eof = 1;
	if (s->in_polling) {
		uv_poll_stop(&s->in_poll);
		s->in_polling = 0;
	}
	/* Input from a pipe or file has ended: an end-of-file character lets
	 * the remote shell see the end of its input as `sh < file` would, so
	 * `printf 'cmd\n' | porthole start-session ...` terminates. A terminal
	 * never gets here in raw mode (Ctrl-D is just a byte). */
	if (s->port_mode == CLIENT_PORT_STDIO) {
		/* AWS-StartSSHSession (spec 7.4): the end of our input is
		 * the end of the client, once what was read is delivered. */
		s->port_eof_ms = channel_now_ms();
		return;
	}
	if (s->port_mode != 0)
		return;
	if (!s->hs_seen && !s->ready) {
		/* A Port session must not get the end-of-file character:
		 * decided when the session type is known. */
		s->eof_deferred = 1;
		return;
	}
	if (!s->in_is_tty)
		input_add(s, &eot, 1);
}

/* Keyboard bytes through the escape filter into the queue; 0 when "~."
 * ended the session. */
static int
input_keyboard(struct sess *s, const uint8_t *p, size_t n)
{
	enum client_escape_event ev;
	char help[512];
	size_t used;

	while (n > 0) {
		/* The filter may release a held escape character: n + 1. */
		if (buf_reserve(&s->inq, n + 1) != 0) {
			log_warn("event=input_dropped bytes=%zu "
			    "err=\"queue full\"", n);
			return 1;
		}
		used = client_escape_filter(&s->esc, p, n, s->inq.data,
		    &s->inq.len, &ev);
		p += used;
		n -= used;
		if (ev == CLIENT_ESCAPE_DISCONNECT) {
			sess_escape_disconnect(s);
			return 0;
		}
		if (ev == CLIENT_ESCAPE_HELP) {
			/* The "~?" echoed, as ssh does. */
			snprintf(help, sizeof(help), "%s?\r\n", s->esc_name);
			(void)out_enqueue(s, STDERR_FILENO,
			    (const uint8_t *)help, strlen(help), 1);
			client_escape_help(s->esc.ch, help, sizeof(help));
			(void)out_enqueue(s, STDERR_FILENO,
			    (const uint8_t *)help, strlen(help), 1);
		}
	}
	return 1;
}

/* One large read; 1 if more may follow, 0 otherwise. */
static int
stdin_read_one(struct sess *s)
{
	static uint8_t b[SESS_STDIN_READ];
	size_t want;
	ssize_t n;

	if (s->inq.len + 1 >= SESS_INQ_MAX)
		return 0;
	want = SESS_INQ_MAX - s->inq.len - 1;
	if (want > sizeof(b))
		want = sizeof(b);
	n = read(STDIN_FILENO, b, want);
	if (n > 0) {
		if (!input_keyboard(s, b, (size_t)n))
			return 0;
		input_flush(s);
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return 0;
	if (n < 0)
		log_warn("event=stdin_error err=\"%s\"", strerror(errno));
	stdin_eof(s);
	return 0;
}

static void
stdin_cb(uv_poll_t *h, int status, int events)
{
	struct sess *s = h->data;

	if (status < 0) {
		log_warn("event=stdin_poll_failed err=\"%s\"",
		    uv_strerror(status));
		stdin_eof(s);
		return;
	}
	if (stdin_wanted(s))
		(void)stdin_read_one(s);
	stdin_update(s);
}

static void
stdin_update(struct sess *s)
{
	int want = stdin_wanted(s);

	if (s->in_mode != IN_POLL)
		return;
	if (want && !s->in_polling) {
		if (uv_poll_start(&s->in_poll, UV_READABLE, stdin_cb) == 0)
			s->in_polling = 1;
	} else if (!want && s->in_polling) {
		uv_poll_stop(&s->in_poll);
		s->in_polling = 0;
	}
}

static void
sess_set_ready(struct sess *s)
{
	static const uint8_t eot = 0x04;

	if (s->ready)
		return;
	s->ready = 1;
	if (s->eof_deferred && s->port_mode == 0) {
		s->eof_deferred = 0;
		if (!s->in_is_tty)
			input_add(s, &eot, 1);
	}
	input_flush(s);
}

/* Keyboard signals when stdin is not a raw terminal (spec 7.1): they go
 * to the remote side as the bytes the terminal would have sent, in order
 * with the rest of the input. */
static void
sig_forward_cb(uv_signal_t *h, int sig)
{
	struct sess *s = h->data;
	uint8_t b;

	if (s->finished)
		return;
	if (s->port_mode != 0) {
		sess_port_interrupt(s);
		return;
	}
	b = sig == SIGINT ? 0x03 : sig == SIGQUIT ? 0x1c : 0x1a;
	input_add(s, &b, 1);
}

static void
sig_cont_cb(uv_signal_t *h, int sig)
{
	struct sess *s = h->data;

	/* A shell may have reset the terminal while we were stopped. */
	client_tty_reraw();
	sess_send_size(s, 0);
}

/* ---- handshake and KMS encryption (spec 5, 6) -------------------------- */

static void
hs_fail_cb(uv_timer_t *t)
{
	struct sess *s = t->data;

	/* The agent should have cancelled the session by now. */
	sess_finish(s, CLIENT_EXIT_FAIL, NULL, NULL);
	sess_terminate(s, CLIENT_TERMINATE_TIMEOUT, 0);
}

/* Send the HandshakeResponse for the request in s->hs_req. */
static int
sess_handshake_answer(struct sess *s, const struct client_kms_outcome *kms)
{
	struct client_handshake hs;
	struct buf b;
	char line[1400];
	int rc;

	buf_init(&b, (size_t)64 << 10);
	rc = client_proto_handshake_response(s->hs_req.data, s->hs_req.len,
	    PORTHOLE_CLIENT_VERSION, kms, &hs, &b);
	if (rc == 0)
		rc = channel_send(s->ch, PT_HANDSHAKE_RESPONSE, b.data, b.len);
	buf_free(&b);
	if (rc != 0) {
		sess_fatal(s, "Cannot answer the agent's handshake: %s",
		    ph_strerror(rc));
		return rc;
	}
	s->hs = hs;
	s->hs_seen = 1;
	log_debug("event=handshake session=%s agent_version=%s type=%d ok=%d "
	    "kms=%d", s->p->session_id, hs.agent_version, (int)hs.type, hs.ok,
	    hs.kms_requested);
	if (!hs.ok) {
		/* The agent cancels the session; say why on our side. */
		s->hs_failed = 1;
		if (hs.kms_requested && (kms == NULL || !kms->ok))
			snprintf(line, sizeof(line),
			    "porthole: KMS encryption failed: %s",
			    kms != NULL && kms->error != NULL ? kms->error :
			    hs.first_error);
		else
			snprintf(line, sizeof(line), "porthole: %s",
			    hs.first_error);
		sess_note(s, STDERR_FILENO, line);
		uv_timer_start(&s->hs_fail, hs_fail_cb, SESS_HS_FAIL_WAIT_MS,
		    0);
	} else if (hs.type == CLIENT_SESSION_PORT && s->port_mode == 0)
		sess_port_begin(s);
	return 0;
}

static void
kms_work(uv_work_t *req)
{
	struct sess *s = req->data;
	struct client_kms_request rq;

	rq.key_id = s->hs.kms_key_id;
	rq.session_id = s->p->session_id;
	rq.target = s->p->target != NULL ? s->p->target : "";
	rq.challenge = s->hs.kms_challenge;
	s->kms_err[0] = '\0';
	s->kms_blob = NULL;
	s->kms_rc = s->p->kms_data_key(s->p->resume_ud, &rq, s->kms_key,
	    &s->kms_blob, s->kms_err, sizeof(s->kms_err));
}

static void
kms_done(uv_work_t *req, int status)
{
	struct sess *s = req->data;
	struct client_kms_outcome o;
	int rc;

	s->kms_busy = 0;
	memset(&o, 0, sizeof(o));
	if (status != 0 || s->kms_rc != 0) {
		o.error = s->kms_err[0] != '\0' ? s->kms_err :
		    ph_strerror(status != 0 ? PH_ERR_STATE : s->kms_rc);
	} else if ((rc = sessioncrypt_new(&s->sc, SESSIONCRYPT_CLIENT,
	    s->kms_key)) != 0) {
		snprintf(s->kms_err, sizeof(s->kms_err), "cannot set up the "
		    "session cipher: %s", ph_strerror(rc));
		o.error = s->kms_err;
		s->sc = NULL;
	} else {
		/* Set before the response leaves: what the agent sends after
		 * it is sealed (spec 6.3). */
		channel_set_crypto(s->ch, s->sc);
		o.ok = 1;
		o.ciphertext_b64 = s->kms_blob;
		o.challenge_ack = s->hs.kms_challenge[0] != '\0';
	}
	/* The plaintext key lives on only inside the cipher. */
	OPENSSL_cleanse(s->kms_key, sizeof(s->kms_key));
	s->hs_pending = 0;
	if (!s->finished)
		(void)sess_handshake_answer(s, &o);
	free(s->kms_blob);
	s->kms_blob = NULL;
	buf_reset(&s->hs_req);
	if (s->finished)
		sess_maybe_stop(s);
	else
		input_flush(s);
}

static int
sess_handshake_request(struct sess *s, const uint8_t *p, size_t n)
{
	struct client_handshake hs;
	struct client_kms_outcome o;
	int rc;

	if (s->sc != NULL) {
		/* One key per session: a second key exchange is not
		 * something we follow. */
		sess_fatal(s, "The agent asked for a second encryption "
		    "handshake.");
		return 0;
	}
	if (client_proto_handshake_parse(p, n, &hs) != 0) {
		sess_fatal(s, "The agent sent an invalid handshake request.");
		return 0;
	}
	buf_reset(&s->hs_req);
	if ((rc = buf_append(&s->hs_req, p, n)) != 0) {
		sess_fatal(s, "Cannot keep the agent's handshake request: %s",
		    ph_strerror(rc));
		return 0;
	}
	s->hs = hs;
	s->hs_seen = 1;
	if (hs.kms_requested) {
		/* Nothing typed leaves until the cipher is in place. */
		s->ready = 0;
	}
	if (hs.kms_requested && hs.kms_params_ok && !s->p->legacy_cli &&
	    s->p->kms_data_key != NULL) {
		/* spec 6.1: the blocking call goes to a worker; in-order
		 * messages wait (unacknowledged) until it is answered. */
		s->kms_req.data = s;
		rc = uv_queue_work(&s->loop, &s->kms_req, kms_work, kms_done);
		if (rc == 0) {
			s->kms_busy = 1;
			s->hs_pending = 1;
			return 0;
		}
		snprintf(s->kms_err, sizeof(s->kms_err), "cannot call KMS: %s",
		    uv_strerror(rc));
	} else if (s->p->legacy_cli)
		snprintf(s->kms_err, sizeof(s->kms_err), "%s",
		    SESS_LEGACY_KMS_ERROR);
	else
		snprintf(s->kms_err, sizeof(s->kms_err), "KMS encryption is "
		    "not available in this client");
	memset(&o, 0, sizeof(o));
	o.error = hs.kms_params_ok ? s->kms_err : NULL;
	(void)sess_handshake_answer(s, hs.kms_requested ? &o : NULL);
	return 0;
}

/* EncChallengeRequest (spec 6.4): open with the agent's key, seal the
 * same bytes with ours, answer. */
static int
sess_challenge(struct sess *s, const uint8_t *p, size_t n)
{
	struct buf sealed, plain, resealed, out;
	const char *why = NULL;
	int rc;

	if (s->sc == NULL) {
		sess_fatal(s, "The agent sent an encryption challenge without "
		    "a session key.");
		return 0;
	}
	buf_init(&sealed, CLIENT_MAX_CHALLENGE_BYTES);
	buf_init(&plain, CLIENT_MAX_CHALLENGE_BYTES);
	buf_init(&resealed, CLIENT_MAX_CHALLENGE_BYTES +
	    SESSIONCRYPT_OVERHEAD);
	buf_init(&out, (size_t)8 << 10);
	/* Room first: no realloc leaves a copy of the plaintext behind. */
	(void)buf_reserve(&plain, CLIENT_MAX_CHALLENGE_BYTES);
	if (client_proto_parse_challenge(p, n, &sealed) != 0)
		why = "The agent sent an invalid encryption challenge.";
	else if (sessioncrypt_open(s->sc, sealed.data, sealed.len, &plain) !=
	    0)
		why = "The agent's encryption challenge does not decrypt with "
		    "the session key.";
	else if (sessioncrypt_seal(s->sc, plain.data, plain.len,
	    &resealed) != 0 || client_proto_challenge_response(&out,
	    resealed.data, resealed.len) != 0)
		why = "Cannot answer the agent's encryption challenge.";
	if (plain.data != NULL)
		OPENSSL_cleanse(plain.data, plain.cap);
	rc = why == NULL ? channel_send(s->ch, PT_ENC_CHALLENGE_RESPONSE,
	    out.data, out.len) : 0;
	buf_free(&sealed);
	buf_free(&plain);
	buf_free(&resealed);
	buf_free(&out);
	if (why != NULL) {
		sess_fatal(s, "%s", why);
		return 0;
	}
	if (rc == 0)
		s->challenge_done = 1;
	return rc;
}

static int
sess_handshake_complete(struct sess *s, const uint8_t *p, size_t n)
{
	char *msg = NULL;

	if (client_proto_parse_handshake_complete(p, n, &msg) != 0)
		log_warn("event=bad_handshake_complete session=%s",
		    s->p->session_id);
	if (s->hs_failed) {
		/* We refused an action; the agent should not go on. */
		free(msg);
		sess_fatal(s, "The agent completed a handshake that failed.");
		return 0;
	}
	if (s->hs_seen && s->hs.kms_requested && s->sc == NULL) {
		free(msg);
		sess_fatal(s, "The agent completed the handshake without the "
		    "encryption it asked for.");
		return 0;
	}
	if (!s->hs_seen || s->hs.type == CLIENT_SESSION_UNKNOWN)
		log_warn("event=handshake_complete_without_type session=%s",
		    s->p->session_id);
	/* spec 5.4: a non-empty CustomerMessage is shown ("This session is
	 * encrypted using AWS KMS."). */
	if (msg != NULL && *msg != '\0')
		sess_note(s, STDOUT_FILENO, msg);
	free(msg);
	s->hs_complete = 1;
	sess_set_ready(s);
	return 0;
}

/* ---- port sessions (spec 7.4) ------------------------------------------ */

/* Our text on stdout, as AWS's plugin prints it (no line ending added). */
static void
sess_print(struct sess *s, const char *text)
{
	size_t n = strlen(text);

	if (out_enqueue(s, STDOUT_FILENO, (const uint8_t *)text, n, 1) != 0) {
		out_flush(s);
		(void)out_write_all(STDOUT_FILENO, (const uint8_t *)text, n,
		    1000);
	}
}

static int
sess_pf_send(void *ud, const uint8_t *p, size_t n)
{
	struct sess *s = ud;

	int rc;

	if (!input_open(s))
		return PH_ERR_AGAIN;
	rc = channel_send(s->ch, PT_OUTPUT, p, n);
	if (!channel_can_send(s->ch))
		sess_update_pause(s);
	return rc;
}

static int
sess_send_flag(struct sess *s, uint32_t flag)
{
	uint8_t b[4];

	client_port_flag_encode(flag, b);
	return channel_send(s->ch, PT_FLAG, b, sizeof(b));
}

static int
sess_pf_send_flag(void *ud, uint32_t flag)
{
	return sess_send_flag(ud, flag);
}

static int
sess_pf_can_send(void *ud)
{
	struct sess *s = ud;

	return input_open(s) && channel_can_send(s->ch) &&
	    ws_write_pending(s->ws) < SESS_WS_PENDING_MAX;
}

static void
sess_pf_print(void *ud, const char *text)
{
	sess_print(ud, text);
}

static void
sess_pf_pause(void *ud, int pause)
{
	struct sess *s = ud;

	s->pf_paused = pause;
	sess_update_pause(s);
}

static void
sess_pf_fatal(void *ud, const char *msg)
{
	struct sess *s = ud;

	sess_fatal(s, "%s", msg);
	sess_terminate(s, CLIENT_TERMINATE_TIMEOUT, 0);
}

static const struct client_portfwd_cbs sess_pf_cbs = {
	.send = sess_pf_send,
	.send_flag = sess_pf_send_flag,
	.can_send = sess_pf_can_send,
	.print = sess_pf_print,
	.pause_input = sess_pf_pause,
	.fatal = sess_pf_fatal,
};

/* Ctrl-C (and Ctrl-\, Ctrl-Z, SIGTERM, SIGHUP) in a port session: end it
 * on the agent and exit 0, as AWS's plugin does. */
static void
sess_port_interrupt(struct sess *s)
{
	char text[400];
	int by_flag;

	if (s->finished)
		return;
	by_flag = client_port_terminate_by_flag(s->port_mode,
	    s->hs.agent_version);
	if (by_flag && sess_send_flag(s, CLIENT_FLAG_TERMINATE_SESSION) != 0)
		by_flag = 0;
	if (!by_flag)
		sess_terminate(s, CLIENT_TERMINATE_TIMEOUT, 1);
	if (s->port_mode == CLIENT_PORT_STDIO) {
		/* stdout is ssh's byte stream: nothing more goes there. */
		sess_finish(s, CLIENT_EXIT_OK, NULL, NULL);
		return;
	}
	sess_print(s, CLIENT_PORT_TERMINATE_LINE);
	snprintf(text, sizeof(text),
	    "\n\nExiting session with sessionId: %s.\n\n", s->p->session_id);
	sess_finish(s, CLIENT_EXIT_OK, text, NULL);
}

static void
sig_term_cb(uv_signal_t *h, int sig)
{
	(void)sig;
	sess_port_interrupt(h->data);
}

/* The handshake said Port: pick the mode and set up its local end. */
static void
sess_port_begin(struct sess *s)
{
	char err[600];
	int rc;

	s->port_mode = client_port_mode_select(&s->hs.port,
	    s->hs.agent_version);
	log_info("event=port_session session=%s mode=%s agent_version=%s",
	    s->p->session_id, s->port_mode == CLIENT_PORT_MUX ? "mux" :
	    s->port_mode == CLIENT_PORT_BASIC ? "basic" : "stdio",
	    s->hs.agent_version);
	/* No terminal modes and no escapes in port sessions: Ctrl-C is a
	 * signal again, and bytes pass untouched. */
	client_tty_restore();
	client_escape_init(&s->esc, -1);
	sess_init_signal(s, &s->sig_term, sig_term_cb, SIGTERM);
	sess_init_signal(s, &s->sig_hup, sig_term_cb, SIGHUP);
	if (s->port_mode == CLIENT_PORT_STDIO) {
		if (s->eof_deferred)
			s->port_eof_ms = channel_now_ms();
		s->eof_deferred = 0;
		return;
	}
	s->eof_deferred = 0;
	/* What was typed before goes nowhere. */
	buf_reset(&s->inq);
	stdin_update(s);
	rc = client_portfwd_new(&s->pf, &s->loop, s->port_mode, &s->hs.port,
	    s->p->session_id, client_port_smux_keepalive(s->hs.agent_version),
	    &sess_pf_cbs, s);
	if (rc == 0)
		rc = client_portfwd_start(s->pf, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "Cannot start port forwarding: %s",
		    ph_strerror(rc));
	if (rc != 0) {
		client_portfwd_close(s->pf);
		s->pf = NULL;
		sess_fatal(s, "%s", err);
		sess_terminate(s, CLIENT_TERMINATE_TIMEOUT, 0);
	}
}

/* ---- channel callbacks -------------------------------------------------- */

static int
sess_send_frame(void *ud, const uint8_t *frame, size_t n)
{
	struct sess *s = ud;

	if (s->ws == NULL || !s->ws_open || s->finished)
		return PH_ERR_IO;
	return ws_send(s->ws, WS_BINARY, frame, n) == 0 ? 0 : PH_ERR_IO;
}

/* The channel's pace: a resumed session resends its input as the
 * socket drains. A socket that is down takes the write (it fails, and
 * counts towards the give-up of SESS_GIVEUP_RESENDS). */
static int
sess_writable(void *ud)
{
	struct sess *s = ud;

	return ws_write_pending(s->ws) < SESS_WS_PENDING_MAX;
}

static int
sess_deliver(void *ud, uint32_t type, const uint8_t *p, size_t n)
{
	struct sess *s = ud;
	int rc, code, kms_wait;

	if (s->finished)
		return 0;
	/* While GenerateDataKey runs, later messages wait unacknowledged
	 * (the agent resends them); a correct agent sends none. */
	if (s->hs_pending)
		return PH_ERR_AGAIN;
	kms_wait = s->hs_seen && s->hs.kms_requested && !s->hs_complete;
	if (s->pf != NULL && (type == PT_OUTPUT || type == PT_FLAG))
		return client_portfwd_deliver(s->pf, type, p, n);
	if ((s->port_mode == CLIENT_PORT_BASIC ||
	    s->port_mode == CLIENT_PORT_MUX) && type == PT_OUTPUT)
		return 0;  /* the listener failed: nobody to give it to */
	switch (type) {
	case PT_OUTPUT:
	case PT_STDERR:
	case PT_EXIT_CODE:
		if (type == PT_EXIT_CODE) {
			if (client_proto_parse_exit_code(p, n, &code) == 0)
				s->remote_exit = code;
			/* In porthole mode the code is the exit status, not
			 * text on stdout; the plugin shows it as the official
			 * one does (spec 7.3). */
			rc = s->p->plugin_mode ? out_enqueue(s, STDOUT_FILENO,
			    p, n, 0) : 0;
		} else {
			/* spec 7.3: stderr to fd 2 (the official plugin
			 * writes it to stdout). */
			rc = out_enqueue(s, type == PT_STDERR ? STDERR_FILENO :
			    STDOUT_FILENO, p, n, 0);
		}
		if (rc != 0)
			return rc;
		/* Output before an encrypted handshake is complete does not
		 * open the input (spec 5.3 [R]). */
		if (!kms_wait)
			sess_set_ready(s);
		return 0;
	case PT_HANDSHAKE_REQUEST:
		return sess_handshake_request(s, p, n);
	case PT_HANDSHAKE_COMPLETE:
		return sess_handshake_complete(s, p, n);
	case PT_ENC_CHALLENGE_REQUEST:
		return sess_challenge(s, p, n);
	default:
		log_debug("event=ignored_payload type=%u bytes=%zu", type, n);
		return 0;
	}
}

/* The agent counts output as delivered once we acknowledged it, which we
 * do for messages held behind one our full stdout refused; channel_closed
 * may then overtake them. They are written first (the exit code of a
 * non-interactive command is among them), while they keep moving. */
static void
sess_closed_after_output(struct sess *s, const uint8_t *p, size_t n)
{
	if (s->closed_wait)
		return;
	if (channel_out_of_order(s->ch) == 0 ||
	    buf_append(&s->closed_msg, p, n) != 0) {
		sess_closed(s, p, n);
		return;
	}
	s->closed_wait = 1;
	s->closed_ooo = channel_out_of_order(s->ch);
	s->closed_moved_ms = channel_now_ms();
	log_debug("event=closed_waits_for_output session=%s held=%zu",
	    s->p->session_id, s->closed_ooo);
}

/* From the tick, after the channel delivered what it could. */
static void
sess_closed_check(struct sess *s)
{
	uint64_t now = channel_now_ms();
	size_t k;

	if (!s->closed_wait || s->finished)
		return;
	k = channel_out_of_order(s->ch);
	/* Output waiting for our stdout moves at its reader's pace (a
	 * pager may hold it for long); only a stream that cannot move (a
	 * message that never came) is given up. */
	if (k != s->closed_ooo || s->outq.len > 0) {
		s->closed_ooo = k;
		s->closed_moved_ms = now;
	}
	if (k > 0 && now - s->closed_moved_ms < SESS_CLOSE_DRAIN_MS)
		return;
	s->closed_wait = 0;
	sess_closed(s, s->closed_msg.data, s->closed_msg.len);
}

static void
sess_on_control(void *ud, const struct clientmsg *m)
{
	struct sess *s = ud;

	if (s->finished)
		return;
	if (strcmp(m->type, MT_CHANNEL_CLOSED) == 0)
		sess_closed_after_output(s, m->payload, m->payload_len);
	else
		log_debug("event=control_message type=%s", m->type);
}

static const struct channel_cbs sess_channel_cbs = {
	.send_frame = sess_send_frame,
	.deliver = sess_deliver,
	.on_control = sess_on_control,
	.writable = sess_writable,
};

/* ---- WebSocket and reconnects ------------------------------------------ */

static void
stable_cb(uv_timer_t *t)
{
	struct sess *s = t->data;

	s->retries = 0;
}

static void
ws_open_cb(struct ws *w)
{
	struct sess *s = ws_userdata(w);
	char rid[UUID_STR_LEN];
	struct buf b;
	int rc;

	if (s->finished || w != s->ws)
		return;
	buf_init(&b, (size_t)16 << 10);
	uuid_v4_str(rid);
	rc = client_proto_open_data_channel(&b, rid, s->token, s->client_id,
	    PORTHOLE_CLIENT_VERSION);
	if (rc == 0)
		rc = ws_send(w, WS_TEXT, b.data, b.len);
	buf_free(&b);
	/* The token is single-use from here on, whatever happens next. */
	s->token_used = 1;
	if (rc != 0) {
		ws_close(w, 1011, "cannot send OpenDataChannel");
		return;
	}
	s->ws_open = 1;
	/* Pings keep idle connections through proxies; a peer silent for
	 * three intervals is gone (closed with 1006: reconnect). */
	if (s->keepalive_ms > 0)
		ws_set_keepalive(w, s->keepalive_ms, 3 * s->keepalive_ms);
	log_debug("event=data_channel_open session=%s reconnect=%d",
	    s->p->session_id, s->connected_once);
	if (!s->connected_once) {
		s->connected_once = 1;
		/* porthole's agent sizes the PTY from the first message. */
		sess_send_size(s, 1);
	} else {
		channel_resend_all(s->ch);
		sess_send_size(s, 0);
	}
	uv_timer_start(&s->stable, stable_cb, SESS_STABLE_MS, 0);
	input_flush(s);
}

static void
ws_message_cb(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct sess *s = ws_userdata(w);
	int rc;

	if (s->finished || w != s->ws)
		return;
	/* spec 2.1: text and binary frames both carry ClientMessages. */
	rc = channel_receive(s->ch, p, n);
	if (rc != 0) {
		log_warn("event=bad_frame session=%s bytes=%zu err=\"%s\"",
		    s->p->session_id, n, ph_strerror(rc));
		ws_close(w, 1002, "invalid frame");
		return;
	}
	s->retries = 0;
	/* An acknowledgement may have opened the window. */
	if ((s->inq.len > 0 || s->pf != NULL) && !s->finished)
		input_flush(s);
	else
		sess_update_pause(s);
}

static void
ws_drain_cb(struct ws *w)
{
	struct sess *s = ws_userdata(w);

	if (w == s->ws && !s->finished) {
		channel_flush(s->ch);
		input_flush(s);
	}
}

static void
ws_close_cb(struct ws *w, int code)
{
	struct sess *s = ws_userdata(w);
	const struct proxy *px;
	int was_open;

	if (w != s->ws)
		return;
	was_open = s->ws_open;
	s->ws = NULL;
	s->ws_open = 0;
	s->out_paused = 0;  /* the next connection starts reading */
	s->read_paused = 0;
	uv_timer_stop(&s->stable);
	if (s->finished) {
		uv_timer_stop(&s->grace);
		s->closed_down = 1;
		sess_maybe_stop(s);
		return;
	}
	if (s->closed_wait) {
		/* channel_closed came: nothing to resume; the tick writes
		 * what the channel holds (sess_closed_check). */
		s->closed_down = 1;
		return;
	}
	stdin_update(s);
	/* Any close without channel_closed, including a normal one (1000,
	 * 1001: a draining server), is a lost connection to resume, not the
	 * end of the session (spec 4.7). */
	if (was_open) {
		sess_lost(s, "the data channel closed (code %d)", code);
		return;
	}
	/* Through a proxy, say which (PORTHOLE_LOG=warn tells why). */
	px = proxy_for_url(s->p->stream_url);
	sess_lost(s, "could not open the data channel%s%s (code %d)",
	    px != NULL ? " through the proxy " : "", px != NULL ? px->url : "",
	    code);
}

static const struct ws_cbs sess_ws_cbs = {
	.on_open = ws_open_cb,
	.on_message = ws_message_cb,
	.on_drain = ws_drain_cb,
	.on_close = ws_close_cb,
};

static int
sess_dial(struct sess *s, char *err, size_t errlen)
{
	struct ws *w = NULL;
	int rc;

	rc = ws_dial(&s->loop, s->tls, s->p->stream_url, NULL, &sess_ws_cbs,
	    s, &w);
	if (rc != 0) {
		snprintf(err, errlen, "cannot connect to %s: %s",
		    s->p->stream_url, ph_strerror(rc));
		return rc;
	}
	s->ws = w;
	ws_set_max_message(w, SESS_WS_MAX_MESSAGE);
	s->read_paused = 0;
	sess_update_pause(s);
	return 0;
}

static void
sess_redial(struct sess *s)
{
	char err[512];

	if (sess_dial(s, err, sizeof(err)) != 0)
		sess_lost(s, "%s", err);
}

/* Worker thread: the blocking API call, and nothing else. */
static void
resume_work(uv_work_t *req)
{
	struct sess *s = req->data;

	s->resume_err[0] = '\0';
	s->resume_tok = NULL;
	s->resume_rc = s->p->resume(s->p->resume_ud, s->p->session_id,
	    &s->resume_tok, s->resume_err, sizeof(s->resume_err));
}

static void
resume_done(uv_work_t *req, int status)
{
	struct sess *s = req->data;
	char text[400];

	s->resume_busy = 0;
	if (status != 0 || s->finished) {
		free(s->resume_tok);
		s->resume_tok = NULL;
		sess_maybe_stop(s);
		return;
	}
	if (s->resume_rc != 0) {
		free(s->resume_tok);
		s->resume_tok = NULL;
		sess_lost(s, "ResumeSession failed: %s", s->resume_err[0] ?
		    s->resume_err : ph_strerror(s->resume_rc));
		return;
	}
	if (s->resume_tok == NULL) {
		/* spec 1.3 / 7.5; exit 1 (the official plugin says 0)
		 * because the session is gone. */
		snprintf(text, sizeof(text), "Session: %s timed out.\n",
		    s->p->session_id);
		sess_finish(s, CLIENT_EXIT_FAIL, text, NULL);
		return;
	}
	free(s->token);
	s->token = s->resume_tok; /* transferred */
	s->resume_tok = NULL;
	s->token_used = 0;
	sess_redial(s);
}

static void
retry_cb(uv_timer_t *t)
{
	struct sess *s = t->data;
	int rc;

	if (s->finished || s->resume_busy)
		return;
	if (!s->token_used) {
		sess_redial(s);
		return;
	}
	if (s->p->resume == NULL) {
		sess_fatal(s, "Connection to the session was lost: "
		    "no way to resume it");
		return;
	}
	/* spec 4.7: a fresh token from ResumeSession, same StreamUrl. */
	s->resume_req.data = s;
	rc = uv_queue_work(&s->loop, &s->resume_req, resume_work,
	    resume_done);
	if (rc != 0) {
		sess_lost(s, "cannot call ResumeSession: %s", uv_strerror(rc));
		return;
	}
	s->resume_busy = 1;
}

/* The data channel is down without a channel_closed: spec 4.7. */
static void
sess_lost(struct sess *s, const char *fmt, ...)
{
	char why[600];
	uint64_t delay;
	va_list ap;

	if (s->finished)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (s->retries >= SESS_MAX_RETRIES) {
		sess_fatal(s, "Connection to the session was lost: %s", why);
		return;
	}
	/* spec 4.7: d * 2^k with d random in [100, 200) ms. */
	delay = (uint64_t)(100 + (unsigned)rand() % 100) << s->retries;
	s->retries++;
	log_info("event=reconnect session=%s attempt=%u delay_ms=%llu "
	    "reason=\"%s\"", s->p->session_id, s->retries,
	    (unsigned long long)delay, why);
	uv_timer_start(&s->retry, retry_cb, delay, 0);
}

/* The agent has not acknowledged our oldest message for minutes. */
static void
sess_give_up(struct sess *s)
{
	sess_fatal(s, "The agent stopped acknowledging input; "
	    "session %s terminated.", s->p->session_id);
	sess_terminate(s, SESS_GIVEUP_TERMINATE_S, 0);
}

static void
tick_cb(uv_timer_t *t)
{
	struct sess *s = t->data;
	int i;

	if (s->finished)
		return;
	channel_tick(s->ch, channel_now_ms());
	sess_closed_check(s);
	if (s->finished)
		return;
	if (channel_head_resends(s->ch) >= SESS_GIVEUP_RESENDS) {
		sess_give_up(s);
		return;
	}
	if (s->port_eof_ms != 0 && ((s->inq.len == 0 &&
	    channel_unacked(s->ch) == 0) ||
	    channel_now_ms() - s->port_eof_ms >= SESS_PORT_EOF_DRAIN_MS)) {
		/* As AWS's plugin: exit 0, nothing printed. */
		sess_finish(s, CLIENT_EXIT_OK, NULL, NULL);
		return;
	}
	if (s->in_mode == IN_TICK) {
		for (i = 0; i < SESS_STDIN_TICK_READS && stdin_wanted(s); i++)
			if (!stdin_read_one(s))
				break;
	}
	if (!s->finished)
		input_flush(s);
}

/* ---- set-up ------------------------------------------------------------ */

static void
sess_init_stdio(struct sess *s)
{
	int rc, k;

	s->in_is_tty = isatty(STDIN_FILENO);
	rc = uv_poll_init(&s->loop, &s->in_poll, STDIN_FILENO);
	if (rc == 0) {
		s->in_poll.data = s;
		s->in_mode = IN_POLL;
	} else if (rc == UV_EPERM)
		s->in_mode = IN_TICK;  /* regular file or /dev/null */
	else {
		log_warn("event=stdin_unusable err=\"%s\"", uv_strerror(rc));
		s->in_mode = IN_NONE;
	}
	for (k = 0; k < 2; k++) {
		rc = uv_poll_init(&s->loop, &s->out_poll[k], k + 1);
		if (rc == 0) {
			s->out_poll[k].data = s;
			s->out_pollable[k] = 1;
		}
	}
}

static void
sess_init_signal(struct sess *s, uv_signal_t *h, uv_signal_cb cb, int sig)
{
	uv_signal_init(&s->loop, h);
	h->data = s;
	if (uv_signal_start(h, cb, sig) != 0)
		log_warn("event=signal_failed sig=%d", sig);
}

static int
sess_url_is_tls(const char *url)
{
	return strncasecmp(url, "wss://", 6) == 0 ||
	    strncasecmp(url, "https://", 8) == 0;
}

int
client_session_run(const struct client_session_params *p)
{
	struct sess *s = &sess_state;
	const char *ca;
	char err[512];
	int rc;

	memset(s, 0, sizeof(*s));
	s->p = p;
	s->remote_exit = -1;
	/* Bulk transfers free and allocate frame-sized blocks at a high
	 * rate: without these glibc gives the heap top back and takes it
	 * again (brk, page faults) for every few messages. Bounded: at most
	 * SESS_HEAP_KEEP of free heap is kept. */
	(void)mallopt(M_TRIM_THRESHOLD, (int)SESS_HEAP_KEEP);
	(void)mallopt(M_MMAP_THRESHOLD, (int)SESS_HEAP_KEEP);
	s->exit_code = CLIENT_EXIT_FAIL;
	uuid_v4_str(s->client_id);
	srand((unsigned)uv_hrtime() ^ (unsigned)getpid());
	buf_init(&s->outq, SESS_OUT_MAX);
	buf_init(&s->inq, SESS_INQ_MAX);
	buf_init(&s->hs_req, (size_t)64 << 10);
	buf_init(&s->closed_msg, (size_t)64 << 10);
	s->keepalive_ms = p->keepalive_s < 0 ? 0 : p->keepalive_s == 0 ?
	    CLIENT_KEEPALIVE_DEFAULT * 1000u : (unsigned)p->keepalive_s * 1000u;
	s->token = strdup(p->token);
	if (s->token == NULL) {
		fprintf(stderr, "porthole: out of memory\n");
		return CLIENT_EXIT_FAIL;
	}
	rc = uv_loop_init(&s->loop);
	if (rc != 0) {
		fprintf(stderr, "porthole: cannot start the event loop: %s\n",
		    uv_strerror(rc));
		return CLIENT_EXIT_FAIL;
	}
	if (sess_url_is_tls(p->stream_url)) {
		/* The data channel trusts the same CA bundle as the API calls
		 * (AWS_CA_BUNDLE / ca_bundle), and SSL_CERT_FILE like the
		 * official plugin (spec 2.1); else the system store. */
		ca = p->ca_file;
		if (ca == NULL || *ca == '\0')
			ca = getenv("SSL_CERT_FILE");
		if (ca != NULL && *ca == '\0')
			ca = NULL;
		rc = tls_ctx_new_client(&s->tls, ca, NULL, NULL);
		if (rc != 0) {
			fprintf(stderr, "porthole: cannot set up TLS%s%s: %s\n",
			    ca ? " with the CA bundle " : "", ca ? ca : "",
			    ph_strerror(rc));
			return CLIENT_EXIT_FAIL;
		}
	}
	rc = channel_new(&s->ch, CHANNEL_CLIENT, &sess_channel_cbs, s, NULL);
	if (rc != 0) {
		fprintf(stderr, "porthole: %s\n", ph_strerror(rc));
		return CLIENT_EXIT_FAIL;
	}
	uv_timer_init(&s->loop, &s->tick);
	uv_timer_init(&s->loop, &s->winch_poll);
	uv_timer_init(&s->loop, &s->retry);
	uv_timer_init(&s->loop, &s->stable);
	uv_timer_init(&s->loop, &s->grace);
	uv_timer_init(&s->loop, &s->hs_fail);
	s->tick.data = s->winch_poll.data = s->retry.data = s;
	s->stable.data = s->grace.data = s->hs_fail.data = s;

	/* spec 1.2 / 7.5; before stdio turns non-blocking. */
	printf("\nStarting session with SessionId: %s\n", p->session_id);
	fflush(stdout);
	sess_init_stdio(s);
	/* ssh's rule: escapes only when a person types at a terminal. */
	client_escape_init(&s->esc, s->in_is_tty && p->escape_char >= 0 ?
	    (p->escape_char == 0 ? CLIENT_ESCAPE_DEFAULT : p->escape_char) :
	    -1);
	client_escape_name(s->esc.ch, s->esc_name, sizeof(s->esc_name));

	rc = client_tty_raw();
	if (rc < 0)
		log_warn("event=raw_mode_failed err=\"%s\"", ph_strerror(rc));
	sess_init_signal(s, &s->sig_winch, winch_cb, SIGWINCH);
	sess_init_signal(s, &s->sig_int, sig_forward_cb, SIGINT);
	sess_init_signal(s, &s->sig_quit, sig_forward_cb, SIGQUIT);
	sess_init_signal(s, &s->sig_tstp, sig_forward_cb, SIGTSTP);
	sess_init_signal(s, &s->sig_cont, sig_cont_cb, SIGCONT);
	uv_timer_start(&s->tick, tick_cb, SESS_TICK_MS, SESS_TICK_MS);
	uv_timer_start(&s->winch_poll, winch_poll_cb, SESS_WINCH_POLL_MS,
	    SESS_WINCH_POLL_MS);
	stdin_update(s);

	if (sess_dial(s, err, sizeof(err)) != 0)
		sess_lost(s, "%s", err);
	uv_run(&s->loop, UV_RUN_DEFAULT);
	client_tty_restore();
	if (s->sc != NULL) {
		channel_set_crypto(s->ch, NULL);
		sessioncrypt_free(s->sc);
		s->sc = NULL;
	}
	return s->exit_code;
}
