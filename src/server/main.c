/* portholed: `init` creates a data directory; `serve` runs the API, the
 * WebSocket gateway and the store on one TLS port. */
#include <getopt.h>
#include <jansson.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#include "common/err.h"
#include "common/http.h"
#include "common/log.h"
#include "common/tls.h"
#include "server/agent_packages.h"
#include "server/api.h"
#include "server/audit.h"
#include "server/audit_sink.h"
#include "server/authz.h"
#include "server/certcmd.h"
#include "server/commands.h"
#include "server/gateway.h"
#include "server/init.h"
#include "server/kms.h"
#include "server/listenaddr.h"
#include "server/records.h"
#include "server/register.h"
#include "server/server.h"
#include "server/sink.h"
#include "server/store.h"

#define DEFAULT_LISTEN "127.0.0.1:8443"
/* Only where --data-dir is optional (agent-package). */
#define DEFAULT_DATA_DIR "/var/lib/portholed"

/* Connections that have not authenticated yet (config.json keys in
 * docs/operator.md). A stalled TLS handshake holds about 48 KiB of
 * OpenSSL state, so the total cap also bounds memory (~100 MB). */
#define DEFAULT_MAX_UNAUTH 2048
#define DEFAULT_MAX_UNAUTH_PER_SOURCE 256
#define DEFAULT_UNAUTH_TIMEOUT_S 30
#define DEFAULT_REQUEST_TIMEOUT_S 30
#define DEFAULT_WS_AUTH_TIMEOUT_S 10
#define CONFIG_COUNT_MAX 1000000
#define CONFIG_SECONDS_MAX 3600
/* Housekeeping: suppressed-log summaries, and memory given back to the
 * system after a burst of connections went away. */
#define TICK_MS 5000
#define TRIM_AFTER_CLOSED 256

struct net_config {
	unsigned max_unauth;
	unsigned max_unauth_per_source;
	unsigned unauth_timeout_s;
	unsigned request_timeout_s;
	unsigned ws_auth_timeout_s;
	struct http_opts http;
};

struct serve_state {
	struct server srv;
	struct listener *listener;
	uv_signal_t sigterm, sigint, sigusr2, sighup;
	/* The TLS files SIGHUP loads again. */
	const char *cert, *key, *ca;
	uv_timer_t linger;
	uv_timer_t store_retry;
	uv_timer_t tick;
};

/* The settings on_accept hands to every connection. */
static struct net_config net_cfg;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: portholed init --data-dir DIR [--hostname NAME ...] "
	    "[--aws-endpoint-names]\n"
	    "           [--region R] [--account-id 12DIGITS]\n"
	    "       portholed serve --data-dir DIR [--listen HOST:PORT ...] "
	    "[--kms-root-passphrase-file FILE]\n"
	    "       portholed cert show|reissue --data-dir DIR ... "
	    "(cert --help)\n"
	    "       portholed kms-rotate-root-key --data-dir DIR "
	    "[--kms-root-passphrase-file FILE]\n"
	    "       portholed agent-package add FILE --version V "
	    "[--platform %s] [--data-dir DIR]\n"
	    "       portholed agent-package list [--data-dir DIR]\n"
	    "       portholed --version\n"
	    "--listen (repeatable) takes 127.0.0.1:8443, [::1]:8443 or :8443 "
	    "(every IPv4\naddress); default %s.\n"
	    "The KMS root key is %s (base64 of 32 bytes) if set, else derived "
	    "from\n--kms-root-passphrase-file, else DIR/%s.\n"
	    "agent-package's DIR defaults to %s.\n", pkgsig_platform(),
	    DEFAULT_LISTEN, KMS_ROOT_KEY_ENV, KMS_ROOT_KEY_FILE, DEFAULT_DATA_DIR);
}

/* Route a request: WebSocket channels to the gateway, registration and
 * session records to their handlers, everything else to the
 * AWS-compatible API. */
static void
route_request(struct http_request *req, void *arg)
{
	struct server *srv = arg;

	if (req->is_upgrade && strncmp(req->path, "/v1/", 4) == 0) {
		gateway_handle_upgrade(srv->gw, req);
		return;
	}
	if (strcmp(req->method, "POST") == 0 &&
	    strcmp(req->path, "/v1/register") == 0) {
		register_handle(srv, req);
		return;
	}
	if (strncmp(req->path, "/v1/command-output/", 19) == 0) {
		commands_handle_output(srv->commands, req);
		return;
	}
	if (records_is_request(req->path)) {
		records_handle(srv, req);
		return;
	}
	if (agent_packages_is_request(req->path)) {
		agent_packages_handle(srv, req);
		return;
	}
	api_handle(srv, req);
}

/* Connections still open after the linger (idle keep-alives, peers that
 * never closed) close through their owners, which free what they hold,
 * while the gateway they may report to still exists. Each turn runs the
 * close callbacks without waiting. */
static void
close_open_conns(uv_loop_t *loop)
{
	int i;

	conn_abort_all(loop, PH_ERR_STATE);
	for (i = 0; i < 100 && conn_count(loop) > 0; i++)
		uv_run(loop, UV_RUN_NOWAIT);
}

static void
on_accept(struct conn *c, void *arg)
{
	if (http_serve_opts(c, &net_cfg.http, route_request, arg) != 0)
		conn_close(c);
}

/* One more --listen value; a message and PH_ERR_INVALID if it is bad,
 * repeated or one too many. */
static int
add_listen(struct listenaddr *la, size_t *n, const char *s)
{
	char why[160], shown[LISTENADDR_TEXT_MAX + 1];
	size_t i;

	/* The value as typed, but never a control character on stderr. */
	for (i = 0; s[i] != '\0' && i < LISTENADDR_TEXT_MAX; i++)
		shown[i] = (unsigned char)s[i] < 0x20 ||
		    (unsigned char)s[i] >= 0x7f ? '?' : s[i];
	shown[i] = '\0';
	if (*n >= LISTENADDR_MAX) {
		fprintf(stderr, "portholed serve: at most %d --listen "
		    "addresses\n", LISTENADDR_MAX);
		return PH_ERR_INVALID;
	}
	if (listenaddr_parse(s, &la[*n], why, sizeof(why)) != 0) {
		fprintf(stderr, "portholed serve: bad --listen '%s%s': %s\n",
		    shown, s[i] != '\0' ? "..." : "", why);
		return PH_ERR_INVALID;
	}
	for (i = 0; i < *n; i++) {
		if (listenaddr_same(&la[i], &la[*n])) {
			fprintf(stderr, "portholed serve: --listen '%s' is "
			    "given twice\n", shown);
			return PH_ERR_INVALID;
		}
	}
	(*n)++;
	return 0;
}

/* Why a listener could not bind, in the operator's terms. */
static const char *
listen_error(int rc)
{
	switch (rc) {
	case PH_ERR_EXISTS:
		return "the address is already in use";
	case PH_ERR_DENIED:
		return "permission denied; ports below 1024 need root or "
		    "CAP_NET_BIND_SERVICE";
	case PH_ERR_NOTFOUND:
		return "not an address of this host";
	default:
		return ph_strerror(rc);
	}
}

/* One listener for every --listen address: one accept callback, and one
 * set of unauthenticated-connection caps and counts for all of them. */
static int
start_listeners(struct serve_state *st, const struct listenaddr *la,
    size_t n)
{
	char show[LISTENADDR_SHOW_SIZE];
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = i == 0 ? listener_start(st->srv.loop, st->srv.tls,
		    la[i].host, la[i].port, on_accept, &st->srv,
		    &st->listener) : listener_add(st->listener, la[i].host,
		    la[i].port);
		listenaddr_show(&la[i], show, sizeof(show));
		if (rc != 0) {
			fprintf(stderr, "portholed serve: cannot listen on %s: "
			    "%s\n", show, listen_error(rc));
			return rc;
		}
		log_info("event=listening addr=%s%s%s port=%d",
		    la[i].v6 ? "[" : "", la[i].host, la[i].v6 ? "]" : "",
		    listener_port_at(st->listener, i));
	}
	return 0;
}

/* An optional whole number from config.json in 1..max; anything else
 * is refused with a warning and dflt kept. */
static unsigned
config_uint(json_t *o, const char *key, unsigned dflt, unsigned max)
{
	json_t *v = json_object_get(o, key);
	json_int_t n;

	if (v == NULL)
		return dflt;
	n = json_is_integer(v) ? json_integer_value(v) : 0;
	if (n < 1 || n > (json_int_t)max) {
		log_warn("event=config_ignored key=%s note=\"not a whole "
		    "number from 1 to %u\"", key, max);
		return dflt;
	}
	return (unsigned)n;
}

static void
load_net_config(json_t *o, struct net_config *nc)
{
	nc->max_unauth = config_uint(o, "MaxUnauthenticatedConnections",
	    DEFAULT_MAX_UNAUTH, CONFIG_COUNT_MAX);
	nc->max_unauth_per_source = config_uint(o,
	    "MaxUnauthenticatedPerSource", DEFAULT_MAX_UNAUTH_PER_SOURCE,
	    CONFIG_COUNT_MAX);
	nc->unauth_timeout_s = config_uint(o, "UnauthenticatedTimeoutSeconds",
	    DEFAULT_UNAUTH_TIMEOUT_S, CONFIG_SECONDS_MAX);
	nc->request_timeout_s = config_uint(o, "RequestTimeoutSeconds",
	    DEFAULT_REQUEST_TIMEOUT_S, CONFIG_SECONDS_MAX);
	nc->ws_auth_timeout_s = config_uint(o, "WebSocketAuthTimeoutSeconds",
	    DEFAULT_WS_AUTH_TIMEOUT_S, CONFIG_SECONDS_MAX);
}

/* The audit trail's keys: AuditMaxFileBytes (whole number from
 * AUDIT_MIN_FILE_BYTES to 1 TiB) and AuditSyslog (true or false). */
static void
load_audit_config(json_t *o, struct audit_config *ac)
{
	json_t *v;

	memset(ac, 0, sizeof(*ac));
	ac->max_file_bytes = AUDIT_MAX_FILE_BYTES_DEFAULT;
	if ((v = json_object_get(o, "AuditMaxFileBytes")) != NULL) {
		if (json_is_integer(v) && json_integer_value(v) >=
		    (json_int_t)AUDIT_MIN_FILE_BYTES &&
		    json_integer_value(v) <= ((json_int_t)1 << 40))
			ac->max_file_bytes = (uint64_t)json_integer_value(v);
		else
			log_warn("event=config_ignored key=AuditMaxFileBytes "
			    "note=\"not a whole number from %llu to 2^40\"",
			    (unsigned long long)AUDIT_MIN_FILE_BYTES);
	}
	if ((v = json_object_get(o, "AuditSyslog")) != NULL) {
		if (json_is_boolean(v))
			ac->syslog = json_is_true(v);
		else
			log_warn("event=config_ignored key=AuditSyslog "
			    "note=\"not true or false\"");
	}
}

static void
load_config(struct server *srv, struct net_config *nc,
    struct audit_config *ac, struct audit_sink *as)
{
	char path[600];
	json_error_t jerr;
	const char *v;
	json_t *o;

	snprintf(srv->region, sizeof(srv->region), "us-east-1");
	snprintf(srv->account_id, sizeof(srv->account_id), "000000000000");
	snprintf(path, sizeof(path), "%s/config.json", srv->data_dir);
	o = json_load_file(path, 0, &jerr);
	load_net_config(o, nc);   /* the defaults when o is NULL */
	load_audit_config(o, ac);
	/* Rotated audit files to AuditS3Bucket, through the record sink. */
	audit_sink_config(as, srv, o);
	if (as->bucket[0] != '\0') {
		ac->rotated = audit_sink_rotated;
		ac->rotated_arg = as;
	}
	if (o == NULL)
		return;
	if ((v = json_string_value(json_object_get(o, "Region"))) != NULL)
		snprintf(srv->region, sizeof(srv->region), "%s", v);
	if ((v = json_string_value(json_object_get(o, "AccountId"))) != NULL)
		snprintf(srv->account_id, sizeof(srv->account_id), "%s", v);
	json_decref(o);
}

/* Keep unauthenticated connections to half the descriptors, so a flood
 * of them leaves the rest to agents, sessions and signed requests. */
static void
net_config_apply(struct net_config *nc, unsigned long long nofile,
    struct listener *l)
{
	struct listener_limits lim;
	unsigned long long half = nofile / 2;

	if (half > 0 && nc->max_unauth > half) {
		log_warn("event=config_clamped "
		    "key=MaxUnauthenticatedConnections value=%llu "
		    "note=\"half the descriptor limit %llu\"", half, nofile);
		nc->max_unauth = (unsigned)half;
	}
	if (nc->max_unauth_per_source > nc->max_unauth)
		nc->max_unauth_per_source = nc->max_unauth;
	nc->http.request_timeout_ms = nc->request_timeout_s * 1000;
	nc->http.ws_auth_timeout_ms = nc->ws_auth_timeout_s * 1000;
	memset(&lim, 0, sizeof(lim));
	lim.max_unauth = nc->max_unauth;
	lim.max_unauth_per_source = nc->max_unauth_per_source;
	lim.auth_timeout_ms = nc->unauth_timeout_s * 1000;
	(void)listener_set_limits(l, &lim);
	log_info("event=unauthenticated_limits max=%u per_source=%u "
	    "timeout_s=%u websocket_timeout_s=%u request_timeout_s=%u",
	    nc->max_unauth, nc->max_unauth_per_source, nc->unauth_timeout_s,
	    nc->ws_auth_timeout_s, nc->request_timeout_s);
}

static void
on_tick(uv_timer_t *t)
{
	struct serve_state *st = t->data;
	struct listener_stats ls;

	log_flush_suppressed();
	listener_stats(st->listener, &ls, 1);
#if defined(__GLIBC__)
	/* glibc keeps freed heap pages (a burst of TLS handshakes leaves
	 * ~48 KiB each) unless asked: give them back once a burst is over,
	 * not on every close. */
	if (ls.peak - ls.live >= TRIM_AFTER_CLOSED) {
		(void)malloc_trim(0);
		log_debug("event=memory_trimmed peak=%zu live=%zu", ls.peak,
		    ls.live);
	}
#endif
}

static void
close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void
on_linger_done(uv_timer_t *t)
{
	/* Idle keep-alive connections would keep the loop alive forever. */
	uv_stop(t->loop);
}

/* One descriptor per agent's control channel and two per session: take
 * the hard limit (systemd gives a soft 1024 and a hard 524288). Returns
 * the limit in force. */
static unsigned long long
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			log_warn("event=nofile_raise_failed");
			(void)getrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	log_info("event=nofile limit=%llu", (unsigned long long)rl.rlim_cur);
	return (unsigned long long)rl.rlim_cur;
}

static void
on_signal(uv_signal_t *sig, int signum)
{
	struct serve_state *st = sig->data;

	if (st->srv.shutting_down)
		return;
	log_info("event=shutdown signal=%d drain=%d", signum,
	    signum == SIGUSR2);
	st->srv.shutting_down = 1;
	listener_stop(st->listener);
	st->listener = NULL;
	/* SIGUSR2 drains: sessions stay open for the next portholed. */
	gateway_shutdown(st->srv.gw, signum == SIGUSR2);
	uv_timer_stop(&st->tick);
	uv_signal_stop(&st->sigterm);
	uv_signal_stop(&st->sigint);
	uv_signal_stop(&st->sigusr2);
	uv_signal_stop(&st->sighup);
	uv_close((uv_handle_t *)&st->sighup, NULL);
	uv_close((uv_handle_t *)&st->sigterm, NULL);
	uv_close((uv_handle_t *)&st->sigint, NULL);
	uv_close((uv_handle_t *)&st->sigusr2, NULL);
	/* Give close frames and channel_closed messages a moment to leave. */
	uv_timer_init(sig->loop, &st->linger);
	uv_timer_start(&st->linger, on_linger_done, 1500, 0);
	uv_unref((uv_handle_t *)&st->linger);
}

/* SIGHUP: serve the server certificate and key as they are now on disk
 * (after `portholed cert reissue`); a broken pair keeps the old one. */
static void
on_sighup(uv_signal_t *sig, int signum)
{
	struct serve_state *st = sig->data;
	int rc;

	(void)signum;
	rc = tls_ctx_reload_server(st->srv.tls, st->cert, st->key, st->ca);
	if (rc != 0)
		log_error("event=tls_reload_failed cert=%s err=\"%s\" "
		    "note=\"still serving the previous certificate\"",
		    st->cert, ph_strerror(rc));
	else
		log_info("event=tls_reloaded cert=%s", st->cert);
}

/* State changes the store could not write (disk full) go out once it
 * can write again, even when nothing else writes. */
static void
on_store_retry(uv_timer_t *t)
{
	struct server *srv = t->data;

	(void)store_retry(srv->store);
}

static int
serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "kms-root-passphrase-file", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data_dir = NULL;
	struct listenaddr la[LISTENADDR_MAX];
	struct kms_root_opts kro;
	struct audit_config ac;
	struct audit_sink as;
	char cert[600], key[600], ca[600], db[600], why[300];
	struct serve_state st;
	unsigned long long nofile;
	size_t nla = 0;
	int rc, opt;

	memset(&st, 0, sizeof(st));
	memset(&kro, 0, sizeof(kro));
	kro.create = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "d:l:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': data_dir = optarg; break;
		case 'l':
			if (add_listen(la, &nla, optarg) != 0)
				return 2;
			break;
		case 'P': kro.passphrase_file = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (data_dir == NULL) {
		fprintf(stderr, "portholed serve: --data-dir is required\n");
		return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "portholed serve: unexpected argument '%s'\n",
		    argv[optind]);
		return 2;
	}
	if (nla == 0 && add_listen(la, &nla, DEFAULT_LISTEN) != 0)
		return 2;
	snprintf(st.srv.data_dir, sizeof(st.srv.data_dir), "%s", data_dir);
	snprintf(cert, sizeof(cert), "%s/server.pem", data_dir);
	snprintf(key, sizeof(key), "%s/server.key", data_dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", data_dir);
	snprintf(db, sizeof(db), "%s/" SERVER_DB_FILE, data_dir);
	load_config(&st.srv, &net_cfg, &ac, &as);

	st.srv.loop = uv_default_loop();
	signal(SIGPIPE, SIG_IGN);
	nofile = raise_nofile();
	if ((rc = store_open_ex(&st.srv.store, db, 0, why,
	    sizeof(why))) != 0) {
		if (rc == PH_ERR_NOTFOUND)
			fprintf(stderr, "portholed serve: cannot open %s: %s; "
			    "run 'portholed init --data-dir %s' first\n", db,
			    why, data_dir);
		else
			fprintf(stderr, "portholed serve: cannot open %s: %s\n",
			    db, why);
		return 1;
	}
	/* No audit trail, no service: every call must leave its event. */
	if ((rc = audit_open(&st.srv.audit, data_dir, &ac)) != 0) {
		fprintf(stderr, "portholed serve: cannot open the audit trail "
		    "in %s/%s (%s)\n", data_dir, AUDIT_SUBDIR, ph_strerror(rc));
		store_close(st.srv.store);
		return 1;
	}
	log_info("event=audit_trail dir=%s max_file_bytes=%llu syslog=%d "
	    "bucket=%s", audit_dir(st.srv.audit),
	    (unsigned long long)ac.max_file_bytes, ac.syslog,
	    as.bucket[0] != '\0' ? as.bucket : "(none)");
	if ((rc = kms_open(&st.srv.kms, data_dir, &kro)) != 0) {
		fprintf(stderr, "portholed serve: cannot open the KMS key "
		    "store in %s (%s)\n", data_dir, ph_strerror(rc));
		audit_close(st.srv.audit);
		store_close(st.srv.store);
		return 1;
	}
	/* Keys whose deletion date passed while portholed was down; later
	 * ones go at the next KMS request. */
	kms_purge(st.srv.kms, (int64_t)time(NULL) * 1000);
	if ((rc = tls_ctx_new_server(&st.srv.tls, cert, key, ca)) != 0) {
		fprintf(stderr, "portholed serve: cannot load the TLS "
		    "certificate from %s (%s)\n", data_dir, ph_strerror(rc));
		kms_close(st.srv.kms);
		audit_close(st.srv.audit);
		store_close(st.srv.store);
		return 1;
	}
	/* The record queue (and its config.json keys) before anything that
	 * can finish a record. */
	if ((rc = sink_open(&st.srv, &st.srv.sink)) != 0) {
		fprintf(stderr, "portholed serve: cannot open the record "
		    "delivery queue (%s); see the log\n", ph_strerror(rc));
		goto fail;
	}
	/* Strict mode, and records completed before a crash but not
	 * rendered. */
	records_start(&st.srv);
	if ((rc = gateway_new(&st.srv.gw, &st.srv)) != 0)
		goto fail;
	/* Run Command: resumes the commands a previous process left. */
	if ((rc = commands_new(&st.srv.commands, &st.srv)) != 0)
		goto fail;
	if ((rc = start_listeners(&st, la, nla)) != 0)
		goto fail;
	net_config_apply(&net_cfg, nofile, st.listener);
	uv_timer_init(st.srv.loop, &st.tick);
	st.tick.data = &st;
	uv_timer_start(&st.tick, on_tick, TICK_MS, TICK_MS);
	uv_unref((uv_handle_t *)&st.tick);
	uv_signal_init(st.srv.loop, &st.sigterm);
	uv_signal_init(st.srv.loop, &st.sigint);
	uv_signal_init(st.srv.loop, &st.sigusr2);
	st.sigterm.data = st.sigint.data = st.sigusr2.data = &st;
	uv_signal_start(&st.sigterm, on_signal, SIGTERM);
	uv_signal_start(&st.sigint, on_signal, SIGINT);
	uv_signal_start(&st.sigusr2, on_signal, SIGUSR2);
	st.cert = cert;
	st.key = key;
	st.ca = ca;
	uv_signal_init(st.srv.loop, &st.sighup);
	st.sighup.data = &st;
	uv_signal_start(&st.sighup, on_sighup, SIGHUP);
	uv_timer_init(st.srv.loop, &st.store_retry);
	st.store_retry.data = &st.srv;
	uv_timer_start(&st.store_retry, on_store_retry, STORE_RETRY_MS,
	    STORE_RETRY_MS);
	uv_unref((uv_handle_t *)&st.store_retry);
	log_info("event=serving listeners=%zu region=%s account=%s", nla,
	    st.srv.region, st.srv.account_id);

	uv_run(st.srv.loop, UV_RUN_DEFAULT);

	close_open_conns(st.srv.loop);
	/* Everything still open after shutdown (lingering closes). */
	gateway_free(st.srv.gw);
	st.srv.gw = NULL;
	commands_free(st.srv.commands);
	st.srv.commands = NULL;
	/* An upload in progress stops; its file stays queued. */
	sink_close(st.srv.sink);
	st.srv.sink = NULL;
	uv_walk(st.srv.loop, close_walk_cb, NULL);
	uv_run(st.srv.loop, UV_RUN_DEFAULT);
	rc = 0;
	log_info("event=stopped");
fail:
	if (st.listener)
		listener_stop(st.listener);
	if (st.srv.gw)
		gateway_free(st.srv.gw);
	commands_free(st.srv.commands);
	sink_close(st.srv.sink);
	records_close(&st.srv);
	tls_ctx_free(st.srv.tls);
	kms_close(st.srv.kms);
	authz_free(&st.srv);
	audit_close(st.srv.audit);
	store_close(st.srv.store);
	uv_loop_close(st.srv.loop);
	return rc == 0 ? 0 : 1;
}

/* `portholed kms-rotate-root-key`: re-wrap every KMS key under a new
 * random root key file. Run it with portholed stopped. */
static int
rotate_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "kms-root-passphrase-file", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kms_root_opts kro;
	const char *data_dir = NULL;
	int opt, rc, n = 0;

	memset(&kro, 0, sizeof(kro));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': data_dir = optarg; break;
		case 'P': kro.passphrase_file = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (data_dir == NULL || optind < argc) {
		fprintf(stderr, "portholed kms-rotate-root-key: --data-dir is "
		    "required\n");
		return 2;
	}
	rc = kms_rotate_root_key(data_dir, &kro, &n);
	if (rc != 0) {
		fprintf(stderr, "portholed kms-rotate-root-key: failed (%s)\n",
		    ph_strerror(rc));
		return 1;
	}
	printf("portholed: re-wrapped %d KMS key%s under a new root key in "
	    "%s/%s\n", n, n == 1 ? "" : "s", data_dir, KMS_ROOT_KEY_FILE);
	if (getenv(KMS_ROOT_KEY_ENV) != NULL || kro.passphrase_file != NULL)
		printf("portholed: the new root key is the file %s/%s: start "
		    "portholed without %s and --kms-root-passphrase-file\n",
		    data_dir, KMS_ROOT_KEY_FILE, KMS_ROOT_KEY_ENV);
	return 0;
}

/* `portholed agent-package add FILE --version V [--platform P]` and
 * `portholed agent-package list`: the agent builds AWS-UpdateSSMAgent
 * installs (docs/agent-update.md). Safe while portholed runs. */
static int
agent_package_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "version", required_argument, NULL, 'v' },
		{ "platform", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data_dir = DEFAULT_DATA_DIR, *version = NULL, *sub;
	const char *platform = pkgsig_platform(), *file = NULL;
	char err[1400];
	int opt, rc;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	sub = argv[1];
	optind = 1;
	while ((opt = getopt_long(argc - 1, argv + 1, "d:v:p:h", opts,
	    NULL)) != -1) {
		switch (opt) {
		case 'd': data_dir = optarg; break;
		case 'v': version = optarg; break;
		case 'p': platform = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (strcmp(sub, "list") == 0 && optind == argc - 1 &&
	    version == NULL) {
		rc = agent_packages_list(data_dir, stdout, err, sizeof(err));
	} else if (strcmp(sub, "add") == 0 && optind == argc - 2 &&
	    version != NULL) {
		file = argv[1 + optind];
		rc = agent_packages_add(data_dir, file, platform, version, err,
		    sizeof(err));
	} else {
		fprintf(stderr, "usage: portholed agent-package add FILE "
		    "--version V [--platform P] [--data-dir DIR]\n"
		    "       portholed agent-package list [--data-dir DIR]\n");
		return 2;
	}
	if (rc != 0) {
		fprintf(stderr, "portholed agent-package %s: %s\n", sub,
		    err[0] ? err : ph_strerror(rc));
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	log_set_program("portholed");
	log_init_from_env();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "version") == 0) {
		printf("portholed %s\n", PORTHOLE_AGENT_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "init") == 0)
		return server_init_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "serve") == 0)
		return serve_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "cert") == 0)
		return server_cert_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "kms-rotate-root-key") == 0)
		return rotate_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "agent-package") == 0)
		return agent_package_main(argc - 1, argv + 1);
	fprintf(stderr, "portholed: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
