/* Unit tests for admit.c: the count of unauthenticated connections, in
 * total and per source, and its caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/admit.h"
#include "common/err.h"

static struct admit_key
key4(const char *ip)
{
	struct sockaddr_in sa;
	struct admit_key k;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(1234);
	assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
	assert_int_equal(admit_key_from_addr(&k, (struct sockaddr *)&sa), 0);
	return k;
}

static struct admit_key
key6(const char *ip)
{
	struct sockaddr_in6 sa;
	struct admit_key k;

	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_port = htons(1234);
	assert_int_equal(inet_pton(AF_INET6, ip, &sa.sin6_addr), 1);
	assert_int_equal(admit_key_from_addr(&k, (struct sockaddr *)&sa), 0);
	return k;
}

static void
test_keys(void **state)
{
	struct admit_key a, b;
	struct sockaddr sa;

	(void)state;
	a = key4("192.0.2.1");
	b = key4("192.0.2.2");
	assert_memory_not_equal(&a, &b, sizeof(a));
	/* An IPv4-mapped IPv6 peer is the same source as its IPv4 form. */
	b = key6("::ffff:192.0.2.1");
	assert_memory_equal(&a, &b, sizeof(a));
	/* IPv6: a /64 is one source, the next /64 another. */
	a = key6("2001:db8:1:2::1");
	b = key6("2001:db8:1:2:ffff:eeee:dddd:cccc");
	assert_memory_equal(&a, &b, sizeof(a));
	b = key6("2001:db8:1:3::1");
	assert_memory_not_equal(&a, &b, sizeof(a));
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	assert_int_equal(admit_key_from_addr(&a, &sa), PH_ERR_INVALID);
	assert_int_equal(admit_key_from_addr(&a, NULL), PH_ERR_INVALID);
}

static void
test_per_source_cap(void **state)
{
	struct admit_key a = key4("198.51.100.7"), b = key4("198.51.100.8");
	struct admit *ad;
	uint64_t rt, rs;
	int i;

	(void)state;
	assert_int_equal(admit_new(&ad, 100, 3), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(admit_take(ad, &a), 0);
	assert_int_equal(admit_take(ad, &a), PH_ERR_DENIED);
	assert_int_equal(admit_take(ad, &a), PH_ERR_DENIED);
	/* Another source is not held back by the first. */
	assert_int_equal(admit_take(ad, &b), 0);
	assert_int_equal(admit_count(ad), 4);
	assert_int_equal(admit_count_source(ad, &a), 3);
	assert_int_equal(admit_count_source(ad, &b), 1);
	/* One authenticates (or goes): a slot is free again. */
	admit_release(ad, &a);
	assert_int_equal(admit_count_source(ad, &a), 2);
	assert_int_equal(admit_take(ad, &a), 0);
	admit_refused(ad, &rt, &rs);
	assert_int_equal(rt, 0);
	assert_int_equal(rs, 2);
	admit_free(ad);   /* still counting: freed on the last release */
	for (i = 0; i < 3; i++)
		admit_release(ad, &a);
	admit_release(ad, &b);
}

static void
test_total_cap(void **state)
{
	struct admit_key k;
	struct admit *ad;
	char ip[32];
	uint64_t rt, rs;
	int i;

	(void)state;
	assert_int_equal(admit_new(&ad, 10, 0), 0);
	for (i = 0; i < 10; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
		k = key4(ip);
		assert_int_equal(admit_take(ad, &k), 0);
	}
	k = key4("10.0.1.1");
	assert_int_equal(admit_take(ad, &k), PH_ERR_AGAIN);
	k = key4("10.0.0.1");
	assert_int_equal(admit_take(ad, &k), PH_ERR_AGAIN);
	admit_refused(ad, &rt, &rs);
	assert_int_equal(rt, 2);
	assert_int_equal(rs, 0);
	admit_release(ad, &k);
	assert_int_equal(admit_count(ad), 9);
	k = key4("10.0.1.1");
	assert_int_equal(admit_take(ad, &k), 0);
	/* Limits change at run time; lowering them refuses new ones only. */
	admit_set_limits(ad, 5, 0);
	assert_int_equal(admit_take(ad, &k), PH_ERR_AGAIN);
	assert_int_equal(admit_count(ad), 10);
	for (i = 1; i < 10; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
		k = key4(ip);
		admit_release(ad, &k);
	}
	k = key4("10.0.1.1");
	admit_release(ad, &k);
	assert_int_equal(admit_count(ad), 0);
	admit_free(ad);
}

/* Thousands of sources come and go in every order: counts stay exact and
 * every lookup still finds its entry after deletions moved others. */
static void
test_many_sources(void **state)
{
	enum { N = 3000 };
	static unsigned held[N];
	struct admit_key k;
	struct admit *ad;
	unsigned total = 0, x = 12345;
	char ip[32];
	int i, round, n;

	(void)state;
	memset(held, 0, sizeof(held));
	assert_int_equal(admit_new(&ad, 0, 4), 0);
	for (round = 0; round < 40000; round++) {
		x = x * 1103515245u + 12345u;
		n = (int)((x >> 8) % N);
		snprintf(ip, sizeof(ip), "10.%d.%d.1", n / 256, n % 256);
		k = key4(ip);
		if (((x >> 4) & 1) && held[n] > 0) {
			admit_release(ad, &k);
			held[n]--;
			total--;
		} else if (held[n] < 4) {
			assert_int_equal(admit_take(ad, &k), 0);
			held[n]++;
			total++;
		} else {
			assert_int_equal(admit_take(ad, &k), PH_ERR_DENIED);
		}
		if (round % 997 == 0) {
			assert_int_equal(admit_count(ad), total);
			for (i = 0; i < N; i += 7) {
				snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256,
				    i % 256);
				k = key4(ip);
				assert_int_equal(admit_count_source(ad, &k),
				    held[i]);
			}
		}
	}
	for (i = 0; i < N; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		k = key4(ip);
		while (held[i] > 0) {
			admit_release(ad, &k);
			held[i]--;
		}
	}
	assert_int_equal(admit_count(ad), 0);
	admit_free(ad);
}

static void
test_misuse(void **state)
{
	struct admit_key a = key4("203.0.113.1"), b = key4("203.0.113.2");
	struct admit *ad;

	(void)state;
	assert_int_equal(admit_new(&ad, 2, 2), 0);
	/* Releasing what was never counted changes nothing. */
	admit_release(ad, &a);
	assert_int_equal(admit_take(ad, &a), 0);
	admit_release(ad, &b);
	assert_int_equal(admit_count(ad), 1);
	admit_release(ad, &a);
	admit_release(ad, &a);
	assert_int_equal(admit_count(ad), 0);
	assert_int_equal(admit_take(NULL, &a), PH_ERR_STATE);
	admit_release(NULL, &a);
	admit_free(ad);
	admit_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_per_source_cap),
		cmocka_unit_test(test_total_cap),
		cmocka_unit_test(test_many_sources),
		cmocka_unit_test(test_misuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
