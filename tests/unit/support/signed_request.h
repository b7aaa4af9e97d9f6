/* signed_request: a request as botocore would send it to portholed
 * (POST / on localhost:8443, SigV4 with AWS's documented algorithm), for
 * unit tests that drive api_handle without sockets. */
#ifndef PORTHOLE_TEST_SIGNED_REQUEST_H
#define PORTHOLE_TEST_SIGNED_REQUEST_H

#include "common/http.h"
#include "server/store_sts.h"

struct signed_req {
	struct http_request req;
	struct http_header h[6];
	char auth[512], date[32], target[128], token[STS_TOKEN_SIZE];
	char body[8192];
};

/* A JSON 1.1 request (target "AmazonSSM.StartSession", ...) or, with
 * target NULL, a Query one (form body); token, when given, is sent and
 * signed as X-Amz-Security-Token. Signed now, for region us-east-1. */
void signed_req_make(struct signed_req *s, const char *akid,
    const char *secret, const char *token, const char *service,
    const char *target, const char *body);

#endif
