#include "agent/session.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent/backoff.h"
#include "agent/handshake.h"
#include "agent/jsonci.h"
#include "agent/kms_decrypt.h"
#include "agent/noninteractive.h"
#include "agent/portfwd.h"
#include "agent/recorder.h"
#include "agent/shell_pty.h"
#include "agent/user.h"
#include "agent/utf8.h"
#include "agent/version.h"
#include "common/buf.h"
#include "common/channel.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"
#include "common/ws.h"

/* spec 10.4: AWS's endpoints send stream payloads of at most 1024 bytes
 * and read any size (no WebSocket read limit); porthole's receivers take
 * up to 64 KiB. Output read from a busy terminal goes out in frames of up
 * to SESS_OUT_FRAME, so the per-frame costs (header, SHA-256, an
 * acknowledgement, a WebSocket and TLS record) are paid once per 16 KiB
 * rather than per 1 KiB; an interactive echo still leaves at once. */
#define SESS_CHUNK 1024
#define SESS_OUT_FRAME ((size_t)16 * 1024)
/* One read of the PTY; output waiting to be sent never exceeds
 * SESS_OUT_MAX, so a slow client stops the reads (STYLE.md 6). */
#define SESS_READ_MAX ((size_t)64 * 1024)
#define SESS_OUT_MAX (SESS_READ_MAX + SESS_OUT_FRAME)
/* Input accepted but not yet written to the PTY. */
#define SESS_IN_MAX ((size_t)1024 * 1024)
/* Above this the data channel's reads stop (TCP, portholed and the
 * client carry the backpressure); refusing frames instead would stall a
 * paste on the client's resend timers. */
#define SESS_IN_SOFT ((size_t)256 * 1024)
/* Stop reading the PTY, and writing frames (new or resent), while the
 * socket has this much unsent: output waits in the channel's window
 * instead, whose bound stops the PTY reads when the socket is gone. */
#define SESS_WS_HIGH_WATER ((size_t)1 << 20)
/* spec 10.4 [R]: data-channel payloads up to 64 KiB (+28 encrypted). */
#define SESS_MAX_PAYLOAD ((size_t)64 * 1024 + 28)
#define SESS_MAX_MESSAGE (SESS_MAX_PAYLOAD + CLIENTMSG_PAYLOAD_OFFSET)
#define SESS_TICK_MS 50
/* spec 4.6: wait at most 2 s for the last output to be acknowledged. */
#define SESS_DRAIN_MS 2000
/* SIGHUP first, SIGKILL this much later. */
#define SESS_KILL_MS 2000
/* After the shell exited, output still in the PTY is read for this long
 * (a background job may keep the terminal open). */
#define SESS_EXIT_GRACE_MS 500
/* Stop waiting for a child that ignores SIGKILL (uninterruptible). */
#define SESS_REAP_GIVEUP_MS 5000
/* Data channel reconnects: about 5 tries over about 30 s. */
#define SESS_MAX_TRIES 5
/* Invalid frames tolerated on one data-channel connection. */
#define SESS_MAX_BAD_FRAMES 16
/* Stream payloads of an encrypted session that did not open (resends
 * included): past this the peer does not hold the key (spec 6.3). */
#define SESS_MAX_CRYPTO_FAILURES 32
#define SESS_KEEPALIVE_MS 30000
#define SESS_KEEPALIVE_TIMEOUT_MS 90000
/* A partial UTF-8 character is held back at most this long. */
#define SESS_HOLD_BACK_MS 100
#define SESS_DEFAULT_ROWS 24
#define SESS_DEFAULT_COLS 80
/* InteractiveCommands: the command runs at once, so it waits this long
 * for the client's first Size (porthole sends it on connecting; the
 * official plugin only after the first output, spec 5.1). */
#define SESS_SIZE_WAIT_MS 4000
/* NonInteractiveCommands: its output is the result, so the end waits for
 * a slow reader (porthole ... | less) to take it all; TerminateSession,
 * the idle timeout or a lost client end the wait sooner. */
#define SESS_NI_DRAIN_MS ((uint64_t)30 * 60 * 1000)

enum sess_phase {
	PH_CONNECTING, /* dialling the data channel the first time */
	PH_RUNNING,    /* the shell runs */
	PH_DRAINING,   /* the shell is gone; waiting for acks (spec 4.6) */
	PH_REAPING,    /* reported; waiting for the child and handles */
	PH_CLOSED,     /* handles are closing; freed on the last one */
};

struct agent_session {
	const struct agent_ctx *ctx;
	const struct agent_session_cbs *cbs;
	void *ud;
	struct agent_task task;
	struct agent_user user;
	struct agent_session_cmd cmd;
	enum sess_phase phase;

	/* data channel */
	struct ws *ws;
	int ws_open;          /* OpenDataChannel sent */
	int ws_ever_open;
	int ws_final;         /* closed by us or refused: no reconnect */
	int tries;            /* failed dials/drops since a stable open */
	int bad_frames;       /* invalid frames on this connection */
	int digest_logged;    /* spec 3.7: tolerated faults, logged once */
	int length_logged;
	uint64_t opened_ms;
	uint64_t retry_at;    /* 0: no reconnect scheduled */
	struct agent_backoff bo;
	struct channel *ch;
	/* spec 5: NULL when the session has no handshake. */
	struct agent_handshake *hs;
	struct agent_kms_job *kms_job; /* Decrypt in flight (spec 6.1) */
	uv_timer_t tick;
	int tick_live;

	/* PTY and shell */
	int master;
	pid_t pid;
	uv_poll_t poll;
	int poll_live;
	int poll_events;
	int pty_eof;
	int child_exited;
	int child_status;
	uint64_t child_exit_ms;
	int hup_sent, kill_sent;
	pid_t fg_pgrp;        /* foreground job when the shell was hung up */
	uint64_t kill_at, giveup_at;
	struct buf out;       /* read from the PTY, not yet sent */
	uint64_t last_read_ms;
	struct buf in;        /* received, not yet written to the PTY */
	unsigned short rows, cols;
	uint64_t size_wait_until; /* InteractiveCommands: see sess_spawn */
	int paused;           /* pause_publication (spec 4.5) */
	int in_paused;        /* data-channel reads stopped: the PTY is slow */

	/* NonInteractiveCommands (spec 7.3): the command, in place of the
	 * PTY and shell; its exit code waits here for room in the channel. */
	struct agent_ni *ni;
	int ni_code;
	int ni_exit_pending;

	/* Port (spec 7.4): the forwarding, in place of the shell. */
	struct portfwd *pf;

	/* the record (recorder.h); NULL once closed */
	struct agent_recorder *rec;
	int exit_code;        /* for the record's end frame; -1: unknown */

	/* end */
	int peer_gone;        /* channel_closed: nobody waits for output */
	uint64_t drain_until;
	int completed;
	char status[16];
	char *output;
};

static uint64_t
sess_now(void)
{
	return uv_hrtime() / 1000000;
}

const char *
agent_session_id(const struct agent_session *s)
{
	return s->task.session_id;
}

/* ---- lifetime ------------------------------------------------------------ */

static void sess_update_poll(struct agent_session *s);
static void sess_end(struct agent_session *s, const char *status,
    const char *output);
static void sess_dial(struct agent_session *s);
static void sess_hs_check(struct agent_session *s);
static void sess_port_totals(struct agent_session *s);

static void
sess_maybe_free(struct agent_session *s)
{
	if (s->phase != PH_CLOSED || s->tick_live || s->poll_live ||
	    s->ws != NULL)
		return;
	log_debug("event=session_freed session=%s", s->task.session_id);
	if (s->rec != NULL) /* not reached: closed with the result */
		agent_recorder_close(s->rec, "Failed", "the session was freed",
		    -1);
	channel_free(s->ch);
	agent_handshake_free(s->hs); /* after the channel: it holds the key */
	buf_free(&s->out);
	buf_free(&s->in);
	agent_session_cmd_free(&s->cmd);
	agent_task_free(&s->task);
	free(s->output);
	s->cbs->on_freed(s->ud, s);
	free(s);
}

static void
sess_handle_closed(uv_handle_t *h)
{
	struct agent_session *s = h->data;

	if (h == (uv_handle_t *)&s->tick) {
		s->tick_live = 0;
	} else {
		s->poll_live = 0;
		/* libuv: a polled descriptor is closed only after its
		 * handle. */
		if (s->master >= 0) {
			close(s->master);
			s->master = -1;
		}
	}
	sess_maybe_free(s);
}

/* Release the PTY and timers; the session is freed when the last handle
 * and the WebSocket are gone. */
static void
sess_close(struct agent_session *s)
{
	if (s->phase == PH_CLOSED)
		return;
	s->phase = PH_CLOSED;
	/* It hangs up a command still running and frees itself. */
	agent_ni_close(s->ni);
	s->ni = NULL;
	portfwd_close(s->pf);
	s->pf = NULL;
	/* A Decrypt still running frees itself; its answer is dropped. */
	agent_kms_decrypt_cancel(s->kms_job);
	s->kms_job = NULL;
	if (s->poll_live) {
		uv_poll_stop(&s->poll);
		uv_close((uv_handle_t *)&s->poll, sess_handle_closed);
	} else if (s->master >= 0) {
		close(s->master);
		s->master = -1;
	}
	if (s->tick_live) {
		uv_timer_stop(&s->tick);
		uv_close((uv_handle_t *)&s->tick, sess_handle_closed);
	}
	if (s->ws != NULL) {
		s->ws_final = 1;
		s->ws_open = 0;
		ws_close(s->ws, 1000, "session ended");
	}
	sess_maybe_free(s);
}

/* ---- the record (recorder.h) ------------------------------------------- */

/* The record cannot be written: the session ends rather than run
 * unrecorded, and says why. */
static void
sess_rec_failed(struct agent_session *s)
{
	char msg[400];
	int n;

	if (s->phase >= PH_DRAINING)
		return;
	log_error("event=session_unrecorded session=%s", s->task.session_id);
	n = snprintf(msg, sizeof(msg), "\r\nporthole-agent: the session "
	    "ends: %s\r\n", agent_recorder_error(s->rec));
	/* A port session's stream is the user's bytes: nothing of ours. */
	if (n > 0 && s->ws_open && s->task.type != AGENT_ST_PORT)
		(void)channel_send(s->ch, s->task.type ==
		    AGENT_ST_NONINTERACTIVE ? PT_STDERR : PT_OUTPUT, msg,
		    (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	sess_end(s, "Failed", agent_recorder_error(s->rec));
}

static int
sess_rec(struct agent_session *s, char type, const void *p, size_t n)
{
	if (s->rec == NULL || n == 0)
		return 0;
	if (agent_recorder_frame(s->rec, type, p, n) != 0) {
		sess_rec_failed(s);
		return PH_ERR_IO;
	}
	return 0;
}

/* Input for the terminal. A line read with echo off (a password prompt:
 * canonical mode without echo; editors and readline turn canonical mode
 * off too) is not kept: the record says how many bytes were hidden. */
static int
sess_rec_input(struct agent_session *s, const uint8_t *p, size_t n)
{
	struct termios tio;
	char js[96];
	int len;

	if (s->rec == NULL || n == 0)
		return 0;
	if (s->master >= 0 && tcgetattr(s->master, &tio) == 0 &&
	    (tio.c_lflag & ICANON) && !(tio.c_lflag & ECHO)) {
		len = snprintf(js, sizeof(js), "{\"event\":\"input_hidden\","
		    "\"bytes\":%zu}", n);
		return sess_rec(s, 'm', js, (size_t)len);
	}
	return sess_rec(s, 'i', p, n);
}

/* The spool holds too much: output waits (backpressure on the PTY). */
static int
sess_rec_full(struct agent_session *s)
{
	return s->rec != NULL && agent_recorder_full(s->rec);
}

static void
sess_rec_close(struct agent_session *s)
{
	const char *reason;
	int code = s->exit_code;

	if (s->rec == NULL)
		return;
	if (s->pf != NULL)
		sess_port_totals(s);
	if (s->output != NULL && s->output[0] != '\0')
		reason = s->output;
	else if (s->peer_gone)
		reason = "terminated";
	else if (s->task.type == AGENT_ST_PORT)
		reason = "the port session ended";
	else
		reason = s->task.type == AGENT_ST_NONINTERACTIVE ?
		    "the command exited" : "the shell exited";
	if (code < 0 && s->child_exited && WIFEXITED(s->child_status))
		code = WEXITSTATUS(s->child_status);
	(void)agent_recorder_close(s->rec, strcmp(s->status, "Success") == 0 ?
	    "Terminated" : "Failed", reason, code);
	s->rec = NULL;
}

static int
sess_rec_open(struct agent_session *s, char *err, size_t errlen)
{
	struct record_header h;
	struct timespec ts;
	char dir[AGENT_PATH_MAX];

	/* The operator turned recording off (RecordSessions false): s->rec
	 * stays NULL and every sess_rec* call does nothing. */
	if (s->ctx->st->record_off)
		return 0;
	memset(&h, 0, sizeof(h));
	snprintf(h.session_id, sizeof(h.session_id), "%s", s->task.session_id);
	/* mi- ids are 20 characters; the field takes 31. */
	snprintf(h.instance_id, sizeof(h.instance_id), "%.31s",
	    s->ctx->st->instance_id);
	snprintf(h.session_type, sizeof(h.session_type), "%s",
	    agent_session_type_name(s->task.type));
	snprintf(h.run_as, sizeof(h.run_as), "%s", s->user.name);
	clock_gettime(CLOCK_REALTIME, &ts);
	h.start_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	/* The terminal starts at this size; 'r' frames follow a Size. */
	h.width = SESS_DEFAULT_COLS;
	h.height = SESS_DEFAULT_ROWS;
	if (s->ctx->rec != NULL)
		snprintf(dir, sizeof(dir), "%s", rec_upload_dir(s->ctx->rec));
	else if (s->ctx->st->dir[0] == '\0')
		return 0; /* embedded without a state directory (tests) */
	else if (snprintf(dir, sizeof(dir), "%s/records", s->ctx->st->dir) >=
	    (int)sizeof(dir)) {
		snprintf(err, errlen, "record path too long");
		return PH_ERR_TOOBIG;
	}
	return agent_recorder_open(&s->rec, dir, &h, s->ctx->rec, err,
	    errlen);
}

static void
sess_complete(struct agent_session *s)
{
	if (s->completed)
		return;
	s->completed = 1;
	/* spec 3.7 [R]: what the client got wrong and we let pass. */
	log_info("event=session_end session=%s status=%s "
	    "digest_mismatches=%llu length_mismatches=%llu",
	    s->task.session_id, s->status,
	    (unsigned long long)(s->ch ? channel_digest_mismatches(s->ch) : 0),
	    (unsigned long long)(s->ch ? channel_length_mismatches(s->ch) : 0));
	sess_rec_close(s);
	s->cbs->on_complete(s->ud, s->task.session_id, s->status,
	    s->output ? s->output : "");
}

/* ---- data channel -------------------------------------------------------- */

static int
sess_send_frame(void *ud, const uint8_t *frame, size_t n)
{
	struct agent_session *s = ud;

	if (s->ws == NULL || !s->ws_open)
		return PH_ERR_IO; /* kept by the channel, resent later */
	return ws_send(s->ws, WS_BINARY, frame, n);
}

/* The channel's pace (channel_cbs.writable): a reconnect resends the
 * window as the socket drains, never all of it into the queue at once. */
static int
sess_writable(void *ud)
{
	struct agent_session *s = ud;

	return s->ws != NULL && s->ws_open &&
	    ws_write_pending(s->ws) < SESS_WS_HIGH_WATER;
}

static void
sess_send_state(struct agent_session *s, const char *state)
{
	char js[256];
	int n, rc;

	if (s->ws == NULL || !s->ws_open)
		return;
	/* spec 3.3: agent_session_state, not sequenced. */
	n = snprintf(js, sizeof(js), "{\"SchemaVersion\":1,\"SessionState\":"
	    "\"%s\",\"SessionId\":\"%s\"}", state, s->task.session_id);
	if (n < 0 || (size_t)n >= sizeof(js))
		return;
	rc = channel_send_control(s->ch, MT_AGENT_SESSION_STATE, js,
	    (size_t)n);
	if (rc != 0)
		log_warn("event=session_state_send_failed session=%s "
		    "err=\"%s\"", s->task.session_id, ph_strerror(rc));
}

/* ---- non-interactive command (spec 7.3) -------------------------------- */

/* Output of the command: stdout as Output, stderr as StdErr, in chunks of
 * at most 1024 bytes while the channel and the socket take them. */
static size_t
sess_ni_output(void *ud, enum agent_ni_stream st, const uint8_t *p,
    size_t n)
{
	struct agent_session *s = ud;
	size_t taken = 0, chunk;
	int rc;

	if (s->phase != PH_RUNNING || s->paused || sess_rec_full(s))
		return 0;
	while (taken < n) {
		if (s->ws != NULL &&
		    ws_write_pending(s->ws) >= SESS_WS_HIGH_WATER)
			break;
		chunk = n - taken < SESS_CHUNK ? n - taken : SESS_CHUNK;
		rc = channel_send(s->ch, st == AGENT_NI_STDERR ? PT_STDERR :
		    PT_OUTPUT, p + taken, chunk);
		if (rc == PH_ERR_AGAIN)
			break; /* agent_ni_resume when acks make room */
		if (rc != 0)
			log_warn("event=output_dropped session=%s bytes=%zu "
			    "err=\"%s\"", s->task.session_id, chunk,
			    ph_strerror(rc));
		taken += chunk;
	}
	if (sess_rec(s, 'o', p, taken) != 0)
		return n; /* the session ends */
	return taken;
}

/* spec 7.3: ExitCode after every byte of output, then the end. */
static void
sess_ni_send_exit(struct agent_session *s)
{
	char msg[32];
	int n, rc;

	if (!s->ni_exit_pending || s->phase != PH_RUNNING)
		return;
	n = snprintf(msg, sizeof(msg), "EXIT_CODE: %d", s->ni_code);
	rc = channel_send(s->ch, PT_EXIT_CODE, msg, (size_t)n);
	if (rc == PH_ERR_AGAIN)
		return; /* sess_update_poll tries again */
	s->ni_exit_pending = 0;
	s->exit_code = s->ni_code;
	log_info("event=command_exit session=%s code=%d",
	    s->task.session_id, s->ni_code);
	sess_end(s, "Success", "");
}

static void
sess_ni_exit(void *ud, int code)
{
	struct agent_session *s = ud;

	s->ni_code = code;
	s->ni_exit_pending = 1;
	sess_ni_send_exit(s);
}

static const struct agent_ni_cbs sess_ni_cbs = {
	.on_output = sess_ni_output,
	.on_exit = sess_ni_exit,
};

/* spec 7.3: ^C and ^\ of the client signal the command; the rest of the
 * input is dropped (it has no standard input). */
static void
sess_ni_input(struct agent_session *s, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && s->ni != NULL; i++) {
		if (p[i] == 0x03 || p[i] == 0x1c) {
			(void)agent_ni_signal(s->ni, p[i] == 0x03 ? SIGINT :
			    SIGQUIT);
			return;
		}
	}
}

static int
sess_ni_spawn(struct agent_session *s)
{
	struct agent_ni_spawn sp;
	struct agent_ni_argv av;
	char err[512], msg[600];
	int n, rc, code = 2; /* sh's status for a syntax error */

	rc = agent_ni_split(s->task.commands, &av, err, sizeof(err));
	if (rc == 0) {
		memset(&sp, 0, sizeof(sp));
		sp.argv = av.argv;
		sp.envp = s->cmd.envp;
		sp.path = AGENT_SESSION_PATH;
		sp.user = &s->user;
		sp.cwd = s->user.home;
		rc = agent_ni_start(&s->ni, s->ctx->loop, &sp, &sess_ni_cbs, s,
		    &code, err, sizeof(err));
	}
	agent_ni_argv_free(&av);
	s->phase = PH_RUNNING;
	if (rc != 0) {
		/* spec 7.3: errors before the start go out as StdErr; the
		 * status follows as a shell gives it (127: not found). */
		log_warn("event=command_start_failed session=%s err=\"%s\"",
		    s->task.session_id, err);
		n = snprintf(msg, sizeof(msg), "%s\n", err);
		if (n > 0) {
			n = (size_t)n < sizeof(msg) ? n : (int)sizeof(msg) - 1;
			channel_send(s->ch, PT_STDERR, msg, (size_t)n);
			(void)sess_rec(s, 'o', msg, (size_t)n);
		}
		sess_ni_exit(s, code);
		return 0;
	}
	log_info("event=command_started session=%s pid=%d user=%s",
	    s->task.session_id, (int)agent_ni_pid(s->ni), s->user.name);
	return 0;
}

/* ---- port forwarding (spec 7.4; the logic is in portfwd.c) ------------- */

static void
sess_port_totals(struct agent_session *s)
{
	uint64_t in, out;
	char js[160];
	int n;

	portfwd_counts(s->pf, &in, &out);
	n = snprintf(js, sizeof(js), "{\"event\":\"port_totals\","
	    "\"bytes_in\":%llu,\"bytes_out\":%llu}", (unsigned long long)in,
	    (unsigned long long)out);
	if (n > 0 && (size_t)n < sizeof(js) && s->rec != NULL)
		(void)agent_recorder_frame(s->rec, 'm', js, (size_t)n);
}

/* Stop reading the data channel while the destinations are slow, but
 * never while our own output waits for acknowledgements: they come on
 * the same socket (refused payloads are resent by the client). */
static void
sess_port_pause(struct agent_session *s)
{
	int want;

	if (s->ws == NULL)
		return;
	want = s->pf != NULL && s->phase == PH_RUNNING &&
	    portfwd_input_congested(s->pf) && channel_can_send(s->ch);
	if (want == s->in_paused)
		return;
	s->in_paused = want;
	ws_pause_read(s->ws, want);
}

static int
sess_port_send(void *ud, uint32_t payload_type, const void *p, size_t n)
{
	struct agent_session *s = ud;
	int rc;

	rc = channel_send(s->ch, payload_type, p, n);
	/* A full window needs the acknowledgements that a paused socket
	 * would hold back. */
	if (s->in_paused && !channel_can_send(s->ch))
		sess_port_pause(s);
	return rc;
}

static int
sess_port_writable(void *ud)
{
	struct agent_session *s = ud;

	return s->phase == PH_RUNNING && !s->paused &&
	    channel_can_send(s->ch) && !sess_rec_full(s) &&
	    (s->ws == NULL || ws_write_pending(s->ws) < SESS_WS_HIGH_WATER);
}

static void
sess_port_record(void *ud, const char *json, size_t n)
{
	(void)sess_rec(ud, 'm', json, n);
}

static void
sess_port_change(void *ud)
{
	sess_port_pause(ud);
}

static void
sess_port_end(void *ud, int failed, const char *msg)
{
	sess_end(ud, failed ? "Failed" : "Success", msg);
}

static const struct portfwd_cbs sess_port_cbs = {
	.send = sess_port_send,
	.writable = sess_port_writable,
	.record = sess_port_record,
	.on_change = sess_port_change,
	.on_end = sess_port_end,
};

/* After HandshakeComplete: the mode from the client's version (spec
 * 7.4), the record's port event (who, where, how), the first dial. */
static int
sess_port_start(struct agent_session *s)
{
	struct portfwd_params p;
	const char *cv;
	json_t *o;
	char *js;
	int rc;

	cv = s->hs != NULL ? agent_handshake_client_version(s->hs) : "";
	memset(&p, 0, sizeof(p));
	p.loop = s->ctx->loop;
	p.deny = &s->ctx->st->deny;
	p.host = s->task.port_host;
	p.port = s->task.port_number;
	p.mode = portfwd_pick_mode(agent_version(), cv, s->task.port_lpf);
	p.keepalive = p.mode == PF_MODE_MUX && portfwd_keepalive(cv);
	p.session_id = s->task.session_id;
	s->phase = PH_RUNNING;
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "event", "port",
	    "owner", s->task.owner ? s->task.owner : "", "host",
	    p.host[0] ? p.host : "localhost", "port", (int)p.port, "mode",
	    portfwd_mode_name(p.mode), "client_version", cv);
	js = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) :
	    NULL;
	json_decref(o);
	if (js != NULL && sess_rec(s, 'm', js, strlen(js)) != 0) {
		free(js);
		return PH_ERR_IO; /* the session ends: unrecorded */
	}
	free(js);
	rc = portfwd_new(&s->pf, &p, &sess_port_cbs, s);
	if (rc != 0) {
		log_error("event=port_start_failed session=%s err=\"%s\"",
		    s->task.session_id, ph_strerror(rc));
		sess_end(s, "Failed", "cannot start port forwarding");
		return rc;
	}
	return 0;
}

static int
sess_port_deliver(struct agent_session *s, uint32_t payload_type,
    const uint8_t *p, size_t n)
{
	int rc;

	if (payload_type != PT_OUTPUT && payload_type != PT_FLAG)
		return 0; /* Size and the rest mean nothing here */
	if (s->pf == NULL) {
		/* Before HandshakeComplete: the client resends it, for its
		 * bytes must not be lost; TerminateSession ends it now. */
		if (payload_type == PT_FLAG && n == 4 && p[0] == 0 &&
		    p[1] == 0 && p[2] == 0 && p[3] == PF_FLAG_TERMINATE) {
			sess_end(s, "Success", "");
			return 0;
		}
		return s->phase == PH_CONNECTING ? PH_ERR_AGAIN : 0;
	}
	rc = portfwd_input(s->pf, payload_type, p, n);
	sess_port_pause(s);
	return rc;
}

static int
sess_spawn(struct agent_session *s)
{
	struct agent_spawn sp;
	char err[512], msg[600];
	int n;

	if (s->task.type == AGENT_ST_PORT)
		return sess_port_start(s);
	if (s->task.type == AGENT_ST_NONINTERACTIVE)
		return sess_ni_spawn(s);
	if (s->task.type == AGENT_ST_INTERACTIVE && s->rows == 0) {
		/* The terminal has the client's size from the first byte;
		 * a Size or sess_on_tick calls again. */
		if (s->size_wait_until == 0)
			s->size_wait_until = sess_now() + SESS_SIZE_WAIT_MS;
		if (sess_now() < s->size_wait_until)
			return 0;
	}
	memset(&sp, 0, sizeof(sp));
	sp.path = s->cmd.path;
	sp.argv = s->cmd.argv;
	sp.envp = s->cmd.envp;
	sp.user = &s->user;
	sp.cwd = s->user.home;
	sp.rows = s->rows ? s->rows : SESS_DEFAULT_ROWS;
	sp.cols = s->cols ? s->cols : SESS_DEFAULT_COLS;
	if (agent_pty_spawn(&sp, &s->master, &s->pid, err, sizeof(err)) != 0) {
		log_error("event=shell_start_failed session=%s err=\"%s\"",
		    s->task.session_id, err);
		/* STYLE.md 8: the user sees why, as session output. */
		n = snprintf(msg, sizeof(msg),
		    "porthole-agent: cannot start the session: %s\r\n", err);
		if (n > 0) {
			n = (size_t)n < sizeof(msg) ? n : (int)sizeof(msg) - 1;
			channel_send(s->ch, PT_OUTPUT, msg, (size_t)n);
			(void)sess_rec(s, 'o', msg, (size_t)n);
		}
		sess_end(s, "Failed", err);
		return PH_ERR_IO;
	}
	log_info("event=shell_started session=%s pid=%d user=%s rows=%u "
	    "cols=%u", s->task.session_id, (int)s->pid, s->user.name,
	    sp.rows, sp.cols);
	if (uv_poll_init(s->ctx->loop, &s->poll, s->master) != 0) {
		log_error("event=pty_poll_failed session=%s",
		    s->task.session_id);
		sess_end(s, "Failed", "cannot watch the terminal");
		return PH_ERR_IO;
	}
	s->poll.data = s;
	s->poll_live = 1;
	/* spec 7.1: the shell profile is typed in right after start. */
	if (s->task.type == AGENT_ST_STANDARD && s->task.shell_profile) {
		if (buf_append_str(&s->in, s->task.shell_profile) != 0 ||
		    buf_append_u8(&s->in, '\n') != 0)
			log_warn("event=shell_profile_dropped session=%s",
			    s->task.session_id);
	}
	s->phase = PH_RUNNING;
	sess_update_poll(s);
	return 0;
}

/* ---- handshake and KMS encryption (spec 5, 6; logic in handshake.c) ---- */

static int
sess_hs_send(void *ud, uint32_t payload_type, const void *p, size_t n)
{
	struct agent_session *s = ud;

	return channel_send(s->ch, payload_type, p, n);
}

static void
sess_kms_done(void *ud, int rc, const uint8_t *key, const char *err)
{
	struct agent_session *s = ud;

	s->kms_job = NULL;
	if (s->phase != PH_CONNECTING || s->hs == NULL)
		return;
	agent_handshake_decrypted(s->hs, rc, key, err, sess_now());
	sess_hs_check(s);
}

static int
sess_hs_decrypt(void *ud, const struct agent_kms_request *rq, char *err,
    size_t errlen)
{
	struct agent_session *s = ud;
	int rc;

	/* On the thread pool: the loop keeps serving other sessions. */
	rc = agent_kms_decrypt_start(s->ctx->loop, s->ctx->st, rq,
	    sess_kms_done, s, &s->kms_job);
	if (rc != 0)
		snprintf(err, errlen, "cannot call KMS Decrypt: %s",
		    ph_strerror(rc));
	return rc;
}

static void
sess_hs_set_crypto(void *ud, struct sessioncrypt *sc)
{
	struct agent_session *s = ud;

	channel_set_crypto(s->ch, sc);
}

static const struct agent_hs_ops sess_hs_ops = {
	.send = sess_hs_send,
	.decrypt = sess_hs_decrypt,
	.set_crypto = sess_hs_set_crypto,
};

/* After every step of the handshake: start the shell once it is complete,
 * end the session (Failed, with the reason for the user) if it failed. No
 * Terminating first, so the gateway records the task's Failed status. */
static void
sess_hs_check(struct agent_session *s)
{
	if (s->hs == NULL || s->phase != PH_CONNECTING)
		return;
	switch (agent_handshake_state(s->hs)) {
	case AGENT_HS_DONE:
		sess_spawn(s);
		break;
	case AGENT_HS_FAILED:
		agent_session_terminate(s, "Failed",
		    agent_handshake_error(s->hs));
		break;
	default:
		break;
	}
}

static int
sess_new_handshake(struct agent_session *s)
{
	struct agent_hs_params p;

	if (!agent_handshake_needed(s->task.type, s->task.kms_key_id))
		return 0;
	memset(&p, 0, sizeof(p));
	p.session_id = s->task.session_id;
	p.instance_id = s->ctx->st->instance_id;
	p.type = s->task.type;
	p.kms_key_id = s->task.kms_key_id;
	p.agent_version = agent_version();
	if (s->task.type == AGENT_ST_PORT)
		p.properties = s->task.port_properties;
	return agent_handshake_new(&s->hs, &p, &sess_hs_ops, s);
}

static void
ws_on_open(struct ws *w)
{
	struct agent_session *s = ws_userdata(w);
	char rid[UUID_STR_LEN];
	json_t *o;
	char *js;
	int first;

	if (s == NULL || s->ws != w || s->phase >= PH_DRAINING)
		return;
	uuid_v4_str(rid);
	/* spec 2.3: OpenDataChannel first; mutual TLS authenticated us,
	 * so the token is empty (docs/decisions.md). */
	o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "MessageSchemaVersion",
	    "1.0", "RequestId", rid, "TokenValue", "", "ClientInstanceId",
	    s->ctx->st->instance_id, "ClientId", "");
	js = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (js == NULL || ws_send(w, WS_TEXT, js, strlen(js)) != 0) {
		free(js);
		ws_close(w, 1011, "cannot open the data channel");
		return;
	}
	free(js);
	ws_set_keepalive(w, SESS_KEEPALIVE_MS, SESS_KEEPALIVE_TIMEOUT_MS);
	first = !s->ws_ever_open;
	s->ws_open = 1;
	s->ws_ever_open = 1;
	s->bad_frames = 0;
	s->opened_ms = sess_now();
	/* spec 4.5: a reconnected agent publishes again. */
	s->paused = 0;
	log_info("event=data_channel_open session=%s reconnect=%d",
	    s->task.session_id, !first);
	if (first) {
		sess_send_state(s, "Connected");
		/* spec 5.1: no handshake without KMS (or a type that needs
		 * one); the shell starts at once. */
		if (s->phase == PH_CONNECTING && s->hs != NULL) {
			if (agent_handshake_start(s->hs, sess_now()) != 0)
				agent_handshake_fail(s->hs, "cannot start");
			sess_hs_check(s);
		} else if (s->phase == PH_CONNECTING)
			sess_spawn(s);
	} else {
		channel_resend_all(s->ch);
		sess_update_poll(s);
	}
}

/* spec 3.7 [R]: a client whose digests or lengths are wrong is served as
 * AWS's agent serves it; each fault is said once per session, at warn,
 * and counted in the session_end line. */
static void
sess_log_quirks(struct agent_session *s)
{
	unsigned q = channel_rx_quirks(s->ch);

	if ((q & CLIENTMSG_QUIRK_DIGEST) && !s->digest_logged) {
		s->digest_logged = 1;
		log_warn("event=client_digest_mismatch session=%s kind=%s "
		    "action=tolerated note=\"counted, logged once\"",
		    s->task.session_id, (q & CLIENTMSG_QUIRK_DIGEST_HEX) ?
		    "hex_prefix" : "other");
	}
	if ((q & (CLIENTMSG_QUIRK_LENGTH | CLIENTMSG_QUIRK_HEADER)) &&
	    !s->length_logged) {
		s->length_logged = 1;
		log_warn("event=client_length_mismatch session=%s "
		    "payload_length=%s header_length=%s action=tolerated "
		    "note=\"payload taken to the end of the message\"",
		    s->task.session_id,
		    (q & CLIENTMSG_QUIRK_LENGTH) ? "wrong" : "ok",
		    (q & CLIENTMSG_QUIRK_HEADER) ? "not_116" : "ok");
	}
}

static void
ws_on_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct agent_session *s = ws_userdata(w);
	int rc;

	/* AWS's agent reads text and binary messages alike (spec 3.7). */
	if (s == NULL || !s->ws_open ||
	    (opcode != WS_BINARY && opcode != WS_TEXT))
		return;
	rc = channel_receive(s->ch, p, n);
	if (rc != 0) {
		/* The frame is dropped (not acknowledged, so a sender with a
		 * transient fault resends it); only a stream of them ends
		 * the connection, whose reconnect is bounded. */
		log_warn("event=bad_frame session=%s len=%zu err=\"%s\"",
		    s->task.session_id, n, ph_strerror(rc));
		if (++s->bad_frames >= SESS_MAX_BAD_FRAMES)
			ws_close(w, 1007, "malformed ClientMessage");
		return;
	}
	sess_log_quirks(s);
	/* Acknowledgements may have freed room for more output. */
	if (s->ws == w)
		sess_update_poll(s);
}

static void
ws_on_drain(struct ws *w)
{
	struct agent_session *s = ws_userdata(w);

	if (s != NULL)
		sess_update_poll(s);
}

static void
ws_on_close(struct ws *w, int code)
{
	struct agent_session *s = ws_userdata(w);
	uint64_t now = sess_now(), delay;

	if (s == NULL || s->ws != w)
		return;
	s->ws = NULL;
	s->in_paused = 0;  /* the next connection starts reading */
	if (s->ws_open && now - s->opened_ms > AGENT_BACKOFF_RESET_MS) {
		agent_backoff_reset(&s->bo);
		s->tries = 0;
	}
	s->ws_open = 0;
	log_info("event=data_channel_closed session=%s code=%d",
	    s->task.session_id, code);
	if (s->phase == PH_CLOSED) {
		sess_maybe_free(s);
		return;
	}
	if (s->ws_final || s->phase == PH_REAPING)
		return;
	/* 1008: the gateway refused us (session over or not ours). */
	if (code == 1008 || ++s->tries > SESS_MAX_TRIES) {
		log_warn("event=data_channel_lost session=%s tries=%d code=%d",
		    s->task.session_id, s->tries, code);
		s->peer_gone = 1;
		sess_end(s, "Failed", "the data channel to portholed was lost");
		return;
	}
	delay = agent_backoff_next(&s->bo);
	s->retry_at = now + delay;
	log_info("event=data_channel_retry session=%s attempt=%d in_ms=%llu",
	    s->task.session_id, s->tries, (unsigned long long)delay);
}

static const struct ws_cbs sess_ws_cbs = {
	.on_open = ws_on_open,
	.on_message = ws_on_message,
	.on_drain = ws_on_drain,
	.on_close = ws_on_close,
};

static void
sess_dial(struct agent_session *s)
{
	char url[1400];
	int rc, n;

	s->retry_at = 0;
	n = snprintf(url, sizeof(url),
	    "%s/v1/data-channel/%s?role=publish_subscribe",
	    s->ctx->st->ws_base, s->task.session_id);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		sess_end(s, "Failed", "data channel URL too long");
		return;
	}
	rc = ws_dial(s->ctx->loop, s->ctx->tls, url, NULL, &sess_ws_cbs, s,
	    &s->ws);
	if (rc != 0) {
		s->ws = NULL;
		log_warn("event=data_channel_dial_failed session=%s err=\"%s\"",
		    s->task.session_id, ph_strerror(rc));
		if (++s->tries > SESS_MAX_TRIES) {
			sess_end(s, "Failed",
			    "cannot open the data channel to portholed");
			return;
		}
		s->retry_at = sess_now() + agent_backoff_next(&s->bo);
		return;
	}
	ws_set_max_message(s->ws, SESS_MAX_MESSAGE);
}

/* ---- stream in ----------------------------------------------------------- */

static int
sess_deliver(void *ud, uint32_t payload_type, const uint8_t *p, size_t n)
{
	struct agent_session *s = ud;
	unsigned short rows, cols;
	ssize_t w;

	/* spec 4.5: input from the client resumes publication. */
	s->paused = 0;
	if (s->hs != NULL && (payload_type == PT_HANDSHAKE_RESPONSE ||
	    payload_type == PT_ENC_CHALLENGE_RESPONSE)) {
		(void)agent_handshake_deliver(s->hs, payload_type, p, n,
		    sess_now());
		sess_hs_check(s);
		return 0;
	}
	if (s->task.type == AGENT_ST_PORT)
		return sess_port_deliver(s, payload_type, p, n);
	switch (payload_type) {
	case PT_OUTPUT:
		/* spec 4.3: before the handshake is complete, input is
		 * acknowledged and ignored; it never reaches the shell. */
		if (s->hs != NULL &&
		    agent_handshake_state(s->hs) != AGENT_HS_DONE)
			return 0;
		if (s->task.type == AGENT_ST_NONINTERACTIVE) {
			if (sess_rec(s, 'i', p, n) == 0)
				sess_ni_input(s, p, n);
			return 0;
		}
		if (s->phase == PH_CONNECTING || (s->phase == PH_RUNNING &&
		    s->master < 0))
			return PH_ERR_AGAIN; /* spec 7.1: not ready yet */
		if (s->phase != PH_RUNNING || s->master < 0 || n == 0)
			return 0; /* the shell is gone: drop */
		if (s->in.len + n > SESS_IN_MAX)
			return PH_ERR_AGAIN; /* the client resends later */
		/* As the client sent it, before the terminal: keys typed
		 * and erased are in the record. */
		if (sess_rec_input(s, p, n) != 0)
			return 0;
		if (s->in.len == 0) {
			w = write(s->master, p, n);
			if (w < 0 && errno != EAGAIN && errno != EINTR) {
				log_debug("event=pty_write_failed session=%s "
				    "err=\"%s\"", s->task.session_id,
				    strerror(errno));
				return 0;
			}
			if (w > 0) {
				p += w;
				n -= (size_t)w;
			}
		}
		if (n > 0 && buf_append(&s->in, p, n) != 0)
			return PH_ERR_AGAIN; /* not reached: checked above */
		if (s->in.len >= SESS_IN_SOFT && s->ws != NULL &&
		    !s->in_paused) {
			ws_pause_read(s->ws, 1);
			s->in_paused = 1;
		}
		sess_update_poll(s);
		return 0;
	case PT_SIZE:
		if (agent_pty_parse_size(p, n, &rows, &cols) != 0) {
			log_warn("event=bad_size session=%s",
			    s->task.session_id);
			return 0; /* acked: a resend would be as bad */
		}
		s->rows = rows;
		s->cols = cols;
		if (s->rec != NULL && agent_recorder_resize(s->rec, cols,
		    rows) != 0)
			sess_rec_failed(s);
		if (s->master >= 0 && agent_pty_resize(s->master, rows,
		    cols) != 0)
			log_warn("event=resize_failed session=%s",
			    s->task.session_id);
		if (s->phase == PH_CONNECTING && s->size_wait_until != 0)
			sess_spawn(s); /* the command waited for it */
		return 0;
	default:
		/* Handshake responses and flags need a handshake or a port
		 * session; neither exists here yet. */
		log_debug("event=ignored_payload session=%s type=%u",
		    s->task.session_id, payload_type);
		return 0;
	}
}

static void
sess_on_control(void *ud, const struct clientmsg *m)
{
	struct agent_session *s = ud;

	if (strcmp(m->type, MT_CHANNEL_CLOSED) == 0) {
		log_info("event=channel_closed session=%s via=data",
		    s->task.session_id);
		agent_session_terminate(s, "Success", "");
	} else if (strcmp(m->type, MT_PAUSE_PUBLICATION) == 0) {
		s->paused = 1;
		sess_update_poll(s);
	} else if (strcmp(m->type, MT_START_PUBLICATION) == 0) {
		s->paused = 0;
		sess_update_poll(s);
	} else {
		log_debug("event=ignored_message session=%s type=%s",
		    s->task.session_id, m->type);
	}
}

static const struct channel_cbs sess_channel_cbs = {
	.send_frame = sess_send_frame,
	.deliver = sess_deliver,
	.on_control = sess_on_control,
	.writable = sess_writable,
};

/* ---- stream out ---------------------------------------------------------- */

/* Send what was read, in chunks of at most SESS_OUT_FRAME cut on character
 * boundaries; an incomplete UTF-8 tail waits for the next read unless
 * the terminal is at its end or nothing came for a while (spec 7.1). */
static void
sess_flush_out(struct agent_session *s)
{
	size_t ready, chunk;
	int rc, all;

	all = s->pty_eof ||
	    sess_now() - s->last_read_ms >= SESS_HOLD_BACK_MS;
	while (s->out.len > 0) {
		ready = all ? s->out.len :
		    agent_utf8_complete_len(s->out.data, s->out.len);
		if (ready == 0)
			break;
		chunk = agent_utf8_chunk_len(s->out.data, ready,
		    SESS_OUT_FRAME);
		rc = channel_send(s->ch, PT_OUTPUT, s->out.data, chunk);
		if (rc == PH_ERR_AGAIN)
			break; /* resumes when acks make room */
		if (rc != 0)
			log_warn("event=output_dropped session=%s bytes=%zu "
			    "err=\"%s\"", s->task.session_id, chunk,
			    ph_strerror(rc));
		buf_consume(&s->out, chunk);
	}
}

static int
sess_can_read(struct agent_session *s)
{
	return s->phase == PH_RUNNING && !s->pty_eof && !s->paused &&
	    s->out.len < SESS_OUT_FRAME && channel_can_send(s->ch) &&
	    !sess_rec_full(s) &&
	    (s->ws == NULL || ws_write_pending(s->ws) < SESS_WS_HIGH_WATER);
}

static void
sess_pty_eof(struct agent_session *s)
{
	s->pty_eof = 1;
	sess_flush_out(s);
	log_debug("event=pty_eof session=%s", s->task.session_id);
}

static void
sess_read_pty(struct agent_session *s)
{
	size_t want;
	ssize_t r;
	int i;

	/* A few reads per wake-up, then back to the loop (fairness). A PTY
	 * read returns at most a few KiB: the reads of one wake-up are
	 * gathered into one frame, sent when the terminal has no more. */
	for (i = 0; i < 8 && sess_can_read(s); i++) {
		want = SESS_OUT_MAX - s->out.len;
		if (want > SESS_READ_MAX)
			want = SESS_READ_MAX;
		if (buf_reserve(&s->out, want) != 0)
			break;
		r = read(s->master, s->out.data + s->out.len, want);
		if (r > 0 && sess_rec(s, 'o', s->out.data + s->out.len,
		    (size_t)r) != 0)
			return; /* not recorded, not shown: the session ends */
		if (r > 0) {
			s->out.len += (size_t)r;
			s->last_read_ms = sess_now();
			continue;
		}
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		/* EIO: every holder of the terminal's slave side closed it,
		 * i.e. the shell and its children are gone. */
		sess_pty_eof(s);
		return;
	}
	sess_flush_out(s);
}

static void
sess_write_pty(struct agent_session *s)
{
	ssize_t w;

	while (s->in.len > 0) {
		w = write(s->master, s->in.data, s->in.len);
		if (w > 0) {
			buf_consume(&s->in, (size_t)w);
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		buf_reset(&s->in); /* the terminal is gone */
		break;
	}
	if (s->in_paused && s->in.len < SESS_IN_SOFT / 2) {
		s->in_paused = 0;
		if (s->ws != NULL)
			ws_pause_read(s->ws, 0);
	}
}

static void
sess_on_poll(uv_poll_t *h, int status, int events)
{
	struct agent_session *s = h->data;

	if (s->phase != PH_RUNNING || s->master < 0)
		return;
	if (status < 0) {
		log_warn("event=pty_poll_error session=%s err=\"%s\"",
		    s->task.session_id, uv_strerror(status));
		sess_pty_eof(s);
	} else {
		if (events & UV_WRITABLE)
			sess_write_pty(s);
		if (events & UV_READABLE)
			sess_read_pty(s);
	}
	sess_update_poll(s);
}

static void
sess_update_poll(struct agent_session *s)
{
	int want = 0, rc;

	/* The socket may take what waits in the channel now. */
	channel_flush(s->ch);
	if (s->pf != NULL) {
		if (s->phase == PH_RUNNING)
			portfwd_resume(s->pf);
		sess_port_pause(s);
		return;
	}
	if ((s->ni != NULL || s->ni_exit_pending) && s->phase == PH_RUNNING) {
		/* The channel may have room again: more output, or the exit
		 * code that waited. */
		agent_ni_resume(s->ni);
		sess_ni_send_exit(s);
		return;
	}
	if (s->phase == PH_RUNNING)
		sess_flush_out(s);
	if (!s->poll_live || s->phase == PH_CLOSED)
		return;
	if (sess_can_read(s))
		want |= UV_READABLE;
	if (s->in.len > 0 && !s->pty_eof && s->phase == PH_RUNNING)
		want |= UV_WRITABLE;
	if (want == s->poll_events)
		return;
	s->poll_events = want;
	rc = want ? uv_poll_start(&s->poll, want, sess_on_poll) :
	    uv_poll_stop(&s->poll);
	if (rc != 0) {
		log_warn("event=pty_poll_error session=%s err=\"%s\"",
		    s->task.session_id, uv_strerror(rc));
		sess_pty_eof(s);
	}
}

/* ---- ending -------------------------------------------------------------- */

static void
sess_signal(struct agent_session *s, int sig)
{
	pid_t fg;

	if (s->pid <= 0 || s->child_exited)
		return;
	/* The shell leads its own session and process group. */
	if (kill(-s->pid, sig) != 0 && errno == ESRCH)
		kill(s->pid, sig);
	/* Under job control the job in the terminal's foreground has a
	 * group of its own: it goes with the shell. Background jobs
	 * (nohup) survive, as after an ssh logout. */
	if (s->master >= 0 && (fg = tcgetpgrp(s->master)) > 1 &&
	    fg != s->pid)
		s->fg_pgrp = fg;
	if (s->fg_pgrp > 1)
		agent_pty_signal_group(s->pid, s->fg_pgrp, sig);
}

static void
sess_end(struct agent_session *s, const char *status, const char *output)
{
	uint64_t now = sess_now();

	if (s->phase >= PH_DRAINING)
		return;
	snprintf(s->status, sizeof(s->status), "%s", status);
	free(s->output);
	/* spec 8.3 keeps step output at 2500 characters; the same bound
	 * keeps a task result small. */
	s->output = strndup(output ? output : "", 2500);
	s->retry_at = 0;
	if (s->poll_live && s->poll_events) {
		uv_poll_stop(&s->poll);
		s->poll_events = 0;
	}
	if (s->pid > 0 && !s->child_exited) {
		sess_signal(s, SIGHUP);
		s->hup_sent = 1;
		s->kill_at = now + SESS_KILL_MS;
	}
	s->phase = PH_DRAINING;
	s->drain_until = s->peer_gone || !s->ws_open ? now :
	    now + (s->task.type == AGENT_ST_NONINTERACTIVE ?
	    SESS_NI_DRAIN_MS : SESS_DRAIN_MS);
}

/* Called on every tick while draining or reaping. */
static void
sess_progress_end(struct agent_session *s, uint64_t now)
{
	if (s->phase == PH_DRAINING) {
		if (s->out.len > 0 && !s->peer_gone)
			sess_flush_out(s);
		if (now < s->drain_until && s->ws_open &&
		    (s->out.len > 0 || channel_unacked(s->ch) > 0))
			return;
		/* spec 4.6 then 0.1: Terminating, close, task result. */
		if (!s->peer_gone)
			sess_send_state(s, "Terminating");
		if (s->ws != NULL) {
			s->ws_final = 1;
			s->ws_open = 0; /* nothing more goes out on it */
			ws_close(s->ws, 1000, "session ended");
		}
		sess_complete(s);
		s->phase = PH_REAPING;
		s->giveup_at = now + SESS_KILL_MS + SESS_REAP_GIVEUP_MS;
	}
	if (s->phase == PH_REAPING) {
		if (s->pid > 0 && !s->child_exited) {
			if (!s->hup_sent) {
				sess_signal(s, SIGHUP);
				s->hup_sent = 1;
				s->kill_at = now + SESS_KILL_MS;
			} else if (!s->kill_sent && now >= s->kill_at) {
				log_info("event=shell_kill session=%s pid=%d",
				    s->task.session_id, (int)s->pid);
				sess_signal(s, SIGKILL);
				s->kill_sent = 1;
			}
			if (now < s->giveup_at)
				return;
			log_warn("event=shell_not_reaped session=%s pid=%d",
			    s->task.session_id, (int)s->pid);
		}
		sess_close(s);
	}
}

static void
sess_reap(struct agent_session *s, uint64_t now)
{
	int st;
	pid_t r;

	if (s->pid <= 0 || s->child_exited)
		return;
	r = waitpid(s->pid, &st, WNOHANG);
	if (r == s->pid || (r < 0 && errno == ECHILD)) {
		s->child_exited = 1;
		s->child_status = r == s->pid ? st : 0;
		s->child_exit_ms = now;
		if (r == s->pid && WIFEXITED(st))
			log_info("event=shell_exit session=%s code=%d",
			    s->task.session_id, WEXITSTATUS(st));
		else if (r == s->pid && WIFSIGNALED(st))
			log_info("event=shell_exit session=%s signal=%d",
			    s->task.session_id, WTERMSIG(st));
	}
}

static void
sess_on_tick(uv_timer_t *t)
{
	struct agent_session *s = t->data;
	uint64_t now = sess_now();

	if (s->phase == PH_CLOSED)
		return;
	channel_tick(s->ch, now);
	if (s->hs != NULL && s->phase == PH_CONNECTING) {
		agent_handshake_tick(s->hs, now); /* spec 5.3 waits */
		sess_hs_check(s);
		if (s->phase == PH_CLOSED)
			return;
	}
	if (s->hs != NULL && s->phase < PH_DRAINING &&
	    channel_crypto_failures(s->ch) >= SESS_MAX_CRYPTO_FAILURES) {
		log_warn("event=crypto_failures session=%s",
		    s->task.session_id);
		agent_session_terminate(s, "Failed", "The client's input does "
		    "not decrypt with the session key.");
		return;
	}
	if (s->phase == PH_CONNECTING && s->size_wait_until != 0)
		sess_spawn(s); /* no Size came in time */
	if (s->pf != NULL && s->phase == PH_RUNNING)
		portfwd_tick(s->pf, now);
	if (s->rec != NULL && agent_recorder_tick(s->rec) != 0)
		sess_rec_failed(s);
	sess_reap(s, now);
	if (s->retry_at != 0 && now >= s->retry_at && s->ws == NULL &&
	    s->phase < PH_DRAINING)
		sess_dial(s);
	if (s->phase == PH_RUNNING) {
		if (s->child_exited && !s->pty_eof &&
		    now - s->child_exit_ms >= SESS_EXIT_GRACE_MS)
			sess_pty_eof(s);
		if (s->pty_eof)
			sess_end(s, "Success", "");
		else
			sess_update_poll(s);
	}
	if (s->phase == PH_DRAINING || s->phase == PH_REAPING)
		sess_progress_end(s, now);
}

void
agent_session_terminate(struct agent_session *s, const char *status,
    const char *output)
{
	if (s->phase >= PH_DRAINING)
		return;
	s->peer_gone = 1;
	sess_end(s, status, output);
	sess_progress_end(s, sess_now());
}

/* ---- start --------------------------------------------------------------- */

/* spec 7.6 and 9.2: whom the session runs as. */
static int
sess_pick_user(struct agent_session *s, char *err, size_t errlen)
{
	const struct agent_task *t = &s->task;
	int root = geteuid() == 0, rc;

	if (t->run_as_enabled) {
		if (!root) {
			snprintf(err, errlen, "RunAs needs the agent to run "
			    "as root");
			return PH_ERR_DENIED;
		}
		return agent_user_lookup(t->run_as_user, &s->user, err,
		    errlen);
	}
	if (!root)
		return agent_user_self(&s->user, err, errlen);
	if (t->run_as_elevated)
		return agent_user_self(&s->user, err, errlen);
	rc = agent_user_ensure_ssm_user(s->ctx->st->sudoers_entry, err,
	    errlen);
	if (rc != 0)
		return rc;
	return agent_user_lookup(AGENT_SSM_USER, &s->user, err, errlen);
}

int
agent_session_start(struct agent_session **out,
    const struct agent_ctx *ctx, struct agent_task *task,
    const struct agent_session_cbs *cbs, void *ud, char *err,
    size_t errlen)
{
	struct agent_session *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return PH_ERR_NOMEM;
	}
	s->ctx = ctx;
	s->cbs = cbs;
	s->ud = ud;
	s->master = -1;
	s->pid = -1;
	s->exit_code = -1;
	s->phase = PH_CONNECTING;
	buf_init(&s->out, SESS_OUT_MAX + 8);
	buf_init(&s->in, SESS_IN_MAX);
	agent_backoff_init(&s->bo, AGENT_BACKOFF_BASE_MS, AGENT_BACKOFF_CAP_MS);
	memcpy(&s->task, task, sizeof(*task));
	memset(task, 0, sizeof(*task)); /* transferred */
	/* spec 7.4: a port session runs no program and switches to no
	 * user; the record names the agent's. */
	if (s->task.type == AGENT_ST_PORT)
		rc = agent_user_self(&s->user, err, errlen);
	else
		rc = sess_pick_user(s, err, errlen);
	if (rc == 0 && s->task.type != AGENT_ST_PORT &&
	    (rc = agent_session_cmd_build(&s->cmd, &s->user,
	    s->task.type == AGENT_ST_INTERACTIVE ? s->task.commands :
	    NULL)) != 0)
		snprintf(err, errlen, "out of memory");
	if (rc == 0 && (rc = channel_new(&s->ch, CHANNEL_AGENT,
	    &sess_channel_cbs, s, NULL)) != 0)
		snprintf(err, errlen, "cannot set up the stream: %s",
		    ph_strerror(rc));
	if (rc == 0 && (rc = sess_new_handshake(s)) != 0)
		snprintf(err, errlen, "cannot set up the handshake: %s",
		    ph_strerror(rc));
	/* Last: a session that cannot be recorded does not start. */
	if (rc == 0 && (rc = sess_rec_open(s, err, errlen)) != 0)
		log_error("event=record_open_failed session=%s err=\"%s\"",
		    s->task.session_id, err);
	if (rc != 0) {
		memcpy(task, &s->task, sizeof(*task)); /* back to the caller */
		channel_free(s->ch);
		agent_handshake_free(s->hs);
		agent_session_cmd_free(&s->cmd);
		buf_free(&s->out);
		buf_free(&s->in);
		free(s);
		return rc;
	}
	uv_timer_init(ctx->loop, &s->tick);
	s->tick.data = s;
	s->tick_live = 1;
	uv_timer_start(&s->tick, sess_on_tick, SESS_TICK_MS, SESS_TICK_MS);
	log_info("event=session_start session=%s type=%s user=%s",
	    s->task.session_id, agent_session_type_name(s->task.type),
	    s->user.name);
	sess_dial(s);
	*out = s;
	return 0;
}
