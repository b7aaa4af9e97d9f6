/* pki: CA, server and client certificates, CSR checks, key files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "server/pki.h"
#include "support/x509_verify.h"

#define INSTANCE_ID "mi-0123456789abcdef0"

struct fixture {
	EVP_PKEY *ca_key;
	X509 *ca;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || pki_ca_create(&f->ca_key, &f->ca) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	EVP_PKEY_free(f->ca_key);
	X509_free(f->ca);
	free(f);
	return 0;
}
/* Days from now to notAfter (rounded down). */
static int
days_left(X509 *x)
{
	int days = 0, secs = 0;

	assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL,
	    X509_get0_notAfter(x)), 1);
	return days;
}

static void
test_ca(void **state)
{
	struct fixture *f = *state;
	char cn[128];
	int crit = -1, idx;

	assert_int_equal(pki_cert_cn(f->ca, cn, sizeof(cn)), 0);
	assert_true(strncmp(cn, "porthole CA ", 12) == 0);
	assert_true(strlen(cn) > 12);
	assert_true(X509_get_extension_flags(f->ca) & EXFLAG_CA);
	assert_true(X509_get_key_usage(f->ca) & KU_KEY_CERT_SIGN);
	assert_true(X509_get_key_usage(f->ca) & KU_CRL_SIGN);
	idx = X509_get_ext_by_NID(f->ca, NID_basic_constraints, -1);
	assert_true(idx >= 0);
	crit = X509_EXTENSION_get_critical(X509_get_ext(f->ca, idx));
	assert_int_equal(crit, 1);
	idx = X509_get_ext_by_NID(f->ca, NID_key_usage, -1);
	assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(f->ca,
	    idx)), 1);
	assert_int_equal(EVP_PKEY_get_base_id(f->ca_key), EVP_PKEY_EC);
	assert_true(days_left(f->ca) >= 3649 && days_left(f->ca) <= 3650);
	/* Self-signed and valid as a trust anchor. */
	assert_true(x509_verifies(f->ca, f->ca, X509_PURPOSE_ANY, NULL, NULL));
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_server_cert(void **state)
{
	struct fixture *f = *state;
	const char *names[] = { "localhost", "127.0.0.1", "::1",
	    "porthole.example.com" };
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char cn[128];

	assert_int_equal(pki_server_cert_issue(f->ca_key, f->ca, names, 4,
	    &key, &cert), 0);
	assert_int_equal(X509_check_private_key(cert, key), 1);
	assert_int_equal(pki_cert_cn(cert, cn, sizeof(cn)), 0);
	assert_string_equal(cn, "localhost");
	assert_true(x509_verifies(f->ca, cert, X509_PURPOSE_SSL_SERVER, "localhost",
	    NULL));
	assert_true(x509_verifies(f->ca, cert, X509_PURPOSE_SSL_SERVER, NULL,
	    "127.0.0.1"));
	assert_true(x509_verifies(f->ca, cert, X509_PURPOSE_SSL_SERVER, NULL, "::1"));
	assert_true(x509_verifies(f->ca, cert, X509_PURPOSE_SSL_SERVER,
	    "porthole.example.com", NULL));
	/* Names not in the certificate, an IP written as a DNS name. */
	assert_false(x509_verifies(f->ca, cert, X509_PURPOSE_SSL_SERVER,
	    "evil.example.com", NULL));
	assert_false(x509_verifies(f->ca, cert, X509_PURPOSE_SSL_SERVER, NULL,
	    "127.0.0.2"));
	assert_false(x509_verifies(f->ca, cert, X509_PURPOSE_SSL_SERVER,
	    "127.0.0.1", NULL));
	/* serverAuth only, not a CA. */
	assert_true(X509_get_extended_key_usage(cert) & XKU_SSL_SERVER);
	assert_false(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT);
	assert_false(X509_get_extension_flags(cert) & EXFLAG_CA);
	assert_true(days_left(cert) >= 824 && days_left(cert) <= 825);
	X509_free(cert);
	EVP_PKEY_free(key);

	/* Bad names are refused before anything is made. */
	{
		const char *bad[] = { "localhost", "bad name" };

		assert_int_equal(pki_server_cert_issue(f->ca_key, f->ca, bad,
		    2, &key, &cert), PH_ERR_INVALID);
		assert_null(key);
		assert_null(cert);
		assert_int_equal(pki_server_cert_issue(f->ca_key, f->ca, bad,
		    0, &key, &cert), PH_ERR_INVALID);
	}
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_name_valid(void **state)
{
	(void)state;
	assert_true(pki_name_valid("localhost"));
	assert_true(pki_name_valid("a.b-c.example"));
	assert_true(pki_name_valid("*.example.com"));
	assert_true(pki_name_valid("10.0.0.1"));
	assert_true(pki_name_valid("fe80::1"));
	assert_false(pki_name_valid(""));
	assert_false(pki_name_valid(NULL));
	assert_false(pki_name_valid("bad name"));
	assert_false(pki_name_valid("-x.example"));
	assert_false(pki_name_valid("x-.example"));
	assert_false(pki_name_valid("a..b"));
	assert_false(pki_name_valid("a.b."));
	assert_false(pki_name_valid("a,b"));
	assert_false(pki_name_valid("*."));
	assert_false(pki_name_valid("a.*.b"));
	assert_false(pki_name_valid("[::1]"));
}

/* A PEM CSR for key: subject CN "evil", asking for CA:TRUE and a SAN, and
 * signed by sign_key (key itself for a good CSR). Caller frees. */
static char *
make_csr(EVP_PKEY *key, EVP_PKEY *sign_key, size_t *len)
{
	X509_REQ *req;
	X509_NAME *n;
	STACK_OF(X509_EXTENSION) *exts;
	X509_EXTENSION *ext;
	BIO *bio;
	char *data, *out;
	long nb;

	req = X509_REQ_new();
	assert_non_null(req);
	n = X509_REQ_get_subject_name(req);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"evil", -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	exts = sk_X509_EXTENSION_new_null();
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
	    "critical,CA:TRUE");
	assert_non_null(ext);
	sk_X509_EXTENSION_push(exts, ext);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
	    "DNS:evil.example.com");
	assert_non_null(ext);
	sk_X509_EXTENSION_push(exts, ext);
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	assert_true(X509_REQ_sign(req, sign_key, EVP_sha256()) > 0);
	bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	nb = BIO_get_mem_data(bio, &data);
	out = malloc((size_t)nb + 1);
	assert_non_null(out);
	memcpy(out, data, (size_t)nb);
	out[nb] = '\0';
	*len = (size_t)nb;
	BIO_free(bio);
	X509_REQ_free(req);
	return out;
}

static void
test_client_cert(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *key;
	X509_REQ *req = NULL;
	X509 *cert = NULL;
	char *pem, cn[64], fp[PKI_FINGERPRINT_SIZE], serial[PKI_SERIAL_SIZE];
	char err[128], hex[65], *cert_pem = NULL;
	unsigned char md[32];
	unsigned int mdlen = 0, i;
	size_t len, plen = 0;
	const ASN1_INTEGER *sn;
	BIGNUM *bn;

	key = EVP_EC_gen("P-256");
	assert_non_null(key);
	pem = make_csr(key, key, &len);
	assert_int_equal(pki_csr_parse(pem, len, &req, err, sizeof(err)), 0);
	assert_non_null(req);
	assert_int_equal(pki_client_cert_issue(f->ca_key, f->ca, req,
	    INSTANCE_ID, &cert), 0);

	/* The CN is ours, not the CSR's; nothing else of the CSR. */
	assert_int_equal(pki_cert_cn(cert, cn, sizeof(cn)), 0);
	assert_string_equal(cn, INSTANCE_ID);
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(cert)),
	    1);
	assert_false(X509_get_extension_flags(cert) & EXFLAG_CA);
	assert_true(X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) < 0);
	assert_true(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT);
	assert_false(X509_get_extended_key_usage(cert) & XKU_SSL_SERVER);
	assert_true(x509_verifies(f->ca, cert, X509_PURPOSE_SSL_CLIENT, NULL, NULL));
	assert_false(x509_verifies(f->ca, cert, X509_PURPOSE_SSL_SERVER, NULL,
	    NULL));
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), key), 1);
	assert_true(days_left(cert) >= 364 && days_left(cert) <= 365);

	/* 128-bit positive random serial. */
	sn = X509_get0_serialNumber(cert);
	bn = ASN1_INTEGER_to_BN(sn, NULL);
	assert_non_null(bn);
	assert_false(BN_is_negative(bn));
	assert_true(BN_num_bits(bn) > 64 && BN_num_bits(bn) <= 128);
	BN_free(bn);
	assert_int_equal(pki_cert_serial(cert, serial), 0);
	assert_true(strlen(serial) == 32);

	/* Fingerprint: SHA-256 of the DER, lower-case hex. */
	assert_int_equal(pki_cert_fingerprint(cert, fp), 0);
	assert_int_equal(X509_digest(cert, EVP_sha256(), md, &mdlen), 1);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(fp, hex);

	/* PEM round trip. */
	assert_int_equal(pki_cert_pem(cert, &cert_pem, &plen), 0);
	assert_int_equal(strlen(cert_pem), plen);
	assert_non_null(strstr(cert_pem, "-----BEGIN CERTIFICATE-----"));

	/* Two certificates for one CSR differ in serial. */
	{
		X509 *c2 = NULL;
		char s2[PKI_SERIAL_SIZE];

		assert_int_equal(pki_client_cert_issue(f->ca_key, f->ca, req,
		    INSTANCE_ID, &c2), 0);
		assert_int_equal(pki_cert_serial(c2, s2), 0);
		assert_string_not_equal(serial, s2);
		X509_free(c2);
	}
	{
		X509 *c3 = NULL;

		assert_int_equal(pki_client_cert_issue(f->ca_key, f->ca, req,
		    "", &c3), PH_ERR_INVALID);
		assert_null(c3);
	}
	free(cert_pem);
	X509_free(cert);
	X509_REQ_free(req);
	free(pem);
	EVP_PKEY_free(key);
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_csr_rsa(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *key;
	X509_REQ *req = NULL;
	X509 *cert = NULL;
	char *pem, err[128];
	size_t len;

	key = EVP_RSA_gen(2048);
	assert_non_null(key);
	pem = make_csr(key, key, &len);
	assert_int_equal(pki_csr_parse(pem, len, &req, err, sizeof(err)), 0);
	assert_int_equal(pki_client_cert_issue(f->ca_key, f->ca, req,
	    INSTANCE_ID, &cert), 0);
	assert_true(x509_verifies(f->ca, cert, X509_PURPOSE_SSL_CLIENT, NULL, NULL));
	X509_free(cert);
	X509_REQ_free(req);
	free(pem);
	EVP_PKEY_free(key);

	/* Too weak, or a curve we do not take. */
	key = EVP_RSA_gen(1024);
	assert_non_null(key);
	pem = make_csr(key, key, &len);
	assert_int_equal(pki_csr_parse(pem, len, &req, err, sizeof(err)),
	    PH_ERR_INVALID);
	assert_null(req);
	assert_non_null(strstr(err, "P-256"));
	free(pem);
	EVP_PKEY_free(key);

	key = EVP_EC_gen("P-384");
	assert_non_null(key);
	pem = make_csr(key, key, &len);
	assert_int_equal(pki_csr_parse(pem, len, &req, err, sizeof(err)),
	    PH_ERR_INVALID);
	free(pem);
	EVP_PKEY_free(key);
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_csr_bad_signature(void **state)
{
	EVP_PKEY *key, *other;
	X509_REQ *req = NULL, *r2;
	char *pem, err[128];
	unsigned char *der = NULL, *p;
	const unsigned char *cp;
	size_t len;
	int dlen;
	BIO *bio;
	char *data;
	long nb;

	(void)state;
	key = EVP_EC_gen("P-256");
	other = EVP_EC_gen("P-256");
	assert_non_null(key);
	assert_non_null(other);

	/* Signed by a key other than the one it carries. */
	pem = make_csr(key, other, &len);
	assert_int_equal(pki_csr_parse(pem, len, &req, err, sizeof(err)),
	    PH_ERR_DENIED);
	assert_null(req);
	assert_non_null(strstr(err, "signature"));
	free(pem);

	/* A good CSR whose subject was changed after signing. */
	pem = make_csr(key, key, &len);
	bio = BIO_new_mem_buf(pem, (int)len);
	r2 = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	assert_non_null(r2);
	BIO_free(bio);
	free(pem);
	dlen = i2d_X509_REQ(r2, &der);
	assert_true(dlen > 0);
	X509_REQ_free(r2);
	p = memmem(der, (size_t)dlen, "evil", 4);
	assert_non_null(p);
	p[0] = 'E';
	cp = der;
	r2 = d2i_X509_REQ(NULL, &cp, dlen);
	assert_non_null(r2);
	bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_X509_REQ(bio, r2), 1);
	nb = BIO_get_mem_data(bio, &data);
	assert_int_equal(pki_csr_parse(data, (size_t)nb, &req, err,
	    sizeof(err)), PH_ERR_DENIED);
	assert_null(req);
	BIO_free(bio);
	X509_REQ_free(r2);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	ERR_clear_error();
}

static void
expect_refused(const char *pem, size_t len, int want)
{
	X509_REQ *req = (X509_REQ *)1;
	char err[128];

	err[0] = '\0';
	assert_int_equal(pki_csr_parse(pem, len, &req, err, sizeof(err)),
	    want);
	assert_null(req);
	assert_true(err[0] != '\0');
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_csr_garbage(void **state)
{
	struct fixture *f = *state;
	unsigned char rnd[4096];
	EVP_PKEY *key;
	char *pem, *two, *cert_pem = NULL;
	size_t len, i;
	char *big;

	assert_int_equal(RAND_bytes(rnd, sizeof(rnd)), 1);
	expect_refused((const char *)rnd, sizeof(rnd), PH_ERR_INVALID);
	/* Random bytes with no NUL. */
	for (i = 0; i < sizeof(rnd); i++)
		if (rnd[i] == 0)
			rnd[i] = 'A';
	expect_refused((const char *)rnd, sizeof(rnd), PH_ERR_INVALID);
	expect_refused("", 0, PH_ERR_INVALID);
	expect_refused(NULL, 0, PH_ERR_INVALID);
	expect_refused("-----BEGIN CERTIFICATE REQUEST-----\n"
	    "not base64 at all!!\n-----END CERTIFICATE REQUEST-----\n", 74,
	    PH_ERR_INVALID);

	key = EVP_EC_gen("P-256");
	assert_non_null(key);
	pem = make_csr(key, key, &len);
	/* Truncated at every eighth length. */
	for (i = 0; i < len - 1; i += 8)
		expect_refused(pem, i, PH_ERR_INVALID);
	/* A NUL inside, and two requests in one. */
	{
		char *z = malloc(len);

		assert_non_null(z);
		memcpy(z, pem, len);
		z[len / 2] = '\0';
		expect_refused(z, len, PH_ERR_INVALID);
		free(z);
	}
	two = malloc(2 * len);
	assert_non_null(two);
	memcpy(two, pem, len);
	memcpy(two + len, pem, len);
	expect_refused(two, 2 * len, PH_ERR_INVALID);
	free(two);

	/* A certificate is not a CSR. */
	assert_int_equal(pki_cert_pem(f->ca, &cert_pem, &len), 0);
	expect_refused(cert_pem, len, PH_ERR_INVALID);
	free(cert_pem);

	/* 1 MiB, and one byte over the limit. */
	big = malloc((size_t)1 << 20);
	assert_non_null(big);
	memset(big, 'A', (size_t)1 << 20);
	expect_refused(big, (size_t)1 << 20, PH_ERR_TOOBIG);
	expect_refused(big, PKI_CSR_PEM_MAX + 1, PH_ERR_TOOBIG);
	expect_refused(big, PKI_CSR_PEM_MAX, PH_ERR_INVALID);
	free(big);
	free(pem);
	EVP_PKEY_free(key);
}

static void
test_files(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/test_pki.XXXXXX", path[256], c[256], k[256];
	char ca[256], fp1[PKI_FINGERPRINT_SIZE], fp2[PKI_FINGERPRINT_SIZE];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	struct stat sb;
	mode_t old;

	assert_non_null(mkdtemp(dir));
	/* The key's mode must not depend on a lax umask. */
	old = umask(0);
	snprintf(path, sizeof(path), "%s/%s", dir, PKI_CA_KEY_FILE);
	assert_int_equal(pki_write_key(path, f->ca_key), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* Never overwritten. */
	assert_int_equal(pki_write_key(path, f->ca_key), PH_ERR_EXISTS);
	umask(022);
	snprintf(path, sizeof(path), "%s/%s", dir, PKI_CA_CERT_FILE);
	assert_int_equal(pki_write_cert(path, f->ca), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	assert_int_equal(pki_write_cert(path, f->ca), PH_ERR_EXISTS);
	umask(old);

	/* Loaded back, the pair matches. */
	assert_int_equal(pki_load_ca(dir, &key, &cert), 0);
	assert_int_equal(EVP_PKEY_eq(key, f->ca_key), 1);
	assert_int_equal(pki_cert_fingerprint(cert, fp1), 0);
	assert_int_equal(pki_cert_fingerprint(f->ca, fp2), 0);
	assert_string_equal(fp1, fp2);
	EVP_PKEY_free(key);
	X509_free(cert);

	/* Server TLS paths: missing files are reported. */
	assert_int_equal(pki_load_server_tls(dir, c, sizeof(c), k, sizeof(k),
	    ca, sizeof(ca)), PH_ERR_NOTFOUND);
	{
		const char *names[] = { "localhost" };

		assert_int_equal(pki_server_cert_issue(f->ca_key, f->ca, names,
		    1, &key, &cert), 0);
		snprintf(path, sizeof(path), "%s/%s", dir,
		    PKI_SERVER_KEY_FILE);
		assert_int_equal(pki_write_key(path, key), 0);
		snprintf(path, sizeof(path), "%s/%s", dir,
		    PKI_SERVER_CERT_FILE);
		assert_int_equal(pki_write_cert(path, cert), 0);
		EVP_PKEY_free(key);
		X509_free(cert);
	}
	assert_int_equal(pki_load_server_tls(dir, c, sizeof(c), k, sizeof(k),
	    ca, sizeof(ca)), 0);
	snprintf(path, sizeof(path), "%s/server.pem", dir);
	assert_string_equal(c, path);
	snprintf(path, sizeof(path), "%s/server.key", dir);
	assert_string_equal(k, path);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	assert_string_equal(ca, path);
	assert_int_equal(pki_load_server_tls(dir, c, 4, k, sizeof(k), ca,
	    sizeof(ca)), PH_ERR_TOOBIG);

	/* A key that is not the CA's is refused. */
	{
		EVP_PKEY *other = EVP_EC_gen("P-256");

		snprintf(path, sizeof(path), "%s/%s", dir, PKI_CA_KEY_FILE);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(pki_write_key(path, other), 0);
		assert_int_equal(pki_load_ca(dir, &key, &cert),
		    PH_ERR_INVALID);
		assert_null(key);
		assert_null(cert);
		EVP_PKEY_free(other);
	}
	/* Garbage and missing files load cleanly as errors. */
	snprintf(path, sizeof(path), "%s/garbage", dir);
	assert_int_equal(pki_write_file_excl(path, "xyz", 3, 0600), 0);
	assert_int_equal(pki_load_key(path, &key), PH_ERR_INVALID);
	assert_int_equal(pki_load_cert(path, &cert), PH_ERR_INVALID);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(pki_load_key(path, &key), PH_ERR_NOTFOUND);

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
	assert_int_equal(ERR_peek_error(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca),
		cmocka_unit_test(test_server_cert),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_client_cert),
		cmocka_unit_test(test_csr_rsa),
		cmocka_unit_test(test_csr_bad_signature),
		cmocka_unit_test(test_csr_garbage),
		cmocka_unit_test(test_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
