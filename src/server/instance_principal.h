/* instance_principal: who a managed instance is when it calls portholed.
 * An agent authenticates with its mutual-TLS client certificate and acts
 * as the IAM role of the activation it registered with, the way AWS's
 * instance credentials do: arn:aws:sts::ACCOUNT:assumed-role/ROLE/mi-...
 * Every place that authorises an agent's call (the KMS API, the control
 * and data channels, the instance information it reports) builds the
 * principal here, so they all agree. */
#ifndef PORTHOLE_INSTANCE_PRINCIPAL_H
#define PORTHOLE_INSTANCE_PRINCIPAL_H

#include "server/authz.h"
#include "server/server.h"

/* Fill out for the registered, not deregistered instance instance_id
 * connecting from peer_ip (NULL or "" if unknown): kind
 * PRINCIPAL_INSTANCE, the role's name and ARN, aws:userid
 * "ROLEID:mi-..." when the role exists in IAM (a deleted role leaves it
 * empty and the role's policies then grant nothing), and the request
 * origin (TLS, the server's region). 0, PH_ERR_NOTFOUND if there is no
 * such active instance, PH_ERR_IO / PH_ERR_NOMEM on store failures. */
int instance_principal(struct server *srv, const char *instance_id,
    const char *peer_ip, struct principal *out);

/* The managed-instance ARN (ssm:UpdateInstanceInformation's resource):
 * arn:aws:ssm:REGION:ACCOUNT:managed-instance/mi-... */
void instance_arn(const struct server *srv, const char *instance_id,
    char *out, size_t size);

/* CreateActivation's check: 0 if role (an activation's IamRole, a name
 * with an optional path) is an IAM role whose trust policy lets
 * ssm.amazonaws.com sts:AssumeRole it; PH_ERR_NOTFOUND if not (AWS's
 * "Nonexistent role or missing ssm service principal in trust policy"),
 * another error on store failures. arn gets the role's ARN either way. */
int instance_role_usable(struct server *srv, const char *role, char *arn,
    size_t arnlen);

#endif
