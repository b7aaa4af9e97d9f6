/* records_render: asciicast v2 and plain-text transcripts of a raw record
 * (see records_render.h). */
#include "server/records_render.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/record.h"

#define REPLACEMENT "\xef\xbf\xbd"      /* U+FFFD */
/* Escape sequences that never end swallow at most this much output. */
#define CSI_MAX 64
#define STR_MAX 4096

static uint8_t
fix_at(const struct utf8_fix *u, const uint8_t *p, size_t i)
{
	return i < u->nheld ? u->held[i] : p[i - u->nheld];
}

/* RFC 3629: the range of the second byte after a lead byte, and how many
 * continuation bytes follow it; 0 for a byte that never leads. */
static size_t
utf8_lead(uint8_t b, uint8_t *lo, uint8_t *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (b >= 0xc2 && b <= 0xdf)
		return 1;
	if (b >= 0xe0 && b <= 0xef) {
		if (b == 0xe0)
			*lo = 0xa0;      /* no overlongs */
		else if (b == 0xed)
			*hi = 0x9f;      /* no surrogates */
		return 2;
	}
	if (b >= 0xf0 && b <= 0xf4) {
		if (b == 0xf0)
			*lo = 0x90;
		else if (b == 0xf4)
			*hi = 0x8f;      /* nothing past U+10FFFF */
		return 3;
	}
	return 0;
}

int
utf8_fix_append(struct utf8_fix *u, const uint8_t *p, size_t n, int flush,
    struct buf *out)
{
	struct utf8_fix src = *u;
	size_t total = src.nheld + n, i = 0, k, need, j, run;
	uint8_t b, c, lo, hi;
	int rc = 0;

	u->nheld = 0;
	while (i < total && rc == 0) {
		b = fix_at(&src, p, i);
		if (b < 0x80) {
			/* A run of ASCII in p goes in one piece. */
			if (i >= src.nheld) {
				j = i - src.nheld;
				for (run = j; run < n && p[run] < 0x80; run++)
					;
				rc = buf_append(out, p + j, run - j);
				i += run - j;
			} else {
				rc = buf_append_u8(out, b);
				i++;
			}
			continue;
		}
		need = utf8_lead(b, &lo, &hi);
		if (need == 0) {
			rc = buf_append_str(out, REPLACEMENT);
			i++;
			continue;
		}
		for (k = 1; k <= need && i + k < total; k++) {
			c = fix_at(&src, p, i + k);
			if (c < (k == 1 ? lo : 0x80) ||
			    c > (k == 1 ? hi : 0xbf))
				break;
		}
		if (k > need) {
			for (j = 0; j <= need && rc == 0; j++)
				rc = buf_append_u8(out, fix_at(&src, p, i + j));
			i += need + 1;
		} else if (i + k >= total && !flush) {
			/* Valid so far, cut by the chunk's end: held. */
			for (j = 0; i + j < total; j++)
				u->held[j] = fix_at(&src, p, i + j);
			u->nheld = j;
			i = total;
		} else {
			/* The maximal valid prefix is one U+FFFD. */
			rc = buf_append_str(out, REPLACEMENT);
			i += k;
		}
	}
	return rc;
}

/* ---- asciicast v2 -------------------------------------------------------- */

static int
cast_event(FILE *out, uint64_t t_us, const char *code, const struct buf *text)
{
	json_t *s;
	char *enc;
	int rc = 0;

	s = json_stringn_nocheck(text->len > 0 ? (const char *)text->data :
	    "", text->len);
	if (s == NULL)
		return PH_ERR_NOMEM;
	enc = json_dumps(s, JSON_ENCODE_ANY);
	json_decref(s);
	if (enc == NULL)
		return PH_ERR_NOMEM;
	if (fprintf(out, "[%llu.%06llu, \"%s\", %s]\n",
	    (unsigned long long)(t_us / 1000000),
	    (unsigned long long)(t_us % 1000000), code, enc) < 0)
		rc = PH_ERR_IO;
	free(enc);
	return rc;
}

static int
cast_header(FILE *out, const struct record_header *h)
{
	char title[300];
	json_t *o;
	char *s;
	int rc = 0;

	snprintf(title, sizeof(title), "%s on %s as %s", h->session_id,
	    h->instance_id, h->run_as[0] != '\0' ? h->run_as : "-");
	o = json_pack("{s:i, s:i, s:i, s:I, s:s}", "version", 2,
	    "width", h->width > 0 ? h->width : 80,
	    "height", h->height > 0 ? h->height : 24,
	    "timestamp", (json_int_t)(h->start_ms / 1000), "title", title);
	if (o == NULL)
		return PH_ERR_INVALID;   /* strings that are not UTF-8 */
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		return PH_ERR_NOMEM;
	if (fprintf(out, "%s\n", s) < 0)
		rc = PH_ERR_IO;
	free(s);
	return rc;
}

int
records_render_cast(const uint8_t *rec, size_t len, FILE *out,
    struct render_stats *st)
{
	struct utf8_fix fix_i, fix_o, fix_x, *fx;
	struct record_reader r;
	struct record_header h;
	struct record_frame f;
	uint64_t t = 0;
	const char *code;
	struct buf text;
	int rc, frc;

	memset(st, 0, sizeof(*st));
	memset(&fix_i, 0, sizeof(fix_i));
	memset(&fix_o, 0, sizeof(fix_o));
	record_reader_init(&r, rec, len);
	if (record_read_header(&r, &h) != 0)
		return PH_ERR_INVALID;
	if ((rc = cast_header(out, &h)) != 0)
		return rc;
	buf_init(&text, 0);
	while (rc == 0) {
		frc = record_read_frame(&r, &f);
		if (frc <= 0) {
			st->damaged = frc < 0;
			break;
		}
		st->frames++;
		if (f.t_us > t)       /* players want times in order */
			t = f.t_us;
		buf_reset(&text);
		memset(&fix_x, 0, sizeof(fix_x));
		switch (f.type) {
		case 'o': fx = &fix_o; code = "o"; break;
		case 'i': fx = &fix_i; code = "i"; break;
		case 'r': fx = &fix_x; code = "r"; break;
		default: fx = &fix_x; code = "m"; break;
		}
		rc = utf8_fix_append(fx, f.data, f.len, fx == &fix_x, &text);
		if (rc == 0 && (text.len > 0 || fx == &fix_x))
			rc = cast_event(out, t, code, &text);
	}
	st->partial = r.partial;
	/* Sequences cut off by the end of the record. */
	buf_reset(&text);
	if (rc == 0 && fix_o.nheld > 0 &&
	    (rc = utf8_fix_append(&fix_o, NULL, 0, 1, &text)) == 0)
		rc = cast_event(out, t, "o", &text);
	buf_reset(&text);
	if (rc == 0 && fix_i.nheld > 0 &&
	    (rc = utf8_fix_append(&fix_i, NULL, 0, 1, &text)) == 0)
		rc = cast_event(out, t, "i", &text);
	buf_free(&text);
	if (rc == 0 && fflush(out) != 0)
		rc = PH_ERR_IO;
	return rc;
}

/* ---- plain text ---------------------------------------------------------- */

enum strip_state {
	S_GROUND, S_ESC, S_CSI, S_STR, S_STR_ESC, S_CHARSET,
};

struct strip {
	enum strip_state state;
	size_t seqlen;
	int after_cr;        /* a CR became LF: swallow the LF of CR LF */
	int last;            /* the last byte written, -1 none */
};

static int
strip_put(struct strip *s, struct buf *out, uint8_t b)
{
	s->last = b;
	return buf_append_u8(out, b);
}

/* Terminal output to text: escape sequences (ECMA-48 CSI, OSC / DCS /
 * APC / PM / SOS strings, charset designations, two-byte escapes) and
 * control characters removed. */
static int
strip_bytes(struct strip *s, const uint8_t *p, size_t n, struct buf *out)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		uint8_t b = p[i];
		int cr = s->after_cr;

		s->after_cr = 0;
		switch (s->state) {
		case S_GROUND:
			if (b == 0x1b)
				s->state = S_ESC;
			else if (b == '\r') {
				/* Back to the line's start: a new line
				 * unless it is empty (bash's "\e[?2004l\r"
				 * after CR LF). */
				if (s->last != -1 && s->last != '\n') {
					rc = strip_put(s, out, '\n');
					s->after_cr = 1;
				}
			} else if (b == '\n') {
				if (!cr)
					rc = strip_put(s, out, '\n');
			} else if (b == '\t' || (b >= 0x20 && b != 0x7f))
				rc = strip_put(s, out, b);
			break;
		case S_ESC:
			s->seqlen = 0;
			if (b == '[')
				s->state = S_CSI;
			else if (b == ']' || b == 'P' || b == 'X' ||
			    b == '^' || b == '_')
				s->state = S_STR;
			else if (b >= 0x20 && b <= 0x2f)
				s->state = S_CHARSET;
			else if (b != 0x1b)
				s->state = S_GROUND;
			break;
		case S_CSI:
			if (b >= 0x40 && b <= 0x7e)
				s->state = S_GROUND;
			else if (b == 0x1b)
				s->state = S_ESC;
			else if (b >= 0x80 || ++s->seqlen > CSI_MAX)
				s->state = S_GROUND;
			break;
		case S_STR:
			if (b == 0x07)
				s->state = S_GROUND;
			else if (b == 0x1b)
				s->state = S_STR_ESC;
			else if (++s->seqlen > STR_MAX)
				s->state = S_GROUND;
			break;
		case S_STR_ESC:
			/* ESC \ ends the string; any other escape ends it
			 * and begins. */
			if (b == '\\')
				s->state = S_GROUND;
			else {
				s->state = S_ESC;
				i--;
			}
			break;
		case S_CHARSET:
			if (b < 0x20 || b > 0x2f)
				s->state = S_GROUND;
			break;
		}
	}
	return rc;
}

static int
log_write(FILE *out, struct utf8_fix *fix, const struct buf *text, int flush,
    struct buf *clean)
{
	int rc;

	buf_reset(clean);
	if ((rc = utf8_fix_append(fix, text->data, text->len, flush,
	    clean)) != 0)
		return rc;
	if (clean->len > 0 && fwrite(clean->data, 1, clean->len, out) !=
	    clean->len)
		return PH_ERR_IO;
	return 0;
}

/* A metadata frame on a line of its own, after what came before. */
static int
log_meta(FILE *out, struct strip *s, struct utf8_fix *fix,
    const struct record_frame *f, struct buf *text, struct buf *clean)
{
	struct utf8_fix mfix;
	size_t i, start;
	int rc = 0;

	buf_reset(text);
	if (fix->nheld > 0)
		rc = log_write(out, fix, text, 1, clean);
	if (rc == 0 && s->last != -1 && s->last != '\n')
		rc = buf_append_u8(text, '\n');
	start = text->len;
	if (rc == 0)
		rc = buf_append_str(text, "[porthole] ");
	if (rc == 0)
		rc = buf_append(text, f->data, f->len);
	/* A line break inside would fake a transcript line. */
	for (i = start; rc == 0 && i < text->len; i++)
		if (text->data[i] < 0x20 || text->data[i] == 0x7f)
			text->data[i] = ' ';
	if (rc == 0)
		rc = buf_append_u8(text, '\n');
	memset(&mfix, 0, sizeof(mfix));
	if (rc == 0)
		rc = log_write(out, &mfix, text, 1, clean);
	s->last = '\n';
	s->state = S_GROUND;
	s->after_cr = 0;
	return rc;
}

int
records_render_log(const uint8_t *rec, size_t len, FILE *out,
    struct render_stats *st)
{
	struct record_reader r;
	struct record_header h;
	struct record_frame f;
	struct utf8_fix fix;
	struct buf text, clean;
	struct strip s;
	int rc = 0, frc;

	memset(st, 0, sizeof(*st));
	memset(&fix, 0, sizeof(fix));
	memset(&s, 0, sizeof(s));
	s.last = -1;
	record_reader_init(&r, rec, len);
	if (record_read_header(&r, &h) != 0)
		return PH_ERR_INVALID;
	buf_init(&text, 0);
	buf_init(&clean, 0);
	while (rc == 0) {
		frc = record_read_frame(&r, &f);
		if (frc <= 0) {
			st->damaged = frc < 0;
			break;
		}
		st->frames++;
		buf_reset(&text);
		if (f.type == 'o') {
			if ((rc = strip_bytes(&s, f.data, f.len, &text)) == 0)
				rc = log_write(out, &fix, &text, 0, &clean);
		} else if (f.type == 'm')
			rc = log_meta(out, &s, &fix, &f, &text, &clean);
	}
	st->partial = r.partial;
	buf_reset(&text);
	if (rc == 0 && fix.nheld > 0)
		rc = log_write(out, &fix, &text, 1, &clean);
	buf_free(&text);
	buf_free(&clean);
	if (rc == 0 && fflush(out) != 0)
		rc = PH_ERR_IO;
	return rc;
}
