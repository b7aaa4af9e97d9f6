/* uuid: random UUIDv4 (RFC 4122 section 4.4) from OpenSSL's CSPRNG and the
 * canonical lower-case hyphenated form used in every MessageId string. */
#include "common/uuid.h"
#include "common/err.h"
#include "common/hex.h"
#include "common/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

static const char hexdig[] = "0123456789abcdef";

static void
uuid_random_direct(uint8_t *p, size_t n)
{
	ssize_t r;
	size_t off = 0;

	if (RAND_bytes(p, (int)n) == 1)
		return;
	/* OpenSSL could not seed: the kernel's pool is the same source. */
	while (off < n) {
		r = getrandom(p + off, n - off, 0);
		if (r <= 0) {
			/* Predictable ids would let a peer forge acks. */
			log_error("event=uuid_no_randomness");
			abort();
		}
		off += (size_t)r;
	}
}

/* Every stream frame and acknowledgement takes a MessageId; one
 * RAND_bytes call costs about 4 us (a lock, the DRBG lookup, a fork
 * check), so ids come from a per-thread pool of the same DRBG's bytes,
 * refilled 4 KiB at a time. A forked child starts with an empty pool so
 * it never repeats its parent's ids. */
static _Thread_local uint8_t uuid_pool[4096];
static _Thread_local size_t uuid_pool_left;
static pthread_once_t uuid_atfork_once = PTHREAD_ONCE_INIT;

static void
uuid_pool_forget(void)
{
	OPENSSL_cleanse(uuid_pool, sizeof(uuid_pool));
	uuid_pool_left = 0;
}

static void
uuid_atfork_install(void)
{
	(void)pthread_atfork(NULL, NULL, uuid_pool_forget);
}

static void
uuid_random(uint8_t *p, size_t n)
{
	uint8_t *src;

	if (n > sizeof(uuid_pool)) {
		uuid_random_direct(p, n);
		return;
	}
	(void)pthread_once(&uuid_atfork_once, uuid_atfork_install);
	if (uuid_pool_left < n) {
		uuid_random_direct(uuid_pool, sizeof(uuid_pool));
		uuid_pool_left = sizeof(uuid_pool);
	}
	src = uuid_pool + sizeof(uuid_pool) - uuid_pool_left;
	memcpy(p, src, n);
	OPENSSL_cleanse(src, n);  /* handed out once */
	uuid_pool_left -= n;
}

void
uuid_v4(uint8_t out[16])
{
	uuid_random(out, 16);
	out[6] = (out[6] & 0x0f) | 0x40; /* version 4 */
	out[8] = (out[8] & 0x3f) | 0x80; /* variant RFC 4122 */
}

void
uuid_format(const uint8_t id[16], char out[UUID_STR_LEN])
{
	size_t i, o = 0;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hexdig[id[i] >> 4];
		out[o++] = hexdig[id[i] & 0x0f];
	}
	out[o] = '\0';
}

int
uuid_parse(const char *s, uint8_t out[16])
{
	uint8_t id[16];
	size_t i, o = 0;
	int b;

	if (s == NULL)
		return PH_ERR_INVALID;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return PH_ERR_INVALID;
			continue;
		}
		/* s[i] is never read past a NUL: the NUL fails hex_byte. */
		if ((b = hex_byte(s + i)) < 0)
			return PH_ERR_INVALID;
		id[o++] = (uint8_t)b;
		i++;
	}
	if (s[36] != '\0')
		return PH_ERR_INVALID;
	for (i = 0; i < 16; i++)
		out[i] = id[i];
	return 0;
}

void
uuid_v4_str(char out[UUID_STR_LEN])
{
	uint8_t id[16];

	uuid_v4(id);
	uuid_format(id, out);
}
