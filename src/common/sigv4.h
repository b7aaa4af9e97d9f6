/* sigv4: verification of AWS Signature Version 4 header-signed requests,
 * as AWS documents it. Pure: no I/O; the secret comes from a lookup
 * function and the clock from the caller. */
#ifndef PORTHOLE_SIGV4_H
#define PORTHOLE_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/http.h"

/* Requests signed more than this far from now are refused. */
#define SIGV4_MAX_SKEW_SECONDS 300

struct sigv4_request {
	const char *method;
	const char *path;   /* raw path as sent, not decoded */
	const char *query;  /* raw query string, "" if none */
	const struct http_header *headers;
	size_t nheaders;
	const uint8_t *body;
	size_t body_len;
};

/* What a verified request was signed for. */
struct sigv4_identity {
	char access_key_id[129];
	char region[64];
	char service[64];
	char date[9];       /* YYYYMMDD of the scope */
};

/* Find the secret for an access key id. Return 0 and fill secret (NUL
 * terminated) if the key exists and is active; PH_ERR_NOTFOUND if unknown;
 * PH_ERR_DENIED if disabled. */
typedef int (*sigv4_secret_fn)(void *arg, const char *access_key_id,
    char *secret, size_t secret_size);

/* The AWS error a failed verification maps to. */
struct sigv4_error {
	int http_status;        /* 400 or 403 */
	const char *type;       /* e.g. "InvalidSignatureException" */
	char message[256];
};

/* 0 and *id on success; on failure a negative code and *err filled in:
 * MissingAuthenticationTokenException (no Authorization header),
 * IncompleteSignatureException (malformed header, missing X-Amz-Date or
 * signed Host), UnrecognizedClientException (unknown or disabled key),
 * InvalidSignatureException (mismatch, payload hash mismatch, expired or
 * future X-Amz-Date). Signature comparison is constant-time. */
int sigv4_verify(const struct sigv4_request *req, time_t now,
    sigv4_secret_fn lookup, void *lookup_arg, struct sigv4_identity *id,
    struct sigv4_error *err);

#endif
