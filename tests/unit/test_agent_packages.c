/* agent_packages and pkgsig: signatures (good, tampered digest, another
 * version or platform, garbage), versions, `agent-package add` into a
 * real data directory (CA, database), the table's newest version, and
 * the download route (agent_packages_process) with its 403/400/404/405
 * answers and garbage queries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/pkgsig.h"
#include "server/agent_packages.h"
#include "server/init.h"
#include "server/pki.h"
#include "server/server.h"
#include "server/store.h"

#define T0 ((int64_t)1750000000000)

struct fx {
	char base[64];
	char data[96];
	char inst[21];
	struct server srv;
};

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct activation_new a;
	struct init_opts o;
	char db[160], id[40], code[40], role[STORE_IAM_ROLE_SIZE];
	FILE *devnull;

	if (f == NULL)
		return -1;
	snprintf(f->base, sizeof(f->base), "/tmp/ph-pkgs-XXXXXX");
	if (mkdtemp(f->base) == NULL)
		return -1;
	snprintf(f->data, sizeof(f->data), "%s/data", f->base);
	devnull = fopen("/dev/null", "w");
	memset(&o, 0, sizeof(o));
	o.data_dir = f->data;
	o.out = devnull;
	if (server_init_datadir(&o) != 0)
		return -1;
	fclose(devnull);
	snprintf(f->srv.data_dir, sizeof(f->srv.data_dir), "%s", f->data);
	snprintf(db, sizeof(db), "%s/%s", f->data, SERVER_DB_FILE);
	if (store_open(&f->srv.store, db) != 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.iam_role = "R";
	a.registration_limit = 1;
	a.expiration_ms = T0 * 2;
	if (store_activation_create(f->srv.store, &a, T0, id, code) != 0 ||
	    store_activation_register(f->srv.store, id, code, T0, NULL, NULL,
	    f->inst, role) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	store_close(f->srv.store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->base);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* ---- pkgsig ------------------------------------------------------------- */

static void
test_versions(void **state)
{
	(void)state;
	assert_true(pkgsig_valid_version("3.3.1000.0"));
	assert_true(pkgsig_valid_version("2"));
	assert_false(pkgsig_valid_version(""));
	assert_false(pkgsig_valid_version("1.2.3.4.5"));
	assert_false(pkgsig_valid_version("1..2"));
	assert_false(pkgsig_valid_version("1.2."));
	assert_false(pkgsig_valid_version(".1"));
	assert_false(pkgsig_valid_version("1.2-beta"));
	assert_false(pkgsig_valid_version("1234567890.1"));
	assert_false(pkgsig_valid_version("../../etc"));
	assert_true(pkgsig_version_cmp("3.3.1000.0", "2.3.50.0") > 0);
	assert_true(pkgsig_version_cmp("2.3.50.0", "2.3.68.0") < 0);
	assert_true(pkgsig_version_cmp("2.3", "2.3.0.0") == 0);
	assert_true(pkgsig_version_cmp("10.0", "9.9.9.9") > 0);
	assert_true(pkgsig_valid_platform("linux-amd64"));
	assert_true(pkgsig_valid_platform(pkgsig_platform()));
	assert_false(pkgsig_valid_platform("linux"));
	assert_false(pkgsig_valid_platform("linux-"));
	assert_false(pkgsig_valid_platform("-amd64"));
	assert_false(pkgsig_valid_platform("Linux-amd64"));
	assert_false(pkgsig_valid_platform("linux-amd64-x"));
	assert_false(pkgsig_valid_platform("linux/amd64"));
	assert_false(pkgsig_valid_sha256("abc"));
}

static void
test_sign_verify(void **state)
{
	static const char data[] = "#!/bin/sh\necho agent\n";
	char sha[PKGSIG_SHA256_HEX], bad[PKGSIG_SHA256_HEX];
	char sig[PKGSIG_B64_MAX + 1], sig2[PKGSIG_B64_MAX + 1];
	EVP_PKEY *key, *other;
	X509 *cert, *cert2;

	(void)state;
	assert_int_equal(pki_ca_create(&key, &cert), 0);
	assert_int_equal(pki_ca_create(&other, &cert2), 0);
	assert_int_equal(pkgsig_sha256_hex(data, sizeof(data) - 1, sha), 0);
	assert_int_equal(pkgsig_sign(key, "linux-amd64", "3.3.1000.0", sha,
	    sig, sizeof(sig)), 0);
	assert_int_equal(pkgsig_verify(key, "linux-amd64", "3.3.1000.0", sha,
	    sig), 0);
	/* another version, platform, digest or key */
	assert_int_equal(pkgsig_verify(key, "linux-amd64", "3.3.1001.0", sha,
	    sig), PH_ERR_DENIED);
	assert_int_equal(pkgsig_verify(key, "linux-arm64", "3.3.1000.0", sha,
	    sig), PH_ERR_DENIED);
	memcpy(bad, sha, sizeof(bad));
	bad[0] = bad[0] == '0' ? '1' : '0';
	assert_int_equal(pkgsig_verify(key, "linux-amd64", "3.3.1000.0", bad,
	    sig), PH_ERR_DENIED);
	assert_int_equal(pkgsig_verify(other, "linux-amd64", "3.3.1000.0",
	    sha, sig), PH_ERR_DENIED);
	/* garbage signatures */
	assert_int_not_equal(pkgsig_verify(key, "linux-amd64", "3.3.1000.0",
	    sha, ""), 0);
	assert_int_not_equal(pkgsig_verify(key, "linux-amd64", "3.3.1000.0",
	    sha, "!!!!"), 0);
	assert_int_not_equal(pkgsig_verify(key, "linux-amd64", "3.3.1000.0",
	    sha, "===="), 0);
	assert_int_not_equal(pkgsig_verify(key, "linux-amd64", "3.3.1000.0",
	    sha, "AAAA"), 0);
	memcpy(sig2, sig, sizeof(sig2));
	sig2[10] = sig2[10] == 'A' ? 'B' : 'A';
	assert_int_equal(pkgsig_verify(key, "linux-amd64", "3.3.1000.0", sha,
	    sig2), PH_ERR_DENIED);
	/* malformed inputs are refused before any crypto */
	assert_int_equal(pkgsig_sign(key, "linux", "3.3", sha, sig2,
	    sizeof(sig2)), PH_ERR_INVALID);
	assert_int_equal(pkgsig_sign(key, "linux-amd64", "x", sha, sig2,
	    sizeof(sig2)), PH_ERR_INVALID);
	assert_int_equal(pkgsig_sign(key, "linux-amd64", "3.3", "abc", sig2,
	    sizeof(sig2)), PH_ERR_INVALID);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	X509_free(cert);
	X509_free(cert2);
}

/* ---- add, list, the table ---------------------------------------------- */

static void
test_add(void **state)
{
	struct fx *f = *state;
	struct agent_package p;
	char file[160], blob[400], err[1400], v[PKGSIG_VERSION_MAX + 1];
	char sha[PKGSIG_SHA256_HEX];
	EVP_PKEY *key;
	X509 *ca;
	struct stat sb;

	snprintf(file, sizeof(file), "%s/agent-a", f->base);
	write_file(file, "agent A\n");
	assert_int_equal(agent_packages_add(f->data, file, "linux-amd64",
	    "3.3.1000.0", err, sizeof(err)), 0);
	assert_int_equal(agent_packages_add(f->data, file, "linux-amd64",
	    "3.3.999.0", err, sizeof(err)), 0);
	assert_int_equal(agent_packages_add(f->data, file, "linux-arm64",
	    "9.0", err, sizeof(err)), 0);
	/* the same version twice */
	assert_int_equal(agent_packages_add(f->data, file, "linux-amd64",
	    "3.3.1000.0", err, sizeof(err)), PH_ERR_EXISTS);
	assert_non_null(strstr(err, "hosted already"));
	/* garbage */
	assert_int_equal(agent_packages_add(f->data, file, "linux-amd64",
	    "../../x", err, sizeof(err)), PH_ERR_INVALID);
	assert_int_equal(agent_packages_add(f->data, file, "Linux/amd64",
	    "1.0", err, sizeof(err)), PH_ERR_INVALID);
	assert_int_not_equal(agent_packages_add(f->data, "/nonexistent/x",
	    "linux-amd64", "1.0", err, sizeof(err)), 0);
	assert_int_not_equal(agent_packages_add(f->data, f->base,
	    "linux-amd64", "1.0", err, sizeof(err)), 0);
	snprintf(file, sizeof(file), "%s/empty", f->base);
	write_file(file, "");
	assert_int_equal(agent_packages_add(f->data, file, "linux-amd64",
	    "1.0", err, sizeof(err)), PH_ERR_TOOBIG);
	assert_int_not_equal(agent_packages_add("/nonexistent", file,
	    "linux-amd64", "1.0", err, sizeof(err)), 0);

	/* newest per platform; the signature is the CA's */
	assert_int_equal(store_agent_package_get(f->srv.store, "linux-amd64",
	    "", &p), 0);
	assert_string_equal(p.version, "3.3.1000.0");
	assert_int_equal(p.size, 8);
	assert_int_equal(pkgsig_sha256_hex("agent A\n", 8, sha), 0);
	assert_string_equal(p.sha256, sha);
	assert_int_equal(pki_load_ca(f->data, &key, &ca), 0);
	assert_int_equal(pkgsig_verify(key, p.platform, p.version, p.sha256,
	    p.signature), 0);
	EVP_PKEY_free(key);
	X509_free(ca);
	snprintf(blob, sizeof(blob), "%s/%s/%s", f->data, AGENT_PACKAGES_DIR,
	    p.file);
	assert_int_equal(stat(blob, &sb), 0);
	assert_int_equal(sb.st_size, 8);
	assert_int_equal(sb.st_mode & 0022, 0);
	assert_int_equal(store_agent_package_get(f->srv.store, "linux-amd64",
	    "3.3.999.0", &p), 0);
	assert_int_equal(store_agent_package_get(f->srv.store, "linux-amd64",
	    "3.3.998.0", &p), PH_ERR_NOTFOUND);
	assert_int_equal(store_agent_package_get(f->srv.store, "windows-amd64",
	    NULL, &p), PH_ERR_NOTFOUND);
	assert_int_equal(store_agent_package_latest_os(f->srv.store, "Linux",
	    v), 0);
	assert_string_equal(v, "9.0");
	assert_int_equal(store_agent_package_latest_os(f->srv.store,
	    "Windows", v), PH_ERR_NOTFOUND);
	assert_int_equal(store_agent_package_latest_os(f->srv.store, "", v),
	    PH_ERR_NOTFOUND);
}

/* ---- the route ---------------------------------------------------------- */

struct answer {
	int status;
	char headers[1024];
	struct buf body;
};

static int
get(struct fx *f, const char *method, const char *path, const char *query,
    const char *cn, struct answer *a)
{
	memset(a, 0, sizeof(*a));
	buf_init(&a->body, 0);
	assert_int_equal(agent_packages_process(&f->srv, method, path, query,
	    cn, &a->status, a->headers, sizeof(a->headers), &a->body), 0);
	return a->status;
}

static void
error_type(struct answer *a, const char *type)
{
	json_error_t jerr;
	json_t *o;

	o = json_loadb((const char *)a->body.data, a->body.len, 0, &jerr);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "__type")),
	    type);
	json_decref(o);
}

static void
test_route(void **state)
{
	static const char *const garbage[] = {
	    "", "platform", "platform=", "platform=linux", "version=1.0",
	    "platform=linux-amd64&platform=linux-amd64",
	    "platform=linux-amd64&version=x",
	    "platform=linux-amd64&other=1", "platform=linux-amd64&&",
	    "platform=linux%2Damd64", "platform=../../etc/passwd",
	    "platform=linux-amd64&version=1.0&version=2.0", "&", "=", "==",
	    "platform=linux-amd64\r\nX: y",
	};
	struct fx *f = *state;
	struct answer a;
	char file[160], err[1400], q[400];
	size_t i;

	snprintf(file, sizeof(file), "%s/agent-b", f->base);
	write_file(file, "agent B bytes");
	assert_int_equal(agent_packages_add(f->data, file, "linux-amd64",
	    "3.3.1000.0", err, sizeof(err)), 0);

	assert_int_equal(get(f, "GET", AGENT_PACKAGES_PATH,
	    "platform=linux-amd64", f->inst, &a), 200);
	assert_int_equal(a.body.len, 13);
	assert_memory_equal(a.body.data, "agent B bytes", 13);
	assert_non_null(strstr(a.headers, "X-Porthole-Package-Version: "
	    "3.3.1000.0\r\n"));
	assert_non_null(strstr(a.headers, "X-Porthole-Package-Platform: "
	    "linux-amd64\r\n"));
	assert_non_null(strstr(a.headers, "X-Porthole-Package-Sha256: "));
	assert_non_null(strstr(a.headers, "X-Porthole-Package-Signature: "));
	buf_free(&a.body);
	assert_int_equal(get(f, "GET", AGENT_PACKAGES_PATH,
	    "platform=linux-amd64&version=3.3.1000.0", f->inst, &a), 200);
	buf_free(&a.body);
	/* an empty version is the newest, as AWS-UpdateSSMAgent's */
	assert_int_equal(get(f, "GET", AGENT_PACKAGES_PATH,
	    "platform=linux-amd64&version=", f->inst, &a), 200);
	buf_free(&a.body);
	assert_int_equal(get(f, "HEAD", AGENT_PACKAGES_PATH,
	    "version=3.3.1000.0&platform=linux-amd64", f->inst, &a), 200);
	buf_free(&a.body);

	/* not an agent: no certificate, an unknown instance */
	assert_int_equal(get(f, "GET", AGENT_PACKAGES_PATH,
	    "platform=linux-amd64", NULL, &a), 403);
	error_type(&a, "AccessDeniedException");
	buf_free(&a.body);
	assert_int_equal(get(f, "GET", AGENT_PACKAGES_PATH,
	    "platform=linux-amd64", "mi-00000000000000000", &a), 403);
	buf_free(&a.body);
	assert_int_equal(get(f, "GET", AGENT_PACKAGES_PATH,
	    "platform=linux-amd64", "admin", &a), 403);
	buf_free(&a.body);
	/* unknown */
	assert_int_equal(get(f, "GET", AGENT_PACKAGES_PATH,
	    "platform=linux-amd64&version=1.2.3.4", f->inst, &a), 404);
	error_type(&a, "NotFound");
	buf_free(&a.body);
	assert_int_equal(get(f, "GET", AGENT_PACKAGES_PATH,
	    "platform=windows-amd64", f->inst, &a), 404);
	buf_free(&a.body);
	/* methods, paths */
	assert_int_equal(get(f, "POST", AGENT_PACKAGES_PATH,
	    "platform=linux-amd64", f->inst, &a), 405);
	buf_free(&a.body);
	assert_int_equal(get(f, NULL, AGENT_PACKAGES_PATH,
	    "platform=linux-amd64", f->inst, &a), 405);
	buf_free(&a.body);
	assert_int_equal(get(f, "GET", "/v1/agent-package/x",
	    "platform=linux-amd64", f->inst, &a), 404);
	buf_free(&a.body);
	/* garbage queries */
	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		if (get(f, "GET", AGENT_PACKAGES_PATH, garbage[i], f->inst,
		    &a) != 400)
			fail_msg("query \"%s\": %d", garbage[i], a.status);
		error_type(&a, "ValidationException");
		buf_free(&a.body);
	}
	assert_int_equal(get(f, "GET", AGENT_PACKAGES_PATH, NULL, f->inst,
	    &a), 400);
	buf_free(&a.body);
	memset(q, 'a', sizeof(q) - 1);
	q[sizeof(q) - 1] = '\0';
	memcpy(q, "platform=", 9);
	assert_int_equal(get(f, "GET", AGENT_PACKAGES_PATH, q, f->inst, &a),
	    400);
	buf_free(&a.body);
	/* random bytes */
	srand(12);
	for (i = 0; i < 2000; i++) {
		size_t n = (size_t)rand() % 60, k;

		for (k = 0; k < n; k++)
			q[k] = (char)(1 + rand() % 255);
		q[n] = '\0';
		get(f, "GET", AGENT_PACKAGES_PATH, q, f->inst, &a);
		assert_true(a.status == 400 || a.status == 404 ||
		    a.status == 200);
		buf_free(&a.body);
	}

	/* the blob gone from disk: 404, not a crash */
	snprintf(file, sizeof(file), "%s/%s/porthole-agent-linux-amd64-"
	    "3.3.1000.0", f->data, AGENT_PACKAGES_DIR);
	assert_int_equal(unlink(file), 0);
	assert_int_equal(get(f, "GET", AGENT_PACKAGES_PATH,
	    "platform=linux-amd64", f->inst, &a), 404);
	buf_free(&a.body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test_setup_teardown(test_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
