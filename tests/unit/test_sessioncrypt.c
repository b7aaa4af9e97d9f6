/* sessioncrypt: the test vectors of spec 6.3, round trips both ways,
 * tampering, nonce rules, hostile input and a throughput figure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/sessioncrypt.h"

struct pair {
	struct sessioncrypt *agent, *client;
	uint8_t key[SESSIONCRYPT_KEY_LEN];
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void
fill(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)rng();
}

/* The key of spec 6.3's vectors: bytes 0x00..0x3f. */
static void
pair_new(struct pair *pr)
{
	size_t i;

	for (i = 0; i < SESSIONCRYPT_KEY_LEN; i++)
		pr->key[i] = (uint8_t)i;
	assert_int_equal(sessioncrypt_new(&pr->agent, SESSIONCRYPT_AGENT,
	    pr->key), 0);
	assert_int_equal(sessioncrypt_new(&pr->client, SESSIONCRYPT_CLIENT,
	    pr->key), 0);
}

static void
pair_free(struct pair *pr)
{
	sessioncrypt_free(pr->agent);
	sessioncrypt_free(pr->client);
}

static size_t
unhex(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;
	unsigned v;

	while (s[0] != '\0' && s[1] != '\0') {
		assert_true(n < max);
		assert_int_equal(sscanf(s, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
		s += 2;
	}
	return n;
}

static const uint8_t vec_nonce[SESSIONCRYPT_NONCE_LEN] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
};

static void
check_vector(struct sessioncrypt *from, struct sessioncrypt *to,
    const char *plain, const char *hex)
{
	uint8_t want[128];
	struct buf b, o;
	size_t n;

	n = unhex(hex, want, sizeof(want));
	assert_int_equal(n, strlen(plain) + SESSIONCRYPT_OVERHEAD);
	buf_init(&b, 0);
	buf_init(&o, 0);
	sessioncrypt_set_test_nonce(from, vec_nonce);
	assert_int_equal(sessioncrypt_seal(from, plain, strlen(plain), &b), 0);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, want, n);
	assert_int_equal(sessioncrypt_open(to, want, n, &o), 0);
	assert_int_equal(o.len, strlen(plain));
	assert_memory_equal(o.data, plain, o.len);
	sessioncrypt_set_test_nonce(from, NULL);
	buf_free(&b);
	buf_free(&o);
}

/* spec 6.3: both vectors byte for byte, in both directions. */
static void
test_vectors(void **state)
{
	struct pair pr;

	(void)state;
	pair_new(&pr);
	check_vector(pr.agent, pr.client, "hello\r\n",
	    "000102030405060708090a0b2f67ba77aae8c89300047a31533ff9d4164be4"
	    "44aedcfa");
	check_vector(pr.client, pr.agent, "ls\r",
	    "000102030405060708090a0b302150796b6ce92de9e02938ee56f3d16b8741");
	assert_int_equal(sessioncrypt_role(pr.agent), SESSIONCRYPT_AGENT);
	assert_int_equal(sessioncrypt_role(pr.client), SESSIONCRYPT_CLIENT);
	pair_free(&pr);
}

static void
round_trip(struct sessioncrypt *from, struct sessioncrypt *to,
    const uint8_t *p, size_t n, struct buf *b, struct buf *o)
{
	uint8_t *raw;

	buf_reset(b);
	buf_reset(o);
	assert_int_equal(sessioncrypt_seal(from, p, n, b), 0);
	assert_int_equal(b->len, n + SESSIONCRYPT_OVERHEAD);
	/* The ciphertext is not the plaintext (a 0-byte message has none). */
	if (n >= 8)
		assert_memory_not_equal(b->data + SESSIONCRYPT_NONCE_LEN, p,
		    n);
	assert_int_equal(sessioncrypt_open(to, b->data, b->len, o), 0);
	assert_int_equal(o->len, n);
	if (n > 0)
		assert_memory_equal(o->data, p, n);
	/* The pointer variants agree. */
	raw = malloc(n + 1);
	assert_non_null(raw);
	assert_int_equal(sessioncrypt_open_to(to, b->data, b->len, raw), 0);
	if (n > 0)
		assert_memory_equal(raw, p, n);
	free(raw);
}

static void
test_round_trips(void **state)
{
	static uint8_t big[65536];
	struct pair pr;
	struct buf b, o;
	size_t n;

	(void)state;
	pair_new(&pr);
	buf_init(&b, 0);
	buf_init(&o, 0);
	fill(big, sizeof(big));
	for (n = 0; n <= 1024; n++) {
		round_trip(pr.agent, pr.client, big, n, &b, &o);
		round_trip(pr.client, pr.agent, big + 7, n, &b, &o);
	}
	round_trip(pr.agent, pr.client, big, sizeof(big), &b, &o);
	round_trip(pr.client, pr.agent, big, sizeof(big), &b, &o);
	/* Appends after what the buffer already holds. */
	buf_reset(&o);
	assert_int_equal(buf_append(&o, "ab", 2), 0);
	buf_reset(&b);
	assert_int_equal(sessioncrypt_seal(pr.agent, "cd", 2, &b), 0);
	assert_int_equal(sessioncrypt_open(pr.client, b.data, b.len, &o), 0);
	assert_int_equal(o.len, 4);
	assert_memory_equal(o.data, "abcd", 4);
	buf_free(&b);
	buf_free(&o);
	pair_free(&pr);
}

/* Any flipped bit in nonce, ciphertext or tag fails, and nothing is
 * appended. */
static void
test_tamper(void **state)
{
	struct pair pr;
	struct buf b, o;
	uint8_t msg[40], *raw;
	size_t sizes[] = { 0, 1, 40 }, k, bit;

	(void)state;
	pair_new(&pr);
	fill(msg, sizeof(msg));
	buf_init(&b, 0);
	buf_init(&o, 0);
	raw = calloc(1, sizeof(msg));
	assert_non_null(raw);
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		buf_reset(&b);
		assert_int_equal(sessioncrypt_seal(pr.client, msg, sizes[k],
		    &b), 0);
		for (bit = 0; bit < b.len * 8; bit++) {
			b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			buf_reset(&o);
			assert_int_equal(sessioncrypt_open(pr.agent, b.data,
			    b.len, &o), PH_ERR_CRYPTO);
			assert_int_equal(o.len, 0);
			memset(raw, 0x55, sizeof(msg));
			assert_int_equal(sessioncrypt_open_to(pr.agent, b.data,
			    b.len, raw), PH_ERR_CRYPTO);
			/* Wiped, not left with unauthenticated plaintext. */
			if (sizes[k] > 0)
				assert_int_equal(raw[0], 0);
			b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		/* Truncated or extended by one byte. */
		assert_int_equal(sessioncrypt_open(pr.agent, b.data, b.len - 1,
		    &o), b.len - 1 < SESSIONCRYPT_OVERHEAD ? PH_ERR_SHORT :
		    PH_ERR_CRYPTO);
		buf_reset(&o);
		assert_int_equal(sessioncrypt_open(pr.agent, b.data, b.len,
		    &o), 0);
		assert_int_equal(o.len, sizes[k]);
	}
	free(raw);
	buf_free(&b);
	buf_free(&o);
	pair_free(&pr);
}

static void
test_short_and_limits(void **state)
{
	struct sessioncrypt *bad;
	struct pair pr;
	struct buf o, small;
	uint8_t junk[SESSIONCRYPT_OVERHEAD], big[100];
	size_t n;

	(void)state;
	pair_new(&pr);
	buf_init(&o, 0);
	memset(junk, 0, sizeof(junk));
	for (n = 0; n < SESSIONCRYPT_OVERHEAD; n++) {
		assert_int_equal(sessioncrypt_open(pr.client, junk, n, &o),
		    PH_ERR_SHORT);
		assert_int_equal(sessioncrypt_open_to(pr.client, junk, n,
		    big), PH_ERR_SHORT);
	}
	assert_int_equal(sessioncrypt_open(pr.client, NULL, 0, &o),
	    PH_ERR_SHORT);
	assert_int_equal(o.len, 0);
	/* An output buffer at its limit refuses; nothing is written. */
	buf_init(&small, 10);
	assert_int_equal(sessioncrypt_seal(pr.client, big, 1, &small),
	    PH_ERR_TOOBIG);
	assert_int_equal(small.len, 0);
	buf_free(&small);
	buf_free(&o);
	buf_init(&small, 200);
	assert_int_equal(sessioncrypt_seal(pr.client, big, sizeof(big),
	    &small), 0);
	buf_init(&o, 50);
	assert_int_equal(sessioncrypt_open(pr.agent, small.data, small.len,
	    &o), PH_ERR_TOOBIG);
	assert_int_equal(o.len, 0);
	buf_free(&small);
	buf_free(&o);
	/* Bad arguments. */
	assert_int_equal(sessioncrypt_seal_to(pr.client, NULL, 1, big),
	    PH_ERR_INVALID);
	assert_int_equal(sessioncrypt_new(&bad, (enum sessioncrypt_role)7,
	    pr.key), PH_ERR_INVALID);
	assert_null(bad);
	sessioncrypt_free(NULL);
	pair_free(&pr);
}

/* Each side opens only what the other sealed, with the same key. */
static void
test_wrong_key(void **state)
{
	struct sessioncrypt *other;
	uint8_t key2[SESSIONCRYPT_KEY_LEN];
	struct pair pr;
	struct buf b, o;

	(void)state;
	pair_new(&pr);
	buf_init(&b, 0);
	buf_init(&o, 0);
	/* The agent's own seal under the client->agent key: no. */
	assert_int_equal(sessioncrypt_seal(pr.agent, "secret", 6, &b), 0);
	assert_int_equal(sessioncrypt_open(pr.agent, b.data, b.len, &o),
	    PH_ERR_CRYPTO);
	assert_int_equal(sessioncrypt_open(pr.client, b.data, b.len, &o), 0);
	buf_reset(&b);
	buf_reset(&o);
	assert_int_equal(sessioncrypt_seal(pr.client, "secret", 6, &b), 0);
	assert_int_equal(sessioncrypt_open(pr.client, b.data, b.len, &o),
	    PH_ERR_CRYPTO);
	/* Another data key: no. */
	memcpy(key2, pr.key, sizeof(key2));
	key2[63] ^= 1;
	assert_int_equal(sessioncrypt_new(&other, SESSIONCRYPT_AGENT, key2),
	    0);
	assert_int_equal(sessioncrypt_open(other, b.data, b.len, &o),
	    PH_ERR_CRYPTO);
	/* The half it does not use does not matter to it. */
	assert_int_equal(sessioncrypt_open(pr.agent, b.data, b.len, &o), 0);
	sessioncrypt_free(other);
	key2[63] ^= 1;
	key2[0] ^= 1;
	assert_int_equal(sessioncrypt_new(&other, SESSIONCRYPT_AGENT, key2),
	    0);
	buf_reset(&o);
	assert_int_equal(sessioncrypt_open(other, b.data, b.len, &o), 0);
	assert_memory_equal(o.data, "secret", 6);
	sessioncrypt_free(other);
	buf_free(&b);
	buf_free(&o);
	pair_free(&pr);
}

static int
cmp_nonce(const void *a, const void *b)
{
	return memcmp(a, b, SESSIONCRYPT_NONCE_LEN);
}

/* The 96-bit little-endian value of a nonce, compared as (hi, lo). */
static void
nonce_words(const uint8_t *n, uint32_t w[3])
{
	int i;

	for (i = 0; i < 3; i++)
		w[i] = (uint32_t)n[4 * i] | (uint32_t)n[4 * i + 1] << 8 |
		    (uint32_t)n[4 * i + 2] << 16 |
		    (uint32_t)n[4 * i + 3] << 24;
}

static void
check_successor(const uint8_t *a, const uint8_t *b)
{
	uint32_t x[3], y[3];

	nonce_words(a, x);
	nonce_words(b, y);
	/* spec 6.3: low word first, carrying into the next. */
	x[0]++;
	if (x[0] == 0) {
		x[1]++;
		if (x[1] == 0)
			x[2]++;
	}
	assert_memory_equal(x, y, sizeof(x));
}

#define NONCE_MSGS 100000

static void
collect_nonces(struct sessioncrypt *sc, uint8_t *all, size_t count)
{
	uint8_t out[SESSIONCRYPT_OVERHEAD];
	size_t i;

	for (i = 0; i < count; i++) {
		assert_int_equal(sessioncrypt_seal_to(sc, NULL, 0, out), 0);
		memcpy(all + i * SESSIONCRYPT_NONCE_LEN, out,
		    SESSIONCRYPT_NONCE_LEN);
	}
}

static void
assert_unique(uint8_t *all, size_t count)
{
	size_t i;

	qsort(all, count, SESSIONCRYPT_NONCE_LEN, cmp_nonce);
	for (i = 1; i < count; i++)
		assert_memory_not_equal(all + (i - 1) * SESSIONCRYPT_NONCE_LEN,
		    all + i * SESSIONCRYPT_NONCE_LEN, SESSIONCRYPT_NONCE_LEN);
}

static void
test_agent_counter(void **state)
{
	static const uint8_t wrap0[SESSIONCRYPT_NONCE_LEN] = {
		0xfe, 0xff, 0xff, 0xff, 7, 0, 0, 0, 9, 0, 0, 0,
	};
	static const uint8_t wrap1[SESSIONCRYPT_NONCE_LEN] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 9, 0, 0, 0,
	};
	static const uint8_t zero[SESSIONCRYPT_NONCE_LEN];
	struct sessioncrypt *sc2;
	uint8_t *all, first2[SESSIONCRYPT_NONCE_LEN];
	struct pair pr;
	size_t i;

	(void)state;
	pair_new(&pr);
	all = malloc((size_t)NONCE_MSGS * SESSIONCRYPT_NONCE_LEN);
	assert_non_null(all);
	collect_nonces(pr.agent, all, NONCE_MSGS);
	for (i = 1; i < NONCE_MSGS; i++)
		check_successor(all + (i - 1) * SESSIONCRYPT_NONCE_LEN,
		    all + i * SESSIONCRYPT_NONCE_LEN);
	assert_unique(all, NONCE_MSGS);
	/* A random start: another agent begins elsewhere. */
	assert_int_equal(sessioncrypt_new(&sc2, SESSIONCRYPT_AGENT, pr.key),
	    0);
	collect_nonces(sc2, first2, 1);
	sessioncrypt_free(sc2);
	for (i = 0; i < NONCE_MSGS; i++)
		assert_memory_not_equal(first2,
		    all + i * SESSIONCRYPT_NONCE_LEN, SESSIONCRYPT_NONCE_LEN);
	/* Carries: word 0 into word 1, words 0-1 into word 2, and the
	 * whole 96 bits around to zero. */
	sessioncrypt_set_test_nonce(pr.agent, wrap0);
	collect_nonces(pr.agent, all, 3);
	assert_memory_equal(all, wrap0, SESSIONCRYPT_NONCE_LEN);
	assert_int_equal(all[12], 0xff);
	assert_int_equal(all[12 + 3], 0xff);
	assert_int_equal(all[24], 0);
	assert_int_equal(all[24 + 3], 0);
	assert_int_equal(all[24 + 4], 8);
	assert_int_equal(all[24 + 8], 9);
	check_successor(all, all + 12);
	check_successor(all + 12, all + 24);
	sessioncrypt_set_test_nonce(pr.agent, wrap1);
	collect_nonces(pr.agent, all, 2);
	check_successor(all, all + 12);
	assert_int_equal(all[12 + 8], 10);
	memset(first2, 0xff, sizeof(first2));
	sessioncrypt_set_test_nonce(pr.agent, first2);
	collect_nonces(pr.agent, all, 2);
	assert_memory_equal(all + 12, zero, SESSIONCRYPT_NONCE_LEN);
	/* Back to a random start. */
	sessioncrypt_set_test_nonce(pr.agent, NULL);
	collect_nonces(pr.agent, all, 2);
	check_successor(all, all + 12);
	free(all);
	pair_free(&pr);
}

/* The client's nonces are random: unique, and not a counter. */
static void
test_client_nonces(void **state)
{
	struct pair pr;
	uint8_t *all;
	size_t i, succ = 0;
	uint32_t x[3], y[3];

	(void)state;
	pair_new(&pr);
	all = malloc((size_t)NONCE_MSGS * SESSIONCRYPT_NONCE_LEN);
	assert_non_null(all);
	collect_nonces(pr.client, all, NONCE_MSGS);
	for (i = 1; i < NONCE_MSGS; i++) {
		nonce_words(all + (i - 1) * SESSIONCRYPT_NONCE_LEN, x);
		nonce_words(all + i * SESSIONCRYPT_NONCE_LEN, y);
		if (x[0] + 1 == y[0] && x[1] == y[1] && x[2] == y[2])
			succ++;
	}
	assert_true(succ < 3);
	assert_unique(all, NONCE_MSGS);
	free(all);
	pair_free(&pr);
}

/* Hostile bytes: random lengths and contents, a real nonce with random
 * rest, and real messages cut or spliced. Bounded; never a crash. */
static void
test_garbage(void **state)
{
	struct pair pr;
	struct buf b, o, good;
	uint8_t junk[512];
	size_t n, i, cut;
	int rc, iter;

	(void)state;
	pair_new(&pr);
	buf_init(&b, 0);
	buf_init(&o, 0);
	buf_init(&good, 0);
	assert_int_equal(sessioncrypt_seal(pr.agent, "genuine text", 12,
	    &good), 0);
	for (iter = 0; iter < 50000; iter++) {
		n = (size_t)(rng() % sizeof(junk));
		fill(junk, n);
		if (iter % 3 == 1 && n >= SESSIONCRYPT_NONCE_LEN)
			memcpy(junk, good.data, SESSIONCRYPT_NONCE_LEN);
		if (iter % 3 == 2) {
			cut = (size_t)(rng() % (good.len + 1));
			memcpy(junk, good.data, cut);
			n = cut + (size_t)(rng() % 8);
			if (n > sizeof(junk))
				n = sizeof(junk);
		}
		buf_reset(&o);
		rc = sessioncrypt_open(iter & 1 ? pr.client : pr.agent, junk,
		    n, &o);
		if (n < SESSIONCRYPT_OVERHEAD)
			assert_int_equal(rc, PH_ERR_SHORT);
		else if (rc == 0)
			/* Only the genuine message itself, whole. */
			assert_true(n == good.len && (iter & 1) &&
			    memcmp(junk, good.data, n) == 0);
		else
			assert_int_equal(rc, PH_ERR_CRYPTO);
		assert_true(rc == 0 || o.len == 0);
	}
	/* The context is still good after all those failures. */
	for (i = 0; i < 3; i++) {
		buf_reset(&o);
		assert_int_equal(sessioncrypt_open(pr.client, good.data,
		    good.len, &o), 0);
		assert_memory_equal(o.data, "genuine text", 12);
	}
	buf_free(&b);
	buf_free(&o);
	buf_free(&good);
	pair_free(&pr);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Not an assertion: seal and open 1 GiB in 1 KiB messages (the size of
 * one PTY read, spec 10.1) and print the rate. */
static void
test_throughput(void **state)
{
	uint8_t msg[1024], sealed[1024 + SESSIONCRYPT_OVERHEAD], back[1024];
	size_t i, count = ((size_t)1 << 30) / sizeof(msg);
	struct pair pr;
	double t0, dt;

	(void)state;
	pair_new(&pr);
	fill(msg, sizeof(msg));
	t0 = now_s();
	for (i = 0; i < count; i++) {
		msg[0] = (uint8_t)i;
		assert_int_equal(sessioncrypt_seal_to(i & 1 ? pr.agent :
		    pr.client, msg, sizeof(msg), sealed), 0);
		assert_int_equal(sessioncrypt_open_to(i & 1 ? pr.client :
		    pr.agent, sealed, sizeof(sealed), back), 0);
	}
	dt = now_s() - t0;
	assert_memory_equal(back, msg, sizeof(msg));
	printf("sessioncrypt: seal+open of 1 GiB in 1 KiB messages: "
	    "%.2f s, %.0f MB/s\n", dt,
	    (double)count * sizeof(msg) / 1e6 / (dt > 0 ? dt : 1e-9));
	pair_free(&pr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_short_and_limits),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_agent_counter),
		cmocka_unit_test(test_client_nonces),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_throughput),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
