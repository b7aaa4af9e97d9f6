#include "agent/portfwd.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/portfwd_conn.h"
#include "common/buf.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/log.h"
#include "common/smux.h"

/* Streams by id: a few hundred at once is the busy case. */
#define PF_BUCKETS 256

/* One smux stream and its destination connection. */
struct pf_stream {
	struct portfwd *pf;
	uint32_t sid;
	struct pf_conn *conn;
	int connected;
	int blocked;             /* the destination's reads wait for room */
	struct pf_stream *hnext; /* bucket chain */
	struct pf_stream *prev, *next;
};

struct portfwd {
	struct portfwd_cbs cbs;
	void *ud;
	enum portfwd_mode mode;
	char session_id[100];
	struct pf_dest dest;
	int ended;
	uint64_t to_dest, from_dest;
	/* basic and stdio: the one connection */
	struct pf_conn *conn;
	int connected;
	int blocked;
	struct buf held;         /* client bytes while it is dialled */
	/* mux */
	struct smux *mux;
	struct pf_stream *buckets[PF_BUCKETS];
	struct pf_stream *all;
	size_t nblocked;
};

/* ---- versions (spec 10.2) ------------------------------------------------ */

static unsigned long
ver_part(const char **s)
{
	unsigned long v = 0;
	const char *p = *s;

	while (*p >= '0' && *p <= '9') {
		if (v < 100000000UL)
			v = v * 10 + (unsigned long)(*p - '0');
		p++;
	}
	while (*p != '\0' && *p != '.') /* "1rc2": the number counts */
		p++;
	if (*p == '.')
		p++;
	*s = p;
	return v;
}

int
portfwd_version_cmp(const char *a, const char *b)
{
	unsigned long x, y;

	if (a == NULL)
		a = "";
	if (b == NULL)
		b = "";
	while (*a != '\0' || *b != '\0') {
		/* A missing component makes a version smaller (AWS). */
		if (*a == '\0')
			return -1;
		if (*b == '\0')
			return 1;
		x = ver_part(&a);
		y = ver_part(&b);
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

enum portfwd_mode
portfwd_pick_mode(const char *agent_version, const char *client_version,
    int lpf)
{
	if (!lpf)
		return PF_MODE_STDIO;
	if (agent_version != NULL && portfwd_version_cmp(agent_version,
	    PF_MUX_MIN_AGENT_AFTER) <= 0)
		return PF_MODE_BASIC;
	if (client_version != NULL && client_version[0] != '\0' &&
	    portfwd_version_cmp(client_version, PF_MUX_MIN_CLIENT) >= 0)
		return PF_MODE_MUX;
	return PF_MODE_BASIC;
}

int
portfwd_keepalive(const char *client_version)
{
	return client_version == NULL || client_version[0] == '\0' ||
	    portfwd_version_cmp(client_version, PF_KEEPALIVE_OFF_AFTER) <= 0;
}

const char *
portfwd_mode_name(enum portfwd_mode mode)
{
	switch (mode) {
	case PF_MODE_BASIC:
		return "basic";
	case PF_MODE_STDIO:
		return "stdio";
	case PF_MODE_MUX:
		return "mux";
	}
	return "unknown";
}

/* ---- common -------------------------------------------------------------- */

static void
pf_end(struct portfwd *pf, int failed, const char *msg)
{
	if (pf->ended)
		return;
	pf->ended = 1;
	log_info("event=port_session_end session=%s failed=%d msg=\"%s\"",
	    pf->session_id, failed, msg);
	pf->cbs.on_end(pf->ud, failed, msg);
}

static void
pf_record(struct portfwd *pf, json_t *o)
{
	char *s;

	if (o == NULL)
		return;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s != NULL && pf->cbs.record != NULL)
		pf->cbs.record(pf->ud, s, strlen(s));
	free(s);
}

static void
pf_record_connect(struct portfwd *pf, uint32_t sid, struct pf_conn *c)
{
	pf_record(pf, json_pack("{s:s, s:I, s:s, s:i, s:s}", "event",
	    "connect", "stream", (json_int_t)sid, "host",
	    pf->dest.host[0] ? pf->dest.host : "localhost", "port",
	    (int)pf->dest.port, "address", pf_conn_address(c)));
}

static void
pf_record_disconnect(struct portfwd *pf, uint32_t sid, struct pf_conn *c,
    const char *why)
{
	pf_record(pf, json_pack("{s:s, s:I, s:I, s:I, s:s}", "event",
	    "disconnect", "stream", (json_int_t)sid, "bytes_in",
	    (json_int_t)pf_conn_bytes_to(c), "bytes_out",
	    (json_int_t)pf_conn_bytes_from(c), "reason", why));
}

static void
pf_record_failed(struct portfwd *pf, uint32_t sid, const char *why)
{
	pf_record(pf, json_pack("{s:s, s:I, s:s, s:i, s:s}", "event",
	    "connect_failed", "stream", (json_int_t)sid, "host",
	    pf->dest.host[0] ? pf->dest.host : "localhost", "port",
	    (int)pf->dest.port, "reason", why));
}

/* ---- basic and stdio ----------------------------------------------------- */

static size_t
basic_room(void *ud, struct pf_conn *c)
{
	struct portfwd *pf = ud;

	if (pf->ended || !pf->cbs.writable(pf->ud)) {
		pf->blocked = 1;
		return 0;
	}
	return PF_PAYLOAD;
}

static size_t
basic_data(void *ud, struct pf_conn *c, const uint8_t *p, size_t n)
{
	struct portfwd *pf = ud;
	size_t taken = 0, chunk;

	while (taken < n && !pf->ended && pf->cbs.writable(pf->ud)) {
		chunk = n - taken < PF_PAYLOAD ? n - taken : PF_PAYLOAD;
		if (pf->cbs.send(pf->ud, PT_OUTPUT, p + taken, chunk) != 0)
			break;
		taken += chunk;
	}
	pf->from_dest += taken;
	if (taken < n)
		pf->blocked = 1;
	return pf->ended ? n : taken;
}

static void
basic_drop_conn(struct portfwd *pf, int graceful, const char *why)
{
	struct pf_conn *c = pf->conn;

	if (c == NULL)
		return;
	pf->conn = NULL;
	if (pf->connected)
		pf_record_disconnect(pf, 0, c, why);
	pf->connected = 0;
	pf->blocked = 0;
	buf_reset(&pf->held);
	if (graceful)
		pf_conn_finish(c);
	else
		pf_conn_close(c);
}

static void
basic_connected(void *ud, struct pf_conn *c)
{
	struct portfwd *pf = ud;

	pf->connected = 1;
	pf_record_connect(pf, 0, c);
	log_info("event=port_connected session=%s address=%s",
	    pf->session_id, pf_conn_address(c));
	if (pf->held.len > 0) {
		if (pf_conn_write(c, pf->held.data, pf->held.len) != 0) {
			basic_drop_conn(pf, 0, "write failed");
			return;
		}
		pf->to_dest += pf->held.len;
		buf_reset(&pf->held);
	}
	pf->cbs.on_change(pf->ud);
}

static void
basic_dial_failed(void *ud, struct pf_conn *c, const char *why)
{
	struct portfwd *pf = ud;

	pf_record_failed(pf, 0, why);
	pf->conn = NULL;
	pf->connected = 0;
	buf_reset(&pf->held);
	pf_conn_close(c);
	/* spec 7.4: basic and SSH sessions have no way to tell the client
	 * about one connection: the session ends, saying why. */
	pf_end(pf, 1, why);
}

static void
basic_eof(void *ud, struct pf_conn *c, int err)
{
	struct portfwd *pf = ud;
	char why[PF_WHY_MAX];

	if (err != 0)
		snprintf(why, sizeof(why), "Failed to read from port: %s",
		    uv_strerror(err));
	else
		snprintf(why, sizeof(why), "the destination closed the "
		    "connection");
	if (pf->mode == PF_MODE_STDIO) {
		/* spec 7.4: the SSH server's EOF ends the session. */
		basic_drop_conn(pf, err == 0, why);
		pf_end(pf, err != 0, err != 0 ? why : "");
		return;
	}
	/* LocalPortForwarding: the next Output dials again. */
	basic_drop_conn(pf, err == 0, why);
}

static void
basic_drain(void *ud, struct pf_conn *c)
{
	struct portfwd *pf = ud;

	pf->cbs.on_change(pf->ud);
}

static const struct pf_conn_cbs basic_conn_cbs = {
	.on_connected = basic_connected,
	.on_dial_failed = basic_dial_failed,
	.room = basic_room,
	.on_data = basic_data,
	.on_eof = basic_eof,
	.on_drain = basic_drain,
};

static int
basic_output(struct portfwd *pf, const uint8_t *p, size_t n)
{
	int rc;

	if (pf->conn == NULL) {
		rc = pf_conn_dial(&pf->conn, &pf->dest, &basic_conn_cbs, pf);
		if (rc != 0) {
			pf_end(pf, 1, "Unable to connect to specified port: "
			    "cannot start the connection");
			return 0;
		}
	}
	if (!pf->connected) {
		if (buf_append(&pf->held, p, n) != 0)
			return PH_ERR_AGAIN; /* the client resends it */
		return 0;
	}
	if (pf_conn_queued(pf->conn) >= PF_IN_MAX)
		return PH_ERR_AGAIN;
	if (pf_conn_write(pf->conn, p, n) != 0) {
		basic_eof(pf, pf->conn, UV_EPIPE);
		return 0;
	}
	pf->to_dest += n;
	return 0;
}

/* ---- mux (smux v1 server) ------------------------------------------------ */

static struct pf_stream *
mux_find(struct portfwd *pf, uint32_t sid)
{
	struct pf_stream *st;

	for (st = pf->buckets[sid % PF_BUCKETS]; st != NULL; st = st->hnext)
		if (st->sid == sid)
			return st;
	return NULL;
}

/* Forget a stream (its smux side is already closed or being closed). */
static void
mux_unlink(struct portfwd *pf, struct pf_stream *st)
{
	struct pf_stream **pp;

	for (pp = &pf->buckets[st->sid % PF_BUCKETS]; *pp != NULL;
	    pp = &(*pp)->hnext) {
		if (*pp == st) {
			*pp = st->hnext;
			break;
		}
	}
	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		pf->all = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	if (st->blocked)
		pf->nblocked--;
	free(st);
}

/* End a stream: smux FIN (unless smux already dropped it), the
 * destination closed (gracefully: queued bytes are written first). */
static void
mux_drop(struct portfwd *pf, struct pf_stream *st, int smux_close_it,
    int graceful, const char *why)
{
	if (st->connected)
		pf_record_disconnect(pf, st->sid, st->conn, why);
	if (st->conn != NULL) {
		pf->to_dest += pf_conn_bytes_to(st->conn);
		pf->from_dest += pf_conn_bytes_from(st->conn);
		if (graceful)
			pf_conn_finish(st->conn);
		else
			pf_conn_close(st->conn);
		st->conn = NULL;
	}
	if (smux_close_it && pf->mux != NULL)
		(void)smux_close(pf->mux, st->sid);
	mux_unlink(pf, st);
}

static void
mux_block(struct portfwd *pf, struct pf_stream *st)
{
	if (!st->blocked) {
		st->blocked = 1;
		pf->nblocked++;
	}
}

static size_t
mux_room(void *ud, struct pf_conn *c)
{
	struct pf_stream *st = mux_find(ud, pf_conn_tag(c));
	struct portfwd *pf = ud;
	size_t room;

	if (st == NULL || pf->ended)
		return 0;
	room = smux_write_room(pf->mux);
	if (room == 0)
		mux_block(pf, st);
	/* A read fills one data-channel message, not one and a tail. */
	return room < smux_write_unit(pf->mux) ? room :
	    smux_write_unit(pf->mux);
}

static size_t
mux_data(void *ud, struct pf_conn *c, const uint8_t *p, size_t n)
{
	struct portfwd *pf = ud;
	struct pf_stream *st = mux_find(pf, pf_conn_tag(c));
	size_t room, chunk;

	if (st == NULL || pf->ended)
		return n;
	room = smux_write_room(pf->mux);
	chunk = n < room ? n : room;
	if (chunk > 0 && smux_write(pf->mux, st->sid, p, chunk) != 0)
		chunk = 0;
	if (chunk < n)
		mux_block(pf, st);
	return chunk;
}

static void
mux_connected(void *ud, struct pf_conn *c)
{
	struct portfwd *pf = ud;
	struct pf_stream *st = mux_find(pf, pf_conn_tag(c));

	if (st == NULL)
		return;
	st->connected = 1;
	pf_record_connect(pf, st->sid, c);
	log_debug("event=port_stream_connected session=%s stream=%u "
	    "address=%s", pf->session_id, st->sid, pf_conn_address(c));
	/* Data that came while it was dialled. */
	smux_resume(pf->mux, st->sid);
	pf->cbs.on_change(pf->ud);
}

static void
mux_dial_failed(void *ud, struct pf_conn *c, const char *why)
{
	struct portfwd *pf = ud;
	struct pf_stream *st = mux_find(pf, pf_conn_tag(c));
	uint8_t flag[4] = { 0, 0, 0, PF_FLAG_CONNECT_ERROR };

	log_info("event=port_stream_failed session=%s stream=%u why=\"%s\"",
	    pf->session_id, pf_conn_tag(c), why);
	pf_record_failed(pf, pf_conn_tag(c), why);
	/* spec 3.4 and 7.4: ConnectToPortError, then the stream closes; the
	 * session goes on. The flag says nothing of which stream, as in
	 * AWS's agent. */
	if (pf->cbs.send(pf->ud, PT_FLAG, flag, sizeof(flag)) != 0)
		log_debug("event=port_flag_dropped session=%s",
		    pf->session_id);
	if (st != NULL)
		mux_drop(pf, st, 1, 0, why);
	else
		pf_conn_close(c);
	pf->cbs.on_change(pf->ud);
}

static void
mux_eof(void *ud, struct pf_conn *c, int err)
{
	struct portfwd *pf = ud;
	struct pf_stream *st = mux_find(pf, pf_conn_tag(c));

	if (st == NULL) {
		pf_conn_close(c);
		return;
	}
	/* After every byte read was queued in smux: its FIN follows them. */
	mux_drop(pf, st, 1, err == 0, err == 0 ? "the destination closed "
	    "the connection" : uv_strerror(err));
	pf->cbs.on_change(pf->ud);
}

static void
mux_drain(void *ud, struct pf_conn *c)
{
	struct portfwd *pf = ud;

	smux_resume(pf->mux, pf_conn_tag(c));
	pf->cbs.on_change(pf->ud);
}

static const struct pf_conn_cbs mux_conn_cbs = {
	.on_connected = mux_connected,
	.on_dial_failed = mux_dial_failed,
	.room = mux_room,
	.on_data = mux_data,
	.on_eof = mux_eof,
	.on_drain = mux_drain,
};

static int
mux_write(void *ud, const uint8_t *p, size_t n)
{
	struct portfwd *pf = ud;

	if (pf->ended || !pf->cbs.writable(pf->ud))
		return PH_ERR_AGAIN;
	return pf->cbs.send(pf->ud, PT_OUTPUT, p, n) == 0 ? 0 : PH_ERR_AGAIN;
}

static int
mux_open(void *ud, uint32_t sid)
{
	struct portfwd *pf = ud;
	struct pf_stream *st;

	if (pf->ended || mux_find(pf, sid) != NULL)
		return PH_ERR_STATE;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return PH_ERR_NOMEM;
	st->pf = pf;
	st->sid = sid;
	if (pf_conn_dial(&st->conn, &pf->dest, &mux_conn_cbs, pf) != 0) {
		free(st);
		return PH_ERR_IO;
	}
	pf_conn_set_tag(st->conn, sid);
	st->hnext = pf->buckets[sid % PF_BUCKETS];
	pf->buckets[sid % PF_BUCKETS] = st;
	st->next = pf->all;
	if (pf->all != NULL)
		pf->all->prev = st;
	pf->all = st;
	log_debug("event=port_stream_open session=%s stream=%u",
	    pf->session_id, sid);
	return 0;
}

static int
mux_on_data(void *ud, uint32_t sid, const uint8_t *p, size_t n)
{
	struct portfwd *pf = ud;
	struct pf_stream *st = mux_find(pf, sid);

	if (st == NULL)
		return PH_ERR_NOTFOUND;
	if (!st->connected)
		return PH_ERR_AGAIN; /* mux_connected resumes it */
	if (pf_conn_queued(st->conn) >= PF_WQ_HIGH)
		return PH_ERR_AGAIN; /* mux_drain resumes it */
	if (pf->dest.wq_total >= PF_IN_MAX) {
		/* All the destinations together hold enough. */
		pf->dest.wq_over = 1;
		return PH_ERR_AGAIN; /* portfwd_resume resumes them */
	}
	if (pf_conn_write(st->conn, p, n) != 0) {
		/* smux closes the stream on our error. */
		mux_drop(pf, st, 0, 0, "write to the destination failed");
		return PH_ERR_IO;
	}
	return 0;
}

static void
mux_on_fin(void *ud, uint32_t sid)
{
	struct portfwd *pf = ud;
	struct pf_stream *st = mux_find(pf, sid);

	if (st == NULL)
		return;
	/* smux v1 has no half-close: the client's FIN closed the stream on
	 * its side (xtaci's Close, porthole's client alike) and it drops
	 * whatever we still send. The destination gets what was queued,
	 * then FIN; the stream is forgotten now, so one whose destination
	 * never closes cannot pin a stream slot. */
	mux_drop(pf, st, 1, st->connected, "the client closed the stream");
}

static void
mux_on_error(void *ud, int err, const char *why)
{
	struct portfwd *pf = ud;
	char msg[200];

	log_warn("event=port_smux_error session=%s why=\"%s\"",
	    pf->session_id, why);
	snprintf(msg, sizeof(msg), "The client's multiplexed stream is "
	    "invalid: %s", why);
	pf_end(pf, 1, msg);
}

static const struct smux_cbs pf_smux_cbs = {
	.write = mux_write,
	.on_open = mux_open,
	.on_data = mux_on_data,
	.on_fin = mux_on_fin,
	.on_error = mux_on_error,
};

/* ---- API ----------------------------------------------------------------- */

int
portfwd_new(struct portfwd **out, const struct portfwd_params *p,
    const struct portfwd_cbs *cbs, void *ud)
{
	struct smux_limits lim;
	struct portfwd *pf;
	int rc;

	*out = NULL;
	if (p->port == 0 || p->port > 65535 || p->host == NULL ||
	    strlen(p->host) > AGENT_HOST_MAX)
		return PH_ERR_INVALID;
	if ((pf = calloc(1, sizeof(*pf))) == NULL)
		return PH_ERR_NOMEM;
	pf->cbs = *cbs;
	pf->ud = ud;
	pf->mode = p->mode;
	snprintf(pf->session_id, sizeof(pf->session_id), "%s",
	    p->session_id ? p->session_id : "");
	pf->dest.loop = p->loop;
	pf->dest.deny = p->deny;
	snprintf(pf->dest.host, sizeof(pf->dest.host), "%s", p->host);
	pf->dest.port = p->port;
	buf_init(&pf->held, PF_IN_MAX);
	if (p->mode == PF_MODE_MUX) {
		memset(&lim, 0, sizeof(lim));
		lim.write_chunk = PF_PAYLOAD;
		lim.max_out_bytes = (size_t)1 << 20;
		rc = smux_new(&pf->mux, SMUX_SERVER, &pf_smux_cbs, pf, &lim);
		if (rc != 0) {
			buf_free(&pf->held);
			free(pf);
			return rc;
		}
		/* xtaci's keepalive sends a NOP every 10 s; its receive
		 * timeout is not enforced: a client built from public source
		 * reports a low version and never sends NOPs to a new agent
		 * (spec 10.2 [R]), and the data channel notices a dead peer
		 * by itself. */
		if (p->keepalive)
			smux_set_keepalive(pf->mux, PF_KEEPALIVE_MS,
			    UINT64_MAX / 4);
	}
	/* As AWS's agent: basic and SSH sessions dial at once, so a server
	 * that speaks first (sshd's banner, a database's greeting) is
	 * heard before the client sends anything. */
	if (p->mode != PF_MODE_MUX &&
	    (rc = pf_conn_dial(&pf->conn, &pf->dest, &basic_conn_cbs,
	    pf)) != 0) {
		buf_free(&pf->held);
		free(pf);
		return rc;
	}
	log_info("event=port_session_start session=%s mode=%s host=%s "
	    "port=%u keepalive=%d", pf->session_id, portfwd_mode_name(p->mode),
	    p->host[0] ? p->host : "localhost", p->port, p->keepalive);
	*out = pf;
	return 0;
}

int
portfwd_input(struct portfwd *pf, uint32_t payload_type, const uint8_t *p,
    size_t n)
{
	uint32_t flag;
	int rc;

	if (pf->ended)
		return 0; /* acknowledged and dropped */
	if (payload_type == PT_FLAG) {
		if (n != 4) {
			log_warn("event=port_bad_flag session=%s len=%zu",
			    pf->session_id, n);
			return 0;
		}
		flag = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
		log_debug("event=port_flag session=%s flag=%u", pf->session_id,
		    flag);
		if (flag == PF_FLAG_TERMINATE)
			pf_end(pf, 0, "");
		else if (flag == PF_FLAG_DISCONNECT &&
		    pf->mode != PF_MODE_MUX)
			basic_drop_conn(pf, 1, "the client disconnected");
		return 0;
	}
	if (payload_type != PT_OUTPUT || n == 0)
		return 0;
	if (pf->mode != PF_MODE_MUX)
		return basic_output(pf, p, n);
	rc = smux_input(pf->mux, p, n);
	if (rc == PH_ERR_AGAIN)
		return rc;
	if (rc != 0 && !pf->ended)
		pf_end(pf, 1, "The client's multiplexed stream is invalid.");
	return 0;
}

int
portfwd_input_congested(const struct portfwd *pf)
{
	if (pf->ended)
		return 0;
	if (pf->mode == PF_MODE_MUX)
		return !smux_can_input(pf->mux);
	if (pf->conn != NULL && pf->connected)
		return pf_conn_queued(pf->conn) >= PF_WQ_HIGH;
	return pf->held.len >= PF_IN_MAX / 2;
}

void
portfwd_resume(struct portfwd *pf)
{
	struct pf_stream *st, *next;

	if (pf->ended)
		return;
	if (pf->mode != PF_MODE_MUX) {
		if (pf->blocked && pf->conn != NULL && pf->connected &&
		    pf->cbs.writable(pf->ud)) {
			pf->blocked = 0;
			pf_conn_resume(pf->conn);
		}
		return;
	}
	if (smux_flush(pf->mux) != 0) {
		pf_end(pf, 1, "the multiplexed stream failed");
		return;
	}
	if (pf->dest.wq_over && pf->dest.wq_total < PF_IN_MAX / 2) {
		pf->dest.wq_over = 0;
		smux_resume(pf->mux, 0);
		if (pf->ended)
			return;
	}
	if (pf->nblocked == 0 || smux_write_room(pf->mux) == 0)
		return;
	for (st = pf->all; st != NULL && !pf->ended; st = next) {
		next = st->next;
		if (!st->blocked)
			continue;
		st->blocked = 0;
		pf->nblocked--;
		if (st->conn != NULL)
			pf_conn_resume(st->conn);
		if (smux_write_room(pf->mux) == 0)
			break;
	}
}

void
portfwd_tick(struct portfwd *pf, uint64_t now_ms)
{
	int rc;

	if (pf->ended || pf->mux == NULL)
		return;
	rc = smux_tick(pf->mux, now_ms);
	if (rc == PH_ERR_EXPIRED)
		pf_end(pf, 1, "the client stopped answering (smux keepalive)");
	else if (rc != 0)
		pf_end(pf, 1, "the multiplexed stream failed");
}

void
portfwd_counts(const struct portfwd *pf, uint64_t *to_dest,
    uint64_t *from_dest)
{
	const struct pf_stream *st;
	uint64_t t = pf->to_dest, f = pf->from_dest;

	for (st = pf->all; st != NULL; st = st->next) {
		if (st->conn == NULL)
			continue;
		t += pf_conn_bytes_to(st->conn);
		f += pf_conn_bytes_from(st->conn);
	}
	*to_dest = t;
	*from_dest = f;
}

void
portfwd_close(struct portfwd *pf)
{
	struct pf_stream *st, *next;

	if (pf == NULL)
		return;
	pf->ended = 1;
	for (st = pf->all; st != NULL; st = next) {
		next = st->next;
		if (st->conn != NULL)
			pf_conn_close(st->conn);
		free(st);
	}
	pf->all = NULL;
	if (pf->conn != NULL)
		pf_conn_close(pf->conn);
	smux_free(pf->mux);
	buf_free(&pf->held);
	free(pf);
}
