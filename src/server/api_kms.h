/* api_kms: the KMS actions (X-Amz-Target TrentService.<Action>), request
 * and response shapes as botocore's kms 2014-11-01 model, on the key store
 * of kms.h. Who may use a key is decided by its key policy (kms_policy.h),
 * with authz_check standing for the account's IAM policies. */
#ifndef PORTHOLE_API_KMS_H
#define PORTHOLE_API_KMS_H

#include <jansson.h>

#include "server/api.h"

/* Run one action on a parsed request object. 0 and *out (a new object) on
 * success; otherwise a negative code with *err set. call->srv->kms must be
 * open (KMSInternalException otherwise). */
int api_kms_dispatch(const struct api_call *call, const char *action,
    json_t *in, json_t **out, struct api_error *err);

/* 1 if a request that carries no SigV4 signature may be made as a managed
 * instance (mutual TLS) for this KMS action: Decrypt and DescribeKey. */
int api_kms_instance_action(const char *action);

#endif
