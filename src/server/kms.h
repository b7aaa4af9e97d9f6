/* kms: portholed's KMS key store and its cryptography. Keys, aliases,
 * tags and key policies live in their own SQLite database (DATA_DIR/kms.db,
 * 0600), apart from the main store. Every key's 32 bytes of material are
 * kept wrapped (AES-256-GCM) under a root key that is read at start from
 * DATA_DIR/kms-root.key (0600), from the environment or derived from a
 * passphrase file, and checked against the database before use.
 *
 * Ciphertext blobs (Encrypt, GenerateDataKey) are this module's own
 * versioned format: "PH" 0x01, the key id (16 bytes), a 12-byte IV, the
 * AES-256-GCM ciphertext and its 16-byte tag; the header and the canonical
 * EncryptionContext are the additional authenticated data. */
#ifndef PORTHOLE_KMS_H
#define PORTHOLE_KMS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"

#define KMS_DB_FILE "kms.db"
#define KMS_ROOT_KEY_FILE "kms-root.key"
#define KMS_ROOT_KEY_ENV "PORTHOLED_KMS_ROOT_KEY"
#define KMS_ROOT_KEY_LEN 32
#define KMS_KEY_ID_SIZE 37            /* UUID, NUL */
#define KMS_PLAINTEXT_MAX 4096        /* Encrypt's Plaintext (AWS) */
#define KMS_CIPHERTEXT_MAX 6144       /* Decrypt's CiphertextBlob (AWS) */
#define KMS_BLOB_OVERHEAD (3 + 16 + 12 + 16)
#define KMS_CONTEXT_MAX 8192          /* canonical EncryptionContext bytes */
#define KMS_TAGS_MAX 50
#define KMS_ALIAS_MAX 256

struct kms;

/* Where the root key comes from. KMS_ROOT_KEY_ENV (base64 of 32 bytes)
 * wins over passphrase_file, which wins over DATA_DIR/kms-root.key. */
struct kms_root_opts {
	const char *passphrase_file;  /* NULL: none */
	int create;                   /* create kms-root.key if missing */
};

enum kms_key_state {
	KMS_STATE_ENABLED = 0,
	KMS_STATE_DISABLED = 1,
	KMS_STATE_PENDING_DELETION = 2,
};

/* A key's metadata. description and policy are owned by the record:
 * kms_key_rec_clear frees them. */
struct kms_key_rec {
	char id[KMS_KEY_ID_SIZE];
	char *description;
	char *policy;
	int state;
	int64_t created_ms;
	int64_t deletion_ms;          /* 0 unless pending deletion */
	int pending_days;
};

struct kms_alias_rec {
	char name[KMS_ALIAS_MAX + 1];
	char key_id[KMS_KEY_ID_SIZE];
	int64_t created_ms;
	int64_t updated_ms;
};

struct kms_tag {
	const char *key;
	const char *value;
};

/* Create DATA_DIR/kms-root.key: 32 random bytes in base64, 0600, never
 * overwriting (PH_ERR_EXISTS if it is there). */
int kms_root_key_create(const char *data_dir);

/* Open (creating if needed) DATA_DIR/kms.db and load the root key. A root
 * key that does not match the one the database was made with is
 * PH_ERR_DENIED; errors are explained on stderr. */
int kms_open(struct kms **out, const char *data_dir,
    const struct kms_root_opts *o);
void kms_close(struct kms *k);

/* Re-wrap every key's material under a new random root key in one
 * transaction; the new key replaces DATA_DIR/kms-root.key (written 0600
 * to a temporary file, renamed after the commit; an interrupted rotation
 * is finished by the next kms_open). The current root key is found as
 * kms_open finds it. *nkeys (may be NULL): the keys re-wrapped. */
int kms_rotate_root_key(const char *data_dir, const struct kms_root_opts *o,
    int *nkeys);

/* Delete keys whose deletion date has passed (with their aliases and
 * tags). Returns the count deleted or a negative code. */
int kms_purge(struct kms *k, int64_t now_ms);

/* A new key with fresh material. out may be NULL. */
int kms_key_create(struct kms *k, const char *description,
    const char *policy, const struct kms_tag *tags, size_t ntags,
    int64_t now_ms, struct kms_key_rec *out);
/* By key id (UUID). PH_ERR_NOTFOUND. */
int kms_key_get(struct kms *k, const char *id, struct kms_key_rec *out);
void kms_key_rec_clear(struct kms_key_rec *r);
/* Keys in creation order from offset; fn returns non-zero to stop. */
int kms_key_foreach(struct kms *k, int offset, int limit,
    int (*fn)(void *arg, const char *id), void *arg);
int kms_key_set_state(struct kms *k, const char *id, int state,
    int64_t deletion_ms, int pending_days);
int kms_key_set_policy(struct kms *k, const char *id, const char *policy);

/* Aliases ("alias/name"). create: PH_ERR_EXISTS; update, delete and
 * target: PH_ERR_NOTFOUND. */
int kms_alias_create(struct kms *k, const char *name, const char *key_id,
    int64_t now_ms);
int kms_alias_update(struct kms *k, const char *name, const char *key_id,
    int64_t now_ms);
int kms_alias_delete(struct kms *k, const char *name);
int kms_alias_target(struct kms *k, const char *name,
    char key_id_out[KMS_KEY_ID_SIZE]);
/* In name order; key_id NULL: every alias. */
int kms_alias_foreach(struct kms *k, const char *key_id, int offset,
    int limit, int (*fn)(void *arg, const struct kms_alias_rec *a),
    void *arg);

/* Add or overwrite; PH_ERR_TOOBIG if the key would hold more than
 * KMS_TAGS_MAX (nothing changed then). */
int kms_tags_add(struct kms *k, const char *key_id,
    const struct kms_tag *tags, size_t ntags);
int kms_tags_remove(struct kms *k, const char *key_id,
    const char *const *keys, size_t nkeys);
/* In key order. */
int kms_tags_foreach(struct kms *k, const char *key_id,
    void (*fn)(void *arg, const char *key, const char *value), void *arg);

/* The EncryptionContext (NULL or a JSON object of strings) in canonical
 * form: count, then each (key, value) sorted by key, each length-prefixed.
 * PH_ERR_INVALID for a non-string value, PH_ERR_TOOBIG past
 * KMS_CONTEXT_MAX. */
int kms_context_canonical(json_t *context, struct buf *out);

/* Seal plain (1..KMS_PLAINTEXT_MAX bytes; data keys up to 1024) under a
 * key, appending the blob to out. The key's state is not checked here. */
int kms_encrypt(struct kms *k, const char *key_id, json_t *context,
    const uint8_t *plain, size_t len, struct buf *out);
/* The key id a blob names; PH_ERR_INVALID if it is not one of ours. */
int kms_blob_key_id(const uint8_t *blob, size_t len,
    char key_id_out[KMS_KEY_ID_SIZE]);
/* Open a blob (its key must exist): PH_ERR_INVALID (malformed, unknown
 * version), PH_ERR_NOTFOUND (key gone), PH_ERR_CRYPTO (wrong context or
 * tampered). The plaintext is appended to plain; the caller wipes it. */
int kms_decrypt(struct kms *k, const uint8_t *blob, size_t len,
    json_t *context, char key_id_out[KMS_KEY_ID_SIZE], struct buf *plain);

/* Wipe and free a buffer that held secrets. */
void kms_buf_wipe(struct buf *b);

/* Strict standard base64 (padding required, no whitespace). Appends to
 * out; PH_ERR_INVALID for anything else. */
int kms_b64_decode(const char *s, size_t len, struct buf *out);
/* Base64 of p as a new NUL-terminated string (free it), NULL on failure. */
char *kms_b64_encode(const uint8_t *p, size_t len);

#endif
