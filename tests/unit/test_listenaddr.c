/* listenaddr (the --listen parser) and listeners on several addresses,
 * IPv6 among them: one set of caps and counts, TLS verified against the
 * IP addresses of the certificate `portholed init` makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/tls.h"
#include "server/certcmd.h"
#include "server/certnames.h"
#include "server/init.h"
#include "server/listenaddr.h"

#define SAFETY_MS 10000

static void
test_parse_good(void **state)
{
	static const struct {
		const char *in, *host, *show;
		int port, v6;
	} t[] = {
		{ "127.0.0.1:8443", "127.0.0.1", "127.0.0.1:8443", 8443, 0 },
		{ "localhost:443", "127.0.0.1", "127.0.0.1:443", 443, 0 },
		{ ":8443", "0.0.0.0", "0.0.0.0:8443", 8443, 0 },
		{ "0.0.0.0:0", "0.0.0.0", "0.0.0.0:0", 0, 0 },
		{ "[::1]:8443", "::1", "[::1]:8443", 8443, 1 },
		{ "[0:0::1]:65535", "::1", "[::1]:65535", 65535, 1 },
		{ "[::]:443", "::", "[::]:443", 443, 1 },
		{ "[2001:DB8::5]:1", "2001:db8::5", "[2001:db8::5]:1", 1, 1 },
		{ "[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1",
		    "[::ffff:127.0.0.1]:80", 80, 1 },
		{ "127.0.0.44:00443", "127.0.0.44", "127.0.0.44:443", 443, 0 },
	};
	struct listenaddr a;
	char err[160], show[LISTENADDR_SHOW_SIZE];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		assert_int_equal(listenaddr_parse(t[i].in, &a, err,
		    sizeof(err)), 0);
		assert_string_equal(a.host, t[i].host);
		assert_int_equal(a.port, t[i].port);
		assert_int_equal(a.v6, t[i].v6);
		listenaddr_show(&a, show, sizeof(show));
		assert_string_equal(show, t[i].show);
	}
}

static void
test_parse_garbage(void **state)
{
	static const struct {
		const char *in, *why;
	} t[] = {
		{ "", "empty" },
		{ "8443", "no :PORT" },
		{ "::1:8443", "brackets" },
		{ "::1", "brackets" },
		{ "[::1]", "[IPv6]:PORT" },
		{ "[::1]8443", "[IPv6]:PORT" },
		{ "[::1:8443", "without ']'" },
		{ "::1]:8443", "brackets" },
		{ "]:80", "without '['" },
		{ "[]:80", "not an IPv6" },
		{ "[127.0.0.1]:80", "IPv4 address without" },
		{ "[fe80::1%lo]:80", "zone" },
		{ "[::1]:", "missing" },
		{ "127.0.0.1:", "missing" },
		{ "127.0.0.1:65536", "0-65535" },
		{ "127.0.0.1:123456", "0-65535" },
		{ "127.0.0.1:-1", "not a number" },
		{ "127.0.0.1:+80", "not a number" },
		{ "127.0.0.1:0x50", "not a number" },
		{ "127.0.0.1:80a", "not a number" },
		{ "example.com:80", "not an IP address" },
		{ "porthole:8443", "not an IP address" },
		{ "1.2.3.4.5:80", "not an IP address" },
		{ "256.0.0.1:80", "not an IP address" },
		{ "127.0.0.1 :80", "space" },
		{ "127.0.0.1:80\n", "control" },
		{ "127.0.0.1:\t80", "control" },
		{ "\xc3\xa9:80", "non-ASCII" },
		{ "*:80", "not an IP address" },
		{ "[::1]:80:80", "not a number" },
		{ "[[::1]]:80", "[IPv6]:PORT" },
		{ "[1.2.3.4]]:80", "[IPv6]:PORT" },
	};
	struct listenaddr a;
	char err[160], big[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		assert_int_equal(listenaddr_parse(t[i].in, &a, err,
		    sizeof(err)), PH_ERR_INVALID);
		if (strstr(err, t[i].why) == NULL)
			fail_msg("'%s': '%s' does not say '%s'", t[i].in, err,
			    t[i].why);
	}
	assert_int_equal(listenaddr_parse(NULL, &a, err, sizeof(err)),
	    PH_ERR_INVALID);
	/* NULL err is allowed; an overlong value is refused whole. */
	assert_int_equal(listenaddr_parse("nope", &a, NULL, 0),
	    PH_ERR_INVALID);
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[3] = ':';
	assert_int_equal(listenaddr_parse(big, &a, err, sizeof(err)),
	    PH_ERR_INVALID);
	assert_non_null(strstr(err, "too long"));
}

static void
test_same(void **state)
{
	struct listenaddr a, b;

	(void)state;
	assert_int_equal(listenaddr_parse("[::1]:8443", &a, NULL, 0), 0);
	assert_int_equal(listenaddr_parse("[0::1]:8443", &b, NULL, 0), 0);
	assert_true(listenaddr_same(&a, &b));
	assert_int_equal(listenaddr_parse("[::1]:8444", &b, NULL, 0), 0);
	assert_false(listenaddr_same(&a, &b));
	assert_int_equal(listenaddr_parse("localhost:8443", &a, NULL, 0), 0);
	assert_int_equal(listenaddr_parse("127.0.0.1:8443", &b, NULL, 0), 0);
	assert_true(listenaddr_same(&a, &b));
}

/* ---- one listener, several addresses ------------------------------------ */

static struct {
	int accepted;
	int opened;
	int closed;
	int close_err;
} ev;

static void
srv_on_close(struct conn *c, int err)
{
	(void)c;
	(void)err;
}

static const struct conn_cbs srv_cbs = { .on_close = srv_on_close };

static void
on_accept(struct conn *c, void *arg)
{
	(void)arg;
	ev.accepted++;
	conn_set_cbs(c, &srv_cbs, NULL);
}

static void
cli_on_open(struct conn *c)
{
	ev.opened++;
	conn_close(c);
}

static void
cli_on_close(struct conn *c, int err)
{
	(void)c;
	ev.closed++;
	ev.close_err = err;
}

static const struct conn_cbs cli_cbs = {
	.on_open = cli_on_open,
	.on_close = cli_on_close,
};

/* Clients that stay connected. */
static void
hold_on_open(struct conn *c)
{
	(void)c;
	ev.opened++;
}

static const struct conn_cbs hold_cbs = {
	.on_open = hold_on_open,
	.on_close = cli_on_close,
};

static void
on_safety(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Run the loop until n clients closed (or the safety timer fires). */
static void
run_until_closed(uv_loop_t *loop, int n)
{
	uv_timer_t safety;
	uint64_t end;

	uv_timer_init(loop, &safety);
	uv_timer_start(&safety, on_safety, SAFETY_MS, 0);
	end = uv_now(loop) + SAFETY_MS;
	while (ev.closed < n && uv_now(loop) < end)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&safety, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	assert_int_equal(ev.closed, n);
}

static int
dial(uv_loop_t *loop, struct tls_ctx *ctx, const char *host, int port)
{
	struct conn *c;

	memset(&ev, 0, sizeof(ev));
	assert_int_equal(conn_dial(loop, ctx, host, port, NULL, &cli_cbs,
	    NULL, &c), 0);
	run_until_closed(loop, 1);
	return ev.opened == 1 ? 0 : ev.close_err != 0 ? ev.close_err : -1;
}

/* A data directory of `portholed init`, TLS contexts over its files and
 * a loop, for the tests that dial a listener. */
struct tlsenv {
	char base[32], dir[64], cert[96], key[96], ca[96];
	struct tls_ctx *sctx, *cctx;
	uv_loop_t loop;
};

static void
tlsenv_open(struct tlsenv *e)
{
	struct init_opts o;
	FILE *devnull;

	memset(e, 0, sizeof(*e));
	snprintf(e->base, sizeof(e->base), "/tmp/test_listenaddr.XXXXXX");
	assert_non_null(mkdtemp(e->base));
	snprintf(e->dir, sizeof(e->dir), "%s/d", e->base);
	devnull = fopen("/dev/null", "w");
	memset(&o, 0, sizeof(o));
	o.data_dir = e->dir;
	o.out = devnull;
	assert_int_equal(server_init_datadir(&o), 0);
	fclose(devnull);
	snprintf(e->cert, sizeof(e->cert), "%s/server.pem", e->dir);
	snprintf(e->key, sizeof(e->key), "%s/server.key", e->dir);
	snprintf(e->ca, sizeof(e->ca), "%s/ca.pem", e->dir);
	assert_int_equal(tls_ctx_new_server(&e->sctx, e->cert, e->key,
	    e->ca), 0);
	assert_int_equal(tls_ctx_new_client(&e->cctx, e->ca, NULL, NULL), 0);
	assert_int_equal(uv_loop_init(&e->loop), 0);
}

/* Stops l, closes every connection and the loop, removes the files. */
static void
tlsenv_close(struct tlsenv *e, struct listener *l)
{
	char cmd[128];
	int i;

	listener_stop(l);
	conn_abort_all(&e->loop, PH_ERR_STATE);
	for (i = 0; i < 100 && uv_run(&e->loop, UV_RUN_NOWAIT) != 0; i++)
		;
	assert_int_equal(uv_loop_close(&e->loop), 0);
	tls_ctx_free(e->sctx);
	tls_ctx_free(e->cctx);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->base);
	assert_int_equal(system(cmd), 0);
}

static void
test_listener_addresses(void **state)
{
	struct tlsenv e;
	struct listener *l;
	int p4, p6;

	(void)state;
	tlsenv_open(&e);
	assert_int_equal(listener_start(&e.loop, e.sctx, "127.0.0.1", 0,
	    on_accept, NULL, &l), 0);
	assert_int_equal(listener_add(l, "::1", 0), 0);
	p4 = listener_port_at(l, 0);
	p6 = listener_port_at(l, 1);
	assert_int_equal(listener_port(l), p4);
	assert_true(p4 > 0 && p6 > 0);
	assert_int_equal(listener_port_at(l, 2), -1);
	/* Bad and taken addresses are told apart. */
	assert_int_equal(listener_add(l, "not-an-ip", 0), PH_ERR_INVALID);
	assert_int_equal(listener_add(l, "::1", p6), PH_ERR_EXISTS);
	assert_int_equal(listener_add(l, "127.0.0.1", p4), PH_ERR_EXISTS);
	assert_int_equal(listener_add(l, "192.0.2.1", 0), PH_ERR_NOTFOUND);

	/* The certificate of `portholed init` names 127.0.0.1 and ::1: both
	 * verify as IP addresses, "localhost" as a DNS name. */
	assert_int_equal(dial(&e.loop, e.cctx, "127.0.0.1", p4), 0);
	assert_int_equal(ev.accepted, 1);
	assert_int_equal(dial(&e.loop, e.cctx, "::1", p6), 0);
	assert_int_equal(ev.accepted, 1);
	tlsenv_close(&e, l);
}

/* tls_ctx_reload_server: a re-issued certificate is served from the
 * next connection on; broken files keep the old one. */
static void
test_reload_certificate(void **state)
{
	const char *only[] = { "only.example" }, *v6[] = { "::1" };
	struct cert_reissue_opts ro;
	struct certnames cn;
	struct tlsenv e;
	struct listener *l;
	int port;

	(void)state;
	tlsenv_open(&e);
	assert_int_equal(listener_start(&e.loop, e.sctx, "::1", 0, on_accept,
	    NULL, &l), 0);
	port = listener_port(l);
	assert_int_equal(dial(&e.loop, e.cctx, "::1", port), 0);

	/* Re-issued for another name only: ::1 no longer verifies once
	 * reloaded. */
	memset(&ro, 0, sizeof(ro));
	ro.data_dir = e.dir;
	ro.hostnames = only;
	ro.nhostnames = 1;
	ro.replace = 1;
	assert_int_equal(server_cert_reissue(&ro, &cn), 0);
	assert_int_equal(dial(&e.loop, e.cctx, "::1", port), 0);
	assert_int_equal(tls_ctx_reload_server(e.sctx, e.cert, e.key, e.ca),
	    0);
	assert_int_not_equal(dial(&e.loop, e.cctx, "::1", port), 0);

	/* Broken files: refused, the current certificate stays. */
	assert_int_not_equal(tls_ctx_reload_server(e.sctx, e.ca, e.key,
	    e.ca), 0);
	assert_int_not_equal(tls_ctx_reload_server(e.sctx, "/nonexistent",
	    e.key, e.ca), 0);
	assert_int_equal(tls_ctx_reload_server(e.cctx, e.cert, e.key, e.ca),
	    PH_ERR_INVALID);
	assert_int_not_equal(dial(&e.loop, e.cctx, "::1", port), 0);
	/* Names added back: served again after the next reload. */
	ro.hostnames = v6;
	ro.replace = 0;
	assert_int_equal(server_cert_reissue(&ro, &cn), 0);
	assert_int_equal(tls_ctx_reload_server(e.sctx, e.cert, e.key, e.ca),
	    0);
	assert_int_equal(dial(&e.loop, e.cctx, "::1", port), 0);

	tlsenv_close(&e, l);
}

/* The unauthenticated caps count every address of the listener. */
static void
test_listener_shared_caps(void **state)
{
	struct listener_limits lim;
	struct listener_stats st;
	struct listener *l;
	struct conn *c1, *c2;
	uv_loop_t loop;
	uv_timer_t safety;
	uint64_t end;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(listener_start(&loop, NULL, "127.0.0.1", 0,
	    on_accept, NULL, &l), 0);
	assert_int_equal(listener_add(l, "::1", 0), 0);
	memset(&lim, 0, sizeof(lim));
	lim.max_unauth = 1;
	assert_int_equal(listener_set_limits(l, &lim), 0);
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(conn_dial(&loop, NULL, "127.0.0.1",
	    listener_port_at(l, 0), NULL, &hold_cbs, NULL, &c1), 0);
	uv_timer_init(&loop, &safety);
	uv_timer_start(&safety, on_safety, SAFETY_MS, 0);
	end = uv_now(&loop) + SAFETY_MS;
	while (ev.accepted < 1 && uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(ev.accepted, 1);
	/* c1 stays open and unauthenticated: the one slot is taken for the
	 * other address too. */
	assert_int_equal(conn_dial(&loop, NULL, "::1", listener_port_at(l, 1),
	    NULL, &hold_cbs, NULL, &c2), 0);
	listener_stats(l, &st, 0);
	while (st.refused_total < 1 && uv_now(&loop) < end) {
		uv_run(&loop, UV_RUN_ONCE);
		listener_stats(l, &st, 0);
	}
	assert_int_equal(st.refused_total, 1);
	assert_int_equal(st.unauthenticated, 1);
	assert_int_equal(ev.accepted, 1);
	listener_stop(l);
	conn_abort_all(&loop, PH_ERR_STATE);
	uv_close((uv_handle_t *)&safety, NULL);
	for (end = 0; end < 100 && uv_run(&loop, UV_RUN_NOWAIT) != 0; end++)
		;
	(void)uv_loop_close(&loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_same),
		cmocka_unit_test(test_listener_addresses),
		cmocka_unit_test(test_listener_shared_caps),
		cmocka_unit_test(test_reload_certificate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
