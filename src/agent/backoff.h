/* backoff: the reconnect schedule of the control and data channels:
 * jittered exponential back-off, first delay 0.5-1 s, doubling, capped. */
#ifndef PORTHOLE_AGENT_BACKOFF_H
#define PORTHOLE_AGENT_BACKOFF_H

#include <stdint.h>

#define AGENT_BACKOFF_BASE_MS 1000u
#define AGENT_BACKOFF_CAP_MS 30000u
/* A connection that stayed up this long restarts the schedule. */
#define AGENT_BACKOFF_RESET_MS 60000u

struct agent_backoff {
	unsigned base_ms;  /* the first delay is drawn from [base/2, base] */
	unsigned cap_ms;   /* no delay exceeds this */
	unsigned attempt;  /* delays handed out since the last reset */
};

void agent_backoff_init(struct agent_backoff *b, unsigned base_ms,
    unsigned cap_ms);
void agent_backoff_reset(struct agent_backoff *b);
/* The next delay: r (uniform over 32 bits) picks the jitter, so the
 * delay is in [d/2, d] with d = min(cap, base * 2^attempt). */
unsigned agent_backoff_next_r(struct agent_backoff *b, uint32_t r);
/* Same with a random r. */
unsigned agent_backoff_next(struct agent_backoff *b);

#endif
