/* audit: the event writer (secrets hidden, files and modes, rotation by
 * size and day, the bucket for unauthenticated events), the reader
 * (newest first, resumable, garbage lines), LookupEvents' dispatcher, and
 * `porthole audit`'s time parsing and line format. Garbage everywhere
 * must not crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "client/audit.h"
#include "common/err.h"
#include "server/api.h"
#include "server/api_cloudtrail.h"
#include "server/audit.h"
#include "server/audit_sink.h"
#include "server/authz.h"
#include "server/server.h"

#define ACCT "123456789012"
#define DAY_MS ((int64_t)86400 * 1000)
/* 2026-12-04T12:00:00Z */
#define T0 ((int64_t)1796385600 * 1000)

struct fixture {
	char dir[64];
	struct audit *a;
};

static void
rm_tree(const char *dir)
{
	char sub[128], path[512];
	struct dirent *e;
	DIR *d;

	snprintf(sub, sizeof(sub), "%s/audit", dir);
	if ((d = opendir(sub)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", sub, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(sub);
	rmdir(dir);
}

static int
open_fixture(struct fixture *f, uint64_t max)
{
	struct audit_config cfg = { max, 0, NULL, NULL };

	snprintf(f->dir, sizeof(f->dir), "/tmp/ph-audit-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	return audit_open(&f->a, f->dir, &cfg);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || open_fixture(f, 0) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
setup_small(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || open_fixture(f, AUDIT_MIN_FILE_BYTES) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	audit_close(f->a);
	rm_tree(f->dir);
	free(f);
	return 0;
}

static void
admin(struct principal *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = PRINCIPAL_USER;
	p->active = 1;
	p->is_root_admin = 1;
	snprintf(p->name, sizeof(p->name), "admin");
	snprintf(p->user_id, sizeof(p->user_id), "AIDAADMIN");
	snprintf(p->arn, sizeof(p->arn), "arn:aws:iam::" ACCT ":user/admin");
	snprintf(p->access_key_id, sizeof(p->access_key_id),
	    "AKIAADMIN0000000000");
}

/* Everything the audit directory holds, concatenated. */
static char *
slurp_all(const char *dir, size_t *total, int *nfiles)
{
	char sub[128], path[512];
	struct dirent *e;
	char *all = NULL;
	size_t n = 0;
	DIR *d;

	*nfiles = 0;
	snprintf(sub, sizeof(sub), "%s/audit", dir);
	assert_non_null(d = opendir(sub));
	while ((e = readdir(d)) != NULL) {
		FILE *fp;
		long sz;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", sub, e->d_name);
		assert_non_null(fp = fopen(path, "rb"));
		fseek(fp, 0, SEEK_END);
		sz = ftell(fp);
		fseek(fp, 0, SEEK_SET);
		all = realloc(all, n + (size_t)sz + 1);
		assert_non_null(all);
		assert_int_equal(fread(all + n, 1, (size_t)sz, fp), (size_t)sz);
		n += (size_t)sz;
		fclose(fp);
		(*nfiles)++;
	}
	closedir(d);
	if (all == NULL)
		all = calloc(1, 1);
	all[n] = '\0';
	*total = n;
	return all;
}

/* ---- secrets ------------------------------------------------------------ */

static void
test_hidden_members(void **state)
{
	static const char *const hidden[] = {
		"SecretAccessKey", "Password", "OldPassword", "NewPassword",
		"Plaintext", "TokenValue", "SessionToken", "CiphertextBlob",
		"TokenCode", "ClientSecret", "secret", "PASSWORD",
		"PrivateKey", "ActivationCode", "Passphrase",
		"EncryptedKeyMaterial", "ImportToken", "Credentials",
		"GrantTokens", "NextToken", "x-SECRET-y",
		"Tags.member.1.Password", NULL };
	static const char *const kept[] = {
		"PolicyDocument", "UserName", "KeyId", "Target", "AccessKeyId",
		"RoleArn", "EncryptionContext", "SessionId", "DocumentName",
		"Parameters", "KeySpec", "", NULL };
	size_t i;

	(void)state;
	for (i = 0; hidden[i] != NULL; i++)
		assert_true(audit_hidden_member(hidden[i]));
	for (i = 0; kept[i] != NULL; i++)
		assert_false(audit_hidden_member(kept[i]));
	assert_false(audit_hidden_member(NULL));
}

static void
test_redact(void **state)
{
	json_t *in, *out;
	char *s;
	int i;

	(void)state;
	in = json_loads("{\"UserName\":\"bob\",\"Password\":\"pw-SECRET1\","
	    "\"PolicyDocument\":\"{\\\"Version\\\":\\\"2012-10-17\\\"}\","
	    "\"Nested\":{\"Deeper\":[{\"SessionToken\":\"tok-SECRET2\"},"
	    "{\"ok\":1}],\"SecretAccessKey\":[\"SECRET3\"]},"
	    "\"Plaintext\":\"SECRET4\",\"n\":3.5,\"b\":true,\"z\":null}",
	    0, NULL);
	assert_non_null(in);
	out = audit_redact(in);
	assert_non_null(out);
	s = json_dumps(out, JSON_COMPACT);
	assert_null(strstr(s, "SECRET1"));
	assert_null(strstr(s, "SECRET2"));
	assert_null(strstr(s, "SECRET3"));
	assert_null(strstr(s, "SECRET4"));
	assert_non_null(strstr(s, "\"UserName\":\"bob\""));
	assert_non_null(strstr(s, "2012-10-17"));
	assert_non_null(strstr(s, "\"Password\":\"" AUDIT_HIDDEN "\""));
	assert_non_null(strstr(s, "\"n\":3.5"));
	assert_non_null(strstr(s, "\"z\":null"));
	free(s);
	json_decref(out);
	json_decref(in);

	/* Deep nesting is cut, not recursed into without end. */
	in = json_array();
	out = in;
	for (i = 0; i < 2000; i++) {
		json_t *next = json_array();

		json_array_append_new(out, next);
		out = next;
	}
	out = audit_redact(in);
	assert_non_null(out);
	s = json_dumps(out, JSON_COMPACT);
	assert_non_null(strstr(s, "\"...\""));
	assert_true(strlen(s) < 200);
	free(s);
	json_decref(out);
	json_decref(in);
	out = audit_redact(NULL);
	assert_true(json_is_null(out));
	json_decref(out);
}

static void
test_form_and_response(void **state)
{
	static const char form[] = "Action=CreateLoginProfile&Version="
	    "2010-05-08&UserName=bob&Password=s3cr3t%21PW&NewPassword=np"
	    "SECRET&PolicyDocument=%7B%22a%22%3A1%7D";
	struct audit_event ev;
	struct principal p;
	json_t *o, *resp;
	char *s;

	(void)state;
	admin(&p);
	memset(&ev, 0, sizeof(ev));
	ev.service = "iam";
	ev.name = "CreateLoginProfile";
	ev.principal = &p;
	ev.form = form;
	ev.form_len = strlen(form);
	resp = json_loads("{\"SessionId\":\"s-1\",\"TokenValue\":\"TOKSECRET\","
	    "\"StreamUrl\":\"wss://x/y\",\"Plaintext\":\"PLAINSECRET\","
	    "\"CiphertextBlob\":\"blob\",\"ActivationCode\":\"ACTSECRET\","
	    "\"KeyMetadata\":{\"KeyId\":\"k\",\"Arn\":\"arn:k\","
	    "\"Secret\":\"NESTSECRET\"}}", 0, NULL);
	ev.response = resp;
	o = audit_event_json(&ev, "00000000-0000-4000-8000-000000000000");
	assert_non_null(o);
	s = json_dumps(o, JSON_COMPACT);
	assert_null(strstr(s, "s3cr3t"));
	assert_null(strstr(s, "npSECRET"));
	assert_null(strstr(s, "TOKSECRET"));
	assert_null(strstr(s, "PLAINSECRET"));
	assert_null(strstr(s, "ACTSECRET"));
	assert_null(strstr(s, "NESTSECRET"));
	assert_null(strstr(s, "\"Action\""));
	assert_non_null(strstr(s, "\"UserName\":\"bob\""));
	assert_non_null(strstr(s, "\"PolicyDocument\":\"{\\\"a\\\":1}\""));
	assert_non_null(strstr(s, "\"SessionId\":\"s-1\""));
	assert_non_null(strstr(s, "\"Arn\":\"arn:k\""));
	assert_string_equal(json_string_value(json_object_get(o,
	    "eventSource")), "iam.amazonaws.com");
	assert_string_equal(json_string_value(json_object_get(o,
	    "eventID")), "00000000-0000-4000-8000-000000000000");
	assert_true(json_is_false(json_object_get(o, "readOnly")));
	free(s);
	json_decref(o);
	json_decref(resp);

	/* AssumeRole's answer: the key id and role session, never the
	 * secret or the token; garbage XML is no answer. */
	ev.response = NULL;
	ev.response_xml = "<AssumeRoleResponse xmlns=\"x\"><AssumeRoleResult>"
	    "<Credentials><AccessKeyId>ASIAKEEP</AccessKeyId>"
	    "<SecretAccessKey>XMLSECRET</SecretAccessKey><SessionToken>"
	    "XMLTOKEN</SessionToken><Expiration>2026-12-04T13:00:00Z"
	    "</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::1:"
	    "assumed-role/r/s</Arn><AssumedRoleId>AROA1:s</AssumedRoleId>"
	    "</AssumedRoleUser></AssumeRoleResult></AssumeRoleResponse>";
	ev.response_xml_len = strlen(ev.response_xml);
	o = audit_event_json(&ev, NULL);
	s = json_dumps(json_object_get(o, "responseElements"), JSON_COMPACT);
	assert_string_equal(s, "{\"Credentials\":{\"AccessKeyId\":"
	    "\"ASIAKEEP\",\"Expiration\":\"2026-12-04T13:00:00Z\"},"
	    "\"AssumedRoleUser\":{\"Arn\":\"arn:aws:sts::1:assumed-role/r/s\","
	    "\"AssumedRoleId\":\"AROA1:s\"}}");
	free(s);
	json_decref(o);
	ev.response_xml = "<a><Credentials><AccessKeyId>x</Credentials>";
	ev.response_xml_len = strlen(ev.response_xml);
	o = audit_event_json(&ev, NULL);
	assert_non_null(o);
	json_decref(o);
	ev.response_xml = NULL;

	/* A body that is no form: no parameters, no crash. */
	ev.form = "%zz&=&&";
	ev.form_len = 7;
	ev.response = NULL;
	o = audit_event_json(&ev, NULL);
	assert_non_null(o);
	assert_true(json_is_null(json_object_get(o, "requestParameters")));
	assert_true(json_is_null(json_object_get(o, "responseElements")));
	json_decref(o);
}

static void
test_pieces(void **state)
{
	char akid[129], svc[64], src[64];

	(void)state;
	assert_true(audit_read_only("DescribeSessions"));
	assert_true(audit_read_only("GetCallerIdentity"));
	assert_true(audit_read_only("ListUsers"));
	assert_true(audit_read_only("LookupEvents"));
	assert_false(audit_read_only("StartSession"));
	assert_false(audit_read_only("CreateAccessKey"));
	assert_false(audit_read_only(NULL));
	audit_event_source("ssm", src, sizeof(src));
	assert_string_equal(src, "ssm.amazonaws.com");
	audit_event_source("ssmmessages", src, sizeof(src));
	assert_string_equal(src, "ssmmessages.amazonaws.com");
	audit_event_source("-", src, sizeof(src));
	assert_string_equal(src, "unknown");
	audit_event_source("S3/../x", src, sizeof(src));
	assert_string_equal(src, "unknown");
	audit_event_source(NULL, src, sizeof(src));
	assert_string_equal(src, "unknown");
	audit_event_source("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", src,
	    sizeof(src));
	assert_string_equal(src, "unknown");

	assert_int_equal(audit_claimed_credential("AWS4-HMAC-SHA256 "
	    "Credential=AKIAEXAMPLE/20261204/us-east-1/kms/aws4_request, "
	    "SignedHeaders=host, Signature=00", akid, sizeof(akid), svc,
	    sizeof(svc)), 0);
	assert_string_equal(akid, "AKIAEXAMPLE");
	assert_string_equal(svc, "kms");
	assert_int_equal(audit_claimed_credential("Credential=AK/2026", akid,
	    sizeof(akid), svc, sizeof(svc)), 0);
	assert_string_equal(svc, "");
	assert_int_not_equal(audit_claimed_credential("Credential=/x", akid,
	    sizeof(akid), svc, sizeof(svc)), 0);
	assert_int_not_equal(audit_claimed_credential("Credential=A\"B/x",
	    akid, sizeof(akid), svc, sizeof(svc)), 0);
	assert_int_not_equal(audit_claimed_credential("Credential=ABC", akid,
	    sizeof(akid), svc, sizeof(svc)), 0);
	assert_int_not_equal(audit_claimed_credential(NULL, akid,
	    sizeof(akid), svc, sizeof(svc)), 0);
	assert_int_not_equal(audit_claimed_credential("garbage", akid,
	    sizeof(akid), svc, sizeof(svc)), 0);
}

/* ---- writing ------------------------------------------------------------ */

static int
write_seq(struct audit *a, int64_t ms, int seq, size_t pad)
{
	struct audit_event ev;
	struct principal p;
	char *padding;
	json_t *req;
	int rc;

	admin(&p);
	padding = malloc(pad + 1);
	memset(padding, 'x', pad);
	padding[pad] = '\0';
	req = json_pack("{s:i, s:s, s:s}", "Seq", seq, "Pad", padding,
	    "SecretAccessKey", "WRITE-SECRET");
	memset(&ev, 0, sizeof(ev));
	ev.time_ms = ms;
	ev.service = "ssm";
	ev.name = seq % 2 ? "DescribeSessions" : "StartSession";
	ev.region = "us-east-1";
	ev.account_id = ACCT;
	ev.source_ip = "127.0.0.1";
	ev.user_agent = "test/1.0";
	ev.principal = &p;
	ev.request = req;
	ev.request_id = "rid";
	rc = audit_record(a, &ev);
	json_decref(req);
	free(padding);
	return rc;
}

static void
test_record_file(void **state)
{
	struct fixture *f = *state;
	char path[256];
	struct stat sb;
	size_t n;
	int files;
	char *all;
	json_t *o;

	assert_int_equal(write_seq(f->a, T0, 1, 10), 0);
	snprintf(path, sizeof(path), "%s/audit", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/audit/audit-2026-12-04.jsonl",
	    f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	all = slurp_all(f->dir, &n, &files);
	assert_int_equal(files, 1);
	assert_true(n > 0 && all[n - 1] == '\n');
	assert_null(strstr(all, "WRITE-SECRET"));
	assert_non_null(o = json_loads(all, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(o,
	    "eventTime")), "2026-12-04T12:00:00Z");
	assert_string_equal(json_string_value(json_object_get(o,
	    "eventVersion")), "1.08");
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(o, "userIdentity"), "type")), "IAMUser");
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(o, "userIdentity"), "accountId")), ACCT);
	assert_string_equal(json_string_value(json_object_get(o,
	    "recipientAccountId")), ACCT);
	assert_null(json_object_get(o, "errorCode"));
	assert_int_equal(audit_failures(f->a), 0);
	json_decref(o);
	free(all);
}

static void
test_rotation_by_size_and_day(void **state)
{
	struct fixture *f = *state;
	char path[256];
	struct stat sb;
	struct dirent *e;
	int i, files = 0;
	DIR *d;

	for (i = 0; i < 60; i++)
		assert_int_equal(write_seq(f->a, T0 + i, i, 300), 0);
	assert_int_equal(write_seq(f->a, T0 + DAY_MS, 1000, 10), 0);
	snprintf(path, sizeof(path), "%s/audit", f->dir);
	assert_non_null(d = opendir(path));
	while ((e = readdir(d)) != NULL) {
		char p2[512];

		if (e->d_name[0] == '.')
			continue;
		files++;
		snprintf(p2, sizeof(p2), "%s/%s", path, e->d_name);
		assert_int_equal(stat(p2, &sb), 0);
		assert_true((uint64_t)sb.st_size <= AUDIT_MIN_FILE_BYTES);
		assert_int_equal(sb.st_mode & 0777, 0600);
	}
	closedir(d);
	assert_true(files > 3);
	snprintf(path, sizeof(path), "%s/audit/audit-2026-12-04.1.jsonl",
	    f->dir);
	assert_int_equal(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/audit/audit-2026-12-05.jsonl",
	    f->dir);
	assert_int_equal(stat(path, &sb), 0);

	/* A new writer continues the newest file of the day. */
	audit_close(f->a);
	{
		struct audit_config cfg = { AUDIT_MIN_FILE_BYTES, 0, NULL,
		    NULL };

		assert_int_equal(audit_open(&f->a, f->dir, &cfg), 0);
	}
	assert_int_equal(write_seq(f->a, T0 + DAY_MS + 1, 1001, 10), 0);
	snprintf(path, sizeof(path), "%s/audit/audit-2026-12-05.1.jsonl",
	    f->dir);
	assert_int_not_equal(stat(path, &sb), 0);
}

/* ---- reading ------------------------------------------------------------ */

struct collect {
	int seqs[4096];
	int n;
	int stop_every;   /* 0: never */
	int garbage;      /* lines that were not JSON */
};

static int
collect_cb(void *arg, const char *line, size_t len)
{
	struct collect *c = arg;
	json_t *o = json_loadb(line, len, 0, NULL);
	json_t *seq = json_object_get(json_object_get(o,
	    "requestParameters"), "Seq");

	if (o == NULL || !json_is_integer(seq))
		c->garbage++;
	else if (c->n < 4096)
		c->seqs[c->n++] = (int)json_integer_value(seq);
	json_decref(o);
	return c->stop_every && c->n % c->stop_every == 0 && o != NULL ? 1 : 0;
}

static void
test_scan_newest_first_and_resume(void **state)
{
	struct fixture *f = *state;
	struct audit_pos next, from;
	struct audit_scan scan;
	struct collect *c = calloc(1, sizeof(*c));
	char token[64];
	int i, more, rounds;

	for (i = 0; i < 80; i++)
		assert_int_equal(write_seq(f->a, T0 + i * 1000, i, 200), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(write_seq(f->a, T0 + DAY_MS + i, 100 + i, 5),
		    0);
	/* All at once. */
	memset(&scan, 0, sizeof(scan));
	scan.min_ms = INT64_MIN;
	scan.max_ms = INT64_MAX;
	scan.max_bytes = 1 << 30;
	scan.max_lines = 100000;
	assert_int_equal(audit_scan(f->a, &scan, collect_cb, c, &next, &more),
	    0);
	assert_int_equal(more, 0);
	assert_int_equal(c->n, 85);
	for (i = 0; i < 5; i++)
		assert_int_equal(c->seqs[i], 104 - i);
	for (i = 0; i < 80; i++)
		assert_int_equal(c->seqs[5 + i], 79 - i);

	/* Seven at a time, through the token's text. */
	memset(c, 0, sizeof(*c));
	c->stop_every = 7;
	scan.from = NULL;
	for (rounds = 0; rounds < 100; rounds++) {
		assert_int_equal(audit_scan(f->a, &scan, collect_cb, c, &next,
		    &more), 0);
		if (!more)
			break;
		audit_pos_format(&next, token, sizeof(token));
		assert_int_equal(audit_pos_parse(token, &from), 0);
		scan.from = &from;
	}
	assert_int_equal(c->n, 85);
	for (i = 0; i < 80; i++)
		assert_int_equal(c->seqs[5 + i], 79 - i);

	/* Work bounds: a few lines per call still get everything. */
	memset(c, 0, sizeof(*c));
	scan.from = NULL;
	scan.max_lines = 3;
	for (rounds = 0; rounds < 100; rounds++) {
		assert_int_equal(audit_scan(f->a, &scan, collect_cb, c, &next,
		    &more), 0);
		if (!more)
			break;
		from = next;
		scan.from = &from;
	}
	assert_int_equal(c->n, 85);
	assert_int_equal(c->seqs[84], 0);

	/* A time range skips the other day's files. */
	memset(c, 0, sizeof(*c));
	scan.from = NULL;
	scan.max_lines = 100000;
	scan.min_ms = T0 + DAY_MS;
	assert_int_equal(audit_scan(f->a, &scan, collect_cb, c, &next, &more),
	    0);
	assert_int_equal(c->n, 5);
	free(c);
}

static void
append_raw(const char *dir, const char *name, const void *p, size_t n)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/audit/%s", dir, name);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void
test_scan_garbage(void **state)
{
	struct fixture *f = *state;
	struct audit_pos next;
	struct audit_scan scan;
	struct collect *c = calloc(1, sizeof(*c));
	char *huge;
	int more;
	size_t i;

	assert_int_equal(write_seq(f->a, T0, 1, 5), 0);
	append_raw(f->dir, "audit-2026-12-04.jsonl", "\n\nnot json\n\xff\xfe\n",
	    sizeof("\n\nnot json\n\xff\xfe\n") - 1);
	/* A line far longer than any we write, then ours, then a line cut
	 * short by a crash. */
	huge = malloc(3 * AUDIT_MAX_LINE);
	for (i = 0; i < 3 * AUDIT_MAX_LINE; i++)
		huge[i] = (char)('a' + i % 26);
	append_raw(f->dir, "audit-2026-12-04.jsonl", huge, 3 * AUDIT_MAX_LINE);
	append_raw(f->dir, "audit-2026-12-04.jsonl", "\n", 1);
	assert_int_equal(write_seq(f->a, T0 + 1, 2, 5), 0);
	/* Cut short, then a writer that starts afresh: its line is whole. */
	append_raw(f->dir, "audit-2026-12-04.jsonl", "{\"eventVersion\":", 16);
	audit_close(f->a);
	assert_int_equal(audit_open(&f->a, f->dir, NULL), 0);
	assert_int_equal(write_seq(f->a, T0 + 2, 3, 5), 0);
	append_raw(f->dir, "audit-2026-12-04.jsonl", "{\"eventVersion\":", 16);
	/* Files that are not ours, and one of ours that is a directory. */
	append_raw(f->dir, "audit-2026-99-99.jsonl", "x\n", 2);
	append_raw(f->dir, "notes.txt", "{}\n", 3);
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/audit/audit-2026-12-03.jsonl",
		    f->dir);
		assert_int_equal(mkdir(path, 0700), 0);
	}
	memset(&scan, 0, sizeof(scan));
	scan.min_ms = INT64_MIN;
	scan.max_ms = INT64_MAX;
	scan.max_bytes = 1 << 30;
	scan.max_lines = 100000;
	assert_int_equal(audit_scan(f->a, &scan, collect_cb, c, &next, &more),
	    0);
	assert_int_equal(more, 0);
	assert_int_equal(c->n, 3);
	assert_int_equal(c->seqs[0], 3);
	assert_int_equal(c->seqs[1], 2);
	assert_int_equal(c->seqs[2], 1);
	assert_true(c->garbage >= 3);
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/audit/audit-2026-12-03.jsonl",
		    f->dir);
		rmdir(path);
	}
	free(huge);
	free(c);
}

static void
test_pos_garbage(void **state)
{
	static const char *const bad[] = {
		"", "pha1.", "pha1.2026-12-04", "pha1.2026-12-04.0",
		"pha1.2026-12-04.0.", "pha1.2026-12-04.00.5",
		"pha1.2026-12-04.01.5", "pha1.2026-12-04.-1.5",
		"pha1.2026-12-04.0.-5", "pha1.2026-12-04.0.5x",
		"pha1.2026-13-04.0.5", "pha1.2026-12-32.0.5",
		"pha1.2026-12-00.0.5", "pha1.2026/12/04.0.5",
		"pha1.../../../etc.0.0", "pha2.2026-12-04.0.5",
		"pha1.2026-12-04.1000000.5",
		"pha1.2026-12-04.0.99999999999999999999999",
		"pha1.2026-12-04.0.5.6", "garbage", NULL };
	struct audit_pos p, q;
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++)
		assert_int_not_equal(audit_pos_parse(bad[i], &p), 0);
	assert_int_not_equal(audit_pos_parse(NULL, &p), 0);
	assert_int_equal(audit_pos_parse("pha1.2026-12-04.0.0", &p), 0);
	assert_string_equal(p.day, "2026-12-04");
	assert_int_equal(p.idx, 0);
	assert_int_equal(audit_pos_parse("pha1.2026-12-04.17.123456", &p), 0);
	assert_int_equal(p.idx, 17);
	assert_int_equal(p.off, 123456);
	audit_pos_format(&p, out, sizeof(out));
	assert_int_equal(audit_pos_parse(out, &q), 0);
	assert_memory_equal(&p, &q, sizeof(p));
}

static void
test_record_garbage(void **state)
{
	struct fixture *f = *state;
	struct audit_event ev;
	struct principal p;
	size_t n;
	int files;
	char *big, *all, ua[3000];
	json_t *req;

	/* Nothing at all. */
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(audit_record(f->a, &ev), 0);
	assert_int_not_equal(audit_record(f->a, NULL), 0);
	assert_int_not_equal(audit_record(NULL, &ev), 0);
	/* Invalid UTF-8 and control characters in every string. */
	memset(ua, '\xff', sizeof(ua) - 1);
	ua[sizeof(ua) - 1] = '\0';
	ua[5] = '\n';
	memset(&p, 0, sizeof(p));
	p.kind = PRINCIPAL_ASSUMED_ROLE;
	memset(p.arn, '\xc3', sizeof(p.arn) - 1);
	memset(p.user_id, '\x80', sizeof(p.user_id) - 1);
	memset(p.name, 'n', sizeof(p.name) - 1);
	ev.principal = &p;
	ev.user_agent = ua;
	ev.name = "\xe2\x82";
	ev.service = "\x01\x02";
	ev.source_ip = ua;
	ev.error_code = ua;
	ev.error_message = ua;
	ev.region = ua;
	ev.account_id = ua;
	ev.request_id = ua;
	assert_int_equal(audit_record(f->a, &ev), 0);
	/* A request far past the line limit keeps the event only. */
	big = malloc(200000);
	memset(big, 'B', 199999);
	big[199999] = '\0';
	req = json_pack("{s:s}", "Document", big);
	memset(&ev, 0, sizeof(ev));
	ev.name = "CreateDocument";
	ev.request = req;
	ev.principal = &p;
	assert_int_equal(audit_record(f->a, &ev), 0);
	json_decref(req);
	all = slurp_all(f->dir, &n, &files);
	assert_non_null(strstr(all, "requestParametersTruncated"));
	assert_null(strstr(all, "BBBBBBBBBB"));
	assert_null(strstr(all, "\xff"));
	/* Every line is JSON and within the bound. */
	{
		char *line = all, *nl;

		while ((nl = strchr(line, '\n')) != NULL) {
			json_t *o = json_loadb(line, (size_t)(nl - line), 0,
			    NULL);

			assert_non_null(o);
			assert_true((size_t)(nl - line) <= AUDIT_MAX_LINE);
			json_decref(o);
			line = nl + 1;
		}
	}
	free(all);
	free(big);
	assert_int_equal(audit_failures(f->a), 0);
}

static void
test_unauthenticated_bucket(void **state)
{
	struct fixture *f = *state;
	struct audit_event ev;
	size_t n;
	int i, files, lines = 0;
	char *all, *s;

	memset(&ev, 0, sizeof(ev));
	ev.name = "DescribeSessions";
	ev.access_key_id = "AKIAFLOOD";
	ev.error_code = "InvalidSignatureException";
	for (i = 0; i < AUDIT_UNAUTH_BURST + 100; i++)
		assert_int_equal(audit_record(f->a, &ev), 0);
	usleep(200 * 1000);     /* a few tokens come back */
	assert_int_equal(audit_record(f->a, &ev), 0);
	all = slurp_all(f->dir, &n, &files);
	for (s = all; (s = strchr(s, '\n')) != NULL; s++)
		lines++;
	/* The burst, maybe a token or two that came back meanwhile, and
	 * the one after the pause. */
	assert_true(lines >= AUDIT_UNAUTH_BURST + 1);
	assert_true(lines < AUDIT_UNAUTH_BURST + 20);
	assert_non_null(strstr(all, "\"unauthenticatedEventsSuppressed\":"));
	assert_non_null(strstr(all, "\"type\":\"Unknown\""));
	assert_non_null(strstr(all, "\"accessKeyId\":\"AKIAFLOOD\""));
	free(all);
}

static void
test_open_refuses(void **state)
{
	struct audit *a = NULL;
	char dir[64], path[128];
	int fd;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ph-audit-XXXXXX");
	assert_non_null(mkdtemp(dir));
	/* DATA_DIR/audit is a file: refused. */
	snprintf(path, sizeof(path), "%s/audit", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_not_equal(audit_open(&a, dir, NULL), 0);
	assert_null(a);
	unlink(path);
	/* A too-open directory is tightened. */
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(audit_open(&a, dir, NULL), 0);
	{
		struct stat sb;

		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0700);
	}
	audit_close(a);
	audit_close(NULL);
	/* With syslog: the line goes there too (or nowhere, without a
	 * syslog daemon), the file has it either way. */
	{
		struct audit_config cfg = { 0, 1, NULL, NULL };
		struct audit_event ev;

		assert_int_equal(audit_open(&a, dir, &cfg), 0);
		memset(&ev, 0, sizeof(ev));
		ev.name = "GetCallerIdentity";
		ev.error_code = "AccessDenied";
		assert_int_equal(audit_record(a, &ev), 0);
		audit_close(a);
	}
	rm_tree(dir);
}

/* ---- LookupEvents ------------------------------------------------------- */

static int
lookup(struct server *srv, const struct principal *p, const char *body,
    json_t **out, struct api_error *err)
{
	struct api_call call;
	json_t *in = json_loads(body, 0, NULL);
	int rc;

	memset(&call, 0, sizeof(call));
	memset(err, 0, sizeof(*err));
	call.srv = srv;
	call.principal = p;
	call.request_id = "rid";
	*out = NULL;
	assert_non_null(in);
	rc = api_cloudtrail_dispatch(&call, "LookupEvents", in, out, err);
	json_decref(in);
	return rc;
}

static void
test_lookup_events(void **state)
{
	struct fixture *f = *state;
	struct server srv;
	struct principal p, alice;
	struct api_error err;
	struct audit_event ev;
	json_t *out, *e, *ct;
	char body[256], tokbuf[64];
	const char *tok;
	int i, total, pages;

	memset(&srv, 0, sizeof(srv));
	srv.audit = f->a;
	snprintf(srv.account_id, sizeof(srv.account_id), ACCT);
	admin(&p);
	for (i = 0; i < 12; i++)
		assert_int_equal(write_seq(f->a, 0, i, 5), 0);
	alice = p;
	alice.is_root_admin = 0;
	snprintf(alice.name, sizeof(alice.name), "alice");
	snprintf(alice.arn, sizeof(alice.arn),
	    "arn:aws:iam::" ACCT ":user/alice");
	memset(&ev, 0, sizeof(ev));
	ev.service = "ssm";
	ev.name = "DescribeActivations";
	ev.principal = &alice;
	ev.error_code = "AccessDeniedException";
	ev.error_message = "User: arn:aws:iam::" ACCT ":user/alice is not "
	    "authorized";
	assert_int_equal(audit_record(f->a, &ev), 0);

	assert_int_equal(lookup(&srv, &p, "{\"LookupAttributes\":[{"
	    "\"AttributeKey\":\"Username\",\"AttributeValue\":\"alice\"}]}",
	    &out, &err), 0);
	assert_int_equal(json_array_size(json_object_get(out, "Events")), 1);
	e = json_array_get(json_object_get(out, "Events"), 0);
	assert_string_equal(json_string_value(json_object_get(e, "EventName")),
	    "DescribeActivations");
	assert_string_equal(json_string_value(json_object_get(e, "Username")),
	    "alice");
	assert_string_equal(json_string_value(json_object_get(e, "ReadOnly")),
	    "true");
	assert_true(json_is_real(json_object_get(e, "EventTime")));
	ct = json_loads(json_string_value(json_object_get(e,
	    "CloudTrailEvent")), 0, NULL);
	assert_string_equal(json_string_value(json_object_get(ct,
	    "errorCode")), "AccessDeniedException");
	json_decref(ct);
	assert_null(json_object_get(out, "NextToken"));
	json_decref(out);

	/* Pages of 5 until the end. */
	tokbuf[0] = '\0';
	total = 0;
	for (pages = 0; pages < 20; pages++) {
		snprintf(body, sizeof(body), "{\"MaxResults\":5%s%s%s}",
		    tokbuf[0] ? ",\"NextToken\":\"" : "", tokbuf,
		    tokbuf[0] ? "\"" : "");
		assert_int_equal(lookup(&srv, &p, body, &out, &err), 0);
		total += (int)json_array_size(json_object_get(out, "Events"));
		tok = json_string_value(json_object_get(out, "NextToken"));
		snprintf(tokbuf, sizeof(tokbuf), "%s", tok != NULL ? tok : "");
		json_decref(out);
		if (tokbuf[0] == '\0')
			break;
	}
	assert_int_equal(total, 13);
	assert_true(pages >= 2);

	/* Resources: the Target of StartSession is found by name. */
	assert_int_equal(lookup(&srv, &p, "{\"LookupAttributes\":[{"
	    "\"AttributeKey\":\"EventName\",\"AttributeValue\":"
	    "\"StartSession\"}],\"MaxResults\":50}", &out, &err), 0);
	assert_int_equal(json_array_size(json_object_get(out, "Events")), 6);
	json_decref(out);

	/* Not the admin: the policy engine decides (no store: denied). */
	assert_int_not_equal(lookup(&srv, &alice, "{}", &out, &err), 0);
	assert_string_equal(err.type, "AccessDeniedException");
	assert_non_null(strstr(err.message, "cloudtrail:LookupEvents"));
}

static void
test_lookup_garbage(void **state)
{
	static const struct {
		const char *body;
		const char *type;
	} cases[] = {
		{ "{\"LookupAttributes\":5}", "SerializationException" },
		{ "{\"LookupAttributes\":[5]}", "SerializationException" },
		{ "{\"LookupAttributes\":[{}]}", "ValidationException" },
		{ "{\"LookupAttributes\":[{\"AttributeKey\":\"Bogus\","
		    "\"AttributeValue\":\"x\"}]}", "ValidationException" },
		{ "{\"LookupAttributes\":[{\"AttributeKey\":\"Username\","
		    "\"AttributeValue\":\"\"}]}", "ValidationException" },
		{ "{\"LookupAttributes\":[{\"AttributeKey\":\"Username\","
		    "\"AttributeValue\":7}]}", "SerializationException" },
		{ "{\"LookupAttributes\":[{\"AttributeKey\":\"Username\","
		    "\"AttributeValue\":\"a\"},{\"AttributeKey\":\"Username\","
		    "\"AttributeValue\":\"b\"}]}",
		    "InvalidLookupAttributesException" },
		{ "{\"LookupAttributes\":[{\"AttributeKey\":\"ReadOnly\","
		    "\"AttributeValue\":\"perhaps\"}]}",
		    "InvalidLookupAttributesException" },
		{ "{\"StartTime\":\"soon\"}", "SerializationException" },
		{ "{\"StartTime\":-5}", "SerializationException" },
		{ "{\"StartTime\":1e300}", "SerializationException" },
		{ "{\"StartTime\":20,\"EndTime\":10}",
		    "InvalidTimeRangeException" },
		{ "{\"MaxResults\":0}", "InvalidMaxResultsException" },
		{ "{\"MaxResults\":51}", "InvalidMaxResultsException" },
		{ "{\"MaxResults\":-9999999999999}",
		    "InvalidMaxResultsException" },
		{ "{\"MaxResults\":\"5\"}", "SerializationException" },
		{ "{\"MaxResults\":1.5}", "SerializationException" },
		{ "{\"NextToken\":7}", "SerializationException" },
		{ "{\"NextToken\":\"\"}", "InvalidNextTokenException" },
		{ "{\"NextToken\":\"pha1.2026-12-04.0.x\"}",
		    "InvalidNextTokenException" },
		{ "{\"EventCategory\":\"management\"}",
		    "InvalidEventCategoryException" },
		{ "{\"EventCategory\":[]}", "SerializationException" },
	};
	struct fixture *f = *state;
	struct server srv;
	struct principal p;
	struct api_error err;
	struct api_call call;
	json_t *out, *in;
	size_t i;

	memset(&srv, 0, sizeof(srv));
	srv.audit = f->a;
	admin(&p);
	assert_int_equal(write_seq(f->a, 0, 1, 5), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_not_equal(lookup(&srv, &p, cases[i].body, &out,
		    &err), 0);
		assert_null(out);
		if (strcmp(err.type, cases[i].type) != 0)
			fail_msg("%s: %s (%s), want %s", cases[i].body,
			    err.type, err.message, cases[i].type);
	}
	/* Insights: none here, an empty answer. */
	assert_int_equal(lookup(&srv, &p, "{\"EventCategory\":\"insight\"}",
	    &out, &err), 0);
	assert_int_equal(json_array_size(json_object_get(out, "Events")), 0);
	json_decref(out);
	/* Unknown members are ignored, as AWS does. */
	assert_int_equal(lookup(&srv, &p, "{\"Whatever\":[1,2]}", &out, &err),
	    0);
	json_decref(out);
	/* Another action; no audit trail. */
	memset(&call, 0, sizeof(call));
	call.srv = &srv;
	call.principal = &p;
	in = json_object();
	assert_int_not_equal(api_cloudtrail_dispatch(&call, "DeleteTrail", in,
	    &out, &err), 0);
	assert_string_equal(err.type, "UnknownOperationException");
	srv.audit = NULL;
	assert_int_not_equal(api_cloudtrail_dispatch(&call, "LookupEvents", in,
	    &out, &err), 0);
	json_decref(in);
}

/* ---- porthole audit ------------------------------------------------------ */

static void
test_client_time(void **state)
{
	static const char *const bad[] = { "", "x", "10y", "-5m", "m",
	    "2026-13-01", "2026-12-04T25:00:00Z", "2026-12-04Tx",
	    "2026-12-04T10:00:00+02:00", "99999999999999999999s",
	    "99999999999999999999", "1000000000000000w", NULL };
	time_t now = 1796385600, t;
	size_t i;

	(void)state;
	assert_int_equal(client_audit_parse_time("10m", now, &t), 0);
	assert_int_equal(t, now - 600);
	assert_int_equal(client_audit_parse_time("2h", now, &t), 0);
	assert_int_equal(t, now - 7200);
	assert_int_equal(client_audit_parse_time("1w", now, &t), 0);
	assert_int_equal(t, now - 604800);
	assert_int_equal(client_audit_parse_time("30s", now, &t), 0);
	assert_int_equal(t, now - 30);
	assert_int_equal(client_audit_parse_time("1796385600", now, &t), 0);
	assert_int_equal(t, 1796385600);
	assert_int_equal(client_audit_parse_time("2026-12-04", now, &t), 0);
	assert_int_equal(t, 1796342400);
	assert_int_equal(client_audit_parse_time("2026-12-04T12:00:00Z", now,
	    &t), 0);
	assert_int_equal(t, 1796385600);
	assert_int_equal(client_audit_parse_time("2026-12-04T12:00:00", now,
	    &t), 0);
	assert_int_equal(t, 1796385600);
	for (i = 0; bad[i] != NULL; i++)
		if (client_audit_parse_time(bad[i], now, &t) == 0)
			fail_msg("\"%s\" accepted", bad[i]);
	assert_int_not_equal(client_audit_parse_time(NULL, now, &t), 0);
}

static void
test_client_format(void **state)
{
	char line[512];
	json_t *ev;

	(void)state;
	ev = json_pack("{s:s, s:s, s:s, s:s}", "EventName", "StartSession",
	    "EventSource", "ssm.amazonaws.com", "Username", "bob",
	    "CloudTrailEvent", "{\"eventTime\":\"2026-12-04T12:00:00Z\","
	    "\"sourceIPAddress\":\"10.0.0.1\",\"userIdentity\":{\"arn\":"
	    "\"arn:aws:iam::1:user/bob\"},\"errorCode\":\"AccessDenied\","
	    "\"errorMessage\":\"no\\u001b]0;pwned\\u0007\"}");
	client_audit_format(ev, line, sizeof(line));
	assert_string_equal(line, "2026-12-04T12:00:00Z  ssm.amazonaws.com  "
	    "StartSession  arn:aws:iam::1:user/bob  10.0.0.1  "
	    "AccessDenied: no?]0;pwned?");
	json_decref(ev);
	/* Nothing usable: dashes, no crash. */
	ev = json_pack("{s:s}", "CloudTrailEvent", "[[[");
	client_audit_format(ev, line, sizeof(line));
	assert_string_equal(line, "-  -  -  -  -  ok");
	json_decref(ev);
	client_audit_format(NULL, line, sizeof(line));
	assert_string_equal(line, "-  -  -  -  -  ok");
}

/* ---- files closed by rotation ------------------------------------------ */

struct rotated {
	char paths[64][256];
	int n;
};

static void
rotated_cb(void *arg, const char *path)
{
	struct rotated *r = arg;

	if (r->n < 64)
		snprintf(r->paths[r->n], sizeof(r->paths[0]), "%s", path);
	r->n++;
}

static void
test_rotation_reports_closed_files(void **state)
{
	struct fixture *f = *state;
	struct rotated *r = calloc(1, sizeof(*r));
	struct audit_config cfg = { AUDIT_MIN_FILE_BYTES, 0, rotated_cb,
	    NULL };
	char path[256];
	struct stat sb;
	int i, k;

	assert_non_null(r);
	cfg.rotated_arg = r;
	audit_close(f->a);
	assert_int_equal(audit_open(&f->a, f->dir, &cfg), 0);
	/* By size: each full file is reported once, in order, when the
	 * next one opens; the file being written never is. */
	for (i = 0; i < 60; i++)
		assert_int_equal(write_seq(f->a, T0 + i, i, 300), 0);
	assert_true(r->n >= 3 && r->n < 64);
	for (k = 0; k < r->n; k++) {
		if (k == 0)
			snprintf(path, sizeof(path),
			    "%s/audit/audit-2026-12-04.jsonl", f->dir);
		else
			snprintf(path, sizeof(path),
			    "%s/audit/audit-2026-12-04.%d.jsonl", f->dir, k);
		assert_string_equal(r->paths[k], path);
		assert_int_equal(stat(path, &sb), 0);
	}
	snprintf(path, sizeof(path), "%s/audit/audit-2026-12-04.%d.jsonl",
	    f->dir, r->n + 1);
	assert_int_not_equal(stat(path, &sb), 0);
	/* By day: the day's last file. */
	k = r->n;
	assert_int_equal(write_seq(f->a, T0 + DAY_MS, 1000, 10), 0);
	assert_int_equal(r->n, k + 1);
	snprintf(path, sizeof(path), "%s/audit/audit-2026-12-04.%d.jsonl",
	    f->dir, k);
	assert_string_equal(r->paths[k], path);
	/* An event stamped before midnight that arrives after it goes to
	 * the old day (a new file: the last one was full) and reports
	 * nothing twice; the new day's next event closes that file. */
	assert_int_equal(write_seq(f->a, T0 + 100, 1001, 300), 0);
	assert_int_equal(r->n, k + 1);
	assert_int_equal(write_seq(f->a, T0 + DAY_MS + 1, 1002, 10), 0);
	assert_int_equal(r->n, k + 2);
	snprintf(path, sizeof(path), "%s/audit/audit-2026-12-04.%d.jsonl",
	    f->dir, k + 1);
	assert_string_equal(r->paths[k + 1], path);
	/* A writer that starts reports the last file of an earlier day
	 * (closed when the last writer stopped: the receiver ignores a
	 * file told before), not the file it continues. */
	audit_close(f->a);
	r->n = 0;
	assert_int_equal(audit_open(&f->a, f->dir, &cfg), 0);
	assert_int_equal(write_seq(f->a, T0 + DAY_MS + 5, 1003, 10), 0);
	assert_int_equal(r->n, 1);
	assert_string_equal(r->paths[0], path);
	assert_int_equal(write_seq(f->a, T0 + DAY_MS + 6, 1004, 10), 0);
	assert_int_equal(r->n, 1);
	free(r);
}

static void
test_audit_sink_config_garbage(void **state)
{
	static const char *const bad[] = {
		"{\"AuditS3Bucket\":7}",
		"{\"AuditS3Bucket\":\"UPPER_case\"}",
		"{\"AuditS3Bucket\":\"../x\"}",
		"{\"AuditS3Bucket\":\"\"}",
		"{\"AuditS3Bucket\":\"ok-bucket\",\"AuditS3KeyPrefix\":[]}",
		"{\"AuditS3Bucket\":\"ok-bucket\",\"AuditS3KeyPrefix\":"
		    "\"a\\nb\"}",
	};
	struct audit_sink as;
	struct server srv;
	json_t *o;
	size_t i;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	snprintf(srv.data_dir, sizeof(srv.data_dir), "/nonexistent");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = json_loads(bad[i], 0, NULL);
		assert_non_null(o);
		audit_sink_config(&as, &srv, o);
		if (as.bucket[0] != '\0')
			fail_msg("%s: bucket %s", bad[i], as.bucket);
		json_decref(o);
	}
	audit_sink_config(&as, &srv, NULL);
	assert_string_equal(as.bucket, "");
	o = json_loads("{\"AuditS3Bucket\":\"audit-bucket\","
	    "\"AuditS3KeyPrefix\":\"trail\",\"AuditS3EncryptionEnabled\":"
	    "true}", 0, NULL);
	audit_sink_config(&as, &srv, o);
	json_decref(o);
	assert_string_equal(as.bucket, "audit-bucket");
	assert_string_equal(as.prefix, "trail");
	assert_int_equal(as.encrypt, 1);
	/* No sink (yet): logged, nothing made, no crash; nor for paths
	 * that are not audit files. */
	audit_sink_rotated(&as, "/nonexistent/audit/audit-2026-12-04.jsonl");
	audit_sink_rotated(&as, "/nonexistent/audit/x");
	audit_sink_rotated(&as, ".jsonl");
	audit_sink_rotated(&as, "");
	audit_sink_rotated(NULL, "/x/audit-2026-12-04.jsonl");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hidden_members),
		cmocka_unit_test(test_redact),
		cmocka_unit_test(test_form_and_response),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_pos_garbage),
		cmocka_unit_test(test_open_refuses),
		cmocka_unit_test_setup_teardown(test_record_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_rotation_reports_closed_files, setup_small, teardown),
		cmocka_unit_test(test_audit_sink_config_garbage),
		cmocka_unit_test_setup_teardown(test_rotation_by_size_and_day,
		    setup_small, teardown),
		cmocka_unit_test_setup_teardown(
		    test_scan_newest_first_and_resume, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_scan_garbage, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_record_garbage, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unauthenticated_bucket,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_events, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lookup_garbage, setup,
		    teardown),
		cmocka_unit_test(test_client_time),
		cmocka_unit_test(test_client_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
