/* channel: one end of the reliability layer of spec section 4.
 *
 * Sequence numbers are dense, so both buffers are rings indexed by
 * seq - base: the outgoing ring's base is the oldest unacknowledged
 * message, the incoming ring's base is the next expected message. Lookup,
 * insert and removal are O(1). Outgoing messages also sit on one of two
 * lists: those written, ordered by the time they were last written (which
 * makes the retransmission timer O(messages resent) instead of a scan of
 * the window), and those waiting for the transport, in sequence order.
 *
 * Writes are paced by the transport (cbs.writable): a message is written
 * when the transport takes it, else it waits on the second list, and so
 * does the whole window after a reconnect. A window of many megabytes
 * thus never lands in a socket's queue at once.
 *
 * Unlike the official endpoints, nothing unacknowledged is ever evicted
 * (a full window pushes back on the caller instead), every expired message
 * is resent rather than only the oldest, and a resend restarts the
 * message's timer.
 *
 * Callbacks may call back into the channel (channel_send from deliver is
 * the common case); channel_free from a callback is deferred until the
 * outermost entry point returns.
 *
 * With a session key set (spec 6.3), payloads are sealed once when sent,
 * so the buffered frame is what every retransmission writes. The peer's
 * are opened on arrival when they go into the out-of-order buffer (so a
 * forged or mis-keyed one is not acknowledged), otherwise just before
 * deliver into one reused buffer. */
#include "common/channel.h"
#include "common/err.h"
#include "common/log.h"
#include "common/sessioncrypt.h"
#include "common/uuid.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

/* spec 10.4 [R]: 64 KiB of data; frames carry up to SESSIONCRYPT_OVERHEAD
 * more when sealed (spec 6.3). */
#define CH_MAX_PAYLOAD ((size_t)64 << 10)
/* spec 4.4 gives 10 000 (client) and 100 000 (agent) messages; porthole
 * uses 10 000 for both ends: it never evicts, and 10 000 messages in
 * flight is far beyond what one RTT needs. */
#define CH_MAX_UNACKED 10000
/* The window in bytes is the memory a stalled or absent peer pins, and
 * what a reconnect resends. 4 MiB is twice OpenSSH's session window: at
 * 100 ms of round trip it still allows 40 MB/s, more than a session
 * carries (docs/decisions.md); counted in messages alone the window
 * was 10 000 frames of up to 16 KiB, 160 MiB. */
#define CH_MAX_UNACKED_BYTES ((size_t)4 << 20)
/* spec 4.3: incoming buffer capacity. */
#define CH_CLIENT_MAX_OOO 10000
#define CH_AGENT_MAX_OOO 100000
/* Bytes a peer may park in the out-of-order buffer; past it frames are
 * dropped unacknowledged and come back later. */
#define CH_OOO_MAX_BYTES ((size_t)32 << 20)
/* Retransmissions per tick beyond the oldest message: drains a backlog
 * after a loss quickly without flooding the socket in one go. */
#define CH_RESEND_BURST 64
/* spec 3.7 [R]: the agent only counts a client's wrong digests, it
 * never refuses them, so it hashes every payload up to CH_DIGEST_SMALL
 * (keystrokes, sizes, acknowledgements: what quirky clients send) but
 * only the first CH_DIGEST_LARGE larger ones of a channel. Hashing every
 * byte of a bulk upload through a port session was a third of the
 * agent's CPU; a client that writes wrong digests does so from its first
 * message. */
#define CH_DIGEST_SMALL ((size_t)4 << 10)
#define CH_DIGEST_LARGE 64
/* Room for an acknowledge frame: 120 bytes of header and the JSON. */
#define CH_ACK_FRAME_MAX 512

/* spec 4.4: RFC 6298 estimator, in milliseconds. */
#define CH_RTO_INIT 200.0
#define CH_SRTT_INIT 100.0
#define CH_RTTVAR_INIT 0.0
#define CH_ALPHA 0.125
#define CH_BETA 0.25
#define CH_CLOCK_G 10.0
#define CH_RTO_MAX 1000.0

/* One unacknowledged stream message, kept as the exact bytes written. */
struct ch_out {
	uint8_t *frame;
	size_t len;
	int64_t seq;
	uint64_t sent_ms;       /* last write */
	uint32_t sends;         /* writes, the first one included */
	unsigned busy : 1;      /* inside send_frame */
	unsigned acked : 1;     /* acknowledged while busy: free after */
	unsigned unsent : 1;    /* on the unsent list, else the timer list */
	struct ch_out *prev, *next;
};

struct ch_list {
	struct ch_out *head, *tail;
};

/* One message received ahead of a gap (already acknowledged). */
struct ch_in {
	uint32_t payload_type;
	unsigned opened : 1;    /* data is plaintext already */
	size_t len;
	uint8_t data[];
};

struct ch_ring {
	void **slot;
	size_t cap;     /* 0 or a power of two */
	size_t head;    /* slot of base */
	int64_t base;
};

struct channel {
	enum channel_role role;
	struct channel_cbs cbs;
	void *ud;
	struct channel_limits lim;
	size_t wire_max;        /* max_payload + the sealing overhead */
	const char *send_type;  /* our stream's MessageType */
	const char *recv_type;  /* the peer's */

	int64_t next_seq;
	struct ch_ring out;     /* base: oldest unacknowledged */
	size_t unacked;
	size_t unacked_bytes;   /* frame bytes of those */
	struct ch_list tq;      /* written, least recently written first */
	struct ch_list uq;      /* waiting for the transport, by seq */
	size_t unsent;          /* on uq */

	struct ch_ring in;      /* base: expected sequence number */
	size_t ooo_count;
	size_t ooo_bytes;
	int delivering;

	double srtt, rttvar, rto;
	uint64_t resends;

	struct sessioncrypt *crypto;    /* borrowed; NULL: plaintext */
	struct buf sealed;      /* channel_send's ciphertext, reused */
	struct buf opened;      /* the plaintext being delivered, reused */
	uint64_t open_failures;
	/* spec 3.7 [R]: faults tolerated in the peer's frames (agent). */
	uint64_t digest_mismatches;
	uint64_t length_mismatches;
	unsigned rx_quirks;     /* CLIENTMSG_QUIRK_* seen so far */
	unsigned large_hashed;  /* payloads over CH_DIGEST_SMALL checked */

	uint64_t (*clock)(void *);
	void *clock_arg;

	int depth;              /* entry points on the stack */
	int dead;               /* channel_free was called inside one */
};

uint64_t
channel_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t
ch_default_clock(void *arg)
{
	(void)arg;
	return channel_now_ms();
}

static uint64_t
ch_now(const struct channel *ch)
{
	return ch->clock(ch->clock_arg);
}

/* --- rings ------------------------------------------------------------ */

static void *
ring_get(const struct ch_ring *r, int64_t seq)
{
	uint64_t off;

	if (seq < r->base)
		return NULL;
	off = (uint64_t)seq - (uint64_t)r->base;
	if (off >= r->cap)
		return NULL;
	return r->slot[(r->head + off) & (r->cap - 1)];
}

/* Store p at seq (>= base); the caller bounds seq - base. */
static int
ring_put(struct ch_ring *r, int64_t seq, void *p)
{
	uint64_t off = (uint64_t)seq - (uint64_t)r->base;
	size_t nc, i;
	void **ns;

	if (off >= r->cap) {
		nc = r->cap ? r->cap : 16;
		while (nc <= off) {
			if (nc > SIZE_MAX / 2 / sizeof(void *))
				return PH_ERR_NOMEM;
			nc *= 2;
		}
		ns = calloc(nc, sizeof(void *));
		if (ns == NULL)
			return PH_ERR_NOMEM;
		for (i = 0; i < r->cap; i++)
			ns[i] = r->slot[(r->head + i) & (r->cap - 1)];
		free(r->slot);
		r->slot = ns;
		r->cap = nc;
		r->head = 0;
	}
	r->slot[(r->head + off) & (r->cap - 1)] = p;
	return 0;
}

static void *
ring_take(struct ch_ring *r, int64_t seq)
{
	void *p = ring_get(r, seq);

	if (p != NULL)
		r->slot[(r->head + ((uint64_t)seq - (uint64_t)r->base)) &
		    (r->cap - 1)] = NULL;
	return p;
}

/* base++ (its slot is empty). */
static void
ring_advance(struct ch_ring *r)
{
	if (r->cap > 0) {
		r->slot[r->head] = NULL;
		r->head = (r->head + 1) & (r->cap - 1);
	}
	r->base++;
}

/* --- outgoing --------------------------------------------------------- */

static void
list_unlink(struct ch_list *l, struct ch_out *o)
{
	if (o->prev)
		o->prev->next = o->next;
	else
		l->head = o->next;
	if (o->next)
		o->next->prev = o->prev;
	else
		l->tail = o->prev;
	o->prev = o->next = NULL;
}

static void
list_append(struct ch_list *l, struct ch_out *o)
{
	o->next = NULL;
	o->prev = l->tail;
	if (l->tail)
		l->tail->next = o;
	else
		l->head = o;
	l->tail = o;
}

/* Take o off whichever list holds it. */
static void
out_unlink(struct channel *ch, struct ch_out *o)
{
	if (o->unsent) {
		list_unlink(&ch->uq, o);
		o->unsent = 0;
		ch->unsent--;
	} else {
		list_unlink(&ch->tq, o);
	}
}

/* To the end of the unsent list. */
static void
out_defer(struct channel *ch, struct ch_out *o)
{
	out_unlink(ch, o);
	o->unsent = 1;
	ch->unsent++;
	list_append(&ch->uq, o);
}

static int
ch_writable(struct channel *ch)
{
	return ch->cbs.writable == NULL || ch->cbs.writable(ch->ud);
}

static void
out_free(struct ch_out *o)
{
	free(o->frame);
	free(o);
}

/* The one place stream frames are written (first send and resends). */
static int
ch_write(struct channel *ch, struct ch_out *o)
{
	int rc;

	o->sent_ms = ch_now(ch);
	o->sends++;
	out_unlink(ch, o);
	list_append(&ch->tq, o);
	o->busy = 1;
	rc = ch->cbs.send_frame(ch->ud, o->frame, o->len);
	o->busy = 0;
	if (o->acked) {
		/* Acknowledged from inside send_frame. */
		out_free(o);
	} else if (rc != 0) {
		log_debug("event=channel_write_failed seq=%lld",
		    (long long)o->seq);
	}
	return rc != 0 ? PH_ERR_IO : 0;
}

static int
ch_resend(struct channel *ch, struct ch_out *o)
{
	ch->resends++;
	log_debug("event=channel_resend seq=%lld sends=%u",
	    (long long)o->seq, (unsigned)o->sends);
	return ch_write(ch, o);
}

/* Write waiting messages, oldest first, while the transport takes them.
 * Non-zero when a write failed (the transport is down). */
static int
ch_flush_unsent(struct channel *ch)
{
	struct ch_out *o;

	while (!ch->dead && (o = ch->uq.head) != NULL && ch_writable(ch)) {
		if (o->sends > 0 ? ch_resend(ch, o) : ch_write(ch, o))
			return PH_ERR_IO;
	}
	return 0;
}

static int
ch_expired(const struct channel *ch, const struct ch_out *o, uint64_t now)
{
	/* The caller's clock may lag ours a little (uv_now is cached). */
	return now > o->sent_ms && (double)(now - o->sent_ms) > ch->rto;
}

/* spec 4.4: RFC 6298 update from one sample, capped at 1 s. */
static void
ch_rtt_sample(struct channel *ch, double sample)
{
	double d = ch->srtt - sample, v;

	if (d < 0)
		d = -d;
	ch->rttvar = (1 - CH_BETA) * ch->rttvar + CH_BETA * d;
	ch->srtt = (1 - CH_ALPHA) * ch->srtt + CH_ALPHA * sample;
	v = 4 * ch->rttvar;
	ch->rto = ch->srtt + (v > CH_CLOCK_G ? v : CH_CLOCK_G);
	if (ch->rto > CH_RTO_MAX)
		ch->rto = CH_RTO_MAX;
}

/* spec 4.2: selective; MessageId and type are not compared. */
static void
ch_on_ack(struct channel *ch, const struct clientmsg *m)
{
	json_error_t jerr;
	json_int_t seq;
	struct ch_out *o;
	uint64_t now;
	json_t *j;

	j = json_loadb((const char *)m->payload, m->payload_len, 0, &jerr);
	if (j == NULL || json_unpack_ex(j, &jerr, 0, "{s:I}",
	    "AcknowledgedMessageSequenceNumber", &seq) != 0) {
		/* Position only: the text may quote the peer's bytes. */
		log_warn("event=channel_bad_ack bytes=%zu at=%d",
		    m->payload_len, jerr.position);
		json_decref(j);
		return;
	}
	json_decref(j);
	o = ring_take(&ch->out, (int64_t)seq);
	if (o == NULL) {
		log_debug("event=channel_stale_ack seq=%lld", (long long)seq);
		return;
	}
	out_unlink(ch, o);
	ch->unacked--;
	ch->unacked_bytes -= o->len;
	/* Karn: a resent message's ack cannot tell which copy it answers. */
	now = ch_now(ch);
	if (o->sends == 1 && now >= o->sent_ms)
		ch_rtt_sample(ch, (double)(now - o->sent_ms));
	while (ch->out.base < ch->next_seq &&
	    ring_get(&ch->out, ch->out.base) == NULL)
		ring_advance(&ch->out);
	if (o->busy)
		o->acked = 1;
	else
		out_free(o);
}

/* --- session encryption ---------------------------------------------- */

/* spec 6.3: the payload types that travel sealed, by sender. Handshake,
 * challenge, Size and Flag payloads stay plaintext. */
static int
ch_sealed_type(enum channel_role sender, uint32_t payload_type)
{
	if (sender == CHANNEL_CLIENT)
		return payload_type == PT_OUTPUT;
	return payload_type == PT_OUTPUT || payload_type == PT_STDERR ||
	    payload_type == PT_EXIT_CODE;
}

/* A payload of the peer's that must be opened before the session sees it. */
static int
ch_must_open(const struct channel *ch, uint32_t payload_type)
{
	return ch->crypto != NULL && ch_sealed_type(ch->role ==
	    CHANNEL_CLIENT ? CHANNEL_AGENT : CHANNEL_CLIENT, payload_type);
}

static void
ch_open_failed(struct channel *ch, int64_t seq, uint32_t payload_type,
    size_t n, int err)
{
	ch->open_failures++;
	/* A wrong key fails every retransmission again: warn on the 1st,
	 * 2nd, 4th, 8th ... failure, the rest at debug level. */
	log_msg((ch->open_failures & (ch->open_failures - 1)) == 0 ?
	    LOG_WARN : LOG_DEBUG, "event=channel_open_failed seq=%lld "
	    "payload_type=%u bytes=%zu failures=%llu err=\"%s\"",
	    (long long)seq, (unsigned)payload_type, n,
	    (unsigned long long)ch->open_failures, ph_strerror(err));
}

/* Point *p, *n at the plaintext of a payload about to be delivered:
 * itself, or its opening in ch->opened (used by one delivery at a time,
 * which ch->delivering guarantees). */
static int
ch_open_for_delivery(struct channel *ch, int64_t seq, uint32_t payload_type,
    const uint8_t **p, size_t *n)
{
	int rc;

	if (!ch_must_open(ch, payload_type))
		return 0;
	buf_reset(&ch->opened);
	rc = sessioncrypt_open(ch->crypto, *p, *n, &ch->opened);
	if (rc != 0) {
		ch_open_failed(ch, seq, payload_type, *n, rc);
		return rc;
	}
	*p = ch->opened.data;
	*n = ch->opened.len;
	return 0;
}

/* --- incoming --------------------------------------------------------- */

/* The one place stream payloads reach the session. */
static int
ch_deliver(struct channel *ch, uint32_t payload_type, const uint8_t *p,
    size_t n)
{
	int rc;

	ch->delivering = 1;
	rc = ch->cbs.deliver(ch->ud, payload_type, p, n);
	ch->delivering = 0;
	return rc;
}

/* spec 4.2: seq 0, flags SYN|FIN, PayloadType 0, a fresh MessageId. */
static void
ch_ack(struct channel *ch, const struct clientmsg *m)
{
	char mid[UUID_STR_LEN];
	uint8_t id[16];
	char *js = NULL;
	json_t *j;
	struct buf b;
	int rc;

	buf_init(&b, CH_ACK_FRAME_MAX);
	uuid_format(m->message_id, mid);
	j = json_pack("{s:s,s:s,s:I,s:b}",
	    "AcknowledgedMessageType", m->type,
	    "AcknowledgedMessageId", mid,
	    "AcknowledgedMessageSequenceNumber", (json_int_t)m->seq,
	    "IsSequentialMessage", 1);
	if (j == NULL ||
	    (js = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	uuid_v4(id);
	rc = clientmsg_encode(&b, MT_ACKNOWLEDGE, 0,
	    CLIENTMSG_FLAG_SYN | CLIENTMSG_FLAG_FIN, id, PT_NONE, js,
	    strlen(js));
	if (rc != 0)
		goto fail;
	/* A lost ack costs one retransmission, which is re-acked. */
	if (ch->cbs.send_frame(ch->ud, b.data, b.len) != 0)
		rc = PH_ERR_IO;
fail:
	if (rc != 0)
		log_debug("event=channel_ack_failed seq=%lld err=\"%s\"",
		    (long long)m->seq, ph_strerror(rc));
	free(js);
	json_decref(j);
	buf_free(&b);
}

static void
in_free_at_base(struct channel *ch)
{
	struct ch_in *e = ring_take(&ch->in, ch->in.base);

	if (e != NULL) {
		ch->ooo_count--;
		ch->ooo_bytes -= e->len;
		free(e);
	}
}

/* Hand on buffered messages that are now in order. They were acked when
 * they arrived; one the session refuses stays for the next tick. */
static void
ch_drain(struct channel *ch)
{
	const uint8_t *p;
	struct ch_in *e;
	size_t n;
	int rc;

	while (!ch->dead && !ch->delivering) {
		e = ring_get(&ch->in, ch->in.base);
		if (e == NULL)
			break;
		p = e->data;
		n = e->len;
		if (!e->opened && ch_open_for_delivery(ch, ch->in.base,
		    e->payload_type, &p, &n) != 0) {
			/* Buffered before the key was set, so acknowledged
			 * already: keeping it would only fail again. */
			in_free_at_base(ch);
			break;
		}
		rc = ch_deliver(ch, e->payload_type, p, n);
		if (ch->dead)
			break;
		if (rc != 0) {
			if (rc != PH_ERR_AGAIN)
				log_warn("event=channel_deliver_failed "
				    "seq=%lld err=\"%s\"",
				    (long long)ch->in.base, ph_strerror(rc));
			break;
		}
		in_free_at_base(ch);
		ring_advance(&ch->in);
	}
}

/* spec 4.3 */
static void
ch_on_stream(struct channel *ch, const struct clientmsg *m)
{
	const uint8_t *p;
	struct ch_in *e;
	uint64_t off;
	size_t n;
	int rc, seal;

	if (m->seq < ch->in.base) {
		/* spec 4.3 [R]: both roles re-ack duplicates. */
		log_debug("event=channel_duplicate seq=%lld",
		    (long long)m->seq);
		ch_ack(ch, m);
		return;
	}
	if (m->seq == ch->in.base) {
		/* Arriving while this very sequence number is being handed
		 * on (a callback fed us a frame): the resend will do. */
		if (ch->delivering)
			return;
		p = m->payload;
		n = m->payload_len;
		/* Not acknowledged (an authentic copy may follow), and not
		 * in place of an authentic one buffered earlier. */
		if (ch_open_for_delivery(ch, m->seq, m->payload_type, &p,
		    &n) != 0)
			return;
		/* A fresh copy replaces one buffered earlier. */
		in_free_at_base(ch);
		rc = ch_deliver(ch, m->payload_type, p, n);
		if (ch->dead)
			return;
		if (rc != 0) {
			if (rc != PH_ERR_AGAIN)
				log_warn("event=channel_deliver_failed "
				    "seq=%lld err=\"%s\"", (long long)m->seq,
				    ph_strerror(rc));
			/* No ack: the peer resends until we take it. */
			return;
		}
		ch_ack(ch, m);
		ring_advance(&ch->in);
		ch_drain(ch);
		return;
	}
	if (ring_get(&ch->in, m->seq) != NULL) {
		ch_ack(ch, m);
		return;
	}
	off = (uint64_t)m->seq - (uint64_t)ch->in.base;
	if (off > ch->lim.max_out_of_order ||
	    m->payload_len > CH_OOO_MAX_BYTES - ch->ooo_bytes) {
		log_debug("event=channel_ooo_full seq=%lld expected=%lld",
		    (long long)m->seq, (long long)ch->in.base);
		return;
	}
	/* Opened now, straight into the buffer, so that one that does not
	 * authenticate is not acknowledged. */
	seal = ch_must_open(ch, m->payload_type);
	if (seal && m->payload_len < SESSIONCRYPT_OVERHEAD) {
		ch_open_failed(ch, m->seq, m->payload_type, m->payload_len,
		    PH_ERR_SHORT);
		return;
	}
	n = seal ? m->payload_len - SESSIONCRYPT_OVERHEAD : m->payload_len;
	e = malloc(sizeof(*e) + n);
	if (e == NULL)
		return;
	e->payload_type = m->payload_type;
	e->opened = seal;
	e->len = n;
	if (!seal) {
		memcpy(e->data, m->payload, n);
	} else if ((rc = sessioncrypt_open_to(ch->crypto, m->payload,
	    m->payload_len, e->data)) != 0) {
		ch_open_failed(ch, m->seq, m->payload_type, m->payload_len,
		    rc);
		free(e);
		return;
	}
	if (ring_put(&ch->in, m->seq, e) != 0) {
		free(e);
		return;
	}
	ch->ooo_count++;
	ch->ooo_bytes += e->len;
	ch_ack(ch, m);
}

/* --- lifetime --------------------------------------------------------- */

static void
ch_destroy(struct channel *ch)
{
	struct ch_out *o, *next;
	size_t i;

	for (o = ch->tq.head; o != NULL; o = next) {
		next = o->next;
		out_free(o);
	}
	for (o = ch->uq.head; o != NULL; o = next) {
		next = o->next;
		out_free(o);
	}
	for (i = 0; i < ch->in.cap; i++)
		free(ch->in.slot[i]);
	free(ch->in.slot);
	free(ch->out.slot);
	buf_free(&ch->sealed);
	if (ch->opened.data != NULL)
		OPENSSL_cleanse(ch->opened.data, ch->opened.cap);
	buf_free(&ch->opened);
	free(ch);
}

static void
ch_enter(struct channel *ch)
{
	ch->depth++;
}

static void
ch_leave(struct channel *ch)
{
	if (--ch->depth == 0 && ch->dead)
		ch_destroy(ch);
}

int
channel_new(struct channel **out, enum channel_role role,
    const struct channel_cbs *cbs, void *ud,
    const struct channel_limits *limits)
{
	struct channel *ch;

	*out = NULL;
	if (cbs == NULL || cbs->send_frame == NULL || cbs->deliver == NULL ||
	    (role != CHANNEL_CLIENT && role != CHANNEL_AGENT))
		return PH_ERR_INVALID;
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return PH_ERR_NOMEM;
	ch->role = role;
	ch->cbs = *cbs;
	ch->ud = ud;
	if (limits != NULL)
		ch->lim = *limits;
	if (ch->lim.max_payload == 0)
		ch->lim.max_payload = CH_MAX_PAYLOAD;
	if (ch->lim.max_payload > SIZE_MAX / 2)
		ch->lim.max_payload = SIZE_MAX / 2;
	/* Room for a sealed payload whether or not a key is set yet: the
	 * peer may start sealing a moment before we do. */
	ch->wire_max = ch->lim.max_payload + SESSIONCRYPT_OVERHEAD;
	buf_init(&ch->sealed, ch->wire_max);
	buf_init(&ch->opened, ch->wire_max);
	if (ch->lim.max_unacked == 0)
		ch->lim.max_unacked = CH_MAX_UNACKED;
	if (ch->lim.max_unacked_bytes == 0)
		ch->lim.max_unacked_bytes = CH_MAX_UNACKED_BYTES;
	if (ch->lim.max_out_of_order == 0)
		ch->lim.max_out_of_order = role == CHANNEL_CLIENT ?
		    CH_CLIENT_MAX_OOO : CH_AGENT_MAX_OOO;
	/* spec 3.3 */
	ch->send_type = role == CHANNEL_CLIENT ? MT_INPUT_STREAM :
	    MT_OUTPUT_STREAM;
	ch->recv_type = role == CHANNEL_CLIENT ? MT_OUTPUT_STREAM :
	    MT_INPUT_STREAM;
	ch->srtt = CH_SRTT_INIT;
	ch->rttvar = CH_RTTVAR_INIT;
	ch->rto = CH_RTO_INIT;
	ch->clock = ch_default_clock;
	*out = ch;
	return 0;
}

void
channel_free(struct channel *ch)
{
	if (ch == NULL)
		return;
	if (ch->depth > 0) {
		ch->dead = 1;
		return;
	}
	ch_destroy(ch);
}

void
channel_set_crypto(struct channel *ch, struct sessioncrypt *sc)
{
	enum sessioncrypt_role want = ch->role == CHANNEL_CLIENT ?
	    SESSIONCRYPT_CLIENT : SESSIONCRYPT_AGENT;

	/* Kept anyway: the wrong halves of the key leak nothing, they only
	 * make every payload fail at the other end. */
	if (sc != NULL && sessioncrypt_role(sc) != want)
		log_error("event=channel_crypto_role_mismatch");
	log_debug("event=channel_crypto on=%d", sc != NULL);
	ch->crypto = sc;
}

uint64_t
channel_crypto_failures(const struct channel *ch)
{
	return ch->open_failures;
}

uint64_t
channel_digest_mismatches(const struct channel *ch)
{
	return ch->digest_mismatches;
}

uint64_t
channel_length_mismatches(const struct channel *ch)
{
	return ch->length_mismatches;
}

unsigned
channel_rx_quirks(const struct channel *ch)
{
	return ch->rx_quirks;
}

void
channel_set_clock(struct channel *ch, uint64_t (*now_ms)(void *), void *arg)
{
	ch->clock = now_ms ? now_ms : ch_default_clock;
	ch->clock_arg = arg;
}

/* --- entry points ----------------------------------------------------- */

int
channel_send(struct channel *ch, uint32_t payload_type, const void *p,
    size_t n)
{
	struct ch_out *o = NULL;
	const void *payload = p;
	size_t plen = n;
	uint64_t flags;
	uint8_t id[16];
	struct buf b;
	int rc;

	if (ch->dead)
		return PH_ERR_STATE;
	/* spec 3.6: empty stream messages are never sent. */
	if (n == 0)
		return 0;
	if (n > ch->lim.max_payload)
		return PH_ERR_TOOBIG;
	if (!channel_can_send(ch))
		return PH_ERR_AGAIN;
	/* spec 6.3: sealed once, here; retransmissions reuse the frame.
	 * Sealing calls nothing back. */
	if (ch->crypto != NULL && ch_sealed_type(ch->role, payload_type)) {
		buf_reset(&ch->sealed);
		if ((rc = sessioncrypt_seal(ch->crypto, p, n,
		    &ch->sealed)) != 0) {
			log_warn("event=channel_seal_failed err=\"%s\"",
			    ph_strerror(rc));
			return rc;
		}
		payload = ch->sealed.data;
		plen = ch->sealed.len;
	}
	ch_enter(ch);
	/* Exactly the frame's size: the buffer becomes the stored frame. */
	buf_init(&b, CLIENTMSG_PAYLOAD_OFFSET + plen);
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	/* spec 3.6: the agent's first message carries SYN; flags are 0
	 * otherwise. */
	flags = ch->role == CHANNEL_AGENT && ch->next_seq == 0 ?
	    CLIENTMSG_FLAG_SYN : 0;
	uuid_v4(id);
	rc = clientmsg_encode(&b, ch->send_type, ch->next_seq, flags, id,
	    payload_type, payload, plen);
	if (rc != 0)
		goto fail;
	if ((rc = ring_put(&ch->out, ch->next_seq, o)) != 0)
		goto fail;
	o->frame = buf_steal(&b, &o->len); /* transferred */
	o->seq = ch->next_seq++;
	o->sent_ms = ch_now(ch);
	ch->unacked++;
	ch->unacked_bytes += o->len;
	/* Behind whatever waits, so the stream stays in order; written
	 * now if the transport takes it. A failed write leaves the frame
	 * buffered for the timer. */
	o->unsent = 1;
	ch->unsent++;
	list_append(&ch->uq, o);
	o = NULL; /* owned by the ring */
	ch_flush_unsent(ch);
fail:
	free(o);
	buf_free(&b);
	ch_leave(ch);
	return rc;
}

int
channel_send_control(struct channel *ch, const char *type,
    const void *payload, size_t n)
{
	uint8_t id[16];
	struct buf b;
	int rc;

	if (ch->dead)
		return PH_ERR_STATE;
	if (n > ch->lim.max_payload)
		return PH_ERR_TOOBIG;
	ch_enter(ch);
	buf_init(&b, CLIENTMSG_PAYLOAD_OFFSET + n);
	uuid_v4(id);
	/* spec 3.6: seq 0, flags SYN|FIN, PayloadType 0. */
	rc = clientmsg_encode(&b, type, 0,
	    CLIENTMSG_FLAG_SYN | CLIENTMSG_FLAG_FIN, id, PT_NONE, payload, n);
	if (rc == 0 && ch->cbs.send_frame(ch->ud, b.data, b.len) != 0)
		rc = PH_ERR_IO;
	buf_free(&b);
	ch_leave(ch);
	return rc;
}

int
channel_can_send(const struct channel *ch)
{
	/* The window counts from the oldest unacknowledged message, so the
	 * ring never spans more than max_unacked slots. */
	return !ch->dead && (uint64_t)(ch->next_seq - ch->out.base) <
	    ch->lim.max_unacked &&
	    ch->unacked_bytes < ch->lim.max_unacked_bytes;
}

void
channel_flush(struct channel *ch)
{
	if (ch->dead)
		return;
	ch_enter(ch);
	ch_flush_unsent(ch);
	ch_leave(ch);
}

int
channel_receive(struct channel *ch, const uint8_t *frame, size_t n)
{
	struct clientmsg m;
	int rc;

	if (ch->dead)
		return PH_ERR_STATE;
	/* spec 3.7 [R]: the agent takes from clients what AWS's agent
	 * takes (no digest check, the payload runs to the end of the
	 * message); the client stays strict with agents. */
	if (ch->role != CHANNEL_AGENT)
		rc = clientmsg_decode(&m, frame, n, ch->wire_max);
	else if (n <= CLIENTMSG_PAYLOAD_OFFSET + CH_DIGEST_SMALL)
		rc = clientmsg_decode_lenient(&m, frame, n, ch->wire_max);
	else if (ch->large_hashed < CH_DIGEST_LARGE) {
		rc = clientmsg_decode_lenient(&m, frame, n, ch->wire_max);
		ch->large_hashed++;
	} else
		rc = clientmsg_peek(&m, frame, n, ch->wire_max);
	if (rc == 0 && m.quirks != 0) {
		ch->rx_quirks |= m.quirks;
		if (m.quirks & CLIENTMSG_QUIRK_DIGEST)
			ch->digest_mismatches++;
		if (m.quirks & CLIENTMSG_QUIRK_LENGTH)
			ch->length_mismatches++;
	}
	if (rc != 0) {
		log_debug("event=channel_bad_frame bytes=%zu err=\"%s\"", n,
		    ph_strerror(rc));
		return rc;
	}
	ch_enter(ch);
	if (strcmp(m.type, ch->recv_type) == 0) {
		ch_on_stream(ch, &m);
	} else if (strcmp(m.type, MT_ACKNOWLEDGE) == 0) {
		ch_on_ack(ch, &m);
	} else if (strcmp(m.type, ch->send_type) == 0) {
		log_debug("event=channel_own_type_ignored type=%s", m.type);
	} else if (ch->cbs.on_control != NULL) {
		ch->cbs.on_control(ch->ud, &m);
	} else {
		log_debug("event=channel_control_ignored type=%s", m.type);
	}
	ch_leave(ch);
	return 0;
}

void
channel_tick(struct channel *ch, uint64_t now_ms)
{
	struct ch_out *o;
	int burst = 0;

	if (ch->dead)
		return;
	ch_enter(ch);
	/* A buffered message the session refused before may fit now. */
	ch_drain(ch);
	/* What waits for the transport goes before any resend. */
	if (!ch->dead && ch_flush_unsent(ch) != 0)
		goto out;
	/* spec 4.4: the oldest unacknowledged message first. */
	o = ring_get(&ch->out, ch->out.base);
	if (!ch->dead && o != NULL && !o->unsent &&
	    ch_expired(ch, o, now_ms) && ch_writable(ch)) {
		if (ch_resend(ch, o) != 0)
			goto out;
	}
	/* Then others whose timer ran out, least recently sent first. */
	while (!ch->dead && burst < CH_RESEND_BURST &&
	    (o = ch->tq.head) != NULL && ch_expired(ch, o, now_ms) &&
	    ch_writable(ch)) {
		burst++;
		if (ch_resend(ch, o) != 0)
			break;
	}
out:
	ch_leave(ch);
}

void
channel_resend_all(struct channel *ch)
{
	struct ch_out *o;
	int64_t seq;

	if (ch->dead)
		return;
	ch_enter(ch);
	/* Everything unacknowledged onto the unsent list, in order; the
	 * transport's pace decides how much goes now. */
	for (seq = ch->out.base; seq < ch->next_seq; seq++) {
		o = ring_get(&ch->out, seq);
		if (o != NULL && !o->busy)
			out_defer(ch, o);
	}
	ch_flush_unsent(ch);
	ch_leave(ch);
}

size_t
channel_unacked(const struct channel *ch)
{
	return ch->unacked;
}

size_t
channel_unacked_bytes(const struct channel *ch)
{
	return ch->unacked_bytes;
}

size_t
channel_unsent(const struct channel *ch)
{
	return ch->unsent;
}

int64_t
channel_next_send_seq(const struct channel *ch)
{
	return ch->next_seq;
}

int64_t
channel_expected_seq(const struct channel *ch)
{
	return ch->in.base;
}

unsigned
channel_rto_ms(const struct channel *ch)
{
	return (unsigned)(ch->rto + 0.5);
}

uint64_t
channel_resends(const struct channel *ch)
{
	return ch->resends;
}

unsigned
channel_head_resends(const struct channel *ch)
{
	const struct ch_out *o = ring_get(&ch->out, ch->out.base);

	return o != NULL && o->sends > 0 ? o->sends - 1 : 0;
}

size_t
channel_out_of_order(const struct channel *ch)
{
	return ch->ooo_count;
}
