/* api_json: what every AWS JSON 1.1 action needs: errors, request member
 * validation against botocore's constraints (collected into one
 * ValidationException message worded as AWS words it), timestamps and
 * pagination tokens. */
#ifndef PORTHOLE_API_JSON_H
#define PORTHOLE_API_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "server/api.h"

/* Fill err; returns the negative code to hand back (PH_ERR_INVALID for
 * 4xx, PH_ERR_IO for 5xx). */
int api_error_set(struct api_error *err, int status, const char *type,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The body of an AWS JSON error, {"__type": type, "message": msg}, into
 * body (reset first), and *status = http_status: the answer of the
 * agent-facing /v1 routes (registration, records, command output, agent
 * packages). 0, or PH_ERR_NOMEM. */
struct buf;
int api_json_error_body(struct buf *body, int *status, int http_status,
    const char *type, const char *msg);
/* A failure of ours, not the caller's: logged with what failed, answered
 * as AWS's InternalServerError without details. */
int api_error_internal(struct api_error *err, const char *what, int rc);
/* Ask the policy decision point (authz_check); a denial is AWS's
 * AccessDeniedException naming the principal, the action and the
 * resource. 0 if allowed. */
int api_authorize(const struct api_call *c, const char *action,
    const char *arn, struct api_error *err);

/* One action of a JSON service: fn fills out (a new, empty object). */
struct api_json_action {
	const char *name;
	int (*fn)(const struct api_call *c, json_t *in, json_t *out,
	    struct api_error *err);
};

/* The entry of tab named action, if in is a JSON object; otherwise NULL
 * and err set as AWS answers (UnknownOperationException,
 * SerializationException). */
const struct api_json_action *api_json_action_find(
    const struct api_json_action *tab, size_t n, const char *action,
    const json_t *in, struct api_error *err);

/* One validation pass over a request. A member of the wrong JSON type is a
 * SerializationException (as AWS answers); constraint violations add up to
 * "N validation errors detected: ...". */
struct api_v {
	int nerr;
	int serial;                /* a type mismatch was seen */
	char serial_msg[256];
	char msg[1024];
	size_t len;
};

void api_v_init(struct api_v *v);
/* Record a violation: "Value <shown> at '<path>' failed to satisfy
 * constraint: <constraint>". shown NULL prints "null". */
void api_v_fail(struct api_v *v, const char *path, const char *shown,
    const char *constraint);
/* Record a type mismatch. */
void api_v_type(struct api_v *v, const char *path, const char *want);
/* 0 if nothing was recorded; else err is set and PH_ERR_INVALID returned. */
int api_v_finish(struct api_v *v, struct api_error *err);

/* Character-class checks for botocore patterns. */
typedef int (*api_pattern_fn)(const char *s);

struct api_str {
	const char *member;        /* JSON member name, e.g. "IamRole" */
	const char *path;          /* name in messages, e.g. "iamRole" */
	int required;
	size_t min, max;           /* in characters; max 0: unbounded */
	api_pattern_fn pattern;    /* NULL: none */
	const char *pattern_text;  /* the regular expression, for messages */
	const char *const *enums;  /* NULL-terminated, or NULL */
};

/* The string member of obj described by d, or NULL if absent or invalid
 * (the violation is recorded). */
const char *api_v_str(struct api_v *v, json_t *obj, const struct api_str *d);
/* Validate a string value already taken out of a list (path given). */
int api_v_str_value(struct api_v *v, json_t *val, const char *path,
    const struct api_str *d, const char **out);
/* Integer member in [min, max]; *out = dflt when absent. 1 if present,
 * 0 if absent, -1 if invalid. */
int api_v_int(struct api_v *v, json_t *obj, const char *member,
    const char *path, int required, int64_t min, int64_t max, int64_t dflt,
    int64_t *out);
/* Array member with min..max entries (max 0: unbounded); NULL if absent
 * or invalid. */
json_t *api_v_list(struct api_v *v, json_t *obj, const char *member,
    const char *path, int required, size_t min, size_t max);
/* Object (map or structure) member; NULL if absent or invalid. */
json_t *api_v_object(struct api_v *v, json_t *obj, const char *member,
    const char *path, int required);
/* Timestamp member: epoch seconds (number) or ISO 8601 text. 1 if
 * present, 0 if absent, -1 if invalid. */
int api_v_time(struct api_v *v, json_t *obj, const char *member,
    const char *path, int required, int64_t *ms_out);

/* ISO 8601 ("2024-08-29", "2024-08-29T00:00:00Z", "...T00:00:00.5+02:00")
 * or epoch seconds in text to milliseconds. 0 or PH_ERR_INVALID. */
int api_parse_time(const char *s, int64_t *ms_out);
/* Epoch seconds as a JSON number (AWS JSON 1.1 timestamps). */
json_t *api_json_time(int64_t ms);

/* Length in characters (UTF-8 code points). */
size_t api_utf8_len(const char *s);

/* Opaque NextToken for an offset into a result list. */
void api_token_encode(int offset, char out[32]);
/* 0 and *offset, or PH_ERR_INVALID. */
int api_token_decode(const char *token, int *offset);

/* Patterns used by several services. */
int api_pat_tag(const char *s);            /* ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$ */
int api_pat_uuid(const char *s);           /* lower-case UUID */
int api_pat_managed_instance(const char *s); /* ^mi-[0-9a-f]{17}$ */

#define API_PAT_TAG "^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$"
#define API_PAT_UUID \
	"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#define API_PAT_MANAGED_INSTANCE \
	"(^mi-[0-9a-f]{17}$)|(^eks_c:[0-9A-Za-z][A-Za-z0-9\\-_]{0,99}_\\w{17}$)"

#endif
