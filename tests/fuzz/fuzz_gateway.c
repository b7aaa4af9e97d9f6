/* fuzz_gateway: the gateway (server/gateway.c) behind fake connections
 * (fakeconn.c): agents' control channels, the data channels of agents and
 * clients, the relay between them and the API's calls into it, in any
 * order, with the close orders that follow. Every connection is served by
 * http.c as portholed serves it, so each channel starts with its upgrade
 * request. The store is real: three registered instances (the third one
 * deregistered) and three open sessions (two on the first instance, one on
 * the second), copied from a template database made once into a new data
 * directory (in /dev/shm or $TMPDIR, removed after the input), so every
 * input starts from the same state and replays alone. Client tokens are
 * issued afresh for each input.
 *
 * Input: up to 64 operations, each an op byte (op % 13 the operation,
 * (op >> 4) % 6 the connection it concerns) and its operands (see the
 * switch and the op_* functions; "lp" is a fuzzin_bytes operand). After
 * each operation the loop runs once without waiting and every connection
 * is pumped. At the end the peers close everything and the gateway is
 * freed (unless a shutdown freed it first, as when connections outlive
 * portholed's closing turns); the loop must end with no handle left.
 * The loop's timers never fire by themselves (an input takes no time);
 * an operation runs the gateway's own timers as if time had passed
 * (grace, idle and maximum duration, freeing finished relays). The
 * WebSocket keep-alives are left out. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/clientmsg.h"
#include "common/http.h"
#include "server/authz.h"
#include "server/gateway.h"
#include "server/server.h"
#include "server/store.h"
#include "server/store_iam.h"
#include "fakeconn.h"
#include "fuzzin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSLOT 6
#define NINST 3          /* the third is deregistered */
#define NSESS 3
#define MAX_OPS 64
#define UNKNOWN_INSTANCE "mi-0123456789abcdef0"

struct slot {
	struct conn *c;
	int sess;            /* session index of its data channel, or -1 */
};

static struct {
	uv_loop_t loop;
	struct server srv;
	const char *root;    /* where data directories are made */
	char dir[256];       /* this input's data directory */
	char db[300];
	uint8_t *tmpl;       /* the template database file */
	size_t tmpl_len;
	char inst[NINST][21];
	char sess[NSESS][SESSION_ID_MAX];
	char token[NSESS][STORE_TOKEN_SIZE];
} G;

static struct slot slots[NSLOT];
static struct gateway *gw;

static const char *const msg_types[] = {
	MT_INPUT_STREAM, MT_OUTPUT_STREAM, MT_ACKNOWLEDGE, MT_CHANNEL_CLOSED,
	MT_START_PUBLICATION, MT_PAUSE_PUBLICATION, MT_AGENT_SESSION_STATE,
	MT_INTERACTIVE_SHELL, MT_AGENT_JOB, MT_AGENT_JOB_ACK,
	MT_AGENT_JOB_REPLY, MT_AGENT_JOB_REPLY_ACK, MT_AGENT_TASK_COMPLETE,
	MT_AGENT_TASK_ACK, "x",
};
#define NTYPES (sizeof(msg_types) / sizeof(msg_types[0]))

/* ---- setup, once ------------------------------------------------------ */

/* Each input gets a directory of its own, removed after it: one whose
 * input crashed stays there to look at. */
static void
make_dir(void)
{
	snprintf(G.dir, sizeof(G.dir), "%s/ph-fuzz-gateway-XXXXXX", G.root);
	if (mkdtemp(G.dir) == NULL)
		abort();	/* the machine, not the input */
	snprintf(G.db, sizeof(G.db), "%s/%s", G.dir, SERVER_DB_FILE);
	snprintf(G.srv.data_dir, sizeof(G.srv.data_dir), "%s", G.dir);
}

static void
rm_dir(void)
{
	char p[320];

	snprintf(p, sizeof(p), "%s/template.db", G.dir);
	unlink(p);
	unlink(G.db);
	snprintf(p, sizeof(p), "%s-wal", G.db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", G.db);
	unlink(p);
	rmdir(G.dir);
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	uint8_t *p = NULL;
	long n;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n)) != NULL &&
	    fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	if (p != NULL)
		*len = (size_t)n;
	fclose(f);
	return p;
}

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");
	struct activation_new a;
	struct session_rec rec;
	char id[STORE_ACTIVATION_ID_SIZE], code[STORE_ACTIVATION_CODE_LEN + 1];
	char role[STORE_IAM_ROLE_SIZE], path[320];
	struct iam_role_rec role_rec;
	struct store *st;
	int64_t now = 1767225600000; /* 2026-01-01 */
	int i;

	if (uv_loop_init(&G.loop) != 0)
		abort();
	/* tmpfs when there is one: SQLite syncs would cost most of an input. */
	if ((tmp == NULL || tmp[0] == '\0') && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	G.root = tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp";
	make_dir();
	snprintf(path, sizeof(path), "%s/template.db", G.dir);
	if (store_open(&st, path) != 0)
		abort();
	/* The agents' role, with what their channels need (authz.c). */
	memset(&role_rec, 0, sizeof(role_rec));
	snprintf(role_rec.name, sizeof(role_rec.name), "porthole-role");
	snprintf(role_rec.path, sizeof(role_rec.path), "/");
	snprintf(role_rec.arn, sizeof(role_rec.arn),
	    "arn:aws:iam::123456789012:role/porthole-role");
	role_rec.max_session_duration = 3600;
	role_rec.trust_policy = (char *)"{\"Version\":\"2012-10-17\","
	    "\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
	    "{\"Service\":\"ssm.amazonaws.com\"},"
	    "\"Action\":\"sts:AssumeRole\"}]}";
	if (store_iam_role_create(st, &role_rec) != 0 ||
	    store_iam_inline_put(st, IAM_ENTITY_ROLE, "porthole-role", "agent",
	    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
	    "\"Allow\",\"Action\":[\"ssmmessages:*\","
	    "\"ssm:UpdateInstanceInformation\"],\"Resource\":\"*\"}]}") != 0)
		abort();
	role_rec.trust_policy = NULL;
	memset(&a, 0, sizeof(a));
	a.iam_role = "porthole-role";
	a.registration_limit = NINST;
	a.expiration_ms = now + 86400000;
	if (store_activation_create(st, &a, now, id, code) != 0)
		abort();
	for (i = 0; i < NINST; i++)
		if (store_activation_register(st, id, code, now, "fuzz", "fp",
		    G.inst[i], role) != 0)
			abort();
	if (store_instance_deregister(st, G.inst[NINST - 1], now) != 0)
		abort();
	/* As StartSession records them (api_ssm.c). */
	for (i = 0; i < NSESS; i++) {
		memset(&rec, 0, sizeof(rec));
		snprintf(G.sess[i], sizeof(G.sess[i]), "fuzz-%017d", i);
		snprintf(rec.session_id, sizeof(rec.session_id), "%s",
		    G.sess[i]);
		snprintf(rec.target, sizeof(rec.target), "%s",
		    G.inst[i < 2 ? 0 : 1]);
		snprintf(rec.owner, sizeof(rec.owner),
		    "arn:aws:iam::123456789012:user/admin");
		snprintf(rec.status, sizeof(rec.status), "Connected");
		snprintf(rec.document_name, sizeof(rec.document_name),
		    "SSM-SessionManagerRunShell");
		rec.start_ms = now;
		if (store_session_create(st, &rec, NULL) != 0)
			abort();
	}
	store_close(st);
	if ((G.tmpl = read_file(path, &G.tmpl_len)) == NULL)
		abort();
	rm_dir();
	G.srv.loop = &G.loop;
	snprintf(G.srv.region, sizeof(G.srv.region), "us-east-1");
	snprintf(G.srv.account_id, sizeof(G.srv.account_id), "123456789012");
}

/* A fresh copy of the template store in a new data directory, with a new
 * token per session. */
static void
store_reset(void)
{
	struct timespec ts;
	int64_t now;
	int fd, i;

	make_dir();
	fd = open(G.db, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, G.tmpl, G.tmpl_len) != (ssize_t)G.tmpl_len)
		abort();
	close(fd);
	if (store_open_ex(&G.srv.store, G.db, 0, NULL, 0) != 0)
		abort();
	/* Tokens expire by the wall clock (store_session_consume_token). */
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	for (i = 0; i < NSESS; i++)
		if (store_session_issue_token(G.srv.store, G.sess[i], now,
		    STORE_TOKEN_TTL_MS, G.token[i]) != 0)
			abort();
}

/* ---- the peer's bytes ------------------------------------------------ */

/* A masked client frame (RFC 6455 5.2); the zero mask keeps seeds
 * readable. */
static void
ws_frame(struct buf *b, int opcode, const void *p, size_t n)
{
	uint8_t h[14];
	size_t hl = 0;

	h[hl++] = (uint8_t)(0x80 | opcode);
	if (n < 126)
		h[hl++] = (uint8_t)(0x80 | n);
	else if (n < 65536) {
		h[hl++] = 0x80 | 126;
		h[hl++] = (uint8_t)(n >> 8);
		h[hl++] = (uint8_t)n;
	} else {
		h[hl++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			h[hl++] = (uint8_t)((uint64_t)n >> (8 * i));
	}
	memset(h + hl, 0, 4);
	hl += 4;
	(void)buf_append(b, h, hl);
	(void)buf_append(b, p, n);
}

static void
send_frame(struct slot *s, int opcode, const void *p, size_t n)
{
	struct buf b;

	buf_init(&b, (size_t)1 << 20);
	ws_frame(&b, opcode, p, n);
	fakeconn_feed(s->c, b.data, b.len);
	buf_free(&b);
}

static void
upgrade(struct slot *s, const char *method, const char *path, int ws)
{
	char req[512];
	int n;

	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: gw\r\n%s\r\n",
	    method, path, ws ? "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n" : "");
	if (n > 0 && (size_t)n < sizeof(req))
		fakeconn_feed(s->c, (const uint8_t *)req, (size_t)n);
}

/* As portholed's route_request (server/main.c). */
static void
handler(struct http_request *req, void *arg)
{
	(void)arg;
	if (req->is_upgrade && strncmp(req->path, "/v1/", 4) == 0 &&
	    gw != NULL) {
		gateway_handle_upgrade(gw, req);
		return;
	}
	(void)http_respond(req, 404, "text/plain", NULL, "no", 2);
}

/* Operands: who, where, slot, lp (a session id or a request). */
static void
op_open(struct fuzzin *in)
{
	uint8_t who = fuzzin_u8(in), where = fuzzin_u8(in);
	struct slot *s = &slots[fuzzin_u8(in) % NSLOT];
	const char *cn;
	char path[300];
	const uint8_t *p;
	size_t n;
	int k;

	p = fuzzin_bytes(in, 128, &n);
	if (s->c != NULL)
		return;
	if ((s->c = fakeconn_accept(&G.loop)) == NULL)
		abort();
	s->sess = -1;
	/* who: an agent's certificate (instance 0-2, or unknown), or none */
	k = who % 5;
	cn = k < NINST ? G.inst[k] : k == 3 ? UNKNOWN_INSTANCE : NULL;
	fakeconn_set_peer_cn(s->c, cn);
	if (http_serve(s->c, handler, NULL) != 0)
		abort();
	k = (where >> 3) % 4;
	switch (where % 8) {
	case 0:
		snprintf(path, sizeof(path), "/v1/control-channel/%s",
		    k < NINST ? G.inst[k] : UNKNOWN_INSTANCE);
		upgrade(s, "GET", path, 1);
		break;
	case 1:
	case 2:
	case 3:
		s->sess = where % 8 - 1;
		snprintf(path, sizeof(path), "/v1/data-channel/%s?role="
		    "publish_subscribe", G.sess[s->sess]);
		upgrade(s, "GET", path, 1);
		break;
	case 4:		/* a session id of the input's */
		snprintf(path, sizeof(path), "/v1/data-channel/%.*s",
		    (int)n, (const char *)p);
		if (strchr(path, ' ') == NULL && strchr(path, '\r') == NULL &&
		    strchr(path, '\n') == NULL)
			upgrade(s, "GET", path, 1);
		break;
	case 5:
		upgrade(s, "GET", "/v1/nowhere", 1);
		break;
	case 6:		/* not an upgrade, or not a GET */
		snprintf(path, sizeof(path), "/v1/data-channel/%s",
		    G.sess[k % NSESS]);
		upgrade(s, k & 1 ? "POST" : "GET", path, !(k & 2));
		break;
	case 7:		/* the input's own request */
		fakeconn_feed(s->c, p, n);
		break;
	}
}

/* Operands: kind, lp (the text itself for kind 4). */
static void
op_text(struct fuzzin *in, struct slot *s)
{
	uint8_t kind = fuzzin_u8(in);
	const uint8_t *p;
	json_t *o = NULL;
	char *txt;
	size_t n;
	int k = s->sess >= 0 ? s->sess : (kind >> 3) % NSESS;

	p = fuzzin_bytes(in, 4096, &n);
	switch (kind % 5) {
	case 0:		/* spec 2.3 */
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
		    "Cookie", "", "MessageSchemaVersion", "1.0",
		    "RequestId", "5b2f5e1c-3f8b-4c55-9a1e-0e0c7c0c2b1d",
		    "AgentVersion", "3.3.0.0", "PlatformType",
		    kind & 8 ? "windows" : "linux", "PlatformName", "Debian",
		    "IPAddress", "10.0.0.7", "ComputerName", "fuzz");
		break;
	case 1:		/* spec 2.1: the right token */
		o = json_pack("{s:s, s:s, s:s}", "MessageSchemaVersion", "1.0",
		    "RequestId", "r", "TokenValue", G.token[k]);
		break;
	case 2:
		o = json_pack("{s:s, s:s, s:s}", "MessageSchemaVersion", "1.0",
		    "RequestId", "r", "TokenValue", G.token[(k + 1) % NSESS]);
		break;
	case 3:
		o = json_pack("{s:s, s:i}", "MessageSchemaVersion", "1.0",
		    "TokenValue", 7);
		break;
	case 4:
		send_frame(s, 1, p, n);
		return;
	}
	if (o == NULL || (txt = json_dumps(o, JSON_COMPACT)) == NULL)
		abort();
	send_frame(s, 1, txt, strlen(txt));
	free(txt);
	json_decref(o);
}

/* Operands: type, flags (bits 0-1 SYN/FIN, 0x10 a wrong digest, 0x20
 * cut short by a further byte), payload type, kind (bits 0-1: the lp
 * bytes, SessionState, task complete, nothing; kind >> 2 the session;
 * 0x10 an unknown TaskId; 0x20 Connected / Failed), sequence (u16), lp. */
static void
op_binary(struct fuzzin *in, struct slot *s)
{
	uint8_t type = fuzzin_u8(in), flags = fuzzin_u8(in);
	uint8_t ptype = fuzzin_u8(in), kind = fuzzin_u8(in);
	int64_t seq = fuzzin_u16(in);
	uint8_t id[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	    16 };
	const char *sid = kind & 0x10 ? "nope" : G.sess[(kind >> 2) % NSESS];
	char payload[256];
	const uint8_t *p;
	struct buf b;
	size_t n;

	p = fuzzin_bytes(in, 8192, &n);
	switch (kind & 3) {
	case 1:
		n = (size_t)snprintf(payload, sizeof(payload),
		    "{\"SessionState\":\"%s\"}",
		    kind & 0x20 ? "Connected" : "Terminating");
		p = (const uint8_t *)payload;
		break;
	case 2:		/* spec 8.2 */
		n = (size_t)snprintf(payload, sizeof(payload),
		    "{\"TaskId\":\"%s\",\"FinalTaskStatus\":\"%s\","
		    "\"Output\":\"done\"}", sid,
		    kind & 0x20 ? "Failed" : "Success");
		p = (const uint8_t *)payload;
		break;
	case 3:
		n = 0;
		break;
	}
	buf_init(&b, (size_t)1 << 20);
	if (clientmsg_encode(&b, msg_types[type % NTYPES], seq, flags & 3, id,
	    ptype % 13, p, n) != 0)
		abort();
	if ((flags & 0x10) && b.len > 100)
		b.data[100] ^= 1;	/* a wrong digest */
	if ((flags & 0x20) && b.len > 0)
		b.len -= 1 + fuzzin_u8(in) % b.len;	/* cut short */
	send_frame(s, 2, b.data, b.len);
	buf_free(&b);
}

/* Operands: instance, session, document (bit 0 idle 1 min, bit 1 at
 * most 1 min, bit 2 parameters, bit 3 RunAsUser). */
static void
op_start(struct fuzzin *in)
{
	uint8_t ki = fuzzin_u8(in), ks = fuzzin_u8(in), kd = fuzzin_u8(in);
	json_t *doc, *params;

	if (gw == NULL)
		return;
	doc = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "schemaVersion",
	    "1.0", "sessionType", "Standard_Stream", "inputs",
	    "idleSessionTimeout", kd & 1 ? "1" : "20",
	    "maxSessionDuration", kd & 2 ? "1" : "",
	    "runAsEnabled", "false");
	params = json_object();
	if (doc == NULL || params == NULL)
		abort();
	(void)gateway_start_session(gw, ki % 4 < NINST ? G.inst[ki % 4] :
	    UNKNOWN_INSTANCE, ks % 4 < NSESS ? G.sess[ks % 4] : "fuzz-new",
	    "SSM-SessionManagerRunShell", doc, kd & 4 ? params : NULL,
	    "arn:aws:iam::123456789012:user/admin", kd & 8 ? "ssm-user" :
	    NULL);
	json_decref(params);
	json_decref(doc);
}

/* Time passes: the gateway's timers (the tick that checks deadlines and
 * frees finished relays, the ping refresh) run as if ms later. Their
 * callbacks are called directly with the loop's clock moved for the call
 * only (libuv's timer_cb field: libuv recomputes its clock at every
 * uv_run, so there is no other way to skip time without waiting), so an
 * input replays the same way at any speed. */
struct timers {
	uv_timer_t *t[4];
	int n;
};

static void
find_timers(uv_handle_t *h, void *arg)
{
	struct timers *ts = arg;

	if (h->type == UV_TIMER && h->data == gw && uv_is_active(h) &&
	    ts->n < 4)
		ts->t[ts->n++] = (uv_timer_t *)h;
}

static void
op_time(uint8_t v)
{
	/* Nothing; past the agent's grace (30 s), the client's (120 s) and
	 * the idle (1 or 20 min) and maximum (1 min) durations. */
	static const uint64_t skip[] = { 0, 31000, 121000, 3660000 };
	struct timers ts = { { NULL }, 0 };
	uint64_t saved = G.loop.time;
	int i;

	uv_walk(&G.loop, find_timers, &ts);
	for (i = 0; i < ts.n; i++) {
		G.loop.time = saved + skip[v % 4];
		ts.t[i]->timer_cb(ts.t[i]);
	}
	G.loop.time = saved;
}

static void
pump_all(void)
{
	int i;

	(void)uv_run(&G.loop, UV_RUN_NOWAIT);
	for (i = 0; i < NSLOT; i++)
		if (slots[i].c != NULL && fakeconn_pump(slots[i].c))
			slots[i].c = NULL;
	(void)uv_run(&G.loop, UV_RUN_NOWAIT);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct fuzzin in = { data, size };
	struct slot *s;
	const uint8_t *p;
	size_t n, step;
	uint8_t op, v;
	int i, left, shut = 0;

	if (!ready) {
		setup();
		ready = 1;
	}
	store_reset();
	if (gateway_new(&gw, &G.srv) != 0)
		abort();
	G.srv.gw = gw;
	memset(slots, 0, sizeof(slots));
	for (step = 0; step < MAX_OPS && in.n > 0; step++) {
		op = fuzzin_u8(&in);
		s = &slots[(op >> 4) % NSLOT];
		switch (op % 13) {
		case 0:
			op_open(&in);
			break;
		case 1:		/* OpenControlChannel / OpenDataChannel */
			if (s->c != NULL)
				op_text(&in, s);
			else
				(void)fuzzin_bytes(&in, 4096, &n);
			break;
		case 2:		/* a ClientMessage */
			if (s->c != NULL)
				op_binary(&in, s);
			else
				(void)fuzzin_bytes(&in, 8192, &n);
			break;
		case 3:		/* raw bytes */
			p = fuzzin_bytes(&in, 8192, &n);
			if (s->c != NULL)
				fakeconn_feed(s->c, p, n);
			break;
		case 4:
			if (s->c != NULL)
				fakeconn_peer_close(s->c);
			break;
		case 5:		/* a close frame, or a ping */
			v = fuzzin_u8(&in);
			if (s->c != NULL && (v & 1))
				send_frame(s, 9, "hi", 2);
			else if (s->c != NULL) {
				uint8_t cl[2] = { 0x03,
				    (uint8_t)(0xe8 + v % 16) };

				send_frame(s, 8, cl, sizeof(cl));
			}
			break;
		case 6:
			op_start(&in);
			break;
		case 7:
			v = fuzzin_u8(&in);
			if (gw != NULL)
				(void)gateway_terminate_session(gw,
				    v % 4 < NSESS ? G.sess[v % 4] :
				    "fuzz-unknown", "fuzz");
			break;
		case 8:
			v = fuzzin_u8(&in);
			if (gw != NULL)
				gateway_disconnect_instance(gw, v % 4 < NINST ?
				    G.inst[v % 4] : UNKNOWN_INSTANCE);
			break;
		case 9:		/* the kernel's queue fills or drains */
			v = fuzzin_u8(&in);
			if (s->c != NULL)
				fakeconn_set_pending(s->c, v & 1 ?
				    CONN_HIGH_WATER * 8 : 0);
			break;
		case 10:	/* ResumeSession: a new token */
			v = fuzzin_u8(&in);
			(void)store_session_issue_token(G.srv.store,
			    G.sess[v % NSESS], (int64_t)time(NULL) * 1000,
			    STORE_TOKEN_TTL_MS, G.token[v % NSESS]);
			break;
		case 11:
			v = fuzzin_u8(&in);
			if (gw != NULL)
				op_time(v);
			break;
		case 12:	/* SIGTERM or SIGUSR2 */
			v = fuzzin_u8(&in);
			if (gw == NULL)
				break;
			if (!shut++)
				gateway_shutdown(gw, v & 1);
			/* Connections that outlive portholed's closing
			 * turns (server/main.c): the gateway goes first. */
			if (v & 2) {
				gateway_free(gw);
				gw = NULL;
			}
			break;
		}
		pump_all();
	}
	for (i = 0; i < NSLOT; i++)
		if (slots[i].c != NULL)
			fakeconn_peer_close(slots[i].c);
	for (i = 0; i < 64; i++)
		pump_all();
	for (i = 0, left = 0; i < NSLOT; i++)
		left += slots[i].c != NULL;
	if (left)
		abort();	/* on_close must come */
	if (gw != NULL) {
		/* Every control channel is gone: no instance is online. */
		for (i = 0; i < NINST; i++)
			if (gateway_instance_online(gw, G.inst[i]))
				abort();
		gateway_free(gw);
		gw = NULL;
	}
	G.srv.gw = NULL;
	for (i = 0; i < 64 && uv_loop_alive(&G.loop); i++)
		(void)uv_run(&G.loop, UV_RUN_NOWAIT);
	if (uv_loop_alive(&G.loop))
		abort();	/* a handle outlived the gateway */
	authz_free(&G.srv);
	store_close(G.srv.store);
	G.srv.store = NULL;
	rm_dir();
	return 0;
}
