/* authz: until the policy engine exists only the root admin (the IAM user
 * portholed init creates) may do anything; a managed instance may ask for
 * KMS Decrypt and DescribeKey (what its encrypted sessions need); every
 * other principal is denied, so nothing is allowed by accident. */
#include "server/authz.h"

#include <string.h>

#include "common/err.h"
#include "common/log.h"

int
authz_check(struct server *srv, const struct principal *p,
    const char *action, const char *resource_arn)
{
	(void)srv;
	if (p != NULL && p->active && p->is_root_admin && !p->is_instance)
		return 0;
	if (p != NULL && p->active && p->is_instance &&
	    (strcmp(action, "kms:Decrypt") == 0 ||
	    strcmp(action, "kms:DescribeKey") == 0))
		return 0;
	log_info("event=authz_deny principal=%s action=%s resource=%s",
	    p != NULL ? p->arn : "-", action, resource_arn);
	return PH_ERR_DENIED;
}
