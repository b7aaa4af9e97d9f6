/* api_iam: IAM's actions over store_iam. Inputs are checked against
 * botocore's iam model (lengths, patterns, ranges: ValidationError);
 * entity names are resolved case-insensitively and written back as
 * stored; errors carry IAM's codes (NoSuchEntity 404, EntityAlreadyExists
 * and DeleteConflict 409, LimitExceeded 409, MalformedPolicyDocument
 * 400). */
#include "server/api_iam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "server/api_json.h"
#include "server/authz.h"
#include "server/store.h"
#include "server/store_iam.h"

struct iam_action {
	const char *name;
	api_query_action_fn fn;
};

/* ---- helpers ------------------------------------------------------------ */

static int
iam_no_entity(struct api_error *err, const char *kind, const char *name)
{
	return api_error_set(err, 404, "NoSuchEntity",
	    "The %s with name %s cannot be found.", kind, name);
}

static int
iam_store_error(struct api_error *err, const char *op, int rc)
{
	return api_error_internal(err, op, rc);
}

/* ARN of an IAM entity: arn:aws:iam::ACCOUNT:KIND/PATH-less-slash/NAME. */
static void
iam_arn(const struct api_call *c, const char *kind, const char *path,
    const char *name, char *out, size_t size)
{
	snprintf(out, size, "arn:aws:iam::%s:%s%s%s", c->srv->account_id,
	    kind, path != NULL && path[0] != '\0' ? path : "/", name);
}

static void
iam_write_user(struct api_xml *x, const char *element,
    const struct iam_user_rec *u)
{
	api_xml_open(x, element);
	api_xml_text(x, "Path", u->path);
	api_xml_text(x, "UserName", u->name);
	api_xml_text(x, "UserId", u->user_id);
	api_xml_text(x, "Arn", u->arn);
	api_xml_time(x, "CreateDate", u->created_ms);
	if (u->password_last_used_ms > 0)
		api_xml_time(x, "PasswordLastUsed", u->password_last_used_ms);
	api_xml_close(x);
}

/* ---- users -------------------------------------------------------------- */

static int
iam_get_user(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	const struct principal *p = c->principal;
	struct iam_user_rec u;
	char arn[IAM_ARN_SIZE];
	const char *name;
	int rc;

	name = api_form_get(in, "UserName");
	if (name == NULL || name[0] == '\0') {
		/* The caller itself; only users have one. */
		if (p == NULL || p->kind != PRINCIPAL_USER)
			return api_error_set(err, 400, "ValidationError",
			    "Must specify userName when calling with "
			    "non-User credentials");
		name = p->name;
	}
	if ((rc = store_iam_user_get(c->srv->store, name, &u)) != 0) {
		if (rc == PH_ERR_NOTFOUND) {
			iam_arn(c, "user", "/", name, arn, sizeof(arn));
			if ((rc = api_authorize(c, "iam:GetUser", arn,
			    err)) != 0)
				return rc;
			return iam_no_entity(err, "user", name);
		}
		return iam_store_error(err, "iam_get_user", rc);
	}
	if ((rc = api_authorize(c, "iam:GetUser", u.arn, err)) != 0)
		return rc;
	iam_write_user(out, "User", &u);
	return 0;
}

static const struct iam_action iam_actions[] = {
	{ "GetUser", iam_get_user },
};

int
api_iam_dispatch(const struct api_call *c, const char *action,
    const struct api_form *in, struct api_xml *out, struct api_error *err)
{
	size_t i;

	for (i = 0; i < sizeof(iam_actions) / sizeof(iam_actions[0]); i++)
		if (strcmp(action, iam_actions[i].name) == 0)
			return iam_actions[i].fn(c, in, out, err);
	return api_error_set(err, 400, "InvalidAction",
	    "Could not find operation %s for version 2010-05-08.", action);
}
