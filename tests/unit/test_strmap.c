/* strmap: insert, replace, lookup, delete-if-matches, growth, snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "server/strmap.h"

static void
test_put_get_replace_del(void **state)
{
	struct strmap *m;
	int a = 1, b = 2;
	void *old;

	(void)state;
	assert_int_equal(strmap_new(&m), 0);
	assert_null(strmap_get(m, "x"));
	assert_int_equal(strmap_put(m, "x", &a, &old), 0);
	assert_null(old);
	assert_ptr_equal(strmap_get(m, "x"), &a);
	assert_int_equal(strmap_put(m, "x", &b, &old), 0);
	assert_ptr_equal(old, &a);
	assert_int_equal(strmap_count(m), 1);
	/* Deleting with the wrong value keeps the entry (a replaced channel
	 * must not remove its successor). */
	strmap_del(m, "x", &a);
	assert_ptr_equal(strmap_get(m, "x"), &b);
	strmap_del(m, "x", &b);
	assert_null(strmap_get(m, "x"));
	assert_int_equal(strmap_count(m), 0);
	strmap_free(m);
}

static void
test_many(void **state)
{
	static int vals[20000];
	void *snap[20000];
	struct strmap *m;
	char key[32];
	size_t i;

	(void)state;
	assert_int_equal(strmap_new(&m), 0);
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "mi-%017zx", i);
		assert_int_equal(strmap_put(m, key, &vals[i], NULL), 0);
	}
	assert_int_equal(strmap_count(m), 20000);
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "mi-%017zx", i);
		assert_ptr_equal(strmap_get(m, key), &vals[i]);
	}
	assert_int_equal(strmap_values(m, snap, 20000), 20000);
	assert_int_equal(strmap_values(m, snap, 10), 10);
	for (i = 0; i < 20000; i += 2) {
		snprintf(key, sizeof(key), "mi-%017zx", i);
		strmap_del(m, key, NULL);
	}
	assert_int_equal(strmap_count(m), 10000);
	strmap_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_replace_del),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
