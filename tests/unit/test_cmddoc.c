/* cmddoc: Command documents as SendCommand reads them, on a real store in
 * a temporary directory: the built-in AWS documents, lookups by name, ARN
 * and version, parameter resolution with AWS's rules, rendering, the
 * platforms a document runs on, and YAML content. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "common/err.h"
#include "server/api.h"
#include "server/api_ssm.h"
#include "server/authz.h"
#include "server/cmddoc.h"
#include "server/docyaml.h"
#include "server/store.h"
#include "support/fixture.h"

#define T0 ((int64_t)1700000000000)

struct fx {
	struct tmpdb db;
	struct server srv;
	struct principal admin;
	struct api_call c;
	int gw_dummy;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (test_server_open(&f->srv, &f->db, "ph-cmddoc") != 0)
		return -1;
	f->srv.gw = (struct gateway *)&f->gw_dummy;
	test_user(&f->admin, "admin", 1);
	f->c.srv = &f->srv;
	f->c.principal = &f->admin;
	f->c.host = "porthole.example:8443";
	f->c.request_id = "test";
	f->c.now_ms = T0;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	test_server_close(&f->srv, &f->db);
	free(f);
	return 0;
}

static json_t *
load(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(s, 0, &e);

	if (v == NULL)
		fail_msg("bad test JSON: %s: %s", s, e.text);
	return v;
}

/* CreateDocument (or UpdateDocument) through the SSM dispatcher. */
static int
put_doc(struct fx *f, const char *action, const char *name,
    const char *format, const char *type, const char *content,
    struct api_error *err)
{
	json_t *in = json_pack("{s:s, s:s, s:s, s:s}", "Name", name,
	    "Content", content, "DocumentFormat", format, "DocumentType",
	    type), *out = NULL;
	int rc;

	if (strcmp(action, "UpdateDocument") == 0) {
		json_object_del(in, "DocumentType");
		json_object_set_new(in, "DocumentVersion",
		    json_string("$LATEST"));
	}
	memset(err, 0, sizeof(*err));
	rc = api_ssm_dispatch(&f->c, action, in, &out, err);
	json_decref(in);
	json_decref(out);
	return rc;
}

static void
must_put(struct fx *f, const char *action, const char *name,
    const char *format, const char *content)
{
	struct api_error err;

	if (put_doc(f, action, name, format, "Command", content, &err) != 0)
		fail_msg("%s %s: %s: %s", action, name, err.type, err.message);
}

static void
must_load(struct fx *f, const char *name, const char *ver,
    struct cmddoc *d)
{
	struct api_error err;

	memset(&err, 0, sizeof(err));
	if (cmddoc_load(&f->c, name, ver, d, &err) != 0)
		fail_msg("load %s: %s: %s", name, err.type, err.message);
}

static void
expect_load_error(struct fx *f, const char *name, const char *ver,
    const char *type)
{
	struct api_error err;
	struct cmddoc d;

	memset(&err, 0, sizeof(err));
	assert_int_not_equal(cmddoc_load(&f->c, name, ver, &d, &err), 0);
	assert_null(d.content);
	if (strcmp(err.type, type) != 0)
		fail_msg("load %s %s: %s (%s), wanted %s", name,
		    ver != NULL ? ver : "-", err.type, err.message, type);
}

/* Resolve given (JSON text or NULL); *resolved on success. */
static int
resolve(const struct cmddoc *d, const char *given, json_t **resolved,
    struct api_error *err)
{
	json_t *g = given != NULL ? load(given) : NULL;
	int rc;

	memset(err, 0, sizeof(*err));
	rc = cmddoc_resolve_params(d, g, resolved, err);
	json_decref(g);
	return rc;
}

static void
expect_bad_params(const struct cmddoc *d, const char *given,
    const char *fragment)
{
	struct api_error err;
	json_t *r = NULL;

	if (resolve(d, given, &r, &err) == 0)
		fail_msg("%s accepted", given != NULL ? given : "(none)");
	assert_null(r);
	assert_string_equal(err.type, "InvalidParameters");
	assert_int_equal(err.status, 400);
	if (fragment != NULL && strstr(err.message, fragment) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", given, err.message,
		    fragment);
}

static void
test_builtins(void **state)
{
	struct fx *f = *state;
	struct cmddoc d;
	json_t *p;

	must_load(f, "AWS-RunShellScript", NULL, &d);
	assert_string_equal(d.name, "AWS-RunShellScript");
	assert_string_equal(d.version, "1");
	assert_int_equal(strlen(d.hash), 64);
	assert_string_equal(json_string_value(json_object_get(d.content,
	    "schemaVersion")), "1.2");
	p = json_object_get(json_object_get(d.content, "parameters"),
	    "executionTimeout");
	assert_string_equal(json_string_value(json_object_get(p, "default")),
	    "3600");
	assert_true(cmddoc_runs_on(&d, "Linux"));
	assert_true(cmddoc_runs_on(&d, "MacOS"));
	assert_false(cmddoc_runs_on(&d, "Windows"));
	cmddoc_clear(&d);

	must_load(f, "arn:aws:ssm:us-east-1::document/AWS-RunPowerShellScript",
	    "$LATEST", &d);
	assert_true(cmddoc_runs_on(&d, "Windows"));
	assert_true(cmddoc_runs_on(&d, "Linux"));
	assert_false(cmddoc_runs_on(&d, "MacOS"));
	cmddoc_clear(&d);

	must_load(f, "AWS-UpdateSSMAgent", "1", &d);
	assert_true(cmddoc_runs_on(&d, "Windows"));
	assert_true(cmddoc_runs_on(&d, "Linux"));
	assert_true(cmddoc_runs_on(&d, "MacOS"));
	assert_false(cmddoc_runs_on(&d, "Plan9"));
	cmddoc_clear(&d);
	cmddoc_clear(NULL);
}

static void
test_load_errors(void **state)
{
	struct fx *f = *state;

	expect_load_error(f, "NoSuchDocument", NULL, "InvalidDocument");
	expect_load_error(f, "", NULL, "InvalidDocument");
	expect_load_error(f, NULL, NULL, "InvalidDocument");
	expect_load_error(f, "arn:aws:ssm:us-east-1:123456789012:nothing",
	    NULL, "InvalidDocument");
	/* A Session document is not a Command document. */
	expect_load_error(f, "AWS-StartSSHSession", NULL, "InvalidDocument");
	expect_load_error(f, "AWS-RunShellScript", "2",
	    "InvalidDocumentVersion");
	expect_load_error(f, "AWS-RunShellScript", "0",
	    "InvalidDocumentVersion");
	expect_load_error(f, "AWS-RunShellScript", "-1",
	    "InvalidDocumentVersion");
	expect_load_error(f, "AWS-RunShellScript", "1x",
	    "InvalidDocumentVersion");
	expect_load_error(f, "AWS-RunShellScript", "99999999999999999999",
	    "InvalidDocumentVersion");
	expect_load_error(f, "AWS-RunShellScript", "$NEWEST",
	    "InvalidDocumentVersion");
}

static void
test_resolve_shell(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	struct cmddoc d;
	json_t *r = NULL, *doc, *props;

	must_load(f, "AWS-RunShellScript", NULL, &d);
	assert_int_equal(resolve(&d, "{\"commands\":[\"id\",\"uname -a\"]}",
	    &r, &err), 0);
	assert_int_equal(json_array_size(json_object_get(r, "commands")), 2);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(r, "executionTimeout"), 0)), "3600");
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(r, "workingDirectory"), 0)), "");
	doc = cmddoc_render(&d, r);
	assert_non_null(doc);
	props = json_array_get(json_object_get(json_object_get(
	    json_object_get(doc, "runtimeConfig"), "aws:runShellScript"),
	    "properties"), 0);
	assert_true(json_is_array(json_object_get(props, "runCommand")));
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(props, "runCommand"), 1)), "uname -a");
	assert_string_equal(json_string_value(json_object_get(props,
	    "timeoutSeconds")), "3600");
	assert_string_equal(json_string_value(json_object_get(props,
	    "workingDirectory")), "");
	/* The definitions keep their references' defaults untouched. */
	assert_non_null(json_object_get(json_object_get(doc, "parameters"),
	    "commands"));
	json_decref(doc);
	json_decref(r);

	assert_int_equal(resolve(&d, "{\"commands\":[\"x\"],"
	    "\"executionTimeout\":[\"172800\"],\"workingDirectory\":[\"/\"]}",
	    &r, &err), 0);
	json_decref(r);
	expect_bad_params(&d, NULL, "commands");
	expect_bad_params(&d, "{}", "required");
	expect_bad_params(&d, "{\"commands\":[\"x\"],\"nope\":[\"1\"]}",
	    "nope");
	expect_bad_params(&d, "{\"commands\":[\"x\"],"
	    "\"executionTimeout\":[\"172801\"]}", "allowedPattern");
	expect_bad_params(&d, "{\"commands\":[\"x\"],"
	    "\"executionTimeout\":[\"99999999\"]}", "allowedPattern");
	expect_bad_params(&d, "{\"commands\":[\"x\"],"
	    "\"executionTimeout\":[\"abc\"]}", "allowedPattern");
	expect_bad_params(&d, "{\"commands\":[\"x\"],"
	    "\"executionTimeout\":[\"1\",\"2\"]}", "exactly one");
	expect_bad_params(&d, "{\"commands\":[]}", "minItems");
	{
		/* Values matched against a pattern are bounded. */
		static const char head[] =
		    "{\"commands\":[\"x\"],\"executionTimeout\":[\"";
		char *g = malloc(6000);

		memcpy(g, head, sizeof(head) - 1);
		memset(g + sizeof(head) - 1, '1', 5000);
		memcpy(g + sizeof(head) - 1 + 5000, "\"]}", 4);
		expect_bad_params(&d, g, "4096");
		free(g);
	}
	expect_bad_params(&d, "{\"commands\":\"ls\"}", "list");
	expect_bad_params(&d, "{\"commands\":[1]}", "string");
	expect_bad_params(&d, "[\"commands\"]", NULL);
	cmddoc_clear(&d);
}

static void
test_resolve_update_agent(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	struct cmddoc d;
	json_t *r = NULL, *doc, *props;

	must_load(f, "AWS-UpdateSSMAgent", NULL, &d);
	assert_int_equal(resolve(&d, "{\"version\":[\"3.3.1000.0\"]}", &r,
	    &err), 0);
	doc = cmddoc_render(&d, r);
	props = json_array_get(json_object_get(json_object_get(
	    json_object_get(doc, "runtimeConfig"), "aws:updateSsmAgent"),
	    "properties"), 0);
	assert_string_equal(json_string_value(json_object_get(props,
	    "targetVersion")), "3.3.1000.0");
	assert_string_equal(json_string_value(json_object_get(props,
	    "allowDowngrade")), "false");
	assert_string_equal(json_string_value(json_object_get(props,
	    "agentName")), "amazon-ssm-agent");
	json_decref(doc);
	json_decref(r);
	expect_bad_params(&d, "{\"allowDowngrade\":[\"maybe\"]}",
	    "allowedValues");
	cmddoc_clear(&d);
}

static const char typed_doc[] =
    "{\"schemaVersion\":\"2.2\",\"description\":\"typed\","
    "\"parameters\":{"
    "\"n\":{\"type\":\"Integer\",\"default\":5},"
    "\"b\":{\"type\":\"Boolean\",\"default\":true},"
    "\"m\":{\"type\":\"StringMap\",\"default\":{\"k\":\"v\"}},"
    "\"ml\":{\"type\":\"MapList\",\"default\":[{\"a\":\"1\"}]},"
    "\"s\":{\"type\":\"String\",\"allowedValues\":[\"one\",\"two\"]}},"
    "\"mainSteps\":[{\"action\":\"aws:runShellScript\",\"name\":\"lin\","
    "\"precondition\":{\"StringEquals\":[\"platformType\",\"Linux\"]},"
    "\"inputs\":{\"runCommand\":[\"echo {{ s }} {{ n }} {{ b }}\"],"
    "\"timeoutSeconds\":\"{{ n }}\"}},"
    "{\"action\":\"aws:runPowerShellScript\",\"name\":\"win\","
    "\"precondition\":{\"StringEquals\":[\"platformType\",\"Windows\"]},"
    "\"inputs\":{\"runCommand\":[\"echo {{ m }}\"]}}]}";

static void
test_typed_params(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	struct cmddoc d;
	json_t *r = NULL, *doc, *in;

	must_put(f, "CreateDocument", "Typed", "JSON", typed_doc);
	must_load(f, "Typed", NULL, &d);
	assert_true(cmddoc_runs_on(&d, "Linux"));
	assert_true(cmddoc_runs_on(&d, "Windows"));
	/* runShellScript would run on macOS, but its precondition says
	 * Linux. */
	assert_false(cmddoc_runs_on(&d, "MacOS"));
	assert_int_equal(resolve(&d, "{\"s\":[\"two\"]}", &r, &err), 0);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(r, "n"), 0)), "5");
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(r, "m"), 0)), "{\"k\":\"v\"}");
	doc = cmddoc_render(&d, r);
	in = json_object_get(json_array_get(json_object_get(doc, "mainSteps"),
	    0), "inputs");
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(in, "runCommand"), 0)), "echo two 5 true");
	assert_int_equal(json_integer_value(json_object_get(in,
	    "timeoutSeconds")), 5);
	json_decref(doc);
	json_decref(r);
	assert_int_equal(resolve(&d, "{\"s\":[\"one\"],\"n\":[\"-7\"],"
	    "\"b\":[\"false\"],\"m\":[\"{\\\"x\\\":\\\"y\\\"}\"],"
	    "\"ml\":[\"{\\\"a\\\":\\\"2\\\"}\",\"{\\\"b\\\":\\\"3\\\"}\"]}",
	    &r, &err), 0);
	json_decref(r);
	expect_bad_params(&d, "{}", "s");
	expect_bad_params(&d, "{\"s\":[\"three\"]}", "allowedValues");
	expect_bad_params(&d, "{\"s\":[\"one\"],\"n\":[\"1.5\"]}", "integer");
	expect_bad_params(&d, "{\"s\":[\"one\"],\"n\":[\"\"]}", "integer");
	expect_bad_params(&d, "{\"s\":[\"one\"],\"b\":[\"yes\"]}", "true");
	expect_bad_params(&d, "{\"s\":[\"one\"],\"m\":[\"[1]\"]}", "StringMap");
	expect_bad_params(&d, "{\"s\":[\"one\"],\"ml\":[\"nope\"]}",
	    "MapList");
	cmddoc_clear(&d);
}

static void
test_versions(void **state)
{
	struct fx *f = *state;
	struct cmddoc d;

	must_put(f, "CreateDocument", "Ver", "JSON",
	    "{\"schemaVersion\":\"2.2\",\"description\":\"one\","
	    "\"mainSteps\":[{\"action\":\"aws:runShellScript\","
	    "\"name\":\"a\",\"inputs\":{\"runCommand\":[\"echo 1\"]}}]}");
	must_put(f, "UpdateDocument", "Ver", "JSON",
	    "{\"schemaVersion\":\"2.2\",\"description\":\"two\","
	    "\"mainSteps\":[{\"action\":\"aws:runShellScript\","
	    "\"name\":\"a\",\"inputs\":{\"runCommand\":[\"echo 2\"]}}]}");
	must_load(f, "Ver", NULL, &d);
	assert_string_equal(d.version, "1");
	cmddoc_clear(&d);
	must_load(f, "Ver", "$DEFAULT", &d);
	assert_string_equal(d.version, "1");
	cmddoc_clear(&d);
	must_load(f, "Ver", "$LATEST", &d);
	assert_string_equal(d.version, "2");
	assert_string_equal(json_string_value(json_object_get(d.content,
	    "description")), "two");
	cmddoc_clear(&d);
	must_load(f, "arn:aws:ssm:us-east-1:123456789012:document/Ver", "2",
	    &d);
	assert_string_equal(d.version, "2");
	cmddoc_clear(&d);
	expect_load_error(f, "Ver", "3", "InvalidDocumentVersion");
}

static const char yaml_doc[] =
    "---\n"
    "schemaVersion: 2.2   # a plain 2.2 stays the string \"2.2\"\n"
    "description: \"YAML doc\"\n"
    "parameters:\n"
    "  who:\n"
    "    type: String\n"
    "    default: world\n"
    "    allowedPattern: '^[a-z]+$'\n"
    "  count:\n"
    "    type: Integer\n"
    "    default: 3\n"
    "  lines:\n"
    "    type: StringList\n"
    "    default: [\"a\", 'b']\n"
    "    minItems: 1\n"
    "mainSteps:\n"
    "  - action: aws:runShellScript\n"
    "    name: hello.world-1\n"
    "    precondition:\n"
    "      StringEquals: [platformType, Linux]\n"
    "    inputs:\n"
    "      timeoutSeconds: '60'\n"
    "      runCommand:\n"
    "        - echo hello {{ who }} {{count}}\n"
    "        - |\n"
    "          cat <<EOF\n"
    "          {{ lines }}\n"
    "          EOF\n";

static void
test_yaml(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	struct cmddoc d;
	json_t *r = NULL, *doc, *in, *out;
	const char *s;

	must_put(f, "CreateDocument", "Yaml-Cmd", "YAML", yaml_doc);
	must_load(f, "Yaml-Cmd", NULL, &d);
	assert_string_equal(json_string_value(json_object_get(d.content,
	    "schemaVersion")), "2.2");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    json_object_get(d.content, "parameters"), "count"), "default")),
	    3);
	assert_true(cmddoc_runs_on(&d, "Linux"));
	assert_false(cmddoc_runs_on(&d, "MacOS"));
	assert_int_equal(resolve(&d, "{\"who\":[\"you\"]}", &r, &err), 0);
	doc = cmddoc_render(&d, r);
	in = json_object_get(json_array_get(json_object_get(doc, "mainSteps"),
	    0), "inputs");
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(in, "runCommand"), 0)), "echo hello you 3");
	s = json_string_value(json_array_get(json_object_get(in,
	    "runCommand"), 1));
	assert_non_null(strstr(s, "[\"a\",\"b\"]"));
	json_decref(doc);
	json_decref(r);
	expect_bad_params(&d, "{\"who\":[\"You!\"]}", "allowedPattern");
	cmddoc_clear(&d);

	/* GetDocument: stored YAML as given, or converted to JSON. */
	in = json_pack("{s:s}", "Name", "Yaml-Cmd");
	out = NULL;
	assert_int_equal(api_ssm_dispatch(&f->c, "GetDocument", in, &out,
	    &err), 0);
	assert_string_equal(json_string_value(json_object_get(out,
	    "Content")), yaml_doc);
	assert_string_equal(json_string_value(json_object_get(out,
	    "DocumentFormat")), "YAML");
	json_decref(out);
	json_object_set_new(in, "DocumentFormat", json_string("JSON"));
	assert_int_equal(api_ssm_dispatch(&f->c, "GetDocument", in, &out,
	    &err), 0);
	assert_string_equal(json_string_value(json_object_get(out,
	    "DocumentFormat")), "JSON");
	doc = load(json_string_value(json_object_get(out, "Content")));
	assert_string_equal(json_string_value(json_object_get(doc,
	    "description")), "YAML doc");
	json_decref(doc);
	json_decref(out);
	json_decref(in);

	/* DescribeDocument's platforms follow the precondition. */
	in = json_pack("{s:s}", "Name", "Yaml-Cmd");
	assert_int_equal(api_ssm_dispatch(&f->c, "DescribeDocument", in, &out,
	    &err), 0);
	doc = json_object_get(json_object_get(out, "Document"),
	    "PlatformTypes");
	assert_int_equal(json_array_size(doc), 1);
	assert_string_equal(json_string_value(json_array_get(doc, 0)),
	    "Linux");
	json_decref(out);
	json_decref(in);

	/* A built-in's JSON as YAML, and that YAML read back. */
	in = json_pack("{s:s, s:s}", "Name", "AWS-RunShellScript",
	    "DocumentFormat", "YAML");
	assert_int_equal(api_ssm_dispatch(&f->c, "GetDocument", in, &out,
	    &err), 0);
	must_put(f, "CreateDocument", "Shell-Copy", "YAML",
	    json_string_value(json_object_get(out, "Content")));
	json_decref(out);
	json_decref(in);
	must_load(f, "Shell-Copy", NULL, &d);
	assert_true(cmddoc_runs_on(&d, "Linux"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_object_get(d.content, "parameters"), "executionTimeout"),
	    "default")), "3600");
	cmddoc_clear(&d);
}

static void
expect_bad_doc(struct fx *f, const char *what, const char *format,
    const char *content, const char *fragment)
{
	struct api_error err;

	if (put_doc(f, "CreateDocument", "Bad-Doc", format, "Command",
	    content, &err) == 0)
		fail_msg("%s: accepted", what);
	if (strcmp(err.type, "InvalidDocumentContent") != 0 &&
	    strcmp(err.type, "InvalidDocumentSchemaVersion") != 0 &&
	    strcmp(err.type, "MaxDocumentSizeExceeded") != 0)
		fail_msg("%s: %s (%s)", what, err.type, err.message);
	assert_int_equal(err.status, 400);
	if (fragment != NULL && strstr(err.message, fragment) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", what, err.message,
		    fragment);
}

#define STEP(act, inputs) \
    "{\"schemaVersion\":\"2.2\",\"mainSteps\":[{\"action\":\"" act "\"," \
    "\"name\":\"s\",\"inputs\":" inputs "}]}"

static void
test_garbage(void **state)
{
	struct fx *f = *state;
	char *big;
	size_t i, n;

	expect_bad_doc(f, "bad yaml", "YAML", "a: [b\n", "not valid YAML");
	expect_bad_doc(f, "tab yaml", "YAML", "a:\n\t- b\n", "YAML");
	expect_bad_doc(f, "alias", "YAML", "a: &x [1]\nb: *x\n", "alias");
	expect_bad_doc(f, "bomb", "YAML",
	    "a: &a [\"x\",\"x\"]\nb: &b [*a,*a]\nc: &c [*b,*b]\n", "alias");
	expect_bad_doc(f, "two docs", "YAML", "a: 1\n---\nb: 2\n",
	    "more than one");
	expect_bad_doc(f, "dup key", "YAML", "a: 1\na: 2\n", "twice");
	expect_bad_doc(f, "complex key", "YAML", "? [a]\n: 1\n", "scalar");
	expect_bad_doc(f, "empty yaml", "YAML", "# nothing\n", "empty");
	expect_bad_doc(f, "scalar yaml", "YAML", "hello\n", "mapping");
	expect_bad_doc(f, "list yaml", "YAML", "- a\n", "mapping");
	{
		/* Not reachable through JSON requests; docyaml itself. */
		static const char bad[] = "a: \"\xff\xfe\"\nb: \"x\\0y\"\n";
		char why[160];

		assert_null(docyaml_load(bad, sizeof(bad) - 1, why,
		    sizeof(why)));
		assert_null(docyaml_load("b: \"x\\0y\"\n", 10, why,
		    sizeof(why)));
	}
	n = 200;
	big = malloc(n * 2 + 16);
	for (i = 0; i < n; i++)
		big[i] = '[';
	big[n] = '\0';
	expect_bad_doc(f, "deep yaml", "YAML", big, "deep");
	for (i = 0; i < n; i++)
		big[i] = '[';
	for (i = 0; i < n; i++)
		big[n + i] = ']';
	big[2 * n] = '\0';
	expect_bad_doc(f, "deep json", "JSON", big, NULL);
	free(big);
	big = malloc(70 * 1024);
	memset(big, ' ', 70 * 1024 - 1);
	big[70 * 1024 - 1] = '\0';
	expect_bad_doc(f, "too big", "YAML", big, "64 KB");
	free(big);

	expect_bad_doc(f, "no schema", "JSON", "{\"mainSteps\":[]}",
	    "schemaVersion is required");
	expect_bad_doc(f, "schema type", "JSON", "{\"schemaVersion\":2.2}",
	    "must be a string");
	expect_bad_doc(f, "unknown top", "JSON", "{\"schemaVersion\":\"2.2\","
	    "\"mainSteps\":[],\"extra\":1}", "extra");
	expect_bad_doc(f, "no steps", "JSON", "{\"schemaVersion\":\"2.2\"}",
	    "mainSteps");
	expect_bad_doc(f, "steps not list", "JSON", "{\"schemaVersion\":"
	    "\"2.2\",\"mainSteps\":{}}", "mainSteps");
	expect_bad_doc(f, "unknown action", "JSON", STEP("aws:runDocument",
	    "{}"), "aws:runDocument");
	expect_bad_doc(f, "no runCommand", "JSON", STEP("aws:runShellScript",
	    "{}"), "runCommand is required");
	expect_bad_doc(f, "runCommand type", "JSON",
	    STEP("aws:runShellScript", "{\"runCommand\":[1]}"),
	    "list of strings");
	expect_bad_doc(f, "unknown input", "JSON",
	    STEP("aws:runShellScript", "{\"runCommand\":\"x\",\"foo\":1}"),
	    "foo");
	expect_bad_doc(f, "timeout", "JSON",
	    STEP("aws:runShellScript", "{\"runCommand\":\"x\","
	    "\"timeoutSeconds\":0}"), "timeoutSeconds");
	expect_bad_doc(f, "inputs type", "JSON",
	    STEP("aws:runShellScript", "[]"), "inputs");
	expect_bad_doc(f, "agent inputs", "JSON",
	    STEP("aws:updateSsmAgent", "{\"agentName\":\"a\"}"),
	    "source is required");
	expect_bad_doc(f, "bad name", "JSON", "{\"schemaVersion\":\"2.2\","
	    "\"mainSteps\":[{\"action\":\"aws:runShellScript\",\"name\":"
	    "\"a b\",\"inputs\":{\"runCommand\":\"x\"}}]}", "name");
	expect_bad_doc(f, "dup name", "JSON", "{\"schemaVersion\":\"2.2\","
	    "\"mainSteps\":[{\"action\":\"aws:runShellScript\",\"name\":"
	    "\"a\",\"inputs\":{\"runCommand\":\"x\"}},{\"action\":"
	    "\"aws:runShellScript\",\"name\":\"a\",\"inputs\":{\"runCommand\":"
	    "\"y\"}}]}", "earlier step");
	expect_bad_doc(f, "precondition", "JSON", "{\"schemaVersion\":\"2.2\","
	    "\"mainSteps\":[{\"action\":\"aws:runShellScript\",\"name\":"
	    "\"a\",\"precondition\":{\"StringEquals\":[\"platformType\","
	    "\"BeOS\"]},\"inputs\":{\"runCommand\":\"x\"}}]}",
	    "precondition");
	expect_bad_doc(f, "bad regex", "JSON", "{\"schemaVersion\":\"2.2\","
	    "\"parameters\":{\"p\":{\"type\":\"String\",\"allowedPattern\":"
	    "\"([a-z\"}},\"mainSteps\":[{\"action\":\"aws:runShellScript\","
	    "\"name\":\"a\",\"inputs\":{\"runCommand\":\"{{ p }}\"}}]}",
	    "allowedPattern");
	assert_true(cmddoc_pattern_ok("^[a-zA-Z0-9_.-]{1,128}$"));
	assert_true(cmddoc_pattern_ok("([1-9][0-9]{0,4})|(172800)"));
	assert_true(cmddoc_pattern_ok("^a{2}[{]x\\{$"));
	assert_false(cmddoc_pattern_ok("(((a{0,255}){0,255}){0,255})"));
	assert_false(cmddoc_pattern_ok("^.{0,4096}$"));
	assert_false(cmddoc_pattern_ok("(a{1,100}){1,100}"));
	assert_false(cmddoc_pattern_ok("(((((((((((((((((((((((((((((((((("
	    "a))))))))))))))))))))))))))))))))))"));
	assert_false(cmddoc_pattern_ok("[a-"));
	/* Stacked + doubles what glibc compiles (a fuzzing find). */
	assert_false(cmddoc_pattern_ok("()2++++++++++++++++++++++++++++++"));
	assert_true(cmddoc_pattern_ok("^[a-z]+(,[a-z]+)*$"));
	assert_false(cmddoc_pattern_ok(NULL));
	expect_bad_doc(f, "costly regex", "JSON", "{\"schemaVersion\":\"2.2\","
	    "\"parameters\":{\"p\":{\"type\":\"String\",\"allowedPattern\":"
	    "\"((a{1,200}){1,200}){1,200}\"}},\"mainSteps\":[{\"action\":"
	    "\"aws:runShellScript\",\"name\":\"a\",\"inputs\":{\"runCommand\":"
	    "\"{{ p }}\"}}]}", "allowedPattern");
	expect_bad_doc(f, "undefined ref", "JSON", "{\"schemaVersion\":\"2.2\","
	    "\"mainSteps\":[{\"action\":\"aws:runShellScript\",\"name\":"
	    "\"a\",\"inputs\":{\"runCommand\":\"echo {{ nope }}\"}}]}",
	    "nope");
	expect_bad_doc(f, "param type", "JSON", "{\"schemaVersion\":\"2.2\","
	    "\"parameters\":{\"p\":{\"type\":\"Float\"}},\"mainSteps\":[{"
	    "\"action\":\"aws:runShellScript\",\"name\":\"a\",\"inputs\":{"
	    "\"runCommand\":\"x\"}}]}", "type must be");
	expect_bad_doc(f, "default type", "JSON", "{\"schemaVersion\":\"2.2\","
	    "\"parameters\":{\"p\":{\"type\":\"Boolean\",\"default\":\"maybe\""
	    "}},\"mainSteps\":[{\"action\":\"aws:runShellScript\",\"name\":"
	    "\"a\",\"inputs\":{\"runCommand\":\"x\"}}]}", "default");
	expect_bad_doc(f, "minItems", "JSON", "{\"schemaVersion\":\"2.2\","
	    "\"parameters\":{\"p\":{\"type\":\"StringList\",\"minItems\":"
	    "\"1\"}},\"mainSteps\":[{\"action\":\"aws:runShellScript\","
	    "\"name\":\"a\",\"inputs\":{\"runCommand\":\"x\"}}]}", "minItems");
	expect_bad_doc(f, "1.2 with steps", "JSON", "{\"schemaVersion\":\"1.2\","
	    "\"mainSteps\":[],\"runtimeConfig\":{}}", "runtimeConfig");
	expect_bad_doc(f, "1.2 plugin", "JSON", "{\"schemaVersion\":\"1.2\","
	    "\"runtimeConfig\":{\"aws:psModule\":{\"properties\":[]}}}",
	    "aws:psModule");
	expect_bad_doc(f, "1.2 props", "JSON", "{\"schemaVersion\":\"1.2\","
	    "\"runtimeConfig\":{\"aws:runShellScript\":{\"properties\":"
	    "[{\"id\":\"0\"}]}}}", "runCommand is required");
	expect_bad_doc(f, "yaml wrong type", "YAML", "schemaVersion: '2.2'\n"
	    "mainSteps:\n  - action: aws:runShellScript\n    name: a\n"
	    "    inputs:\n      runCommand: {a: b}\n", "runCommand");
	expect_bad_doc(f, "schema", "JSON", "{\"schemaVersion\":\"3.0\","
	    "\"mainSteps\":[{\"action\":\"aws:runShellScript\",\"name\":\"a\","
	    "\"inputs\":{\"runCommand\":\"x\"}}]}", "2.2");
}

static void
test_docyaml_scalars(void **state)
{
	static const char y[] =
	    "s: '1'\nq: \"true\"\ni: 42\nn: -7\np: +5\nz: 0\noct: 0755\n"
	    "f: 2.2\nt: true\nF: False\nnull1: ~\nnull2:\nnull3: null\n"
	    "tagged: !!str 12\nflow: {a: [1, b]}\nbig: 99999999999999999999\n"
	    "block: |\n  two\n  lines\n";
	static const char want[] =
	    "{\"s\":\"1\",\"q\":\"true\",\"i\":42,\"n\":-7,\"p\":5,\"z\":0,"
	    "\"oct\":\"0755\",\"f\":\"2.2\",\"t\":true,\"F\":false,"
	    "\"null1\":null,\"null2\":null,\"null3\":null,\"tagged\":\"12\","
	    "\"flow\":{\"a\":[1,\"b\"]},\"big\":\"99999999999999999999\","
	    "\"block\":\"two\\nlines\\n\"}";
	char why[160];
	json_t *got, *w = load(want);

	(void)state;
	got = docyaml_load(y, sizeof(y) - 1, why, sizeof(why));
	if (got == NULL)
		fail_msg("docyaml: %s", why);
	if (!json_equal(got, w)) {
		char *d = json_dumps(got, JSON_COMPACT);

		fail_msg("got %s", d);
	}
	json_decref(got);
	json_decref(w);
	/* JSON text is YAML too (older porthole stored YAML that way). */
	got = docyaml_load(want, sizeof(want) - 1, why, sizeof(why));
	assert_non_null(got);
	json_decref(got);
	assert_null(docyaml_load("a: *x\n", 6, why, sizeof(why)));
	assert_non_null(strstr(why, "line 1"));
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_builtins),
		T(test_load_errors),
		T(test_resolve_shell),
		T(test_resolve_update_agent),
		T(test_typed_params),
		T(test_versions),
		T(test_yaml),
		T(test_garbage),
		cmocka_unit_test(test_docyaml_scalars),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
