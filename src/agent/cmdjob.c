#include "agent/cmdjob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/jsonci.h"
#include "common/err.h"
#include "common/uuid.h"

#define ERR_TITLE "\n----------ERROR-------\n"
#define TRUNC_OUT "\n---Output truncated---"
#define TRUNC_ERR "\n---Error truncated----"
/* standardOutput / standardError cut marker (AWS's plugin config). */
#define TRUNC_STREAM "--output truncated--"
#define PLATFORM_TYPE "linux"

static void
seterr(char *err, size_t len, const char *msg)
{
	if (err != NULL && len > 0)
		snprintf(err, len, "%s", msg);
}

/* Copy a bounded string member; absent is "", too long or not a string is
 * an error. */
static int
copy_str(const json_t *o, const char *key, char *out, size_t len)
{
	json_t *v = agent_json_get(o, key);
	const char *s;

	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return PH_ERR_INVALID;
	s = json_string_value(v);
	if (strlen(s) >= len)
		return PH_ERR_INVALID;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int
cmdjob_valid_command_id(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= CMDJOB_CMD_ID_MAX)
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		    s[i] == '_'))
			return 0;
	}
	return i > 0;
}

int
cmdjob_command_from_message_id(const char *mid, char *out, size_t len)
{
	const char *last, *prev, *p;
	size_t n;

	/* spec 8.3: aws.ssm.<CommandId>.<InstanceId>; the command id is the
	 * second-to-last dot component. */
	if (strncmp(mid, "aws.ssm.", 8) != 0)
		return PH_ERR_INVALID;
	last = strrchr(mid, '.');
	if (last == NULL || last < mid + 8)
		return PH_ERR_INVALID;
	prev = NULL;
	for (p = mid; p < last; p++)
		if (*p == '.')
			prev = p;
	if (prev == NULL)
		return PH_ERR_INVALID;
	n = (size_t)(last - prev - 1);
	if (n == 0 || n >= len)
		return PH_ERR_INVALID;
	memcpy(out, prev + 1, n);
	out[n] = '\0';
	return cmdjob_valid_command_id(out) ? 0 : PH_ERR_INVALID;
}

void
cmdjob_free(struct cmdjob *j)
{
	json_decref(j->doc);
	json_decref(j->params);
	j->doc = NULL;
	j->params = NULL;
}

int
cmdjob_parse(struct cmdjob *j, const uint8_t *p, size_t n, int *ack,
    char *err, size_t errlen)
{
	json_t *outer = NULL, *content = NULL, *v;
	const char *s;
	struct cmdstep *steps = NULL;
	size_t nsteps = 0;
	char serr[256];

	memset(j, 0, sizeof(*j));
	*ack = CMDJOB_ACK_PARSE_ERROR;
	outer = json_loadb((const char *)p, n, 0, NULL);
	if (!json_is_object(outer)) {
		seterr(err, errlen, "the job is not a JSON object");
		goto fail;
	}
	if (copy_str(outer, "JobId", j->job_id, sizeof(j->job_id)) != 0 ||
	    j->job_id[0] == '\0') {
		j->job_id[0] = '\0';
		seterr(err, errlen, "JobId is missing or invalid");
		goto fail;
	}
	if (copy_str(outer, "Topic", j->topic, sizeof(j->topic)) != 0 ||
	    j->topic[0] == '\0') {
		seterr(err, errlen, "Topic is invalid");
		goto fail;
	}
	if (strncmp(j->topic, CMDJOB_TOPIC_SEND,
	    strlen(CMDJOB_TOPIC_SEND)) == 0)
		j->kind = CMDJOB_SEND;
	else if (strncmp(j->topic, CMDJOB_TOPIC_CANCEL,
	    strlen(CMDJOB_TOPIC_CANCEL)) == 0)
		j->kind = CMDJOB_CANCEL;
	else {
		*ack = CMDJOB_ACK_UNEXPECTED_TYPE;
		seterr(err, errlen, "unexpected Topic");
		goto fail;
	}
	s = agent_json_str(outer, "Content");
	if (s == NULL) {
		seterr(err, errlen, "Content is missing");
		goto fail;
	}
	/* spec 8.1: Content is JSON inside a JSON string. */
	content = json_loads(s, 0, NULL);
	if (!json_is_object(content)) {
		seterr(err, errlen, "Content is not a JSON object");
		goto fail;
	}
	if (j->kind == CMDJOB_CANCEL) {
		s = agent_json_str(content, "CancelMessageId");
		if (s == NULL || cmdjob_command_from_message_id(s,
		    j->cancel_command_id, sizeof(j->cancel_command_id)) != 0) {
			seterr(err, errlen, "CancelMessageId is invalid");
			goto fail;
		}
		if (cmdjob_command_from_message_id(j->job_id, j->command_id,
		    sizeof(j->command_id)) != 0)
			snprintf(j->command_id, sizeof(j->command_id), "%s",
			    j->cancel_command_id);
		goto done;
	}
	if (copy_str(content, "CommandId", j->command_id,
	    sizeof(j->command_id)) != 0) {
		seterr(err, errlen, "CommandId is invalid");
		goto fail;
	}
	if (j->command_id[0] == '\0' && cmdjob_command_from_message_id(
	    j->job_id, j->command_id, sizeof(j->command_id)) != 0) {
		seterr(err, errlen, "no CommandId");
		goto fail;
	}
	if (!cmdjob_valid_command_id(j->command_id)) {
		seterr(err, errlen, "CommandId is invalid");
		goto fail;
	}
	if (copy_str(content, "DocumentName", j->document_name,
	    sizeof(j->document_name)) != 0 ||
	    copy_str(content, "OutputS3BucketName", j->bucket,
	    sizeof(j->bucket)) != 0 ||
	    copy_str(content, "OutputS3KeyPrefix", j->prefix,
	    sizeof(j->prefix)) != 0) {
		seterr(err, errlen, "DocumentName or output location invalid");
		goto fail;
	}
	v = agent_json_get(content, "Parameters");
	if (v == NULL || json_is_null(v))
		j->params = json_object();
	else if (json_is_object(v))
		j->params = json_incref(v);
	else {
		seterr(err, errlen, "Parameters is not an object");
		goto fail;
	}
	if (j->params == NULL) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	*ack = CMDJOB_ACK_INVALID_DOCUMENT;
	v = agent_json_get(content, "DocumentContent");
	if (!json_is_object(v)) {
		seterr(err, errlen, "DocumentContent is missing");
		goto fail;
	}
	j->doc = json_deep_copy(v);
	if (j->doc == NULL) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	if (cmdjob_steps(j->doc, &steps, &nsteps, serr, sizeof(serr)) != 0) {
		seterr(err, errlen, serr);
		goto fail;
	}
	cmdjob_steps_free(steps, nsteps);
done:
	json_decref(content);
	json_decref(outer);
	*ack = CMDJOB_ACK_OK;
	return 0;
fail:
	json_decref(content);
	json_decref(outer);
	cmdjob_free(j);
	return PH_ERR_INVALID;
}

int
cmdjob_parse_reply_ack(const uint8_t *p, size_t n, uint8_t id[16],
    char *job_id, size_t job_id_len)
{
	json_t *o;
	const char *s;
	int rc = PH_ERR_INVALID;

	if (job_id_len > 0)
		job_id[0] = '\0';
	o = json_loadb((const char *)p, n, 0, NULL);
	s = agent_json_str(o, "acknowledgedMessageId");
	if (s != NULL && uuid_parse(s, id) == 0)
		rc = 0;
	s = agent_json_str(o, "jobId");
	if (rc == 0 && s != NULL && job_id_len > 0)
		snprintf(job_id, job_id_len, "%s", s);
	json_decref(o);
	return rc;
}

/* ---- steps --------------------------------------------------------------- */

void
cmdjob_steps_free(struct cmdstep *steps, size_t n)
{
	size_t i;

	for (i = 0; steps != NULL && i < n; i++)
		json_decref(steps[i].inputs);
	free(steps);
}

static int
valid_name(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f ||
		    i >= CMDJOB_NAME_MAX)
			return 0;
	return i > 0;
}

/* "2.2" or later: preconditions are evaluated. */
static int
schema_v22(const char *v)
{
	int major = 0, minor = 0;

	if (sscanf(v, "%d.%d", &major, &minor) < 1)
		return 0;
	return major > 2 || (major == 2 && minor >= 2);
}

int
cmdjob_steps(json_t *doc, struct cmdstep **out, size_t *nout, char *err,
    size_t errlen)
{
	struct cmdstep *steps = NULL, *s;
	json_t *main, *rt, *v, *props;
	const char *schema, *key, *str;
	size_t i, j, n = 0;
	int v22;

	*out = NULL;
	*nout = 0;
	schema = agent_json_str(doc, "schemaVersion");
	if (schema == NULL) {
		seterr(err, errlen, "the document has no schemaVersion");
		return PH_ERR_INVALID;
	}
	v22 = schema_v22(schema);
	main = agent_json_get(doc, "mainSteps");
	rt = agent_json_get(doc, "runtimeConfig");
	if (json_is_array(main))
		n = json_array_size(main);
	else if (json_is_object(rt))
		n = json_object_size(rt);
	else {
		seterr(err, errlen, "the document has neither mainSteps nor "
		    "runtimeConfig");
		return PH_ERR_INVALID;
	}
	if (n == 0 || n > CMDJOB_STEPS_MAX) {
		seterr(err, errlen, "the document has no steps or too many");
		return PH_ERR_INVALID;
	}
	steps = calloc(n, sizeof(*steps));
	if (steps == NULL) {
		seterr(err, errlen, "out of memory");
		return PH_ERR_NOMEM;
	}
	if (json_is_array(main)) {
		json_array_foreach(main, i, v) {
			s = &steps[i];
			s->v22 = v22;
			if (!json_is_object(v) ||
			    (str = agent_json_str(v, "action")) == NULL ||
			    !valid_name(str)) {
				seterr(err, errlen, "a step has no action");
				goto fail;
			}
			snprintf(s->action, sizeof(s->action), "%s", str);
			str = agent_json_str(v, "name");
			if (str == NULL || !valid_name(str)) {
				seterr(err, errlen, "a step has no valid name");
				goto fail;
			}
			snprintf(s->name, sizeof(s->name), "%s", str);
			props = agent_json_get(v, "inputs");
			if (props != NULL && !json_is_object(props) &&
			    !json_is_null(props)) {
				seterr(err, errlen, "a step's inputs are not "
				    "an object");
				goto fail;
			}
			s->inputs = json_is_object(props) ?
			    json_incref(props) : json_object();
			s->precondition = agent_json_get(v, "precondition");
			if (s->precondition != NULL &&
			    json_is_null(s->precondition))
				s->precondition = NULL;
		}
	} else {
		i = 0;
		json_object_foreach(rt, key, v) {
			s = &steps[i++];
			if (!valid_name(key)) {
				seterr(err, errlen, "a plugin name is invalid");
				goto fail;
			}
			snprintf(s->action, sizeof(s->action), "%s", key);
			snprintf(s->name, sizeof(s->name), "%s", key);
			/* 1.2: {"properties": [ {...} ]} or an object. */
			props = agent_json_get(v, "properties");
			if (json_is_array(props))
				props = json_array_get(props, 0);
			if (props != NULL && !json_is_object(props)) {
				seterr(err, errlen, "a plugin's properties are "
				    "not an object");
				goto fail;
			}
			s->inputs = props != NULL ? json_incref(props) :
			    json_object();
			s->precondition = agent_json_get(v, "precondition");
			if (s->precondition != NULL &&
			    json_is_null(s->precondition))
				s->precondition = NULL;
		}
	}
	for (i = 0; i < n; i++) {
		if (steps[i].inputs == NULL) {
			seterr(err, errlen, "out of memory");
			goto fail;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(steps[i].name, steps[j].name) == 0) {
				seterr(err, errlen, "two steps have the same "
				    "name");
				goto fail;
			}
		}
	}
	*out = steps;
	*nout = n;
	return 0;
fail:
	cmdjob_steps_free(steps, n);
	return PH_ERR_INVALID;
}

int
cmdjob_known_action(const char *action)
{
	return strcmp(action, "aws:runShellScript") == 0 ||
	    strcmp(action, "aws:runPowerShellScript") == 0 ||
	    strcmp(action, "aws:updateSsmAgent") == 0;
}

/* Append to a bounded list text. */
static void
list_add(char *buf, size_t len, const char *item)
{
	size_t used = strlen(buf);

	if (used + 2 >= len)
		return;
	snprintf(buf + used, len - used, "%s%s", used ? ", " : "", item);
}

/* AWS's agent evaluates StringEquals on platformType only; anything else
 * is unrecognised (the step fails). */
static void
eval_precondition(const json_t *pre, int *allowed, char *unrec, size_t len)
{
	const char *key, *a, *b, *want;
	json_t *v;
	char item[300];

	*allowed = 1;
	unrec[0] = '\0';
	if (!json_is_object(pre)) {
		list_add(unrec, len, "precondition is not an object");
		return;
	}
	json_object_foreach((json_t *)pre, key, v) {
		if (strcmp(key, "StringEquals") != 0) {
			snprintf(item, sizeof(item),
			    "unrecognized operator: \"%.200s\"", key);
			list_add(unrec, len, item);
			continue;
		}
		if (!json_is_array(v) || json_array_size(v) != 2 ||
		    !json_is_string(json_array_get(v, 0)) ||
		    !json_is_string(json_array_get(v, 1))) {
			list_add(unrec, len, "\"StringEquals\": operator "
			    "accepts exactly 2 arguments");
			continue;
		}
		a = json_string_value(json_array_get(v, 0));
		b = json_string_value(json_array_get(v, 1));
		if (strcmp(a, b) == 0) {
			list_add(unrec, len, "\"StringEquals\": operator's "
			    "arguments can't be identical");
			continue;
		}
		if (strcmp(a, "platformType") != 0 &&
		    strcmp(b, "platformType") != 0) {
			list_add(unrec, len, "\"StringEquals\": at least one "
			    "of operator's arguments must contain a valid "
			    "document parameter");
			continue;
		}
		want = strcmp(a, "platformType") == 0 ? b : a;
		if (strcasecmp(want, PLATFORM_TYPE) != 0) {
			*allowed = 0;
			snprintf(item, sizeof(item),
			    "\"StringEquals\": [%.100s, %.100s]", a, b);
			list_add(unrec, len, item);
		}
	}
}

enum cmdjob_op
cmdjob_step_op(const struct cmdstep *s, char *msg, size_t msglen)
{
	char unrec[1024];
	int known = cmdjob_known_action(s->action), allowed;

	msg[0] = '\0';
	if (!s->v22) {
		if (!known) {
			snprintf(msg, msglen, "Plugin with name %s is not "
			    "supported by this version of ssm agent, please "
			    "update to latest version. Step name: %s",
			    s->action, s->name);
			return CMDJOB_FAIL;
		}
		if (s->precondition != NULL) {
			snprintf(msg, msglen, "Precondition is not supported "
			    "for document schema version prior to 2.2. Step "
			    "name: %s", s->name);
			return CMDJOB_FAIL;
		}
		return CMDJOB_RUN;
	}
	if (s->precondition == NULL) {
		if (!known) {
			snprintf(msg, msglen, "Plugin with name %s is not "
			    "supported by this version of ssm agent, please "
			    "update to latest version. Step name: %s",
			    s->action, s->name);
			return CMDJOB_FAIL;
		}
		return CMDJOB_RUN;
	}
	eval_precondition(s->precondition, &allowed, unrec, sizeof(unrec));
	if (allowed && !known) {
		snprintf(msg, msglen, "Plugin with name %s is not supported "
		    "by this version of ssm agent, please update to latest "
		    "version. Step name: %s", s->action, s->name);
		return CMDJOB_FAIL;
	}
	if (!known) {
		snprintf(msg, msglen, "Step execution skipped due to "
		    "unsupported plugin: %s. Step name: %s", s->action,
		    s->name);
		return CMDJOB_SKIP;
	}
	if (!allowed) {
		snprintf(msg, msglen, "Step execution skipped due to "
		    "unsatisfied preconditions: '%s'. Step name: %s", unrec,
		    s->name);
		return CMDJOB_SKIP;
	}
	if (unrec[0] != '\0') {
		snprintf(msg, msglen, "Unrecognized precondition(s): '%s', "
		    "please update agent to latest version. Step name: %s",
		    unrec, s->name);
		return CMDJOB_FAIL;
	}
	return CMDJOB_RUN;
}

unsigned
cmdjob_timeout(const json_t *inputs)
{
	json_t *v = agent_json_get(inputs, "timeoutSeconds");
	double d = -1;
	char *end;
	const char *s;

	if (json_is_integer(v))
		d = (double)json_integer_value(v);
	else if (json_is_real(v))
		d = json_real_value(v);
	else if (json_is_string(v)) {
		s = json_string_value(v);
		d = strtod(s, &end);
		if (end == s || *end != '\0')
			d = -1;
	}
	/* AWS's agent: 5..172800 seconds, anything else the default. */
	if (!(d >= 5 && d <= 172800))
		return 3600;
	return (unsigned)d;
}

static int
script_add(const json_t *v, char **buf, size_t *len, size_t max, int depth)
{
	size_t i, n;
	char *nb;
	json_t *e;

	if (depth > 8)
		return PH_ERR_INVALID;
	if (json_is_string(v)) {
		n = json_string_length(v);
		if (*len + n + 2 > max)
			return PH_ERR_TOOBIG;
		nb = realloc(*buf, *len + n + 2);
		if (nb == NULL)
			return PH_ERR_NOMEM;
		*buf = nb;
		memcpy(nb + *len, json_string_value(v), n);
		*len += n;
		nb[(*len)++] = '\n';
		nb[*len] = '\0';
		return 0;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			int rc = script_add(e, buf, len, max, depth + 1);

			if (rc != 0)
				return rc;
		}
		return 0;
	}
	return 0; /* AWS ignores other types */
}

char *
cmdjob_script(const json_t *inputs, size_t max)
{
	json_t *v = agent_json_get(inputs, "runCommand");
	char *buf = NULL;
	size_t len = 0;

	if (!json_is_string(v) && !json_is_array(v))
		return NULL;
	if (script_add(v, &buf, &len, max, 0) != 0) {
		free(buf);
		return NULL;
	}
	if (buf == NULL)
		buf = strdup("");
	return buf;
}

/* ---- reply --------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at p (n bytes available), or 0
 * when p does not start one. NUL counts as invalid. */
static size_t
u8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t need, i;
	unsigned lo = 0x80, hi = 0xbf;

	if (c >= 0x01 && c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;
		if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;
		if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < need + 1)
		return 0;
	for (i = 1; i <= need; i++) {
		if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf))
			return 0;
	}
	return need + 1;
}

char *
cmdjob_text(const char *p, size_t n, size_t max, const char *suffix)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i, k, total = 0, slen = suffix ? strlen(suffix) : 0, lim, o;
	char *out;

	for (i = 0; i < n; i += k) {
		k = u8_seq(u + i, n - i);
		total += k ? k : 3;
		if (k == 0)
			k = 1;
	}
	lim = total <= max ? total : (max > slen ? max - slen : 0);
	out = malloc(lim + slen + 1);
	if (out == NULL)
		return NULL;
	for (i = 0, o = 0; i < n; i += k) {
		k = u8_seq(u + i, n - i);
		if (k == 0) {
			if (o + 3 > lim)
				break;
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			k = 1;
			continue;
		}
		if (o + k > lim)
			break;
		memcpy(out + o, p + i, k);
		o += k;
	}
	if (total > max && suffix != NULL) {
		if (slen > max)
			slen = max;
		memcpy(out + o, suffix, slen);
		o += slen;
	}
	out[o] = '\0';
	return out;
}

/* The longest prefix of s (valid UTF-8) of at most max bytes that does not
 * split a character. */
static size_t
u8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

void
cmdjob_combined_output(const char *out, size_t out_len, const char *err,
    size_t err_len, size_t cap, char *buf)
{
	const char *title = err_len > 0 ? ERR_TITLE : "";
	size_t tl = strlen(title), avail, ts, a, b;

	avail = cap > tl ? cap - tl : 0;
	if (out_len + err_len < avail) {
		snprintf(buf, cap + 1, "%.*s%s%.*s", (int)out_len, out, title,
		    (int)err_len, err);
		return;
	}
	/* AWS's agent's rules: cut the long one(s), mark each cut. */
	if (out_len > avail / 2 && err_len > avail / 2) {
		ts = avail > strlen(TRUNC_OUT) + strlen(TRUNC_ERR) ?
		    avail - strlen(TRUNC_OUT) - strlen(TRUNC_ERR) : 0;
		a = u8_cut(out, out_len, ts / 2);
		b = u8_cut(err, err_len, ts / 2);
		snprintf(buf, cap + 1, "%.*s%s%s%.*s%s", (int)a, out,
		    TRUNC_OUT, title, (int)b, err, TRUNC_ERR);
		return;
	}
	if (out_len <= avail / 2) {
		ts = avail > strlen(TRUNC_ERR) + out_len ?
		    avail - strlen(TRUNC_ERR) - out_len : 0;
		b = u8_cut(err, err_len, ts);
		snprintf(buf, cap + 1, "%.*s%s%.*s%s", (int)out_len, out,
		    title, (int)b, err, TRUNC_ERR);
		return;
	}
	ts = avail > strlen(TRUNC_OUT) + err_len ?
	    avail - strlen(TRUNC_OUT) - err_len : 0;
	a = u8_cut(out, out_len, ts);
	snprintf(buf, cap + 1, "%.*s%s%s%.*s", (int)a, out, TRUNC_OUT, title,
	    (int)err_len, err);
}

void
cmdjob_iso_time(uint64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	/* Each field is bounded; the casts tell the compiler so. */
	snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
	    (unsigned)(tm.tm_year + 1900) % 10000u,
	    (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
	    (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
	    (unsigned)tm.tm_sec % 100u, (unsigned)(ms % 1000));
}

const char *
cmdjob_doc_status(const struct cmdjob_result *r, size_t n)
{
	size_t i, ok = 0;
	int failed = 0, timed = 0, cancelled = 0;

	for (i = 0; i < n; i++) {
		if (strcmp(r[i].status, "Failed") == 0)
			failed = 1;
		else if (strcmp(r[i].status, "TimedOut") == 0)
			timed = 1;
		else if (strcmp(r[i].status, "Cancelled") == 0)
			cancelled = 1;
		else if (strcmp(r[i].status, "Success") == 0 ||
		    strcmp(r[i].status, "Skipped") == 0)
			ok++;
	}
	if (failed)
		return "Failed";
	if (timed)
		return "TimedOut";
	if (cancelled)
		return "Cancelled";
	return ok == n ? "Success" : "InProgress";
}

/* AWS's key prefix of a step's output: prefix/CommandId/InstanceId/
 * action without ':' / step name. */
static void
step_prefix(const struct cmdjob_reply_info *info, const struct
    cmdjob_result *r, char *out, size_t len)
{
	char act[CMDJOB_NAME_MAX + 1];
	size_t i, o = 0;

	for (i = 0; r->plugin[i] != '\0' && o < sizeof(act) - 1; i++)
		if (r->plugin[i] != ':')
			act[o++] = r->plugin[i];
	act[o] = '\0';
	snprintf(out, len, "%s%s%s/%s/%s", info->prefix ? info->prefix : "",
	    info->prefix && info->prefix[0] ? "/" : "",
	    info->command_id ? info->command_id : "",
	    info->instance_id ? info->instance_id : "", act);
}

static json_t *
step_json(const struct cmdjob_reply_info *info, const struct cmdjob_result *r,
    unsigned shift)
{
	char *so = NULL, *se = NULL, *comb = NULL, st[32], en[32];
	char pfx[CMDJOB_PREFIX_MAX + 256];
	size_t cap = CMDJOB_OUTPUT_MAX >> shift;
	int code = r->code;
	json_t *o = NULL;

	so = cmdjob_text(r->out, r->out_len, CMDJOB_STDOUT_MAX >> shift,
	    TRUNC_STREAM);
	se = cmdjob_text(r->err, r->err_len, CMDJOB_STDERR_MAX >> shift,
	    TRUNC_STREAM);
	comb = malloc(cap + 1);
	if (so == NULL || se == NULL || comb == NULL)
		goto out;
	if (r->message != NULL) {
		char *m = cmdjob_text(r->message, strlen(r->message), cap,
		    NULL);

		if (m == NULL)
			goto out;
		snprintf(comb, cap + 1, "%s", m);
		free(m);
	} else {
		/* The combined text is cut from the sanitised streams. */
		char *a = cmdjob_text(r->out, r->out_len, CMDJOB_OUTPUT_MAX,
		    NULL), *b = cmdjob_text(r->err, r->err_len,
		    CMDJOB_OUTPUT_MAX, NULL);

		if (a == NULL || b == NULL) {
			free(a);
			free(b);
			goto out;
		}
		cmdjob_combined_output(a, strlen(a), b, strlen(b), cap, comb);
		free(a);
		free(b);
	}
	/* AWS: a Failed step with code 0 is reported as 1. */
	if (strcmp(r->status, "Failed") == 0 && code == 0)
		code = 1;
	cmdjob_iso_time(r->start_ms, st);
	cmdjob_iso_time(r->end_ms, en);
	step_prefix(info, r, pfx, sizeof(pfx));
	o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
	    "s:s}",
	    "status", r->status, "code", code, "name", r->plugin,
	    "output", comb, "startDateTime", r->start_ms ? st : "",
	    "endDateTime", r->end_ms ? en : "",
	    "outputS3BucketName", info->bucket ? info->bucket : "",
	    "outputS3KeyPrefix", info->bucket && info->bucket[0] ? pfx : "",
	    "stepName", r->name, "standardOutput", so, "standardError", se);
out:
	free(so);
	free(se);
	free(comb);
	return o;
}

static char *
content_json(const struct cmdjob_reply_info *info,
    const struct cmdjob_result *r, size_t n, unsigned shift)
{
	json_t *c = NULL, *rs, *counts, *agent, *add, *s, *cur;
	char now[32], *js = NULL;
	size_t i;

	cmdjob_iso_time(info->now_ms, now);
	rs = json_object();
	counts = json_object();
	for (i = 0; rs != NULL && counts != NULL && i < n; i++) {
		s = step_json(info, &r[i], shift);
		if (s == NULL || json_object_set_new(rs, r[i].name, s) != 0)
			goto out;
		cur = json_object_get(counts, r[i].status);
		if (json_object_set_new(counts, r[i].status, json_integer(
		    cur ? json_integer_value(cur) + 1 : 1)) != 0)
			goto out;
	}
	agent = json_pack("{s:s, s:s, s:s, s:s, s:s}", "lang", "en-US",
	    "name", "porthole-agent", "os", "Linux", "osver", "1",
	    "ver", PORTHOLE_AGENT_VERSION);
	add = json_pack("{s:o*, s:s, s:s, s:O*}", "agent", agent,
	    "dateTime", now, "runId", "", "runtimeStatusCounts", counts);
	c = json_pack("{s:o*, s:s, s:s, s:O*}", "additionalInfo", add,
	    "documentStatus", info->doc_status, "documentTraceOutput", "",
	    "runtimeStatus", rs);
	if (c != NULL)
		js = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(c);
	json_decref(rs);
	json_decref(counts);
	return js;
}

char *
cmdjob_reply(const struct cmdjob_reply_info *info,
    const struct cmdjob_result *r, size_t n)
{
	char *content = NULL, *js;
	unsigned shift;
	json_t *o;

	/* spec 8.3: content over 120,000 bytes is dropped; cut every step's
	 * text further until it fits. */
	for (shift = 0; shift <= 16; shift++) {
		content = content_json(info, r, n, shift);
		if (content == NULL)
			return NULL;
		if (strlen(content) <= CMDJOB_CONTENT_MAX)
			break;
		free(content);
		content = NULL;
	}
	if (content == NULL)
		return NULL;
	o = json_pack("{s:i, s:s, s:s, s:s}", "schemaVersion", 1,
	    "jobId", info->job_id, "content", content,
	    "topic", info->topic ? info->topic : CMDJOB_TOPIC_SEND);
	free(content);
	js = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	return js;
}
