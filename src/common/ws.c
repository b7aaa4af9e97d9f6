/* ws: RFC 6455 WebSocket over a struct conn, framed by wslay's event API
 * in both roles. Plaintext from the conn is handed to wslay through its
 * recv callback (which says "would block" once the bytes are used up);
 * wslay's send callback writes frames with conn_write, which only queues,
 * so wslay never holds a half-sent frame between our calls.
 *
 * A ws lives exactly as long as its conn: it is freed from the conn's
 * on_close, after the user's on_close. Its own timer and idle handles sit
 * in a separate allocation that is freed by their close callbacks. */
#include "common/ws.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proxy.h"

#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

/* RFC 6455 1.3: appended to Sec-WebSocket-Key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Bound on the 101 response head a client accepts. */
#define WS_MAX_RESPONSE_HEAD ((size_t)16 << 10)
#define WS_MAX_URL 4096
/* Fragments per message: wslay keeps one allocation per fragment, so
 * tiny fragments would multiply the memory a message may take. */
#define WS_MAX_FRAGMENTS 4096
/* Memory bound on our own queue, far above what a sender that respects
 * ws_write_pending ever queues (pongs to a ping flood reach it). */
#define WS_MAX_PENDING ((size_t)64 << 20)
/* A peer is "not reading" when our queue has not shrunk for this long:
 * a burst (a reconnect's resend) is not a stall, and a slow reader that
 * keeps taking bytes is not one either. Progress shows per write chunk
 * (conn's 512 KiB), so this also leaves room for slow links. */
#define WS_STALL_MS 120000
/* Client: TCP + TLS + the 101 must complete within this. */
#define WS_DIAL_TIMEOUT_MS 30000

/* RFC 6455 7.4.1 status codes used here. */
#define WS_CODE_PROTOCOL 1002
#define WS_CODE_NO_STATUS 1005
#define WS_CODE_TOO_BIG 1009
#define WS_CODE_ABNORMAL 1006

enum ws_state {
	WS_CONNECTING,  /* client: waiting for TCP/TLS and the 101 */
	WS_OPEN,
	WS_CLOSING,     /* close frame queued or received */
	WS_DEAD         /* on_close called */
};

struct ws_held {
	struct ws_held *next;
	int opcode;
	size_t len;
	uint8_t data[];
};

struct ws_aux {
	uv_timer_t timer;
	uv_idle_t idle;
	struct ws *w;
	int nclosing;
};

struct ws {
	struct conn *c;
	wslay_event_context_ptr ctx;
	struct ws_cbs cbs;
	void *ud;
	int server;
	enum ws_state state;
	int paused;
	int local_code;         /* ws_close's code, 0 if not called */
	int abnormal;           /* ended without a closing handshake */
	int proto_code;         /* we failed the connection with this */
	int too_many;           /* fragment limit hit inside wslay */
	unsigned nfrag;
	uint64_t dial_start;
	size_t max_msg;
	const uint8_t *in_p;    /* input not yet given to wslay */
	size_t in_n;
	struct ws_held *held;
	struct ws_held *held_tail;
	struct ws_aux *aux;
	unsigned ka_interval;
	unsigned ka_timeout;
	uint64_t last_recv;
	size_t wq_mark;         /* our queue when last looked at */
	uint64_t wq_moved;      /* when it last shrank or was empty */
	/* client handshake */
	http_parser rp;
	struct buf req;         /* the GET we send once connected */
	char accept[32];        /* the Sec-WebSocket-Accept we expect */
	struct buf hname;
	struct buf hvalue;
	struct buf status;      /* reason phrase, for logs */
	int in_value;
	size_t head_bytes;
	int hs_upgrade;
	int hs_connection;
	int hs_accept;
	int hs_failed;
	int hs_done;
	char *url;
};

static void ws_pump_send(struct ws *w);
static void ws_feed(struct ws *w, const uint8_t *p, size_t n);
static void ws_deliver_held(struct ws *w, int even_paused);

/* ---- shared helpers ----------------------------------------------------- */

int
ws_accept_key(const char *key, char out[32])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *m;
	int ok;

	if ((m = EVP_MD_CTX_new()) == NULL)
		return PH_ERR_NOMEM;
	ok = EVP_DigestInit_ex(m, EVP_sha1(), NULL) == 1 &&
	    EVP_DigestUpdate(m, key, strlen(key)) == 1 &&
	    EVP_DigestUpdate(m, WS_GUID, strlen(WS_GUID)) == 1 &&
	    EVP_DigestFinal_ex(m, md, &mdlen) == 1 && mdlen == 20;
	EVP_MD_CTX_free(m);
	if (!ok)
		return PH_ERR_CRYPTO;
	/* 20 bytes -> 28 characters + NUL. */
	EVP_EncodeBlock((unsigned char *)out, md, 20);
	return 0;
}

static const char *
ws_peer(const struct ws *w)
{
	if (w->url != NULL)
		return w->url;
	return conn_peer_addr(w->c);
}

/* ---- wslay callbacks ---------------------------------------------------- */

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *ud)
{
	struct ws *w = ud;
	size_t n;

	(void)flags;
	if (w->paused || w->in_n == 0 || w->too_many) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	n = len < w->in_n ? len : w->in_n;
	memcpy(buf, w->in_p, n);
	w->in_p += n;
	w->in_n -= n;
	return (ssize_t)n;
}

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *ud)
{
	struct ws *w = ud;

	(void)flags;
	if (conn_write(w->c, data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

/* Mask keys (RFC 6455 5.3) come from the CSPRNG, drawn 4 KiB at a time:
 * one RAND_bytes call per frame cost a quarter of a client's CPU. The keys
 * go out in clear anyway; they only must not be predictable. */
static int
ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
    void *ud)
{
	static _Thread_local uint8_t pool[4096];
	static _Thread_local size_t left;

	(void)ud;
	if (len > sizeof(pool))
		goto fail;
	if (left < len) {
		if (RAND_bytes(pool, sizeof(pool)) != 1)
			goto fail;
		left = sizeof(pool);
	}
	memcpy(buf, pool + sizeof(pool) - left, len);
	left -= len;
	return 0;
fail:
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static void
ws_on_frame_start_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *ud)
{
	struct ws *w = ud;

	(void)ctx;
	if (arg->opcode & 0x8)
		return;   /* control frames sit between fragments */
	if (arg->opcode != WSLAY_CONTINUATION_FRAME)
		w->nfrag = 0;
	if (++w->nfrag > WS_MAX_FRAGMENTS)
		w->too_many = 1;
}

static void
ws_hold(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct ws_held *h;

	if ((h = malloc(sizeof(*h) + n)) == NULL) {
		log_error("event=ws_hold_failed peer=%s err=\"out of memory\"",
		    ws_peer(w));
		conn_abort(w->c, PH_ERR_NOMEM);
		return;
	}
	h->next = NULL;
	h->opcode = opcode;
	h->len = n;
	if (n > 0)
		memcpy(h->data, p, n);
	if (w->held_tail != NULL)
		w->held_tail->next = h;
	else
		w->held = h;
	w->held_tail = h;
}

static void
ws_on_msg_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
	struct ws *w = ud;

	(void)ctx;
	switch (arg->opcode) {
	case WSLAY_TEXT_FRAME:
	case WSLAY_BINARY_FRAME:
		if (w->state != WS_OPEN)
			break;
		if (w->paused || w->held != NULL) {
			ws_hold(w, arg->opcode, arg->msg, arg->msg_length);
			break;
		}
		if (w->cbs.on_message != NULL)
			w->cbs.on_message(w, arg->opcode, arg->msg,
			    arg->msg_length);
		break;
	case WSLAY_CONNECTION_CLOSE:
		/* wslay has queued the answering close frame. */
		if (w->state == WS_OPEN)
			w->state = WS_CLOSING;
		break;
	default:
		break;   /* pings are answered by wslay; pongs only count */
	}
}

/* ---- lifetime ----------------------------------------------------------- */

static void
ws_aux_closed(uv_handle_t *h)
{
	struct ws_aux *a = h->data;

	if (--a->nclosing == 0)
		free(a);
}

static void
ws_free(struct ws *w)
{
	struct ws_held *h, *next;

	for (h = w->held; h != NULL; h = next) {
		next = h->next;
		free(h);
	}
	if (w->aux != NULL) {
		w->aux->w = NULL;
		w->aux->nclosing = 2;
		uv_close((uv_handle_t *)&w->aux->timer, ws_aux_closed);
		uv_close((uv_handle_t *)&w->aux->idle, ws_aux_closed);
	}
	if (w->ctx != NULL)
		wslay_event_context_free(w->ctx);
	buf_free(&w->req);
	buf_free(&w->hname);
	buf_free(&w->hvalue);
	buf_free(&w->status);
	free(w->url);
	free(w);
}

static void
ws_conn_on_close(struct conn *c, int err)
{
	struct ws *w = conn_userdata(c);
	int code;

	(void)err;
	/* Messages held while paused came before the end of the stream: a
	 * peer's last words (channel_closed among them) are delivered even
	 * though the user paused, as nothing will resume this connection. */
	ws_deliver_held(w, 1);
	if (w->ctx != NULL && wslay_event_get_close_received(w->ctx) &&
	    !w->abnormal)
		code = wslay_event_get_status_code_received(w->ctx);
	else if (w->abnormal)
		code = WS_CODE_ABNORMAL;
	else if (w->proto_code != 0)
		code = w->proto_code;
	else if (w->local_code != 0)
		code = w->local_code;
	else if (w->ctx != NULL && wslay_event_get_close_sent(w->ctx))
		code = wslay_event_get_status_code_sent(w->ctx);
	else
		code = WS_CODE_ABNORMAL;
	if (code == 0)
		code = WS_CODE_NO_STATUS;
	w->state = WS_DEAD;
	if (w->cbs.on_close != NULL)
		w->cbs.on_close(w, code);
	ws_free(w);
}

static void
ws_conn_on_drain(struct conn *c)
{
	struct ws *w = conn_userdata(c);

	if (w->state == WS_OPEN && w->cbs.on_drain != NULL)
		w->cbs.on_drain(w);
}

/* Fail the connection from our side (RFC 6455 7.1.7). wslay refuses to
 * run after a fatal error and has queued an empty close frame, so the
 * 1002 frame is written here directly: FIN+close, length 2, code. */
static void
ws_fail(struct ws *w, int code)
{
	uint8_t f[8];
	size_t n = 0;

	if (w->state == WS_DEAD)
		return;
	w->proto_code = code;
	w->state = WS_CLOSING;
	f[n++] = 0x88;
	if (w->server) {
		f[n++] = 0x02;
	} else {
		/* Client frames are masked; an all-zero key is allowed and
		 * leaves the payload as is (RFC 6455 5.3). */
		f[n++] = 0x82;
		memset(f + n, 0, 4);
		n += 4;
	}
	f[n++] = (uint8_t)(code >> 8);
	f[n++] = (uint8_t)code;
	(void)conn_write(w->c, f, n);
	conn_close(w->c);
}

/* ---- reading ------------------------------------------------------------ */

/* Held messages go to the user while the connection is open and also
 * once the peer's close frame came (they arrived before it); never after
 * our own ws_close or a protocol failure. */
static int
ws_may_deliver(const struct ws *w)
{
	return (w->state == WS_OPEN || w->state == WS_CLOSING) &&
	    w->local_code == 0 && w->proto_code == 0;
}

/* even_paused: the connection is ending, deliver whatever is held. */
static void
ws_deliver_held(struct ws *w, int even_paused)
{
	struct ws_held *h;

	while (w->held != NULL && (even_paused || !w->paused) &&
	    ws_may_deliver(w)) {
		h = w->held;
		w->held = h->next;
		if (w->held == NULL)
			w->held_tail = NULL;
		if (w->cbs.on_message != NULL)
			w->cbs.on_message(w, h->opcode, h->data, h->len);
		free(h);
	}
}

static void
ws_feed(struct ws *w, const uint8_t *p, size_t n)
{
	int r;

	if (w->state == WS_DEAD || w->proto_code != 0)
		return;
	if (w->held != NULL && !w->paused)
		ws_deliver_held(w, 0);
	if (w->paused) {
		conn_pause_read(w->c, 1);
		(void)conn_unread(w->c, p, n);
		return;
	}
	w->in_p = p;
	w->in_n = n;
	r = wslay_event_recv(w->ctx);
	if (r != 0 || w->too_many) {
		log_limited(LOG_INFO, "ws_protocol_error",
		    "event=ws_protocol_error peer=%s err=\"%s\"",
		    ws_peer(w), w->too_many ? "too many fragments" :
		    "bad frame");
		w->in_n = 0;
		ws_fail(w, w->too_many ? WS_CODE_TOO_BIG : WS_CODE_PROTOCOL);
		return;
	}
	if (w->in_n > 0 && wslay_event_get_read_enabled(w->ctx) &&
	    w->state != WS_DEAD) {
		/* Paused inside a callback: keep the rest for later. */
		conn_pause_read(w->c, 1);
		(void)conn_unread(w->c, w->in_p, w->in_n);
	}
	w->in_n = 0;
	w->in_p = NULL;
	ws_pump_send(w);
}

static void
ws_conn_on_read(struct conn *c, const uint8_t *p, size_t n)
{
	struct ws *w = conn_userdata(c);

	w->last_recv = uv_now(conn_loop(c));
	ws_feed(w, p, n);
}

/* Whether the peer has taken none of our queued bytes for WS_STALL_MS.
 * Looked at before each send and on the keep-alive timer, so a drain
 * between two looks is seen as progress. */
static int
ws_peer_stalled(struct ws *w)
{
	uint64_t now = uv_now(conn_loop(w->c));
	size_t pending = conn_write_pending(w->c);

	if (pending == 0 || pending < w->wq_mark || w->wq_moved == 0)
		w->wq_moved = now;
	w->wq_mark = pending;
	return now - w->wq_moved >= WS_STALL_MS;
}

static void
ws_pump_send(struct ws *w)
{
	int r;

	/* Sending from inside wslay_event_recv's callbacks is fine: wslay
	 * keeps the two directions apart, and sending at once keeps the
	 * order of messages and close frames as the caller made them. */
	if (w->state == WS_CONNECTING || w->state == WS_DEAD ||
	    w->proto_code != 0)
		return;
	if (ws_peer_stalled(w)) {
		log_warn("event=ws_peer_not_reading peer=%s pending=%zu "
		    "stalled_ms=%d", ws_peer(w), conn_write_pending(w->c),
		    WS_STALL_MS);
		w->abnormal = 1;
		w->state = WS_CLOSING;
		conn_abort(w->c, PH_ERR_EXPIRED);
		return;
	}
	if (wslay_event_want_write(w->ctx)) {
		r = wslay_event_send(w->ctx);
		if (r != 0) {
			log_info("event=ws_send_failed peer=%s err=%d",
			    ws_peer(w), r);
			w->abnormal = 1;
			conn_abort(w->c, PH_ERR_IO);
			return;
		}
	}
	w->wq_mark = conn_write_pending(w->c);
	if (w->wq_mark > WS_MAX_PENDING) {
		log_warn("event=ws_write_overflow peer=%s pending=%zu",
		    ws_peer(w), w->wq_mark);
		w->abnormal = 1;
		w->state = WS_CLOSING;
		conn_abort(w->c, PH_ERR_TOOBIG);
		return;
	}
	/* Our close frame is queued on the conn: the conn flushes it, says
	 * close_notify and closes. */
	if (wslay_event_get_close_sent(w->ctx)) {
		if (w->state == WS_OPEN)
			w->state = WS_CLOSING;
		conn_close(w->c);
	}
}

/* ---- timers ------------------------------------------------------------- */

static void
ws_on_idle(uv_idle_t *h)
{
	struct ws_aux *a = h->data;

	(void)uv_idle_stop(h);
	if (a->w != NULL && !a->w->paused)
		ws_deliver_held(a->w, 0);
}

static void
ws_on_keepalive(uv_timer_t *t)
{
	struct ws_aux *a = t->data;
	struct ws *w = a->w;
	struct wslay_event_msg m;
	uint64_t now;

	if (w == NULL)
		return;
	now = uv_now(t->loop);
	if (w->state == WS_CONNECTING) {
		if (now - w->dial_start >= WS_DIAL_TIMEOUT_MS) {
			log_warn("event=ws_dial_failed url=%s err=\"timed "
			    "out\"", ws_peer(w));
			w->abnormal = 1;
			w->state = WS_CLOSING;
			conn_abort(w->c, PH_ERR_EXPIRED);
		}
		return;
	}
	if (w->state != WS_OPEN || w->ka_interval == 0)
		return;
	if (conn_write_pending(w->c) > 0) {
		/* Nothing else may send for a while: look here too. */
		ws_pump_send(w);
		if (w->state != WS_OPEN)
			return;
	}
	if (w->paused) {
		/* Not reading by choice (backpressure): pongs wait unread, so
		 * silence proves nothing. */
		w->last_recv = now;
		return;
	}
	if (now - w->last_recv >= w->ka_timeout) {
		log_limited(LOG_INFO, "ws_keepalive_timeout",
		    "event=ws_keepalive_timeout peer=%s silent_ms=%llu",
		    ws_peer(w), (unsigned long long)(now - w->last_recv));
		w->abnormal = 1;
		w->state = WS_CLOSING;
		conn_abort(w->c, PH_ERR_EXPIRED);
		return;
	}
	m.opcode = WSLAY_PING;
	m.msg = (const uint8_t *)"keepalive";
	m.msg_length = 9;
	if (wslay_event_queue_msg(w->ctx, &m) == 0)
		ws_pump_send(w);
}

/* ---- construction ------------------------------------------------------- */

static struct ws *
ws_new(uv_loop_t *loop, int server, const struct ws_cbs *cbs, void *ud)
{
	struct wslay_event_callbacks wc = {
		.recv_callback = ws_recv_cb,
		.send_callback = ws_send_cb,
		.genmask_callback = ws_genmask_cb,
		.on_msg_recv_callback = ws_on_msg_cb,
		.on_frame_recv_start_callback = ws_on_frame_start_cb,
	};
	struct ws *w;
	int r;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->server = server;
	w->cbs = *cbs;
	w->ud = ud;
	w->max_msg = WS_MAX_MESSAGE_DEFAULT;
	buf_init(&w->req, WS_MAX_RESPONSE_HEAD);
	buf_init(&w->hname, WS_MAX_RESPONSE_HEAD);
	buf_init(&w->hvalue, WS_MAX_RESPONSE_HEAD);
	buf_init(&w->status, 256);
	if (server)
		r = wslay_event_context_server_init(&w->ctx, &wc, w);
	else
		r = wslay_event_context_client_init(&w->ctx, &wc, w);
	if (r != 0 || (w->aux = calloc(1, sizeof(*w->aux))) == NULL) {
		if (w->ctx != NULL)
			wslay_event_context_free(w->ctx);
		free(w);
		return NULL;
	}
	wslay_event_config_set_max_recv_msg_length(w->ctx, w->max_msg);
	w->aux->w = w;
	(void)uv_timer_init(loop, &w->aux->timer);
	(void)uv_idle_init(loop, &w->aux->idle);
	w->aux->timer.data = w->aux->idle.data = w->aux;
	w->last_recv = uv_now(loop);
	return w;
}

static const struct conn_cbs ws_conn_cbs = {
	.on_read = ws_conn_on_read,
	.on_drain = ws_conn_on_drain,
	.on_close = ws_conn_on_close,
};

struct ws *
ws_accept(struct conn *c, const struct ws_cbs *cbs, void *ud)
{
	struct ws *w;

	if (c == NULL || cbs == NULL)
		return NULL;
	if ((w = ws_new(conn_loop(c), 1, cbs, ud)) == NULL)
		return NULL;
	w->c = c;
	w->state = WS_OPEN;
	conn_set_cbs(c, &ws_conn_cbs, w);
	/* Liveness is the keep-alive's job from now on. */
	conn_set_idle_timeout(c, 0);
	conn_pause_read(c, 0);
	return w;
}

/* ---- client handshake --------------------------------------------------- */

static int
ws_has_token(const char *v, size_t vl, const char *token)
{
	size_t tl = strlen(token), i = 0, s, e;

	while (i < vl) {
		while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < vl && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
			return 1;
	}
	return 0;
}

static void
ws_hs_commit(struct ws *w)
{
	const char *n = (const char *)w->hname.data;
	const char *v = (const char *)w->hvalue.data;
	size_t nl = w->hname.len, vl = w->hvalue.len;

	if (nl == 0)
		return;
	if (nl == 7 && strncasecmp(n, "Upgrade", 7) == 0)
		w->hs_upgrade = ws_has_token(v, vl, "websocket");
	else if (nl == 10 && strncasecmp(n, "Connection", 10) == 0)
		w->hs_connection = ws_has_token(v, vl, "upgrade");
	else if (nl == 20 && strncasecmp(n, "Sec-WebSocket-Accept", 20) == 0)
		w->hs_accept = vl == strlen(w->accept) &&
		    memcmp(v, w->accept, vl) == 0;
	buf_reset(&w->hname);
	buf_reset(&w->hvalue);
	w->in_value = 0;
}

static int
ws_hs_count(struct ws *w, size_t n)
{
	if (n > WS_MAX_RESPONSE_HEAD - w->head_bytes)
		return -1;
	w->head_bytes += n;
	return 0;
}

static int
ws_hp_status(http_parser *p, const char *at, size_t n)
{
	struct ws *w = p->data;

	if (ws_hs_count(w, n) != 0)
		return -1;
	(void)buf_append(&w->status, at, n);  /* for the log; may truncate */
	return 0;
}

static int
ws_hp_field(http_parser *p, const char *at, size_t n)
{
	struct ws *w = p->data;

	if (w->in_value)
		ws_hs_commit(w);
	if (ws_hs_count(w, n + 4) != 0 || buf_append(&w->hname, at, n) != 0)
		return -1;
	return 0;
}

static int
ws_hp_value(http_parser *p, const char *at, size_t n)
{
	struct ws *w = p->data;

	w->in_value = 1;
	if (ws_hs_count(w, n) != 0 || buf_append(&w->hvalue, at, n) != 0)
		return -1;
	return 0;
}

static int
ws_hp_headers_complete(http_parser *p)
{
	struct ws *w = p->data;

	ws_hs_commit(w);
	w->hs_done = 1;
	if (p->status_code != 101 || !w->hs_upgrade || !w->hs_connection ||
	    !w->hs_accept) {
		w->hs_failed = 1;
		return -1;
	}
	/* Stop right behind the head: what follows is WebSocket. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings ws_hp_settings = {
	.on_status = ws_hp_status,
	.on_header_field = ws_hp_field,
	.on_header_value = ws_hp_value,
	.on_headers_complete = ws_hp_headers_complete,
};

static void
ws_client_on_open(struct conn *c)
{
	struct ws *w = conn_userdata(c);

	if (conn_write(c, w->req.data, w->req.len) != 0) {
		w->abnormal = 1;
		conn_abort(c, PH_ERR_IO);
	}
	buf_free(&w->req);
}

static void
ws_client_on_read(struct conn *c, const uint8_t *p, size_t n)
{
	struct ws *w = conn_userdata(c);
	enum http_errno e;
	size_t used;

	if (w->state != WS_CONNECTING) {
		ws_conn_on_read(c, p, n);
		return;
	}
	used = http_parser_execute(&w->rp, &ws_hp_settings, (const char *)p,
	    n);
	e = HTTP_PARSER_ERRNO(&w->rp);
	if (e == HPE_OK && !w->hs_done)
		return;   /* need more of the head */
	if (e != HPE_PAUSED || w->hs_failed) {
		if (w->hs_done)
			log_warn("event=ws_dial_failed url=%s status=%u "
			    "reason=\"%s\" err=\"%s\"", w->url,
			    w->rp.status_code, buf_cstr(&w->status),
			    w->rp.status_code != 101 ? "not 101" :
			    "bad upgrade headers or Sec-WebSocket-Accept");
		else
			log_warn("event=ws_dial_failed url=%s err=\"bad "
			    "response: %s\"", w->url,
			    http_errno_description(e));
		w->abnormal = 1;
		w->state = WS_CLOSING;
		conn_abort(c, PH_ERR_DENIED);
		return;
	}
	/* http-parser stops before the final LF of the head. */
	if (used < n && p[used] == '\n')
		used++;
	w->state = WS_OPEN;
	w->last_recv = uv_now(conn_loop(c));
	if (w->ka_interval == 0)
		(void)uv_timer_stop(&w->aux->timer);
	conn_set_cbs(c, &ws_conn_cbs, w);
	buf_free(&w->hname);
	buf_free(&w->hvalue);
	ws_pump_send(w);   /* messages queued before the 101 */
	if (w->cbs.on_open != NULL)
		w->cbs.on_open(w);
	if (used < n && w->state != WS_DEAD)
		ws_conn_on_read(c, p + used, n - used);
}

static const struct conn_cbs ws_client_conn_cbs = {
	.on_open = ws_client_on_open,
	.on_read = ws_client_on_read,
	.on_drain = ws_conn_on_drain,
	.on_close = ws_conn_on_close,
};

/* ws[s]://host[:port][/path][?query]; host may be [IPv6]. */
static int
ws_parse_url(const char *url, int *tls, char *host, size_t hostsz,
    int *port, const char **path)
{
	const char *p, *h, *he, *e;
	char *end;
	long v;

	if (strncasecmp(url, "wss://", 6) == 0) {
		*tls = 1;
		p = url + 6;
	} else if (strncasecmp(url, "ws://", 5) == 0) {
		*tls = 0;
		p = url + 5;
	} else
		return PH_ERR_INVALID;
	*port = *tls ? 443 : 80;
	e = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(e - p)) != NULL)
		return PH_ERR_INVALID;   /* no userinfo */
	if (*p == '[') {
		h = p + 1;
		if ((he = memchr(h, ']', (size_t)(e - h))) == NULL)
			return PH_ERR_INVALID;
		p = he + 1;
	} else {
		h = p;
		he = memchr(p, ':', (size_t)(e - p));
		if (he == NULL)
			he = e;
		p = he;
	}
	if (he == h || (size_t)(he - h) >= hostsz)
		return PH_ERR_INVALID;
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	if (p < e) {
		if (*p != ':' || p + 1 == e)
			return PH_ERR_INVALID;
		v = strtol(p + 1, &end, 10);
		if (end != e || v <= 0 || v > 65535)
			return PH_ERR_INVALID;
		*port = (int)v;
	}
	if (*e == '#')
		return PH_ERR_INVALID;
	*path = e;
	return 0;
}

int
ws_dial(uv_loop_t *loop, struct tls_ctx *ctx, const char *url,
    const char *extra_headers, const struct ws_cbs *cbs, void *ud,
    struct ws **out)
{
	unsigned char raw[16];
	char host[256], key[32];
	const char *path;
	struct ws *w = NULL;
	size_t el;
	int tls, port, rc, v6;

	*out = NULL;
	if (loop == NULL || url == NULL || cbs == NULL ||
	    strlen(url) > WS_MAX_URL)
		return PH_ERR_INVALID;
	if ((rc = ws_parse_url(url, &tls, host, sizeof(host), &port,
	    &path)) != 0) {
		log_warn("event=ws_dial_failed url=%s err=\"bad URL\"", url);
		return rc;
	}
	if (tls && ctx == NULL)
		return PH_ERR_INVALID;
	/* Header injection through the URL or the extra headers. */
	if (strpbrk(path, "\r\n ") != NULL || (extra_headers != NULL &&
	    strstr(extra_headers, "\r\n\r\n") != NULL))
		return PH_ERR_INVALID;
	if ((w = ws_new(loop, 0, cbs, ud)) == NULL)
		return PH_ERR_NOMEM;
	if ((w->url = strdup(url)) == NULL) {
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		rc = PH_ERR_CRYPTO;
		goto fail;
	}
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	if ((rc = ws_accept_key(key, w->accept)) != 0)
		goto fail;
	v6 = strchr(host, ':') != NULL;
	rc = buf_appendf(&w->req, "GET %s%s HTTP/1.1\r\nHost: %s%s%s",
	    *path == '/' ? "" : "/", path, v6 ? "[" : "", host, v6 ? "]" : "");
	if (rc == 0 && port != (tls ? 443 : 80))
		rc = buf_appendf(&w->req, ":%d", port);
	if (rc == 0)
		rc = buf_appendf(&w->req, "\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		    "Sec-WebSocket-Version: 13\r\n", key);
	if (rc == 0 && extra_headers != NULL && *extra_headers != '\0') {
		el = strlen(extra_headers);
		rc = buf_append(&w->req, extra_headers, el);
		if (rc == 0 && (el < 2 || extra_headers[el - 2] != '\r' ||
		    extra_headers[el - 1] != '\n'))
			rc = buf_append_str(&w->req, "\r\n");
	}
	if (rc == 0)
		rc = buf_append_str(&w->req, "\r\n");
	if (rc != 0)
		goto fail;
	http_parser_init(&w->rp, HTTP_RESPONSE);
	w->rp.data = w;
	w->state = WS_CONNECTING;
	/* The process's proxy settings (proxy_set_default) decide the
	 * route, as they do for libcurl. */
	rc = conn_dial_proxy(loop, tls ? ctx : NULL, host, port, NULL,
	    proxy_for(proxy_default(), host, port), &ws_client_conn_cbs, w,
	    &w->c);
	if (rc != 0)
		goto fail;
	w->dial_start = uv_now(loop);
	(void)uv_timer_start(&w->aux->timer, ws_on_keepalive,
	    WS_DIAL_TIMEOUT_MS, 0);
	*out = w;
	return 0;
fail:
	ws_free(w);
	return rc;
}

/* ---- public ------------------------------------------------------------- */

int
ws_send(struct ws *w, int opcode, const void *p, size_t n)
{
	struct wslay_event_msg m;
	int r;

	if (w == NULL || (w->state != WS_OPEN && w->state != WS_CONNECTING))
		return PH_ERR_STATE;
	if (opcode != WS_TEXT && opcode != WS_BINARY)
		return PH_ERR_INVALID;
	m.opcode = (uint8_t)opcode;
	m.msg = p;
	m.msg_length = n;
	if ((r = wslay_event_queue_msg(w->ctx, &m)) != 0)
		return r == WSLAY_ERR_NOMEM ? PH_ERR_NOMEM : PH_ERR_STATE;
	ws_pump_send(w);
	return 0;
}

void
ws_close(struct ws *w, uint16_t code, const char *reason)
{
	uint16_t wire;
	size_t rl;

	if (w == NULL || w->state == WS_DEAD || w->state == WS_CLOSING)
		return;
	w->local_code = code ? code : 1000;
	if (w->state == WS_CONNECTING) {
		w->state = WS_CLOSING;
		conn_close(w->c);
		return;
	}
	w->state = WS_CLOSING;
	rl = reason != NULL ? strlen(reason) : 0;
	if (rl > 123)
		rl = 123;   /* RFC 6455 5.5: control payload <= 125 */
	/* RFC 6455 7.4: 1004-1006 and 1015 never go on the wire, and peers
	 * (wslay among them) fail the connection on codes outside
	 * 1000-1011 and 3000-4999. on_close still reports our code. */
	wire = (uint16_t)w->local_code;
	if (!((wire >= 1000 && wire <= 1011 && wire != 1004 &&
	    wire != 1005 && wire != 1006) || (wire >= 3000 && wire <= 4999)))
		wire = 1000;
	(void)wslay_event_queue_close(w->ctx, wire, (const uint8_t *)reason,
	    rl);
	wslay_event_shutdown_read(w->ctx);
	ws_pump_send(w);
	if (!wslay_event_get_close_sent(w->ctx))
		conn_close(w->c);
}

void
ws_set_userdata(struct ws *w, void *ud)
{
	if (w != NULL)
		w->ud = ud;
}

void *
ws_userdata(const struct ws *w)
{
	return w != NULL ? w->ud : NULL;
}

void
ws_set_cbs(struct ws *w, const struct ws_cbs *cbs)
{
	if (w != NULL && cbs != NULL)
		w->cbs = *cbs;
}

void
ws_set_max_message(struct ws *w, size_t max)
{
	if (w == NULL || w->state == WS_DEAD)
		return;
	w->max_msg = max ? max : WS_MAX_MESSAGE_DEFAULT;
	wslay_event_config_set_max_recv_msg_length(w->ctx, w->max_msg);
}

void
ws_set_keepalive(struct ws *w, unsigned interval_ms, unsigned timeout_ms)
{
	if (w == NULL || w->state == WS_DEAD)
		return;
	w->ka_interval = interval_ms;
	w->ka_timeout = timeout_ms ? timeout_ms : 3 * interval_ms;
	(void)uv_timer_stop(&w->aux->timer);
	if (interval_ms == 0) {
		if (w->state == WS_CONNECTING)
			(void)uv_timer_start(&w->aux->timer, ws_on_keepalive,
			    WS_DIAL_TIMEOUT_MS, 0);
		return;
	}
	w->last_recv = uv_now(w->aux->timer.loop);
	(void)uv_timer_start(&w->aux->timer, ws_on_keepalive, interval_ms,
	    interval_ms);
}

size_t
ws_write_pending(const struct ws *w)
{
	if (w == NULL || w->state == WS_DEAD)
		return 0;
	return conn_write_pending(w->c) +
	    wslay_event_get_queued_msg_length(w->ctx);
}

void
ws_pause_read(struct ws *w, int pause)
{
	if (w == NULL || w->state == WS_DEAD)
		return;
	w->paused = pause != 0;
	conn_pause_read(w->c, w->paused);
	if (!w->paused && w->held != NULL)
		(void)uv_idle_start(&w->aux->idle, ws_on_idle);
}

struct conn *
ws_conn(const struct ws *w)
{
	return w != NULL ? w->c : NULL;
}
