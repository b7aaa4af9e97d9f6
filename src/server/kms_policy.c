/* kms_policy: shape checks and evaluation of key policy documents
 * (AWS IAM JSON policy reference: elements, evaluation logic). */
#include "server/kms_policy.h"
#include "server/policy.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"

#define KMS_POLICY_STATEMENTS_MAX 256

struct kms_policy {
	json_t *doc;
	int vars;                 /* Version 2012-10-17: ${...} expand */
};

static int
kp_fail(char *msg, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (msg != NULL && size > 0) {
		va_start(ap, fmt);
		vsnprintf(msg, size, fmt, ap);
		va_end(ap);
	}
	return PH_ERR_INVALID;
}

/* A slow match counts as no match here, as it always has. */
int
kms_policy_glob(const char *p, const char *s, int nocase)
{
	return policy_glob(p, s, nocase) == 1;
}


static int
kp_action_ok(const char *a)
{
	const char *c;

	if (strcmp(a, "*") == 0)
		return 1;
	c = strchr(a, ':');
	if (c == NULL || c == a || c[1] == '\0')
		return 0;
	for (; *a != '\0'; a++)
		if (!isalnum((unsigned char)*a) && strchr(":*?-_", *a) == NULL)
			return 0;
	return 1;
}

static int
kp_check_actions(json_t *v, const char *what, size_t sidx, char *msg,
    size_t size)
{
	size_t i;
	json_t *e;
	int rc;

	if ((rc = policy_check_strings(v, what, sidx, msg, size)) != 0)
		return rc;
	if (json_is_string(v))
		return kp_action_ok(json_string_value(v)) ? 0 : kp_fail(msg,
		    size, "Statement %zu: invalid action '%.100s'.", sidx,
		    json_string_value(v));
	json_array_foreach(v, i, e)
		if (!kp_action_ok(json_string_value(e)))
			return kp_fail(msg, size, "Statement %zu: invalid "
			    "action '%.100s'.", sidx, json_string_value(e));
	return 0;
}

static int
kp_check_principal(json_t *v, const char *what, size_t sidx, char *msg,
    size_t size)
{
	static const char *const kinds[] = { "AWS", "Service", "Federated",
	    "CanonicalUser" };
	const char *key;
	json_t *e;
	size_t i;
	int rc;

	if (json_is_string(v)) {
		if (strcmp(json_string_value(v), "*") == 0)
			return 0;
		return kp_fail(msg, size, "Statement %zu: %s must be \"*\" or "
		    "an object such as {\"AWS\": \"ARN\"}.", sidx, what);
	}
	if (!json_is_object(v) || json_object_size(v) == 0)
		return kp_fail(msg, size, "Statement %zu: %s must be \"*\" or "
		    "an object such as {\"AWS\": \"ARN\"}.", sidx, what);
	json_object_foreach(v, key, e) {
		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (strcmp(key, kinds[i]) == 0)
				break;
		if (i == sizeof(kinds) / sizeof(kinds[0]))
			return kp_fail(msg, size, "Statement %zu: unknown "
			    "principal type '%.60s' in %s.", sidx, key, what);
		if ((rc = policy_check_strings(e, what, sidx, msg, size)) != 0)
			return rc;
	}
	return 0;
}

/* Exactly one of name and "Not"name, checked with fn. */
static int
kp_pair(json_t *st, const char *name, const char *not_name, int required,
    size_t sidx, int (*fn)(json_t *, const char *, size_t, char *, size_t),
    char *msg, size_t size)
{
	json_t *a = json_object_get(st, name), *b = json_object_get(st,
	    not_name);

	if (a != NULL && b != NULL)
		return kp_fail(msg, size, "Statement %zu has both %s and %s.",
		    sidx, name, not_name);
	if (a == NULL && b == NULL)
		return required ? kp_fail(msg, size, "Statement %zu has no "
		    "%s.", sidx, name) : 0;
	return fn(a != NULL ? a : b, a != NULL ? name : not_name, sidx, msg,
	    size);
}

static int
kp_check_statement(json_t *st, size_t sidx, char *msg, size_t size)
{
	static const char *const known[] = { "Sid", "Effect", "Principal",
	    "NotPrincipal", "Action", "NotAction", "Resource", "NotResource",
	    "Condition" };
	const char *key, *effect;
	json_t *v, *c;
	size_t i;
	int rc;

	if (!json_is_object(st))
		return kp_fail(msg, size, "Statement %zu is not an object.",
		    sidx);
	json_object_foreach(st, key, v) {
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (i == sizeof(known) / sizeof(known[0]))
			return kp_fail(msg, size, "Statement %zu has an "
			    "unknown element '%.60s'.", sidx, key);
	}
	v = json_object_get(st, "Sid");
	if (v != NULL && !json_is_string(v))
		return kp_fail(msg, size, "Statement %zu: Sid must be a "
		    "string.", sidx);
	effect = json_string_value(json_object_get(st, "Effect"));
	if (effect == NULL || (strcmp(effect, "Allow") != 0 &&
	    strcmp(effect, "Deny") != 0))
		return kp_fail(msg, size, "Statement %zu: Effect must be "
		    "\"Allow\" or \"Deny\".", sidx);
	if ((rc = kp_pair(st, "Principal", "NotPrincipal", 1, sidx,
	    kp_check_principal, msg, size)) != 0 ||
	    (rc = kp_pair(st, "Action", "NotAction", 1, sidx,
	    kp_check_actions, msg, size)) != 0 ||
	    (rc = kp_pair(st, "Resource", "NotResource", 1, sidx,
	    policy_check_strings, msg, size)) != 0)
		return rc;
	v = json_object_get(st, "Condition");
	if (v != NULL) {
		if (!json_is_object(v))
			return kp_fail(msg, size, "Statement %zu: Condition "
			    "must be an object.", sidx);
		json_object_foreach(v, key, c)
			if (!json_is_object(c))
				return kp_fail(msg, size, "Statement %zu: "
				    "condition operator %.60s must map to an "
				    "object.", sidx, key);
		/* The identity-policy engine's checks: known operators,
		 * non-empty keys, scalar values. */
		if (policy_condition_eval(v, NULL, 0, 0) < 0)
			return kp_fail(msg, size, "Statement %zu: the "
			    "Condition has an unknown operator, an empty key "
			    "or a value that is not a string.", sidx);
	}
	return 0;
}

int
kms_policy_parse(const char *text, struct kms_policy **out, char *msg,
    size_t msgsize)
{
	const char *key, *ver;
	json_error_t jerr;
	json_t *doc, *st, *v;
	size_t i;
	int rc;

	*out = NULL;
	if (text == NULL || text[0] == '\0')
		return kp_fail(msg, msgsize, "The policy is empty.");
	if (strlen(text) > KMS_POLICY_MAX)
		return kp_fail(msg, msgsize, "The key policy is larger than "
		    "%d bytes.", KMS_POLICY_MAX);
	doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		return kp_fail(msg, msgsize, "The policy is not valid JSON: %s "
		    "(line %d, column %d).", jerr.text, jerr.line,
		    jerr.column);
	if (!json_is_object(doc)) {
		rc = kp_fail(msg, msgsize, "The policy must be a JSON object.");
		goto fail;
	}
	json_object_foreach(doc, key, v) {
		if (strcmp(key, "Version") != 0 && strcmp(key, "Id") != 0 &&
		    strcmp(key, "Statement") != 0) {
			rc = kp_fail(msg, msgsize, "The policy has an unknown "
			    "element '%.60s'.", key);
			goto fail;
		}
	}
	v = json_object_get(doc, "Version");
	ver = json_is_string(v) ? json_string_value(v) : "";
	if (v != NULL && strcmp(ver, "2012-10-17") != 0 &&
	    strcmp(ver, "2008-10-17") != 0) {
		rc = kp_fail(msg, msgsize, "The policy's Version must be "
		    "\"2012-10-17\" or \"2008-10-17\".");
		goto fail;
	}
	v = json_object_get(doc, "Id");
	if (v != NULL && !json_is_string(v)) {
		rc = kp_fail(msg, msgsize, "The policy's Id must be a string.");
		goto fail;
	}
	st = json_object_get(doc, "Statement");
	if (json_is_object(st)) {
		if ((rc = kp_check_statement(st, 1, msg, msgsize)) != 0)
			goto fail;
	} else if (json_is_array(st) && json_array_size(st) > 0 &&
	    json_array_size(st) <= KMS_POLICY_STATEMENTS_MAX) {
		json_array_foreach(st, i, v)
			if ((rc = kp_check_statement(v, i + 1, msg,
			    msgsize)) != 0)
				goto fail;
	} else {
		rc = kp_fail(msg, msgsize, "The policy must have a Statement: "
		    "an object or a non-empty list of objects.");
		goto fail;
	}
	if ((*out = calloc(1, sizeof(**out))) == NULL) {
		rc = PH_ERR_NOMEM;
		goto fail;
	}
	(*out)->doc = doc;
	(*out)->vars = strcmp(ver, "2012-10-17") == 0;
	return 0;
fail:
	json_decref(doc);
	return rc;
}

void
kms_policy_free(struct kms_policy *p)
{
	if (p == NULL)
		return;
	json_decref(p->doc);
	free(p);
}

/* Does v (a string or list of strings) have a value that fn matches? */
static int
kp_any(json_t *v, int (*fn)(const char *val, const void *arg),
    const void *arg)
{
	size_t i;
	json_t *e;

	if (json_is_string(v))
		return fn(json_string_value(v), arg);
	json_array_foreach(v, i, e)
		if (json_is_string(e) && fn(json_string_value(e), arg))
			return 1;
	return 0;
}

static int
kp_match_action(const char *pattern, const void *arg)
{
	return kms_policy_glob(pattern, arg, 1);
}

static int
kp_match_resource(const char *pattern, const void *arg)
{
	return kms_policy_glob(pattern, arg, 0);
}

struct kp_who_effect {
	const struct kms_policy_who *who;
	int deny;
};

static int
kp_match_aws(const char *v, const void *arg)
{
	const struct kp_who_effect *we = arg;
	const struct kms_policy_who *w = we->who;
	char root[64];

	if (strcmp(v, "*") == 0)
		return 1;
	if (w->arn != NULL && strcmp(v, w->arn) == 0)
		return 1;
	if (w->role_arn != NULL && strcmp(v, w->role_arn) == 0)
		return 1;
	if (w->account_id == NULL)
		return 0;
	snprintf(root, sizeof(root), "arn:aws:iam::%s:root", w->account_id);
	if (strcmp(v, root) == 0 || strcmp(v, w->account_id) == 0)
		/* The account: its IAM decides an Allow; a Deny covers every
		 * principal in it. */
		return we->deny || w->iam_allows;
	return 0;
}

static int
kp_principal_matches(json_t *v, const struct kp_who_effect *we)
{
	json_t *aws;

	if (json_is_string(v))
		return strcmp(json_string_value(v), "*") == 0;
	aws = json_object_get(v, "AWS");
	return aws != NULL && kp_any(aws, kp_match_aws, we);
}

/* 1 if the statement applies to this request. */
static int
kp_applies(json_t *st, const struct kms_policy_who *who, const char *action,
    const char *resource, int deny, int vars)
{
	struct kp_who_effect we = { who, deny };
	json_t *v;
	int m;

	if ((v = json_object_get(st, "Principal")) != NULL)
		m = kp_principal_matches(v, &we);
	else
		m = !kp_principal_matches(json_object_get(st, "NotPrincipal"),
		    &we);
	if (!m)
		return 0;
	if ((v = json_object_get(st, "Action")) != NULL)
		m = kp_any(v, kp_match_action, action);
	else
		m = !kp_any(json_object_get(st, "NotAction"), kp_match_action,
		    action);
	if (!m)
		return 0;
	if ((v = json_object_get(st, "Resource")) != NULL)
		m = kp_any(v, kp_match_resource, resource);
	else
		m = !kp_any(json_object_get(st, "NotResource"),
		    kp_match_resource, resource);
	if (!m)
		return 0;
	/* The identity-policy engine decides the Condition; one it cannot
	 * evaluate fails closed: a Deny applies, an Allow does not. */
	m = policy_condition_eval(json_object_get(st, "Condition"), who->ctx,
	    who->nctx, vars);
	return m < 0 ? deny : m;
}

static int
kp_eval_statement(json_t *st, const struct kms_policy_who *who,
    const char *action, const char *resource, int vars, int *allowed)
{
	const char *effect = json_string_value(json_object_get(st, "Effect"));
	int deny = effect != NULL && strcmp(effect, "Deny") == 0;

	if (!kp_applies(st, who, action, resource, deny, vars))
		return 0;
	if (deny)
		return 1;
	*allowed = 1;
	return 0;
}

int
kms_policy_eval(const struct kms_policy *p, const struct kms_policy_who *who,
    const char *action, const char *resource_arn)
{
	json_t *st, *v;
	size_t i;
	int allowed = 0;

	if (p == NULL || who == NULL || action == NULL || resource_arn == NULL)
		return KMS_POLICY_IMPLICIT_DENY;
	st = json_object_get(p->doc, "Statement");
	if (json_is_object(st)) {
		if (kp_eval_statement(st, who, action, resource_arn, p->vars,
		    &allowed))
			return KMS_POLICY_EXPLICIT_DENY;
	} else {
		json_array_foreach(st, i, v)
			if (kp_eval_statement(v, who, action, resource_arn,
			    p->vars, &allowed))
				return KMS_POLICY_EXPLICIT_DENY;
	}
	return allowed ? KMS_POLICY_ALLOW : KMS_POLICY_IMPLICIT_DENY;
}

int
kms_policy_eval_text(const char *text, const struct kms_policy_who *who,
    const char *action, const char *resource_arn)
{
	struct kms_policy *p = NULL;
	int d;

	if (kms_policy_parse(text, &p, NULL, 0) != 0)
		return KMS_POLICY_IMPLICIT_DENY;
	d = kms_policy_eval(p, who, action, resource_arn);
	kms_policy_free(p);
	return d;
}

char *
kms_policy_default(const char *account_id)
{
	char root[64];
	json_t *o;
	char *s;

	snprintf(root, sizeof(root), "arn:aws:iam::%s:root", account_id);
	o = json_pack("{s:s, s:s, s:[{s:s, s:s, s:{s:s}, s:s, s:s}]}",
	    "Version", "2012-10-17", "Id", "key-default-1", "Statement",
	    "Sid", "Enable IAM User Permissions", "Effect", "Allow",
	    "Principal", "AWS", root, "Action", "kms:*", "Resource", "*");
	if (o == NULL)
		return NULL;
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}
