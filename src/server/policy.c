/* policy: parsing and evaluation of IAM JSON policies: identity
 * policies, and resource and role trust policies with Principal (IAM JSON
 * policy reference: grammar, elements, policy variables, condition
 * operators, evaluation logic). A parsed policy keeps its checked JSON
 * tree; evaluation walks it. */
#include "server/policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/err.h"

#define POLICY_STATEMENTS_MAX 256
#define POLICY_VALUES_MAX 1024
#define POLICY_GLOB_STEPS ((size_t)1 << 22)

struct policy {
	json_t *doc;
	json_t *stmts;       /* array of statements (a single one wrapped) */
	int vars;            /* Version 2012-10-17: ${...} is a variable */
	unsigned flags;      /* POLICY_F_* it was parsed with */
};

enum op_type { T_STR, T_NUM, T_DATE, T_BOOL, T_BIN, T_IP, T_ARN, T_NULL };
enum op_cmp { C_EQ, C_EQI, C_LIKE, C_LT, C_LE, C_GT, C_GE };

struct op_def {
	const char *name;
	enum op_type type;
	enum op_cmp cmp;
	int neg;             /* negated: true when no policy value matches */
};

static const struct op_def ops[] = {
	{ "StringEquals", T_STR, C_EQ, 0 },
	{ "StringNotEquals", T_STR, C_EQ, 1 },
	{ "StringEqualsIgnoreCase", T_STR, C_EQI, 0 },
	{ "StringNotEqualsIgnoreCase", T_STR, C_EQI, 1 },
	{ "StringLike", T_STR, C_LIKE, 0 },
	{ "StringNotLike", T_STR, C_LIKE, 1 },
	{ "NumericEquals", T_NUM, C_EQ, 0 },
	{ "NumericNotEquals", T_NUM, C_EQ, 1 },
	{ "NumericLessThan", T_NUM, C_LT, 0 },
	{ "NumericLessThanEquals", T_NUM, C_LE, 0 },
	{ "NumericGreaterThan", T_NUM, C_GT, 0 },
	{ "NumericGreaterThanEquals", T_NUM, C_GE, 0 },
	{ "DateEquals", T_DATE, C_EQ, 0 },
	{ "DateNotEquals", T_DATE, C_EQ, 1 },
	{ "DateLessThan", T_DATE, C_LT, 0 },
	{ "DateLessThanEquals", T_DATE, C_LE, 0 },
	{ "DateGreaterThan", T_DATE, C_GT, 0 },
	{ "DateGreaterThanEquals", T_DATE, C_GE, 0 },
	{ "Bool", T_BOOL, C_EQ, 0 },
	/* Base64 text compared as is: no variables, no wildcards. */
	{ "BinaryEquals", T_BIN, C_EQ, 0 },
	{ "IpAddress", T_IP, C_EQ, 0 },
	{ "NotIpAddress", T_IP, C_EQ, 1 },
	/* IAM documents ArnEquals as behaving like ArnLike. */
	{ "ArnEquals", T_ARN, C_LIKE, 0 },
	{ "ArnLike", T_ARN, C_LIKE, 0 },
	{ "ArnNotEquals", T_ARN, C_LIKE, 1 },
	{ "ArnNotLike", T_ARN, C_LIKE, 1 },
	{ "Null", T_NULL, C_EQ, 0 },
};

enum set_op { SET_NONE, SET_ANY, SET_ALL };

struct op {
	const struct op_def *def;
	enum set_op set;
	int ifexists;
};

/* Evaluation state: an allocation failure sets err and the whole
 * evaluation fails closed. */
struct ev {
	const struct policy_request *req;
	int vars;
	int err;
};

static int
fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return PH_ERR_INVALID;
}

/* "ForAnyValue:StringLikeIfExists" -> its parts; 0 or -1 if unknown. */
static int
op_parse(const char *name, struct op *op)
{
	char base[64];
	size_t i, len;

	op->set = SET_NONE;
	op->ifexists = 0;
	if (strncmp(name, "ForAnyValue:", 12) == 0) {
		op->set = SET_ANY;
		name += 12;
	} else if (strncmp(name, "ForAllValues:", 13) == 0) {
		op->set = SET_ALL;
		name += 13;
	}
	len = strlen(name);
	if (len >= sizeof(base))
		return -1;
	memcpy(base, name, len + 1);
	if (len > 8 && strcmp(base + len - 8, "IfExists") == 0) {
		op->ifexists = 1;
		base[len - 8] = '\0';
	}
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(base, ops[i].name) == 0) {
			op->def = &ops[i];
			/* Null tests presence: IfExists and sets make no
			 * sense with it. */
			if (ops[i].type == T_NULL && (op->ifexists ||
			    op->set != SET_NONE))
				return -1;
			return 0;
		}
	return -1;
}

/* ---- Value lists: a scalar or an array of scalars. */

static size_t
nvals(json_t *v)
{
	return json_is_array(v) ? json_array_size(v) : 1;
}

static json_t *
val(json_t *v, size_t i)
{
	return json_is_array(v) ? json_array_get(v, i) : v;
}

/* A condition value as text: strings, booleans and numbers are allowed. */
static const char *
scalar_text(json_t *v, char *tmp, size_t len)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_true(v))
		return "true";
	if (json_is_false(v))
		return "false";
	if (json_is_integer(v)) {
		snprintf(tmp, len, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return tmp;
	}
	if (json_is_real(v)) {
		snprintf(tmp, len, "%.17g", json_real_value(v));
		return tmp;
	}
	return NULL;
}

/* ---- Shape checks (MalformedPolicyDocument). */

int
policy_check_strings(json_t *v, const char *what, size_t sidx, char *why,
    size_t len)
{
	size_t i;
	json_t *e;

	if (json_is_string(v))
		return json_string_length(v) > 0 ? 0 : fail(why, len,
		    "Statement %zu: %s must not be empty.", sidx, what);
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > POLICY_VALUES_MAX)
		return fail(why, len, "Statement %zu: %s must be a string or "
		    "a non-empty list of strings.", sidx, what);
	json_array_foreach(v, i, e)
		if (!json_is_string(e) || json_string_length(e) == 0)
			return fail(why, len, "Statement %zu: %s must be a "
			    "string or a non-empty list of strings.", sidx,
			    what);
	return 0;
}

static int
action_ok(const char *a)
{
	const char *c;

	if (strcmp(a, "*") == 0)
		return 1;
	c = strchr(a, ':');
	if (c == NULL || c == a || c[1] == '\0' || strchr(c + 1, ':') != NULL)
		return 0;
	for (; *a != '\0'; a++)
		if (!isalnum((unsigned char)*a) && strchr(":*?-_", *a) == NULL)
			return 0;
	return 1;
}

static int
check_actions(json_t *v, const char *what, size_t sidx, char *why,
    size_t len)
{
	size_t i;
	int rc;

	if ((rc = policy_check_strings(v, what, sidx, why, len)) != 0)
		return rc;
	for (i = 0; i < nvals(v); i++)
		if (!action_ok(json_string_value(val(v, i))))
			return fail(why, len, "Statement %zu: invalid %s "
			    "'%.100s': expected \"service:action\".", sidx,
			    what, json_string_value(val(v, i)));
	return 0;
}

static int
check_resources(json_t *v, const char *what, size_t sidx, char *why,
    size_t len)
{
	const char *r;
	size_t i;
	int rc;

	if ((rc = policy_check_strings(v, what, sidx, why, len)) != 0)
		return rc;
	for (i = 0; i < nvals(v); i++) {
		r = json_string_value(val(v, i));
		if (strcmp(r, "*") != 0 && strncmp(r, "arn:", 4) != 0)
			return fail(why, len, "Statement %zu: %s '%.100s' "
			    "must be \"*\" or an ARN.", sidx, what, r);
	}
	return 0;
}

/* Exactly one of name and not_name, checked with fn. */
static int
check_pair(json_t *st, const char *name, const char *not_name, size_t sidx,
    int (*fn)(json_t *, const char *, size_t, char *, size_t), char *why,
    size_t len)
{
	json_t *a = json_object_get(st, name);
	json_t *b = json_object_get(st, not_name);

	if (a != NULL && b != NULL)
		return fail(why, len, "Statement %zu has both %s and %s.",
		    sidx, name, not_name);
	if (a == NULL && b == NULL)
		return fail(why, len, "Statement %zu has neither %s nor %s.",
		    sidx, name, not_name);
	return fn(a != NULL ? a : b, a != NULL ? name : not_name, sidx, why,
	    len);
}

/* The actions a role's trust policy may name (IAM: "AssumeRole policy
 * may only specify STS AssumeRole actions"). */
static const char *const trust_actions[] = { "sts:AssumeRole",
    "sts:AssumeRoleWithSAML", "sts:AssumeRoleWithWebIdentity",
    "sts:TagSession", "sts:SetSourceIdentity", "sts:SetContext" };

static int
check_trust_actions(json_t *v, const char *what, size_t sidx, char *why,
    size_t len)
{
	const char *a;
	size_t i, j;
	int rc, m;

	if (strcmp(what, "Action") != 0)
		return fail(why, len, "Statement %zu: AssumeRole policy may "
		    "only specify STS AssumeRole actions (no NotAction).",
		    sidx);
	if ((rc = check_actions(v, what, sidx, why, len)) != 0)
		return rc;
	for (i = 0; i < nvals(v); i++) {
		a = json_string_value(val(v, i));
		m = 0;
		for (j = 0; j < sizeof(trust_actions) /
		    sizeof(trust_actions[0]) && m == 0; j++)
			m = policy_glob(a, trust_actions[j], 1);
		if (m != 1 || strncasecmp(a, "sts:", 4) != 0)
			return fail(why, len, "Statement %zu: AssumeRole "
			    "policy may only specify STS AssumeRole actions, "
			    "not '%.100s'.", sidx, a);
	}
	return 0;
}

static int
all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return s[n] == '\0' || s[n] == ':';
}

/* The account of an IAM or STS ARN ("arn:PART:iam::ACCT:...") into acct
 * (13 bytes); 0 or -1. */
static int
arn_account(const char *arn, char acct[13])
{
	const char *p = arn, *svc = NULL;
	int i;

	if (strncmp(p, "arn:", 4) != 0)
		return -1;
	p += 4;
	for (i = 0; i < 3; i++) {
		if (i == 1)
			svc = p;
		if ((p = strchr(p, ':')) == NULL)
			return -1;
		p++;
	}
	if (strncmp(svc, "iam:", 4) != 0 && strncmp(svc, "sts:", 4) != 0)
		return -1;
	if (strlen(p) < 13 || !all_digits(p, 12) || p[12] != ':')
		return -1;
	memcpy(acct, p, 12);
	acct[12] = '\0';
	return 0;
}

/* An "AWS" principal: "*", an account id, or an IAM / STS ARN of an
 * account root, user, role, role session or federated user. Wildcards
 * are refused, as IAM refuses them ("Invalid principal in policy"). */
static int
aws_principal_ok(const char *s)
{
	static const struct {
		const char *kind;
		const char *svc;
	} kinds[] = {
		{ "root", ":iam:" },
		{ "user/", ":iam:" },
		{ "role/", ":iam:" },
		{ "assumed-role/", ":sts:" },
		{ "federated-user/", ":sts:" },
	};
	char acct[13];
	const char *rest, *svc;
	size_t i, n;

	if (strcmp(s, "*") == 0)
		return 1;
	if (strchr(s, '*') != NULL || strchr(s, '?') != NULL)
		return 0;
	if (strlen(s) == 12 && all_digits(s, 12))
		return 1;
	if (arn_account(s, acct) != 0)
		return 0;
	svc = strchr(s + 4, ':');		/* after the partition */
	rest = strchr(svc + 1, ':');		/* after the service */
	rest = strchr(rest + 1, ':');		/* after the region */
	rest += 1 + 12 + 1;			/* the account and ':' */
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		n = strlen(kinds[i].kind);
		if (strncmp(rest, kinds[i].kind, n) != 0 ||
		    strncmp(svc, kinds[i].svc, 5) != 0)
			continue;
		if (i == 0)
			return rest[n] == '\0';
		return rest[n] != '\0' && rest[strlen(rest) - 1] != '/';
	}
	return 0;
}

/* "Service": a DNS name such as "ssm.amazonaws.com". */
static int
service_principal_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 3 && n <= 253 && strchr(s, '.') != NULL &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n &&
	    s[0] != '.' && s[n - 1] != '.';
}

static int
federated_principal_ok(const char *s)
{
	const char *p;

	if (strlen(s) > 2048 || strchr(s, '*') != NULL ||
	    strchr(s, '?') != NULL)
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!isgraph((unsigned char)*p))
			return 0;
	return 1;
}

static int
canonical_principal_ok(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* Principal / NotPrincipal: "*" or an object of principal types, each a
 * string or a list of strings. */
static int
check_principal(json_t *v, const char *what, size_t sidx, char *why,
    size_t len)
{
	static const struct {
		const char *type;
		int (*ok)(const char *);
	} types[] = {
		{ "AWS", aws_principal_ok },
		{ "Service", service_principal_ok },
		{ "Federated", federated_principal_ok },
		{ "CanonicalUser", canonical_principal_ok },
	};
	const char *type, *s;
	json_t *list;
	size_t i, t;
	int rc;

	if (json_is_string(v)) {
		if (strcmp(json_string_value(v), "*") == 0)
			return 0;
		return fail(why, len, "Statement %zu: Invalid principal in "
		    "policy: %s must be \"*\" or an object such as "
		    "{\"AWS\": ARN}.", sidx, what);
	}
	if (!json_is_object(v) || json_object_size(v) == 0)
		return fail(why, len, "Statement %zu: Invalid principal in "
		    "policy: %s must be \"*\" or a non-empty object.", sidx,
		    what);
	json_object_foreach(v, type, list) {
		for (t = 0; t < sizeof(types) / sizeof(types[0]); t++)
			if (strcmp(type, types[t].type) == 0)
				break;
		if (t == sizeof(types) / sizeof(types[0]))
			return fail(why, len, "Statement %zu: Invalid "
			    "principal in policy: unknown principal type "
			    "'%.60s' in %s.", sidx, type, what);
		if ((rc = policy_check_strings(list, what, sidx, why,
		    len)) != 0)
			return rc;
		for (i = 0; i < nvals(list); i++) {
			s = json_string_value(val(list, i));
			if (!types[t].ok(s))
				return fail(why, len, "Statement %zu: Invalid "
				    "principal in policy: \"%s\":\"%.100s\"",
				    sidx, type, s);
		}
	}
	return 0;
}

static int
check_condition(json_t *c, size_t sidx, char *why, size_t len)
{
	const char *opname, *key;
	json_t *block, *v, *e;
	struct op op;
	size_t i;

	if (!json_is_object(c))
		return fail(why, len, "Statement %zu: Condition must be an "
		    "object of operators.", sidx);
	json_object_foreach(c, opname, block) {
		if (op_parse(opname, &op) != 0)
			return fail(why, len, "Statement %zu: unknown "
			    "condition operator '%.80s'.", sidx, opname);
		if (!json_is_object(block) || json_object_size(block) == 0)
			return fail(why, len, "Statement %zu: condition %.80s "
			    "must be a non-empty object of keys.", sidx,
			    opname);
		json_object_foreach(block, key, v) {
			if (key[0] == '\0')
				return fail(why, len, "Statement %zu: empty "
				    "condition key in %.80s.", sidx, opname);
			if (json_is_array(v) && (json_array_size(v) == 0 ||
			    json_array_size(v) > POLICY_VALUES_MAX))
				return fail(why, len, "Statement %zu: "
				    "condition key '%.80s' needs 1 to %d "
				    "values.", sidx, key, POLICY_VALUES_MAX);
			for (i = 0; i < nvals(v); i++) {
				e = val(v, i);
				if (!json_is_string(e) && !json_is_boolean(e) &&
				    !json_is_number(e))
					return fail(why, len, "Statement %zu: "
					    "condition key '%.80s' has a value "
					    "that is not a string.", sidx, key);
			}
		}
	}
	return 0;
}

static int
sid_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s))
			return 0;
	return 1;
}

static int
check_statement(json_t *st, size_t sidx, unsigned flags, char *why,
    size_t len)
{
	static const char *const known[] = { "Sid", "Effect", "Action",
	    "NotAction", "Resource", "NotResource", "Condition", "Principal",
	    "NotPrincipal" };
	const size_t nknown = sizeof(known) / sizeof(known[0]) -
	    (flags & POLICY_F_PRINCIPAL ? 0 : 2);
	const char *key, *effect;
	json_t *v;
	size_t i;
	int rc;

	if (!json_is_object(st))
		return fail(why, len, "Statement %zu is not an object.", sidx);
	json_object_foreach(st, key, v) {
		for (i = 0; i < nknown; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (i == nknown)
			return fail(why, len, "Statement %zu has an "
			    "unsupported element '%.60s'%s.", sidx, key,
			    strstr(key, "Principal") != NULL ? " (identity "
			    "policies name no principal)" : "");
	}
	v = json_object_get(st, "Sid");
	if (v != NULL && (!json_is_string(v) ||
	    !sid_ok(json_string_value(v))))
		return fail(why, len, "Statement %zu: Sid must be a string of "
		    "letters and digits.", sidx);
	v = json_object_get(st, "Effect");
	effect = json_string_value(v);
	if (effect == NULL || (strcmp(effect, "Allow") != 0 &&
	    strcmp(effect, "Deny") != 0))
		return fail(why, len, "Statement %zu: Effect must be \"Allow\" "
		    "or \"Deny\".", sidx);
	if (flags & POLICY_F_PRINCIPAL) {
		if (json_object_get(st, "Principal") == NULL &&
		    json_object_get(st, "NotPrincipal") == NULL)
			return fail(why, len, "Statement %zu: Missing "
			    "required field Principal.", sidx);
		if ((rc = check_pair(st, "Principal", "NotPrincipal", sidx,
		    check_principal, why, len)) != 0)
			return rc;
		/* Allow with NotPrincipal grants the whole world but a
		 * few: IAM's trust policies refuse it. */
		if ((flags & POLICY_F_TRUST) && strcmp(effect, "Allow") == 0 &&
		    json_object_get(st, "NotPrincipal") != NULL)
			return fail(why, len, "Statement %zu: NotPrincipal "
			    "cannot be used with Allow in a trust policy.",
			    sidx);
	}
	if ((rc = check_pair(st, "Action", "NotAction", sidx,
	    flags & POLICY_F_TRUST ? check_trust_actions : check_actions,
	    why, len)) != 0)
		return rc;
	if (flags & POLICY_F_TRUST) {
		/* A trust policy's resource is the role itself. */
		if (json_object_get(st, "Resource") != NULL ||
		    json_object_get(st, "NotResource") != NULL)
			return fail(why, len, "Statement %zu: Has prohibited "
			    "field Resource.", sidx);
	} else if ((rc = check_pair(st, "Resource", "NotResource", sidx,
	    check_resources, why, len)) != 0)
		return rc;
	v = json_object_get(st, "Condition");
	if (v != NULL && (rc = check_condition(v, sidx, why, len)) != 0)
		return rc;
	return 0;
}

static int
check_document(json_t *doc, unsigned flags, int *vars, char *why,
    size_t len)
{
	const char *key, *version = "2008-10-17", *a, *b;
	json_t *v, *st, *st2;
	size_t i, j;
	int rc;

	if (!json_is_object(doc))
		return fail(why, len, "The policy must be a JSON object.");
	json_object_foreach(doc, key, v)
		if (strcmp(key, "Version") != 0 && strcmp(key, "Id") != 0 &&
		    strcmp(key, "Statement") != 0)
			return fail(why, len, "Unsupported policy element "
			    "'%.60s'.", key);
	v = json_object_get(doc, "Version");
	if (v != NULL) {
		version = json_string_value(v);
		if (version == NULL || (strcmp(version, "2012-10-17") != 0 &&
		    strcmp(version, "2008-10-17") != 0))
			return fail(why, len, "Version must be \"2012-10-17\" "
			    "or \"2008-10-17\".");
	}
	*vars = strcmp(version, "2012-10-17") == 0;
	v = json_object_get(doc, "Id");
	if (v != NULL && !json_is_string(v))
		return fail(why, len, "Id must be a string.");
	v = json_object_get(doc, "Statement");
	if (v == NULL)
		return fail(why, len, "The policy has no Statement.");
	if (json_is_object(v))
		return check_statement(v, 0, flags, why, len);
	if (!json_is_array(v) || json_array_size(v) == 0)
		return fail(why, len, "Statement must be an object or a "
		    "non-empty list of objects.");
	if (json_array_size(v) > POLICY_STATEMENTS_MAX)
		return fail(why, len, "Too many statements (at most %d).",
		    POLICY_STATEMENTS_MAX);
	json_array_foreach(v, i, st) {
		if ((rc = check_statement(st, i, flags, why, len)) != 0)
			return rc;
		a = json_string_value(json_object_get(st, "Sid"));
		if (a == NULL || a[0] == '\0')
			continue;
		for (j = 0; j < i; j++) {
			st2 = json_array_get(v, j);
			b = json_string_value(json_object_get(st2, "Sid"));
			if (b != NULL && strcmp(a, b) == 0)
				return fail(why, len, "Statement IDs (SID) "
				    "must be unique: '%.60s' repeats.", a);
		}
	}
	return 0;
}

int
policy_parse(const char *json, size_t n, struct policy **out, char *why,
    size_t whylen)
{
	return policy_parse_ex(json, n, 0, out, why, whylen);
}

int
policy_parse_ex(const char *json, size_t n, unsigned flags,
    struct policy **out, char *why, size_t whylen)
{
	struct policy *p = NULL;
	json_error_t jerr;
	json_t *doc = NULL, *st;
	int rc, vars = 0;

	*out = NULL;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (flags & POLICY_F_TRUST)
		flags |= POLICY_F_PRINCIPAL;
	if (flags & ~(unsigned)(POLICY_F_PRINCIPAL | POLICY_F_TRUST)) {
		fail(why, whylen, "Unknown parse flags.");
		return PH_ERR_INVALID;
	}
	if (n > POLICY_MAX) {
		fail(why, whylen, "The policy is larger than %d bytes.",
		    POLICY_MAX);
		return PH_ERR_TOOBIG;
	}
	doc = json_loadb(json, n, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		rc = fail(why, whylen, "The policy is not valid JSON: %.120s",
		    jerr.text);
		goto out;
	}
	if ((rc = check_document(doc, flags, &vars, why, whylen)) != 0)
		goto out;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		fail(why, whylen, "Out of memory.");
		rc = PH_ERR_NOMEM;
		goto out;
	}
	st = json_object_get(doc, "Statement");
	if (json_is_array(st))
		p->stmts = json_incref(st);
	else {
		if ((p->stmts = json_array()) == NULL ||
		    json_array_append(p->stmts, st) != 0) {
			fail(why, whylen, "Out of memory.");
			rc = PH_ERR_NOMEM;
			goto out;
		}
	}
	p->doc = doc;
	doc = NULL;	/* transferred */
	p->vars = vars;
	p->flags = flags;
	*out = p;
	p = NULL;	/* transferred */
	rc = 0;
out:
	policy_free(p);
	json_decref(doc);
	return rc;
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	json_decref(p->stmts);
	json_decref(p->doc);
	free(p);
}

/* ---- Matching. */

/* Glob with * and ?; with escapes, a backslash makes the next character
 * literal (patterns built by expand()). One backtrack point: bounded by
 * |p| * |s| steps; -1 past POLICY_GLOB_STEPS, which evaluation treats as
 * an error (an explicit deny) so a slow match never skips a Deny. */
static int
glob_match(const char *p, const char *s, int nocase, int escapes)
{
	const char *star = NULL, *back = NULL;
	size_t steps = 0;
	char pc;
	int lit;

	while (*s != '\0') {
		if (++steps > POLICY_GLOB_STEPS)
			return -1;
		lit = 0;
		pc = *p;
		if (escapes && pc == '\\' && p[1] != '\0') {
			lit = 1;
			pc = p[1];
		}
		if (!lit && pc == '*') {
			star = p++;
			back = s;
			continue;
		}
		if (pc != '\0' && ((!lit && pc == '?') || pc == *s ||
		    (nocase && tolower((unsigned char)pc) ==
		    tolower((unsigned char)*s)))) {
			p += lit ? 2 : 1;
			s++;
		} else if (star != NULL) {
			p = star + 1;
			s = ++back;
		} else
			return 0;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static int
pol_glob(const char *p, const char *s, int nocase)
{
	return glob_match(p, s, nocase, 1);
}

int
policy_glob(const char *p, const char *s, int nocase)
{
	return glob_match(p, s, nocase, 0);
}

static const struct policy_ctx *
ctx_find(const struct policy_request *req, const char *key, size_t klen)
{
	size_t i;

	for (i = 0; i < req->nctx; i++)
		if (req->ctx[i].key != NULL &&
		    strlen(req->ctx[i].key) == klen &&
		    strncasecmp(req->ctx[i].key, key, klen) == 0)
			return req->ctx[i].nvalues > 0 ? &req->ctx[i] : NULL;
	return NULL;
}

struct sb {
	char *s;
	size_t len, cap;
};

static int
sb_putc(struct sb *b, char c)
{
	char *n;

	if (b->len + 2 > b->cap) {
		if (b->cap > POLICY_MAX * 4)
			return -1;
		n = realloc(b->s, b->cap ? b->cap * 2 : 64);
		if (n == NULL)
			return -1;
		b->s = n;
		b->cap = b->cap ? b->cap * 2 : 64;
	}
	b->s[b->len++] = c;
	b->s[b->len] = '\0';
	return 0;
}

/* Append literal text; in a glob pattern, escape its wildcards. */
static int
sb_lit(struct sb *b, const char *s, size_t n, int globbing)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (globbing && strchr("*?\\", s[i]) != NULL &&
		    sb_putc(b, '\\') != 0)
			return -1;
		if (sb_putc(b, s[i]) != 0)
			return -1;
	}
	return 0;
}

/* The policy value with its variables replaced from the request context,
 * as a new string (a glob pattern when globbing). NULL if a variable
 * cannot be resolved (the value then matches nothing), or on allocation
 * failure (ev->err set). */
static char *
expand(struct ev *ev, const char *in, int globbing)
{
	const struct policy_ctx *c;
	struct sb b = { NULL, 0, 0 };
	const char *end, *name;
	size_t nlen;

	if (sb_putc(&b, 'x') != 0)
		goto nomem;
	b.len = 0;
	b.s[0] = '\0';
	while (*in != '\0') {
		if (ev->vars && in[0] == '$' && in[1] == '{' &&
		    (end = strchr(in + 2, '}')) != NULL) {
			name = in + 2;
			nlen = (size_t)(end - name);
			if (nlen == 1 && strchr("*?$", name[0]) != NULL) {
				if (sb_lit(&b, name, 1, globbing) != 0)
					goto nomem;
			} else {
				c = ctx_find(ev->req, name, nlen);
				if (c == NULL || c->nvalues != 1 ||
				    c->values[0] == NULL) {
					free(b.s);
					return NULL;
				}
				if (sb_lit(&b, c->values[0],
				    strlen(c->values[0]), globbing) != 0)
					goto nomem;
			}
			in = end + 1;
			continue;
		}
		/* Raw wildcards stay wildcards; a raw backslash is literal. */
		if (*in == '\\') {
			if (sb_lit(&b, in, 1, globbing) != 0)
				goto nomem;
		} else if (sb_putc(&b, *in) != 0)
			goto nomem;
		in++;
	}
	return b.s;
nomem:
	free(b.s);
	ev->err = 1;
	return NULL;
}

/* ARNs compare component by component (partition, service, region,
 * account, resource); a wildcard does not cross the first five colons.
 * 1 or 0; -1 on allocation failure or a match too slow to finish. */
static int
arn_like(const char *pat, const char *arn)
{
	char *pc = NULL, *ac = NULL, *pp[6], *ap[6];
	int i, m, rc = 0;

	if ((pc = strdup(pat)) == NULL || (ac = strdup(arn)) == NULL) {
		rc = -1;
		goto out;
	}
	pp[0] = pc;
	ap[0] = ac;
	for (i = 1; i < 6; i++) {
		if ((pp[i] = strchr(pp[i - 1], ':')) == NULL ||
		    (ap[i] = strchr(ap[i - 1], ':')) == NULL)
			goto out;
		*pp[i]++ = '\0';
		*ap[i]++ = '\0';
	}
	for (i = 0; i < 6; i++)
		if ((m = pol_glob(pp[i], ap[i], 0)) != 1) {
			rc = m;
			goto out;
		}
	rc = 1;
out:
	free(pc);
	free(ac);
	return rc;
}

static int
parse_num(const char *s, double *out)
{
	char *end;

	/* Decimal only: strtod would also take hex, "inf" and "nan". */
	if (*s == '\0' || strspn(s, "+-.0123456789eE") != strlen(s))
		return -1;
	errno = 0;
	*out = strtod(s, &end);
	if (*end != '\0' || errno != 0 || !isfinite(*out))
		return -1;
	return 0;
}

static int
digits(const char **s, int n, int *out)
{
	int v = 0;

	while (n-- > 0) {
		if (!isdigit((unsigned char)**s))
			return -1;
		v = v * 10 + (*(*s)++ - '0');
	}
	*out = v;
	return 0;
}

static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* ISO 8601 ("2026-12-04", "2026-12-04T22:30:00Z", "...+01:00", with
 * fractions) or epoch seconds, as seconds since the epoch. */
static int
parse_date(const char *s, double *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign;
	double frac = 0, scale = 0.1;
	const char *p = s;

	if (*p != '\0' && strspn(p, "0123456789") == strlen(p) &&
	    strlen(p) <= 15)
		return parse_num(p, out);
	if (digits(&p, 4, &y) != 0 || *p++ != '-' || digits(&p, 2, &mo) != 0 ||
	    *p++ != '-' || digits(&p, 2, &d) != 0)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31)
		return -1;
	if (*p == 'T' || *p == 't') {
		p++;
		if (digits(&p, 2, &h) != 0 || *p++ != ':' ||
		    digits(&p, 2, &mi) != 0)
			return -1;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &sec) != 0)
				return -1;
			if (*p == '.' || *p == ',') {
				p++;
				if (!isdigit((unsigned char)*p))
					return -1;
				while (isdigit((unsigned char)*p)) {
					frac += (*p++ - '0') * scale;
					scale /= 10;
				}
			}
		}
		if (h > 24 || mi > 59 || sec > 60)
			return -1;
		if (*p == 'Z' || *p == 'z')
			p++;
		else if (*p == '+' || *p == '-') {
			sign = *p++ == '-' ? -1 : 1;
			if (digits(&p, 2, &oh) != 0)
				return -1;
			if (*p == ':')
				p++;
			if (digits(&p, 2, &om) != 0 || oh > 23 || om > 59)
				return -1;
			oh *= sign;
			om *= sign;
		}
	}
	if (*p != '\0')
		return -1;
	*out = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 +
	    mi * 60.0 + sec + frac - oh * 3600.0 - om * 60.0;
	return 0;
}

/* Address and prefix length; family AF_INET or AF_INET6. */
static int
parse_ip(const char *s, int cidr, unsigned char addr[16], int *family,
    int *bits)
{
	char tmp[64];
	const char *slash;
	size_t n;
	int len = -1, max;

	slash = cidr ? strchr(s, '/') : NULL;
	n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, addr) == 1) {
		*family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, tmp, addr) == 1) {
		*family = AF_INET6;
		max = 128;
	} else
		return -1;
	if (slash != NULL) {
		slash++;
		if (*slash == '\0' || strlen(slash) > 3 ||
		    strspn(slash, "0123456789") != strlen(slash))
			return -1;
		len = atoi(slash);
		if (len > max)
			return -1;
	}
	*bits = len < 0 ? max : len;
	return 0;
}

static int
ip_in(const char *cidr, const char *ip)
{
	unsigned char net[16], a[16];
	int nf, af, bits, abits, i;
	unsigned char mask;

	if (parse_ip(cidr, 1, net, &nf, &bits) != 0 ||
	    parse_ip(ip, 0, a, &af, &abits) != 0 || nf != af)
		return 0;
	for (i = 0; bits > 0; i++, bits -= 8) {
		mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
		if ((net[i] & mask) != (a[i] & mask))
			return 0;
	}
	return 1;
}

static int
cmp_order(enum op_cmp cmp, double a, double b)
{
	switch (cmp) {
	case C_EQ:
		return a == b;
	case C_LT:
		return a < b;
	case C_LE:
		return a <= b;
	case C_GT:
		return a > b;
	case C_GE:
		return a >= b;
	default:
		return 0;
	}
}

static int
bool_val(const char *s)
{
	if (strcasecmp(s, "true") == 0)
		return 1;
	if (strcasecmp(s, "false") == 0)
		return 0;
	return -1;
}

/* The base operator, not negated: request value v against policy value
 * pv. */
static int
base_match(struct ev *ev, const struct op_def *d, const char *v,
    const char *pv)
{
	double a, b;
	char *x;
	int r = 0, bv;

	switch (d->type) {
	case T_STR:
	case T_ARN:
		if ((x = expand(ev, pv, d->cmp == C_LIKE)) == NULL)
			return 0;
		if (d->type == T_ARN)
			r = arn_like(x, v);
		else if (d->cmp == C_EQ)
			r = strcmp(x, v) == 0;
		else if (d->cmp == C_EQI)
			r = strcasecmp(x, v) == 0;
		else
			r = pol_glob(x, v, 0);
		free(x);
		if (r < 0) {
			ev->err = 1;
			return 0;
		}
		return r;
	case T_NUM:
		return parse_num(v, &a) == 0 && parse_num(pv, &b) == 0 &&
		    cmp_order(d->cmp, a, b);
	case T_DATE:
		return parse_date(v, &a) == 0 && parse_date(pv, &b) == 0 &&
		    cmp_order(d->cmp, a, b);
	case T_BOOL:
		bv = bool_val(pv);
		return bv >= 0 && bv == bool_val(v);
	case T_BIN:
		return strcmp(pv, v) == 0;
	case T_IP:
		return ip_in(pv, v);
	case T_NULL:
		break;
	}
	return 0;
}

/* One request value: does it satisfy the operator over the policy's
 * values (ORed; a negated operator holds when none matches)? */
static int
value_match(struct ev *ev, const struct op_def *d, const char *v,
    json_t *pvals)
{
	char tmp[64];
	const char *pv;
	size_t i;

	for (i = 0; i < nvals(pvals); i++) {
		pv = scalar_text(val(pvals, i), tmp, sizeof(tmp));
		if (pv != NULL && base_match(ev, d, v, pv))
			return !d->neg;
	}
	return d->neg;
}

static int
key_match(struct ev *ev, const struct op *op, const char *key, json_t *pvals)
{
	const struct policy_ctx *c = ctx_find(ev->req, key, strlen(key));
	char tmp[64];
	const char *pv;
	size_t i;
	int m;

	if (op->def->type == T_NULL) {
		/* "true": the key is absent; "false": it is present. */
		for (i = 0; i < nvals(pvals); i++) {
			pv = scalar_text(val(pvals, i), tmp, sizeof(tmp));
			if (pv != NULL && bool_val(pv) == (c == NULL))
				return 1;
		}
		return 0;
	}
	if (c == NULL) {
		/* IAM: a missing key fails the condition, except that
		 * IfExists skips it, ForAllValues holds over an empty set
		 * and a negated operator has nothing to match. */
		if (op->ifexists || op->set == SET_ALL)
			return 1;
		if (op->set == SET_ANY)
			return 0;
		return op->def->neg;
	}
	for (i = 0; i < c->nvalues; i++) {
		if (c->values[i] == NULL) {
			ev->err = 1;	/* the caller's bug: fail closed */
			return 0;
		}
		m = value_match(ev, op->def, c->values[i], pvals);
		if (ev->err)
			return 0;
		/* Plain negated operators over a multi-valued key need
		 * every value to miss, like ForAllValues. */
		if (op->set == SET_ALL || (op->set == SET_NONE &&
		    op->def->neg)) {
			if (!m)
				return 0;
		} else if (m)
			return 1;
	}
	return op->set == SET_ALL || (op->set == SET_NONE && op->def->neg);
}

static int
condition_match(struct ev *ev, json_t *cond)
{
	const char *opname, *key;
	json_t *block, *v;
	struct op op;

	if (cond == NULL)
		return 1;
	json_object_foreach(cond, opname, block) {
		if (op_parse(opname, &op) != 0)
			return 0;	/* refused at parse time */
		json_object_foreach(block, key, v)
			if (!key_match(ev, &op, key, v))
				return 0;
	}
	return 1;
}

static int
list_match(struct ev *ev, json_t *v, const char *subject, int is_action)
{
	const char *s;
	size_t i;
	char *x;
	int m;

	if (subject == NULL)
		return 0;
	for (i = 0; i < nvals(v); i++) {
		s = json_string_value(val(v, i));
		if (is_action)
			m = pol_glob(s, subject, 1);
		else {
			if ((x = expand(ev, s, 1)) == NULL)
				continue;
			m = pol_glob(x, subject, 0);
			free(x);
		}
		if (m < 0) {
			ev->err = 1;
			return 0;
		}
		if (m)
			return 1;
	}
	return 0;
}

/* One policy value of principal type `type` against the caller. */
static int
principal_value_match(const struct policy_request *req, const char *type,
    const char *pv)
{
	const char *ctype = req->principal_type != NULL ?
	    req->principal_type : "AWS";
	char acct[13], cacct[13];
	const char *c;
	size_t i;
	int root = 0;

	/* {"AWS": "*"} is the same as "*": everyone, anonymous too. */
	if (strcmp(type, "AWS") == 0 && strcmp(pv, "*") == 0)
		return 1;
	if (strcmp(type, ctype) != 0)
		return 0;
	if (strcmp(type, "AWS") == 0) {
		/* An account id or its root: every principal of it. */
		if (strlen(pv) == 12 && all_digits(pv, 12)) {
			memcpy(acct, pv, 13);
			root = 1;
		} else if (arn_account(pv, acct) == 0 &&
		    strcmp(pv + strlen(pv) - 5, ":root") == 0)
			root = 1;
	}
	for (i = 0; i < req->nprincipals; i++) {
		if ((c = req->principals[i]) == NULL)
			continue;
		if (root) {
			if (strlen(c) == 12 && all_digits(c, 12)) {
				if (strcmp(c, acct) == 0)
					return 1;
			} else if (arn_account(c, cacct) == 0 &&
			    strcmp(cacct, acct) == 0)
				return 1;
		} else if (strcmp(type, "Service") == 0) {
			if (strcasecmp(c, pv) == 0)
				return 1;
		} else if (strcmp(c, pv) == 0)
			return 1;
	}
	return 0;
}

static int
principal_match(const struct policy_request *req, json_t *v)
{
	const char *type;
	json_t *list;
	size_t i;

	if (json_is_string(v))
		return 1;		/* "*" */
	json_object_foreach(v, type, list)
		for (i = 0; i < nvals(list); i++)
			if (principal_value_match(req, type,
			    json_string_value(val(list, i))))
				return 1;
	return 0;
}

static int
statement_match(struct ev *ev, json_t *st)
{
	json_t *v;
	int m;

	if (ev->req->action == NULL || ev->req->resource == NULL)
		return 0;
	if ((v = json_object_get(st, "Principal")) != NULL) {
		if (!principal_match(ev->req, v))
			return 0;
	} else if ((v = json_object_get(st, "NotPrincipal")) != NULL) {
		if (principal_match(ev->req, v))
			return 0;
	}
	if ((v = json_object_get(st, "Action")) != NULL)
		m = list_match(ev, v, ev->req->action, 1);
	else
		m = !list_match(ev, json_object_get(st, "NotAction"),
		    ev->req->action, 1);
	if (!m)
		return 0;
	if ((v = json_object_get(st, "Resource")) != NULL)
		m = list_match(ev, v, ev->req->resource, 0);
	else if (json_object_get(st, "NotResource") == NULL)
		m = 1;		/* a trust policy: the role itself */
	else
		m = !list_match(ev, json_object_get(st, "NotResource"),
		    ev->req->resource, 0);
	if (ev->err || !m)
		return 0;
	return condition_match(ev, json_object_get(st, "Condition"));
}

int
policy_evaluate(const struct policy *const *policies, size_t n,
    const struct policy_request *req)
{
	struct ev ev = { req, 0, 0 };
	const char *effect;
	size_t i, j;
	json_t *st;
	int allow = 0;

	for (i = 0; i < n; i++) {
		if (policies[i] == NULL)
			continue;
		ev.vars = policies[i]->vars;
		json_array_foreach(policies[i]->stmts, j, st) {
			if (!statement_match(&ev, st)) {
				if (ev.err)
					return POLICY_DENY_EXPLICIT;
				continue;
			}
			if (ev.err)
				return POLICY_DENY_EXPLICIT;
			effect = json_string_value(json_object_get(st,
			    "Effect"));
			if (strcmp(effect, "Deny") == 0)
				return POLICY_DENY_EXPLICIT;
			allow = 1;
		}
	}
	return allow ? POLICY_ALLOW : POLICY_DENY_IMPLICIT;
}

int
policy_condition_eval(json_t *cond, const struct policy_ctx *ctx,
    size_t nctx, int vars)
{
	struct policy_request req;
	struct ev ev = { &req, vars, 0 };
	int m;

	memset(&req, 0, sizeof(req));
	req.ctx = ctx;
	req.nctx = nctx;
	if (cond == NULL)
		return 1;
	if (check_condition(cond, 0, NULL, 0) != 0)
		return -1;
	m = condition_match(&ev, cond);
	return ev.err ? -1 : m;
}
