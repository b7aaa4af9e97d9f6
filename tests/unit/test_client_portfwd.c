/* client port forwarding: Properties from the handshake (with garbage),
 * the version gates and mode selection, the printed lines, Flag payloads,
 * and the basic and mux local ends against a fake data channel on a real
 * loopback listener. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <uv.h>

#include "client/portfwd.h"
#include "client/portprops.h"
#include "common/buf.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/smux.h"

#define U8(s) ((const uint8_t *)(s))

/* A HandshakeRequest with the given Properties JSON text. */
static int
props(const char *properties, const char *agent, struct client_port_props *pp,
    char *err, size_t errlen)
{
	char req[8192];

	snprintf(req, sizeof(req), "{\"AgentVersion\":\"%s\","
	    "\"RequestedClientActions\":[{\"ActionType\":\"SessionType\","
	    "\"ActionParameters\":{\"SessionType\":\"Port\","
	    "\"Properties\":%s}}]}", agent, properties);
	return client_port_props_parse(U8(req), strlen(req), pp, err, errlen);
}

static void
test_props(void **state)
{
	struct client_port_props pp;
	char err[256];

	(void)state;
	assert_int_equal(props("{\"portNumber\":\"80\",\"type\":"
	    "\"LocalPortForwarding\",\"localPortNumber\":\"9999\"}", "3",
	    &pp, err, sizeof(err)), 0);
	assert_string_equal(pp.port_number, "80");
	assert_int_equal(pp.local_port, 9999);
	assert_true(pp.local_forwarding);
	assert_false(pp.unix_socket);

	/* Absent localPortNumber, or "", or "0": any free port. */
	assert_int_equal(props("{\"portNumber\":\"22\",\"type\":"
	    "\"LocalPortForwarding\"}", "3", &pp, err, sizeof(err)), 0);
	assert_int_equal(pp.local_port, 0);
	assert_int_equal(props("{\"localPortNumber\":\"\"}", "3", &pp, err,
	    sizeof(err)), 0);
	assert_int_equal(pp.local_port, 0);
	assert_int_equal(props("{\"localPortNumber\":\"65535\"}", "3", &pp,
	    err, sizeof(err)), 0);
	assert_int_equal(pp.local_port, 65535);

	/* Keys without regard to case, as Go's decoder. */
	assert_int_equal(props("{\"PORTNUMBER\":\"5432\",\"Type\":"
	    "\"LocalPortForwarding\",\"localportnumber\":\"15432\"}", "3",
	    &pp, err, sizeof(err)), 0);
	assert_string_equal(pp.port_number, "5432");
	assert_int_equal(pp.local_port, 15432);
	assert_true(pp.local_forwarding);

	/* SSH: no type; null or absent Properties too. */
	assert_int_equal(props("{\"portNumber\":\"22\"}", "3", &pp, err,
	    sizeof(err)), 0);
	assert_false(pp.local_forwarding);
	assert_int_equal(props("null", "3", &pp, err, sizeof(err)), 0);
	assert_false(pp.local_forwarding);
	assert_string_equal(pp.port_number, "");

	/* A unix socket. */
	assert_int_equal(props("{\"type\":\"LocalPortForwarding\","
	    "\"localConnectionType\":\"unix\",\"localUnixSocket\":"
	    "\"/tmp/x.sock\",\"localPortNumber\":\"garbage is ignored\"}",
	    "3", &pp, err, sizeof(err)), 0);
	assert_true(pp.unix_socket);
	assert_string_equal(pp.local_socket, "/tmp/x.sock");

	/* Values that are not strings are ignored, as in AWS's plugin. */
	assert_int_equal(props("{\"portNumber\":80,\"type\":true,"
	    "\"localPortNumber\":9999}", "3", &pp, err, sizeof(err)), 0);
	assert_string_equal(pp.port_number, "");
	assert_false(pp.local_forwarding);
	assert_int_equal(pp.local_port, 0);
	/* Another type string is not local forwarding. */
	assert_int_equal(props("{\"type\":\"localportforwarding\"}", "3",
	    &pp, err, sizeof(err)), 0);
	assert_false(pp.local_forwarding);
	/* Unprintable portNumber is shown safely. */
	assert_int_equal(props("{\"portNumber\":\"8\\u001b0\"}", "3", &pp,
	    err, sizeof(err)), 0);
	assert_string_equal(pp.port_number, "8?0");
}

static void
bad_props(const char *properties)
{
	struct client_port_props pp;
	char err[256];

	assert_int_equal(props(properties, "3", &pp, err, sizeof(err)),
	    PH_ERR_INVALID);
	assert_true(err[0] != '\0');
}

static void
test_props_garbage(void **state)
{
	struct client_port_props pp;
	char err[256], big[300];
	static const char *reqs[] = {
		"", "x", "[]", "{}", "null", "{\"RequestedClientActions\":{}}",
		"{\"RequestedClientActions\":[]}",
		"{\"RequestedClientActions\":[1,\"a\",null]}",
		"{\"RequestedClientActions\":[{\"ActionType\":\"SessionType\","
		    "\"ActionParameters\":{\"SessionType\":\"Standard_Stream\","
		    "\"Properties\":null}}]}",
		"{\"RequestedClientActions\":[{\"ActionType\":\"SessionType\","
		    "\"ActionParameters\":[]}]}",
		"{\"RequestedClientActions\":[{\"ActionType\":\"SessionType\","
		    "\"ActionParameters\":{\"SessionType\":5}}]}",
		"{\"RequestedClientActions\":[{\"ActionType\":\"SessionType\","
		    "\"ActionParameters\":{\"SessionType\":\"Port\"",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		assert_int_equal(client_port_props_parse(U8(reqs[i]),
		    strlen(reqs[i]), &pp, err, sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_port_props_parse(NULL, 0, &pp, err,
	    sizeof(err)), PH_ERR_INVALID);
	bad_props("[]");
	bad_props("\"x\"");
	bad_props("17");
	bad_props("{\"localPortNumber\":\"65536\"}");
	bad_props("{\"localPortNumber\":\"-1\"}");
	bad_props("{\"localPortNumber\":\"80a\"}");
	bad_props("{\"localPortNumber\":\" 80\"}");
	bad_props("{\"localPortNumber\":\"000000080\"}");
	bad_props("{\"localPortNumber\":\"99999999999999999999999\"}");
	bad_props("{\"portNumber\":\"12345678901234567890\"}");
	bad_props("{\"localConnectionType\":\"unix\"}");
	bad_props("{\"localConnectionType\":\"unix\",\"localUnixSocket\":\"\"}");
	bad_props("{\"localConnectionType\":\"unix\",\"localUnixSocket\":5}");
	bad_props("{\"localConnectionType\":\"unix\","
	    "\"localUnixSocket\":\"/a\\u0000b\"}");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	{
		char p[512];

		snprintf(p, sizeof(p), "{\"localConnectionType\":\"unix\","
		    "\"localUnixSocket\":\"/%s\"}", big);
		bad_props(p);
	}
}

static void
test_versions(void **state)
{
	(void)state;
	assert_true(client_version_greater("3.0.197.0", "3.0.196.0"));
	assert_true(client_version_greater("3.3.1000.0", "3.1.1511.0"));
	assert_true(client_version_greater("10.0.0.0", "9.9.9.9"));
	assert_false(client_version_greater("3.0.196.0", "3.0.196.0"));
	assert_false(client_version_greater("3.0.195.9", "3.0.196.0"));
	/* The plugin's rule: same number of parts, all numeric. */
	assert_false(client_version_greater("4.0", "3.0.196.0"));
	assert_false(client_version_greater("4.0.0.0.0", "3.0.196.0"));
	assert_false(client_version_greater("", "3.0.196.0"));
	assert_false(client_version_greater(NULL, "3.0.196.0"));
	assert_false(client_version_greater("4.0.0.x", "3.0.196.0"));
	assert_false(client_version_greater("4..0.0", "3.0.196.0"));
	assert_false(client_version_greater("4.0.0.", "3.0.196.0"));
	assert_false(client_version_greater("-4.0.0.0", "3.0.196.0"));
	assert_false(client_version_greater("99999999999.0.0.0",
	    "3.0.196.0"));
	assert_false(client_version_greater("1.2.3.4.5.6.7.8.9",
	    "1.2.3.4.5.6.7.8.8"));
}

static void
test_modes(void **state)
{
	struct client_port_props pp;

	(void)state;
	memset(&pp, 0, sizeof(pp));
	pp.local_forwarding = 1;
	assert_int_equal(client_port_mode_select(&pp, "3.3.1000.0"),
	    CLIENT_PORT_MUX);
	assert_int_equal(client_port_mode_select(&pp, "3.0.197.0"),
	    CLIENT_PORT_MUX);
	assert_int_equal(client_port_mode_select(&pp, "3.0.196.0"),
	    CLIENT_PORT_BASIC);
	assert_int_equal(client_port_mode_select(&pp, "2.3.50.0"),
	    CLIENT_PORT_BASIC);
	assert_int_equal(client_port_mode_select(&pp, "garbage"),
	    CLIENT_PORT_BASIC);
	pp.local_forwarding = 0;
	assert_int_equal(client_port_mode_select(&pp, "3.3.1000.0"),
	    CLIENT_PORT_STDIO);

	assert_false(client_port_smux_keepalive("3.3.1000.0"));
	assert_false(client_port_smux_keepalive("3.1.1512.0"));
	assert_true(client_port_smux_keepalive("3.1.1511.0"));
	assert_true(client_port_smux_keepalive("3.0.197.0"));
	assert_true(client_port_smux_keepalive("x"));

	assert_true(client_port_terminate_by_flag(CLIENT_PORT_MUX, "x"));
	assert_true(client_port_terminate_by_flag(CLIENT_PORT_BASIC,
	    "2.3.723.0"));
	assert_false(client_port_terminate_by_flag(CLIENT_PORT_BASIC,
	    "2.3.722.0"));
	assert_false(client_port_terminate_by_flag(CLIENT_PORT_STDIO,
	    "2.3.50.0"));
}

static void
test_lines(void **state)
{
	struct client_port_props pp;
	char line[128];

	(void)state;
	memset(&pp, 0, sizeof(pp));
	assert_int_equal(client_port_opened_line(line, sizeof(line), &pp,
	    9999, "s-0123"), 0);
	assert_string_equal(line, "Port 9999 opened for sessionId s-0123.");
	pp.unix_socket = 1;
	strcpy(pp.local_socket, "/tmp/a.sock");
	assert_int_equal(client_port_opened_line(line, sizeof(line), &pp,
	    0, "s-0123"), 0);
	assert_string_equal(line,
	    "Unix socket /tmp/a.sock opened for sessionId s-0123.");
	assert_int_equal(client_port_opened_line(line, 10, &pp, 0, "s-0123"),
	    PH_ERR_TOOBIG);
	assert_string_equal(CLIENT_PORT_WAITING,
	    "\nWaiting for connections...\n");
	assert_string_equal(CLIENT_PORT_CONNECT_FAILED, "\nConnection to "
	    "destination port failed, check SSM Agent logs.\n");
}

static void
test_flags(void **state)
{
	uint8_t b[4];
	uint32_t f;

	(void)state;
	client_port_flag_encode(CLIENT_FLAG_TERMINATE_SESSION, b);
	assert_memory_equal(b, "\0\0\0\2", 4);
	assert_int_equal(client_port_flag_decode(b, 4, &f), 0);
	assert_int_equal(f, 2);
	assert_int_equal(client_port_flag_decode(b, 3, &f), PH_ERR_INVALID);
	assert_int_equal(client_port_flag_decode(b, 0, &f), PH_ERR_INVALID);
	assert_int_equal(client_port_flag_decode(NULL, 4, &f),
	    PH_ERR_INVALID);
}

/* ---- the local end against a fake channel ------------------------------ */

struct fake {
	uv_loop_t loop;
	struct client_portfwd *pf;
	struct buf sent;        /* PayloadType 1 bytes sent */
	uint32_t flags[16];
	int nflags;
	struct buf printed;
	int room;               /* can_send */
	int paused;
	int fatal;
	int sock;               /* our local client */
};

static int
f_send(void *ud, const uint8_t *p, size_t n)
{
	struct fake *f = ud;

	if (!f->room)
		return PH_ERR_AGAIN;
	return buf_append(&f->sent, p, n);
}

static int
f_flag(void *ud, uint32_t flag)
{
	struct fake *f = ud;

	if (f->nflags < 16)
		f->flags[f->nflags++] = flag;
	return 0;
}

static int
f_can(void *ud)
{
	return ((struct fake *)ud)->room;
}

static void
f_print(void *ud, const char *t)
{
	(void)buf_append_str(&((struct fake *)ud)->printed, t);
}

static void
f_pause(void *ud, int p)
{
	((struct fake *)ud)->paused = p;
}

static void
f_fatal(void *ud, const char *m)
{
	(void)m;
	((struct fake *)ud)->fatal = 1;
}

static const struct client_portfwd_cbs fcbs = {
	f_send, f_flag, f_can, f_print, f_pause, f_fatal,
};

/* Run the loop until cond holds, at most ~2 s. */
#define SPIN(f, cond) do { \
	int spin_; \
	for (spin_ = 0; spin_ < 400 && !(cond); spin_++) { \
		uv_run(&(f)->loop, UV_RUN_NOWAIT); \
		usleep(5000); \
	} \
	assert_true(cond); \
} while (0)

static void
fake_init(struct fake *f, enum client_port_mode mode,
    const struct client_port_props *pp)
{
	char err[256];

	memset(f, 0, sizeof(*f));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	buf_init(&f->sent, (size_t)8 << 20);
	buf_init(&f->printed, 4096);
	f->room = 1;
	assert_int_equal(client_portfwd_new(&f->pf, &f->loop, mode, pp,
	    "sess-1", 0, &fcbs, f), 0);
	assert_int_equal(client_portfwd_start(f->pf, err, sizeof(err)), 0);
}

static void
fake_done(struct fake *f)
{
	int i;

	client_portfwd_close(f->pf);
	for (i = 0; i < 20; i++)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	buf_free(&f->sent);
	buf_free(&f->printed);
}

static int
tcp_connect(unsigned port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(0x7f000001);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void
test_basic(void **state)
{
	struct client_port_props pp;
	struct fake f;
	char want[128], got[64];
	int fd, fd2;
	ssize_t r;

	(void)state;
	memset(&pp, 0, sizeof(pp));
	pp.local_forwarding = 1;
	fake_init(&f, CLIENT_PORT_BASIC, &pp);
	assert_true(client_portfwd_port(f.pf) > 0);
	snprintf(want, sizeof(want), "Port %u opened for sessionId sess-1.\n",
	    client_portfwd_port(f.pf));
	assert_string_equal(buf_cstr(&f.printed), want);

	/* Nothing to give agent bytes to yet: dropped. */
	assert_int_equal(client_portfwd_deliver(f.pf, PT_OUTPUT, U8("zz"), 2),
	    0);
	fd = tcp_connect(client_portfwd_port(f.pf));
	SPIN(&f, client_portfwd_connections(f.pf) == 1);
	assert_non_null(strstr(buf_cstr(&f.printed),
	    "Connection accepted for session sess-1.\n"));
	assert_int_equal(write(fd, "hello", 5), 5);
	SPIN(&f, f.sent.len == 5);
	assert_memory_equal(f.sent.data, "hello", 5);
	assert_int_equal(client_portfwd_deliver(f.pf, PT_OUTPUT, U8("world"),
	    5), 0);
	r = 0;
	{
		int i;

		for (i = 0; i < 400 && r <= 0; i++) {
			uv_run(&f.loop, UV_RUN_NOWAIT);
			r = recv(fd, got, sizeof(got), MSG_DONTWAIT);
			usleep(5000);
		}
	}
	assert_int_equal(r, 5);
	assert_memory_equal(got, "world", 5);

	/* A second client waits its turn. */
	fd2 = tcp_connect(client_portfwd_port(f.pf));
	for (r = 0; r < 20; r++)
		uv_run(&f.loop, UV_RUN_NOWAIT);
	assert_int_equal(client_portfwd_connections(f.pf), 1);
	/* The first leaves: DisconnectToPort, and the second is taken. */
	close(fd);
	SPIN(&f, f.nflags == 1);
	assert_int_equal(f.flags[0], CLIENT_FLAG_DISCONNECT_TO_PORT);
	SPIN(&f, client_portfwd_connections(f.pf) == 1);
	/* The channel is full: reads wait, then go. */
	f.room = 0;
	assert_int_equal(write(fd2, "abc", 3), 3);
	for (r = 0; r < 20; r++)
		uv_run(&f.loop, UV_RUN_NOWAIT);
	assert_int_equal(f.sent.len, 5);
	f.room = 1;
	client_portfwd_writable(f.pf);
	SPIN(&f, f.sent.len == 8);
	assert_memory_equal(f.sent.data + 5, "abc", 3);
	/* ConnectToPortError is shown; unknown flags and types are not. */
	assert_int_equal(client_portfwd_deliver(f.pf, PT_FLAG,
	    U8("\0\0\0\3"), 4), 0);
	assert_non_null(strstr(buf_cstr(&f.printed),
	    CLIENT_PORT_CONNECT_FAILED));
	assert_int_equal(client_portfwd_deliver(f.pf, PT_FLAG, U8("\0\0"), 2),
	    0);
	assert_int_equal(client_portfwd_deliver(f.pf, PT_SIZE, U8("{}"), 2),
	    0);
	close(fd2);
	assert_false(f.fatal);
	fake_done(&f);
}

static void
test_unix_socket(void **state)
{
	struct client_port_props pp;
	struct fake f;
	struct stat st;
	char want[256];

	(void)state;
	memset(&pp, 0, sizeof(pp));
	pp.local_forwarding = 1;
	pp.unix_socket = 1;
	snprintf(pp.local_socket, sizeof(pp.local_socket),
	    "/tmp/ph-portfwd-test-%ld.sock", (long)getpid());
	(void)unlink(pp.local_socket);
	fake_init(&f, CLIENT_PORT_BASIC, &pp);
	assert_int_equal(stat(pp.local_socket, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(want, sizeof(want), "Unix socket %s opened for sessionId "
	    "sess-1.\n", pp.local_socket);
	assert_string_equal(buf_cstr(&f.printed), want);
	fake_done(&f);
	/* Removed at the end. */
	assert_int_equal(stat(pp.local_socket, &st), -1);
}

static void
test_listen_fails(void **state)
{
	struct client_port_props pp;
	struct fake f;
	struct client_portfwd *pf2;
	char err[256];

	(void)state;
	memset(&pp, 0, sizeof(pp));
	pp.local_forwarding = 1;
	fake_init(&f, CLIENT_PORT_BASIC, &pp);
	/* The same port again: in use. */
	pp.local_port = client_portfwd_port(f.pf);
	assert_int_equal(client_portfwd_new(&pf2, &f.loop, CLIENT_PORT_BASIC,
	    &pp, "sess-2", 0, &fcbs, &f), 0);
	assert_int_not_equal(client_portfwd_start(pf2, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "Unable to listen on localhost"));
	client_portfwd_close(pf2);
	/* A unix socket in a directory that does not exist. */
	memset(&pp, 0, sizeof(pp));
	pp.unix_socket = 1;
	strcpy(pp.local_socket, "/nonexistent-dir/x.sock");
	assert_int_equal(client_portfwd_new(&pf2, &f.loop, CLIENT_PORT_MUX,
	    &pp, "sess-2", 0, &fcbs, &f), 0);
	assert_int_not_equal(client_portfwd_start(pf2, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "Unable to listen on unix socket"));
	client_portfwd_close(pf2);
	assert_int_equal(client_portfwd_new(&pf2, &f.loop, CLIENT_PORT_STDIO,
	    &pp, "sess-2", 0, &fcbs, &f), PH_ERR_INVALID);
	fake_done(&f);
}

/* The agent's end of mux mode: an smux server fed with what we sent. */
struct agent {
	struct smux *m;
	struct buf out;          /* its smux byte stream to us */
	struct buf got[8];       /* data per stream, by open order */
	uint32_t sids[8];
	int nsids;
	int fins;
};

static int
a_write(void *ud, const uint8_t *p, size_t n)
{
	return buf_append(&((struct agent *)ud)->out, p, n);
}

static int
a_open(void *ud, uint32_t sid)
{
	struct agent *a = ud;

	if (a->nsids >= 8)
		return -1;
	a->sids[a->nsids] = sid;
	buf_init(&a->got[a->nsids], (size_t)1 << 20);
	a->nsids++;
	return 0;
}

static int
a_data(void *ud, uint32_t sid, const uint8_t *p, size_t n)
{
	struct agent *a = ud;
	int i;

	for (i = 0; i < a->nsids; i++)
		if (a->sids[i] == sid)
			return buf_append(&a->got[i], p, n);
	return 0;
}

static void
a_fin(void *ud, uint32_t sid)
{
	(void)sid;
	((struct agent *)ud)->fins++;
}

static const struct smux_cbs acbs = {
	.write = a_write, .on_open = a_open, .on_data = a_data,
	.on_fin = a_fin,
};

/* Move bytes both ways until nothing moves. */
static void
pump(struct fake *f, struct agent *a)
{
	int i;

	for (i = 0; i < 50; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		if (f->sent.len > 0) {
			assert_int_equal(smux_input(a->m, f->sent.data,
			    f->sent.len), 0);
			buf_reset(&f->sent);
		}
		while (a->out.len > 0) {
			/* Odd pieces: payloads are not frames. */
			size_t k = a->out.len < 777 ? a->out.len : 777;

			assert_int_equal(client_portfwd_deliver(f->pf,
			    PT_OUTPUT, a->out.data, k), 0);
			buf_consume(&a->out, k);
		}
		usleep(2000);
	}
}

static void
test_mux(void **state)
{
	struct client_port_props pp;
	struct fake f;
	struct agent a;
	char want[128], got[64];
	int fd1, fd2, i;
	ssize_t r;

	(void)state;
	memset(&pp, 0, sizeof(pp));
	pp.local_forwarding = 1;
	memset(&a, 0, sizeof(a));
	buf_init(&a.out, (size_t)8 << 20);
	assert_int_equal(smux_new(&a.m, SMUX_SERVER, &acbs, &a, NULL), 0);
	fake_init(&f, CLIENT_PORT_MUX, &pp);
	snprintf(want, sizeof(want), "Port %u opened for sessionId sess-1.\n"
	    "Waiting for connections...\n", client_portfwd_port(f.pf));
	assert_string_equal(buf_cstr(&f.printed), want);

	fd1 = tcp_connect(client_portfwd_port(f.pf));
	fd2 = tcp_connect(client_portfwd_port(f.pf));
	SPIN(&f, client_portfwd_connections(f.pf) == 2);
	assert_non_null(strstr(buf_cstr(&f.printed),
	    "\nConnection accepted for session [sess-1]\n"));
	/* Said once only. */
	assert_null(strstr(strstr(buf_cstr(&f.printed), "[sess-1]") + 1,
	    "[sess-1]"));
	assert_int_equal(write(fd1, "one", 3), 3);
	assert_int_equal(write(fd2, "two", 3), 3);
	pump(&f, &a);
	assert_int_equal(a.nsids, 2);
	/* Client stream ids are odd, from 3. */
	assert_true(a.sids[0] % 2 == 1 && a.sids[1] % 2 == 1);
	assert_true(a.sids[0] >= 3 && a.sids[1] >= 3);
	for (i = 0; i < 2; i++) {
		assert_int_equal(a.got[i].len, 3);
		assert_true(memcmp(a.got[i].data, "one", 3) == 0 ||
		    memcmp(a.got[i].data, "two", 3) == 0);
	}
	/* Answers go to the right connection. */
	for (i = 0; i < 2; i++) {
		if (memcmp(a.got[i].data, "one", 3) == 0)
			assert_int_equal(smux_write(a.m, a.sids[i], "ONE", 3),
			    0);
		else
			assert_int_equal(smux_write(a.m, a.sids[i], "TWO", 3),
			    0);
	}
	pump(&f, &a);
	r = recv(fd1, got, sizeof(got), MSG_DONTWAIT);
	assert_int_equal(r, 3);
	assert_memory_equal(got, "ONE", 3);
	r = recv(fd2, got, sizeof(got), MSG_DONTWAIT);
	assert_int_equal(r, 3);
	assert_memory_equal(got, "TWO", 3);

	/* The destination refused stream 2: flag, then FIN. */
	assert_int_equal(client_portfwd_deliver(f.pf, PT_FLAG,
	    U8("\0\0\0\3"), 4), 0);
	assert_non_null(strstr(buf_cstr(&f.printed),
	    CLIENT_PORT_CONNECT_FAILED));
	for (i = 0; i < 2; i++)
		if (memcmp(a.got[i].data, "two", 3) == 0)
			assert_int_equal(smux_close(a.m, a.sids[i]), 0);
	pump(&f, &a);
	SPIN(&f, client_portfwd_connections(f.pf) == 1);
	r = recv(fd2, got, sizeof(got), MSG_DONTWAIT);
	assert_int_equal(r, 0);
	close(fd2);
	/* The local client leaves: FIN to the agent. */
	close(fd1);
	SPIN(&f, client_portfwd_connections(f.pf) == 0);
	pump(&f, &a);
	assert_int_equal(a.fins, 1);
	assert_false(f.fatal);

	/* Garbage smux from the agent ends forwarding cleanly. */
	assert_int_equal(client_portfwd_deliver(f.pf, PT_OUTPUT,
	    U8("\x07\x09\xff\xff\x01\x00\x00\x00"), 8), 0);
	assert_true(f.fatal);
	assert_int_equal(client_portfwd_deliver(f.pf, PT_OUTPUT,
	    U8("\x01\x02\x01\x00\x03\x00\x00\x00x"), 9), 0);
	fake_done(&f);
	for (i = 0; i < a.nsids; i++)
		buf_free(&a.got[i]);
	buf_free(&a.out);
	smux_free(a.m);
}

/* A local client that does not read: the client stops reading the data
 * channel (pause), smux refuses more once its limits are reached, nothing
 * grows without bound; once it reads, everything arrives in order. */
static void
test_mux_slow_reader(void **state)
{
	struct client_port_props pp;
	struct fake f;
	struct agent a;
	struct sockaddr_in sa;
	static uint8_t chunk[16384], rb[65536];
	size_t pushed = 0, total = 0, k;
	uint64_t sum_in = 0, sum_out = 0;
	int fd, rcv = 4096, i, rc = 0;
	ssize_t r;

	(void)state;
	memset(&pp, 0, sizeof(pp));
	pp.local_forwarding = 1;
	memset(&a, 0, sizeof(a));
	buf_init(&a.out, (size_t)64 << 20);
	assert_int_equal(smux_new(&a.m, SMUX_SERVER, &acbs, &a, NULL), 0);
	fake_init(&f, CLIENT_PORT_MUX, &pp);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv,
	    sizeof(rcv)), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)client_portfwd_port(f.pf));
	sa.sin_addr.s_addr = htonl(0x7f000001);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	SPIN(&f, client_portfwd_connections(f.pf) == 1);
	assert_int_equal(write(fd, "x", 1), 1);
	pump(&f, &a);
	assert_int_equal(a.nsids, 1);
	for (i = 0; i < (int)sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 7 + 3);
	/* Up to 64 MiB, until the client refuses. */
	while (pushed < ((size_t)64 << 20) && rc == 0) {
		assert_int_equal(smux_write(a.m, a.sids[0], chunk,
		    sizeof(chunk)), 0);
		pushed += sizeof(chunk);
		for (k = 0; k < sizeof(chunk); k++)
			sum_in += chunk[k];
		while (a.out.len > 0) {
			rc = client_portfwd_deliver(f.pf, PT_OUTPUT,
			    a.out.data, a.out.len);
			if (rc != 0)
				break;
			buf_reset(&a.out);
		}
		uv_run(&f.loop, UV_RUN_NOWAIT);
	}
	assert_int_equal(rc, PH_ERR_AGAIN);
	assert_true(f.paused);
	assert_true(pushed < ((size_t)16 << 20));
	/* Now read: the refused bytes are offered again as it drains. */
	for (i = 0; i < 20000 && total < pushed; i++) {
		if (a.out.len > 0 && client_portfwd_deliver(f.pf, PT_OUTPUT,
		    a.out.data, a.out.len) == 0)
			buf_reset(&a.out);
		uv_run(&f.loop, UV_RUN_NOWAIT);
		r = recv(fd, rb, sizeof(rb), MSG_DONTWAIT);
		if (r > 0) {
			for (k = 0; k < (size_t)r; k++)
				sum_out += rb[k];
			total += (size_t)r;
		} else
			usleep(500);
	}
	assert_int_equal(total, pushed);
	assert_true(sum_in == sum_out);
	assert_false(f.paused);
	assert_false(f.fatal);
	close(fd);
	SPIN(&f, client_portfwd_connections(f.pf) == 0);
	fake_done(&f);
	for (i = 0; i < a.nsids; i++)
		buf_free(&a.got[i]);
	buf_free(&a.out);
	smux_free(a.m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_props),
		cmocka_unit_test(test_props_garbage),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_mux),
		cmocka_unit_test(test_mux_slow_reader),
		cmocka_unit_test(test_unix_socket),
		cmocka_unit_test(test_listen_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
