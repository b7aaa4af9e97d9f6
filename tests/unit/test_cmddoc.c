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
#include "server/store.h"

#define T0 ((int64_t)1700000000000)

struct fx {
	char dir[64];
	char path[128];
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/ph-cmddoc-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/porthole.db", f->dir);
	if (store_open(&f->srv.store, f->path) != 0)
		return -1;
	f->srv.gw = (struct gateway *)&f->gw_dummy;
	snprintf(f->srv.region, sizeof(f->srv.region), "us-east-1");
	snprintf(f->srv.account_id, sizeof(f->srv.account_id),
	    "123456789012");
	snprintf(f->admin.name, sizeof(f->admin.name), "admin");
	snprintf(f->admin.arn, sizeof(f->admin.arn),
	    "arn:aws:iam::123456789012:user/admin");
	f->admin.is_root_admin = 1;
	f->admin.active = 1;
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
	char p[160];

	authz_free(&f->srv);
	store_close(f->srv.store);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
