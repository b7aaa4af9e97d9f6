#include "agent/control.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/backoff.h"
#include "agent/jsonci.h"
#include "agent/runcommand.h"
#include "agent/session.h"
#include "agent/sysinfo.h"
#include "agent/task.h"
#include "agent/version.h"
#include "common/buf.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"
#include "common/ws.h"

/* spec 10.4 [R]: control-channel messages up to 1 MiB. */
#define CTL_MAX_PAYLOAD ((size_t)1 << 20)
#define CTL_MAX_MESSAGE (CTL_MAX_PAYLOAD + CLIENTMSG_PAYLOAD_OFFSET)
#define CTL_KEEPALIVE_MS 30000
#define CTL_KEEPALIVE_TIMEOUT_MS 90000
/* spec 8.2: agent_task_complete is resent every 1 s, 3 sends in all. */
#define CTL_COMPLETE_INTERVAL_MS 1000
#define CTL_COMPLETE_ATTEMPTS 3
/* A result waiting for the control channel to come back is kept this
 * long at most. */
#define CTL_COMPLETE_KEEP_MS (5 * 60 * 1000)
/* spec 10.1: sessions at once. */
#define CTL_MAX_SESSIONS 1000
/* After SIGTERM, stop waiting for sessions and sockets after this. */
#define CTL_SHUTDOWN_MS 6000

struct ctl_session {
	struct ctl_session *next;
	struct agent_session *s;
};

/* A session result waiting for agent_task_acknowledge. */
struct ctl_complete {
	struct ctl_complete *next;
	char session_id[AGENT_SESSION_ID_MAX + 1];
	char status[16];
	char *output;
	uint8_t message_id[16];  /* the same on every resend (spec 8.2) */
	int sent;                /* sends so far */
	uint64_t next_at;
	uint64_t expires_at;
};

struct agent_control {
	uv_loop_t *loop;
	struct agent_ctx ctx;
	struct agent_sysinfo si;
	struct ws *ws;
	int ws_open;
	uint64_t opened_ms;
	struct agent_backoff bo;
	unsigned attempt;
	uv_timer_t redial;
	uv_timer_t tick;         /* 1 s: task results, shutdown deadline */
	int handles;
	struct ctl_session *sessions;
	size_t nsessions;
	struct ctl_complete *completes;
	struct runcommand *rc;   /* Run Command (borrowed), may be NULL */
	int stopping;
	int ws_closing;
	int forced;
	uint64_t stop_deadline;
	void (*on_stopped)(void *);
	void *stopped_arg;
};

static uint64_t
ctl_now(void)
{
	return uv_hrtime() / 1000000;
}

static void ctl_dial(struct agent_control *c);
static void ctl_maybe_stopped(struct agent_control *c);

/* ---- sending ------------------------------------------------------------- */

/* One control-channel frame (spec 3.6: seq 0, flags 0, PayloadType 0). */
static int
ctl_send(struct agent_control *c, const char *type, const uint8_t id[16],
    const char *payload)
{
	struct buf b;
	uint8_t fresh[16];
	int rc;

	if (c->ws == NULL || !c->ws_open)
		return PH_ERR_STATE;
	if (id == NULL) {
		uuid_v4(fresh);
		id = fresh;
	}
	buf_init(&b, CTL_MAX_MESSAGE);
	rc = clientmsg_encode(&b, type, 0, 0, id, PT_NONE, payload,
	    strlen(payload));
	if (rc == 0)
		rc = ws_send(c->ws, WS_BINARY, b.data, b.len);
	buf_free(&b);
	return rc;
}

static int
ctl_send_complete(struct agent_control *c, struct ctl_complete *k)
{
	json_t *o;
	char *js;
	int rc = PH_ERR_NOMEM;

	/* spec 8.2: the agent_task_complete payload. */
	o = json_pack("{s:i, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s, "
	    "s:s, s:s, s:i}",
	    "SchemaVersion", 1, "TaskId", k->session_id,
	    "Topic", MT_AGENT_TASK_COMPLETE, "FinalTaskStatus", k->status,
	    "IsRoutingFailure", 0, "AwsAccountId", "",
	    "InstanceId", c->ctx.st->instance_id,
	    "Output", k->output ? k->output : "",
	    "S3Bucket", "", "S3UrlSuffix", "", "CwlGroup", "",
	    "CwlStream", k->session_id, "RetryNumber", k->sent + 1);
	js = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (js != NULL) {
		rc = ctl_send(c, MT_AGENT_TASK_COMPLETE, k->message_id, js);
		free(js);
	}
	if (rc == 0) {
		k->sent++;
		log_info("event=task_complete_sent session=%s status=%s try=%d",
		    k->session_id, k->status, k->sent);
	}
	return rc;
}

static void
ctl_complete_free(struct ctl_complete *k)
{
	free(k->output);
	free(k);
}

/* Send what is due, drop what was sent often enough or waited too long. */
static void
ctl_run_completes(struct agent_control *c, uint64_t now)
{
	struct ctl_complete **pp = &c->completes, *k;

	while ((k = *pp) != NULL) {
		if (k->sent >= CTL_COMPLETE_ATTEMPTS || now >= k->expires_at) {
			if (k->sent >= CTL_COMPLETE_ATTEMPTS)
				log_warn("event=task_complete_unacked "
				    "session=%s", k->session_id);
			else
				log_warn("event=task_complete_expired "
				    "session=%s", k->session_id);
			*pp = k->next;
			ctl_complete_free(k);
			continue;
		}
		if (now >= k->next_at && c->ws_open &&
		    ctl_send_complete(c, k) == 0)
			k->next_at = now + CTL_COMPLETE_INTERVAL_MS;
		pp = &k->next;
	}
}

/* ---- sessions ------------------------------------------------------------ */

static struct ctl_session *
ctl_find(struct agent_control *c, const char *session_id)
{
	struct ctl_session *e;

	for (e = c->sessions; e != NULL; e = e->next)
		if (strcmp(agent_session_id(e->s), session_id) == 0)
			return e;
	return NULL;
}

static void
ctl_queue_complete(struct agent_control *c, const char *session_id,
    const char *status, const char *output)
{
	struct ctl_complete *k, **pp;
	uint64_t now = ctl_now();

	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		log_error("event=task_complete_lost session=%s err=nomem",
		    session_id);
		return;
	}
	snprintf(k->session_id, sizeof(k->session_id), "%s", session_id);
	snprintf(k->status, sizeof(k->status), "%s", status);
	k->output = strdup(output ? output : "");
	uuid_v4(k->message_id);
	k->next_at = now;
	k->expires_at = now + CTL_COMPLETE_KEEP_MS;
	for (pp = &c->completes; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = k;
	ctl_run_completes(c, now);
}

static void
ctl_on_session_complete(void *ud, const char *session_id,
    const char *status, const char *output)
{
	ctl_queue_complete(ud, session_id, status, output);
}

static void
ctl_on_session_freed(void *ud, struct agent_session *s)
{
	struct agent_control *c = ud;
	struct ctl_session **pp, *e;

	for (pp = &c->sessions; (e = *pp) != NULL; pp = &e->next) {
		if (e->s == s) {
			*pp = e->next;
			free(e);
			c->nsessions--;
			break;
		}
	}
	ctl_maybe_stopped(c);
}

static const struct agent_session_cbs ctl_session_cbs = {
	.on_complete = ctl_on_session_complete,
	.on_freed = ctl_on_session_freed,
};

/* ---- incoming messages --------------------------------------------------- */

static void
ctl_interactive_shell(struct agent_control *c, const struct clientmsg *m)
{
	struct agent_task task;
	struct ctl_session *e;
	char err[512];
	int rc;

	rc = agent_task_parse(&task, m->payload, m->payload_len, err,
	    sizeof(err));
	if (rc != 0) {
		log_warn("event=bad_session_start session=%s err=\"%s\"",
		    task.session_id[0] ? task.session_id : "-", err);
		if (task.session_id[0] != '\0')
			ctl_queue_complete(c, task.session_id, "Failed", err);
		return;
	}
	if (c->stopping) {
		ctl_queue_complete(c, task.session_id, "Failed",
		    "the agent is shutting down");
		goto out;
	}
	if (ctl_find(c, task.session_id) != NULL) {
		/* A repeated start message: the session already runs. */
		log_info("event=duplicate_session_start session=%s",
		    task.session_id);
		goto out;
	}
	if (c->nsessions >= CTL_MAX_SESSIONS) {
		ctl_queue_complete(c, task.session_id, "Failed",
		    "too many sessions on this instance");
		goto out;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		ctl_queue_complete(c, task.session_id, "Failed",
		    "out of memory");
		goto out;
	}
	rc = agent_session_start(&e->s, &c->ctx, &task, &ctl_session_cbs, c,
	    err, sizeof(err));
	if (rc != 0) {
		log_warn("event=session_refused session=%s err=\"%s\"",
		    task.session_id, err);
		ctl_queue_complete(c, task.session_id, "Failed", err);
		free(e);
		goto out;
	}
	e->next = c->sessions;
	c->sessions = e;
	c->nsessions++;
out:
	agent_task_free(&task);
}

static void
ctl_channel_closed(struct agent_control *c, const struct clientmsg *m)
{
	const char *sid, *out;
	char why[512];
	size_t i;
	struct ctl_session *e;
	json_t *o;

	/* spec 8.4: the TerminateSession signal for SessionId. */
	o = json_loadb((const char *)m->payload, m->payload_len, 0, NULL);
	sid = agent_json_str(o, "SessionId");
	if (sid == NULL) {
		log_warn("event=bad_channel_closed");
	} else if ((e = ctl_find(c, sid)) != NULL) {
		/* portholed's reason (a refused data channel, say) belongs
		 * in our log too: printable ASCII, bounded. */
		out = agent_json_str(o, "Output");
		for (i = 0; out != NULL && out[i] != '\0' &&
		    i < sizeof(why) - 1; i++)
			why[i] = out[i] >= 0x20 && out[i] < 0x7f &&
			    out[i] != '"' ? out[i] : '?';
		why[i] = '\0';
		log_info("event=channel_closed session=%s via=control%s%s%s",
		    sid, why[0] ? " output=\"" : "", why, why[0] ? "\"" : "");
		agent_session_terminate(e->s, "Success", "");
	} else {
		log_debug("event=channel_closed_unknown session=%.96s", sid);
	}
	json_decref(o);
}

static void
ctl_task_ack(struct agent_control *c, const struct clientmsg *m)
{
	struct ctl_complete **pp, *k;
	const char *mid, *task;
	uint8_t id[16];
	int have_id;
	json_t *o;

	o = json_loadb((const char *)m->payload, m->payload_len, 0, NULL);
	mid = agent_json_str(o, "MessageId");
	task = agent_json_str(o, "TaskId");
	have_id = mid != NULL && uuid_parse(mid, id) == 0;
	for (pp = &c->completes; (k = *pp) != NULL; pp = &k->next) {
		/* spec 8.2: the ack names our frame's MessageId. */
		if ((have_id && memcmp(k->message_id, id, 16) == 0) ||
		    (!have_id && task != NULL &&
		    strcmp(k->session_id, task) == 0)) {
			log_info("event=task_complete_acked session=%s",
			    k->session_id);
			*pp = k->next;
			ctl_complete_free(k);
			break;
		}
	}
	json_decref(o);
}

static void
ctl_agent_job(struct agent_control *c, const struct clientmsg *m)
{
	if (c->rc == NULL) {
		log_info("event=agent_job_ignored reason=no_runcommand");
		return;
	}
	runcommand_on_job(c->rc, m);
}

static void
ctl_agent_job_reply_ack(struct agent_control *c, const struct clientmsg *m)
{
	if (c->rc != NULL)
		runcommand_on_reply_ack(c->rc, m);
}

/* STYLE.md 5: the control messages the agent acts on. */
static const struct {
	const char *type;
	void (*fn)(struct agent_control *, const struct clientmsg *);
} ctl_handlers[] = {
	{ MT_INTERACTIVE_SHELL, ctl_interactive_shell },
	{ MT_CHANNEL_CLOSED, ctl_channel_closed },
	{ MT_AGENT_TASK_ACK, ctl_task_ack },
	{ MT_AGENT_JOB, ctl_agent_job },
	{ MT_AGENT_JOB_REPLY_ACK, ctl_agent_job_reply_ack },
};

static void
ctl_on_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct agent_control *c = ws_userdata(w);
	struct clientmsg m;
	size_t i;
	int rc;

	if (c == NULL || w != c->ws || opcode != WS_BINARY)
		return;
	rc = clientmsg_decode(&m, p, n, CTL_MAX_PAYLOAD);
	if (rc != 0) {
		log_warn("event=bad_control_frame len=%zu err=\"%s\"", n,
		    ph_strerror(rc));
		return;
	}
	for (i = 0; i < sizeof(ctl_handlers) / sizeof(ctl_handlers[0]); i++) {
		if (strcmp(m.type, ctl_handlers[i].type) == 0) {
			ctl_handlers[i].fn(c, &m);
			return;
		}
	}
	/* spec 3.7: unknown types are logged and ignored. */
	log_info("event=ignored_control_message type=%s", m.type);
}

/* ---- connection ---------------------------------------------------------- */

static void
ctl_on_open(struct ws *w)
{
	struct agent_control *c = ws_userdata(w);
	char rid[UUID_STR_LEN], *js;
	json_t *o;

	if (c == NULL || w != c->ws)
		return;
	uuid_v4_str(rid);
	agent_sysinfo_collect(&c->si);
	/* spec 2.3, plus porthole's platform fields the gateway stores. */
	o = json_pack("{s:n, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "Cookie", "MessageSchemaVersion", "1.0", "RequestId", rid,
	    "TokenValue", "", "AgentVersion", agent_version(),
	    "PlatformType", "linux", "PlatformName", c->si.platform_name,
	    "PlatformVersion", c->si.platform_version,
	    "ComputerName", c->si.hostname, "IPAddress", c->si.ip_address);
	js = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (js == NULL || ws_send(w, WS_TEXT, js, strlen(js)) != 0) {
		free(js);
		ws_close(w, 1011, "cannot open the control channel");
		return;
	}
	free(js);
	ws_set_keepalive(w, CTL_KEEPALIVE_MS, CTL_KEEPALIVE_TIMEOUT_MS);
	c->ws_open = 1;
	c->opened_ms = ctl_now();
	log_info("event=control_channel_open instance=%s attempt=%u",
	    c->ctx.st->instance_id, c->attempt);
	/* Results that waited for the channel go out now. */
	ctl_run_completes(c, c->opened_ms);
	if (c->rc != NULL)
		runcommand_channel_up(c->rc);
}

static void
ctl_redial_cb(uv_timer_t *t)
{
	ctl_dial(t->data);
}

static void
ctl_schedule_redial(struct agent_control *c)
{
	unsigned delay;

	if (c->stopping)
		return;
	delay = agent_backoff_next(&c->bo);
	log_info("event=control_channel_retry attempt=%u in_ms=%u",
	    c->attempt + 1, delay);
	uv_timer_start(&c->redial, ctl_redial_cb, delay, 0);
}

static void
ctl_on_close(struct ws *w, int code)
{
	struct agent_control *c = ws_userdata(w);
	uint64_t now = ctl_now();

	if (c == NULL || w != c->ws)
		return;
	c->ws = NULL;
	if (c->ws_open && now - c->opened_ms > AGENT_BACKOFF_RESET_MS) {
		/* It was up for a while: start the schedule over. */
		agent_backoff_reset(&c->bo);
	}
	log_warn("event=control_channel_closed code=%d was_open=%d", code,
	    c->ws_open);
	c->ws_open = 0;
	if (c->stopping) {
		ctl_maybe_stopped(c);
		return;
	}
	ctl_schedule_redial(c);
}

static const struct ws_cbs ctl_ws_cbs = {
	.on_open = ctl_on_open,
	.on_message = ctl_on_message,
	.on_close = ctl_on_close,
};

static void
ctl_dial(struct agent_control *c)
{
	char url[1400];
	int rc, n;

	if (c->stopping || c->ws != NULL)
		return;
	c->attempt++;
	n = snprintf(url, sizeof(url),
	    "%s/v1/control-channel/%s?role=subscribe&stream=input",
	    c->ctx.st->ws_base, c->ctx.st->instance_id);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		log_error("event=control_url_too_long");
		return;
	}
	log_info("event=control_channel_dial attempt=%u url=%s", c->attempt,
	    url);
	rc = ws_dial(c->loop, c->ctx.tls, url, NULL, &ctl_ws_cbs, c, &c->ws);
	if (rc != 0) {
		c->ws = NULL;
		log_warn("event=control_channel_dial_failed err=\"%s\"",
		    ph_strerror(rc));
		ctl_schedule_redial(c);
		return;
	}
	ws_set_max_message(c->ws, CTL_MAX_MESSAGE);
}

static void
ctl_handle_closed(uv_handle_t *h)
{
	struct agent_control *c = h->data;

	if (--c->handles == 0) {
		void (*fn)(void *) = c->on_stopped;
		void *arg = c->stopped_arg;

		while (c->completes != NULL) {
			struct ctl_complete *k = c->completes;

			c->completes = k->next;
			ctl_complete_free(k);
		}
		free(c);
		if (fn != NULL)
			fn(arg);
	}
}

static void
ctl_release(struct agent_control *c)
{
	if (c->handles != 2)
		return; /* already closing */
	uv_close((uv_handle_t *)&c->redial, ctl_handle_closed);
	uv_close((uv_handle_t *)&c->tick, ctl_handle_closed);
}

/* During shutdown: once every session is gone (its result queued and, if
 * the channel is up, written), close the channel; once that is closed,
 * release the timers and the object. */
static void
ctl_maybe_stopped(struct agent_control *c)
{
	if (!c->stopping || c->sessions != NULL)
		return;
	if (c->ws != NULL) {
		if (!c->ws_closing) {
			c->ws_closing = 1;
			/* Queued results are written before the close. */
			ws_close(c->ws, 1001, "agent stopping");
		}
		return;
	}
	ctl_release(c);
}

static void
ctl_tick_cb(uv_timer_t *t)
{
	struct agent_control *c = t->data;

	uint64_t now = ctl_now();

	ctl_run_completes(c, now);
	if (c->stopping && !c->forced && now >= c->stop_deadline) {
		/* Something does not let go (a shell in uninterruptible
		 * sleep, a peer that never closes): stop anyway. The object
		 * stays allocated since callbacks may still name it. */
		c->forced = 1;
		log_warn("event=shutdown_forced sessions=%zu", c->nsessions);
		if (c->on_stopped != NULL)
			c->on_stopped(c->stopped_arg);
	}
}

int
agent_control_new(struct agent_control **out, uv_loop_t *loop,
    struct tls_ctx *tls, const struct agent_state *st)
{
	struct agent_control *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return PH_ERR_NOMEM;
	c->loop = loop;
	c->ctx.loop = loop;
	c->ctx.tls = tls;
	c->ctx.st = st;
	agent_backoff_init(&c->bo, AGENT_BACKOFF_BASE_MS, AGENT_BACKOFF_CAP_MS);
	uv_timer_init(loop, &c->redial);
	uv_timer_init(loop, &c->tick);
	c->redial.data = c;
	c->tick.data = c;
	c->handles = 2;
	*out = c;
	return 0;
}

void
agent_control_set_recorder(struct agent_control *c, struct rec_uploader *u)
{
	c->ctx.rec = u;
}

void
agent_control_set_runcommand(struct agent_control *c, struct runcommand *rc)
{
	c->rc = rc;
}

int
agent_control_send_frame(void *ud, const char *type, const char *payload,
    uint8_t message_id[16])
{
	struct agent_control *c = ud;

	return ctl_send(c, type, message_id, payload);
}

void
agent_control_start(struct agent_control *c)
{
	uv_timer_start(&c->tick, ctl_tick_cb, 250, 250);
	ctl_dial(c);
}

void
agent_control_shutdown(struct agent_control *c, void (*on_stopped)(void *),
    void *arg)
{
	struct ctl_session *e, *next;

	if (c->stopping)
		return;
	log_info("event=agent_stopping sessions=%zu", c->nsessions);
	c->stopping = 1;
	c->on_stopped = on_stopped;
	c->stopped_arg = arg;
	c->stop_deadline = ctl_now() + CTL_SHUTDOWN_MS;
	uv_timer_stop(&c->redial);
	if (c->ws != NULL && !c->ws_open) {
		/* Still dialling: nothing to say on it. */
		c->ws_closing = 1;
		ws_close(c->ws, 1001, "agent stopping");
	}
	/* Sessions report and unlink themselves (ctl_on_session_freed);
	 * iterate over a copy of the links since that may happen now. */
	for (e = c->sessions; e != NULL; e = next) {
		next = e->next;
		agent_session_terminate(e->s, "Failed",
		    "porthole-agent stopped on the instance");
	}
	ctl_maybe_stopped(c);
}
