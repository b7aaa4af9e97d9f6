/* session: the client end of one data-channel session. One libuv loop
 * drives the WebSocket, the reliability layer (channel), stdin, stdout, the
 * window size and reconnects; nothing here blocks except the ResumeSession
 * call made while the connection is down anyway. */
#include "client/session.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <uv.h>

#include "client/proto.h"
#include "client/tty.h"
#include "common/buf.h"
#include "common/channel.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/uuid.h"
#include "common/ws.h"

#define SESS_TICK_MS 50            /* channel_tick period */
#define SESS_WINCH_POLL_MS 500     /* spec 7.1: size poll */
#define SESS_STDIN_CHUNK 1024      /* spec 10.4: one message per 1024 bytes */
#define SESS_STDIN_TICK_CHUNKS 16  /* reads per tick for non-pollable stdin */
#define SESS_OUT_SOFT ((size_t)256 << 10) /* refuse output above this */
#define SESS_OUT_MAX ((size_t)4 << 20)
#define SESS_OUT_WRITE ((size_t)64 << 10)
#define SESS_OUT_FLUSH_MS 5000     /* final flush of stdout, at most */
#define SESS_WS_PENDING_MAX ((size_t)1 << 20)
#define SESS_WS_MAX_MESSAGE (((size_t)64 << 10) + 1024) /* spec 10.4 [R] */
#define SESS_MAX_RETRIES 5         /* spec 4.7: first try + 5 retries */
#define SESS_STABLE_MS 5000        /* a connection this old resets retries */
#define SESS_PING_MS 30000
#define SESS_PING_TIMEOUT_MS 90000
#define SESS_CLOSE_GRACE_MS 300    /* wait for our close frame, then stop */
/* spec 4.4: the official plugin terminates the session after 3000 resends
 * of one message (about 5 minutes at its 100 ms cadence). Our channel
 * resends once per RTO (at most 1 s), so 300 is the same 5 minutes. */
#define SESS_GIVEUP_RESENDS 300

enum sess_in_mode {
	IN_NONE,  /* stdin closed or unusable */
	IN_POLL,  /* terminal, pipe, socket: uv_poll */
	IN_TICK,  /* regular file, /dev/null: read from the tick timer */
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
	int connected_once;
	struct channel *ch;

	uv_timer_t tick, winch_poll, retry, stable, grace;
	uv_signal_t sig_winch, sig_int, sig_quit, sig_tstp, sig_cont;

	enum sess_in_mode in_mode;
	uv_poll_t in_poll;
	int in_polling;
	int in_eof;
	int in_is_tty;

	int out_pollable;
	uv_poll_t out_poll;
	int out_polling;
	struct buf outq;

	int ready;               /* first output or HandshakeComplete seen */
	struct client_handshake hs;
	int hs_seen;
	int remote_exit;         /* PayloadType 12, -1 if none */

	unsigned cols, rows;
	int size_sent;

	uv_work_t resume_req;    /* ResumeSession on a worker thread */
	int resume_busy;
	int resume_rc;
	char *resume_tok;
	char resume_err[512];

	unsigned retries;
	int finished;
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

/* ---- stdout ----------------------------------------------------------- */

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

static void out_update(struct sess *s);

static void
out_cb(uv_poll_t *h, int status, int events)
{
	struct sess *s = h->data;
	size_t n;
	ssize_t w;

	if (status < 0) {
		log_warn("event=stdout_poll_failed err=\"%s\"",
		    uv_strerror(status));
		uv_poll_stop(h);
		s->out_polling = 0;
		s->out_pollable = 0;
		/* From now on output is written as it comes. */
		(void)out_write_all(STDOUT_FILENO, s->outq.data, s->outq.len,
		    SESS_OUT_FLUSH_MS);
		buf_reset(&s->outq);
		return;
	}
	if (s->outq.len > 0) {
		n = s->outq.len < SESS_OUT_WRITE ? s->outq.len :
		    SESS_OUT_WRITE;
		w = write(STDOUT_FILENO, s->outq.data, n);
		if (w > 0)
			buf_consume(&s->outq, (size_t)w);
		else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			/* Nobody reads our output any more: nothing to show
			 * an error on either. */
			buf_reset(&s->outq);
			sess_fatal(s, "cannot write to standard output: %s",
			    strerror(errno));
			return;
		}
	}
	out_update(s);
}

static void
out_update(struct sess *s)
{
	if (!s->out_pollable)
		return;
	if (s->outq.len > 0 && !s->out_polling) {
		if (uv_poll_start(&s->out_poll, UV_WRITABLE, out_cb) == 0)
			s->out_polling = 1;
	} else if (s->outq.len == 0 && s->out_polling) {
		uv_poll_stop(&s->out_poll);
		s->out_polling = 0;
	}
}

/* Queue session output. Returns PH_ERR_AGAIN when the queue is over its
 * soft limit: the message is then not acknowledged and the agent resends
 * it later, which is the backpressure towards the remote program. */
static int
out_enqueue(struct sess *s, const uint8_t *p, size_t n)
{
	int rc;

	if (!s->out_pollable) {
		/* Regular file or /dev/null: writes do not block for long. */
		if (out_write_all(STDOUT_FILENO, p, n,
		    SESS_OUT_FLUSH_MS) != 0 && errno == EPIPE) {
			sess_fatal(s, "cannot write to standard output: %s",
			    strerror(errno));
		}
		return 0;
	}
	if (s->outq.len >= SESS_OUT_SOFT)
		return PH_ERR_AGAIN;
	rc = buf_append(&s->outq, p, n);
	if (rc != 0)
		return rc == PH_ERR_TOOBIG ? PH_ERR_AGAIN : rc;
	out_update(s);
	return 0;
}

static void
out_flush(struct sess *s)
{
	if (s->outq.len > 0)
		(void)out_write_all(STDOUT_FILENO, s->outq.data, s->outq.len,
		    SESS_OUT_FLUSH_MS);
	buf_reset(&s->outq);
	if (s->out_polling) {
		uv_poll_stop(&s->out_poll);
		s->out_polling = 0;
	}
}

/* A line of our own on the terminal, between session output. */
static void
sess_note(struct sess *s, int fd, const char *text)
{
	struct buf b;

	buf_init(&b, 8192);
	if (buf_appendf(&b, "%s%s", text, client_tty_eol()) == 0) {
		if (fd == STDOUT_FILENO && s->out_pollable)
			(void)out_enqueue(s, b.data, b.len);
		else {
			if (fd == STDERR_FILENO)
				out_flush(s);
			(void)out_write_all(fd, b.data, b.len, 1000);
		}
	}
	buf_free(&b);
}

/* ---- the end ----------------------------------------------------------- */

static void
sess_grace_cb(uv_timer_t *t)
{
	struct sess *s = t->data;

	uv_stop(&s->loop);
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
	} else
		uv_stop(&s->loop);
}

static void
sess_fatal(struct sess *s, const char *fmt, ...)
{
	char msg[512], line[600];
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
	 * exits 1 so scripts notice; the official plugin exits 0. */
	if (cc.failed)
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

/* ---- window size ------------------------------------------------------- */

static void
sess_send_size(struct sess *s, int force)
{
	unsigned cols, rows;
	struct buf b;

	if (s->finished || !s->ws_open)
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

/* ---- stdin ------------------------------------------------------------- */

static int
stdin_wanted(struct sess *s)
{
	return s->in_mode != IN_NONE && !s->in_eof && !s->finished &&
	    s->ready && s->ws_open && s->ws != NULL &&
	    channel_can_send(s->ch) &&
	    ws_write_pending(s->ws) < SESS_WS_PENDING_MAX;
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
	if (!s->in_is_tty)
		(void)channel_send(s->ch, PT_OUTPUT, &eot, 1);
}

/* Read one chunk; 1 if more may follow, 0 otherwise. */
static int
stdin_read_one(struct sess *s)
{
	uint8_t b[SESS_STDIN_CHUNK];
	ssize_t n;

	n = read(STDIN_FILENO, b, sizeof(b));
	if (n > 0) {
		if (channel_send(s->ch, PT_OUTPUT, b, (size_t)n) != 0)
			log_warn("event=input_dropped bytes=%zd", n);
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
	if (s->ready)
		return;
	s->ready = 1;
	stdin_update(s);
}

/* Keyboard signals when stdin is not a raw terminal (spec 7.1): they go
 * to the remote side as the bytes the terminal would have sent. */
static void
sig_forward_cb(uv_signal_t *h, int sig)
{
	struct sess *s = h->data;
	uint8_t b;

	if (s->finished)
		return;
	b = sig == SIGINT ? 0x03 : sig == SIGQUIT ? 0x1c : 0x1a;
	(void)channel_send(s->ch, PT_OUTPUT, &b, 1);
}

static void
sig_cont_cb(uv_signal_t *h, int sig)
{
	struct sess *s = h->data;

	/* A shell may have reset the terminal while we were stopped. */
	client_tty_reraw();
	sess_send_size(s, 0);
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

static int
sess_handshake_request(struct sess *s, const uint8_t *p, size_t n)
{
	struct client_handshake hs;
	struct buf b;
	char line[320];
	int rc;

	buf_init(&b, (size_t)64 << 10);
	rc = client_proto_handshake_response(p, n, PORTHOLE_CLIENT_VERSION,
	    &hs, &b);
	if (rc == PH_ERR_INVALID) {
		buf_free(&b);
		sess_fatal(s, "The agent sent an invalid handshake request.");
		return 0;
	}
	if (rc == 0)
		rc = channel_send(s->ch, PT_HANDSHAKE_RESPONSE, b.data, b.len);
	buf_free(&b);
	if (rc != 0)
		return rc == PH_ERR_AGAIN ? PH_ERR_AGAIN : rc;
	s->hs = hs;
	s->hs_seen = 1;
	log_debug("event=handshake session=%s agent_version=%s type=%d ok=%d",
	    s->p->session_id, hs.agent_version, (int)hs.type, hs.ok);
	if (!hs.ok) {
		/* The agent cancels the session; say why on our side. */
		snprintf(line, sizeof(line), "porthole: %s", hs.first_error);
		sess_note(s, STDERR_FILENO, line);
	}
	return 0;
}

static int
sess_handshake_complete(struct sess *s, const uint8_t *p, size_t n)
{
	char *msg = NULL;

	if (client_proto_parse_handshake_complete(p, n, &msg) != 0)
		log_warn("event=bad_handshake_complete session=%s",
		    s->p->session_id);
	if (!s->hs_seen || s->hs.type == CLIENT_SESSION_UNKNOWN)
		log_warn("event=handshake_complete_without_type session=%s",
		    s->p->session_id);
	/* spec 5.4: a non-empty CustomerMessage is shown. */
	if (msg != NULL && *msg != '\0')
		sess_note(s, STDOUT_FILENO, msg);
	free(msg);
	sess_set_ready(s);
	return 0;
}

static int
sess_deliver(void *ud, uint32_t type, const uint8_t *p, size_t n)
{
	struct sess *s = ud;
	int rc, code;

	if (s->finished)
		return 0;
	switch (type) {
	case PT_OUTPUT:
	case PT_STDERR:
	case PT_EXIT_CODE:
		/* spec 7.1: every output type is written to stdout. */
		rc = out_enqueue(s, p, n);
		if (rc != 0)
			return rc;
		if (type == PT_EXIT_CODE &&
		    client_proto_parse_exit_code(p, n, &code) == 0)
			s->remote_exit = code;
		sess_set_ready(s);
		return 0;
	case PT_HANDSHAKE_REQUEST:
		return sess_handshake_request(s, p, n);
	case PT_HANDSHAKE_COMPLETE:
		return sess_handshake_complete(s, p, n);
	case PT_ENC_CHALLENGE_REQUEST:
		/* We never accept KMSEncryption yet, so there is no key. */
		log_warn("event=unexpected_challenge session=%s",
		    s->p->session_id);
		return 0;
	default:
		log_debug("event=ignored_payload type=%u bytes=%zu", type, n);
		return 0;
	}
}

static void
sess_on_control(void *ud, const struct clientmsg *m)
{
	struct sess *s = ud;

	if (s->finished)
		return;
	if (strcmp(m->type, MT_CHANNEL_CLOSED) == 0)
		sess_closed(s, m->payload, m->payload_len);
	else
		log_debug("event=control_message type=%s", m->type);
}

static const struct channel_cbs sess_channel_cbs = {
	.send_frame = sess_send_frame,
	.deliver = sess_deliver,
	.on_control = sess_on_control,
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
	ws_set_keepalive(w, SESS_PING_MS, SESS_PING_TIMEOUT_MS);
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
	stdin_update(s);
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
}

static void
ws_drain_cb(struct ws *w)
{
	struct sess *s = ws_userdata(w);

	if (w == s->ws)
		stdin_update(s);
}

static void
ws_close_cb(struct ws *w, int code)
{
	struct sess *s = ws_userdata(w);
	int was_open;

	if (w != s->ws)
		return;
	was_open = s->ws_open;
	s->ws = NULL;
	s->ws_open = 0;
	uv_timer_stop(&s->stable);
	if (s->finished) {
		uv_stop(&s->loop);
		return;
	}
	stdin_update(s);
	if (was_open)
		sess_lost(s, "the data channel closed (code %d)", code);
	else
		sess_lost(s, "could not open the data channel (code %d)",
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
	char why[512];
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
	char err[512];

	err[0] = '\0';
	if (s->p->terminate != NULL &&
	    s->p->terminate(s->p->resume_ud, s->p->session_id, err,
	    sizeof(err)) != 0)
		log_warn("event=terminate_failed session=%s err=\"%s\"",
		    s->p->session_id, err);
	sess_fatal(s, "The agent stopped acknowledging input; "
	    "session %s terminated.", s->p->session_id);
}

static void
tick_cb(uv_timer_t *t)
{
	struct sess *s = t->data;
	int i;

	if (s->finished)
		return;
	channel_tick(s->ch, channel_now_ms());
	if (channel_head_resends(s->ch) >= SESS_GIVEUP_RESENDS) {
		sess_give_up(s);
		return;
	}
	if (s->in_mode == IN_TICK) {
		for (i = 0; i < SESS_STDIN_TICK_CHUNKS && stdin_wanted(s); i++)
			if (!stdin_read_one(s))
				break;
	}
	stdin_update(s);
}

/* ---- set-up ------------------------------------------------------------ */

static void
sess_init_stdio(struct sess *s)
{
	int rc;

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
	rc = uv_poll_init(&s->loop, &s->out_poll, STDOUT_FILENO);
	if (rc == 0) {
		s->out_poll.data = s;
		s->out_pollable = 1;
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
	s->exit_code = CLIENT_EXIT_FAIL;
	uuid_v4_str(s->client_id);
	srand((unsigned)uv_hrtime() ^ (unsigned)getpid());
	buf_init(&s->outq, SESS_OUT_MAX);
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
	s->tick.data = s->winch_poll.data = s->retry.data = s;
	s->stable.data = s->grace.data = s;

	/* spec 1.2 / 7.5; before stdio turns non-blocking. */
	printf("\nStarting session with SessionId: %s\n", p->session_id);
	fflush(stdout);
	sess_init_stdio(s);

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

	if (sess_dial(s, err, sizeof(err)) != 0)
		sess_lost(s, "%s", err);
	uv_run(&s->loop, UV_RUN_DEFAULT);
	client_tty_restore();
	return s->exit_code;
}
