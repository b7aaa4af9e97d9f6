/* agent_packages: hosted agent builds (see agent_packages.h). */
#include "server/agent_packages.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "server/api_json.h"
#include "server/pki.h"
#include "server/store.h"
#include "server/store_internal.h"

#define PKG_COLUMNS "platform, version, sha256, size, signature, file, " \
	"created_ms"
#define PKG_JSON "application/json"

/* ---- the table -------------------------------------------------------- */

static void
pkg_row(sqlite3_stmt *s, struct agent_package *out)
{
	memset(out, 0, sizeof(*out));
	st_col(s, 0, out->platform, sizeof(out->platform));
	st_col(s, 1, out->version, sizeof(out->version));
	st_col(s, 2, out->sha256, sizeof(out->sha256));
	out->size = sqlite3_column_int64(s, 3);
	st_col(s, 4, out->signature, sizeof(out->signature));
	st_col(s, 5, out->file, sizeof(out->file));
	out->created_ms = sqlite3_column_int64(s, 6);
}

int
store_agent_package_put(struct store *st, const struct agent_package *p)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (!pkgsig_valid_platform(p->platform) ||
	    !pkgsig_valid_version(p->version) ||
	    !pkgsig_valid_sha256(p->sha256) || p->size <= 0 ||
	    p->signature[0] == '\0' || p->file[0] == '\0')
		return PH_ERR_INVALID;
	if ((rc = st_prep(st, "INSERT INTO agent_packages (" PKG_COLUMNS
	    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &s)) != 0)
		return rc;
	st_text(s, 1, p->platform);
	st_text(s, 2, p->version);
	st_text(s, 3, p->sha256);
	sqlite3_bind_int64(s, 4, p->size);
	st_text(s, 5, p->signature);
	st_text(s, 6, p->file);
	sqlite3_bind_int64(s, 7, p->created_ms);
	rc = st_step_done(st, s, "agent_package_put");
	sqlite3_finalize(s);
	return rc;
}

/* Versions are dotted numbers, which SQL cannot order: the newest is
 * picked here. */
struct pkg_pick {
	const char *platform;    /* exact platform, or NULL */
	const char *os;          /* or every "os-*", case-insensitive */
	struct agent_package best;
	int found;
};

static int
pkg_pick_cb(void *arg, const struct agent_package *p)
{
	struct pkg_pick *k = arg;
	size_t n;

	if (k->platform != NULL && strcmp(k->platform, p->platform) != 0)
		return 0;
	if (k->os != NULL) {
		n = strlen(k->os);
		if (strncasecmp(p->platform, k->os, n) != 0 ||
		    p->platform[n] != '-')
			return 0;
	}
	if (!pkgsig_valid_version(p->version))
		return 0;
	if (!k->found || pkgsig_version_cmp(p->version, k->best.version) > 0) {
		k->best = *p;
		k->found = 1;
	}
	return 0;
}

int
store_agent_package_foreach(struct store *st,
    int (*fn)(void *arg, const struct agent_package *p), void *arg)
{
	struct agent_package p;
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT " PKG_COLUMNS " FROM agent_packages "
	    "ORDER BY platform, created_ms", &s)) != 0)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		pkg_row(s, &p);
		if (fn(arg, &p) != 0)
			break;
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

int
store_agent_package_get(struct store *st, const char *platform,
    const char *version, struct agent_package *out)
{
	struct pkg_pick k;
	sqlite3_stmt *s = NULL;
	int rc;

	if (version == NULL || version[0] == '\0') {
		memset(&k, 0, sizeof(k));
		k.platform = platform;
		if ((rc = store_agent_package_foreach(st, pkg_pick_cb,
		    &k)) != 0)
			return rc;
		if (!k.found)
			return PH_ERR_NOTFOUND;
		*out = k.best;
		return 0;
	}
	if ((rc = st_prep(st, "SELECT " PKG_COLUMNS " FROM agent_packages "
	    "WHERE platform = ?1 AND version = ?2", &s)) != 0)
		return rc;
	st_text(s, 1, platform);
	st_text(s, 2, version);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		pkg_row(s, out);
		rc = 0;
	} else
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

int
store_agent_package_latest_os(struct store *st, const char *os,
    char out[PKGSIG_VERSION_MAX + 1])
{
	struct pkg_pick k;
	int rc;

	if (os == NULL || os[0] == '\0')
		return PH_ERR_NOTFOUND;
	memset(&k, 0, sizeof(k));
	k.os = os;
	if ((rc = store_agent_package_foreach(st, pkg_pick_cb, &k)) != 0)
		return rc;
	if (!k.found)
		return PH_ERR_NOTFOUND;
	snprintf(out, PKGSIG_VERSION_MAX + 1, "%s", k.best.version);
	return 0;
}

/* ---- the subcommands ------------------------------------------------- */

static int
pkg_open_store(const char *data_dir, struct store **st, char *err,
    size_t errlen)
{
	char path[1024], why[256];
	int n, rc;

	n = snprintf(path, sizeof(path), "%s/%s", data_dir, SERVER_DB_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "the data directory path is too long");
		return PH_ERR_TOOBIG;
	}
	why[0] = '\0';
	rc = store_open_ex(st, path, STORE_OPEN_SHARED, why, sizeof(why));
	if (rc != 0)
		snprintf(err, errlen, "cannot open %s: %s", path,
		    why[0] ? why : ph_strerror(rc));
	return rc;
}

/* The whole file at path, a regular file of 1..PKGSIG_PACKAGE_MAX bytes. */
static int
pkg_read(const char *path, uint8_t **out, size_t *len, char *err,
    size_t errlen)
{
	struct stat sb;
	uint8_t *p = NULL;
	size_t got = 0;
	ssize_t r;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return PH_ERR_IO;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		goto fail;
	}
	if (sb.st_size <= 0 || (uint64_t)sb.st_size > PKGSIG_PACKAGE_MAX) {
		snprintf(err, errlen, "%s is empty or larger than %zu MiB",
		    path, PKGSIG_PACKAGE_MAX >> 20);
		close(fd);
		return PH_ERR_TOOBIG;
	}
	if ((p = malloc((size_t)sb.st_size)) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return PH_ERR_NOMEM;
	}
	while (got < (size_t)sb.st_size) {
		r = read(fd, p + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "cannot read %s: %s", path,
			    r < 0 ? strerror(errno) : "it shrank");
			goto fail;
		}
		got += (size_t)r;
	}
	close(fd);
	*out = p;
	*len = got;
	return 0;
fail:
	free(p);
	close(fd);
	return PH_ERR_IO;
}

int
agent_packages_add(const char *data_dir, const char *path,
    const char *platform, const char *version, char *err, size_t errlen)
{
	struct agent_package pkg, old;
	struct store *st = NULL;
	EVP_PKEY *key = NULL;
	X509 *ca = NULL;
	uint8_t *data = NULL;
	char dir[1024], file[1200];
	size_t len = 0;
	int rc, wrote = 0;

	err[0] = '\0';
	if (!pkgsig_valid_platform(platform)) {
		snprintf(err, errlen, "--platform must look like linux-amd64 "
		    "(lower-case OS-ARCH)");
		return PH_ERR_INVALID;
	}
	if (!pkgsig_valid_version(version)) {
		snprintf(err, errlen, "--version must be 1 to 4 dot-separated "
		    "numbers, e.g. 3.3.1000.0");
		return PH_ERR_INVALID;
	}
	memset(&pkg, 0, sizeof(pkg));
	snprintf(pkg.platform, sizeof(pkg.platform), "%s", platform);
	snprintf(pkg.version, sizeof(pkg.version), "%s", version);
	snprintf(pkg.file, sizeof(pkg.file), "porthole-agent-%s-%s",
	    platform, version);
	if ((rc = pkg_read(path, &data, &len, err, errlen)) != 0)
		return rc;
	if ((rc = pkg_open_store(data_dir, &st, err, errlen)) != 0)
		goto fail;
	rc = store_agent_package_get(st, platform, version, &old);
	if (rc == 0) {
		snprintf(err, errlen, "version %s for %s is hosted already",
		    version, platform);
		rc = PH_ERR_EXISTS;
		goto fail;
	}
	if (rc != PH_ERR_NOTFOUND) {
		snprintf(err, errlen, "cannot read the package table");
		goto fail;
	}
	if ((rc = pki_load_ca(data_dir, &key, &ca)) != 0) {
		snprintf(err, errlen, "cannot load the CA key of %s: %s",
		    data_dir, ph_strerror(rc));
		goto fail;
	}
	if ((rc = pkgsig_sha256_hex(data, len, pkg.sha256)) != 0 ||
	    (rc = pkgsig_sign(key, platform, version, pkg.sha256,
	    pkg.signature, sizeof(pkg.signature))) != 0) {
		snprintf(err, errlen, "cannot sign the package");
		goto fail;
	}
	pkg.size = (int64_t)len;
	pkg.created_ms = st_now_ms();
	snprintf(dir, sizeof(dir), "%s/%s", data_dir, AGENT_PACKAGES_DIR);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir,
		    strerror(errno));
		rc = PH_ERR_IO;
		goto fail;
	}
	snprintf(file, sizeof(file), "%s/%s", dir, pkg.file);
	/* A file without a row is what an interrupted add left. */
	(void)unlink(file);
	if ((rc = pki_write_file_excl(file, data, len, 0644)) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", file,
		    ph_strerror(rc));
		goto fail;
	}
	wrote = 1;
	if ((rc = store_agent_package_put(st, &pkg)) != 0) {
		snprintf(err, errlen, "cannot record the package: %s",
		    ph_strerror(rc));
		goto fail;
	}
	printf("portholed: hosting porthole-agent %s for %s (%zu bytes, "
	    "sha256 %s)\n", version, platform, len, pkg.sha256);
	rc = 0;
fail:
	if (rc != 0 && wrote)
		(void)unlink(file);
	if (st != NULL)
		store_close(st);
	EVP_PKEY_free(key);
	X509_free(ca);
	free(data);
	return rc;
}

static int
pkg_list_cb(void *arg, const struct agent_package *p)
{
	FILE *f = arg;

	fprintf(f, "%-16s %-16s %12lld %s\n", p->platform, p->version,
	    (long long)p->size, p->sha256);
	return 0;
}

int
agent_packages_list(const char *data_dir, FILE *f, char *err, size_t errlen)
{
	struct store *st = NULL;
	int rc;

	err[0] = '\0';
	if ((rc = pkg_open_store(data_dir, &st, err, errlen)) != 0)
		return rc;
	fprintf(f, "%-16s %-16s %12s %s\n", "PLATFORM", "VERSION", "BYTES",
	    "SHA256");
	rc = store_agent_package_foreach(st, pkg_list_cb, f);
	if (rc != 0)
		snprintf(err, errlen, "cannot read the package table");
	store_close(st);
	return rc;
}

/* ---- the download route ---------------------------------------------- */

int
agent_packages_is_request(const char *path)
{
	return path != NULL && strcmp(path, AGENT_PACKAGES_PATH) == 0;
}

/* The query: platform=P and optionally version=V, each once, nothing
 * else. Values are restricted to characters no URL encodes. */
static int
pkg_query(const char *q, char *platform, size_t plen, char *version,
    size_t vlen)
{
	const char *p = q, *amp, *eq;
	size_t n, kn, vn;
	int have_p = 0, have_v = 0;

	platform[0] = version[0] = '\0';
	if (q == NULL || strlen(q) > 256)
		return PH_ERR_INVALID;
	while (*p != '\0') {
		amp = strchr(p, '&');
		n = amp != NULL ? (size_t)(amp - p) : strlen(p);
		eq = memchr(p, '=', n);
		if (eq == NULL)
			return PH_ERR_INVALID;
		kn = (size_t)(eq - p);
		vn = n - kn - 1;
		if (kn == 8 && memcmp(p, "platform", 8) == 0 && !have_p &&
		    vn < plen) {
			memcpy(platform, eq + 1, vn);
			platform[vn] = '\0';
			have_p = 1;
		} else if (kn == 7 && memcmp(p, "version", 7) == 0 &&
		    !have_v && vn < vlen) {
			memcpy(version, eq + 1, vn);
			version[vn] = '\0';
			have_v = 1;
		} else
			return PH_ERR_INVALID;
		p += n;
		if (*p == '&')
			p++;
	}
	if (!have_p || !pkgsig_valid_platform(platform) ||
	    (version[0] != '\0' && !pkgsig_valid_version(version)))
		return PH_ERR_INVALID;
	return 0;
}

static int
pkg_read_blob(const struct server *srv, const struct agent_package *p,
    struct buf *body)
{
	char path[1024];
	struct stat sb;
	size_t got = 0;
	ssize_t r;
	int fd, n, rc = PH_ERR_IO;

	/* The name was made by agent_packages_add; a row edited to point
	 * elsewhere is not followed. */
	if (strchr(p->file, '/') != NULL || p->file[0] == '.')
		return PH_ERR_INVALID;
	n = snprintf(path, sizeof(path), "%s/%s/%s", srv->data_dir,
	    AGENT_PACKAGES_DIR, p->file);
	if (n < 0 || (size_t)n >= sizeof(path))
		return PH_ERR_TOOBIG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? PH_ERR_NOTFOUND : PH_ERR_IO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
	    (uint64_t)sb.st_size > PKGSIG_PACKAGE_MAX)
		goto fail;
	buf_reset(body);
	body->max = PKGSIG_PACKAGE_MAX;
	if ((rc = buf_reserve(body, (size_t)sb.st_size)) != 0)
		goto fail;
	while (got < (size_t)sb.st_size) {
		r = read(fd, body->data + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = PH_ERR_IO;
			goto fail;
		}
		got += (size_t)r;
	}
	body->len = got;
	rc = 0;
fail:
	close(fd);
	return rc;
}

/* Everything before the bytes: the method, the certificate, the query
 * and the row. 0 with *status 0 and pkg filled when the blob is to be
 * read; else the answer is in body. */
static int
pkg_lookup(struct server *srv, const char *method, const char *path,
    const char *query, const char *peer_cn, int *status, struct buf *body,
    struct agent_package *pkg)
{
	char platform[PKGSIG_PLATFORM_MAX + 1], version[PKGSIG_VERSION_MAX + 1];
	int rc;

	*status = 0;
	if (method == NULL || (strcmp(method, "GET") != 0 &&
	    strcmp(method, "HEAD") != 0))
		return api_json_error_body(body, status, 405, "MethodNotAllowed",
		    "Use GET");
	if (!agent_packages_is_request(path))
		return api_json_error_body(body, status, 404, "NotFound",
		    "No such endpoint");
	/* Agents only: the client certificate of an instance that is
	 * registered and not deregistered. */
	if (peer_cn == NULL || store_instance_active(srv->store,
	    peer_cn) != 0) {
		log_limited(LOG_WARN, "agent_package_refused",
		    "event=agent_package_refused instance=%.64s",
		    peer_cn != NULL ? peer_cn : "-");
		return api_json_error_body(body, status, 403, "AccessDeniedException",
		    "Agent packages are for registered instances' "
		    "certificates");
	}
	if (pkg_query(query, platform, sizeof(platform), version,
	    sizeof(version)) != 0)
		return api_json_error_body(body, status, 400, "ValidationException",
		    "The query must be platform=OS-ARCH[&version=N.N.N.N]");
	rc = store_agent_package_get(srv->store, platform, version, pkg);
	if (rc == PH_ERR_NOTFOUND)
		return api_json_error_body(body, status, 404, "NotFound",
		    version[0] != '\0' ? "That agent version is not hosted "
		    "for this platform" : "No agent version is hosted for "
		    "this platform");
	if (rc != 0)
		return api_json_error_body(body, status, 503, "ServiceUnavailable",
		    "The package table cannot be read now");
	return 0;
}

/* After pkg_read_blob's rc: the status, headers and body to send. */
static int
pkg_answer(const struct agent_package *pkg, const char *peer_cn, int rc,
    int *status, char *headers, size_t headers_len, struct buf *body)
{
	int n;

	if (rc != 0) {
		log_warn("event=agent_package_unreadable platform=%s "
		    "version=%s err=\"%s\"", pkg->platform, pkg->version,
		    ph_strerror(rc));
		return api_json_error_body(body, status, rc == PH_ERR_NOTFOUND ? 404 :
		    500, rc == PH_ERR_NOTFOUND ? "NotFound" :
		    "InternalServerError", "The package cannot be read");
	}
	n = snprintf(headers, headers_len, "X-Porthole-Package-Platform: %s"
	    "\r\nX-Porthole-Package-Version: %s\r\n"
	    "X-Porthole-Package-Sha256: %s\r\n"
	    "X-Porthole-Package-Signature: %s\r\n", pkg->platform,
	    pkg->version, pkg->sha256, pkg->signature);
	if (n < 0 || (size_t)n >= headers_len)
		return PH_ERR_NOMEM;
	log_info("event=agent_package_download instance=%s platform=%s "
	    "version=%s bytes=%zu", peer_cn, pkg->platform, pkg->version,
	    body->len);
	*status = 200;
	return 0;
}

int
agent_packages_process(struct server *srv, const char *method,
    const char *path, const char *query, const char *peer_cn, int *status,
    char *headers, size_t headers_len, struct buf *body)
{
	struct agent_package pkg;
	int rc;

	headers[0] = '\0';
	if ((rc = pkg_lookup(srv, method, path, query, peer_cn, status, body,
	    &pkg)) != 0 || *status != 0)
		return rc;
	return pkg_answer(&pkg, peer_cn, pkg_read_blob(srv, &pkg, body),
	    status, headers, headers_len, body);
}

/* A download whose bytes are read on the thread pool: up to 128 MiB
 * from disk must not stall the sessions on the loop. */
struct pkg_read {
	uv_work_t work;
	struct http_request *req;
	const struct server *srv;
	struct agent_package pkg;
	char peer_cn[64];
	struct buf body;
	int rc;
};

static void
pkg_read_work(uv_work_t *w)
{
	struct pkg_read *j = w->data;

	j->rc = pkg_read_blob(j->srv, &j->pkg, &j->body);
}

static void
pkg_respond(struct http_request *req, int rc, int status,
    const char *headers, struct buf *body)
{
	static const char oom[] = "{\"__type\":\"InternalServerError\","
	    "\"message\":\"out of memory\"}";

	if (rc != 0)
		http_respond(req, 500, PKG_JSON, NULL, oom, sizeof(oom) - 1);
	else
		http_respond(req, status, status == 200 ?
		    "application/octet-stream" : PKG_JSON, headers,
		    body->data, body->len);
}

static void
pkg_read_after(uv_work_t *w, int cancelled)
{
	struct pkg_read *j = w->data;
	char headers[1024];
	int status = 500, rc;

	headers[0] = '\0';
	rc = pkg_answer(&j->pkg, j->peer_cn, cancelled ? PH_ERR_STATE : j->rc,
	    &status, headers, sizeof(headers), &j->body);
	pkg_respond(j->req, rc, status, headers, &j->body);
	buf_free(&j->body);
	free(j);
}

void
agent_packages_handle(struct server *srv, struct http_request *req)
{
	const char *cn = req->conn != NULL ? conn_peer_cn(req->conn) : NULL;
	struct agent_package pkg;
	struct pkg_read *j;
	struct buf body;
	int status = 500, rc;

	buf_init(&body, 64 << 10);
	rc = pkg_lookup(srv, req->method, req->path, req->query, cn, &status,
	    &body, &pkg);
	if (rc != 0 || status != 0) {
		pkg_respond(req, rc, status, "", &body);
		buf_free(&body);
		return;
	}
	buf_free(&body);
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		pkg_respond(req, PH_ERR_NOMEM, 500, "", &body);
		return;
	}
	j->work.data = j;
	j->req = req;
	j->srv = srv;
	j->pkg = pkg;
	snprintf(j->peer_cn, sizeof(j->peer_cn), "%s", cn);
	buf_init(&j->body, 64 << 10);
	if (srv->loop == NULL || uv_queue_work(srv->loop, &j->work,
	    pkg_read_work, pkg_read_after) != 0) {
		pkg_read_work(&j->work);
		pkg_read_after(&j->work, 0);
	}
}
