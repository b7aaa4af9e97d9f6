/* fuzz_http: portholed's HTTP/1.1 server side (common/http.c over
 * http-parser): request heads, bodies, keep-alive and pipelining, limits,
 * answers given at once or later (after the connection may have gone),
 * and the WebSocket upgrade. It runs over a fake connection (fakeconn.c)
 * and a libuv loop that never waits.
 *
 * Input: chunks, each a length byte then that many bytes from the peer,
 * until the input ends; then the peer closes. A handler answers a path
 * with "later" on the next chunk, upgrades "/ws" requests and answers
 * others at once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"
#include "common/ws.h"
#include "fakeconn.h"
#include "fuzzin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LATER 8

static struct http_request *later[MAX_LATER];
static size_t nlater;
static int ws_open;

static void
on_ws_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	(void)ws_send(w, opcode, p, n);
}

static void
on_ws_close(struct ws *w, int code)
{
	(void)w;
	(void)code;
	ws_open = 0;
}

static const struct ws_cbs ws_cbs = {
	.on_message = on_ws_message,
	.on_close = on_ws_close,
};

static void
handler(struct http_request *req, void *arg)
{
	size_t i;

	(void)arg;
	/* Every string the server hands out is a C string. */
	if (req->method == NULL || req->path == NULL || req->query == NULL ||
	    req->target == NULL || (req->body_len > 0 && req->body == NULL))
		abort();
	for (i = 0; i < req->nheaders; i++)
		if (req->headers[i].name == NULL ||
		    req->headers[i].value == NULL)
			abort();
	(void)http_header(req, "Host");
	if (strcmp(req->path, "/ws") == 0 && req->is_upgrade) {
		if (http_upgrade_ws(req, &ws_cbs, NULL) != NULL)
			ws_open = 1;
		return;
	}
	if (strstr(req->path, "later") != NULL && nlater < MAX_LATER) {
		later[nlater++] = req;
		return;
	}
	(void)http_respond(req, 200, "text/plain",
	    strstr(req->path, "close") ? "Connection: close\r\n" : NULL,
	    req->body, req->body_len);
}

static void
answer_later(void)
{
	size_t i;

	for (i = 0; i < nlater; i++)
		(void)http_respond(later[i], 202, "application/json", NULL,
		    "{}", 2);
	nlater = 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uv_loop_t loop;
	static int loop_ready;
	struct fuzzin in = { data, size };
	struct conn *c;
	const uint8_t *p;
	size_t n, steps = 0;
	int gone = 0, i;

	if (!loop_ready) {
		if (uv_loop_init(&loop) != 0)
			abort();
		loop_ready = 1;
	}
	if ((c = fakeconn_accept(&loop)) == NULL)
		return 0;
	if (http_serve(c, handler, NULL) != 0)
		abort();
	while (in.n > 0 && !gone && steps++ < 4096) {
		n = fuzzin_u8(&in);
		if (n == 0) {
			answer_later();
		} else {
			if (n > in.n)
				n = in.n;
			p = in.p;
			in.p += n;
			in.n -= n;
			fakeconn_feed(c, p, n);
		}
		(void)uv_run(&loop, UV_RUN_NOWAIT);
		gone = fakeconn_pump(c);
	}
	if (!gone)
		fakeconn_peer_close(c);
	for (i = 0; i < 64 && !gone; i++) {
		(void)uv_run(&loop, UV_RUN_NOWAIT);
		gone = fakeconn_pump(c);
	}
	if (!gone)
		abort();	/* on_close must come */
	/* Requests still unanswered are finished on a closed connection. */
	answer_later();
	for (i = 0; i < 64 && uv_loop_alive(&loop); i++)
		(void)uv_run(&loop, UV_RUN_NOWAIT);
	if (uv_loop_alive(&loop))
		abort();	/* a handle outlived its connection */
	return 0;
}
