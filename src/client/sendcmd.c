/* sendcmd: `porthole send-command`. SendCommand signed like the client's
 * other calls (awscfg, awsapi); with --wait, ListCommands once a second
 * until the command is final (a progress line on stderr, rewritten in
 * place on a terminal), then ListCommandInvocations with Details for the
 * per-instance results on stdout. */
#include "client/sendcmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/awsapi.h"
#include "client/awscfg.h"
#include "common/buf.h"
#include "common/err.h"

#define SC_POLL_MS 1000
#define SC_PAGES_MAX 10000
#define SC_ARG_MAX 65536

/* ---- arguments ----------------------------------------------------------- */

static int
sc_fail(char *err, size_t errlen, const char *fmt, const char *v)
{
	snprintf(err, errlen, fmt, v);
	return PH_ERR_INVALID;
}

/* A list of strings, each non-empty. */
static int
sc_string_list(json_t *v)
{
	json_t *e;
	size_t i;

	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, e)
		if (!json_is_string(e))
			return 0;
	return 1;
}

static int
sc_target_ok(json_t *t, char *err, size_t errlen)
{
	const char *k = json_string_value(json_object_get(t, "Key"));
	json_t *v = json_object_get(t, "Values");

	if (k == NULL || *k == '\0' || strlen(k) > 163)
		return sc_fail(err, errlen, "--targets: each target needs a "
		    "Key (1 to 163 characters)%s", "");
	if (!sc_string_list(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > CLIENT_SENDCMD_MAX_TARGET_VALUES)
		return sc_fail(err, errlen, "--targets: Key %.64s needs 1 to "
		    "50 Values", k);
	return 0;
}

int
client_sendcmd_add_targets(json_t *targets, const char *s, char *err,
    size_t errlen)
{
	const char *vals, *p, *comma;
	json_t *l, *t, *v;
	size_t i;
	char key[200];

	if (s == NULL || *s == '\0' || strlen(s) > SC_ARG_MAX)
		return sc_fail(err, errlen, "--targets wants "
		    "Key=K,Values=V1,V2 or JSON%s", "");
	if (*s == '[' || *s == '{') {
		if ((l = json_loads(s, 0, NULL)) == NULL)
			return sc_fail(err, errlen, "--targets: not valid "
			    "JSON%s", "");
		if (json_is_object(l)) {
			t = json_pack("[O]", l);
			json_decref(l);
			l = t;
		}
		json_array_foreach(l, i, t) {
			if (!json_is_object(t) || json_object_size(t) != 2 ||
			    sc_target_ok(t, err, errlen) != 0) {
				if (!json_is_object(t) ||
				    json_object_size(t) != 2)
					sc_fail(err, errlen, "--targets: each "
					    "target is {\"Key\": ..., "
					    "\"Values\": [...]}%s", "");
				json_decref(l);
				return PH_ERR_INVALID;
			}
			json_array_append(targets, t);
		}
		json_decref(l);
		goto count;
	}
	/* Key=K,Values=V1,V2 (a value cannot hold a comma here, as in the
	 * CLI's shorthand). */
	if (strncmp(s, "Key=", 4) != 0 ||
	    (vals = strstr(s, ",Values=")) == NULL ||
	    (size_t)(vals - s - 4) >= sizeof(key))
		return sc_fail(err, errlen, "--targets wants "
		    "Key=K,Values=V1,V2 (e.g. Key=tag:Env,Values=prod), not "
		    "\"%.64s\"", s);
	snprintf(key, sizeof(key), "%.*s", (int)(vals - s - 4), s + 4);
	v = json_array();
	for (p = vals + 8; v != NULL; p = comma + 1) {
		comma = strchr(p, ',');
		if (comma == p || *p == '\0') {
			json_decref(v);
			return sc_fail(err, errlen, "--targets: an empty value "
			    "in \"%.64s\"", s);
		}
		json_array_append_new(v, json_stringn(p, comma != NULL ?
		    (size_t)(comma - p) : strlen(p)));
		if (comma == NULL)
			break;
	}
	t = json_pack("{s:s, s:o}", "Key", key, "Values", v);
	if (t == NULL || sc_target_ok(t, err, errlen) != 0) {
		json_decref(t);
		return PH_ERR_INVALID;
	}
	json_array_append_new(targets, t);
count:
	if (json_array_size(targets) > CLIENT_SENDCMD_MAX_TARGETS)
		return sc_fail(err, errlen, "--targets: at most 5 targets%s",
		    "");
	return 0;
}

static int
sc_param_append(json_t *params, const char *name, json_t *value)
{
	json_t *l = json_object_get(params, name);

	if (l == NULL) {
		l = json_array();
		if (json_object_set_new(params, name, l) != 0)
			return PH_ERR_NOMEM;
	}
	return json_array_append(l, value) == 0 ? 0 : PH_ERR_NOMEM;
}

int
client_sendcmd_add_parameters(json_t *params, const char *s, char *err,
    size_t errlen)
{
	const char *eq, *k;
	json_t *o, *v, *e;
	char name[128];
	size_t i;
	int rc = 0;

	if (s == NULL || *s == '\0' || strlen(s) > SC_ARG_MAX)
		return sc_fail(err, errlen, "--parameters wants name=value or "
		    "JSON%s", "");
	if (*s == '{') {
		if ((o = json_loads(s, 0, NULL)) == NULL)
			return sc_fail(err, errlen, "--parameters: not valid "
			    "JSON%s", "");
		json_object_foreach(o, k, v) {
			if (*k == '\0' || strlen(k) >= sizeof(name)) {
				rc = sc_fail(err, errlen, "--parameters: a bad "
				    "parameter name%s", "");
				break;
			}
			if (json_is_string(v))
				rc = sc_param_append(params, k, v);
			else if (sc_string_list(v)) {
				json_array_foreach(v, i, e) {
					if ((rc = sc_param_append(params, k,
					    e)) != 0)
						break;
				}
			} else
				rc = sc_fail(err, errlen, "--parameters: %.64s "
				    "wants a string or a list of strings", k);
			if (rc != 0)
				break;
		}
		json_decref(o);
		return rc;
	}
	eq = strchr(s, '=');
	if (eq == NULL || eq == s || (size_t)(eq - s) >= sizeof(name))
		return sc_fail(err, errlen, "--parameters wants name=value "
		    "(e.g. commands=uptime) or JSON, not \"%.64s\"", s);
	snprintf(name, sizeof(name), "%.*s", (int)(eq - s), s);
	if ((v = json_string(eq + 1)) == NULL)
		return sc_fail(err, errlen, "--parameters: %.64s is not valid "
		    "UTF-8", name);
	rc = sc_param_append(params, name, v);
	json_decref(v);
	return rc;
}

int
client_sendcmd_rate_valid(const char *s, int allow_zero)
{
	size_t n, d;

	if (s == NULL || (n = strlen(s)) == 0 || n > 7)
		return 0;
	d = strspn(s, "0123456789");
	if (d == 0 || (d != n && !(d == n - 1 && s[d] == '%')))
		return 0;
	if (s[0] == '0')
		return allow_zero && d == 1;
	if (d != n)             /* a percentage: 1% to 100% */
		return d <= 2 || strcmp(s, "100%") == 0;
	return 1;
}

static int
sc_add_instance_ids(json_t *ids, const char *s, char *err, size_t errlen)
{
	const char *p = s, *e;
	size_t n;

	while (*p != '\0') {
		n = strcspn(p, ", ");
		e = p + n;
		if (n > 0) {
			if (n > 64 || p[strspn(p, "abcdefghijklmnopqrstuvwxyz"
			    "0123456789-")] != *e)
				return sc_fail(err, errlen, "--instance-ids: "
				    "\"%.64s\" is not an instance id", p);
			json_array_append_new(ids, json_stringn(p, n));
		}
		p = *e != '\0' ? e + 1 : e;
	}
	if (json_array_size(ids) == 0)
		return sc_fail(err, errlen, "--instance-ids wants at least one "
		    "id%s", "");
	if (json_array_size(ids) > CLIENT_SENDCMD_MAX_INSTANCE_IDS)
		return sc_fail(err, errlen, "--instance-ids: at most 50 ids "
		    "(use --targets for more)%s", "");
	return 0;
}

static int
sc_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
client_sendcmd_parse(struct client_sendcmd_args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "document-name", required_argument, NULL, 'd' },
		{ "document-version", required_argument, NULL, 'V' },
		{ "targets", required_argument, NULL, 't' },
		{ "instance-ids", required_argument, NULL, 'i' },
		{ "parameters", required_argument, NULL, 'P' },
		{ "max-concurrency", required_argument, NULL, 'c' },
		{ "max-errors", required_argument, NULL, 'e' },
		{ "timeout-seconds", required_argument, NULL, 'T' },
		{ "comment", required_argument, NULL, 'C' },
		{ "wait", no_argument, NULL, 'w' },
		{ "wait-seconds", required_argument, NULL, 'W' },
		{ "profile", required_argument, NULL, 'p' },
		{ "region", required_argument, NULL, 'r' },
		{ "endpoint-url", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	size_t el = sizeof(a->err);
	int opt, i;

	memset(a, 0, sizeof(*a));
	a->wait_seconds = CLIENT_SENDCMD_WAIT_DEFAULT;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': a->document_name = optarg; break;
		case 'V': a->document_version = optarg; break;
		case 't':
			if (a->targets == NULL)
				a->targets = json_array();
			if (client_sendcmd_add_targets(a->targets, optarg,
			    a->err, el) != 0)
				return -1;
			break;
		case 'i':
			if (a->instance_ids == NULL)
				a->instance_ids = json_array();
			if (sc_add_instance_ids(a->instance_ids, optarg,
			    a->err, el) != 0)
				return -1;
			break;
		case 'P':
			if (a->parameters == NULL)
				a->parameters = json_object();
			if (client_sendcmd_add_parameters(a->parameters, optarg,
			    a->err, el) != 0)
				return -1;
			break;
		case 'c':
			if (!client_sendcmd_rate_valid(optarg, 0)) {
				sc_fail(a->err, el, "--max-concurrency wants a "
				    "number from 1 or a percentage from 1%% to "
				    "100%%, not \"%.16s\"", optarg);
				return -1;
			}
			a->max_concurrency = optarg;
			break;
		case 'e':
			if (!client_sendcmd_rate_valid(optarg, 1)) {
				sc_fail(a->err, el, "--max-errors wants a "
				    "number or a percentage from 0%% to 100%%, "
				    "not \"%.16s\"", optarg);
				return -1;
			}
			a->max_errors = optarg;
			break;
		case 'T':
			if (sc_long(optarg, CLIENT_SENDCMD_TIMEOUT_MIN,
			    CLIENT_SENDCMD_TIMEOUT_MAX,
			    &a->timeout_seconds) != 0) {
				sc_fail(a->err, el, "--timeout-seconds wants "
				    "30 to 2592000, not \"%.16s\"", optarg);
				return -1;
			}
			break;
		case 'C':
			if (strlen(optarg) > 100) {
				sc_fail(a->err, el, "--comment: at most 100 "
				    "characters%s", "");
				return -1;
			}
			a->comment = optarg;
			break;
		case 'w': a->wait = 1; break;
		case 'W':
			if (sc_long(optarg, 1, 30L * 86400,
			    &a->wait_seconds) != 0) {
				sc_fail(a->err, el, "--wait-seconds wants 1 to "
				    "2592000, not \"%.16s\"", optarg);
				return -1;
			}
			break;
		case 'p': a->profile = optarg; break;
		case 'r': a->region = optarg; break;
		case 'E': a->endpoint = optarg; break;
		case 'h': return 1;
		default:
			sc_fail(a->err, el, "unknown or incomplete option "
			    "\"%.64s\"", argv[optind - 1]);
			return -1;
		}
	}
	/* `--instance-ids i-1 i-2` as the AWS CLI takes them. */
	for (i = optind; i < argc; i++) {
		if (a->instance_ids == NULL) {
			sc_fail(a->err, el, "unexpected \"%.64s\"", argv[i]);
			return -1;
		}
		if (sc_add_instance_ids(a->instance_ids, argv[i], a->err,
		    el) != 0)
			return -1;
	}
	if (a->document_name == NULL || *a->document_name == '\0') {
		sc_fail(a->err, el, "--document-name is required (e.g. "
		    "AWS-RunShellScript)%s", "");
		return -1;
	}
	if ((a->targets == NULL) == (a->instance_ids == NULL)) {
		sc_fail(a->err, el, "give either --targets or --instance-ids"
		    "%s", "");
		return -1;
	}
	return 0;
}

void
client_sendcmd_args_free(struct client_sendcmd_args *a)
{
	json_decref(a->targets);
	json_decref(a->instance_ids);
	json_decref(a->parameters);
	a->targets = a->instance_ids = a->parameters = NULL;
}

char *
client_sendcmd_body(const struct client_sendcmd_args *a)
{
	json_t *o = json_object();
	char *s;

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "DocumentName", json_string(a->document_name));
	if (a->document_version != NULL)
		json_object_set_new(o, "DocumentVersion",
		    json_string(a->document_version));
	if (a->instance_ids != NULL)
		json_object_set(o, "InstanceIds", a->instance_ids);
	if (a->targets != NULL)
		json_object_set(o, "Targets", a->targets);
	if (a->parameters != NULL)
		json_object_set(o, "Parameters", a->parameters);
	if (a->max_concurrency != NULL)
		json_object_set_new(o, "MaxConcurrency",
		    json_string(a->max_concurrency));
	if (a->max_errors != NULL)
		json_object_set_new(o, "MaxErrors", json_string(a->max_errors));
	if (a->timeout_seconds > 0)
		json_object_set_new(o, "TimeoutSeconds",
		    json_integer(a->timeout_seconds));
	if (a->comment != NULL)
		json_object_set_new(o, "Comment", json_string(a->comment));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

/* ---- output -------------------------------------------------------------- */

static void
sc_clean(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

void
client_sendcmd_progress(char *out, size_t size, long done, long total,
    long failed, const char *status)
{
	char st[32];

	snprintf(st, sizeof(st), "%s", status != NULL ? status : "Pending");
	sc_clean(st);
	snprintf(out, size, "%ld / %ld done, %ld failed (%s)", done, total,
	    failed, st);
}

static const char *
sc_get(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

/* Append n bytes of s to out (bounded by size), control characters as
 * '?'. */
static void
sc_append(char *out, size_t size, size_t *len, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && *len + 1 < size; i++)
		out[(*len)++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ?
		    '?' : s[i];
	out[*len] = '\0';
}

static void
sc_newline(char *out, size_t size, size_t *len)
{
	if (*len + 1 < size) {
		out[(*len)++] = '\n';
		out[*len] = '\0';
	}
}

int
client_sendcmd_format_result(json_t *inv, char *out, size_t size)
{
	const char *status = sc_get(inv, "Status"), *det, *o, *nl;
	json_t *plugins = json_object_get(inv, "CommandPlugins"), *p;
	char head[512], code[32] = "";
	size_t len = 0, i;
	int lines, other;

	if (size == 0)
		return 0;
	out[0] = '\0';
	det = sc_get(inv, "StatusDetails");
	other = *det != '\0' && strcmp(det, status) != 0;
	/* The last step with a code is the one that decided. */
	json_array_foreach(plugins, i, p)
		if (json_is_integer(json_object_get(p, "ResponseCode")))
			snprintf(code, sizeof(code), "  code %lld",
			    (long long)json_integer_value(json_object_get(p,
			    "ResponseCode")));
	snprintf(head, sizeof(head), "%s  %s%s%s%s", sc_get(inv, "InstanceId"),
	    *status ? status : "-", other ? "/" : "", other ? det : "", code);
	sc_append(out, size, &len, head, strlen(head));
	sc_newline(out, size, &len);
	json_array_foreach(plugins, i, p) {
		o = sc_get(p, "Output");
		if (json_array_size(plugins) > 1) {
			sc_append(out, size, &len, "  [", 3);
			sc_append(out, size, &len, sc_get(p, "Name"),
			    strlen(sc_get(p, "Name")));
			sc_append(out, size, &len, "]", 1);
			sc_newline(out, size, &len);
		}
		for (lines = 0; *o != '\0' &&
		    lines < CLIENT_SENDCMD_OUTPUT_LINES; lines++) {
			nl = strchr(o, '\n');
			sc_append(out, size, &len, "    ", 4);
			sc_append(out, size, &len, o, nl ? (size_t)(nl - o) :
			    strlen(o));
			sc_newline(out, size, &len);
			o = nl ? nl + 1 : o + strlen(o);
		}
		if (*o != '\0') {
			sc_append(out, size, &len, "    ...", 7);
			sc_newline(out, size, &len);
		}
	}
	return strcmp(status, "Success") == 0;
}

/* ---- the command --------------------------------------------------------- */

static void
sc_usage(FILE *f)
{
	fprintf(f,
	    "usage: porthole send-command --document-name NAME\n"
	    "           (--targets Key=K,Values=V1,V2 |\n"
	    "            --instance-ids ID,...)\n"
	    "           [--parameters name=value|JSON]... "
	    "[--document-version V]\n"
	    "           [--max-concurrency N|N%%] [--max-errors N|N%%]\n"
	    "           [--timeout-seconds S] [--comment TEXT]\n"
	    "           [--wait [--wait-seconds S]] [--profile P] "
	    "[--region R]\n"
	    "           [--endpoint-url URL]\n"
	    "Runs a Command document (SendCommand) on the targets and prints\n"
	    "the CommandId. Targets: Key=tag:NAME, tag-key or InstanceIds\n"
	    "(repeat --targets for more); --parameters name=value adds one\n"
	    "value to that parameter (commas are kept), e.g.\n"
	    "  --parameters 'commands=uptime'\n"
	    "With --wait: a progress line on standard error (done / total,\n"
	    "failures), then one result per instance on standard output\n"
	    "(instance, status, response code, the first lines of output).\n"
	    "Exit status: 0 when every invocation succeeded (or, without\n"
	    "--wait, the command was sent), 1 when one did not or the wait\n"
	    "ran out (default %d s), 2 for a bad command line, 255 when an\n"
	    "API call failed.\n", CLIENT_SENDCMD_WAIT_DEFAULT);
}

static double
sc_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *
sc_call(const struct client_awscfg *cfg, const char *target, json_t *body,
    char *err, size_t errlen)
{
	struct buf resp;
	long status = 0;
	json_t *r = NULL;
	char *js;

	if (body == NULL || (js = json_dumps(body, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	buf_init(&resp, CLIENT_AWSAPI_MAX_RESPONSE);
	err[0] = '\0';
	if (client_awsapi_call(cfg, target, "ssm", js, &status, &resp, err,
	    errlen) == 0 && (r = json_loadb((const char *)resp.data,
	    resp.len, 0, NULL)) == NULL)
		snprintf(err, errlen, "%s: the answer is not JSON", target);
	buf_free(&resp);
	free(js);
	return r;
}

static int
sc_final(const char *s)
{
	return s != NULL && (strcmp(s, "Success") == 0 ||
	    strcmp(s, "Failed") == 0 || strcmp(s, "Cancelled") == 0 ||
	    strcmp(s, "TimedOut") == 0);
}

/* Print every invocation; 1 if all were Success. */
static int
sc_results(const struct client_awscfg *cfg, const char *cid, int *api_err)
{
	json_t *body, *r = NULL, *inv;
	const char *next = NULL;
	char err[1024], *text;
	size_t i, pages, n = 0;
	int all = 1;

	if ((text = malloc(16384)) == NULL)
		return 0;
	for (pages = 0; pages < SC_PAGES_MAX; pages++) {
		body = json_pack("{s:s, s:b, s:i}", "CommandId", cid, "Details",
		    1, "MaxResults", 50);
		if (body != NULL && next != NULL)
			json_object_set_new(body, "NextToken",
			    json_string(next));
		json_decref(r);
		r = sc_call(cfg, "AmazonSSM.ListCommandInvocations", body, err,
		    sizeof(err));
		json_decref(body);
		if (r == NULL) {
			fprintf(stderr, "\n%s\n", err);
			*api_err = 1;
			all = 0;
			break;
		}
		json_array_foreach(json_object_get(r, "CommandInvocations"), i,
		    inv) {
			if (!client_sendcmd_format_result(inv, text, 16384))
				all = 0;
			fputs(text, stdout);
			n++;
		}
		next = json_string_value(json_object_get(r, "NextToken"));
		if (next == NULL || *next == '\0')
			break;
	}
	json_decref(r);
	free(text);
	return all && n > 0;
}

int
client_sendcmd_main(int argc, char **argv)
{
	struct client_sendcmd_args a;
	struct client_awscfg *cfg = NULL;
	json_t *r = NULL, *body, *cmd;
	char err[1024], line[256], cid[128];
	const char *status = NULL;
	double t0;
	int rc, tty = isatty(STDERR_FILENO), api_err = 0, ret;
	long done, total, failed, last_done = -1, last_failed = -1;
	char last_status[32] = "";
	char *req;

	rc = client_sendcmd_parse(&a, argc, argv);
	if (rc != 0) {
		if (rc < 0)
			fprintf(stderr, "porthole send-command: %s\n(porthole "
			    "send-command --help for the options)\n", a.err);
		else
			sc_usage(stdout);
		client_sendcmd_args_free(&a);
		return rc > 0 ? 0 : CLIENT_SENDCMD_EXIT_USAGE;
	}
	ret = CLIENT_SENDCMD_EXIT_API;
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		goto out;
	if (client_awscfg_load(cfg, a.profile, a.region, a.endpoint) != 0) {
		fprintf(stderr, "\n%s\n", cfg->error);
		goto out;
	}
	if ((req = client_sendcmd_body(&a)) == NULL)
		goto out;
	body = json_loads(req, 0, NULL);
	free(req);
	r = sc_call(cfg, "AmazonSSM.SendCommand", body, err, sizeof(err));
	json_decref(body);
	cmd = json_object_get(r, "Command");
	if (json_string_value(json_object_get(cmd, "CommandId")) == NULL ||
	    strlen(json_string_value(json_object_get(cmd, "CommandId"))) >=
	    sizeof(cid)) {
		fprintf(stderr, "\n%s\n", err[0] ? err :
		    "porthole send-command: SendCommand answered no CommandId");
		goto out;
	}
	snprintf(cid, sizeof(cid), "%s", json_string_value(
	    json_object_get(cmd, "CommandId")));
	sc_clean(cid);
	printf("%s\n", cid);
	fflush(stdout);
	ret = 0;
	if (!a.wait)
		goto out;
	t0 = sc_mono();
	ret = CLIENT_SENDCMD_EXIT_FAILED;
	while (sc_mono() - t0 < (double)a.wait_seconds) {
		json_decref(r);
		body = json_pack("{s:s}", "CommandId", cid);
		r = sc_call(cfg, "AmazonSSM.ListCommands", body, err,
		    sizeof(err));
		json_decref(body);
		if (r == NULL) {
			fprintf(stderr, "\n%s\n", err);
			ret = CLIENT_SENDCMD_EXIT_API;
			goto out;
		}
		cmd = json_array_get(json_object_get(r, "Commands"), 0);
		status = json_string_value(json_object_get(cmd, "Status"));
		done = (long)json_integer_value(json_object_get(cmd,
		    "CompletedCount"));
		total = (long)json_integer_value(json_object_get(cmd,
		    "TargetCount"));
		failed = (long)json_integer_value(json_object_get(cmd,
		    "ErrorCount"));
		client_sendcmd_progress(line, sizeof(line), done, total,
		    failed, status);
		if (tty)
			fprintf(stderr, "\r\033[K%s", line);
		else if (done != last_done || failed != last_failed ||
		    strcmp(last_status, status ? status : "") != 0)
			fprintf(stderr, "%s\n", line);
		last_done = done;
		last_failed = failed;
		snprintf(last_status, sizeof(last_status), "%s",
		    status ? status : "");
		if (sc_final(status))
			break;
		usleep(SC_POLL_MS * 1000);
	}
	if (tty)
		fputc('\n', stderr);
	if (!sc_final(status)) {
		fprintf(stderr, "porthole send-command: %s is still %s after "
		    "%ld s\n", cid, last_status[0] ? last_status : "Pending",
		    a.wait_seconds);
		goto out;
	}
	ret = sc_results(cfg, cid, &api_err) ? 0 : api_err ?
	    CLIENT_SENDCMD_EXIT_API : CLIENT_SENDCMD_EXIT_FAILED;
out:
	fflush(stdout);
	json_decref(r);
	if (cfg != NULL) {
		client_awscfg_clear(cfg);
		free(cfg);
	}
	client_sendcmd_args_free(&a);
	return ret;
}
