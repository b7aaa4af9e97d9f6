/* fuzzin: take typed values off the front of a fuzz input, for harnesses
 * that decode an operation sequence from their bytes. Reads past the end
 * give zeros and empty slices, so a harness never needs to check. */
#ifndef PORTHOLE_FUZZIN_H
#define PORTHOLE_FUZZIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

struct fuzzin {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t
fuzzin_u8(struct fuzzin *f)
{
	uint8_t v;

	if (f->n == 0)
		return 0;
	v = f->p[0];
	f->p++;
	f->n--;
	return v;
}

static inline uint16_t
fuzzin_u16(struct fuzzin *f)
{
	return (uint16_t)(fuzzin_u8(f) << 8 | fuzzin_u8(f));
}

static inline uint32_t
fuzzin_u32(struct fuzzin *f)
{
	return (uint32_t)fuzzin_u16(f) << 16 | fuzzin_u16(f);
}

/* Up to max bytes: a length byte pair, then that many bytes (fewer at the
 * end of the input). */
static inline const uint8_t *
fuzzin_bytes(struct fuzzin *f, size_t max, size_t *len)
{
	const uint8_t *p = f->p;
	size_t n = fuzzin_u16(f);

	if (n > max)
		n = max;
	if (n > f->n)
		n = f->n;
	p = f->p;
	f->p += n;
	f->n -= n;
	*len = n;
	return p;
}

/* The rest of the input. */
static inline const uint8_t *
fuzzin_rest(struct fuzzin *f, size_t *len)
{
	const uint8_t *p = f->p;

	*len = f->n;
	f->p += f->n;
	f->n = 0;
	return p;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Logs off (millions of inputs): one past the highest level. PORTHOLE_LOG
 * turns them back on for a reproducer. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level((enum log_level)(LOG_ERROR + 1));
	log_init_from_env();
	return 0;
}

#endif
