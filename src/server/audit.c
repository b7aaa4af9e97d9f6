/* audit: CloudTrail-shaped events of every control-plane call, appended as
 * JSON lines to per-day, size-rotated files under DATA_DIR/audit, and read
 * back newest first for LookupEvents (api_cloudtrail.c). */
#include "server/audit.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"
#include "server/api_query.h"
#include "server/audit_syslog.h"
#include "server/authz.h"
#include "server/instance_principal.h"
#include "server/store.h"

#define AUDIT_PREFIX "audit-"
#define AUDIT_SUFFIX ".jsonl"
#define AUDIT_MAX_INDEX 999999u
/* A directory with more files than this is read only this far. */
#define AUDIT_MAX_FILES 100000
/* Redaction bounds: nesting, and values copied per event. */
#define AUDIT_MAX_DEPTH 16
#define AUDIT_MAX_NODES 4096
/* The reader's block: two of the longest lines we write. */
#define AUDIT_BLOCK (2 * AUDIT_MAX_LINE)
#define AUDIT_DAY_MS ((int64_t)86400 * 1000)

struct audit {
	char dir[600];
	uint64_t max_bytes;
	int syslog;
	audit_rotated_fn rotated;
	void *rotated_arg;
	char told_day[11];   /* the newest file reported closed */
	unsigned told_idx;
	int fd;              /* the file being appended to, or -1 */
	char day[11];        /* its day */
	unsigned idx;        /* its index */
	uint64_t size;       /* its size */
	uint64_t failures;
	/* Events of unauthenticated requests: a token bucket, so a flood of
	 * garbage cannot fill the disk at the rate it arrives. */
	double tokens;
	int64_t refilled_ms;     /* CLOCK_MONOTONIC */
	uint64_t suppressed;     /* not written since the last one that was */
};

/* ---- strings -------------------------------------------------------------- */

/* s cut to at most max bytes (at a character boundary) as a JSON string;
 * bytes that are not UTF-8 become '?'. NULL only when out of memory. */
static json_t *
audit_jstr(const char *s, size_t max)
{
	size_t n = strlen(s), i;
	json_t *j;
	char *c;

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	if ((j = json_stringn(s, n)) != NULL)
		return j;
	if ((c = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		c[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	c[n] = '\0';
	j = json_stringn(c, n);
	free(c);
	return j;
}

/* Set key to s if s is a non-empty string. */
static int
audit_set(json_t *o, const char *key, const char *s, size_t max)
{
	json_t *j;

	if (s == NULL || s[0] == '\0')
		return 0;
	if ((j = audit_jstr(s, max)) == NULL)
		return PH_ERR_NOMEM;
	return json_object_set_new(o, key, j) == 0 ? 0 : PH_ERR_NOMEM;
}

int
audit_hidden_member(const char *name)
{
	static const char *const words[] = {
		"secret", "password", "passphrase", "token", "plaintext",
		"privatekey", "credential", "activationcode", "keymaterial",
		"ciphertextblob", NULL,
	};
	size_t i;

	if (name == NULL)
		return 0;
	for (i = 0; words[i] != NULL; i++)
		if (strcasestr(name, words[i]) != NULL)
			return 1;
	return 0;
}

static json_t *
audit_redact_at(json_t *v, int depth, int *nodes)
{
	const char *key;
	json_t *out, *c, *e;
	size_t i;

	if (++*nodes > AUDIT_MAX_NODES || depth > AUDIT_MAX_DEPTH)
		return json_string("...");
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if ((out = json_object()) == NULL)
			return NULL;
		json_object_foreach(v, key, e) {
			c = audit_hidden_member(key) ? json_string(AUDIT_HIDDEN) :
			    audit_redact_at(e, depth + 1, nodes);
			if (c == NULL || json_object_set_new(out, key, c) != 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	case JSON_ARRAY:
		if ((out = json_array()) == NULL)
			return NULL;
		json_array_foreach(v, i, e) {
			c = audit_redact_at(e, depth + 1, nodes);
			if (c == NULL || json_array_append_new(out, c) != 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	case JSON_STRING:
		return json_stringn(json_string_value(v), json_string_length(v));
	default:
		return json_copy(v);
	}
}

json_t *
audit_redact(const json_t *v)
{
	int nodes = 0;

	if (v == NULL)
		return json_null();
	return audit_redact_at((json_t *)v, 0, &nodes);
}

/* A Query form's pairs as one flat object (Action and Version are the
 * event's name and nothing else); NULL for a body that is not a form. */
static json_t *
audit_form_params(const void *body, size_t len)
{
	struct api_form *f = NULL;
	const char *name, *value;
	json_t *o = NULL, *v;
	size_t i;

	if (api_form_parse(body, len, &f) != 0)
		return NULL;
	if ((o = json_object()) == NULL)
		goto fail;
	for (i = 0; api_form_pair(f, i, &name, &value) == 0; i++) {
		if (strcmp(name, "Action") == 0 || strcmp(name, "Version") == 0)
			continue;
		v = audit_hidden_member(name) ? json_string(AUDIT_HIDDEN) :
		    json_string(value);
		if (v == NULL || json_object_set_new(o, name, v) != 0)
			goto fail;
	}
	api_form_free(f);
	return o;
fail:
	json_decref(o);
	api_form_free(f);
	return NULL;
}

/* What a Query answer contributes: these children of these elements,
 * e.g. AssumeRole's Credentials.AccessKeyId (never SecretAccessKey or
 * SessionToken), CreateAccessKey's AccessKey.AccessKeyId. */
static const struct {
	const char *parent;
	const char *children[4];
} audit_xml_keep[] = {
	{ "Credentials", { "AccessKeyId", "Expiration", NULL } },
	{ "AssumedRoleUser", { "Arn", "AssumedRoleId", NULL } },
	{ "AccessKey", { "AccessKeyId", "UserName", "Status", NULL } },
	{ "User", { "Arn", "UserId", "UserName", NULL } },
	{ "Role", { "Arn", "RoleId", "RoleName", NULL } },
	{ "Group", { "Arn", "GroupId", "GroupName", NULL } },
	{ "Policy", { "Arn", "PolicyId", "PolicyName", NULL } },
};

static void
audit_xml_walk(xmlNode *n, json_t *o, int depth, int *nodes)
{
	const char *name, *const *c;
	xmlNode *ch;
	xmlChar *text;
	json_t *sub;
	size_t i;

	for (; n != NULL && depth < 12 && ++*nodes < 4096; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		name = (const char *)n->name;
		for (i = 0; i < sizeof(audit_xml_keep) /
		    sizeof(audit_xml_keep[0]); i++) {
			if (strcmp(name, audit_xml_keep[i].parent) != 0 ||
			    json_object_get(o, name) != NULL)
				continue;
			if ((sub = json_object()) == NULL)
				return;
			for (ch = n->children; ch != NULL; ch = ch->next) {
				if (ch->type != XML_ELEMENT_NODE)
					continue;
				for (c = audit_xml_keep[i].children; *c; c++) {
					if (strcmp((const char *)ch->name, *c))
						continue;
					text = xmlNodeGetContent(ch);
					if (text != NULL)
						audit_set(sub, *c,
						    (const char *)text, 256);
					xmlFree(text);
				}
			}
			json_object_set_new(o, name, sub);
		}
		audit_xml_walk(n->children, o, depth + 1, nodes);
	}
}

static json_t *
audit_xml_response(const char *xml, size_t len)
{
	xmlDoc *doc;
	json_t *o;
	int nodes = 0;

	if (xml == NULL || len == 0 || len > INT32_MAX)
		return NULL;
	doc = xmlReadMemory(xml, (int)len, NULL, NULL, XML_PARSE_NONET |
	    XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL)
		return NULL;
	if ((o = json_object()) != NULL)
		audit_xml_walk(xmlDocGetRootElement(doc), o, 0, &nodes);
	xmlFreeDoc(doc);
	return o;
}

/* The identifiers of an answer worth keeping: which session, key,
 * activation the call made. Never a token, key material or plaintext. */
static json_t *
audit_response(const json_t *out, const json_t *extra, const char *xml,
    size_t xml_len)
{
	static const char *const top[] = { "SessionId", "StreamUrl", "KeyId",
	    "ActivationId", "EncryptionAlgorithm", "InstanceId", "Name",
	    "AliasName", NULL };
	static const char *const nested[] = { "KeyMetadata",
	    "DocumentDescription", NULL };
	static const char *const inner[] = { "KeyId", "Arn", "Name",
	    "DocumentVersion", NULL };
	const char *key;
	json_t *o, *v, *n, *w;
	size_t i, k;

	o = xml != NULL ? audit_xml_response(xml, xml_len) : NULL;
	if (o == NULL && (o = json_object()) == NULL)
		return NULL;
	for (i = 0; out != NULL && top[i] != NULL; i++) {
		v = json_object_get(out, top[i]);
		if (json_is_string(v))
			json_object_set_new(o, top[i], json_copy(v));
	}
	for (i = 0; out != NULL && nested[i] != NULL; i++) {
		v = json_object_get(out, nested[i]);
		if (!json_is_object(v) || (n = json_object()) == NULL)
			continue;
		for (k = 0; inner[k] != NULL; k++)
			if (json_is_string(w = json_object_get(v, inner[k])))
				json_object_set_new(n, inner[k], json_copy(w));
		json_object_set_new(o, nested[i], n);
	}
	if (json_is_object(extra))
		json_object_foreach((json_t *)extra, key, v)
			json_object_set_new(o, key, audit_redact(v));
	if (json_object_size(o) == 0) {
		json_decref(o);
		return json_null();
	}
	return o;
}

/* ---- events --------------------------------------------------------------- */

int
audit_read_only(const char *name)
{
	static const char *const prefixes[] = { "Get", "List", "Describe",
	    "Lookup", "Search", "Decrypt", "Encrypt", "GenerateDataKey",
	    "GenerateRandom", "Verify", NULL };
	size_t i;

	if (name == NULL)
		return 0;
	for (i = 0; prefixes[i] != NULL; i++)
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

void
audit_event_source(const char *service, char *out, size_t size)
{
	size_t i, n = service != NULL ? strlen(service) : 0;

	for (i = 0; i < n; i++)
		if (!islower((unsigned char)service[i]) &&
		    !isdigit((unsigned char)service[i]) && service[i] != '-')
			break;
	if (n == 0 || n > 32 || i < n || !isalnum((unsigned char)service[0]))
		snprintf(out, size, "unknown");
	else
		snprintf(out, size, "%s.amazonaws.com", service);
}

int
audit_claimed_credential(const char *authz, char *akid, size_t akid_size,
    char *service, size_t service_size)
{
	const char *p, *slash, *s;
	size_t n, i;
	int field;

	if (akid_size == 0 || service_size == 0)
		return PH_ERR_INVALID;
	akid[0] = service[0] = '\0';
	if (authz == NULL || (p = strstr(authz, "Credential=")) == NULL)
		return PH_ERR_INVALID;
	p += sizeof("Credential=") - 1;
	if ((slash = strchr(p, '/')) == NULL)
		return PH_ERR_INVALID;
	n = (size_t)(slash - p);
	if (n == 0 || n >= akid_size || n > 128)
		return PH_ERR_INVALID;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]))
			return PH_ERR_INVALID;
	memcpy(akid, p, n);
	akid[n] = '\0';
	/* AKID/DATE/REGION/SERVICE/aws4_request */
	for (s = slash, field = 0; field < 2 && s != NULL; field++)
		s = strchr(s + 1, '/');
	if (s != NULL) {
		s++;
		for (n = 0; s[n] != '\0' && s[n] != '/' && n < 64; n++)
			;
		if (s[n] == '/' && n < service_size) {
			memcpy(service, s, n);
			service[n] = '\0';
		}
	}
	return 0;
}

/* The account of an ARN (its fifth field), or "". */
static void
audit_arn_account(const char *arn, char *out, size_t size)
{
	const char *p = arn;
	int i;

	out[0] = '\0';
	for (i = 0; i < 4 && p != NULL; i++)
		if ((p = strchr(p, ':')) != NULL)
			p++;
	if (p != NULL && strchr(p, ':') != NULL)
		snprintf(out, size, "%.*s", (int)(strchr(p, ':') - p), p);
}

static json_t *
audit_identity(const struct audit_event *ev)
{
	const struct principal *p = ev->principal;
	char acct[32], roleid[160];
	json_t *o, *ctx, *iss;
	const char *colon;
	int rc = 0;

	if ((o = json_object()) == NULL)
		return NULL;
	if (p == NULL) {
		rc |= json_object_set_new(o, "type", json_string("Unknown"));
		rc |= audit_set(o, "accessKeyId", ev->access_key_id, 128);
		goto done;
	}
	audit_arn_account(p->arn, acct, sizeof(acct));
	if (acct[0] == '\0' && ev->account_id != NULL)
		snprintf(acct, sizeof(acct), "%s", ev->account_id);
	rc |= json_object_set_new(o, "type", json_string(
	    p->kind == PRINCIPAL_USER ? "IAMUser" : "AssumedRole"));
	rc |= audit_set(o, "principalId", p->user_id, sizeof(p->user_id));
	rc |= audit_set(o, "arn", p->arn, sizeof(p->arn));
	rc |= audit_set(o, "accountId", acct, sizeof(acct));
	rc |= audit_set(o, "accessKeyId", p->access_key_id,
	    sizeof(p->access_key_id));
	if (p->kind == PRINCIPAL_USER) {
		rc |= audit_set(o, "userName", p->name, sizeof(p->name));
		goto done;
	}
	/* A role session: the role that issued it, as CloudTrail writes. */
	if ((ctx = json_object()) == NULL || (iss = json_object()) == NULL) {
		json_decref(ctx);
		json_decref(o);
		return NULL;
	}
	snprintf(roleid, sizeof(roleid), "%s", p->user_id);
	if ((colon = strchr(roleid, ':')) != NULL)
		roleid[colon - roleid] = '\0';
	rc |= json_object_set_new(iss, "type", json_string("Role"));
	rc |= audit_set(iss, "principalId", roleid, sizeof(roleid));
	rc |= audit_set(iss, "arn", p->role_arn, sizeof(p->role_arn));
	rc |= audit_set(iss, "accountId", acct, sizeof(acct));
	rc |= audit_set(iss, "userName", p->role_name, sizeof(p->role_name));
	rc |= json_object_set_new(ctx, "sessionIssuer", iss);
	if (p->kind == PRINCIPAL_INSTANCE)
		rc |= audit_set(ctx, "sourceIdentity", p->instance_id,
		    sizeof(p->instance_id));
	rc |= json_object_set_new(o, "sessionContext", ctx);
done:
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void
audit_iso(int64_t ms, char out[24])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 24, "1970-01-01T00:00:00Z");
}

static int64_t
audit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The event; params/resp: what goes into requestParameters and
 * responseElements (taken over), or NULL for null. */
static json_t *
audit_build(const struct audit_event *ev, const char *event_id,
    int64_t ms, json_t *params, json_t *resp)
{
	char when[24], source[64], eid[UUID_STR_LEN];
	json_t *o, *id;
	int rc = 0;

	if ((o = json_object()) == NULL || (id = audit_identity(ev)) == NULL) {
		json_decref(o);
		json_decref(params);
		json_decref(resp);
		return NULL;
	}
	if (event_id == NULL) {
		uuid_v4_str(eid);
		event_id = eid;
	}
	audit_iso(ms, when);
	audit_event_source(ev->service, source, sizeof(source));
	rc |= json_object_set_new(o, "eventVersion",
	    json_string(AUDIT_EVENT_VERSION));
	rc |= json_object_set_new(o, "userIdentity", id);
	rc |= json_object_set_new(o, "eventTime", json_string(when));
	rc |= json_object_set_new(o, "eventSource", json_string(source));
	rc |= json_object_set_new(o, "eventName", audit_jstr(ev->name != NULL &&
	    ev->name[0] != '\0' ? ev->name : "-", 128));
	rc |= audit_set(o, "awsRegion", ev->region, 64);
	rc |= audit_set(o, "sourceIPAddress", ev->source_ip, 64);
	rc |= audit_set(o, "userAgent", ev->user_agent, AUDIT_MAX_USER_AGENT);
	rc |= audit_set(o, "errorCode", ev->error_code, 128);
	rc |= audit_set(o, "errorMessage", ev->error_message, 1024);
	rc |= json_object_set_new(o, "requestParameters",
	    params != NULL ? params : json_null());
	rc |= json_object_set_new(o, "responseElements",
	    resp != NULL ? resp : json_null());
	rc |= audit_set(o, "requestID", ev->request_id, 64);
	rc |= json_object_set_new(o, "eventID", json_string(event_id));
	rc |= json_object_set_new(o, "readOnly",
	    json_boolean(audit_read_only(ev->name)));
	rc |= json_object_set_new(o, "eventType", json_string(
	    ev->event_type != NULL ? ev->event_type : "AwsApiCall"));
	rc |= json_object_set_new(o, "managementEvent", json_true());
	rc |= audit_set(o, "recipientAccountId", ev->account_id, 32);
	rc |= json_object_set_new(o, "eventCategory",
	    json_string("Management"));
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
audit_params(const struct audit_event *ev)
{
	json_t *o;

	if (ev->request != NULL) {
		o = audit_redact(ev->request);
		/* botocore marks SendCommand's Parameters sensitive (scripts
		 * carry secrets); CloudTrail hides them. */
		if (ev->name != NULL && strcmp(ev->name, "SendCommand") == 0 &&
		    json_is_object(o) && json_object_get(o, "Parameters"))
			json_object_set_new(o, "Parameters",
			    json_string(AUDIT_HIDDEN));
		return o;
	}
	if (ev->form != NULL || ev->form_len > 0)
		return audit_form_params(ev->form, ev->form_len);
	return NULL;
}

json_t *
audit_event_json(const struct audit_event *ev, const char *event_id)
{
	return audit_build(ev, event_id, ev->time_ms != 0 ? ev->time_ms :
	    audit_now_ms(), audit_params(ev),
	    audit_response(ev->response, ev->extra_response,
	    ev->response_xml, ev->response_xml_len));
}

/* ---- files ------------------------------------------------------------- */

int
audit_open(struct audit **out, const char *data_dir,
    const struct audit_config *cfg)
{
	struct audit *a;
	struct stat sb;

	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return PH_ERR_NOMEM;
	a->fd = -1;
	if ((size_t)snprintf(a->dir, sizeof(a->dir), "%s/" AUDIT_SUBDIR,
	    data_dir) >= sizeof(a->dir))
		goto fail;
	a->max_bytes = cfg != NULL && cfg->max_file_bytes != 0 ?
	    cfg->max_file_bytes : AUDIT_MAX_FILE_BYTES_DEFAULT;
	if (a->max_bytes < AUDIT_MIN_FILE_BYTES)
		a->max_bytes = AUDIT_MIN_FILE_BYTES;
	a->syslog = cfg != NULL && cfg->syslog;
	if (cfg != NULL) {
		a->rotated = cfg->rotated;
		a->rotated_arg = cfg->rotated_arg;
	}
	a->tokens = AUDIT_UNAUTH_BURST;
	if (mkdir(a->dir, 0700) != 0 && errno != EEXIST)
		goto fail;
	if (lstat(a->dir, &sb) != 0)
		goto fail;
	if (!S_ISDIR(sb.st_mode)) {
		errno = ENOTDIR;
		goto fail;
	}
	/* Events name principals and resources: the owner's alone. */
	if ((sb.st_mode & 077) != 0 && chmod(a->dir, 0700) != 0)
		goto fail;
	if (a->syslog)
		audit_syslog_open();
	*out = a;
	return 0;
fail:
	log_error("event=audit_open_failed dir=%s err=\"%s\"", a->dir,
	    strerror(errno));
	free(a);
	return PH_ERR_IO;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->fd >= 0)
		close(a->fd);
	if (a->syslog)
		audit_syslog_close();
	free(a);
}

const char *
audit_dir(const struct audit *a)
{
	return a->dir;
}

uint64_t
audit_failures(const struct audit *a)
{
	return a->failures;
}

/* "audit-YYYY-MM-DD.jsonl" or "audit-YYYY-MM-DD.N.jsonl" (N from 1,
 * no leading zero): 0 with day and idx, else PH_ERR_INVALID. */
static int
audit_name_parse(const char *name, char day[11], unsigned *idx)
{
	const char *p = name + sizeof(AUDIT_PREFIX) - 1;
	unsigned long n = 0;
	int i;

	if (strncmp(name, AUDIT_PREFIX, sizeof(AUDIT_PREFIX) - 1) != 0)
		return PH_ERR_INVALID;
	for (i = 0; i < 10; i++)
		if ((i == 4 || i == 7) ? p[i] != '-' :
		    !isdigit((unsigned char)p[i]))
			return PH_ERR_INVALID;
	if (atoi(p + 5) < 1 || atoi(p + 5) > 12 || atoi(p + 8) < 1 ||
	    atoi(p + 8) > 31)
		return PH_ERR_INVALID;
	memcpy(day, p, 10);
	day[10] = '\0';
	p += 10;
	if (strcmp(p, AUDIT_SUFFIX) == 0) {
		*idx = 0;
		return 0;
	}
	if (*p++ != '.' || *p < '1' || *p > '9')
		return PH_ERR_INVALID;
	for (i = 0; isdigit((unsigned char)*p) && i < 7; i++, p++)
		n = n * 10 + (unsigned long)(*p - '0');
	if (n > AUDIT_MAX_INDEX || strcmp(p, AUDIT_SUFFIX) != 0)
		return PH_ERR_INVALID;
	*idx = (unsigned)n;
	return 0;
}

static void
audit_path(const struct audit *a, const char *day, unsigned idx,
    char *out, size_t size)
{
	if (idx == 0)
		snprintf(out, size, "%s/" AUDIT_PREFIX "%s" AUDIT_SUFFIX,
		    a->dir, day);
	else
		snprintf(out, size, "%s/" AUDIT_PREFIX "%s.%u" AUDIT_SUFFIX,
		    a->dir, day, idx);
}

/* The newest index of day's files, 0 if none. */
static unsigned
audit_last_index(const struct audit *a, const char *day)
{
	char d[11];
	unsigned idx, best = 0;
	struct dirent *e;
	DIR *dir;
	int n = 0;

	if ((dir = opendir(a->dir)) == NULL)
		return 0;
	while ((e = readdir(dir)) != NULL && n++ < AUDIT_MAX_FILES)
		if (audit_name_parse(e->d_name, d, &idx) == 0 &&
		    strcmp(d, day) == 0 && idx > best)
			best = idx;
	closedir(dir);
	return best;
}

static int
audit_open_file(struct audit *a, const char *day, unsigned idx)
{
	char path[700], last = '\n';
	struct stat sb;
	int fd;

	audit_path(a, day, idx, path, sizeof(path));
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0)
		return PH_ERR_IO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    ((sb.st_mode & 0777) != 0600 && fchmod(fd, 0600) != 0)) {
		close(fd);
		return PH_ERR_IO;
	}
	/* A line cut short (a crash, a full disk) ends before ours. */
	if (sb.st_size > 0 && (pread(fd, &last, 1, sb.st_size - 1) != 1 ||
	    (last != '\n' && write(fd, "\n", 1) != 1))) {
		close(fd);
		return PH_ERR_IO;
	}
	if (a->fd >= 0)
		close(a->fd);
	a->fd = fd;
	snprintf(a->day, sizeof(a->day), "%s", day);
	a->idx = idx;
	a->size = (uint64_t)sb.st_size + (sb.st_size > 0 && last != '\n');
	return 0;
}

/* Tell a->rotated that (day, idx) is closed, unless an older or the same
 * file was told already (an event stamped before midnight arriving
 * after it reopens the old day). */
static void
audit_tell_rotated(struct audit *a, const char *day, unsigned idx)
{
	char path[700];
	int c = strcmp(day, a->told_day);

	if (a->rotated == NULL || (a->told_day[0] != '\0' && (c < 0 ||
	    (c == 0 && idx <= a->told_idx))))
		return;
	snprintf(a->told_day, sizeof(a->told_day), "%s", day);
	a->told_idx = idx;
	audit_path(a, day, idx, path, sizeof(path));
	a->rotated(a->rotated_arg, path);
}

/* The newest file of a day before day: 0 with its day and index, or
 * PH_ERR_NOTFOUND. */
static int
audit_newest_before(const struct audit *a, const char *day, char out[11],
    unsigned *out_idx)
{
	char d[11];
	unsigned idx;
	struct dirent *e;
	DIR *dir;
	int n = 0, c;

	out[0] = '\0';
	*out_idx = 0;
	if ((dir = opendir(a->dir)) == NULL)
		return PH_ERR_NOTFOUND;
	while ((e = readdir(dir)) != NULL && n++ < AUDIT_MAX_FILES) {
		if (audit_name_parse(e->d_name, d, &idx) != 0 ||
		    strcmp(d, day) >= 0)
			continue;
		c = strcmp(d, out);
		if (out[0] == '\0' || c > 0 || (c == 0 && idx > *out_idx)) {
			memcpy(out, d, 11);
			*out_idx = idx;
		}
	}
	closedir(dir);
	return out[0] != '\0' ? 0 : PH_ERR_NOTFOUND;
}

/* The file for an event of len bytes on day: today's newest, or a new
 * one past the size limit. */
static int
audit_file_for(struct audit *a, const char *day, size_t len)
{
	char old[11];
	unsigned old_idx = a->idx;
	int rc, done = 0;

	snprintf(old, sizeof(old), "%s", a->day);
	if (a->fd < 0 || strcmp(a->day, day) != 0) {
		if ((rc = audit_open_file(a, day, audit_last_index(a,
		    day))) != 0)
			return rc;
		/* Only a later day closes a file: an event stamped before
		 * midnight that comes after it goes back to its own day. */
		done = old[0] != '\0' && strcmp(old, day) < 0;
		/* The first file since the start: an earlier day's last
		 * file was closed when portholed stopped (the receiver
		 * ignores one it was told before). */
		if (old[0] == '\0' && a->rotated != NULL &&
		    audit_newest_before(a, day, old, &old_idx) == 0)
			done = 1;
	}
	if (a->size > 0 && a->size + len > a->max_bytes) {
		if (a->idx >= AUDIT_MAX_INDEX)
			return PH_ERR_TOOBIG;
		if (done)
			audit_tell_rotated(a, old, old_idx);
		snprintf(old, sizeof(old), "%s", a->day);
		old_idx = a->idx;
		if ((rc = audit_open_file(a, day, a->idx + 1)) != 0)
			return rc;
		done = 1;
	}
	if (done)
		audit_tell_rotated(a, old, old_idx);
	return 0;
}

static int
audit_append(struct audit *a, const char *day, const char *line,
    size_t len)
{
	struct iovec iov[2];
	ssize_t w;
	size_t done = 0, total = len + 1;
	int rc, tries;

	if ((rc = audit_file_for(a, day, total)) != 0)
		return rc;
	/* One writev: with O_APPEND the line lands whole at the end. */
	for (tries = 0; done < total && tries < 100; tries++) {
		if (done < len) {
			iov[0].iov_base = (char *)line + done;
			iov[0].iov_len = len - done;
			iov[1].iov_base = (char *)"\n";
			iov[1].iov_len = 1;
			w = writev(a->fd, iov, 2);
		} else
			w = write(a->fd, "\n", 1);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	a->size += done;
	if (done == total)
		return 0;
	/* Reopen next time: the file may have gone or the disk be full;
	 * a partial line is skipped by readers. */
	close(a->fd);
	a->fd = -1;
	return PH_ERR_IO;
}

static int64_t
audit_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* May an unauthenticated request's event be written now? */
static int
audit_unauth_allowed(struct audit *a)
{
	int64_t now = audit_mono_ms();

	if (a->refilled_ms != 0 && now > a->refilled_ms) {
		a->tokens += (double)(now - a->refilled_ms) *
		    AUDIT_UNAUTH_PER_SEC / 1000.0;
		if (a->tokens > AUDIT_UNAUTH_BURST)
			a->tokens = AUDIT_UNAUTH_BURST;
	}
	a->refilled_ms = now;
	if (a->tokens < 1.0) {
		a->suppressed++;
		return 0;
	}
	a->tokens -= 1.0;
	return 1;
}

int
audit_record(struct audit *a, const struct audit_event *ev)
{
	char when[24], day[11];
	json_t *o, *params, *add;
	char *line = NULL;
	size_t len;
	int64_t ms;
	int rc = PH_ERR_NOMEM;

	if (a == NULL || ev == NULL)
		return PH_ERR_INVALID;
	if (ev->principal == NULL && !audit_unauth_allowed(a)) {
		log_limited(LOG_WARN, "audit_unauth_suppressed",
		    "event=audit_unauth_suppressed count=%llu",
		    (unsigned long long)a->suppressed);
		return 0;
	}
	ms = ev->time_ms != 0 ? ev->time_ms : audit_now_ms();
	params = audit_params(ev);
	o = audit_build(ev, NULL, ms, params, audit_response(ev->response,
	    ev->extra_response, ev->response_xml, ev->response_xml_len));
	if (o != NULL && ev->principal == NULL && a->suppressed > 0) {
		/* The ones the bucket dropped before this one. */
		json_object_set_new(o, "additionalEventData", json_pack(
		    "{s:I}", "unauthenticatedEventsSuppressed",
		    (json_int_t)a->suppressed));
		a->suppressed = 0;
	}
	if (o != NULL)
		line = json_dumps(o, JSON_COMPACT);
	if (line != NULL && strlen(line) > AUDIT_MAX_LINE) {
		/* Keep the event, not its bulk: readers count on the bound. */
		free(line);
		line = NULL;
		json_object_set_new(o, "requestParameters", json_null());
		json_object_set_new(o, "responseElements", json_null());
		add = json_object_get(o, "additionalEventData");
		if (!json_is_object(add)) {
			add = json_object();
			json_object_set_new(o, "additionalEventData", add);
		}
		json_object_set_new(add, "requestParametersTruncated",
		    json_true());
		line = json_dumps(o, JSON_COMPACT);
		if (line != NULL && strlen(line) > AUDIT_MAX_LINE) {
			free(line);
			line = NULL;
		}
	}
	json_decref(o);
	if (line == NULL)
		goto fail;
	len = strlen(line);
	audit_iso(ms, when);
	snprintf(day, sizeof(day), "%.10s", when);
	if ((rc = audit_append(a, day, line, len)) != 0)
		goto fail;
	if (a->syslog)
		audit_syslog_line(ev->error_code != NULL, line);
	free(line);
	return 0;
fail:
	a->failures++;
	log_limited(LOG_ERROR, "audit_write_failed", "event=audit_write_failed "
	    "dir=%s err=\"%s\" failures=%llu", a->dir, ph_strerror(rc),
	    (unsigned long long)a->failures);
	free(line);
	return rc;
}

/* A session owner's ARN as a principal: enough for userIdentity. */
static void
audit_owner(const char *arn, struct principal *p)
{
	const char *r, *slash;

	memset(p, 0, sizeof(*p));
	snprintf(p->arn, sizeof(p->arn), "%s", arn);
	if ((slash = strrchr(arn, '/')) != NULL)
		snprintf(p->name, sizeof(p->name), "%s", slash + 1);
	p->kind = PRINCIPAL_USER;
	if ((r = strstr(arn, ":assumed-role/")) == NULL)
		return;
	p->kind = PRINCIPAL_ASSUMED_ROLE;
	r += sizeof(":assumed-role/") - 1;
	if ((slash = strchr(r, '/')) != NULL)
		snprintf(p->role_name, sizeof(p->role_name), "%.*s",
		    (int)(slash - r), r);
}

void
audit_channel(struct server *srv, const char *event_name,
    const char *instance_id, const char *session_id, const char *source_ip,
    const char *user_agent, const char *error_code,
    const char *error_message)
{
	struct audit_event ev;
	struct session_rec rec;
	struct principal *p;
	json_t *req;

	if (srv == NULL || srv->audit == NULL)
		return;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (req = json_object()) == NULL) {
		free(p);
		log_limited(LOG_ERROR, "audit_write_failed",
		    "event=audit_write_failed err=\"out of memory\"");
		return;
	}
	memset(&ev, 0, sizeof(ev));
	if (instance_id != NULL && instance_principal(srv, instance_id,
	    source_ip, p) == 0)
		ev.principal = p;
	else if (instance_id == NULL && session_id != NULL &&
	    store_session_get(srv->store, session_id, &rec) == 0 &&
	    rec.owner[0] != '\0') {
		audit_owner(rec.owner, p);
		ev.principal = p;
	}
	if (session_id != NULL)
		json_object_set_new(req, "SessionId", audit_jstr(session_id,
		    128));
	if (instance_id != NULL)
		json_object_set_new(req, "InstanceId", audit_jstr(instance_id,
		    128));
	ev.service = "ssmmessages";
	ev.name = event_name;
	ev.region = srv->region;
	ev.account_id = srv->account_id;
	ev.source_ip = source_ip;
	ev.user_agent = user_agent;
	ev.request = req;
	ev.error_code = error_code;
	ev.error_message = error_message;
	(void)audit_record(srv->audit, &ev);
	json_decref(req);
	free(p);
}

/* ---- reading ---------------------------------------------------------- */

void
audit_pos_format(const struct audit_pos *p, char *out, size_t size)
{
	snprintf(out, size, "pha1.%s.%u.%llu", p->day, p->idx,
	    (unsigned long long)p->off);
}

int
audit_pos_parse(const char *s, struct audit_pos *p)
{
	char name[64];
	unsigned long long idx, off;
	const char *q;
	char *end;

	memset(p, 0, sizeof(*p));
	/* pha1.YYYY-MM-DD.IDX.OFF */
	if (s == NULL || strlen(s) > 48 || strncmp(s, "pha1.", 5) != 0 ||
	    strlen(s + 5) < 14 || s[15] != '.')
		return PH_ERR_INVALID;
	q = s + 16;
	if (!isdigit((unsigned char)*q) || (q[0] == '0' && q[1] != '.'))
		return PH_ERR_INVALID;
	errno = 0;
	idx = strtoull(q, &end, 10);
	if (errno != 0 || *end != '.' || idx > AUDIT_MAX_INDEX)
		return PH_ERR_INVALID;
	q = end + 1;
	if (!isdigit((unsigned char)*q))
		return PH_ERR_INVALID;
	off = strtoull(q, &end, 10);
	if (errno != 0 || *end != '\0' || off > ((uint64_t)1 << 52))
		return PH_ERR_INVALID;
	/* The file name's rules check the day. */
	snprintf(name, sizeof(name), AUDIT_PREFIX "%.10s" AUDIT_SUFFIX, s + 5);
	if (audit_name_parse(name, p->day, &p->idx) != 0)
		return PH_ERR_INVALID;
	p->idx = (unsigned)idx;
	p->off = off;
	return 0;
}

struct audit_file {
	char day[11];
	unsigned idx;
};

/* Newest first: later day, then higher index. */
static int
audit_file_cmp(const void *x, const void *y)
{
	const struct audit_file *a = x, *b = y;
	int c = strcmp(b->day, a->day);

	if (c != 0)
		return c;
	return a->idx < b->idx ? 1 : a->idx > b->idx ? -1 : 0;
}

static int
audit_list(const struct audit *a, struct audit_file **out, size_t *nout)
{
	struct audit_file *v = NULL, *nv;
	size_t n = 0, cap = 0;
	struct dirent *e;
	char day[11];
	unsigned idx;
	DIR *dir;

	*out = NULL;
	*nout = 0;
	if ((dir = opendir(a->dir)) == NULL)
		return PH_ERR_IO;
	while ((e = readdir(dir)) != NULL && n < AUDIT_MAX_FILES) {
		if (audit_name_parse(e->d_name, day, &idx) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				closedir(dir);
				return PH_ERR_NOMEM;
			}
			v = nv;
		}
		memcpy(v[n].day, day, sizeof(day));
		v[n].idx = idx;
		n++;
	}
	closedir(dir);
	qsort(v, n, sizeof(*v), audit_file_cmp);
	*out = v;
	*nout = n;
	return 0;
}

/* Midnight UTC of a YYYY-MM-DD day, in ms. */
static int64_t
audit_day_ms(const char *day)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = atoi(day) - 1900;
	tm.tm_mon = atoi(day + 5) - 1;
	tm.tm_mday = atoi(day + 8);
	return (int64_t)timegm(&tm) * 1000;
}

struct audit_walk {
	const struct audit_scan *s;
	audit_line_fn fn;
	void *arg;
	size_t bytes, lines;
	char *buf;
};

/* Lines of one file before end, newest first. 0: the file is done; 1:
 * stopped with *stop_off where to go on; negative: fn failed. */
static int
audit_walk_file(struct audit_walk *w, int fd, uint64_t end,
    uint64_t *stop_off)
{
	uint64_t start;
	size_t n, e, b, got;
	ssize_t r;
	char *nl;
	int rc;

	while (end > 0) {
		if (w->bytes >= w->s->max_bytes || w->lines >= w->s->max_lines) {
			*stop_off = end;
			return 1;
		}
		start = end > AUDIT_BLOCK ? end - AUDIT_BLOCK : 0;
		n = (size_t)(end - start);
		for (got = 0; got < n; got += (size_t)r) {
			r = pread(fd, w->buf + got, n - got,
			    (off_t)(start + got));
			if (r < 0 && errno == EINTR) {
				r = 0;
				continue;
			}
			if (r <= 0)
				return 0;   /* shrunk or unreadable: done */
		}
		w->bytes += n;
		e = n;
		if (w->buf[e - 1] != '\n') {
			/* A line cut short (a crash mid-write, or the middle
			 * of a line longer than any we write): skipped. */
			nl = memrchr(w->buf, '\n', e);
			if (nl == NULL) {
				end = start;
				continue;
			}
			e = (size_t)(nl - w->buf) + 1;
		}
		while (e > 0) {
			nl = e > 1 ? memrchr(w->buf, '\n', e - 1) : NULL;
			if (nl == NULL && start > 0)
				break;      /* it may begin before the block */
			b = nl != NULL ? (size_t)(nl - w->buf) + 1 : 0;
			if (w->lines++ >= w->s->max_lines) {
				*stop_off = start + e;
				return 1;
			}
			if (e - 1 > b && (rc = w->fn(w->arg, w->buf + b,
			    e - 1 - b)) != 0) {
				if (rc < 0)
					return rc;
				*stop_off = start + b;
				return 1;
			}
			e = b;
		}
		/* No whole line in a full block: longer than any we write. */
		end = e == n ? start : start + e;
	}
	return 0;
}

int
audit_scan(struct audit *a, const struct audit_scan *s, audit_line_fn fn,
    void *arg, struct audit_pos *next, int *more)
{
	struct audit_file *files = NULL;
	struct audit_walk w;
	char path[700];
	struct stat sb;
	size_t n, i;
	uint64_t end, stop;
	int64_t day_ms;
	int rc, fd;

	*more = 0;
	memset(next, 0, sizeof(*next));
	memset(&w, 0, sizeof(w));
	w.s = s;
	w.fn = fn;
	w.arg = arg;
	if ((rc = audit_list(a, &files, &n)) != 0)
		return rc;
	if ((w.buf = malloc(AUDIT_BLOCK)) == NULL) {
		free(files);
		return PH_ERR_NOMEM;
	}
	for (i = 0; i < n; i++) {
		struct audit_file *f = &files[i];

		if (s->from != NULL) {
			int c = strcmp(f->day, s->from->day);

			if (c > 0 || (c == 0 && f->idx > s->from->idx))
				continue;   /* newer than where we left off */
		}
		day_ms = audit_day_ms(f->day);
		if (day_ms > s->max_ms)
			continue;
		if (day_ms + AUDIT_DAY_MS <= s->min_ms)
			break;          /* this day and all before are older */
		audit_path(a, f->day, f->idx, path, sizeof(path));
		if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
			continue;
		if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
			close(fd);
			continue;
		}
		end = (uint64_t)sb.st_size;
		if (s->from != NULL && strcmp(f->day, s->from->day) == 0 &&
		    f->idx == s->from->idx && s->from->off < end)
			end = s->from->off;
		rc = audit_walk_file(&w, fd, end, &stop);
		close(fd);
		if (rc < 0)
			goto done;
		if (rc == 1) {
			/* Anything left: this file's start, or older ones. */
			if (stop > 0 || i + 1 < n) {
				memcpy(next->day, f->day, sizeof(f->day));
				next->idx = f->idx;
				next->off = stop;
				*more = 1;
			}
			rc = 0;
			goto done;
		}
	}
	rc = 0;
done:
	free(w.buf);
	free(files);
	return rc;
}
