/* awsapi: one signed AWS JSON 1.1 API call (SSM, KMS) with libcurl, and
 * the AWS CLI's way of reporting an error response. Blocking; call it from
 * outside any event loop (or from a worker thread). */
#ifndef PORTHOLE_CLIENT_AWSAPI_H
#define PORTHOLE_CLIENT_AWSAPI_H

#include <stddef.h>
#include <stdint.h>

#include "client/awscfg.h"
#include "common/buf.h"

/* Responses larger than this are refused. */
#define CLIENT_AWSAPI_MAX_RESPONSE ((size_t)4 << 20)
#define CLIENT_AWSAPI_CONNECT_TIMEOUT 10L	/* seconds */
#define CLIENT_AWSAPI_TIMEOUT 30L		/* seconds, whole call */

/* POST body_json to the service's endpoint (client_awscfg_endpoint) with
 * Content-Type application/x-amz-json-1.1 and X-Amz-Target: target (e.g.
 * "AmazonSSM.StartSession", service "ssm"; "TrentService.GenerateDataKey",
 * service "kms"), signed with SigV4 by libcurl. TLS is verified, against
 * cfg->ca_bundle if set.
 *
 * response (initialised by the caller; its max is lowered to
 * CLIENT_AWSAPI_MAX_RESPONSE if larger) receives the body, *http_status
 * the status (0 if no response arrived). Returns 0 on a 2xx answer. On an
 * error answer returns PH_ERR_DENIED (401/403), PH_ERR_INVALID (other 4xx)
 * or PH_ERR_IO (5xx), with errbuf holding the CLI-style message
 * ("An error occurred (Type) when calling the Op operation: message");
 * on a transport failure PH_ERR_IO (or PH_ERR_TOOBIG for an oversized
 * response) with errbuf saying what failed. */
int client_awsapi_call(const struct client_awscfg *cfg, const char *target,
    const char *service, const char *body_json, long *http_status,
    struct buf *response, char *errbuf, size_t errlen);

/* The same with the whole call bounded by timeout_s seconds (connecting by
 * at most CLIENT_AWSAPI_CONNECT_TIMEOUT), for best-effort calls a user
 * waits for (TerminateSession on the way out). */
int client_awsapi_call_timeout(const struct client_awscfg *cfg,
    const char *target, const char *service, const char *body_json,
    long *http_status, struct buf *response, char *errbuf, size_t errlen,
    long timeout_s);

/* The error code and message of an AWS JSON error body, as botocore reads
 * them: code from "__type" (the part after '#', before ':'), else the
 * HTTP status as a number; message from "message" or "Message", else "".
 * Either output may be NULL. Control characters are replaced by '?'. */
void client_awsapi_error_parse(long http_status, const uint8_t *body,
    size_t body_len, char *code, size_t codelen, char *message,
    size_t msglen);

/* "An error occurred (Code) when calling the Operation operation: message"
 * exactly as the AWS CLI prints it. operation may be a whole X-Amz-Target
 * ("AmazonSSM.StartSession"): the part after the last '.' is used. */
void client_awsapi_error_message(const char *operation, long http_status,
    const uint8_t *body, size_t body_len, char *out, size_t outlen);

/* STS AssumeRole at url (the STS endpoint) signed with src's credentials
 * (and its region and CA bundle): on success 0 and dst's access key id,
 * secret and session token set to the role session's (nothing else of
 * dst changes). duration_s 0: the server's default; external_id may be
 * NULL. Errors as client_awsapi_call, the message naming AssumeRole. */
int client_awsapi_assume_role(const struct client_awscfg *src,
    const char *url, const char *role_arn, const char *session_name,
    int duration_s, const char *external_id, struct client_awscfg *dst,
    char *errbuf, size_t errlen);

#endif
