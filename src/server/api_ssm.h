/* api_ssm: the Systems Manager actions (X-Amz-Target AmazonSSM.<Action>),
 * request and response shapes as botocore's ssm 2014-11-06 model. */
#ifndef PORTHOLE_API_SSM_H
#define PORTHOLE_API_SSM_H

#include <jansson.h>

#include "server/api.h"

/* Run one action on a parsed request object. 0 and *out (a new object) on
 * success; otherwise a negative code with *err set (UnknownOperation-
 * Exception for an action this service does not have). Every action asks
 * authz_check before it touches anything. */
int api_ssm_dispatch(const struct api_call *call, const char *action,
    json_t *in, json_t **out, struct api_error *err);

/* The document as the agent receives it: {{ name }} references replaced by
 * the request's Parameters (name -> list of strings) or the parameters'
 * defaults, checked against allowedValues/allowedPattern. *doc_out and
 * *params_out (name -> string) are new references. Exposed for tests. */
int api_ssm_resolve_document(const char *doc_name, json_t *doc,
    json_t *params, json_t **doc_out, json_t **params_out,
    struct api_error *err);

#endif
