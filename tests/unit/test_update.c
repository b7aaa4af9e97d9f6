/* update: the aws:updateSsmAgent step's parts in a temporary directory
 * with fake binaries: package verification (good, tampered, another
 * version, garbage), the marker, install keeping .old, the watchdog's
 * roll-back with a short deadline (the unconfirmed process stopped, the
 * old binary back and started), confirmation, and the step's early
 * answers (already installed, downgrade refused, bad inputs, download
 * failure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "agent/state.h"
#include "agent/update.h"
#include "agent/version.h"
#include "common/err.h"
#include "common/pkgsig.h"
#include "server/pki.h"

struct fx {
	char dir[64];
	struct agent_state st;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ph-update-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (agent_state_set_dir(&f->st, f->dir) != 0)
		return -1;
	snprintf(f->st.endpoint, sizeof(f->st.endpoint),
	    "https://127.0.0.1:1");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
put(const char *path, const char *text, mode_t mode)
{
	FILE *fp;

	unlink(path);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
}

static char *
slurp(const char *path)
{
	char *text = NULL;
	size_t n;

	if (agent_read_file(path, 1 << 20, &text, &n) != 0)
		return NULL;
	return text;
}

static void
test_verify(void **state)
{
	static const char data[] = "new agent bytes";
	struct fx *f = *state;
	char sha[PKGSIG_SHA256_HEX], sig[PKGSIG_B64_MAX + 1], why[512];
	EVP_PKEY *key, *key2;
	X509 *ca, *ca2;

	assert_int_equal(pki_ca_create(&key, &ca), 0);
	assert_int_equal(pki_ca_create(&key2, &ca2), 0);
	assert_int_equal(pki_write_cert(f->st.ca_path, ca), 0);
	assert_int_equal(pkgsig_sha256_hex(data, sizeof(data) - 1, sha), 0);
	assert_int_equal(pkgsig_sign(key, "linux-amd64", "3.3.1000.0", sha,
	    sig, sizeof(sig)), 0);
	assert_int_equal(update_verify_package(f->st.ca_path, "linux-amd64",
	    "3.3.1000.0", sha, sig, data, sizeof(data) - 1, why,
	    sizeof(why)), 0);
	/* the bytes changed after signing */
	assert_int_equal(update_verify_package(f->st.ca_path, "linux-amd64",
	    "3.3.1000.0", sha, sig, "new agent bytez", sizeof(data) - 1, why,
	    sizeof(why)), PH_ERR_DIGEST);
	assert_non_null(strstr(why, "SHA-256"));
	/* offered as another version or platform */
	assert_int_equal(update_verify_package(f->st.ca_path, "linux-amd64",
	    "3.3.1001.0", sha, sig, data, sizeof(data) - 1, why,
	    sizeof(why)), PH_ERR_DENIED);
	assert_non_null(strstr(why, "signature"));
	assert_int_equal(update_verify_package(f->st.ca_path, "linux-arm64",
	    "3.3.1000.0", sha, sig, data, sizeof(data) - 1, why,
	    sizeof(why)), PH_ERR_DENIED);
	/* signed by another CA */
	assert_int_equal(pkgsig_sign(key2, "linux-amd64", "3.3.1000.0", sha,
	    sig, sizeof(sig)), 0);
	assert_int_equal(update_verify_package(f->st.ca_path, "linux-amd64",
	    "3.3.1000.0", sha, sig, data, sizeof(data) - 1, why,
	    sizeof(why)), PH_ERR_DENIED);
	/* garbage headers */
	assert_int_not_equal(update_verify_package(f->st.ca_path,
	    "linux-amd64", "3.3.1000.0", sha, "", data, sizeof(data) - 1,
	    why, sizeof(why)), 0);
	assert_int_not_equal(update_verify_package(f->st.ca_path,
	    "linux-amd64", "3.3.1000.0", sha, "%%%%", data, sizeof(data) - 1,
	    why, sizeof(why)), 0);
	assert_int_not_equal(update_verify_package(f->st.ca_path,
	    "linux-amd64", "", sha, sig, data, sizeof(data) - 1, why,
	    sizeof(why)), 0);
	assert_int_not_equal(update_verify_package(f->st.ca_path,
	    "linux-amd64", "3.3.1000.0", "zz", sig, data, sizeof(data) - 1,
	    why, sizeof(why)), 0);
	assert_int_not_equal(update_verify_package("/nonexistent/ca.pem",
	    "linux-amd64", "3.3.1000.0", sha, sig, data, sizeof(data) - 1,
	    why, sizeof(why)), 0);
	EVP_PKEY_free(key);
	EVP_PKEY_free(key2);
	X509_free(ca);
	X509_free(ca2);
}

static void
test_install(void **state)
{
	struct fx *f = *state;
	char path[128], old[140], why[512], *t;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/porthole-agent", f->dir);
	snprintf(old, sizeof(old), "%s.old", path);
	put(path, "OLD", 0755);
	assert_int_equal(update_install(path, "NEW", 3, why, sizeof(why)), 0);
	assert_non_null(t = slurp(path));
	assert_string_equal(t, "NEW");
	free(t);
	assert_non_null(t = slurp(old));
	assert_string_equal(t, "OLD");
	free(t);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0755);
	/* again: the .old is the binary before this one */
	assert_int_equal(update_install(path, "NEWER", 5, why, sizeof(why)),
	    0);
	assert_non_null(t = slurp(old));
	assert_string_equal(t, "NEW");
	free(t);
	assert_int_equal(update_restore(path, old), 0);
	assert_non_null(t = slurp(path));
	assert_string_equal(t, "NEW");
	free(t);
	assert_int_not_equal(access(old, F_OK), 0);
	assert_int_not_equal(update_restore(path, old), 0);
	/* no binary there */
	snprintf(path, sizeof(path), "%s/missing", f->dir);
	assert_int_not_equal(update_install(path, "X", 1, why, sizeof(why)),
	    0);
}

static void
test_marker(void **state)
{
	struct fx *f = *state;
	struct update_marker m, r;
	char path[128];
	struct stat sb;

	memset(&m, 0, sizeof(m));
	snprintf(m.command_id, sizeof(m.command_id), "cmd-1");
	snprintf(m.step_name, sizeof(m.step_name), "updateAgent");
	snprintf(m.from, sizeof(m.from), "2.3.50.0");
	snprintf(m.to, sizeof(m.to), "3.3.1000.0");
	snprintf(m.path, sizeof(m.path), "/x/porthole-agent");
	snprintf(m.old_path, sizeof(m.old_path), "/x/porthole-agent.old");
	snprintf(m.state, sizeof(m.state), "Pending");
	m.deadline = 12345;
	m.confirm_s = 7;
	m.pid = 42;
	m.pid_start = 99;
	m.argv = json_pack("[s,s]", "porthole-agent", "run");
	assert_int_equal(update_marker_write(f->dir, &m), 0);
	snprintf(path, sizeof(path), "%s/%s", f->dir, UPDATE_MARKER_FILE);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(update_marker_read(f->dir, &r), 0);
	assert_string_equal(r.command_id, "cmd-1");
	assert_string_equal(r.to, "3.3.1000.0");
	assert_string_equal(r.state, "Pending");
	assert_int_equal(r.deadline, 12345);
	assert_int_equal(r.pid, 42);
	assert_int_equal(r.pid_start, 99);
	assert_int_equal(json_array_size(r.argv), 2);
	update_marker_clear(&r);
	update_marker_clear(&m);
	/* garbage markers are refused, not trusted */
	put(path, "{\"CommandId\":1}", 0600);
	assert_int_equal(update_marker_read(f->dir, &r), PH_ERR_INVALID);
	put(path, "not json", 0600);
	assert_int_equal(update_marker_read(f->dir, &r), PH_ERR_INVALID);
	unlink(path);
	assert_int_equal(update_marker_read(f->dir, &r), PH_ERR_NOTFOUND);
}

static void
test_confirm_seconds(void **state)
{
	struct fx *f = *state;

	assert_int_equal(update_confirm_seconds(NULL),
	    UPDATE_CONFIRM_S_DEFAULT);
	assert_int_equal(update_confirm_seconds(f->st.config_path),
	    UPDATE_CONFIRM_S_DEFAULT);
	put(f->st.config_path, "{\"UpdateConfirmSeconds\":5}", 0600);
	assert_int_equal(update_confirm_seconds(f->st.config_path), 5);
	put(f->st.config_path, "{\"UpdateConfirmSeconds\":0}", 0600);
	assert_int_equal(update_confirm_seconds(f->st.config_path),
	    UPDATE_CONFIRM_S_DEFAULT);
	put(f->st.config_path, "{\"UpdateConfirmSeconds\":\"5\"}", 0600);
	assert_int_equal(update_confirm_seconds(f->st.config_path),
	    UPDATE_CONFIRM_S_DEFAULT);
	put(f->st.config_path, "garbage", 0600);
	assert_int_equal(update_confirm_seconds(f->st.config_path),
	    UPDATE_CONFIRM_S_DEFAULT);
}

/* A marker for an update to the binary dir/porthole-agent whose agent
 * is pid. */
static void
pending_marker(struct fx *f, long pid, unsigned long long start,
    long long deadline)
{
	struct update_marker m;

	memset(&m, 0, sizeof(m));
	snprintf(m.command_id, sizeof(m.command_id), "cmd-2");
	snprintf(m.step_name, sizeof(m.step_name), "updateAgent");
	snprintf(m.from, sizeof(m.from), "2.3.50.0");
	snprintf(m.to, sizeof(m.to), "3.3.1000.0");
	snprintf(m.path, sizeof(m.path), "%s/porthole-agent", f->dir);
	snprintf(m.old_path, sizeof(m.old_path), "%s/porthole-agent.old",
	    f->dir);
	snprintf(m.state, sizeof(m.state), "Pending");
	m.deadline = deadline;
	m.confirm_s = 1;
	m.pid = pid;
	m.pid_start = start;
	m.argv = json_pack("[s,s]", "porthole-agent", "restarted-arg");
	assert_int_equal(update_marker_write(f->dir, &m), 0);
	update_marker_clear(&m);
}

static unsigned long long
start_of(pid_t pid)
{
	char path[64], *t, *p;
	unsigned long long v = 0;
	int i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	assert_non_null(t = slurp(path));
	p = strrchr(t, ')');
	for (i = 2; p != NULL && i < 22; i++)
		p = strchr(p + 1, ' ');
	assert_non_null(p);
	v = strtoull(p + 1, NULL, 10);
	free(t);
	return v;
}

static void
test_watchdog_rollback(void **state)
{
	struct fx *f = *state;
	char path[128], old[140], done[128], script[512], cmd[64], step[64];
	char msg[1024], *t = NULL;
	struct update_result r;
	struct update_marker m;
	pid_t child;
	int status, pending, i;

	snprintf(path, sizeof(path), "%s/porthole-agent", f->dir);
	snprintf(old, sizeof(old), "%s.old", path);
	snprintf(done, sizeof(done), "%s/restarted", f->dir);
	/* the old agent: says it was started, with which argument */
	snprintf(script, sizeof(script), "#!/bin/sh\necho \"$1\" > '%s'\n",
	    done);
	put(path, script, 0755);
	assert_int_equal(update_install(path, "#!/bin/sh\nexit 1\n", 17, msg,
	    sizeof(msg)), 0);
	/* the new agent, which never confirms */
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		execl("/bin/sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	pending_marker(f, (long)child, start_of(child),
	    (long long)time(NULL) + 1);
	assert_int_equal(update_watchdog_run(f->dir, 50), 0);
	/* the new one was stopped */
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status));
	/* the old binary is back and was started */
	assert_non_null(t = slurp(path));
	assert_string_equal(t, script);
	free(t);
	assert_int_not_equal(access(old, F_OK), 0);
	for (i = 0; i < 100 && (t = slurp(done)) == NULL; i++)
		usleep(50000);
	assert_non_null(t);
	assert_string_equal(t, "restarted-arg\n");
	free(t);
	snprintf(msg, sizeof(msg), "%s/%s", f->dir, UPDATE_RESTARTED_PID_FILE);
	assert_int_equal(access(msg, F_OK), 0);
	assert_int_equal(update_marker_read(f->dir, &m), 0);
	assert_string_equal(m.state, "RolledBack");
	update_marker_clear(&m);
	/* the old agent reports it */
	assert_int_equal(update_confirm(&f->st, &pending, cmd, sizeof(cmd),
	    step, sizeof(step), &r, msg, sizeof(msg)), 0);
	assert_int_equal(pending, 1);
	assert_string_equal(cmd, "cmd-2");
	assert_string_equal(step, "updateAgent");
	assert_string_equal(r.status, "Failed");
	assert_int_not_equal(r.code, 0);
	assert_non_null(strstr(r.stderr_text, "did not reconnect within 1 s"));
	assert_non_null(strstr(r.stderr_text, "rolled back to 2.3.50.0"));
	/* reported once */
	assert_int_equal(update_confirm(&f->st, &pending, cmd, sizeof(cmd),
	    step, sizeof(step), &r, msg, sizeof(msg)), 0);
	assert_int_equal(pending, 0);
}

static void
test_watchdog_confirmed(void **state)
{
	struct fx *f = *state;
	char path[128], old[140], cmd[64], step[64], msg[1024], want[128];
	char *t;
	struct update_result r;
	int pending;

	snprintf(path, sizeof(path), "%s/porthole-agent", f->dir);
	snprintf(old, sizeof(old), "%s.old", path);
	put(path, "OLD", 0755);
	assert_int_equal(update_install(path, "NEW", 3, msg, sizeof(msg)), 0);
	pending_marker(f, (long)getpid(), 1, (long long)time(NULL) + 1);
	/* the new agent's control channel came up */
	assert_int_equal(update_confirm(&f->st, &pending, cmd, sizeof(cmd),
	    step, sizeof(step), &r, msg, sizeof(msg)), 0);
	assert_int_equal(pending, 1);
	assert_string_equal(r.status, "Success");
	assert_int_equal(r.code, 0);
	snprintf(want, sizeof(want), "from 2.3.50.0 to %s", agent_version());
	assert_non_null(strstr(r.stdout_text, want));
	/* the watchdog stands down: nothing restored */
	assert_int_equal(update_watchdog_run(f->dir, 50), 0);
	assert_non_null(t = slurp(path));
	assert_string_equal(t, "NEW");
	free(t);
	assert_int_equal(access(old, F_OK), 0);
	/* nothing to report any more */
	assert_int_equal(update_confirm(&f->st, &pending, cmd, sizeof(cmd),
	    step, sizeof(step), &r, msg, sizeof(msg)), 0);
	assert_int_equal(pending, 0);
	/* a marker nobody can read is dropped */
	snprintf(path, sizeof(path), "%s/%s", f->dir, UPDATE_MARKER_FILE);
	put(path, "{{{", 0600);
	assert_int_equal(update_confirm(&f->st, &pending, cmd, sizeof(cmd),
	    step, sizeof(step), &r, msg, sizeof(msg)), 0);
	assert_int_equal(pending, 0);
	assert_int_not_equal(access(path, F_OK), 0);
}

/* ---- the step's answers that need no restart -------------------------- */

struct step_out {
	int calls;
	char status[16];
	int code;
	char out[1024], err[1024];
};

static void
step_done(void *ud, const struct update_result *r)
{
	struct step_out *o = ud;

	o->calls++;
	snprintf(o->status, sizeof(o->status), "%s", r->status ? r->status :
	    "(restart)");
	o->code = r->code;
	snprintf(o->out, sizeof(o->out), "%s", r->stdout_text ?
	    r->stdout_text : "");
	snprintf(o->err, sizeof(o->err), "%s", r->stderr_text ?
	    r->stderr_text : "");
}

static void
run_step(struct fx *f, const char *inputs, struct step_out *o)
{
	uv_loop_t loop;
	json_error_t jerr;
	json_t *in = json_loads(inputs, 0, &jerr);
	int i;

	assert_non_null(in);
	memset(o, 0, sizeof(*o));
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(update_step_start(&loop, &f->st, "cmd-3",
	    "updateAgent", in, step_done, o), 0);
	for (i = 0; i < 1000 && o->calls == 0; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(o->calls, 1);
	json_decref(in);
}

static void
test_step(void **state)
{
	struct fx *f = *state;
	struct step_out o;
	char in[256];

	snprintf(in, sizeof(in), "{\"agentName\":\"amazon-ssm-agent\","
	    "\"allowDowngrade\":\"false\",\"targetVersion\":\"%s\"}",
	    agent_version());
	run_step(f, in, &o);
	assert_string_equal(o.status, "Success");
	assert_int_equal(o.code, 0);
	assert_non_null(strstr(o.out, "already installed"));
	run_step(f, "{\"targetVersion\":\"1.0.0.0\",\"allowDowngrade\":"
	    "\"false\"}", &o);
	assert_string_equal(o.status, "Failed");
	assert_non_null(strstr(o.err, "allowDowngrade"));
	run_step(f, "{\"targetVersion\":\"latest; rm -rf /\"}", &o);
	assert_string_equal(o.status, "Failed");
	assert_non_null(strstr(o.err, "not a version"));
	run_step(f, "{\"targetVersion\":\"99.0.0.0\",\"allowDowngrade\":"
	    "\"maybe\"}", &o);
	assert_string_equal(o.status, "Failed");
	assert_non_null(strstr(o.err, "allowDowngrade"));
	/* nothing listens there */
	run_step(f, "{\"targetVersion\":\"99.0.0.0\"}", &o);
	assert_string_equal(o.status, "Failed");
	assert_non_null(strstr(o.err, "cannot download"));
	run_step(f, "{\"targetVersion\":\"\",\"allowDowngrade\":true}", &o);
	assert_string_equal(o.status, "Failed");
	run_step(f, "{}", &o);
	assert_string_equal(o.status, "Failed");
	run_step(f, "[]", &o);
	assert_string_equal(o.status, "Failed");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_install, setup, teardown),
		cmocka_unit_test_setup_teardown(test_marker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_confirm_seconds, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watchdog_rollback, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watchdog_confirmed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_step, setup, teardown),
	};

	int rc;

	/* As the agent's main does: libcurl and OpenSSL set up once, on
	 * this thread, before the step downloads on the thread pool. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
