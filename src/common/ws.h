/* ws: WebSocket (RFC 6455) over a struct conn, framed by wslay, both roles.
 * Messages are reassembled from fragments and bounded by a maximum size that
 * is checked against the frame length header before buffering. Pings are
 * answered; optional keep-alive pings detect a dead peer. */
#ifndef PORTHOLE_WS_H
#define PORTHOLE_WS_H

#include <stddef.h>
#include <stdint.h>

#include "common/tls.h"

struct ws;

enum ws_opcode { WS_TEXT = 1, WS_BINARY = 2 };

struct ws_cbs {
	/* Client side: the upgrade completed. Server side: not called. */
	void (*on_open)(struct ws *w);
	/* One whole message; p is valid only during the call. */
	void (*on_message)(struct ws *w, int opcode, const uint8_t *p,
	    size_t n);
	/* Outgoing queue drained below the low-water mark. */
	void (*on_drain)(struct ws *w);
	/* Closed (code from the peer's close frame, 1006 if none, or a local
	 * reason). w is freed after return. */
	void (*on_close)(struct ws *w, int code);
};

#define WS_MAX_MESSAGE_DEFAULT ((size_t)1 << 20)

/* Dial a ws:// or wss:// URL (wss needs ctx). extra_headers is
 * "Name: value\r\n..." or NULL. on_open fires after the 101. */
int ws_dial(uv_loop_t *loop, struct tls_ctx *ctx, const char *url,
    const char *extra_headers, const struct ws_cbs *cbs, void *ud,
    struct ws **out);

int ws_send(struct ws *w, int opcode, const void *p, size_t n);
/* Send a close frame and close after it is written. Idempotent. */
void ws_close(struct ws *w, uint16_t code, const char *reason);
void ws_set_userdata(struct ws *w, void *ud);
void *ws_userdata(const struct ws *w);
void ws_set_cbs(struct ws *w, const struct ws_cbs *cbs);
void ws_set_max_message(struct ws *w, size_t max);
/* Send a ping every interval_ms; close with 1006 if nothing (pong or data)
 * was received for timeout_ms. 0 disables. */
void ws_set_keepalive(struct ws *w, unsigned interval_ms,
    unsigned timeout_ms);
/* Bytes queued for sending (framing + TLS), for backpressure. */
size_t ws_write_pending(const struct ws *w);
void ws_pause_read(struct ws *w, int pause);
struct conn *ws_conn(const struct ws *w);

/* Server side: take over c after the 101 was written (http_upgrade_ws
 * calls this). Plaintext given back to c with conn_unread is read first. */
struct ws *ws_accept(struct conn *c, const struct ws_cbs *cbs, void *ud);
/* RFC 6455 4.2.2: out = base64(SHA-1(key || GUID)), NUL-terminated. */
int ws_accept_key(const char *key, char out[32]);

/* Callback rules: callbacks run from the loop, never from inside a ws_*
 * call, and may call any ws_* function (ws_send, ws_close, ws_pause_read
 * on this or another ws). on_message is not called after ws_close or
 * while paused (messages already decoded are held and delivered on
 * resume, or just before on_close if the connection ends first: every
 * message the peer sent before its close frame is delivered). on_close
 * fires exactly once, asynchronously, after the TCP connection is gone;
 * w is freed when it returns. */

#endif
