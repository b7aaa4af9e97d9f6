/* api: the HTTP entry point end to end without sockets: requests signed
 * here with SigV4 (OpenSSL HMAC) go through api_handle, the real verifier
 * and the SSM dispatcher; the response is captured by the http_respond
 * stub below. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "common/err.h"
#include "common/http.h"
#include "common/uuid.h"
#include "server/api.h"
#include "server/authz.h"
#include "server/gateway.h"
#include "server/server.h"
#include "server/store.h"
#include "server/store_iam.h"
#include "support/signed_request.h"
#include "support/fixture.h"

/* ---- stubs (weak: real definitions win when linked in) ------------------ */

/* The response is captured here; support/api_stubs.c has the others. */

static int resp_status;
static char resp_type[64];
static char resp_headers[256];
static char resp_body[8192];

__attribute__((weak)) int
http_respond(struct http_request *req, int status, const char *content_type,
    const char *extra_headers, const void *body, size_t body_len)
{
	(void)req;
	resp_status = status;
	snprintf(resp_type, sizeof(resp_type), "%s", content_type);
	snprintf(resp_headers, sizeof(resp_headers), "%s",
	    extra_headers ? extra_headers : "");
	snprintf(resp_body, sizeof(resp_body), "%.*s", (int)body_len,
	    (const char *)body);
	return 0;
}

__attribute__((weak)) void
uuid_v4_str(char out[UUID_STR_LEN])
{
	snprintf(out, UUID_STR_LEN, "00000000-0000-4000-8000-000000000001");
}

/* ---- fixture -------------------------------------------------------------- */

struct fx {
	struct tmpdb db;
	struct server srv;
	char akid[STORE_AKID_SIZE], secret[STORE_SECRET_SIZE];
	char bob_akid[STORE_AKID_SIZE], bob_secret[STORE_SECRET_SIZE];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct iam_role_rec role;

	if (f == NULL)
		return -1;
	if (test_server_open(&f->srv, &f->db, "ph-apih") != 0)
		return -1;
	if (store_iam_create_user(f->srv.store, "admin",
	    "arn:aws:iam::123456789012:user/admin", 1) != 0 ||
	    store_iam_create_access_key(f->srv.store, "admin", f->akid,
	    f->secret) != 0 ||
	    store_iam_create_user(f->srv.store, "bob",
	    "arn:aws:iam::123456789012:user/bob", 0) != 0 ||
	    store_iam_create_access_key(f->srv.store, "bob", f->bob_akid,
	    f->bob_secret) != 0)
		return -1;
	/* CreateActivation's IamRole must trust ssm.amazonaws.com. */
	memset(&role, 0, sizeof(role));
	snprintf(role.name, sizeof(role.name), "R");
	snprintf(role.arn, sizeof(role.arn),
	    "arn:aws:iam::123456789012:role/R");
	role.trust_policy = (char *)"{\"Statement\":{\"Effect\":\"Allow\","
	    "\"Principal\":{\"Service\":\"ssm.amazonaws.com\"},"
	    "\"Action\":\"sts:AssumeRole\"}}";
	if (store_iam_role_create(f->srv.store, &role) != 0)
		return -1;
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

/* The response's __type, or "" for success; status checked. */
static json_t *
expect(int status, const char *type)
{
	json_error_t jerr;
	json_t *o;

	if (resp_status != status)
		fail_msg("status %d, wanted %d: %s", resp_status, status,
		    resp_body);
	assert_string_equal(resp_type, "application/x-amz-json-1.1");
	assert_non_null(strstr(resp_headers, "x-amzn-RequestId: "));
	o = json_loads(resp_body, 0, &jerr);
	assert_non_null(o);
	if (type != NULL) {
		assert_string_equal(json_string_value(json_object_get(o,
		    "__type")), type);
		assert_non_null(json_string_value(json_object_get(o,
		    "message")));
	} else {
		assert_null(json_object_get(o, "__type"));
	}
	return o;
}

static void
test_signed_calls(void **state)
{
	struct fx *f = *state;
	struct signed_req s;
	json_t *o;

	signed_req_make(&s, f->akid, f->secret, NULL, "ssm",
	    "AmazonSSM.CreateActivation", "{\"IamRole\":\"R\"}");
	api_handle(&f->srv, &s.req);
	o = expect(200, NULL);
	assert_int_equal(strlen(json_string_value(json_object_get(o,
	    "ActivationCode"))), 20);
	json_decref(o);

	signed_req_make(&s, f->akid, f->secret, NULL, "ssm",
	    "AmazonSSM.DescribeActivations", "");
	api_handle(&f->srv, &s.req);
	o = expect(200, NULL);
	assert_int_equal(json_array_size(json_object_get(o,
	    "ActivationList")), 1);
	json_decref(o);

	signed_req_make(&s, f->akid, f->secret, NULL, "ssm",
	    "AmazonSSM.StartSession", "{\"Target\":\"mi-00000000000000000\"}");
	api_handle(&f->srv, &s.req);
	json_decref(expect(400, "TargetNotConnected"));
}

static void
test_refusals(void **state)
{
	struct fx *f = *state;
	struct signed_req s;

	/* not signed */
	signed_req_make(&s, f->akid, f->secret, NULL, "ssm",
	    "AmazonSSM.DescribeActivations", "{}");
	s.req.nheaders = 4;
	api_handle(&f->srv, &s.req);
	json_decref(expect(403, "MissingAuthenticationTokenException"));
	/* wrong secret, unknown key */
	signed_req_make(&s, f->akid, "x", NULL, "ssm",
	    "AmazonSSM.DescribeActivations", "{}");
	api_handle(&f->srv, &s.req);
	json_decref(expect(403, "InvalidSignatureException"));
	signed_req_make(&s, "AKIAUNKNOWNUNKNOWN00", f->secret, NULL, "ssm",
	    "AmazonSSM.DescribeActivations", "{}");
	api_handle(&f->srv, &s.req);
	json_decref(expect(403, "UnrecognizedClientException"));
	/* body changed after signing */
	signed_req_make(&s, f->akid, f->secret, NULL, "ssm",
	    "AmazonSSM.DescribeActivations", "{}");
	s.req.body = (const uint8_t *)"{\"MaxResults\":1}";
	s.req.body_len = strlen((const char *)s.req.body);
	api_handle(&f->srv, &s.req);
	json_decref(expect(403, "InvalidSignatureException"));
	/* a valid user without rights */
	signed_req_make(&s, f->bob_akid, f->bob_secret, NULL, "ssm",
	    "AmazonSSM.DescribeActivations", "{}");
	api_handle(&f->srv, &s.req);
	json_decref(expect(400, "AccessDeniedException"));
	/* routing */
	signed_req_make(&s, f->akid, f->secret, NULL, "ssm", "AmazonSSM.Nope",
	    "{}");
	api_handle(&f->srv, &s.req);
	json_decref(expect(400, "UnknownOperationException"));
	signed_req_make(&s, f->akid, f->secret, NULL, "ssm",
	    "TrentService.ListKeys", "{}");
	api_handle(&f->srv, &s.req);
	json_decref(expect(400, "UnknownOperationException"));
	signed_req_make(&s, f->akid, f->secret, NULL, "s3",
	    "AmazonSSM.DescribeActivations", "{}");
	api_handle(&f->srv, &s.req);
	json_decref(expect(400, "UnknownOperationException"));
	/* bodies */
	signed_req_make(&s, f->akid, f->secret, NULL, "ssm",
	    "AmazonSSM.DescribeActivations", "{\"Filters\": [");
	api_handle(&f->srv, &s.req);
	json_decref(expect(400, "SerializationException"));
	signed_req_make(&s, f->akid, f->secret, NULL, "ssm",
	    "AmazonSSM.DescribeActivations", "[1,2]");
	api_handle(&f->srv, &s.req);
	json_decref(expect(400, "SerializationException"));
	signed_req_make(&s, f->akid, f->secret, NULL, "ssm",
	    "AmazonSSM.DescribeActivations", "{\"a\":\"\\u0000\"}");
	api_handle(&f->srv, &s.req);
	json_decref(expect(400, "SerializationException"));
	/* not the API */
	signed_req_make(&s, f->akid, f->secret, NULL, "ssm",
	    "AmazonSSM.DescribeActivations", "{}");
	s.req.method = "GET";
	api_handle(&f->srv, &s.req);
	json_decref(expect(404, "UnknownOperationException"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signed_calls, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
