/* fuzz_sigv4: SigV4 verification (Authorization header parsing, date and
 * scope checks, canonical URI, query and headers) of a raw HTTP request:
 * request line, header lines, blank line, body; lines end in LF or CRLF.
 * The fixtures of tests/unit/fixtures/sigv4 are valid inputs, verified at
 * their own time so the fuzzer starts inside the skew window. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/sigv4.h"
#include "fuzzin.h"

#define MAX_HDRS 64
/* gen_sigv4.py signs at 2015-08-30T12:36:00Z. */
#define FUZZ_NOW ((time_t)1440938170)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
lookup(void *arg, const char *akid, char *secret, size_t size)
{
	(void)arg;
	if (strcmp(akid, "AKIDDISABLED") == 0)
		return PH_ERR_DENIED;
	if (strcmp(akid, "AKIDEXAMPLE") != 0)
		return PH_ERR_NOTFOUND;
	strncpy(secret, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", size - 1);
	secret[size - 1] = '\0';
	return 0;
}

/* The next line of [*p, end): its length without CR LF; *p moves past. */
static const char *
next_line(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *nl;

	if (s >= end)
		return NULL;
	nl = memchr(s, '\n', (size_t)(end - s));
	*p = nl != NULL ? nl + 1 : end;
	*len = (size_t)((nl != NULL ? nl : end) - s);
	if (*len > 0 && s[*len - 1] == '\r')
		(*len)--;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_header hdrs[MAX_HDRS];
	struct sigv4_request req;
	struct sigv4_identity id;
	struct sigv4_error err;
	const char *p = (const char *)data, *end = p + size, *line, *sp, *sp2;
	const char *colon, *q, *v;
	char *method = NULL, *path = NULL, *query = NULL;
	size_t len, nh = 0, i;

	memset(&req, 0, sizeof(req));
	if ((line = next_line(&p, end, &len)) == NULL)
		return 0;
	if ((sp = memchr(line, ' ', len)) == NULL)
		return 0;
	sp2 = memchr(sp + 1, ' ', (size_t)(line + len - sp - 1));
	if (sp2 == NULL)
		sp2 = line + len;
	q = memchr(sp + 1, '?', (size_t)(sp2 - sp - 1));
	method = strndup(line, (size_t)(sp - line));
	path = strndup(sp + 1, (size_t)((q != NULL ? q : sp2) - sp - 1));
	query = q != NULL ? strndup(q + 1, (size_t)(sp2 - q - 1)) :
	    strdup("");
	while ((line = next_line(&p, end, &len)) != NULL && len > 0 &&
	    nh < MAX_HDRS) {
		if ((colon = memchr(line, ':', len)) == NULL)
			continue;
		for (v = colon + 1; v < line + len && *v == ' '; v++)
			;
		hdrs[nh].name = strndup(line, (size_t)(colon - line));
		hdrs[nh].value = strndup(v, (size_t)(line + len - v));
		nh++;
	}
	if (method == NULL || path == NULL || query == NULL)
		goto out;
	req.method = method;
	req.path = path;
	req.query = query;
	req.headers = hdrs;
	req.nheaders = nh;
	req.body = (const uint8_t *)p;
	req.body_len = (size_t)(end - p);
	if (sigv4_verify(&req, FUZZ_NOW, lookup, NULL, &id, &err) != 0 &&
	    (err.type == NULL || err.message[0] == '\0'))
		abort();	/* every refusal names its AWS error */
out:
	for (i = 0; i < nh; i++) {
		free(hdrs[i].name);
		free(hdrs[i].value);
	}
	free(method);
	free(path);
	free(query);
	return 0;
}
