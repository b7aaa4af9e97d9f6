/* http: the server side of HTTP/1.1 over a struct conn, parsed by
 * http-parser. One request at a time per connection: when a request is
 * complete the parser is paused, the bytes behind it are given back to the
 * conn (conn_unread) and reading stops until the handler has answered, so
 * pipelined requests wait their turn and the request stays valid for as
 * long as the handler needs it. */
#include "common/http.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/ws.h"

#include <http_parser.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_MAX_HEADERS 100
/* Close keep-alive connections that stay silent this long. */
#define HTTP_IDLE_MS 60000
/* A body buys its sender one more second per this many bytes beyond the
 * request deadline (a minimum rate), so large bodies on slow links still
 * arrive while a trickle does not hold a connection. */
#define HTTP_BODY_BYTES_PER_S ((size_t)64 << 10)

struct hconn {
	struct conn *c;
	http_parser parser;
	http_handler_fn handler;
	void *arg;
	struct http_opts opts;
	/* the request being read */
	int started;            /* bytes of it arrived: its deadline runs */
	uint64_t due;           /* that deadline, in loop time */
	size_t body_credit;     /* body bytes not yet turned into time */
	struct buf url;
	struct buf hname;
	struct buf hvalue;
	int in_value;           /* last header callback was a value */
	struct http_header *headers;
	size_t nheaders;
	struct buf body;
	size_t head_bytes;
	int err_status;         /* limit hit inside a parser callback */
	int ready;              /* a whole request is parsed */
	/* the request being answered */
	struct http_request req;
	char *target;
	char *path;
	char *query;
	int keep_alive;
	int is_head;
	int outstanding;        /* handed to the handler, not yet answered */
	int in_handler;
	int dead;               /* the conn is gone */
	int closing;            /* no more requests on this conn */
	int detached;           /* the conn now belongs to a ws */
};

static const struct conn_cbs http_conn_cbs;

/* ---- request state ------------------------------------------------------ */

static void
hconn_clear_request(struct hconn *h)
{
	size_t i;

	for (i = 0; i < h->nheaders; i++) {
		free(h->headers[i].name);
		free(h->headers[i].value);
	}
	free(h->headers);
	h->headers = NULL;
	h->nheaders = 0;
	buf_free(&h->url);
	buf_free(&h->hname);
	buf_free(&h->hvalue);
	buf_free(&h->body);
	h->in_value = 0;
	h->head_bytes = 0;
	h->err_status = 0;
	h->ready = 0;
	free(h->target);
	free(h->path);
	free(h->query);
	h->target = h->path = h->query = NULL;
	memset(&h->req, 0, sizeof(h->req));
}

static void
hconn_free(struct hconn *h)
{
	hconn_clear_request(h);
	free(h);
}

/* Free when nothing refers to h any more. */
static void
hconn_maybe_free(struct hconn *h)
{
	if (h->in_handler || h->outstanding)
		return;
	if (h->dead || h->detached)
		hconn_free(h);
}

static int
hconn_count(struct hconn *h, size_t n)
{
	if (n > HTTP_MAX_HEADER_BYTES - h->head_bytes) {
		h->err_status = 431;
		return -1;
	}
	h->head_bytes += n;
	return 0;
}

static int
hconn_commit_header(struct hconn *h)
{
	struct http_header *nh;
	char *name, *value;

	if (h->hname.len == 0)
		return 0;
	if (h->nheaders >= HTTP_MAX_HEADERS) {
		h->err_status = 431;
		return -1;
	}
	/* A NUL inside would silently truncate the C strings. */
	if (memchr(h->hname.data, '\0', h->hname.len) != NULL ||
	    (h->hvalue.len > 0 &&
	    memchr(h->hvalue.data, '\0', h->hvalue.len) != NULL)) {
		h->err_status = 400;
		return -1;
	}
	nh = realloc(h->headers, (h->nheaders + 1) * sizeof(*nh));
	if (nh == NULL)
		return -1;
	h->headers = nh;
	name = strdup(buf_cstr(&h->hname));
	value = strdup(buf_cstr(&h->hvalue));
	if (name == NULL || value == NULL) {
		free(name);
		free(value);
		return -1;
	}
	nh[h->nheaders].name = name;
	nh[h->nheaders].value = value;
	h->nheaders++;
	buf_reset(&h->hname);
	buf_reset(&h->hvalue);
	h->in_value = 0;
	return 0;
}

/* ---- deadlines ---------------------------------------------------------- */

/* The first byte of a request starts its deadline: every byte resets the
 * idle timer, so without it headers sent a byte at a time would hold the
 * connection for ever. */
static void
hconn_start_deadline(struct hconn *h)
{
	if (h->started || h->opts.request_timeout_ms == 0)
		return;
	h->started = 1;
	h->body_credit = 0;
	h->due = uv_now(conn_loop(h->c)) + h->opts.request_timeout_ms;
	conn_set_deadline(h->c, h->opts.request_timeout_ms, "request");
}

static void
hconn_body_time(struct hconn *h, size_t n)
{
	uint64_t now;

	if (!h->started)
		return;
	h->body_credit += n;
	if (h->body_credit < HTTP_BODY_BYTES_PER_S)
		return;
	h->due += 1000 * (h->body_credit / HTTP_BODY_BYTES_PER_S);
	h->body_credit %= HTTP_BODY_BYTES_PER_S;
	now = uv_now(conn_loop(h->c));
	if (h->due > now)
		conn_set_deadline(h->c, (unsigned)(h->due - now), "request");
}

static void
hconn_stop_deadline(struct hconn *h)
{
	if (!h->started)
		return;
	h->started = 0;
	if (h->c != NULL)
		conn_set_deadline(h->c, 0, NULL);
}

/* ---- parser callbacks --------------------------------------------------- */

static int
hp_on_message_begin(http_parser *p)
{
	struct hconn *h = p->data;

	hconn_clear_request(h);
	return 0;
}

static int
hp_on_url(http_parser *p, const char *at, size_t n)
{
	struct hconn *h = p->data;

	if (hconn_count(h, n) != 0 || buf_append(&h->url, at, n) != 0)
		return -1;
	return 0;
}

static int
hp_on_header_field(http_parser *p, const char *at, size_t n)
{
	struct hconn *h = p->data;

	if (h->in_value && hconn_commit_header(h) != 0)
		return -1;
	/* 4: ": " and CRLF, so many tiny headers still count. */
	if (hconn_count(h, n + (h->hname.len == 0 ? 4 : 0)) != 0 ||
	    buf_append(&h->hname, at, n) != 0)
		return -1;
	return 0;
}

static int
hp_on_header_value(http_parser *p, const char *at, size_t n)
{
	struct hconn *h = p->data;

	h->in_value = 1;
	if (hconn_count(h, n) != 0 || buf_append(&h->hvalue, at, n) != 0)
		return -1;
	return 0;
}

static int
hp_on_headers_complete(http_parser *p)
{
	struct hconn *h = p->data;
	const char *expect;

	if (hconn_commit_header(h) != 0)
		return -1;
	if (p->content_length != ULLONG_MAX &&
	    p->content_length > HTTP_MAX_BODY) {
		h->err_status = 413;
		return -1;
	}
	h->req.headers = h->headers;
	h->req.nheaders = h->nheaders;
	/* RFC 7231 5.1.1: a client waiting for 100 Continue would stall. */
	expect = http_header(&h->req, "Expect");
	if (expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
	    p->http_major == 1 && p->http_minor >= 1 &&
	    ((p->flags & F_CHUNKED) || (p->content_length > 0 &&
	    p->content_length != ULLONG_MAX)))
		(void)conn_write(h->c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return 0;
}

static int
hp_on_body(http_parser *p, const char *at, size_t n)
{
	struct hconn *h = p->data;

	if (n > HTTP_MAX_BODY - h->body.len) {
		h->err_status = 413;
		return -1;
	}
	if (buf_append(&h->body, at, n) != 0)
		return -1;
	hconn_body_time(h, n);
	return 0;
}

static int
hp_on_message_complete(http_parser *p)
{
	struct hconn *h = p->data;

	h->ready = 1;
	/* One request at a time: stop right behind this one. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings hp_settings = {
	.on_message_begin = hp_on_message_begin,
	.on_url = hp_on_url,
	.on_header_field = hp_on_header_field,
	.on_header_value = hp_on_header_value,
	.on_headers_complete = hp_on_headers_complete,
	.on_body = hp_on_body,
	.on_message_complete = hp_on_message_complete,
};

/* ---- helpers ------------------------------------------------------------ */

/* Does the comma-separated header value contain token (any case)? */
static int
http_has_token(const char *v, const char *token)
{
	size_t tl = strlen(token), n;
	const char *e;

	if (v == NULL)
		return 0;
	while (*v != '\0') {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		e = v;
		while (*e != '\0' && *e != ',')
			e++;
		n = (size_t)(e - v);
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n == tl && strncasecmp(v, token, tl) == 0)
			return 1;
		v = e;
	}
	return 0;
}

/* The value of a Connection line in "Name: value\r\n..." (malloc'd), or
 * NULL if there is none. */
static char *
http_extra_connection(const char *extra)
{
	const char *l = extra, *e, *v;

	while (l != NULL && *l != '\0') {
		e = strstr(l, "\r\n");
		if (e == NULL)
			e = l + strlen(l);
		if (strncasecmp(l, "Connection:", 11) == 0) {
			v = l + 11;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			return strndup(v, (size_t)(e - v));
		}
		l = *e != '\0' ? e + 2 : e;
	}
	return NULL;
}

static const char *
http_reason(int status)
{
	const char *r = http_status_str((enum http_status)status);

	return (r == NULL || r[0] == '<') ? "Status" : r;
}

/* Answer a request we could not parse, and close. */
static void
hconn_fail(struct hconn *h, int status)
{
	struct buf b;
	const char *msg = http_reason(status);

	h->closing = 1;
	buf_init(&b, 4096);
	if (buf_appendf(&b, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n", status,
	    msg, strlen(msg) + 1, msg) == 0)
		(void)conn_write(h->c, b.data, b.len);
	buf_free(&b);
	log_limited(LOG_INFO, "http_refused", "event=http_refused peer=%s "
	    "status=%d", conn_peer_addr(h->c), status);
	conn_close(h->c);
}

static void
hconn_dispatch(struct hconn *h)
{
	http_parser *p = &h->parser;
	const char *q;

	h->ready = 0;
	/* Whole: the handler's time is not the peer's. */
	hconn_stop_deadline(h);
	if (h->url.len == 0 || memchr(h->url.data, '\0', h->url.len) != NULL) {
		hconn_fail(h, 400);
		return;
	}
	h->target = strdup(buf_cstr(&h->url));
	if (h->target == NULL) {
		hconn_fail(h, 500);
		return;
	}
	q = strchr(h->target, '?');
	h->path = q ? strndup(h->target, (size_t)(q - h->target)) :
	    strdup(h->target);
	h->query = strdup(q ? q + 1 : "");
	if (h->path == NULL || h->query == NULL) {
		hconn_fail(h, 500);
		return;
	}
	h->req.method = http_method_str((enum http_method)p->method);
	h->req.target = h->target;
	h->req.path = h->path;
	h->req.query = h->query;
	h->req.headers = h->headers;
	h->req.nheaders = h->nheaders;
	h->req.body = h->body.data;
	h->req.body_len = h->body.len;
	h->req.is_upgrade = http_has_token(http_header(&h->req, "Upgrade"),
	    "websocket");
	h->req.conn = h->c;
	h->is_head = p->method == HTTP_HEAD;
	/* After an upgrade head the parser cannot go on with HTTP. */
	h->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	h->outstanding = 1;
	h->in_handler = 1;
	h->handler(&h->req, h->arg);
	h->in_handler = 0;
	hconn_maybe_free(h);
}

/* ---- connection callbacks ----------------------------------------------- */

static void
http_on_read(struct conn *c, const uint8_t *p, size_t n)
{
	struct hconn *h = conn_userdata(c);
	enum http_errno e;
	size_t used;

	if (h->closing || h->dead || h->detached)
		return;
	if (h->outstanding) {
		/* Only while a handler works: keep the bytes for later. */
		conn_pause_read(c, 1);
		(void)conn_unread(c, p, n);
		return;
	}
	hconn_start_deadline(h);
	used = http_parser_execute(&h->parser, &hp_settings,
	    (const char *)p, n);
	e = HTTP_PARSER_ERRNO(&h->parser);
	if (e == HPE_PAUSED && h->ready) {
		/* Read nothing more until this request is answered. */
		conn_pause_read(c, 1);
		if (used < n && conn_unread(c, p + used, n - used) != 0) {
			hconn_fail(h, 500);
			return;
		}
		hconn_dispatch(h);
		return;
	}
	if (e != HPE_OK) {
		if (h->err_status == 0)
			log_limited(LOG_INFO, "http_parse_error",
			    "event=http_parse_error peer=%s err=\"%s\"",
			    conn_peer_addr(c), http_errno_description(e));
		hconn_fail(h, h->err_status ? h->err_status :
		    e == HPE_HEADER_OVERFLOW ? 431 : 400);
	}
}

static void
http_on_close(struct conn *c, int err)
{
	struct hconn *h = conn_userdata(c);

	(void)err;
	h->dead = 1;
	h->c = NULL;
	h->req.conn = NULL;
	hconn_maybe_free(h);
}

static const struct conn_cbs http_conn_cbs = {
	.on_read = http_on_read,
	.on_close = http_on_close,
};

/* ---- public ------------------------------------------------------------- */

int
http_serve(struct conn *c, http_handler_fn handler, void *arg)
{
	struct http_opts o = {
		.request_timeout_ms = HTTP_REQUEST_TIMEOUT_MS_DEFAULT,
	};

	return http_serve_opts(c, &o, handler, arg);
}

int
http_serve_opts(struct conn *c, const struct http_opts *o,
    http_handler_fn handler, void *arg)
{
	struct hconn *h;

	if (c == NULL || o == NULL || handler == NULL)
		return PH_ERR_INVALID;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return PH_ERR_NOMEM;
	h->opts = *o;
	h->c = c;
	h->handler = handler;
	h->arg = arg;
	buf_init(&h->url, HTTP_MAX_HEADER_BYTES);
	buf_init(&h->hname, HTTP_MAX_HEADER_BYTES);
	buf_init(&h->hvalue, HTTP_MAX_HEADER_BYTES);
	buf_init(&h->body, HTTP_MAX_BODY);
	http_parser_init(&h->parser, HTTP_REQUEST);
	h->parser.data = h;
	conn_set_cbs(c, &http_conn_cbs, h);
	conn_set_idle_timeout(c, HTTP_IDLE_MS);
	return 0;
}

const char *
http_header(const struct http_request *req, const char *name)
{
	size_t i;

	if (req == NULL || name == NULL)
		return NULL;
	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

static struct hconn *
http_req_owner(struct http_request *req)
{
	return (struct hconn *)(void *)((char *)req -
	    offsetof(struct hconn, req));
}

/* The request is answered: release it, then read the next one. */
static void
hconn_finish(struct hconn *h)
{
	h->outstanding = 0;
	hconn_clear_request(h);
	if (h->dead || h->detached) {
		hconn_maybe_free(h);
		return;
	}
	if (!h->keep_alive) {
		h->closing = 1;
		conn_close(h->c);
		return;
	}
	http_parser_pause(&h->parser, 0);
	conn_pause_read(h->c, 0);
}

int
http_respond(struct http_request *req, int status, const char *content_type,
    const char *extra_headers, const void *body, size_t body_len)
{
	struct hconn *h;
	struct buf b;
	char *conn_line;
	size_t el;
	int rc = 0, nobody;

	if (req == NULL)
		return PH_ERR_INVALID;
	h = http_req_owner(req);
	if (!h->outstanding)
		return PH_ERR_STATE;
	if (h->dead) {
		hconn_finish(h);
		return PH_ERR_STATE;
	}
	if (status < 100 || status > 999)
		status = 500;
	nobody = h->is_head || status == 204 || status == 304 ||
	    status < 200;
	buf_init(&b, HTTP_MAX_HEADER_BYTES);
	rc = buf_appendf(&b, "HTTP/1.1 %d %s\r\n", status,
	    http_reason(status));
	if (rc == 0 && content_type != NULL)
		rc = buf_appendf(&b, "Content-Type: %s\r\n", content_type);
	if (rc == 0 && status >= 200 && status != 204)
		rc = buf_appendf(&b, "Content-Length: %zu\r\n", body_len);
	/* A handler may end the connection with its own Connection line. */
	conn_line = http_extra_connection(extra_headers);
	if (conn_line != NULL && http_has_token(conn_line, "close"))
		h->keep_alive = 0;
	if (rc == 0 && conn_line == NULL)
		rc = buf_append_str(&b, h->keep_alive ?
		    "Connection: keep-alive\r\n" : "Connection: close\r\n");
	if (rc == 0 && extra_headers != NULL && *extra_headers != '\0') {
		el = strlen(extra_headers);
		rc = buf_append(&b, extra_headers, el);
		if (rc == 0 && (el < 2 || extra_headers[el - 2] != '\r' ||
		    extra_headers[el - 1] != '\n'))
			rc = buf_append_str(&b, "\r\n");
	}
	if (rc == 0)
		rc = buf_append_str(&b, "\r\n");
	if (rc == 0)
		rc = conn_write(h->c, b.data, b.len);
	if (rc == 0 && !nobody && body_len > 0)
		rc = conn_write(h->c, body, body_len);
	buf_free(&b);
	free(conn_line);
	if (rc != 0) {
		log_limited(LOG_WARN, "http_respond_failed",
		    "event=http_respond_failed peer=%s err=\"%s\"",
		    conn_peer_addr(h->c), ph_strerror(rc));
		h->keep_alive = 0;
	}
	hconn_finish(h);
	return rc;
}

/* RFC 6455 4.1: the key is 16 random bytes, base64-encoded (24 chars). */
static int
ws_key_valid(const char *key)
{
	unsigned char raw[32];
	size_t n = strlen(key);

	if (n != 24 || key[22] != '=' || key[23] != '=')
		return 0;
	return EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}

struct ws *
http_upgrade_ws(struct http_request *req, const struct ws_cbs *cbs, void *ud)
{
	const char *key, *ver;
	struct hconn *h;
	struct conn *c;
	struct ws *w;
	struct buf b;
	char accept[32];
	unsigned auth_ms;

	if (req == NULL || cbs == NULL)
		return NULL;
	h = http_req_owner(req);
	if (!h->outstanding)
		return NULL;
	if (h->dead) {
		hconn_finish(h);
		return NULL;
	}
	key = http_header(req, "Sec-WebSocket-Key");
	ver = http_header(req, "Sec-WebSocket-Version");
	if (strcmp(req->method, "GET") != 0 || !req->is_upgrade ||
	    !h->parser.upgrade ||
	    !http_has_token(http_header(req, "Connection"), "upgrade") ||
	    key == NULL || !ws_key_valid(key)) {
		log_limited(LOG_INFO, "ws_upgrade_refused",
		    "event=ws_upgrade_refused peer=%s reason=\"bad "
		    "upgrade request\"", conn_peer_addr(h->c));
		h->keep_alive = 0;
		(void)http_respond(req, 400, "text/plain", NULL,
		    "bad websocket upgrade\n", 22);
		return NULL;
	}
	if (ver == NULL || strcmp(ver, "13") != 0) {
		/* RFC 6455 4.4: say which version we speak. */
		h->keep_alive = 0;
		(void)http_respond(req, 426, "text/plain",
		    "Sec-WebSocket-Version: 13\r\n",
		    "unsupported websocket version\n", 30);
		return NULL;
	}
	if (ws_accept_key(key, accept) != 0) {
		h->keep_alive = 0;
		(void)http_respond(req, 500, NULL, NULL, NULL, 0);
		return NULL;
	}
	c = h->c;
	buf_init(&b, 1024);
	if (buf_appendf(&b, "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n\r\n", accept) != 0 ||
	    conn_write(c, b.data, b.len) != 0) {
		buf_free(&b);
		h->keep_alive = 0;
		hconn_finish(h);
		conn_abort(c, PH_ERR_NOMEM);
		return NULL;
	}
	buf_free(&b);
	/* Bytes after the head were given back to c; the ws reads them
	 * first once it resumes the connection. */
	h->detached = 1;
	h->c = NULL;
	auth_ms = h->opts.ws_auth_timeout_ms;
	w = ws_accept(c, cbs, ud);
	hconn_finish(h);   /* may free h */
	if (w == NULL) {
		conn_abort(c, PH_ERR_NOMEM);
		return NULL;
	}
	/* A WebSocket answers pings and may sit silent by design, so no
	 * activity timer would ever end one that never authenticates. */
	conn_set_auth_timeout(c, auth_ms);
	return w;
}
