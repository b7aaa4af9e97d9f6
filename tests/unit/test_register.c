/* register: POST /v1/register against a real store and CA in a temporary
 * data directory (register_process: everything but the HTTP plumbing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/http.h"
#include "common/tls.h"
#include "server/init.h"
#include "server/pki.h"
#include "server/register.h"
#include "server/server.h"
#include "server/store.h"
#include "support/x509_verify.h"

/* The HTTP layer is not exercised here; these keep the link from pulling
 * it in. */
__attribute__((weak)) int
http_respond(struct http_request *req, int status, const char *content_type,
    const char *extra_headers, const void *body, size_t body_len)
{
	(void)req; (void)status; (void)content_type; (void)extra_headers;
	(void)body; (void)body_len;
	return 0;
}

__attribute__((weak)) const char *
conn_peer_addr(const struct conn *c)
{
	(void)c;
	return "127.0.0.1";
}

#define NOW_MS ((int64_t)1750000000000)

struct fx {
	char base[64];
	struct server srv;
	char act_id[STORE_ACTIVATION_ID_SIZE];
	char code[STORE_ACTIVATION_CODE_LEN + 1];
	EVP_PKEY *key;
	char *csr;
};

static char *
csr_pem(EVP_PKEY *key, EVP_PKEY *sign_key)
{
	X509_REQ *req = X509_REQ_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	assert_non_null(req);
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
	    MBSTRING_ASC, (const unsigned char *)"mi-ffffffffffffffff0", -1,
	    -1, 0);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, sign_key, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	n = BIO_get_mem_data(bio, &data);
	out = malloc((size_t)n + 1);
	assert_non_null(out);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	BIO_free(bio);
	X509_REQ_free(req);
	return out;
}

static void
new_activation(struct fx *f, int limit, int64_t expires_ms,
    const char *default_name)
{
	struct activation_new a;

	memset(&a, 0, sizeof(a));
	a.iam_role = "SSMServiceRole";
	a.registration_limit = limit;
	a.expiration_ms = expires_ms;
	a.default_instance_name = default_name;
	assert_int_equal(store_activation_create(f->srv.store, &a,
	    NOW_MS - 1000, f->act_id, f->code), 0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct init_opts o;
	char path[600];
	FILE *null;

	if (f == NULL)
		return -1;
	snprintf(f->base, sizeof(f->base), "/tmp/test_register.XXXXXX");
	if (mkdtemp(f->base) == NULL)
		return -1;
	snprintf(f->srv.data_dir, sizeof(f->srv.data_dir), "%s/data",
	    f->base);
	snprintf(f->srv.region, sizeof(f->srv.region), "eu-west-1");
	memset(&o, 0, sizeof(o));
	o.data_dir = f->srv.data_dir;
	o.account_id = "123456789012";
	null = fopen("/dev/null", "w");
	o.out = null;
	if (server_init_datadir(&o) != 0)
		return -1;
	fclose(null);
	snprintf(path, sizeof(path), "%s/%s", f->srv.data_dir,
	    SERVER_DB_FILE);
	if (store_open(&f->srv.store, path) != 0)
		return -1;
	f->key = EVP_EC_gen("P-256");
	if (f->key == NULL)
		return -1;
	f->csr = csr_pem(f->key, f->key);
	new_activation(f, 1, NOW_MS + 3600 * 1000, "web-default");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	store_close(f->srv.store);
	EVP_PKEY_free(f->key);
	free(f->csr);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->base);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* POST body, return the parsed answer; *status set. */
static json_t *
post(struct fx *f, const char *body, size_t len, int *status)
{
	struct buf resp;
	json_error_t jerr;
	json_t *o;

	buf_init(&resp, 0);
	*status = 0;
	assert_int_equal(register_process(&f->srv, (const uint8_t *)body, len,
	    NOW_MS, "127.0.0.1", status, &resp), 0);
	o = json_loadb((const char *)resp.data, resp.len, 0, &jerr);
	assert_non_null(o);
	buf_free(&resp);
	assert_int_equal(ERR_peek_error(), 0);
	return o;
}

static json_t *
post_fields(struct fx *f, const char *id, const char *code, const char *csr,
    const char *name, int *status)
{
	json_t *req = json_object(), *ans;
	char *body;

	if (id != NULL)
		json_object_set_new(req, "ActivationId", json_string(id));
	if (code != NULL)
		json_object_set_new(req, "ActivationCode", json_string(code));
	if (csr != NULL)
		json_object_set_new(req, "Csr", json_string(csr));
	if (name != NULL)
		json_object_set_new(req, "Name", json_string(name));
	json_object_set_new(req, "Hostname", json_string("host-1.local"));
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	ans = post(f, body, strlen(body), status);
	free(body);
	return ans;
}

static void
expect_error(json_t *ans, int status, int want_status, const char *type,
    const char *msg_part)
{
	const char *t = json_string_value(json_object_get(ans, "__type"));
	const char *m = json_string_value(json_object_get(ans, "message"));

	assert_int_equal(status, want_status);
	assert_non_null(t);
	assert_non_null(m);
	assert_string_equal(t, type);
	if (msg_part != NULL && strstr(m, msg_part) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", m, msg_part);
	assert_null(json_object_get(ans, "Certificate"));
	json_decref(ans);
}

static X509 *
pem_cert(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static void
test_register_ok(void **state)
{
	struct fx *f = *state;
	json_t *ans;
	const char *iid, *cert_s, *ca_s;
	struct instance_rec in;
	char cn[64], fp[PKI_FINGERPRINT_SIZE], serial[PKI_SERIAL_SIZE];
	X509 *cert, *ca;
	int status;

	ans = post_fields(f, f->act_id, f->code, f->csr, "web-1", &status);
	assert_int_equal(status, 200);
	iid = json_string_value(json_object_get(ans, "InstanceId"));
	cert_s = json_string_value(json_object_get(ans, "Certificate"));
	ca_s = json_string_value(json_object_get(ans, "CaCertificate"));
	assert_non_null(iid);
	assert_non_null(cert_s);
	assert_non_null(ca_s);
	assert_string_equal(json_string_value(json_object_get(ans, "Region")),
	    "eu-west-1");
	assert_int_equal(strlen(iid), 20);
	assert_true(strncmp(iid, "mi-", 3) == 0);

	cert = pem_cert(cert_s);
	ca = pem_cert(ca_s);
	assert_int_equal(pki_cert_cn(cert, cn, sizeof(cn)), 0);
	assert_string_equal(cn, iid);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), f->key), 1);
	assert_true(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT);
	assert_true(x509_verifies(ca, cert, X509_PURPOSE_SSL_CLIENT, NULL,
	    NULL));

	/* The store knows the instance, its name and its certificate. */
	assert_int_equal(store_instance_get(f->srv.store, iid, &in), 0);
	assert_string_equal(in.name, "web-1");
	assert_string_equal(in.iam_role, "SSMServiceRole");
	assert_string_equal(in.activation_id, f->act_id);
	assert_int_equal(pki_cert_fingerprint(cert, fp), 0);
	assert_int_equal(pki_cert_serial(cert, serial), 0);
	assert_string_equal(in.cert_fingerprint, fp);
	assert_string_equal(in.cert_serial, serial);
	X509_free(cert);
	X509_free(ca);
	json_decref(ans);

	/* Limit 1: the second registration is refused. */
	ans = post_fields(f, f->act_id, f->code, f->csr, NULL, &status);
	expect_error(ans, status, 400, "ActivationLimitExceeded",
	    "Activation registration limit reached");
}

static void
test_register_default_name(void **state)
{
	struct fx *f = *state;
	struct instance_rec in;
	json_t *ans;
	int status;

	ans = post_fields(f, f->act_id, f->code, f->csr, NULL, &status);
	assert_int_equal(status, 200);
	assert_int_equal(store_instance_get(f->srv.store, json_string_value(
	    json_object_get(ans, "InstanceId")), &in), 0);
	assert_string_equal(in.name, "web-default");
	json_decref(ans);
}

static void
test_register_denied(void **state)
{
	struct fx *f = *state;
	char wrong[sizeof(f->code)];
	json_t *ans;
	int status;

	snprintf(wrong, sizeof(wrong), "%s", f->code);
	wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
	ans = post_fields(f, f->act_id, wrong, f->csr, NULL, &status);
	expect_error(ans, status, 400, "InvalidActivation",
	    "Activation code is not valid for this activation id");
	ans = post_fields(f, "01234567-89ab-cdef-0123-456789abcdef", f->code,
	    f->csr, NULL, &status);
	expect_error(ans, status, 400, "InvalidActivation", NULL);
	ans = post_fields(f, "not-a-uuid", f->code, f->csr, NULL, &status);
	expect_error(ans, status, 400, "InvalidActivationId", "UUID");

	/* Expired. */
	new_activation(f, 5, NOW_MS - 1, NULL);
	ans = post_fields(f, f->act_id, f->code, f->csr, NULL, &status);
	expect_error(ans, status, 400, "ActivationExpired",
	    "Activation has expired");
}

static void
test_register_validation(void **state)
{
	struct fx *f = *state;
	static const char *const bodies[] = {
		"",
		"not json",
		"[]",
		"\"str\"",
		"{}",
		"{\"ActivationId\": 5}",
		"{\"ActivationId\": \"01234567-89ab-cdef-0123-456789abcdef\"}",
		"{\"ActivationId\": \"01234567-89ab-cdef-0123-456789abcdef\","
		    "\"ActivationCode\": [\"x\"], \"Csr\": \"x\"}",
		"{\"ActivationId\": \"01234567-89ab-cdef-0123-456789abcdef\","
		    "\"ActivationCode\": \"\", \"Csr\": \"x\"}",
		"{\"ActivationId\": \"01234567-89ab-cdef-0123-456789abcdef\","
		    "\"ActivationCode\": \"a b\", \"Csr\": \"x\"}",
		"{\"ActivationId\": \"01234567-89ab-cdef-0123-456789abcdef\","
		    "\"ActivationCode\": \"abc\", \"Csr\": 7}",
		"{\"ActivationId\": \"01234567-89ab-cdef-0123-456789abcdef\","
		    "\"ActivationId\":"
		    "\"01234567-89ab-cdef-0123-456789abcdef\","
		    "\"ActivationCode\": \"abc\", \"Csr\": \"x\"}",
		"{\"ActivationId\": \"01234567-89ab-cdef-0123-456789abcdef\","
		    "\"ActivationCode\": \"abc\\u0000\", \"Csr\": \"x\"}",
	};
	EVP_PKEY *other;
	char *bad_sig, *big, name[300];
	json_t *ans;
	size_t i;
	int status;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		ans = post(f, bodies[i], strlen(bodies[i]), &status);
		expect_error(ans, status, 400, "ValidationException", NULL);
	}
	/* Garbage, oversized and badly signed CSRs; none uses up the
	 * activation's single registration. */
	ans = post_fields(f, f->act_id, f->code, "garbage", NULL, &status);
	expect_error(ans, status, 400, "ValidationException", "Csr");
	big = malloc(PKI_CSR_PEM_MAX + 2);
	assert_non_null(big);
	memset(big, 'A', PKI_CSR_PEM_MAX + 1);
	big[PKI_CSR_PEM_MAX + 1] = '\0';
	ans = post_fields(f, f->act_id, f->code, big, NULL, &status);
	expect_error(ans, status, 400, "ValidationException", "16384");
	free(big);
	other = EVP_EC_gen("P-256");
	bad_sig = csr_pem(f->key, other);
	ans = post_fields(f, f->act_id, f->code, bad_sig, NULL, &status);
	expect_error(ans, status, 400, "ValidationException", "signature");
	free(bad_sig);
	EVP_PKEY_free(other);
	/* Name: too long, control characters. */
	memset(name, 'n', 257);
	name[257] = '\0';
	ans = post_fields(f, f->act_id, f->code, f->csr, name, &status);
	expect_error(ans, status, 400, "ValidationException", "Name");
	ans = post_fields(f, f->act_id, f->code, f->csr, "a\tb", &status);
	expect_error(ans, status, 400, "ValidationException", "Name");
	/* A body over the limit. */
	big = calloc(1, REGISTER_BODY_MAX + 1);
	assert_non_null(big);
	ans = post(f, big, REGISTER_BODY_MAX + 1, &status);
	expect_error(ans, status, 400, "ValidationException", "larger");
	free(big);

	/* The activation is still unused. */
	ans = post_fields(f, f->act_id, f->code, f->csr, NULL, &status);
	assert_int_equal(status, 200);
	json_decref(ans);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_ok, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_register_default_name,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_denied, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_register_validation,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
