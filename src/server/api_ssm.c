/* api_ssm: Systems Manager actions. Each handler validates its request
 * against botocore's constraints (api_json), asks authz_check once per
 * resource it acts on, then reads or writes the store and, for sessions,
 * drives the gateway. Names of errors and their wording follow AWS. */
#include "server/api_ssm.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/pkgsig.h"
#include "server/agent_packages.h"
#include "server/api_documents.h"
#include "server/api_json.h"
#include "server/api_ssm_commands.h"
#include "server/api_ssm_records.h"
#include "server/authz.h"
#include "server/gateway.h"
#include "server/instance_principal.h"
#include "server/store.h"

#define SSM_DEFAULT_DOCUMENT "SSM-SessionManagerRunShell"
#define SSM_DAY_MS ((int64_t)24 * 3600 * 1000)
/* AWS: an activation expires at most 30 days ahead; some slack for the
 * client's clock and the request's flight. */
#define SSM_MAX_EXPIRY_MS (30 * SSM_DAY_MS + 5 * 60 * 1000)
#define SSM_MAX_PARAMS 64
#define SSM_DOC_MAX ((size_t)1 << 20)

/* ---- shared pieces ------------------------------------------------------ */

static void
ssm_arn(const struct api_call *c, const char *type, const char *id,
    char *out, size_t size)
{
	snprintf(out, size, "arn:aws:ssm:%s:%s:%s/%s", c->srv->region,
	    c->srv->account_id, type, id);
}

/* AWS-owned documents have no account in their ARN. */
static void
ssm_document_arn(const struct api_call *c, const char *name, char *out,
    size_t size)
{
	snprintf(out, size, "arn:aws:ssm:%s:%s:document/%s", c->srv->region,
	    strncmp(name, "AWS-", 4) == 0 ? "" : c->srv->account_id, name);
}

static int
ssm_set_str(json_t *o, const char *key, const char *v)
{
	return json_object_set_new(o, key, json_string(v));
}

static int
ssm_set_opt_str(json_t *o, const char *key, const char *v)
{
	if (v == NULL || v[0] == '\0')
		return 0;
	return json_object_set_new(o, key, json_string(v));
}

/* Validate a TagList member: {Key, Value} objects. Returns the count of
 * tags written to tags[] (caller's array of max entries) or -1. */
static int
ssm_tag_list(struct api_v *v, json_t *list, const char *path,
    struct store_tag *tags, size_t max)
{
	static const struct api_str key_d = { "Key", NULL, 1, 1, 128,
	    api_pat_tag, API_PAT_TAG, NULL };
	static const struct api_str val_d = { "Value", NULL, 1, 0, 256,
	    api_pat_tag, API_PAT_TAG, NULL };
	char p[96];
	size_t i, n = 0;
	json_t *t;

	json_array_foreach(list, i, t) {
		const char *k = NULL, *val = NULL;

		if (n >= max)
			return -1;
		snprintf(p, sizeof(p), "%s.%zu.member", path, i + 1);
		if (!json_is_object(t)) {
			api_v_type(v, p, "a structure");
			return -1;
		}
		snprintf(p, sizeof(p), "%s.%zu.member.key", path, i + 1);
		api_v_str_value(v, json_object_get(t, "Key"), p, &key_d, &k);
		snprintf(p, sizeof(p), "%s.%zu.member.value", path, i + 1);
		api_v_str_value(v, json_object_get(t, "Value"), p, &val_d,
		    &val);
		if (k != NULL && strncmp(k, "aws:", 4) == 0) {
			snprintf(p, sizeof(p), "%s.%zu.member.key", path,
			    i + 1);
			api_v_fail(v, p, k, "Member must not begin with "
			    "'aws:' (reserved)");
			k = NULL;
		}
		if (k != NULL && val != NULL) {
			tags[n].key = k;
			tags[n].value = val;
			n++;
		}
	}
	return (int)n;
}

static void
ssm_tag_cb(void *arg, const char *key, const char *value)
{
	json_array_append_new(arg, json_pack("{s:s, s:s}", "Key", key,
	    "Value", value));
}

/* NextToken and MaxResults of a list request. */
static int
ssm_paging(struct api_v *v, json_t *in, int64_t min, int64_t max,
    int64_t dflt, int *limit, int *offset, struct api_error *err)
{
	static const struct api_str tok_d = { "NextToken", "nextToken", 0, 0,
	    1024, NULL, NULL, NULL };
	const char *tok;
	int64_t n;

	api_v_int(v, in, "MaxResults", "maxResults", 0, min, max, dflt, &n);
	*limit = (int)n;
	*offset = 0;
	tok = api_v_str(v, in, &tok_d);
	if (tok != NULL && api_token_decode(tok, offset) != 0)
		return api_error_set(err, 400, "InvalidNextToken",
		    "The specified token isn't valid.");
	return 0;
}

static void
ssm_next_token(json_t *out, int more, int offset)
{
	char tok[32];

	if (!more)
		return;
	api_token_encode(offset, tok);
	ssm_set_str(out, "NextToken", tok);
}

/* ---- activations -------------------------------------------------------- */

static int
ssm_pat_role(const char *s)
{
	/* IAM role names (and an optional path) */
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) &&
		    strchr("+=,.@_-/", *s) == NULL)
			return 0;
	return 1;
}

static int
ssm_create_activation(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const struct api_str desc_d = { "Description", "description",
	    0, 0, 256, NULL, NULL, NULL };
	static const struct api_str name_d = { "DefaultInstanceName",
	    "defaultInstanceName", 0, 0, 256, api_pat_tag, API_PAT_TAG, NULL };
	static const struct api_str role_d = { "IamRole", "iamRole", 1, 0, 64,
	    ssm_pat_role, "^[\\w+=,.@/-]+$", NULL };
	struct store_tag *tags = NULL;
	char id[STORE_ACTIVATION_ID_SIZE];
	char code[STORE_ACTIVATION_CODE_LEN + 1], arn[256];
	struct activation_new a;
	struct api_v v;
	json_t *list, *meta;
	int64_t limit, exp;
	int rc, ntags = 0;

	memset(&a, 0, sizeof(a));
	api_v_init(&v);
	a.description = api_v_str(&v, in, &desc_d);
	a.default_instance_name = api_v_str(&v, in, &name_d);
	a.iam_role = api_v_str(&v, in, &role_d);
	api_v_int(&v, in, "RegistrationLimit", "registrationLimit", 0, 1, 1000,
	    1, &limit);
	if (api_v_time(&v, in, "ExpirationDate", "expirationDate", 0,
	    &exp) != 1)
		exp = c->now_ms + SSM_DAY_MS;
	list = api_v_list(&v, in, "Tags", "tags", 0, 0, 1000);
	if (list != NULL && json_array_size(list) > 0) {
		tags = calloc(json_array_size(list), sizeof(*tags));
		if (tags == NULL)
			return api_error_internal(err, "create_activation",
			    PH_ERR_NOMEM);
		ntags = ssm_tag_list(&v, list, "tags", tags,
		    json_array_size(list));
	}
	/* Accepted for compatibility; nothing reads it yet. */
	meta = api_v_list(&v, in, "RegistrationMetadata",
	    "registrationMetadata", 0, 0, 0);
	(void)meta;
	if ((rc = api_v_finish(&v, err)) != 0)
		goto out;
	if (exp <= c->now_ms || exp > c->now_ms + SSM_MAX_EXPIRY_MS) {
		rc = api_error_set(err, 400, "ValidationException",
		    "ExpirationDate must be in the future and at most 30 "
		    "days from now.");
		goto out;
	}
	if (ntags > STORE_TAGS_MAX) {
		rc = api_error_set(err, 400, "TooManyTagsError",
		    "The Tags parameter contains more than %d tags.",
		    STORE_TAGS_MAX);
		goto out;
	}
	if ((rc = api_authorize(c, "ssm:CreateActivation", "*", err)) != 0)
		goto out;
	/* AWS refuses an activation for a role its agents could not use. */
	if ((rc = instance_role_usable(c->srv, a.iam_role, arn,
	    sizeof(arn))) != 0) {
		rc = rc == PH_ERR_NOTFOUND ? api_error_set(err, 400,
		    "ValidationException", "Nonexistent role or missing ssm "
		    "service principal in trust policy: %s", arn) :
		    api_error_internal(err, "create_activation", rc);
		goto out;
	}
	a.registration_limit = (int)limit;
	a.expiration_ms = exp;
	a.tags = tags;
	a.ntags = ntags > 0 ? (size_t)ntags : 0;
	rc = store_activation_create(c->srv->store, &a, c->now_ms, id, code);
	if (rc != 0) {
		rc = api_error_internal(err, "create_activation", rc);
		goto out;
	}
	log_info("event=activation_created activation=%s role=%s limit=%d",
	    id, a.iam_role, a.registration_limit);
	ssm_set_str(out, "ActivationId", id);
	ssm_set_str(out, "ActivationCode", code);
	memset(code, 0, sizeof(code));
out:
	free(tags);
	return rc;
}

struct act_list {
	const struct api_call *c;
	json_t *ids, *names, *roles;   /* filter values (OR within a key) */
	int offset, limit, seen, more;
	json_t *list;
	/* ssm_is_latest's answer for one PlatformType */
	int latest_known;
	char latest_os[16];
	char latest[PKGSIG_VERSION_MAX + 1];
};

static int
ssm_in_values(json_t *values, const char *s)
{
	const char *v;
	size_t i;
	json_t *x;

	if (values == NULL)
		return 1;
	/* Lists from a document are not all checked to hold strings: any
	 * other member matches nothing. */
	json_array_foreach(values, i, x)
		if ((v = json_string_value(x)) != NULL && strcmp(v, s) == 0)
			return 1;
	return 0;
}

static int
ssm_activation_cb(void *arg, const struct activation_rec *a)
{
	struct act_list *l = arg;
	json_t *o, *tags;

	if (!ssm_in_values(l->ids, a->id) ||
	    !ssm_in_values(l->names, a->default_instance_name) ||
	    !ssm_in_values(l->roles, a->iam_role))
		return 0;
	if (l->seen++ < l->offset)
		return 0;
	if ((int)json_array_size(l->list) >= l->limit) {
		l->more = 1;
		return 1;
	}
	tags = json_array();
	store_tags_foreach(l->c->srv->store, "Activation", a->id, ssm_tag_cb,
	    tags);
	o = json_object();
	ssm_set_str(o, "ActivationId", a->id);
	ssm_set_opt_str(o, "Description", a->description);
	ssm_set_opt_str(o, "DefaultInstanceName", a->default_instance_name);
	ssm_set_str(o, "IamRole", a->iam_role);
	json_object_set_new(o, "RegistrationLimit",
	    json_integer(a->registration_limit));
	json_object_set_new(o, "RegistrationsCount",
	    json_integer(a->registrations_count));
	json_object_set_new(o, "ExpirationDate",
	    api_json_time(a->expiration_ms));
	json_object_set_new(o, "Expired",
	    json_boolean(l->c->now_ms >= a->expiration_ms));
	json_object_set_new(o, "CreatedDate", api_json_time(a->created_ms));
	json_object_set_new(o, "Tags", tags);
	json_array_append_new(l->list, o);
	return 0;
}

/* Check that a list's members are strings of min..max characters. */
static int
ssm_string_list(struct api_v *v, json_t *list, const char *path,
    size_t min, size_t max)
{
	struct api_str d = { NULL, NULL, 1, min, max, NULL, NULL, NULL };
	const char *s;
	char p[96];
	size_t i;
	json_t *x;
	int ok = 1;

	json_array_foreach(list, i, x) {
		/* Only names the member in a message: a cut name will do. */
		if (snprintf(p, sizeof(p), "%s.%zu.member", path, i + 1) >=
		    (int)sizeof(p))
			p[sizeof(p) - 1] = '\0';
		if (api_v_str_value(v, x, p, &d, &s) != 1)
			ok = 0;
	}
	return ok;
}

static int
ssm_describe_activations(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const char *const keys[] = { "ActivationIds",
	    "DefaultInstanceName", "IamRole", NULL };
	static const struct api_str key_d = { NULL, NULL, 0, 0, 0, NULL, NULL,
	    keys };
	struct act_list l;
	struct api_v v;
	json_t *filters, *f;
	char p[96];
	size_t i;
	int rc;

	memset(&l, 0, sizeof(l));
	l.c = c;
	api_v_init(&v);
	filters = api_v_list(&v, in, "Filters", "filters", 0, 0, 0);
	json_array_foreach(filters, i, f) {
		const char *k = NULL;
		json_t *vals;

		snprintf(p, sizeof(p), "filters.%zu.member", i + 1);
		if (!json_is_object(f)) {
			api_v_type(&v, p, "a structure");
			break;
		}
		snprintf(p, sizeof(p), "filters.%zu.member.filterKey", i + 1);
		api_v_str_value(&v, json_object_get(f, "FilterKey"), p, &key_d,
		    &k);
		snprintf(p, sizeof(p), "filters.%zu.member.filterValues",
		    i + 1);
		vals = api_v_list(&v, f, "FilterValues", p, 0, 0, 0);
		if (vals == NULL || k == NULL ||
		    !ssm_string_list(&v, vals, p, 0, 0))
			continue;
		/* Several filters on one key: the last one counts. */
		if (strcmp(k, "ActivationIds") == 0)
			l.ids = vals;
		else if (strcmp(k, "DefaultInstanceName") == 0)
			l.names = vals;
		else
			l.roles = vals;
	}
	if ((rc = ssm_paging(&v, in, 1, 50, 50, &l.limit, &l.offset,
	    err)) != 0)
		return rc;
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = api_authorize(c, "ssm:DescribeActivations", "*", err)) != 0)
		return rc;
	l.list = json_array();
	json_object_set_new(out, "ActivationList", l.list);
	if ((rc = store_activation_foreach(c->srv->store, ssm_activation_cb,
	    &l)) != 0)
		return api_error_internal(err, "describe_activations", rc);
	ssm_next_token(out, l.more, l.offset + l.limit);
	return 0;
}

static int
ssm_delete_activation(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const struct api_str id_d = { "ActivationId", "activationId", 1,
	    0, 0, api_pat_uuid, API_PAT_UUID, NULL };
	const char *id;
	struct api_v v;
	int rc;

	(void)out;
	api_v_init(&v);
	id = api_v_str(&v, in, &id_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = api_authorize(c, "ssm:DeleteActivation", "*", err)) != 0)
		return rc;
	rc = store_activation_delete(c->srv->store, id);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 400, "InvalidActivation",
		    "Activation ID %s does not exist.", id);
	if (rc != 0)
		return api_error_internal(err, "delete_activation", rc);
	log_info("event=activation_deleted activation=%s", id);
	return 0;
}

/* ---- managed instances -------------------------------------------------- */

enum inst_key {
	IK_INSTANCE_IDS, IK_AGENT_VERSION, IK_PING_STATUS, IK_PLATFORM_TYPES,
	IK_ACTIVATION_IDS, IK_IAM_ROLE, IK_RESOURCE_TYPE,
	IK_ASSOCIATION_STATUS, IK_SOURCE_IDS, IK_SOURCE_TYPES, IK_TAG_KEY,
	IK_TAG
};

static const struct {
	const char *name;
	enum inst_key key;
} inst_keys[] = {
	{ "InstanceIds", IK_INSTANCE_IDS },
	{ "AgentVersion", IK_AGENT_VERSION },
	{ "PingStatus", IK_PING_STATUS },
	{ "PlatformTypes", IK_PLATFORM_TYPES },
	{ "PlatformType", IK_PLATFORM_TYPES },
	{ "ActivationIds", IK_ACTIVATION_IDS },
	{ "IamRole", IK_IAM_ROLE },
	{ "ResourceType", IK_RESOURCE_TYPE },
	{ "AssociationStatus", IK_ASSOCIATION_STATUS },
	{ "SourceIds", IK_SOURCE_IDS },
	{ "SourceTypes", IK_SOURCE_TYPES },
	{ "tag-key", IK_TAG_KEY },
};

#define INST_MAX_FILTERS 32

struct inst_filter {
	enum inst_key key;
	const char *tag;           /* IK_TAG: the key after "tag:" */
	json_t *values;
};

struct inst_list {
	const struct api_call *c;
	struct inst_filter f[INST_MAX_FILTERS];
	size_t nf;
	int offset, limit, seen, more;
	json_t *list;
	/* ssm_is_latest's answer for one PlatformType */
	int latest_known;
	char latest_os[16];
	char latest[PKGSIG_VERSION_MAX + 1];
};

struct tag_probe {
	const char *key;
	json_t *values;     /* NULL: any value */
	json_t *key_values; /* tag-key: keys wanted */
	int hit;
};

static void
ssm_tag_probe_cb(void *arg, const char *key, const char *value)
{
	struct tag_probe *t = arg;

	if (t->key_values != NULL) {
		if (ssm_in_values(t->key_values, key))
			t->hit = 1;
	} else if (strcmp(key, t->key) == 0 &&
	    ssm_in_values(t->values, value)) {
		t->hit = 1;
	}
}

static int
ssm_instance_matches(struct inst_list *l, const struct instance_rec *in)
{
	struct tag_probe t;
	size_t i;

	for (i = 0; i < l->nf; i++) {
		const struct inst_filter *f = &l->f[i];
		json_t *vals = f->values;

		switch (f->key) {
		case IK_INSTANCE_IDS:
		case IK_SOURCE_IDS:
			if (!ssm_in_values(vals, in->id))
				return 0;
			break;
		case IK_AGENT_VERSION:
			if (!ssm_in_values(vals, in->agent_version))
				return 0;
			break;
		case IK_PING_STATUS:
			if (!ssm_in_values(vals, in->ping_status))
				return 0;
			break;
		case IK_PLATFORM_TYPES:
			if (!ssm_in_values(vals, in->platform_type))
				return 0;
			break;
		case IK_ACTIVATION_IDS:
			if (!ssm_in_values(vals, in->activation_id))
				return 0;
			break;
		case IK_IAM_ROLE:
			if (!ssm_in_values(vals, in->iam_role))
				return 0;
			break;
		case IK_RESOURCE_TYPE:
			if (!ssm_in_values(vals, "ManagedInstance"))
				return 0;
			break;
		case IK_SOURCE_TYPES:
			if (!ssm_in_values(vals, "AWS::SSM::ManagedInstance"))
				return 0;
			break;
		case IK_ASSOCIATION_STATUS:
			return 0;   /* no associations exist */
		case IK_TAG_KEY:
		case IK_TAG:
			memset(&t, 0, sizeof(t));
			if (f->key == IK_TAG_KEY) {
				t.key_values = vals;
			} else {
				t.key = f->tag;
				t.values = vals;
			}
			store_tags_foreach(l->c->srv->store, "ManagedInstance",
			    in->id, ssm_tag_probe_cb, &t);
			if (!t.hit)
				return 0;
			break;
		}
	}
	return 1;
}

/* IsLatestVersion: not older than the newest build hosted for the
 * instance's OS (agent_packages.h), or with none hosted, than this
 * portholed's own agent version. The answer per OS is kept for the
 * rest of the listing. */
static int
ssm_is_latest(struct inst_list *l, const struct instance_rec *in)
{
	if (!l->latest_known || strcmp(l->latest_os, in->platform_type)) {
		snprintf(l->latest_os, sizeof(l->latest_os), "%s",
		    in->platform_type);
		if (store_agent_package_latest_os(l->c->srv->store,
		    in->platform_type, l->latest) != 0)
			snprintf(l->latest, sizeof(l->latest), "%s",
			    PORTHOLE_AGENT_VERSION);
		l->latest_known = 1;
	}
	if (!pkgsig_valid_version(in->agent_version))
		return strcmp(in->agent_version, l->latest) == 0;
	return pkgsig_version_cmp(in->agent_version, l->latest) >= 0;
}

static int
ssm_instance_cb(void *arg, const struct instance_rec *in)
{
	struct inst_list *l = arg;
	json_t *o;

	if (!ssm_instance_matches(l, in))
		return 0;
	if (l->seen++ < l->offset)
		return 0;
	if ((int)json_array_size(l->list) >= l->limit) {
		l->more = 1;
		return 1;
	}
	o = json_object();
	ssm_set_str(o, "InstanceId", in->id);
	ssm_set_str(o, "PingStatus", in->ping_status);
	if (in->last_ping_ms > 0)
		json_object_set_new(o, "LastPingDateTime",
		    api_json_time(in->last_ping_ms));
	if (in->agent_version[0] != '\0') {
		ssm_set_str(o, "AgentVersion", in->agent_version);
		json_object_set_new(o, "IsLatestVersion",
		    json_boolean(ssm_is_latest(l, in)));
	}
	ssm_set_opt_str(o, "PlatformType", in->platform_type);
	ssm_set_opt_str(o, "PlatformName", in->platform_name);
	ssm_set_opt_str(o, "PlatformVersion", in->platform_version);
	ssm_set_opt_str(o, "ActivationId", in->activation_id);
	ssm_set_opt_str(o, "IamRole", in->iam_role);
	json_object_set_new(o, "RegistrationDate",
	    api_json_time(in->registration_ms));
	ssm_set_str(o, "ResourceType", "ManagedInstance");
	ssm_set_opt_str(o, "Name", in->name);
	ssm_set_opt_str(o, "IPAddress", in->ip_address);
	ssm_set_opt_str(o, "ComputerName", in->computer_name);
	ssm_set_str(o, "SourceId", in->id);
	ssm_set_str(o, "SourceType", "AWS::SSM::ManagedInstance");
	json_array_append_new(l->list, o);
	return 0;
}

/* Values a filter key admits, or NULL for any. */
static const char *const *
ssm_inst_key_values(enum inst_key k)
{
	static const char *const ping[] = { "Online", "ConnectionLost",
	    "Inactive", NULL };
	static const char *const plat[] = { "Windows", "Linux", "MacOS",
	    NULL };
	static const char *const rtype[] = { "ManagedInstance", "EC2Instance",
	    NULL };
	static const char *const assoc[] = { "Success", "Pending", "Failed",
	    NULL };
	static const char *const stype[] = { "AWS::EC2::Instance",
	    "AWS::IoT::Thing", "AWS::SSM::ManagedInstance", NULL };

	switch (k) {
	case IK_PING_STATUS: return ping;
	case IK_PLATFORM_TYPES: return plat;
	case IK_RESOURCE_TYPE: return rtype;
	case IK_ASSOCIATION_STATUS: return assoc;
	case IK_SOURCE_TYPES: return stype;
	default: return NULL;
	}
}

/* One filter of either list: key name and values. */
static int
ssm_inst_filter(struct inst_list *l, struct api_v *v, const char *key,
    json_t *vals, const char *vpath, int legacy, struct api_error *err)
{
	const char *const *allowed;
	struct inst_filter *f;
	size_t i, j;
	json_t *x;

	if (!ssm_string_list(v, vals, vpath, 1, 0))
		return 0;
	if (l->nf >= INST_MAX_FILTERS)
		return api_error_set(err, 400, "ValidationException",
		    "Too many filters: at most %d.", INST_MAX_FILTERS);
	f = &l->f[l->nf];
	f->values = vals;
	f->tag = NULL;
	if (!legacy && strncmp(key, "tag:", 4) == 0 && key[4] != '\0') {
		f->key = IK_TAG;
		f->tag = key + 4;
		l->nf++;
		return 0;
	}
	for (i = 0; i < sizeof(inst_keys) / sizeof(inst_keys[0]); i++)
		if (strcmp(key, inst_keys[i].name) == 0 &&
		    (!legacy || inst_keys[i].key <= IK_ASSOCIATION_STATUS))
			break;
	if (i == sizeof(inst_keys) / sizeof(inst_keys[0]))
		return api_error_set(err, 400, "InvalidFilterKey",
		    "The filter key %s is not valid.", key);
	f->key = inst_keys[i].key;
	if ((allowed = ssm_inst_key_values(f->key)) != NULL) {
		json_array_foreach(vals, i, x) {
			const char *s = json_string_value(x);

			for (j = 0; allowed[j] != NULL; j++)
				if (strcmp(s, allowed[j]) == 0)
					break;
			if (allowed[j] == NULL)
				return api_error_set(err, 400,
				    "InvalidInstanceInformationFilterValue",
				    "The filter value %s is not valid for "
				    "key %s.", s, key);
		}
	}
	l->nf++;
	return 0;
}

static int
ssm_describe_instance_information(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err)
{
	static const char *const legacy_keys[] = { "InstanceIds",
	    "AgentVersion", "PingStatus", "PlatformTypes", "ActivationIds",
	    "IamRole", "ResourceType", "AssociationStatus", NULL };
	static const struct api_str lkey_d = { NULL, NULL, 1, 0, 0, NULL, NULL,
	    legacy_keys };
	static const struct api_str key_d = { NULL, NULL, 1, 1, 0, NULL, NULL,
	    NULL };
	struct inst_list *l;
	json_t *legacy, *filters, *f, *vals;
	struct api_v v;
	char p[96], vp[96];
	const char *k;
	size_t i;
	int rc;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return api_error_internal(err, "describe_instance_information",
		    PH_ERR_NOMEM);
	l->c = c;
	api_v_init(&v);
	legacy = api_v_list(&v, in, "InstanceInformationFilterList",
	    "instanceInformationFilterList", 0, 0, 0);
	filters = api_v_list(&v, in, "Filters", "filters", 0, 0, 0);
	if ((rc = ssm_paging(&v, in, 5, 50, 50, &l->limit, &l->offset,
	    err)) != 0)
		goto out;
	json_array_foreach(legacy, i, f) {
		snprintf(p, sizeof(p), "instanceInformationFilterList.%zu."
		    "member", i + 1);
		if (!json_is_object(f)) {
			api_v_type(&v, p, "a structure");
			break;
		}
		snprintf(p, sizeof(p), "instanceInformationFilterList.%zu."
		    "member.key", i + 1);
		snprintf(vp, sizeof(vp), "instanceInformationFilterList.%zu."
		    "member.valueSet", i + 1);
		api_v_str_value(&v, json_object_get(f, "key"), p, &lkey_d, &k);
		vals = api_v_list(&v, f, "valueSet", vp, 1, 1, 100);
		if (k == NULL || vals == NULL || v.nerr || v.serial)
			continue;
		if ((rc = ssm_inst_filter(l, &v, k, vals, vp, 1, err)) != 0)
			goto out;
	}
	json_array_foreach(filters, i, f) {
		snprintf(p, sizeof(p), "filters.%zu.member", i + 1);
		if (!json_is_object(f)) {
			api_v_type(&v, p, "a structure");
			break;
		}
		snprintf(p, sizeof(p), "filters.%zu.member.key", i + 1);
		snprintf(vp, sizeof(vp), "filters.%zu.member.values", i + 1);
		api_v_str_value(&v, json_object_get(f, "Key"), p, &key_d, &k);
		vals = api_v_list(&v, f, "Values", vp, 1, 1, 100);
		if (k == NULL || vals == NULL || v.nerr || v.serial)
			continue;
		if ((rc = ssm_inst_filter(l, &v, k, vals, vp, 0, err)) != 0)
			goto out;
	}
	if ((rc = api_v_finish(&v, err)) != 0)
		goto out;
	if (json_array_size(legacy) > 0 && json_array_size(filters) > 0) {
		rc = api_error_set(err, 400, "ValidationException",
		    "InstanceInformationFilterList and Filters cannot be "
		    "used together.");
		goto out;
	}
	if ((rc = api_authorize(c, "ssm:DescribeInstanceInformation", "*",
	    err)) != 0)
		goto out;
	l->list = json_array();
	json_object_set_new(out, "InstanceInformationList", l->list);
	if ((rc = store_instance_foreach(c->srv->store, ssm_instance_cb,
	    l)) != 0) {
		rc = api_error_internal(err, "describe_instance_information",
		    rc);
		goto out;
	}
	ssm_next_token(out, l->more, l->offset + l->limit);
out:
	free(l);
	return rc;
}

struct open_for_target {
	const char *target;
	char (*ids)[SESSION_ID_MAX];
	size_t n, cap;
};

static void
ssm_open_for_target_cb(void *arg, const char *session_id, const char *target)
{
	struct open_for_target *o = arg;

	if (strcmp(target, o->target) != 0 || o->n >= o->cap)
		return;
	snprintf(o->ids[o->n++], SESSION_ID_MAX, "%s", session_id);
}

static int
ssm_deregister_managed_instance(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err)
{
	static const struct api_str id_d = { "InstanceId", "instanceId", 1,
	    20, 124, api_pat_managed_instance, API_PAT_MANAGED_INSTANCE,
	    NULL };
	char arn[256], ids[64][SESSION_ID_MAX];
	struct open_for_target o;
	const char *id;
	struct api_v v;
	size_t i;
	int rc;

	(void)out;
	api_v_init(&v);
	id = api_v_str(&v, in, &id_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	ssm_arn(c, "managed-instance", id, arn, sizeof(arn));
	if ((rc = api_authorize(c, "ssm:DeregisterManagedInstance", arn,
	    err)) != 0)
		return rc;
	rc = store_instance_deregister(c->srv->store, id, c->now_ms);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 400, "InvalidInstanceId",
		    "Instance Id %s is not valid.", id);
	if (rc != 0)
		return api_error_internal(err, "deregister_instance", rc);
	/* Its open sessions end with it (at most 64 per call; the gateway
	 * ends the rest when the control channel closes). */
	memset(&o, 0, sizeof(o));
	o.target = id;
	o.ids = ids;
	o.cap = sizeof(ids) / sizeof(ids[0]);
	store_session_foreach_open(c->srv->store, ssm_open_for_target_cb, &o);
	for (i = 0; i < o.n; i++) {
		if (c->srv->gw != NULL)
			gateway_terminate_session(c->srv->gw, o.ids[i],
			    "instance deregistered");
		else
			store_session_set_status(c->srv->store, o.ids[i],
			    "Terminated", "instance deregistered", c->now_ms);
	}
	if (c->srv->gw != NULL)
		gateway_disconnect_instance(c->srv->gw, id);
	return 0;
}

/* ---- tags -------------------------------------------------------------- */

static const char *const tag_rtypes[] = { "Document", "ManagedInstance",
    "MaintenanceWindow", "Parameter", "PatchBaseline", "OpsItem",
    "OpsMetadata", "Automation", "Association", NULL };

/* The resource's ARN for authz; PH_ERR_NOTFOUND if a kind we hold
 * ourselves (instances, documents) does not exist. */
static int
ssm_tag_resource(const struct api_call *c, const char *rtype,
    const char *rid, char *arn, size_t size, struct api_error *err)
{
	static const struct {
		const char *rtype, *arn_type;
	} kinds[] = {
		{ "MaintenanceWindow", "maintenancewindow" },
		{ "Parameter", "parameter" },
		{ "PatchBaseline", "patchbaseline" },
		{ "OpsItem", "opsitem" },
		{ "OpsMetadata", "opsmetadata" },
		{ "Automation", "automation-execution" },
		{ "Association", "association" },
	};
	char type[32];
	size_t i;
	char *doc = NULL;

	if (strcmp(rtype, "ManagedInstance") == 0) {
		if (!api_pat_managed_instance(rid) ||
		    store_instance_active(c->srv->store, rid) != 0)
			goto notfound;
		ssm_arn(c, "managed-instance", rid, arn, size);
		return 0;
	}
	if (strcmp(rtype, "Document") == 0) {
		if (store_document_get(c->srv->store, rid, &doc, type) != 0)
			goto notfound;
		free(doc);
		ssm_document_arn(c, rid, arn, size);
		return 0;
	}
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(rtype, kinds[i].rtype) == 0)
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		goto notfound;
	/* Parameter names start with '/' when they have a path. */
	ssm_arn(c, kinds[i].arn_type, rid[0] == '/' && i == 1 ? rid + 1 : rid,
	    arn, size);
	return 0;
notfound:
	return api_error_set(err, 400, "InvalidResourceId",
	    "The resource ID \"%s\" is not valid. Verify the ID and try "
	    "again.", rid);
}

static const struct api_str tag_rtype_d = { "ResourceType", "resourceType",
    1, 0, 0, NULL, NULL, tag_rtypes };
static const struct api_str tag_rid_d = { "ResourceId", "resourceId", 1, 1,
    1024, NULL, NULL, NULL };

static int
ssm_add_tags_to_resource(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct store_tag *tags = NULL;
	const char *rtype, *rid;
	char arn[1200];
	struct api_v v;
	json_t *list;
	int rc, n = 0;

	(void)out;
	api_v_init(&v);
	rtype = api_v_str(&v, in, &tag_rtype_d);
	rid = api_v_str(&v, in, &tag_rid_d);
	list = api_v_list(&v, in, "Tags", "tags", 1, 0, 1000);
	if (list != NULL && json_array_size(list) > 0) {
		if ((tags = calloc(json_array_size(list),
		    sizeof(*tags))) == NULL)
			return api_error_internal(err, "add_tags",
			    PH_ERR_NOMEM);
		n = ssm_tag_list(&v, list, "tags", tags,
		    json_array_size(list));
	}
	if ((rc = api_v_finish(&v, err)) != 0)
		goto out;
	if ((rc = ssm_tag_resource(c, rtype, rid, arn, sizeof(arn),
	    err)) != 0)
		goto out;
	if ((rc = api_authorize(c, "ssm:AddTagsToResource", arn, err)) != 0)
		goto out;
	rc = store_tags_add(c->srv->store, rtype, rid, tags, (size_t)n,
	    STORE_TAGS_MAX);
	if (rc == PH_ERR_TOOBIG)
		rc = api_error_set(err, 400, "TooManyTagsError",
		    "The Tags parameter contains too many tags: a resource "
		    "holds at most %d.", STORE_TAGS_MAX);
	else if (rc != 0)
		rc = api_error_internal(err, "add_tags", rc);
out:
	free(tags);
	return rc;
}

static int
ssm_remove_tags_from_resource(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err)
{
	static const struct api_str key_d = { NULL, NULL, 1, 1, 128,
	    api_pat_tag, API_PAT_TAG, NULL };
	const char **keys = NULL, *rtype, *rid;
	char arn[1200], p[64];
	struct api_v v;
	json_t *list, *x;
	size_t i, n = 0;
	int rc;

	(void)out;
	api_v_init(&v);
	rtype = api_v_str(&v, in, &tag_rtype_d);
	rid = api_v_str(&v, in, &tag_rid_d);
	list = api_v_list(&v, in, "TagKeys", "tagKeys", 1, 0, 1000);
	if (list != NULL && json_array_size(list) > 0) {
		if ((keys = calloc(json_array_size(list),
		    sizeof(*keys))) == NULL)
			return api_error_internal(err, "remove_tags",
			    PH_ERR_NOMEM);
		json_array_foreach(list, i, x) {
			snprintf(p, sizeof(p), "tagKeys.%zu.member", i + 1);
			if (api_v_str_value(&v, x, p, &key_d, &keys[n]) == 1)
				n++;
		}
	}
	if ((rc = api_v_finish(&v, err)) != 0)
		goto out;
	if ((rc = ssm_tag_resource(c, rtype, rid, arn, sizeof(arn),
	    err)) != 0)
		goto out;
	if ((rc = api_authorize(c, "ssm:RemoveTagsFromResource", arn,
	    err)) != 0)
		goto out;
	if ((rc = store_tags_remove(c->srv->store, rtype, rid, keys, n)) != 0)
		rc = api_error_internal(err, "remove_tags", rc);
out:
	free(keys);
	return rc;
}

static int
ssm_list_tags_for_resource(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err)
{
	const char *rtype, *rid;
	char arn[1200];
	struct api_v v;
	json_t *list;
	int rc;

	api_v_init(&v);
	rtype = api_v_str(&v, in, &tag_rtype_d);
	rid = api_v_str(&v, in, &tag_rid_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = ssm_tag_resource(c, rtype, rid, arn, sizeof(arn),
	    err)) != 0)
		return rc;
	if ((rc = api_authorize(c, "ssm:ListTagsForResource", arn, err)) != 0)
		return rc;
	list = json_array();
	json_object_set_new(out, "TagList", list);
	if ((rc = store_tags_foreach(c->srv->store, rtype, rid, ssm_tag_cb,
	    list)) != 0)
		return api_error_internal(err, "list_tags", rc);
	return 0;
}

/* ---- session documents -------------------------------------------------- */

static int
ssm_param_error(struct api_error *err, const char *doc, const char *fmt,
    const char *a)
{
	char m[400];

	snprintf(m, sizeof(m), fmt, a);
	return api_error_set(err, 400, "InvalidParameters",
	    "%s (document %s)", m, doc);
}

/* Replace {{ name }} references whose name is in vals; others (such as
 * {{ssm:...}}) stay. NULL on error; s itself unchanged if none matched. */
static char *
ssm_subst(const char *s, json_t *vals)
{
	const char *p = s, *open, *close, *a, *b, *rep;
	struct buf out;
	char name[256];
	char *res;

	buf_init(&out, SSM_DOC_MAX);
	while ((open = strstr(p, "{{")) != NULL) {
		close = strstr(open + 2, "}}");
		if (close == NULL)
			break;
		for (a = open + 2; a < close && isspace((unsigned char)*a); a++)
			;
		for (b = close; b > a && isspace((unsigned char)b[-1]); b--)
			;
		rep = NULL;
		if (b > a && (size_t)(b - a) < sizeof(name)) {
			memcpy(name, a, (size_t)(b - a));
			name[b - a] = '\0';
			rep = json_string_value(json_object_get(vals, name));
		}
		if (buf_append(&out, p, (size_t)(open - p)) != 0)
			goto fail;
		if (rep != NULL) {
			if (buf_append_str(&out, rep) != 0)
				goto fail;
		} else if (buf_append(&out, open,
		    (size_t)(close + 2 - open)) != 0) {
			goto fail;
		}
		p = close + 2;
	}
	if (buf_append_str(&out, p) != 0)
		goto fail;
	buf_cstr(&out);
	res = (char *)buf_steal(&out, NULL);
	return res;
fail:
	buf_free(&out);
	return NULL;
}

static int
ssm_subst_walk(json_t *j, json_t *vals, int depth)
{
	const char *k;
	json_t *x;
	size_t i;
	char *s;
	int rc;

	if (depth > 32)
		return PH_ERR_TOOBIG;
	if (json_is_string(j)) {
		if (strstr(json_string_value(j), "{{") == NULL)
			return 0;
		if ((s = ssm_subst(json_string_value(j), vals)) == NULL)
			return PH_ERR_TOOBIG;
		rc = json_string_set(j, s);
		free(s);
		return rc == 0 ? 0 : PH_ERR_INVALID;
	}
	if (json_is_object(j)) {
		json_object_foreach(j, k, x) {
			if (depth == 0 && strcmp(k, "parameters") == 0)
				continue;
			if ((rc = ssm_subst_walk(x, vals, depth + 1)) != 0)
				return rc;
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, x)
			if ((rc = ssm_subst_walk(x, vals, depth + 1)) != 0)
				return rc;
	}
	return 0;
}

static int
ssm_param_allowed(json_t *def, const char *val)
{
	json_t *allowed = json_object_get(def, "allowedValues");
	const char *pat = json_string_value(json_object_get(def,
	    "allowedPattern"));
	regex_t re;
	int ok;

	if (json_is_array(allowed) && !ssm_in_values(allowed, val))
		return 0;
	if (pat == NULL)
		return 1;
	if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
		return 0;   /* a pattern we cannot check admits nothing */
	ok = regexec(&re, val, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

int
api_ssm_resolve_document(const char *doc_name, json_t *doc, json_t *params,
    json_t **doc_out, json_t **params_out, struct api_error *err)
{
	json_t *defs = json_object_get(doc, "parameters");
	json_t *vals = NULL, *copy = NULL, *def, *given, *dflt;
	const char *name, *val;
	int rc;

	*doc_out = *params_out = NULL;
	if (!json_is_object(doc))
		return api_error_set(err, 400, "InvalidDocument",
		    "Document %s is not valid.", doc_name);
	if (defs != NULL && !json_is_object(defs))
		defs = NULL;
	if ((vals = json_object()) == NULL)
		goto nomem;
	json_object_foreach(params, name, given) {
		(void)given;
		if (defs == NULL || json_object_get(defs, name) == NULL) {
			rc = ssm_param_error(err, doc_name, "Parameter %s is "
			    "not defined in the document", name);
			goto fail;
		}
	}
	json_object_foreach(defs, name, def) {
		given = json_object_get(params, name);
		if (given != NULL) {
			if (json_array_size(given) != 1) {
				rc = ssm_param_error(err, doc_name, "Parameter "
				    "%s takes exactly one value", name);
				goto fail;
			}
			val = json_string_value(json_array_get(given, 0));
		} else {
			dflt = json_object_get(def, "default");
			val = json_string_value(dflt);
			if (val == NULL) {
				rc = ssm_param_error(err, doc_name, "Parameter "
				    "%s is required", name);
				goto fail;
			}
		}
		if (val == NULL || !ssm_param_allowed(def, val)) {
			rc = ssm_param_error(err, doc_name, "The value of "
			    "parameter %s is not allowed", name);
			goto fail;
		}
		if (json_object_set_new(vals, name, json_string(val)) != 0)
			goto nomem;
	}
	if ((copy = json_deep_copy(doc)) == NULL)
		goto nomem;
	if (ssm_subst_walk(copy, vals, 0) != 0) {
		rc = api_error_set(err, 400, "InvalidDocument",
		    "Document %s could not be resolved.", doc_name);
		goto fail;
	}
	*doc_out = copy;
	*params_out = vals;
	return 0;
nomem:
	rc = api_error_set(err, 500, "InternalServerError",
	    "An internal error occurred.");
fail:
	json_decref(copy);
	json_decref(vals);
	return rc;
}

/* ---- sessions ----------------------------------------------------------- */

/* The Host header, if it is a plain host[:port] we may put in a URL. */
static int
ssm_host_ok(const char *h)
{
	size_t n;

	if (h == NULL || (n = strlen(h)) == 0 || n > 255)
		return 0;
	for (; *h != '\0'; h++)
		if (!isalnum((unsigned char)*h) && strchr(".-:[]_", *h) == NULL)
			return 0;
	return 1;
}

static int
ssm_stream_url(const struct api_call *c, const char *sid, json_t *out,
    struct api_error *err)
{
	char url[512];

	if (!ssm_host_ok(c->host))
		return api_error_set(err, 400, "ValidationException",
		    "The Host header is missing or not valid.");
	/* spec 2.1 [R] */
	snprintf(url, sizeof(url), "wss://%s/v1/data-channel/%s"
	    "?role=publish_subscribe", c->host, sid);
	ssm_set_str(out, "StreamUrl", url);
	return 0;
}

/* "<principal name>-<17 hex digits>", as AWS names sessions. */
static int
ssm_session_id(const struct api_call *c, char out[SESSION_ID_MAX])
{
	static const char hex[] = "0123456789abcdef";
	const char *name = c->principal != NULL ? c->principal->name : "";
	uint8_t rnd[17];
	size_t i, n = 0;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return PH_ERR_CRYPTO;
	/* 96 characters at most: the name gets what the suffix leaves. */
	for (i = 0; name[i] != '\0' && n < SESSION_ID_MAX - 1 - 18; i++)
		out[n++] = isalnum((unsigned char)name[i]) ||
		    strchr("_.@=,+-", name[i]) != NULL ? name[i] : '-';
	if (n == 0) {
		memcpy(out, "session", 7);
		n = 7;
	}
	out[n++] = '-';
	for (i = 0; i < sizeof(rnd); i++)
		out[n++] = hex[rnd[i] & 15];
	out[n] = '\0';
	return 0;
}

static int
ssm_start_session(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const struct api_str target_d = { "Target", "target", 1, 1,
	    400, NULL, NULL, NULL };
	static const struct api_str doc_d = { "DocumentName", "documentName",
	    0, 3, 128, NULL, "^[a-zA-Z0-9_\\-.:/]{3,128}$", NULL };
	static const struct api_str reason_d = { "Reason", "reason", 0, 1,
	    256, NULL, "^.{1,256}$", NULL };
	char iarn[600], darn[300], dtype[32], sid[SESSION_ID_MAX];
	char token[STORE_TOKEN_SIZE], pp[300];
	const char *target, *docarg, *docname, *reason, *mdur, *s;
	const char *dac_val[1];
	struct policy_ctx dac;
	struct api_call cc;
	json_t *params, *doc = NULL, *rdoc = NULL, *rparams = NULL, *x, *y;
	struct session_rec rec;
	struct record_prefs prefs;
	char *content = NULL;
	json_error_t jerr;
	struct api_v v;
	size_t i;
	int rc;

	api_v_init(&v);
	target = api_v_str(&v, in, &target_d);
	docarg = api_v_str(&v, in, &doc_d);
	reason = api_v_str(&v, in, &reason_d);
	params = api_v_object(&v, in, "Parameters", "parameters", 0);
	if (docarg != NULL) {
		for (s = docarg; *s != '\0'; s++)
			if (!isalnum((unsigned char)*s) &&
			    strchr("_-.:/", *s) == NULL)
				break;
		if (*s != '\0')
			api_v_fail(&v, "documentName", docarg, "Member must "
			    "satisfy regular expression pattern: "
			    "^[a-zA-Z0-9_\\-.:/]{3,128}$");
	}
	if (reason != NULL && strpbrk(reason, "\r\n") != NULL)
		api_v_fail(&v, "reason", reason, "Member must satisfy regular "
		    "expression pattern: ^.{1,256}$");
	if (params != NULL && json_object_size(params) > SSM_MAX_PARAMS)
		api_v_fail(&v, "parameters", "{...}", "Member must have "
		    "length less than or equal to 64");
	json_object_foreach(params, s, x) {
		static const struct api_str vd = { NULL, NULL, 1, 1, 65535,
		    NULL, NULL, NULL };
		const char *dummy;

		snprintf(pp, sizeof(pp), "parameters.%.200s", s);
		if (s[0] == '\0' || api_utf8_len(s) > 255) {
			api_v_fail(&v, "parameters", s, "Member must have "
			    "length between 1 and 255");
			continue;
		}
		if (!json_is_array(x)) {
			api_v_type(&v, pp, "a list");
			continue;
		}
		json_array_foreach(x, i, y) {
			snprintf(pp, sizeof(pp), "parameters.%.200s.%zu."
			    "member", s, i + 1);
			api_v_str_value(&v, y, pp, &vd, &dummy);
		}
	}
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;

	/* A document ARN names the document after "document/". */
	docname = docarg != NULL ? docarg : SSM_DEFAULT_DOCUMENT;
	if (strncmp(docname, "arn:", 4) == 0) {
		const char *d = strstr(docname, ":document/");

		if (d == NULL || d[10] == '\0')
			return api_error_set(err, 400, "InvalidDocument",
			    "Document %s does not exist.", docname);
		docname = d + 10;
	}
	ssm_arn(c, "managed-instance", target, iarn, sizeof(iarn));
	ssm_document_arn(c, docname, darn, sizeof(darn));
	/* AWS evaluates StartSession on the instance and on the document
	 * named. With none named the default document needs no permission,
	 * and ssm:SessionDocumentAccessCheck is false, so a policy that
	 * requires it true makes the caller name one. */
	cc = *c;
	dac_val[0] = docarg != NULL ? "true" : "false";
	dac.key = "ssm:SessionDocumentAccessCheck";
	dac.values = dac_val;
	dac.nvalues = 1;
	cc.authz_ctx = &dac;
	cc.nauthz_ctx = 1;
	if ((rc = api_authorize(&cc, "ssm:StartSession", iarn, err)) != 0 ||
	    (docarg != NULL && (rc = api_authorize(&cc, "ssm:StartSession",
	    darn, err)) != 0))
		return rc;

	rc = store_document_get(c->srv->store, docname, &content, dtype);
	if (rc == PH_ERR_NOTFOUND || (rc == 0 &&
	    strcmp(dtype, "Session") != 0)) {
		rc = api_error_set(err, 400, "InvalidDocument",
		    "Document %s does not exist or is not a Session "
		    "document.", docname);
		goto out;
	}
	if (rc != 0) {
		rc = api_error_internal(err, "start_session", rc);
		goto out;
	}
	if ((doc = json_loads(content, 0, &jerr)) == NULL) {
		rc = api_error_internal(err, "start_session", PH_ERR_INVALID);
		goto out;
	}
	if ((rc = api_documents_apply_preferences(c, docname, doc,
	    err)) != 0)
		goto out;
	if ((rc = api_ssm_resolve_document(docname, doc, params, &rdoc,
	    &rparams, err)) != 0)
		goto out;
	if (store_instance_active(c->srv->store, target) != 0 ||
	    c->srv->gw == NULL ||
	    !gateway_instance_online(c->srv->gw, target)) {
		rc = api_error_set(err, 400, "TargetNotConnected",
		    "%s is not connected.", target);
		goto out;
	}
	if ((rc = api_documents_check_target(c, target, rdoc, err)) != 0 ||
	    (rc = api_ssm_records_prefs(c, rdoc, &prefs, err)) != 0)
		goto out;
	if (!ssm_host_ok(c->host)) {
		rc = ssm_stream_url(c, "", out, err);
		goto out;
	}

	memset(&rec, 0, sizeof(rec));
	if ((rc = ssm_session_id(c, sid)) != 0) {
		rc = api_error_internal(err, "start_session", rc);
		goto out;
	}
	snprintf(rec.session_id, sizeof(rec.session_id), "%s", sid);
	snprintf(rec.target, sizeof(rec.target), "%s", target);
	snprintf(rec.owner, sizeof(rec.owner), "%s",
	    c->principal != NULL ? c->principal->arn : "");
	snprintf(rec.status, sizeof(rec.status), "Connected");
	snprintf(rec.document_name, sizeof(rec.document_name), "%s", docname);
	snprintf(rec.reason, sizeof(rec.reason), "%s", reason ? reason : "");
	rec.start_ms = c->now_ms;
	mdur = json_string_value(json_object_get(json_object_get(rdoc,
	    "inputs"), "maxSessionDuration"));
	if ((rc = store_session_create(c->srv->store, &rec, mdur)) != 0 ||
	    (rc = store_session_issue_token(c->srv->store, sid, c->now_ms,
	    STORE_TOKEN_TTL_MS, token)) != 0) {
		rc = api_error_internal(err, "start_session", rc);
		goto out;
	}
	api_ssm_records_created(c, sid, &prefs);
	rc = gateway_start_session(c->srv->gw, target, sid, docname, rdoc,
	    rparams, rec.owner, "");
	if (rc != 0) {
		store_session_set_status(c->srv->store, sid, "Failed",
		    "the agent could not be reached", c->now_ms);
		rc = rc == PH_ERR_NOTFOUND ?
		    api_error_set(err, 400, "TargetNotConnected",
		    "%s is not connected.", target) :
		    api_error_internal(err, "start_session", rc);
		goto out;
	}
	log_info("event=session_started session=%s target=%s document=%s "
	    "owner=%s", sid, target, docname, rec.owner);
	ssm_set_str(out, "SessionId", sid);
	ssm_set_str(out, "TokenValue", token);
	rc = ssm_stream_url(c, sid, out, err);
out:
	memset(token, 0, sizeof(token));
	free(content);
	json_decref(doc);
	json_decref(rdoc);
	json_decref(rparams);
	return rc;
}

static const struct api_str sid_d = { "SessionId", "sessionId", 1, 1, 96,
    NULL, NULL, NULL };

static int
ssm_terminate_session(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct session_rec rec;
	const char *sid;
	char arn[300], why[320];
	struct api_v v;
	int rc;

	api_v_init(&v);
	sid = api_v_str(&v, in, &sid_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	ssm_arn(c, "session", sid, arn, sizeof(arn));
	if ((rc = api_authorize(c, "ssm:TerminateSession", arn, err)) != 0)
		return rc;
	/* Idempotent: an unknown or ended session just answers its id. */
	if (store_session_get(c->srv->store, sid, &rec) == 0 &&
	    rec.end_ms == 0) {
		snprintf(why, sizeof(why), "terminated by %s",
		    c->principal != NULL ? c->principal->arn : "?");
		if (c->srv->gw != NULL)
			rc = gateway_terminate_session(c->srv->gw, sid, why);
		else
			rc = store_session_set_status(c->srv->store, sid,
			    "Terminated", why, c->now_ms);
		if (rc != 0 && rc != PH_ERR_NOTFOUND)
			return api_error_internal(err, "terminate_session", rc);
		log_info("event=session_terminate session=%s by=%s", sid,
		    c->principal != NULL ? c->principal->arn : "?");
	}
	ssm_set_str(out, "SessionId", sid);
	return 0;
}

static int
ssm_resume_session(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	char token[STORE_TOKEN_SIZE], arn[300];
	struct session_rec rec;
	const char *sid;
	struct api_v v;
	int rc;

	api_v_init(&v);
	sid = api_v_str(&v, in, &sid_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	ssm_arn(c, "session", sid, arn, sizeof(arn));
	if ((rc = api_authorize(c, "ssm:ResumeSession", arn, err)) != 0)
		return rc;
	rc = store_session_get(c->srv->store, sid, &rec);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 400, "DoesNotExistException",
		    "Session %s does not exist.", sid);
	if (rc != 0)
		return api_error_internal(err, "resume_session", rc);
	ssm_set_str(out, "SessionId", sid);
	/* An ended session cannot resume: no TokenValue, and the plugin
	 * reports that the session timed out (spec 1.3). */
	if (rec.end_ms != 0)
		return 0;
	rc = store_session_issue_token(c->srv->store, sid, c->now_ms,
	    STORE_TOKEN_TTL_MS, token);
	if (rc == PH_ERR_STATE)
		return 0;
	if (rc != 0)
		return api_error_internal(err, "resume_session", rc);
	ssm_set_str(out, "TokenValue", token);
	memset(token, 0, sizeof(token));
	return ssm_stream_url(c, sid, out, err);
}

struct sess_list {
	const struct api_call *c;
	json_t *list;
	int limit, more;
};

static int
ssm_session_cb(void *arg, const struct session_info *si)
{
	struct sess_list *l = arg;
	const struct session_rec *r = &si->rec;
	json_t *o;

	if ((int)json_array_size(l->list) >= l->limit) {
		l->more = 1;
		return 1;
	}
	o = json_object();
	ssm_set_str(o, "SessionId", r->session_id);
	ssm_set_str(o, "Target", r->target);
	ssm_set_str(o, "Status", r->status);
	json_object_set_new(o, "StartDate", api_json_time(r->start_ms));
	if (r->end_ms != 0)
		json_object_set_new(o, "EndDate", api_json_time(r->end_ms));
	ssm_set_str(o, "DocumentName", r->document_name);
	ssm_set_str(o, "Owner", r->owner);
	ssm_set_opt_str(o, "Reason", r->reason);
	ssm_set_opt_str(o, "Details", si->details);
	ssm_set_opt_str(o, "MaxSessionDuration", si->max_session_duration);
	ssm_set_str(o, "AccessType", "Standard");
	api_ssm_records_output_url(l->c, r->session_id, o);
	json_array_append_new(l->list, o);
	return 0;
}

static int
ssm_describe_sessions(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const char *const states[] = { "Active", "History", NULL };
	static const char *const keys[] = { "InvokedAfter", "InvokedBefore",
	    "Target", "Owner", "Status", "SessionId", "AccessType", NULL };
	static const struct api_str state_d = { "State", "state", 1, 0, 0,
	    NULL, NULL, states };
	static const struct api_str key_d = { NULL, NULL, 1, 0, 0, NULL, NULL,
	    keys };
	static const struct api_str val_d = { NULL, NULL, 1, 1, 400, NULL,
	    NULL, NULL };
	const char **slot, *state, *k, *val;
	struct session_query q;
	struct sess_list l;
	int64_t t, *tslot;
	json_t *filters, *f;
	int rc, none = 0;
	struct api_v v;
	char p[96];
	size_t i;

	memset(&q, 0, sizeof(q));
	q.after_ms = INT64_MIN;
	q.before_ms = INT64_MAX;
	api_v_init(&v);
	state = api_v_str(&v, in, &state_d);
	filters = api_v_list(&v, in, "Filters", "filters", 0, 1, 6);
	json_array_foreach(filters, i, f) {
		snprintf(p, sizeof(p), "filters.%zu.member", i + 1);
		if (!json_is_object(f)) {
			api_v_type(&v, p, "a structure");
			break;
		}
		snprintf(p, sizeof(p), "filters.%zu.member.key", i + 1);
		api_v_str_value(&v, json_object_get(f, "key"), p, &key_d, &k);
		snprintf(p, sizeof(p), "filters.%zu.member.value", i + 1);
		api_v_str_value(&v, json_object_get(f, "value"), p, &val_d,
		    &val);
		if (k == NULL || val == NULL)
			continue;
		slot = NULL;
		tslot = NULL;
		if (strcmp(k, "InvokedAfter") == 0 ||
		    strcmp(k, "InvokedBefore") == 0) {
			if (api_parse_time(val, &t) != 0) {
				api_v_fail(&v, p, val, "Member must be a "
				    "timestamp such as 2024-08-29T00:00:00Z");
				continue;
			}
			tslot = k[7] == 'A' ? &q.after_ms : &q.before_ms;
			/* Two bounds on one side: the tighter one holds. */
			if (tslot == &q.after_ms ? t > *tslot : t < *tslot)
				*tslot = t;
		} else if (strcmp(k, "Target") == 0) {
			slot = &q.target;
		} else if (strcmp(k, "Owner") == 0) {
			slot = &q.owner;
		} else if (strcmp(k, "Status") == 0) {
			slot = &q.status;
		} else if (strcmp(k, "SessionId") == 0) {
			slot = &q.session_id;
		} else if (strcmp(val, "JustInTime") == 0) {
			none = 1;    /* AccessType: every session is Standard */
		} else if (strcmp(val, "Standard") != 0) {
			api_v_fail(&v, p, val, "Member must satisfy enum "
			    "value set: [Standard, JustInTime]");
		}
		/* The same key twice with different values matches nothing. */
		if (slot != NULL) {
			if (*slot != NULL && strcmp(*slot, val) != 0)
				none = 1;
			*slot = val;
		}
	}
	memset(&l, 0, sizeof(l));
	if ((rc = ssm_paging(&v, in, 1, 200, 20, &l.limit, &q.offset,
	    err)) != 0)
		return rc;
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = api_authorize(c, "ssm:DescribeSessions", "*", err)) != 0)
		return rc;
	q.history = strcmp(state, "History") == 0;
	q.limit = l.limit + 1;
	l.c = c;
	l.list = json_array();
	json_object_set_new(out, "Sessions", l.list);
	if (none)
		return 0;
	if ((rc = store_session_query(c->srv->store, &q, ssm_session_cb,
	    &l)) != 0)
		return api_error_internal(err, "describe_sessions", rc);
	ssm_next_token(out, l.more, q.offset + l.limit);
	return 0;
}

static int
ssm_get_connection_status(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const struct api_str target_d = { "Target", "target", 1, 1,
	    400, NULL, NULL, NULL };
	const char *target;
	char arn[600];
	struct api_v v;
	int rc, up;

	api_v_init(&v);
	target = api_v_str(&v, in, &target_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	ssm_arn(c, "managed-instance", target, arn, sizeof(arn));
	if ((rc = api_authorize(c, "ssm:GetConnectionStatus", arn, err)) != 0)
		return rc;
	up = store_instance_active(c->srv->store, target) == 0 &&
	    c->srv->gw != NULL && gateway_instance_online(c->srv->gw, target);
	ssm_set_str(out, "Target", target);
	ssm_set_str(out, "Status", up ? "connected" : "notconnected");
	return 0;
}

/* ---- dispatch ----------------------------------------------------------- */

static const struct api_json_action ssm_actions[] = {
	{ "AddTagsToResource", ssm_add_tags_to_resource },
	{ "CancelCommand", api_ssm_cancel_command },
	{ "CreateActivation", ssm_create_activation },
	{ "CreateDocument", api_documents_create },
	{ "DeleteActivation", ssm_delete_activation },
	{ "DeleteDocument", api_documents_delete },
	{ "DeregisterManagedInstance", ssm_deregister_managed_instance },
	{ "DescribeActivations", ssm_describe_activations },
	{ "DescribeDocument", api_documents_describe },
	{ "DescribeInstanceInformation", ssm_describe_instance_information },
	{ "DescribeSessions", ssm_describe_sessions },
	{ "GetConnectionStatus", ssm_get_connection_status },
	{ "GetCommandInvocation", api_ssm_get_command_invocation },
	{ "GetDocument", api_documents_get },
	{ "GetRecordDeliveryStatus", api_ssm_get_record_delivery_status },
	{ "GetSessionLog", api_ssm_get_session_log },
	{ "ListCommandInvocations", api_ssm_list_command_invocations },
	{ "ListCommands", api_ssm_list_commands },
	{ "ListDocumentVersions", api_documents_list_versions },
	{ "ListDocuments", api_documents_list },
	{ "ListTagsForResource", ssm_list_tags_for_resource },
	{ "RemoveTagsFromResource", ssm_remove_tags_from_resource },
	{ "ResumeSession", ssm_resume_session },
	{ "SendCommand", api_ssm_send_command },
	{ "StartSession", ssm_start_session },
	{ "TerminateSession", ssm_terminate_session },
	{ "UpdateDocument", api_documents_update },
	{ "UpdateDocumentDefaultVersion",
	    api_documents_update_default_version },
};

int
api_ssm_dispatch(const struct api_call *call, const char *action,
    json_t *in, json_t **out, struct api_error *err)
{
	const struct api_json_action *a;
	json_t *o;
	int rc;

	*out = NULL;
	a = api_json_action_find(ssm_actions, sizeof(ssm_actions) /
	    sizeof(ssm_actions[0]), action, in, err);
	if (a == NULL)
		return PH_ERR_INVALID;
	if ((o = json_object()) == NULL)
		return api_error_internal(err, action, PH_ERR_NOMEM);
	rc = a->fn(call, in, o, err);
	if (rc != 0) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return 0;
}
