/* x509_verify: does a certificate verify against a CA, for the tests of
 * what portholed issues (pki, init, cert reissue, registration). */
#ifndef PORTHOLE_TEST_X509_VERIFY_H
#define PORTHOLE_TEST_X509_VERIFY_H

#include <openssl/x509.h>

/* X509_verify_cert of cert against ca alone, for a purpose
 * (X509_PURPOSE_SSL_SERVER, ...) and optionally a host name or IP; the
 * OpenSSL error queue is cleared. 1 if it verifies. */
int x509_verifies(X509 *ca, X509 *cert, int purpose, const char *host,
    const char *ip);

#endif
