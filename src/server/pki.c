/* pki: portholed's certificate authority (OpenSSL 3). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/log.h"
#include "server/pki.h"

/* Certificates start a little in the past so a peer whose clock is behind
 * ours still accepts them. */
#define PKI_BACKDATE_SECONDS 300

/* Log the first queued OpenSSL error with context and empty the queue: a
 * stale entry would confuse the next SSL_get_error on this thread. */
static void
ossl_fail(const char *what)
{
	char msg[256];
	unsigned long e;

	e = ERR_peek_error();
	if (e != 0) {
		ERR_error_string_n(e, msg, sizeof(msg));
		log_warn("event=pki_error op=%s detail=\"%s\"", what, msg);
	} else
		log_warn("event=pki_error op=%s", what);
	ERR_clear_error();
}

static void
set_err(char *err, size_t errsz, const char *msg)
{
	if (err != NULL && errsz > 0)
		snprintf(err, errsz, "%s", msg);
}

static EVP_PKEY *
new_ec_key(void)
{
	EVP_PKEY *k;

	k = EVP_EC_gen("P-256");
	if (k == NULL)
		ossl_fail("keygen");
	return k;
}

/* Random positive 128-bit serial number (RFC 5280 4.1.2.2: at most 20
 * octets, positive; random so serials are unpredictable). */
static int
set_random_serial(X509 *x)
{
	unsigned char b[16];
	BIGNUM *bn = NULL;
	int rc = PH_ERR_CRYPTO;

	if (RAND_bytes(b, sizeof(b)) != 1)
		goto fail;
	b[0] &= 0x7f;
	b[0] |= 0x40;   /* never zero, always 16 octets */
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
		goto fail;
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto fail;
	rc = 0;
fail:
	if (rc != 0)
		ossl_fail("serial");
	BN_free(bn);
	return rc;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int ok;

	ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	if (ext == NULL)
		return PH_ERR_CRYPTO;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : PH_ERR_CRYPTO;
}

/* Version 3, serial, validity, subject CN, issuer, public key. */
static int
cert_skeleton(X509 *x, const char *cn, const X509_NAME *issuer,
    EVP_PKEY *pub, long days)
{
	X509_NAME *subj = NULL;
	int rc = PH_ERR_CRYPTO;

	if (X509_set_version(x, X509_VERSION_3) != 1)
		goto fail;
	if (set_random_serial(x) != 0)
		goto fail;
	if (X509_gmtime_adj(X509_getm_notBefore(x),
	    -PKI_BACKDATE_SECONDS) == NULL)
		goto fail;
	if (X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0,
	    NULL) == NULL)
		goto fail;
	if ((subj = X509_NAME_new()) == NULL)
		goto fail;
	if (X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1)
		goto fail;
	if (X509_set_subject_name(x, subj) != 1)
		goto fail;
	if (X509_set_issuer_name(x, issuer != NULL ? issuer : subj) != 1)
		goto fail;
	if (X509_set_pubkey(x, pub) != 1)
		goto fail;
	rc = 0;
fail:
	X509_NAME_free(subj);
	return rc;
}

int
pki_ca_create(EVP_PKEY **key_out, X509 **cert_out)
{
	unsigned char r[8];
	char cn[64];
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509V3_CTX ctx;
	int rc = PH_ERR_CRYPTO;

	*key_out = NULL;
	*cert_out = NULL;
	if (RAND_bytes(r, sizeof(r)) != 1)
		goto fail;
	snprintf(cn, sizeof(cn), "porthole CA %02x%02x%02x%02x%02x%02x%02x%02x",
	    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
	if ((key = new_ec_key()) == NULL)
		goto fail;
	if ((x = X509_new()) == NULL)
		goto fail;
	if (cert_skeleton(x, cn, NULL, key, PKI_CA_DAYS) != 0)
		goto fail;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
	    add_ext(x, &ctx, NID_key_usage,
	    "critical,keyCertSign,cRLSign") != 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0)
		goto fail;
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		goto fail;
	*key_out = key;
	*cert_out = x;
	key = NULL;   /* transferred */
	x = NULL;
	rc = 0;
fail:
	if (rc != 0)
		ossl_fail("ca_create");
	EVP_PKEY_free(key);
	X509_free(x);
	return rc;
}

static int
is_ip_literal(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int
pki_name_valid(const char *name)
{
	size_t len, label = 0, i;
	const char *p;

	if (name == NULL)
		return 0;
	if (is_ip_literal(name))
		return 1;
	len = strlen(name);
	if (len == 0 || len > 253)
		return 0;
	p = name;
	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	if (*p == '\0')
		return 0;
	for (i = 0; p[i] != '\0'; i++) {
		char c = p[i];

		if (c == '.') {
			if (label == 0 || p[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	/* A trailing dot or hyphen is not a host name we can match. */
	if (label == 0 || p[i - 1] == '-')
		return 0;
	return 1;
}

static int
add_san(X509 *x, const char *const *names, size_t nnames)
{
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gen = NULL;
	ASN1_OCTET_STRING *ip = NULL;
	ASN1_IA5STRING *dns = NULL;
	size_t i;
	int rc = PH_ERR_CRYPTO;

	if ((gens = GENERAL_NAMES_new()) == NULL)
		goto fail;
	for (i = 0; i < nnames; i++) {
		if ((gen = GENERAL_NAME_new()) == NULL)
			goto fail;
		if (is_ip_literal(names[i])) {
			if ((ip = a2i_IPADDRESS(names[i])) == NULL)
				goto fail;
			GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
			ip = NULL;   /* transferred */
		} else {
			if ((dns = ASN1_IA5STRING_new()) == NULL)
				goto fail;
			if (ASN1_STRING_set(dns, names[i], -1) != 1)
				goto fail;
			GENERAL_NAME_set0_value(gen, GEN_DNS, dns);
			dns = NULL;  /* transferred */
		}
		if (sk_GENERAL_NAME_push(gens, gen) <= 0)
			goto fail;
		gen = NULL;          /* transferred */
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) != 1)
		goto fail;
	rc = 0;
fail:
	ASN1_OCTET_STRING_free(ip);
	ASN1_IA5STRING_free(dns);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	return rc;
}

int
pki_server_cert_issue(EVP_PKEY *ca_key, X509 *ca_cert,
    const char *const *names, size_t nnames, EVP_PKEY **key_out,
    X509 **cert_out)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509V3_CTX ctx;
	size_t i;
	int rc = PH_ERR_INVALID;

	*key_out = NULL;
	*cert_out = NULL;
	if (nnames == 0 || nnames > PKI_NAMES_MAX)
		goto fail;
	for (i = 0; i < nnames; i++)
		if (!pki_name_valid(names[i]))
			goto fail;
	rc = PH_ERR_CRYPTO;
	if ((key = new_ec_key()) == NULL)
		goto fail;
	if ((x = X509_new()) == NULL)
		goto fail;
	if (cert_skeleton(x, names[0], X509_get_subject_name(ca_cert), key,
	    PKI_SERVER_DAYS) != 0)
		goto fail;
	X509V3_set_ctx(&ctx, ca_cert, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
	    add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") != 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid") != 0)
		goto fail;
	if (add_san(x, names, nnames) != 0)
		goto fail;
	if (X509_sign(x, ca_key, EVP_sha256()) <= 0)
		goto fail;
	*key_out = key;
	*cert_out = x;
	key = NULL;   /* transferred */
	x = NULL;
	rc = 0;
fail:
	if (rc == PH_ERR_CRYPTO)
		ossl_fail("server_cert");
	EVP_PKEY_free(key);
	X509_free(x);
	return rc;
}

/* EC P-256, or RSA within bounds: what agents generate, and nothing that
 * costs us much to verify. */
static int
csr_key_ok(EVP_PKEY *pk, char *err, size_t errsz)
{
	char group[64];
	size_t glen = 0;
	int bits;

	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(pk, group, sizeof(group),
		    &glen) != 1) {
			ERR_clear_error();
			break;
		}
		if (strcmp(group, "prime256v1") == 0 ||
		    strcmp(group, "P-256") == 0)
			return 0;
		break;
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(pk);
		if (bits >= PKI_RSA_MIN_BITS && bits <= PKI_RSA_MAX_BITS)
			return 0;
		break;
	default:
		break;
	}
	set_err(err, errsz, "Csr key must be EC P-256 or RSA of 2048 to 8192 "
	    "bits");
	return PH_ERR_INVALID;
}

int
pki_csr_parse(const char *pem, size_t len, X509_REQ **out, char *err,
    size_t errsz)
{
	static const char begin[] = "-----BEGIN ";
	X509_REQ *req = NULL;
	EVP_PKEY *pk;
	BIO *bio = NULL;
	const char *p;
	size_t nbegin = 0, i;
	int rc, v;

	*out = NULL;
	if (pem == NULL || len == 0) {
		set_err(err, errsz, "Csr is empty");
		return PH_ERR_INVALID;
	}
	if (len > PKI_CSR_PEM_MAX) {
		set_err(err, errsz, "Csr is larger than 16384 bytes");
		return PH_ERR_TOOBIG;
	}
	/* PEM is text: a NUL would end what OpenSSL sees early. Exactly one
	 * block, so nothing can ride along after the request. */
	for (i = 0; i < len; i++)
		if (pem[i] == '\0')
			goto bad;
	for (p = pem; (size_t)(p - pem) < len;) {
		p = memmem(p, len - (size_t)(p - pem), begin,
		    sizeof(begin) - 1);
		if (p == NULL)
			break;
		nbegin++;
		p += sizeof(begin) - 1;
	}
	if (nbegin != 1)
		goto bad;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	if ((req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) == NULL)
		goto bad;
	if ((pk = X509_REQ_get0_pubkey(req)) == NULL)
		goto bad;
	if ((rc = csr_key_ok(pk, err, errsz)) != 0)
		goto fail;
	v = X509_REQ_verify(req, pk);
	if (v != 1) {
		set_err(err, errsz, "Csr signature does not verify");
		rc = PH_ERR_DENIED;
		goto fail;
	}
	*out = req;
	req = NULL;   /* transferred */
	rc = 0;
	goto fail;
bad:
	set_err(err, errsz, "Csr is not a PEM certificate request");
	rc = PH_ERR_INVALID;
fail:
	ERR_clear_error();   /* expected on hostile input: nothing to log */
	BIO_free(bio);
	X509_REQ_free(req);
	return rc;
}

int
pki_client_cert_issue(EVP_PKEY *ca_key, X509 *ca_cert, X509_REQ *req,
    const char *instance_id, X509 **cert_out)
{
	EVP_PKEY *pub;
	X509 *x = NULL;
	X509V3_CTX ctx;
	const char *ku;
	int rc = PH_ERR_INVALID;

	*cert_out = NULL;
	if (instance_id == NULL || instance_id[0] == '\0' ||
	    strlen(instance_id) > 64)
		goto fail;
	if ((pub = X509_REQ_get0_pubkey(req)) == NULL ||
	    X509_REQ_verify(req, pub) != 1) {
		rc = PH_ERR_DENIED;
		goto fail;
	}
	rc = PH_ERR_CRYPTO;
	if ((x = X509_new()) == NULL)
		goto fail;
	if (cert_skeleton(x, instance_id, X509_get_subject_name(ca_cert), pub,
	    PKI_CLIENT_DAYS) != 0)
		goto fail;
	/* RSA keys may also do key transport; EC keys only sign. */
	ku = EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA ?
	    "critical,digitalSignature,keyEncipherment" :
	    "critical,digitalSignature";
	X509V3_set_ctx(&ctx, ca_cert, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    add_ext(x, &ctx, NID_key_usage, ku) != 0 ||
	    add_ext(x, &ctx, NID_ext_key_usage, "clientAuth") != 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid") != 0)
		goto fail;
	if (X509_sign(x, ca_key, EVP_sha256()) <= 0)
		goto fail;
	*cert_out = x;
	x = NULL;     /* transferred */
	rc = 0;
fail:
	if (rc == PH_ERR_CRYPTO)
		ossl_fail("client_cert");
	ERR_clear_error();
	X509_free(x);
	return rc;
}

int
pki_cert_fingerprint(X509 *cert, char out[PKI_FINGERPRINT_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32) {
		ossl_fail("fingerprint");
		return PH_ERR_CRYPTO;
	}
	for (i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * n] = '\0';
	return 0;
}

int
pki_cert_serial(X509 *cert, char out[PKI_SERIAL_SIZE])
{
	BIGNUM *bn;
	char *h = NULL;
	int rc = PH_ERR_CRYPTO;

	out[0] = '\0';
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	if (bn == NULL || (h = BN_bn2hex(bn)) == NULL)
		goto fail;
	if (strlen(h) >= PKI_SERIAL_SIZE) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	snprintf(out, PKI_SERIAL_SIZE, "%s", h);
	rc = 0;
fail:
	if (rc == PH_ERR_CRYPTO)
		ossl_fail("serial");
	OPENSSL_free(h);
	BN_free(bn);
	return rc;
}

int
pki_cert_cn(X509 *cert, char *out, size_t outsz)
{
	X509_NAME *n;
	X509_NAME_ENTRY *e;
	unsigned char *u = NULL;
	int idx, len, rc = PH_ERR_NOTFOUND;

	if (outsz > 0)
		out[0] = '\0';
	n = X509_get_subject_name(cert);
	idx = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	if (idx < 0 || (e = X509_NAME_get_entry(n, idx)) == NULL)
		goto fail;
	len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
	if (len < 0)
		goto fail;
	if ((size_t)len >= outsz || memchr(u, '\0', (size_t)len) != NULL) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	memcpy(out, u, (size_t)len);
	out[len] = '\0';
	rc = 0;
fail:
	ERR_clear_error();
	OPENSSL_free(u);
	return rc;
}

int
pki_cert_pem(X509 *cert, char **pem_out, size_t *len_out)
{
	BIO *bio;
	char *data, *s = NULL;
	long n;
	int rc = PH_ERR_CRYPTO;

	*pem_out = NULL;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto fail;
	if (PEM_write_bio_X509(bio, cert) != 1)
		goto fail;
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0)
		goto fail;
	if ((s = malloc((size_t)n + 1)) == NULL) {
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*pem_out = s;
	if (len_out != NULL)
		*len_out = (size_t)n;
	rc = 0;
fail:
	if (rc == PH_ERR_CRYPTO)
		ossl_fail("cert_pem");
	BIO_free(bio);
	return rc;
}

/* Create path (it must not exist: O_EXCL, and no symlink is followed) with
 * its final mode from the start, write it whole and flush it to disk. A
 * partly written file is removed. */
static int
write_new_file(const char *path, const void *p, size_t n, mode_t mode)
{
	const unsigned char *c = p;
	int fd, rc = PH_ERR_IO;
	ssize_t w;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd < 0) {
		if (errno == EEXIST)
			return PH_ERR_EXISTS;
		log_warn("event=write_failed path=%s error=\"%s\"", path,
		    strerror(errno));
		return PH_ERR_IO;
	}
	while (n > 0) {
		w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		c += w;
		n -= (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail;
	rc = 0;
fail:
	if (rc != 0)
		log_warn("event=write_failed path=%s error=\"%s\"", path,
		    strerror(errno));
	if (close(fd) != 0 && rc == 0)
		rc = PH_ERR_IO;
	if (rc != 0)
		unlink(path);
	return rc;
}

/* Write what a PEM writer put in bio to a new file. */
static int
write_bio(const char *path, BIO *bio, mode_t mode)
{
	char *data;
	long n;

	n = BIO_get_mem_data(bio, &data);
	if (n <= 0)
		return PH_ERR_CRYPTO;
	return write_new_file(path, data, (size_t)n, mode);
}

int
pki_write_key(const char *path, EVP_PKEY *key)
{
	BIO *bio;
	int rc = PH_ERR_CRYPTO;

	/* The secure-memory BIO wipes the PEM text when it is freed. */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL)
		goto fail;
	if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
	    NULL) != 1)
		goto fail;
	rc = write_bio(path, bio, 0600);
fail:
	if (rc == PH_ERR_CRYPTO)
		ossl_fail("write_key");
	BIO_free(bio);
	return rc;
}

int
pki_write_cert(const char *path, X509 *cert)
{
	BIO *bio;
	int rc = PH_ERR_CRYPTO;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto fail;
	if (PEM_write_bio_X509(bio, cert) != 1)
		goto fail;
	rc = write_bio(path, bio, 0644);
fail:
	if (rc == PH_ERR_CRYPTO)
		ossl_fail("write_cert");
	BIO_free(bio);
	return rc;
}

int
pki_load_key(const char *path, EVP_PKEY **out)
{
	BIO *bio;
	int rc = PH_ERR_NOTFOUND;

	*out = NULL;
	if ((bio = BIO_new_file(path, "r")) == NULL)
		goto fail;
	rc = PH_ERR_INVALID;
	if ((*out = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
		goto fail;
	rc = 0;
fail:
	if (rc != 0)
		log_warn("event=load_key_failed path=%s error=%s", path,
		    ph_strerror(rc));
	ERR_clear_error();
	BIO_free(bio);
	return rc;
}

int
pki_load_cert(const char *path, X509 **out)
{
	BIO *bio;
	int rc = PH_ERR_NOTFOUND;

	*out = NULL;
	if ((bio = BIO_new_file(path, "r")) == NULL)
		goto fail;
	rc = PH_ERR_INVALID;
	if ((*out = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		goto fail;
	rc = 0;
fail:
	if (rc != 0)
		log_warn("event=load_cert_failed path=%s error=%s", path,
		    ph_strerror(rc));
	ERR_clear_error();
	BIO_free(bio);
	return rc;
}

static int
data_path(char *out, size_t outsz, const char *dir, const char *file)
{
	int n;

	n = snprintf(out, outsz, "%s/%s", dir, file);
	return n < 0 || (size_t)n >= outsz ? PH_ERR_TOOBIG : 0;
}

int
pki_load_ca(const char *data_dir, EVP_PKEY **key_out, X509 **cert_out)
{
	char path[1024];
	int rc;

	*key_out = NULL;
	*cert_out = NULL;
	if ((rc = data_path(path, sizeof(path), data_dir,
	    PKI_CA_CERT_FILE)) != 0)
		return rc;
	if ((rc = pki_load_cert(path, cert_out)) != 0)
		return rc;
	if ((rc = data_path(path, sizeof(path), data_dir,
	    PKI_CA_KEY_FILE)) != 0 ||
	    (rc = pki_load_key(path, key_out)) != 0)
		goto fail;
	/* A key that does not belong to the certificate would sign
	 * certificates nobody can verify. */
	if (X509_check_private_key(*cert_out, *key_out) != 1) {
		ERR_clear_error();
		log_error("event=ca_mismatch dir=%s", data_dir);
		rc = PH_ERR_INVALID;
		goto fail;
	}
	return 0;
fail:
	EVP_PKEY_free(*key_out);
	X509_free(*cert_out);
	*key_out = NULL;
	*cert_out = NULL;
	return rc;
}

int
pki_load_server_tls(const char *data_dir, char *cert_path,
    size_t cert_size, char *key_path, size_t key_size, char *ca_path,
    size_t ca_size)
{
	const char *paths[3];
	size_t i;

	if (data_path(cert_path, cert_size, data_dir,
	    PKI_SERVER_CERT_FILE) != 0 ||
	    data_path(key_path, key_size, data_dir, PKI_SERVER_KEY_FILE) != 0 ||
	    data_path(ca_path, ca_size, data_dir, PKI_CA_CERT_FILE) != 0)
		return PH_ERR_TOOBIG;
	paths[0] = cert_path;
	paths[1] = key_path;
	paths[2] = ca_path;
	for (i = 0; i < 3; i++) {
		if (access(paths[i], R_OK) != 0) {
			log_error("event=tls_file_missing path=%s error=\"%s\"",
			    paths[i], strerror(errno));
			return PH_ERR_NOTFOUND;
		}
	}
	return 0;
}

int
pki_write_file_excl(const char *path, const void *p, size_t n, mode_t mode)
{
	return write_new_file(path, p, n, mode);
}
