/* fuzz_policy: IAM policy parsing and evaluation (src/server/policy.c).
 * Input: the policy text, bounded by its length, parsed as an identity
 * policy (policy_parse) and as a resource and a trust policy
 * (policy_parse_ex). A refusal must say why and give nothing; a policy
 * that parses is evaluated for a few requests whose context holds every
 * kind of condition key and whose callers are users, role sessions,
 * services and nobody, and the decision must not depend on policy order,
 * must survive a duplicate and must lose to a deny-everything policy. */
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

static const char *const who_user[] = { "arn:aws:iam::" ACCT ":user/alice",
    ACCT };
static const char *const who_session[] = {
    "arn:aws:sts::" ACCT ":assumed-role/deploy/alice",
    "arn:aws:iam::" ACCT ":role/ops/deploy", "arn:aws:iam::" ACCT ":root",
    ACCT };
static const char *const who_service[] = { "ssm.amazonaws.com" };
static const char *const who_odd[] = { "arn:aws:iam::123456789012", "",
    "*", "arn:aws:sts::210987654321:federated-user/x" };

static const struct policy_request reqs[] = {
	{ "ssm:StartSession", "arn:aws:ec2:us-east-1:" ACCT
	    ":instance/i-0123456789abcdef0", ctx_a, 8, NULL, who_user, 2 },
	{ "ssm:TerminateSession", "arn:aws:ssm:us-east-1:" ACCT
	    ":session/alice-0a1b2c", ctx_a, 8, "AWS", who_session, 4 },
	{ "SSM:resumesession", "arn:aws:ssm:us-east-1:" ACCT
	    ":session/${aws:username}-*", ctx_b, 4, NULL, NULL, 0 },
	{ "s3:GetObject", "arn:aws:s3:::bucket/a*?\\b", NULL, 0, NULL,
	    who_odd, 4 },
	{ "sts:AssumeRole", "arn:aws:iam::" ACCT ":role/ops/deploy", ctx_a, 8,
	    NULL, who_session, 4 },
	{ "sts:AssumeRole", "arn:aws:iam::" ACCT ":role/ops/deploy", NULL, 0,
	    "Service", who_service, 1 },
};

static const unsigned parse_flags[] = { 0, POLICY_F_PRINCIPAL,
    POLICY_F_TRUST };

static void
one(const uint8_t *data, size_t size, unsigned flags,
    const struct policy *deny)
{
	struct policy *p = NULL;
	const struct policy *set[3];
	char why[256];
	size_t i;
	int d;

	why[0] = '\0';
	if (policy_parse_ex((const char *)data, size, flags, &p, why,
	    sizeof(why)) != 0) {
		if (p != NULL || why[0] == '\0')
			abort();	/* a refusal says why, gives nothing */
		return;
	}
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
	policy_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = NULL, *deny = NULL;
	char why[256];
	size_t i;

	/* policy_parse is policy_parse_ex with no flags. */
	why[0] = '\0';
	if (policy_parse((const char *)data, size, &p, why, sizeof(why)) !=
	    0) {
		if (p != NULL || why[0] == '\0')
			abort();
	}
	policy_free(p);
	if (policy_parse(deny_all, sizeof(deny_all) - 1, &deny, why,
	    sizeof(why)) != 0)
		abort();
	for (i = 0; i < sizeof(parse_flags) / sizeof(parse_flags[0]); i++)
		one(data, size, parse_flags[i], deny);
	policy_free(deny);
	return 0;
}
