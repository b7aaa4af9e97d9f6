/* signed_request: AWS Signature Version 4 as AWS documents it, with
 * OpenSSL's SHA-256 and HMAC, for the unit tests' requests. */
#include "signed_request.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static void
hex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void
sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned len = 0;

	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1)
		abort();
	hex(md, 32, out);
}

static void
hmac(const void *key, size_t klen, const char *msg, uint8_t out[32])
{
	uint8_t tmp[32];
	unsigned len = 0;

	if (HMAC(EVP_sha256(), key, (int)klen,
	    (const unsigned char *)msg, strlen(msg), tmp, &len) == NULL)
		abort();
	memcpy(out, tmp, sizeof(tmp));
}


void
signed_req_make(struct signed_req *s, const char *akid, const char *secret,
    const char *token, const char *service, const char *target,
    const char *body)
{
	static char form[] = "application/x-www-form-urlencoded; "
	    "charset=utf-8";
	static char json[] = "application/x-amz-json-1.1";
	char creq[4096], sts[1024], scope[128], bh[65], ch[65], k0[64];
	char sig[65], day[9], canon[1024], names[128];
	uint8_t k[32];
	time_t now = time(NULL);
	struct tm tm;
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	gmtime_r(&now, &tm);
	strftime(s->date, sizeof(s->date), "%Y%m%dT%H%M%SZ", &tm);
	strftime(day, sizeof(day), "%Y%m%d", &tm);
	snprintf(s->body, sizeof(s->body), "%s", body);
	if (token != NULL)
		snprintf(s->token, sizeof(s->token), "%s", token);
	if (target != NULL)
		snprintf(s->target, sizeof(s->target), "%s", target);
	sha256_hex(body, strlen(body), bh);
	snprintf(canon, sizeof(canon), "content-type:%s\nhost:localhost:8443\n"
	    "x-amz-date:%s\n%s%s%s%s%s%s", target ? json : form, s->date,
	    token ? "x-amz-security-token:" : "", token ? token : "",
	    token ? "\n" : "", target ? "x-amz-target:" : "",
	    target ? target : "", target ? "\n" : "");
	snprintf(names, sizeof(names), "content-type;host;x-amz-date%s%s",
	    token ? ";x-amz-security-token" : "",
	    target ? ";x-amz-target" : "");
	snprintf(creq, sizeof(creq), "POST\n/\n\n%s\n%s\n%s", canon, names,
	    bh);
	sha256_hex(creq, strlen(creq), ch);
	snprintf(scope, sizeof(scope), "%s/us-east-1/%s/aws4_request", day,
	    service);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", s->date,
	    scope, ch);
	snprintf(k0, sizeof(k0), "AWS4%s", secret);
	hmac(k0, strlen(k0), day, k);
	hmac(k, 32, "us-east-1", k);
	hmac(k, 32, service, k);
	hmac(k, 32, "aws4_request", k);
	hmac(k, 32, sts, k);
	hex(k, 32, sig);
	snprintf(s->auth, sizeof(s->auth), "AWS4-HMAC-SHA256 Credential=%s/%s, "
	    "SignedHeaders=%s, Signature=%s", akid, scope, names, sig);
	s->h[n].name = "Content-Type";
	s->h[n++].value = target ? json : form;
	s->h[n].name = "Host";
	s->h[n++].value = "localhost:8443";
	s->h[n].name = "X-Amz-Date";
	s->h[n++].value = s->date;
	if (token != NULL) {
		s->h[n].name = "X-Amz-Security-Token";
		s->h[n++].value = s->token;
	}
	if (target != NULL) {
		s->h[n].name = "X-Amz-Target";
		s->h[n++].value = s->target;
	}
	s->h[n].name = "Authorization";
	s->h[n++].value = s->auth;
	s->req.method = "POST";
	s->req.target = "/";
	s->req.path = "/";
	s->req.query = "";
	s->req.headers = s->h;
	s->req.nheaders = n;
	s->req.body = (const uint8_t *)s->body;
	s->req.body_len = strlen(s->body);
}
