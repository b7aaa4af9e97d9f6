/* store_iam: IAM users, access keys, login profiles, groups, roles,
 * inline and managed policies and attachments in the store's database
 * (schema version 3). Lookups by name are case-insensitive, as IAM's
 * are; rows that point at an entity carry its name as stored. Every write
 * bumps the authorisation generation so decision caches drop what they
 * hold. */
#include "server/store_iam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "common/err.h"
#include "common/log.h"
#include "server/authz.h"
#include "server/iam_managed.h"
#include "server/store_internal.h"

/* scrypt: 2^15 x 8 x 1 uses 32 MiB and about 0.1 s a hash. */
#define IAM_SCRYPT_N 32768
#define IAM_SCRYPT_R 8
#define IAM_SCRYPT_P 1
#define IAM_SCRYPT_MAXMEM (64u * 1024 * 1024)
#define IAM_SALT_LEN 16
#define IAM_HASH_LEN 32
#define IAM_KEY_USED_EVERY_MS 60000

static const char iam_id_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

static void
iam_bump(struct store *st)
{
	st->authz_generation++;
}

int
store_iam_new_id(const char *prefix, char *out)
{
	size_t n = strlen(prefix);

	if (n != 4)
		return PH_ERR_INVALID;
	memcpy(out, prefix, n);
	return st_random_chars(out + n, 17, iam_id_chars);
}

void
iam_role_rec_clear(struct iam_role_rec *r)
{
	if (r == NULL)
		return;
	free(r->trust_policy);
	r->trust_policy = NULL;
}

static char *
iam_col_dup(sqlite3_stmt *s, int i)
{
	const char *v = (const char *)sqlite3_column_text(s, i);

	return strdup(v != NULL ? v : "");
}

/* Step a statement whose rows go to cb; a non-zero cb return stops. */
static int
iam_rows(sqlite3_stmt *s, int (*cb)(sqlite3_stmt *, void *), void *arg)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if ((rc = cb(s, arg)) != 0)
			return rc;
	return rc == SQLITE_DONE ? 0 : PH_ERR_IO;
}

/* One-row query: 0, PH_ERR_NOTFOUND or PH_ERR_IO. */
static int
iam_one(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
}

/* A statement whose single integer answer is returned in *n. */
static int
iam_count(struct store *st, const char *sql, const char *a, const char *b,
    int64_t *n)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*n = 0;
	if ((rc = st_prep(st, sql, &s)) != 0)
		return rc;
	st_text(s, 1, a);
	if (b != NULL)
		st_text(s, 2, b);
	if ((rc = iam_one(s)) == 0)
		*n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc;
}

/* Run one write statement with up to three text parameters; NOTFOUND if
 * it changed no row. */
static int
iam_write(struct store *st, const char *sql, const char *a, const char *b,
    const char *c, const char *op, int need_change)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, sql, &s)) != 0)
		return rc;
	st_text(s, 1, a);
	if (b != NULL)
		st_text(s, 2, b);
	if (c != NULL)
		st_text(s, 3, c);
	rc = st_step_done(st, s, op);
	if (rc == 0 && need_change && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
	sqlite3_finalize(s);
	return rc;
}

/* ---- users -------------------------------------------------------------- */

#define USER_COLUMNS "name, user_id, path, arn, is_root_admin, created_ms, " \
	"password_last_used_ms"

static void
iam_user_row(sqlite3_stmt *s, struct iam_user_rec *u)
{
	memset(u, 0, sizeof(*u));
	st_col(s, 0, u->name, sizeof(u->name));
	st_col(s, 1, u->user_id, sizeof(u->user_id));
	st_col(s, 2, u->path, sizeof(u->path));
	st_col(s, 3, u->arn, sizeof(u->arn));
	u->is_root_admin = sqlite3_column_int(s, 4);
	u->created_ms = sqlite3_column_int64(s, 5);
	u->password_last_used_ms = sqlite3_column_int64(s, 6);
}

int
store_iam_user_get(struct store *st, const char *name,
    struct iam_user_rec *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (name == NULL)
		return PH_ERR_NOTFOUND;
	if ((rc = st_prep(st, "SELECT " USER_COLUMNS " FROM iam_users WHERE "
	    "lower(name) = lower(?1)", &s)) != 0)
		return rc;
	st_text(s, 1, name);
	if ((rc = iam_one(s)) == 0)
		iam_user_row(s, out);
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_create_user(struct store *st, const char *user_name,
    const char *arn, int is_root_admin)
{
	char id[IAM_ID_SIZE];
	sqlite3_stmt *s = NULL;
	int rc;

	if (user_name == NULL || arn == NULL || user_name[0] == '\0')
		return PH_ERR_INVALID;
	if ((rc = store_iam_new_id("AIDA", id)) != 0)
		return rc;
	if ((rc = st_prep(st, "INSERT INTO iam_users (name, arn, "
	    "is_root_admin, created_ms, user_id, path) VALUES (?1, ?2, ?3, ?4, "
	    "?5, '/')", &s)) != 0)
		return rc;
	st_text(s, 1, user_name);
	st_text(s, 2, arn);
	sqlite3_bind_int(s, 3, is_root_admin ? 1 : 0);
	sqlite3_bind_int64(s, 4, st_now_ms());
	st_text(s, 5, id);
	rc = st_step_done(st, s, "iam_create_user");
	sqlite3_finalize(s);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

int
store_iam_user_create(struct store *st, struct iam_user_rec *rec)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (rec->name[0] == '\0' || rec->arn[0] == '\0')
		return PH_ERR_INVALID;
	if (rec->path[0] == '\0')
		snprintf(rec->path, sizeof(rec->path), "/");
	if ((rc = store_iam_new_id("AIDA", rec->user_id)) != 0)
		return rc;
	rec->created_ms = st_now_ms();
	rec->is_root_admin = 0;
	if ((rc = st_prep(st, "INSERT INTO iam_users (name, arn, "
	    "is_root_admin, created_ms, user_id, path) VALUES (?1, ?2, 0, ?3, "
	    "?4, ?5)", &s)) != 0)
		return rc;
	st_text(s, 1, rec->name);
	st_text(s, 2, rec->arn);
	sqlite3_bind_int64(s, 3, rec->created_ms);
	st_text(s, 4, rec->user_id);
	st_text(s, 5, rec->path);
	rc = st_step_done(st, s, "iam_user_create");
	sqlite3_finalize(s);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

struct iam_user_walk {
	store_iam_user_fn fn;
	void *arg;
};

static int
iam_user_cb(sqlite3_stmt *s, void *arg)
{
	struct iam_user_walk *w = arg;
	struct iam_user_rec u;

	iam_user_row(s, &u);
	return w->fn(w->arg, &u);
}

/* Path prefixes compare as text: substr keeps it standard SQL. */
int
store_iam_user_foreach(struct store *st, const char *path_prefix,
    store_iam_user_fn fn, void *arg)
{
	struct iam_user_walk w = { fn, arg };
	sqlite3_stmt *s = NULL;
	int rc;

	if (path_prefix == NULL)
		path_prefix = "/";
	if ((rc = st_prep(st, "SELECT " USER_COLUMNS " FROM iam_users WHERE "
	    "substr(path, 1, length(?1)) = ?1 ORDER BY lower(name)", &s)) != 0)
		return rc;
	st_text(s, 1, path_prefix);
	rc = iam_rows(s, iam_user_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

/* The rows that name a user, renamed with it. */
static const char *const iam_user_refs[] = {
	"UPDATE iam_access_keys SET user_name = ?2 WHERE user_name = ?1",
	"UPDATE iam_login_profiles SET user_name = ?2 WHERE user_name = ?1",
	"UPDATE iam_group_members SET user_name = ?2 WHERE user_name = ?1",
	"UPDATE iam_inline_policies SET entity_name = ?2 WHERE "
	    "entity_type = 'user' AND entity_name = ?1",
	"UPDATE iam_attachments SET entity_name = ?2 WHERE "
	    "entity_type = 'user' AND entity_name = ?1",
	"UPDATE tags SET resource_id = ?2 WHERE resource_type = 'IamUser' AND "
	    "resource_id = ?1",
};

/* Move a user's row to a new name: access keys point at the name without
 * ON UPDATE CASCADE, so a new row, the references moved, the old row
 * gone. The ARN is set by the caller afterwards. */
static int
iam_user_move(struct store *st, const char *from, const char *to)
{
	char arn[IAM_NAME_SIZE + 16];
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc;

	snprintf(arn, sizeof(arn), "pending:%s", to);
	if ((rc = st_prep(st, "INSERT INTO iam_users (name, arn, "
	    "is_root_admin, active, created_ms, user_id, path, "
	    "password_last_used_ms) SELECT ?2, ?3, is_root_admin, active, "
	    "created_ms, user_id, path, password_last_used_ms FROM iam_users "
	    "WHERE name = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, from);
	st_text(s, 2, to);
	st_text(s, 3, arn);
	rc = st_step_done(st, s, "iam_user_rename");
	sqlite3_finalize(s);
	for (i = 0; rc == 0 && i < sizeof(iam_user_refs) /
	    sizeof(iam_user_refs[0]); i++)
		rc = iam_write(st, iam_user_refs[i], from, to, NULL,
		    "iam_user_rename", 0);
	if (rc == 0)
		rc = iam_write(st, "DELETE FROM iam_users WHERE name = ?1",
		    from, NULL, NULL, "iam_user_rename", 0);
	return rc;
}

int
store_iam_user_update(struct store *st, const char *name,
    const char *new_name, const char *new_path, const char *new_arn)
{
	/* Not a valid user name: no user can hold it. */
	static const char tmp[] = "#rename";
	struct iam_user_rec u;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = store_iam_user_get(st, name, &u)) != 0)
		goto fail;
	if (new_name == NULL)
		new_name = u.name;
	if (new_path == NULL)
		new_path = u.path;
	if (new_arn == NULL)
		new_arn = u.arn;
	if (strcmp(new_name, u.name) != 0) {
		/* Only the case changes: the unique index on lower(name)
		 * wants a detour through a name nobody can have. */
		if (strcasecmp(new_name, u.name) == 0) {
			if ((rc = iam_user_move(st, u.name, tmp)) != 0 ||
			    (rc = iam_user_move(st, tmp, new_name)) != 0)
				goto fail;
		} else if ((rc = iam_user_move(st, u.name, new_name)) != 0)
			goto fail;
	}
	if ((rc = iam_write(st, "UPDATE iam_users SET arn = ?2, path = ?3 "
	    "WHERE name = ?1", new_name, new_arn, new_path, "iam_user_update",
	    1)) != 0)
		goto fail;
	if ((rc = st_commit(st)) != 0)
		goto fail;
	iam_bump(st);
	return 0;
fail:
	st_rollback(st);
	return rc;
}

/* What still hangs off an entity, for DeleteConflict messages. */
struct iam_dep {
	const char *sql;
	const char *what;
};

static int
iam_check_deps(struct store *st, const struct iam_dep *deps, size_t n,
    const char *name, char *why, size_t whylen)
{
	int64_t count;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if ((rc = iam_count(st, deps[i].sql, name, NULL, &count)) != 0)
			return rc;
		if (count > 0) {
			snprintf(why, whylen, "%s", deps[i].what);
			return PH_ERR_STATE;
		}
	}
	return 0;
}

int
store_iam_user_delete(struct store *st, const char *name, char *why,
    size_t whylen)
{
	static const struct iam_dep deps[] = {
		{ "SELECT count(*) FROM iam_access_keys WHERE user_name = ?1",
		    "Cannot delete entity, must delete access keys first." },
		{ "SELECT count(*) FROM iam_login_profiles WHERE "
		    "user_name = ?1",
		    "Cannot delete entity, must delete login profile first." },
		{ "SELECT count(*) FROM iam_group_members WHERE "
		    "user_name = ?1",
		    "Cannot delete entity, must remove users from group "
		    "first." },
		{ "SELECT count(*) FROM iam_inline_policies WHERE "
		    "entity_type = 'user' AND entity_name = ?1",
		    "Cannot delete entity, must delete policies first." },
		{ "SELECT count(*) FROM iam_attachments WHERE "
		    "entity_type = 'user' AND entity_name = ?1",
		    "Cannot delete entity, must detach all policies first." },
	};
	struct iam_user_rec u;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = store_iam_user_get(st, name, &u)) != 0)
		goto fail;
	if ((rc = iam_check_deps(st, deps, sizeof(deps) / sizeof(deps[0]),
	    u.name, why, whylen)) != 0)
		goto fail;
	if ((rc = iam_write(st, "DELETE FROM tags WHERE resource_type = "
	    "'IamUser' AND resource_id = ?1", u.name, NULL, NULL,
	    "iam_user_delete", 0)) != 0 ||
	    (rc = iam_write(st, "DELETE FROM iam_users WHERE name = ?1",
	    u.name, NULL, NULL, "iam_user_delete", 1)) != 0)
		goto fail;
	if ((rc = st_commit(st)) != 0)
		goto fail;
	iam_bump(st);
	return 0;
fail:
	st_rollback(st);
	return rc;
}

/* ---- access keys -------------------------------------------------------- */

int
store_iam_create_access_key(struct store *st, const char *user_name,
    char akid_out[STORE_AKID_SIZE], char secret_out[STORE_SECRET_SIZE])
{
	/* AWS key ids: "AKIA" and 16 characters of base32. */
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	sqlite3_stmt *s = NULL;
	int rc, tries;

	akid_out[0] = secret_out[0] = '\0';
	if ((rc = st_prep(st, "INSERT INTO iam_access_keys (akid, user_name, "
	    "secret, created_ms) SELECT ?1, name, ?2, ?3 FROM iam_users "
	    "WHERE lower(name) = lower(?4)", &s)) != 0)
		return rc;
	for (tries = 0; tries < 5; tries++) {
		memcpy(akid_out, "AKIA", 4);
		if ((rc = st_random_chars(akid_out + 4, 16, b32)) != 0 ||
		    (rc = st_random_chars(secret_out, 40, b64)) != 0)
			break;
		sqlite3_reset(s);
		st_text(s, 1, akid_out);
		st_text(s, 2, secret_out);
		sqlite3_bind_int64(s, 3, st_now_ms());
		st_text(s, 4, user_name);
		rc = st_step_done(st, s, "iam_create_access_key");
		if (rc == 0 && sqlite3_changes(st->db) == 0)
			rc = PH_ERR_NOTFOUND;
		if (rc != PH_ERR_EXISTS)
			break;
	}
	sqlite3_finalize(s);
	if (rc != 0) {
		OPENSSL_cleanse(secret_out, STORE_SECRET_SIZE);
		akid_out[0] = secret_out[0] = '\0';
	} else
		iam_bump(st);
	return rc;
}

int
store_iam_lookup_key(struct store *st, const char *akid, char *secret,
    size_t secret_size, struct principal *p_out)
{
	sqlite3_stmt *s = NULL;
	int rc, active;

	if (secret != NULL && secret_size > 0)
		secret[0] = '\0';
	if (akid == NULL || strlen(akid) >= STORE_AKID_SIZE)
		return PH_ERR_NOTFOUND;
	if ((rc = st_prep(st, "SELECT k.secret, k.active AND u.active, u.name, "
	    "u.arn, u.is_root_admin, u.user_id FROM iam_access_keys k JOIN "
	    "iam_users u ON u.name = k.user_name WHERE k.akid = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, akid);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
		goto out;
	}
	active = sqlite3_column_int(s, 1);
	if (secret != NULL && active) {
		const char *v = (const char *)sqlite3_column_text(s, 0);

		if (v == NULL || strlen(v) >= secret_size) {
			rc = PH_ERR_TOOBIG;
			goto out;
		}
		memcpy(secret, v, strlen(v) + 1);
	}
	if (p_out != NULL) {
		memset(p_out, 0, sizeof(*p_out));
		p_out->kind = PRINCIPAL_USER;
		st_col(s, 2, p_out->name, sizeof(p_out->name));
		st_col(s, 3, p_out->arn, sizeof(p_out->arn));
		st_col(s, 5, p_out->user_id, sizeof(p_out->user_id));
		snprintf(p_out->access_key_id, sizeof(p_out->access_key_id),
		    "%s", akid);
		p_out->is_root_admin = sqlite3_column_int(s, 4);
		p_out->active = active;
	}
	rc = active ? 0 : PH_ERR_DENIED;
out:
	sqlite3_finalize(s);
	return rc;
}

#define KEY_COLUMNS "akid, user_name, active, created_ms, last_used_ms, " \
	"last_used_service, last_used_region"

static void
iam_key_row(sqlite3_stmt *s, struct iam_key_rec *k)
{
	memset(k, 0, sizeof(*k));
	st_col(s, 0, k->akid, sizeof(k->akid));
	st_col(s, 1, k->user_name, sizeof(k->user_name));
	k->active = sqlite3_column_int(s, 2);
	k->created_ms = sqlite3_column_int64(s, 3);
	k->last_used_ms = sqlite3_column_int64(s, 4);
	st_col(s, 5, k->last_used_service, sizeof(k->last_used_service));
	st_col(s, 6, k->last_used_region, sizeof(k->last_used_region));
}

int
store_iam_key_get(struct store *st, const char *akid,
    struct iam_key_rec *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (akid == NULL)
		return PH_ERR_NOTFOUND;
	if ((rc = st_prep(st, "SELECT " KEY_COLUMNS " FROM iam_access_keys "
	    "WHERE akid = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, akid);
	if ((rc = iam_one(s)) == 0)
		iam_key_row(s, out);
	sqlite3_finalize(s);
	return rc;
}

struct iam_key_walk {
	store_iam_key_fn fn;
	void *arg;
};

static int
iam_key_cb(sqlite3_stmt *s, void *arg)
{
	struct iam_key_walk *w = arg;
	struct iam_key_rec k;

	iam_key_row(s, &k);
	return w->fn(w->arg, &k);
}

int
store_iam_key_foreach(struct store *st, const char *user_name,
    store_iam_key_fn fn, void *arg)
{
	struct iam_key_walk w = { fn, arg };
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT " KEY_COLUMNS " FROM iam_access_keys "
	    "WHERE user_name = ?1 ORDER BY created_ms, akid", &s)) != 0)
		return rc;
	st_text(s, 1, user_name);
	rc = iam_rows(s, iam_key_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_key_set_active(struct store *st, const char *user_name,
    const char *akid, int active)
{
	int rc;

	rc = iam_write(st, active ? "UPDATE iam_access_keys SET active = 1 "
	    "WHERE akid = ?1 AND user_name = ?2" : "UPDATE iam_access_keys "
	    "SET active = 0 WHERE akid = ?1 AND user_name = ?2", akid,
	    user_name, NULL, "iam_key_set_active", 1);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

int
store_iam_key_delete(struct store *st, const char *user_name,
    const char *akid)
{
	int rc;

	rc = iam_write(st, "DELETE FROM iam_access_keys WHERE akid = ?1 AND "
	    "user_name = ?2", akid, user_name, NULL, "iam_key_delete", 1);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

void
store_iam_key_used(struct store *st, const char *akid, const char *service,
    const char *region, int64_t now_ms)
{
	sqlite3_stmt *s = NULL;

	/* The WHERE clause keeps it to one write a minute: an UPDATE that
	 * matches nothing writes no page. */
	if (st_prep(st, "UPDATE iam_access_keys SET last_used_ms = ?2, "
	    "last_used_service = ?3, last_used_region = ?4 WHERE akid = ?1 "
	    "AND last_used_ms < ?5", &s) != 0)
		return;
	st_text(s, 1, akid);
	sqlite3_bind_int64(s, 2, now_ms);
	st_text_bounded(s, 3, service != NULL ? service : "", 63);
	st_text_bounded(s, 4, region != NULL ? region : "", 63);
	sqlite3_bind_int64(s, 5, now_ms - IAM_KEY_USED_EVERY_MS);
	(void)sqlite3_step(s);
	sqlite3_finalize(s);
}

/* ---- login profiles ----------------------------------------------------- */

static int
iam_scrypt(const char *password, const unsigned char *salt, size_t saltlen,
    uint64_t n, uint64_t r, uint64_t p, unsigned char *out, size_t outlen)
{
	if (EVP_PBE_scrypt(password, strlen(password), salt, saltlen, n, r, p,
	    IAM_SCRYPT_MAXMEM, out, outlen) != 1)
		return PH_ERR_CRYPTO;
	return 0;
}

static int
iam_login_write(struct store *st, const char *sql, const char *user_name,
    const char *password, int reset_required, const char *op)
{
	unsigned char salt[IAM_SALT_LEN], hash[IAM_HASH_LEN];
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_random(salt, sizeof(salt))) != 0 ||
	    (rc = iam_scrypt(password, salt, sizeof(salt), IAM_SCRYPT_N,
	    IAM_SCRYPT_R, IAM_SCRYPT_P, hash, sizeof(hash))) != 0)
		goto out;
	if ((rc = st_prep(st, sql, &s)) != 0)
		goto out;
	st_text(s, 1, user_name);
	sqlite3_bind_blob(s, 2, salt, sizeof(salt), SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 3, hash, sizeof(hash), SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 4, IAM_SCRYPT_N);
	sqlite3_bind_int(s, 5, IAM_SCRYPT_R);
	sqlite3_bind_int(s, 6, IAM_SCRYPT_P);
	sqlite3_bind_int(s, 7, reset_required > 0 ? 1 : 0);
	sqlite3_bind_int64(s, 8, st_now_ms());
	rc = st_step_done(st, s, op);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
out:
	sqlite3_finalize(s);
	OPENSSL_cleanse(hash, sizeof(hash));
	return rc;
}

int
store_iam_login_create(struct store *st, const char *user_name,
    const char *password, int reset_required)
{
	int rc;

	if (password == NULL)
		return PH_ERR_INVALID;
	rc = iam_login_write(st, "INSERT INTO iam_login_profiles (user_name, "
	    "salt, hash, scrypt_n, scrypt_r, scrypt_p, "
	    "password_reset_required, created_ms) SELECT name, ?2, ?3, ?4, "
	    "?5, ?6, ?7, ?8 FROM iam_users WHERE lower(name) = lower(?1)",
	    user_name, password, reset_required, "iam_login_create");
	if (rc == 0)
		iam_bump(st);
	return rc;
}

int
store_iam_login_get(struct store *st, const char *user_name,
    int64_t *created_ms, int *reset_required)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT created_ms, password_reset_required "
	    "FROM iam_login_profiles WHERE user_name = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, user_name);
	if ((rc = iam_one(s)) == 0) {
		if (created_ms != NULL)
			*created_ms = sqlite3_column_int64(s, 0);
		if (reset_required != NULL)
			*reset_required = sqlite3_column_int(s, 1);
	}
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_login_update(struct store *st, const char *user_name,
    const char *password, int reset_required)
{
	sqlite3_stmt *s = NULL;
	int rc, cur;

	if ((rc = store_iam_login_get(st, user_name, NULL, &cur)) != 0)
		return rc;
	if (reset_required < 0)
		reset_required = cur;
	if (password != NULL)
		rc = iam_login_write(st, "UPDATE iam_login_profiles SET "
		    "salt = ?2, hash = ?3, scrypt_n = ?4, scrypt_r = ?5, "
		    "scrypt_p = ?6, password_reset_required = ?7 WHERE "
		    "user_name = ?1 AND ?8 IS NOT NULL", user_name, password,
		    reset_required, "iam_login_update");
	else {
		if ((rc = st_prep(st, "UPDATE iam_login_profiles SET "
		    "password_reset_required = ?2 WHERE user_name = ?1",
		    &s)) != 0)
			return rc;
		st_text(s, 1, user_name);
		sqlite3_bind_int(s, 2, reset_required > 0 ? 1 : 0);
		rc = st_step_done(st, s, "iam_login_update");
		sqlite3_finalize(s);
	}
	if (rc == 0)
		iam_bump(st);
	return rc;
}

int
store_iam_login_delete(struct store *st, const char *user_name)
{
	int rc;

	rc = iam_write(st, "DELETE FROM iam_login_profiles WHERE "
	    "user_name = ?1", user_name, NULL, NULL, "iam_login_delete", 1);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

int
store_iam_login_hash(struct store *st, const char *user_name,
    struct iam_login_hash *out)
{
	sqlite3_stmt *s = NULL;
	size_t saltlen;
	int64_t n, r, p;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = st_prep(st, "SELECT salt, hash, scrypt_n, scrypt_r, "
	    "scrypt_p FROM iam_login_profiles WHERE user_name = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, user_name);
	if ((rc = iam_one(s)) != 0)
		goto out;
	saltlen = (size_t)sqlite3_column_bytes(s, 0);
	n = sqlite3_column_int64(s, 2);
	r = sqlite3_column_int64(s, 3);
	p = sqlite3_column_int64(s, 4);
	/* Parameters beyond what was ever written are refused: the work
	 * of a check stays bounded. */
	rc = PH_ERR_INVALID;
	if (saltlen == 0 || saltlen > sizeof(out->salt) ||
	    sqlite3_column_bytes(s, 1) != IAM_HASH_LEN || n < 2 ||
	    n > ((int64_t)1 << 20) || r < 1 || r > 32 || p < 1 || p > 16)
		goto out;
	memcpy(out->salt, sqlite3_column_blob(s, 0), saltlen);
	memcpy(out->hash, sqlite3_column_blob(s, 1), IAM_HASH_LEN);
	out->salt_len = saltlen;
	out->n = (uint64_t)n;
	out->r = (uint64_t)r;
	out->p = (uint64_t)p;
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

void
store_iam_login_dummy(struct iam_login_hash *out)
{
	memset(out, 0, sizeof(*out));
	/* No password hashes to all zeroes under a random salt. */
	(void)st_random(out->salt, IAM_SALT_LEN);
	out->salt_len = IAM_SALT_LEN;
	out->n = IAM_SCRYPT_N;
	out->r = IAM_SCRYPT_R;
	out->p = IAM_SCRYPT_P;
	out->dummy = 1;
}

int
store_iam_login_check(const struct iam_login_hash *h, const char *password)
{
	unsigned char got[IAM_HASH_LEN];
	int rc;

	if (password == NULL || h->salt_len == 0)
		return PH_ERR_DENIED;
	if (iam_scrypt(password, h->salt, h->salt_len, h->n, h->r, h->p, got,
	    sizeof(got)) != 0)
		rc = PH_ERR_DENIED;
	else
		rc = CRYPTO_memcmp(got, h->hash, IAM_HASH_LEN) == 0 &&
		    !h->dummy ? 0 : PH_ERR_DENIED;
	OPENSSL_cleanse(got, sizeof(got));
	return rc;
}

int
store_iam_login_verify(struct store *st, const char *user_name,
    const char *password)
{
	struct iam_login_hash h;
	int rc;

	if (password == NULL)
		return PH_ERR_DENIED;
	rc = store_iam_login_hash(st, user_name, &h);
	if (rc == PH_ERR_NOTFOUND || rc == PH_ERR_INVALID)
		return PH_ERR_DENIED;
	if (rc != 0)
		return rc;
	rc = store_iam_login_check(&h, password);
	OPENSSL_cleanse(&h, sizeof(h));
	return rc;
}

int
store_iam_password_used(struct store *st, const char *user_name,
    int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE iam_users SET password_last_used_ms = "
	    "?2 WHERE name = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, user_name);
	sqlite3_bind_int64(s, 2, now_ms);
	rc = st_step_done(st, s, "password_used");
	sqlite3_finalize(s);
	return rc;
}

/* ---- groups ------------------------------------------------------------- */

#define GROUP_COLUMNS "name, group_id, path, arn, created_ms"

static void
iam_group_row(sqlite3_stmt *s, int off, struct iam_group_rec *g)
{
	memset(g, 0, sizeof(*g));
	st_col(s, off, g->name, sizeof(g->name));
	st_col(s, off + 1, g->group_id, sizeof(g->group_id));
	st_col(s, off + 2, g->path, sizeof(g->path));
	st_col(s, off + 3, g->arn, sizeof(g->arn));
	g->created_ms = sqlite3_column_int64(s, off + 4);
}

int
store_iam_group_create(struct store *st, struct iam_group_rec *rec)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (rec->name[0] == '\0' || rec->arn[0] == '\0')
		return PH_ERR_INVALID;
	if (rec->path[0] == '\0')
		snprintf(rec->path, sizeof(rec->path), "/");
	if ((rc = store_iam_new_id("AGPA", rec->group_id)) != 0)
		return rc;
	rec->created_ms = st_now_ms();
	if ((rc = st_prep(st, "INSERT INTO iam_groups (" GROUP_COLUMNS ") "
	    "VALUES (?1, ?2, ?3, ?4, ?5)", &s)) != 0)
		return rc;
	st_text(s, 1, rec->name);
	st_text(s, 2, rec->group_id);
	st_text(s, 3, rec->path);
	st_text(s, 4, rec->arn);
	sqlite3_bind_int64(s, 5, rec->created_ms);
	rc = st_step_done(st, s, "iam_group_create");
	sqlite3_finalize(s);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

int
store_iam_group_get(struct store *st, const char *name,
    struct iam_group_rec *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (name == NULL)
		return PH_ERR_NOTFOUND;
	if ((rc = st_prep(st, "SELECT " GROUP_COLUMNS " FROM iam_groups WHERE "
	    "lower(name) = lower(?1)", &s)) != 0)
		return rc;
	st_text(s, 1, name);
	if ((rc = iam_one(s)) == 0)
		iam_group_row(s, 0, out);
	sqlite3_finalize(s);
	return rc;
}

struct iam_group_walk {
	store_iam_group_fn fn;
	void *arg;
};

static int
iam_group_cb(sqlite3_stmt *s, void *arg)
{
	struct iam_group_walk *w = arg;
	struct iam_group_rec g;

	iam_group_row(s, 0, &g);
	return w->fn(w->arg, &g);
}

int
store_iam_group_foreach(struct store *st, const char *path_prefix,
    store_iam_group_fn fn, void *arg)
{
	struct iam_group_walk w = { fn, arg };
	sqlite3_stmt *s = NULL;
	int rc;

	if (path_prefix == NULL)
		path_prefix = "/";
	if ((rc = st_prep(st, "SELECT " GROUP_COLUMNS " FROM iam_groups WHERE "
	    "substr(path, 1, length(?1)) = ?1 ORDER BY lower(name)", &s)) != 0)
		return rc;
	st_text(s, 1, path_prefix);
	rc = iam_rows(s, iam_group_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_group_delete(struct store *st, const char *name, char *why,
    size_t whylen)
{
	static const struct iam_dep deps[] = {
		{ "SELECT count(*) FROM iam_group_members WHERE "
		    "group_name = ?1",
		    "Cannot delete entity, must remove users from group "
		    "first." },
		{ "SELECT count(*) FROM iam_inline_policies WHERE "
		    "entity_type = 'group' AND entity_name = ?1",
		    "Cannot delete entity, must delete policies first." },
		{ "SELECT count(*) FROM iam_attachments WHERE "
		    "entity_type = 'group' AND entity_name = ?1",
		    "Cannot delete entity, must detach all policies first." },
	};
	struct iam_group_rec g;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = store_iam_group_get(st, name, &g)) != 0 ||
	    (rc = iam_check_deps(st, deps, sizeof(deps) / sizeof(deps[0]),
	    g.name, why, whylen)) != 0 ||
	    (rc = iam_write(st, "DELETE FROM iam_groups WHERE name = ?1",
	    g.name, NULL, NULL, "iam_group_delete", 1)) != 0 ||
	    (rc = st_commit(st)) != 0)
		goto fail;
	iam_bump(st);
	return 0;
fail:
	st_rollback(st);
	return rc;
}

int
store_iam_group_add_user(struct store *st, const char *group,
    const char *user)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "INSERT INTO iam_group_members (group_name, "
	    "user_name, added_ms) VALUES (?1, ?2, ?3) ON CONFLICT "
	    "(group_name, user_name) DO NOTHING", &s)) != 0)
		return rc;
	st_text(s, 1, group);
	st_text(s, 2, user);
	sqlite3_bind_int64(s, 3, st_now_ms());
	rc = st_step_done(st, s, "iam_group_add_user");
	sqlite3_finalize(s);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

int
store_iam_group_remove_user(struct store *st, const char *group,
    const char *user)
{
	int rc;

	rc = iam_write(st, "DELETE FROM iam_group_members WHERE "
	    "group_name = ?1 AND user_name = ?2", group, user, NULL,
	    "iam_group_remove_user", 1);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

int
store_iam_group_members(struct store *st, const char *group,
    store_iam_user_fn fn, void *arg)
{
	struct iam_user_walk w = { fn, arg };
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT u.name, u.user_id, u.path, u.arn, "
	    "u.is_root_admin, u.created_ms, u.password_last_used_ms FROM "
	    "iam_group_members m JOIN iam_users u ON u.name = m.user_name "
	    "WHERE m.group_name = ?1 ORDER BY lower(u.name)", &s)) != 0)
		return rc;
	st_text(s, 1, group);
	rc = iam_rows(s, iam_user_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_user_groups(struct store *st, const char *user,
    store_iam_group_fn fn, void *arg)
{
	struct iam_group_walk w = { fn, arg };
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT g.name, g.group_id, g.path, g.arn, "
	    "g.created_ms FROM iam_group_members m JOIN iam_groups g ON "
	    "g.name = m.group_name WHERE m.user_name = ?1 ORDER BY "
	    "lower(g.name)", &s)) != 0)
		return rc;
	st_text(s, 1, user);
	rc = iam_rows(s, iam_group_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

/* ---- roles -------------------------------------------------------------- */

#define ROLE_COLUMNS "name, role_id, path, arn, description, " \
	"max_session_duration, created_ms, trust_policy"

static int
iam_role_row(sqlite3_stmt *s, struct iam_role_rec *r)
{
	memset(r, 0, sizeof(*r));
	st_col(s, 0, r->name, sizeof(r->name));
	st_col(s, 1, r->role_id, sizeof(r->role_id));
	st_col(s, 2, r->path, sizeof(r->path));
	st_col(s, 3, r->arn, sizeof(r->arn));
	st_col(s, 4, r->description, sizeof(r->description));
	r->max_session_duration = sqlite3_column_int(s, 5);
	r->created_ms = sqlite3_column_int64(s, 6);
	if ((r->trust_policy = iam_col_dup(s, 7)) == NULL)
		return PH_ERR_NOMEM;
	return 0;
}

int
store_iam_role_get(struct store *st, const char *name,
    struct iam_role_rec *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (name == NULL)
		return PH_ERR_NOTFOUND;
	if ((rc = st_prep(st, "SELECT " ROLE_COLUMNS " FROM iam_roles WHERE "
	    "lower(name) = lower(?1)", &s)) != 0)
		return rc;
	st_text(s, 1, name);
	if ((rc = iam_one(s)) == 0)
		rc = iam_role_row(s, out);
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_role_create(struct store *st, struct iam_role_rec *rec)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (rec->name[0] == '\0' || rec->arn[0] == '\0' ||
	    rec->trust_policy == NULL)
		return PH_ERR_INVALID;
	if (rec->path[0] == '\0')
		snprintf(rec->path, sizeof(rec->path), "/");
	if (rec->max_session_duration == 0)
		rec->max_session_duration = 3600;
	if ((rc = store_iam_new_id("AROA", rec->role_id)) != 0)
		return rc;
	rec->created_ms = st_now_ms();
	if ((rc = st_prep(st, "INSERT INTO iam_roles (" ROLE_COLUMNS ") "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &s)) != 0)
		return rc;
	st_text(s, 1, rec->name);
	st_text(s, 2, rec->role_id);
	st_text(s, 3, rec->path);
	st_text(s, 4, rec->arn);
	st_text(s, 5, rec->description);
	sqlite3_bind_int(s, 6, rec->max_session_duration);
	sqlite3_bind_int64(s, 7, rec->created_ms);
	st_text(s, 8, rec->trust_policy);
	rc = st_step_done(st, s, "iam_role_create");
	sqlite3_finalize(s);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

struct iam_role_walk {
	store_iam_role_fn fn;
	void *arg;
};

static int
iam_role_cb(sqlite3_stmt *s, void *arg)
{
	struct iam_role_walk *w = arg;
	struct iam_role_rec r;
	int rc;

	if ((rc = iam_role_row(s, &r)) == 0)
		rc = w->fn(w->arg, &r);
	iam_role_rec_clear(&r);
	return rc;
}

int
store_iam_role_foreach(struct store *st, const char *path_prefix,
    store_iam_role_fn fn, void *arg)
{
	struct iam_role_walk w = { fn, arg };
	sqlite3_stmt *s = NULL;
	int rc;

	if (path_prefix == NULL)
		path_prefix = "/";
	if ((rc = st_prep(st, "SELECT " ROLE_COLUMNS " FROM iam_roles WHERE "
	    "substr(path, 1, length(?1)) = ?1 ORDER BY lower(name)", &s)) != 0)
		return rc;
	st_text(s, 1, path_prefix);
	rc = iam_rows(s, iam_role_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_role_set_trust(struct store *st, const char *name,
    const char *trust_policy)
{
	int rc;

	rc = iam_write(st, "UPDATE iam_roles SET trust_policy = ?2 WHERE "
	    "lower(name) = lower(?1)", name, trust_policy, NULL,
	    "iam_role_set_trust", 1);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

int
store_iam_role_update(struct store *st, const char *name,
    const char *description, int max_session_duration)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE iam_roles SET description = "
	    "coalesce(?2, description), max_session_duration = CASE WHEN "
	    "?3 > 0 THEN ?3 ELSE max_session_duration END WHERE "
	    "lower(name) = lower(?1)", &s)) != 0)
		return rc;
	st_text(s, 1, name);
	st_text(s, 2, description);
	sqlite3_bind_int(s, 3, max_session_duration);
	rc = st_step_done(st, s, "iam_role_update");
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
	sqlite3_finalize(s);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

int
store_iam_role_delete(struct store *st, const char *name, char *why,
    size_t whylen)
{
	static const struct iam_dep deps[] = {
		{ "SELECT count(*) FROM iam_inline_policies WHERE "
		    "entity_type = 'role' AND entity_name = ?1",
		    "Cannot delete entity, must delete policies first." },
		{ "SELECT count(*) FROM iam_attachments WHERE "
		    "entity_type = 'role' AND entity_name = ?1",
		    "Cannot delete entity, must detach all policies first." },
	};
	struct iam_role_rec r;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = store_iam_role_get(st, name, &r)) != 0 ||
	    (rc = iam_check_deps(st, deps, sizeof(deps) / sizeof(deps[0]),
	    r.name, why, whylen)) != 0 ||
	    (rc = iam_write(st, "DELETE FROM tags WHERE resource_type = "
	    "'IamRole' AND resource_id = ?1", r.name, NULL, NULL,
	    "iam_role_delete", 0)) != 0 ||
	    (rc = iam_write(st, "DELETE FROM iam_roles WHERE name = ?1",
	    r.name, NULL, NULL, "iam_role_delete", 1)) != 0 ||
	    (rc = st_commit(st)) != 0)
		goto fail;
	iam_role_rec_clear(&r);
	iam_bump(st);
	return 0;
fail:
	iam_role_rec_clear(&r);
	st_rollback(st);
	return rc;
}

/* ---- inline policies ---------------------------------------------------- */

/* Policy names are unique case-insensitively per entity: a Put with a
 * differently cased name replaces the policy (keeping the stored name). */
int
store_iam_inline_put(struct store *st, const char *entity_type,
    const char *entity_name, const char *policy_name, const char *document)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "UPDATE iam_inline_policies SET document = ?4 "
	    "WHERE entity_type = ?1 AND entity_name = ?2 AND "
	    "lower(policy_name) = lower(?3)", &s)) != 0)
		goto fail;
	st_text(s, 1, entity_type);
	st_text(s, 2, entity_name);
	st_text(s, 3, policy_name);
	st_text(s, 4, document);
	if ((rc = st_step_done(st, s, "iam_inline_put")) != 0)
		goto fail;
	if (sqlite3_changes(st->db) == 0) {
		sqlite3_finalize(s);
		s = NULL;
		if ((rc = st_prep(st, "INSERT INTO iam_inline_policies "
		    "(entity_type, entity_name, policy_name, document) VALUES "
		    "(?1, ?2, ?3, ?4)", &s)) != 0)
			goto fail;
		st_text(s, 1, entity_type);
		st_text(s, 2, entity_name);
		st_text(s, 3, policy_name);
		st_text(s, 4, document);
		if ((rc = st_step_done(st, s, "iam_inline_put")) != 0)
			goto fail;
	}
	sqlite3_finalize(s);
	s = NULL;
	if ((rc = st_commit(st)) != 0)
		goto fail;
	iam_bump(st);
	return 0;
fail:
	sqlite3_finalize(s);
	st_rollback(st);
	return rc;
}

int
store_iam_inline_get(struct store *st, const char *entity_type,
    const char *entity_name, const char *policy_name,
    char name_out[IAM_NAME_SIZE], char **document_out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*document_out = NULL;
	if ((rc = st_prep(st, "SELECT policy_name, document FROM "
	    "iam_inline_policies WHERE entity_type = ?1 AND entity_name = ?2 "
	    "AND lower(policy_name) = lower(?3)", &s)) != 0)
		return rc;
	st_text(s, 1, entity_type);
	st_text(s, 2, entity_name);
	st_text(s, 3, policy_name);
	if ((rc = iam_one(s)) == 0) {
		st_col(s, 0, name_out, IAM_NAME_SIZE);
		if ((*document_out = iam_col_dup(s, 1)) == NULL)
			rc = PH_ERR_NOMEM;
	}
	sqlite3_finalize(s);
	return rc;
}

struct iam_name_walk {
	store_iam_name_fn fn;
	void *arg;
};

static int
iam_name_cb(sqlite3_stmt *s, void *arg)
{
	struct iam_name_walk *w = arg;
	const char *v = (const char *)sqlite3_column_text(s, 0);

	return w->fn(w->arg, v != NULL ? v : "");
}

int
store_iam_inline_foreach(struct store *st, const char *entity_type,
    const char *entity_name, store_iam_name_fn fn, void *arg)
{
	struct iam_name_walk w = { fn, arg };
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT policy_name FROM iam_inline_policies "
	    "WHERE entity_type = ?1 AND entity_name = ?2 ORDER BY "
	    "policy_name", &s)) != 0)
		return rc;
	st_text(s, 1, entity_type);
	st_text(s, 2, entity_name);
	rc = iam_rows(s, iam_name_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_inline_delete(struct store *st, const char *entity_type,
    const char *entity_name, const char *policy_name)
{
	int rc;

	rc = iam_write(st, "DELETE FROM iam_inline_policies WHERE "
	    "entity_type = ?1 AND entity_name = ?2 AND lower(policy_name) = "
	    "lower(?3)", entity_type, entity_name, policy_name,
	    "iam_inline_delete", 1);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

/* ---- managed policies --------------------------------------------------- */

#define POLICY_COLUMNS "p.arn, p.name, p.policy_id, p.path, p.description, " \
	"p.default_version, p.is_aws, p.created_ms, p.updated_ms, " \
	"(SELECT count(*) FROM iam_attachments a WHERE a.policy_arn = p.arn)"

static void
iam_policy_row(sqlite3_stmt *s, struct iam_policy_rec *p)
{
	memset(p, 0, sizeof(*p));
	st_col(s, 0, p->arn, sizeof(p->arn));
	st_col(s, 1, p->name, sizeof(p->name));
	st_col(s, 2, p->policy_id, sizeof(p->policy_id));
	st_col(s, 3, p->path, sizeof(p->path));
	st_col(s, 4, p->description, sizeof(p->description));
	st_col(s, 5, p->default_version, sizeof(p->default_version));
	p->is_aws = sqlite3_column_int(s, 6);
	p->created_ms = sqlite3_column_int64(s, 7);
	p->updated_ms = sqlite3_column_int64(s, 8);
	p->attachment_count = sqlite3_column_int(s, 9);
}

static int
iam_version_put(struct store *st, const char *arn, const char *vid,
    const char *document, int64_t now)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "INSERT INTO iam_policy_versions (policy_arn, "
	    "version_id, document, created_ms) VALUES (?1, ?2, ?3, ?4)",
	    &s)) != 0)
		return rc;
	st_text(s, 1, arn);
	st_text(s, 2, vid);
	st_text(s, 3, document);
	sqlite3_bind_int64(s, 4, now);
	rc = st_step_done(st, s, "iam_policy_version_put");
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_policy_create(struct store *st, struct iam_policy_rec *rec,
    const char *document)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (rec->name[0] == '\0' || rec->arn[0] == '\0' || document == NULL)
		return PH_ERR_INVALID;
	if (rec->path[0] == '\0')
		snprintf(rec->path, sizeof(rec->path), "/");
	if ((rc = store_iam_new_id("ANPA", rec->policy_id)) != 0)
		return rc;
	rec->created_ms = rec->updated_ms = st_now_ms();
	snprintf(rec->default_version, sizeof(rec->default_version), "v1");
	rec->is_aws = 0;
	rec->attachment_count = 0;
	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "INSERT INTO iam_policies (arn, name, "
	    "policy_id, path, description, default_version, next_version, "
	    "is_aws, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'v1', "
	    "2, 0, ?6, ?6)", &s)) != 0)
		goto fail;
	st_text(s, 1, rec->arn);
	st_text(s, 2, rec->name);
	st_text(s, 3, rec->policy_id);
	st_text(s, 4, rec->path);
	st_text(s, 5, rec->description);
	sqlite3_bind_int64(s, 6, rec->created_ms);
	rc = st_step_done(st, s, "iam_policy_create");
	sqlite3_finalize(s);
	if (rc != 0 || (rc = iam_version_put(st, rec->arn, "v1", document,
	    rec->created_ms)) != 0 || (rc = st_commit(st)) != 0)
		goto fail;
	iam_bump(st);
	return 0;
fail:
	st_rollback(st);
	return rc;
}

int
store_iam_policy_get(struct store *st, const char *arn,
    struct iam_policy_rec *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (arn == NULL)
		return PH_ERR_NOTFOUND;
	if ((rc = st_prep(st, "SELECT " POLICY_COLUMNS " FROM iam_policies p "
	    "WHERE p.arn = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, arn);
	if ((rc = iam_one(s)) == 0)
		iam_policy_row(s, out);
	sqlite3_finalize(s);
	return rc;
}

struct iam_policy_walk {
	store_iam_policy_rec_fn fn;
	void *arg;
	int only_attached;
};

static int
iam_policy_cb(sqlite3_stmt *s, void *arg)
{
	struct iam_policy_walk *w = arg;
	struct iam_policy_rec p;

	iam_policy_row(s, &p);
	if (w->only_attached && p.attachment_count == 0)
		return 0;
	return w->fn(w->arg, &p);
}

int
store_iam_policy_foreach(struct store *st, int scope, int only_attached,
    const char *path_prefix, store_iam_policy_rec_fn fn, void *arg)
{
	struct iam_policy_walk w = { fn, arg, only_attached };
	sqlite3_stmt *s = NULL;
	int rc;

	if (path_prefix == NULL)
		path_prefix = "/";
	/* AWS lists AWS-managed policies first, then the account's. */
	if ((rc = st_prep(st, "SELECT " POLICY_COLUMNS " FROM iam_policies p "
	    "WHERE (?1 = 0 OR (?1 = 1 AND p.is_aws = 1) OR (?1 = 2 AND "
	    "p.is_aws = 0)) AND substr(p.path, 1, length(?2)) = ?2 ORDER BY "
	    "p.is_aws DESC, lower(p.name), p.arn", &s)) != 0)
		return rc;
	sqlite3_bind_int(s, 1, scope);
	st_text(s, 2, path_prefix);
	rc = iam_rows(s, iam_policy_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_policy_delete(struct store *st, const char *arn, char *why,
    size_t whylen)
{
	static const struct iam_dep deps[] = {
		{ "SELECT count(*) FROM iam_attachments WHERE "
		    "policy_arn = ?1",
		    "Cannot delete a policy attached to entities." },
		{ "SELECT count(*) FROM iam_policy_versions v JOIN "
		    "iam_policies p ON p.arn = v.policy_arn WHERE "
		    "v.policy_arn = ?1 AND v.version_id <> p.default_version",
		    "This policy has more than one version. Before you delete "
		    "a policy, you must delete the policy's versions. The "
		    "default version is deleted with the policy." },
	};
	struct iam_policy_rec p;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = store_iam_policy_get(st, arn, &p)) != 0)
		goto fail;
	if (p.is_aws) {
		rc = PH_ERR_DENIED;
		goto fail;
	}
	if ((rc = iam_check_deps(st, deps, sizeof(deps) / sizeof(deps[0]),
	    arn, why, whylen)) != 0 ||
	    (rc = iam_write(st, "DELETE FROM iam_policy_versions WHERE "
	    "policy_arn = ?1", arn, NULL, NULL, "iam_policy_delete", 0)) != 0 ||
	    (rc = iam_write(st, "DELETE FROM iam_policies WHERE arn = ?1",
	    arn, NULL, NULL, "iam_policy_delete", 1)) != 0 ||
	    (rc = st_commit(st)) != 0)
		goto fail;
	iam_bump(st);
	return 0;
fail:
	st_rollback(st);
	return rc;
}

int
store_iam_policy_version_create(struct store *st, const char *arn,
    const char *document, int set_default, char version_out[16])
{
	sqlite3_stmt *s = NULL;
	int64_t count, next;
	int rc;

	version_out[0] = '\0';
	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "SELECT next_version, is_aws FROM iam_policies "
	    "WHERE arn = ?1", &s)) != 0)
		goto fail;
	st_text(s, 1, arn);
	if ((rc = iam_one(s)) == 0 && sqlite3_column_int(s, 1) != 0)
		rc = PH_ERR_DENIED;
	next = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (rc != 0)
		goto fail;
	if ((rc = iam_count(st, "SELECT count(*) FROM iam_policy_versions "
	    "WHERE policy_arn = ?1", arn, NULL, &count)) != 0)
		goto fail;
	if (count >= IAM_POLICY_VERSIONS_MAX) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	snprintf(version_out, 16, "v%lld", (long long)next);
	if ((rc = iam_version_put(st, arn, version_out, document,
	    st_now_ms())) != 0)
		goto fail;
	if ((rc = st_prep(st, "UPDATE iam_policies SET next_version = "
	    "next_version + 1, updated_ms = ?2, default_version = CASE WHEN "
	    "?3 = 1 THEN ?4 ELSE default_version END WHERE arn = ?1",
	    &s)) != 0)
		goto fail;
	st_text(s, 1, arn);
	sqlite3_bind_int64(s, 2, st_now_ms());
	sqlite3_bind_int(s, 3, set_default ? 1 : 0);
	st_text(s, 4, version_out);
	rc = st_step_done(st, s, "iam_policy_version_create");
	sqlite3_finalize(s);
	if (rc != 0 || (rc = st_commit(st)) != 0)
		goto fail;
	iam_bump(st);
	return 0;
fail:
	version_out[0] = '\0';
	st_rollback(st);
	return rc;
}

int
store_iam_policy_version_get(struct store *st, const char *arn,
    const char *version_id, char **document_out, int64_t *created_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*document_out = NULL;
	if ((rc = st_prep(st, "SELECT document, created_ms FROM "
	    "iam_policy_versions WHERE policy_arn = ?1 AND version_id = ?2",
	    &s)) != 0)
		return rc;
	st_text(s, 1, arn);
	st_text(s, 2, version_id);
	if ((rc = iam_one(s)) == 0) {
		if ((*document_out = iam_col_dup(s, 0)) == NULL)
			rc = PH_ERR_NOMEM;
		if (created_ms != NULL)
			*created_ms = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	return rc;
}

struct iam_version_walk {
	store_iam_version_fn fn;
	void *arg;
};

static int
iam_version_cb(sqlite3_stmt *s, void *arg)
{
	struct iam_version_walk *w = arg;
	const char *v = (const char *)sqlite3_column_text(s, 0);

	return w->fn(w->arg, v != NULL ? v : "", sqlite3_column_int(s, 1),
	    sqlite3_column_int64(s, 2));
}

int
store_iam_policy_version_foreach(struct store *st, const char *arn,
    store_iam_version_fn fn, void *arg)
{
	struct iam_version_walk w = { fn, arg };
	sqlite3_stmt *s = NULL;
	int rc;

	/* Newest first, as IAM lists them. */
	if ((rc = st_prep(st, "SELECT v.version_id, CASE WHEN v.version_id = "
	    "p.default_version THEN 1 ELSE 0 END, v.created_ms FROM "
	    "iam_policy_versions v JOIN iam_policies p ON p.arn = "
	    "v.policy_arn WHERE v.policy_arn = ?1 ORDER BY v.created_ms DESC, "
	    "length(v.version_id) DESC, v.version_id DESC", &s)) != 0)
		return rc;
	st_text(s, 1, arn);
	rc = iam_rows(s, iam_version_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_policy_version_delete(struct store *st, const char *arn,
    const char *version_id)
{
	struct iam_policy_rec p;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = store_iam_policy_get(st, arn, &p)) != 0)
		goto fail;
	if (p.is_aws) {
		rc = PH_ERR_DENIED;
		goto fail;
	}
	if (strcmp(p.default_version, version_id) == 0) {
		rc = PH_ERR_STATE;
		goto fail;
	}
	if ((rc = iam_write(st, "DELETE FROM iam_policy_versions WHERE "
	    "policy_arn = ?1 AND version_id = ?2", arn, version_id, NULL,
	    "iam_policy_version_delete", 1)) != 0 ||
	    (rc = st_commit(st)) != 0)
		goto fail;
	iam_bump(st);
	return 0;
fail:
	st_rollback(st);
	return rc;
}

int
store_iam_policy_set_default(struct store *st, const char *arn,
    const char *version_id)
{
	int64_t count;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = iam_count(st, "SELECT count(*) FROM iam_policy_versions v "
	    "JOIN iam_policies p ON p.arn = v.policy_arn WHERE "
	    "v.policy_arn = ?1 AND v.version_id = ?2 AND p.is_aws = 0", arn,
	    version_id, &count)) != 0)
		goto fail;
	if (count == 0) {
		rc = PH_ERR_NOTFOUND;
		goto fail;
	}
	if ((rc = iam_write(st, "UPDATE iam_policies SET default_version = ?2 "
	    "WHERE arn = ?1", arn, version_id, NULL, "iam_policy_set_default",
	    1)) != 0 || (rc = st_commit(st)) != 0)
		goto fail;
	iam_bump(st);
	return 0;
fail:
	st_rollback(st);
	return rc;
}

/* ---- attachments -------------------------------------------------------- */

int
store_iam_attach(struct store *st, const char *entity_type,
    const char *entity_name, const char *policy_arn)
{
	int rc;

	rc = iam_write(st, "INSERT INTO iam_attachments (entity_type, "
	    "entity_name, policy_arn) VALUES (?1, ?2, ?3) ON CONFLICT "
	    "(entity_type, entity_name, policy_arn) DO NOTHING", entity_type,
	    entity_name, policy_arn, "iam_attach", 0);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

int
store_iam_detach(struct store *st, const char *entity_type,
    const char *entity_name, const char *policy_arn)
{
	int rc;

	rc = iam_write(st, "DELETE FROM iam_attachments WHERE entity_type = ?1 "
	    "AND entity_name = ?2 AND policy_arn = ?3", entity_type,
	    entity_name, policy_arn, "iam_detach", 1);
	if (rc == 0)
		iam_bump(st);
	return rc;
}

struct iam_attached_walk {
	store_iam_attached_fn fn;
	void *arg;
};

static int
iam_attached_cb(sqlite3_stmt *s, void *arg)
{
	struct iam_attached_walk *w = arg;
	const char *a = (const char *)sqlite3_column_text(s, 0);
	const char *n = (const char *)sqlite3_column_text(s, 1);

	return w->fn(w->arg, a != NULL ? a : "", n != NULL ? n : "");
}

int
store_iam_attached_foreach(struct store *st, const char *entity_type,
    const char *entity_name, store_iam_attached_fn fn, void *arg)
{
	struct iam_attached_walk w = { fn, arg };
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT a.policy_arn, p.name FROM "
	    "iam_attachments a JOIN iam_policies p ON p.arn = a.policy_arn "
	    "WHERE a.entity_type = ?1 AND a.entity_name = ?2 ORDER BY "
	    "lower(p.name), p.arn", &s)) != 0)
		return rc;
	st_text(s, 1, entity_type);
	st_text(s, 2, entity_name);
	rc = iam_rows(s, iam_attached_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

struct iam_entity_walk {
	store_iam_entity_fn fn;
	void *arg;
};

static int
iam_entity_cb(sqlite3_stmt *s, void *arg)
{
	struct iam_entity_walk *w = arg;
	const char *t = (const char *)sqlite3_column_text(s, 0);
	const char *n = (const char *)sqlite3_column_text(s, 1);

	return w->fn(w->arg, t != NULL ? t : "", n != NULL ? n : "");
}

int
store_iam_policy_entities(struct store *st, const char *policy_arn,
    store_iam_entity_fn fn, void *arg)
{
	struct iam_entity_walk w = { fn, arg };
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT entity_type, entity_name FROM "
	    "iam_attachments WHERE policy_arn = ?1 ORDER BY entity_type, "
	    "lower(entity_name)", &s)) != 0)
		return rc;
	st_text(s, 1, policy_arn);
	rc = iam_rows(s, iam_entity_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

/* ---- the documents that apply to a principal ---------------------------- */

struct iam_doc_walk {
	store_iam_policy_fn fn;
	void *arg;
};

static int
iam_doc_cb(sqlite3_stmt *s, void *arg)
{
	struct iam_doc_walk *w = arg;
	const char *name = (const char *)sqlite3_column_text(s, 1);
	const char *doc = (const char *)sqlite3_column_text(s, 2);
	char source[IAM_ARN_SIZE + 8];

	if (name == NULL || doc == NULL)
		return 0;
	if (sqlite3_column_int(s, 0) == 0)
		snprintf(source, sizeof(source), "inline:%s", name);
	else
		snprintf(source, sizeof(source), "%s", name);
	return w->fn(w->arg, source, doc);
}

#define ATTACHED_DOCS(type, name_expr) \
	"SELECT 1, a.policy_arn, v.document FROM iam_attachments a JOIN " \
	"iam_policies p ON p.arn = a.policy_arn JOIN iam_policy_versions v " \
	"ON v.policy_arn = p.arn AND v.version_id = p.default_version " \
	"WHERE a.entity_type = '" type "' AND a.entity_name = " name_expr

int
store_iam_user_policies(struct store *st, const char *user_name,
    store_iam_policy_fn fn, void *arg)
{
	struct iam_doc_walk w = { fn, arg };
	struct iam_user_rec u;
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = store_iam_user_get(st, user_name, &u)) != 0)
		return rc;
	if ((rc = st_prep(st,
	    "SELECT 0, policy_name, document FROM iam_inline_policies WHERE "
	    "entity_type = 'user' AND entity_name = ?1 "
	    "UNION ALL " ATTACHED_DOCS("user", "?1") " "
	    "UNION ALL SELECT 0, i.policy_name, i.document FROM "
	    "iam_group_members m JOIN iam_inline_policies i ON "
	    "i.entity_type = 'group' AND i.entity_name = m.group_name WHERE "
	    "m.user_name = ?1 "
	    "UNION ALL SELECT 1, a.policy_arn, v.document FROM "
	    "iam_group_members m JOIN iam_attachments a ON a.entity_type = "
	    "'group' AND a.entity_name = m.group_name JOIN iam_policies p ON "
	    "p.arn = a.policy_arn JOIN iam_policy_versions v ON "
	    "v.policy_arn = p.arn AND v.version_id = p.default_version WHERE "
	    "m.user_name = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, u.name);
	rc = iam_rows(s, iam_doc_cb, &w);
	sqlite3_finalize(s);
	return rc;
}

int
store_iam_role_policies(struct store *st, const char *role_name,
    store_iam_policy_fn fn, void *arg)
{
	struct iam_doc_walk w = { fn, arg };
	struct iam_role_rec r;
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = store_iam_role_get(st, role_name, &r)) != 0)
		return rc;
	if ((rc = st_prep(st,
	    "SELECT 0, policy_name, document FROM iam_inline_policies WHERE "
	    "entity_type = 'role' AND entity_name = ?1 "
	    "UNION ALL " ATTACHED_DOCS("role", "?1"), &s)) != 0)
		goto out;
	st_text(s, 1, r.name);
	rc = iam_rows(s, iam_doc_cb, &w);
	sqlite3_finalize(s);
out:
	iam_role_rec_clear(&r);
	return rc;
}

/* ---- at open ------------------------------------------------------------ */

static int
iam_seed_managed(struct store *st)
{
	char arn[IAM_ARN_SIZE];
	sqlite3_stmt *s = NULL;
	int64_t now = st_now_ms();
	size_t i;
	int rc = 0;

	for (i = 0; i < iam_managed_npolicies && rc == 0; i++) {
		const struct iam_managed_policy *m = &iam_managed_policies[i];

		snprintf(arn, sizeof(arn), "%s%s%s", IAM_MANAGED_ARN_PREFIX,
		    m->path, m->name);
		if ((rc = st_prep(st, "INSERT INTO iam_policies (arn, name, "
		    "policy_id, path, description, default_version, "
		    "next_version, is_aws, created_ms, updated_ms) VALUES (?1, "
		    "?2, ?3, ?4, ?5, ?6, 1, 1, ?7, ?7) ON CONFLICT (arn) DO "
		    "UPDATE SET description = excluded.description, "
		    "default_version = excluded.default_version", &s)) != 0)
			break;
		st_text(s, 1, arn);
		st_text(s, 2, m->name);
		st_text(s, 3, m->policy_id);
		st_text(s, 4, m->path);
		st_text(s, 5, m->description);
		st_text(s, 6, m->version_id);
		sqlite3_bind_int64(s, 7, now);
		rc = st_step_done(st, s, "iam_seed_managed");
		sqlite3_finalize(s);
		if (rc != 0)
			break;
		if ((rc = st_prep(st, "INSERT INTO iam_policy_versions "
		    "(policy_arn, version_id, document, created_ms) VALUES "
		    "(?1, ?2, ?3, ?4) ON CONFLICT (policy_arn, version_id) DO "
		    "UPDATE SET document = excluded.document WHERE "
		    "iam_policy_versions.document <> excluded.document",
		    &s)) != 0)
			break;
		st_text(s, 1, arn);
		st_text(s, 2, m->version_id);
		st_text(s, 3, m->document);
		sqlite3_bind_int64(s, 4, now);
		rc = st_step_done(st, s, "iam_seed_managed");
		sqlite3_finalize(s);
	}
	return rc;
}

/* Users made before schema version 3 have no id yet. */
static int
iam_give_user_ids(struct store *st)
{
	char names[16][IAM_NAME_SIZE], id[IAM_ID_SIZE];
	sqlite3_stmt *s = NULL;
	size_t n, i;
	int rc, round;

	/* A bounded number of rounds of up to 16 users each. */
	for (round = 0; round < 4096; round++) {
		if ((rc = st_prep(st, "SELECT name FROM iam_users WHERE "
		    "user_id = '' ORDER BY name LIMIT 16", &s)) != 0)
			return rc;
		for (n = 0; n < 16 && sqlite3_step(s) == SQLITE_ROW; n++)
			st_col(s, 0, names[n], sizeof(names[n]));
		sqlite3_finalize(s);
		if (n == 0)
			return 0;
		for (i = 0; i < n; i++) {
			if ((rc = store_iam_new_id("AIDA", id)) != 0 ||
			    (rc = iam_write(st, "UPDATE iam_users SET "
			    "user_id = ?2 WHERE name = ?1", names[i], id, NULL,
			    "iam_give_user_ids", 0)) != 0)
				return rc;
		}
	}
	return PH_ERR_IO;
}

int
store_iam_open(struct store *st)
{
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = iam_give_user_ids(st)) != 0 ||
	    (rc = iam_seed_managed(st)) != 0 || (rc = st_commit(st)) != 0) {
		st_rollback(st);
		return rc;
	}
	return 0;
}
