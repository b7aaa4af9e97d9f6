/* fuzz_policy: IAM identity policy parsing and evaluation
 * (src/server/policy.c). Input: the policy text, bounded by its length.
 * A refusal must say why; a policy that parses is evaluated for a few
 * requests whose context holds every kind of condition key, and the
 * decision must not depend on policy order, must survive a duplicate and
 * must lose to a deny-everything policy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/policy.h"

#define ACCT "123456789012"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char deny_all[] = "{\"Version\":\"2012-10-17\",\"Statement\":"
    "{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}}";

static const char *const user[] = { "alice" };
static const char *const tag[] = { "stage" };
static const char *const now[] = { "2026-12-04T22:30:00Z" };
static const char *const ip4[] = { "203.0.113.7" };
static const char *const ip6[] = { "2001:db8::7" };
static const char *const yes[] = { "true" };
static const char *const num[] = { "42" };
static const char *const keys[] = { "env", "team", "*", "${aws:username}" };
static const char *const arn[] = { "arn:aws:iam::" ACCT ":role/porthole" };

static const struct policy_ctx ctx_a[] = {
	{ "aws:username", user, 1 },
	{ "ssm:resourceTag/Environment", tag, 1 },
	{ "aws:CurrentTime", now, 1 },
	{ "aws:SourceIp", ip4, 1 },
	{ "aws:SecureTransport", yes, 1 },
	{ "ssm:count", num, 1 },
	{ "aws:TagKeys", keys, 4 },
	{ "aws:PrincipalArn", arn, 1 },
};

static const struct policy_ctx ctx_b[] = {
	{ "AWS:USERNAME", user, 1 },
	{ "aws:SourceIp", ip6, 1 },
	{ "aws:CurrentTime", num, 1 },
	{ "aws:TagKeys", keys, 0 },
};

static const struct policy_request reqs[] = {
	{ "ssm:StartSession", "arn:aws:ec2:us-east-1:" ACCT
	    ":instance/i-0123456789abcdef0", ctx_a, 8 },
	{ "ssm:TerminateSession", "arn:aws:ssm:us-east-1:" ACCT
	    ":session/alice-0a1b2c", ctx_a, 8 },
	{ "SSM:resumesession", "arn:aws:ssm:us-east-1:" ACCT
	    ":session/${aws:username}-*", ctx_b, 4 },
	{ "s3:GetObject", "arn:aws:s3:::bucket/a*?\\b", NULL, 0 },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = NULL, *deny = NULL;
	const struct policy *set[3];
	char why[256];
	size_t i;
	int d;

	why[0] = '\0';
	if (policy_parse((const char *)data, size, &p, why, sizeof(why)) !=
	    0) {
		if (p != NULL || why[0] == '\0')
			abort();	/* a refusal says why, gives nothing */
		return 0;
	}
	if (policy_parse(deny_all, sizeof(deny_all) - 1, &deny, why,
	    sizeof(why)) != 0)
		abort();
	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		set[0] = p;
		d = policy_evaluate(set, 1, &reqs[i]);
		if (d != POLICY_ALLOW && d != POLICY_DENY_IMPLICIT &&
		    d != POLICY_DENY_EXPLICIT)
			abort();
		set[1] = p;
		if (policy_evaluate(set, 2, &reqs[i]) != d)
			abort();	/* a duplicate changes nothing */
		set[1] = deny;
		if (policy_evaluate(set, 2, &reqs[i]) != POLICY_DENY_EXPLICIT)
			abort();	/* an explicit deny wins */
		set[0] = deny;
		set[1] = NULL;
		set[2] = p;
		if (policy_evaluate(set, 3, &reqs[i]) != POLICY_DENY_EXPLICIT)
			abort();
	}
	policy_free(deny);
	policy_free(p);
	return 0;
}
