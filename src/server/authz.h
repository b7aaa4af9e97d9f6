/* authz: may a principal perform an action on a resource? Every API action
 * asks here exactly where AWS evaluates IAM policies, so the policy engine
 * replaces only authz_check. */
#ifndef PORTHOLE_AUTHZ_H
#define PORTHOLE_AUTHZ_H

#include "server/server.h"

/* Who signed a request (an IAM user of the store). */
struct principal {
	char name[65];            /* IAM user name: at most 64 characters */
	char arn[256];            /* arn:aws:iam::ACCOUNT:user/NAME */
	char access_key_id[21];
	int is_root_admin;        /* the user portholed init created */
	int active;
};

/* 0 if allowed, PH_ERR_DENIED otherwise. action is "service:Action", e.g.
 * "ssm:StartSession"; resource_arn is the resource's ARN or "*". */
int authz_check(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn);

#endif
