/* conn_dial_proxy (tls.c): the CONNECT request it sends, the tunnel after
 * a 2xx (bytes right behind the proxy's header included), and the clear
 * failures for a refusal, junk, an oversized header and a proxy that
 * hangs up. A fake proxy on 127.0.0.1 in the same loop answers from a
 * script; the tunnel is plain TCP here (TLS through it: tests/e2e). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/err.h"
#include "common/proxy.h"
#include "common/tls.h"

#define SAFETY_MS 10000

static uv_loop_t loop;

/* The fake proxy: one connection at a time. */
static struct {
	uv_tcp_t srv;
	uv_tcp_t cli;
	int port;
	int have_cli;
	char got[16384];           /* everything the client sent */
	size_t ngot;
	size_t hdr_end;            /* after the request's blank line */
	const char *answer;        /* NULL: hang up instead */
	size_t answer_len;
	int answered;
	uv_write_t wreq;
} fp;

/* What the dialling side saw. */
static struct {
	int opened;
	int closed;
	int err;
	char data[256];
	size_t ndata;
	struct conn *c;
} cl;

static void
fp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char rbuf[4096];

	(void)h;
	(void)hint;
	b->base = rbuf;
	b->len = sizeof(rbuf);
}

static void
fp_cli_closed(uv_handle_t *h)
{
	(void)h;
	fp.have_cli = 0;
}

static void
fp_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	char *e;
	uv_buf_t wb;

	if (n < 0) {
		if (!uv_is_closing((uv_handle_t *)s))
			uv_close((uv_handle_t *)s, fp_cli_closed);
		return;
	}
	if ((size_t)n > sizeof(fp.got) - 1 - fp.ngot)
		n = (ssize_t)(sizeof(fp.got) - 1 - fp.ngot);
	memcpy(fp.got + fp.ngot, b->base, (size_t)n);
	fp.ngot += (size_t)n;
	fp.got[fp.ngot] = '\0';
	if (fp.answered || (e = strstr(fp.got, "\r\n\r\n")) == NULL)
		return;
	fp.hdr_end = (size_t)(e + 4 - fp.got);
	fp.answered = 1;
	if (fp.answer == NULL) {
		uv_close((uv_handle_t *)s, fp_cli_closed);
		return;
	}
	wb = uv_buf_init((char *)fp.answer, (unsigned)fp.answer_len);
	assert_int_equal(uv_write(&fp.wreq, s, &wb, 1, NULL), 0);
}

static void
fp_on_conn(uv_stream_t *s, int status)
{
	assert_int_equal(status, 0);
	assert_int_equal(fp.have_cli, 0);
	uv_tcp_init(&loop, &fp.cli);
	assert_int_equal(uv_accept(s, (uv_stream_t *)&fp.cli), 0);
	fp.have_cli = 1;
	uv_read_start((uv_stream_t *)&fp.cli, fp_alloc, fp_on_read);
}

static void
cl_open(struct conn *c)
{
	cl.opened = 1;
	assert_int_equal(conn_write(c, "PING", 4), 0);
}

static void
cl_read(struct conn *c, const uint8_t *p, size_t n)
{
	(void)c;
	if (n > sizeof(cl.data) - cl.ndata)
		n = sizeof(cl.data) - cl.ndata;
	memcpy(cl.data + cl.ndata, p, n);
	cl.ndata += n;
	if (cl.ndata >= 5)
		conn_close(c);
}

static void
cl_close(struct conn *c, int err)
{
	(void)c;
	cl.closed = 1;
	cl.err = err;
	cl.c = NULL;
}

static const struct conn_cbs cl_cbs = {
	.on_open = cl_open,
	.on_read = cl_read,
	.on_close = cl_close,
};

static void
safety(uv_timer_t *t)
{
	(void)t;
	fail_msg("the test did not finish in time");
}

/* Dial target:port through the fake proxy answering `answer`. */
static void
run(const char *target, const char *answer, size_t alen,
    const char *proxy_url)
{
	struct proxy_config *cfg;
	const struct proxy *px;
	uv_timer_t t;
	char url[128], err[128];

	memset(&cl, 0, sizeof(cl));
	fp.ngot = fp.hdr_end = 0;
	fp.answered = 0;
	fp.answer = answer;
	fp.answer_len = alen;
	if (proxy_url == NULL) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", fp.port);
		proxy_url = url;
	}
	assert_int_equal(proxy_config_new(&cfg, proxy_url, NULL, err,
	    sizeof(err)), 0);
	px = proxy_for(cfg, target, 8443);
	assert_non_null(px);
	assert_int_equal(conn_dial_proxy(&loop, NULL, target, 8443, NULL, px,
	    &cl_cbs, NULL, &cl.c), 0);
	/* The connection copied what it needs. */
	proxy_config_free(cfg);
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, safety, SAFETY_MS, 0);
	while (!cl.closed)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	if (fp.have_cli && !uv_is_closing((uv_handle_t *)&fp.cli))
		uv_close((uv_handle_t *)&fp.cli, fp_cli_closed);
	while (fp.have_cli || uv_is_active((uv_handle_t *)&t))
		uv_run(&loop, UV_RUN_ONCE);
	uv_run(&loop, UV_RUN_NOWAIT);
}

#define S(x) x, sizeof(x) - 1

static void
test_proxy_unreachable(void **state)
{
	(void)state;
	/* Nothing listens on port 1: the dial fails, naming the proxy. */
	run("target.example", S("HTTP/1.1 200 OK\r\n\r\n"),
	    "http://127.0.0.1:1");
	assert_int_equal(cl.opened, 0);
	assert_true(cl.closed);
	assert_int_equal(cl.err, PH_ERR_IO);
}

static void
test_tunnel_real(void **state)
{
	char url[128];

	(void)state;
	snprintf(url, sizeof(url), "http://u:p@127.0.0.1:%d", fp.port);
	run("target.example", S("HTTP/1.1 200 Connection established\r\n"
	    "Proxy-Agent: fake\r\n\r\nHELLO"), url);
	assert_true(cl.opened);
	assert_int_equal(cl.err, 0);
	assert_int_equal(cl.ndata, 5);
	assert_memory_equal(cl.data, "HELLO", 5);
	assert_true(fp.hdr_end > 0);
	assert_memory_equal(fp.got, "CONNECT target.example:8443 HTTP/1.1\r\n"
	    "Host: target.example:8443\r\n"
	    "Proxy-Authorization: Basic dTpw\r\n\r\n", fp.hdr_end);
	/* What the client wrote once open went through the tunnel. */
	assert_string_equal(fp.got + fp.hdr_end, "PING");
}

static void
test_ipv6_target(void **state)
{
	(void)state;
	run("::1", S("HTTP/1.0 200 OK\r\n\r\nHELLO"), NULL);
	assert_true(cl.opened);
	assert_memory_equal(fp.got, "CONNECT [::1]:8443 HTTP/1.1\r\n"
	    "Host: [::1]:8443\r\n\r\n", fp.hdr_end);
}

static void
test_refused(void **state)
{
	(void)state;
	run("t", S("HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nno\r\n"),
	    NULL);
	assert_int_equal(cl.opened, 0);
	assert_int_equal(cl.err, PH_ERR_DENIED);
	run("t", S("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"),
	    NULL);
	assert_int_equal(cl.err, PH_ERR_DENIED);
	run("t", S("HTTP/1.1 502 Bad Gateway\r\n\r\n"), NULL);
	assert_int_equal(cl.opened, 0);
	assert_int_equal(cl.err, PH_ERR_IO);
	/* 1xx is not a tunnel either. */
	run("t", S("HTTP/1.1 101 Switching Protocols\r\n\r\n"), NULL);
	assert_int_equal(cl.opened, 0);
	assert_int_not_equal(cl.err, 0);
}

static void
test_garbage(void **state)
{
	static char huge[12000];
	size_t n;

	(void)state;
	run("t", S("SSH-2.0-OpenSSH_9.2\r\n\r\n"), NULL);
	assert_int_equal(cl.opened, 0);
	assert_int_equal(cl.err, PH_ERR_INVALID);
	run("t", S("\x00\xff\xfe\r\n\r\n"), NULL);
	assert_int_equal(cl.err, PH_ERR_INVALID);
	run("t", S("HTTP/1.1 2000 OK\r\n\r\n"), NULL);
	assert_int_equal(cl.opened, 0);
	assert_int_not_equal(cl.err, 0);
	/* A header over 8 KiB, complete or not. */
	n = (size_t)snprintf(huge, sizeof(huge), "HTTP/1.1 200 OK\r\nX: ");
	memset(huge + n, 'a', sizeof(huge) - n - 4);
	memcpy(huge + sizeof(huge) - 4, "\r\n\r\n", 4);
	run("t", huge, sizeof(huge), NULL);
	assert_int_equal(cl.opened, 0);
	assert_int_equal(cl.err, PH_ERR_TOOBIG);
	run("t", huge, sizeof(huge) - 4, NULL);
	assert_int_equal(cl.opened, 0);
	assert_int_equal(cl.err, PH_ERR_TOOBIG);
	/* Hung up without a word. */
	run("t", NULL, 0, NULL);
	assert_int_equal(cl.opened, 0);
	assert_int_equal(cl.err, PH_ERR_IO);
}

static int
setup(void **state)
{
	struct sockaddr_in sa;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	(void)state;
	uv_loop_init(&loop);
	uv_tcp_init(&loop, &fp.srv);
	uv_ip4_addr("127.0.0.1", 0, &sa);
	assert_int_equal(uv_tcp_bind(&fp.srv, (struct sockaddr *)&sa, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&fp.srv, 16, fp_on_conn), 0);
	uv_tcp_getsockname(&fp.srv, (struct sockaddr *)&ss, &len);
	fp.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	uv_close((uv_handle_t *)&fp.srv, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	return uv_loop_close(&loop) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_unreachable),
		cmocka_unit_test(test_tunnel_real),
		cmocka_unit_test(test_ipv6_target),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
