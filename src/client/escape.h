/* escape: ssh's escape sequences for the `porthole` terminal. After a CR
 * or LF typed by the user (and at the start of the session), the escape
 * character (default '~') followed by
 *   .   ends the session locally,
 *   ?   shows the list of escapes,
 *   ~   sends one escape character;
 * the escape character followed by anything else sends both bytes. A pure
 * state machine over the bytes read from the keyboard, so the rules are
 * unit-tested without a terminal. */
#ifndef PORTHOLE_CLIENT_ESCAPE_H
#define PORTHOLE_CLIENT_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

#define CLIENT_ESCAPE_DEFAULT '~'

enum client_escape_event {
	CLIENT_ESCAPE_NONE = 0,
	CLIENT_ESCAPE_DISCONNECT,  /* "~." */
	CLIENT_ESCAPE_HELP,        /* "~?" */
};

struct client_escape {
	int ch;     /* escape character (0..255), or -1: escapes are off */
	int state;  /* private */
};

/* Start at the beginning of a line. ch: the escape character, or -1. */
void client_escape_init(struct client_escape *e, int ch);

/* Filter n keyboard bytes. Bytes to send are appended at out + *outlen
 * (out needs room for n + 1 more bytes: a held escape character may be
 * released). Stops after the first escape command: returns the number of
 * input bytes consumed and sets *ev (CLIENT_ESCAPE_NONE when all n bytes
 * were consumed without one). An escape character at the end of the input
 * is held until the next byte decides what it was. */
size_t client_escape_filter(struct client_escape *e, const uint8_t *in,
    size_t n, uint8_t *out, size_t *outlen, enum client_escape_event *ev);

/* The "~?" text (lines end in "\r\n": the terminal is raw), for the
 * escape character ch. */
void client_escape_help(int ch, char *out, size_t outlen);

/* How ch is shown: "~", "^]" ("" when off). outlen >= 3. */
void client_escape_name(int ch, char *out, size_t outlen);

/* Parse PORTHOLE_ESCAPE_CHAR-style values: "none" -> -1, one printable
 * character -> that character, "^X" -> control-X. Returns 0 or
 * PH_ERR_INVALID. */
int client_escape_parse(const char *s, int *ch);

#endif
