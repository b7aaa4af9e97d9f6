/* porthole-loadgen: many fake agents in one process against one portholed,
 * for the server-scale row of `make bench` (issue 5, row 7).
 *
 * usage:
 *   porthole-loadgen --endpoint https://127.0.0.1:PORT --ca CA_FILE
 *       --data-dir PORTHOLED_DATA_DIR --agents N --hold SECONDS
 *       [--activation-code C --activation-id I] [--state-cache DIR]
 *       [--sessions-per-second-agents M --sessions-seconds S]
 *       [--session-credentials AWS_CREDENTIALS_FILE]
 *       [--parallel P] [--connect-timeout SECONDS]
 *
 * It registers N instances through POST /v1/register, each with its own
 * EC P-256 key (activations are created with DATA_DIR/admin.credentials
 * unless --activation-code/--activation-id are given; identities are
 * cached in --state-cache so reruns do not register again), then opens N
 * control channels (/v1/control-channel/<id>, mutual TLS, the agent's
 * OpenControlChannel text and its 30 s keep-alive pings) on one libuv loop,
 * at most P (default 200) dialling at once, holds them SECONDS while
 * answering the server's pings, closes them and prints one JSON line:
 *   {"agents_requested":N,"agents_connected":K,"connect_seconds":T,
 *    "failures":F, ...}
 * With --sessions-per-second-agents M, M of the connected agents also
 * answer StartSession for S seconds (after the hold): StartSession signed
 * as admin, the agent opens its data channel and writes one output byte,
 * the client data channel waits for it, TerminateSession; the line then
 * also has "session_cycles" and "sessions_per_second". With
 * --session-credentials the session calls are signed with that file's
 * [porthole] key instead (an IAM user, to measure the policy engine).
 * With --command-delay-ms (command mode, bench/loadgen_command.h) the
 * agents answer Run Command jobs (Failed for every Nth agent with
 * --command-fail-every N); with --send-command DOC a driver also sends
 * one command to them once connected, waits until it is final and adds
 * its summary ("command") to the line; the run then ends.
 * Diagnostics go to stderr; the exit status is 0 if the run completed
 * (whatever it measured; SIGINT or SIGTERM end the hold early and add
 * "interrupted":true), 1 on a setup error, 2 on a usage error. */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "bench/loadgen.h"
#include "bench/loadgen_command.h"
#include "bench/loadgen_session.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/uuid.h"
#include "common/ws.h"

#define LG_PARALLEL_DEFAULT 200
#define LG_CONNECT_TIMEOUT_DEFAULT 30
#define LG_AGENTS_MAX 200000
#define LG_HOLD_MAX (7 * 24 * 3600)
/* The real agent's keep-alive (src/agent/control.c). */
#define LG_KEEPALIVE_MS 30000
#define LG_KEEPALIVE_TIMEOUT_MS 90000
#define LG_CTL_MAX_MESSAGE (((size_t)1 << 20) + CLIENTMSG_PAYLOAD_OFFSET)
#define LG_TICK_MS 250
/* After the hold: how long closes may take before we stop waiting. */
#define LG_CLOSE_WAIT_MS 10000
/* Spare descriptors beyond one per agent (files, listener, curl). */
#define LG_FD_SLACK 256

enum lg_state { AG_IDLE, AG_DIALING, AG_OPEN, AG_CLOSED, AG_FAILED };

struct lg_agent {
	struct lg *lg;
	size_t idx;
	struct tls_ctx *tls;
	struct ws *ws;
	enum lg_state state;
	uint64_t dial_ms;
	struct lg_sess_agent *sess;     /* session mode: its sessions */
};

enum lg_phase { PH_CONNECT, PH_HOLD, PH_SESSIONS, PH_CLOSE, PH_DONE };

struct lg {
	uv_loop_t *loop;
	struct lg_idents ids;
	struct lg_agent *agents;
	size_t n;
	size_t next;                    /* next agent to dial */
	size_t inflight;
	size_t parallel;
	unsigned connect_timeout_ms;
	unsigned hold_s;
	char ws_base[1100];
	const char *ca_file;
	enum lg_phase phase;
	uv_timer_t tick;
	uv_timer_t phase_timer;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	uint64_t t_connect_start;
	uint64_t t_connect_end;
	size_t opened;                  /* reached AG_OPEN */
	size_t open_now;
	size_t failures;
	size_t dropped;                 /* closed by the server while held */
	size_t ctl_messages;            /* control messages received */
	json_t *fail_reasons;           /* reason -> count */
	size_t open_at_hold_end;
	int interrupted;
	struct lg_sessions *sessions;   /* session mode, or NULL */
	size_t sess_agents;
	unsigned sess_seconds;
	struct lg_cmd *cmd;             /* command mode, or NULL */
	int cmd_drive;                  /* --send-command given */
	const char *ready_file;
};

static uint64_t
lg_ms(struct lg *lg)
{
	uv_update_time(lg->loop);
	return uv_now(lg->loop);
}

static void
lg_fail_reason(struct lg *lg, const char *fmt, int v)
{
	char key[96];
	json_t *c;

	snprintf(key, sizeof(key), fmt, v);
	c = json_object_get(lg->fail_reasons, key);
	json_object_set_new(lg->fail_reasons, key,
	    json_integer(c ? json_integer_value(c) + 1 : 1));
}

static void lg_pump(struct lg *lg);
static void lg_connect_maybe_done(struct lg *lg);

/* ---- one agent's control channel ----------------------------------------- */

static void
lg_ag_on_open(struct ws *w)
{
	struct lg_agent *a = ws_userdata(w);
	char rid[UUID_STR_LEN], host[64], *js;
	json_t *o;

	if (a == NULL || a->ws != w)
		return;
	uuid_v4_str(rid);
	snprintf(host, sizeof(host), "loadgen-%zu", a->idx);
	/* What porthole-agent sends first (src/agent/control.c, spec 2.3). */
	o = json_pack("{s:n, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "Cookie", "MessageSchemaVersion", "1.0", "RequestId", rid,
	    "TokenValue", "", "AgentVersion", PORTHOLE_AGENT_VERSION,
	    "PlatformType", "linux", "PlatformName", "porthole-loadgen",
	    "PlatformVersion", "1", "ComputerName", host,
	    "IPAddress", "127.0.0.1");
	js = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (js == NULL || ws_send(w, WS_TEXT, js, strlen(js)) != 0) {
		free(js);
		lg_fail_reason(a->lg, "hello_failed", 0);
		ws_close(w, 1011, "cannot open the control channel");
		return;
	}
	free(js);
	ws_set_keepalive(w, LG_KEEPALIVE_MS, LG_KEEPALIVE_TIMEOUT_MS);
	a->state = AG_OPEN;
	lg_cmd_set_channel(a->lg->cmd, a->idx, w);
	a->lg->opened++;
	a->lg->open_now++;
	a->lg->inflight--;
	a->lg->t_connect_end = lg_ms(a->lg);
	lg_pump(a->lg);
	lg_connect_maybe_done(a->lg);
}

static void
lg_ag_on_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct lg_agent *a = ws_userdata(w);
	struct clientmsg m;

	if (a == NULL || opcode != WS_BINARY)
		return;
	if (clientmsg_decode(&m, p, n, LG_CTL_MAX_MESSAGE -
	    CLIENTMSG_PAYLOAD_OFFSET) != 0) {
		lg_fail_reason(a->lg, "bad_control_frame", 0);
		return;
	}
	a->lg->ctl_messages++;
	if (a->lg->sessions != NULL)
		lg_sess_control_message(a->lg->sessions, a->sess, w, &m);
	if (a->lg->cmd != NULL)
		lg_cmd_control_message(a->lg->cmd, a->idx, &m);
}

static void
lg_ag_on_close(struct ws *w, int code)
{
	struct lg_agent *a = ws_userdata(w);
	struct lg *lg;

	if (a == NULL || a->ws != w)
		return;
	lg = a->lg;
	a->ws = NULL;
	lg_cmd_set_channel(lg->cmd, a->idx, NULL);
	if (a->state == AG_DIALING) {
		a->state = AG_FAILED;
		lg->failures++;
		lg->inflight--;
		lg_fail_reason(lg, "dial_closed_%d", code);
		lg_pump(lg);
		lg_connect_maybe_done(lg);
		return;
	}
	if (a->state == AG_OPEN) {
		lg->open_now--;
		if (lg->phase != PH_CLOSE && lg->phase != PH_DONE) {
			lg->dropped++;
			lg_fail_reason(lg, "dropped_%d", code);
		}
	}
	a->state = AG_CLOSED;
	if (lg->phase == PH_CLOSE && lg->open_now == 0 && lg->inflight == 0)
		uv_stop(lg->loop);
}

static const struct ws_cbs lg_ag_cbs = {
	.on_open = lg_ag_on_open,
	.on_message = lg_ag_on_message,
	.on_close = lg_ag_on_close,
};

static int
lg_dial(struct lg *lg, struct lg_agent *a)
{
	char pem[4200], url[1400];
	int rc;

	if (a->tls == NULL) {
		if ((rc = lg_idents_pem_path(&lg->ids, a->idx, pem,
		    sizeof(pem))) != 0 ||
		    (rc = tls_ctx_new_client(&a->tls, lg->ca_file, pem,
		    pem)) != 0) {
			lg_fail_reason(lg, "tls_context_%d", rc);
			return rc;
		}
	}
	snprintf(url, sizeof(url),
	    "%s/v1/control-channel/%s?role=subscribe&stream=input",
	    lg->ws_base, lg->ids.ids[a->idx]);
	rc = ws_dial(lg->loop, a->tls, url, NULL, &lg_ag_cbs, a, &a->ws);
	if (rc != 0) {
		a->ws = NULL;
		lg_fail_reason(lg, "dial_error_%d", rc);
		return rc;
	}
	ws_set_max_message(a->ws, LG_CTL_MAX_MESSAGE);
	a->state = AG_DIALING;
	a->dial_ms = lg_ms(lg);
	return 0;
}

/* Start dials until P are in flight. */
static void
lg_pump(struct lg *lg)
{
	struct lg_agent *a;

	while (lg->phase == PH_CONNECT && lg->inflight < lg->parallel &&
	    lg->next < lg->n) {
		a = &lg->agents[lg->next++];
		if (lg_dial(lg, a) != 0) {
			a->state = AG_FAILED;
			lg->failures++;
			continue;
		}
		lg->inflight++;
	}
}

/* ---- phases -------------------------------------------------------------- */

static void lg_start_close(struct lg *lg);

static void
lg_close_wait_cb(uv_timer_t *t)
{
	struct lg *lg = t->data;

	log_warn("event=close_wait_expired open=%zu", lg->open_now);
	uv_stop(lg->loop);
}

static void
lg_start_close(struct lg *lg)
{
	size_t i;

	if (lg->phase == PH_CLOSE || lg->phase == PH_DONE)
		return;
	if (lg->phase == PH_HOLD)
		lg->open_at_hold_end = lg->open_now;
	lg->phase = PH_CLOSE;
	if (lg->sessions != NULL)
		lg_sess_stop(lg->sessions);
	lg_cmd_stop(lg->cmd);
	uv_timer_stop(&lg->phase_timer);
	for (i = 0; i < lg->n; i++)
		if (lg->agents[i].ws != NULL)
			ws_close(lg->agents[i].ws, 1001, "loadgen done");
	if (lg->open_now == 0 && lg->inflight == 0) {
		uv_stop(lg->loop);
		return;
	}
	uv_timer_start(&lg->phase_timer, lg_close_wait_cb, LG_CLOSE_WAIT_MS,
	    0);
}

static void
lg_sessions_done(void *arg)
{
	lg_start_close(arg);
}

static void
lg_hold_done_cb(uv_timer_t *t)
{
	struct lg *lg = t->data;
	size_t i, k = 0;

	lg->open_at_hold_end = lg->open_now;
	/* The driver's own wait bounds a command run. */
	if (lg_cmd_busy(lg->cmd))
		return;
	if (lg->sessions == NULL || lg->sess_agents == 0) {
		lg_start_close(lg);
		return;
	}
	lg->phase = PH_SESSIONS;
	for (i = 0; i < lg->n && k < lg->sess_agents; i++) {
		if (lg->agents[i].state != AG_OPEN)
			continue;
		lg->agents[i].sess = lg_sess_agent_add(lg->sessions,
		    lg->ids.ids[i], lg->agents[i].tls);
		if (lg->agents[i].sess != NULL)
			k++;
	}
	lg_sess_run(lg->sessions, lg->sess_seconds, lg_sessions_done, lg);
}

static void
lg_command_done(void *arg)
{
	lg_start_close(arg);
}

/* --ready-file: the connected agents and the failing ones, written once
 * the hold starts (a test waits for it before sending commands). */
static void
lg_write_ready(struct lg *lg)
{
	json_t *o, *on, *fail;
	char tmp[4200];
	size_t i;

	if (lg->ready_file == NULL)
		return;
	on = json_array();
	fail = json_array();
	for (i = 0; i < lg->n; i++) {
		if (lg->agents[i].state != AG_OPEN)
			continue;
		json_array_append_new(on, json_string(lg->ids.ids[i]));
		if (lg->cmd != NULL && lg_cmd_agent_fails(lg->cmd, i))
			json_array_append_new(fail,
			    json_string(lg->ids.ids[i]));
	}
	o = json_pack("{s:o, s:o}", "connected", on, "failing", fail);
	snprintf(tmp, sizeof(tmp), "%s.tmp", lg->ready_file);
	if (o == NULL || json_dump_file(o, tmp, JSON_COMPACT) != 0 ||
	    rename(tmp, lg->ready_file) != 0)
		fprintf(stderr, "porthole-loadgen: cannot write %s\n",
		    lg->ready_file);
	json_decref(o);
}

static void
lg_connect_maybe_done(struct lg *lg)
{
	if (lg->phase != PH_CONNECT || lg->inflight > 0 || lg->next < lg->n)
		return;
	if (lg->t_connect_end < lg->t_connect_start)
		lg->t_connect_end = lg_ms(lg);
	lg->phase = PH_HOLD;
	fprintf(stderr, "porthole-loadgen: %zu of %zu connected in %.2f s, "
	    "holding %u s\n", lg->opened, lg->n,
	    (double)(lg->t_connect_end - lg->t_connect_start) / 1000.0,
	    lg->hold_s);
	uv_timer_start(&lg->phase_timer, lg_hold_done_cb,
	    (uint64_t)lg->hold_s * 1000, 0);
	lg_write_ready(lg);
	if (lg->cmd_drive && lg_cmd_drive(lg->cmd, lg_command_done, lg) != 0)
		lg_start_close(lg);
}

static void
lg_tick_cb(uv_timer_t *t)
{
	struct lg *lg = t->data;
	uint64_t now = lg_ms(lg);
	size_t i;

	if (lg->phase != PH_CONNECT)
		return;
	/* Dials that take too long are given up (ws also stops at 30 s). */
	for (i = 0; i < lg->next; i++) {
		struct lg_agent *a = &lg->agents[i];

		if (a->state == AG_DIALING && a->ws != NULL &&
		    now - a->dial_ms >= lg->connect_timeout_ms) {
			lg_fail_reason(lg, "dial_timeout", 0);
			ws_close(a->ws, 1001, "timed out");
			/* on_close counts the failure. */
			a->dial_ms = UINT64_MAX / 2;
		}
	}
}

/* SIGINT/SIGTERM: close the channels and still print the line (a second
 * signal while closing stops at once). */
static void
lg_on_signal(uv_signal_t *s, int signum)
{
	struct lg *lg = s->data;

	(void)signum;
	lg->interrupted = 1;
	if (lg->phase == PH_CLOSE) {
		uv_stop(lg->loop);
		return;
	}
	lg_start_close(lg);
}

/* ---- setup --------------------------------------------------------------- */

/* One descriptor per agent (two per session-mode agent while a session
 * runs), plus slack. As root the hard limit is raised too. */
static void
lg_raise_nofile(size_t agents, size_t sess_agents)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)agents + 3 * (rlim_t)sess_agents + LG_FD_SLACK;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want) {
		struct rlimit hard = { want, want };

		if (setrlimit(RLIMIT_NOFILE, &hard) == 0)
			return;
		fprintf(stderr, "porthole-loadgen: RLIMIT_NOFILE hard limit "
		    "%llu is below the %llu needed; connections will fail\n",
		    (unsigned long long)rl.rlim_max,
		    (unsigned long long)want);
		want = rl.rlim_max;
	}
	rl.rlim_cur = want;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

/* "https://host:port[/...]" -> "wss://host:port". */
static int
lg_ws_base(const char *endpoint, char *out, size_t outlen)
{
	const char *h;
	size_t n;

	if (strncmp(endpoint, "https://", 8) != 0)
		return PH_ERR_INVALID;
	h = endpoint + 8;
	n = strcspn(h, "/?#");
	if (n == 0 || n + 7 >= outlen)
		return PH_ERR_INVALID;
	snprintf(out, outlen, "wss://%.*s", (int)n, h);
	return 0;
}

static long
lg_rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: porthole-loadgen --endpoint https://HOST:PORT "
	    "--ca CA_FILE\n"
	    "         --data-dir PORTHOLED_DATA_DIR --agents N --hold SECONDS\n"
	    "         [--activation-code C --activation-id I] "
	    "[--state-cache DIR]\n"
	    "         [--sessions-per-second-agents M --sessions-seconds S]\n"
	    "         [--session-credentials AWS_CREDENTIALS_FILE]\n"
	    "         [--parallel P] [--connect-timeout SECONDS]\n"
	    "         [--command-delay-ms MS] [--command-fail-every N]\n"
	    "         [--send-command DOC [--commands CMD] "
	    "[--max-concurrency C]\n"
	    "          [--max-errors E] [--target tag:K=V|tag-key:K|"
	    "instance-ids]\n"
	    "          [--command-timeout SECONDS] [--server-pid PID]]\n"
	    "         [--tag K=V] [--ready-file PATH]\n");
}

static int
lg_num(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9')
		return PH_ERR_INVALID;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v > max)
		return PH_ERR_INVALID;
	*out = v;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "ca", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "agents", required_argument, NULL, 'n' },
		{ "hold", required_argument, NULL, 'H' },
		{ "activation-code", required_argument, NULL, 'C' },
		{ "activation-id", required_argument, NULL, 'I' },
		{ "state-cache", required_argument, NULL, 's' },
		{ "sessions-per-second-agents", required_argument, NULL, 'M' },
		{ "sessions-seconds", required_argument, NULL, 'S' },
		{ "session-credentials", required_argument, NULL, 'K' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "connect-timeout", required_argument, NULL, 't' },
		{ "command-delay-ms", required_argument, NULL, 'D' },
		{ "command-fail-every", required_argument, NULL, 'F' },
		{ "send-command", required_argument, NULL, 'X' },
		{ "commands", required_argument, NULL, 'R' },
		{ "max-concurrency", required_argument, NULL, 'Q' },
		{ "max-errors", required_argument, NULL, 'E' },
		{ "target", required_argument, NULL, 'T' },
		{ "command-timeout", required_argument, NULL, 'W' },
		{ "server-pid", required_argument, NULL, 'P' },
		{ "tag", required_argument, NULL, 'g' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct lg_register_opts ro;
	struct lg lg;
	char err[512];
	const char *endpoint = NULL, *data_dir = NULL, *code = NULL;
	const char *act = NULL, *cache = NULL, *sess_creds = NULL;
	unsigned long agents = 0, hold = 0, m = 0, ss = 0, par, cto;
	unsigned long cdelay = 0, cfail = 0, ctimeout = 600, spid = 0;
	struct lg_cmd_opts co;
	const char *tag = NULL;
	int cmd_mode = 0;
	size_t registered = 0, i;
	uint64_t t0, t_reg;
	json_t *out = NULL;
	char *line;
	int opt, ret = 1, have_agents = 0, have_hold = 0;

	memset(&lg, 0, sizeof(lg));
	memset(&ro, 0, sizeof(ro));
	memset(&co, 0, sizeof(co));
	par = LG_PARALLEL_DEFAULT;
	cto = LG_CONNECT_TIMEOUT_DEFAULT;
	log_set_program("porthole-loadgen");
	log_set_level(LOG_WARN);
	log_init_from_env();
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'e': endpoint = optarg; break;
		case 'c': lg.ca_file = optarg; break;
		case 'd': data_dir = optarg; break;
		case 'C': code = optarg; break;
		case 'I': act = optarg; break;
		case 's': cache = optarg; break;
		case 'K': sess_creds = optarg; break;
		case 'n':
			if (lg_num(optarg, LG_AGENTS_MAX, &agents) != 0)
				goto bad;
			have_agents = 1;
			break;
		case 'H':
			if (lg_num(optarg, LG_HOLD_MAX, &hold) != 0)
				goto bad;
			have_hold = 1;
			break;
		case 'M':
			if (lg_num(optarg, LG_AGENTS_MAX, &m) != 0)
				goto bad;
			break;
		case 'S':
			if (lg_num(optarg, LG_HOLD_MAX, &ss) != 0)
				goto bad;
			break;
		case 'p':
			if (lg_num(optarg, 100000, &par) != 0 || par == 0)
				goto bad;
			break;
		case 't':
			if (lg_num(optarg, 3600, &cto) != 0 || cto == 0)
				goto bad;
			break;
		case 'D':
			if (lg_num(optarg, 3600000, &cdelay) != 0)
				goto bad;
			cmd_mode = 1;
			break;
		case 'F':
			if (lg_num(optarg, LG_AGENTS_MAX, &cfail) != 0)
				goto bad;
			cmd_mode = 1;
			break;
		case 'W':
			if (lg_num(optarg, LG_HOLD_MAX, &ctimeout) != 0 ||
			    ctimeout == 0)
				goto bad;
			break;
		case 'P':
			if (lg_num(optarg, INT_MAX, &spid) != 0 || spid == 0)
				goto bad;
			break;
		case 'X': co.send_document = optarg; cmd_mode = 1; break;
		case 'R': co.commands = optarg; break;
		case 'Q': co.max_concurrency = optarg; break;
		case 'E': co.max_errors = optarg; break;
		case 'T': co.target = optarg; break;
		case 'g': tag = optarg; break;
		case 'r': lg.ready_file = optarg; break;
		case 'h': usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (optind != argc || endpoint == NULL || lg.ca_file == NULL ||
	    !have_agents || !have_hold || (code == NULL) != (act == NULL) ||
	    (data_dir == NULL && code == NULL) || m > agents ||
	    (m > 0 && (ss == 0 || data_dir == NULL)) ||
	    ((co.send_document != NULL || tag != NULL) && data_dir == NULL))
		goto bad;
	if (lg_ws_base(endpoint, lg.ws_base, sizeof(lg.ws_base)) != 0) {
		fprintf(stderr, "porthole-loadgen: --endpoint must be "
		    "https://HOST:PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lg_raise_nofile(agents, m);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	lg.loop = uv_default_loop();
	t0 = lg_ms(&lg);

	ro.endpoint = endpoint;
	ro.ca_file = lg.ca_file;
	ro.data_dir = data_dir;
	ro.activation_id = act;
	ro.activation_code = code;
	ro.cache_dir = cache;
	ro.want = agents;
	if (lg_idents_prepare(&lg.ids, &ro, &registered, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "porthole-loadgen: %s\n", err);
		goto out;
	}
	t_reg = lg_ms(&lg);
	if (registered > 0)
		fprintf(stderr, "porthole-loadgen: registered %zu instances "
		    "in %.2f s\n", registered, (double)(t_reg - t0) / 1000.0);

	lg.n = agents;
	lg.parallel = par;
	lg.connect_timeout_ms = (unsigned)cto * 1000;
	lg.hold_s = (unsigned)hold;
	lg.fail_reasons = json_object();
	if (lg.n > 0 && (lg.agents = calloc(lg.n, sizeof(*lg.agents))) ==
	    NULL) {
		fprintf(stderr, "porthole-loadgen: out of memory\n");
		goto out;
	}
	for (i = 0; i < lg.n; i++) {
		lg.agents[i].lg = &lg;
		lg.agents[i].idx = i;
	}
	if (m > 0) {
		struct lg_admin admin;

		if (lg_admin_load(&admin, data_dir, endpoint, lg.ca_file, err,
		    sizeof(err)) != 0 ||
		    (sess_creds != NULL && lg_admin_use_credentials(&admin,
		    sess_creds, err, sizeof(err)) != 0) ||
		    lg_sess_new(&lg.sessions, lg.loop, &admin, lg.ws_base,
		    err, sizeof(err)) != 0) {
			lg_admin_clear(&admin);
			fprintf(stderr, "porthole-loadgen: %s\n", err);
			goto out;
		}
		lg_admin_clear(&admin);
		lg.sess_agents = m;
		lg.sess_seconds = (unsigned)ss;
	}
	if (cmd_mode || tag != NULL) {
		struct lg_admin admin;
		int crc;

		memset(&admin, 0, sizeof(admin));
		if (data_dir != NULL && lg_admin_load(&admin, data_dir,
		    endpoint, lg.ca_file, err, sizeof(err)) != 0) {
			fprintf(stderr, "porthole-loadgen: %s\n", err);
			goto out;
		}
		if (tag != NULL) {
			uint64_t tt = lg_ms(&lg);

			if (lg_cmd_tag_agents(&admin, lg.ids.ids, lg.n, tag,
			    err, sizeof(err)) != 0) {
				lg_admin_clear(&admin);
				fprintf(stderr, "porthole-loadgen: %s\n", err);
				goto out;
			}
			fprintf(stderr, "porthole-loadgen: tagged %zu "
			    "instances in %.2f s\n", lg.n,
			    (double)(lg_ms(&lg) - tt) / 1000.0);
		}
		co.delay_ms = (unsigned)cdelay;
		co.fail_every = (unsigned)cfail;
		co.timeout_s = (unsigned)ctimeout;
		co.server_pid = (long)spid;
		crc = lg_cmd_new(&lg.cmd, lg.loop, lg.n, lg.ids.ids, &co,
		    &admin);
		lg_admin_clear(&admin);
		if (crc != 0) {
			fprintf(stderr, "porthole-loadgen: out of memory\n");
			goto out;
		}
		lg.cmd_drive = co.send_document != NULL;
	}
	uv_timer_init(lg.loop, &lg.tick);
	uv_timer_init(lg.loop, &lg.phase_timer);
	uv_signal_init(lg.loop, &lg.sigint);
	uv_signal_init(lg.loop, &lg.sigterm);
	lg.tick.data = lg.phase_timer.data = &lg;
	lg.sigint.data = lg.sigterm.data = &lg;
	uv_timer_start(&lg.tick, lg_tick_cb, LG_TICK_MS, LG_TICK_MS);
	uv_signal_start(&lg.sigint, lg_on_signal, SIGINT);
	uv_signal_start(&lg.sigterm, lg_on_signal, SIGTERM);

	lg.phase = PH_CONNECT;
	lg.t_connect_start = lg_ms(&lg);
	lg_pump(&lg);
	lg_connect_maybe_done(&lg);
	uv_run(lg.loop, UV_RUN_DEFAULT);
	lg.phase = PH_DONE;
	/* A driver still waiting (a signal ended the run) is bounded by its
	 * own timeout; its memory must outlive it. */
	while (lg_cmd_busy(lg.cmd))
		uv_run(lg.loop, UV_RUN_ONCE);

	out = json_pack("{s:I, s:I, s:f, s:I}",
	    "agents_requested", (json_int_t)lg.n,
	    "agents_connected", (json_int_t)lg.opened,
	    "connect_seconds", (double)(lg.t_connect_end -
	    lg.t_connect_start) / 1000.0,
	    "failures", (json_int_t)(lg.failures + lg.dropped));
	if (out == NULL)
		goto out;
	json_object_set_new(out, "dial_failures",
	    json_integer((json_int_t)lg.failures));
	json_object_set_new(out, "dropped_while_held",
	    json_integer((json_int_t)lg.dropped));
	json_object_set_new(out, "open_at_hold_end",
	    json_integer((json_int_t)lg.open_at_hold_end));
	json_object_set_new(out, "hold_seconds", json_integer(
	    (json_int_t)lg.hold_s));
	json_object_set_new(out, "parallel", json_integer((json_int_t)par));
	json_object_set_new(out, "registered_now",
	    json_integer((json_int_t)registered));
	json_object_set_new(out, "register_seconds",
	    json_real((double)(t_reg - t0) / 1000.0));
	json_object_set_new(out, "control_messages",
	    json_integer((json_int_t)lg.ctl_messages));
	json_object_set_new(out, "loadgen_rss_kb", json_integer(lg_rss_kb()));
	json_object_set(out, "failure_reasons", lg.fail_reasons);
	if (lg.interrupted)
		json_object_set_new(out, "interrupted", json_true());
	if (lg.sessions != NULL)
		lg_sess_report(lg.sessions, out);
	if (lg.cmd != NULL)
		lg_cmd_report(lg.cmd, out);
	line = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(6));
	if (line != NULL) {
		printf("%s\n", line);
		fflush(stdout);
		free(line);
	}
	ret = 0;
	/* Connections still closing when the wait ran out are left to the
	 * exit: the process ends here. */
out:
	if (lg.sessions != NULL)
		lg_sess_free(lg.sessions);
	lg_cmd_free(lg.cmd);
	for (i = 0; lg.agents != NULL && i < lg.n; i++)
		if (lg.agents[i].tls != NULL)
			tls_ctx_free(lg.agents[i].tls);
	free(lg.agents);
	json_decref(out);
	json_decref(lg.fail_reasons);
	lg_idents_free(&lg.ids);
	curl_global_cleanup();
	return ret;
bad:
	usage(stderr);
	return 2;
}
