/* logs: `porthole logs` and `porthole replay` (see logs.h). */
#include "client/logs.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "client/awsapi.h"
#include "client/awscfg.h"
#include "common/err.h"
#include "common/record.h"

#define EXIT_USAGE 2
#define EXIT_API 255
/* Pages of one record: 2 MiB each, so about 200 GB; a server that never
 * says the end cannot keep the client forever. */
#define LOGS_PAGES_MAX 100000
/* A replay holds at most one frame and a header beyond what it played. */
#define REPLAY_BUF_MAX (RECORD_FRAME_MAX + RECORD_FRAME_HEAD + \
	RECORD_HEADER_MAX + RECORD_MAGIC_LEN + (size_t)(CLIENT_LOGS_PAGE * 2))

struct logs_opts {
	const char *session_id;
	const char *format;       /* "log", "cast", "rec" */
	const char *profile, *region, *endpoint;
	double speed;
	int wait_s;               /* RecordNotReady: retry this long */
	int replay;
	int status;               /* logs --status: the delivery queue */
};

static void
logs_usage(FILE *f)
{
	fprintf(f,
	    "usage: porthole logs SESSION-ID [--text|--cast|--raw] "
	    "[--wait SECONDS]\n"
	    "           [--profile P] [--region R] [--endpoint-url URL]\n"
	    "       porthole logs --status [--profile P] [--region R] "
	    "[--endpoint-url URL]\n"
	    "       porthole replay SESSION-ID [--speed N] [--wait SECONDS]\n"
	    "           [--profile P] [--region R] [--endpoint-url URL]\n"
	    "logs prints a session's record: --text (default) the plain-text\n"
	    "transcript, --cast the asciicast v2 file (asciinema play), --raw\n"
	    "the raw record as portholed stores it. replay plays the output\n"
	    "with its timing, N times faster (--speed 0: no waits; a pause is\n"
	    "at most %d s). --wait retries while the record is not complete.\n"
	    "Needs ssm:GetSessionLog on the session.\n"
	    "logs --status shows the record delivery queue (its depth, the\n"
	    "oldest item, the last upload error); exit status 1 while the\n"
	    "last upload failed. Needs ssm:GetRecordDeliveryStatus.\n",
	    CLIENT_REPLAY_MAX_WAIT_MS / 1000);
}

int
client_logs_page_parse(const uint8_t *body, size_t len, struct buf *out,
    int64_t *next_offset)
{
	json_error_t jerr;
	json_t *o, *c, *n, *l;
	const char *s;
	size_t slen, pad = 0;
	uint8_t *raw = NULL;
	int rc = PH_ERR_INVALID, dn;

	*next_offset = -1;
	o = json_loadb((const char *)body, len, 0, &jerr);
	c = json_object_get(o, "Content");
	n = json_object_get(o, "NextOffset");
	l = json_object_get(o, "Length");
	if (!json_is_string(c) || !json_is_integer(l) ||
	    (n != NULL && !json_is_integer(n)))
		goto done;
	s = json_string_value(c);
	slen = json_string_length(c);
	if (slen % 4 != 0 || slen > (size_t)INT32_MAX)
		goto done;
	if (slen > 0 && s[slen - 1] == '=')
		pad = slen > 1 && s[slen - 2] == '=' ? 2 : 1;
	if ((raw = malloc(slen / 4 * 3 + 1)) == NULL) {
		rc = PH_ERR_NOMEM;
		goto done;
	}
	dn = slen > 0 ? EVP_DecodeBlock(raw, (const unsigned char *)s,
	    (int)slen) : 0;
	if (dn < 0 || (size_t)dn < pad)
		goto done;
	dn -= (int)pad;
	if ((json_int_t)dn != json_integer_value(l))
		goto done;
	if (n != NULL) {
		if (json_integer_value(n) <= 0)
			goto done;
		*next_offset = json_integer_value(n);
	}
	rc = buf_append(out, raw, (size_t)dn);
done:
	free(raw);
	json_decref(o);
	return rc;
}

static void
sleep_ms(uint64_t ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return PH_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
client_replay_feed(struct buf *in, int *have_header, uint64_t *last_us,
    double speed, int fd)
{
	struct record_reader r;
	struct record_header h;
	struct record_frame f;
	double wait;
	int rc;

	record_reader_init(&r, in->data, in->len);
	if (!*have_header) {
		rc = record_read_header(&r, &h);
		if (rc == PH_ERR_SHORT)
			return 0;
		if (rc != 0)
			return PH_ERR_INVALID;
		*have_header = 1;
	} else {
		r.off = 0;
	}
	while ((rc = record_read_frame(&r, &f)) == 1) {
		if (f.type != 'o')
			continue;
		if (speed > 0 && f.t_us > *last_us) {
			wait = (double)(f.t_us - *last_us) / 1000.0 / speed;
			sleep_ms(wait > CLIENT_REPLAY_MAX_WAIT_MS ?
			    CLIENT_REPLAY_MAX_WAIT_MS : (uint64_t)wait);
		}
		if (f.t_us > *last_us)
			*last_us = f.t_us;
		if (f.len > 0 && write_all(fd, f.data, f.len) != 0)
			return PH_ERR_IO;
	}
	if (rc < 0)
		return PH_ERR_INVALID;
	buf_consume(in, r.off);
	return 0;
}

/* One GetSessionLog call; *not_ready set for RecordNotReadyException. */
static int
logs_call(const struct client_awscfg *cfg, const struct logs_opts *o,
    int64_t offset, struct buf *resp, int *not_ready, char *err,
    size_t errlen)
{
	char code[128];
	json_t *req;
	char *body;
	long status = 0;
	int rc;

	*not_ready = 0;
	req = json_pack("{s:s, s:s, s:I, s:I}", "SessionId", o->session_id,
	    "Format", o->format, "Offset", (json_int_t)offset, "MaxBytes",
	    (json_int_t)CLIENT_LOGS_PAGE);
	if (req == NULL) {
		snprintf(err, errlen, "the session id is not valid text");
		return PH_ERR_INVALID;
	}
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (body == NULL)
		return PH_ERR_NOMEM;
	buf_reset(resp);
	err[0] = '\0';
	rc = client_awsapi_call(cfg, "AmazonSSM.GetSessionLog", "ssm", body,
	    &status, resp, err, errlen);
	free(body);
	if (rc != 0 && status >= 400) {
		client_awsapi_error_parse(status, resp->data, resp->len, code,
		    sizeof(code), NULL, 0);
		*not_ready = strcmp(code, "RecordNotReadyException") == 0;
	}
	return rc;
}

static int
logs_run(const struct client_awscfg *cfg, const struct logs_opts *o)
{
	struct buf resp, page, rec;
	int64_t offset = 0, next;
	int pages, rc = 0, not_ready, have_header = 0, tries = 0;
	uint64_t last_us = 0;
	char err[1024];

	buf_init(&resp, CLIENT_AWSAPI_MAX_RESPONSE);
	buf_init(&page, (size_t)CLIENT_LOGS_PAGE + 16);
	buf_init(&rec, REPLAY_BUF_MAX);
	for (pages = 0; pages < LOGS_PAGES_MAX; pages++) {
		rc = logs_call(cfg, o, offset, &resp, &not_ready, err,
		    sizeof(err));
		if (rc != 0 && not_ready && offset == 0 &&
		    tries++ < o->wait_s) {
			sleep_ms(1000);
			pages--;
			continue;
		}
		if (rc != 0) {
			fprintf(stderr, "\n%s\n", err[0] ? err :
			    ph_strerror(rc));
			rc = EXIT_API;
			break;
		}
		buf_reset(&page);
		if (client_logs_page_parse(resp.data, resp.len, &page,
		    &next) != 0 || (next >= 0 && next <= offset)) {
			fprintf(stderr, "porthole: unusable GetSessionLog "
			    "response\n");
			rc = EXIT_API;
			break;
		}
		if (o->replay) {
			if (buf_append(&rec, page.data, page.len) != 0 ||
			    client_replay_feed(&rec, &have_header, &last_us,
			    o->speed, STDOUT_FILENO) != 0) {
				fprintf(stderr, "porthole: the record of %s "
				    "is damaged or is not a record\n",
				    o->session_id);
				rc = 1;
				break;
			}
		} else if (page.len > 0 && write_all(STDOUT_FILENO,
		    page.data, page.len) != 0) {
			rc = 1;
			break;
		}
		if (next < 0 || page.len == 0)
			break;
		offset = next;
	}
	buf_free(&resp);
	buf_free(&page);
	buf_free(&rec);
	return rc;
}

/* logs --status: GetRecordDeliveryStatus, printed one "name: value" a
 * line. 0 healthy, 1 not, EXIT_API when the call fails. */
static int
logs_status(const struct client_awscfg *cfg)
{
	struct buf resp;
	json_error_t jerr;
	json_t *o = NULL, *d, *t, *h, *e;
	char err[1024], when[32];
	long status = 0;
	struct tm tm;
	time_t sec = 0;
	int rc;

	buf_init(&resp, CLIENT_AWSAPI_MAX_RESPONSE);
	err[0] = '\0';
	rc = client_awsapi_call(cfg, "AmazonSSM.GetRecordDeliveryStatus",
	    "ssm", "{}", &status, &resp, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "\n%s\n", err[0] ? err : ph_strerror(rc));
		rc = EXIT_API;
		goto done;
	}
	o = json_loadb((const char *)resp.data, resp.len, 0, &jerr);
	d = json_object_get(o, "QueueDepth");
	t = json_object_get(o, "OldestQueuedTime");
	h = json_object_get(o, "Healthy");
	e = json_object_get(o, "LastError");
	if (!json_is_integer(d) || json_integer_value(d) < 0 ||
	    !json_is_boolean(h) || (t != NULL && !json_is_number(t)) ||
	    (e != NULL && !json_is_string(e))) {
		fprintf(stderr, "porthole: unusable GetRecordDeliveryStatus "
		    "response\n");
		rc = EXIT_API;
		goto done;
	}
	printf("queue_depth: %lld\n", (long long)json_integer_value(d));
	when[0] = '\0';
	if (t != NULL && json_number_value(t) > 0 &&
	    json_number_value(t) < 253402300800.0) {
		sec = (time_t)json_number_value(t);
		if (gmtime_r(&sec, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
			    &tm);
	}
	if (when[0] != '\0')
		printf("oldest_queued: %s (%lld s ago)\n", when,
		    (long long)(time(NULL) - sec));
	printf("healthy: %s\n", json_is_true(h) ? "yes" : "no");
	if (e != NULL)
		printf("last_error: %s\n", json_string_value(e));
	rc = json_is_true(h) ? 0 : 1;
done:
	json_decref(o);
	buf_free(&resp);
	return rc;
}

int
client_logs_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "text", no_argument, NULL, 't' },
		{ "cast", no_argument, NULL, 'c' },
		{ "raw", no_argument, NULL, 'r' },
		{ "speed", required_argument, NULL, 's' },
		{ "wait", required_argument, NULL, 'w' },
		{ "status", no_argument, NULL, 'S' },
		{ "profile", required_argument, NULL, 'p' },
		{ "region", required_argument, NULL, 'R' },
		{ "endpoint-url", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct client_awscfg cfg;
	struct logs_opts o;
	char *end;
	long l;
	int opt, rc;

	memset(&o, 0, sizeof(o));
	o.replay = strcmp(argv[0], "replay") == 0;
	o.format = o.replay ? "rec" : "log";
	o.speed = 1.0;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 't': o.format = "log"; break;
		case 'c': o.format = "cast"; break;
		case 'r': o.format = "rec"; break;
		case 'S': o.status = 1; break;
		case 's':
			o.speed = strtod(optarg, &end);
			if (*end != '\0' || end == optarg || !(o.speed >= 0) ||
			    o.speed > 1000) {
				fprintf(stderr, "porthole: --speed wants a "
				    "number from 0 to 1000\n");
				return EXIT_USAGE;
			}
			break;
		case 'w':
			l = strtol(optarg, &end, 10);
			if (*end != '\0' || end == optarg || l < 0 ||
			    l > 3600) {
				fprintf(stderr, "porthole: --wait wants "
				    "seconds from 0 to 3600\n");
				return EXIT_USAGE;
			}
			o.wait_s = (int)l;
			break;
		case 'p': o.profile = optarg; break;
		case 'R': o.region = optarg; break;
		case 'e': o.endpoint = optarg; break;
		case 'h': logs_usage(stdout); return 0;
		default: logs_usage(stderr); return EXIT_USAGE;
		}
	}
	if (o.status && (o.replay || optind != argc)) {
		logs_usage(stderr);
		return EXIT_USAGE;
	}
	if (!o.status && (optind != argc - 1 || argv[optind][0] == '\0')) {
		logs_usage(stderr);
		return EXIT_USAGE;
	}
	o.session_id = o.status ? "" : argv[optind];
	if (o.replay && strcmp(o.format, "rec") != 0) {
		fprintf(stderr, "porthole: replay plays the raw record; "
		    "--text and --cast are for logs\n");
		return EXIT_USAGE;
	}
	if (client_awscfg_load(&cfg, o.profile, o.region,
	    o.endpoint) != 0) {
		fprintf(stderr, "\n%s\n", cfg.error);
		client_awscfg_clear(&cfg);
		return EXIT_API;
	}
	rc = o.status ? logs_status(&cfg) : logs_run(&cfg, &o);
	client_awscfg_clear(&cfg);
	return rc;
}
