#include "agent/portfwd_conn.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"

enum conn_state {
	C_RESOLVING,
	C_CONNECTING,
	C_OPEN,
	C_FINISHING,  /* our FIN is on its way; waiting for theirs */
	C_FAILED,     /* the dial failed; the owner closes it */
	C_CLOSED,     /* handles closing; freed on the last one */
};

/* One connect attempt's socket: a failed attempt's handle closes on its
 * own while the next address is tried. */
struct pf_sock {
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_shutdown_t sreq;
	struct pf_conn *c;
	int dead;     /* abandoned: its connect result is ignored */
};

struct pf_wreq {
	uv_write_t req;
	struct pf_conn *c;
	size_t len;
	uint8_t data[];
};

struct pf_conn {
	struct pf_dest *d;
	const struct pf_conn_cbs *cbs;
	void *ud;
	uint32_t tag;
	enum conn_state st;
	int closed;           /* the owner let go: no callbacks */
	int detached;         /* queued bytes no longer in d->wq_total */
	int pending;          /* handles not yet closed (timer, sockets) */
	uv_timer_t timer;     /* kick, connect timeout, linger */
	uv_getaddrinfo_t *gai;
	struct sockaddr_storage addrs[PF_ADDR_MAX];
	size_t naddrs, next;
	int first_err;
	struct pf_sock *sock;
	char address[INET6_ADDRSTRLEN + 16];
	/* reading */
	int reading;
	int eof, eof_err, eof_told;
	uint8_t *pend;        /* read but not yet taken by the owner */
	size_t pend_off, pend_len;
	/* writing */
	size_t queued;
	int above_high;
	int shut_wanted, shut_sent, shut_done;
	uint64_t bytes_to, bytes_from;
};

/* Reads go here and are handed on (copied) before the next read: the
 * loop runs one read at a time. */
static uint8_t pf_rbuf[PF_READ_MAX];

static void conn_try_next(struct pf_conn *c);
static void conn_teardown(struct pf_conn *c);
static void conn_read_start(struct pf_conn *c);

static uint64_t
conn_now(void)
{
	return uv_hrtime() / 1000000;
}

static void
conn_maybe_free(struct pf_conn *c)
{
	if (c->st != C_CLOSED || c->pending > 0)
		return;
	free(c->pend);
	free(c);
}

static void
conn_handle_closed(uv_handle_t *h)
{
	struct pf_conn *c = h->data;

	c->pending--;
	conn_maybe_free(c);
}

static void
sock_closed(uv_handle_t *h)
{
	struct pf_sock *s = h->data;
	struct pf_conn *c = s->c;

	free(s);
	c->pending--;
	conn_maybe_free(c);
}

static void
sock_abandon(struct pf_conn *c)
{
	struct pf_sock *s = c->sock;

	if (s == NULL)
		return;
	c->sock = NULL;
	c->reading = 0;
	s->dead = 1;
	uv_close((uv_handle_t *)&s->tcp, sock_closed);
}

static void
conn_fail(struct pf_conn *c, const char *why)
{
	sock_abandon(c);
	uv_timer_stop(&c->timer);
	c->st = C_FAILED;
	log_debug("event=port_dial_failed host=%s port=%u why=\"%s\"",
	    c->d->host, c->d->port, why);
	if (!c->closed)
		c->cbs->on_dial_failed(c->ud, c, why);
}

static void
addr_text(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const void *)sa;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(a->sin_port));
	}
}

int
pf_dest_literal(const char *host, unsigned port,
    struct sockaddr_storage *out)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	if (host == NULL || port == 0 || port > 65535)
		return PH_ERR_INVALID;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		return 1;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		return 1;
	}
	return 0;
}

/* spec 7.4: every address is checked before any is dialled; one denied
 * address refuses the destination (as AWS's agent does). */
static void
conn_check_and_dial(struct pf_conn *c)
{
	char why[PF_WHY_MAX], ip[INET6_ADDRSTRLEN + 16];
	size_t i;

	if (c->naddrs == 0) {
		snprintf(why, sizeof(why), "Unable to connect to specified "
		    "port: %s has no address", c->d->host[0] ? c->d->host :
		    "localhost");
		conn_fail(c, why);
		return;
	}
	for (i = 0; i < c->naddrs; i++) {
		if (!pf_deny_match(c->d->deny,
		    (const struct sockaddr *)&c->addrs[i]))
			continue;
		addr_text((const struct sockaddr *)&c->addrs[i], ip,
		    sizeof(ip));
		log_warn("event=port_destination_denied host=%s address=%s",
		    c->d->host, ip);
		snprintf(why, sizeof(why), "Forwarding to IP address %s is "
		    "forbidden.", c->d->host[0] ? c->d->host : ip);
		conn_fail(c, why);
		return;
	}
	c->st = C_CONNECTING;
	c->next = 0;
	conn_try_next(c);
}

static void
conn_on_timer(uv_timer_t *t)
{
	struct pf_conn *c = t->data;

	switch (c->st) {
	case C_RESOLVING: /* the kick: addresses are known already */
		conn_check_and_dial(c);
		break;
	case C_CONNECTING: /* this address did not answer in time */
		if (c->first_err == 0)
			c->first_err = UV_ETIMEDOUT;
		sock_abandon(c);
		conn_try_next(c);
		break;
	case C_FINISHING: /* no FIN from them: enough */
		conn_teardown(c);
		break;
	default:
		break;
	}
}

static void
conn_on_connect(uv_connect_t *req, int status)
{
	struct pf_sock *s = req->data;
	struct pf_conn *c = s->c;

	if (s->dead || c->st != C_CONNECTING)
		return;
	uv_timer_stop(&c->timer);
	if (status < 0) {
		if (c->first_err == 0)
			c->first_err = status;
		sock_abandon(c);
		conn_try_next(c);
		return;
	}
	c->st = C_OPEN;
	addr_text((const struct sockaddr *)&c->addrs[c->next - 1],
	    c->address, sizeof(c->address));
	(void)uv_tcp_nodelay(&s->tcp, 1);
	log_debug("event=port_connected address=%s", c->address);
	if (!c->closed)
		c->cbs->on_connected(c->ud, c);
	if (c->st == C_OPEN && !c->closed)
		conn_read_start(c);
}

static void
conn_try_next(struct pf_conn *c)
{
	char why[PF_WHY_MAX];
	struct pf_sock *s;
	int rc;

	while (c->next < c->naddrs) {
		s = calloc(1, sizeof(*s));
		if (s == NULL) {
			c->first_err = UV_ENOMEM;
			break;
		}
		if ((rc = uv_tcp_init(c->d->loop, &s->tcp)) != 0) {
			free(s);
			c->first_err = rc;
			break;
		}
		s->c = c;
		s->tcp.data = s;
		s->creq.data = s;
		s->sreq.data = s;
		c->pending++;
		c->sock = s;
		rc = uv_tcp_connect(&s->creq, &s->tcp,
		    (const struct sockaddr *)&c->addrs[c->next++],
		    conn_on_connect);
		if (rc == 0) {
			uv_timer_start(&c->timer, conn_on_timer,
			    PF_CONNECT_TIMEOUT_MS, 0);
			return;
		}
		if (c->first_err == 0)
			c->first_err = rc;
		sock_abandon(c);
	}
	snprintf(why, sizeof(why), "Unable to connect to specified port: "
	    "%s port %u: %s", c->d->host[0] ? c->d->host : "localhost",
	    c->d->port, c->first_err == UV_ETIMEDOUT ? "connection timed out"
	    : uv_strerror(c->first_err ? c->first_err : UV_EADDRNOTAVAIL));
	conn_fail(c, why);
}

static void
conn_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct pf_conn *c = req->data;
	struct pf_dest *d;
	struct addrinfo *ai;
	char why[PF_WHY_MAX];

	free(req);
	if (c == NULL) { /* the connection was closed meanwhile */
		uv_freeaddrinfo(res);
		return;
	}
	c->gai = NULL;
	d = c->d;
	if (status < 0) {
		uv_freeaddrinfo(res);
		snprintf(why, sizeof(why), "Unable to connect to specified "
		    "port: cannot resolve %s: %s", d->host[0] ? d->host :
		    "localhost", uv_strerror(status));
		conn_fail(c, why);
		return;
	}
	c->naddrs = 0;
	for (ai = res; ai != NULL && c->naddrs < PF_ADDR_MAX;
	    ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(c->addrs[0]))
			continue;
		memset(&c->addrs[c->naddrs], 0, sizeof(c->addrs[0]));
		memcpy(&c->addrs[c->naddrs++], ai->ai_addr, ai->ai_addrlen);
	}
	uv_freeaddrinfo(res);
	/* Kept for the session's next connections. */
	memcpy(d->addrs, c->addrs, sizeof(d->addrs));
	d->naddrs = c->naddrs;
	d->resolved_ms = conn_now();
	d->resolved = 1;
	conn_check_and_dial(c);
}

int
pf_conn_dial(struct pf_conn **out, struct pf_dest *d,
    const struct pf_conn_cbs *cbs, void *ud)
{
	struct addrinfo hints;
	struct pf_conn *c;
	char port[8];
	int rc;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return PH_ERR_NOMEM;
	c->d = d;
	c->cbs = cbs;
	c->ud = ud;
	c->st = C_RESOLVING;
	uv_timer_init(d->loop, &c->timer);
	c->timer.data = c;
	c->pending = 1;
	rc = pf_dest_literal(d->host, d->port, &c->addrs[0]);
	if (rc == 1 || (d->resolved &&
	    conn_now() - d->resolved_ms < PF_RESOLVE_TTL_MS)) {
		if (rc == 1)
			c->naddrs = 1;
		else {
			memcpy(c->addrs, d->addrs, sizeof(c->addrs));
			c->naddrs = d->naddrs;
		}
		/* Results reach the owner from the loop, never from inside
		 * this call. */
		uv_timer_start(&c->timer, conn_on_timer, 0, 0);
		*out = c;
		return 0;
	}
	if (rc < 0 || (c->gai = calloc(1, sizeof(*c->gai))) == NULL) {
		rc = rc < 0 ? rc : PH_ERR_NOMEM;
		goto fail;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", d->port);
	c->gai->data = c;
	if (uv_getaddrinfo(d->loop, c->gai, conn_on_resolved,
	    d->host[0] ? d->host : "localhost", port, &hints) != 0) {
		free(c->gai);
		c->gai = NULL;
		rc = PH_ERR_IO;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	c->closed = 1;
	conn_teardown(c);
	return rc;
}

/* ---- reading ------------------------------------------------------------- */

static void
conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct pf_sock *s = h->data;
	struct pf_conn *c = s->c;
	size_t room = PF_READ_MAX;

	/* Read no more than the owner takes: a zero-length buffer makes
	 * libuv report UV_ENOBUFS and the reads stop. */
	if (c->st == C_OPEN && !c->closed)
		room = c->cbs->room(c->ud, c);
	buf->base = (char *)pf_rbuf;
	buf->len = room < PF_READ_MAX ? room : PF_READ_MAX;
}

static void
conn_tell_eof(struct pf_conn *c)
{
	if (c->eof_told || c->closed)
		return;
	c->eof_told = 1;
	c->cbs->on_eof(c->ud, c, c->eof_err);
}

static void
conn_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct pf_sock *s = st->data;
	struct pf_conn *c = s->c;
	size_t taken, n;

	if (s->dead)
		return;
	if (nread == 0)
		return;
	if (nread == UV_ENOBUFS) { /* the owner is full */
		uv_read_stop(st);
		c->reading = 0;
		return;
	}
	if (nread < 0) {
		uv_read_stop(st);
		c->reading = 0;
		c->eof = 1;
		c->eof_err = nread == UV_EOF ? 0 : (int)nread;
		if (c->st == C_FINISHING) {
			if (c->shut_done || c->eof_err != 0)
				conn_teardown(c);
			return;
		}
		if (c->pend_len == 0)
			conn_tell_eof(c);
		return;
	}
	n = (size_t)nread;
	c->bytes_from += n;
	if (c->st != C_OPEN || c->closed)
		return; /* finishing: theirs is dropped */
	taken = c->cbs->on_data(c->ud, c, (const uint8_t *)buf->base, n);
	if (c->closed || c->st != C_OPEN || taken >= n)
		return;
	/* Kept until the owner has room again; no more reads meanwhile. */
	c->pend = malloc(n - taken);
	if (c->pend == NULL) {
		c->eof = 1;
		c->eof_err = UV_ENOMEM;
		conn_tell_eof(c);
		return;
	}
	memcpy(c->pend, buf->base + taken, n - taken);
	c->pend_off = 0;
	c->pend_len = n - taken;
	uv_read_stop(st);
	c->reading = 0;
}

static void
conn_read_start(struct pf_conn *c)
{
	if (c->reading || c->eof || c->sock == NULL || c->pend_len > 0)
		return;
	if (c->st == C_OPEN && c->cbs->room(c->ud, c) == 0)
		return;
	if (uv_read_start((uv_stream_t *)&c->sock->tcp, conn_alloc,
	    conn_on_read) == 0)
		c->reading = 1;
}

void
pf_conn_resume(struct pf_conn *c)
{
	size_t taken;

	if (c == NULL || c->st != C_OPEN || c->closed)
		return;
	if (c->pend_len > 0) {
		taken = c->cbs->on_data(c->ud, c, c->pend + c->pend_off,
		    c->pend_len);
		if (c->closed || c->st != C_OPEN)
			return;
		c->pend_off += taken;
		c->pend_len -= taken;
		if (c->pend_len > 0)
			return;
		free(c->pend);
		c->pend = NULL;
		c->pend_off = 0;
	}
	if (c->eof) {
		conn_tell_eof(c);
		return;
	}
	conn_read_start(c);
}

/* ---- writing ------------------------------------------------------------- */

static void
conn_on_shutdown(uv_shutdown_t *req, int status)
{
	struct pf_sock *s = req->data;
	struct pf_conn *c = s->c;

	if (s->dead)
		return;
	c->shut_done = 1;
	if (c->st == C_FINISHING) {
		if (status < 0 || c->eof)
			conn_teardown(c);
		return;
	}
	if (status < 0 && c->st == C_OPEN && !c->eof) {
		c->eof = 1;
		c->eof_err = status;
		if (c->pend_len == 0)
			conn_tell_eof(c);
	}
}

static void
conn_shutdown(struct pf_conn *c)
{
	if (c->shut_sent || c->sock == NULL)
		return;
	c->shut_sent = 1;
	if (uv_shutdown(&c->sock->sreq, (uv_stream_t *)&c->sock->tcp,
	    conn_on_shutdown) != 0)
		conn_teardown(c);
}

static void
conn_on_write(uv_write_t *req, int status)
{
	struct pf_wreq *w = req->data;
	struct pf_conn *c = w->c;

	c->queued -= w->len;
	if (!c->detached)
		c->d->wq_total -= w->len;
	free(w);
	if (c->st == C_CLOSED)
		return;
	if (status < 0) {
		if (c->st == C_FINISHING) {
			conn_teardown(c);
			return;
		}
		c->eof = 1;
		c->eof_err = status;
		c->pend_len = 0;
		conn_tell_eof(c);
		return;
	}
	if ((c->st == C_FINISHING || c->shut_wanted) && c->queued == 0) {
		conn_shutdown(c);
		if (c->st == C_FINISHING)
			return;
	}
	if (c->above_high && c->queued < PF_WQ_LOW) {
		c->above_high = 0;
		if (!c->closed && c->st == C_OPEN)
			c->cbs->on_drain(c->ud, c);
	}
}

int
pf_conn_write(struct pf_conn *c, const void *p, size_t n)
{
	struct pf_wreq *w;
	uv_buf_t b;
	int r = 0;

	if (c->st != C_OPEN || c->sock == NULL || c->eof_err != 0 ||
	    c->shut_wanted)
		return PH_ERR_STATE;
	if (n == 0)
		return 0;
	c->bytes_to += n;
	if (c->queued == 0) {
		b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
		r = uv_try_write((uv_stream_t *)&c->sock->tcp, &b, 1);
		if (r < 0 && r != UV_EAGAIN)
			return PH_ERR_IO;
		if (r < 0)
			r = 0;
		if ((size_t)r == n)
			return 0;
	}
	w = malloc(sizeof(*w) + n - (size_t)r);
	if (w == NULL)
		return PH_ERR_NOMEM;
	w->c = c;
	w->len = n - (size_t)r;
	w->req.data = w;
	memcpy(w->data, (const uint8_t *)p + r, w->len);
	b = uv_buf_init((char *)w->data, (unsigned)w->len);
	if (uv_write(&w->req, (uv_stream_t *)&c->sock->tcp, &b, 1,
	    conn_on_write) != 0) {
		free(w);
		return PH_ERR_IO;
	}
	c->queued += w->len;
	c->d->wq_total += w->len;
	if (c->queued > PF_WQ_HIGH)
		c->above_high = 1;
	return 0;
}

size_t
pf_conn_queued(const struct pf_conn *c)
{
	return c->queued;
}

int
pf_conn_connected(const struct pf_conn *c)
{
	return c->st == C_OPEN;
}

/* ---- ending -------------------------------------------------------------- */

static void
conn_teardown(struct pf_conn *c)
{
	if (c->st == C_CLOSED)
		return;
	c->st = C_CLOSED;
	c->closed = 1;
	if (c->gai != NULL) {
		/* Its callback frees it; nothing of ours is touched. */
		c->gai->data = NULL;
		(void)uv_cancel((uv_req_t *)c->gai);
		c->gai = NULL;
	}
	sock_abandon(c);
	uv_timer_stop(&c->timer);
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
	conn_maybe_free(c);
}

/* The owner lets go: the destination (and its counter) may be gone
 * before this connection's last callbacks. */
static void
conn_detach(struct pf_conn *c)
{
	if (c->detached)
		return;
	c->detached = 1;
	c->d->wq_total -= c->queued;
}

void
pf_conn_close(struct pf_conn *c)
{
	if (c == NULL)
		return;
	conn_detach(c);
	c->closed = 1;
	conn_teardown(c);
}

void
pf_conn_shutdown(struct pf_conn *c)
{
	if (c == NULL || c->st != C_OPEN || c->shut_wanted)
		return;
	c->shut_wanted = 1;
	if (c->queued == 0)
		conn_shutdown(c);
}

void
pf_conn_finish(struct pf_conn *c)
{
	if (c == NULL)
		return;
	conn_detach(c);
	c->closed = 1;
	if (c->st != C_OPEN || c->eof_err != 0) {
		conn_teardown(c);
		return;
	}
	c->st = C_FINISHING;
	if (c->shut_done && c->eof) {
		conn_teardown(c);
		return;
	}
	free(c->pend);
	c->pend = NULL;
	c->pend_len = 0;
	uv_timer_start(&c->timer, conn_on_timer, PF_LINGER_MS, 0);
	if (!c->eof)
		conn_read_start(c); /* theirs, to drop, until their FIN */
	if (c->queued == 0)
		conn_shutdown(c);
}

void
pf_conn_set_tag(struct pf_conn *c, uint32_t tag)
{
	c->tag = tag;
}

uint32_t
pf_conn_tag(const struct pf_conn *c)
{
	return c->tag;
}

const char *
pf_conn_address(const struct pf_conn *c)
{
	return c->address;
}

uint64_t
pf_conn_bytes_to(const struct pf_conn *c)
{
	return c->bytes_to;
}

uint64_t
pf_conn_bytes_from(const struct pf_conn *c)
{
	return c->bytes_from;
}
