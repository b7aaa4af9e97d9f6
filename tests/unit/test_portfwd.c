/* portfwd: the Port session on the agent (spec 7.4): the deny list
 * (addresses, CIDR blocks, IPv6, IPv4-mapped, garbage), agent.json's
 * DeniedPortForwardingRemoteIPs, the Port properties of the task (and
 * garbage in them), the Properties of the handshake, the choice of mode
 * and keepalive by version, and a mux session on a real loop: an smux
 * client drives streams to an echo server on loopback, a denied and a
 * refusing destination answer ConnectToPortError and leave the session
 * usable, hostile smux input ends only that session. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <uv.h>

#include "agent/handshake.h"
#include "agent/portfwd.h"
#include "agent/portfwd_conn.h"
#include "agent/portfwd_deny.h"
#include "agent/state.h"
#include "agent/task.h"
#include "common/buf.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/smux.h"

/* ---- deny list ----------------------------------------------------------- */

static int
match(const struct pf_denylist *d, const char *ip)
{
	struct sockaddr_storage ss;

	assert_int_equal(pf_dest_literal(ip, 80, &ss), 1);
	return pf_deny_match(d, (struct sockaddr *)&ss);
}

static void
test_deny_default(void **state)
{
	struct pf_denylist d;

	(void)state;
	memset(&d, 0, sizeof(d)); /* zeroed: the default list */
	assert_true(match(&d, "169.254.169.254"));
	assert_true(match(&d, "169.254.169.253"));
	assert_true(match(&d, "169.254.169.123"));
	assert_true(match(&d, "169.254.169.250"));
	assert_true(match(&d, "169.254.169.251"));
	assert_true(match(&d, "fd00:ec2::254"));
	assert_true(match(&d, "fd00:ec2::253"));
	assert_true(match(&d, "fd00:ec2::123"));
	assert_true(match(&d, "fd00:ec2::240"));
	assert_true(match(&d, "FD00:EC2:0::254"));
	/* IPv4-mapped IPv6 reaches the IPv4 address. */
	assert_true(match(&d, "::ffff:169.254.169.254"));
	assert_false(match(&d, "169.254.169.255"));
	assert_false(match(&d, "127.0.0.1"));
	assert_false(match(&d, "::1"));
	assert_false(match(&d, "fd00:ec2::255"));
	assert_true(pf_deny_match(NULL, NULL) == 0);
	pf_deny_default(&d);
	assert_int_equal(d.n, 9);
	assert_true(match(&d, "169.254.169.254"));
}

static void
test_deny_cidr(void **state)
{
	struct pf_denylist d;

	(void)state;
	memset(&d, 0, sizeof(d));
	assert_int_equal(pf_deny_add(&d, "10.0.0.0/8"), 0);
	assert_int_equal(pf_deny_add(&d, "192.168.1.77/24"), 0); /* host bits */
	assert_int_equal(pf_deny_add(&d, "fd00::/8"), 0);
	assert_int_equal(pf_deny_add(&d, "2001:db8::1"), 0);
	assert_int_equal(pf_deny_add(&d, "172.16.0.0/12"), 0);
	assert_true(match(&d, "10.1.2.3"));
	assert_true(match(&d, "10.255.255.255"));
	assert_false(match(&d, "11.0.0.1"));
	assert_true(match(&d, "192.168.1.1"));
	assert_false(match(&d, "192.168.2.1"));
	assert_true(match(&d, "172.31.255.1"));
	assert_false(match(&d, "172.32.0.1"));
	assert_true(match(&d, "fd12:3456::1"));
	assert_false(match(&d, "fe80::1"));
	assert_true(match(&d, "2001:db8::1"));
	assert_false(match(&d, "2001:db8::2"));
	assert_true(match(&d, "::ffff:10.9.9.9"));
	/* An explicit list replaces the default one. */
	assert_false(match(&d, "169.254.169.254"));
	/* /0 takes everything of its family. */
	memset(&d, 0, sizeof(d));
	assert_int_equal(pf_deny_add(&d, "0.0.0.0/0"), 0);
	assert_true(match(&d, "8.8.8.8"));
	assert_false(match(&d, "::1"));
	assert_int_equal(pf_deny_add(&d, "::/0"), 0);
	assert_true(match(&d, "::1"));
	/* An explicit empty list denies nothing. */
	memset(&d, 0, sizeof(d));
	d.set = 1;
	assert_false(match(&d, "169.254.169.254"));
}

static void
test_deny_garbage(void **state)
{
	static const char *const bad[] = {
		"", "abc", "1.2.3", "1.2.3.4/", "1.2.3.4/33", "1.2.3.4/-1",
		"1.2.3.4/8x", "::1/129", "/8", "1.2.3.4/0008", "fe80::1%eth0",
		"1.2.3.4 ", " 1.2.3.4", "256.1.1.1", "1.2.3.4/8/8",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaa",
	};
	struct pf_denylist d;
	struct pf_cidr c;
	char ip[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_int_equal(pf_cidr_parse(bad[i], &c), PH_ERR_INVALID);
	assert_int_equal(pf_cidr_parse(NULL, &c), PH_ERR_INVALID);
	memset(&d, 0, sizeof(d));
	for (i = 0; i < PF_DENY_MAX; i++) {
		snprintf(ip, sizeof(ip), "10.0.%zu.1", i);
		assert_int_equal(pf_deny_add(&d, ip), 0);
	}
	assert_int_equal(pf_deny_add(&d, "10.1.0.1"), PH_ERR_TOOBIG);
	assert_int_equal(d.n, PF_DENY_MAX);
}

static void
test_state_deny(void **state)
{
	struct agent_state st;
	char err[256];
	const char *base = "{\"InstanceId\":\"mi-0123456789abcdef0\","
	    "\"Endpoint\":\"https://127.0.0.1:8443\"";
	char text[1024];

	(void)state;
	memset(&st, 0, sizeof(st));
	snprintf(text, sizeof(text), "%s}", base);
	assert_int_equal(agent_state_parse(&st, text, strlen(text), err,
	    sizeof(err)), 0);
	assert_false(st.deny.set);
	assert_true(match(&st.deny, "169.254.169.254"));
	snprintf(text, sizeof(text), "%s,\"DeniedPortForwardingRemoteIPs\":"
	    "[\"127.0.0.0/8\",\"::1\"]}", base);
	assert_int_equal(agent_state_parse(&st, text, strlen(text), err,
	    sizeof(err)), 0);
	assert_true(st.deny.set);
	assert_true(match(&st.deny, "127.0.0.2"));
	assert_true(match(&st.deny, "::1"));
	assert_false(match(&st.deny, "169.254.169.254"));
	snprintf(text, sizeof(text), "%s,\"DeniedPortForwardingRemoteIPs\":"
	    "[]}", base);
	assert_int_equal(agent_state_parse(&st, text, strlen(text), err,
	    sizeof(err)), 0);
	assert_false(match(&st.deny, "169.254.169.254"));
	snprintf(text, sizeof(text), "%s,\"DeniedPortForwardingRemoteIPs\":"
	    "null}", base);
	assert_int_equal(agent_state_parse(&st, text, strlen(text), err,
	    sizeof(err)), 0);
	assert_true(match(&st.deny, "169.254.169.254"));
	snprintf(text, sizeof(text), "%s,\"DeniedPortForwardingRemoteIPs\":"
	    "\"10.0.0.0/8\"}", base);
	assert_int_equal(agent_state_parse(&st, text, strlen(text), err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_non_null(strstr(err, "DeniedPortForwardingRemoteIPs"));
	snprintf(text, sizeof(text), "%s,\"DeniedPortForwardingRemoteIPs\":"
	    "[\"10.0.0.0/8\",7]}", base);
	assert_int_equal(agent_state_parse(&st, text, strlen(text), err,
	    sizeof(err)), PH_ERR_INVALID);
	snprintf(text, sizeof(text), "%s,\"DeniedPortForwardingRemoteIPs\":"
	    "[\"10.0.0.0/99\"]}", base);
	assert_int_equal(agent_state_parse(&st, text, strlen(text), err,
	    sizeof(err)), PH_ERR_INVALID);
}

/* ---- task properties ----------------------------------------------------- */

/* A Port start message: props is the document's properties (JSON text),
 * params the StartSession Parameters. */
static int
parse_port(struct agent_task *t, const char *props, const char *params,
    char *err, size_t errlen)
{
	char *content, *outer, inner[4096];
	json_t *o;
	int rc;

	snprintf(inner, sizeof(inner), "{\"SessionId\":\"s-0123\","
	    "\"SessionOwner\":\"arn:aws:iam::123456789012:user/alice\","
	    "\"DocumentName\":\"AWS-StartPortForwardingSession\","
	    "\"DocumentContent\":{\"schemaVersion\":\"1.0\","
	    "\"sessionType\":\"Port\",\"parameters\":{\"portNumber\":"
	    "{\"type\":\"String\",\"default\":\"80\"},\"localPortNumber\":"
	    "{\"type\":\"String\",\"default\":\"0\"}},\"properties\":%s},"
	    "\"Parameters\":%s}", props, params);
	content = inner;
	o = json_pack("{s:s, s:s}", "Content", content, "TaskId", "s-0123");
	assert_non_null(o);
	outer = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	rc = agent_task_parse(t, (const uint8_t *)outer, strlen(outer), err,
	    errlen);
	free(outer);
	return rc;
}

static void
test_task_port(void **state)
{
	struct agent_task t;
	char err[256];
	json_t *p;

	(void)state;
	/* AWS-StartPortForwardingSession with lists of strings. */
	assert_int_equal(parse_port(&t, "{\"portNumber\":\"{{ portNumber }}\","
	    "\"type\":\"LocalPortForwarding\",\"localPortNumber\":"
	    "\"{{ localPortNumber }}\"}", "{\"portNumber\":[\"8080\"],"
	    "\"localPortNumber\":[\"9999\"]}", err, sizeof(err)), 0);
	assert_int_equal(t.type, AGENT_ST_PORT);
	assert_int_equal(t.port_number, 8080);
	assert_string_equal(t.port_host, "");
	assert_true(t.port_lpf);
	assert_string_equal(t.owner, "arn:aws:iam::123456789012:user/alice");
	p = json_loads(t.port_properties, 0, NULL);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p,
	    "portNumber")), "8080");
	assert_string_equal(json_string_value(json_object_get(p,
	    "localPortNumber")), "9999");
	assert_string_equal(json_string_value(json_object_get(p, "type")),
	    "LocalPortForwarding");
	json_decref(p);
	agent_task_free(&t);

	/* Defaults from the document; a host; SSH (no type). */
	assert_int_equal(parse_port(&t, "{\"portNumber\":\"{{ portNumber }}\","
	    "\"host\":\"db.internal-1.example\"}", "{}", err, sizeof(err)), 0);
	assert_int_equal(t.port_number, 80);
	assert_string_equal(t.port_host, "db.internal-1.example");
	assert_false(t.port_lpf);
	agent_task_free(&t);

	assert_int_equal(parse_port(&t, "{\"portNumber\":22,\"host\":"
	    "\"fd00::1\",\"type\":\"Other\"}", "{}", err, sizeof(err)), 0);
	assert_int_equal(t.port_number, 22);
	assert_string_equal(t.port_host, "fd00::1");
	assert_false(t.port_lpf);
	agent_task_free(&t);

	/* An empty host is localhost. */
	assert_int_equal(parse_port(&t, "{\"portNumber\":\"443\",\"host\":"
	    "\"\",\"type\":null}", "{}", err, sizeof(err)), 0);
	assert_string_equal(t.port_host, "");
	agent_task_free(&t);
}

static void
test_task_port_garbage(void **state)
{
	static const char *const bad[] = {
		"{}", "[]", "\"80\"", "null", "{\"portNumber\":\"\"}",
		"{\"portNumber\":\"0\"}", "{\"portNumber\":\"65536\"}",
		"{\"portNumber\":\"80a\"}", "{\"portNumber\":\"-1\"}",
		"{\"portNumber\":\" 80\"}", "{\"portNumber\":\"000080\"}",
		"{\"portNumber\":0}", "{\"portNumber\":70000}",
		"{\"portNumber\":true}", "{\"portNumber\":[\"80\"]}",
		"{\"portNumber\":\"80\",\"host\":7}",
		"{\"portNumber\":\"80\",\"host\":\"a b\"}",
		"{\"portNumber\":\"80\",\"host\":\"-oProxy\"}",
		"{\"portNumber\":\"80\",\"host\":\"x/y\"}",
		"{\"portNumber\":\"80\",\"host\":\"{{ host }}\"}",
		"{\"portNumber\":\"80\",\"type\":[]}",
		"{\"portNumber\":\"{{ nothing }}\"}",
	};
	struct agent_task t;
	char err[256], props[512], host[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err[0] = '\0';
		assert_int_not_equal(parse_port(&t, bad[i], "{}", err,
		    sizeof(err)), 0);
		assert_true(err[0] != '\0');
		assert_null(t.port_properties);
		/* The session id survives for the failure report. */
		assert_string_equal(t.session_id, "s-0123");
		agent_task_free(&t);
	}
	/* A host longer than a DNS name can be. */
	memset(host, 'a', 254);
	host[254] = '\0';
	snprintf(props, sizeof(props), "{\"portNumber\":\"80\",\"host\":"
	    "\"%s\"}", host);
	assert_int_not_equal(parse_port(&t, props, "{}", err, sizeof(err)), 0);
	agent_task_free(&t);
	host[253] = '\0';
	snprintf(props, sizeof(props), "{\"portNumber\":\"80\",\"host\":"
	    "\"%s\"}", host);
	assert_int_equal(parse_port(&t, props, "{}", err, sizeof(err)), 0);
	agent_task_free(&t);
	assert_true(agent_valid_port_host("127.0.0.2"));
	assert_true(agent_valid_port_host("fe80::1%eth0"));
	assert_false(agent_valid_port_host(""));
	assert_false(agent_valid_port_host(NULL));
	assert_false(agent_valid_port_host("a\nb"));
}

static void
test_handshake_properties(void **state)
{
	struct agent_hs_params p;
	json_t *o, *props;
	struct buf b;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.session_id = "s-1";
	p.instance_id = "mi-1";
	p.type = AGENT_ST_PORT;
	p.agent_version = "3.3.1000.0";
	p.kms_key_id = "alias/ignored"; /* Port is never encrypted */
	p.properties = "{\"portNumber\":\"80\",\"type\":"
	    "\"LocalPortForwarding\",\"localPortNumber\":\"9999\"}";
	buf_init(&b, 0);
	assert_int_equal(agent_handshake_request_json(&p, NULL, &b), 0);
	o = json_loadb((const char *)b.data, b.len, 0, NULL);
	assert_non_null(o);
	assert_int_equal(json_array_size(json_object_get(o,
	    "RequestedClientActions")), 1);
	props = json_object_get(json_object_get(json_array_get(
	    json_object_get(o, "RequestedClientActions"), 0),
	    "ActionParameters"), "Properties");
	assert_string_equal(json_string_value(json_object_get(props,
	    "localPortNumber")), "9999");
	json_decref(o);
	buf_reset(&b);
	p.properties = "{broken";
	assert_int_not_equal(agent_handshake_request_json(&p, NULL, &b), 0);
	buf_free(&b);
}

/* ---- versions and modes -------------------------------------------------- */

static void
test_versions(void **state)
{
	(void)state;
	assert_int_equal(portfwd_version_cmp("1.1.70", "1.1.70"), 0);
	assert_true(portfwd_version_cmp("1.1.69", "1.1.70") < 0);
	assert_true(portfwd_version_cmp("1.1.70.0", "1.1.70") > 0);
	assert_true(portfwd_version_cmp("1.2.0.0", "1.1.70") > 0);
	assert_true(portfwd_version_cmp("1.10", "1.9.99") > 0);
	assert_true(portfwd_version_cmp("", "1") < 0);
	assert_true(portfwd_version_cmp(NULL, NULL) == 0);
	assert_true(portfwd_version_cmp("abc", "0.1") < 0);
	assert_true(portfwd_version_cmp("99999999999999999999.1", "1") > 0);

	assert_int_equal(portfwd_pick_mode("3.3.1000.0", "1.1.70", 1),
	    PF_MODE_MUX);
	assert_int_equal(portfwd_pick_mode("3.3.1000.0", "1.2.700.0", 1),
	    PF_MODE_MUX);
	assert_int_equal(portfwd_pick_mode("3.3.1000.0", "1.1.69.0", 1),
	    PF_MODE_BASIC);
	assert_int_equal(portfwd_pick_mode("3.3.1000.0", "1.0", 1),
	    PF_MODE_BASIC);
	assert_int_equal(portfwd_pick_mode("3.3.1000.0", "", 1), PF_MODE_BASIC);
	assert_int_equal(portfwd_pick_mode("3.3.1000.0", NULL, 1),
	    PF_MODE_BASIC);
	assert_int_equal(portfwd_pick_mode("3.3.1000.0", "garbage", 1),
	    PF_MODE_BASIC);
	assert_int_equal(portfwd_pick_mode("3.3.1000.0", "1.2.700.0", 0),
	    PF_MODE_STDIO);
	assert_int_equal(portfwd_pick_mode("3.3.1000.0", "1.0.0.0", 0),
	    PF_MODE_STDIO);
	/* An agent the client will not multiplex with stays basic. */
	assert_int_equal(portfwd_pick_mode("3.0.196.0", "1.2.700.0", 1),
	    PF_MODE_BASIC);
	assert_int_equal(portfwd_pick_mode("2.3.50.0", "1.2.0.0", 1),
	    PF_MODE_BASIC);
	assert_int_equal(portfwd_pick_mode("3.0.197.0", "1.2.0.0", 1),
	    PF_MODE_MUX);
	assert_int_equal(portfwd_pick_mode("2.3.50.0", "1.2.0.0", 0),
	    PF_MODE_STDIO);

	assert_true(portfwd_keepalive("1.2.331.0"));
	assert_true(portfwd_keepalive("1.1.70"));
	assert_false(portfwd_keepalive("1.2.331.1"));
	assert_false(portfwd_keepalive("1.2.700.0"));
	assert_true(portfwd_keepalive(""));
	assert_string_equal(portfwd_mode_name(PF_MODE_MUX), "mux");
}

/* ---- a mux session on a real loop ---------------------------------------- */

struct rig {
	uv_loop_t loop;
	uv_tcp_t server;
	int port;                 /* the echo server's */
	struct portfwd *pf;
	struct smux *client;      /* the client's end */
	struct buf to_agent;      /* the client's smux bytes, not yet fed */
	int ended, failed;
	char end_msg[600];
	int flags3;               /* ConnectToPortError flags */
	int records;
	struct buf got[8];        /* echoed data per stream slot */
	uint32_t sids[8];
	int fins[8];
	int nstreams;
	enum portfwd_mode mode;
	struct buf basic_got;     /* basic and stdio: what came back */
};

static int echo_mute;      /* the server accepts and never reads */
static int echo_tag;       /* data of the echo server's connections */

static void
echo_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char mem[65536];

	b->base = mem;
	b->len = sizeof(mem);
}

static void
echo_written(uv_write_t *w, int status)
{
	free(w->data);
	free(w);
}

static void
echo_closed(uv_handle_t *h)
{
	free(h);
}

static void
echo_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	uv_write_t *w;
	uv_buf_t wb;

	if (n < 0) {
		uv_close((uv_handle_t *)s, echo_closed);
		return;
	}
	if (n == 0)
		return;
	w = malloc(sizeof(*w));
	w->data = malloc((size_t)n);
	memcpy(w->data, b->base, (size_t)n);
	wb = uv_buf_init(w->data, (unsigned)n);
	uv_write(w, s, &wb, 1, echo_written);
}

static void
echo_conn(uv_stream_t *srv, int status)
{
	uv_tcp_t *c = malloc(sizeof(*c));

	uv_tcp_init(srv->loop, c);
	c->data = &echo_tag;
	if (uv_accept(srv, (uv_stream_t *)c) == 0) {
		if (!echo_mute)
			uv_read_start((uv_stream_t *)c, echo_alloc, echo_read);
	} else
		uv_close((uv_handle_t *)c, echo_closed);
}

/* portfwd -> the client's smux */
static int
rig_send(void *ud, uint32_t type, const void *p, size_t n)
{
	struct rig *r = ud;
	const uint8_t *b = p;

	assert_true(n > 0 && n <= PF_PAYLOAD);
	if (type == PT_FLAG) {
		assert_int_equal(n, 4);
		if (b[3] == PF_FLAG_CONNECT_ERROR)
			r->flags3++;
		return 0;
	}
	assert_int_equal(type, PT_OUTPUT);
	if (r->mode != PF_MODE_MUX)
		return buf_append(&r->basic_got, p, n);
	assert_int_equal(smux_input(r->client, p, n), 0);
	return 0;
}

static int
rig_writable(void *ud)
{
	return 1;
}

static void
rig_record(void *ud, const char *js, size_t n)
{
	struct rig *r = ud;
	json_t *o = json_loadb(js, n, 0, NULL);

	assert_non_null(o);
	json_decref(o);
	r->records++;
}

static void
rig_change(void *ud)
{
}

static void
rig_end(void *ud, int failed, const char *msg)
{
	struct rig *r = ud;

	r->ended = 1;
	r->failed = failed;
	snprintf(r->end_msg, sizeof(r->end_msg), "%s", msg);
}

static const struct portfwd_cbs rig_pf_cbs = {
	.send = rig_send,
	.writable = rig_writable,
	.record = rig_record,
	.on_change = rig_change,
	.on_end = rig_end,
};

/* the client's smux -> portfwd (through a buffer: smux callbacks may not
 * re-enter) */
static int
cl_write(void *ud, const uint8_t *p, size_t n)
{
	struct rig *r = ud;

	return buf_append(&r->to_agent, p, n);
}

static int
slot(struct rig *r, uint32_t sid)
{
	int i;

	for (i = 0; i < r->nstreams; i++)
		if (r->sids[i] == sid)
			return i;
	return -1;
}

static int
cl_data(void *ud, uint32_t sid, const uint8_t *p, size_t n)
{
	struct rig *r = ud;
	int i = slot(r, sid);

	assert_true(i >= 0);
	return buf_append(&r->got[i], p, n);
}

static void
cl_fin(void *ud, uint32_t sid)
{
	struct rig *r = ud;
	int i = slot(r, sid);

	if (i >= 0)
		r->fins[i] = 1;
}

static const struct smux_cbs rig_cl_cbs = {
	.write = cl_write,
	.on_data = cl_data,
	.on_fin = cl_fin,
};

/* Feed what the client wrote to the agent, then run the loop once. */
static void
pump(struct rig *r)
{
	size_t off = 0, chunk;
	int rc;

	while (off < r->to_agent.len && !r->ended) {
		/* Arbitrary payload boundaries, as the data channel cuts. */
		chunk = r->to_agent.len - off < 1000 ? r->to_agent.len - off :
		    1000;
		rc = portfwd_input(r->pf, PT_OUTPUT, r->to_agent.data + off,
		    chunk);
		if (rc == PH_ERR_AGAIN)
			break;
		assert_int_equal(rc, 0);
		off += chunk;
	}
	buf_consume(&r->to_agent, off);
	portfwd_resume(r->pf);
	uv_run(&r->loop, UV_RUN_NOWAIT);
}

static int
rig_open_stream(struct rig *r)
{
	uint32_t sid;

	assert_int_equal(smux_open(r->client, &sid), 0);
	r->sids[r->nstreams] = sid;
	buf_init(&r->got[r->nstreams], 0);
	return r->nstreams++;
}

static void
rig_start_mode(struct rig *r, const char *host, int port,
    const struct pf_denylist *deny, enum portfwd_mode mode, int expect_rc)
{
	struct portfwd_params p;
	struct sockaddr_in a;
	int len = sizeof(a);

	memset(r, 0, sizeof(*r));
	assert_int_equal(uv_loop_init(&r->loop), 0);
	uv_tcp_init(&r->loop, &r->server);
	uv_ip4_addr("127.0.0.1", 0, &a);
	assert_int_equal(uv_tcp_bind(&r->server, (struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&r->server, 128,
	    echo_conn), 0);
	uv_tcp_getsockname(&r->server, (struct sockaddr *)&a, &len);
	r->port = ntohs(a.sin_port);
	buf_init(&r->to_agent, 0);
	assert_int_equal(smux_new(&r->client, SMUX_CLIENT, &rig_cl_cbs, r,
	    NULL), 0);
	memset(&p, 0, sizeof(p));
	p.loop = &r->loop;
	p.deny = deny;
	p.host = host;
	p.port = port > 0 ? (unsigned)port : (unsigned)r->port;
	p.mode = mode;
	r->mode = mode;
	buf_init(&r->basic_got, 0);
	p.session_id = "s-test";
	assert_int_equal(portfwd_new(&r->pf, &p, &rig_pf_cbs, r), expect_rc);
}

static void
rig_start(struct rig *r, const char *host, int port,
    const struct pf_denylist *deny)
{
	rig_start_mode(r, host, port, deny, PF_MODE_MUX, 0);
}

static void
rig_walk_close(uv_handle_t *h, void *arg)
{
	/* Only the echo server's handles: portfwd closes its own. */
	if (!uv_is_closing(h) && h->data == &echo_tag)
		uv_close(h, echo_closed);
}

static void
rig_stop(struct rig *r)
{
	int i;

	portfwd_close(r->pf);
	smux_free(r->client);
	buf_free(&r->to_agent);
	buf_free(&r->basic_got);
	for (i = 0; i < r->nstreams; i++)
		buf_free(&r->got[i]);
	/* Connections closing (their FIN answered by the echo server)
	 * and the server go; bounded. */
	if (!uv_is_closing((uv_handle_t *)&r->server))
		uv_close((uv_handle_t *)&r->server, NULL);
	for (i = 0; i < 3000 && uv_loop_alive(&r->loop); i++) {
		if (i == 2000)
			uv_walk(&r->loop, rig_walk_close, NULL);
		uv_run(&r->loop, UV_RUN_NOWAIT);
		uv_sleep(1);
	}
	/* Idle ones (a mute server's connections) keep no loop alive. */
	uv_walk(&r->loop, rig_walk_close, NULL);
	for (i = 0; i < 10; i++)
		uv_run(&r->loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&r->loop), 0);
}

/* Run until cond or about 5 s. */
#define RUN_UNTIL(r, cond) do {						\
	int i_;								\
	for (i_ = 0; i_ < 5000 && !(cond); i_++) {			\
		pump(r);						\
		if (!(cond))						\
			uv_sleep(1);					\
	}								\
	assert_true(cond);						\
} while (0)

static void
test_mux_echo(void **state)
{
	struct rig r;
	uint8_t data[200000];
	int a, b;
	size_t i;

	(void)state;
	rig_start(&r, "127.0.0.1", 0, NULL);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	a = rig_open_stream(&r);
	b = rig_open_stream(&r);
	/* Data may follow the SYN at once: it waits for the dial. */
	assert_int_equal(smux_write(r.client, r.sids[a], "hello", 5), 0);
	RUN_UNTIL(&r, r.got[a].len == 5);
	assert_memory_equal(r.got[a].data, "hello", 5);
	for (i = 0; i < sizeof(data); ) {
		size_t n = smux_write_room(r.client);

		if (n > sizeof(data) - i)
			n = sizeof(data) - i;
		if (n > 0 && smux_write(r.client, r.sids[b], data + i, n) == 0)
			i += n;
		pump(&r);
	}
	RUN_UNTIL(&r, r.got[b].len == sizeof(data));
	assert_memory_equal(r.got[b].data, data, sizeof(data));
	/* FIN from the client: the echo server closes, FIN comes back. */
	assert_int_equal(smux_close(r.client, r.sids[a]), 0);
	RUN_UNTIL(&r, r.records >= 3);
	assert_false(r.ended);
	rig_stop(&r);
}

static void
test_mux_refused_and_denied(void **state)
{
	struct pf_denylist deny;
	struct rig r;
	int a, b;

	(void)state;
	/* Nothing listens on the port: ConnectToPortError, stream closed,
	 * the session goes on. */
	rig_start(&r, "127.0.0.1", 0, NULL);
	uv_close((uv_handle_t *)&r.server, NULL); /* now refuses */
	r.server.data = NULL;
	uv_run(&r.loop, UV_RUN_NOWAIT);
	a = rig_open_stream(&r);
	RUN_UNTIL(&r, r.flags3 == 1);
	b = rig_open_stream(&r);
	RUN_UNTIL(&r, r.flags3 == 2);
	assert_false(r.ended);
	(void)a;
	(void)b;
	rig_stop(&r);

	/* Denied: 127.0.0.0/8 in the list. */
	memset(&deny, 0, sizeof(deny));
	assert_int_equal(pf_deny_add(&deny, "127.0.0.0/8"), 0);
	rig_start(&r, "127.0.0.1", 0, &deny);
	a = rig_open_stream(&r);
	assert_int_equal(smux_write(r.client, r.sids[a], "x", 1), 0);
	RUN_UNTIL(&r, r.flags3 == 1);
	assert_int_equal(r.got[a].len, 0);
	assert_false(r.ended);
	/* A name is checked too: localhost resolves into the list. */
	rig_stop(&r);
	rig_start(&r, "localhost", 0, &deny);
	a = rig_open_stream(&r);
	RUN_UNTIL(&r, r.flags3 == 1);
	assert_false(r.ended);
	rig_stop(&r);
}

static void
test_mux_hostile(void **state)
{
	static const uint8_t unknown_cmd[] = { 1, 9, 0, 0, 3, 0, 0, 0 };
	static const uint8_t bad_version[] = { 2, 0, 0, 0, 3, 0, 0, 0 };
	/* PSH of 65535 bytes (past xtaci's frame size) and of 32768 bytes
	 * for a stream never opened. */
	static const uint8_t huge[] = { 1, 2, 0xff, 0xff, 7, 0, 0, 0 };
	static const uint8_t big[] = { 1, 2, 0x00, 0x80, 7, 0, 0, 0 };
	static const uint8_t fin_unknown[] = { 1, 1, 0, 0, 9, 0, 0, 0 };
	struct rig r;
	int a;

	(void)state;
	rig_start(&r, "127.0.0.1", 0, NULL);
	a = rig_open_stream(&r);
	assert_int_equal(smux_write(r.client, r.sids[a], "ping", 4), 0);
	RUN_UNTIL(&r, r.got[a].len == 4);
	/* FIN for a stream never opened: dropped, the session goes on. */
	assert_int_equal(portfwd_input(r.pf, PT_OUTPUT, fin_unknown,
	    sizeof(fin_unknown)), 0);
	assert_false(r.ended);
	/* Flags of the wrong size, unknown flags: ignored. */
	assert_int_equal(portfwd_input(r.pf, PT_FLAG, (const uint8_t *)"x",
	    1), 0);
	assert_int_equal(portfwd_input(r.pf, PT_FLAG, (const uint8_t *)
	    "\0\0\0\x09", 4), 0);
	assert_int_equal(portfwd_input(r.pf, PT_SIZE, (const uint8_t *)"{}",
	    2), 0);
	assert_false(r.ended);
	/* An unknown command ends this session, cleanly. */
	assert_int_equal(portfwd_input(r.pf, PT_OUTPUT, unknown_cmd,
	    sizeof(unknown_cmd)), 0);
	assert_true(r.ended);
	assert_true(r.failed);
	/* Anything later is dropped. */
	assert_int_equal(portfwd_input(r.pf, PT_OUTPUT, huge, sizeof(huge)),
	    0);
	rig_stop(&r);

	rig_start(&r, "127.0.0.1", 0, NULL);
	assert_int_equal(portfwd_input(r.pf, PT_OUTPUT, bad_version,
	    sizeof(bad_version)), 0);
	assert_true(r.ended && r.failed);
	rig_stop(&r);

	/* A frame longer than any smux sends ends the session, cleanly. */
	rig_start(&r, "127.0.0.1", 0, NULL);
	assert_int_equal(portfwd_input(r.pf, PT_OUTPUT, huge, sizeof(huge)),
	    0);
	assert_true(r.ended && r.failed);
	rig_stop(&r);

	/* A full-size frame for a stream never opened, in pieces: the data
	 * is dropped as it comes, the session stays. */
	rig_start(&r, "127.0.0.1", 0, NULL);
	{
		static uint8_t junk[32768];
		size_t off;

		assert_int_equal(portfwd_input(r.pf, PT_OUTPUT, big,
		    sizeof(big)), 0);
		for (off = 0; off < sizeof(junk); off += 4096)
			assert_int_equal(portfwd_input(r.pf, PT_OUTPUT, junk,
			    sizeof(junk) - off < 4096 ? sizeof(junk) - off :
			    4096), 0);
	}
	assert_false(r.ended);
	/* TerminateSession ends it successfully. */
	assert_int_equal(portfwd_input(r.pf, PT_FLAG, (const uint8_t *)
	    "\0\0\0\x02", 4), 0);
	assert_true(r.ended);
	assert_false(r.failed);
	rig_stop(&r);
}

static void
basic_send(struct rig *r, const char *s)
{
	assert_int_equal(portfwd_input(r->pf, PT_OUTPUT, (const uint8_t *)s,
	    strlen(s)), 0);
}

static void
test_basic_and_stdio(void **state)
{
	struct rig r;

	(void)state;
	/* Basic: bytes before the dial completes wait for it. */
	rig_start_mode(&r, "127.0.0.1", 0, NULL, PF_MODE_BASIC, 0);
	basic_send(&r, "one");
	RUN_UNTIL(&r, r.basic_got.len == 3);
	assert_memory_equal(r.basic_got.data, "one", 3);
	/* DisconnectToPort: closed; the next Output dials again. */
	assert_int_equal(portfwd_input(r.pf, PT_FLAG, (const uint8_t *)
	    "\0\0\0\x01", 4), 0);
	basic_send(&r, "two");
	RUN_UNTIL(&r, r.basic_got.len == 6);
	assert_memory_equal(r.basic_got.data + 3, "two", 3);
	assert_false(r.ended);
	RUN_UNTIL(&r, r.records >= 3); /* connect, disconnect, connect */
	assert_int_equal(portfwd_input(r.pf, PT_FLAG, (const uint8_t *)
	    "\0\0\0\x02", 4), 0);
	assert_true(r.ended && !r.failed);
	rig_stop(&r);

	/* Basic to a port where nothing listens: the session fails, saying
	 * why. */
	rig_start_mode(&r, "127.0.0.1", 0, NULL, PF_MODE_BASIC, 0);
	uv_close((uv_handle_t *)&r.server, NULL);
	r.server.data = NULL;
	RUN_UNTIL(&r, r.ended);
	assert_true(r.failed);
	assert_non_null(strstr(r.end_msg, "Unable to connect"));
	rig_stop(&r);

	/* SSH (stdio) to a denied address: fails, "forbidden". */
	{
		struct pf_denylist deny;

		memset(&deny, 0, sizeof(deny));
		assert_int_equal(pf_deny_add(&deny, "127.0.0.1/32"), 0);
		rig_start_mode(&r, "127.0.0.1", 0, &deny, PF_MODE_STDIO, 0);
		RUN_UNTIL(&r, r.ended);
		assert_true(r.failed);
		assert_non_null(strstr(r.end_msg, "forbidden"));
		rig_stop(&r);
	}

	/* Bad parameters are refused. */
	rig_start_mode(&r, "127.0.0.1", 70000, NULL, PF_MODE_BASIC,
	    PH_ERR_INVALID);
	r.pf = NULL;
	rig_stop(&r);
}

/* Destinations that never read: the input is refused after a bounded
 * amount, and the session is still alive. */
static void
test_mux_backpressure(void **state)
{
	static uint8_t chunk[16384];
	size_t fed = 0, off;
	struct rig r;
	int a, b, i, again = 0;

	(void)state;
	echo_mute = 1;
	rig_start(&r, "127.0.0.1", 0, NULL);
	a = rig_open_stream(&r);
	b = rig_open_stream(&r);
	for (i = 0; i < 20000 && !again; i++) {
		if (smux_write_room(r.client) >= sizeof(chunk)) {
			assert_int_equal(smux_write(r.client, r.sids[i % 2 ? a :
			    b], chunk, sizeof(chunk)), 0);
		}
		off = 0;
		while (off < r.to_agent.len) {
			size_t n = r.to_agent.len - off < 4096 ?
			    r.to_agent.len - off : 4096;
			int rc = portfwd_input(r.pf, PT_OUTPUT,
			    r.to_agent.data + off, n);

			if (rc == PH_ERR_AGAIN) {
				again = 1;
				break;
			}
			assert_int_equal(rc, 0);
			off += n;
		}
		fed += off;
		buf_consume(&r.to_agent, off);
		uv_run(&r.loop, UV_RUN_NOWAIT);
	}
	assert_true(again);
	assert_true(portfwd_input_congested(r.pf));
	/* Two sockets' buffers, their write queues and smux's: far below
	 * what was offered. */
	assert_true(fed < (size_t)64 << 20);
	assert_false(r.ended);
	echo_mute = 0;
	rig_stop(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deny_default),
		cmocka_unit_test(test_deny_cidr),
		cmocka_unit_test(test_deny_garbage),
		cmocka_unit_test(test_state_deny),
		cmocka_unit_test(test_task_port),
		cmocka_unit_test(test_task_port_garbage),
		cmocka_unit_test(test_handshake_properties),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_mux_echo),
		cmocka_unit_test(test_mux_refused_and_denied),
		cmocka_unit_test(test_mux_hostile),
		cmocka_unit_test(test_basic_and_stdio),
		cmocka_unit_test(test_mux_backpressure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
