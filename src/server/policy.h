/* policy: IAM JSON policies. policy_parse checks an identity policy the
 * way IAM's MalformedPolicyDocument does; policy_parse_ex also checks
 * resource policies and role trust policies, whose statements name a
 * Principal or NotPrincipal. policy_evaluate decides one request against
 * a set of policies with IAM's logic: a matching Deny wins, else a
 * matching Allow, else the implicit deny. Actions, resources, principals,
 * policy variables and condition operators follow the IAM JSON policy
 * reference. */
#ifndef PORTHOLE_POLICY_H
#define PORTHOLE_POLICY_H

#include <stddef.h>

#include <jansson.h>

#define POLICY_MAX 65536              /* bytes of one policy document */

struct policy;

enum policy_decision {
	POLICY_DENY_IMPLICIT = 0,
	POLICY_ALLOW = 1,
	POLICY_DENY_EXPLICIT = 2,
};

/* One condition key of the request context ("aws:username",
 * "ssm:resourceTag/Environment"); names compare case-insensitively. A key
 * with no values counts as absent; a NULL value makes the evaluation an
 * explicit deny. */
struct policy_ctx {
	const char *key;
	const char *const *values;
	size_t nvalues;
};

struct policy_request {
	const char *action;               /* "ssm:StartSession" */
	const char *resource;             /* the resource ARN */
	const struct policy_ctx *ctx;
	size_t nctx;
	/* Who calls, for statements with Principal / NotPrincipal (resource
	 * and trust policies); identity policies ignore it. principal_type
	 * is "AWS" when NULL, else "Service", "Federated" or
	 * "CanonicalUser". For "AWS" the identifiers are the caller's ARN
	 * and, for a role session or an instance, its role's ARN
	 * (arn:aws:iam::ACCT:role/PATH/NAME); the caller's account id or
	 * arn:aws:iam::ACCT:root may be listed too. A policy's "*" or
	 * {"AWS": "*"} matches every caller (anonymous too); an account id
	 * or its :root ARN every identifier of that account; anything else
	 * one identifier exactly (Service names ignore case). */
	const char *principal_type;
	const char *const *principals;
	size_t nprincipals;
};

/* Parse and check a document of n bytes. On failure PH_ERR_INVALID (or
 * PH_ERR_TOOBIG, PH_ERR_NOMEM) and the reason in why. */
int policy_parse(const char *json, size_t n, struct policy **out, char *why,
    size_t whylen);

/* Flags of policy_parse_ex. */
#define POLICY_F_PRINCIPAL 0x1  /* resource policy: every statement names
				   Principal or NotPrincipal */
#define POLICY_F_TRUST 0x2      /* a role's trust policy (implies
				   POLICY_F_PRINCIPAL): no Resource, only
				   STS AssumeRole actions, no Allow with
				   NotPrincipal */
/* policy_parse with flags; flags 0 is policy_parse (Principal refused). */
int policy_parse_ex(const char *json, size_t n, unsigned flags,
    struct policy **out, char *why, size_t whylen);
void policy_free(struct policy *p);

/* The decision for req over n policies (NULL entries are skipped). An
 * internal failure (memory, a wildcard match too slow to finish) is an
 * explicit deny. */
int policy_evaluate(const struct policy *const *policies, size_t n,
    const struct policy_request *req);

/* Shared with kms_policy.c. A glob with * and ? (nocase for actions):
 * 1 match, 0 none, -1 too slow to decide (treat as an error). */
int policy_glob(const char *pattern, const char *s, int nocase);
/* Statement sidx's element `what` is a string or a non-empty list of at
 * most 1024 non-empty strings; else PH_ERR_INVALID with why filled in. */
int policy_check_strings(json_t *v, const char *what, size_t sidx,
    char *why, size_t len);

/* For resource policies evaluated elsewhere (KMS key policies): does one
 * statement's Condition block (NULL: none) hold for the request context
 * ctx[0..nctx)? Same operators, keys and variables as policy_evaluate;
 * vars: expand ${...} (the document's Version is 2012-10-17). 1 holds, 0
 * does not, -1 if the block is malformed or the evaluation failed (a
 * NULL value, memory, a glob too slow): callers fail closed. */
int policy_condition_eval(json_t *cond, const struct policy_ctx *ctx,
    size_t nctx, int vars);

#endif
