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

#endif
