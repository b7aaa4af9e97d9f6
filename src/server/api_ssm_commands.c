/* api_ssm_commands: SendCommand, ListCommands, ListCommandInvocations,
 * GetCommandInvocation and CancelCommand (see api_ssm_commands.h). Each
 * handler validates against botocore's constraints (api_json), asks
 * authz where AWS does, then reads or writes store_commands; delivery,
 * results and timeouts are the dispatcher's (commands.c). */
#include "server/api_ssm_commands.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"
#include "server/api_json.h"
#include "server/authz.h"
#include "server/cmddoc.h"
#include "server/commands.h"
#include "server/store.h"
#include "server/store_commands.h"

#define CMD_MAX_INSTANCE_IDS 50
#define CMD_MAX_TARGETS 5
#define CMD_MAX_TARGET_VALUES 50
#define CMD_DEFAULT_TIMEOUT 3600
#define CMD_MAX_PARAMS 200
#define CMD_LIST_MAX 50
#define CMD_PLUGIN_OUTPUT_MAX 2500
/* Rows a filtered list reads from the store at a time: memory stays
 * bounded however many commands there are. */
#define CMD_SCAN_CHUNK 100
/* Instances one tag target may resolve to. */
#define CMD_MAX_RESOLVED 100000

static const char *const cmd_status_enum[] = { "Pending", "InProgress",
    "Success", "Cancelled", "Failed", "TimedOut", "Cancelling", NULL };
static const char *const inv_status_enum[] = { "Pending", "InProgress",
    "Delayed", "Success", "Cancelled", "TimedOut", "Failed", "Cancelling",
    NULL };

/* ---- shared pieces ------------------------------------------------------ */

static void
cmd_instance_arn(const struct api_call *c, const char *id, char *out,
    size_t size)
{
	snprintf(out, size, "arn:aws:ssm:%s:%s:managed-instance/%s",
	    c->srv->region, c->srv->account_id, id);
}

/* AWS-owned documents have no account in their ARN. */
static void
cmd_document_arn(const struct api_call *c, const char *name, char *out,
    size_t size)
{
	snprintf(out, size, "arn:aws:ssm:%s:%s:document/%s", c->srv->region,
	    strncmp(name, "AWS-", 4) == 0 ? "" : c->srv->account_id, name);
}

static void
set_str(json_t *o, const char *key, const char *v)
{
	json_object_set_new(o, key, json_string(v != NULL ? v : ""));
}

static int
in_enum(const char *s, const char *const *e)
{
	for (; *e != NULL; e++)
		if (strcmp(s, *e) == 0)
			return 1;
	return 0;
}

/* (^i-(\w{8}|\w{17})$)|(^mi-\w{17}$) */
static int
pat_instance_id(const char *s)
{
	size_t n, i, skip;

	if (strncmp(s, "mi-", 3) == 0)
		skip = 3;
	else if (strncmp(s, "i-", 2) == 0)
		skip = 2;
	else
		return 0;
	n = strlen(s + skip);
	if (!(n == 17 || (skip == 2 && n == 8)))
		return 0;
	for (i = skip; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}
#define PAT_INSTANCE_ID "(^i-(\\w{8}|\\w{17})$)|(^mi-\\w{17}$)"

/* ^[a-zA-Z0-9_\-.:/]{3,128}$ */
static int
pat_document_arn(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("_-.:/", *s) == NULL)
			return 0;
	return 1;
}

/* ([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$) */
static int
pat_document_version(const char *s)
{
	if (strcmp(s, "$LATEST") == 0 || strcmp(s, "$DEFAULT") == 0)
		return 1;
	if (*s < '1' || *s > '9')
		return 0;
	for (s++; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* ^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$ */
static int
pat_concurrency(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || *s == '0')
		return 0;
	if (s[n - 1] == '%')
		return (n == 2 || n == 3) ? isdigit((unsigned char)s[0]) &&
		    (n == 2 || isdigit((unsigned char)s[1])) :
		    strcmp(s, "100%") == 0;
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* ^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$ */
static int
pat_max_errors(const char *s)
{
	if (strcmp(s, "0") == 0 || (isdigit((unsigned char)s[0]) &&
	    strcmp(s + 1, "%") == 0))
		return 1;
	return pat_concurrency(s);
}

/* ^[\p{L}\p{Z}\p{N}_.:/=\-@]*$ (resource-groups keys are refused
 * later, with a clearer message). */
static int
pat_target_key(const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x80 && !isalnum(*p) && strchr(" _.:/=-@", *p) == NULL)
			return 0;
	return 1;
}

/* S3 bucket naming rules: 3..63 lower-case letters, digits, dots and
 * hyphens, beginning and ending with a letter or digit. */
static int
bucket_name_ok(const char *b)
{
	size_t n = strlen(b), i;

	if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) ||
	    !isalnum((unsigned char)b[n - 1]))
		return 0;
	for (i = 0; i < n; i++)
		if (!(islower((unsigned char)b[i]) ||
		    isdigit((unsigned char)b[i]) || b[i] == '.' ||
		    b[i] == '-'))
			return 0;
	return strstr(b, "..") == NULL;
}

/* The first max characters (UTF-8 code points) of s, as a new JSON
 * string. */
static json_t *
json_cut(const char *s, size_t max)
{
	const unsigned char *p;
	size_t chars = 0;

	if (s == NULL)
		return json_string("");
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p & 0xc0) != 0x80) {
			if (chars == max)
				break;
			chars++;
		}
	}
	return json_stringn_nocheck(s, (size_t)(p - (const unsigned char *)s));
}

/* "2024-08-29T10:00:01.250Z", or "" for 0. */
static void
fmt_time(int64_t ms, char *out, size_t size)
{
	char day[32];
	struct tm tm;
	time_t t;

	out[0] = '\0';
	if (ms <= 0)
		return;
	t = (time_t)(ms / 1000);
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return;
	snprintf(out, size, "%s.%03dZ", day, (int)(ms % 1000));
}

/* ISO 8601 duration as AWS shows it: "PT0.052S". */
static void
fmt_elapsed(int64_t start_ms, int64_t end_ms, char *out, size_t size)
{
	int64_t d;

	if (start_ms <= 0 || end_ms < start_ms) {
		snprintf(out, size, "%s", "");
		return;
	}
	d = end_ms - start_ms;
	snprintf(out, size, "PT%lld.%03dS", (long long)(d / 1000),
	    (int)(d % 1000));
}

/* An invocation status as the model's enum has it: the dispatcher's
 * finer states are StatusDetails. */
static const char *
inv_status_api(const char *s)
{
	if (in_enum(s, inv_status_enum))
		return s;
	if (strcmp(s, "DeliveryTimedOut") == 0 ||
	    strcmp(s, "ExecutionTimedOut") == 0)
		return "TimedOut";
	return "Failed";     /* Undeliverable, Terminated */
}

static const char *
cmd_status_api(const char *s)
{
	if (in_enum(s, cmd_status_enum))
		return s;
	if (strcmp(s, "DeliveryTimedOut") == 0 ||
	    strcmp(s, "ExecutionTimedOut") == 0)
		return "TimedOut";
	return "Failed";
}

/* Parse stored JSON text; a fallback value when absent or broken. */
static json_t *
json_or(const char *text, json_t *dflt)
{
	json_t *j;

	if (text != NULL && (j = json_loads(text, JSON_DECODE_ANY,
	    NULL)) != NULL) {
		json_decref(dflt);
		return j;
	}
	return dflt;
}

static json_t *
notification_out(const char *text)
{
	json_t *o = json_or(text, NULL);

	if (!json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	if (json_object_get(o, "NotificationArn") == NULL)
		set_str(o, "NotificationArn", "");
	if (json_object_get(o, "NotificationEvents") == NULL)
		json_object_set_new(o, "NotificationEvents", json_array());
	if (json_object_get(o, "NotificationType") == NULL)
		set_str(o, "NotificationType", "");
	return o;
}

static json_t *
cloudwatch_out(const char *text)
{
	json_t *o = json_or(text, NULL);

	if (!json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	if (json_object_get(o, "CloudWatchLogGroupName") == NULL)
		set_str(o, "CloudWatchLogGroupName", "");
	if (json_object_get(o, "CloudWatchOutputEnabled") == NULL)
		json_object_set_new(o, "CloudWatchOutputEnabled",
		    json_false());
	return o;
}

/* The Command object of botocore's model. */
static json_t *
command_json(const struct api_call *c, const struct command_rec *r)
{
	json_t *o = json_object();
	char *alarm = NULL;
	json_t *a;

	if (o == NULL)
		return NULL;
	set_str(o, "CommandId", r->command_id);
	set_str(o, "DocumentName", r->document_name);
	set_str(o, "DocumentVersion", r->document_version);
	set_str(o, "Comment", r->comment);
	json_object_set_new(o, "ExpiresAfter", api_json_time(r->expires_ms));
	json_object_set_new(o, "Parameters", json_or(r->parameters_json,
	    json_object()));
	json_object_set_new(o, "InstanceIds", json_or(r->instance_ids_json,
	    json_array()));
	json_object_set_new(o, "Targets", json_or(r->targets_json,
	    json_array()));
	json_object_set_new(o, "RequestedDateTime",
	    api_json_time(r->requested_ms));
	set_str(o, "Status", cmd_status_api(r->status));
	set_str(o, "StatusDetails", r->status_details);
	set_str(o, "OutputS3Region", r->output_s3_region != NULL ?
	    r->output_s3_region : c->srv->region);
	set_str(o, "OutputS3BucketName", r->output_s3_bucket);
	set_str(o, "OutputS3KeyPrefix", r->output_s3_prefix);
	set_str(o, "MaxConcurrency", r->max_concurrency);
	set_str(o, "MaxErrors", r->max_errors);
	json_object_set_new(o, "TargetCount", json_integer(r->target_count));
	json_object_set_new(o, "CompletedCount",
	    json_integer(r->completed_count));
	json_object_set_new(o, "ErrorCount", json_integer(r->error_count));
	json_object_set_new(o, "DeliveryTimedOutCount",
	    json_integer(r->delivery_timed_out_count));
	set_str(o, "ServiceRole", r->service_role_arn);
	json_object_set_new(o, "NotificationConfig",
	    notification_out(r->notification_json));
	json_object_set_new(o, "CloudWatchOutputConfig",
	    cloudwatch_out(r->cloudwatch_json));
	json_object_set_new(o, "TimeoutSeconds",
	    json_integer(r->timeout_seconds));
	if (store_command_get_alarm(c->srv->store, r->command_id,
	    &alarm) == 0 && alarm != NULL &&
	    (a = json_loads(alarm, 0, NULL)) != NULL)
		json_object_set_new(o, "AlarmConfiguration", a);
	free(alarm);
	return o;
}

/* NextToken and MaxResults of a list request. */
static int
cmd_paging(struct api_v *v, json_t *in, int *limit, int *offset,
    struct api_error *err)
{
	static const struct api_str tok_d = { "NextToken", "nextToken", 0, 0,
	    1024, NULL, NULL, NULL };
	const char *tok;
	int64_t n;

	api_v_int(v, in, "MaxResults", "maxResults", 0, 1, CMD_LIST_MAX,
	    CMD_LIST_MAX, &n);
	*limit = (int)n;
	*offset = 0;
	tok = api_v_str(v, in, &tok_d);
	if (tok != NULL && (api_token_decode(tok, offset) != 0 ||
	    *offset < 0))
		return api_error_set(err, 400, "InvalidNextToken",
		    "The specified token isn't valid.");
	return 0;
}

static void
cmd_next_token(json_t *out, int more, int offset)
{
	char tok[32];

	if (!more)
		return;
	api_token_encode(offset, tok);
	set_str(out, "NextToken", tok);
}

/* An InstanceIdList member: 0..50 ids, each valid, none twice
 * (DuplicateInstanceId, reported after validation). */
static json_t *
cmd_instance_list(struct api_v *v, json_t *in, const char *member,
    const char *path, int *dup)
{
	static const struct api_str id_d = { NULL, NULL, 1, 0, 0,
	    pat_instance_id, PAT_INSTANCE_ID, NULL };
	json_t *list, *x;
	const char *s, *t;
	char p[64];
	size_t i, j;

	*dup = 0;
	list = api_v_list(v, in, member, path, 0, 0, CMD_MAX_INSTANCE_IDS);
	json_array_foreach(list, i, x) {
		snprintf(p, sizeof(p), "%s.%zu.member", path, i + 1);
		if (api_v_str_value(v, x, p, &id_d, &s) != 1)
			continue;
		for (j = 0; j < i; j++) {
			t = json_string_value(json_array_get(list, j));
			if (t != NULL && strcmp(s, t) == 0)
				*dup = 1;
		}
	}
	return list;
}

/* ---- SendCommand ------------------------------------------------------ */

/* One target instance of a command. */
struct cmd_target {
	char id[21];
	char name[256];
	char platform[16];
};

struct cmd_targets {
	struct cmd_target *v;
	size_t n, cap;
};

static int
targets_has(const struct cmd_targets *t, const char *id)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->v[i].id, id) == 0)
			return 1;
	return 0;
}

static int
targets_add(struct cmd_targets *t, const struct instance_rec *in)
{
	struct cmd_target *nv;

	if (targets_has(t, in->id))
		return 0;
	if (t->n >= CMD_MAX_RESOLVED)
		return PH_ERR_TOOBIG;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 8;
		if ((nv = realloc(t->v, t->cap * sizeof(*nv))) == NULL)
			return PH_ERR_NOMEM;
		t->v = nv;
	}
	snprintf(t->v[t->n].id, sizeof(t->v[t->n].id), "%s", in->id);
	snprintf(t->v[t->n].name, sizeof(t->v[t->n].name), "%s",
	    in->computer_name);
	snprintf(t->v[t->n].platform, sizeof(t->v[t->n].platform), "%s",
	    in->platform_type);
	t->n++;
	return 0;
}

/* Targets: each {Key, Values}; an instance must match every target
 * (one of a target's values). */
struct tag_match {
	struct store *st;
	json_t *targets;
	json_t *tags;             /* the instance's tags: key -> value */
	struct cmd_targets *out;
	int rc;
};

static void
tag_cb(void *arg, const char *key, const char *value)
{
	json_object_set_new(arg, key, json_string(value));
}

static int
target_matches(json_t *t, const struct instance_rec *in, json_t *tags)
{
	const char *key = json_string_value(json_object_get(t, "Key"));
	json_t *vals = json_object_get(t, "Values"), *x;
	const char *val, *have;
	size_t i;

	json_array_foreach(vals, i, x) {
		val = json_string_value(x);
		if (val == NULL)
			continue;
		if (strcmp(key, "InstanceIds") == 0) {
			/* "*": every managed instance, as AWS has it */
			if (strcmp(val, in->id) == 0 || strcmp(val, "*") == 0)
				return 1;
		} else if (strcmp(key, "tag-key") == 0) {
			if (json_object_get(tags, val) != NULL)
				return 1;
		} else if (strncmp(key, "tag:", 4) == 0) {
			have = json_string_value(json_object_get(tags,
			    key + 4));
			if (have != NULL && strcmp(have, val) == 0)
				return 1;
		}
	}
	return 0;
}

static int
tag_match_cb(void *arg, const struct instance_rec *in)
{
	struct tag_match *m = arg;
	json_t *t;
	size_t i;

	json_object_clear(m->tags);
	store_tags_foreach(m->st, "ManagedInstance", in->id, tag_cb, m->tags);
	json_array_foreach(m->targets, i, t)
		if (!target_matches(t, in, m->tags))
			return 0;
	if ((m->rc = targets_add(m->out, in)) != 0)
		return 1;
	return 0;
}

/* Validate Targets (botocore's Target shape) and the keys Run Command
 * knows. */
static json_t *
cmd_targets_list(struct api_v *v, json_t *in)
{
	static const struct api_str key_d = { NULL, NULL, 1, 1, 163,
	    pat_target_key, "^[\\p{L}\\p{Z}\\p{N}_.:/=\\-@]*$|"
	    "resource-groups:ResourceTypeFilters|resource-groups:Name", NULL };
	static const struct api_str val_d = { NULL, NULL, 1, 0, 0, NULL, NULL,
	    NULL };
	json_t *list, *t, *vals, *x;
	const char *s;
	char p[96];
	size_t i, j;

	list = api_v_list(v, in, "Targets", "targets", 0, 0, CMD_MAX_TARGETS);
	json_array_foreach(list, i, t) {
		snprintf(p, sizeof(p), "targets.%zu.member", i + 1);
		if (!json_is_object(t)) {
			api_v_type(v, p, "a structure");
			continue;
		}
		snprintf(p, sizeof(p), "targets.%zu.member.key", i + 1);
		x = json_object_get(t, "Key");
		if (x == NULL || json_is_null(x))
			api_v_fail(v, p, NULL, "Member must not be null");
		else
			api_v_str_value(v, x, p, &key_d, &s);
		snprintf(p, sizeof(p), "targets.%zu.member.values", i + 1);
		vals = json_object_get(t, "Values");
		if (vals == NULL || json_is_null(vals))
			continue;
		if (!json_is_array(vals)) {
			api_v_type(v, p, "a list");
			continue;
		}
		if (json_array_size(vals) > CMD_MAX_TARGET_VALUES)
			api_v_fail(v, p, "[...]", "Member must have length "
			    "less than or equal to 50");
		json_array_foreach(vals, j, x) {
			snprintf(p, sizeof(p), "targets.%zu.member.values.%zu."
			    "member", i + 1, j + 1);
			api_v_str_value(v, x, p, &val_d, &s);
		}
	}
	return list;
}

/* Resolve Targets to registered instances. */
static int
cmd_resolve_targets(const struct api_call *c, json_t *targets,
    struct cmd_targets *out, struct api_error *err)
{
	struct tag_match m;
	const char *key;
	json_t *t;
	size_t i;
	int rc;

	json_array_foreach(targets, i, t) {
		key = json_string_value(json_object_get(t, "Key"));
		if (strcmp(key, "InstanceIds") != 0 &&
		    strcmp(key, "tag-key") != 0 &&
		    !(strncmp(key, "tag:", 4) == 0 && key[4] != '\0'))
			return api_error_set(err, 400, "InvalidParameters",
			    "Target key %s is not supported: use InstanceIds, "
			    "tag:<key> or tag-key.", key);
		if (json_array_size(json_object_get(t, "Values")) == 0)
			return api_error_set(err, 400, "InvalidParameters",
			    "Target %s needs at least one value.", key);
	}
	memset(&m, 0, sizeof(m));
	m.st = c->srv->store;
	m.targets = targets;
	m.out = out;
	if ((m.tags = json_object()) == NULL)
		return api_error_internal(err, "send_command", PH_ERR_NOMEM);
	rc = store_instance_foreach(c->srv->store, tag_match_cb, &m);
	json_decref(m.tags);
	if (rc == 0)
		rc = m.rc;
	if (rc == PH_ERR_TOOBIG)
		return api_error_set(err, 400, "InvalidParameters",
		    "The targets match more than %d instances.",
		    CMD_MAX_RESOLVED);
	if (rc != 0)
		return api_error_internal(err, "send_command", rc);
	return 0;
}

/* InstanceIds: every one registered and not deregistered. */
static int
cmd_resolve_ids(const struct api_call *c, json_t *ids,
    struct cmd_targets *out, struct api_error *err)
{
	struct instance_rec in;
	const char *id;
	json_t *x;
	size_t i;
	int rc;

	json_array_foreach(ids, i, x) {
		id = json_string_value(x);
		rc = store_instance_get(c->srv->store, id, &in);
		if (rc == PH_ERR_NOTFOUND || (rc == 0 && in.deregistered))
			return api_error_set(err, 400, "InvalidInstanceId",
			    "Instance %s is not a registered managed instance "
			    "of this account.", id);
		if (rc != 0)
			return api_error_internal(err, "send_command", rc);
		if ((rc = targets_add(out, &in)) != 0)
			return api_error_internal(err, "send_command", rc);
	}
	return 0;
}

static int
cmd_validate_params(struct api_v *v, json_t *params)
{
	static const struct api_str vd = { NULL, NULL, 1, 0, 0, NULL, NULL,
	    NULL };
	const char *k, *dummy;
	char pp[300];
	json_t *x, *y;
	size_t i;

	if (params == NULL)
		return 0;
	if (json_object_size(params) > CMD_MAX_PARAMS)
		api_v_fail(v, "parameters", "{...}", "Member must have length "
		    "less than or equal to 200");
	json_object_foreach(params, k, x) {
		snprintf(pp, sizeof(pp), "parameters.%.200s", k);
		if (!json_is_array(x)) {
			api_v_type(v, pp, "a list");
			continue;
		}
		json_array_foreach(x, i, y) {
			snprintf(pp, sizeof(pp), "parameters.%.200s.%zu.member",
			    k, i + 1);
			api_v_str_value(v, y, pp, &vd, &dummy);
		}
	}
	return 0;
}

/* NotificationConfig, CloudWatchOutputConfig and AlarmConfiguration:
 * checked against their shapes, kept as given. */
static void
cmd_validate_configs(struct api_v *v, json_t *notif, json_t *cw,
    json_t *alarm)
{
	static const char *const events[] = { "All", "InProgress", "Success",
	    "TimedOut", "Cancelled", "Failed", NULL };
	static const char *const types[] = { "Command", "Invocation", NULL };
	static const struct api_str arn_d = { "NotificationArn",
	    "notificationConfig.notificationArn", 0, 0, 0, NULL, NULL, NULL };
	static const struct api_str type_d = { "NotificationType",
	    "notificationConfig.notificationType", 0, 0, 0, NULL, NULL,
	    types };
	static const struct api_str ev_d = { NULL, NULL, 1, 0, 0, NULL, NULL,
	    events };
	static const struct api_str group_d = { "CloudWatchLogGroupName",
	    "cloudWatchOutputConfig.cloudWatchLogGroupName", 0, 1, 512, NULL,
	    NULL, NULL };
	static const struct api_str name_d = { NULL, NULL, 1, 1, 255, NULL,
	    NULL, NULL };
	json_t *list, *x, *b;
	const char *s;
	char p[96];
	size_t i;

	if (notif != NULL) {
		api_v_str(v, notif, &arn_d);
		api_v_str(v, notif, &type_d);
		list = api_v_list(v, notif, "NotificationEvents",
		    "notificationConfig.notificationEvents", 0, 0, 0);
		json_array_foreach(list, i, x) {
			snprintf(p, sizeof(p), "notificationConfig."
			    "notificationEvents.%zu.member", i + 1);
			api_v_str_value(v, x, p, &ev_d, &s);
		}
	}
	if (cw != NULL) {
		api_v_str(v, cw, &group_d);
		b = json_object_get(cw, "CloudWatchOutputEnabled");
		if (b != NULL && !json_is_null(b) && !json_is_boolean(b))
			api_v_type(v, "cloudWatchOutputConfig."
			    "cloudWatchOutputEnabled", "a boolean");
	}
	if (alarm != NULL) {
		b = json_object_get(alarm, "IgnorePollAlarmFailure");
		if (b != NULL && !json_is_null(b) && !json_is_boolean(b))
			api_v_type(v, "alarmConfiguration."
			    "ignorePollAlarmFailure", "a boolean");
		list = api_v_list(v, alarm, "Alarms",
		    "alarmConfiguration.alarms", 1, 1, 1);
		json_array_foreach(list, i, x) {
			snprintf(p, sizeof(p), "alarmConfiguration.alarms.%zu."
			    "member.name", i + 1);
			if (!json_is_object(x)) {
				api_v_type(v, p, "a structure");
				continue;
			}
			b = json_object_get(x, "Name");
			if (b == NULL || json_is_null(b))
				api_v_fail(v, p, NULL, "Member must not be "
				    "null");
			else if (api_v_str_value(v, b, p, &name_d, &s) == 1 &&
			    s != NULL && strspn(s, " \t\r\n") == strlen(s))
				api_v_fail(v, p, s, "Member must satisfy "
				    "regular expression pattern: ^(?!\\s*$).+");
		}
	}
}

static char *
dump_or_null(json_t *j)
{
	if (j == NULL || json_is_null(j))
		return NULL;
	return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Document hash check: the caller's DocumentHash must be the content's. */
static int
cmd_check_hash(const struct cmddoc *d, const char *hash, const char *type,
    struct api_error *err)
{
	if (hash == NULL)
		return 0;
	if (type != NULL && strcmp(type, "Sha1") == 0)
		return api_error_set(err, 400, "InvalidDocument",
		    "DocumentHashType Sha1 is not supported; give the "
		    "Sha256 hash of the document.");
	if (strcasecmp(hash, d->hash) != 0)
		return api_error_set(err, 400, "InvalidDocument",
		    "The document hash %s does not match document %s "
		    "version %s.", hash, d->name, d->version);
	return 0;
}

int
api_ssm_send_command(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const struct api_str doc_d = { "DocumentName", "documentName",
	    1, 3, 128, pat_document_arn, "^[a-zA-Z0-9_\\-.:/]{3,128}$",
	    NULL };
	static const struct api_str ver_d = { "DocumentVersion",
	    "documentVersion", 0, 0, 0, pat_document_version,
	    "([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)", NULL };
	static const char *const hash_types[] = { "Sha256", "Sha1", NULL };
	static const struct api_str hash_d = { "DocumentHash", "documentHash",
	    0, 0, 256, NULL, NULL, NULL };
	static const struct api_str htype_d = { "DocumentHashType",
	    "documentHashType", 0, 0, 0, NULL, NULL, hash_types };
	static const struct api_str comment_d = { "Comment", "comment", 0, 0,
	    100, NULL, NULL, NULL };
	static const struct api_str region_d = { "OutputS3Region",
	    "outputS3Region", 0, 3, 20, NULL, NULL, NULL };
	static const struct api_str bucket_d = { "OutputS3BucketName",
	    "outputS3BucketName", 0, 3, 63, NULL, NULL, NULL };
	static const struct api_str prefix_d = { "OutputS3KeyPrefix",
	    "outputS3KeyPrefix", 0, 0, 500, NULL, NULL, NULL };
	static const struct api_str conc_d = { "MaxConcurrency",
	    "maxConcurrency", 0, 1, 7, pat_concurrency,
	    "^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$", NULL };
	static const struct api_str errs_d = { "MaxErrors", "maxErrors", 0, 1,
	    7, pat_max_errors, "^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$",
	    NULL };
	static const struct api_str role_d = { "ServiceRoleArn",
	    "serviceRoleArn", 0, 0, 0, NULL, NULL, NULL };
	struct cmd_targets tg = { NULL, 0, 0 };
	struct invocation_rec *inv = NULL;
	struct command_rec rec;
	struct cmddoc doc;
	const char *docarg, *docname, *version, *hash, *htype, *comment;
	const char *region, *bucket, *prefix, *conc, *errs, *role;
	json_t *ids, *targets, *params, *notif, *cw, *alarm;
	json_t *resolved = NULL, *rendered = NULL, *cmd;
	char arn[320], *alarm_text = NULL;
	struct api_v v;
	int64_t timeout;
	size_t i;
	int rc, dup;

	memset(&rec, 0, sizeof(rec));
	memset(&doc, 0, sizeof(doc));
	api_v_init(&v);
	docarg = api_v_str(&v, in, &doc_d);
	version = api_v_str(&v, in, &ver_d);
	hash = api_v_str(&v, in, &hash_d);
	htype = api_v_str(&v, in, &htype_d);
	comment = api_v_str(&v, in, &comment_d);
	region = api_v_str(&v, in, &region_d);
	bucket = api_v_str(&v, in, &bucket_d);
	prefix = api_v_str(&v, in, &prefix_d);
	conc = api_v_str(&v, in, &conc_d);
	errs = api_v_str(&v, in, &errs_d);
	role = api_v_str(&v, in, &role_d);
	ids = cmd_instance_list(&v, in, "InstanceIds", "instanceIds", &dup);
	targets = cmd_targets_list(&v, in);
	api_v_int(&v, in, "TimeoutSeconds", "timeoutSeconds", 0, 30, 2592000,
	    CMD_DEFAULT_TIMEOUT, &timeout);
	params = api_v_object(&v, in, "Parameters", "parameters", 0);
	cmd_validate_params(&v, params);
	notif = api_v_object(&v, in, "NotificationConfig",
	    "notificationConfig", 0);
	cw = api_v_object(&v, in, "CloudWatchOutputConfig",
	    "cloudWatchOutputConfig", 0);
	alarm = api_v_object(&v, in, "AlarmConfiguration",
	    "alarmConfiguration", 0);
	cmd_validate_configs(&v, notif, cw, alarm);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (dup)
		return api_error_set(err, 400, "DuplicateInstanceId",
		    "An instance ID appears more than once in InstanceIds.");
	if (json_array_size(ids) == 0 && json_array_size(targets) == 0)
		return api_error_set(err, 400, "ValidationException",
		    "Either InstanceIds or Targets must be specified.");
	if (json_array_size(ids) > 0 && json_array_size(targets) > 0)
		return api_error_set(err, 400, "ValidationException",
		    "InstanceIds and Targets cannot both be specified.");

	/* A document ARN names the document after "document/". */
	docname = docarg;
	if (strncmp(docname, "arn:", 4) == 0) {
		const char *d = strstr(docname, ":document/");

		if (d == NULL || d[10] == '\0')
			return api_error_set(err, 400, "InvalidDocument",
			    "Document %s does not exist.", docname);
		docname = d + 10;
	}
	/* AWS evaluates SendCommand on the document, then on each target
	 * instance; a denial of any is the request's. */
	cmd_document_arn(c, docname, arn, sizeof(arn));
	if ((rc = api_authorize(c, "ssm:SendCommand", arn, err)) != 0)
		return rc;
	if ((rc = cmddoc_load(c, docname, version, &doc, err)) != 0)
		return rc;
	if ((rc = cmd_check_hash(&doc, hash, htype, err)) != 0 ||
	    (rc = cmddoc_resolve_params(&doc, params, &resolved, err)) != 0)
		goto out;
	if (bucket != NULL && !bucket_name_ok(bucket)) {
		rc = api_error_set(err, 400, "InvalidOutputFolder",
		    "The S3 bucket name %s is not valid.", bucket);
		goto out;
	}
	/* Named instances are authorised before anything is said about
	 * them (an unknown one is a denial for who may not use it); tag
	 * targets once resolved. */
	if (json_array_size(ids) > 0) {
		for (i = 0; i < json_array_size(ids); i++) {
			cmd_instance_arn(c, json_string_value(
			    json_array_get(ids, i)), arn, sizeof(arn));
			if ((rc = api_authorize(c, "ssm:SendCommand", arn,
			    err)) != 0)
				goto out;
		}
		rc = cmd_resolve_ids(c, ids, &tg, err);
	} else {
		rc = cmd_resolve_targets(c, targets, &tg, err);
		for (i = 0; rc == 0 && i < tg.n; i++) {
			cmd_instance_arn(c, tg.v[i].id, arn, sizeof(arn));
			rc = api_authorize(c, "ssm:SendCommand", arn, err);
		}
	}
	if (rc != 0)
		goto out;
	/* Named instances must be able to run it; tag targets of other
	 * platforms are the agent's to skip, as AWS's fleets do. */
	if (json_array_size(ids) > 0)
		for (i = 0; i < tg.n; i++)
			if (tg.v[i].platform[0] != '\0' &&
			    !cmddoc_runs_on(&doc, tg.v[i].platform)) {
				rc = api_error_set(err, 400,
				    "UnsupportedPlatformType", "Document %s "
				    "does not run on %s (%s).", doc.name,
				    tg.v[i].id, tg.v[i].platform);
				goto out;
			}
	if ((rendered = cmddoc_render(&doc, resolved)) == NULL) {
		rc = api_error_set(err, 400, "InvalidDocument", "Document %s "
		    "could not be rendered with these parameters.", doc.name);
		goto out;
	}

	uuid_v4_str(rec.command_id);
	snprintf(rec.document_version, sizeof(rec.document_version), "%s",
	    doc.version);
	snprintf(rec.max_concurrency, sizeof(rec.max_concurrency), "%s",
	    conc != NULL ? conc : "50");
	snprintf(rec.max_errors, sizeof(rec.max_errors), "%s",
	    errs != NULL ? errs : "0");
	rec.requested_ms = c->now_ms;
	rec.timeout_seconds = (int)timeout;
	rec.expires_ms = c->now_ms + timeout * 1000;
	rec.target_count = (int)tg.n;
	/* Nothing matched: AWS's command is done at once. */
	snprintf(rec.status, sizeof(rec.status), "%s", tg.n > 0 ? "Pending" :
	    "Success");
	snprintf(rec.status_details, sizeof(rec.status_details), "%s",
	    rec.status);
	rc = PH_ERR_NOMEM;
	if ((rec.document_name = strdup(doc.name)) == NULL ||
	    (comment != NULL && (rec.comment = strdup(comment)) == NULL) ||
	    (rec.parameters_json = dump_or_null(resolved)) == NULL ||
	    (rec.targets_json = targets != NULL ? json_dumps(targets,
	    JSON_COMPACT) : strdup("[]")) == NULL ||
	    (rec.instance_ids_json = ids != NULL ? json_dumps(ids,
	    JSON_COMPACT) : strdup("[]")) == NULL ||
	    (rec.content_json = json_dumps(rendered, JSON_COMPACT)) == NULL ||
	    (rec.owner_arn = strdup(c->principal != NULL ?
	    c->principal->arn : "")) == NULL ||
	    (bucket != NULL && (rec.output_s3_bucket = strdup(bucket)) ==
	    NULL) ||
	    (prefix != NULL && (rec.output_s3_prefix = strdup(prefix)) ==
	    NULL) ||
	    (rec.output_s3_region = strdup(region != NULL ? region :
	    c->srv->region)) == NULL ||
	    (role != NULL && (rec.service_role_arn = strdup(role)) == NULL))
		goto internal;
	rec.notification_json = dump_or_null(notif);
	rec.cloudwatch_json = dump_or_null(cw);
	alarm_text = dump_or_null(alarm);
	if ((notif != NULL && rec.notification_json == NULL) ||
	    (cw != NULL && rec.cloudwatch_json == NULL) ||
	    (alarm != NULL && alarm_text == NULL))
		goto internal;
	if (tg.n > 0 && (inv = calloc(tg.n, sizeof(*inv))) == NULL)
		goto internal;
	for (i = 0; i < tg.n; i++) {
		memcpy(inv[i].command_id, rec.command_id,
		    sizeof(inv[i].command_id));
		snprintf(inv[i].instance_id, sizeof(inv[i].instance_id), "%s",
		    tg.v[i].id);
		inv[i].instance_name = tg.v[i].name;
		inv[i].seq = (int)i;
		snprintf(inv[i].status, sizeof(inv[i].status), "Pending");
		snprintf(inv[i].status_details, sizeof(inv[i].status_details),
		    "Pending");
		inv[i].requested_ms = c->now_ms;
		inv[i].response_code = -1;
	}
	if ((rc = store_command_create(c->srv->store, &rec, inv,
	    tg.n)) != 0 || (alarm_text != NULL &&
	    (rc = store_command_set_alarm(c->srv->store, rec.command_id,
	    alarm_text)) != 0))
		goto internal;
	log_info("event=command_sent command=%s document=%s version=%s "
	    "targets=%zu owner=%s", rec.command_id, rec.document_name,
	    rec.document_version, tg.n, rec.owner_arn);
	if (c->srv->commands != NULL && tg.n > 0)
		commands_kick(c->srv->commands, rec.command_id);
	if ((cmd = command_json(c, &rec)) == NULL)
		goto internal;
	json_object_set_new(out, "Command", cmd);
	rc = 0;
	goto out;
internal:
	rc = api_error_internal(err, "send_command", rc);
out:
	free(inv);
	free(tg.v);
	free(alarm_text);
	command_rec_clear(&rec);
	json_decref(rendered);
	json_decref(resolved);
	cmddoc_clear(&doc);
	return rc;
}

/* ---- the list filters ------------------------------------------------- */

struct cmd_filters {
	int64_t after_ms, before_ms;  /* 0: unbounded */
	const char *status;
	const char *document_name;
	int stage;                    /* 0 any, 1 Executing, 2 Complete */
};

static int
status_final(const char *s)
{
	return strcmp(s, "Pending") != 0 && strcmp(s, "InProgress") != 0 &&
	    strcmp(s, "Delayed") != 0 && strcmp(s, "Cancelling") != 0;
}

static int
cmd_filters(struct api_v *v, json_t *in, int invocations,
    struct cmd_filters *f, struct api_error *err)
{
	static const char *const keys[] = { "InvokedAfter", "InvokedBefore",
	    "Status", "ExecutionStage", "DocumentName", NULL };
	static const struct api_str key_d = { NULL, NULL, 1, 0, 0, NULL, NULL,
	    keys };
	static const struct api_str val_d = { NULL, NULL, 1, 1, 128, NULL,
	    NULL, NULL };
	const char *k, *val;
	json_t *list, *x;
	char p[64];
	size_t i;
	int64_t ms;

	memset(f, 0, sizeof(*f));
	list = api_v_list(v, in, "Filters", "filters", 0, 1, 5);
	json_array_foreach(list, i, x) {
		k = val = NULL;
		snprintf(p, sizeof(p), "filters.%zu.member", i + 1);
		if (!json_is_object(x)) {
			api_v_type(v, p, "a structure");
			continue;
		}
		snprintf(p, sizeof(p), "filters.%zu.member.key", i + 1);
		api_v_str_value(v, json_object_get(x, "key"), p, &key_d, &k);
		snprintf(p, sizeof(p), "filters.%zu.member.value", i + 1);
		api_v_str_value(v, json_object_get(x, "value"), p, &val_d,
		    &val);
		if (k == NULL || val == NULL)
			continue;
		if (strcmp(k, "InvokedAfter") == 0 ||
		    strcmp(k, "InvokedBefore") == 0) {
			if (api_parse_time(val, &ms) != 0)
				return api_error_set(err, 400,
				    "InvalidFilterValue", "The filter value "
				    "%s is not a valid date for %s.", val, k);
			if (k[7] == 'A')
				f->after_ms = ms;
			else
				f->before_ms = ms;
		} else if (strcmp(k, "Status") == 0) {
			if (!in_enum(val, invocations ? inv_status_enum :
			    cmd_status_enum))
				return api_error_set(err, 400,
				    "InvalidFilterValue", "The filter value "
				    "%s is not valid for key Status.", val);
			f->status = val;
		} else if (strcmp(k, "ExecutionStage") == 0) {
			if (strcmp(val, "Executing") == 0)
				f->stage = 1;
			else if (strcmp(val, "Complete") == 0)
				f->stage = 2;
			else
				return api_error_set(err, 400,
				    "InvalidFilterValue", "The filter value "
				    "%s is not valid for key ExecutionStage.",
				    val);
		} else
			f->document_name = val;
	}
	return 0;
}

/* ---- ListCommands ----------------------------------------------------- */

struct cmd_list {
	const struct api_call *c;
	const struct cmd_filters *f;
	json_t *arr;
	int skip, limit, more, failed;
	size_t seen;                  /* rows of this chunk */
};

static int
cmd_list_cb(void *arg, const struct command_rec *r)
{
	struct cmd_list *l = arg;
	json_t *o;

	l->seen++;
	if (l->f->stage != 0 && status_final(r->status) != (l->f->stage == 2))
		return 0;
	if (l->skip > 0) {
		l->skip--;
		return 0;
	}
	if ((int)json_array_size(l->arr) >= l->limit) {
		l->more = 1;
		return 1;
	}
	if ((o = command_json(l->c, r)) == NULL) {
		l->failed = 1;
		return 1;
	}
	json_array_append_new(l->arr, o);
	return 0;
}

static const struct api_str command_id_d = { "CommandId", "commandId", 0,
    36, 36, NULL, NULL, NULL };
static const struct api_str command_id_req_d = { "CommandId", "commandId",
    1, 36, 36, NULL, NULL, NULL };
static const struct api_str instance_id_d = { "InstanceId", "instanceId",
    0, 0, 0, pat_instance_id, PAT_INSTANCE_ID, NULL };
static const struct api_str instance_id_req_d = { "InstanceId",
    "instanceId", 1, 0, 0, pat_instance_id, PAT_INSTANCE_ID, NULL };

static int
cmd_exists(const struct api_call *c, const char *id, struct api_error *err)
{
	struct command_rec r;
	int rc;

	rc = store_command_get(c->srv->store, id, &r);
	command_rec_clear(&r);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 400, "InvalidCommandId",
		    "Command %s does not exist.", id);
	if (rc != 0)
		return api_error_internal(err, "command_get", rc);
	return 0;
}

int
api_ssm_list_commands(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct command_query q;
	struct cmd_filters f;
	struct cmd_list l;
	const char *cid, *iid;
	struct api_v v;
	int rc, limit, offset;

	api_v_init(&v);
	cid = api_v_str(&v, in, &command_id_d);
	iid = api_v_str(&v, in, &instance_id_d);
	if ((rc = cmd_paging(&v, in, &limit, &offset, err)) != 0 ||
	    (rc = cmd_filters(&v, in, 0, &f, err)) != 0)
		return rc;
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = api_authorize(c, "ssm:ListCommands", "*", err)) != 0)
		return rc;
	if (cid != NULL && (rc = cmd_exists(c, cid, err)) != 0)
		return rc;
	memset(&q, 0, sizeof(q));
	q.command_id = cid;
	q.instance_id = iid;
	q.status = f.status;
	q.document_name = f.document_name;
	q.after_ms = f.after_ms;
	q.before_ms = f.before_ms;
	memset(&l, 0, sizeof(l));
	l.c = c;
	l.f = &f;
	l.limit = limit;
	/* ExecutionStage is decided here, so the store pages only without
	 * it; with it the rows are read a chunk at a time. */
	if (f.stage == 0) {
		q.offset = (size_t)offset;
		q.limit = (size_t)limit + 1;
	} else {
		l.skip = offset;
		q.limit = CMD_SCAN_CHUNK;
	}
	if ((l.arr = json_array()) == NULL)
		return api_error_internal(err, "list_commands", PH_ERR_NOMEM);
	for (;;) {
		l.seen = 0;
		rc = store_command_query(c->srv->store, &q, cmd_list_cb, &l);
		if (rc != 0 || l.failed || l.more || f.stage == 0 ||
		    l.seen < CMD_SCAN_CHUNK)
			break;
		q.offset += CMD_SCAN_CHUNK;
	}
	if (rc != 0 || l.failed) {
		json_decref(l.arr);
		return api_error_internal(err, "list_commands",
		    rc != 0 ? rc : PH_ERR_NOMEM);
	}
	json_object_set_new(out, "Commands", l.arr);
	cmd_next_token(out, l.more, offset + limit);
	return 0;
}

/* ---- ListCommandInvocations ------------------------------------------- */

/* A CommandPlugin as botocore has it, from what the dispatcher stored
 * (times in ms there, epoch seconds here). */
static json_t *
plugin_json(json_t *p, const struct command_rec *r)
{
	json_t *o = json_object(), *x;
	const char *s;

	if (o == NULL)
		return NULL;
	set_str(o, "Name", json_string_value(json_object_get(p, "Name")));
	s = json_string_value(json_object_get(p, "Status"));
	set_str(o, "Status", s != NULL ? s : "Pending");
	s = json_string_value(json_object_get(p, "StatusDetails"));
	set_str(o, "StatusDetails", s != NULL ? s : "Pending");
	x = json_object_get(p, "ResponseCode");
	json_object_set_new(o, "ResponseCode", json_integer(
	    json_is_integer(x) ? json_integer_value(x) : -1));
	x = json_object_get(p, "ResponseStartDateTime");
	if (json_is_integer(x) && json_integer_value(x) > 0)
		json_object_set_new(o, "ResponseStartDateTime",
		    api_json_time(json_integer_value(x)));
	x = json_object_get(p, "ResponseFinishDateTime");
	if (json_is_integer(x) && json_integer_value(x) > 0)
		json_object_set_new(o, "ResponseFinishDateTime",
		    api_json_time(json_integer_value(x)));
	json_object_set_new(o, "Output", json_cut(json_string_value(
	    json_object_get(p, "Output")), CMD_PLUGIN_OUTPUT_MAX));
	set_str(o, "StandardOutputUrl", json_string_value(json_object_get(p,
	    "StandardOutputUrl")));
	set_str(o, "StandardErrorUrl", json_string_value(json_object_get(p,
	    "StandardErrorUrl")));
	set_str(o, "OutputS3Region", r->output_s3_region);
	set_str(o, "OutputS3BucketName", r->output_s3_bucket);
	set_str(o, "OutputS3KeyPrefix", r->output_s3_prefix);
	return o;
}

struct inv_list {
	const struct api_call *c;
	const struct cmd_filters *f;
	struct command_rec cmd;       /* the invocation's command */
	int have_cmd;
	int details;
	json_t *arr;
	int skip, limit, more, failed;
	size_t seen;                  /* rows of this chunk */
};

static json_t *
invocation_json(struct inv_list *l, const struct invocation_rec *r)
{
	const struct command_rec *cr = &l->cmd;
	json_t *o = json_object(), *plugins, *p, *arr;
	size_t i;

	if (o == NULL)
		return NULL;
	set_str(o, "CommandId", r->command_id);
	set_str(o, "InstanceId", r->instance_id);
	set_str(o, "InstanceName", r->instance_name);
	set_str(o, "Comment", cr->comment);
	set_str(o, "DocumentName", cr->document_name);
	set_str(o, "DocumentVersion", cr->document_version);
	json_object_set_new(o, "RequestedDateTime",
	    api_json_time(r->requested_ms));
	set_str(o, "Status", inv_status_api(r->status));
	set_str(o, "StatusDetails", r->status_details);
	set_str(o, "TraceOutput", "");
	set_str(o, "StandardOutputUrl", r->stdout_url);
	set_str(o, "StandardErrorUrl", r->stderr_url);
	arr = json_array();
	if (l->details && arr != NULL) {
		plugins = json_or(r->plugins_json, json_array());
		json_array_foreach(plugins, i, p)
			if (json_is_object(p) &&
			    (p = plugin_json(p, cr)) != NULL)
				json_array_append_new(arr, p);
		json_decref(plugins);
	}
	json_object_set_new(o, "CommandPlugins", arr);
	set_str(o, "ServiceRole", cr->service_role_arn);
	json_object_set_new(o, "NotificationConfig",
	    notification_out(cr->notification_json));
	json_object_set_new(o, "CloudWatchOutputConfig",
	    cloudwatch_out(cr->cloudwatch_json));
	return o;
}

static int
inv_list_cb(void *arg, const struct invocation_rec *r)
{
	struct inv_list *l = arg;
	const struct cmd_filters *f = l->f;
	json_t *o;

	l->seen++;
	if (!l->have_cmd || strcmp(l->cmd.command_id, r->command_id) != 0) {
		command_rec_clear(&l->cmd);
		l->have_cmd = 0;
		if (store_command_get(l->c->srv->store, r->command_id,
		    &l->cmd) != 0)
			return 0;
		l->have_cmd = 1;
	}
	if ((f->after_ms != 0 && r->requested_ms < f->after_ms) ||
	    (f->before_ms != 0 && r->requested_ms >= f->before_ms) ||
	    (f->status != NULL && strcmp(inv_status_api(r->status),
	    f->status) != 0) ||
	    (f->document_name != NULL && strcmp(l->cmd.document_name,
	    f->document_name) != 0) ||
	    (f->stage != 0 && status_final(r->status) != (f->stage == 2)))
		return 0;
	if (l->skip > 0) {
		l->skip--;
		return 0;
	}
	if ((int)json_array_size(l->arr) >= l->limit) {
		l->more = 1;
		return 1;
	}
	if ((o = invocation_json(l, r)) == NULL) {
		l->failed = 1;
		return 1;
	}
	json_array_append_new(l->arr, o);
	return 0;
}

int
api_ssm_list_command_invocations(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err)
{
	struct cmd_filters f;
	struct inv_list l;
	const char *cid, *iid;
	struct api_v v;
	json_t *det;
	size_t chunk;
	int rc, limit, offset;

	api_v_init(&v);
	cid = api_v_str(&v, in, &command_id_d);
	iid = api_v_str(&v, in, &instance_id_d);
	det = json_object_get(in, "Details");
	if (det != NULL && !json_is_null(det) && !json_is_boolean(det))
		api_v_type(&v, "details", "a boolean");
	if ((rc = cmd_paging(&v, in, &limit, &offset, err)) != 0 ||
	    (rc = cmd_filters(&v, in, 1, &f, err)) != 0)
		return rc;
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = api_authorize(c, "ssm:ListCommandInvocations", "*",
	    err)) != 0)
		return rc;
	if (cid != NULL && (rc = cmd_exists(c, cid, err)) != 0)
		return rc;
	memset(&l, 0, sizeof(l));
	l.c = c;
	l.f = &f;
	l.details = json_is_true(det);
	l.limit = limit;
	l.skip = offset;
	if ((l.arr = json_array()) == NULL)
		return api_error_internal(err, "list_command_invocations",
		    PH_ERR_NOMEM);
	/* Filters are applied here: the rows are read a chunk at a time. */
	for (chunk = 0;; chunk += CMD_SCAN_CHUNK) {
		l.seen = 0;
		rc = store_invocation_query(c->srv->store, cid, iid, chunk,
		    CMD_SCAN_CHUNK, inv_list_cb, &l);
		if (rc != 0 || l.failed || l.more || l.seen < CMD_SCAN_CHUNK)
			break;
	}
	command_rec_clear(&l.cmd);
	if (rc != 0 || l.failed) {
		json_decref(l.arr);
		return api_error_internal(err, "list_command_invocations",
		    rc != 0 ? rc : PH_ERR_NOMEM);
	}
	json_object_set_new(out, "CommandInvocations", l.arr);
	cmd_next_token(out, l.more, offset + limit);
	return 0;
}

/* ---- GetCommandInvocation --------------------------------------------- */

int
api_ssm_get_command_invocation(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err)
{
	static const struct api_str plugin_d = { "PluginName", "pluginName",
	    0, 4, 0, NULL, NULL, NULL };
	struct invocation_rec r;
	struct command_rec cr;
	const char *cid, *iid, *plugin, *so, *se, *name, *st, *sd;
	json_t *plugins = NULL, *p = NULL, *x;
	int64_t start, end;
	char t[64];
	struct api_v v;
	size_t i;
	int rc, code;

	memset(&r, 0, sizeof(r));
	memset(&cr, 0, sizeof(cr));
	api_v_init(&v);
	cid = api_v_str(&v, in, &command_id_req_d);
	iid = api_v_str(&v, in, &instance_id_req_d);
	plugin = api_v_str(&v, in, &plugin_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if ((rc = api_authorize(c, "ssm:GetCommandInvocation", "*", err)) != 0)
		return rc;
	rc = store_invocation_get(c->srv->store, cid, iid, &r);
	if (rc == 0)
		rc = store_command_get(c->srv->store, cid, &cr);
	if (rc == PH_ERR_NOTFOUND) {
		rc = api_error_set(err, 400, "InvocationDoesNotExist", "%s",
		    "");
		goto out;
	}
	if (rc != 0) {
		rc = api_error_internal(err, "get_command_invocation", rc);
		goto out;
	}
	plugins = json_or(r.plugins_json, json_array());
	if (plugin != NULL) {
		json_array_foreach(plugins, i, x) {
			/* The step's name, or its plugin's (aws:...). */
			name = json_string_value(json_object_get(x, "Name"));
			if (name == NULL || strcmp(name, plugin) != 0)
				name = json_string_value(json_object_get(x,
				    "PluginName"));
			if (name != NULL && strcmp(name, plugin) == 0) {
				p = x;
				break;
			}
		}
		if (p == NULL) {
			rc = api_error_set(err, 400, "InvalidPluginName",
			    "The plugin name %s is not valid for this "
			    "command.", plugin);
			goto out;
		}
	} else if (json_array_size(plugins) == 1)
		p = json_array_get(plugins, 0);

	/* One step named: its own figures; else the invocation's. */
	if (p != NULL && plugin != NULL) {
		x = json_object_get(p, "ResponseCode");
		code = json_is_integer(x) ? (int)json_integer_value(x) : -1;
		x = json_object_get(p, "ResponseStartDateTime");
		start = json_is_integer(x) ? json_integer_value(x) : 0;
		x = json_object_get(p, "ResponseFinishDateTime");
		end = json_is_integer(x) ? json_integer_value(x) : 0;
		st = json_string_value(json_object_get(p, "Status"));
		sd = json_string_value(json_object_get(p, "StatusDetails"));
		so = json_string_value(json_object_get(p,
		    "StandardOutputContent"));
		if (so == NULL)
			so = json_string_value(json_object_get(p, "Output"));
		se = json_string_value(json_object_get(p,
		    "StandardErrorContent"));
		if (st == NULL)
			st = "Pending";
		if (sd == NULL)
			sd = st;
	} else {
		code = r.response_code;
		start = r.started_ms;
		end = r.ended_ms;
		st = inv_status_api(r.status);
		sd = r.status_details;
		so = r.stdout_text;
		se = r.stderr_text;
	}
	set_str(out, "CommandId", r.command_id);
	set_str(out, "InstanceId", r.instance_id);
	set_str(out, "Comment", cr.comment);
	set_str(out, "DocumentName", cr.document_name);
	set_str(out, "DocumentVersion", cr.document_version);
	set_str(out, "PluginName", p != NULL ? json_string_value(
	    json_object_get(p, "Name")) : "");
	json_object_set_new(out, "ResponseCode", json_integer(code));
	fmt_time(start, t, sizeof(t));
	set_str(out, "ExecutionStartDateTime", t);
	fmt_elapsed(start, end, t, sizeof(t));
	set_str(out, "ExecutionElapsedTime", t);
	fmt_time(end, t, sizeof(t));
	set_str(out, "ExecutionEndDateTime", t);
	set_str(out, "Status", inv_status_api(st));
	set_str(out, "StatusDetails", sd);
	json_object_set_new(out, "StandardOutputContent", json_cut(so,
	    API_CMD_STDOUT_MAX));
	set_str(out, "StandardOutputUrl", p != NULL && plugin != NULL ?
	    json_string_value(json_object_get(p, "StandardOutputUrl")) :
	    r.stdout_url);
	json_object_set_new(out, "StandardErrorContent", json_cut(se,
	    API_CMD_STDERR_MAX));
	set_str(out, "StandardErrorUrl", p != NULL && plugin != NULL ?
	    json_string_value(json_object_get(p, "StandardErrorUrl")) :
	    r.stderr_url);
	json_object_set_new(out, "CloudWatchOutputConfig",
	    cloudwatch_out(cr.cloudwatch_json));
	rc = 0;
out:
	json_decref(plugins);
	invocation_rec_clear(&r);
	command_rec_clear(&cr);
	return rc;
}

/* ---- CancelCommand ---------------------------------------------------- */

int
api_ssm_cancel_command(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct invocation_rec r;
	const char *cid, *id;
	struct api_v v;
	json_t *ids, *x;
	size_t i;
	int rc, dup;

	api_v_init(&v);
	cid = api_v_str(&v, in, &command_id_req_d);
	ids = cmd_instance_list(&v, in, "InstanceIds", "instanceIds", &dup);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (dup)
		return api_error_set(err, 400, "DuplicateInstanceId",
		    "An instance ID appears more than once in InstanceIds.");
	if ((rc = api_authorize(c, "ssm:CancelCommand", "*", err)) != 0)
		return rc;
	if ((rc = cmd_exists(c, cid, err)) != 0)
		return rc;
	json_array_foreach(ids, i, x) {
		id = json_string_value(x);
		rc = store_invocation_get(c->srv->store, cid, id, &r);
		invocation_rec_clear(&r);
		if (rc == PH_ERR_NOTFOUND)
			return api_error_set(err, 400, "InvalidInstanceId",
			    "Command %s has no invocation on %s.", cid, id);
		if (rc != 0)
			return api_error_internal(err, "cancel_command", rc);
	}
	if (c->srv->commands == NULL)
		return api_error_set(err, 500, "InternalServerError",
		    "Run Command's dispatcher is not running.");
	rc = commands_cancel(c->srv->commands, cid, ids);
	/* A command already final: nothing to cancel, as AWS answers. */
	if (rc == PH_ERR_STATE || rc == 0) {
		log_info("event=command_cancel command=%s", cid);
		(void)out;
		return 0;
	}
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 400, "InvalidCommandId",
		    "Command %s does not exist.", cid);
	return api_error_internal(err, "cancel_command", rc);
}
