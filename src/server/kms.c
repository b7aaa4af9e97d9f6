/* kms: the key store (SQLite, DATA_DIR/kms.db) and its AES-256-GCM
 * cryptography, with OpenSSL 3's EVP interface only. Key material is
 * unwrapped under the root key for each operation and wiped right after. */
#include "server/kms.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "common/err.h"
#include "common/log.h"
#include "common/uuid.h"

#define KMS_PATH_MAX 600
#define KMS_IV_LEN 12
#define KMS_TAG_LEN 16
#define KMS_SALT_LEN 16
#define KMS_WRAPPED_LEN (KMS_IV_LEN + KMS_ROOT_KEY_LEN + KMS_TAG_LEN)
#define KMS_BUSY_TIMEOUT_MS 5000
#define KMS_PASSPHRASE_MAX 4096

/* Ciphertext blob header (see kms.h). */
static const uint8_t kms_magic[3] = { 'P', 'H', 0x01 };
#define KMS_HDR_LEN (3 + 16)

/* What the root key seals to prove itself, and the AAD labels that keep
 * a wrapped value from being moved to another role or row. */
static const char kms_check_text[] = "porthole kms root key check v1";
static const char kms_aad_check[] = "porthole-kms-root-check-v1";
static const char kms_aad_material[] = "porthole-kms-material-v1:";

/* scrypt cost for a passphrase-derived root key (N, r, p). */
#define KMS_SCRYPT_N 32768
#define KMS_SCRYPT_R 8
#define KMS_SCRYPT_P 1
#define KMS_SCRYPT_MAXMEM ((uint64_t)128 << 20)

struct kms {
	sqlite3 *db;
	int lock_fd;       /* kms.db, flock'ed: one user of the store */
	uint8_t root[KMS_ROOT_KEY_LEN];
	char data_dir[512];
};

static const char *const kms_schema[] = {
	"CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, "
	    "value BLOB NOT NULL)",
	"CREATE TABLE IF NOT EXISTS keys (seq INTEGER PRIMARY KEY "
	    "AUTOINCREMENT, id TEXT NOT NULL UNIQUE, description TEXT NOT "
	    "NULL, policy TEXT NOT NULL, state INTEGER NOT NULL, created_ms "
	    "INTEGER NOT NULL, deletion_ms INTEGER NOT NULL DEFAULT 0, "
	    "pending_days INTEGER NOT NULL DEFAULT 0, material BLOB NOT NULL)",
	"CREATE TABLE IF NOT EXISTS aliases (name TEXT PRIMARY KEY, key_id "
	    "TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER "
	    "NOT NULL)",
	"CREATE INDEX IF NOT EXISTS aliases_key ON aliases (key_id)",
	"CREATE TABLE IF NOT EXISTS tags (key_id TEXT NOT NULL, tag_key TEXT "
	    "NOT NULL, tag_value TEXT NOT NULL, PRIMARY KEY (key_id, tag_key))",
};

/* ---- small helpers ------------------------------------------------------- */

void
kms_buf_wipe(struct buf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	buf_free(b);
}

static int
kms_join(char *out, size_t size, const char *dir, const char *file)
{
	int n = snprintf(out, size, "%s/%s", dir, file);

	return n < 0 || (size_t)n >= size ? PH_ERR_TOOBIG : 0;
}

static int
kms_b64_char(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
kms_b64_decode(const char *s, size_t len, struct buf *out)
{
	size_t i, pad = 0, n;
	uint8_t *dst;
	int got;

	if (len == 0)
		return 0;
	if (len % 4 != 0)
		return PH_ERR_INVALID;
	if (s[len - 1] == '=')
		pad++;
	if (s[len - 2] == '=')
		pad++;
	/* Only the alphabet, padding only at the end. */
	for (i = 0; i < len - pad; i++)
		if (kms_b64_char((unsigned char)s[i]) < 0)
			return PH_ERR_INVALID;
	n = len / 4 * 3;
	if (buf_reserve(out, n) != 0)
		return PH_ERR_TOOBIG;
	dst = out->data + out->len;
	got = EVP_DecodeBlock(dst, (const unsigned char *)s, (int)len);
	if (got < 0 || (size_t)got != n) {
		OPENSSL_cleanse(dst, n);
		return PH_ERR_INVALID;
	}
	out->len += n - pad;
	return 0;
}

char *
kms_b64_encode(const uint8_t *p, size_t len)
{
	size_t n = (len + 2) / 3 * 4 + 1;
	char *s;

	if (len > (size_t)1 << 28 || (s = malloc(n)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, p, (int)len);
	return s;
}

/* AES-256-GCM seal: out gets iv || ciphertext || tag. */
static int
kms_seal(const uint8_t key[KMS_ROOT_KEY_LEN], const uint8_t *aad1,
    size_t aad1_len, const uint8_t *aad2, size_t aad2_len,
    const uint8_t *plain, size_t len, struct buf *out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t iv[KMS_IV_LEN], *dst;
	int n, fin, rc = PH_ERR_CRYPTO;

	if (len > INT32_MAX || aad1_len > INT32_MAX || aad2_len > INT32_MAX)
		return PH_ERR_TOOBIG;
	if (buf_reserve(out, KMS_IV_LEN + len + KMS_TAG_LEN) != 0)
		return PH_ERR_TOOBIG;
	if (RAND_bytes(iv, sizeof(iv)) != 1)
		return PH_ERR_CRYPTO;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return PH_ERR_NOMEM;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) != 1)
		goto fail;
	if (aad1_len > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad1,
	    (int)aad1_len) != 1)
		goto fail;
	if (aad2_len > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad2,
	    (int)aad2_len) != 1)
		goto fail;
	dst = out->data + out->len;
	memcpy(dst, iv, KMS_IV_LEN);
	n = 0;
	if (len > 0 && EVP_EncryptUpdate(ctx, dst + KMS_IV_LEN, &n, plain,
	    (int)len) != 1)
		goto fail;
	if (EVP_EncryptFinal_ex(ctx, dst + KMS_IV_LEN + n, &fin) != 1)
		goto fail;
	if ((size_t)(n + fin) != len)
		goto fail;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KMS_TAG_LEN,
	    dst + KMS_IV_LEN + len) != 1)
		goto fail;
	out->len += KMS_IV_LEN + len + KMS_TAG_LEN;
	rc = 0;
fail:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* Open iv || ciphertext || tag; the plaintext is appended to out. */
static int
kms_open_sealed(const uint8_t key[KMS_ROOT_KEY_LEN], const uint8_t *aad1,
    size_t aad1_len, const uint8_t *aad2, size_t aad2_len,
    const uint8_t *sealed, size_t len, struct buf *out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t tag[KMS_TAG_LEN], *dst;
	size_t clen;
	int n = 0, fin, rc = PH_ERR_CRYPTO;

	if (len < KMS_IV_LEN + KMS_TAG_LEN)
		return PH_ERR_INVALID;
	clen = len - KMS_IV_LEN - KMS_TAG_LEN;
	if (clen > INT32_MAX || aad1_len > INT32_MAX || aad2_len > INT32_MAX)
		return PH_ERR_TOOBIG;
	if (buf_reserve(out, clen + 1) != 0)
		return PH_ERR_TOOBIG;
	memcpy(tag, sealed + len - KMS_TAG_LEN, KMS_TAG_LEN);
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return PH_ERR_NOMEM;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key,
	    sealed) != 1)
		goto fail;
	if (aad1_len > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad1,
	    (int)aad1_len) != 1)
		goto fail;
	if (aad2_len > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad2,
	    (int)aad2_len) != 1)
		goto fail;
	dst = out->data + out->len;
	n = 0;
	if (clen > 0 && EVP_DecryptUpdate(ctx, dst, &n, sealed + KMS_IV_LEN,
	    (int)clen) != 1)
		goto fail;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KMS_TAG_LEN,
	    tag) != 1)
		goto fail;
	if (EVP_DecryptFinal_ex(ctx, dst + n, &fin) != 1) {
		OPENSSL_cleanse(dst, clen);
		goto fail;
	}
	out->len += clen;
	rc = 0;
fail:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* ---- root key ------------------------------------------------------------ */

static int
kms_write_private(const char *path, const void *p, size_t n, int excl)
{
	const uint8_t *b = p;
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    (excl ? O_EXCL : O_TRUNC), 0600);
	if (fd < 0)
		return errno == EEXIST ? PH_ERR_EXISTS : PH_ERR_IO;
	if (fchmod(fd, 0600) != 0)
		rc = PH_ERR_IO;
	while (rc == 0 && n > 0) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = PH_ERR_IO;
			break;
		}
		b += w;
		n -= (size_t)w;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = PH_ERR_IO;
	if (close(fd) != 0 && rc == 0)
		rc = PH_ERR_IO;
	return rc;
}

static int
kms_root_write(const char *path, const uint8_t key[KMS_ROOT_KEY_LEN],
    int excl)
{
	char text[64];
	int rc, n;

	n = EVP_EncodeBlock((unsigned char *)text, key, KMS_ROOT_KEY_LEN);
	text[n] = '\n';
	text[n + 1] = '\0';
	rc = kms_write_private(path, text, strlen(text), excl);
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

/* base64 text (surrounding whitespace allowed) of exactly 32 bytes. */
static int
kms_root_parse(const char *text, size_t len, uint8_t key[KMS_ROOT_KEY_LEN])
{
	struct buf b;
	int rc;

	while (len > 0 && (text[0] == ' ' || text[0] == '\t' ||
	    text[0] == '\n' || text[0] == '\r')) {
		text++;
		len--;
	}
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' ||
	    text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	buf_init(&b, 64);
	rc = kms_b64_decode(text, len, &b);
	if (rc == 0 && b.len != KMS_ROOT_KEY_LEN)
		rc = PH_ERR_INVALID;
	if (rc == 0)
		memcpy(key, b.data, KMS_ROOT_KEY_LEN);
	kms_buf_wipe(&b);
	return rc;
}

/* A small private file into buf (at most max bytes). */
static int
kms_read_file(const char *path, size_t max, struct buf *out)
{
	uint8_t chunk[512];
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? PH_ERR_NOTFOUND : PH_ERR_IO;
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = PH_ERR_IO;
			break;
		}
		if (r == 0)
			break;
		if (out->len + (size_t)r > max ||
		    buf_append(out, chunk, (size_t)r) != 0) {
			rc = PH_ERR_TOOBIG;
			break;
		}
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	close(fd);
	return rc;
}

static int
kms_root_read(const char *path, uint8_t key[KMS_ROOT_KEY_LEN])
{
	struct buf b;
	int rc;

	buf_init(&b, 1024);
	rc = kms_read_file(path, 1024, &b);
	if (rc == 0)
		rc = kms_root_parse((const char *)b.data, b.len, key);
	kms_buf_wipe(&b);
	return rc;
}

int
kms_root_key_create(const char *data_dir)
{
	uint8_t key[KMS_ROOT_KEY_LEN];
	char path[KMS_PATH_MAX];
	int rc;

	if ((rc = kms_join(path, sizeof(path), data_dir,
	    KMS_ROOT_KEY_FILE)) != 0)
		return rc;
	if (RAND_bytes(key, sizeof(key)) != 1)
		return PH_ERR_CRYPTO;
	rc = kms_root_write(path, key, 1);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* ---- database ------------------------------------------------------------ */

static int
kms_exec(struct kms *k, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(k->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("event=kms_db_error sql=\"%.60s\" err=\"%s\"", sql,
		    msg != NULL ? msg : "?");
		sqlite3_free(msg);
		return PH_ERR_IO;
	}
	return 0;
}

static int
kms_prep(struct kms *k, const char *sql, sqlite3_stmt **s)
{
	if (sqlite3_prepare_v2(k->db, sql, -1, s, NULL) != SQLITE_OK) {
		log_error("event=kms_db_error sql=\"%.60s\" err=\"%s\"", sql,
		    sqlite3_errmsg(k->db));
		return PH_ERR_IO;
	}
	return 0;
}

static int
kms_step_done(struct kms *k, sqlite3_stmt *s)
{
	int r = sqlite3_step(s);

	if (r == SQLITE_DONE || r == SQLITE_ROW)
		return 0;
	if (r == SQLITE_CONSTRAINT)
		return PH_ERR_EXISTS;
	log_error("event=kms_db_error err=\"%s\"", sqlite3_errmsg(k->db));
	return PH_ERR_IO;
}

static int
kms_meta_get(struct kms *k, const char *name, struct buf *out)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((rc = kms_prep(k, "SELECT value FROM meta WHERE name = ?",
	    &s)) != 0)
		return rc;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		rc = buf_append(out, sqlite3_column_blob(s, 0),
		    (size_t)sqlite3_column_bytes(s, 0));
	else
		rc = r == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

static int
kms_meta_put(struct kms *k, const char *name, const void *p, size_t n)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = kms_prep(k, "INSERT OR REPLACE INTO meta (name, value) "
	    "VALUES (?, ?)", &s)) != 0)
		return rc;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, p, (int)n, SQLITE_STATIC);
	rc = kms_step_done(k, s);
	sqlite3_finalize(s);
	return rc;
}

static int
kms_db_open(struct kms *k, const char *path)
{
	size_t i;
	int fd, rc;

	/* Created 0600 before SQLite sees it; its -wal and -shm files take
	 * the database file's mode. The descriptor stays open with an
	 * exclusive flock (independent of SQLite's fcntl locks), so a root
	 * key rotation cannot run under a live portholed. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		fprintf(stderr, "portholed: cannot open %s: %s\n", path,
		    strerror(errno));
		return PH_ERR_IO;
	}
	k->lock_fd = fd;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr, "portholed: %s is in use by another portholed "
		    "process; stop it first\n", path);
		return PH_ERR_AGAIN;
	}
	if (sqlite3_open_v2(path, &k->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		fprintf(stderr, "portholed: cannot open %s: %s\n", path,
		    k->db != NULL ? sqlite3_errmsg(k->db) : "out of memory");
		return PH_ERR_IO;
	}
	sqlite3_busy_timeout(k->db, KMS_BUSY_TIMEOUT_MS);
	if ((rc = kms_exec(k, "PRAGMA journal_mode = WAL")) != 0 ||
	    (rc = kms_exec(k, "PRAGMA synchronous = FULL")) != 0 ||
	    (rc = kms_exec(k, "PRAGMA secure_delete = ON")) != 0)
		return rc;
	for (i = 0; i < sizeof(kms_schema) / sizeof(kms_schema[0]); i++)
		if ((rc = kms_exec(k, kms_schema[i])) != 0)
			return rc;
	return 0;
}

/* Derive the root key from a passphrase file with scrypt and the salt in
 * meta (made now if the database is new). */
static int
kms_root_from_passphrase(struct kms *k, const char *file)
{
	uint8_t salt[KMS_SALT_LEN];
	struct buf pass, sb;
	int rc;

	buf_init(&pass, KMS_PASSPHRASE_MAX);
	buf_init(&sb, 64);
	if ((rc = kms_read_file(file, KMS_PASSPHRASE_MAX, &pass)) != 0) {
		fprintf(stderr, "portholed: cannot read the KMS root "
		    "passphrase file %s (%s)\n", file, ph_strerror(rc));
		goto fail;
	}
	/* One trailing newline is the file's, not the passphrase's. */
	if (pass.len > 0 && pass.data[pass.len - 1] == '\n')
		pass.len--;
	if (pass.len > 0 && pass.data[pass.len - 1] == '\r')
		pass.len--;
	if (pass.len < 8) {
		fprintf(stderr, "portholed: the KMS root passphrase in %s is "
		    "shorter than 8 characters\n", file);
		rc = PH_ERR_INVALID;
		goto fail;
	}
	rc = kms_meta_get(k, "root_salt", &sb);
	if (rc == PH_ERR_NOTFOUND) {
		/* No salt but a root key check: the store was made with a
		 * key file or the environment, not a passphrase. */
		buf_reset(&sb);
		if (kms_meta_get(k, "root_check", &sb) == 0) {
			rc = PH_ERR_DENIED;
			goto fail;
		}
		if (RAND_bytes(salt, sizeof(salt)) != 1) {
			rc = PH_ERR_CRYPTO;
			goto fail;
		}
		if ((rc = kms_meta_put(k, "root_salt", salt,
		    sizeof(salt))) != 0)
			goto fail;
	} else if (rc != 0 || sb.len != KMS_SALT_LEN) {
		rc = rc != 0 ? rc : PH_ERR_INVALID;
		goto fail;
	} else
		memcpy(salt, sb.data, KMS_SALT_LEN);
	if (EVP_PBE_scrypt((const char *)pass.data, pass.len, salt,
	    sizeof(salt), KMS_SCRYPT_N, KMS_SCRYPT_R, KMS_SCRYPT_P,
	    KMS_SCRYPT_MAXMEM, k->root, KMS_ROOT_KEY_LEN) != 1) {
		rc = PH_ERR_CRYPTO;
		goto fail;
	}
	rc = 0;
fail:
	kms_buf_wipe(&pass);
	buf_free(&sb);
	return rc;
}

/* 0 if the database has no check yet or root opens it. */
static int
kms_root_check(struct kms *k, const uint8_t root[KMS_ROOT_KEY_LEN],
    int *fresh)
{
	struct buf chk, plain;
	int rc;

	buf_init(&chk, 256);
	buf_init(&plain, 256);
	*fresh = 0;
	rc = kms_meta_get(k, "root_check", &chk);
	if (rc == PH_ERR_NOTFOUND) {
		*fresh = 1;
		rc = 0;
		goto done;
	}
	if (rc != 0)
		goto done;
	rc = kms_open_sealed(root, (const uint8_t *)kms_aad_check,
	    strlen(kms_aad_check), NULL, 0, chk.data, chk.len, &plain);
	if (rc == 0 && (plain.len != strlen(kms_check_text) ||
	    memcmp(plain.data, kms_check_text, plain.len) != 0))
		rc = PH_ERR_DENIED;
	else if (rc != 0)
		rc = PH_ERR_DENIED;
done:
	buf_free(&chk);
	kms_buf_wipe(&plain);
	return rc;
}

static int
kms_root_check_write(struct kms *k, const uint8_t root[KMS_ROOT_KEY_LEN])
{
	struct buf chk;
	int rc;

	buf_init(&chk, 256);
	rc = kms_seal(root, (const uint8_t *)kms_aad_check,
	    strlen(kms_aad_check), NULL, 0, (const uint8_t *)kms_check_text,
	    strlen(kms_check_text), &chk);
	if (rc == 0)
		rc = kms_meta_put(k, "root_check", chk.data, chk.len);
	buf_free(&chk);
	return rc;
}

/* Load the root key from the file; finish a rotation that stopped between
 * its commit and its rename. */
static int
kms_root_from_file(struct kms *k, const struct kms_root_opts *o)
{
	char path[KMS_PATH_MAX], next[KMS_PATH_MAX];
	uint8_t alt[KMS_ROOT_KEY_LEN];
	int rc, fresh;

	if ((rc = kms_join(path, sizeof(path), k->data_dir,
	    KMS_ROOT_KEY_FILE)) != 0 ||
	    (rc = kms_join(next, sizeof(next), k->data_dir,
	    KMS_ROOT_KEY_FILE ".new")) != 0)
		return rc;
	rc = kms_root_read(path, k->root);
	if (rc == PH_ERR_NOTFOUND && o != NULL && o->create) {
		/* A data directory made before KMS existed. */
		if ((rc = kms_root_key_create(k->data_dir)) != 0)
			return rc;
		log_info("event=kms_root_key_created path=%s", path);
		rc = kms_root_read(path, k->root);
	}
	if (rc != 0) {
		fprintf(stderr, "portholed: cannot read the KMS root key %s "
		    "(%s)\n", path, ph_strerror(rc));
		return rc;
	}
	rc = kms_root_check(k, k->root, &fresh);
	if (rc == PH_ERR_DENIED && kms_root_read(next, alt) == 0 &&
	    kms_root_check(k, alt, &fresh) == 0) {
		if (rename(next, path) != 0) {
			OPENSSL_cleanse(alt, sizeof(alt));
			return PH_ERR_IO;
		}
		memcpy(k->root, alt, sizeof(alt));
		log_info("event=kms_root_rotation_finished path=%s", path);
		rc = 0;
	} else if (rc == 0)
		unlink(next);   /* a rotation that never committed */
	OPENSSL_cleanse(alt, sizeof(alt));
	return rc;
}

static int
kms_load_root(struct kms *k, const struct kms_root_opts *o)
{
	const char *env = getenv(KMS_ROOT_KEY_ENV);
	int rc, fresh;

	if (env != NULL && env[0] != '\0') {
		if (kms_root_parse(env, strlen(env), k->root) != 0) {
			fprintf(stderr, "portholed: %s must be the base64 of "
			    "32 bytes\n", KMS_ROOT_KEY_ENV);
			return PH_ERR_INVALID;
		}
		rc = kms_root_check(k, k->root, &fresh);
	} else if (o != NULL && o->passphrase_file != NULL) {
		if ((rc = kms_root_from_passphrase(k,
		    o->passphrase_file)) != 0)
			goto denied;
		rc = kms_root_check(k, k->root, &fresh);
	} else {
		if ((rc = kms_root_from_file(k, o)) != 0)
			goto denied;
		rc = kms_root_check(k, k->root, &fresh);
	}
denied:
	if (rc == PH_ERR_DENIED) {
		fprintf(stderr, "portholed: the KMS root key does not match "
		    "%s/%s: it was made with another root key (check %s, "
		    "--kms-root-passphrase-file and %s/%s)\n", k->data_dir,
		    KMS_DB_FILE, KMS_ROOT_KEY_ENV, k->data_dir,
		    KMS_ROOT_KEY_FILE);
		return rc;
	}
	if (rc != 0)
		return rc;
	if (fresh)
		return kms_root_check_write(k, k->root);
	return 0;
}

int
kms_open(struct kms **out, const char *data_dir,
    const struct kms_root_opts *o)
{
	char path[KMS_PATH_MAX];
	struct kms *k;
	int rc;

	*out = NULL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return PH_ERR_NOMEM;
	k->lock_fd = -1;
	if (strlen(data_dir) >= sizeof(k->data_dir)) {
		free(k);
		return PH_ERR_TOOBIG;
	}
	snprintf(k->data_dir, sizeof(k->data_dir), "%s", data_dir);
	if ((rc = kms_join(path, sizeof(path), data_dir, KMS_DB_FILE)) != 0)
		goto fail;
	if ((rc = kms_db_open(k, path)) != 0)
		goto fail;
	if ((rc = kms_load_root(k, o)) != 0)
		goto fail;
	*out = k;
	return 0;
fail:
	kms_close(k);
	return rc;
}

void
kms_close(struct kms *k)
{
	if (k == NULL)
		return;
	if (k->db != NULL)
		sqlite3_close(k->db);
	if (k->lock_fd >= 0)
		close(k->lock_fd);   /* releases the flock */
	OPENSSL_cleanse(k->root, sizeof(k->root));
	free(k);
}

/* ---- key material -------------------------------------------------------- */

static int
kms_wrap(const uint8_t root[KMS_ROOT_KEY_LEN], const char *id,
    const uint8_t material[KMS_ROOT_KEY_LEN], struct buf *out)
{
	return kms_seal(root, (const uint8_t *)kms_aad_material,
	    strlen(kms_aad_material), (const uint8_t *)id, strlen(id),
	    material, KMS_ROOT_KEY_LEN, out);
}

static int
kms_unwrap(const uint8_t root[KMS_ROOT_KEY_LEN], const char *id,
    const void *wrapped, size_t len, uint8_t material[KMS_ROOT_KEY_LEN])
{
	struct buf b;
	int rc;

	if (len != KMS_WRAPPED_LEN)
		return PH_ERR_INVALID;
	buf_init(&b, 64);
	rc = kms_open_sealed(root, (const uint8_t *)kms_aad_material,
	    strlen(kms_aad_material), (const uint8_t *)id, strlen(id),
	    wrapped, len, &b);
	if (rc == 0 && b.len == KMS_ROOT_KEY_LEN)
		memcpy(material, b.data, KMS_ROOT_KEY_LEN);
	else if (rc == 0)
		rc = PH_ERR_CRYPTO;
	kms_buf_wipe(&b);
	if (rc != 0)
		log_error("event=kms_unwrap_failed key=%s", id);
	return rc;
}

static int
kms_material(struct kms *k, const char *id,
    uint8_t material[KMS_ROOT_KEY_LEN])
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((rc = kms_prep(k, "SELECT material FROM keys WHERE id = ?",
	    &s)) != 0)
		return rc;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		rc = kms_unwrap(k->root, id, sqlite3_column_blob(s, 0),
		    (size_t)sqlite3_column_bytes(s, 0), material);
	else
		rc = r == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

/* ---- keys ---------------------------------------------------------------- */

static int
kms_tags_put(struct kms *k, const char *key_id, const struct kms_tag *tags,
    size_t ntags)
{
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc;

	if (ntags == 0)
		return 0;
	if ((rc = kms_prep(k, "INSERT OR REPLACE INTO tags (key_id, tag_key, "
	    "tag_value) VALUES (?, ?, ?)", &s)) != 0)
		return rc;
	for (i = 0; i < ntags && rc == 0; i++) {
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, tags[i].key, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, tags[i].value, -1, SQLITE_STATIC);
		rc = kms_step_done(k, s);
	}
	sqlite3_finalize(s);
	return rc;
}

static int
kms_count_tags(struct kms *k, const char *key_id, int *n)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = kms_prep(k, "SELECT count(*) FROM tags WHERE key_id = ?",
	    &s)) != 0)
		return rc;
	sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		*n = sqlite3_column_int(s, 0);
	else
		rc = PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

int
kms_key_create(struct kms *k, const char *description, const char *policy,
    const struct kms_tag *tags, size_t ntags, int64_t now_ms,
    struct kms_key_rec *out)
{
	uint8_t material[KMS_ROOT_KEY_LEN];
	char id[UUID_STR_LEN];
	sqlite3_stmt *s = NULL;
	struct buf wrapped;
	int rc, began = 0;

	if (ntags > KMS_TAGS_MAX)
		return PH_ERR_TOOBIG;
	buf_init(&wrapped, 256);
	uuid_v4_str(id);
	if (RAND_bytes(material, sizeof(material)) != 1) {
		rc = PH_ERR_CRYPTO;
		goto fail;
	}
	if ((rc = kms_wrap(k->root, id, material, &wrapped)) != 0)
		goto fail;
	if ((rc = kms_exec(k, "BEGIN IMMEDIATE")) != 0)
		goto fail;
	began = 1;
	if ((rc = kms_prep(k, "INSERT INTO keys (id, description, policy, "
	    "state, created_ms, material) VALUES (?, ?, ?, 0, ?, ?)",
	    &s)) != 0)
		goto fail;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, description != NULL ? description : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 3, policy, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now_ms);
	sqlite3_bind_blob(s, 5, wrapped.data, (int)wrapped.len,
	    SQLITE_STATIC);
	if ((rc = kms_step_done(k, s)) != 0)
		goto fail;
	if ((rc = kms_tags_put(k, id, tags, ntags)) != 0)
		goto fail;
	if ((rc = kms_exec(k, "COMMIT")) != 0)
		goto fail;
	began = 0;
	if (out != NULL)
		rc = kms_key_get(k, id, out);
fail:
	if (began)
		kms_exec(k, "ROLLBACK");
	sqlite3_finalize(s);
	OPENSSL_cleanse(material, sizeof(material));
	buf_free(&wrapped);
	return rc;
}

static char *
kms_col_dup(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	return strdup(t != NULL ? (const char *)t : "");
}

int
kms_key_get(struct kms *k, const char *id, struct kms_key_rec *out)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	memset(out, 0, sizeof(*out));
	if ((rc = kms_prep(k, "SELECT id, description, policy, state, "
	    "created_ms, deletion_ms, pending_days FROM keys WHERE id = ?",
	    &s)) != 0)
		return rc;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r != SQLITE_ROW) {
		rc = r == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
		goto fail;
	}
	snprintf(out->id, sizeof(out->id), "%s",
	    (const char *)sqlite3_column_text(s, 0));
	out->description = kms_col_dup(s, 1);
	out->policy = kms_col_dup(s, 2);
	out->state = sqlite3_column_int(s, 3);
	out->created_ms = sqlite3_column_int64(s, 4);
	out->deletion_ms = sqlite3_column_int64(s, 5);
	out->pending_days = sqlite3_column_int(s, 6);
	if (out->description == NULL || out->policy == NULL) {
		kms_key_rec_clear(out);
		rc = PH_ERR_NOMEM;
	}
fail:
	sqlite3_finalize(s);
	return rc;
}

void
kms_key_rec_clear(struct kms_key_rec *r)
{
	free(r->description);
	free(r->policy);
	r->description = NULL;
	r->policy = NULL;
}

int
kms_key_foreach(struct kms *k, int offset, int limit,
    int (*fn)(void *arg, const char *id), void *arg)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((rc = kms_prep(k, "SELECT id FROM keys ORDER BY seq LIMIT ? "
	    "OFFSET ?", &s)) != 0)
		return rc;
	sqlite3_bind_int(s, 1, limit);
	sqlite3_bind_int(s, 2, offset);
	while ((r = sqlite3_step(s)) == SQLITE_ROW)
		if (fn(arg, (const char *)sqlite3_column_text(s, 0)) != 0)
			break;
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		rc = PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

/* Run an UPDATE/DELETE bound to text arguments; PH_ERR_NOTFOUND if it
 * changed no row. */
static int
kms_change(struct kms *k, const char *sql, const char *a, const char *b)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = kms_prep(k, sql, &s)) != 0)
		return rc;
	sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
	if (b != NULL)
		sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
	rc = kms_step_done(k, s);
	if (rc == 0 && sqlite3_changes(k->db) == 0)
		rc = PH_ERR_NOTFOUND;
	sqlite3_finalize(s);
	return rc;
}

int
kms_key_set_state(struct kms *k, const char *id, int state,
    int64_t deletion_ms, int pending_days)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = kms_prep(k, "UPDATE keys SET state = ?, deletion_ms = ?, "
	    "pending_days = ? WHERE id = ?", &s)) != 0)
		return rc;
	sqlite3_bind_int(s, 1, state);
	sqlite3_bind_int64(s, 2, deletion_ms);
	sqlite3_bind_int(s, 3, pending_days);
	sqlite3_bind_text(s, 4, id, -1, SQLITE_STATIC);
	rc = kms_step_done(k, s);
	if (rc == 0 && sqlite3_changes(k->db) == 0)
		rc = PH_ERR_NOTFOUND;
	sqlite3_finalize(s);
	return rc;
}

int
kms_key_set_policy(struct kms *k, const char *id, const char *policy)
{
	return kms_change(k, "UPDATE keys SET policy = ?2 WHERE id = ?1", id,
	    policy);
}

int
kms_purge(struct kms *k, int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	char id[KMS_KEY_ID_SIZE];
	int rc, n = 0, r;

	for (;;) {
		if ((rc = kms_prep(k, "SELECT id FROM keys WHERE state = 2 "
		    "AND deletion_ms <= ? LIMIT 1", &s)) != 0)
			return rc;
		sqlite3_bind_int64(s, 1, now_ms);
		r = sqlite3_step(s);
		if (r == SQLITE_ROW)
			snprintf(id, sizeof(id), "%s",
			    (const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
		s = NULL;
		if (r == SQLITE_DONE)
			return n;
		if (r != SQLITE_ROW)
			return PH_ERR_IO;
		if ((rc = kms_exec(k, "BEGIN IMMEDIATE")) != 0)
			return rc;
		rc = kms_change(k, "DELETE FROM aliases WHERE key_id = ?", id,
		    NULL);
		if (rc == 0 || rc == PH_ERR_NOTFOUND)
			rc = kms_change(k, "DELETE FROM tags WHERE key_id = ?",
			    id, NULL);
		if (rc == 0 || rc == PH_ERR_NOTFOUND)
			rc = kms_change(k, "DELETE FROM keys WHERE id = ?", id,
			    NULL);
		if (rc != 0) {
			kms_exec(k, "ROLLBACK");
			return rc;
		}
		if ((rc = kms_exec(k, "COMMIT")) != 0)
			return rc;
		log_info("event=kms_key_deleted key=%s", id);
		if (++n >= 10000)
			return n;
	}
}

/* ---- aliases ------------------------------------------------------------- */

int
kms_alias_create(struct kms *k, const char *name, const char *key_id,
    int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = kms_prep(k, "INSERT INTO aliases (name, key_id, "
	    "created_ms, updated_ms) VALUES (?, ?, ?, ?)", &s)) != 0)
		return rc;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now_ms);
	sqlite3_bind_int64(s, 4, now_ms);
	rc = kms_step_done(k, s);
	sqlite3_finalize(s);
	return rc;
}

int
kms_alias_update(struct kms *k, const char *name, const char *key_id,
    int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = kms_prep(k, "UPDATE aliases SET key_id = ?, updated_ms = ? "
	    "WHERE name = ?", &s)) != 0)
		return rc;
	sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now_ms);
	sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
	rc = kms_step_done(k, s);
	if (rc == 0 && sqlite3_changes(k->db) == 0)
		rc = PH_ERR_NOTFOUND;
	sqlite3_finalize(s);
	return rc;
}

int
kms_alias_delete(struct kms *k, const char *name)
{
	return kms_change(k, "DELETE FROM aliases WHERE name = ?", name,
	    NULL);
}

int
kms_alias_target(struct kms *k, const char *name,
    char key_id_out[KMS_KEY_ID_SIZE])
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((rc = kms_prep(k, "SELECT key_id FROM aliases WHERE name = ?",
	    &s)) != 0)
		return rc;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		snprintf(key_id_out, KMS_KEY_ID_SIZE, "%s",
		    (const char *)sqlite3_column_text(s, 0));
	else
		rc = r == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

int
kms_alias_foreach(struct kms *k, const char *key_id, int offset, int limit,
    int (*fn)(void *arg, const struct kms_alias_rec *a), void *arg)
{
	struct kms_alias_rec a;
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((rc = kms_prep(k, "SELECT name, key_id, created_ms, updated_ms "
	    "FROM aliases WHERE ?1 IS NULL OR key_id = ?1 ORDER BY name "
	    "LIMIT ?2 OFFSET ?3", &s)) != 0)
		return rc;
	if (key_id != NULL)
		sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, limit);
	sqlite3_bind_int(s, 3, offset);
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&a, 0, sizeof(a));
		snprintf(a.name, sizeof(a.name), "%s",
		    (const char *)sqlite3_column_text(s, 0));
		snprintf(a.key_id, sizeof(a.key_id), "%s",
		    (const char *)sqlite3_column_text(s, 1));
		a.created_ms = sqlite3_column_int64(s, 2);
		a.updated_ms = sqlite3_column_int64(s, 3);
		if (fn(arg, &a) != 0)
			break;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		rc = PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

/* ---- tags ---------------------------------------------------------------- */

int
kms_tags_add(struct kms *k, const char *key_id, const struct kms_tag *tags,
    size_t ntags)
{
	int rc, n = 0;

	if ((rc = kms_exec(k, "BEGIN IMMEDIATE")) != 0)
		return rc;
	if ((rc = kms_tags_put(k, key_id, tags, ntags)) == 0 &&
	    (rc = kms_count_tags(k, key_id, &n)) == 0 && n > KMS_TAGS_MAX)
		rc = PH_ERR_TOOBIG;
	if (rc != 0) {
		kms_exec(k, "ROLLBACK");
		return rc;
	}
	return kms_exec(k, "COMMIT");
}

int
kms_tags_remove(struct kms *k, const char *key_id, const char *const *keys,
    size_t nkeys)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < nkeys && (rc == 0 || rc == PH_ERR_NOTFOUND); i++)
		rc = kms_change(k, "DELETE FROM tags WHERE key_id = ?1 AND "
		    "tag_key = ?2", key_id, keys[i]);
	return rc == PH_ERR_NOTFOUND ? 0 : rc;
}

int
kms_tags_foreach(struct kms *k, const char *key_id,
    void (*fn)(void *arg, const char *key, const char *value), void *arg)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((rc = kms_prep(k, "SELECT tag_key, tag_value FROM tags WHERE "
	    "key_id = ? ORDER BY tag_key", &s)) != 0)
		return rc;
	sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(s)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(s, 0),
		    (const char *)sqlite3_column_text(s, 1));
	if (r != SQLITE_DONE)
		rc = PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

/* ---- ciphertexts --------------------------------------------------------- */

static int
kms_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
kms_context_canonical(json_t *context, struct buf *out)
{
	const char **keys = NULL;
	const char *key;
	size_t n, i = 0;
	json_t *val;
	int rc = 0;

	if (context == NULL || json_is_null(context))
		return buf_append_be32(out, 0) == 0 ? 0 : PH_ERR_TOOBIG;
	if (!json_is_object(context))
		return PH_ERR_INVALID;
	n = json_object_size(context);
	if (n > KMS_CONTEXT_MAX / 8)
		return PH_ERR_TOOBIG;
	if (n > 0 && (keys = calloc(n, sizeof(*keys))) == NULL)
		return PH_ERR_NOMEM;
	json_object_foreach(context, key, val) {
		if (!json_is_string(val)) {
			rc = PH_ERR_INVALID;
			goto fail;
		}
		keys[i++] = key;
	}
	if (n > 0)
		qsort(keys, n, sizeof(*keys), kms_cmp_str);
	if (buf_append_be32(out, (uint32_t)n) != 0) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	for (i = 0; i < n; i++) {
		const char *v;
		size_t klen = strlen(keys[i]), vlen;

		val = json_object_get(context, keys[i]);
		v = json_string_value(val);
		vlen = json_string_length(val);
		if (buf_append_be32(out, (uint32_t)klen) != 0 ||
		    buf_append(out, keys[i], klen) != 0 ||
		    buf_append_be32(out, (uint32_t)vlen) != 0 ||
		    buf_append(out, v, vlen) != 0) {
			rc = PH_ERR_TOOBIG;
			goto fail;
		}
		if (out->len > KMS_CONTEXT_MAX + 4) {
			rc = PH_ERR_TOOBIG;
			goto fail;
		}
	}
fail:
	free(keys);
	return rc;
}

int
kms_encrypt(struct kms *k, const char *key_id, json_t *context,
    const uint8_t *plain, size_t len, struct buf *out)
{
	uint8_t material[KMS_ROOT_KEY_LEN], hdr[KMS_HDR_LEN];
	struct buf ctx;
	int rc;

	if (len == 0 || len > KMS_PLAINTEXT_MAX)
		return PH_ERR_INVALID;
	if (uuid_parse(key_id, hdr + 3) != 0)
		return PH_ERR_INVALID;
	memcpy(hdr, kms_magic, sizeof(kms_magic));
	buf_init(&ctx, KMS_CONTEXT_MAX + 64);
	if ((rc = kms_context_canonical(context, &ctx)) != 0)
		goto fail;
	if ((rc = kms_material(k, key_id, material)) != 0)
		goto fail;
	if ((rc = buf_append(out, hdr, sizeof(hdr))) != 0)
		goto fail;
	/* The AAD is the header and then the context. */
	rc = kms_seal(material, hdr, sizeof(hdr), ctx.data, ctx.len, plain,
	    len, out);
fail:
	OPENSSL_cleanse(material, sizeof(material));
	buf_free(&ctx);
	return rc;
}

int
kms_blob_key_id(const uint8_t *blob, size_t len,
    char key_id_out[KMS_KEY_ID_SIZE])
{
	if (blob == NULL || len < KMS_BLOB_OVERHEAD + 1 ||
	    len > KMS_CIPHERTEXT_MAX ||
	    memcmp(blob, kms_magic, sizeof(kms_magic)) != 0)
		return PH_ERR_INVALID;
	uuid_format(blob + 3, key_id_out);
	return 0;
}

int
kms_decrypt(struct kms *k, const uint8_t *blob, size_t len,
    json_t *context, char key_id_out[KMS_KEY_ID_SIZE], struct buf *plain)
{
	uint8_t material[KMS_ROOT_KEY_LEN];
	struct buf ctx;
	int rc;

	if ((rc = kms_blob_key_id(blob, len, key_id_out)) != 0)
		return rc;
	buf_init(&ctx, KMS_CONTEXT_MAX + 64);
	if ((rc = kms_context_canonical(context, &ctx)) != 0) {
		rc = PH_ERR_CRYPTO;
		goto fail;
	}
	if ((rc = kms_material(k, key_id_out, material)) != 0)
		goto fail;
	rc = kms_open_sealed(material, blob, KMS_HDR_LEN, ctx.data, ctx.len,
	    blob + KMS_HDR_LEN, len - KMS_HDR_LEN, plain);
	if (rc == PH_ERR_INVALID)
		rc = PH_ERR_CRYPTO;
fail:
	OPENSSL_cleanse(material, sizeof(material));
	buf_free(&ctx);
	return rc;
}

/* ---- root key rotation --------------------------------------------------- */

int
kms_rotate_root_key(const char *data_dir, const struct kms_root_opts *o,
    int *nkeys)
{
	char path[KMS_PATH_MAX], next[KMS_PATH_MAX];
	uint8_t newroot[KMS_ROOT_KEY_LEN], material[KMS_ROOT_KEY_LEN];
	struct kms_root_opts ro;
	sqlite3_stmt *s = NULL, *u = NULL;
	struct buf w;
	struct kms *k = NULL;
	int rc, began = 0, wrote = 0, r, n = 0;

	buf_init(&w, 256);
	memset(&ro, 0, sizeof(ro));
	if (o != NULL)
		ro = *o;
	ro.create = 0;
	if ((rc = kms_open(&k, data_dir, &ro)) != 0)
		goto fail;
	if ((rc = kms_join(path, sizeof(path), data_dir,
	    KMS_ROOT_KEY_FILE)) != 0 ||
	    (rc = kms_join(next, sizeof(next), data_dir,
	    KMS_ROOT_KEY_FILE ".new")) != 0)
		goto fail;
	if (RAND_bytes(newroot, sizeof(newroot)) != 1) {
		rc = PH_ERR_CRYPTO;
		goto fail;
	}
	unlink(next);
	if ((rc = kms_root_write(next, newroot, 1)) != 0) {
		fprintf(stderr, "portholed: cannot write %s (%s)\n", next,
		    ph_strerror(rc));
		goto fail;
	}
	wrote = 1;
	if ((rc = kms_exec(k, "BEGIN IMMEDIATE")) != 0)
		goto fail;
	began = 1;
	if ((rc = kms_prep(k, "SELECT id, material FROM keys", &s)) != 0 ||
	    (rc = kms_prep(k, "UPDATE keys SET material = ? WHERE id = ?",
	    &u)) != 0)
		goto fail;
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 0);

		if ((rc = kms_unwrap(k->root, id, sqlite3_column_blob(s, 1),
		    (size_t)sqlite3_column_bytes(s, 1), material)) != 0)
			goto fail;
		buf_reset(&w);
		rc = kms_wrap(newroot, id, material, &w);
		OPENSSL_cleanse(material, sizeof(material));
		if (rc != 0)
			goto fail;
		sqlite3_reset(u);
		sqlite3_bind_blob(u, 1, w.data, (int)w.len, SQLITE_STATIC);
		sqlite3_bind_text(u, 2, id, -1, SQLITE_TRANSIENT);
		if ((rc = kms_step_done(k, u)) != 0)
			goto fail;
		n++;
	}
	if (r != SQLITE_DONE) {
		rc = PH_ERR_IO;
		goto fail;
	}
	sqlite3_finalize(s);
	sqlite3_finalize(u);
	s = u = NULL;
	if ((rc = kms_root_check_write(k, newroot)) != 0)
		goto fail;
	/* The new key is a file key now, whatever the old one was. */
	if ((rc = kms_change(k, "DELETE FROM meta WHERE name = ?",
	    "root_salt", NULL)) != 0 && rc != PH_ERR_NOTFOUND)
		goto fail;
	if ((rc = kms_exec(k, "COMMIT")) != 0)
		goto fail;
	began = 0;
	wrote = 0;
	if (rename(next, path) != 0) {
		fprintf(stderr, "portholed: cannot rename %s to %s (%s); the "
		    "next start finishes the rotation\n", next, path,
		    strerror(errno));
		rc = PH_ERR_IO;
		goto fail;
	}
	log_info("event=kms_root_key_rotated keys=%d", n);
	if (nkeys != NULL)
		*nkeys = n;
	rc = 0;
fail:
	sqlite3_finalize(s);
	sqlite3_finalize(u);
	if (began)
		kms_exec(k, "ROLLBACK");
	if (wrote)
		unlink(next);
	OPENSSL_cleanse(newroot, sizeof(newroot));
	OPENSSL_cleanse(material, sizeof(material));
	kms_buf_wipe(&w);
	kms_close(k);
	return rc;
}
