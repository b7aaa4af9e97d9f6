/* tls: OpenSSL 3 contexts and TLS streams over libuv TCP handles, for both
 * roles. A struct conn is one TLS connection; its plaintext is delivered
 * through callbacks. Encryption happens through memory BIOs so libuv owns
 * every socket and nothing blocks the loop. */
#ifndef PORTHOLE_TLS_H
#define PORTHOLE_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct tls_ctx;
struct conn;

/* Server context: certificate chain and key in PEM files. If client_ca_file
 * is not NULL, clients *may* present a certificate signed by it (mutual TLS);
 * connections without one are still accepted and have no peer identity. */
int tls_ctx_new_server(struct tls_ctx **out, const char *cert_file,
    const char *key_file, const char *client_ca_file);
/* Load the server context's files again (a re-issued certificate):
 * connections accepted from now on use them, open ones keep theirs. On
 * any error ctx is unchanged. */
int tls_ctx_reload_server(struct tls_ctx *ctx, const char *cert_file,
    const char *key_file, const char *client_ca_file);
/* Client context: trusts ca_file (NULL: the system store); cert_file and
 * key_file (both NULL for none) are presented for mutual TLS. TLS >= 1.2,
 * the server name is always verified. */
int tls_ctx_new_client(struct tls_ctx **out, const char *ca_file,
    const char *cert_file, const char *key_file);
void tls_ctx_free(struct tls_ctx *ctx);

struct conn_cbs {
	/* TLS handshake done; the connection is ready for conn_write. */
	void (*on_open)(struct conn *c);
	/* Decrypted bytes; valid only during the call. */
	void (*on_read)(struct conn *c, const uint8_t *p, size_t n);
	/* The write queue drained below the low-water mark (backpressure). */
	void (*on_drain)(struct conn *c);
	/* The connection is gone (err 0 = orderly). c is freed after return. */
	void (*on_close)(struct conn *c, int err);
};

struct listener;
/* Listen on host:port (host may be an IPv4 or IPv6 literal). Each accepted
 * connection is passed to on_accept, which must call conn_set_cbs before it
 * returns; the TLS handshake starts after that. */
int listener_start(uv_loop_t *loop, struct tls_ctx *ctx, const char *host,
    int port, void (*on_accept)(struct conn *c, void *arg), void *arg,
    struct listener **out);
/* One more address for the same listener (another --listen): the same
 * callback, caps and counts. An IPv6 address, [::] too, binds IPv6 only
 * (0.0.0.0 and [::] on one port are two addresses). 0, PH_ERR_INVALID (not
 * an IP literal), PH_ERR_EXISTS (address in use), PH_ERR_DENIED (no
 * permission, e.g. a port below 1024), PH_ERR_NOTFOUND (not an address of
 * this host), PH_ERR_TOOBIG (LISTENER_ADDRS_MAX), PH_ERR_IO; listener_start
 * returns the same for its address. */
#define LISTENER_ADDRS_MAX 16
int listener_add(struct listener *l, const char *host, int port);
/* The port actually bound (useful with port 0): of the first address, or
 * of the i-th one added (-1 past the last). */
int listener_port(const struct listener *l);
int listener_port_at(const struct listener *l, size_t i);
/* Stop accepting on every address. Connections already accepted live
 * on. */
void listener_stop(struct listener *l);

/* Accepted connections start unauthenticated (conn_set_authenticated).
 * Those count against max_unauth in total and max_unauth_per_source per
 * source (an IPv4 address or IPv6 /64; see admit.h); a connection over
 * either cap is closed right after accept, before any TLS. One that is
 * not authenticated auth_timeout_ms after accept is closed, whatever it
 * sends. 0 means no cap / no deadline (the default). */
struct listener_limits {
	unsigned max_unauth;
	unsigned max_unauth_per_source;
	unsigned auth_timeout_ms;
};
int listener_set_limits(struct listener *l, const struct listener_limits *lim);

struct listener_stats {
	size_t live;                 /* connections in this process */
	size_t peak;                 /* most at once since the last reset */
	unsigned unauthenticated;    /* counted by l now */
	uint64_t refused_total;      /* over max_unauth, since start */
	uint64_t refused_per_source; /* over max_unauth_per_source */
};
/* reset_peak: the next peak counts from now. l may be NULL (process
 * figures only). */
void listener_stats(const struct listener *l, struct listener_stats *st,
    int reset_peak);

/* Connect to host:port; sni is the name verified against the certificate
 * (defaults to host). Callbacks as above; on_close reports a failed dial.
 * ctx NULL here and in listener_start means plain TCP (no TLS).
 *
 * Callback rules: callbacks run from the loop, never from inside a conn_*
 * call, so any conn_* function may be called from any callback. on_close
 * fires exactly once per connection (also for a failed dial), always
 * asynchronously after conn_close/conn_abort/an error, and c is freed right
 * after it returns; calls on a closing connection are harmless no-ops.
 * The first conn_dial/listener_start sets SIGPIPE to SIG_IGN if it still
 * has its default action (a vanished peer must not kill the process). */
int conn_dial(uv_loop_t *loop, struct tls_ctx *ctx, const char *host,
    int port, const char *sni, const struct conn_cbs *cbs, void *ud,
    struct conn **out);

/* conn_dial through an HTTP proxy (px NULL: direct; see proxy.h). The TCP
 * connection goes to the proxy, which is asked to CONNECT host:port;
 * TLS then runs end to end with host (SNI and verification for host, not
 * the proxy). A proxy that answers other than 2xx, sends something not
 * HTTP or a response header over 8 KiB, or does not answer within the
 * connect deadline fails the dial (on_close, with the reason logged). */
struct proxy;
int conn_dial_proxy(uv_loop_t *loop, struct tls_ctx *ctx, const char *host,
    int port, const char *sni, const struct proxy *px,
    const struct conn_cbs *cbs, void *ud, struct conn **out);

void conn_set_cbs(struct conn *c, const struct conn_cbs *cbs, void *ud);
void *conn_userdata(const struct conn *c);
/* Queue plaintext for sending (copied). Never blocks. */
int conn_write(struct conn *c, const void *p, size_t n);
/* Bytes queued but not yet handed to the kernel. */
size_t conn_write_pending(const struct conn *c);
/* Stop / restart delivering reads (backpressure towards the peer). */
void conn_pause_read(struct conn *c, int pause);
/* Flush what is queued, send close_notify, then close. Idempotent. */
void conn_close(struct conn *c);
/* Subject CN of the verified client/server certificate, or NULL. */
const char *conn_peer_cn(const struct conn *c);
/* Peer address as text ("127.0.0.1"), for logs. */
const char *conn_peer_addr(const struct conn *c);
uv_loop_t *conn_loop(const struct conn *c);
/* Disable Nagle (latency-sensitive streams). conn coalesces its writes
 * itself, so new connections start with Nagle off (on = 1). */
void conn_set_nodelay(struct conn *c, int on);

/* The peer has proved who it is: a verified client certificate (set by
 * the handshake itself), a verified SigV4 signature, an accepted data
 * channel token. Frees its slot of the listener's unauthenticated cap and
 * ends its authentication deadline. Dialled connections start
 * authenticated. Idempotent; NULL is ignored. */
void conn_set_authenticated(struct conn *c);
int conn_authenticated(const struct conn *c);
/* Close (on_close err PH_ERR_EXPIRED) unless authenticated within ms
 * from now; only ever brings an earlier deadline nearer. */
void conn_set_auth_timeout(struct conn *c, unsigned ms);
/* Close (PH_ERR_EXPIRED) ms from now whatever is sent or received; what
 * names it in the log ("request"). 0 clears it. One per connection. */
void conn_set_deadline(struct conn *c, unsigned ms, const char *what);

/* Give plaintext that on_read delivered back to the connection, because
 * the consumer could not take it yet. This also pauses reading; the bytes
 * are delivered again, before newer ones, after conn_pause_read(c, 0).
 * Copied. */
int conn_unread(struct conn *c, const void *p, size_t n);
/* Close at once: pending writes are dropped, no close_notify. on_close
 * follows (asynchronously) with err. Idempotent. */
void conn_abort(struct conn *c, int err);
/* For a program that stops: conn_abort every connection of this loop
 * that is still open (idle keep-alives, peers that never closed), so that
 * each owner's on_close frees what it holds; run the loop until
 * conn_count is 0 before freeing what those callbacks use. */
void conn_abort_all(uv_loop_t *loop, int err);
size_t conn_count(uv_loop_t *loop);
/* Close (on_close err PH_ERR_EXPIRED) when for ms nothing was received
 * and no write finished, while reading is not paused. 0 disables (the
 * default; http_serve sets 60 s, ws_accept turns it off again). */
void conn_set_idle_timeout(struct conn *c, unsigned ms);
/* Backpressure: stop writing once conn_write_pending() reaches
 * CONN_HIGH_WATER (or any threshold >= CONN_LOW_WATER); on_drain fires
 * when the queue, having reached CONN_LOW_WATER, falls below it again. */
#define CONN_HIGH_WATER ((size_t)1 << 20)
#define CONN_LOW_WATER ((size_t)256 << 10)

#endif
