/* api_documents: SSM documents with versions, and the Session Manager
 * preferences. Each action validates its request against botocore's
 * constraints (api_json), asks authz_check once for the document it acts
 * on, then reads or writes the store. Session documents are checked in
 * depth before they are stored, so StartSession only ever sends the agent
 * a document it can run; Command documents are checked as deeply before
 * SendCommand (cmddoc.c) runs them. Content is JSON or YAML (read with
 * libyaml into the same tree, docyaml.c). */
#include "server/api_documents.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "server/api_json.h"
#include "server/authz.h"
#include "server/cmddoc.h"
#include "server/store.h"

/* AWS: at most 500 documents of the account's own. */
#define DOC_MAX_ACCOUNT 500
#define DOC_MAX_PARAMS 64
#define DOC_MAX_FILTERS 16
/* Nesting a Session document needs: properties.linux.commands[]. */
#define DOC_MAX_DEPTH 16

static const char *const doc_types[] = { "Command", "Policy", "Automation",
    "Session", "Package", "ApplicationConfiguration",
    "ApplicationConfigurationSchema", "DeploymentStrategy", "ChangeCalendar",
    "Automation.ChangeTemplate", "ProblemAnalysis",
    "ProblemAnalysisTemplate", "CloudFormation", "ConformancePackTemplate",
    "QuickSetup", "ManualApprovalPolicy", "AutoApprovalPolicy", NULL };
static const char *const doc_formats[] = { "YAML", "JSON", "TEXT", NULL };
static const char *const session_types[] = { "Standard_Stream",
    "InteractiveCommands", "NonInteractiveCommands", "Port", NULL };

/* ---- shared pieces ------------------------------------------------------ */

/* Documents AWS owns: no account in their ARN, nobody may change them. */
static int
doc_amazon_owned(const char *name)
{
	return strncmp(name, "AWS-", 4) == 0;
}

static void
doc_arn(const struct api_call *c, const char *name, char *out, size_t size)
{
	snprintf(out, size, "arn:aws:ssm:%s:%s:document/%s", c->srv->region,
	    doc_amazon_owned(name) ? "" : c->srv->account_id, name);
}

static int
doc_not_found(struct api_error *err, const char *name)
{
	return api_error_set(err, 400, "InvalidDocument",
	    "Document %s does not exist.", name);
}

static int
doc_bad_version(struct api_error *err, const char *name, const char *ver)
{
	return api_error_set(err, 400, "InvalidDocumentVersion",
	    "Document version %s of %s is not valid or does not exist.",
	    ver != NULL ? ver : "(by name)", name);
}

static int
doc_set_str(json_t *o, const char *key, const char *v)
{
	return json_object_set_new(o, key, json_string(v));
}

static int
doc_set_opt_str(json_t *o, const char *key, const char *v)
{
	if (v == NULL || v[0] == '\0')
		return 0;
	return json_object_set_new(o, key, json_string(v));
}

static int
doc_set_version(json_t *o, const char *key, int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRId64, v);
	return doc_set_str(o, key, s);
}

/* ---- request patterns --------------------------------------------------- */

static int
doc_pat_chars(const char *s, const char *extra)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return 0;
	return 1;
}

static int
doc_pat_name(const char *s)
{
	return doc_pat_chars(s, "_-.");
}

static int
doc_pat_arn(const char *s)
{
	return doc_pat_chars(s, "_-.:/");
}

static int
doc_pat_display(const char *s)
{
	return doc_pat_chars(s, "_.-:/ ");
}

static int
doc_pat_target_type(const char *s)
{
	return s[0] == '/' && doc_pat_chars(s + 1, "_.-:/");
}

static int
doc_pat_version(const char *s)
{
	size_t i;

	if (strcmp(s, "$LATEST") == 0 || strcmp(s, "$DEFAULT") == 0)
		return 1;
	if (s[0] < '1' || s[0] > '9' || strlen(s) > 12)
		return 0;
	for (i = 1; s[i] != '\0'; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static int
doc_pat_version_number(const char *s)
{
	return s[0] != '$' && doc_pat_version(s);
}

#define DOC_PAT_NAME "^[a-zA-Z0-9_\\-.]{3,128}$"
#define DOC_PAT_ARN "^[a-zA-Z0-9_\\-.:/]{3,128}$"
#define DOC_PAT_VERSION "([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)"

static const struct api_str name_d = { "Name", "name", 1, 3, 128,
    doc_pat_name, DOC_PAT_NAME, NULL };
static const struct api_str arn_d = { "Name", "name", 1, 3, 128,
    doc_pat_arn, DOC_PAT_ARN, NULL };
static const struct api_str version_d = { "DocumentVersion",
    "documentVersion", 0, 1, 12, doc_pat_version, DOC_PAT_VERSION, NULL };
static const struct api_str version_name_d = { "VersionName", "versionName",
    0, 1, 128, doc_pat_name, "^[a-zA-Z0-9_\\-.]{1,128}$", NULL };
static const struct api_str format_d = { "DocumentFormat", "documentFormat",
    0, 0, 0, NULL, NULL, doc_formats };
static const struct api_str content_d = { "Content", "content", 1, 1, 0,
    NULL, NULL, NULL };
static const struct api_str display_d = { "DisplayName", "displayName", 0,
    0, 1024, doc_pat_display, "^[\\w\\.\\-\\:\\/ ]*$", NULL };
static const struct api_str target_type_d = { "TargetType", "targetType", 0,
    0, 200, doc_pat_target_type, "^\\/[\\w\\.\\-\\:\\/]*$", NULL };

/* A Name that may be an ARN names the document after "document/". */
static const char *
doc_name_of(const char *name)
{
	const char *d;

	if (name == NULL || strncmp(name, "arn:", 4) != 0)
		return name;
	d = strstr(name, ":document/");
	return d != NULL ? d + 10 : name + strlen(name);
}

/* DocumentVersion text to a store version (STORE_DOC_DEFAULT when
 * absent). */
static int64_t
doc_version_arg(const char *s, int64_t absent)
{
	if (s == NULL)
		return absent;
	if (strcmp(s, "$LATEST") == 0)
		return STORE_DOC_LATEST;
	if (strcmp(s, "$DEFAULT") == 0)
		return STORE_DOC_DEFAULT;
	return strtoll(s, NULL, 10);
}

/* ---- content checks ----------------------------------------------------- */

/* Violations of a document's content, collected into one message. */
struct doc_check {
	int n;
	int schema_only;           /* the only problem is the schema version */
	char msg[400];
	size_t len;
};

static void doc_fail(struct doc_check *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
doc_fail(struct doc_check *k, const char *fmt, ...)
{
	va_list ap;
	int n;

	k->n++;
	k->schema_only = 0;
	if (k->len >= sizeof(k->msg) - 1)
		return;
	if (k->len > 0) {
		n = snprintf(k->msg + k->len, sizeof(k->msg) - k->len, "; ");
		k->len += n > 0 ? (size_t)n : 0;
		if (k->len >= sizeof(k->msg))
			k->len = sizeof(k->msg) - 1;
	}
	va_start(ap, fmt);
	n = vsnprintf(k->msg + k->len, sizeof(k->msg) - k->len, fmt, ap);
	va_end(ap);
	k->len += n > 0 ? (size_t)n : 0;
	if (k->len >= sizeof(k->msg))
		k->len = sizeof(k->msg) - 1;
}

static int
doc_in(const char *const *set, const char *s)
{
	size_t i;

	for (i = 0; set[i] != NULL; i++)
		if (strcmp(set[i], s) == 0)
			return 1;
	return 0;
}

/* A JSON value's type, for messages. */
static const char *
doc_jtype(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "a list";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* A string member: 1 and *out if it is one, 0 if absent, -1 (recorded) if
 * of another type. */
static int
doc_str(struct doc_check *k, json_t *o, const char *key, const char *where,
    const char **out)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v)) {
		doc_fail(k, "%s%s must be a string, not %s", where, key,
		    doc_jtype(v));
		return -1;
	}
	*out = json_string_value(v);
	return 1;
}

/* KMS key: key id, multi-Region key id, alias/<name>, or a key or alias
 * ARN (AWS KMS's KeyId forms). */
static int
doc_kms_key_ok(const char *s)
{
	const char *p, *rest;
	size_t i;

	if (strlen(s) > 2048)
		return 0;
	if (strncmp(s, "alias/", 6) == 0)
		return s[6] != '\0' && strlen(s) <= 256 &&
		    doc_pat_chars(s + 6, "/_-");
	if (strncmp(s, "arn:", 4) == 0) {
		/* arn:<partition>:kms:<region>:<account>:key/... or alias/ */
		p = s + 4;
		for (i = 0; i < 4; i++) {
			if ((p = strchr(p, ':')) == NULL)
				return 0;
			p++;
		}
		if (strncmp(s + 4, "aws", 3) != 0 ||
		    strstr(s, ":kms:") == NULL)
			return 0;
		if (strncmp(p, "key/", 4) == 0)
			rest = p + 4;
		else if (strncmp(p, "alias/", 6) == 0)
			return p[6] != '\0' && doc_pat_chars(p + 6, "/_-");
		else
			return 0;
		return doc_kms_key_ok(rest) && strncmp(rest, "alias/", 6) != 0;
	}
	if (strncmp(s, "mrk-", 4) == 0) {
		if (strlen(s) != 36)
			return 0;
		for (i = 4; s[i] != '\0'; i++)
			if (!isxdigit((unsigned char)s[i]))
				return 0;
		return 1;
	}
	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/* Minutes as a JSON integer or a string of digits, in [lo, hi]; "" is
 * allowed (the default applies). */
static void
doc_minutes(struct doc_check *k, json_t *v, const char *key, long lo,
    long hi)
{
	const char *s;
	long m = -1;
	size_t i;

	if (json_is_integer(v)) {
		if (json_integer_value(v) >= lo && json_integer_value(v) <= hi)
			return;
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		if (s[0] == '\0')
			return;
		for (i = 0; s[i] != '\0' && i < 6; i++)
			if (!isdigit((unsigned char)s[i]))
				break;
		if (s[i] == '\0' && i < 6)
			m = strtol(s, NULL, 10);
		if (m >= lo && m <= hi)
			return;
	} else {
		doc_fail(k, "inputs.%s must be a number of minutes (a string "
		    "or an integer), not %s", key, doc_jtype(v));
		return;
	}
	doc_fail(k, "inputs.%s must be a whole number of minutes from %ld "
	    "to %ld", key, lo, hi);
}

/* spec 9.1: bool* inputs take true/false or "true"/"false"/"". */
static void
doc_bool_star(struct doc_check *k, json_t *v, const char *key)
{
	const char *s;

	if (json_is_boolean(v))
		return;
	if (json_is_string(v)) {
		s = json_string_value(v);
		if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0 ||
		    s[0] == '\0')
			return;
	}
	doc_fail(k, "inputs.%s must be true or false", key);
}

/* S3 bucket names: 3-63 of a-z 0-9 . -, starting and ending with a letter
 * or digit. */
static int
doc_bucket_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 3 || n > 63 || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return 0;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
			return 0;
	return 1;
}

/* A Linux user name as useradd accepts it, at most 32 characters. */
static int
doc_user_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 32 || (!isalpha((unsigned char)s[0]) && s[0] != '_'))
		return 0;
	for (i = 1; i < n; i++) {
		if (s[i] == '$' && i == n - 1)
			break;
		if (!isalnum((unsigned char)s[i]) &&
		    strchr("_.-", s[i]) == NULL)
			return 0;
	}
	return 1;
}

static void
doc_check_inputs(struct doc_check *k, json_t *inputs)
{
	static const char *const known[] = { "s3BucketName", "s3KeyPrefix",
	    "s3EncryptionEnabled", "cloudWatchLogGroupName",
	    "cloudWatchEncryptionEnabled", "cloudWatchStreamingEnabled",
	    "kmsKeyId", "idleSessionTimeout", "maxSessionDuration",
	    "runAsEnabled", "runAsDefaultUser", "shellProfile", NULL };
	const char *key, *s, *pk;
	json_t *v, *pv;

	if (!json_is_object(inputs)) {
		doc_fail(k, "inputs must be an object, not %s",
		    doc_jtype(inputs));
		return;
	}
	json_object_foreach(inputs, key, v) {
		if (!doc_in(known, key)) {
			doc_fail(k, "inputs.%.64s is not a known input "
			    "(kmsKeyId, idleSessionTimeout, "
			    "maxSessionDuration, runAsEnabled, "
			    "runAsDefaultUser, shellProfile, s3*, "
			    "cloudWatch*)", key);
			continue;
		}
		if (strcmp(key, "idleSessionTimeout") == 0) {
			doc_minutes(k, v, key, 1, 60);
		} else if (strcmp(key, "maxSessionDuration") == 0) {
			doc_minutes(k, v, key, 1, 1440);
		} else if (strcmp(key, "runAsEnabled") == 0 ||
		    strcmp(key, "s3EncryptionEnabled") == 0 ||
		    strcmp(key, "cloudWatchEncryptionEnabled") == 0) {
			doc_bool_star(k, v, key);
		} else if (strcmp(key, "cloudWatchStreamingEnabled") == 0) {
			/* spec 9.1: a string here stops the agent parsing
			 * the start message at all. */
			if (!json_is_boolean(v))
				doc_fail(k, "inputs.%s must be a JSON boolean "
				    "(true or false, not %s)", key,
				    doc_jtype(v));
		} else if (strcmp(key, "shellProfile") == 0) {
			if (!json_is_object(v)) {
				doc_fail(k, "inputs.shellProfile must be an "
				    "object with linux and windows commands, "
				    "not %s", doc_jtype(v));
				continue;
			}
			json_object_foreach(v, pk, pv) {
				if (strcmp(pk, "linux") != 0 &&
				    strcmp(pk, "windows") != 0)
					doc_fail(k, "inputs.shellProfile.%.64s "
					    "is not known (linux, windows)",
					    pk);
				else if (!json_is_string(pv))
					doc_fail(k, "inputs.shellProfile.%s "
					    "must be a string, not %s", pk,
					    doc_jtype(pv));
			}
		} else if (!json_is_string(v)) {
			doc_fail(k, "inputs.%s must be a string, not %s", key,
			    doc_jtype(v));
		} else {
			s = json_string_value(v);
			if (s[0] == '\0')
				continue;
			if (strcmp(key, "kmsKeyId") == 0 &&
			    !doc_kms_key_ok(s))
				doc_fail(k, "inputs.kmsKeyId '%.80s' is not a "
				    "KMS key id, key ARN or alias/name", s);
			else if (strcmp(key, "runAsDefaultUser") == 0 &&
			    !doc_user_ok(s))
				doc_fail(k, "inputs.runAsDefaultUser '%.40s' "
				    "is not a valid user name", s);
			else if (strcmp(key, "s3BucketName") == 0 &&
			    !doc_bucket_ok(s))
				doc_fail(k, "inputs.s3BucketName '%.70s' is "
				    "not a valid S3 bucket name", s);
			else if (strcmp(key, "s3KeyPrefix") == 0 &&
			    strlen(s) > 1024)
				doc_fail(k, "inputs.s3KeyPrefix is longer "
				    "than 1024 characters");
			else if (strcmp(key, "cloudWatchLogGroupName") == 0 &&
			    (strlen(s) > 512 || !doc_pat_chars(s, "._/#-")))
				doc_fail(k, "inputs.cloudWatchLogGroupName "
				    "'%.70s' is not a valid log group name",
				    s);
		}
	}
}

/* Compiles, and cheap enough to run at every StartSession or
 * SendCommand (cmddoc.h). */
static int
doc_regex_ok(const char *pat)
{
	return cmddoc_pattern_ok(pat);
}

/* A Command parameter's default against its type. */
static void
doc_check_default(struct doc_check *k, const char *name, const char *type,
    json_t *dv)
{
	json_t *x;
	size_t i;
	int ok = 1;

	if (strcmp(type, "String") == 0)
		ok = json_is_string(dv);
	else if (strcmp(type, "StringList") == 0) {
		ok = json_is_array(dv) || json_is_string(dv);
		json_array_foreach(dv, i, x)
			ok &= json_is_string(x);
	} else if (strcmp(type, "Integer") == 0)
		ok = json_is_integer(dv) || json_is_string(dv);
	else if (strcmp(type, "Boolean") == 0)
		ok = json_is_boolean(dv) || (json_is_string(dv) &&
		    (strcmp(json_string_value(dv), "true") == 0 ||
		    strcmp(json_string_value(dv), "false") == 0));
	else if (strcmp(type, "StringMap") == 0)
		ok = json_is_object(dv);
	else if (strcmp(type, "MapList") == 0) {
		ok = json_is_array(dv);
		json_array_foreach(dv, i, x)
			ok &= json_is_object(x);
	}
	if (!ok)
		doc_fail(k, "parameters.%s.default is %s, which is not a "
		    "value of type %s", name, doc_jtype(dv), type);
}

static void
doc_check_parameters(struct doc_check *k, json_t *params, int command)
{
	static const char *const keys[] = { "type", "description", "default",
	    "allowedValues", "allowedPattern", "displayType", "minItems",
	    "maxItems", "minChars", "maxChars", NULL };
	static const char *const ptypes[] = { "String", "StringList", NULL };
	static const char *const ctypes[] = { "String", "StringList",
	    "Integer", "Boolean", "StringMap", "MapList", NULL };
	static const char *const limits[] = { "minItems", "maxItems",
	    "minChars", "maxChars", NULL };
	const char *name, *pk, *s, *type;
	json_t *def, *pv, *x;
	size_t i;

	if (!json_is_object(params)) {
		doc_fail(k, "parameters must be an object, not %s",
		    doc_jtype(params));
		return;
	}
	if (json_object_size(params) > DOC_MAX_PARAMS)
		doc_fail(k, "a document has at most %d parameters",
		    DOC_MAX_PARAMS);
	json_object_foreach(params, name, def) {
		if (name[0] == '\0' || strlen(name) > 128 ||
		    !doc_pat_chars(name, "_")) {
			doc_fail(k, "parameter name '%.64s' must be 1 to 128 "
			    "letters, digits or _", name);
			continue;
		}
		if (!json_is_object(def)) {
			doc_fail(k, "parameters.%s must be an object, not %s",
			    name, doc_jtype(def));
			continue;
		}
		json_object_foreach(def, pk, pv)
			if (!doc_in(keys, pk))
				doc_fail(k, "parameters.%s.%.64s is not known",
				    name, pk);
		type = json_string_value(json_object_get(def, "type"));
		if (command && (type == NULL || !doc_in(ctypes, type))) {
			doc_fail(k, "parameters.%s.type must be String, "
			    "StringList, Integer, Boolean, StringMap or "
			    "MapList", name);
			type = NULL;
		} else if (!command && (type == NULL || !doc_in(ptypes, type)))
			doc_fail(k, "parameters.%s.type must be String or "
			    "StringList", name);
		if (doc_str(k, def, "description", "parameters.", &s) < 0)
			continue;
		if (doc_str(k, def, "displayType", "parameters.", &s) < 0)
			continue;
		for (i = 0; limits[i] != NULL; i++) {
			pv = json_object_get(def, limits[i]);
			if (pv != NULL && (!json_is_integer(pv) ||
			    json_integer_value(pv) < 0))
				doc_fail(k, "parameters.%s.%s must be a "
				    "number from 0", name, limits[i]);
		}
		pv = json_object_get(def, "allowedValues");
		if (pv != NULL) {
			if (!json_is_array(pv))
				doc_fail(k, "parameters.%s.allowedValues must "
				    "be a list of strings", name);
			json_array_foreach(pv, i, x)
				if (!json_is_string(x) && (!command ||
				    (!json_is_integer(x) &&
				    !json_is_boolean(x)))) {
					doc_fail(k, "parameters.%s."
					    "allowedValues must be a list of "
					    "strings", name);
					break;
				}
		}
		if (doc_str(k, def, "allowedPattern", "parameters.", &s) > 0 &&
		    !doc_regex_ok(s))
			doc_fail(k, "parameters.%s.allowedPattern is not a "
			    "valid regular expression (POSIX extended, at "
			    "most 1024 characters, repetition bounds up to "
			    "255 expanding to at most 1000 atoms)", name);
		pv = json_object_get(def, "default");
		if (pv != NULL && command && type != NULL)
			doc_check_default(k, name, type, pv);
		else if (pv != NULL && !command && !json_is_string(pv) &&
		    !json_is_array(pv))
			doc_fail(k, "parameters.%s.default must be a string "
			    "or a list of strings", name);
	}
}

/* Shell session properties: {"linux": {"commands": ...}, ...}. */
static void
doc_check_shell_props(struct doc_check *k, json_t *props)
{
	static const char *const keys[] = { "commands", "runAsElevated",
	    "separateOutputStream", "stdOutSeparatorPrefix",
	    "stdErrSeparatorPrefix", NULL };
	const char *plat, *pk;
	json_t *p, *pv, *x;
	size_t i;

	if (!json_is_object(props) || json_object_size(props) == 0) {
		doc_fail(k, "properties must be an object with linux, windows "
		    "or macos commands");
		return;
	}
	json_object_foreach(props, plat, p) {
		if (strcmp(plat, "linux") != 0 &&
		    strcmp(plat, "windows") != 0 &&
		    strcmp(plat, "macos") != 0) {
			doc_fail(k, "properties.%.64s is not a platform "
			    "(linux, windows, macos)", plat);
			continue;
		}
		if (!json_is_object(p)) {
			doc_fail(k, "properties.%s must be an object", plat);
			continue;
		}
		json_object_foreach(p, pk, pv) {
			if (!doc_in(keys, pk)) {
				doc_fail(k, "properties.%s.%.64s is not known",
				    plat, pk);
			} else if (strcmp(pk, "commands") == 0) {
				if (json_is_string(pv))
					continue;
				if (!json_is_array(pv)) {
					doc_fail(k, "properties.%s.commands "
					    "must be a string or a list of "
					    "strings", plat);
					continue;
				}
				json_array_foreach(pv, i, x)
					if (!json_is_string(x)) {
						doc_fail(k, "properties.%s."
						    "commands must be a list "
						    "of strings", plat);
						break;
					}
			} else if (strncmp(pk, "std", 3) == 0) {
				if (!json_is_string(pv))
					doc_fail(k, "properties.%s.%s must be "
					    "a string", plat, pk);
			} else if (!json_is_boolean(pv)) {
				doc_fail(k, "properties.%s.%s must be true or "
				    "false", plat, pk);
			}
		}
		if (json_object_get(p, "commands") == NULL)
			doc_fail(k, "properties.%s.commands is required", plat);
	}
}

static void
doc_check_port_props(struct doc_check *k, json_t *props)
{
	/* The agent reads the first three, AWS's plugin the rest (a unix
	 * socket when localConnectionType is "unix"). */
	static const char *const keys[] = { "portNumber", "type", "host",
	    "localPortNumber", "localUnixSocket", "localConnectionType",
	    NULL };
	const char *pk, *s;
	json_t *pv;

	if (!json_is_object(props)) {
		doc_fail(k, "properties must be an object with a portNumber");
		return;
	}
	json_object_foreach(props, pk, pv) {
		if (!doc_in(keys, pk))
			doc_fail(k, "properties.%.64s is not known "
			    "(portNumber, type, host, localPortNumber, "
			    "localUnixSocket, localConnectionType)", pk);
		else if (!json_is_string(pv))
			doc_fail(k, "properties.%s must be a string, not %s",
			    pk, doc_jtype(pv));
	}
	if (json_object_get(props, "portNumber") == NULL)
		doc_fail(k, "properties.portNumber is required");
	s = json_string_value(json_object_get(props, "type"));
	if (s != NULL && strcmp(s, "LocalPortForwarding") != 0)
		doc_fail(k, "properties.type must be LocalPortForwarding");
}

/* Every {{ name }} in the strings under v must name a parameter (or be an
 * {{ssm:...}} Parameter Store reference the agent resolves). */
static void
doc_check_refs(struct doc_check *k, json_t *v, json_t *params, int depth)
{
	const char *s, *open, *close, *a, *b, *key;
	char name[130];
	json_t *x;
	size_t i;

	if (depth > DOC_MAX_DEPTH) {
		doc_fail(k, "the document nests deeper than %d levels",
		    DOC_MAX_DEPTH);
		return;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, key, x)
			doc_check_refs(k, x, params, depth + 1);
		return;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			doc_check_refs(k, x, params, depth + 1);
		return;
	}
	if (!json_is_string(v))
		return;
	for (s = json_string_value(v); (open = strstr(s, "{{")) != NULL;
	    s = close + 2) {
		if ((close = strstr(open + 2, "}}")) == NULL)
			break;
		for (a = open + 2; a < close && isspace((unsigned char)*a); a++)
			;
		for (b = close; b > a && isspace((unsigned char)b[-1]); b--)
			;
		if ((size_t)(b - a) >= sizeof(name)) {
			doc_fail(k, "a {{ }} reference is too long");
			continue;
		}
		memcpy(name, a, (size_t)(b - a));
		name[b - a] = '\0';
		if (strncmp(name, "ssm:", 4) == 0)
			continue;
		if (json_object_get(params, name) == NULL)
			doc_fail(k, "{{ %.64s }} names no parameter of the "
			    "document", name);
	}
}

static void
doc_check_session(struct doc_check *k, json_t *root)
{
	static const char *const keys[] = { "schemaVersion", "description",
	    "sessionType", "inputs", "parameters", "properties", NULL };
	const char *key, *ver, *st;
	json_t *v, *params, *props;

	json_object_foreach(root, key, v)
		if (!doc_in(keys, key))
			doc_fail(k, "%.64s is not a key of a Session document "
			    "(schemaVersion, description, sessionType, "
			    "inputs, parameters, properties)", key);
	if (doc_str(k, root, "schemaVersion", "", &ver) == 0)
		doc_fail(k, "schemaVersion is required");
	(void)doc_str(k, root, "description", "", &key);
	if (doc_str(k, root, "sessionType", "", &st) == 0)
		doc_fail(k, "sessionType is required");
	else if (st != NULL && !doc_in(session_types, st))
		doc_fail(k, "sessionType '%.64s' is not one of "
		    "Standard_Stream, InteractiveCommands, "
		    "NonInteractiveCommands, Port", st);
	if ((v = json_object_get(root, "inputs")) != NULL)
		doc_check_inputs(k, v);
	params = json_object_get(root, "parameters");
	if (params != NULL)
		doc_check_parameters(k, params, 0);
	props = json_object_get(root, "properties");
	if (st != NULL && (strcmp(st, "InteractiveCommands") == 0 ||
	    strcmp(st, "NonInteractiveCommands") == 0))
		doc_check_shell_props(k, props);
	else if (st != NULL && strcmp(st, "Port") == 0)
		doc_check_port_props(k, props);
	else if (props != NULL && !json_is_object(props))
		doc_fail(k, "properties must be an object");
	doc_check_refs(k, props, json_is_object(params) ? params : NULL, 0);
	doc_check_refs(k, json_object_get(root, "inputs"),
	    json_is_object(params) ? params : NULL, 0);
	/* Last, so a document whose only fault is its schema version gets
	 * AWS's InvalidDocumentSchemaVersion. */
	if (ver != NULL && strcmp(ver, "1.0") != 0) {
		doc_fail(k, "schemaVersion %.16s is not supported for Session "
		    "documents; use 1.0", ver);
		k->schema_only = k->n == 1;
	}
}

/* A script step's or 1.2 property's inputs. */
static void
doc_check_script_inputs(struct doc_check *k, const char *where,
    json_t *inputs, int v12)
{
	static const char *const keys[] = { "runCommand", "workingDirectory",
	    "timeoutSeconds", "id", NULL };
	const char *key;
	json_t *v, *x;
	size_t i;

	json_object_foreach(inputs, key, v) {
		if (!doc_in(keys, key) || (!v12 && strcmp(key, "id") == 0)) {
			doc_fail(k, "%s.%.64s is not an input of the plugin "
			    "(runCommand, workingDirectory, timeoutSeconds)",
			    where, key);
		} else if (strcmp(key, "runCommand") == 0) {
			if (json_is_string(v))
				continue;
			if (!json_is_array(v)) {
				doc_fail(k, "%s.runCommand must be a list of "
				    "strings, not %s", where, doc_jtype(v));
				continue;
			}
			json_array_foreach(v, i, x)
				if (!json_is_string(x)) {
					doc_fail(k, "%s.runCommand must be a "
					    "list of strings", where);
					break;
				}
		} else if (strcmp(key, "timeoutSeconds") == 0) {
			if (!json_is_string(v) && !json_is_integer(v))
				doc_fail(k, "%s.timeoutSeconds must be a "
				    "number of seconds", where);
			else if (json_is_integer(v) &&
			    (json_integer_value(v) < 1 ||
			    json_integer_value(v) > 172800))
				doc_fail(k, "%s.timeoutSeconds must be 1 to "
				    "172800", where);
		} else if (!json_is_string(v)) {
			doc_fail(k, "%s.%s must be a string, not %s", where,
			    key, doc_jtype(v));
		}
	}
	if (json_object_get(inputs, "runCommand") == NULL)
		doc_fail(k, "%s.runCommand is required", where);
}

static void
doc_check_agent_inputs(struct doc_check *k, const char *where,
    json_t *inputs)
{
	static const char *const keys[] = { "agentName", "source",
	    "allowDowngrade", "targetVersion", "id", NULL };
	const char *key;
	json_t *v;

	json_object_foreach(inputs, key, v) {
		if (!doc_in(keys, key))
			doc_fail(k, "%s.%.64s is not an input of "
			    "aws:updateSsmAgent (agentName, source, "
			    "allowDowngrade, targetVersion)", where, key);
		else if (!json_is_string(v) && !(json_is_boolean(v) &&
		    strcmp(key, "allowDowngrade") == 0))
			doc_fail(k, "%s.%s must be a string, not %s", where,
			    key, doc_jtype(v));
	}
	if (json_object_get(inputs, "agentName") == NULL)
		doc_fail(k, "%s.agentName is required", where);
	if (json_object_get(inputs, "source") == NULL)
		doc_fail(k, "%s.source is required", where);
}

static int
doc_plugin_known(const char *action)
{
	return cmddoc_plugin_runs_on(action, "Windows") ||
	    cmddoc_plugin_runs_on(action, "Linux") ||
	    cmddoc_plugin_runs_on(action, "MacOS");
}

static void
doc_check_plugin_inputs(struct doc_check *k, const char *action,
    const char *where, json_t *inputs, int v12)
{
	if (!json_is_object(inputs)) {
		doc_fail(k, "%s must be an object, not %s", where,
		    inputs != NULL ? doc_jtype(inputs) : "missing");
		return;
	}
	if (strcmp(action, "aws:updateSsmAgent") == 0)
		doc_check_agent_inputs(k, where, inputs);
	else
		doc_check_script_inputs(k, where, inputs, v12);
}

/* {"StringEquals": ["platformType", "Linux" | "Windows" | "MacOS"]} */
static void
doc_check_precondition(struct doc_check *k, size_t n, json_t *pre)
{
	static const char *const plats[] = { "Linux", "Windows", "MacOS",
	    NULL };
	json_t *eq = json_object_get(pre, "StringEquals");
	const char *a, *b;

	a = json_string_value(json_array_get(eq, 0));
	b = json_string_value(json_array_get(eq, 1));
	if (!json_is_object(pre) || json_object_size(pre) != 1 ||
	    !json_is_array(eq) || json_array_size(eq) != 2 || a == NULL ||
	    b == NULL || strcmp(a, "platformType") != 0 || !doc_in(plats, b))
		doc_fail(k, "mainSteps[%zu].precondition must be "
		    "{\"StringEquals\": [\"platformType\", P]} with P Linux, "
		    "Windows or MacOS", n);
}

/* AWS: step names are letters, digits, _ - and ., 1 to 128 long. */
static int
doc_step_name_ok(const char *s)
{
	return s[0] != '\0' && strlen(s) <= 128 && doc_pat_chars(s, "_-.");
}

static void
doc_check_steps(struct doc_check *k, json_t *steps)
{
	static const char *const keys[] = { "action", "name", "inputs",
	    "precondition", NULL };
	const char *key, *action, *name;
	json_t *step, *v, *other;
	char where[64];
	size_t i, j;

	if (!json_is_array(steps) || json_array_size(steps) == 0) {
		doc_fail(k, "mainSteps must be a list of at least one step");
		return;
	}
	if (json_array_size(steps) > 100)
		doc_fail(k, "a document has at most 100 steps");
	json_array_foreach(steps, i, step) {
		if (!json_is_object(step)) {
			doc_fail(k, "mainSteps[%zu] must be an object, not %s",
			    i, doc_jtype(step));
			continue;
		}
		json_object_foreach(step, key, v)
			if (!doc_in(keys, key))
				doc_fail(k, "mainSteps[%zu].%.64s is not a key "
				    "of a step (action, name, inputs, "
				    "precondition)", i, key);
		snprintf(where, sizeof(where), "mainSteps[%zu].", i);
		if (doc_str(k, step, "action", where, &action) == 0)
			doc_fail(k, "mainSteps[%zu].action is required", i);
		else if (action != NULL && !doc_plugin_known(action)) {
			doc_fail(k, "mainSteps[%zu].action '%.64s' is not "
			    "supported (aws:runShellScript, "
			    "aws:runPowerShellScript, aws:updateSsmAgent)", i,
			    action);
			action = NULL;
		}
		if (doc_str(k, step, "name", where, &name) == 0)
			doc_fail(k, "mainSteps[%zu].name is required", i);
		else if (name != NULL && !doc_step_name_ok(name))
			doc_fail(k, "mainSteps[%zu].name '%.64s' must be 1 to "
			    "128 letters, digits, _, - or .", i, name);
		else if (name != NULL) {
			for (j = 0; j < i; j++) {
				other = json_object_get(json_array_get(steps,
				    j), "name");
				if (json_is_string(other) && strcmp(
				    json_string_value(other), name) == 0) {
					doc_fail(k, "mainSteps[%zu].name '%.64s'"
					    " is used by an earlier step", i,
					    name);
					break;
				}
			}
		}
		if ((v = json_object_get(step, "precondition")) != NULL)
			doc_check_precondition(k, i, v);
		snprintf(where, sizeof(where), "mainSteps[%zu].inputs", i);
		if (action != NULL)
			doc_check_plugin_inputs(k, action, where,
			    json_object_get(step, "inputs"), 0);
	}
}

/* Schema 1.2: {"runtimeConfig": {"aws:plugin": {"properties": [...]}}} */
static void
doc_check_runtime_config(struct doc_check *k, json_t *rc)
{
	const char *plugin, *key;
	json_t *cfg, *props, *p, *v;
	char where[128];
	size_t i;

	if (!json_is_object(rc) || json_object_size(rc) == 0) {
		doc_fail(k, "runtimeConfig must be an object naming at least "
		    "one plugin");
		return;
	}
	json_object_foreach(rc, plugin, cfg) {
		if (!doc_plugin_known(plugin)) {
			doc_fail(k, "runtimeConfig.%.64s is not a supported "
			    "plugin (aws:runShellScript, "
			    "aws:runPowerShellScript, aws:updateSsmAgent)",
			    plugin);
			continue;
		}
		if (!json_is_object(cfg)) {
			doc_fail(k, "runtimeConfig.%s must be an object",
			    plugin);
			continue;
		}
		json_object_foreach(cfg, key, v)
			if (strcmp(key, "properties") != 0)
				doc_fail(k, "runtimeConfig.%s.%.64s is not "
				    "known (properties)", plugin, key);
		props = json_object_get(cfg, "properties");
		if (json_is_object(props)) {
			snprintf(where, sizeof(where),
			    "runtimeConfig.%s.properties", plugin);
			doc_check_plugin_inputs(k, plugin, where, props, 1);
			continue;
		}
		if (!json_is_array(props) || json_array_size(props) == 0) {
			doc_fail(k, "runtimeConfig.%s.properties must be a "
			    "list of at least one object", plugin);
			continue;
		}
		json_array_foreach(props, i, p) {
			snprintf(where, sizeof(where),
			    "runtimeConfig.%s.properties[%zu]", plugin, i);
			doc_check_plugin_inputs(k, plugin, where, p, 1);
		}
	}
}

static void
doc_check_command(struct doc_check *k, json_t *root)
{
	static const char *const versions[] = { "1.2", "2.0", "2.2", NULL };
	static const char *const keys[] = { "schemaVersion", "description",
	    "parameters", "mainSteps", "runtimeConfig", NULL };
	const char *ver, *key;
	json_t *v, *params;

	json_object_foreach(root, key, v)
		if (!doc_in(keys, key))
			doc_fail(k, "%.64s is not a key of a Command document "
			    "(schemaVersion, description, parameters, "
			    "mainSteps, runtimeConfig)", key);
	if (doc_str(k, root, "schemaVersion", "", &ver) == 0)
		doc_fail(k, "schemaVersion is required");
	(void)doc_str(k, root, "description", "", &key);
	params = json_object_get(root, "parameters");
	if (params != NULL)
		doc_check_parameters(k, params, 1);
	if (ver != NULL && strcmp(ver, "1.2") == 0) {
		if (json_object_get(root, "mainSteps") != NULL)
			doc_fail(k, "schemaVersion 1.2 documents have "
			    "runtimeConfig, not mainSteps");
		doc_check_runtime_config(k, json_object_get(root,
		    "runtimeConfig"));
	} else if (ver != NULL && doc_in(versions, ver)) {
		if (json_object_get(root, "runtimeConfig") != NULL)
			doc_fail(k, "schemaVersion %s documents have "
			    "mainSteps, not runtimeConfig", ver);
		doc_check_steps(k, json_object_get(root, "mainSteps"));
	}
	params = json_is_object(params) ? params : NULL;
	doc_check_refs(k, json_object_get(root, "mainSteps"), params, 0);
	doc_check_refs(k, json_object_get(root, "runtimeConfig"), params, 0);
	/* Last, so a document whose only fault is its schema version gets
	 * AWS's InvalidDocumentSchemaVersion. */
	if (ver != NULL && !doc_in(versions, ver)) {
		doc_fail(k, "schemaVersion %.16s is not supported for Command "
		    "documents; use 1.2, 2.0 or 2.2", ver);
		k->schema_only = k->n == 1;
	}
}

int
api_documents_check_content(const char *document_type, const char *format,
    const char *content, size_t len, struct api_error *err)
{
	struct doc_check k;
	char why[200];
	json_t *root;
	int yaml = format != NULL && strcmp(format, "YAML") == 0;

	if (len > API_DOCUMENTS_MAX_BYTES)
		return api_error_set(err, 400, "MaxDocumentSizeExceeded",
		    "The document is %zu bytes; the size limit of a document "
		    "is 64 KB (%zu bytes).", len, API_DOCUMENTS_MAX_BYTES);
	if (format != NULL && strcmp(format, "TEXT") == 0)
		return api_error_set(err, 400, "InvalidDocumentContent",
		    "DocumentFormat TEXT is not valid for %s documents; use "
		    "JSON.", document_type);
	root = cmddoc_parse(format, content, len, why, sizeof(why));
	if (root == NULL)
		return api_error_set(err, 400, "InvalidDocumentContent",
		    "The document content is not valid %s: %s.",
		    yaml ? "YAML" : "JSON", why);
	memset(&k, 0, sizeof(k));
	if (!json_is_object(root))
		doc_fail(&k, "the document must be %s, not %s",
		    yaml ? "a YAML mapping" : "a JSON object",
		    doc_jtype(root));
	else if (strcmp(document_type, "Session") == 0)
		doc_check_session(&k, root);
	else
		doc_check_command(&k, root);
	json_decref(root);
	if (k.n == 0)
		return 0;
	if (k.schema_only)
		return api_error_set(err, 400, "InvalidDocumentSchemaVersion",
		    "%s", k.msg);
	return api_error_set(err, 400, "InvalidDocumentContent",
	    "%d problem%s in the %s document: %s", k.n, k.n == 1 ? "" : "s",
	    document_type, k.msg);
}

/* The preferences document must stay a Standard_Stream Session document:
 * every session reads its inputs. */
static int
doc_check_prefs(const char *type, const char *content, size_t len,
    struct api_error *err)
{
	json_t *root;
	const char *st;
	int ok;

	root = json_loadb(content, len, 0, NULL);
	st = json_string_value(json_object_get(root, "sessionType"));
	ok = strcmp(type, "Session") == 0 && st != NULL &&
	    strcmp(st, "Standard_Stream") == 0;
	json_decref(root);
	if (ok)
		return 0;
	return api_error_set(err, 400, "InvalidDocumentContent",
	    "%s holds the Session Manager preferences: it must be a Session "
	    "document with sessionType Standard_Stream.", API_DOCUMENTS_PREFS);
}

/* ---- descriptions ------------------------------------------------------- */

static void
doc_sha256_hex(const char *s, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) != 1 ||
	    n != 32)
		return;
	for (i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

static void
doc_owner(const struct api_call *c, const char *name, char *out,
    size_t size)
{
	snprintf(out, size, "%s", doc_amazon_owned(name) ? "Amazon" :
	    c->srv->account_id);
}

/* A stored version's content as a tree (JSON or YAML), or NULL. */
static json_t *
doc_parse(const struct document_rec *d)
{
	char why[160];

	return cmddoc_parse(d->document_format, d->content,
	    strlen(d->content), why, sizeof(why));
}

/* Platforms a document runs on: every one for Session documents; for
 * Command documents those where a step's plugin exists and its
 * precondition allows (cmddoc_runs_on, as SendCommand decides). */
static json_t *
doc_platforms(const struct document_rec *d)
{
	static const char *const plats[] = { "Windows", "Linux", "MacOS" };
	json_t *l = json_array(), *root = NULL;
	size_t i;

	if (strcmp(d->document_type, "Command") == 0)
		root = doc_parse(d);
	for (i = 0; i < sizeof(plats) / sizeof(plats[0]); i++)
		if (root == NULL || cmddoc_content_runs_on(root, plats[i]))
			json_array_append_new(l, json_string(plats[i]));
	json_decref(root);
	return l;
}

static void
doc_tag_cb(void *arg, const char *key, const char *value)
{
	json_array_append_new(arg, json_pack("{s:s, s:s}", "Key", key,
	    "Value", value));
}

/* Parameters as DescribeDocument lists them. */
static json_t *
doc_parameters(json_t *root)
{
	json_t *l = json_array(), *def, *dv;
	const char *name, *s;
	char *dump;

	json_object_foreach(json_object_get(root, "parameters"), name, def) {
		json_t *p = json_object();

		doc_set_str(p, "Name", name);
		s = json_string_value(json_object_get(def, "type"));
		doc_set_str(p, "Type", s != NULL &&
		    strcmp(s, "StringList") == 0 ? "StringList" : "String");
		doc_set_opt_str(p, "Description", json_string_value(
		    json_object_get(def, "description")));
		dv = json_object_get(def, "default");
		if (json_is_string(dv)) {
			doc_set_str(p, "DefaultValue", json_string_value(dv));
		} else if (dv != NULL &&
		    (dump = json_dumps(dv, JSON_COMPACT)) != NULL) {
			doc_set_str(p, "DefaultValue", dump);
			free(dump);
		}
		json_array_append_new(l, p);
	}
	return l;
}

/* DocumentDescription of one version. */
static json_t *
doc_description(const struct api_call *c, const struct document_rec *d)
{
	json_t *o = json_object(), *root, *tags;
	char hash[65], owner[32];
	const char *s;

	root = doc_parse(d);
	doc_sha256_hex(d->content, hash);
	doc_owner(c, d->name, owner, sizeof(owner));
	doc_set_str(o, "Hash", hash);
	doc_set_str(o, "HashType", "Sha256");
	doc_set_str(o, "Name", d->name);
	doc_set_opt_str(o, "DisplayName", d->display_name);
	doc_set_opt_str(o, "VersionName", d->version_name);
	doc_set_str(o, "Owner", owner);
	json_object_set_new(o, "CreatedDate", api_json_time(d->created_ms));
	doc_set_str(o, "Status", "Active");
	doc_set_version(o, "DocumentVersion", d->version);
	s = json_string_value(json_object_get(root, "description"));
	doc_set_opt_str(o, "Description", s);
	json_object_set_new(o, "Parameters", doc_parameters(root));
	json_object_set_new(o, "PlatformTypes", doc_platforms(d));
	doc_set_str(o, "DocumentType", d->document_type);
	s = json_string_value(json_object_get(root, "schemaVersion"));
	doc_set_opt_str(o, "SchemaVersion", s);
	doc_set_version(o, "LatestVersion", d->latest_version);
	doc_set_version(o, "DefaultVersion", d->default_version);
	doc_set_str(o, "DocumentFormat", d->document_format);
	doc_set_opt_str(o, "TargetType", d->target_type);
	tags = json_array();
	store_tags_foreach(c->srv->store, "Document", d->name, doc_tag_cb,
	    tags);
	json_object_set_new(o, "Tags", tags);
	json_decref(root);
	return o;
}

/* ---- YAML out (GetDocument DocumentFormat YAML) -------------------------- */

static int doc_yaml_value(struct buf *b, json_t *v, int indent, int depth);

static int
doc_yaml_scalar(struct buf *b, json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY);
	int rc;

	/* A JSON scalar (a double-quoted string included) is YAML too. */
	if (s == NULL)
		return PH_ERR_NOMEM;
	rc = buf_append_str(b, s);
	free(s);
	return rc;
}

static int
doc_yaml_key(struct buf *b, const char *key)
{
	json_t *k;
	int rc;

	if (key[0] != '\0' && doc_pat_chars(key, "_-.") &&
	    !isdigit((unsigned char)key[0]))
		return buf_append_str(b, key);
	k = json_string(key);
	rc = k != NULL ? doc_yaml_scalar(b, k) : PH_ERR_NOMEM;
	json_decref(k);
	return rc;
}

static int
doc_yaml_value(struct buf *b, json_t *v, int indent, int depth)
{
	const char *key;
	json_t *x;
	size_t i;
	int rc;

	if (depth > 64)
		return PH_ERR_TOOBIG;
	if (json_is_object(v) && json_object_size(v) > 0) {
		json_object_foreach(v, key, x) {
			if ((rc = buf_appendf(b, "\n%*s", indent, "")) != 0 ||
			    (rc = doc_yaml_key(b, key)) != 0 ||
			    (rc = buf_append_str(b, ":")) != 0 ||
			    (rc = doc_yaml_value(b, x, indent + 2,
			    depth + 1)) != 0)
				return rc;
		}
		return 0;
	}
	if (json_is_array(v) && json_array_size(v) > 0) {
		json_array_foreach(v, i, x) {
			if ((rc = buf_appendf(b, "\n%*s-", indent, "")) != 0 ||
			    (rc = doc_yaml_value(b, x, indent + 2,
			    depth + 1)) != 0)
				return rc;
		}
		return 0;
	}
	if (json_is_object(v))
		return buf_append_str(b, " {}");
	if (json_is_array(v))
		return buf_append_str(b, " []");
	if ((rc = buf_append_str(b, " ")) != 0)
		return rc;
	return doc_yaml_scalar(b, v);
}

/* The content as YAML; NULL if it cannot be converted. */
static char *
doc_to_yaml(const char *content)
{
	json_t *root = json_loads(content, 0, NULL);
	const char *key;
	struct buf b;
	json_t *x;
	char *out = NULL;
	int rc = 0;

	if (!json_is_object(root))
		goto out;
	buf_init(&b, 4 * API_DOCUMENTS_MAX_BYTES);
	json_object_foreach(root, key, x) {
		if (b.len > 0 && (rc = buf_append_str(&b, "\n")) != 0)
			break;
		if ((rc = doc_yaml_key(&b, key)) != 0 ||
		    (rc = buf_append_str(&b, ":")) != 0 ||
		    (rc = doc_yaml_value(&b, x, 2, 0)) != 0)
			break;
	}
	if (rc == 0 && buf_append_str(&b, "\n") == 0 && buf_cstr(&b) != NULL)
		out = (char *)buf_steal(&b, NULL);
	buf_free(&b);
out:
	json_decref(root);
	return out;
}

/* ---- actions ------------------------------------------------------------ */

/* Tags of a CreateDocument request, validated into tags[] (max entries).
 * The count, or -1 (recorded in v). */
static int
doc_tag_list(struct api_v *v, json_t *list, struct store_tag *tags,
    size_t max)
{
	static const struct api_str key_d = { "Key", NULL, 1, 1, 128,
	    api_pat_tag, API_PAT_TAG, NULL };
	static const struct api_str val_d = { "Value", NULL, 1, 0, 256,
	    api_pat_tag, API_PAT_TAG, NULL };
	const char *k, *val;
	char p[64];
	size_t i, n = 0;
	json_t *t;

	json_array_foreach(list, i, t) {
		if (n >= max)
			return -1;
		snprintf(p, sizeof(p), "tags.%zu.member", i + 1);
		if (!json_is_object(t)) {
			api_v_type(v, p, "a structure");
			return -1;
		}
		snprintf(p, sizeof(p), "tags.%zu.member.key", i + 1);
		api_v_str_value(v, json_object_get(t, "Key"), p, &key_d, &k);
		snprintf(p, sizeof(p), "tags.%zu.member.value", i + 1);
		api_v_str_value(v, json_object_get(t, "Value"), p, &val_d,
		    &val);
		if (k != NULL && strncmp(k, "aws:", 4) == 0) {
			api_v_fail(v, "tags", k, "Member must not begin with "
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

/* Names AWS keeps for its own documents. */
static int
doc_reserved_name(const char *name)
{
	static const char *const prefixes[] = { "aws", "amazon", "amzn",
	    NULL };
	size_t i;

	for (i = 0; prefixes[i] != NULL; i++)
		if (strncasecmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

/* Session documents are kept as JSON: StartSession and the preferences
 * read them as JSON. One sent as YAML is stored in its JSON form. */
static int
doc_session_as_json(struct document_new *n, char **owned,
    struct api_error *err)
{
	json_t *root;
	char why[160];

	*owned = NULL;
	if (strcmp(n->document_type, "Session") != 0 ||
	    strcmp(n->document_format, "YAML") != 0)
		return 0;
	root = cmddoc_parse("YAML", n->content, strlen(n->content), why,
	    sizeof(why));
	*owned = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (*owned == NULL)
		return api_error_internal(err, "session_yaml", PH_ERR_NOMEM);
	n->content = *owned;
	n->document_format = "JSON";
	return 0;
}

int
api_documents_create(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const struct api_str type_d = { "DocumentType", "documentType",
	    0, 0, 0, NULL, NULL, doc_types };
	struct store_tag *tags = NULL;
	struct document_rec d;
	struct document_new n;
	char arn[300], *conv = NULL;
	struct api_v v;
	json_t *list;
	int rc, ntags = 0;

	memset(&n, 0, sizeof(n));
	memset(&d, 0, sizeof(d));
	api_v_init(&v);
	n.content = api_v_str(&v, in, &content_d);
	n.name = api_v_str(&v, in, &name_d);
	n.display_name = api_v_str(&v, in, &display_d);
	n.version_name = api_v_str(&v, in, &version_name_d);
	n.document_type = api_v_str(&v, in, &type_d);
	n.document_format = api_v_str(&v, in, &format_d);
	n.target_type = api_v_str(&v, in, &target_type_d);
	api_v_list(&v, in, "Requires", "requires", 0, 1, 0);
	api_v_list(&v, in, "Attachments", "attachments", 0, 0, 20);
	list = api_v_list(&v, in, "Tags", "tags", 0, 0, 1000);
	if (list != NULL && json_array_size(list) > 0) {
		tags = calloc(json_array_size(list), sizeof(*tags));
		if (tags == NULL)
			return api_error_internal(err, "create_document",
			    PH_ERR_NOMEM);
		ntags = doc_tag_list(&v, list, tags, json_array_size(list));
	}
	if ((rc = api_v_finish(&v, err)) != 0)
		goto out;
	/* AWS: a document is a Command document unless told otherwise. */
	if (n.document_type == NULL)
		n.document_type = "Command";
	if (n.document_format == NULL)
		n.document_format = "JSON";
	if (doc_reserved_name(n.name)) {
		rc = api_error_set(err, 400, "ValidationException",
		    "Document name %s begins with a prefix reserved for "
		    "AWS (aws, amazon, amzn).", n.name);
		goto out;
	}
	if (strcmp(n.document_type, "Session") != 0 &&
	    strcmp(n.document_type, "Command") != 0) {
		rc = api_error_set(err, 400, "ValidationException",
		    "DocumentType %s is not supported here: porthole keeps "
		    "Session and Command documents.", n.document_type);
		goto out;
	}
	if (ntags > STORE_TAGS_MAX) {
		rc = api_error_set(err, 400, "TooManyTagsError",
		    "The Tags parameter contains more than %d tags.",
		    STORE_TAGS_MAX);
		goto out;
	}
	doc_arn(c, n.name, arn, sizeof(arn));
	if ((rc = api_authorize(c, "ssm:CreateDocument", arn, err)) != 0)
		goto out;
	if ((rc = api_documents_check_content(n.document_type,
	    n.document_format, n.content, strlen(n.content), err)) != 0 ||
	    (rc = doc_session_as_json(&n, &conv, err)) != 0)
		goto out;
	if (strcmp(n.name, API_DOCUMENTS_PREFS) == 0 &&
	    (rc = doc_check_prefs(n.document_type, n.content,
	    strlen(n.content), err)) != 0)
		goto out;
	/* Until the account writes its own preferences document, the one
	 * portholed provides stands in for it (an AWS account has none);
	 * creating it replaces that stand-in. */
	rc = store_document_create(c->srv->store, &n,
	    strcmp(n.name, API_DOCUMENTS_PREFS) == 0, DOC_MAX_ACCOUNT,
	    c->now_ms);
	if (rc == PH_ERR_EXISTS) {
		rc = api_error_set(err, 400, "DocumentAlreadyExists",
		    "Document with same name %s already exists.", n.name);
		goto out;
	}
	if (rc == PH_ERR_TOOBIG) {
		rc = api_error_set(err, 400, "DocumentLimitExceeded",
		    "You can have at most %d documents.", DOC_MAX_ACCOUNT);
		goto out;
	}
	if (rc != 0 || (ntags > 0 && (rc = store_tags_add(c->srv->store,
	    "Document", n.name, tags, (size_t)ntags, STORE_TAGS_MAX)) != 0) ||
	    (rc = store_document_version_get(c->srv->store, n.name, 1, NULL,
	    &d)) != 0) {
		rc = api_error_internal(err, "create_document", rc);
		goto out;
	}
	log_info("event=document_created document=%s type=%s by=%s", n.name,
	    n.document_type, c->principal != NULL ? c->principal->arn : "-");
	json_object_set_new(out, "DocumentDescription", doc_description(c,
	    &d));
out:
	store_document_rec_clear(&d);
	free(tags);
	free(conv);
	return rc;
}

struct doc_dup {
	const char *content;
	const char *version_name;
	int64_t same_content;
	int64_t same_name;
};

static int
doc_dup_cb(void *arg, const struct document_rec *d)
{
	struct doc_dup *x = arg;

	if (strcmp(d->content, x->content) == 0)
		x->same_content = d->version;
	if (x->version_name != NULL &&
	    strcmp(d->version_name, x->version_name) == 0)
		x->same_name = d->version;
	return 0;
}

int
api_documents_update(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct document_rec latest, d;
	struct document_new n;
	const char *ver;
	struct doc_dup dup;
	int64_t want, newv;
	char arn[300], *conv = NULL;
	struct api_v v;
	int rc, prefs;

	memset(&n, 0, sizeof(n));
	memset(&latest, 0, sizeof(latest));
	memset(&d, 0, sizeof(d));
	api_v_init(&v);
	n.content = api_v_str(&v, in, &content_d);
	n.name = api_v_str(&v, in, &name_d);
	n.display_name = api_v_str(&v, in, &display_d);
	n.version_name = api_v_str(&v, in, &version_name_d);
	ver = api_v_str(&v, in, &version_d);
	n.document_format = api_v_str(&v, in, &format_d);
	n.target_type = api_v_str(&v, in, &target_type_d);
	api_v_list(&v, in, "Attachments", "attachments", 0, 0, 20);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	if (n.document_format == NULL)
		n.document_format = "JSON";
	doc_arn(c, n.name, arn, sizeof(arn));
	if ((rc = api_authorize(c, "ssm:UpdateDocument", arn, err)) != 0)
		return rc;
	rc = store_document_version_get(c->srv->store, n.name,
	    STORE_DOC_LATEST, NULL, &latest);
	if (rc == PH_ERR_NOTFOUND)
		return doc_not_found(err, n.name);
	if (rc != 0)
		return api_error_internal(err, "update_document", rc);
	if (doc_amazon_owned(n.name)) {
		rc = api_error_set(err, 400, "InvalidDocumentOperation",
		    "Document %s is owned by Amazon and cannot be updated; "
		    "create a document of your own instead.", n.name);
		goto out;
	}
	/* Only the latest version can be updated (AWS). */
	want = doc_version_arg(ver, STORE_DOC_LATEST);
	if (want == STORE_DOC_DEFAULT)
		want = latest.default_version;
	if (want != STORE_DOC_LATEST && want != latest.latest_version) {
		rc = api_error_set(err, 400, "InvalidDocumentVersion",
		    "Document version %s of %s is not its latest version "
		    "(%" PRId64 "); only the latest version can be updated.",
		    ver, n.name, latest.latest_version);
		goto out;
	}
	n.document_type = latest.document_type;
	if ((rc = api_documents_check_content(n.document_type,
	    n.document_format, n.content, strlen(n.content), err)) != 0 ||
	    (rc = doc_session_as_json(&n, &conv, err)) != 0)
		goto out;
	prefs = strcmp(n.name, API_DOCUMENTS_PREFS) == 0;
	if (prefs && (rc = doc_check_prefs(n.document_type, n.content,
	    strlen(n.content), err)) != 0)
		goto out;
	memset(&dup, 0, sizeof(dup));
	dup.content = n.content;
	dup.version_name = n.version_name;
	if ((rc = store_document_version_foreach(c->srv->store, n.name,
	    doc_dup_cb, &dup)) != 0) {
		rc = api_error_internal(err, "update_document", rc);
		goto out;
	}
	if (dup.same_content != 0 &&
	    dup.same_content == latest.latest_version) {
		rc = api_error_set(err, 400, "DuplicateDocumentContent",
		    "The content is the same as the latest version (%" PRId64
		    ") of %s: there is nothing to update.", dup.same_content,
		    n.name);
		goto out;
	}
	if (dup.same_content != 0) {
		rc = api_error_set(err, 400, "DuplicateDocumentContent",
		    "The content is the same as version %" PRId64 " of %s; "
		    "to go back to that version, make it the default with "
		    "UpdateDocumentDefaultVersion.", dup.same_content, n.name);
		goto out;
	}
	if (dup.same_name != 0) {
		rc = api_error_set(err, 400, "DuplicateDocumentVersionName",
		    "Version %" PRId64 " of %s is already named %s.",
		    dup.same_name, n.name, n.version_name);
		goto out;
	}
	/* AWS leaves the default version alone on an update. The
	 * preferences document is the exception: `aws ssm update-document
	 * --name SSM-SessionManagerRunShell` is how AWS's own documentation
	 * changes the preferences, and users expect new sessions to follow
	 * at once (the console does the same), so its new version becomes
	 * the default. */
	rc = store_document_add_version(c->srv->store, &n, prefs, c->now_ms,
	    &newv);
	if (rc == PH_ERR_TOOBIG) {
		rc = api_error_set(err, 400, "DocumentVersionLimitExceeded",
		    "Document %s has %d versions, the most a document can "
		    "have; delete some first.", n.name,
		    STORE_DOC_VERSIONS_MAX);
		goto out;
	}
	if (rc != 0 || (rc = store_document_version_get(c->srv->store,
	    n.name, newv, NULL, &d)) != 0) {
		rc = api_error_internal(err, "update_document", rc);
		goto out;
	}
	log_info("event=document_updated document=%s version=%" PRId64
	    " default=%" PRId64 " by=%s", n.name, newv, d.default_version,
	    c->principal != NULL ? c->principal->arn : "-");
	json_object_set_new(out, "DocumentDescription", doc_description(c,
	    &d));
out:
	store_document_rec_clear(&latest);
	store_document_rec_clear(&d);
	free(conv);
	return rc;
}

/* Name / DocumentVersion / VersionName of Get and Describe: the version
 * asked for into *d, or an error. */
static int
doc_lookup(const struct api_call *c, json_t *in, const char *action,
    struct document_rec *d, const char **format_out, struct api_error *err)
{
	const char *name, *ver, *vname;
	char arn[300];
	struct api_v v;
	int rc;

	api_v_init(&v);
	name = api_v_str(&v, in, &arn_d);
	ver = api_v_str(&v, in, &version_d);
	vname = api_v_str(&v, in, &version_name_d);
	if (format_out != NULL)
		*format_out = api_v_str(&v, in, &format_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	name = doc_name_of(name);
	if (name[0] == '\0')
		return doc_not_found(err, "(empty)");
	doc_arn(c, name, arn, sizeof(arn));
	if ((rc = api_authorize(c, action, arn, err)) != 0)
		return rc;
	rc = store_document_version_get(c->srv->store, name,
	    doc_version_arg(ver, STORE_DOC_DEFAULT), vname, d);
	if (rc == PH_ERR_NOTFOUND)
		return doc_not_found(err, name);
	if (rc == PH_ERR_INVALID)
		return doc_bad_version(err, name, ver);
	if (rc != 0)
		return api_error_internal(err, "get_document", rc);
	return 0;
}

int
api_documents_get(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct document_rec d;
	const char *format;
	char *yaml = NULL, *json = NULL;
	json_t *root;
	int rc;

	if ((rc = doc_lookup(c, in, "ssm:GetDocument", &d, &format,
	    err)) != 0)
		return rc;
	if (format != NULL && strcmp(format, "TEXT") == 0) {
		rc = api_error_set(err, 400, "ValidationException",
		    "Document %s is %s, not TEXT; ask for JSON or YAML.",
		    d.name, d.document_format);
		goto out;
	}
	if (format != NULL && strcmp(format, "YAML") == 0 &&
	    strcmp(d.document_format, "YAML") != 0) {
		if ((yaml = doc_to_yaml(d.content)) == NULL) {
			rc = api_error_internal(err, "get_document",
			    PH_ERR_INVALID);
			goto out;
		}
	} else if (format != NULL && strcmp(format, "JSON") == 0 &&
	    strcmp(d.document_format, "YAML") == 0) {
		root = doc_parse(&d);
		json = root != NULL ? json_dumps(root, JSON_INDENT(2)) : NULL;
		json_decref(root);
		if (json == NULL) {
			rc = api_error_internal(err, "get_document",
			    PH_ERR_INVALID);
			goto out;
		}
	}
	doc_set_str(out, "Name", d.name);
	json_object_set_new(out, "CreatedDate", api_json_time(d.created_ms));
	doc_set_opt_str(out, "DisplayName", d.display_name);
	doc_set_opt_str(out, "VersionName", d.version_name);
	doc_set_version(out, "DocumentVersion", d.version);
	doc_set_str(out, "Status", "Active");
	doc_set_str(out, "Content", yaml != NULL ? yaml : json != NULL ?
	    json : d.content);
	doc_set_str(out, "DocumentType", d.document_type);
	doc_set_str(out, "DocumentFormat", yaml != NULL ? "YAML" :
	    json != NULL ? "JSON" : d.document_format);
out:
	free(yaml);
	free(json);
	store_document_rec_clear(&d);
	return rc;
}

int
api_documents_describe(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct document_rec d;
	int rc;

	if ((rc = doc_lookup(c, in, "ssm:DescribeDocument", &d, NULL,
	    err)) != 0)
		return rc;
	json_object_set_new(out, "Document", doc_description(c, &d));
	store_document_rec_clear(&d);
	return 0;
}

/* ---- ListDocuments ------------------------------------------------------ */

enum doc_fkey {
	DF_TYPE, DF_NAME, DF_OWNER, DF_PLATFORM, DF_SCHEMA, DF_TARGET_TYPE,
	DF_KEYWORD, DF_TAG_KEY, DF_TAG
};

struct doc_filter {
	enum doc_fkey key;
	const char *tag;           /* DF_TAG: the key after "tag:" */
	json_t *values;            /* list of strings */
};

struct doc_list {
	const struct api_call *c;
	struct doc_filter f[DOC_MAX_FILTERS];
	size_t nf;
	int offset, limit, seen, more;
	json_t *list;
};

struct doc_tag_probe {
	const char *key;
	json_t *values;            /* NULL: any value */
	int hit;
};

static void
doc_tag_probe_cb(void *arg, const char *key, const char *value)
{
	struct doc_tag_probe *t = arg;
	json_t *x;
	size_t i;

	if (strcmp(key, t->key) != 0)
		return;
	if (t->values == NULL) {
		t->hit = 1;
		return;
	}
	json_array_foreach(t->values, i, x)
		if (strcmp(json_string_value(x), value) == 0)
			t->hit = 1;
}

/* One value of a filter other than a tag filter. */
static int
doc_filter_hit(struct doc_list *l, const struct doc_filter *f,
    const struct document_rec *d, json_t *root, const char *val)
{
	const char *s;
	char owner[32];
	json_t *plats, *p;
	size_t i;
	int hit = 0;

	switch (f->key) {
	case DF_TYPE:
		return strcmp(d->document_type, val) == 0;
	case DF_NAME:
		/* AWS matches names from their start. */
		return strncmp(d->name, val, strlen(val)) == 0;
	case DF_KEYWORD:
		return strcasestr(d->name, val) != NULL;
	case DF_OWNER:
		doc_owner(l->c, d->name, owner, sizeof(owner));
		if (strcmp(val, "All") == 0)
			return 1;
		if (strcmp(val, "Self") == 0 || strcmp(val, "Private") == 0)
			return strcmp(owner, "Amazon") != 0;
		return strcmp(owner, val) == 0;
	case DF_PLATFORM:
		plats = doc_platforms(d);
		json_array_foreach(plats, i, p)
			if (strcmp(json_string_value(p), val) == 0)
				hit = 1;
		json_decref(plats);
		return hit;
	case DF_SCHEMA:
		s = json_string_value(json_object_get(root, "schemaVersion"));
		return s != NULL && strcmp(s, val) == 0;
	case DF_TARGET_TYPE:
		return strcmp(d->target_type, val) == 0;
	default:
		return 0;
	}
}

/* Filters hold together; the values of one filter are alternatives. */
static int
doc_matches(struct doc_list *l, const struct document_rec *d, json_t *root)
{
	struct doc_tag_probe t;
	const struct doc_filter *f;
	size_t i, j;
	json_t *x;
	int hit;

	for (i = 0; i < l->nf; i++) {
		f = &l->f[i];
		hit = 0;
		if (f->key == DF_TAG) {
			memset(&t, 0, sizeof(t));
			t.key = f->tag;
			t.values = json_array_size(f->values) > 0 ?
			    f->values : NULL;
			store_tags_foreach(l->c->srv->store, "Document",
			    d->name, doc_tag_probe_cb, &t);
			hit = t.hit;
		} else if (f->key == DF_TAG_KEY) {
			json_array_foreach(f->values, j, x) {
				memset(&t, 0, sizeof(t));
				t.key = json_string_value(x);
				store_tags_foreach(l->c->srv->store,
				    "Document", d->name, doc_tag_probe_cb, &t);
				hit |= t.hit;
			}
		} else {
			json_array_foreach(f->values, j, x)
				hit |= doc_filter_hit(l, f, d, root,
				    json_string_value(x));
		}
		if (!hit)
			return 0;
	}
	return 1;
}

static int
doc_list_cb(void *arg, const struct document_rec *d)
{
	struct doc_list *l = arg;
	json_t *o, *root = NULL, *tags;
	char owner[32];
	const char *s;
	size_t i;

	/* Parse the content only when a filter or the answer needs it. */
	for (i = 0; i < l->nf; i++)
		if (l->f[i].key == DF_SCHEMA && root == NULL)
			root = doc_parse(d);
	if (!doc_matches(l, d, root) || l->seen++ < l->offset) {
		json_decref(root);
		return 0;
	}
	if ((int)json_array_size(l->list) >= l->limit) {
		json_decref(root);
		l->more = 1;
		return 1;
	}
	if (root == NULL)
		root = doc_parse(d);
	o = json_object();
	doc_owner(l->c, d->name, owner, sizeof(owner));
	doc_set_str(o, "Name", d->name);
	json_object_set_new(o, "CreatedDate", api_json_time(d->created_ms));
	doc_set_opt_str(o, "DisplayName", d->display_name);
	doc_set_str(o, "Owner", owner);
	doc_set_opt_str(o, "VersionName", d->version_name);
	json_object_set_new(o, "PlatformTypes", doc_platforms(d));
	doc_set_version(o, "DocumentVersion", d->version);
	doc_set_str(o, "DocumentType", d->document_type);
	s = json_string_value(json_object_get(root, "schemaVersion"));
	doc_set_opt_str(o, "SchemaVersion", s);
	doc_set_str(o, "DocumentFormat", d->document_format);
	doc_set_opt_str(o, "TargetType", d->target_type);
	tags = json_array();
	store_tags_foreach(l->c->srv->store, "Document", d->name, doc_tag_cb,
	    tags);
	json_object_set_new(o, "Tags", tags);
	json_array_append_new(l->list, o);
	json_decref(root);
	return 0;
}

/* Add one filter: key and its values (already checked to be strings). */
static int
doc_add_filter(struct doc_list *l, const char *key, json_t *values,
    struct api_error *err)
{
	static const struct {
		const char *name;
		enum doc_fkey key;
	} keys[] = {
		{ "DocumentType", DF_TYPE },
		{ "Name", DF_NAME },
		{ "Owner", DF_OWNER },
		{ "PlatformTypes", DF_PLATFORM },
		{ "SchemaVersion", DF_SCHEMA },
		{ "TargetType", DF_TARGET_TYPE },
		{ "SearchKeyword", DF_KEYWORD },
		{ "tag-key", DF_TAG_KEY },
	};
	struct doc_filter *f;
	size_t i;

	if (l->nf >= DOC_MAX_FILTERS)
		return api_error_set(err, 400, "ValidationException",
		    "Too many filters: at most %d.", DOC_MAX_FILTERS);
	f = &l->f[l->nf];
	f->values = values;
	f->tag = NULL;
	if (strncmp(key, "tag:", 4) == 0 && key[4] != '\0') {
		f->key = DF_TAG;
		f->tag = key + 4;
		l->nf++;
		return 0;
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(key, keys[i].name) == 0)
			break;
	if (i == sizeof(keys) / sizeof(keys[0]))
		return api_error_set(err, 400, "InvalidFilterKey",
		    "The filter key %s is not valid.", key);
	f->key = keys[i].key;
	l->nf++;
	return 0;
}

/* A list's members must be strings of 1..max characters. */
static int
doc_string_list(struct api_v *v, json_t *list, const char *path, size_t max)
{
	struct api_str d = { NULL, NULL, 1, 1, max, NULL, NULL, NULL };
	const char *s;
	char p[160];
	size_t i;
	json_t *x;
	int ok = 1;

	json_array_foreach(list, i, x) {
		snprintf(p, sizeof(p), "%s.%zu.member", path, i + 1);
		if (api_v_str_value(v, x, p, &d, &s) != 1)
			ok = 0;
	}
	return ok;
}

static int
doc_paging(struct api_v *v, json_t *in, int *limit, int *offset,
    struct api_error *err)
{
	static const struct api_str tok_d = { "NextToken", "nextToken", 0, 0,
	    1024, NULL, NULL, NULL };
	const char *tok;
	int64_t n;

	api_v_int(v, in, "MaxResults", "maxResults", 0, 1, 50, 50, &n);
	*limit = (int)n;
	*offset = 0;
	tok = api_v_str(v, in, &tok_d);
	if (tok != NULL && api_token_decode(tok, offset) != 0)
		return api_error_set(err, 400, "InvalidNextToken",
		    "The specified token isn't valid.");
	return 0;
}

int
api_documents_list(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	static const char *const legacy_keys[] = { "Name", "Owner",
	    "PlatformTypes", "DocumentType", NULL };
	static const struct api_str lkey_d = { NULL, NULL, 1, 0, 0, NULL,
	    NULL, legacy_keys };
	static const struct api_str lval_d = { NULL, NULL, 1, 1, 0, NULL,
	    NULL, NULL };
	static const struct api_str key_d = { NULL, NULL, 1, 1, 128, NULL,
	    NULL, NULL };
	json_t *legacy, *filters, *f, *vals, *one[DOC_MAX_FILTERS];
	const char *k, *val;
	struct doc_list *l;
	struct api_v v;
	char p[96], vp[96];
	size_t i, nl = 0;
	int rc;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return api_error_internal(err, "list_documents", PH_ERR_NOMEM);
	l->c = c;
	api_v_init(&v);
	legacy = api_v_list(&v, in, "DocumentFilterList",
	    "documentFilterList", 0, 1, 0);
	filters = api_v_list(&v, in, "Filters", "filters", 0, 0, 6);
	if ((rc = doc_paging(&v, in, &l->limit, &l->offset, err)) != 0)
		goto out;
	json_array_foreach(legacy, i, f) {
		snprintf(p, sizeof(p), "documentFilterList.%zu.member", i + 1);
		if (!json_is_object(f)) {
			api_v_type(&v, p, "a structure");
			break;
		}
		snprintf(p, sizeof(p), "documentFilterList.%zu.member.key",
		    i + 1);
		api_v_str_value(&v, json_object_get(f, "key"), p, &lkey_d, &k);
		snprintf(p, sizeof(p), "documentFilterList.%zu.member.value",
		    i + 1);
		api_v_str_value(&v, json_object_get(f, "value"), p, &lval_d,
		    &val);
		if (k == NULL || val == NULL || v.nerr || v.serial)
			continue;
		if (nl >= DOC_MAX_FILTERS) {
			rc = api_error_set(err, 400, "ValidationException",
			    "Too many filters: at most %d.", DOC_MAX_FILTERS);
			goto out;
		}
		/* A one-value list, kept alive until the listing is done. */
		one[nl] = json_pack("[s]", val);
		if ((rc = doc_add_filter(l, k, one[nl++], err)) != 0)
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
		vals = api_v_list(&v, f, "Values", vp, 0, 0, 0);
		if (k == NULL || v.nerr || v.serial ||
		    (vals != NULL && !doc_string_list(&v, vals, vp, 256)))
			continue;
		if (vals == NULL && strncmp(k, "tag:", 4) != 0) {
			api_v_fail(&v, vp, NULL, "Member must not be null");
			continue;
		}
		if ((rc = doc_add_filter(l, k, vals, err)) != 0)
			goto out;
	}
	if ((rc = api_v_finish(&v, err)) != 0)
		goto out;
	if ((rc = api_authorize(c, "ssm:ListDocuments", "*", err)) != 0)
		goto out;
	l->list = json_array();
	json_object_set_new(out, "DocumentIdentifiers", l->list);
	if ((rc = store_document_foreach(c->srv->store, doc_list_cb,
	    l)) != 0) {
		rc = api_error_internal(err, "list_documents", rc);
		goto out;
	}
	if (l->more) {
		char tok[32];

		api_token_encode(l->offset + l->limit, tok);
		doc_set_str(out, "NextToken", tok);
	}
out:
	for (i = 0; i < nl; i++)
		json_decref(one[i]);
	free(l);
	return rc;
}

/* ---- ListDocumentVersions ----------------------------------------------- */

struct doc_versions {
	int offset, limit, seen, more;
	json_t *list;
};

static int
doc_versions_cb(void *arg, const struct document_rec *d)
{
	struct doc_versions *x = arg;
	json_t *o;

	if (x->seen++ < x->offset)
		return 0;
	if ((int)json_array_size(x->list) >= x->limit) {
		x->more = 1;
		return 1;
	}
	o = json_object();
	doc_set_str(o, "Name", d->name);
	doc_set_opt_str(o, "DisplayName", d->display_name);
	doc_set_version(o, "DocumentVersion", d->version);
	doc_set_opt_str(o, "VersionName", d->version_name);
	json_object_set_new(o, "CreatedDate", api_json_time(d->created_ms));
	json_object_set_new(o, "IsDefaultVersion",
	    json_boolean(d->version == d->default_version));
	doc_set_str(o, "DocumentFormat", d->document_format);
	doc_set_str(o, "Status", "Active");
	json_array_append_new(x->list, o);
	return 0;
}

int
api_documents_list_versions(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err)
{
	struct doc_versions x;
	const char *name;
	char arn[300];
	struct api_v v;
	int rc;

	memset(&x, 0, sizeof(x));
	api_v_init(&v);
	name = api_v_str(&v, in, &arn_d);
	if ((rc = doc_paging(&v, in, &x.limit, &x.offset, err)) != 0)
		return rc;
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	name = doc_name_of(name);
	doc_arn(c, name, arn, sizeof(arn));
	if ((rc = api_authorize(c, "ssm:ListDocumentVersions", arn, err)) != 0)
		return rc;
	x.list = json_array();
	json_object_set_new(out, "DocumentVersions", x.list);
	rc = store_document_version_foreach(c->srv->store, name,
	    doc_versions_cb, &x);
	if (rc == PH_ERR_NOTFOUND)
		return doc_not_found(err, name);
	if (rc != 0)
		return api_error_internal(err, "list_document_versions", rc);
	if (x.more) {
		char tok[32];

		api_token_encode(x.offset + x.limit, tok);
		doc_set_str(out, "NextToken", tok);
	}
	return 0;
}

/* ---- UpdateDocumentDefaultVersion, DeleteDocument ------------------------ */

int
api_documents_update_default_version(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err)
{
	static const struct api_str ver_d = { "DocumentVersion",
	    "documentVersion", 1, 1, 12, doc_pat_version_number,
	    "(^[1-9][0-9]*$)", NULL };
	struct document_rec d;
	const char *name, *ver;
	char arn[300];
	struct api_v v;
	json_t *o;
	int rc;

	api_v_init(&v);
	name = api_v_str(&v, in, &name_d);
	ver = api_v_str(&v, in, &ver_d);
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	doc_arn(c, name, arn, sizeof(arn));
	if ((rc = api_authorize(c, "ssm:UpdateDocumentDefaultVersion", arn,
	    err)) != 0)
		return rc;
	if (doc_amazon_owned(name) && store_document_version_get(
	    c->srv->store, name, STORE_DOC_DEFAULT, NULL, &d) == 0) {
		store_document_rec_clear(&d);
		return api_error_set(err, 400, "InvalidDocument",
		    "Document %s is owned by Amazon; its default version "
		    "cannot be changed.", name);
	}
	rc = store_document_set_default(c->srv->store, name,
	    doc_version_arg(ver, 0));
	if (rc == PH_ERR_NOTFOUND)
		return doc_not_found(err, name);
	if (rc == PH_ERR_INVALID)
		return doc_bad_version(err, name, ver);
	if (rc != 0 || (rc = store_document_version_get(c->srv->store, name,
	    STORE_DOC_DEFAULT, NULL, &d)) != 0)
		return api_error_internal(err, "update_default_version", rc);
	log_info("event=document_default document=%s version=%s by=%s", name,
	    ver, c->principal != NULL ? c->principal->arn : "-");
	o = json_object();
	doc_set_str(o, "Name", d.name);
	doc_set_version(o, "DefaultVersion", d.version);
	doc_set_opt_str(o, "DefaultVersionName", d.version_name);
	json_object_set_new(out, "Description", o);
	store_document_rec_clear(&d);
	return 0;
}

int
api_documents_delete(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err)
{
	struct document_rec d;
	const char *name, *ver, *vname;
	char arn[300];
	struct api_v v;
	json_t *force;
	int64_t version = 0;
	int rc;

	(void)out;
	memset(&d, 0, sizeof(d));
	api_v_init(&v);
	name = api_v_str(&v, in, &name_d);
	ver = api_v_str(&v, in, &version_d);
	vname = api_v_str(&v, in, &version_name_d);
	force = json_object_get(in, "Force");
	if (force != NULL && !json_is_boolean(force) && !json_is_null(force))
		api_v_type(&v, "force", "a boolean");
	if ((rc = api_v_finish(&v, err)) != 0)
		return rc;
	doc_arn(c, name, arn, sizeof(arn));
	if ((rc = api_authorize(c, "ssm:DeleteDocument", arn, err)) != 0)
		return rc;
	/* The version named by DocumentVersion and/or VersionName. */
	rc = store_document_version_get(c->srv->store, name,
	    doc_version_arg(ver, STORE_DOC_DEFAULT), vname, &d);
	if (rc == PH_ERR_NOTFOUND)
		return doc_not_found(err, name);
	if (rc == PH_ERR_INVALID)
		return doc_bad_version(err, name, ver);
	if (rc != 0)
		return api_error_internal(err, "delete_document", rc);
	if (doc_amazon_owned(name)) {
		rc = api_error_set(err, 400, "InvalidDocumentOperation",
		    "Document %s is owned by Amazon and cannot be deleted.",
		    name);
		goto out;
	}
	if (ver != NULL || vname != NULL)
		version = d.version;
	rc = store_document_delete(c->srv->store, name, version);
	if (rc == PH_ERR_STATE) {
		rc = api_error_set(err, 400, "InvalidDocumentOperation",
		    "Version %" PRId64 " is the default version of %s and "
		    "cannot be deleted; make another version the default "
		    "first, or delete the whole document.", version, name);
		goto out;
	}
	if (rc != 0) {
		rc = api_error_internal(err, "delete_document", rc);
		goto out;
	}
	log_info("event=document_deleted document=%s version=%" PRId64
	    " by=%s", name, version,
	    c->principal != NULL ? c->principal->arn : "-");
out:
	store_document_rec_clear(&d);
	return rc;
}

/* ---- sessions ----------------------------------------------------------- */

/* The agent reads the minute inputs as strings. */
static void
doc_minutes_as_string(json_t *inputs, const char *key)
{
	json_t *v = json_object_get(inputs, key);
	char s[24];

	if (!json_is_integer(v))
		return;
	snprintf(s, sizeof(s), "%" JSON_INTEGER_FORMAT,
	    json_integer_value(v));
	json_object_set_new(inputs, key, json_string(s));
}

int
api_documents_apply_preferences(const struct api_call *c,
    const char *document_name, json_t *doc, struct api_error *err)
{
	struct document_rec prefs;
	json_t *root = NULL, *pin, *din, *x, *mine;
	const char *key;
	int rc;

	if (!json_is_object(doc))
		return 0;
	din = json_object_get(doc, "inputs");
	if (din != NULL && !json_is_object(din))
		return api_error_set(err, 400, "InvalidDocument",
		    "Document %s is not valid: its inputs are not an object.",
		    document_name);
	if (din == NULL) {
		if ((din = json_object()) == NULL ||
		    json_object_set_new(doc, "inputs", din) != 0)
			return api_error_internal(err, "start_session",
			    PH_ERR_NOMEM);
	}
	if (strcmp(document_name, API_DOCUMENTS_PREFS) != 0) {
		rc = store_document_version_get(c->srv->store,
		    API_DOCUMENTS_PREFS, STORE_DOC_DEFAULT, NULL, &prefs);
		if (rc != 0 && rc != PH_ERR_NOTFOUND)
			return api_error_internal(err, "start_session", rc);
		if (rc == 0) {
			root = json_loads(prefs.content, 0, NULL);
			store_document_rec_clear(&prefs);
		}
		pin = json_object_get(root, "inputs");
		/* An input the document leaves out or empty ("") takes the
		 * account's preference; anything it sets wins. */
		json_object_foreach(pin, key, x) {
			mine = json_object_get(din, key);
			if (mine != NULL && !(json_is_string(mine) &&
			    json_string_length(mine) == 0))
				continue;
			if (json_object_set_new(din, key,
			    json_deep_copy(x)) != 0) {
				json_decref(root);
				return api_error_internal(err, "start_session",
				    PH_ERR_NOMEM);
			}
		}
		json_decref(root);
	}
	doc_minutes_as_string(din, "idleSessionTimeout");
	doc_minutes_as_string(din, "maxSessionDuration");
	return 0;
}

int
api_documents_version_cmp(const char *a, const char *b)
{
	unsigned long x, y;
	char *end;
	int i;

	/* At most 8 parts: versions have 4. */
	for (i = 0; i < 8 && (*a != '\0' || *b != '\0'); i++) {
		x = isdigit((unsigned char)*a) ? strtoul(a, &end, 10) : 0;
		a = isdigit((unsigned char)*a) ? end : a;
		y = isdigit((unsigned char)*b) ? strtoul(b, &end, 10) : 0;
		b = isdigit((unsigned char)*b) ? end : b;
		if (x != y)
			return x < y ? -1 : 1;
		while (*a != '\0' && *a != '.')
			a++;
		while (*b != '\0' && *b != '.')
			b++;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
	}
	return 0;
}

int
api_documents_check_target(const struct api_call *c, const char *target,
    json_t *doc, struct api_error *err)
{
	struct instance_rec *in;
	const char *kms, *st;
	int rc;

	kms = json_string_value(json_object_get(json_object_get(doc,
	    "inputs"), "kmsKeyId"));
	st = json_string_value(json_object_get(doc, "sessionType"));
	/* The agent never encrypts port sessions (spec 9.1). */
	if (kms == NULL || kms[0] == '\0' ||
	    (st != NULL && strcmp(st, "Port") == 0))
		return 0;
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return api_error_internal(err, "start_session", PH_ERR_NOMEM);
	rc = store_instance_get(c->srv->store, target, in);
	if (rc == 0 && in->agent_version[0] != '\0' &&
	    api_documents_version_cmp(in->agent_version,
	    API_DOCUMENTS_KMS_MIN_AGENT) < 0) {
		log_info("event=session_refused target=%s reason=kms_agent "
		    "agent_version=%s", target, in->agent_version);
		rc = api_error_set(err, 400, "InvalidDocument",
		    "The Session Manager preferences encrypt sessions with "
		    "KMS key %.100s, but the SSM Agent on %s is version %s: "
		    "KMS encryption needs SSM Agent version %s or later. "
		    "Update the agent on the target.", kms, target,
		    in->agent_version, API_DOCUMENTS_KMS_MIN_AGENT);
	} else {
		rc = 0;
	}
	free(in);
	return rc;
}
