/* api_query: AWS's Query protocol, which IAM and STS speak: a POST of
 * application/x-www-form-urlencoded pairs (Action, Version, members;
 * lists as Name.member.N, structures as Name.member.N.Key), answered with
 * XML written through libxml2's xmlwriter:
 *   <ActionResponse xmlns="NS"><ActionResult>...</ActionResult>
 *   <ResponseMetadata><RequestId>ID</RequestId></ResponseMetadata>
 *   </ActionResponse>
 * and errors as
 *   <ErrorResponse xmlns="NS"><Error><Type>Sender|Receiver</Type>
 *   <Code>C</Code><Message>M</Message></Error><RequestId>ID</RequestId>
 *   </ErrorResponse>
 * The per-service dispatchers (api_iam.c, api_sts.c) see parsed pairs and
 * write only the inside of ActionResult. */
#ifndef PORTHOLE_API_QUERY_H
#define PORTHOLE_API_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "server/api.h"

struct api_form;  /* the decoded pairs of one request */
struct api_xml;   /* one answer being written */

/* Decode a form body (percent-decoding, '+' as space). PH_ERR_INVALID on a
 * malformed body, PH_ERR_TOOBIG past the limits. */
int api_form_parse(const char *body, size_t len, struct api_form **out);
void api_form_free(struct api_form *f);
/* The value of name, or NULL if absent. */
const char *api_form_get(const struct api_form *f, const char *name);
/* The value of a formatted name, e.g. ("Tags.member.%zu.Key", i). */
const char *api_form_getf(const struct api_form *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The i-th pair in body order: 0 and *name, *value set, or
 * PH_ERR_NOTFOUND past the last. */
int api_form_pair(const struct api_form *f, size_t i, const char **name,
    const char **value);

/* Writing inside ActionResult. Each returns 0 or PH_ERR_NOMEM. */
int api_xml_open(struct api_xml *x, const char *element);
int api_xml_close(struct api_xml *x);
/* <element>text</element>, text escaped by the writer. */
int api_xml_text(struct api_xml *x, const char *element, const char *text);
int api_xml_int(struct api_xml *x, const char *element, int64_t v);
int api_xml_bool(struct api_xml *x, const char *element, int v);
/* ISO 8601 UTC with milliseconds, as IAM writes dates:
 * 2026-12-04T23:09:37.123Z */
int api_xml_time(struct api_xml *x, const char *element, int64_t ms);

/* One action of a Query service. */
typedef int (*api_query_action_fn)(const struct api_call *c,
    const struct api_form *in, struct api_xml *out, struct api_error *err);

/* A Query service's dispatcher: action is the form's Action. On success 0
 * with the result written to out; otherwise a negative code and *err
 * (err->type is the Code; 4xx answer Type Sender, 5xx Receiver). */
typedef int (*api_query_dispatch_fn)(const struct api_call *c,
    const char *action, const struct api_form *in, struct api_xml *out,
    struct api_error *err);

/* A text percent-encoded as IAM sends policy documents (RFC 3986
 * unreserved characters kept); botocore decodes it. */
int api_xml_urlencoded(struct api_xml *x, const char *element,
    const char *text);

/* Limits of one form body. */
#define API_FORM_MAX_BODY (1024 * 1024)
#define API_FORM_MAX_PAIRS 2000

/* One Query request, from body to answer: parse the form, find Action,
 * run dispatch with a writer inside <ActionResult>, and on success 0 with
 * *xml_out (malloc'd, *xml_len bytes) the whole response. Otherwise a
 * negative code and *err (Action unknown: InvalidAction; form malformed:
 * MalformedQueryString-style InvalidParameterValue / InvalidAction).
 * action_out gets the Action for the audit line ("-" if none). */
int api_query_run(const struct api_call *c, const char *ns,
    api_query_dispatch_fn dispatch, const void *body, size_t len,
    char *action_out, size_t action_size, char **xml_out, size_t *xml_len,
    struct api_error *err);
/* The Code a Query service answers for an api_error type
 * ("AccessDeniedException": "AccessDenied"; others as they are). */
const char *api_query_error_code(const char *type);
/* The ErrorResponse for err: AWS JSON types map to Query codes
 * (AccessDeniedException: AccessDenied, 403). *out malloc'd; NULL if out of
 * memory. *status_out: the HTTP status to answer with. */
int api_query_error_xml(const char *ns, const struct api_error *err,
    const char *request_id, char **out, size_t *len, int *status_out);

#endif
