/* docparams: {{ name }} substitution: whole-string references keep the
 * value's type, references in text become text, unknown names and
 * {{ssm:...}} stay, parameters definitions are left alone, and depth and
 * size are bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "common/docparams.h"
#include "common/err.h"

static json_t *
load(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(s, 0, &e);

	if (v == NULL)
		fail_msg("bad test JSON: %s: %s", s, e.text);
	return v;
}

/* Substitute and compare with the expected JSON. */
static void
expect(const char *doc, const char *params, const char *want)
{
	json_t *d = load(doc), *p = load(params), *w = load(want);

	assert_int_equal(docparams_substitute(d, p, 1 << 20), 0);
	if (!json_equal(d, w)) {
		char *got = json_dumps(d, JSON_COMPACT);

		fail_msg("got %s, wanted %s", got, want);
	}
	json_decref(d);
	json_decref(p);
	json_decref(w);
}

static void
test_whole_string_keeps_type(void **state)
{
	(void)state;
	expect("{\"a\":\"{{ commands }}\",\"b\":\"{{x}}\",\"c\":[\"{{ x }}\"]}",
	    "{\"commands\":[\"ls\",\"id\"],\"x\":\"v\"}",
	    "{\"a\":[\"ls\",\"id\"],\"b\":\"v\",\"c\":[\"v\"]}");
	expect("{\"n\":\"  {{ n }} \"}", "{\"n\":5}", "{\"n\":5}");
}

static void
test_inside_text(void **state)
{
	(void)state;
	expect("{\"a\":\"cd {{ dir }} && {{dir}}/run {{ l }}\"}",
	    "{\"dir\":\"/tmp\",\"l\":[\"a\",\"b\"]}",
	    "{\"a\":\"cd /tmp && /tmp/run [\\\"a\\\",\\\"b\\\"]\"}");
	expect("{\"a\":\"x{{ e }}y\"}", "{\"e\":\"\"}", "{\"a\":\"xy\"}");
}

static void
test_unknown_and_ssm_stay(void **state)
{
	(void)state;
	expect("{\"a\":\"{{ nope }}\",\"b\":\"{{ssm:/p}} {{ x }}\","
	    "\"c\":\"{{ unclosed\",\"d\":\"}} {{\"}",
	    "{\"x\":\"1\"}",
	    "{\"a\":\"{{ nope }}\",\"b\":\"{{ssm:/p}} 1\","
	    "\"c\":\"{{ unclosed\",\"d\":\"}} {{\"}");
}

static void
test_parameters_untouched(void **state)
{
	(void)state;
	expect("{\"parameters\":{\"x\":{\"default\":\"{{ x }}\"}},"
	    "\"mainSteps\":[{\"inputs\":{\"parameters\":\"{{ x }}\"}}]}",
	    "{\"x\":\"v\"}",
	    "{\"parameters\":{\"x\":{\"default\":\"{{ x }}\"}},"
	    "\"mainSteps\":[{\"inputs\":{\"parameters\":\"v\"}}]}");
}

static void
test_no_params(void **state)
{
	json_t *d = load("{\"a\":\"{{ x }}\"}");

	(void)state;
	assert_int_equal(docparams_substitute(d, NULL, 100), 0);
	assert_string_equal(json_string_value(json_object_get(d, "a")),
	    "{{ x }}");
	assert_int_equal(docparams_substitute(NULL, NULL, 100),
	    PH_ERR_INVALID);
	json_decref(d);
}

static void
test_depth_bounded(void **state)
{
	json_t *d = json_string("{{ x }}"), *o, *p = load("{\"x\":\"v\"}");
	int i;

	(void)state;
	for (i = 0; i < 100; i++) {
		o = json_array();
		json_array_append_new(o, d);
		d = o;
	}
	o = json_object();
	json_object_set_new(o, "deep", d);
	assert_int_equal(docparams_substitute(o, p, 1 << 20),
	    PH_ERR_INVALID);
	json_decref(o);
	json_decref(p);
}

static void
test_size_bounded(void **state)
{
	json_t *d = json_object(), *l = json_array(), *p = json_object();
	char big[1001];
	int i;

	(void)state;
	memset(big, 'a', 1000);
	big[1000] = '\0';
	json_object_set_new(p, "x", json_string(big));
	for (i = 0; i < 100; i++)
		json_array_append_new(l, json_string("{{ x }}{{ x }}"));
	json_object_set_new(d, "l", l);
	/* 200 KB of output against a 64 KB limit. */
	assert_int_equal(docparams_substitute(d, p, 64 * 1024),
	    PH_ERR_INVALID);
	json_decref(d);
	d = load("{\"a\":\"{{ x }}\"}");
	assert_int_equal(docparams_substitute(d, p, 64 * 1024), 0);
	assert_int_equal(json_string_length(json_object_get(d, "a")), 1000);
	json_decref(d);
	json_decref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_string_keeps_type),
		cmocka_unit_test(test_inside_text),
		cmocka_unit_test(test_unknown_and_ssm_stay),
		cmocka_unit_test(test_parameters_untouched),
		cmocka_unit_test(test_no_params),
		cmocka_unit_test(test_depth_bounded),
		cmocka_unit_test(test_size_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
