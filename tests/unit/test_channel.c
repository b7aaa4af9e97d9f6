/* channel: a client and an agent wired back to back through in-memory
 * queues with a controllable network (loss, reordering, duplicates, outage)
 * and a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/buf.h"
#include "common/channel.h"
#include "common/clientmsg.h"
#include "common/err.h"
#include "common/sessioncrypt.h"
#include "common/uuid.h"

struct frame {
	uint8_t *p;
	size_t n;
};

struct fq {
	struct frame *f;
	size_t head, len, cap;
};

/* A payload as delivered, for the tests that record rather than count. */
struct rec {
	uint32_t pt;
	size_t n;
	uint8_t *p;
};

#define REC_MAX 64

/* One end: its channel, the frames it wrote (in flight to the peer) and
 * what was delivered to it. */
struct end {
	struct channel *ch;
	struct end *peer;
	struct fq q;
	int down;               /* send_frame fails */
	unsigned drop_pct;      /* frames lost silently */
	uint64_t sent;          /* frames written */
	uint64_t acks_sent;
	uint64_t next_val;      /* next counter value the deliver expects */
	uint64_t delivered;
	int again;              /* deliver answers PH_ERR_AGAIN this often */
	uint64_t refuse;        /* value + 1 that deliver refuses (AGAIN) */
	int free_on_deliver;
	int echo;               /* deliver answers with channel_send */
	int controls;
	int free_on_control;
	int direct;             /* send_frame hands the frame over at once */
	int paced;              /* writable: up and fewer than qmax queued */
	size_t qmax;
	char last_control[CLIENTMSG_TYPE_LEN + 1];
	struct buf *wire;       /* every frame written, if set */
	int record;             /* deliver keeps payloads in rec */
	struct rec rec[REC_MAX];
	size_t nrec;
	/* Set as the channel's key when a HandshakeComplete is delivered. */
	struct sessioncrypt *key_on_complete;
};

static uint64_t fake_now;
static uint64_t rng_state;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static void
fq_push(struct fq *q, const uint8_t *p, size_t n)
{
	struct frame *nf;
	size_t i;

	if (q->len == q->cap) {
		nf = calloc(q->cap ? q->cap * 2 : 64, sizeof(*nf));
		assert_non_null(nf);
		for (i = 0; i < q->len; i++)
			nf[i] = q->f[(q->head + i) % q->cap];
		free(q->f);
		q->f = nf;
		q->cap = q->cap ? q->cap * 2 : 64;
		q->head = 0;
	}
	nf = &q->f[(q->head + q->len) % q->cap];
	nf->p = malloc(n);
	assert_non_null(nf->p);
	memcpy(nf->p, p, n);
	nf->n = n;
	q->len++;
}

/* Remove entry i (0 = oldest). */
static struct frame
fq_take(struct fq *q, size_t i)
{
	struct frame f, *a, *b;
	size_t k;

	f = q->f[(q->head + i) % q->cap];
	for (k = i; k > 0; k--) {
		a = &q->f[(q->head + k) % q->cap];
		b = &q->f[(q->head + k - 1) % q->cap];
		*a = *b;
	}
	q->head = (q->head + 1) % q->cap;
	q->len--;
	return f;
}

static void
fq_clear(struct fq *q)
{
	while (q->len > 0)
		free(fq_take(q, 0).p);
	free(q->f);
	memset(q, 0, sizeof(*q));
}

static int
is_ack(const uint8_t *p, size_t n)
{
	struct clientmsg m;

	return clientmsg_decode(&m, p, n, 1 << 20) == 0 &&
	    strcmp(m.type, MT_ACKNOWLEDGE) == 0;
}

static int
t_send_frame(void *ud, const uint8_t *p, size_t n)
{
	struct end *e = ud;

	if (e->down)
		return -1;
	e->sent++;
	if (e->wire != NULL)
		assert_int_equal(buf_append(e->wire, p, n), 0);
	if (is_ack(p, n))
		e->acks_sent++;
	if (e->drop_pct > 0 && rng() % 100 < e->drop_pct)
		return 0;
	if (e->direct) {
		/* Acks come back from inside this call, while the frame
		 * being written is still in use. */
		assert_int_equal(channel_receive(e->peer->ch, p, n), 0);
		return 0;
	}
	fq_push(&e->q, p, n);
	return 0;
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static int
t_deliver(void *ud, uint32_t pt, const uint8_t *p, size_t n)
{
	struct end *e = ud;
	uint8_t reply[8];
	struct rec *r;

	if (e->record) {
		assert_true(e->nrec < REC_MAX);
		r = &e->rec[e->nrec++];
		r->pt = pt;
		r->n = n;
		r->p = malloc(n + 1);
		assert_non_null(r->p);
		memcpy(r->p, p, n);
		e->delivered++;
		/* The client learns the key during the handshake. */
		if (pt == PT_HANDSHAKE_COMPLETE && e->key_on_complete != NULL)
			channel_set_crypto(e->ch, e->key_on_complete);
		return 0;
	}
	assert_int_equal(pt, PT_OUTPUT);
	assert_true(n >= 8);
	if (e->again > 0 && rng() % (unsigned)e->again == 0)
		return PH_ERR_AGAIN;
	if (e->refuse != 0 && get_be64(p) + 1 == e->refuse)
		return PH_ERR_AGAIN;
	if (e->free_on_deliver) {
		channel_free(e->ch);
		e->ch = NULL;
		return 0;
	}
	/* Exactly once, in order. */
	assert_int_equal(get_be64(p), e->next_val);
	e->next_val++;
	e->delivered++;
	if (e->echo) {
		put_be64(reply, get_be64(p));
		assert_int_equal(channel_send(e->ch, PT_OUTPUT, reply, 8), 0);
	}
	return 0;
}

static void
t_on_control(void *ud, const struct clientmsg *m)
{
	struct end *e = ud;

	e->controls++;
	snprintf(e->last_control, sizeof(e->last_control), "%s", m->type);
	if (e->free_on_control) {
		channel_free(e->ch);
		e->ch = NULL;
	}
}

/* A socket with a bounded queue: takes frames while fewer than qmax of
 * ours are in flight, and none while down. */
static int
t_writable(void *ud)
{
	struct end *e = ud;

	return !e->paced || (!e->down && e->q.len < e->qmax);
}

static const struct channel_cbs t_cbs = {
	.send_frame = t_send_frame,
	.deliver = t_deliver,
	.on_control = t_on_control,
	.writable = t_writable,
};

static void
pair_new(struct end *c, struct end *a, const struct channel_limits *lim)
{
	memset(c, 0, sizeof(*c));
	memset(a, 0, sizeof(*a));
	c->peer = a;
	a->peer = c;
	fake_now = 1000000;
	if (rng_state == 0)
		rng_state = 1;
	assert_int_equal(channel_new(&c->ch, CHANNEL_CLIENT, &t_cbs, c, lim),
	    0);
	assert_int_equal(channel_new(&a->ch, CHANNEL_AGENT, &t_cbs, a, lim),
	    0);
	channel_set_clock(c->ch, fake_clock, NULL);
	channel_set_clock(a->ch, fake_clock, NULL);
}

static void
rec_clear(struct end *e)
{
	size_t i;

	for (i = 0; i < e->nrec; i++)
		free(e->rec[i].p);
	e->nrec = 0;
}

static void
pair_free(struct end *c, struct end *a)
{
	rec_clear(c);
	rec_clear(a);
	channel_free(c->ch);
	channel_free(a->ch);
	fq_clear(&c->q);
	fq_clear(&a->q);
}

/* Hand every frame in flight to its peer; shuffle picks frames in random
 * order. Bounded: returns the number of frames moved. */
static size_t
pump(struct end *c, struct end *a, int shuffle)
{
	struct end *from;
	struct frame f;
	size_t moved = 0, i;

	while ((c->q.len > 0 || a->q.len > 0) && moved < 10000000) {
		if (c->q.len == 0)
			from = a;
		else if (a->q.len == 0)
			from = c;
		else
			from = rng() & 1 ? a : c;
		i = shuffle ? (size_t)(rng() % from->q.len) : 0;
		f = fq_take(&from->q, i);
		assert_int_equal(channel_receive(from->peer->ch, f.p, f.n), 0);
		free(f.p);
		moved++;
	}
	return moved;
}

static int
send_val(struct end *e, uint64_t v)
{
	uint8_t p[8];

	put_be64(p, v);
	return channel_send(e->ch, PT_OUTPUT, p, sizeof(p));
}

static void
test_in_order_both_ways(void **state)
{
	struct end c, a;
	uint64_t i;

	(void)state;
	pair_new(&c, &a, NULL);
	for (i = 0; i < 10000; i++) {
		assert_int_equal(send_val(&c, i), 0);
		assert_int_equal(send_val(&a, i), 0);
		if (i % 97 == 0)
			pump(&c, &a, 0);
	}
	pump(&c, &a, 0);
	assert_int_equal(c.delivered, 10000);
	assert_int_equal(a.delivered, 10000);
	assert_int_equal(channel_unacked(c.ch), 0);
	assert_int_equal(channel_unacked(a.ch), 0);
	assert_int_equal(channel_next_send_seq(c.ch), 10000);
	assert_int_equal(channel_expected_seq(c.ch), 10000);
	assert_int_equal(channel_expected_seq(a.ch), 10000);
	assert_int_equal(channel_out_of_order(a.ch), 0);
	assert_int_equal(channel_resends(c.ch), 0);
	/* One ack per message. */
	assert_int_equal(c.acks_sent, 10000);
	assert_int_equal(a.acks_sent, 10000);
	pair_free(&c, &a);
}

/* The frames the sender wrote, the wire format of spec 3.6 and 4.2. */
static void
test_frames_and_ack_format(void **state)
{
	struct end c, a;
	struct clientmsg m, d;
	struct frame f;
	char mid[UUID_STR_LEN], want[256];

	(void)state;
	pair_new(&c, &a, NULL);
	assert_int_equal(send_val(&a, 0), 0);
	assert_int_equal(send_val(&a, 1), 0);
	assert_int_equal(send_val(&c, 0), 0);
	/* Agent: SYN on seq 0 only; client: flags 0. */
	assert_int_equal(clientmsg_decode(&m, a.q.f[0].p, a.q.f[0].n, 1 << 16),
	    0);
	assert_string_equal(m.type, MT_OUTPUT_STREAM);
	assert_int_equal(m.seq, 0);
	assert_int_equal(m.flags, CLIENTMSG_FLAG_SYN);
	assert_int_equal(m.payload_type, PT_OUTPUT);
	assert_int_equal(clientmsg_decode(&m, a.q.f[1].p, a.q.f[1].n, 1 << 16),
	    0);
	assert_int_equal(m.seq, 1);
	assert_int_equal(m.flags, 0);
	assert_int_equal(clientmsg_decode(&m, c.q.f[0].p, c.q.f[0].n, 1 << 16),
	    0);
	assert_string_equal(m.type, MT_INPUT_STREAM);
	assert_int_equal(m.seq, 0);
	assert_int_equal(m.flags, 0);
	/* The client acks the agent's seq 0 with exactly this JSON. */
	f = fq_take(&a.q, 0);
	assert_int_equal(clientmsg_decode(&d, f.p, f.n, 1 << 16), 0);
	assert_int_equal(channel_receive(c.ch, f.p, f.n), 0);
	free(f.p);
	assert_int_equal(c.q.len, 2);
	f = c.q.f[(c.q.head + 1) % c.q.cap];
	assert_int_equal(clientmsg_decode(&m, f.p, f.n, 1 << 16), 0);
	assert_string_equal(m.type, MT_ACKNOWLEDGE);
	assert_int_equal(m.seq, 0);
	assert_int_equal(m.flags, 3);
	assert_int_equal(m.payload_type, 0);
	assert_memory_not_equal(m.message_id, d.message_id, 16);
	uuid_format(d.message_id, mid);
	snprintf(want, sizeof(want), "{\"AcknowledgedMessageType\":"
	    "\"output_stream_data\",\"AcknowledgedMessageId\":\"%s\","
	    "\"AcknowledgedMessageSequenceNumber\":0,"
	    "\"IsSequentialMessage\":true}", mid);
	assert_int_equal(m.payload_len, strlen(want));
	assert_memory_equal(m.payload, want, strlen(want));
	/* A control frame: seq 0, flags 3, PayloadType 0, not buffered. */
	fq_clear(&a.q);
	assert_int_equal(channel_send_control(a.ch, MT_AGENT_SESSION_STATE,
	    "{}", 2), 0);
	assert_int_equal(clientmsg_decode(&m, a.q.f[0].p, a.q.f[0].n, 1 << 16),
	    0);
	assert_string_equal(m.type, MT_AGENT_SESSION_STATE);
	assert_int_equal(m.seq, 0);
	assert_int_equal(m.flags, 3);
	assert_int_equal(m.payload_type, 0);
	assert_int_equal(channel_unacked(a.ch), 2);
	/* Empty stream writes send nothing and consume nothing. */
	assert_int_equal(channel_send(a.ch, PT_OUTPUT, "", 0), 0);
	assert_int_equal(channel_next_send_seq(a.ch), 2);
	pair_free(&c, &a);
}

/* Ack exactly the odd sequence numbers, in random order: each removes
 * its own message, and only the even ones are retransmitted. */
static void
test_ack_removes_exactly_its_message(void **state)
{
	struct end c, a;
	struct frame f, *held;
	struct clientmsg m;
	size_t i, n = 200, nacks;
	int64_t seq;

	(void)state;
	rng_state = 42;
	pair_new(&c, &a, NULL);
	for (i = 0; i < n; i++)
		assert_int_equal(send_val(&a, i), 0);
	held = calloc(n, sizeof(*held));
	assert_non_null(held);
	for (i = 0; i < n; i++)
		held[i] = fq_take(&a.q, 0);
	/* The client receives the odd ones only: each is acked at once. */
	for (i = 1; i < n; i += 2)
		assert_int_equal(channel_receive(c.ch, held[i].p, held[i].n),
		    0);
	assert_int_equal(c.q.len, n / 2);
	assert_int_equal(channel_out_of_order(c.ch), n / 2);
	assert_int_equal(c.delivered, 0);
	nacks = c.q.len;
	for (i = 0; i < nacks; i++) {
		f = fq_take(&c.q, (size_t)(rng() % c.q.len));
		assert_int_equal(channel_receive(a.ch, f.p, f.n), 0);
		/* The same ack again changes nothing. */
		assert_int_equal(channel_receive(a.ch, f.p, f.n), 0);
		free(f.p);
		assert_int_equal(channel_unacked(a.ch), n - i - 1);
	}
	assert_int_equal(channel_next_send_seq(a.ch), n);
	/* Everything left is resent: the even ones, in order. */
	channel_resend_all(a.ch);
	assert_int_equal(a.q.len, n / 2);
	for (i = 0; i < n / 2; i++) {
		f = fq_take(&a.q, 0);
		assert_int_equal(clientmsg_decode(&m, f.p, f.n, 1 << 16), 0);
		seq = m.seq;
		assert_int_equal(seq, (int64_t)(2 * i));
		assert_memory_equal(f.p, held[2 * i].p, f.n);
		assert_int_equal(channel_receive(c.ch, f.p, f.n), 0);
		free(f.p);
	}
	assert_int_equal(c.delivered, n);
	assert_int_equal(channel_out_of_order(c.ch), 0);
	pump(&c, &a, 0);
	assert_int_equal(channel_unacked(a.ch), 0);
	for (i = 0; i < n; i++)
		free(held[i].p);
	free(held);
	pair_free(&c, &a);
}

static void
test_lossy_network(void **state)
{
	struct end c, a;
	uint64_t sent_c = 0, sent_a = 0, n = 3000;
	int iter;

	(void)state;
	rng_state = 0x1234567;
	pair_new(&c, &a, NULL);
	c.drop_pct = 20;
	a.drop_pct = 20;
	for (iter = 0; iter < 100000; iter++) {
		while (sent_c < n && channel_can_send(c.ch) &&
		    send_val(&c, sent_c) == 0)
			sent_c++;
		while (sent_a < n && channel_can_send(a.ch) &&
		    send_val(&a, sent_a) == 0)
			sent_a++;
		pump(&c, &a, 0);
		if (sent_c == n && sent_a == n && channel_unacked(c.ch) == 0 &&
		    channel_unacked(a.ch) == 0)
			break;
		fake_now += 50;
		channel_tick(c.ch, fake_now);
		channel_tick(a.ch, fake_now);
	}
	/* Every expired message is resent, not only the oldest: the
	 * backlog clears in a few dozen ticks (about 32 with this seed),
	 * not one message per tick. */
	assert_true(iter < 200);
	/* No spurious resends: about one per lost frame or lost ack. */
	assert_true(channel_resends(c.ch) + channel_resends(a.ch) < 4500);
	assert_int_equal(c.delivered, n);
	assert_int_equal(a.delivered, n);
	assert_true(channel_resends(c.ch) > 0);
	assert_int_equal(channel_out_of_order(c.ch), 0);
	assert_int_equal(channel_head_resends(c.ch), 0);
	pair_free(&c, &a);
}

static void
test_reordering(void **state)
{
	struct end c, a;
	struct clientmsg m;
	struct frame f;
	uint8_t *acked;
	size_t i, n = 2000;
	json_int_t seq;
	json_t *j;

	(void)state;
	rng_state = 99;
	pair_new(&c, &a, NULL);
	for (i = 0; i < n; i++)
		assert_int_equal(send_val(&a, i), 0);
	/* Deliver in shuffled order; keep the acks. */
	while (a.q.len > 0) {
		f = fq_take(&a.q, (size_t)(rng() % a.q.len));
		assert_int_equal(channel_receive(c.ch, f.p, f.n), 0);
		free(f.p);
	}
	assert_int_equal(c.delivered, n);
	assert_int_equal(channel_out_of_order(c.ch), 0);
	/* Each frame acked once, none twice. */
	acked = calloc(n, 1);
	assert_non_null(acked);
	assert_int_equal(c.q.len, n);
	while (c.q.len > 0) {
		f = fq_take(&c.q, 0);
		assert_int_equal(clientmsg_decode(&m, f.p, f.n, 1 << 16), 0);
		assert_string_equal(m.type, MT_ACKNOWLEDGE);
		j = json_loadb((const char *)m.payload, m.payload_len, 0,
		    NULL);
		assert_non_null(j);
		seq = json_integer_value(json_object_get(j,
		    "AcknowledgedMessageSequenceNumber"));
		json_decref(j);
		assert_true(seq >= 0 && seq < (json_int_t)n);
		assert_int_equal(acked[seq], 0);
		acked[seq] = 1;
		assert_int_equal(channel_receive(a.ch, f.p, f.n), 0);
		free(f.p);
	}
	assert_int_equal(channel_unacked(a.ch), 0);
	free(acked);
	pair_free(&c, &a);
}

static void
test_duplicates(void **state)
{
	struct end c, a;
	struct frame *held;
	size_t i, n = 50;

	(void)state;
	pair_new(&c, &a, NULL);
	for (i = 0; i < n; i++)
		assert_int_equal(send_val(&c, i), 0);
	held = calloc(n, sizeof(*held));
	assert_non_null(held);
	for (i = 0; i < n; i++)
		held[i] = fq_take(&c.q, 0);
	/* Out of order then again, in order then again, then all again. */
	assert_int_equal(channel_receive(a.ch, held[3].p, held[3].n), 0);
	assert_int_equal(channel_receive(a.ch, held[3].p, held[3].n), 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(channel_receive(a.ch, held[i].p, held[i].n),
		    0);
		assert_int_equal(channel_receive(a.ch, held[i].p, held[i].n),
		    0);
	}
	for (i = 0; i < n; i++)
		assert_int_equal(channel_receive(a.ch, held[i].p, held[i].n),
		    0);
	assert_int_equal(a.delivered, n);
	/* Every arrival was acknowledged (the agent and porthole's client
	 * both re-ack duplicates, spec 4.3). */
	assert_int_equal(a.acks_sent, 2 + 3 * n);
	pump(&c, &a, 0);
	assert_int_equal(channel_unacked(c.ch), 0);
	for (i = 0; i < n; i++)
		free(held[i].p);
	free(held);
	pair_free(&c, &a);
}

static void
test_deliver_again(void **state)
{
	struct end c, a;
	int iter;

	(void)state;
	rng_state = 7;
	pair_new(&c, &a, NULL);
	/* The session is not ready: nothing acked, expected unchanged. */
	a.again = 1;
	assert_int_equal(send_val(&c, 0), 0);
	pump(&c, &a, 0);
	assert_int_equal(a.delivered, 0);
	assert_int_equal(a.acks_sent, 0);
	assert_int_equal(channel_expected_seq(a.ch), 0);
	assert_int_equal(channel_unacked(c.ch), 1);
	/* Not before the RTO, then resent. */
	fake_now += 150;
	channel_tick(c.ch, fake_now);
	assert_int_equal(c.q.len, 0);
	fake_now += 100;
	channel_tick(c.ch, fake_now);
	assert_int_equal(c.q.len, 1);
	assert_int_equal(channel_head_resends(c.ch), 1);
	a.again = 0;
	pump(&c, &a, 0);
	assert_int_equal(a.delivered, 1);
	assert_int_equal(channel_unacked(c.ch), 0);

	/* Sometimes not ready, with reordering: buffered messages the
	 * session refuses while draining are retried by the tick. */
	a.again = 3;
	for (iter = 1; iter <= 500; iter++)
		assert_int_equal(send_val(&c, (uint64_t)iter), 0);
	for (iter = 0; iter < 10000; iter++) {
		pump(&c, &a, 1);
		if (a.delivered == 501 && channel_unacked(c.ch) == 0)
			break;
		fake_now += 100;
		channel_tick(c.ch, fake_now);
		channel_tick(a.ch, fake_now);
	}
	assert_int_equal(a.delivered, 501);
	assert_int_equal(channel_unacked(c.ch), 0);
	assert_int_equal(channel_out_of_order(a.ch), 0);
	pair_free(&c, &a);
}

/* A message handed on whose ack cannot be written (the socket died with
 * frames still unread in it) is taken all the same: its retransmission
 * after the reconnect is re-acked, never delivered twice. AWS's plugin
 * returns before advancing when that write fails, and so delivers the
 * retransmission again (docs/conformance.md). Both roles, by the
 * retransmission after a reconnect and by the timer. */
static void
test_ack_write_fails(void **state)
{
	struct end c, a, *snd, *rcv;
	uint64_t i;
	int dir;

	(void)state;
	for (dir = 0; dir < 2; dir++) {
		pair_new(&c, &a, NULL);
		snd = dir == 0 ? &a : &c;
		rcv = dir == 0 ? &c : &a;
		for (i = 0; i < 5; i++)
			assert_int_equal(send_val(snd, i), 0);
		rcv->down = 1;
		pump(&c, &a, 0);
		assert_int_equal(rcv->delivered, 5);
		assert_int_equal(rcv->acks_sent, 0);
		assert_int_equal(channel_expected_seq(rcv->ch), 5);
		assert_int_equal(channel_unacked(snd->ch), 5);
		/* Back: everything unacknowledged comes again, and t_deliver
		 * fails on a value it already had. */
		rcv->down = 0;
		channel_resend_all(snd->ch);
		pump(&c, &a, 0);
		assert_int_equal(rcv->delivered, 5);
		assert_int_equal(rcv->acks_sent, 5);
		assert_int_equal(channel_unacked(snd->ch), 0);
		/* The same through the resend timer. */
		assert_int_equal(send_val(snd, 5), 0);
		rcv->down = 1;
		pump(&c, &a, 0);
		rcv->down = 0;
		fake_now += 1100;
		channel_tick(snd->ch, fake_now);
		pump(&c, &a, 0);
		assert_int_equal(rcv->delivered, 6);
		assert_int_equal(channel_unacked(snd->ch), 0);
		assert_int_equal(send_val(snd, 6), 0);
		pump(&c, &a, 0);
		assert_int_equal(rcv->delivered, 7);
		pair_free(&c, &a);
	}
}

/* A buffered message refused while draining stays (it was acked on
 * arrival, so the peer will not resend it) and the tick delivers it. */
static void
test_drain_again(void **state)
{
	struct end c, a;
	struct frame f0, f1, f2;
	uint64_t acks;

	(void)state;
	pair_new(&c, &a, NULL);
	assert_int_equal(send_val(&a, 0), 0);
	assert_int_equal(send_val(&a, 1), 0);
	assert_int_equal(send_val(&a, 2), 0);
	f0 = fq_take(&a.q, 0);
	f1 = fq_take(&a.q, 0);
	f2 = fq_take(&a.q, 0);
	assert_int_equal(channel_receive(c.ch, f2.p, f2.n), 0);
	assert_int_equal(channel_receive(c.ch, f1.p, f1.n), 0);
	assert_int_equal(channel_out_of_order(c.ch), 2);
	c.refuse = 1 + 1;
	assert_int_equal(channel_receive(c.ch, f0.p, f0.n), 0);
	assert_int_equal(c.delivered, 1);
	assert_int_equal(channel_expected_seq(c.ch), 1);
	assert_int_equal(channel_out_of_order(c.ch), 2);
	acks = c.acks_sent;
	assert_int_equal(acks, 3);
	fake_now += 100;
	channel_tick(c.ch, fake_now);
	assert_int_equal(c.delivered, 1);
	/* A resent copy of the stuck one is taken in its place. */
	c.refuse = 0;
	assert_int_equal(channel_receive(c.ch, f1.p, f1.n), 0);
	assert_int_equal(c.delivered, 3);
	assert_int_equal(channel_out_of_order(c.ch), 0);
	assert_int_equal(c.acks_sent, acks + 1);
	/* Same again, this time freed by the tick's retry. */
	assert_int_equal(send_val(&a, 3), 0);
	assert_int_equal(send_val(&a, 4), 0);
	free(f0.p);
	free(f1.p);
	free(f2.p);
	f0 = fq_take(&a.q, 0);
	f1 = fq_take(&a.q, 0);
	assert_int_equal(channel_receive(c.ch, f1.p, f1.n), 0);
	c.refuse = 4 + 1;
	assert_int_equal(channel_receive(c.ch, f0.p, f0.n), 0);
	assert_int_equal(c.delivered, 4);
	assert_int_equal(channel_out_of_order(c.ch), 1);
	acks = c.acks_sent;
	c.refuse = 0;
	fake_now += 100;
	channel_tick(c.ch, fake_now);
	assert_int_equal(c.delivered, 5);
	assert_int_equal(channel_out_of_order(c.ch), 0);
	assert_int_equal(channel_expected_seq(c.ch), 5);
	/* Not acked a second time. */
	assert_int_equal(c.acks_sent, acks);
	free(f0.p);
	free(f1.p);
	/* channel_free from deliver, in the middle of a drain: deferred. */
	assert_int_equal(send_val(&a, 5), 0);
	assert_int_equal(send_val(&a, 6), 0);
	f0 = fq_take(&a.q, 0);
	f1 = fq_take(&a.q, 0);
	assert_int_equal(channel_receive(c.ch, f1.p, f1.n), 0);
	assert_int_equal(send_val(&c, 0), 0);
	c.free_on_deliver = 1;
	assert_int_equal(channel_receive(c.ch, f0.p, f0.n), 0);
	assert_null(c.ch);
	free(f0.p);
	free(f1.p);
	pair_free(&c, &a);
}

static void
test_full_window(void **state)
{
	static uint8_t big[((size_t)64 << 10) + 29];
	struct channel_limits lim = { .max_unacked = 100 };
	struct end c, a;
	struct frame f;
	int i;

	(void)state;
	pair_new(&c, &a, &lim);
	for (i = 0; i < 100; i++)
		assert_int_equal(send_val(&c, (uint64_t)i), 0);
	assert_false(channel_can_send(c.ch));
	assert_int_equal(send_val(&c, 100), PH_ERR_AGAIN);
	assert_int_equal(channel_next_send_seq(c.ch), 100);
	assert_int_equal(channel_unacked(c.ch), 100);
	/* Acks for all but the first free no room: the window starts at
	 * the oldest unacked message. */
	f = fq_take(&c.q, 0);
	pump(&c, &a, 0);
	assert_int_equal(channel_unacked(c.ch), 1);
	assert_false(channel_can_send(c.ch));
	assert_int_equal(a.delivered, 0);
	assert_int_equal(channel_out_of_order(a.ch), 99);
	/* The oldest arrives: everything is free again. */
	assert_int_equal(channel_receive(a.ch, f.p, f.n), 0);
	free(f.p);
	assert_int_equal(a.delivered, 100);
	pump(&c, &a, 0);
	assert_true(channel_can_send(c.ch));
	assert_int_equal(channel_unacked(c.ch), 0);
	assert_int_equal(send_val(&c, 100), 0);
	pump(&c, &a, 0);
	assert_int_equal(a.delivered, 101);
	/* Payloads beyond the limit are refused outright. */
	assert_int_equal(channel_send(c.ch, PT_OUTPUT, big, sizeof(big)),
	    PH_ERR_TOOBIG);
	pair_free(&c, &a);
}

static int
send_val_len(struct end *e, uint64_t v, size_t n)
{
	uint8_t p[4096];

	assert_true(n >= 8 && n <= sizeof(p));
	memset(p, 'x', n);
	put_be64(p, v);
	return channel_send(e->ch, PT_OUTPUT, p, n);
}

/* The window is bounded in bytes as well as in messages: what a peer
 * that does not acknowledge (or a transport that is down) pins. */
static void
test_byte_window(void **state)
{
	struct channel_limits lim = { .max_unacked_bytes = 8192 };
	struct end c, a;
	size_t frame = CLIENTMSG_PAYLOAD_OFFSET + 1000;
	int i;

	(void)state;
	pair_new(&c, &a, &lim);
	a.down = 1;
	/* Below the bound before each send: 8 frames of 1120 bytes. */
	for (i = 0; i < 8; i++)
		assert_int_equal(send_val_len(&a, (uint64_t)i, 1000), 0);
	assert_false(channel_can_send(a.ch));
	assert_int_equal(send_val_len(&a, 8, 1000), PH_ERR_AGAIN);
	assert_int_equal(channel_unacked(a.ch), 8);
	assert_int_equal(channel_unacked_bytes(a.ch), 8 * frame);
	a.down = 0;
	channel_resend_all(a.ch);
	pump(&c, &a, 0);
	assert_int_equal(c.delivered, 8);
	assert_int_equal(channel_unacked_bytes(a.ch), 0);
	assert_true(channel_can_send(a.ch));
	assert_int_equal(send_val_len(&a, 8, 1000), 0);
	pump(&c, &a, 0);
	assert_int_equal(c.delivered, 9);
	pair_free(&c, &a);
}

/* After an outage the window goes out as the transport drains, in
 * order, never more than it takes at once; new messages queue behind
 * it; nothing is written (not even by the timer) while it is down. */
static void
test_resend_paced_by_transport(void **state)
{
	struct clientmsg m;
	struct end c, a;
	struct frame f;
	int64_t want = 10;
	int i, rounds;

	(void)state;
	pair_new(&c, &a, NULL);
	a.paced = 1;
	a.qmax = 8;
	for (i = 0; i < 8; i++)
		assert_int_equal(send_val(&a, (uint64_t)i), 0);
	/* Full: the ninth waits for the transport. */
	assert_int_equal(send_val(&a, 8), 0);
	assert_int_equal(a.q.len, 8);
	assert_int_equal(channel_unsent(a.ch), 1);
	pump(&c, &a, 0);
	channel_flush(a.ch);
	assert_int_equal(channel_unsent(a.ch), 0);
	assert_int_equal(send_val(&a, 9), 0);
	pump(&c, &a, 0);
	assert_int_equal(c.delivered, 10);
	/* Down: everything waits, the timer included. */
	a.down = 1;
	for (i = 10; i < 50; i++)
		assert_int_equal(send_val(&a, (uint64_t)i), 0);
	fake_now += 5000;
	channel_tick(a.ch, fake_now);
	assert_int_equal(a.q.len, 0);
	assert_int_equal(channel_unsent(a.ch), 40);
	/* Back: one transport's worth at once. */
	a.down = 0;
	channel_resend_all(a.ch);
	assert_int_equal(a.q.len, 8);
	assert_int_equal(channel_unsent(a.ch), 32);
	assert_int_equal(send_val(&a, 50), 0);
	assert_int_equal(a.q.len, 8);
	assert_int_equal(channel_unsent(a.ch), 33);
	/* Expired, but the transport is full: the timer waits too. */
	fake_now += 5000;
	channel_tick(a.ch, fake_now);
	assert_int_equal(a.q.len, 8);
	for (rounds = 0; rounds < 100 && a.q.len > 0; rounds++) {
		while (a.q.len > 0) {
			f = fq_take(&a.q, 0);
			assert_int_equal(clientmsg_decode(&m, f.p, f.n, 1 << 16),
			    0);
			assert_int_equal(m.seq, want);
			want++;
			assert_int_equal(channel_receive(c.ch, f.p, f.n), 0);
			free(f.p);
		}
		pump(&c, &a, 0);
		channel_flush(a.ch);
		assert_true(a.q.len <= 8);
	}
	assert_int_equal(want, 51);
	assert_int_equal(c.delivered, 51);
	assert_int_equal(channel_unacked(a.ch), 0);
	assert_int_equal(channel_unsent(a.ch), 0);
	pair_free(&c, &a);
}

/* The out-of-order buffer takes seq up to expected + max_out_of_order;
 * beyond, frames are dropped unacknowledged and come back later. */
static void
test_ooo_window(void **state)
{
	struct channel_limits lim = { .max_out_of_order = 10 };
	struct end c, a;
	struct frame f[13];
	int i;

	(void)state;
	pair_new(&c, &a, &lim);
	for (i = 0; i < 13; i++) {
		assert_int_equal(send_val(&a, (uint64_t)i), 0);
		f[i] = fq_take(&a.q, 0);
	}
	for (i = 12; i >= 1; i--)
		assert_int_equal(channel_receive(c.ch, f[i].p, f[i].n), 0);
	assert_int_equal(channel_out_of_order(c.ch), 10);
	assert_int_equal(c.acks_sent, 10);
	pump(&c, &a, 0);
	assert_int_equal(channel_unacked(a.ch), 3);
	assert_int_equal(channel_receive(c.ch, f[0].p, f[0].n), 0);
	assert_int_equal(c.delivered, 11);
	fake_now += 300;
	channel_tick(a.ch, fake_now);
	pump(&c, &a, 0);
	assert_int_equal(c.delivered, 13);
	assert_int_equal(channel_unacked(a.ch), 0);
	for (i = 0; i < 13; i++)
		free(f[i].p);
	pair_free(&c, &a);
}

/* Send one message at t, acknowledge it at t + rtt. */
static void
rtt_round(struct end *c, struct end *a, uint64_t rtt)
{
	assert_int_equal(send_val(c, c->peer->next_val), 0);
	fake_now += rtt;
	pump(c, a, 0);
	fake_now += 1;
}

static void
test_rto_adapts(void **state)
{
	struct end c, a;
	unsigned rto;
	int i;

	(void)state;
	pair_new(&c, &a, NULL);
	assert_int_equal(channel_rto_ms(c.ch), 200);
	/* spec 4.4: one 30 ms sample from SRTT 100, RTTVAR 0:
	 * RTTVAR 17.5, SRTT 91.25, RTO 91.25 + 70. */
	rtt_round(&c, &a, 30);
	assert_int_equal(channel_rto_ms(c.ch), 161);
	for (i = 0; i < 200; i++)
		rtt_round(&c, &a, 30);
	/* Converges to SRTT 30 + G 10. */
	rto = channel_rto_ms(c.ch);
	assert_true(rto >= 40 && rto <= 42);
	/* Karn: an ack for a resent message gives no sample. */
	assert_int_equal(send_val(&c, a.next_val), 0);
	fq_clear(&c.q);
	fake_now += 500;
	channel_tick(c.ch, fake_now);
	assert_int_equal(c.q.len, 1);
	fake_now += 900;
	pump(&c, &a, 0);
	assert_int_equal(channel_rto_ms(c.ch), rto);
	/* Long samples: capped at 1 s. */
	for (i = 0; i < 50; i++)
		rtt_round(&c, &a, 5000);
	assert_int_equal(channel_rto_ms(c.ch), 1000);
	pair_free(&c, &a);
}

static void
test_resend_all_after_reconnect(void **state)
{
	struct end c, a;
	int i;

	(void)state;
	pair_new(&c, &a, NULL);
	for (i = 0; i < 10; i++)
		assert_int_equal(send_val(&a, (uint64_t)i), 0);
	pump(&c, &a, 0);
	/* The connection drops: writes fail, messages stay buffered. */
	a.down = 1;
	for (i = 10; i < 60; i++)
		assert_int_equal(send_val(&a, (uint64_t)i), 0);
	assert_int_equal(channel_unacked(a.ch), 50);
	fake_now += 5000;
	channel_tick(a.ch, fake_now);
	assert_int_equal(a.q.len, 0);
	/* Reconnected: everything goes at once, in order. */
	a.down = 0;
	channel_resend_all(a.ch);
	assert_int_equal(a.q.len, 50);
	pump(&c, &a, 0);
	assert_int_equal(c.delivered, 60);
	assert_int_equal(channel_unacked(a.ch), 0);
	/* Nothing left to resend. */
	channel_resend_all(a.ch);
	assert_int_equal(a.q.len, 0);
	pair_free(&c, &a);
}

static void
test_garbage(void **state)
{
	struct end c, a;
	struct buf b;
	uint8_t junk[300], id[16], *big;
	size_t n, k;
	int i, rc;

	(void)state;
	rng_state = 5;
	pair_new(&c, &a, NULL);
	assert_int_equal(send_val(&a, 0), 0);
	for (i = 0; i < 20000; i++) {
		n = (size_t)(rng() % sizeof(junk));
		for (k = 0; k < n; k++)
			junk[k] = (uint8_t)rng();
		rc = channel_receive(c.ch, junk, n);
		assert_true(rc == PH_ERR_SHORT || rc == PH_ERR_INVALID ||
		    rc == PH_ERR_TOOBIG || rc == PH_ERR_DIGEST);
	}
	assert_int_equal(channel_receive(c.ch, NULL, 0), PH_ERR_SHORT);
	/* Above the payload limit (64 KiB + 28 by default). */
	uuid_v4(id);
	buf_init(&b, 0);
	big = calloc(1, ((size_t)64 << 10) + 29);
	assert_non_null(big);
	assert_int_equal(clientmsg_encode(&b, MT_OUTPUT_STREAM, 0, 0, id,
	    PT_OUTPUT, big, ((size_t)64 << 10) + 29), 0);
	assert_int_equal(channel_receive(c.ch, b.data, b.len), PH_ERR_TOOBIG);
	b.data[120] ^= 1;
	assert_int_equal(channel_receive(c.ch, b.data, b.len - 1),
	    PH_ERR_INVALID);
	free(big);
	buf_free(&b);
	/* A digest mismatch. */
	buf_init(&b, 0);
	assert_int_equal(clientmsg_encode(&b, MT_OUTPUT_STREAM, 0, 0, id,
	    PT_OUTPUT, "01234567", 8), 0);
	b.data[125] ^= 4;
	assert_int_equal(channel_receive(c.ch, b.data, b.len), PH_ERR_DIGEST);
	assert_int_equal(c.delivered, 0);
	buf_free(&b);
	/* Well-formed frames with nonsense inside. */
	buf_init(&b, 0);
	assert_int_equal(clientmsg_encode(&b, MT_ACKNOWLEDGE, 0, 3, id, 0,
	    "not json", 8), 0);
	assert_int_equal(clientmsg_encode(&b, MT_ACKNOWLEDGE, 0, 3, id, 0,
	    "{\"AcknowledgedMessageSequenceNumber\":\"0\"}", 41), 0);
	assert_int_equal(clientmsg_encode(&b, MT_ACKNOWLEDGE, 0, 3, id, 0,
	    "{\"AcknowledgedMessageSequenceNumber\":-9}", 40), 0);
	assert_int_equal(channel_receive(a.ch, b.data, 128), 0);
	assert_int_equal(channel_receive(a.ch, b.data + 128, 161), 0);
	assert_int_equal(channel_receive(a.ch, b.data + 289, 160), 0);
	assert_int_equal(channel_unacked(a.ch), 1);
	buf_reset(&b);
	/* A stream frame far beyond the window is dropped, not acked. */
	assert_int_equal(clientmsg_encode(&b, MT_OUTPUT_STREAM, INT64_MAX, 0,
	    id, PT_OUTPUT, "01234567", 8), 0);
	assert_int_equal(channel_receive(c.ch, b.data, b.len), 0);
	assert_int_equal(c.q.len, 0);
	buf_reset(&b);
	assert_int_equal(clientmsg_encode(&b, MT_OUTPUT_STREAM, INT64_MIN, 0,
	    id, PT_OUTPUT, "01234567", 8), 0);
	assert_int_equal(channel_receive(c.ch, b.data, b.len), 0);
	assert_int_equal(c.delivered, 0);
	buf_free(&b);
	pump(&c, &a, 0);
	assert_int_equal(c.delivered, 1);
	pair_free(&c, &a);
}

/* Make f (an encoded frame) look like a JavaScript client's: the digest
 * field holds the first 32 characters of the hex SHA-256, PayloadLength
 * says plen. */
static void
quirk_frame(struct buf *f, uint32_t plen)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t md[32];
	unsigned int len = 0;
	size_t i;

	assert_int_equal(EVP_Digest(f->data + 120, f->len - 120, md, &len,
	    EVP_sha256(), NULL), 1);
	for (i = 0; i < 16; i++) {
		f->data[80 + 2 * i] = (uint8_t)hex[md[i] >> 4];
		f->data[80 + 2 * i + 1] = (uint8_t)hex[md[i] & 0x0f];
	}
	f->data[116] = (uint8_t)(plen >> 24);
	f->data[117] = (uint8_t)(plen >> 16);
	f->data[118] = (uint8_t)(plen >> 8);
	f->data[119] = (uint8_t)plen;
}

/* The agent hashes every small payload of a client, but only the first
 * 64 large ones of a channel: the count of wrong digests is a diagnosis,
 * and hashing each byte of a bulk upload cost a third of its CPU. */
static void
test_agent_digest_sampled(void **state)
{
	static uint8_t big[8192];
	struct end c, a;
	struct buf b;
	uint8_t id[16];
	int i;

	(void)state;
	pair_new(&c, &a, NULL);
	a.record = 1;
	c.record = 1;
	uuid_v4(id);
	buf_init(&b, 0);
	for (i = 0; i < 100; i++) {
		rec_clear(&a);
		buf_reset(&b);
		assert_int_equal(clientmsg_encode(&b, MT_INPUT_STREAM, i, 0,
		    id, PT_OUTPUT, big, sizeof(big)), 0);
		b.data[80] ^= 1;     /* a wrong digest */
		assert_int_equal(channel_receive(a.ch, b.data, b.len), 0);
	}
	assert_int_equal(channel_expected_seq(a.ch), 100);
	assert_int_equal(channel_digest_mismatches(a.ch), 64);
	/* Small payloads are always checked. */
	for (i = 100; i < 110; i++) {
		buf_reset(&b);
		assert_int_equal(clientmsg_encode(&b, MT_INPUT_STREAM, i, 0,
		    id, PT_OUTPUT, "ls\r", 3), 0);
		b.data[80] ^= 1;
		rec_clear(&a);
		assert_int_equal(channel_receive(a.ch, b.data, b.len), 0);
	}
	assert_int_equal(channel_expected_seq(a.ch), 110);
	assert_int_equal(channel_digest_mismatches(a.ch), 74);
	/* The client still refuses every wrong digest, whatever the size. */
	buf_reset(&b);
	assert_int_equal(clientmsg_encode(&b, MT_OUTPUT_STREAM, 0, 1, id,
	    PT_OUTPUT, big, sizeof(big)), 0);
	for (i = 0; i < 70; i++)
		assert_int_equal(channel_receive(c.ch, b.data, b.len), 0);
	b.data[80] ^= 1;
	assert_int_equal(channel_receive(c.ch, b.data, b.len), PH_ERR_DIGEST);
	rec_clear(&a);
	rec_clear(&c);
	buf_free(&b);
	pair_free(&c, &a);
}

/* spec 3.7 [R]: the agent takes what AWS's agent takes from a client. */
static void
test_agent_tolerates_client_quirks(void **state)
{
	static const char size[] = "{\"cols\":80,\"rows\":24}";
	char ack[256];
	struct end c, a;
	struct buf b;
	uint8_t id[16], junk[300];
	size_t j, k;
	int i, n, rc;

	(void)state;
	pair_new(&c, &a, NULL);
	a.record = 1;
	c.record = 1;
	uuid_v4(id);
	/* The first message: a size, PayloadType 3, seq 0, before any
	 * output; hex digest, PayloadLength 0. */
	buf_init(&b, 0);
	assert_int_equal(clientmsg_encode(&b, MT_INPUT_STREAM, 0, 0, id,
	    PT_SIZE, size, sizeof(size) - 1), 0);
	quirk_frame(&b, 0);
	assert_int_equal(channel_receive(a.ch, b.data, b.len), 0);
	assert_int_equal(a.nrec, 1);
	assert_int_equal(a.rec[0].pt, PT_SIZE);
	assert_int_equal(a.rec[0].n, sizeof(size) - 1);
	assert_memory_equal(a.rec[0].p, size, sizeof(size) - 1);
	assert_int_equal(a.acks_sent, 1);
	/* Keystrokes whose PayloadLength claims more than was sent. */
	buf_reset(&b);
	assert_int_equal(clientmsg_encode(&b, MT_INPUT_STREAM, 1, 0, id,
	    PT_OUTPUT, "echo hi\r", 8), 0);
	quirk_frame(&b, 4096);
	assert_int_equal(channel_receive(a.ch, b.data, b.len), 0);
	assert_int_equal(a.nrec, 2);
	assert_int_equal(a.rec[1].n, 8);
	assert_memory_equal(a.rec[1].p, "echo hi\r", 8);
	assert_int_equal(channel_expected_seq(a.ch), 2);
	/* Output, acknowledged the way that client does it: PayloadType 1,
	 * Flags 0, always naming output_stream_data, hex digest. */
	assert_int_equal(channel_send(a.ch, PT_OUTPUT, "hi\r\n", 4), 0);
	assert_int_equal(channel_unacked(a.ch), 1);
	n = snprintf(ack, sizeof(ack), "{\"AcknowledgedMessageType\":"
	    "\"output_stream_data\",\"AcknowledgedMessageId\":\"%s\","
	    "\"AcknowledgedMessageSequenceNumber\":0,"
	    "\"IsSequentialMessage\":true}",
	    "00000000-0000-4000-8000-000000000000");
	assert_true(n > 0 && (size_t)n < sizeof(ack));
	buf_reset(&b);
	assert_int_equal(clientmsg_encode(&b, MT_ACKNOWLEDGE, 0, 0, id,
	    PT_OUTPUT, ack, (size_t)n), 0);
	quirk_frame(&b, 7);
	assert_int_equal(channel_receive(a.ch, b.data, b.len), 0);
	assert_int_equal(channel_unacked(a.ch), 0);
	/* Counted, never fatal. */
	assert_int_equal(channel_digest_mismatches(a.ch), 3);
	assert_int_equal(channel_length_mismatches(a.ch), 3);
	assert_true(channel_rx_quirks(a.ch) & CLIENTMSG_QUIRK_DIGEST_HEX);
	/* Still refused where it protects the agent; random bytes never
	 * fail on a digest here. */
	rng_state = 11;
	for (i = 0; i < 20000; i++) {
		k = (size_t)(rng() % sizeof(junk));
		for (j = 0; j < k; j++)
			junk[j] = (uint8_t)rng();
		rc = channel_receive(a.ch, junk, k);
		assert_true(rc == 0 || rc == PH_ERR_SHORT ||
		    rc == PH_ERR_INVALID || rc == PH_ERR_TOOBIG);
	}
	assert_int_equal(channel_receive(a.ch, b.data, 119), PH_ERR_SHORT);
	b.data[3] = 0;
	b.data[2] = 0x10; /* HeaderLength past the frame */
	assert_int_equal(channel_receive(a.ch, b.data, b.len), PH_ERR_INVALID);
	/* The client stays strict with agents, and its own frames carry
	 * real digests and exact lengths. */
	buf_reset(&b);
	assert_int_equal(clientmsg_encode(&b, MT_OUTPUT_STREAM, 0, 1, id,
	    PT_OUTPUT, "01234567", 8), 0);
	quirk_frame(&b, 8);
	assert_int_equal(channel_receive(c.ch, b.data, b.len), PH_ERR_DIGEST);
	assert_int_equal(channel_digest_mismatches(c.ch), 0);
	assert_int_equal(channel_send(c.ch, PT_OUTPUT, "01234567", 8), 0);
	pump(&c, &a, 0);
	assert_int_equal(channel_digest_mismatches(a.ch), 3);
	assert_int_equal(channel_length_mismatches(a.ch), 3);
	/* (Its seq 0 is a duplicate for this agent: acked, not delivered.) */
	assert_int_equal(channel_unacked(c.ch), 0);
	assert_int_equal(a.nrec, 2);
	buf_free(&b);
	pair_free(&c, &a);
}

static void
test_control_and_own_type(void **state)
{
	struct end c, a;
	struct buf b;
	uint8_t id[16];

	(void)state;
	pair_new(&c, &a, NULL);
	uuid_v4(id);
	buf_init(&b, 0);
	assert_int_equal(clientmsg_encode(&b, MT_CHANNEL_CLOSED, 0, 3, id, 0,
	    "{}", 2), 0);
	assert_int_equal(channel_receive(c.ch, b.data, b.len), 0);
	assert_int_equal(c.controls, 1);
	assert_string_equal(c.last_control, MT_CHANNEL_CLOSED);
	assert_int_equal(c.q.len, 0);
	buf_reset(&b);
	assert_int_equal(clientmsg_encode(&b, "something_new", 0, 0, id, 0,
	    "x", 1), 0);
	assert_int_equal(channel_receive(a.ch, b.data, b.len), 0);
	assert_int_equal(a.controls, 1);
	assert_string_equal(a.last_control, "something_new");
	/* The client receiving a frame of its own stream: ignored. */
	buf_reset(&b);
	assert_int_equal(clientmsg_encode(&b, MT_INPUT_STREAM, 0, 0, id,
	    PT_OUTPUT, "01234567", 8), 0);
	assert_int_equal(channel_receive(c.ch, b.data, b.len), 0);
	assert_int_equal(c.delivered, 0);
	assert_int_equal(c.q.len, 0);
	assert_int_equal(channel_expected_seq(c.ch), 0);
	/* channel_free from a callback is deferred safely. */
	buf_reset(&b);
	assert_int_equal(clientmsg_encode(&b, MT_CHANNEL_CLOSED, 0, 3, id, 0,
	    "{}", 2), 0);
	assert_int_equal(send_val(&c, 0), 0);
	c.free_on_control = 1;
	assert_int_equal(channel_receive(c.ch, b.data, b.len), 0);
	assert_null(c.ch);
	buf_free(&b);
	pair_free(&c, &a);
}

/* The agent answers from inside deliver (channel_send re-entered). */
static void
test_reentrant_echo(void **state)
{
	struct end c, a;
	int i;

	(void)state;
	pair_new(&c, &a, NULL);
	a.echo = 1;
	for (i = 0; i < 1000; i++)
		assert_int_equal(send_val(&c, (uint64_t)i), 0);
	pump(&c, &a, 1);
	assert_int_equal(a.delivered, 1000);
	assert_int_equal(c.delivered, 1000);
	assert_int_equal(channel_unacked(a.ch), 0);
	assert_int_equal(channel_unacked(c.ch), 0);
	pair_free(&c, &a);
}

/* No queues at all: every write is received by the peer before it
 * returns, so acks and answers arrive re-entrantly. */
static void
test_synchronous_wiring(void **state)
{
	struct end c, a;
	uint64_t i;
	int iter;

	(void)state;
	rng_state = 77;
	pair_new(&c, &a, NULL);
	c.direct = a.direct = 1;
	a.echo = 1;
	for (i = 0; i < 500; i++)
		assert_int_equal(send_val(&c, i), 0);
	assert_int_equal(a.delivered, 500);
	assert_int_equal(c.delivered, 500);
	assert_int_equal(channel_unacked(c.ch), 0);
	assert_int_equal(channel_unacked(a.ch), 0);
	/* With loss, recovered by ticks. */
	c.drop_pct = a.drop_pct = 20;
	for (i = 500; i < 1000; i++)
		assert_int_equal(send_val(&c, i), 0);
	for (iter = 0; iter < 1000; iter++) {
		if (channel_unacked(c.ch) == 0 && channel_unacked(a.ch) == 0)
			break;
		fake_now += 50;
		channel_tick(c.ch, fake_now);
		channel_tick(a.ch, fake_now);
	}
	assert_true(iter < 1000);
	assert_int_equal(a.delivered, 1000);
	assert_int_equal(c.delivered, 1000);
	pair_free(&c, &a);
}

/* --- session encryption (spec 6.3) ------------------------------------ */

struct keys {
	struct sessioncrypt *client, *agent;
};

/* The two ends' keys: the same 64 bytes unless flip says which bytes of
 * the agent's copy differ. */
static void
keys_new(struct keys *k, int flip)
{
	uint8_t key[SESSIONCRYPT_KEY_LEN];
	size_t i;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(0xa5 ^ (i * 7));
	assert_int_equal(sessioncrypt_new(&k->client, SESSIONCRYPT_CLIENT,
	    key), 0);
	if (flip) {
		/* One byte in each direction's half. */
		key[5] ^= 1;
		key[40] ^= 0x80;
	}
	assert_int_equal(sessioncrypt_new(&k->agent, SESSIONCRYPT_AGENT,
	    key), 0);
}

static void
keys_free(struct keys *k)
{
	sessioncrypt_free(k->client);
	sessioncrypt_free(k->agent);
}

struct msg {
	uint32_t pt;
	const char *p;
	int sealed;     /* spec 6.3 */
};

/* spec 6.3: client->agent seals 1 only; agent->client 1, 11 and 12. */
static const struct msg client_msgs[] = {
	{ PT_HANDSHAKE_RESPONSE, "{\"ClientVersion\":\"HS-RESPONSE-PLAIN\"}",
	    0 },
	{ PT_ENC_CHALLENGE_RESPONSE, "{\"Challenge\":\"CHALLENGE-PLAIN\"}",
	    0 },
	{ PT_SIZE, "{\"cols\":132,\"rows\":43}", 0 },
	{ PT_OUTPUT, "echo CLIENT-SECRET-1\r", 1 },
	{ PT_FLAG, "FLAG", 0 },
	{ PT_OUTPUT, "passwd CLIENT-SECRET-2\r", 1 },
};

static const struct msg agent_msgs[] = {
	{ PT_HANDSHAKE_REQUEST, "{\"AgentVersion\":\"HS-REQUEST-PLAIN\"}", 0 },
	{ PT_ENC_CHALLENGE_REQUEST, "{\"Challenge\":\"ENC-CHALLENGE-PLAIN\"}",
	    0 },
	{ PT_HANDSHAKE_COMPLETE, "{\"CustomerMessage\":\"COMPLETE-PLAIN\"}",
	    0 },
	{ PT_OUTPUT, "AGENT-SECRET-OUTPUT\r\n", 1 },
	{ PT_STDERR, "AGENT-SECRET-STDERR\n", 1 },
	{ PT_EXIT_CODE, "EXIT_CODE: 42", 1 },
};

#define NMSGS (sizeof(client_msgs) / sizeof(client_msgs[0]))

/* Every stream frame in flight from e: sealed types carry exactly
 * nonce || ciphertext || tag, the others their bytes unchanged. */
static void
check_in_flight(const struct end *e, const struct msg *msgs, size_t count)
{
	struct clientmsg m;
	struct frame *f;
	size_t i, len;

	assert_int_equal(e->q.len, count);
	for (i = 0; i < count; i++) {
		f = &e->q.f[(e->q.head + i) % e->q.cap];
		assert_int_equal(clientmsg_decode(&m, f->p, f->n, 1 << 20), 0);
		assert_int_equal(m.payload_type, msgs[i].pt);
		len = strlen(msgs[i].p);
		if (msgs[i].sealed) {
			assert_int_equal(m.payload_len,
			    len + SESSIONCRYPT_OVERHEAD);
			assert_null(memmem(m.payload, m.payload_len,
			    msgs[i].p, len));
		} else {
			assert_int_equal(m.payload_len, len);
			assert_memory_equal(m.payload, msgs[i].p, len);
		}
	}
}

static void
check_recorded(const struct end *e, const struct msg *msgs, size_t count)
{
	size_t i;

	assert_int_equal(e->nrec, count);
	for (i = 0; i < count; i++) {
		assert_int_equal(e->rec[i].pt, msgs[i].pt);
		assert_int_equal(e->rec[i].n, strlen(msgs[i].p));
		assert_memory_equal(e->rec[i].p, msgs[i].p, e->rec[i].n);
	}
}

static void
crypto_pair_new(struct end *c, struct end *a, struct keys *k, int flip,
    struct buf *wire)
{
	pair_new(c, a, NULL);
	keys_new(k, flip);
	channel_set_crypto(c->ch, k->client);
	channel_set_crypto(a->ch, k->agent);
	c->record = a->record = 1;
	if (wire != NULL) {
		buf_init(wire, 0);
		c->wire = a->wire = wire;
	}
}

static void
test_crypto_back_to_back(void **state)
{
	static uint8_t big[(size_t)64 << 10];
	struct end c, a;
	struct keys k;
	struct buf wire;
	struct frame f;
	size_t i;

	(void)state;
	crypto_pair_new(&c, &a, &k, 0, &wire);
	for (i = 0; i < NMSGS; i++) {
		assert_int_equal(channel_send(c.ch, client_msgs[i].pt,
		    client_msgs[i].p, strlen(client_msgs[i].p)), 0);
		assert_int_equal(channel_send(a.ch, agent_msgs[i].pt,
		    agent_msgs[i].p, strlen(agent_msgs[i].p)), 0);
	}
	check_in_flight(&c, client_msgs, NMSGS);
	check_in_flight(&a, agent_msgs, NMSGS);
	pump(&c, &a, 0);
	check_recorded(&a, client_msgs, NMSGS);
	check_recorded(&c, agent_msgs, NMSGS);
	assert_int_equal(channel_unacked(c.ch), 0);
	assert_int_equal(channel_unacked(a.ch), 0);
	/* The wire, both ways, acks included: no plaintext of 1, 11 or 12,
	 * every plaintext type verbatim. */
	assert_null(memmem(wire.data, wire.len, "SECRET", 6));
	assert_null(memmem(wire.data, wire.len, "EXIT_CODE", 9));
	for (i = 0; i < NMSGS; i++) {
		if (!client_msgs[i].sealed)
			assert_non_null(memmem(wire.data, wire.len,
			    client_msgs[i].p, strlen(client_msgs[i].p)));
		if (!agent_msgs[i].sealed)
			assert_non_null(memmem(wire.data, wire.len,
			    agent_msgs[i].p, strlen(agent_msgs[i].p)));
	}
	/* A full-size payload: max_payload sealed fits the wire limit. */
	for (i = 0; i < sizeof(big); i++)
		big[i] = "SECRET-BIG "[i % 11];
	rec_clear(&a);
	buf_reset(&wire);
	assert_int_equal(channel_send(c.ch, PT_OUTPUT, big, sizeof(big)), 0);
	assert_int_equal(channel_send(c.ch, PT_OUTPUT, big, sizeof(big) + 1),
	    PH_ERR_TOOBIG);
	assert_int_equal(c.q.f[c.q.head].n, CLIENTMSG_PAYLOAD_OFFSET +
	    sizeof(big) + SESSIONCRYPT_OVERHEAD);
	/* Retransmissions resend the sealed bytes as first written. */
	f = fq_take(&c.q, 0);
	fake_now += 2000;
	channel_tick(c.ch, fake_now);
	assert_int_equal(c.q.len, 1);
	assert_int_equal(c.q.f[c.q.head].n, f.n);
	assert_memory_equal(c.q.f[c.q.head].p, f.p, f.n);
	free(f.p);
	pump(&c, &a, 0);
	assert_int_equal(a.nrec, 1);
	assert_int_equal(a.rec[0].n, sizeof(big));
	assert_memory_equal(a.rec[0].p, big, sizeof(big));
	assert_null(memmem(wire.data, wire.len, "SECRET", 6));
	assert_int_equal(channel_unacked(c.ch), 0);
	assert_int_equal(channel_crypto_failures(c.ch), 0);
	assert_int_equal(channel_crypto_failures(a.ch), 0);
	/* Turned off: plaintext again. */
	channel_set_crypto(c.ch, NULL);
	buf_reset(&wire);
	assert_int_equal(channel_send(c.ch, PT_OUTPUT, "PLAIN-AGAIN", 11), 0);
	assert_non_null(memmem(wire.data, wire.len, "PLAIN-AGAIN", 11));
	buf_free(&wire);
	pair_free(&c, &a);
	keys_free(&k);
}

/* Different keys: nothing delivered, nothing acknowledged, whether the
 * frames come in order or not, however often they are resent. */
static void
test_crypto_wrong_key(void **state)
{
	struct end c, a;
	struct keys k;
	int i;

	(void)state;
	rng_state = 31;
	crypto_pair_new(&c, &a, &k, 1, NULL);
	for (i = 0; i < 5; i++) {
		assert_int_equal(channel_send(c.ch, PT_OUTPUT, "keys", 4), 0);
		assert_int_equal(channel_send(a.ch, PT_STDERR, "out", 3), 0);
	}
	for (i = 0; i < 5; i++) {
		pump(&c, &a, 1);
		fake_now += 1500;
		channel_tick(c.ch, fake_now);
		channel_tick(a.ch, fake_now);
	}
	pump(&c, &a, 1);
	assert_int_equal(c.delivered, 0);
	assert_int_equal(a.delivered, 0);
	assert_int_equal(c.acks_sent, 0);
	assert_int_equal(a.acks_sent, 0);
	assert_int_equal(channel_unacked(c.ch), 5);
	assert_int_equal(channel_unacked(a.ch), 5);
	assert_int_equal(channel_out_of_order(c.ch), 0);
	assert_int_equal(channel_out_of_order(a.ch), 0);
	assert_int_equal(channel_expected_seq(a.ch), 0);
	assert_true(channel_crypto_failures(c.ch) >= 25);
	assert_true(channel_crypto_failures(a.ch) >= 25);
	pair_free(&c, &a);
	keys_free(&k);
	/* A peer that sends plaintext where the table says sealed: the
	 * same, in order (seq 0) and out of order (seq 2). */
	pair_new(&c, &a, NULL);
	keys_new(&k, 0);
	channel_set_crypto(a.ch, k.agent);
	a.record = 1;
	for (i = 0; i < 3; i++)
		assert_int_equal(send_val(&c, (uint64_t)i), 0);
	free(fq_take(&c.q, 1).p);
	pump(&c, &a, 0);
	assert_int_equal(a.delivered, 0);
	assert_int_equal(a.acks_sent, 0);
	assert_int_equal(channel_crypto_failures(a.ch), 2);
	pair_free(&c, &a);
	keys_free(&k);
}

/* Loss and reordering with both ends sealing: each payload arrives
 * exactly once and in order (t_deliver checks the counter values). */
static void
test_crypto_lossy_reordering(void **state)
{
	struct end c, a;
	struct keys k;
	struct clientmsg m;
	uint64_t sent_c = 0, sent_a = 0, n = 2000;
	int iter;

	(void)state;
	rng_state = 0xfeed;
	crypto_pair_new(&c, &a, &k, 0, NULL);
	c.record = a.record = 0;
	c.drop_pct = a.drop_pct = 20;
	for (iter = 0; iter < 100000; iter++) {
		while (sent_c < n && channel_can_send(c.ch) &&
		    send_val(&c, sent_c) == 0)
			sent_c++;
		while (sent_a < n && channel_can_send(a.ch) &&
		    send_val(&a, sent_a) == 0)
			sent_a++;
		pump(&c, &a, 1);
		if (sent_c == n && sent_a == n && channel_unacked(c.ch) == 0 &&
		    channel_unacked(a.ch) == 0)
			break;
		fake_now += 50;
		channel_tick(c.ch, fake_now);
		channel_tick(a.ch, fake_now);
	}
	assert_true(iter < 1000);
	assert_int_equal(c.delivered, n);
	assert_int_equal(a.delivered, n);
	assert_true(channel_resends(c.ch) > 0);
	assert_int_equal(channel_out_of_order(c.ch), 0);
	assert_int_equal(channel_out_of_order(a.ch), 0);
	assert_int_equal(channel_crypto_failures(c.ch), 0);
	assert_int_equal(channel_crypto_failures(a.ch), 0);
	/* It really was sealed. */
	c.drop_pct = 0;
	assert_int_equal(send_val(&c, n), 0);
	assert_int_equal(clientmsg_decode(&m, c.q.f[c.q.head].p,
	    c.q.f[c.q.head].n, 1 << 20), 0);
	assert_int_equal(m.payload_len, 8 + SESSIONCRYPT_OVERHEAD);
	a.drop_pct = 0;
	assert_int_equal(send_val(&a, n), 0);
	pump(&c, &a, 0);
	assert_int_equal(a.delivered, n + 1);
	assert_int_equal(c.delivered, n + 1);
	/* Synchronous wiring with answers from inside deliver: sealing and
	 * opening re-entered through the callbacks. */
	c.direct = a.direct = 1;
	a.echo = 1;
	for (iter = 0; iter < 300; iter++)
		assert_int_equal(send_val(&c, n + 1 + (uint64_t)iter), 0);
	assert_int_equal(a.delivered, n + 301);
	assert_int_equal(c.delivered, n + 301);
	assert_int_equal(channel_crypto_failures(c.ch), 0);
	pair_free(&c, &a);
	keys_free(&k);
}

/* The client learns the key from the handshake: sealed frames that
 * arrived ahead of HandshakeComplete wait in the out-of-order buffer and
 * are opened when delivered; a forged one among them is dropped. */
static void
test_crypto_key_set_later(void **state)
{
	struct sessioncrypt *forger;
	uint8_t fkey[SESSIONCRYPT_KEY_LEN], id[16];
	struct frame f[5];
	struct end c, a;
	struct keys k;
	struct buf b, sealed;
	int i;

	(void)state;
	pair_new(&c, &a, NULL);
	keys_new(&k, 0);
	channel_set_crypto(a.ch, k.agent);
	c.record = 1;
	c.key_on_complete = k.client;
	for (i = 0; i < 3; i++)
		assert_int_equal(channel_send(a.ch, agent_msgs[2 + i].pt,
		    agent_msgs[2 + i].p, strlen(agent_msgs[2 + i].p)), 0);
	for (i = 0; i < 3; i++)
		f[i] = fq_take(&a.q, 0);
	/* 2 and 1 first: buffered as they came, the key unknown yet. */
	assert_int_equal(channel_receive(c.ch, f[2].p, f[2].n), 0);
	assert_int_equal(channel_receive(c.ch, f[1].p, f[1].n), 0);
	assert_int_equal(channel_out_of_order(c.ch), 2);
	assert_int_equal(c.nrec, 0);
	assert_int_equal(channel_receive(c.ch, f[0].p, f[0].n), 0);
	check_recorded(&c, agent_msgs + 2, 3);
	assert_int_equal(channel_out_of_order(c.ch), 0);
	for (i = 0; i < 3; i++)
		free(f[i].p);
	rec_clear(&c);

	/* Again with a forgery of seq 4 (sealed under another key) ahead of
	 * the HandshakeComplete at seq 3. */
	channel_set_crypto(c.ch, NULL);
	assert_int_equal(channel_send(a.ch, PT_HANDSHAKE_COMPLETE, "{}", 2),
	    0);
	assert_int_equal(channel_send(a.ch, PT_OUTPUT, "authentic", 9), 0);
	f[3] = fq_take(&a.q, 0);
	f[4] = fq_take(&a.q, 0);
	memset(fkey, 0x42, sizeof(fkey));
	assert_int_equal(sessioncrypt_new(&forger, SESSIONCRYPT_AGENT, fkey),
	    0);
	buf_init(&sealed, 0);
	buf_init(&b, 0);
	assert_int_equal(sessioncrypt_seal(forger, "forged", 6, &sealed), 0);
	uuid_v4(id);
	assert_int_equal(clientmsg_encode(&b, MT_OUTPUT_STREAM, 4, 0, id,
	    PT_OUTPUT, sealed.data, sealed.len), 0);
	assert_int_equal(channel_receive(c.ch, b.data, b.len), 0);
	assert_int_equal(channel_out_of_order(c.ch), 1);
	assert_int_equal(channel_receive(c.ch, f[3].p, f[3].n), 0);
	/* HandshakeComplete delivered, the forgery dropped, not delivered. */
	assert_int_equal(c.nrec, 1);
	assert_int_equal(channel_out_of_order(c.ch), 0);
	assert_int_equal(channel_expected_seq(c.ch), 4);
	assert_int_equal(channel_crypto_failures(c.ch), 1);
	/* The same forgery in order now: refused, not acknowledged. */
	fq_clear(&c.q);
	assert_int_equal(channel_receive(c.ch, b.data, b.len), 0);
	assert_int_equal(c.q.len, 0);
	assert_int_equal(channel_crypto_failures(c.ch), 2);
	/* The authentic one is taken. */
	assert_int_equal(channel_receive(c.ch, f[4].p, f[4].n), 0);
	assert_int_equal(c.nrec, 2);
	assert_int_equal(c.rec[1].n, 9);
	assert_memory_equal(c.rec[1].p, "authentic", 9);
	assert_int_equal(channel_expected_seq(c.ch), 5);
	free(f[3].p);
	free(f[4].p);
	buf_free(&b);
	buf_free(&sealed);
	sessioncrypt_free(forger);
	pair_free(&c, &a);
	keys_free(&k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order_both_ways),
		cmocka_unit_test(test_frames_and_ack_format),
		cmocka_unit_test(test_ack_removes_exactly_its_message),
		cmocka_unit_test(test_lossy_network),
		cmocka_unit_test(test_reordering),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_deliver_again),
		cmocka_unit_test(test_ack_write_fails),
		cmocka_unit_test(test_drain_again),
		cmocka_unit_test(test_full_window),
		cmocka_unit_test(test_ooo_window),
		cmocka_unit_test(test_rto_adapts),
		cmocka_unit_test(test_resend_all_after_reconnect),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_agent_tolerates_client_quirks),
		cmocka_unit_test(test_control_and_own_type),
		cmocka_unit_test(test_reentrant_echo),
		cmocka_unit_test(test_synchronous_wiring),
		cmocka_unit_test(test_crypto_back_to_back),
		cmocka_unit_test(test_crypto_wrong_key),
		cmocka_unit_test(test_crypto_lossy_reordering),
		cmocka_unit_test(test_crypto_key_set_later),
		cmocka_unit_test(test_byte_window),
		cmocka_unit_test(test_agent_digest_sampled),
		cmocka_unit_test(test_resend_paced_by_transport),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
