/* uuid: random UUIDv4 and the canonical lower-case hyphenated form. */
#ifndef PORTHOLE_UUID_H
#define PORTHOLE_UUID_H

#include <stdint.h>

#define UUID_STR_LEN 37 /* 36 characters and a NUL */

void uuid_v4(uint8_t out[16]);
void uuid_format(const uint8_t id[16], char out[UUID_STR_LEN]);
int uuid_parse(const char *s, uint8_t out[16]);
/* Fill out with a fresh v4 UUID string. */
void uuid_v4_str(char out[UUID_STR_LEN]);

#endif
