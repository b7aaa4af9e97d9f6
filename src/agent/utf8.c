#include "agent/utf8.h"

/* Sequence length announced by a lead byte; 0 for a continuation byte or a
 * byte that never starts a sequence. */
static size_t
utf8_seq_len(uint8_t b)
{
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		return 2;
	if (b >= 0xe0 && b <= 0xef)
		return 3;
	if (b >= 0xf0 && b <= 0xf4)
		return 4;
	return 0;
}

static int
utf8_is_cont(uint8_t b)
{
	return (b & 0xc0) == 0x80;
}

size_t
agent_utf8_complete_len(const uint8_t *p, size_t n)
{
	size_t i, lead, need;

	/* Look back over at most 3 trailing continuation bytes for the
	 * lead byte of the last sequence. */
	for (i = 0; i < 4 && i < n; i++) {
		lead = n - 1 - i;
		if (utf8_is_cont(p[lead]))
			continue;
		need = utf8_seq_len(p[lead]);
		/* Complete, ASCII, or an invalid byte: nothing to hold. */
		if (need <= i + 1)
			return n;
		return lead;
	}
	return n;
}

size_t
agent_utf8_chunk_len(const uint8_t *p, size_t n, size_t max)
{
	size_t cut;

	if (n <= max)
		return n;
	/* If the byte after the cut continues a sequence, the sequence
	 * straddles the cut: end the chunk before its lead byte. */
	if (!utf8_is_cont(p[max]))
		return max;
	cut = agent_utf8_complete_len(p, max);
	return cut > 0 ? cut : max;
}
