/* client session: the whole client loop against a fake gateway+agent on
 * loopback (plain ws://), which also plays KMS (GenerateDataKey on the
 * same port). The client runs in a forked child with stdin a pipe (or a
 * pseudo-terminal for the escapes) and stdout/stderr files; the parent
 * plays the other end of the data channel with a CHANNEL_AGENT channel
 * (encrypted with sessioncrypt when KMS is on) and checks what the client
 * sends, prints and returns. Every run is bounded by a timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "client/awscfg.h"
#include "client/kms.h"
#include "client/session.h"
#include "common/buf.h"
#include "common/channel.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/http.h"
#include "common/sessioncrypt.h"
#include "common/tls.h"
#include "common/ws.h"

#define SID "alice-0123456789abcdef0"
#define TARGET "mi-0123456789abcdef0"
#define RUN_TIMEOUT_MS 20000
/* The fake KMS's data key is the bytes 0x00..0x3f; its blob is fixed. */
#define KEY64_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygp" \
	"KissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
#define BLOB_B64 "c2Vzc2lvbi1rZXktYmxvYg=="
#define CHALLENGE_B64 "cmFuZG9tLWNoYWxsZW5nZQ=="
#define KMS_MESSAGE "This session is encrypted using AWS KMS."
#define PASTE_LINES 10000

enum scenario {
	SC_SHELL,          /* output, input, channel_closed Terminated */
	SC_FAILED,         /* channel_closed with SessionStatus Failed */
	SC_NONINTERACTIVE, /* handshake, output, EXIT_CODE 3 */
	SC_KMS,            /* KMS asked, refused on our side (legacy, bad
			    * parameters): the agent says channel_closed */
	SC_KMS_OK,         /* KMS end to end: key, challenge, sealed data */
	SC_KMS_DENIED,     /* GenerateDataKey refused; no channel_closed */
	SC_KMS_BAD_CHALLENGE, /* challenge sealed with another key */
	SC_BAD_HS,         /* a garbage HandshakeRequest */
	SC_RECONNECT,      /* drop the first connection, then close */
	SC_DEAD_PEER,      /* stop answering: keep-alive finds it, resume */
	SC_ESCAPE,         /* typed on a terminal: "ls\r~?~." */
	SC_TIMEOUT,        /* drop; ResumeSession returns no token */
	SC_BAD_TOKEN,      /* refuse everything: the client gives up */
};

struct fx {
	enum scenario sc;
	int plugin_mode;
	int legacy;
	int drop_code;          /* SC_RECONNECT's close code */
	const char *bad_hs;     /* SC_BAD_HS / SC_KMS request payload */
	int pty_master;         /* SC_ESCAPE: the terminal the user types on */
	int pty_written;
	struct ws *old_w;
	/* fake KMS */
	int kms_calls;
	char kms_body[2048];
	struct sessioncrypt *sc_agent;
	uint8_t challenge[64];
	int challenge_ok;
	int complete_sent;
	int early_input;        /* PT 1 before HandshakeComplete */
	int plaintext_seen;     /* "exit" or "secret" unsealed on the wire */
	char hs_error[2][512];
	char kms_result[512];
	int stderr_sent;
	/* paste */
	int input_msgs;
	size_t max_input_payload;
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
	int input_ok;           /* the whole paste arrived, in order */
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

/* The child's own configuration: KMS is the parent's listener. */
static struct client_awscfg child_cfg;

static int
child_kms(void *ud, const struct client_kms_request *rq,
    uint8_t key[CLIENT_KMS_DATA_KEY_LEN], char **blob, char *err,
    size_t errlen)
{
	return client_kms_generate_data_key(&child_cfg, rq, key, blob, err,
	    errlen);
}

static int
child_terminate(void *ud, const char *session_id, long timeout_s,
    char *err, size_t errlen)
{
	/* Seen by the parent in the child's stderr. */
	fprintf(stderr, "[terminate %s %lds]", session_id, timeout_s);
	fflush(stderr);
	return 0;
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
	if (in_fd > 2)
		close(in_fd);
	snprintf(url, sizeof(url),
	    "ws://127.0.0.1:%d/v1/data-channel/" SID "?role=publish_subscribe",
	    f->sc == SC_BAD_TOKEN ? 1 : f->port);
	memset(&child_cfg, 0, sizeof(child_cfg));
	snprintf(child_cfg.access_key_id, sizeof(child_cfg.access_key_id),
	    "AKIDCHILD");
	snprintf(child_cfg.secret_access_key,
	    sizeof(child_cfg.secret_access_key), "secret");
	snprintf(child_cfg.region, sizeof(child_cfg.region), "us-east-1");
	snprintf(child_cfg.endpoint, sizeof(child_cfg.endpoint),
	    "http://127.0.0.1:1");
	snprintf(child_cfg.kms_endpoint, sizeof(child_cfg.kms_endpoint),
	    "http://127.0.0.1:%d", f->port);
	memset(&p, 0, sizeof(p));
	p.session_id = SID;
	p.token = "tok-start";
	p.stream_url = url;
	p.target = TARGET;
	p.plugin_mode = f->plugin_mode;
	p.legacy_cli = f->legacy;
	p.keepalive_s = f->sc == SC_DEAD_PEER ? 1 : 0;
	p.resume = child_resume;
	p.resume_ud = f;
	p.terminate = child_terminate;
	p.kms_data_key = child_kms;
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

	if (f->sc_agent != NULL && memmem(frame, n, "secret-output", 13))
		f->plaintext_seen = 1;
	if (f->w == NULL)
		return PH_ERR_IO;
	return ws_send(f->w, WS_BINARY, frame, n) == 0 ? 0 : PH_ERR_IO;
}

static int
paste_complete(const struct fx *f)
{
	char line[32];
	size_t off = 0;
	int i, n;

	for (i = 0; i < PASTE_LINES; i++) {
		n = snprintf(line, sizeof(line), "paste line %05d\n", i);
		if (off + (size_t)n > f->input.len ||
		    memcmp(f->input.data + off, line, (size_t)n) != 0)
			return 0;
		off += (size_t)n;
	}
	return 1;
}

/* Once the client typed "exit\n" (its stdin) and acknowledged all our
 * output, end the session the scenario's way. */
static void
srv_step(struct fx *f)
{
	static const char typed[] = "ls\r~?~.";

	if (f->sc == SC_ESCAPE && !f->pty_written && f->ch != NULL &&
	    f->w != NULL && channel_unacked(f->ch) == 0) {
		/* Typed once the session takes input (the first output is
		 * acknowledged, so it has been shown). */
		assert_int_equal(write(f->pty_master, typed, sizeof(typed) - 1),
		    (ssize_t)(sizeof(typed) - 1));
		f->pty_written = 1;
	}
	if (f->closed_sent || f->ch == NULL || f->w == NULL ||
	    channel_unacked(f->ch) != 0 || f->input.len == 0 ||
	    memmem(f->input.data, f->input.len, "exit\n", 5) == NULL)
		return;
	if ((f->sc == SC_RECONNECT || f->sc == SC_TIMEOUT) && !f->dropped) {
		/* Drop the connection without channel_closed. */
		f->dropped = 1;
		ws_close(f->w, f->drop_code ? (uint16_t)f->drop_code : 1001,
		    "going away");
		return;
	}
	if (f->sc == SC_DEAD_PEER && !f->dropped) {
		/* Go silent: no reads, so no pongs either. */
		f->dropped = 1;
		ws_pause_read(f->w, 1);
		return;
	}
	if ((f->sc == SC_RECONNECT || f->sc == SC_DEAD_PEER) && f->opens < 2)
		return;
	if (f->input.len > 5 * PASTE_LINES)
		f->input_ok = paste_complete(f);
	if (f->sc == SC_FAILED)
		srv_send_closed(f, "Failed",
		    "The session's agent disconnected.");
	else
		srv_send_closed(f, "Terminated", "");
}

static void
srv_send(struct fx *f, uint32_t type, const char *p)
{
	assert_int_equal(channel_send(f->ch, type, p, strlen(p)), 0);
}

/* The agent's side of spec 6.1/6.4 once the client sent its key. */
static void
srv_kms_start(struct fx *f)
{
	static const uint8_t other[64] = { 0xff };
	struct sessioncrypt *wrong = NULL;
	uint8_t key[64];
	struct buf sealed, b64, msg;
	size_t i, n;

	assert_int_equal(client_b64_decode(KEY64_B64, strlen(KEY64_B64), key,
	    sizeof(key), &n), 0);
	assert_int_equal(sessioncrypt_new(&f->sc_agent, SESSIONCRYPT_AGENT,
	    key), 0);
	channel_set_crypto(f->ch, f->sc_agent);
	for (i = 0; i < sizeof(f->challenge); i++)
		f->challenge[i] = (uint8_t)(i * 7 + 1);
	buf_init(&sealed, 1024);
	buf_init(&b64, 1024);
	buf_init(&msg, 2048);
	if (f->sc == SC_KMS_BAD_CHALLENGE) {
		assert_int_equal(sessioncrypt_new(&wrong, SESSIONCRYPT_AGENT,
		    other), 0);
		assert_int_equal(sessioncrypt_seal(wrong, f->challenge, 64,
		    &sealed), 0);
		sessioncrypt_free(wrong);
	} else
		assert_int_equal(sessioncrypt_seal(f->sc_agent, f->challenge,
		    64, &sealed), 0);
	assert_int_equal(client_b64_encode(sealed.data, sealed.len, &b64), 0);
	assert_int_equal(buf_appendf(&msg, "{\"Challenge\":\"%s\"}",
	    buf_cstr(&b64)), 0);
	srv_send(f, PT_ENC_CHALLENGE_REQUEST, buf_cstr(&msg));
	buf_free(&sealed);
	buf_free(&b64);
	buf_free(&msg);
}

static void
srv_challenge_response(struct fx *f, const uint8_t *p, size_t n)
{
	uint8_t raw[256];
	struct buf plain;
	json_t *o;
	size_t len;

	o = json_loadb((const char *)p, n, 0, NULL);
	assert_non_null(o);
	assert_int_equal(client_b64_decode(json_string_value(json_object_get(o,
	    "Challenge")), json_string_length(json_object_get(o, "Challenge")),
	    raw, sizeof(raw), &len), 0);
	json_decref(o);
	/* Sealed with the client's half of the key, and the same bytes. */
	assert_int_equal(len, 64 + SESSIONCRYPT_OVERHEAD);
	buf_init(&plain, 256);
	assert_int_equal(sessioncrypt_open(f->sc_agent, raw, len, &plain), 0);
	assert_int_equal(plain.len, 64);
	assert_memory_equal(plain.data, f->challenge, 64);
	buf_free(&plain);
	f->challenge_ok = 1;
	srv_send(f, PT_HANDSHAKE_COMPLETE, "{\"HandshakeTimeToComplete\":5,"
	    "\"CustomerMessage\":\"" KMS_MESSAGE "\"}");
	f->complete_sent = 1;
	/* Sealed by the channel now (spec 6.3). */
	srv_send(f, PT_OUTPUT, "secret-output\r\n");
}

static void
srv_handshake_response(struct fx *f, const uint8_t *p, size_t n)
{
	json_t *o, *a, *act, *res;
	json_error_t jerr;
	const char *e;

	o = json_loadb((const char *)p, n, 0, &jerr);
	assert_non_null(o);
	a = json_object_get(o, "ProcessedClientActions");
	assert_true(json_is_array(a));
	f->hs_response_count = (int)json_array_size(a);
	for (size_t i = 0; i < json_array_size(a) && i < 2; i++) {
		act = json_array_get(a, i);
		f->hs_response_status[i] = (int)json_integer_value(
		    json_object_get(act, "ActionStatus"));
		e = json_string_value(json_object_get(act, "Error"));
		snprintf(f->hs_error[i], sizeof(f->hs_error[i]), "%s",
		    e ? e : "");
		res = json_object_get(act, "ActionResult");
		if (i == 1 && json_is_object(res)) {
			char *d = json_dumps(res, JSON_COMPACT |
			    JSON_PRESERVE_ORDER);

			snprintf(f->kms_result, sizeof(f->kms_result), "%s",
			    d);
			free(d);
		}
	}
	json_decref(o);
	switch (f->sc) {
	case SC_KMS:
		/* The agent cancels: channel_closed Failed. */
		srv_send_closed(f, "Failed", "Handshake failed.");
		return;
	case SC_KMS_DENIED:
		/* Say nothing: the client ends on its own. */
		return;
	case SC_KMS_OK:
	case SC_KMS_BAD_CHALLENGE:
		assert_int_equal(f->hs_response_status[1], 1);
		srv_kms_start(f);
		return;
	default:
		break;
	}
	srv_send(f, PT_HANDSHAKE_COMPLETE, "{\"HandshakeTimeToComplete\":5,"
	    "\"CustomerMessage\":\"\"}");
	srv_send(f, PT_OUTPUT, "result\n");
	srv_send(f, PT_STDERR, "warning: on stderr\n");
	f->stderr_sent = 1;
	srv_send(f, PT_EXIT_CODE, "EXIT_CODE: 3");
}

static int
srv_deliver(void *ud, uint32_t type, const uint8_t *p, size_t n)
{
	struct fx *f = ud;

	if (f->first_pt == 0)
		f->first_pt = (int)type;
	switch (type) {
	case PT_SIZE:
		if (f->sizes++ == 0)
			snprintf(f->first_size, sizeof(f->first_size), "%.*s",
			    (int)n, (const char *)p);
		break;
	case PT_OUTPUT:
		if (f->sc_agent != NULL && !f->complete_sent)
			f->early_input = 1;
		f->input_msgs++;
		if (n > f->max_input_payload)
			f->max_input_payload = n;
		assert_int_equal(buf_append(&f->input, p, n), 0);
		break;
	case PT_HANDSHAKE_RESPONSE:
		srv_handshake_response(f, p, n);
		break;
	case PT_ENC_CHALLENGE_RESPONSE:
		srv_challenge_response(f, p, n);
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
		srv_send(f, PT_HANDSHAKE_REQUEST, "{\"AgentVersion\":"
		    "\"3.3.1000.0\",\"RequestedClientActions\":"
		    "[{\"ActionType\":"
		    "\"SessionType\",\"ActionParameters\":{\"SessionType\":"
		    "\"NonInteractiveCommands\",\"Properties\":null}}]}");
		break;
	case SC_KMS_OK:
	case SC_KMS_DENIED:
	case SC_KMS_BAD_CHALLENGE:
		srv_send(f, PT_HANDSHAKE_REQUEST, "{\"AgentVersion\":"
		    "\"3.3.1000.0\",\"RequestedClientActions\":"
		    "[{\"ActionType\":"
		    "\"SessionType\",\"ActionParameters\":{\"SessionType\":"
		    "\"Standard_Stream\",\"Properties\":null}},{\"ActionType\":"
		    "\"KMSEncryption\",\"ActionParameters\":{\"KMSKeyId\":"
		    "\"alias/session-key\",\"Challenge\":\"" CHALLENGE_B64
		    "\"}}]}");
		break;
	case SC_KMS:
	case SC_BAD_HS:
		assert_int_equal(channel_send(f->ch, PT_HANDSHAKE_REQUEST,
		    f->bad_hs, strlen(f->bad_hs)), 0);
		break;
	default:
		srv_send(f, PT_OUTPUT, "hello\r\n");
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
	if (f->sc == SC_KMS_OK && memmem(p, n, "exit", 4) != NULL)
		f->plaintext_seen = 1;
	assert_int_equal(channel_receive(f->ch, p, n), 0);
}

static void
srv_ws_close(struct ws *w, int code)
{
	struct fx *f = ws_userdata(w);

	if (f->w == w)
		f->w = NULL;
	if (f->old_w == w)
		f->old_w = NULL;
}

static const struct ws_cbs srv_ws_cbs = {
	.on_message = srv_ws_message,
	.on_close = srv_ws_close,
};

/* The fake KMS: GenerateDataKey checked and answered. */
static void
srv_kms(struct fx *f, struct http_request *req)
{
	static const char ok[] = "{\"CiphertextBlob\":\"" BLOB_B64 "\","
	    "\"Plaintext\":\"" KEY64_B64 "\",\"KeyId\":\"arn:aws:kms:"
	    "us-east-1:111122223333:key/k\"}";
	static const char denied[] = "{\"__type\":\"AccessDeniedException\","
	    "\"message\":\"User: alice is not authorized to perform: "
	    "kms:GenerateDataKey\"}";
	const char *target = http_header(req, "X-Amz-Target");
	json_t *o, *ctx;

	f->kms_calls++;
	snprintf(f->kms_body, sizeof(f->kms_body), "%.*s",
	    (int)req->body_len, (const char *)req->body);
	assert_non_null(target);
	assert_string_equal(target, "TrentService.GenerateDataKey");
	o = json_loadb((const char *)req->body, req->body_len, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "KeyId")),
	    "alias/session-key");
	assert_int_equal(json_integer_value(json_object_get(o,
	    "NumberOfBytes")), 64);
	assert_null(json_object_get(o, "KeySpec"));
	ctx = json_object_get(o, "EncryptionContext");
	assert_int_equal(json_object_size(ctx), 3);
	assert_string_equal(json_string_value(json_object_get(ctx,
	    "aws:ssm:SessionId")), SID);
	assert_string_equal(json_string_value(json_object_get(ctx,
	    "aws:ssm:TargetId")), TARGET);
	assert_string_equal(json_string_value(json_object_get(ctx,
	    "aws:ssm:RandomChallenge")), CHALLENGE_B64);
	json_decref(o);
	if (f->sc == SC_KMS_DENIED)
		http_respond(req, 400, "application/x-amz-json-1.1", NULL,
		    denied, sizeof(denied) - 1);
	else
		http_respond(req, 200, "application/x-amz-json-1.1", NULL, ok,
		    sizeof(ok) - 1);
}

static void
srv_http(struct http_request *req, void *arg)
{
	struct fx *f = arg;
	struct ws *w;

	if (!req->is_upgrade && strcmp(req->method, "POST") == 0 &&
	    strcmp(req->path, "/") == 0) {
		srv_kms(f, req);
		return;
	}
	if (!req->is_upgrade ||
	    strcmp(req->path, "/v1/data-channel/" SID) != 0) {
		http_respond(req, 404, "text/plain", NULL, "no", 2);
		return;
	}
	w = http_upgrade_ws(req, &srv_ws_cbs, f);
	assert_non_null(w);
	/* A connection the client gave up on is closed by us too. */
	if (f->w != NULL) {
		if (f->old_w != NULL)
			ws_close(f->old_w, 1000, "");
		f->old_w = f->w;
		ws_close(f->old_w, 1000, "replaced");
	}
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
	long ms;
	char out[16384];
	char err[16384];
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

/* Run the client with input on its stdin (a pipe, or the pseudo-terminal
 * of SC_ESCAPE) and play the other end until it exits. */
static void
run_input(struct fx *f, const char *input, size_t input_len,
    struct result *r)
{
	char opath[] = "/tmp/ph-client-out-XXXXXX";
	char epath[] = "/tmp/ph-client-err-XXXXXX";
	struct timespec t0, t1;
	int inp[2], ofd, efd, i, in_fd;

	fx_cur = f;
	assert_int_equal(uv_loop_init(&f->loop), 0);
	buf_init(&f->input, (size_t)1 << 20);
	assert_int_equal(listener_start(&f->loop, NULL, "127.0.0.1", 0,
	    srv_accept, f, &f->l), 0);
	f->port = listener_port(f->l);
	if (f->sc == SC_ESCAPE) {
		f->pty_master = posix_openpt(O_RDWR | O_NOCTTY);
		assert_true(f->pty_master >= 0);
		assert_int_equal(grantpt(f->pty_master), 0);
		assert_int_equal(unlockpt(f->pty_master), 0);
		in_fd = open(ptsname(f->pty_master), O_RDWR | O_NOCTTY);
		assert_true(in_fd >= 0);
		inp[1] = -1;
	} else {
		assert_int_equal(pipe(inp), 0);
		/* Room for the whole paste before the client reads. */
		(void)fcntl(inp[1], F_SETPIPE_SZ, 1 << 20);
		assert_int_equal(write(inp[1], input, input_len),
		    (ssize_t)input_len);
		close(inp[1]); /* EOF after the input */
		in_fd = inp[0];
	}
	ofd = mkstemp(opath);
	efd = mkstemp(epath);
	assert_true(ofd >= 0 && efd >= 0);
	fflush(NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0)
		run_child(f, in_fd, ofd, efd);
	close(in_fd);
	close(ofd);
	close(efd);
	uv_timer_init(&f->loop, &f->wait_timer);
	uv_timer_init(&f->loop, &f->deadline);
	f->wait_timer.data = f->deadline.data = f;
	uv_timer_start(&f->wait_timer, wait_cb, 20, 20);
	uv_timer_start(&f->deadline, deadline_cb, RUN_TIMEOUT_MS, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) /
	    1000000;

	if (f->w != NULL)
		ws_close(f->w, 1000, "");
	if (f->old_w != NULL)
		ws_close(f->old_w, 1000, "");
	listener_stop(f->l);
	uv_walk(&f->loop, close_walk, NULL);
	for (i = 0; i < 100 && uv_run(&f->loop, UV_RUN_NOWAIT) != 0; i++)
		usleep(1000);
	(void)uv_loop_close(&f->loop);
	if (f->ch != NULL)
		channel_free(f->ch);
	if (f->sc_agent != NULL)
		sessioncrypt_free(f->sc_agent);
	if (f->pty_master > 0)
		close(f->pty_master);
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
run(struct fx *f, const char *input, struct result *r)
{
	run_input(f, input, strlen(input), r);
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
	/* stdin, then an end-of-file character when the pipe ended; no
	 * escapes on a pipe. */
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
	run(&f, "~.exit\n", &r);
	assert_int_equal(r.exit, 1);
	assert_non_null(strstr(r.out, "\n\nSessionId: " SID
	    " : The session's agent disconnected.\n\n"));
	/* Not a terminal: "~." is data. */
	assert_string_equal(f.input_copy, "~.exit\n\x04");
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
		/* stderr on fd 2, stdout on fd 1 (spec 7.3). */
		assert_non_null(strstr(r.err, "warning: on stderr\n"));
		assert_null(strstr(r.out, "warning"));
		if (mode) {
			/* As the official plugin shows it. */
			assert_non_null(strstr(r.out, "result\nEXIT_CODE: 3"));
		} else {
			/* The exit status says it. */
			assert_non_null(strstr(r.out, "result\n"));
			assert_null(strstr(r.out, "EXIT_CODE"));
		}
		assert_non_null(strstr(r.out,
		    "Exiting session with sessionId"));
	}
}

static void
test_kms_session(void **state)
{
	struct fx f;
	struct result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.sc = SC_KMS_OK;
	run(&f, "exit\n", &r);
	assert_int_equal(r.exit, 0);
	assert_int_equal(f.kms_calls, 1);
	assert_int_equal(f.hs_response_count, 2);
	assert_int_equal(f.hs_response_status[0], 1);
	assert_int_equal(f.hs_response_status[1], 1);
	assert_string_equal(f.kms_result, "{\"KMSCipherTextKey\":\"" BLOB_B64
	    "\",\"KMSCipherTextHash\":null,\"ChallengeAcknowledgement\":true}");
	assert_true(f.challenge_ok);
	/* Nothing typed left before HandshakeComplete, and nothing crossed
	 * the connection unsealed; the agent opened what was typed. */
	assert_false(f.early_input);
	assert_false(f.plaintext_seen);
	assert_string_equal(f.input_copy, "exit\n\x04");
	assert_string_equal(r.out, "\nStarting session with SessionId: " SID
	    "\n" KMS_MESSAGE "\nsecret-output\r\n\n\nExiting session with "
	    "sessionId: " SID ".\n\n");
	assert_string_equal(r.err, "");
}

static void
test_kms_denied(void **state)
{
	struct fx f;
	struct result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.sc = SC_KMS_DENIED;
	run(&f, "exit\n", &r);
	/* The agent said nothing more: the client ended by itself. */
	assert_int_equal(r.exit, 1);
	assert_int_equal(f.kms_calls, 1);
	assert_int_equal(f.hs_response_status[0], 1);
	assert_int_equal(f.hs_response_status[1], 2);
	assert_string_equal(f.hs_error[1], "An error occurred "
	    "(AccessDeniedException) when calling the GenerateDataKey "
	    "operation: User: alice is not authorized to perform: "
	    "kms:GenerateDataKey");
	assert_string_equal(f.kms_result, "");
	assert_non_null(strstr(r.err, "porthole: KMS encryption failed: An "
	    "error occurred (AccessDeniedException) when calling the "
	    "GenerateDataKey operation: User: alice is not authorized to "
	    "perform: kms:GenerateDataKey\n"));
	assert_non_null(strstr(r.err, "[terminate " SID " 5s]"));
	/* Not a byte of input went out. */
	assert_int_equal(f.input_msgs, 0);
}

static void
test_kms_refused(void **state)
{
	static const char *legacy_req = "{\"AgentVersion\":\"3.3.1000.0\","
	    "\"RequestedClientActions\":[{\"ActionType\":\"SessionType\","
	    "\"ActionParameters\":{\"SessionType\":\"Standard_Stream\","
	    "\"Properties\":null}},{\"ActionType\":\"KMSEncryption\","
	    "\"ActionParameters\":{\"KMSKeyId\":\"alias/k\"}}]}";
	static const char *bad_req = "{\"AgentVersion\":\"3.3.1000.0\","
	    "\"RequestedClientActions\":[{\"ActionType\":\"SessionType\","
	    "\"ActionParameters\":{\"SessionType\":\"Standard_Stream\","
	    "\"Properties\":null}},{\"ActionType\":\"KMSEncryption\","
	    "\"ActionParameters\":{\"KMSKeyId\":[1,2]}}]}";
	struct fx f;
	struct result r;

	(void)state;
	/* spec 6.5: a legacy AWS CLI cannot do KMS. */
	memset(&f, 0, sizeof(f));
	f.sc = SC_KMS;
	f.legacy = 1;
	f.bad_hs = legacy_req;
	run(&f, "", &r);
	assert_int_equal(r.exit, 1);
	assert_int_equal(f.kms_calls, 0);
	assert_int_equal(f.hs_response_count, 2);
	assert_int_equal(f.hs_response_status[0], 1);
	assert_int_equal(f.hs_response_status[1], 2);
	assert_string_equal(f.hs_error[1], "KMS encryption needs a newer AWS "
	    "CLI: upgrade your AWS CLI to open encrypted sessions");
	assert_non_null(strstr(r.err, "porthole: KMS encryption failed: KMS "
	    "encryption needs a newer AWS CLI: upgrade your AWS CLI to open "
	    "encrypted sessions\n"));
	assert_non_null(strstr(r.out, "SessionId: " SID
	    " : Handshake failed."));
	/* Unusable parameters: Failed without a KMS call. */
	memset(&f, 0, sizeof(f));
	f.sc = SC_KMS;
	f.bad_hs = bad_req;
	run(&f, "", &r);
	assert_int_equal(r.exit, 1);
	assert_int_equal(f.kms_calls, 0);
	assert_int_equal(f.hs_response_status[1], 2);
	assert_string_equal(f.hs_error[1],
	    "KMSEncryption has no usable KMSKeyId");
	assert_non_null(strstr(r.err, "porthole: KMS encryption failed: "
	    "KMSEncryption has no usable KMSKeyId\n"));
}

static void
test_kms_bad_challenge(void **state)
{
	struct fx f;
	struct result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.sc = SC_KMS_BAD_CHALLENGE;
	run(&f, "exit\n", &r);
	assert_int_equal(r.exit, 1);
	assert_false(f.challenge_ok);
	assert_int_equal(f.input_msgs, 0);
	assert_non_null(strstr(r.err, "The agent's encryption challenge does "
	    "not decrypt with the session key."));
}

static void
test_bad_handshake_payloads(void **state)
{
	static const char *bad[] = {
		"not json",
		"{}",
		"[1,2,3]",
		"{\"RequestedClientActions\":5}",
		"{\"RequestedClientActions\":\"SessionType\"}",
		"{\"RequestedClientActions\":null}",
		"\"a string\"",
	};
	struct fx f;
	struct result r;
	char *huge;
	size_t i;

	(void)state;
	for (i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&f, 0, sizeof(f));
		f.sc = SC_BAD_HS;
		huge = NULL;
		if (i < sizeof(bad) / sizeof(bad[0]))
			f.bad_hs = bad[i];
		else {
			/* 60000 nested arrays: deep, and near the limit. */
			huge = malloc(60001);
			assert_non_null(huge);
			memset(huge, '[', 60000);
			huge[60000] = '\0';
			f.bad_hs = huge;
		}
		run(&f, "exit\n", &r);
		free(huge);
		assert_int_equal(r.exit, 1);
		assert_non_null(strstr(r.err,
		    "The agent sent an invalid handshake request."));
		assert_int_equal(f.hs_response_count, 0);
		assert_int_equal(f.input_msgs, 0);
	}
}

static void
test_reconnect(void **state)
{
	static const int codes[] = { 1001, 1000 };
	struct fx f;
	struct result r;
	size_t i;

	(void)state;
	/* A normal close by the server (1000, or 1001 from a draining
	 * node) without channel_closed is resumed, not the end. */
	for (i = 0; i < 2; i++) {
		memset(&f, 0, sizeof(f));
		f.sc = SC_RECONNECT;
		f.drop_code = codes[i];
		run(&f, "exit\n", &r);
		assert_int_equal(r.exit, 0);
		assert_int_equal(f.opens, 2);
		assert_string_equal(f.tokens[0], "tok-start");
		assert_string_equal(f.tokens[1], "tok-resumed");
		/* Same ClientId across reconnects (spec 1.2). */
		assert_string_equal(f.client_ids[0], f.client_ids[1]);
		assert_non_null(strstr(r.out,
		    "Exiting session with sessionId: " SID));
		assert_string_equal(f.input_copy, "exit\n\x04");
	}
}

static void
test_dead_peer(void **state)
{
	struct fx f;
	struct result r;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.sc = SC_DEAD_PEER;
	run(&f, "exit\n", &r);
	assert_int_equal(r.exit, 0);
	/* Pings every second: silent for 3 s, the client resumed. */
	assert_int_equal(f.opens, 2);
	assert_string_equal(f.tokens[1], "tok-resumed");
	assert_true(r.ms >= 3000 && r.ms < 10000);
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

static void
test_paste(void **state)
{
	struct fx f;
	struct result r;
	struct buf in;
	int i;

	(void)state;
	buf_init(&in, (size_t)1 << 20);
	for (i = 0; i < PASTE_LINES; i++)
		assert_int_equal(buf_appendf(&in, "paste line %05d\n", i), 0);
	assert_int_equal(buf_append_str(&in, "exit\n"), 0);
	memset(&f, 0, sizeof(f));
	f.sc = SC_SHELL;
	run_input(&f, (const char *)in.data, in.len, &r);
	assert_int_equal(r.exit, 0);
	/* Complete and in order, in full 1024-byte messages (the end of
	 * each 64 KiB read and the end-of-file byte aside), quickly. */
	assert_true(f.input_ok);
	assert_int_equal(f.max_input_payload, 1024);
	assert_true(f.input_msgs <= (int)((in.len + 1023) / 1024) + 4);
	assert_true(r.ms < 5000);
	buf_free(&in);
}

static void
test_escape_on_terminal(void **state)
{
	struct fx f;
	struct result r;
	int mode;

	(void)state;
	for (mode = 0; mode < 2; mode++) {
		memset(&f, 0, sizeof(f));
		f.sc = SC_ESCAPE;
		f.plugin_mode = mode;
		run_input(&f, "", 0, &r);
		/* ssh's 255; 0 as session-manager-plugin (the AWS CLI
		 * reports any other status as a failure). */
		assert_int_equal(r.exit, mode ? 0 : 255);
		assert_true(f.pty_written);
		/* What came before the escapes went out; "~?" and "~." did
		 * not. */
		assert_string_equal(f.input_copy, "ls\r");
		assert_non_null(strstr(r.err, "~?\r\nSupported escape "
		    "sequences:\r\n ~.   - end the session (disconnect)\r\n"));
		assert_non_null(strstr(r.err, "~.\nporthole: disconnected from "
		    "session " SID "\n"));
		/* TerminateSession, bounded, off the loop. */
		assert_non_null(strstr(r.err, "[terminate " SID " 5s]"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shell_session),
		cmocka_unit_test(test_failed_session),
		cmocka_unit_test(test_noninteractive_exit_code),
		cmocka_unit_test(test_kms_session),
		cmocka_unit_test(test_kms_denied),
		cmocka_unit_test(test_kms_refused),
		cmocka_unit_test(test_kms_bad_challenge),
		cmocka_unit_test(test_bad_handshake_payloads),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_dead_peer),
		cmocka_unit_test(test_resume_timed_out),
		cmocka_unit_test(test_unreachable_gives_up),
		cmocka_unit_test(test_paste),
		cmocka_unit_test(test_escape_on_terminal),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
