/* fakeconn: see fakeconn.h. Implements the conn_* functions http.c, ws.c
 * and the gateway call, with the callback rules of tls.h: callbacks never
 * run from inside a conn_* call, on_close runs once and then c is freed. */
#include "fakeconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

struct conn {
	uv_loop_t *loop;
	const struct conn_cbs *cbs;
	void *ud;
	struct buf in;          /* fed or given back, not yet delivered */
	int paused;
	int closing;            /* conn_close / conn_abort / peer close */
	int close_err;
	int opened;             /* on_open delivered (client side) */
	int dialled;
	size_t pending;
	int drain_due;
	size_t written;
	struct buf head;        /* the first bytes written */
	char peer_cn[64];       /* "" = no client certificate */
	int authenticated;
};

static struct conn *dialled;

static struct conn *
fc_new(uv_loop_t *loop)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->loop = loop;
	buf_init(&c->in, (size_t)64 << 20);
	buf_init(&c->head, FAKECONN_HEAD_MAX);
	return c;
}

struct conn *
fakeconn_accept(uv_loop_t *loop)
{
	return fc_new(loop);
}

struct conn *
fakeconn_take_dialled(void)
{
	struct conn *c = dialled;

	dialled = NULL;
	return c;
}

/* Hand queued input to on_read while reading; on_read may pause or give
 * bytes back, which stay queued. */
static void
fc_deliver(struct conn *c)
{
	struct buf chunk;
	int guard = 0;

	while (!c->closing && !c->paused && c->in.len > 0 && guard++ < 1024) {
		buf_init(&chunk, c->in.max);
		if (buf_append(&chunk, c->in.data, c->in.len) != 0) {
			buf_free(&chunk);
			return;
		}
		buf_reset(&c->in);
		if (c->cbs != NULL && c->cbs->on_read != NULL)
			c->cbs->on_read(c, chunk.data, chunk.len);
		buf_free(&chunk);
	}
}

void
fakeconn_feed(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->closing || n == 0)
		return;
	if (buf_append(&c->in, p, n) != 0) {
		conn_abort(c, PH_ERR_TOOBIG);
		return;
	}
	fc_deliver(c);
}

void
fakeconn_set_pending(struct conn *c, size_t n)
{
	if (c->pending >= CONN_LOW_WATER && n < CONN_LOW_WATER)
		c->drain_due = 1;
	c->pending = n;
}

void
fakeconn_peer_close(struct conn *c)
{
	if (!c->closing) {
		c->closing = 1;
		c->close_err = 0;
	}
}

int
fakeconn_pump(struct conn *c)
{
	if (c->dialled && !c->opened && !c->closing) {
		c->opened = 1;
		if (c->cbs != NULL && c->cbs->on_open != NULL)
			c->cbs->on_open(c);
	}
	if (c->drain_due && !c->closing) {
		c->drain_due = 0;
		if (c->cbs != NULL && c->cbs->on_drain != NULL)
			c->cbs->on_drain(c);
	}
	fc_deliver(c);
	if (!c->closing)
		return 0;
	if (c->cbs != NULL && c->cbs->on_close != NULL)
		c->cbs->on_close(c, c->close_err);
	buf_free(&c->in);
	buf_free(&c->head);
	free(c);
	return 1;
}

size_t
fakeconn_written(const struct conn *c)
{
	return c->written;
}

const char *
fakeconn_head(struct conn *c)
{
	return buf_cstr(&c->head);
}

void
fakeconn_set_peer_cn(struct conn *c, const char *cn)
{
	snprintf(c->peer_cn, sizeof(c->peer_cn), "%s", cn != NULL ? cn : "");
	/* tls.h: a verified certificate authenticates at the handshake. */
	c->authenticated = cn != NULL;
}

int
fakeconn_authenticated(const struct conn *c)
{
	return c->authenticated;
}

/* ---- the conn_* functions --------------------------------------------- */

int
conn_dial(uv_loop_t *loop, struct tls_ctx *ctx, const char *host, int port,
    const char *sni, const struct conn_cbs *cbs, void *ud, struct conn **out)
{
	struct conn *c;

	(void)ctx;
	(void)host;
	(void)port;
	(void)sni;
	if (dialled != NULL || (c = fc_new(loop)) == NULL)
		return PH_ERR_NOMEM;
	c->cbs = cbs;
	c->ud = ud;
	c->dialled = 1;
	dialled = c;
	*out = c;
	return 0;
}

void
conn_set_cbs(struct conn *c, const struct conn_cbs *cbs, void *ud)
{
	c->cbs = cbs;
	c->ud = ud;
}

void *
conn_userdata(const struct conn *c)
{
	return c->ud;
}

int
conn_write(struct conn *c, const void *p, size_t n)
{
	if (p == NULL && n > 0)
		abort();
	if (c->closing)
		return PH_ERR_STATE;
	c->written += n;
	if (c->head.len < FAKECONN_HEAD_MAX)
		(void)buf_append(&c->head, p, n < FAKECONN_HEAD_MAX -
		    c->head.len ? n : FAKECONN_HEAD_MAX - c->head.len);
	return 0;
}

size_t
conn_write_pending(const struct conn *c)
{
	return c->pending;
}

void
conn_pause_read(struct conn *c, int pause)
{
	c->paused = pause;
}

void
conn_close(struct conn *c)
{
	if (!c->closing) {
		c->closing = 1;
		c->close_err = 0;
	}
}

void
conn_abort(struct conn *c, int err)
{
	if (!c->closing) {
		c->closing = 1;
		c->close_err = err;
	}
}

const char *
conn_peer_cn(const struct conn *c)
{
	return c->peer_cn[0] != '\0' ? c->peer_cn : NULL;
}

const char *
conn_peer_addr(const struct conn *c)
{
	(void)c;
	return "127.0.0.1";
}

uv_loop_t *
conn_loop(const struct conn *c)
{
	return c->loop;
}

void
conn_set_nodelay(struct conn *c, int on)
{
	(void)c;
	(void)on;
}

int
conn_unread(struct conn *c, const void *p, size_t n)
{
	struct buf b;
	int rc;

	c->paused = 1;
	if (n == 0)
		return 0;
	buf_init(&b, c->in.max);
	if ((rc = buf_append(&b, p, n)) != 0 ||
	    (rc = buf_append(&b, c->in.data, c->in.len)) != 0) {
		buf_free(&b);
		return rc;
	}
	buf_free(&c->in);
	c->in = b;
	return 0;
}

void
conn_set_authenticated(struct conn *c)
{
	if (c != NULL)
		c->authenticated = 1;
}

int
conn_authenticated(const struct conn *c)
{
	return c->authenticated;
}

void
conn_set_idle_timeout(struct conn *c, unsigned ms)
{
	(void)c;
	(void)ms;
}

/* Deadlines are timers; an input has no time, so they never fire here
 * (tests/unit/test_netlimits.c runs them on a real loop). */
void
conn_set_auth_timeout(struct conn *c, unsigned ms)
{
	(void)c;
	(void)ms;
}

void
conn_set_deadline(struct conn *c, unsigned ms, const char *what)
{
	(void)c;
	(void)ms;
	(void)what;
}

/* The harnesses never dial through a proxy: the route is ignored. */
int
conn_dial_proxy(uv_loop_t *loop, struct tls_ctx *ctx, const char *host,
    int port, const char *sni, const struct proxy *px,
    const struct conn_cbs *cbs, void *ud, struct conn **out)
{
	(void)px;
	return conn_dial(loop, ctx, host, port, sni, cbs, ud, out);
}
