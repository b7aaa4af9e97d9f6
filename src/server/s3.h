/* s3: uploads a local file to an S3-compatible object store (AWS S3,
 * MinIO, Ceph, Garage, moto) through its real REST API with libcurl:
 * SigV4-signed PutObject, or a multipart upload (CreateMultipartUpload,
 * UploadPart, CompleteMultipartUpload) for files larger than one part.
 * s3_upload blocks; the sink calls it off the event loop. Nothing here
 * logs: the caller gets an error text that never holds the secret. */
#ifndef PORTHOLE_S3_H
#define PORTHOLE_S3_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define S3_PART_SIZE ((size_t)8 * 1024 * 1024)   /* S3's minimum is 5 MiB */
#define S3_BUCKET_MAX 63
#define S3_KEY_MAX 1024

struct s3_config {
	char endpoint[512];    /* "https://host[:port]"; "": AWS's for region */
	char region[64];
	char access_key[128];
	char secret_key[128];
	char session_token[2048];   /* "" unless temporary credentials */
	char ca_file[512];     /* PEM bundle to trust; "": the system's */
	int path_style;        /* 1: ENDPOINT/BUCKET/KEY, 0: BUCKET.HOST/KEY */
	long timeout_s;        /* a stalled transfer is abandoned after it */
};

enum s3_sse { S3_SSE_NONE = 0, S3_SSE_S3, S3_SSE_KMS };

struct s3_object {
	const char *bucket;
	const char *key;
	enum s3_sse sse;
	const char *kms_key_id;     /* S3_SSE_KMS; NULL/"": the bucket's key */
	const char *content_type;   /* NULL: application/octet-stream */
};

/* Defaults, then the config.json keys S3Endpoint, S3Region,
 * S3AccessKeyId, S3SecretAccessKey, S3SessionToken, S3CAFile,
 * S3PathStyle, S3TimeoutSeconds (o may be NULL). region_dflt is
 * portholed's Region. PH_ERR_INVALID (why says which key) on a bad
 * value. */
int s3_config_load(struct s3_config *c, json_t *o, const char *region_dflt,
    char *why, size_t whysz);
/* Wipes the secrets. */
void s3_config_clear(struct s3_config *c);
/* 1 if the bucket name follows S3's rules (3..63 of a-z 0-9 . -). */
int s3_bucket_valid(const char *bucket);
/* The object's URL (no credentials in it). */
int s3_object_url(const struct s3_config *c, const char *bucket,
    const char *key, char *out, size_t size);
/* Upload the file at path. 0 only once the store answered 200 with an
 * ETag for the whole object. *abort_flag nonzero stops a transfer in
 * progress (PH_ERR_STATE). err gets the failure in words. */
int s3_upload(const struct s3_config *c, const struct s3_object *o,
    const char *path, const atomic_int *abort_flag, char *err,
    size_t errsz);

#endif
