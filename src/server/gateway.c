/* gateway: agents' control channels and the relay of session data channels.
 *
 * Each session has one relay record (struct relay) pairing the agent's data
 * channel with the client's. Frames are checked for a sane header
 * (clientmsg_peek) and forwarded as they are: sequence numbers, acks and
 * retransmission are end to end between client and agent (spec 4), so the
 * gateway keeps only a small bounded queue for a side that is not attached
 * yet and relies on the endpoints' retransmission for the rest.
 *
 * Lifetimes. The gateway owns every relay (through its map), every data
 * channel and every control channel (through its lists); a WebSocket's
 * on_close frees the channel it carries, and nothing else does. A relay is
 * freed in one place only, gw_reap_relays() on the tick timer, where no
 * relay function is on the stack: once it is final and neither side points
 * at it. Callbacks may therefore finish a relay, detach from it or close
 * its channels in any order and any number of times; a relay they hold
 * stays valid until the callback returns. */
#include "server/gateway.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>
#include <time.h>

#include "common/clientmsg.h"
#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"
#include "common/ws.h"
#include "server/audit.h"
#include "server/authz.h"
#include "server/commands.h"
#include "server/instance_principal.h"
#include "server/store.h"
#include "server/strmap.h"

/* spec 10.4 [R]: data-channel payloads <= 64 KiB (+28 when encrypted). */
#define GW_MAX_DATA_PAYLOAD ((size_t)64 * 1024 + 28)
#define GW_MAX_DATA_MESSAGE (GW_MAX_DATA_PAYLOAD + CLIENTMSG_PAYLOAD_OFFSET)
#define GW_MAX_CONTROL_MESSAGE ((size_t)1 << 20)
/* A side that is not attached yet gets at most this much queued. */
#define GW_QUEUE_MAX_FRAMES 512
#define GW_QUEUE_MAX_BYTES ((size_t)2 << 20)
/* Stop reading a sender while its receiver has this much unsent. */
#define GW_HIGH_WATER ((size_t)4 << 20)
/* How long a session waits for a vanished side to come back. */
/* How long a session waits for a side that went away; config.json's
 * AgentReconnectGraceSeconds / ClientReconnectGraceSeconds override. */
#define GW_AGENT_GRACE_MS 30000
#define GW_CLIENT_GRACE_MS 120000
#define GW_GRACE_MAX_S 86400
#define GW_KEEPALIVE_MS 30000
#define GW_CTL_PING_MS 120000
#define GW_KEEPALIVE_TIMEOUT_MS 90000
#define GW_PING_REFRESH_MS 60000
/* Deadlines (grace, idle, maximum duration) are checked this often. */
#define GW_TICK_MS 500
/* spec 9.1: idleSessionTimeout default 20 minutes, range 1-60. */
#define GW_IDLE_DEFAULT_MIN 20

enum side { SIDE_AGENT, SIDE_CLIENT };

struct qframe {
	struct qframe *next;
	size_t len;
	uint8_t data[];
};

struct frameq {
	struct qframe *head, *tail;
	size_t n, bytes;
};

struct relay;

/* One WebSocket on /v1/data-channel/<session-id>. */
struct dchan {
	struct gateway *gw;
	struct dchan *prev, *next; /* gw->dchans: every open data channel */
	struct ws *ws;
	enum side side;
	char session_id[SESSION_ID_MAX];
	char peer_cn[64];
	struct relay *r;          /* set once OpenDataChannel was accepted */
	int closing;
};

struct relay {
	struct gateway *gw;
	char session_id[SESSION_ID_MAX];
	char target[64];
	struct dchan *agent, *client;
	struct frameq to_agent, to_client;
	uint64_t grace_deadline;  /* loop ms; 0 = both sides present */
	uint64_t idle_ms;         /* 0 = no idle limit */
	uint64_t last_activity;   /* loop ms of the last new stream frame */
	/* Highest stream sequence number relayed from each side (SIDE_*),
	 * -1 before the first: a retransmission is not activity. */
	int64_t top_seq[2];
	uint64_t max_deadline;    /* loop ms; 0 = no maximum duration */
	int client_seen;          /* a client attached at least once */
	int ending;               /* Terminating: the agent is finishing */
	int final;                /* a terminal status is recorded */
};

/* One agent's control channel. */
struct ctl {
	struct gateway *gw;
	struct ctl *prev, *next;  /* gw->ctl_list: every open control channel */
	struct ws *ws;
	char instance_id[64];
	int registered;           /* OpenControlChannel accepted */
};

struct gateway {
	struct server *srv;
	struct strmap *ctls;      /* instance id -> struct ctl */
	struct strmap *relays;    /* session id -> struct relay (owned) */
	struct dchan *dchans;     /* every data channel not yet closed */
	struct ctl *ctl_list;     /* every control channel not yet closed */
	uv_timer_t ping_refresh;
	uv_timer_t tick;
	int capture_fd;           /* PORTHOLED_RELAY_CAPTURE, or -1 */
	uint64_t agent_grace_ms;
	uint64_t client_grace_ms;
	int timers_closing;       /* close callbacks still to come */
	int shutting_down;
	int draining;             /* shutting down, sessions kept open */
};

static int64_t
gw_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- frame queue --------------------------------------------------------- */

static int
frameq_push(struct frameq *q, const uint8_t *p, size_t n)
{
	struct qframe *f;

	if (q->n >= GW_QUEUE_MAX_FRAMES || q->bytes + n > GW_QUEUE_MAX_BYTES)
		return PH_ERR_TOOBIG; /* the sender retransmits later */
	f = malloc(sizeof(*f) + n);
	if (f == NULL)
		return PH_ERR_NOMEM;
	f->next = NULL;
	f->len = n;
	memcpy(f->data, p, n);
	if (q->tail)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->n++;
	q->bytes += n;
	return 0;
}

static void
frameq_clear(struct frameq *q)
{
	struct qframe *f, *next;

	for (f = q->head; f != NULL; f = next) {
		next = f->next;
		free(f);
	}
	memset(q, 0, sizeof(*q));
}

static void
frameq_flush(struct frameq *q, struct ws *w)
{
	struct qframe *f, *next;

	for (f = q->head; f != NULL; f = next) {
		next = f->next;
		ws_send(w, WS_BINARY, f->data, f->len);
		free(f);
	}
	memset(q, 0, sizeof(*q));
}

/* ---- frames the gateway originates (spec 3.5) ---------------------------- */

static int
gw_send_frame(struct ws *w, const char *type, const char *payload)
{
	uint8_t id[16];
	struct buf b;
	int rc;

	if (w == NULL)
		return PH_ERR_STATE;
	uuid_v4(id);
	buf_init(&b, GW_MAX_CONTROL_MESSAGE);
	rc = clientmsg_encode(&b, type, 0, CLIENTMSG_FLAG_SYN | CLIENTMSG_FLAG_FIN,
	    id, PT_NONE, payload, strlen(payload));
	if (rc == 0)
		rc = ws_send(w, WS_BINARY, b.data, b.len);
	buf_free(&b);
	return rc;
}

static void
gw_iso8601(char *out, size_t n)
{
	struct timespec ts;
	struct tm tm;
	size_t len;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	if (len > 0 && len < n)
		snprintf(out + len, n - len, ".%03dZ",
		    (int)(ts.tv_nsec / 1000000));
}

/* ChannelClosed JSON (spec 3.5). SessionStatus is a porthole extension the
 * official plugin ignores; porthole's client exits non-zero on "Failed". */
static char *
gw_channel_closed_json(const char *session_id, const char *target,
    const char *output, const char *status)
{
	char id[UUID_STR_LEN], when[40];
	json_t *o;
	char *s;

	uuid_v4_str(id);
	gw_iso8601(when, sizeof(when));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s}",
	    "MessageId", id, "CreatedDate", when, "DestinationId", target,
	    "SessionId", session_id, "MessageType", MT_CHANNEL_CLOSED,
	    "SchemaVersion", 1, "Output", output ? output : "",
	    "SessionStatus", status ? status : "Terminated");
	if (o == NULL)
		return NULL;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

/* ---- relays -------------------------------------------------------------- */

/* Only gw_reap_relays() and gateway_free() call this (see the top). */
static void
relay_free(struct relay *r)
{
	strmap_del(r->gw->relays, r->session_id, r);
	frameq_clear(&r->to_agent);
	frameq_clear(&r->to_client);
	free(r);
}

static int
relay_reapable(const struct relay *r)
{
	return r->final && r->agent == NULL && r->client == NULL;
}

static struct relay *
relay_get(struct gateway *gw, const char *session_id, const char *target)
{
	struct relay *r = strmap_get(gw->relays, session_id);

	if (r != NULL)
		return r;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->gw = gw;
	snprintf(r->session_id, sizeof(r->session_id), "%s", session_id);
	snprintf(r->target, sizeof(r->target), "%s", target);
	r->last_activity = uv_now(gw->srv->loop);
	r->top_seq[0] = r->top_seq[1] = -1;
	if (strmap_put(gw->relays, session_id, r, NULL) != 0) {
		free(r);
		return NULL;
	}
	return r;
}

/* A side is missing: end the session unless it is back within ms. */
static void
relay_arm_grace(struct relay *r, uint64_t ms)
{
	if (!r->final)
		r->grace_deadline = uv_now(r->gw->srv->loop) + ms;
}

static void
relay_disarm_grace(struct relay *r)
{
	r->grace_deadline = 0;
}

static void
dchan_link(struct dchan *d)
{
	struct gateway *gw = d->gw;

	d->prev = NULL;
	d->next = gw->dchans;
	if (gw->dchans != NULL)
		gw->dchans->prev = d;
	gw->dchans = d;
}

static void
dchan_unlink(struct dchan *d)
{
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		d->gw->dchans = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	d->prev = d->next = NULL;
}

static void
ctl_link(struct ctl *c)
{
	struct gateway *gw = c->gw;

	c->prev = NULL;
	c->next = gw->ctl_list;
	if (gw->ctl_list != NULL)
		gw->ctl_list->prev = c;
	gw->ctl_list = c;
}

static void
ctl_unlink(struct ctl *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->gw->ctl_list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void
dchan_close(struct dchan *d, uint16_t code, const char *reason)
{
	if (d == NULL || d->closing)
		return;
	d->closing = 1;
	ws_close(d->ws, code, reason);
}

/* Record the end of a session and tell whoever is attached. */
static void
relay_finish(struct relay *r, const char *status, const char *reason,
    const char *output, int tell_agent)
{
	struct ctl *c;
	char *cc;

	if (r->final)
		return;
	r->final = 1;
	r->grace_deadline = 0;
	store_session_set_status(r->gw->srv->store, r->session_id, status,
	    reason ? reason : "", gw_now_ms());
	log_info("event=session_end session=%s target=%s status=%s reason=\"%s\"",
	    r->session_id, r->target, status, reason ? reason : "");
	cc = gw_channel_closed_json(r->session_id, r->target, output, status);
	if (cc != NULL) {
		if (r->client) {
			gw_send_frame(r->client->ws, MT_CHANNEL_CLOSED, cc);
			dchan_close(r->client, 1000, "session ended");
		}
		if (r->agent) {
			gw_send_frame(r->agent->ws, MT_CHANNEL_CLOSED, cc);
			dchan_close(r->agent, 1000, "session ended");
		}
		/* spec 8.4: channel_closed on the control channel terminates
		 * the session on the agent even if its data channel is gone. */
		c = strmap_get(r->gw->ctls, r->target);
		if (tell_agent && c != NULL && c->registered)
			gw_send_frame(c->ws, MT_CHANNEL_CLOSED, cc);
		free(cc);
	}
}

static void
relay_check_deadlines(struct relay *r, uint64_t now)
{
	if (r->final)
		return;
	if (r->max_deadline && now >= r->max_deadline) {
		relay_finish(r, "Terminated", "maximum session duration reached",
		    "Your session has reached its maximum duration and has "
		    "been terminated.", 1);
		return;
	}
	if (r->idle_ms && now - r->last_activity >= r->idle_ms) {
		relay_finish(r, "Terminated", "idle session timeout",
		    "Your session timed out due to inactivity and has been "
		    "terminated.", 1);
		return;
	}
	if (r->grace_deadline == 0 || now < r->grace_deadline)
		return;
	if (r->agent == NULL)
		relay_finish(r, "Failed", "the agent did not reconnect",
		    "The session's agent disconnected and did not come back.",
		    1);
	else if (r->client == NULL)
		relay_finish(r, "Terminated", "the client did not reconnect",
		    NULL, 1);
}

/* ---- the agent's permissions ------------------------------------------- */

/* May the instance (as its role) perform each of actions[] on resource?
 * 0, or PH_ERR_DENIED with AWS's message in why and one rate-limited log
 * line naming the principal and the action (what an operator needs to
 * fix the role); another error if the instance is gone. */
static int
gw_instance_allowed(struct gateway *gw, const char *instance_id,
    const char *peer_ip, const char *const *actions, const char *resource,
    char *why, size_t whylen)
{
	struct principal *p;
	size_t i;
	int rc, d;

	why[0] = '\0';
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return PH_ERR_NOMEM;
	rc = instance_principal(gw->srv, instance_id, peer_ip, p);
	for (i = 0; rc == 0 && actions[i] != NULL; i++) {
		d = authz_decide(gw->srv, p, actions[i], resource, NULL, 0);
		if (d == POLICY_ALLOW)
			continue;
		rc = PH_ERR_DENIED;
		if (d == POLICY_DENY_EXPLICIT)
			snprintf(why, whylen, "User: %s is not authorized to "
			    "perform: %s on resource: %s with an explicit deny "
			    "in an identity-based policy", p->arn, actions[i],
			    resource);
		else
			snprintf(why, whylen, "User: %s is not authorized to "
			    "perform: %s on resource: %s because no "
			    "identity-based policy allows the %s action",
			    p->arn, actions[i], resource, actions[i]);
		log_limited(LOG_WARN, "instance_denied",
		    "event=instance_denied instance=%s principal=%s "
		    "action=%s resource=%s addr=%s", instance_id, p->arn,
		    actions[i], resource, peer_ip != NULL ? peer_ip : "-");
	}
	free(p);
	return rc;
}

/* ---- data channels ------------------------------------------------------- */

static struct dchan *
relay_peer(struct dchan *d)
{
	return d->side == SIDE_AGENT ? d->r->client : d->r->agent;
}

static void
dchan_on_drain(struct ws *w)
{
	struct dchan *d = ws_userdata(w), *peer;

	if (d == NULL || d->r == NULL)
		return;
	/* Our queue drained: let the other side send again. */
	peer = relay_peer(d);
	if (peer != NULL)
		ws_pause_read(peer->ws, 0);
}

static void
dchan_agent_state(struct dchan *d, const struct clientmsg *m)
{
	json_error_t jerr;
	const char *state = NULL;
	json_t *o;

	o = json_loadb((const char *)m->payload, m->payload_len, 0, &jerr);
	if (o == NULL || json_unpack(o, "{s:s}", "SessionState", &state) != 0) {
		log_warn("event=bad_session_state session=%s", d->session_id);
		json_decref(o);
		return;
	}
	if (strcmp(state, "Terminating") == 0 && !d->r->final) {
		d->r->ending = 1;
		store_session_set_status(d->gw->srv->store, d->session_id,
		    "Terminating", "", gw_now_ms());
	}
	json_decref(o);
}

/* Test diagnostics only: PORTHOLED_RELAY_CAPTURE=FILE appends every relayed
 * data-channel frame as "A>" or "C>" (who sent it), a 4-byte big-endian
 * length and the frame, so tests can prove what the relay could see (an
 * encrypted session's text must not appear). Off unless the variable is
 * set; the file holds session data, so it is created 0600. */
static void
gw_capture(struct gateway *gw, enum side from, const uint8_t *p, size_t n)
{
	uint8_t head[6] = { from == SIDE_AGENT ? 'A' : 'C', '>',
	    (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
	    (uint8_t)n };

	if (write(gw->capture_fd, head, sizeof(head)) != (ssize_t)sizeof(head) ||
	    write(gw->capture_fd, p, n) != (ssize_t)n)
		log_warn("event=relay_capture_failed");
}

/* Forward one frame as it is. The checks are the agent's (spec 3.7 [R],
 * clientmsg_peek): a wrong digest or PayloadLength is the endpoints'
 * business, so the relay passes whatever the agent accepts. A text frame
 * is a ClientMessage too (AWS's agent reads both kinds alike); one that
 * is not one is dropped, as text after OpenDataChannel always was. */
static void
dchan_relay(struct dchan *d, int text, const uint8_t *p, size_t n)
{
	struct relay *r = d->r;
	struct clientmsg m;
	struct dchan *peer;
	int rc;

	rc = clientmsg_peek(&m, p, n, GW_MAX_DATA_PAYLOAD);
	if (rc != 0 && text) {
		log_debug("event=text_frame_ignored session=%s side=%s "
		    "bytes=%zu", d->session_id, d->side == SIDE_AGENT ? "agent" : "client",
		    n);
		return;
	}
	if (rc != 0) {
		log_limited(LOG_WARN, "bad_frame",
		    "event=bad_frame session=%s side=%s err=\"%s\"",
		    d->session_id, d->side == SIDE_AGENT ? "agent" : "client",
		    ph_strerror(rc));
		dchan_close(d, 1007, "malformed ClientMessage");
		return;
	}
	/* spec 0 / 3.3: agent_session_state is for the gateway only. */
	if (d->side == SIDE_AGENT &&
	    strcmp(m.type, MT_AGENT_SESSION_STATE) == 0) {
		dchan_agent_state(d, &m);
		return;
	}
	if (r->final)
		return;
	/* New stream data in either direction is activity; acks, pings and
	 * retransmissions are not, so an idle session with a quiet shell
	 * does time out. (AWS's plugin drops a duplicate without acking it:
	 * a message whose ack was lost in a network cut is resent for the
	 * rest of the session, docs/conformance.md.) */
	if (m.payload_type != PT_NONE && m.seq > r->top_seq[d->side]) {
		r->top_seq[d->side] = m.seq;
		r->last_activity = uv_now(d->gw->srv->loop);
	}
	if (d->gw->capture_fd >= 0)
		gw_capture(d->gw, d->side, p, n);
	peer = relay_peer(d);
	if (peer == NULL || peer->closing) {
		frameq_push(d->side == SIDE_AGENT ? &r->to_client :
		    &r->to_agent, p, n);
		return;
	}
	ws_send(peer->ws, WS_BINARY, p, n);
	if (ws_write_pending(peer->ws) > GW_HIGH_WATER)
		ws_pause_read(d->ws, 1);
}

static int
dchan_open_agent(struct dchan *d, json_t *o)
{
	struct gateway *gw = d->gw;
	struct session_rec rec;
	struct relay *r;

	(void)o; /* mTLS already named the instance (checked at upgrade) */
	if (store_session_get(gw->srv->store, d->session_id, &rec) != 0 ||
	    strcmp(rec.target, d->peer_cn) != 0 || rec.end_ms != 0)
		return PH_ERR_DENIED;
	r = relay_get(gw, d->session_id, rec.target);
	if (r == NULL || r->final)
		return PH_ERR_STATE;
	if (r->agent != NULL && r->agent != d) {
		struct dchan *old = r->agent;

		old->r = NULL; /* replaced by the reconnected channel */
		r->agent = NULL;
		dchan_close(old, 1000, "replaced");
	}
	d->r = r;
	r->agent = d;
	if (r->client != NULL)
		relay_disarm_grace(r);
	else
		relay_arm_grace(r, r->gw->client_grace_ms);
	frameq_flush(&r->to_agent, d->ws);
	conn_set_authenticated(ws_conn(d->ws));
	log_info("event=data_channel_open side=agent session=%s", d->session_id);
	return 0;
}

static int
dchan_open_client(struct dchan *d, json_t *o)
{
	struct gateway *gw = d->gw;
	struct session_rec rec;
	const char *token = NULL;
	struct relay *r;

	if (json_unpack(o, "{s:s}", "TokenValue", &token) != 0)
		return PH_ERR_INVALID;
	if (store_session_get(gw->srv->store, d->session_id, &rec) != 0 ||
	    rec.end_ms != 0)
		return PH_ERR_DENIED;
	if (store_session_consume_token(gw->srv->store, d->session_id, token,
	    gw_now_ms()) != 0)
		return PH_ERR_DENIED;
	r = relay_get(gw, d->session_id, rec.target);
	if (r == NULL || r->final)
		return PH_ERR_STATE;
	if (r->client != NULL && r->client != d) {
		struct dchan *old = r->client;

		old->r = NULL;
		r->client = NULL;
		dchan_close(old, 1000, "replaced");
	}
	d->r = r;
	r->client = d;
	if (r->agent != NULL) {
		relay_disarm_grace(r);
		if (r->client_seen)
			gw_send_frame(r->agent->ws, MT_START_PUBLICATION, "{}");
	}
	r->client_seen = 1;
	frameq_flush(&r->to_client, d->ws);
	conn_set_authenticated(ws_conn(d->ws));
	log_info("event=data_channel_open side=client session=%s",
	    d->session_id);
	return 0;
}

static void
dchan_on_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct dchan *d = ws_userdata(w);
	json_error_t jerr;
	json_t *o;
	int rc;

	if (d == NULL || d->closing)
		return;
	if (d->r != NULL) {
		if (opcode == WS_BINARY || opcode == WS_TEXT)
			dchan_relay(d, opcode == WS_TEXT, p, n);
		return;
	}
	/* spec 2.1/2.3: the first message is the OpenDataChannel text. */
	if (opcode != WS_TEXT ||
	    (o = json_loadb((const char *)p, n, 0, &jerr)) == NULL ||
	    !json_is_object(o)) {
		log_limited(LOG_WARN, "data_channel_refused",
		    "event=data_channel_refused session=%s reason=\"no OpenDataChannel\"",
		    d->session_id);
		audit_channel(d->gw->srv, "OpenDataChannel", d->side ==
		    SIDE_AGENT ? d->peer_cn : NULL, d->session_id,
		    conn_peer_addr(ws_conn(d->ws)), NULL, "InvalidRequest",
		    "expected OpenDataChannel");
		dchan_close(d, 1008, "expected OpenDataChannel");
		return;
	}
	rc = d->side == SIDE_AGENT ? dchan_open_agent(d, o) :
	    dchan_open_client(d, o);
	json_decref(o);
	/* The data channel's audit event: OpenDataChannel decides it. */
	audit_channel(d->gw->srv, "OpenDataChannel", d->side == SIDE_AGENT ?
	    d->peer_cn : NULL, d->session_id, conn_peer_addr(ws_conn(d->ws)),
	    NULL, rc != 0 ? "AccessDeniedException" : NULL, rc != 0 ?
	    "Session is already terminated or the token is invalid" : NULL);
	if (rc != 0) {
		log_limited(LOG_WARN, "data_channel_refused",
		    "event=data_channel_refused session=%s side=%s err=\"%s\"",
		    d->session_id, d->side == SIDE_AGENT ? "agent" : "client",
		    ph_strerror(rc));
		dchan_close(d, 1008, "Session is already terminated or the token is invalid");
	}
}

static void
dchan_on_close(struct ws *w, int code)
{
	struct dchan *d = ws_userdata(w);
	struct relay *r;
	struct dchan *peer;

	if (d == NULL)
		return;
	r = d->r;
	if (r != NULL && d->gw->draining) {
		/* Left open in the store for the next portholed. */
		if (d->side == SIDE_AGENT)
			r->agent = NULL;
		else
			r->client = NULL;
	} else if (r != NULL) {
		peer = relay_peer(d);
		if (peer != NULL)
			ws_pause_read(peer->ws, 0);
		if (d->side == SIDE_AGENT) {
			r->agent = NULL;
			if (r->ending)
				relay_finish(r, "Terminated", "", NULL, 0);
			else if (!r->final) {
				struct ctl *c = strmap_get(d->gw->ctls,
				    r->target);

				if (c == NULL || !c->registered)
					relay_finish(r, "Failed",
					    "the agent disconnected",
					    "The session's agent disconnected.", 0);
				else
					relay_arm_grace(r, r->gw->agent_grace_ms);
			}
		} else {
			r->client = NULL;
			if (!r->final) {
				if (r->agent)
					gw_send_frame(r->agent->ws,
					    MT_PAUSE_PUBLICATION, "{}");
				relay_arm_grace(r, r->gw->client_grace_ms);
			}
		}
		log_info("event=data_channel_closed side=%s session=%s code=%d",
		    d->side == SIDE_AGENT ? "agent" : "client",
		    d->session_id, code);
	}
	dchan_unlink(d);
	free(d);
}

static const struct ws_cbs dchan_cbs = {
	.on_message = dchan_on_message,
	.on_drain = dchan_on_drain,
	.on_close = dchan_on_close,
};

/* ---- control channels ---------------------------------------------------- */

static const char *
json_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The agent says "linux" (spec 2.3); the API's PlatformType enum is
 * Linux | Windows | MacOS. */
static const char *
gw_platform_type(const char *agent_value)
{
	if (agent_value == NULL)
		return NULL;
	if (strcasecmp(agent_value, "linux") == 0)
		return "Linux";
	if (strcasecmp(agent_value, "windows") == 0)
		return "Windows";
	if (strcasecmp(agent_value, "darwin") == 0 ||
	    strcasecmp(agent_value, "macos") == 0)
		return "MacOS";
	return agent_value;
}

static void
ctl_open(struct ctl *c, const uint8_t *p, size_t n)
{
	static const char *const update_info[] = {
	    "ssm:UpdateInstanceInformation", NULL };
	struct instance_conn_info info;
	char arn[256], why[1024];
	struct ctl *old = NULL;
	json_error_t jerr;
	json_t *o;

	o = json_loadb((const char *)p, n, 0, &jerr);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		ws_close(c->ws, 1008, "expected OpenControlChannel");
		return;
	}
	/* The instance information an agent reports is its
	 * UpdateInstanceInformation call: without it the instance stays
	 * ConnectionLost, as on AWS. */
	instance_arn(c->gw->srv, c->instance_id, arn, sizeof(arn));
	if (gw_instance_allowed(c->gw, c->instance_id,
	    conn_peer_addr(ws_conn(c->ws)), update_info, arn, why,
	    sizeof(why)) != 0) {
		json_decref(o);
		ws_close(c->ws, 1008, "not authorized to perform "
		    "ssm:UpdateInstanceInformation");
		return;
	}
	memset(&info, 0, sizeof(info));
	info.agent_version = json_str(o, "AgentVersion");
	info.platform_type = gw_platform_type(json_str(o, "PlatformType"));
	info.platform_name = json_str(o, "PlatformName");
	info.platform_version = json_str(o, "PlatformVersion");
	info.ip_address = json_str(o, "IPAddress");
	info.computer_name = json_str(o, "ComputerName");
	if (store_instance_connected(c->gw->srv->store, c->instance_id, &info,
	    gw_now_ms()) != 0)
		log_warn("event=store_error op=instance_connected instance=%s",
		    c->instance_id);
	json_decref(o);
	if (strmap_put(c->gw->ctls, c->instance_id, c, (void **)&old) != 0) {
		ws_close(c->ws, 1011, "internal error");
		return;
	}
	c->registered = 1;
	if (old != NULL && old != c) {
		old->registered = 0; /* a reconnect replaced it */
		ws_close(old->ws, 1000, "replaced by a new control channel");
	}
	log_info("event=agent_online instance=%s addr=%s", c->instance_id,
	    conn_peer_addr(ws_conn(c->ws)));
	/* Run Command jobs waiting for it (or not acked before). */
	commands_agent_online(c->gw->srv->commands, c->instance_id);
}

static void
ctl_task_complete(struct ctl *c, const struct clientmsg *m)
{
	char mid[UUID_STR_LEN], *ack;
	const char *task = NULL, *status = "Success", *output = "";
	json_error_t jerr;
	struct relay *r;
	json_t *o, *a;

	o = json_loadb((const char *)m->payload, m->payload_len, 0, &jerr);
	if (o == NULL || json_unpack(o, "{s:s, s?s, s?s}", "TaskId", &task,
	    "FinalTaskStatus", &status, "Output", &output) != 0) {
		json_decref(o);
		log_warn("event=bad_task_complete instance=%s", c->instance_id);
		return;
	}
	/* spec 8.2: acknowledge with the frame's canonical MessageId. */
	uuid_format(m->message_id, mid);
	a = json_pack("{s:i, s:s, s:s, s:s}", "SchemaVersion", 1,
	    "MessageId", mid, "TaskId", task, "Topic", MT_AGENT_TASK_COMPLETE);
	if (a != NULL && (ack = json_dumps(a, JSON_COMPACT |
	    JSON_PRESERVE_ORDER)) != NULL) {
		gw_send_frame(c->ws, MT_AGENT_TASK_ACK, ack);
		free(ack);
	}
	json_decref(a);
	r = strmap_get(c->gw->relays, task);
	if (r != NULL && strcmp(r->target, c->instance_id) == 0 && !r->final) {
		if (strcmp(status, "Success") != 0)
			relay_finish(r, "Failed", output, output, 0);
		else if (r->agent != NULL)
			r->ending = 1; /* finish when its data channel closes */
		else
			relay_finish(r, "Terminated", "", NULL, 0);
	}
	json_decref(o);
}

static void
ctl_on_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct ctl *c = ws_userdata(w);
	struct clientmsg m;
	int rc;

	if (c == NULL)
		return;
	if (!c->registered) {
		if (opcode == WS_TEXT)
			ctl_open(c, p, n);
		else
			ws_close(w, 1008, "expected OpenControlChannel");
		return;
	}
	if (opcode != WS_BINARY)
		return;
	rc = clientmsg_decode(&m, p, n, GW_MAX_CONTROL_MESSAGE);
	if (rc != 0) {
		log_warn("event=bad_frame instance=%s err=\"%s\"",
		    c->instance_id, ph_strerror(rc));
		ws_close(w, 1007, "malformed ClientMessage");
		return;
	}
	store_instance_seen(c->gw->srv->store, c->instance_id, gw_now_ms());
	if (strcmp(m.type, MT_AGENT_TASK_COMPLETE) == 0)
		ctl_task_complete(c, &m);
	else if (strcmp(m.type, MT_AGENT_JOB_ACK) == 0)
		commands_on_job_ack(c->gw->srv->commands, c->instance_id, &m);
	else if (strcmp(m.type, MT_AGENT_JOB_REPLY) == 0)
		commands_on_job_reply(c->gw->srv->commands, c->instance_id, &m);
	else
		log_debug("event=control_message instance=%s type=%s",
		    c->instance_id, m.type);
}

static void
ctl_on_close(struct ws *w, int code)
{
	struct ctl *c = ws_userdata(w);
	struct gateway *gw;
	void **all;
	size_t n, i;

	if (c == NULL)
		return;
	gw = c->gw;
	if (c->registered && strmap_get(gw->ctls, c->instance_id) == c) {
		strmap_del(gw->ctls, c->instance_id, c);
		if (!gw->shutting_down)
			store_instance_disconnected(gw->srv->store,
			    c->instance_id, gw_now_ms());
		log_info("event=agent_offline instance=%s code=%d",
		    c->instance_id, code);
		commands_agent_offline(gw->srv->commands, c->instance_id);
		/* Sessions whose agent has neither channel left have failed. */
		n = gw->draining ? 0 : strmap_count(gw->relays);
		all = n ? calloc(n, sizeof(*all)) : NULL;
		n = all ? strmap_values(gw->relays, all, n) : 0;
		for (i = 0; i < n; i++) {
			struct relay *r = all[i];

			if (strcmp(r->target, c->instance_id) == 0 &&
			    r->agent == NULL && !r->final)
				relay_finish(r, "Failed",
				    "the agent disconnected",
				    "The session's agent disconnected.", 0);
		}
		free(all);
	}
	ctl_unlink(c);
	free(c);
}

static const struct ws_cbs ctl_cbs = {
	.on_message = ctl_on_message,
	.on_close = ctl_on_close,
};

/* ---- upgrades ------------------------------------------------------------ */

static int
gw_valid_id(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s; s++, n++) {
		if (n >= max)
			return 0;
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		    *s == '.'))
			return 0;
	}
	return n > 0;
}

/* The audit event of a channel open decided at the upgrade: which
 * channel and session the path names; an agent is its certificate. */
static void
gw_audit_open(struct gateway *gw, struct http_request *req, const char *code,
    const char *msg)
{
	static const char ctl[] = "/v1/control-channel/";
	static const char data[] = "/v1/data-channel/";
	const char *cn = conn_peer_cn(req->conn);
	const char *addr = conn_peer_addr(req->conn);
	const char *ua = http_header(req, "User-Agent");

	if (strncmp(req->path, ctl, sizeof(ctl) - 1) == 0)
		audit_channel(gw->srv, "OpenControlChannel", cn, NULL, addr,
		    ua, code, msg);
	else if (strncmp(req->path, data, sizeof(data) - 1) == 0)
		audit_channel(gw->srv, "OpenDataChannel", cn,
		    req->path + sizeof(data) - 1, addr, ua, code, msg);
}

static void
gw_refuse(struct gateway *gw, struct http_request *req, int status,
    const char *type, const char *msg)
{
	char body[512];
	int n;

	gw_audit_open(gw, req, type, msg);
	/* spec 2.2: the agent looks for <AccessDeniedException> in bodies. */
	n = snprintf(body, sizeof(body), "<%s><Message>%s</Message></%s>",
	    type, msg, type);
	http_respond(req, status, "application/xml", NULL, body,
	    n > 0 ? (size_t)n : 0);
}

/* A data channel may attach: the session exists, has not ended (in the
 * store and in memory) and, for an agent, targets that agent. */
static int
gw_session_open(struct gateway *gw, const char *session_id,
    const char *agent_cn)
{
	struct session_rec rec;
	struct relay *r;

	if (store_session_get(gw->srv->store, session_id, &rec) != 0 ||
	    rec.end_ms != 0)
		return 0;
	if (agent_cn != NULL && strcmp(rec.target, agent_cn) != 0)
		return 0;
	r = strmap_get(gw->relays, session_id);
	return r == NULL || !r->final;
}

/* The agent may not open the session's data channel: the session has
 * failed, with the reason in its status (DescribeSessions' Details), for
 * the client, and on the agent's control channel for its log. */
static void
gw_data_denied(struct gateway *gw, const char *session_id, const char *why)
{
	struct relay *r = strmap_get(gw->relays, session_id);
	char reason[1100];

	snprintf(reason, sizeof(reason), "the agent's data channel was "
	    "refused: %s", why);
	if (r != NULL)
		relay_finish(r, "Failed", reason, reason, 1);
	else
		store_session_set_status(gw->srv->store, session_id, "Failed",
		    reason, gw_now_ms());
}

void
gateway_handle_upgrade(struct gateway *gw, struct http_request *req)
{
	static const char ctl_prefix[] = "/v1/control-channel/";
	static const char data_prefix[] = "/v1/data-channel/";
	static const char *const ctl_actions[] = {
	    "ssmmessages:CreateControlChannel",
	    "ssmmessages:OpenControlChannel", NULL };
	static const char *const data_actions[] = {
	    "ssmmessages:CreateDataChannel",
	    "ssmmessages:OpenDataChannel", NULL };
	const char *cn = conn_peer_cn(req->conn), *id;
	char why[1024];
	struct dchan *d;
	struct ctl *c;
	struct ws *w;
	int rc;

	if (gw->shutting_down) {
		gw_refuse(gw, req, 503, "ServiceUnavailable", "shutting down");
		return;
	}
	if (strncmp(req->path, ctl_prefix, sizeof(ctl_prefix) - 1) == 0) {
		id = req->path + sizeof(ctl_prefix) - 1;
		if (!gw_valid_id(id, 63) || cn == NULL || strcmp(cn, id) != 0 ||
		    store_instance_active(gw->srv->store, id) != 0) {
			log_limited(LOG_WARN, "control_channel_refused",
		    "event=control_channel_refused instance=%.64s addr=%s",
			    id, conn_peer_addr(req->conn));
			gw_refuse(gw, req, 403, "AccessDeniedException",
			    "The instance is not registered or its certificate does not match");
			return;
		}
		/* ssmmessages has no resource types: "*". Refused before
		 * the WebSocket, so the agent backs off on a plain 403. */
		rc = gw_instance_allowed(gw, id, conn_peer_addr(req->conn),
		    ctl_actions, "*", why, sizeof(why));
		if (rc != 0) {
			gw_refuse(gw, req, rc == PH_ERR_DENIED ? 403 : 500,
			    rc == PH_ERR_DENIED ? "AccessDeniedException" :
			    "InternalServerError", rc == PH_ERR_DENIED ? why :
			    "internal error");
			return;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			gw_refuse(gw, req, 500, "InternalServerError", "out of memory");
			return;
		}
		c->gw = gw;
		snprintf(c->instance_id, sizeof(c->instance_id), "%s", id);
		gw_audit_open(gw, req, NULL, NULL);  /* req is gone after */
		w = http_upgrade_ws(req, &ctl_cbs, c);
		if (w == NULL) {
			free(c);
			return;
		}
		c->ws = w;
		ctl_link(c);
		ws_set_max_message(w, GW_MAX_CONTROL_MESSAGE);
		/* Agents ping every 30 s (AWS's every 54 s), which keeps the
		 * silence deadline fed; our own pings are rarer, as each costs
		 * a read, a write and two epoll calls per agent. */
		ws_set_keepalive(w, GW_CTL_PING_MS, GW_KEEPALIVE_TIMEOUT_MS);
		return;
	}
	if (strncmp(req->path, data_prefix, sizeof(data_prefix) - 1) == 0) {
		id = req->path + sizeof(data_prefix) - 1;
		if (!gw_valid_id(id, SESSION_ID_MAX - 1)) {
			gw_refuse(gw, req, 400, "ValidationException",
			    "invalid session id");
			return;
		}
		/* An agent is identified by its client certificate; anyone
		 * else is a client and must present the session's token. */
		if (cn != NULL && store_instance_active(gw->srv->store, cn) != 0) {
			gw_refuse(gw, req, 403, "AccessDeniedException",
			    "The instance is not registered");
			return;
		}
		/* Refused before a WebSocket exists, so a caller with nothing
		 * but a made-up or stale id costs a request, not a socket
		 * held open. Unknown and ended get the same answer. */
		if (!gw_session_open(gw, id, cn)) {
			log_limited(LOG_INFO, "data_channel_refused",
			    "event=data_channel_refused session=%s addr=%s "
			    "reason=\"no open session\"", id,
			    conn_peer_addr(req->conn));
			gw_refuse(gw, req, 403, "AccessDeniedException",
			    "Session is already terminated or the token is invalid");
			return;
		}
		if (cn != NULL && (rc = gw_instance_allowed(gw, cn,
		    conn_peer_addr(req->conn), data_actions, "*", why,
		    sizeof(why))) != 0) {
			if (rc == PH_ERR_DENIED)
				gw_data_denied(gw, id, why);
			gw_refuse(gw, req, rc == PH_ERR_DENIED ? 403 : 500,
			    rc == PH_ERR_DENIED ? "AccessDeniedException" :
			    "InternalServerError", rc == PH_ERR_DENIED ? why :
			    "internal error");
			return;
		}
		d = calloc(1, sizeof(*d));
		if (d == NULL) {
			gw_refuse(gw, req, 500, "InternalServerError", "out of memory");
			return;
		}
		d->gw = gw;
		d->side = cn != NULL ? SIDE_AGENT : SIDE_CLIENT;
		snprintf(d->session_id, sizeof(d->session_id), "%s", id);
		if (cn != NULL)
			snprintf(d->peer_cn, sizeof(d->peer_cn), "%s", cn);
		w = http_upgrade_ws(req, &dchan_cbs, d);
		if (w == NULL) {
			free(d);
			return;
		}
		d->ws = w;
		dchan_link(d);
		ws_set_max_message(w, GW_MAX_DATA_MESSAGE);
		ws_set_keepalive(w, GW_KEEPALIVE_MS, GW_KEEPALIVE_TIMEOUT_MS);
		if (d->side == SIDE_CLIENT)
			conn_set_nodelay(ws_conn(w), 1);
		return;
	}
	gw_refuse(gw, req, 404, "NotFound", "no such channel");
}

/* ---- API-facing operations ----------------------------------------------- */

int
gateway_instance_online(struct gateway *gw, const char *instance_id)
{
	struct ctl *c = strmap_get(gw->ctls, instance_id);

	return c != NULL && c->registered;
}

/* A preference given in minutes, as a JSON string or number (spec 9.1);
 * 0 when absent, empty or outside [lo, hi]. */
static uint64_t
gw_minutes_pref(json_t *inputs, const char *key, long lo, long hi)
{
	json_t *v = json_object_get(inputs, key);
	long m = 0;
	char *end;

	if (json_is_integer(v))
		m = (long)json_integer_value(v);
	else if (json_is_string(v) && json_string_length(v) > 0) {
		m = strtol(json_string_value(v), &end, 10);
		if (*end != '\0')
			return 0;
	}
	if (m < lo || m > hi)
		return 0;
	return (uint64_t)m * 60 * 1000;
}

static void
relay_apply_preferences(struct relay *r, json_t *document_content)
{
	json_t *inputs = json_object_get(document_content, "inputs");
	uint64_t now = uv_now(r->gw->srv->loop), max;

	r->idle_ms = gw_minutes_pref(inputs, "idleSessionTimeout", 1, 60);
	if (r->idle_ms == 0)
		r->idle_ms = (uint64_t)GW_IDLE_DEFAULT_MIN * 60 * 1000;
	max = gw_minutes_pref(inputs, "maxSessionDuration", 1, 1440);
	r->max_deadline = max ? now + max : 0;
	r->last_activity = now;
}

int
gateway_start_session(struct gateway *gw, const char *instance_id,
    const char *session_id, const char *document_name,
    json_t *document_content, json_t *parameters, const char *owner_arn,
    const char *run_as_user)
{
	struct ctl *c = strmap_get(gw->ctls, instance_id);
	char *content = NULL, *payload = NULL;
	json_t *task = NULL, *outer = NULL, *params = NULL;
	int rc = PH_ERR_NOMEM;

	if (c == NULL || !c->registered)
		return PH_ERR_NOTFOUND;
	/* Our own reference either way: "O" below takes one more, which
	 * task gives back, so a fresh {} must still be released here. */
	params = parameters != NULL ? json_incref(parameters) : json_object();
	/* spec 8.2: the AgentTaskPayload travels as a JSON string. */
	task = json_pack("{s:s, s:s, s:O, s:O, s:s, s:s}",
	    "SessionId", session_id, "DocumentName", document_name,
	    "DocumentContent", document_content,
	    "Parameters", params,
	    "RunAsUser", run_as_user ? run_as_user : "",
	    "SessionOwner", owner_arn ? owner_arn : "");
	if (task == NULL ||
	    (content = json_dumps(task, JSON_COMPACT)) == NULL)
		goto fail;
	outer = json_pack("{s:s, s:s, s:s, s:i}", "Content", content,
	    "TaskId", session_id, "Topic", "aws.ssm.startSession",
	    "SchemaVersion", 1);
	if (outer == NULL ||
	    (payload = json_dumps(outer, JSON_COMPACT)) == NULL)
		goto fail;
	if (relay_get(gw, session_id, instance_id) == NULL)
		goto fail;
	rc = gw_send_frame(c->ws, MT_INTERACTIVE_SHELL, payload);
	if (rc == 0) {
		struct relay *r = strmap_get(gw->relays, session_id);

		/* The agent must open its data channel within the grace. */
		if (r != NULL) {
			relay_apply_preferences(r, document_content);
			relay_arm_grace(r, r->gw->agent_grace_ms);
		}
		log_info("event=session_start session=%s target=%s document=%s",
		    session_id, instance_id, document_name);
	}
fail:
	free(payload);
	free(content);
	json_decref(outer);
	json_decref(task);
	json_decref(params);
	return rc;
}

int
gateway_send_control(struct gateway *gw, const char *instance_id,
    const char *type, const char *payload, uint8_t message_id[16])
{
	struct ctl *c = strmap_get(gw->ctls, instance_id);
	uint8_t id[16];
	struct buf b;
	int rc;

	if (c == NULL || !c->registered || gw->shutting_down)
		return PH_ERR_NOTFOUND;
	uuid_v4(id);
	buf_init(&b, GW_MAX_CONTROL_MESSAGE);
	rc = clientmsg_encode(&b, type, 0, CLIENTMSG_FLAG_SYN |
	    CLIENTMSG_FLAG_FIN, id, PT_NONE, payload, strlen(payload));
	if (rc == 0)
		rc = ws_send(c->ws, WS_BINARY, b.data, b.len);
	buf_free(&b);
	if (rc == 0 && message_id != NULL)
		memcpy(message_id, id, 16);
	return rc;
}

int
gateway_terminate_session(struct gateway *gw, const char *session_id,
    const char *reason)
{
	struct relay *r = strmap_get(gw->relays, session_id);
	struct session_rec rec;

	if (r == NULL) {
		if (store_session_get(gw->srv->store, session_id, &rec) != 0)
			return PH_ERR_NOTFOUND;
		if (rec.end_ms != 0)
			return 0;
		r = relay_get(gw, session_id, rec.target);
		if (r == NULL)
			return PH_ERR_NOMEM;
	}
	relay_finish(r, "Terminated", reason, NULL, 1);
	return 0;
}

void
gateway_disconnect_instance(struct gateway *gw, const char *instance_id)
{
	struct ctl *c = strmap_get(gw->ctls, instance_id);

	if (c != NULL)
		ws_close(c->ws, 1008, "instance deregistered");
}

static void
gw_ping_refresh_cb(uv_timer_t *t)
{
	struct gateway *gw = t->data;

	/* One UPDATE for all: per-agent ones stalled the loop at 10,000. */
	if (strmap_count(gw->ctls) > 0)
		store_instances_seen_online(gw->srv->store, gw_now_ms());
}

static void
gw_tick_cb(uv_timer_t *t)
{
	struct gateway *gw = t->data;
	uint64_t now = uv_now(t->loop);
	void **all;
	size_t n, i;

	n = strmap_count(gw->relays);
	if (n == 0 || (all = calloc(n, sizeof(*all))) == NULL)
		return;
	n = strmap_values(gw->relays, all, n);
	for (i = 0; i < n; i++)
		relay_check_deadlines(all[i], now);
	/* After the deadlines, so a relay they finished with no side left
	 * goes now; one with a side left goes once that side has closed. */
	for (i = 0; i < n; i++)
		if (relay_reapable(all[i]))
			relay_free(all[i]);
	free(all);
}

static void
gw_adopt_open_session(void *arg, const char *session_id, const char *target)
{
	struct gateway *gw = arg;
	struct relay *r = relay_get(gw, session_id, target);

	/* Left open by a previous run: wait for both ends to come back. */
	if (r != NULL)
		relay_arm_grace(r, gw->agent_grace_ms * 2);
}

/* An optional whole number of seconds from config.json, 1..a day. */
static uint64_t
gw_config_seconds(json_t *cfg, const char *key, uint64_t dflt_ms)
{
	json_t *v = json_object_get(cfg, key);
	json_int_t n;

	if (v == NULL)
		return dflt_ms;
	n = json_is_integer(v) ? json_integer_value(v) : 0;
	if (n < 1 || n > GW_GRACE_MAX_S) {
		log_warn("event=config_ignored key=%s note=\"not a whole number "
		    "of seconds from 1 to %d\"", key, GW_GRACE_MAX_S);
		return dflt_ms;
	}
	return (uint64_t)n * 1000;
}

static void
gw_load_config(struct gateway *gw)
{
	char path[600];
	json_error_t jerr;
	json_t *cfg;

	gw->agent_grace_ms = GW_AGENT_GRACE_MS;
	gw->client_grace_ms = GW_CLIENT_GRACE_MS;
	snprintf(path, sizeof(path), "%s/config.json", gw->srv->data_dir);
	if ((cfg = json_load_file(path, 0, &jerr)) == NULL)
		return;
	gw->agent_grace_ms = gw_config_seconds(cfg,
	    "AgentReconnectGraceSeconds", GW_AGENT_GRACE_MS);
	gw->client_grace_ms = gw_config_seconds(cfg,
	    "ClientReconnectGraceSeconds", GW_CLIENT_GRACE_MS);
	json_decref(cfg);
}

int
gateway_new(struct gateway **out, struct server *srv)
{
	struct gateway *gw = calloc(1, sizeof(*gw));
	const char *capture;

	if (gw == NULL)
		return PH_ERR_NOMEM;
	gw->srv = srv;
	gw->capture_fd = -1;
	gw_load_config(gw);
	if ((capture = getenv("PORTHOLED_RELAY_CAPTURE")) != NULL &&
	    capture[0] != '\0') {
		gw->capture_fd = open(capture, O_WRONLY | O_CREAT | O_APPEND |
		    O_CLOEXEC | O_NOFOLLOW, 0600);
		if (gw->capture_fd < 0)
			log_warn("event=relay_capture_failed path=%s", capture);
		else
			log_warn("event=relay_capture path=%s note=\"test "
			    "diagnostics: relayed frames are written to disk\"",
			    capture);
	}
	if (strmap_new(&gw->ctls) != 0 || strmap_new(&gw->relays) != 0) {
		strmap_free(gw->ctls);
		free(gw);
		return PH_ERR_NOMEM;
	}
	uv_timer_init(srv->loop, &gw->ping_refresh);
	gw->ping_refresh.data = gw;
	uv_timer_start(&gw->ping_refresh, gw_ping_refresh_cb,
	    GW_PING_REFRESH_MS, GW_PING_REFRESH_MS);
	uv_timer_init(srv->loop, &gw->tick);
	gw->tick.data = gw;
	uv_timer_start(&gw->tick, gw_tick_cb, GW_TICK_MS, GW_TICK_MS);
	store_session_foreach_open(srv->store, gw_adopt_open_session, gw);
	*out = gw;
	return 0;
}

void
gateway_shutdown(struct gateway *gw, int drain)
{
	void **all;
	size_t n, i;

	gw->shutting_down = 1;
	gw->draining = drain;
	uv_timer_stop(&gw->ping_refresh);
	uv_timer_stop(&gw->tick);
	n = strmap_count(gw->relays);
	if (n && (all = calloc(n, sizeof(*all))) != NULL) {
		n = strmap_values(gw->relays, all, n);
		for (i = 0; i < n; i++) {
			struct relay *r = all[i];

			if (!drain) {
				relay_finish(r, "Terminated",
				    "portholed shut down",
				    "The server is shutting down.", 1);
				continue;
			}
			/* A normal close without channel_closed: both
			 * ends resume with the next portholed, which adopts
			 * the session from the store. */
			log_info("event=session_drained session=%s",
			    r->session_id);
			dchan_close(r->client, 1000, "server draining");
			dchan_close(r->agent, 1000, "server draining");
		}
		free(all);
	}
	n = strmap_count(gw->ctls);
	if (n && (all = calloc(n, sizeof(*all))) != NULL) {
		n = strmap_values(gw->ctls, all, n);
		for (i = 0; i < n; i++) {
			struct ctl *c = all[i];

			store_instance_disconnected(gw->srv->store,
			    c->instance_id, gw_now_ms());
			ws_close(c->ws, 1001, "server shutting down");
		}
		free(all);
	}
}

static void
gw_timer_closed_cb(uv_handle_t *h)
{
	struct gateway *gw = h->data;

	/* The last of the timers to close frees the gateway. */
	if (--gw->timers_closing > 0)
		return;
	if (gw->capture_fd >= 0)
		close(gw->capture_fd);
	strmap_free(gw->ctls);
	strmap_free(gw->relays);
	free(gw);
}

/* Free every channel and relay. The caller closes the connections still
 * open without callbacks (uv_walk), so detach each channel from its
 * WebSocket first: nothing may reach freed memory afterwards. */
static void
gw_release_all(struct gateway *gw)
{
	struct dchan *d;
	struct ctl *c;
	void **all;
	size_t n, i;

	while ((d = gw->dchans) != NULL) {
		ws_set_userdata(d->ws, NULL);
		dchan_unlink(d);
		free(d);
	}
	while ((c = gw->ctl_list) != NULL) {
		ws_set_userdata(c->ws, NULL);
		ctl_unlink(c);
		free(c);
	}
	n = strmap_count(gw->relays);
	if (n == 0 || (all = calloc(n, sizeof(*all))) == NULL)
		return;
	n = strmap_values(gw->relays, all, n);
	for (i = 0; i < n; i++)
		relay_free(all[i]);
	free(all);
}

void
gateway_free(struct gateway *gw)
{
	if (gw == NULL)
		return;
	gw_release_all(gw);
	uv_timer_stop(&gw->ping_refresh);
	uv_timer_stop(&gw->tick);
	gw->timers_closing = 2;
	uv_close((uv_handle_t *)&gw->ping_refresh, gw_timer_closed_cb);
	uv_close((uv_handle_t *)&gw->tick, gw_timer_closed_cb);
}
