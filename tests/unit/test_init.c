/* init: `portholed init` into a temporary directory. */
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

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "server/authz.h"
#include "server/init.h"
#include "server/pki.h"
#include "server/server.h"
#include "server/store.h"
#include "support/x509_verify.h"

struct tmp {
	char base[64];
	char dir[128];
};

static int
setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	snprintf(t->base, sizeof(t->base), "/tmp/test_init.XXXXXX");
	if (mkdtemp(t->base) == NULL)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "%s/data", t->base);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tmp *t = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->base);
	if (system(cmd) != 0)
		return -1;
	free(t);
	return 0;
}

static const char *const all_files[] = {
	"ca.pem", "ca.key", "server.pem", "server.key", "porthole.db",
	"admin.credentials", "config.json",
};
#define NFILES (sizeof(all_files) / sizeof(all_files[0]))

static char *
slurp(const char *dir, const char *name, size_t *len)
{
	char path[256];
	FILE *f;
	char *s;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	if (len != NULL)
		*len = (size_t)n;
	return s;
}

static mode_t
mode_of(const char *dir, const char *name)
{
	char path[256];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode));
	return sb.st_mode & 07777;
}

/* Run init quietly; the output is returned (caller frees). */
static int
run_init(const struct init_opts *o_in, char **out)
{
	struct init_opts o = *o_in;
	size_t n = 0;
	char *buf = NULL;
	FILE *f;
	int rc;

	f = open_memstream(&buf, &n);
	assert_non_null(f);
	o.out = f;
	rc = server_init_datadir(&o);
	fclose(f);
	if (out != NULL)
		*out = buf;
	else
		free(buf);
	return rc;
}

/* A minimal INI reader: the value of key in [section], or NULL. */
static char *
ini_get(const char *text, const char *section, const char *key)
{
	char *copy = strdup(text), *line, *save = NULL, *res = NULL;
	int in = 0;

	assert_non_null(copy);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *eq, *k, *v, *end;

		if (line[0] == '#' || line[0] == ';' || line[0] == '\0')
			continue;
		if (line[0] == '[') {
			end = strchr(line, ']');
			assert_non_null(end);
			*end = '\0';
			in = strcmp(line + 1, section) == 0;
			continue;
		}
		eq = strchr(line, '=');
		assert_non_null(eq);   /* every other line is key = value */
		if (!in)
			continue;
		*eq = '\0';
		k = line;
		v = eq + 1;
		while (*v == ' ')
			v++;
		end = eq;
		while (end > k && end[-1] == ' ')
			*--end = '\0';
		if (strcmp(k, key) == 0) {
			res = strdup(v);
			break;
		}
	}
	free(copy);
	return res;
}

/* Does cert verify as a TLS server for host (or ip)? */
static int
verify_server(X509 *ca, X509 *cert, const char *host, const char *ip)
{
	return x509_verifies(ca, cert, X509_PURPOSE_SSL_SERVER, host, ip);
}

static void
test_init_creates_everything(void **state)
{
	struct tmp *t = *state;
	struct init_opts o;
	char *out = NULL, *creds, *akid, *secret, path[256];
	json_t *cfg;
	json_error_t jerr;
	struct store *st = NULL;
	struct principal p;
	char got_secret[STORE_SECRET_SIZE];
	X509 *ca, *srv;
	EVP_PKEY *key;
	size_t i;
	mode_t old;

	memset(&o, 0, sizeof(o));
	o.data_dir = t->dir;
	o.region = "eu-west-2";
	o.account_id = "123456789012";
	/* A lax umask must not matter. */
	old = umask(0);
	assert_int_equal(run_init(&o, &out), 0);
	umask(old);

	assert_int_equal(mode_of(t->base, "data"), 0700);
	for (i = 0; i < NFILES; i++) {
		mode_t m = mode_of(t->dir, all_files[i]);

		assert_int_equal(m & 077, 0);
	}
	assert_int_equal(mode_of(t->dir, "ca.key"), 0600);
	assert_int_equal(mode_of(t->dir, "server.key"), 0600);
	assert_int_equal(mode_of(t->dir, "admin.credentials"), 0600);
	assert_int_equal(mode_of(t->dir, "porthole.db"), 0600);

	/* The shared-credentials file, as the AWS CLI reads it. */
	creds = slurp(t->dir, "admin.credentials", NULL);
	akid = ini_get(creds, "porthole", "aws_access_key_id");
	secret = ini_get(creds, "porthole", "aws_secret_access_key");
	assert_non_null(akid);
	assert_non_null(secret);
	assert_int_equal(strlen(akid), 20);
	assert_true(strncmp(akid, "AKIA", 4) == 0);
	assert_int_equal(strlen(secret), 40);
	/* The output names paths, never the secret. */
	assert_non_null(out);
	assert_null(strstr(out, secret));
	assert_non_null(strstr(out, "admin.credentials"));
	assert_non_null(strstr(out, "ca.pem"));

	/* The key belongs to the root admin in the database. */
	snprintf(path, sizeof(path), "%s/%s", t->dir, SERVER_DB_FILE);
	assert_int_equal(store_open(&st, path), 0);
	memset(&p, 0, sizeof(p));
	assert_int_equal(store_iam_lookup_key(st, akid, got_secret,
	    sizeof(got_secret), &p), 0);
	assert_string_equal(got_secret, secret);
	assert_string_equal(p.name, "admin");
	assert_string_equal(p.arn, "arn:aws:iam::123456789012:user/admin");
	assert_true(p.is_root_admin);
	store_close(st);

	/* config.json records the settings. */
	snprintf(path, sizeof(path), "%s/config.json", t->dir);
	cfg = json_load_file(path, 0, &jerr);
	assert_non_null(cfg);
	assert_string_equal(json_string_value(json_object_get(cfg, "Region")),
	    "eu-west-2");
	assert_string_equal(json_string_value(json_object_get(cfg,
	    "AccountId")), "123456789012");
	assert_int_equal(json_array_size(json_object_get(cfg, "Hostnames")),
	    3);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(cfg, "Hostnames"), 0)), "localhost");
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(cfg, "Hostnames"), 1)), "127.0.0.1");
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(cfg, "Hostnames"), 2)), "::1");
	json_decref(cfg);

	/* The server certificate chains to the CA for the default names. */
	snprintf(path, sizeof(path), "%s/ca.pem", t->dir);
	assert_int_equal(pki_load_cert(path, &ca), 0);
	snprintf(path, sizeof(path), "%s/server.pem", t->dir);
	assert_int_equal(pki_load_cert(path, &srv), 0);
	snprintf(path, sizeof(path), "%s/server.key", t->dir);
	assert_int_equal(pki_load_key(path, &key), 0);
	assert_int_equal(X509_check_private_key(srv, key), 1);
	assert_true(verify_server(ca, srv, "localhost", NULL));
	assert_true(verify_server(ca, srv, NULL, "127.0.0.1"));
	assert_true(verify_server(ca, srv, NULL, "::1"));
	assert_false(verify_server(ca, srv, "example.com", NULL));
	X509_free(ca);
	X509_free(srv);
	EVP_PKEY_free(key);
	assert_int_equal(pki_load_ca(t->dir, &key, &ca), 0);
	X509_free(ca);
	EVP_PKEY_free(key);

	free(akid);
	free(secret);
	free(creds);
	free(out);
}

struct snap {
	struct stat sb;
	char *data;
	size_t len;
};

static void
take(const char *dir, struct snap s[NFILES])
{
	char path[256];
	size_t i;

	for (i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, all_files[i]);
		assert_int_equal(stat(path, &s[i].sb), 0);
		s[i].data = slurp(dir, all_files[i], &s[i].len);
	}
}

static void
test_init_twice_changes_nothing(void **state)
{
	struct tmp *t = *state;
	struct init_opts o;
	struct snap a[NFILES], b[NFILES];
	const char *names[] = { "other.example" };
	char *out = NULL;
	size_t i;

	memset(&o, 0, sizeof(o));
	o.data_dir = t->dir;
	assert_int_equal(run_init(&o, NULL), 0);
	take(t->dir, a);
	sleep(1);   /* a rewrite would show in the mtimes */
	o.region = "ap-southeast-2";
	o.account_id = "999999999999";
	o.hostnames = names;
	o.nhostnames = 1;
	assert_int_equal(run_init(&o, &out), 0);
	assert_non_null(strstr(out, "already initialised"));
	take(t->dir, b);
	for (i = 0; i < NFILES; i++) {
		assert_int_equal(a[i].sb.st_ino, b[i].sb.st_ino);
		assert_int_equal(a[i].sb.st_mtim.tv_sec,
		    b[i].sb.st_mtim.tv_sec);
		assert_int_equal(a[i].sb.st_mtim.tv_nsec,
		    b[i].sb.st_mtim.tv_nsec);
		assert_int_equal(a[i].len, b[i].len);
		assert_memory_equal(a[i].data, b[i].data, a[i].len);
		free(a[i].data);
		free(b[i].data);
	}
	free(out);
}

static void
test_init_random_account(void **state)
{
	struct tmp *t = *state;
	struct init_opts o;
	char path[256];
	const char *acct;
	json_t *cfg;
	json_error_t jerr;

	memset(&o, 0, sizeof(o));
	o.data_dir = t->dir;
	assert_int_equal(run_init(&o, NULL), 0);
	snprintf(path, sizeof(path), "%s/config.json", t->dir);
	cfg = json_load_file(path, 0, &jerr);
	assert_non_null(cfg);
	assert_string_equal(json_string_value(json_object_get(cfg, "Region")),
	    "us-east-1");
	acct = json_string_value(json_object_get(cfg, "AccountId"));
	assert_non_null(acct);
	assert_true(server_init_account_valid(acct));
	assert_true(acct[0] != '0');
	json_decref(cfg);
}

static void
test_init_rejects_bad_options(void **state)
{
	struct tmp *t = *state;
	static const char *const bad_accounts[] = { "12345", "12345678901a",
	    "1234567890123", "", "-12345678901", " 123456789012" };
	static const char *const bad_regions[] = { "US-EAST-1", "useast1",
	    "us-east-", "us_east_1", "us-east-1a", "-us-east-1", "us--east-1",
	    "us-east-123", "us-1-east", "", "us-east-1\n",
	    "xx-xxxxxxxxxxxxxxxxxxxxxxxxxxxx-1" };
	static const char *const good_regions[] = { "us-east-1",
	    "us-gov-west-1", "ap-southeast-2", "eu-central-1",
	    "cn-northwest-1" };
	const char *bad_host[] = { "localhost", "no spaces" };
	struct init_opts o;
	struct stat sb;
	size_t i;

	for (i = 0; i < sizeof(bad_accounts) / sizeof(bad_accounts[0]); i++) {
		memset(&o, 0, sizeof(o));
		o.data_dir = t->dir;
		o.account_id = bad_accounts[i];
		assert_int_equal(run_init(&o, NULL), PH_ERR_INVALID);
	}
	for (i = 0; i < sizeof(bad_regions) / sizeof(bad_regions[0]); i++) {
		memset(&o, 0, sizeof(o));
		o.data_dir = t->dir;
		o.region = bad_regions[i];
		assert_int_equal(run_init(&o, NULL), PH_ERR_INVALID);
	}
	for (i = 0; i < sizeof(good_regions) / sizeof(good_regions[0]); i++)
		assert_true(server_init_region_valid(good_regions[i]));
	memset(&o, 0, sizeof(o));
	o.data_dir = t->dir;
	o.hostnames = bad_host;
	o.nhostnames = 2;
	assert_int_equal(run_init(&o, NULL), PH_ERR_INVALID);
	memset(&o, 0, sizeof(o));
	assert_int_equal(run_init(&o, NULL), PH_ERR_INVALID);
	/* Nothing was created by any of them. */
	assert_int_equal(stat(t->dir, &sb), -1);
}

static void
test_init_partial_dir_untouched(void **state)
{
	struct tmp *t = *state;
	struct init_opts o;
	char path[256], *s;
	FILE *f;
	struct stat sb;

	assert_int_equal(mkdir(t->dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/ca.key", t->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("mine\n", f);
	fclose(f);
	memset(&o, 0, sizeof(o));
	o.data_dir = t->dir;
	assert_int_equal(run_init(&o, NULL), PH_ERR_EXISTS);
	s = slurp(t->dir, "ca.key", NULL);
	assert_string_equal(s, "mine\n");
	free(s);
	snprintf(path, sizeof(path), "%s/ca.pem", t->dir);
	assert_int_equal(stat(path, &sb), -1);
	snprintf(path, sizeof(path), "%s/porthole.db", t->dir);
	assert_int_equal(stat(path, &sb), -1);
	/* The directory was there before: it stays. */
	assert_int_equal(stat(t->dir, &sb), 0);

	/* A parent that does not exist is an error, not mkdir -p. */
	memset(&o, 0, sizeof(o));
	snprintf(path, sizeof(path), "%s/no/such/dir", t->base);
	o.data_dir = path;
	assert_int_equal(run_init(&o, NULL), PH_ERR_IO);
}

static void
test_init_main(void **state)
{
	struct tmp *t = *state;
	char h1[] = "porthole.example,10.9.8.7", h2[] = "::1";
	char *bad[] = { "init", "--data-dir", t->dir, "--account-id", "abc",
	    NULL };
	char *extra[] = { "init", "--data-dir", t->dir, "stray", NULL };
	char *none[] = { "init", NULL };
	char *good[] = { "init", "--data-dir", t->dir, "--hostname", h1,
	    "--hostname", h2, "--region", "eu-north-1", NULL };
	char path[256];
	X509 *ca, *srv;
	FILE *saved;

	assert_int_equal(server_init_main(5, bad), 2);
	assert_int_equal(server_init_main(4, extra), 2);
	assert_int_equal(server_init_main(1, none), 2);
	/* Keep the test output clean: the report goes to stdout. */
	fflush(stdout);
	saved = stdout;
	stdout = fopen("/dev/null", "w");
	assert_non_null(stdout);
	assert_int_equal(server_init_main(9, good), 0);
	fclose(stdout);
	stdout = saved;

	snprintf(path, sizeof(path), "%s/ca.pem", t->dir);
	assert_int_equal(pki_load_cert(path, &ca), 0);
	snprintf(path, sizeof(path), "%s/server.pem", t->dir);
	assert_int_equal(pki_load_cert(path, &srv), 0);
	assert_true(verify_server(ca, srv, "porthole.example", NULL));
	assert_true(verify_server(ca, srv, NULL, "10.9.8.7"));
	assert_true(verify_server(ca, srv, NULL, "::1"));
	assert_false(verify_server(ca, srv, "localhost", NULL));
	X509_free(ca);
	X509_free(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_creates_everything,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_twice_changes_nothing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_random_account,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_rejects_bad_options,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_partial_dir_untouched,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_main, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
