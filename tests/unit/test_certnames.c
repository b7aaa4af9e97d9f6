/* certnames (the server certificate's names as a set, the AWS endpoint
 * names of a region) and `portholed cert reissue`: more names, the same CA,
 * garbage refused with the old certificate left in place. */
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
#include <openssl/x509v3.h>

#include "common/err.h"
#include "server/certcmd.h"
#include "server/certnames.h"
#include "server/init.h"
#include "server/pki.h"
#include "support/x509_verify.h"

static void
test_add_canonical_set(void **state)
{
	struct certnames cn;
	char name[300];
	size_t i;

	(void)state;
	memset(&cn, 0, sizeof(cn));
	assert_int_equal(certnames_add(&cn, "LocalHost"), 0);
	assert_int_equal(certnames_add(&cn, "localhost"), 0);
	assert_int_equal(certnames_add(&cn, "0:0:0:0:0:0:0:1"), 0);
	assert_int_equal(certnames_add(&cn, "::1"), 0);
	assert_int_equal(certnames_add(&cn, "2001:DB8::A"), 0);
	assert_int_equal(certnames_add(&cn, "127.0.0.1"), 0);
	assert_int_equal(cn.n, 4);
	assert_string_equal(cn.name[0], "localhost");
	assert_string_equal(cn.name[1], "::1");
	assert_string_equal(cn.name[2], "2001:db8::a");
	assert_true(certnames_has(&cn, "LOCALHOST"));
	assert_true(certnames_has(&cn, "0::1"));
	assert_false(certnames_has(&cn, "127.0.0.2"));
	assert_false(certnames_has(&cn, "bad name"));
	/* Garbage: nothing is added. */
	assert_int_equal(certnames_add(&cn, NULL), PH_ERR_INVALID);
	assert_int_equal(certnames_add(&cn, ""), PH_ERR_INVALID);
	assert_int_equal(certnames_add(&cn, "[::1]"), PH_ERR_INVALID);
	assert_int_equal(certnames_add(&cn, "a b"), PH_ERR_INVALID);
	assert_int_equal(certnames_add(&cn, "host:443"), PH_ERR_INVALID);
	assert_int_equal(certnames_add(&cn, "-x.example"), PH_ERR_INVALID);
	assert_int_equal(certnames_add(&cn, "x.example."), PH_ERR_INVALID);
	assert_int_equal(certnames_add(&cn, "fe80::1%lo"), PH_ERR_INVALID);
	assert_int_equal(certnames_add(&cn, "\xc3\xa9.example"),
	    PH_ERR_INVALID);
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(certnames_add(&cn, name), PH_ERR_INVALID);
	assert_int_equal(cn.n, 4);
	/* At most PKI_NAMES_MAX. */
	for (i = cn.n; i < PKI_NAMES_MAX; i++) {
		snprintf(name, sizeof(name), "h%zu.example", i);
		assert_int_equal(certnames_add(&cn, name), 0);
	}
	assert_int_equal(certnames_add(&cn, "one-more.example"),
	    PH_ERR_TOOBIG);
	assert_int_equal(certnames_add(&cn, "localhost"), 0);  /* there */
}

/* --hostname values: split at commas, empty parts skipped, at most max. */
static void
test_split(void **state)
{
	const char *names[3];
	char arg[32];
	size_t n = 0;

	(void)state;
	snprintf(arg, sizeof(arg), "a.example,,10.0.0.1,");
	assert_int_equal(certnames_split(arg, names, &n, 3), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "a.example");
	assert_string_equal(names[1], "10.0.0.1");
	snprintf(arg, sizeof(arg), "b,c");
	assert_int_equal(certnames_split(arg, names, &n, 3), PH_ERR_TOOBIG);
	assert_int_equal(n, 3);
	assert_string_equal(names[2], "b");
}

static void
test_aws_names(void **state)
{
	struct certnames cn;

	(void)state;
	memset(&cn, 0, sizeof(cn));
	assert_int_equal(certnames_add_aws(&cn, "eu-west-2"), 0);
	assert_int_equal(cn.n, 8);
	assert_true(certnames_has(&cn, "ssm.eu-west-2.amazonaws.com"));
	assert_true(certnames_has(&cn, "ssmmessages.eu-west-2.amazonaws.com"));
	assert_true(certnames_has(&cn, "ec2messages.eu-west-2.amazonaws.com"));
	assert_true(certnames_has(&cn, "kms.eu-west-2.amazonaws.com"));
	assert_true(certnames_has(&cn, "sts.eu-west-2.amazonaws.com"));
	assert_true(certnames_has(&cn, "cloudtrail.eu-west-2.amazonaws.com"));
	assert_true(certnames_has(&cn, "sts.amazonaws.com"));
	assert_true(certnames_has(&cn, "iam.amazonaws.com"));
	/* Twice is the same set. */
	assert_int_equal(certnames_add_aws(&cn, "eu-west-2"), 0);
	assert_int_equal(cn.n, 8);

	memset(&cn, 0, sizeof(cn));
	assert_int_equal(certnames_add_aws(&cn, "cn-northwest-1"), 0);
	assert_true(certnames_has(&cn,
	    "ssm.cn-northwest-1.amazonaws.com.cn"));
	assert_true(certnames_has(&cn, "iam.cn-north-1.amazonaws.com.cn"));
	assert_false(certnames_has(&cn, "iam.amazonaws.com"));
	memset(&cn, 0, sizeof(cn));
	assert_int_equal(certnames_add_aws(&cn, "us-gov-west-1"), 0);
	assert_true(certnames_has(&cn, "iam.us-gov.amazonaws.com"));

	memset(&cn, 0, sizeof(cn));
	assert_int_equal(certnames_add_aws(&cn, NULL), PH_ERR_INVALID);
	assert_int_equal(certnames_add_aws(&cn, ""), PH_ERR_INVALID);
	assert_int_equal(certnames_add_aws(&cn, "US-EAST-1"), PH_ERR_INVALID);
	assert_int_equal(certnames_add_aws(&cn, "us-east-1.evil.example"),
	    PH_ERR_INVALID);
	assert_int_equal(certnames_add_aws(&cn, "../../x"), PH_ERR_INVALID);
	assert_int_equal(cn.n, 0);
}

/* ---- on a data directory ------------------------------------------------- */

struct tmp {
	char base[64];
	char dir[128];
};

static int
setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));
	struct init_opts o;
	FILE *devnull;

	if (t == NULL)
		return -1;
	snprintf(t->base, sizeof(t->base), "/tmp/test_certnames.XXXXXX");
	if (mkdtemp(t->base) == NULL)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "%s/data", t->base);
	memset(&o, 0, sizeof(o));
	o.data_dir = t->dir;
	o.region = "eu-west-2";
	if ((devnull = fopen("/dev/null", "w")) == NULL)
		return -1;
	o.out = devnull;
	if (server_init_datadir(&o) != 0)
		return -1;
	fclose(devnull);
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

static X509 *
load(const struct tmp *t, const char *file)
{
	char path[256];
	X509 *x;

	snprintf(path, sizeof(path), "%s/%s", t->dir, file);
	assert_int_equal(pki_load_cert(path, &x), 0);
	return x;
}

/* Does cert verify as a TLS server for host (or ip)? */
static int
verify(X509 *ca, X509 *cert, const char *host, const char *ip)
{
	return x509_verifies(ca, cert, X509_PURPOSE_SSL_SERVER, host, ip);
}

static void
fingerprint(const struct tmp *t, char fp[PKI_FINGERPRINT_SIZE])
{
	X509 *x = load(t, PKI_SERVER_CERT_FILE);

	assert_int_equal(pki_cert_fingerprint(x, fp), 0);
	X509_free(x);
}

static void
test_reissue_adds_names(void **state)
{
	struct tmp *t = *state;
	const char *more[] = { "porthole.corp.example", "fd00::44" };
	struct cert_reissue_opts o;
	struct certnames cn, got;
	char path[256], old_fp[PKI_FINGERPRINT_SIZE];
	struct stat sb;
	json_error_t jerr;
	json_t *cfg, *h;
	X509 *ca, *srv, *before;
	EVP_PKEY *key;

	fingerprint(t, old_fp);
	before = load(t, PKI_SERVER_CERT_FILE);
	memset(&o, 0, sizeof(o));
	o.data_dir = t->dir;
	o.hostnames = more;
	o.nhostnames = 2;
	o.aws_names = 1;   /* the region of config.json: eu-west-2 */
	assert_int_equal(server_cert_reissue(&o, &cn), 0);
	assert_int_equal(cn.n, 3 + 2 + 8);

	ca = load(t, PKI_CA_CERT_FILE);
	srv = load(t, PKI_SERVER_CERT_FILE);
	/* The new certificate: the old names, the new ones, the same CA. */
	assert_true(verify(ca, srv, "localhost", NULL));
	assert_true(verify(ca, srv, NULL, "127.0.0.1"));
	assert_true(verify(ca, srv, NULL, "::1"));
	assert_true(verify(ca, srv, NULL, "fd00::44"));
	assert_true(verify(ca, srv, "porthole.corp.example", NULL));
	assert_true(verify(ca, srv, "ssm.eu-west-2.amazonaws.com", NULL));
	assert_true(verify(ca, srv, "kms.eu-west-2.amazonaws.com", NULL));
	assert_true(verify(ca, srv, "ssmmessages.eu-west-2.amazonaws.com",
	    NULL));
	assert_false(verify(ca, srv, "ssm.us-east-1.amazonaws.com", NULL));
	assert_false(verify(ca, srv, NULL, "fd00::45"));
	assert_false(verify(ca, before, "ssm.eu-west-2.amazonaws.com", NULL));
	memset(&got, 0, sizeof(got));
	assert_int_equal(certnames_add_cert(&got, srv), 0);
	assert_int_equal(got.n, cn.n);
	assert_true(certnames_has(&got, "fd00::44"));
	/* Its new key, 0600; no temporary file left. */
	snprintf(path, sizeof(path), "%s/server.key", t->dir);
	assert_int_equal(pki_load_key(path, &key), 0);
	assert_int_equal(X509_check_private_key(srv, key), 1);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	EVP_PKEY_free(key);
	snprintf(path, sizeof(path), "%s/server.key.new", t->dir);
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/server.pem.new", t->dir);
	assert_int_not_equal(access(path, F_OK), 0);
	/* config.json records the names and keeps the rest. */
	snprintf(path, sizeof(path), "%s/config.json", t->dir);
	cfg = json_load_file(path, 0, &jerr);
	assert_non_null(cfg);
	h = json_object_get(cfg, "Hostnames");
	assert_int_equal(json_array_size(h), cn.n);
	assert_string_equal(json_string_value(json_array_get(h, 3)),
	    "porthole.corp.example");
	assert_string_equal(json_string_value(json_object_get(cfg, "Region")),
	    "eu-west-2");
	json_decref(cfg);
	X509_free(srv);

	/* Again with --replace: only the names given. */
	o.hostnames = more + 1;
	o.nhostnames = 1;
	o.aws_names = 0;
	o.replace = 1;
	assert_int_equal(server_cert_reissue(&o, &cn), 0);
	srv = load(t, PKI_SERVER_CERT_FILE);
	assert_true(verify(ca, srv, NULL, "fd00::44"));
	assert_false(verify(ca, srv, "localhost", NULL));
	assert_false(verify(ca, srv, NULL, "127.0.0.1"));
	X509_free(srv);
	X509_free(ca);
	X509_free(before);
}

static void
test_reissue_garbage(void **state)
{
	struct tmp *t = *state;
	const char *bad[] = { "ok.example", "not a name" };
	const char *many[PKI_NAMES_MAX];
	char fp[PKI_FINGERPRINT_SIZE], fp2[PKI_FINGERPRINT_SIZE];
	char names[PKI_NAMES_MAX][32];
	struct cert_reissue_opts o;
	struct certnames cn;
	size_t i;

	fingerprint(t, fp);
	memset(&o, 0, sizeof(o));
	o.data_dir = t->dir;
	o.hostnames = bad;
	o.nhostnames = 2;
	assert_int_equal(server_cert_reissue(&o, &cn), PH_ERR_INVALID);
	/* --replace without names, a bad region, too many names. */
	o.nhostnames = 0;
	o.replace = 1;
	assert_int_equal(server_cert_reissue(&o, &cn), PH_ERR_INVALID);
	o.replace = 0;
	o.aws_names = 1;
	o.region = "Not-A-Region";
	assert_int_equal(server_cert_reissue(&o, &cn), PH_ERR_INVALID);
	o.aws_names = 0;
	o.region = NULL;
	for (i = 0; i < PKI_NAMES_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "n%zu.example", i);
		many[i] = names[i];
	}
	o.hostnames = many;
	o.nhostnames = PKI_NAMES_MAX;
	assert_int_equal(server_cert_reissue(&o, &cn), PH_ERR_INVALID);
	fingerprint(t, fp2);
	assert_string_equal(fp, fp2);   /* the old certificate stays */

	/* Not a data directory. */
	o.data_dir = "/nonexistent/porthole";
	o.nhostnames = 1;
	assert_int_not_equal(server_cert_reissue(&o, &cn), 0);
}

static void
test_cert_main(void **state)
{
	struct tmp *t = *state;
	char *argv[8];
	char a0[] = "cert", a1[] = "reissue", a2[] = "--data-dir",
	    a4[] = "--san", a5[] = "x.example", show[] = "show",
	    bogus[] = "bogus", region[] = "--region";

	argv[0] = a0;
	argv[1] = a1;
	argv[2] = a2;
	argv[3] = t->dir;
	argv[4] = a4;
	argv[5] = a5;
	argv[6] = NULL;
	assert_int_equal(server_cert_main(6, argv), 0);
	argv[1] = show;
	assert_int_equal(server_cert_main(4, argv), 0);
	/* show takes nothing else; unknown commands and options. */
	assert_int_equal(server_cert_main(6, argv), 2);
	argv[1] = bogus;
	assert_int_equal(server_cert_main(4, argv), 2);
	argv[1] = a1;
	argv[4] = region;
	assert_int_equal(server_cert_main(5, argv), 2);
	assert_int_equal(server_cert_main(1, argv), 2);
}

/* `portholed init --aws-endpoint-names`, and too many names for one
 * certificate refused before anything is created. */
static void
test_init_aws_names(void **state)
{
	char base[] = "/tmp/test_certnames.XXXXXX", dir[64], cmd[128],
	    names[PKI_NAMES_MAX][32];
	const char *many[PKI_NAMES_MAX], *one[] = { "portholed.corp.example" };
	struct certnames cn;
	struct init_opts o;
	FILE *devnull;
	X509 *x;
	size_t i;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(dir, sizeof(dir), "%s/d", base);
	devnull = fopen("/dev/null", "w");
	assert_non_null(devnull);
	memset(&o, 0, sizeof(o));
	o.data_dir = dir;
	o.out = devnull;
	o.region = "ap-southeast-2";
	o.aws_names = 1;
	o.hostnames = one;
	o.nhostnames = 1;
	assert_int_equal(server_init_datadir(&o), 0);
	snprintf(cmd, sizeof(cmd), "%s/server.pem", dir);
	assert_int_equal(pki_load_cert(cmd, &x), 0);
	memset(&cn, 0, sizeof(cn));
	assert_int_equal(certnames_add_cert(&cn, x), 0);
	X509_free(x);
	assert_int_equal(cn.n, 1 + 8);
	assert_string_equal(cn.name[0], "portholed.corp.example");
	assert_true(certnames_has(&cn, "ssm.ap-southeast-2.amazonaws.com"));
	assert_true(certnames_has(&cn, "kms.ap-southeast-2.amazonaws.com"));
	assert_false(certnames_has(&cn, "localhost"));

	for (i = 0; i < PKI_NAMES_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "n%zu.example", i);
		many[i] = names[i];
	}
	snprintf(dir, sizeof(dir), "%s/e", base);
	o.data_dir = dir;
	o.hostnames = many;
	o.nhostnames = PKI_NAMES_MAX;
	assert_int_equal(server_init_datadir(&o), PH_ERR_INVALID);
	assert_int_not_equal(access(dir, F_OK), 0);
	fclose(devnull);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_canonical_set),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_aws_names),
		cmocka_unit_test(test_init_aws_names),
		cmocka_unit_test_setup_teardown(test_reissue_adds_names, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reissue_garbage, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cert_main, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
