/* kms_policy: KMS key policies, the resource-based half of KMS's access
 * decision. A policy is an IAM policy document whose statements name
 * principals; kms_policy_parse checks its shape and kms_policy_eval
 * decides one request with IAM's logic (an explicit Deny wins, then an
 * Allow, else the implicit deny). A statement naming the account
 * ("arn:aws:iam::ACCOUNT:root" or "ACCOUNT") hands the decision to the
 * account's IAM policies: the caller passes in what IAM said. Written with
 * no dependency on KMS's store, so the IAM policy engine can take the
 * evaluation over. */
#ifndef PORTHOLE_KMS_POLICY_H
#define PORTHOLE_KMS_POLICY_H

#include <stddef.h>

#include "server/policy.h"

#define KMS_POLICY_MAX 32768          /* bytes: AWS's key policy limit */

struct kms_policy;

enum kms_policy_decision {
	KMS_POLICY_IMPLICIT_DENY = 0,
	KMS_POLICY_ALLOW = 1,
	KMS_POLICY_EXPLICIT_DENY = 2,
};

/* The caller of one request. */
struct kms_policy_who {
	const char *arn;          /* user ARN or assumed-role session ARN */
	const char *role_arn;     /* the session's role ARN, or NULL */
	const char *account_id;   /* the caller's account */
	int iam_allows;           /* the account's IAM allows the request */
	/* The request context Conditions are evaluated against
	 * (kms:EncryptionContext:KEY, kms:CallerAccount, aws:PrincipalArn,
	 * ...); none when nctx is 0. */
	const struct policy_ctx *ctx;
	size_t nctx;
};

/* Parse and check a policy document. On failure PH_ERR_INVALID and an
 * explanation in msg (MalformedPolicyDocumentException's message). */
int kms_policy_parse(const char *text, struct kms_policy **out, char *msg,
    size_t msgsize);
void kms_policy_free(struct kms_policy *p);

/* The decision for action ("kms:Decrypt") on resource_arn (the key's
 * ARN). A statement's Condition is evaluated by the identity-policy
 * engine (policy_condition_eval) against who->ctx; one that cannot be
 * evaluated fails closed (an Allow does not apply, a Deny does). */
int kms_policy_eval(const struct kms_policy *p,
    const struct kms_policy_who *who, const char *action,
    const char *resource_arn);

/* Parse and evaluate in one call; an unparsable policy allows nothing. */
int kms_policy_eval_text(const char *text, const struct kms_policy_who *who,
    const char *action, const char *resource_arn);

/* AWS's default key policy (the account's IAM decides), as a new string
 * to free; NULL when out of memory. */
char *kms_policy_default(const char *account_id);

/* 1 if the glob pattern (with * and ?) matches s; case-insensitive when
 * nocase (IAM action names). */
int kms_policy_glob(const char *pattern, const char *s, int nocase);

#endif
