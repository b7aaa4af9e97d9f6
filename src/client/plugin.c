/* plugin: argv contract of session-manager-plugin (spec 1.2), the
 * StartSession response, and the `porthole` command line. */
#include "client/plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client/escape.h"
#include "common/err.h"

static const char *
plugin_env_default(const char *name, void *ud)
{
	(void)ud;
	return getenv(name);
}

static char *
plugin_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* A string field: present and a string of 1..max bytes without NULs or
 * control characters (they would end up in URLs, headers and on screen). */
static int
plugin_get_str(json_t *o, const char *key, size_t max, int required,
    char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	size_t n, i;

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		snprintf(err, errlen, "the response has no %s", key);
		return PH_ERR_INVALID;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s in the response is not a string",
		    key);
		return PH_ERR_INVALID;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0) {
		if (!required)
			return 0;
		snprintf(err, errlen, "%s in the response is empty", key);
		return PH_ERR_INVALID;
	}
	if (n > max) {
		snprintf(err, errlen,
		    "%s in the response is too long (%zu bytes)", key, n);
		return PH_ERR_TOOBIG;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(err, errlen,
			    "%s in the response contains control characters",
			    key);
			return PH_ERR_INVALID;
		}
	}
	*out = plugin_strndup(s, n);
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		return PH_ERR_NOMEM;
	}
	return 0;
}

void
client_start_response_free(struct client_start_response *resp)
{
	free(resp->session_id);
	free(resp->token);
	free(resp->stream_url);
	memset(resp, 0, sizeof(*resp));
}

int
client_start_response_parse(struct client_start_response *resp,
    const char *json, size_t n, int require_all, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *o = NULL;
	int rc;

	memset(resp, 0, sizeof(*resp));
	if (json == NULL || n == 0) {
		snprintf(err, errlen, "the start session response is empty");
		return PH_ERR_INVALID;
	}
	if (n > CLIENT_MAX_RESPONSE_JSON) {
		snprintf(err, errlen,
		    "the start session response is too large (%zu bytes)", n);
		return PH_ERR_TOOBIG;
	}
	o = json_loadb(json, n, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL) {
		snprintf(err, errlen,
		    "the start session response is not valid JSON: %s "
		    "(line %d, column %d)", jerr.text, jerr.line, jerr.column);
		rc = PH_ERR_INVALID;
		goto fail;
	}
	if (!json_is_object(o)) {
		snprintf(err, errlen,
		    "the start session response is not a JSON object");
		rc = PH_ERR_INVALID;
		goto fail;
	}
	if (require_all) {
		rc = plugin_get_str(o, "SessionId", CLIENT_MAX_SESSION_ID, 1,
		    &resp->session_id, err, errlen);
		if (rc != 0)
			goto fail;
		rc = plugin_get_str(o, "StreamUrl", CLIENT_MAX_URL, 1,
		    &resp->stream_url, err, errlen);
		if (rc != 0)
			goto fail;
	}
	rc = plugin_get_str(o, "TokenValue", CLIENT_MAX_TOKEN, require_all,
	    &resp->token, err, errlen);
	if (rc != 0)
		goto fail;
	json_decref(o);
	return 0;
fail:
	json_decref(o);
	client_start_response_free(resp);
	return rc;
}

/* argv5: the StartSession request parameters; only Target is used (spec
 * 1.2). The official plugin crashes without Target; we carry on with an
 * empty one (it matters only for KMS, which then fails cleanly). */
static int
plugin_parse_target(struct client_plugin_args *a, const char *s)
{
	json_error_t jerr;
	json_t *o, *t;
	size_t n = strlen(s);

	if (n == 0)
		goto empty;
	if (n > CLIENT_MAX_RESPONSE_JSON) {
		snprintf(a->err, sizeof(a->err),
		    "the request parameters are too large (%zu bytes)", n);
		return PH_ERR_TOOBIG;
	}
	o = json_loadb(s, n, 0, &jerr);
	if (o == NULL || !json_is_object(o)) {
		snprintf(a->err, sizeof(a->err),
		    "the request parameters are not a JSON object");
		json_decref(o);
		return PH_ERR_INVALID;
	}
	t = json_object_get(o, "Target");
	if (t != NULL && json_is_string(t) &&
	    json_string_length(t) <= CLIENT_MAX_SESSION_ID &&
	    strlen(json_string_value(t)) == json_string_length(t)) {
		a->target = plugin_strndup(json_string_value(t),
		    json_string_length(t));
		json_decref(o);
		if (a->target == NULL) {
			snprintf(a->err, sizeof(a->err), "out of memory");
			return PH_ERR_NOMEM;
		}
		return 0;
	}
	json_decref(o);
	if (t != NULL) {
		snprintf(a->err, sizeof(a->err),
		    "Target in the request parameters is not a valid string");
		return PH_ERR_INVALID;
	}
empty:
	a->target = plugin_strndup("", 0);
	if (a->target == NULL) {
		snprintf(a->err, sizeof(a->err), "out of memory");
		return PH_ERR_NOMEM;
	}
	return 0;
}

int
client_plugin_parse(struct client_plugin_args *a, int argc,
    char *const argv[], client_getenv_fn getenv_fn, void *ud)
{
	const char *resp;
	int rc;

	memset(a, 0, sizeof(*a));
	a->region = a->profile = a->endpoint = a->operation = "";
	if (getenv_fn == NULL)
		getenv_fn = plugin_env_default;
	if (argc <= 1) {
		a->action = CLIENT_PLUGIN_BANNER;
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		a->action = CLIENT_PLUGIN_VERSION;
		return 0;
	}
	if (argc < CLIENT_PLUGIN_LEGACY_ARGC) {
		a->action = CLIENT_PLUGIN_UNKNOWN_OP;
		a->unknown = argv[1];
		return 0;
	}
	a->legacy = argc == CLIENT_PLUGIN_LEGACY_ARGC;
	/* Absent trailing arguments are empty strings, extra ones ignored. */
	a->region = argv[2];
	a->operation = argv[3];
	if (argc > 4)
		a->profile = argv[4];
	if (argc > 6)
		a->endpoint = argv[6];
	if (strcmp(a->operation, "StartSession") != 0) {
		a->action = CLIENT_PLUGIN_INVALID_OP;
		return 0;
	}
	a->action = CLIENT_PLUGIN_FAIL;
	if (strncmp(argv[1], CLIENT_PLUGIN_ENV_PREFIX,
	    strlen(CLIENT_PLUGIN_ENV_PREFIX)) == 0) {
		a->response_env = argv[1];
		resp = getenv_fn(argv[1], ud);
		if (resp == NULL || *resp == '\0') {
			snprintf(a->err, sizeof(a->err),
			    "the environment variable %.64s is not set",
			    argv[1]);
			return PH_ERR_INVALID;
		}
	} else
		resp = argv[1];
	rc = client_start_response_parse(&a->resp, resp, strlen(resp), 1,
	    a->err, sizeof(a->err));
	if (rc != 0)
		return rc;
	rc = plugin_parse_target(a, argc > 5 ? argv[5] : "");
	if (rc != 0) {
		client_start_response_free(&a->resp);
		return rc;
	}
	a->action = CLIENT_PLUGIN_START;
	return 0;
}

void
client_plugin_args_free(struct client_plugin_args *a)
{
	client_start_response_free(&a->resp);
	free(a->target);
	a->target = NULL;
}

int
client_invoked_as_plugin(const char *argv0)
{
	const char *base;

	if (argv0 == NULL)
		return 0;
	base = strrchr(argv0, '/');
	base = base != NULL ? base + 1 : argv0;
	return strcmp(base, "session-manager-plugin") == 0;
}

/* ---- porthole command line ------------------------------------------- */

struct cli_opt {
	const char *name;
	size_t off;
};

static const struct cli_opt cli_opts[] = {
	{ "--target", offsetof(struct client_cli_args, target) },
	{ "--document-name", offsetof(struct client_cli_args, document_name) },
	{ "--parameters", offsetof(struct client_cli_args, parameters) },
	{ "--profile", offsetof(struct client_cli_args, profile) },
	{ "--region", offsetof(struct client_cli_args, region) },
	{ "--endpoint-url", offsetof(struct client_cli_args, endpoint_url) },
	{ "--keepalive", offsetof(struct client_cli_args, keepalive) },
	{ "--escape-char", offsetof(struct client_cli_args, escape_char) },
};

int
client_parse_keepalive(const char *s, int *seconds)
{
	long v = 0;
	size_t i;

	if (s == NULL || *s == '\0' || strlen(s) > 8)
		return PH_ERR_INVALID;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return PH_ERR_INVALID;
		v = v * 10 + (s[i] - '0');
	}
	if (v > CLIENT_KEEPALIVE_MAX)
		return PH_ERR_INVALID;
	*seconds = (int)v;
	return 0;
}

static int
cli_usage(struct client_cli_args *a, const char *fmt, const char *arg)
{
	a->action = CLIENT_CLI_USAGE;
	snprintf(a->err, sizeof(a->err), fmt, arg);
	return PH_ERR_INVALID;
}

int
client_cli_parse(struct client_cli_args *a, int argc, char *const argv[])
{
	const char **slot;
	const char *arg, *eq, *val;
	size_t i, nlen;
	int k;

	memset(a, 0, sizeof(*a));
	if (argc < 2)
		return cli_usage(a, "%sno command given", "");
	if (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "version") == 0) {
		a->action = CLIENT_CLI_VERSION;
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		a->action = CLIENT_CLI_HELP;
		return 0;
	}
	if (strcmp(argv[1], "start-session") != 0)
		return cli_usage(a, "unknown command: %.64s", argv[1]);
	for (k = 2; k < argc; k++) {
		arg = argv[k];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			a->action = CLIENT_CLI_HELP;
			return 0;
		}
		eq = strchr(arg, '=');
		nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		slot = NULL;
		for (i = 0; i < sizeof(cli_opts) / sizeof(cli_opts[0]); i++) {
			if (strlen(cli_opts[i].name) == nlen &&
			    strncmp(cli_opts[i].name, arg, nlen) == 0) {
				slot = (const char **)(void *)((char *)a +
				    cli_opts[i].off);
				break;
			}
		}
		if (slot == NULL)
			return cli_usage(a, "unknown option: %.64s", arg);
		if (eq != NULL)
			val = eq + 1;
		else if (k + 1 < argc)
			val = argv[++k];
		else
			return cli_usage(a, "option %.64s needs a value", arg);
		*slot = val;
	}
	if (a->target == NULL || *a->target == '\0')
		return cli_usage(a, "%sstart-session needs --target", "");
	if (a->keepalive != NULL && client_parse_keepalive(a->keepalive,
	    &k) != 0)
		return cli_usage(a, "--keepalive wants a number of seconds "
		    "from 0 to 3600, not %.64s", a->keepalive);
	if (a->escape_char != NULL && client_escape_parse(a->escape_char,
	    &k) != 0)
		return cli_usage(a, "--escape-char wants one character, ^X or "
		    "none, not %.64s", a->escape_char);
	a->action = CLIENT_CLI_START_SESSION;
	return 0;
}

static void
cli_trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
	/* Optional quotes around a shorthand value. */
	if (*e - *s >= 2 && (**s == '"' || **s == '\'') && (*e)[-1] == **s) {
		(*s)++;
		(*e)--;
	}
}

/* Append the string [s, e) to list after trimming. */
static int
cli_list_add(json_t *list, const char *s, const char *e)
{
	json_t *v;

	cli_trim(&s, &e);
	v = json_stringn(s, (size_t)(e - s));
	if (v == NULL || json_array_append_new(list, v) != 0)
		return PH_ERR_INVALID;
	return 0;
}

/* CLI shorthand: Key=Value,Key2=[v1,v2]. */
static int
cli_parse_shorthand(const char *s, json_t *params, char *err, size_t errlen)
{
	const char *p = s, *item, *eq, *end, *v, *ve, *q, *qs;
	json_t *list;
	int depth;
	char key[128];

	while (*p != '\0') {
		item = p;
		depth = 0;
		while (*p != '\0' && (depth > 0 || *p != ',')) {
			if (*p == '[')
				depth++;
			else if (*p == ']' && depth > 0)
				depth--;
			p++;
		}
		end = p;
		if (*p == ',')
			p++;
		eq = memchr(item, '=', (size_t)(end - item));
		if (eq == NULL || eq == item ||
		    (size_t)(eq - item) >= sizeof(key)) {
			snprintf(err, errlen, "--parameters: expected "
			    "Key=Value or a JSON object");
			return PH_ERR_INVALID;
		}
		memcpy(key, item, (size_t)(eq - item));
		key[eq - item] = '\0';
		list = json_array();
		if (list == NULL)
			return PH_ERR_NOMEM;
		v = eq + 1;
		ve = end;
		cli_trim(&v, &ve);
		if (ve - v >= 2 && *v == '[' && ve[-1] == ']') {
			qs = v + 1;
			for (q = qs; q < ve - 1; q++) {
				if (*q == ',') {
					if (cli_list_add(list, qs, q) != 0)
						goto bad;
					qs = q + 1;
				}
			}
			if (q > qs && cli_list_add(list, qs, q) != 0)
				goto bad;
		} else if (cli_list_add(list, v, ve) != 0)
			goto bad;
		if (json_object_set_new(params, key, list) != 0) {
			snprintf(err, errlen, "--parameters: invalid key");
			return PH_ERR_INVALID;
		}
	}
	return 0;
bad:
	json_decref(list);
	snprintf(err, errlen, "--parameters: invalid value");
	return PH_ERR_INVALID;
}

int
client_cli_start_request(const struct client_cli_args *a, char **out,
    char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *req = NULL, *params = NULL;
	int rc = PH_ERR_NOMEM;

	*out = NULL;
	req = json_object();
	if (req == NULL)
		goto fail;
	if (json_object_set_new(req, "Target", json_string(a->target)) != 0) {
		snprintf(err, errlen, "--target is not valid UTF-8");
		rc = PH_ERR_INVALID;
		goto fail;
	}
	if (a->document_name != NULL && *a->document_name != '\0' &&
	    json_object_set_new(req, "DocumentName",
	    json_string(a->document_name)) != 0) {
		snprintf(err, errlen, "--document-name is not valid UTF-8");
		rc = PH_ERR_INVALID;
		goto fail;
	}
	if (a->parameters != NULL && *a->parameters != '\0') {
		const char *s = a->parameters;

		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (*s == '{') {
			params = json_loads(s, 0, &jerr);
			if (params == NULL || !json_is_object(params)) {
				snprintf(err, errlen, "--parameters is not a "
				    "valid JSON object: %s", params == NULL ?
				    jerr.text : "not an object");
				rc = PH_ERR_INVALID;
				goto fail;
			}
		} else {
			params = json_object();
			if (params == NULL)
				goto fail;
			rc = cli_parse_shorthand(s, params, err, errlen);
			if (rc != 0)
				goto fail;
		}
		if (json_object_set_new(req, "Parameters", params) != 0) {
			params = NULL;
			goto fail;
		}
		params = NULL; /* transferred */
	}
	*out = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (*out == NULL)
		goto fail;
	json_decref(req);
	return 0;
fail:
	if (rc == PH_ERR_NOMEM)
		snprintf(err, errlen, "out of memory");
	json_decref(params);
	json_decref(req);
	return rc;
}
