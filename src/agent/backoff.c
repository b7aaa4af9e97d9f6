#include "agent/backoff.h"

#include <openssl/rand.h>
#include <time.h>

void
agent_backoff_init(struct agent_backoff *b, unsigned base_ms,
    unsigned cap_ms)
{
	b->base_ms = base_ms > 0 ? base_ms : 1;
	b->cap_ms = cap_ms >= b->base_ms ? cap_ms : b->base_ms;
	b->attempt = 0;
}

void
agent_backoff_reset(struct agent_backoff *b)
{
	b->attempt = 0;
}

unsigned
agent_backoff_next_r(struct agent_backoff *b, uint32_t r)
{
	uint64_t d = b->base_ms;
	unsigned i;

	for (i = 0; i < b->attempt && d < b->cap_ms; i++)
		d *= 2;
	if (d > b->cap_ms)
		d = b->cap_ms;
	if (b->attempt < 64)
		b->attempt++;
	/* Jitter over the upper half spreads agents that lost the server
	 * at the same moment. */
	return (unsigned)(d / 2 + ((d - d / 2) * (uint64_t)r) / UINT32_MAX);
}

unsigned
agent_backoff_next(struct agent_backoff *b)
{
	uint32_t r;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)time(NULL) * 2654435761u;
	return agent_backoff_next_r(b, r);
}
