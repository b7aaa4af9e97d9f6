/* hex: the byte two hexadecimal digits stand for, as in a percent escape,
 * a UUID or a test vector. */
#ifndef PORTHOLE_HEX_H
#define PORTHOLE_HEX_H

/* The byte (0-255) p[0] p[1] spell in either case, or -1 when either is
 * not a hex digit; p[1] is not read when p[0] is not one (a NUL). */
int hex_byte(const char *p);

#endif
