/* api_query: form bodies decoded (percent-escapes, '+', empty pairs) and
 * refused when malformed (bad escapes, invalid UTF-8, NUL, no name, too
 * many pairs, too large); answers written by xmlwriter inside
 * <ActionResult> with text escaped; ErrorResponse with Query codes
 * (AccessDeniedException as AccessDenied 403); random garbage bodies
 * through the whole path without a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/err.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/api_iam.h"
#include "server/api_query.h"
#include "server/authz.h"

#define NS "https://iam.amazonaws.com/doc/2010-05-08/"

static int
parse(const char *body, struct api_form **f)
{
	return api_form_parse(body, strlen(body), f);
}

static void
test_form_decodes(void **state)
{
	struct api_form *f = NULL;

	(void)state;
	assert_int_equal(parse("Action=GetUser&UserName=a%2Bb+c&Empty=&"
	    "Flag&&Path=%2Fx%2F&Tags.member.1.Key=k%C3%A9", &f), 0);
	assert_string_equal(api_form_get(f, "Action"), "GetUser");
	assert_string_equal(api_form_get(f, "UserName"), "a+b c");
	assert_string_equal(api_form_get(f, "Empty"), "");
	assert_string_equal(api_form_get(f, "Flag"), "");
	assert_string_equal(api_form_get(f, "Path"), "/x/");
	assert_string_equal(api_form_getf(f, "Tags.member.%d.Key", 1),
	    "k\xc3\xa9");
	assert_null(api_form_get(f, "Missing"));
	assert_null(api_form_getf(f, "Tags.member.%d.Key", 2));
	api_form_free(f);
	assert_int_equal(api_form_parse("", 0, &f), 0);
	assert_null(api_form_get(f, "Action"));
	api_form_free(f);
	api_form_free(NULL);
}

static void
test_form_refuses(void **state)
{
	static const char *const bad[] = {
		"Action=%ZZ", "Action=%4", "Action=%", "A%zz=1",
		"Action=%FF%FE", "Action=%C0%AF", "Action=%ED%A0%80",
		"Action=Get%00User", "=value", "a=1&=2",
		"Action=%F4%90%80%80",
	};
	struct api_form *f = NULL;
	char *big;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &f), PH_ERR_INVALID);
		assert_null(f);
	}
	/* Raw NUL and invalid bytes in the body itself. */
	assert_int_equal(api_form_parse("a=\0b", 4, &f), PH_ERR_INVALID);
	assert_int_equal(api_form_parse("a=\xff", 3, &f), PH_ERR_INVALID);
	/* Too many pairs. */
	n = (API_FORM_MAX_PAIRS + 1) * 4;
	big = malloc(n + 1);
	assert_non_null(big);
	for (i = 0; i < API_FORM_MAX_PAIRS + 1; i++)
		memcpy(big + i * 4, "a=1&", 4);
	big[n] = '\0';
	assert_int_equal(api_form_parse(big, n, &f), PH_ERR_TOOBIG);
	free(big);
	/* Too large. */
	assert_int_equal(api_form_parse("x", API_FORM_MAX_BODY + 1, &f),
	    PH_ERR_TOOBIG);
	assert_int_equal(api_form_parse(NULL, 3, &f), PH_ERR_INVALID);
}

/* A dispatcher writing a bit of everything, or failing as asked. */
static int
fake_dispatch(const struct api_call *c, const char *action,
    const struct api_form *in, struct api_xml *out, struct api_error *err)
{
	const char *v = api_form_get(in, "Value");

	(void)c;
	if (strcmp(action, "Deny") == 0)
		return api_error_set(err, 400, "AccessDeniedException",
		    "User: x is not authorized");
	if (strcmp(action, "Missing") == 0)
		return api_error_set(err, 404, "NoSuchEntity",
		    "The user with name <b> cannot be found.");
	if (strcmp(action, "Write") != 0)
		return api_error_set(err, 400, "InvalidAction", "no %s",
		    action);
	api_xml_open(out, "User");
	api_xml_text(out, "UserName", v != NULL ? v : "");
	api_xml_int(out, "Count", -42);
	api_xml_bool(out, "Flag", 1);
	api_xml_time(out, "CreateDate", (int64_t)1700000000123);
	api_xml_urlencoded(out, "Doc", "{\"a\": \"b c/\"}");
	api_xml_close(out);
	return 0;
}

static int
run(const char *body, size_t len, char **xml, struct api_error *err,
    char *action)
{
	struct api_call c;
	size_t xlen;

	memset(&c, 0, sizeof(c));
	c.request_id = "11111111-2222-3333-4444-555555555555";
	memset(err, 0, sizeof(*err));
	return api_query_run(&c, NS, fake_dispatch, body, len, action, 128,
	    xml, &xlen, err);
}

static void
test_run_writes_xml(void **state)
{
	struct api_error err;
	char action[128], *xml = NULL;
	const char *body = "Action=Write&Version=2010-05-08&"
	    "Value=%3Cx%3E%26%22%01";

	(void)state;
	assert_int_equal(run(body, strlen(body), &xml, &err, action), 0);
	assert_string_equal(action, "Write");
	assert_non_null(strstr(xml, "<WriteResponse xmlns=\"" NS "\">"
	    "<WriteResult><User><UserName>&lt;x&gt;&amp;&quot;?</UserName>"));
	assert_non_null(strstr(xml, "<Count>-42</Count>"));
	assert_non_null(strstr(xml, "<Flag>true</Flag>"));
	assert_non_null(strstr(xml,
	    "<CreateDate>2023-11-14T22:13:20.123Z</CreateDate>"));
	assert_non_null(strstr(xml, "<Doc>%7B%22a%22%3A%20%22b%20c%2F%22%7D"
	    "</Doc>"));
	assert_non_null(strstr(xml, "</WriteResult><ResponseMetadata>"
	    "<RequestId>11111111-2222-3333-4444-555555555555</RequestId>"
	    "</ResponseMetadata></WriteResponse>"));
	free(xml);
}

static void
test_run_errors(void **state)
{
	static const struct {
		const char *body;
		const char *code;
		int status;
	} cases[] = {
		{ "Action=Deny", "AccessDenied", 403 },
		{ "Action=Missing", "NoSuchEntity", 404 },
		{ "Action=Nope", "InvalidAction", 400 },
		{ "Action=Bad%20Name", "InvalidAction", 400 },
		{ "Version=1", "MissingAction", 400 },
		{ "Action=", "MissingAction", 400 },
		{ "Action=%ZZ", "MalformedQueryString", 400 },
	};
	struct api_error err;
	char action[128], *xml = NULL, code[96], *out;
	size_t i, len;
	int status;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_not_equal(run(cases[i].body, strlen(cases[i].body),
		    &xml, &err, action), 0);
		assert_null(xml);
		assert_int_equal(api_query_error_xml(NS, &err, "rid", &out,
		    &len, &status), 0);
		snprintf(code, sizeof(code), "<Code>%s</Code>",
		    cases[i].code);
		assert_non_null(strstr(out, code));
		assert_int_equal(status, cases[i].status);
		assert_non_null(strstr(out, "<ErrorResponse xmlns=\"" NS
		    "\"><Error><Type>Sender</Type>"));
		assert_non_null(strstr(out, "<RequestId>rid</RequestId>"));
		assert_int_equal(strlen(out), len);
		free(out);
	}
	/* Messages are escaped. */
	run("Action=Missing", 14, &xml, &err, action);
	api_query_error_xml(NS, &err, "rid", &out, &len, &status);
	assert_non_null(strstr(out, "name &lt;b&gt; cannot"));
	free(out);
	/* Control characters would make the XML ill-formed. */
	api_error_set(&err, 404, "NoSuchEntity", "bad \x01\x1f name\ttab");
	api_query_error_xml(NS, &err, "rid", &out, &len, &status);
	assert_non_null(strstr(out, "<Message>bad ?? name\ttab</Message>"));
	free(out);
	/* A server fault is Receiver. */
	api_error_set(&err, 500, "InternalServerError", "x");
	api_query_error_xml(NS, &err, "rid", &out, &len, &status);
	assert_non_null(strstr(out, "<Type>Receiver</Type>"));
	assert_non_null(strstr(out, "<Code>ServiceFailure</Code>"));
	assert_int_equal(status, 500);
	free(out);
}

/* Random bodies, and random mutations of a good one: an answer or an
 * error every time, never a crash (run under ASan in make asan). */
static void
test_garbage_bodies(void **state)
{
	static const char alphabet[] = "%&=+ActionWrite0123456789ABCDEFabcdef"
	    "\xff\xc3\x80\x00.";
	const char *good = "Action=Write&Value=hello%20world&Tags.member.1="
	    "x";
	struct api_error err;
	char body[256], action[128], *xml;
	unsigned seed = 12345;
	size_t i, j, n;

	(void)state;
	for (i = 0; i < 5000; i++) {
		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % sizeof(body);
		if (i % 2 == 0) {
			for (j = 0; j < n; j++) {
				seed = seed * 1103515245u + 12345u;
				body[j] = alphabet[(seed >> 16) %
				    (sizeof(alphabet) - 1)];
			}
		} else {
			n = strlen(good);
			memcpy(body, good, n);
			seed = seed * 1103515245u + 12345u;
			body[(seed >> 16) % n] = alphabet[(seed >> 8) %
			    (sizeof(alphabet) - 1)];
		}
		xml = NULL;
		if (run(body, n, &xml, &err, action) == 0) {
			assert_non_null(xml);
			free(xml);
		} else {
			assert_null(xml);
			assert_true(err.status >= 400);
			assert_true(err.type[0] != '\0');
		}
	}
}

/* IAM's answers that need no store: GetUser with no name from a role
 * session, an unknown action. */
static void
test_iam_without_store(void **state)
{
	struct principal p;
	struct api_error err;
	struct api_call c;
	char action[128], *xml = NULL;
	size_t xlen;
	const char *body = "Action=GetUser&Version=2010-05-08";

	(void)state;
	memset(&p, 0, sizeof(p));
	p.kind = PRINCIPAL_ASSUMED_ROLE;
	snprintf(p.name, sizeof(p.name), "session");
	memset(&c, 0, sizeof(c));
	c.principal = &p;
	c.request_id = "rid";
	memset(&err, 0, sizeof(err));
	assert_int_not_equal(api_query_run(&c, API_IAM_NAMESPACE,
	    api_iam_dispatch, body, strlen(body), action, sizeof(action), &xml,
	    &xlen, &err), 0);
	assert_string_equal(err.type, "ValidationError");
	assert_string_equal(err.message, "Must specify userName when calling "
	    "with non-User credentials");
	body = "Action=CreateVirtualMFADevice&Version=2010-05-08";
	memset(&err, 0, sizeof(err));
	assert_int_not_equal(api_query_run(&c, API_IAM_NAMESPACE,
	    api_iam_dispatch, body, strlen(body), action, sizeof(action), &xml,
	    &xlen, &err), 0);
	assert_string_equal(err.type, "InvalidAction");
	assert_int_equal(err.status, 400);
	/* Validation comes before any store access. */
	body = "Action=CreateUser&UserName=bad%20name";
	memset(&err, 0, sizeof(err));
	assert_int_not_equal(api_query_run(&c, API_IAM_NAMESPACE,
	    api_iam_dispatch, body, strlen(body), action, sizeof(action), &xml,
	    &xlen, &err), 0);
	assert_string_equal(err.type, "ValidationException");
	assert_non_null(strstr(err.message, "at 'userName' failed to satisfy "
	    "constraint: Member must satisfy regular expression pattern"));
	assert_null(xml);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_decodes),
		cmocka_unit_test(test_form_refuses),
		cmocka_unit_test(test_run_writes_xml),
		cmocka_unit_test(test_run_errors),
		cmocka_unit_test(test_garbage_bodies),
		cmocka_unit_test(test_iam_without_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
