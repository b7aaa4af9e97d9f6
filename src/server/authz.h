/* authz: may a principal perform an action on a resource? Every API action
 * asks here exactly where AWS evaluates IAM policies, so the policy engine
 * replaces only authz_check. */
#ifndef PORTHOLE_AUTHZ_H
#define PORTHOLE_AUTHZ_H

#include <stddef.h>
#include <stdint.h>

#include "server/policy.h"
#include "server/server.h"

/* Who made a request: an IAM user of the store (SigV4 with its access
 * key), a role session (SigV4 with temporary credentials from STS
 * AssumeRole, X-Amz-Security-Token), or a managed instance (its mutual-TLS
 * client certificate) acting as the role of the activation it registered
 * with, as AWS's instance credentials do. */
enum principal_kind {
	PRINCIPAL_USER = 0,
	PRINCIPAL_ASSUMED_ROLE = 1,   /* a role session from AssumeRole */
	PRINCIPAL_INSTANCE = 2,       /* a managed instance as its role */
};

/* Where the request came from: the request-level condition keys
 * (aws:SourceIp, aws:SecureTransport, aws:RequestedRegion). */
struct request_origin {
	char source_ip[64];        /* "" if unknown */
	int secure_transport;      /* 1: TLS */
	char region[64];           /* the SigV4 scope's region */
};

struct principal {
	int kind;                 /* enum principal_kind */
	/* IAM user name (at most 64 characters); for a role session the
	 * session name, for an instance its id. aws:username exists only
	 * for PRINCIPAL_USER. */
	char name[65];
	/* aws:userid: a user's unique id (AIDA...); for a role session
	 * "ROLEID:SESSIONNAME" (AROA...:name), for an instance
	 * "ROLEID:mi-..." */
	char user_id[160];
	/* arn:aws:iam::ACCOUNT:user/PATHNAME, or for a role session and an
	 * instance arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION */
	char arn[256];
	char access_key_id[21];
	int is_root_admin;        /* the user portholed init created */
	int active;
	int is_instance;          /* kind == PRINCIPAL_INSTANCE */
	char instance_id[21];     /* mi-... when is_instance */
	char role_name[65];       /* the role of a role session or instance */
	char role_arn[256];       /* arn:aws:iam::ACCOUNT:role/PATHROLE, or "" */
	int64_t expiry_ms;        /* role session credentials; 0: none */
	struct request_origin origin;
};

/* The policy decision point. The root admin (the IAM user portholed init
 * created) may do anything; every other principal gets what its identity
 * policies say (a user's own and its groups', a role session's and an
 * instance's: its role's; a role session with session policies only
 * what those allow too), evaluated by policy.c against a request
 * context of the global condition keys (aws:username, aws:userid,
 * aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType,
 * aws:PrincipalTag/..., aws:CurrentTime, aws:EpochTime, aws:SourceIp,
 * aws:SecureTransport, aws:RequestedRegion), the resource's tags
 * (aws:ResourceTag/... and ssm:resourceTag/... for a managed instance or a
 * document ARN) and ssm:SessionDocumentAccessCheck on ssm:StartSession.
 * Parsed policies and principal tags are cached per principal until
 * store_authz_generation changes; every request is evaluated afresh.
 * The cache is unlocked: call from the event loop's thread only.
 *
 * action is "service:Action", e.g. "ssm:StartSession"; resource_arn is
 * the resource's ARN or "*". authz_check: 0 if allowed, PH_ERR_DENIED
 * otherwise. */
int authz_check(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn);

/* The same with n more condition keys (kms:EncryptionContext:...,
 * kms:CallerAccount, kms:ViaService); they are added after the global
 * keys, so a key given here does not replace one authz computes, except
 * ssm:SessionDocumentAccessCheck ("true" on StartSession unless given:
 * "false" when the request named no document, as AWS). */
int authz_check_ctx(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn,
    const struct policy_ctx *extra, size_t nextra);

/* The decision itself (enum policy_decision: POLICY_ALLOW,
 * POLICY_DENY_IMPLICIT, POLICY_DENY_EXPLICIT), for messages that say
 * which deny it was. Internal failures are explicit denies. */
int authz_decide(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn,
    const struct policy_ctx *extra, size_t nextra);

/* Which policies made a denial, for its message: a role session's
 * session policies (AssumeRole's Policy and PolicyArns, intersected with
 * its role's) or the identity policies. */
enum authz_source {
	AUTHZ_SRC_IDENTITY = 0,
	AUTHZ_SRC_SESSION = 1,
};

/* authz_decide, and in *source (optional) which policies denied. */
int authz_decide_src(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn,
    const struct policy_ctx *extra, size_t nextra, int *source);

/* Drop srv's decision cache (at shutdown). */
void authz_free(struct server *srv);

/* Statistics of srv's cache, for tests: loads (misses) since start. */
uint64_t authz_cache_loads(const struct server *srv);

#endif
