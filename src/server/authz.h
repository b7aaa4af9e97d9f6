/* authz: may a principal perform an action on a resource? Every API action
 * asks here exactly where AWS evaluates IAM policies, so the policy engine
 * replaces only authz_check. */
#ifndef PORTHOLE_AUTHZ_H
#define PORTHOLE_AUTHZ_H

#include "server/server.h"

/* Who made a request: an IAM user of the store (SigV4), or a managed
 * instance (its mutual-TLS client certificate) acting as the role of the
 * activation it registered with, as AWS's instance credentials do. */
struct principal {
	char name[65];            /* IAM user name: at most 64 characters */
	/* arn:aws:iam::ACCOUNT:user/NAME, or for an instance
	 * arn:aws:sts::ACCOUNT:assumed-role/ROLE/ID */
	char arn[256];
	char access_key_id[21];
	int is_root_admin;        /* the user portholed init created */
	int active;
	int is_instance;          /* a managed instance, not a user */
	char instance_id[21];     /* mi-... when is_instance */
	char role_arn[256];       /* arn:aws:iam::ACCOUNT:role/ROLE, or "" */
};

/* 0 if allowed, PH_ERR_DENIED otherwise. action is "service:Action", e.g.
 * "ssm:StartSession"; resource_arn is the resource's ARN or "*". An
 * instance principal is allowed kms:Decrypt and kms:DescribeKey only (the
 * key policy still decides per key). */
int authz_check(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn);

#endif
