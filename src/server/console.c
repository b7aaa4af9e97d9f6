/* console: static files of the web console and its sign-in API. The
 * page itself talks to the AWS APIs with the temporary credentials it is
 * given here, so nothing in this file decides what a user may do: the
 * credentials authorise as the user (api_sts.c), through authz.c. */
#include "server/console.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <uv.h>

#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"
#include "server/api_iam.h"
#include "server/audit.h"
#include "server/authz.h"
#include "server/store_console.h"
#include "server/store_iam.h"
#include "server/store_sts.h"

#define CON_PREFIX "/console/"
#define CON_API_PREFIX "/console/api/"
#define CON_JSON_TYPE "application/json"
/* The largest file served (the bundle is well under). */
#define CON_MAX_FILE ((off_t)32 << 20)
#define CON_MAX_REL 512
#define CON_USER_MAX 64
#define CON_PASSWORD_MAX 128

/* style-src allows inline styles because xterm.js sizes and colours the
 * terminal with <style> elements it writes; scripts stay 'self' only
 * ('wasm-unsafe-eval' compiles asciinema-player's WebAssembly, no eval). */
#define CON_SECURITY_HEADERS \
	"Content-Security-Policy: default-src 'none'; script-src 'self' " \
	"'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; " \
	"img-src 'self' data:; font-src 'self'; " \
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; " \
	"form-action 'none'\r\n" \
	"X-Content-Type-Options: nosniff\r\n" \
	"Referrer-Policy: no-referrer\r\n" \
	"X-Frame-Options: DENY\r\n" \
	"Cross-Origin-Opener-Policy: same-origin\r\n"

#define CON_COOKIE_ATTRS "Path=/console/api; Secure; HttpOnly; " \
	"SameSite=Strict"

struct console {
	char dir[PATH_MAX];
	unsigned session_seconds;
	struct console_limiter *rl;
	unsigned signins_inflight;  /* password checks on the thread pool */
};

/* ---- rate limiting ---------------------------------------------------- */

struct rl_slot {
	char key[CONSOLE_RL_KEY_SIZE];   /* "" : free */
	int64_t start_ms;                /* the window's first failure */
	unsigned failures;
};

struct console_limiter {
	struct rl_slot *slots;
	size_t n;
};

int
console_limiter_new(struct console_limiter **out, size_t slots)
{
	struct console_limiter *l;

	*out = NULL;
	if (slots == 0)
		return PH_ERR_INVALID;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return PH_ERR_NOMEM;
	if ((l->slots = calloc(slots, sizeof(*l->slots))) == NULL) {
		free(l);
		return PH_ERR_NOMEM;
	}
	l->n = slots;
	*out = l;
	return 0;
}

void
console_limiter_free(struct console_limiter *l)
{
	if (l == NULL)
		return;
	free(l->slots);
	free(l);
}

static struct rl_slot *
rl_find(struct console_limiter *l, const char *key)
{
	size_t i;

	if (key == NULL || key[0] == '\0' || strlen(key) >= CONSOLE_RL_KEY_SIZE)
		return NULL;
	for (i = 0; i < l->n; i++)
		if (strcmp(l->slots[i].key, key) == 0)
			return &l->slots[i];
	return NULL;
}

unsigned
console_limiter_blocked(struct console_limiter *l, const char *key,
    int64_t now_ms)
{
	struct rl_slot *s = rl_find(l, key);
	int64_t left;

	if (s == NULL || s->failures < CONSOLE_RL_MAX_FAILURES)
		return 0;
	left = s->start_ms + CONSOLE_RL_WINDOW_MS - now_ms;
	if (left <= 0)
		return 0;
	return (unsigned)((left + 999) / 1000);
}

void
console_limiter_fail(struct console_limiter *l, const char *key,
    int64_t now_ms)
{
	struct rl_slot *s = rl_find(l, key), *old = NULL;
	size_t i;

	if (key == NULL || key[0] == '\0' || strlen(key) >= CONSOLE_RL_KEY_SIZE)
		return;
	if (s == NULL) {
		/* A free or finished slot, else the oldest window. */
		for (i = 0; i < l->n && s == NULL; i++) {
			struct rl_slot *c = &l->slots[i];

			if (c->key[0] == '\0' ||
			    now_ms - c->start_ms >= CONSOLE_RL_WINDOW_MS)
				s = c;
			else if (old == NULL || c->start_ms < old->start_ms)
				old = c;
		}
		if (s == NULL)
			s = old;
		memset(s, 0, sizeof(*s));
		memcpy(s->key, key, strlen(key) + 1);
	}
	if (s->failures == 0 || now_ms - s->start_ms >= CONSOLE_RL_WINDOW_MS) {
		s->start_ms = now_ms;
		s->failures = 0;
	}
	if (s->failures < UINT_MAX)
		s->failures++;
}

void
console_limiter_clear(struct console_limiter *l, const char *key)
{
	struct rl_slot *s = rl_find(l, key);

	if (s != NULL)
		memset(s, 0, sizeof(*s));
}

/* ---- checks ----------------------------------------------------------- */

int
console_origin_ok(const char *origin, const char *host)
{
	static const char scheme[] = "https://";

	if (origin == NULL)
		return 1;
	if (host == NULL || host[0] == '\0')
		return 0;
	return strncmp(origin, scheme, sizeof(scheme) - 1) == 0 &&
	    strcmp(origin + sizeof(scheme) - 1, host) == 0;
}

int
console_csrf_ok(const char *header, const char *want)
{
	size_t n;

	if (header == NULL || want == NULL || want[0] == '\0')
		return 0;
	n = strlen(want);
	if (strlen(header) != n)
		return 0;
	return CRYPTO_memcmp(header, want, n) == 0;
}

int
console_cookie(const char *header, const char *name, char *out, size_t size)
{
	const char *p = header, *eq, *end;
	size_t nlen, vlen;

	if (size > 0)
		out[0] = '\0';
	if (header == NULL || name == NULL || (nlen = strlen(name)) == 0)
		return PH_ERR_NOTFOUND;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq != NULL && (size_t)(eq - p) == nlen &&
		    memcmp(p, name, nlen) == 0) {
			vlen = (size_t)(end - eq - 1);
			while (vlen > 0 && (eq[vlen] == ' ' ||
			    eq[vlen] == '\t'))
				vlen--;
			if (vlen >= size)
				return PH_ERR_TOOBIG;
			memcpy(out, eq + 1, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p = end;
	}
	return PH_ERR_NOTFOUND;
}

/* ---- static files ----------------------------------------------------- */

static int
con_name_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
}

int
console_resolve(const char *root, const char *rel, char *out, size_t size)
{
	char path[PATH_MAX], real[PATH_MAX];
	size_t i, rlen;
	int seg_start = 1;

	if (size > 0)
		out[0] = '\0';
	if (rel[0] == '\0')
		rel = "index.html";
	if (strlen(rel) > CON_MAX_REL)
		return PH_ERR_INVALID;
	for (i = 0; rel[i] != '\0'; i++) {
		if (rel[i] == '/') {
			if (seg_start)
				return PH_ERR_INVALID;   /* empty segment */
			seg_start = 1;
			continue;
		}
		if (!con_name_char(rel[i]) || (seg_start && rel[i] == '.'))
			return PH_ERR_INVALID;
		seg_start = 0;
	}
	if (seg_start)
		return PH_ERR_INVALID;               /* ends in '/' */
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", root, rel) >=
	    sizeof(path))
		return PH_ERR_INVALID;
	if (realpath(path, real) == NULL)
		return PH_ERR_NOTFOUND;
	rlen = strlen(root);
	/* A symbolic link may point within the directory, not out. */
	if (strncmp(real, root, rlen) != 0 || real[rlen] != '/')
		return PH_ERR_INVALID;
	if (strlen(real) >= size)
		return PH_ERR_TOOBIG;
	memcpy(out, real, strlen(real) + 1);
	return 0;
}

const char *
console_content_type(const char *name)
{
	static const struct {
		const char *ext;
		const char *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".mjs", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".json", "application/json" },
		{ ".map", "application/json" },
		{ ".txt", "text/plain; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".woff2", "font/woff2" },
		{ ".woff", "font/woff" },
		{ ".wasm", "application/wasm" },
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	if (dot != NULL && strchr(dot, '/') == NULL)
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcmp(dot, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

static void
con_respond(struct http_request *req, int status, const char *type,
    const char *extra, const void *body, size_t len)
{
	char hdr[2048];

	snprintf(hdr, sizeof(hdr), "%s%s", CON_SECURITY_HEADERS,
	    extra != NULL ? extra : "");
	http_respond(req, status, type, hdr, body, len);
}

static void
con_json(struct http_request *req, int status, json_t *o, const char *extra)
{
	char hdr[1024];
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	snprintf(hdr, sizeof(hdr), "Cache-Control: no-store\r\n%s",
	    extra != NULL ? extra : "");
	if (text == NULL) {
		static const char fallback[] =
		    "{\"__type\":\"InternalServerError\","
		    "\"message\":\"An internal error occurred.\"}";

		con_respond(req, 500, CON_JSON_TYPE, hdr, fallback,
		    sizeof(fallback) - 1);
		return;
	}
	con_respond(req, status, CON_JSON_TYPE, hdr, text, strlen(text));
	/* Answers carry secret keys and session tokens. */
	OPENSSL_cleanse(text, strlen(text));
	free(text);
}

static void
con_error(struct http_request *req, int status, const char *type,
    const char *message, const char *extra)
{
	json_t *o = json_pack("{s:s, s:s}", "__type", type, "message",
	    message);

	con_json(req, status, o, extra);
	json_decref(o);
}

static void
con_static(struct console *c, struct http_request *req)
{
	char root[PATH_MAX], file[PATH_MAX], etag[80], hdr[256];
	const char *inm;
	struct stat sb;
	char *body = NULL;
	size_t got = 0;
	ssize_t n;
	int fd = -1, rc;

	if (strcmp(req->method, "GET") != 0) {
		con_error(req, 405, "MethodNotAllowed",
		    "The console's pages are read with GET.", "Allow: GET\r\n");
		return;
	}
	if (realpath(c->dir, root) == NULL) {
		con_error(req, 404, "NotFound", "The console is not built "
		    "(see docs/console.md).", NULL);
		return;
	}
	rc = console_resolve(root, req->path + sizeof(CON_PREFIX) - 1, file,
	    sizeof(file));
	if (rc == PH_ERR_INVALID) {
		con_error(req, 400, "InvalidPath", "Invalid path.", NULL);
		return;
	}
	if (rc != 0 || (fd = open(file, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW)) < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		con_error(req, 404, "NotFound", "No such page.", NULL);
		goto out;
	}
	if (sb.st_size > CON_MAX_FILE) {
		con_error(req, 500, "InternalServerError", "File too large.",
		    NULL);
		goto out;
	}
	snprintf(etag, sizeof(etag), "\"%llx-%llx\"",
	    (unsigned long long)sb.st_size,
	    (unsigned long long)sb.st_mtim.tv_sec * 1000000000ull +
	    (unsigned long long)sb.st_mtim.tv_nsec);
	/* Names are not content-hashed: the browser asks again each time,
	 * and an unchanged file costs a 304. */
	snprintf(hdr, sizeof(hdr), "ETag: %s\r\nCache-Control: no-cache\r\n",
	    etag);
	inm = http_header(req, "If-None-Match");
	if (inm != NULL && strcmp(inm, etag) == 0) {
		con_respond(req, 304, console_content_type(file), hdr, NULL, 0);
		goto out;
	}
	if ((body = malloc((size_t)sb.st_size + 1)) == NULL) {
		con_error(req, 500, "InternalServerError",
		    "An internal error occurred.", NULL);
		goto out;
	}
	while (got < (size_t)sb.st_size) {
		n = read(fd, body + got, (size_t)sb.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != (size_t)sb.st_size) {
		con_error(req, 500, "InternalServerError",
		    "An internal error occurred.", NULL);
		goto out;
	}
	con_respond(req, 200, console_content_type(file), hdr, body, got);
out:
	free(body);
	if (fd >= 0)
		close(fd);
}

/* ---- the API ---------------------------------------------------------- */

static int64_t
con_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
con_iso(int64_t ms, char *out, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *
con_peer(struct http_request *req)
{
	const char *peer = req->conn != NULL ? conn_peer_addr(req->conn) :
	    NULL;

	if (peer != NULL && strncmp(peer, "::ffff:", 7) == 0 &&
	    strchr(peer, '.') != NULL)
		peer += 7;
	return peer != NULL ? peer : "";
}

/* One ConsoleLogin event, shaped as CloudTrail's: eventSource
 * signin.amazonaws.com, eventType AwsConsoleSignIn, responseElements
 * {"ConsoleLogin": "Success"|"Failure"}. Never the password. */
static void
con_audit_login(struct server *srv, struct http_request *req,
    const char *peer, const struct iam_user_rec *u, int ok, const char *code,
    const char *message)
{
	char request_id[UUID_STR_LEN];
	struct audit_event ev;
	struct principal p;
	json_t *resp;

	log_info("event=console_login user=%s peer=%s result=%s%s%s",
	    u != NULL ? u->name : "-", peer, ok ? "Success" : "Failure",
	    code != NULL ? " error=" : "", code != NULL ? code : "");
	if (srv->audit == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	memset(&p, 0, sizeof(p));
	if (u != NULL && strlen(u->name) < sizeof(p.name) &&
	    strlen(u->arn) < sizeof(p.arn) &&
	    strlen(u->user_id) < sizeof(p.user_id)) {
		p.kind = PRINCIPAL_USER;
		p.active = 1;
		memcpy(p.name, u->name, strlen(u->name) + 1);
		memcpy(p.arn, u->arn, strlen(u->arn) + 1);
		memcpy(p.user_id, u->user_id, strlen(u->user_id) + 1);
		ev.principal = &p;
	}
	uuid_v4_str(request_id);
	resp = json_pack("{s:s}", "ConsoleLogin", ok ? "Success" : "Failure");
	ev.service = "signin";
	ev.name = "ConsoleLogin";
	ev.event_type = "AwsConsoleSignIn";
	ev.region = srv->region;
	ev.account_id = srv->account_id;
	ev.source_ip = peer;
	ev.user_agent = http_header(req, "User-Agent");
	ev.extra_response = resp;
	ev.error_code = code;
	ev.error_message = message;
	ev.request_id = request_id;
	(void)audit_record(srv->audit, &ev);
	json_decref(resp);
}

/* Credentials issued to the page: an event as STS's GetSessionToken
 * leaves, naming the key id and expiry, never the secret or token. */
static void
con_audit_credentials(struct server *srv, struct http_request *req,
    const struct iam_user_rec *u, const char *akid, const char *expiration)
{
	char request_id[UUID_STR_LEN];
	struct audit_event ev;
	struct principal p;
	json_t *resp;

	log_info("event=console_credentials user=%s akid=%s peer=%s", u->name,
	    akid, con_peer(req));
	if (srv->audit == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	memset(&p, 0, sizeof(p));
	if (strlen(u->name) < sizeof(p.name) &&
	    strlen(u->arn) < sizeof(p.arn) &&
	    strlen(u->user_id) < sizeof(p.user_id)) {
		p.kind = PRINCIPAL_USER;
		p.active = 1;
		memcpy(p.name, u->name, strlen(u->name) + 1);
		memcpy(p.arn, u->arn, strlen(u->arn) + 1);
		memcpy(p.user_id, u->user_id, strlen(u->user_id) + 1);
		ev.principal = &p;
	}
	uuid_v4_str(request_id);
	resp = json_pack("{s:{s:s, s:s}}", "credentials", "accessKeyId", akid,
	    "expiration", expiration);
	ev.service = "sts";
	ev.name = "GetSessionToken";
	ev.region = srv->region;
	ev.account_id = srv->account_id;
	ev.source_ip = con_peer(req);
	ev.user_agent = http_header(req, "User-Agent");
	ev.extra_response = resp;
	ev.request_id = request_id;
	(void)audit_record(srv->audit, &ev);
	json_decref(resp);
}

static void
con_key(char *out, size_t size, const char *kind, const char *v)
{
	size_t i, n;

	n = (size_t)snprintf(out, size, "%s:%s", kind, v);
	if (n >= size)
		n = size - 1;
	/* IAM user names compare without regard to case. */
	for (i = 0; i < n; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] - 'A' + 'a');
}

int
console_addr_key(const char *peer, char *out, size_t size)
{
	unsigned char a6[16];
	char text[INET6_ADDRSTRLEN];

	if (peer == NULL)
		peer = "";
	/* One IPv6 client holds a whole /64: count it as one address. */
	if (strchr(peer, ':') != NULL && inet_pton(AF_INET6, peer, a6) == 1) {
		memset(a6 + 8, 0, 8);
		if (inet_ntop(AF_INET6, a6, text, sizeof(text)) == NULL)
			return PH_ERR_INVALID;
		peer = text;
	}
	if ((size_t)snprintf(out, size, "addr:%s", peer) >= size)
		return PH_ERR_TOOBIG;
	return 0;
}

/* Must the user change their password before using the console? Read
 * afresh on every request, so a change takes effect at once. */
static int
con_reset_required(struct server *srv, const struct iam_user_rec *u)
{
	int reset = 0;

	if (store_iam_login_get(srv->store, u->name, NULL, &reset) != 0)
		return 0;
	return reset != 0;
}

static json_t *
con_session_body(struct server *srv, const struct iam_user_rec *u,
    const struct console_session *s)
{
	char exp[32];

	con_iso(s->expiry_ms, exp, sizeof(exp));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "UserName",
	    u->name, "Arn", u->arn, "AccountId", srv->account_id,
	    "Expiration", exp, "CsrfToken", s->csrf, "PasswordResetRequired",
	    con_reset_required(srv, u));
}

/* The request's JSON object, or NULL with the error answered. */
static json_t *
con_body(struct http_request *req)
{
	json_error_t jerr;
	json_t *in;

	in = json_loadb((const char *)req->body, req->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (in == NULL || !json_is_object(in)) {
		json_decref(in);
		con_error(req, 400, "SerializationException",
		    "The request body is not a JSON object.", NULL);
		return NULL;
	}
	return in;
}

/* A sign-in whose password check (scrypt: tens of milliseconds and 32
 * MiB) runs on libuv's thread pool, so the event loop and every session
 * on it go on meanwhile. Everything else happens on the loop. */
struct signin_job {
	uv_work_t work;
	struct server *srv;
	struct console *c;
	struct http_request *req;
	struct iam_user_rec u;
	int found;
	struct iam_login_hash hash;
	char *password;
	size_t password_len;
	char *newpw;               /* change-password: the new one */
	size_t newpw_len;
	struct console_session sess;
	char ukey[CONSOLE_RL_KEY_SIZE];
	char akey[CONSOLE_RL_KEY_SIZE];
	char peer[64];
	int64_t now_ms;
	int rc;
};

static void
signin_job_free(struct signin_job *j)
{
	if (j->password != NULL) {
		OPENSSL_cleanse(j->password, j->password_len);
		free(j->password);
	}
	if (j->newpw != NULL) {
		OPENSSL_cleanse(j->newpw, j->newpw_len);
		free(j->newpw);
	}
	OPENSSL_cleanse(&j->sess, sizeof(j->sess));
	OPENSSL_cleanse(&j->hash, sizeof(j->hash));
	free(j);
}

/* On the thread pool: the scrypt check of a sign-in, or of the old
 * password of a change. */
static void
signin_work(uv_work_t *w)
{
	struct signin_job *j = w->data;

	j->rc = store_iam_login_check(&j->hash, j->password);
}

static void
signin_done(uv_work_t *w, int status)
{
	struct signin_job *j = w->data;
	struct server *srv = j->srv;
	struct console *c = j->c;
	struct http_request *req = j->req;
	struct console_session sess;
	char token[CONSOLE_TOKEN_SIZE], hdr[256];
	json_t *out;
	int rc = status == 0 ? j->rc : PH_ERR_STATE;

	c->signins_inflight--;
	if (rc == PH_ERR_DENIED) {
		console_limiter_fail(c->rl, j->ukey, j->now_ms);
		console_limiter_fail(c->rl, j->akey, j->now_ms);
		con_audit_login(srv, req, j->peer, j->found ? &j->u : NULL, 0,
		    "AuthenticationFailed", "Failed authentication");
		con_error(req, 401, "AuthenticationFailed", "Your "
		    "authentication information is incorrect. Please try "
		    "again.", NULL);
		goto out;
	}
	if (rc != 0 || (rc = store_console_create(srv->store, j->u.name,
	    j->peer, j->now_ms, j->now_ms + (int64_t)c->session_seconds * 1000,
	    &sess, token, sizeof(token))) != 0) {
		log_error("event=console_signin_failed err=%s",
		    ph_strerror(rc));
		con_error(req, 500, "InternalServerError",
		    "An internal error occurred.", NULL);
		goto out;
	}
	console_limiter_clear(c->rl, j->ukey);
	(void)store_iam_password_used(srv->store, j->u.name, j->now_ms);
	conn_set_authenticated(req->conn);
	con_audit_login(srv, req, j->peer, &j->u, 1, NULL, NULL);
	snprintf(hdr, sizeof(hdr), "Set-Cookie: " CONSOLE_COOKIE "=%s; "
	    CON_COOKIE_ATTRS "; Max-Age=%u\r\n", token, c->session_seconds);
	out = con_session_body(srv, &j->u, &sess);
	con_json(req, 200, out, hdr);
	json_decref(out);
	OPENSSL_cleanse(hdr, sizeof(hdr));
	OPENSSL_cleanse(token, sizeof(token));
	OPENSSL_cleanse(&sess, sizeof(sess));
out:
	signin_job_free(j);
}

static void
con_signin(struct server *srv, struct console *c, struct http_request *req)
{
	char hdr[64], msg[160];
	struct signin_job *j = NULL;
	const char *name, *password;
	json_t *in, *pw;
	unsigned wait, w2;
	int rc;

	if ((in = con_body(req)) == NULL)
		return;
	/* The body holds the password; the parsed copy is all we need. */
	if (req->body != NULL && req->body_len > 0)
		OPENSSL_cleanse((void *)(uintptr_t)req->body, req->body_len);
	name = json_string_value(json_object_get(in, "UserName"));
	pw = json_object_get(in, "Password");
	password = json_string_value(pw);
	if (name == NULL || password == NULL || name[0] == '\0' ||
	    password[0] == '\0' || strlen(name) > CON_USER_MAX ||
	    strlen(password) > CON_PASSWORD_MAX ||
	    strlen(name) != json_string_length(json_object_get(in,
	    "UserName")) || strlen(password) != json_string_length(pw)) {
		con_error(req, 400, "ValidationException", "UserName and "
		    "Password are required strings (at most 64 and 128 "
		    "characters).", NULL);
		goto out;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->password = strdup(password)) == NULL) {
		free(j);
		j = NULL;
		con_error(req, 500, "InternalServerError",
		    "An internal error occurred.", NULL);
		goto out;
	}
	j->password_len = strlen(password);
	j->srv = srv;
	j->c = c;
	j->req = req;
	j->now_ms = con_now_ms();
	snprintf(j->peer, sizeof(j->peer), "%s", con_peer(req));
	con_key(j->ukey, sizeof(j->ukey), "user", name);
	(void)console_addr_key(j->peer, j->akey, sizeof(j->akey));
	j->found = store_iam_user_get(srv->store, name, &j->u) == 0;
	wait = console_limiter_blocked(c->rl, j->ukey, j->now_ms);
	w2 = console_limiter_blocked(c->rl, j->akey, j->now_ms);
	if (w2 > wait)
		wait = w2;
	/* Beyond a few checks at once, the pool would be all scrypt. */
	if (wait == 0 && c->signins_inflight >= CONSOLE_SIGNIN_INFLIGHT)
		wait = 1;
	if (wait > 0) {
		con_audit_login(srv, req, j->peer, j->found ? &j->u : NULL, 0,
		    "ThrottlingException", "Too many sign-in attempts");
		snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", wait);
		snprintf(msg, sizeof(msg), "Too many sign-in attempts; try "
		    "again in %u seconds.", wait);
		con_error(req, 429, "ThrottlingException", msg, hdr);
		goto out;
	}
	/* Unknown users and users without a console password cost the
	 * same work as a wrong password, and get the same answer. */
	rc = j->found ? store_iam_login_hash(srv->store, j->u.name,
	    &j->hash) : PH_ERR_NOTFOUND;
	if (rc == PH_ERR_NOTFOUND || rc == PH_ERR_INVALID)
		store_iam_login_dummy(&j->hash);
	else if (rc != 0) {
		con_error(req, 500, "InternalServerError",
		    "An internal error occurred.", NULL);
		goto out;
	}
	j->work.data = j;
	if (uv_queue_work(srv->loop, &j->work, signin_work,
	    signin_done) != 0) {
		con_error(req, 503, "ServiceUnavailable",
		    "Try again later.", NULL);
		goto out;
	}
	c->signins_inflight++;
	j = NULL;   /* signin_done answers and frees it */
out:
	if (j != NULL)
		signin_job_free(j);
	if (json_is_string(pw))
		OPENSSL_cleanse((char *)json_string_value(pw),
		    json_string_length(pw));
	json_decref(in);
}

/* The session of the request's cookie and its user; or the error
 * answered (401) and PH_ERR_DENIED. */
static int
con_session(struct server *srv, struct http_request *req,
    struct console_session *s, struct iam_user_rec *u)
{
	char token[CONSOLE_TOKEN_SIZE + 1];
	int rc;

	rc = console_cookie(http_header(req, "Cookie"), CONSOLE_COOKIE, token,
	    sizeof(token));
	if (rc == 0)
		rc = store_console_get(srv->store, token, con_now_ms(), s);
	OPENSSL_cleanse(token, sizeof(token));
	if (rc == 0) {
		rc = store_iam_user_get(srv->store, s->user_name, u);
		/* A user deleted and made again is not the same user. */
		if (rc == 0 && u->created_ms > s->created_ms)
			rc = PH_ERR_NOTFOUND;
	}
	if (rc == 0) {
		/* A signed-in page is no longer held to the deadline of
		 * connections that never authenticated. */
		conn_set_authenticated(req->conn);
		return 0;
	}
	if (rc != PH_ERR_NOTFOUND && rc != PH_ERR_EXPIRED &&
	    rc != PH_ERR_TOOBIG) {
		con_error(req, 500, "InternalServerError",
		    "An internal error occurred.", NULL);
		return PH_ERR_DENIED;
	}
	con_error(req, 401, "AuthenticationFailed", rc == PH_ERR_EXPIRED ?
	    "The console session has expired; sign in again." :
	    "Not signed in to the console.", NULL);
	return PH_ERR_DENIED;
}

static int
con_csrf(struct http_request *req, const struct console_session *s)
{
	if (console_csrf_ok(http_header(req, CONSOLE_CSRF_HEADER), s->csrf))
		return 0;
	con_error(req, 403, "AccessDeniedException", "Missing or wrong "
	    CONSOLE_CSRF_HEADER " header.", NULL);
	return PH_ERR_DENIED;
}

static void
con_get_session(struct server *srv, struct http_request *req)
{
	struct console_session s;
	struct iam_user_rec u;
	json_t *out;

	if (con_session(srv, req, &s, &u) != 0)
		return;
	out = con_session_body(srv, &u, &s);
	con_json(req, 200, out, NULL);
	json_decref(out);
	OPENSSL_cleanse(&s, sizeof(s));
}

static void
con_credentials(struct server *srv, struct http_request *req)
{
	char token[STS_TOKEN_SIZE], exp[32];
	struct console_session s;
	struct iam_user_rec u;
	struct sts_cred cred;
	int64_t now = con_now_ms(), expiry;
	json_t *out;
	int rc;

	if (con_session(srv, req, &s, &u) != 0)
		return;
	if (con_csrf(req, &s) != 0)
		goto out;
	/* As AWS's console: nothing but a new password until it is set. */
	if (con_reset_required(srv, &u)) {
		con_error(req, 403, "PasswordResetRequired", "Change your "
		    "password before using the console.", NULL);
		goto out;
	}
	expiry = now + CONSOLE_CREDENTIALS_MS;
	if (expiry > s.expiry_ms)
		expiry = s.expiry_ms;
	rc = store_sts_issue_user(srv->store, u.name, s.id, u.arn, now,
	    expiry, &cred, token, sizeof(token));
	if (rc != 0) {
		log_error("event=console_credentials_failed user=%s err=%s",
		    u.name, ph_strerror(rc));
		con_error(req, 500, "InternalServerError",
		    "An internal error occurred.", NULL);
		goto out;
	}
	con_iso(expiry, exp, sizeof(exp));
	con_audit_credentials(srv, req, &u, cred.akid, exp);
	out = json_pack("{s:s, s:s, s:s, s:s}", "AccessKeyId", cred.akid,
	    "SecretAccessKey", cred.secret, "SessionToken", token,
	    "Expiration", exp);
	con_json(req, 200, out, NULL);
	if (out != NULL) {
		OPENSSL_cleanse((char *)json_string_value(json_object_get(out,
		    "SecretAccessKey")), STS_SECRET_SIZE - 1);
		OPENSSL_cleanse((char *)json_string_value(json_object_get(out,
		    "SessionToken")), strlen(token));
	}
	json_decref(out);
	OPENSSL_cleanse(&cred, sizeof(cred));
	OPENSSL_cleanse(token, sizeof(token));
out:
	OPENSSL_cleanse(&s, sizeof(s));
}

static void
con_signout(struct server *srv, struct http_request *req)
{
	struct console_session s;
	struct iam_user_rec u;
	json_t *out;
	int rc;

	if (con_session(srv, req, &s, &u) != 0)
		return;
	if (con_csrf(req, &s) != 0)
		goto out;
	if ((rc = store_console_delete(srv->store, s.id)) != 0) {
		log_error("event=console_signout_failed err=%s",
		    ph_strerror(rc));
		con_error(req, 500, "InternalServerError",
		    "An internal error occurred.", NULL);
		goto out;
	}
	log_info("event=console_signout user=%s peer=%s", u.name,
	    con_peer(req));
	out = json_object();
	con_json(req, 200, out, "Set-Cookie: " CONSOLE_COOKIE "=; "
	    CON_COOKIE_ATTRS "; Max-Age=0\r\n");
	json_decref(out);
out:
	OPENSSL_cleanse(&s, sizeof(s));
}

/* A user's own password, changed from the console: the console
 * session (cookie and CSRF header) names the user, the old password is
 * proved on the thread pool as at sign-in, and the rules are
 * ChangePassword's (iam:ChangePassword on the user's own ARN, IAM's
 * password policy, the root admin may not). Wrong old passwords count
 * as failed sign-ins of that user. It clears PasswordResetRequired.
 * The old password is checked by signin_work. */

static void
chpw_done(uv_work_t *w, int status)
{
	struct signin_job *j = w->data;
	struct server *srv = j->srv;
	struct http_request *req = j->req;
	struct api_error err;
	json_t *out;
	int rc = status == 0 ? j->rc : PH_ERR_STATE;

	j->c->signins_inflight--;
	if (rc == PH_ERR_DENIED) {
		console_limiter_fail(j->c->rl, j->ukey, j->now_ms);
		console_limiter_fail(j->c->rl, j->akey, j->now_ms);
		log_info("event=console_change_password user=%s peer=%s "
		    "result=Failure", j->u.name, j->peer);
		con_error(req, 403, "AccessDenied",
		    "The old password is incorrect.", NULL);
		goto out;
	}
	memset(&err, 0, sizeof(err));
	if (rc == 0 && api_iam_password_ok(j->newpw, j->u.name, &err) != 0) {
		con_error(req, 400, err.type, err.message, NULL);
		goto out;
	}
	if (rc == 0 && strcmp(j->password, j->newpw) == 0) {
		con_error(req, 400, "PasswordPolicyViolation",
		    "The new password must differ from the old one.", NULL);
		goto out;
	}
	if (rc == 0)
		rc = store_iam_login_update(srv->store, j->u.name, j->newpw, 0);
	if (rc == PH_ERR_NOTFOUND) {
		/* The login profile went while the check ran. */
		con_error(req, 404, "NoSuchEntity", "The login profile "
		    "no longer exists.", NULL);
		goto out;
	}
	if (rc != 0) {
		log_error("event=console_change_password_failed err=%s",
		    ph_strerror(rc));
		con_error(req, 500, "InternalServerError",
		    "An internal error occurred.", NULL);
		goto out;
	}
	console_limiter_clear(j->c->rl, j->ukey);
	log_info("event=console_change_password user=%s peer=%s "
	    "result=Success", j->u.name, j->peer);
	out = con_session_body(srv, &j->u, &j->sess);
	con_json(req, 200, out, NULL);
	json_decref(out);
out:
	signin_job_free(j);
}

/* A member that must be a string of 1 to max characters, or NULL. */
static const char *
con_str_member(json_t *in, const char *name, size_t max)
{
	json_t *v = json_object_get(in, name);
	const char *s = json_string_value(v);

	if (s == NULL || s[0] == '\0' || strlen(s) > max ||
	    strlen(s) != json_string_length(v))
		return NULL;
	return s;
}

static void
con_change_password(struct server *srv, struct console *c,
    struct http_request *req)
{
	struct signin_job *j = NULL;
	struct principal p;
	const char *oldpw, *newpw;
	char hdr[64], msg[400], deny[2 * IAM_ARN_SIZE + 80];
	json_t *in = NULL, *v;
	unsigned wait, w2;
	int rc;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		con_error(req, 500, "InternalServerError",
		    "An internal error occurred.", NULL);
		return;
	}
	if (con_session(srv, req, &j->sess, &j->u) != 0 ||
	    con_csrf(req, &j->sess) != 0 || (in = con_body(req)) == NULL)
		goto out;
	if (req->body != NULL && req->body_len > 0)
		OPENSSL_cleanse((void *)(uintptr_t)req->body, req->body_len);
	oldpw = con_str_member(in, "OldPassword", CON_PASSWORD_MAX);
	newpw = con_str_member(in, "NewPassword", CON_PASSWORD_MAX);
	if (oldpw == NULL || newpw == NULL) {
		con_error(req, 400, "ValidationException", "OldPassword and "
		    "NewPassword are required strings (at most 128 "
		    "characters).", NULL);
		goto out;
	}
	if (j->u.is_root_admin) {
		con_error(req, 400, "InvalidUserType",
		    "Only IAM users can change their own password.", NULL);
		goto out;
	}
	memset(&p, 0, sizeof(p));
	p.kind = PRINCIPAL_USER;
	p.active = 1;
	rc = PH_ERR_DENIED;
	if (strlen(j->u.name) < sizeof(p.name) &&
	    strlen(j->u.arn) < sizeof(p.arn) &&
	    strlen(j->u.user_id) < sizeof(p.user_id)) {
		memcpy(p.name, j->u.name, strlen(j->u.name) + 1);
		memcpy(p.arn, j->u.arn, strlen(j->u.arn) + 1);
		memcpy(p.user_id, j->u.user_id, strlen(j->u.user_id) + 1);
		rc = authz_check(srv, &p, "iam:ChangePassword", j->u.arn);
	}
	if (rc != 0) {
		snprintf(deny, sizeof(deny), "User: %s is not authorized to "
		    "perform: iam:ChangePassword on resource: %s", j->u.arn,
		    j->u.arn);
		con_error(req, 403, "AccessDenied", deny, NULL);
		goto out;
	}
	j->srv = srv;
	j->c = c;
	j->req = req;
	j->now_ms = con_now_ms();
	snprintf(j->peer, sizeof(j->peer), "%s", con_peer(req));
	con_key(j->ukey, sizeof(j->ukey), "user", j->u.name);
	(void)console_addr_key(j->peer, j->akey, sizeof(j->akey));
	wait = console_limiter_blocked(c->rl, j->ukey, j->now_ms);
	w2 = console_limiter_blocked(c->rl, j->akey, j->now_ms);
	if (w2 > wait)
		wait = w2;
	if (wait == 0 && c->signins_inflight >= CONSOLE_SIGNIN_INFLIGHT)
		wait = 1;
	if (wait > 0) {
		snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", wait);
		snprintf(msg, sizeof(msg), "Too many attempts; try again in "
		    "%u seconds.", wait);
		con_error(req, 429, "ThrottlingException", msg, hdr);
		goto out;
	}
	rc = store_iam_login_hash(srv->store, j->u.name, &j->hash);
	if (rc == PH_ERR_NOTFOUND) {
		snprintf(msg, sizeof(msg), "Login Profile for User %s cannot "
		    "be found.", j->u.name);
		con_error(req, 404, "NoSuchEntity", msg, NULL);
		goto out;
	}
	if (rc != 0 || (j->password = strdup(oldpw)) == NULL ||
	    (j->newpw = strdup(newpw)) == NULL) {
		con_error(req, 500, "InternalServerError",
		    "An internal error occurred.", NULL);
		goto out;
	}
	j->password_len = strlen(oldpw);
	j->newpw_len = strlen(newpw);
	j->work.data = j;
	if (uv_queue_work(srv->loop, &j->work, signin_work, chpw_done) != 0) {
		con_error(req, 503, "ServiceUnavailable",
		    "Try again later.", NULL);
		goto out;
	}
	c->signins_inflight++;
	j = NULL;   /* chpw_done answers and frees it */
out:
	if (j != NULL)
		signin_job_free(j);
	if (in != NULL) {
		const char *k;

		json_object_foreach(in, k, v)
			if (json_is_string(v))
				OPENSSL_cleanse((char *)json_string_value(v),
				    json_string_length(v));
	}
	json_decref(in);
}

static void
con_api(struct server *srv, struct console *c, struct http_request *req)
{
	static const struct {
		const char *name;
		const char *method;
	} ops[] = {
		{ "signin", "POST" },
		{ "session", "GET" },
		{ "credentials", "POST" },
		{ "signout", "POST" },
		{ "change-password", "POST" },
	};
	const char *op = req->path + sizeof(CON_API_PREFIX) - 1;
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(op, ops[i].name) == 0)
			break;
	if (i == sizeof(ops) / sizeof(ops[0])) {
		con_error(req, 404, "UnknownOperationException",
		    "No such console API.", NULL);
		return;
	}
	if (strcmp(req->method, ops[i].method) != 0) {
		char allow[32];

		snprintf(allow, sizeof(allow), "Allow: %s\r\n", ops[i].method);
		con_error(req, 405, "MethodNotAllowed",
		    "Method not allowed.", allow);
		return;
	}
	if (req->body_len > CONSOLE_MAX_BODY) {
		con_error(req, 413, "RequestEntityTooLargeException",
		    "The request body is too large.", NULL);
		return;
	}
	/* A browser sends Origin with every cross-origin request and every
	 * POST: anything but the console's own is another site. */
	if (!console_origin_ok(http_header(req, "Origin"),
	    http_header(req, "Host"))) {
		log_info("event=console_origin_refused peer=%s op=%s",
		    con_peer(req), op);
		con_error(req, 403, "AccessDeniedException",
		    "Cross-origin request refused.", NULL);
		return;
	}
	switch (i) {
	case 0: con_signin(srv, c, req); break;
	case 1: con_get_session(srv, req); break;
	case 2: con_credentials(srv, req); break;
	case 3: con_signout(srv, req); break;
	default: con_change_password(srv, c, req); break;
	}
}

/* ---- entry points ----------------------------------------------------- */

int
console_new(struct console **out, const char *dir, unsigned session_seconds)
{
	struct console *c;
	int rc;

	*out = NULL;
	if (dir == NULL || strlen(dir) >= PATH_MAX)
		return PH_ERR_INVALID;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return PH_ERR_NOMEM;
	memcpy(c->dir, dir, strlen(dir) + 1);
	c->session_seconds = session_seconds;
	if ((rc = console_limiter_new(&c->rl, CONSOLE_RL_SLOTS)) != 0) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void
console_free(struct console *c)
{
	if (c == NULL)
		return;
	console_limiter_free(c->rl);
	free(c);
}

unsigned
console_user_blocked(struct server *srv, const char *user, int64_t now_ms)
{
	char key[CONSOLE_RL_KEY_SIZE];

	if (srv->console == NULL || user == NULL)
		return 0;
	con_key(key, sizeof(key), "user", user);
	return console_limiter_blocked(srv->console->rl, key, now_ms);
}

void
console_user_failed(struct server *srv, const char *user, int64_t now_ms)
{
	char key[CONSOLE_RL_KEY_SIZE];

	if (srv->console == NULL || user == NULL)
		return;
	con_key(key, sizeof(key), "user", user);
	console_limiter_fail(srv->console->rl, key, now_ms);
}

int
console_is_request(const char *path)
{
	return strcmp(path, "/console") == 0 ||
	    strncmp(path, CON_PREFIX, sizeof(CON_PREFIX) - 1) == 0;
}

void
console_handle(struct server *srv, struct http_request *req)
{
	struct console *c = srv->console;

	if (c == NULL) {
		con_error(req, 404, "NotFound", "No console here.", NULL);
		return;
	}
	if (strcmp(req->path, "/console") == 0) {
		con_respond(req, 301, "text/plain", "Location: /console/\r\n",
		    NULL, 0);
		return;
	}
	if (strncmp(req->path, CON_API_PREFIX, sizeof(CON_API_PREFIX) - 1) ==
	    0) {
		con_api(srv, c, req);
		return;
	}
	con_static(c, req);
}
