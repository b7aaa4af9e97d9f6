/* escape: the ssh-style escape state machine of the client terminal. */
#include "client/escape.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

enum {
	ESC_LINE_START = 0,  /* after CR/LF or at the start: may escape */
	ESC_MIDLINE,         /* inside a line: the escape char is plain */
	ESC_PENDING,         /* the escape char was typed at line start */
};

void
client_escape_init(struct client_escape *e, int ch)
{
	e->ch = ch >= 0 && ch <= 255 ? ch : -1;
	e->state = ESC_LINE_START;
}

size_t
client_escape_filter(struct client_escape *e, const uint8_t *in, size_t n,
    uint8_t *out, size_t *outlen, enum client_escape_event *ev)
{
	size_t i;
	uint8_t c;

	*ev = CLIENT_ESCAPE_NONE;
	for (i = 0; i < n; i++) {
		c = in[i];
		if (e->ch < 0) {
			out[(*outlen)++] = c;
			continue;
		}
		if (e->state == ESC_PENDING) {
			if (c == '.') {
				e->state = ESC_LINE_START;
				*ev = CLIENT_ESCAPE_DISCONNECT;
				return i + 1;
			}
			if (c == '?') {
				/* Still at the start of a line, as in ssh. */
				e->state = ESC_LINE_START;
				*ev = CLIENT_ESCAPE_HELP;
				return i + 1;
			}
			/* "~~" sends one; "~x" sends both. */
			if (c != (uint8_t)e->ch)
				out[(*outlen)++] = (uint8_t)e->ch;
			out[(*outlen)++] = c;
			e->state = c == '\r' || c == '\n' ? ESC_LINE_START :
			    ESC_MIDLINE;
			continue;
		}
		if (e->state == ESC_LINE_START && c == (uint8_t)e->ch) {
			e->state = ESC_PENDING;
			continue;
		}
		out[(*outlen)++] = c;
		e->state = c == '\r' || c == '\n' ? ESC_LINE_START :
		    ESC_MIDLINE;
	}
	return n;
}

void
client_escape_name(int ch, char *out, size_t outlen)
{
	if (outlen == 0)
		return;
	if (ch < 0)
		out[0] = '\0';
	else if (ch < 0x20)
		snprintf(out, outlen, "^%c", ch + '@');
	else if (ch == 0x7f)
		snprintf(out, outlen, "^?");
	else
		snprintf(out, outlen, "%c", ch);
}

void
client_escape_help(int ch, char *out, size_t outlen)
{
	char c[4];

	client_escape_name(ch, c, sizeof(c));
	snprintf(out, outlen,
	    "Supported escape sequences:\r\n"
	    " %s.   - end the session (disconnect)\r\n"
	    " %s?   - this message\r\n"
	    " %s%s   - send the escape character by typing it twice\r\n"
	    "(Note that escapes are only recognized immediately after "
	    "newline.)\r\n", c, c, c, c);
}

int
client_escape_parse(const char *s, int *ch)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 4 && strcmp(s, "none") == 0) {
		*ch = -1;
		return 0;
	}
	if (n == 1 && (unsigned char)s[0] > 0x20 &&
	    (unsigned char)s[0] < 0x7f) {
		*ch = (unsigned char)s[0];
		return 0;
	}
	if (n == 2 && s[0] == '^' && ((s[1] >= '@' && s[1] <= '_') ||
	    (s[1] >= 'a' && s[1] <= 'z'))) {
		*ch = (s[1] >= 'a' ? s[1] - 'a' + 'A' : s[1]) - '@';
		return 0;
	}
	return PH_ERR_INVALID;
}
