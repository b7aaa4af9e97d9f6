/* portfwd: local listener and connections of basic and mux port
 * forwarding. One loop, no threads: reads from a local socket go straight
 * into the data channel (basic) or into an smux stream (mux), and only
 * while that side has room; bytes from the agent are written to the local
 * socket with a bound per connection, past which the data channel is
 * paused (and smux holds a stream's data, counted against its limits). */
#include "client/portfwd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/channel.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/log.h"
#include "common/smux.h"

#define PF_READ_MAX CLIENT_PORT_PAYLOAD   /* one read of a local socket */
#define PF_MIN_ROOM ((size_t)2 << 10)     /* smux room worth a read */
/* Bytes handed to one local socket and not written yet: past this the
 * connection takes no more (mux: smux keeps them; basic: the message
 * waits unacknowledged). */
#define PF_CONN_WQ_MAX ((size_t)1 << 20)
#define PF_CONN_WQ_LOW ((size_t)256 << 10)
/* Everything waiting for local readers: stop reading the data channel
 * above HIGH, start again below LOW (what a slow reader pins). */
#define PF_PAUSE_HIGH ((size_t)512 << 10)
#define PF_PAUSE_LOW ((size_t)128 << 10)
#define PF_BACKLOG 128
#define PF_MAX_CONNS 1024                 /* smux's stream limit */
#define PF_TICK_MS 1000
#define PF_KEEPALIVE_MS 10000             /* xtaci DefaultConfig */
#define PF_KEEPALIVE_TIMEOUT_MS 30000

union pf_handle {
	uv_handle_t h;
	uv_stream_t s;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

struct pf_conn {
	union pf_handle u;
	struct client_portfwd *pf;
	struct pf_conn *prev, *next;
	uint32_t sid;        /* mux stream */
	size_t wq;           /* handed to uv_write, not written yet */
	int reading;
	int closing;
	int draining;        /* the stream ended: close once wq is written */
	int stalled;         /* smux holds data for it (wq was full) */
	uint8_t *pend;       /* read, refused by the channel (basic) */
	size_t pend_len;
};

struct pf_write {
	uv_write_t req;
	struct pf_conn *c;
	size_t n;
	uint8_t data[];
};

struct client_portfwd {
	uv_loop_t *loop;
	enum client_port_mode mode;
	struct client_port_props pp;
	char *session_id;
	struct client_portfwd_cbs cbs;
	void *ud;
	union pf_handle lis;
	int lis_open;
	unsigned port;
	int socket_made;     /* our unix socket file: removed at close */
	uv_timer_t tick;
	int tick_open;
	int keepalive;
	struct smux *mux;
	int mux_dead;
	struct pf_conn *conns;
	size_t nconns;
	struct pf_conn *cur; /* basic: the one connection */
	int accept_pending;  /* basic: a client waits for its turn */
	int flag_pending;    /* basic: DisconnectToPort still to send */
	int announced;       /* "Connection accepted" printed */
	int paused;
	size_t wq_total;
	int closed;
	int handles;         /* open libuv handles; freed at 0 once closed */
	uint8_t rbuf[PF_READ_MAX];
};

static void pf_update_reads(struct client_portfwd *pf);
static void pf_accept(struct client_portfwd *pf);

static void
pf_maybe_free(struct client_portfwd *pf)
{
	if (!pf->closed || pf->handles > 0)
		return;
	smux_free(pf->mux);
	free(pf->session_id);
	free(pf);
}

static void
pf_handle_closed(uv_handle_t *h)
{
	struct client_portfwd *pf = h->data;

	pf->handles--;
	pf_maybe_free(pf);
}

/* Data waiting for local readers, against the pause marks. */
static void
pf_check_pause(struct client_portfwd *pf)
{
	size_t held = pf->wq_total;

	if (pf->mux != NULL)
		held += smux_buffered(pf->mux, 0);
	if (!pf->paused && held >= PF_PAUSE_HIGH) {
		pf->paused = 1;
		pf->cbs.pause_input(pf->ud, 1);
	} else if (pf->paused && (held <= PF_PAUSE_LOW || pf->closed)) {
		pf->paused = 0;
		pf->cbs.pause_input(pf->ud, 0);
	}
}

/* ---- local connections ------------------------------------------------- */

static struct pf_conn *
pf_find(struct client_portfwd *pf, uint32_t sid)
{
	struct pf_conn *c;

	for (c = pf->conns; c != NULL; c = c->next)
		if (c->sid == sid)
			return c;
	return NULL;
}

static void
pf_conn_closed(uv_handle_t *h)
{
	struct pf_conn *c = h->data;
	struct client_portfwd *pf = c->pf;

	free(c->pend);
	free(c);
	pf->handles--;
	pf_maybe_free(pf);
}

/* Close one local connection; in mux mode its stream too (FIN). */
static void
pf_conn_close(struct pf_conn *c)
{
	struct client_portfwd *pf = c->pf;

	if (c->closing)
		return;
	c->closing = 1;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		pf->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pf->nconns--;
	if (pf->mux != NULL && !pf->mux_dead)
		(void)smux_close(pf->mux, c->sid);
	if (pf->cur == c)
		pf->cur = NULL;
	uv_close(&c->u.h, pf_conn_closed);
	log_debug("event=port_connection_closed sid=%u open=%zu",
	    (unsigned)c->sid, pf->nconns);
}

/* Basic mode: the local client is gone; the agent drops its connection to
 * the destination (Flag DisconnectToPort) and the next client may come. */
static void
pf_basic_disconnect(struct pf_conn *c)
{
	struct client_portfwd *pf = c->pf;

	pf_conn_close(c);
	if (pf->closed)
		return;
	if (pf->cbs.send_flag(pf->ud, CLIENT_FLAG_DISCONNECT_TO_PORT) != 0)
		pf->flag_pending = 1;
	else if (pf->accept_pending)
		pf_accept(pf);
}

static void
pf_conn_end(struct pf_conn *c)
{
	if (c->pf->mode == CLIENT_PORT_BASIC)
		pf_basic_disconnect(c);
	else
		pf_conn_close(c);
}

static void
pf_write_cb(uv_write_t *req, int status)
{
	struct pf_write *w = req->data;
	struct pf_conn *c = w->c;
	struct client_portfwd *pf = c->pf;

	c->wq -= w->n;
	pf->wq_total -= w->n;
	free(w);
	if (c->closing) {
		pf_check_pause(pf);
		return;
	}
	if (status < 0) {
		log_debug("event=port_write_failed sid=%u err=\"%s\"",
		    (unsigned)c->sid, uv_strerror(status));
		pf_conn_end(c);
		pf_check_pause(pf);
		return;
	}
	if (c->draining && c->wq == 0) {
		pf_conn_close(c);
	} else if (c->stalled && c->wq <= PF_CONN_WQ_LOW && pf->mux != NULL) {
		c->stalled = 0;
		smux_resume(pf->mux, c->sid);
	}
	pf_check_pause(pf);
}

/* Copy n bytes to the local socket. */
static int
pf_conn_write(struct pf_conn *c, const uint8_t *p, size_t n)
{
	struct pf_write *w;
	uv_buf_t b;
	int rc;

	if (n == 0)
		return 0;
	w = malloc(sizeof(*w) + n);
	if (w == NULL)
		return PH_ERR_NOMEM;
	memcpy(w->data, p, n);
	w->c = c;
	w->n = n;
	w->req.data = w;
	b = uv_buf_init((char *)w->data, (unsigned)n);
	rc = uv_write(&w->req, &c->u.s, &b, 1, pf_write_cb);
	if (rc != 0) {
		free(w);
		return PH_ERR_IO;
	}
	c->wq += n;
	c->pf->wq_total += n;
	return 0;
}

/* The sink of local reads has room for another read. */
static int
pf_sink_room(struct client_portfwd *pf)
{
	if (!pf->cbs.can_send(pf->ud))
		return 0;
	if (pf->mode == CLIENT_PORT_MUX)
		return !pf->mux_dead && smux_write_room(pf->mux) >= PF_MIN_ROOM;
	return !pf->flag_pending;
}

static void
pf_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct pf_conn *c = h->data;
	struct client_portfwd *pf = c->pf;
	size_t n = sizeof(pf->rbuf);

	(void)suggested;
	if (pf->mode == CLIENT_PORT_MUX && pf->mux != NULL) {
		/* Never read more than smux takes at once, nor more than
		 * fills one data-channel message. */
		if (smux_write_unit(pf->mux) < n)
			n = smux_write_unit(pf->mux);
		if (smux_write_room(pf->mux) < n)
			n = smux_write_room(pf->mux);
	}
	*b = uv_buf_init((char *)pf->rbuf, (unsigned)n);
}

static void
pf_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct pf_conn *c = s->data;
	struct client_portfwd *pf = c->pf;
	const uint8_t *p = (const uint8_t *)b->base;
	size_t n;
	int rc;

	if (nread == UV_ENOBUFS) {
		pf_update_reads(pf);
		return;
	}
	if (nread < 0) {
		if (nread != UV_EOF)
			log_debug("event=port_read_failed sid=%u err=\"%s\"",
			    (unsigned)c->sid, uv_strerror((int)nread));
		pf_conn_end(c);
		pf_update_reads(pf);
		return;
	}
	if (nread == 0)
		return;
	n = (size_t)nread;
	if (pf->mode == CLIENT_PORT_MUX)
		rc = pf->mux_dead ? PH_ERR_STATE :
		    smux_write(pf->mux, c->sid, p, n);
	else
		rc = pf->cbs.send(pf->ud, p, n);
	if (rc == PH_ERR_AGAIN) {
		/* Held until the far side has room; no more reads till
		 * then. */
		c->pend = malloc(n);
		if (c->pend == NULL) {
			pf_conn_end(c);
			return;
		}
		memcpy(c->pend, p, n);
		c->pend_len = n;
	} else if (rc != 0) {
		log_warn("event=port_send_failed sid=%u err=\"%s\"",
		    (unsigned)c->sid, ph_strerror(rc));
		pf_conn_end(c);
	}
	pf_update_reads(pf);
}

/* Try the held read again. */
static void
pf_conn_send_pending(struct pf_conn *c)
{
	struct client_portfwd *pf = c->pf;
	int rc;

	if (c->pend_len == 0 || c->closing)
		return;
	if (pf->mode == CLIENT_PORT_MUX)
		rc = pf->mux_dead ? PH_ERR_STATE :
		    smux_write(pf->mux, c->sid, c->pend, c->pend_len);
	else
		rc = pf->cbs.send(pf->ud, c->pend, c->pend_len);
	if (rc == PH_ERR_AGAIN)
		return;
	free(c->pend);
	c->pend = NULL;
	c->pend_len = 0;
	if (rc != 0)
		pf_conn_end(c);
}

/* Start or stop each connection's reads by what the far side takes. */
static void
pf_update_reads(struct client_portfwd *pf)
{
	struct pf_conn *c, *next;
	int room;

	for (c = pf->conns; c != NULL; c = next) {
		next = c->next;
		if (c->pend_len > 0)
			pf_conn_send_pending(c);
	}
	room = !pf->closed && pf_sink_room(pf);
	for (c = pf->conns; c != NULL; c = c->next) {
		int want = room && !c->closing && !c->draining &&
		    c->pend_len == 0;

		if (want && !c->reading) {
			if (uv_read_start(&c->u.s, pf_alloc_cb,
			    pf_read_cb) == 0)
				c->reading = 1;
		} else if (!want && c->reading) {
			uv_read_stop(&c->u.s);
			c->reading = 0;
		}
	}
}

static void
pf_print_accepted(struct client_portfwd *pf)
{
	char line[512];

	if (pf->announced)
		return;
	/* AWS's plugin says it for the first connection only. */
	pf->announced = 1;
	if (pf->mode == CLIENT_PORT_MUX)
		snprintf(line, sizeof(line),
		    "\nConnection accepted for session [%s]\n",
		    pf->session_id);
	else
		snprintf(line, sizeof(line),
		    "Connection accepted for session %s.\n", pf->session_id);
	pf->cbs.print(pf->ud, line);
}

static void
pf_accept(struct client_portfwd *pf)
{
	struct pf_conn *c;
	int rc;

	pf->accept_pending = 0;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->pf = pf;
	if (pf->pp.unix_socket)
		rc = uv_pipe_init(pf->loop, &c->u.pipe, 0);
	else
		rc = uv_tcp_init(pf->loop, &c->u.tcp);
	if (rc != 0) {
		free(c);
		return;
	}
	c->u.h.data = c;
	pf->handles++;
	c->closing = 1;  /* not in the list yet */
	rc = uv_accept(&pf->lis.s, &c->u.s);
	if (rc != 0) {
		log_warn("event=port_accept_failed err=\"%s\"",
		    uv_strerror(rc));
		uv_close(&c->u.h, pf_conn_closed);
		return;
	}
	if (pf->nconns >= PF_MAX_CONNS || (pf->mode == CLIENT_PORT_MUX &&
	    (pf->mux_dead || smux_open(pf->mux, &c->sid) != 0))) {
		log_warn("event=port_connection_refused open=%zu",
		    pf->nconns);
		uv_close(&c->u.h, pf_conn_closed);
		return;
	}
	c->closing = 0;
	c->next = pf->conns;
	if (pf->conns != NULL)
		pf->conns->prev = c;
	pf->conns = c;
	pf->nconns++;
	if (pf->mode == CLIENT_PORT_BASIC)
		pf->cur = c;
	else
		(void)smux_flush(pf->mux);
	if (!pf->pp.unix_socket)
		(void)uv_tcp_nodelay(&c->u.tcp, 1);
	log_debug("event=port_connection_accepted sid=%u open=%zu",
	    (unsigned)c->sid, pf->nconns);
	pf_print_accepted(pf);
	pf_update_reads(pf);
}

static void
pf_listen_cb(uv_stream_t *s, int status)
{
	struct client_portfwd *pf = s->data;

	if (status < 0) {
		log_warn("event=port_listen_error err=\"%s\"",
		    uv_strerror(status));
		return;
	}
	if (pf->closed)
		return;
	/* Basic mode takes one client at a time: the next waits in the
	 * backlog (libuv stops watching the listener until we accept). */
	if (pf->mode == CLIENT_PORT_BASIC &&
	    (pf->cur != NULL || pf->flag_pending)) {
		pf->accept_pending = 1;
		return;
	}
	pf_accept(pf);
}

/* ---- smux callbacks ---------------------------------------------------- */

static int
pf_mux_write(void *ud, const uint8_t *p, size_t n)
{
	struct client_portfwd *pf = ud;

	if (!pf->cbs.can_send(pf->ud))
		return PH_ERR_AGAIN;
	return pf->cbs.send(pf->ud, p, n);
}

static int
pf_mux_data(void *ud, uint32_t sid, const uint8_t *p, size_t n)
{
	struct client_portfwd *pf = ud;
	struct pf_conn *c = pf_find(pf, sid);

	if (c == NULL || c->closing)
		return 0;
	if (c->wq >= PF_CONN_WQ_MAX) {
		c->stalled = 1;
		return PH_ERR_AGAIN;
	}
	if (pf_conn_write(c, p, n) != 0) {
		pf_conn_close(c);
		return 0;
	}
	return 0;
}

static void
pf_mux_fin(void *ud, uint32_t sid)
{
	struct client_portfwd *pf = ud;
	struct pf_conn *c = pf_find(pf, sid);

	if (c == NULL || c->closing)
		return;
	/* The destination's side is over: what it sent still goes to the
	 * local client, then the connection closes. */
	c->draining = 1;
	if (c->reading) {
		uv_read_stop(&c->u.s);
		c->reading = 0;
	}
	if (c->wq == 0)
		pf_conn_close(c);
}

static void
pf_mux_error(void *ud, int err, const char *why)
{
	struct client_portfwd *pf = ud;
	char msg[256];

	(void)err;
	pf->mux_dead = 1;
	snprintf(msg, sizeof(msg), "The agent's multiplexed stream is "
	    "broken (%s); port forwarding stopped.", why);
	pf->cbs.fatal(pf->ud, msg);
}

static const struct smux_cbs pf_smux_cbs = {
	.write = pf_mux_write,
	.on_data = pf_mux_data,
	.on_fin = pf_mux_fin,
	.on_error = pf_mux_error,
};

static void
pf_tick_cb(uv_timer_t *t)
{
	struct client_portfwd *pf = t->data;
	int rc;

	if (pf->closed || pf->mux_dead)
		return;
	rc = smux_tick(pf->mux, channel_now_ms());
	if (rc == PH_ERR_EXPIRED) {
		pf->mux_dead = 1;
		pf->cbs.fatal(pf->ud, "The agent stopped answering smux "
		    "keepalives; port forwarding stopped.");
	}
}

/* ---- interface ---------------------------------------------------------- */

int
client_portfwd_new(struct client_portfwd **out, uv_loop_t *loop,
    enum client_port_mode mode, const struct client_port_props *pp,
    const char *session_id, int keepalive,
    const struct client_portfwd_cbs *cbs, void *ud)
{
	struct client_portfwd *pf;
	struct smux_limits lim;
	int rc;

	*out = NULL;
	if (mode != CLIENT_PORT_BASIC && mode != CLIENT_PORT_MUX)
		return PH_ERR_INVALID;
	pf = calloc(1, sizeof(*pf));
	if (pf == NULL)
		return PH_ERR_NOMEM;
	pf->loop = loop;
	pf->mode = mode;
	pf->pp = *pp;
	pf->cbs = *cbs;
	pf->ud = ud;
	pf->keepalive = keepalive;
	pf->session_id = strdup(session_id);
	if (pf->session_id == NULL) {
		free(pf);
		return PH_ERR_NOMEM;
	}
	if (mode == CLIENT_PORT_MUX) {
		memset(&lim, 0, sizeof(lim));
		/* Large pieces of the smux stream per message (see
		 * CLIENT_PORT_PAYLOAD); smux's outgoing queue holds about
		 * one channel window's worth. */
		lim.write_chunk = CLIENT_PORT_PAYLOAD;
		lim.max_out_bytes = (size_t)512 << 10;
		lim.max_streams = PF_MAX_CONNS;
		rc = smux_new(&pf->mux, SMUX_CLIENT, &pf_smux_cbs, pf, &lim);
		if (rc != 0) {
			free(pf->session_id);
			free(pf);
			return rc;
		}
		if (keepalive)
			smux_set_keepalive(pf->mux, PF_KEEPALIVE_MS,
			    PF_KEEPALIVE_TIMEOUT_MS);
	}
	*out = pf;
	return 0;
}

static int
pf_listen_tcp(struct client_portfwd *pf, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct sockaddr_in sin;
	int len = sizeof(ss), rc;

	uv_tcp_init(pf->loop, &pf->lis.tcp);
	pf->lis.h.data = pf;
	pf->lis_open = 1;
	pf->handles++;
	/* "localhost", as AWS's plugin listens: the IPv4 loopback. */
	uv_ip4_addr("127.0.0.1", (int)pf->pp.local_port, &sin);
	rc = uv_tcp_bind(&pf->lis.tcp, (const struct sockaddr *)&sin, 0);
	if (rc == 0)
		rc = uv_listen(&pf->lis.s, PF_BACKLOG, pf_listen_cb);
	if (rc == 0)
		rc = uv_tcp_getsockname(&pf->lis.tcp,
		    (struct sockaddr *)&ss, &len);
	if (rc != 0) {
		snprintf(err, errlen, "Unable to listen on localhost:%u: %s",
		    pf->pp.local_port, uv_strerror(rc));
		return PH_ERR_IO;
	}
	pf->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static int
pf_listen_unix(struct client_portfwd *pf, char *err, size_t errlen)
{
	mode_t old;
	int rc;

	uv_pipe_init(pf->loop, &pf->lis.pipe, 0);
	pf->lis.h.data = pf;
	pf->lis_open = 1;
	pf->handles++;
	/* Only its owner may connect: made 0600 (no window where it is
	 * wider). */
	old = umask(0177);
	rc = uv_pipe_bind(&pf->lis.pipe, pf->pp.local_socket);
	umask(old);
	if (rc == 0) {
		pf->socket_made = 1;
		rc = uv_listen(&pf->lis.s, PF_BACKLOG, pf_listen_cb);
	}
	if (rc != 0) {
		snprintf(err, errlen, "Unable to listen on unix socket %s: %s",
		    pf->pp.local_socket, uv_strerror(rc));
		return PH_ERR_IO;
	}
	return 0;
}

int
client_portfwd_start(struct client_portfwd *pf, char *err, size_t errlen)
{
	char line[512];
	int rc;

	if (pf->lis_open) {
		snprintf(err, errlen, "already listening");
		return PH_ERR_STATE;
	}
	rc = pf->pp.unix_socket ? pf_listen_unix(pf, err, errlen) :
	    pf_listen_tcp(pf, err, errlen);
	if (rc != 0)
		return rc;
	if (pf->mux != NULL && pf->keepalive) {
		uv_timer_init(pf->loop, &pf->tick);
		pf->tick.data = pf;
		pf->tick_open = 1;
		pf->handles++;
		uv_timer_start(&pf->tick, pf_tick_cb, PF_TICK_MS, PF_TICK_MS);
	}
	if (client_port_opened_line(line, sizeof(line) - 1, &pf->pp, pf->port,
	    pf->session_id) != 0) {
		snprintf(err, errlen, "session id too long");
		return PH_ERR_TOOBIG;
	}
	/* spec 7.5 as AWS's plugin prints them: basic ends the line, mux
	 * goes on with "Waiting for connections...". */
	if (pf->mode == CLIENT_PORT_BASIC) {
		size_t n = strlen(line); /* room was kept for it */

		line[n] = '\n';
		line[n + 1] = '\0';
	}
	pf->cbs.print(pf->ud, line);
	if (pf->mode == CLIENT_PORT_MUX)
		pf->cbs.print(pf->ud, CLIENT_PORT_WAITING);
	log_info("event=port_listening session=%s port=%u socket=\"%s\" "
	    "mode=%s", pf->session_id, pf->port, pf->pp.unix_socket ?
	    pf->pp.local_socket : "", pf->mode == CLIENT_PORT_MUX ? "mux" :
	    "basic");
	return 0;
}

unsigned
client_portfwd_port(const struct client_portfwd *pf)
{
	return pf != NULL ? pf->port : 0;
}

size_t
client_portfwd_connections(const struct client_portfwd *pf)
{
	return pf != NULL ? pf->nconns : 0;
}

int
client_portfwd_deliver(struct client_portfwd *pf, uint32_t type,
    const uint8_t *p, size_t n)
{
	uint32_t flag;
	int rc;

	if (pf->closed)
		return 0;
	if (type == PT_FLAG) {
		if (client_port_flag_decode(p, n, &flag) == 0 &&
		    flag == CLIENT_FLAG_CONNECT_TO_PORT_ERROR)
			pf->cbs.print(pf->ud, CLIENT_PORT_CONNECT_FAILED);
		else
			log_debug("event=port_flag_ignored bytes=%zu", n);
		return 0;
	}
	if (type != PT_OUTPUT)
		return 0;
	if (pf->mode == CLIENT_PORT_MUX) {
		if (pf->mux_dead)
			return 0;
		rc = smux_input(pf->mux, p, n);
		if (rc == PH_ERR_AGAIN)
			return rc;
		/* on_error reported a protocol error already. */
		pf_check_pause(pf);
		return 0;
	}
	/* Basic: bytes for a client that left are dropped (the agent gets
	 * DisconnectToPort); none arrive before the first one came. */
	if (pf->cur == NULL || pf->cur->closing)
		return 0;
	if (pf->cur->wq >= PF_CONN_WQ_MAX)
		return PH_ERR_AGAIN;
	if (pf_conn_write(pf->cur, p, n) != 0)
		pf_basic_disconnect(pf->cur);
	pf_check_pause(pf);
	return 0;
}

void
client_portfwd_writable(struct client_portfwd *pf)
{
	if (pf == NULL || pf->closed)
		return;
	if (pf->flag_pending && pf->cbs.send_flag(pf->ud,
	    CLIENT_FLAG_DISCONNECT_TO_PORT) == 0) {
		pf->flag_pending = 0;
		if (pf->accept_pending)
			pf_accept(pf);
	}
	if (pf->mux != NULL && !pf->mux_dead &&
	    smux_flush(pf->mux) != 0 && !pf->mux_dead) {
		pf->mux_dead = 1;
		pf->cbs.fatal(pf->ud, "Cannot write to the data channel; "
		    "port forwarding stopped.");
		return;
	}
	pf_update_reads(pf);
}

void
client_portfwd_close(struct client_portfwd *pf)
{
	if (pf == NULL || pf->closed)
		return;
	pf->closed = 1;
	while (pf->conns != NULL)
		pf_conn_close(pf->conns);
	if (pf->lis_open) {
		uv_close(&pf->lis.h, pf_handle_closed);
		pf->lis_open = 0;
	}
	if (pf->socket_made) {
		/* Ours (we bound it): gone with the session. */
		(void)unlink(pf->pp.local_socket);
		pf->socket_made = 0;
	}
	if (pf->tick_open) {
		uv_timer_stop(&pf->tick);
		uv_close((uv_handle_t *)&pf->tick, pf_handle_closed);
		pf->tick_open = 0;
	}
	pf_check_pause(pf);
	pf_maybe_free(pf);
}
