/* authz: until the policy engine exists only the root admin (the IAM user
 * portholed init creates) may do anything; every other principal is
 * denied, so nothing is allowed by accident. */
#include "server/authz.h"

#include "common/err.h"
#include "common/log.h"

int
authz_check(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn)
{
	(void)srv;
	if (p != NULL && p->active && p->is_root_admin)
		return 0;
	log_info("event=authz_deny principal=%s action=%s resource=%s",
	    p != NULL ? p->arn : "-", action, resource_arn);
	return PH_ERR_DENIED;
}
