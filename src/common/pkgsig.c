#include "common/pkgsig.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define PKGSIG_MSG_MAX 256

int
pkgsig_valid_version(const char *v)
{
	size_t digits = 0, parts = 1, i;

	if (v == NULL || v[0] == '\0' || strlen(v) > PKGSIG_VERSION_MAX)
		return 0;
	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] >= '0' && v[i] <= '9') {
			if (++digits > 9)
				return 0;
		} else if (v[i] == '.' && digits > 0 && parts < 4) {
			digits = 0;
			parts++;
		} else
			return 0;
	}
	return digits > 0;
}

int
pkgsig_valid_platform(const char *p)
{
	size_t i, dashes = 0;

	if (p == NULL || p[0] == '\0' || p[0] == '-' ||
	    strlen(p) > PKGSIG_PLATFORM_MAX)
		return 0;
	for (i = 0; p[i] != '\0'; i++) {
		if (p[i] == '-') {
			if (++dashes > 1 || p[i + 1] == '\0')
				return 0;
		} else if (!((p[i] >= 'a' && p[i] <= 'z') ||
		    (p[i] >= '0' && p[i] <= '9')))
			return 0;
	}
	return dashes == 1;
}

int
pkgsig_valid_sha256(const char *h)
{
	size_t i;

	if (h == NULL || strlen(h) != PKGSIG_SHA256_HEX - 1)
		return 0;
	for (i = 0; h[i] != '\0'; i++)
		if (!((h[i] >= '0' && h[i] <= '9') ||
		    (h[i] >= 'a' && h[i] <= 'f')))
			return 0;
	return 1;
}

int
pkgsig_version_cmp(const char *a, const char *b)
{
	unsigned long x, y;
	char *ea, *eb;
	int i;

	for (i = 0; i < 4; i++) {
		x = *a != '\0' ? strtoul(a, &ea, 10) : 0;
		y = *b != '\0' ? strtoul(b, &eb, 10) : 0;
		if (x != y)
			return x < y ? -1 : 1;
		if (*a != '\0')
			a = *ea == '.' ? ea + 1 : ea;
		if (*b != '\0')
			b = *eb == '.' ? eb + 1 : eb;
	}
	return 0;
}

const char *
pkgsig_platform(void)
{
#if defined(__linux__) && defined(__x86_64__)
	return "linux-amd64";
#elif defined(__linux__) && defined(__aarch64__)
	return "linux-arm64";
#elif defined(__linux__) && defined(__i386__)
	return "linux-386";
#elif defined(__linux__) && defined(__arm__)
	return "linux-arm";
#elif defined(__APPLE__) && defined(__aarch64__)
	return "darwin-arm64";
#else
	return "unknown-unknown";
#endif
}

int
pkgsig_sha256_hex(const void *p, size_t n, char out[PKGSIG_SHA256_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return PH_ERR_CRYPTO;
	for (i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static int
pkgsig_message(const char *platform, const char *version,
    const char *sha256_hex, char *out, size_t outlen)
{
	int n;

	if (!pkgsig_valid_platform(platform) ||
	    !pkgsig_valid_version(version) || !pkgsig_valid_sha256(sha256_hex))
		return -1;
	n = snprintf(out, outlen, "porthole-agent-package-v1\nplatform=%s\n"
	    "version=%s\nsha256=%s\n", platform, version, sha256_hex);
	return n > 0 && (size_t)n < outlen ? n : -1;
}

int
pkgsig_sign(EVP_PKEY *key, const char *platform, const char *version,
    const char *sha256_hex, char *out, size_t outlen)
{
	unsigned char sig[1024];
	char msg[PKGSIG_MSG_MAX];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = NULL;
	int n, rc = PH_ERR_CRYPTO;

	if ((n = pkgsig_message(platform, version, sha256_hex, msg,
	    sizeof(msg))) < 0)
		return PH_ERR_INVALID;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)msg,
	    (size_t)n) != 1)
		goto fail;
	if (outlen < 4 * ((siglen + 2) / 3) + 1 || 4 * ((siglen + 2) / 3) >
	    PKGSIG_B64_MAX) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	EVP_EncodeBlock((unsigned char *)out, sig, (int)siglen);
	rc = 0;
fail:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
pkgsig_verify(EVP_PKEY *pub, const char *platform, const char *version,
    const char *sha256_hex, const char *sig_b64)
{
	unsigned char sig[PKGSIG_B64_MAX];
	char msg[PKGSIG_MSG_MAX];
	EVP_MD_CTX *ctx = NULL;
	size_t blen, pad = 0;
	int n, dn, rc = PH_ERR_INVALID;

	if ((n = pkgsig_message(platform, version, sha256_hex, msg,
	    sizeof(msg))) < 0 || sig_b64 == NULL)
		return PH_ERR_INVALID;
	blen = strlen(sig_b64);
	if (blen == 0 || blen % 4 != 0 || blen > PKGSIG_B64_MAX)
		return PH_ERR_INVALID;
	if (sig_b64[blen - 1] == '=')
		pad = sig_b64[blen - 2] == '=' ? 2 : 1;
	/* EVP_DecodeBlock does not strip the padding: it yields 3 bytes
	 * per 4 characters, the last 1 or 2 of them zero. */
	dn = EVP_DecodeBlock(sig, (const unsigned char *)sig_b64, (int)blen);
	if (dn < 0 || (size_t)dn < pad + 1)
		return PH_ERR_INVALID;
	dn -= (int)pad;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) != 1) {
		rc = PH_ERR_CRYPTO;
		goto fail;
	}
	rc = EVP_DigestVerify(ctx, sig, (size_t)dn, (unsigned char *)msg,
	    (size_t)n) == 1 ? 0 : PH_ERR_DENIED;
fail:
	EVP_MD_CTX_free(ctx);
	return rc;
}
