/* Unit tests for the network layer: tls.c (TLS over libuv), http.c and
 * ws.c, against each other on 127.0.0.1 with certificates made here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/http.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/ws.h"

#define CLIENT_CN "mi-0123456789abcdef0"
#define SAFETY_MS 10000

static uv_loop_t loop;
static char dir[64];
static char ca_pem[128], srv_pem[128], srv_key[128], cli_pem[128],
    cli_key[128], other_ca_pem[128];
static struct tls_ctx *srv_ctx, *cli_ctx, *anon_ctx, *other_ctx;
static struct listener *lis, *plain_lis;
static int port, plain_port;

/* What the server side saw. */
static struct {
	char cn[128];
	int cn_set;
	int nreq;
	int ws_closed;
	int ws_code;
	int ka_closed;
	int ka_code;
	uint64_t ka_closed_at;
} srv;

/* ---- certificates ------------------------------------------------------- */

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

	if (e == NULL)
		return -1;
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return 0;
}

static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey,
    int is_ca, const char *san, const char *eku)
{
	static long serial = 1;
	X509V3_CTX v3;
	X509_NAME *n;
	X509 *x = X509_new();

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	assert_int_equal(add_ext(x, &v3, NID_basic_constraints,
	    is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE"), 0);
	assert_int_equal(add_ext(x, &v3, NID_key_usage, is_ca ?
	    "critical,keyCertSign,cRLSign" : "critical,digitalSignature"), 0);
	assert_int_equal(add_ext(x, &v3, NID_subject_key_identifier, "hash"),
	    0);
	if (eku != NULL)
		assert_int_equal(add_ext(x, &v3, NID_ext_key_usage, eku), 0);
	if (san != NULL)
		assert_int_equal(add_ext(x, &v3, NID_subject_alt_name, san), 0);
	assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
	return x;
}

static void
write_cert(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
}

static void
write_key(const char *path, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL,
	    NULL), 1);
	fclose(f);
}

static void
make_pki(void)
{
	EVP_PKEY *cak, *sk, *ck, *ok;
	X509 *ca, *sc, *cc, *oc;

	snprintf(dir, sizeof(dir), "/tmp/porthole-net-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", dir);
	snprintf(srv_pem, sizeof(srv_pem), "%s/server.pem", dir);
	snprintf(srv_key, sizeof(srv_key), "%s/server.key", dir);
	snprintf(cli_pem, sizeof(cli_pem), "%s/client.pem", dir);
	snprintf(cli_key, sizeof(cli_key), "%s/client.key", dir);
	snprintf(other_ca_pem, sizeof(other_ca_pem), "%s/other.pem", dir);
	cak = EVP_EC_gen("P-256");
	sk = EVP_EC_gen("P-256");
	ck = EVP_EC_gen("P-256");
	ok = EVP_EC_gen("P-256");
	assert_true(cak && sk && ck && ok);
	ca = make_cert(cak, "porthole test CA", NULL, NULL, 1, NULL, NULL);
	sc = make_cert(sk, "localhost", ca, cak, 0,
	    "DNS:localhost,IP:127.0.0.1", "serverAuth");
	cc = make_cert(ck, CLIENT_CN, ca, cak, 0, NULL, "clientAuth");
	oc = make_cert(ok, "some other CA", NULL, NULL, 1, NULL, NULL);
	write_cert(ca_pem, ca);
	write_cert(srv_pem, sc);
	write_key(srv_key, sk);
	write_cert(cli_pem, cc);
	write_key(cli_key, ck);
	write_cert(other_ca_pem, oc);
	X509_free(ca);
	X509_free(sc);
	X509_free(cc);
	X509_free(oc);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(ok);
}

static void
remove_pki(void)
{
	unlink(ca_pem);
	unlink(srv_pem);
	unlink(srv_key);
	unlink(cli_pem);
	unlink(cli_key);
	unlink(other_ca_pem);
	rmdir(dir);
}

/* ---- running the loop, bounded ----------------------------------------- */

static int timed_out;

static void
on_safety(uv_timer_t *t)
{
	(void)t;
	timed_out = 1;
	uv_stop(&loop);
}

/* Run until *flag becomes non-zero (or ms passes); returns *flag. */
static int
run_until(const int *flag, unsigned ms)
{
	uv_timer_t t;

	timed_out = 0;
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, on_safety, ms, 0);
	while (!*flag && !timed_out)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return *flag;
}

/* One bounded turn of the loop; 0 once the deadline has passed. */
static int
step(uint64_t deadline)
{
	int never = 0;

	(void)run_until(&never, 20);
	timed_out = 0;
	if (uv_now(&loop) < deadline)
		return 1;
	timed_out = 1;
	return 0;
}

static uint64_t
deadline_in(unsigned ms)
{
	uv_update_time(&loop);
	return uv_now(&loop) + ms;
}

static void
run_for(unsigned ms)
{
	int never = 0;

	(void)run_until(&never, ms);
}

/* ---- the server under test ---------------------------------------------- */

static void
echo_msg(struct ws *w, int op, const uint8_t *p, size_t n)
{
	assert_int_equal(ws_send(w, op, p, n), 0);
	if (ws_write_pending(w) > CONN_HIGH_WATER)
		ws_pause_read(w, 1);
}

static void
echo_drain(struct ws *w)
{
	ws_pause_read(w, 0);
}

static void
echo_close(struct ws *w, int code)
{
	(void)w;
	srv.ws_code = code;
	srv.ws_closed++;
}

static const struct ws_cbs echo_cbs = {
	.on_message = echo_msg,
	.on_drain = echo_drain,
	.on_close = echo_close,
};

static void
ka_close(struct ws *w, int code)
{
	(void)w;
	srv.ka_code = code;
	srv.ka_closed = 1;
	srv.ka_closed_at = uv_now(&loop);
}

static const struct ws_cbs ka_cbs = {
	.on_message = echo_msg,
	.on_close = ka_close,
};

#define BIG_BODY ((size_t)4 << 20)

static uv_timer_t later_timer;
static struct http_request *later_req;

static void
later_fire(uv_timer_t *t)
{
	(void)t;
	assert_non_null(later_req);
	assert_string_equal(later_req->path, "/later");
	http_respond(later_req, 200, "text/plain", NULL, "later", 5);
	later_req = NULL;
}

static void
handler(struct http_request *req, void *arg)
{
	const char *cn = conn_peer_cn(req->conn);
	char body[256];
	struct ws *w;
	int n;

	(void)arg;
	srv.nreq++;
	srv.cn_set = cn != NULL;
	snprintf(srv.cn, sizeof(srv.cn), "%s", cn ? cn : "");
	if (req->is_upgrade && strcmp(req->path, "/echo") == 0) {
		(void)http_upgrade_ws(req, &echo_cbs, NULL);
		return;
	}
	if (req->is_upgrade && strcmp(req->path, "/burst") == 0) {
		/* Eight messages and a close in one go, as the gateway ends a
		 * session: channel_closed, then the close frame. */
		w = http_upgrade_ws(req, &echo_cbs, NULL);
		assert_non_null(w);
		for (n = 0; n < 8; n++) {
			memset(body, 'A' + n, 100);
			assert_int_equal(ws_send(w, WS_BINARY, body, 100), 0);
		}
		ws_close(w, 1000, "done");
		return;
	}
	if (req->is_upgrade && strcmp(req->path, "/small") == 0) {
		w = http_upgrade_ws(req, &echo_cbs, NULL);
		assert_non_null(w);
		ws_set_max_message(w, 1024);
		return;
	}
	if (req->is_upgrade && strcmp(req->path, "/ka") == 0) {
		w = http_upgrade_ws(req, &ka_cbs, NULL);
		assert_non_null(w);
		ws_set_keepalive(w, 100, 500);
		return;
	}
	if (strcmp(req->path, "/later") == 0) {
		/* Answered from a timer, after the handler returned. */
		later_req = req;
		uv_timer_start(&later_timer, later_fire, 50, 0);
		return;
	}
	if (strcmp(req->path, "/big") == 0) {
		uint8_t *big = malloc(BIG_BODY);

		assert_non_null(big);
		for (n = 0; n < (int)BIG_BODY; n++)
			big[n] = (uint8_t)(n % 251);
		http_respond(req, 200, "application/octet-stream", NULL, big,
		    BIG_BODY);
		free(big);
		return;
	}
	if (strcmp(req->path, "/hello") == 0) {
		/* Header names match in any case. */
		assert_string_equal(http_header(req, "hOST"), "localhost");
		assert_null(http_header(req, "X-Absent"));
		n = snprintf(body, sizeof(body), "hello %s q=%s n=%zu",
		    req->method, req->query, req->body_len);
		http_respond(req, 200, "text/plain", "X-Test: 1\r\n", body,
		    (size_t)n);
		return;
	}
	http_respond(req, 404, "text/plain", NULL, "no\n", 3);
}

static void
on_accept(struct conn *c, void *arg)
{
	assert_int_equal(http_serve(c, handler, arg), 0);
}

/* ---- a raw client: TLS stream, bytes collected ------------------------- */

struct raw {
	struct conn *c;
	struct buf in;
	int opened;
	int closed;
	int err;
	/* HTTP responses, parsed with http-parser */
	http_parser hp;
	int nresp;
	int status[8];
	struct buf body[8];
};

static void
raw_open(struct conn *c)
{
	struct raw *r = conn_userdata(c);

	r->opened = 1;
}

static void
raw_read(struct conn *c, const uint8_t *p, size_t n)
{
	struct raw *r = conn_userdata(c);

	assert_int_equal(buf_append(&r->in, p, n), 0);
}

static void
raw_close(struct conn *c, int err)
{
	struct raw *r = conn_userdata(c);

	r->closed = 1;
	r->err = err;
}

static const struct conn_cbs raw_cbs = {
	.on_open = raw_open,
	.on_read = raw_read,
	.on_close = raw_close,
};

static void
raw_init(struct raw *r)
{
	int i;

	memset(r, 0, sizeof(*r));
	buf_init(&r->in, (size_t)16 << 20);
	for (i = 0; i < 8; i++)
		buf_init(&r->body[i], (size_t)1 << 20);
}

static void
raw_free(struct raw *r)
{
	int i;

	buf_free(&r->in);
	for (i = 0; i < 8; i++)
		buf_free(&r->body[i]);
}

static int
resp_body(http_parser *p, const char *at, size_t n)
{
	struct raw *r = p->data;

	if (r->nresp < 8)
		(void)buf_append(&r->body[r->nresp], at, n);
	return 0;
}

static int
resp_done(http_parser *p)
{
	struct raw *r = p->data;

	if (r->nresp < 8)
		r->status[r->nresp] = (int)p->status_code;
	r->nresp++;
	return 0;
}

static const http_parser_settings resp_settings = {
	.on_body = resp_body,
	.on_message_complete = resp_done,
};

/* Parse everything collected so far as HTTP responses. */
static void
raw_parse(struct raw *r)
{
	size_t used;

	used = http_parser_execute(&r->hp, &resp_settings,
	    (const char *)r->in.data, r->in.len);
	assert_int_equal(used, r->in.len);
	buf_reset(&r->in);
}

static int
raw_dial(struct raw *r, struct tls_ctx *ctx, const char *host,
    const char *sni)
{
	raw_init(r);
	http_parser_init(&r->hp, HTTP_RESPONSE);
	r->hp.data = r;
	return conn_dial(&loop, ctx, host, port, sni, &raw_cbs, r, &r->c);
}

static int
raw_has(struct raw *r, const char *s)
{
	return r->in.len > 0 && memmem(r->in.data, r->in.len, s,
	    strlen(s)) != NULL;
}

/* ---- group setup -------------------------------------------------------- */

static int
setup(void **state)
{
	(void)state;
	log_set_level(LOG_WARN);
	log_init_from_env();
	make_pki();
	assert_int_equal(uv_loop_init(&loop), 0);
	uv_timer_init(&loop, &later_timer);
	assert_int_equal(tls_ctx_new_server(&srv_ctx, srv_pem, srv_key,
	    ca_pem), 0);
	assert_int_equal(tls_ctx_new_client(&cli_ctx, ca_pem, cli_pem,
	    cli_key), 0);
	assert_int_equal(tls_ctx_new_client(&anon_ctx, ca_pem, NULL, NULL),
	    0);
	assert_int_equal(tls_ctx_new_client(&other_ctx, other_ca_pem, NULL,
	    NULL), 0);
	assert_int_equal(listener_start(&loop, srv_ctx, "127.0.0.1", 0,
	    on_accept, NULL, &lis), 0);
	port = listener_port(lis);
	assert_true(port > 0);
	assert_int_equal(listener_start(&loop, NULL, "127.0.0.1", 0,
	    on_accept, NULL, &plain_lis), 0);
	plain_port = listener_port(plain_lis);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	listener_stop(lis);
	listener_stop(plain_lis);
	uv_close((uv_handle_t *)&later_timer, NULL);
	run_for(200);
	tls_ctx_free(srv_ctx);
	tls_ctx_free(cli_ctx);
	tls_ctx_free(anon_ctx);
	tls_ctx_free(other_ctx);
	assert_int_equal(uv_loop_close(&loop), 0);
	remove_pki();
	return 0;
}

/* ---- tests: TLS and HTTP ------------------------------------------------ */

static void
test_http_keepalive(void **state)
{
	static const char two[] =
	    "GET /hello?a=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
	    "POST /hello HTTP/1.1\r\nHost: localhost\r\n"
	    "Content-Length: 5\r\n\r\nhello";
	static const char third[] =
	    "GET /nope HTTP/1.1\r\nHost: localhost\r\n"
	    "Connection: close\r\n\r\n";
	struct raw r;
	uint64_t dl;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	assert_int_equal(raw_dial(&r, cli_ctx, "localhost", NULL), 0);
	/* Written before the handshake ends: queued, sent after it. */
	assert_int_equal(conn_write(r.c, two, sizeof(two) - 1), 0);
	assert_true(run_until(&r.opened, SAFETY_MS));
	dl = deadline_in(SAFETY_MS);
	while (r.nresp < 2 && !r.closed && step(dl))
		raw_parse(&r);
	assert_int_equal(r.nresp, 2);
	assert_false(r.closed);
	assert_int_equal(r.status[0], 200);
	assert_int_equal(r.status[1], 200);
	assert_int_equal(r.body[0].len, strlen("hello GET q=a=1 n=0"));
	assert_memory_equal(r.body[0].data, "hello GET q=a=1 n=0",
	    r.body[0].len);
	assert_memory_equal(r.body[1].data, "hello POST q= n=5",
	    r.body[1].len);
	assert_int_equal(srv.nreq, 2);
	/* mTLS: the server saw the client certificate's CN. */
	assert_true(srv.cn_set);
	assert_string_equal(srv.cn, CLIENT_CN);
	/* The client verified the server too. */
	assert_string_equal(conn_peer_cn(r.c), "localhost");

	assert_int_equal(conn_write(r.c, third, sizeof(third) - 1), 0);
	assert_true(run_until(&r.closed, SAFETY_MS));
	raw_parse(&r);
	assert_int_equal(r.nresp, 3);
	assert_int_equal(r.status[2], 404);
	assert_int_equal(r.err, 0);
	raw_free(&r);
}

static void
test_http_no_client_cert(void **state)
{
	static const char req[] =
	    "GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n";
	struct raw r;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	/* By IP literal: the certificate's IP SAN is checked. */
	assert_int_equal(raw_dial(&r, anon_ctx, "127.0.0.1", NULL), 0);
	assert_int_equal(conn_write(r.c, req, sizeof(req) - 1), 0);
	/* HTTP/1.0 without keep-alive: the server closes after answering. */
	assert_true(run_until(&r.closed, SAFETY_MS));
	assert_true(r.opened);
	raw_parse(&r);
	assert_int_equal(r.nresp, 1);
	assert_int_equal(r.status[0], 200);
	assert_int_equal(srv.nreq, 1);
	assert_false(srv.cn_set);
	raw_free(&r);
}

static void
test_http_body_too_big(void **state)
{
	char req[256];
	struct raw r;
	int n;

	(void)state;
	n = snprintf(req, sizeof(req), "POST /hello HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: %zu\r\n\r\n", HTTP_MAX_BODY + 1);
	assert_int_equal(raw_dial(&r, cli_ctx, "localhost", NULL), 0);
	assert_int_equal(conn_write(r.c, req, (size_t)n), 0);
	assert_true(run_until(&r.closed, SAFETY_MS));
	raw_parse(&r);
	assert_int_equal(r.nresp, 1);
	assert_int_equal(r.status[0], 413);
	raw_free(&r);
}

static void
test_http_malformed(void **state)
{
	static const char req[] = "GET / HTTP/1.1\r\nNo colon here\r\n\r\n";
	struct raw r;

	(void)state;
	assert_int_equal(raw_dial(&r, cli_ctx, "localhost", NULL), 0);
	assert_int_equal(conn_write(r.c, req, sizeof(req) - 1), 0);
	assert_true(run_until(&r.closed, SAFETY_MS));
	raw_parse(&r);
	assert_int_equal(r.nresp, 1);
	assert_int_equal(r.status[0], 400);
	raw_free(&r);
}

static void
test_http_header_too_big(void **state)
{
	struct raw r;
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(buf_append_str(&b, "GET /hello HTTP/1.1\r\n"), 0);
	while (b.len < HTTP_MAX_HEADER_BYTES + 100)
		assert_int_equal(buf_append_str(&b,
		    "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"),
		    0);
	assert_int_equal(buf_append_str(&b, "\r\n"), 0);
	assert_int_equal(raw_dial(&r, cli_ctx, "localhost", NULL), 0);
	assert_int_equal(conn_write(r.c, b.data, b.len), 0);
	assert_true(run_until(&r.closed, SAFETY_MS));
	raw_parse(&r);
	assert_int_equal(r.nresp, 1);
	assert_int_equal(r.status[0], 431);
	buf_free(&b);
	raw_free(&r);
}

static void
test_http_async_pipelined(void **state)
{
	static const char two[] =
	    "GET /later HTTP/1.1\r\nHost: localhost\r\n\r\n"
	    "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
	struct raw r;
	uint64_t dl;

	(void)state;
	assert_int_equal(raw_dial(&r, cli_ctx, "localhost", NULL), 0);
	assert_int_equal(conn_write(r.c, two, sizeof(two) - 1), 0);
	dl = deadline_in(SAFETY_MS);
	while (r.nresp < 2 && !r.closed && step(dl))
		raw_parse(&r);
	assert_int_equal(r.nresp, 2);
	/* In order, although the first was answered later. */
	assert_int_equal(r.body[0].len, 5);
	assert_memory_equal(r.body[0].data, "later", 5);
	assert_memory_equal(r.body[1].data, "hello GET", 9);
	conn_close(r.c);
	assert_true(run_until(&r.closed, SAFETY_MS));
	raw_free(&r);
}

static void
test_http_big_then_close(void **state)
{
	static const char req[] = "GET /big HTTP/1.1\r\nHost: localhost\r\n"
	    "Connection: close\r\n\r\n";
	struct raw r;
	size_t i;

	(void)state;
	assert_int_equal(raw_dial(&r, cli_ctx, "localhost", NULL), 0);
	r.body[0].max = BIG_BODY;
	assert_int_equal(conn_write(r.c, req, sizeof(req) - 1), 0);
	/* Everything queued is flushed before the server closes. */
	assert_true(run_until(&r.closed, SAFETY_MS));
	raw_parse(&r);
	assert_int_equal(r.nresp, 1);
	assert_int_equal(r.body[0].len, BIG_BODY);
	for (i = 0; i < BIG_BODY; i += 4099)
		assert_int_equal(r.body[0].data[i], (uint8_t)(i % 251));
	assert_int_equal(r.err, 0);
	raw_free(&r);
}

/* Write p in pieces of step bytes, one loop turn apart, so the server
 * sees the input split at many offsets. */
static void
raw_trickle(struct raw *r, const void *p, size_t n, size_t step)
{
	const uint8_t *b = p;
	size_t off, k;

	for (off = 0; off < n; off += step) {
		k = n - off < step ? n - off : step;
		assert_int_equal(conn_write(r->c, b + off, k), 0);
		uv_run(&loop, UV_RUN_NOWAIT);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
}

static void
test_http_trickled(void **state)
{
	static const char two[] =
	    "POST /hello?t=1 HTTP/1.1\r\nHost: localhost\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n"
	    "0\r\n\r\nGET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
	struct raw r;
	uint64_t dl;

	(void)state;
	assert_int_equal(raw_dial(&r, cli_ctx, "localhost", NULL), 0);
	assert_true(run_until(&r.opened, SAFETY_MS));
	raw_trickle(&r, two, sizeof(two) - 1, 1);
	dl = deadline_in(SAFETY_MS);
	while (r.nresp < 2 && !r.closed && step(dl))
		raw_parse(&r);
	assert_int_equal(r.nresp, 2);
	assert_memory_equal(r.body[0].data, "hello POST q=t=1 n=5",
	    r.body[0].len);
	assert_memory_equal(r.body[1].data, "hello GET q= n=0",
	    r.body[1].len);
	conn_close(r.c);
	assert_true(run_until(&r.closed, SAFETY_MS));
	raw_free(&r);
}

static void
test_tls_wrong_ca(void **state)
{
	struct raw r;

	(void)state;
	assert_int_equal(raw_dial(&r, other_ctx, "localhost", NULL), 0);
	assert_true(run_until(&r.closed, SAFETY_MS));
	assert_false(r.opened);
	assert_true(r.err < 0);
	raw_free(&r);
}

static void
test_tls_wrong_name(void **state)
{
	struct raw r;

	(void)state;
	assert_int_equal(raw_dial(&r, anon_ctx, "127.0.0.1",
	    "wrong.example"), 0);
	assert_true(run_until(&r.closed, SAFETY_MS));
	assert_false(r.opened);
	assert_true(r.err < 0);
	raw_free(&r);
}

static void
test_dial_refused(void **state)
{
	struct conn *c;
	struct raw r;

	(void)state;
	raw_init(&r);
	/* The plain listener's port, stopped below, refuses. */
	assert_int_equal(conn_dial(&loop, NULL, "127.0.0.1", 1, NULL,
	    &raw_cbs, &r, &c), 0);
	assert_true(run_until(&r.closed, SAFETY_MS));
	assert_false(r.opened);
	assert_true(r.err < 0);
	raw_free(&r);
	raw_init(&r);
	assert_int_equal(conn_dial(&loop, NULL, "no-such-host.invalid", 80,
	    NULL, &raw_cbs, &r, &c), 0);
	assert_true(run_until(&r.closed, SAFETY_MS));
	assert_true(r.err < 0);
	raw_free(&r);
}

/* ---- tests: WebSocket --------------------------------------------------- */

struct wcli {
	struct ws *w;
	int opened;
	int closed;
	int code;
	size_t nmsg;
	size_t nbytes;
	int ops[16];
	struct buf msgs[16];
	/* throughput */
	uint64_t next_seq;
	uint64_t sent_seq;
	uint64_t total;
	int bad;
	int tp_done;
};

static void
wcli_open(struct ws *w)
{
	struct wcli *k = ws_userdata(w);

	k->opened = 1;
}

static void
wcli_msg(struct ws *w, int op, const uint8_t *p, size_t n)
{
	struct wcli *k = ws_userdata(w);

	if (k->nmsg < 16) {
		k->ops[k->nmsg] = op;
		buf_init(&k->msgs[k->nmsg], (size_t)4 << 20);
		assert_int_equal(buf_append(&k->msgs[k->nmsg], p, n), 0);
	}
	k->nmsg++;
	k->nbytes += n;
}

static void
wcli_close(struct ws *w, int code)
{
	struct wcli *k = ws_userdata(w);

	k->closed = 1;
	k->code = code;
	k->w = NULL;
}

static const struct ws_cbs wcli_cbs = {
	.on_open = wcli_open,
	.on_message = wcli_msg,
	.on_close = wcli_close,
};

static void
wcli_free(struct wcli *k)
{
	size_t i;

	for (i = 0; i < 16 && i < k->nmsg; i++)
		buf_free(&k->msgs[i]);
}

static void
ws_echo_run(struct tls_ctx *ctx, const char *url)
{
	static const size_t sizes[] = { 1, 125, 126, 65535, 65536,
	    900 << 10 };
	const size_t nsizes = sizeof(sizes) / sizeof(sizes[0]);
	struct wcli k;
	uint8_t *p;
	size_t i, j;
	uint64_t dl;

	memset(&k, 0, sizeof(k));
	memset(&srv, 0, sizeof(srv));
	assert_int_equal(ws_dial(&loop, ctx, url, "X-Extra: yes\r\n",
	    &wcli_cbs, &k, &k.w), 0);
	assert_true(run_until(&k.opened, SAFETY_MS));
	p = malloc(900 << 10);
	assert_non_null(p);
	for (i = 0; i < nsizes; i++) {
		for (j = 0; j < sizes[i]; j++)
			p[j] = (uint8_t)('a' + (i + j) % 26);
		assert_int_equal(ws_send(k.w, WS_TEXT, p, sizes[i]), 0);
		p[0] = (uint8_t)i;   /* binary: not UTF-8 on purpose */
		p[sizes[i] - 1] = 0xff;
		assert_int_equal(ws_send(k.w, WS_BINARY, p, sizes[i]), 0);
	}
	dl = deadline_in(SAFETY_MS);
	while (k.nmsg < 2 * nsizes && !k.closed && step(dl))
		;
	assert_int_equal(k.nmsg, 2 * nsizes);
	for (i = 0; i < nsizes; i++) {
		for (j = 0; j < sizes[i]; j++)
			p[j] = (uint8_t)('a' + (i + j) % 26);
		assert_int_equal(k.ops[2 * i], WS_TEXT);
		assert_int_equal(k.msgs[2 * i].len, sizes[i]);
		assert_memory_equal(k.msgs[2 * i].data, p, sizes[i]);
		p[0] = (uint8_t)i;
		p[sizes[i] - 1] = 0xff;
		assert_int_equal(k.ops[2 * i + 1], WS_BINARY);
		assert_int_equal(k.msgs[2 * i + 1].len, sizes[i]);
		assert_memory_equal(k.msgs[2 * i + 1].data, p, sizes[i]);
	}
	free(p);
	ws_close(k.w, 1000, "bye");
	ws_close(k.w, 1000, "again");   /* idempotent */
	assert_true(run_until(&k.closed, SAFETY_MS));
	assert_int_equal(k.code, 1000);
	assert_true(run_until(&srv.ws_closed, SAFETY_MS));
	assert_int_equal(srv.ws_code, 1000);
	wcli_free(&k);
}

static void
test_ws_echo(void **state)
{
	char url[128];

	(void)state;
	snprintf(url, sizeof(url), "wss://localhost:%d/echo?x=1", port);
	ws_echo_run(cli_ctx, url);
	assert_string_equal(srv.cn, CLIENT_CN);
}

static void
test_ws_echo_plain(void **state)
{
	char url[128];

	(void)state;
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/echo", plain_port);
	ws_echo_run(NULL, url);
	assert_false(srv.cn_set);
}

/* A raw WebSocket client: upgrade by hand, frames by hand. */
static void
raw_upgrade(struct raw *r, const char *path, const void *after,
    size_t after_len)
{
	char req[512];
	int n;

	assert_int_equal(raw_dial(r, cli_ctx, "localhost", NULL), 0);
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n"
	    "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n", path);
	assert_int_equal(conn_write(r->c, req, (size_t)n), 0);
	if (after_len > 0)
		assert_int_equal(conn_write(r->c, after, after_len), 0);
}

/* One client frame, masked with an all-zero key (payload unchanged). */
static void
raw_frame(struct buf *b, int fin, int op, const uint8_t *p, size_t n)
{
	assert_int_equal(buf_append_u8(b, (uint8_t)((fin ? 0x80 : 0) | op)),
	    0);
	if (n < 126) {
		assert_int_equal(buf_append_u8(b, (uint8_t)(0x80 | n)), 0);
	} else if (n < 65536) {
		assert_int_equal(buf_append_u8(b, 0x80 | 126), 0);
		assert_int_equal(buf_append_u8(b, (uint8_t)(n >> 8)), 0);
		assert_int_equal(buf_append_u8(b, (uint8_t)n), 0);
	} else {
		assert_int_equal(buf_append_u8(b, 0x80 | 127), 0);
		assert_int_equal(buf_append_be64(b, n), 0);
	}
	assert_int_equal(buf_append_be32(b, 0), 0);
	assert_int_equal(buf_append(b, p, n), 0);
}

static void
test_ws_fragmented(void **state)
{
	const size_t total = 900 << 10, frag = 150 << 10;
	static const char accept_hdr[] =
	    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
	struct bufr rd;
	struct raw r;
	struct buf out;
	uint8_t *p, b0, b1;
	uint64_t len = 0;
	const uint8_t *payload;
	const uint8_t *head_end;
	size_t off, n;
	uint64_t dl;
	int got = 0;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	p = malloc(total);
	assert_non_null(p);
	for (off = 0; off < total; off++)
		p[off] = (uint8_t)(off * 7);
	buf_init(&out, 0);
	/* Six frames: binary (no FIN), continuations, the last with FIN,
	 * and a ping between two fragments (allowed, RFC 6455 5.4). */
	for (off = 0; off < total; off += frag) {
		n = total - off < frag ? total - off : frag;
		raw_frame(&out, off + n == total, off == 0 ? 2 : 0, p + off,
		    n);
		if (off == frag)
			raw_frame(&out, 1, 9, (const uint8_t *)"hi", 2);
	}
	/* Sent in the same write as the upgrade request: the bytes behind
	 * the request head must reach the WebSocket. */
	raw_upgrade(&r, "/echo", out.data, out.len);
	buf_free(&out);
	dl = deadline_in(SAFETY_MS);
	while (!r.closed && !got && step(dl)) {
		head_end = r.in.len ? memmem(r.in.data, r.in.len,
		    "\r\n\r\n", 4) : NULL;
		if (head_end == NULL)
			continue;
		assert_true(raw_has(&r, "HTTP/1.1 101"));
		assert_true(raw_has(&r, accept_hdr));
		/* Frames after the head: a pong, then the echo. */
		bufr_init(&rd, head_end + 4, r.in.len - (size_t)(head_end + 4 -
		    r.in.data));
		while (bufr_left(&rd) >= 2) {
			size_t start = rd.off;

			assert_int_equal(bufr_get_u8(&rd, &b0), 0);
			assert_int_equal(bufr_get_u8(&rd, &b1), 0);
			assert_int_equal(b1 & 0x80, 0);   /* server: unmasked */
			len = b1 & 0x7f;
			if (len == 126) {
				uint8_t x[2];

				if (bufr_get_bytes(&rd, x, 2) != 0)
					break;
				len = ((uint64_t)x[0] << 8) | x[1];
			} else if (len == 127) {
				if (bufr_get_be64(&rd, &len) != 0)
					break;
			}
			if (bufr_get_ref(&rd, &payload, len) != 0) {
				rd.off = start;
				break;
			}
			if ((b0 & 0x0f) == 0xa) {
				assert_int_equal(len, 2);
				continue;
			}
			assert_int_equal(b0, 0x82);
			assert_int_equal(len, total);
			assert_memory_equal(payload, p, total);
			got = 1;
		}
	}
	assert_true(got);
	conn_close(r.c);
	assert_true(run_until(&r.closed, SAFETY_MS));
	assert_true(run_until(&srv.ws_closed, SAFETY_MS));
	assert_int_equal(srv.ws_code, 1006);
	free(p);
	raw_free(&r);
}

static void
test_ws_trickled(void **state)
{
	static const char head[] = "GET /echo HTTP/1.1\r\nHost: localhost\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n";
	uint8_t payload[300];
	struct buf out;
	struct raw r;
	uint64_t dl;
	size_t i;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	buf_init(&out, 0);
	assert_int_equal(buf_append(&out, head, sizeof(head) - 1), 0);
	raw_frame(&out, 0, 2, payload, 100);
	raw_frame(&out, 1, 9, (const uint8_t *)"p", 1);
	raw_frame(&out, 1, 0, payload + 100, 200);
	assert_int_equal(raw_dial(&r, cli_ctx, "localhost", NULL), 0);
	assert_true(run_until(&r.opened, SAFETY_MS));
	raw_trickle(&r, out.data, out.len, 7);
	buf_free(&out);
	/* 101 head, then a pong (2+1 bytes), then the echo (4+300). */
	dl = deadline_in(SAFETY_MS);
	while (!r.closed && !raw_has(&r, "\x82\x7e\x01\x2c") && step(dl))
		;
	assert_true(raw_has(&r, "HTTP/1.1 101"));
	assert_true(raw_has(&r, "\x8a\x01p"));
	assert_true(raw_has(&r, "\x82\x7e\x01\x2c"));
	dl = deadline_in(SAFETY_MS);
	while (!r.closed && memmem(r.in.data, r.in.len, payload,
	    sizeof(payload)) == NULL && step(dl))
		;
	assert_non_null(memmem(r.in.data, r.in.len, payload,
	    sizeof(payload)));
	conn_close(r.c);
	assert_true(run_until(&r.closed, SAFETY_MS));
	assert_true(run_until(&srv.ws_closed, SAFETY_MS));
	raw_free(&r);
}

static void
test_ws_garbage(void **state)
{
	static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x13, 0x37,
	    0x00, 0x42 };
	struct raw r;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	raw_upgrade(&r, "/echo", junk, sizeof(junk));
	assert_true(run_until(&r.closed, SAFETY_MS));
	assert_true(raw_has(&r, "HTTP/1.1 101"));
	/* The close frame with 1002 (0x03ea). */
	assert_true(raw_has(&r, "\x88\x02\x03\xea"));
	assert_true(run_until(&srv.ws_closed, SAFETY_MS));
	assert_int_equal(srv.ws_code, 1002);
	raw_free(&r);

	/* A bad frame-length encoding (126 with a value < 126). */
	memset(&srv, 0, sizeof(srv));
	{
		static const uint8_t bad[] = { 0x82, 0x80 | 126, 0x00, 0x05,
		    0, 0, 0, 0, 1, 2, 3, 4, 5 };

		raw_upgrade(&r, "/echo", bad, sizeof(bad));
	}
	assert_true(run_until(&r.closed, SAFETY_MS));
	assert_true(raw_has(&r, "\x88\x02\x03\xea"));
	assert_true(run_until(&srv.ws_closed, SAFETY_MS));
	assert_int_equal(srv.ws_code, 1002);
	raw_free(&r);

	/* A message cut into thousands of one-byte fragments: 1009. */
	memset(&srv, 0, sizeof(srv));
	{
		struct buf b;
		int i;

		buf_init(&b, 0);
		for (i = 0; i < 5000; i++)
			raw_frame(&b, 0, i == 0 ? 2 : 0,
			    (const uint8_t *)"x", 1);
		raw_upgrade(&r, "/echo", b.data, b.len);
		buf_free(&b);
	}
	assert_true(run_until(&r.closed, SAFETY_MS));
	assert_true(raw_has(&r, "\x88\x02\x03\xf1"));
	assert_true(run_until(&srv.ws_closed, SAFETY_MS));
	assert_int_equal(srv.ws_code, 1009);
	raw_free(&r);
}

static void
test_ws_bad_upgrade(void **state)
{
	static const char req[] = "GET /echo HTTP/1.1\r\nHost: localhost\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n";
	struct raw r;

	(void)state;
	assert_int_equal(raw_dial(&r, cli_ctx, "localhost", NULL), 0);
	assert_int_equal(conn_write(r.c, req, sizeof(req) - 1), 0);
	assert_true(run_until(&r.closed, SAFETY_MS));
	raw_parse(&r);
	assert_int_equal(r.nresp, 1);
	assert_int_equal(r.status[0], 400);
	raw_free(&r);
}

static void
test_ws_too_big(void **state)
{
	struct wcli k, k2;
	uint8_t p[2048];
	char url[128];
	uint64_t dl;

	(void)state;
	memset(&k, 0, sizeof(k));
	memset(&srv, 0, sizeof(srv));
	memset(p, 'x', sizeof(p));
	snprintf(url, sizeof(url), "wss://localhost:%d/small", port);
	assert_int_equal(ws_dial(&loop, cli_ctx, url, NULL, &wcli_cbs, &k,
	    &k.w), 0);
	/* Queued before the 101: sent once the upgrade completes. */
	assert_int_equal(ws_send(k.w, WS_BINARY, p, 1000), 0);
	assert_int_equal(ws_send(k.w, WS_BINARY, p, sizeof(p)), 0);
	assert_true(run_until(&k.closed, SAFETY_MS));
	assert_int_equal(k.nmsg, 1);
	assert_int_equal(k.code, 1009);
	assert_true(run_until(&srv.ws_closed, SAFETY_MS));
	assert_int_equal(srv.ws_code, 1009);
	wcli_free(&k);

	/* The server still serves the next client. */
	memset(&k2, 0, sizeof(k2));
	snprintf(url, sizeof(url), "wss://localhost:%d/echo", port);
	assert_int_equal(ws_dial(&loop, cli_ctx, url, NULL, &wcli_cbs, &k2,
	    &k2.w), 0);
	assert_true(run_until(&k2.opened, SAFETY_MS));
	assert_int_equal(ws_send(k2.w, WS_TEXT, "ok", 2), 0);
	dl = deadline_in(SAFETY_MS);
	while (k2.nmsg < 1 && step(dl))
		;
	assert_int_equal(k2.nmsg, 1);
	ws_close(k2.w, 1001, NULL);
	assert_true(run_until(&k2.closed, SAFETY_MS));
	wcli_free(&k2);
}

static void
test_ws_dial_refused(void **state)
{
	struct wcli k;
	char url[128];

	(void)state;
	/* Not a WebSocket endpoint: 404 instead of 101. */
	memset(&k, 0, sizeof(k));
	snprintf(url, sizeof(url), "wss://127.0.0.1:%d/nothing", port);
	assert_int_equal(ws_dial(&loop, cli_ctx, url, NULL, &wcli_cbs, &k,
	    &k.w), 0);
	assert_true(run_until(&k.closed, SAFETY_MS));
	assert_false(k.opened);
	assert_int_equal(k.code, 1006);
	/* Bad URLs are refused at once. */
	assert_int_not_equal(ws_dial(&loop, cli_ctx, "http://x/", NULL,
	    &wcli_cbs, &k, &k.w), 0);
	assert_int_not_equal(ws_dial(&loop, cli_ctx, "wss://[::1/", NULL,
	    &wcli_cbs, &k, &k.w), 0);
	assert_int_not_equal(ws_dial(&loop, cli_ctx, "wss://h:99999/", NULL,
	    &wcli_cbs, &k, &k.w), 0);
	assert_int_not_equal(ws_dial(&loop, NULL, "wss://h/", NULL,
	    &wcli_cbs, &k, &k.w), 0);
}

static void
pz_msg(struct ws *w, int op, const uint8_t *p, size_t n)
{
	struct wcli *k = ws_userdata(w);

	wcli_msg(w, op, p, n);
	if (k->nmsg == 1)
		ws_pause_read(w, 1);
}

static const struct ws_cbs pz_cbs = {
	.on_open = wcli_open,
	.on_message = pz_msg,
	.on_close = wcli_close,
};

static void
test_ws_pause(void **state)
{
	struct wcli k;
	char url[128], m[100];
	uint64_t dl;
	size_t i;

	(void)state;
	memset(&k, 0, sizeof(k));
	snprintf(url, sizeof(url), "wss://localhost:%d/echo", port);
	assert_int_equal(ws_dial(&loop, cli_ctx, url, NULL, &pz_cbs, &k,
	    &k.w), 0);
	assert_true(run_until(&k.opened, SAFETY_MS));
	for (i = 0; i < 8; i++) {
		memset(m, (int)('A' + i), sizeof(m));
		assert_int_equal(ws_send(k.w, WS_BINARY, m, sizeof(m)), 0);
	}
	dl = deadline_in(SAFETY_MS);
	while (k.nmsg < 1 && step(dl))
		;
	/* Paused inside the first message: nothing more arrives. */
	run_for(300);
	assert_int_equal(k.nmsg, 1);
	ws_pause_read(k.w, 0);
	dl = deadline_in(SAFETY_MS);
	while (k.nmsg < 8 && step(dl))
		;
	assert_int_equal(k.nmsg, 8);
	for (i = 0; i < 8; i++) {
		assert_int_equal(k.msgs[i].len, 100);
		assert_int_equal(k.msgs[i].data[0], 'A' + i);
	}
	ws_close(k.w, 1000, NULL);
	assert_true(run_until(&k.closed, SAFETY_MS));
	wcli_free(&k);
}

/* The peer sends messages and closes while we are paused after the
 * first: every message still arrives, before on_close. */
static void
test_ws_pause_then_peer_close(void **state)
{
	struct wcli k;
	char url[128];
	size_t i;

	(void)state;
	memset(&k, 0, sizeof(k));
	snprintf(url, sizeof(url), "wss://localhost:%d/burst", port);
	assert_int_equal(ws_dial(&loop, cli_ctx, url, NULL, &pz_cbs, &k,
	    &k.w), 0);
	assert_true(run_until(&k.closed, SAFETY_MS));
	assert_int_equal(k.code, 1000);
	assert_int_equal(k.nmsg, 8);
	for (i = 0; i < 8; i++) {
		assert_int_equal(k.msgs[i].len, 100);
		assert_int_equal(k.msgs[i].data[0], 'A' + i);
	}
	wcli_free(&k);
}

static void
test_ws_keepalive(void **state)
{
	struct wcli k;
	char url[128];
	uint64_t t0;

	(void)state;
	memset(&k, 0, sizeof(k));
	memset(&srv, 0, sizeof(srv));
	snprintf(url, sizeof(url), "wss://localhost:%d/ka", port);
	assert_int_equal(ws_dial(&loop, cli_ctx, url, NULL, &wcli_cbs, &k,
	    &k.w), 0);
	assert_true(run_until(&k.opened, SAFETY_MS));
	/* While the client answers, pings keep the connection up. */
	run_for(800);
	assert_false(srv.ka_closed);
	/* A peer that stops reading stops answering pings. */
	ws_pause_read(k.w, 1);
	t0 = uv_now(&loop);
	assert_true(run_until(&srv.ka_closed, SAFETY_MS));
	assert_int_equal(srv.ka_code, 1006);
	assert_true(srv.ka_closed_at - t0 < 2000);
	ws_close(k.w, 1000, NULL);
	assert_true(run_until(&k.closed, SAFETY_MS));
}

/* ---- throughput smoke check --------------------------------------------- */

#define TP_TOTAL ((uint64_t)64 << 20)
#define TP_MSG 1024

static void
tp_fill(struct wcli *k)
{
	uint8_t m[TP_MSG];

	while (k->sent_seq * TP_MSG < TP_TOTAL &&
	    ws_write_pending(k->w) < CONN_HIGH_WATER) {
		memset(m, (int)(k->sent_seq & 0xff), sizeof(m));
		memcpy(m, &k->sent_seq, sizeof(k->sent_seq));
		if (ws_send(k->w, WS_BINARY, m, sizeof(m)) != 0) {
			k->bad = 1;
			return;
		}
		k->sent_seq++;
	}
}

static void
tp_msg(struct ws *w, int op, const uint8_t *p, size_t n)
{
	struct wcli *k = ws_userdata(w);
	uint64_t seq;

	if (op != WS_BINARY || n != TP_MSG) {
		k->bad = 1;
		return;
	}
	memcpy(&seq, p, sizeof(seq));
	if (seq != k->next_seq || p[n - 1] != (uint8_t)(seq & 0xff))
		k->bad = 1;
	k->next_seq++;
	k->total += n;
	if (k->total == TP_TOTAL)
		k->tp_done = 1;
}

static void
tp_drain(struct ws *w)
{
	tp_fill(ws_userdata(w));
}

static void
tp_open(struct ws *w)
{
	struct wcli *k = ws_userdata(w);

	k->opened = 1;
	tp_fill(k);
}

static const struct ws_cbs tp_cbs = {
	.on_open = tp_open,
	.on_message = tp_msg,
	.on_drain = tp_drain,
	.on_close = wcli_close,
};

static void
test_ws_throughput(void **state)
{
	struct wcli k;
	char url[128];
	uint64_t t0, ms;

	(void)state;
	memset(&k, 0, sizeof(k));
	snprintf(url, sizeof(url), "wss://localhost:%d/echo", port);
	assert_int_equal(ws_dial(&loop, cli_ctx, url, NULL, &tp_cbs, &k,
	    &k.w), 0);
	uv_update_time(&loop);
	t0 = uv_now(&loop);
	/* Bounded: 60 s even on a slow sanitizer build. */
	(void)run_until(&k.tp_done, 60000);
	ms = uv_now(&loop) - t0;
	assert_false(k.bad);
	assert_int_equal(k.total, TP_TOTAL);
	assert_int_equal(k.next_seq, TP_TOTAL / TP_MSG);
	print_message("ws echo over TLS: %llu MiB each way in %llu ms "
	    "(%.1f MiB/s)\n", (unsigned long long)(TP_TOTAL >> 20),
	    (unsigned long long)ms, ms ? (double)(TP_TOTAL >> 20) * 1000.0 /
	    (double)ms : 0.0);
	ws_close(k.w, 1000, NULL);
	assert_true(run_until(&k.closed, SAFETY_MS));
}

/* conn_abort_all, for a program that stops: every connection of the
 * loop, the server's idle keep-alive side too, closes through its owner's
 * on_close and is freed. */
static void
test_abort_all(void **state)
{
	static const char req[] =
	    "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
	struct raw r;
	uint64_t dl;
	size_t n0;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	n0 = conn_count(&loop);
	assert_int_equal(raw_dial(&r, cli_ctx, "localhost", NULL), 0);
	assert_int_equal(conn_write(r.c, req, sizeof(req) - 1), 0);
	dl = deadline_in(SAFETY_MS);
	while (r.nresp < 1 && !r.closed && step(dl))
		raw_parse(&r);
	assert_int_equal(r.nresp, 1);
	assert_false(r.closed);
	assert_int_equal(conn_count(&loop), n0 + 2);
	conn_abort_all(&loop, PH_ERR_STATE);
	assert_true(run_until(&r.closed, SAFETY_MS));
	assert_int_equal(r.err, PH_ERR_STATE);
	dl = deadline_in(SAFETY_MS);
	while (conn_count(&loop) > 0 && step(dl))
		;
	assert_int_equal(conn_count(&loop), 0);
	raw_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_keepalive),
		cmocka_unit_test(test_http_no_client_cert),
		cmocka_unit_test(test_http_body_too_big),
		cmocka_unit_test(test_http_malformed),
		cmocka_unit_test(test_http_header_too_big),
		cmocka_unit_test(test_http_async_pipelined),
		cmocka_unit_test(test_http_big_then_close),
		cmocka_unit_test(test_http_trickled),
		cmocka_unit_test(test_tls_wrong_ca),
		cmocka_unit_test(test_tls_wrong_name),
		cmocka_unit_test(test_dial_refused),
		cmocka_unit_test(test_ws_echo),
		cmocka_unit_test(test_ws_echo_plain),
		cmocka_unit_test(test_ws_fragmented),
		cmocka_unit_test(test_ws_trickled),
		cmocka_unit_test(test_ws_garbage),
		cmocka_unit_test(test_ws_bad_upgrade),
		cmocka_unit_test(test_ws_too_big),
		cmocka_unit_test(test_ws_dial_refused),
		cmocka_unit_test(test_ws_pause),
		cmocka_unit_test(test_ws_pause_then_peer_close),
		cmocka_unit_test(test_ws_keepalive),
		cmocka_unit_test(test_ws_throughput),
		cmocka_unit_test(test_abort_all),
	};

	if (getenv("NET_TEST") != NULL)
		cmocka_set_test_filter(getenv("NET_TEST"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
