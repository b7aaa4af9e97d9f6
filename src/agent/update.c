/* update: the aws:updateSsmAgent step (see update.h).
 *
 * The step runs in three processes over time. The agent that takes the
 * job downloads, verifies and installs on the thread pool, writes
 * update.json, starts the watchdog and execs the new binary (same pid).
 * The watchdog is `OLD-BINARY update-watchdog` (the code that is known
 * to work, freshly exec'd: nothing of the agent's sockets or threads),
 * detached in a session of its own. The new agent confirms once its
 * control channel is up; without that by the deadline the watchdog puts
 * the old binary back and starts it, and that agent reports the step
 * Failed. update.lock (flock) orders the confirmation and the roll-back:
 * exactly one of them happens. */
#include "agent/update.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/jsonci.h"
#include "agent/state.h"
#include "agent/version.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proxy.h"
#include "common/pkgsig.h"

extern char **environ;

#define UPD_CMDLINE_MAX ((size_t)64 << 10)
#define UPD_ARGS_MAX 256
#define UPD_TIMEOUT_S 600L
#define UPD_POLL_MS 250u
#define UPD_TERM_GRACE_MS 3000u

/* ---- small helpers ----------------------------------------------------- */

static int
upd_path(char *out, size_t outlen, const char *dir, const char *file)
{
	int n = snprintf(out, outlen, "%s/%s", dir, file);

	return n > 0 && (size_t)n < outlen ? 0 : PH_ERR_TOOBIG;
}

static void
upd_sleep_ms(unsigned ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Field 22 of /proc/PID/stat: when the process started (clock ticks
 * since boot); an exec keeps it, a reused pid does not. 0 if unknown. */
static unsigned long long
upd_pid_start(long pid)
{
	char path[64], *text = NULL, *p;
	unsigned long long v = 0;
	int i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (agent_read_file(path, 4096, &text, NULL) != 0)
		return 0;
	/* The command name may hold spaces and ')': fields count from the
	 * last ')'. */
	p = strrchr(text, ')');
	/* A zombie has ended: nothing left to stop. */
	if (p != NULL && p[1] == ' ' && p[2] == 'Z') {
		free(text);
		return 0;
	}
	for (i = 2; p != NULL && i < 22; i++)
		p = strchr(p + 1, ' ');
	if (p != NULL)
		v = strtoull(p + 1, NULL, 10);
	free(text);
	return v;
}

/* Hold update.lock (exclusive) while the marker is read and changed. */
static int
upd_lock(const char *state_dir)
{
	char path[AGENT_PATH_MAX];
	int fd;

	if (upd_path(path, sizeof(path), state_dir, UPDATE_LOCK_FILE) != 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static void
upd_unlock(int fd)
{
	if (fd >= 0)
		close(fd);      /* releases the flock */
}

static void
upd_write_pid(const char *state_dir, const char *file, long pid)
{
	char path[AGENT_PATH_MAX], text[32];
	int n;

	if (upd_path(path, sizeof(path), state_dir, file) != 0)
		return;
	n = snprintf(text, sizeof(text), "%ld\n", pid);
	(void)agent_write_file_atomic(path, text, (size_t)n, 0600);
}

unsigned
update_confirm_seconds(const char *config_path)
{
	json_error_t jerr;
	json_t *o, *v;
	unsigned s = UPDATE_CONFIRM_S_DEFAULT;
	char *text = NULL;
	size_t n;

	if (config_path == NULL || agent_read_file(config_path,
	    AGENT_STATE_FILE_MAX, &text, &n) != 0)
		return s;
	o = json_loadb(text, n, 0, &jerr);
	v = agent_json_get(o, "UpdateConfirmSeconds");
	if (json_is_integer(v) && json_integer_value(v) >= 1 &&
	    json_integer_value(v) <= UPDATE_CONFIRM_S_MAX)
		s = (unsigned)json_integer_value(v);
	else if (v != NULL)
		log_warn("event=config_ignored key=UpdateConfirmSeconds "
		    "note=\"not a whole number from 1 to %u\"",
		    UPDATE_CONFIRM_S_MAX);
	json_decref(o);
	free(text);
	return s;
}

/* ---- the marker -------------------------------------------------------- */

void
update_marker_clear(struct update_marker *m)
{
	json_decref(m->argv);
	memset(m, 0, sizeof(*m));
}

int
update_marker_write(const char *state_dir, const struct update_marker *m)
{
	char path[AGENT_PATH_MAX], *s;
	json_t *o;
	int rc;

	if ((rc = upd_path(path, sizeof(path), state_dir,
	    UPDATE_MARKER_FILE)) != 0)
		return rc;
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, "
	    "s:s, s:s, s:o}",
	    "CommandId", m->command_id, "StepName", m->step_name,
	    "From", m->from, "To", m->to, "Path", m->path,
	    "OldPath", m->old_path, "Deadline", (json_int_t)m->deadline,
	    "ConfirmSeconds", (json_int_t)m->confirm_s,
	    "Pid", (json_int_t)m->pid, "PidStart", (json_int_t)m->pid_start,
	    "State", m->state, "Reason", m->reason,
	    "Argv", m->argv != NULL ? json_incref(m->argv) : json_array());
	if (o == NULL)
		return PH_ERR_NOMEM;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		return PH_ERR_NOMEM;
	rc = agent_write_file_atomic(path, s, strlen(s), 0600);
	free(s);
	return rc;
}

static int
upd_copy_str(json_t *o, const char *key, char *out, size_t outlen)
{
	const char *v = agent_json_str(o, key);

	if (v == NULL || strlen(v) >= outlen)
		return PH_ERR_INVALID;
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

int
update_marker_read(const char *state_dir, struct update_marker *m)
{
	char path[AGENT_PATH_MAX], *text = NULL;
	json_error_t jerr;
	json_t *o = NULL, *v;
	size_t n, i;
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = upd_path(path, sizeof(path), state_dir,
	    UPDATE_MARKER_FILE)) != 0)
		return rc;
	if ((rc = agent_read_file(path, AGENT_STATE_FILE_MAX, &text,
	    &n)) != 0)
		return rc;
	rc = PH_ERR_INVALID;
	o = json_loadb(text, n, 0, &jerr);
	if (!json_is_object(o) ||
	    upd_copy_str(o, "CommandId", m->command_id,
	    sizeof(m->command_id)) != 0 ||
	    upd_copy_str(o, "StepName", m->step_name,
	    sizeof(m->step_name)) != 0 ||
	    upd_copy_str(o, "From", m->from, sizeof(m->from)) != 0 ||
	    upd_copy_str(o, "To", m->to, sizeof(m->to)) != 0 ||
	    upd_copy_str(o, "Path", m->path, sizeof(m->path)) != 0 ||
	    upd_copy_str(o, "OldPath", m->old_path,
	    sizeof(m->old_path)) != 0 ||
	    upd_copy_str(o, "State", m->state, sizeof(m->state)) != 0 ||
	    upd_copy_str(o, "Reason", m->reason, sizeof(m->reason)) != 0)
		goto fail;
	m->deadline = json_integer_value(json_object_get(o, "Deadline"));
	m->confirm_s = (unsigned)json_integer_value(json_object_get(o,
	    "ConfirmSeconds"));
	m->pid = (long)json_integer_value(json_object_get(o, "Pid"));
	m->pid_start = (unsigned long long)json_integer_value(
	    json_object_get(o, "PidStart"));
	v = json_object_get(o, "Argv");
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > UPD_ARGS_MAX)
		goto fail;
	for (i = 0; i < json_array_size(v); i++)
		if (!json_is_string(json_array_get(v, i)))
			goto fail;
	m->argv = json_incref(v);
	rc = 0;
fail:
	json_decref(o);
	free(text);
	return rc;
}

static int
upd_marker_remove(const char *state_dir)
{
	char path[AGENT_PATH_MAX];

	if (upd_path(path, sizeof(path), state_dir, UPDATE_MARKER_FILE) != 0)
		return PH_ERR_TOOBIG;
	return unlink(path) == 0 || errno == ENOENT ? 0 : PH_ERR_IO;
}

/* ---- verify and install ----------------------------------------------- */

int
update_verify_package(const char *ca_path, const char *platform,
    const char *version, const char *sha256_hex, const char *sig_b64,
    const void *data, size_t n, char *why, size_t whylen)
{
	char digest[PKGSIG_SHA256_HEX];
	EVP_PKEY *pub = NULL;
	X509 *ca = NULL;
	FILE *f;
	int rc;

	if (!pkgsig_valid_platform(platform) ||
	    !pkgsig_valid_version(version) || !pkgsig_valid_sha256(sha256_hex) ||
	    sig_b64 == NULL || sig_b64[0] == '\0') {
		snprintf(why, whylen, "the package came without a valid "
		    "platform, version, digest or signature");
		return PH_ERR_INVALID;
	}
	if ((rc = pkgsig_sha256_hex(data, n, digest)) != 0) {
		snprintf(why, whylen, "cannot compute the package's digest");
		return rc;
	}
	if (CRYPTO_memcmp(digest, sha256_hex, PKGSIG_SHA256_HEX - 1) != 0) {
		snprintf(why, whylen, "the package's SHA-256 %s is not the "
		    "signed %s", digest, sha256_hex);
		return PH_ERR_DIGEST;
	}
	f = fopen(ca_path, "re");
	if (f == NULL || (ca = PEM_read_X509(f, NULL, NULL, NULL)) == NULL ||
	    (pub = X509_get_pubkey(ca)) == NULL) {
		snprintf(why, whylen, "cannot read the CA certificate %s",
		    ca_path);
		rc = PH_ERR_IO;
		goto fail;
	}
	rc = pkgsig_verify(pub, platform, version, sha256_hex, sig_b64);
	if (rc != 0)
		snprintf(why, whylen, "the package's signature is not "
		    "portholed's for %s %s", platform, version);
fail:
	if (f != NULL)
		fclose(f);
	EVP_PKEY_free(pub);
	X509_free(ca);
	return rc;
}

/* Copy src to dst (a new file, mode), fsync'd: when a hard link is not
 * possible. */
static int
upd_copy_file(const char *src, const char *dst, mode_t mode)
{
	char b[65536];
	ssize_t r, w, off;
	int in, out, rc = PH_ERR_IO;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return PH_ERR_IO;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (out < 0) {
		close(in);
		return PH_ERR_IO;
	}
	for (;;) {
		r = read(in, b, sizeof(b));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		for (off = 0; off < r; off += w) {
			w = write(out, b + off, (size_t)(r - off));
			if (w < 0 && errno == EINTR) {
				w = 0;
				continue;
			}
			if (w <= 0)
				goto fail;
		}
	}
	if (fsync(out) == 0)
		rc = 0;
fail:
	close(in);
	if (close(out) != 0)
		rc = PH_ERR_IO;
	if (rc != 0)
		unlink(dst);
	return rc;
}

static void
upd_fsync_dir(const char *path)
{
	char dir[AGENT_PATH_MAX], *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return;
	*slash = '\0';
	fd = open(dir[0] != '\0' ? dir : "/", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

int
update_install(const char *path, const void *data, size_t n, char *why,
    size_t whylen)
{
	char old[AGENT_PATH_MAX + 8];
	struct stat sb;
	int rc;

	if (snprintf(old, sizeof(old), "%s.old", path) >= (int)sizeof(old)) {
		snprintf(why, whylen, "the agent's path is too long");
		return PH_ERR_TOOBIG;
	}
	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(why, whylen, "cannot find the agent's binary %s",
		    path);
		return PH_ERR_NOTFOUND;
	}
	/* The previous update's .old goes; this binary takes its place. */
	if (unlink(old) != 0 && errno != ENOENT) {
		snprintf(why, whylen, "cannot remove %s: %s", old,
		    strerror(errno));
		return PH_ERR_IO;
	}
	if (link(path, old) != 0 &&
	    upd_copy_file(path, old, sb.st_mode & 0755) != 0) {
		snprintf(why, whylen, "cannot keep the old binary as %s: %s",
		    old, strerror(errno));
		return PH_ERR_IO;
	}
	rc = agent_write_file_atomic(path, data, n,
	    (unsigned)(sb.st_mode & 0755) | 0700);
	if (rc != 0) {
		snprintf(why, whylen, "cannot write the new binary beside %s: "
		    "%s", path, ph_strerror(rc));
		return rc;
	}
	upd_fsync_dir(path);
	return 0;
}

int
update_restore(const char *path, const char *old_path)
{
	if (rename(old_path, path) != 0)
		return PH_ERR_IO;
	upd_fsync_dir(path);
	return 0;
}

/* ---- the watchdog ------------------------------------------------------ */

/* Stop the agent that did not confirm, if it still runs as the process
 * the marker names: SIGTERM, then SIGKILL. */
static void
upd_stop_pid(long pid, unsigned long long start)
{
	unsigned waited;

	if (pid <= 1 || pid == (long)getpid() || start == 0 ||
	    upd_pid_start(pid) != start)
		return;
	(void)kill((pid_t)pid, SIGTERM);
	for (waited = 0; waited < UPD_TERM_GRACE_MS; waited += 100) {
		if (upd_pid_start(pid) != start)
			return;
		upd_sleep_ms(100);
	}
	(void)kill((pid_t)pid, SIGKILL);
}

/* Start argv detached (a session of its own), with this environment and
 * signals back to their defaults. The pid, or -1. */
static pid_t
upd_spawn_detached(json_t *argv_json)
{
	char *argv[UPD_ARGS_MAX + 1];
	sigset_t none;
	size_t i, n = json_array_size(argv_json);
	pid_t pid;

	if (n == 0 || n > UPD_ARGS_MAX)
		return -1;
	for (i = 0; i < n; i++)
		argv[i] = (char *)json_string_value(json_array_get(argv_json,
		    i));
	argv[n] = NULL;
	pid = fork();
	if (pid != 0)
		return pid;
	(void)setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execve(argv[0], argv, environ);
	_exit(127);
}

int
update_watchdog_run(const char *state_dir, unsigned poll_ms)
{
	struct update_marker m;
	json_t *argv0;
	char cmd[128], step[128];
	long long end;
	pid_t child;
	int lk, rc;

	if ((rc = update_marker_read(state_dir, &m)) != 0)
		return rc == PH_ERR_NOTFOUND ? 0 : rc;
	snprintf(cmd, sizeof(cmd), "%s", m.command_id);
	snprintf(step, sizeof(step), "%s", m.step_name);
	log_info("event=update_watchdog command=%s from=%s to=%s "
	    "deadline_s=%u", cmd, m.from, m.to, m.confirm_s);
	/* Bounded by the deadline the marker carries, and that by the
	 * longest deadline there may be. */
	end = (long long)time(NULL) + UPDATE_CONFIRM_S_MAX;
	if (m.deadline < end)
		end = m.deadline;
	for (;;) {
		update_marker_clear(&m);
		if ((lk = upd_lock(state_dir)) < 0)
			return PH_ERR_IO;
		rc = update_marker_read(state_dir, &m);
		if (rc != 0 || strcmp(m.state, "Pending") != 0 ||
		    strcmp(m.command_id, cmd) != 0 ||
		    strcmp(m.step_name, step) != 0) {
			/* Confirmed (the new agent removed it) or another
			 * update's. */
			upd_unlock(lk);
			update_marker_clear(&m);
			log_info("event=update_watchdog_done command=%s "
			    "result=confirmed", cmd);
			return 0;
		}
		if ((long long)time(NULL) >= end)
			break;
		upd_unlock(lk);
		upd_sleep_ms(poll_ms);
	}
	/* Still under the lock: from here a late confirmation sees the
	 * roll-back. */
	snprintf(m.state, sizeof(m.state), "RolledBack");
	snprintf(m.reason, sizeof(m.reason), "the new version %s did not "
	    "reconnect within %u s; rolled back to %s", m.to, m.confirm_s,
	    m.from);
	rc = update_marker_write(state_dir, &m);
	upd_unlock(lk);
	if (rc != 0)
		log_error("event=update_rollback_marker err=\"%s\"",
		    ph_strerror(rc));
	log_warn("event=update_rollback command=%s from=%s to=%s", cmd, m.to,
	    m.from);
	upd_stop_pid(m.pid, m.pid_start);
	if ((rc = update_restore(m.path, m.old_path)) != 0) {
		log_error("event=update_rollback_failed path=%s err=\"%s\"",
		    m.path, strerror(errno));
		update_marker_clear(&m);
		return rc;
	}
	/* The agent as it was started, from its own path (now the old
	 * binary again). */
	argv0 = json_string(m.path);
	if (argv0 != NULL)
		json_array_set_new(m.argv, 0, argv0);
	child = upd_spawn_detached(m.argv);
	if (child < 0)
		log_error("event=update_restart_failed path=%s", m.path);
	else
		upd_write_pid(state_dir, UPDATE_RESTARTED_PID_FILE,
		    (long)child);
	update_marker_clear(&m);
	return child < 0 ? PH_ERR_IO : 0;
}

int
update_watchdog_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = AGENT_STATE_DIR_DEFAULT;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "d:", opts, NULL)) != -1) {
		if (opt != 'd')
			return 2;
		dir = optarg;
	}
	upd_write_pid(dir, UPDATE_WATCHDOG_PID_FILE, (long)getpid());
	return update_watchdog_run(dir, UPD_POLL_MS) == 0 ? 0 : 1;
}

/* ---- the step ------------------------------------------------------------ */

enum upd_outcome { UPD_FAILED, UPD_ALREADY, UPD_RESTART };

struct upd_job {
	uv_work_t work;
	update_done_fn done;
	void *ud;
	/* what the worker needs, copied */
	char state_dir[AGENT_PATH_MAX];
	char endpoint[1024];
	char ca[AGENT_PATH_MAX], cert[AGENT_PATH_MAX], key[AGENT_PATH_MAX];
	char config[AGENT_PATH_MAX];
	char command_id[128], step_name[128];
	char target[PKGSIG_VERSION_MAX + 1];
	int allow_downgrade;
	/* what it found */
	enum upd_outcome outcome;
	char exe[AGENT_PATH_MAX];
	char to[PKGSIG_VERSION_MAX + 1];
	json_t *argv;
	char out[1024], err[1024];
};

/* The response headers of a download. */
struct upd_hdrs {
	char platform[PKGSIG_PLATFORM_MAX + 1];
	char version[PKGSIG_VERSION_MAX + 1];
	char sha256[PKGSIG_SHA256_HEX];
	char sig[PKGSIG_B64_MAX + 1];
};

static void
upd_hdr_take(const char *line, size_t n, const char *name, char *out,
    size_t outlen)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(line, name, k) != 0)
		return;
	line += k;
	n -= k;
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' ||
	    line[n - 1] == ' '))
		n--;
	if (n < outlen) {
		memcpy(out, line, n);
		out[n] = '\0';
	}
}

static size_t
upd_header_cb(char *p, size_t size, size_t nmemb, void *ud)
{
	struct upd_hdrs *h = ud;
	size_t n = size * nmemb;

	upd_hdr_take(p, n, "X-Porthole-Package-Platform:", h->platform,
	    sizeof(h->platform));
	upd_hdr_take(p, n, "X-Porthole-Package-Version:", h->version,
	    sizeof(h->version));
	upd_hdr_take(p, n, "X-Porthole-Package-Sha256:", h->sha256,
	    sizeof(h->sha256));
	upd_hdr_take(p, n, "X-Porthole-Package-Signature:", h->sig,
	    sizeof(h->sig));
	return n;
}

static size_t
upd_write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
	if (buf_append(ud, p, size * nmemb) != 0)
		return 0;       /* over PKGSIG_PACKAGE_MAX: curl fails */
	return size * nmemb;
}

static size_t
upd_base_len(const char *endpoint)
{
	size_t n = strlen(endpoint);

	while (n > 0 && endpoint[n - 1] == '/')
		n--;
	return n;
}

/* GET the package; 0 with body and h filled on a 200, else why. */
static int
upd_download(struct upd_job *j, struct buf *body, struct upd_hdrs *h,
    char *why, size_t whylen)
{
	char url[1400], errbuf[CURL_ERROR_SIZE];
	const char *msg;
	json_error_t jerr;
	json_t *o;
	long status = 0;
	CURLcode cc;
	CURL *c;
	int n;

	n = snprintf(url, sizeof(url), "%.*s/v1/agent-package?platform=%s%s%s",
	    (int)upd_base_len(j->endpoint), j->endpoint, pkgsig_platform(),
	    j->target[0] ? "&version=" : "", j->target);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		snprintf(why, whylen, "the endpoint is too long");
		return PH_ERR_TOOBIG;
	}
	if ((c = curl_easy_init()) == NULL) {
		snprintf(why, whylen, "out of memory");
		return PH_ERR_NOMEM;
	}
	errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	/* The process's proxy settings, whatever libcurl finds in the
	 * environment (proxy.h). */
	(void)proxy_curl_apply(c, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_CAINFO, j->ca);
	curl_easy_setopt(c, CURLOPT_SSLCERT, j->cert);
	curl_easy_setopt(c, CURLOPT_SSLKEY, j->key);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, upd_header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, upd_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, UPD_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)PKGSIG_PACKAGE_MAX);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (cc != CURLE_OK) {
		snprintf(why, whylen, "cannot download the agent package: %s",
		    errbuf[0] ? errbuf : curl_easy_strerror(cc));
		return PH_ERR_IO;
	}
	if (status != 200) {
		o = json_loadb((const char *)body->data, body->len, 0, &jerr);
		msg = agent_json_str(o, "message");
		snprintf(why, whylen, "portholed has no agent package for %s%s"
		    "%s (HTTP %ld: %.300s)", pkgsig_platform(),
		    j->target[0] ? " version " : "", j->target, status,
		    msg != NULL ? msg : "no message");
		json_decref(o);
		return status == 404 ? PH_ERR_NOTFOUND : PH_ERR_IO;
	}
	return 0;
}

/* /proc/self/cmdline as a JSON array. */
static json_t *
upd_own_argv(void)
{
	char *text = NULL;
	size_t n, i, start = 0;
	json_t *a;

	if (agent_read_file("/proc/self/cmdline", UPD_CMDLINE_MAX, &text,
	    &n) != 0)
		return NULL;
	a = json_array();
	for (i = 0; a != NULL && i < n; i++) {
		if (text[i] != '\0')
			continue;
		if (json_array_size(a) >= UPD_ARGS_MAX ||
		    json_array_append_new(a, json_string(text + start)) != 0) {
			json_decref(a);
			a = NULL;
		}
		start = i + 1;
	}
	free(text);
	if (a != NULL && json_array_size(a) == 0) {
		json_decref(a);
		a = NULL;
	}
	return a;
}

static void
upd_work(uv_work_t *w)
{
	struct upd_job *j = w->data;
	const char *cur = agent_version();
	struct upd_hdrs h;
	struct buf body;
	char why[768];
	ssize_t n;

	j->outcome = UPD_FAILED;
	memset(&h, 0, sizeof(h));
	buf_init(&body, PKGSIG_PACKAGE_MAX);
	n = readlink("/proc/self/exe", j->exe, sizeof(j->exe) - 1);
	if (n <= 0 || (size_t)n >= sizeof(j->exe) - 1) {
		snprintf(j->err, sizeof(j->err), "cannot find the agent's "
		    "binary (/proc/self/exe)");
		goto out;
	}
	j->exe[n] = '\0';
	if (strstr(j->exe, " (deleted)") != NULL) {
		snprintf(j->err, sizeof(j->err), "the agent's binary %.400s was "
		    "removed or replaced since it started; restart the agent "
		    "first", j->exe);
		goto out;
	}
	if ((j->argv = upd_own_argv()) == NULL) {
		snprintf(j->err, sizeof(j->err), "cannot read the agent's "
		    "command line");
		goto out;
	}
	if (j->target[0] != '\0' && pkgsig_version_cmp(j->target, cur) == 0) {
		j->outcome = UPD_ALREADY;
		goto out;
	}
	if (j->target[0] != '\0' && pkgsig_version_cmp(j->target, cur) < 0 &&
	    !j->allow_downgrade) {
		snprintf(j->err, sizeof(j->err), "version %s is older than "
		    "the installed %s; set allowDowngrade to true to "
		    "downgrade", j->target, cur);
		goto out;
	}
	if (upd_download(j, &body, &h, why, sizeof(why)) != 0) {
		snprintf(j->err, sizeof(j->err), "%s", why);
		goto out;
	}
	/* What portholed says the package is must be what was asked for
	 * and what it signed. */
	if (strcmp(h.platform, pkgsig_platform()) != 0 ||
	    (j->target[0] != '\0' && strcmp(h.version, j->target) != 0) ||
	    update_verify_package(j->ca, pkgsig_platform(), h.version,
	    h.sha256, h.sig, body.data, body.len, why, sizeof(why)) != 0) {
		if (strcmp(h.platform, pkgsig_platform()) != 0 ||
		    (j->target[0] != '\0' && strcmp(h.version, j->target) != 0))
			snprintf(why, sizeof(why), "portholed sent a package "
			    "for %.40s %.40s, not the one asked for",
			    h.platform, h.version);
		snprintf(j->err, sizeof(j->err), "the agent package failed "
		    "verification and was refused: %s; nothing was "
		    "installed", why);
		log_warn("event=update_refused reason=\"%s\"", why);
		goto out;
	}
	snprintf(j->to, sizeof(j->to), "%s", h.version);
	if (pkgsig_version_cmp(h.version, cur) == 0) {
		j->outcome = UPD_ALREADY;
		goto out;
	}
	if (pkgsig_version_cmp(h.version, cur) < 0 && !j->allow_downgrade) {
		snprintf(j->err, sizeof(j->err), "the newest hosted version "
		    "%s is older than the installed %s; set allowDowngrade to "
		    "true to downgrade", h.version, cur);
		goto out;
	}
	if (update_install(j->exe, body.data, body.len, why,
	    sizeof(why)) != 0) {
		snprintf(j->err, sizeof(j->err), "cannot install version %s: "
		    "%s", h.version, why);
		goto out;
	}
	j->outcome = UPD_RESTART;
out:
	buf_free(&body);
}

/* The watchdog: the old binary (path.old, the code running now) as
 * `update-watchdog`, twice forked so that it is nobody's child here and
 * in a session of its own. Its descriptors other than 0-2 are closed by
 * the exec (CLOEXEC set on all of them first). */
static int
upd_start_watchdog(const struct update_marker *m, const char *state_dir)
{
	char *argv[5];
	sigset_t none;
	pid_t pid, mid;
	int status;

	argv[0] = (char *)m->old_path;
	argv[1] = "update-watchdog";
	argv[2] = "--state-dir";
	argv[3] = (char *)state_dir;
	argv[4] = NULL;
	mid = fork();
	if (mid < 0)
		return PH_ERR_IO;
	if (mid == 0) {
		(void)setsid();
		pid = fork();
		if (pid != 0)
			_exit(pid < 0 ? 1 : 0);
		(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execve(argv[0], argv, environ);
		_exit(127);
	}
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : PH_ERR_IO;
}

/* Become the new binary: same pid, same command line, same
 * environment, no descriptor but 0-2. Returns only on failure. */
static void
upd_exec(const char *exe, json_t *argv_json)
{
	char *argv[UPD_ARGS_MAX + 1];
	sigset_t none;
	size_t i, n = json_array_size(argv_json);

	for (i = 0; i < n && i < UPD_ARGS_MAX; i++)
		argv[i] = (char *)json_string_value(json_array_get(argv_json,
		    i));
	argv[i] = NULL;
	fflush(NULL);
	(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(exe, argv, environ);
}

/* A step refused before any work reports from the loop all the same. */
static void
upd_nowork(uv_work_t *w)
{
	(void)w;
}

static void
upd_after(uv_work_t *w, int status)
{
	struct upd_job *j = w->data;
	struct update_result r;
	struct update_marker m;
	int rc;

	memset(&r, 0, sizeof(r));
	if (status != 0 && j->outcome != UPD_FAILED) {
		j->outcome = UPD_FAILED;
		snprintf(j->err, sizeof(j->err), "the update was cancelled");
	}
	if (j->outcome == UPD_ALREADY) {
		snprintf(j->out, sizeof(j->out), "porthole-agent %s is "
		    "already installed; nothing to do", agent_version());
		r.code = 0;
		r.status = "Success";
		r.stdout_text = j->out;
		r.stderr_text = "";
		goto report;
	}
	if (j->outcome != UPD_RESTART)
		goto failed;
	memset(&m, 0, sizeof(m));
	snprintf(m.command_id, sizeof(m.command_id), "%s", j->command_id);
	snprintf(m.step_name, sizeof(m.step_name), "%s", j->step_name);
	snprintf(m.from, sizeof(m.from), "%s", agent_version());
	snprintf(m.to, sizeof(m.to), "%s", j->to);
	snprintf(m.path, sizeof(m.path), "%s", j->exe);
	snprintf(m.old_path, sizeof(m.old_path), "%s.old", j->exe);
	m.confirm_s = update_confirm_seconds(j->config);
	m.deadline = (long long)time(NULL) + m.confirm_s;
	m.pid = (long)getpid();
	m.pid_start = upd_pid_start(m.pid);
	snprintf(m.state, sizeof(m.state), "Pending");
	m.argv = j->argv;
	if ((rc = update_marker_write(j->state_dir, &m)) != 0 ||
	    (rc = upd_start_watchdog(&m, j->state_dir)) != 0) {
		/* Nothing watches a restart: do not restart. */
		(void)upd_marker_remove(j->state_dir);
		(void)update_restore(m.path, m.old_path);
		snprintf(j->err, sizeof(j->err), "cannot start the update's "
		    "watchdog (%s); the old version stays", ph_strerror(rc));
		goto failed;
	}
	log_info("event=update_restart command=%s from=%s to=%s "
	    "confirm_s=%u", j->command_id, m.from, m.to, m.confirm_s);
	r.status = NULL;
	j->done(j->ud, &r);
	upd_exec(j->exe, j->argv);
	/* Still here: the watchdog restores the old binary and starts it
	 * at the deadline. */
	log_error("event=update_exec_failed path=%s err=\"%s\"", j->exe,
	    strerror(errno));
	_exit(1);
failed:
	r.code = 1;
	r.status = "Failed";
	r.stdout_text = "";
	r.stderr_text = j->err;
	log_warn("event=update_failed command=%s reason=\"%s\"",
	    j->command_id, j->err);
report:
	j->done(j->ud, &r);
	json_decref(j->argv);
	free(j);
}

int
update_step_start(uv_loop_t *loop, const struct agent_state *st,
    const char *command_id, const char *step_name, json_t *inputs,
    update_done_fn done, void *ud)
{
	const char *target;
	struct upd_job *j;
	int allow = 0, rc;

	if (loop == NULL || st == NULL || done == NULL)
		return PH_ERR_INVALID;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return PH_ERR_NOMEM;
	j->done = done;
	j->ud = ud;
	snprintf(j->state_dir, sizeof(j->state_dir), "%s", st->dir);
	snprintf(j->endpoint, sizeof(j->endpoint), "%s", st->endpoint);
	snprintf(j->ca, sizeof(j->ca), "%s", st->ca_path);
	snprintf(j->cert, sizeof(j->cert), "%s", st->cert_path);
	snprintf(j->key, sizeof(j->key), "%s", st->key_path);
	snprintf(j->config, sizeof(j->config), "%s", st->config_path);
	snprintf(j->command_id, sizeof(j->command_id), "%s",
	    command_id != NULL ? command_id : "");
	snprintf(j->step_name, sizeof(j->step_name), "%s",
	    step_name != NULL ? step_name : "");
	/* AWS-UpdateSSMAgent passes {{ version }} as targetVersion;
	 * "source" (AWS's manifest URL) names nothing here: packages come
	 * from portholed. */
	target = agent_json_str(inputs, "targetVersion");
	if (target == NULL)
		target = agent_json_str(inputs, "version");
	if (target == NULL)
		target = "";
	if (target[0] != '\0' && !pkgsig_valid_version(target)) {
		/* Not echoed: it goes to the log as well. */
		snprintf(j->err, sizeof(j->err), "targetVersion is not a "
		    "version (1 to 4 dot-separated numbers, e.g. 3.3.1000.0)");
		j->outcome = UPD_FAILED;
	} else if (agent_json_bool(inputs, "allowDowngrade", 0, &allow) !=
	    0) {
		snprintf(j->err, sizeof(j->err), "allowDowngrade must be true "
		    "or false");
		j->outcome = UPD_FAILED;
	} else {
		snprintf(j->target, sizeof(j->target), "%s", target);
		j->allow_downgrade = allow;
		j->outcome = UPD_RESTART;
	}
	j->work.data = j;
	if (j->outcome == UPD_FAILED) {
		/* Report from the loop, as every other outcome. */
		rc = uv_queue_work(loop, &j->work, upd_nowork, upd_after);
		if (rc != 0) {
			free(j);
			return PH_ERR_IO;
		}
		return 0;
	}
	rc = uv_queue_work(loop, &j->work, upd_work, upd_after);
	if (rc != 0) {
		free(j);
		return PH_ERR_IO;
	}
	return 0;
}

/* ---- after the restart ------------------------------------------------- */

int
update_confirm(const struct agent_state *st, int *pending, char *command_id,
    size_t command_id_len, char *step_name, size_t step_name_len,
    struct update_result *r, char *msg, size_t msglen)
{
	struct update_marker m;
	int lk, rc;

	*pending = 0;
	memset(r, 0, sizeof(*r));
	if ((lk = upd_lock(st->dir)) < 0)
		return PH_ERR_IO;
	rc = update_marker_read(st->dir, &m);
	if (rc == PH_ERR_NOTFOUND) {
		upd_unlock(lk);
		return 0;
	}
	if (rc != 0) {
		/* A marker nobody can read would stop every later update
		 * and report nothing: drop it. */
		log_warn("event=update_marker_unreadable err=\"%s\"",
		    ph_strerror(rc));
		(void)upd_marker_remove(st->dir);
		upd_unlock(lk);
		return 0;
	}
	snprintf(command_id, command_id_len, "%s", m.command_id);
	snprintf(step_name, step_name_len, "%s", m.step_name);
	*pending = 1;
	if (strcmp(m.state, "Pending") == 0) {
		/* Removing the marker is the confirmation the watchdog
		 * waits for. */
		snprintf(msg, msglen, "updated porthole-agent from %s to %s",
		    m.from, agent_version());
		r->code = 0;
		r->status = "Success";
		r->stdout_text = msg;
		r->stderr_text = "";
		log_info("event=update_confirmed command=%s from=%s to=%s",
		    m.command_id, m.from, agent_version());
	} else {
		snprintf(msg, msglen, "%s", m.reason[0] ? m.reason :
		    "the update was rolled back");
		r->code = 1;
		r->status = "Failed";
		r->stdout_text = "";
		r->stderr_text = msg;
		log_warn("event=update_rolled_back command=%s reason=\"%s\"",
		    m.command_id, msg);
	}
	rc = upd_marker_remove(st->dir);
	upd_unlock(lk);
	update_marker_clear(&m);
	return rc;
}
