/* api_sts: STS's GetCallerIdentity and AssumeRole (botocore's
 * sts/2011-06-15 model), and the principal of the temporary credentials
 * AssumeRole issues. A role may be assumed when its trust policy allows
 * the caller sts:AssumeRole and the caller's identity policies allow
 * sts:AssumeRole on the role's ARN; the session then acts as the role
 * (authz.c), named arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION. Session
 * policies (Policy, PolicyArns) are kept with the credentials; authz
 * allows the session only what both they and the role's policies allow. */
#include "server/api_sts.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/err.h"
#include "common/log.h"
#include "server/api_json.h"
#include "server/authz.h"
#include "server/policy.h"
#include "server/store_iam.h"
#include "server/store_sts.h"

#define STS_DURATION_MIN 900
#define STS_DURATION_MAX 43200
#define STS_DURATION_DEFAULT 3600
#define STS_CHAINED_MAX 3600          /* a role session assuming a role */
/* Session policies: the inline document's characters and the managed
 * ARNs' together (AWS's plaintext limit; its packed one is not
 * reproduced). */
#define STS_POLICY_MAX 2048
#define STS_POLICY_ARNS_MAX 10
#define STS_TAGS_MAX 50
/* Request keys, the principal's tags and the session tags. */
#define STS_CTX_MAX (20 + 2 * STS_TAGS_MAX)

/* ---- Authentication of temporary credentials. */

int
api_sts_temporary(const char *akid)
{
	return akid != NULL && strncmp(akid, "ASIA", 4) == 0;
}

int
api_sts_secret(struct server *srv, const char *akid, char *secret,
    size_t size)
{
	struct sts_cred cred;
	int rc;

	if (secret != NULL && size > 0)
		secret[0] = '\0';
	if (!api_sts_temporary(akid) || secret == NULL)
		return PH_ERR_NOTFOUND;
	if ((rc = store_sts_get(srv->store, akid, &cred)) != 0)
		return PH_ERR_NOTFOUND;
	if (strlen(cred.secret) >= size)
		rc = PH_ERR_NOTFOUND;
	else
		memcpy(secret, cred.secret, strlen(cred.secret) + 1);
	OPENSSL_cleanse(&cred, sizeof(cred));
	return rc;
}

/* The ARN of a role session: the role's name without its path. */
static void
sts_session_arn(const char *account, const char *role, const char *session,
    char *out, size_t size)
{
	snprintf(out, size, "arn:aws:sts::%s:assumed-role/%s/%s", account,
	    role, session);
}

/* Temporary credentials of an IAM user (the web console's): the
 * principal is the user itself, as with GetSessionToken's credentials,
 * so they authorise exactly as the user does. Deleting the user ends
 * them; a new user of that name does not inherit them. */
static int
sts_user_principal(struct server *srv, const char *akid,
    const struct sts_cred *cred, struct principal *p)
{
	struct iam_user_rec u;
	int rc;

	rc = store_iam_user_get(srv->store, cred->user_name, &u);
	if (rc == PH_ERR_NOTFOUND || (rc == 0 &&
	    u.created_ms > cred->created_ms)) {
		log_info("event=sts_denied akid=%s reason=\"user %s is gone\"",
		    akid, cred->user_name);
		return PH_ERR_DENIED;
	}
	if (rc != 0)
		return rc;
	if (strlen(u.name) >= sizeof(p->name) ||
	    strlen(u.arn) >= sizeof(p->arn))
		return PH_ERR_DENIED;
	p->kind = PRINCIPAL_USER;
	p->active = 1;
	memcpy(p->name, u.name, strlen(u.name) + 1);
	memcpy(p->arn, u.arn, strlen(u.arn) + 1);
	snprintf(p->user_id, sizeof(p->user_id), "%s", u.user_id);
	snprintf(p->access_key_id, sizeof(p->access_key_id), "%s", akid);
	p->is_root_admin = u.is_root_admin;
	p->expiry_ms = cred->expiry_ms;
	return 0;
}

int
api_sts_principal(struct server *srv, const char *akid, const char *token,
    int64_t now_ms, struct principal *p)
{
	struct iam_role_rec role;
	struct sts_cred cred;
	int rc;

	memset(&role, 0, sizeof(role));
	memset(p, 0, sizeof(*p));
	if ((rc = store_sts_check_token(srv->store, akid, token)) != 0)
		return rc == PH_ERR_DENIED ? PH_ERR_DENIED : rc;
	if ((rc = store_sts_get(srv->store, akid, &cred)) != 0)
		return rc == PH_ERR_NOTFOUND ? PH_ERR_DENIED : rc;
	if (now_ms >= cred.expiry_ms) {
		rc = PH_ERR_EXPIRED;
		goto out;
	}
	if (cred.user_name[0] != '\0') {
		rc = sts_user_principal(srv, akid, &cred, p);
		goto out;
	}
	/* Deleting the role ends its sessions; a new role of that name
	 * does not inherit them. */
	rc = store_iam_role_get(srv->store, cred.role_name, &role);
	if (rc == PH_ERR_NOTFOUND || (rc == 0 &&
	    role.created_ms > cred.created_ms)) {
		log_info("event=sts_denied akid=%s reason=\"role %s is gone\"",
		    akid, cred.role_name);
		rc = PH_ERR_DENIED;
		goto out;
	}
	if (rc != 0)
		goto out;
	p->kind = PRINCIPAL_ASSUMED_ROLE;
	p->active = 1;
	snprintf(p->name, sizeof(p->name), "%s", cred.session_name);
	snprintf(p->user_id, sizeof(p->user_id), "%s:%s", role.role_id,
	    cred.session_name);
	sts_session_arn(srv->account_id, role.name, cred.session_name, p->arn,
	    sizeof(p->arn));
	snprintf(p->access_key_id, sizeof(p->access_key_id), "%s", akid);
	/* A principal holds 64-character role names and 255-character ARNs
	 * (a long path would not fit): refuse rather than cut. */
	if (strlen(role.name) >= sizeof(p->role_name) ||
	    strlen(role.arn) >= sizeof(p->role_arn)) {
		memset(p, 0, sizeof(*p));
		rc = PH_ERR_DENIED;
		goto out;
	}
	memcpy(p->role_name, role.name, strlen(role.name) + 1);
	memcpy(p->role_arn, role.arn, strlen(role.arn) + 1);
	p->expiry_ms = cred.expiry_ms;
	rc = 0;
out:
	iam_role_rec_clear(&role);
	OPENSSL_cleanse(&cred, sizeof(cred));
	return rc;
}

/* ---- Validation, worded as STS words it. */

static int
sts_validation(struct api_error *err, const char *value, const char *member,
    const char *constraint)
{
	return api_error_set(err, 400, "ValidationError", "1 validation "
	    "error detected: Value '%.200s' at '%s' failed to satisfy "
	    "constraint: Member must %s", value, member, constraint);
}

/* [\w+=,.@-]* with extra characters allowed. */
static int
sts_name_chars(const char *s, const char *extra)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' &&
		    strchr("+=,.@-", *s) == NULL &&
		    (extra == NULL || strchr(extra, *s) == NULL))
			return 0;
	return 1;
}

/* A name-like member: length min..max and [\w+=,.@-]* (plus extra). */
static int
sts_check_name(struct api_error *err, const char *v, const char *member,
    size_t min, size_t max, const char *extra, const char *pattern)
{
	char what[96];
	size_t n = strlen(v);

	if (n < min) {
		snprintf(what, sizeof(what), "have length greater than or "
		    "equal to %zu", min);
		return sts_validation(err, v, member, what);
	}
	if (n > max) {
		snprintf(what, sizeof(what), "have length less than or equal "
		    "to %zu", max);
		return sts_validation(err, v, member, what);
	}
	if (!sts_name_chars(v, extra)) {
		snprintf(what, sizeof(what), "satisfy regular expression "
		    "pattern: %s", pattern);
		return sts_validation(err, v, member, what);
	}
	return 0;
}

/* arn:aws:iam::ACCOUNT:role/[PATH/]NAME: 0 and the name (and account),
 * or -1. */
static int
sts_parse_role_arn(const char *arn, char account[13], char *name,
    size_t size)
{
	static const char prefix[] = "arn:aws:iam::";
	const char *p, *last;
	size_t i;

	if (strncmp(arn, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	p = arn + sizeof(prefix) - 1;
	for (i = 0; i < 12; i++)
		if (!isdigit((unsigned char)p[i]))
			return -1;
	if (strncmp(p + 12, ":role/", 6) != 0)
		return -1;
	memcpy(account, p, 12);
	account[12] = '\0';
	p += 12 + 6;
	last = strrchr(p, '/');
	last = last != NULL ? last + 1 : p;
	if (*last == '\0' || strlen(last) >= size || strlen(last) > 64 ||
	    !sts_name_chars(last, NULL))
		return -1;
	/* A path: printable characters without spaces. */
	for (; p < last; p++)
		if (!isgraph((unsigned char)*p))
			return -1;
	memcpy(name, last, strlen(last) + 1);
	return 0;
}

/* ---- GetCallerIdentity. */

static int
sts_get_caller_identity(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	const struct principal *p = c->principal;
	struct iam_user_rec *u = NULL;
	struct iam_role_rec role;
	char uid[sizeof(p->user_id)];
	int rc;

	(void)in;
	memset(&role, 0, sizeof(role));
	snprintf(uid, sizeof(uid), "%s", p->user_id);
	/* Ids the authentication path did not fill in: from the store. */
	if (uid[0] == '\0' && p->kind == PRINCIPAL_USER) {
		if ((u = calloc(1, sizeof(*u))) == NULL)
			return api_error_internal(err, "sts_caller", PH_ERR_NOMEM);
		if (store_iam_user_get(c->srv->store, p->name, u) == 0)
			snprintf(uid, sizeof(uid), "%s", u->user_id);
		free(u);
	} else if (uid[0] == '\0' && p->role_name[0] != '\0' &&
	    store_iam_role_get(c->srv->store, p->role_name, &role) == 0)
		snprintf(uid, sizeof(uid), "%s:%s", role.role_id, p->name);
	iam_role_rec_clear(&role);
	if ((rc = api_xml_text(out, "UserId", uid)) != 0 ||
	    (rc = api_xml_text(out, "Account", c->srv->account_id)) != 0 ||
	    (rc = api_xml_text(out, "Arn", p->arn)) != 0)
		return api_error_internal(err, "sts_caller", rc);
	return 0;
}

/* ---- AssumeRole. */

struct sts_assume {
	const char *role_arn;
	const char *session;
	const char *policy;
	char *arns;                  /* JSON array of PolicyArns, or NULL */
	size_t policy_chars;         /* of policy and arns, as AWS counts */
	const char *external_id;
	const char *source_identity;
	int duration;
	size_t ntags;
	const char *tag_keys[STS_TAGS_MAX];
	const char *tag_values[STS_TAGS_MAX];
};

/* A session policy's characters: tab, newline, carriage return and
 * U+0020..U+00FF (in UTF-8, lead bytes C2 and C3). 1 and their count in
 * *n, or 0. */
static int
sts_policy_chars(const char *s, size_t *n)
{
	const unsigned char *u = (const unsigned char *)s;

	*n = 0;
	for (; *u != '\0'; u++) {
		if (*u < 0x20 && *u != '\t' && *u != '\n' && *u != '\r')
			return 0;
		if (*u >= 0x80 && *u <= 0xbf)
			continue;             /* continuation: not counted */
		if (*u >= 0x80 && *u != 0xc2 && *u != 0xc3)
			return 0;
		if (*u >= 0xc2 && (u[1] < 0x80 || u[1] > 0xbf))
			return 0;
		(*n)++;
	}
	return 1;
}

/* A managed policy's ARN: arn:aws:iam::ACCOUNT:policy/... or
 * arn:aws:iam::aws:policy/... */
static int
sts_policy_arn(const char *v)
{
	static const char prefix[] = "arn:aws:iam::";
	size_t i;

	if (strncmp(v, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	v += sizeof(prefix) - 1;
	if (strncmp(v, "aws:", 4) == 0)
		v += 4;
	else {
		for (i = 0; i < 12; i++)
			if (!isdigit((unsigned char)v[i]))
				return 0;
		if (v[12] != ':')
			return 0;
		v += 13;
	}
	if (strncmp(v, "policy/", 7) != 0 || v[7] == '\0')
		return 0;
	for (; *v != '\0'; v++)
		if (!isgraph((unsigned char)*v))
			return 0;
	return 1;
}

static int
sts_assume_parse(const struct api_form *in, struct sts_assume *a,
    struct api_error *err)
{
	const char *v, *k;
	char *end, why[256];
	struct policy *pol = NULL;
	json_t *arns = NULL;
	size_t i, j;
	long d;
	int rc;

	memset(a, 0, sizeof(*a));
	a->duration = STS_DURATION_DEFAULT;
	a->role_arn = api_form_get(in, "RoleArn");
	a->session = api_form_get(in, "RoleSessionName");
	if (a->role_arn == NULL)
		return sts_validation(err, "null", "roleArn", "not be null");
	if (a->session == NULL)
		return sts_validation(err, "null", "roleSessionName",
		    "not be null");
	if (strlen(a->role_arn) < 20)
		return sts_validation(err, a->role_arn, "roleArn", "have "
		    "length greater than or equal to 20");
	if (strlen(a->role_arn) > 2048)
		return sts_validation(err, a->role_arn, "roleArn", "have "
		    "length less than or equal to 2048");
	if ((rc = sts_check_name(err, a->session, "roleSessionName", 2, 64,
	    NULL, "[\\w+=,.@-]*")) != 0)
		return rc;
	if ((v = api_form_get(in, "DurationSeconds")) != NULL) {
		d = strtol(v, &end, 10);
		if (*v == '\0' || *end != '\0' || strlen(v) > 9)
			return sts_validation(err, v, "durationSeconds",
			    "be an integer");
		if (d < STS_DURATION_MIN)
			return sts_validation(err, v, "durationSeconds",
			    "have value greater than or equal to 900");
		if (d > STS_DURATION_MAX)
			return sts_validation(err, v, "durationSeconds",
			    "have value less than or equal to 43200");
		a->duration = (int)d;
	}
	if ((v = api_form_get(in, "ExternalId")) != NULL &&
	    (rc = sts_check_name(err, v, "externalId", 2, 1224, ":/",
	    "[\\w+=,.@:\\/-]*")) != 0)
		return rc;
	a->external_id = v;
	if ((v = api_form_get(in, "SourceIdentity")) != NULL &&
	    (rc = sts_check_name(err, v, "sourceIdentity", 2, 64, NULL,
	    "[\\w+=,.@-]*")) != 0)
		return rc;
	a->source_identity = v;
	if ((v = api_form_get(in, "SerialNumber")) != NULL &&
	    (rc = sts_check_name(err, v, "serialNumber", 9, 256, ":/",
	    "[\\w+=/:,.@-]*")) != 0)
		return rc;
	if ((v = api_form_get(in, "TokenCode")) != NULL &&
	    (strlen(v) != 6 || strspn(v, "0123456789") != 6))
		return sts_validation(err, v, "tokenCode", "satisfy regular "
		    "expression pattern: [\\d]*");
	/* The session policy: refused when malformed, as STS does. */
	if ((v = api_form_get(in, "Policy")) != NULL) {
		if (strlen(v) < 1)
			return sts_validation(err, v, "policy", "have length "
			    "greater than or equal to 1");
		if (!sts_policy_chars(v, &a->policy_chars))
			return sts_validation(err, "(policy)", "policy",
			    "satisfy regular expression pattern: "
			    "[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+");
		/* Too long to pack is PackedPolicyTooLarge, not a parse. */
		if (a->policy_chars <= STS_POLICY_MAX) {
			if (policy_parse(v, strlen(v), &pol, why,
			    sizeof(why)) != 0)
				return api_error_set(err, 400,
				    "MalformedPolicyDocument", "%s", why);
			policy_free(pol);
		}
		a->policy = v;
	}
	for (i = 1; (v = api_form_getf(in, "PolicyArns.member.%zu.arn",
	    i)) != NULL; i++) {
		if (i > STS_POLICY_ARNS_MAX) {
			json_decref(arns);
			return sts_validation(err, "(list)", "policyArns",
			    "have length less than or equal to 10");
		}
		if (strlen(v) < 20 || strlen(v) > 2048 ||
		    !sts_policy_arn(v)) {
			json_decref(arns);
			return sts_validation(err, v,
			    "policyArns.member.arn", "be the ARN of a managed "
			    "policy");
		}
		if ((arns == NULL && (arns = json_array()) == NULL) ||
		    json_array_append_new(arns, json_string(v)) != 0) {
			json_decref(arns);
			return api_error_internal(err, "sts_arns",
			    PH_ERR_NOMEM);
		}
		a->policy_chars += strlen(v);
	}
	if (arns != NULL) {
		a->arns = json_dumps(arns, JSON_COMPACT);
		json_decref(arns);
		if (a->arns == NULL)
			return api_error_internal(err, "sts_arns",
			    PH_ERR_NOMEM);
	}
	if (a->policy_chars > STS_POLICY_MAX)
		return api_error_set(err, 400, "PackedPolicyTooLarge",
		    "Packed policy consumes %zu%% of allotted space, please "
		    "use smaller policy.", a->policy_chars * 100 /
		    STS_POLICY_MAX);
	for (i = 1; i <= STS_TAGS_MAX + 1; i++) {
		k = api_form_getf(in, "Tags.member.%zu.Key", i);
		v = api_form_getf(in, "Tags.member.%zu.Value", i);
		if (k == NULL && v == NULL)
			break;
		if (i > STS_TAGS_MAX)
			return sts_validation(err, "(list)", "tags", "have "
			    "length less than or equal to 50");
		if (k == NULL || v == NULL)
			return sts_validation(err, "null", k == NULL ?
			    "tags.member.key" : "tags.member.value",
			    "not be null");
		if (strlen(k) < 1 || strlen(k) > 128 || !api_pat_tag(k))
			return sts_validation(err, k, "tags.member.key",
			    "satisfy regular expression pattern: "
			    "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+");
		if (strlen(v) > 256 || !api_pat_tag(v))
			return sts_validation(err, v, "tags.member.value",
			    "satisfy regular expression pattern: "
			    "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*");
		for (j = 0; j < a->ntags; j++)
			if (strcasecmp(a->tag_keys[j], k) == 0)
				return api_error_set(err, 400,
				    "InvalidParameterValue", "Duplicate tag "
				    "keys found. Please note that Tag keys "
				    "are case insensitive.");
		a->tag_keys[a->ntags] = k;
		a->tag_values[a->ntags] = v;
		a->ntags++;
	}
	return 0;
}

/* The request context of a trust-policy evaluation. */
struct sts_ctx {
	struct policy_ctx ctx[STS_CTX_MAX];
	const char *vals[STS_CTX_MAX];
	char keybuf[STS_TAGS_MAX][160];
	size_t nptags;                       /* the caller's own tags */
	char ptag_key[STS_TAGS_MAX][160];
	char ptag_val[STS_TAGS_MAX][257];
	char now_iso[32], epoch[24];
	size_t n;
};

static void
sts_ctx_add(struct sts_ctx *x, const char *key, const char *v)
{
	if (v == NULL || v[0] == '\0' || x->n >= STS_CTX_MAX)
		return;
	x->vals[x->n] = v;
	x->ctx[x->n].key = key;
	x->ctx[x->n].values = &x->vals[x->n];
	x->ctx[x->n].nvalues = 1;
	x->n++;
}

static int
sts_trust_allows(const struct api_call *c, const struct iam_role_rec *role,
    const struct sts_assume *a, const char *action, struct sts_ctx *x)
{
	const struct principal *p = c->principal;
	const struct policy *set[1];
	const char *ids[4];
	struct policy_request req;
	struct policy *pol = NULL;
	char root[64], why[256];
	size_t nids = 0;
	int d;

	if (role->trust_policy == NULL)
		return 0;
	if (policy_parse_ex(role->trust_policy, strlen(role->trust_policy),
	    POLICY_F_TRUST, &pol, why, sizeof(why)) != 0) {
		log_warn("event=sts_trust_invalid role=%s why=\"%s\"",
		    role->name, why);
		return 0;
	}
	snprintf(root, sizeof(root), "arn:aws:iam::%s:root",
	    c->srv->account_id);
	ids[nids++] = p->arn;
	if (p->role_arn[0] != '\0')
		ids[nids++] = p->role_arn;
	ids[nids++] = root;
	ids[nids++] = c->srv->account_id;
	memset(&req, 0, sizeof(req));
	req.action = action;
	req.resource = role->arn;
	req.ctx = x->ctx;
	req.nctx = x->n;
	req.principal_type = "AWS";
	req.principals = ids;
	req.nprincipals = nids;
	set[0] = pol;
	d = policy_evaluate(set, 1, &req);
	policy_free(pol);
	(void)a;
	return d == POLICY_ALLOW;
}

static void
sts_ptag(void *arg, const char *key, const char *value)
{
	struct sts_ctx *x = arg;

	if (x->nptags >= STS_TAGS_MAX || strlen(key) > 128 ||
	    strlen(value) >= sizeof(x->ptag_val[0]))
		return;
	snprintf(x->ptag_key[x->nptags], sizeof(x->ptag_key[0]),
	    "aws:PrincipalTag/%s", key);
	memcpy(x->ptag_val[x->nptags], value, strlen(value) + 1);
	x->nptags++;
}

static void
sts_build_ctx(const struct api_call *c, const struct sts_assume *a,
    struct sts_ctx *x)
{
	const struct principal *p = c->principal;
	time_t now = (time_t)(c->now_ms / 1000);
	struct tm tm;
	size_t i;

	memset(x, 0, sizeof(*x));
	gmtime_r(&now, &tm);
	strftime(x->now_iso, sizeof(x->now_iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(x->epoch, sizeof(x->epoch), "%" PRId64, c->now_ms / 1000);
	/* AWS: a role session's aws:PrincipalArn is its role's ARN. */
	sts_ctx_add(x, "aws:PrincipalArn", p->role_arn[0] != '\0' ?
	    p->role_arn : p->arn);
	sts_ctx_add(x, "aws:PrincipalAccount", c->srv->account_id);
	sts_ctx_add(x, "aws:userid", p->user_id);
	if (p->kind == PRINCIPAL_USER)
		sts_ctx_add(x, "aws:username", p->name);
	sts_ctx_add(x, "aws:PrincipalType", p->kind == PRINCIPAL_USER ?
	    "User" : "AssumedRole");
	sts_ctx_add(x, "aws:CurrentTime", x->now_iso);
	sts_ctx_add(x, "aws:EpochTime", x->epoch);
	sts_ctx_add(x, "aws:SourceIp", p->origin.source_ip);
	sts_ctx_add(x, "aws:SecureTransport", p->origin.secure_transport ?
	    "true" : "false");
	sts_ctx_add(x, "aws:RequestedRegion", p->origin.region);
	sts_ctx_add(x, "sts:RoleSessionName", a->session);
	sts_ctx_add(x, "sts:ExternalId", a->external_id);
	sts_ctx_add(x, "sts:SourceIdentity", a->source_identity);
	/* aws:PrincipalTag/KEY: a user's tags, a role session's role's. */
	if (p->kind == PRINCIPAL_USER)
		(void)store_tags_foreach(c->srv->store, "IamUser", p->name,
		    sts_ptag, x);
	else if (p->role_name[0] != '\0')
		(void)store_tags_foreach(c->srv->store, "IamRole",
		    p->role_name, sts_ptag, x);
	for (i = 0; i < x->nptags && x->n < STS_CTX_MAX; i++) {
		/* Tag values may be empty, unlike the keys above. */
		x->vals[x->n] = x->ptag_val[i];
		x->ctx[x->n].key = x->ptag_key[i];
		x->ctx[x->n].values = &x->vals[x->n];
		x->ctx[x->n].nvalues = 1;
		x->n++;
	}
	for (i = 0; i < a->ntags && x->n + 1 < STS_CTX_MAX; i++) {
		snprintf(x->keybuf[i], sizeof(x->keybuf[i]),
		    "aws:RequestTag/%s", a->tag_keys[i]);
		sts_ctx_add(x, x->keybuf[i], a->tag_values[i]);
	}
	if (a->ntags > 0 && x->n < STS_CTX_MAX) {
		x->ctx[x->n].key = "aws:TagKeys";
		x->ctx[x->n].values = a->tag_keys;
		x->ctx[x->n].nvalues = a->ntags;
		x->n++;
	}
}

static int
sts_denied(const struct api_call *c, const char *role_arn,
    struct api_error *err)
{
	log_info("event=sts_assume_denied principal=%s role=%s",
	    c->principal->arn, role_arn);
	return api_error_set(err, 403, "AccessDenied", "User: %s is not "
	    "authorized to perform: sts:AssumeRole on resource: %.2048s",
	    c->principal->arn, role_arn);
}

static int
sts_assume_role(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	const struct principal *p = c->principal;
	char account[13], name[IAM_NAME_SIZE], arn[256], id[256];
	char token[STS_TOKEN_SIZE];
	struct iam_role_rec role;
	struct sts_assume *a = NULL;
	struct sts_ctx *x = NULL;
	struct sts_cred cred;
	int64_t expiry;
	int rc;

	memset(&role, 0, sizeof(role));
	memset(&cred, 0, sizeof(cred));
	token[0] = '\0';
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (x = calloc(1, sizeof(*x))) == NULL) {
		rc = api_error_internal(err, "sts_assume", PH_ERR_NOMEM);
		goto out;
	}
	if ((rc = sts_assume_parse(in, a, err)) != 0)
		goto out;
	/* A role that is not ours, or not there, is a plain denial: the
	 * caller learns nothing about which roles exist. */
	if (sts_parse_role_arn(a->role_arn, account, name, sizeof(name)) != 0) {
		rc = api_error_set(err, 400, "ValidationError", "%.200s is "
		    "not a valid role ARN.", a->role_arn);
		goto out;
	}
	if (strcmp(account, c->srv->account_id) != 0) {
		rc = sts_denied(c, a->role_arn, err);
		goto out;
	}
	rc = store_iam_role_get(c->srv->store, name, &role);
	if (rc == PH_ERR_NOTFOUND || (rc == 0 &&
	    strcmp(role.arn, a->role_arn) != 0)) {
		rc = sts_denied(c, a->role_arn, err);
		goto out;
	}
	if (rc != 0) {
		rc = api_error_internal(err, "sts_role_get", rc);
		goto out;
	}
	/* The caller's own permission, then the role's trust. */
	if (authz_check(c->srv, p, "sts:AssumeRole", role.arn) != 0) {
		rc = sts_denied(c, role.arn, err);
		goto out;
	}
	sts_build_ctx(c, a, x);
	if (!sts_trust_allows(c, &role, a, "sts:AssumeRole", x) ||
	    (a->ntags > 0 && !sts_trust_allows(c, &role, a,
	    "sts:TagSession", x))) {
		rc = sts_denied(c, role.arn, err);
		goto out;
	}
	if (a->duration > role.max_session_duration) {
		rc = api_error_set(err, 400, "ValidationError", "The "
		    "requested DurationSeconds exceeds the MaxSessionDuration "
		    "set for this role.");
		goto out;
	}
	if (p->kind != PRINCIPAL_USER && a->duration > STS_CHAINED_MAX) {
		rc = api_error_set(err, 400, "ValidationError", "The "
		    "requested DurationSeconds exceeds the 1 hour session "
		    "limit for roles assumed by role chaining.");
		goto out;
	}
	expiry = c->now_ms + (int64_t)a->duration * 1000;
	if ((rc = store_sts_issue_ex(c->srv->store, role.name, a->session,
	    p->arn, a->policy, a->arns, c->now_ms, expiry, &cred, token,
	    sizeof(token))) != 0) {
		rc = api_error_internal(err, "sts_issue", rc);
		goto out;
	}
	sts_session_arn(c->srv->account_id, role.name, a->session, arn,
	    sizeof(arn));
	snprintf(id, sizeof(id), "%s:%s", role.role_id, a->session);
	if ((rc = api_xml_open(out, "Credentials")) != 0 ||
	    (rc = api_xml_text(out, "AccessKeyId", cred.akid)) != 0 ||
	    (rc = api_xml_text(out, "SecretAccessKey", cred.secret)) != 0 ||
	    (rc = api_xml_text(out, "SessionToken", token)) != 0 ||
	    (rc = api_xml_time(out, "Expiration", expiry)) != 0 ||
	    (rc = api_xml_close(out)) != 0 ||
	    (rc = api_xml_open(out, "AssumedRoleUser")) != 0 ||
	    (rc = api_xml_text(out, "AssumedRoleId", id)) != 0 ||
	    (rc = api_xml_text(out, "Arn", arn)) != 0 ||
	    (rc = api_xml_close(out)) != 0 ||
	    ((a->policy != NULL || a->arns != NULL || a->ntags > 0) &&
	    (rc = api_xml_int(out, "PackedPolicySize",
	    (int64_t)(a->policy_chars * 100 / STS_POLICY_MAX))) != 0) ||
	    (a->source_identity != NULL &&
	    (rc = api_xml_text(out, "SourceIdentity", a->source_identity)) !=
	    0)) {
		rc = api_error_internal(err, "sts_assume_xml", rc);
		goto out;
	}
	log_info("event=sts_assume_role principal=%s role=%s session=%s "
	    "akid=%s duration=%d session_policy=%s", p->arn, role.arn,
	    a->session, cred.akid, a->duration, a->policy != NULL ||
	    a->arns != NULL ? "yes" : "no");
	rc = 0;
out:
	OPENSSL_cleanse(&cred, sizeof(cred));
	OPENSSL_cleanse(token, sizeof(token));
	iam_role_rec_clear(&role);
	if (a != NULL)
		free(a->arns);
	free(a);
	free(x);
	return rc;
}

static const struct {
	const char *name;
	int (*fn)(const struct api_call *, const struct api_form *,
	    struct api_xml *, struct api_error *);
} sts_actions[] = {
	{ "GetCallerIdentity", sts_get_caller_identity },
	{ "AssumeRole", sts_assume_role },
};

int
api_sts_dispatch(const struct api_call *c, const char *action,
    const struct api_form *in, struct api_xml *out, struct api_error *err)
{
	size_t i;

	if (c->principal == NULL)
		return api_error_set(err, 403, "AccessDenied", "Access "
		    "denied.");
	for (i = 0; i < sizeof(sts_actions) / sizeof(sts_actions[0]); i++)
		if (strcmp(action, sts_actions[i].name) == 0)
			return sts_actions[i].fn(c, in, out, err);
	return api_error_set(err, 400, "InvalidAction", "Could not find "
	    "operation %.100s for version 2011-06-15.", action);
}
