/* console: the web console's HTTP side (docs/console.md). portholed
 * serves the built page from a directory under /console/, and the
 * console API under /console/api/: sign-in with an IAM user's console
 * password (a cookie session in the store), the session, temporary
 * credentials of the signed-in user for the page's own SigV4 calls, and
 * sign-out. Every answer carries the page's security headers. */
#ifndef PORTHOLE_CONSOLE_H
#define PORTHOLE_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/http.h"
#include "server/server.h"

#define CONSOLE_SESSION_SECONDS_DEFAULT 3600
#define CONSOLE_SESSION_SECONDS_MIN 60
#define CONSOLE_SESSION_SECONDS_MAX (12 * 3600)
/* Temporary credentials last this long, never beyond the session. */
#define CONSOLE_CREDENTIALS_MS ((int64_t)15 * 60 * 1000)
#define CONSOLE_MAX_BODY 4096
#define CONSOLE_COOKIE "porthole_console"
#define CONSOLE_CSRF_HEADER "X-Porthole-Csrf"
/* Sign-in failures: this many within the window, per user name and per
 * client address, and further attempts get 429 until it ends. */
#define CONSOLE_RL_MAX_FAILURES 5
#define CONSOLE_RL_WINDOW_MS ((int64_t)5 * 60 * 1000)
#define CONSOLE_RL_SLOTS 4096
#define CONSOLE_RL_KEY_SIZE 160
/* Password checks (scrypt) running at once; more get 429 at once. */
#define CONSOLE_SIGNIN_INFLIGHT 2

struct console;

/* dir: the built console (console_dir may not exist: pages are 404,
 * the API still works). session_seconds: a console session's life. */
int console_new(struct console **out, const char *dir,
    unsigned session_seconds);
void console_free(struct console *c);

/* Is path the console's ("/console" or under "/console/")? */
int console_is_request(const char *path);
/* Answer a console request (srv->console set). */
void console_handle(struct server *srv, struct http_request *req);

/* Password guesses outside the console (IAM ChangePassword's old
 * password) count against the same per-user sign-in limit: seconds
 * until user may try again (0: now; srv->console NULL: always 0), and a
 * failure recorded. */
unsigned console_user_blocked(struct server *srv, const char *user,
    int64_t now_ms);
void console_user_failed(struct server *srv, const char *user,
    int64_t now_ms);

/* ---- pieces, exposed for the unit tests ------------------------------- */

/* The file a request path names: rel is the path after "/console/" ("":
 * index.html). Only [A-Za-z0-9._-] segments, none starting with '.', no
 * empty segment, no percent-encoding; the real path must stay under
 * root (itself a real path). out gets the real path. 0, PH_ERR_INVALID
 * (refused) or PH_ERR_NOTFOUND. */
int console_resolve(const char *root, const char *rel, char *out,
    size_t size);
/* Content-Type of a file name. */
const char *console_content_type(const char *name);

/* Sign-in rate limiting in a fixed-size table: memory is bounded
 * whatever the callers send; when full, the entry with the oldest
 * window gives way. */
struct console_limiter;
int console_limiter_new(struct console_limiter **out, size_t slots);
void console_limiter_free(struct console_limiter *l);
/* Seconds until key may try again (0: it may now). */
unsigned console_limiter_blocked(struct console_limiter *l, const char *key,
    int64_t now_ms);
void console_limiter_fail(struct console_limiter *l, const char *key,
    int64_t now_ms);
void console_limiter_clear(struct console_limiter *l, const char *key);

/* The rate limiter's key of a client address: "addr:" and the address,
 * an IPv6 one cut to its /64. 0, PH_ERR_TOOBIG. */
int console_addr_key(const char *peer, char *out, size_t size);
/* Is a request's Origin (NULL: none sent) acceptable: none, or exactly
 * "https://" + host? */
int console_origin_ok(const char *origin, const char *host);
/* Does the CSRF header (NULL: missing) match the session's token? In
 * constant time for equal lengths. */
int console_csrf_ok(const char *header, const char *want);
/* The value of cookie name in a Cookie header: 0, PH_ERR_NOTFOUND, or
 * PH_ERR_TOOBIG if it does not fit. */
int console_cookie(const char *header, const char *name, char *out,
    size_t size);

#endif
