/* authz: may a principal perform an action on a resource? Every API action
 * asks here exactly where AWS evaluates IAM policies, so the policy engine
 * replaces only authz_check. */
#ifndef PORTHOLE_AUTHZ_H
#define PORTHOLE_AUTHZ_H

#include <stdint.h>

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

/* 0 if allowed, PH_ERR_DENIED otherwise. action is "service:Action", e.g.
 * "ssm:StartSession"; resource_arn is the resource's ARN or "*". An
 * instance principal is allowed kms:Decrypt and kms:DescribeKey only (the
 * key policy still decides per key). */
int authz_check(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn);

#endif
