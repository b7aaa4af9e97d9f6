/* client session: the whole client loop against a fake gateway+agent on
 * loopback (plain ws://). The client runs in a forked child with stdin a
 * pipe and stdout a file; the parent plays the other end of the data
 * channel with a CHANNEL_AGENT channel and checks what the client sends,
 * prints and returns. Every run is bounded by a timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "client/session.h"
#include "common/buf.h"
#include "common/channel.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/http.h"
#include "common/tls.h"
#include "common/ws.h"

#define SID "alice-0123456789abcdef0"
#define RUN_TIMEOUT_MS 20000

enum scenario {
	SC_SHELL,          /* output, input, channel_closed Terminated */
	SC_FAILED,         /* channel_closed with SessionStatus Failed */
	SC_NONINTERACTIVE, /* handshake, output, EXIT_CODE 3 */
	SC_KMS,            /* handshake asking for KMS: answered Failed */
	SC_RECONNECT,      /* drop the first connection, then close */
	SC_TIMEOUT,        /* drop; ResumeSession returns no token */
	SC_BAD_TOKEN,      /* refuse everything: the client gives up */
};

struct fx {
	enum scenario sc;
	int plugin_mode;
	uv_loop_t loop;
	struct listener *l;
	int port;
	pid_t child;
	int child_status;
	int child_done;
	uv_timer_t wait_timer, deadline;
	struct ws *w;
	struct channel *ch;
	int opens;
	char tokens[4][64];
	char client_ids[4][64];
	char version[32];
	struct buf input;       /* PayloadType 1 bytes from the client */
	int sizes;
	char first_size[64];
	int first_pt;           /* first stream payload type received */
	int hs_response_status[2];
	int hs_response_count;
	char input_copy[256];
	int closed_sent;
	int dropped;
	int timed_out;
};

static struct fx *fx_cur;

/* ---- the child: the client under test ---------------------------------- */

static int
child_resume(void *ud, const char *session_id, char **token, char *err,
    size_t errlen)
{
	struct fx *f = ud;

	if (strcmp(session_id, SID) != 0) {
		snprintf(err, errlen, "wrong session id");
		return PH_ERR_INVALID;
	}
	if (f->sc == SC_TIMEOUT) {
		*token = NULL;
		return 0;
	}
	*token = strdup("tok-resumed");
	return *token != NULL ? 0 : PH_ERR_NOMEM;
}

static void
run_child(struct fx *f, int in_fd, int out_fd, int err_fd)
{
	struct client_session_params p;
	char url[128];
	int rc;

	dup2(in_fd, 0);
	dup2(out_fd, 1);
	dup2(err_fd, 2);
	snprintf(url, sizeof(url),
	    "ws://127.0.0.1:%d/v1/data-channel/" SID "?role=publish_subscribe",
	    f->sc == SC_BAD_TOKEN ? 1 : f->port);
	memset(&p, 0, sizeof(p));
	p.session_id = SID;
	p.token = "tok-start";
	p.stream_url = url;
	p.target = "mi-0123456789abcdef0";
	p.plugin_mode = f->plugin_mode;
	p.resume = child_resume;
	p.resume_ud = f;
	rc = client_session_run(&p);
	fflush(stdout);
	_exit(rc);
}

/* ---- the parent: fake gateway + agent ----------------------------------- */

static void
srv_send_closed(struct fx *f, const char *status, const char *output)
{
	char json[512];

	snprintf(json, sizeof(json), "{\"MessageId\":\"m\",\"CreatedDate\":"
	    "\"2024-01-01T00:00:00.000Z\",\"DestinationId\":\"mi-1\","
	    "\"SessionId\":\"" SID "\",\"MessageType\":\"channel_closed\","
	    "\"SchemaVersion\":1,\"Output\":\"%s\",\"SessionStatus\":\"%s\"}",
	    output, status);
	assert_int_equal(channel_send_control(f->ch, MT_CHANNEL_CLOSED, json,
	    strlen(json)), 0);
	f->closed_sent = 1;
}

static int
srv_send_frame(void *ud, const uint8_t *frame, size_t n)
{
	struct fx *f = ud;

	if (f->w == NULL)
		return PH_ERR_IO;
	return ws_send(f->w, WS_BINARY, frame, n) == 0 ? 0 : PH_ERR_IO;
}

/* Once the client typed "exit\n" (its stdin) and acknowledged all our
 * output, end the session the scenario's way. */
static void
srv_step(struct fx *f)
{
	if (f->closed_sent || f->ch == NULL || f->w == NULL ||
	    channel_unacked(f->ch) != 0 || f->input.len == 0 ||
	    memmem(f->input.data, f->input.len, "exit\n", 5) == NULL)
		return;
	if ((f->sc == SC_RECONNECT || f->sc == SC_TIMEOUT) && !f->dropped) {
		/* Drop the connection without channel_closed. */
		f->dropped = 1;
		ws_close(f->w, 1001, "going away");
		return;
	}
	if (f->sc == SC_RECONNECT && f->opens < 2)
		return;
	if (f->sc == SC_FAILED)
		srv_send_closed(f, "Failed",
		    "The session's agent disconnected.");
	else
		srv_send_closed(f, "Terminated", "");
}

static int
srv_deliver(void *ud, uint32_t type, const uint8_t *p, size_t n)
{
	struct fx *f = ud;
	json_t *o, *a;
	json_error_t jerr;

	if (f->first_pt == 0)
		f->first_pt = (int)type;
	switch (type) {
	case PT_SIZE:
		if (f->sizes++ == 0)
			snprintf(f->first_size, sizeof(f->first_size), "%.*s",
			    (int)n, (const char *)p);
		break;
	case PT_OUTPUT:
		assert_int_equal(buf_append(&f->input, p, n), 0);
		break;
	case PT_HANDSHAKE_RESPONSE:
		o = json_loadb((const char *)p, n, 0, &jerr);
		assert_non_null(o);
		a = json_object_get(o, "ProcessedClientActions");
		assert_true(json_is_array(a));
		f->hs_response_count = (int)json_array_size(a);
		for (size_t i = 0; i < json_array_size(a) && i < 2; i++)
			f->hs_response_status[i] = (int)json_integer_value(
			    json_object_get(json_array_get(a, i),
			    "ActionStatus"));
		json_decref(o);
		if (f->sc == SC_KMS) {
			/* The agent cancels: channel_closed Failed. */
			srv_send_closed(f, "Failed", "Handshake failed.");
			break;
		}
		static const char done[] = "{\"HandshakeTimeToComplete\":5,"
		    "\"CustomerMessage\":\"\"}";
		assert_int_equal(channel_send(f->ch, PT_HANDSHAKE_COMPLETE,
		    done, sizeof(done) - 1), 0);
		assert_int_equal(channel_send(f->ch, PT_OUTPUT, "result\n", 7),
		    0);
		assert_int_equal(channel_send(f->ch, PT_EXIT_CODE,
		    "EXIT_CODE: 3", 12), 0);
		break;
	default:
		break;
	}
	return 0;
}

static const struct channel_cbs srv_channel_cbs = {
	.send_frame = srv_send_frame,
	.deliver = srv_deliver,
};

static void
srv_on_open_message(struct fx *f, const uint8_t *p, size_t n)
{
	json_error_t jerr;
	json_t *o;
	const char *tok, *cid, *ver, *rid, *msv;
	int i = f->opens;

	o = json_loadb((const char *)p, n, 0, &jerr);
	assert_non_null(o);
	assert_int_equal(json_unpack(o, "{s:s, s:s, s:s, s:s, s:s}",
	    "MessageSchemaVersion", &msv, "RequestId", &rid, "TokenValue", &tok,
	    "ClientId", &cid, "ClientVersion", &ver), 0);
	assert_string_equal(msv, "1.0");
	assert_int_equal(strlen(rid), 36);
	if (i < 4) {
		snprintf(f->tokens[i], sizeof(f->tokens[i]), "%s", tok);
		snprintf(f->client_ids[i], sizeof(f->client_ids[i]), "%s", cid);
	}
	snprintf(f->version, sizeof(f->version), "%s", ver);
	json_decref(o);
	f->opens++;
	if (f->ch == NULL)
		assert_int_equal(channel_new(&f->ch, CHANNEL_AGENT,
		    &srv_channel_cbs, f, NULL), 0);
	else {
		channel_resend_all(f->ch);
		return;
	}
	switch (f->sc) {
	case SC_NONINTERACTIVE:
	case SC_KMS: {
		char req[512];

		snprintf(req, sizeof(req), "{\"AgentVersion\":\"3.3.1000.0\","
		    "\"RequestedClientActions\":[{\"ActionType\":"
		    "\"SessionType\",\"ActionParameters\":{\"SessionType\":"
		    "\"NonInteractiveCommands\",\"Properties\":null}}%s]}",
		    f->sc == SC_KMS ? ",{\"ActionType\":\"KMSEncryption\","
		    "\"ActionParameters\":{\"KMSKeyId\":\"alias/k\"}}" : "");
		assert_int_equal(channel_send(f->ch, PT_HANDSHAKE_REQUEST, req,
		    strlen(req)), 0);
		break;
	}
	default:
		assert_int_equal(channel_send(f->ch, PT_OUTPUT, "hello\r\n", 7),
		    0);
		break;
	}
}

static void
srv_ws_message(struct ws *w, int opcode, const uint8_t *p, size_t n)
{
	struct fx *f = ws_userdata(w);

	if (opcode == WS_TEXT) {
		srv_on_open_message(f, p, n);
		return;
	}
	assert_non_null(f->ch);
	assert_int_equal(channel_receive(f->ch, p, n), 0);
}

static void
srv_ws_close(struct ws *w, int code)
{
	struct fx *f = ws_userdata(w);

	if (f->w == w)
		f->w = NULL;
}

static const struct ws_cbs srv_ws_cbs = {
	.on_message = srv_ws_message,
	.on_close = srv_ws_close,
};

static void
srv_http(struct http_request *req, void *arg)
{
	struct fx *f = arg;
	struct ws *w;

	if (!req->is_upgrade ||
	    strcmp(req->path, "/v1/data-channel/" SID) != 0) {
		http_respond(req, 404, "text/plain", NULL, "no", 2);
		return;
	}
	w = http_upgrade_ws(req, &srv_ws_cbs, f);
	assert_non_null(w);
	f->w = w;
}

static void
srv_accept(struct conn *c, void *arg)
{
	assert_int_equal(http_serve(c, srv_http, arg), 0);
}

static void
wait_cb(uv_timer_t *t)
{
	struct fx *f = t->data;
	int st;

	if (f->ch != NULL) {
		channel_tick(f->ch, channel_now_ms());
		srv_step(f);
	}
	if (waitpid(f->child, &st, WNOHANG) == f->child) {
		f->child_status = st;
		f->child_done = 1;
		uv_stop(&f->loop);
	}
}

static void
deadline_cb(uv_timer_t *t)
{
	struct fx *f = t->data;

	f->timed_out = 1;
	kill(f->child, SIGKILL);
	(void)waitpid(f->child, &f->child_status, 0);
	f->child_done = 1;
	uv_stop(&f->loop);
}

struct result {
	int exit;
	char out[8192];
	char err[8192];
};

static void
slurp(const char *path, char *out, size_t n)
{
	FILE *fp = fopen(path, "rb");
	size_t got = 0;

	out[0] = '\0';
	if (fp == NULL)
		return;
	got = fread(out, 1, n - 1, fp);
	out[got] = '\0';
	fclose(fp);
	unlink(path);
}

static void
close_walk(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void
run(struct fx *f, const char *input, struct result *r)
{
	char opath[] = "/tmp/ph-client-out-XXXXXX";
	char epath[] = "/tmp/ph-client-err-XXXXXX";
	int inp[2], ofd, efd, i;

	fx_cur = f;
	assert_int_equal(uv_loop_init(&f->loop), 0);
	buf_init(&f->input, (size_t)1 << 20);
	assert_int_equal(listener_start(&f->loop, NULL, "127.0.0.1", 0,
	    srv_accept, f, &f->l), 0);
	f->port = listener_port(f->l);
	assert_int_equal(pipe(inp), 0);
	assert_int_equal(write(inp[1], input, strlen(input)),
	    (ssize_t)strlen(input));
	close(inp[1]); /* EOF after the input */
	ofd = mkstemp(opath);
	efd = mkstemp(epath);
	assert_true(ofd >= 0 && efd >= 0);
	fflush(NULL);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0)
		run_child(f, inp[0], ofd, efd);
	close(inp[0]);
	close(ofd);
	close(efd);
	uv_timer_init(&f->loop, &f->wait_timer);
	uv_timer_init(&f->loop, &f->deadline);
	f->wait_timer.data = f->deadline.data = f;
	uv_timer_start(&f->wait_timer, wait_cb, 20, 20);
	uv_timer_start(&f->deadline, deadline_cb, RUN_TIMEOUT_MS, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);

	if (f->w != NULL)
		ws_close(f->w, 1000, "");
	listener_stop(f->l);
	uv_walk(&f->loop, close_walk, NULL);
	for (i = 0; i < 100 && uv_run(&f->loop, UV_RUN_NOWAIT) != 0; i++)
		usleep(1000);
	(void)uv_loop_close(&f->loop);
	if (f->ch != NULL)
		channel_free(f->ch);
	snprintf(f->input_copy, sizeof(f->input_copy), "%.*s",
	    (int)f->input.len, f->input.data ? (char *)f->input.data : "");
	buf_free(&f->input);
	slurp(opath, r->out, sizeof(r->out));
	slurp(epath, r->err, sizeof(r->err));
	assert_false(f->timed_out);
	assert_true(WIFEXITED(f->child_status));
	r->exit = WEXITSTATUS(f->child_status);
}

static void
test_shell_session(void **state)
{
	struct fx f;
	struct result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.sc = SC_SHELL;
	f.plugin_mode = 1;
	run(&f, "exit\n", &r);
	assert_int_equal(r.exit, 0);
	assert_string_equal(r.out, "\nStarting session with SessionId: " SID
	    "\nhello\r\n\n\nExiting session with sessionId: " SID ".\n\n");
	assert_int_equal(f.opens, 1);
	assert_string_equal(f.tokens[0], "tok-start");
	assert_int_equal(strlen(f.client_ids[0]), 36);
	assert_string_equal(f.version, "1.2.700.0");
	/* The size goes first; stdout is not a terminal: 80x24. */
	assert_int_equal(f.first_pt, PT_SIZE);
	assert_string_equal(f.first_size, "{\"cols\":80,\"rows\":24}");
	/* stdin, then an end-of-file character when the pipe ended. */
	assert_string_equal(f.input_copy, "exit\n\x04");
}

static void
test_failed_session(void **state)
{
	struct fx f;
	struct result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.sc = SC_FAILED;
	run(&f, "exit\n", &r);
	assert_int_equal(r.exit, 1);
	assert_non_null(strstr(r.out, "\n\nSessionId: " SID
	    " : The session's agent disconnected.\n\n"));
}

static void
test_noninteractive_exit_code(void **state)
{
	struct fx f;
	struct result r;
	int mode;

	(void)state;
	for (mode = 0; mode < 2; mode++) {
		memset(&f, 0, sizeof(f));
		f.sc = SC_NONINTERACTIVE;
		f.plugin_mode = mode;
		run(&f, "exit\n", &r);
		/* porthole passes the remote exit code on; the plugin, like
		 * the official one, exits 0. */
		assert_int_equal(r.exit, mode ? 0 : 3);
		assert_int_equal(f.hs_response_count, 1);
		assert_int_equal(f.hs_response_status[0], 1);
		assert_non_null(strstr(r.out, "result\nEXIT_CODE: 3"));
		assert_non_null(strstr(r.out,
		    "Exiting session with sessionId"));
	}
}

static void
test_kms_refused(void **state)
{
	struct fx f;
	struct result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.sc = SC_KMS;
	run(&f, "", &r);
	assert_int_equal(r.exit, 1);
	assert_int_equal(f.hs_response_count, 2);
	assert_int_equal(f.hs_response_status[0], 1);
	assert_int_equal(f.hs_response_status[1], 2);
	assert_non_null(strstr(r.err,
	    "KMS encryption is not supported by this client yet"));
	assert_non_null(strstr(r.out, "SessionId: " SID
	    " : Handshake failed."));
}

static void
test_reconnect(void **state)
{
	struct fx f;
	struct result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.sc = SC_RECONNECT;
	run(&f, "exit\n", &r);
	assert_int_equal(r.exit, 0);
	assert_int_equal(f.opens, 2);
	assert_string_equal(f.tokens[0], "tok-start");
	assert_string_equal(f.tokens[1], "tok-resumed");
	/* Same ClientId across reconnects (spec 1.2). */
	assert_string_equal(f.client_ids[0], f.client_ids[1]);
	assert_non_null(strstr(r.out, "Exiting session with sessionId: " SID));
}

static void
test_resume_timed_out(void **state)
{
	struct fx f;
	struct result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.sc = SC_TIMEOUT;
	run(&f, "exit\n", &r);
	assert_int_equal(r.exit, 1);
	assert_int_equal(f.opens, 1);
	assert_non_null(strstr(r.out, "Session: " SID " timed out.\n"));
}

static void
test_unreachable_gives_up(void **state)
{
	struct fx f;
	struct result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.sc = SC_BAD_TOKEN;
	run(&f, "", &r);
	assert_int_equal(r.exit, 1);
	assert_non_null(strstr(r.err, "Connection to the session was lost"));
	assert_int_equal(f.opens, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shell_session),
		cmocka_unit_test(test_failed_session),
		cmocka_unit_test(test_noninteractive_exit_code),
		cmocka_unit_test(test_kms_refused),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_resume_timed_out),
		cmocka_unit_test(test_unreachable_gives_up),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
