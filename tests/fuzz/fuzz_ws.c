/* fuzz_ws: WebSocket handling (common/ws.c over wslay) in both roles,
 * over a fake connection (fakeconn.c). Server side: frames from a client
 * (masked) after the upgrade. Client side: portholed's answer to the
 * upgrade request (the string "$ACCEPT" in it becomes the right
 * Sec-WebSocket-Accept), then frames. Meanwhile the harness sends, pauses
 * and resumes reading, changes the message limit, applies backpressure
 * and closes, as the gateway, agent and client do.
 *
 * Input: flags byte (bit 0: client side, bit 1: echo messages), then
 * operations: op byte, then its operands (see the switch). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/ws.h"
#include "fakeconn.h"
#include "fuzzin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fx {
	int closed;
	int echo;
	size_t messages;
};

static void
on_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct fx *f = ws_userdata(w);

	if ((n > 0 && p == NULL) || f->closed ||
	    (opcode != WS_TEXT && opcode != WS_BINARY))
		abort();
	f->messages++;
	if (f->echo)
		(void)ws_send(w, opcode, p, n);
}

static void
on_close(struct ws *w, int code)
{
	struct fx *f = ws_userdata(w);

	(void)code;
	if (f->closed++)
		abort();	/* exactly once */
}

static const struct ws_cbs cbs = {
	.on_message = on_message,
	.on_close = on_close,
};

/* The client's bytes with "$ACCEPT" replaced by the accept key of the
 * upgrade request written so far. */
static void
feed_answer(struct conn *c, const uint8_t *p, size_t n)
{
	const char *head = fakeconn_head(c), *k, *e;
	char key[64], accept[32];
	struct buf b;
	size_t i;

	accept[0] = '\0';
	if ((k = strstr(head, "Sec-WebSocket-Key: ")) != NULL) {
		k += strlen("Sec-WebSocket-Key: ");
		if ((e = strstr(k, "\r\n")) != NULL &&
		    (size_t)(e - k) < sizeof(key)) {
			memcpy(key, k, (size_t)(e - k));
			key[e - k] = '\0';
			if (ws_accept_key(key, accept) != 0)
				accept[0] = '\0';
		}
	}
	buf_init(&b, 1 << 20);
	for (i = 0; i < n; i++) {
		if (n - i >= 7 && memcmp(p + i, "$ACCEPT", 7) == 0) {
			(void)buf_append_str(&b, accept);
			i += 6;
		} else
			(void)buf_append(&b, p + i, 1);
	}
	fakeconn_feed(c, b.data, b.len);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uv_loop_t loop;
	static int loop_ready;
	struct fuzzin in = { data, size };
	struct conn *c = NULL;
	struct ws *w = NULL;
	struct fx f;
	const uint8_t *p;
	size_t n, steps = 0;
	uint8_t flags;
	int gone = 0, paused = 0, client, i;

	if (!loop_ready) {
		if (uv_loop_init(&loop) != 0)
			abort();
		loop_ready = 1;
	}
	memset(&f, 0, sizeof(f));
	flags = fuzzin_u8(&in);
	client = flags & 1;
	f.echo = (flags >> 1) & 1;
	if (client) {
		if (ws_dial(&loop, NULL, "ws://127.0.0.1:8080/v1/data-channel/"
		    "s-0123?role=publish_subscribe", "X-Porthole-Test: 1\r\n",
		    &cbs, &f, &w) != 0)
			abort();
		c = fakeconn_take_dialled();
	} else {
		if ((c = fakeconn_accept(&loop)) == NULL)
			return 0;
		if ((w = ws_accept(c, &cbs, &f)) == NULL)
			abort();
	}
	while (in.n > 0 && !gone && steps++ < 1024) {
		switch (fuzzin_u8(&in) % 8) {
		case 0:		/* bytes from the peer */
			p = fuzzin_bytes(&in, 8192, &n);
			if (client)
				feed_answer(c, p, n);
			else
				fakeconn_feed(c, p, n);
			break;
		case 1:
			p = fuzzin_bytes(&in, 8192, &n);
			if (!f.closed)
				(void)ws_send(w, fuzzin_u8(&in) & 1 ? WS_TEXT :
				    WS_BINARY, p, n);
			break;
		case 2:
			paused = !paused;
			if (!f.closed)
				ws_pause_read(w, paused);
			break;
		case 3:
			if (!f.closed)
				ws_set_max_message(w, fuzzin_u16(&in));
			break;
		case 4:
			if (!f.closed)
				ws_close(w, (uint16_t)(1000 +
				    fuzzin_u8(&in) % 16), "bye");
			break;
		case 5:		/* the kernel's queue fills or drains */
			fakeconn_set_pending(c, fuzzin_u8(&in) & 1 ?
			    CONN_HIGH_WATER * 2 : 0);
			break;
		case 6:
			if (!f.closed)
				ws_set_keepalive(w, 1000, 3000);
			break;
		case 7:
			fakeconn_peer_close(c);
			break;
		}
		(void)uv_run(&loop, UV_RUN_NOWAIT);
		gone = fakeconn_pump(c);
		(void)uv_run(&loop, UV_RUN_NOWAIT);
	}
	if (!gone)
		fakeconn_peer_close(c);
	for (i = 0; i < 64 && !gone; i++) {
		(void)uv_run(&loop, UV_RUN_NOWAIT);
		gone = fakeconn_pump(c);
	}
	for (i = 0; i < 64 && uv_loop_alive(&loop); i++)
		(void)uv_run(&loop, UV_RUN_NOWAIT);
	if (!gone || f.closed != 1 || uv_loop_alive(&loop))
		abort();	/* on_close once, and nothing left behind */
	return 0;
}
