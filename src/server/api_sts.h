/* api_sts: AWS STS over the Query protocol (GetCallerIdentity,
 * AssumeRole), and the authentication of the temporary credentials that
 * AssumeRole issues (access key ids beginning with "ASIA", signed
 * requests carrying X-Amz-Security-Token). */
#ifndef PORTHOLE_API_STS_H
#define PORTHOLE_API_STS_H

#include <stddef.h>
#include <stdint.h>

#include "server/api.h"
#include "server/api_query.h"

struct principal;

#define API_STS_NAMESPACE "https://sts.amazonaws.com/doc/2011-06-15/"

int api_sts_dispatch(const struct api_call *c, const char *action,
    const struct api_form *in, struct api_xml *out, struct api_error *err);

/* Is akid one of STS's temporary key ids? */
int api_sts_temporary(const char *akid);
/* The SigV4 secret of temporary credentials: 0, or PH_ERR_NOTFOUND. */
int api_sts_secret(struct server *srv, const char *akid, char *secret,
    size_t size);
/* Once the signature holds: token (the X-Amz-Security-Token header, NULL
 * if absent) must be the one issued with akid, the credentials must not
 * have expired and their role must still exist (the same role, not a new
 * one of that name). 0 and *p the role session; PH_ERR_DENIED (invalid
 * token) or PH_ERR_EXPIRED; another code on a store failure. */
int api_sts_principal(struct server *srv, const char *akid,
    const char *token, int64_t now_ms, struct principal *p);

/* The answers api.c gives for a refused token, by protocol: JSON services
 * (ssm, kms) and Query services (iam, sts) word them differently. */
#define API_STS_INVALID_TYPE "UnrecognizedClientException"
#define API_STS_INVALID_CODE "InvalidClientTokenId"
#define API_STS_INVALID_MESSAGE "The security token included in the " \
	"request is invalid."
#define API_STS_EXPIRED_TYPE "ExpiredTokenException"
#define API_STS_EXPIRED_CODE "ExpiredToken"
#define API_STS_EXPIRED_MESSAGE "The security token included in the " \
	"request is expired"

#endif
