/* loadgen_session: StartSession -> first output byte cycles (issue 5, row
 * 7). Each participating fake agent runs one cycle at a time:
 *   1. StartSession {"Target": id}, signed as admin (a worker thread:
 *      libcurl blocks);
 *   2. the agent's control channel gets interactive_shell (spec 8.2); the
 *      agent dials /v1/data-channel/<session> with its certificate, sends
 *      OpenDataChannel as porthole-agent does and one output_stream_data
 *      frame with one byte;
 *   3. the client dials the StreamUrl without a certificate, sends
 *      OpenDataChannel with the TokenValue (spec 2.1) and waits for that
 *      byte: the cycle counts from 1 to here;
 *   4. TerminateSession; the next cycle starts when both data channels
 *      have closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen_session.h"
#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"

#define LS_CYCLE_TIMEOUT_MS 30000
#define LS_RESP_MAX ((size_t)256 << 10)
#define LS_DATA_MAX_MESSAGE ((size_t)64 * 1024 + 28 + CLIENTMSG_PAYLOAD_OFFSET)
#define LS_LATENCIES_MAX ((size_t)1 << 20)
#define LS_TICK_MS 250
/* Worker threads for the blocking API calls. */
#define LS_THREADPOOL "16"

enum ls_work { LW_START, LW_TERMINATE };

struct lg_sess_agent {
	struct lg_sessions *s;
	char instance_id[LG_ID_MAX + 1];
	struct tls_ctx *tls;
	/* the current cycle */
	int busy;
	int failed;
	int got_byte;
	int term_pending;               /* TerminateSession queued/running */
	int work_busy;
	uint64_t t0;
	char session_id[128];
	char *token;
	char *stream_url;
	struct ws *agent_dc;
	struct ws *client_dc;
	/* the API call on a worker thread */
	uv_work_t work;
	enum ls_work kind;
	char body[256];
	struct buf resp;
	char err[512];
	int rc;
};

struct lg_sessions {
	uv_loop_t *loop;
	struct lg_admin admin;
	char ws_base[1100];
	struct tls_ctx *client_tls;
	struct lg_sess_agent **agents;
	size_t n, cap;
	int running;
	int stopping;
	uv_timer_t timer;
	int timer_init;
	uint64_t t_start, t_end, deadline;
	void (*done)(void *);
	void *done_arg;
	size_t cycles, failures, started;
	size_t late;                    /* first byte after the deadline */
	double *lat;
	size_t nlat, lat_cap;
	json_t *fail_reasons;
};

static uint64_t
ls_now(struct lg_sessions *s)
{
	uv_update_time(s->loop);
	return uv_now(s->loop);
}

static void
ls_fail(struct lg_sess_agent *a, const char *why)
{
	json_t *c;

	if (a->failed)
		return;
	a->failed = 1;
	a->s->failures++;
	c = json_object_get(a->s->fail_reasons, why);
	json_object_set_new(a->s->fail_reasons, why,
	    json_integer(c ? json_integer_value(c) + 1 : 1));
	log_info("event=session_cycle_failed instance=%s session=%s why=%s",
	    a->instance_id, a->session_id, why);
}

static void ls_cycle_start(struct lg_sess_agent *a);
static void ls_queue(struct lg_sess_agent *a, enum ls_work kind);

/* The cycle is over when the API is quiet and both channels closed. */
static void
ls_cycle_maybe_end(struct lg_sess_agent *a)
{
	struct lg_sessions *s = a->s;

	if (!a->busy || a->work_busy)
		return;
	if (a->session_id[0] != '\0' && !a->term_pending &&
	    (a->failed || a->got_byte)) {
		/* A session exists and nobody ended it yet. */
		ls_queue(a, LW_TERMINATE);
		if (a->work_busy)
			return;
	}
	if (a->agent_dc != NULL || a->client_dc != NULL)
		return;
	if (a->session_id[0] != '\0' && !a->term_pending)
		return; /* still running: waits for its byte or timeout */
	a->busy = 0;
	free(a->token);
	free(a->stream_url);
	a->token = a->stream_url = NULL;
	if (s->running && !s->stopping)
		ls_cycle_start(a);
}

/* ---- the agent's data channel -------------------------------------------- */

static void
ls_adc_on_open(struct ws *w)
{
	struct lg_sess_agent *a = ws_userdata(w);
	char rid[UUID_STR_LEN], *js;
	uint8_t id[16];
	struct buf b;
	json_t *o;
	int rc;

	if (a == NULL || a->agent_dc != w)
		return;
	uuid_v4_str(rid);
	/* What porthole-agent sends (src/agent/session.c, spec 2.3). */
	o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "MessageSchemaVersion",
	    "1.0", "RequestId", rid, "TokenValue", "", "ClientInstanceId",
	    a->instance_id, "ClientId", "");
	js = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	rc = js != NULL ? ws_send(w, WS_TEXT, js, strlen(js)) : PH_ERR_NOMEM;
	free(js);
	if (rc == 0) {
		/* spec 3.3: the first output, sequence 0. */
		buf_init(&b, 4096);
		uuid_v4(id);
		rc = clientmsg_encode(&b, MT_OUTPUT_STREAM, 0, 0, id,
		    PT_OUTPUT, "$", 1);
		if (rc == 0)
			rc = ws_send(w, WS_BINARY, b.data, b.len);
		buf_free(&b);
	}
	if (rc != 0) {
		ls_fail(a, "agent_send");
		ws_close(w, 1011, "loadgen");
	}
}

static void
ls_adc_on_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	(void)w;
	(void)opcode;
	(void)p;
	(void)n;
}

static void
ls_adc_on_close(struct ws *w, int code)
{
	struct lg_sess_agent *a = ws_userdata(w);

	(void)code;
	if (a == NULL || a->agent_dc != w)
		return;
	a->agent_dc = NULL;
	if (!a->got_byte)
		ls_fail(a, "agent_data_channel_closed");
	ls_cycle_maybe_end(a);
}

static const struct ws_cbs ls_adc_cbs = {
	.on_open = ls_adc_on_open,
	.on_message = ls_adc_on_message,
	.on_close = ls_adc_on_close,
};

void
lg_sess_control_message(struct lg_sessions *s, struct lg_sess_agent *a,
    struct ws *ctl, const struct clientmsg *m)
{
	const char *sid;
	char url[1400];
	json_t *o;

	(void)ctl;
	if (s == NULL || a == NULL ||
	    strcmp(m->type, MT_INTERACTIVE_SHELL) != 0)
		return;
	o = json_loadb((const char *)m->payload, m->payload_len, 0, NULL);
	sid = json_string_value(json_object_get(o, "TaskId"));
	if (sid == NULL || strlen(sid) >= sizeof(a->session_id) ||
	    sid[strspn(sid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
	    "WXYZ0123456789-_.")] != '\0') {
		json_decref(o);
		return;
	}
	if (!a->busy || a->agent_dc != NULL || a->failed || a->got_byte ||
	    (a->session_id[0] != '\0' && strcmp(a->session_id, sid) != 0)) {
		/* Not ours (a late start of a cycle given up): ignore. */
		json_decref(o);
		return;
	}
	/* The control message usually beats the StartSession answer. */
	snprintf(a->session_id, sizeof(a->session_id), "%s", sid);
	json_decref(o);
	snprintf(url, sizeof(url), "%s/v1/data-channel/%s?role=publish_"
	    "subscribe", s->ws_base, a->session_id);
	if (ws_dial(s->loop, a->tls, url, NULL, &ls_adc_cbs, a,
	    &a->agent_dc) != 0) {
		a->agent_dc = NULL;
		ls_fail(a, "agent_dial");
		return;
	}
	ws_set_max_message(a->agent_dc, LS_DATA_MAX_MESSAGE);
}

/* ---- the client's data channel ------------------------------------------- */

static void
ls_cdc_on_open(struct ws *w)
{
	struct lg_sess_agent *a = ws_userdata(w);
	char rid[UUID_STR_LEN], cid[UUID_STR_LEN], *js;
	json_t *o;

	if (a == NULL || a->client_dc != w)
		return;
	uuid_v4_str(rid);
	uuid_v4_str(cid);
	/* spec 2.1: what the session-manager-plugin sends first. */
	o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "MessageSchemaVersion",
	    "1.0", "RequestId", rid, "TokenValue", a->token, "ClientId", cid,
	    "ClientVersion", PORTHOLE_CLIENT_VERSION);
	js = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (js == NULL || ws_send(w, WS_TEXT, js, strlen(js)) != 0) {
		ls_fail(a, "client_send");
		ws_close(w, 1011, "loadgen");
	}
	free(js);
}

static void
ls_cdc_on_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct lg_sess_agent *a = ws_userdata(w);
	struct lg_sessions *s;
	struct clientmsg m;

	if (a == NULL || a->client_dc != w || opcode != WS_BINARY ||
	    a->got_byte || a->failed)
		return;
	s = a->s;
	if (clientmsg_decode(&m, p, n, LS_DATA_MAX_MESSAGE -
	    CLIENTMSG_PAYLOAD_OFFSET) != 0)
		return;
	if (strcmp(m.type, MT_OUTPUT_STREAM) != 0 ||
	    m.payload_type != PT_OUTPUT || m.payload_len == 0)
		return;
	a->got_byte = 1;
	if (ls_now(s) <= s->deadline) {
		s->cycles++;
		if (s->nlat < s->lat_cap)
			s->lat[s->nlat++] = (double)(ls_now(s) - a->t0);
	} else
		s->late++;
	ls_queue(a, LW_TERMINATE);
}

static void
ls_cdc_on_close(struct ws *w, int code)
{
	struct lg_sess_agent *a = ws_userdata(w);

	(void)code;
	if (a == NULL || a->client_dc != w)
		return;
	a->client_dc = NULL;
	if (!a->got_byte)
		ls_fail(a, "client_data_channel_closed");
	ls_cycle_maybe_end(a);
}

static const struct ws_cbs ls_cdc_cbs = {
	.on_open = ls_cdc_on_open,
	.on_message = ls_cdc_on_message,
	.on_close = ls_cdc_on_close,
};

/* ---- API calls on worker threads ----------------------------------------- */

static void
ls_work_cb(uv_work_t *req)
{
	struct lg_sess_agent *a = req->data;

	a->rc = lg_ssm_call(&a->s->admin, a->kind == LW_START ?
	    "StartSession" : "TerminateSession", a->body, &a->resp, a->err,
	    sizeof(a->err));
}

static void
ls_started(struct lg_sess_agent *a)
{
	struct lg_sessions *s = a->s;
	const char *sid, *tok, *url;
	json_t *o;

	o = json_loadb((const char *)a->resp.data, a->resp.len, 0, NULL);
	sid = json_string_value(json_object_get(o, "SessionId"));
	tok = json_string_value(json_object_get(o, "TokenValue"));
	url = json_string_value(json_object_get(o, "StreamUrl"));
	if (sid == NULL || tok == NULL || url == NULL ||
	    strlen(sid) >= sizeof(a->session_id) ||
	    strncmp(url, "wss://", 6) != 0) {
		json_decref(o);
		ls_fail(a, "start_session_answer");
		return;
	}
	if (a->session_id[0] != '\0' && strcmp(a->session_id, sid) != 0) {
		json_decref(o);
		ls_fail(a, "session_id_mismatch");
		return;
	}
	snprintf(a->session_id, sizeof(a->session_id), "%s", sid);
	a->token = strdup(tok);
	a->stream_url = strdup(url);
	json_decref(o);
	if (a->token == NULL || a->stream_url == NULL ||
	    ws_dial(s->loop, s->client_tls, a->stream_url, NULL, &ls_cdc_cbs,
	    a, &a->client_dc) != 0) {
		a->client_dc = NULL;
		ls_fail(a, "client_dial");
		/* The session exists: end it. */
		ls_queue(a, LW_TERMINATE);
		return;
	}
	ws_set_max_message(a->client_dc, LS_DATA_MAX_MESSAGE);
}

static void
ls_after_work_cb(uv_work_t *req, int status)
{
	struct lg_sess_agent *a = req->data;
	enum ls_work kind = a->kind;

	a->work_busy = 0;
	if (status != 0)
		a->rc = PH_ERR_STATE;
	if (kind == LW_START) {
		if (a->rc != 0) {
			log_warn("event=start_session_failed instance=%s "
			    "err=\"%s\"", a->instance_id, a->err);
			ls_fail(a, "start_session");
		} else if (!a->failed) {
			/* After the deadline too: cycles under way finish,
			 * uncounted. */
			ls_started(a);
		} else {
			ls_queue(a, LW_TERMINATE);
		}
	} else {
		if (a->rc != 0)
			log_info("event=terminate_session_failed session=%s "
			    "err=\"%s\"", a->session_id, a->err);
		/* The server closes both channels; make sure. */
		if (a->client_dc != NULL)
			ws_close(a->client_dc, 1000, "done");
	}
	ls_cycle_maybe_end(a);
}

static void
ls_queue(struct lg_sess_agent *a, enum ls_work kind)
{
	if (a->work_busy)
		return;
	if (kind == LW_TERMINATE) {
		if (a->term_pending || a->session_id[0] == '\0')
			return;
		a->term_pending = 1;
		snprintf(a->body, sizeof(a->body), "{\"SessionId\":\"%s\"}",
		    a->session_id);
	} else {
		snprintf(a->body, sizeof(a->body), "{\"Target\":\"%s\"}",
		    a->instance_id);
	}
	a->kind = kind;
	a->work.data = a;
	a->work_busy = 1;
	if (uv_queue_work(a->s->loop, &a->work, ls_work_cb,
	    ls_after_work_cb) != 0) {
		a->work_busy = 0;
		ls_fail(a, "queue_work");
	}
}

static void
ls_cycle_start(struct lg_sess_agent *a)
{
	a->busy = 1;
	a->failed = 0;
	a->got_byte = 0;
	a->term_pending = 0;
	a->session_id[0] = '\0';
	a->t0 = ls_now(a->s);
	a->s->started++;
	ls_queue(a, LW_START);
	if (a->failed)
		a->busy = 0;
}

/* ---- running ------------------------------------------------------------- */

static void
ls_finish(struct lg_sessions *s)
{
	void (*fn)(void *) = s->done;

	if (!s->running)
		return;
	s->running = 0;
	if (s->t_end == 0)
		s->t_end = ls_now(s);
	uv_timer_stop(&s->timer);
	s->done = NULL;
	if (fn != NULL)
		fn(s->done_arg);
}

static void
ls_tick_cb(uv_timer_t *t)
{
	struct lg_sessions *s = t->data;
	uint64_t now = ls_now(s);
	size_t i, busy = 0;

	if (!s->stopping && now >= s->deadline) {
		s->stopping = 1;
		s->t_end = s->deadline;
	}
	for (i = 0; i < s->n; i++) {
		struct lg_sess_agent *a = s->agents[i];

		if (!a->busy)
			continue;
		busy++;
		if (now - a->t0 < LS_CYCLE_TIMEOUT_MS)
			continue;
		/* Stuck: give up on this cycle, end what is open. */
		ls_fail(a, "cycle_timeout");
		if (a->agent_dc != NULL)
			ws_close(a->agent_dc, 1001, "timeout");
		if (a->client_dc != NULL)
			ws_close(a->client_dc, 1001, "timeout");
		ls_queue(a, LW_TERMINATE);
		a->t0 = now; /* another full timeout before we look again */
	}
	if (s->stopping && busy == 0)
		ls_finish(s);
}

int
lg_sess_new(struct lg_sessions **out, uv_loop_t *loop,
    const struct lg_admin *admin, const char *ws_base, char *err,
    size_t errlen)
{
	struct lg_sessions *s;

	*out = NULL;
	/* Before the loop's thread pool starts (the first getaddrinfo). */
	setenv("UV_THREADPOOL_SIZE", LS_THREADPOOL, 0);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return PH_ERR_NOMEM;
	s->loop = loop;
	s->admin = *admin;
	snprintf(s->ws_base, sizeof(s->ws_base), "%s", ws_base);
	s->fail_reasons = json_object();
	s->lat_cap = LS_LATENCIES_MAX;
	s->lat = calloc(s->lat_cap, sizeof(*s->lat));
	if (s->lat == NULL || s->fail_reasons == NULL ||
	    tls_ctx_new_client(&s->client_tls, admin->ca_file, NULL,
	    NULL) != 0) {
		snprintf(err, errlen, "cannot set up the client side");
		lg_sess_free(s);
		return PH_ERR_NOMEM;
	}
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	s->timer_init = 1;
	*out = s;
	return 0;
}

struct lg_sess_agent *
lg_sess_agent_add(struct lg_sessions *s, const char *instance_id,
    struct tls_ctx *tls)
{
	struct lg_sess_agent *a, **p;
	size_t cap;

	if (s->n == s->cap) {
		cap = s->cap ? s->cap * 2 : 64;
		if ((p = realloc(s->agents, cap * sizeof(*p))) == NULL)
			return NULL;
		s->agents = p;
		s->cap = cap;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->s = s;
	a->tls = tls;
	snprintf(a->instance_id, sizeof(a->instance_id), "%s", instance_id);
	buf_init(&a->resp, LS_RESP_MAX);
	s->agents[s->n++] = a;
	return a;
}

void
lg_sess_run(struct lg_sessions *s, unsigned seconds, void (*done)(void *),
    void *arg)
{
	size_t i;

	s->done = done;
	s->done_arg = arg;
	s->running = 1;
	s->t_start = ls_now(s);
	s->deadline = s->t_start + (uint64_t)seconds * 1000;
	fprintf(stderr, "porthole-loadgen: session cycles on %zu agents for "
	    "%u s\n", s->n, seconds);
	uv_timer_start(&s->timer, ls_tick_cb, LS_TICK_MS, LS_TICK_MS);
	for (i = 0; i < s->n; i++)
		ls_cycle_start(s->agents[i]);
	if (s->n == 0) {
		s->stopping = 1;
		ls_finish(s);
	}
}

void
lg_sess_stop(struct lg_sessions *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (!s->stopping) {
		s->stopping = 1;
		if (s->running && s->t_end == 0)
			s->t_end = ls_now(s);
	}
	for (i = 0; i < s->n; i++) {
		struct lg_sess_agent *a = s->agents[i];

		if (a->agent_dc != NULL)
			ws_close(a->agent_dc, 1001, "loadgen done");
		if (a->client_dc != NULL)
			ws_close(a->client_dc, 1001, "loadgen done");
	}
	s->running = 0;
	uv_timer_stop(&s->timer);
}

static int
ls_cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

void
lg_sess_report(struct lg_sessions *s, json_t *out)
{
	double secs = 0;

	if (s->t_end > s->t_start)
		secs = (double)(s->t_end - s->t_start) / 1000.0;
	json_object_set_new(out, "session_agents",
	    json_integer((json_int_t)s->n));
	json_object_set_new(out, "session_seconds", json_real(secs));
	json_object_set_new(out, "session_cycles",
	    json_integer((json_int_t)s->cycles));
	json_object_set_new(out, "sessions_per_second",
	    json_real(secs > 0 ? (double)s->cycles / secs : 0));
	json_object_set_new(out, "session_cycles_after_deadline",
	    json_integer((json_int_t)s->late));
	json_object_set_new(out, "session_failures",
	    json_integer((json_int_t)s->failures));
	if (s->nlat > 0) {
		qsort(s->lat, s->nlat, sizeof(*s->lat), ls_cmp);
		json_object_set_new(out, "session_first_byte_ms_p50",
		    json_real(s->lat[s->nlat / 2]));
		json_object_set_new(out, "session_first_byte_ms_p99",
		    json_real(s->lat[(s->nlat * 99) / 100]));
	}
	json_object_set(out, "session_failure_reasons", s->fail_reasons);
}

void
lg_sess_free(struct lg_sessions *s)
{
	size_t i;

	if (s == NULL)
		return;
	/* Agents with work on a thread or a channel still open stay
	 * allocated: the process is about to end. */
	for (i = 0; i < s->n; i++) {
		struct lg_sess_agent *a = s->agents[i];

		if (a->work_busy || a->agent_dc != NULL ||
		    a->client_dc != NULL)
			continue;
		buf_free(&a->resp);
		free(a->token);
		free(a->stream_url);
		free(a);
	}
	free(s->agents);
	free(s->lat);
	json_decref(s->fail_reasons);
	if (s->client_tls != NULL)
		tls_ctx_free(s->client_tls);
	lg_admin_clear(&s->admin);
	if (s->timer_init)
		uv_close((uv_handle_t *)&s->timer, NULL);
	free(s);
}
