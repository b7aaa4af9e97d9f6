/* buf: the one growable byte buffer. Every buffer has a maximum size fixed
 * at creation; appends past it fail with PH_ERR_TOOBIG instead of growing
 * without bound. Readers (struct bufr) check the remaining length before
 * every read and never read past the end. */
#ifndef PORTHOLE_BUF_H
#define PORTHOLE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;   /* hard limit on len */
};

#define BUF_MAX_DEFAULT ((size_t)64 << 20)

/* An empty buffer that may grow to max bytes (0 = BUF_MAX_DEFAULT). */
void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);                 /* len = 0, memory kept */
int buf_reserve(struct buf *b, size_t extra);  /* room for extra more bytes */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_append_u8(struct buf *b, uint8_t v);
int buf_append_be32(struct buf *b, uint32_t v);
int buf_append_be64(struct buf *b, uint64_t v);
/* printf-style append, bounded by max. */
int buf_appendf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* NUL-terminate without counting the NUL in len; returns data as a string. */
const char *buf_cstr(struct buf *b);
/* Hand the bytes to the caller (who frees them); b becomes empty. */
uint8_t *buf_steal(struct buf *b, size_t *len);

/* A bounds-checked reader over bytes it does not own. */
struct bufr {
	const uint8_t *p;
	size_t len;
	size_t off;
};

void bufr_init(struct bufr *r, const void *p, size_t len);
size_t bufr_left(const struct bufr *r);
int bufr_get_u8(struct bufr *r, uint8_t *v);
int bufr_get_be32(struct bufr *r, uint32_t *v);
int bufr_get_be64(struct bufr *r, uint64_t *v);
int bufr_get_bytes(struct bufr *r, void *out, size_t n);
/* Point *p at the next n bytes without copying. */
int bufr_get_ref(struct bufr *r, const uint8_t **p, size_t n);
int bufr_skip(struct bufr *r, size_t n);

#endif
