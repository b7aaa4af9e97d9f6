/* audit: `porthole audit`. LookupEvents with at most one lookup attribute
 * (CloudTrail's rule): --user wins, and --event then filters here. Pages
 * are followed until --max events were printed or the trail ends. */
#include "client/audit.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/awsapi.h"
#include "client/awscfg.h"
#include "common/buf.h"
#include "common/err.h"

#define AUDIT_EXIT_USAGE 2
#define AUDIT_EXIT_API 255

int
client_audit_parse_time(const char *s, time_t now, time_t *out)
{
	static const struct {
		char unit;
		long long secs;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 },
	    { 'd', 86400 }, { 'w', 604800 } };
	struct tm tm;
	const char *end;
	char *e;
	long long n;
	size_t i, len;

	if (s == NULL || (len = strlen(s)) == 0 || len > 64)
		return PH_ERR_INVALID;
	for (i = 0; i < len && isdigit((unsigned char)s[i]); i++)
		;
	if (i > 0 && i == len - 1) {            /* an age: 10m */
		errno = 0;
		n = strtoll(s, &e, 10);
		if (errno != 0 || e != s + i || n > 36500LL * 86400)
			return PH_ERR_INVALID;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (s[len - 1] == units[i].unit) {
				if (n > 36500LL * 86400 / units[i].secs)
					return PH_ERR_INVALID;
				*out = now - (time_t)(n * units[i].secs);
				return 0;
			}
		return PH_ERR_INVALID;
	}
	if (i == len) {                         /* epoch seconds */
		errno = 0;
		n = strtoll(s, &e, 10);
		if (errno != 0 || n > 253402300799LL)
			return PH_ERR_INVALID;
		*out = (time_t)n;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL) {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL)
			return PH_ERR_INVALID;
	}
	if (*end == 'Z')
		end++;
	if (*end != '\0')
		return PH_ERR_INVALID;
	*out = timegm(&tm);
	return *out == (time_t)-1 ? PH_ERR_INVALID : 0;
}

/* dst gets s with control characters (a terminal's escapes) as '?'. */
static void
audit_clean(char *dst, size_t size, const char *s)
{
	size_t i;

	snprintf(dst, size, "%s", s != NULL && s[0] != '\0' ? s : "-");
	for (i = 0; dst[i] != '\0'; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = '?';
}

/* s whole, control characters as '?', and a newline. */
static void
audit_print_clean(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
	putchar('\n');
}

static const char *
audit_get(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

void
client_audit_format(json_t *event, char *out, size_t size)
{
	char when[32], src[64], name[128], who[320], ip[64], res[1200];
	const char *s, *code, *msg;
	json_t *ct = NULL, *id;

	s = audit_get(event, "CloudTrailEvent");
	if (s != NULL)
		ct = json_loads(s, 0, NULL);
	id = json_object_get(ct, "userIdentity");
	s = audit_get(id, "arn");
	if (s == NULL)
		s = audit_get(event, "Username");
	audit_clean(who, sizeof(who), s);
	audit_clean(when, sizeof(when), audit_get(ct, "eventTime"));
	audit_clean(src, sizeof(src), audit_get(event, "EventSource"));
	audit_clean(name, sizeof(name), audit_get(event, "EventName"));
	audit_clean(ip, sizeof(ip), audit_get(ct, "sourceIPAddress"));
	code = audit_get(ct, "errorCode");
	msg = audit_get(ct, "errorMessage");
	if (code == NULL)
		snprintf(res, sizeof(res), "ok");
	else {
		char c[128], m[1024];

		audit_clean(c, sizeof(c), code);
		audit_clean(m, sizeof(m), msg);
		snprintf(res, sizeof(res), "%s: %s", c, m);
	}
	snprintf(out, size, "%s  %s  %s  %s  %s  %s", when, src, name, who, ip,
	    res);
	json_decref(ct);
}

static void
audit_usage(FILE *f)
{
	fprintf(f,
	    "usage: porthole audit [--since T] [--until T] [--user NAME]\n"
	    "           [--event NAME] [--max N] [--json] [--profile P]\n"
	    "           [--region R] [--endpoint-url URL]\n"
	    "Prints the audit trail's events newest first (CloudTrail's\n"
	    "LookupEvents, which needs cloudtrail:LookupEvents): time,\n"
	    "source, event, caller, address, and ok or the error.\n"
	    "T: epoch seconds, 2026-12-04[T10:00:00Z] (UTC) or an age\n"
	    "(30s, 10m, 2h, 7d, 1w). --max: events to print (default %d).\n"
	    "--json: each event's CloudTrail record, one per line.\n",
	    CLIENT_AUDIT_DEFAULT_MAX);
}

struct audit_args {
	const char *user, *event, *profile, *region, *endpoint;
	time_t since, until;
	int has_since, has_until, json;
	long max;
};

static int
audit_parse_args(int argc, char **argv, struct audit_args *a)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "user", required_argument, NULL, 'U' },
		{ "event", required_argument, NULL, 'e' },
		{ "max", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "profile", required_argument, NULL, 'p' },
		{ "region", required_argument, NULL, 'r' },
		{ "endpoint-url", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	time_t now = time(NULL);
	char *end;
	int opt;

	memset(a, 0, sizeof(*a));
	a->max = CLIENT_AUDIT_DEFAULT_MAX;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (client_audit_parse_time(optarg, now, &a->since)) {
				fprintf(stderr, "porthole audit: --since wants "
				    "a time, not \"%.64s\"\n", optarg);
				return -1;
			}
			a->has_since = 1;
			break;
		case 'u':
			if (client_audit_parse_time(optarg, now, &a->until)) {
				fprintf(stderr, "porthole audit: --until wants "
				    "a time, not \"%.64s\"\n", optarg);
				return -1;
			}
			a->has_until = 1;
			break;
		case 'U': a->user = optarg; break;
		case 'e': a->event = optarg; break;
		case 'm':
			errno = 0;
			a->max = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || a->max < 1 ||
			    a->max > CLIENT_AUDIT_MAX) {
				fprintf(stderr, "porthole audit: --max wants 1 "
				    "to %d\n", CLIENT_AUDIT_MAX);
				return -1;
			}
			break;
		case 'j': a->json = 1; break;
		case 'p': a->profile = optarg; break;
		case 'r': a->region = optarg; break;
		case 'E': a->endpoint = optarg; break;
		case 'h': return 1;
		default:
			fprintf(stderr, "porthole audit: unknown or incomplete "
			    "option \"%.64s\"\n", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "porthole audit: unexpected \"%.64s\"\n",
		    argv[optind]);
		return -1;
	}
	if ((a->user != NULL && a->user[0] == '\0') ||
	    (a->event != NULL && a->event[0] == '\0')) {
		fprintf(stderr, "porthole audit: --user and --event want a "
		    "name\n");
		return -1;
	}
	return 0;
}

/* The request body of one page (malloc'd), or NULL. */
static char *
audit_body(const struct audit_args *a, const char *token)
{
	json_t *o = json_object(), *attr = NULL;
	char *s = NULL;

	if (o == NULL)
		return NULL;
	if (a->user != NULL)
		attr = json_pack("{s:s, s:s}", "AttributeKey", "Username",
		    "AttributeValue", a->user);
	else if (a->event != NULL)
		attr = json_pack("{s:s, s:s}", "AttributeKey", "EventName",
		    "AttributeValue", a->event);
	if (attr != NULL && json_object_set_new(o, "LookupAttributes",
	    json_pack("[o]", attr)) != 0)
		goto out;
	if (a->has_since && json_object_set_new(o, "StartTime",
	    json_integer((json_int_t)a->since)) != 0)
		goto out;
	if (a->has_until && json_object_set_new(o, "EndTime",
	    json_integer((json_int_t)a->until)) != 0)
		goto out;
	if (json_object_set_new(o, "MaxResults", json_integer(50)) != 0)
		goto out;
	if (token != NULL && json_object_set_new(o, "NextToken",
	    json_string(token)) != 0)
		goto out;
	s = json_dumps(o, JSON_COMPACT);
out:
	json_decref(o);
	return s;
}

int
client_audit_main(int argc, char **argv)
{
	struct client_awscfg *cfg;
	struct audit_args a;
	struct buf resp;
	char err[1024], line[2048], *body, *token = NULL;
	const char *name;
	json_t *page, *ev;
	long status, printed = 0, pages;
	size_t i;
	int rc;

	if ((rc = audit_parse_args(argc, argv, &a)) != 0) {
		audit_usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : AUDIT_EXIT_USAGE;
	}
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return AUDIT_EXIT_API;
	if (client_awscfg_load(cfg, a.profile, a.region, a.endpoint) != 0) {
		fprintf(stderr, "\n%s\n", cfg->error);
		free(cfg);
		return AUDIT_EXIT_API;
	}
	buf_init(&resp, CLIENT_AWSAPI_MAX_RESPONSE);
	rc = 0;
	for (pages = 0; pages < CLIENT_AUDIT_MAX_PAGES && printed < a.max;
	    pages++) {
		if ((body = audit_body(&a, token)) == NULL) {
			rc = PH_ERR_NOMEM;
			snprintf(err, sizeof(err), "out of memory");
			break;
		}
		buf_reset(&resp);
		status = 0;
		err[0] = '\0';
		rc = client_awsapi_call(cfg, CLIENT_AUDIT_TARGET, "cloudtrail",
		    body, &status, &resp, err, sizeof(err));
		free(body);
		if (rc != 0)
			break;
		page = json_loadb((const char *)resp.data, resp.len, 0, NULL);
		json_array_foreach(json_object_get(page, "Events"), i, ev) {
			if (printed >= a.max)
				break;
			name = audit_get(ev, "EventName");
			/* --event with --user: the second filter is ours. */
			if (a.user != NULL && a.event != NULL && (name == NULL ||
			    strcmp(name, a.event) != 0))
				continue;
			if (a.json)
				audit_print_clean(audit_get(ev,
				    "CloudTrailEvent"));
			else {
				client_audit_format(ev, line, sizeof(line));
				printf("%s\n", line);
			}
			printed++;
		}
		free(token);
		token = NULL;
		name = audit_get(page, "NextToken");
		if (name != NULL && (token = strdup(name)) == NULL)
			rc = PH_ERR_NOMEM;
		json_decref(page);
		if (token == NULL)
			break;
	}
	free(token);
	buf_free(&resp);
	client_awscfg_clear(cfg);
	free(cfg);
	fflush(stdout);
	if (rc != 0) {
		fprintf(stderr, "\n%s\n", err[0] ? err : ph_strerror(rc));
		return AUDIT_EXIT_API;
	}
	return 0;
}
