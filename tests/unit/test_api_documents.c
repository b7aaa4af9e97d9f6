/* api_documents: the document actions through api_ssm_dispatch on a real
 * store in a temporary directory (versions, defaults, the built-in
 * documents, every content rule, garbage), and the preferences that
 * StartSession merges into session documents, with the gateway replaced
 * by the stubs below. */
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
#include <sqlite3.h>

#include "common/err.h"
#include "server/api.h"
#include "server/api_documents.h"
#include "server/api_json.h"
#include "server/api_ssm.h"
#include "server/authz.h"
#include "server/gateway.h"
#include "server/store.h"
#include "support/fixture.h"

#define T0 ((int64_t)1700000000000)

/* ---- gateway stubs (weak: the real gateway wins if linked in) ----------- */

static int stub_starts;
static json_t *stub_doc;

/* Run Command's dispatcher (linked through api_ssm) sends on the control
 * channel; no agent is connected here. */
__attribute__((weak)) int
gateway_send_control(struct gateway *gw, const char *instance_id,
    const char *type, const char *payload, uint8_t message_id[16])
{
	(void)gw;
	(void)instance_id;
	(void)type;
	(void)payload;
	(void)message_id;
	return PH_ERR_NOTFOUND;
}

__attribute__((weak)) int
gateway_instance_online(struct gateway *gw, const char *instance_id)
{
	(void)gw;
	(void)instance_id;
	return 1;
}

__attribute__((weak)) int
gateway_start_session(struct gateway *gw, const char *instance_id,
    const char *session_id, const char *document_name,
    json_t *document_content, json_t *parameters, const char *owner_arn,
    const char *run_as_user)
{
	(void)gw;
	(void)instance_id;
	(void)session_id;
	(void)document_name;
	(void)parameters;
	(void)owner_arn;
	(void)run_as_user;
	stub_starts++;
	json_decref(stub_doc);
	stub_doc = json_incref(document_content);
	return 0;
}

__attribute__((weak)) int
gateway_terminate_session(struct gateway *gw, const char *session_id,
    const char *reason)
{
	(void)gw;
	(void)session_id;
	(void)reason;
	return 0;
}

__attribute__((weak)) void
gateway_disconnect_instance(struct gateway *gw, const char *instance_id)
{
	(void)gw;
	(void)instance_id;
}

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	struct tmpdb db;
	struct server srv;
	struct principal admin, bob;
	int gw_dummy;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (test_server_open(&f->srv, &f->db, "ph-doc") != 0)
		return -1;
	f->srv.gw = (struct gateway *)&f->gw_dummy;
	test_user(&f->admin, "admin", 1);
	test_user(&f->bob, "bob", 0);
	stub_starts = 0;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	test_server_close(&f->srv, &f->db);
	json_decref(stub_doc);
	stub_doc = NULL;
	free(f);
	return 0;
}

/* Run an action with a request object (reference stolen). */
static json_t *
run_obj(struct fx *f, const struct principal *p, const char *action,
    json_t *in, struct api_error *err)
{
	return test_ssm_call(&f->srv, p, T0, action, in, err);
}

static json_t *
run(struct fx *f, const char *action, const char *body,
    struct api_error *err)
{
	json_error_t jerr;

	return run_obj(f, &f->admin, action, json_loads(body, 0, &jerr), err);
}

static void
check_error(const char *what, const struct api_error *err, json_t *out,
    const char *type, const char *fragment)
{
	if (out != NULL)
		fail_msg("%s succeeded", what);
	if (strcmp(err->type, type) != 0)
		fail_msg("%s: %s (%s), wanted %s", what, err->type,
		    err->message, type);
	assert_int_equal(err->status, 400);
	if (fragment != NULL && strstr(err->message, fragment) == NULL)
		fail_msg("%s: message \"%s\" lacks \"%s\"", what, err->message,
		    fragment);
}

/* The call must fail with this type (and message fragment). */
static void
expect_error(struct fx *f, const char *action, const char *body,
    const char *type, const char *fragment)
{
	struct api_error err;
	json_t *out = run(f, action, body, &err);

	check_error(body, &err, out, type, fragment);
}

static void
expect_ok(struct fx *f, const char *action, const char *body)
{
	struct api_error err;
	json_t *out = run(f, action, body, &err);

	if (out == NULL)
		fail_msg("%s %s: %s: %s", action, body, err.type, err.message);
	json_decref(out);
}

static const char *
sget(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	if (s == NULL)
		fail_msg("no string member %s", k);
	return s;
}

/* {"Name": name, "Content": content (text), ...extra members} */
static json_t *
doc_req(const char *name, const char *content, const char *extra)
{
	json_error_t jerr;
	json_t *o;

	o = json_loads(extra != NULL ? extra : "{}", 0, &jerr);
	assert_non_null(o);
	json_object_set_new(o, "Name", json_string(name));
	json_object_set_new(o, "Content", json_string(content));
	return o;
}

static json_t *
create(struct fx *f, const char *name, const char *content,
    const char *extra, struct api_error *err)
{
	return run_obj(f, &f->admin, "CreateDocument",
	    doc_req(name, content, extra), err);
}

static json_t *
update(struct fx *f, const char *name, const char *content,
    const char *extra, struct api_error *err)
{
	return run_obj(f, &f->admin, "UpdateDocument",
	    doc_req(name, content, extra), err);
}

/* A Session document content check: the type and fragment wanted, or
 * NULL type for success. */
static void
check_session(const char *content, const char *type, const char *fragment)
{
	struct api_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = api_documents_check_content("Session", "JSON", content,
	    strlen(content), &err);
	if (type == NULL) {
		if (rc != 0)
			fail_msg("%s: %s: %s", content, err.type, err.message);
		return;
	}
	check_error(content, &err, NULL, type, fragment);
}

#define SHELL(inputs) \
	"{\"schemaVersion\":\"1.0\",\"sessionType\":\"Standard_Stream\"," \
	"\"inputs\":" inputs "}"

static const char *const doc_a = "{\"schemaVersion\":\"1.0\","
    "\"description\":\"ops shell\",\"sessionType\":\"Standard_Stream\","
    "\"inputs\":{\"idleSessionTimeout\":\"5\",\"runAsEnabled\":false}}";
static const char *const doc_b = "{\"schemaVersion\":\"1.0\","
    "\"description\":\"ops shell v2\",\"sessionType\":\"Standard_Stream\","
    "\"inputs\":{\"idleSessionTimeout\":10}}";
static const char *const doc_c = "{\"schemaVersion\":\"1.0\","
    "\"description\":\"ops shell v3\",\"sessionType\":\"Standard_Stream\"}";
static const char *const doc_cmd = "{\"schemaVersion\":\"2.2\","
    "\"description\":\"uptime\",\"mainSteps\":[{\"action\":"
    "\"aws:runShellScript\",\"name\":\"run\",\"inputs\":{\"runCommand\":"
    "[\"uptime\"]}}]}";
static const char *const doc_inter = "{\"schemaVersion\":\"1.0\","
    "\"description\":\"top\",\"sessionType\":\"InteractiveCommands\","
    "\"parameters\":{\"delay\":{\"type\":\"String\",\"description\":"
    "\"seconds\",\"default\":\"2\",\"allowedPattern\":\"^[0-9]+$\"}},"
    "\"properties\":{\"linux\":{\"commands\":\"top -d {{ delay }}\","
    "\"runAsElevated\":false}}}";

/* ---- built-in documents ------------------------------------------------- */

static const char *const builtins[] = { "SSM-SessionManagerRunShell",
    "AWS-StartInteractiveCommand", "AWS-StartNonInteractiveCommand",
    "AWS-StartPortForwardingSession",
    "AWS-StartPortForwardingSessionToRemoteHost", "AWS-StartSSHSession",
    NULL };

static void
test_builtins(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out, *d, *g;
	char body[200];
	size_t i;

	for (i = 0; builtins[i] != NULL; i++) {
		snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", builtins[i]);
		out = run(f, "DescribeDocument", body, &err);
		assert_non_null(out);
		d = json_object_get(out, "Document");
		assert_string_equal(sget(d, "Name"), builtins[i]);
		assert_string_equal(sget(d, "DocumentType"), "Session");
		assert_string_equal(sget(d, "DocumentVersion"), "1");
		assert_string_equal(sget(d, "LatestVersion"), "1");
		assert_string_equal(sget(d, "DefaultVersion"), "1");
		assert_string_equal(sget(d, "SchemaVersion"), "1.0");
		assert_string_equal(sget(d, "Status"), "Active");
		assert_string_equal(sget(d, "HashType"), "Sha256");
		assert_int_equal(strlen(sget(d, "Hash")), 64);
		assert_string_equal(sget(d, "Owner"), i == 0 ?
		    "123456789012" : "Amazon");
		assert_int_equal(json_array_size(json_object_get(d,
		    "PlatformTypes")), 3);
		json_decref(out);

		/* What portholed ships passes its own rules. */
		g = run(f, "GetDocument", body, &err);
		assert_non_null(g);
		assert_string_equal(sget(g, "DocumentFormat"), "JSON");
		check_session(sget(g, "Content"), NULL, NULL);
		json_decref(g);
	}
	/* Parameters come from the content. */
	out = run(f, "DescribeDocument", "{\"Name\":\"arn:aws:ssm:us-east-1::"
	    "document/AWS-StartPortForwardingSession\"}", &err);
	assert_non_null(out);
	d = json_array_get(json_object_get(json_object_get(out, "Document"),
	    "Parameters"), 0);
	assert_non_null(d);
	assert_string_equal(sget(d, "Name"), "portNumber");
	assert_string_equal(sget(d, "Type"), "String");
	assert_string_equal(sget(d, "DefaultValue"), "80");
	json_decref(out);
}

static void
test_builtins_protected(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out;

	out = update(f, "AWS-StartSSHSession", doc_c, NULL, &err);
	check_error("update AWS-", &err, out, "InvalidDocumentOperation",
	    "owned by Amazon");
	expect_error(f, "DeleteDocument", "{\"Name\":\"AWS-StartSSHSession\"}",
	    "InvalidDocumentOperation", "owned by Amazon");
	expect_error(f, "UpdateDocumentDefaultVersion", "{\"Name\":"
	    "\"AWS-StartSSHSession\",\"DocumentVersion\":\"1\"}",
	    "InvalidDocument", "owned by Amazon");
	out = create(f, "AWS-MyShell", doc_a, "{\"DocumentType\":"
	    "\"Session\"}", &err);
	check_error("create AWS-", &err, out, "ValidationException",
	    "reserved");
	out = create(f, "amazon-shell", doc_a, "{\"DocumentType\":"
	    "\"Session\"}", &err);
	check_error("create amazon", &err, out, "ValidationException",
	    "reserved");
	out = create(f, "AWS-StartSSHSession", doc_a, "{\"DocumentType\":"
	    "\"Session\"}", &err);
	check_error("create over AWS-", &err, out, "ValidationException",
	    NULL);
	/* still there, unchanged */
	expect_ok(f, "GetDocument", "{\"Name\":\"AWS-StartSSHSession\"}");
}

/* ---- create, update, versions ------------------------------------------- */

static void
test_create_get_describe(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out, *d, *p;

	out = create(f, "Ops-Shell", doc_a, "{\"DocumentType\":\"Session\","
	    "\"Tags\":[{\"Key\":\"team\",\"Value\":\"ops\"}],"
	    "\"VersionName\":\"first\",\"DisplayName\":\"Ops shell\"}",
	    &err);
	if (out == NULL)
		fail_msg("%s: %s", err.type, err.message);
	d = json_object_get(out, "DocumentDescription");
	assert_string_equal(sget(d, "Name"), "Ops-Shell");
	assert_string_equal(sget(d, "DocumentVersion"), "1");
	assert_string_equal(sget(d, "VersionName"), "first");
	assert_string_equal(sget(d, "DisplayName"), "Ops shell");
	assert_string_equal(sget(d, "Owner"), "123456789012");
	assert_string_equal(sget(d, "Description"), "ops shell");
	assert_string_equal(sget(d, "DocumentType"), "Session");
	assert_string_equal(sget(d, "DocumentFormat"), "JSON");
	assert_string_equal(sget(d, "HashType"), "Sha256");
	p = json_array_get(json_object_get(d, "Tags"), 0);
	assert_string_equal(sget(p, "Key"), "team");
	json_decref(out);

	out = run(f, "GetDocument", "{\"Name\":\"Ops-Shell\"}", &err);
	assert_non_null(out);
	assert_string_equal(sget(out, "Content"), doc_a);
	assert_string_equal(sget(out, "DocumentVersion"), "1");
	assert_string_equal(sget(out, "Status"), "Active");
	assert_string_equal(sget(out, "DocumentType"), "Session");
	assert_non_null(json_object_get(out, "CreatedDate"));
	json_decref(out);

	/* YAML on the way out */
	out = run(f, "GetDocument", "{\"Name\":\"Ops-Shell\","
	    "\"DocumentFormat\":\"YAML\"}", &err);
	assert_non_null(out);
	assert_string_equal(sget(out, "DocumentFormat"), "YAML");
	assert_non_null(strstr(sget(out, "Content"),
	    "schemaVersion: \"1.0\"\n"));
	assert_non_null(strstr(sget(out, "Content"),
	    "inputs:\n  idleSessionTimeout: \"5\"\n  runAsEnabled: false"));
	json_decref(out);

	out = create(f, "Ops-Shell", doc_b, "{\"DocumentType\":\"Session\"}",
	    &err);
	check_error("duplicate", &err, out, "DocumentAlreadyExists",
	    "Ops-Shell");

	/* No DocumentType: a Command document, as AWS. */
	out = create(f, "Uptime", doc_cmd, NULL, &err);
	assert_non_null(out);
	d = json_object_get(out, "DocumentDescription");
	assert_string_equal(sget(d, "DocumentType"), "Command");
	assert_string_equal(sget(d, "SchemaVersion"), "2.2");
	json_decref(out);

	out = create(f, "Top-Session", doc_inter, "{\"DocumentType\":"
	    "\"Session\"}", &err);
	assert_non_null(out);
	p = json_array_get(json_object_get(json_object_get(out,
	    "DocumentDescription"), "Parameters"), 0);
	assert_string_equal(sget(p, "Name"), "delay");
	assert_string_equal(sget(p, "DefaultValue"), "2");
	assert_string_equal(sget(p, "Description"), "seconds");
	json_decref(out);

	expect_error(f, "GetDocument", "{\"Name\":\"No-Such\"}",
	    "InvalidDocument", "No-Such");
	expect_error(f, "DescribeDocument", "{\"Name\":\"No-Such\"}",
	    "InvalidDocument", "No-Such");
	expect_error(f, "GetDocument", "{\"Name\":\"Ops-Shell\","
	    "\"DocumentVersion\":\"7\"}", "InvalidDocumentVersion", NULL);
	expect_error(f, "GetDocument", "{\"Name\":\"Ops-Shell\","
	    "\"VersionName\":\"nope\"}", "InvalidDocumentVersion", NULL);
	expect_ok(f, "GetDocument", "{\"Name\":\"Ops-Shell\","
	    "\"VersionName\":\"first\"}");
	out = create(f, "Auto-Doc", doc_cmd, "{\"DocumentType\":"
	    "\"Automation\"}", &err);
	check_error("automation", &err, out, "ValidationException",
	    "Session and Command");
}

static void
test_update_versions(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out, *d, *l;

	out = create(f, "Ops-Shell", doc_a, "{\"DocumentType\":\"Session\","
	    "\"VersionName\":\"v1\"}", &err);
	assert_non_null(out);
	json_decref(out);

	out = update(f, "Ops-Shell", doc_b, "{\"DocumentVersion\":"
	    "\"$LATEST\"}", &err);
	assert_non_null(out);
	d = json_object_get(out, "DocumentDescription");
	assert_string_equal(sget(d, "DocumentVersion"), "2");
	assert_string_equal(sget(d, "LatestVersion"), "2");
	/* AWS keeps the default where it was */
	assert_string_equal(sget(d, "DefaultVersion"), "1");
	json_decref(out);

	out = run(f, "GetDocument", "{\"Name\":\"Ops-Shell\"}", &err);
	assert_string_equal(sget(out, "Content"), doc_a);
	json_decref(out);
	out = run(f, "GetDocument", "{\"Name\":\"Ops-Shell\","
	    "\"DocumentVersion\":\"$LATEST\"}", &err);
	assert_string_equal(sget(out, "Content"), doc_b);
	json_decref(out);

	/* only the latest version can be updated */
	out = update(f, "Ops-Shell", doc_c, "{\"DocumentVersion\":\"1\"}",
	    &err);
	check_error("old version", &err, out, "InvalidDocumentVersion",
	    "latest");
	out = update(f, "Ops-Shell", doc_c, "{\"DocumentVersion\":"
	    "\"$DEFAULT\"}", &err);
	check_error("$DEFAULT", &err, out, "InvalidDocumentVersion", NULL);
	/* the same content again */
	out = update(f, "Ops-Shell", doc_b, NULL, &err);
	check_error("dup latest", &err, out, "DuplicateDocumentContent",
	    "latest");
	out = update(f, "Ops-Shell", doc_a, NULL, &err);
	check_error("dup v1", &err, out, "DuplicateDocumentContent",
	    "UpdateDocumentDefaultVersion");
	out = update(f, "Ops-Shell", doc_c, "{\"VersionName\":\"v1\"}",
	    &err);
	check_error("dup name", &err, out, "DuplicateDocumentVersionName",
	    "v1");
	out = update(f, "No-Such", doc_c, NULL, &err);
	check_error("missing", &err, out, "InvalidDocument", "No-Such");
	/* the type stays: a Command document is not a Session document */
	out = update(f, "Ops-Shell", doc_cmd, NULL, &err);
	check_error("type", &err, out, "InvalidDocumentContent", "mainSteps");

	out = update(f, "Ops-Shell", doc_c, "{\"DocumentVersion\":\"2\"}",
	    &err);
	assert_non_null(out);
	assert_string_equal(sget(json_object_get(out, "DocumentDescription"),
	    "DocumentVersion"), "3");
	json_decref(out);

	out = run(f, "UpdateDocumentDefaultVersion", "{\"Name\":"
	    "\"Ops-Shell\",\"DocumentVersion\":\"3\"}", &err);
	assert_non_null(out);
	d = json_object_get(out, "Description");
	assert_string_equal(sget(d, "Name"), "Ops-Shell");
	assert_string_equal(sget(d, "DefaultVersion"), "3");
	json_decref(out);
	out = run(f, "GetDocument", "{\"Name\":\"Ops-Shell\"}", &err);
	assert_string_equal(sget(out, "Content"), doc_c);
	json_decref(out);
	out = run(f, "UpdateDocumentDefaultVersion", "{\"Name\":"
	    "\"Ops-Shell\",\"DocumentVersion\":\"1\"}", &err);
	assert_string_equal(sget(json_object_get(out, "Description"),
	    "DefaultVersionName"), "v1");
	json_decref(out);
	expect_error(f, "UpdateDocumentDefaultVersion", "{\"Name\":"
	    "\"Ops-Shell\",\"DocumentVersion\":\"9\"}",
	    "InvalidDocumentVersion", NULL);
	expect_error(f, "UpdateDocumentDefaultVersion", "{\"Name\":"
	    "\"Ops-Shell\",\"DocumentVersion\":\"$LATEST\"}",
	    "ValidationException", "documentVersion");
	expect_error(f, "UpdateDocumentDefaultVersion", "{\"Name\":"
	    "\"No-Such\",\"DocumentVersion\":\"1\"}", "InvalidDocument",
	    NULL);

	out = run(f, "ListDocumentVersions", "{\"Name\":\"Ops-Shell\"}", &err);
	assert_non_null(out);
	l = json_object_get(out, "DocumentVersions");
	assert_int_equal(json_array_size(l), 3);
	assert_true(json_is_true(json_object_get(json_array_get(l, 0),
	    "IsDefaultVersion")));
	assert_true(json_is_false(json_object_get(json_array_get(l, 2),
	    "IsDefaultVersion")));
	json_decref(out);
	out = run(f, "ListDocumentVersions", "{\"Name\":\"Ops-Shell\","
	    "\"MaxResults\":2}", &err);
	assert_int_equal(json_array_size(json_object_get(out,
	    "DocumentVersions")), 2);
	assert_non_null(json_object_get(out, "NextToken"));
	json_decref(out);
}

static void
test_delete(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out;

	out = create(f, "Ops-Shell", doc_a, "{\"DocumentType\":\"Session\","
	    "\"Tags\":[{\"Key\":\"a\",\"Value\":\"b\"}]}", &err);
	json_decref(out);
	out = update(f, "Ops-Shell", doc_b, NULL, &err);
	json_decref(out);
	out = update(f, "Ops-Shell", doc_c, NULL, &err);
	json_decref(out);

	expect_error(f, "DeleteDocument", "{\"Name\":\"Ops-Shell\","
	    "\"DocumentVersion\":\"1\"}", "InvalidDocumentOperation",
	    "default");
	expect_error(f, "DeleteDocument", "{\"Name\":\"Ops-Shell\","
	    "\"DocumentVersion\":\"8\"}", "InvalidDocumentVersion", NULL);
	expect_ok(f, "DeleteDocument", "{\"Name\":\"Ops-Shell\","
	    "\"DocumentVersion\":\"$LATEST\"}");
	out = run(f, "DescribeDocument", "{\"Name\":\"Ops-Shell\"}", &err);
	assert_string_equal(sget(json_object_get(out, "Document"),
	    "LatestVersion"), "2");
	json_decref(out);
	expect_ok(f, "DeleteDocument", "{\"Name\":\"Ops-Shell\","
	    "\"DocumentVersion\":\"2\"}");
	expect_ok(f, "DeleteDocument", "{\"Name\":\"Ops-Shell\"}");
	expect_error(f, "DescribeDocument", "{\"Name\":\"Ops-Shell\"}",
	    "InvalidDocument", NULL);
	expect_error(f, "DeleteDocument", "{\"Name\":\"Ops-Shell\"}",
	    "InvalidDocument", NULL);
	expect_error(f, "ListTagsForResource", "{\"ResourceType\":"
	    "\"Document\",\"ResourceId\":\"Ops-Shell\"}", "InvalidResourceId",
	    NULL);
	/* the name is free again, and the new document has no old tags */
	out = create(f, "Ops-Shell", doc_a, "{\"DocumentType\":\"Session\"}",
	    &err);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(json_object_get(out,
	    "DocumentDescription"), "Tags")), 0);
	json_decref(out);
}

/* ---- ListDocuments ------------------------------------------------------ */

static size_t
list_count(struct fx *f, const char *body, const char *first)
{
	struct api_error err;
	json_t *out, *l;
	size_t n;

	out = run(f, "ListDocuments", body, &err);
	if (out == NULL)
		fail_msg("%s: %s: %s", body, err.type, err.message);
	l = json_object_get(out, "DocumentIdentifiers");
	n = json_array_size(l);
	if (first != NULL)
		assert_string_equal(sget(json_array_get(l, 0), "Name"), first);
	json_decref(out);
	return n;
}

static void
test_list(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out, *id;
	char body[200];
	size_t total = 0, pages = 0;

	out = create(f, "Ops-Shell", doc_a, "{\"DocumentType\":\"Session\","
	    "\"Tags\":[{\"Key\":\"env\",\"Value\":\"prod\"}]}", &err);
	json_decref(out);
	out = create(f, "Uptime", doc_cmd, NULL, &err);
	json_decref(out);

	/* 7 Session and 3 Command documents are built in */
	assert_int_equal(list_count(f, "{}", "AWS-RunPowerShellScript"),
	    11);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":"
	    "\"DocumentType\",\"Values\":[\"Session\"]}]}", NULL), 7);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":"
	    "\"DocumentType\",\"Values\":[\"Command\"]}]}",
	    "AWS-RunPowerShellScript"), 4);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":\"Owner\","
	    "\"Values\":[\"Self\"]}]}", "Ops-Shell"), 3);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":\"Owner\","
	    "\"Values\":[\"Amazon\"]}]}", NULL), 8);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":\"Name\","
	    "\"Values\":[\"AWS-StartPort\"]}]}", NULL), 2);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":\"Name\","
	    "\"Values\":[\"AWS-StartSSH\",\"Uptime\"]}]}", NULL), 2);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":\"Owner\","
	    "\"Values\":[\"Amazon\"]},{\"Key\":\"SearchKeyword\",\"Values\":"
	    "[\"command\"]}]}", NULL), 2);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":"
	    "\"SchemaVersion\",\"Values\":[\"2.2\"]}]}", "Uptime"), 1);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":\"tag:env\","
	    "\"Values\":[\"prod\"]}]}", "Ops-Shell"), 1);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":\"tag:env\","
	    "\"Values\":[\"dev\"]}]}", NULL), 0);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":\"tag-key\","
	    "\"Values\":[\"env\"]}]}", NULL), 1);
	assert_int_equal(list_count(f, "{\"Filters\":[{\"Key\":"
	    "\"PlatformTypes\",\"Values\":[\"Windows\"]},{\"Key\":"
	    "\"DocumentType\",\"Values\":[\"Command\"]}]}", NULL), 2);
	assert_int_equal(list_count(f, "{\"DocumentFilterList\":[{\"key\":"
	    "\"Name\",\"value\":\"Ops-Shell\"}]}", "Ops-Shell"), 1);
	assert_int_equal(list_count(f, "{\"DocumentFilterList\":[{\"key\":"
	    "\"Owner\",\"value\":\"Amazon\"},{\"key\":\"DocumentType\","
	    "\"value\":\"Session\"}]}", NULL), 5);

	/* pages of 3 cover everything once */
	snprintf(body, sizeof(body), "{\"MaxResults\":3}");
	while (pages < 10) {
		out = run(f, "ListDocuments", body, &err);
		assert_non_null(out);
		total += json_array_size(json_object_get(out,
		    "DocumentIdentifiers"));
		pages++;
		id = json_object_get(out, "NextToken");
		if (id == NULL) {
			json_decref(out);
			break;
		}
		snprintf(body, sizeof(body), "{\"MaxResults\":3,"
		    "\"NextToken\":\"%s\"}", json_string_value(id));
		json_decref(out);
	}
	assert_int_equal(total, 11);
	assert_int_equal(pages, 4);

	out = run(f, "ListDocuments", "{\"Filters\":[{\"Key\":\"Name\","
	    "\"Values\":[\"Uptime\"]}]}", &err);
	id = json_array_get(json_object_get(out, "DocumentIdentifiers"), 0);
	assert_string_equal(sget(id, "Owner"), "123456789012");
	assert_string_equal(sget(id, "DocumentVersion"), "1");
	assert_string_equal(sget(id, "SchemaVersion"), "2.2");
	assert_string_equal(sget(id, "DocumentFormat"), "JSON");
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(id, "PlatformTypes"), 0)), "Linux");
	json_decref(out);

	expect_error(f, "ListDocuments", "{\"Filters\":[{\"Key\":\"Color\","
	    "\"Values\":[\"x\"]}]}", "InvalidFilterKey", "Color");
	expect_error(f, "ListDocuments", "{\"DocumentFilterList\":[{\"key\":"
	    "\"Color\",\"value\":\"x\"}]}", "ValidationException", NULL);
	expect_error(f, "ListDocuments", "{\"NextToken\":\"garbage\"}",
	    "InvalidNextToken", NULL);
	expect_error(f, "ListDocuments", "{\"MaxResults\":51}",
	    "ValidationException", "maxResults");
	expect_error(f, "ListDocuments", "{\"Filters\":\"x\"}",
	    "SerializationException", NULL);
	expect_error(f, "ListDocuments", "{\"Filters\":[{\"Key\":\"Name\","
	    "\"Values\":[7]}]}", "SerializationException", NULL);
	expect_error(f, "ListDocuments", "{\"Filters\":[1,2]}",
	    "SerializationException", NULL);
}

/* ---- content rules ------------------------------------------------------ */

static void
test_session_rules(void **state)
{
	(void)state;
	/* not a document at all */
	check_session("not json", "InvalidDocumentContent", "not valid JSON");
	check_session("{\"a\":1,", "InvalidDocumentContent", "line 1");
	check_session("[1,2]", "InvalidDocumentContent", "JSON object");
	check_session("\"x\"", "InvalidDocumentContent", NULL);
	check_session("{\"schemaVersion\":\"1.0\",\"schemaVersion\":\"1.0\","
	    "\"sessionType\":\"Port\"}", "InvalidDocumentContent",
	    "duplicate");
	check_session("{}", "InvalidDocumentContent", "schemaVersion is "
	    "required");
	check_session("{}", "InvalidDocumentContent", "sessionType is "
	    "required");
	check_session("{\"schemaVersion\":\"2.2\",\"sessionType\":"
	    "\"Standard_Stream\"}", "InvalidDocumentSchemaVersion", "1.0");
	check_session("{\"schemaVersion\":1.0,\"sessionType\":"
	    "\"Standard_Stream\"}", "InvalidDocumentContent", "must be a "
	    "string");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Shell\"}",
	    "InvalidDocumentContent", "Standard_Stream, InteractiveCommands");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":"
	    "\"Standard_Stream\",\"mainSteps\":[]}", "InvalidDocumentContent",
	    "mainSteps is not a key");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":"
	    "\"Standard_Stream\",\"description\":5}",
	    "InvalidDocumentContent", "description must be a string");

	/* inputs */
	check_session(SHELL("[]"), "InvalidDocumentContent", "inputs must be "
	    "an object");
	check_session(SHELL("{\"idleSessionTimout\":\"5\"}"),
	    "InvalidDocumentContent", "idleSessionTimout is not a known");
	check_session(SHELL("{}"), NULL, NULL);
	check_session(SHELL("{\"kmsKeyId\":\"\"}"), NULL, NULL);
	check_session(SHELL("{\"kmsKeyId\":"
	    "\"1234abcd-12ab-34cd-56ef-1234567890ab\"}"), NULL, NULL);
	check_session(SHELL("{\"kmsKeyId\":\"alias/session-manager-demo-"
	    "encryption\"}"), NULL, NULL);
	check_session(SHELL("{\"kmsKeyId\":\"arn:aws:kms:us-east-1:"
	    "123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\"}"), NULL,
	    NULL);
	check_session(SHELL("{\"kmsKeyId\":\"arn:aws:kms:us-east-1:"
	    "123456789012:alias/demo\"}"), NULL, NULL);
	check_session(SHELL("{\"kmsKeyId\":"
	    "\"mrk-1234abcd12ab34cd56ef1234567890ab\"}"), NULL, NULL);
	check_session(SHELL("{\"kmsKeyId\":\"my key\"}"),
	    "InvalidDocumentContent", "kmsKeyId");
	check_session(SHELL("{\"kmsKeyId\":\"alias/\"}"),
	    "InvalidDocumentContent", "kmsKeyId");
	check_session(SHELL("{\"kmsKeyId\":\"arn:aws:s3:::bucket\"}"),
	    "InvalidDocumentContent", "kmsKeyId");
	check_session(SHELL("{\"kmsKeyId\":42}"), "InvalidDocumentContent",
	    "kmsKeyId must be a string");
	check_session(SHELL("{\"idleSessionTimeout\":\"60\","
	    "\"maxSessionDuration\":1440}"), NULL, NULL);
	check_session(SHELL("{\"idleSessionTimeout\":1,"
	    "\"maxSessionDuration\":\"\"}"), NULL, NULL);
	check_session(SHELL("{\"idleSessionTimeout\":\"0\"}"),
	    "InvalidDocumentContent", "from 1 to 60");
	check_session(SHELL("{\"idleSessionTimeout\":61}"),
	    "InvalidDocumentContent", "from 1 to 60");
	check_session(SHELL("{\"idleSessionTimeout\":\"20m\"}"),
	    "InvalidDocumentContent", "idleSessionTimeout");
	check_session(SHELL("{\"idleSessionTimeout\":\"-5\"}"),
	    "InvalidDocumentContent", "idleSessionTimeout");
	check_session(SHELL("{\"idleSessionTimeout\":2.5}"),
	    "InvalidDocumentContent", "idleSessionTimeout");
	check_session(SHELL("{\"idleSessionTimeout\":true}"),
	    "InvalidDocumentContent", "not a boolean");
	check_session(SHELL("{\"idleSessionTimeout\":"
	    "\"99999999999999999999\"}"), "InvalidDocumentContent",
	    "idleSessionTimeout");
	check_session(SHELL("{\"maxSessionDuration\":\"1441\"}"),
	    "InvalidDocumentContent", "from 1 to 1440");
	check_session(SHELL("{\"runAsEnabled\":true,"
	    "\"runAsDefaultUser\":\"ec2-user\"}"), NULL, NULL);
	check_session(SHELL("{\"runAsEnabled\":\"false\"}"), NULL, NULL);
	check_session(SHELL("{\"runAsEnabled\":\"yes\"}"),
	    "InvalidDocumentContent", "runAsEnabled must be true or false");
	check_session(SHELL("{\"runAsDefaultUser\":\"root; rm -rf /\"}"),
	    "InvalidDocumentContent", "not a valid user name");
	check_session(SHELL("{\"runAsDefaultUser\":"
	    "\"a234567890123456789012345678901234\"}"),
	    "InvalidDocumentContent", "runAsDefaultUser");
	check_session(SHELL("{\"shellProfile\":{\"linux\":\"cd /srv\","
	    "\"windows\":\"\"}}"), NULL, NULL);
	check_session(SHELL("{\"shellProfile\":\"cd /srv\"}"),
	    "InvalidDocumentContent", "shellProfile must be an object");
	check_session(SHELL("{\"shellProfile\":{\"linux\":[\"a\"]}}"),
	    "InvalidDocumentContent", "shellProfile.linux must be a string");
	check_session(SHELL("{\"shellProfile\":{\"macos\":\"a\"}}"),
	    "InvalidDocumentContent", "shellProfile.macos is not known");
	check_session(SHELL("{\"s3BucketName\":\"my-logs.example\","
	    "\"s3KeyPrefix\":\"sm/\",\"s3EncryptionEnabled\":true,"
	    "\"cloudWatchLogGroupName\":\"/ssm/sessions\","
	    "\"cloudWatchEncryptionEnabled\":\"true\","
	    "\"cloudWatchStreamingEnabled\":false}"), NULL, NULL);
	check_session(SHELL("{\"s3BucketName\":\"My_Bucket\"}"),
	    "InvalidDocumentContent", "s3BucketName");
	check_session(SHELL("{\"s3BucketName\":7}"),
	    "InvalidDocumentContent", "s3BucketName must be a string");
	check_session(SHELL("{\"s3EncryptionEnabled\":1}"),
	    "InvalidDocumentContent", "s3EncryptionEnabled");
	check_session(SHELL("{\"cloudWatchStreamingEnabled\":\"true\"}"),
	    "InvalidDocumentContent", "JSON boolean");
	check_session(SHELL("{\"cloudWatchLogGroupName\":\"bad group!\"}"),
	    "InvalidDocumentContent", "cloudWatchLogGroupName");

	/* several at once, each named */
	check_session(SHELL("{\"idleSessionTimeout\":\"0\",\"runAsEnabled\":"
	    "5,\"bogus\":1}"), "InvalidDocumentContent", "3 problems");
	check_session(SHELL("{\"idleSessionTimeout\":\"0\",\"runAsEnabled\":"
	    "5,\"bogus\":1}"), "InvalidDocumentContent", "bogus");

	/* commands and ports */
	check_session(doc_inter, NULL, NULL);
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":"
	    "\"InteractiveCommands\"}", "InvalidDocumentContent",
	    "properties must be an object");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":"
	    "\"NonInteractiveCommands\",\"properties\":{\"linux\":"
	    "{\"commands\":5}}}", "InvalidDocumentContent",
	    "commands must be a string");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":"
	    "\"InteractiveCommands\",\"properties\":{\"linux\":"
	    "{\"runAsElevated\":true}}}", "InvalidDocumentContent",
	    "commands is required");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":"
	    "\"InteractiveCommands\",\"properties\":{\"solaris\":"
	    "{\"commands\":\"ls\"}}}", "InvalidDocumentContent",
	    "not a platform");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":"
	    "\"InteractiveCommands\",\"properties\":{\"linux\":"
	    "{\"commands\":[\"ls\",\"pwd\"],\"runAsElevated\":\"no\"}}}",
	    "InvalidDocumentContent", "runAsElevated must be true or false");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":"
	    "\"InteractiveCommands\",\"properties\":{\"linux\":"
	    "{\"commands\":\"{{ cmd }}\"}}}", "InvalidDocumentContent",
	    "{{ cmd }} names no parameter");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":"
	    "\"InteractiveCommands\",\"properties\":{\"linux\":"
	    "{\"commands\":\"{{ssm:/motd}}\"}}}", NULL, NULL);
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Port\","
	    "\"properties\":{\"portNumber\":\"5432\",\"type\":"
	    "\"LocalPortForwarding\"}}", NULL, NULL);
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Port\","
	    "\"properties\":{\"portNumber\":\"5432\",\"type\":"
	    "\"LocalPortForwarding\",\"localUnixSocket\":\"/tmp/pg.sock\","
	    "\"localConnectionType\":\"unix\"}}", NULL, NULL);
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Port\","
	    "\"properties\":{\"type\":\"LocalPortForwarding\"}}",
	    "InvalidDocumentContent", "portNumber is required");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Port\","
	    "\"properties\":{\"portNumber\":22,\"type\":\"Remote\"}}",
	    "InvalidDocumentContent", "LocalPortForwarding");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Port\","
	    "\"properties\":{\"portNumber\":\"22\",\"x\":\"1\"}}",
	    "InvalidDocumentContent", "x is not known");

	/* parameters */
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Port\","
	    "\"parameters\":{\"p\":{\"type\":\"Integer\"}},\"properties\":"
	    "{\"portNumber\":\"{{ p }}\"}}", "InvalidDocumentContent",
	    "type must be String or StringList");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Port\","
	    "\"parameters\":{\"p\":{\"type\":\"String\",\"allowedPattern\":"
	    "\"([\"}},\"properties\":{\"portNumber\":\"{{ p }}\"}}",
	    "InvalidDocumentContent", "not a valid regular expression");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Port\","
	    "\"parameters\":{\"p q\":{\"type\":\"String\"}},\"properties\":"
	    "{\"portNumber\":\"1\"}}", "InvalidDocumentContent",
	    "parameter name");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Port\","
	    "\"parameters\":{\"p\":{\"type\":\"String\",\"allowedValues\":"
	    "[1]}},\"properties\":{\"portNumber\":\"{{ p }}\"}}",
	    "InvalidDocumentContent", "allowedValues");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Port\","
	    "\"parameters\":[],\"properties\":{\"portNumber\":\"1\"}}",
	    "InvalidDocumentContent", "parameters must be an object");
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":\"Port\","
	    "\"parameters\":{\"p\":{\"type\":\"String\",\"color\":\"red\"}},"
	    "\"properties\":{\"portNumber\":\"{{p}}\"}}",
	    "InvalidDocumentContent", "color is not known");
	/* deep nesting is refused, not recursed into without end */
	check_session("{\"schemaVersion\":\"1.0\",\"sessionType\":"
	    "\"Standard_Stream\",\"properties\":{\"a\":[[[[[[[[[[[[[[[[[[[["
	    "]]]]]]]]]]]]]]]]]]]]}}", "InvalidDocumentContent", "nests");
}

static void
test_content_garbage(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out, *in;
	size_t n = (size_t)10 << 20;
	char *huge;

	/* 10 MB: refused by size before anything parses it */
	huge = malloc(n + 1);
	assert_non_null(huge);
	memset(huge, ' ', n);
	memcpy(huge, "{\"a\":\"", 6);
	huge[n - 2] = '"';
	huge[n - 1] = '}';
	huge[n] = '\0';
	out = create(f, "Big-Doc", huge, "{\"DocumentType\":\"Session\"}",
	    &err);
	check_error("10 MB", &err, out, "MaxDocumentSizeExceeded", "64 KB");
	free(huge);
	/* 64 KB + 1 byte */
	n = API_DOCUMENTS_MAX_BYTES + 1;
	huge = malloc(n + 1);
	assert_non_null(huge);
	memset(huge, ' ', n);
	huge[0] = '{';
	huge[n - 1] = '}';
	huge[n] = '\0';
	out = create(f, "Big-Doc", huge, "{\"DocumentType\":\"Session\"}",
	    &err);
	check_error("64 KB + 1", &err, out, "MaxDocumentSizeExceeded", NULL);
	free(huge);

	out = create(f, "Bad-Doc", "not json at all",
	    "{\"DocumentType\":\"Session\"}", &err);
	check_error("not json", &err, out, "InvalidDocumentContent",
	    "not valid JSON");
	out = create(f, "Bad-Doc", "{\"schemaVersion\":\"9.9\"}", NULL, &err);
	check_error("command schema", &err, out,
	    "InvalidDocumentSchemaVersion", "2.2");
	out = create(f, "Bad-Doc", doc_a, "{\"DocumentType\":\"Session\","
	    "\"DocumentFormat\":\"TEXT\"}", &err);
	check_error("TEXT", &err, out, "InvalidDocumentContent", "TEXT");
	out = create(f, "Bad-Doc", "schemaVersion: '1.0'\n",
	    "{\"DocumentType\":\"Session\",\"DocumentFormat\":\"YAML\"}",
	    &err);
	/* YAML is read (libyaml): this one lacks a sessionType */
	check_error("YAML", &err, out, "InvalidDocumentContent",
	    "sessionType is required");
	/* YAML that is JSON is fine */
	out = create(f, "Yaml-Doc", doc_a, "{\"DocumentType\":\"Session\","
	    "\"DocumentFormat\":\"YAML\"}", &err);
	assert_non_null(out);
	json_decref(out);

	/* wrong JSON types in the request itself */
	expect_error(f, "CreateDocument", "{\"Name\":\"X-Doc\",\"Content\":5}",
	    "SerializationException", NULL);
	expect_error(f, "CreateDocument", "{\"Name\":[],\"Content\":\"{}\"}",
	    "SerializationException", NULL);
	expect_error(f, "CreateDocument", "{\"Name\":\"X-Doc\"}",
	    "ValidationException", "content");
	expect_error(f, "CreateDocument", "{\"Name\":\"X-Doc\",\"Content\":"
	    "\"\"}", "ValidationException", "content");
	expect_error(f, "CreateDocument", "{\"Name\":\"a b\",\"Content\":"
	    "\"{}\"}", "ValidationException", "name");
	expect_error(f, "CreateDocument", "{\"Name\":\"ab\",\"Content\":"
	    "\"{}\"}", "ValidationException", "name");
	expect_error(f, "CreateDocument", "{\"Name\":\"X-Doc\",\"Content\":"
	    "\"{}\",\"DocumentType\":\"Shell\"}", "ValidationException",
	    "documentType");
	expect_error(f, "CreateDocument", "{\"Name\":\"X-Doc\",\"Content\":"
	    "\"{}\",\"DocumentFormat\":\"XML\"}", "ValidationException",
	    "documentFormat");
	expect_error(f, "CreateDocument", "{\"Name\":\"X-Doc\",\"Content\":"
	    "\"{}\",\"Tags\":[{\"Key\":\"aws:x\",\"Value\":\"1\"}]}",
	    "ValidationException", "aws:");
	expect_error(f, "UpdateDocument", "{\"Name\":\"Yaml-Doc\",\"Content\":"
	    "\"{}\",\"DocumentVersion\":\"latest\"}", "ValidationException",
	    "documentVersion");
	expect_error(f, "UpdateDocument", "{\"Name\":\"Yaml-Doc\",\"Content\":"
	    "\"{}\",\"DocumentVersion\":\"0\"}", "ValidationException",
	    "documentVersion");
	expect_error(f, "GetDocument", "{\"Name\":\"Yaml-Doc\","
	    "\"DocumentVersion\":\"99999999999999999999\"}",
	    "ValidationException", "documentVersion");
	expect_error(f, "DeleteDocument", "{\"Name\":\"Yaml-Doc\","
	    "\"Force\":\"yes\"}", "SerializationException", NULL);
	expect_error(f, "DescribeDocument", "{}", "ValidationException",
	    "name");
	expect_error(f, "GetDocument", "{\"Name\":\"arn:aws:ssm:us-east-1:"
	    "123456789012:document/\"}", "InvalidDocument", NULL);
	/* a NUL inside the content */
	in = doc_req("Nul-Doc", "x", "{\"DocumentType\":\"Session\"}");
	json_object_set_new(in, "Content", json_stringn("{\"a\":\0}", 7));
	out = run_obj(f, &f->admin, "CreateDocument", in, &err);
	check_error("NUL", &err, out, "ValidationException", "NUL");

	/* nobody else may touch documents yet */
	out = run_obj(f, &f->bob, "CreateDocument", doc_req("Bob-Doc", doc_a,
	    "{\"DocumentType\":\"Session\"}"), &err);
	check_error("bob create", &err, out, "AccessDeniedException",
	    "ssm:CreateDocument");
	out = run_obj(f, &f->bob, "UpdateDocument", doc_req(
	    "SSM-SessionManagerRunShell", doc_c, NULL), &err);
	check_error("bob update", &err, out, "AccessDeniedException",
	    "ssm:UpdateDocument");
	out = run_obj(f, &f->bob, "ListDocuments", json_object(), &err);
	check_error("bob list", &err, out, "AccessDeniedException", NULL);
	out = run_obj(f, &f->bob, "GetDocument", json_pack("{s:s}", "Name",
	    "AWS-StartSSHSession"), &err);
	check_error("bob get", &err, out, "AccessDeniedException",
	    "arn:aws:ssm:us-east-1::document/AWS-StartSSHSession");
	out = run_obj(f, &f->bob, "DeleteDocument", json_pack("{s:s}", "Name",
	    "Yaml-Doc"), &err);
	check_error("bob delete", &err, out, "AccessDeniedException", NULL);
	expect_ok(f, "DescribeDocument", "{\"Name\":\"Yaml-Doc\"}");
}

/* ---- preferences and sessions ------------------------------------------- */

static void
register_instance(struct fx *f, const char *agent_version, char id[21])
{
	struct instance_conn_info info;
	char act[STORE_ACTIVATION_ID_SIZE];
	char code[STORE_ACTIVATION_CODE_LEN + 1];
	char role[STORE_IAM_ROLE_SIZE];
	struct activation_new a;

	memset(&a, 0, sizeof(a));
	a.iam_role = "R";
	a.registration_limit = 1;
	a.expiration_ms = T0 + 3600 * 1000;
	assert_int_equal(store_activation_create(f->srv.store, &a, T0, act,
	    code), 0);
	assert_int_equal(store_activation_register(f->srv.store, act, code,
	    T0, NULL, NULL, id, role), 0);
	memset(&info, 0, sizeof(info));
	info.agent_version = agent_version;
	info.platform_type = "Linux";
	assert_int_equal(store_instance_connected(f->srv.store, id, &info,
	    T0), 0);
}

static json_t *
start(struct fx *f, const char *target, const char *doc,
    struct api_error *err)
{
	char body[400];

	snprintf(body, sizeof(body), "{\"Target\":\"%s\"%s%s%s}", target,
	    doc ? ",\"DocumentName\":\"" : "", doc ? doc : "",
	    doc ? "\",\"Parameters\":{\"command\":[\"top\"]}" : "");
	return run(f, "StartSession", body, err);
}

static const char *
input(const char *key)
{
	json_t *v = json_object_get(json_object_get(stub_doc, "inputs"),
	    key);

	return json_string_value(v);
}

#define PREFS(inputs) \
	"{\"schemaVersion\":\"1.0\",\"description\":\"prefs\"," \
	"\"sessionType\":\"Standard_Stream\",\"inputs\":" inputs "}"

static void
test_preferences(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out, *d;
	char id[21];

	register_instance(f, "3.3.1000.0", id);
	out = start(f, id, NULL, &err);
	assert_non_null(out);
	json_decref(out);
	assert_string_equal(input("idleSessionTimeout"), "20");

	/* `aws ssm update-document ... --document-version '$LATEST'` */
	out = update(f, "SSM-SessionManagerRunShell", PREFS("{"
	    "\"idleSessionTimeout\":7,\"maxSessionDuration\":\"90\","
	    "\"runAsEnabled\":false,\"kmsKeyId\":\"alias/demo\","
	    "\"shellProfile\":{\"linux\":\"export PORTHOLE_PROFILE_RAN=yes\","
	    "\"windows\":\"\"}}"), "{\"DocumentVersion\":\"$LATEST\"}", &err);
	if (out == NULL)
		fail_msg("%s: %s", err.type, err.message);
	d = json_object_get(out, "DocumentDescription");
	assert_string_equal(sget(d, "DocumentVersion"), "2");
	/* the preferences' new version takes effect: it is the default */
	assert_string_equal(sget(d, "DefaultVersion"), "2");
	assert_string_equal(sget(d, "Owner"), "123456789012");
	json_decref(out);

	out = start(f, id, NULL, &err);
	assert_non_null(out);
	json_decref(out);
	assert_string_equal(input("idleSessionTimeout"), "7");
	assert_string_equal(input("maxSessionDuration"), "90");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_object_get(stub_doc, "inputs"), "shellProfile"), "linux")),
	    "export PORTHOLE_PROFILE_RAN=yes");

	/* other session documents get the account's preferences too */
	out = start(f, id, "AWS-StartInteractiveCommand", &err);
	assert_non_null(out);
	json_decref(out);
	assert_string_equal(input("idleSessionTimeout"), "7");
	assert_string_equal(input("kmsKeyId"), "alias/demo");
	assert_string_equal(json_string_value(json_object_get(stub_doc,
	    "sessionType")), "InteractiveCommands");

	/* ...but what a document sets itself wins; "" counts as unset */
	out = create(f, "Quiet-Shell", SHELL("{\"idleSessionTimeout\":\"3\","
	    "\"kmsKeyId\":\"\"}"), "{\"DocumentType\":\"Session\"}", &err);
	assert_non_null(out);
	json_decref(out);
	out = start(f, id, "Quiet-Shell", &err);
	assert_null(out);   /* Quiet-Shell has no "command" parameter */
	check_error("params", &err, out, "InvalidParameters", "command");
	out = run(f, "StartSession", "{\"Target\":\"x\",\"DocumentName\":"
	    "\"Quiet-Shell\"}", &err);
	assert_null(out);   /* not connected, but resolved first */
	check_error("target", &err, out, "TargetNotConnected", NULL);
	{
		char body[200];

		snprintf(body, sizeof(body), "{\"Target\":\"%s\","
		    "\"DocumentName\":\"Quiet-Shell\"}", id);
		out = run(f, "StartSession", body, &err);
		assert_non_null(out);
		json_decref(out);
	}
	assert_string_equal(input("idleSessionTimeout"), "3");
	assert_string_equal(input("kmsKeyId"), "alias/demo");
	assert_string_equal(input("maxSessionDuration"), "90");

	/* the preferences must stay a Standard_Stream Session document */
	out = update(f, "SSM-SessionManagerRunShell", doc_inter, NULL, &err);
	check_error("prefs type", &err, out, "InvalidDocumentContent",
	    "Standard_Stream");
	out = update(f, "SSM-SessionManagerRunShell", PREFS("{"
	    "\"idleSessionTimeout\":\"600\"}"), NULL, &err);
	check_error("prefs range", &err, out, "InvalidDocumentContent",
	    "from 1 to 60");

	/* a restart does not bring the built-in content back */
	authz_free(&f->srv);
	store_close(f->srv.store);
	assert_int_equal(store_open(&f->srv.store, f->db.path), 0);
	out = start(f, id, NULL, &err);
	assert_non_null(out);
	json_decref(out);
	assert_string_equal(input("idleSessionTimeout"), "7");

	/* deleting the preferences restores the defaults */
	expect_ok(f, "DeleteDocument",
	    "{\"Name\":\"SSM-SessionManagerRunShell\"}");
	out = run(f, "DescribeDocument",
	    "{\"Name\":\"SSM-SessionManagerRunShell\"}", &err);
	assert_non_null(out);
	assert_string_equal(sget(json_object_get(out, "Document"),
	    "LatestVersion"), "1");
	json_decref(out);
	out = start(f, id, NULL, &err);
	assert_non_null(out);
	json_decref(out);
	assert_string_equal(input("idleSessionTimeout"), "20");
	assert_string_equal(input("kmsKeyId"), "");

	/* create-document of the preferences works on a fresh server, as
	 * on a fresh AWS account */
	out = create(f, "SSM-SessionManagerRunShell", PREFS("{"
	    "\"idleSessionTimeout\":\"12\"}"), "{\"DocumentType\":"
	    "\"Session\"}", &err);
	if (out == NULL)
		fail_msg("%s: %s", err.type, err.message);
	assert_string_equal(sget(json_object_get(out, "DocumentDescription"),
	    "DocumentVersion"), "1");
	json_decref(out);
	out = create(f, "SSM-SessionManagerRunShell", PREFS("{}"),
	    "{\"DocumentType\":\"Session\"}", &err);
	check_error("prefs twice", &err, out, "DocumentAlreadyExists", NULL);
	out = start(f, id, "AWS-StartNonInteractiveCommand", &err);
	assert_non_null(out);
	json_decref(out);
	assert_string_equal(input("idleSessionTimeout"), "12");
}

static void
test_kms_agent_version(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	json_t *out;
	char old[21], cur[21], unknown[21], body[200];

	register_instance(f, "2.3.50.0", old);
	register_instance(f, "3.3.1000.0", cur);
	register_instance(f, "", unknown);
	/* no key: any agent */
	out = start(f, old, NULL, &err);
	assert_non_null(out);
	json_decref(out);

	out = update(f, "SSM-SessionManagerRunShell", PREFS("{\"kmsKeyId\":"
	    "\"alias/session-manager-demo-encryption\"}"), NULL, &err);
	assert_non_null(out);
	json_decref(out);
	stub_starts = 0;
	out = start(f, old, NULL, &err);
	check_error("old agent", &err, out, "InvalidDocument", "2.3.68.0");
	assert_non_null(strstr(err.message, "2.3.50.0"));
	out = start(f, old, "AWS-StartInteractiveCommand", &err);
	check_error("old agent", &err, out, "InvalidDocument", "2.3.68.0");
	assert_int_equal(stub_starts, 0);
	/* port sessions are never encrypted */
	snprintf(body, sizeof(body), "{\"Target\":\"%s\",\"DocumentName\":"
	    "\"AWS-StartSSHSession\"}", old);
	out = run(f, "StartSession", body, &err);
	assert_non_null(out);
	json_decref(out);
	out = start(f, cur, NULL, &err);
	assert_non_null(out);
	json_decref(out);
	out = start(f, unknown, NULL, &err);
	assert_non_null(out);
	json_decref(out);
	assert_int_equal(stub_starts, 3);
}

static void
test_version_cmp(void **state)
{
	(void)state;
	assert_true(api_documents_version_cmp("2.3.68.0", "2.3.68.0") == 0);
	assert_true(api_documents_version_cmp("2.3.68", "2.3.68.0") == 0);
	assert_true(api_documents_version_cmp("2.3.67.9", "2.3.68.0") < 0);
	assert_true(api_documents_version_cmp("2.3.100.0", "2.3.68.0") > 0);
	assert_true(api_documents_version_cmp("3.3.1000.0", "2.3.68.0") > 0);
	assert_true(api_documents_version_cmp("10.0", "9.9.9.9") > 0);
	assert_true(api_documents_version_cmp("", "2.3.68.0") < 0);
	assert_true(api_documents_version_cmp("x.y", "0.0.1") < 0);
	assert_true(api_documents_version_cmp(
	    "99999999999999999999999.1", "2") > 0);
}

/* ---- schema migration --------------------------------------------------- */

static void
test_migration_from_v1(void **state)
{
	struct fx *f = *state;
	struct api_error err;
	sqlite3 *db;
	json_t *out, *d;

	/* Turn the file back into what schema version 1 left (undoing the
	 * later versions), with an old preferences content the account
	 * had. */
	authz_free(&f->srv);
	store_close(f->srv.store);
	f->srv.store = NULL;
	assert_int_equal(sqlite3_open(f->db.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	    /* version 9 (console sessions) */
	    "DROP TABLE console_sessions;"
	    /* version 8 (agent packages) */
	    "DROP TABLE agent_packages;"
	    /* version 7 (Run Command) */
	    "DROP TABLE command_invocations; DROP TABLE commands;"
	    /* version 6 (session records), 5 (the sink's queue) */
	    "DROP TABLE session_records; DROP TABLE sink_queue;"
	    /* version 4 (session policies) */
	    "ALTER TABLE sts_credentials DROP COLUMN session_policy;"
	    "ALTER TABLE sts_credentials DROP COLUMN session_policy_arns;"
	    /* version 3 (IAM, STS) */
	    "DROP TABLE sts_credentials; DROP TABLE iam_attachments;"
	    "DROP TABLE iam_policy_versions; DROP TABLE iam_policies;"
	    "DROP TABLE iam_inline_policies; DROP TABLE iam_roles;"
	    "DROP TABLE iam_group_members; DROP TABLE iam_groups;"
	    "DROP TABLE iam_login_profiles; DROP INDEX iam_users_lname;"
	    "ALTER TABLE iam_users DROP COLUMN user_id;"
	    "ALTER TABLE iam_users DROP COLUMN path;"
	    "ALTER TABLE iam_users DROP COLUMN password_last_used_ms;"
	    "ALTER TABLE iam_access_keys DROP COLUMN last_used_ms;"
	    "ALTER TABLE iam_access_keys DROP COLUMN last_used_service;"
	    "ALTER TABLE iam_access_keys DROP COLUMN last_used_region;"
	    /* version 2 (document versions) */
	    "DROP TRIGGER documents_builtin_insert;"
	    "DROP TRIGGER documents_builtin_update;"
	    "DROP TABLE document_versions;"
	    "ALTER TABLE documents DROP COLUMN default_version;"
	    "ALTER TABLE documents DROP COLUMN latest_version;"
	    "ALTER TABLE documents DROP COLUMN display_name;"
	    "ALTER TABLE documents DROP COLUMN target_type;"
	    "INSERT INTO documents (name, document_type, content, builtin, "
	    " created_ms) VALUES ('Old-Shell', 'Session', "
	    " '{\"schemaVersion\":\"1.0\",\"sessionType\":"
	    "\"Standard_Stream\"}', 0, 1);"
	    "PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(store_open(&f->srv.store, f->db.path), 0);
	out = run(f, "DescribeDocument", "{\"Name\":\"Old-Shell\"}", &err);
	if (out == NULL)
		fail_msg("%s: %s", err.type, err.message);
	d = json_object_get(out, "Document");
	assert_string_equal(sget(d, "DocumentVersion"), "1");
	assert_string_equal(sget(d, "DefaultVersion"), "1");
	json_decref(out);
	out = update(f, "Old-Shell", doc_c, NULL, &err);
	assert_non_null(out);
	json_decref(out);
	expect_ok(f, "GetDocument", "{\"Name\":\"AWS-StartSSHSession\"}");
	/* opening again migrates nothing and keeps everything */
	authz_free(&f->srv);
	store_close(f->srv.store);
	assert_int_equal(store_open(&f->srv.store, f->db.path), 0);
	out = run(f, "ListDocumentVersions", "{\"Name\":\"Old-Shell\"}", &err);
	assert_int_equal(json_array_size(json_object_get(out,
	    "DocumentVersions")), 2);
	json_decref(out);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_builtins),
		T(test_builtins_protected),
		T(test_create_get_describe),
		T(test_update_versions),
		T(test_delete),
		T(test_list),
		T(test_session_rules),
		T(test_content_garbage),
		T(test_preferences),
		T(test_kms_agent_version),
		T(test_version_cmp),
		T(test_migration_from_v1),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
