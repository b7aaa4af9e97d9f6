/* x509_verify: X509_verify_cert against a one-certificate store. */
#include "x509_verify.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

int
x509_verifies(X509 *ca, X509 *cert, int purpose, const char *host,
    const char *ip)
{
	X509_STORE *st;
	X509_STORE_CTX *ctx;
	X509_VERIFY_PARAM *vp;
	int ok;

	st = X509_STORE_new();
	assert_non_null(st);
	assert_int_equal(X509_STORE_add_cert(st, ca), 1);
	ctx = X509_STORE_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, cert, NULL), 1);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
	vp = X509_STORE_CTX_get0_param(ctx);
	if (host != NULL)
		assert_int_equal(X509_VERIFY_PARAM_set1_host(vp, host, 0), 1);
	if (ip != NULL)
		assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(vp, ip), 1);
	ok = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	ERR_clear_error();
	return ok == 1;
}
