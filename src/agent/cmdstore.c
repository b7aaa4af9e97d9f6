#include "agent/cmdstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/state.h"
#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"

/* A stored reply is the payload (at most ~150 KB of JSON once the content
 * is escaped) and a few fields. */
#define CMDSTORE_FILE_MAX ((size_t)1 << 20)

static int
mkdir_0700(const char *p)
{
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		return PH_ERR_IO;
	/* An existing directory from an older run keeps to 0700 too. */
	(void)chmod(p, 0700);
	return 0;
}

int
cmdstore_prepare(const char *root)
{
	char p[AGENT_PATH_MAX];
	int n;

	if (mkdir_0700(root) != 0)
		return PH_ERR_IO;
	n = snprintf(p, sizeof(p), "%s/replies", root);
	if (n < 0 || (size_t)n >= sizeof(p))
		return PH_ERR_TOOBIG;
	return mkdir_0700(p);
}

static int
reply_path(const char *root, const uint8_t id[16], char *out, size_t len)
{
	char s[UUID_STR_LEN];
	int n;

	uuid_format(id, s);
	n = snprintf(out, len, "%s/replies/%s.json", root, s);
	return n < 0 || (size_t)n >= len ? PH_ERR_TOOBIG : 0;
}

int
cmdstore_reply_save(const char *root, const uint8_t id[16],
    const char *command_id, int final, uint64_t created_ms,
    const char *payload)
{
	char p[AGENT_PATH_MAX], s[UUID_STR_LEN], *js;
	json_t *o;
	int rc;

	if ((rc = reply_path(root, id, p, sizeof(p))) != 0)
		return rc;
	uuid_format(id, s);
	o = json_pack("{s:s, s:s, s:b, s:I, s:s}", "messageId", s,
	    "commandId", command_id, "final", final,
	    "createdMs", (json_int_t)created_ms, "payload", payload);
	js = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (js == NULL)
		return PH_ERR_NOMEM;
	rc = agent_write_file_atomic(p, js, strlen(js), 0600);
	free(js);
	return rc;
}

int
cmdstore_reply_delete(const char *root, const uint8_t id[16])
{
	char p[AGENT_PATH_MAX];
	int rc;

	if ((rc = reply_path(root, id, p, sizeof(p))) != 0)
		return rc;
	if (unlink(p) != 0)
		return errno == ENOENT ? PH_ERR_NOTFOUND : PH_ERR_IO;
	return 0;
}

int
cmdstore_reply_take(const char *root, const uint8_t id[16],
    struct cmdstore_reply *r)
{
	char p[AGENT_PATH_MAX], *text;
	size_t len;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = reply_path(root, id, p, sizeof(p))) != 0)
		return rc;
	if (agent_read_file(p, CMDSTORE_FILE_MAX, &text, &len) != 0)
		return PH_ERR_NOTFOUND;
	rc = cmdstore_reply_parse(text, len, r);
	free(text);
	unlink(p);
	return rc;
}

int
cmdstore_reply_parse(const char *text, size_t len, struct cmdstore_reply *r)
{
	json_t *o, *v;
	const char *s;
	int rc = PH_ERR_INVALID;

	memset(r, 0, sizeof(*r));
	o = json_loadb(text, len, 0, NULL);
	if (!json_is_object(o))
		goto out;
	s = json_string_value(json_object_get(o, "messageId"));
	if (s == NULL || uuid_parse(s, r->id) != 0)
		goto out;
	s = json_string_value(json_object_get(o, "commandId"));
	if (s == NULL || strlen(s) >= sizeof(r->command_id))
		goto out;
	memcpy(r->command_id, s, strlen(s) + 1);
	r->final = json_is_true(json_object_get(o, "final"));
	v = json_object_get(o, "createdMs");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		goto out;
	r->created_ms = (uint64_t)json_integer_value(v);
	s = json_string_value(json_object_get(o, "payload"));
	if (s == NULL || (r->payload = strdup(s)) == NULL)
		goto out;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

static int
by_created(const void *a, const void *b)
{
	const struct cmdstore_reply *x = a, *y = b;

	return x->created_ms < y->created_ms ? -1 :
	    x->created_ms > y->created_ms;
}

void
cmdstore_replies_free(struct cmdstore_reply *r, size_t n)
{
	size_t i;

	for (i = 0; r != NULL && i < n; i++)
		free(r[i].payload);
	free(r);
}

int
cmdstore_reply_list(const char *root, struct cmdstore_reply **out,
    size_t *nout, size_t max)
{
	char dir[AGENT_PATH_MAX], p[AGENT_PATH_MAX], *text;
	struct cmdstore_reply *r = NULL;
	struct dirent *de;
	size_t n = 0, len, nl;
	DIR *d;
	int k;

	*out = NULL;
	*nout = 0;
	k = snprintf(dir, sizeof(dir), "%s/replies", root);
	if (k < 0 || (size_t)k >= sizeof(dir))
		return PH_ERR_TOOBIG;
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : PH_ERR_IO;
	r = calloc(max ? max : 1, sizeof(*r));
	if (r == NULL) {
		closedir(d);
		return PH_ERR_NOMEM;
	}
	while (n < max && (de = readdir(d)) != NULL) {
		nl = strlen(de->d_name);
		if (nl < 6 || strcmp(de->d_name + nl - 5, ".json") != 0)
			continue;
		k = snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (k < 0 || (size_t)k >= sizeof(p))
			continue;
		if (agent_read_file(p, CMDSTORE_FILE_MAX, &text, &len) != 0)
			continue;
		if (cmdstore_reply_parse(text, len, &r[n]) == 0)
			n++;
		else {
			log_warn("event=bad_stored_reply file=%s", de->d_name);
			unlink(p);
		}
		free(text);
	}
	closedir(d);
	qsort(r, n, sizeof(*r), by_created);
	*out = r;
	*nout = n;
	return 0;
}

static int
rmtree_at(int dfd, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return PH_ERR_IO;
	if (depth > 8)
		return PH_ERR_TOOBIG;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0)
		return PH_ERR_IO;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return PH_ERR_IO;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (rmtree_at(fd, de->d_name, depth + 1) != 0)
			rc = PH_ERR_IO;
	}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = PH_ERR_IO;
	return rc;
}

int
cmdstore_rmtree(const char *path)
{
	return rmtree_at(AT_FDCWD, path, 0);
}

int
cmdstore_read_head(const char *path, size_t max, char **out, size_t *len)
{
	char *b;
	ssize_t r;
	size_t got = 0;
	int fd;

	*out = NULL;
	*len = 0;
	b = malloc(max + 1);
	if (b == NULL)
		return PH_ERR_NOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		b[0] = '\0';
		*out = b;
		return errno == ENOENT ? 0 : PH_ERR_IO;
	}
	while (got < max) {
		r = read(fd, b + got, max - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	b[got] = '\0';
	*out = b;
	*len = got;
	return 0;
}
