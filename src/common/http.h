/* http: HTTP/1.1 server side over a struct conn, parsed by http-parser.
 * Keep-alive; one request at a time per connection; bodies bounded. A
 * request's handler answers with http_respond or takes the connection over
 * as a WebSocket with http_upgrade_ws, either at once or later. */
#ifndef PORTHOLE_HTTP_H
#define PORTHOLE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/tls.h"

struct ws;
struct ws_cbs;

struct http_header {
	char *name;
	char *value;
};

struct http_request {
	const char *method;        /* "GET", "POST", ... */
	const char *target;        /* raw request target: path and query */
	const char *path;          /* raw path, before '?' (not decoded) */
	const char *query;         /* raw query after '?', "" if none */
	struct http_header *headers;
	size_t nheaders;
	const uint8_t *body;
	size_t body_len;
	int is_upgrade;            /* Upgrade: websocket requested */
	struct conn *conn;
};

typedef void (*http_handler_fn)(struct http_request *req, void *arg);

/* Maximum request body; larger requests get 413 and the connection closes. */
#define HTTP_MAX_BODY ((size_t)8 << 20)
#define HTTP_MAX_HEADER_BYTES ((size_t)64 << 10)

#define HTTP_REQUEST_TIMEOUT_MS_DEFAULT 30000

struct http_opts {
	/* From a request's first byte to its last; a body adds a second
	 * per 64 KiB. The connection is closed when it passes. 0: none. */
	unsigned request_timeout_ms;
	/* After an upgrade, a connection that is not authenticated yet
	 * must be within this (conn_set_auth_timeout). 0: none. */
	unsigned ws_auth_timeout_ms;
};

/* Serve HTTP on an accepted connection (replaces its callbacks), with
 * HTTP_REQUEST_TIMEOUT_MS_DEFAULT and no WebSocket deadline. */
int http_serve(struct conn *c, http_handler_fn handler, void *arg);
int http_serve_opts(struct conn *c, const struct http_opts *o,
    http_handler_fn handler, void *arg);
/* Case-insensitive header lookup; NULL if absent. */
const char *http_header(const struct http_request *req, const char *name);
/* Send a response; extra_headers is "Name: value\r\n..." or NULL (no
 * Content-Length there; a "Connection: close" line closes the connection
 * after the response). The request is finished after this call and must
 * not be used again.
 *
 * Every request handed to the handler must be finished exactly once, with
 * http_respond or http_upgrade_ws, at once or later from any callback. The
 * request and its strings stay valid until then, even if the connection
 * closes meanwhile: req->conn becomes NULL and finishing the request just
 * frees it (returning PH_ERR_STATE / NULL). Until the request is finished
 * the connection reads nothing more (pipelined requests wait). */
int http_respond(struct http_request *req, int status,
    const char *content_type, const char *extra_headers, const void *body,
    size_t body_len);
/* Accept a WebSocket upgrade (sends 101); the connection now belongs to the
 * returned ws. Answers 400 and returns NULL if the upgrade is invalid. */
struct ws *http_upgrade_ws(struct http_request *req, const struct ws_cbs *cbs,
    void *ud);

#endif
