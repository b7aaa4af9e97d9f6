/* instance_principal: the principal of a managed instance, built from its
 * store record and the IAM role of its activation. */
#include "server/instance_principal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "server/policy.h"
#include "server/store.h"
#include "server/store_iam.h"

void
instance_arn(const struct server *srv, const char *instance_id, char *out,
    size_t size)
{
	snprintf(out, size, "arn:aws:ssm:%s:%s:managed-instance/%s",
	    srv->region, srv->account_id, instance_id);
}

/* The role's name, id and ARN from IAM; a role that no longer exists
 * keeps the name the activation gave (and no id). */
static int
ip_role(struct server *srv, const char *iam_role, struct principal *p)
{
	struct iam_role_rec *r;
	const char *name;
	int rc;

	/* An activation's IamRole may carry a path: the session ARN names
	 * the role alone. */
	name = strrchr(iam_role, '/');
	name = name != NULL ? name + 1 : iam_role;
	snprintf(p->role_name, sizeof(p->role_name), "%s", name);
	snprintf(p->role_arn, sizeof(p->role_arn), "arn:aws:iam::%s:role/%s",
	    srv->account_id, iam_role);
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return PH_ERR_NOMEM;
	rc = store_iam_role_get(srv->store, name, r);
	if (rc == 0 && (strlen(r->name) >= sizeof(p->role_name) ||
	    strlen(r->arn) >= sizeof(p->role_arn)))
		rc = PH_ERR_TOOBIG;	/* IAM's limits rule this out */
	if (rc == 0) {
		memcpy(p->role_name, r->name, strlen(r->name) + 1);
		memcpy(p->role_arn, r->arn, strlen(r->arn) + 1);
		snprintf(p->user_id, sizeof(p->user_id), "%.32s:%s",
		    r->role_id, p->instance_id);
	} else if (rc == PH_ERR_NOTFOUND)
		rc = 0;
	iam_role_rec_clear(r);
	free(r);
	return rc;
}

int
instance_principal(struct server *srv, const char *instance_id,
    const char *peer_ip, struct principal *out)
{
	struct instance_rec *in;
	int rc;

	memset(out, 0, sizeof(*out));
	if (instance_id == NULL || strlen(instance_id) >=
	    sizeof(out->instance_id))
		return PH_ERR_NOTFOUND;
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return PH_ERR_NOMEM;
	rc = store_instance_get(srv->store, instance_id, in);
	if (rc == 0 && in->deregistered)
		rc = PH_ERR_NOTFOUND;
	if (rc != 0)
		goto done;
	out->kind = PRINCIPAL_INSTANCE;
	out->is_instance = 1;
	out->active = 1;
	snprintf(out->instance_id, sizeof(out->instance_id), "%s", in->id);
	snprintf(out->name, sizeof(out->name), "%s", in->id);
	out->origin.secure_transport = 1;
	snprintf(out->origin.region, sizeof(out->origin.region), "%s",
	    srv->region);
	if (peer_ip != NULL)
		snprintf(out->origin.source_ip, sizeof(out->origin.source_ip),
		    "%s", peer_ip);
	if (in->iam_role[0] == '\0') {
		/* Registered before activations named roles: the instance
		 * itself, which no identity policy names. */
		instance_arn(srv, in->id, out->arn, sizeof(out->arn));
		goto done;
	}
	if ((rc = ip_role(srv, in->iam_role, out)) != 0)
		goto done;
	snprintf(out->arn, sizeof(out->arn),
	    "arn:aws:sts::%s:assumed-role/%s/%s", srv->account_id,
	    out->role_name, in->id);
done:
	free(in);
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

#define IP_SSM_SERVICE "ssm.amazonaws.com"

/* Does v (a string or a list of strings) hold a value fn accepts? */
static int
ip_any(json_t *v, int (*fn)(const char *))
{
	size_t i;
	json_t *e;

	if (json_is_string(v))
		return fn(json_string_value(v));
	json_array_foreach(v, i, e)
		if (json_is_string(e) && fn(json_string_value(e)))
			return 1;
	return 0;
}

static int
ip_is_ssm(const char *s)
{
	return strcmp(s, IP_SSM_SERVICE) == 0;
}

static int
ip_is_assume(const char *s)
{
	return policy_glob(s, "sts:AssumeRole", 1) == 1;
}

/* An unconditional Allow of sts:AssumeRole to the SSM service. */
static int
ip_trusts_ssm(json_t *st)
{
	json_t *pr;

	if (!json_is_object(st) || !json_is_string(json_object_get(st,
	    "Effect")) || strcmp(json_string_value(json_object_get(st,
	    "Effect")), "Allow") != 0 || json_object_get(st,
	    "Condition") != NULL)
		return 0;
	pr = json_object_get(st, "Principal");
	if (!json_is_object(pr) || !ip_any(json_object_get(pr, "Service"),
	    ip_is_ssm))
		return 0;
	return ip_any(json_object_get(st, "Action"), ip_is_assume);
}

int
instance_role_usable(struct server *srv, const char *role, char *arn,
    size_t arnlen)
{
	struct iam_role_rec *r;
	const char *name;
	json_t *doc = NULL, *st, *e;
	size_t i;
	int rc, ok = 0;

	snprintf(arn, arnlen, "arn:aws:iam::%s:role/%s", srv->account_id,
	    role);
	name = strrchr(role, '/');
	name = name != NULL ? name + 1 : role;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return PH_ERR_NOMEM;
	if ((rc = store_iam_role_get(srv->store, name, r)) != 0)
		goto done;
	if (r->trust_policy != NULL)
		doc = json_loads(r->trust_policy, 0, NULL);
	st = json_object_get(doc, "Statement");
	if (json_is_object(st))
		ok = ip_trusts_ssm(st);
	json_array_foreach(st, i, e)
		if (!ok)
			ok = ip_trusts_ssm(e);
	rc = ok ? 0 : PH_ERR_NOTFOUND;
done:
	json_decref(doc);
	iam_role_rec_clear(r);
	free(r);
	return rc;
}
