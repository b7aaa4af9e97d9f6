/* fuzz_console: the web console's request checks (src/server/console.c):
 * which file a request path names, the Cookie header, the Origin and
 * CSRF checks, and the sign-in rate limiter's keys (client addresses
 * too). Input: a byte choosing the check, then the text. A resolved path
 * must stay under the console directory (which holds a symbolic link out
 * of it); a cookie value must fit and hold no ';'. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "server/console.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char top[64];
static char root[PATH_MAX];
static struct console_limiter *rl;

static void
cleanup(void)
{
	char p[PATH_MAX + 32];

	snprintf(p, sizeof(p), "%s/index.html", root);
	unlink(p);
	snprintf(p, sizeof(p), "%s/out", root);
	unlink(p);
	rmdir(root);
	snprintf(p, sizeof(p), "%s/secret", top);
	unlink(p);
	rmdir(top);
	console_limiter_free(rl);
}

static void
init(void)
{
	char p[PATH_MAX + 32], www[96];
	FILE *f;

	log_set_level(LOG_ERROR);
	snprintf(top, sizeof(top), "/tmp/ph-fuzz-console-XXXXXX");
	if (mkdtemp(top) == NULL)
		abort();
	snprintf(www, sizeof(www), "%s/www", top);
	if (mkdir(www, 0700) != 0 || realpath(www, root) == NULL)
		abort();
	snprintf(p, sizeof(p), "%s/index.html", root);
	if ((f = fopen(p, "w")) == NULL)
		abort();
	fclose(f);
	snprintf(p, sizeof(p), "%s/secret", top);
	if ((f = fopen(p, "w")) == NULL)
		abort();
	fclose(f);
	snprintf(p, sizeof(p), "%s/out", root);
	if (symlink("../secret", p) != 0)
		abort();
	if (console_limiter_new(&rl, 64) != 0)
		abort();
	atexit(cleanup);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char text[4096], out[PATH_MAX], val[64], *sep;
	size_t n, rlen;
	int rc;

	if (!ready) {
		init();
		ready = 1;
	}
	if (size == 0)
		return 0;
	n = size - 1 < sizeof(text) - 1 ? size - 1 : sizeof(text) - 1;
	memcpy(text, data + 1, n);
	text[n] = '\0';
	switch (data[0] % 5) {
	case 0:
		rc = console_resolve(root, text, out, sizeof(out));
		rlen = strlen(root);
		if (rc == 0 && (strncmp(out, root, rlen) != 0 ||
		    out[rlen] != '/'))
			abort();
		if (rc != 0 && out[0] != '\0')
			abort();
		break;
	case 1:
		rc = console_cookie(text, "porthole_console", val,
		    sizeof(val));
		if (rc == 0 && (strlen(val) >= sizeof(val) ||
		    strchr(val, ';') != NULL))
			abort();
		break;
	case 2:
		/* "ORIGIN\nHOST" */
		sep = strchr(text, '\n');
		if (sep != NULL)
			*sep++ = '\0';
		rc = console_origin_ok(text, sep);
		if (rc && sep != NULL && strcmp(text + (strncmp(text,
		    "https://", 8) == 0 ? 8 : 0), sep) != 0)
			abort();
		break;
	case 3:
		sep = strchr(text, '\n');
		if (sep != NULL)
			*sep++ = '\0';
		rc = console_csrf_ok(text, sep);
		if (rc && (sep == NULL || strcmp(text, sep) != 0))
			abort();
		break;
	default:
		if (console_addr_key(text, val, sizeof(val)) == 0 &&
		    strncmp(val, "addr:", 5) != 0)
			abort();
		console_limiter_fail(rl, text, (int64_t)n * 1000);
		(void)console_limiter_blocked(rl, text, (int64_t)n * 1000);
		if (n % 7 == 0)
			console_limiter_clear(rl, text);
		break;
	}
	(void)console_content_type(text);
	return 0;
}
