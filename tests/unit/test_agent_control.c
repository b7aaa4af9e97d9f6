/* agent control + session against an in-process fake gateway on loopback
 * (plain ws://, so no certificates are needed): OpenControlChannel, a
 * session started by interactive_shell with a resize and UTF-8 output,
 * agent_session_state, agent_task_complete and its acknowledgement, a
 * session ended by channel_closed on the control channel whose result is
 * resent until acknowledged, and a clean shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <uv.h>

#include "agent/control.h"
#include "agent/state.h"
#include "common/buf.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/http.h"
#include "common/tls.h"
#include "common/uuid.h"
#include "common/ws.h"

struct fake {
	uv_loop_t *loop;
	struct listener *l;
	struct agent_control *ctl;
	struct ws *cws;          /* control channel, gateway side */
	int step;
	json_t *open_ctl;        /* OpenControlChannel as received */
	json_t *open_data;
	char sid[64];
	struct buf output;       /* output_stream_data payloads of session 1 */
	int64_t expect_seq;
	int connected_state, terminating_state;
	int data_closed;
	json_t *complete[2];
	int stopped;
	int failed;
	uv_timer_t guard;
	uint64_t t_terminate;
	uint64_t t_complete2;
	uint64_t t_resend;
	char first_mid[UUID_STR_LEN];
};

static void
fake_send(struct ws *w, const char *type, int64_t seq, uint64_t flags,
    uint32_t pt, const char *payload, size_t n)
{
	uint8_t id[16];
	struct buf b;

	uuid_v4(id);
	buf_init(&b, 0);
	assert_int_equal(clientmsg_encode(&b, type, seq, flags, id, pt,
	    payload, n), 0);
	ws_send(w, WS_BINARY, b.data, b.len);
	buf_free(&b);
}

static void
fake_start_session(struct fake *f, const char *sid, const char *commands)
{
	json_t *task, *outer;
	char *content, *s;

	snprintf(f->sid, sizeof(f->sid), "%s", sid);
	/* runAsElevated: the session runs as the test's own user. */
	task = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:{s:s, s:b}}}, s:{}, "
	    "s:s}", "SessionId", sid, "DocumentName",
	    "AWS-StartInteractiveCommand", "DocumentContent",
	    "schemaVersion", "1.0", "sessionType", "InteractiveCommands",
	    "properties", "linux", "commands", commands, "runAsElevated", 1,
	    "Parameters", "RunAsUser", "");
	content = json_dumps(task, JSON_COMPACT);
	outer = json_pack("{s:s, s:s, s:s, s:i}", "Content", content,
	    "TaskId", sid, "Topic", "aws.ssm.startSession", "SchemaVersion",
	    1);
	s = json_dumps(outer, JSON_COMPACT);
	fake_send(f->cws, MT_INTERACTIVE_SHELL, 0, 0, 0, s, strlen(s));
	free(s);
	free(content);
	json_decref(outer);
	json_decref(task);
}

static void
fake_stopped(void *arg)
{
	struct fake *f = arg;

	f->stopped = 1;
	f->ctl = NULL;
	listener_stop(f->l);
	uv_timer_stop(&f->guard);
	uv_close((uv_handle_t *)&f->guard, NULL);
}

/* ---- control channel ---------------------------------------------------- */

static void
ctl_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct fake *f = ws_userdata(w);
	char mid[UUID_STR_LEN], *ack;
	struct clientmsg m;
	json_t *o, *a;
	int k;

	if (f->open_ctl == NULL) {
		assert_int_equal(opcode, WS_TEXT);
		f->open_ctl = json_loadb((const char *)p, n, 0, NULL);
		assert_non_null(f->open_ctl);
		fake_start_session(f, "sess-1",
		    "sleep 0.5; stty size; printf 'h\\303\\251llo\\n'");
		return;
	}
	assert_int_equal(opcode, WS_BINARY);
	assert_int_equal(clientmsg_decode(&m, p, n, 1 << 20), 0);
	assert_string_equal(m.type, MT_AGENT_TASK_COMPLETE);
	o = json_loadb((const char *)m.payload, m.payload_len, 0, NULL);
	assert_non_null(o);
	k = strcmp(json_string_value(json_object_get(o, "TaskId")),
	    "sess-1") == 0 ? 0 : 1;
	uuid_format(m.message_id, mid);
	if (k == 1 && f->complete[1] == NULL && f->first_mid[0] == '\0') {
		/* Leave the first result of session 2 unacknowledged: it
		 * must come again, same MessageId, RetryNumber 2 (spec 8.2). */
		assert_int_equal(json_integer_value(json_object_get(o,
		    "RetryNumber")), 1);
		snprintf(f->first_mid, sizeof(f->first_mid), "%s", mid);
		f->t_complete2 = uv_now(f->loop);
		json_decref(o);
		return;
	}
	if (f->complete[k] != NULL) {
		json_decref(o); /* a resend: acknowledged already */
		return;
	}
	if (k == 1) {
		assert_string_equal(mid, f->first_mid);
		assert_int_equal(json_integer_value(json_object_get(o,
		    "RetryNumber")), 2);
		f->t_resend = uv_now(f->loop);
	}
	f->complete[k] = o;
	/* spec 8.2: acknowledge with the frame's MessageId. */
	a = json_pack("{s:i, s:s, s:s, s:s}", "SchemaVersion", 1, "MessageId",
	    mid, "TaskId", json_string_value(json_object_get(o, "TaskId")),
	    "Topic", MT_AGENT_TASK_COMPLETE);
	ack = json_dumps(a, JSON_COMPACT);
	fake_send(w, MT_AGENT_TASK_ACK, 0, 0, 0, ack, strlen(ack));
	free(ack);
	json_decref(a);
	if (k == 0) {
		/* Session 2 runs until the gateway ends it. */
		fake_start_session(f, "sess-2", "sleep 30");
	} else {
		agent_control_shutdown(f->ctl, fake_stopped, f);
	}
}

static void
ctl_close(struct ws *w, int code)
{
	struct fake *f = ws_userdata(w);

	if (f->cws == w)
		f->cws = NULL;
}

static const struct ws_cbs ctl_cbs = {
	.on_message = ctl_message,
	.on_close = ctl_close,
};

/* ---- data channel ------------------------------------------------------- */

/* One data channel as the gateway sees it. */
struct dch {
	struct fake *f;
	char sid[64];
	int opened;
};

static void
data_ack(struct ws *w, const struct clientmsg *m)
{
	char mid[UUID_STR_LEN], js[300];
	int n;

	uuid_format(m->message_id, mid);
	n = snprintf(js, sizeof(js), "{\"AcknowledgedMessageType\":\"%s\","
	    "\"AcknowledgedMessageId\":\"%s\","
	    "\"AcknowledgedMessageSequenceNumber\":%lld,"
	    "\"IsSequentialMessage\":true}", m->type, mid, (long long)m->seq);
	fake_send(w, MT_ACKNOWLEDGE, 0, 3, 0, js, (size_t)n);
}

static void
data_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct dch *d = ws_userdata(w);
	struct fake *f = d->f;
	static const char size[] = "{\"cols\":132,\"rows\":50}";
	struct clientmsg m;
	const char *state;
	json_t *o;
	char cc[256];

	if (!d->opened) {
		assert_int_equal(opcode, WS_TEXT);
		d->opened = 1;
		json_decref(f->open_data);
		f->open_data = json_loadb((const char *)p, n, 0, NULL);
		assert_non_null(f->open_data);
		if (strcmp(d->sid, "sess-1") == 0)
			fake_send(w, MT_INPUT_STREAM, 0, 0, PT_SIZE, size,
			    sizeof(size) - 1);
		return;
	}
	assert_int_equal(opcode, WS_BINARY);
	assert_int_equal(clientmsg_decode(&m, p, n, 65536 + 28), 0);
	if (strcmp(m.type, MT_AGENT_SESSION_STATE) == 0) {
		o = json_loadb((const char *)m.payload, m.payload_len, 0, NULL);
		state = json_string_value(json_object_get(o, "SessionState"));
		assert_non_null(state);
		assert_string_equal(json_string_value(json_object_get(o,
		    "SessionId")), d->sid);
		if (strcmp(state, "Connected") == 0) {
			f->connected_state++;
			if (strcmp(d->sid, "sess-2") == 0) {
				/* spec 8.4: TerminateSession. */
				snprintf(cc, sizeof(cc), "{\"MessageType\":"
				    "\"channel_closed\",\"SessionId\":\"%s\","
				    "\"SchemaVersion\":1}", d->sid);
				f->t_terminate = uv_now(f->loop);
				fake_send(f->cws, MT_CHANNEL_CLOSED, 0, 3, 0,
				    cc, strlen(cc));
			}
		} else if (strcmp(state, "Terminating") == 0) {
			f->terminating_state++;
		}
		json_decref(o);
		return;
	}
	if (strcmp(m.type, MT_ACKNOWLEDGE) == 0)
		return;
	assert_string_equal(m.type, MT_OUTPUT_STREAM);
	if (strcmp(d->sid, "sess-1") != 0) {
		data_ack(w, &m);
		return;
	}
	assert_int_equal(m.payload_type, PT_OUTPUT);
	assert_true(m.payload_len > 0 && m.payload_len <= 1024);
	/* spec 3.6: SYN on the first message. */
	assert_int_equal(m.flags, m.seq == 0 ? 1 : 0);
	data_ack(w, &m);
	if (m.seq == f->expect_seq) {
		f->expect_seq++;
		buf_append(&f->output, m.payload, m.payload_len);
	}
}

static void
data_close(struct ws *w, int code)
{
	struct dch *d = ws_userdata(w);

	d->f->data_closed++;
	free(d);
}

static const struct ws_cbs data_cbs = {
	.on_message = data_message,
	.on_close = data_close,
};

/* ---- the fake gateway's HTTP side --------------------------------------- */

static void
fake_request(struct http_request *req, void *arg)
{
	struct fake *f = arg;
	struct ws *w;

	if (strcmp(req->path, "/v1/control-channel/mi-0123456789abcdef0") ==
	    0) {
		assert_string_equal(req->query, "role=subscribe&stream=input");
		w = http_upgrade_ws(req, &ctl_cbs, f);
		assert_non_null(w);
		f->cws = w;
		return;
	}
	if (strncmp(req->path, "/v1/data-channel/", 17) == 0) {
		struct dch *d = calloc(1, sizeof(*d));

		assert_non_null(d);
		assert_string_equal(req->path + 17, f->sid);
		assert_string_equal(req->query, "role=publish_subscribe");
		d->f = f;
		snprintf(d->sid, sizeof(d->sid), "%s", f->sid);
		w = http_upgrade_ws(req, &data_cbs, d);
		assert_non_null(w);
		return;
	}
	http_respond(req, 404, "text/plain", NULL, "no", 2);
}

static void
fake_accept(struct conn *c, void *arg)
{
	assert_int_equal(http_serve(c, fake_request, arg), 0);
}

static void
guard_cb(uv_timer_t *t)
{
	struct fake *f = t->data;

	f->failed = 1;
	uv_stop(f->loop);
}

static void
test_session_flow(void **state)
{
	struct agent_state st;
	struct fake f;
	const char *out;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.loop = uv_default_loop();
	buf_init(&f.output, 1 << 20);
	assert_int_equal(listener_start(f.loop, NULL, "127.0.0.1", 0,
	    fake_accept, &f, &f.l), 0);
	memset(&st, 0, sizeof(st));
	snprintf(st.instance_id, sizeof(st.instance_id),
	    "mi-0123456789abcdef0");
	snprintf(st.ws_base, sizeof(st.ws_base), "ws://127.0.0.1:%d",
	    listener_port(f.l));
	st.sudoers_entry = 0;
	assert_int_equal(agent_control_new(&f.ctl, f.loop, NULL, &st), 0);
	uv_timer_init(f.loop, &f.guard);
	f.guard.data = &f;
	uv_timer_start(&f.guard, guard_cb, 30000, 0);
	agent_control_start(f.ctl);
	uv_run(f.loop, UV_RUN_DEFAULT);
	assert_false(f.failed);
	assert_true(f.stopped);

	/* OpenControlChannel (spec 2.3 and porthole's extensions). */
	assert_true(json_is_null(json_object_get(f.open_ctl, "Cookie")));
	assert_string_equal(json_string_value(json_object_get(f.open_ctl,
	    "AgentVersion")), PORTHOLE_AGENT_VERSION);
	assert_string_equal(json_string_value(json_object_get(f.open_ctl,
	    "PlatformType")), "linux");
	assert_string_equal(json_string_value(json_object_get(f.open_ctl,
	    "TokenValue")), "");
	assert_non_null(json_string_value(json_object_get(f.open_ctl,
	    "ComputerName")));
	assert_non_null(json_string_value(json_object_get(f.open_ctl,
	    "IPAddress")));
	assert_string_equal(json_string_value(json_object_get(f.open_data,
	    "ClientInstanceId")), "mi-0123456789abcdef0");

	/* Session 1: resize applied, UTF-8 intact, a clean end. */
	out = buf_cstr(&f.output);
	assert_non_null(strstr(out, "50 132"));
	assert_non_null(strstr(out, "h\xc3\xa9llo"));
	assert_int_equal(f.connected_state, 2);
	assert_int_equal(f.terminating_state, 1);
	assert_string_equal(json_string_value(json_object_get(f.complete[0],
	    "FinalTaskStatus")), "Success");
	assert_string_equal(json_string_value(json_object_get(f.complete[0],
	    "InstanceId")), "mi-0123456789abcdef0");
	assert_int_equal(json_integer_value(json_object_get(f.complete[0],
	    "RetryNumber")), 1);

	/* Session 2: ended by channel_closed within a few seconds. */
	assert_non_null(f.complete[1]);
	assert_true(f.t_complete2 - f.t_terminate < 3000);
	/* Resent about 1 s later. */
	assert_true(f.t_resend - f.t_complete2 >= 700);
	assert_true(f.t_resend - f.t_complete2 <= 2000);
	assert_int_equal(f.data_closed, 2);

	json_decref(f.open_ctl);
	json_decref(f.open_data);
	json_decref(f.complete[0]);
	json_decref(f.complete[1]);
	buf_free(&f.output);
	uv_run(f.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(f.loop), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_flow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
