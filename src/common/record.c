/* record: the raw session record's codec (layout in record.h). The header
 * is JSON through jansson; frames are fixed heads over bufr, so a reader
 * never looks past the bytes it was given. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/record.h"

static int
known_type(char type)
{
	return type == 'i' || type == 'o' || type == 'r' || type == 'm';
}

int
record_header_encode(const struct record_header *h, struct buf *out)
{
	json_t *o;
	char *s = NULL;
	size_t n;
	int rc = PH_ERR_NOMEM;

	o = json_pack("{s:i, s:s, s:s, s:s, s:I, s:i, s:i, s:s}",
	    "version", 1, "session_id", h->session_id,
	    "instance_id", h->instance_id, "session_type", h->session_type,
	    "start_ms", (json_int_t)h->start_ms, "width", h->width,
	    "height", h->height, "run_as", h->run_as);
	if (o == NULL)
		goto fail;
	/* Compact, one line: jansson escapes control characters. */
	if ((s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto fail;
	n = strlen(s);
	rc = PH_ERR_INVALID;
	if (n > RECORD_HEADER_MAX)
		goto fail;
	if ((rc = buf_reserve(out, RECORD_MAGIC_LEN + n + 1)) != 0)
		goto fail;
	if ((rc = buf_append(out, RECORD_MAGIC, RECORD_MAGIC_LEN)) != 0 ||
	    (rc = buf_append(out, s, n)) != 0 ||
	    (rc = buf_append_u8(out, '\n')) != 0)
		goto fail;
	rc = 0;
fail:
	free(s);
	json_decref(o);
	return rc;
}

int
record_frame_encode(struct buf *out, char type, uint64_t t_us,
    const void *data, size_t len)
{
	int rc;

	if (!known_type(type) || len > RECORD_FRAME_MAX ||
	    (len > 0 && data == NULL))
		return PH_ERR_INVALID;
	/* All or nothing: a failed append leaves no half frame behind. */
	if ((rc = buf_reserve(out, RECORD_FRAME_HEAD + len)) != 0)
		return rc;
	if ((rc = buf_append_u8(out, (uint8_t)type)) != 0 ||
	    (rc = buf_append_be64(out, t_us)) != 0 ||
	    (rc = buf_append_be32(out, (uint32_t)len)) != 0 ||
	    (len > 0 && (rc = buf_append(out, data, len)) != 0))
		return rc;
	return 0;
}

void
record_reader_init(struct record_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = p != NULL ? len : 0;
	r->off = 0;
	r->partial = 0;
}

/* Copy a JSON string member into dst; absent is "", a non-string or one
 * that does not fit is invalid. */
static int
get_str(json_t *o, const char *key, char *dst, size_t size)
{
	json_t *v;
	size_t n;

	dst[0] = '\0';
	if ((v = json_object_get(o, key)) == NULL)
		return 0;
	if (!json_is_string(v))
		return PH_ERR_INVALID;
	n = json_string_length(v);
	if (n >= size || memchr(json_string_value(v), '\0', n) != NULL)
		return PH_ERR_INVALID;
	memcpy(dst, json_string_value(v), n + 1);
	return 0;
}

static int
get_int(json_t *o, const char *key, json_int_t lo, json_int_t hi,
    json_int_t *out)
{
	json_t *v;

	*out = 0;
	if ((v = json_object_get(o, key)) == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		return PH_ERR_INVALID;
	*out = json_integer_value(v);
	return 0;
}

int
record_read_header(struct record_reader *r, struct record_header *h)
{
	const uint8_t *line, *nl;
	size_t left, scan;
	json_t *o = NULL;
	json_int_t v, start, w, hh;
	int rc = PH_ERR_INVALID;

	memset(h, 0, sizeof(*h));
	if (r->off != 0)
		return PH_ERR_STATE;
	if (r->len < RECORD_MAGIC_LEN) {
		r->partial = 1;
		return PH_ERR_SHORT;
	}
	if (memcmp(r->p, RECORD_MAGIC, RECORD_MAGIC_LEN) != 0)
		return PH_ERR_INVALID;
	line = r->p + RECORD_MAGIC_LEN;
	left = r->len - RECORD_MAGIC_LEN;
	scan = left < RECORD_HEADER_MAX + 1 ? left : RECORD_HEADER_MAX + 1;
	if ((nl = memchr(line, '\n', scan)) == NULL) {
		if (left <= RECORD_HEADER_MAX) {
			r->partial = 1;
			return PH_ERR_SHORT;
		}
		return PH_ERR_INVALID;
	}
	o = json_loadb((const char *)line, (size_t)(nl - line),
	    JSON_REJECT_DUPLICATES, NULL);
	if (o == NULL || !json_is_object(o))
		goto fail;
	if (get_int(o, "version", 1, 1, &v) != 0 || v != 1)
		goto fail;
	if (get_str(o, "session_id", h->session_id,
	    sizeof(h->session_id)) != 0 ||
	    get_str(o, "instance_id", h->instance_id,
	    sizeof(h->instance_id)) != 0 ||
	    get_str(o, "session_type", h->session_type,
	    sizeof(h->session_type)) != 0 ||
	    get_str(o, "run_as", h->run_as, sizeof(h->run_as)) != 0)
		goto fail;
	if (get_int(o, "start_ms", 0, INT64_MAX, &start) != 0 ||
	    get_int(o, "width", 0, 65535, &w) != 0 ||
	    get_int(o, "height", 0, 65535, &hh) != 0)
		goto fail;
	if (h->session_id[0] == '\0')
		goto fail;
	h->start_ms = start;
	h->width = (int)w;
	h->height = (int)hh;
	r->off = (size_t)(nl - r->p) + 1;
	rc = 0;
fail:
	json_decref(o);
	if (rc != 0) {
		memset(h, 0, sizeof(*h));
		r->off = 0;
	}
	return rc;
}

int
record_read_frame(struct record_reader *r, struct record_frame *f)
{
	struct bufr br;
	uint8_t type;
	uint64_t t;
	uint32_t n;

	memset(f, 0, sizeof(*f));
	if (r->off >= r->len)
		return 0;
	bufr_init(&br, r->p + r->off, r->len - r->off);
	if (bufr_get_u8(&br, &type) != 0)
		return 0;
	if (!known_type((char)type))
		return PH_ERR_INVALID;
	if (bufr_get_be64(&br, &t) != 0 || bufr_get_be32(&br, &n) != 0) {
		r->partial = 1;
		return 0;
	}
	if (n > RECORD_FRAME_MAX)
		return PH_ERR_INVALID;
	if (bufr_get_ref(&br, &f->data, n) != 0) {
		f->data = NULL;
		r->partial = 1;
		return 0;
	}
	f->type = (char)type;
	f->t_us = t;
	f->len = n;
	if (n == 0)
		f->data = NULL;
	r->off += br.off;
	return 1;
}
