/* api: portholed's AWS-compatible HTTPS API. api_handle authenticates a
 * request (SigV4 against the store's IAM access keys), routes it by the
 * signing scope's service and X-Amz-Target, and answers with the AWS JSON
 * 1.1 protocol. The per-service dispatchers (api_ssm.h, ...) work on parsed
 * JSON only, so they are testable without HTTP or SigV4. */
#ifndef PORTHOLE_API_H
#define PORTHOLE_API_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/http.h"
#include "server/server.h"

struct principal;
struct policy_ctx;

/* An AWS error: HTTP status, __type and message. */
struct api_error {
	int status;
	char type[64];
	char message[1024];  /* fits two ARNs of a denial */
};

/* One authenticated call. */
struct api_call {
	struct server *srv;
	const struct principal *principal;
	const char *host;        /* Host header as the client sent it */
	const char *request_id;  /* x-amzn-RequestId of the response */
	int64_t now_ms;          /* wall clock of the request */
	/* Condition keys an action adds to api_authorize's request context
	 * (struct policy_ctx, server/policy.h), or NULL. */
	const struct policy_ctx *authz_ctx;
	size_t nauthz_ctx;
};

/* A JSON service's dispatcher: action is the part of X-Amz-Target after
 * the prefix ("StartSession"), in the request body (a JSON object). On
 * success 0 and *out a new JSON object; otherwise a negative code and *err
 * filled in. */
typedef int (*api_json_dispatch_fn)(const struct api_call *call,
    const char *action, json_t *in, json_t **out, struct api_error *err);

void api_handle(struct server *srv, struct http_request *req);

#endif
