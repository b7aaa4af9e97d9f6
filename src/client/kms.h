/* kms: the client's part of KMS session encryption (spec 6.1): one
 * GenerateDataKey call with the user's own credentials for the 64-byte
 * session key, and the pure encoding of its request and response so both
 * are unit-tested against hostile input. */
#ifndef PORTHOLE_CLIENT_KMS_H
#define PORTHOLE_CLIENT_KMS_H

#include <stddef.h>
#include <stdint.h>

#include "client/awscfg.h"
#include "common/buf.h"

#define CLIENT_KMS_DATA_KEY_LEN 64          /* spec 6.1 NumberOfBytes */
#define CLIENT_KMS_MAX_KEY_ID 2048          /* botocore's KeyIdType */
#define CLIENT_KMS_MAX_CHALLENGE 1024       /* base64 text */
#define CLIENT_KMS_MAX_BLOB 8192            /* base64 CiphertextBlob */

struct client_kms_request {
	const char *key_id;      /* KMSKeyId from the agent, verbatim */
	const char *session_id;
	const char *target;      /* StartSession's Target (spec 11.13) */
	const char *challenge;   /* the agent's Challenge; NULL/"": none */
};

/* The GenerateDataKey body: KeyId, NumberOfBytes 64 and EncryptionContext
 * {aws:ssm:SessionId, aws:ssm:TargetId[, aws:ssm:RandomChallenge]}. */
int client_kms_request_body(const struct client_kms_request *rq,
    struct buf *out);

/* Read a GenerateDataKey response: Plaintext must decode to exactly 64
 * bytes (written to key), CiphertextBlob must be base64 of at most
 * CLIENT_KMS_MAX_BLOB characters (malloc'd copy in *blob_b64). On failure
 * key is wiped, *blob_b64 is NULL and err says what was wrong. */
int client_kms_parse_response(const uint8_t *p, size_t n,
    uint8_t key[CLIENT_KMS_DATA_KEY_LEN], char **blob_b64, char *err,
    size_t errlen);

/* kms:GenerateDataKey against client_awscfg_endpoint(cfg, "kms"). Blocking
 * (call it off the event loop). On failure err holds the AWS CLI-style
 * message ("An error occurred (AccessDeniedException) when calling the
 * GenerateDataKey operation: ..."). The response body, which carries the
 * plaintext key, is wiped before it is freed. */
int client_kms_generate_data_key(const struct client_awscfg *cfg,
    const struct client_kms_request *rq,
    uint8_t key[CLIENT_KMS_DATA_KEY_LEN], char **blob_b64, char *err,
    size_t errlen);

/* Strict standard base64 (RFC 4648 4, padded, no whitespace). decode
 * writes at most max bytes; PH_ERR_INVALID for bad text, PH_ERR_TOOBIG
 * when the result would not fit. */
int client_b64_decode(const char *s, size_t n, uint8_t *out, size_t max,
    size_t *outlen);
int client_b64_encode(const uint8_t *p, size_t n, struct buf *out);
/* 1 when s[0..n) is well-formed base64 (as client_b64_decode accepts). */
int client_b64_valid(const char *s, size_t n);

#endif
