/* api_iam: IAM's actions over store_iam. Inputs are checked against
 * botocore's iam model (lengths, patterns, ranges: ValidationError);
 * entity names are resolved case-insensitively and written back as
 * stored; errors carry IAM's codes (NoSuchEntity 404, EntityAlreadyExists,
 * DeleteConflict and LimitExceeded 409, MalformedPolicyDocument 400).
 * Every action asks api_authorize first, with the resource ARN AWS
 * documents for it ("*" for the List actions with no resource), so a
 * caller learns nothing about entities it may not see. */
#include "server/api_iam.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/err.h"
#include "common/log.h"
#include "server/api_json.h"
#include "server/authz.h"
#include "server/console.h"
#include "server/policy.h"
#include "server/store.h"
#include "server/store_iam.h"
#include "server/store_sts.h"

#define IAM_STOP 1                 /* a walk's "enough": not an error */
#define IAM_MAX_ITEMS_DEFAULT 100
#define IAM_KEYS_PER_USER 2
#define IAM_ATTACHED_MAX 10        /* managed policies per entity */
#define IAM_TAGS_MAX 50
#define IAM_MANAGED_POLICY_MAX 6144
#define IAM_TRUST_POLICY_MAX 2048

struct iam_action {
	const char *name;
	api_query_action_fn fn;
};

/* ---- input checks ------------------------------------------------------- */

typedef int (*iam_pat_fn)(const char *s);

struct iv {
	const char *member;
	const char *path;          /* name in messages */
	size_t min, max;           /* characters; max 0: unbounded */
	iam_pat_fn pat;
	const char *pat_text;
	int secret;                /* never shown in messages */
};

/* The next code point of a valid UTF-8 string (api_form_parse checked). */
static unsigned long
iam_cp(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	unsigned long cp;
	int n, i;

	if (*p < 0x80) {
		*pp = p + 1;
		return *p;
	}
	n = *p >= 0xf0 ? 3 : *p >= 0xe0 ? 2 : 1;
	cp = *p & (0x3f >> n);
	for (i = 1; i <= n && p[i] != '\0'; i++)
		cp = (cp << 6) | (p[i] & 0x3f);
	*pp = p + i;
	return cp;
}

static int
iam_name_char(int c)
{
	return isalnum(c) || c == '_' || strchr("+=,.@-", c) != NULL;
}

/* [\w+=,.@-]+ */
static int
pat_name(const char *s)
{
	for (; *s != '\0'; s++)
		if (!iam_name_char((unsigned char)*s))
			return 0;
	return 1;
}

/* [\w]+ */
static int
pat_word(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

/* (\u002F)|(\u002F[\u0021-\u007E]+\u002F) */
static int
pat_path(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || s[0] != '/' || s[n - 1] != '/')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return n == 1 || n >= 3;
}

/* \u002F[\u0021-\u007F]* */
static int
pat_path_prefix(const char *s)
{
	if (s[0] != '/')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7f)
			return 0;
	return 1;
}

/* ((/[A-Za-z0-9\.,\+@=_-]+)*)/ */
static int
pat_policy_path(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || s[0] != '/' || s[n - 1] != '/')
		return 0;
	for (i = 1; i < n; i++) {
		if (s[i] == '/') {
			if (s[i - 1] == '/')
				return 0;
		} else if (!iam_name_char((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* [\u0009\u000A\u000D\u0020-\u00FF]+ */
static int
pat_latin1(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned long c;

	while (*p != '\0') {
		c = iam_cp(&p);
		if (c != 9 && c != 10 && c != 13 && (c < 0x20 || c > 0xff))
			return 0;
	}
	return 1;
}

/* [\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]* */
static int
pat_role_desc(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned long c;

	while (*p != '\0') {
		c = iam_cp(&p);
		if (c != 9 && c != 10 && c != 13 && (c < 0x20 || c > 0x7e) &&
		    (c < 0xa1 || c > 0xff))
			return 0;
	}
	return 1;
}

/* v[1-9][0-9]*(\.[A-Za-z0-9-]*)? */
static int
pat_version(const char *s)
{
	if (s[0] != 'v' || s[1] < '1' || s[1] > '9')
		return 0;
	for (s += 2; isdigit((unsigned char)*s); s++)
		;
	if (*s == '\0')
		return 1;
	if (*s != '.')
		return 0;
	for (s++; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '-')
			return 0;
	return 1;
}

#define PAT_NAME "[\\w+=,.@-]+"
#define PAT_PATH "(\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)"
#define PAT_LATIN1 "[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"

static const struct iv IV_USER = { "UserName", "userName", 1, 64, pat_name,
	PAT_NAME, 0 };
static const struct iv IV_EXISTING_USER = { "UserName", "userName", 1, 128,
	pat_name, PAT_NAME, 0 };
static const struct iv IV_NEW_USER = { "NewUserName", "newUserName", 1, 64,
	pat_name, PAT_NAME, 0 };
static const struct iv IV_GROUP = { "GroupName", "groupName", 1, 128,
	pat_name, PAT_NAME, 0 };
static const struct iv IV_ROLE = { "RoleName", "roleName", 1, 64, pat_name,
	PAT_NAME, 0 };
static const struct iv IV_POLICY_NAME = { "PolicyName", "policyName", 1, 128,
	pat_name, PAT_NAME, 0 };
static const struct iv IV_PATH = { "Path", "path", 1, 512, pat_path,
	PAT_PATH, 0 };
static const struct iv IV_NEW_PATH = { "NewPath", "newPath", 1, 512,
	pat_path, PAT_PATH, 0 };
static const struct iv IV_PATH_PREFIX = { "PathPrefix", "pathPrefix", 1, 512,
	pat_path_prefix, "\\u002F[\\u0021-\\u007F]*", 0 };
static const struct iv IV_POLICY_PATH = { "Path", "path", 1, 512,
	pat_policy_path, "((/[A-Za-z0-9\\.,\\+@=_-]+)*)/", 0 };
static const struct iv IV_POLICY_PATH_PREFIX = { "PathPrefix", "pathPrefix",
	1, 512, pat_policy_path, "((/[A-Za-z0-9\\.,\\+@=_-]+)*)/", 0 };
static const struct iv IV_DOC = { "PolicyDocument", "policyDocument", 1,
	131072, pat_latin1, PAT_LATIN1, 0 };
static const struct iv IV_TRUST_DOC = { "AssumeRolePolicyDocument",
	"assumeRolePolicyDocument", 1, 131072, pat_latin1, PAT_LATIN1, 0 };
static const struct iv IV_POLICY_ARN = { "PolicyArn", "policyArn", 20, 2048,
	NULL, NULL, 0 };
static const struct iv IV_AKID = { "AccessKeyId", "accessKeyId", 16, 128,
	pat_word, "[\\w]+", 0 };
static const struct iv IV_VERSION = { "VersionId", "versionId", 0, 0,
	pat_version, "v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?", 0 };
static const struct iv IV_PASSWORD = { "Password", "password", 1, 128,
	pat_latin1, PAT_LATIN1, 1 };
static const struct iv IV_OLD_PASSWORD = { "OldPassword", "oldPassword", 1,
	128, pat_latin1, PAT_LATIN1, 1 };
static const struct iv IV_NEW_PASSWORD = { "NewPassword", "newPassword", 1,
	128, pat_latin1, PAT_LATIN1, 1 };
static const struct iv IV_ROLE_DESC = { "Description", "description", 0,
	1000, pat_role_desc,
	"[\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*", 0 };
static const struct iv IV_POLICY_DESC = { "Description", "description", 0,
	1000, NULL, NULL, 0 };

/* The member d of in, or NULL if absent or invalid (recorded in v). */
static const char *
iv_get(struct api_v *v, const struct api_form *in, const struct iv *d,
    int required)
{
	const char *s = api_form_get(in, d->member);
	const char *shown;
	char msg[160];
	size_t len;

	if (s == NULL) {
		if (required)
			api_v_fail(v, d->path, NULL, "Member must not be null");
		return NULL;
	}
	shown = d->secret ? "******" : s;
	len = api_utf8_len(s);
	if (len < d->min) {
		snprintf(msg, sizeof(msg), "Member must have length greater "
		    "than or equal to %zu", d->min);
		api_v_fail(v, d->path, shown, msg);
		return NULL;
	}
	if (d->max > 0 && len > d->max) {
		snprintf(msg, sizeof(msg), "Member must have length less than "
		    "or equal to %zu", d->max);
		api_v_fail(v, d->path, shown, msg);
		return NULL;
	}
	if (d->pat != NULL && len > 0 && !d->pat(s)) {
		snprintf(msg, sizeof(msg), "Member must satisfy regular "
		    "expression pattern: %s", d->pat_text);
		api_v_fail(v, d->path, shown, msg);
		return NULL;
	}
	return s;
}

/* An integer member in [min, max]: 1 present, 0 absent, -1 invalid. */
static int
iv_int(struct api_v *v, const struct api_form *in, const char *member,
    const char *path, long min, long max, long *out)
{
	const char *s = api_form_get(in, member);
	char msg[96], *end;
	long n;

	if (s == NULL)
		return 0;
	n = strtol(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || (s[0] != '-' &&
	    !isdigit((unsigned char)s[0])) || strlen(s) > 12) {
		api_v_fail(v, path, s, "Member must be an integer");
		return -1;
	}
	if (n < min) {
		snprintf(msg, sizeof(msg), "Member must have value greater "
		    "than or equal to %ld", min);
		api_v_fail(v, path, s, msg);
		return -1;
	}
	if (n > max) {
		snprintf(msg, sizeof(msg), "Member must have value less than "
		    "or equal to %ld", max);
		api_v_fail(v, path, s, msg);
		return -1;
	}
	*out = n;
	return 1;
}

/* A boolean member: 1 true, 0 false or absent, -1 invalid. */
static int
iv_bool(struct api_v *v, const struct api_form *in, const char *member,
    const char *path)
{
	const char *s = api_form_get(in, member);

	if (s == NULL || strcasecmp(s, "false") == 0)
		return 0;
	if (strcasecmp(s, "true") == 0)
		return 1;
	api_v_fail(v, path, s, "Member must be a boolean");
	return -1;
}

/* ---- errors, ARNs, callers ---------------------------------------------- */

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

static int
iam_exists(struct api_error *err, const char *kind, const char *name)
{
	return api_error_set(err, 409, "EntityAlreadyExists",
	    "%s with name %s already exists.", kind, name);
}

/* ARN of an IAM entity: arn:aws:iam::ACCOUNT:KIND/PATH/NAME. */
static void
iam_arn(const struct api_call *c, const char *kind, const char *path,
    const char *name, char *out, size_t size)
{
	snprintf(out, size, "arn:aws:iam::%s:%s%s%s", c->srv->account_id,
	    kind, path != NULL && path[0] != '\0' ? path : "/", name);
}

/* The user an action acts on: the member, or the calling user; a role
 * session must name one, as IAM answers. */
static int
iam_caller_user(const struct api_call *c, struct api_v *v,
    const struct api_form *in, const struct iv *d, const char **name,
    struct api_error *err)
{
	int rc;

	*name = iv_get(v, in, d, 0);
	if ((rc = api_v_finish(v, err)) != 0)
		return rc;
	if (*name != NULL)
		return 0;
	if (c->principal == NULL || c->principal->kind != PRINCIPAL_USER ||
	    c->principal->name[0] == '\0')
		return api_error_set(err, 400, "ValidationError",
		    "Must specify userName when calling with non-User "
		    "credentials");
	*name = c->principal->name;
	return 0;
}

/* A lookup of KIND NAME that failed with rc, for action: a store failure
 * is ours; a missing entity is authorised on the ARN it would have, so a
 * caller who may not ask does not learn whether it exists, then
 * NoSuchEntity. */
static int
iam_entity_missing(const struct api_call *c, const char *action,
    const char *kind, const char *name, int rc, struct api_error *err)
{
	char arn[IAM_ARN_SIZE];

	if (rc != PH_ERR_NOTFOUND)
		return iam_store_error(err, "iam_entity_get", rc);
	iam_arn(c, kind, "/", name, arn, sizeof(arn));
	if ((rc = api_authorize(c, action, arn, err)) != 0)
		return rc;
	return iam_no_entity(err, kind, name);
}

/* Look an entity up and authorise action on it. */
static int
iam_user_for(const struct api_call *c, const char *action, const char *name,
    struct iam_user_rec *u, struct api_error *err)
{
	int rc;

	if ((rc = store_iam_user_get(c->srv->store, name, u)) != 0)
		return iam_entity_missing(c, action, "user", name, rc, err);
	return api_authorize(c, action, u->arn, err);
}

static int
iam_group_for(const struct api_call *c, const char *action, const char *name,
    struct iam_group_rec *g, struct api_error *err)
{
	int rc;

	if ((rc = store_iam_group_get(c->srv->store, name, g)) != 0)
		return iam_entity_missing(c, action, "group", name, rc, err);
	return api_authorize(c, action, g->arn, err);
}

/* r must be cleared by the caller (iam_role_rec_clear) in every case. */
static int
iam_role_for(const struct api_call *c, const char *action, const char *name,
    struct iam_role_rec *r, struct api_error *err)
{
	int rc;

	if ((rc = store_iam_role_get(c->srv->store, name, r)) != 0)
		return iam_entity_missing(c, action, "role", name, rc, err);
	return api_authorize(c, action, r->arn, err);
}

/* ---- pagination --------------------------------------------------------- */

struct iam_page {
	int offset;
	int max;
	int index;
	int written;
	int truncated;
};

static void
iam_page_read(struct api_v *v, const struct api_form *in, struct iam_page *pg)
{
	const char *marker = api_form_get(in, "Marker");
	long max = IAM_MAX_ITEMS_DEFAULT;

	memset(pg, 0, sizeof(*pg));
	if (marker != NULL && api_token_decode(marker, &pg->offset) != 0)
		api_v_fail(v, "marker", marker, "Member must be a marker "
		    "returned by a previous call");
	(void)iv_int(v, in, "MaxItems", "maxItems", 1, 1000, &max);
	pg->max = (int)max;
}

/* 1: write this item; 0: skip it (before the marker); -1: the page is
 * full (there is more). */
static int
iam_page_next(struct iam_page *pg)
{
	int i = pg->index++;

	if (i < pg->offset)
		return 0;
	if (pg->written >= pg->max) {
		pg->truncated = 1;
		return -1;
	}
	pg->written++;
	return 1;
}

static void
iam_page_end(struct api_xml *out, const struct iam_page *pg)
{
	char marker[32];

	api_xml_bool(out, "IsTruncated", pg->truncated);
	if (pg->truncated) {
		api_token_encode(pg->offset + pg->written, marker);
		api_xml_text(out, "Marker", marker);
	}
}

/* A store walk ended by the page being full is no error. */
static int
iam_walk_rc(int rc)
{
	return rc == IAM_STOP ? 0 : rc;
}

/* ---- writers ------------------------------------------------------------ */

struct iam_tag_writer {
	struct api_xml *x;
	struct iam_page *pg;       /* NULL: all */
};

static void
iam_tag_cb(void *arg, const char *key, const char *value)
{
	struct iam_tag_writer *w = arg;

	if (w->pg != NULL && iam_page_next(w->pg) != 1)
		return;
	api_xml_open(w->x, "member");
	api_xml_text(w->x, "Key", key);
	api_xml_text(w->x, "Value", value);
	api_xml_close(w->x);
}

static int
iam_write_tags(struct store *st, struct api_xml *x, const char *rtype,
    const char *rid, struct iam_page *pg)
{
	struct iam_tag_writer w = { x, pg };
	int rc;

	api_xml_open(x, "Tags");
	rc = store_tags_foreach(st, rtype, rid, iam_tag_cb, &w);
	api_xml_close(x);
	return rc;
}

static void
iam_user_xml(struct api_xml *x, const char *element,
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
}

static void
iam_group_xml(struct api_xml *x, const char *element,
    const struct iam_group_rec *g)
{
	api_xml_open(x, element);
	api_xml_text(x, "Path", g->path);
	api_xml_text(x, "GroupName", g->name);
	api_xml_text(x, "GroupId", g->group_id);
	api_xml_text(x, "Arn", g->arn);
	api_xml_time(x, "CreateDate", g->created_ms);
	api_xml_close(x);
}

/* Leaves the Role element open (Tags may follow). */
static void
iam_role_xml(struct api_xml *x, const char *element,
    const struct iam_role_rec *r)
{
	api_xml_open(x, element);
	api_xml_text(x, "Path", r->path);
	api_xml_text(x, "RoleName", r->name);
	api_xml_text(x, "RoleId", r->role_id);
	api_xml_text(x, "Arn", r->arn);
	api_xml_time(x, "CreateDate", r->created_ms);
	api_xml_urlencoded(x, "AssumeRolePolicyDocument", r->trust_policy);
	if (r->description[0] != '\0')
		api_xml_text(x, "Description", r->description);
	api_xml_int(x, "MaxSessionDuration", r->max_session_duration);
}

static void
iam_policy_xml(struct api_xml *x, const char *element,
    const struct iam_policy_rec *p, int with_description)
{
	api_xml_open(x, element);
	api_xml_text(x, "PolicyName", p->name);
	api_xml_text(x, "PolicyId", p->policy_id);
	api_xml_text(x, "Arn", p->arn);
	api_xml_text(x, "Path", p->path);
	api_xml_text(x, "DefaultVersionId", p->default_version);
	api_xml_int(x, "AttachmentCount", p->attachment_count);
	api_xml_int(x, "PermissionsBoundaryUsageCount", 0);
	api_xml_bool(x, "IsAttachable", 1);
	if (with_description && p->description[0] != '\0')
		api_xml_text(x, "Description", p->description);
	api_xml_time(x, "CreateDate", p->created_ms);
	api_xml_time(x, "UpdateDate", p->updated_ms);
	api_xml_close(x);
}

/* ---- tags in requests --------------------------------------------------- */

struct iam_tags {
	struct store_tag tags[IAM_TAGS_MAX];
	size_t n;
};

static void
iam_tags_read(struct api_v *v, const struct api_form *in, struct iam_tags *t)
{
	static const struct iv key_d = { NULL, "tags.member.key", 1, 128,
		api_pat_tag, API_PAT_TAG, 0 };
	static const struct iv value_d = { NULL, "tags.member.value", 0, 256,
		api_pat_tag, API_PAT_TAG, 0 };
	struct iv kd = key_d, vd = value_d;
	const char *k, *val;
	char km[64], vm[64];
	size_t i;

	t->n = 0;
	for (i = 1; i <= IAM_TAGS_MAX + 1; i++) {
		snprintf(km, sizeof(km), "Tags.member.%zu.Key", i);
		snprintf(vm, sizeof(vm), "Tags.member.%zu.Value", i);
		if (api_form_get(in, km) == NULL &&
		    api_form_get(in, vm) == NULL)
			break;
		if (i > IAM_TAGS_MAX) {
			api_v_fail(v, "tags", "[...]", "Member must have "
			    "length less than or equal to 50");
			return;
		}
		kd.member = km;
		vd.member = vm;
		k = iv_get(v, in, &kd, 1);
		val = iv_get(v, in, &vd, 1);
		if (k != NULL && val != NULL) {
			t->tags[t->n].key = k;
			t->tags[t->n].value = val;
			t->n++;
		}
	}
}

static int
iam_tags_apply(const struct api_call *c, const char *rtype, const char *rid,
    const struct iam_tags *t, struct api_error *err)
{
	int rc;

	if (t->n == 0)
		return 0;
	rc = store_tags_add(c->srv->store, rtype, rid, t->tags, t->n,
	    IAM_TAGS_MAX);
	if (rc == PH_ERR_TOOBIG)
		return api_error_set(err, 409, "LimitExceeded",
		    "The number of tags has reached the maximum limit.");
	if (rc != 0)
		return iam_store_error(err, "iam_tags_add", rc);
	return 0;
}

/* ---- policy documents --------------------------------------------------- */

/* Characters of a policy that count against IAM's size quotas:
 * whitespace does not. */
static size_t
iam_policy_size(const char *doc)
{
	size_t n = 0;

	for (; *doc != '\0'; doc++)
		if (!isspace((unsigned char)*doc))
			n++;
	return n;
}

static int
iam_check_policy(const char *doc, struct api_error *err)
{
	struct policy *p = NULL;
	char why[256];
	int rc;

	why[0] = '\0';
	rc = policy_parse(doc, strlen(doc), &p, why, sizeof(why));
	policy_free(p);
	if (rc == PH_ERR_NOMEM)
		return iam_store_error(err, "policy_parse", rc);
	if (rc != 0)
		return api_error_set(err, 400, "MalformedPolicyDocument", "%s",
		    why[0] != '\0' ? why : "Syntax errors in policy.");
	return 0;
}

/* A role's trust policy: checked by the engine that evaluates it at
 * AssumeRole, so every stored trust policy is one it can read. */
static int
iam_check_trust(const char *doc, struct api_error *err)
{
	struct policy *p = NULL;
	char why[256];
	int rc;

	why[0] = '\0';
	rc = policy_parse_ex(doc, strlen(doc), POLICY_F_TRUST, &p, why,
	    sizeof(why));
	policy_free(p);
	if (rc == PH_ERR_NOMEM)
		return iam_store_error(err, "policy_parse", rc);
	if (rc != 0)
		return api_error_set(err, 400, "MalformedPolicyDocument", "%s",
		    why[0] != '\0' ? why : "Syntax errors in policy.");
	return 0;
}

/* ---- users -------------------------------------------------------------- */

static int
iam_get_user(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	struct api_v v;
	const char *name;
	int rc;

	api_v_init(&v);
	if ((rc = iam_caller_user(c, &v, in, &IV_EXISTING_USER, &name,
	    err)) != 0)
		return rc;
	if ((rc = iam_user_for(c, "iam:GetUser", name, &u, err)) != 0)
		return rc;
	iam_user_xml(out, "User", &u);
	if (iam_write_tags(c->srv->store, out, "IamUser", u.name, NULL) != 0)
		return iam_store_error(err, "iam_tags", PH_ERR_IO);
	api_xml_close(out);
	return 0;
}

static int
iam_create_user(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	struct iam_tags tags;
	struct api_v v;
	const char *name, *path;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, &IV_USER, 1);
	path = iv_get(&v, in, &IV_PATH, 0);
	iam_tags_read(&v, in, &tags);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	memset(&u, 0, sizeof(u));
	snprintf(u.name, sizeof(u.name), "%s", name);
	snprintf(u.path, sizeof(u.path), "%s", path != NULL ? path : "/");
	iam_arn(c, "user", u.path, u.name, u.arn, sizeof(u.arn));
	if ((rc = api_authorize(c, "iam:CreateUser", u.arn, err)) != 0)
		return rc;
	if ((rc = store_iam_user_create(c->srv->store, &u)) != 0) {
		if (rc == PH_ERR_EXISTS)
			return iam_exists(err, "User", name);
		return iam_store_error(err, "iam_user_create", rc);
	}
	if ((rc = iam_tags_apply(c, "IamUser", u.name, &tags, err)) != 0)
		return rc;
	iam_user_xml(out, "User", &u);
	if (tags.n > 0 && iam_write_tags(c->srv->store, out, "IamUser",
	    u.name, NULL) != 0)
		return iam_store_error(err, "iam_tags", PH_ERR_IO);
	api_xml_close(out);
	return 0;
}

struct iam_list_ctx {
	const struct api_call *c;
	struct api_xml *x;
	struct iam_page *pg;
	const char *element;
};

static int
iam_list_user_cb(void *arg, const struct iam_user_rec *u)
{
	struct iam_list_ctx *l = arg;
	int r = iam_page_next(l->pg);

	if (r < 0)
		return IAM_STOP;
	if (r > 0) {
		iam_user_xml(l->x, "member", u);
		api_xml_close(l->x);
	}
	return 0;
}

static int
iam_list_users(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_page pg;
	struct iam_list_ctx l = { c, out, &pg, NULL };
	struct api_v v;
	const char *prefix;
	int rc;

	api_v_init(&v);
	prefix = iv_get(&v, in, &IV_PATH_PREFIX, 0);
	iam_page_read(&v, in, &pg);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = api_authorize(c, "iam:ListUsers", "*", err)) != 0)
		return rc;
	api_xml_open(out, "Users");
	rc = iam_walk_rc(store_iam_user_foreach(c->srv->store, prefix,
	    iam_list_user_cb, &l));
	if (rc != 0)
		return iam_store_error(err, "iam_list_users", rc);
	api_xml_close(out);
	iam_page_end(out, &pg);
	return 0;
}

static int
iam_update_user(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	char arn[IAM_ARN_SIZE];
	struct api_v v;
	const char *name, *new_name, *new_path;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, &IV_EXISTING_USER, 1);
	new_name = iv_get(&v, in, &IV_NEW_USER, 0);
	new_path = iv_get(&v, in, &IV_NEW_PATH, 0);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_user_for(c, "iam:UpdateUser", name, &u, err)) != 0)
		return rc;
	iam_arn(c, "user", new_path != NULL ? new_path : u.path,
	    new_name != NULL ? new_name : u.name, arn, sizeof(arn));
	if (new_name != NULL && (rc = api_authorize(c, "iam:UpdateUser", arn,
	    err)) != 0)
		return rc;
	rc = store_iam_user_update(c->srv->store, u.name, new_name, new_path,
	    arn);
	if (rc == PH_ERR_EXISTS)
		return iam_exists(err, "User", new_name);
	if (rc == PH_ERR_NOTFOUND)
		return iam_no_entity(err, "user", name);
	if (rc != 0)
		return iam_store_error(err, "iam_user_update", rc);
	return 0;
}

static int
iam_delete_user(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	struct api_v v;
	const char *name;
	char why[256];
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, &IV_EXISTING_USER, 1);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_user_for(c, "iam:DeleteUser", name, &u, err)) != 0)
		return rc;
	if (u.is_root_admin)
		return api_error_set(err, 409, "DeleteConflict",
		    "Cannot delete %s: it is the administrator portholed init "
		    "created, and deleting it would lock the account out.",
		    u.name);
	why[0] = '\0';
	rc = store_iam_user_delete(c->srv->store, u.name, why, sizeof(why));
	if (rc == PH_ERR_STATE)
		return api_error_set(err, 409, "DeleteConflict", "%s", why);
	if (rc == PH_ERR_NOTFOUND)
		return iam_no_entity(err, "user", name);
	if (rc != 0)
		return iam_store_error(err, "iam_user_delete", rc);
	return 0;
}

/* ---- tags of users and roles -------------------------------------------- */

static int
iam_tag_entity(const struct api_call *c, const struct api_form *in,
    struct api_error *err, int role, int untag)
{
	struct iam_user_rec u;
	struct iam_role_rec r;
	struct iam_tags tags;
	const char *keys[IAM_TAGS_MAX];
	const char *name, *rid, *k;
	char km[64];
	size_t nkeys = 0, i;
	struct api_v v;
	int rc;
	static const struct iv key_d = { NULL, "tagKeys.member", 1, 128,
		api_pat_tag, API_PAT_TAG, 0 };
	struct iv kd = key_d;

	memset(&r, 0, sizeof(r));
	api_v_init(&v);
	name = iv_get(&v, in, role ? &IV_ROLE : &IV_EXISTING_USER, 1);
	tags.n = 0;
	if (!untag) {
		iam_tags_read(&v, in, &tags);
		if (api_form_get(in, "Tags") == NULL && tags.n == 0 &&
		    v.nerr == 0)
			api_v_fail(&v, "tags", NULL, "Member must not be null");
	} else {
		for (i = 1; i <= IAM_TAGS_MAX + 1; i++) {
			snprintf(km, sizeof(km), "TagKeys.member.%zu", i);
			if (api_form_get(in, km) == NULL)
				break;
			if (i > IAM_TAGS_MAX) {
				api_v_fail(&v, "tagKeys", "[...]", "Member "
				    "must have length less than or equal to "
				    "50");
				break;
			}
			kd.member = km;
			if ((k = iv_get(&v, in, &kd, 1)) != NULL)
				keys[nkeys++] = k;
		}
	}
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (role)
		rc = iam_role_for(c, untag ? "iam:UntagRole" : "iam:TagRole",
		    name, &r, err);
	else
		rc = iam_user_for(c, untag ? "iam:UntagUser" : "iam:TagUser",
		    name, &u, err);
	rid = role ? r.name : u.name;
	if (rc == 0) {
		if (untag) {
			if (nkeys > 0 && (rc = store_tags_remove(c->srv->store,
			    role ? "IamRole" : "IamUser", rid, keys,
			    nkeys)) != 0)
				rc = iam_store_error(err, "iam_untag", rc);
		} else
			rc = iam_tags_apply(c, role ? "IamRole" : "IamUser",
			    rid, &tags, err);
	}
	iam_role_rec_clear(&r);
	return rc;
}

static int
iam_tag_user(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	return iam_tag_entity(c, in, err, 0, 0);
}

static int
iam_untag_user(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	return iam_tag_entity(c, in, err, 0, 1);
}

static int
iam_tag_role(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	return iam_tag_entity(c, in, err, 1, 0);
}

static int
iam_untag_role(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	return iam_tag_entity(c, in, err, 1, 1);
}

static int
iam_list_entity_tags(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err, int role)
{
	struct iam_user_rec u;
	struct iam_role_rec r;
	struct iam_page pg;
	struct api_v v;
	const char *name;
	int rc;

	memset(&r, 0, sizeof(r));
	api_v_init(&v);
	name = iv_get(&v, in, role ? &IV_ROLE : &IV_EXISTING_USER, 1);
	iam_page_read(&v, in, &pg);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (role)
		rc = iam_role_for(c, "iam:ListRoleTags", name, &r, err);
	else
		rc = iam_user_for(c, "iam:ListUserTags", name, &u, err);
	if (rc == 0) {
		if (iam_write_tags(c->srv->store, out, role ? "IamRole" :
		    "IamUser", role ? r.name : u.name, &pg) != 0)
			rc = iam_store_error(err, "iam_tags", PH_ERR_IO);
		else
			iam_page_end(out, &pg);
	}
	iam_role_rec_clear(&r);
	return rc;
}

static int
iam_list_user_tags(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	return iam_list_entity_tags(c, in, out, err, 0);
}

static int
iam_list_role_tags(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	return iam_list_entity_tags(c, in, out, err, 1);
}

/* ---- access keys -------------------------------------------------------- */

struct iam_key_count {
	int total;
	int active;
	const char *except;      /* a key not counted among the active */
};

static int
iam_key_count_cb(void *arg, const struct iam_key_rec *k)
{
	struct iam_key_count *n = arg;

	n->total++;
	if (k->active && (n->except == NULL ||
	    strcmp(k->akid, n->except) != 0))
		n->active++;
	return 0;
}

static int
iam_create_access_key(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	char akid[STORE_AKID_SIZE], secret[STORE_SECRET_SIZE];
	struct iam_key_count n = { 0, 0, NULL };
	struct iam_user_rec u;
	struct api_v v;
	const char *name;
	int rc;

	api_v_init(&v);
	if ((rc = iam_caller_user(c, &v, in, &IV_EXISTING_USER, &name,
	    err)) != 0 ||
	    (rc = iam_user_for(c, "iam:CreateAccessKey", name, &u, err)) != 0)
		return rc;
	if ((rc = store_iam_key_foreach(c->srv->store, u.name,
	    iam_key_count_cb, &n)) != 0)
		return iam_store_error(err, "iam_keys", rc);
	if (n.total >= IAM_KEYS_PER_USER)
		return api_error_set(err, 409, "LimitExceeded",
		    "Cannot exceed quota for AccessKeysPerUser: %d",
		    IAM_KEYS_PER_USER);
	if ((rc = store_iam_create_access_key(c->srv->store, u.name, akid,
	    secret)) != 0)
		return iam_store_error(err, "iam_create_access_key", rc);
	api_xml_open(out, "AccessKey");
	api_xml_text(out, "UserName", u.name);
	api_xml_text(out, "AccessKeyId", akid);
	api_xml_text(out, "Status", "Active");
	api_xml_text(out, "SecretAccessKey", secret);
	api_xml_time(out, "CreateDate", c->now_ms);
	api_xml_close(out);
	OPENSSL_cleanse(secret, sizeof(secret));
	return 0;
}

static int
iam_list_key_cb(void *arg, const struct iam_key_rec *k)
{
	struct iam_list_ctx *l = arg;
	int r = iam_page_next(l->pg);

	if (r < 0)
		return IAM_STOP;
	if (r > 0) {
		api_xml_open(l->x, "member");
		api_xml_text(l->x, "UserName", k->user_name);
		api_xml_text(l->x, "AccessKeyId", k->akid);
		api_xml_text(l->x, "Status", k->active ? "Active" :
		    "Inactive");
		api_xml_time(l->x, "CreateDate", k->created_ms);
		api_xml_close(l->x);
	}
	return 0;
}

static int
iam_list_access_keys(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_page pg;
	struct iam_list_ctx l = { c, out, &pg, NULL };
	struct iam_user_rec u;
	struct api_v v;
	const char *name;
	int rc;

	api_v_init(&v);
	iam_page_read(&v, in, &pg);
	if ((rc = iam_caller_user(c, &v, in, &IV_EXISTING_USER, &name,
	    err)) != 0 ||
	    (rc = iam_user_for(c, "iam:ListAccessKeys", name, &u, err)) != 0)
		return rc;
	api_xml_open(out, "AccessKeyMetadata");
	rc = iam_walk_rc(store_iam_key_foreach(c->srv->store, u.name,
	    iam_list_key_cb, &l));
	if (rc != 0)
		return iam_store_error(err, "iam_list_keys", rc);
	api_xml_close(out);
	iam_page_end(out, &pg);
	return 0;
}

/* The key of the named (or calling) user; NoSuchEntity otherwise. */
static int
iam_user_key(const struct api_call *c, const struct api_form *in,
    const char *action, struct iam_user_rec *u, struct iam_key_rec *k,
    struct api_v *v, struct api_error *err)
{
	const char *name, *akid;
	int rc;

	akid = iv_get(v, in, &IV_AKID, 1);
	if ((rc = iam_caller_user(c, v, in, &IV_EXISTING_USER, &name,
	    err)) != 0 || (rc = iam_user_for(c, action, name, u, err)) != 0)
		return rc;
	rc = store_iam_key_get(c->srv->store, akid, k);
	if (rc == PH_ERR_NOTFOUND || (rc == 0 && strcmp(k->user_name,
	    u->name) != 0))
		return api_error_set(err, 404, "NoSuchEntity", "The Access Key "
		    "with id %s cannot be found.", akid);
	if (rc != 0)
		return iam_store_error(err, "iam_key_get", rc);
	return 0;
}

/* The root admin keeps at least one active key. */
static int
iam_root_keeps_key(const struct api_call *c, const struct iam_user_rec *u,
    const struct iam_key_rec *k, struct api_error *err)
{
	struct iam_key_count n = { 0, 0, k->akid };
	int rc;

	if (!u->is_root_admin || !k->active)
		return 0;
	if ((rc = store_iam_key_foreach(c->srv->store, u->name,
	    iam_key_count_cb, &n)) != 0)
		return iam_store_error(err, "iam_keys", rc);
	if (n.active == 0)
		return api_error_set(err, 409, "DeleteConflict",
		    "Access key %s is the last active key of %s, the "
		    "administrator portholed init created; create and use "
		    "another key first so the account is not locked out.",
		    k->akid, u->name);
	return 0;
}

static int
iam_update_access_key(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	struct iam_key_rec k;
	struct api_v v;
	const char *status;
	int rc, active;

	api_v_init(&v);
	status = api_form_get(in, "Status");
	if (status == NULL)
		api_v_fail(&v, "status", NULL, "Member must not be null");
	else if (strcmp(status, "Active") != 0 &&
	    strcmp(status, "Inactive") != 0 && strcmp(status, "Expired") != 0)
		api_v_fail(&v, "status", status, "Member must satisfy enum "
		    "value set: [Active, Inactive, Expired]");
	if ((rc = iam_user_key(c, in, "iam:UpdateAccessKey", &u, &k, &v,
	    err)) != 0)
		return rc;
	if (strcmp(status, "Expired") == 0)
		return api_error_set(err, 400, "InvalidInput",
		    "Status Expired cannot be set.");
	active = strcmp(status, "Active") == 0;
	if (!active && (rc = iam_root_keeps_key(c, &u, &k, err)) != 0)
		return rc;
	if ((rc = store_iam_key_set_active(c->srv->store, u.name, k.akid,
	    active)) != 0)
		return iam_store_error(err, "iam_key_set_active", rc);
	return 0;
}

static int
iam_delete_access_key(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	struct iam_key_rec k;
	struct api_v v;
	int rc;

	api_v_init(&v);
	if ((rc = iam_user_key(c, in, "iam:DeleteAccessKey", &u, &k, &v,
	    err)) != 0 || (rc = iam_root_keeps_key(c, &u, &k, err)) != 0)
		return rc;
	if ((rc = store_iam_key_delete(c->srv->store, u.name, k.akid)) != 0)
		return iam_store_error(err, "iam_key_delete", rc);
	return 0;
}

static int
iam_get_access_key_last_used(const struct api_call *c,
    const struct api_form *in, struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	struct iam_key_rec k;
	struct api_v v;
	const char *akid;
	int rc;

	api_v_init(&v);
	akid = iv_get(&v, in, &IV_AKID, 1);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	rc = store_iam_key_get(c->srv->store, akid, &k);
	if (rc == PH_ERR_NOTFOUND) {
		if ((rc = api_authorize(c, "iam:GetAccessKeyLastUsed", "*",
		    err)) != 0)
			return rc;
		return api_error_set(err, 404, "NoSuchEntity", "The Access Key "
		    "with id %s cannot be found.", akid);
	}
	if (rc != 0)
		return iam_store_error(err, "iam_key_get", rc);
	if ((rc = iam_user_for(c, "iam:GetAccessKeyLastUsed", k.user_name, &u,
	    err)) != 0)
		return rc;
	api_xml_text(out, "UserName", u.name);
	api_xml_open(out, "AccessKeyLastUsed");
	if (k.last_used_ms > 0) {
		api_xml_time(out, "LastUsedDate", k.last_used_ms);
		api_xml_text(out, "ServiceName", k.last_used_service);
		api_xml_text(out, "Region", k.last_used_region);
	} else {
		api_xml_text(out, "ServiceName", "N/A");
		api_xml_text(out, "Region", "N/A");
	}
	api_xml_close(out);
	return 0;
}

/* ---- login profiles ----------------------------------------------------- */

/* IAM's default password policy: 8 to 128 characters with at least three
 * of upper case, lower case, digits and symbols, not the user's name. */
int
api_iam_password_ok(const char *pw, const char *user, struct api_error *err)
{
	int up = 0, low = 0, dig = 0, sym = 0;
	const char *p;

	for (p = pw; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (isupper(ch))
			up = 1;
		else if (islower(ch))
			low = 1;
		else if (isdigit(ch))
			dig = 1;
		else
			sym = 1;
	}
	if (api_utf8_len(pw) < 8)
		return api_error_set(err, 400, "PasswordPolicyViolation",
		    "Password should have a minimum length of 8");
	if (up + low + dig + sym < 3)
		return api_error_set(err, 400, "PasswordPolicyViolation",
		    "Password should have at least three of: an uppercase "
		    "letter, a lowercase letter, a number, a symbol");
	if (strcasecmp(pw, user) == 0)
		return api_error_set(err, 400, "PasswordPolicyViolation",
		    "Password should not be the user name");
	return 0;
}

static void
iam_login_xml(struct api_xml *out, const char *user, int64_t created_ms,
    int reset)
{
	api_xml_open(out, "LoginProfile");
	api_xml_text(out, "UserName", user);
	api_xml_time(out, "CreateDate", created_ms);
	api_xml_bool(out, "PasswordResetRequired", reset);
	api_xml_close(out);
}

static int
iam_create_login_profile(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	struct api_v v;
	const char *name, *pw;
	int64_t created;
	int rc, reset;

	api_v_init(&v);
	pw = iv_get(&v, in, &IV_PASSWORD, 1);
	reset = iv_bool(&v, in, "PasswordResetRequired",
	    "passwordResetRequired");
	if ((rc = iam_caller_user(c, &v, in, &IV_USER, &name, err)) != 0 ||
	    (rc = iam_user_for(c, "iam:CreateLoginProfile", name, &u,
	    err)) != 0 || (rc = api_iam_password_ok(pw, u.name, err)) != 0)
		return rc;
	rc = store_iam_login_create(c->srv->store, u.name, pw, reset);
	if (rc == PH_ERR_EXISTS)
		return api_error_set(err, 409, "EntityAlreadyExists",
		    "Login Profile for user %s already exists.", u.name);
	if (rc != 0)
		return iam_store_error(err, "iam_login_create", rc);
	if (store_iam_login_get(c->srv->store, u.name, &created, NULL) != 0)
		created = c->now_ms;
	iam_login_xml(out, u.name, created, reset);
	return 0;
}

static int
iam_login_missing(struct api_error *err, const char *user)
{
	return api_error_set(err, 404, "NoSuchEntity",
	    "Login Profile for User %s cannot be found.", user);
}

static int
iam_get_login_profile(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	struct api_v v;
	const char *name;
	int64_t created;
	int rc, reset;

	api_v_init(&v);
	if ((rc = iam_caller_user(c, &v, in, &IV_USER, &name, err)) != 0 ||
	    (rc = iam_user_for(c, "iam:GetLoginProfile", name, &u, err)) != 0)
		return rc;
	rc = store_iam_login_get(c->srv->store, u.name, &created, &reset);
	if (rc == PH_ERR_NOTFOUND)
		return iam_login_missing(err, u.name);
	if (rc != 0)
		return iam_store_error(err, "iam_login_get", rc);
	iam_login_xml(out, u.name, created, reset);
	return 0;
}

static int
iam_update_login_profile(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	struct api_v v;
	const char *name, *pw;
	int rc, reset = -1;

	api_v_init(&v);
	name = iv_get(&v, in, &IV_USER, 1);
	pw = iv_get(&v, in, &IV_PASSWORD, 0);
	if (api_form_get(in, "PasswordResetRequired") != NULL)
		reset = iv_bool(&v, in, "PasswordResetRequired",
		    "passwordResetRequired");
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_user_for(c, "iam:UpdateLoginProfile", name, &u,
	    err)) != 0)
		return rc;
	if (pw != NULL && (rc = api_iam_password_ok(pw, u.name, err)) != 0)
		return rc;
	rc = store_iam_login_update(c->srv->store, u.name, pw, reset);
	if (rc == PH_ERR_NOTFOUND)
		return iam_login_missing(err, u.name);
	if (rc != 0)
		return iam_store_error(err, "iam_login_update", rc);
	return 0;
}

static int
iam_delete_login_profile(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	struct api_v v;
	const char *name;
	int rc;

	api_v_init(&v);
	if ((rc = iam_caller_user(c, &v, in, &IV_USER, &name, err)) != 0 ||
	    (rc = iam_user_for(c, "iam:DeleteLoginProfile", name, &u,
	    err)) != 0)
		return rc;
	rc = store_iam_login_delete(c->srv->store, u.name);
	if (rc == PH_ERR_NOTFOUND)
		return iam_login_missing(err, u.name);
	if (rc != 0)
		return iam_store_error(err, "iam_login_delete", rc);
	return 0;
}

/* A user changes their own password, proving the old one. Only an IAM
 * user may (not the root admin, a role session or an instance), as
 * iam:ChangePassword on their own ARN; it clears PasswordResetRequired.
 * The scrypt work runs on the loop here, as for CreateLoginProfile; the
 * console's sign-in path keeps its checks on the thread pool. */
static int
iam_change_password(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_user_rec u;
	struct api_v v;
	const char *oldpw, *newpw;
	unsigned wait;
	int rc;

	(void)out;
	api_v_init(&v);
	oldpw = iv_get(&v, in, &IV_OLD_PASSWORD, 1);
	newpw = iv_get(&v, in, &IV_NEW_PASSWORD, 1);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (c->principal == NULL || c->principal->kind != PRINCIPAL_USER ||
	    c->principal->is_root_admin || c->principal->name[0] == '\0')
		return api_error_set(err, 400, "InvalidUserType",
		    "Only IAM users can change their own password.");
	if ((rc = iam_user_for(c, "iam:ChangePassword", c->principal->name,
	    &u, err)) != 0)
		return rc;
	/* Guesses of the old password share the console's per-user
	 * sign-in limit. */
	if ((wait = console_user_blocked(c->srv, u.name, c->now_ms)) > 0)
		return api_error_set(err, 409, "LimitExceeded", "Too many "
		    "password change attempts; try again in %u seconds.",
		    wait);
	if (store_iam_login_get(c->srv->store, u.name, NULL, NULL) ==
	    PH_ERR_NOTFOUND)
		return iam_login_missing(err, u.name);
	rc = store_iam_login_verify(c->srv->store, u.name, oldpw);
	if (rc == PH_ERR_DENIED) {
		console_user_failed(c->srv, u.name, c->now_ms);
		return api_error_set(err, 403, "AccessDenied",
		    "The old password is incorrect.");
	}
	if (rc != 0)
		return iam_store_error(err, "iam_login_verify", rc);
	if ((rc = api_iam_password_ok(newpw, u.name, err)) != 0)
		return rc;
	if (strcmp(oldpw, newpw) == 0)
		return api_error_set(err, 400, "PasswordPolicyViolation",
		    "The new password must differ from the old one.");
	rc = store_iam_login_update(c->srv->store, u.name, newpw, 0);
	if (rc == PH_ERR_NOTFOUND)
		return iam_login_missing(err, u.name);
	if (rc != 0)
		return iam_store_error(err, "iam_login_update", rc);
	log_info("event=iam_change_password user=%s", u.name);
	return 0;
}

/* ---- groups ------------------------------------------------------------- */

static int
iam_create_group(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_group_rec g;
	struct api_v v;
	const char *name, *path;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, &IV_GROUP, 1);
	path = iv_get(&v, in, &IV_PATH, 0);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	memset(&g, 0, sizeof(g));
	snprintf(g.name, sizeof(g.name), "%s", name);
	snprintf(g.path, sizeof(g.path), "%s", path != NULL ? path : "/");
	iam_arn(c, "group", g.path, g.name, g.arn, sizeof(g.arn));
	if ((rc = api_authorize(c, "iam:CreateGroup", g.arn, err)) != 0)
		return rc;
	if ((rc = store_iam_group_create(c->srv->store, &g)) != 0) {
		if (rc == PH_ERR_EXISTS)
			return iam_exists(err, "Group", name);
		return iam_store_error(err, "iam_group_create", rc);
	}
	iam_group_xml(out, "Group", &g);
	return 0;
}

static int
iam_get_group(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_page pg;
	struct iam_list_ctx l = { c, out, &pg, NULL };
	struct iam_group_rec g;
	struct api_v v;
	const char *name;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, &IV_GROUP, 1);
	iam_page_read(&v, in, &pg);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_group_for(c, "iam:GetGroup", name, &g, err)) != 0)
		return rc;
	iam_group_xml(out, "Group", &g);
	api_xml_open(out, "Users");
	rc = iam_walk_rc(store_iam_group_members(c->srv->store, g.name,
	    iam_list_user_cb, &l));
	if (rc != 0)
		return iam_store_error(err, "iam_group_members", rc);
	api_xml_close(out);
	iam_page_end(out, &pg);
	return 0;
}

static int
iam_list_group_cb(void *arg, const struct iam_group_rec *g)
{
	struct iam_list_ctx *l = arg;
	int r = iam_page_next(l->pg);

	if (r < 0)
		return IAM_STOP;
	if (r > 0)
		iam_group_xml(l->x, "member", g);
	return 0;
}

static int
iam_list_groups(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_page pg;
	struct iam_list_ctx l = { c, out, &pg, NULL };
	struct api_v v;
	const char *prefix;
	int rc;

	api_v_init(&v);
	prefix = iv_get(&v, in, &IV_PATH_PREFIX, 0);
	iam_page_read(&v, in, &pg);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = api_authorize(c, "iam:ListGroups", "*", err)) != 0)
		return rc;
	api_xml_open(out, "Groups");
	rc = iam_walk_rc(store_iam_group_foreach(c->srv->store, prefix,
	    iam_list_group_cb, &l));
	if (rc != 0)
		return iam_store_error(err, "iam_list_groups", rc);
	api_xml_close(out);
	iam_page_end(out, &pg);
	return 0;
}

static int
iam_delete_group(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_group_rec g;
	struct api_v v;
	const char *name;
	char why[256];
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, &IV_GROUP, 1);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_group_for(c, "iam:DeleteGroup", name, &g, err)) != 0)
		return rc;
	why[0] = '\0';
	rc = store_iam_group_delete(c->srv->store, g.name, why, sizeof(why));
	if (rc == PH_ERR_STATE)
		return api_error_set(err, 409, "DeleteConflict", "%s", why);
	if (rc == PH_ERR_NOTFOUND)
		return iam_no_entity(err, "group", name);
	if (rc != 0)
		return iam_store_error(err, "iam_group_delete", rc);
	return 0;
}

static int
iam_membership(const struct api_call *c, const struct api_form *in,
    struct api_error *err, int add)
{
	struct iam_group_rec g;
	struct iam_user_rec u;
	struct api_v v;
	const char *gname, *uname;
	int rc;

	api_v_init(&v);
	gname = iv_get(&v, in, &IV_GROUP, 1);
	uname = iv_get(&v, in, &IV_EXISTING_USER, 1);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_group_for(c, add ? "iam:AddUserToGroup" :
	    "iam:RemoveUserFromGroup", gname, &g, err)) != 0)
		return rc;
	if ((rc = store_iam_user_get(c->srv->store, uname, &u)) != 0) {
		if (rc == PH_ERR_NOTFOUND)
			return iam_no_entity(err, "user", uname);
		return iam_store_error(err, "iam_user_get", rc);
	}
	if (add)
		rc = store_iam_group_add_user(c->srv->store, g.name, u.name);
	else
		rc = store_iam_group_remove_user(c->srv->store, g.name,
		    u.name);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 404, "NoSuchEntity", "The user with "
		    "name %s is not in group %s.", u.name, g.name);
	if (rc != 0)
		return iam_store_error(err, "iam_membership", rc);
	return 0;
}

static int
iam_add_user_to_group(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	return iam_membership(c, in, err, 1);
}

static int
iam_remove_user_from_group(const struct api_call *c,
    const struct api_form *in, struct api_xml *out, struct api_error *err)
{
	return iam_membership(c, in, err, 0);
}

static int
iam_list_groups_for_user(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_page pg;
	struct iam_list_ctx l = { c, out, &pg, NULL };
	struct iam_user_rec u;
	struct api_v v;
	const char *name;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, &IV_EXISTING_USER, 1);
	iam_page_read(&v, in, &pg);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_user_for(c, "iam:ListGroupsForUser", name, &u,
	    err)) != 0)
		return rc;
	api_xml_open(out, "Groups");
	rc = iam_walk_rc(store_iam_user_groups(c->srv->store, u.name,
	    iam_list_group_cb, &l));
	if (rc != 0)
		return iam_store_error(err, "iam_user_groups", rc);
	api_xml_close(out);
	iam_page_end(out, &pg);
	return 0;
}

/* ---- roles -------------------------------------------------------------- */

static int
iam_create_role(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_role_rec r;
	struct iam_tags tags;
	struct api_v v;
	const char *name, *path, *doc, *desc;
	long maxdur = 3600;
	int rc;

	memset(&r, 0, sizeof(r));
	api_v_init(&v);
	name = iv_get(&v, in, &IV_ROLE, 1);
	path = iv_get(&v, in, &IV_PATH, 0);
	doc = iv_get(&v, in, &IV_TRUST_DOC, 1);
	desc = iv_get(&v, in, &IV_ROLE_DESC, 0);
	(void)iv_int(&v, in, "MaxSessionDuration", "maxSessionDuration",
	    3600, 43200, &maxdur);
	iam_tags_read(&v, in, &tags);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.path, sizeof(r.path), "%s", path != NULL ? path : "/");
	snprintf(r.description, sizeof(r.description), "%s",
	    desc != NULL ? desc : "");
	r.max_session_duration = (int)maxdur;
	iam_arn(c, "role", r.path, r.name, r.arn, sizeof(r.arn));
	if ((rc = api_authorize(c, "iam:CreateRole", r.arn, err)) != 0)
		return rc;
	if (iam_policy_size(doc) > IAM_TRUST_POLICY_MAX)
		return api_error_set(err, 409, "LimitExceeded", "Cannot exceed "
		    "quota for ACLSizePerRole: %d", IAM_TRUST_POLICY_MAX);
	if ((rc = iam_check_trust(doc, err)) != 0)
		return rc;
	/* The store owns no copy: r.trust_policy points into the form. */
	r.trust_policy = (char *)doc;
	rc = store_iam_role_create(c->srv->store, &r);
	r.trust_policy = NULL;
	if (rc == PH_ERR_EXISTS)
		return iam_exists(err, "Role", name);
	if (rc != 0)
		return iam_store_error(err, "iam_role_create", rc);
	if ((rc = iam_tags_apply(c, "IamRole", r.name, &tags, err)) != 0)
		return rc;
	r.trust_policy = (char *)doc;
	iam_role_xml(out, "Role", &r);
	r.trust_policy = NULL;
	if (tags.n > 0 && iam_write_tags(c->srv->store, out, "IamRole",
	    r.name, NULL) != 0)
		return iam_store_error(err, "iam_tags", PH_ERR_IO);
	api_xml_close(out);
	return 0;
}

static int
iam_get_role(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_role_rec r;
	struct api_v v;
	const char *name;
	int rc;

	memset(&r, 0, sizeof(r));
	api_v_init(&v);
	name = iv_get(&v, in, &IV_ROLE, 1);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = iam_role_for(c, "iam:GetRole", name, &r, err)) == 0) {
		iam_role_xml(out, "Role", &r);
		if (iam_write_tags(c->srv->store, out, "IamRole", r.name,
		    NULL) != 0)
			rc = iam_store_error(err, "iam_tags", PH_ERR_IO);
		api_xml_open(out, "RoleLastUsed");
		api_xml_close(out);
		api_xml_close(out);
	}
	iam_role_rec_clear(&r);
	return rc;
}

static int
iam_list_role_cb(void *arg, const struct iam_role_rec *r)
{
	struct iam_list_ctx *l = arg;
	int n = iam_page_next(l->pg);

	if (n < 0)
		return IAM_STOP;
	if (n > 0) {
		iam_role_xml(l->x, "member", r);
		api_xml_close(l->x);
	}
	return 0;
}

static int
iam_list_roles(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_page pg;
	struct iam_list_ctx l = { c, out, &pg, NULL };
	struct api_v v;
	const char *prefix;
	int rc;

	api_v_init(&v);
	prefix = iv_get(&v, in, &IV_PATH_PREFIX, 0);
	iam_page_read(&v, in, &pg);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = api_authorize(c, "iam:ListRoles", "*", err)) != 0)
		return rc;
	api_xml_open(out, "Roles");
	rc = iam_walk_rc(store_iam_role_foreach(c->srv->store, prefix,
	    iam_list_role_cb, &l));
	if (rc != 0)
		return iam_store_error(err, "iam_list_roles", rc);
	api_xml_close(out);
	iam_page_end(out, &pg);
	return 0;
}

static int
iam_delete_role(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_role_rec r;
	struct api_v v;
	const char *name;
	char why[256];
	int rc;

	memset(&r, 0, sizeof(r));
	api_v_init(&v);
	name = iv_get(&v, in, &IV_ROLE, 1);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = iam_role_for(c, "iam:DeleteRole", name, &r, err)) != 0)
		goto out;
	why[0] = '\0';
	rc = store_iam_role_delete(c->srv->store, r.name, why, sizeof(why));
	if (rc == PH_ERR_STATE)
		rc = api_error_set(err, 409, "DeleteConflict", "%s", why);
	else if (rc == PH_ERR_NOTFOUND)
		rc = iam_no_entity(err, "role", name);
	else if (rc != 0)
		rc = iam_store_error(err, "iam_role_delete", rc);
	/* Its sessions end with it. Were this to fail they would still be
	 * refused: a session of a role that is gone authenticates no more. */
	if (rc == 0 && store_sts_revoke_role(c->srv->store, r.name) != 0)
		log_warn("event=iam_role_sessions_not_revoked role=%s", r.name);
out:
	iam_role_rec_clear(&r);
	return rc;
}

static int
iam_update_assume_role_policy(const struct api_call *c,
    const struct api_form *in, struct api_xml *out, struct api_error *err)
{
	struct iam_role_rec r;
	struct api_v v;
	const char *name, *doc;
	int rc;

	memset(&r, 0, sizeof(r));
	api_v_init(&v);
	name = iv_get(&v, in, &IV_ROLE, 1);
	doc = iv_get(&v, in, &IV_DOC, 1);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = iam_role_for(c, "iam:UpdateAssumeRolePolicy", name, &r,
	    err)) != 0)
		goto out;
	if (iam_policy_size(doc) > IAM_TRUST_POLICY_MAX) {
		rc = api_error_set(err, 409, "LimitExceeded", "Cannot exceed "
		    "quota for ACLSizePerRole: %d", IAM_TRUST_POLICY_MAX);
		goto out;
	}
	if ((rc = iam_check_trust(doc, err)) != 0)
		goto out;
	if ((rc = store_iam_role_set_trust(c->srv->store, r.name, doc)) != 0)
		rc = iam_store_error(err, "iam_role_set_trust", rc);
out:
	iam_role_rec_clear(&r);
	return rc;
}

static int
iam_update_role(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_role_rec r;
	struct api_v v;
	const char *name, *desc;
	long maxdur = 0;
	int rc;

	memset(&r, 0, sizeof(r));
	api_v_init(&v);
	name = iv_get(&v, in, &IV_ROLE, 1);
	desc = iv_get(&v, in, &IV_ROLE_DESC, 0);
	(void)iv_int(&v, in, "MaxSessionDuration", "maxSessionDuration",
	    3600, 43200, &maxdur);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = iam_role_for(c, "iam:UpdateRole", name, &r, err)) == 0 &&
	    (rc = store_iam_role_update(c->srv->store, r.name, desc,
	    (int)maxdur)) != 0)
		rc = iam_store_error(err, "iam_role_update", rc);
	iam_role_rec_clear(&r);
	return rc;
}

/* ---- inline policies and attachments (users, groups, roles) ------------ */

struct iam_kind {
	const char *type;          /* IAM_ENTITY_* */
	const char *word;          /* "user", in messages */
	const char *action;        /* "User": iam:PutUserPolicy */
	const struct iv *name_d;
	size_t inline_max;         /* characters, whitespace not counted */
	const char *quota;         /* IAM's quota name in LimitExceeded */
};

static const struct iam_kind IAM_KIND_USER = { IAM_ENTITY_USER, "user",
	"User", &IV_EXISTING_USER, 2048, "PoliciesPerUser" };
static const struct iam_kind IAM_KIND_GROUP = { IAM_ENTITY_GROUP, "group",
	"Group", &IV_GROUP, 5120, "PoliciesPerGroup" };
static const struct iam_kind IAM_KIND_ROLE = { IAM_ENTITY_ROLE, "role",
	"Role", &IV_ROLE, 10240, "PoliciesPerRole" };

/* Resolve an entity of kind k (canonical name in name_out) and authorise
 * iam:VERB<Kind>NOUN on it. */
static int
iam_entity_for(const struct api_call *c, const struct iam_kind *k,
    const char *verb, const char *noun, const char *name,
    char name_out[IAM_NAME_SIZE], struct api_error *err)
{
	char action[96];
	struct iam_user_rec u;
	struct iam_group_rec g;
	struct iam_role_rec r;
	int rc;

	snprintf(action, sizeof(action), "iam:%s%s%s", verb, k->action, noun);
	if (k == &IAM_KIND_USER) {
		if ((rc = iam_user_for(c, action, name, &u, err)) == 0)
			snprintf(name_out, IAM_NAME_SIZE, "%s", u.name);
		return rc;
	}
	if (k == &IAM_KIND_GROUP) {
		if ((rc = iam_group_for(c, action, name, &g, err)) == 0)
			snprintf(name_out, IAM_NAME_SIZE, "%s", g.name);
		return rc;
	}
	memset(&r, 0, sizeof(r));
	if ((rc = iam_role_for(c, action, name, &r, err)) == 0)
		snprintf(name_out, IAM_NAME_SIZE, "%s", r.name);
	iam_role_rec_clear(&r);
	return rc;
}

static int
iam_put_policy(const struct api_call *c, const struct api_form *in,
    struct api_error *err, const struct iam_kind *k)
{
	char ename[IAM_NAME_SIZE];
	struct api_v v;
	const char *name, *pname, *doc;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, k->name_d, 1);
	pname = iv_get(&v, in, &IV_POLICY_NAME, 1);
	doc = iv_get(&v, in, &IV_DOC, 1);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_entity_for(c, k, "Put", "Policy", name, ename,
	    err)) != 0)
		return rc;
	if (iam_policy_size(doc) > k->inline_max)
		return api_error_set(err, 409, "LimitExceeded",
		    "Maximum policy size of %zu bytes exceeded for %s %s",
		    k->inline_max, k->word, ename);
	if ((rc = iam_check_policy(doc, err)) != 0)
		return rc;
	if ((rc = store_iam_inline_put(c->srv->store, k->type, ename, pname,
	    doc)) != 0)
		return iam_store_error(err, "iam_inline_put", rc);
	return 0;
}

static int
iam_get_policy_inline(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err, const struct iam_kind *k)
{
	char ename[IAM_NAME_SIZE], pname_s[IAM_NAME_SIZE], member[32];
	struct api_v v;
	const char *name, *pname;
	char *doc = NULL;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, k->name_d, 1);
	pname = iv_get(&v, in, &IV_POLICY_NAME, 1);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_entity_for(c, k, "Get", "Policy", name, ename,
	    err)) != 0)
		return rc;
	rc = store_iam_inline_get(c->srv->store, k->type, ename, pname,
	    pname_s, &doc);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 404, "NoSuchEntity", "The %s policy "
		    "with name %s cannot be found.", k->word, pname);
	if (rc != 0)
		return iam_store_error(err, "iam_inline_get", rc);
	snprintf(member, sizeof(member), "%sName", k->action);
	api_xml_text(out, member, ename);
	api_xml_text(out, "PolicyName", pname_s);
	api_xml_urlencoded(out, "PolicyDocument", doc);
	free(doc);
	return 0;
}

static int
iam_list_name_cb(void *arg, const char *name)
{
	struct iam_list_ctx *l = arg;
	int r = iam_page_next(l->pg);

	if (r < 0)
		return IAM_STOP;
	if (r > 0)
		api_xml_text(l->x, "member", name);
	return 0;
}

static int
iam_list_policies_inline(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err, const struct iam_kind *k)
{
	char ename[IAM_NAME_SIZE];
	struct iam_page pg;
	struct iam_list_ctx l = { c, out, &pg, NULL };
	struct api_v v;
	const char *name;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, k->name_d, 1);
	iam_page_read(&v, in, &pg);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_entity_for(c, k, "List", "Policies", name, ename,
	    err)) != 0)
		return rc;
	api_xml_open(out, "PolicyNames");
	rc = iam_walk_rc(store_iam_inline_foreach(c->srv->store, k->type,
	    ename, iam_list_name_cb, &l));
	if (rc != 0)
		return iam_store_error(err, "iam_inline_list", rc);
	api_xml_close(out);
	iam_page_end(out, &pg);
	return 0;
}

static int
iam_delete_policy_inline(const struct api_call *c, const struct api_form *in,
    struct api_error *err, const struct iam_kind *k)
{
	char ename[IAM_NAME_SIZE];
	struct api_v v;
	const char *name, *pname;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, k->name_d, 1);
	pname = iv_get(&v, in, &IV_POLICY_NAME, 1);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_entity_for(c, k, "Delete", "Policy", name, ename,
	    err)) != 0)
		return rc;
	rc = store_iam_inline_delete(c->srv->store, k->type, ename, pname);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 404, "NoSuchEntity", "The %s policy "
		    "with name %s cannot be found.", k->word, pname);
	if (rc != 0)
		return iam_store_error(err, "iam_inline_delete", rc);
	return 0;
}

/* A policy ARN's shape: arn:aws:iam::(ACCOUNT|aws):policy/... */
static int
iam_policy_arn_ok(const char *arn)
{
	const char *p;

	if (strncmp(arn, "arn:aws:iam::", 13) != 0)
		return 0;
	p = arn + 13;
	if (strncmp(p, "aws:", 4) == 0)
		p += 4;
	else {
		while (isdigit((unsigned char)*p))
			p++;
		if (p - arn != 13 + 12 || *p++ != ':')
			return 0;
	}
	return strncmp(p, "policy/", 7) == 0 && p[7] != '\0';
}

/* The managed policy named by the PolicyArn member, authorised for
 * action; NoSuchEntity as IAM words it. */
static int
iam_policy_for(const struct api_call *c, const char *action,
    const char *arn, struct iam_policy_rec *p, struct api_error *err)
{
	int rc;

	if (!iam_policy_arn_ok(arn))
		return api_error_set(err, 400, "InvalidInput",
		    "ARN %s is not valid.", arn);
	if ((rc = api_authorize(c, action, arn, err)) != 0)
		return rc;
	rc = store_iam_policy_get(c->srv->store, arn, p);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 404, "NoSuchEntity",
		    "Policy %s does not exist or is not attachable.", arn);
	if (rc != 0)
		return iam_store_error(err, "iam_policy_get", rc);
	return 0;
}

struct iam_attached_count {
	int n;
	const char *arn;
	int found;
};

static int
iam_attached_count_cb(void *arg, const char *arn, const char *name)
{
	struct iam_attached_count *a = arg;

	a->n++;
	if (strcmp(arn, a->arn) == 0)
		a->found = 1;
	return 0;
}

static int
iam_attach_policy(const struct api_call *c, const struct api_form *in,
    struct api_error *err, const struct iam_kind *k, int attach)
{
	char ename[IAM_NAME_SIZE];
	struct iam_policy_rec p;
	struct iam_attached_count a = { 0, NULL, 0 };
	struct api_v v;
	const char *name, *arn;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, k->name_d, 1);
	arn = iv_get(&v, in, &IV_POLICY_ARN, 1);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (!iam_policy_arn_ok(arn))
		return api_error_set(err, 400, "InvalidInput",
		    "ARN %s is not valid.", arn);
	if ((rc = iam_entity_for(c, k, attach ? "Attach" : "Detach",
	    "Policy", name, ename, err)) != 0)
		return rc;
	rc = store_iam_policy_get(c->srv->store, arn, &p);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 404, "NoSuchEntity",
		    "Policy %s does not exist or is not attachable.", arn);
	if (rc != 0)
		return iam_store_error(err, "iam_policy_get", rc);
	a.arn = arn;
	if ((rc = store_iam_attached_foreach(c->srv->store, k->type, ename,
	    iam_attached_count_cb, &a)) != 0)
		return iam_store_error(err, "iam_attached", rc);
	if (attach) {
		if (!a.found && a.n >= IAM_ATTACHED_MAX)
			return api_error_set(err, 409, "LimitExceeded",
			    "Cannot exceed quota for %s: %d", k->quota,
			    IAM_ATTACHED_MAX);
		rc = store_iam_attach(c->srv->store, k->type, ename, arn);
	} else {
		rc = store_iam_detach(c->srv->store, k->type, ename, arn);
		if (rc == PH_ERR_NOTFOUND)
			return api_error_set(err, 404, "NoSuchEntity",
			    "Policy %s was not found.", arn);
	}
	if (rc != 0)
		return iam_store_error(err, "iam_attach", rc);
	return 0;
}

struct iam_attached_list {
	struct api_xml *x;
	struct iam_page *pg;
	const char *prefix;
};

static int
iam_attached_list_cb(void *arg, const char *arn, const char *name)
{
	struct iam_attached_list *l = arg;
	const char *path;
	int r;

	/* The path of arn:aws:iam::ACCOUNT:policy/PATH/NAME. */
	if (l->prefix != NULL) {
		path = strstr(arn, ":policy/");
		if (path == NULL || strncmp(path + 7, l->prefix,
		    strlen(l->prefix)) != 0)
			return 0;
	}
	if ((r = iam_page_next(l->pg)) < 0)
		return IAM_STOP;
	if (r > 0) {
		api_xml_open(l->x, "member");
		api_xml_text(l->x, "PolicyName", name);
		api_xml_text(l->x, "PolicyArn", arn);
		api_xml_close(l->x);
	}
	return 0;
}

static int
iam_list_attached(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err, const struct iam_kind *k)
{
	char ename[IAM_NAME_SIZE];
	struct iam_page pg;
	struct iam_attached_list l = { out, &pg, NULL };
	struct api_v v;
	const char *name;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, k->name_d, 1);
	l.prefix = iv_get(&v, in, &IV_POLICY_PATH_PREFIX, 0);
	iam_page_read(&v, in, &pg);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = iam_entity_for(c, k, "ListAttached", "Policies", name,
	    ename, err)) != 0)
		return rc;
	api_xml_open(out, "AttachedPolicies");
	rc = iam_walk_rc(store_iam_attached_foreach(c->srv->store, k->type,
	    ename, iam_attached_list_cb, &l));
	if (rc != 0)
		return iam_store_error(err, "iam_attached", rc);
	api_xml_close(out);
	iam_page_end(out, &pg);
	return 0;
}

/* The generic actions above, one entry point per IAM action. */
#define IAM_KIND_ACTIONS(Kind, KIND)					\
static int								\
iam_put_##Kind##_policy(const struct api_call *c,			\
    const struct api_form *in, struct api_xml *out,			\
    struct api_error *err)						\
{									\
	return iam_put_policy(c, in, err, &IAM_KIND_##KIND);		\
}									\
static int								\
iam_get_##Kind##_policy(const struct api_call *c,			\
    const struct api_form *in, struct api_xml *out,			\
    struct api_error *err)						\
{									\
	return iam_get_policy_inline(c, in, out, err, &IAM_KIND_##KIND);\
}									\
static int								\
iam_list_##Kind##_policies(const struct api_call *c,			\
    const struct api_form *in, struct api_xml *out,			\
    struct api_error *err)						\
{									\
	return iam_list_policies_inline(c, in, out, err,		\
	    &IAM_KIND_##KIND);						\
}									\
static int								\
iam_delete_##Kind##_policy(const struct api_call *c,			\
    const struct api_form *in, struct api_xml *out,			\
    struct api_error *err)						\
{									\
	return iam_delete_policy_inline(c, in, err, &IAM_KIND_##KIND);	\
}									\
static int								\
iam_attach_##Kind##_policy(const struct api_call *c,			\
    const struct api_form *in, struct api_xml *out,			\
    struct api_error *err)						\
{									\
	return iam_attach_policy(c, in, err, &IAM_KIND_##KIND, 1);	\
}									\
static int								\
iam_detach_##Kind##_policy(const struct api_call *c,			\
    const struct api_form *in, struct api_xml *out,			\
    struct api_error *err)						\
{									\
	return iam_attach_policy(c, in, err, &IAM_KIND_##KIND, 0);	\
}									\
static int								\
iam_list_attached_##Kind##_policies(const struct api_call *c,		\
    const struct api_form *in, struct api_xml *out,			\
    struct api_error *err)						\
{									\
	return iam_list_attached(c, in, out, err, &IAM_KIND_##KIND);	\
}

IAM_KIND_ACTIONS(user, USER)
IAM_KIND_ACTIONS(group, GROUP)
IAM_KIND_ACTIONS(role, ROLE)

/* ---- managed policies --------------------------------------------------- */

static int
iam_create_policy(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_policy_rec p;
	struct api_v v;
	const char *name, *path, *doc, *desc;
	int rc;

	api_v_init(&v);
	name = iv_get(&v, in, &IV_POLICY_NAME, 1);
	path = iv_get(&v, in, &IV_POLICY_PATH, 0);
	doc = iv_get(&v, in, &IV_DOC, 1);
	desc = iv_get(&v, in, &IV_POLICY_DESC, 0);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "%s", name);
	snprintf(p.path, sizeof(p.path), "%s", path != NULL ? path : "/");
	snprintf(p.description, sizeof(p.description), "%s",
	    desc != NULL ? desc : "");
	iam_arn(c, "policy", p.path, p.name, p.arn, sizeof(p.arn));
	if ((rc = api_authorize(c, "iam:CreatePolicy", p.arn, err)) != 0)
		return rc;
	if (iam_policy_size(doc) > IAM_MANAGED_POLICY_MAX)
		return api_error_set(err, 409, "LimitExceeded", "Cannot exceed "
		    "quota for PolicySize: %d", IAM_MANAGED_POLICY_MAX);
	if ((rc = iam_check_policy(doc, err)) != 0)
		return rc;
	rc = store_iam_policy_create(c->srv->store, &p, doc);
	if (rc == PH_ERR_EXISTS)
		return api_error_set(err, 409, "EntityAlreadyExists",
		    "A policy called %s already exists. Duplicate names are "
		    "not allowed.", name);
	if (rc != 0)
		return iam_store_error(err, "iam_policy_create", rc);
	iam_policy_xml(out, "Policy", &p, 1);
	return 0;
}

static int
iam_get_policy(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_policy_rec p;
	struct api_v v;
	const char *arn;
	int rc;

	api_v_init(&v);
	arn = iv_get(&v, in, &IV_POLICY_ARN, 1);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_policy_for(c, "iam:GetPolicy", arn, &p, err)) != 0)
		return rc;
	iam_policy_xml(out, "Policy", &p, 1);
	return 0;
}

static int
iam_aws_managed(struct api_error *err, const char *arn)
{
	return api_error_set(err, 400, "InvalidInput", "Policy %s is an AWS "
	    "managed policy and cannot be changed.", arn);
}

static int
iam_version_missing(struct api_error *err, const char *arn, const char *vid)
{
	return api_error_set(err, 404, "NoSuchEntity", "Policy %s version %s "
	    "does not exist or is not attachable.", arn, vid);
}

static void
iam_version_xml(struct api_xml *x, const char *element, const char *doc,
    const char *vid, int is_default, int64_t created_ms)
{
	api_xml_open(x, element);
	if (doc != NULL)
		api_xml_urlencoded(x, "Document", doc);
	api_xml_text(x, "VersionId", vid);
	api_xml_bool(x, "IsDefaultVersion", is_default);
	api_xml_time(x, "CreateDate", created_ms);
	api_xml_close(x);
}

static int
iam_get_policy_version(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_policy_rec p;
	struct api_v v;
	const char *arn, *vid;
	char *doc = NULL;
	int64_t created;
	int rc;

	api_v_init(&v);
	arn = iv_get(&v, in, &IV_POLICY_ARN, 1);
	vid = iv_get(&v, in, &IV_VERSION, 1);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_policy_for(c, "iam:GetPolicyVersion", arn, &p,
	    err)) != 0)
		return rc;
	rc = store_iam_policy_version_get(c->srv->store, p.arn, vid, &doc,
	    &created);
	if (rc == PH_ERR_NOTFOUND)
		return iam_version_missing(err, arn, vid);
	if (rc != 0)
		return iam_store_error(err, "iam_policy_version_get", rc);
	iam_version_xml(out, "PolicyVersion", doc, vid,
	    strcmp(vid, p.default_version) == 0, created);
	free(doc);
	return 0;
}

static int
iam_create_policy_version(const struct api_call *c,
    const struct api_form *in, struct api_xml *out, struct api_error *err)
{
	struct iam_policy_rec p;
	char vid[16];
	struct api_v v;
	const char *arn, *doc;
	int rc, set_default;

	api_v_init(&v);
	arn = iv_get(&v, in, &IV_POLICY_ARN, 1);
	doc = iv_get(&v, in, &IV_DOC, 1);
	set_default = iv_bool(&v, in, "SetAsDefault", "setAsDefault");
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_policy_for(c, "iam:CreatePolicyVersion", arn, &p,
	    err)) != 0)
		return rc;
	if (p.is_aws)
		return iam_aws_managed(err, arn);
	if (iam_policy_size(doc) > IAM_MANAGED_POLICY_MAX)
		return api_error_set(err, 409, "LimitExceeded", "Cannot exceed "
		    "quota for PolicySize: %d", IAM_MANAGED_POLICY_MAX);
	if ((rc = iam_check_policy(doc, err)) != 0)
		return rc;
	rc = store_iam_policy_version_create(c->srv->store, p.arn, doc,
	    set_default, vid);
	if (rc == PH_ERR_TOOBIG)
		return api_error_set(err, 409, "LimitExceeded", "A managed "
		    "policy can have up to %d versions. Before you create a "
		    "new version, you must delete an existing version.",
		    IAM_POLICY_VERSIONS_MAX);
	if (rc != 0)
		return iam_store_error(err, "iam_policy_version_create", rc);
	iam_version_xml(out, "PolicyVersion", NULL, vid, set_default,
	    c->now_ms);
	return 0;
}

static int
iam_list_version_cb(void *arg, const char *vid, int is_default,
    int64_t created_ms)
{
	struct iam_list_ctx *l = arg;
	int r = iam_page_next(l->pg);

	if (r < 0)
		return IAM_STOP;
	if (r > 0)
		iam_version_xml(l->x, "member", NULL, vid, is_default,
		    created_ms);
	return 0;
}

static int
iam_list_policy_versions(const struct api_call *c,
    const struct api_form *in, struct api_xml *out, struct api_error *err)
{
	struct iam_page pg;
	struct iam_list_ctx l = { c, out, &pg, NULL };
	struct iam_policy_rec p;
	struct api_v v;
	const char *arn;
	int rc;

	api_v_init(&v);
	arn = iv_get(&v, in, &IV_POLICY_ARN, 1);
	iam_page_read(&v, in, &pg);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_policy_for(c, "iam:ListPolicyVersions", arn, &p,
	    err)) != 0)
		return rc;
	api_xml_open(out, "Versions");
	rc = iam_walk_rc(store_iam_policy_version_foreach(c->srv->store,
	    p.arn, iam_list_version_cb, &l));
	if (rc != 0)
		return iam_store_error(err, "iam_policy_versions", rc);
	api_xml_close(out);
	iam_page_end(out, &pg);
	return 0;
}

static int
iam_delete_policy_version(const struct api_call *c,
    const struct api_form *in, struct api_xml *out, struct api_error *err)
{
	struct iam_policy_rec p;
	struct api_v v;
	const char *arn, *vid;
	int rc;

	api_v_init(&v);
	arn = iv_get(&v, in, &IV_POLICY_ARN, 1);
	vid = iv_get(&v, in, &IV_VERSION, 1);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_policy_for(c, "iam:DeletePolicyVersion", arn, &p,
	    err)) != 0)
		return rc;
	if (p.is_aws)
		return iam_aws_managed(err, arn);
	rc = store_iam_policy_version_delete(c->srv->store, p.arn, vid);
	if (rc == PH_ERR_STATE)
		return api_error_set(err, 409, "DeleteConflict",
		    "Cannot delete the default version of a policy.");
	if (rc == PH_ERR_NOTFOUND)
		return iam_version_missing(err, arn, vid);
	if (rc != 0)
		return iam_store_error(err, "iam_policy_version_delete", rc);
	return 0;
}

static int
iam_set_default_policy_version(const struct api_call *c,
    const struct api_form *in, struct api_xml *out, struct api_error *err)
{
	struct iam_policy_rec p;
	struct api_v v;
	const char *arn, *vid;
	int rc;

	api_v_init(&v);
	arn = iv_get(&v, in, &IV_POLICY_ARN, 1);
	vid = iv_get(&v, in, &IV_VERSION, 1);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_policy_for(c, "iam:SetDefaultPolicyVersion", arn, &p,
	    err)) != 0)
		return rc;
	if (p.is_aws)
		return iam_aws_managed(err, arn);
	rc = store_iam_policy_set_default(c->srv->store, p.arn, vid);
	if (rc == PH_ERR_NOTFOUND)
		return iam_version_missing(err, arn, vid);
	if (rc != 0)
		return iam_store_error(err, "iam_policy_set_default", rc);
	return 0;
}

static int
iam_delete_policy(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_policy_rec p;
	struct api_v v;
	const char *arn;
	char why[256];
	int rc;

	api_v_init(&v);
	arn = iv_get(&v, in, &IV_POLICY_ARN, 1);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_policy_for(c, "iam:DeletePolicy", arn, &p, err)) != 0)
		return rc;
	if (p.is_aws)
		return iam_aws_managed(err, arn);
	why[0] = '\0';
	rc = store_iam_policy_delete(c->srv->store, p.arn, why, sizeof(why));
	if (rc == PH_ERR_STATE)
		return api_error_set(err, 409, "DeleteConflict", "%s", why);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 404, "NoSuchEntity",
		    "Policy %s does not exist or is not attachable.", arn);
	if (rc != 0)
		return iam_store_error(err, "iam_policy_delete", rc);
	return 0;
}

static int
iam_list_policy_cb(void *arg, const struct iam_policy_rec *p)
{
	struct iam_list_ctx *l = arg;
	int r = iam_page_next(l->pg);

	if (r < 0)
		return IAM_STOP;
	if (r > 0)
		iam_policy_xml(l->x, "member", p, 0);
	return 0;
}

static int
iam_list_policies(const struct api_call *c, const struct api_form *in,
    struct api_xml *out, struct api_error *err)
{
	struct iam_page pg;
	struct iam_list_ctx l = { c, out, &pg, NULL };
	struct api_v v;
	const char *scope, *prefix, *usage;
	int rc, only, sc = 0;

	api_v_init(&v);
	scope = api_form_get(in, "Scope");
	if (scope != NULL) {
		if (strcmp(scope, "AWS") == 0)
			sc = 1;
		else if (strcmp(scope, "Local") == 0)
			sc = 2;
		else if (strcmp(scope, "All") != 0)
			api_v_fail(&v, "scope", scope, "Member must satisfy "
			    "enum value set: [All, AWS, Local]");
	}
	usage = api_form_get(in, "PolicyUsageFilter");
	if (usage != NULL && strcmp(usage, "PermissionsPolicy") != 0 &&
	    strcmp(usage, "PermissionsBoundary") != 0)
		api_v_fail(&v, "policyUsageFilter", usage, "Member must "
		    "satisfy enum value set: [PermissionsPolicy, "
		    "PermissionsBoundary]");
	only = iv_bool(&v, in, "OnlyAttached", "onlyAttached");
	prefix = iv_get(&v, in, &IV_POLICY_PATH_PREFIX, 0);
	iam_page_read(&v, in, &pg);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = api_authorize(c, "iam:ListPolicies", "*", err)) != 0)
		return rc;
	api_xml_open(out, "Policies");
	/* No permissions boundaries here: that filter lists nothing. */
	if (usage == NULL || strcmp(usage, "PermissionsBoundary") != 0)
		rc = iam_walk_rc(store_iam_policy_foreach(c->srv->store, sc,
		    only > 0, prefix, iam_list_policy_cb, &l));
	if (rc != 0)
		return iam_store_error(err, "iam_list_policies", rc);
	api_xml_close(out);
	iam_page_end(out, &pg);
	return 0;
}

/* ListEntitiesForPolicy: the entities are collected first, then written
 * grouped by kind, one page over them all. */
struct iam_entity {
	char type[8];
	char name[IAM_NAME_SIZE];
};

struct iam_entities {
	struct iam_entity *e;
	size_t n, cap;
	const char *filter;        /* IAM_ENTITY_* or NULL */
};

#define IAM_ENTITIES_MAX 100000

static int
iam_entity_cb(void *arg, const char *type, const char *name)
{
	struct iam_entities *l = arg;
	struct iam_entity *ne;

	if (l->filter != NULL && strcmp(l->filter, type) != 0)
		return 0;
	if (l->n == l->cap) {
		if (l->cap >= IAM_ENTITIES_MAX)
			return PH_ERR_TOOBIG;
		l->cap = l->cap ? l->cap * 2 : 16;
		if ((ne = realloc(l->e, l->cap * sizeof(*ne))) == NULL)
			return PH_ERR_NOMEM;
		l->e = ne;
	}
	snprintf(l->e[l->n].type, sizeof(l->e[l->n].type), "%s", type);
	snprintf(l->e[l->n].name, sizeof(l->e[l->n].name), "%s", name);
	l->n++;
	return 0;
}

static void
iam_entities_write(const struct api_call *c, struct api_xml *out,
    const struct iam_entities *l, size_t from, size_t to, const char *type,
    const char *list, const char *name_el, const char *id_el)
{
	struct iam_user_rec u;
	struct iam_group_rec g;
	struct iam_role_rec r;
	const char *id;
	size_t i;

	api_xml_open(out, list);
	for (i = from; i < to; i++) {
		if (strcmp(l->e[i].type, type) != 0)
			continue;
		memset(&r, 0, sizeof(r));
		id = "";
		if (strcmp(type, IAM_ENTITY_USER) == 0 &&
		    store_iam_user_get(c->srv->store, l->e[i].name, &u) == 0)
			id = u.user_id;
		else if (strcmp(type, IAM_ENTITY_GROUP) == 0 &&
		    store_iam_group_get(c->srv->store, l->e[i].name, &g) == 0)
			id = g.group_id;
		else if (strcmp(type, IAM_ENTITY_ROLE) == 0 &&
		    store_iam_role_get(c->srv->store, l->e[i].name, &r) == 0)
			id = r.role_id;
		api_xml_open(out, "member");
		api_xml_text(out, name_el, l->e[i].name);
		api_xml_text(out, id_el, id);
		api_xml_close(out);
		iam_role_rec_clear(&r);
	}
	api_xml_close(out);
}

static int
iam_list_entities_for_policy(const struct api_call *c,
    const struct api_form *in, struct api_xml *out, struct api_error *err)
{
	struct iam_entities l = { NULL, 0, 0, NULL };
	struct iam_policy_rec p;
	struct iam_page pg;
	struct api_v v;
	const char *arn, *filter;
	size_t from, to;
	char marker[32];
	int rc;

	api_v_init(&v);
	arn = iv_get(&v, in, &IV_POLICY_ARN, 1);
	filter = api_form_get(in, "EntityFilter");
	if (filter != NULL) {
		if (strcmp(filter, "User") == 0)
			l.filter = IAM_ENTITY_USER;
		else if (strcmp(filter, "Group") == 0)
			l.filter = IAM_ENTITY_GROUP;
		else if (strcmp(filter, "Role") == 0)
			l.filter = IAM_ENTITY_ROLE;
		else if (strcmp(filter, "LocalManagedPolicy") == 0 ||
		    strcmp(filter, "AWSManagedPolicy") == 0)
			l.filter = "none";
		else
			api_v_fail(&v, "entityFilter", filter, "Member must "
			    "satisfy enum value set: [User, Role, Group, "
			    "LocalManagedPolicy, AWSManagedPolicy]");
	}
	iam_page_read(&v, in, &pg);
	if ((rc = api_v_finish(&v, err)) != 0 ||
	    (rc = iam_policy_for(c, "iam:ListEntitiesForPolicy", arn, &p,
	    err)) != 0)
		return rc;
	if ((rc = store_iam_policy_entities(c->srv->store, p.arn,
	    iam_entity_cb, &l)) != 0) {
		free(l.e);
		return iam_store_error(err, "iam_policy_entities", rc);
	}
	from = (size_t)pg.offset < l.n ? (size_t)pg.offset : l.n;
	to = l.n - from > (size_t)pg.max ? from + (size_t)pg.max : l.n;
	iam_entities_write(c, out, &l, from, to, IAM_ENTITY_GROUP,
	    "PolicyGroups", "GroupName", "GroupId");
	iam_entities_write(c, out, &l, from, to, IAM_ENTITY_USER,
	    "PolicyUsers", "UserName", "UserId");
	iam_entities_write(c, out, &l, from, to, IAM_ENTITY_ROLE,
	    "PolicyRoles", "RoleName", "RoleId");
	api_xml_bool(out, "IsTruncated", to < l.n);
	if (to < l.n) {
		api_token_encode((int)to, marker);
		api_xml_text(out, "Marker", marker);
	}
	free(l.e);
	return 0;
}

/* ---- dispatch ----------------------------------------------------------- */

static const struct iam_action iam_actions[] = {
	{ "AddUserToGroup", iam_add_user_to_group },
	{ "AttachGroupPolicy", iam_attach_group_policy },
	{ "AttachRolePolicy", iam_attach_role_policy },
	{ "AttachUserPolicy", iam_attach_user_policy },
	{ "ChangePassword", iam_change_password },
	{ "CreateAccessKey", iam_create_access_key },
	{ "CreateGroup", iam_create_group },
	{ "CreateLoginProfile", iam_create_login_profile },
	{ "CreatePolicy", iam_create_policy },
	{ "CreatePolicyVersion", iam_create_policy_version },
	{ "CreateRole", iam_create_role },
	{ "CreateUser", iam_create_user },
	{ "DeleteAccessKey", iam_delete_access_key },
	{ "DeleteGroup", iam_delete_group },
	{ "DeleteGroupPolicy", iam_delete_group_policy },
	{ "DeleteLoginProfile", iam_delete_login_profile },
	{ "DeletePolicy", iam_delete_policy },
	{ "DeletePolicyVersion", iam_delete_policy_version },
	{ "DeleteRole", iam_delete_role },
	{ "DeleteRolePolicy", iam_delete_role_policy },
	{ "DeleteUser", iam_delete_user },
	{ "DeleteUserPolicy", iam_delete_user_policy },
	{ "DetachGroupPolicy", iam_detach_group_policy },
	{ "DetachRolePolicy", iam_detach_role_policy },
	{ "DetachUserPolicy", iam_detach_user_policy },
	{ "GetAccessKeyLastUsed", iam_get_access_key_last_used },
	{ "GetGroup", iam_get_group },
	{ "GetGroupPolicy", iam_get_group_policy },
	{ "GetLoginProfile", iam_get_login_profile },
	{ "GetPolicy", iam_get_policy },
	{ "GetPolicyVersion", iam_get_policy_version },
	{ "GetRole", iam_get_role },
	{ "GetRolePolicy", iam_get_role_policy },
	{ "GetUser", iam_get_user },
	{ "GetUserPolicy", iam_get_user_policy },
	{ "ListAccessKeys", iam_list_access_keys },
	{ "ListAttachedGroupPolicies", iam_list_attached_group_policies },
	{ "ListAttachedRolePolicies", iam_list_attached_role_policies },
	{ "ListAttachedUserPolicies", iam_list_attached_user_policies },
	{ "ListEntitiesForPolicy", iam_list_entities_for_policy },
	{ "ListGroupPolicies", iam_list_group_policies },
	{ "ListGroups", iam_list_groups },
	{ "ListGroupsForUser", iam_list_groups_for_user },
	{ "ListPolicies", iam_list_policies },
	{ "ListPolicyVersions", iam_list_policy_versions },
	{ "ListRolePolicies", iam_list_role_policies },
	{ "ListRoleTags", iam_list_role_tags },
	{ "ListRoles", iam_list_roles },
	{ "ListUserPolicies", iam_list_user_policies },
	{ "ListUserTags", iam_list_user_tags },
	{ "ListUsers", iam_list_users },
	{ "PutGroupPolicy", iam_put_group_policy },
	{ "PutRolePolicy", iam_put_role_policy },
	{ "PutUserPolicy", iam_put_user_policy },
	{ "RemoveUserFromGroup", iam_remove_user_from_group },
	{ "SetDefaultPolicyVersion", iam_set_default_policy_version },
	{ "TagRole", iam_tag_role },
	{ "TagUser", iam_tag_user },
	{ "UntagRole", iam_untag_role },
	{ "UntagUser", iam_untag_user },
	{ "UpdateAccessKey", iam_update_access_key },
	{ "UpdateAssumeRolePolicy", iam_update_assume_role_policy },
	{ "UpdateLoginProfile", iam_update_login_profile },
	{ "UpdateRole", iam_update_role },
	{ "UpdateUser", iam_update_user },
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
