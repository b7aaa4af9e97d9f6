/* init: `portholed init` creates a data directory: the database, the CA,
 * the server's TLS certificate, the root admin's access key and
 * config.json. It never overwrites anything: on a directory that is already
 * initialised it changes nothing. */
#ifndef PORTHOLE_INIT_H
#define PORTHOLE_INIT_H

#include <stddef.h>
#include <stdio.h>

/* Files of a data directory besides the database and the PKI files. */
#define INIT_CONFIG_FILE "config.json"
#define INIT_CREDENTIALS_FILE "admin.credentials"
#define INIT_CREDENTIALS_PROFILE "porthole"
#define INIT_ADMIN_USER "admin"

#define INIT_DEFAULT_REGION "us-east-1"
#define INIT_HOSTNAMES_MAX 32

struct init_opts {
	const char *data_dir;
	/* Names for the server certificate (DNS names or IP literals); none:
	 * localhost, 127.0.0.1 and ::1. */
	const char *const *hostnames;
	size_t nhostnames;
	/* Add the region's AWS endpoint names (certnames_add_aws). */
	int aws_names;
	const char *region;       /* NULL: INIT_DEFAULT_REGION */
	const char *account_id;   /* NULL: 12 random digits, first non-zero */
	FILE *out;                /* the report (no secrets); NULL: stdout */
};

/* 1 if s looks like an AWS region ("us-east-1", "us-gov-west-1"), else 0. */
int server_init_region_valid(const char *s);
/* 1 if s is exactly 12 ASCII digits, else 0. */
int server_init_account_valid(const char *s);

/* Create and fill o->data_dir (mode 0700; its parent must exist). 0 also
 * when it was already initialised (config.json present; nothing changed).
 * PH_ERR_INVALID for bad options, PH_ERR_EXISTS if the directory holds some
 * of our files but no config.json (an earlier init that did not finish);
 * errors are explained on stderr. On failure whatever this call created is
 * removed again. */
int server_init_datadir(const struct init_opts *o);

struct certnames;
/* Add the names init gives the server certificate by default. */
int server_init_default_names(struct certnames *cn);

/* `portholed init` (argv[0] is "init"): parses --data-dir, --hostname
 * (or --san; repeatable, or comma-separated), --aws-endpoint-names,
 * --region, --account-id. Returns the
 * exit status: 0, 1 (failed) or 2 (usage). */
int server_init_main(int argc, char **argv);

#endif
