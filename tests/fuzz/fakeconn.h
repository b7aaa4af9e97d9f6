/* fakeconn: struct conn (common/tls.h) in memory, for the HTTP,
 * WebSocket and gateway harnesses: no sockets, no TLS. The harness plays
 * the peer and the event loop: it feeds bytes, and fakeconn_pump delivers
 * what the contract says happens "later, from the loop" (bytes given back
 * with conn_unread, on_open, on_drain, on_close). What the code under test
 * writes is counted and dropped. */
#ifndef PORTHOLE_FAKECONN_H
#define PORTHOLE_FAKECONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/tls.h"

/* A connection as accepted by a listener (server side): no callbacks
 * until the code under test sets them. */
struct conn *fakeconn_accept(uv_loop_t *loop);
/* The connection conn_dial made last (client side), or NULL; taken. */
struct conn *fakeconn_take_dialled(void);
/* Bytes from the peer: delivered now if reading, else queued. */
void fakeconn_feed(struct conn *c, const uint8_t *p, size_t n);
/* Pretend n bytes are still queued for the kernel (backpressure); going
 * back under the low-water mark fires on_drain at the next pump. */
void fakeconn_set_pending(struct conn *c, size_t n);
/* The peer went away: on_close(0) at the next pump. */
void fakeconn_peer_close(struct conn *c);
/* Deliver what is due. Returns 1 once on_close has run (c is freed). */
int fakeconn_pump(struct conn *c);
/* Bytes written so far. */
size_t fakeconn_written(const struct conn *c);
/* The first FAKECONN_HEAD_MAX bytes written, as a C string (a client's
 * upgrade request, to answer it). */
#define FAKECONN_HEAD_MAX 4096
const char *fakeconn_head(struct conn *c);
/* Present a verified client certificate with this subject CN (NULL:
 * none), as an agent does; such a connection starts authenticated. */
void fakeconn_set_peer_cn(struct conn *c, const char *cn);
/* conn_set_authenticated was called (or a certificate was presented). */
int fakeconn_authenticated(const struct conn *c);

#endif
