/* Unit tests for the limits the connection layer puts on peers that have
 * not authenticated yet (tls.c listener caps and deadlines, http.c request
 * deadline, the WebSocket authentication deadline), on plain TCP over
 * 127.0.0.0/8. Every wait is bounded in time and in count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/http.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/ws.h"

#define MAX_WAIT_MS 10000
#define MAX_CONNS 64

static uv_loop_t loop;
static struct listener *lis;
static int port;

/* What the server saw. */
static struct {
	struct conn *conns[MAX_CONNS];
	int nconns;
	int nclosed;
	int last_err;
	int nreq;
	int ws_closed;
	int authenticate_first;   /* the handler authenticates the conn */
} srv;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop until pred() or MAX_WAIT_MS; returns pred(). */
static int
spin(int (*pred)(void))
{
	uint64_t end = now_ms() + MAX_WAIT_MS;
	int i;

	for (i = 0; i < 100000 && !pred() && now_ms() < end; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	return pred();
}

/* Run the loop for ms, whatever happens. */
static void
spin_for(unsigned ms)
{
	uint64_t end = now_ms() + ms;
	int i;

	for (i = 0; i < 100000 && now_ms() < end; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
}

/* ---- raw clients -------------------------------------------------------- */

/* A blocking TCP client from src (an address in 127.0.0.0/8). */
static int
raw_connect(const char *src)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, src, &sa.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	sa.sin_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* 1 if the server closed fd (EOF or reset), 0 if it is still open. */
static int
raw_closed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b[4096];
	ssize_t n;
	int i;

	for (i = 0; i < 1000; i++) {
		if (poll(&p, 1, 0) <= 0)
			return 0;
		n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
		if (n < 0)
			return 0;
	}
	return 0;
}

/* ---- server side -------------------------------------------------------- */

static void
raw_on_read(struct conn *c, const uint8_t *p, size_t n)
{
	(void)c;
	(void)p;
	(void)n;
}

static void
raw_on_close(struct conn *c, int err)
{
	int i;

	for (i = 0; i < srv.nconns; i++)
		if (srv.conns[i] == c)
			srv.conns[i] = NULL;
	srv.nclosed++;
	srv.last_err = err;
}

static const struct conn_cbs raw_cbs = {
	.on_read = raw_on_read,
	.on_close = raw_on_close,
};

static void
raw_on_accept(struct conn *c, void *arg)
{
	(void)arg;
	conn_set_cbs(c, &raw_cbs, NULL);
	if (srv.nconns < MAX_CONNS)
		srv.conns[srv.nconns++] = c;
}

static void
ws_srv_on_close(struct ws *w, int code)
{
	(void)w;
	(void)code;
	srv.ws_closed++;
}

static const struct ws_cbs ws_srv_cbs = {
	.on_close = ws_srv_on_close,
};

static void
http_handler(struct http_request *req, void *arg)
{
	(void)arg;
	srv.nreq++;
	if (srv.authenticate_first)
		conn_set_authenticated(req->conn);
	if (req->is_upgrade) {
		(void)http_upgrade_ws(req, &ws_srv_cbs, NULL);
		return;
	}
	http_respond(req, 200, "text/plain", NULL, "ok\n", 3);
}

static struct http_opts http_opts;

static void
http_on_accept(struct conn *c, void *arg)
{
	(void)arg;
	assert_int_equal(http_serve_opts(c, &http_opts, http_handler, NULL),
	    0);
}

static void
start(void (*on_accept)(struct conn *, void *),
    const struct listener_limits *lim)
{
	memset(&srv, 0, sizeof(srv));
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(listener_start(&loop, NULL, "127.0.0.1", 0,
	    on_accept, NULL, &lis), 0);
	port = listener_port(lis);
	if (lim != NULL)
		assert_int_equal(listener_set_limits(lis, lim), 0);
}

static int
no_conns_left(void)
{
	struct listener_stats st;

	listener_stats(NULL, &st, 0);
	return st.live == 0;
}

static void
stop(void)
{
	int i;

	for (i = 0; i < srv.nconns; i++)
		if (srv.conns[i] != NULL)
			conn_abort(srv.conns[i], 0);
	listener_stop(lis);
	lis = NULL;
	assert_true(spin(no_conns_left));
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- tests -------------------------------------------------------------- */

static unsigned want_unauth;
static uint64_t want_refused;

static int
counts_reached(void)
{
	struct listener_stats st;

	listener_stats(lis, &st, 0);
	return st.unauthenticated == want_unauth &&
	    st.refused_total + st.refused_per_source == want_refused;
}

static void
test_caps(void **state)
{
	struct listener_limits lim = { .max_unauth = 5,
	    .max_unauth_per_source = 3 };
	struct listener_stats st;
	int a[5], b[3], c, i;

	(void)state;
	start(raw_on_accept, &lim);
	/* One source: three in, the next two refused at once. */
	for (i = 0; i < 5; i++)
		a[i] = raw_connect("127.0.0.2");
	want_unauth = 3;
	want_refused = 2;
	assert_true(spin(counts_reached));
	for (i = 0; i < 3; i++)
		assert_false(raw_closed(a[i]));
	spin_for(50);
	assert_true(raw_closed(a[3]));
	assert_true(raw_closed(a[4]));
	/* Another source fills the total; a third source finds it full. */
	for (i = 0; i < 3; i++)
		b[i] = raw_connect("127.0.0.3");
	c = raw_connect("127.0.0.4");
	want_unauth = 5;
	want_refused = 4;
	assert_true(spin(counts_reached));
	listener_stats(lis, &st, 0);
	assert_int_equal(st.refused_per_source, 2);
	assert_int_equal(st.refused_total, 2);
	spin_for(50);
	assert_true(raw_closed(c));
	close(c);
	assert_int_equal(srv.nconns, 5);
	/* One authenticates: its slot is free for a newcomer; the
	 * authenticated one is no longer subject to the caps at all. */
	conn_set_authenticated(srv.conns[0]);
	conn_set_authenticated(srv.conns[0]);   /* idempotent */
	c = raw_connect("127.0.0.4");
	want_unauth = 5;
	assert_true(spin(counts_reached));
	spin_for(50);
	assert_false(raw_closed(c));
	assert_int_equal(srv.nconns, 6);
	/* One goes away: its slot too. */
	close(b[0]);
	want_unauth = 4;
	assert_true(spin(counts_reached));
	for (i = 0; i < 5; i++)
		close(a[i]);
	close(b[1]);
	close(b[2]);
	close(c);
	stop();
}

static int
one_closed(void)
{
	return srv.nclosed >= 1;
}

/* An unauthenticated peer is closed at the deadline whatever it sends. */
static void
test_auth_deadline(void **state)
{
	struct listener_limits lim = { .auth_timeout_ms = 300 };
	uint64_t end;
	int fd, fd2, i;

	(void)state;
	start(raw_on_accept, &lim);
	fd = raw_connect("127.0.0.2");
	fd2 = raw_connect("127.0.0.2");
	end = now_ms() + MAX_WAIT_MS;
	for (i = 0; i < 2000 && srv.nclosed == 0 && now_ms() < end; i++) {
		/* Every byte would reset an idle timer; not this one. */
		if (i % 20 == 0)
			(void)send(fd, "x", 1, MSG_NOSIGNAL);
		if (i == 0) {
			spin_for(20);
			assert_int_equal(srv.nconns, 2);
			/* The second one proves who it is in time. */
			conn_set_authenticated(srv.conns[1]);
		}
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_true(spin(one_closed));
	assert_int_equal(srv.last_err, PH_ERR_EXPIRED);
	assert_null(srv.conns[0]);
	/* The authenticated one outlives the deadline. */
	spin_for(400);
	assert_int_equal(srv.nclosed, 1);
	assert_non_null(srv.conns[1]);
	assert_false(raw_closed(fd2));
	close(fd);
	close(fd2);
	stop();
}

static int
req_seen(void)
{
	return srv.nreq >= 1;
}

/* Headers a byte at a time are closed at the request deadline (before,
 * the idle timer restarted with every byte); whole requests on the same
 * kind of connection are answered, and the deadline does not outlive
 * them. */
static void
test_request_deadline(void **state)
{
	static const char slow[] = "GET /slow HTTP/1.1\r\nHost: x\r\n"
	    "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "\r\n\r\n";
	static const char whole[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	char buf[512];
	uint64_t end;
	size_t i;
	int fd, fast, closed = 0;
	ssize_t n;

	(void)state;
	memset(&http_opts, 0, sizeof(http_opts));
	http_opts.request_timeout_ms = 300;
	start(http_on_accept, NULL);
	fd = raw_connect("127.0.0.2");
	fast = raw_connect("127.0.0.3");
	assert_int_equal(send(fast, whole, strlen(whole), 0),
	    (ssize_t)strlen(whole));
	assert_true(spin(req_seen));
	end = now_ms() + MAX_WAIT_MS;
	for (i = 0; i < sizeof(slow) - 1 && now_ms() < end; i++) {
		if (send(fd, slow + i, 1, MSG_NOSIGNAL) != 1 ||
		    raw_closed(fd)) {
			closed = 1;
			break;
		}
		spin_for(20);
	}
	/* The whole head would take over 3 s at this pace. */
	assert_true(closed || raw_closed(fd));
	assert_int_equal(srv.nreq, 1);
	close(fd);
	/* The answered connection is still there after the deadline passed
	 * and takes another request. */
	n = recv(fast, buf, sizeof(buf), MSG_DONTWAIT);
	assert_true(n > 0);
	assert_false(raw_closed(fast));
	assert_int_equal(send(fast, whole, strlen(whole), 0),
	    (ssize_t)strlen(whole));
	srv.nreq = 0;
	assert_true(spin(req_seen));
	close(fast);
	stop();
}

static int cli_ws_closed;

static void
cli_ws_on_close(struct ws *w, int code)
{
	(void)w;
	(void)code;
	cli_ws_closed++;
}

static const struct ws_cbs cli_ws_cbs = {
	.on_close = cli_ws_on_close,
};

static int
ws_one_closed(void)
{
	return srv.ws_closed >= 1 && cli_ws_closed >= 1;
}

/* An upgraded WebSocket that never authenticates is closed at its
 * deadline even while it keeps pinging; one that has authenticated
 * stays. */
static void
test_ws_auth_deadline(void **state)
{
	struct ws *w;
	char url[64];

	(void)state;
	memset(&http_opts, 0, sizeof(http_opts));
	http_opts.ws_auth_timeout_ms = 300;
	start(http_on_accept, NULL);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/data", port);
	cli_ws_closed = 0;
	assert_int_equal(ws_dial(&loop, NULL, url, NULL, &cli_ws_cbs, NULL,
	    &w), 0);
	ws_set_keepalive(w, 50, 5000);
	assert_true(spin(ws_one_closed));
	/* The same with a connection the handler authenticated. */
	srv.ws_closed = 0;
	cli_ws_closed = 0;
	srv.authenticate_first = 1;
	assert_int_equal(ws_dial(&loop, NULL, url, NULL, &cli_ws_cbs, NULL,
	    &w), 0);
	ws_set_keepalive(w, 50, 5000);
	spin_for(800);
	assert_int_equal(srv.ws_closed, 0);
	assert_int_equal(cli_ws_closed, 0);
	ws_close(w, 1000, NULL);
	assert_true(spin(ws_one_closed));
	stop();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_auth_deadline),
		cmocka_unit_test(test_request_deadline),
		cmocka_unit_test(test_ws_auth_deadline),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
