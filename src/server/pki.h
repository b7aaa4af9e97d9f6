/* pki: portholed's certificate authority (OpenSSL 3). One self-signed CA
 * signs the server's TLS certificate and, at registration, each agent's
 * client certificate, whose subject CN is the instance id. Agents keep
 * their private key: they send a CSR, of which only the public key is used.
 * Keys are written 0600 and never overwritten. */
#ifndef PORTHOLE_PKI_H
#define PORTHOLE_PKI_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Files of a data directory. */
#define PKI_CA_CERT_FILE "ca.pem"
#define PKI_CA_KEY_FILE "ca.key"
#define PKI_SERVER_CERT_FILE "server.pem"
#define PKI_SERVER_KEY_FILE "server.key"

#define PKI_CA_DAYS 3650
#define PKI_SERVER_DAYS 825       /* the longest lifetime clients accept */
#define PKI_CLIENT_DAYS 365

/* Bounds on what an agent may send. */
#define PKI_CSR_PEM_MAX ((size_t)16 << 10)
#define PKI_RSA_MIN_BITS 2048
#define PKI_RSA_MAX_BITS 8192

#define PKI_FINGERPRINT_SIZE 65   /* SHA-256, 64 lower-case hex digits, NUL */
#define PKI_SERIAL_SIZE 41        /* 128-bit serial, hex, NUL (room to spare) */
#define PKI_NAMES_MAX 32          /* subject alternative names */

/* A new CA: EC P-256 key, self-signed, CN "porthole CA <random>",
 * PKI_CA_DAYS, basicConstraints CA:TRUE and keyUsage keyCertSign,cRLSign
 * (both critical). */
int pki_ca_create(EVP_PKEY **key_out, X509 **cert_out);

/* A server certificate and its new EC P-256 key, signed by the CA: CN is
 * names[0]; every name is a SAN, IP: if it parses as an IPv4/IPv6 literal,
 * else DNS: (pki_name_valid must accept it); serverAuth; PKI_SERVER_DAYS. */
int pki_server_cert_issue(EVP_PKEY *ca_key, X509 *ca_cert,
    const char *const *names, size_t nnames, EVP_PKEY **key_out,
    X509 **cert_out);

/* 1 if name is an IP literal or a DNS name (labels of letters, digits and
 * '-', a leading "*." allowed, at most 253 characters), else 0. */
int pki_name_valid(const char *name);

/* Parse an agent's PEM CSR (at most PKI_CSR_PEM_MAX bytes, exactly one
 * CERTIFICATE REQUEST block), check its self-signature and its key (EC
 * P-256, or RSA of PKI_RSA_MIN_BITS..PKI_RSA_MAX_BITS). PH_ERR_TOOBIG,
 * PH_ERR_INVALID (malformed, wrong key) or PH_ERR_DENIED (bad signature);
 * a reason for the caller to show is put in err (may be NULL). */
int pki_csr_parse(const char *pem, size_t len, X509_REQ **out, char *err,
    size_t errsz);

/* A client certificate for the CSR's public key: subject CN = instance_id
 * (whatever the CSR asked for), clientAuth, PKI_CLIENT_DAYS, random 128-bit
 * serial. The CSR's self-signature is checked again; nothing else of the
 * CSR (subject, extensions) is used. */
int pki_client_cert_issue(EVP_PKEY *ca_key, X509 *ca_cert, X509_REQ *req,
    const char *instance_id, X509 **cert_out);

/* SHA-256 of the DER certificate, lower-case hex. */
int pki_cert_fingerprint(X509 *cert, char out[PKI_FINGERPRINT_SIZE]);
/* Serial number in upper-case hex (as openssl x509 -serial prints it). */
int pki_cert_serial(X509 *cert, char out[PKI_SERIAL_SIZE]);
/* Subject CN, or PH_ERR_NOTFOUND. */
int pki_cert_cn(X509 *cert, char *out, size_t outsz);

/* The PEM text of a certificate, NUL-terminated, malloc'd. */
int pki_cert_pem(X509 *cert, char **pem_out, size_t *len_out);

/* Write PEM files; the file must not exist yet (PH_ERR_EXISTS). Keys are
 * created 0600 (unencrypted PKCS#8), certificates 0644 (less umask). */
int pki_write_key(const char *path, EVP_PKEY *key);
int pki_write_cert(const char *path, X509 *cert);

/* Any new file written the same way (O_CREAT|O_EXCL|O_NOFOLLOW with its
 * final mode, fsync'd; removed if writing fails). */
int pki_write_file_excl(const char *path, const void *p, size_t n,
    mode_t mode);

int pki_load_key(const char *path, EVP_PKEY **out);
int pki_load_cert(const char *path, X509 **out);
/* The CA of a data directory (ca.pem, ca.key). */
int pki_load_ca(const char *data_dir, EVP_PKEY **key_out, X509 **cert_out);

/* Paths of the server certificate, its key and the CA certificate in a
 * data directory; PH_ERR_NOTFOUND (with the missing path logged) if one of
 * them cannot be read, PH_ERR_TOOBIG if a path does not fit. */
int pki_load_server_tls(const char *data_dir, char *cert_path,
    size_t cert_size, char *key_path, size_t key_size, char *ca_path,
    size_t ca_size);

#endif
