/* smux: frames checked byte for byte against xtaci/smux v1, a client and a
 * server wired back to back through in-memory byte queues, input split at
 * every boundary, the limits, and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/smux.h"

#define MAXSID 4096

/* One end: its session, what it wrote (bytes in flight to the peer), and
 * what it was given per stream. */
struct end {
	struct smux *m;
	struct buf wire;
	int refuse_write;	/* write answers PH_ERR_AGAIN */
	int fail_write;		/* write fails for good */
	int busy;		/* on_data answers PH_ERR_AGAIN */
	int accept;		/* on_open answers 0 */
	int echo;		/* on_data writes the bytes back */
	int close_on_data;	/* on_data closes its stream */
	int close_on_open;	/* on_open closes the stream itself */
	size_t max_piece;	/* largest write seen */
	size_t pieces;		/* writes seen */
	int opens, fins, errors, last_err;
	struct buf got[MAXSID];
	int fin[MAXSID];
};

static int
cb_write(void *ud, const uint8_t *p, size_t n)
{
	struct end *e = ud;

	if (e->fail_write)
		return PH_ERR_IO;
	if (e->refuse_write)
		return PH_ERR_AGAIN;
	if (n > e->max_piece)
		e->max_piece = n;
	e->pieces++;
	return buf_append(&e->wire, p, n);
}

static int
cb_open(void *ud, uint32_t sid)
{
	struct end *e = ud;

	e->opens++;
	if (e->close_on_open) {
		assert_int_equal(smux_close(e->m, sid), 0);
		return 0;
	}
	return e->accept ? 0 : -1;
}

static int
cb_data(void *ud, uint32_t sid, const uint8_t *p, size_t n)
{
	struct end *e = ud;

	assert_true(n > 0 && n <= SMUX_MAX_FRAME);
	if (e->busy)
		return PH_ERR_AGAIN;
	if (e->close_on_data) {
		assert_int_equal(smux_close(e->m, sid), 0);
		return 0;
	}
	if (sid < MAXSID)
		assert_int_equal(buf_append(&e->got[sid], p, n), 0);
	if (e->echo)
		assert_int_equal(smux_write(e->m, sid, p, n), 0);
	return 0;
}

static void
cb_fin(void *ud, uint32_t sid)
{
	struct end *e = ud;

	e->fins++;
	if (sid < MAXSID) {
		assert_int_equal(e->fin[sid], 0);
		e->fin[sid] = 1;
	}
}

static void
cb_error(void *ud, int err, const char *why)
{
	struct end *e = ud;

	assert_non_null(why);
	e->errors++;
	e->last_err = err;
}

static const struct smux_cbs cbs = {
	.write = cb_write, .on_open = cb_open, .on_data = cb_data,
	.on_fin = cb_fin, .on_error = cb_error,
};

static struct end *
end_new(enum smux_role role, const struct smux_limits *lim)
{
	struct end *e = calloc(1, sizeof(*e));
	size_t i;

	assert_non_null(e);
	buf_init(&e->wire, 0);
	for (i = 0; i < MAXSID; i++)
		buf_init(&e->got[i], 0);
	e->accept = 1;
	assert_int_equal(smux_new(&e->m, role, &cbs, e, lim), 0);
	return e;
}

static void
end_free(struct end *e)
{
	size_t i;

	smux_free(e->m);
	buf_free(&e->wire);
	for (i = 0; i < MAXSID; i++)
		buf_free(&e->got[i]);
	free(e);
}

/* Move what a wrote into b in pieces of at most piece bytes; bounded. */
static int
pump(struct end *a, struct end *b, size_t piece)
{
	size_t off = 0, k;
	int rc = 0;

	while (off < a->wire.len) {
		k = a->wire.len - off;
		if (k > piece)
			k = piece;
		if ((rc = smux_input(b->m, a->wire.data + off, k)) != 0)
			break;
		off += k;
	}
	buf_consume(&a->wire, off);
	return rc;
}

/* Both ways until nothing moves (at most 1000 rounds). */
static void
settle(struct end *c, struct end *s)
{
	int i;

	for (i = 0; i < 1000 && (c->wire.len > 0 || s->wire.len > 0); i++) {
		assert_int_equal(pump(c, s, 1024), 0);
		assert_int_equal(pump(s, c, 1024), 0);
	}
	assert_int_equal(c->wire.len, 0);
	assert_int_equal(s->wire.len, 0);
}

static void
expect_wire(struct end *e, const uint8_t *want, size_t n)
{
	assert_int_equal(e->wire.len, n);
	assert_memory_equal(e->wire.data, want, n);
	buf_reset(&e->wire);
}

/* Frames as xtaci/smux v1 writes them: ver 1, cmd, LE16 length, LE32 id. */
static void
test_frame_bytes(void **state)
{
	struct end *c = end_new(SMUX_CLIENT, NULL);
	struct end *s = end_new(SMUX_SERVER, NULL);
	static const uint8_t syn3[] = { 1, 0, 0, 0, 3, 0, 0, 0 };
	static const uint8_t syn5[] = { 1, 0, 0, 0, 5, 0, 0, 0 };
	static const uint8_t psh3[] = { 1, 2, 2, 0, 3, 0, 0, 0, 'h', 'i' };
	static const uint8_t fin3[] = { 1, 1, 0, 0, 3, 0, 0, 0 };
	static const uint8_t nop[] = { 1, 3, 0, 0, 0, 0, 0, 0 };
	static const uint8_t syn2[] = { 1, 0, 0, 0, 2, 0, 0, 0 };
	uint32_t sid;

	(void)state;
	assert_int_equal(smux_open(c->m, &sid), 0);
	assert_int_equal(sid, 3);
	expect_wire(c, syn3, sizeof(syn3));
	assert_int_equal(smux_write(c->m, 3, "hi", 2), 0);
	expect_wire(c, psh3, sizeof(psh3));
	assert_int_equal(smux_open(c->m, &sid), 0);
	assert_int_equal(sid, 5);
	expect_wire(c, syn5, sizeof(syn5));
	assert_int_equal(smux_close(c->m, 3), 0);
	expect_wire(c, fin3, sizeof(fin3));
	assert_int_equal(smux_nop(c->m), 0);
	expect_wire(c, nop, sizeof(nop));
	assert_int_equal(smux_open(s->m, &sid), 0);
	assert_int_equal(sid, 2);
	expect_wire(s, syn2, sizeof(syn2));
	/* A 70000-byte write: frames of 32768, 32768 and 4464 bytes. */
	{
		uint8_t *big = calloc(1, 70000);
		size_t off = 0;
		static const size_t lens[] = { 32768, 32768, 4464 };
		int i;

		assert_non_null(big);
		assert_int_equal(smux_write(c->m, 5, big, 70000), 0);
		assert_int_equal(c->wire.len, 70000 + 3 * SMUX_HDR_LEN);
		for (i = 0; i < 3; i++) {
			assert_int_equal(c->wire.data[off], 1);
			assert_int_equal(c->wire.data[off + 1], 2);
			assert_int_equal(c->wire.data[off + 2] |
			    c->wire.data[off + 3] << 8, lens[i]);
			assert_int_equal(c->wire.data[off + 4], 5);
			off += SMUX_HDR_LEN + lens[i];
		}
		assert_true(c->max_piece <= 1024);
		free(big);
	}
	end_free(c);
	end_free(s);
}

static void
test_round_trip(void **state)
{
	struct end *c = end_new(SMUX_CLIENT, NULL);
	struct end *s = end_new(SMUX_SERVER, NULL);
	uint8_t data[100000];
	uint32_t sid;
	size_t i;

	(void)state;
	s->echo = 1;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	assert_int_equal(smux_open(c->m, &sid), 0);
	assert_int_equal(smux_write(c->m, sid, data, sizeof(data)), 0);
	settle(c, s);
	assert_int_equal(s->opens, 1);
	assert_int_equal(s->got[sid].len, sizeof(data));
	assert_memory_equal(s->got[sid].data, data, sizeof(data));
	assert_int_equal(c->got[sid].len, sizeof(data));
	assert_memory_equal(c->got[sid].data, data, sizeof(data));
	assert_int_equal(smux_dropped(c->m), 0);
	assert_int_equal(smux_dropped(s->m), 0);
	end_free(c);
	end_free(s);
}

/* One byte stream of several frames, fed in two pieces split at every
 * offset, and one byte at a time. */
static void
test_split_everywhere(void **state)
{
	struct end *c = end_new(SMUX_CLIENT, NULL);
	struct buf stream;
	uint8_t data[3000];
	uint32_t a, b;
	size_t k, i;

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	assert_int_equal(smux_open(c->m, &a), 0);
	assert_int_equal(smux_write(c->m, a, "hello", 5), 0);
	assert_int_equal(smux_open(c->m, &b), 0);
	assert_int_equal(smux_write(c->m, b, data, sizeof(data)), 0);
	assert_int_equal(smux_nop(c->m), 0);
	assert_int_equal(smux_write(c->m, a, " world", 6), 0);
	assert_int_equal(smux_close(c->m, a), 0);
	buf_init(&stream, 0);
	assert_int_equal(buf_append(&stream, c->wire.data, c->wire.len), 0);
	for (k = 0; k <= stream.len + 1; k++) {
		struct end *s = end_new(SMUX_SERVER, NULL);

		if (k <= stream.len) {
			assert_int_equal(smux_input(s->m, stream.data, k), 0);
			assert_int_equal(smux_input(s->m, stream.data + k,
			    stream.len - k), 0);
		} else
			for (i = 0; i < stream.len; i++)
				assert_int_equal(smux_input(s->m,
				    stream.data + i, 1), 0);
		assert_int_equal(s->opens, 2);
		assert_int_equal(s->got[a].len, 11);
		assert_memory_equal(s->got[a].data, "hello world", 11);
		assert_int_equal(s->got[b].len, sizeof(data));
		assert_memory_equal(s->got[b].data, data, sizeof(data));
		assert_int_equal(s->fin[a], 1);
		assert_int_equal(s->fin[b], 0);
		assert_int_equal(s->errors, 0);
		end_free(s);
	}
	buf_free(&stream);
	end_free(c);
}

static void
test_many_streams(void **state)
{
	struct end *c = end_new(SMUX_CLIENT, NULL);
	struct end *s = end_new(SMUX_SERVER, NULL);
	uint32_t sids[600];
	char msg[32];
	size_t i, n;

	(void)state;
	s->echo = 1;
	for (i = 0; i < 600; i++) {
		assert_int_equal(smux_open(c->m, &sids[i]), 0);
		assert_int_equal(sids[i], 3 + 2 * i);
		n = (size_t)snprintf(msg, sizeof(msg), "stream %zu", i);
		assert_int_equal(smux_write(c->m, sids[i], msg, n), 0);
		if (i % 50 == 0)
			settle(c, s);
	}
	settle(c, s);
	assert_int_equal(smux_streams(s->m), 600);
	for (i = 0; i < 600; i++) {
		n = (size_t)snprintf(msg, sizeof(msg), "stream %zu", i);
		assert_int_equal(c->got[sids[i]].len, n);
		assert_memory_equal(c->got[sids[i]].data, msg, n);
		assert_int_equal(smux_close(c->m, sids[i]), 0);
	}
	settle(c, s);
	assert_int_equal(s->fins, 600);
	assert_int_equal(smux_streams(c->m), 0);
	for (i = 0; i < 600; i++)
		assert_int_equal(smux_close(s->m, sids[i]), 0);
	settle(c, s);
	assert_int_equal(smux_streams(s->m), 0);
	/* FINs for streams the client already forgot are dropped. */
	assert_int_equal(smux_dropped(c->m), 600);
	assert_int_equal(c->fins, 0);
	end_free(c);
	end_free(s);
}

static void
test_fin_both_ways(void **state)
{
	struct end *c = end_new(SMUX_CLIENT, NULL);
	struct end *s = end_new(SMUX_SERVER, NULL);
	uint32_t a, b;

	(void)state;
	assert_int_equal(smux_open(c->m, &a), 0);
	assert_int_equal(smux_open(c->m, &b), 0);
	settle(c, s);
	/* Server closes a: the client hears FIN and may still write. */
	assert_int_equal(smux_write(s->m, a, "bye", 3), 0);
	assert_int_equal(smux_close(s->m, a), 0);
	settle(c, s);
	assert_int_equal(c->fin[a], 1);
	assert_memory_equal(c->got[a].data, "bye", 3);
	assert_true(smux_is_open(c->m, a));
	assert_int_equal(smux_write(c->m, a, "late", 4), 0);
	settle(c, s);
	assert_int_equal(s->got[a].len, 0);	/* dropped: closed there */
	assert_int_equal(smux_dropped(s->m), 1);
	assert_int_equal(smux_close(c->m, a), 0);
	settle(c, s);
	/* Client closes b. */
	assert_int_equal(smux_close(c->m, b), 0);
	settle(c, s);
	assert_int_equal(s->fin[b], 1);
	assert_int_equal(smux_close(s->m, b), 0);
	assert_int_equal(smux_close(s->m, b), PH_ERR_NOTFOUND);
	assert_int_equal(smux_write(s->m, b, "x", 1), PH_ERR_NOTFOUND);
	settle(c, s);
	assert_int_equal(smux_streams(c->m), 0);
	assert_int_equal(smux_streams(s->m), 0);
	end_free(c);
	end_free(s);
}

/* A slow consumer: its data is kept, input is refused at the limits, and
 * resume delivers everything in order, FIN last. */
static void
test_receive_limits(void **state)
{
	struct smux_limits lim = { .max_stream_buffer = 10000,
	    .max_recv_buffer = 15000 };
	struct end *c = end_new(SMUX_CLIENT, NULL);
	struct end *s = end_new(SMUX_SERVER, &lim);
	uint8_t data[40000];
	uint32_t a, b;
	size_t i, off = 0;
	int rc = 0, rounds;

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i % 253);
	assert_int_equal(smux_open(c->m, &a), 0);
	assert_int_equal(smux_open(c->m, &b), 0);
	settle(c, s);
	s->busy = 1;
	assert_int_equal(smux_write(c->m, a, data, sizeof(data)), 0);
	assert_int_equal(smux_close(c->m, a), 0);
	/* Feed 1000-byte pieces until refused. */
	while (off < c->wire.len) {
		size_t k = c->wire.len - off > 1000 ? 1000 : c->wire.len - off;

		if ((rc = smux_input(s->m, c->wire.data + off, k)) != 0)
			break;
		off += k;
	}
	assert_int_equal(rc, PH_ERR_AGAIN);
	assert_false(smux_can_input(s->m));
	assert_true(smux_buffered(s->m, a) >= 10000);
	/* Past the limit by at most one frame. */
	assert_true(smux_buffered(s->m, a) <= SMUX_MAX_FRAME + 1000);
	assert_int_equal(s->fin[a], 0);
	/* Resume while still busy: nothing changes. */
	smux_resume(s->m, 0);
	assert_false(smux_can_input(s->m));
	s->busy = 0;
	smux_resume(s->m, a);
	assert_true(smux_can_input(s->m));
	assert_int_equal(smux_buffered(s->m, 0), 0);
	/* The rest goes through now; bounded rounds. */
	for (rounds = 0; rounds < 100 && off < c->wire.len; rounds++) {
		size_t k = c->wire.len - off > 1000 ? 1000 : c->wire.len - off;

		rc = smux_input(s->m, c->wire.data + off, k);
		assert_true(rc == 0 || rc == PH_ERR_AGAIN);
		if (rc == 0)
			off += k;
		else
			smux_resume(s->m, 0);
	}
	assert_int_equal(off, c->wire.len);
	assert_int_equal(s->got[a].len, sizeof(data));
	assert_memory_equal(s->got[a].data, data, sizeof(data));
	assert_int_equal(s->fin[a], 1);
	buf_reset(&c->wire);

	/* The total limit: two busy streams, each below its own. */
	s->busy = 1;
	assert_int_equal(smux_open(c->m, &a), 0);
	assert_int_equal(smux_write(c->m, a, data, 8000), 0);
	assert_int_equal(smux_write(c->m, b, data, 8000), 0);
	assert_int_equal(smux_write(c->m, a, data, 3000), 0);
	rc = pump(c, s, 1000);
	assert_int_equal(rc, PH_ERR_AGAIN);
	assert_true(smux_buffered(s->m, 0) >= 15000);
	assert_true(smux_buffered(s->m, a) < 10000);
	assert_true(smux_buffered(s->m, b) < 10000);
	/* Closing a stream frees its data. */
	assert_int_equal(smux_close(s->m, b), 0);
	assert_true(smux_can_input(s->m));
	assert_int_equal(pump(c, s, 1000), 0);
	s->busy = 0;
	smux_resume(s->m, 0);
	assert_int_equal(s->got[a].len, 11000);
	end_free(c);
	end_free(s);
}

/* A write of smux_write_unit bytes goes to the transport as one whole
 * write_chunk: one data-channel message, no tail of frame headers. */
static void
test_write_unit(void **state)
{
	struct smux_limits lim = { .write_chunk = 65536,
	    .max_out_bytes = (size_t)1 << 20 };
	struct end *c = end_new(SMUX_CLIENT, &lim);
	static uint8_t data[65536];
	uint32_t a;
	size_t u;

	(void)state;
	assert_int_equal(smux_write_unit(c->m), 65536 - 2 * SMUX_HDR_LEN);
	assert_int_equal(smux_open(c->m, &a), 0);
	c->pieces = 0;
	c->wire.len = 0;
	u = smux_write_unit(c->m);
	assert_int_equal(smux_write(c->m, a, data, u), 0);
	assert_int_equal(c->pieces, 1);
	assert_int_equal(c->wire.len, 65536);
	end_free(c);
	/* The default chunk (1024 bytes) holds one frame. */
	c = end_new(SMUX_CLIENT, NULL);
	assert_int_equal(smux_write_unit(c->m), 1024 - SMUX_HDR_LEN);
	end_free(c);
}

/* The sending side: a refusing transport fills the queue to its limit,
 * then smux_write says no until the transport drains. */
static void
test_send_limits(void **state)
{
	struct smux_limits lim = { .max_out_bytes = 5000 };
	struct end *c = end_new(SMUX_CLIENT, &lim);
	uint8_t data[6000] = { 0 };
	uint32_t a;
	size_t room;

	(void)state;
	assert_int_equal(smux_open(c->m, &a), 0);
	c->refuse_write = 1;
	room = smux_write_room(c->m);
	assert_int_equal(room, 5000 - SMUX_HDR_LEN);
	assert_int_equal(smux_write(c->m, a, data, room + 1), PH_ERR_AGAIN);
	assert_int_equal(smux_write(c->m, a, data, room), 0);
	assert_int_equal(smux_write_room(c->m), 0);
	assert_int_equal(smux_out_pending(c->m), 5000);
	assert_int_equal(smux_write(c->m, a, data, 1), PH_ERR_AGAIN);
	/* Control frames still go in (bounded by the streams). */
	assert_int_equal(smux_close(c->m, a), 0);
	c->refuse_write = 0;
	assert_int_equal(smux_flush(c->m), 0);
	assert_int_equal(smux_out_pending(c->m), 0);
	assert_int_equal(c->wire.len, 8 + 5000 + 8);
	assert_true(c->max_piece <= 1024);
	/* A write_room worth of data always fits in one call. */
	room = smux_write_room(c->m);
	assert_true(room > 0);
	/* max_streams */
	end_free(c);
	{
		struct smux_limits l2 = { .max_streams = 2 };
		struct end *s = end_new(SMUX_SERVER, &l2);
		static const uint8_t syns[] = {
			1, 0, 0, 0, 1, 0, 0, 0,
			1, 0, 0, 0, 3, 0, 0, 0,
			1, 0, 0, 0, 5, 0, 0, 0,
		};
		static const uint8_t fin5[] = { 1, 1, 0, 0, 5, 0, 0, 0 };

		assert_int_equal(smux_input(s->m, syns, sizeof(syns)), 0);
		assert_int_equal(s->opens, 2);
		expect_wire(s, fin5, sizeof(fin5));
		assert_int_equal(smux_open(s->m, &a), PH_ERR_TOOBIG);
		end_free(s);
	}
}

static void
feed_fatal(enum smux_role role, const uint8_t *p, size_t n)
{
	struct end *e = end_new(role, NULL);
	static const uint8_t nop[] = { 1, 3, 0, 0, 0, 0, 0, 0 };

	assert_int_equal(smux_input(e->m, p, n), PH_ERR_INVALID);
	assert_int_equal(e->errors, 1);
	assert_int_equal(e->last_err, PH_ERR_INVALID);
	assert_int_equal(smux_input(e->m, nop, sizeof(nop)), PH_ERR_STATE);
	assert_int_equal(smux_write(e->m, 3, "x", 1), PH_ERR_STATE);
	assert_int_equal(e->errors, 1);
	end_free(e);
}

static void
test_garbage_fatal(void **state)
{
	static const uint8_t huge[] = { 1, 2, 0xff, 0xff, 3, 0, 0, 0 };
	static const uint8_t over[] = { 1, 2, 0x01, 0x80, 3, 0, 0, 0 };
	static const uint8_t upd[] = { 1, 4, 8, 0, 3, 0, 0, 0 };
	static const uint8_t cmd5[] = { 1, 5, 0, 0, 3, 0, 0, 0 };
	static const uint8_t cmdff[] = { 1, 0xff, 0, 0, 3, 0, 0, 0 };
	static const uint8_t v2[] = { 2, 3, 0, 0, 0, 0, 0, 0 };
	static const uint8_t v0[] = { 0, 0, 0, 0, 3, 0, 0, 0 };
	static const uint8_t synlen[] = { 1, 0, 1, 0, 3, 0, 0, 0, 'x' };
	static const uint8_t finlen[] = { 1, 1, 4, 0, 3, 0, 0, 0 };
	static const uint8_t noplen[] = { 1, 3, 1, 0, 0, 0, 0, 0 };
	static const uint8_t http[] = "GET / HTTP/1.1\r\n";
	static const uint8_t ok32768[] = { 1, 2, 0x00, 0x80, 3, 0, 0, 0 };
	struct end *e;

	(void)state;
	feed_fatal(SMUX_SERVER, huge, sizeof(huge));
	feed_fatal(SMUX_CLIENT, huge, sizeof(huge));
	feed_fatal(SMUX_SERVER, over, sizeof(over));
	feed_fatal(SMUX_SERVER, upd, sizeof(upd));
	feed_fatal(SMUX_SERVER, cmd5, sizeof(cmd5));
	feed_fatal(SMUX_SERVER, cmdff, sizeof(cmdff));
	feed_fatal(SMUX_SERVER, v2, sizeof(v2));
	feed_fatal(SMUX_SERVER, v0, sizeof(v0));
	feed_fatal(SMUX_SERVER, synlen, sizeof(synlen));
	feed_fatal(SMUX_SERVER, finlen, sizeof(finlen));
	feed_fatal(SMUX_CLIENT, noplen, sizeof(noplen));
	feed_fatal(SMUX_SERVER, http, sizeof(http) - 1);
	/* 32768 is the largest accepted: a header alone is fine. */
	e = end_new(SMUX_SERVER, NULL);
	assert_int_equal(smux_input(e->m, ok32768, sizeof(ok32768)), 0);
	assert_int_equal(e->errors, 0);
	end_free(e);
}

/* Hostile but not fatal: the stream is refused or the frame dropped, the
 * session lives on. */
static void
test_garbage_streams(void **state)
{
	static const uint8_t psh9[] = { 1, 2, 3, 0, 9, 0, 0, 0, 'a', 'b', 'c' };
	static const uint8_t fin9[] = { 1, 1, 0, 0, 9, 0, 0, 0 };
	static const uint8_t syn3[] = { 1, 0, 0, 0, 3, 0, 0, 0 };
	static const uint8_t syn4[] = { 1, 0, 0, 0, 4, 0, 0, 0 };
	static const uint8_t fin4[] = { 1, 1, 0, 0, 4, 0, 0, 0 };
	static const uint8_t syn0[] = { 1, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t fin0[] = { 1, 1, 0, 0, 0, 0, 0, 0 };
	static const uint8_t fin3[] = { 1, 1, 0, 0, 3, 0, 0, 0 };
	static const uint8_t psh3[] = { 1, 2, 1, 0, 3, 0, 0, 0, 'z' };
	static const uint8_t psh0[] = { 1, 2, 0, 0, 3, 0, 0, 0 };
	struct end *s = end_new(SMUX_SERVER, NULL);
	struct end *c = end_new(SMUX_CLIENT, NULL);

	(void)state;
	/* Data and FIN for a stream never opened: dropped. */
	assert_int_equal(smux_input(s->m, psh9, sizeof(psh9)), 0);
	assert_int_equal(smux_input(s->m, fin9, sizeof(fin9)), 0);
	assert_int_equal(s->got[9].len, 0);
	assert_int_equal(s->fins, 0);
	assert_int_equal(smux_dropped(s->m), 2);
	/* SYN for an open id: ignored. */
	assert_int_equal(smux_input(s->m, syn3, sizeof(syn3)), 0);
	assert_int_equal(smux_input(s->m, syn3, sizeof(syn3)), 0);
	assert_int_equal(s->opens, 1);
	assert_int_equal(smux_streams(s->m), 1);
	/* The server's own parity and id 0: refused with FIN. */
	assert_int_equal(smux_input(s->m, syn4, sizeof(syn4)), 0);
	expect_wire(s, fin4, sizeof(fin4));
	assert_int_equal(smux_input(s->m, syn0, sizeof(syn0)), 0);
	expect_wire(s, fin0, sizeof(fin0));
	assert_int_equal(s->opens, 1);
	/* An empty PSH is skipped (xtaci), data still flows. */
	assert_int_equal(smux_input(s->m, psh0, sizeof(psh0)), 0);
	assert_int_equal(smux_input(s->m, psh3, sizeof(psh3)), 0);
	assert_int_equal(s->got[3].len, 1);
	/* FIN twice: told once; data after FIN dropped. */
	assert_int_equal(smux_input(s->m, fin3, sizeof(fin3)), 0);
	assert_int_equal(smux_input(s->m, fin3, sizeof(fin3)), 0);
	assert_int_equal(smux_input(s->m, psh3, sizeof(psh3)), 0);
	assert_int_equal(s->fins, 1);
	assert_int_equal(s->got[3].len, 1);
	assert_int_equal(s->errors, 0);

	/* A client refuses the server's streams (no on_open use by the
	 * plugin), and odd ids are its own. */
	c->accept = 0;
	assert_int_equal(smux_input(c->m, syn4, sizeof(syn4)), 0);
	expect_wire(c, fin4, sizeof(fin4));
	assert_int_equal(smux_input(c->m, syn3, sizeof(syn3)), 0);
	expect_wire(c, fin3, sizeof(fin3));
	assert_int_equal(smux_streams(c->m), 0);
	assert_int_equal(c->errors, 0);
	end_free(s);
	end_free(c);
}

/* Callbacks that close streams while being called. */
static void
test_reentry(void **state)
{
	struct end *c = end_new(SMUX_CLIENT, NULL);
	struct end *s = end_new(SMUX_SERVER, NULL);
	uint32_t a, b;

	(void)state;
	s->close_on_open = 1;
	assert_int_equal(smux_open(c->m, &a), 0);
	assert_int_equal(smux_write(c->m, a, "data", 4), 0);
	settle(c, s);
	assert_int_equal(c->fin[a], 1);
	assert_int_equal(smux_streams(s->m), 0);
	s->close_on_open = 0;
	s->close_on_data = 1;
	assert_int_equal(smux_open(c->m, &b), 0);
	assert_int_equal(smux_write(c->m, b, "one", 3), 0);
	assert_int_equal(smux_write(c->m, b, "two", 3), 0);
	settle(c, s);
	assert_int_equal(c->fin[b], 1);
	/* Buffered data, then the consumer closes on resume. */
	s->close_on_data = 0;
	s->busy = 1;
	assert_int_equal(smux_close(c->m, a), 0);
	assert_int_equal(smux_close(c->m, b), 0);
	assert_int_equal(smux_open(c->m, &a), 0);
	assert_int_equal(smux_write(c->m, a, "one", 3), 0);
	assert_int_equal(smux_write(c->m, a, "two", 3), 0);
	assert_int_equal(smux_close(c->m, a), 0);
	settle(c, s);
	assert_int_equal(smux_buffered(s->m, a), 6);
	s->busy = 0;
	s->close_on_data = 1;
	smux_resume(s->m, 0);
	assert_int_equal(smux_streams(s->m), 0);
	assert_int_equal(s->fin[a], 0);
	/* A transport that fails for good kills the session once. */
	assert_int_equal(smux_open(c->m, &a), 0);
	c->fail_write = 1;
	assert_int_equal(smux_write(c->m, a, "x", 1), PH_ERR_IO);
	assert_int_equal(c->errors, 1);
	assert_int_equal(smux_nop(c->m), PH_ERR_STATE);
	end_free(c);
	end_free(s);
}

static void
test_keepalive(void **state)
{
	struct end *c = end_new(SMUX_CLIENT, NULL);
	static const uint8_t nop[] = { 1, 3, 0, 0, 0, 0, 0, 0 };

	(void)state;
	/* Off by default: ticks do nothing. */
	assert_int_equal(smux_tick(c->m, 0), 0);
	assert_int_equal(smux_tick(c->m, 100000), 0);
	assert_int_equal(c->wire.len, 0);
	smux_set_keepalive(c->m, 10000, 30000);
	assert_int_equal(smux_tick(c->m, 1000), 0);
	assert_int_equal(c->wire.len, 0);
	assert_int_equal(smux_tick(c->m, 11000), 0);
	expect_wire(c, nop, sizeof(nop));
	assert_int_equal(smux_tick(c->m, 15000), 0);
	assert_int_equal(c->wire.len, 0);
	/* The peer's NOP keeps it alive. */
	assert_int_equal(smux_input(c->m, nop, sizeof(nop)), 0);
	assert_int_equal(smux_tick(c->m, 25000), 0);
	buf_reset(&c->wire);
	assert_int_equal(smux_tick(c->m, 54000), 0);
	assert_int_equal(smux_tick(c->m, 55000), PH_ERR_EXPIRED);
	smux_set_keepalive(c->m, 0, 0);
	assert_int_equal(smux_tick(c->m, 900000), 0);
	end_free(c);
}

/* Random bytes, some of them after a valid opening: never a crash, and
 * the session either lives or died with one on_error. Bounded. */
static void
test_random_input(void **state)
{
	uint8_t b[512];
	unsigned seed = 12345;
	int round, rc;
	size_t i;

	(void)state;
	for (round = 0; round < 2000; round++) {
		struct end *s = end_new(round % 2 ? SMUX_SERVER : SMUX_CLIENT,
		    NULL);

		for (i = 0; i < sizeof(b); i++) {
			seed = seed * 1103515245u + 12345u;
			b[i] = (uint8_t)(seed >> 16);
			/* Bias towards valid headers. */
			if (round % 3 == 0 && i % 8 == 0)
				b[i] = 1;
			if (round % 3 == 0 && i % 8 == 1)
				b[i] &= 3;
			if (round % 3 == 0 && i % 8 == 3)
				b[i] = 0;
		}
		rc = smux_input(s->m, b, (seed >> 8) % sizeof(b));
		assert_true(rc == 0 || rc == PH_ERR_INVALID);
		assert_int_equal(s->errors, rc == 0 ? 0 : 1);
		end_free(s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_bytes),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_many_streams),
		cmocka_unit_test(test_fin_both_ways),
		cmocka_unit_test(test_receive_limits),
		cmocka_unit_test(test_send_limits),
		cmocka_unit_test(test_write_unit),
		cmocka_unit_test(test_garbage_fatal),
		cmocka_unit_test(test_garbage_streams),
		cmocka_unit_test(test_reentry),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_random_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
