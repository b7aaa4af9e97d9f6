/* api_json: validation and encoding helpers shared by the JSON services. */
#include "server/api_json.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "server/authz.h"

/* Values shown in messages are cut to this many bytes. */
#define API_SHOW_MAX 64

int
api_error_set(struct api_error *err, int status, const char *type,
    const char *fmt, ...)
{
	va_list ap;

	err->status = status;
	snprintf(err->type, sizeof(err->type), "%s", type);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return status >= 500 ? PH_ERR_IO : PH_ERR_INVALID;
}

int
api_error_internal(struct api_error *err, const char *what, int rc)
{
	log_error("event=api_error op=%s err=\"%s\"", what, ph_strerror(rc));
	return api_error_set(err, 500, "InternalServerError",
	    "An internal error occurred.");
}

/* A caller-supplied value for a log line: no spaces or control
 * characters (they would forge fields or lines), cut to size. */
static void
api_log_value(const char *in, char *out, size_t size)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < size; i++)
		out[i] = (unsigned char)in[i] <= ' ' || in[i] == 0x7f ?
		    '?' : in[i];
	out[i] = '\0';
}

int
api_authorize(const struct api_call *c, const char *action, const char *arn,
    struct api_error *err)
{
	char shown[320];
	const char *who;
	int d, src;

	d = authz_decide_src(c->srv, c->principal, action, arn, c->authz_ctx,
	    c->nauthz_ctx, &src);
	if (d == POLICY_ALLOW)
		return 0;
	who = c->principal != NULL && c->principal->arn[0] != '\0' ?
	    c->principal->arn : "anonymous";
	api_log_value(arn, shown, sizeof(shown));
	log_info("event=authz_deny principal=%s action=%s resource=%s "
	    "deny=%s%s", who, action, shown,
	    d == POLICY_DENY_EXPLICIT ? "explicit" : "implicit",
	    src == AUTHZ_SRC_SESSION ? " by=session_policy" : "");
	/* AWS's wording, nothing more: which policy denied stays here. */
	if (src == AUTHZ_SRC_SESSION && d == POLICY_DENY_EXPLICIT)
		return api_error_set(err, 400, "AccessDeniedException",
		    "User: %s is not authorized to perform: %s on resource: "
		    "%s with an explicit deny in a session policy", who,
		    action, arn);
	if (src == AUTHZ_SRC_SESSION)
		return api_error_set(err, 400, "AccessDeniedException",
		    "User: %s is not authorized to perform: %s on resource: "
		    "%s because no session policy allows the %s action", who,
		    action, arn, action);
	if (d == POLICY_DENY_EXPLICIT)
		return api_error_set(err, 400, "AccessDeniedException",
		    "User: %s is not authorized to perform: %s on resource: "
		    "%s with an explicit deny in an identity-based policy",
		    who, action, arn);
	return api_error_set(err, 400, "AccessDeniedException",
	    "User: %s is not authorized to perform: %s on resource: %s "
	    "because no identity-based policy allows the %s action", who,
	    action, arn, action);
}

const struct api_json_action *
api_json_action_find(const struct api_json_action *tab, size_t n,
    const char *action, const json_t *in, struct api_error *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(action, tab[i].name) == 0)
			break;
	if (i == n) {
		api_error_set(err, 400, "UnknownOperationException",
		    "Operation %s is not supported.", action);
		return NULL;
	}
	if (!json_is_object(in)) {
		api_error_set(err, 400, "SerializationException",
		    "The request body must be a JSON object.");
		return NULL;
	}
	return &tab[i];
}

void
api_v_init(struct api_v *v)
{
	memset(v, 0, sizeof(*v));
}

/* Copy at most API_SHOW_MAX bytes of s, not splitting a UTF-8 sequence. */
static void
api_show(const char *s, char *out, size_t size)
{
	size_t n = strlen(s);

	if (n > API_SHOW_MAX) {
		n = API_SHOW_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		snprintf(out, size, "%.*s...", (int)n, s);
	} else {
		snprintf(out, size, "%s", s);
	}
}

void
api_v_fail(struct api_v *v, const char *path, const char *shown,
    const char *constraint)
{
	char val[API_SHOW_MAX + 8], q[API_SHOW_MAX + 16];
	int n;

	v->nerr++;
	if (v->len >= sizeof(v->msg) - 1)
		return;
	if (shown != NULL) {
		api_show(shown, val, sizeof(val));
		snprintf(q, sizeof(q), "'%s'", val);
	} else {
		snprintf(q, sizeof(q), "null");
	}
	n = snprintf(v->msg + v->len, sizeof(v->msg) - v->len,
	    "%sValue %s at '%s' failed to satisfy constraint: %s",
	    v->len ? "; " : "", q, path, constraint);
	if (n > 0)
		v->len += (size_t)n;
	if (v->len >= sizeof(v->msg))
		v->len = sizeof(v->msg) - 1;
}

void
api_v_type(struct api_v *v, const char *path, const char *want)
{
	if (!v->serial)
		snprintf(v->serial_msg, sizeof(v->serial_msg),
		    "Unexpected value type at '%s': expected %s", path, want);
	v->serial = 1;
}

int
api_v_finish(struct api_v *v, struct api_error *err)
{
	if (v->serial)
		return api_error_set(err, 400, "SerializationException", "%s",
		    v->serial_msg);
	if (v->nerr == 0)
		return 0;
	return api_error_set(err, 400, "ValidationException",
	    "%d validation error%s detected: %s", v->nerr,
	    v->nerr == 1 ? "" : "s", v->msg);
}

size_t
api_utf8_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

int
api_v_str_value(struct api_v *v, json_t *val, const char *path,
    const struct api_str *d, const char **out)
{
	char c[256];
	const char *s;
	size_t len, i;

	*out = NULL;
	if (val == NULL || json_is_null(val)) {
		if (d->required)
			api_v_fail(v, path, NULL, "Member must not be null");
		return d->required ? -1 : 0;
	}
	if (!json_is_string(val)) {
		api_v_type(v, path, "a string");
		return -1;
	}
	s = json_string_value(val);
	/* Embedded NULs would make the C string differ from the JSON one. */
	if (strlen(s) != json_string_length(val)) {
		api_v_fail(v, path, s, "Member must not contain NUL");
		return -1;
	}
	len = api_utf8_len(s);
	if (len < d->min) {
		snprintf(c, sizeof(c), "Member must have length greater than "
		    "or equal to %zu", d->min);
		api_v_fail(v, path, s, c);
		return -1;
	}
	if (d->max != 0 && len > d->max) {
		snprintf(c, sizeof(c), "Member must have length less than or "
		    "equal to %zu", d->max);
		api_v_fail(v, path, s, c);
		return -1;
	}
	if (d->enums != NULL) {
		size_t off = 0;
		int n;

		for (i = 0; d->enums[i] != NULL; i++)
			if (strcmp(s, d->enums[i]) == 0)
				break;
		if (d->enums[i] == NULL) {
			n = snprintf(c, sizeof(c), "Member must satisfy enum "
			    "value set: [");
			off = n > 0 ? (size_t)n : 0;
			for (i = 0; d->enums[i] != NULL && off < sizeof(c);
			    i++) {
				n = snprintf(c + off, sizeof(c) - off, "%s%s",
				    i ? ", " : "", d->enums[i]);
				off += n > 0 ? (size_t)n : 0;
			}
			if (off < sizeof(c))
				snprintf(c + off, sizeof(c) - off, "]");
			api_v_fail(v, path, s, c);
			return -1;
		}
	}
	if (d->pattern != NULL && !d->pattern(s)) {
		snprintf(c, sizeof(c), "Member must satisfy regular "
		    "expression pattern: %s", d->pattern_text ?
		    d->pattern_text : "?");
		api_v_fail(v, path, s, c);
		return -1;
	}
	*out = s;
	return 1;
}

const char *
api_v_str(struct api_v *v, json_t *obj, const struct api_str *d)
{
	const char *s;

	api_v_str_value(v, json_object_get(obj, d->member), d->path, d, &s);
	return s;
}

int
api_v_int(struct api_v *v, json_t *obj, const char *member,
    const char *path, int required, int64_t min, int64_t max, int64_t dflt,
    int64_t *out)
{
	json_t *val = json_object_get(obj, member);
	char c[128], shown[32];
	json_int_t n;

	*out = dflt;
	if (val == NULL || json_is_null(val)) {
		if (required)
			api_v_fail(v, path, NULL, "Member must not be null");
		return required ? -1 : 0;
	}
	if (!json_is_integer(val)) {
		api_v_type(v, path, "an integer");
		return -1;
	}
	n = json_integer_value(val);
	snprintf(shown, sizeof(shown), "%" JSON_INTEGER_FORMAT, n);
	if (n < min) {
		snprintf(c, sizeof(c), "Member must have value greater than "
		    "or equal to %" PRId64, min);
		api_v_fail(v, path, shown, c);
		return -1;
	}
	if (n > max) {
		snprintf(c, sizeof(c), "Member must have value less than or "
		    "equal to %" PRId64, max);
		api_v_fail(v, path, shown, c);
		return -1;
	}
	*out = n;
	return 1;
}

json_t *
api_v_list(struct api_v *v, json_t *obj, const char *member,
    const char *path, int required, size_t min, size_t max)
{
	json_t *val = json_object_get(obj, member);
	char c[128];
	size_t n;

	if (val == NULL || json_is_null(val)) {
		if (required)
			api_v_fail(v, path, NULL, "Member must not be null");
		return NULL;
	}
	if (!json_is_array(val)) {
		api_v_type(v, path, "a list");
		return NULL;
	}
	n = json_array_size(val);
	if (n < min) {
		snprintf(c, sizeof(c), "Member must have length greater than "
		    "or equal to %zu", min);
		api_v_fail(v, path, "[...]", c);
		return NULL;
	}
	if (max != 0 && n > max) {
		snprintf(c, sizeof(c), "Member must have length less than or "
		    "equal to %zu", max);
		api_v_fail(v, path, "[...]", c);
		return NULL;
	}
	return val;
}

json_t *
api_v_object(struct api_v *v, json_t *obj, const char *member,
    const char *path, int required)
{
	json_t *val = json_object_get(obj, member);

	if (val == NULL || json_is_null(val)) {
		if (required)
			api_v_fail(v, path, NULL, "Member must not be null");
		return NULL;
	}
	if (!json_is_object(val)) {
		api_v_type(v, path, "a structure");
		return NULL;
	}
	return val;
}

int
api_v_time(struct api_v *v, json_t *obj, const char *member,
    const char *path, int required, int64_t *ms_out)
{
	json_t *val = json_object_get(obj, member);
	double d;

	*ms_out = 0;
	if (val == NULL || json_is_null(val)) {
		if (required)
			api_v_fail(v, path, NULL, "Member must not be null");
		return required ? -1 : 0;
	}
	if (json_is_number(val)) {
		d = json_number_value(val);
		/* Years 0 to 9999 are all a timestamp may name. */
		if (!isfinite(d) || d < 0 || d > 253402300799.0) {
			api_v_type(v, path, "a timestamp");
			return -1;
		}
		*ms_out = (int64_t)llround(d * 1000.0);
		return 1;
	}
	if (json_is_string(val) &&
	    api_parse_time(json_string_value(val), ms_out) == 0)
		return 1;
	api_v_type(v, path, "a timestamp");
	return -1;
}

/* Exactly n decimal digits. */
static int
api_digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int
api_parse_time(const char *s, int64_t *ms_out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, oh, om, sign, scale;
	const char *p = s;
	struct tm tm;
	int64_t t;
	char *end;

	if (s == NULL || *s == '\0' || strlen(s) > 64)
		return PH_ERR_INVALID;
	/* Epoch seconds as text ("1724889600" or "1724889600.5"). */
	if (strchr(s, '-') == NULL) {
		double v = strtod(s, &end);

		if (*end != '\0' || !isfinite(v) || v < 0 || v > 253402300799.0)
			return PH_ERR_INVALID;
		*ms_out = (int64_t)llround(v * 1000.0);
		return 0;
	}
	if (api_digits(&p, 4, &y) || *p++ != '-' || api_digits(&p, 2, &mo) ||
	    *p++ != '-' || api_digits(&p, 2, &d))
		return PH_ERR_INVALID;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (api_digits(&p, 2, &h) || *p++ != ':' ||
		    api_digits(&p, 2, &mi))
			return PH_ERR_INVALID;
		if (*p == ':') {
			p++;
			if (api_digits(&p, 2, &sec))
				return PH_ERR_INVALID;
			if (*p == '.') {
				p++;
				if (!isdigit((unsigned char)*p))
					return PH_ERR_INVALID;
				for (scale = 100; isdigit((unsigned char)*p);
				    p++, scale /= 10)
					ms += (*p - '0') * scale;
			}
		}
	}
	oh = om = 0;
	sign = 1;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (api_digits(&p, 2, &oh))
			return PH_ERR_INVALID;
		if (*p == ':')
			p++;
		if (api_digits(&p, 2, &om))
			return PH_ERR_INVALID;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60 || oh > 23 || om > 59)
		return PH_ERR_INVALID;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm);
	if (t < 0)
		return PH_ERR_INVALID;
	t -= sign * (oh * 3600 + om * 60);
	*ms_out = t * 1000 + ms;
	return 0;
}

json_t *
api_json_time(int64_t ms)
{
	return json_real((double)ms / 1000.0);
}

/* "ph1." and the offset in hex: opaque to clients, checked on return. */
void
api_token_encode(int offset, char out[32])
{
	snprintf(out, 32, "ph1.%08x", (unsigned)offset);
}

int
api_token_decode(const char *token, int *offset)
{
	unsigned long v;
	char *end;

	if (token == NULL || strncmp(token, "ph1.", 4) != 0 ||
	    strlen(token) != 12 || !isxdigit((unsigned char)token[4]))
		return PH_ERR_INVALID;
	v = strtoul(token + 4, &end, 16);
	/* Bounded so offset + page size never overflows an int. */
	if (*end != '\0' || v > 0x3fffffffUL)
		return PH_ERR_INVALID;
	*offset = (int)v;
	return 0;
}

int
api_pat_tag(const char *s)
{
	const unsigned char *p;

	/* Non-ASCII characters stand in for \p{L}, \p{Z} and \p{N}. */
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x80 && !isalnum(*p) &&
		    strchr(" _.:/=+-@", *p) == NULL)
			return 0;
	return 1;
}

int
api_pat_uuid(const char *s)
{
	size_t i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isdigit((unsigned char)s[i]) &&
		    (s[i] < 'a' || s[i] > 'f')) {
			return 0;
		}
	}
	return 1;
}

int
api_pat_managed_instance(const char *s)
{
	size_t i;

	/* botocore also admits EKS hybrid node ids; none exist here, so a
	 * loose check suffices and lookups answer "not found". */
	if (strncmp(s, "eks_c:", 6) == 0)
		return strlen(s) >= 20 && strlen(s) <= 124;
	if (strncmp(s, "mi-", 3) != 0 || strlen(s) != 20)
		return 0;
	for (i = 3; i < 20; i++)
		if (!isdigit((unsigned char)s[i]) && (s[i] < 'a' || s[i] > 'f'))
			return 0;
	return 1;
}

int
api_json_error_body(struct buf *body, int *status, int http_status,
    const char *type, const char *msg)
{
	json_t *o;
	char *s;
	int rc;

	*status = http_status;
	buf_reset(body);
	o = json_pack("{s:s, s:s}", "__type", type, "message", msg);
	if (o == NULL)
		return PH_ERR_NOMEM;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		return PH_ERR_NOMEM;
	rc = buf_append_str(body, s);
	free(s);
	return rc;
}
