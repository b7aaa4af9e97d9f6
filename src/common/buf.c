#include "common/buf.h"
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : BUF_MAX_DEFAULT;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
}

int
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, ncap;
	uint8_t *n;

	/* +1 keeps room for buf_cstr's terminator. */
	if (extra > b->max - b->len)
		return PH_ERR_TOOBIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	n = realloc(b->data, ncap);
	if (n == NULL)
		return PH_ERR_NOMEM;
	b->data = n;
	b->cap = ncap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	int rc;

	if (n == 0)
		return 0;
	if ((rc = buf_reserve(b, n)) != 0)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int
buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_append_u8(struct buf *b, uint8_t v)
{
	return buf_append(b, &v, 1);
}

int
buf_append_be32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };

	return buf_append(b, x, sizeof(x));
}

int
buf_append_be64(struct buf *b, uint64_t v)
{
	uint8_t x[8];
	int i;

	for (i = 7; i >= 0; i--) {
		x[i] = (uint8_t)v;
		v >>= 8;
	}
	return buf_append(b, x, sizeof(x));
}

int
buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return PH_ERR_INVALID;
	if ((rc = buf_reserve(b, (size_t)n)) != 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

const char *
buf_cstr(struct buf *b)
{
	if (buf_reserve(b, 0) != 0)
		return "";
	b->data[b->len] = '\0';
	return (const char *)b->data;
}

uint8_t *
buf_steal(struct buf *b, size_t *len)
{
	uint8_t *p = b->data;

	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void
bufr_init(struct bufr *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
}

size_t
bufr_left(const struct bufr *r)
{
	return r->len - r->off;
}

int
bufr_get_ref(struct bufr *r, const uint8_t **p, size_t n)
{
	if (n > bufr_left(r))
		return PH_ERR_SHORT;
	*p = r->p + r->off;
	r->off += n;
	return 0;
}

int
bufr_get_bytes(struct bufr *r, void *out, size_t n)
{
	const uint8_t *p;
	int rc;

	if ((rc = bufr_get_ref(r, &p, n)) != 0)
		return rc;
	memcpy(out, p, n);
	return 0;
}

int
bufr_skip(struct bufr *r, size_t n)
{
	const uint8_t *p;

	return bufr_get_ref(r, &p, n);
}

int
bufr_get_u8(struct bufr *r, uint8_t *v)
{
	return bufr_get_bytes(r, v, 1);
}

int
bufr_get_be32(struct bufr *r, uint32_t *v)
{
	const uint8_t *p;
	int rc;

	if ((rc = bufr_get_ref(r, &p, 4)) != 0)
		return rc;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	return 0;
}

int
bufr_get_be64(struct bufr *r, uint64_t *v)
{
	const uint8_t *p;
	uint64_t x = 0;
	int i, rc;

	if ((rc = bufr_get_ref(r, &p, 8)) != 0)
		return rc;
	for (i = 0; i < 8; i++)
		x = x << 8 | p[i];
	*v = x;
	return 0;
}
