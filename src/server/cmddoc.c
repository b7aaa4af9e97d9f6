/* cmddoc: Command documents for SendCommand. The document is read from
 * the store at the version asked for, parsed from JSON or YAML, and the
 * caller's Parameters are checked against its definitions the way AWS
 * does (names, required values, types, allowedValues, allowedPattern as
 * a whole-value match) before the content is rendered for the agents. */
#include "server/cmddoc.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/docparams.h"
#include "common/err.h"
#include "server/api_documents.h"
#include "server/api_json.h"
#include "server/docyaml.h"
#include "server/store.h"

/* A rendered document may grow past the stored one's 64 KB, but not by
 * much: agent_job frames carry it whole. */
#define CMDDOC_RENDER_MAX ((size_t)1024 * 1024)
#define CMDDOC_PATTERN_MAX 1024
/* glibc's regcomp expands bounded repetitions and regexec's time grows
 * with the expanded size times the value's length: a pattern may expand
 * to at most this many atoms, and values matched against one are at most
 * CMDDOC_MATCH_MAX bytes (tens of milliseconds at worst). */
#define CMDDOC_PATTERN_COST 1000
#define CMDDOC_PATTERN_DEPTH 32
#define CMDDOC_MATCH_MAX 4096
#define CMDDOC_VALUE_MAX ((size_t)64 * 1024)

/* ---- platforms ---------------------------------------------------------- */

static const struct {
	const char *action;
	int windows, linux_, macos;
} plugins[] = {
	{ "aws:runShellScript", 0, 1, 1 },
	{ "aws:runPowerShellScript", 1, 1, 0 },
	{ "aws:updateSsmAgent", 1, 1, 1 },
};

int
cmddoc_plugin_runs_on(const char *action, const char *platform_type)
{
	size_t i;

	if (action == NULL || platform_type == NULL)
		return 0;
	for (i = 0; i < sizeof(plugins) / sizeof(plugins[0]); i++) {
		if (strcmp(plugins[i].action, action) != 0)
			continue;
		if (strcmp(platform_type, "Windows") == 0)
			return plugins[i].windows;
		if (strcmp(platform_type, "Linux") == 0)
			return plugins[i].linux_;
		if (strcmp(platform_type, "MacOS") == 0)
			return plugins[i].macos;
		return 0;
	}
	return 0;
}

/* A 2.x step's precondition: absent, or {"StringEquals": ["platformType",
 * P]} naming the platform. */
static int
cmddoc_precondition_allows(json_t *pre, const char *platform_type)
{
	json_t *eq;
	const char *k, *v;

	if (pre == NULL)
		return 1;
	eq = json_object_get(pre, "StringEquals");
	if (!json_is_array(eq) || json_array_size(eq) != 2)
		return 0;
	k = json_string_value(json_array_get(eq, 0));
	v = json_string_value(json_array_get(eq, 1));
	return k != NULL && v != NULL && strcmp(k, "platformType") == 0 &&
	    strcmp(v, platform_type) == 0;
}

int
cmddoc_content_runs_on(json_t *content, const char *platform_type)
{
	const char *action;
	json_t *steps, *step;
	size_t i;

	steps = json_object_get(content, "mainSteps");
	if (json_is_array(steps)) {
		json_array_foreach(steps, i, step) {
			action = json_string_value(json_object_get(step,
			    "action"));
			if (cmddoc_plugin_runs_on(action, platform_type) &&
			    cmddoc_precondition_allows(json_object_get(step,
			    "precondition"), platform_type))
				return 1;
		}
		return 0;
	}
	/* Schema 1.2: runtimeConfig's keys are the plugins. */
	json_object_foreach(json_object_get(content, "runtimeConfig"), action,
	    step)
		if (cmddoc_plugin_runs_on(action, platform_type))
			return 1;
	return 0;
}

int
cmddoc_runs_on(const struct cmddoc *d, const char *platform_type)
{
	return cmddoc_content_runs_on(d->content, platform_type);
}

/* ---- loading ------------------------------------------------------------ */

json_t *
cmddoc_parse(const char *format, const char *content, size_t len,
    char *why, size_t whysz)
{
	json_error_t jerr;
	json_t *root;

	if (format != NULL && strcmp(format, "YAML") == 0)
		return docyaml_load(content, len, why, whysz);
	root = json_loadb(content, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		snprintf(why, whysz, "%s (line %d, column %d)", jerr.text,
		    jerr.line, jerr.column);
	return root;
}

static void
cmddoc_sha256_hex(const char *s, char out[65])
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

/* DocumentVersion: NULL, $DEFAULT, $LATEST or a number from 1; -2 if it
 * is none of those. */
static int64_t
cmddoc_version_arg(const char *s)
{
	long long v;
	char *end;

	if (s == NULL || strcmp(s, "$DEFAULT") == 0)
		return STORE_DOC_DEFAULT;
	if (strcmp(s, "$LATEST") == 0)
		return STORE_DOC_LATEST;
	if (s[0] < '1' || s[0] > '9' || strlen(s) > 8)
		return -2;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -2;
	return (int64_t)v;
}

int
cmddoc_load(const struct api_call *c, const char *name, const char *version,
    struct cmddoc *out, struct api_error *err)
{
	struct document_rec rec;
	const char *p;
	char why[160];
	int64_t ver;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&rec, 0, sizeof(rec));
	if (name != NULL && strncmp(name, "arn:", 4) == 0) {
		p = strstr(name, ":document/");
		name = p != NULL ? p + 10 : "";
	}
	if (name == NULL || name[0] == '\0' ||
	    strlen(name) >= sizeof(out->name))
		return api_error_set(err, 400, "InvalidDocument",
		    "Document %.128s does not exist.",
		    name != NULL && name[0] != '\0' ? name : "(empty)");
	if ((ver = cmddoc_version_arg(version)) == -2)
		return api_error_set(err, 400, "InvalidDocumentVersion",
		    "Document version %.32s is not valid; use a version "
		    "number, $DEFAULT or $LATEST.", version);
	rc = store_document_version_get(c->srv->store, name, ver, NULL, &rec);
	if (rc == PH_ERR_NOTFOUND)
		return api_error_set(err, 400, "InvalidDocument",
		    "Document %s does not exist.", name);
	if (rc == PH_ERR_INVALID)
		return api_error_set(err, 400, "InvalidDocumentVersion",
		    "Document version %.32s of %s does not exist.",
		    version != NULL ? version : "$DEFAULT", name);
	if (rc != 0)
		return api_error_internal(err, "cmddoc_load", rc);
	if (strcmp(rec.document_type, "Command") != 0) {
		rc = api_error_set(err, 400, "InvalidDocument",
		    "Document %s is a %s document; SendCommand runs Command "
		    "documents.", name, rec.document_type);
		goto out;
	}
	out->content = cmddoc_parse(rec.document_format, rec.content,
	    strlen(rec.content), why, sizeof(why));
	if (!json_is_object(out->content)) {
		json_decref(out->content);
		out->content = NULL;
		rc = api_error_set(err, 400, "InvalidDocument",
		    "Document %s version %" PRId64 " cannot be read.", name,
		    rec.version);
		goto out;
	}
	snprintf(out->name, sizeof(out->name), "%s", rec.name);
	snprintf(out->version, sizeof(out->version), "%" PRId64, rec.version);
	cmddoc_sha256_hex(rec.content, out->hash);
	rc = 0;
out:
	store_document_rec_clear(&rec);
	return rc;
}

void
cmddoc_clear(struct cmddoc *d)
{
	if (d == NULL)
		return;
	json_decref(d->content);
	d->content = NULL;
}

/* ---- parameters --------------------------------------------------------- */

static const char *
cmddoc_ptype(json_t *def)
{
	const char *t = json_string_value(json_object_get(def, "type"));

	return t != NULL ? t : "String";
}

/* A default (any JSON) as the list of strings SendCommand would give. */
static json_t *
cmddoc_default_list(json_t *dv)
{
	json_t *l = json_array(), *x;
	char *s;
	size_t i;

	if (l == NULL)
		return NULL;
	if (json_is_array(dv)) {
		json_array_foreach(dv, i, x) {
			if (json_is_string(x)) {
				json_array_append(l, x);
				continue;
			}
			if ((s = json_dumps(x, JSON_COMPACT |
			    JSON_ENCODE_ANY)) == NULL)
				goto fail;
			json_array_append_new(l, json_string(s));
			free(s);
		}
		return l;
	}
	if (json_is_string(dv)) {
		json_array_append(l, dv);
		return l;
	}
	if ((s = json_dumps(dv, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		goto fail;
	json_array_append_new(l, json_string(s));
	free(s);
	return l;
fail:
	json_decref(l);
	return NULL;
}

static int
cmddoc_bad(struct api_error *err, const char *fmt, const char *name,
    const char *extra)
{
	char msg[400];

	snprintf(msg, sizeof(msg), fmt, name, extra != NULL ? extra : "");
	return api_error_set(err, 400, "InvalidParameters", "%s", msg);
}

/* A {m}, {m,} or {m,n} bound at p ('{'): its largest count and *end at
 * its '}', or 0 if p does not start one (then '{' is a literal). */
static size_t
cmddoc_bound(const char *p, const char **end)
{
	unsigned long m, n;
	char *e;

	if (!isdigit((unsigned char)p[1]))
		return 0;
	m = strtoul(p + 1, &e, 10);
	n = m;
	if (*e == ',') {
		if (isdigit((unsigned char)e[1]))
			n = strtoul(e + 1, &e, 10);
		else {
			n = m + 1;
			e++;
		}
	}
	if (*e != '}')
		return 0;
	*end = e;
	if (m > 255 || n > 255)
		return (size_t)CMDDOC_PATTERN_COST + 1;
	return n > m ? n : (m > 0 ? m : 1);
}

/* Estimate the size glibc expands the pattern to: groups nest, and a
 * bound multiplies the atom or group before it. */
static int
cmddoc_pattern_cost_ok(const char *p)
{
	size_t stack[CMDDOC_PATTERN_DEPTH], depth = 0, cur = 0, last = 0, b;
	const char *end, *q;

	for (; *p != '\0'; p++) {
		switch (*p) {
		case '(':
			if (depth == CMDDOC_PATTERN_DEPTH)
				return 0;
			stack[depth++] = cur;
			cur = last = 0;
			break;
		case ')':
			if (depth == 0) {
				cur++;
				last = 1;
				break;
			}
			last = cur > 0 ? cur : 1;
			cur = stack[--depth] + last;
			break;
		case '{':
			if ((b = cmddoc_bound(p, &end)) == 0) {
				cur++;
				last = 1;
				break;
			}
			if (b > CMDDOC_PATTERN_COST)
				return 0;
			cur += last * (b - 1);
			last *= b;
			p = end;
			break;
		case '[':
			q = p + 1;
			if (*q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q != '\0' && *q != ']')
				q++;
			if (*q == '\0')
				return 1;         /* regcomp refuses it */
			p = q;
			cur++;
			last = 1;
			break;
		case '\\':
			if (p[1] != '\0')
				p++;
			cur++;
			last = 1;
			break;
		case '+':
			/* a+ compiles as a a*: the atom twice. */
			cur += last;
			last *= 2;
			break;
		case '*':
		case '?':
			break;
		case '|':
			last = 0;
			break;
		default:
			cur++;
			last = 1;
			break;
		}
		if (cur > CMDDOC_PATTERN_COST || last > CMDDOC_PATTERN_COST)
			return 0;
	}
	return 1;
}

int
cmddoc_pattern_ok(const char *pattern)
{
	regex_t re;

	if (pattern == NULL || strlen(pattern) > CMDDOC_PATTERN_MAX ||
	    !cmddoc_pattern_cost_ok(pattern) ||
	    regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	regfree(&re);
	return 1;
}

/* Does the whole value match the pattern (AWS anchors allowedPattern to
 * the value)? -1 if the pattern does not compile (or is too costly), -2
 * if the value is too long to match. */
static int
cmddoc_match(const char *pattern, const char *value)
{
	regmatch_t m[1];
	regex_t re;
	int ok;

	if (strlen(pattern) > CMDDOC_PATTERN_MAX ||
	    !cmddoc_pattern_cost_ok(pattern))
		return -1;
	if (strlen(value) > CMDDOC_MATCH_MAX)
		return -2;
	if (regcomp(&re, pattern, REG_EXTENDED) != 0)
		return -1;
	ok = regexec(&re, value, 1, m, 0) == 0 && m[0].rm_so == 0 &&
	    (size_t)m[0].rm_eo == strlen(value);
	regfree(&re);
	return ok;
}

static int
cmddoc_is_int(const char *s)
{
	long long v;
	char *end;

	if (*s == '\0')
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	(void)v;
	return errno == 0 && *end == '\0' && strspn(s, "-0123456789") ==
	    strlen(s);
}

static int
cmddoc_is_json(const char *s, int want_object)
{
	json_t *v = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
	json_t *x;
	size_t i;
	int ok;

	if (want_object)
		ok = json_is_object(v);
	else {
		ok = json_is_object(v);
		if (json_is_array(v)) {
			ok = 1;
			json_array_foreach(v, i, x)
				if (!json_is_object(x))
					ok = 0;
		}
	}
	json_decref(v);
	return ok;
}

/* One parameter's values (a list of strings) against its definition. */
static int
cmddoc_check_values(const char *name, json_t *def, json_t *vals,
    struct api_error *err)
{
	const char *type = cmddoc_ptype(def), *s, *pat;
	json_t *allowed, *x, *a, *mn, *mx;
	size_t i, j, n = json_array_size(vals);
	int hit, m;

	if (strcmp(type, "StringList") != 0 && strcmp(type, "MapList") != 0 &&
	    n != 1)
		return cmddoc_bad(err, "Parameter %s takes exactly one value "
		    "(type %s).", name, type);
	mn = json_object_get(def, "minItems");
	mx = json_object_get(def, "maxItems");
	if (json_is_integer(mn) && (json_int_t)n < json_integer_value(mn))
		return cmddoc_bad(err, "Parameter %s needs more values "
		    "(minItems).%s", name, NULL);
	if (json_is_integer(mx) && (json_int_t)n > json_integer_value(mx))
		return cmddoc_bad(err, "Parameter %s has too many values "
		    "(maxItems).%s", name, NULL);
	allowed = json_object_get(def, "allowedValues");
	pat = json_string_value(json_object_get(def, "allowedPattern"));
	json_array_foreach(vals, i, x) {
		if (!json_is_string(x) ||
		    strlen(json_string_value(x)) != json_string_length(x))
			return cmddoc_bad(err, "Parameter %s: every value must "
			    "be a string.%s", name, NULL);
		s = json_string_value(x);
		if (json_string_length(x) > CMDDOC_VALUE_MAX)
			return cmddoc_bad(err, "Parameter %s: a value is too "
			    "long.%s", name, NULL);
		mn = json_object_get(def, "minChars");
		mx = json_object_get(def, "maxChars");
		if ((json_is_integer(mn) && (json_int_t)strlen(s) <
		    json_integer_value(mn)) || (json_is_integer(mx) &&
		    (json_int_t)strlen(s) > json_integer_value(mx)))
			return cmddoc_bad(err, "Parameter %s: a value's length "
			    "is out of range (minChars, maxChars).%s", name,
			    NULL);
		if (strcmp(type, "Integer") == 0 && !cmddoc_is_int(s))
			return cmddoc_bad(err, "Parameter %s must be an "
			    "integer, not '%.64s'.", name, s);
		if (strcmp(type, "Boolean") == 0 && strcmp(s, "true") != 0 &&
		    strcmp(s, "false") != 0)
			return cmddoc_bad(err, "Parameter %s must be true or "
			    "false, not '%.64s'.", name, s);
		if (strcmp(type, "StringMap") == 0 && !cmddoc_is_json(s, 1))
			return cmddoc_bad(err, "Parameter %s must be a JSON "
			    "object (StringMap).%s", name, NULL);
		if (strcmp(type, "MapList") == 0 && !cmddoc_is_json(s, 0))
			return cmddoc_bad(err, "Parameter %s must hold JSON "
			    "objects (MapList).%s", name, NULL);
		if (json_is_array(allowed)) {
			hit = 0;
			json_array_foreach(allowed, j, a) {
				char *t = json_is_string(a) ? NULL :
				    json_dumps(a, JSON_ENCODE_ANY);
				const char *as = json_is_string(a) ?
				    json_string_value(a) : t;

				if (as != NULL && strcmp(as, s) == 0)
					hit = 1;
				free(t);
				if (hit)
					break;
			}
			if (!hit)
				return cmddoc_bad(err, "Parameter %s: '%.64s' "
				    "is not one of its allowedValues.", name,
				    s);
		}
		if (pat != NULL) {
			if ((m = cmddoc_match(pat, s)) == -2)
				return cmddoc_bad(err, "Parameter %s: a value "
				    "checked against an allowedPattern is at "
				    "most 4096 bytes.%s", name, NULL);
			if (m < 0)
				return cmddoc_bad(err, "Parameter %s has an "
				    "allowedPattern that does not compile.%s",
				    name, NULL);
			if (m == 0)
				return cmddoc_bad(err, "Parameter %s: "
				    "'%.64s' does not match its "
				    "allowedPattern.", name, s);
		}
	}
	return 0;
}

int
cmddoc_resolve_params(const struct cmddoc *d, json_t *given,
    json_t **resolved, struct api_error *err)
{
	json_t *defs, *def, *vals, *out;
	const char *name;
	int rc;

	*resolved = NULL;
	if (given != NULL && !json_is_object(given) && !json_is_null(given))
		return api_error_set(err, 400, "InvalidParameters",
		    "Parameters must map names to lists of strings.");
	defs = json_object_get(d->content, "parameters");
	if (defs != NULL && !json_is_object(defs))
		defs = NULL;
	json_object_foreach(given, name, vals) {
		if (json_object_get(defs, name) == NULL)
			return cmddoc_bad(err, "Parameter %.128s is not "
			    "defined by the document.%s", name, NULL);
		if (!json_is_array(vals))
			return cmddoc_bad(err, "Parameter %.128s must be a list "
			    "of strings.%s", name, NULL);
	}
	if ((out = json_object()) == NULL)
		return api_error_internal(err, "cmddoc_resolve", PH_ERR_NOMEM);
	json_object_foreach(defs, name, def) {
		vals = json_object_get(given, name);
		if (vals != NULL)
			json_incref(vals);
		else if (json_object_get(def, "default") != NULL) {
			vals = cmddoc_default_list(json_object_get(def,
			    "default"));
			if (vals == NULL) {
				rc = api_error_internal(err, "cmddoc_resolve",
				    PH_ERR_NOMEM);
				goto fail;
			}
			/* A default is the author's: not checked again. */
			json_object_set_new(out, name, vals);
			continue;
		} else {
			rc = cmddoc_bad(err, "Parameter %.128s is required: "
			    "it has no default value.%s", name, NULL);
			goto fail;
		}
		if ((rc = cmddoc_check_values(name, def, vals, err)) != 0) {
			json_decref(vals);
			goto fail;
		}
		json_object_set_new(out, name, vals);
	}
	*resolved = out;
	return 0;
fail:
	json_decref(out);
	return rc;
}

/* ---- rendering ---------------------------------------------------------- */

/* A resolved value (list of strings) as the document's type wants it. */
static json_t *
cmddoc_typed(json_t *def, json_t *vals)
{
	const char *type = cmddoc_ptype(def);
	const char *s = json_string_value(json_array_get(vals, 0));
	json_t *l, *x, *v;
	size_t i;

	if (strcmp(type, "StringList") == 0)
		return json_incref(vals);
	if (strcmp(type, "MapList") == 0) {
		if (json_array_size(vals) == 1 && s != NULL &&
		    (v = json_loads(s, 0, NULL)) != NULL) {
			if (json_is_array(v))
				return v;
			json_decref(v);
		}
		l = json_array();
		json_array_foreach(vals, i, x) {
			v = json_is_string(x) ? json_loads(json_string_value(x),
			    0, NULL) : NULL;
			json_array_append_new(l, v != NULL ? v :
			    json_incref(x));
		}
		return l;
	}
	if (s == NULL)
		return json_string("");
	if (strcmp(type, "Integer") == 0 && cmddoc_is_int(s))
		return json_integer(strtoll(s, NULL, 10));
	if (strcmp(type, "Boolean") == 0 && (strcmp(s, "true") == 0 ||
	    strcmp(s, "false") == 0))
		return json_boolean(strcmp(s, "true") == 0);
	if (strcmp(type, "StringMap") == 0 &&
	    (v = json_loads(s, 0, NULL)) != NULL) {
		if (json_is_object(v))
			return v;
		json_decref(v);
	}
	return json_string(s);
}

json_t *
cmddoc_render(const struct cmddoc *d, json_t *resolved)
{
	json_t *doc, *params, *defs, *vals;
	const char *name;

	if (d == NULL || d->content == NULL)
		return NULL;
	if ((doc = json_deep_copy(d->content)) == NULL ||
	    (params = json_object()) == NULL) {
		json_decref(doc);
		return NULL;
	}
	defs = json_object_get(d->content, "parameters");
	json_object_foreach(resolved, name, vals)
		json_object_set_new(params, name,
		    cmddoc_typed(json_object_get(defs, name), vals));
	if (docparams_substitute(doc, params, CMDDOC_RENDER_MAX) != 0) {
		json_decref(doc);
		doc = NULL;
	}
	json_decref(params);
	return doc;
}
