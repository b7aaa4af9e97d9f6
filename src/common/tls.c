/* tls: TLS connections over libuv TCP handles. libuv owns every socket;
 * OpenSSL only ever sees two memory BIOs: bytes read from the socket go
 * into rbio, SSL_read turns them into plaintext; plaintext queued by
 * conn_write is encrypted in batches into wbio, whose contents one uv_write
 * hands to the kernel. Nothing blocks the loop.
 *
 * Writes are coalesced: conn_write only appends to a plaintext queue and
 * arms a uv_idle handle; the idle callback (before the loop polls again)
 * or the completion of the previous uv_write encrypts what accumulated and
 * issues one uv_write. At most one uv_write is in flight per connection.
 *
 * Lifetime: a conn has three handles (tcp, idle, timer). It is freed when
 * the last of them is closed, right after on_close; until then every
 * callback that fires finds a live object that knows it is closing. */
#include "common/tls.h"

#include "common/admit.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proxy.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_READ_SIZE ((size_t)64 << 10)
/* Plaintext encrypted per uv_write: big enough for full 16 KiB records and
 * few loop turns, small enough to keep per-connection memory bounded. */
#define CONN_FLUSH_CHUNK ((size_t)512 << 10)
/* Hard cap on queued plaintext; callers are expected to respect
 * CONN_HIGH_WATER long before this. */
#define CONN_PENDING_MAX ((size_t)256 << 20)
/* Buffers grown beyond this are released when they empty, unless a
 * batch this big went through them within CONN_BUF_HOLD_MS: a bulk
 * stream keeps its buffers (freeing them after every batch made each
 * next one regrow by realloc and fault its pages in, about 5 % of a
 * forwarding agent's CPU), a quiet connection gives them back. */
#define CONN_BUF_KEEP ((size_t)64 << 10)
#define CONN_BUF_HOLD_MS 1000
/* ... and never kept above this. */
#define CONN_BUF_KEEP_MAX ((size_t)4 << 20)
#define CONN_HANDSHAKE_MS 30000
#define CONN_CLOSE_MS 5000
#define CONN_FAIL_CLOSE_MS 2000
/* A proxy's answer to CONNECT is a status line and a few headers. */
#define CONN_PROXY_HDR_MAX ((size_t)8 << 10)

struct tls_ctx {
	SSL_CTX *ssl;
	int server;
	int verify_peer;
};

enum conn_state {
	CS_RESOLVING,
	CS_CONNECTING,
	CS_PROXY,       /* CONNECT sent to an HTTP proxy, awaiting 2xx */
	CS_HANDSHAKE,
	CS_OPEN,
	CS_CLOSING,     /* flushing, close_notify, shutdown, lingering */
	CS_DEAD         /* handles closing; on_close pending */
};

/* The HTTP proxy a dialled connection goes through, until it tunnels. */
struct conn_px {
	char url[PROXY_HOST_MAX + 32];  /* for logs; no credentials */
	struct buf req;                 /* CONNECT request (credentials) */
	uv_write_t wreq;
	http_parser hp;
	size_t seen;                    /* response bytes so far */
	int writing;
	int done;                       /* the response header is complete */
};

struct conn {
	uv_tcp_t tcp;
	uv_idle_t idle;
	uv_timer_t timer;
	uv_loop_t *loop;
	struct tls_ctx *ctx;            /* NULL: plain TCP */
	SSL *ssl;
	BIO *rbio;                      /* network -> SSL */
	BIO *wbio;                      /* SSL -> network */
	struct conn_cbs cbs;
	void *ud;
	enum conn_state state;
	int server;
	int err;                        /* reported to on_close */
	int cbs_set;
	int paused;
	int reading;
	int eof;
	int writing;                    /* a uv_write is in flight */
	int failed;                     /* fatal TLS error: no close_notify */
	int notify_sent;
	int shutdown_sent;
	int drain_armed;
	int need_flush;
	int need_pump;
	int idle_active;
	int gai_pending;
	int retrying;                   /* tcp closing: try the next address */
	int nclosing;                   /* handles whose close is pending */
	int delivering;
	int authed;                     /* see conn_set_authenticated */
	int counted;                    /* holds a slot of adm */
	unsigned idle_ms;
	uint64_t last_active;            /* last read or finished write */
	/* Absolute loop times (uv_now), 0 for none; the one timer is armed
	 * for the nearest (conn_rearm). */
	uint64_t hs_deadline;           /* connect + handshake */
	uint64_t auth_deadline;         /* while not authenticated */
	uint64_t deadline;              /* conn_set_deadline */
	const char *deadline_what;
	struct admit *adm;              /* the listener's, while counted */
	struct admit_key akey;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	uv_getaddrinfo_t gai;
	uv_connect_t creq;
	struct addrinfo *ai;
	struct addrinfo *ai_next;
	struct buf pt;                  /* plaintext not yet encrypted */
	uint64_t big_ms;                /* last CONN_BUF_KEEP-sized write */
	size_t pt_off;                  /* start of the unsent part of pt */
	struct buf flight;              /* bytes handed to uv_write */
	struct buf wout;                /* wbio: records not yet in flight */
	struct buf unread;              /* plaintext given back by the reader */
	char *host;                     /* dial target, for logs and checks */
	char *sni;
	int port;
	char *peer_cn;
	char peer_addr[64];
	struct conn_px *px;             /* NULL: direct, or tunnel set up */
	struct conn *live_next;         /* conn_live list */
	struct conn **live_pprev;
};

/* One bound address of a listener. */
struct listener_sock {
	uv_tcp_t tcp;                   /* first: close callbacks cast */
	struct listener *l;             /* NULL: bind failed, never used */
	int port;
};

/* A service on one or more addresses: one callback, one set of caps and
 * counts for all of them. */
struct listener {
	struct listener_sock *socks[LISTENER_ADDRS_MAX];
	size_t nsocks;
	size_t nopen;                   /* socks whose handle is not closed */
	int stopped;
	uv_loop_t *loop;
	struct tls_ctx *ctx;
	void (*on_accept)(struct conn *, void *);
	void *arg;
	struct admit *adm;              /* NULL: no caps */
	unsigned auth_ms;
};

/* Connections allocated and not yet freed in this process, and the
 * most at once since listener_stats last reset it. */
static atomic_size_t conn_nlive;
static atomic_size_t conn_npeak;

static void conn_flush(struct conn *c);
static void conn_pump(struct conn *c);
static void conn_teardown(struct conn *c, int err);
static void conn_update_reading(struct conn *c);
static void conn_on_timer(uv_timer_t *t);
static void conn_on_idle(uv_idle_t *h);
static void conn_rearm(struct conn *c);
static int conn_tls_start(struct conn *c);

/* ---- contexts ----------------------------------------------------------- */

/* The OpenSSL error queue as one line (and empties it). */
static const char *
tls_errstr(char *out, size_t outsz)
{
	unsigned long e;
	size_t off = 0;
	char one[256];

	out[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, one, sizeof(one));
		if (off < outsz)
			off += (size_t)snprintf(out + off, outsz - off, "%s%s",
			    off ? "; " : "", one);
	}
	if (out[0] == '\0')
		snprintf(out, outsz, "unknown");
	return out;
}

static int
tls_ctx_common(SSL_CTX *s)
{
	/* TLS 1.2 is the floor on every hop (DESIGN.md, security model). */
	if (SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) != 1)
		return PH_ERR_CRYPTO;
	SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* AES-128-GCM first: a few percent faster than AES-256-GCM here
	 * (bench row 12k's details), and every forwarded byte is sealed and
	 * opened on two hops. AWS's endpoints and Go's crypto/tls (the AWS
	 * plugin) prefer it too. The server's order decides. */
	if (SSL_CTX_set_ciphersuites(s, "TLS_AES_128_GCM_SHA256:"
	    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") != 1)
		return PH_ERR_CRYPTO;
	/* Idle connections (thousands of agents) give back their record
	 * buffers. */
	SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

int
tls_ctx_new_server(struct tls_ctx **out, const char *cert_file,
    const char *key_file, const char *client_ca_file)
{
	static const unsigned char sid[] = "porthole";
	struct tls_ctx *t = NULL;
	STACK_OF(X509_NAME) *names;
	char e[512];
	int rc = PH_ERR_CRYPTO;

	*out = NULL;
	if (cert_file == NULL || key_file == NULL)
		return PH_ERR_INVALID;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return PH_ERR_NOMEM;
	t->server = 1;
	ERR_clear_error();
	if ((t->ssl = SSL_CTX_new(TLS_server_method())) == NULL)
		goto fail;
	if (tls_ctx_common(t->ssl) != 0)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(t->ssl, cert_file) != 1) {
		log_error("event=tls_ctx_failed file=%s err=\"%s\"", cert_file,
		    tls_errstr(e, sizeof(e)));
		goto fail_logged;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ssl, key_file,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(t->ssl) != 1) {
		log_error("event=tls_ctx_failed file=%s err=\"%s\"", key_file,
		    tls_errstr(e, sizeof(e)));
		goto fail_logged;
	}
	/* Needed for session resumption whenever peers are verified. */
	SSL_CTX_set_session_id_context(t->ssl, sid, sizeof(sid) - 1);
	/* No peer of ours resumes sessions, and each TLS 1.3 ticket costs a
	 * re-parse of the client certificate: send none. */
	SSL_CTX_set_num_tickets(t->ssl, 0);
	SSL_CTX_set_options(t->ssl, SSL_OP_NO_TICKET);
	if (client_ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(t->ssl, client_ca_file,
		    NULL) != 1) {
			log_error("event=tls_ctx_failed file=%s err=\"%s\"",
			    client_ca_file, tls_errstr(e, sizeof(e)));
			goto fail_logged;
		}
		names = SSL_load_client_CA_file(client_ca_file);
		if (names != NULL)
			SSL_CTX_set_client_CA_list(t->ssl, names);
		/* Agents present a certificate; browsers and CLIs need not:
		 * no SSL_VERIFY_FAIL_IF_NO_PEER_CERT. A certificate that is
		 * presented must verify. */
		SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
		t->verify_peer = 1;
	}
	*out = t;
	return 0;
fail:
	log_error("event=tls_ctx_failed err=\"%s\"", tls_errstr(e, sizeof(e)));
fail_logged:
	if (t->ssl != NULL)
		SSL_CTX_free(t->ssl);
	free(t);
	return rc;
}

int
tls_ctx_reload_server(struct tls_ctx *ctx, const char *cert_file,
    const char *key_file, const char *client_ca_file)
{
	struct tls_ctx *n;
	SSL_CTX *old;
	int rc;

	if (ctx == NULL || !ctx->server)
		return PH_ERR_INVALID;
	if ((rc = tls_ctx_new_server(&n, cert_file, key_file,
	    client_ca_file)) != 0)
		return rc;
	/* Connections hold a reference to the SSL_CTX they were made
	 * with; the old one goes when the last of them does. */
	old = ctx->ssl;
	ctx->ssl = n->ssl;
	ctx->verify_peer = n->verify_peer;
	n->ssl = old;
	tls_ctx_free(n);
	return 0;
}

int
tls_ctx_new_client(struct tls_ctx **out, const char *ca_file,
    const char *cert_file, const char *key_file)
{
	struct tls_ctx *t = NULL;
	char e[512];
	int ok;

	*out = NULL;
	if ((cert_file == NULL) != (key_file == NULL))
		return PH_ERR_INVALID;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return PH_ERR_NOMEM;
	ERR_clear_error();
	if ((t->ssl = SSL_CTX_new(TLS_client_method())) == NULL ||
	    tls_ctx_common(t->ssl) != 0)
		goto fail;
	if (ca_file != NULL)
		ok = SSL_CTX_load_verify_locations(t->ssl, ca_file, NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(t->ssl);
	if (ok != 1) {
		log_error("event=tls_ctx_failed file=%s err=\"%s\"",
		    ca_file ? ca_file : "(system)", tls_errstr(e, sizeof(e)));
		goto fail_logged;
	}
	SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
	t->verify_peer = 1;
	if (cert_file != NULL) {
		if (SSL_CTX_use_certificate_chain_file(t->ssl,
		    cert_file) != 1 || SSL_CTX_use_PrivateKey_file(t->ssl,
		    key_file, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(t->ssl) != 1) {
			log_error("event=tls_ctx_failed file=%s err=\"%s\"",
			    cert_file, tls_errstr(e, sizeof(e)));
			goto fail_logged;
		}
	}
	*out = t;
	return 0;
fail:
	log_error("event=tls_ctx_failed err=\"%s\"", tls_errstr(e, sizeof(e)));
fail_logged:
	if (t->ssl != NULL)
		SSL_CTX_free(t->ssl);
	free(t);
	return PH_ERR_CRYPTO;
}

void
tls_ctx_free(struct tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

/* ---- small helpers ------------------------------------------------------ */

/* libuv writes with writev(), which raises SIGPIPE when the peer has gone;
 * that must be an error code, not the end of the process. A program that
 * installed its own disposition keeps it. */
static void
conn_ignore_sigpipe(void)
{
	struct sigaction sa;

	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		(void)sigaction(SIGPIPE, &sa, NULL);
	}
}

static size_t
conn_pt_left(const struct conn *c)
{
	return c->pt.len - c->pt_off;
}

static void
conn_schedule(struct conn *c)
{
	int rc;

	if (c->idle_active || c->state == CS_DEAD)
		return;
	if ((rc = uv_idle_start(&c->idle, conn_on_idle)) != 0) {
		log_error("event=conn_idle_failed err=\"%s\"", uv_strerror(rc));
		return;
	}
	c->idle_active = 1;
}

static void
conn_schedule_flush(struct conn *c)
{
	c->need_flush = 1;
	conn_schedule(c);
}

static void
conn_arm_timer(struct conn *c, uint64_t ms, uv_timer_cb cb)
{
	int rc;

	if (c->state == CS_DEAD)
		return;
	if ((rc = uv_timer_start(&c->timer, cb, ms, 0)) != 0)
		log_error("event=conn_timer_failed err=\"%s\"",
		    uv_strerror(rc));
}

static void
conn_set_peer_addr(struct conn *c, struct sockaddr_storage *out)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss), rc;

	c->peer_addr[0] = '\0';
	memset(&ss, 0, sizeof(ss));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (out != NULL)
		*out = ss;
	if (ss.ss_family == AF_INET6)
		rc = uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer_addr,
		    sizeof(c->peer_addr));
	else
		rc = uv_ip4_name((struct sockaddr_in *)&ss, c->peer_addr,
		    sizeof(c->peer_addr));
	if (rc != 0)
		c->peer_addr[0] = '\0';
}

static const char *
conn_name(const struct conn *c)
{
	if (c->host != NULL)
		return c->host;
	return c->peer_addr[0] ? c->peer_addr : "?";
}

/* ---- teardown ----------------------------------------------------------- */

/* Every connection not yet freed, so that a program that stops can close
 * the ones still open through their owners (conn_abort_all). */
static struct conn *conn_live;
static uv_mutex_t conn_live_mu;
static uv_once_t conn_live_once = UV_ONCE_INIT;

static void
conn_live_init(void)
{
	if (uv_mutex_init(&conn_live_mu) != 0)
		abort();
}

static void
conn_live_add(struct conn *c)
{
	uv_once(&conn_live_once, conn_live_init);
	uv_mutex_lock(&conn_live_mu);
	if ((c->live_next = conn_live) != NULL)
		conn_live->live_pprev = &c->live_next;
	conn_live = c;
	c->live_pprev = &conn_live;
	uv_mutex_unlock(&conn_live_mu);
}

static void
conn_px_free(struct conn *c)
{
	if (c->px == NULL)
		return;
	if (c->px->req.data != NULL)
		OPENSSL_cleanse(c->px->req.data, c->px->req.cap);
	buf_free(&c->px->req);
	free(c->px);
	c->px = NULL;
}

static void
conn_free(struct conn *c)
{
	if (c->counted)
		admit_release(c->adm, &c->akey);
	atomic_fetch_sub(&conn_nlive, 1);
	if (c->ai != NULL)
		uv_freeaddrinfo(c->ai);
	if (c->ssl != NULL)
		SSL_free(c->ssl);  /* frees both BIOs */
	buf_free(&c->pt);
	buf_free(&c->flight);
	buf_free(&c->wout);
	buf_free(&c->unread);
	free(c->host);
	free(c->sni);
	free(c->peer_cn);
	conn_px_free(c);
	if (c->live_pprev != NULL) {
		uv_mutex_lock(&conn_live_mu);
		if ((*c->live_pprev = c->live_next) != NULL)
			c->live_next->live_pprev = c->live_pprev;
		uv_mutex_unlock(&conn_live_mu);
	}
	free(c);
}

static void
conn_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->nclosing > 0)
		return;
	if (c->cbs_set && c->cbs.on_close != NULL)
		c->cbs.on_close(c, c->err);
	conn_free(c);
}

static void conn_connect_next(struct conn *c);

static void
conn_tcp_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	int rc;

	if (c->retrying && c->state != CS_DEAD) {
		/* A failed connect leaves the socket unusable: start over
		 * with a fresh handle for the next address. */
		c->retrying = 0;
		if ((rc = uv_tcp_init(c->loop, &c->tcp)) != 0) {
			log_warn("event=dial_failed host=%s err=\"%s\"",
			    conn_name(c), uv_strerror(rc));
			c->nclosing = 2;  /* idle and timer still to close */
			c->state = CS_DEAD;
			c->err = PH_ERR_IO;
			uv_close((uv_handle_t *)&c->idle, conn_handle_closed);
			uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
			return;
		}
		c->tcp.data = c;
		conn_connect_next(c);
		return;
	}
	c->retrying = 0;
	conn_handle_closed(h);
}

static void
conn_close_handles(struct conn *c)
{
	c->nclosing = 3;
	/* A tcp handle closing for a retry still reports to
	 * conn_tcp_closed, which sees CS_DEAD and counts it. */
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, conn_tcp_closed);
	uv_close((uv_handle_t *)&c->idle, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

/* Close everything now; on_close(err) follows from the close callbacks. */
static void
conn_teardown(struct conn *c, int err)
{
	if (c->state == CS_DEAD)
		return;
	if (err != 0 && c->err == 0)
		c->err = err;
	c->state = CS_DEAD;
	c->idle_active = 0;
	if (c->gai_pending) {
		/* The resolver callback finishes the job. */
		uv_cancel((uv_req_t *)&c->gai);
		return;
	}
	conn_close_handles(c);
}

/* A fatal error: send what TLS has to say (an alert), then close. */
static void
conn_fail(struct conn *c, int err)
{
	if (c->state >= CS_CLOSING) {
		if (err != 0 && c->err == 0)
			c->err = err;
		if (c->state == CS_CLOSING)
			c->failed = 1;
		return;
	}
	c->err = err;
	c->failed = 1;
	c->state = CS_CLOSING;
	(void)uv_timer_stop(&c->timer);
	conn_arm_timer(c, CONN_FAIL_CLOSE_MS, conn_on_timer);
	conn_schedule_flush(c);
}

/* ---- writing ------------------------------------------------------------ */

static void
conn_after_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	if (c->state == CS_DEAD)
		return;
	/* Linger until the peer closes too, so our last bytes are not lost
	 * to a reset; the close timer bounds the wait. */
	if (status < 0 || c->eof)
		conn_teardown(c, 0);
	else
		conn_update_reading(c);
}

static void
conn_maybe_drained(struct conn *c)
{
	if (c->drain_armed && conn_write_pending(c) < CONN_LOW_WATER) {
		c->drain_armed = 0;
		if (c->state == CS_OPEN && c->cbs.on_drain != NULL)
			c->cbs.on_drain(c);
	}
}

/* Whether an emptied buffer goes back to the allocator (CONN_BUF_KEEP). */
static int
conn_buf_release(const struct conn *c, const struct buf *b)
{
	return b->cap > CONN_BUF_KEEP && (b->cap > CONN_BUF_KEEP_MAX ||
	    uv_now(c->loop) - c->big_ms >= CONN_BUF_HOLD_MS);
}

static void
conn_after_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	c->writing = 0;
	if (c->flight.len >= CONN_BUF_KEEP)
		c->big_ms = uv_now(c->loop);
	buf_reset(&c->flight);
	if (conn_pt_left(c) == 0 && conn_buf_release(c, &c->flight))
		buf_free(&c->flight);
	if (c->state == CS_DEAD)
		return;
	if (status < 0) {
		log_limited(LOG_INFO, "conn_write_failed",
		    "event=conn_write_failed peer=%s err=\"%s\"",
		    conn_name(c), uv_strerror(status));
		conn_teardown(c, PH_ERR_IO);
		return;
	}
	/* A peer that keeps taking our bytes is alive: idle and close
	 * timers count from here too. */
	c->last_active = uv_now(c->loop);
	if (c->state == CS_CLOSING && !c->failed)
		conn_arm_timer(c, CONN_CLOSE_MS, conn_on_timer);
	conn_flush(c);
	if (c->state == CS_OPEN)
		conn_maybe_drained(c);
}

/* Encrypt a batch of queued plaintext into wbio. */
static int
conn_encrypt(struct conn *c)
{
	size_t n = conn_pt_left(c);
	char e[512];
	int r;

	if (n == 0)
		return 0;
	if (n > CONN_FLUSH_CHUNK)
		n = CONN_FLUSH_CHUNK;
	ERR_clear_error();
	r = SSL_write(c->ssl, c->pt.data + c->pt_off, (int)n);
	if (r <= 0) {
		log_warn("event=tls_write_failed peer=%s err=\"%s\"",
		    conn_name(c), tls_errstr(e, sizeof(e)));
		return PH_ERR_CRYPTO;
	}
	/* Memory BIOs never push back, so the whole batch was taken. */
	c->pt_off += (size_t)r;
	return 0;
}

static void
conn_flush(struct conn *c)
{
	struct buf tmp;
	uv_buf_t b;
	size_t n;
	int rc;

	if (c->writing || c->state == CS_DEAD ||
	    c->state < CS_HANDSHAKE || (c->ctx != NULL && c->ssl == NULL))
		return;
	if (c->ctx == NULL) {
		if (!c->failed) {
			n = conn_pt_left(c);
			if (n > CONN_FLUSH_CHUNK)
				n = CONN_FLUSH_CHUNK;
			if (buf_append(&c->flight, c->pt.data + c->pt_off,
			    n) != 0) {
				conn_teardown(c, PH_ERR_NOMEM);
				return;
			}
			c->pt_off += n;
		}
	} else {
		if ((c->state == CS_OPEN || c->state == CS_CLOSING) &&
		    !c->failed && conn_encrypt(c) != 0) {
			conn_teardown(c, PH_ERR_CRYPTO);
			return;
		}
		if (c->state == CS_CLOSING && !c->failed &&
		    conn_pt_left(c) == 0 && !c->notify_sent) {
			c->notify_sent = 1;
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl);
			ERR_clear_error();
		}
		/* Not writing, so flight is empty: the records change
		 * buffers instead of being copied. */
		if (c->wout.len > 0) {
			if (c->flight.len == 0) {
				tmp = c->flight;
				c->flight = c->wout;
				c->wout = tmp;
				if (conn_buf_release(c, &c->wout))
					buf_free(&c->wout);
			} else if (buf_append(&c->flight, c->wout.data,
			    c->wout.len) != 0) {
				conn_teardown(c, PH_ERR_NOMEM);
				return;
			} else {
				buf_reset(&c->wout);
			}
		}
	}
	if (conn_pt_left(c) == 0) {
		if (conn_buf_release(c, &c->pt))
			buf_free(&c->pt);
		c->pt_off = 0;
		buf_reset(&c->pt);
	}
	if (c->flight.len > 0) {
		b = uv_buf_init((char *)c->flight.data,
		    (unsigned)c->flight.len);
		c->wreq.data = c;
		if ((rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1,
		    conn_after_write)) != 0) {
			log_limited(LOG_INFO, "conn_write_failed",
			    "event=conn_write_failed peer=%s err=\"%s\"",
			    conn_name(c), uv_strerror(rc));
			buf_reset(&c->flight);
			conn_teardown(c, PH_ERR_IO);
			return;
		}
		c->writing = 1;
		return;
	}
	if (c->state == CS_CLOSING && !c->shutdown_sent &&
	    (c->failed || conn_pt_left(c) == 0)) {
		c->shutdown_sent = 1;
		c->sreq.data = c;
		if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp,
		    conn_after_shutdown) != 0)
			conn_teardown(c, 0);
	}
}

/* ---- reading ------------------------------------------------------------ */

static void
conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	/* One buffer per thread: read callbacks run one at a time and the
	 * bytes are consumed (copied into rbio or delivered) before the
	 * callback returns. */
	static _Thread_local char rbuf[CONN_READ_SIZE];

	(void)h;
	(void)hint;
	b->base = rbuf;
	b->len = sizeof(rbuf);
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void conn_proxy_read(struct conn *c, const char *p, size_t n);

static void
conn_update_reading(struct conn *c)
{
	int want, rc;

	if (c->state == CS_DEAD || c->eof)
		return;
	want = c->state == CS_HANDSHAKE || c->state == CS_PROXY ||
	    (c->state == CS_OPEN && !c->paused) ||
	    (c->state == CS_CLOSING && c->shutdown_sent);
	if (want && !c->reading) {
		if ((rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc,
		    conn_on_read)) != 0) {
			log_limited(LOG_INFO, "conn_read_failed",
			    "event=conn_read_failed peer=%s err=\"%s\"",
			    conn_name(c), uv_strerror(rc));
			conn_teardown(c, PH_ERR_IO);
			return;
		}
		c->reading = 1;
	} else if (!want && c->reading) {
		(void)uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = 0;
	}
}

/* Hand plaintext to the consumer, given-back bytes first. */
static void
conn_deliver(struct conn *c, const uint8_t *p, size_t n)
{
	uint8_t *old;
	size_t oldn;

	while (c->unread.len > 0 && c->state == CS_OPEN && !c->paused) {
		if (n > 0) {
			/* Keep the order: new bytes go behind the old. */
			if (buf_append(&c->unread, p, n) != 0) {
				conn_teardown(c, PH_ERR_NOMEM);
				return;
			}
			n = 0;
		}
		old = buf_steal(&c->unread, &oldn);
		buf_init(&c->unread, c->unread.max);
		c->delivering = 1;
		if (c->cbs.on_read != NULL)
			c->cbs.on_read(c, old, oldn);
		c->delivering = 0;
		free(old);
	}
	if (n == 0)
		return;
	if (c->state != CS_OPEN)
		return;
	if (c->paused) {
		if (buf_append(&c->unread, p, n) != 0)
			conn_teardown(c, PH_ERR_NOMEM);
		return;
	}
	if (c->cbs.on_read != NULL)
		c->cbs.on_read(c, p, n);
}

static void
conn_cn_from_peer(struct conn *c)
{
	X509 *x;
	X509_NAME *name;
	X509_NAME_ENTRY *ent;
	unsigned char *u = NULL;
	int idx, len;

	if (!c->ctx->verify_peer)
		return;
	if ((x = SSL_get0_peer_certificate(c->ssl)) == NULL ||
	    SSL_get_verify_result(c->ssl) != X509_V_OK)
		return;
	name = X509_get_subject_name(x);
	if ((idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0)
		return;
	ent = X509_NAME_get_entry(name, idx);
	len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(ent));
	/* Refuse embedded NULs: the CN is compared as a C string. */
	if (len > 0 && len < 256 && memchr(u, '\0', (size_t)len) == NULL)
		c->peer_cn = strndup((char *)u, (size_t)len);
	OPENSSL_free(u);
}

static void
conn_handshake_failed(struct conn *c)
{
	long v = SSL_get_verify_result(c->ssl);
	char e[512];

	if (v != X509_V_OK && (!c->server || SSL_get0_peer_certificate(c->ssl)
	    != NULL)) {
		ERR_clear_error();
		log_limited(LOG_WARN, "tls_handshake_failed",
		    "event=tls_handshake_failed peer=%s role=%s "
		    "err=\"certificate verify failed: %s\"", conn_name(c),
		    c->server ? "server" : "client",
		    X509_verify_cert_error_string(v));
		conn_fail(c, PH_ERR_DENIED);
		return;
	}
	log_limited(LOG_WARN, "tls_handshake_failed",
	    "event=tls_handshake_failed peer=%s role=%s err=\"%s\"",
	    conn_name(c), c->server ? "server" : "client",
	    tls_errstr(e, sizeof(e)));
	conn_fail(c, PH_ERR_CRYPTO);
}

static void
conn_opened(struct conn *c)
{
	c->state = CS_OPEN;
	c->last_active = uv_now(c->loop);
	conn_rearm(c);
	conn_update_reading(c);
	if (conn_pt_left(c) > 0 || (c->ssl && BIO_ctrl_pending(c->wbio) > 0))
		conn_schedule_flush(c);
	if (c->cbs.on_open != NULL)
		c->cbs.on_open(c);
}

/* Run TLS over whatever ciphertext is buffered and deliver plaintext. */
static void
conn_pump(struct conn *c)
{
	static _Thread_local uint8_t ptbuf[CONN_READ_SIZE];
	size_t total;
	char e[512];
	int r, err;

	if (c->state == CS_HANDSHAKE) {
		ERR_clear_error();
		r = SSL_do_handshake(c->ssl);
		if (BIO_ctrl_pending(c->wbio) > 0)
			conn_schedule_flush(c);
		if (r != 1) {
			err = SSL_get_error(c->ssl, r);
			if (err != SSL_ERROR_WANT_READ &&
			    err != SSL_ERROR_WANT_WRITE)
				conn_handshake_failed(c);
			return;
		}
		conn_cn_from_peer(c);
		/* A verified client certificate (an agent) authenticates. */
		if (c->server && c->peer_cn != NULL)
			conn_set_authenticated(c);
		conn_opened(c);
	}
	if (c->state == CS_CLOSING) {
		/* Nothing more is delivered; drop what arrives. */
		(void)BIO_reset(c->rbio);
		return;
	}
	while (c->state == CS_OPEN && !c->paused) {
		if (c->unread.len > 0) {
			conn_deliver(c, NULL, 0);
			continue;
		}
		/* Gather up to 64 KiB (several records) per callback. */
		total = 0;
		err = SSL_ERROR_NONE;
		while (total < sizeof(ptbuf)) {
			ERR_clear_error();
			r = SSL_read(c->ssl, ptbuf + total,
			    (int)(sizeof(ptbuf) - total));
			if (r <= 0) {
				err = SSL_get_error(c->ssl, r);
				break;
			}
			total += (size_t)r;
		}
		if (total > 0)
			conn_deliver(c, ptbuf, total);
		if (BIO_ctrl_pending(c->wbio) > 0)
			conn_schedule_flush(c);
		if (err == SSL_ERROR_NONE)
			continue;
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			break;
		if (c->state != CS_OPEN)
			break;
		if (err == SSL_ERROR_ZERO_RETURN) {
			/* close_notify: the peer sends nothing more. */
			conn_close(c);
			break;
		}
		log_limited(LOG_INFO, "tls_read_failed",
		    "event=tls_read_failed peer=%s err=\"%s\"",
		    conn_name(c), tls_errstr(e, sizeof(e)));
		conn_fail(c, PH_ERR_CRYPTO);
		break;
	}
}

static void
conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	int rc;

	if (c->state == CS_DEAD)
		return;
	if (nread == 0)
		return;
	if (nread < 0) {
		c->reading = 0;
		(void)uv_read_stop(s);
		if (nread == UV_EOF) {
			c->eof = 1;
			if (c->state == CS_CLOSING) {
				if (c->shutdown_sent)
					conn_teardown(c, 0);
				return;
			}
			if (c->state == CS_PROXY) {
				log_warn("event=proxy_connect_failed host=%s "
				    "port=%d proxy=%s err=\"the proxy closed "
				    "the connection without answering "
				    "CONNECT\"", conn_name(c), c->port,
				    c->px->url);
				conn_teardown(c, PH_ERR_IO);
				return;
			}
			if (c->state == CS_HANDSHAKE) {
				log_limited(LOG_INFO, "tls_handshake_eof",
				    "event=tls_handshake_failed peer=%s "
				    "err=\"connection closed by peer\"",
				    conn_name(c));
				conn_teardown(c, PH_ERR_IO);
				return;
			}
			conn_close(c);
			return;
		}
		log_limited(LOG_INFO, "conn_read_failed",
		    "event=conn_read_failed peer=%s err=\"%s\"",
		    conn_name(c), uv_strerror((int)nread));
		conn_teardown(c, c->state == CS_CLOSING ? 0 : PH_ERR_IO);
		return;
	}
	c->last_active = uv_now(c->loop);
	if (c->state == CS_CLOSING)
		return;
	if (c->state == CS_PROXY) {
		conn_proxy_read(c, b->base, (size_t)nread);
		return;
	}
	if (c->ctx == NULL) {
		conn_deliver(c, (const uint8_t *)b->base, (size_t)nread);
		return;
	}
	if (c->ssl == NULL && (rc = conn_tls_start(c)) != 0) {
		log_limited(LOG_WARN, "tls_setup_failed",
		    "event=tls_setup_failed peer=%s err=\"%s\"",
		    conn_name(c), ph_strerror(rc));
		conn_teardown(c, rc);
		return;
	}
	if (BIO_write(c->rbio, b->base, (int)nread) != (int)nread) {
		conn_teardown(c, PH_ERR_NOMEM);
		return;
	}
	conn_pump(c);
}

static void
conn_on_idle(uv_idle_t *h)
{
	struct conn *c = h->data;

	if (c->need_pump) {
		c->need_pump = 0;
		if (c->ctx != NULL)
			conn_pump(c);
		else
			conn_deliver(c, NULL, 0);
	}
	if (c->state == CS_DEAD)
		return;
	if (c->need_flush) {
		c->need_flush = 0;
		conn_flush(c);
	}
	if (c->state == CS_DEAD)
		return;
	if (!c->need_pump && !c->need_flush) {
		(void)uv_idle_stop(&c->idle);
		c->idle_active = 0;
	}
}

/* ---- timers ------------------------------------------------------------- */

static uint64_t
conn_nearest(uint64_t a, uint64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

/* Arm the timer for the nearest deadline that applies now. While closing
 * the timer bounds the close instead (conn_close, conn_fail). */
static void
conn_rearm(struct conn *c)
{
	uint64_t now, due;

	if (c->state >= CS_CLOSING)
		return;
	if (c->state < CS_OPEN)
		due = c->hs_deadline;
	else
		due = conn_nearest(c->idle_ms > 0 ?
		    c->last_active + c->idle_ms : 0, c->deadline);
	if (!c->authed)
		due = conn_nearest(due, c->auth_deadline);
	(void)uv_timer_stop(&c->timer);
	if (due == 0)
		return;
	now = uv_now(c->loop);
	conn_arm_timer(c, due > now ? due - now : 0, conn_on_timer);
}

static void
conn_on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t now = uv_now(c->loop);

	switch (c->state) {
	case CS_RESOLVING:
	case CS_CONNECTING:
	case CS_PROXY:
	case CS_HANDSHAKE:
	case CS_OPEN:
		/* Whatever the peer sends, it has this long to prove who it
		 * is (a slot of the unauthenticated cap is held till then). */
		if (!c->authed && c->auth_deadline != 0 &&
		    now >= c->auth_deadline) {
			log_limited(LOG_INFO, "conn_auth_timeout",
			    "event=conn_timeout peer=%s phase=authentication",
			    conn_name(c));
			conn_teardown(c, PH_ERR_EXPIRED);
			break;
		}
		if (c->state < CS_OPEN) {
			if (c->hs_deadline != 0 && now >= c->hs_deadline) {
				log_limited(LOG_WARN, "conn_timeout",
				    "event=conn_timeout peer=%s phase=%s%s%s",
				    conn_name(c), c->state == CS_HANDSHAKE ?
				    "handshake" : c->state == CS_PROXY ?
				    "proxy" : "connect", c->px != NULL ?
				    " proxy=" : "", c->px != NULL ?
				    c->px->url : "");
				conn_teardown(c, PH_ERR_EXPIRED);
				break;
			}
			conn_rearm(c);
			break;
		}
		if (c->deadline != 0 && now >= c->deadline) {
			log_limited(LOG_INFO, "conn_deadline",
			    "event=conn_timeout peer=%s phase=%s",
			    conn_name(c), c->deadline_what);
			conn_teardown(c, PH_ERR_EXPIRED);
			break;
		}
		if (c->idle_ms > 0) {
			if (c->paused)
				c->last_active = now;
			else if (now - c->last_active >= c->idle_ms) {
				log_limited(LOG_INFO, "conn_idle_timeout",
				    "event=conn_idle_timeout peer=%s",
				    conn_name(c));
				conn_close(c);
				c->err = PH_ERR_EXPIRED;
				break;
			}
		}
		conn_rearm(c);
		break;
	case CS_CLOSING:
		conn_teardown(c, 0);
		break;
	case CS_DEAD:
		break;
	}
}

/* ---- setup -------------------------------------------------------------- */

static struct conn *
conn_new(uv_loop_t *loop, struct tls_ctx *ctx, int server)
{
	struct conn *c;
	size_t n, peak;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->loop = loop;
	c->ctx = ctx;
	c->server = server;
	buf_init(&c->pt, CONN_PENDING_MAX);
	buf_init(&c->flight, CONN_PENDING_MAX);
	buf_init(&c->wout, CONN_PENDING_MAX);
	buf_init(&c->unread, CONN_PENDING_MAX);
	if (uv_tcp_init(loop, &c->tcp) != 0) {
		free(c);
		return NULL;
	}
	conn_live_add(c);
	(void)uv_idle_init(loop, &c->idle);
	(void)uv_timer_init(loop, &c->timer);
	c->tcp.data = c->idle.data = c->timer.data = c;
	/* Only accepted connections have to prove who they are. */
	c->authed = !server;
	n = atomic_fetch_add(&conn_nlive, 1) + 1;
	peak = atomic_load(&conn_npeak);
	while (n > peak &&
	    !atomic_compare_exchange_weak(&conn_npeak, &peak, n))
		;
	return c;
}

/* Before any callback can run: undo conn_new. */
static void
conn_discard(struct conn *c)
{
	c->cbs_set = 0;  /* nobody to tell */
	c->state = CS_DEAD;
	conn_close_handles(c);
}

static int
conn_is_ip(const char *h)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, h, &a4) == 1 ||
	    inet_pton(AF_INET6, h, &a6) == 1;
}

/* wbio: SSL's records are appended to c->wout, which conn_flush hands
 * to uv_write by swapping buffers. A memory BIO cost a zero-fill of
 * every byte as it grew (BUF_MEM_grow_clean) and a copy out with
 * BIO_read. It never pushes back (as the memory BIO did not). */
static BIO_METHOD *conn_wbio_meth;
static uv_once_t conn_wbio_once = UV_ONCE_INIT;

static int
conn_wbio_write(BIO *b, const char *p, size_t n, size_t *written)
{
	struct conn *c = BIO_get_data(b);

	if (c == NULL || buf_append(&c->wout, p, n) != 0)
		return 0;
	*written = n;
	return 1;
}

static long
conn_wbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct conn *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_PENDING:
	case BIO_CTRL_WPENDING:
		return c != NULL ? (long)c->wout.len : 0;
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int
conn_wbio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void
conn_wbio_init(void)
{
	BIO_METHOD *m;

	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    "porthole conn out");
	if (m == NULL)
		return;
	if (BIO_meth_set_write_ex(m, conn_wbio_write) != 1 ||
	    BIO_meth_set_ctrl(m, conn_wbio_ctrl) != 1 ||
	    BIO_meth_set_create(m, conn_wbio_create) != 1) {
		BIO_meth_free(m);
		return;
	}
	conn_wbio_meth = m;
}

static BIO *
conn_wbio_new(struct conn *c)
{
	BIO *b;

	uv_once(&conn_wbio_once, conn_wbio_init);
	if (conn_wbio_meth == NULL || (b = BIO_new(conn_wbio_meth)) == NULL)
		return NULL;
	BIO_set_data(b, c);
	return b;
}

static int
conn_tls_start(struct conn *c)
{
	X509_VERIFY_PARAM *vp;
	const char *name;

	if ((c->ssl = SSL_new(c->ctx->ssl)) == NULL)
		return PH_ERR_NOMEM;
	c->rbio = BIO_new(BIO_s_mem());
	if ((c->wbio = conn_wbio_new(c)) == NULL) {
		BIO_free(c->rbio);
		c->rbio = NULL;
		return PH_ERR_NOMEM;
	}
	if (c->rbio == NULL) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		c->rbio = c->wbio = NULL;
		return PH_ERR_NOMEM;
	}
	/* An empty memory BIO means "try again", not end of file. */
	BIO_set_mem_eof_return(c->rbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	if (c->server) {
		SSL_set_accept_state(c->ssl);
		return 0;
	}
	SSL_set_connect_state(c->ssl);
	name = c->sni != NULL ? c->sni : c->host;
	vp = SSL_get0_param(c->ssl);
	if (conn_is_ip(name)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1)
			return PH_ERR_INVALID;
	} else {
		/* SNI only carries names, never IP literals (RFC 6066 3). */
		if (SSL_set_tlsext_host_name(c->ssl, name) != 1)
			return PH_ERR_INVALID;
		SSL_set_hostflags(c->ssl,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(c->ssl, name) != 1)
			return PH_ERR_INVALID;
	}
	return 0;
}

/* TCP is up: start TLS (or open at once for plain TCP). */
static void
conn_start(struct conn *c)
{
	int rc;

	(void)uv_tcp_nodelay(&c->tcp, 1);
	(void)uv_tcp_keepalive(&c->tcp, 1, 60);
	if (c->ctx == NULL) {
		conn_opened(c);
		return;
	}
	/* A server makes its SSL when the ClientHello arrives: a peer that
	 * connects and sends nothing costs no TLS state. */
	if (!c->server && (rc = conn_tls_start(c)) != 0) {
		log_warn("event=tls_setup_failed peer=%s err=\"%s\"",
		    conn_name(c), ph_strerror(rc));
		conn_teardown(c, rc);
		return;
	}
	c->state = CS_HANDSHAKE;
	conn_update_reading(c);
	if (!c->server)
		conn_pump(c);   /* writes the ClientHello */
}

/* ---- HTTP CONNECT proxy ------------------------------------------------ */

static int
conn_proxy_headers_done(http_parser *hp)
{
	struct conn_px *px = hp->data;

	px->done = 1;
	/* 2: no body, nothing more on this connection is HTTP. */
	return 2;
}

static const http_parser_settings conn_proxy_settings = {
	.on_headers_complete = conn_proxy_headers_done,
};

static void
conn_proxy_after_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	if (c->px != NULL) {
		c->px->writing = 0;
		/* The request held the credentials: gone once sent. */
		OPENSSL_cleanse(c->px->req.data, c->px->req.cap);
		buf_free(&c->px->req);
	}
	if (c->state == CS_DEAD || status == 0)
		return;
	log_warn("event=proxy_connect_failed host=%s port=%d proxy=%s "
	    "err=\"%s\"", conn_name(c), c->port, c->px->url,
	    uv_strerror(status));
	conn_teardown(c, PH_ERR_IO);
}

/* TCP to the proxy is up: ask it for a tunnel to host:port. */
static void
conn_proxy_start(struct conn *c)
{
	uv_buf_t b;
	int rc;

	c->state = CS_PROXY;
	http_parser_init(&c->px->hp, HTTP_RESPONSE);
	c->px->hp.data = c->px;
	b = uv_buf_init((char *)c->px->req.data, (unsigned)c->px->req.len);
	c->px->wreq.data = c;
	if ((rc = uv_write(&c->px->wreq, (uv_stream_t *)&c->tcp, &b, 1,
	    conn_proxy_after_write)) != 0) {
		log_warn("event=proxy_connect_failed host=%s port=%d "
		    "proxy=%s err=\"%s\"", conn_name(c), c->port, c->px->url,
		    uv_strerror(rc));
		conn_teardown(c, PH_ERR_IO);
		return;
	}
	c->px->writing = 1;
	conn_update_reading(c);
}

/* Bytes of the proxy's answer. Up to the end of its header they are
 * HTTP; a 2xx turns the connection into the tunnel, and whatever
 * follows the header is already the far end's. */
static void
conn_proxy_read(struct conn *c, const char *p, size_t n)
{
	struct conn_px *px = c->px;
	enum http_errno he;
	unsigned status;
	size_t used;

	used = http_parser_execute(&px->hp, &conn_proxy_settings, p, n);
	he = HTTP_PARSER_ERRNO(&px->hp);
	if (px->seen + used > CONN_PROXY_HDR_MAX ||
	    (!px->done && px->seen + n > CONN_PROXY_HDR_MAX)) {
		log_warn("event=proxy_connect_failed host=%s port=%d "
		    "proxy=%s err=\"the proxy's response header is over "
		    "%zu bytes\"", conn_name(c), c->port, px->url,
		    CONN_PROXY_HDR_MAX);
		conn_teardown(c, PH_ERR_TOOBIG);
		return;
	}
	px->seen += used;
	if (!px->done && he != HPE_OK) {
		log_warn("event=proxy_connect_failed host=%s port=%d "
		    "proxy=%s err=\"the proxy's response is not HTTP: %s\"",
		    conn_name(c), c->port, px->url,
		    http_errno_description(he));
		conn_teardown(c, PH_ERR_INVALID);
		return;
	}
	if (!px->done)
		return;
	status = px->hp.status_code;
	if (status < 200 || status > 299) {
		log_warn("event=proxy_connect_failed host=%s port=%d "
		    "proxy=%s status=%u err=\"the proxy refused CONNECT: "
		    "%u %s\"", conn_name(c), c->port, px->url, status, status,
		    http_status_str((enum http_status)status));
		conn_teardown(c, status == 407 || status == 403 ?
		    PH_ERR_DENIED : PH_ERR_IO);
		return;
	}
	log_debug("event=proxy_tunnel host=%s port=%d proxy=%s status=%u",
	    conn_name(c), c->port, px->url, status);
	if (!px->writing)
		conn_px_free(c);
	conn_start(c);
	if (used >= n || c->state == CS_DEAD)
		return;
	/* The far end spoke first (a plain-TCP banner, TLS never does). */
	if (c->ctx == NULL)
		conn_deliver(c, (const uint8_t *)p + used, n - used);
	else if (c->ssl != NULL) {
		if (BIO_write(c->rbio, p + used, (int)(n - used)) !=
		    (int)(n - used)) {
			conn_teardown(c, PH_ERR_NOMEM);
			return;
		}
		conn_pump(c);
	}
}

static void
conn_on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;

	if (c->state == CS_DEAD)
		return;
	if (status < 0) {
		if (c->ai_next != NULL) {
			log_debug("event=dial_retry host=%s err=\"%s\"",
			    conn_name(c), uv_strerror(status));
			c->retrying = 1;
			uv_close((uv_handle_t *)&c->tcp, conn_tcp_closed);
			return;
		}
		log_warn("event=dial_failed host=%s port=%d%s%s err=\"%s\"",
		    conn_name(c), c->port, c->px != NULL ? " proxy=" : "",
		    c->px != NULL ? c->px->url : "", uv_strerror(status));
		conn_teardown(c, PH_ERR_IO);
		return;
	}
	uv_freeaddrinfo(c->ai);
	c->ai = c->ai_next = NULL;
	conn_set_peer_addr(c, NULL);
	if (c->px != NULL)
		conn_proxy_start(c);
	else
		conn_start(c);
}

static void
conn_connect_next(struct conn *c)
{
	struct addrinfo *a = c->ai_next;
	int rc;

	c->ai_next = a->ai_next;
	c->creq.data = c;
	rc = uv_tcp_connect(&c->creq, &c->tcp, a->ai_addr, conn_on_connect);
	if (rc == 0)
		return;
	if (c->ai_next != NULL) {
		/* e.g. no IPv6 here: try the next address. */
		log_debug("event=dial_retry host=%s err=\"%s\"", conn_name(c),
		    uv_strerror(rc));
		c->retrying = 1;
		uv_close((uv_handle_t *)&c->tcp, conn_tcp_closed);
		return;
	}
	log_warn("event=dial_failed host=%s port=%d%s%s err=\"%s\"",
	    conn_name(c), c->port, c->px != NULL ? " proxy=" : "",
	    c->px != NULL ? c->px->url : "", uv_strerror(rc));
	conn_teardown(c, PH_ERR_IO);
}

static void
conn_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct conn *c = req->data;

	c->gai_pending = 0;
	if (c->state == CS_DEAD) {
		if (res != NULL)
			uv_freeaddrinfo(res);
		conn_close_handles(c);
		return;
	}
	if (status < 0 || res == NULL) {
		log_warn("event=dial_failed host=%s%s%s err=\"resolve: %s\"",
		    conn_name(c), c->px != NULL ? " proxy=" : "",
		    c->px != NULL ? c->px->url : "", uv_strerror(status));
		if (res != NULL)
			uv_freeaddrinfo(res);
		conn_teardown(c, PH_ERR_NOTFOUND);
		return;
	}
	c->ai = c->ai_next = res;
	c->state = CS_CONNECTING;
	conn_connect_next(c);
}

/* The CONNECT request for host:port through px. */
static int
conn_proxy_new(struct conn *c, const struct proxy *px)
{
	const char *host = c->host;
	int v6 = strchr(host, ':') != NULL, rc;

	if ((c->px = calloc(1, sizeof(*c->px))) == NULL)
		return PH_ERR_NOMEM;
	snprintf(c->px->url, sizeof(c->px->url), "%s", px->url);
	buf_init(&c->px->req, CONN_PROXY_HDR_MAX + PROXY_AUTH_MAX);
	/* Header injection through the target host name. */
	if (strpbrk(host, "\r\n /@") != NULL)
		return PH_ERR_INVALID;
	rc = buf_appendf(&c->px->req, "CONNECT %s%s%s:%d HTTP/1.1\r\n"
	    "Host: %s%s%s:%d\r\n", v6 ? "[" : "", host, v6 ? "]" : "",
	    c->port, v6 ? "[" : "", host, v6 ? "]" : "", c->port);
	if (rc == 0 && px->has_auth)
		rc = buf_appendf(&c->px->req, "Proxy-Authorization: %s\r\n",
		    px->basic);
	if (rc == 0)
		rc = buf_append_str(&c->px->req, "\r\n");
	return rc;
}

int
conn_dial(uv_loop_t *loop, struct tls_ctx *ctx, const char *host,
    int port, const char *sni, const struct conn_cbs *cbs, void *ud,
    struct conn **out)
{
	return conn_dial_proxy(loop, ctx, host, port, sni, NULL, cbs, ud,
	    out);
}

int
conn_dial_proxy(uv_loop_t *loop, struct tls_ctx *ctx, const char *host,
    int port, const char *sni, const struct proxy *px,
    const struct conn_cbs *cbs, void *ud, struct conn **out)
{
	struct addrinfo hints;
	struct conn *c;
	char portstr[16];
	int rc;

	*out = NULL;
	conn_ignore_sigpipe();
	if (loop == NULL || host == NULL || *host == '\0' || port <= 0 ||
	    port > 65535 || cbs == NULL || (ctx != NULL && ctx->server))
		return PH_ERR_INVALID;
	if ((c = conn_new(loop, ctx, 0)) == NULL)
		return PH_ERR_NOMEM;
	c->cbs = *cbs;
	c->ud = ud;
	c->port = port;
	c->host = strdup(host);
	if (sni != NULL && *sni != '\0')
		c->sni = strdup(sni);
	if (c->host == NULL || (sni != NULL && *sni != '\0' &&
	    c->sni == NULL)) {
		conn_discard(c);
		return PH_ERR_NOMEM;
	}
	if (px != NULL && (rc = conn_proxy_new(c, px)) != 0) {
		conn_discard(c);
		return rc;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* Through a proxy only the proxy's name is resolved here; the
	 * proxy resolves the far end's. */
	snprintf(portstr, sizeof(portstr), "%d", px != NULL ? px->port : port);
	c->gai.data = c;
	c->state = CS_RESOLVING;
	rc = uv_getaddrinfo(loop, &c->gai, conn_on_resolved,
	    px != NULL ? px->host : host, portstr, &hints);
	if (rc != 0) {
		log_warn("event=dial_failed host=%s%s%s err=\"resolve: %s\"",
		    host, px != NULL ? " proxy=" : "",
		    px != NULL ? px->url : "", uv_strerror(rc));
		conn_discard(c);
		return PH_ERR_IO;
	}
	c->gai_pending = 1;
	c->cbs_set = 1;
	c->hs_deadline = uv_now(loop) + CONN_HANDSHAKE_MS;
	conn_rearm(c);
	*out = c;
	return 0;
}

/* ---- listener ----------------------------------------------------------- */

/* Count a new connection against the unauthenticated caps. 0, or the
 * connection must be closed at once (it costs nothing more that way). */
static int
listener_admit(struct listener *l, struct conn *c,
    const struct sockaddr_storage *ss)
{
	int rc;

	if (l->adm == NULL)
		return 0;
	if (admit_key_from_addr(&c->akey, (const struct sockaddr *)ss) != 0)
		return 0;   /* no peer address (gone already): let TLS fail */
	rc = admit_take(l->adm, &c->akey);
	if (rc == 0) {
		c->adm = l->adm;
		c->counted = 1;
		return 0;
	}
	log_limited(LOG_WARN, "conn_refused", "event=conn_refused peer=%s "
	    "reason=%s unauthenticated=%u", c->peer_addr,
	    rc == PH_ERR_DENIED ? "per_source_cap" : "total_cap",
	    admit_count(l->adm));
	return rc;
}

static void
listener_on_connection(uv_stream_t *s, int status)
{
	struct listener_sock *ls = s->data;
	struct listener *l = ls->l;
	struct sockaddr_storage ss;
	struct conn *c;
	int rc;

	if (status < 0) {
		/* EMFILE: libuv has accepted and closed the connection with
		 * its reserve descriptor, so the backlog still drains. */
		log_limited(LOG_WARN, "accept_failed",
		    "event=accept_failed err=\"%s\"", uv_strerror(status));
		return;
	}
	if ((c = conn_new(s->loop, l->ctx, 1)) == NULL) {
		log_limited(LOG_ERROR, "accept_failed",
		    "event=accept_failed err=\"out of memory\"");
		return;
	}
	if ((rc = uv_accept(s, (uv_stream_t *)&c->tcp)) != 0) {
		log_limited(LOG_WARN, "accept_failed",
		    "event=accept_failed err=\"%s\"", uv_strerror(rc));
		conn_discard(c);
		return;
	}
	conn_set_peer_addr(c, &ss);
	if (listener_admit(l, c, &ss) != 0) {
		conn_discard(c);
		return;
	}
	c->state = CS_HANDSHAKE;
	l->on_accept(c, l->arg);
	if (c->state == CS_DEAD || c->state == CS_CLOSING)
		return;
	if (!c->cbs_set) {
		log_error("event=accept_no_callbacks peer=%s", c->peer_addr);
		conn_teardown(c, PH_ERR_STATE);
		return;
	}
	c->hs_deadline = uv_now(s->loop) + CONN_HANDSHAKE_MS;
	if (l->auth_ms > 0 && !c->authed)
		c->auth_deadline = uv_now(s->loop) + l->auth_ms;
	conn_rearm(c);
	conn_start(c);
}

static void
listener_sock_closed(uv_handle_t *h)
{
	struct listener_sock *ls = (struct listener_sock *)h;
	struct listener *l = ls->l;

	free(ls);
	if (l != NULL && --l->nopen == 0 && l->stopped)
		free(l);
}

/* What a failed bind or listen means for the operator. */
static int
listener_err(int uverr)
{
	switch (uverr) {
	case UV_EADDRINUSE:
		return PH_ERR_EXISTS;
	case UV_EACCES:
	case UV_EPERM:
		return PH_ERR_DENIED;
	case UV_EADDRNOTAVAIL:
		return PH_ERR_NOTFOUND;
	default:
		return PH_ERR_IO;
	}
}

int
listener_add(struct listener *l, const char *host, int port)
{
	struct sockaddr_storage ss;
	struct listener_sock *ls;
	int len = sizeof(ss), rc, v6 = 0;

	if (l == NULL || l->stopped || port < 0 || port > 65535)
		return PH_ERR_INVALID;
	if (l->nsocks >= LISTENER_ADDRS_MAX)
		return PH_ERR_TOOBIG;
	if (host == NULL || *host == '\0')
		host = "0.0.0.0";
	else if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	memset(&ss, 0, sizeof(ss));
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0) {
		memset(&ss, 0, sizeof(ss));
		if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
			log_error("event=listen_failed host=%s err=\"not an IP "
			    "address\"", host);
			return PH_ERR_INVALID;
		}
		v6 = 1;
	}
	if ((ls = calloc(1, sizeof(*ls))) == NULL)
		return PH_ERR_NOMEM;
	if ((rc = uv_tcp_init(l->loop, &ls->tcp)) != 0) {
		free(ls);
		return PH_ERR_IO;
	}
	ls->tcp.data = ls;
	/* [::] means IPv6 only, so that 0.0.0.0 and [::] on one port are
	 * two listeners that can coexist, as the operator listed them. */
	if ((rc = uv_tcp_bind(&ls->tcp, (struct sockaddr *)&ss,
	    v6 ? UV_TCP_IPV6ONLY : 0)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)&ls->tcp, 511,
	    listener_on_connection)) != 0) {
		log_error("event=listen_failed host=%s port=%d err=\"%s\"",
		    host, port, uv_strerror(rc));
		uv_close((uv_handle_t *)&ls->tcp, listener_sock_closed);
		return listener_err(rc);
	}
	if (uv_tcp_getsockname(&ls->tcp, (struct sockaddr *)&ss, &len) == 0)
		ls->port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port);
	ls->l = l;
	l->socks[l->nsocks++] = ls;
	l->nopen++;
	return 0;
}
int
listener_start(uv_loop_t *loop, struct tls_ctx *ctx, const char *host,
    int port, void (*on_accept)(struct conn *c, void *arg), void *arg,
    struct listener **out)
{
	struct listener *l;
	int rc;

	*out = NULL;
	conn_ignore_sigpipe();
	if (loop == NULL || on_accept == NULL || (ctx != NULL && !ctx->server))
		return PH_ERR_INVALID;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return PH_ERR_NOMEM;
	l->loop = loop;
	l->ctx = ctx;
	l->on_accept = on_accept;
	l->arg = arg;
	if ((rc = listener_add(l, host, port)) != 0) {
		free(l);   /* no socket refers to it */
		return rc;
	}
	*out = l;
	return 0;
}

int
listener_port(const struct listener *l)
{
	return listener_port_at(l, 0);
}

int
listener_port_at(const struct listener *l, size_t i)
{
	return l != NULL && i < l->nsocks ? l->socks[i]->port : -1;
}

void
listener_stop(struct listener *l)
{
	size_t i;

	if (l == NULL || l->stopped)
		return;
	l->stopped = 1;
	/* Freed once the connections it counts are gone. */
	admit_free(l->adm);
	l->adm = NULL;
	for (i = 0; i < l->nsocks; i++)
		uv_close((uv_handle_t *)&l->socks[i]->tcp,
		    listener_sock_closed);
	if (l->nsocks == 0)
		free(l);
}

int
listener_set_limits(struct listener *l, const struct listener_limits *lim)
{
	int rc;

	if (l == NULL || lim == NULL)
		return PH_ERR_INVALID;
	l->auth_ms = lim->auth_timeout_ms;
	if (lim->max_unauth == 0 && lim->max_unauth_per_source == 0 &&
	    l->adm == NULL)
		return 0;
	if (l->adm == NULL && (rc = admit_new(&l->adm, lim->max_unauth,
	    lim->max_unauth_per_source)) != 0)
		return rc;
	admit_set_limits(l->adm, lim->max_unauth, lim->max_unauth_per_source);
	return 0;
}

void
listener_stats(const struct listener *l, struct listener_stats *st,
    int reset_peak)
{
	memset(st, 0, sizeof(*st));
	st->live = atomic_load(&conn_nlive);
	st->peak = reset_peak ? atomic_exchange(&conn_npeak, st->live) :
	    atomic_load(&conn_npeak);
	if (st->peak < st->live)
		st->peak = st->live;
	if (l == NULL || l->adm == NULL)
		return;
	st->unauthenticated = admit_count(l->adm);
	admit_refused(l->adm, &st->refused_total, &st->refused_per_source);
}

/* ---- public connection calls -------------------------------------------- */

void
conn_set_cbs(struct conn *c, const struct conn_cbs *cbs, void *ud)
{
	if (c == NULL || cbs == NULL)
		return;
	c->cbs = *cbs;
	c->ud = ud;
	c->cbs_set = 1;
}

void *
conn_userdata(const struct conn *c)
{
	return c != NULL ? c->ud : NULL;
}

int
conn_write(struct conn *c, const void *p, size_t n)
{
	int rc;

	if (c == NULL || c->state >= CS_CLOSING)
		return PH_ERR_STATE;
	if (n == 0)
		return 0;
	/* Reclaim the sent head of the queue once it is the larger part,
	 * so appends stay amortised O(1) without a memmove per batch. */
	if (c->pt_off > 0 && c->pt_off >= c->pt.len / 2) {
		buf_consume(&c->pt, c->pt_off);
		c->pt_off = 0;
	}
	if ((rc = buf_append(&c->pt, p, n)) != 0) {
		log_warn("event=conn_queue_full peer=%s pending=%zu",
		    conn_name(c), conn_write_pending(c));
		return rc;
	}
	/* Arm on_drain from the low mark, not the high one, so a caller
	 * that stops at any threshold >= CONN_LOW_WATER is woken again. */
	if (conn_write_pending(c) >= CONN_LOW_WATER)
		c->drain_armed = 1;
	conn_schedule_flush(c);
	return 0;
}

size_t
conn_write_pending(const struct conn *c)
{
	size_t n;

	if (c == NULL)
		return 0;
	n = conn_pt_left(c) + c->flight.len;
	if (c->wbio != NULL)
		n += BIO_ctrl_pending(c->wbio);
	return n;
}

void
conn_pause_read(struct conn *c, int pause)
{
	if (c == NULL || c->state >= CS_CLOSING)
		return;
	c->paused = pause != 0;
	conn_update_reading(c);
	if (!c->paused && c->state == CS_OPEN && (c->unread.len > 0 ||
	    (c->ssl != NULL && (BIO_ctrl_pending(c->rbio) > 0 ||
	    SSL_pending(c->ssl) > 0)))) {
		/* Deliver from the loop, not from inside this call. */
		c->need_pump = 1;
		conn_schedule(c);
	}
}

int
conn_unread(struct conn *c, const void *p, size_t n)
{
	struct buf nb;
	int rc;

	if (c == NULL || c->state >= CS_CLOSING)
		return PH_ERR_STATE;
	if (n == 0)
		return 0;
	/* Pausing here keeps a reader that gives everything back from
	 * being fed the same bytes forever. */
	conn_pause_read(c, 1);
	if (c->unread.len == 0)
		return buf_append(&c->unread, p, n);
	/* Given back while older bytes wait: these come first. */
	buf_init(&nb, c->unread.max);
	if ((rc = buf_append(&nb, p, n)) != 0 ||
	    (rc = buf_append(&nb, c->unread.data, c->unread.len)) != 0) {
		buf_free(&nb);
		return rc;
	}
	buf_free(&c->unread);
	c->unread = nb;
	return 0;
}

void
conn_close(struct conn *c)
{
	if (c == NULL || c->state >= CS_CLOSING)
		return;
	if (c->state < CS_OPEN) {
		conn_teardown(c, 0);
		return;
	}
	c->state = CS_CLOSING;
	c->err = 0;
	(void)uv_timer_stop(&c->timer);
	conn_arm_timer(c, CONN_CLOSE_MS, conn_on_timer);
	conn_update_reading(c);
	conn_schedule_flush(c);
}

void
conn_abort(struct conn *c, int err)
{
	if (c == NULL)
		return;
	conn_teardown(c, err);
}

/* Only this loop's thread frees its conns, so they stay valid while it
 * walks the list; the lock keeps other loops' threads off the links. */
void
conn_abort_all(uv_loop_t *loop, int err)
{
	struct conn *c;

	uv_once(&conn_live_once, conn_live_init);
	uv_mutex_lock(&conn_live_mu);
	for (c = conn_live; c != NULL; c = c->live_next)
		if (c->loop == loop)
			conn_teardown(c, err);
	uv_mutex_unlock(&conn_live_mu);
}

size_t
conn_count(uv_loop_t *loop)
{
	struct conn *c;
	size_t n = 0;

	uv_once(&conn_live_once, conn_live_init);
	uv_mutex_lock(&conn_live_mu);
	for (c = conn_live; c != NULL; c = c->live_next)
		if (c->loop == loop)
			n++;
	uv_mutex_unlock(&conn_live_mu);
	return n;
}

void
conn_set_idle_timeout(struct conn *c, unsigned ms)
{
	if (c == NULL || c->state >= CS_CLOSING)
		return;
	c->idle_ms = ms;
	if (c->state != CS_OPEN)
		return;   /* armed when the connection opens */
	c->last_active = uv_now(c->loop);
	conn_rearm(c);
}

const char *
conn_peer_cn(const struct conn *c)
{
	return c != NULL ? c->peer_cn : NULL;
}

const char *
conn_peer_addr(const struct conn *c)
{
	return c != NULL ? c->peer_addr : "";
}

uv_loop_t *
conn_loop(const struct conn *c)
{
	return c != NULL ? c->loop : NULL;
}

void
conn_set_authenticated(struct conn *c)
{
	if (c == NULL || c->authed)
		return;
	c->authed = 1;
	c->auth_deadline = 0;
	if (c->counted) {
		c->counted = 0;
		admit_release(c->adm, &c->akey);
	}
	c->adm = NULL;
	conn_rearm(c);
}

int
conn_authenticated(const struct conn *c)
{
	return c != NULL && c->authed;
}

void
conn_set_auth_timeout(struct conn *c, unsigned ms)
{
	uint64_t due;

	if (c == NULL || c->authed || c->state >= CS_CLOSING || ms == 0)
		return;
	due = uv_now(c->loop) + ms;
	if (c->auth_deadline == 0 || due < c->auth_deadline) {
		c->auth_deadline = due;
		conn_rearm(c);
	}
}

void
conn_set_deadline(struct conn *c, unsigned ms, const char *what)
{
	if (c == NULL || c->state >= CS_CLOSING)
		return;
	c->deadline = ms > 0 ? uv_now(c->loop) + ms : 0;
	c->deadline_what = what != NULL ? what : "deadline";
	conn_rearm(c);
}

void
conn_set_nodelay(struct conn *c, int on)
{
	if (c == NULL || c->state == CS_DEAD || c->state < CS_HANDSHAKE)
		return;
	(void)uv_tcp_nodelay(&c->tcp, on);
}
