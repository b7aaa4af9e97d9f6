/* fuzz_smux: one end of the smux v1 multiplexer (src/common/smux.c) driven
 * by an operation sequence: peer bytes in any chunking, opens, writes,
 * closes, a transport that refuses, a consumer that is busy, resumes,
 * keepalive ticks. Small limits make the full-buffer paths reachable.
 * Checked: buffers stay within their limits, pieces handed to the
 * transport are at most write_chunk bytes, on_error comes at most once,
 * and every byte this end writes parses cleanly at a peer of the other
 * role (a second session that must never see a protocol error).
 *
 * Input: flags byte (bit 0: server role, else client), then operations:
 * op byte, then its operands (see the switch). A stream operand is one
 * byte: below 128 it picks one of the streams seen so far, else a raw
 * 32-bit id follows. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/smux.h"
#include "fuzzin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NIDS		16
#define CHUNK		256
#define MAX_IN		4096

static const struct smux_limits lim = {
	.max_stream_buffer = 3000,
	.max_recv_buffer = 5000,
	.max_out_bytes = 4000,
	.write_chunk = CHUNK,
	.max_frame = SMUX_MAX_FRAME,
	.max_streams = 8,
};

struct fx {
	struct smux *m;
	struct smux *peer;	/* checks what m writes */
	int refuse;
	int busy;
	int errors;
	uint32_t ids[NIDS];
	size_t nids;
};

static void
remember(struct fx *f, uint32_t sid)
{
	f->ids[f->nids++ % NIDS] = sid;
}

static int
fx_write(void *ud, const uint8_t *p, size_t n)
{
	struct fx *f = ud;
	int rc;

	if (n == 0 || n > CHUNK)
		abort();
	if (f->refuse)
		return PH_ERR_AGAIN;
	/* The checking peer never holds input back, never errs. */
	rc = smux_input(f->peer, p, n);
	if (rc != 0)
		abort();
	return 0;
}

static int
fx_open(void *ud, uint32_t sid)
{
	struct fx *f = ud;

	remember(f, sid);
	return sid % 7 == 0 ? -1 : 0;
}

static int
fx_data(void *ud, uint32_t sid, const uint8_t *p, size_t n)
{
	struct fx *f = ud;

	(void)sid;
	if (n == 0 || n > SMUX_MAX_FRAME || p == NULL)
		abort();
	return f->busy ? PH_ERR_AGAIN : 0;
}

static void
fx_error(void *ud, int err, const char *why)
{
	struct fx *f = ud;

	(void)err;
	if (why == NULL || ++f->errors > 1)
		abort();
}

static int
peer_write(void *ud, const uint8_t *p, size_t n)
{
	(void)ud;
	(void)p;
	(void)n;
	return 0;
}

static int
peer_open(void *ud, uint32_t sid)
{
	(void)ud;
	(void)sid;
	return 0;
}

static int
peer_data(void *ud, uint32_t sid, const uint8_t *p, size_t n)
{
	(void)ud;
	(void)sid;
	(void)p;
	(void)n;
	return 0;
}

static void
peer_error(void *ud, int err, const char *why)
{
	(void)ud;
	(void)err;
	(void)why;
	abort();
}

static uint32_t
pick(struct fuzzin *in, struct fx *f)
{
	uint8_t k = fuzzin_u8(in);

	if (k < 128)
		return f->nids > 0 ? f->ids[k % (f->nids < NIDS ? f->nids :
		    NIDS)] : 3;
	return fuzzin_u32(in);
}

static void
check(struct fx *f)
{
	/* Past a limit by at most one input chunk plus one frame. */
	if (smux_buffered(f->m, 0) > lim.max_recv_buffer + MAX_IN +
	    SMUX_MAX_FRAME)
		abort();
	/* Data up to max_out_bytes, control frames beyond it only for
	 * streams (SYN and FIN) and keepalive. */
	if (smux_out_pending(f->m) > lim.max_out_bytes + (1 << 16))
		abort();
	if (smux_streams(f->m) > lim.max_streams)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct smux_cbs cbs = {
		.write = fx_write, .on_open = fx_open, .on_data = fx_data,
		.on_error = fx_error,
	};
	static const struct smux_cbs pcbs = {
		.write = peer_write, .on_open = peer_open, .on_data = peer_data,
		.on_error = peer_error,
	};
	static uint8_t zeros[SMUX_MAX_FRAME + 1];
	struct fuzzin in = { data, size };
	struct fx f;
	enum smux_role role;
	const uint8_t *p;
	size_t n;
	uint64_t now = 0;
	uint32_t sid;
	int ops, rc;

	memset(&f, 0, sizeof(f));
	role = fuzzin_u8(&in) & 1 ? SMUX_SERVER : SMUX_CLIENT;
	if (smux_new(&f.m, role, &cbs, &f, &lim) != 0)
		return 0;
	if (smux_new(&f.peer, role == SMUX_SERVER ? SMUX_CLIENT : SMUX_SERVER,
	    &pcbs, NULL, NULL) != 0) {
		smux_free(f.m);
		return 0;
	}
	for (ops = 0; ops < 4096 && in.n > 0; ops++) {
		switch (fuzzin_u8(&in) % 11) {
		case 0:
			p = fuzzin_bytes(&in, MAX_IN, &n);
			rc = smux_input(f.m, p, n);
			if (rc != 0 && rc != PH_ERR_AGAIN &&
			    rc != PH_ERR_INVALID && rc != PH_ERR_STATE)
				abort();
			if (rc == PH_ERR_AGAIN && smux_buffered(f.m, 0) == 0)
				abort();
			break;
		case 1:
			if (smux_open(f.m, &sid) == 0) {
				if (sid % 2 != (role == SMUX_CLIENT))
					abort();
				remember(&f, sid);
			}
			break;
		case 2:
			sid = pick(&in, &f);
			n = fuzzin_u16(&in) % (sizeof(zeros));
			rc = smux_write(f.m, sid, zeros, n);
			if (rc == PH_ERR_AGAIN && n <= smux_write_room(f.m))
				abort();
			break;
		case 3:
			(void)smux_close(f.m, pick(&in, &f));
			break;
		case 4:
			f.refuse = 0;
			(void)smux_flush(f.m);
			break;
		case 5:
			f.refuse = !f.refuse;
			break;
		case 6:
			f.busy = !f.busy;
			break;
		case 7:
			sid = fuzzin_u8(&in) & 1 ? 0 : pick(&in, &f);
			smux_resume(f.m, sid);
			break;
		case 8:
			now += fuzzin_u16(&in);
			rc = smux_tick(f.m, now);
			if (rc != 0 && rc != PH_ERR_EXPIRED &&
			    rc != PH_ERR_STATE)
				abort();
			break;
		case 9:
			smux_set_keepalive(f.m, fuzzin_u16(&in),
			    fuzzin_u16(&in));
			break;
		case 10:
			(void)smux_nop(f.m);
			break;
		}
		check(&f);
	}
	smux_free(f.m);
	smux_free(f.peer);
	return 0;
}
