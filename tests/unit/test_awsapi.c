/* awsapi: a call reaches a loopback server as a JSON 1.1 POST with the
 * target, content type and a SigV4 signature our verifier accepts; error
 * bodies become the AWS CLI's message; oversized answers, refused
 * connections and garbage bodies fail cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "client/awsapi.h"
#include "client/awscfg.h"
#include "common/err.h"
#include "common/sigv4.h"

#define AKID "AKIDPORTHOLETEST"
#define SECRET "c2VjcmV0IGZvciB0aGUgdW5pdCB0ZXN0cw+/abc"
#define MAX_HDRS 64

/* One-connection loopback HTTP server: keeps the request, sends a canned
 * answer. */
struct server {
	int lfd;
	int port;
	char req[65536];
	size_t req_len;
	int got_request;
	const char *status_line;
	const char *resp_body;
	size_t resp_len;
};

static void *
server_main(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd;
	const char *head_end, *cl;
	char head[256];
	size_t need, off;
	ssize_t n;
	int fd, rounds;

	pfd.fd = s->lfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 10000) != 1)
		return NULL;
	if ((fd = accept(s->lfd, NULL, NULL)) < 0)
		return NULL;
	for (rounds = 0; rounds < 1000 && s->req_len < sizeof(s->req) - 1;
	    rounds++) {
		pfd.fd = fd;
		if (poll(&pfd, 1, 10000) != 1)
			break;
		n = read(fd, s->req + s->req_len,
		    sizeof(s->req) - 1 - s->req_len);
		if (n <= 0)
			break;
		s->req_len += (size_t)n;
		s->req[s->req_len] = '\0';
		if ((head_end = strstr(s->req, "\r\n\r\n")) == NULL)
			continue;
		need = (size_t)(head_end + 4 - s->req);
		cl = strcasestr(s->req, "\r\nContent-Length:");
		if (cl != NULL && cl < head_end)
			need += strtoul(cl + 17, NULL, 10);
		if (s->req_len >= need) {
			s->got_request = 1;
			break;
		}
	}
	snprintf(head, sizeof(head), "%s\r\nContent-Type: "
	    "application/x-amz-json-1.1\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", s->status_line, s->resp_len);
	/* MSG_NOSIGNAL: the client may hang up mid-answer on purpose. */
	if (send(fd, head, strlen(head), MSG_NOSIGNAL) > 0) {
		for (off = 0; off < s->resp_len; off += (size_t)n) {
			n = send(fd, s->resp_body + off, s->resp_len - off,
			    MSG_NOSIGNAL);
			if (n <= 0)
				break;
		}
	}
	close(fd);
	return NULL;
}

static void
server_start(struct server *s, pthread_t *th, const char *status_line,
    const char *body, size_t body_len)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(s, 0, sizeof(*s));
	s->status_line = status_line;
	s->resp_body = body;
	s->resp_len = body_len;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 1), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
	s->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(th, NULL, server_main, s), 0);
}

static void
server_stop(struct server *s, pthread_t th)
{
	pthread_join(th, NULL);
	close(s->lfd);
}

static void
make_cfg(struct client_awscfg *c, int port, const char *token)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->access_key_id, sizeof(c->access_key_id), "%s", AKID);
	snprintf(c->secret_access_key, sizeof(c->secret_access_key), "%s",
	    SECRET);
	if (token != NULL)
		snprintf(c->session_token, sizeof(c->session_token), "%s",
		    token);
	snprintf(c->region, sizeof(c->region), "us-east-1");
	snprintf(c->endpoint, sizeof(c->endpoint), "http://127.0.0.1:%d",
	    port);
	snprintf(c->kms_endpoint, sizeof(c->kms_endpoint),
	    "http://127.0.0.1:%d/", port);
}

/* The captured request, split for sigv4_verify. */
struct parsed {
	char method[16];
	char path[1024];
	char query[1024];
	struct http_header hdrs[MAX_HDRS];
	size_t nhdrs;
	const uint8_t *body;
	size_t body_len;
};

static void
parse_request(struct parsed *p, char *raw, size_t len)
{
	char *end, *line, *eol, *sp1, *sp2, *q, *colon, *v;

	memset(p, 0, sizeof(*p));
	end = strstr(raw, "\r\n\r\n");
	assert_non_null(end);
	*end = '\0';
	p->body = (const uint8_t *)end + 4;
	p->body_len = len - (size_t)(end + 4 - raw);
	eol = strstr(raw, "\r\n");
	assert_non_null(eol);
	*eol = '\0';
	sp1 = strchr(raw, ' ');
	assert_non_null(sp1);
	sp2 = strchr(sp1 + 1, ' ');
	assert_non_null(sp2);
	*sp1 = *sp2 = '\0';
	snprintf(p->method, sizeof(p->method), "%s", raw);
	if ((q = strchr(sp1 + 1, '?')) != NULL) {
		*q = '\0';
		snprintf(p->query, sizeof(p->query), "%s", q + 1);
	}
	snprintf(p->path, sizeof(p->path), "%s", sp1 + 1);
	for (line = eol + 2; line != NULL && *line != '\0'; line = eol) {
		eol = strstr(line, "\r\n");
		if (eol != NULL) {
			*eol = '\0';
			eol += 2;
		}
		colon = strchr(line, ':');
		assert_non_null(colon);
		*colon = '\0';
		for (v = colon + 1; *v == ' '; v++)
			;
		assert_true(p->nhdrs < MAX_HDRS);
		p->hdrs[p->nhdrs].name = line;
		p->hdrs[p->nhdrs++].value = v;
	}
}

static const char *
get_hdr(const struct parsed *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nhdrs; i++)
		if (strcasecmp(p->hdrs[i].name, name) == 0)
			return p->hdrs[i].value;
	return NULL;
}

static int
lookup(void *arg, const char *akid, char *secret, size_t size)
{
	(void)arg;
	if (strcmp(akid, AKID) != 0)
		return PH_ERR_NOTFOUND;
	snprintf(secret, size, "%s", SECRET);
	return 0;
}

static void
verify_captured(struct server *s, const char *target, const char *service,
    const char *body, struct sigv4_identity *id)
{
	struct sigv4_request req;
	struct sigv4_error err;
	struct parsed p;
	int rc;

	assert_true(s->got_request);
	parse_request(&p, s->req, s->req_len);
	assert_string_equal(p.method, "POST");
	assert_string_equal(p.path, "/");
	assert_string_equal(get_hdr(&p, "Content-Type"),
	    "application/x-amz-json-1.1");
	assert_string_equal(get_hdr(&p, "X-Amz-Target"), target);
	assert_non_null(get_hdr(&p, "X-Amz-Date"));
	assert_non_null(strstr(get_hdr(&p, "Authorization"),
	    "AWS4-HMAC-SHA256 Credential=" AKID "/"));
	assert_int_equal(p.body_len, strlen(body));
	assert_memory_equal(p.body, body, p.body_len);
	memset(&req, 0, sizeof(req));
	req.method = p.method;
	req.path = p.path;
	req.query = p.query;
	req.headers = p.hdrs;
	req.nheaders = p.nhdrs;
	req.body = p.body;
	req.body_len = p.body_len;
	rc = sigv4_verify(&req, time(NULL), lookup, NULL, id, &err);
	if (rc != 0)
		fail_msg("%s: %s", err.type, err.message);
	assert_string_equal(id->service, service);
	assert_string_equal(id->region, "us-east-1");
	/* The secret never travels. */
	assert_null(strstr(s->req, SECRET));
}

static void
test_call_ok(void **state)
{
	static const char answer[] = "{\"SessionId\":\"s-1\",\"TokenValue\":"
	    "\"t\",\"StreamUrl\":\"wss://x/v1/data-channel/s-1\"}";
	static const char body[] = "{\"Target\":\"mi-0123456789abcdef0\"}";
	struct client_awscfg cfg;
	struct sigv4_identity id;
	struct server s;
	struct buf resp;
	pthread_t th;
	char err[512];
	long status;
	int rc;

	(void)state;
	buf_init(&resp, 0);
	server_start(&s, &th, "HTTP/1.1 200 OK", answer, strlen(answer));
	make_cfg(&cfg, s.port, NULL);
	rc = client_awsapi_call(&cfg, "AmazonSSM.StartSession", "ssm", body,
	    &status, &resp, err, sizeof(err));
	server_stop(&s, th);
	if (rc != 0)
		fail_msg("%s", err);
	assert_int_equal(status, 200);
	assert_int_equal(resp.len, strlen(answer));
	assert_memory_equal(resp.data, answer, resp.len);
	assert_true(resp.max <= CLIENT_AWSAPI_MAX_RESPONSE);
	verify_captured(&s, "AmazonSSM.StartSession", "ssm", body, &id);
	assert_null(strcasestr(s.req, "X-Amz-Security-Token"));
	buf_free(&resp);
}

static void
test_call_kms_with_token(void **state)
{
	static const char body[] =
	    "{\"KeyId\":\"alias/k\",\"NumberOfBytes\":64}";
	struct client_awscfg cfg;
	struct sigv4_identity id;
	struct server s;
	struct buf resp;
	struct parsed p;
	pthread_t th;
	char err[512], copy[65536];
	long status;
	int rc;

	(void)state;
	buf_init(&resp, 0);
	server_start(&s, &th, "HTTP/1.1 200 OK", "{}", 2);
	make_cfg(&cfg, s.port, "IQoJb3JpZ2luX2VjEXAMPLE/TOKEN+value==");
	rc = client_awsapi_call(&cfg, "TrentService.GenerateDataKey", "kms",
	    body, &status, &resp, err, sizeof(err));
	server_stop(&s, th);
	if (rc != 0)
		fail_msg("%s", err);
	memcpy(copy, s.req, s.req_len + 1);
	parse_request(&p, copy, s.req_len);
	assert_string_equal(get_hdr(&p, "X-Amz-Security-Token"),
	    "IQoJb3JpZ2luX2VjEXAMPLE/TOKEN+value==");
	/* The token is covered by the signature. */
	assert_non_null(strstr(get_hdr(&p, "Authorization"),
	    "x-amz-security-token"));
	verify_captured(&s, "TrentService.GenerateDataKey", "kms", body, &id);
	buf_free(&resp);
}

static void
test_call_errors(void **state)
{
	static const char e1[] = "{\"__type\":\"com.amazonaws.ssm#"
	    "InvalidInstanceId\",\"message\":\"Instance mi-0123 is not "
	    "connected.\"}";
	static const char e2[] = "{\"__type\":\"AccessDeniedException\","
	    "\"Message\":\"User: arn:aws:iam::1:user/bob is not authorized "
	    "to perform: ssm:StartSession\"}";
	struct client_awscfg cfg;
	struct sigv4_identity id;
	struct server s;
	struct buf resp;
	pthread_t th;
	char err[512];
	long status;
	int rc;

	(void)state;
	buf_init(&resp, 0);
	server_start(&s, &th, "HTTP/1.1 400 Bad Request", e1, strlen(e1));
	make_cfg(&cfg, s.port, NULL);
	rc = client_awsapi_call(&cfg, "AmazonSSM.StartSession", "ssm", "{}",
	    &status, &resp, err, sizeof(err));
	server_stop(&s, th);
	assert_int_equal(rc, PH_ERR_INVALID);
	assert_int_equal(status, 400);
	assert_string_equal(err, "An error occurred (InvalidInstanceId) when "
	    "calling the StartSession operation: Instance mi-0123 is not "
	    "connected.");
	/* The body is still there for callers that want it. */
	assert_int_equal(resp.len, strlen(e1));
	verify_captured(&s, "AmazonSSM.StartSession", "ssm", "{}", &id);

	server_start(&s, &th, "HTTP/1.1 403 Forbidden", e2, strlen(e2));
	make_cfg(&cfg, s.port, NULL);
	rc = client_awsapi_call(&cfg, "AmazonSSM.StartSession", "ssm", NULL,
	    &status, &resp, err, sizeof(err));
	server_stop(&s, th);
	assert_int_equal(rc, PH_ERR_DENIED);
	assert_int_equal(status, 403);
	assert_string_equal(err, "An error occurred (AccessDeniedException) "
	    "when calling the StartSession operation: User: "
	    "arn:aws:iam::1:user/bob is not authorized to perform: "
	    "ssm:StartSession");

	server_start(&s, &th, "HTTP/1.1 502 Bad Gateway", "<html>", 6);
	make_cfg(&cfg, s.port, NULL);
	rc = client_awsapi_call(&cfg, "AmazonSSM.TerminateSession", "ssm",
	    "{}", &status, &resp, err, sizeof(err));
	server_stop(&s, th);
	assert_int_equal(rc, PH_ERR_IO);
	assert_int_equal(status, 502);
	assert_string_equal(err, "An error occurred (502) when calling the "
	    "TerminateSession operation: ");
	buf_free(&resp);
}

static void
test_call_transport(void **state)
{
	struct client_awscfg cfg;
	struct server s;
	struct buf resp;
	pthread_t th;
	char err[512], *big;
	long status;
	size_t n = (size_t)5 << 20;
	int rc, port;

	(void)state;
	buf_init(&resp, 0);
	/* Oversized answer. */
	big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	server_start(&s, &th, "HTTP/1.1 200 OK", big, n);
	make_cfg(&cfg, s.port, NULL);
	rc = client_awsapi_call(&cfg, "AmazonSSM.StartSession", "ssm", "{}",
	    &status, &resp, err, sizeof(err));
	server_stop(&s, th);
	free(big);
	assert_int_equal(rc, PH_ERR_TOOBIG);
	assert_non_null(strstr(err, "larger than"));

	/* Nobody listening: take a port and close it. */
	server_start(&s, &th, "HTTP/1.1 200 OK", "{}", 2);
	port = s.port;
	make_cfg(&cfg, port, NULL);
	rc = client_awsapi_call(&cfg, "AmazonSSM.StartSession", "ssm", "{}",
	    &status, &resp, err, sizeof(err));
	server_stop(&s, th);
	assert_int_equal(rc, 0);
	rc = client_awsapi_call(&cfg, "AmazonSSM.StartSession", "ssm", "{}",
	    &status, &resp, err, sizeof(err));
	assert_int_equal(rc, PH_ERR_IO);
	assert_int_equal(status, 0);
	assert_non_null(strstr(err, "Could not connect to the endpoint URL"));

	/* Bad arguments. */
	assert_int_equal(client_awsapi_call(&cfg, "Amazon SSM", "ssm", "{}",
	    &status, &resp, err, sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(client_awsapi_call(&cfg, "AmazonSSM.X", "ssm:x",
	    "{}", &status, &resp, err, sizeof(err)), PH_ERR_INVALID);
	snprintf(cfg.region, sizeof(cfg.region), "us:east");
	assert_int_equal(client_awsapi_call(&cfg, "AmazonSSM.X", "ssm", "{}",
	    &status, &resp, err, sizeof(err)), PH_ERR_INVALID);
	buf_free(&resp);
}

#define EMSG(op, st, body, outlen) client_awsapi_error_message(op, st, \
	(const uint8_t *)(body), strlen(body), out, outlen)

static void
test_error_message(void **state)
{
	char out[256], code[64], msg[64];
	static const char *const bodies[] = {
		"", "null", "[]", "{", "{\"__type\":5}", "\x01\x02\xff",
		"{\"message\":\"only message\"}",
	};
	size_t i;

	(void)state;
	EMSG("AmazonSSM.StartSession", 400, "{\"__type\":\"ValidationException:"
	    "http://x\",\"message\":\"bad\"}", sizeof(out));
	assert_string_equal(out, "An error occurred (ValidationException) "
	    "when calling the StartSession operation: bad");
	EMSG("GenerateDataKey", 400, "{\"__type\":\"NotFoundException\","
	    "\"message\":\"a\\u001b[31mred\\nline\"}", sizeof(out));
	assert_string_equal(out, "An error occurred (NotFoundException) "
	    "when calling the GenerateDataKey operation: a?[31mred?line");
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		client_awsapi_error_parse(500, (const uint8_t *)bodies[i],
		    strlen(bodies[i]), code, sizeof(code), msg, sizeof(msg));
		assert_string_equal(code, "500");
		if (i + 1 < sizeof(bodies) / sizeof(bodies[0]))
			assert_string_equal(msg, "");
		else
			assert_string_equal(msg, "only message");
	}
	/* Truncation is safe. */
	EMSG("X", 400, "{\"__type\":\"T\",\"message\":\"012345678901234567890"
	    "1234567890\"}", 20);
	assert_int_equal(strlen(out), 19);
	client_awsapi_error_parse(400, NULL, 0, NULL, 0, NULL, 0);
}

/* A server that takes the connection and never answers: the bounded
 * variant gives up after its timeout, with the CLI's read-timeout text. */
static void
test_call_timeout(void **state)
{
	struct client_awscfg cfg;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct buf resp;
	struct timespec t0, t1;
	char err[512];
	long status = -1, ms;
	int lfd, rc;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* Never accepted: the kernel completes the handshake, nobody reads. */
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	make_cfg(&cfg, ntohs(sa.sin_port), NULL);
	buf_init(&resp, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = client_awsapi_call_timeout(&cfg, "AmazonSSM.TerminateSession",
	    "ssm", "{\"SessionId\":\"s\"}", &status, &resp, err,
	    sizeof(err), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(lfd);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) /
	    1000000;
	assert_int_equal(rc, PH_ERR_IO);
	assert_int_equal(status, 0);
	assert_non_null(strstr(err, "Read timeout on endpoint URL"));
	assert_true(ms >= 900 && ms < 5000);
	buf_free(&resp);
}

/* STS AssumeRole: a signed Query POST; the answer's credentials land in
 * dst; XML errors read as the CLI prints them; answers without usable
 * credentials (missing, not XML, a token that would break a header) are
 * refused. */
static void
test_assume_role(void **state)
{
	static const char ok[] = "<AssumeRoleResponse xmlns=\"https://sts."
	    "amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials>"
	    "<AccessKeyId>ASIAABCDEFGHIJKLMNOP</AccessKeyId><SecretAccessKey>"
	    "c2VjcmV0/of/the/session+abcdefghijklmnopq</SecretAccessKey>"
	    "<SessionToken>dG9rZW4=</SessionToken><Expiration>2026-12-05T00:"
	    "00:00.000Z</Expiration></Credentials><AssumedRoleUser><Arn>arn:"
	    "aws:sts::123456789012:assumed-role/r/s</Arn></AssumedRoleUser>"
	    "</AssumeRoleResult></AssumeRoleResponse>";
	static const char denied[] = "<ErrorResponse><Error><Type>Sender"
	    "</Type><Code>AccessDenied</Code><Message>User: x is not "
	    "authorized\n\tnow</Message></Error></ErrorResponse>";
	static const char *const bad[] = {
		"not xml at all",
		"<AssumeRoleResponse/>",
		"<a><AccessKeyId>ASIAABCDEFGHIJKLMNOP</AccessKeyId>"
		    "<SecretAccessKey>s</SecretAccessKey><SessionToken>t\r\n"
		    "X-Evil: 1</SessionToken></a>",
		"<a><AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>s"
		    "</SecretAccessKey><SessionToken>t</SessionToken></a>",
		"<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>"
		    "<AccessKeyId>ASIAABCDEFGHIJKLMNOP</AccessKeyId>"
		    "<SecretAccessKey>&e;</SecretAccessKey><SessionToken>t"
		    "</SessionToken></a>",
	};
	struct client_awscfg src, dst;
	struct parsed p;
	struct server s;
	char err[512], url[64];
	pthread_t th;
	size_t i;
	int rc;

	(void)state;
	server_start(&s, &th, "HTTP/1.1 200 OK", ok, strlen(ok));
	make_cfg(&src, s.port, NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
	memset(&dst, 0, sizeof(dst));
	snprintf(dst.region, sizeof(dst.region), "eu-west-1");
	rc = client_awsapi_assume_role(&src, url, "arn:aws:iam::123456789012:"
	    "role/r", "a b&c", 900, "ext/1", &dst, err, sizeof(err));
	server_stop(&s, th);
	if (rc != 0)
		fail_msg("%s", err);
	assert_string_equal(dst.access_key_id, "ASIAABCDEFGHIJKLMNOP");
	assert_string_equal(dst.secret_access_key,
	    "c2VjcmV0/of/the/session+abcdefghijklmnopq");
	assert_string_equal(dst.session_token, "dG9rZW4=");
	assert_string_equal(dst.region, "eu-west-1");	/* untouched */
	assert_null(strstr(s.req, SECRET));
	parse_request(&p, s.req, s.req_len);
	assert_string_equal(get_hdr(&p, "Content-Type"),
	    "application/x-www-form-urlencoded; charset=utf-8");
	assert_null(get_hdr(&p, "X-Amz-Target"));
	assert_non_null(strstr(get_hdr(&p, "Authorization"),
	    "/us-east-1/sts/aws4_request"));
	assert_int_equal(p.body_len, strlen("Action=AssumeRole&Version="
	    "2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr"
	    "&RoleSessionName=a%20b%26c&DurationSeconds=900&ExternalId=ext%2F"
	    "1"));
	assert_memory_equal(p.body, "Action=AssumeRole&Version=2011-06-15&"
	    "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&"
	    "RoleSessionName=a%20b%26c&DurationSeconds=900&ExternalId=ext%2F1",
	    p.body_len);

	server_start(&s, &th, "HTTP/1.1 403 Forbidden", denied,
	    strlen(denied));
	make_cfg(&src, s.port, NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
	memset(&dst, 0, sizeof(dst));
	rc = client_awsapi_assume_role(&src, url, "arn:aws:iam::1:role/r",
	    "s", 0, NULL, &dst, err, sizeof(err));
	server_stop(&s, th);
	assert_int_equal(rc, PH_ERR_DENIED);
	assert_string_equal(err, "An error occurred (AccessDenied) when "
	    "calling the AssumeRole operation: User: x is not authorized??"
	    "now");
	assert_string_equal(dst.access_key_id, "");
	assert_null(strstr(s.req, "DurationSeconds"));

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		server_start(&s, &th, "HTTP/1.1 200 OK", bad[i],
		    strlen(bad[i]));
		make_cfg(&src, s.port, NULL);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
		memset(&dst, 0, sizeof(dst));
		rc = client_awsapi_assume_role(&src, url,
		    "arn:aws:iam::1:role/r", "s", 0, NULL, &dst, err,
		    sizeof(err));
		server_stop(&s, th);
		if (rc != PH_ERR_INVALID)
			fail_msg("answer %zu accepted", i);
		assert_non_null(strstr(err, "no usable credentials"));
		assert_string_equal(dst.access_key_id, "");
		assert_string_equal(dst.secret_access_key, "");
		assert_string_equal(dst.session_token, "");
	}
	/* Nothing listening. */
	make_cfg(&src, 1, NULL);
	assert_int_equal(client_awsapi_assume_role(&src, "http://127.0.0.1:1",
	    "arn:aws:iam::1:role/r", "s", 0, NULL, &dst, err, sizeof(err)),
	    PH_ERR_IO);
	assert_int_equal(client_awsapi_assume_role(&src, "",
	    "arn:aws:iam::1:role/r", "s", 0, NULL, &dst, err, sizeof(err)),
	    PH_ERR_INVALID);
	assert_int_equal(client_awsapi_assume_role(&src, url, NULL, "s", 0,
	    NULL, &dst, err, sizeof(err)), PH_ERR_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_ok),
		cmocka_unit_test(test_call_kms_with_token),
		cmocka_unit_test(test_call_errors),
		cmocka_unit_test(test_call_transport),
		cmocka_unit_test(test_call_timeout),
		cmocka_unit_test(test_error_message),
		cmocka_unit_test(test_assume_role),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
