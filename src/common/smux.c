/* smux: xtaci/smux protocol version 1 without I/O (smux.h).
 *
 * Streams live in a small chained hash table keyed by id. Input is parsed
 * by a two-state machine (header, then PSH data) so frames may be split
 * anywhere; PSH data that arrives whole is delivered straight from the
 * caller's bytes, split data is gathered in one max_frame buffer first.
 * Data a consumer refuses is copied onto its stream's queue, and input is
 * refused while any queue is at its limit: version 1 has no flow control,
 * so holding back the whole byte stream is the only backpressure there
 * is (xtaci does the same with its token bucket).
 *
 * Outgoing frames go into one byte queue that is handed to the transport
 * in write_chunk pieces. Callbacks may re-enter (smux_close from on_data is
 * the common case), so every delivery looks its stream up again after the
 * callback returns. */
#include "common/smux.h"
#include "common/buf.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

#define SMUX_BUCKETS		256
#define DEF_STREAM_BUFFER	((size_t)1 << 20)
#define DEF_RECV_BUFFER		((size_t)4 << 20)
#define DEF_OUT_BYTES		((size_t)256 << 10)
#define DEF_WRITE_CHUNK		1024
#define DEF_MAX_STREAMS		1024

struct chunk {
	struct chunk *next;
	size_t len;
	uint8_t data[];
};

struct stream {
	struct stream *next;		/* hash chain */
	uint32_t sid;
	struct chunk *head, *tail;	/* data the consumer refused */
	size_t buffered;
	int fin_rcvd;			/* peer's FIN arrived */
	int fin_told;			/* on_fin was called */
};

struct smux {
	enum smux_role role;
	struct smux_cbs cbs;
	void *ud;
	struct smux_limits lim;
	int dead;
	int flushing;

	struct stream *tab[SMUX_BUCKETS];
	size_t nstreams;
	size_t buffered;		/* all streams' queues */
	size_t nfull;			/* streams at max_stream_buffer */
	uint32_t next_sid;		/* last id this end opened */
	int go_away;			/* ids ran out */

	/* Input state: header bytes, then data of a PSH frame. */
	uint8_t hdr[SMUX_HDR_LEN];
	size_t hdr_have;
	int in_data;
	uint32_t data_sid;
	size_t data_len, data_have;
	uint8_t *frame;			/* max_frame bytes, on first need */

	struct buf out;			/* frames not yet written */

	uint64_t ka_interval, ka_timeout;
	uint64_t last_rx, last_nop;
	int rx_active, ka_started;

	uint64_t dropped;
};

static size_t
bucket(uint32_t sid)
{
	return (sid * 2654435761u) >> 24 & (SMUX_BUCKETS - 1);
}

static struct stream *
lookup(const struct smux *m, uint32_t sid)
{
	struct stream *s;

	for (s = m->tab[bucket(sid)]; s != NULL; s = s->next)
		if (s->sid == sid)
			return s;
	return NULL;
}

static struct stream *
stream_add(struct smux *m, uint32_t sid)
{
	struct stream *s;
	size_t b = bucket(sid);

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->sid = sid;
	s->next = m->tab[b];
	m->tab[b] = s;
	m->nstreams++;
	return s;
}

static void
stream_del(struct smux *m, struct stream *s)
{
	struct stream **pp;
	struct chunk *c;

	for (pp = &m->tab[bucket(s->sid)]; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	while ((c = s->head) != NULL) {
		s->head = c->next;
		free(c);
	}
	if (s->buffered >= m->lim.max_stream_buffer)
		m->nfull--;
	m->buffered -= s->buffered;
	m->nstreams--;
	free(s);
}

/* Whether sid is one the peer may open (its parity, never 0). */
static int
peer_sid(const struct smux *m, uint32_t sid)
{
	if (sid == 0)
		return 0;
	if (m->role == SMUX_CLIENT)
		return sid % 2 == 0;
	return sid % 2 == 1;
}

int
smux_new(struct smux **out, enum smux_role role, const struct smux_cbs *cbs,
    void *ud, const struct smux_limits *limits)
{
	struct smux *m;

	*out = NULL;
	if (cbs == NULL || cbs->write == NULL || cbs->on_data == NULL)
		return PH_ERR_INVALID;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return PH_ERR_NOMEM;
	m->role = role;
	m->cbs = *cbs;
	m->ud = ud;
	if (limits != NULL)
		m->lim = *limits;
	if (m->lim.max_stream_buffer == 0)
		m->lim.max_stream_buffer = DEF_STREAM_BUFFER;
	if (m->lim.max_recv_buffer == 0)
		m->lim.max_recv_buffer = DEF_RECV_BUFFER;
	if (m->lim.max_out_bytes == 0)
		m->lim.max_out_bytes = DEF_OUT_BYTES;
	if (m->lim.write_chunk == 0)
		m->lim.write_chunk = DEF_WRITE_CHUNK;
	if (m->lim.max_frame == 0 || m->lim.max_frame > SMUX_MAX_FRAME)
		m->lim.max_frame = SMUX_MAX_FRAME;
	if (m->lim.max_streams == 0)
		m->lim.max_streams = DEF_MAX_STREAMS;
	m->next_sid = role == SMUX_CLIENT ? 1 : 0;
	/* Control frames may pass max_out_bytes; the buffer's own hard
	 * limit is far above what they can add (smux_write checks). */
	buf_init(&m->out, m->lim.max_out_bytes + ((size_t)1 << 20));
	*out = m;
	return 0;
}

void
smux_free(struct smux *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < SMUX_BUCKETS; i++)
		while (m->tab[i] != NULL)
			stream_del(m, m->tab[i]);
	buf_free(&m->out);
	free(m->frame);
	free(m);
}

static void
fatal(struct smux *m, int err, const char *why)
{
	if (m->dead)
		return;
	m->dead = 1;
	if (m->cbs.on_error != NULL)
		m->cbs.on_error(m->ud, err, why);
}

int
smux_flush(struct smux *m)
{
	size_t off = 0, n;
	int rc = 0;

	if (m->dead)
		return PH_ERR_STATE;
	if (m->flushing)
		return 0;
	m->flushing = 1;
	while (off < m->out.len) {
		n = m->out.len - off;
		if (n > m->lim.write_chunk)
			n = m->lim.write_chunk;
		rc = m->cbs.write(m->ud, m->out.data + off, n);
		if (rc == PH_ERR_AGAIN) {
			rc = 0;
			break;
		}
		if (rc != 0) {
			fatal(m, rc, "transport write failed");
			break;
		}
		off += n;
	}
	if (!m->dead)
		buf_consume(&m->out, off);
	m->flushing = 0;
	return rc;
}

static int
queue_frame(struct smux *m, uint8_t cmd, uint32_t sid, const uint8_t *p,
    size_t n)
{
	uint8_t h[SMUX_HDR_LEN];
	int rc;

	h[0] = SMUX_VERSION;
	h[1] = cmd;
	h[2] = n & 0xff;
	h[3] = n >> 8 & 0xff;
	h[4] = sid & 0xff;
	h[5] = sid >> 8 & 0xff;
	h[6] = sid >> 16 & 0xff;
	h[7] = sid >> 24 & 0xff;
	if ((rc = buf_reserve(&m->out, sizeof(h) + n)) != 0)
		return rc;
	(void)buf_append(&m->out, h, sizeof(h));
	if (n > 0)
		(void)buf_append(&m->out, p, n);
	return 0;
}

/* Refuse a peer's stream with FIN: a courtesy that is skipped while the
 * queue is full, so a flood of SYNs cannot grow it. */
static void
refuse(struct smux *m, uint32_t sid)
{
	m->dropped++;
	if (m->out.len < m->lim.max_out_bytes)
		(void)queue_frame(m, SMUX_FIN, sid, NULL, 0);
}

static int
stream_queue(struct smux *m, struct stream *s, const uint8_t *p, size_t n)
{
	struct chunk *c;

	if ((c = malloc(sizeof(*c) + n)) == NULL)
		return PH_ERR_NOMEM;
	c->next = NULL;
	c->len = n;
	memcpy(c->data, p, n);
	if (s->tail != NULL)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	if (s->buffered < m->lim.max_stream_buffer &&
	    s->buffered + n >= m->lim.max_stream_buffer)
		m->nfull++;
	s->buffered += n;
	m->buffered += n;
	return 0;
}

/* Data for sid: straight to the consumer unless some already waits. */
static void
deliver(struct smux *m, uint32_t sid, const uint8_t *p, size_t n)
{
	struct stream *s;
	int rc;

	if ((s = lookup(m, sid)) == NULL || s->fin_rcvd) {
		m->dropped++;
		return;
	}
	if (s->head == NULL) {
		rc = m->cbs.on_data(m->ud, sid, p, n);
		if (rc == 0 || m->dead)
			return;
		if ((s = lookup(m, sid)) == NULL)
			return;
		if (rc != PH_ERR_AGAIN) {
			(void)smux_close(m, sid);
			return;
		}
	}
	if (stream_queue(m, s, p, n) != 0)
		(void)smux_close(m, sid);
}

static void
got_fin(struct smux *m, uint32_t sid)
{
	struct stream *s;

	if ((s = lookup(m, sid)) == NULL || s->fin_rcvd) {
		m->dropped++;
		return;
	}
	s->fin_rcvd = 1;
	if (s->head == NULL) {
		s->fin_told = 1;
		if (m->cbs.on_fin != NULL)
			m->cbs.on_fin(m->ud, sid);
	}
}

static void
got_syn(struct smux *m, uint32_t sid)
{
	if (lookup(m, sid) != NULL) {
		m->dropped++;	/* xtaci ignores it too */
		return;
	}
	if (!peer_sid(m, sid) || m->cbs.on_open == NULL ||
	    m->nstreams >= m->lim.max_streams) {
		refuse(m, sid);
		return;
	}
	if (stream_add(m, sid) == NULL) {
		refuse(m, sid);
		return;
	}
	if (m->cbs.on_open(m->ud, sid) != 0 && !m->dead &&
	    lookup(m, sid) != NULL)
		(void)smux_close(m, sid);
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* A whole header arrived: check it and act, or start gathering data. */
static int
header(struct smux *m)
{
	uint8_t cmd = m->hdr[1];
	size_t len = (size_t)m->hdr[2] | (size_t)m->hdr[3] << 8;
	uint32_t sid = le32(m->hdr + 4);

	m->hdr_have = 0;
	if (m->hdr[0] != SMUX_VERSION) {
		fatal(m, PH_ERR_INVALID, "smux: wrong protocol version");
		return PH_ERR_INVALID;
	}
	switch (cmd) {
	case SMUX_SYN:
	case SMUX_FIN:
	case SMUX_NOP:
		if (len != 0) {
			fatal(m, PH_ERR_INVALID, "smux: control frame with data");
			return PH_ERR_INVALID;
		}
		if (cmd == SMUX_SYN)
			got_syn(m, sid);
		else if (cmd == SMUX_FIN)
			got_fin(m, sid);
		return 0;
	case SMUX_PSH:
		if (len > m->lim.max_frame) {
			fatal(m, PH_ERR_INVALID, "smux: frame too long");
			return PH_ERR_INVALID;
		}
		if (len > 0) {
			m->in_data = 1;
			m->data_sid = sid;
			m->data_len = len;
			m->data_have = 0;
		}
		return 0;
	default:
		/* UPD (4) belongs to version 2 only. */
		fatal(m, PH_ERR_INVALID, "smux: unknown command");
		return PH_ERR_INVALID;
	}
}

int
smux_can_input(const struct smux *m)
{
	if (m->dead)
		return 1;	/* smux_input answers PH_ERR_STATE */
	return m->buffered < m->lim.max_recv_buffer && m->nfull == 0;
}

int
smux_input(struct smux *m, const uint8_t *p, size_t n)
{
	size_t take;
	int rc;

	if (m->dead)
		return PH_ERR_STATE;
	if (!smux_can_input(m))
		return PH_ERR_AGAIN;
	if (n > 0)
		m->rx_active = 1;
	while (n > 0 && !m->dead) {
		if (!m->in_data) {
			take = SMUX_HDR_LEN - m->hdr_have;
			if (take > n)
				take = n;
			memcpy(m->hdr + m->hdr_have, p, take);
			m->hdr_have += take;
			p += take;
			n -= take;
			if (m->hdr_have == SMUX_HDR_LEN &&
			    (rc = header(m)) != 0)
				return rc;
			continue;
		}
		if (m->data_have == 0 && n >= m->data_len) {
			/* Whole in the caller's bytes: no copy. */
			take = m->data_len;
			m->in_data = 0;
			deliver(m, m->data_sid, p, take);
			p += take;
			n -= take;
			continue;
		}
		if (m->frame == NULL &&
		    (m->frame = malloc(m->lim.max_frame)) == NULL) {
			fatal(m, PH_ERR_NOMEM, "smux: out of memory");
			return PH_ERR_NOMEM;
		}
		take = m->data_len - m->data_have;
		if (take > n)
			take = n;
		memcpy(m->frame + m->data_have, p, take);
		m->data_have += take;
		p += take;
		n -= take;
		if (m->data_have == m->data_len) {
			m->in_data = 0;
			deliver(m, m->data_sid, m->frame, m->data_len);
		}
	}
	if (m->dead)
		return PH_ERR_STATE;
	/* Refusal FINs and closes from callbacks wait in the queue. */
	return smux_flush(m);
}

int
smux_open(struct smux *m, uint32_t *sid)
{
	uint32_t id;
	int rc;

	*sid = 0;
	if (m->dead)
		return PH_ERR_STATE;
	if (m->go_away || m->nstreams >= m->lim.max_streams)
		return PH_ERR_TOOBIG;
	if (m->next_sid + 2 < m->next_sid) {
		m->go_away = 1;
		return PH_ERR_TOOBIG;
	}
	id = m->next_sid + 2;
	if ((rc = queue_frame(m, SMUX_SYN, id, NULL, 0)) != 0)
		return rc;
	if (stream_add(m, id) == NULL) {
		/* Take the SYN back: it is the last thing queued. */
		m->out.len -= SMUX_HDR_LEN;
		return PH_ERR_NOMEM;
	}
	m->next_sid = id;
	*sid = id;
	return smux_flush(m);
}

/* Data that fits in room bytes of frames. */
static size_t
data_in(const struct smux *m, size_t room)
{
	size_t full, rem, mf = m->lim.max_frame;

	full = room / (mf + SMUX_HDR_LEN);
	rem = room % (mf + SMUX_HDR_LEN);
	return full * mf + (rem > SMUX_HDR_LEN ? rem - SMUX_HDR_LEN : 0);
}

size_t
smux_write_room(const struct smux *m)
{
	if (m->dead || m->out.len >= m->lim.max_out_bytes)
		return 0;
	return data_in(m, m->lim.max_out_bytes - m->out.len);
}

size_t
smux_write_unit(const struct smux *m)
{
	return data_in(m, m->lim.write_chunk);
}

int
smux_write(struct smux *m, uint32_t sid, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t k;
	int rc;

	if (m->dead)
		return PH_ERR_STATE;
	if (lookup(m, sid) == NULL)
		return PH_ERR_NOTFOUND;
	if (n == 0)
		return 0;
	if (n > smux_write_room(m))
		return PH_ERR_AGAIN;
	while (n > 0) {
		k = n > m->lim.max_frame ? m->lim.max_frame : n;
		if ((rc = queue_frame(m, SMUX_PSH, sid, b, k)) != 0)
			return rc;
		b += k;
		n -= k;
	}
	return smux_flush(m);
}

int
smux_close(struct smux *m, uint32_t sid)
{
	struct stream *s;
	int rc;

	if (m->dead)
		return PH_ERR_STATE;
	if ((s = lookup(m, sid)) == NULL)
		return PH_ERR_NOTFOUND;
	stream_del(m, s);
	if ((rc = queue_frame(m, SMUX_FIN, sid, NULL, 0)) != 0)
		return rc;
	return smux_flush(m);
}

static void
resume_one(struct smux *m, uint32_t sid)
{
	struct stream *s;
	struct chunk *c;
	int rc;

	while ((s = lookup(m, sid)) != NULL && (c = s->head) != NULL) {
		rc = m->cbs.on_data(m->ud, sid, c->data, c->len);
		if (m->dead)
			return;
		if ((s = lookup(m, sid)) == NULL)
			return;
		if (rc == PH_ERR_AGAIN)
			return;
		if (rc != 0) {
			(void)smux_close(m, sid);
			return;
		}
		/* Only deliver appends, and not from a callback: c is
		 * still the head. */
		s->head = c->next;
		if (s->head == NULL)
			s->tail = NULL;
		if (s->buffered >= m->lim.max_stream_buffer &&
		    s->buffered - c->len < m->lim.max_stream_buffer)
			m->nfull--;
		s->buffered -= c->len;
		m->buffered -= c->len;
		free(c);
	}
	if (s != NULL && s->head == NULL && s->fin_rcvd && !s->fin_told) {
		s->fin_told = 1;
		if (m->cbs.on_fin != NULL)
			m->cbs.on_fin(m->ud, sid);
	}
}

void
smux_resume(struct smux *m, uint32_t sid)
{
	uint32_t *ids;
	size_t i, n = 0;
	struct stream *s;

	if (m->dead)
		return;
	if (sid != 0) {
		resume_one(m, sid);
		return;
	}
	if (m->nstreams == 0)
		return;
	/* Callbacks may close streams: walk a copy of the ids. */
	if ((ids = calloc(m->nstreams, sizeof(*ids))) == NULL)
		return;
	for (i = 0; i < SMUX_BUCKETS; i++)
		for (s = m->tab[i]; s != NULL; s = s->next)
			if (s->head != NULL ||
			    (s->fin_rcvd && !s->fin_told))
				ids[n++] = s->sid;
	for (i = 0; i < n && !m->dead; i++)
		resume_one(m, ids[i]);
	free(ids);
}

int
smux_nop(struct smux *m)
{
	int rc;

	if (m->dead)
		return PH_ERR_STATE;
	/* A ping behind a full queue proves nothing: skip it, which also
	 * bounds the queue. */
	if (m->out.len >= m->lim.max_out_bytes)
		return 0;
	if ((rc = queue_frame(m, SMUX_NOP, 0, NULL, 0)) != 0)
		return rc;
	return smux_flush(m);
}

void
smux_set_keepalive(struct smux *m, uint64_t interval_ms, uint64_t timeout_ms)
{
	m->ka_interval = interval_ms;
	m->ka_timeout = timeout_ms < interval_ms ? interval_ms : timeout_ms;
	m->ka_started = 0;
}

int
smux_tick(struct smux *m, uint64_t now_ms)
{
	if (m->dead)
		return PH_ERR_STATE;
	if (m->ka_interval == 0)
		return 0;
	if (!m->ka_started) {
		m->ka_started = 1;
		m->last_rx = m->last_nop = now_ms;
		m->rx_active = 0;
	}
	/* Input we hold back is not the peer's silence. */
	if (m->rx_active || !smux_can_input(m)) {
		m->rx_active = 0;
		m->last_rx = now_ms;
	} else if (now_ms - m->last_rx >= m->ka_timeout)
		return PH_ERR_EXPIRED;
	if (now_ms - m->last_nop >= m->ka_interval) {
		m->last_nop = now_ms;
		/* A queue that has not drained needs no ping on top. */
		if (m->out.len == 0)
			return smux_nop(m);
	}
	return 0;
}

size_t
smux_out_pending(const struct smux *m)
{
	return m->out.len;
}

size_t
smux_buffered(const struct smux *m, uint32_t sid)
{
	const struct stream *s;

	if (sid == 0)
		return m->buffered;
	return (s = lookup(m, sid)) != NULL ? s->buffered : 0;
}

size_t
smux_streams(const struct smux *m)
{
	return m->nstreams;
}

int
smux_is_open(const struct smux *m, uint32_t sid)
{
	return lookup(m, sid) != NULL;
}

uint64_t
smux_dropped(const struct smux *m)
{
	return m->dropped;
}
