/* utf8: where to cut terminal output so that no UTF-8 sequence is split
 * across two stream messages (spec 7.1). */
#ifndef PORTHOLE_AGENT_UTF8_H
#define PORTHOLE_AGENT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The length of the longest prefix of p[0..n) that does not end inside an
 * incomplete UTF-8 sequence: the bytes after it (at most 3) are the start
 * of a sequence whose continuation bytes have not arrived yet and are held
 * back for the next read. Invalid bytes are not held back (they are sent
 * as they are). */
size_t agent_utf8_complete_len(const uint8_t *p, size_t n);

/* Where to end a chunk of at most max bytes taken from p[0..n): max itself
 * unless that cuts a sequence in two, in which case the cut moves back to
 * the sequence's start (never to 0). n <= max returns n. */
size_t agent_utf8_chunk_len(const uint8_t *p, size_t n, size_t max);

#endif
