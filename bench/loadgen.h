/* loadgen: shared declarations of porthole-loadgen, the server-scale load
 * generator (bench/loadgen.c has the command line). */
#ifndef PORTHOLE_BENCH_LOADGEN_H
#define PORTHOLE_BENCH_LOADGEN_H

#include <stddef.h>

#include "common/buf.h"

#define LG_ID_MAX 63
/* AWS's and portholed's limit on one activation (CreateActivation). */
#define LG_ACTIVATION_LIMIT_MAX 1000

struct lg_admin {
	char access_key_id[129];
	char secret_access_key[257];
	char region[64];
	char endpoint[1024];
	char ca_file[4096];
};

/* Read DATA_DIR/admin.credentials (profile [porthole]) and
 * DATA_DIR/config.json (Region) into a. err explains a failure. */
int lg_admin_load(struct lg_admin *a, const char *data_dir,
    const char *endpoint, const char *ca_file, char *err, size_t errlen);
void lg_admin_clear(struct lg_admin *a);
/* Sign as the [porthole] access key of the AWS credentials file path
 * instead (another IAM user), keeping endpoint and region. */
int lg_admin_use_credentials(struct lg_admin *a, const char *path,
    char *err, size_t errlen);
/* One signed SSM JSON 1.1 call ("AmazonSSM.<action>"); the body of a 200
 * answer in resp. Blocking (libcurl), for use outside the loop. */
int lg_ssm_call(const struct lg_admin *a, const char *action,
    const char *body, struct buf *resp, char *err, size_t errlen);

/* The identity cache: instance ids and, per id, DIR/<id>.pem holding the
 * certificate and the key. */
struct lg_idents {
	char dir[4096];
	char (*ids)[LG_ID_MAX + 1];
	size_t n;
	size_t cap;
	int temporary;          /* made by us: removed at exit */
};

struct lg_register_opts {
	const char *endpoint;
	const char *ca_file;
	const char *data_dir;       /* admin credentials, if no code */
	const char *activation_id;  /* NULL: create activations */
	const char *activation_code;
	const char *cache_dir;      /* NULL: a temporary directory */
	size_t want;
};

/* Load the cache (dropped if made for another CA) and register instances
 * until want identities exist. *registered counts the new ones. */
int lg_idents_prepare(struct lg_idents *ids, const struct lg_register_opts *o,
    size_t *registered, char *err, size_t errlen);
/* DIR/<id>.pem into out. */
int lg_idents_pem_path(const struct lg_idents *ids, size_t i, char *out,
    size_t outlen);
/* Free memory; remove a temporary directory. */
void lg_idents_free(struct lg_idents *ids);

#endif
