#include "agent/task.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/jsonci.h"
#include "common/buf.h"
#include "common/err.h"

const char *
agent_session_type_name(enum agent_session_type type)
{
	switch (type) {
	case AGENT_ST_STANDARD:
		return "Standard_Stream";
	case AGENT_ST_INTERACTIVE:
		return "InteractiveCommands";
	case AGENT_ST_NONINTERACTIVE:
		return "NonInteractiveCommands";
	case AGENT_ST_PORT:
		return "Port";
	}
	return "unknown";
}

static int
valid_id_chars(const char *s, size_t max)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++) {
		if (n >= max)
			return 0;
		if (!((s[n] >= 'a' && s[n] <= 'z') ||
		    (s[n] >= 'A' && s[n] <= 'Z') ||
		    (s[n] >= '0' && s[n] <= '9') ||
		    s[n] == '-' || s[n] == '_' || s[n] == '.'))
			return 0;
	}
	return n > 0;
}

int
agent_valid_session_id(const char *s)
{
	/* The id becomes a path component of the data-channel URL. */
	return s != NULL && valid_id_chars(s, AGENT_SESSION_ID_MAX) &&
	    strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

int
agent_valid_user_name(const char *s)
{
	return s != NULL && s[0] != '-' && s[0] != '.' &&
	    valid_id_chars(s, AGENT_USER_MAX);
}

static char *
dup_bounded(const char *s, size_t max)
{
	size_t n;
	char *d;

	n = strnlen(s, max + 1);
	if (n > max)
		return NULL;
	d = malloc(n + 1);
	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* The text a parameter value stands for in a command string. */
static int
param_text(struct buf *out, json_t *v)
{
	size_t i;
	json_t *e;
	char *s;
	int rc;

	if (json_is_string(v))
		return buf_append(out, json_string_value(v),
		    json_string_length(v));
	if (json_is_array(v)) {
		/* StartSession passes lists of strings: one command a line. */
		json_array_foreach(v, i, e) {
			if (i > 0 && (rc = buf_append_u8(out, '\n')) != 0)
				return rc;
			if ((rc = param_text(out, e)) != 0)
				return rc;
		}
		return 0;
	}
	if (json_is_null(v))
		return 0;
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s == NULL)
		return PH_ERR_NOMEM;
	rc = buf_append_str(out, s);
	free(s);
	return rc;
}

/* The value of parameter name: the task's Parameters, else the document's
 * default (spec 8.2). */
static json_t *
param_value(json_t *params, json_t *defs, const char *name, size_t len)
{
	char key[128];
	json_t *v;

	if (len == 0 || len >= sizeof(key))
		return NULL;
	memcpy(key, name, len);
	key[len] = '\0';
	if ((v = agent_json_get(params, key)) != NULL)
		return v;
	return agent_json_get(agent_json_get(defs, key), "default");
}

/* Replace {{ name }} references in s (spec 8.2); portholed normally
 * resolves them already, so unknown references are left as they are. */
static int
substitute(const char *s, json_t *params, json_t *defs, char **out)
{
	const char *p = s, *open, *close, *a, *b;
	struct buf o;
	json_t *v;
	int rc = 0;

	buf_init(&o, AGENT_COMMANDS_MAX);
	while ((open = strstr(p, "{{")) != NULL) {
		close = strstr(open + 2, "}}");
		if (close == NULL)
			break;
		a = open + 2;
		b = close;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if ((rc = buf_append(&o, p, (size_t)(open - p))) != 0)
			goto fail;
		v = param_value(params, defs, a, (size_t)(b - a));
		if (v != NULL)
			rc = param_text(&o, v);
		else
			rc = buf_append(&o, open, (size_t)(close + 2 - open));
		if (rc != 0)
			goto fail;
		p = close + 2;
	}
	if ((rc = buf_append_str(&o, p)) != 0)
		goto fail;
	*out = dup_bounded(buf_cstr(&o), AGENT_COMMANDS_MAX);
	if (*out == NULL)
		rc = PH_ERR_NOMEM;
fail:
	buf_free(&o);
	return rc;
}

/* properties.linux.commands: a string or a list of strings. */
static int
task_commands(struct agent_task *t, json_t *linux_props, json_t *params,
    json_t *defs, char *err, size_t errlen)
{
	json_t *v = agent_json_get(linux_props, "commands");
	struct buf tmp;
	int rc;

	if (json_is_array(v)) {
		buf_init(&tmp, AGENT_COMMANDS_MAX);
		rc = param_text(&tmp, v);
		if (rc == 0)
			rc = substitute(buf_cstr(&tmp), params, defs,
			    &t->commands);
		buf_free(&tmp);
	} else if (json_is_string(v)) {
		if (json_string_length(v) > AGENT_COMMANDS_MAX)
			rc = PH_ERR_TOOBIG;
		else
			rc = substitute(json_string_value(v), params, defs,
			    &t->commands);
	} else {
		ph_errf(err, errlen, "properties.linux.commands is missing");
		return PH_ERR_INVALID;
	}
	if (rc == PH_ERR_TOOBIG) {
		ph_errf(err, errlen, "the commands are longer than %zu bytes",
		    AGENT_COMMANDS_MAX);
		return rc;
	}
	if (rc != 0) {
		ph_errf(err, errlen, "cannot read the commands");
		return rc;
	}
	if (t->commands[strspn(t->commands, " \t\r\n")] == '\0') {
		/* spec 7.2: commands must be non-empty. */
		ph_errf(err, errlen, "the commands are empty");
		return PH_ERR_INVALID;
	}
	return 0;
}

int
agent_valid_port_host(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	for (n = 0; s[n] != '\0'; n++) {
		if (n >= AGENT_HOST_MAX)
			return 0;
		if (!((s[n] >= 'a' && s[n] <= 'z') ||
		    (s[n] >= 'A' && s[n] <= 'Z') ||
		    (s[n] >= '0' && s[n] <= '9') || s[n] == '.' ||
		    s[n] == '-' || s[n] == '_' || s[n] == ':' || s[n] == '%'))
			return 0;
	}
	return n > 0 && s[0] != '-';
}

/* A resolved property: strings have their {{ name }} references replaced
 * (spec 8.2); other JSON values stay as they are. */
static json_t *
port_prop(json_t *v, json_t *params, json_t *defs)
{
	char *text = NULL;
	json_t *r;

	if (!json_is_string(v))
		return json_deep_copy(v);
	if (json_string_length(v) > AGENT_PROPERTIES_MAX ||
	    substitute(json_string_value(v), params, defs, &text) != 0)
		return NULL;
	r = json_string(text);
	free(text);
	return r;
}

/* spec 7.4: portNumber is required, a decimal string (or a number) in
 * 1..65535. */
static int
port_number(json_t *v, unsigned *out)
{
	const char *s;
	unsigned long n = 0;
	size_t i;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 1 || json_integer_value(v) > 65535)
			return PH_ERR_INVALID;
		*out = (unsigned)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return PH_ERR_INVALID;
	s = json_string_value(v);
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return PH_ERR_INVALID;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || n < 1 || n > 65535)
		return PH_ERR_INVALID;
	*out = (unsigned)n;
	return 0;
}

/* Port properties (spec 7.4): portNumber, host, type; the resolved object
 * goes to the client in the handshake (it reads localPortNumber etc.). */
static int
task_port(struct agent_task *t, json_t *props, json_t *params, json_t *defs,
    char *err, size_t errlen)
{
	json_t *res = NULL, *v, *r;
	const char *key, *host, *type;
	int rc = PH_ERR_INVALID;

	if (!json_is_object(props)) {
		ph_errf(err, errlen, "the Port session has no properties");
		return PH_ERR_INVALID;
	}
	if ((res = json_object()) == NULL)
		return PH_ERR_NOMEM;
	json_object_foreach(props, key, v) {
		if ((r = port_prop(v, params, defs)) == NULL ||
		    json_object_set_new(res, key, r) != 0) {
			ph_errf(err, errlen, "cannot read the properties");
			rc = PH_ERR_NOMEM;
			goto fail;
		}
	}
	if (port_number(agent_json_get(res, "portNumber"),
	    &t->port_number) != 0) {
		ph_errf(err, errlen, "properties.portNumber is missing or not "
		    "a port number (1-65535)");
		goto fail;
	}
	v = agent_json_get(res, "host");
	if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
		ph_errf(err, errlen, "properties.host is not a string");
		goto fail;
	}
	host = json_is_string(v) ? json_string_value(v) : "";
	host += strspn(host, " \t");
	if (host[0] != '\0' && !agent_valid_port_host(host)) {
		ph_errf(err, errlen, "properties.host is not a host name or "
		    "address");
		goto fail;
	}
	snprintf(t->port_host, sizeof(t->port_host), "%s", host);
	v = agent_json_get(res, "type");
	if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
		ph_errf(err, errlen, "properties.type is not a string");
		goto fail;
	}
	type = json_is_string(v) ? json_string_value(v) : "";
	t->port_lpf = strcmp(type, AGENT_PORT_LPF) == 0;
	t->port_properties = json_dumps(res, JSON_COMPACT |
	    JSON_PRESERVE_ORDER);
	if (t->port_properties == NULL ||
	    strlen(t->port_properties) > AGENT_PROPERTIES_MAX) {
		ph_errf(err, errlen, "the properties are too large");
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	rc = 0;
fail:
	json_decref(res);
	return rc;
}

static int
task_inputs(struct agent_task *t, json_t *inputs, const char *payload_user,
    char *err, size_t errlen)
{
	const char *kms, *def_user, *user, *profile;
	json_t *sp;

	if (inputs != NULL && !json_is_object(inputs)) {
		ph_errf(err, errlen, "inputs is not an object");
		return PH_ERR_INVALID;
	}
	if (agent_json_bool(inputs, "runAsEnabled", 0, &t->run_as_enabled)) {
		ph_errf(err, errlen, "inputs.runAsEnabled is not a boolean");
		return PH_ERR_INVALID;
	}
	if (t->run_as_enabled) {
		/* spec 7.6: the principal's RunAs tag wins, else the
		 * preference's default user. */
		def_user = agent_json_str(inputs, "runAsDefaultUser");
		user = payload_user;
		if (user == NULL || user[strspn(user, " \t")] == '\0')
			user = def_user;
		if (user == NULL || user[0] == '\0') {
			ph_errf(err, errlen,
			    "RunAs is enabled but no RunAs user is set");
			return PH_ERR_INVALID;
		}
		if (!agent_valid_user_name(user)) {
			ph_errf(err, errlen, "invalid RunAs user name");
			return PH_ERR_INVALID;
		}
		snprintf(t->run_as_user, sizeof(t->run_as_user), "%s", user);
	}
	kms = agent_json_str(inputs, "kmsKeyId");
	if (agent_json_get(inputs, "kmsKeyId") != NULL && kms == NULL &&
	    !json_is_null(agent_json_get(inputs, "kmsKeyId"))) {
		ph_errf(err, errlen, "inputs.kmsKeyId is not a string");
		return PH_ERR_INVALID;
	}
	if (kms != NULL && kms[0] != '\0') {
		t->kms_key_id = dup_bounded(kms, AGENT_KMS_KEY_MAX);
		if (t->kms_key_id == NULL) {
			ph_errf(err, errlen, "inputs.kmsKeyId is too long");
			return PH_ERR_TOOBIG;
		}
	}
	sp = agent_json_get(inputs, "shellProfile");
	profile = agent_json_str(sp, "linux");
	if (profile != NULL && profile[strspn(profile, " \t\r\n")] != '\0') {
		t->shell_profile = dup_bounded(profile, AGENT_PROFILE_MAX);
		if (t->shell_profile == NULL) {
			ph_errf(err, errlen,
			    "inputs.shellProfile.linux is too long");
			return PH_ERR_TOOBIG;
		}
	}
	return 0;
}

static int
task_document(struct agent_task *t, json_t *doc, json_t *params,
    const char *payload_user, char *err, size_t errlen)
{
	const char *schema, *stype;
	json_t *props, *linux_props, *defs;
	int rc;

	if (!json_is_object(doc)) {
		ph_errf(err, errlen, "DocumentContent is missing");
		return PH_ERR_INVALID;
	}
	/* spec 10.2: only session documents of schema 1.0. */
	schema = agent_json_str(doc, "schemaVersion");
	if (schema != NULL && strcmp(schema, "1.0") != 0) {
		ph_errf(err, errlen,
		    "unsupported session document schemaVersion");
		return PH_ERR_INVALID;
	}
	stype = agent_json_str(doc, "sessionType");
	if (stype == NULL || strcmp(stype, "Standard_Stream") == 0)
		t->type = AGENT_ST_STANDARD;
	else if (strcmp(stype, "InteractiveCommands") == 0)
		t->type = AGENT_ST_INTERACTIVE;
	else if (strcmp(stype, "NonInteractiveCommands") == 0)
		t->type = AGENT_ST_NONINTERACTIVE;
	else if (strcmp(stype, "Port") == 0)
		t->type = AGENT_ST_PORT;
	else {
		ph_errf(err, errlen, "unknown sessionType");
		return PH_ERR_INVALID;
	}
	if ((rc = task_inputs(t, agent_json_get(doc, "inputs"), payload_user,
	    err, errlen)) != 0)
		return rc;
	props = agent_json_get(doc, "properties");
	linux_props = agent_json_get(props, "linux");
	if (agent_json_bool(linux_props, "runAsElevated", 0,
	    &t->run_as_elevated) != 0) {
		ph_errf(err, errlen,
		    "properties.linux.runAsElevated is not a boolean");
		return PH_ERR_INVALID;
	}
	defs = agent_json_get(doc, "parameters");
	if (t->type == AGENT_ST_PORT)
		return task_port(t, props, params, defs, err, errlen);
	if (t->type == AGENT_ST_INTERACTIVE ||
	    t->type == AGENT_ST_NONINTERACTIVE)
		return task_commands(t, linux_props, params, defs, err,
		    errlen);
	return 0;
}

int
agent_task_parse(struct agent_task *t, const uint8_t *p, size_t n,
    char *err, size_t errlen)
{
	json_t *outer = NULL, *inner = NULL, *content, *params, *ru;
	const char *sid, *user = NULL;
	json_error_t jerr;
	int rc = PH_ERR_INVALID;

	memset(t, 0, sizeof(*t));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	outer = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(outer)) {
		ph_errf(err, errlen, "the message is not a JSON object");
		goto fail;
	}
	content = agent_json_get(outer, "Content");
	if (!json_is_string(content)) {
		ph_errf(err, errlen, "Content is missing or not a string");
		goto fail;
	}
	/* spec 8.1: Content is JSON inside a JSON string. */
	inner = json_loadb(json_string_value(content),
	    json_string_length(content), JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(inner)) {
		ph_errf(err, errlen, "Content is not a JSON object");
		goto fail;
	}
	sid = agent_json_str(inner, "SessionId");
	if (sid == NULL) {
		ph_errf(err, errlen, "SessionId is missing");
		goto fail;
	}
	if (!agent_valid_session_id(sid)) {
		ph_errf(err, errlen, "SessionId is invalid");
		goto fail;
	}
	snprintf(t->session_id, sizeof(t->session_id), "%s", sid);
	ru = agent_json_get(inner, "RunAsUser");
	if (ru != NULL && !json_is_null(ru)) {
		if (!json_is_string(ru)) {
			ph_errf(err, errlen, "RunAsUser is not a string");
			goto fail;
		}
		user = json_string_value(ru);
	}
	/* Who started it, for the record; an odd value is left out. */
	ru = agent_json_get(inner, "SessionOwner");
	if (json_is_string(ru) && json_string_length(ru) > 0)
		t->owner = dup_bounded(json_string_value(ru), AGENT_OWNER_MAX);
	params = agent_json_get(inner, "Parameters");
	rc = task_document(t, agent_json_get(inner, "DocumentContent"),
	    params, user, err, errlen);
fail:
	json_decref(inner);
	json_decref(outer);
	if (rc != 0) {
		char keep[sizeof(t->session_id)];

		memcpy(keep, t->session_id, sizeof(keep));
		agent_task_free(t);
		memcpy(t->session_id, keep, sizeof(keep));
	}
	return rc;
}

void
agent_task_free(struct agent_task *t)
{
	if (t == NULL)
		return;
	free(t->commands);
	free(t->shell_profile);
	free(t->kms_key_id);
	free(t->owner);
	free(t->port_properties);
	memset(t, 0, sizeof(*t));
}
