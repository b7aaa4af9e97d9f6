/* pkgsig: the signature portholed puts on an agent package and the agent
 * checks before installing it. portholed signs with its CA key (the key
 * that signs every certificate, whose ca.pem each agent already trusts
 * from registration) over a text that names the package:
 *   "porthole-agent-package-v1\nplatform=P\nversion=V\nsha256=HEX\n"
 * so a package cannot be offered as another version or platform. A
 * certificate's to-be-signed part is DER and starts with 0x30; this text
 * never does, so the signature cannot pass for a certificate's. */
#ifndef PORTHOLE_PKGSIG_H
#define PORTHOLE_PKGSIG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define PKGSIG_VERSION_MAX 31     /* "N.N.N.N", at most this many chars */
#define PKGSIG_PLATFORM_MAX 31    /* "linux-amd64" */
#define PKGSIG_SHA256_HEX 65      /* 64 lower-case hex digits and NUL */
#define PKGSIG_B64_MAX 512        /* base64 of an ECDSA or RSA-4096 sig */
/* The largest package portholed hosts and an agent downloads. */
#define PKGSIG_PACKAGE_MAX ((size_t)128 << 20)

/* 1..4 dot-separated decimal numbers of 1..9 digits each. */
int pkgsig_valid_version(const char *v);
/* OS-ARCH: lower-case letters and digits, one '-', e.g. linux-amd64. */
int pkgsig_valid_platform(const char *p);
/* 64 lower-case hex digits. */
int pkgsig_valid_sha256(const char *h);
/* <0, 0, >0 as a is older than, the same as or newer than b (missing
 * parts count as 0). Both must be valid versions. */
int pkgsig_version_cmp(const char *a, const char *b);
/* The platform this program was built for ("linux-amd64", ...). */
const char *pkgsig_platform(void);

/* SHA-256 of n bytes, lower-case hex. */
int pkgsig_sha256_hex(const void *p, size_t n,
    char out[PKGSIG_SHA256_HEX]);

/* Sign: the base64 signature into out (NUL-terminated). */
int pkgsig_sign(EVP_PKEY *key, const char *platform, const char *version,
    const char *sha256_hex, char *out, size_t outlen);
/* Verify with pub: 0, PH_ERR_DENIED for a signature that does not match,
 * PH_ERR_INVALID for malformed input. */
int pkgsig_verify(EVP_PKEY *pub, const char *platform, const char *version,
    const char *sha256_hex, const char *sig_b64);

#endif
