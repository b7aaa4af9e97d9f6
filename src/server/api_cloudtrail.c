/* api_cloudtrail: LookupEvents over the audit trail. The files are read
 * newest first (audit_scan), each line parsed and matched against the
 * one lookup attribute and the time range; a call stops at MaxResults
 * events or at its work bound, and NextToken says where the next one goes
 * on. */
#include "server/api_cloudtrail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "server/api_json.h"
#include "server/audit.h"

#define CT_DEFAULT_RESULTS 50
#define CT_MAX_RESULTS 50
#define CT_MAX_VALUE 2000

enum ct_key {
	CT_NONE = 0,
	CT_EVENT_ID,
	CT_EVENT_NAME,
	CT_READ_ONLY,
	CT_USERNAME,
	CT_RESOURCE_TYPE,
	CT_RESOURCE_NAME,
	CT_EVENT_SOURCE,
	CT_ACCESS_KEY_ID,
};

/* botocore's LookupAttributeKey, in enum ct_key's order from 1. */
static const char *const ct_keys[] = { "EventId", "EventName", "ReadOnly",
    "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId",
    NULL };

/* Request members naming a resource, and its type. */
static const struct {
	const char *member;
	const char *type;
} ct_resources[] = {
	{ "Target", "AWS::SSM::ManagedInstance" },
	{ "InstanceId", "AWS::SSM::ManagedInstance" },
	{ "SessionId", "AWS::SSM::Session" },
	{ "Name", "AWS::SSM::Document" },
	{ "DocumentName", "AWS::SSM::Document" },
	{ "ActivationId", "AWS::SSM::Activation" },
	{ "KeyId", "AWS::KMS::Key" },
	{ "AliasName", "AWS::KMS::Alias" },
	{ "UserName", "AWS::IAM::User" },
	{ "GroupName", "AWS::IAM::Group" },
	{ "RoleName", "AWS::IAM::Role" },
	{ "RoleArn", "AWS::IAM::Role" },
	{ "PolicyArn", "AWS::IAM::Policy" },
	{ "AccessKeyId", "AWS::IAM::AccessKey" },
};

struct ct_lookup {
	enum ct_key key;
	const char *value;
	int prefilter;          /* value appears verbatim in matching lines */
	int64_t min_ms, max_ms;
	int max;
	json_t *events;
};

static const char *
ct_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

/* LookupEvents' Username: a user's name, a role session's name. */
static const char *
ct_username(json_t *ident)
{
	const char *s = ct_str(ident, "userName"), *arn, *slash;

	if (s[0] != '\0')
		return s;
	arn = ct_str(ident, "arn");
	if (strstr(arn, ":assumed-role/") != NULL &&
	    (slash = strrchr(arn, '/')) != NULL)
		return slash + 1;
	return ct_str(ident, "principalId");
}

static int
ct_add_resources(json_t *list, json_t *from)
{
	const char *v;
	size_t i;

	if (!json_is_object(from))
		return 0;
	for (i = 0; i < sizeof(ct_resources) / sizeof(ct_resources[0]); i++) {
		v = json_string_value(json_object_get(from,
		    ct_resources[i].member));
		if (v == NULL || v[0] == '\0' || strcmp(v, AUDIT_HIDDEN) == 0)
			continue;
		if (json_array_append_new(list, json_pack("{s:s, s:s}",
		    "ResourceType", ct_resources[i].type, "ResourceName",
		    v)) != 0)
			return PH_ERR_NOMEM;
	}
	return 0;
}

static int
ct_resource_match(json_t *res, enum ct_key key, const char *value)
{
	const char *member = key == CT_RESOURCE_TYPE ? "ResourceType" :
	    "ResourceName";
	json_t *r;
	size_t i;

	json_array_foreach(res, i, r)
		if (strcmp(ct_str(r, member), value) == 0)
			return 1;
	return 0;
}

/* One line of the trail: an Event if it matches. */
static int
ct_line(void *arg, const char *line, size_t len)
{
	struct ct_lookup *l = arg;
	const char *name, *source, *akid, *user, *id;
	json_t *o, *ident, *res = NULL, *ev;
	int64_t ms;
	int ro, keep = 0, rc = 0;

	if (l->prefilter && memmem(line, len, l->value,
	    strlen(l->value)) == NULL)
		return 0;
	if ((o = json_loadb(line, len, 0, NULL)) == NULL)
		return 0;           /* not ours: a cut or foreign line */
	if (!json_is_object(o) || api_parse_time(ct_str(o, "eventTime"),
	    &ms) != 0 || ms < l->min_ms || ms > l->max_ms)
		goto done;
	ident = json_object_get(o, "userIdentity");
	id = ct_str(o, "eventID");
	name = ct_str(o, "eventName");
	source = ct_str(o, "eventSource");
	akid = ct_str(ident, "accessKeyId");
	user = ct_username(ident);
	ro = json_is_true(json_object_get(o, "readOnly"));
	if ((res = json_array()) == NULL ||
	    ct_add_resources(res, json_object_get(o, "requestParameters")) ||
	    ct_add_resources(res, json_object_get(o, "responseElements"))) {
		rc = PH_ERR_NOMEM;
		goto done;
	}
	switch (l->key) {
	case CT_NONE: keep = 1; break;
	case CT_EVENT_ID: keep = strcmp(id, l->value) == 0; break;
	case CT_EVENT_NAME: keep = strcmp(name, l->value) == 0; break;
	case CT_READ_ONLY:
		keep = strcasecmp(l->value, ro ? "true" : "false") == 0;
		break;
	case CT_USERNAME: keep = strcmp(user, l->value) == 0; break;
	case CT_RESOURCE_TYPE:
	case CT_RESOURCE_NAME:
		keep = ct_resource_match(res, l->key, l->value);
		break;
	case CT_EVENT_SOURCE: keep = strcmp(source, l->value) == 0; break;
	case CT_ACCESS_KEY_ID: keep = strcmp(akid, l->value) == 0; break;
	}
	if (!keep)
		goto done;
	ev = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:O, s:s%}",
	    "EventId", id, "EventName", name, "ReadOnly", ro ? "true" :
	    "false", "AccessKeyId", akid, "EventTime", api_json_time(ms),
	    "EventSource", source, "Username", user, "Resources", res,
	    "CloudTrailEvent", line, len);
	if (ev == NULL || json_array_append_new(l->events, ev) != 0) {
		rc = PH_ERR_NOMEM;
		goto done;
	}
	rc = json_array_size(l->events) >= (size_t)l->max ? 1 : 0;
done:
	json_decref(res);
	json_decref(o);
	return rc;
}

/* The one LookupAttribute, validated. 0 or a negative code with err. */
static int
ct_attribute(struct api_v *v, json_t *in, struct ct_lookup *l,
    struct api_error *err)
{
	static const struct api_str key_d = { "AttributeKey",
	    "lookupAttributes.member.attributeKey", 1, 0, 0, NULL, NULL,
	    ct_keys };
	static const struct api_str val_d = { "AttributeValue",
	    "lookupAttributes.member.attributeValue", 1, 1, CT_MAX_VALUE,
	    NULL, NULL, NULL };
	const char *key, *value;
	json_t *list, *a;
	size_t i;

	list = api_v_list(v, in, "LookupAttributes", "lookupAttributes", 0,
	    0, 0);
	if (list == NULL || json_array_size(list) == 0)
		return 0;
	if (json_array_size(list) > 1)
		return api_error_set(err, 400,
		    "InvalidLookupAttributesException",
		    "You can specify only one lookup attribute.");
	a = json_array_get(list, 0);
	if (!json_is_object(a)) {
		api_v_type(v, "lookupAttributes.member", "a structure");
		return 0;
	}
	key = api_v_str(v, a, &key_d);
	value = api_v_str(v, a, &val_d);
	if (key == NULL || value == NULL)
		return 0;
	for (i = 0; ct_keys[i] != NULL; i++)
		if (strcmp(key, ct_keys[i]) == 0)
			l->key = (enum ct_key)(i + 1);
	if (l->key == CT_READ_ONLY && strcasecmp(value, "true") != 0 &&
	    strcasecmp(value, "false") != 0)
		return api_error_set(err, 400,
		    "InvalidLookupAttributesException",
		    "ReadOnly must be true or false.");
	l->value = value;
	/* A value that JSON would escape is not found verbatim. */
	l->prefilter = l->key != CT_RESOURCE_TYPE && l->key != CT_READ_ONLY &&
	    strpbrk(value, "\"\\/") == NULL;
	for (i = 0; l->prefilter && value[i] != '\0'; i++)
		if ((unsigned char)value[i] < 0x20)
			l->prefilter = 0;
	return 0;
}

static int
ct_lookup_events(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct audit_pos from, next;
	struct audit_scan scan;
	struct ct_lookup l;
	struct api_v v;
	const char *token = NULL, *cat;
	char tok[64];
	json_t *mr, *nt;
	int64_t start = 0, end = 0;
	int rc, more, has_start, has_end;

	memset(&l, 0, sizeof(l));
	api_v_init(&v);
	if ((rc = ct_attribute(&v, in, &l, err)) != 0)
		return rc;
	has_start = api_v_time(&v, in, "StartTime", "startTime", 0, &start);
	has_end = api_v_time(&v, in, "EndTime", "endTime", 0, &end);
	l.max = CT_DEFAULT_RESULTS;
	mr = json_object_get(in, "MaxResults");
	if (mr != NULL && !json_is_null(mr) && !json_is_integer(mr))
		api_v_type(&v, "maxResults", "an integer");
	nt = json_object_get(in, "NextToken");
	if (nt != NULL && !json_is_null(nt) && !json_is_string(nt))
		api_v_type(&v, "nextToken", "a string");
	cat = json_string_value(json_object_get(in, "EventCategory"));
	if (json_object_get(in, "EventCategory") != NULL && cat == NULL &&
	    !json_is_null(json_object_get(in, "EventCategory")))
		api_v_type(&v, "eventCategory", "a string");
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (json_is_integer(mr)) {
		if (json_integer_value(mr) < 1 ||
		    json_integer_value(mr) > CT_MAX_RESULTS)
			return api_error_set(err, 400,
			    "InvalidMaxResultsException",
			    "MaxResults must be from 1 to %d.", CT_MAX_RESULTS);
		l.max = (int)json_integer_value(mr);
	}
	if (cat != NULL && strcmp(cat, "insight") != 0)
		return api_error_set(err, 400, "InvalidEventCategoryException",
		    "EventCategory must be insight.");
	l.min_ms = has_start == 1 ? start : INT64_MIN;
	l.max_ms = has_end == 1 ? end : INT64_MAX;
	if (l.min_ms > l.max_ms)
		return api_error_set(err, 400, "InvalidTimeRangeException",
		    "The start time must be before the end time.");
	token = json_string_value(nt);
	if (token != NULL && audit_pos_parse(token, &from) != 0)
		return api_error_set(err, 400, "InvalidNextTokenException",
		    "The NextToken is not valid.");
	if ((rc = api_authorize(c, "cloudtrail:LookupEvents", "*", err)) != 0)
		return rc;
	if ((l.events = json_array()) == NULL ||
	    json_object_set_new(out, "Events", l.events) != 0)
		return api_error_internal(err, "lookup_events", PH_ERR_NOMEM);
	/* No Insights events exist here. */
	if (cat != NULL)
		return 0;
	memset(&scan, 0, sizeof(scan));
	scan.from = token != NULL ? &from : NULL;
	scan.min_ms = l.min_ms;
	scan.max_ms = l.max_ms;
	scan.max_bytes = API_CLOUDTRAIL_SCAN_BYTES;
	scan.max_lines = API_CLOUDTRAIL_SCAN_LINES;
	rc = audit_scan(c->srv->audit, &scan, ct_line, &l, &next, &more);
	if (rc != 0)
		return api_error_internal(err, "lookup_events", rc);
	if (more) {
		audit_pos_format(&next, tok, sizeof(tok));
		if (json_object_set_new(out, "NextToken", json_string(tok)))
			return api_error_internal(err, "lookup_events",
			    PH_ERR_NOMEM);
	}
	return 0;
}

static const struct api_json_action ct_actions[] = {
	{ "LookupEvents", ct_lookup_events },
};

int
api_cloudtrail_dispatch(const struct api_call *call, const char *action,
    json_t *in, json_t **out, struct api_error *err)
{
	const struct api_json_action *a;
	json_t *o;
	int rc;

	*out = NULL;
	a = api_json_action_find(ct_actions, sizeof(ct_actions) /
	    sizeof(ct_actions[0]), action, in, err);
	if (a == NULL)
		return PH_ERR_INVALID;
	if (call->srv == NULL || call->srv->audit == NULL)
		return api_error_set(err, 500, "InternalServerError",
		    "The audit trail is not available.");
	if ((o = json_object()) == NULL)
		return api_error_internal(err, action, PH_ERR_NOMEM);
	if ((rc = a->fn(call, in, o, err)) != 0) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return 0;
}
