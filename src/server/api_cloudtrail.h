/* api_cloudtrail: CloudTrail's LookupEvents (AWS JSON 1.1, signing name
 * "cloudtrail", X-Amz-Target
 * com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents)
 * over portholed's audit trail (audit.h), so `aws cloudtrail
 * lookup-events` works unchanged. Shapes as botocore's cloudtrail
 * 2013-11-01 model; authorised as cloudtrail:LookupEvents on "*". */
#ifndef PORTHOLE_API_CLOUDTRAIL_H
#define PORTHOLE_API_CLOUDTRAIL_H

#include <jansson.h>

#include "server/api.h"

#define API_CLOUDTRAIL_TARGET_PREFIX \
	"com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."

/* Work one LookupEvents call may do before it answers with what it found
 * and a NextToken: bytes of the trail read, lines looked at. */
#define API_CLOUDTRAIL_SCAN_BYTES ((size_t)4 << 20)
#define API_CLOUDTRAIL_SCAN_LINES ((size_t)10000)

/* 0 and *out (a new object), or a negative code with *err set.
 * call->srv->audit must be open (a 500 otherwise). */
int api_cloudtrail_dispatch(const struct api_call *call, const char *action,
    json_t *in, json_t **out, struct api_error *err);

#endif
