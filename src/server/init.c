/* init: `portholed init` creates a data directory. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/err.h"
#include "server/certnames.h"
#include "server/init.h"
#include "server/kms.h"
#include "server/pki.h"
#include "server/server.h"
#include "server/store.h"

/* Longest data directory path: the server keeps it in a 512-byte field and
 * appends file names to it. */
#define INIT_DIR_MAX 400
#define INIT_PATH_MAX 512
#define INIT_REGION_MAX 31   /* struct server's region field */

/* Every file init creates, in creation order; config.json comes last so
 * its presence means the directory is complete. */
static const char *const init_files[] = {
	PKI_CA_KEY_FILE,
	PKI_CA_CERT_FILE,
	PKI_SERVER_KEY_FILE,
	PKI_SERVER_CERT_FILE,
	SERVER_DB_FILE,
	SERVER_DB_FILE "-wal",
	SERVER_DB_FILE "-shm",
	SERVER_DB_FILE "-journal",
	INIT_CREDENTIALS_FILE,
	KMS_ROOT_KEY_FILE,
	INIT_CONFIG_FILE,
};
#define INIT_NFILES (sizeof(init_files) / sizeof(init_files[0]))

static const char *const default_names[] = { "localhost", "127.0.0.1",
    "::1" };

int
server_init_region_valid(const char *s)
{
	size_t len, i, seg = 0, nseg = 1;
	int digits = 0;

	if (s == NULL)
		return 0;
	len = strlen(s);
	if (len < 6 || len > INIT_REGION_MAX)
		return 0;
	/* Lower-case words joined by '-', at least two of them, then a
	 * number of one or two digits: us-east-1, ap-southeast-2,
	 * us-gov-west-1. */
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '-') {
			if (seg == 0 || digits)
				return 0;
			seg = 0;
			nseg++;
		} else if (c >= 'a' && c <= 'z') {
			if (digits)
				return 0;
			seg++;
		} else if (c >= '0' && c <= '9') {
			if (seg != 0 && !digits)
				return 0;   /* digits only as the last part */
			digits = 1;
			seg++;
		} else
			return 0;
	}
	return digits && seg <= 2 && nseg >= 3 && s[2] == '-';
}

int
server_init_account_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return s[12] == '\0';
}

/* 12 random digits, the first non-zero (rejection sampling, no bias). */
static int
random_account(char out[13])
{
	unsigned char b[64];
	size_t i, n = 0;

	while (n < 12) {
		if (RAND_bytes(b, sizeof(b)) != 1)
			return PH_ERR_CRYPTO;
		for (i = 0; i < sizeof(b) && n < 12; i++) {
			if (b[i] >= 250)
				continue;
			if (n == 0 && b[i] % 10 == 0)
				continue;
			out[n++] = (char)('0' + b[i] % 10);
		}
	}
	out[12] = '\0';
	return 0;
}

static int
join(char *out, const char *dir, const char *file)
{
	int n;

	n = snprintf(out, INIT_PATH_MAX, "%s/%s", dir, file);
	return n < 0 || n >= INIT_PATH_MAX ? PH_ERR_TOOBIG : 0;
}

/* What this run created, to take back if a later step fails. */
struct init_undo {
	const char *dir;
	int made_dir;
	int made[INIT_NFILES];
};

static void
undo(const struct init_undo *u)
{
	char path[INIT_PATH_MAX];
	size_t i;

	for (i = INIT_NFILES; i-- > 0;) {
		if (!u->made[i])
			continue;
		if (join(path, u->dir, init_files[i]) == 0)
			unlink(path);
	}
	if (u->made_dir)
		rmdir(u->dir);
}

static int
file_index(const char *name)
{
	size_t i;

	for (i = 0; i < INIT_NFILES; i++)
		if (strcmp(init_files[i], name) == 0)
			return (int)i;
	return -1;
}

static void
mark_made(struct init_undo *u, const char *name)
{
	int i = file_index(name);

	if (i >= 0)
		u->made[i] = 1;
}

static int
write_credentials(const char *path, const char *akid, const char *secret)
{
	struct buf b;
	int rc;

	buf_init(&b, 4096);
	rc = buf_appendf(&b,
	    "# Root administrator of this portholed (IAM user \"%s\").\n"
	    "# Keep this file secret. Use it with\n"
	    "#   AWS_SHARED_CREDENTIALS_FILE=%s AWS_PROFILE=%s\n"
	    "[%s]\n"
	    "aws_access_key_id = %s\n"
	    "aws_secret_access_key = %s\n",
	    INIT_ADMIN_USER, path, INIT_CREDENTIALS_PROFILE,
	    INIT_CREDENTIALS_PROFILE, akid, secret);
	if (rc == 0)
		rc = pki_write_file_excl(path, b.data, b.len, 0600);
	if (b.data != NULL)
		OPENSSL_cleanse(b.data, b.cap);
	buf_free(&b);
	return rc;
}

static int
write_config(const char *path, const char *region, const char *account,
    const char *const *names, size_t nnames, const char *ca_fp)
{
	json_t *o = NULL, *a = NULL;
	char *text = NULL;
	size_t i;
	int rc = PH_ERR_NOMEM;

	if ((a = json_array()) == NULL)
		goto fail;
	for (i = 0; i < nnames; i++)
		if (json_array_append_new(a, json_string(names[i])) != 0)
			goto fail;
	o = json_pack("{s:i, s:s, s:s, s:o, s:s}", "Version", 1,
	    "Region", region, "AccountId", account, "Hostnames", a,
	    "CaFingerprint", ca_fp);
	a = NULL;   /* transferred (json_pack steals "o" even on failure) */
	if (o == NULL)
		goto fail;
	if ((text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL)
		goto fail;
	rc = pki_write_file_excl(path, text, strlen(text), 0600);
fail:
	free(text);
	json_decref(o);
	json_decref(a);
	return rc;
}

/* The directory exists or is created now (0700). Sets *made. */
static int
make_dir(const char *dir, int *made)
{
	struct stat sb;

	*made = 0;
	if (mkdir(dir, 0700) == 0) {
		*made = 1;
		return 0;
	}
	if (errno != EEXIST) {
		fprintf(stderr, "portholed init: cannot create %s: %s\n", dir,
		    strerror(errno));
		return PH_ERR_IO;
	}
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "portholed init: %s exists and is not a "
		    "directory\n", dir);
		return PH_ERR_EXISTS;
	}
	if ((sb.st_mode & 077) != 0)
		fprintf(stderr, "portholed init: warning: %s is accessible by "
		    "other users (mode %03o); the keys inside are not, but "
		    "consider chmod 700\n", dir, (unsigned)(sb.st_mode & 0777));
	return 0;
}

static int
check_opts(const struct init_opts *o, const char *const *names,
    size_t nnames)
{
	size_t i;

	if (o->data_dir == NULL || o->data_dir[0] == '\0') {
		fprintf(stderr, "portholed init: --data-dir is required\n");
		return PH_ERR_INVALID;
	}
	if (strlen(o->data_dir) > INIT_DIR_MAX) {
		fprintf(stderr, "portholed init: --data-dir is longer than %d "
		    "characters\n", INIT_DIR_MAX);
		return PH_ERR_INVALID;
	}
	if (o->region != NULL && !server_init_region_valid(o->region)) {
		fprintf(stderr, "portholed init: invalid --region '%s': want "
		    "an AWS-style region such as us-east-1 (lower-case "
		    "words and a number joined by '-')\n", o->region);
		return PH_ERR_INVALID;
	}
	if (o->account_id != NULL &&
	    !server_init_account_valid(o->account_id)) {
		fprintf(stderr, "portholed init: invalid --account-id '%s': "
		    "want exactly 12 digits\n", o->account_id);
		return PH_ERR_INVALID;
	}
	if (nnames > INIT_HOSTNAMES_MAX) {
		fprintf(stderr, "portholed init: at most %d --hostname "
		    "values\n", INIT_HOSTNAMES_MAX);
		return PH_ERR_INVALID;
	}
	for (i = 0; i < nnames; i++) {
		if (!pki_name_valid(names[i])) {
			fprintf(stderr, "portholed init: invalid --hostname "
			    "'%s': want a DNS name or an IP address\n",
			    names[i] != NULL ? names[i] : "");
			return PH_ERR_INVALID;
		}
	}
	return 0;
}

static int
create_pki(const char *dir, struct init_undo *u, const char *const *names,
    size_t nnames, char ca_fp[PKI_FINGERPRINT_SIZE])
{
	char path[INIT_PATH_MAX];
	EVP_PKEY *ca_key = NULL, *srv_key = NULL;
	X509 *ca = NULL, *srv = NULL;
	int rc;

	if ((rc = pki_ca_create(&ca_key, &ca)) != 0 ||
	    (rc = pki_cert_fingerprint(ca, ca_fp)) != 0)
		goto fail;
	if ((rc = join(path, dir, PKI_CA_KEY_FILE)) != 0 ||
	    (rc = pki_write_key(path, ca_key)) != 0)
		goto fail;
	mark_made(u, PKI_CA_KEY_FILE);
	if ((rc = join(path, dir, PKI_CA_CERT_FILE)) != 0 ||
	    (rc = pki_write_cert(path, ca)) != 0)
		goto fail;
	mark_made(u, PKI_CA_CERT_FILE);
	if ((rc = pki_server_cert_issue(ca_key, ca, names, nnames, &srv_key,
	    &srv)) != 0)
		goto fail;
	if ((rc = join(path, dir, PKI_SERVER_KEY_FILE)) != 0 ||
	    (rc = pki_write_key(path, srv_key)) != 0)
		goto fail;
	mark_made(u, PKI_SERVER_KEY_FILE);
	if ((rc = join(path, dir, PKI_SERVER_CERT_FILE)) != 0 ||
	    (rc = pki_write_cert(path, srv)) != 0)
		goto fail;
	mark_made(u, PKI_SERVER_CERT_FILE);
fail:
	if (rc != 0)
		fprintf(stderr, "portholed init: cannot create the "
		    "certificates in %s: %s\n", dir, ph_strerror(rc));
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	X509_free(ca);
	X509_free(srv);
	return rc;
}

static int
create_admin(const char *dir, struct init_undo *u, const char *account)
{
	char path[INIT_PATH_MAX], arn[128], why[300];
	char akid[STORE_AKID_SIZE], secret[STORE_SECRET_SIZE];
	struct store *st = NULL;
	int rc;

	secret[0] = '\0';
	why[0] = '\0';
	if ((rc = join(path, dir, SERVER_DB_FILE)) != 0)
		goto fail;
	/* Marked before opening: a failed open may still leave the file. */
	mark_made(u, SERVER_DB_FILE);
	mark_made(u, SERVER_DB_FILE "-wal");
	mark_made(u, SERVER_DB_FILE "-shm");
	mark_made(u, SERVER_DB_FILE "-journal");
	if ((rc = store_open_ex(&st, path, STORE_OPEN_CREATE, why,
	    sizeof(why))) != 0)
		goto fail;
	snprintf(arn, sizeof(arn), "arn:aws:iam::%s:user/%s", account,
	    INIT_ADMIN_USER);
	if ((rc = store_iam_create_user(st, INIT_ADMIN_USER, arn, 1)) != 0 ||
	    (rc = store_iam_create_access_key(st, INIT_ADMIN_USER, akid,
	    secret)) != 0)
		goto fail;
	if ((rc = join(path, dir, INIT_CREDENTIALS_FILE)) != 0 ||
	    (rc = write_credentials(path, akid, secret)) != 0)
		goto fail;
	mark_made(u, INIT_CREDENTIALS_FILE);
fail:
	if (rc != 0)
		fprintf(stderr, "portholed init: cannot create the database "
		    "and the admin user in %s: %s\n", dir,
		    why[0] != '\0' ? why : ph_strerror(rc));
	OPENSSL_cleanse(secret, sizeof(secret));
	store_close(st);
	return rc;
}

static void
report(FILE *f, const char *dir, const char *region, const char *account,
    const char *const *names, size_t nnames, const char *ca_fp)
{
	size_t i;

	fprintf(f, "portholed: initialised %s\n", dir);
	fprintf(f, "  database            %s/%s\n", dir, SERVER_DB_FILE);
	fprintf(f, "  CA certificate      %s/%s\n", dir, PKI_CA_CERT_FILE);
	fprintf(f, "  CA key              %s/%s (0600)\n", dir,
	    PKI_CA_KEY_FILE);
	fprintf(f, "  CA SHA-256          %s\n", ca_fp);
	fprintf(f, "  server certificate  %s/%s for", dir,
	    PKI_SERVER_CERT_FILE);
	for (i = 0; i < nnames; i++)
		fprintf(f, "%s%s", i ? ", " : " ", names[i]);
	fprintf(f, "\n");
	fprintf(f, "  server key          %s/%s (0600)\n", dir,
	    PKI_SERVER_KEY_FILE);
	fprintf(f, "  admin credentials   %s/%s (0600, profile [%s], "
	    "IAM user arn:aws:iam::%s:user/%s)\n", dir,
	    INIT_CREDENTIALS_FILE, INIT_CREDENTIALS_PROFILE, account,
	    INIT_ADMIN_USER);
	fprintf(f, "  KMS root key        %s/%s (0600; back it up with "
	    "%s)\n", dir, KMS_ROOT_KEY_FILE, KMS_DB_FILE);
	fprintf(f, "  settings            %s/%s (region %s, account %s)\n",
	    dir, INIT_CONFIG_FILE, region, account);
	fprintf(f, "Next: portholed serve --data-dir %s\n", dir);
}

int
server_init_default_names(struct certnames *cn)
{
	size_t i;
	int rc;

	for (i = 0; i < sizeof(default_names) / sizeof(default_names[0]); i++)
		if ((rc = certnames_add(cn, default_names[i])) != 0)
			return rc;
	return 0;
}

/* The server certificate's names: --hostname's (or the defaults), then
 * the region's AWS endpoint names if asked for. */
static int
init_names(const struct init_opts *o, const char *region,
    struct certnames *cn, const char *names[PKI_NAMES_MAX], size_t *nnames)
{
	size_t i;
	int rc = 0;

	memset(cn, 0, sizeof(*cn));
	if (o->nhostnames == 0)
		rc = server_init_default_names(cn);
	for (i = 0; i < o->nhostnames && rc == 0; i++)
		rc = certnames_add(cn, o->hostnames[i]);
	if (rc == 0 && o->aws_names)
		rc = certnames_add_aws(cn, region);
	if (rc == PH_ERR_TOOBIG)
		fprintf(stderr, "portholed init: more than %d names for the "
		    "server certificate\n", PKI_NAMES_MAX);
	else if (rc != 0)
		fprintf(stderr, "portholed init: invalid name for the server "
		    "certificate\n");
	certnames_ptrs(cn, names);
	*nnames = cn->n;
	return rc != 0 ? PH_ERR_INVALID : 0;
}

int
server_init_datadir(const struct init_opts *o)
{
	char path[INIT_PATH_MAX], account[13], ca_fp[PKI_FINGERPRINT_SIZE];
	const char *names[PKI_NAMES_MAX];
	struct certnames cn;
	const char *region;
	struct init_undo u;
	struct stat sb;
	FILE *out;
	size_t nnames, i;
	mode_t old_mask;
	int rc;

	if ((rc = check_opts(o, o->hostnames, o->nhostnames)) != 0)
		return rc;
	region = o->region != NULL ? o->region : INIT_DEFAULT_REGION;
	if ((rc = init_names(o, region, &cn, names, &nnames)) != 0)
		return rc;
	out = o->out != NULL ? o->out : stdout;
	memset(&u, 0, sizeof(u));
	u.dir = o->data_dir;

	/* Nothing we create is for other users, whatever the caller's
	 * umask; the files carry their modes from the start. */
	old_mask = umask(077);
	if ((rc = make_dir(o->data_dir, &u.made_dir)) != 0)
		goto fail;
	if ((rc = join(path, o->data_dir, INIT_CONFIG_FILE)) != 0)
		goto fail;
	if (lstat(path, &sb) == 0) {
		fprintf(out, "portholed: %s is already initialised (%s "
		    "exists); nothing changed\n", o->data_dir, path);
		rc = 0;
		goto done;
	}
	/* Without config.json, any of our files means an init that did not
	 * finish or someone else's files: touch nothing. */
	for (i = 0; i < INIT_NFILES; i++) {
		if ((rc = join(path, o->data_dir, init_files[i])) != 0)
			goto fail;
		if (lstat(path, &sb) == 0) {
			fprintf(stderr, "portholed init: %s already exists but "
			    "%s/%s does not: the directory is partly "
			    "initialised; move it away or use an empty "
			    "directory\n", path, o->data_dir,
			    INIT_CONFIG_FILE);
			rc = PH_ERR_EXISTS;
			goto fail;
		}
	}
	if (o->account_id != NULL)
		snprintf(account, sizeof(account), "%s", o->account_id);
	else if ((rc = random_account(account)) != 0)
		goto fail;

	if ((rc = create_pki(o->data_dir, &u, names, nnames, ca_fp)) != 0)
		goto fail;
	if ((rc = create_admin(o->data_dir, &u, account)) != 0)
		goto fail;
	/* The root key that wraps KMS key material at rest. */
	if ((rc = kms_root_key_create(o->data_dir)) != 0) {
		fprintf(stderr, "portholed init: cannot create %s/%s: %s\n",
		    o->data_dir, KMS_ROOT_KEY_FILE, ph_strerror(rc));
		goto fail;
	}
	mark_made(&u, KMS_ROOT_KEY_FILE);
	if ((rc = join(path, o->data_dir, INIT_CONFIG_FILE)) != 0 ||
	    (rc = write_config(path, region, account, names, nnames,
	    ca_fp)) != 0) {
		fprintf(stderr, "portholed init: cannot write %s: %s\n", path,
		    ph_strerror(rc));
		goto fail;
	}
	report(out, o->data_dir, region, account, names, nnames, ca_fp);
	rc = 0;
	goto done;
fail:
	undo(&u);
done:
	umask(old_mask);
	fflush(out);
	return rc;
}

static void
init_usage(FILE *f)
{
	fprintf(f, "usage: portholed init --data-dir DIR [--hostname NAME ...] "
	    "[--aws-endpoint-names]\n"
	    "           [--region R] [--account-id 12DIGITS]\n"
	    "  --hostname (or --san) may be repeated or comma-separated; "
	    "default:\n  localhost,127.0.0.1,::1\n"
	    "  --aws-endpoint-names adds the region's AWS endpoint names "
	    "(ssm.R.amazonaws.com,\n  ssmmessages, ec2messages, kms, sts, "
	    "cloudtrail, iam; docs/operator.md)\n"
	    "  --region defaults to %s; --account-id to 12 random digits\n",
	    INIT_DEFAULT_REGION);
}

int
server_init_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "hostname", required_argument, NULL, 'n' },
		{ "san", required_argument, NULL, 'n' },
		{ "aws-endpoint-names", no_argument, NULL, 'A' },
		{ "region", required_argument, NULL, 'r' },
		{ "account-id", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *names[INIT_HOSTNAMES_MAX];
	struct init_opts o;
	int opt, rc;

	memset(&o, 0, sizeof(o));
	o.hostnames = names;
	/* 0, not 1: the GNU getopt resets fully (main may have used it). */
	optind = 0;
	while ((opt = getopt_long(argc, argv, "d:n:r:a:h", opts,
	    NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.data_dir = optarg;
			break;
		case 'n':
			if (certnames_split(optarg, names, &o.nhostnames,
			    INIT_HOSTNAMES_MAX) != 0) {
				fprintf(stderr, "portholed init: at most %d "
				    "host names\n", INIT_HOSTNAMES_MAX);
				return 2;
			}
			break;
		case 'A':
			o.aws_names = 1;
			break;
		case 'r':
			o.region = optarg;
			break;
		case 'a':
			o.account_id = optarg;
			break;
		case 'h':
			init_usage(stdout);
			return 0;
		default:
			init_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "portholed init: unexpected argument '%s'\n",
		    argv[optind]);
		init_usage(stderr);
		return 2;
	}
	if (o.data_dir == NULL) {
		fprintf(stderr, "portholed init: --data-dir is required\n");
		init_usage(stderr);
		return 2;
	}
	rc = server_init_datadir(&o);
	if (rc == PH_ERR_INVALID)
		return 2;
	return rc == 0 ? 0 : 1;
}
