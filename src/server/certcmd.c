/* certcmd: `portholed cert show` and `portholed cert reissue`. */
#include "server/certcmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/asn1.h>

#include "common/err.h"
#include "server/certnames.h"
#include "server/init.h"
#include "server/pki.h"

#define CERT_PATH_MAX 600
#define CERT_NEW_SUFFIX ".new"

static int
cert_path(char *out, const char *dir, const char *file, const char *suffix)
{
	int n;

	n = snprintf(out, CERT_PATH_MAX, "%s/%s%s", dir, file, suffix);
	return n < 0 || n >= CERT_PATH_MAX ? PH_ERR_TOOBIG : 0;
}

/* config.json's Region, or the default. */
static void
config_region(const char *dir, char *out, size_t outsz)
{
	char path[CERT_PATH_MAX];
	json_error_t jerr;
	const char *v;
	json_t *o = NULL;

	snprintf(out, outsz, "%s", INIT_DEFAULT_REGION);
	if (cert_path(path, dir, INIT_CONFIG_FILE, "") == 0)
		o = json_load_file(path, 0, &jerr);
	if ((v = json_string_value(json_object_get(o, "Region"))) != NULL &&
	    strlen(v) < outsz)
		snprintf(out, outsz, "%s", v);
	json_decref(o);
}

/* Write p to path.new (a stale one from an interrupted run goes first)
 * and rename it over path: readers see the old file or the new one. */
static int
replace_file(const char *path, const void *p, size_t n, mode_t mode,
    int (*write_fn)(const char *, const void *), const void *obj)
{
	char tmp[CERT_PATH_MAX];
	int rc;

	if (snprintf(tmp, sizeof(tmp), "%s%s", path, CERT_NEW_SUFFIX) >=
	    (int)sizeof(tmp))
		return PH_ERR_TOOBIG;
	(void)unlink(tmp);
	rc = write_fn != NULL ? write_fn(tmp, obj) :
	    pki_write_file_excl(tmp, p, n, mode);
	if (rc != 0)
		return rc;
	if (rename(tmp, path) != 0) {
		(void)unlink(tmp);
		return PH_ERR_IO;
	}
	return 0;
}

static int
write_key_fn(const char *path, const void *key)
{
	return pki_write_key(path, (EVP_PKEY *)key);
}

static int
write_cert_fn(const char *path, const void *cert)
{
	return pki_write_cert(path, (X509 *)cert);
}

/* config.json with Hostnames replaced; other settings are kept. */
static int
update_config(const char *dir, const struct certnames *cn)
{
	char path[CERT_PATH_MAX];
	json_error_t jerr;
	json_t *o = NULL, *a = NULL;
	char *text = NULL;
	size_t i;
	int rc;

	if ((rc = cert_path(path, dir, INIT_CONFIG_FILE, "")) != 0)
		return rc;
	if ((o = json_load_file(path, 0, &jerr)) == NULL ||
	    !json_is_object(o)) {
		rc = PH_ERR_INVALID;
		goto fail;
	}
	rc = PH_ERR_NOMEM;
	if ((a = json_array()) == NULL)
		goto fail;
	for (i = 0; i < cn->n; i++)
		if (json_array_append_new(a, json_string(cn->name[i])) != 0)
			goto fail;
	if (json_object_set_new(o, "Hostnames", a) != 0) {
		a = NULL;
		goto fail;
	}
	a = NULL;
	if ((text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL)
		goto fail;
	rc = replace_file(path, text, strlen(text), 0600, NULL, NULL);
fail:
	free(text);
	json_decref(a);
	json_decref(o);
	return rc;
}

static int
load_server_cert(const char *dir, X509 **out)
{
	char path[CERT_PATH_MAX];
	int rc;

	*out = NULL;
	if ((rc = cert_path(path, dir, PKI_SERVER_CERT_FILE, "")) != 0)
		return rc;
	if ((rc = pki_load_cert(path, out)) != 0)
		fprintf(stderr, "portholed cert: cannot read %s (%s); is %s a "
		    "data directory of 'portholed init'?\n", path,
		    ph_strerror(rc), dir);
	return rc;
}

int
server_cert_reissue(const struct cert_reissue_opts *o, struct certnames *cn)
{
	char path[CERT_PATH_MAX], region[64];
	const char *names[PKI_NAMES_MAX];
	EVP_PKEY *ca_key = NULL, *key = NULL;
	X509 *ca = NULL, *old = NULL, *cert = NULL;
	size_t i;
	int rc;

	memset(cn, 0, sizeof(*cn));
	if (o->region != NULL)
		snprintf(region, sizeof(region), "%s", o->region);
	else
		config_region(o->data_dir, region, sizeof(region));
	if (o->aws_names && !server_init_region_valid(region)) {
		fprintf(stderr, "portholed cert: invalid region '%s'\n",
		    region);
		return PH_ERR_INVALID;
	}
	if (o->replace && o->nhostnames == 0 && !o->aws_names) {
		fprintf(stderr, "portholed cert: --replace needs --hostname or "
		    "--aws-endpoint-names: a certificate needs names\n");
		return PH_ERR_INVALID;
	}
	if ((rc = load_server_cert(o->data_dir, &old)) != 0)
		goto fail;
	if (!o->replace && (rc = certnames_add_cert(cn, old)) != 0)
		goto toomany;
	for (i = 0; i < o->nhostnames; i++) {
		if ((rc = certnames_add(cn, o->hostnames[i])) == PH_ERR_INVALID) {
			fprintf(stderr, "portholed cert: invalid --hostname "
			    "'%s': want a DNS name or an IP address\n",
			    o->hostnames[i]);
			goto fail;
		}
		if (rc != 0)
			goto toomany;
	}
	if (o->aws_names && (rc = certnames_add_aws(cn, region)) != 0)
		goto toomany;
	if ((rc = pki_load_ca(o->data_dir, &ca_key, &ca)) != 0) {
		fprintf(stderr, "portholed cert: cannot load the CA of %s "
		    "(%s)\n", o->data_dir, ph_strerror(rc));
		goto fail;
	}
	certnames_ptrs(cn, names);
	if ((rc = pki_server_cert_issue(ca_key, ca, names, cn->n, &key,
	    &cert)) != 0) {
		fprintf(stderr, "portholed cert: cannot issue the certificate "
		    "(%s)\n", ph_strerror(rc));
		goto fail;
	}
	/* The key first: a certificate never names a key not yet there. */
	if ((rc = cert_path(path, o->data_dir, PKI_SERVER_KEY_FILE, "")) != 0 ||
	    (rc = replace_file(path, NULL, 0, 0600, write_key_fn, key)) != 0 ||
	    (rc = cert_path(path, o->data_dir, PKI_SERVER_CERT_FILE,
	    "")) != 0 ||
	    (rc = replace_file(path, NULL, 0, 0644, write_cert_fn,
	    cert)) != 0) {
		fprintf(stderr, "portholed cert: cannot write %s (%s)\n", path,
		    ph_strerror(rc));
		goto fail;
	}
	if ((rc = update_config(o->data_dir, cn)) != 0) {
		/* The certificate is in place; only the record is stale. */
		fprintf(stderr, "portholed cert: warning: cannot update "
		    "Hostnames in %s/%s (%s)\n", o->data_dir, INIT_CONFIG_FILE,
		    ph_strerror(rc));
		rc = 0;
	}
	goto fail;
toomany:
	fprintf(stderr, "portholed cert: more than %d names for one "
	    "certificate\n", PKI_NAMES_MAX);
	rc = PH_ERR_INVALID;
fail:
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	X509_free(ca);
	X509_free(old);
	X509_free(cert);
	return rc;
}

static void
print_names(FILE *f, const struct certnames *cn)
{
	size_t i;

	for (i = 0; i < cn->n; i++)
		fprintf(f, "  %s\n", cn->name[i]);
}

static int
cert_show(const char *dir)
{
	char fp[PKI_FINGERPRINT_SIZE], cn_text[256], when[64];
	struct certnames cn;
	struct tm tm;
	X509 *x = NULL;
	int rc;

	memset(&cn, 0, sizeof(cn));
	if ((rc = load_server_cert(dir, &x)) != 0)
		return 1;
	(void)certnames_add_cert(&cn, x);
	if (pki_cert_cn(x, cn_text, sizeof(cn_text)) != 0)
		snprintf(cn_text, sizeof(cn_text), "-");
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1 ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	if (pki_cert_fingerprint(x, fp) != 0)
		snprintf(fp, sizeof(fp), "?");
	printf("server certificate %s/%s\n", dir, PKI_SERVER_CERT_FILE);
	printf("subject CN %s, valid until %s\nSHA-256 %s\nnames:\n", cn_text,
	    when, fp);
	print_names(stdout, &cn);
	X509_free(x);
	return 0;
}

static void
cert_usage(FILE *f)
{
	fprintf(f,
	    "usage: portholed cert show --data-dir DIR\n"
	    "       portholed cert reissue --data-dir DIR [--hostname NAME "
	    "...]\n"
	    "           [--aws-endpoint-names [--region R]] [--replace]\n"
	    "reissue: a new server certificate (and key) from the same CA for "
	    "the\ncurrent names plus --hostname (or --san; repeatable or "
	    "comma-separated)\nand, with --aws-endpoint-names, the AWS "
	    "endpoint names of the region\n(config.json's unless --region); "
	    "--replace drops the current names.\nAgents and clients keep "
	    "working: they trust the CA. SIGHUP (or a\nrestart) makes portholed "
	    "serve the new certificate.\n");
}

int
server_cert_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "hostname", required_argument, NULL, 'n' },
		{ "san", required_argument, NULL, 'n' },
		{ "aws-endpoint-names", no_argument, NULL, 'A' },
		{ "region", required_argument, NULL, 'r' },
		{ "replace", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *names[PKI_NAMES_MAX];
	struct cert_reissue_opts o;
	struct certnames cn;
	const char *sub;
	int opt, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		cert_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	sub = argv[1];
	memset(&o, 0, sizeof(o));
	o.hostnames = names;
	optind = 0;
	while ((opt = getopt_long(argc - 1, argv + 1, "d:n:r:h", opts,
	    NULL)) != -1) {
		switch (opt) {
		case 'd': o.data_dir = optarg; break;
		case 'A': o.aws_names = 1; break;
		case 'r': o.region = optarg; break;
		case 'R': o.replace = 1; break;
		case 'h': cert_usage(stdout); return 0;
		case 'n':
			if (certnames_split(optarg, names, &o.nhostnames,
			    PKI_NAMES_MAX) != 0) {
				fprintf(stderr, "portholed cert: at most %d "
				    "names\n", PKI_NAMES_MAX);
				return 2;
			}
			break;
		default: cert_usage(stderr); return 2;
		}
	}
	if (optind < argc - 1) {
		fprintf(stderr, "portholed cert: unexpected argument '%s'\n",
		    argv[1 + optind]);
		return 2;
	}
	if (o.data_dir == NULL) {
		fprintf(stderr, "portholed cert: --data-dir is required\n");
		return 2;
	}
	if (strcmp(sub, "show") == 0) {
		if (o.nhostnames > 0 || o.aws_names || o.replace ||
		    o.region != NULL) {
			fprintf(stderr, "portholed cert show: only --data-dir "
			    "is allowed\n");
			return 2;
		}
		return cert_show(o.data_dir);
	}
	if (strcmp(sub, "reissue") != 0) {
		fprintf(stderr, "portholed cert: unknown command '%s'\n", sub);
		cert_usage(stderr);
		return 2;
	}
	if ((rc = server_cert_reissue(&o, &cn)) != 0)
		return rc == PH_ERR_INVALID ? 2 : 1;
	printf("portholed: new server certificate %s/%s for:\n", o.data_dir,
	    PKI_SERVER_CERT_FILE);
	print_names(stdout, &cn);
	printf("Send portholed SIGHUP (or restart it) to serve it.\nAgents "
	    "and clients need no change: the CA is the same.\n");
	return 0;
}
